/* test_matmul.c: lam_matmul / lam_matmul_t against a plain C reference
 * (double accumulation) on a table of shapes: odd sizes (1, 3, 7, 33, 1023
 * in each of M, N, K), every transpose combination, broadcast batches,
 * vector operands and views at offsets, in f32 and f64, through every path:
 * the context's default, each shipped CPU GEMM tuning set forced, and
 * CLBlast (a context without cpu_gemm_tuning). Also pooled buffers holding
 * NaN, gradient checks (transposes, batch broadcast, vectors, a @ a^T) and
 * bad input without leaks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "ops/gemm_internal.h"

typedef struct {
  int na;
  int64_t as[4];
  int nb;
  int64_t bs[4];
  int ta, tb;
  int oclgrind; /* 1: also run under Oclgrind although a dim is above 64 */
} mm_case;

static const mm_case cases[] = {
    {2, {1, 1}, 2, {1, 1}, 0, 0, 0},
    {2, {3, 7}, 2, {7, 33}, 0, 0, 0},
    {2, {33, 1023}, 2, {1023, 3}, 0, 0, 0}, /* K = 1023 */
    {2, {1023, 7}, 2, {7, 33}, 0, 0, 0},    /* M = 1023 */
    {2, {7, 33}, 2, {33, 1023}, 0, 0, 0},   /* N = 1023 */
    {2, {65, 100}, 2, {100, 70}, 0, 0, 0},
    {2, {64, 64}, 2, {64, 64}, 0, 0, 0},
    {2, {12, 40}, 2, {40, 96}, 0, 0, 0}, /* whole tiles of every set */
    {2, {7, 1}, 2, {1, 33}, 0, 0, 0},    /* K = 1 */
    /* transposes (A^T: a is stored [K, M]; B^T: b is stored [N, K]) */
    {2, {29, 37}, 2, {29, 45}, 1, 0, 0},
    {2, {37, 29}, 2, {45, 29}, 0, 1, 0},
    {2, {29, 37}, 2, {45, 29}, 1, 1, 0},
    {2, {1, 37}, 2, {1, 45}, 1, 0, 0},
    {2, {37, 1}, 2, {45, 1}, 0, 1, 0},
    {2, {1, 37}, 2, {45, 1}, 1, 1, 0},
    {2, {3, 1023}, 2, {5, 3}, 1, 1, 0},
    {2, {33, 7}, 2, {1023, 7}, 0, 1, 0},
    {2, {1023, 3}, 2, {1023, 7}, 1, 0, 0},
    /* CPU path: B rows 4 KiB apart (copied to longer rows), large products
     * with a transposed operand (transposed into gemm_nn) */
    {2, {130, 9}, 2, {9, 1024}, 0, 0, 0},
    {2, {9, 130}, 2, {9, 1024}, 1, 0, 0},
    {3, {2, 130, 5}, 3, {2, 5, 512}, 0, 0, 0},
    {4, {2, 1, 130, 5}, 3, {3, 5, 1024}, 0, 0, 0},
    {2, {128, 2}, 2, {2, 512}, 0, 0, 1},
    {2, {5, 1024}, 2, {5, 130}, 1, 0, 0},
    {2, {130, 9}, 2, {40, 9}, 0, 1, 0},
    {2, {9, 130}, 2, {40, 9}, 1, 1, 0},
    {3, {2, 130, 5}, 3, {2, 40, 5}, 0, 1, 0},
    {2, {130, 3}, 2, {512, 3}, 0, 1, 0},
    {3, {2, 5, 512}, 2, {5, 130}, 1, 0, 0},
    /* N == 1 and M == 1 as matrices */
    {2, {50, 60}, 2, {60, 1}, 0, 0, 0},
    {2, {60, 50}, 2, {60, 1}, 1, 0, 0},
    {2, {50, 60}, 2, {1, 60}, 0, 1, 0},
    {2, {60, 50}, 2, {1, 60}, 1, 1, 0},
    {2, {1, 60}, 2, {60, 50}, 0, 0, 0},
    {2, {60, 1}, 2, {50, 60}, 1, 1, 0},
    /* batches */
    {4, {2, 1, 5, 6}, 3, {3, 6, 4}, 0, 0, 0},
    {3, {4, 5, 6}, 2, {6, 7}, 0, 0, 0},
    {3, {4, 6, 5}, 2, {6, 7}, 1, 0, 0},
    {2, {5, 6}, 3, {4, 6, 7}, 0, 0, 0},
    {4, {2, 3, 5, 6}, 4, {2, 3, 6, 7}, 0, 0, 0},
    {4, {1, 3, 6, 5}, 4, {2, 1, 7, 6}, 1, 1, 0},
    {4, {2, 1, 5, 6}, 3, {3, 7, 6}, 0, 1, 0},
    {3, {3, 40, 35}, 3, {3, 35, 50}, 0, 0, 0},
    {3, {1, 4, 6}, 3, {3, 6, 1}, 0, 0, 0},
    /* vectors */
    {1, {6}, 1, {6}, 0, 0, 0},
    {1, {6}, 2, {6, 5}, 0, 0, 0},
    {2, {4, 6}, 1, {6}, 0, 0, 0},
    {3, {3, 4, 6}, 1, {6}, 0, 0, 0},
    {1, {6}, 3, {2, 6, 5}, 0, 0, 0},
    {1, {6}, 2, {5, 6}, 0, 1, 0},
    {2, {6, 4}, 1, {6}, 1, 0, 0},
    {3, {2, 6, 4}, 1, {6}, 1, 0, 0},
    {1, {6}, 2, {5, 6}, 1, 1, 0}, /* the flag of a vector is ignored */
    {1, {1023}, 1, {1023}, 0, 0, 0},
};
#define N_CASES ((int)(sizeof cases / sizeof *cases))

