/* nn/conv_layers.c: the convolution, transposed convolution, pooling,
 * adaptive/global pooling and upsampling layers over the ops of
 * lamina/conv.h. Conv layers own "weight" (PyTorch layout) and "bias";
 * the others have no params. Constructors validate their options and
 * return NULL with a message; apply checks the input's rank, channels and
 * dtype and names the layer in its message. */
#include <stdlib.h>
#include <string.h>

#include "lamina/conv.h"
#include "nn/nn_internal.h"
#include "nn/pool_internal.h"

static const char *const lam__xdesc[] = {"", "[N, C, L]", "[N, C, H, W]", "[N, C, D, H, W]"};

/* Checks rank nsp+2 (nsp 0: any rank >= 3) and, when channels > 0, axis 1. */
static lam_status lam__check_spatial(const char *layer, lam_tensor *x, int nsp, int64_t channels) {
  char b[LAM__SHAPE_STR];
  if (nsp ? x->ndim != nsp + 2 : (x->ndim < 3 || x->ndim > 5))
    return lam__fail(LAM_ERR_SHAPE, "lam_layer_apply: %s expects %s, got %s", layer,
                     nsp ? lam__xdesc[nsp] : "[N, C, ...] with 1 to 3 spatial dims",
                     lam__shape_str(x->ndim, x->shape, b));
  if (channels > 0 && x->shape[1] != channels)
    return lam__fail(LAM_ERR_SHAPE, "lam_layer_apply: %s expects %lld channels, got %s", layer,
                     (long long)channels, lam__shape_str(x->ndim, x->shape, b));
  return LAM_OK;
}

/* ---- convolution and transposed convolution ------------------------------------ */

/* The options' defaults live with the layers: their init fields are for
 * layers only (the ops read the geometry fields, where zero is the default). */
lam_conv_opts lam_conv_defaults(void) {
  lam_conv_opts o;
  memset(&o, 0, sizeof o);
  for (int d = 0; d < 3; d++) o.kernel[d] = 3, o.stride[d] = 1, o.dilation[d] = 1;
  o.padding = LAM_PADDING_SAME;
  o.groups = 1;
  o.no_bias = false;
  o.weight_init = lam_init_glorot_uniform();
  o.bias_init = lam_init_zeros();
  return o;
}

lam_conv_transpose_opts lam_conv_transpose_defaults(void) {
  lam_conv_transpose_opts o;
  memset(&o, 0, sizeof o);
  for (int d = 0; d < 3; d++) o.kernel[d] = 3, o.stride[d] = 1, o.dilation[d] = 1;
  o.groups = 1;
  o.weight_init = lam_init_glorot_uniform();
  o.bias_init = lam_init_zeros();
  return o;
}


typedef struct {
  int nsp, transpose;
  int64_t in, out;
  int64_t k[3];
  lam_conv_opts o;
  lam_conv_transpose_opts t;
} lam__convl;

static const char *lam__convl_name(const lam__convl *c) {
  static const char *const n[2][4] = {{"", "conv1d", "conv2d", "conv3d"},
                                      {"", "conv_transpose1d", "conv_transpose2d",
                                       "conv_transpose3d"}};
  return n[c->transpose][c->nsp];
}

static void lam__convl_wshape(const lam__convl *c, int64_t *ws) {
  const int64_t G = c->transpose ? c->t.groups : c->o.groups;
  ws[0] = c->transpose ? c->in : c->out;
  ws[1] = c->transpose ? c->out / G : c->in / G;
  for (int i = 0; i < c->nsp; i++) ws[2 + i] = c->k[i];
}

static lam_status lam__convl_init(lam_layer *self, lam_ctx *ctx, lam_rng_key key, lam_dtype dtype,
                                  lam_ptree *params, lam_ptree *state) {
  lam__convl *c = self->impl;
  const lam_init *wi = c->transpose ? &c->t.weight_init : &c->o.weight_init;
  const lam_init *bi = c->transpose ? &c->t.bias_init : &c->o.bias_init;
  const bool bias = !(c->transpose ? c->t.no_bias : c->o.no_bias);
  lam_init w_init = lam_init_or(wi, lam_init_glorot_uniform());
  lam_init b_init = lam_init_or(bi, lam_init_zeros());
  int64_t ws[5];
  lam__convl_wshape(c, ws);
  lam_status st = lam__param_make(params, "weight", &w_init, ctx, key, dtype, c->nsp + 2, ws);
  if (st == LAM_OK && bias) st = lam__param_make(params, "bias", &b_init, ctx, key, dtype, 1, &c->out);
  return st;
}

