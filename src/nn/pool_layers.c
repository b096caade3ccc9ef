/* nn/pool_layers.c: LP pooling (lam_lp_pool1d/2d/3d, made of other ops, as
 * torch's functional form) and the pooling layers over the ops of
 * lamina/pool.h that conv_layers.c does not make: LP pools, max unpools
 * (two inputs: lam_nn_max_unpool_apply) and fractional max pools, plus
 * lam_nn_max_pool_apply, which returns a max-pool layer's indices. The
 * layers have no params; constructors validate their options and return
 * NULL with a message, apply checks the input's rank and names the layer. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/elementwise.h"
#include "lamina/pool.h"
#include "nn/nn_internal.h"
#include "nn/pool_internal.h"

static const char *const lam__pxdesc[] = {"", "[N, C, L]", "[N, C, H, W]", "[N, C, D, H, W]"};

static lam_status lam__pool_rank(const char *what, lam_tensor *x, int nsp) {
  if (x->ndim == nsp + 2) return LAM_OK;
  char b[LAM__SHAPE_STR];
  return lam__fail(LAM_ERR_SHAPE, "%s expects %s, got %s", what, lam__pxdesc[nsp],
                   lam__shape_str(x->ndim, x->shape, b));
}

/* ---- LP pooling ------------------------------------------------------------------ */

/* Checks the options LP pooling takes (kernel, stride, ceil_mode only). */
static lam_status lam__lp_check(int nsp, double p, const lam_pool_opts *o, const char *fn) {
  if (!(p != 0 && isfinite(p)))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: norm_type %g must be finite and nonzero", fn, p);
  if (!o) return LAM_OK;
  if (o->exclude_pad || o->divisor_override)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                     "%s: LP pools take no exclude_pad or divisor_override (as torch)", fn);
  for (int i = 0; i < nsp; i++) {
    if (o->padding[i] || o->dilation[i] > 1)
      return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                       "%s: padding %d, dilation %d in spatial dim %d: LP pools take none (as torch)",
                       fn, o->padding[i], o->dilation[i], i);
    if (o->kernel[i] < 0 || o->stride[i] < 0 || o->dilation[i] < 0)
      return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                       "%s: kernel %d, stride %d of spatial dim %d must be >= 1 (0: default)", fn,
                       o->kernel[i], o->stride[i], i);
  }
  return LAM_OK;
}

static lam_tensor *lam__lp_pool(int nsp, lam_tensor *x, double p, const lam_pool_opts *opts,
                                const char *fn) {
  if (!x) return lam__null_input(fn, "x");
  if (lam__lp_check(nsp, p, opts, fn) != LAM_OK) return NULL;
  if (lam__pool_rank(fn, x, nsp) != LAM_OK) return NULL;
  lam_pool_opts o = lam_pool_defaults();
  double K = 1;
  for (int i = 0; i < nsp; i++) {
    if (opts && opts->kernel[i]) o.kernel[i] = opts->kernel[i];
    if (opts) o.stride[i] = opts->stride[i];
    K *= o.kernel[i];
  }
  o.ceil_mode = opts && opts->ceil_mode;
  /* torch: (sign(s) * relu(|s|)).mul(K).pow(1/p), s = avg_pool(x.pow(p)) */
  lam_tensor *xp = lam_pow_scalar(x, p), *s = NULL;
  if (xp) s = nsp == 1 ? lam_avg_pool1d(xp, &o) : nsp == 2 ? lam_avg_pool2d(xp, &o) : lam_avg_pool3d(xp, &o);
  lam_tensor_free(xp);
  if (!s) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", lam_last_error());
    return lam__fail(lam_last_status(), "%s: %s", fn, msg), NULL;
  }
  lam_tensor *sg = lam_sign(s), *ab = lam_abs(s);
  lam_tensor *rl = ab ? lam_relu(ab) : NULL;
  lam_tensor *t = sg && rl ? lam_mul(sg, rl) : NULL;
  lam_tensor *u = t ? lam_mul_scalar(t, K) : NULL;
  lam_tensor *y = u ? lam_pow_scalar(u, 1.0 / p) : NULL;
  lam_tensor_free(s), lam_tensor_free(sg), lam_tensor_free(ab), lam_tensor_free(rl);
  lam_tensor_free(t), lam_tensor_free(u);
  return y;
}

