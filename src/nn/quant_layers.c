/* nn/quant_layers.c: the quantized linear and embedding layers (MLX's
 * QuantizedLinear / QuantizedEmbedding: params "weight" packed, "scales",
 * "biases", "bias") and lam_quantize_layer (MLX's nn.quantize), which
 * converts built-in linear and embedding layers in place: the lam_layer
 * keeps its address (its parent holds it), its vtable and configuration are
 * swapped for the quantized ones, and its params subtree gets the quantized
 * tensors in place of "weight". The quantized tensors are frozen leaves, so
 * lam_value_and_grad and the optimizers leave them alone while the float
 * params (bias, other layers) train as before. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/quant.h"
#include "lamina/shape.h"
#include "lamina/elementwise.h"
#include "nn/nn_internal.h"

typedef struct {
  int64_t in, out; /* embedding: in = dim, out = vocab */
  int gs, bits;
  bool no_bias;    /* linear */
  bool embed, no_scale;
} lam__qlayer;

lam_quantize_opts lam_quantize_defaults(void) {
  lam_quantize_opts o;
  memset(&o, 0, sizeof o);
  o.group_size = 64;
  o.bits = 4;
  return o;
}

/* Resolves and checks opts (NULL: defaults). */
static lam_status lam__qopts(const char *fn, const lam_quantize_opts *opts, lam_quantize_opts *o) {
  *o = opts ? *opts : lam_quantize_defaults();
  if (o->group_size == 0) o->group_size = 64;
  if (o->bits == 0) o->bits = 4;
  if (o->group_size != 32 && o->group_size != 64 && o->group_size != 128)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: group_size %d must be 32, 64 or 128", fn, o->group_size);
  if (o->bits != 4 && o->bits != 8)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: bits %d must be 4 or 8", fn, o->bits);
  return LAM_OK;
}

/* Quantizes w and stores weight/scales/biases (frozen) into params. */
static lam_status lam__qstore(lam_ptree *params, lam_tensor *w, int gs, int bits) {
  lam_tensor *wq = NULL, *s = NULL, *b = NULL;
  lam_status st = lam_quantize(w, gs, bits, &wq, &s, &b);
  if (st == LAM_OK) st = lam_ptree_set(params, "weight", wq);
  if (st == LAM_OK) st = lam_ptree_set(params, "scales", s);
  if (st == LAM_OK) st = lam_ptree_set(params, "biases", b);
  if (st == LAM_OK) st = lam_ptree_freeze(params, "weight");
  if (st == LAM_OK) st = lam_ptree_freeze(params, "scales");
  if (st == LAM_OK) st = lam_ptree_freeze(params, "biases");
  lam_tensor_free(wq), lam_tensor_free(s), lam_tensor_free(b);
  return st;
}

static lam_status lam__qlayer_init(lam_layer *self, lam_ctx *ctx, lam_rng_key key, lam_dtype dtype,
                                   lam_ptree *params, lam_ptree *state) {
  lam__qlayer *q = self->impl;
  lam_ptree *tmp = lam_ptree_dict();
  if (!tmp) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "lam_layer_init: out of host memory");
  lam_init wi = q->embed ? lam_init_normal(0.02) : lam_init_glorot_uniform();
  lam_status st = lam__param_make(tmp, "weight", &wi, ctx, key, dtype, 2, (int64_t[]){q->out, q->in});
  if (st == LAM_OK) st = lam__qstore(params, lam_ptree_get(tmp, "weight"), q->gs, q->bits);
  lam_ptree_free(tmp);
  if (st == LAM_OK && !q->embed && !q->no_bias) {
    lam_init bi = lam_init_zeros();
    st = lam__param_make(params, "bias", &bi, ctx, key, dtype, 1, &q->out);
  }
  return st;
}

/* The three quantized params of q (borrowed), shape-checked. */
static lam_status lam__qparams(const lam__qlayer *q, lam_ptree *params, const char *name, lam_tensor **w,
                               lam_tensor **s, lam_tensor **b) {
  const int64_t wpr = q->in * q->bits / 32, ng = q->in / q->gs;
  *w = lam__param_get(params, name, "weight", 2, (int64_t[]){q->out, wpr});
  *s = *w ? lam__param_get(params, name, "scales", 2, (int64_t[]){q->out, ng}) : NULL;
  *b = *s ? lam__param_get(params, name, "biases", 2, (int64_t[]){q->out, ng}) : NULL;
  return *b ? LAM_OK : lam_last_status();
}

