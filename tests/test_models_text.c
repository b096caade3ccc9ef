/* test_models_text.c (src/models/bert.c, gpt2.c, text_common.c): the text model zoo (lamina/models_text.h) against
 * Hugging Face on tiny configurations with random weights
 * (tests/data/models_text_golden.safetensors, tools/gen_models_text_golden.py):
 * BertModel's state_dict loads strictly and gives its last hidden state,
 * pooler output, sentence embeddings (mean pooling, L2 normalisation) and the
 * gradients of one loss; GPT2LMHeadModel's gives its logits, the KV-cache
 * decode equals the full pass, and greedy generation equals model.generate's.
 * Dropout acts in training only, follows the rng key, and LAM_ZERO rates
 * leave training equal to evaluation. Bad configs fail naming the constructor. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define GOLDEN "models_text_golden.safetensors"

static const lam_models_bert_opts BERT_CFG = {.vocab_size = 50,
                                              .hidden_size = 16,
                                              .num_hidden_layers = 2,
                                              .num_attention_heads = 2,
                                              .intermediate_size = 32,
                                              .max_position_embeddings = 20,
                                              .type_vocab_size = 2};
static const lam_models_gpt2_opts GPT2_CFG = {.vocab_size = 50, .n_positions = 20, .n_embd = 16, .n_layer = 2,
                                              .n_head = 2};

static lam_vars *load(lam_ctx *ctx, lam_layer *m, const char *prefix) {
  lam_vars *v = NULL;
  cr_assert_not_null(m, "%s", lam_last_error());
  cr_assert_eq(lam_layer_init(m, ctx, lam_rng_key_make(1), LAM_F32, &v), LAM_OK, "%s", lam_last_error());
  lam_load_opts lo = {.prefix = prefix}; /* strict */
  cr_assert_eq(lam_ptree_load_into(lam_vars_params(v), tu_data_path(GOLDEN), &lo), LAM_OK, "%s",
               lam_last_error());
  return v;
}

static void check(const lam_tensor *t, const tu_golden *g, const char *name, double tol) {
  const tu_array *a = tu_golden_get(g, "%s", name);
  cr_assert_eq(lam_tensor_numel(t), a->n, "%s: %lld elements, want %lld", name, (long long)lam_tensor_numel(t),
               (long long)a->n);
  tu_assert_tensor_close(t, a->v, a->n, tol, tol, name);
}

typedef struct {
  lam_layer *bert;
  lam_tensor *ids, *mask;
  const lam_aux *aux;
  lam_tensor *hidden, *pooled, *mean;
} bert_run;

static lam_tensor *bert_loss(lam_ptree *params, void *user) {
  bert_run *r = user;
  lam_apply_opts ao = {.aux = r->aux};
  lam_tensor *h = NULL, *p = NULL;
  if (lam_models_bert_apply(r->bert, params, r->ids, &ao, &h, &p) != LAM_OK) return NULL;
  lam_tensor *m = lam_models_mean_pool(h, r->mask);
  lam_tensor *m2 = lam_square(m), *p2 = lam_square(p);
  lam_tensor *s1 = lam_sum(m2, 0, NULL, 0), *s2 = lam_sum(p2, 0, NULL, 0);
  lam_tensor *l = lam_add(s1, s2);
  lam_tensor_free(h);
  lam_tensor_free(p);
  lam_tensor_free(m);
  lam_tensor_free(m2);
  lam_tensor_free(p2);
  lam_tensor_free(s1);
  lam_tensor_free(s2);
  return l;
}

