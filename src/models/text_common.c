/* models/text_common.c: pieces shared by the zoo models: the named child list,
 * attention head split / merge, and the sentence-embedding helpers (mean
 * pooling with the attention mask, L2 normalisation). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/elementwise.h"
#include "lamina/models_text.h"
#include "lamina/reduce.h"
#include "lamina/regularize.h"
#include "lamina/shape.h"
#include "models/text_internal.h"

int lam__text_children_add(lam__text_children *c, lam_layer *layer, const char *fmt, ...) {
  if (!layer) return -1;
  if (c->n == c->cap) {
    int cap = c->cap ? 2 * c->cap : 16;
    lam_layer **l = realloc(c->layer, (size_t)cap * sizeof *l);
    if (l) c->layer = l;
    char **k = l ? realloc(c->key, (size_t)cap * sizeof *k) : NULL;
    if (k) c->key = k;
    if (!l || !k) {
      lam_layer_free(layer);
      lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "lam_models: out of host memory");
      return -1;
    }
    c->cap = cap;
  }
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  char *k = malloc(strlen(buf) + 1);
  if (!k) {
    lam_layer_free(layer);
    lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "lam_models: out of host memory");
    return -1;
  }
  strcpy(k, buf);
  c->layer[c->n] = layer;
  c->key[c->n] = k;
  return c->n++;
}

void lam__text_children_clear(lam__text_children *c) {
  for (int i = 0; i < c->n; i++) {
    lam_layer_free(c->layer[i]);
    free(c->key[i]);
  }
  free(c->layer);
  free(c->key);
  memset(c, 0, sizeof *c);
}

lam_status lam__text_children_init(const lam__text_children *c, lam_ctx *ctx, lam_rng_key key, lam_dtype dtype,
                              lam_ptree *params, lam_ptree *state) {
  lam_status st = LAM_OK;
  for (int i = 0; i < c->n && st == LAM_OK; i++)
    st = lam_layer_init_child(c->layer[i], c->key[i], ctx, key, dtype, params, state);
  return st;
}

lam_tensor *lam__text_children_apply(const lam__text_children *c, int i, lam_ptree *params, lam_ptree *state,
                                lam_tensor *x, const lam_apply_opts *opts) {
  lam_tensor *y = NULL;
  if (!x) return NULL;
  /* The model-level applies (lam_models_bert_apply, ...) run on a fresh
   * state tree: give each child its empty state subtree there. */
  if (!lam_ptree_subtree(state, c->key[i])) {
    lam_ptree *s = lam_ptree_dict();
    if (!s || lam_ptree_set_subtree(state, c->key[i], s) != LAM_OK) {
      lam_ptree_free(s);
      lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "lam_layer_apply: out of host memory");
      return NULL;
    }
  }
  if (lam_layer_apply_child(c->layer[i], c->key[i], params, state, x, opts, &y) != LAM_OK) return NULL;
  return y;
}

lam_layer *lam__text_children_get(const lam__text_children *c, int i, const char **key) {
  if (i < 0 || i >= c->n) return NULL;
  *key = c->key[i];
  return c->layer[i];
}

lam_tensor *lam__text_heads_split(lam_tensor *x, int64_t heads) {
  if (!x) return NULL;
  lam_tensor *r = lam_reshape(x, 4, (int64_t[]){x->shape[0], x->shape[1], heads, x->shape[2] / heads});
  lam_tensor *p = r ? lam_permute(r, (int[]){0, 2, 1, 3}) : NULL;
  lam_tensor_free(r);
  return p;
}

lam_tensor *lam__text_heads_merge(lam_tensor *x) {
  if (!x) return NULL;
  lam_tensor *p = lam_permute(x, (int[]){0, 2, 1, 3});
  lam_tensor *r = p ? lam_reshape(p, 3, (int64_t[]){x->shape[0], x->shape[2], x->shape[1] * x->shape[3]})
                    : NULL;
  lam_tensor_free(p);
  return r;
}

/* ---- sentence embeddings ------------------------------------------------------ */