static lam_status lam__qlinear_apply(lam_layer *self, lam_ptree *params, lam_ptree *state, lam_tensor *x,
                                     const lam_apply_opts *opts, lam_tensor **out) {
  lam__qlayer *q = self->impl;
  lam_tensor *w, *s, *b, *bias = NULL;
  lam_status st = lam__qparams(q, params, "quantized_linear", &w, &s, &b);
  if (st != LAM_OK) return st;
  if (!q->no_bias && !(bias = lam__param_get(params, "quantized_linear", "bias", 1, &q->out)))
    return lam_last_status();
  st = lam__check_input("quantized_linear", x, q->in, s->dtype);
  if (st != LAM_OK) return st;
  lam_tensor *y = lam_quantized_matmul(x, w, s, b, q->gs, q->bits);
  if (y && bias) {
    lam_tensor *yb = lam_add(y, bias);
    lam_tensor_free(y);
    y = yb;
  }
  *out = y;
  return y ? LAM_OK : lam_last_status();
}

static lam_status lam__qembed_apply(lam_layer *self, lam_ptree *params, lam_ptree *state, lam_tensor *x,
                                    const lam_apply_opts *opts, lam_tensor **out) {
  lam__qlayer *q = self->impl;
  lam_tensor *w, *s, *b;
  lam_status st = lam__qparams(q, params, "quantized_embedding", &w, &s, &b);
  if (st != LAM_OK) return st;
  if (x->dtype != LAM_I32)
    return lam__fail(LAM_ERR_DTYPE, "lam_layer_apply: quantized_embedding expects i32 indices, got %s",
                     lam_dtype_name(x->dtype));
  /* Gather the packed rows and their scales/biases, then dequantize only those. */
  int64_t n = x->numel, ys[LAM_MAX_DIMS + 1];
  lam_tensor *flat = lam_reshape(x, 1, &n);
  lam_tensor *rw = flat ? lam_take(w, flat, 0) : NULL;
  lam_tensor *rs = rw ? lam_take(s, flat, 0) : NULL;
  lam_tensor *rb = rs ? lam_take(b, flat, 0) : NULL;
  lam_tensor *d = rb ? lam_dequantize(rw, rs, rb, q->gs, q->bits) : NULL;
  lam_tensor *y = NULL;
  if (d && x->ndim < LAM_MAX_DIMS) {
    memcpy(ys, x->shape, (size_t)x->ndim * sizeof *ys);
    ys[x->ndim] = q->in;
    y = lam_reshape(d, x->ndim + 1, ys);
  } else if (d) {
    lam__fail(LAM_ERR_SHAPE, "lam_layer_apply: quantized_embedding: indices have %d dims (at most %d)", x->ndim,
              LAM_MAX_DIMS - 1);
  }
  if (y && !q->no_scale) {
    lam_tensor *sc = lam_mul_scalar(y, sqrt((double)q->in));
    lam_tensor_free(y);
    y = sc;
  }
  lam_tensor_free(flat), lam_tensor_free(rw), lam_tensor_free(rs), lam_tensor_free(rb), lam_tensor_free(d);
  *out = y;
  return y ? LAM_OK : lam_last_status();
}

static const lam_layer_vtable lam__qlinear_vt = {"quantized_linear", lam__qlayer_init, lam__qlinear_apply,
                                                 lam__free_impl};
static const lam_layer_vtable lam__qembed_vt = {"quantized_embedding", lam__qlayer_init, lam__qembed_apply,
                                                lam__free_impl};

static lam__qlayer *lam__qlayer_make(const char *fn, int64_t in, int64_t out, const lam_quantize_opts *opts) {
  lam_quantize_opts o;
  if (lam__qopts(fn, opts, &o) != LAM_OK) return NULL;
  if (in < 1 || out < 1)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: features %lld and %lld must be >= 1", fn, (long long)in,
                     (long long)out), NULL;
  if (in % o.group_size != 0)
    return lam__fail(LAM_ERR_SHAPE, "%s: in-features %lld are not a multiple of group_size %d", fn,
                     (long long)in, o.group_size), NULL;
  lam__qlayer *q = calloc(1, sizeof *q);
  if (!q) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn), NULL;
  q->in = in, q->out = out, q->gs = o.group_size, q->bits = o.bits, q->no_bias = o.no_bias;
  return q;
}

lam_layer *lam_nn_quantized_linear(int64_t in_features, int64_t out_features, const lam_quantize_opts *opts) {
  lam__qlayer *q = lam__qlayer_make("lam_nn_quantized_linear", in_features, out_features, opts);
  if (!q) return NULL;
  lam_layer *l = lam_nn_custom(&lam__qlinear_vt, q);
  if (!l) free(q);
  return l;
}

