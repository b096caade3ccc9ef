/* models/gpt2.c: a GPT-2-style decoder with Hugging Face GPT2LMHeadModel's
 * parameter names (transformer.wte/wpe, transformer.h.N.{ln_1, attn.c_attn,
 * attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj}, transformer.ln_f), the LM head
 * tied to wte, causal attention with per-layer KV caches for incremental
 * decoding, gelu_tanh ("gelu_new"), and generation (greedy, top-k,
 * temperature) with Philox draws. GPT-2's Conv1D keeps its [in, out]
 * weight layout here: y = x @ W + b with lam_matmul, no transpose. Its
 * dropouts (embd_pdrop, resid_pdrop, attn_pdrop) act in training, keyed by
 * their module paths (transformer.drop, transformer.h.N.attn.attn_dropout,
 * ...attn.resid_dropout, ...mlp.dropout). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/attention.h"
#include "lamina/dense.h"
#include "lamina/elementwise.h"
#include "lamina/init.h"
#include "lamina/linalg.h"
#include "lamina/models_text.h"
#include "lamina/norm.h"
#include "lamina/shape.h"
#include "models/text_internal.h"
#include "nn/nn_internal.h"

/* ---- GPT-2's Conv1D: weight [in, out], bias [out] ------------------------------ */

typedef struct {
  int64_t in, out;
} lam__conv1d;

static lam_status lam__conv1d_init(lam_layer *self, lam_ctx *ctx, lam_rng_key key, lam_dtype dtype,
                                   lam_ptree *params, lam_ptree *state) {
  (void)state;
  lam__conv1d *c = self->impl;
  lam_init w = lam_init_normal(0.02), z = lam_init_zeros();
  lam_status st = lam__param_make(params, "weight", &w, ctx, key, dtype, 2, (int64_t[]){c->in, c->out});
  return st == LAM_OK ? lam__param_make(params, "bias", &z, ctx, key, dtype, 1, &c->out) : st;
}

static lam_status lam__conv1d_apply(lam_layer *self, lam_ptree *params, lam_ptree *state, lam_tensor *x,
                                    const lam_apply_opts *opts, lam_tensor **out) {
  (void)state;
  (void)opts;
  lam__conv1d *c = self->impl;
  lam_tensor *w = lam__param_get(params, "gpt2_conv1d", "weight", 2, (int64_t[]){c->in, c->out});
  lam_tensor *b = w ? lam__param_get(params, "gpt2_conv1d", "bias", 1, &c->out) : NULL;
  if (!b) return lam_last_status();
  lam_status st = lam__check_input("gpt2_conv1d", x, c->in, w->dtype);
  if (st != LAM_OK) return st;
  lam_tensor *y = lam_matmul(x, w);
  *out = y ? lam_add(y, b) : NULL;
  lam_tensor_free(y);
  return *out ? LAM_OK : lam_last_status();
}

static const lam_layer_vtable lam__conv1d_vt = {"gpt2_conv1d", lam__conv1d_init, lam__conv1d_apply,
                                                lam__free_impl};

static lam_layer *lam__conv1d_make(int64_t in, int64_t out) {
  lam__conv1d *c = malloc(sizeof *c);
  if (!c) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "lam_models_gpt2: out of host memory"), NULL;
  c->in = in;
  c->out = out;
  lam_layer *l = lam_nn_custom(&lam__conv1d_vt, c);
  if (!l) free(c);
  return l;
}

/* ---- the model ------------------------------------------------------------------- */

enum { G_WTE, G_WPE, G__EMB };
enum { GL_LN1, GL_ATTN, GL_PROJ, GL_LN2, GL_FC, GL_MPROJ, G__PER_LAYER };

typedef struct {
  lam_models_gpt2_opts o;
  lam__text_children c;
  int ln_f;
} lam__gpt2;

struct lam_models_gpt2_cache {
  const lam__gpt2 *model;
  int64_t n_layer;
  lam_kv_cache **kv;
};

lam_models_gpt2_opts lam_models_gpt2_defaults(void) {
  return (lam_models_gpt2_opts){.vocab_size = 50257,
                                .n_positions = 1024,
                                .n_embd = 768,
                                .n_layer = 12,
                                .n_head = 12,
                                .n_inner = 3072,
                                .layer_norm_epsilon = 1e-5};
}

