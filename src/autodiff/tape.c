/* autodiff/tape.c: recording nodes, running backward rules in reverse, and
 * accumulating gradients.
 *
 * Each tracked tensor owns a slot on the tape (its tape_slot, valid while its
 * tape_id equals the recording tape's id, so stale marks from older tapes are
 * ignored). Nodes keep slot numbers, not the tensors, so intermediates the
 * caller frees go back to the pool as usual; rules retain only what they
 * save. Gradients are accumulated per slot in place on the device. */
#include <stdlib.h>
#include <string.h>

#include "autodiff/tape_internal.h"

bool lam__tracked(const lam_tensor *t) {
  const lam_ctx *ctx = t->ctx;
  return ctx->tape && ctx->grad_enabled && t->tape_slot >= 0 && t->tape_id == ctx->tape->id;
}

int lam__tape_watch(lam__tape *tape, lam_tensor *t) {
  if (t->tape_id == tape->id && t->tape_slot >= 0) return t->tape_slot;
  t->tape_id = tape->id;
  t->tape_slot = tape->n_slots++;
  return t->tape_slot;
}

lam__node *lam__tape_record(lam_tensor *out, const char *op, lam__backward_fn backward,
                            int n_inputs, lam_tensor *const *inputs) {
  lam_ctx *ctx = out->ctx;
  lam__tape *tape = ctx->tape;
  if (!tape || !ctx->grad_enabled || n_inputs > LAM__NODE_MAX_INPUTS) return NULL;
  bool any = false;
  for (int i = 0; i < n_inputs; i++) {
    if (inputs[i] && lam__tracked(inputs[i])) any = true;
    /* An op that hands back its input (a no-op) needs no node: recording
     * one would move the input's slot and cut its other uses off. */
    if (inputs[i] == out) return NULL;
  }
  if (!any) return NULL;
  if (tape->n_nodes == tape->cap_nodes) {
    int cap = tape->cap_nodes ? tape->cap_nodes * 2 : 256;
    lam__node **nodes = realloc(tape->nodes, (size_t)cap * sizeof *nodes);
    if (!nodes) {
      tape->failed = true;
      return NULL;
    }
    tape->nodes = nodes;
    tape->cap_nodes = cap;
  }
  lam__node *node = calloc(1, sizeof *node);
  if (!node) {
    tape->failed = true;
    return NULL;
  }
  node->op = op;
  node->backward = backward;
  node->n_inputs = n_inputs;
  for (int i = 0; i < n_inputs; i++) {
    const lam_tensor *in = inputs[i];
    node->in_slot[i] = in && lam__tracked(in) ? in->tape_slot : -1;
    if (!in) continue;
    node->in_ndim[i] = in->ndim;
    memcpy(node->in_shape[i], in->shape, sizeof in->shape);
    node->in_dtype[i] = in->dtype;
  }
  /* A fresh slot even if out was tracked before (ops return new tensors). */
  out->tape_id = tape->id;
  out->tape_slot = tape->n_slots++;
  node->out_slot = out->tape_slot;
  node->out_ndim = out->ndim;
  memcpy(node->out_shape, out->shape, sizeof out->shape);
  tape->nodes[tape->n_nodes++] = node;
  return node;
}

int lam__node_save(lam__node *node, lam_tensor *t) {
  if (node->n_saved == LAM__NODE_MAX_SAVED) return -1;
  node->saved[node->n_saved] = lam_tensor_retain(t);
  return node->n_saved++;
}

lam__tape *lam__tape_begin(lam_ctx *ctx) {
  lam__tape *tape = calloc(1, sizeof *tape);
  if (!tape) return NULL;
  tape->id = ++ctx->tape_seq;
  tape->ctx = ctx;
  ctx->tape = tape;
  return tape;
}

void lam__tape_free(lam__tape *tape) {
  if (!tape) return;
  if (tape->ctx->tape == tape) tape->ctx->tape = NULL;
  for (int n = 0; n < tape->n_nodes; n++) {
    lam__node *node = tape->nodes[n];
    for (int s = 0; s < node->n_saved; s++) lam_tensor_free(node->saved[s]);
    free(node->extra);
    free(node);
  }
  free(tape->nodes);
  if (tape->grads) {
    for (int s = 0; s < tape->n_slots; s++) lam_tensor_free(tape->grads[s]);
    free(tape->grads);
  }
  free(tape);
}

/* grads[slot] += g (taking g), or grads[slot] = g. */
static lam_status lam__accumulate(lam__tape *tape, int slot, lam_tensor *g) {
  lam_tensor *acc = tape->grads[slot];
  if (!acc) {
    tape->grads[slot] = g;
    return LAM_OK;
  }
  cl_kernel k;
  lam_status st = lam__kernel_dt(g->ctx, "autodiff", "accumulate", g->dtype, NULL, &k);
  if (st == LAM_OK) {
    if (acc->refs > 1) { /* shared (e.g. a rule returned its grad_out): copy before writing */
      lam_tensor *c = lam_tensor_copy(acc);
      if (!c) st = lam_last_status();
      else {
        lam_tensor_free(acc);
        tape->grads[slot] = acc = c;
      }
    }
    if (st == LAM_OK) {
      lam__arg args[] = {LAM__ARG_T(acc), LAM__ARG_T(g), lam__arg_int(g->numel)};
      st = lam__launch_1d(g->ctx, k, "lam_value_and_grad", 5, args, (size_t)g->numel);
    }
  }
  lam_tensor_free(g);
  return st;
}

