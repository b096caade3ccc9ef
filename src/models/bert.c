/* models/bert.c: a BERT-family encoder with Hugging Face BertModel's
 * parameter names (embeddings.*, encoder.layer.N.*, pooler.dense), built from
 * lamina layers (linear, embedding without scaling, layer norm) and
 * lam_scaled_dot_product_attention with the key padding mask of the aux
 * context. Post-LN blocks and exact (erf) GELU, as BertModel; its dropouts
 * (hidden_dropout_prob, attention_probs_dropout_prob) in training, keyed by
 * their module paths (embeddings.dropout, encoder.layer.N.attention.self.dropout,
 * ...attention.output.dropout, ...output.dropout). */
#include <stdlib.h>
#include <string.h>

#include "lamina/attention.h"
#include "lamina/dense.h"
#include "lamina/elementwise.h"
#include "lamina/init.h"
#include "lamina/models_text.h"
#include "lamina/norm.h"
#include "lamina/shape.h"
#include "models/text_internal.h"

/* Child indices: the embeddings, then BERT__PER_LAYER per encoder layer,
 * then the pooler. */
enum { BERT_WORD, BERT_POS, BERT_TYPE, BERT_EMB_LN, BERT__EMB };
enum { BL_Q, BL_K, BL_V, BL_AO, BL_AO_LN, BL_INTER, BL_OUT, BL_OUT_LN, BERT__PER_LAYER };

typedef struct {
  lam_models_bert_opts o;
  lam__text_children c;
  int pooler; /* child index or -1 */
} lam__bert;

lam_models_bert_opts lam_models_bert_defaults(void) {
  return (lam_models_bert_opts){.vocab_size = 30522,
                                .hidden_size = 768,
                                .num_hidden_layers = 12,
                                .num_attention_heads = 12,
                                .intermediate_size = 3072,
                                .max_position_embeddings = 512,
                                .type_vocab_size = 2,
                                .layer_norm_eps = 1e-12};
}

static void lam__bert_free(lam_layer *self) {
  lam__bert *b = self->impl;
  lam__text_children_clear(&b->c);
  free(b);
}

static lam_status lam__bert_init(lam_layer *self, lam_ctx *ctx, lam_rng_key key, lam_dtype dtype,
                                 lam_ptree *params, lam_ptree *state) {
  lam__bert *b = self->impl;
  return lam__text_children_init(&b->c, ctx, key, dtype, params, state);
}

static lam_layer *lam__bert_children(const lam_layer *self, int i, const char **key) {
  const lam__bert *b = self->impl;
  return lam__text_children_get(&b->c, i, key);
}

/* x + y, then the layer norm child ln; frees nothing of its inputs. */
static lam_tensor *lam__add_norm(const lam__bert *b, int ln, lam_tensor *x, lam_tensor *y,
                                 lam_ptree *params, lam_ptree *state, const lam_apply_opts *opts) {
  lam_tensor *s = x && y ? lam_add(x, y) : NULL;
  lam_tensor *n = lam__text_children_apply(&b->c, ln, params, state, s, opts);
  lam_tensor_free(s);
  return n;
}

static lam_tensor *lam__bert_embed(const lam__bert *b, lam_ptree *params, lam_ptree *state,
                                   lam_tensor *ids, const lam_apply_opts *opts, const char *fn) {
  int64_t batch = ids->shape[0], seq = ids->shape[1];
  lam_tensor *types = opts->aux ? lam_aux_get(opts->aux, LAM_MODELS_TOKEN_TYPE_IDS_KEY) : NULL;
  if (types && (types->ndim != 2 || types->shape[0] != batch || types->shape[1] != seq ||
                types->dtype != LAM_I32))
    return lam__fail(LAM_ERR_SHAPE, "%s: aux %s must be i32 [%lld, %lld]", fn,
                     LAM_MODELS_TOKEN_TYPE_IDS_KEY, (long long)batch, (long long)seq), NULL;
  lam_tensor *zeros = types ? NULL : lam_tensor_zeros(ids->ctx, LAM_I32, 2, ids->shape);
  lam_tensor *pos = lam_tensor_arange(ids->ctx, LAM_I32, 0, (double)seq, 1);
  lam_tensor *w = lam__text_children_apply(&b->c, BERT_WORD, params, state, ids, opts);
  lam_tensor *p = lam__text_children_apply(&b->c, BERT_POS, params, state, pos, opts);
  lam_tensor *t = lam__text_children_apply(&b->c, BERT_TYPE, params, state, types ? types : zeros, opts);
  lam_tensor *wp = w && p ? lam_add(w, p) : NULL;
  lam_tensor *e = wp && t ? lam_add(wp, t) : NULL;
  lam_tensor *h = lam__text_children_apply(&b->c, BERT_EMB_LN, params, state, e, opts);
  h = lam__models_dropout(h, b->o.hidden_dropout_prob, false, opts, "embeddings.dropout");
  lam_tensor_free(zeros);
  lam_tensor_free(pos);
  lam_tensor_free(w);
  lam_tensor_free(p);
  lam_tensor_free(t);
  lam_tensor_free(wp);
  lam_tensor_free(e);
  return h;
}