lam_tensor *lam_models_mean_pool(lam_tensor *hidden, lam_tensor *mask) {
  const char *fn = "lam_models_mean_pool";
  if (!hidden) return lam__fail(LAM_ERR_NULL, "%s: hidden is NULL", fn), NULL;
  if (hidden->ndim != 3 || !lam_dtype_is_float(hidden->dtype))
    return lam__fail(LAM_ERR_SHAPE, "%s: hidden must be a float [batch, seq, dim] tensor", fn), NULL;
  if (!mask) return lam_mean(hidden, 1, (int[]){1}, 0);
  if (mask->ndim != 2 || mask->shape[0] != hidden->shape[0] || mask->shape[1] != hidden->shape[1])
    return lam__fail(LAM_ERR_SHAPE, "%s: mask must be [batch, seq] = [%lld, %lld]", fn,
                     (long long)hidden->shape[0], (long long)hidden->shape[1]), NULL;
  lam_tensor *m = lam_tensor_cast(mask, hidden->dtype);
  lam_tensor *m3 = m ? lam_unsqueeze(m, 2) : NULL;
  lam_tensor *hm = m3 ? lam_mul(hidden, m3) : NULL;
  lam_tensor *num = hm ? lam_sum(hm, 1, (int[]){1}, 0) : NULL;
  lam_tensor *cnt = m ? lam_sum(m, 1, (int[]){1}, 1) : NULL;
  lam_tensor *den = cnt ? lam_clamp(cnt, 1e-9, HUGE_VAL) : NULL;
  lam_tensor *y = num && den ? lam_div(num, den) : NULL;
  lam_tensor_free(m);
  lam_tensor_free(m3);
  lam_tensor_free(hm);
  lam_tensor_free(num);
  lam_tensor_free(cnt);
  lam_tensor_free(den);
  return y;
}

lam_tensor *lam_models_l2_normalize(lam_tensor *x) {
  const char *fn = "lam_models_l2_normalize";
  if (!x) return lam__fail(LAM_ERR_NULL, "%s: x is NULL", fn), NULL;
  if (x->ndim < 1 || !lam_dtype_is_float(x->dtype))
    return lam__fail(LAM_ERR_SHAPE, "%s: x must be a float tensor of rank >= 1", fn), NULL;
  lam_tensor *sq = lam_square(x);
  lam_tensor *ss = sq ? lam_sum(sq, 1, (int[]){-1}, 1) : NULL;
  lam_tensor *n = ss ? lam_sqrt(ss) : NULL;
  lam_tensor *d = n ? lam_clamp(n, 1e-12, HUGE_VAL) : NULL;
  lam_tensor *y = d ? lam_div(x, d) : NULL;
  lam_tensor_free(sq);
  lam_tensor_free(ss);
  lam_tensor_free(n);
  lam_tensor_free(d);
  return y;
}

/* ---- dropouts keyed by module path ------------------------------------------------ */

static lam_rng_key lam__models_key(const lam_apply_opts *opts, const char *fmt, va_list ap) {
  char buf[160];
  vsnprintf(buf, sizeof buf, fmt, ap);
  return lam_rng_fold_in_str(*opts->rng, buf);
}

lam_tensor *lam__models_dropout(lam_tensor *x, double rate, bool rows, const lam_apply_opts *opts, const char *fmt,
                                ...) {
  if (!x || !opts->training || !(rate > 0)) return x;
  va_list ap;
  va_start(ap, fmt);
  lam_rng_key k = lam__models_key(opts, fmt, ap);
  va_end(ap);
  lam_tensor *y = rows ? lam_stochastic_depth(x, rate, LAM_STOCHASTIC_DEPTH_ROW, k) : lam_dropout(x, rate, k, false);
  lam_tensor_free(x);
  return y;
}

void lam__models_attention_dropout(lam_attention_opts *ao, double rate, const lam_apply_opts *opts, const char *fmt,
                                   ...) {
  if (!opts->training || !(rate > 0)) return;
  va_list ap;
  va_start(ap, fmt);
  ao->dropout_key = lam__models_key(opts, fmt, ap);
  va_end(ap);
  ao->dropout = rate;
}

lam_status lam__models_check_rng(const lam_apply_opts *opts, bool any_rate, const char *fn) {
  if (opts->training && any_rate && !opts->rng)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: dropout in training needs an rng key (lam_apply_opts.rng)", fn);
  return LAM_OK;
}
