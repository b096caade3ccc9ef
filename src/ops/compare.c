/* ops/compare.c: comparisons (eq, ne, lt, le, gt, ge) with broadcasting,
 * returning u8 0/1 and recording nothing, and lam_where (cond ? a : b with
 * all three broadcast) with its backward rule. Comparisons take every dtype
 * (f32, f16, f64, i32, u8); where takes a u8 cond and a, b of one dtype.
 * Kernel variants are chosen on the host as in binary.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/elementwise.h"
#include "ops/elementwise_internal.h"

/* a op b == b swapped(op) a */
static lam_compare_op lam__compare_swap(lam_compare_op op) {
  switch (op) {
  case LAM_LT: return LAM_GT;
  case LAM_LE: return LAM_GE;
  case LAM_GT: return LAM_LT;
  case LAM_GE: return LAM_LE;
  default: return op;
  }
}

/* Launches compare_scalar: y = x op (use_ptr ? sp[0] : s). */
static lam_status lam__compare_scalar_launch(const char *fn, lam_compare_op op, lam_tensor *x,
                                             lam_tensor *sp, double s, lam_tensor *y) {
  cl_kernel k;
  lam_status st = lam__kernel_dt(x->ctx, "elementwise", "compare_scalar", x->dtype, NULL, &k);
  if (st != LAM_OK) return st;
  int chunk = lam__ew_chunk(x->ctx);
  lam__arg args[] = {LAM__ARG_T(x),
                     LAM__ARG_T(sp ? sp : x),
                     LAM__ARG_T(y),
                     lam__arg_int(x->numel),
                     lam__arg_int(op),
                     lam__arg_real(x->dtype, s),
                     lam__arg_int(sp != NULL),
                     lam__arg_int(chunk)};
  return lam__launch_1d(x->ctx, k, fn, LAM__EW_NARGS(args), args,
                        (size_t)((x->numel + chunk - 1) / chunk));
}

static lam_tensor *lam__compare(const char *fn, lam_compare_op op, lam_tensor *a, lam_tensor *b) {
  if (!a) return lam__null_input(fn, "a");
  if (!b) return lam__null_input(fn, "b");
  if ((unsigned)op >= LAM_COMPARE_COUNT)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: unknown compare op %d (0..%d)", fn, (int)op,
                     LAM_COMPARE_COUNT - 1),
           NULL;
  if (lam__ew_same_ctx(fn, a, b, "a", "b") != LAM_OK) return NULL;
  if (lam__ew_same_dtype(fn, a, b, "a", "b") != LAM_OK) return NULL;
  int ndim;
  int64_t shape[LAM_MAX_DIMS];
  if (lam__broadcast_shapes(fn, a->ndim, a->shape, b->ndim, b->shape, &ndim, shape) != LAM_OK)
    return NULL;
  lam_ctx *ctx = a->ctx;
  lam_tensor *y = lam__tensor_new(ctx, LAM_U8, ndim, shape, fn);
  if (!y) return NULL;
  cl_kernel k;
  lam_status st;
  int64_t n = y->numel;
  int chunk = lam__ew_chunk(ctx);
  if (a->numel == n && b->numel == n) {
    st = lam__kernel_dt(ctx, "elementwise", "compare_same", a->dtype, NULL, &k);
    if (st == LAM_OK) {
      lam__arg args[] = {LAM__ARG_T(a),   LAM__ARG_T(b),    LAM__ARG_T(y),
                         lam__arg_int(n), lam__arg_int(op), lam__arg_int(chunk)};
      st = lam__launch_1d(ctx, k, fn, LAM__EW_NARGS(args), args, (size_t)((n + chunk - 1) / chunk));
    }
  } else if (b->numel == 1) {
    st = lam__compare_scalar_launch(fn, op, a, b, 0, y);
  } else if (a->numel == 1) {
    st = lam__compare_scalar_launch(fn, lam__compare_swap(op), b, a, 0, y);
  } else {
    st = lam__ew_launch_bcast2(ctx, "compare_bcast", (int)op, a, b, y, ndim, shape, chunk, fn);
  }
  if (st != LAM_OK) {
    lam_tensor_free(y);
    return NULL;
  }
  return y; /* comparisons are not differentiable: nothing recorded */
}

