/* testutil.c: see testutil.h. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, strdup */
#include "testutil.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>


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
  lam_status st = lam_vjp(ctx, fn, user, xs, n, wt, NULL, grads);
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
    st = lam_vjp(ctx, fn, user, xf, n, wf, NULL, gf);
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

/* ---- host data of any dtype ---------------------------------------------------------- */

int64_t tu_numel(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  return n;
}

bool tu_has_dtype(lam_ctx *ctx, lam_dtype dt) {
  const lam_device_info *d = lam_ctx_device(ctx);
  return dt == LAM_F64 ? d->fp64 : dt == LAM_F16 ? d->fp16 : true;
}

lam_tensor *tu_from_f64(lam_ctx *ctx, lam_dtype dt, int ndim, const int64_t *shape,
                        const double *v) {
  int64_t n = tu_numel(ndim, shape);
  unsigned char *buf = malloc((size_t)n * 8 + 8);
  cr_assert(buf);
  for (int64_t i = 0; i < n; i++) {
    if (dt == LAM_F32)
      ((float *)buf)[i] = (float)v[i];
    else if (dt == LAM_F64)
      ((double *)buf)[i] = v[i];
    else if (dt == LAM_I32)
      ((int32_t *)buf)[i] = (int32_t)v[i];
    else if (dt == LAM_U8)
      buf[i] = (uint8_t)v[i];
    else
      cr_assert_fail("tu_from_f64: dtype %s is not supported", lam_dtype_name(dt));
  }
  lam_tensor *t = lam_tensor_from_host(ctx, dt, ndim, shape, buf);
  free(buf);
  cr_assert(t, "tu_from_f64: %s", lam_last_error());
  return t;
}

static double tu_half_to_f64(uint16_t h) {
  int e = (h >> 10) & 31, m = h & 1023;
  double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(m + 1024, e - 25);
  return h & 0x8000 ? -v : v;
}

void *tu_read_bytes(const lam_tensor *t) {
  cr_assert(t, "NULL tensor: %s", lam_last_error());
  size_t n = lam_tensor_nbytes(t);
  unsigned char *b = malloc(n + 1);
  cr_assert(b);
  cr_assert_eq(lam_tensor_to_host(t, b, n), LAM_OK, "%s", lam_last_error());
  return b;
}

double *tu_to_f64(const lam_tensor *t) {
  cr_assert(t, "tu_to_f64: NULL tensor: %s", lam_last_error());
  int64_t n = lam_tensor_numel(t);
  unsigned char *buf = tu_read_bytes(t);
  double *v = malloc((size_t)n * sizeof *v + 8);
  cr_assert(v);
  lam_dtype dt = lam_tensor_dtype(t);
  for (int64_t i = 0; i < n; i++)
    v[i] = dt == LAM_F32   ? ((float *)buf)[i]
           : dt == LAM_F64 ? ((double *)buf)[i]
           : dt == LAM_F16 ? tu_half_to_f64(((uint16_t *)buf)[i])
           : dt == LAM_I32 ? ((int32_t *)buf)[i]
                           : buf[i];
  free(buf);
  return v;
}

void tu_assert_tensor_close(const lam_tensor *t, const double *want, int64_t n, double atol,
                            double rtol, const char *what) {
  cr_assert(t, "%s: NULL result: %s", what, lam_last_error());
  cr_assert_eq(lam_tensor_numel(t), n, "%s: %lld elements, want %lld", what,
               (long long)lam_tensor_numel(t), (long long)n);
  double *got = tu_to_f64(t);
  tu_assert_close_f64(got, want, n, atol, rtol, what);
  free(got);
}

void tu_assert_tensor_bytes(const lam_tensor *y, int nd, const int64_t *shape,
                            const unsigned char *want, const char *what) {
  cr_assert(y, "%s: NULL result: %s", what, lam_last_error());
  cr_assert_eq(lam_tensor_ndim(y), nd, "%s: ndim %d, want %d", what, lam_tensor_ndim(y), nd);
  for (int d = 0; d < nd; d++)
    cr_assert_eq(lam_tensor_shape(y)[d], shape[d], "%s: dim %d is %lld, want %lld", what, d,
                 (long long)lam_tensor_shape(y)[d], (long long)shape[d]);
  unsigned char *got = tu_read_bytes(y);
  size_t es = lam_dtype_size(lam_tensor_dtype(y));
  int64_t n = lam_tensor_numel(y);
  for (int64_t i = 0; i < n; i++)
    cr_assert(memcmp(got + i * es, want + i * es, es) == 0, "%s (%s): element %lld differs", what,
              lam_dtype_name(lam_tensor_dtype(y)), (long long)i);
  free(got);
}

bool tu_bits_equal(const lam_tensor *a, const lam_tensor *b) {
  if (!a || !b || lam_tensor_dtype(a) != lam_tensor_dtype(b) || !lam_tensor_same_shape(a, b))
    return false;
  unsigned char *x = tu_read_bytes(a), *y = tu_read_bytes(b);
  bool eq = memcmp(x, y, lam_tensor_nbytes(a)) == 0;
  free(x);
  free(y);
  return eq;
}

