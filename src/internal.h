/* internal.h: the internal headers an op or layer implementation includes
 * (runtime, tensor, autodiff tape, options resolution). Like them it brings
 * only the base public headers (status, runtime, tensor) and autodiff.h;
 * each file includes the public headers of the other families it uses. */
#ifndef LAMINA_INTERNAL_H
#define LAMINA_INTERNAL_H

#include "autodiff/tape.h"
#include "runtime/options_internal.h"
#include "runtime/runtime_internal.h"
#include "tensor_internal.h"

#endif
