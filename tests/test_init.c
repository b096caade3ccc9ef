/* test_init.c: parameter initializers. Fans in PyTorch's layout, each
 * initializer's bounds / mean / variance (and kurtosis, which tells the three
 * distributions apart) per fan mode on a linear and a conv shape,
 * orthogonality (and the exact QR semantics: R = Q^T A upper triangular with
 * a positive diagonal) for square, tall, wide and conv shapes, determinism
 * per key and per parameter path, and bad input with messages and no leaks.
 * Tolerances are 6 standard errors of the sample count. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* Sample stats: mean, variance (about 0), kurtosis, min, max. */
typedef struct stats { double mean, var, kurt, lo, hi; } stats;
static stats sample_stats(const double *x, int64_t n) {
  stats s = {0, 0, 0, INFINITY, -INFINITY};
  double m4 = 0;
  for (int64_t i = 0; i < n; i++) {
    s.mean += x[i], s.var += x[i] * x[i], m4 += x[i] * x[i] * x[i] * x[i];
    s.lo = fmin(s.lo, x[i]), s.hi = fmax(s.hi, x[i]);
  }
  s.mean /= (double)n, s.var /= (double)n, m4 /= (double)n;
  s.kurt = m4 / (s.var * s.var);
  return s;
}

/* Linear and conv shapes (smaller under Oclgrind). */
static const int64_t *lin_shape(void) {
  static const int64_t big[2] = {256, 512}, small[2] = {32, 64};
  return tu_small() ? small : big;
}
static const int64_t *conv_shape(void) {
  static const int64_t big[4] = {64, 32, 3, 3}, small[4] = {8, 4, 3, 3};
  return tu_small() ? small : big;
}

Test(init, fans_follow_pytorch_layout) {
  double fi, fo;
  cr_assert_eq(lam_init_fans(2, (int64_t[]){256, 512}, &fi, &fo), LAM_OK);
  cr_assert(fi == 512 && fo == 256);
  cr_assert_eq(lam_init_fans(4, (int64_t[]){64, 32, 3, 3}, &fi, &fo), LAM_OK);
  cr_assert(fi == 32 * 9 && fo == 64 * 9);
  cr_assert_eq(lam_init_fans(3, (int64_t[]){8, 2, 5}, &fi, &fo), LAM_OK);
  cr_assert(fi == 10 && fo == 40);
  cr_assert_eq(lam_init_fans(1, (int64_t[]){7}, &fi, &fo), LAM_OK);
  cr_assert(fi == 7 && fo == 7);
  cr_assert_eq(lam_init_fans(0, NULL, &fi, NULL), LAM_OK);
  cr_assert(fi == 1);
  tu_assert_status(lam_init_fans(2, (int64_t[]){3, 0}, &fi, &fo), LAM_ERR_SHAPE, "lam_init_fans: dim 1");
}

Test(init, constructors) {
  lam_init g = lam_init_glorot_uniform();
  cr_assert(g.kind == LAM_INIT_VARIANCE_SCALING && g.value == 1 && g.mode == LAM_FAN_AVG &&
            g.distribution == LAM_DIST_UNIFORM);
  g = lam_init_glorot_normal();
  cr_assert(g.mode == LAM_FAN_AVG && g.distribution == LAM_DIST_TRUNCATED_NORMAL && g.value == 1);
  g = lam_init_he_uniform();
  cr_assert(g.mode == LAM_FAN_IN && g.distribution == LAM_DIST_UNIFORM && g.value == 2);
  g = lam_init_he_normal();
  cr_assert(g.mode == LAM_FAN_IN && g.distribution == LAM_DIST_TRUNCATED_NORMAL && g.value == 2);
  g = lam_init_lecun_uniform();
  cr_assert(g.mode == LAM_FAN_IN && g.distribution == LAM_DIST_UNIFORM && g.value == 1);
  g = lam_init_lecun_normal();
  cr_assert(g.mode == LAM_FAN_IN && g.distribution == LAM_DIST_TRUNCATED_NORMAL && g.value == 1);
  cr_assert(lam_init_uniform(LAM_INIT_DEFAULT_SCALE).value == 1e-2);
  cr_assert(lam_init_constant(-2.5).kind == LAM_INIT_CONSTANT && lam_init_constant(-2.5).value == -2.5);
  /* A zeroed lam_init means "default"; lam_init_or resolves it. */
  lam_init zero;
  memset(&zero, 0, sizeof zero);
  cr_assert(zero.kind == LAM_INIT_DEFAULT);
  cr_assert(lam_init_or(&zero, lam_init_ones()).kind == LAM_INIT_ONES);
  cr_assert(lam_init_or(NULL, lam_init_ones()).kind == LAM_INIT_ONES);
  lam_init c = lam_init_constant(3);
  cr_assert(lam_init_or(&c, lam_init_ones()).kind == LAM_INIT_CONSTANT);
  cr_assert_eq(lam_init_check(&c), LAM_OK);
  lam_init o = lam_init_orthogonal(1);
  cr_assert_eq(lam_init_check(&o), LAM_OK);
  cr_assert(lam_rng_key_make(3).k[1] == 3);
  lam_rng_key k = lam_rng_key_make(9), a = lam_init_key_for(k, "0.weight"),
              b = lam_rng_fold_in_str(k, "0.weight");
  cr_assert(a.k[0] == b.k[0] && a.k[1] == b.k[1]);
}

