/* test_reduce.c (src/ops/reduce.c, reduce_core.c): sum, mean, max, min, prod, var, logsumexp, argmax and
 * argmin against a plain C reference (double) on random shapes of rank 0-5
 * and many axes sets (first, last, middle, non-adjacent, all, negative,
 * unordered), keepdims on/off, f32/f64 and i32 where accepted; the chunked
 * multi-pass paths (CPU and GPU layouts, one full reduction above 2^22
 * elements); NaN propagation, stability at +-1e4, exact zero variance of
 * constants, first-index ties; gradient checks, the tie-splitting and
 * zero-product gradient rules exactly; PyTorch golden values; bad input. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autodiff/tape.h" /* lam__vjp */
#include "data/reduce_golden.h"
#include "testutil.h"

typedef enum { R_SUM, R_MEAN, R_MAX, R_MIN, R_PROD, R_VAR, R_LSE, R_NOPS } rop;
static const char *const rop_name[] = {"sum", "mean", "max", "min", "prod", "var", "logsumexp"};

/* ---- helpers ------------------------------------------------------------ */

static lam_tensor *from_f64(lam_ctx *ctx, lam_dtype dt, int ndim, const int64_t *shape,
                            const double *v) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  void *buf = malloc((size_t)(n ? n : 1) * 8);
  for (int64_t i = 0; i < n; i++) {
    if (dt == LAM_F32) ((float *)buf)[i] = (float)v[i];
    else if (dt == LAM_I32) ((int32_t *)buf)[i] = (int32_t)v[i];
    else ((double *)buf)[i] = v[i];
  }
  lam_tensor *t = lam_tensor_from_host(ctx, dt, ndim, shape, buf);
  free(buf);
  cr_assert(t, "from_f64: %s", lam_last_error());
  return t;
}

/* Reads any f32/f64/i32 tensor as doubles (malloc'd). */
static double *to_f64(const lam_tensor *t) {
  cr_assert(t, "to_f64: NULL tensor: %s", lam_last_error());
  int64_t n = lam_tensor_numel(t);
  void *buf = malloc(lam_tensor_nbytes(t));
  cr_assert_eq(lam_tensor_to_host(t, buf, lam_tensor_nbytes(t)), LAM_OK, "%s", lam_last_error());
  double *v = malloc((size_t)n * sizeof *v);
  for (int64_t i = 0; i < n; i++) {
    lam_dtype dt = lam_tensor_dtype(t);
    v[i] = dt == LAM_F32 ? ((float *)buf)[i] : dt == LAM_I32 ? ((int32_t *)buf)[i] : ((double *)buf)[i];
  }
  free(buf);
  return v;
}

/* The values an f32/i32 tensor really holds, so references see the same input. */
static void round_to(lam_dtype dt, double *v, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    if (dt == LAM_F32) v[i] = (float)v[i];
    if (dt == LAM_I32) v[i] = (double)(int32_t)v[i];
  }
}

static lam_tensor *call_op(rop op, lam_tensor *x, int naxes, const int *axes, int keep,
                           double corr) {
  switch (op) {
    case R_SUM: return lam_sum(x, naxes, axes, keep);
    case R_MEAN: return lam_mean(x, naxes, axes, keep);
    case R_MAX: return lam_max(x, naxes, axes, keep);
    case R_MIN: return lam_min(x, naxes, axes, keep);
    case R_PROD: return lam_prod(x, naxes, axes, keep);
    case R_VAR: return lam_var(x, naxes, axes, corr, keep);
    default: return lam_logsumexp(x, naxes, axes, keep);
  }
}

/* Output index (row-major over kept axes) of every input element. */
static int64_t *out_index(int ndim, const int64_t *shape, unsigned mask, int64_t *nout) {
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) n *= shape[d];
  int64_t *oi = malloc((size_t)n * sizeof *oi);
  *nout = 1;
  for (int d = 0; d < ndim; d++)
    if (!(mask >> d & 1)) *nout *= shape[d];
  for (int64_t i = 0; i < n; i++) {
    int64_t rem = i, o = 0, mul = 1;
    for (int d = ndim - 1; d >= 0; d--) {
      int64_t idx = rem % shape[d];
      rem /= shape[d];
      if (!(mask >> d & 1)) {
        o += idx * mul;
        mul *= shape[d];
      }
    }
    oi[i] = o;
  }
  return oi;
}

/* Plain reference in double; returns a malloc'd array of *nout values. */
static double *ref_reduce(rop op, const double *x, int ndim, const int64_t *shape, unsigned mask,
                          double corr, int64_t *nout) {
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) n *= shape[d];
  int64_t *oi = out_index(ndim, shape, mask, nout);
  int64_t no = *nout, nred = n / no;
  double *acc = malloc((size_t)no * sizeof *acc), *aux = malloc((size_t)no * sizeof *aux);
  for (int64_t o = 0; o < no; o++) {
    acc[o] = op == R_PROD ? 1 : op == R_MAX || op == R_LSE ? -INFINITY : op == R_MIN ? INFINITY : 0;
    aux[o] = 0;
  }
  for (int64_t i = 0; i < n; i++) {
    double v = x[i], *a = &acc[oi[i]];
    switch (op) {
      case R_PROD: *a *= v; break;
      case R_MAX: case R_LSE: *a = (isnan(v) || v > *a || isnan(*a)) ? (isnan(*a) ? *a : v) : *a; break;
      case R_MIN: *a = (isnan(v) || v < *a || isnan(*a)) ? (isnan(*a) ? *a : v) : *a; break;
      default: *a += v; break;
    }
  }
  if (op == R_MEAN)
    for (int64_t o = 0; o < no; o++) acc[o] /= (double)nred;
  if (op == R_VAR) {
    for (int64_t o = 0; o < no; o++) aux[o] = acc[o] / (double)nred, acc[o] = 0;
    for (int64_t i = 0; i < n; i++) acc[oi[i]] += (x[i] - aux[oi[i]]) * (x[i] - aux[oi[i]]);
    double div = fmax(0.0, (double)nred - corr);
    for (int64_t o = 0; o < no; o++) acc[o] /= div;
  }
  if (op == R_LSE) {
    for (int64_t o = 0; o < no; o++) aux[o] = acc[o], acc[o] = 0;
    for (int64_t i = 0; i < n; i++) acc[oi[i]] += exp(x[i] - aux[oi[i]]);
    for (int64_t o = 0; o < no; o++) acc[o] = aux[o] + log(acc[o]);
  }
  free(aux);
  free(oi);
  return acc;
}

