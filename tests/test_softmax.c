/* test_softmax.c: softmax and log_softmax along every axis against a plain
 * C reference (double), on both device paths (one work-item per row, and
 * the chunked reduce + broadcast path for few long rows) forced through
 * LAMINA_SOFTMAX_PATH; odd sizes and one row above 2^22 elements; inputs of
 * +-1e4 and -inf (masks); PyTorch golden values; gradient checks on both
 * paths; bad input. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/reduce_softmax_golden.h"
#include "testutil.h"

static lam_tensor *from_f64(lam_ctx *ctx, lam_dtype dt, int ndim, const int64_t *shape,
                            const double *v) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  void *buf = malloc((size_t)n * 8);
  for (int64_t i = 0; i < n; i++) {
    if (dt == LAM_F32) ((float *)buf)[i] = (float)v[i];
    else ((double *)buf)[i] = v[i];
  }
  lam_tensor *t = lam_tensor_from_host(ctx, dt, ndim, shape, buf);
  free(buf);
  cr_assert(t, "from_f64: %s", lam_last_error());
  return t;
}

static double *to_f64(const lam_tensor *t) {
  cr_assert(t, "to_f64: NULL tensor: %s", lam_last_error());
  int64_t n = lam_tensor_numel(t);
  void *buf = malloc(lam_tensor_nbytes(t));
  cr_assert_eq(lam_tensor_to_host(t, buf, lam_tensor_nbytes(t)), LAM_OK, "%s", lam_last_error());
  double *v = malloc((size_t)n * sizeof *v);
  for (int64_t i = 0; i < n; i++)
    v[i] = lam_tensor_dtype(t) == LAM_F32 ? ((float *)buf)[i] : ((double *)buf)[i];
  free(buf);
  return v;
}

/* Reference softmax (logmode 0) / log_softmax (1) along axis, in double. */
static double *ref_softmax(const double *x, int ndim, const int64_t *shape, int axis, int logmode) {
  int64_t outer = 1, inner = 1, D = ndim ? shape[axis] : 1, n = 1;
  for (int d = 0; d < ndim; d++) {
    n *= shape[d];
    if (d < axis) outer *= shape[d];
    if (d > axis) inner *= shape[d];
  }
  double *y = malloc((size_t)n * sizeof *y);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t in = 0; in < inner; in++) {
      const double *xr = x + o * D * inner + in;
      double *yr = y + o * D * inner + in;
      double m = -INFINITY, s = 0;
      for (int64_t j = 0; j < D; j++) m = fmax(m, xr[j * inner]);
      for (int64_t j = 0; j < D; j++) s += exp(xr[j * inner] - m);
      for (int64_t j = 0; j < D; j++)
        yr[j * inner] = logmode ? xr[j * inner] - m - log(s) : exp(xr[j * inner] - m) / s;
    }
  return y;
}

static void check_softmax(lam_ctx *ctx, lam_dtype dt, int ndim, const int64_t *shape, double *v,
                          int axis, const char *path) {
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) n *= shape[d];
  if (dt == LAM_F32)
    for (int64_t i = 0; i < n; i++) v[i] = (float)v[i];
  int a = ndim && axis < 0 ? axis + ndim : axis;
  lam_tensor *x = from_f64(ctx, dt, ndim, shape, v);
  for (int logmode = 0; logmode < 2; logmode++) {
    lam_tensor *y = logmode ? lam_log_softmax(x, axis) : lam_softmax(x, axis);
    cr_assert(y, "%s", lam_last_error());
    cr_assert(lam_tensor_same_shape(x, y));
    cr_assert_eq(lam_tensor_dtype(y), dt);
    double *got = to_f64(y), *want = ref_softmax(v, ndim, shape, a, logmode);
    char what[160];
    snprintf(what, sizeof what, "%s %s ndim %d axis %d (%lld elements, path %s)",
             logmode ? "log_softmax" : "softmax", lam_dtype_name(dt), ndim, axis, (long long)n,
             path);
    double e = dt == LAM_F32 ? 1.2e-7 : 1e-15;
    tu_assert_close_f64(got, want, n, 20 * e, 40 * e, what);
    free(got);
    free(want);
    lam_tensor_free(y);
  }
  lam_tensor_free(x);
}

