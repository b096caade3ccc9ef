/* nn/attention_layers.c: the attention layers: multi-head attention (Kaun's
 * multi_head_attention with grouped-query heads, RoPE, dropout and the
 * aux-context mask, plus MLX's separate query/key/value widths and
 * cross-attention, torch's add_bias_kv / add_zero_attn; incremental decoding through the KV cache of
 * ops/kv_cache.c), and RoPE, sinusoidal and ALiBi as parameterless layers. Projections are lamina
 * matmuls and the attention is lam_scaled_dot_product_attention, so every
 * gradient comes from the ops' backward rules. Parameter names follow
 * Hugging Face (q_proj/k_proj/v_proj/out_proj with weight [out, in] and
 * bias [out]). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/attention.h"
#include "lamina/elementwise.h"
#include "lamina/linalg.h"
#include "lamina/shape.h"
#include "nn/nn_internal.h"

/* ---- positional layers ------------------------------------------------------ */

static lam_status lam__rope_layer_apply(lam_layer *self, lam_ptree *params, lam_ptree *state,
                                        lam_tensor *x, const lam_apply_opts *opts, lam_tensor **out) {
  *out = lam_rope(x, self->impl);
  return *out ? LAM_OK : lam_last_status();
}

static const lam_layer_vtable lam__rope_vt = {"rope", lam__no_params_init, lam__rope_layer_apply,
                                              lam__free_impl};

lam_layer *lam_nn_rope(int64_t dims, const lam_rope_opts *opts) {
  if (dims < 0 || dims % 2 != 0)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "lam_nn_rope: dims %lld must be even (0: all)",
                     (long long)dims), NULL;
  lam_rope_opts *o = malloc(sizeof *o);
  if (!o) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "lam_nn_rope: out of host memory"), NULL;
  *o = opts ? *opts : lam_rope_defaults();
  o->dims = dims;
  lam_layer *l = lam_nn_custom(&lam__rope_vt, o);
  if (!l) free(o);
  return l;
}

typedef struct {
  int64_t dims;
  lam_sinusoidal_opts o;
} lam__sinusoidal;

static lam_status lam__sinusoidal_apply(lam_layer *self, lam_ptree *params, lam_ptree *state,
                                        lam_tensor *x, const lam_apply_opts *opts, lam_tensor **out) {
  lam__sinusoidal *s = self->impl;
  *out = lam_sinusoidal_encoding(x, s->dims, &s->o);
  return *out ? LAM_OK : lam_last_status();
}

static const lam_layer_vtable lam__sinusoidal_vt = {"sinusoidal_positional_encoding",
                                                    lam__no_params_init, lam__sinusoidal_apply,
                                                    lam__free_impl};

lam_layer *lam_nn_sinusoidal_encoding(int64_t dims, const lam_sinusoidal_opts *opts) {
  const char *fn = "lam_nn_sinusoidal_encoding";
  if (dims < 4 || dims % 2 != 0)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: dims %lld must be even and >= 4", fn,
                     (long long)dims), NULL;
  lam__sinusoidal *s = malloc(sizeof *s);
  if (!s) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn), NULL;
  s->dims = dims;
  s->o = opts ? *opts : lam_sinusoidal_defaults();
  lam_layer *l = lam_nn_custom(&lam__sinusoidal_vt, s);
  if (!l) free(s);
  return l;
}

static lam_status lam__alibi_apply(lam_layer *self, lam_ptree *params, lam_ptree *state,
                                   lam_tensor *x, const lam_apply_opts *opts, lam_tensor **out) {
  int64_t offset = *(int64_t *)self->impl;
  if (x->ndim != 4) {
    char b[LAM__SHAPE_STR];
    return lam__fail(LAM_ERR_SHAPE, "lam_layer_apply: alibi expects scores [batch, heads, seq_q, seq_k], got %s",
                     lam__shape_str(x->ndim, x->shape, b));
  }
  lam_tensor *bias = lam_alibi_bias(x->ctx, x->dtype, x->shape[1], x->shape[2], x->shape[3], offset);
  *out = bias ? lam_add(x, bias) : NULL;
  lam_tensor_free(bias);
  return *out ? LAM_OK : lam_last_status();
}

static const lam_layer_vtable lam__alibi_vt = {"alibi", lam__no_params_init, lam__alibi_apply,
                                               lam__free_impl};

lam_alibi_opts lam_alibi_defaults(void) { return (lam_alibi_opts){.offset = 0}; }

