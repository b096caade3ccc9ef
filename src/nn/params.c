/* nn/params.c: helpers shared by the built-in layers: making initialised
 * parameters, fetching them with shape checks, and checking inputs. */
#include <stdlib.h>

#include "nn/nn_internal.h"

/* Makes a parameter with init under `path`, keyed by the parameter path so
 * initialisation is deterministic per key and path. */
lam_status lam__param_make(lam_ptree *params, const char *path, const lam_init *init,
                                  lam_ctx *ctx, lam_rng_key key, lam_dtype dtype, int ndim,
                                  const int64_t *shape) {
  lam_tensor *t = lam_init_apply(init, ctx, lam_init_key_for(key, path), dtype, ndim, shape);
  if (!t) return lam_last_status();
  lam_status st = lam_ptree_set(params, path, t);
  lam_tensor_free(t);
  return st;
}

/* Fetches a parameter and checks its shape; records a message naming the layer. */
lam_tensor *lam__param_get(lam_ptree *params, const char *layer, const char *path, int ndim,
                              const int64_t *shape) {
  lam_tensor *t = lam_ptree_get(params, path);
  if (!t) return lam__fail(LAM_ERR_NOT_FOUND, "lam_layer_apply: %s: missing param \"%s\"", layer, path), NULL;
  if (lam_tensor_ndim(t) != ndim) goto bad;
  for (int i = 0; i < ndim; i++)
    if (lam_tensor_shape(t)[i] != shape[i]) goto bad;
  return t;
bad: {
  char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR];
  return lam__fail(LAM_ERR_SHAPE, "lam_layer_apply: %s: param \"%s\" is %s, expected %s", layer, path,
                   lam__shape_str(lam_tensor_ndim(t), lam_tensor_shape(t), b1),
                   lam__shape_str(ndim, shape, b2)), NULL;
}
}

/* Checks x's last dim and dtype against what the layer expects. */
lam_status lam__check_input(const char *layer, lam_tensor *x, int64_t features, lam_dtype dtype) {
  char b[LAM__SHAPE_STR];
  if (lam_tensor_ndim(x) < 1 || lam_tensor_dim(x, -1) != features)
    return lam__fail(LAM_ERR_SHAPE, "lam_layer_apply: %s expects [..., %lld], got %s", layer,
                     (long long)features, lam__shape_str(x->ndim, x->shape, b));
  if (x->dtype != dtype)
    return lam__fail(LAM_ERR_DTYPE, "lam_layer_apply: %s: input is %s, params are %s", layer,
                     lam_dtype_name(x->dtype), lam_dtype_name(dtype));
  return LAM_OK;
}

void lam__free_impl(lam_layer *self) { free(self->impl); }

lam_status lam__no_params_init(lam_layer *self, lam_ctx *ctx, lam_rng_key key, lam_dtype dtype,
                               lam_ptree *params, lam_ptree *state) {
  return LAM_OK;
}