static void lam__gpt2_free(lam_layer *self) {
  lam__gpt2 *g = self->impl;
  lam__text_children_clear(&g->c);
  free(g);
}

static lam_status lam__gpt2_init(lam_layer *self, lam_ctx *ctx, lam_rng_key key, lam_dtype dtype,
                                 lam_ptree *params, lam_ptree *state) {
  lam__gpt2 *g = self->impl;
  return lam__text_children_init(&g->c, ctx, key, dtype, params, state);
}

static lam_layer *lam__gpt2_children(const lam_layer *self, int i, const char **key) {
  const lam__gpt2 *g = self->impl;
  return lam__text_children_get(&g->c, i, key);
}

static lam_tensor *lam__gpt2_block(const lam__gpt2 *g, int layer, lam_ptree *params, lam_ptree *state,
                                   lam_tensor *h, lam_tensor *mask, lam_kv_cache *kv,
                                   const lam_apply_opts *opts) {
  int c0 = G__EMB + layer * G__PER_LAYER;
  int64_t E = g->o.n_embd, heads = g->o.n_head;
  lam_tensor *n1 = lam__text_children_apply(&g->c, c0 + GL_LN1, params, state, h, opts);
  lam_tensor *qkv = lam__text_children_apply(&g->c, c0 + GL_ATTN, params, state, n1, opts);
  lam_tensor_free(n1);
  lam_tensor *parts[3] = {NULL, NULL, NULL};
  lam_status st = qkv ? lam_split(qkv, -1, 3, (int64_t[]){E, E, E}, parts) : lam_last_status();
  lam_tensor_free(qkv);
  if (st != LAM_OK) return NULL;
  lam_tensor *q = lam__text_heads_split(parts[0], heads), *k = lam__text_heads_split(parts[1], heads),
             *v = lam__text_heads_split(parts[2], heads);
  for (int i = 0; i < 3; i++) lam_tensor_free(parts[i]);
  lam_attention_opts ao = lam_attention_defaults();
  ao.causal = true;
  ao.key_padding_mask = mask;
  lam__models_attention_dropout(&ao, g->o.attn_pdrop, opts, "transformer.h.%d.attn.attn_dropout", layer);
  lam_tensor *a = NULL;
  if (q && k && v) {
    if (kv) {
      if (lam_kv_cache_append(kv, k, v) == LAM_OK) {
        ao.q_offset = lam_kv_cache_length(kv) - q->shape[2];
        a = lam_kv_cache_attention(kv, q, &ao);
      }
    } else {
      a = lam_scaled_dot_product_attention(q, k, v, &ao);
    }
  }
  lam_tensor_free(q);
  lam_tensor_free(k);
  lam_tensor_free(v);
  lam_tensor *am = lam__text_heads_merge(a);
  lam_tensor_free(a);
  lam_tensor *pr = lam__text_children_apply(&g->c, c0 + GL_PROJ, params, state, am, opts);
  lam_tensor_free(am);
  pr = lam__models_dropout(pr, g->o.resid_pdrop, false, opts, "transformer.h.%d.attn.resid_dropout", layer);
  lam_tensor *h1 = pr ? lam_add(h, pr) : NULL;
  lam_tensor_free(pr);
  lam_tensor *n2 = lam__text_children_apply(&g->c, c0 + GL_LN2, params, state, h1, opts);
  lam_tensor *fc = lam__text_children_apply(&g->c, c0 + GL_FC, params, state, n2, opts);
  lam_tensor_free(n2);
  lam_tensor *ge = fc ? lam_gelu_tanh(fc) : NULL;
  lam_tensor_free(fc);
  lam_tensor *mp = lam__text_children_apply(&g->c, c0 + GL_MPROJ, params, state, ge, opts);
  lam_tensor_free(ge);
  mp = lam__models_dropout(mp, g->o.resid_pdrop, false, opts, "transformer.h.%d.mlp.dropout", layer);
  lam_tensor *h2 = mp && h1 ? lam_add(h1, mp) : NULL;
  lam_tensor_free(mp);
  lam_tensor_free(h1);
  return h2;
}

/* The forward pass over ids [batch, n] at positions pos0 .. pos0 + n - 1;
 * with a cache its keys and values are appended. */
