/* test_pool.c: max/avg pooling 1-D to 3-D, adaptive max/avg pooling, the
 * mean-max pool and global pools: outputs and gradients (through the tape)
 * against plain C references on random configurations (kernel, stride,
 * padding, dilation, ceil_mode, count_include_pad, odd sizes 1/5/17/31),
 * PyTorch golden data (tests/data/conv_golden.safetensors from
 * tools/gen_conv_golden.py), finite-difference checks,
 * one input above 2^22 elements, bad input, and the layers. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* ---- reference -------------------------------------------------------------------- */

/* A pool case: kind 0 max, 1 avg, 2 adaptive max, 3 adaptive avg. */
typedef struct pcase {
  int kind, nsp, N, C;
  int in[3], k[3], s[3], p[3], d[3], out_ad[3];
  int ceil, exclude;
} pcase;

/* PyTorch's pooling_output_shape. */
static int out_size(int in, int k, int s, int p, int d, int ceil) {
  int num = in + 2 * p - d * (k - 1) - 1 + (ceil ? s - 1 : 0);
  int out = (num < 0 ? -1 : num / s) + 1;
  if (ceil && out > 0 && (out - 1) * s >= in + p) out--;
  return out;
}

typedef struct pgeo {
  int in[3], out[3], k[3], s[3], p[3], d[3];
} pgeo;

static int pgeo_make(const pcase *c, pgeo *g) {
  for (int i = 0; i < 3; i++) g->in[i] = g->out[i] = g->k[i] = g->s[i] = g->d[i] = 1, g->p[i] = 0;
  for (int i = 0; i < c->nsp; i++) {
    int a = 3 - c->nsp + i;
    g->in[a] = c->in[i];
    if (c->kind >= 2) {
      g->out[a] = c->out_ad[i];
      continue;
    }
    g->k[a] = c->k[i], g->s[a] = c->s[i], g->p[a] = c->p[i], g->d[a] = c->kind == 0 ? c->d[i] : 1;
    g->out[a] = out_size(c->in[i], c->k[i], c->s[i], c->p[i], g->d[a], c->ceil);
    if (g->out[a] < 1 || c->p[i] > c->k[i] / 2) return 0;
  }
  return 1;
}

/* Window of output o along axis a as a list of input indices (count returned). */
static int window(const pcase *c, const pgeo *g, int a, int o, int *idx, int *divisor_part) {
  int n = 0;
  if (c->kind >= 2) {
    int st = (o * g->in[a]) / g->out[a], en = ((o + 1) * g->in[a] + g->out[a] - 1) / g->out[a];
    for (int i = st; i < en; i++) idx[n++] = i;
    *divisor_part = en - st;
    return n;
  }
  int start = o * g->s[a] - g->p[a];
  for (int k = 0; k < g->k[a]; k++) {
    int i = start + k * g->d[a];
    if (i >= 0 && i < g->in[a]) idx[n++] = i;
  }
  int hend = start + g->k[a] < g->in[a] + g->p[a] ? start + g->k[a] : g->in[a] + g->p[a];
  if (c->exclude) {
    int lo = start < 0 ? 0 : start, hi = hend < g->in[a] ? hend : g->in[a];
    *divisor_part = hi - lo;
  } else {
    *divisor_part = hend - start;
  }
  return n;
}

/* y and dx = backward(cot) of the case. */
static void ref_pool(const pcase *c, const pgeo *g, const double *x, const double *cot, double *y,
                     double *dx) {
  const int planes = c->N * c->C, ni = g->in[0] * g->in[1] * g->in[2];
  const int no = g->out[0] * g->out[1] * g->out[2];
  memset(dx, 0, sizeof(double) * (size_t)planes * ni);
  int wd[64], wh[64], ww[64];
  for (int pl = 0; pl < planes; pl++)
    for (int od = 0; od < g->out[0]; od++)
      for (int oh = 0; oh < g->out[1]; oh++)
        for (int ow = 0; ow < g->out[2]; ow++) {
          int dd, dh, dw;
          int nd = window(c, g, 0, od, wd, &dd), nh = window(c, g, 1, oh, wh, &dh);
          int nw = window(c, g, 2, ow, ww, &dw);
          const double *xp = x + (size_t)pl * ni;
          int o = pl * no + (od * g->out[1] + oh) * g->out[2] + ow;
          if (c->kind == 0 || c->kind == 2) {
            double best = -INFINITY;
            int bi = nd && nh && nw ? (wd[0] * g->in[1] + wh[0]) * g->in[2] + ww[0] : -1;
            for (int a = 0; a < nd; a++)
              for (int b = 0; b < nh; b++)
                for (int e = 0; e < nw; e++) {
                  int i = (wd[a] * g->in[1] + wh[b]) * g->in[2] + ww[e];
                  if (xp[i] > best || isnan(xp[i])) best = xp[i], bi = i;
                }
            y[o] = best;
            if (bi >= 0) dx[(size_t)pl * ni + bi] += cot[o];
          } else {
            double s = 0;
            for (int a = 0; a < nd; a++)
              for (int b = 0; b < nh; b++)
                for (int e = 0; e < nw; e++) s += xp[(wd[a] * g->in[1] + wh[b]) * g->in[2] + ww[e]];
            double div = (double)dd * dh * dw;
            y[o] = s / div;
            for (int a = 0; a < nd; a++)
              for (int b = 0; b < nh; b++)
                for (int e = 0; e < nw; e++)
                  dx[(size_t)pl * ni + (wd[a] * g->in[1] + wh[b]) * g->in[2] + ww[e]] += cot[o] / div;
          }
        }
}

