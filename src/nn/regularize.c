/* nn/regularize.c: Metalhead's structured regularizers: DropBlock (drops
 * contiguous blocks of feature maps), StochasticDepth / DropPath (drops
 * whole samples of a residual branch) and linear_scheduler (per-block drop
 * rates). Randomness comes only from the Philox key in the apply options
 * (an error in training without one); in evaluation the layers are the
 * identity. The masks are never differentiated: gradients flow through the
 * final product with x only. */
#include <math.h>
#include <stdlib.h>

#include "lamina/elementwise.h"
#include "lamina/reduce.h"
#include "lamina/regularize.h"
#include "nn/nn_internal.h"

/* ---- DropBlock ----------------------------------------------------------- */

/* Block mask (1 keep, 0 drop) from the centres `seed` (u8, x's shape). */
static lam_tensor *lam__dropblock_mask(const char *fn, lam_tensor *seed, lam_dtype dtype, int64_t bs) {
  lam_ctx *ctx = seed->ctx;
  cl_kernel k;
  if (lam__kernel_dt(ctx, "norm", "dropblock_mask", dtype, NULL, &k) != LAM_OK) return NULL;
  lam_tensor *m = lam__tensor_new(ctx, dtype, seed->ndim, seed->shape, fn);
  if (!m) return NULL;
  lam__arg args[] = {LAM__ARG_T(seed), LAM__ARG_T(m), lam__arg_int(seed->numel),
                     lam__arg_int(seed->shape[2]), lam__arg_int(seed->shape[3]), lam__arg_int(bs)};
  if (lam__launch_1d(ctx, k, fn, (int)(sizeof args / sizeof args[0]), args, (size_t)m->numel) != LAM_OK) {
    lam_tensor_free(m);
    return NULL;
  }
  return m;
}

lam_tensor *lam_dropblock(lam_tensor *x, double rate, int64_t block_size,
                                  double gamma_scale, lam_rng_key key) {
  const char *fn = "lam_dropblock";
  if (!x) return lam__null_input(fn, "x");
  if (x->dtype != LAM_F32 && x->dtype != LAM_F64)
    return lam__fail(LAM_ERR_DTYPE, "%s: x is %s, need f32 or f64", fn, lam_dtype_name(x->dtype)), NULL;
  if (x->ndim != 4) {
    char b[LAM__SHAPE_STR];
    return lam__fail(LAM_ERR_SHAPE, "%s: x is %s, need [N, C, H, W]", fn,
                     lam__shape_str(x->ndim, x->shape, b)), NULL;
  }
  if (!(rate >= 0 && rate <= 1))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: rate %g must be in [0, 1]", fn, rate), NULL;
  if (!(gamma_scale >= 0 && gamma_scale <= 1))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: gamma_scale %g must be in [0, 1]", fn, gamma_scale), NULL;
  if (block_size < 1)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: block_size %lld must be >= 1", fn, (long long)block_size), NULL;
  if (rate == 0 || gamma_scale == 0) return lam_tensor_retain(x);
  const int64_t H = x->shape[2], W = x->shape[3];
  int64_t bs = block_size;
  if (bs > H) bs = H;
  if (bs > W) bs = W;
  /* Metalhead/timm's gamma; the valid-centre count uses the clipped size so
   * blocks larger than the map stay meaningful (equal when block_size fits). */
  double gamma = gamma_scale * rate * (double)(H * W) / (double)(bs * bs) /
                 ((double)(W - bs + 1) * (double)(H - bs + 1));
  if (gamma > 1) gamma = 1;
  bool was = lam_grad_set_enabled(x->ctx, false);
  lam_tensor *seed = lam_random_bernoulli(x->ctx, key, gamma, 4, x->shape);
  lam_tensor *mask = seed ? lam__dropblock_mask(fn, seed, x->dtype, bs) : NULL;
  lam_tensor *sum = mask ? lam_sum(mask, 0, NULL, 0) : NULL;
  lam_tensor *den = sum ? lam_add_scalar(sum, 1e-6) : NULL;
  lam_tensor *scale = den ? lam_rdiv_scalar(den, (double)x->numel) : NULL;
  lam_tensor *ms = scale ? lam_mul(mask, scale) : NULL;
  lam_grad_set_enabled(x->ctx, was);
  lam_tensor *y = ms ? lam_mul(x, ms) : NULL;
  lam_tensor_free(seed);
  lam_tensor_free(mask);
  lam_tensor_free(sum);
  lam_tensor_free(den);
  lam_tensor_free(scale);
  lam_tensor_free(ms);
  return y;
}