double *tu_rand_vec(tu_rng *r, int64_t n, double lo, double hi) {
  double *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
  cr_assert(v);
  tu_fill_uniform_f64(r, v, n, lo, hi);
  return v;
}

static unsigned char *tu_rand_host(tu_rng *r, lam_dtype dt, int64_t n) {
  size_t es = lam_dtype_size(dt);
  unsigned char *h = malloc((size_t)n * es + 1);
  cr_assert(h);
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

lam_tensor *tu_rand_tensor(lam_ctx *ctx, tu_rng *r, lam_dtype dt, int nd, const int64_t *shape,
                           unsigned char **host) {
  unsigned char *h = tu_rand_host(r, dt, tu_numel(nd, shape));
  lam_tensor *t = lam_tensor_from_host(ctx, dt, nd, shape, h);
  cr_assert(t, "%s", lam_last_error());
  *host = h;
  return t;
}

void tu_rand_shape(tu_rng *r, int nd, int64_t cap, int64_t *shape) {
  static const int64_t sizes[] = {1, 2, 3, 5, 7, 33};
  for (;;) {
    for (int d = 0; d < nd; d++) shape[d] = sizes[tu_randint(r, 0, 6)];
    if (tu_numel(nd, shape) <= cap) return;
  }
}

void tu_strides(int nd, const int64_t *shape, int64_t *strides) {
  int64_t k = 1;
  for (int i = nd - 1; i >= 0; i--) {
    strides[i] = k;
    k *= shape[i];
  }
}

void tu_unravel(int64_t i, int nd, const int64_t *shape, int64_t *coords) {
  for (int d = nd - 1; d >= 0; d--) {
    coords[d] = i % shape[d];
    i /= shape[d];
  }
}

double tu_normal_pdf(double x) { return exp(-0.5 * x * x) / sqrt(2 * 3.14159265358979323846); }
double tu_normal_cdf(double x) { return 0.5 * erfc(-x / sqrt(2.0)); }

/* ---- layers and files ---------------------------------------------------------------- */

lam_tensor *tu_apply(lam_layer *l, lam_vars *v, lam_tensor *x, bool training) {
  lam_apply_opts o = {.training = training};
  lam_tensor *y = NULL;
  lam_status st = lam_layer_apply(l, v, x, &o, &y);
  cr_assert_eq(st, LAM_OK, "apply %s: %s", lam_layer_name(l), lam_last_error());
  return y;
}

const char *tu_data_path(const char *name) {
  static char buf[1024];
  const char *dir = getenv("LAMINA_TEST_DATA");
  snprintf(buf, sizeof buf, "%s/%s", dir && *dir ? dir : "tests/data", name);
  return buf;
}

static char tu_tmpdir_buf[256];

const char *tu_make_tmpdir(const char *prefix) {
  snprintf(tu_tmpdir_buf, sizeof tu_tmpdir_buf, "/tmp/%s-XXXXXX", prefix);
  cr_assert(mkdtemp(tu_tmpdir_buf), "mkdtemp %s", tu_tmpdir_buf);
  return tu_tmpdir_buf;
}

const char *tu_tmp(const char *name) {
  static char buf[4][512];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", tu_tmpdir_buf, name);
  return buf[k];
}

void tu_remove_tmpdir(void) {
  DIR *d = opendir(tu_tmpdir_buf);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d)))
      if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) remove(tu_tmp(e->d_name));
    closedir(d);
  }
  rmdir(tu_tmpdir_buf);
}

/* ---- golden data ---------------------------------------------------------------------- */

struct tu_golden {
  char file[256];
  int n;
  char **names;
  tu_array *arrays;
  lam_metadata *meta;
};

tu_golden *tu_golden_load(const char *file) {
  lam_ctx *ctx = tu_ctx();
  lam_ptree *tree = NULL;
  lam_metadata *meta = NULL;
  lam_status st = lam_safetensors_load(ctx, tu_data_path(file), NULL, &tree, &meta);
  cr_assert_eq(st, LAM_OK, "golden file %s: %s (regenerate with tools/gen_*_golden.py)", file,
               lam_last_error());
  tu_golden *g = calloc(1, sizeof *g);
  cr_assert(g);
  snprintf(g->file, sizeof g->file, "%s", file);
  g->n = lam_ptree_leaf_count(tree);
  g->names = calloc((size_t)g->n + 1, sizeof *g->names);
  g->arrays = calloc((size_t)g->n + 1, sizeof *g->arrays);
  cr_assert(g->names && g->arrays);
  for (int i = 0; i < g->n; i++) {
    const char *path;
    lam_tensor *t;
    cr_assert_eq(lam_ptree_leaf(tree, i, &path, &t), LAM_OK);
    g->names[i] = strdup(path);
    tu_array *a = &g->arrays[i];
    a->ndim = lam_tensor_ndim(t);
    memcpy(a->shape, lam_tensor_shape(t), sizeof(int64_t) * (size_t)a->ndim);
    a->n = lam_tensor_numel(t);
    a->v = tu_to_f64(t);
  }
  g->meta = meta;
  lam_ptree_free(tree);
  lam_ctx_free(ctx);
  return g;
}