/* Tolerance for one op/dtype given the reduction length. */
static void tol_for(rop op, lam_dtype dt, int64_t nred, double *atol, double *rtol) {
  double e = dt == LAM_F64 ? 1e-15 : dt == LAM_F32 ? 1.2e-7 : 0;
  switch (op) {
    case R_SUM: *atol = e * 4 * (double)nred + e * 10; *rtol = e * 10; break;
    case R_MEAN: *atol = e * 20; *rtol = e * 10; break;
    case R_MAX: case R_MIN: *atol = 0; *rtol = 0; break;
    case R_PROD: *atol = 0; *rtol = e * 8 * (double)nred + e * 10; break;
    default: *atol = e * 40; *rtol = e * 40; break;
  }
}

/* Runs op on x (values v, shape) over axes and compares with the reference. */
static void check_case(lam_ctx *ctx, rop op, lam_dtype dt, int ndim, const int64_t *shape,
                       const double *v, int naxes, const int *axes, int keep, double corr) {
  char what[256];
  int len = snprintf(what, sizeof what, "%s %s shape [", rop_name[op], lam_dtype_name(dt));
  for (int d = 0; d < ndim; d++) len += snprintf(what + len, sizeof what - (size_t)len, "%lld%s", (long long)shape[d], d + 1 < ndim ? "," : "");
  len += snprintf(what + len, sizeof what - (size_t)len, "] axes (");
  for (int i = 0; i < naxes; i++) len += snprintf(what + len, sizeof what - (size_t)len, "%d%s", axes[i], i + 1 < naxes ? "," : "");
  snprintf(what + len, sizeof what - (size_t)len, ") keepdims %d corr %g", keep, corr);

  unsigned mask = 0;
  if (naxes == 0) mask = (1u << ndim) - 1u;
  for (int i = 0; i < naxes; i++) mask |= 1u << ((axes[i] + ndim) % ndim);
  lam_tensor *x = from_f64(ctx, dt, ndim, shape, v);
  lam_tensor *y = call_op(op, x, naxes, axes, keep, corr);
  cr_assert(y, "%s: %s", what, lam_last_error());
  cr_assert_eq(lam_tensor_dtype(y), dt, "%s: dtype", what);
  /* expected shape */
  int ond = 0;
  int64_t osh[8];
  for (int d = 0; d < ndim; d++) {
    if (mask >> d & 1) {
      if (keep) osh[ond++] = 1;
    } else {
      osh[ond++] = shape[d];
    }
  }
  cr_assert_eq(lam_tensor_ndim(y), ond, "%s: ndim %d, want %d", what, lam_tensor_ndim(y), ond);
  for (int d = 0; d < ond; d++)
    cr_assert_eq(lam_tensor_dim(y, d), osh[d], "%s: dim %d", what, d);
  int64_t nout;
  double *want = ref_reduce(op, v, ndim, shape, mask, corr, &nout);
  cr_assert_eq(lam_tensor_numel(y), nout, "%s: numel", what);
  double *got = to_f64(y);
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) n *= shape[d];
  double atol, rtol;
  tol_for(op, dt, n / nout, &atol, &rtol);
  tu_assert_close_f64(got, want, nout, atol, rtol, what);
  free(got);
  free(want);
  lam_tensor_free(y);
  lam_tensor_free(x);
}

/* Values for op: products stay near 1 so they neither overflow nor vanish. */
static double *rand_values(tu_rng *r, rop op, lam_dtype dt, int64_t n) {
  double *v = malloc((size_t)(n ? n : 1) * sizeof *v);
  for (int64_t i = 0; i < n; i++) {
    if (dt == LAM_I32) v[i] = (double)tu_randint(r, -1000, 1000);
    else if (op == R_PROD) v[i] = tu_uniform(r, 0.9, 1.1) * (tu_next(r) & 1 ? 1 : -1);
    else v[i] = tu_uniform(r, -1, 1);
  }
  round_to(dt, v, n);
  return v;
}

static int ops_for(lam_dtype dt, rop op) {
  return dt != LAM_I32 || op == R_SUM || op == R_MAX || op == R_MIN;
}

/* ---- forward against the reference -------------------------------------- */

/* Every op, dtype and keepdims on every axes subset of random small shapes
 * of rank 1-5 (random subsets at rank 4-5), axes given in random order and
 * sign, plus naxes 0 (all axes) and a 0-dim tensor. */