static void forward_cases(const char *path) {
  if (path) setenv("LAMINA_SOFTMAX_PATH", path, 1);
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  tu_rng r = tu_rng_make(path ? (uint64_t)path[0] : 1);
  struct {
    int ndim;
    int64_t shape[5];
  } cases[] = {{1, {1}},        {1, {3}},          {1, {1023}},           {2, {7, 33}},
               {2, {33, 1}},    {3, {3, 7, 5}},    {4, {2, 3, 1, 7}},     {5, {2, 1, 3, 2, 3}},
               {2, {1023, 3}},  {2, {129, 700}},  {3, {5, 17, 40}}};
  const lam_dtype dts[] = {LAM_F32, LAM_F64};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    int64_t n = 1;
    for (int d = 0; d < cases[c].ndim; d++) n *= cases[c].shape[d];
    double *v = malloc((size_t)n * sizeof *v);
    for (size_t di = 0; di < 2; di++)
      for (int axis = -cases[c].ndim; axis < cases[c].ndim; axis++) {
        for (int64_t i = 0; i < n; i++) v[i] = tu_uniform(&r, -8, 8);
        check_softmax(ctx, dts[di], cases[c].ndim, cases[c].shape, v, axis, path ? path : "auto");
      }
    free(v);
  }
  /* 0-dim: softmax 1, log_softmax 0 */
  double one = 2.5;
  check_softmax(ctx, LAM_F32, 0, NULL, &one, 0, path ? path : "auto");
  check_softmax(ctx, LAM_F64, 0, NULL, &one, -1, path ? path : "auto");
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

Test(softmax, forward_auto_path) { forward_cases(NULL); }
Test(softmax, forward_rows_path) { forward_cases("rows"); }
Test(softmax, forward_reduce_path) { forward_cases("reduce"); }
Test(softmax, forward_cols_path) { forward_cases("cols"); }

/* Long rows (the automatic choice takes the chunked path), one above 2^22
 * elements, and many short rows along a strided axis. */
Test(softmax, long_rows_and_many_rows) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  tu_rng r = tu_rng_make(3);
  const int small = tu_small();
  struct {
    int ndim;
    int64_t shape[3];
    int axis;
  } cases[] = {{2, {2, 300007}, 1},
               {2, {100003, 3}, 0},
               {1, {(1 << 22) + 7}, 0},
               {3, {64, 33, 65}, 1},
               {2, {4099, 33}, -1}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    int64_t n = 1, shape[3];
    for (int d = 0; d < cases[c].ndim; d++) {
      shape[d] = cases[c].shape[d];
      if (small && shape[d] > 1000) shape[d] = 9001;
      n *= shape[d];
    }
    double *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++) v[i] = tu_uniform(&r, -20, 20);
    check_softmax(ctx, c == 2 ? LAM_F32 : LAM_F64, cases[c].ndim, shape, v, cases[c].axis, "auto");
    free(v);
  }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* +-1e4 inputs stay finite and correct; -inf entries (masks) get 0 / -inf. */
static void big_and_masked(const char *path) {
  setenv("LAMINA_SOFTMAX_PATH", path, 1);
  lam_ctx *ctx = tu_ctx();
  double v[12] = {1e4, 1e4 - 1, -1e4, 3, -1e4, -1e4 + 2, -1e4, -1e4, 0, -INFINITY, 1, -INFINITY};
  for (int dt = 0; dt < 2; dt++) {
    lam_dtype d = dt ? LAM_F64 : LAM_F32;
    lam_tensor *x = from_f64(ctx, d, 2, (int64_t[]){3, 4}, v);
    lam_tensor *y = lam_softmax(x, -1), *l = lam_log_softmax(x, 1);
    double *yv = to_f64(y), *lv = to_f64(l);
    double e1 = exp(-1.0), e2 = exp(-2.0), e3 = exp(1.0);
    const double wy[12] = {1 / (1 + e1), e1 / (1 + e1), 0, 0,
                           e2 / (1 + 3 * e2), 1 / (1 + 3 * e2), e2 / (1 + 3 * e2), e2 / (1 + 3 * e2),
                           1 / (1 + e3), 0, e3 / (1 + e3), 0};
    const double wl[12] = {-log(1 + e1), -1 - log(1 + e1), -2e4 - log(1 + e1), 3 - 1e4 - log(1 + e1),
                           -2 - log(1 + 3 * e2), -log(1 + 3 * e2), -2 - log(1 + 3 * e2), -2 - log(1 + 3 * e2),
                           -log(1 + e3), -INFINITY, 1 - log(1 + e3), -INFINITY};
    for (int i = 0; i < 12; i++) {
      cr_assert(isfinite(yv[i]), "softmax %s %s element %d: %g", path, lam_dtype_name(d), i, yv[i]);
      cr_assert(fabs(yv[i] - wy[i]) < 1e-6, "softmax %s element %d: %.9g vs %.9g", path, i, yv[i], wy[i]);
      if (isinf(wl[i])) cr_assert(isinf(lv[i]) && lv[i] < 0, "log_softmax -inf element %d: %g", i, lv[i]);
      else cr_assert(fabs(lv[i] - wl[i]) < 2e-3 + 1e-7 * fabs(wl[i]), "log_softmax %s element %d: %.9g vs %.9g", path, i, lv[i], wl[i]);
    }
    free(yv);
    free(lv);
    lam_tensor_free(y);
    lam_tensor_free(l);
    lam_tensor_free(x);
  }
  lam_ctx_free(ctx);
}