void tu_golden_free(tu_golden *g) {
  if (!g) return;
  for (int i = 0; i < g->n; i++) {
    free(g->names[i]);
    free((double *)g->arrays[i].v);
  }
  free(g->names);
  free(g->arrays);
  lam_metadata_free(g->meta);
  free(g);
}

static const tu_array *tu_golden_lookup(const tu_golden *g, const char *name) {
  for (int i = 0; i < g->n; i++)
    if (strcmp(g->names[i], name) == 0) return &g->arrays[i];
  return NULL;
}

#define TU_FORMAT(buf, fmt)                  \
  char buf[256];                             \
  do {                                       \
    va_list ap;                              \
    va_start(ap, fmt);                       \
    vsnprintf(buf, sizeof buf, fmt, ap);     \
    va_end(ap);                              \
  } while (0)

const tu_array *tu_golden_find(const tu_golden *g, const char *fmt, ...) {
  TU_FORMAT(name, fmt);
  return tu_golden_lookup(g, name);
}

const tu_array *tu_golden_get(const tu_golden *g, const char *fmt, ...) {
  TU_FORMAT(name, fmt);
  const tu_array *a = tu_golden_lookup(g, name);
  cr_assert(a, "golden file %s has no tensor \"%s\"", g->file, name);
  return a;
}

static lam_tensor *tu_array_tensor(lam_ctx *ctx, lam_dtype dt, const tu_array *a) {
  return tu_from_f64(ctx, dt, a->ndim, a->shape, a->v);
}

const double *tu_golden_values(const tu_golden *g, const char *fmt, ...) {
  TU_FORMAT(name, fmt);
  const tu_array *a = tu_golden_lookup(g, name);
  cr_assert(a, "golden file %s has no tensor \"%s\"", g->file, name);
  return a->v;
}

lam_tensor *tu_golden_tensor(lam_ctx *ctx, lam_dtype dt, const tu_golden *g, const char *fmt, ...) {
  TU_FORMAT(name, fmt);
  const tu_array *a = tu_golden_lookup(g, name);
  cr_assert(a, "golden file %s has no tensor \"%s\"", g->file, name);
  return tu_array_tensor(ctx, dt, a);
}

static const char *tu_golden_meta_of(const tu_golden *g, const char *key) {
  const char *v = lam_metadata_get(g->meta, key);
  cr_assert(v, "golden file %s has no metadata \"%s\"", g->file, key);
  return v;
}

const char *tu_golden_meta(const tu_golden *g, const char *fmt, ...) {
  TU_FORMAT(key, fmt);
  return tu_golden_meta_of(g, key);
}

static int tu_parse_nums(const char *file, const char *key, const char *s, double *out, int max) {
  int k = 0;
  for (;;) {
    while (*s == ' ') s++;
    if (!*s) return k;
    char *end;
    double v = strtod(s, &end);
    cr_assert(end != s && k < max, "golden file %s: metadata \"%s\" is not %d or fewer numbers",
              file, key, max);
    out[k++] = v;
    s = end;
  }
}

double tu_golden_num(const tu_golden *g, const char *fmt, ...) {
  TU_FORMAT(key, fmt);
  double v;
  int k = tu_parse_nums(g->file, key, tu_golden_meta_of(g, key), &v, 1);
  cr_assert_eq(k, 1, "golden file %s: metadata \"%s\" is not one number", g->file, key);
  return v;
}

int tu_golden_nums(const tu_golden *g, double *out, int max, const char *fmt, ...) {
  TU_FORMAT(key, fmt);
  return tu_parse_nums(g->file, key, tu_golden_meta_of(g, key), out, max);
}

int tu_golden_ints(const tu_golden *g, int *out, int max, const char *fmt, ...) {
  TU_FORMAT(key, fmt);
  double v[LAM_MAX_DIMS * 2];
  cr_assert(max <= LAM_MAX_DIMS * 2);
  int k = tu_parse_nums(g->file, key, tu_golden_meta_of(g, key), v, max);
  for (int i = 0; i < k; i++) {
    out[i] = (int)v[i];
    cr_assert(out[i] == v[i], "golden file %s: metadata \"%s\" holds a non-integer", g->file, key);
  }
  return k;
}

int tu_golden_count(const tu_golden *g, const char *key) {
  const char *s = tu_golden_meta_of(g, key);
  int k = 0;
  for (;;) {
    while (*s == ' ') s++;
    if (!*s) return k;
    k++;
    while (*s && *s != ' ') s++;
  }
}

const char *tu_golden_word(const tu_golden *g, const char *key, int i) {
  static char buf[8][128];
  static int r;
  const char *s = tu_golden_meta_of(g, key);
  for (int k = 0;; k++) {
    while (*s == ' ') s++;
    cr_assert(*s, "golden file %s: metadata \"%s\" has no word %d", g->file, key, i);
    size_t len = strcspn(s, " ");
    if (k == i) {
      r = (r + 1) % 8;
      cr_assert(len < sizeof buf[r]);
      memcpy(buf[r], s, len);
      buf[r][len] = 0;
      return buf[r];
    }
    s += len;
  }
}