static lam_tensor *lam__bert_block(const lam__bert *b, int layer, lam_ptree *params, lam_ptree *state,
                                   lam_tensor *h, lam_tensor *mask, const lam_apply_opts *opts) {
  int c0 = BERT__EMB + layer * BERT__PER_LAYER;
  int64_t heads = b->o.num_attention_heads;
  lam_tensor *qp = lam__text_children_apply(&b->c, c0 + BL_Q, params, state, h, opts);
  lam_tensor *kp = lam__text_children_apply(&b->c, c0 + BL_K, params, state, h, opts);
  lam_tensor *vp = lam__text_children_apply(&b->c, c0 + BL_V, params, state, h, opts);
  lam_tensor *q = lam__text_heads_split(qp, heads), *k = lam__text_heads_split(kp, heads),
             *v = lam__text_heads_split(vp, heads);
  lam_tensor_free(qp);
  lam_tensor_free(kp);
  lam_tensor_free(vp);
  lam_attention_opts ao = lam_attention_defaults();
  ao.key_padding_mask = mask;
  lam__models_attention_dropout(&ao, b->o.attention_probs_dropout_prob, opts,
                                "encoder.layer.%d.attention.self.dropout", layer);
  lam_tensor *a = q && k && v ? lam_scaled_dot_product_attention(q, k, v, &ao) : NULL;
  lam_tensor_free(q);
  lam_tensor_free(k);
  lam_tensor_free(v);
  lam_tensor *am = lam__text_heads_merge(a);
  lam_tensor_free(a);
  lam_tensor *ad = lam__text_children_apply(&b->c, c0 + BL_AO, params, state, am, opts);
  lam_tensor_free(am);
  ad = lam__models_dropout(ad, b->o.hidden_dropout_prob, false, opts, "encoder.layer.%d.attention.output.dropout",
                           layer);
  lam_tensor *h1 = lam__add_norm(b, c0 + BL_AO_LN, ad, h, params, state, opts);
  lam_tensor_free(ad);
  lam_tensor *i1 = lam__text_children_apply(&b->c, c0 + BL_INTER, params, state, h1, opts);
  lam_tensor *g = i1 ? lam_gelu(i1) : NULL;
  lam_tensor_free(i1);
  lam_tensor *o = lam__text_children_apply(&b->c, c0 + BL_OUT, params, state, g, opts);
  lam_tensor_free(g);
  o = lam__models_dropout(o, b->o.hidden_dropout_prob, false, opts, "encoder.layer.%d.output.dropout", layer);
  lam_tensor *h2 = lam__add_norm(b, c0 + BL_OUT_LN, o, h1, params, state, opts);
  lam_tensor_free(o);
  lam_tensor_free(h1);
  return h2;
}