Test(reduce, forward_axes_sets) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  tu_rng r = tu_rng_make(11);
  static const int64_t dims[] = {1, 2, 3, 5, 7, 33};
  const lam_dtype dts[] = {LAM_F32, LAM_F64, LAM_I32};
  for (int rank = 1; rank <= 5; rank++) {
    int64_t shape[5], n;
    do {
      n = 1;
      for (int d = 0; d < rank; d++) n *= shape[d] = dims[tu_randint(&r, 0, 6)];
    } while (n > 20000);
    int nsub = 1 << rank;
    for (int s = 0; s < nsub; s++) {
      unsigned sub = rank <= 3 ? (unsigned)s : (unsigned)tu_randint(&r, 0, nsub);
      if (rank > 3 && s >= 10) break;
      int axes[5], na = 0;
      for (int d = 0; d < rank; d++)
        if (sub >> d & 1) axes[na++] = tu_next(&r) & 1 ? d - rank : d;
      for (int i = na - 1; i > 0; i--) { /* shuffle: order must not matter */
        int j = (int)tu_randint(&r, 0, i + 1), t = axes[i];
        axes[i] = axes[j];
        axes[j] = t;
      }
      for (size_t di = 0; di < 3; di++)
        for (int op = 0; op < R_NOPS; op++) {
          if (!ops_for(dts[di], (rop)op)) continue;
          double *v = rand_values(&r, (rop)op, dts[di], n);
          int keep = (int)(tu_next(&r) & 1);
          check_case(ctx, (rop)op, dts[di], rank, shape, v, na, axes, keep, op == R_VAR ? (double)(s & 1) : 0);
          free(v);
        }
    }
  }
  /* 0-dim input: every reduction is the identity (var: 0). */
  for (int op = 0; op < R_NOPS; op++) {
    double v = 0.75;
    check_case(ctx, (rop)op, LAM_F64, 0, NULL, &v, 0, NULL, op & 1, 0);
  }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* Odd sizes 1, 3, 7, 33, 1023 and long reductions that take the chunked
 * multi-pass path: [N] all, [rows, D] last axis, [D, cols] first axis,
 * non-adjacent (0, 2) with a long inner run. */
static void odd_and_chunked(lam_ctx *ctx, uint64_t seed) {
  tu_rng r = tu_rng_make(seed);
  const int small = tu_small();
  struct {
    int ndim;
    int64_t shape[3];
    int naxes;
    int axes[2];
  } cases[] = {
      {1, {1}, 0, {0}},          {1, {3}, 1, {0}},           {1, {7}, 1, {-1}},
      {1, {33}, 0, {0}},         {1, {1023}, 1, {0}},        {2, {33, 1023}, 1, {1}},
      {2, {1023, 7}, 1, {0}},    {3, {7, 33, 3}, 2, {0, 2}}, {1, {70001}, 0, {0}},
      {2, {3, 50001}, 1, {-1}},  {2, {40001, 3}, 1, {0}},    {3, {5, 3, 20011}, 2, {0, 2}},
      {3, {4099, 2, 7}, 2, {0, 2}}, {2, {129, 4097}, 1, {1}},
      /* innermost axis kept and >= 16 wide (CPU: reduce_cols, with tails) */
      {2, {1023, 33}, 1, {0}},   {2, {50001, 17}, 1, {-2}},  {3, {3, 4099, 40}, 2, {0, 1}},
      {3, {9, 2000, 16}, 1, {1}}, {3, {2, 3, 64}, 1, {1}},
  };
  const lam_dtype dts[] = {LAM_F32, LAM_F64, LAM_I32};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    int64_t n = 1, shape[3];
    for (int d = 0; d < cases[c].ndim; d++) {
      shape[d] = cases[c].shape[d];
      if (small && shape[d] > 1000) shape[d] = shape[d] / 40 + 1;
      n *= shape[d];
    }
    for (size_t di = 0; di < 3; di++)
      for (int op = 0; op < R_NOPS; op++) {
        if (!ops_for(dts[di], (rop)op)) continue;
        if (op == R_PROD && n > 5000) continue; /* products of many values vanish */
        double *v = rand_values(&r, (rop)op, dts[di], n);
        check_case(ctx, (rop)op, dts[di], cases[c].ndim, shape, v, cases[c].naxes, cases[c].axes,
                   (int)(c & 1), 1);
        free(v);
      }
  }
}