Test(models_text, bert_matches_hugging_face_outputs_and_gradients) {
  lam_ctx *ctx = tu_ctx();
  tu_golden *g = tu_golden_load(GOLDEN);
  lam_layer *bert = lam_models_bert(&BERT_CFG);
  lam_vars *v = load(ctx, bert, "bert.param.");
  cr_assert_eq(lam_ptree_leaf_count(lam_vars_params(v)), 5 + 16 * 2 + 2);
  lam_tensor *ids = tu_golden_tensor(ctx, LAM_I32, g, "bert.ids");
  lam_tensor *mask = tu_golden_tensor(ctx, LAM_I32, g, "bert.mask");
  lam_tensor *types = tu_golden_tensor(ctx, LAM_I32, g, "bert.types");
  lam_aux *aux = lam_aux_create();
  lam_aux_set(aux, LAM_ATTENTION_MASK_KEY, mask);
  lam_aux_set(aux, LAM_MODELS_TOKEN_TYPE_IDS_KEY, types);
  lam_apply_opts ao = {.aux = aux};
  tu_mark mk = tu_mark_now(ctx);

  /* The layer's output is the last hidden state; the apply gives both. */
  lam_tensor *y = NULL, *h = NULL, *p = NULL;
  cr_assert_eq(lam_layer_apply(bert, v, ids, &ao, &y), LAM_OK, "%s", lam_last_error());
  cr_assert_eq(lam_tensor_ndim(y), 3);
  cr_assert_eq(lam_tensor_dim(y, 2), 16);
  check(y, g, "bert.hidden", 1e-4);
  cr_assert_eq(lam_models_bert_apply(bert, lam_vars_params(v), ids, &ao, &h, &p), LAM_OK, "%s", lam_last_error());
  check(h, g, "bert.hidden", 1e-4);
  check(p, g, "bert.pooled", 1e-4);
  lam_tensor *mean = lam_models_mean_pool(h, mask);
  check(mean, g, "bert.mean", 1e-4);
  lam_tensor *norm = lam_models_l2_normalize(mean);
  check(norm, g, "bert.norm", 1e-4);
  lam_tensor_free(y);
  lam_tensor_free(h);
  lam_tensor_free(p);
  lam_tensor_free(mean);
  lam_tensor_free(norm);

  /* One training step's gradients, for every parameter. */
  bert_run r = {.bert = bert, .ids = ids, .mask = mask, .aux = aux};
  lam_tensor *loss = NULL;
  lam_ptree *grads = NULL;
  cr_assert_eq(lam_value_and_grad(ctx, bert_loss, &r, lam_vars_params(v), &loss, &grads), LAM_OK, "%s",
               lam_last_error());
  check(loss, g, "bert.loss", 1e-4);
  int n = lam_ptree_leaf_count(grads);
  cr_assert_eq(n, lam_ptree_leaf_count(lam_vars_params(v)));
  for (int i = 0; i < n; i++) {
    const char *path = NULL;
    lam_tensor *gr = NULL;
    cr_assert_eq(lam_ptree_leaf(grads, i, &path, &gr), LAM_OK);
    char name[256];
    snprintf(name, sizeof name, "bert.grad.%s", path);
    check(gr, g, name, 2e-4);
  }
  lam_tensor_free(loss);
  lam_ptree_free(grads);
  tu_assert_no_leak(ctx, mk);

  /* Without token types the embeddings use type 0, as Hugging Face. */
  lam_aux *aux0 = lam_aux_create();
  lam_aux_set(aux0, LAM_ATTENTION_MASK_KEY, mask);
  lam_apply_opts ao0 = {.aux = aux0};
  lam_tensor *z = lam_tensor_zeros(ctx, LAM_I32, 2, lam_tensor_shape(ids));
  lam_aux_set(aux, LAM_MODELS_TOKEN_TYPE_IDS_KEY, z);
  lam_tensor *a = NULL, *b = NULL;
  cr_assert_eq(lam_layer_apply(bert, v, ids, &ao0, &a), LAM_OK, "%s", lam_last_error());
  cr_assert_eq(lam_layer_apply(bert, v, ids, &ao, &b), LAM_OK, "%s", lam_last_error());
  cr_assert(tu_bits_equal(a, b));
  lam_tensor_free(a);
  lam_tensor_free(b);
  lam_tensor_free(z);
  lam_aux_free(aux0);

  lam_aux_free(aux);
  lam_tensor_free(ids);
  lam_tensor_free(mask);
  lam_tensor_free(types);
  lam_vars_free(v);
  lam_layer_free(bert);
  tu_golden_free(g);
  lam_ctx_free(ctx);
}