lam_layer *lam_nn_alibi(const lam_alibi_opts *opts) {
  const char *fn = "lam_nn_alibi";
  /* Every default is zero: NULL is a zeroed struct. */
  const int64_t offset = (opts ? *opts : lam_alibi_defaults()).offset;
  if (llabs(offset) > ((int64_t)1 << 40))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: offset %lld is out of range", fn,
                     (long long)offset), NULL;
  int64_t *o = malloc(sizeof *o);
  if (!o) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn), NULL;
  *o = offset;
  lam_layer *l = lam_nn_custom(&lam__alibi_vt, o);
  if (!l) free(o);
  return l;
}

/* ---- multi-head attention ---------------------------------------------------------- */

typedef struct {
  int64_t E, H, Hkv, hd, vhd, qin, kin, vin, odims;
  lam_multi_head_attention_opts o;
} lam__mha;

lam_multi_head_attention_opts lam_multi_head_attention_defaults(void) {
  lam_multi_head_attention_opts o;
  memset(&o, 0, sizeof o);
  o.no_bias = false;
  o.rope_theta = 10000.0;
  o.weight_init = lam_init_glorot_uniform();
  o.bias_init = lam_init_zeros();
  return o;
}

static lam_status lam__mha_init(lam_layer *self, lam_ctx *ctx, lam_rng_key key, lam_dtype dtype,
                                lam_ptree *params, lam_ptree *state) {
  lam__mha *m = self->impl;
  lam_init w = m->o.weight_init, bi = m->o.bias_init; /* resolved */
  const char *names[4] = {"q_proj", "k_proj", "v_proj", "out_proj"};
  int64_t rows[4] = {m->H * m->hd, m->Hkv * m->hd, m->Hkv * m->vhd, m->odims};
  int64_t cols[4] = {m->qin, m->kin, m->vin, m->H * m->vhd};
  lam_status st = LAM_OK;
  for (int i = 0; i < 4 && st == LAM_OK; i++) {
    char path[32];
    snprintf(path, sizeof path, "%s.weight", names[i]);
    st = lam__param_make(params, path, &w, ctx, key, dtype, 2, (int64_t[]){rows[i], cols[i]});
    if (st == LAM_OK && !m->o.no_bias) {
      snprintf(path, sizeof path, "%s.bias", names[i]);
      st = lam__param_make(params, path, &bi, ctx, key, dtype, 1, &rows[i]);
    }
  }
  if (st == LAM_OK && m->o.add_bias_kv)
    st = lam__param_make(params, "bias_k", &w, ctx, key, dtype, 3, (int64_t[]){1, 1, rows[1]});
  if (st == LAM_OK && m->o.add_bias_kv)
    st = lam__param_make(params, "bias_v", &w, ctx, key, dtype, 3, (int64_t[]){1, 1, rows[2]});
  return st;
}

/* add_bias_kv / add_zero_attn: appends to the projected keys or values
 * p [B, S, D] the bias row bias [1, 1, D] (broadcast over the batch; NULL:
 * none) and then a zero row when zero_attn. Returns a new reference (p
 * itself when nothing is added); p is released. */
static lam_tensor *lam__mha_extend(lam_tensor *p, lam_tensor *bias, bool zero_attn) {
  if (!p) return NULL;
  if (bias) {
    lam_tensor *bb = lam_broadcast_to(bias, 3, (int64_t[]){p->shape[0], 1, p->shape[2]});
    lam_tensor *c = bb ? lam_concat((lam_tensor *[]){p, bb}, 2, 1) : NULL;
    lam_tensor_free(bb);
    lam_tensor_free(p);
    p = c;
  }
  if (p && zero_attn) {
    lam_tensor *z = lam_pad(p, (int64_t[]){0, 0, 0, 1, 0, 0}, LAM_PAD_CONSTANT, 0.0);
    lam_tensor_free(p);
    p = z;
  }
  return p;
}

/* The mask extended by `extra` kept key columns (torch pads its masks with
 * "not masked"): u8 / i32 keep masks with 1, an additive float mask with 0.
 * A mask whose last axis broadcasts (size 1) is returned as it is. */
static lam_tensor *lam__mha_extend_mask(lam_tensor *mask, int64_t seq_k, int extra) {
  if (mask->ndim < 1 || mask->shape[mask->ndim - 1] != seq_k) return lam_tensor_retain(mask);
  int64_t pads[2 * LAM_MAX_DIMS] = {0};
  pads[2 * mask->ndim - 1] = extra;
  return lam_pad(mask, pads, LAM_PAD_CONSTANT, lam_dtype_is_float(mask->dtype) ? 0.0 : 1.0);
}

