/* random.cl: counter-based random tensors (Philox-4x32-10, Random123).
 *
 * Every kernel computes one Philox block per work-item: block j is
 * philox(ctr = {j, 0, 0, 0}, key), i.e. the tensor stream uses domain tag 0 in
 * counter word 2 (splits and fold_ins use other tags, see include/lamina/rng.h).
 * The raw word stream is W(m) = block(m >> 2)[m & 3]. A block yields 4
 * outputs for one-word draws (bits, f32 uniform/normal/truncated normal,
 * bernoulli) and 2 for two-word draws (f64 draws, randint). No local memory
 * and no barriers: the kernels are pure streaming and PoCL vectorises them
 * across work-items; the work is ~20 integer multiplies per block, far below
 * memory time on GPUs. The mapping from words to values uses only exact
 * integer->float conversions and correctly rounded fma/fmin, so bits, uniform,
 * bernoulli and randint are bit-identical on every conforming device; normal
 * and truncated normal go through log/sqrt/sinpi/cospi/erfc, whose last bits
 * may differ between OpenCL implementations (within the spec's ulp limits).
 * FP_CONTRACT is off so a compiler cannot fuse a*b+c differently per device.
 *
 * The program is built once per float dtype (f32, f64); the integer kernels
 * (bits, bernoulli, randint, philox) are only in the f32 build. */
#pragma OPENCL FP_CONTRACT OFF

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

/* Ten rounds of Philox-4x32 (Salmon et al. 2011), key bumped between rounds.
 * The 32x32->64 products are written as ulong multiplies rather than
 * mul_hi + mul, and the loop is unrolled: on PoCL (LLVM 15, AVX-512) that
 * is ~7x faster (one vpmuludq per product instead of two multiplies and a
 * rolled loop that blocks vectorisation); GPUs map it to mul.wide / mad64. */
inline uint4 lam_philox(uint4 c, uint2 k) {
#pragma unroll
  for (int r = 0; r < 10; r++) {
    if (r > 0) {
      k.x += PHILOX_W0;
      k.y += PHILOX_W1;
    }
    ulong p0 = (ulong)PHILOX_M0 * c.x, p1 = (ulong)PHILOX_M1 * c.z;
    c = (uint4)((uint)(p1 >> 32) ^ c.y ^ k.x, (uint)p1, (uint)(p0 >> 32) ^ c.w ^ k.y, (uint)p0);
  }
  return c;
}

/* Block j of the tensor stream (tag 0). */
inline uint4 lam_block(int j, uint k0, uint k1) {
  return lam_philox((uint4)((uint)j, 0u, 0u, 0u), (uint2)(k0, k1));
}

#ifdef LAM_F64
/* ---- f64: two words per value (hi word first), 53 bits ------------------ */
#define EPB 2 /* elements per block */
#define LAM_C(x) x
inline ulong lam_w64(uint hi, uint lo) { return ((ulong)hi << 32) | (ulong)lo; }
/* [0, 1): top 53 bits times 2^-53. */
inline double lam_u01(ulong x) { return (double)(x >> 11) * 0x1.0p-53; }
/* (0, 1]: (top 53 bits + 1) times 2^-53, so log() stays finite. */
inline double lam_u01_open0(ulong x) { return (double)((x >> 11) + 1) * 0x1.0p-53; }
/* (0, 1): (2 * top 52 bits + 1) times 2^-53. */
inline double lam_u01_open(ulong x) { return (double)(((x >> 12) << 1) | 1) * 0x1.0p-53; }
#define LAM_UNIFORMS(w, u) \
  u[0] = lam_u01(lam_w64(w.x, w.y)); \
  u[1] = lam_u01(lam_w64(w.z, w.w))
#define LAM_OPEN_UNIFORMS(w, u) \
  u[0] = lam_u01_open(lam_w64(w.x, w.y)); \
  u[1] = lam_u01_open(lam_w64(w.z, w.w))
#else
/* ---- f32: one word per value, 24 bits ------------------------------------ */
#define EPB 4
#define LAM_C(x) x##f
/* [0, 1): top 24 bits times 2^-24. */
inline float lam_u01(uint x) { return (float)(x >> 8) * 0x1.0p-24f; }
/* (0, 1]: (top 24 bits + 1) times 2^-24. */
inline float lam_u01_open0(uint x) { return (float)((x >> 8) + 1u) * 0x1.0p-24f; }
/* (0, 1): (2 * top 23 bits + 1) times 2^-24 (exact in float). */
inline float lam_u01_open(uint x) { return (float)(((x >> 9) << 1) | 1u) * 0x1.0p-24f; }
#define LAM_UNIFORMS(w, u) \
  u[0] = lam_u01(w.x); \
  u[1] = lam_u01(w.y); \
  u[2] = lam_u01(w.z); \
  u[3] = lam_u01(w.w)
