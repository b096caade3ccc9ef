/* test_pool_extra.c: the pooling options beyond plain max/avg pools, from
 * lamina/pool.h (src/ops/pool.c, the layers of src/nn/pool_layers.c, LRN in
 * src/nn/local_response_norm.c): return_indices (lam_max_pool*d_with_indices and the
 * adaptive ones), max unpooling, divisor_override, LP pooling, fractional
 * max pooling (explicit samples and samples drawn from a key), the 3-d
 * adaptive pool layers, lam_nn_max_pool_apply, and local response
 * normalization (lamina/norm.h). Outputs, indices and gradients (through
 * the tape) against plain C references on random odd configurations, PyTorch
 * golden data (tests/data/pool_golden.safetensors from
 * tools/gen_pool_golden.py), f64 finite-difference checks, bad input and the
 * layers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

enum { K_MAXIDX, K_UNPOOL, K_DIV, K_LP, K_FRAC, K_LRN };

/* One case. Spatial arrays are indexed by the op's spatial dim (as the
 * options); g3_* hold the 3-D geometry the references use (D, H, W). */
typedef struct xcase {
  int kind, nsp, adaptive, ceil, exclude, divisor;
  int64_t N, C, in[3], out[3]; /* in: x's spatial sizes */
  int k[3], s[3], p[3], d[3];
  int64_t size[3];   /* unpool / fractional output_size, adaptive output */
  double ratio[3];   /* fractional */
  double lp;         /* LP norm type */
  double alpha, beta, kk; /* LRN */
  int64_t lrn_size;
  lam_tensor *idx;     /* unpool: the indices (borrowed) */
  lam_tensor *samples; /* fractional: explicit samples (borrowed) or NULL */
  lam_rng_key key;
  lam_tensor *got_idx; /* indices returned by the last run (owned by the caller) */
} xcase;

static lam_pool_opts pool_opts(const xcase *c) {
  lam_pool_opts o = lam_pool_defaults();
  for (int i = 0; i < 3; i++) {
    o.kernel[i] = c->k[i] ? c->k[i] : 2, o.stride[i] = c->s[i], o.padding[i] = c->p[i];
    o.dilation[i] = c->d[i] ? c->d[i] : 1;
  }
  o.ceil_mode = c->ceil, o.exclude_pad = c->exclude, o.divisor_override = c->divisor;
  return o;
}

static lam_tensor *run(xcase *c, lam_tensor *x) {
  lam_pool_opts o = pool_opts(c);
  lam_tensor *y = NULL, **ix = &c->got_idx;
  lam_tensor_free(c->got_idx);
  c->got_idx = NULL;
  const int n = c->nsp;
  const int64_t *a = c->size;
  switch (c->kind) {
    case K_MAXIDX:
      if (c->adaptive)
        y = n == 1 ? lam_adaptive_max_pool1d_with_indices(x, a[0], ix)
          : n == 2 ? lam_adaptive_max_pool2d_with_indices(x, a[0], a[1], ix)
                   : lam_adaptive_max_pool3d_with_indices(x, a[0], a[1], a[2], ix);
      else
        y = n == 1 ? lam_max_pool1d_with_indices(x, &o, ix)
          : n == 2 ? lam_max_pool2d_with_indices(x, &o, ix)
                   : lam_max_pool3d_with_indices(x, &o, ix);
      break;
    case K_UNPOOL: {
      lam_max_unpool_opts u = lam_max_unpool_defaults();
      for (int i = 0; i < 3; i++)
        u.kernel[i] = c->k[i] ? c->k[i] : 2, u.stride[i] = c->s[i], u.padding[i] = c->p[i],
        u.output_size[i] = c->size[i];
      y = n == 1 ? lam_max_unpool1d(x, c->idx, &u)
        : n == 2 ? lam_max_unpool2d(x, c->idx, &u)
                 : lam_max_unpool3d(x, c->idx, &u);
      break;
    }
    case K_DIV:
      y = n == 1 ? lam_avg_pool1d(x, &o) : n == 2 ? lam_avg_pool2d(x, &o) : lam_avg_pool3d(x, &o);
      break;
    case K_LP: {
      lam_pool_opts l = lam_pool_defaults();
      for (int i = 0; i < 3; i++) l.kernel[i] = c->k[i] ? c->k[i] : 2, l.stride[i] = c->s[i];
      l.ceil_mode = c->ceil;
      y = n == 1 ? lam_lp_pool1d(x, c->lp, &l)
        : n == 2 ? lam_lp_pool2d(x, c->lp, &l)
                 : lam_lp_pool3d(x, c->lp, &l);
      break;
    }
    case K_FRAC: {
      lam_fractional_max_pool_opts f = lam_fractional_max_pool_defaults();
      for (int i = 0; i < 3; i++) {
        f.kernel[i] = c->k[i] ? c->k[i] : 2, f.output_size[i] = c->size[i];
        if (c->ratio[i] > 0) f.output_ratio[i] = c->ratio[i];
      }
      f.samples = c->samples;
      y = n == 2 ? lam_fractional_max_pool2d(x, c->key, &f, ix)
                 : lam_fractional_max_pool3d(x, c->key, &f, ix);
      break;
    }
    default:
      y = lam_local_response_norm(x, c->lrn_size,
                                  &(lam_local_response_norm_opts){.alpha = c->alpha, .beta = c->beta,
                                                                  .k = c->kk});
      break;
  }
  return y;
}

static lam_tensor *run_fn(lam_tensor *const *xs, int n, void *user) {
  (void)n;
  return run(user, xs[0]);
}

/* ---- references (f64 on the host, 3-D geometry) ------------------------------------------------ */

typedef struct geo {
  int64_t in[3], out[3];
  int64_t k[3], s[3], p[3], d[3];
} geo;

static int64_t pool_out(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, int ceil) {
  int64_t num = in + 2 * p - d * (k - 1) - 1 + (ceil ? s - 1 : 0);
  int64_t out = (num < 0 ? -1 : num / s) + 1;
  if (ceil && out > 0 && (out - 1) * s >= in + p) out--;
  return out;
}

/* Fills the 3-D geometry of a fixed-window or adaptive pool; returns 0 when
 * the configuration is invalid. */
static int make_geo(const xcase *c, geo *g) {
  for (int i = 0; i < 3; i++) g->in[i] = g->out[i] = g->k[i] = g->s[i] = g->d[i] = 1, g->p[i] = 0;
  for (int i = 0; i < c->nsp; i++) {
    const int a = 3 - c->nsp + i;
    g->in[a] = c->in[i];
    if (c->adaptive) {
      g->out[a] = c->size[i];
      continue;
    }
    g->k[a] = c->k[i] ? c->k[i] : 2;
    g->s[a] = c->s[i] ? c->s[i] : g->k[a];
    g->p[a] = c->p[i];
    g->d[a] = c->d[i] ? c->d[i] : 1;
    if (g->p[a] > g->k[a] / 2) return 0;
    g->out[a] = pool_out(g->in[a], g->k[a], g->s[a], g->p[a], g->d[a], c->ceil);
    if (g->out[a] < 1) return 0;
  }
  return 1;
}

/* The input positions of output o along axis a (count returned); for
 * average pools also the PyTorch divisor part (*dv). */
static int window(const xcase *c, const geo *g, int a, int64_t o, int64_t *idx, int64_t *dv) {
  int n = 0;
  if (c->adaptive) {
    int64_t st = o * g->in[a] / g->out[a], en = ((o + 1) * g->in[a] + g->out[a] - 1) / g->out[a];
    for (int64_t i = st; i < en; i++) idx[n++] = i;
    *dv = en - st;
    return n;
  }
  const int64_t start = o * g->s[a] - g->p[a];
  for (int64_t t = 0; t < g->k[a]; t++) {
    int64_t i = start + t * g->d[a];
    if (i >= 0 && i < g->in[a]) idx[n++] = i;
  }
  int64_t hend = start + g->k[a] < g->in[a] + g->p[a] ? start + g->k[a] : g->in[a] + g->p[a];
  if (c->exclude) {
    int64_t lo = start < 0 ? 0 : start, hi = hend < g->in[a] ? hend : g->in[a];
    *dv = hi - lo;
  } else {
    *dv = hend - start;
  }
  return n;
}

/* Max (mode 0: y, idx, dx) or average-family (mode 1: sum / divisor; mode
 * 2: LP by torch's formula) reference of a fixed or adaptive pool. */
