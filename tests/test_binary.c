/* test_binary.c: binary arithmetic (with its scalar forms), comparisons and
 * where against plain C references with NumPy broadcasting (size-1 axes,
 * rank mismatch, 0-dim operands, both sides broadcasting, rank 8), every
 * dtype each op accepts, one case above 2^22 elements, PyTorch's semantics
 * (pow with negative bases, NaN-propagating maximum/minimum, tie-splitting
 * gradients), finite-difference gradient checks, and bad input for every
 * public function. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autodiff/tape.h" /* lam__vjp */
#include "testutil.h"

/* ---- helpers -------------------------------------------------------------- */

static int64_t numel_of(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) n *= shape[d];
  return n;
}

static lam_tensor *mk(lam_ctx *ctx, lam_dtype dt, int ndim, const int64_t *shape, const double *v) {
  int64_t n = numel_of(ndim, shape);
  void *buf = malloc((size_t)n * 8);
  for (int64_t i = 0; i < n; i++) {
    if (dt == LAM_F32)
      ((float *)buf)[i] = (float)v[i];
    else if (dt == LAM_F64)
      ((double *)buf)[i] = v[i];
    else if (dt == LAM_I32)
      ((int32_t *)buf)[i] = (int32_t)v[i];
    else
      ((uint8_t *)buf)[i] = (uint8_t)v[i];
  }
  lam_tensor *t = lam_tensor_from_host(ctx, dt, ndim, shape, buf);
  free(buf);
  cr_assert(t, "mk: %s", lam_last_error());
  return t;
}

static double *rd(const lam_tensor *t) {
  cr_assert(t, "rd: NULL tensor: %s", lam_last_error());
  int64_t n = lam_tensor_numel(t);
  void *buf = malloc(lam_tensor_nbytes(t));
  cr_assert_eq(lam_tensor_to_host(t, buf, lam_tensor_nbytes(t)), LAM_OK, "%s", lam_last_error());
  double *v = malloc((size_t)n * sizeof *v);
  lam_dtype dt = lam_tensor_dtype(t);
  for (int64_t i = 0; i < n; i++)
    v[i] = dt == LAM_F32   ? ((float *)buf)[i]
           : dt == LAM_F64 ? ((double *)buf)[i]
           : dt == LAM_I32 ? ((int32_t *)buf)[i]
                           : ((uint8_t *)buf)[i];
  free(buf);
  return v;
}

static void close_d(const double *got, const double *want, int64_t n, double atol, double rtol,
                    const char *what) {
  for (int64_t i = 0; i < n; i++) {
    if (isnan(want[i])) {
      cr_assert(isnan(got[i]), "%s: element %lld: got %.17g, want NaN", what, (long long)i, got[i]);
      continue;
    }
    if (isinf(want[i])) {
      cr_assert_eq(got[i], want[i], "%s: element %lld: got %g, want %g", what, (long long)i, got[i],
                   want[i]);
      continue;
    }
    cr_assert(fabs(got[i] - want[i]) <= atol + rtol * fabs(want[i]),
              "%s: element %lld: got %.17g, want %.17g", what, (long long)i, got[i], want[i]);
  }
}

static void tol_for(lam_dtype dt, double *atol, double *rtol) {
  *atol = dt == LAM_F32 ? 1e-6 : dt == LAM_F64 ? 1e-14 : 0;
  *rtol = dt == LAM_F32 ? 1e-5 : dt == LAM_F64 ? 1e-12 : 0;
}

/* Values as the dtype stores them (so references see the same inputs). */
static void fill(tu_rng *r, lam_dtype dt, double *v, int64_t n, double lo, double hi) {
  for (int64_t i = 0; i < n; i++) {
    v[i] = tu_uniform(r, lo, hi);
    if (dt == LAM_F32) v[i] = (float)v[i];
    if (dt == LAM_I32 || dt == LAM_U8) v[i] = floor(v[i]);
  }
}

static double ref_binary(lam_binary_op op, double a, double b) {
  switch (op) {
  case LAM_ADD: return a + b;
  case LAM_SUB: return a - b;
  case LAM_MUL: return a * b;
  case LAM_DIV: return a / b;
  case LAM_POW: return pow(a, b);
  case LAM_MAXIMUM: return isnan(a) || isnan(b) ? NAN : a > b ? a : b;
  case LAM_MINIMUM: return isnan(a) || isnan(b) ? NAN : a < b ? a : b;
  default: return NAN;
  }
}

static double ref_compare(lam_compare_op op, double a, double b) {
  switch (op) {
  case LAM_EQ: return a == b;
  case LAM_NE: return a != b;
  case LAM_LT: return a < b;
  case LAM_LE: return a <= b;
  case LAM_GT: return a > b;
  case LAM_GE: return a >= b;
  default: return -1;
  }
}

/* Element index of operand (nd, sh) for output index i of shape (ny, sy). */
static int64_t src_index(int64_t i, int ny, const int64_t *sy, int nd, const int64_t *sh) {
  int64_t idx = 0, stride = 1;
  for (int d = ny - 1; d >= 0; d--) {
    int64_t coord = i % sy[d];
    i /= sy[d];
    int s = d - (ny - nd);
    if (s >= 0) {
      if (sh[s] != 1) idx += coord * stride;
      stride *= sh[s];
    }
  }
  return idx;
}

/* The NumPy broadcast shape of up to three shapes (all assumed compatible). */
static int bcast_shape(int n, const int *nds, const int64_t *const *shs, int64_t *out) {
  int ny = 0;
  for (int k = 0; k < n; k++) ny = nds[k] > ny ? nds[k] : ny;
  for (int d = 0; d < ny; d++) {
    out[d] = 1;
    for (int k = 0; k < n; k++) {
      int s = d - (ny - nds[k]);
      if (s >= 0 && shs[k][s] != 1) out[d] = shs[k][s];
    }
  }
  return ny;
}