static lam_tensor *run_pool(const pcase *c, lam_tensor *x) {
  lam_pool_opts o = lam_pool_defaults();
  for (int i = 0; i < 3; i++) {
    o.kernel[i] = c->k[i], o.stride[i] = c->s[i], o.padding[i] = c->p[i];
    o.dilation[i] = c->kind == 0 ? c->d[i] : 1;
  }
  o.ceil_mode = c->ceil;
  o.exclude_pad = c->exclude;
  const int n = c->nsp;
  const int *a = c->out_ad;
  switch (c->kind) {
    case 0:
      return n == 1 ? lam_max_pool1d(x, &o)
           : n == 2 ? lam_max_pool2d(x, &o)
                    : lam_max_pool3d(x, &o);
    case 1:
      return n == 1 ? lam_avg_pool1d(x, &o)
           : n == 2 ? lam_avg_pool2d(x, &o)
                    : lam_avg_pool3d(x, &o);
    case 2:
      return n == 1 ? lam_adaptive_max_pool1d(x, a[0])
           : n == 2 ? lam_adaptive_max_pool2d(x, a[0], a[1])
                    : lam_adaptive_max_pool3d(x, a[0], a[1], a[2]);
    default:
      return n == 1 ? lam_adaptive_avg_pool1d(x, a[0])
           : n == 2 ? lam_adaptive_avg_pool2d(x, a[0], a[1])
                    : lam_adaptive_avg_pool3d(x, a[0], a[1], a[2]);
  }
}

static lam_tensor *pool_fn(lam_tensor *const *xs, int n, void *user) {
  return run_pool(user, xs[0]);
}

static void check_pcase(lam_ctx *ctx, tu_rng *r, const pcase *c, lam_dtype dt, const char *what) {
  pgeo g;
  cr_assert(pgeo_make(c, &g), "%s: bad case", what);
  int64_t xs[5] = {c->N, c->C}, ys[5] = {c->N, c->C};
  for (int i = 0; i < c->nsp; i++) xs[2 + i] = g.in[3 - c->nsp + i], ys[2 + i] = g.out[3 - c->nsp + i];
  const int nd = c->nsp + 2;
  const int64_t nx = tu_numel(nd, xs), ny = tu_numel(nd, ys);
  double *x = malloc((size_t)nx * 8), *cot = malloc((size_t)ny * 8);
  double *y = malloc((size_t)ny * 8), *dx = malloc((size_t)nx * 8);
  tu_fill_uniform_f64(r, x, nx, -1, 1);
  tu_fill_uniform_f64(r, cot, ny, -1, 1);
  if (dt == LAM_F32)
    for (int64_t i = 0; i < nx; i++) x[i] = (float)x[i]; /* same maxima in both precisions */
  ref_pool(c, &g, x, cot, y, dx);
  lam_tensor *tx = tu_from_f64(ctx, dt, nd, xs, x), *tc = tu_from_f64(ctx, dt, nd, ys, cot);
  lam_tensor *out = NULL, *grad = NULL;
  cr_assert_eq(lam_vjp(ctx, pool_fn, (void *)c, &tx, 1, tc, &out, &grad), LAM_OK, "%s: %s", what,
               lam_last_error());
  for (int i = 0; i < nd; i++)
    cr_assert_eq(lam_tensor_shape(out)[i], ys[i], "%s: dim %d is %lld, want %lld", what, i,
                 (long long)lam_tensor_shape(out)[i], (long long)ys[i]);
  const double tol = dt == LAM_F64 ? 1e-12 : 1e-5;
  double *got = tu_to_f64(out);
  tu_assert_close_f64(got, y, ny, tol, tol, what);
  free(got);
  got = tu_to_f64(grad);
  char w2[200];
  snprintf(w2, sizeof w2, "%s grad", what);
  tu_assert_close_f64(got, dx, nx, tol, tol, w2);
  free(got);
  /* Without a tape the forward alone must agree (max pools skip the index). */
  lam_tensor *plain = run_pool(c, tx);
  got = tu_to_f64(plain);
  tu_assert_close_f64(got, y, ny, tol, tol, what);
  free(got);
  lam_tensor_free(plain);
  lam_tensor_free(out), lam_tensor_free(grad), lam_tensor_free(tx), lam_tensor_free(tc);
  free(x), free(cot), free(y), free(dx);
}

