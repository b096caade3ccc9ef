/* nn/dense.c: linear, bilinear, identity, flatten and embedding layers
 * (with nn.Embedding's padding_idx and max_norm). All are compositions of
 * lamina ops, so their gradients come from the ops' backward rules. Params follow PyTorch's state_dict names and layouts. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/autodiff.h"
#include "lamina/dense.h"
#include "lamina/elementwise.h"
#include "lamina/linalg.h"
#include "lamina/reduce.h"
#include "lamina/shape.h"
#include "nn/nn_internal.h"

/* ---- linear ------------------------------------------------------------ */

typedef struct {
  int64_t in, out, in2; /* in2 > 0 for bilinear */
  lam_linear_opts o;
} lam__linear;

lam_linear_opts lam_linear_defaults(void) {
  lam_linear_opts o;
  o.no_bias = false;
  o.weight_init = lam_init_glorot_uniform();
  o.bias_init = lam_init_zeros();
  return o;
}

/* The options with zeros resolved (NULL: defaults); shared by bilinear. */
static lam_linear_opts lam__linear_resolve(const lam_linear_opts *opts) {
  lam_linear_opts def = lam_linear_defaults(), o = opts ? *opts : def;
  o.weight_init = lam_init_or(&o.weight_init, def.weight_init);
  o.bias_init = lam_init_or(&o.bias_init, def.bias_init);
  return o;
}

static lam_status lam__linear_init(lam_layer *self, lam_ctx *ctx, lam_rng_key key, lam_dtype dtype,
                                   lam_ptree *params, lam_ptree *state) {
  lam__linear *l = self->impl;
  lam_init w_init = l->o.weight_init, b_init = l->o.bias_init; /* resolved */
  lam_status st = l->in2 > 0
                      ? lam__param_make(params, "weight", &w_init, ctx, key, dtype, 3,
                                        (int64_t[]){l->out, l->in, l->in2})
                      : lam__param_make(params, "weight", &w_init, ctx, key, dtype, 2,
                                        (int64_t[]){l->out, l->in});
  if (st == LAM_OK && !l->o.no_bias)
    st = lam__param_make(params, "bias", &b_init, ctx, key, dtype, 1, &l->out);
  return st;
}

static lam_status lam__linear_apply(lam_layer *self, lam_ptree *params, lam_ptree *state,
                                    lam_tensor *x, const lam_apply_opts *opts, lam_tensor **out) {
  lam__linear *l = self->impl;
  lam_tensor *w = lam__param_get(params, "linear", "weight", 2, (int64_t[]){l->out, l->in});
  lam_tensor *b = !l->o.no_bias ? lam__param_get(params, "linear", "bias", 1, &l->out) : NULL;
  if (!w || (!l->o.no_bias && !b)) return lam_last_status();
  lam_status st = lam__check_input("linear", x, l->in, w->dtype);
  if (st != LAM_OK) return st;
  lam_tensor *y = lam_matmul_t(x, w, 0, 1);
  if (y && b) {
    lam_tensor *yb = lam_add(y, b);
    lam_tensor_free(y);
    y = yb;
  }
  *out = y;
  return y ? LAM_OK : lam_last_status();
}

static const lam_layer_vtable lam__linear_vt = {"linear", lam__linear_init, lam__linear_apply,
                                                lam__free_impl};

bool lam__linear_config(const lam_layer *layer, int64_t *in, int64_t *out, bool *no_bias) {
  if (!layer || layer->vt != &lam__linear_vt) return false;
  const lam__linear *l = layer->impl;
  *in = l->in, *out = l->out, *no_bias = l->o.no_bias;
  return true;
}

lam_layer *lam_nn_linear(int64_t in_features, int64_t out_features, const lam_linear_opts *opts) {
  if (in_features < 1 || out_features < 1)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "lam_nn_linear: in_features %lld and out_features %lld must be >= 1",
                     (long long)in_features, (long long)out_features), NULL;
  if (opts && (lam__init_check_opt("lam_nn_linear", "weight_init", &opts->weight_init) != LAM_OK ||
               lam__init_check_opt("lam_nn_linear", "bias_init", &opts->bias_init) != LAM_OK))
    return NULL;
  lam__linear *l = calloc(1, sizeof *l);
  if (!l) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "lam_nn_linear: out of host memory"), NULL;
  l->in = in_features;
  l->out = out_features;
  l->o = lam__linear_resolve(opts);
  lam_layer *layer = lam_nn_custom(&lam__linear_vt, l);
  if (!layer) free(l);
  return layer;
}