typedef struct shape_pair {
  int na;
  int64_t sa[8];
  int nb;
  int64_t sb[8];
} shape_pair;

/* Broadcasting corner cases: equal shapes, size-1 axes, rank mismatch,
 * 0-dim operands, both sides broadcasting, middle-axis broadcast (no axis
 * merge), rank 8, odd sizes. */
static const shape_pair pairs[] = {
    {2, {3, 4}, 2, {3, 4}},
    {1, {1023}, 1, {1023}},
    {0, {0}, 0, {0}},
    {2, {3, 1}, 2, {1, 4}},
    {2, {5, 4}, 1, {4}},
    {1, {4}, 2, {5, 4}},
    {0, {0}, 2, {2, 3}},
    {2, {2, 3}, 0, {0}},
    {1, {1}, 2, {2, 3}},
    {3, {2, 1, 3}, 2, {4, 1}},
    {3, {2, 3, 4}, 3, {2, 3, 1}},
    {3, {2, 3, 4}, 3, {1, 3, 4}},
    {3, {2, 3, 4}, 3, {2, 1, 4}},
    {2, {1, 1}, 2, {1, 1}},
    {3, {7, 1, 33}, 3, {1, 5, 1}},
    {2, {1, 1023}, 2, {3, 1}},
    {8, {2, 1, 2, 1, 2, 1, 2, 1}, 8, {1, 3, 1, 2, 1, 2, 1, 3}},
    {5, {3, 1, 2, 1, 2}, 7, {2, 2, 1, 1, 1, 2, 1}},
};
#define N_PAIRS (sizeof pairs / sizeof pairs[0])

static bool int_ok(lam_binary_op op) { return op != LAM_DIV && op != LAM_POW; }

static void operand_range(lam_binary_op op, int which, lam_dtype dt, double *lo, double *hi) {
  *lo = -5, *hi = 5;
  if (dt == LAM_I32) *lo = -1000, *hi = 1000;
  if (op == LAM_POW && which == 0) *lo = 0.2, *hi = 3;
  if (op == LAM_POW && which == 1) *lo = -3, *hi = 3;
  if (op == LAM_DIV && which == 1) *lo = 0.5, *hi = 4;
}

/* ---- binary forward ------------------------------------------------------- */

static void check_binary(lam_ctx *ctx, tu_rng *r, lam_binary_op op, lam_dtype dt,
                         const shape_pair *p) {
  int64_t n_a = numel_of(p->na, p->sa), n_b = numel_of(p->nb, p->sb);
  double *a = malloc((size_t)n_a * 8), *b = malloc((size_t)n_b * 8), lo, hi;
  operand_range(op, 0, dt, &lo, &hi);
  fill(r, dt, a, n_a, lo, hi);
  operand_range(op, 1, dt, &lo, &hi);
  fill(r, dt, b, n_b, lo, hi);
  if (op == LAM_DIV)
    for (int64_t i = 0; i < n_b; i++)
      if (tu_next(r) & 1) b[i] = -b[i];
  lam_tensor *ta = mk(ctx, dt, p->na, p->sa, a), *tb = mk(ctx, dt, p->nb, p->sb, b);
  lam_tensor *y = lam_binary(op, ta, tb);
  cr_assert(y, "op %d %s: %s", op, lam_dtype_name(dt), lam_last_error());
  int64_t sy[8];
  const int nds[2] = {p->na, p->nb};
  const int64_t *shs[2] = {p->sa, p->sb};
  int ny = bcast_shape(2, nds, shs, sy);
  cr_assert_eq(lam_tensor_ndim(y), ny);
  for (int d = 0; d < ny; d++) cr_assert_eq(lam_tensor_dim(y, d), sy[d]);
  cr_assert_eq(lam_tensor_dtype(y), dt);
  int64_t n = numel_of(ny, sy);
  double *want = malloc((size_t)n * 8), *got = rd(y);
  for (int64_t i = 0; i < n; i++) {
    double w = ref_binary(op, a[src_index(i, ny, sy, p->na, p->sa)],
                          b[src_index(i, ny, sy, p->nb, p->sb)]);
    want[i] = dt == LAM_F32 ? (float)w : w;
  }
  double atol, rtol;
  tol_for(dt, &atol, &rtol);
  if (op == LAM_POW) atol *= 10, rtol *= 10;
  char what[96];
  snprintf(what, sizeof what, "binary op %d %s pair (%d-d, %d-d)", op, lam_dtype_name(dt), p->na,
           p->nb);
  close_d(got, want, n, atol, rtol, what);
  free(a), free(b), free(want), free(got);
  lam_tensor_free(y), lam_tensor_free(ta), lam_tensor_free(tb);
}

Test(binary, every_op_every_dtype_broadcast_cases) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(11);
  tu_mark m = tu_mark_now(ctx);
  const lam_dtype dts[3] = {LAM_F32, LAM_F64, LAM_I32};
  for (int op = 0; op < LAM_BINARY_COUNT; op++)
    for (int d = 0; d < 3; d++) {
      if (dts[d] == LAM_I32 && !int_ok((lam_binary_op)op)) continue;
      if (dts[d] == LAM_F64 && !lam_ctx_device(ctx)->fp64) continue;
      for (size_t p = 0; p < N_PAIRS; p++)
        check_binary(ctx, &r, (lam_binary_op)op, dts[d], &pairs[p]);
    }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* The named functions are the ops they name, and work on offset views. */