lam_tensor *lam_compare(lam_compare_op op, lam_tensor *a, lam_tensor *b) {
  return lam__compare("lam_compare", op, a, b);
}
lam_tensor *lam_eq(lam_tensor *a, lam_tensor *b) { return lam__compare("lam_eq", LAM_EQ, a, b); }
lam_tensor *lam_ne(lam_tensor *a, lam_tensor *b) { return lam__compare("lam_ne", LAM_NE, a, b); }
lam_tensor *lam_lt(lam_tensor *a, lam_tensor *b) { return lam__compare("lam_lt", LAM_LT, a, b); }
lam_tensor *lam_le(lam_tensor *a, lam_tensor *b) { return lam__compare("lam_le", LAM_LE, a, b); }
lam_tensor *lam_gt(lam_tensor *a, lam_tensor *b) { return lam__compare("lam_gt", LAM_GT, a, b); }
lam_tensor *lam_ge(lam_tensor *a, lam_tensor *b) { return lam__compare("lam_ge", LAM_GE, a, b); }

/* Integer tensors compare exactly against a double s: the op and bound are
 * rewritten to an equivalent integer comparison (x < 2.5 is x < 3), and a
 * comparison true or false for every int becomes x >= INT_MIN or x < INT_MIN. */
static void lam__compare_int_bound(lam_compare_op *op, double s, int64_t *bound) {
  const double lo = -2147483648.0, hi = 2147483647.0;
  int verdict = -1; /* -1: a real comparison, 0: always false, 1: always true */
  double f = floor(s), c = ceil(s);
  if (isnan(s)) {
    verdict = *op == LAM_NE;
  } else {
    switch (*op) {
    case LAM_EQ:
    case LAM_NE:
      if (s != f || s < lo || s > hi)
        verdict = *op == LAM_NE;
      else
        *bound = (int64_t)s;
      break;
    case LAM_LT: /* x < s  <=>  x < ceil(s) */
    case LAM_GE: /* x >= s <=>  x >= ceil(s) */
      if (c > hi)
        verdict = *op == LAM_LT;
      else if (c <= lo)
        verdict = *op == LAM_GE;
      else
        *bound = (int64_t)c;
      break;
    case LAM_LE: /* x <= s <=>  x <= floor(s) */
    case LAM_GT: /* x > s  <=>  x > floor(s) */
      if (f >= hi)
        verdict = *op == LAM_LE;
      else if (f < lo)
        verdict = *op == LAM_GT;
      else
        *bound = (int64_t)f;
      break;
    default: break;
    }
  }
  if (verdict >= 0) {
    *op = verdict ? LAM_GE : LAM_LT;
    *bound = INT32_MIN;
  }
}

lam_tensor *lam_compare_scalar(lam_compare_op op, lam_tensor *x, double s) {
  const char *fn = "lam_compare_scalar";
  if (!x) return lam__null_input(fn, "x");
  if ((unsigned)op >= LAM_COMPARE_COUNT)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: unknown compare op %d (0..%d)", fn, (int)op,
                     LAM_COMPARE_COUNT - 1),
           NULL;
  lam_tensor *y = lam__tensor_new(x->ctx, LAM_U8, x->ndim, x->shape, fn);
  if (!y) return NULL;
  if (!lam_dtype_is_float(x->dtype)) { /* i32, u8: compared in int */
    int64_t bound = 0;
    lam__compare_int_bound(&op, s, &bound);
    s = (double)bound;
  }
  if (lam__compare_scalar_launch(fn, op, x, NULL, s, y) != LAM_OK) {
    lam_tensor_free(y);
    return NULL;
  }
  return y;
}

/* ---- where ---------------------------------------------------------------- */

/* grad a = g where cond, grad b = g where !cond, each reduced to its shape;
 * cond gets none. saved[0] is cond. */
static lam_status lam__where_backward(lam__node *node, lam_tensor *g, lam_tensor **gin) {
  lam_tensor *cond = node->saved[0];
  lam__ew_layout L;
  lam__ew_layout_make(g->ndim, g->shape, 1, &cond->ndim,
                      (const int64_t(*)[LAM_MAX_DIMS]) & cond->shape, &L);
  cl_kernel k;
  int chunk = lam__ew_chunk(g->ctx);
  lam_status st = lam__kernel_dt(g->ctx, "elementwise", "where_backward", g->dtype, NULL, &k);
  for (int i = 1; i <= 2 && st == LAM_OK; i++) {
    if (!lam__node_needs(node, i)) continue;
    lam_tensor *full = lam__tensor_new(g->ctx, g->dtype, g->ndim, g->shape, node->op);
    if (!full) return lam_last_status();
    lam__arg args[] = {LAM__ARG_T(cond),
                       LAM__ARG_T(g),
                       LAM__ARG_T(full),
                       lam__arg_int(g->numel),
                       lam__arg_int(L.ndim),
                       lam__arg_int8(L.ndim, L.shape),
                       lam__arg_int8(L.ndim, L.strides[0]),
                       lam__arg_int(i == 1),
                       lam__arg_int(chunk)};
    st = lam__launch_1d(g->ctx, k, node->op, LAM__EW_NARGS(args), args,
                        lam__ew_items(&L, g->numel, chunk));
    if (st == LAM_OK && !(gin[i] = lam__sum_to_shape(full, node->in_ndim[i], node->in_shape[i])))
      st = lam_last_status();
    lam_tensor_free(full);
  }
  return st;
}