lam_layer *lam_nn_quantized_embedding(int64_t vocab_size, int64_t embed_dim, bool no_scale,
                                      const lam_quantize_opts *opts) {
  lam__qlayer *q = lam__qlayer_make("lam_nn_quantized_embedding", embed_dim, vocab_size, opts);
  if (!q) return NULL;
  q->embed = true, q->no_scale = no_scale, q->no_bias = true;
  lam_layer *l = lam_nn_custom(&lam__qembed_vt, q);
  if (!l) free(q);
  return l;
}

/* ---- lam_quantize_layer ---------------------------------------------------------- */

typedef struct {
  lam_quantize_opts o;
  lam_ptree *params;
  int count;
} lam__qwalk;

/* Converts layer (params at path) if it is a linear/embedding the predicate accepts. */
static lam_status lam__qconvert(lam__qwalk *w, lam_layer *layer, const char *path, bool *done) {
  const char *fn = "lam_quantize_layer";
  int64_t in = 0, out = 0;
  bool no_bias = true, no_scale = false, embed = false;
  double max_norm = 0;
  *done = false;
  if (lam__linear_config(layer, &in, &out, &no_bias)) {
  } else if (lam__embedding_config(layer, &no_scale, &max_norm)) {
    embed = true;
    if (max_norm > 0) return LAM_OK; /* renormalises its weight in place: stays float */
  } else {
    return LAM_OK;
  }
  *done = true;
  lam_ptree *sub = lam_ptree_subtree(w->params, path);
  lam_tensor *wt = sub ? lam_ptree_get(sub, "weight") : NULL;
  if (!wt || wt->ndim != 2)
    return lam__fail(LAM_ERR_NOT_FOUND, "%s: no 2-D \"weight\" param at \"%s\" for its %s layer", fn, path,
                     lam_layer_name(layer));
  if (embed) out = wt->shape[0], in = wt->shape[1];
  if (in % w->o.group_size != 0) return LAM_OK; /* MLX skips these too */
  if (w->o.predicate && !w->o.predicate(path, layer, w->o.user)) return LAM_OK;
  lam__qlayer *q = calloc(1, sizeof *q);
  if (!q) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
  q->in = in, q->out = out, q->gs = w->o.group_size, q->bits = w->o.bits;
  q->no_bias = embed || no_bias, q->embed = embed, q->no_scale = no_scale;
  lam_tensor *keep = lam_tensor_retain(wt);
  lam_status st = lam__qstore(sub, keep, q->gs, q->bits);
  lam_tensor_free(keep);
  if (st != LAM_OK) {
    free(q);
    return st;
  }
  lam_layer old = *layer;
  layer->vt = embed ? &lam__qembed_vt : &lam__qlinear_vt;
  layer->impl = q;
  if (old.vt->free) old.vt->free(&old);
  w->count++;
  return LAM_OK;
}

static lam_status lam__qwalk_layer(lam__qwalk *w, lam_layer *layer, const char *path) {
  bool done;
  lam_status st = lam__qconvert(w, layer, path, &done);
  if (st != LAM_OK || done) return st;
  const int n = lam_layer_child_count(layer);
  for (int i = 0; i < n && st == LAM_OK; i++) {
    lam_layer *c = lam_layer_child(layer, i);
    const char *key = lam_layer_child_key(layer, i);
    if (!c || !key) continue;
    char sub[1024];
    const int len = snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", key);
    if (len < 0 || (size_t)len >= sizeof sub)
      return lam__fail(LAM_ERR_INVALID_ARGUMENT, "lam_quantize_layer: params path under \"%s\" is too long", path);
    st = lam__qwalk_layer(w, c, sub);
  }
  return st;
}

lam_status lam_quantize_layer(lam_layer *model, lam_vars *vars, const lam_quantize_opts *opts, int *count) {
  const char *fn = "lam_quantize_layer";
  if (count) *count = 0;
  if (!model) return lam__fail(LAM_ERR_NULL, "%s: model is NULL", fn);
  if (!vars) return lam__fail(LAM_ERR_NULL, "%s: vars is NULL", fn);
  lam__qwalk w = {.params = lam_vars_params(vars)};
  lam_status st = lam__qopts(fn, opts, &w.o);
  if (st != LAM_OK) return st;
  st = lam__qwalk_layer(&w, model, "");
  if (count) *count = w.count;
  return st;
}
