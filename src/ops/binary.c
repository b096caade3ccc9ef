/* ops/binary.c: binary arithmetic with NumPy broadcasting (add, sub, mul,
 * div, pow, maximum, minimum), their scalar forms, and backward rules.
 * The host picks the kernel variant: binary_same when both operands have
 * the output's shape, binary_scalar when one operand has a single element
 * (or is a host scalar), binary_bcast otherwise (with merged axes, see
 * lam__ew_layout_make). Gradients are computed at the output's shape by
 * one binary_backward launch and reduced to each operand with
 * lam__sum_to_shape. add, sub, mul, maximum and minimum also take i32
 * (not differentiable); div and pow are float only. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/elementwise.h"
#include "ops/elementwise_internal.h"

static const char *const lam__binary_fn[LAM_BINARY_COUNT] = {
    "lam_add", "lam_sub", "lam_mul", "lam_div", "lam_pow", "lam_maximum", "lam_minimum"};

static bool lam__binary_int_ok(lam_binary_op op) { return op != LAM_DIV && op != LAM_POW; }

/* Checks the dtype of x for op; i32 only where the op takes it. */
static lam_status lam__binary_check_dtype(const char *fn, lam_binary_op op, lam_dtype dt) {
  if (lam_dtype_is_float(dt) || (dt == LAM_I32 && lam__binary_int_ok(op))) return LAM_OK;
  return lam__fail(LAM_ERR_DTYPE, "%s: dtype %s is not supported (%s takes %s)", fn,
                   lam_dtype_name(dt), lam__binary_fn[op] + 4,
                   lam__binary_int_ok(op) ? "f32, f16, f64 or i32" : "f32, f16 or f64");
}

/* ---- tensor op tensor ------------------------------------------------------ */

/* Contributions of g (output-shaped) to a and b, reduced to their shapes. */
static lam_status lam__binary_backward(lam__node *node, lam_tensor *g, lam_tensor **gin) {
  lam_binary_op op = (lam_binary_op)node->i[0];
  bool need[2] = {lam__node_needs(node, 0), lam__node_needs(node, 1)};
  lam_ctx *ctx = g->ctx;
  if (op == LAM_ADD || op == LAM_SUB) { /* no saved operands: g and -g */
    if (need[0] && !(gin[0] = lam__sum_to_shape(g, node->in_ndim[0], node->in_shape[0])))
      return lam_last_status();
    if (need[1]) {
      lam_tensor *ng = op == LAM_SUB ? lam_neg(g) : lam_tensor_retain(g);
      gin[1] = lam__sum_to_shape(ng, node->in_ndim[1], node->in_shape[1]);
      lam_tensor_free(ng);
      if (!gin[1]) return lam_last_status();
    }
    return LAM_OK;
  }
  lam_tensor *a = node->saved[0], *b = node->saved[1];
  lam__ew_layout L;
  lam__ew_layout_make(node->out_ndim, node->out_shape, 2, node->in_ndim,
                      (const int64_t(*)[LAM_MAX_DIMS])node->in_shape, &L);
  int chunk = lam__ew_chunk(ctx);
  lam_tensor *full[2] = {NULL, NULL};
  lam_status st = LAM_OK;
  for (int i = 0; i < 2 && st == LAM_OK; i++)
    if (need[i] && !(full[i] = lam__tensor_new(ctx, g->dtype, g->ndim, g->shape, node->op)))
      st = lam_last_status();
  cl_kernel k;
  if (st == LAM_OK) st = lam__kernel_dt(ctx, "elementwise", "binary_backward", g->dtype, NULL, &k);
  if (st == LAM_OK) {
    lam_tensor *ga = full[0] ? full[0] : g, *gb = full[1] ? full[1] : g; /* g: never written */
    lam__arg args[] = {LAM__ARG_T(a),
                       LAM__ARG_T(b),
                       LAM__ARG_T(g),
                       LAM__ARG_T(ga),
                       LAM__ARG_T(gb),
                       lam__arg_int(g->numel),
                       lam__arg_int(op),
                       lam__arg_int(L.ndim),
                       lam__arg_int8(L.ndim, L.shape),
                       lam__arg_int8(L.ndim, L.strides[0]),
                       lam__arg_int8(L.ndim, L.strides[1]),
                       lam__arg_int((need[0] ? 1 : 0) | (need[1] ? 2 : 0)),
                       lam__arg_int(chunk)};
    st = lam__launch_1d(ctx, k, node->op, LAM__EW_NARGS(args), args,
                        lam__ew_items(&L, g->numel, chunk));
  }
  for (int i = 0; i < 2; i++) {
    if (st == LAM_OK && full[i] &&
        !(gin[i] = lam__sum_to_shape(full[i], node->in_ndim[i], node->in_shape[i])))
      st = lam_last_status();
    lam_tensor_free(full[i]);
  }
  return st;
}