typedef struct {
  double rate, gamma_scale;
  int64_t block_size;
  int sd_mode; /* stochastic depth: lam_stochastic_depth_mode; -1 for DropBlock */
} lam__drop;

static lam_status lam__drop_apply(lam_layer *self, lam_ptree *params, lam_ptree *state,
                                  lam_tensor *x, const lam_apply_opts *opts, lam_tensor **out) {
  lam__drop *d = self->impl;
  const char *name = d->sd_mode < 0 ? "dropblock" : "stochastic_depth";
  if (d->sd_mode < 0 && x->ndim != 4) {
    char b[LAM__SHAPE_STR];
    return lam__fail(LAM_ERR_SHAPE, "lam_layer_apply: dropblock expects [N, C, H, W], got %s",
                     lam__shape_str(x->ndim, x->shape, b));
  }
  if (!opts->training || d->rate == 0) {
    *out = lam_tensor_retain(x);
    return LAM_OK;
  }
  if (!opts->rng)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                     "lam_layer_apply: %s in training needs an rng key (lam_apply_opts.rng)", name);
  *out = d->sd_mode < 0
             ? lam_dropblock(x, d->rate, d->block_size, d->gamma_scale, *opts->rng)
             : lam_stochastic_depth(x, d->rate, (lam_stochastic_depth_mode)d->sd_mode,
                                            *opts->rng);
  return *out ? LAM_OK : lam_last_status();
}

static const lam_layer_vtable lam__dropblock_vt = {"dropblock", lam__no_params_init, lam__drop_apply,
                                                   lam__free_impl};
static const lam_layer_vtable lam__sd_vt = {"stochastic_depth", lam__no_params_init, lam__drop_apply,
                                            lam__free_impl};

static lam_layer *lam__drop_new(const char *fn, const lam_layer_vtable *vt, lam__drop d) {
  lam__drop *p = malloc(sizeof *p);
  if (!p) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn), NULL;
  *p = d;
  lam_layer *l = lam_nn_custom(vt, p);
  if (!l) free(p);
  return l;
}

lam_dropblock_opts lam_dropblock_defaults(void) {
  return (lam_dropblock_opts){.rate = 0.1, .block_size = 7, .gamma_scale = 1.0};
}

/* The options with zeros resolved (NULL: defaults). */
static lam_dropblock_opts lam__dropblock_resolve(const lam_dropblock_opts *opts) {
  lam_dropblock_opts def = lam_dropblock_defaults(), o = opts ? *opts : def;
  o.rate = lam__opt_f64(o.rate, def.rate);
  o.block_size = lam__opt_i64(o.block_size, def.block_size);
  o.gamma_scale = lam__opt_f64(o.gamma_scale, def.gamma_scale);
  return o;
}

lam_layer *lam_nn_dropblock(const lam_dropblock_opts *opts) {
  const char *fn = "lam_nn_dropblock";
  const lam_dropblock_opts o = lam__dropblock_resolve(opts);
  const double rate = o.rate, gamma_scale = o.gamma_scale;
  const int64_t block_size = o.block_size;
  if (!(rate >= 0 && rate <= 1))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: rate %g must be in [0, 1]", fn, rate), NULL;
  if (!(gamma_scale >= 0 && gamma_scale <= 1))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: gamma_scale %g must be in [0, 1]", fn, gamma_scale), NULL;
  if (block_size < 1)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: block_size %lld must be >= 1", fn, (long long)block_size), NULL;
  return lam__drop_new(fn, &lam__dropblock_vt, (lam__drop){rate, gamma_scale, block_size, -1});
}