static lam_status lam__gpt2_run(const lam__gpt2 *g, lam_ptree *params, lam_ptree *state, lam_tensor *ids,
                                lam_models_gpt2_cache *cache, const lam_apply_opts *opts, lam_tensor **out,
                                const char *fn) {
  lam_apply_opts def = lam_apply_defaults();
  if (!opts) opts = &def;
  *out = NULL;
  if (!ids) return lam__fail(LAM_ERR_NULL, "%s: ids is NULL", fn);
  if (ids->ndim != 2 || ids->dtype != LAM_I32)
    return lam__fail(LAM_ERR_SHAPE, "%s: expects i32 token ids [batch, seq]", fn);
  int64_t pos0 = cache ? lam_models_gpt2_cache_length(cache) : 0, n = ids->shape[1];
  if (pos0 + n > g->o.n_positions)
    return lam__fail(LAM_ERR_SHAPE, "%s: %lld positions exceed n_positions %lld", fn,
                     (long long)(pos0 + n), (long long)g->o.n_positions);
  lam_tensor *mask = opts->aux ? lam_aux_get(opts->aux, LAM_ATTENTION_MASK_KEY) : NULL;
  if (mask && (mask->ndim != 2 || mask->shape[0] != ids->shape[0] || mask->shape[1] != pos0 + n))
    return lam__fail(LAM_ERR_SHAPE, "%s: the attention mask must be [batch, %lld]", fn,
                     (long long)(pos0 + n));
  lam_status st = lam__models_check_rng(opts, g->o.embd_pdrop > 0 || g->o.resid_pdrop > 0 || g->o.attn_pdrop > 0, fn);
  if (st != LAM_OK) return st;
  lam_tensor *wte = lam_ptree_get(params, "transformer.wte.weight");
  if (!wte) return lam__fail(LAM_ERR_NOT_FOUND, "%s: params lack transformer.wte.weight", fn);
  lam_tensor *pos = lam_tensor_arange(ids->ctx, LAM_I32, (double)pos0, (double)(pos0 + n), 1);
  lam_tensor *te = lam__text_children_apply(&g->c, G_WTE, params, state, ids, opts);
  lam_tensor *pe = lam__text_children_apply(&g->c, G_WPE, params, state, pos, opts);
  lam_tensor *h = te && pe ? lam_add(te, pe) : NULL;
  lam_tensor_free(pos);
  lam_tensor_free(te);
  lam_tensor_free(pe);
  h = lam__models_dropout(h, g->o.embd_pdrop, false, opts, "transformer.drop");
  for (int64_t l = 0; h && l < g->o.n_layer; l++) {
    lam_tensor *nx = lam__gpt2_block(g, (int)l, params, state, h, mask, cache ? cache->kv[l] : NULL, opts);
    lam_tensor_free(h);
    h = nx;
  }
  lam_tensor *hf = lam__text_children_apply(&g->c, g->ln_f, params, state, h, opts);
  lam_tensor_free(h);
  *out = hf ? lam_matmul_t(hf, wte, 0, 1) : NULL;
  lam_tensor_free(hf);
  return *out ? LAM_OK : lam_last_status();
}

static lam_status lam__gpt2_apply(lam_layer *self, lam_ptree *params, lam_ptree *state, lam_tensor *x,
                                  const lam_apply_opts *opts, lam_tensor **out) {
  return lam__gpt2_run(self->impl, params, state, x, NULL, opts, out, "lam_layer_apply: gpt2");
}

static const lam_layer_vtable lam__gpt2_vt = {"gpt2", lam__gpt2_init, lam__gpt2_apply, lam__gpt2_free};