lam_tensor *lam_lp_pool1d(lam_tensor *x, double norm_type, const lam_pool_opts *opts) {
  return lam__lp_pool(1, x, norm_type, opts, "lam_lp_pool1d");
}
lam_tensor *lam_lp_pool2d(lam_tensor *x, double norm_type, const lam_pool_opts *opts) {
  return lam__lp_pool(2, x, norm_type, opts, "lam_lp_pool2d");
}
lam_tensor *lam_lp_pool3d(lam_tensor *x, double norm_type, const lam_pool_opts *opts) {
  return lam__lp_pool(3, x, norm_type, opts, "lam_lp_pool3d");
}

/* ---- the layers ------------------------------------------------------------------ */

enum { LAM__PL_LP, LAM__PL_UNPOOL, LAM__PL_FRAC };

typedef struct {
  int kind, nsp;
  double p;
  lam_pool_opts o;
  lam_max_unpool_opts u;
  lam_fractional_max_pool_opts f;
} lam__pool_layer;

static lam_tensor *lam__frac_run(const lam__pool_layer *l, lam_tensor *x, const lam_apply_opts *opts,
                                 const char *name, lam_tensor **indices) {
  if (!opts || !opts->rng)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                     "lam_layer_apply: %s needs an rng key (lam_apply_opts.rng) for its samples",
                     name), NULL;
  return l->nsp == 2 ? lam_fractional_max_pool2d(x, *opts->rng, &l->f, indices)
                     : lam_fractional_max_pool3d(x, *opts->rng, &l->f, indices);
}

static lam_status lam__pool_layer_apply(lam_layer *self, lam_ptree *params, lam_ptree *state,
                                        lam_tensor *x, const lam_apply_opts *opts, lam_tensor **out) {
  (void)params, (void)state;
  const lam__pool_layer *l = self->impl;
  char what[64];
  snprintf(what, sizeof what, "lam_layer_apply: %s", self->vt->name);
  lam_status st = lam__pool_rank(what, x, l->nsp);
  if (st != LAM_OK) return st;
  lam_tensor *y = NULL;
  switch (l->kind) {
    case LAM__PL_LP:
      y = l->nsp == 1 ? lam_lp_pool1d(x, l->p, &l->o)
        : l->nsp == 2 ? lam_lp_pool2d(x, l->p, &l->o)
                      : lam_lp_pool3d(x, l->p, &l->o);
      break;
    case LAM__PL_UNPOOL:
      return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                       "lam_layer_apply: %s takes x and indices: use lam_nn_max_unpool_apply",
                       self->vt->name);
    default: y = lam__frac_run(l, x, opts, self->vt->name, NULL); break;
  }
  *out = y;
  return y ? LAM_OK : lam_last_status();
}

#define LAM__PV(name) {name, lam__no_params_init, lam__pool_layer_apply, lam__free_impl}
static const lam_layer_vtable lam__pool_vt[][4] = {
    {LAM__PV(""), LAM__PV("lp_pool1d"), LAM__PV("lp_pool2d"), LAM__PV("lp_pool3d")},
    {LAM__PV(""), LAM__PV("max_unpool1d"), LAM__PV("max_unpool2d"), LAM__PV("max_unpool3d")},
    {LAM__PV(""), LAM__PV(""), LAM__PV("fractional_max_pool2d"), LAM__PV("fractional_max_pool3d")}};
#undef LAM__PV

static lam_layer *lam__pool_layer_new(const lam__pool_layer *cfg, const char *fn) {
  lam__pool_layer *l = malloc(sizeof *l);
  if (!l) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn), NULL;
  *l = *cfg;
  lam_layer *layer = lam_nn_custom(&lam__pool_vt[l->kind][l->nsp], l);
  if (!layer) free(l);
  return layer;
}