Test(reduce, odd_sizes_and_chunked_cpu_layout) {
  setenv("LAMINA_REDUCE_LAYOUT", "cpu", 1);
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  odd_and_chunked(ctx, 21);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* The GPU work split (interleaved chunks, thousands of work-items, several
 * passes) run on whatever device this is, so it is checked everywhere. */
Test(reduce, odd_sizes_and_chunked_gpu_layout) {
  setenv("LAMINA_REDUCE_LAYOUT", "gpu", 1);
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  odd_and_chunked(ctx, 22);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* One full reduction above 2^22 elements (sum, mean, max, argmax, var). */
Test(reduce, full_reduction_large) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  tu_rng r = tu_rng_make(5);
  int64_t n = tu_small() ? 70003 : (1 << 22) + 4099;
  float *v = malloc((size_t)n * sizeof *v);
  double ref_sum = 0, ref_max = -INFINITY;
  int64_t ref_arg = 0;
  for (int64_t i = 0; i < n; i++) {
    v[i] = (float)tu_uniform(&r, -1, 1);
    ref_sum += v[i];
    if (v[i] > ref_max) ref_max = v[i], ref_arg = i;
  }
  double ref_var = 0;
  for (int64_t i = 0; i < n; i++) ref_var += (v[i] - ref_sum / n) * (v[i] - ref_sum / n);
  ref_var /= (double)(n - 1);
  lam_tensor *x = lam_tensor_from_host(ctx, LAM_F32, 1, &n, v);
  lam_tensor *s = lam_sum(x, 0, NULL, 0), *mu = lam_mean(x, 0, NULL, 0);
  lam_tensor *mx = lam_max(x, 0, NULL, 0), *am = lam_argmax(x, 0, 0), *va = lam_var(x, 0, NULL, 1, 0);
  double got;
  cr_assert_eq(lam_tensor_item(s, &got), LAM_OK, "%s", lam_last_error());
  cr_assert(fabs(got - ref_sum) < 1e-6 * (double)n, "sum %.9g vs %.9g", got, ref_sum);
  lam_tensor_item(mu, &got);
  cr_assert(fabs(got - ref_sum / (double)n) < 1e-6, "mean %.9g", got);
  lam_tensor_item(mx, &got);
  cr_assert_eq(got, ref_max);
  lam_tensor_item(am, &got);
  cr_assert_eq((int64_t)got, ref_arg);
  lam_tensor_item(va, &got);
  cr_assert(fabs(got - ref_var) < 1e-5 * ref_var, "var %.9g vs %.9g", got, ref_var);
  lam_tensor *all[] = {x, s, mu, mx, am, va};
  for (int i = 0; i < 6; i++) lam_tensor_free(all[i]);
  free(v);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- special values ----------------------------------------------------- */

Test(reduce, nan_propagates_in_max_min) {
  lam_ctx *ctx = tu_ctx();
  double v[12] = {1, NAN, 3, 4, -2, 5, 6, 7, 8, 9, 10, NAN};
  for (int dt = 0; dt < 2; dt++) {
    lam_dtype d = dt ? LAM_F64 : LAM_F32;
    lam_tensor *x = from_f64(ctx, d, 2, (int64_t[]){3, 4}, v);
    lam_tensor *mx = lam_max(x, 1, (int[]){1}, 0), *mn = lam_min(x, 1, (int[]){1}, 0);
    lam_tensor *am = lam_argmax(x, 1, 0), *an = lam_argmin(x, 1, 0);
    double *a = to_f64(mx), *b = to_f64(mn), *ia = to_f64(am), *ib = to_f64(an);
    cr_assert(isnan(a[0]) && a[1] == 7 && isnan(a[2]), "max %g %g %g", a[0], a[1], a[2]);
    cr_assert(isnan(b[0]) && b[1] == -2 && isnan(b[2]), "min %g %g %g", b[0], b[1], b[2]);
    cr_assert(ia[0] == 1 && ia[1] == 3 && ia[2] == 3, "argmax takes the NaN");
    cr_assert(ib[0] == 1 && ib[1] == 0 && ib[2] == 3, "argmin takes the NaN");
    lam_tensor *full = lam_max(x, 0, NULL, 0);
    double f;
    lam_tensor_item(full, &f);
    cr_assert(isnan(f));
    free(a), free(b), free(ia), free(ib);
    lam_tensor *all[] = {x, mx, mn, am, an, full};
    for (int i = 0; i < 6; i++) lam_tensor_free(all[i]);
  }
  /* Long rows take the 16-wide loops: NaN must survive the lane trees. */
  double *w = malloc(2 * 1000 * sizeof *w);
  tu_rng r = tu_rng_make(2);
  for (int i = 0; i < 2000; i++) w[i] = tu_uniform(&r, -1, 1);
  w[517] = NAN;
  w[700] = NAN;
  w[1000 + 333] = 5;
  w[1000 + 334] = -5;
  for (int dt = 0; dt < 2; dt++) {
    lam_tensor *x = from_f64(ctx, dt ? LAM_F64 : LAM_F32, 2, (int64_t[]){2, 1000}, w);
    lam_tensor *mx = lam_max(x, 1, (int[]){1}, 0), *mn = lam_min(x, 1, (int[]){-1}, 1);
    lam_tensor *am = lam_argmax(x, 1, 0), *an = lam_argmin(x, -1, 0);
    double *a = to_f64(mx), *b = to_f64(mn), *ia = to_f64(am), *ib = to_f64(an);
    cr_assert(isnan(a[0]) && a[1] == 5 && isnan(b[0]) && b[1] == -5, "long max/min %g %g %g %g", a[0], a[1], b[0], b[1]);
    cr_assert(ia[0] == 517 && ia[1] == 333 && ib[0] == 517 && ib[1] == 334, "long arg %g %g %g %g", ia[0], ia[1], ib[0], ib[1]);
    free(a), free(b), free(ia), free(ib);
    lam_tensor *all[] = {x, mx, mn, am, an};
    for (int i = 0; i < 5; i++) lam_tensor_free(all[i]);
  }
  free(w);
  lam_ctx_free(ctx);
}

Test(reduce, logsumexp_stable_and_infinite) {
  lam_ctx *ctx = tu_ctx();
  double v[8] = {1e4, 1e4 - 1, -1e4, 3, -1e4, -1e4 + 2, -1e4, -1e4};
  for (int dt = 0; dt < 2; dt++) {
    lam_dtype d = dt ? LAM_F64 : LAM_F32;
    lam_tensor *x = from_f64(ctx, d, 2, (int64_t[]){2, 4}, v);
    lam_tensor *l = lam_logsumexp(x, 1, (int[]){-1}, 1);
    double *g = to_f64(l);
    double w0 = 1e4 + log(1 + exp(-1.0)), w1 = -1e4 + 2 + log(1 + 3 * exp(-2.0));
    cr_assert(fabs(g[0] - w0) < 1e-2 && fabs(g[1] - w1) < 1e-2, "lse %.9g %.9g", g[0], g[1]);
    free(g);
    lam_tensor_free(l);
    lam_tensor_free(x);
  }
  double w[6] = {INFINITY, 1, -INFINITY, -INFINITY, 2, -INFINITY};
  lam_tensor *x = from_f64(ctx, LAM_F64, 2, (int64_t[]){3, 2}, w);
  lam_tensor *l = lam_logsumexp(x, 1, (int[]){1}, 0);
  double *g = to_f64(l);
  cr_assert(isinf(g[0]) && g[0] > 0, "+inf row: %g", g[0]);
  cr_assert(isinf(g[1]) && g[1] < 0, "-inf row: %g", g[1]);
  cr_assert(g[2] == 2, "row with one -inf: %g", g[2]);
  free(g);
  lam_tensor_free(l);
  lam_tensor_free(x);
  lam_ctx_free(ctx);
}

/* Constant inputs give exactly 0 variance, on every path and size. */
Test(reduce, var_of_constant_is_exactly_zero) {
  lam_ctx *ctx = tu_ctx();
  const int64_t sizes[] = {1, 3, 7, 33, 1023, 70001};
  const double consts[] = {0.1, -3.7, 1e4, 1.0 / 3.0};
  for (int dt = 0; dt < 2; dt++)
    for (size_t s = 0; s < 6; s++)
      for (size_t c = 0; c < 4; c++) {
        lam_dtype d = dt ? LAM_F64 : LAM_F32;
        lam_tensor *x = lam_tensor_full(ctx, d, 2, (int64_t[]){2, sizes[s]}, consts[c]);
        lam_tensor *v0 = lam_var(x, 1, (int[]){1}, 0, 0), *v1 = lam_var(x, 0, NULL, 1, 0);
        double *a = to_f64(v0), b;
        lam_tensor_item(v1, &b);
        cr_assert(a[0] == 0 && a[1] == 0 && b == 0, "var of %g x %lld: %g %g %g", consts[c],
                  (long long)sizes[s], a[0], a[1], b);
        free(a);
        lam_tensor_free(v0);
        lam_tensor_free(v1);
        lam_tensor_free(x);
      }
  /* One element with correction 1: 0/0 = NaN, as torch. */
  lam_tensor *x = lam_tensor_full(ctx, LAM_F64, 1, (int64_t[]){1}, 2.0);
  lam_tensor *v = lam_var(x, 0, NULL, 1, 0);
  double f;
  lam_tensor_item(v, &f);
  cr_assert(isnan(f));
  lam_tensor_free(v);
  lam_tensor_free(x);
  lam_ctx_free(ctx);
}

/* var of data with a large offset keeps its precision (two-pass). */
Test(reduce, var_large_offset) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(8);
  int64_t n = 4099;
  double *v = malloc((size_t)n * sizeof *v);
  for (int64_t i = 0; i < n; i++) v[i] = 1e4 + tu_uniform(&r, -1, 1);
  round_to(LAM_F32, v, n);
  check_case(ctx, R_VAR, LAM_F32, 1, &n, v, 0, NULL, 0, 1);
  free(v);
  lam_ctx_free(ctx);
}

/* ---- argmax / argmin ---------------------------------------------------- */

static void check_arg(lam_ctx *ctx, lam_dtype dt, int ndim, const int64_t *shape, const double *v,
                      int axis, int keep) {
  int a = axis < 0 ? axis + ndim : axis;
  int64_t outer = 1, inner = 1, R = shape[a];
  for (int d = 0; d < a; d++) outer *= shape[d];
  for (int d = a + 1; d < ndim; d++) inner *= shape[d];
  lam_tensor *x = from_f64(ctx, dt, ndim, shape, v);
  for (int is_max = 0; is_max < 2; is_max++) {
    lam_tensor *y = is_max ? lam_argmax(x, axis, keep) : lam_argmin(x, axis, keep);
    cr_assert(y, "%s", lam_last_error());
    cr_assert_eq(lam_tensor_dtype(y), LAM_I32);
    cr_assert_eq(lam_tensor_ndim(y), keep ? ndim : ndim - 1);
    if (keep) cr_assert_eq(lam_tensor_dim(y, a), 1);
    double *got = to_f64(y);
    for (int64_t o = 0; o < outer; o++)
      for (int64_t in = 0; in < inner; in++) {
        int64_t best = 0;
        for (int64_t j = 1; j < R; j++) {
          double c = v[(o * R + j) * inner + in], b = v[(o * R + best) * inner + in];
          if (is_max ? c > b : c < b) best = j;
        }
        cr_assert_eq((int64_t)got[o * inner + in], best, "%s %s axis %d R %lld: (%lld,%lld)",
                     is_max ? "argmax" : "argmin", lam_dtype_name(dt), axis, (long long)R,
                     (long long)o, (long long)in);
      }
    free(got);
    lam_tensor_free(y);
  }
  lam_tensor_free(x);
}

/* Random data with many ties (few distinct values), every axis, short and
 * long (chunked) scans: the first index of the extreme must win. */
Test(reduce, argmax_argmin_first_index) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  tu_rng r = tu_rng_make(9);
  struct {
    int ndim;
    int64_t shape[3];
  } cases[] = {{1, {1}}, {1, {7}}, {2, {3, 33}}, {3, {7, 5, 3}}, {2, {2, 300007}}, {1, {1023}}};
  const lam_dtype dts[] = {LAM_F32, LAM_F64, LAM_I32};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    int64_t n = 1, shape[3];
    for (int d = 0; d < cases[c].ndim; d++) {
      shape[d] = cases[c].shape[d];
      if (tu_small() && shape[d] > 1000) shape[d] = 9001;
      n *= shape[d];
    }
    double *v = malloc((size_t)n * sizeof *v);
    for (size_t di = 0; di < 3; di++) {
      for (int64_t i = 0; i < n; i++) v[i] = (double)tu_randint(&r, -3, 4); /* many ties */
      for (int axis = -cases[c].ndim; axis < cases[c].ndim; axis++)
        check_arg(ctx, dts[di], cases[c].ndim, shape, v, axis, (int)(c & 1));
    }
    free(v);
  }
  /* Long row whose only two maxima sit in different chunks: the first wins. */
  int64_t n = tu_small() ? 9001 : 300007;
  double *v = calloc((size_t)n, sizeof *v);
  v[n - 5] = 2;
  v[n / 3] = 2;
  v[n / 2] = -1;
  v[n - 2] = -1;
  check_arg(ctx, LAM_F32, 1, &n, v, 0, 0);
  free(v);
  /* 0-dim input: index 0. */
  lam_tensor *s = lam_tensor_scalar(ctx, LAM_F32, 3);
  lam_tensor *i = lam_argmax(s, 0, 0);
  double f = -1;
  cr_assert_eq(lam_tensor_item(i, &f), LAM_OK, "%s", lam_last_error());
  cr_assert_eq(f, 0);
  cr_assert_eq(lam_tensor_ndim(i), 0);
  lam_tensor_free(i);
  lam_tensor_free(s);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- gradients ---------------------------------------------------------- */