static int64_t prod(int n, const int64_t *s) {
  int64_t p = 1;
  for (int i = 0; i < n; i++) p *= s[i];
  return p;
}

/* numpy.matmul on host doubles, written independently of the library:
 * returns the product (malloc'd) with its shape, and in *abssum the sums of
 * |a||b| per element (the scale of the rounding error). */
static double *ref_matmul(const double *a, int na, const int64_t *as, const double *b, int nb,
                          const int64_t *bs, int ta, int tb, int *ond, int64_t *os,
                          double **abssum) {
  int64_t ar = na == 1 ? 1 : as[na - 2], ac = as[na - 1];
  int64_t br = nb == 1 ? bs[0] : bs[nb - 2], bc = nb == 1 ? 1 : bs[nb - 1];
  if (na == 1) ta = 0;
  if (nb == 1) tb = 0;
  int64_t M = ta ? ac : ar, K = ta ? ar : ac, N = tb ? br : bc;
  int nba = na > 2 ? na - 2 : 0, nbb = nb > 2 ? nb - 2 : 0, nbd = nba > nbb ? nba : nbb;
  int64_t bshape[8], da[8], db[8];
  for (int d = 0; d < nbd; d++) {
    int ia = d - (nbd - nba), ib = d - (nbd - nbb);
    da[d] = ia >= 0 ? as[ia] : 1;
    db[d] = ib >= 0 ? bs[ib] : 1;
    bshape[d] = da[d] > db[d] ? da[d] : db[d];
  }
  *ond = 0;
  for (int d = 0; d < nbd; d++) os[(*ond)++] = bshape[d];
  if (na > 1) os[(*ond)++] = M;
  if (nb > 1) os[(*ond)++] = N;
  int64_t nbatch = prod(nbd, bshape);
  double *c = malloc(sizeof(double) * (size_t)(nbatch * M * N));
  double *s = malloc(sizeof(double) * (size_t)(nbatch * M * N));
  for (int64_t bi = 0; bi < nbatch; bi++) {
    /* batch multi-index -> each operand's batch number (index 0 where it has 1) */
    int64_t rem = bi, ia = 0, ib = 0, ma = 1, mb = 1;
    for (int d = nbd - 1; d >= 0; d--) {
      int64_t idx = rem % bshape[d];
      rem /= bshape[d];
      ia += (da[d] == 1 ? 0 : idx) * ma;
      ib += (db[d] == 1 ? 0 : idx) * mb;
      ma *= da[d];
      mb *= db[d];
    }
    const double *A = a + ia * M * K, *B = b + ib * K * N;
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) {
        double acc = 0, abs_acc = 0;
        for (int64_t k = 0; k < K; k++) {
          double x = ta ? A[k * M + i] : A[i * K + k];
          double y = tb ? B[j * K + k] : B[k * N + j];
          acc += x * y;
          abs_acc += fabs(x * y);
        }
        c[(bi * M + i) * N + j] = acc;
        s[(bi * M + i) * N + j] = abs_acc;
      }
  }
  *abssum = s;
  return c;
}