Test(binary, named_functions_on_views) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  double av[12], bv[3] = {0.5, -2, 4};
  for (int i = 0; i < 12; i++) av[i] = 0.25 * i + 0.5;
  lam_tensor *a = mk(ctx, LAM_F64, 2, (int64_t[]){4, 3}, av);
  lam_tensor *b = mk(ctx, LAM_F64, 1, (int64_t[]){3}, bv);
  lam_tensor *as = lam_tensor_slice0(a, 2, 4); /* offset 6 */
  lam_tensor *(*fns[])(lam_tensor *, lam_tensor *) = {lam_add, lam_sub,     lam_mul,    lam_div,
                                                      lam_pow, lam_maximum, lam_minimum};
  for (int op = 0; op < LAM_BINARY_COUNT; op++) {
    lam_tensor *y = fns[op](as, b);
    double *got = rd(y), want[6];
    for (int i = 0; i < 6; i++) want[i] = ref_binary((lam_binary_op)op, av[6 + i], bv[i % 3]);
    close_d(got, want, 6, 1e-14, 1e-12, "named binary on a slice");
    free(got);
    lam_tensor_free(y);
    /* reversed operands: the one-element/broadcast paths keep the order */
    lam_tensor *b0 = lam_tensor_slice0(b, 1, 2); /* [1] at offset 1: -2 */
    y = fns[op](b0, as);
    got = rd(y);
    for (int i = 0; i < 6; i++) want[i] = ref_binary((lam_binary_op)op, bv[1], av[6 + i]);
    close_d(got, want, 6, 1e-14, 1e-12, "named binary, one-element left operand");
    free(got);
    lam_tensor_free(y);
    lam_tensor_free(b0);
  }
  lam_tensor_free(as), lam_tensor_free(a), lam_tensor_free(b);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

Test(binary, large_add_above_2_22) {
  lam_ctx *ctx = tu_ctx();
  int64_t n = 33 * (tu_small() ? 151 : 127103); /* 4194399 > 2^22, a multiple of 33 */
  tu_rng r = tu_rng_make(12);
  float *a = malloc((size_t)n * 4), *b = malloc((size_t)n * 4), *want = malloc((size_t)n * 4);
  tu_fill_uniform_f32(&r, a, n, -1, 1);
  tu_fill_uniform_f32(&r, b, n, -1, 1);
  for (int64_t i = 0; i < n; i++) want[i] = a[i] + b[i];
  lam_tensor *ta = lam_tensor_from_host(ctx, LAM_F32, 1, &n, a);
  lam_tensor *tb = lam_tensor_from_host(ctx, LAM_F32, 1, &n, b);
  lam_tensor *y = lam_add(ta, tb);
  float *got = tu_read_f32(y);
  tu_assert_close_f32(got, want, n, 0, 0, "large add");
  free(got);
  /* and a large broadcast: [n/33, 33] + [33] */
  lam_tensor *a2 = lam_tensor_reshape(ta, 2, (int64_t[]){n / 33, 33});
  lam_tensor *b2 = lam_tensor_slice0(tb, 0, 33);
  lam_tensor *y2 = lam_mul(a2, b2);
  got = tu_read_f32(y2);
  for (int64_t i = 0; i < n; i++) want[i] = a[i] * b[i % 33];
  tu_assert_close_f32(got, want, n, 0, 0, "large row-broadcast mul");
  free(got);
  free(a), free(b), free(want);
  lam_tensor_free(y), lam_tensor_free(y2), lam_tensor_free(a2), lam_tensor_free(b2);
  lam_tensor_free(ta), lam_tensor_free(tb);
  lam_ctx_free(ctx);
}

Test(binary, pow_and_nan_semantics) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  float av[8] = {-2, -2, -2, 0, 0, 4, NAN, 1};
  float bv[8] = {3, 2, 0.5f, 0, -1, 0.5f, 1, NAN};
  lam_tensor *a = lam_tensor_from_host(ctx, LAM_F32, 1, (int64_t[]){8}, av);
  lam_tensor *b = lam_tensor_from_host(ctx, LAM_F32, 1, (int64_t[]){8}, bv);
  lam_tensor *p = lam_pow(a, b), *mx = lam_maximum(a, b), *mn = lam_minimum(a, b);
  float *pv = tu_read_f32(p), *xv = tu_read_f32(mx), *nv = tu_read_f32(mn);
  cr_assert(pv[0] == -8 && pv[1] == 4 && isnan(pv[2]), "negative base: %g %g %g", pv[0], pv[1],
            pv[2]);
  cr_assert(pv[3] == 1 && isinf(pv[4]) && pv[5] == 2, "pow(0,0)=1, pow(0,-1)=inf");
  cr_assert(isnan(xv[6]) && isnan(xv[7]) && isnan(nv[6]) && isnan(nv[7]), "NaN propagates");
  cr_assert(xv[0] == 3 && nv[0] == -2 && xv[3] == 0 && nv[5] == 0.5f);
  free(pv), free(xv), free(nv);
  lam_tensor_free(p), lam_tensor_free(mx), lam_tensor_free(mn);
  /* scalar forms follow the same rules */
  lam_tensor *ps = lam_pow_scalar(a, 2), *ms = lam_binary_scalar(LAM_MAXIMUM, a, NAN, 1);
  float *v1 = tu_read_f32(ps), *v2 = tu_read_f32(ms);
  cr_assert(v1[0] == 4 && v1[3] == 0 && isnan(v1[6]));
  for (int i = 0; i < 8; i++) cr_assert(isnan(v2[i]), "maximum(NaN, x) is NaN");
  free(v1), free(v2);
  lam_tensor_free(ps), lam_tensor_free(ms);
  lam_tensor_free(a), lam_tensor_free(b);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- scalar forms ------------------------------------------------------- */