/* Returns the layer's config when it is one of this file's of that kind. */
static const lam__pool_layer *lam__pool_layer_of(const lam_layer *layer, int kind) {
  for (int n = 1; n <= 3; n++)
    if (layer->vt == &lam__pool_vt[kind][n]) return layer->impl;
  return NULL;
}

static lam_layer *lam__lp_layer(int nsp, double p, const lam_pool_opts *opts, const char *fn) {
  if (lam__lp_check(nsp, p, opts, fn) != LAM_OK) return NULL;
  lam__pool_layer c;
  memset(&c, 0, sizeof c);
  c.kind = LAM__PL_LP, c.nsp = nsp, c.p = p;
  c.o = opts ? *opts : lam_pool_defaults();
  return lam__pool_layer_new(&c, fn);
}
lam_layer *lam_nn_lp_pool1d(double norm_type, const lam_pool_opts *opts) {
  return lam__lp_layer(1, norm_type, opts, "lam_nn_lp_pool1d");
}
lam_layer *lam_nn_lp_pool2d(double norm_type, const lam_pool_opts *opts) {
  return lam__lp_layer(2, norm_type, opts, "lam_nn_lp_pool2d");
}
lam_layer *lam_nn_lp_pool3d(double norm_type, const lam_pool_opts *opts) {
  return lam__lp_layer(3, norm_type, opts, "lam_nn_lp_pool3d");
}

static lam_layer *lam__unpool_layer(int nsp, const lam_max_unpool_opts *opts, const char *fn) {
  lam__pool_layer c;
  memset(&c, 0, sizeof c);
  c.kind = LAM__PL_UNPOOL, c.nsp = nsp;
  c.u = opts ? *opts : lam_max_unpool_defaults();
  for (int i = 0; i < nsp; i++)
    if (c.u.kernel[i] < 0 || c.u.stride[i] < 0 || c.u.padding[i] < 0 || c.u.output_size[i] < 0)
      return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                       "%s: kernel %d, stride %d, padding %d and output size %lld of spatial dim %d "
                       "must be >= 0 (0: default)",
                       fn, c.u.kernel[i], c.u.stride[i], c.u.padding[i],
                       (long long)c.u.output_size[i], i), NULL;
  return lam__pool_layer_new(&c, fn);
}
lam_layer *lam_nn_max_unpool1d(const lam_max_unpool_opts *opts) {
  return lam__unpool_layer(1, opts, "lam_nn_max_unpool1d");
}
lam_layer *lam_nn_max_unpool2d(const lam_max_unpool_opts *opts) {
  return lam__unpool_layer(2, opts, "lam_nn_max_unpool2d");
}
lam_layer *lam_nn_max_unpool3d(const lam_max_unpool_opts *opts) {
  return lam__unpool_layer(3, opts, "lam_nn_max_unpool3d");
}

lam_status lam_nn_max_unpool_apply(lam_layer *layer, lam_tensor *x, lam_tensor *indices,
                                   const int64_t *output_size, lam_tensor **out) {
  const char *fn = "lam_nn_max_unpool_apply";
  if (!layer || !out)
    return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, layer ? "out" : "layer");
  *out = NULL;
  const lam__pool_layer *l = lam__pool_layer_of(layer, LAM__PL_UNPOOL);
  if (!l)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: layer %s is not a max_unpool layer", fn,
                     lam_layer_name(layer));
  if (!x) return lam__null_input(fn, "x"), lam_last_status();
  if (!indices) return lam__null_input(fn, "indices"), lam_last_status();
  char what[64];
  snprintf(what, sizeof what, "%s: %s", fn, layer->vt->name);
  lam_status st = lam__pool_rank(what, x, l->nsp);
  if (st != LAM_OK) return st;
  lam_max_unpool_opts u = l->u;
  if (output_size)
    for (int i = 0; i < l->nsp; i++) u.output_size[i] = output_size[i];
  lam_tensor *y = l->nsp == 1 ? lam_max_unpool1d(x, indices, &u)
                : l->nsp == 2 ? lam_max_unpool2d(x, indices, &u)
                              : lam_max_unpool3d(x, indices, &u);
  *out = y;
  return y ? LAM_OK : lam_last_status();
}