lam_layer *lam_models_gpt2(const lam_models_gpt2_opts *opts) {
  const char *fn = "lam_models_gpt2";
  lam_models_gpt2_opts d = lam_models_gpt2_defaults(), o = opts ? *opts : d;
  o.vocab_size = lam__opt_i64(o.vocab_size, d.vocab_size);
  o.n_positions = lam__opt_i64(o.n_positions, d.n_positions);
  o.n_embd = lam__opt_i64(o.n_embd, d.n_embd);
  o.n_layer = lam__opt_i64(o.n_layer, d.n_layer);
  o.n_head = lam__opt_i64(o.n_head, d.n_head);
  o.n_inner = lam__opt_i64(o.n_inner, 4 * o.n_embd);
  o.layer_norm_epsilon = lam__opt_f64(o.layer_norm_epsilon, d.layer_norm_epsilon);
  if (o.vocab_size < 1 || o.n_positions < 1 || o.n_embd < 1 || o.n_layer < 1 || o.n_head < 1 || o.n_inner < 1)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: every size of the config must be >= 1", fn), NULL;
  if (o.n_embd % o.n_head != 0)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: n_embd %lld is not divisible by n_head %lld", fn,
                     (long long)o.n_embd, (long long)o.n_head), NULL;
  if (!(o.layer_norm_epsilon >= 0))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: layer_norm_epsilon must be >= 0", fn), NULL;
  if (!(o.embd_pdrop >= 0 && o.embd_pdrop < 1) || !(o.resid_pdrop >= 0 && o.resid_pdrop < 1) ||
      !(o.attn_pdrop >= 0 && o.attn_pdrop < 1))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: embd_pdrop %g, resid_pdrop %g and attn_pdrop %g must be in [0, 1)",
                     fn, o.embd_pdrop, o.resid_pdrop, o.attn_pdrop), NULL;
  if (o.n_layer > 10000)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: n_layer %lld is too large", fn, (long long)o.n_layer), NULL;
  lam__gpt2 *g = calloc(1, sizeof *g);
  if (!g) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn), NULL;
  g->o = o;
  int64_t E = o.n_embd, I = o.n_inner;
  lam_embedding_opts eo = lam_embedding_defaults();
  eo.no_scale = true;
  eo.init = lam_init_normal(0.02);
  lam_layer_norm_opts no = lam_layer_norm_defaults();
  no.eps = o.layer_norm_epsilon == 0 ? LAM_ZERO : o.layer_norm_epsilon;
  lam__text_children *c = &g->c;
  int ok = lam__text_children_add(c, lam_nn_embedding(o.vocab_size, E, &eo), "transformer.wte") >= 0 &&
           lam__text_children_add(c, lam_nn_embedding(o.n_positions, E, &eo), "transformer.wpe") >= 0;
  for (int64_t l = 0; ok && l < o.n_layer; l++) {
    long long n = (long long)l;
    ok = lam__text_children_add(c, lam_nn_layer_norm(1, &E, &no), "transformer.h.%lld.ln_1", n) >= 0 &&
         lam__text_children_add(c, lam__conv1d_make(E, 3 * E), "transformer.h.%lld.attn.c_attn", n) >= 0 &&
         lam__text_children_add(c, lam__conv1d_make(E, E), "transformer.h.%lld.attn.c_proj", n) >= 0 &&
         lam__text_children_add(c, lam_nn_layer_norm(1, &E, &no), "transformer.h.%lld.ln_2", n) >= 0 &&
         lam__text_children_add(c, lam__conv1d_make(E, I), "transformer.h.%lld.mlp.c_fc", n) >= 0 &&
         lam__text_children_add(c, lam__conv1d_make(I, E), "transformer.h.%lld.mlp.c_proj", n) >= 0;
  }
  if (ok) {
    g->ln_f = lam__text_children_add(c, lam_nn_layer_norm(1, &E, &no), "transformer.ln_f");
    ok = g->ln_f >= 0;
  }
  lam_layer *layer = ok ? lam_nn_custom(&lam__gpt2_vt, g) : NULL;
  if (!layer) {
    lam__text_children_clear(c);
    free(g);
    return NULL;
  }
  layer->children = lam__gpt2_children;
  return layer;
}

/* ---- KV caches ----------------------------------------------------------------------- */

lam_models_gpt2_cache *lam_models_gpt2_cache_create(const lam_layer *gpt2) {
  const char *fn = "lam_models_gpt2_cache_create";
  if (!gpt2) return lam__fail(LAM_ERR_NULL, "%s: gpt2 is NULL", fn), NULL;
  if (gpt2->vt != &lam__gpt2_vt)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: the layer is a %s, not a lam_models_gpt2", fn,
                     lam_layer_name(gpt2)), NULL;
  const lam__gpt2 *g = gpt2->impl;
  lam_models_gpt2_cache *c = calloc(1, sizeof *c);
  if (c) c->kv = calloc((size_t)g->o.n_layer, sizeof *c->kv);
  if (!c || !c->kv) {
    free(c);
    return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn), NULL;
  }
  c->model = g;
  c->n_layer = g->o.n_layer;
  for (int64_t l = 0; l < c->n_layer; l++) {
    if (!(c->kv[l] = lam_kv_cache_create())) {
      lam_models_gpt2_cache_free(c);
      return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn), NULL;
    }
  }
  return c;
}