Test(binary, scalar_forms_every_op_and_dtype) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(13);
  tu_mark m = tu_mark_now(ctx);
  const lam_dtype dts[3] = {LAM_F32, LAM_F64, LAM_I32};
  const int64_t shape[2] = {3, 11};
  for (int d = 0; d < 3; d++) {
    lam_dtype dt = dts[d];
    if (dt == LAM_F64 && !lam_ctx_device(ctx)->fp64) continue;
    double atol, rtol;
    tol_for(dt, &atol, &rtol);
    for (int op = 0; op < LAM_BINARY_COUNT; op++) {
      if (dt == LAM_I32 && !int_ok((lam_binary_op)op)) continue;
      for (int first = 0; first < 2; first++) {
        double x[33], want[33], lo, hi;
        operand_range((lam_binary_op)op, first ? 1 : 0, dt, &lo, &hi);
        fill(&r, dt, x, 33, lo, hi);
        double s = op == LAM_POW ? (first ? 1.7 : -1.5) : dt == LAM_I32 ? -7 : 1.25;
        if (dt == LAM_F32) s = (float)s;
        lam_tensor *t = mk(ctx, dt, 2, shape, x);
        lam_tensor *y = lam_binary_scalar((lam_binary_op)op, t, s, first);
        cr_assert(y, "%s", lam_last_error());
        cr_assert_eq(lam_tensor_dtype(y), dt);
        for (int i = 0; i < 33; i++) {
          double w = first ? ref_binary((lam_binary_op)op, s, x[i])
                           : ref_binary((lam_binary_op)op, x[i], s);
          want[i] = dt == LAM_F32 ? (float)w : w;
        }
        double *got = rd(y);
        char what[64];
        snprintf(what, sizeof what, "scalar op %d first %d %s", op, first, lam_dtype_name(dt));
        close_d(got, want, 33, atol * 10, rtol * 10, what);
        free(got);
        lam_tensor_free(y);
        lam_tensor_free(t);
      }
    }
  }
  /* the named scalar functions */
  double xv[4] = {0.5, -1.5, 2, 4};
  lam_tensor *x = mk(ctx, LAM_F64, 1, (int64_t[]){4}, xv);
  struct {
    lam_tensor *(*fn)(lam_tensor *, double);
    lam_binary_op op;
    int first;
  } named[] = {{lam_add_scalar, LAM_ADD, 0}, {lam_sub_scalar, LAM_SUB, 0},
               {lam_mul_scalar, LAM_MUL, 0}, {lam_div_scalar, LAM_DIV, 0},
               {lam_pow_scalar, LAM_POW, 0}, {lam_rsub_scalar, LAM_SUB, 1},
               {lam_rdiv_scalar, LAM_DIV, 1}};
  for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) {
    lam_tensor *y = named[i].fn(x, 3);
    double *got = rd(y), want[4];
    for (int e = 0; e < 4; e++)
      want[e] =
          named[i].first ? ref_binary(named[i].op, 3, xv[e]) : ref_binary(named[i].op, xv[e], 3);
    close_d(got, want, 4, 1e-14, 1e-12, "named scalar form");
    free(got);
    lam_tensor_free(y);
  }
  lam_tensor_free(x);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- comparisons ---------------------------------------------------------- */

static void check_compare(lam_ctx *ctx, tu_rng *r, lam_compare_op op, lam_dtype dt,
                          const shape_pair *p) {
  int64_t n_a = numel_of(p->na, p->sa), n_b = numel_of(p->nb, p->sb);
  double *a = malloc((size_t)n_a * 8), *b = malloc((size_t)n_b * 8);
  double lo = dt == LAM_U8 ? 0 : -3, hi = 4; /* few distinct values: many ties */
  fill(r, dt, a, n_a, lo, hi);
  fill(r, dt, b, n_b, lo, hi);
  if (dt == LAM_F32 || dt == LAM_F64) {
    for (int64_t i = 0; i < n_a; i++) a[i] = floor(a[i] * 2) / 2;
    for (int64_t i = 0; i < n_b; i++) b[i] = floor(b[i] * 2) / 2;
    if (n_a > 2) a[1] = NAN;
  }
  lam_tensor *ta = mk(ctx, dt, p->na, p->sa, a), *tb = mk(ctx, dt, p->nb, p->sb, b);
  lam_tensor *y = lam_compare(op, ta, tb);
  cr_assert(y, "%s", lam_last_error());
  cr_assert_eq(lam_tensor_dtype(y), LAM_U8);
  int64_t sy[8];
  const int nds[2] = {p->na, p->nb};
  const int64_t *shs[2] = {p->sa, p->sb};
  int ny = bcast_shape(2, nds, shs, sy);
  cr_assert_eq(lam_tensor_ndim(y), ny);
  int64_t n = numel_of(ny, sy);
  double *got = rd(y);
  for (int64_t i = 0; i < n; i++) {
    double w = ref_compare(op, a[src_index(i, ny, sy, p->na, p->sa)],
                           b[src_index(i, ny, sy, p->nb, p->sb)]);
    cr_assert_eq(got[i], w, "compare op %d %s element %lld", op, lam_dtype_name(dt), (long long)i);
  }
  free(a), free(b), free(got);
  lam_tensor_free(y), lam_tensor_free(ta), lam_tensor_free(tb);
}