Test(models_text, bert_without_pooler_and_bad_inputs) {
  lam_ctx *ctx = tu_ctx();
  lam_models_bert_opts o = BERT_CFG;
  o.no_pooler = true;
  lam_layer *bert = lam_models_bert(&o);
  lam_vars *v = NULL;
  cr_assert_eq(lam_layer_init(bert, ctx, lam_rng_key_make(1), LAM_F32, &v), LAM_OK, "%s", lam_last_error());
  cr_assert_null(lam_ptree_get(lam_vars_params(v), "pooler.dense.weight"));
  lam_error_clear();
  cr_assert_not_null(lam_ptree_get(lam_vars_params(v), "encoder.layer.1.attention.self.query.weight"));
  /* The file has the pooler: a strict load names its keys, a non-strict one skips them. */
  cr_assert_neq(lam_ptree_load_into(lam_vars_params(v), tu_data_path(GOLDEN), &(lam_load_opts){.prefix = "bert.param."}),
                LAM_OK);
  cr_assert(strstr(lam_last_error(), "pooler.dense.weight"), "%s", lam_last_error());
  cr_assert_eq(lam_ptree_load_into(lam_vars_params(v), tu_data_path(GOLDEN),
                                   &(lam_load_opts){.prefix = "bert.param.", .non_strict = true}),
               LAM_OK, "%s", lam_last_error());
  int32_t idv[2 * 21] = {0};
  lam_tensor *ids = lam_tensor_from_host(ctx, LAM_I32, 2, (int64_t[]){2, 3}, idv);
  lam_tensor *h = NULL, *p = NULL;
  tu_assert_status(lam_models_bert_apply(bert, lam_vars_params(v), ids, NULL, &h, &p), LAM_ERR_INVALID_ARGUMENT,
                   "no pooler");
  cr_assert_eq(lam_models_bert_apply(bert, lam_vars_params(v), ids, NULL, &h, NULL), LAM_OK, "%s", lam_last_error());
  lam_tensor_free(h);
  lam_tensor *longer = lam_tensor_from_host(ctx, LAM_I32, 2, (int64_t[]){2, 21}, idv);
  lam_tensor *y = NULL;
  tu_assert_status(lam_layer_apply(bert, v, longer, NULL, &y), LAM_ERR_SHAPE, "max_position_embeddings");
  lam_tensor *f = lam_tensor_zeros(ctx, LAM_F32, 2, (int64_t[]){2, 3});
  tu_assert_status(lam_layer_apply(bert, v, f, NULL, &y), LAM_ERR_SHAPE, "i32 token ids");
  lam_tensor_free(f);
  lam_tensor_free(longer);
  FILE *null = fopen("/dev/null", "w");
  cr_assert_eq(lam_layer_summary(bert, v, 2, (int64_t[]){2, 3}, &(lam_layer_summary_opts){.input_dtype = LAM_I32},
                                 null),
               LAM_OK, "%s", lam_last_error());
  fclose(null);
  lam_tensor_free(ids);
  lam_vars_free(v);
  lam_layer_free(bert);
  lam_ctx_free(ctx);
}

