/* nn/nn_internal.h: helpers shared by the built-in layers (never installed). */
#ifndef LAMINA_NN_INTERNAL_H
#define LAMINA_NN_INTERNAL_H

#include "internal.h"
#include "lamina/init.h"
#include "lamina/layer.h"
#include "lamina/ptree.h"
#include "lamina/rng.h"

/* Initialises a parameter with init (keyed by key and path) and stores it at path. */
lam_status lam__param_make(lam_ptree *params, const char *path, const lam_init *init, lam_ctx *ctx,
                           lam_rng_key key, lam_dtype dtype, int ndim, const int64_t *shape);
/* Returns the parameter at path (borrowed) if it has exactly shape; else
 * NULL with "lam_layer_apply: <layer>: ..." recorded. */
lam_tensor *lam__param_get(lam_ptree *params, const char *layer, const char *path, int ndim,
                           const int64_t *shape);
/* Checks x is [..., features] of dtype; records a message naming the layer. */
/* Constructors: checks an options struct's lam_init field (a zeroed one is
 * the layer's default); the message reads "<fn>: <field>: ...". */
lam_status lam__init_check_opt(const char *fn, const char *field, const lam_init *init);
lam_status lam__check_input(const char *layer, lam_tensor *x, int64_t features, lam_dtype dtype);
/* vtable helpers: free(self->impl), and an init for layers without params. */
void lam__free_impl(lam_layer *self);
lam_status lam__no_params_init(lam_layer *self, lam_ctx *ctx, lam_rng_key key, lam_dtype dtype,
                               lam_ptree *params, lam_ptree *state);
/* For lam_quantize_layer (nn/quant_layers.c): true if layer is a built-in
 * embedding, with its no_scale and max_norm options. */
bool lam__embedding_config(const lam_layer *layer, bool *no_scale, double *max_norm);
/* True if layer is a built-in linear (not bilinear), with its features and no_bias. */
bool lam__linear_config(const lam_layer *layer, int64_t *in, int64_t *out, bool *no_bias);

/* For the model zoo's evaluation fusions (lam_models_resnet_fuse): whether l is a
 * ReLU activation layer; a 2-D convolution layer's options (NULL for other
 * layers); a batch norm layer with affine weight and bias and running
 * statistics (false otherwise) and its eps. */
bool lam__nn_is_relu(const lam_layer *l);
const struct lam_conv_opts *lam__nn_conv2d_opts(const lam_layer *l);
bool lam__nn_batch_norm_eps(const lam_layer *l, double *eps);

#endif
