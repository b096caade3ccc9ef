/* autodiff/value_and_grad.c: the public entry points lam_value_and_grad and
 * lam_grad. Both start a tape, mark the inputs as leaves, run the user's
 * function, check the loss is a single float element, run backward and hand
 * out gradients (zeros for leaves the loss does not reach). The tape and
 * everything it holds is released on every path. */
#include <stdlib.h>

#include "autodiff/tape_internal.h"

/* Runs fn under a fresh tape after `watch` marked the leaves. */
typedef struct {
  lam_loss_fn tree_fn;
  lam_ptree *params;
  lam_tensors_fn list_fn;
  lam_tensor *const *xs;
  int n;
  void *user;
  lam_tensor *seed; /* lam__vjp: cotangent instead of a scalar loss */
} lam__call;

static lam_status lam__run(lam_ctx *ctx, const char *fn_name, const lam__call *call,
                           lam__tape *tape, lam_tensor **loss_out) {
  lam_error_clear();
  lam_tensor *loss = call->tree_fn ? call->tree_fn(call->params, call->user)
                                   : call->list_fn(call->xs, call->n, call->user);
  ctx->tape = NULL; /* stop recording; the tape object stays for backward */
  if (!loss) {
    lam_status st = lam_last_status();
    if (st == LAM_OK) st = lam__fail(LAM_ERR_STATE, "%s: the loss function returned NULL", fn_name);
    return st;
  }
  if (tape->failed) {
    lam_tensor_free(loss);
    return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory while recording", fn_name);
  }
  if (call->seed && !(lam_tensor_same_shape(call->seed, loss) && call->seed->dtype == loss->dtype)) {
    char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR];
    lam_status st = lam__fail(LAM_ERR_SHAPE, "%s: cotangent %s %s does not match output %s %s",
                              fn_name, lam_dtype_name(call->seed->dtype),
                              lam__shape_str(call->seed->ndim, call->seed->shape, b1),
                              lam_dtype_name(loss->dtype), lam__shape_str(loss->ndim, loss->shape, b2));
    lam_tensor_free(loss);
    return st;
  }
  if (!call->seed && (loss->numel != 1 || !lam_dtype_is_float(loss->dtype))) {
    char b[LAM__SHAPE_STR];
    lam_status st = lam__fail(LAM_ERR_SHAPE, "%s: the loss must be one float element, got %s %s",
                              fn_name, lam_dtype_name(loss->dtype),
                              lam__shape_str(loss->ndim, loss->shape, b));
    lam_tensor_free(loss);
    return st;
  }
  lam_status st = lam__tape_backward(tape, loss, call->seed);
  if (st != LAM_OK) {
    lam_tensor_free(loss);
    return st;
  }
  *loss_out = loss;
  return LAM_OK;
}

/* Takes the gradient of slot-holder t out of the tape (or zeros). */
static lam_tensor *lam__take_grad(lam__tape *tape, lam_tensor *t) {
  lam_tensor *g = NULL;
  if (t->tape_id == tape->id && t->tape_slot >= 0) {
    g = tape->grads[t->tape_slot];
    if (g) {
      /* A leaf may appear twice (same tensor at two paths): keep it for both. */
      lam_tensor_retain(g);
      return g;
    }
  }
  return lam_tensor_zeros_like(t);
}