typedef struct {
  rop op;
  int naxes;
  int axes[3];
  int keep;
  double corr;
} gcase;

static lam_tensor *grad_fn(lam_tensor *const *xs, int n, void *user) {
  (void)n;
  const gcase *c = user;
  return call_op(c->op, xs[0], c->naxes, c->naxes ? c->axes : NULL, c->keep, c->corr);
}

Test(reduce, gradcheck_all_ops) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(17);
  int64_t shape[3] = {3, 4, 5};
  const gcase axes_sets[] = {
      {R_SUM, 1, {0}, 0, 0},   {R_SUM, 1, {-1}, 1, 0},   {R_SUM, 2, {0, 2}, 0, 0},
      {R_SUM, 0, {0}, 0, 0},   {R_SUM, 2, {1, 0}, 1, 0}, {R_SUM, 1, {1}, 0, 0},
  };
  tu_mark m = tu_mark_now(ctx);
  for (int op = 0; op < R_NOPS; op++)
    for (size_t a = 0; a < sizeof axes_sets / sizeof axes_sets[0]; a++) {
      gcase c = axes_sets[a];
      c.op = (rop)op;
      c.corr = (double)(a & 1);
      /* distinct values (no ties for max/min), away from 0 for prod */
      lam_tensor *x;
      if (op == R_MAX || op == R_MIN) {
        double v[60];
        for (int i = 0; i < 60; i++) v[i] = (double)((i * 37) % 60) / 7.0 - 4;
        x = from_f64(ctx, LAM_F64, 3, shape, v);
      } else if (op == R_PROD) {
        x = tu_rand_f64(ctx, &r, 3, shape, 0.5, 1.5);
      } else {
        x = tu_rand_f64(ctx, &r, 3, shape, -2, 2);
      }
      char what[64];
      snprintf(what, sizeof what, "%s axes set %zu", rop_name[op], a);
      tu_gradcheck(ctx, grad_fn, &c, &x, 1, 1e-6, 1e-6, 1, 2e-3, what);
      lam_tensor_free(x);
    }
  /* innermost axis kept and wider than 16 (16-wide broadcast with a tail) */
  int64_t wide[3] = {3, 2, 20};
  const gcase wide_sets[] = {{R_SUM, 1, {1}, 0, 0},  {R_MEAN, 2, {0, 1}, 1, 0}, {R_MAX, 1, {0}, 0, 0},
                             {R_PROD, 1, {-2}, 0, 0}, {R_VAR, 1, {0}, 1, 1},     {R_LSE, 2, {1, 0}, 0, 0}};
  for (size_t a = 0; a < sizeof wide_sets / sizeof wide_sets[0]; a++) {
    gcase c = wide_sets[a];
    lam_tensor *x = c.op == R_PROD ? tu_rand_f64(ctx, &r, 3, wide, 0.5, 1.5)
                                   : tu_rand_f64(ctx, &r, 3, wide, -2, 2);
    char what[64];
    snprintf(what, sizeof what, "%s wide set %zu", rop_name[c.op], a);
    tu_gradcheck(ctx, grad_fn, &c, &x, 1, 1e-6, 1e-6, 1, 2e-3, what);
    lam_tensor_free(x);
  }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* d sum(w * op(x)) / dx by lam_grad with w = 1 (a sum over the result). */