/* ---- bilinear -------------------------------------------------------------- */

lam_tensor *lam_bilinear(lam_tensor *x1, lam_tensor *x2, lam_tensor *weight, lam_tensor *bias) {
  const char *fn = "lam_bilinear";
  if (!x1) return lam__null_input(fn, "x1");
  if (!x2) return lam__null_input(fn, "x2");
  if (!weight) return lam__null_input(fn, "weight");
  if (weight->ndim != 3 || x1->ndim < 1 || x2->ndim != x1->ndim ||
      lam_tensor_dim(x1, -1) != weight->shape[1] || lam_tensor_dim(x2, -1) != weight->shape[2]) {
    char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR], b3[LAM__SHAPE_STR];
    return lam__fail(LAM_ERR_SHAPE, "%s: x1 %s and x2 %s do not fit weight %s [out, in1, in2]", fn,
                     lam__shape_str(x1->ndim, x1->shape, b1), lam__shape_str(x2->ndim, x2->shape, b2),
                     lam__shape_str(weight->ndim, weight->shape, b3)), NULL;
  }
  int64_t out = weight->shape[0], in1 = weight->shape[1], in2 = weight->shape[2];
  /* t[..., k, j] = sum_i x1[..., i] W[k, i, j]  via  x1 @ permute(W, [1, 0, 2]).reshape(in1, out*in2) */
  lam_tensor *wp = lam_permute(weight, (int[]){1, 0, 2});
  lam_tensor *w2 = lam_reshape(wp, 2, (int64_t[]){in1, out * in2});
  lam_tensor *t = lam_matmul(x1, w2);
  int64_t tshape[LAM_MAX_DIMS + 1];
  int nd = x1->ndim;
  for (int i = 0; i < nd - 1; i++) tshape[i] = x1->shape[i];
  tshape[nd - 1] = out;
  tshape[nd] = in2;
  lam_tensor *t3 = t ? lam_reshape(t, nd + 1, tshape) : NULL;
  lam_tensor *x2u = lam_unsqueeze(x2, -2);
  lam_tensor *prod = t3 && x2u ? lam_mul(t3, x2u) : NULL;
  lam_tensor *y = prod ? lam_sum(prod, 1, (int[]){-1}, 0) : NULL;
  lam_tensor_free(wp);
  lam_tensor_free(w2);
  lam_tensor_free(t);
  lam_tensor_free(t3);
  lam_tensor_free(x2u);
  lam_tensor_free(prod);
  if (y && bias) {
    lam_tensor *yb = lam_add(y, bias);
    lam_tensor_free(y);
    y = yb;
  }
  return y;
}

static lam_status lam__bilinear_apply(lam_layer *self, lam_ptree *params, lam_ptree *state,
                                      lam_tensor *x, const lam_apply_opts *opts, lam_tensor **out) {
  lam__linear *l = self->impl;
  lam_tensor *w = lam__param_get(params, "bilinear", "weight", 3, (int64_t[]){l->out, l->in, l->in2});
  lam_tensor *b = !l->o.no_bias ? lam__param_get(params, "bilinear", "bias", 1, &l->out) : NULL;
  if (!w || (!l->o.no_bias && !b)) return lam_last_status();
  lam_status st = lam__check_input("bilinear", x, l->in + l->in2, w->dtype);
  if (st != LAM_OK) return st;
  lam_tensor *parts[2] = {0};
  st = lam_split(x, -1, 2, (int64_t[]){l->in, l->in2}, parts);
  if (st != LAM_OK) return st;
  *out = lam_bilinear(parts[0], parts[1], w, b);
  lam_tensor_free(parts[0]);
  lam_tensor_free(parts[1]);
  return *out ? LAM_OK : lam_last_status();
}

static const lam_layer_vtable lam__bilinear_vt = {"bilinear", lam__linear_init, lam__bilinear_apply,
                                                  lam__free_impl};