static lam_layer *lam__frac_layer(int nsp, const lam_fractional_max_pool_opts *opts, const char *fn) {
  lam__pool_layer c;
  memset(&c, 0, sizeof c);
  c.kind = LAM__PL_FRAC, c.nsp = nsp;
  c.f = opts ? *opts : lam_fractional_max_pool_defaults();
  if (c.f.samples)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                     "%s: samples must be NULL (the layer draws them; pass explicit samples to "
                     "lam_fractional_max_pool%dd)", fn, nsp), NULL;
  for (int i = 0; i < nsp; i++) {
    const double r = c.f.output_ratio[i];
    if (c.f.kernel[i] < 0 || c.f.output_size[i] < 0 || (!c.f.output_size[i] && r != 0 && !(r > 0 && r < 1)))
      return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                       "%s: kernel %d and output size %lld of spatial dim %d must be >= 0 (0: "
                       "default), output_ratio %g in (0, 1)",
                       fn, c.f.kernel[i], (long long)c.f.output_size[i], i, r), NULL;
  }
  return lam__pool_layer_new(&c, fn);
}
lam_layer *lam_nn_fractional_max_pool2d(const lam_fractional_max_pool_opts *opts) {
  return lam__frac_layer(2, opts, "lam_nn_fractional_max_pool2d");
}
lam_layer *lam_nn_fractional_max_pool3d(const lam_fractional_max_pool_opts *opts) {
  return lam__frac_layer(3, opts, "lam_nn_fractional_max_pool3d");
}

/* ---- indices from a max-pool layer ----------------------------------------------- */

lam_status lam_nn_max_pool_apply(lam_layer *layer, lam_tensor *x, const lam_apply_opts *opts,
                                 lam_tensor **out, lam_tensor **indices) {
  const char *fn = "lam_nn_max_pool_apply";
  if (!layer || !out || !indices)
    return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn,
                     !layer ? "layer" : !out ? "out" : "indices");
  *out = NULL, *indices = NULL;
  if (!x) return lam__null_input(fn, "x"), lam_last_status();
  char what[64];
  snprintf(what, sizeof what, "%s: %s", fn, lam_layer_name(layer));
  lam_tensor *y = NULL;
  int adaptive = 0, nsp = 0;
  lam_pool_opts p;
  int64_t o[3];
  const lam__pool_layer *l = lam__pool_layer_of(layer, LAM__PL_FRAC);
  if (l) {
    lam_status st = lam__pool_rank(what, x, l->nsp);
    if (st != LAM_OK) return st;
    y = lam__frac_run(l, x, opts, layer->vt->name, indices);
  } else if (lam__max_pool_layer_config(layer, &adaptive, &nsp, &p, o)) {
    lam_status st = lam__pool_rank(what, x, nsp);
    if (st != LAM_OK) return st;
    if (adaptive)
      y = nsp == 1 ? lam_adaptive_max_pool1d_with_indices(x, o[0], indices)
        : nsp == 2 ? lam_adaptive_max_pool2d_with_indices(x, o[0], o[1], indices)
                   : lam_adaptive_max_pool3d_with_indices(x, o[0], o[1], o[2], indices);
    else
      y = nsp == 1 ? lam_max_pool1d_with_indices(x, &p, indices)
        : nsp == 2 ? lam_max_pool2d_with_indices(x, &p, indices)
                   : lam_max_pool3d_with_indices(x, &p, indices);
  } else {
    return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                     "%s: layer %s is not a max pool (max_pool1d/2d/3d, adaptive_max_pool1d/2d/3d, "
                     "fractional_max_pool2d/3d)", fn, lam_layer_name(layer));
  }
  *out = y;
  return y ? LAM_OK : lam_last_status();
}