/* x [B, S, in] @ W^T + b. */
static lam_tensor *lam__proj(lam_tensor *x, lam_tensor *w, lam_tensor *b) {
  lam_tensor *y = lam_matmul_t(x, w, 0, 1);
  if (y && b) {
    lam_tensor *yb = lam_add(y, b);
    lam_tensor_free(y);
    y = yb;
  }
  return y;
}

/* [B, S, heads * d] -> [B, heads, S, d]. */
static lam_tensor *lam__split_heads(lam_tensor *x, int64_t heads, int64_t d) {
  if (!x) return NULL;
  lam_tensor *r = lam_reshape(x, 4, (int64_t[]){x->shape[0], x->shape[1], heads, d});
  lam_tensor *p = r ? lam_permute(r, (int[]){0, 2, 1, 3}) : NULL;
  lam_tensor_free(r);
  return p;
}

static lam_status lam__mha_check_in(const char *what, lam_tensor *x, int64_t dims, lam_dtype dtype,
                                    int64_t batch) {
  char b[LAM__SHAPE_STR];
  if (x->ndim != 3 || x->shape[2] != dims || (batch > 0 && x->shape[0] != batch))
    return lam__fail(LAM_ERR_SHAPE, "lam_layer_apply: multi_head_attention expects %s [batch, seq, %lld]%s, got %s",
                     what, (long long)dims, batch > 0 ? " with the query's batch" : "",
                     lam__shape_str(x->ndim, x->shape, b));
  if (x->dtype != dtype)
    return lam__fail(LAM_ERR_DTYPE, "lam_layer_apply: multi_head_attention: %s is %s, params are %s", what,
                     lam_dtype_name(x->dtype), lam_dtype_name(dtype));
  return LAM_OK;
}

