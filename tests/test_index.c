/* test_index.c: the indexing ops of lamina/shape.h (gather, take,
 * index_select, scatter_add, one_hot, tril/triu and their masks) against
 * plain C references on random shapes with repeated, negative and
 * out-of-range indices and every dtype; the gathers' backward (a
 * scatter-add) on long index columns against a host scatter; gradient checks
 * of every differentiable op; bad input with leak checks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autodiff/tape.h" /* lam__vjp */
#include "testutil.h"

static const lam_dtype dts[] = {LAM_F32, LAM_F64, LAM_I32, LAM_U8};
#define N_DTS 4

static bool dt_ok(lam_ctx *ctx, lam_dtype dt) {
  return dt != LAM_F64 || lam_ctx_device(ctx)->fp64;
}

static int64_t prod(int nd, const int64_t *s) {
  int64_t n = 1;
  for (int i = 0; i < nd; i++) n *= s[i];
  return n;
}

static void strides(int nd, const int64_t *s, int64_t *st) {
  int64_t k = 1;
  for (int i = nd - 1; i >= 0; i--) {
    st[i] = k;
    k *= s[i];
  }
}

static void unravel(int64_t i, int nd, const int64_t *s, int64_t *c) {
  for (int d = nd - 1; d >= 0; d--) {
    c[d] = i % s[d];
    i /= s[d];
  }
}

/* NumPy's index rule; -1 when out of range. */
static int64_t norm_index(int64_t t, int64_t n) {
  if (t < 0) t += n;
  return t >= 0 && t < n ? t : -1;
}

static unsigned char *rand_host(tu_rng *r, lam_dtype dt, int64_t n) {
  size_t es = lam_dtype_size(dt);
  unsigned char *h = malloc((size_t)n * es + 1);
  for (int64_t i = 0; i < n; i++) {
    if (dt == LAM_F32) {
      float v = (float)tu_uniform(r, -10, 10);
      memcpy(h + i * es, &v, es);
    } else if (dt == LAM_F64) {
      double v = tu_uniform(r, -10, 10);
      memcpy(h + i * es, &v, es);
    } else if (dt == LAM_I32) {
      int32_t v = (int32_t)(tu_next(r) >> 32);
      memcpy(h + i * es, &v, es);
    } else {
      h[i] = (unsigned char)tu_next(r);
    }
  }
  return h;
}

static lam_tensor *rand_t(lam_ctx *ctx, tu_rng *r, lam_dtype dt, int nd, const int64_t *shape,
                          unsigned char **host) {
  unsigned char *h = rand_host(r, dt, prod(nd, shape));
  lam_tensor *t = lam_tensor_from_host(ctx, dt, nd, shape, h);
  cr_assert(t, "%s", lam_last_error());
  *host = h;
  return t;
}

/* i32 indices uniform in [lo, hi). */
static lam_tensor *rand_idx(lam_ctx *ctx, tu_rng *r, int nd, const int64_t *shape, int64_t lo,
                            int64_t hi, int32_t **host) {
  int64_t n = prod(nd, shape);
  int32_t *h = malloc((size_t)n * sizeof *h + 1);
  for (int64_t i = 0; i < n; i++) h[i] = (int32_t)tu_randint(r, lo, hi);
  lam_tensor *t = lam_tensor_from_host(ctx, LAM_I32, nd, shape, h);
  cr_assert(t, "%s", lam_last_error());
  *host = h;
  return t;
}

static void expect(const lam_tensor *y, int nd, const int64_t *shape, const unsigned char *want,
                   const char *what) {
  cr_assert(y, "%s: NULL result: %s", what, lam_last_error());
  cr_assert_eq(lam_tensor_ndim(y), nd, "%s: ndim %d, want %d", what, lam_tensor_ndim(y), nd);
  for (int d = 0; d < nd; d++)
    cr_assert_eq(lam_tensor_shape(y)[d], shape[d], "%s: dim %d is %lld, want %lld", what, d,
                 (long long)lam_tensor_shape(y)[d], (long long)shape[d]);
  size_t es = lam_dtype_size(lam_tensor_dtype(y));
  int64_t n = lam_tensor_numel(y);
  unsigned char *got = malloc((size_t)n * es + 1);
  cr_assert_eq(lam_tensor_to_host(y, got, (size_t)n * es), LAM_OK);
  for (int64_t i = 0; i < n; i++)
    cr_assert(memcmp(got + i * es, want + i * es, es) == 0, "%s (%s): element %lld differs", what,
              lam_dtype_name(lam_tensor_dtype(y)), (long long)i);
  free(got);
}