Test(init, constant_kinds_any_dtype) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  lam_rng_key key = lam_rng_key_make(1);
  int64_t sh[2] = {3, 7};
  lam_init zs = lam_init_zeros(), os = lam_init_ones(), cs = lam_init_constant(-2.5);
  lam_tensor *t = lam_init_apply(&zs, ctx, key, LAM_F32, 2, sh);
  float *x = tu_read_f32(t);
  for (int i = 0; i < 21; i++) cr_assert_eq(x[i], 0.0f);
  free(x), lam_tensor_free(t);
  t = lam_init_apply(&cs, ctx, key, LAM_F32, 2, sh);
  x = tu_read_f32(t);
  for (int i = 0; i < 21; i++) cr_assert_eq(x[i], -2.5f);
  free(x), lam_tensor_free(t);
  t = lam_init_apply(&os, ctx, key, LAM_I32, 2, sh);
  int32_t iv[21];
  cr_assert_eq(lam_tensor_to_host(t, iv, sizeof iv), LAM_OK);
  for (int i = 0; i < 21; i++) cr_assert_eq(iv[i], 1);
  lam_tensor_free(t);
  t = lam_init_apply(&os, ctx, key, LAM_U8, 0, NULL);
  double v;
  cr_assert_eq(lam_tensor_item(t, &v), LAM_OK);
  cr_assert_eq(v, 1);
  lam_tensor_free(t);
  /* Zero scales give zeros, not an error. */
  lam_init u0 = lam_init_uniform(0), vs0 = lam_init_variance_scaling(0, LAM_FAN_IN, LAM_DIST_UNIFORM),
           n0 = lam_init_normal(0);
  lam_init *zeros[] = {&u0, &vs0, &n0};
  for (int j = 0; j < 3; j++) {
    t = lam_init_apply(zeros[j], ctx, key, LAM_F32, 2, sh);
    x = tu_read_f32(t);
    for (int i = 0; i < 21; i++) cr_assert_eq(x[i], 0.0f, "zero-scale init %d", j);
    free(x), lam_tensor_free(t);
  }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

Test(init, flax_uniform_and_normal) {
  lam_ctx *ctx = tu_ctx();
  const int64_t *sh = lin_shape();
  int64_t n = sh[0] * sh[1];
  double rn = sqrt((double)n);
  for (int d = 0; d < 2; d++) {
    lam_dtype dt = d ? LAM_F64 : LAM_F32;
    if (dt == LAM_F64 && !lam_ctx_device(ctx)->fp64) continue;
    lam_init u = lam_init_uniform(LAM_INIT_DEFAULT_SCALE);
    lam_tensor *t = lam_init_apply(&u, ctx, lam_rng_key_make(10), dt, 2, sh);
    double *x = tu_to_f64(t);
    lam_tensor_free(t);
    stats s = sample_stats(x, n);
    double sc = 1e-2;
    cr_assert(s.lo >= 0 && s.hi < sc, "uniform bounds [%g, %g]", s.lo, s.hi);
    cr_assert(fabs(s.mean - sc / 2) < 6 * sc / sqrt(12.0) / rn, "uniform mean %g", s.mean);
    cr_assert(fabs(s.var / (sc * sc / 3) - 1) < 6 * 0.9 / rn, "uniform E[x^2] %g", s.var);
    free(x);
    lam_init g = lam_init_normal(0.05);
    t = lam_init_apply(&g, ctx, lam_rng_key_make(11), dt, 2, sh);
    x = tu_to_f64(t);
    lam_tensor_free(t);
    s = sample_stats(x, n);
    cr_assert(fabs(s.mean) < 6 * 0.05 / rn, "normal mean %g", s.mean);
    cr_assert(fabs(s.var / 0.0025 - 1) < 6 * sqrt(2.0) / rn, "normal var %g", s.var);
    if (!tu_small()) cr_assert(fabs(s.kurt - 3) < 6 * sqrt(96.0) / rn, "normal kurtosis %g", s.kurt);
    free(x);
  }
  lam_ctx_free(ctx);
}