static lam_status lam__mha_run(lam__mha *m, lam_ptree *params, lam_tensor *query, lam_tensor *key,
                               lam_tensor *value, const lam_apply_opts *opts, lam_kv_cache *cache,
                               lam_tensor **out) {
  static const lam_apply_opts no_opts = {false, NULL, NULL, NULL};
  if (!opts) opts = &no_opts;
  *out = NULL;
  const char *L = "multi_head_attention";
  lam_tensor *W[4], *Bs[4] = {0}, *bias_kv[2] = {0};
  const char *names[4] = {"q_proj", "k_proj", "v_proj", "out_proj"};
  int64_t rows[4] = {m->H * m->hd, m->Hkv * m->hd, m->Hkv * m->vhd, m->odims};
  int64_t cols[4] = {m->qin, m->kin, m->vin, m->H * m->vhd};
  for (int i = 0; i < 4; i++) {
    char path[32];
    snprintf(path, sizeof path, "%s.weight", names[i]);
    W[i] = lam__param_get(params, L, path, 2, (int64_t[]){rows[i], cols[i]});
    if (!W[i]) return lam_last_status();
    if (!m->o.no_bias) {
      snprintf(path, sizeof path, "%s.bias", names[i]);
      Bs[i] = lam__param_get(params, L, path, 1, &rows[i]);
      if (!Bs[i]) return lam_last_status();
    }
  }
  const int extra = (int)m->o.add_bias_kv + (int)m->o.add_zero_attn;
  if (extra && cache)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                     "lam_nn_multi_head_attention_apply_cached: add_bias_kv / add_zero_attn do not work with the KV cache");
  for (int i = 0; i < 2 && m->o.add_bias_kv; i++) {
    bias_kv[i] = lam__param_get(params, L, i ? "bias_v" : "bias_k", 3, (int64_t[]){1, 1, rows[1 + i]});
    if (!bias_kv[i]) return lam_last_status();
  }
  lam_dtype dt = W[0]->dtype;
  lam_status st = lam__mha_check_in("query", query, m->qin, dt, 0);
  if (st == LAM_OK) st = lam__mha_check_in("key", key, m->kin, dt, query->shape[0]);
  if (st == LAM_OK) st = lam__mha_check_in("value", value, m->vin, dt, query->shape[0]);
  if (st == LAM_OK && value->shape[1] != key->shape[1])
    st = lam__fail(LAM_ERR_SHAPE, "lam_layer_apply: multi_head_attention: key has %lld positions, value %lld",
                   (long long)key->shape[1], (long long)value->shape[1]);
  if (st != LAM_OK) return st;
  lam_attention_opts so = lam_attention_defaults();
  so.causal = m->o.is_causal;
  int64_t pos0 = cache ? lam_kv_cache_length(cache) : 0;
  so.q_offset = pos0;
  if (opts->training && m->o.dropout > 0) {
    if (!opts->rng)
      return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                       "lam_layer_apply: multi_head_attention with dropout in training needs an rng key (lam_apply_opts.rng)");
    so.dropout = m->o.dropout;
    so.dropout_key = *opts->rng;
  }
  lam_tensor *mask = opts->aux ? lam_aux_get(opts->aux, LAM_ATTENTION_MASK_KEY) : NULL;
  lam_tensor *mask_ext = mask && extra ? lam__mha_extend_mask(mask, key->shape[1], extra) : NULL;
  if (mask && extra && !mask_ext) return lam_last_status();
  if (mask_ext) mask = mask_ext;
  if (mask) {
    if (mask->ndim == 2) so.key_padding_mask = mask;
    else so.mask = mask;
  }
  lam_tensor *qp = lam__proj(query, W[0], Bs[0]);
  lam_tensor *kp = lam__proj(key, W[1], Bs[1]);
  lam_tensor *vp = lam__proj(value, W[2], Bs[2]);
  if (extra) {
    kp = lam__mha_extend(kp, bias_kv[0], m->o.add_zero_attn);
    vp = lam__mha_extend(vp, bias_kv[1], m->o.add_zero_attn);
  }
  lam_tensor *q = lam__split_heads(qp, m->H, m->hd);
  lam_tensor *k = lam__split_heads(kp, m->Hkv, m->hd);
  lam_tensor *v = lam__split_heads(vp, m->Hkv, m->vhd);
  lam_tensor_free(qp);
  lam_tensor_free(kp);
  lam_tensor_free(vp);
  if (q && k && v && m->o.rope) {
    lam_rope_opts ro = lam_rope_defaults();
    ro.theta = m->o.rope_theta;
    ro.offset = pos0;
    lam_tensor *qr = lam_rope(q, &ro);
    lam_tensor *kr = lam_rope(k, &ro);
    lam_tensor_free(q);
    lam_tensor_free(k);
    q = qr;
    k = kr;
  }
  lam_tensor *y = NULL;
  if (q && k && v) {
    if (cache) {
      if (lam_kv_cache_append(cache, k, v) == LAM_OK) y = lam_kv_cache_attention(cache, q, &so);
    } else {
      y = lam_scaled_dot_product_attention(q, k, v, &so);
    }
  }
  lam_tensor_free(q);
  lam_tensor_free(k);
  lam_tensor_free(v);
  lam_tensor_free(mask_ext);
  lam_tensor *yt = y ? lam_permute(y, (int[]){0, 2, 1, 3}) : NULL;
  lam_tensor_free(y);
  lam_tensor *ym = yt ? lam_reshape(yt, 3, (int64_t[]){yt->shape[0], yt->shape[1], m->H * m->vhd}) : NULL;
  lam_tensor_free(yt);
  *out = ym ? lam__proj(ym, W[3], Bs[3]) : NULL;
  lam_tensor_free(ym);
  return *out ? LAM_OK : lam_last_status();
}

static lam_status lam__mha_apply(lam_layer *self, lam_ptree *params, lam_ptree *state, lam_tensor *x,
                                 const lam_apply_opts *opts, lam_tensor **out) {
  return lam__mha_run(self->impl, params, x, x, x, opts, NULL, out);
}

static const lam_layer_vtable lam__mha_vt = {"multi_head_attention", lam__mha_init, lam__mha_apply,
                                             lam__free_impl};

/* The options with the zeros that have fixed defaults resolved (NULL:
 * defaults); the dims that default to other sizes are resolved below. */
static lam_multi_head_attention_opts lam__mha_resolve(const lam_multi_head_attention_opts *opts) {
  lam_multi_head_attention_opts def = lam_multi_head_attention_defaults(), o = opts ? *opts : def;
  o.rope_theta = lam__opt_f64(o.rope_theta, def.rope_theta);
  o.weight_init = lam_init_or(&o.weight_init, def.weight_init);
  o.bias_init = lam_init_or(&o.bias_init, def.bias_init);
  return o;
}