static void ref_pool(const xcase *c, const geo *g, int mode, const double *x, const double *cot,
                     double *y, int32_t *idx, double *dx) {
  const int64_t planes = c->N * c->C, ni = g->in[0] * g->in[1] * g->in[2];
  const int64_t no = g->out[0] * g->out[1] * g->out[2];
  memset(dx, 0, sizeof(double) * (size_t)(planes * ni));
  int64_t wd[64], wh[64], ww[64];
  double K = (double)(g->k[0] * g->k[1] * g->k[2]);
  for (int64_t pl = 0; pl < planes; pl++)
    for (int64_t od = 0; od < g->out[0]; od++)
      for (int64_t oh = 0; oh < g->out[1]; oh++)
        for (int64_t ow = 0; ow < g->out[2]; ow++) {
          int64_t dd, dh, dw;
          int nd = window(c, g, 0, od, wd, &dd), nh = window(c, g, 1, oh, wh, &dh);
          int nw = window(c, g, 2, ow, ww, &dw);
          const double *xp = x + pl * ni;
          double *dp = dx + pl * ni;
          const int64_t o = pl * no + (od * g->out[1] + oh) * g->out[2] + ow;
          if (mode == 0) {
            double best = -INFINITY; /* a window with no tap inside (dilation): -inf, index -1 */
            int64_t bi = nd && nh && nw ? (wd[0] * g->in[1] + wh[0]) * g->in[2] + ww[0] : -1;
            for (int a = 0; a < nd; a++)
              for (int b = 0; b < nh; b++)
                for (int e = 0; e < nw; e++) {
                  int64_t i = (wd[a] * g->in[1] + wh[b]) * g->in[2] + ww[e];
                  if (xp[i] > best || isnan(xp[i])) best = xp[i], bi = i;
                }
            y[o] = best, idx[o] = (int32_t)bi;
            if (bi >= 0) dp[bi] += cot[o];
            continue;
          }
          const double div = c->divisor ? c->divisor : (double)(dd * dh * dw);
          double s = 0;
          for (int a = 0; a < nd; a++)
            for (int b = 0; b < nh; b++)
              for (int e = 0; e < nw; e++) {
                double v = xp[(wd[a] * g->in[1] + wh[b]) * g->in[2] + ww[e]];
                s += mode == 1 ? v : pow(v, c->lp);
              }
          s /= div;
          double gs; /* d y / d s */
          if (mode == 1) {
            y[o] = s, gs = 1;
          } else { /* y = (s K)^(1/p) (s > 0 in these tests) */
            y[o] = pow(s * K, 1.0 / c->lp);
            gs = K / c->lp * pow(s * K, 1.0 / c->lp - 1);
          }
          for (int a = 0; a < nd; a++)
            for (int b = 0; b < nh; b++)
              for (int e = 0; e < nw; e++) {
                int64_t i = (wd[a] * g->in[1] + wh[b]) * g->in[2] + ww[e];
                double dv = mode == 1 ? 1 : c->lp * pow(xp[i], c->lp - 1);
                dp[i] += cot[o] * gs * dv / div;
              }
        }
}

/* Torch's generate_intervals, in float when f32. */
static int64_t frac_start(int64_t o, int64_t n, int64_t m, int64_t k, double u, int f32) {
  if (o == m - 1) return n - k;
  if (f32) {
    const float al = (float)(n - k) / (float)(m - 1), uf = (float)u;
    return (int64_t)(int)(((float)o + uf) * al) - (int64_t)(int)(uf * al);
  }
  const double al = (double)(n - k) / (double)(m - 1);
  return (int64_t)(int)(((double)o + u) * al) - (int64_t)(int)(u * al);
}

/* Fractional max pool reference: samples [planes, nsp] (W, H for 2-D; D, H, W for 3-D). */
static void ref_frac(const xcase *c, const geo *g, const double *smp, int f32, const double *x,
                     const double *cot, double *y, int32_t *idx, double *dx) {
  const int64_t planes = c->N * c->C, ni = g->in[0] * g->in[1] * g->in[2];
  const int64_t no = g->out[0] * g->out[1] * g->out[2];
  memset(dx, 0, sizeof(double) * (size_t)(planes * ni));
  for (int64_t pl = 0; pl < planes; pl++) {
    const double *sp = smp + pl * c->nsp;
    const double u[3] = {c->nsp == 3 ? sp[0] : 0, sp[1], c->nsp == 3 ? sp[2] : sp[0]};
    for (int64_t od = 0; od < g->out[0]; od++)
      for (int64_t oh = 0; oh < g->out[1]; oh++)
        for (int64_t ow = 0; ow < g->out[2]; ow++) {
          const int64_t d0 = frac_start(od, g->in[0], g->out[0], g->k[0], u[0], f32);
          const int64_t h0 = frac_start(oh, g->in[1], g->out[1], g->k[1], u[1], f32);
          const int64_t w0 = frac_start(ow, g->in[2], g->out[2], g->k[2], u[2], f32);
          double best = -INFINITY;
          int64_t bi = (d0 * g->in[1] + h0) * g->in[2] + w0;
          for (int64_t a = d0; a < d0 + g->k[0]; a++)
            for (int64_t b = h0; b < h0 + g->k[1]; b++)
              for (int64_t e = w0; e < w0 + g->k[2]; e++) {
                int64_t i = (a * g->in[1] + b) * g->in[2] + e;
                if (x[pl * ni + i] > best) best = x[pl * ni + i], bi = i;
              }
          const int64_t o = pl * no + (od * g->out[1] + oh) * g->out[2] + ow;
          y[o] = best, idx[o] = (int32_t)bi;
          dx[pl * ni + bi] += cot[o];
        }
  }
}

/* LRN reference: y = x / (k + alpha/size * sum of squares over the channel window)^beta. */
static void ref_lrn(const xcase *c, int64_t rest, const double *x, const double *cot, double *y,
                    double *dx) {
  const int64_t C = c->C, sz = c->lrn_size, lo = sz / 2, hi = (sz - 1) / 2;
  const int64_t n = c->N * C * rest;
  double *den = malloc(sizeof(double) * (size_t)n);
  for (int64_t b = 0; b < c->N; b++)
    for (int64_t ch = 0; ch < C; ch++)
      for (int64_t r = 0; r < rest; r++) {
        double s = 0;
        for (int64_t q = ch - lo; q <= ch + hi; q++)
          if (q >= 0 && q < C) s += x[(b * C + q) * rest + r] * x[(b * C + q) * rest + r];
        den[(b * C + ch) * rest + r] = c->kk + c->alpha / (double)sz * s;
      }
  memset(dx, 0, sizeof(double) * (size_t)n);
  for (int64_t b = 0; b < c->N; b++)
    for (int64_t ch = 0; ch < C; ch++)
      for (int64_t r = 0; r < rest; r++) {
        const int64_t i = (b * C + ch) * rest + r;
        const double D = den[i], Db = pow(D, c->beta);
        y[i] = x[i] / Db;
        dx[i] += cot[i] / Db;
        /* d y_i / d D_i = -beta x_i D^(-beta-1); dD_i / dx_q = 2 alpha/size x_q */
        const double gD = -cot[i] * c->beta * x[i] * pow(D, -c->beta - 1);
        for (int64_t q = ch - lo; q <= ch + hi; q++)
          if (q >= 0 && q < C) {
            const int64_t j = (b * C + q) * rest + r;
            dx[j] += gD * 2 * c->alpha / (double)sz * x[j];
          }
      }
  free(den);
}

/* ---- random configurations against the references ------------------------------------------- */

static void shape_of(const xcase *c, const int64_t *sp, int64_t *s) {
  s[0] = c->N, s[1] = c->C;
  for (int i = 0; i < c->nsp; i++) s[2 + i] = sp[i];
}

/* Runs c on x (host values, shape xs) under lam_vjp with cot and compares y,
 * dx and (max pools) the indices with the references' ref_y, ref_dx, ref_idx. */
static void check_case(lam_ctx *ctx, xcase *c, lam_dtype dt, int ndx, const int64_t *xs,
                       const double *x, int ndy, const int64_t *ys, const double *cot,
                       const double *ref_y, const double *ref_dx, const int32_t *ref_idx,
                       double tol, const char *what) {
  lam_tensor *tx = tu_from_f64(ctx, dt, ndx, xs, x), *tc = tu_from_f64(ctx, dt, ndy, ys, cot);
  lam_tensor *out = NULL, *grad = NULL;
  cr_assert_eq(lam_vjp(ctx, run_fn, c, &tx, 1, tc, &out, &grad), LAM_OK, "%s: %s", what,
               lam_last_error());
  cr_assert_eq(lam_tensor_ndim(out), ndy, "%s: rank", what);
  for (int i = 0; i < ndy; i++)
    cr_assert_eq(lam_tensor_shape(out)[i], ys[i], "%s: dim %d is %lld, want %lld", what, i,
                 (long long)lam_tensor_shape(out)[i], (long long)ys[i]);
  const int64_t ny = tu_numel(ndy, ys), nx = tu_numel(ndx, xs);
  tu_assert_tensor_close(out, ref_y, ny, tol, tol, what);
  char w2[256];
  snprintf(w2, sizeof w2, "%s grad", what);
  tu_assert_tensor_close(grad, ref_dx, nx, tol, tol, w2);
  if (ref_idx) {
    cr_assert(c->got_idx, "%s: no indices", what);
    cr_assert_eq(lam_tensor_dtype(c->got_idx), LAM_I32);
    double *gi = tu_to_f64(c->got_idx);
    for (int64_t i = 0; i < ny; i++)
      cr_assert_eq((int32_t)gi[i], ref_idx[i], "%s: index %lld is %d, want %d", what, (long long)i,
                   (int32_t)gi[i], ref_idx[i]);
    free(gi);
  }
  lam_tensor_free(c->got_idx);
  c->got_idx = NULL;
  /* without a tape the forward alone agrees (and still returns the indices) */
  lam_tensor *plain = run(c, tx);
  tu_assert_tensor_close(plain, ref_y, ny, tol, tol, what);
  if (ref_idx) {
    double *gi = tu_to_f64(c->got_idx);
    for (int64_t i = 0; i < ny; i++) cr_assert_eq((int32_t)gi[i], ref_idx[i], "%s: plain index", what);
    free(gi);
  }
  lam_tensor_free(c->got_idx);
  c->got_idx = NULL;
  lam_tensor_free(plain);
  lam_tensor_free(out), lam_tensor_free(grad), lam_tensor_free(tx), lam_tensor_free(tc);
}