Test(softmax, big_inputs_and_masks_rows) { big_and_masked("rows"); }
Test(softmax, big_inputs_and_masks_reduce) { big_and_masked("reduce"); }
Test(softmax, big_inputs_and_masks_cols) { big_and_masked("cols"); }

Test(softmax, torch_golden) {
  lam_ctx *ctx = tu_ctx();
  for (int k = 0; k < SOFTMAX_GOLDEN_N; k++) {
    const softmax_golden *gd = &softmax_golden_cases[k];
    for (int dt = 0; dt < 2; dt++) {
      lam_dtype d = dt ? LAM_F64 : LAM_F32;
      lam_tensor *x = from_f64(ctx, d, gd->ndim, gd->shape, gd->x);
      lam_tensor *y = lam_softmax(x, gd->axis), *l = lam_log_softmax(x, gd->axis);
      double *yv = to_f64(y), *lv = to_f64(l);
      char what[64];
      snprintf(what, sizeof what, "torch golden %d softmax %s", k, lam_dtype_name(d));
      tu_assert_close_f64(yv, gd->y, gd->n, dt ? 1e-14 : 1e-6, dt ? 1e-12 : 1e-5, what);
      snprintf(what, sizeof what, "torch golden %d log_softmax %s", k, lam_dtype_name(d));
      tu_assert_close_f64(lv, gd->ly, gd->n, dt ? 1e-12 : 1e-5, dt ? 1e-12 : 1e-6, what);
      free(yv);
      free(lv);
      lam_tensor_free(y);
      lam_tensor_free(l);
      lam_tensor_free(x);
    }
  }
  lam_ctx_free(ctx);
}

/* ---- gradients ---------------------------------------------------------- */

typedef struct {
  int axis, logmode;
} scase;

static lam_tensor *sm_fn(lam_tensor *const *xs, int n, void *user) {
  (void)n;
  const scase *c = user;
  return c->logmode ? lam_log_softmax(xs[0], c->axis) : lam_softmax(xs[0], c->axis);
}

static void gradchecks(const char *path) {
  if (path) setenv("LAMINA_SOFTMAX_PATH", path, 1);
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(7);
  tu_mark m = tu_mark_now(ctx);
  int64_t shape[3] = {3, 4, 5};
  for (int axis = -1; axis < 3; axis++)
    for (int logmode = 0; logmode < 2; logmode++) {
      scase c = {axis, logmode};
      lam_tensor *x = tu_rand_f64(ctx, &r, 3, shape, -3, 3);
      char what[64];
      snprintf(what, sizeof what, "%s axis %d (%s)", logmode ? "log_softmax" : "softmax", axis,
               path ? path : "auto");
      tu_gradcheck(ctx, sm_fn, &c, &x, 1, 1e-6, 1e-6, 1, 1e-3, what);
      lam_tensor_free(x);
    }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

Test(softmax, gradcheck_rows_path) { gradchecks("rows"); }
Test(softmax, gradcheck_reduce_path) { gradchecks("reduce"); }
Test(softmax, gradcheck_cols_path) { gradchecks("cols"); }

/* ---- bad input ---------------------------------------------------------- */

Test(softmax, bad_input) {
  lam_ctx *ctx = tu_ctx();
  lam_tensor *x = lam_tensor_zeros(ctx, LAM_F32, 2, (int64_t[]){2, 3});
  lam_tensor *xi = lam_tensor_zeros(ctx, LAM_I32, 2, (int64_t[]){2, 3});
  lam_tensor *xu = lam_tensor_zeros(ctx, LAM_U8, 1, (int64_t[]){3});
  tu_mark m = tu_mark_now(ctx);
  for (int logmode = 0; logmode < 2; logmode++) {
    lam_tensor *(*f)(lam_tensor *, int) = logmode ? lam_log_softmax : lam_softmax;
    const char *name = logmode ? "lam_log_softmax" : "lam_softmax";
    lam_error_clear();
    tu_assert_fails(f(NULL, 0), LAM_ERR_NULL, name);
    tu_assert_fails(f(x, 2), LAM_ERR_INVALID_ARGUMENT, "axis 2 is out of range");
    tu_assert_fails(f(x, -3), LAM_ERR_INVALID_ARGUMENT, "axis -3");
    tu_assert_fails(f(xi, 0), LAM_ERR_DTYPE, "i32");
    tu_assert_fails(f(xu, 0), LAM_ERR_DTYPE, "u8");
    tu_assert_fails(f(NULL, 0), LAM_ERR_DTYPE, name); /* keeps the earlier message */
  }
  tu_assert_no_leak(ctx, m);
  lam_tensor_free(x);
  lam_tensor_free(xi);
  lam_tensor_free(xu);
  lam_ctx_free(ctx);
}