/* Variance scaling: every mode x distribution on the linear and conv shapes. */
static void check_vs(lam_ctx *ctx, lam_dtype dt, const lam_init *init, int ndim,
                     const int64_t *shape, lam_rng_key key, const char *what) {
  lam_tensor *t = lam_init_apply(init, ctx, key, dt, ndim, shape);
  cr_assert(t, "%s: %s", what, lam_last_error());
  cr_assert_eq(lam_tensor_dtype(t), dt);
  int64_t n = lam_tensor_numel(t);
  double *x = tu_to_f64(t);
  lam_tensor_free(t);
  /* PyTorch fans, computed here independently of lam_init_fans */
  double rf = ndim > 2 ? (double)(shape[2] * shape[3]) : 1;
  double fi = (double)shape[1] * rf, fo = (double)shape[0] * rf;
  cr_assert(ndim == 2 || ndim == 4);
  double den = init->mode == LAM_FAN_IN ? fi : init->mode == LAM_FAN_OUT ? fo : (fi + fo) / 2;
  double var = init->value / den, rn = sqrt((double)n);
  stats s = sample_stats(x, n);
  double sd = sqrt(var);
  cr_assert(fabs(s.mean) < 6 * sd / rn, "%s: mean %g (sd %g)", what, s.mean, sd);
  /* sd of the sample second moment / var: sqrt(kurtosis - 1) <= sqrt(2) */
  cr_assert(fabs(s.var / var - 1) < 6 * sqrt(2.0) / rn, "%s: var %g want %g", what, s.var, var);
  double kurt;
  if (init->distribution == LAM_DIST_UNIFORM) {
    double limit = sqrt(3 * var);
    cr_assert(s.lo >= -limit && s.hi < limit, "%s: [%g, %g] outside +-%g", what, s.lo, s.hi, limit);
    if (n >= 10000) cr_assert(s.hi > 0.99 * limit && s.lo < -0.99 * limit, "%s: range not covered", what);
    kurt = 1.8;
  } else if (init->distribution == LAM_DIST_TRUNCATED_NORMAL) {
    double sdt = sd / 0.87962566103423978, z = tu_normal_cdf(2) - tu_normal_cdf(-2);
    double m2 = 1 - 4 * tu_normal_pdf(2) / z, m4 = 3 * m2 - 16 * tu_normal_pdf(2) / z;
    cr_assert(fabs(sqrt(m2) - 0.87962566103423978) < 1e-12, "the Flax constant is sd of N(0,1) on [-2,2]");
    cr_assert(s.lo >= -2 * sdt * (1 + 1e-6) && s.hi <= 2 * sdt * (1 + 1e-6), "%s: [%g, %g] outside +-%g",
              what, s.lo, s.hi, 2 * sdt);
    if (n >= 10000) cr_assert(s.hi > 1.9 * sdt && s.lo < -1.9 * sdt, "%s: tails not reached", what);
    kurt = m4 / (m2 * m2);
  } else {
    if (n >= 10000) cr_assert(s.hi > 3 * sd && s.lo < -3 * sd, "%s: a normal should pass 3 sd", what);
    kurt = 3;
  }
  /* Extremes (above, gated on n: with a few hundred samples a tail can be
   * missed) and kurtosis tell the three laws apart (1.8, ~2.36, 3). */
  if (n >= 100000)
    cr_assert(fabs(s.kurt - kurt) < 6 * sqrt(96.0) / rn, "%s: kurtosis %g want %g", what, s.kurt, kurt);
  free(x);
}