/* ---- stochastic depth ------------------------------------------------------- */

static lam_status lam__sd_check(const char *fn, double rate, lam_stochastic_depth_mode mode) {
  if (!(rate >= 0 && rate <= 1))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: rate %g must be in [0, 1]", fn, rate);
  if (mode != LAM_STOCHASTIC_DEPTH_ROW && mode != LAM_STOCHASTIC_DEPTH_BATCH)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: mode %d is neither row (0) nor batch (1)", fn,
                     (int)mode);
  return LAM_OK;
}

lam_tensor *lam_stochastic_depth(lam_tensor *x, double rate,
                                         lam_stochastic_depth_mode mode, lam_rng_key key) {
  const char *fn = "lam_stochastic_depth";
  if (!x) return lam__null_input(fn, "x");
  if (lam__sd_check(fn, rate, mode) != LAM_OK) return NULL;
  if (!lam_dtype_is_float(x->dtype))
    return lam__fail(LAM_ERR_DTYPE, "%s: x is %s, need a float dtype", fn, lam_dtype_name(x->dtype)), NULL;
  if (x->ndim < 1)
    return lam__fail(LAM_ERR_SHAPE, "%s: x is a scalar, need [N, ...]", fn), NULL;
  if (rate == 0) return lam_tensor_retain(x);
  int64_t shape[LAM_MAX_DIMS];
  for (int i = 0; i < x->ndim; i++) shape[i] = 1;
  if (mode == LAM_STOCHASTIC_DEPTH_ROW) shape[0] = x->shape[0];
  const double survival = 1.0 - rate;
  bool was = lam_grad_set_enabled(x->ctx, false);
  lam_tensor *keep = lam_random_bernoulli(x->ctx, key, survival, x->ndim, shape);
  lam_tensor *keepf = keep ? lam_tensor_cast(keep, x->dtype) : NULL;
  /* torchvision: divide by the survival rate unless it is 0. */
  lam_tensor *noise = keepf && survival > 0 ? lam_mul_scalar(keepf, 1.0 / survival)
                                            : lam_tensor_retain(keepf);
  lam_grad_set_enabled(x->ctx, was);
  lam_tensor *y = noise ? lam_mul(x, noise) : NULL;
  lam_tensor_free(keep);
  lam_tensor_free(keepf);
  lam_tensor_free(noise);
  return y;
}

lam_stochastic_depth_opts lam_stochastic_depth_defaults(void) {
  return (lam_stochastic_depth_opts){.rate = 0.0, .mode = LAM_STOCHASTIC_DEPTH_ROW};
}

lam_layer *lam_nn_stochastic_depth(const lam_stochastic_depth_opts *opts) {
  const char *fn = "lam_nn_stochastic_depth";
  /* Every default is zero, so nothing to resolve: NULL is a zeroed struct. */
  const lam_stochastic_depth_opts o = opts ? *opts : lam_stochastic_depth_defaults();
  if (lam__sd_check(fn, o.rate, o.mode) != LAM_OK) return NULL;
  return lam__drop_new(fn, &lam__sd_vt, (lam__drop){o.rate, 0, 0, (int)o.mode});
}

lam_status lam_stochastic_depth_rates(double drop_prob, double start_value, int depth, double *out) {
  const char *fn = "lam_stochastic_depth_rates";
  if (!out) return lam__fail(LAM_ERR_NULL, "%s: out is NULL", fn);
  if (depth < 1) return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: depth %d must be >= 1", fn, depth);
  if (!isfinite(drop_prob) || !isfinite(start_value))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: drop_prob %g and start_value %g must be finite", fn,
                     drop_prob, start_value);
  for (int i = 0; i < depth; i++)
    out[i] = depth == 1 ? start_value
                        : start_value + (drop_prob - start_value) * (double)i / (double)(depth - 1);
  if (depth > 1) out[depth - 1] = drop_prob; /* exact endpoint, as LinRange */
  return LAM_OK;
}