Test(binary, compare_every_op_every_dtype) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(14);
  tu_mark m = tu_mark_now(ctx);
  const lam_dtype dts[4] = {LAM_F32, LAM_F64, LAM_I32, LAM_U8};
  for (int op = 0; op < LAM_COMPARE_COUNT; op++)
    for (int d = 0; d < 4; d++) {
      if (dts[d] == LAM_F64 && !lam_ctx_device(ctx)->fp64) continue;
      for (size_t p = 0; p < N_PAIRS; p++)
        check_compare(ctx, &r, (lam_compare_op)op, dts[d], &pairs[p]);
    }
  /* named functions */
  double av[4] = {1, 2, 3, NAN}, bv[4] = {2, 2, 2, 2};
  lam_tensor *a = mk(ctx, LAM_F32, 1, (int64_t[]){4}, av),
             *b = mk(ctx, LAM_F32, 1, (int64_t[]){4}, bv);
  lam_tensor *(*fns[])(lam_tensor *, lam_tensor *) = {lam_eq, lam_ne, lam_lt,
                                                      lam_le, lam_gt, lam_ge};
  for (int op = 0; op < LAM_COMPARE_COUNT; op++) {
    lam_tensor *y = fns[op](a, b);
    double *got = rd(y);
    for (int i = 0; i < 4; i++) cr_assert_eq(got[i], ref_compare((lam_compare_op)op, av[i], bv[i]));
    free(got);
    lam_tensor_free(y);
  }
  lam_tensor_free(a), lam_tensor_free(b);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

Test(binary, compare_scalar_exact_for_integers) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  double iv[7] = {-3, -1, 0, 1, 2, 3, 255};
  const double scalars[] = {2, 2.5, -0.5, 300, -1e10, 1e10, 255, 2147483647.5, -2147483648.0, NAN};
  const lam_dtype dts[4] = {LAM_I32, LAM_U8, LAM_F32, LAM_F64};
  for (int d = 0; d < 4; d++) {
    if (dts[d] == LAM_F64 && !lam_ctx_device(ctx)->fp64) continue;
    double v[7];
    for (int i = 0; i < 7; i++) v[i] = dts[d] == LAM_U8 ? fabs(iv[i]) : iv[i];
    lam_tensor *x = mk(ctx, dts[d], 1, (int64_t[]){7}, v);
    for (size_t s = 0; s < sizeof scalars / sizeof scalars[0]; s++)
      for (int op = 0; op < LAM_COMPARE_COUNT; op++) {
        lam_tensor *y = lam_compare_scalar((lam_compare_op)op, x, scalars[s]);
        cr_assert(y, "%s", lam_last_error());
        double *got = rd(y);
        /* floats compare against the scalar rounded to their dtype (PyTorch) */
        double sv = dts[d] == LAM_F32 ? (float)scalars[s] : scalars[s];
        for (int i = 0; i < 7; i++)
          cr_assert_eq(got[i], ref_compare((lam_compare_op)op, v[i], sv),
                       "%s x=%g op %d s=%g: got %g", lam_dtype_name(dts[d]), v[i], op, scalars[s],
                       got[i]);
        free(got);
        lam_tensor_free(y);
      }
    lam_tensor_free(x);
  }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- where ------------------------------------------------------------------ */

Test(binary, where_broadcasts_all_three) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(15);
  tu_mark m = tu_mark_now(ctx);
  const struct {
    int n[3];
    int64_t s[3][4];
  } cases[] = {
      {{2, 2, 2}, {{3, 4}, {3, 4}, {3, 4}}},
      {{2, 2, 2}, {{3, 1}, {1, 4}, {3, 4}}},
      {{0, 2, 1}, {{0}, {2, 3}, {3}}},
      {{1, 0, 0}, {{1023}, {0}, {0}}},
      {{3, 1, 2}, {{2, 1, 5}, {5}, {3, 1}}},
      {{2, 3, 1}, {{7, 1}, {1, 1, 33}, {1}}},
      {{4, 4, 4}, {{2, 1, 3, 1}, {1, 2, 1, 4}, {2, 2, 3, 4}}},
  };
  const lam_dtype dts[4] = {LAM_F32, LAM_F64, LAM_I32, LAM_U8};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
    for (int d = 0; d < 4; d++) {
      if (dts[d] == LAM_F64 && !lam_ctx_device(ctx)->fp64) continue;
      const int64_t *shs[3] = {cases[c].s[0], cases[c].s[1], cases[c].s[2]};
      double *v[3];
      lam_tensor *t[3];
      for (int k = 0; k < 3; k++) {
        int64_t n = numel_of(cases[c].n[k], shs[k]);
        v[k] = malloc((size_t)n * 8);
        fill(&r, k == 0 ? LAM_U8 : dts[d], v[k], n, k == 0 ? 0 : -100, k == 0 ? 3 : 100);
        if (dts[d] == LAM_U8 && k > 0)
          for (int64_t i = 0; i < n; i++) v[k][i] = fabs(v[k][i]);
        t[k] = mk(ctx, k == 0 ? LAM_U8 : dts[d], cases[c].n[k], shs[k], v[k]);
      }
      lam_tensor *y = lam_where(t[0], t[1], t[2]);
      cr_assert(y, "%s", lam_last_error());
      cr_assert_eq(lam_tensor_dtype(y), dts[d]);
      int64_t sy[8];
      int ny = bcast_shape(3, cases[c].n, shs, sy);
      cr_assert_eq(lam_tensor_ndim(y), ny);
      int64_t n = numel_of(ny, sy);
      double *got = rd(y);
      for (int64_t i = 0; i < n; i++) {
        double cv = v[0][src_index(i, ny, sy, cases[c].n[0], shs[0])];
        double w = cv != 0 ? v[1][src_index(i, ny, sy, cases[c].n[1], shs[1])]
                           : v[2][src_index(i, ny, sy, cases[c].n[2], shs[2])];
        if (dts[d] == LAM_F32) w = (float)w;
        cr_assert_eq(got[i], w, "where case %zu %s element %lld", c, lam_dtype_name(dts[d]),
                     (long long)i);
      }
      free(got);
      for (int k = 0; k < 3; k++) {
        free(v[k]);
        lam_tensor_free(t[k]);
      }
      lam_tensor_free(y);
    }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- gradients ------------------------------------------------------------------ */

