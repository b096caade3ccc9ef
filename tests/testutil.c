/* testutil.c: see testutil.h. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autodiff/tape.h" /* lam__vjp */

lam_ctx *tu_ctx(void) {
  lam_ctx *ctx = NULL;
  lam_status st = lam_ctx_create(NULL, &ctx);
  cr_assert_eq(st, LAM_OK, "lam_ctx_create: %s", lam_last_error());
  return ctx;
}

tu_rng tu_rng_make(uint64_t seed) { return (tu_rng){seed * 0x9e3779b97f4a7c15ULL + 1}; }

uint64_t tu_next(tu_rng *r) {
  uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

double tu_uniform(tu_rng *r, double lo, double hi) {
  return lo + (hi - lo) * (double)(tu_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

int64_t tu_randint(tu_rng *r, int64_t lo, int64_t hi) {
  return lo + (int64_t)(tu_next(r) % (uint64_t)(hi - lo));
}

void tu_fill_uniform_f32(tu_rng *r, float *x, int64_t n, double lo, double hi) {
  for (int64_t i = 0; i < n; i++) x[i] = (float)tu_uniform(r, lo, hi);
}

void tu_fill_uniform_f64(tu_rng *r, double *x, int64_t n, double lo, double hi) {
  for (int64_t i = 0; i < n; i++) x[i] = tu_uniform(r, lo, hi);
}

int tu_small(void) {
  const char *s = getenv("LAMINA_TEST_SMALL");
  return s && *s && strcmp(s, "0") != 0;
}

void tu_assert_close_f32(const float *got, const float *want, int64_t n, double atol, double rtol,
                         const char *what) {
  for (int64_t i = 0; i < n; i++) {
    if (isnan(want[i]) && isnan(got[i])) continue;
    if (isinf(want[i]) && got[i] == want[i]) continue;
    double d = fabs((double)got[i] - (double)want[i]);
    cr_assert(d <= atol + rtol * fabs((double)want[i]), "%s: element %lld: got %.9g, want %.9g",
              what, (long long)i, got[i], want[i]);
  }
}

void tu_assert_close_f64(const double *got, const double *want, int64_t n, double atol,
                         double rtol, const char *what) {
  for (int64_t i = 0; i < n; i++) {
    if (isnan(want[i]) && isnan(got[i])) continue;
    if (isinf(want[i]) && got[i] == want[i]) continue;
    double d = fabs(got[i] - want[i]);
    cr_assert(d <= atol + rtol * fabs(want[i]), "%s: element %lld: got %.17g, want %.17g", what,
              (long long)i, got[i], want[i]);
  }
}

float *tu_read_f32(const lam_tensor *t) {
  cr_assert(t != NULL, "tu_read_f32: NULL tensor (%s)", lam_last_error());
  cr_assert_eq(lam_tensor_dtype(t), LAM_F32);
  float *x = malloc(lam_tensor_nbytes(t));
  cr_assert(x);
  cr_assert_eq(lam_tensor_to_host(t, x, lam_tensor_nbytes(t)), LAM_OK, "%s", lam_last_error());
  return x;
}

double *tu_read_f64(const lam_tensor *t) {
  cr_assert(t != NULL, "tu_read_f64: NULL tensor (%s)", lam_last_error());
  cr_assert_eq(lam_tensor_dtype(t), LAM_F64);
  double *x = malloc(lam_tensor_nbytes(t));
  cr_assert(x);
  cr_assert_eq(lam_tensor_to_host(t, x, lam_tensor_nbytes(t)), LAM_OK, "%s", lam_last_error());
  return x;
}

tu_mark tu_mark_now(lam_ctx *ctx) {
  lam_stats s;
  cr_assert_eq(lam_ctx_stats(ctx, &s), LAM_OK);
  return (tu_mark){s.live_tensors, s.live_bytes};
}

void tu_assert_no_leak(lam_ctx *ctx, tu_mark mark) {
  lam_stats s;
  cr_assert_eq(lam_ctx_stats(ctx, &s), LAM_OK);
  cr_assert_eq(s.live_tensors, mark.tensors, "leak: %lld live tensors, expected %lld",
               (long long)s.live_tensors, (long long)mark.tensors);
  cr_assert_eq(s.live_bytes, mark.bytes, "leak: %lld live bytes, expected %lld",
               (long long)s.live_bytes, (long long)mark.bytes);
}

void tu_assert_status(lam_status got, lam_status status, const char *needle) {
  cr_assert_eq(got, status, "status %d (%s), expected %d (%s); message: %s", (int)got,
               lam_status_string(got), (int)status, lam_status_string(status), lam_last_error());
  cr_assert(strlen(lam_last_error()) > 0, "no error message");
  if (needle)
    cr_assert(strstr(lam_last_error(), needle) != NULL, "message \"%s\" lacks \"%s\"",
              lam_last_error(), needle);
}

void tu_assert_fails(const void *result, lam_status status, const char *needle) {
  cr_assert(result == NULL, "expected failure with %s, got a result", lam_status_string(status));
  tu_assert_status(lam_last_status(), status, needle);
}

static lam_tensor *tu_rand_dt(lam_ctx *ctx, tu_rng *r, lam_dtype dt, int ndim,
                              const int64_t *shape, double lo, double hi) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  lam_tensor *t;
  if (dt == LAM_F64) {
    double *x = malloc((size_t)n * sizeof *x);
    tu_fill_uniform_f64(r, x, n, lo, hi);
    t = lam_tensor_from_host(ctx, dt, ndim, shape, x);
    free(x);
  } else {
    float *x = malloc((size_t)n * sizeof *x);
    tu_fill_uniform_f32(r, x, n, lo, hi);
    t = lam_tensor_from_host(ctx, dt, ndim, shape, x);
    free(x);
  }
  cr_assert(t, "tu_rand: %s", lam_last_error());
  return t;
}

lam_tensor *tu_rand_f64(lam_ctx *ctx, tu_rng *r, int ndim, const int64_t *shape, double lo,
                        double hi) {
  return tu_rand_dt(ctx, r, LAM_F64, ndim, shape, lo, hi);
}

lam_tensor *tu_rand_f32(lam_ctx *ctx, tu_rng *r, int ndim, const int64_t *shape, double lo,
                        double hi) {
  return tu_rand_dt(ctx, r, LAM_F32, ndim, shape, lo, hi);
}

/* <w, fn(xs)> on the host. */
static double tu_eval_dot(lam_tensors_fn fn, void *user, lam_tensor *const *xs, int n,
                          const double *w, int64_t wn, const char *what) {
  lam_tensor *y = fn(xs, n, user);
  cr_assert(y, "%s: fn failed: %s", what, lam_last_error());
  cr_assert_eq(lam_tensor_numel(y), wn, "%s: output size changed", what);
  double *v = tu_read_f64(y);
  double s = 0;
  for (int64_t i = 0; i < wn; i++) s += v[i] * w[i];
  free(v);
  lam_tensor_free(y);
  return s;
}

void tu_gradcheck(lam_ctx *ctx, lam_tensors_fn fn, void *user, lam_tensor *const *xs, int n,
                  double eps, double tol, int check_f32, double f32_tol, const char *what) {
  cr_assert(n >= 1 && n <= 8);
  tu_rng r = tu_rng_make(12345);
  lam_tensor *y0 = fn(xs, n, user);
  cr_assert(y0, "%s: fn failed: %s", what, lam_last_error());
  cr_assert_eq(lam_tensor_dtype(y0), LAM_F64, "%s: gradcheck needs an f64 output", what);
  int64_t wn = lam_tensor_numel(y0);
  double *w = malloc((size_t)wn * sizeof *w);
  tu_fill_uniform_f64(&r, w, wn, -1, 1);
  lam_tensor *wt = lam_tensor_from_host(ctx, LAM_F64, lam_tensor_ndim(y0), lam_tensor_shape(y0), w);
  lam_tensor *grads[8] = {0};
  lam_status st = lam__vjp(ctx, fn, user, xs, n, wt, NULL, grads);
  cr_assert_eq(st, LAM_OK, "%s: vjp failed: %s", what, lam_last_error());

  for (int i = 0; i < n; i++) {
    int64_t m = lam_tensor_numel(xs[i]);
    double *x = tu_read_f64(xs[i]);
    double *ga = tu_read_f64(grads[i]);
    /* Perturb a copy so callers' tensors stay intact. */
    lam_tensor *xc = lam_tensor_copy(xs[i]);
    lam_tensor *args[8];
    for (int j = 0; j < n; j++) args[j] = j == i ? xc : xs[j];
    for (int64_t e = 0; e < m; e++) {
      double keep = x[e];
      x[e] = keep + eps;
      lam_tensor_write(xc, x, (size_t)m * sizeof *x);
      double fp = tu_eval_dot(fn, user, args, n, w, wn, what);
      x[e] = keep - eps;
      lam_tensor_write(xc, x, (size_t)m * sizeof *x);
      double fm = tu_eval_dot(fn, user, args, n, w, wn, what);
      x[e] = keep;
      double num = (fp - fm) / (2 * eps);
      cr_assert(fabs(ga[e] - num) <= tol * fmax(1.0, fabs(num)),
                "%s: input %d element %lld: analytic %.12g, numeric %.12g", what, i, (long long)e,
                ga[e], num);
    }
    lam_tensor_write(xc, x, (size_t)m * sizeof *x);
    lam_tensor_free(xc);
    free(x);
    free(ga);
  }

  if (check_f32) {
    lam_tensor *xf[8], *gf[8] = {0};
    for (int i = 0; i < n; i++) xf[i] = lam_tensor_cast(xs[i], LAM_F32);
    lam_tensor *wf = lam_tensor_cast(wt, LAM_F32);
    st = lam__vjp(ctx, fn, user, xf, n, wf, NULL, gf);
    cr_assert_eq(st, LAM_OK, "%s: f32 vjp failed: %s", what, lam_last_error());
    for (int i = 0; i < n; i++) {
      lam_tensor *g64 = lam_tensor_cast(gf[i], LAM_F64);
      double *a = tu_read_f64(g64), *b = tu_read_f64(grads[i]);
      int64_t m = lam_tensor_numel(g64);
      for (int64_t e = 0; e < m; e++)
        cr_assert(fabs(a[e] - b[e]) <= f32_tol * fmax(1.0, fabs(b[e])),
                  "%s: f32 grad of input %d element %lld: %.9g vs f64 %.12g", what, i,
                  (long long)e, a[e], b[e]);
      free(a);
      free(b);
      lam_tensor_free(g64);
      lam_tensor_free(gf[i]);
      lam_tensor_free(xf[i]);
    }
    lam_tensor_free(wf);
  }
  for (int i = 0; i < n; i++) lam_tensor_free(grads[i]);
  lam_tensor_free(wt);
  lam_tensor_free(y0);
  free(w);
}
