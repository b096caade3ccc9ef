/* ops/random.c: Philox-4x32-10 keys and random tensors (host side of
 * cl/random.cl). Keys are plain values derived with split/fold_in like JAX;
 * every tensor draw is a pure function of (key, element index), computed one
 * Philox block per work-item, so results do not depend on the device or its
 * work-group size. The exact word-to-value mappings are specified in
 * include/lamina/rng.h; the host checks every argument in the output dtype
 * (a range that is empty or infinite once converted to f32 is an error)
 * before anything is allocated or enqueued. Random tensors are constants:
 * nothing is recorded on the tape. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "lamina/rng.h"

/* ---- Philox and keys ---------------------------------------------------- */

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void lam_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
  if (!ctr || !key || !out) return;
  uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
  uint32_t k0 = key[0], k1 = key[1];
  for (int r = 0; r < 10; r++) {
    if (r > 0) {
      k0 += PHILOX_W0;
      k1 += PHILOX_W1;
    }
    uint64_t p0 = (uint64_t)PHILOX_M0 * c0, p1 = (uint64_t)PHILOX_M1 * c2;
    uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n1 = (uint32_t)p1;
    uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1, n3 = (uint32_t)p0;
    c0 = n0, c1 = n1, c2 = n2, c3 = n3;
  }
  out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

/* Words 0 and 1 of philox({c0, c1, tag, 0}, key). */
static lam_rng_key lam__rng_derive(lam_rng_key key, uint32_t c0, uint32_t c1, uint32_t tag) {
  uint32_t ctr[4] = {c0, c1, tag, 0}, out[4];
  lam_philox4x32_10(ctr, key.k, out);
  lam_rng_key k = {{out[0], out[1]}};
  return k;
}

lam_rng_key lam_rng_key_make(uint64_t seed) {
  lam_rng_key k = {{(uint32_t)(seed >> 32), (uint32_t)seed}};
  return k;
}

lam_status lam_rng_split(lam_rng_key key, int n, lam_rng_key *out) {
  if (!out) return lam__fail(LAM_ERR_NULL, "lam_rng_split: out is NULL");
  if (n < 1) return lam__fail(LAM_ERR_INVALID_ARGUMENT, "lam_rng_split: n is %d; must be >= 1", n);
  for (int i = 0; i < n; i++) out[i] = lam__rng_derive(key, (uint32_t)i, 0, LAM_RNG_TAG_SPLIT);
  return LAM_OK;
}

lam_rng_key lam_rng_fold_in(lam_rng_key key, uint32_t data) {
  return lam__rng_derive(key, data, 0, LAM_RNG_TAG_FOLD);
}

lam_rng_key lam_rng_fold_in_str(lam_rng_key key, const char *text) {
  uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a 64 */
  for (const unsigned char *p = (const unsigned char *)(text ? text : ""); *p; p++) {
    h ^= *p;
    h *= 0x100000001b3ULL;
  }
  return lam__rng_derive(key, (uint32_t)h, (uint32_t)(h >> 32), LAM_RNG_TAG_FOLD_STR);
}

/* ---- host twin of the f64 normal stream --------------------------------- */

#define LAM__PI 3.14159265358979323846

/* sin(pi t), cos(pi t) for t in [0, 2), reduced exactly to |r| <= 1/4 so the
 * result tracks the device's sinpi/cospi to about an ulp. */
static void lam__sincospi(double t, double *s, double *c) {
  double q = floor(2.0 * t + 0.5);
  double r = t - 0.5 * q; /* exact */
  double sr = sin(LAM__PI * r), cr = cos(LAM__PI * r);
  switch ((int)q & 3) {
    case 0: *s = sr, *c = cr; break;
    case 1: *s = cr, *c = -sr; break;
    case 2: *s = -sr, *c = -cr; break;
    default: *s = -cr, *c = sr; break;
  }
}

lam_status lam_random_normal_host(lam_rng_key key, int64_t n, double *out) {
  if (n < 0) return lam__fail(LAM_ERR_INVALID_ARGUMENT, "lam_random_normal_host: n is %lld; must be >= 0", (long long)n);
  if (n > 0 && !out) return lam__fail(LAM_ERR_NULL, "lam_random_normal_host: out is NULL");
  for (int64_t k = 0; 2 * k < n; k++) {
    uint32_t ctr[4] = {(uint32_t)k, 0, LAM_RNG_TAG_TENSOR, 0}, w[4];
    lam_philox4x32_10(ctr, key.k, w);
    uint64_t x1 = (uint64_t)w[0] << 32 | w[1], x2 = (uint64_t)w[2] << 32 | w[3];
    double u1 = (double)((x1 >> 11) + 1) * 0x1.0p-53, u2 = (double)(x2 >> 11) * 0x1.0p-53;
    double r = sqrt(-2.0 * log(u1)), s, c;
    lam__sincospi(2.0 * u2, &s, &c);
    out[2 * k] = r * c;
    if (2 * k + 1 < n) out[2 * k + 1] = r * s;
  }
  return LAM_OK;
}

/* ---- tensor draws ------------------------------------------------------- */