/* A tensor of `shape` holding `x` (as dtype). With `view`, it is rows
 * [2, 2 + shape[0]) of a larger tensor, so its offset is not 0. */
static lam_tensor *make(lam_ctx *ctx, lam_dtype dt, int nd, const int64_t *shape, const double *x,
                        int view) {
  int64_t n = prod(nd, shape), row = n / shape[0];
  int64_t big[4];
  memcpy(big, shape, sizeof(int64_t) * (size_t)nd);
  int64_t pad = view ? 5 : 0;
  big[0] += pad;
  int64_t bn = n + pad * row;
  void *h = malloc((size_t)bn * 8);
  for (int64_t i = 0; i < bn; i++) {
    double v = (i >= 2 * row && i < 2 * row + n) ? x[i - 2 * row] : 1e30; /* poison outside */
    if (!view) v = x[i];
    if (dt == LAM_F32) ((float *)h)[i] = (float)v;
    else ((double *)h)[i] = v;
  }
  lam_tensor *t = lam_tensor_from_host(ctx, dt, nd, big, h);
  free(h);
  cr_assert(t, "%s", lam_last_error());
  if (!view) return t;
  lam_tensor *v = lam_tensor_slice0(t, 2, 2 + shape[0]);
  lam_tensor_free(t);
  cr_assert(v, "%s", lam_last_error());
  return v;
}

/* Runs one case (set < 0: the context's own path) and compares. */
static void run_case(lam_ctx *ctx, const mm_case *c, lam_dtype dt, int set, int view, tu_rng *r,
                     const char *path) {
  int64_t na = prod(c->na, c->as), nb = prod(c->nb, c->bs);
  double *a = malloc(sizeof(double) * (size_t)na), *b = malloc(sizeof(double) * (size_t)nb);
  tu_fill_uniform_f64(r, a, na, -1, 1);
  tu_fill_uniform_f64(r, b, nb, -1, 1);
  if (dt == LAM_F32) { /* the reference sees the values the device sees */
    for (int64_t i = 0; i < na; i++) a[i] = (float)a[i];
    for (int64_t i = 0; i < nb; i++) b[i] = (float)b[i];
  }
  lam_tensor *ta = make(ctx, dt, c->na, c->as, a, view), *tb = make(ctx, dt, c->nb, c->bs, b, view);
  lam_tensor *y = set < 0 ? lam_matmul_t(ta, tb, c->ta, c->tb)
                          : lam__matmul_with_set(ta, tb, c->ta, c->tb, set);
  char what[200];
  snprintf(what, sizeof what, "%s %s case %d (a %dd [%lld,...], b %dd, ta %d, tb %d, view %d)", path,
           lam_dtype_name(dt), (int)(c - cases), c->na, (long long)c->as[0], c->nb, c->ta, c->tb,
           view);
  cr_assert(y, "%s: %s", what, lam_last_error());
  int ond;
  int64_t os[8];
  double *abssum;
  double *want = ref_matmul(a, c->na, c->as, b, c->nb, c->bs, c->ta, c->tb, &ond, os, &abssum);
  cr_assert_eq(lam_tensor_ndim(y), ond, "%s: ndim %d, want %d", what, lam_tensor_ndim(y), ond);
  for (int d = 0; d < ond; d++)
    cr_assert_eq(lam_tensor_shape(y)[d], os[d], "%s: dim %d", what, d);
  int64_t n = lam_tensor_numel(y);
  double *got = malloc(sizeof(double) * (size_t)n);
  if (dt == LAM_F32) {
    float *g = tu_read_f32(y);
    for (int64_t i = 0; i < n; i++) got[i] = g[i];
    free(g);
  } else {
    double *g = tu_read_f64(y);
    memcpy(got, g, sizeof(double) * (size_t)n);
    free(g);
  }
  /* Rounding error grows with sum |a||b|; a wrong or missing term is about
   * sum/K, far above these bounds for every K in the table. */
  const double rel = dt == LAM_F32 ? 2e-5 : 1e-12;
  for (int64_t i = 0; i < n; i++)
    cr_assert(fabs(got[i] - want[i]) <= rel * abssum[i] + 1e-30, "%s: element %lld: got %.17g, want %.17g",
              what, (long long)i, got[i], want[i]);
  if (set < 0 && !c->ta && !c->tb) { /* lam_matmul is lam_matmul_t without flags */
    lam_tensor *y2 = lam_matmul(ta, tb);
    cr_assert(y2, "%s: %s", what, lam_last_error());
    cr_assert_eq(lam_tensor_numel(y2), n);
    lam_tensor_free(y2);
  }
  free(got);
  free(want);
  free(abssum);
  free(a);
  free(b);
  lam_tensor_free(y);
  lam_tensor_free(ta);
  lam_tensor_free(tb);
}