static void rand_shape(tu_rng *r, int nd, int64_t cap, int64_t *s) {
  static const int64_t sizes[] = {1, 2, 3, 5, 7, 33};
  for (;;) {
    for (int d = 0; d < nd; d++) s[d] = sizes[tu_randint(r, 0, 6)];
    if (prod(nd, s) <= cap) return;
  }
}

/* dst[i] += src[j] in dtype dt (integers wrap). */
static void add_elem(lam_dtype dt, unsigned char *dst, const unsigned char *src) {
  if (dt == LAM_F32) {
    float a, b;
    memcpy(&a, dst, 4);
    memcpy(&b, src, 4);
    a = a + b;
    memcpy(dst, &a, 4);
  } else if (dt == LAM_F64) {
    double a, b;
    memcpy(&a, dst, 8);
    memcpy(&b, src, 8);
    a = a + b;
    memcpy(dst, &a, 8);
  } else if (dt == LAM_I32) {
    uint32_t a, b;
    memcpy(&a, dst, 4);
    memcpy(&b, src, 4);
    a += b;
    memcpy(dst, &a, 4);
  } else {
    dst[0] = (unsigned char)(dst[0] + src[0]);
  }
}

/* ---- gather / take / index_select -------------------------------------- */

Test(index, gather_random) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(1);
  tu_mark m = tu_mark_now(ctx);
  int oor = 0;
  for (int it = 0; it < 44; it++) {
    lam_dtype dt = dts[it % N_DTS];
    if (!dt_ok(ctx, dt)) continue;
    size_t es = lam_dtype_size(dt);
    int nd = it < 40 ? 1 + it % 4 : 8; /* the last few at rank 8, every dim > 1 */
    int64_t xs[8] = {2, 3, 2, 2, 3, 2, 2, 3}, is[8], xst[8], c[8];
    if (nd < 8) rand_shape(&r, nd, 5000, xs);
    strides(nd, xs, xst);
    int axis = (int)tu_randint(&r, -nd, nd), a = (axis + nd) % nd;
    for (int d = 0; d < nd; d++) is[d] = d == a ? tu_randint(&r, 1, 9) : tu_randint(&r, 1, xs[d] + 1);
    if (nd == 8)
      for (int d = 0; d < nd; d++) is[d] = d == a ? 3 : xs[d];
    unsigned char *h;
    int32_t *ih;
    lam_tensor *x = rand_t(ctx, &r, dt, nd, xs, &h);
    lam_tensor *idx = rand_idx(ctx, &r, nd, is, -xs[a] - 2, xs[a] + 2, &ih);
    int64_t n = prod(nd, is);
    unsigned char *want = calloc((size_t)n, es);
    for (int64_t i = 0; i < n; i++) {
      unravel(i, nd, is, c);
      int64_t t = norm_index(ih[i], xs[a]);
      if (t < 0) {
        oor++;
        continue;
      }
      c[a] = t;
      int64_t o = 0;
      for (int d = 0; d < nd; d++) o += c[d] * xst[d];
      memcpy(want + i * es, h + o * es, es);
    }
    lam_tensor *y = lam_gather(x, axis, idx);
    expect(y, nd, is, want, "gather");
    lam_tensor_free(y);
    lam_tensor_free(x);
    lam_tensor_free(idx);
    free(want);
    free(h);
    free(ih);
  }
  cr_assert(oor > 0, "no out-of-range index was tried");
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* numpy.take reference: y = x[:axis] + idx.shape + x[axis+1:]. */
static unsigned char *take_ref(const unsigned char *h, size_t es, int nd, const int64_t *xs, int a,
                               const int32_t *ih, int64_t M) {
  int64_t pre = prod(a, xs), J = xs[a], post = prod(nd - a - 1, xs + a + 1);
  unsigned char *w = calloc((size_t)(pre * M * post), es);
  for (int64_t p = 0; p < pre; p++)
    for (int64_t mm = 0; mm < M; mm++) {
      int64_t t = norm_index(ih[mm], J);
      if (t < 0) continue;
      memcpy(w + ((p * M + mm) * post) * es, h + ((p * J + t) * post) * es, (size_t)post * es);
    }
  return w;
}