/* Checks ctx, shape and (for float draws) the dtype before anything else. */
static lam_status lam__rng_check(const char *fn, lam_ctx *ctx, int float_dtype, lam_dtype dtype,
                                 int ndim, const int64_t *shape) {
  if (!ctx) return lam__fail(LAM_ERR_NULL, "%s: ctx is NULL", fn);
  if (float_dtype) {
    if (dtype != LAM_F32 && dtype != LAM_F64)
      return lam__fail(LAM_ERR_DTYPE, "%s: dtype %s is not supported; use f32 or f64 (cast for f16)",
                       fn, lam_dtype_name(dtype));
    lam_status st = lam__check_dtype_supported(ctx, dtype, fn);
    if (st != LAM_OK) return st;
  }
  return lam__check_shape(fn, ndim, shape, NULL);
}

/* Allocates the output, then launches `kernel` of the `prog` build with
 * arguments (y, n, k0, k1, extra...) over ceil(n / epb) blocks. */
static lam_tensor *lam__rng_run(const char *fn, lam_ctx *ctx, lam_rng_key key, lam_dtype dtype,
                                lam_dtype prog, const char *kernel, int epb, int ndim,
                                const int64_t *shape, int nextra, const lam__arg *extra) {
  lam_tensor *y = lam__tensor_new(ctx, dtype, ndim, shape, fn);
  if (!y) return NULL;
  cl_kernel k;
  lam_status st = lam__kernel_dt(ctx, "random", kernel, prog, NULL, &k);
  if (st == LAM_OK) {
    lam__arg args[12] = {LAM__ARG_T(y), lam__arg_int(y->numel), lam__arg_uint(key.k[0]),
                         lam__arg_uint(key.k[1])};
    for (int i = 0; i < nextra; i++) args[5 + i] = extra[i];
    st = lam__launch_1d(ctx, k, fn, 5 + nextra, args, (size_t)((y->numel + epb - 1) / epb));
  }
  if (st != LAM_OK) {
    lam_tensor_free(y);
    return NULL;
  }
  return y;
}

/* Elements per Philox block of a float draw. */
static int lam__epb(lam_dtype dtype) { return dtype == LAM_F64 ? 2 : 4; }

lam_tensor *lam_random_bits(lam_ctx *ctx, lam_rng_key key, int ndim, const int64_t *shape) {
  const char *fn = "lam_random_bits";
  if (lam__rng_check(fn, ctx, 0, LAM_I32, ndim, shape) != LAM_OK) return NULL;
  return lam__rng_run(fn, ctx, key, LAM_I32, LAM_F32, "bits", 4, ndim, shape, 0, NULL);
}

lam_tensor *lam_random_uniform(lam_ctx *ctx, lam_rng_key key, lam_dtype dtype, int ndim,
                               const int64_t *shape, double lo, double hi) {
  const char *fn = "lam_random_uniform";
  if (lam__rng_check(fn, ctx, 1, dtype, ndim, shape) != LAM_OK) return NULL;
  double span, hi_below, lo_t, hi_t;
  if (dtype == LAM_F32) {
    float fl = (float)lo, fh = (float)hi, fs = fh - fl;
    lo_t = fl, hi_t = fh, span = fs, hi_below = nextafterf(fh, -INFINITY);
  } else {
    lo_t = lo, hi_t = hi, span = hi - lo, hi_below = nextafter(hi, -INFINITY);
  }
  if (!isfinite(lo_t) || !isfinite(hi_t) || !isfinite(span))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                     "%s: lo %g and hi %g must be finite with a finite hi - lo in %s", fn, lo, hi,
                     lam_dtype_name(dtype)), NULL;
  if (!(lo_t < hi_t))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: hi %g must be > lo %g (in %s)", fn, hi, lo,
                     lam_dtype_name(dtype)), NULL;
  lam__arg extra[3] = {lam__arg_real(dtype, lo_t), lam__arg_real(dtype, span),
                       lam__arg_real(dtype, hi_below)};
  return lam__rng_run(fn, ctx, key, dtype, dtype, "uniform", lam__epb(dtype), ndim, shape, 3, extra);
}

/* True when v is finite once stored in dtype (f32 overflows earlier). */
static int lam__finite_in(lam_dtype dtype, double v) {
  return dtype == LAM_F32 ? isfinite((float)v) : isfinite(v);
}

lam_tensor *lam_random_normal(lam_ctx *ctx, lam_rng_key key, lam_dtype dtype, int ndim,
                              const int64_t *shape, double mean, double stddev) {
  const char *fn = "lam_random_normal";
  if (lam__rng_check(fn, ctx, 1, dtype, ndim, shape) != LAM_OK) return NULL;
  if (!lam__finite_in(dtype, mean) || !lam__finite_in(dtype, stddev))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: mean %g and stddev %g must be finite in %s", fn,
                     mean, stddev, lam_dtype_name(dtype)), NULL;
  if (stddev < 0)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: stddev %g is negative", fn, stddev), NULL;
  lam__arg extra[2] = {lam__arg_real(dtype, mean), lam__arg_real(dtype, stddev)};
  return lam__rng_run(fn, ctx, key, dtype, dtype, "normal", lam__epb(dtype), ndim, shape, 2, extra);
}