static lam_status lam__convl_apply(lam_layer *self, lam_ptree *params, lam_ptree *state,
                                   lam_tensor *x, const lam_apply_opts *opts, lam_tensor **out) {
  lam__convl *c = self->impl;
  const char *name = lam__convl_name(c);
  const bool bias = !(c->transpose ? c->t.no_bias : c->o.no_bias);
  int64_t ws[5];
  lam__convl_wshape(c, ws);
  lam_tensor *w = lam__param_get(params, name, "weight", c->nsp + 2, ws);
  lam_tensor *b = bias ? lam__param_get(params, name, "bias", 1, &c->out) : NULL;
  if (!w || (bias && !b)) return lam_last_status();
  lam_status st = lam__check_spatial(name, x, c->nsp, c->in);
  if (st != LAM_OK) return st;
  if (x->dtype != w->dtype)
    return lam__fail(LAM_ERR_DTYPE, "lam_layer_apply: %s: input is %s, params are %s", name,
                     lam_dtype_name(x->dtype), lam_dtype_name(w->dtype));
  lam_tensor *y;
  if (c->transpose) {
    y = c->nsp == 1 ? lam_conv_transpose1d(x, w, b, &c->t)
      : c->nsp == 2 ? lam_conv_transpose2d(x, w, b, &c->t)
                    : lam_conv_transpose3d(x, w, b, &c->t);
  } else {
    y = c->nsp == 1 ? lam_conv1d(x, w, b, &c->o)
      : c->nsp == 2 ? lam_conv2d(x, w, b, &c->o)
                    : lam_conv3d(x, w, b, &c->o);
  }
  *out = y;
  return y ? LAM_OK : lam_last_status();
}

static const lam_layer_vtable lam__convl_vt[2][3] = {
    {{"conv1d", lam__convl_init, lam__convl_apply, lam__free_impl},
     {"conv2d", lam__convl_init, lam__convl_apply, lam__free_impl},
     {"conv3d", lam__convl_init, lam__convl_apply, lam__free_impl}},
    {{"conv_transpose1d", lam__convl_init, lam__convl_apply, lam__free_impl},
     {"conv_transpose2d", lam__convl_init, lam__convl_apply, lam__free_impl},
     {"conv_transpose3d", lam__convl_init, lam__convl_apply, lam__free_impl}}};

/* Validates the per-dim options shared by both kinds; fills c->k. */
static lam_status lam__convl_check(lam__convl *c, const int *kernel, const int *stride,
                                   const int *dilation, int *groups, const char *fn) {
  if (c->in < 1 || c->out < 1)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                     "%s: in_channels %lld and out_channels %lld must be >= 1", fn,
                     (long long)c->in, (long long)c->out);
  if (*groups == 0) *groups = 1;
  if (*groups < 1 || c->in % *groups != 0 || c->out % *groups != 0)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                     "%s: in_channels %lld and out_channels %lld must be divisible by groups %d",
                     fn, (long long)c->in, (long long)c->out, *groups);
  for (int i = 0; i < c->nsp; i++) {
    if (kernel[i] < 0 || stride[i] < 0 || dilation[i] < 0)
      return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                       "%s: kernel %d, stride %d and dilation %d of spatial dim %d must be >= 1 "
                       "(0: default)",
                       fn, kernel[i], stride[i], dilation[i], i);
    c->k[i] = kernel[i] ? kernel[i] : 3;
  }
  return LAM_OK;
}

