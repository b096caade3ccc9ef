/* nn/dropout.c: dropout, dropout2d and dropout3d. In training the mask is a
 * Philox bernoulli draw from the rng key in the apply options (an error
 * without one, so randomness is never implicit); in evaluation the layer is
 * the identity. Kept elements are scaled by 1/(1-rate) as in PyTorch. */
#include <math.h>
#include <stdlib.h>

#include "lamina/elementwise.h"
#include "lamina/regularize.h"
#include "nn/nn_internal.h"

lam_tensor *lam_dropout(lam_tensor *x, double rate, lam_rng_key key, bool channel_wise) {
  const char *fn = "lam_dropout";
  if (!x) return lam__null_input(fn, "x");
  if (!(rate >= 0 && rate < 1))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: rate %g must be in [0, 1)", fn, rate), NULL;
  if (!lam_dtype_is_float(x->dtype))
    return lam__fail(LAM_ERR_DTYPE, "%s: x is %s, need a float dtype", fn, lam_dtype_name(x->dtype)), NULL;
  if (rate == 0) return lam_tensor_retain(x);
  int64_t mshape[LAM_MAX_DIMS];
  int nd = x->ndim;
  for (int i = 0; i < nd; i++) mshape[i] = (channel_wise && i >= 2) ? 1 : x->shape[i];
  if (channel_wise && nd < 3) {
    char b[LAM__SHAPE_STR];
    return lam__fail(LAM_ERR_SHAPE, "%s: channel-wise dropout needs [N, C, ...], got %s", fn,
                     lam__shape_str(nd, x->shape, b)), NULL;
  }
  lam_tensor *keep = lam_random_bernoulli(x->ctx, key, 1.0 - rate, nd, mshape);
  lam_tensor *keepf = keep ? lam_tensor_cast(keep, x->dtype) : NULL;
  lam_tensor *scaled = keepf ? lam_mul_scalar(keepf, 1.0 / (1.0 - rate)) : NULL;
  lam_tensor *y = scaled ? lam_mul(x, scaled) : NULL;
  lam_tensor_free(keep);
  lam_tensor_free(keepf);
  lam_tensor_free(scaled);
  return y;
}

typedef struct {
  double rate;
  int rank; /* 0: elementwise; 4 or 5: channel-wise for that input rank */
} lam__dropout;

static lam_status lam__dropout_apply(lam_layer *self, lam_ptree *params, lam_ptree *state,
                                     lam_tensor *x, const lam_apply_opts *opts, lam_tensor **out) {
  lam__dropout *d = self->impl;
  const char *name = d->rank == 0 ? "dropout" : d->rank == 4 ? "dropout2d" : "dropout3d";
  if (d->rank && x->ndim != d->rank) {
    char b[LAM__SHAPE_STR];
    return lam__fail(LAM_ERR_SHAPE, "lam_layer_apply: %s expects a rank-%d input, got %s", name,
                     d->rank, lam__shape_str(x->ndim, x->shape, b));
  }
  if (!opts->training || d->rate == 0) {
    *out = lam_tensor_retain(x);
    return LAM_OK;
  }
  if (!opts->rng)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                     "lam_layer_apply: %s in training needs an rng key (lam_apply_opts.rng)", name);
  *out = lam_dropout(x, d->rate, *opts->rng, d->rank != 0);
  return *out ? LAM_OK : lam_last_status();
}

static const lam_layer_vtable lam__dropout_vt = {"dropout", lam__no_params_init, lam__dropout_apply,
                                                 lam__free_impl};

lam_dropout_opts lam_dropout_defaults(void) { return (lam_dropout_opts){.rate = 0.5}; }

/* The options with zeros resolved (NULL: defaults). */
static lam_dropout_opts lam__dropout_resolve(const lam_dropout_opts *opts) {
  lam_dropout_opts def = lam_dropout_defaults(), o = opts ? *opts : def;
  o.rate = lam__opt_f64(o.rate, def.rate);
  return o;
}

static lam_layer *lam__dropout_new(const lam_dropout_opts *opts, int rank, const char *fn) {
  const double rate = lam__dropout_resolve(opts).rate;
  if (!(rate >= 0 && rate < 1))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: rate %g must be in [0, 1) (0: 0.5, LAM_ZERO: none)",
                     fn, rate), NULL;
  lam__dropout *d = calloc(1, sizeof *d);
  if (!d) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn), NULL;
  d->rate = rate;
  d->rank = rank;
  lam_layer *l = lam_nn_custom(&lam__dropout_vt, d);
  if (!l) free(d);
  return l;
}

lam_layer *lam_nn_dropout(const lam_dropout_opts *opts) {
  return lam__dropout_new(opts, 0, "lam_nn_dropout");
}
lam_layer *lam_nn_dropout2d(const lam_dropout_opts *opts) {
  return lam__dropout_new(opts, 4, "lam_nn_dropout2d");
}
lam_layer *lam_nn_dropout3d(const lam_dropout_opts *opts) {
  return lam__dropout_new(opts, 5, "lam_nn_dropout3d");
}