static lam_tensor *lam__binary(const char *fn, lam_binary_op op, lam_tensor *a, lam_tensor *b) {
  if (!a) return lam__null_input(fn, "a");
  if (!b) return lam__null_input(fn, "b");
  if ((unsigned)op >= LAM_BINARY_COUNT)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: unknown binary op %d (0..%d)", fn, (int)op,
                     LAM_BINARY_COUNT - 1),
           NULL;
  if (lam__ew_same_ctx(fn, a, b, "a", "b") != LAM_OK) return NULL;
  if (lam__ew_same_dtype(fn, a, b, "a", "b") != LAM_OK) return NULL;
  if (lam__binary_check_dtype(fn, op, a->dtype) != LAM_OK) return NULL;
  int ndim;
  int64_t shape[LAM_MAX_DIMS];
  if (lam__broadcast_shapes(fn, a->ndim, a->shape, b->ndim, b->shape, &ndim, shape) != LAM_OK)
    return NULL;
  lam_ctx *ctx = a->ctx;
  lam_tensor *y = lam__tensor_new(ctx, a->dtype, ndim, shape, fn);
  if (!y) return NULL;
  cl_kernel k;
  lam_status st;
  int64_t n = y->numel;
  int chunk = lam__ew_chunk(ctx);
  if (a->numel == n && b->numel == n) {
    st = lam__kernel_dt(ctx, "elementwise", "binary_same", a->dtype, NULL, &k);
    if (st == LAM_OK) {
      lam__arg args[] = {LAM__ARG_T(a),   LAM__ARG_T(b),    LAM__ARG_T(y),
                         lam__arg_int(n), lam__arg_int(op), lam__arg_int(chunk)};
      st = lam__launch_1d(ctx, k, fn, LAM__EW_NARGS(args), args, (size_t)((n + chunk - 1) / chunk));
    }
  } else if (a->numel == 1 || b->numel == 1) {
    /* the other operand has the output's shape: it broadcasts only to itself */
    bool first = b->numel != 1;
    lam_tensor *x = first ? b : a, *s = first ? a : b;
    st = lam__kernel_dt(ctx, "elementwise", "binary_scalar", a->dtype, NULL, &k);
    if (st == LAM_OK) {
      lam__arg args[] = {LAM__ARG_T(x),   LAM__ARG_T(s),       LAM__ARG_T(y),
                         lam__arg_int(n), lam__arg_int(op),    lam__arg_real(a->dtype, 0),
                         lam__arg_int(1), lam__arg_int(first), lam__arg_int(chunk)};
      st = lam__launch_1d(ctx, k, fn, LAM__EW_NARGS(args), args, (size_t)((n + chunk - 1) / chunk));
    }
  } else {
    st = lam__ew_launch_bcast2(ctx, "binary_bcast", (int)op, a, b, y, ndim, shape, chunk, fn);
  }
  if (st != LAM_OK) {
    lam_tensor_free(y);
    return NULL;
  }
  if (lam_dtype_is_float(a->dtype)) {
    lam_tensor *in[2] = {a, b};
    lam__node *node = lam__tape_record(y, lam__binary_fn[op], lam__binary_backward, 2, in);
    if (node) {
      node->i[0] = op;
      if (op != LAM_ADD && op != LAM_SUB) {
        lam__node_save(node, a);
        lam__node_save(node, b);
      }
    }
  }
  return y;
}

lam_tensor *lam_binary(lam_binary_op op, lam_tensor *a, lam_tensor *b) {
  return lam__binary("lam_binary", op, a, b);
}
lam_tensor *lam_add(lam_tensor *a, lam_tensor *b) { return lam__binary("lam_add", LAM_ADD, a, b); }
lam_tensor *lam_sub(lam_tensor *a, lam_tensor *b) { return lam__binary("lam_sub", LAM_SUB, a, b); }
lam_tensor *lam_mul(lam_tensor *a, lam_tensor *b) { return lam__binary("lam_mul", LAM_MUL, a, b); }
lam_tensor *lam_div(lam_tensor *a, lam_tensor *b) { return lam__binary("lam_div", LAM_DIV, a, b); }
lam_tensor *lam_pow(lam_tensor *a, lam_tensor *b) { return lam__binary("lam_pow", LAM_POW, a, b); }
lam_tensor *lam_maximum(lam_tensor *a, lam_tensor *b) {
  return lam__binary("lam_maximum", LAM_MAXIMUM, a, b);
}
lam_tensor *lam_minimum(lam_tensor *a, lam_tensor *b) {
  return lam__binary("lam_minimum", LAM_MINIMUM, a, b);
}

/* ---- tensor op scalar ------------------------------------------------------ */