static lam_layer *lam__convl_new(int nsp, int transpose, int64_t in, int64_t out,
                                 const lam_conv_opts *o, const lam_conv_transpose_opts *t,
                                 const char *fn) {
  const lam_init *wi = transpose ? (t ? &t->weight_init : NULL) : (o ? &o->weight_init : NULL);
  const lam_init *bi = transpose ? (t ? &t->bias_init : NULL) : (o ? &o->bias_init : NULL);
  if (lam__init_check_opt(fn, "weight_init", wi) != LAM_OK ||
      lam__init_check_opt(fn, "bias_init", bi) != LAM_OK)
    return NULL;
  lam__convl *c = calloc(1, sizeof *c);
  if (!c) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn), NULL;
  c->nsp = nsp, c->transpose = transpose, c->in = in, c->out = out;
  lam_status st;
  if (transpose) {
    c->t = t ? *t : lam_conv_transpose_defaults();
    st = lam__convl_check(c, c->t.kernel, c->t.stride, c->t.dilation, &c->t.groups, fn);
    for (int i = 0; i < nsp && st == LAM_OK; i++) {
      const int s = c->t.stride[i] ? c->t.stride[i] : 1, d = c->t.dilation[i] ? c->t.dilation[i] : 1;
      if (c->t.padding[i] < 0 || c->t.output_padding[i] < 0 ||
          (c->t.output_padding[i] >= s && c->t.output_padding[i] >= d))
        st = lam__fail(LAM_ERR_INVALID_ARGUMENT,
                       "%s: padding %d must be >= 0 and output_padding %d in [0, max(stride, "
                       "dilation)) in spatial dim %d",
                       fn, c->t.padding[i], c->t.output_padding[i], i);
      if (st == LAM_OK && c->t.output_size[i] < 0)
        st = lam__fail(LAM_ERR_INVALID_ARGUMENT,
                       "%s: output_size %lld of spatial dim %d must be >= 0 (0: from "
                       "output_padding)",
                       fn, (long long)c->t.output_size[i], i);
    }
  } else {
    c->o = o ? *o : lam_conv_defaults();
    st = lam__convl_check(c, c->o.kernel, c->o.stride, c->o.dilation, &c->o.groups, fn);
    if (st == LAM_OK && ((int)c->o.padding < 0 || c->o.padding > LAM_PADDING_EXPLICIT))
      st = lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: unknown padding mode %d", fn, (int)c->o.padding);
    if (st == LAM_OK && ((int)c->o.padding_mode < LAM_PAD_CONSTANT ||
                         c->o.padding_mode > LAM_PAD_CIRCULAR))
      st = lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: unknown padding_mode %d", fn,
                     (int)c->o.padding_mode);
    if (st == LAM_OK && c->o.padding == LAM_PADDING_CAUSAL && nsp != 1)
      st = lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: causal padding is for 1-D convolutions only", fn);
    for (int i = 0; i < nsp && st == LAM_OK; i++)
      if (c->o.padding == LAM_PADDING_EXPLICIT && (c->o.pad[i][0] < 0 || c->o.pad[i][1] < 0))
        st = lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: padding of spatial dim %d must be >= 0", fn, i);
    /* The functional op reads the kernel from the weight; keep it consistent. */
    for (int i = 0; i < nsp; i++) c->o.kernel[i] = (int)c->k[i];
  }
  if (transpose)
    for (int i = 0; i < nsp; i++) c->t.kernel[i] = (int)c->k[i];
  lam_layer *l = st == LAM_OK ? lam_nn_custom(&lam__convl_vt[transpose][nsp - 1], c) : NULL;
  if (!l) free(c);
  return l;
}

lam_layer *lam_nn_conv1d(int64_t in_channels, int64_t out_channels, const lam_conv_opts *opts) {
  return lam__convl_new(1, 0, in_channels, out_channels, opts, NULL, "lam_nn_conv1d");
}
lam_layer *lam_nn_conv2d(int64_t in_channels, int64_t out_channels, const lam_conv_opts *opts) {
  return lam__convl_new(2, 0, in_channels, out_channels, opts, NULL, "lam_nn_conv2d");
}
lam_layer *lam_nn_conv3d(int64_t in_channels, int64_t out_channels, const lam_conv_opts *opts) {
  return lam__convl_new(3, 0, in_channels, out_channels, opts, NULL, "lam_nn_conv3d");
}
lam_layer *lam_nn_conv_transpose1d(int64_t in_channels, int64_t out_channels,
                                const lam_conv_transpose_opts *opts) {
  return lam__convl_new(1, 1, in_channels, out_channels, NULL, opts, "lam_nn_conv_transpose1d");
}
lam_layer *lam_nn_conv_transpose2d(int64_t in_channels, int64_t out_channels,
                                const lam_conv_transpose_opts *opts) {
  return lam__convl_new(2, 1, in_channels, out_channels, NULL, opts, "lam_nn_conv_transpose2d");
}
lam_layer *lam_nn_conv_transpose3d(int64_t in_channels, int64_t out_channels,
                                const lam_conv_transpose_opts *opts) {
  return lam__convl_new(3, 1, in_channels, out_channels, NULL, opts, "lam_nn_conv_transpose3d");
}