lam_layer *lam_nn_bilinear(int64_t in1_features, int64_t in2_features, int64_t out_features,
                        const lam_linear_opts *opts) {
  if (in1_features < 1 || in2_features < 1 || out_features < 1)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "lam_nn_bilinear: features %lld, %lld, %lld must be >= 1",
                     (long long)in1_features, (long long)in2_features, (long long)out_features), NULL;
  if (opts && (lam__init_check_opt("lam_nn_bilinear", "weight_init", &opts->weight_init) != LAM_OK ||
               lam__init_check_opt("lam_nn_bilinear", "bias_init", &opts->bias_init) != LAM_OK))
    return NULL;
  lam__linear *l = calloc(1, sizeof *l);
  if (!l) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "lam_nn_bilinear: out of host memory"), NULL;
  l->in = in1_features;
  l->in2 = in2_features;
  l->out = out_features;
  l->o = lam__linear_resolve(opts);
  lam_layer *layer = lam_nn_custom(&lam__bilinear_vt, l);
  if (!layer) free(l);
  return layer;
}

/* ---- identity and flatten ---------------------------------------------------- */

static lam_status lam__identity_apply(lam_layer *self, lam_ptree *params, lam_ptree *state,
                                      lam_tensor *x, const lam_apply_opts *opts, lam_tensor **out) {
  *out = lam_tensor_retain(x);
  return LAM_OK;
}

static const lam_layer_vtable lam__identity_vt = {"identity", lam__no_params_init, lam__identity_apply, NULL};

lam_layer *lam_nn_identity(void) { return lam_nn_custom(&lam__identity_vt, NULL); }

typedef struct {
  int start, end;
} lam__flatten;

static lam_status lam__flatten_apply(lam_layer *self, lam_ptree *params, lam_ptree *state,
                                     lam_tensor *x, const lam_apply_opts *opts, lam_tensor **out) {
  lam__flatten *f = self->impl;
  *out = lam_flatten(x, f->start, f->end);
  return *out ? LAM_OK : lam_last_status();
}

static const lam_layer_vtable lam__flatten_vt = {"flatten", lam__no_params_init, lam__flatten_apply,
                                                 lam__free_impl};

lam_layer *lam_nn_flatten(int start_axis, int end_axis) {
  lam__flatten *f = calloc(1, sizeof *f);
  if (!f) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "lam_nn_flatten: out of host memory"), NULL;
  f->start = start_axis;
  f->end = end_axis;
  lam_layer *layer = lam_nn_custom(&lam__flatten_vt, f);
  if (!layer) free(f);
  return layer;
}

/* ---- embedding ------------------------------------------------------------------ */

typedef struct {
  int64_t vocab, dim;
  int64_t pad; /* resolved padding_idx in [0, vocab), or -1: none */
  lam_embedding_opts o;
} lam__embedding;

lam_embedding_opts lam_embedding_defaults(void) {
  lam_embedding_opts o;
  memset(&o, 0, sizeof o);
  o.no_scale = false;
  o.init = lam_init_normal(0.02);
  o.padding_idx = 0;
  o.padding_idx_set = false;
  o.max_norm = 0;
  o.norm_type = 2;
  return o;
}

/* The options with zeros resolved (NULL: defaults). */
static lam_embedding_opts lam__embedding_resolve(const lam_embedding_opts *opts) {
  lam_embedding_opts def = lam_embedding_defaults(), o = opts ? *opts : def;
  o.init = lam_init_or(&o.init, def.init);
  o.norm_type = lam__opt_f64(o.norm_type, def.norm_type);
  return o;
}

static lam_status lam__embedding_init(lam_layer *self, lam_ctx *ctx, lam_rng_key key, lam_dtype dtype,
                                      lam_ptree *params, lam_ptree *state) {
  lam__embedding *e = self->impl;
  lam_init init = e->o.init; /* resolved */
  lam_status st = lam__param_make(params, "weight", &init, ctx, key, dtype, 2, (int64_t[]){e->vocab, e->dim});
  if (st != LAM_OK || e->pad < 0) return st;
  /* nn.Embedding zeroes the padding row after drawing the others. */
  lam_tensor *w = lam_ptree_get(params, "weight");
  size_t es = lam_dtype_size(w->dtype);
  const unsigned char zero[8] = {0};
  cl_int err = clEnqueueFillBuffer(ctx->queue, w->buf->mem, zero, es, (w->offset + (size_t)(e->pad * e->dim)) * es,
                                   (size_t)e->dim * es, 0, NULL, NULL);
  return err == CL_SUCCESS ? LAM_OK : lam__cl_fail(err, "lam_layer_init", "clEnqueueFillBuffer");
}