static const int64_t kSizes[] = {1, 5, 17, 2, 4, 8, 11};

/* A random fixed-window or adaptive pool case of kind K_MAXIDX, K_DIV or K_LP. */
static xcase random_pool_case(tu_rng *r, int kind, int nsp, geo *g) {
  for (;;) {
    xcase c;
    memset(&c, 0, sizeof c);
    c.kind = kind, c.nsp = nsp;
    c.N = tu_randint(r, 1, 3), c.C = tu_randint(r, 1, 4);
    c.adaptive = kind == K_MAXIDX && tu_randint(r, 0, 3) == 0;
    int64_t vol = 1;
    for (int i = 0; i < nsp; i++) {
      c.in[i] = kSizes[tu_randint(r, 0, 7)];
      if (nsp == 3 && c.in[i] > 8) c.in[i] = tu_randint(r, 1, 9);
      c.k[i] = (int)tu_randint(r, 1, 5);
      c.s[i] = (int)tu_randint(r, 0, 4);
      if (kind != K_LP) c.p[i] = (int)tu_randint(r, 0, c.k[i] / 2 + 1);
      if (kind == K_MAXIDX) c.d[i] = (int)tu_randint(r, 1, 3);
      c.size[i] = tu_randint(r, 1, 10);
      vol *= c.in[i];
    }
    c.ceil = (int)tu_randint(r, 0, 2);
    if (kind == K_DIV) c.exclude = (int)tu_randint(r, 0, 2), c.divisor = (int)tu_randint(r, 1, 12);
    if (kind == K_LP) {
      static const double ps[] = {1.5, 2, 3, 1};
      c.lp = ps[tu_randint(r, 0, 4)];
    }
    if (vol * c.N * c.C > 6000 || !make_geo(&c, g)) continue;
    return c;
  }
}