lam_status lam_value_and_grad(lam_ctx *ctx, lam_loss_fn fn, void *user, lam_ptree *params,
                              lam_tensor **loss, lam_ptree **grads) {
  const char *name = "lam_value_and_grad";
  if (!ctx || !fn || !params || !loss || !grads)
    return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", name,
                     !ctx ? "ctx" : !fn ? "fn" : !params ? "params" : !loss ? "loss" : "grads");
  *loss = NULL;
  *grads = NULL;
  if (ctx->tape)
    return lam__fail(LAM_ERR_STATE, "%s: already recording (nested gradients are not supported)",
                     name);
  lam__tape *tape = lam__tape_begin(ctx);
  if (!tape) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", name);
  int n = lam_ptree_leaf_count(params);
  for (int i = 0; i < n; i++) {
    const char *path;
    lam_tensor *t;
    lam_ptree_leaf(params, i, &path, &t);
    if (lam_tensor_ctx(t) != ctx) {
      lam__tape_free(tape);
      return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: parameter %s belongs to another context",
                       name, path);
    }
    if (!lam_ptree_leaf_frozen(params, i) && lam_dtype_is_float(t->dtype))
      lam__tape_watch(tape, t);
  }
  lam__call call = {fn, params, NULL, NULL, 0, user, NULL};
  lam_tensor *out = NULL;
  lam_status st = lam__run(ctx, name, &call, tape, &out);
  lam_ptree *tree = NULL;
  if (st == LAM_OK) {
    tree = lam_ptree_dict();
    if (!tree) st = lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", name);
  }
  for (int i = 0; i < n && st == LAM_OK; i++) {
    const char *path;
    lam_tensor *t;
    lam_ptree_leaf(params, i, &path, &t);
    if (lam_ptree_leaf_frozen(params, i) || !lam_dtype_is_float(t->dtype)) continue;
    lam_tensor *g = lam__take_grad(tape, t);
    st = g ? lam_ptree_set(tree, path, g) : lam_last_status();
    lam_tensor_free(g);
  }
  lam__tape_free(tape);
  if (st != LAM_OK) {
    lam_ptree_free(tree);
    lam_tensor_free(out);
    return st;
  }
  *loss = out;
  *grads = tree;
  return LAM_OK;
}

static lam_status lam__grad_impl(const char *name, lam_ctx *ctx, lam_tensors_fn fn, void *user,
                                 lam_tensor *const *xs, int n, lam_tensor *seed, lam_tensor **loss,
                                 lam_tensor **grads) {
  if (!ctx || !fn || !xs || !grads)
    return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", name,
                     !ctx ? "ctx" : !fn ? "fn" : !xs ? "xs" : "grads");
  if (n < 1) return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: n is %d, need >= 1", name, n);
  for (int i = 0; i < n; i++) {
    grads[i] = NULL;
    if (!xs[i]) return lam__fail(LAM_ERR_NULL, "%s: xs[%d] is NULL", name, i);
    if (xs[i]->ctx != ctx)
      return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: xs[%d] belongs to another context", name, i);
    if (!lam_dtype_is_float(xs[i]->dtype))
      return lam__fail(LAM_ERR_DTYPE, "%s: xs[%d] is %s; gradients need a float dtype", name, i,
                       lam_dtype_name(xs[i]->dtype));
  }
  if (loss) *loss = NULL;
  if (ctx->tape)
    return lam__fail(LAM_ERR_STATE, "%s: already recording (nested gradients are not supported)",
                     name);
  lam__tape *tape = lam__tape_begin(ctx);
  if (!tape) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", name);
  for (int i = 0; i < n; i++) lam__tape_watch(tape, xs[i]);
  lam__call call = {NULL, NULL, fn, xs, n, user, seed};
  lam_tensor *out = NULL;
  lam_status st = lam__run(ctx, name, &call, tape, &out);
  for (int i = 0; i < n && st == LAM_OK; i++) {
    grads[i] = lam__take_grad(tape, xs[i]);
    if (!grads[i]) st = lam_last_status();
  }
  lam__tape_free(tape);
  if (st != LAM_OK) {
    for (int i = 0; i < n; i++) {
      lam_tensor_free(grads[i]);
      grads[i] = NULL;
    }
    lam_tensor_free(out);
    return st;
  }
  if (loss) *loss = out;
  else lam_tensor_free(out);
  return LAM_OK;
}

lam_status lam_grad(lam_ctx *ctx, lam_tensors_fn fn, void *user, lam_tensor *const *xs, int n,
                    lam_tensor **loss, lam_tensor **grads) {
  return lam__grad_impl("lam_grad", ctx, fn, user, xs, n, NULL, loss, grads);
}

lam_status lam__vjp(lam_ctx *ctx, lam_tensors_fn fn, void *user, lam_tensor *const *xs, int n,
                    lam_tensor *cotangent, lam_tensor **out, lam_tensor **grads) {
  if (!cotangent) return lam__fail(LAM_ERR_NULL, "lam__vjp: cotangent is NULL");
  return lam__grad_impl("lam__vjp", ctx, fn, user, xs, n, cotangent, out, grads);
}
