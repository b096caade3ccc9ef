/* autodiff/tape.h: how ops record themselves for reverse-mode autodiff.
 *
 * An op, after computing `out` from `inputs`, calls lam__tape_record. If the
 * context is recording and any input is tracked, a node is returned and the
 * op stores in it what its backward rule needs (lam__node_save for tensors,
 * the param fields for numbers); otherwise NULL and the op does nothing more.
 * Backward rules run with recording paused and are written with public ops:
 * given grad_out (shaped like out) they store in grad_in[i] a new tensor
 * shaped like input i, or leave NULL for no gradient. */
#ifndef LAMINA_AUTODIFF_TAPE_H
#define LAMINA_AUTODIFF_TAPE_H

#include "lamina/autodiff.h"
#include "tensor_internal.h"

#define LAM__NODE_MAX_INPUTS 4
#define LAM__NODE_MAX_SAVED 4

typedef struct lam__node lam__node;
typedef lam_status (*lam__backward_fn)(lam__node *node, lam_tensor *grad_out,
                                       lam_tensor **grad_in);

struct lam__node {
  const char *op;                 /* public op name, for messages */
  lam__backward_fn backward;
  int n_inputs;
  int in_slot[LAM__NODE_MAX_INPUTS];   /* -1: input not tracked, needs no grad */
  int in_ndim[LAM__NODE_MAX_INPUTS];
  int64_t in_shape[LAM__NODE_MAX_INPUTS][LAM_MAX_DIMS];
  lam_dtype in_dtype[LAM__NODE_MAX_INPUTS];
  int out_slot;
  int out_ndim;
  int64_t out_shape[LAM_MAX_DIMS];
  lam_tensor *saved[LAM__NODE_MAX_SAVED]; /* retained; released with the tape */
  int n_saved;
  double f[8];                    /* op parameters (alpha, scale, ...) */
  int64_t i[32];                  /* op parameters (axes, perm, pads, ...) */
  void *extra;                    /* optional heap block, free()d with the tape */
};

/* Records a node for `out` = op(inputs) when recording and some input is
 * tracked; returns it (to fill) or NULL. `out` becomes tracked. On host
 * out-of-memory the tape is marked failed and NULL is returned. */
lam__node *lam__tape_record(lam_tensor *out, const char *op, lam__backward_fn backward,
                            int n_inputs, lam_tensor *const *inputs);
/* Retains t in node->saved[node->n_saved++] and returns its index. */
int lam__node_save(lam__node *node, lam_tensor *t);
/* True if input i of the node needs a gradient. */
static inline bool lam__node_needs(const lam__node *node, int i) { return node->in_slot[i] >= 0; }

/* Returns true when t is tracked by the context's recording tape. */
bool lam__tracked(const lam_tensor *t);

/* Sums g over broadcast axes so the result has shape (ndim, shape); returns
 * a new reference (g itself retained when shapes already match). */
lam_tensor *lam__sum_to_shape(lam_tensor *g, int ndim, const int64_t *shape);

#endif
