/* lamina/layer.h: Kaun's Layer in C.
 *
 * A layer is a small vtable (init, apply, free) plus its configuration. It
 * owns no tensors: lam_layer_init makes a lam_vars (a params tree, a state
 * tree and a dtype), and lam_layer_apply runs the forward pass with those
 * vars. Parameter names and layouts follow PyTorch's state_dict ("weight"
 * [out, in] and "bias" for linear, ...), so PyTorch weights load by key.
 * Composite layers name their children "0", "1", ... (sequential) or "left"
 * and "right" (compose). Custom layers are user vtables built from lamina
 * ops; they get gradients for free. */
#ifndef LAMINA_LAYER_H
#define LAMINA_LAYER_H

#include "lamina/export.h"

#include <stdbool.h>
#include <stdio.h>

#include "lamina/ptree.h"
#include "lamina/rng.h"
#include "lamina/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lam_layer lam_layer;
typedef struct lam_vars lam_vars;
typedef struct lam_aux lam_aux;
typedef struct lam_summaries lam_summaries;

/* ---- aux context (Kaun's Context.t): string-keyed tensors ------------- */

/* Returns a new empty aux context (NULL if out of host memory). */
LAM_API lam_aux *lam_aux_create(void);
/* Stores a new reference to t under name (replacing any). */
LAM_API lam_status lam_aux_set(lam_aux *aux, const char *name, lam_tensor *t);
/* Returns the tensor under name (borrowed) or NULL (no error is recorded). */
LAM_API lam_tensor *lam_aux_get(const lam_aux *aux, const char *name);
LAM_API void lam_aux_free(lam_aux *aux);

/* ---- summaries (Praxis add_summary) ----------------------------------- */

/* Returns a new empty summary sink. */
LAM_API lam_summaries *lam_summaries_create(void);
/* Number of recorded summaries; entry i's name and tensor (borrowed). */
LAM_API int lam_summaries_count(const lam_summaries *s);
LAM_API lam_status lam_summaries_get(const lam_summaries *s, int i, const char **name, lam_tensor **value);
/* Returns the latest summary recorded under name (borrowed) or NULL. */
LAM_API lam_tensor *lam_summaries_find(const lam_summaries *s, const char *name);
LAM_API void lam_summaries_clear(lam_summaries *s);
LAM_API void lam_summaries_free(lam_summaries *s);

/* ---- apply options ----------------------------------------------------- */

/* How a forward pass runs (the options rule, lamina/options.h: NULL, a
 * zeroed struct and lam_apply_defaults() are the same: evaluation mode, no
 * rng, no aux, summaries dropped). */
typedef struct lam_apply_opts {
  bool training;             /* dropout active, batch-norm statistics updated (default: evaluation) */
  const lam_rng_key *rng;    /* needed by stochastic layers in training; NULL: none */
  const lam_aux *aux;        /* forwarded to every sublayer; NULL: none */
  lam_summaries *summaries;  /* where layers record named scalars; NULL: dropped */
} lam_apply_opts;

/* Returns the default apply options (every field zero, as for opts == NULL). */
LAM_API lam_apply_opts lam_apply_defaults(void);

/* Records a named scalar (a new reference to value) when opts has a sink. */
LAM_API lam_status lam_summaries_add(const lam_apply_opts *opts, const char *name, lam_tensor *value);

/* ---- the vtable ---------------------------------------------------------- */

typedef struct lam_layer_vtable {
  const char *name; /* e.g. "linear", used in messages */
  /* Fills params and state (both empty dicts on entry) for dtype. */
  lam_status (*init)(lam_layer *self, lam_ctx *ctx, lam_rng_key key, lam_dtype dtype,
                     lam_ptree *params, lam_ptree *state);
  /* Computes *out from x. May replace leaves of state in training. */
  lam_status (*apply)(lam_layer *self, lam_ptree *params, lam_ptree *state, lam_tensor *x,
                      const lam_apply_opts *opts, lam_tensor **out);
  /* Frees self->impl (and children); may be NULL when impl needs no freeing. */
  void (*free)(lam_layer *self);
} lam_layer_vtable;

/* The optional children entry of a layer: returns child i (borrowed) and
 * stores its key (the name of its params subtree, e.g. "0" or "left") in
 * *key, or returns NULL when i is past the last child. It lets
 * lam_layer_child_count, lam_layer_child and lam_layer_summary walk
 * composite and custom layers. (It sits beside the vtable rather than in
 * it so that the four-entry vtable initialisers of existing code stay valid
 * under -Wextra's missing-field-initializers.) */
typedef lam_layer *(*lam_layer_children_fn)(const lam_layer *self, int i, const char **key);

struct lam_layer {
  const lam_layer_vtable *vt;
  void *impl;                     /* configuration, owned by the layer */
  lam_layer_children_fn children; /* NULL: no children (see lam_layer_set_children) */
};