void lam_models_gpt2_cache_free(lam_models_gpt2_cache *cache) {
  if (!cache) return;
  for (int64_t l = 0; l < cache->n_layer; l++) lam_kv_cache_free(cache->kv[l]);
  free(cache->kv);
  free(cache);
}

void lam_models_gpt2_cache_reset(lam_models_gpt2_cache *cache) {
  if (!cache) return;
  for (int64_t l = 0; l < cache->n_layer; l++) lam_kv_cache_reset(cache->kv[l]);
}

int64_t lam_models_gpt2_cache_length(const lam_models_gpt2_cache *cache) {
  return cache && cache->n_layer > 0 ? lam_kv_cache_length(cache->kv[0]) : 0;
}

lam_status lam_models_gpt2_apply_cached(lam_layer *gpt2, lam_ptree *params, lam_tensor *ids,
                                        lam_models_gpt2_cache *cache, const lam_apply_opts *opts,
                                        lam_tensor **logits) {
  const char *fn = "lam_models_gpt2_apply_cached";
  if (!gpt2 || !params || !cache || !logits)
    return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn,
                     !gpt2 ? "gpt2" : !params ? "params" : !cache ? "cache" : "logits");
  *logits = NULL;
  if (gpt2->vt != &lam__gpt2_vt || cache->model != gpt2->impl)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: %s", fn,
                     gpt2->vt != &lam__gpt2_vt ? "the layer is not a lam_models_gpt2"
                                               : "the cache was made for another model");
  lam_ptree *state = lam_ptree_dict();
  if (!state) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
  lam_status st = lam__gpt2_run(gpt2->impl, params, state, ids, cache, opts, logits, fn);
  lam_ptree_free(state);
  return st;
}

/* ---- generation -------------------------------------------------------------------------- */

lam_models_gpt2_generate_opts lam_models_gpt2_generate_defaults(void) {
  return (lam_models_gpt2_generate_opts){.sample = false, .temperature = 1.0, .top_k = 0};
}

/* The last position's logits of [batch, n, vocab] as doubles [batch, vocab]. */
static double *lam__last_logits(lam_tensor *logits) {
  int64_t B = logits->shape[0], n = logits->shape[1], V = logits->shape[2];
  lam_tensor *last = lam_slice_axis(logits, 1, n - 1, n, 1);
  lam_tensor *f = last ? lam_tensor_cast(last, LAM_F32) : NULL;
  lam_tensor_free(last);
  float *buf = f ? malloc((size_t)(B * V) * sizeof *buf) : NULL;
  double *out = buf ? malloc((size_t)(B * V) * sizeof *out) : NULL;
  if (out && lam_tensor_to_host(f, buf, (size_t)(B * V) * sizeof *buf) == LAM_OK) {
    for (int64_t i = 0; i < B * V; i++) out[i] = buf[i];
  } else {
    if (f && !out) lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "lam_models_gpt2_generate: out of host memory");
    free(out);
    out = NULL;
  }
  free(buf);
  lam_tensor_free(f);
  return out;
}

static int lam__cmp_desc(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? 1 : x > y ? -1 : 0;
}

/* Picks the next token of one row (l: vocab logits, scratch: vocab doubles). */
static int32_t lam__pick(const lam_models_gpt2_generate_opts *o, double *l, double *scratch, int64_t V,
                         int64_t step, int64_t row) {
  int64_t best = 0;
  for (int64_t j = 1; j < V; j++)
    if (l[j] > l[best]) best = j;
  if (!o->sample) return (int32_t)best;
  double thr = -HUGE_VAL;
  if (o->top_k > 0 && o->top_k < V) {
    memcpy(scratch, l, (size_t)V * sizeof *scratch);
    qsort(scratch, (size_t)V, sizeof *scratch, lam__cmp_desc);
    thr = scratch[o->top_k - 1];
  }
  double total = 0;
  for (int64_t j = 0; j < V; j++) {
    scratch[j] = l[j] >= thr ? exp((l[j] - l[best]) / o->temperature) : 0.0;
    total += scratch[j];
  }
  uint32_t ctr[4] = {(uint32_t)step, (uint32_t)row, 0x67656e00u, 0}, r[4];
  lam_philox4x32_10(ctr, o->key.k, r);
  double u = r[0] * (1.0 / 4294967296.0) * total, acc = 0;
  int64_t last = best;
  for (int64_t j = 0; j < V; j++) {
    if (scratch[j] <= 0) continue;
    acc += scratch[j];
    last = j;
    if (u < acc) return (int32_t)j;
  }
  return (int32_t)last;
}