static pcase random_pcase(tu_rng *r, int kind, int nsp) {
  static const int sizes[] = {1, 5, 17, 31, 2, 4, 8};
  for (;;) {
    pcase c;
    memset(&c, 0, sizeof c);
    c.kind = kind, c.nsp = nsp;
    c.N = (int)tu_randint(r, 1, 3);
    c.C = (int)tu_randint(r, 1, 4);
    int64_t vol = 1;
    for (int i = 0; i < nsp; i++) {
      c.in[i] = sizes[tu_randint(r, 0, 7)];
      if (nsp == 3 && c.in[i] > 8) c.in[i] = (int)tu_randint(r, 1, 9);
      c.k[i] = (int)tu_randint(r, 1, 5);
      c.s[i] = (int)tu_randint(r, 1, 4);
      c.p[i] = (int)tu_randint(r, 0, c.k[i] / 2 + 1);
      c.d[i] = (int)tu_randint(r, 1, 3);
      c.out_ad[i] = (int)tu_randint(r, 1, 10);
      vol *= c.in[i];
    }
    c.ceil = (int)tu_randint(r, 0, 2);
    c.exclude = kind == 1 ? (int)tu_randint(r, 0, 2) : 0;
    pgeo g;
    if (vol * c.N * c.C > 20000 || !pgeo_make(&c, &g)) continue;
    return c;
  }
}

