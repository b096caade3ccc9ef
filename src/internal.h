/* internal.h: everything an op or layer implementation includes. */
#ifndef LAMINA_INTERNAL_H
#define LAMINA_INTERNAL_H

#include "autodiff/tape.h"
#include "runtime/options_internal.h"
#include "runtime/runtime_internal.h"
#include "tensor_internal.h"

#endif