static lam_tensor *grad_of(lam_ctx *ctx, gcase *c, lam_tensor *x) {
  lam_tensor *g = NULL, *y0 = grad_fn(&x, 1, c);
  lam_tensor *w = lam_tensor_full(ctx, LAM_F64, lam_tensor_ndim(y0), lam_tensor_shape(y0), 1.0);
  cr_assert_eq(lam__vjp(ctx, grad_fn, c, &x, 1, w, NULL, &g), LAM_OK, "%s", lam_last_error());
  lam_tensor_free(w);
  lam_tensor_free(y0);
  return g;
}

/* Ties share the gradient evenly (torch.amax/amin); exact values. */
Test(reduce, max_min_tie_split_exact) {
  lam_ctx *ctx = tu_ctx();
  double v[8] = {1, 3, 3, 2, -1, -1, -1, 0};
  lam_tensor *x = from_f64(ctx, LAM_F64, 2, (int64_t[]){2, 4}, v);
  gcase cmax = {R_MAX, 1, {1}, 0, 0}, cmin = {R_MIN, 1, {1}, 0, 0}, call = {R_MAX, 0, {0}, 0, 0};
  lam_tensor *g = grad_of(ctx, &cmax, x);
  double *gv = to_f64(g);
  const double want_max[8] = {0, 0.5, 0.5, 0, 0, 0, 0, 1};
  for (int i = 0; i < 8; i++) cr_assert_eq(gv[i], want_max[i], "max grad %d: %g", i, gv[i]);
  free(gv);
  lam_tensor_free(g);
  g = grad_of(ctx, &cmin, x);
  gv = to_f64(g);
  const double third = 1.0 / 3.0, want_min[8] = {1, 0, 0, 0, third, third, third, 0};
  for (int i = 0; i < 8; i++) cr_assert(fabs(gv[i] - want_min[i]) < 1e-15, "min grad %d: %g", i, gv[i]);
  free(gv);
  lam_tensor_free(g);
  g = grad_of(ctx, &call, x); /* global max 3 appears twice */
  gv = to_f64(g);
  for (int i = 0; i < 8; i++) cr_assert_eq(gv[i], i == 1 || i == 2 ? 0.5 : 0.0, "all-axes max grad %d", i);
  free(gv);
  lam_tensor_free(g);
  lam_tensor_free(x);
  lam_ctx_free(ctx);
}