Test(init, variance_scaling_modes_and_distributions) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  const char *mn[] = {"fan_in", "fan_out", "fan_avg"}, *dn[] = {"truncated_normal", "normal", "uniform"};
  int s = 0;
  for (int sh = 0; sh < 2; sh++) {
    int ndim = sh ? 4 : 2;
    const int64_t *shape = sh ? conv_shape() : lin_shape();
    for (int md = 0; md < 3; md++)
      for (int di = 0; di < 3; di++) {
        lam_init in = lam_init_variance_scaling(sh ? 0.5 : 3.0, (lam_fan_mode)md, (lam_init_distribution)di);
        char what[96];
        snprintf(what, sizeof what, "%s %s %s", sh ? "conv" : "linear", mn[md], dn[di]);
        check_vs(ctx, LAM_F32, &in, ndim, shape, lam_rng_key_make(1000 + s++), what);
      }
  }
  /* The named initializers, f64 where the device has it. */
  lam_dtype dt = lam_ctx_device(ctx)->fp64 ? LAM_F64 : LAM_F32;
  lam_init named[] = {lam_init_glorot_uniform(), lam_init_glorot_normal(), lam_init_he_uniform(),
                      lam_init_he_normal(), lam_init_lecun_uniform(), lam_init_lecun_normal()};
  const char *nn[] = {"glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform", "lecun_normal"};
  for (int i = 0; i < 6; i++) {
    check_vs(ctx, dt, &named[i], 2, lin_shape(), lam_rng_key_make(2000 + i), nn[i]);
    check_vs(ctx, LAM_F32, &named[i], 4, conv_shape(), lam_rng_key_make(3000 + i), nn[i]);
  }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* Orthogonal: Q^T Q = I (tall/square) or Q Q^T = I (wide), times gain^2,
 * and R = Q^T A (A the documented normal matrix) upper triangular with a
 * positive diagonal, which fixes Q uniquely as in PyTorch/Flax. */
static void check_orthogonal(lam_ctx *ctx, lam_dtype dt, int ndim, const int64_t *shape, double gain) {
  lam_rng_key key = lam_rng_key_make(4242);
  lam_init o = lam_init_orthogonal(gain);
  lam_tensor *t = lam_init_apply(&o, ctx, key, dt, ndim, shape);
  double *q = tu_to_f64(t);
  int64_t numel = lam_tensor_numel(t), rows = shape[0], cols = numel / rows;
  lam_tensor_free(t);
  double tol = dt == LAM_F64 ? 1e-12 : 2e-6;
  for (int64_t i = 0; i < numel; i++) q[i] /= gain;
  /* Gram matrix of the short side. */
  int tall = rows >= cols;
  int64_t k = tall ? cols : rows, len = tall ? rows : cols;
  for (int64_t a = 0; a < k; a++)
    for (int64_t b = 0; b <= a; b++) {
      double s = 0;
      for (int64_t i = 0; i < len; i++)
        s += tall ? q[i * cols + a] * q[i * cols + b] : q[a * cols + i] * q[b * cols + i];
      cr_assert(fabs(s - (a == b)) < tol * 10, "%s shape [%lld,...]: gram(%lld,%lld) = %g",
                lam_dtype_name(dt), (long long)rows, (long long)a, (long long)b, s);
    }
  /* R = Q^T M with M = A (tall) or A^T (wide), A = [rows, cols] normals. */
  double *a = malloc((size_t)numel * sizeof *a);
  cr_assert_eq(lam_random_normal_host(key, numel, a), LAM_OK);
  for (int64_t r = 0; r < k; r++)
    for (int64_t c = 0; c < k; c++) {
      double s = 0;
      for (int64_t i = 0; i < len; i++) {
        double qv = tall ? q[i * cols + r] : q[r * cols + i];
        double mv = tall ? a[i * cols + c] : a[c * cols + i];
        s += qv * mv;
      }
      if (r > c) cr_assert(fabs(s) < tol * 100 * sqrt((double)len), "R(%lld,%lld) = %g below the diagonal", (long long)r, (long long)c, s);
      if (r == c) cr_assert(s > 0.01, "R(%lld,%lld) = %g: diagonal must be positive", (long long)r, (long long)c, s);
    }
  free(a);
  free(q);
}