lam_tensor *lam_where(lam_tensor *cond, lam_tensor *a, lam_tensor *b) {
  const char *fn = "lam_where";
  if (!cond) return lam__null_input(fn, "cond");
  if (!a) return lam__null_input(fn, "a");
  if (!b) return lam__null_input(fn, "b");
  if (lam__ew_same_ctx(fn, cond, a, "cond", "a") != LAM_OK ||
      lam__ew_same_ctx(fn, a, b, "a", "b") != LAM_OK)
    return NULL;
  if (cond->dtype != LAM_U8)
    return lam__fail(LAM_ERR_DTYPE, "%s: cond is %s, must be u8", fn, lam_dtype_name(cond->dtype)),
           NULL;
  if (lam__ew_same_dtype(fn, a, b, "a", "b") != LAM_OK) return NULL;
  int n1, ndim;
  int64_t s1[LAM_MAX_DIMS], shape[LAM_MAX_DIMS];
  if (lam__broadcast_shapes(fn, cond->ndim, cond->shape, a->ndim, a->shape, &n1, s1) != LAM_OK ||
      lam__broadcast_shapes(fn, n1, s1, b->ndim, b->shape, &ndim, shape) != LAM_OK) {
    char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR], b3[LAM__SHAPE_STR];
    return lam__fail(LAM_ERR_SHAPE, "%s: shapes do not broadcast: cond is %s, a is %s, b is %s", fn,
                     lam__shape_str(cond->ndim, cond->shape, b1),
                     lam__shape_str(a->ndim, a->shape, b2), lam__shape_str(b->ndim, b->shape, b3)),
           NULL;
  }
  lam_ctx *ctx = a->ctx;
  lam_tensor *y = lam__tensor_new(ctx, a->dtype, ndim, shape, fn);
  if (!y) return NULL;
  int64_t n = y->numel;
  int chunk = lam__ew_chunk(ctx);
  cl_kernel k;
  lam_status st;
  if (cond->numel == n && a->numel == n && b->numel == n) {
    st = lam__kernel_dt(ctx, "elementwise", "where_same", a->dtype, NULL, &k);
    if (st == LAM_OK) {
      lam__arg args[] = {LAM__ARG_T(cond), LAM__ARG_T(a),   LAM__ARG_T(b),
                         LAM__ARG_T(y),    lam__arg_int(n), lam__arg_int(chunk)};
      st = lam__launch_1d(ctx, k, fn, LAM__EW_NARGS(args), args, (size_t)((n + chunk - 1) / chunk));
    }
  } else {
    lam__ew_layout L;
    const int nd[3] = {cond->ndim, a->ndim, b->ndim};
    int64_t sh[3][LAM_MAX_DIMS];
    memcpy(sh[0], cond->shape, sizeof sh[0]);
    memcpy(sh[1], a->shape, sizeof sh[1]);
    memcpy(sh[2], b->shape, sizeof sh[2]);
    lam__ew_layout_make(ndim, shape, 3, nd, (const int64_t(*)[LAM_MAX_DIMS])sh, &L);
    st = lam__kernel_dt(ctx, "elementwise", "where_bcast", a->dtype, NULL, &k);
    if (st == LAM_OK) {
      lam__arg args[] = {LAM__ARG_T(cond),
                         LAM__ARG_T(a),
                         LAM__ARG_T(b),
                         LAM__ARG_T(y),
                         lam__arg_int(n),
                         lam__arg_int(L.ndim),
                         lam__arg_int8(L.ndim, L.shape),
                         lam__arg_int8(L.ndim, L.strides[0]),
                         lam__arg_int8(L.ndim, L.strides[1]),
                         lam__arg_int8(L.ndim, L.strides[2]),
                         lam__arg_int(chunk)};
      st = lam__launch_1d(ctx, k, fn, LAM__EW_NARGS(args), args, lam__ew_items(&L, n, chunk));
    }
  }
  if (st != LAM_OK) {
    lam_tensor_free(y);
    return NULL;
  }
  if (lam_dtype_is_float(a->dtype)) {
    lam_tensor *in[3] = {cond, a, b};
    lam__node *node = lam__tape_record(y, fn, lam__where_backward, 3, in);
    if (node) lam__node_save(node, cond);
  }
  return y;
}