/* ---- pooling and upsampling (no params) ---------------------------------------- */

enum {
  LAM__L_MAX,
  LAM__L_AVG,
  LAM__L_AMAX,
  LAM__L_AAVG,
  LAM__L_MEANMAX,
  LAM__L_GAVG,
  LAM__L_GMAX,
  LAM__L_UPS
};

typedef struct {
  int kind, nsp;
  lam_pool_opts p;
  int64_t out[3];
  bool concat;
  lam_upsample_opts u;
} lam__nopar;

static lam_status lam__nopar_apply(lam_layer *self, lam_ptree *params, lam_ptree *state,
                                   lam_tensor *x, const lam_apply_opts *opts, lam_tensor **out) {
  lam__nopar *l = self->impl;
  lam_status st = lam__check_spatial(self->vt->name, x, l->nsp, 0);
  if (st != LAM_OK) return st;
  lam_tensor *y = NULL;
  const int n = l->nsp;
  switch (l->kind) {
    case LAM__L_MAX:
      y = n == 1 ? lam_max_pool1d(x, &l->p)
        : n == 2 ? lam_max_pool2d(x, &l->p)
                 : lam_max_pool3d(x, &l->p);
      break;
    case LAM__L_AVG:
      y = n == 1 ? lam_avg_pool1d(x, &l->p)
        : n == 2 ? lam_avg_pool2d(x, &l->p)
                 : lam_avg_pool3d(x, &l->p);
      break;
    case LAM__L_AMAX:
      y = n == 1 ? lam_adaptive_max_pool1d(x, l->out[0])
        : n == 2 ? lam_adaptive_max_pool2d(x, l->out[0], l->out[1])
                 : lam_adaptive_max_pool3d(x, l->out[0], l->out[1], l->out[2]);
      break;
    case LAM__L_AAVG:
      y = n == 1 ? lam_adaptive_avg_pool1d(x, l->out[0])
        : n == 2 ? lam_adaptive_avg_pool2d(x, l->out[0], l->out[1])
                 : lam_adaptive_avg_pool3d(x, l->out[0], l->out[1], l->out[2]);
      break;
    case LAM__L_MEANMAX:
      y = lam_adaptive_mean_max_pool2d(x, l->out[0], l->out[1], l->concat);
      break;
    case LAM__L_GAVG: y = lam_global_avg_pool(x); break;
    case LAM__L_GMAX: y = lam_global_max_pool(x); break;
    default:
      y = n == 1 ? lam_upsample1d(x, &l->u)
        : n == 2 ? lam_upsample2d(x, &l->u)
                 : lam_upsample3d(x, &l->u);
      break;
  }
  *out = y;
  return y ? LAM_OK : lam_last_status();
}

#define LAM__NP(name) {name, lam__no_params_init, lam__nopar_apply, lam__free_impl}
/* [kind][nsp] (global pools at nsp 0), named as lam__nopar_name. */
static const lam_layer_vtable lam__nopar_vt[][4] = {
    {LAM__NP(""), LAM__NP("max_pool1d"), LAM__NP("max_pool2d"), LAM__NP("max_pool3d")},
    {LAM__NP(""), LAM__NP("avg_pool1d"), LAM__NP("avg_pool2d"), LAM__NP("avg_pool3d")},
    {LAM__NP(""), LAM__NP("adaptive_max_pool1d"), LAM__NP("adaptive_max_pool2d"), LAM__NP("adaptive_max_pool3d")},
    {LAM__NP(""), LAM__NP("adaptive_avg_pool1d"), LAM__NP("adaptive_avg_pool2d"), LAM__NP("adaptive_avg_pool3d")},
    {LAM__NP(""), LAM__NP(""), LAM__NP("adaptive_mean_max_pool2d"), LAM__NP("")},
    {LAM__NP("global_avg_pool"), LAM__NP(""), LAM__NP(""), LAM__NP("")},
    {LAM__NP("global_max_pool"), LAM__NP(""), LAM__NP(""), LAM__NP("")},
    {LAM__NP(""), LAM__NP("upsample1d"), LAM__NP("upsample2d"), LAM__NP("upsample3d")}};
#undef LAM__NP