lam_status lam__tape_backward(lam__tape *tape, lam_tensor *loss, const lam_tensor *seed) {
  lam_ctx *ctx = tape->ctx;
  tape->grads = calloc((size_t)(tape->n_slots ? tape->n_slots : 1), sizeof *tape->grads);
  if (!tape->grads)
    return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "lam_value_and_grad: out of host memory");
  if (!(loss->tape_id == tape->id && loss->tape_slot >= 0)) return LAM_OK; /* no dependence */
  tape->grads[loss->tape_slot] = seed ? lam_tensor_copy(seed) : lam_tensor_full_like(loss, 1.0);
  if (!tape->grads[loss->tape_slot]) return lam_last_status();
  bool was = ctx->grad_enabled;
  ctx->grad_enabled = false; /* rules are plain ops: record nothing */
  lam_status st = LAM_OK;
  for (int n = tape->n_nodes - 1; n >= 0 && st == LAM_OK; n--) {
    lam__node *node = tape->nodes[n];
    lam_tensor *g = tape->grads[node->out_slot];
    if (!g) continue;
    tape->grads[node->out_slot] = NULL;
    lam_tensor *gin[LAM__NODE_MAX_INPUTS] = {0};
    st = node->backward(node, g, gin);
    lam_tensor_free(g);
    for (int i = 0; i < node->n_inputs; i++) {
      if (!gin[i]) continue;
      if (st != LAM_OK || node->in_slot[i] < 0) {
        lam_tensor_free(gin[i]);
        continue;
      }
      bool same = gin[i]->ndim == node->in_ndim[i] && gin[i]->dtype == node->in_dtype[i];
      for (int d = 0; same && d < gin[i]->ndim; d++)
        same = gin[i]->shape[d] == node->in_shape[i][d];
      if (!same) {
        char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR];
        st = lam__fail(LAM_ERR_STATE,
                       "lam_value_and_grad: backward of %s gave %s %s for input %d of %s %s",
                       node->op, lam_dtype_name(gin[i]->dtype),
                       lam__shape_str(gin[i]->ndim, gin[i]->shape, b1), i,
                       lam_dtype_name(node->in_dtype[i]),
                       lam__shape_str(node->in_ndim[i], node->in_shape[i], b2));
        lam_tensor_free(gin[i]);
        continue;
      }
      st = lam__accumulate(tape, node->in_slot[i], gin[i]);
    }
  }
  ctx->grad_enabled = was;
  return st;
}

lam_tensor *lam__sum_to_shape(lam_tensor *g, int ndim, const int64_t *shape) {
  const char *fn = "lam__sum_to_shape";
  if (!g) return lam__null_input(fn, "g");
  if (ndim == g->ndim && memcmp(shape, g->shape, (size_t)ndim * sizeof *shape) == 0)
    return lam_tensor_retain(g);
  if (ndim > g->ndim) {
    char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR];
    return lam__fail(LAM_ERR_SHAPE, "%s: %s cannot reduce to %s", fn,
                     lam__shape_str(g->ndim, g->shape, b1), lam__shape_str(ndim, shape, b2)), NULL;
  }
  int64_t oshape[LAM_MAX_DIMS], gstride[LAM_MAX_DIMS];
  for (int d = 0; d < g->ndim; d++) {
    int src = d - (g->ndim - ndim);
    oshape[d] = src >= 0 ? shape[src] : 1;
    if (oshape[d] != 1 && oshape[d] != g->shape[d]) {
      char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR];
      return lam__fail(LAM_ERR_SHAPE, "%s: %s cannot reduce to %s", fn,
                       lam__shape_str(g->ndim, g->shape, b1), lam__shape_str(ndim, shape, b2)),
             NULL;
    }
  }
  lam__strides(g->ndim, g->shape, gstride);
  lam_tensor *y = lam__tensor_new(g->ctx, g->dtype, ndim, shape, fn);
  if (!y) return NULL;
  cl_kernel k;
  lam_status st = lam__kernel_dt(g->ctx, "autodiff", "sum_to_shape", g->dtype, NULL, &k);
  if (st == LAM_OK) {
    lam__arg args[] = {LAM__ARG_T(g), LAM__ARG_T(y), lam__arg_int(y->numel),
                       lam__arg_int(g->ndim), lam__arg_int8(g->ndim, g->shape),
                       lam__arg_int8(g->ndim, oshape), lam__arg_int8(g->ndim, gstride)};
    st = lam__launch_1d(g->ctx, k, fn, 9, args, (size_t)y->numel);
  }
  if (st != LAM_OK) {
    lam_tensor_free(y);
    return NULL;
  }
  return y;
}

bool lam_grad_set_enabled(lam_ctx *ctx, bool enabled) {
  if (!ctx) return false;
  bool was = ctx->grad_enabled;
  ctx->grad_enabled = enabled;
  return was;
}

bool lam_grad_is_recording(const lam_ctx *ctx) {
  return ctx && ctx->tape && ctx->grad_enabled;
}
