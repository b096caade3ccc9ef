/* nn/pool_internal.h: what the pooling layers of nn/pool_layers.c need
 * from those of nn/conv_layers.c (never installed). */
#ifndef LAMINA_NN_POOL_INTERNAL_H
#define LAMINA_NN_POOL_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "lamina/layer.h"
#include "lamina/pool.h"

/* When layer is a max pool or an adaptive max pool layer made by
 * lam_nn_max_pool1d/2d/3d or lam_nn_adaptive_max_pool1d/2d/3d, stores
 * whether it is adaptive, its spatial dims, its options and its adaptive
 * output sizes (out[3]) and returns true; else returns false. */
bool lam__max_pool_layer_config(const lam_layer *layer, int *adaptive, int *nsp, lam_pool_opts *p,
                                int64_t *out);

#endif