lam_layer *lam_nn_multi_head_attention(int64_t embed_dim, int64_t num_heads, const lam_multi_head_attention_opts *opts) {
  const char *fn = "lam_nn_multi_head_attention";
  lam_multi_head_attention_opts o = lam__mha_resolve(opts);
  if (opts && (lam__init_check_opt(fn, "weight_init", &opts->weight_init) != LAM_OK ||
               lam__init_check_opt(fn, "bias_init", &opts->bias_init) != LAM_OK))
    return NULL;
  if (embed_dim < 1 || num_heads < 1)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: embed_dim %lld and num_heads %lld must be >= 1", fn,
                     (long long)embed_dim, (long long)num_heads), NULL;
  int64_t hkv = o.num_kv_heads ? o.num_kv_heads : num_heads;
  if (hkv < 1 || num_heads % hkv != 0)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: num_kv_heads %lld does not divide num_heads %lld", fn,
                     (long long)hkv, (long long)num_heads), NULL;
  if (o.head_dim < 0 || (o.head_dim == 0 && embed_dim % num_heads != 0))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: embed_dim %lld is not divisible by num_heads %lld", fn,
                     (long long)embed_dim, (long long)num_heads), NULL;
  int64_t hd = o.head_dim ? o.head_dim : embed_dim / num_heads;
  int64_t vdims = o.value_dims ? o.value_dims : num_heads * hd;
  if (vdims < 1 || vdims % num_heads != 0)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: value_dims %lld is not divisible by num_heads %lld", fn,
                     (long long)vdims, (long long)num_heads), NULL;
  if (o.query_input_dims < 0 || o.key_input_dims < 0 || o.value_input_dims < 0 || o.output_dims < 0)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: input/output dims must be >= 0 (0: default)", fn), NULL;
  if (!(o.dropout >= 0 && o.dropout < 1))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: dropout %g must be in [0, 1)", fn, o.dropout), NULL;
  if (o.rope && hd % 2 != 0)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: rope needs an even head_dim, got %lld", fn,
                     (long long)hd), NULL;
  if (o.rope && !(o.rope_theta > 0 && isfinite(o.rope_theta)))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: rope_theta %g must be positive", fn, o.rope_theta), NULL;
  if ((o.add_bias_kv || o.add_zero_attn) && (o.is_causal || o.rope))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: add_bias_kv / add_zero_attn do not combine with %s", fn,
                     o.is_causal ? "is_causal" : "rope"), NULL;
  lam__mha *m = calloc(1, sizeof *m);
  if (!m) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn), NULL;
  m->E = embed_dim;
  m->H = num_heads;
  m->Hkv = hkv;
  m->hd = hd;
  m->vhd = vdims / num_heads;
  m->qin = o.query_input_dims ? o.query_input_dims : embed_dim;
  m->kin = o.key_input_dims ? o.key_input_dims : embed_dim;
  m->vin = o.value_input_dims ? o.value_input_dims : m->kin;
  m->odims = o.output_dims ? o.output_dims : embed_dim;
  m->o = o;
  lam_layer *l = lam_nn_custom(&lam__mha_vt, m);
  if (!l) free(m);
  return l;
}

static lam_status lam__mha_get(lam_layer *mha, lam_ptree *params, const char *fn, lam__mha **m) {
  if (!mha || !params) return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, !mha ? "layer" : "params");
  if (mha->vt != &lam__mha_vt)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: layer is %s, not multi_head_attention", fn,
                     lam_layer_name(mha));
  *m = mha->impl;
  return LAM_OK;
}

lam_status lam_nn_multi_head_attention_apply(lam_layer *mha, lam_ptree *params, lam_tensor *query, lam_tensor *key,
                           lam_tensor *value, const lam_apply_opts *opts, lam_tensor **out) {
  const char *fn = "lam_nn_multi_head_attention_apply";
  if (!out) return lam__fail(LAM_ERR_NULL, "%s: out is NULL", fn);
  *out = NULL;
  lam__mha *m = NULL;
  lam_status st = lam__mha_get(mha, params, fn, &m);
  if (st != LAM_OK) return st;
  if (!query || !key) {
    lam__null_input(fn, !query ? "query" : "key");
    return lam_last_status();
  }
  return lam__mha_run(m, params, query, key, value ? value : key, opts, NULL, out);
}

lam_status lam_nn_multi_head_attention_apply_cached(lam_layer *mha, lam_ptree *params, lam_tensor *x,
                                  lam_kv_cache *cache, const lam_apply_opts *opts, lam_tensor **out) {
  const char *fn = "lam_nn_multi_head_attention_apply_cached";
  if (!out) return lam__fail(LAM_ERR_NULL, "%s: out is NULL", fn);
  *out = NULL;
  lam__mha *m = NULL;
  lam_status st = lam__mha_get(mha, params, fn, &m);
  if (st != LAM_OK) return st;
  if (!cache) return lam__fail(LAM_ERR_NULL, "%s: cache is NULL", fn);
  if (!x) {
    lam__null_input(fn, "x");
    return lam_last_status();
  }
  return lam__mha_run(m, params, x, x, x, opts, cache, out);
}