/* Under Oclgrind only the small cases run. */
static int case_is_small(const mm_case *c) {
  if (c->oclgrind) return 1;
  for (int d = 0; d < c->na; d++)
    if (c->as[d] > 64) return 0;
  for (int d = 0; d < c->nb; d++)
    if (c->bs[d] > 64) return 0;
  return 1;
}

static void run_all(lam_ctx *ctx, lam_dtype dt, int set, int view, const char *path) {
  tu_rng r = tu_rng_make(1000 + (uint64_t)dt * 10 + (uint64_t)(set + 1));
  tu_mark m = tu_mark_now(ctx);
  for (int i = 0; i < N_CASES; i++)
    if (!tu_small() || case_is_small(&cases[i])) run_case(ctx, &cases[i], dt, set, view, &r, path);
  tu_assert_no_leak(ctx, m);
}

static lam_ctx *clblast_ctx(void) {
  lam_ctx_opts o = lam_ctx_defaults();
  o.cpu_gemm_tuning = false;
  lam_ctx *ctx = NULL;
  cr_assert_eq(lam_ctx_create(&o, &ctx), LAM_OK, "%s", lam_last_error());
  return ctx;
}

Test(matmul, default_path_f32) {
  lam_ctx *ctx = tu_ctx();
  run_all(ctx, LAM_F32, -1, 0, "default");
  lam_ctx_free(ctx);
}

Test(matmul, default_path_f64) {
  lam_ctx *ctx = tu_ctx();
  run_all(ctx, LAM_F64, -1, 0, "default");
  lam_ctx_free(ctx);
}

/* Inputs that are views at an offset (rows of a larger, poisoned tensor). */
Test(matmul, views_at_offsets) {
  lam_ctx *ctx = tu_ctx();
  run_all(ctx, LAM_F32, -1, 1, "default");
  lam_ctx_free(ctx);
  ctx = clblast_ctx();
  run_all(ctx, LAM_F64, -1, 1, "clblast");
  lam_ctx_free(ctx);
}

/* Every shipped CPU GEMM tuning set, whatever the device would pick. */
Test(matmul, every_tuning_set) {
  lam_ctx *ctx = tu_ctx();
  cr_assert_geq(lam__gemm_cpu_set_count(LAM_F32), 1);
  cr_assert_geq(lam__gemm_cpu_set_count(LAM_F64), 1);
  for (int s = 0; s < lam__gemm_cpu_set_count(LAM_F32); s++) run_all(ctx, LAM_F32, s, 0, "set");
  for (int s = 0; s < lam__gemm_cpu_set_count(LAM_F64); s++) run_all(ctx, LAM_F64, s, s == 1, "set");
  lam_ctx_free(ctx);
}

Test(matmul, clblast_f32) {
  lam_ctx *ctx = clblast_ctx();
  run_all(ctx, LAM_F32, -1, 0, "clblast");
  lam_ctx_free(ctx);
}

Test(matmul, clblast_f64) {
  lam_ctx *ctx = clblast_ctx();
  run_all(ctx, LAM_F64, -1, 0, "clblast");
  lam_ctx_free(ctx);
}

/* Pooled buffers are not zeroed: an output landing on NaN garbage must not
 * read it (beta = 0 in CLBlast, plain stores in lamina's kernels). */
Test(matmul, output_ignores_pool_garbage) {
  for (int path = 0; path < 2; path++) {
    lam_ctx *ctx = path ? clblast_ctx() : tu_ctx();
    const int64_t as[3] = {2, 9, 5}, bs[2] = {5, 11}, os[3] = {2, 9, 11};
    for (int rep = 0; rep < 2; rep++) {
      lam_tensor *junk = lam_tensor_full(ctx, LAM_F32, 3, os, NAN);
      lam_ctx_finish(ctx);
      lam_tensor_free(junk); /* back to the pool, full of NaN */
      lam_tensor *a = lam_tensor_full(ctx, LAM_F32, 3, as, 1.0);
      lam_tensor *b = lam_tensor_full(ctx, LAM_F32, 2, bs, 2.0);
      lam_tensor *y = rep ? lam_matmul_t(b, a, 1, 1) : lam_matmul(a, b);
      float *v = tu_read_f32(y);
      for (int64_t i = 0; i < lam_tensor_numel(y); i++)
        cr_assert_eq(v[i], 10.0f, "path %d rep %d element %lld: %g", path, rep, (long long)i, v[i]);
      free(v);
      lam_tensor_free(y);
      lam_tensor_free(a);
      lam_tensor_free(b);
    }
    lam_ctx_free(ctx);
  }
}