/* prod's gradient with zeros: one zero gets the product of the others. */
Test(reduce, prod_grad_with_zeros_exact) {
  lam_ctx *ctx = tu_ctx();
  double v[12] = {2, 0, 3, 4, /* one zero */ 0, 5, 0, 1, /* two zeros */ 2, 3, 0.5, -1};
  lam_tensor *x = from_f64(ctx, LAM_F64, 2, (int64_t[]){3, 4}, v);
  gcase c = {R_PROD, 1, {1}, 1, 0};
  lam_tensor *y = grad_fn(&x, 1, &c);
  double *yv = to_f64(y);
  cr_assert(yv[0] == 0 && yv[1] == 0 && yv[2] == -3, "prod %g %g %g", yv[0], yv[1], yv[2]);
  free(yv);
  lam_tensor_free(y);
  lam_tensor *g = grad_of(ctx, &c, x);
  double *gv = to_f64(g);
  const double want[12] = {0, 24, 0, 0, 0, 0, 0, 0, -1.5, -1, -6, 3};
  for (int i = 0; i < 12; i++) cr_assert_eq(gv[i], want[i], "prod grad %d: %g", i, gv[i]);
  free(gv);
  lam_tensor_free(g);
  lam_tensor_free(x);
  lam_ctx_free(ctx);
}

/* Backward of a chunked (multi-pass) reduction, against closed forms. */
Test(reduce, grads_of_long_reductions) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(4);
  int64_t n = tu_small() ? 9001 : 100003;
  double *v = malloc((size_t)n * sizeof *v);
  for (int64_t i = 0; i < n; i++) v[i] = tu_uniform(&r, -1, 1);
  v[n / 2] = 5; /* unique max */
  lam_tensor *x = from_f64(ctx, LAM_F64, 1, &n, v);
  gcase cs[] = {{R_MEAN, 0, {0}, 0, 0}, {R_MAX, 0, {0}, 0, 0}, {R_VAR, 0, {0}, 0, 1}, {R_LSE, 0, {0}, 0, 0}};
  double mean = 0, lse = 0;
  for (int64_t i = 0; i < n; i++) mean += v[i] / (double)n, lse += exp(v[i] - 5);
  lse = 5 + log(lse);
  for (int k = 0; k < 4; k++) {
    lam_tensor *g = grad_of(ctx, &cs[k], x);
    double *gv = to_f64(g);
    for (int64_t i = 0; i < n; i++) {
      double want = k == 0 ? 1.0 / (double)n : k == 1 ? (i == n / 2) : k == 2 ? 2 * (v[i] - mean) / (double)(n - 1) : exp(v[i] - lse);
      cr_assert(fabs(gv[i] - want) < 1e-12, "%s grad %lld: %g vs %g", rop_name[cs[k].op], (long long)i, gv[i], want);
    }
    free(gv);
    lam_tensor_free(g);
  }
  lam_tensor_free(x);
  free(v);
  lam_ctx_free(ctx);
}

/* ---- PyTorch golden values ---------------------------------------------- */