Test(init, orthogonal) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  int big = !tu_small();
  const int64_t sq[2] = {48, 48}, tall[2] = {96, 24}, wide[2] = {24, 96}, conv[4] = {16, 4, 3, 3},
                lin[2] = {256, 512};
  for (int d = 0; d < 2; d++) {
    lam_dtype dt = d ? LAM_F64 : LAM_F32;
    if (dt == LAM_F64 && !lam_ctx_device(ctx)->fp64) continue;
    check_orthogonal(ctx, dt, 2, sq, 1.0);
    check_orthogonal(ctx, dt, 2, tall, 1.0);
    check_orthogonal(ctx, dt, 2, wide, 2.5);
    check_orthogonal(ctx, dt, 4, conv, 1.0);
    check_orthogonal(ctx, dt, 2, (int64_t[]){1, 5}, 1.0);
    check_orthogonal(ctx, dt, 2, (int64_t[]){5, 1}, 1.0);
    if (big && dt == LAM_F32) check_orthogonal(ctx, dt, 2, lin, 1.0);
  }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* Every random kind: same key + path -> same bits (also across contexts);
 * another path or key -> different values. */
Test(init, deterministic_per_key_and_path) {
  lam_ctx *c1 = tu_ctx(), *c2 = tu_ctx();
  lam_rng_key root = lam_rng_key_make(2024);
  lam_init kinds[] = {lam_init_uniform(1), lam_init_normal(1), lam_init_he_normal(),
                      lam_init_glorot_uniform(), lam_init_variance_scaling(1, LAM_FAN_OUT, LAM_DIST_NORMAL),
                      lam_init_orthogonal(1)};
  int64_t sh[2] = {17, 9};
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
    lam_rng_key kw = lam_init_key_for(root, "layers.0.weight");
    lam_tensor *a = lam_init_apply(&kinds[i], c1, kw, LAM_F32, 2, sh);
    lam_tensor *b = lam_init_apply(&kinds[i], c1, lam_init_key_for(root, "layers.0.weight"), LAM_F32, 2, sh);
    lam_tensor *c = lam_init_apply(&kinds[i], c2, kw, LAM_F32, 2, sh);
    lam_tensor *d = lam_init_apply(&kinds[i], c1, lam_init_key_for(root, "layers.1.weight"), LAM_F32, 2, sh);
    lam_tensor *e = lam_init_apply(&kinds[i], c1, lam_init_key_for(lam_rng_key_make(2025), "layers.0.weight"), LAM_F32, 2, sh);
    float *xa = tu_read_f32(a), *xb = tu_read_f32(b), *xc = tu_read_f32(c), *xd = tu_read_f32(d), *xe = tu_read_f32(e);
    cr_assert(memcmp(xa, xb, sizeof(float) * 153) == 0, "kind %zu: same path differs", i);
    cr_assert(memcmp(xa, xc, sizeof(float) * 153) == 0, "kind %zu: contexts differ", i);
    int same_d = 0, same_e = 0;
    for (int j = 0; j < 153; j++) same_d += xa[j] == xd[j], same_e += xa[j] == xe[j];
    cr_assert(same_d == 0 && same_e == 0, "kind %zu: other path/key equal in %d/%d places", i, same_d, same_e);
    free(xa), free(xb), free(xc), free(xd), free(xe);
    lam_tensor *all[] = {a, b, c, d, e};
    for (int j = 0; j < 5; j++) lam_tensor_free(all[j]);
  }
  lam_ctx_free(c1);
  lam_ctx_free(c2);
}