/* i32 indices with the negative ones counted from the end (as lam_take). */
static lam_tensor *lam__embedding_wrap(lam_tensor *x, int64_t vocab) {
  lam_tensor *neg = lam_compare_scalar(LAM_LT, x, 0);
  lam_tensor *up = neg ? lam_add_scalar(x, (double)vocab) : NULL;
  lam_tensor *r = up ? lam_where(neg, up, x) : NULL;
  lam_tensor_free(neg);
  lam_tensor_free(up);
  return r;
}

/* torch.embedding_renorm_: rescales, in w's own buffer, each row named by x
 * whose norm_type-norm exceeds max_norm by max_norm / (norm + 1e-7). Runs
 * with recording paused (as torch's no_grad); rows are found on the device
 * (a scatter_add of ones marks the looked-up rows), so nothing is read back. */
static lam_status lam__embedding_renorm(const lam__embedding *e, lam_tensor *w, lam_tensor *x) {
  lam_ctx *ctx = w->ctx;
  const double p = e->o.norm_type, max_norm = e->o.max_norm;
  bool was = lam_grad_set_enabled(ctx, false);
  int64_t n = x->numel, V = e->vocab;
  lam_tensor *flat = lam_reshape(x, 1, &n);
  lam_tensor *idx = flat ? lam__embedding_wrap(flat, V) : NULL;
  lam_tensor *ones = lam_tensor_full(ctx, w->dtype, 1, &n, 1.0);
  lam_tensor *zeros = lam_tensor_zeros(ctx, w->dtype, 1, &V);
  lam_tensor *cnt = idx && ones && zeros ? lam_scatter_add(zeros, 0, idx, ones) : NULL;
  lam_tensor *cnt2 = cnt ? lam_reshape(cnt, 2, (int64_t[]){V, 1}) : NULL;
  lam_tensor *used = cnt2 ? lam_compare_scalar(LAM_GT, cnt2, 0) : NULL;
  /* Row norms [V, 1]. */
  lam_tensor *a = lam_abs(w), *norm = NULL;
  if (a && isinf(p)) {
    norm = lam_max(a, 1, (int[]){1}, 1);
  } else if (a && p == 1) {
    norm = lam_sum(a, 1, (int[]){1}, 1);
  } else if (a) {
    lam_tensor *ap = p == 2 ? lam_mul(a, a) : lam_pow_scalar(a, p);
    lam_tensor *s = ap ? lam_sum(ap, 1, (int[]){1}, 1) : NULL;
    norm = s ? (p == 2 ? lam_sqrt(s) : lam_pow_scalar(s, 1.0 / p)) : NULL;
    lam_tensor_free(ap);
    lam_tensor_free(s);
  }
  lam_tensor *big = norm ? lam_compare_scalar(LAM_GT, norm, max_norm) : NULL;
  lam_tensor *den = norm ? lam_add_scalar(norm, 1e-7) : NULL;
  lam_tensor *scale = den ? lam_rdiv_scalar(den, max_norm) : NULL;
  lam_tensor *one = lam_tensor_scalar(ctx, w->dtype, 1.0);
  lam_tensor *s1 = big && scale && one ? lam_where(big, scale, one) : NULL;
  lam_tensor *s2 = s1 && used ? lam_where(used, s1, one) : NULL;
  lam_tensor *wn = s2 ? lam_mul(w, s2) : NULL;
  lam_status st = wn ? LAM_OK : lam_last_status();
  if (wn) {
    size_t es = lam_dtype_size(w->dtype);
    cl_int err = clEnqueueCopyBuffer(ctx->queue, wn->buf->mem, w->buf->mem, wn->offset * es, w->offset * es,
                                     (size_t)w->numel * es, 0, NULL, NULL);
    if (err != CL_SUCCESS) st = lam__cl_fail(err, "lam_layer_apply", "clEnqueueCopyBuffer");
  }
  lam_tensor *all[] = {flat, idx, ones, zeros, cnt, cnt2, used, a, norm, big, den, scale, one, s1, s2, wn};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) lam_tensor_free(all[i]);
  lam_grad_set_enabled(ctx, was);
  return st;
}