Test(reduce, torch_golden_var_logsumexp) {
  lam_ctx *ctx = tu_ctx();
  for (int k = 0; k < REDUCE_GOLDEN_N; k++) {
    const reduce_golden *gd = &reduce_golden_cases[k];
    for (int dt = 0; dt < 2; dt++) {
      lam_dtype d = dt ? LAM_F64 : LAM_F32;
      lam_tensor *x = from_f64(ctx, d, gd->ndim, gd->shape, gd->x);
      lam_tensor *y = gd->op == 0 ? lam_var(x, gd->naxes, gd->naxes ? gd->axes : NULL, gd->corr, gd->keep)
                                  : lam_logsumexp(x, gd->naxes, gd->naxes ? gd->axes : NULL, gd->keep);
      cr_assert(y, "golden %d: %s", k, lam_last_error());
      cr_assert_eq(lam_tensor_numel(y), gd->nout);
      cr_assert_eq(lam_tensor_ndim(y), gd->out_ndim, "golden %d ndim", k);
      double *got = to_f64(y);
      char what[64];
      snprintf(what, sizeof what, "torch golden %d (%s) %s", k, gd->op ? "logsumexp" : "var", lam_dtype_name(d));
      tu_assert_close_f64(got, gd->y, gd->nout, dt ? 1e-10 : 2e-3, dt ? 1e-10 : 1e-5, what);
      free(got);
      lam_tensor_free(y);
      lam_tensor_free(x);
    }
  }
  lam_ctx_free(ctx);
}

/* ---- bad input ---------------------------------------------------------- */

Test(reduce, bad_input) {
  lam_ctx *ctx = tu_ctx();
  lam_tensor *x = lam_tensor_zeros(ctx, LAM_F32, 3, (int64_t[]){2, 3, 4});
  lam_tensor *xi = lam_tensor_zeros(ctx, LAM_I32, 2, (int64_t[]){2, 3});
  lam_tensor *xu = lam_tensor_zeros(ctx, LAM_U8, 1, (int64_t[]){3});
  tu_mark m = tu_mark_now(ctx);
  for (int op = 0; op < R_NOPS; op++) {
    const char *fn[] = {"lam_sum", "lam_mean", "lam_max", "lam_min", "lam_prod", "lam_var", "lam_logsumexp"};
    lam_error_clear();
    tu_assert_fails(call_op((rop)op, NULL, 0, NULL, 0, 1), LAM_ERR_NULL, fn[op]);
    tu_assert_fails(call_op((rop)op, x, 1, (int[]){3}, 0, 1), LAM_ERR_INVALID_ARGUMENT, "axis 3 is out of range");
    tu_assert_fails(call_op((rop)op, x, 1, (int[]){-4}, 0, 1), LAM_ERR_INVALID_ARGUMENT, "axis -4");
    tu_assert_fails(call_op((rop)op, x, 2, (int[]){1, -2}, 0, 1), LAM_ERR_INVALID_ARGUMENT, "repeated");
    tu_assert_fails(call_op((rop)op, x, 4, (int[]){0, 1, 2, 0}, 0, 1), LAM_ERR_INVALID_ARGUMENT, "naxes 4");
    tu_assert_fails(call_op((rop)op, x, -1, (int[]){0}, 0, 1), LAM_ERR_INVALID_ARGUMENT, "naxes -1");
    tu_assert_fails(call_op((rop)op, x, 2, NULL, 0, 1), LAM_ERR_NULL, "axes is NULL");
    tu_assert_fails(call_op((rop)op, xu, 0, NULL, 0, 1), LAM_ERR_DTYPE, "u8");
    if (!ops_for(LAM_I32, (rop)op)) tu_assert_fails(call_op((rop)op, xi, 0, NULL, 0, 1), LAM_ERR_DTYPE, "i32");
    /* a NULL input keeps an earlier message */
    lam_tensor *bad = lam_sum(x, 1, (int[]){7}, 0);
    cr_assert_null(bad);
    tu_assert_fails(call_op((rop)op, bad, 0, NULL, 0, 1), LAM_ERR_INVALID_ARGUMENT, "lam_sum: axis 7");
  }
  tu_assert_fails(lam_var(x, 0, NULL, -1, 0), LAM_ERR_INVALID_ARGUMENT, "correction");
  tu_assert_fails(lam_var(x, 0, NULL, NAN, 0), LAM_ERR_INVALID_ARGUMENT, "correction");
  lam_error_clear();
  tu_assert_fails(lam_argmax(NULL, 0, 0), LAM_ERR_NULL, "lam_argmax");
  lam_error_clear();
  tu_assert_fails(lam_argmin(NULL, 0, 0), LAM_ERR_NULL, "lam_argmin");
  tu_assert_fails(lam_argmax(x, 3, 0), LAM_ERR_INVALID_ARGUMENT, "axis 3");
  tu_assert_fails(lam_argmin(x, -4, 1), LAM_ERR_INVALID_ARGUMENT, "axis -4");
  tu_assert_fails(lam_argmax(xu, 0, 0), LAM_ERR_DTYPE, "u8");
  lam_tensor *s = lam_tensor_scalar(ctx, LAM_F32, 1);
  tu_assert_fails(lam_sum(s, 1, (int[]){0}, 0), LAM_ERR_INVALID_ARGUMENT, "naxes 1");
  tu_assert_fails(lam_argmax(s, 1, 0), LAM_ERR_INVALID_ARGUMENT, "axis 1");
  lam_tensor_free(s);
  tu_assert_no_leak(ctx, m);
  /* i32 where accepted: sum of i32 is i32 */
  int32_t iv[6] = {1, -2, 3, 4, 5, -6};
  lam_tensor_write(xi, iv, sizeof iv);
  lam_tensor *si = lam_sum(xi, 1, (int[]){0}, 0);
  cr_assert_eq(lam_tensor_dtype(si), LAM_I32);
  int32_t out[3];
  lam_tensor_to_host(si, out, sizeof out);
  cr_assert(out[0] == 5 && out[1] == 3 && out[2] == -3);
  lam_tensor_free(si);
  lam_tensor_free(x);
  lam_tensor_free(xi);
  lam_tensor_free(xu);
  lam_ctx_free(ctx);
}