static lam_tensor *binary_of(lam_tensor *const *xs, int n, void *user) {
  (void)n;
  return lam_binary(*(const lam_binary_op *)user, xs[0], xs[1]);
}

Test(binary, gradcheck_every_op_with_broadcasting) {
  lam_ctx *ctx = tu_ctx();
  if (!lam_ctx_device(ctx)->fp64) {
    lam_ctx_free(ctx);
    cr_skip_test("no fp64");
  }
  tu_rng r = tu_rng_make(16);
  tu_mark m = tu_mark_now(ctx);
  const shape_pair gp[] = {{2, {3, 4}, 2, {3, 4}}, {2, {3, 1}, 2, {1, 4}}, {2, {2, 3}, 0, {0}},
                           {0, {0}, 2, {2, 3}},    {3, {2, 3, 4}, 1, {4}}, {1, {3}, 3, {2, 1, 3}}};
  for (int op = 0; op < LAM_BINARY_COUNT; op++)
    for (size_t p = 0; p < sizeof gp / sizeof gp[0]; p++) {
      lam_binary_op bop = (lam_binary_op)op;
      lam_tensor *xs[2];
      for (int k = 0; k < 2; k++) {
        int nd = k ? gp[p].nb : gp[p].na;
        const int64_t *sh = k ? gp[p].sb : gp[p].sa;
        double lo = op == LAM_POW && k == 0 ? 0.5 : -2, hi = op == LAM_POW && k == 0 ? 2.5 : 2;
        if (op == LAM_DIV && k == 1) lo = 0.5, hi = 2;
        xs[k] = tu_rand_f64(ctx, &r, nd, sh, lo, hi);
      }
      char what[64];
      snprintf(what, sizeof what, "binary op %d pair %zu", op, p);
      tu_gradcheck(ctx, binary_of, &bop, xs, 2, 1e-6, 1e-6, 1, 1e-4, what);
      lam_tensor_free(xs[0]), lam_tensor_free(xs[1]);
    }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

typedef struct scalar_case {
  lam_binary_op op;
  double s;
  int first;
} scalar_case;

static lam_tensor *scalar_of(lam_tensor *const *xs, int n, void *user) {
  (void)n;
  const scalar_case *c = user;
  return lam_binary_scalar(c->op, xs[0], c->s, c->first);
}

Test(binary, gradcheck_scalar_forms) {
  lam_ctx *ctx = tu_ctx();
  if (!lam_ctx_device(ctx)->fp64) {
    lam_ctx_free(ctx);
    cr_skip_test("no fp64");
  }
  tu_rng r = tu_rng_make(17);
  tu_mark m = tu_mark_now(ctx);
  for (int op = 0; op < LAM_BINARY_COUNT; op++)
    for (int first = 0; first < 2; first++) {
      scalar_case c = {(lam_binary_op)op, op == LAM_POW ? (first ? 1.7 : 2.5) : 0.3, first};
      bool positive = (op == LAM_POW && !first) || (op == LAM_DIV && first);
      lam_tensor *x = tu_rand_f64(ctx, &r, 2, (int64_t[]){2, 5}, positive ? 0.5 : -2, 2);
      char what[64];
      snprintf(what, sizeof what, "scalar op %d first %d", op, first);
      tu_gradcheck(ctx, scalar_of, &c, &x, 1, 1e-6, 1e-6, 1, 1e-4, what);
      lam_tensor_free(x);
    }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

static lam_tensor *where_of(lam_tensor *const *xs, int n, void *user) {
  (void)n;
  return lam_where((lam_tensor *)user, xs[0], xs[1]);
}

Test(binary, gradcheck_where) {
  lam_ctx *ctx = tu_ctx();
  if (!lam_ctx_device(ctx)->fp64) {
    lam_ctx_free(ctx);
    cr_skip_test("no fp64");
  }
  tu_rng r = tu_rng_make(18);
  tu_mark m = tu_mark_now(ctx);
  double cv[3] = {1, 0, 7};
  lam_tensor *cond = mk(ctx, LAM_U8, 2, (int64_t[]){3, 1}, cv);
  lam_tensor *xs[2] = {tu_rand_f64(ctx, &r, 2, (int64_t[]){1, 4}, -1, 1),
                       tu_rand_f64(ctx, &r, 2, (int64_t[]){3, 4}, -1, 1)};
  tu_gradcheck(ctx, where_of, cond, xs, 2, 1e-6, 1e-6, 1, 1e-6, "where [3,1] [1,4] [3,4]");
  lam_tensor_free(xs[0]), lam_tensor_free(xs[1]);
  /* 0-dim a, cond broadcast along a leading axis */
  lam_tensor *c2 = mk(ctx, LAM_U8, 1, (int64_t[]){3}, cv);
  lam_tensor *ys[2] = {tu_rand_f64(ctx, &r, 0, NULL, -1, 1),
                       tu_rand_f64(ctx, &r, 2, (int64_t[]){2, 3}, -1, 1)};
  tu_gradcheck(ctx, where_of, c2, ys, 2, 1e-6, 1e-6, 1, 1e-6, "where [3] [] [2,3]");
  lam_tensor_free(ys[0]), lam_tensor_free(ys[1]);
  lam_tensor_free(c2), lam_tensor_free(cond);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* PyTorch's rules where the derivative is not unique or not finite. */
Test(binary, grads_at_ties_and_pow_edges) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  double av[4] = {2, 2, 0, -1}, bv[4] = {2, 0, 0, 3};
  lam_tensor *xs[2] = {mk(ctx, LAM_F32, 1, (int64_t[]){4}, av),
                       mk(ctx, LAM_F32, 1, (int64_t[]){4}, bv)};
  lam_tensor *cot = lam_tensor_full(ctx, LAM_F32, 1, (int64_t[]){4}, 1.0);
  const struct {
    lam_binary_op op;
    double ga[4], gb[4];
  } cases[] = {
      {LAM_MAXIMUM, {0.5, 1, 0.5, 0}, {0.5, 0, 0.5, 1}},
      {LAM_MINIMUM, {0.5, 0, 0.5, 1}, {0.5, 1, 0.5, 0}},
      /* d a^b/da = b a^(b-1), 0 where b == 0; d/db = a^b log a, 0 where a == 0, b >= 0 */
      {LAM_POW, {4, 0, 0, 3}, {4 * log(2.0), log(2.0), 0, NAN}},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    lam_binary_op op = cases[c].op;
    lam_tensor *g[2] = {NULL, NULL};
    cr_assert_eq(lam__vjp(ctx, binary_of, &op, xs, 2, cot, NULL, g), LAM_OK, "%s",
                 lam_last_error());
    double *ga = rd(g[0]), *gb = rd(g[1]);
    close_d(ga, cases[c].ga, 4, 1e-6, 1e-6, "grad a");
    close_d(gb, cases[c].gb, 4, 1e-6, 1e-6, "grad b");
    free(ga), free(gb);
    lam_tensor_free(g[0]), lam_tensor_free(g[1]);
  }
  lam_tensor_free(cot), lam_tensor_free(xs[0]), lam_tensor_free(xs[1]);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* Comparisons, sign, step and integer ops record nothing on the tape; a
 * float op on the same inputs does (the positive control). */
static lam_tensor *record_probe(lam_tensor *const *xs, int n, void *user) {
  (void)n;
  lam_tensor *ints = user;
  lam_tensor *c = lam_gt(xs[0], xs[1]), *cs = lam_compare_scalar(LAM_LT, xs[0], 0.5);
  lam_tensor *sg = lam_sign(xs[0]), *st = lam_step(xs[0]), *ia = lam_add(ints, ints);
  lam_tensor *w = lam_where(c, xs[0], xs[1]);
  cr_assert(c && cs && sg && st && ia && w, "%s", lam_last_error());
  cr_assert(!lam__tracked(c) && !lam__tracked(cs), "comparisons must not record");
  cr_assert(!lam__tracked(sg) && !lam__tracked(st), "sign/step must not record");
  cr_assert(!lam__tracked(ia), "integer ops must not record");
  cr_assert(lam__tracked(w), "where on tracked floats records");
  lam_tensor_free(c), lam_tensor_free(cs), lam_tensor_free(sg), lam_tensor_free(st);
  lam_tensor_free(ia);
  return w;
}

Test(binary, comparisons_and_integer_ops_record_nothing) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  double v[3] = {1, -2, 3}, u[3] = {0, 5, -1};
  lam_tensor *xs[2] = {mk(ctx, LAM_F32, 1, (int64_t[]){3}, v),
                       mk(ctx, LAM_F32, 1, (int64_t[]){3}, u)};
  lam_tensor *ints = mk(ctx, LAM_I32, 1, (int64_t[]){3}, v);
  lam_tensor *cot = lam_tensor_full(ctx, LAM_F32, 1, (int64_t[]){3}, 1.0);
  lam_tensor *g[2] = {NULL, NULL};
  cr_assert_eq(lam__vjp(ctx, record_probe, ints, xs, 2, cot, NULL, g), LAM_OK, "%s",
               lam_last_error());
  double *ga = rd(g[0]), *gb = rd(g[1]);
  for (int i = 0; i < 3; i++) {
    cr_assert_eq(ga[i], v[i] > u[i] ? 1 : 0, "where grad to a");
    cr_assert_eq(gb[i], v[i] > u[i] ? 0 : 1, "where grad to b");
  }
  free(ga), free(gb);
  lam_tensor_free(g[0]), lam_tensor_free(g[1]);
  lam_tensor_free(cot), lam_tensor_free(ints), lam_tensor_free(xs[0]), lam_tensor_free(xs[1]);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- bad input -------------------------------------------------------------------- */

Test(binary, bad_input_every_function) {
  lam_ctx *ctx = tu_ctx();
  lam_tensor *f = lam_tensor_full(ctx, LAM_F32, 2, (int64_t[]){3, 4}, 1);
  lam_tensor *f5 = lam_tensor_full(ctx, LAM_F32, 1, (int64_t[]){5}, 1);
  lam_tensor *d = lam_tensor_full(ctx, LAM_F64, 2, (int64_t[]){3, 4}, 1);
  lam_tensor *i = lam_tensor_full(ctx, LAM_I32, 2, (int64_t[]){3, 4}, 1);
  lam_tensor *u = lam_tensor_full(ctx, LAM_U8, 2, (int64_t[]){3, 4}, 1);
  lam_ctx *ctx2 = tu_ctx();
  lam_tensor *other = lam_tensor_full(ctx2, LAM_F32, 2, (int64_t[]){3, 4}, 1);
  tu_mark m = tu_mark_now(ctx);

  lam_tensor *(*bin[])(lam_tensor *, lam_tensor *) = {lam_add, lam_sub,     lam_mul,    lam_div,
                                                      lam_pow, lam_maximum, lam_minimum};
  const char *bin_names[] = {"lam_add", "lam_sub",     "lam_mul",    "lam_div",
                             "lam_pow", "lam_maximum", "lam_minimum"};
  for (int k = 0; k < LAM_BINARY_COUNT; k++) {
    lam_error_clear();
    tu_assert_fails(bin[k](NULL, f), LAM_ERR_NULL, "a is NULL");
    lam_error_clear();
    tu_assert_fails(bin[k](f, NULL), LAM_ERR_NULL, "b is NULL");
    tu_assert_fails(bin[k](f, f5), LAM_ERR_SHAPE, "[3,4]");
    cr_assert(strstr(lam_last_error(), "[5]") && strstr(lam_last_error(), bin_names[k]), "%s",
              lam_last_error());
    tu_assert_fails(bin[k](f, d), LAM_ERR_DTYPE, "a is f32, b is f64");
    tu_assert_fails(bin[k](u, u), LAM_ERR_DTYPE, "u8");
    tu_assert_fails(bin[k](f, other), LAM_ERR_INVALID_ARGUMENT, "different contexts");
    lam_tensor *y = bin[k](i, i);
    if (int_ok((lam_binary_op)k)) {
      cr_assert(y, "%s on i32: %s", bin_names[k], lam_last_error());
      lam_tensor_free(y);
    } else {
      tu_assert_fails(y, LAM_ERR_DTYPE, "i32");
    }
  }
  tu_assert_fails(lam_binary(LAM_BINARY_COUNT, f, f), LAM_ERR_INVALID_ARGUMENT,
                  "unknown binary op");
  tu_assert_fails(lam_binary((lam_binary_op)-1, f, f), LAM_ERR_INVALID_ARGUMENT, "lam_binary");

  /* scalar forms */
  lam_tensor *(*sc[])(lam_tensor *, double) = {lam_add_scalar, lam_sub_scalar, lam_mul_scalar,
                                               lam_div_scalar, lam_pow_scalar, lam_rsub_scalar,
                                               lam_rdiv_scalar};
  for (size_t k = 0; k < sizeof sc / sizeof sc[0]; k++) {
    lam_error_clear();
    tu_assert_fails(sc[k](NULL, 1), LAM_ERR_NULL, "x is NULL");
    tu_assert_fails(sc[k](u, 1), LAM_ERR_DTYPE, "u8");
  }
  tu_assert_fails(lam_div_scalar(i, 2), LAM_ERR_DTYPE, "i32");
  tu_assert_fails(lam_add_scalar(i, 2.5), LAM_ERR_DTYPE, "2.5");
  tu_assert_fails(lam_mul_scalar(i, 1e12), LAM_ERR_DTYPE, "i32");
  tu_assert_fails(lam_binary_scalar(LAM_BINARY_COUNT, f, 1, 0), LAM_ERR_INVALID_ARGUMENT,
                  "unknown");
  lam_error_clear();
  tu_assert_fails(lam_binary_scalar(LAM_ADD, NULL, 1, 0), LAM_ERR_NULL, "lam_binary_scalar");

  /* comparisons: every dtype is accepted, but both sides must agree */
  lam_tensor *(*cmp[])(lam_tensor *, lam_tensor *) = {lam_eq, lam_ne, lam_lt,
                                                      lam_le, lam_gt, lam_ge};
  for (int k = 0; k < LAM_COMPARE_COUNT; k++) {
    lam_error_clear();
    tu_assert_fails(cmp[k](NULL, f), LAM_ERR_NULL, "a is NULL");
    lam_error_clear();
    tu_assert_fails(cmp[k](f, NULL), LAM_ERR_NULL, "b is NULL");
    tu_assert_fails(cmp[k](f5, f), LAM_ERR_SHAPE, "[5]");
    cr_assert(strstr(lam_last_error(), "[3,4]"), "%s", lam_last_error());
    tu_assert_fails(cmp[k](f, d), LAM_ERR_DTYPE, "f64");
    tu_assert_fails(cmp[k](i, u), LAM_ERR_DTYPE, "u8");
    tu_assert_fails(cmp[k](f, other), LAM_ERR_INVALID_ARGUMENT, "contexts");
  }
  tu_assert_fails(lam_compare(LAM_COMPARE_COUNT, f, f), LAM_ERR_INVALID_ARGUMENT,
                  "unknown compare op");
  tu_assert_fails(lam_compare_scalar((lam_compare_op)99, f, 1), LAM_ERR_INVALID_ARGUMENT,
                  "unknown");
  lam_error_clear();
  tu_assert_fails(lam_compare_scalar(LAM_LT, NULL, 1), LAM_ERR_NULL, "x is NULL");

  /* where */
  lam_tensor *cond = lam_tensor_full(ctx, LAM_U8, 2, (int64_t[]){3, 4}, 1);
  lam_error_clear();
  tu_assert_fails(lam_where(NULL, f, f), LAM_ERR_NULL, "cond is NULL");
  lam_error_clear();
  tu_assert_fails(lam_where(cond, NULL, f), LAM_ERR_NULL, "a is NULL");
  lam_error_clear();
  tu_assert_fails(lam_where(cond, f, NULL), LAM_ERR_NULL, "b is NULL");
  tu_assert_fails(lam_where(f, f, f), LAM_ERR_DTYPE, "cond is f32, must be u8");
  tu_assert_fails(lam_where(i, f, f), LAM_ERR_DTYPE, "must be u8");
  tu_assert_fails(lam_where(cond, f, d), LAM_ERR_DTYPE, "a is f32, b is f64");
  tu_assert_fails(lam_where(cond, f5, f), LAM_ERR_SHAPE, "a is [5]");
  cr_assert(strstr(lam_last_error(), "cond is [3,4]") && strstr(lam_last_error(), "b is [3,4]"),
            "%s", lam_last_error());
  tu_assert_fails(lam_where(cond, f, other), LAM_ERR_INVALID_ARGUMENT, "contexts");
  lam_tensor_free(cond);

  tu_assert_no_leak(ctx, m);
  lam_tensor_free(f), lam_tensor_free(f5), lam_tensor_free(d), lam_tensor_free(i),
      lam_tensor_free(u);
  lam_tensor_free(other);
  lam_ctx_free(ctx2);
  lam_ctx_free(ctx);
}