Test(index, take_and_index_select_random) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(2);
  tu_mark m = tu_mark_now(ctx);
  for (int it = 0; it < 48; it++) {
    lam_dtype dt = dts[it % N_DTS];
    if (!dt_ok(ctx, dt)) continue;
    size_t es = lam_dtype_size(dt);
    int nd = 1 + it % 4, ind = (it / 4) % 4; /* index ranks 0..3 */
    int64_t xs[8], is[8], os[8];
    rand_shape(&r, nd, 5000, xs);
    rand_shape(&r, ind, 40, is);
    int axis = (int)tu_randint(&r, -nd, nd), a = (axis + nd) % nd;
    unsigned char *h;
    int32_t *ih;
    lam_tensor *x = rand_t(ctx, &r, dt, nd, xs, &h);
    lam_tensor *idx = rand_idx(ctx, &r, ind, is, -xs[a] - 1, xs[a] + 1, &ih);
    int j = 0;
    for (int d = 0; d < a; d++) os[j++] = xs[d];
    for (int d = 0; d < ind; d++) os[j++] = is[d];
    for (int d = a + 1; d < nd; d++) os[j++] = xs[d];
    unsigned char *want = take_ref(h, es, nd, xs, a, ih, prod(ind, is));
    lam_tensor *y = lam_take(x, idx, axis);
    expect(y, j, os, want, "take");
    lam_tensor_free(y);
    if (ind == 1) {
      y = lam_index_select(x, axis, idx);
      expect(y, j, os, want, "index_select");
      lam_tensor_free(y);
    }
    lam_tensor_free(x);
    lam_tensor_free(idx);
    free(want);
    free(h);
    free(ih);
  }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- scatter_add ------------------------------------------------------- */

static void scatter_case(lam_ctx *ctx, tu_rng *r, lam_dtype dt, int nd, const int64_t *xs,
                         const int64_t *is, int axis, const char *what) {
  size_t es = lam_dtype_size(dt);
  int a = (axis + nd) % nd;
  int64_t xst[8], c[8];
  strides(nd, xs, xst);
  unsigned char *h, *sh;
  int32_t *ih;
  lam_tensor *x = rand_t(ctx, r, dt, nd, xs, &h);
  lam_tensor *src = rand_t(ctx, r, dt, nd, is, &sh);
  lam_tensor *idx = rand_idx(ctx, r, nd, is, -xs[a] - 1, xs[a] + 1, &ih);
  int64_t n = prod(nd, xs), k = prod(nd, is);
  unsigned char *want = malloc((size_t)n * es);
  memcpy(want, h, (size_t)n * es);
  for (int64_t q = 0; q < k; q++) { /* row-major order: ascending along each column */
    unravel(q, nd, is, c);
    int64_t t = norm_index(ih[q], xs[a]);
    if (t < 0) continue;
    c[a] = t;
    int64_t o = 0;
    for (int d = 0; d < nd; d++) o += c[d] * xst[d];
    add_elem(dt, want + o * es, sh + q * es);
  }
  lam_tensor *y = lam_scatter_add(x, axis, idx, src);
  expect(y, nd, xs, want, what);
  /* deterministic: a second run gives the same bits */
  lam_tensor *y2 = lam_scatter_add(x, axis, idx, src);
  expect(y2, nd, xs, want, what);
  lam_tensor *all[] = {x, src, idx, y, y2};
  for (int i = 0; i < 5; i++) lam_tensor_free(all[i]);
  free(want);
  free(h);
  free(sh);
  free(ih);
}

Test(index, scatter_add_random) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(3);
  tu_mark m = tu_mark_now(ctx);
  for (int it = 0; it < 40; it++) {
    lam_dtype dt = dts[it % N_DTS];
    if (!dt_ok(ctx, dt)) continue;
    int nd = 1 + it % 4;
    int64_t xs[8], is[8];
    rand_shape(&r, nd, 5000, xs);
    int axis = (int)tu_randint(&r, -nd, nd), a = (axis + nd) % nd;
    for (int d = 0; d < nd; d++) is[d] = d == a ? tu_randint(&r, 1, 12) : tu_randint(&r, 1, xs[d] + 1);
    scatter_case(ctx, &r, dt, nd, xs, is, axis, "scatter_add");
  }
  /* rank 8 (every dim > 1 in the index extent) */
  for (int a = 0; a < 8; a += 7)
    scatter_case(ctx, &r, LAM_F32, 8, (int64_t[]){2, 3, 2, 2, 3, 2, 2, 3},
                 (int64_t[]){a == 0 ? 4 : 2, 3, 2, 2, 2, 2, 2, a == 7 ? 4 : 3}, a, "scatter_add rank 8");
  /* one long column (a single work-item), and many repeats into 7 rows */
  for (int di = 0; di < N_DTS; di++) {
    if (!dt_ok(ctx, dts[di])) continue;
    scatter_case(ctx, &r, dts[di], 1, (int64_t[]){1023}, (int64_t[]){tu_small() ? 300 : 5000}, 0,
                 "scatter_add 1-D");
    scatter_case(ctx, &r, dts[di], 2, (int64_t[]){7, 3}, (int64_t[]){tu_small() ? 100 : 3000, 2},
                 0, "scatter_add into 7 rows");
  }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* The gathers' backward on long index columns: compare the
 * vector-Jacobian product with a host scatter-add. */