/* ---- gradients ------------------------------------------------------------ */

typedef struct {
  int ta, tb, same;
} mm_params;

static lam_tensor *mm_fn(lam_tensor *const *xs, int n, void *user) {
  const mm_params *p = user;
  (void)n;
  return lam_matmul_t(xs[0], p->same ? xs[0] : xs[1], p->ta, p->tb);
}

static void grad_case(lam_ctx *ctx, int na, const int64_t *as, int nb, const int64_t *bs, int ta,
                      int tb, const char *what) {
  tu_rng r = tu_rng_make(77);
  lam_tensor *xs[2] = {tu_rand_f64(ctx, &r, na, as, -1, 1), tu_rand_f64(ctx, &r, nb, bs, -1, 1)};
  mm_params p = {ta, tb, 0};
  tu_mark m = tu_mark_now(ctx);
  tu_gradcheck(ctx, mm_fn, &p, xs, 2, 1e-6, 1e-6, 1, 1e-3, what);
  tu_assert_no_leak(ctx, m);
  lam_tensor_free(xs[0]);
  lam_tensor_free(xs[1]);
}

Test(matmul, gradcheck_transposes) {
  lam_ctx *ctx = tu_ctx();
  grad_case(ctx, 2, (int64_t[]){3, 4}, 2, (int64_t[]){4, 5}, 0, 0, "a @ b");
  grad_case(ctx, 2, (int64_t[]){4, 3}, 2, (int64_t[]){4, 5}, 1, 0, "a^T @ b");
  grad_case(ctx, 2, (int64_t[]){3, 4}, 2, (int64_t[]){5, 4}, 0, 1, "a @ b^T");
  grad_case(ctx, 2, (int64_t[]){4, 3}, 2, (int64_t[]){5, 4}, 1, 1, "a^T @ b^T");
  lam_ctx_free(ctx);
}

Test(matmul, gradcheck_batches) {
  lam_ctx *ctx = tu_ctx();
  grad_case(ctx, 4, (int64_t[]){2, 1, 3, 4}, 3, (int64_t[]){3, 4, 2}, 0, 0, "[2,1,3,4] @ [3,4,2]");
  grad_case(ctx, 4, (int64_t[]){2, 1, 4, 3}, 3, (int64_t[]){3, 2, 4}, 1, 1, "batched a^T @ b^T");
  grad_case(ctx, 3, (int64_t[]){2, 3, 4}, 2, (int64_t[]){4, 5}, 0, 0, "[2,3,4] @ [4,5] (folded)");
  grad_case(ctx, 3, (int64_t[]){2, 3, 4}, 2, (int64_t[]){5, 4}, 0, 1, "[2,3,4] @ [5,4]^T (folded)");
  grad_case(ctx, 2, (int64_t[]){3, 4}, 3, (int64_t[]){2, 4, 5}, 0, 0, "[3,4] @ [2,4,5]");
  lam_ctx_free(ctx);
}

Test(matmul, gradcheck_vectors) {
  lam_ctx *ctx = tu_ctx();
  grad_case(ctx, 1, (int64_t[]){4}, 1, (int64_t[]){4}, 0, 0, "[4] @ [4]");
  grad_case(ctx, 1, (int64_t[]){4}, 2, (int64_t[]){4, 3}, 0, 0, "[4] @ [4,3]");
  grad_case(ctx, 2, (int64_t[]){3, 4}, 1, (int64_t[]){4}, 0, 0, "[3,4] @ [4]");
  grad_case(ctx, 2, (int64_t[]){4, 3}, 1, (int64_t[]){4}, 1, 0, "[4,3]^T @ [4]");
  grad_case(ctx, 3, (int64_t[]){2, 3, 4}, 1, (int64_t[]){4}, 0, 0, "[2,3,4] @ [4]");
  grad_case(ctx, 1, (int64_t[]){4}, 3, (int64_t[]){2, 3, 4}, 0, 1, "[4] @ [2,3,4]^T");
  lam_ctx_free(ctx);
}