static lam_layer *lam__nopar_new(const lam__nopar *cfg, const char *fn) {
  lam__nopar *l = malloc(sizeof *l);
  if (!l) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn), NULL;
  *l = *cfg;
  lam_layer *layer = lam_nn_custom(&lam__nopar_vt[l->kind][l->nsp], l);
  if (!layer) free(l);
  return layer;
}

bool lam__max_pool_layer_config(const lam_layer *layer, int *adaptive, int *nsp, lam_pool_opts *p,
                                int64_t *out) {
  for (int n = 1; n <= 3; n++)
    for (int a = 0; a < 2; a++)
      if (layer->vt == &lam__nopar_vt[a ? LAM__L_AMAX : LAM__L_MAX][n]) {
        const lam__nopar *l = layer->impl;
        *adaptive = a, *nsp = n, *p = l->p;
        for (int i = 0; i < 3; i++) out[i] = l->out[i];
        return true;
      }
  return false;
}

static lam_layer *lam__pool_layer(int kind, int nsp, const lam_pool_opts *opts, const char *fn) {
  lam__nopar c;
  memset(&c, 0, sizeof c);
  c.kind = kind, c.nsp = nsp;
  c.p = opts ? *opts : lam_pool_defaults();
  if (c.p.divisor_override < 0 || (kind == LAM__L_MAX && c.p.divisor_override))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                     "%s: divisor_override %d: must be >= 0 (0: none), and only average pools "
                     "take one", fn, c.p.divisor_override), NULL;
  for (int i = 0; i < nsp; i++) {
    const int k = c.p.kernel[i] ? c.p.kernel[i] : 2;
    if (c.p.kernel[i] < 0 || c.p.stride[i] < 0 || c.p.dilation[i] < 0 || c.p.padding[i] < 0)
      return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                       "%s: kernel %d, stride %d, dilation %d and padding %d of spatial dim %d "
                       "must be >= 0 (0: default)",
                       fn, c.p.kernel[i], c.p.stride[i], c.p.dilation[i], c.p.padding[i], i), NULL;
    if (c.p.padding[i] > k / 2)
      return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                       "%s: padding %d must be at most half the kernel %d in spatial dim %d", fn,
                       c.p.padding[i], k, i), NULL;
    if (kind == LAM__L_AVG && c.p.dilation[i] > 1)
      return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: average pools take no dilation", fn), NULL;
  }
  return lam__nopar_new(&c, fn);
}

lam_layer *lam_nn_max_pool1d(const lam_pool_opts *opts) { return lam__pool_layer(LAM__L_MAX, 1, opts, "lam_nn_max_pool1d"); }
lam_layer *lam_nn_max_pool2d(const lam_pool_opts *opts) { return lam__pool_layer(LAM__L_MAX, 2, opts, "lam_nn_max_pool2d"); }
lam_layer *lam_nn_max_pool3d(const lam_pool_opts *opts) { return lam__pool_layer(LAM__L_MAX, 3, opts, "lam_nn_max_pool3d"); }
lam_layer *lam_nn_avg_pool1d(const lam_pool_opts *opts) { return lam__pool_layer(LAM__L_AVG, 1, opts, "lam_nn_avg_pool1d"); }
lam_layer *lam_nn_avg_pool2d(const lam_pool_opts *opts) { return lam__pool_layer(LAM__L_AVG, 2, opts, "lam_nn_avg_pool2d"); }
lam_layer *lam_nn_avg_pool3d(const lam_pool_opts *opts) { return lam__pool_layer(LAM__L_AVG, 3, opts, "lam_nn_avg_pool3d"); }

static lam_layer *lam__adaptive_layer3(int kind, int nsp, const int64_t *o, bool concat,
                                       const char *fn) {
  for (int i = 0; i < nsp; i++)
    if (o[i] < 1)
      return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                       "%s: output sizes must be >= 1, got %lld in spatial dim %d", fn,
                       (long long)o[i], i), NULL;
  lam__nopar c;
  memset(&c, 0, sizeof c);
  c.kind = kind, c.nsp = nsp, c.concat = concat;
  for (int i = 0; i < nsp; i++) c.out[i] = o[i];
  return lam__nopar_new(&c, fn);
}

static lam_layer *lam__adaptive_layer(int kind, int nsp, int64_t a, int64_t b, bool concat,
                                      const char *fn) {
  return lam__adaptive_layer3(kind, nsp, (int64_t[]){a, b, 1}, concat, fn);
}