typedef struct iargs {
  lam_tensor *idx;
  int axis, k;
} iargs;

static lam_tensor *f_take(lam_tensor *const *xs, int n, void *u) {
  (void)n;
  iargs *a = u;
  return lam_take(xs[0], a->idx, a->axis);
}
static lam_tensor *f_gather(lam_tensor *const *xs, int n, void *u) {
  (void)n;
  iargs *a = u;
  return lam_gather(xs[0], a->axis, a->idx);
}
static lam_tensor *f_index_select(lam_tensor *const *xs, int n, void *u) {
  (void)n;
  iargs *a = u;
  return lam_index_select(xs[0], a->axis, a->idx);
}
static lam_tensor *f_scatter_add(lam_tensor *const *xs, int n, void *u) {
  (void)n;
  iargs *a = u;
  return lam_scatter_add(xs[0], a->axis, a->idx, xs[1]);
}
static lam_tensor *f_tril(lam_tensor *const *xs, int n, void *u) {
  (void)n;
  return lam_tril(xs[0], ((iargs *)u)->k);
}
static lam_tensor *f_triu(lam_tensor *const *xs, int n, void *u) {
  (void)n;
  return lam_triu(xs[0], ((iargs *)u)->k);
}

Test(index, gather_backward_large) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(4);
  tu_mark m = tu_mark_now(ctx);
  /* embedding-like take: table [V, D], M indices with repeats */
  int64_t V = 1023, D = 37, M = tu_small() ? 200 : 2000; /* D > 32: two column runs */
  lam_tensor *table = tu_rand_f64(ctx, &r, 2, (int64_t[]){V, D}, -1, 1);
  int32_t *ih;
  lam_tensor *idx = rand_idx(ctx, &r, 1, &M, -V, V, &ih);
  lam_tensor *w = tu_rand_f64(ctx, &r, 2, (int64_t[]){M, D}, -1, 1);
  iargs a = {idx, 0, 0};
  lam_tensor *g = NULL;
  cr_assert_eq(lam__vjp(ctx, f_take, &a, &table, 1, w, NULL, &g), LAM_OK, "%s", lam_last_error());
  double *wv = tu_read_f64(w), *gv = tu_read_f64(g), *want = calloc((size_t)(V * D), sizeof *want);
  for (int64_t mm = 0; mm < M; mm++)
    for (int64_t d = 0; d < D; d++) want[norm_index(ih[mm], V) * D + d] += wv[mm * D + d];
  tu_assert_close_f64(gv, want, V * D, 1e-12, 1e-12, "take backward");
  free(wv);
  free(gv);
  free(want);
  free(ih);
  lam_tensor_free(g);
  lam_tensor_free(w);
  lam_tensor_free(idx);
  /* gather along the last axis with a long index column */
  int64_t xs[2] = {3, 1023}, is[2] = {2, tu_small() ? 300 : 3000};
  idx = rand_idx(ctx, &r, 2, is, -1025, 1025, &ih);
  w = tu_rand_f64(ctx, &r, 2, is, -1, 1);
  lam_tensor *x = tu_rand_f64(ctx, &r, 2, xs, -1, 1);
  a = (iargs){idx, -1, 0};
  cr_assert_eq(lam__vjp(ctx, f_gather, &a, &x, 1, w, NULL, &g), LAM_OK, "%s", lam_last_error());
  wv = tu_read_f64(w);
  gv = tu_read_f64(g);
  want = calloc((size_t)(xs[0] * xs[1]), sizeof *want);
  for (int64_t i = 0; i < is[0]; i++)
    for (int64_t k = 0; k < is[1]; k++) {
      int64_t t = norm_index(ih[i * is[1] + k], xs[1]);
      if (t >= 0) want[i * xs[1] + t] += wv[i * is[1] + k];
    }
  tu_assert_close_f64(gv, want, xs[0] * xs[1], 1e-12, 1e-12, "gather backward");
  free(wv);
  free(gv);
  free(want);
  free(ih);
  lam_tensor *all[] = {g, w, idx, x, table};
  for (int i = 0; i < 5; i++) lam_tensor_free(all[i]);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- one_hot, tril/triu ------------------------------------------------ */