Test(matmul, gradcheck_same_operand) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(5);
  lam_tensor *x = tu_rand_f64(ctx, &r, 2, (int64_t[]){3, 4}, -1, 1);
  mm_params p = {0, 1, 1};
  tu_mark m = tu_mark_now(ctx);
  tu_gradcheck(ctx, mm_fn, &p, &x, 1, 1e-6, 1e-6, 1, 1e-3, "x @ x^T");
  tu_assert_no_leak(ctx, m);
  lam_tensor_free(x);
  lam_ctx_free(ctx);
}

/* ---- bad input ------------------------------------------------------------- */

Test(matmul, bad_input) {
  lam_ctx *ctx = tu_ctx();
  lam_ctx *other = tu_ctx();
  lam_tensor *a45 = lam_tensor_zeros(ctx, LAM_F32, 2, (int64_t[]){4, 5});
  lam_tensor *b63 = lam_tensor_zeros(ctx, LAM_F32, 2, (int64_t[]){6, 3});
  lam_tensor *b53 = lam_tensor_zeros(ctx, LAM_F32, 2, (int64_t[]){5, 3});
  lam_tensor *d53 = lam_tensor_zeros(ctx, LAM_F64, 2, (int64_t[]){5, 3});
  lam_tensor *i53 = lam_tensor_zeros(ctx, LAM_I32, 2, (int64_t[]){5, 3});
  lam_tensor *s = lam_tensor_scalar(ctx, LAM_F32, 1.0);
  lam_tensor *o53 = lam_tensor_zeros(other, LAM_F32, 2, (int64_t[]){5, 3});
  lam_tensor *x245 = lam_tensor_zeros(ctx, LAM_F32, 3, (int64_t[]){2, 4, 5});
  lam_tensor *x353 = lam_tensor_zeros(ctx, LAM_F32, 3, (int64_t[]){3, 5, 3});
  tu_mark m = tu_mark_now(ctx);
  tu_assert_fails(lam_matmul(a45, b63), LAM_ERR_SHAPE,
                  "lam_matmul: inner dims differ: a is [4,5], b is [6,3]");
  tu_assert_fails(lam_matmul_t(a45, b53, 1, 0), LAM_ERR_SHAPE,
                  "lam_matmul_t: inner dims differ: a is [4,5] (transposed), b is [5,3]");
  tu_assert_fails(lam_matmul_t(a45, b53, 0, 1), LAM_ERR_SHAPE, "b is [5,3] (transposed)");
  tu_assert_fails(lam_matmul(a45, i53), LAM_ERR_DTYPE, "b has dtype i32");
  tu_assert_fails(lam_matmul(i53, a45), LAM_ERR_DTYPE, "a has dtype i32");
  tu_assert_fails(lam_matmul(a45, d53), LAM_ERR_DTYPE, "dtypes differ: a is f32, b is f64");
  lam_error_clear(); /* a NULL input keeps an earlier failure's message */
  tu_assert_fails(lam_matmul(NULL, b53), LAM_ERR_NULL, "lam_matmul: a is NULL");
  lam_error_clear();
  tu_assert_fails(lam_matmul_t(a45, NULL, 0, 0), LAM_ERR_NULL, "lam_matmul_t: b is NULL");
  tu_assert_fails(lam_matmul(s, b53), LAM_ERR_SHAPE, "a is 0-dim");
  tu_assert_fails(lam_matmul(a45, o53), LAM_ERR_INVALID_ARGUMENT, "different contexts");
  tu_assert_fails(lam_matmul(x245, x353), LAM_ERR_SHAPE,
                  "lam_matmul: batch dims do not broadcast: a is [2,4,5], b is [3,5,3]");
  tu_assert_fails(lam__matmul_with_set(a45, b53, 0, 0, 99), LAM_ERR_INVALID_ARGUMENT, "set 99");
  /* A NULL from a failed op up the chain keeps the first message. */
  lam_tensor *bad = lam_matmul(a45, b63);
  tu_assert_fails(lam_matmul(bad, b53), LAM_ERR_SHAPE, "inner dims differ: a is [4,5], b is [6,3]");
  tu_assert_no_leak(ctx, m);
  lam_tensor *all[] = {a45, b63, b53, d53, i53, s, o53, x245, x353};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) lam_tensor_free(all[i]);
  lam_ctx_free(other);
  lam_ctx_free(ctx);
}