Test(init, bad_input) {
  lam_ctx *ctx = tu_ctx();
  lam_rng_key key = lam_rng_key_make(1);
  int64_t sh[2] = {4, 5};
  tu_mark m = tu_mark_now(ctx);
  lam_init ok = lam_init_he_normal();
  tu_assert_fails(lam_init_apply(NULL, ctx, key, LAM_F32, 2, sh), LAM_ERR_NULL, "lam_init_apply: init is NULL");
  tu_assert_fails(lam_init_apply(&ok, NULL, key, LAM_F32, 2, sh), LAM_ERR_NULL, "lam_init_apply: ctx is NULL");
  tu_assert_fails(lam_init_apply(&ok, ctx, key, LAM_F32, 2, (int64_t[]){4, -1}), LAM_ERR_SHAPE, "lam_init_apply: dim 1");
  tu_assert_fails(lam_init_apply(&ok, ctx, key, LAM_F32, 2, NULL), LAM_ERR_NULL, "shape is NULL");
  tu_assert_fails(lam_init_apply(&ok, ctx, key, LAM_I32, 2, sh), LAM_ERR_DTYPE, "variance_scaling init needs a float dtype, got i32");
  tu_assert_fails(lam_init_apply(&ok, ctx, key, (lam_dtype)17, 2, sh), LAM_ERR_DTYPE, "unknown dtype");
  lam_tensor *h16 = lam_init_apply(&ok, ctx, key, LAM_F16, 2, sh); /* f16 storage everywhere */
  cr_assert(h16 && lam_tensor_dtype(h16) == LAM_F16, "%s", lam_last_error());
  lam_tensor_free(h16);

  lam_init dflt;
  memset(&dflt, 0, sizeof dflt);
  tu_assert_fails(lam_init_apply(&dflt, ctx, key, LAM_F32, 2, sh), LAM_ERR_INVALID_ARGUMENT, "LAM_INIT_DEFAULT");
  lam_init unk = {(lam_init_kind)99, 1, LAM_FAN_IN, LAM_DIST_NORMAL};
  tu_assert_fails(lam_init_apply(&unk, ctx, key, LAM_F32, 2, sh), LAM_ERR_INVALID_ARGUMENT, "unknown init kind 99");
  lam_init neg[] = {lam_init_uniform(-1e-2), lam_init_normal(-1), lam_init_orthogonal(-1),
                    lam_init_variance_scaling(-2, LAM_FAN_IN, LAM_DIST_UNIFORM), lam_init_normal(NAN),
                    lam_init_uniform(INFINITY)};
  const char *negmsg[] = {"uniform scale -0.01 must be finite and >= 0", "normal scale -1",
                          "orthogonal scale -1", "variance_scaling scale -2", "normal scale nan",
                          "uniform scale inf"};
  for (int i = 0; i < 6; i++) {
    tu_assert_fails(lam_init_apply(&neg[i], ctx, key, LAM_F32, 2, sh), LAM_ERR_INVALID_ARGUMENT, negmsg[i]);
    tu_assert_status(lam_init_check(&neg[i]), LAM_ERR_INVALID_ARGUMENT, "lam_init_check");
  }
  lam_init nanc = lam_init_constant(NAN);
  tu_assert_fails(lam_init_apply(&nanc, ctx, key, LAM_F32, 2, sh), LAM_ERR_INVALID_ARGUMENT, "constant value nan is not finite");
  lam_init badmode = lam_init_variance_scaling(1, (lam_fan_mode)7, LAM_DIST_UNIFORM);
  tu_assert_fails(lam_init_apply(&badmode, ctx, key, LAM_F32, 2, sh), LAM_ERR_INVALID_ARGUMENT, "unknown fan mode 7");
  lam_init badmode2 = lam_init_variance_scaling(1, (lam_fan_mode)-1, LAM_DIST_UNIFORM);
  tu_assert_fails(lam_init_apply(&badmode2, ctx, key, LAM_F32, 2, sh), LAM_ERR_INVALID_ARGUMENT, "unknown fan mode -1");
  lam_init baddist = lam_init_variance_scaling(1, LAM_FAN_AVG, (lam_init_distribution)5);
  tu_assert_fails(lam_init_apply(&baddist, ctx, key, LAM_F32, 2, sh), LAM_ERR_INVALID_ARGUMENT, "unknown distribution 5");
  tu_assert_status(lam_init_check(&baddist), LAM_ERR_INVALID_ARGUMENT, "lam_init_check: unknown distribution");
  tu_assert_status(lam_init_check(NULL), LAM_ERR_NULL, "lam_init_check: init is NULL");
  lam_init orth = lam_init_orthogonal(1);
  tu_assert_fails(lam_init_apply(&orth, ctx, key, LAM_F32, 1, (int64_t[]){8}), LAM_ERR_SHAPE,
                  "orthogonal init needs >= 2 dims; shape is [8]");
  tu_assert_fails(lam_init_apply(&orth, ctx, key, LAM_F32, 0, NULL), LAM_ERR_SHAPE, "shape is []");
  /* Values that overflow f32 are caught by the draw. */
  lam_init huge = lam_init_normal(1e300);
  tu_assert_fails(lam_init_apply(&huge, ctx, key, LAM_F32, 2, sh), LAM_ERR_INVALID_ARGUMENT, "finite");
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}