#define LAM_OPEN_UNIFORMS(w, u) \
  u[0] = lam_u01_open(w.x); \
  u[1] = lam_u01_open(w.y); \
  u[2] = lam_u01_open(w.z); \
  u[3] = lam_u01_open(w.w)
#endif

/* Uniform in [lo, hi): fma(span, u, lo) with span = hi - lo (computed on the
 * host in the dtype), then capped at hi_below, the largest value below hi,
 * because rounding can land on hi. One block -> EPB elements. */
kernel void uniform(global REAL *y, int y_off, int n, uint k0, uint k1, ACC lo, ACC span,
                    ACC hi_below) {
  int j = get_global_id(0);
  if (j > (n - 1) / EPB) return; /* before j * EPB: padding items could overflow int */
  int base = j * EPB;
  uint4 w = lam_block(j, k0, k1);
  ACC u[EPB];
  LAM_UNIFORMS(w, u);
  y += y_off + base;
  for (int e = 0; e < EPB; e++)
    if (base + e < n) y[e] = (REAL)fmin(fma(span, u[e], lo), hi_below);
}

/* Box-Muller on a pair (u1 in (0,1], u2 in [0,1)): r = sqrt(-2 log u1),
 * z0 = r cos(2 pi u2), z1 = r sin(2 pi u2). |z| <= 5.77 (f32), 8.58 (f64). */
kernel void normal(global REAL *y, int y_off, int n, uint k0, uint k1, ACC mean, ACC stddev) {
  int j = get_global_id(0);
  if (j > (n - 1) / EPB) return; /* before j * EPB: padding items could overflow int */
  int base = j * EPB;
  uint4 w = lam_block(j, k0, k1);
  ACC z[EPB];
#ifdef LAM_F64
  {
    double r = sqrt(-2.0 * log(lam_u01_open0(lam_w64(w.x, w.y))));
    double t = 2.0 * lam_u01(lam_w64(w.z, w.w));
    z[0] = r * cospi(t);
    z[1] = r * sinpi(t);
  }
#else
  {
    float r = sqrt(-2.0f * log(lam_u01_open0(w.x)));
    float t = 2.0f * lam_u01(w.y);
    z[0] = r * cospi(t);
    z[1] = r * sinpi(t);
    r = sqrt(-2.0f * log(lam_u01_open0(w.z)));
    t = 2.0f * lam_u01(w.w);
    z[2] = r * cospi(t);
    z[3] = r * sinpi(t);
  }
#endif
  y += y_off + base;
  for (int e = 0; e < EPB; e++)
    if (base + e < n) y[e] = (REAL)fma(stddev, z[e], mean);
}

/* Inverse standard normal CDF. Tails (p < 0.02425 or p > 0.97575): Acklam's
 * rational approximation in q = sqrt(-2 log p) (relative error < 1.2e-9,
 * well conditioned). Centre: in f64 Acklam's central rational function,
 * whose cancellation costs ~2 digits, then one Halley step with erfc brings
 * it to ~1e-15; in f32 that cancellation would cost ~1e-4, so the centre
 * uses Giles' single-precision erfinv polynomial (2010), w = -log(4p(1-p))
 * computed from p directly, z = sqrt(2) erfinv(2p - 1) (< 4e-7 relative). */
inline ACC lam_ndtri(ACC p) {
  if (p <= 0) return -INFINITY;
  if (p >= 1) return INFINITY;
  const ACC plow = LAM_C(0.02425);
  ACC x;
  if (p < plow || p > 1 - plow) {
    /* 1 - p is exact for p >= 0.5 (Sterbenz) */
    ACC q = sqrt(-2 * log(p < plow ? p : 1 - p));
    ACC num = ((((LAM_C(-7.784894002430293e-03) * q + LAM_C(-3.223964580411365e-01)) * q +
                 LAM_C(-2.400758277161838e+00)) * q + LAM_C(-2.549732539343734e+00)) * q +
               LAM_C(4.374664141464968e+00)) * q + LAM_C(2.938163982698783e+00);
    ACC den = (((LAM_C(7.784695709041462e-03) * q + LAM_C(3.224671290700398e-01)) * q +
                LAM_C(2.445134137142996e+00)) * q + LAM_C(3.754408661907416e+00)) * q + 1;
    x = num / den;
    if (p >= plow) x = -x;
  } else {
#ifdef LAM_F64
    double q = p - 0.5, r = q * q;
    double num = (((((-3.969683028665376e+01 * r + 2.209460984245205e+02) * r +
                     -2.759285104469687e+02) * r + 1.383577518672690e+02) * r +
                   -3.066479806614716e+01) * r + 2.506628277459239e+00) * q;
    double den = ((((-5.447609879822406e+01 * r + 1.615858368580409e+02) * r +
                    -1.556989798598866e+02) * r + 6.680131188771972e+01) * r +
                  -1.328068155288572e+01) * r + 1;
    x = num / den;
#else
    float w = -log(4.0f * p * (1.0f - p)) - 2.5f, c = 2.81022636e-08f;
    c = 3.43273939e-07f + c * w;
    c = -3.5233877e-06f + c * w;
    c = -4.39150654e-06f + c * w;
    c = 0.00021858087f + c * w;
    c = -0.00125372503f + c * w;
    c = -0.00417768164f + c * w;
    c = 0.246640727f + c * w;
    c = 1.50140941f + c * w;
    x = 1.41421356f * c * (2.0f * p - 1.0f); /* 2p - 1 exact for p >= 0.25 */
#endif
  }
#ifdef LAM_F64
  if (fabs(x) < 37.0) { /* exp(x^2/2) below overflow */
    double e = 0.5 * erfc(-x * M_SQRT1_2) - p;
    double u = e * 2.5066282746310002 * exp(0.5 * x * x); /* sqrt(2 pi) */
    x = x - u / (1.0 + 0.5 * x * u);
  }
#endif
  return x;
}

