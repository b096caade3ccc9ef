/* nn/local_response_norm.c: local response normalization
 * (torch.nn.functional.local_response_norm and nn.LocalResponseNorm), made
 * of other ops exactly as torch's functional form: the squares, zero-padded
 * along the channels, are averaged over `size` channels by an average pool
 * on a [N, 1, C, rest] view, so the gradient comes from those ops. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/elementwise.h"
#include "lamina/norm.h"
#include "lamina/pool.h"
#include "lamina/shape.h"
#include "nn/nn_internal.h"
#include "runtime/options_internal.h"

lam_local_response_norm_opts lam_local_response_norm_defaults(void) {
  return (lam_local_response_norm_opts){.alpha = 1e-4, .beta = 0.75, .k = 1.0};
}

static lam_local_response_norm_opts lam__lrn_resolve(const lam_local_response_norm_opts *opts) {
  lam_local_response_norm_opts d = lam_local_response_norm_defaults();
  if (!opts) return d;
  return (lam_local_response_norm_opts){.alpha = lam__opt_f64(opts->alpha, d.alpha),
                                        .beta = lam__opt_f64(opts->beta, d.beta),
                                        .k = lam__opt_f64(opts->k, d.k)};
}

static lam_status lam__lrn_check(int64_t size, const lam_local_response_norm_opts *o, const char *fn) {
  if (size < 1 || size > (int64_t)1 << 30)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: size %lld must be >= 1", fn, (long long)size);
  if (!isfinite(o->alpha) || !isfinite(o->beta) || !isfinite(o->k))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: alpha %g, beta %g and k %g must be finite", fn,
                     o->alpha, o->beta, o->k);
  return LAM_OK;
}

lam_tensor *lam_local_response_norm(lam_tensor *x, int64_t size,
                                    const lam_local_response_norm_opts *opts) {
  const char *fn = "lam_local_response_norm";
  if (!x) return lam__null_input(fn, "x");
  const lam_local_response_norm_opts o = lam__lrn_resolve(opts);
  if (lam__lrn_check(size, &o, fn) != LAM_OK) return NULL;
  char b[LAM__SHAPE_STR];
  if (x->ndim < 3 || x->ndim > 5)
    return lam__fail(LAM_ERR_SHAPE, "%s: x must be [N, C, ...] with 3 to 5 dims, got %s", fn,
                     lam__shape_str(x->ndim, x->shape, b)), NULL;
  if (!lam_dtype_is_float(x->dtype) || x->dtype == LAM_F16)
    return lam__fail(LAM_ERR_DTYPE, "%s: x must be f32 or f64, got %s", fn,
                     lam_dtype_name(x->dtype)), NULL;
  const int64_t N = x->shape[0], C = x->shape[1], rest = x->numel / (N * C);
  lam_tensor *sq = lam_mul(x, x);
  lam_tensor *v = sq ? lam_reshape(sq, 4, (int64_t[]){N, 1, C, rest}) : NULL;
  const int64_t pads[8] = {0, 0, 0, 0, size / 2, (size - 1) / 2, 0, 0};
  lam_tensor *pd = v ? lam_pad(v, pads, LAM_PAD_CONSTANT, 0) : NULL;
  lam_pool_opts po = lam_pool_defaults();
  po.kernel[0] = (int)size, po.kernel[1] = 1, po.stride[0] = po.stride[1] = 1;
  lam_tensor *av = pd ? lam_avg_pool2d(pd, &po) : NULL;
  lam_tensor *back = av ? lam_reshape(av, x->ndim, x->shape) : NULL;
  lam_tensor *sc = back ? lam_mul_scalar(back, o.alpha) : NULL;
  lam_tensor *sh = sc ? lam_add_scalar(sc, o.k) : NULL;
  lam_tensor *dv = sh ? lam_pow_scalar(sh, o.beta) : NULL;
  lam_tensor *y = dv ? lam_div(x, dv) : NULL;
  lam_tensor *all[] = {sq, v, pd, av, back, sc, sh, dv};
  for (int i = 0; i < 8; i++) lam_tensor_free(all[i]);
  if (!y) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", lam_last_error());
    if (strncmp(msg, fn, strlen(fn)) != 0) lam__fail(lam_last_status(), "%s: %s", fn, msg);
  }
  return y;
}

typedef struct {
  int64_t size;
  lam_local_response_norm_opts o;
} lam__lrn;

static lam_status lam__lrn_apply(lam_layer *self, lam_ptree *params, lam_ptree *state, lam_tensor *x,
                                 const lam_apply_opts *opts, lam_tensor **out) {
  (void)params, (void)state, (void)opts;
  const lam__lrn *l = self->impl;
  if (x->ndim < 3 || x->ndim > 5) {
    char b[LAM__SHAPE_STR];
    return lam__fail(LAM_ERR_SHAPE, "lam_layer_apply: local_response_norm expects [N, C, ...] with "
                     "3 to 5 dims, got %s", lam__shape_str(x->ndim, x->shape, b));
  }
  *out = lam_local_response_norm(x, l->size, &l->o);
  return *out ? LAM_OK : lam_last_status();
}

static const lam_layer_vtable lam__lrn_vt = {"local_response_norm", lam__no_params_init,
                                             lam__lrn_apply, lam__free_impl};

lam_layer *lam_nn_local_response_norm(int64_t size, const lam_local_response_norm_opts *opts) {
  const char *fn = "lam_nn_local_response_norm";
  const lam_local_response_norm_opts r = lam__lrn_resolve(opts);
  if (lam__lrn_check(size, &r, fn) != LAM_OK) return NULL;
  /* the options as given (a resolved LAM_ZERO would read as the default) */
  lam__lrn c = {size, opts ? *opts : lam_local_response_norm_defaults()};
  lam__lrn *l = malloc(sizeof *l);
  if (!l) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn), NULL;
  *l = c;
  lam_layer *layer = lam_nn_custom(&lam__lrn_vt, l);
  if (!layer) free(l);
  return layer;
}