static lam_status lam__embedding_apply(lam_layer *self, lam_ptree *params, lam_ptree *state,
                                       lam_tensor *x, const lam_apply_opts *opts, lam_tensor **out) {
  lam__embedding *e = self->impl;
  lam_tensor *w = lam__param_get(params, "embedding", "weight", 2, (int64_t[]){e->vocab, e->dim});
  if (!w) return lam_last_status();
  if (x->dtype != LAM_I32)
    return lam__fail(LAM_ERR_DTYPE, "lam_layer_apply: embedding expects i32 indices, got %s",
                     lam_dtype_name(x->dtype));
  if (e->o.max_norm > 0) {
    lam_status st = lam__embedding_renorm(e, w, x);
    if (st != LAM_OK) return st;
  }
  lam_tensor *y = lam_take(w, x, 0);
  if (y && e->pad >= 0 && lam_grad_is_recording(w->ctx)) {
    /* The padding row gets no gradient: the outputs that read it are taken
     * from a stop_gradient copy (same values), so take's backward scatters
     * nothing into that row. Only done while recording. */
    lam_tensor *xi = lam__embedding_wrap(x, e->vocab);
    lam_tensor *m = xi ? lam_compare_scalar(LAM_EQ, xi, (double)e->pad) : NULL;
    lam_tensor *mu = m ? lam_unsqueeze(m, -1) : NULL;
    lam_tensor *ys = mu ? lam_stop_gradient(y) : NULL;
    lam_tensor *yw = ys ? lam_where(mu, ys, y) : NULL;
    lam_tensor_free(xi);
    lam_tensor_free(m);
    lam_tensor_free(mu);
    lam_tensor_free(ys);
    lam_tensor_free(y);
    y = yw;
  }
  if (y && !e->o.no_scale) {
    lam_tensor *s = lam_mul_scalar(y, sqrt((double)e->dim));
    lam_tensor_free(y);
    y = s;
  }
  *out = y;
  return y ? LAM_OK : lam_last_status();
}

static const lam_layer_vtable lam__embedding_vt = {"embedding", lam__embedding_init,
                                                   lam__embedding_apply, lam__free_impl};

bool lam__embedding_config(const lam_layer *layer, bool *no_scale, double *max_norm) {
  if (!layer || layer->vt != &lam__embedding_vt) return false;
  const lam__embedding *e = layer->impl;
  *no_scale = e->o.no_scale;
  *max_norm = e->o.max_norm;
  return true;
}

lam_layer *lam_nn_embedding(int64_t vocab_size, int64_t embed_dim, const lam_embedding_opts *opts) {
  const char *fn = "lam_nn_embedding";
  if (vocab_size < 1 || embed_dim < 1)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: vocab_size %lld and embed_dim %lld must be >= 1", fn,
                     (long long)vocab_size, (long long)embed_dim), NULL;
  if (opts && lam__init_check_opt(fn, "init", &opts->init) != LAM_OK) return NULL;
  lam_embedding_opts o = lam__embedding_resolve(opts);
  int64_t pad = -1;
  if (o.padding_idx != 0 || o.padding_idx_set) {
    if (o.padding_idx < -vocab_size || o.padding_idx >= vocab_size)
      return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: padding_idx %lld must be in [-%lld, %lld)", fn,
                       (long long)o.padding_idx, (long long)vocab_size, (long long)vocab_size), NULL;
    pad = o.padding_idx < 0 ? o.padding_idx + vocab_size : o.padding_idx;
  }
  if (!(o.max_norm >= 0 && isfinite(o.max_norm)) || signbit(o.max_norm))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: max_norm %g must be finite and > 0 (0: none)", fn, o.max_norm), NULL;
  if (!(o.norm_type > 0) || signbit(o.norm_type))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: norm_type %g must be > 0 (0: 2)", fn, o.norm_type), NULL;
  lam__embedding *e = calloc(1, sizeof *e);
  if (!e) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn), NULL;
  e->vocab = vocab_size;
  e->dim = embed_dim;
  e->pad = pad;
  e->o = o;
  lam_layer *layer = lam_nn_custom(&lam__embedding_vt, e);
  if (!layer) free(e);
  return layer;
}