Test(index, one_hot_all_dtypes) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(5);
  tu_mark m = tu_mark_now(ctx);
  const int classes[] = {1, 7, 33};
  for (int di = 0; di < N_DTS; di++) {
    lam_dtype dt = dts[di];
    if (!dt_ok(ctx, dt)) continue;
    size_t es = lam_dtype_size(dt);
    for (int ci = 0; ci < 3; ci++) {
      int C = classes[ci];
      int64_t is[2] = {3, 7};
      int32_t *ih;
      lam_tensor *idx = rand_idx(ctx, &r, 2, is, -2, C + 2, &ih);
      unsigned char *want = calloc(21 * (size_t)C, es), one[8];
      if (dt == LAM_F32) { float f = 1; memcpy(one, &f, 4); }
      else if (dt == LAM_F64) { double f = 1; memcpy(one, &f, 8); }
      else if (dt == LAM_I32) { int32_t f = 1; memcpy(one, &f, 4); }
      else one[0] = 1;
      for (int i = 0; i < 21; i++)
        if (ih[i] >= 0 && ih[i] < C) memcpy(want + ((size_t)i * C + ih[i]) * es, one, es);
      lam_tensor *y = lam_one_hot(idx, C, dt);
      expect(y, 3, (int64_t[]){3, 7, C}, want, "one_hot");
      lam_tensor_free(y);
      lam_tensor_free(idx);
      free(want);
      free(ih);
    }
  }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

Test(index, tril_triu_and_masks) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(6);
  tu_mark m = tu_mark_now(ctx);
  const int ks[] = {0, 1, -1, 2, -3, 100, -100};
  for (int it = 0; it < 28; it++) {
    lam_dtype dt = dts[it % N_DTS];
    if (!dt_ok(ctx, dt)) continue;
    size_t es = lam_dtype_size(dt);
    int nd = 2 + it % 3, k = ks[it % 7], upper = (it / 7) % 2;
    int64_t s[8], c[8];
    rand_shape(&r, nd, 5000, s);
    unsigned char *h;
    lam_tensor *x = rand_t(ctx, &r, dt, nd, s, &h);
    int64_t n = prod(nd, s);
    unsigned char *want = calloc((size_t)n, es);
    for (int64_t i = 0; i < n; i++) {
      unravel(i, nd, s, c);
      int64_t dlt = c[nd - 1] - c[nd - 2];
      if (upper ? dlt >= k : dlt <= k) memcpy(want + i * es, h + i * es, es);
    }
    lam_tensor *y = upper ? lam_triu(x, k) : lam_tril(x, k);
    expect(y, nd, s, want, upper ? "triu" : "tril");
    lam_tensor_free(y);
    /* the u8 mask of the same matrix size */
    int64_t R = s[nd - 2], C = s[nd - 1];
    unsigned char *mw = malloc((size_t)(R * C));
    for (int64_t i = 0; i < R; i++)
      for (int64_t j = 0; j < C; j++) mw[i * C + j] = upper ? (j - i >= k) : (j - i <= k);
    y = upper ? lam_triu_mask(ctx, R, C, k) : lam_tril_mask(ctx, R, C, k);
    cr_assert(y && lam_tensor_dtype(y) == LAM_U8);
    expect(y, 2, (int64_t[]){R, C}, mw, upper ? "triu_mask" : "tril_mask");
    lam_tensor_free(y);
    lam_tensor_free(x);
    free(mw);
    free(want);
    free(h);
  }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- gradient checks --------------------------------------------------- */