/* Gradient of x op s (s op x) w.r.t. x; f[0] = s, i[1] = scalar_first. */
static lam_status lam__scalar_backward(lam__node *node, lam_tensor *g, lam_tensor **gin) {
  if (!lam__node_needs(node, 0)) return LAM_OK;
  lam_binary_op op = (lam_binary_op)node->i[0];
  int first = (int)node->i[1];
  if ((op == LAM_ADD || op == LAM_SUB) && !(op == LAM_SUB && first)) {
    gin[0] = lam_tensor_retain(g); /* d(x + s) = d(x - s) = g; the tape copies before adding */
    return LAM_OK;
  }
  lam_tensor *x = node->n_saved ? node->saved[0] : g; /* unsaved: the rule ignores x */
  lam_tensor *dx = lam__tensor_new(g->ctx, g->dtype, g->ndim, g->shape, node->op);
  if (!dx) return lam_last_status();
  cl_kernel k;
  int chunk = lam__ew_chunk(g->ctx);
  lam_status st = lam__kernel_dt(g->ctx, "elementwise", "scalar_backward", g->dtype, NULL, &k);
  if (st == LAM_OK) {
    lam__arg args[] = {LAM__ARG_T(x),       LAM__ARG_T(g),
                       LAM__ARG_T(dx),      lam__arg_int(g->numel),
                       lam__arg_int(op),    lam__arg_real(g->dtype, node->f[0]),
                       lam__arg_int(first), lam__arg_int(chunk)};
    st = lam__launch_1d(g->ctx, k, node->op, LAM__EW_NARGS(args), args,
                        (size_t)((g->numel + chunk - 1) / chunk));
  }
  if (st != LAM_OK) {
    lam_tensor_free(dx);
    return st;
  }
  gin[0] = dx;
  return LAM_OK;
}

static lam_tensor *lam__binary_scalar(const char *fn, lam_binary_op op, lam_tensor *x, double s,
                                      int scalar_first) {
  if (!x) return lam__null_input(fn, "x");
  if ((unsigned)op >= LAM_BINARY_COUNT)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: unknown binary op %d (0..%d)", fn, (int)op,
                     LAM_BINARY_COUNT - 1),
           NULL;
  if (lam__binary_check_dtype(fn, op, x->dtype) != LAM_OK) return NULL;
  if (x->dtype == LAM_I32 && !(s == floor(s) && s >= -2147483648.0 && s <= 2147483647.0))
    return lam__fail(LAM_ERR_DTYPE, "%s: scalar %g is not an i32 value (x is i32)", fn, s), NULL;
  scalar_first = scalar_first != 0;
  lam_ctx *ctx = x->ctx;
  lam_tensor *y = lam__tensor_new(ctx, x->dtype, x->ndim, x->shape, fn);
  if (!y) return NULL;
  cl_kernel k;
  lam_status st = lam__kernel_dt(ctx, "elementwise", "binary_scalar", x->dtype, NULL, &k);
  if (st == LAM_OK) {
    int chunk = lam__ew_chunk(ctx);
    lam__arg args[] = {LAM__ARG_T(x),      LAM__ARG_T(x), /* sp unused: use_ptr 0 */
                       LAM__ARG_T(y),      lam__arg_int(x->numel),
                       lam__arg_int(op),   lam__arg_real(x->dtype, s),
                       lam__arg_int(0),    lam__arg_int(scalar_first),
                       lam__arg_int(chunk)};
    st = lam__launch_1d(ctx, k, fn, LAM__EW_NARGS(args), args,
                        (size_t)((x->numel + chunk - 1) / chunk));
  }
  if (st != LAM_OK) {
    lam_tensor_free(y);
    return NULL;
  }
  if (lam_dtype_is_float(x->dtype)) {
    lam__node *node = lam__tape_record(y, fn, lam__scalar_backward, 1, &x);
    if (node) {
      node->i[0] = op;
      node->i[1] = scalar_first;
      node->f[0] = s;
      bool uses_x =
          !(op == LAM_ADD || op == LAM_SUB || op == LAM_MUL || (op == LAM_DIV && !scalar_first));
      if (uses_x) lam__node_save(node, x);
    }
  }
  return y;
}

lam_tensor *lam_binary_scalar(lam_binary_op op, lam_tensor *x, double s, int scalar_first) {
  return lam__binary_scalar("lam_binary_scalar", op, x, s, scalar_first);
}
lam_tensor *lam_add_scalar(lam_tensor *x, double s) {
  return lam__binary_scalar("lam_add_scalar", LAM_ADD, x, s, 0);
}
lam_tensor *lam_sub_scalar(lam_tensor *x, double s) {
  return lam__binary_scalar("lam_sub_scalar", LAM_SUB, x, s, 0);
}
lam_tensor *lam_mul_scalar(lam_tensor *x, double s) {
  return lam__binary_scalar("lam_mul_scalar", LAM_MUL, x, s, 0);
}
lam_tensor *lam_div_scalar(lam_tensor *x, double s) {
  return lam__binary_scalar("lam_div_scalar", LAM_DIV, x, s, 0);
}
lam_tensor *lam_pow_scalar(lam_tensor *x, double s) {
  return lam__binary_scalar("lam_pow_scalar", LAM_POW, x, s, 0);
}
lam_tensor *lam_rsub_scalar(lam_tensor *x, double s) {
  return lam__binary_scalar("lam_rsub_scalar", LAM_SUB, x, s, 1);
}
lam_tensor *lam_rdiv_scalar(lam_tensor *x, double s) {
  return lam__binary_scalar("lam_rdiv_scalar", LAM_DIV, x, s, 1);
}