static lam_status lam__bert_run(const lam__bert *b, lam_ptree *params, lam_ptree *state, lam_tensor *ids,
                                const lam_apply_opts *opts, lam_tensor **hidden, lam_tensor **pooled,
                                const char *fn) {
  lam_apply_opts def = lam_apply_defaults();
  if (!opts) opts = &def;
  if (!ids) return lam__fail(LAM_ERR_NULL, "%s: ids is NULL", fn);
  if (ids->ndim != 2 || ids->dtype != LAM_I32)
    return lam__fail(LAM_ERR_SHAPE, "%s: expects i32 token ids [batch, seq]", fn);
  if (ids->shape[1] > b->o.max_position_embeddings)
    return lam__fail(LAM_ERR_SHAPE, "%s: %lld tokens exceed max_position_embeddings %lld", fn,
                     (long long)ids->shape[1], (long long)b->o.max_position_embeddings);
  lam_tensor *mask = opts->aux ? lam_aux_get(opts->aux, LAM_ATTENTION_MASK_KEY) : NULL;
  if (mask && (mask->ndim != 2 || mask->shape[0] != ids->shape[0] || mask->shape[1] != ids->shape[1]))
    return lam__fail(LAM_ERR_SHAPE, "%s: the attention mask must be [batch, seq] = [%lld, %lld]", fn,
                     (long long)ids->shape[0], (long long)ids->shape[1]);
  if (pooled && b->pooler < 0)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: the model has no pooler (no_pooler)", fn);
  lam_status st = lam__models_check_rng(opts, b->o.hidden_dropout_prob > 0 || b->o.attention_probs_dropout_prob > 0,
                                        fn);
  if (st != LAM_OK) return st;
  lam_tensor *h = lam__bert_embed(b, params, state, ids, opts, fn);
  for (int64_t l = 0; h && l < b->o.num_hidden_layers; l++) {
    lam_tensor *n = lam__bert_block(b, (int)l, params, state, h, mask, opts);
    lam_tensor_free(h);
    h = n;
  }
  if (!h) return lam_last_status();
  if (pooled) {
    lam_tensor *first = lam_slice_axis(h, 1, 0, 1, 1);
    lam_tensor *f2 = first ? lam_squeeze(first, 1) : NULL;
    lam_tensor *d = lam__text_children_apply(&b->c, b->pooler, params, state, f2, opts);
    *pooled = d ? lam_tanh(d) : NULL;
    lam_tensor_free(first);
    lam_tensor_free(f2);
    lam_tensor_free(d);
    if (!*pooled) {
      lam_tensor_free(h);
      return lam_last_status();
    }
  }
  *hidden = h;
  return LAM_OK;
}

static lam_status lam__bert_apply(lam_layer *self, lam_ptree *params, lam_ptree *state, lam_tensor *x,
                                  const lam_apply_opts *opts, lam_tensor **out) {
  return lam__bert_run(self->impl, params, state, x, opts, out, NULL, "lam_layer_apply: bert");
}

static const lam_layer_vtable lam__bert_vt = {"bert", lam__bert_init, lam__bert_apply, lam__bert_free};

lam_status lam_models_bert_apply(lam_layer *bert, lam_ptree *params, lam_tensor *ids,
                                 const lam_apply_opts *opts, lam_tensor **hidden, lam_tensor **pooled) {
  const char *fn = "lam_models_bert_apply";
  if (!bert || !params || !hidden)
    return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, !bert ? "bert" : !params ? "params" : "hidden");
  *hidden = NULL;
  if (pooled) *pooled = NULL;
  if (bert->vt != &lam__bert_vt)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: the layer is a %s, not a lam_models_bert", fn,
                     lam_layer_name(bert));
  lam_ptree *state = lam_ptree_dict();
  if (!state) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
  lam_status st = lam__bert_run(bert->impl, params, state, ids, opts, hidden, pooled, fn);
  lam_ptree_free(state);
  return st;
}