/* Returns a layer running a user vtable with impl (owned: vt->free frees it). */
LAM_API lam_layer *lam_nn_custom(const lam_layer_vtable *vt, void *impl);
/* Sets the layer's children entry (NULL: none); for composite custom layers. */
LAM_API lam_status lam_layer_set_children(lam_layer *layer, lam_layer_children_fn children);
/* Frees the layer and its children. NULL is a no-op. */
LAM_API void lam_layer_free(lam_layer *layer);
/* Returns the vtable name ("linear", "sequential", ...). */
LAM_API const char *lam_layer_name(const lam_layer *layer);

/* ---- vars ---------------------------------------------------------------- */

/* Initialises the layer's params and state for dtype into *out. */
LAM_API lam_status lam_layer_init(lam_layer *layer, lam_ctx *ctx, lam_rng_key key, lam_dtype dtype,
                          lam_vars **out);
/* Runs the forward pass; opts may be NULL (evaluation, no rng, no aux). */
LAM_API lam_status lam_layer_apply(lam_layer *layer, lam_vars *vars, lam_tensor *x,
                           const lam_apply_opts *opts, lam_tensor **out);
/* As lam_layer_apply with explicit trees (inside a loss function, a custom
 * layer's apply, or with params other than vars'). */
LAM_API lam_status lam_layer_apply_with(lam_layer *layer, lam_ptree *params, lam_ptree *state,
                                lam_tensor *x, const lam_apply_opts *opts, lam_tensor **out);

/* Returns vars made of params and state (both taken over; state may be NULL
 * for none) with dtype: custom init. NULL on bad input. */
LAM_API lam_vars *lam_vars_create(lam_ptree *params, lam_ptree *state, lam_dtype dtype);
LAM_API void lam_vars_free(lam_vars *vars);
LAM_API lam_ptree *lam_vars_params(lam_vars *vars);  /* borrowed */
LAM_API lam_ptree *lam_vars_state(lam_vars *vars);   /* borrowed */
LAM_API lam_dtype lam_vars_dtype(const lam_vars *vars);
/* Returns new vars with a structural copy of params (leaves shared) and of
 * vars' state. */
LAM_API lam_vars *lam_vars_with_params(const lam_vars *vars, const lam_ptree *params);
LAM_API lam_vars *lam_vars_with_state(const lam_vars *vars, const lam_ptree *state);
/* Replaces vars' params / state in place (taking over the new tree). */
LAM_API lam_status lam_vars_set_params(lam_vars *vars, lam_ptree *params);
LAM_API lam_status lam_vars_set_state(lam_vars *vars, lam_ptree *state);

/* ---- composition ---------------------------------------------------------- */

/* Applies layers in order; children named "0", "1", ... . Takes ownership of
 * the n layers (also on failure). */
LAM_API lam_layer *lam_nn_sequential(lam_layer *const *layers, int n);
/* right(left(x)); children "left" and "right". The input dtype may differ
 * from the output (e.g. i32 tokens into an embedding). Takes ownership. */
LAM_API lam_layer *lam_nn_compose(lam_layer *left, lam_layer *right);
/* Number of children of a layer (through its children entry; 0 when it has
 * none), child i (borrowed; NULL with a LAM_ERR_INVALID_ARGUMENT message
 * outside 0..count-1) and child i's key (its params subtree name; NULL
 * outside the range). */
LAM_API int lam_layer_child_count(const lam_layer *layer);
LAM_API lam_layer *lam_layer_child(const lam_layer *layer, int i);
LAM_API const char *lam_layer_child_key(const lam_layer *layer, int i);

/* ---- model summary --------------------------------------------------------- */

/* Options of lam_layer_summary (the options rule). */
typedef struct lam_layer_summary_opts {
  lam_dtype input_dtype; /* default f32 (i32 for token inputs) */
  int max_depth;         /* rows down to this depth (the model is depth 0); 0: all */
} lam_layer_summary_opts;
LAM_API lam_layer_summary_opts lam_layer_summary_defaults(void);

/* Prints a table to f (Keras summary(), torchinfo): one row per layer
 * (depth first, children indented) with its path ("" for the model, else the
 * params path "0", "1.left", ...), type, output shape for an input of
 * `shape` (from one forward pass in evaluation mode on zeros), parameter
 * count (its whole subtree) and whether those are trainable, frozen or
 * mixed; then the totals. Children come from lam_layer_child_count /
 * lam_layer_child / lam_layer_child_key. */
LAM_API lam_status lam_layer_summary(lam_layer *layer, lam_vars *vars, int ndim, const int64_t *shape,
                                     const lam_layer_summary_opts *opts, FILE *f);

/* For composite/custom layers: applies a child with the subtrees at key
 * (created empty in state when missing) and a child rng key folded from key. */
LAM_API lam_status lam_layer_apply_child(lam_layer *child, const char *key, lam_ptree *params,
                                 lam_ptree *state, lam_tensor *x, const lam_apply_opts *opts,
                                 lam_tensor **out);
/* For composite/custom layers: initialises a child into subtrees at key. */
LAM_API lam_status lam_layer_init_child(lam_layer *child, const char *key, lam_ctx *ctx, lam_rng_key key_rng,
                                lam_dtype dtype, lam_ptree *params, lam_ptree *state);

#ifdef __cplusplus
}
#endif
#endif