Test(models_text, gpt2_matches_hugging_face_logits_cache_and_greedy) {
  lam_ctx *ctx = tu_ctx();
  tu_golden *g = tu_golden_load(GOLDEN);
  lam_layer *gpt = lam_models_gpt2(&GPT2_CFG);
  lam_vars *v = load(ctx, gpt, "gpt2.param.");
  lam_ptree *params = lam_vars_params(v);
  cr_assert_eq(lam_tensor_dim(lam_ptree_get(params, "transformer.h.0.attn.c_attn.weight"), 1), 48,
               "Conv1D weights keep HF's [in, out] layout");
  lam_tensor *ids = tu_golden_tensor(ctx, LAM_I32, g, "gpt2.ids");
  lam_tensor *prompt = tu_golden_tensor(ctx, LAM_I32, g, "gpt2.prompt");
  tu_mark mk = tu_mark_now(ctx);
  lam_tensor *logits = NULL;
  cr_assert_eq(lam_layer_apply(gpt, v, ids, NULL, &logits), LAM_OK, "%s", lam_last_error());
  cr_assert_eq(lam_tensor_dim(logits, 2), 50);
  check(logits, g, "gpt2.logits", 1e-4);

  /* The KV-cache decode in pieces (3, 1, 3 tokens) equals the full pass. */
  double *want = tu_to_f64(logits);
  lam_tensor_free(logits);
  lam_models_gpt2_cache *cache = lam_models_gpt2_cache_create(gpt);
  const int64_t cuts[4] = {0, 3, 4, 7};
  for (int p = 0; p < 3; p++) {
    lam_tensor *piece = lam_slice_axis(ids, 1, cuts[p], cuts[p + 1], 1);
    lam_tensor *pl = NULL;
    cr_assert_eq(lam_models_gpt2_apply_cached(gpt, params, piece, cache, NULL, &pl), LAM_OK, "%s",
                 lam_last_error());
    cr_assert_eq(lam_models_gpt2_cache_length(cache), cuts[p + 1]);
    double *got = tu_to_f64(pl);
    int64_t n = cuts[p + 1] - cuts[p];
    for (int64_t b = 0; b < 2; b++)
      tu_assert_close_f64(got + b * n * 50, want + (b * 7 + cuts[p]) * 50, n * 50, 1e-5, 1e-5, "cached piece");
    free(got);
    lam_tensor_free(pl);
    lam_tensor_free(piece);
  }
  free(want);
  lam_models_gpt2_cache_reset(cache);
  cr_assert_eq(lam_models_gpt2_cache_length(cache), 0);
  lam_models_gpt2_cache_free(cache);

  /* An all-ones attention mask changes nothing; masking keys of row 1 leaves row 0 alone. */
  int32_t mv[14] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  lam_tensor *ones = lam_tensor_from_host(ctx, LAM_I32, 2, (int64_t[]){2, 7}, mv);
  mv[7] = mv[8] = 0;
  lam_tensor *part = lam_tensor_from_host(ctx, LAM_I32, 2, (int64_t[]){2, 7}, mv);
  lam_aux *aux = lam_aux_create();
  lam_aux_set(aux, LAM_ATTENTION_MASK_KEY, ones);
  lam_apply_opts ao = {.aux = aux};
  cr_assert_eq(lam_layer_apply(gpt, v, ids, &ao, &logits), LAM_OK, "%s", lam_last_error());
  check(logits, g, "gpt2.logits", 1e-4);
  lam_tensor_free(logits);
  lam_aux_set(aux, LAM_ATTENTION_MASK_KEY, part);
  cr_assert_eq(lam_layer_apply(gpt, v, ids, &ao, &logits), LAM_OK, "%s", lam_last_error());
  double *masked = tu_to_f64(logits);
  const double *ref = tu_golden_values(g, "gpt2.logits");
  tu_assert_close_f64(masked, ref, 7 * 50, 1e-4, 1e-4, "row 0 with row 1 masked");
  double diff = 0;
  for (int i = 7 * 50 + 2 * 50; i < 14 * 50; i++) diff += fabs(masked[i] - ref[i]);
  cr_assert_gt(diff, 1e-3, "masking keys changes row 1");
  free(masked);
  lam_tensor_free(logits);
  lam_aux_free(aux);
  lam_tensor_free(ones);
  lam_tensor_free(part);

  /* Greedy generation equals model.generate(do_sample=False). */
  lam_tensor *gen = NULL;
  cr_assert_eq(lam_models_gpt2_generate(gpt, params, prompt, 5, NULL, &gen), LAM_OK, "%s", lam_last_error());
  check(gen, g, "gpt2.greedy", 0);
  lam_tensor_free(gen);

  /* Sampling: top_k 1 is greedy; a key gives the same tokens each time, in range. */
  lam_models_gpt2_generate_opts so = {.sample = true, .top_k = 1, .key = lam_rng_key_make(7)};
  cr_assert_eq(lam_models_gpt2_generate(gpt, params, prompt, 5, &so, &gen), LAM_OK, "%s", lam_last_error());
  check(gen, g, "gpt2.greedy", 0);
  lam_tensor_free(gen);
  so = (lam_models_gpt2_generate_opts){.sample = true, .temperature = 2.0, .top_k = 10, .key = lam_rng_key_make(7)};
  lam_tensor *s1 = NULL, *s2 = NULL;
  cr_assert_eq(lam_models_gpt2_generate(gpt, params, prompt, 6, &so, &s1), LAM_OK, "%s", lam_last_error());
  cr_assert_eq(lam_models_gpt2_generate(gpt, params, prompt, 6, &so, &s2), LAM_OK, "%s", lam_last_error());
  cr_assert(tu_bits_equal(s1, s2));
  cr_assert_eq(lam_tensor_dim(s1, 1), 9);
  double *sv = tu_to_f64(s1);
  for (int i = 0; i < 18; i++) cr_assert(sv[i] >= 0 && sv[i] < 50);
  free(sv);
  lam_tensor_free(s1);
  lam_tensor_free(s2);
  tu_assert_status(lam_models_gpt2_generate(gpt, params, prompt, 18, NULL, &gen), LAM_ERR_SHAPE, "n_positions");
  tu_assert_no_leak(ctx, mk);
  lam_tensor_free(prompt);
  lam_tensor_free(ids);
  lam_vars_free(v);
  lam_layer_free(gpt);
  tu_golden_free(g);
  lam_ctx_free(ctx);
}