/* Truncated normal by inverse CDF: u in (0,1), p = pa + u * pspan with
 * pa = Phi(a), pspan = Phi(b) - Phi(a) (host, f64), z = ndtri(p) clamped to
 * [a, b] (a NaN goes to a), y = scale * z. The host mirrors intervals so
 * that a + b <= 0 (scale carries the sign): Phi is then small and exact
 * where it matters. */
kernel void truncated_normal(global REAL *y, int y_off, int n, uint k0, uint k1, ACC pa,
                             ACC pspan, ACC a, ACC b, ACC scale) {
  int j = get_global_id(0);
  if (j > (n - 1) / EPB) return; /* before j * EPB: padding items could overflow int */
  int base = j * EPB;
  uint4 w = lam_block(j, k0, k1);
  ACC u[EPB];
  LAM_OPEN_UNIFORMS(w, u);
  y += y_off + base;
  for (int e = 0; e < EPB; e++) {
    if (base + e >= n) break;
    ACC z = lam_ndtri(fma(pspan, u[e], pa));
    z = z >= a ? z : a;
    z = z <= b ? z : b;
    y[e] = (REAL)(scale * z);
  }
}

#ifdef LAM_F32
/* ---- integer streams (built with the f32 program only) ------------------- */

/* Raw words: element m is W(m) reinterpreted as int. */
kernel void bits(global int *y, int y_off, int n, uint k0, uint k1) {
  int j = get_global_id(0);
  if (j > (n - 1) / 4) return;
  int base = j * 4;
  uint4 w = lam_block(j, k0, k1);
  uint v[4] = {w.x, w.y, w.z, w.w};
  y += y_off + base;
  for (int e = 0; e < 4; e++)
    if (base + e < n) y[e] = as_int(v[e]);
}

/* 1 where W(m) < threshold (threshold = round(p * 2^32), up to 2^32). */
kernel void bernoulli(global uchar *y, int y_off, int n, uint k0, uint k1, ulong threshold) {
  int j = get_global_id(0);
  if (j > (n - 1) / 4) return;
  int base = j * 4;
  uint4 w = lam_block(j, k0, k1);
  uint v[4] = {w.x, w.y, w.z, w.w};
  y += y_off + base;
  for (int e = 0; e < 4; e++)
    if (base + e < n) y[e] = (uchar)((ulong)v[e] < threshold);
}

/* lo + floor(x * range / 2^64) with x the 64-bit word pair (W(2m) high,
 * W(2m+1) low): multiply-shift, bias at most range / 2^64 per value. */
kernel void randint(global int *y, int y_off, int n, uint k0, uint k1, int lo, uint range) {
  int j = get_global_id(0);
  if (j > (n - 1) / 2) return;
  int base = j * 2;
  uint4 w = lam_block(j, k0, k1);
  ulong x[2] = {((ulong)w.x << 32) | w.y, ((ulong)w.z << 32) | w.w};
  y += y_off + base;
  for (int e = 0; e < 2; e++)
    if (base + e < n) y[e] = as_int((uint)lo + (uint)mul_hi(x[e], (ulong)range));
}

/* Philox on caller-given counters (rows of 4 words): for known-answer tests
 * and custom streams. One work-item per row. */
kernel void philox(global const int *ctr, int c_off, global int *y, int y_off, int rows, uint k0,
                   uint k1) {
  int j = get_global_id(0);
  if (j >= rows) return;
  ctr += c_off + 4 * j;
  uint4 w = lam_philox((uint4)(as_uint(ctr[0]), as_uint(ctr[1]), as_uint(ctr[2]), as_uint(ctr[3])),
                       (uint2)(k0, k1));
  y += y_off + 4 * j;
  y[0] = as_int(w.x);
  y[1] = as_int(w.y);
  y[2] = as_int(w.z);
  y[3] = as_int(w.w);
}
#endif