lam_status lam_models_gpt2_generate(lam_layer *gpt2, lam_ptree *params, lam_tensor *prompt,
                                    int64_t max_new_tokens, const lam_models_gpt2_generate_opts *opts,
                                    lam_tensor **out) {
  const char *fn = "lam_models_gpt2_generate";
  if (!gpt2 || !params || !prompt || !out)
    return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn,
                     !gpt2 ? "gpt2" : !params ? "params" : !prompt ? "prompt" : "out");
  *out = NULL;
  if (gpt2->vt != &lam__gpt2_vt)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: the layer is a %s, not a lam_models_gpt2", fn,
                     lam_layer_name(gpt2));
  const lam__gpt2 *g = gpt2->impl;
  lam_models_gpt2_generate_opts d = lam_models_gpt2_generate_defaults(), o = opts ? *opts : d;
  o.temperature = lam__opt_f64(o.temperature, d.temperature);
  if (!(o.temperature > 0) || o.top_k < 0 || max_new_tokens < 0)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: temperature must be > 0, top_k and max_new_tokens >= 0", fn);
  if (prompt->ndim != 2 || prompt->dtype != LAM_I32 || prompt->shape[1] < 1)
    return lam__fail(LAM_ERR_SHAPE, "%s: the prompt must be i32 [batch, seq] with seq >= 1", fn);
  int64_t B = prompt->shape[0], S = prompt->shape[1], T = S + max_new_tokens, V = g->o.vocab_size;
  if (T > g->o.n_positions)
    return lam__fail(LAM_ERR_SHAPE, "%s: %lld prompt + %lld new tokens exceed n_positions %lld", fn,
                     (long long)S, (long long)max_new_tokens, (long long)g->o.n_positions);
  int32_t *ids = malloc((size_t)(B * T) * sizeof *ids), *prm = malloc((size_t)(B * S) * sizeof *prm);
  int32_t *next = malloc((size_t)B * sizeof *next);
  double *scratch = malloc((size_t)V * sizeof *scratch);
  lam_models_gpt2_cache *cache = lam_models_gpt2_cache_create(gpt2);
  lam_status st = LAM_OK;
  if (!ids || !prm || !next || !scratch) st = lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
  else if (!cache) st = lam_last_status();
  else st = lam_tensor_to_host(prompt, prm, (size_t)(B * S) * sizeof *prm);
  if (st == LAM_OK)
    for (int64_t b = 0; b < B; b++) memcpy(ids + b * T, prm + b * S, (size_t)S * sizeof *ids);
  lam_tensor *step_ids = st == LAM_OK ? lam_tensor_retain(prompt) : NULL;
  for (int64_t t = 0; st == LAM_OK && t < max_new_tokens; t++) {
    lam_tensor *logits = NULL;
    st = lam_models_gpt2_apply_cached(gpt2, params, step_ids, cache, NULL, &logits);
    lam_tensor_free(step_ids);
    step_ids = NULL;
    double *l = st == LAM_OK ? lam__last_logits(logits) : NULL;
    lam_tensor_free(logits);
    if (st == LAM_OK && !l) st = lam_last_status();
    for (int64_t b = 0; l && b < B; b++) {
      next[b] = lam__pick(&o, l + b * V, scratch, V, t, b);
      ids[b * T + S + t] = next[b];
    }
    free(l);
    if (st == LAM_OK && t + 1 < max_new_tokens) {
      step_ids = lam_tensor_from_host(prompt->ctx, LAM_I32, 2, (int64_t[]){B, 1}, next);
      if (!step_ids) st = lam_last_status();
    }
  }
  lam_tensor_free(step_ids);
  if (st == LAM_OK) {
    *out = lam_tensor_from_host(prompt->ctx, LAM_I32, 2, (int64_t[]){B, T}, ids);
    if (!*out) st = lam_last_status();
  }
  lam_models_gpt2_cache_free(cache);
  free(ids);
  free(prm);
  free(next);
  free(scratch);
  return st;
}