static void random_psuite(int kind, int ncases, uint64_t seed) {
  static const char *const kn[] = {"max_pool", "avg_pool", "adaptive_max", "adaptive_avg"};
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(seed);
  tu_mark m = tu_mark_now(ctx);
  for (int nsp = 1; nsp <= 3; nsp++)
    for (int i = 0; i < ncases; i++) {
      pcase c = random_pcase(&r, kind, nsp);
      for (int dt = 0; dt < 2; dt++) {
        char what[200];
        snprintf(what, sizeof what,
                 "%s%dd case %d (%s): N%d C%d in %d,%d,%d k %d,%d,%d s %d,%d,%d p %d,%d,%d "
                 "d %d,%d,%d out %d,%d,%d ceil %d excl %d",
                 kn[kind], nsp, i, dt ? "f64" : "f32", c.N, c.C, c.in[0], c.in[1], c.in[2], c.k[0],
                 c.k[1], c.k[2], c.s[0], c.s[1], c.s[2], c.p[0], c.p[1], c.p[2], c.d[0], c.d[1],
                 c.d[2], c.out_ad[0], c.out_ad[1], c.out_ad[2], c.ceil, c.exclude);
        check_pcase(ctx, &r, &c, dt ? LAM_F64 : LAM_F32, what);
      }
    }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

Test(pool, random_max) { random_psuite(0, tu_small() ? 3 : 20, 41); }
/* The same cases on the general kernel (pool_fwd): the default takes
 * max_pool2d_rows for dilation-1 1-D/2-D max pools. */
Test(pool, random_max_general) {
  setenv("LAMINA_POOL_PATH", "general", 1);
  random_psuite(0, tu_small() ? 3 : 20, 41);
  unsetenv("LAMINA_POOL_PATH");
}
/* The vectorised 3x3 stride-2 max pool (max_pool2d_k3s2: evaluation, no indices)
 * against the general kernel, bitwise, on odd and even sizes (vector blocks, the
 * scalar head and tail), padding 0 and 1, with NaN and -inf entries. */
Test(pool, max_k3s2_matches_general) {
  lam_ctx *ctx = tu_ctx();
  static const int64_t sizes[] = {1, 2, 3, 5, 17, 18, 33, 40, 57};
  tu_rng r = tu_rng_make(9);
  for (int i = 0; i < 9; i++)
    for (int p = 0; p < 2; p++) {
      const int64_t H = sizes[i], W = sizes[(i * 5 + 3) % 9];
      if ((H + 2 * p < 3) || (W + 2 * p < 3)) continue;
      const int64_t n = 2 * 3 * H * W;
      float *h = malloc((size_t)n * sizeof *h);
      for (int64_t e = 0; e < n; e++) {
        h[e] = (float)tu_uniform(&r, -1, 1);
        if (e % 23 == 7) h[e] = NAN;
        if (e % 19 == 5) h[e] = -INFINITY;
      }
      lam_tensor *x = lam_tensor_from_host(ctx, LAM_F32, 4, (int64_t[]){2, 3, H, W}, h);
      lam_pool_opts o = {.kernel = {3, 3}, .stride = {2, 2}, .padding = {p, p}};
      lam_tensor *yv = lam_max_pool2d(x, &o);
      setenv("LAMINA_POOL_PATH", "general", 1);
      lam_tensor *yg = lam_max_pool2d(x, &o);
      unsetenv("LAMINA_POOL_PATH");
      cr_assert(yv && yg, "%s", lam_last_error());
      double *a = tu_to_f64(yv), *b = tu_to_f64(yg);
      for (int64_t e = 0; e < lam_tensor_numel(yg); e++)
        cr_assert(a[e] == b[e] || (isnan(a[e]) && isnan(b[e])), "H %lld W %lld pad %d at %lld: %g vs %g",
                  (long long)H, (long long)W, p, (long long)e, a[e], b[e]);
      free(a), free(b), free(h);
      lam_tensor_free(x), lam_tensor_free(yv), lam_tensor_free(yg);
    }
  lam_ctx_free(ctx);
}

Test(pool, random_avg) { random_psuite(1, tu_small() ? 3 : 20, 42); }
Test(pool, random_adaptive_max) { random_psuite(2, tu_small() ? 3 : 15, 43); }
Test(pool, random_adaptive_avg) { random_psuite(3, tu_small() ? 3 : 15, 44); }

/* One input above 2^22 elements (streaming size), max and average 2x2. */
Test(pool, large) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(45);
  pcase c;
  memset(&c, 0, sizeof c);
  c.nsp = 2, c.N = 2, c.C = 8;
  c.in[0] = tu_small() ? 33 : 512, c.in[1] = tu_small() ? 31 : 521;
  c.k[0] = c.k[1] = c.s[0] = c.s[1] = 2;
  c.d[0] = c.d[1] = 1;
  c.ceil = 1;
  check_pcase(ctx, &r, &c, LAM_F32, "max_pool2d large");
  c.kind = 1;
  check_pcase(ctx, &r, &c, LAM_F32, "avg_pool2d large");
  lam_ctx_free(ctx);
}

/* Max pool edge semantics: NaN wins, -inf inputs give -inf, ties go to the first. */
Test(pool, max_edges) {
  lam_ctx *ctx = tu_ctx();
  double x[8] = {1, NAN, 3, 3, -INFINITY, -INFINITY, 2, 2};
  lam_tensor *t = tu_from_f64(ctx, LAM_F64, 3, (int64_t[]){1, 1, 8}, x);
  lam_tensor *y = lam_max_pool1d(t, NULL);
  double *v = tu_to_f64(y);
  cr_assert(isnan(v[0]) && v[1] == 3 && v[2] == -INFINITY && v[3] == 2, "%g %g %g %g", v[0], v[1],
            v[2], v[3]);
  free(v);
  lam_tensor *cot = lam_tensor_full(ctx, LAM_F64, 3, (int64_t[]){1, 1, 4}, 1.0), *g = NULL;
  cr_assert_eq(lam_vjp(ctx, pool_fn, &(pcase){.kind = 0, .nsp = 1, .k = {2}, .s = {2}, .d = {1}},
                        &t, 1, cot, NULL, &g),
               LAM_OK);
  v = tu_to_f64(g);
  const double want[8] = {0, 1, 1, 0, 1, 0, 1, 0};
  for (int i = 0; i < 8; i++) cr_assert_eq(v[i], want[i], "grad %d: %g", i, v[i]);
  free(v);
  lam_tensor_free(g), lam_tensor_free(cot), lam_tensor_free(y), lam_tensor_free(t);
  lam_ctx_free(ctx);
}

/* ---- gradient checks ------------------------------------------------------------------- */