static void random_pool_suite(int kind, int ncases, uint64_t seed) {
  static const char *const kn[] = {"max_idx", "", "avg_divisor", "lp"};
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(seed);
  tu_mark m = tu_mark_now(ctx);
  for (int nsp = 1; nsp <= 3; nsp++)
    for (int i = 0; i < ncases; i++) {
      geo g;
      xcase c = random_pool_case(&r, kind, nsp, &g);
      int64_t xs[5], ys[5];
      shape_of(&c, c.in, xs);
      int64_t osp[3];
      for (int d = 0; d < nsp; d++) osp[d] = g.out[3 - nsp + d];
      shape_of(&c, osp, ys);
      const int64_t nx = tu_numel(nsp + 2, xs), ny = tu_numel(nsp + 2, ys);
      double *x = malloc(8 * (size_t)nx), *cot = malloc(8 * (size_t)ny);
      double *y = malloc(8 * (size_t)ny), *dx = malloc(8 * (size_t)nx);
      int32_t *idx = malloc(4 * (size_t)ny);
      for (int dt = 0; dt < 2; dt++) {
        /* LP: positive inputs (x^p of a negative x is NaN for fractional p) */
        tu_fill_uniform_f64(&r, x, nx, kind == K_LP ? 0.1 : -1, 1);
        tu_fill_uniform_f64(&r, cot, ny, -1, 1);
        for (int64_t e = 0; e < nx; e++) x[e] = (float)x[e]; /* same maxima in both precisions */
        ref_pool(&c, &g, kind == K_MAXIDX ? 0 : kind == K_DIV ? 1 : 2, x, cot, y, idx, dx);
        char what[256];
        snprintf(what, sizeof what,
                 "%s%dd case %d (%s): N%lld C%lld in %lld,%lld,%lld k %d,%d,%d s %d,%d,%d p "
                 "%d,%d,%d d %d,%d,%d ceil %d adaptive %d (%lld,%lld,%lld) excl %d div %d p %g",
                 kn[kind], nsp, i, dt ? "f64" : "f32", (long long)c.N, (long long)c.C,
                 (long long)c.in[0], (long long)c.in[1], (long long)c.in[2], c.k[0], c.k[1], c.k[2],
                 c.s[0], c.s[1], c.s[2], c.p[0], c.p[1], c.p[2], c.d[0], c.d[1], c.d[2], c.ceil,
                 c.adaptive, (long long)c.size[0], (long long)c.size[1], (long long)c.size[2],
                 c.exclude, c.divisor, c.lp);
        check_case(ctx, &c, dt ? LAM_F64 : LAM_F32, nsp + 2, xs, x, nsp + 2, ys, cot, y, dx,
                   kind == K_MAXIDX ? idx : NULL, dt ? 1e-11 : 2e-5, what);
      }
      free(x), free(cot), free(y), free(dx), free(idx);
    }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

Test(pool_extra, random_max_indices) { random_pool_suite(K_MAXIDX, tu_small() ? 2 : 12, 71); }
Test(pool_extra, random_divisor_override) { random_pool_suite(K_DIV, tu_small() ? 2 : 10, 72); }
Test(pool_extra, random_lp) { random_pool_suite(K_LP, tu_small() ? 2 : 10, 73); }

/* Max unpooling: random indices with duplicates and out-of-range entries. */
Test(pool_extra, random_unpool) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(74);
  tu_mark m = tu_mark_now(ctx);
  const int ncases = tu_small() ? 2 : 10;
  for (int nsp = 1; nsp <= 3; nsp++)
    for (int ci = 0; ci < ncases; ci++) {
      xcase c;
      memset(&c, 0, sizeof c);
      c.kind = K_UNPOOL, c.nsp = nsp, c.N = tu_randint(&r, 1, 3), c.C = tu_randint(&r, 1, 4);
      int64_t osp[3];
      for (int i = 0; i < nsp; i++) {
        c.in[i] = tu_randint(&r, 1, nsp == 3 ? 5 : 9);
        c.k[i] = (int)tu_randint(&r, 1, 4);
        c.s[i] = (int)tu_randint(&r, 0, 4);
        const int64_t s = c.s[i] ? c.s[i] : c.k[i];
        c.p[i] = (int)tu_randint(&r, 0, c.k[i] / 2 + 1);
        const int64_t def = (c.in[i] - 1) * s - 2 * c.p[i] + c.k[i];
        if (def < 1) { /* redraw this dim */
          i--;
          continue;
        }
        const int64_t lo = def - s + 1 > 1 ? def - s + 1 : 1;
        c.size[i] = tu_randint(&r, 0, 2) ? tu_randint(&r, lo, def + s) : 0;
        osp[i] = c.size[i] ? c.size[i] : def;
      }
      int64_t xs[5], ys[5];
      shape_of(&c, c.in, xs);
      shape_of(&c, osp, ys);
      const int64_t nx = tu_numel(nsp + 2, xs), ny = tu_numel(nsp + 2, ys);
      const int64_t planes = c.N * c.C, px = nx / planes, py = ny / planes;
      double *x = malloc(8 * (size_t)nx), *cot = malloc(8 * (size_t)ny), *iv = malloc(8 * (size_t)nx);
      double *y = malloc(8 * (size_t)ny), *dx = malloc(8 * (size_t)nx);
      for (int64_t i = 0; i < nx; i++) /* mostly in range, some duplicates, a few outside */
        iv[i] = (double)tu_randint(&r, -1, py + 1);
      lam_tensor *ti = tu_from_f64(ctx, LAM_I32, nsp + 2, xs, iv);
      c.idx = ti;
      for (int dt = 0; dt < 2; dt++) {
        tu_fill_uniform_f64(&r, x, nx, -1, 1);
        tu_fill_uniform_f64(&r, cot, ny, -1, 1);
        memset(y, 0, 8 * (size_t)ny);
        for (int64_t pl = 0; pl < planes; pl++)
          for (int64_t i = 0; i < px; i++) {
            const int64_t e = (int64_t)iv[pl * px + i];
            const bool in = e >= 0 && e < py;
            if (in) y[pl * py + e] = x[pl * px + i];
            dx[pl * px + i] = in ? cot[pl * py + e] : 0;
          }
        char what[200];
        snprintf(what, sizeof what, "unpool%dd case %d (%s): in %lld,%lld,%lld k %d,%d,%d s %d,%d,%d "
                 "p %d,%d,%d size %lld,%lld,%lld", nsp, ci, dt ? "f64" : "f32", (long long)c.in[0],
                 (long long)c.in[1], (long long)c.in[2], c.k[0], c.k[1], c.k[2], c.s[0], c.s[1],
                 c.s[2], c.p[0], c.p[1], c.p[2], (long long)c.size[0], (long long)c.size[1],
                 (long long)c.size[2]);
        check_case(ctx, &c, dt ? LAM_F64 : LAM_F32, nsp + 2, xs, x, nsp + 2, ys, cot, y, dx, NULL,
                   dt ? 1e-12 : 1e-6, what);
      }
      lam_tensor_free(ti);
      free(x), free(cot), free(iv), free(y), free(dx);
    }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* Fractional max pooling with samples drawn from a key: the same key's
 * lam_random_uniform gives the samples the reference uses; explicit samples
 * give the same result. */
Test(pool_extra, random_fractional) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(75);
  tu_mark m = tu_mark_now(ctx);
  const int ncases = tu_small() ? 2 : 10;
  for (int nsp = 2; nsp <= 3; nsp++)
    for (int ci = 0; ci < ncases; ci++)
      for (int dt = 0; dt < 2; dt++) {
        xcase c;
        memset(&c, 0, sizeof c);
        c.kind = K_FRAC, c.nsp = nsp, c.N = tu_randint(&r, 1, 3), c.C = tu_randint(&r, 1, 4);
        c.key = lam_rng_key_make((uint64_t)(1000 + ci * 2 + dt));
        geo g;
        for (int i = 0; i < 3; i++) g.in[i] = g.out[i] = g.k[i] = 1;
        for (int i = 0; i < nsp; i++) {
          const int a = 3 - nsp + i;
          c.in[i] = tu_randint(&r, 2, nsp == 3 ? 9 : 30);
          c.k[i] = (int)tu_randint(&r, 1, c.in[i] < 4 ? c.in[i] : 4);
          const int64_t maxout = c.in[i] - c.k[i] + 1;
          if (tu_randint(&r, 0, 2)) {
            c.size[i] = tu_randint(&r, 1, maxout + 1);
          } else {
            c.ratio[i] = tu_uniform(&r, 0.05, 0.95);
            int64_t o = (int64_t)((double)c.in[i] * c.ratio[i]);
            if (o < 1 || o > maxout) c.ratio[i] = 0, c.size[i] = maxout;
          }
          g.in[a] = c.in[i], g.k[a] = c.k[i];
          g.out[a] = c.size[i] ? c.size[i] : (int64_t)((double)c.in[i] * c.ratio[i]);
        }
        const lam_dtype t = dt ? LAM_F64 : LAM_F32;
        lam_tensor *smp = lam_random_uniform(ctx, c.key, t, 3, (int64_t[]){c.N, c.C, nsp}, 0, 1);
        double *sv = tu_to_f64(smp);
        int64_t xs[5], ys[5], osp[3];
        for (int i = 0; i < nsp; i++) osp[i] = g.out[3 - nsp + i];
        shape_of(&c, c.in, xs);
        shape_of(&c, osp, ys);
        const int64_t nx = tu_numel(nsp + 2, xs), ny = tu_numel(nsp + 2, ys);
        double *x = malloc(8 * (size_t)nx), *cot = malloc(8 * (size_t)ny);
        double *y = malloc(8 * (size_t)ny), *dx = malloc(8 * (size_t)nx);
        int32_t *idx = malloc(4 * (size_t)ny);
        tu_fill_uniform_f64(&r, x, nx, -1, 1);
        tu_fill_uniform_f64(&r, cot, ny, -1, 1);
        for (int64_t e = 0; e < nx; e++) x[e] = (float)x[e];
        ref_frac(&c, &g, sv, !dt, x, cot, y, idx, dx);
        char what[200];
        snprintf(what, sizeof what, "fractional%dd case %d (%s): in %lld,%lld,%lld k %d,%d,%d out "
                 "%lld,%lld,%lld", nsp, ci, dt ? "f64" : "f32", (long long)c.in[0], (long long)c.in[1],
                 (long long)c.in[2], c.k[0], c.k[1], c.k[2], (long long)osp[0], (long long)osp[1],
                 (long long)(nsp == 3 ? osp[2] : 0));
        check_case(ctx, &c, t, nsp + 2, xs, x, nsp + 2, ys, cot, y, dx, idx, dt ? 1e-12 : 1e-6, what);
        c.samples = smp; /* explicit samples: the same result */
        c.key = lam_rng_key_make(99999);
        check_case(ctx, &c, t, nsp + 2, xs, x, nsp + 2, ys, cot, y, dx, idx, dt ? 1e-12 : 1e-6, what);
        lam_tensor_free(smp);
        free(sv), free(x), free(cot), free(y), free(dx), free(idx);
      }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

Test(pool_extra, random_local_response_norm) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(76);
  tu_mark m = tu_mark_now(ctx);
  const int ncases = tu_small() ? 3 : 12;
  for (int ci = 0; ci < ncases; ci++) {
    xcase c;
    memset(&c, 0, sizeof c);
    c.kind = K_LRN;
    const int nd = (int)tu_randint(&r, 3, 6);
    int64_t xs[5];
    xs[0] = c.N = tu_randint(&r, 1, 3);
    xs[1] = c.C = tu_randint(&r, 1, 10);
    int64_t rest = 1;
    for (int i = 2; i < nd; i++) rest *= xs[i] = tu_randint(&r, 1, 6);
    c.lrn_size = tu_randint(&r, 1, c.C + 4);
    c.alpha = tu_uniform(&r, 0.01, 2), c.beta = tu_uniform(&r, 0.2, 1.5), c.kk = tu_uniform(&r, 0.5, 2);
    const int64_t n = tu_numel(nd, xs);
    double *x = malloc(8 * (size_t)n), *cot = malloc(8 * (size_t)n), *y = malloc(8 * (size_t)n);
    double *dx = malloc(8 * (size_t)n);
    for (int dt = 0; dt < 2; dt++) {
      tu_fill_uniform_f64(&r, x, n, -2, 2);
      tu_fill_uniform_f64(&r, cot, n, -1, 1);
      ref_lrn(&c, rest, x, cot, y, dx);
      char what[160];
      snprintf(what, sizeof what, "lrn case %d (%s): rank %d C %lld size %lld a %g b %g k %g", ci,
               dt ? "f64" : "f32", nd, (long long)c.C, (long long)c.lrn_size, c.alpha, c.beta, c.kk);
      check_case(ctx, &c, dt ? LAM_F64 : LAM_F32, nd, xs, x, nd, xs, cot, y, dx, NULL,
                 dt ? 1e-11 : 2e-5, what);
    }
    free(x), free(cot), free(y), free(dx);
  }
  /* the defaults are nn.LocalResponseNorm's; LAM_ZERO gives a real zero */
  lam_local_response_norm_opts d = lam_local_response_norm_defaults();
  cr_assert(d.alpha == 1e-4 && d.beta == 0.75 && d.k == 1.0);
  lam_tensor *x = tu_rand_f64(ctx, &r, 3, (int64_t[]){2, 5, 3}, -1, 1);
  lam_tensor *a = lam_local_response_norm(x, 3, NULL), *b = lam_local_response_norm(x, 3, &d);
  lam_tensor *z = lam_local_response_norm(x, 3, &(lam_local_response_norm_opts){.beta = LAM_ZERO});
  cr_assert(a && b && z, "%s", lam_last_error());
  cr_assert(tu_bits_equal(a, b));
  cr_assert(tu_bits_equal(z, x), "beta 0 gives x");
  lam_tensor_free(a), lam_tensor_free(b), lam_tensor_free(z), lam_tensor_free(x);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- PyTorch golden ------------------------------------------------------------------------ */

static void ints3(const tu_golden *g, int *v, const char *grp, const char *name, const char *key) {
  cr_assert_eq(tu_golden_ints(g, v, 3, "%s.%s.%s", grp, name, key), 3, "%s.%s.%s", grp, name, key);
}

/* Runs golden case grp.name (x, cot, y, gx, optional idx) in f32 and f64
 * (only `only` when >= 0). */
static void golden_case(lam_ctx *ctx, const tu_golden *gold, xcase *c, const char *grp,
                        const char *name, int only, double tol32, double tol64) {
  const tu_array *x = tu_golden_get(gold, "%s.%s.x", grp, name);
  const tu_array *y = tu_golden_get(gold, "%s.%s.y", grp, name);
  const double *cot = tu_golden_values(gold, "%s.%s.cot", grp, name);
  const double *gx = tu_golden_values(gold, "%s.%s.gx", grp, name);
  const tu_array *gi = tu_golden_find(gold, "%s.%s.idx", grp, name);
  const tu_array *smp = tu_golden_find(gold, "%s.%s.samples", grp, name);
  c->N = x->shape[0], c->C = x->shape[1];
  int32_t *ri = NULL;
  if (gi && c->kind != K_UNPOOL) {
    ri = malloc(4 * (size_t)gi->n);
    for (int64_t i = 0; i < gi->n; i++) ri[i] = (int32_t)gi->v[i];
  }
  for (int dt = 0; dt < 2; dt++) {
    if (only >= 0 && dt != only) continue;
    const lam_dtype t = dt ? LAM_F64 : LAM_F32;
    lam_tensor *ti = c->kind == K_UNPOOL ? tu_from_f64(ctx, LAM_I32, gi->ndim, gi->shape, gi->v) : NULL;
    lam_tensor *ts = smp ? tu_from_f64(ctx, t, smp->ndim, smp->shape, smp->v) : NULL;
    c->idx = ti, c->samples = ts;
    char what[128];
    snprintf(what, sizeof what, "golden %s.%s (%s)", grp, name, dt ? "f64" : "f32");
    check_case(ctx, c, t, x->ndim, x->shape, x->v, y->ndim, y->shape, cot, y->v, gx, ri,
               dt ? tol64 : tol32, what);
    lam_tensor_free(ti), lam_tensor_free(ts);
    c->idx = c->samples = NULL;
  }
  free(ri);
}

Test(pool_extra, pytorch_golden) {
  lam_ctx *ctx = tu_ctx();
  tu_golden *gold = tu_golden_load("pool_golden.safetensors");
  tu_mark m = tu_mark_now(ctx);
  int total = 0;
  static const char *const groups[] = {"maxidx", "unpool", "divisor", "lp", "frac", "lrn"};
  for (int gi = 0; gi < 6; gi++) {
    char key[32];
    snprintf(key, sizeof key, "%s.cases", groups[gi]);
    const int n = tu_golden_count(gold, key);
    cr_assert(n > 0, "no %s cases", groups[gi]);
    for (int ci = 0; ci < n; ci++) {
      char name[64];
      snprintf(name, sizeof name, "%s", tu_golden_word(gold, key, ci));
      const char *grp = groups[gi];
      xcase c;
      memset(&c, 0, sizeof c);
      c.nsp = tu_golden_get(gold, "%s.%s.x", grp, name)->ndim - 2;
      int only = -1;
      double t32 = 1e-5, t64 = 1e-11;
      if (gi != 5) {
        ints3(gold, c.k, grp, name, "k");
        if (gi != 4) ints3(gold, c.s, grp, name, "s");
      }
      int v[3];
      switch (gi) {
        case 0:
          c.kind = K_MAXIDX;
          c.adaptive = (int)tu_golden_num(gold, "maxidx.%s.adaptive", name);
          c.ceil = (int)tu_golden_num(gold, "maxidx.%s.ceil", name);
          ints3(gold, c.p, grp, name, "p");
          ints3(gold, c.d, grp, name, "d");
          ints3(gold, v, grp, name, "out");
          for (int i = 0; i < 3; i++) c.size[i] = v[i];
          break;
        case 1:
          c.kind = K_UNPOOL;
          ints3(gold, c.p, grp, name, "p");
          ints3(gold, v, grp, name, "size");
          for (int i = 0; i < 3; i++) c.size[i] = v[i];
          break;
        case 2:
          c.kind = K_DIV;
          ints3(gold, c.p, grp, name, "p");
          c.ceil = (int)tu_golden_num(gold, "divisor.%s.ceil", name);
          c.exclude = (int)tu_golden_num(gold, "divisor.%s.exclude", name);
          c.divisor = (int)tu_golden_num(gold, "divisor.%s.divisor", name);
          break;
        case 3:
          c.kind = K_LP;
          c.lp = tu_golden_num(gold, "lp.%s.p", name);
          c.ceil = (int)tu_golden_num(gold, "lp.%s.ceil", name);
          t32 = 5e-5;
          break;
        case 4: {
          c.kind = K_FRAC;
          ints3(gold, v, grp, name, "size");
          double rt[3];
          cr_assert_eq(tu_golden_nums(gold, rt, 3, "frac.%s.ratio", name), 3);
          for (int i = 0; i < 3; i++) c.size[i] = v[i], c.ratio[i] = rt[i];
          only = strcmp(tu_golden_meta(gold, "frac.%s.dtype", name), "f32") == 0 ? 0 : 1;
          t32 = 1e-6;
          break;
        }
        default:
          c.kind = K_LRN;
          c.lrn_size = (int64_t)tu_golden_num(gold, "lrn.%s.size", name);
          c.alpha = tu_golden_num(gold, "lrn.%s.alpha", name);
          c.beta = tu_golden_num(gold, "lrn.%s.beta", name);
          c.kk = tu_golden_num(gold, "lrn.%s.k", name);
          break;
      }
      golden_case(ctx, gold, &c, grp, name, only, t32, t64);
      total++;
    }
  }
  cr_assert(total >= 30, "only %d golden cases", total);
  tu_assert_no_leak(ctx, m);
  tu_golden_free(gold);
  lam_ctx_free(ctx);
}

/* ---- gradient checks (f64) -------------------------------------------------------------------- */

Test(pool_extra, gradcheck) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(77);
  tu_mark m = tu_mark_now(ctx);
  /* avg pools with divisor_override, LP pools (p 2 on signed inputs, 3 and 1.5 on positive) */
  const struct {
    xcase c;
    double lo;
  } cases[] = {
      {{.kind = K_DIV, .nsp = 2, .N = 2, .C = 2, .in = {5, 4}, .k = {3, 2}, .s = {2, 1}, .p = {1, 1},
        .ceil = 1, .divisor = 3}, -1},
      {{.kind = K_DIV, .nsp = 1, .N = 1, .C = 2, .in = {7}, .k = {3}, .s = {2}, .exclude = 1,
        .divisor = 5}, -1},
      {{.kind = K_DIV, .nsp = 3, .N = 1, .C = 1, .in = {3, 4, 3}, .k = {2, 2, 3}, .s = {1, 2, 2},
        .p = {1, 0, 1}, .divisor = 4}, -1},
      {{.kind = K_LP, .nsp = 1, .N = 2, .C = 1, .in = {9}, .k = {3}, .s = {2}, .ceil = 1, .lp = 2}, -1},
      {{.kind = K_LP, .nsp = 2, .N = 1, .C = 2, .in = {5, 6}, .k = {2, 3}, .s = {2, 2}, .lp = 3}, 0.2},
      {{.kind = K_LP, .nsp = 3, .N = 1, .C = 1, .in = {3, 4, 5}, .k = {2, 2, 2}, .s = {1, 2, 2},
        .ceil = 1, .lp = 1.5}, 0.2},
      {{.kind = K_LRN, .N = 2, .C = 5, .lrn_size = 3, .alpha = 0.5, .beta = 0.75, .kk = 1}, -1},
      {{.kind = K_LRN, .N = 1, .C = 6, .lrn_size = 4, .alpha = 1.5, .beta = 1.2, .kk = 0.7}, -1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    xcase c = cases[i].c;
    int64_t xs[5];
    int nd = c.nsp + 2;
    if (c.kind == K_LRN) {
      nd = i % 2 ? 4 : 3;
      xs[0] = c.N, xs[1] = c.C, xs[2] = 3, xs[3] = 2;
    } else {
      shape_of(&c, c.in, xs);
    }
    lam_tensor *x = tu_rand_f64(ctx, &r, nd, xs, cases[i].lo, 1);
    char what[32];
    snprintf(what, sizeof what, "gradcheck %zu", i);
    tu_gradcheck(ctx, run_fn, &c, &x, 1, 1e-6, 1e-6, 1, 1e-4, what);
    lam_tensor_free(c.got_idx);
    lam_tensor_free(x);
  }
  /* max unpooling (indices of a max pool with disjoint windows: with shared
   * indices torch's gradient, a gather, is not the derivative of the
   * last-wins forward; the golden case unpool2d_overlap checks it is torch's) */
  lam_tensor *src = tu_rand_f64(ctx, &r, 4, (int64_t[]){1, 2, 6, 5}, -1, 1), *ix = NULL;
  lam_tensor *pooled = lam_max_pool2d_with_indices(
      src, &(lam_pool_opts){.kernel = {2, 2}, .ceil_mode = true}, &ix);
  cr_assert(pooled && ix, "%s", lam_last_error());
  xcase u = {.kind = K_UNPOOL, .nsp = 2, .k = {2, 2}, .size = {6, 5}, .idx = ix};
  tu_gradcheck(ctx, run_fn, &u, &pooled, 1, 1e-6, 1e-6, 1, 1e-5, "unpool gradcheck");
  /* fractional max pooling, explicit samples (ties impossible: uniform x) */
  lam_tensor *smp = lam_random_uniform(ctx, lam_rng_key_make(5), LAM_F64, 3, (int64_t[]){1, 2, 2}, 0, 1);
  xcase f = {.kind = K_FRAC, .nsp = 2, .k = {2, 3}, .size = {3, 2}, .samples = smp};
  tu_gradcheck(ctx, run_fn, &f, &src, 1, 1e-6, 1e-6, 0, 0, "fractional2d gradcheck");
  lam_tensor_free(f.got_idx);
  lam_tensor *x3 = tu_rand_f64(ctx, &r, 5, (int64_t[]){1, 1, 5, 4, 6}, -1, 1);
  xcase f3 = {.kind = K_FRAC, .nsp = 3, .k = {2, 2, 2}, .ratio = {0.5, 0.6, 0.5}, .key = lam_rng_key_make(6)};
  tu_gradcheck(ctx, run_fn, &f3, &x3, 1, 1e-6, 1e-6, 0, 0, "fractional3d gradcheck");
  lam_tensor_free(f3.got_idx);
  lam_tensor_free(smp), lam_tensor_free(x3), lam_tensor_free(pooled), lam_tensor_free(ix);
  lam_tensor_free(src);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- layers ------------------------------------------------------------------------------------ */

static lam_tensor *apply_layer(lam_layer *l, lam_tensor *x, const lam_apply_opts *o) {
  lam_vars *v = NULL;
  cr_assert_eq(lam_layer_init(l, lam_tensor_ctx(x), lam_rng_key_make(1), lam_tensor_dtype(x), &v),
               LAM_OK, "%s", lam_last_error());
  lam_tensor *y = NULL;
  lam_status st = lam_layer_apply(l, v, x, o, &y);
  lam_vars_free(v);
  return st == LAM_OK ? y : NULL;
}

Test(pool_extra, layers) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(78);
  lam_tensor *x2 = tu_rand_f64(ctx, &r, 4, (int64_t[]){2, 3, 9, 8}, 0.1, 1);
  lam_tensor *x3 = tu_rand_f64(ctx, &r, 5, (int64_t[]){1, 2, 5, 6, 7}, -1, 1);
  lam_tensor *x1 = tu_rand_f64(ctx, &r, 3, (int64_t[]){2, 3, 11}, 0.1, 1);
  tu_mark m = tu_mark_now(ctx);
  /* 3-d adaptive layers = their ops */
  lam_layer *aa = lam_nn_adaptive_avg_pool3d(2, 3, 4), *am = lam_nn_adaptive_max_pool3d(3, 1, 5);
  cr_assert(aa && am, "%s", lam_last_error());
  cr_assert_str_eq(lam_layer_name(aa), "adaptive_avg_pool3d");
  cr_assert_str_eq(lam_layer_name(am), "adaptive_max_pool3d");
  lam_tensor *ya = apply_layer(aa, x3, NULL), *yo = lam_adaptive_avg_pool3d(x3, 2, 3, 4);
  cr_assert(ya && yo && tu_bits_equal(ya, yo), "%s", lam_last_error());
  lam_tensor_free(ya), lam_tensor_free(yo);
  /* lam_nn_max_pool_apply: the layer's output and the op's indices */
  lam_tensor *y = NULL, *ix = NULL, *iw = NULL;
  cr_assert_eq(lam_nn_max_pool_apply(am, x3, NULL, &y, &ix), LAM_OK, "%s", lam_last_error());
  lam_tensor *yw = lam_adaptive_max_pool3d_with_indices(x3, 3, 1, 5, &iw);
  cr_assert(tu_bits_equal(y, yw) && tu_bits_equal(ix, iw));
  lam_tensor_free(y), lam_tensor_free(ix), lam_tensor_free(yw), lam_tensor_free(iw);
  lam_layer *mp = lam_nn_max_pool2d(&(lam_pool_opts){.kernel = {3, 2}, .stride = {2, 2}, .padding = {1, 0}});
  cr_assert_eq(lam_nn_max_pool_apply(mp, x2, NULL, &y, &ix), LAM_OK, "%s", lam_last_error());
  yw = lam_max_pool2d_with_indices(x2, &(lam_pool_opts){.kernel = {3, 2}, .stride = {2, 2}, .padding = {1, 0}}, &iw);
  cr_assert(tu_bits_equal(y, yw) && tu_bits_equal(ix, iw));
  /* ... and a max-unpool layer puts the maxima back where they were */
  lam_layer *un = lam_nn_max_unpool2d(&(lam_max_unpool_opts){.kernel = {3, 2}, .stride = {2, 2}, .padding = {1, 0}});
  cr_assert(un, "%s", lam_last_error());
  cr_assert_str_eq(lam_layer_name(un), "max_unpool2d");
  lam_tensor *back = NULL;
  cr_assert_eq(lam_nn_max_unpool_apply(un, y, ix, (const int64_t[]){9, 8}, &back), LAM_OK, "%s",
               lam_last_error());
  cr_assert(lam_tensor_shape(back)[2] == 9 && lam_tensor_shape(back)[3] == 8);
  lam_tensor *re = lam_max_unpool2d(y, ix, &(lam_max_unpool_opts){.kernel = {3, 2}, .stride = {2, 2},
                                                                  .padding = {1, 0}, .output_size = {9, 8}});
  cr_assert(tu_bits_equal(back, re));
  lam_tensor *again = lam_max_pool2d(back, &(lam_pool_opts){.kernel = {3, 2}, .stride = {2, 2}, .padding = {1, 0}});
  cr_assert(tu_bits_equal(again, y), "unpool then pool gives the pooled values back");
  lam_tensor_free(again), lam_tensor_free(re), lam_tensor_free(back);
  tu_assert_status(lam_nn_max_unpool_apply(un, y, ix, (const int64_t[]){20, 8}, &back),
                   LAM_ERR_INVALID_ARGUMENT, "strictly between");
  cr_assert(!back);
  lam_tensor *yl = NULL;
  lam_vars *v = NULL;
  cr_assert_eq(lam_layer_init(un, ctx, lam_rng_key_make(1), LAM_F64, &v), LAM_OK);
  tu_assert_status(lam_layer_apply(un, v, y, NULL, &yl), LAM_ERR_INVALID_ARGUMENT,
                   "lam_nn_max_unpool_apply");
  lam_vars_free(v);
  lam_tensor *no_ix = NULL;
  tu_assert_status(lam_nn_max_pool_apply(un, x2, NULL, &yl, &no_ix), LAM_ERR_INVALID_ARGUMENT,
                   "not a max pool");
  tu_assert_status(lam_nn_max_unpool_apply(mp, y, iw, NULL, &yl), LAM_ERR_INVALID_ARGUMENT,
                   "not a max_unpool layer");
  tu_assert_status(lam_nn_max_pool_apply(mp, x3, NULL, &yl, &no_ix), LAM_ERR_SHAPE, "max_pool2d expects");
  cr_assert(!yl && !no_ix);
  lam_tensor_free(y), lam_tensor_free(yw), lam_tensor_free(iw), lam_tensor_free(ix);
  /* LP layers = their ops */
  lam_layer *lp1 = lam_nn_lp_pool1d(2, &(lam_pool_opts){.kernel = {3}, .stride = {2}, .ceil_mode = true});
  lam_layer *lp2 = lam_nn_lp_pool2d(3, &(lam_pool_opts){.kernel = {2, 3}});
  lam_layer *lp3 = lam_nn_lp_pool3d(1.5, NULL);
  cr_assert(lp1 && lp2 && lp3, "%s", lam_last_error());
  cr_assert_str_eq(lam_layer_name(lp2), "lp_pool2d");
  lam_tensor *a = apply_layer(lp1, x1, NULL), *b = lam_lp_pool1d(x1, 2, &(lam_pool_opts){.kernel = {3}, .stride = {2}, .ceil_mode = true});
  cr_assert(a && b && tu_bits_equal(a, b), "%s", lam_last_error());
  lam_tensor_free(a), lam_tensor_free(b);
  a = apply_layer(lp2, x2, NULL), b = lam_lp_pool2d(x2, 3, &(lam_pool_opts){.kernel = {2, 3}});
  cr_assert(a && b && tu_bits_equal(a, b) && lam_tensor_shape(a)[2] == 4 && lam_tensor_shape(a)[3] == 2);
  lam_tensor_free(a), lam_tensor_free(b);
  lam_tensor *x3p = lam_abs(x3);
  a = apply_layer(lp3, x3p, NULL), b = lam_lp_pool3d(x3p, 1.5, NULL);
  cr_assert(a && b && tu_bits_equal(a, b));
  lam_tensor_free(a), lam_tensor_free(b), lam_tensor_free(x3p);
  cr_assert(!apply_layer(lp2, x1, NULL));
  cr_assert(strstr(lam_last_error(), "lp_pool2d expects [N, C, H, W]"), "%s", lam_last_error());
  /* fractional layers draw samples from the apply rng: the op with that key */
  lam_layer *fr = lam_nn_fractional_max_pool2d(&(lam_fractional_max_pool_opts){.kernel = {2, 2}, .output_size = {4, 5}});
  lam_layer *fr3 = lam_nn_fractional_max_pool3d(NULL);
  cr_assert(fr && fr3, "%s", lam_last_error());
  cr_assert_str_eq(lam_layer_name(fr), "fractional_max_pool2d");
  const lam_rng_key key = lam_rng_key_make(42);
  lam_apply_opts ao = {.rng = &key};
  a = apply_layer(fr, x2, &ao);
  b = lam_fractional_max_pool2d(x2, key, &(lam_fractional_max_pool_opts){.kernel = {2, 2}, .output_size = {4, 5}}, NULL);
  cr_assert(a && b && tu_bits_equal(a, b), "%s", lam_last_error());
  lam_tensor_free(a), lam_tensor_free(b);
  cr_assert_eq(lam_nn_max_pool_apply(fr3, x3, &ao, &y, &ix), LAM_OK, "%s", lam_last_error());
  b = lam_fractional_max_pool3d(x3, key, NULL, &iw);
  cr_assert(tu_bits_equal(y, b) && tu_bits_equal(ix, iw));
  cr_assert(lam_tensor_shape(y)[2] == 2 && lam_tensor_shape(y)[3] == 3 && lam_tensor_shape(y)[4] == 3);
  lam_tensor_free(y), lam_tensor_free(ix), lam_tensor_free(b), lam_tensor_free(iw);
  cr_assert(!apply_layer(fr, x2, NULL));
  cr_assert(strstr(lam_last_error(), "needs an rng key"), "%s", lam_last_error());
  /* local response norm layer */
  lam_layer *lr = lam_nn_local_response_norm(3, &(lam_local_response_norm_opts){.alpha = 0.3, .k = LAM_ZERO});
  cr_assert(lr, "%s", lam_last_error());
  cr_assert_str_eq(lam_layer_name(lr), "local_response_norm");
  a = apply_layer(lr, x3, NULL);
  b = lam_local_response_norm(x3, 3, &(lam_local_response_norm_opts){.alpha = 0.3, .k = LAM_ZERO});
  cr_assert(a && b && tu_bits_equal(a, b), "%s", lam_last_error());
  lam_tensor_free(a), lam_tensor_free(b);
  lam_layer *all[] = {aa, am, mp, un, lp1, lp2, lp3, fr, fr3, lr};
  for (int i = 0; i < 10; i++) lam_layer_free(all[i]);
  /* constructors validate */
  tu_assert_fails(lam_nn_adaptive_max_pool3d(1, 1, 0), LAM_ERR_INVALID_ARGUMENT, "spatial dim 2");
  tu_assert_fails(lam_nn_avg_pool2d(&(lam_pool_opts){.divisor_override = -1}), LAM_ERR_INVALID_ARGUMENT,
                  "divisor_override -1");
  tu_assert_fails(lam_nn_max_pool2d(&(lam_pool_opts){.divisor_override = 2}), LAM_ERR_INVALID_ARGUMENT,
                  "only average pools");
  tu_assert_fails(lam_nn_lp_pool2d(0, NULL), LAM_ERR_INVALID_ARGUMENT, "norm_type 0");
  tu_assert_fails(lam_nn_lp_pool1d(2, &(lam_pool_opts){.dilation = {2}}), LAM_ERR_INVALID_ARGUMENT,
                  "LP pools take none");
  tu_assert_fails(lam_nn_fractional_max_pool2d(&(lam_fractional_max_pool_opts){.samples = x2}),
                  LAM_ERR_INVALID_ARGUMENT, "samples must be NULL");
  tu_assert_fails(lam_nn_local_response_norm(0, NULL), LAM_ERR_INVALID_ARGUMENT, "size 0");
  tu_assert_fails(lam_nn_max_unpool1d(&(lam_max_unpool_opts){.stride = {-2}}), LAM_ERR_INVALID_ARGUMENT,
                  "stride -2");
  tu_assert_no_leak(ctx, m);
  lam_tensor_free(x1), lam_tensor_free(x2), lam_tensor_free(x3);
  lam_ctx_free(ctx);
}

/* ---- bad input ---------------------------------------------------------------------------------- */

Test(pool_extra, bad_input) {
  lam_ctx *ctx = tu_ctx();
  lam_tensor *x = lam_tensor_zeros(ctx, LAM_F32, 4, (int64_t[]){1, 2, 6, 5});
  lam_tensor *xd = lam_tensor_zeros(ctx, LAM_F64, 4, (int64_t[]){1, 2, 6, 5});
  lam_tensor *xi = lam_tensor_zeros(ctx, LAM_I32, 4, (int64_t[]){1, 2, 6, 5});
  lam_tensor *i3 = lam_tensor_zeros(ctx, LAM_I32, 4, (int64_t[]){1, 2, 3, 5});
  lam_tensor *x2 = lam_tensor_zeros(ctx, LAM_F32, 2, (int64_t[]){2, 6});
  lam_tensor *sm = lam_tensor_zeros(ctx, LAM_F32, 3, (int64_t[]){1, 2, 3});
  lam_tensor *out = NULL;
  tu_mark m = tu_mark_now(ctx);
  const lam_rng_key key = lam_rng_key_make(1);
  /* indices */
  tu_assert_fails(lam_max_pool2d_with_indices(x, NULL, NULL), LAM_ERR_NULL, "indices");
  tu_assert_fails(lam_max_pool1d_with_indices(x, NULL, &out), LAM_ERR_SHAPE, "length");
  cr_assert(!out);
  tu_assert_fails(lam_adaptive_max_pool2d_with_indices(x, 0, 2, &out), LAM_ERR_INVALID_ARGUMENT,
                  "output size 0");
  tu_assert_fails(lam_max_pool2d_with_indices(xi, NULL, &out), LAM_ERR_DTYPE, "i32");
  /* divisor_override */
  tu_assert_fails(lam_avg_pool2d(x, &(lam_pool_opts){.divisor_override = -2}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_avg_pool2d: divisor_override -2");
  tu_assert_fails(lam_max_pool2d(x, &(lam_pool_opts){.divisor_override = 2}), LAM_ERR_INVALID_ARGUMENT,
                  "only average pools");
  /* unpool */
  lam_error_clear();
  tu_assert_fails(lam_max_unpool2d(x, NULL, NULL), LAM_ERR_NULL, "indices");
  tu_assert_fails(lam_max_unpool2d(x, i3, NULL), LAM_ERR_SHAPE, "must have x's shape");
  tu_assert_fails(lam_max_unpool2d(x, x, NULL), LAM_ERR_DTYPE, "indices must be i32");
  tu_assert_fails(lam_max_unpool1d(x, xi, NULL), LAM_ERR_SHAPE, "length");
  tu_assert_fails(lam_max_unpool2d(xi, xi, NULL), LAM_ERR_DTYPE, "i32");
  tu_assert_fails(lam_max_unpool2d(x, xi, &(lam_max_unpool_opts){.output_size = {9, 10}}),
                  LAM_ERR_INVALID_ARGUMENT, "output size 9 of spatial dim 0 must lie strictly between 10 and 14");
  tu_assert_fails(lam_max_unpool2d(x, xi, &(lam_max_unpool_opts){.kernel = {0, -1}}),
                  LAM_ERR_INVALID_ARGUMENT, "kernel -1");
  /* LP */
  tu_assert_fails(lam_lp_pool2d(x, NAN, NULL), LAM_ERR_INVALID_ARGUMENT, "norm_type nan");
  tu_assert_fails(lam_lp_pool2d(x, 2, &(lam_pool_opts){.padding = {1, 0}}), LAM_ERR_INVALID_ARGUMENT,
                  "LP pools take none");
  tu_assert_fails(lam_lp_pool2d(x, 2, &(lam_pool_opts){.exclude_pad = true}), LAM_ERR_INVALID_ARGUMENT,
                  "exclude_pad");
  tu_assert_fails(lam_lp_pool2d(x, 2, &(lam_pool_opts){.kernel = {7, 2}}), LAM_ERR_SHAPE,
                  "lam_lp_pool2d: lam_avg_pool2d: kernel 7");
  tu_assert_fails(lam_lp_pool3d(x, 2, NULL), LAM_ERR_SHAPE, "[N, C, D, H, W]");
  lam_error_clear();
  tu_assert_fails(lam_lp_pool1d(NULL, 2, NULL), LAM_ERR_NULL, "lam_lp_pool1d: x");
  /* fractional */
  tu_assert_fails(lam_fractional_max_pool2d(x, key, &(lam_fractional_max_pool_opts){.output_size = {6, 2}}, NULL),
                  LAM_ERR_SHAPE, "output + kernel - 1 <= the input size 6");
  tu_assert_fails(lam_fractional_max_pool2d(x, key, &(lam_fractional_max_pool_opts){.output_ratio = {1.0, 0.5}}, NULL),
                  LAM_ERR_INVALID_ARGUMENT, "output_ratio 1");
  tu_assert_fails(lam_fractional_max_pool2d(x, key, &(lam_fractional_max_pool_opts){.kernel = {-1}}, NULL),
                  LAM_ERR_INVALID_ARGUMENT, "kernel -1");
  tu_assert_fails(lam_fractional_max_pool2d(x, key, &(lam_fractional_max_pool_opts){.samples = sm}, &out),
                  LAM_ERR_SHAPE, "samples must be [1, 2, 2]");
  cr_assert(!out);
  tu_assert_fails(lam_fractional_max_pool2d(xd, key, &(lam_fractional_max_pool_opts){.samples = sm}, NULL),
                  LAM_ERR_DTYPE, "samples must have x's dtype f64");
  tu_assert_fails(lam_fractional_max_pool3d(x, key, NULL, NULL), LAM_ERR_SHAPE, "[batch, channels, d, h, w]");
  /* LRN */
  tu_assert_fails(lam_local_response_norm(x2, 3, NULL), LAM_ERR_SHAPE, "3 to 5 dims");
  tu_assert_fails(lam_local_response_norm(xi, 3, NULL), LAM_ERR_DTYPE, "i32");
  tu_assert_fails(lam_local_response_norm(x, 0, NULL), LAM_ERR_INVALID_ARGUMENT, "size 0");
  tu_assert_fails(lam_local_response_norm(x, 2, &(lam_local_response_norm_opts){.beta = INFINITY}),
                  LAM_ERR_INVALID_ARGUMENT, "must be finite");
  lam_error_clear();
  tu_assert_fails(lam_local_response_norm(NULL, 2, NULL), LAM_ERR_NULL, "lam_local_response_norm: x");
  tu_assert_no_leak(ctx, m);
  lam_tensor_free(x), lam_tensor_free(xd), lam_tensor_free(xi), lam_tensor_free(i3);
  lam_tensor_free(x2), lam_tensor_free(sm);
  lam_ctx_free(ctx);
}

/* ---- the options rule: NULL, a zeroed struct and the defaults mean the same --------------------- */

Test(pool_extra, options_rule) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(79);
  lam_tensor *x = tu_rand_f32(ctx, &r, 4, (int64_t[]){2, 3, 8, 9}, 0.1, 1);
  lam_tensor *x5 = tu_rand_f32(ctx, &r, 5, (int64_t[]){1, 4, 6, 5, 4}, -1, 1);
  tu_mark m = tu_mark_now(ctx);
  const lam_rng_key key = lam_rng_key_make(3);
  /* lam_pool_opts with the new field (divisor_override 0: none) */
  lam_pool_opts pd = lam_pool_defaults();
  cr_assert_eq(pd.divisor_override, 0);
  lam_tensor *ix = NULL;
  lam_tensor *t[3] = {lam_avg_pool2d(x, NULL), lam_avg_pool2d(x, &(lam_pool_opts){.kernel = {0}}),
                      lam_avg_pool2d(x, &pd)};
  lam_tensor *u[3] = {lam_lp_pool2d(x, 2, NULL), lam_lp_pool2d(x, 2, &(lam_pool_opts){.kernel = {0}}),
                      lam_lp_pool2d(x, 2, &pd)};
  lam_tensor *w[3] = {lam_max_pool2d_with_indices(x, NULL, &ix), NULL, NULL};
  lam_tensor *iy = NULL, *iz = NULL;
  w[1] = lam_max_pool2d_with_indices(x, &(lam_pool_opts){.kernel = {0}}, &iy);
  w[2] = lam_max_pool2d_with_indices(x, &pd, &iz);
  /* lam_max_unpool_opts */
  lam_max_unpool_opts ud = lam_max_unpool_defaults();
  cr_assert(ud.kernel[0] == 2 && ud.stride[0] == 0 && ud.padding[0] == 0 && ud.output_size[0] == 0);
  lam_tensor *v[3] = {lam_max_unpool2d(w[0], ix, NULL), lam_max_unpool2d(w[0], ix, &(lam_max_unpool_opts){.kernel = {0}}),
                      lam_max_unpool2d(w[0], ix, &ud)};
  /* lam_fractional_max_pool_opts */
  lam_fractional_max_pool_opts fd = lam_fractional_max_pool_defaults();
  cr_assert(fd.kernel[1] == 2 && fd.output_ratio[1] == 0.5 && !fd.samples && fd.output_size[0] == 0);
  lam_tensor *f[3] = {lam_fractional_max_pool2d(x, key, NULL, NULL),
                      lam_fractional_max_pool2d(x, key, &(lam_fractional_max_pool_opts){.kernel = {0}}, NULL),
                      lam_fractional_max_pool2d(x, key, &fd, NULL)};
  /* lam_local_response_norm_opts */
  lam_local_response_norm_opts ld = lam_local_response_norm_defaults();
  lam_tensor *l[3] = {lam_local_response_norm(x5, 3, NULL),
                      lam_local_response_norm(x5, 3, &(lam_local_response_norm_opts){.alpha = 0}),
                      lam_local_response_norm(x5, 3, &ld)};
  lam_tensor **all[] = {t, u, w, v, f, l};
  for (int i = 0; i < 6; i++) {
    cr_assert(all[i][0] && all[i][1] && all[i][2], "set %d: %s", i, lam_last_error());
    cr_assert(tu_bits_equal(all[i][0], all[i][1]) && tu_bits_equal(all[i][0], all[i][2]), "set %d", i);
  }
  cr_assert(lam_tensor_shape(v[0])[2] == 8 && lam_tensor_shape(f[0])[2] == 4 && lam_tensor_shape(f[0])[3] == 4);
  cr_assert(tu_bits_equal(ix, iy) && tu_bits_equal(ix, iz));
  for (int i = 0; i < 6; i++)
    for (int j = 0; j < 3; j++) lam_tensor_free(all[i][j]);
  lam_tensor_free(ix), lam_tensor_free(iy), lam_tensor_free(iz);
  /* the layers */
  lam_layer *lay[][3] = {
      {lam_nn_lp_pool2d(2, NULL), lam_nn_lp_pool2d(2, &(lam_pool_opts){.kernel = {0}}), lam_nn_lp_pool2d(2, &pd)},
      {lam_nn_local_response_norm(3, NULL), lam_nn_local_response_norm(3, &(lam_local_response_norm_opts){.alpha = 0}),
       lam_nn_local_response_norm(3, &ld)},
      {lam_nn_fractional_max_pool2d(NULL), lam_nn_fractional_max_pool2d(&(lam_fractional_max_pool_opts){.kernel = {0}}),
       lam_nn_fractional_max_pool2d(&fd)}};
  lam_apply_opts ao = {.rng = &key};
  for (int i = 0; i < 3; i++) {
    lam_tensor *in = i == 1 ? x5 : x, *y[3];
    for (int j = 0; j < 3; j++) {
      cr_assert(lay[i][j], "%s", lam_last_error());
      y[j] = apply_layer(lay[i][j], in, &ao);
      cr_assert(y[j], "%s", lam_last_error());
    }
    cr_assert(tu_bits_equal(y[0], y[1]) && tu_bits_equal(y[0], y[2]), "layer set %d", i);
    for (int j = 0; j < 3; j++) lam_tensor_free(y[j]), lam_layer_free(lay[i][j]);
  }
  tu_assert_no_leak(ctx, m);
  lam_tensor_free(x), lam_tensor_free(x5);
  lam_ctx_free(ctx);
}

/* Samples outside [0, 1) (torch does not check them) keep every window
 * inside the input: the indices stay in the plane (Oclgrind checks the reads). */
Test(pool_extra, fractional_odd_samples) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(80);
  lam_tensor *x = tu_rand_f32(ctx, &r, 4, (int64_t[]){1, 3, 9, 7}, -1, 1);
  const double sv[6] = {7.5, -3.0, NAN, INFINITY, 1e30, -0.5};
  lam_tensor *smp = tu_from_f64(ctx, LAM_F32, 3, (int64_t[]){1, 3, 2}, sv);
  tu_mark m = tu_mark_now(ctx);
  lam_tensor *ix = NULL;
  lam_tensor *y = lam_fractional_max_pool2d(
      x, lam_rng_key_make(1), &(lam_fractional_max_pool_opts){.kernel = {2, 3}, .output_size = {4, 3}, .samples = smp},
      &ix);
  cr_assert(y && ix, "%s", lam_last_error());
  double *iv = tu_to_f64(ix);
  for (int64_t i = 0; i < lam_tensor_numel(ix); i++)
    cr_assert(iv[i] >= 0 && iv[i] < 63, "index %lld is %g", (long long)i, iv[i]);
  free(iv);
  lam_tensor_free(y), lam_tensor_free(ix);
  tu_assert_no_leak(ctx, m);
  lam_tensor_free(x), lam_tensor_free(smp);
  lam_ctx_free(ctx);
}