/* The model's output for ids on the host (training with key when key is not NULL). */
static double *run_host(lam_layer *m, lam_vars *v, lam_tensor *ids, const lam_aux *aux, const lam_rng_key *key,
                        int64_t *n) {
  lam_tensor *y = NULL;
  cr_assert_eq(lam_layer_apply(m, v, ids, &(lam_apply_opts){.training = key != NULL, .rng = key, .aux = aux}, &y),
               LAM_OK, "%s", lam_last_error());
  *n = lam_tensor_numel(y);
  double *h = tu_to_f64(y);
  lam_tensor_free(y);
  return h;
}

static double max_diff(const double *a, const double *b, int64_t n) {
  double d = 0;
  for (int64_t i = 0; i < n; i++) d = fmax(d, fabs(a[i] - b[i]));
  return d;
}

/* A model (the golden's weights) with a dropout rate set: evaluation gives the golden
 * output; training differs from it, is the same for the same key and differs for another;
 * with every rate LAM_ZERO (which == nrates) training equals evaluation. */
static void check_dropout(lam_ctx *ctx, const tu_golden *g, lam_layer *m, const char *prefix, const char *want,
                          const lam_aux *aux, bool zero, const char *what) {
  lam_vars *v = load(ctx, m, prefix);
  lam_tensor *ids = tu_golden_tensor(ctx, LAM_I32, g, "%s", strstr(prefix, "bert") ? "bert.ids" : "gpt2.ids");
  lam_rng_key k1 = lam_rng_key_make(21), k2 = lam_rng_key_make(22);
  int64_t n = 0;
  double *e = run_host(m, v, ids, aux, NULL, &n), *t1 = run_host(m, v, ids, aux, &k1, &n),
         *t1b = run_host(m, v, ids, aux, &k1, &n), *t2 = run_host(m, v, ids, aux, &k2, &n);
  tu_assert_close_f64(e, tu_golden_values(g, "%s", want), n, 1e-4, 1e-4, what);
  cr_assert_eq(max_diff(t1, t1b, n), 0, "%s: the same key drops the same", what);
  if (zero) {
    cr_assert_eq(max_diff(t1, e, n), 0, "%s: rate LAM_ZERO, training is evaluation", what);
  } else {
    cr_assert_gt(max_diff(t1, e, n), 1e-3, "%s: active in training", what);
    cr_assert_gt(max_diff(t1, t2, n), 1e-3, "%s: another key", what);
    lam_tensor *y = NULL;
    tu_assert_status(lam_layer_apply(m, v, ids, &(lam_apply_opts){.training = true, .aux = aux}, &y),
                     LAM_ERR_INVALID_ARGUMENT, "rng");
  }
  free(e);
  free(t1);
  free(t1b);
  free(t2);
  lam_tensor_free(ids);
  lam_vars_free(v);
  lam_layer_free(m);
}