Test(pool, gradcheck) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(46);
  tu_mark m = tu_mark_now(ctx);
  const pcase cases[] = {
      {0, 2, 2, 2, {5, 4}, {3, 2}, {2, 1}, {1, 1}, {1, 2}, {0}, 1, 0},
      {1, 2, 1, 2, {5, 5}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, {0}, 1, 0},
      {1, 1, 2, 1, {7}, {3}, {2}, {1}, {1}, {0}, 0, 1},
      {1, 3, 1, 1, {3, 4, 3}, {2, 2, 3}, {1, 2, 2}, {1, 0, 1}, {1, 1, 1}, {0}, 0, 0},
      {2, 2, 1, 2, {5, 3}, {0}, {0}, {0}, {0}, {3, 4}, 0, 0},
      {3, 1, 2, 1, {5}, {0}, {0}, {0}, {0}, {7}, 0, 0},
      {3, 3, 1, 1, {3, 2, 4}, {0}, {0}, {0}, {0}, {2, 3, 3}, 0, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    pgeo g;
    cr_assert(pgeo_make(&cases[i], &g));
    int64_t xs[5] = {cases[i].N, cases[i].C};
    for (int d = 0; d < cases[i].nsp; d++) xs[2 + d] = cases[i].in[d];
    lam_tensor *x = tu_rand_f64(ctx, &r, cases[i].nsp + 2, xs, -1, 1);
    char what[32];
    snprintf(what, sizeof what, "pool gradcheck %zu", i);
    tu_gradcheck(ctx, pool_fn, (void *)&cases[i], &x, 1, 1e-6, 1e-6, 1, 1e-5, what);
    lam_tensor_free(x);
  }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- mean-max and global pools ------------------------------------------------------------ */

static lam_tensor *meanmax_fn(lam_tensor *const *xs, int n, void *user) {
  return lam_adaptive_mean_max_pool2d(xs[0], 2, 3, *(bool *)user);
}

Test(pool, mean_max_and_global) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(47);
  tu_mark m = tu_mark_now(ctx);
  lam_tensor *x = tu_rand_f64(ctx, &r, 4, (int64_t[]){2, 3, 5, 7}, -1, 1);
  lam_tensor *mean = lam_adaptive_avg_pool2d(x, 2, 3);
  lam_tensor *mx = lam_adaptive_max_pool2d(x, 2, 3);
  double *a = tu_to_f64(mean), *b = tu_to_f64(mx);
  lam_tensor *avg = lam_adaptive_mean_max_pool2d(x, 2, 3, false);
  lam_tensor *cat = lam_adaptive_mean_max_pool2d(x, 2, 3, true);
  cr_assert(avg && cat, "%s", lam_last_error());
  cr_assert(lam_tensor_shape(avg)[1] == 3 && lam_tensor_shape(cat)[1] == 6);
  double *va = tu_to_f64(avg), *vc = tu_to_f64(cat);
  for (int n = 0; n < 2; n++)
    for (int c = 0; c < 3; c++)
      for (int e = 0; e < 6; e++) {
        int i = (n * 3 + c) * 6 + e;
        cr_assert(fabs(va[i] - 0.5 * (a[i] + b[i])) < 1e-14);
        cr_assert(vc[(n * 6 + c) * 6 + e] == a[i] && vc[(n * 6 + 3 + c) * 6 + e] == b[i]);
      }
  free(a), free(b), free(va), free(vc);
  for (int concat = 0; concat < 2; concat++) {
    bool cc = concat;
    tu_gradcheck(ctx, meanmax_fn, &cc, &x, 1, 1e-6, 1e-6, 0, 0, "mean_max");
  }
  /* global pools = adaptive pools to size 1, for 1 to 3 spatial dims */
  const int64_t shapes[3][5] = {{2, 3, 17}, {2, 3, 5, 7}, {1, 2, 3, 4, 5}};
  for (int nsp = 1; nsp <= 3; nsp++) {
    lam_tensor *t = tu_rand_f64(ctx, &r, nsp + 2, shapes[nsp - 1], -1, 1);
    lam_tensor *ga = lam_global_avg_pool(t), *gm = lam_global_max_pool(t);
    cr_assert(ga && gm, "%s", lam_last_error());
    cr_assert_eq(lam_tensor_ndim(ga), nsp + 2);
    for (int d = 2; d < nsp + 2; d++) cr_assert(lam_tensor_shape(ga)[d] == 1 && lam_tensor_shape(gm)[d] == 1);
    double *xv = tu_to_f64(t), *av = tu_to_f64(ga), *mv = tu_to_f64(gm);
    const int64_t planes = shapes[nsp - 1][0] * shapes[nsp - 1][1];
    const int64_t per = lam_tensor_numel(t) / planes;
    for (int64_t p = 0; p < planes; p++) {
      double s = 0, best = -INFINITY;
      for (int64_t e = 0; e < per; e++) s += xv[p * per + e], best = fmax(best, xv[p * per + e]);
      cr_assert(fabs(av[p] - s / (double)per) < 1e-12 && mv[p] == best);
    }
    free(xv), free(av), free(mv);
    lam_tensor_free(ga), lam_tensor_free(gm), lam_tensor_free(t);
  }
  lam_tensor_free(mean), lam_tensor_free(mx), lam_tensor_free(avg), lam_tensor_free(cat);
  lam_tensor_free(x);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- PyTorch golden ------------------------------------------------------------------------ */

/* Case `name` of tools/gen_conv_golden.py: tensors pool.<name>.*, the rest metadata. */
typedef struct pool_golden_case {
  const char *name;
  int kind, nsp; /* kind: 0 max, 1 avg, 2 adaptive max, 3 adaptive avg */
  int k[3], s[3], p[3], d[3], out_ad[3];
  int ceil, exclude;
  int64_t xshape[5], yshape[5];
  const double *x, *cot, *y, *gx;
} pool_golden_case;

static pool_golden_case pool_golden(const tu_golden *g, const char *name) {
  static const char *const kinds[] = {"max", "avg", "adaptive_max", "adaptive_avg"};
  pool_golden_case c = {0};
  c.name = name;
  const char *kind = tu_golden_meta(g, "pool.%s.kind", name);
  c.kind = -1;
  for (int i = 0; i < 4; i++)
    if (strcmp(kind, kinds[i]) == 0) c.kind = i;
  cr_assert(c.kind >= 0, "pool golden %s: kind %s", name, kind);
  cr_assert_eq(tu_golden_ints(g, c.k, 3, "pool.%s.k", name), 3);
  cr_assert_eq(tu_golden_ints(g, c.s, 3, "pool.%s.s", name), 3);
  cr_assert_eq(tu_golden_ints(g, c.p, 3, "pool.%s.p", name), 3);
  cr_assert_eq(tu_golden_ints(g, c.d, 3, "pool.%s.d", name), 3);
  cr_assert_eq(tu_golden_ints(g, c.out_ad, 3, "pool.%s.out", name), 3);
  c.ceil = (int)tu_golden_num(g, "pool.%s.ceil", name);
  c.exclude = (int)tu_golden_num(g, "pool.%s.exclude", name);
  const tu_array *x = tu_golden_get(g, "pool.%s.x", name), *y = tu_golden_get(g, "pool.%s.y", name);
  c.nsp = x->ndim - 2;
  memcpy(c.xshape, x->shape, sizeof c.xshape);
  memcpy(c.yshape, y->shape, sizeof c.yshape);
  c.x = x->v, c.y = y->v;
  c.cot = tu_golden_values(g, "pool.%s.cot", name);
  c.gx = tu_golden_values(g, "pool.%s.gx", name);
  return c;
}

Test(pool, pytorch_golden) {
  lam_ctx *ctx = tu_ctx();
  tu_golden *gold = tu_golden_load("conv_golden.safetensors");
  tu_mark m = tu_mark_now(ctx);
  const int ncases = tu_golden_count(gold, "pool.cases");
  for (int ci = 0; ci < ncases; ci++) {
    char name[64];
    snprintf(name, sizeof name, "%s", tu_golden_word(gold, "pool.cases", ci));
    const pool_golden_case pg = pool_golden(gold, name), *gc = &pg;
    pcase c;
    memset(&c, 0, sizeof c);
    c.kind = gc->kind, c.nsp = gc->nsp, c.ceil = gc->ceil, c.exclude = gc->exclude;
    for (int i = 0; i < 3; i++) {
      c.k[i] = gc->k[i], c.s[i] = gc->s[i], c.p[i] = gc->p[i], c.d[i] = gc->d[i];
      c.out_ad[i] = gc->out_ad[i];
    }
    const int nd = gc->nsp + 2;
    const int64_t nx = tu_numel(nd, gc->xshape), ny = tu_numel(nd, gc->yshape);
    for (int dt = 0; dt < 2; dt++) {
      const lam_dtype t = dt ? LAM_F64 : LAM_F32;
      lam_tensor *x = tu_from_f64(ctx, t, nd, gc->xshape, gc->x);
      lam_tensor *cot = tu_from_f64(ctx, t, nd, gc->yshape, gc->cot);
      lam_tensor *y = NULL, *g = NULL;
      cr_assert_eq(lam_vjp(ctx, pool_fn, &c, &x, 1, cot, &y, &g), LAM_OK, "golden %s: %s",
                   gc->name, lam_last_error());
      char what[96];
      snprintf(what, sizeof what, "golden %s (%s)", gc->name, dt ? "f64" : "f32");
      for (int i = 0; i < nd; i++) cr_assert_eq(lam_tensor_shape(y)[i], gc->yshape[i], "%s dim %d", what, i);
      const double tol = dt ? 1e-11 : 1e-5;
      double *v = tu_to_f64(y);
      tu_assert_close_f64(v, gc->y, ny, tol, tol, what);
      free(v);
      v = tu_to_f64(g);
      strcat(what, " grad");
      tu_assert_close_f64(v, gc->gx, nx, tol, tol, what);
      free(v);
      lam_tensor_free(x), lam_tensor_free(cot), lam_tensor_free(y), lam_tensor_free(g);
    }
  }
  tu_assert_no_leak(ctx, m);
  tu_golden_free(gold);
  lam_ctx_free(ctx);
}

/* ---- bad input ------------------------------------------------------------------------------ */

Test(pool, bad_input) {
  lam_ctx *ctx = tu_ctx();
  lam_tensor *x = lam_tensor_zeros(ctx, LAM_F32, 4, (int64_t[]){1, 2, 5, 5});
  lam_tensor *xi = lam_tensor_zeros(ctx, LAM_I32, 4, (int64_t[]){1, 2, 5, 5});
  lam_tensor *x3 = lam_tensor_zeros(ctx, LAM_F32, 3, (int64_t[]){1, 2, 5});
  lam_tensor *x6 = lam_tensor_zeros(ctx, LAM_F32, 6, (int64_t[]){1, 2, 2, 2, 2, 2});
  tu_mark m = tu_mark_now(ctx);
  tu_assert_fails(lam_max_pool2d(NULL, NULL), LAM_ERR_NULL, "lam_max_pool2d: x");
  tu_assert_fails(lam_max_pool2d(x3, NULL), LAM_ERR_SHAPE, "[batch, channels, h, w]");
  tu_assert_fails(lam_avg_pool1d(x, NULL), LAM_ERR_SHAPE, "[batch, channels, length]");
  tu_assert_fails(lam_max_pool3d(x, NULL), LAM_ERR_SHAPE, "lam_max_pool3d");
  tu_assert_fails(lam_avg_pool2d(xi, NULL), LAM_ERR_DTYPE, "i32");
  lam_pool_opts o = lam_pool_defaults();
  o.kernel[0] = 7;
  tu_assert_fails(lam_max_pool2d(x, &o), LAM_ERR_SHAPE, "larger than the padded input 5");
  o = lam_pool_defaults();
  o.padding[1] = 2;
  tu_assert_fails(lam_max_pool2d(x, &o), LAM_ERR_INVALID_ARGUMENT, "at most half the kernel");
  o = lam_pool_defaults();
  o.stride[0] = -1;
  tu_assert_fails(lam_avg_pool2d(x, &o), LAM_ERR_INVALID_ARGUMENT, "stride -1");
  o = lam_pool_defaults();
  o.dilation[0] = 2;
  tu_assert_fails(lam_avg_pool2d(x, &o), LAM_ERR_INVALID_ARGUMENT, "no dilation");
  tu_assert_fails(lam_adaptive_avg_pool2d(x, 0, 3), LAM_ERR_INVALID_ARGUMENT, "output size 0");
  tu_assert_fails(lam_adaptive_max_pool1d(x, 3), LAM_ERR_SHAPE, "length");
  tu_assert_fails(lam_adaptive_mean_max_pool2d(x3, 1, 1, false), LAM_ERR_SHAPE, "h, w");
  tu_assert_fails(lam_global_avg_pool(x6), LAM_ERR_SHAPE, "1 to 3 spatial dims");
  lam_error_clear();
  tu_assert_fails(lam_global_max_pool(NULL), LAM_ERR_NULL, "x");
  tu_assert_no_leak(ctx, m);
  lam_tensor_free(x), lam_tensor_free(xi), lam_tensor_free(x3), lam_tensor_free(x6);
  lam_ctx_free(ctx);
}

/* ---- layers ---------------------------------------------------------------------------------- */

Test(pool, layers) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(48);
  lam_tensor *x = tu_rand_f32(ctx, &r, 4, (int64_t[]){2, 3, 8, 6}, -1, 1);
  tu_mark m = tu_mark_now(ctx);
  struct {
    lam_layer *l;
    const char *name;
    int64_t h, w, c;
  } cases[] = {
      {lam_nn_max_pool2d(NULL), "max_pool2d", 4, 3, 3},
      {lam_nn_avg_pool2d(&(lam_pool_opts){.kernel = {3, 3}, .stride = {1, 1}, .padding = {1, 1}}),
       "avg_pool2d", 8, 6, 3},
      {lam_nn_adaptive_avg_pool2d(3, 5), "adaptive_avg_pool2d", 3, 5, 3},
      {lam_nn_adaptive_max_pool2d(1, 1), "adaptive_max_pool2d", 1, 1, 3},
      {lam_nn_adaptive_mean_max_pool2d(1, 1, true), "adaptive_mean_max_pool2d", 1, 1, 6},
      {lam_nn_global_avg_pool(), "global_avg_pool", 1, 1, 3},
      {lam_nn_global_max_pool(), "global_max_pool", 1, 1, 3},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    cr_assert(cases[i].l, "%s: %s", cases[i].name, lam_last_error());
    cr_assert_str_eq(lam_layer_name(cases[i].l), cases[i].name);
    lam_vars *v = NULL;
    cr_assert_eq(lam_layer_init(cases[i].l, ctx, lam_rng_key_make(1), LAM_F32, &v), LAM_OK);
    lam_tensor *y = NULL;
    cr_assert_eq(lam_layer_apply(cases[i].l, v, x, NULL, &y), LAM_OK, "%s: %s", cases[i].name,
                 lam_last_error());
    cr_assert(lam_tensor_shape(y)[1] == cases[i].c && lam_tensor_shape(y)[2] == cases[i].h &&
                  lam_tensor_shape(y)[3] == cases[i].w,
              "%s", cases[i].name);
    lam_tensor_free(y);
    lam_vars_free(v);
    lam_layer_free(cases[i].l);
  }
  /* 1-D and 3-D layers check the rank */
  lam_layer *l1 = lam_nn_max_pool1d(NULL), *l3 = lam_nn_avg_pool3d(NULL), *la = lam_nn_adaptive_avg_pool1d(4);
  lam_layer *lm = lam_nn_adaptive_max_pool1d(2), *ls = lam_nn_max_pool3d(NULL), *lv = lam_nn_avg_pool1d(NULL);
  cr_assert(l1 && l3 && la && lm && ls && lv);
  lam_vars *v = NULL;
  cr_assert_eq(lam_layer_init(l1, ctx, lam_rng_key_make(1), LAM_F32, &v), LAM_OK);
  lam_tensor *y = NULL;
  tu_assert_status(lam_layer_apply(l1, v, x, NULL, &y), LAM_ERR_SHAPE, "max_pool1d expects [N, C, L]");
  tu_assert_status(lam_layer_apply(l3, v, x, NULL, &y), LAM_ERR_SHAPE, "avg_pool3d");
  lam_tensor *x1 = tu_rand_f32(ctx, &r, 3, (int64_t[]){2, 3, 9}, -1, 1);
  cr_assert_eq(lam_layer_apply(la, v, x1, NULL, &y), LAM_OK);
  cr_assert_eq(lam_tensor_shape(y)[2], 4);
  lam_tensor_free(y);
  cr_assert_eq(lam_layer_apply(lv, v, x1, NULL, &y), LAM_OK);
  cr_assert_eq(lam_tensor_shape(y)[2], 4);
  lam_tensor_free(y);
  lam_tensor_free(x1);
  lam_vars_free(v);
  lam_layer *all[] = {l1, l3, la, lm, ls, lv};
  for (int i = 0; i < 6; i++) lam_layer_free(all[i]);
  tu_assert_fails(lam_nn_max_pool2d(&(lam_pool_opts){.kernel = {2, 2}, .padding = {2, 0}}),
                  LAM_ERR_INVALID_ARGUMENT, "at most half");
  tu_assert_fails(lam_nn_avg_pool2d(&(lam_pool_opts){.dilation = {2, 1}}), LAM_ERR_INVALID_ARGUMENT,
                  "no dilation");
  tu_assert_fails(lam_nn_adaptive_avg_pool2d(2, 0), LAM_ERR_INVALID_ARGUMENT, "output sizes");
  tu_assert_fails(lam_nn_max_pool1d(&(lam_pool_opts){.kernel = {-2}}), LAM_ERR_INVALID_ARGUMENT, "kernel -2");
  tu_assert_no_leak(ctx, m);
  lam_tensor_free(x);
  lam_ctx_free(ctx);
}