/* Standard normal CDF (C99 erfc is accurate in the lower tail). */
static double lam__phi(double x) { return 0.5 * erfc(-x * 0.70710678118654752440); }

lam_tensor *lam_random_truncated_normal(lam_ctx *ctx, lam_rng_key key, lam_dtype dtype,
                                        int ndim, const int64_t *shape, double lo, double hi,
                                        double stddev) {
  const char *fn = "lam_random_truncated_normal";
  if (lam__rng_check(fn, ctx, 1, dtype, ndim, shape) != LAM_OK) return NULL;
  if (!lam__finite_in(dtype, lo) || !lam__finite_in(dtype, hi))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: bounds lo %g and hi %g must be finite in %s",
                     fn, lo, hi, lam_dtype_name(dtype)), NULL;
  if (!(lo < hi))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: hi %g must be > lo %g", fn, hi, lo), NULL;
  if (!lam__finite_in(dtype, stddev) || stddev < 0)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: stddev %g must be finite and >= 0", fn, stddev),
           NULL;
  if (!lam__finite_in(dtype, stddev * hi) || !lam__finite_in(dtype, stddev * lo))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: stddev %g times bounds [%g, %g] overflows %s",
                     fn, stddev, lo, hi, lam_dtype_name(dtype)), NULL;
  /* Mirror so that a + b <= 0: the CDF is then small where it matters. */
  int flip = lo + hi > 0;
  double a = flip ? -hi : lo, b = flip ? -lo : hi;
  double pa = lam__phi(a), pspan = lam__phi(b) - pa;
  lam__arg extra[5] = {lam__arg_real(dtype, pa), lam__arg_real(dtype, pspan),
                       lam__arg_real(dtype, a), lam__arg_real(dtype, b),
                       lam__arg_real(dtype, flip ? -stddev : stddev)};
  return lam__rng_run(fn, ctx, key, dtype, dtype, "truncated_normal", lam__epb(dtype), ndim, shape,
                      5, extra);
}

lam_tensor *lam_random_bernoulli(lam_ctx *ctx, lam_rng_key key, double p, int ndim,
                                 const int64_t *shape) {
  const char *fn = "lam_random_bernoulli";
  if (lam__rng_check(fn, ctx, 0, LAM_U8, ndim, shape) != LAM_OK) return NULL;
  if (!(p >= 0 && p <= 1))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: p %g is outside [0, 1]", fn, p), NULL;
  uint64_t threshold = (uint64_t)llround(ldexp(p, 32));
  lam__arg extra[1] = {lam__arg_long((int64_t)threshold)};
  return lam__rng_run(fn, ctx, key, LAM_U8, LAM_F32, "bernoulli", 4, ndim, shape, 1, extra);
}

lam_tensor *lam_random_randint(lam_ctx *ctx, lam_rng_key key, int32_t lo, int32_t hi, int ndim,
                               const int64_t *shape) {
  const char *fn = "lam_random_randint";
  if (lam__rng_check(fn, ctx, 0, LAM_I32, ndim, shape) != LAM_OK) return NULL;
  if (hi <= lo)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: hi %d must be > lo %d", fn, (int)hi, (int)lo),
           NULL;
  uint32_t range = (uint32_t)((int64_t)hi - (int64_t)lo);
  lam__arg extra[2] = {lam__arg_int(lo), lam__arg_uint(range)};
  return lam__rng_run(fn, ctx, key, LAM_I32, LAM_F32, "randint", 2, ndim, shape, 2, extra);
}

lam_tensor *lam_random_philox(lam_tensor *ctr, lam_rng_key key) {
  const char *fn = "lam_random_philox";
  if (!ctr) return lam__null_input(fn, "ctr");
  if (ctr->dtype != LAM_I32)
    return lam__fail(LAM_ERR_DTYPE, "%s: ctr is %s; must be i32", fn, lam_dtype_name(ctr->dtype)),
           NULL;
  if (ctr->ndim < 1 || ctr->shape[ctr->ndim - 1] != 4) {
    char b[LAM__SHAPE_STR];
    return lam__fail(LAM_ERR_SHAPE, "%s: ctr shape %s must end in a dim of 4", fn,
                     lam__shape_str(ctr->ndim, ctr->shape, b)), NULL;
  }
  lam_ctx *ctx = ctr->ctx;
  lam_tensor *y = lam__tensor_new(ctx, LAM_I32, ctr->ndim, ctr->shape, fn);
  if (!y) return NULL;
  cl_kernel k;
  lam_status st = lam__kernel_dt(ctx, "random", "philox", LAM_F32, NULL, &k);
  if (st == LAM_OK) {
    int64_t rows = ctr->numel / 4;
    lam__arg args[] = {LAM__ARG_T(ctr), LAM__ARG_T(y), lam__arg_int(rows), lam__arg_uint(key.k[0]),
                       lam__arg_uint(key.k[1])};
    st = lam__launch_1d(ctx, k, fn, 7, args, (size_t)rows);
  }
  if (st != LAM_OK) {
    lam_tensor_free(y);
    return NULL;
  }
  return y;
}
