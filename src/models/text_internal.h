/* models/text_internal.h: helpers shared by the model zoo (never
 * installed): a list of named child layers (the keys are Hugging Face's
 * dotted parameter prefixes, so lam_layer_init_child builds the nested
 * trees) and the head split / merge of attention. */
#ifndef LAMINA_MODELS_TEXT_INTERNAL_H
#define LAMINA_MODELS_TEXT_INTERNAL_H

#include <stdbool.h>

#include "internal.h"
#include "lamina/attention.h"
#include "lamina/layer.h"

typedef struct lam__text_children {
  int n, cap;
  lam_layer **layer;
  char **key;
} lam__text_children;

/* Appends layer under printf(fmt, ...) (taking the layer over, also on
 * failure); returns its index or -1 with a message. */
int lam__text_children_add(lam__text_children *c, lam_layer *layer, const char *fmt, ...)
    LAM__PRINTF(3, 4);
void lam__text_children_clear(lam__text_children *c);
lam_status lam__text_children_init(const lam__text_children *c, lam_ctx *ctx, lam_rng_key key, lam_dtype dtype,
                              lam_ptree *params, lam_ptree *state);
/* Applies child i to x into *out (NULL on failure). */
lam_tensor *lam__text_children_apply(const lam__text_children *c, int i, lam_ptree *params, lam_ptree *state,
                                lam_tensor *x, const lam_apply_opts *opts);
/* The children entry over c (for lam_layer_set_children). */
lam_layer *lam__text_children_get(const lam__text_children *c, int i, const char **key);

/* [B, S, heads * d] -> [B, heads, S, d] and back (NULL in, NULL out). */
lam_tensor *lam__text_heads_split(lam_tensor *x, int64_t heads);
lam_tensor *lam__text_heads_merge(lam_tensor *x);

/* The zoo's dropouts, keyed as child layers would be: the model's rng key
 * (opts->rng) folded with printf(fmt, ...), the reference implementation's
 * module path ("encoder.layer.0.output.dropout"). Active only in training
 * with rate > 0; the caller has checked that opts->rng is set then.
 * lam__models_dropout takes x over and returns it dropped (rows: row-wise
 * stochastic depth instead of elementwise dropout); NULL in, NULL out.
 * lam__models_attention_dropout sets ao's attention-weight dropout. */
lam_tensor *lam__models_dropout(lam_tensor *x, double rate, bool rows, const lam_apply_opts *opts, const char *fmt,
                                ...) __attribute__((format(printf, 5, 6)));
void lam__models_attention_dropout(lam_attention_opts *ao, double rate, const lam_apply_opts *opts, const char *fmt,
                                   ...) __attribute__((format(printf, 4, 5)));
/* An error naming fn when opts asks for training without an rng key and the
 * model has a dropout (any of its rates > 0). */
lam_status lam__models_check_rng(const lam_apply_opts *opts, bool any_rate, const char *fn);

#endif