lam_layer *lam_models_bert(const lam_models_bert_opts *opts) {
  const char *fn = "lam_models_bert";
  lam_models_bert_opts d = lam_models_bert_defaults(), o = opts ? *opts : d;
  o.vocab_size = lam__opt_i64(o.vocab_size, d.vocab_size);
  o.hidden_size = lam__opt_i64(o.hidden_size, d.hidden_size);
  o.num_hidden_layers = lam__opt_i64(o.num_hidden_layers, d.num_hidden_layers);
  o.num_attention_heads = lam__opt_i64(o.num_attention_heads, d.num_attention_heads);
  o.intermediate_size = lam__opt_i64(o.intermediate_size, d.intermediate_size);
  o.max_position_embeddings = lam__opt_i64(o.max_position_embeddings, d.max_position_embeddings);
  o.type_vocab_size = lam__opt_i64(o.type_vocab_size, d.type_vocab_size);
  o.layer_norm_eps = lam__opt_f64(o.layer_norm_eps, d.layer_norm_eps);
  if (o.vocab_size < 1 || o.hidden_size < 1 || o.num_hidden_layers < 1 || o.num_attention_heads < 1 ||
      o.intermediate_size < 1 || o.max_position_embeddings < 1 || o.type_vocab_size < 1)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: every size of the config must be >= 1", fn), NULL;
  if (o.hidden_size % o.num_attention_heads != 0)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: hidden_size %lld is not divisible by num_attention_heads %lld",
                     fn, (long long)o.hidden_size, (long long)o.num_attention_heads), NULL;
  if (!(o.layer_norm_eps >= 0))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: layer_norm_eps must be >= 0", fn), NULL;
  if (!(o.hidden_dropout_prob >= 0 && o.hidden_dropout_prob < 1) ||
      !(o.attention_probs_dropout_prob >= 0 && o.attention_probs_dropout_prob < 1))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                     "%s: hidden_dropout_prob %g and attention_probs_dropout_prob %g must be in [0, 1)", fn,
                     o.hidden_dropout_prob, o.attention_probs_dropout_prob), NULL;
  if (o.num_hidden_layers > 10000)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: num_hidden_layers %lld is too large", fn,
                     (long long)o.num_hidden_layers), NULL;
  lam__bert *b = calloc(1, sizeof *b);
  if (!b) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn), NULL;
  b->o = o;
  b->pooler = -1;
  int64_t H = o.hidden_size, I = o.intermediate_size;
  lam_linear_opts lo = lam_linear_defaults();
  lo.weight_init = lam_init_normal(0.02);
  lam_embedding_opts eo = lam_embedding_defaults();
  eo.no_scale = true;
  eo.init = lam_init_normal(0.02);
  lam_layer_norm_opts no = lam_layer_norm_defaults();
  no.eps = o.layer_norm_eps == 0 ? LAM_ZERO : o.layer_norm_eps;
  lam__text_children *c = &b->c;
  int ok = lam__text_children_add(c, lam_nn_embedding(o.vocab_size, H, &eo), "embeddings.word_embeddings") >= 0 &&
           lam__text_children_add(c, lam_nn_embedding(o.max_position_embeddings, H, &eo),
                             "embeddings.position_embeddings") >= 0 &&
           lam__text_children_add(c, lam_nn_embedding(o.type_vocab_size, H, &eo), "embeddings.token_type_embeddings") >= 0 &&
           lam__text_children_add(c, lam_nn_layer_norm(1, &H, &no), "embeddings.LayerNorm") >= 0;
  for (int64_t l = 0; ok && l < o.num_hidden_layers; l++) {
    long long n = (long long)l;
    ok = lam__text_children_add(c, lam_nn_linear(H, H, &lo), "encoder.layer.%lld.attention.self.query", n) >= 0 &&
         lam__text_children_add(c, lam_nn_linear(H, H, &lo), "encoder.layer.%lld.attention.self.key", n) >= 0 &&
         lam__text_children_add(c, lam_nn_linear(H, H, &lo), "encoder.layer.%lld.attention.self.value", n) >= 0 &&
         lam__text_children_add(c, lam_nn_linear(H, H, &lo), "encoder.layer.%lld.attention.output.dense", n) >= 0 &&
         lam__text_children_add(c, lam_nn_layer_norm(1, &H, &no), "encoder.layer.%lld.attention.output.LayerNorm", n) >= 0 &&
         lam__text_children_add(c, lam_nn_linear(H, I, &lo), "encoder.layer.%lld.intermediate.dense", n) >= 0 &&
         lam__text_children_add(c, lam_nn_linear(I, H, &lo), "encoder.layer.%lld.output.dense", n) >= 0 &&
         lam__text_children_add(c, lam_nn_layer_norm(1, &H, &no), "encoder.layer.%lld.output.LayerNorm", n) >= 0;
  }
  if (ok && !o.no_pooler) {
    b->pooler = lam__text_children_add(c, lam_nn_linear(H, H, &lo), "pooler.dense");
    ok = b->pooler >= 0;
  }
  lam_layer *layer = ok ? lam_nn_custom(&lam__bert_vt, b) : NULL;
  if (!layer) {
    lam__text_children_clear(c);
    free(b);
    return NULL;
  }
  layer->children = lam__bert_children;
  return layer;
}