typedef struct {
  lam_layer *bert;
  lam_tensor *ids;
  const lam_aux *aux;
  const lam_rng_key *key;
} dropout_run;

/* sum(hidden^2) of a training pass. */
static lam_tensor *dropout_loss(lam_ptree *params, void *user) {
  dropout_run *r = user;
  lam_tensor *h = NULL;
  lam_apply_opts ao = {.training = true, .rng = r->key, .aux = r->aux};
  if (lam_models_bert_apply(r->bert, params, r->ids, &ao, &h, NULL) != LAM_OK) return NULL;
  lam_tensor *h2 = lam_square(h);
  lam_tensor *l = lam_sum(h2, 0, NULL, 0);
  lam_tensor_free(h);
  lam_tensor_free(h2);
  return l;
}

Test(models_text, dropout_acts_in_training_only_and_follows_the_key) {
  lam_ctx *ctx = tu_ctx();
  tu_golden *g = tu_golden_load(GOLDEN);
  lam_tensor *mask = tu_golden_tensor(ctx, LAM_I32, g, "bert.mask");
  lam_tensor *types = tu_golden_tensor(ctx, LAM_I32, g, "bert.types");
  lam_aux *aux = lam_aux_create();
  lam_aux_set(aux, LAM_ATTENTION_MASK_KEY, mask);
  lam_aux_set(aux, LAM_MODELS_TOKEN_TYPE_IDS_KEY, types);
  for (int which = 0; which < 3; which++) {
    lam_models_bert_opts o = BERT_CFG;
    double r = which == 2 ? LAM_ZERO : 0.3;
    if (which != 1) o.hidden_dropout_prob = r;
    if (which != 0) o.attention_probs_dropout_prob = r;
    check_dropout(ctx, g, lam_models_bert(&o), "bert.param.", "bert.hidden", aux, which == 2,
                  which == 0 ? "bert hidden_dropout_prob" : which == 1 ? "bert attention_probs_dropout_prob"
                                                                       : "bert LAM_ZERO");
  }
  for (int which = 0; which < 4; which++) {
    lam_models_gpt2_opts o = GPT2_CFG;
    double r = which == 3 ? LAM_ZERO : 0.3;
    if (which == 0 || which == 3) o.embd_pdrop = r;
    if (which == 1 || which == 3) o.resid_pdrop = r;
    if (which == 2 || which == 3) o.attn_pdrop = r;
    static const char *const names[4] = {"gpt2 embd_pdrop", "gpt2 resid_pdrop", "gpt2 attn_pdrop", "gpt2 LAM_ZERO"};
    check_dropout(ctx, g, lam_models_gpt2(&o), "gpt2.param.", "gpt2.logits", NULL, which == 3, names[which]);
  }
  /* A training step's gradient through the dropouts: finite, nonzero, the same for the same key. */
  lam_models_bert_opts o = BERT_CFG;
  o.hidden_dropout_prob = 0.2;
  o.attention_probs_dropout_prob = 0.2;
  lam_layer *bert = lam_models_bert(&o);
  lam_vars *v = load(ctx, bert, "bert.param.");
  lam_tensor *ids = tu_golden_tensor(ctx, LAM_I32, g, "bert.ids");
  lam_rng_key key = lam_rng_key_make(23);
  double *gr[2] = {NULL, NULL};
  int64_t gn = 0;
  for (int t = 0; t < 2; t++) {
    dropout_run r = {bert, ids, aux, &key};
    lam_tensor *loss = NULL;
    lam_ptree *grads = NULL;
    cr_assert_eq(lam_value_and_grad(ctx, dropout_loss, &r, lam_vars_params(v), &loss, &grads), LAM_OK, "%s",
                 lam_last_error());
    lam_tensor *w = lam_ptree_get(grads, "encoder.layer.0.attention.self.query.weight");
    cr_assert_not_null(w);
    gn = lam_tensor_numel(w);
    gr[t] = tu_to_f64(w);
    lam_tensor_free(loss);
    lam_ptree_free(grads);
  }
  double norm = 0;
  for (int64_t i = 0; i < gn; i++) {
    cr_assert(isfinite(gr[0][i]));
    norm += fabs(gr[0][i]);
  }
  cr_assert_gt(norm, 0, "the query weight gets a gradient through the dropped attention");
  cr_assert_eq(max_diff(gr[0], gr[1], gn), 0, "the same key, the same gradient");
  free(gr[0]);
  free(gr[1]);
  tu_assert_fails(lam_models_bert(&(lam_models_bert_opts){.hidden_dropout_prob = 1}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_models_bert: hidden_dropout_prob");
  tu_assert_fails(lam_models_gpt2(&(lam_models_gpt2_opts){.attn_pdrop = -0.5}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_models_gpt2: embd_pdrop");
  lam_vars_free(v);
  lam_layer_free(bert);
  lam_tensor_free(ids);
  lam_aux_free(aux);
  lam_tensor_free(mask);
  lam_tensor_free(types);
  tu_golden_free(g);
  lam_ctx_free(ctx);
}

Test(models_text, configs_default_and_bad_ones_fail_naming_the_constructor) {
  lam_models_bert_opts bd = lam_models_bert_defaults();
  cr_assert_eq(bd.hidden_size, 768);
  cr_assert_eq(bd.num_hidden_layers, 12);
  cr_assert_eq(bd.layer_norm_eps, 1e-12);
  lam_models_gpt2_opts gd = lam_models_gpt2_defaults();
  cr_assert_eq(gd.vocab_size, 50257);
  cr_assert_eq(gd.n_inner, 3072);
  cr_assert_eq(lam_models_gpt2_generate_defaults().temperature, 1.0);
  tu_assert_fails(lam_models_bert(&(lam_models_bert_opts){.hidden_size = 15, .num_attention_heads = 2}),
                  LAM_ERR_INVALID_ARGUMENT, "lam_models_bert");
  tu_assert_fails(lam_models_bert(&(lam_models_bert_opts){.vocab_size = -1}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_models_bert");
  tu_assert_fails(lam_models_gpt2(&(lam_models_gpt2_opts){.n_embd = 10, .n_head = 3}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_models_gpt2");
  tu_assert_fails(lam_models_gpt2(&(lam_models_gpt2_opts){.layer_norm_epsilon = -1}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_models_gpt2");
  tu_assert_fails(lam_models_gpt2_cache_create(NULL), LAM_ERR_NULL, "lam_models_gpt2_cache_create");
  /* NULL, a zeroed struct and the defaults build the same (bert-base sized) model. */
  lam_layer *a = lam_models_bert(NULL), *b = lam_models_bert(&(lam_models_bert_opts){0});
  cr_assert_not_null(a);
  cr_assert_not_null(b);
  cr_assert_eq(lam_layer_child_count(a), lam_layer_child_count(b));
  cr_assert_eq(lam_layer_child_count(a), 4 + 12 * 8 + 1);
  cr_assert_str_eq(lam_layer_child_key(a, 4), "encoder.layer.0.attention.self.query");
  tu_assert_fails(lam_models_gpt2_cache_create(a), LAM_ERR_INVALID_ARGUMENT, "not a lam_models_gpt2");
  lam_layer_free(a);
  lam_layer_free(b);
}