Test(index, gradcheck_index_ops) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(7);
  tu_mark m = tu_mark_now(ctx);
  lam_tensor *x = tu_rand_f64(ctx, &r, 3, (int64_t[]){2, 4, 3}, -1, 1);
  /* gather along axis 1: repeated, negative and out-of-range indices */
  int32_t gi[2 * 5 * 2] = {0, 0, 3, -1, 3, 3, 9, 2, -4, 1, 1, 1, 2, 2, -9, 0, 3, 3, 0, 0};
  lam_tensor *gidx = lam_tensor_from_host(ctx, LAM_I32, 3, (int64_t[]){2, 5, 2}, gi);
  iargs a = {gidx, 1, 0};
  tu_gradcheck(ctx, f_gather, &a, &x, 1, 1e-6, 1e-6, 1, 1e-3, "gather");
  /* take with a 2-D index along the last axis, and along axis 0 */
  int32_t ti[6] = {2, -1, 0, 2, 2, 5};
  lam_tensor *tidx = lam_tensor_from_host(ctx, LAM_I32, 2, (int64_t[]){2, 3}, ti);
  a = (iargs){tidx, -1, 0};
  tu_gradcheck(ctx, f_take, &a, &x, 1, 1e-6, 1e-6, 1, 1e-3, "take axis -1");
  a = (iargs){tidx, 0, 0};
  tu_gradcheck(ctx, f_take, &a, &x, 1, 1e-6, 1e-6, 1, 1e-3, "take axis 0");
  int32_t si[5] = {3, 0, 3, -2, 1};
  lam_tensor *sidx = lam_tensor_from_host(ctx, LAM_I32, 1, (int64_t[]){5}, si);
  a = (iargs){sidx, 1, 0};
  tu_gradcheck(ctx, f_index_select, &a, &x, 1, 1e-6, 1e-6, 1, 1e-3, "index_select");
  /* scatter_add: gradients for both x and src */
  lam_tensor *src = tu_rand_f64(ctx, &r, 3, (int64_t[]){2, 5, 2}, -1, 1);
  lam_tensor *xs[2] = {x, src};
  a = (iargs){gidx, 1, 0};
  tu_gradcheck(ctx, f_scatter_add, &a, xs, 2, 1e-6, 1e-6, 1, 1e-3, "scatter_add");
  for (int k = -1; k <= 1; k++) {
    a.k = k;
    tu_gradcheck(ctx, f_tril, &a, &x, 1, 1e-6, 1e-6, 1, 1e-3, "tril");
    tu_gradcheck(ctx, f_triu, &a, &x, 1, 1e-6, 1e-6, 1, 1e-3, "triu");
  }
  lam_tensor *all[] = {x, gidx, tidx, sidx, src};
  for (int i = 0; i < 5; i++) lam_tensor_free(all[i]);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- bad input --------------------------------------------------------- */