lam_layer *lam_nn_adaptive_avg_pool1d(int64_t out_l) {
  return lam__adaptive_layer(LAM__L_AAVG, 1, out_l, 1, false, "lam_nn_adaptive_avg_pool1d");
}
lam_layer *lam_nn_adaptive_avg_pool2d(int64_t out_h, int64_t out_w) {
  return lam__adaptive_layer(LAM__L_AAVG, 2, out_h, out_w, false, "lam_nn_adaptive_avg_pool2d");
}
lam_layer *lam_nn_adaptive_max_pool1d(int64_t out_l) {
  return lam__adaptive_layer(LAM__L_AMAX, 1, out_l, 1, false, "lam_nn_adaptive_max_pool1d");
}
lam_layer *lam_nn_adaptive_max_pool2d(int64_t out_h, int64_t out_w) {
  return lam__adaptive_layer(LAM__L_AMAX, 2, out_h, out_w, false, "lam_nn_adaptive_max_pool2d");
}
lam_layer *lam_nn_adaptive_avg_pool3d(int64_t out_d, int64_t out_h, int64_t out_w) {
  return lam__adaptive_layer3(LAM__L_AAVG, 3, (int64_t[]){out_d, out_h, out_w}, false,
                              "lam_nn_adaptive_avg_pool3d");
}
lam_layer *lam_nn_adaptive_max_pool3d(int64_t out_d, int64_t out_h, int64_t out_w) {
  return lam__adaptive_layer3(LAM__L_AMAX, 3, (int64_t[]){out_d, out_h, out_w}, false,
                              "lam_nn_adaptive_max_pool3d");
}
lam_layer *lam_nn_adaptive_mean_max_pool2d(int64_t out_h, int64_t out_w, bool concat) {
  return lam__adaptive_layer(LAM__L_MEANMAX, 2, out_h, out_w, concat, "lam_nn_adaptive_mean_max_pool2d");
}

lam_layer *lam_nn_global_avg_pool(void) {
  lam__nopar c;
  memset(&c, 0, sizeof c);
  c.kind = LAM__L_GAVG;
  return lam__nopar_new(&c, "lam_nn_global_avg_pool");
}

lam_layer *lam_nn_global_max_pool(void) {
  lam__nopar c;
  memset(&c, 0, sizeof c);
  c.kind = LAM__L_GMAX;
  return lam__nopar_new(&c, "lam_nn_global_max_pool");
}

static lam_layer *lam__upsample_layer(int nsp, const lam_upsample_opts *opts, const char *fn) {
  lam__nopar c;
  memset(&c, 0, sizeof c);
  c.kind = LAM__L_UPS, c.nsp = nsp;
  c.u = opts ? *opts : lam_upsample_defaults();
  if ((int)c.u.mode < 0 || c.u.mode > LAM_UPSAMPLE_CUBIC)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: unknown mode %d", fn, (int)c.u.mode), NULL;
  if (c.u.mode == LAM_UPSAMPLE_CUBIC && nsp != 2)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                     "%s: cubic mode is for 2-D inputs only (torch's bicubic)", fn), NULL;
  if (c.u.align_corners && c.u.mode != LAM_UPSAMPLE_LINEAR && c.u.mode != LAM_UPSAMPLE_CUBIC)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                     "%s: align_corners is only for linear and cubic modes", fn), NULL;
  for (int i = 0; i < nsp; i++)
    if (c.u.size[i] < 0 || c.u.scale[i] < 0 || (c.u.size[i] == 0 && !(c.u.scale[i] >= 0)))
      return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                       "%s: size %lld and scale %g of spatial dim %d must be >= 0 (0: default)", fn,
                       (long long)c.u.size[i], c.u.scale[i], i), NULL;
  return lam__nopar_new(&c, fn);
}

lam_layer *lam_nn_upsample1d(const lam_upsample_opts *opts) { return lam__upsample_layer(1, opts, "lam_nn_upsample1d"); }
lam_layer *lam_nn_upsample2d(const lam_upsample_opts *opts) { return lam__upsample_layer(2, opts, "lam_nn_upsample2d"); }
lam_layer *lam_nn_upsample3d(const lam_upsample_opts *opts) { return lam__upsample_layer(3, opts, "lam_nn_upsample3d"); }

const lam_conv_opts *lam__nn_conv2d_opts(const lam_layer *l) {
  if (!l || l->vt != &lam__convl_vt[0][1]) return NULL;
  return &((const lam__convl *)l->impl)->o;
}