Test(index, bad_input) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  lam_tensor *x = lam_tensor_zeros(ctx, LAM_F32, 2, (int64_t[]){3, 4});
  lam_tensor *xd = lam_tensor_zeros(ctx, LAM_F64, 2, (int64_t[]){3, 4});
  lam_tensor *i2 = lam_tensor_zeros(ctx, LAM_I32, 2, (int64_t[]){3, 2});
  lam_tensor *i1 = lam_tensor_zeros(ctx, LAM_I32, 1, (int64_t[]){5});
  lam_tensor *ibig = lam_tensor_zeros(ctx, LAM_I32, 2, (int64_t[]){4, 2});
  lam_tensor *fidx = lam_tensor_zeros(ctx, LAM_F32, 2, (int64_t[]){3, 2});
  lam_tensor *s = lam_tensor_scalar(ctx, LAM_F32, 1);
  lam_tensor *i7 = lam_tensor_zeros(ctx, LAM_I32, 7, (int64_t[]){1, 1, 1, 1, 1, 1, 2});
  lam_tensor *x8 = lam_tensor_zeros(ctx, LAM_F32, 8, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 2});
  lam_tensor *src = lam_tensor_zeros(ctx, LAM_F32, 2, (int64_t[]){3, 2});
  lam_tensor *i8 = lam_tensor_zeros(ctx, LAM_I32, 8, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 2});
  tu_mark m2 = tu_mark_now(ctx);

  lam_error_clear();
  tu_assert_fails(lam_gather(NULL, 0, i2), LAM_ERR_NULL, "lam_gather: x is NULL");
  lam_error_clear();
  tu_assert_fails(lam_gather(x, 0, NULL), LAM_ERR_NULL, "index is NULL");
  tu_assert_fails(lam_gather(x, 1, fidx), LAM_ERR_DTYPE, "index is f32; indices must be i32");
  tu_assert_fails(lam_gather(x, 1, i1), LAM_ERR_SHAPE, "ranks must match");
  tu_assert_fails(lam_gather(x, 1, ibig), LAM_ERR_SHAPE, "larger than x");
  tu_assert_fails(lam_gather(x, 2, i2), LAM_ERR_INVALID_ARGUMENT, "axis 2");
  tu_assert_fails(lam_gather(s, 0, i1), LAM_ERR_SHAPE, "0-dim");

  tu_assert_fails(lam_take(x, fidx, 0), LAM_ERR_DTYPE, "lam_take: index is f32");
  tu_assert_fails(lam_take(x, i1, -3), LAM_ERR_INVALID_ARGUMENT, "axis -3");
  tu_assert_fails(lam_take(x8, i2, 0), LAM_ERR_SHAPE, "9 dims");
  lam_error_clear();
  tu_assert_fails(lam_take(NULL, i1, 0), LAM_ERR_NULL, "lam_take: x is NULL");
  tu_assert_fails(lam_index_select(x, 0, i2), LAM_ERR_SHAPE, "must be 1-D");
  tu_assert_fails(lam_index_select(x, 0, fidx), LAM_ERR_SHAPE, "must be 1-D");
  lam_tensor *f1 = lam_tensor_zeros(ctx, LAM_F32, 1, (int64_t[]){2});
  tu_assert_fails(lam_index_select(x, 0, f1), LAM_ERR_DTYPE, "lam_index_select: index is f32");
  lam_tensor_free(f1);

  tu_assert_fails(lam_scatter_add(x, 1, i2, xd), LAM_ERR_DTYPE, "src is f64 but x is f32");
  tu_assert_fails(lam_scatter_add(x, 1, fidx, src), LAM_ERR_DTYPE, "indices must be i32");
  tu_assert_fails(lam_scatter_add(x, 1, i2, x), LAM_ERR_SHAPE, "src [3,4] must have the shape of index [3,2]");
  tu_assert_fails(lam_scatter_add(x, 1, i1, src), LAM_ERR_SHAPE, "ranks must match");
  tu_assert_fails(lam_scatter_add(x, 1, ibig, ibig), LAM_ERR_DTYPE, "src is i32");
  lam_error_clear();
  tu_assert_fails(lam_scatter_add(x, 1, i2, NULL), LAM_ERR_NULL, "src is NULL");

  tu_assert_fails(lam_one_hot(i2, 0, LAM_F32), LAM_ERR_INVALID_ARGUMENT, "num_classes is 0");
  tu_assert_fails(lam_one_hot(i2, -3, LAM_F32), LAM_ERR_INVALID_ARGUMENT, "num_classes is -3");
  tu_assert_fails(lam_one_hot(fidx, 3, LAM_F32), LAM_ERR_DTYPE, "must be i32");
  tu_assert_fails(lam_one_hot(i8, 3, LAM_F32), LAM_ERR_SHAPE, "8 dims");
  tu_assert_fails(lam_one_hot(i2, 3, (lam_dtype)42), LAM_ERR_DTYPE, "unknown dtype");
  lam_tensor *oh = lam_one_hot(i7, 3, LAM_U8);
  cr_assert(oh, "%s", lam_last_error());
  lam_tensor_free(oh);

  tu_assert_fails(lam_tril(i1, 0), LAM_ERR_SHAPE, "lam_tril: x [5] needs at least 2 dims");
  tu_assert_fails(lam_triu(s, 0), LAM_ERR_SHAPE, "lam_triu");
  lam_error_clear();
  tu_assert_fails(lam_tril(NULL, 0), LAM_ERR_NULL, "lam_tril");
  lam_error_clear();
  tu_assert_fails(lam_tril_mask(NULL, 3, 3, 0), LAM_ERR_NULL, "ctx");
  tu_assert_fails(lam_triu_mask(ctx, 0, 3, 0), LAM_ERR_SHAPE, "lam_triu_mask");
  tu_assert_fails(lam_tril_mask(ctx, 3, -1, 0), LAM_ERR_SHAPE, "lam_tril_mask");
  tu_assert_no_leak(ctx, m2);

  lam_tensor *all[] = {x, xd, i2, i1, ibig, fidx, s, i7, x8, src, i8};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) lam_tensor_free(all[i]);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}
