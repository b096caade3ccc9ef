/* test_random.c: Philox known-answer vectors (host and device), the key
 * scheme (pinned split/fold_in values), every draw against a host
 * re-implementation of the mapping documented in lamina/rng.h (bit-exact
 * where the header promises it), distribution statistics on ~1e6 samples,
 * determinism across calls and contexts, odd sizes, and bad input.
 *
 * Statistical tolerances are 6 standard errors computed from the sample
 * count (so they shrink correctly under LAMINA_TEST_SMALL); draws are
 * deterministic for a fixed key, so they cannot flake, yet a wrong mapping
 * (bad bit slice, swapped pair, wrong scale) lands far outside them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define PI 3.14159265358979323846

/* ---- host references ----------------------------------------------------- */

/* W(0..n) of a key's tensor stream, straight from the KAT-checked host Philox. */
static uint32_t *ref_words(lam_rng_key key, int64_t n) {
  uint32_t *w = malloc((size_t)(n + 4) * sizeof *w);
  cr_assert(w);
  for (int64_t b = 0; 4 * b < n; b++) {
    uint32_t ctr[4] = {(uint32_t)b, 0, 0, 0};
    lam_philox4x32_10(ctr, key.k, w + 4 * b);
  }
  return w;
}

static uint64_t pair64(const uint32_t *w, int64_t m) {
  return (uint64_t)w[2 * m] << 32 | w[2 * m + 1];
}

static void *read_any(const lam_tensor *t) {
  cr_assert(t, "%s", lam_last_error());
  void *x = malloc(lam_tensor_nbytes(t));
  cr_assert(x);
  cr_assert_eq(lam_tensor_to_host(t, x, lam_tensor_nbytes(t)), LAM_OK, "%s", lam_last_error());
  return x;
}

/* Sample count for statistics (smaller under Oclgrind). */
static int64_t stat_n(void) { return tu_small() ? 20000 : 1000000; }

static double phi_cdf(double x) { return 0.5 * erfc(-x / sqrt(2.0)); }
static double phi_pdf(double x) { return exp(-0.5 * x * x) / sqrt(2 * PI); }

/* Inverse CDF by bisection (independent of the library's rational approximation). */
static double ref_ndtri(double p, double lo, double hi) {
  for (int it = 0; it < 200; it++) {
    double mid = 0.5 * (lo + hi);
    if (phi_cdf(mid) < p) lo = mid; else hi = mid;
  }
  return 0.5 * (lo + hi);
}

/* Mean and variance of a double array. */
static void moments(const double *x, int64_t n, double *mean, double *var) {
  double s = 0, ss = 0;
  for (int64_t i = 0; i < n; i++) s += x[i];
  double m = s / (double)n;
  for (int64_t i = 0; i < n; i++) ss += (x[i] - m) * (x[i] - m);
  *mean = m;
  *var = ss / (double)(n - 1);
}

/* Reads a float tensor as doubles. */
static double *read_as_f64(const lam_tensor *t) {
  int64_t n = lam_tensor_numel(t);
  double *d = malloc((size_t)n * sizeof *d);
  cr_assert(d);
  if (lam_tensor_dtype(t) == LAM_F64) {
    double *x = tu_read_f64(t);
    memcpy(d, x, (size_t)n * sizeof *d);
    free(x);
  } else {
    float *x = tu_read_f32(t);
    for (int64_t i = 0; i < n; i++) d[i] = x[i];
    free(x);
  }
  return d;
}

static const int64_t odd_sizes[] = {1, 3, 7, 1023, (1 << 22) + 5};
static int n_odd_sizes(void) { return tu_small() ? 4 : 5; }

static int has_f64(lam_ctx *ctx) { return lam_ctx_device(ctx)->fp64; }

/* ---- Philox known answers ------------------------------------------------ */

static const uint32_t kat[3][3][4] = {
    /* ctr, key (2 words), expected */
    {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
    {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
     {0xffffffff, 0xffffffff},
     {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
    {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
     {0xa4093822, 0x299f31d0},
     {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
};

Test(random, philox_kat_host) {
  for (int v = 0; v < 3; v++) {
    uint32_t out[4];
    lam_philox4x32_10(kat[v][0], kat[v][1], out);
    for (int i = 0; i < 4; i++)
      cr_assert_eq(out[i], kat[v][2][i], "vector %d word %d: %08x != %08x", v, i, out[i],
                   kat[v][2][i]);
  }
}

Test(random, philox_kat_device) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  for (int v = 0; v < 3; v++) {
    /* Two rows: the vector's counter and its bitwise complement (checked on the host). */
    uint32_t ctr[8], want[8];
    for (int i = 0; i < 4; i++) ctr[i] = kat[v][0][i], ctr[4 + i] = ~kat[v][0][i];
    lam_philox4x32_10(ctr + 4, kat[v][1], want + 4);
    memcpy(want, kat[v][2], sizeof kat[v][2]);
    lam_tensor *c = lam_tensor_from_host(ctx, LAM_I32, 2, (int64_t[]){2, 4}, ctr);
    lam_rng_key key = {{kat[v][1][0], kat[v][1][1]}};
    lam_tensor *y = lam_random_philox(c, key);
    uint32_t *got = read_any(y);
    for (int i = 0; i < 8; i++)
      cr_assert_eq(got[i], want[i], "vector %d word %d: %08x != %08x", v, i, got[i], want[i]);
    free(got);
    lam_tensor_free(y);
    lam_tensor_free(c);
  }
  /* Raw bits use tag 0: word m is philox({m >> 2, 0, 0, 0}, key)[m & 3]. */
  lam_tensor *b = lam_random_bits(ctx, (lam_rng_key){{0, 0}}, 1, (int64_t[]){4});
  uint32_t *got = read_any(b);
  for (int i = 0; i < 4; i++) cr_assert_eq(got[i], kat[0][2][i], "bits word %d", i);
  free(got);
  lam_tensor_free(b);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- keys ---------------------------------------------------------------- */

static int key_eq(lam_rng_key a, lam_rng_key b) { return a.k[0] == b.k[0] && a.k[1] == b.k[1]; }

Test(random, key_make_split_fold_scheme) {
  lam_rng_key k = lam_rng_key_make(0x0123456789abcdefULL);
  cr_assert(k.k[0] == 0x01234567u && k.k[1] == 0x89abcdefu);
  lam_rng_key k42 = lam_rng_key_make(42);
  cr_assert(k42.k[0] == 0 && k42.k[1] == 42); /* JAX's PRNGKey(42) */

  /* split/fold_in are words 0..1 of philox({i or data, 0, tag, 0}, key). */
  lam_rng_key sub[5];
  cr_assert_eq(lam_rng_split(k42, 5, sub), LAM_OK);
  for (int i = 0; i < 5; i++) {
    uint32_t ctr[4] = {(uint32_t)i, 0, LAM_RNG_TAG_SPLIT, 0}, w[4];
    lam_philox4x32_10(ctr, k42.k, w);
    cr_assert(sub[i].k[0] == w[0] && sub[i].k[1] == w[1], "split %d", i);
    for (int j = 0; j < i; j++) cr_assert(!key_eq(sub[i], sub[j]));
    cr_assert(!key_eq(sub[i], k42));
    cr_assert(!key_eq(sub[i], lam_rng_fold_in(k42, (uint32_t)i)), "split and fold_in domains");
  }
  lam_rng_key one;
  cr_assert_eq(lam_rng_split(k42, 1, &one), LAM_OK);
  cr_assert(key_eq(one, sub[0]), "split is a prefix-stable sequence");
  for (uint32_t d = 0; d < 3; d++) {
    uint32_t ctr[4] = {d, 0, LAM_RNG_TAG_FOLD, 0}, w[4];
    lam_philox4x32_10(ctr, k42.k, w);
    lam_rng_key f = lam_rng_fold_in(k42, d);
    cr_assert(f.k[0] == w[0] && f.k[1] == w[1]);
  }
  /* fold_in_str: 64-bit FNV-1a, split over counter words 0 and 1. */
  uint64_t h = 0xcbf29ce484222325ULL;
  for (const char *p = "0.weight"; *p; p++) h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
  uint32_t ctr[4] = {(uint32_t)h, (uint32_t)(h >> 32), LAM_RNG_TAG_FOLD_STR, 0}, w[4];
  lam_philox4x32_10(ctr, k42.k, w);
  lam_rng_key fs = lam_rng_fold_in_str(k42, "0.weight");
  cr_assert(fs.k[0] == w[0] && fs.k[1] == w[1]);
  cr_assert(key_eq(lam_rng_fold_in_str(k42, NULL), lam_rng_fold_in_str(k42, "")));
  cr_assert(!key_eq(lam_rng_fold_in_str(k42, "0.weight"), lam_rng_fold_in_str(k42, "0.bias")));
  cr_assert(!key_eq(lam_rng_fold_in_str(k42, "a"), lam_rng_fold_in_str(lam_rng_key_make(43), "a")));
}

/* Pinned values: changing the scheme silently changes every model's init. */
Test(random, key_values_pinned) {
  lam_rng_key k = lam_rng_key_make(42), sub[2];
  cr_assert_eq(lam_rng_split(k, 2, sub), LAM_OK);
  lam_rng_key f = lam_rng_fold_in(k, 7), s = lam_rng_fold_in_str(k, "layers.0.weight");
  uint32_t got[8] = {sub[0].k[0], sub[0].k[1], sub[1].k[0], sub[1].k[1],
                     f.k[0],      f.k[1],      s.k[0],      s.k[1]};
  static const uint32_t want[8] = {0x9e796ba6, 0xf8c11f4d, 0xda4ebf99, 0xb1e1aeb1,
                                   0x9e813b6f, 0x04fcf97f, 0xedd18d81, 0xe83d798f};
  for (int i = 0; i < 8; i++) cr_assert_eq(got[i], want[i], "word %d: 0x%08x", i, got[i]);
  lam_ctx *ctx = tu_ctx();
  lam_tensor *b = lam_random_bits(ctx, k, 1, (int64_t[]){2});
  uint32_t *bw = read_any(b);
  cr_assert(bw[0] == 0x402d170bu && bw[1] == 0x0977f71fu, "bits 0x%08x 0x%08x", bw[0], bw[1]);
  free(bw);
  lam_tensor_free(b);
  lam_ctx_free(ctx);
}

/* ---- draws against the documented mappings -------------------------------- */

Test(random, bits_match_reference_odd_sizes) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  lam_rng_key key = lam_rng_key_make(0xfeedbeefcafeULL);
  for (int s = 0; s < n_odd_sizes(); s++) {
    int64_t n = odd_sizes[s];
    lam_tensor *t = lam_random_bits(ctx, key, 1, &n);
    uint32_t *got = read_any(t), *want = ref_words(key, n);
    cr_assert(memcmp(got, want, (size_t)n * 4) == 0, "size %lld", (long long)n);
    free(got);
    free(want);
    lam_tensor_free(t);
  }
  /* Shape does not matter, only the element index; a 0-dim tensor is word 0. */
  lam_tensor *a = lam_random_bits(ctx, key, 3, (int64_t[]){3, 5, 7});
  lam_tensor *b = lam_random_bits(ctx, key, 1, (int64_t[]){105});
  lam_tensor *c = lam_random_bits(ctx, key, 0, NULL);
  uint32_t *ga = read_any(a), *gb = read_any(b), *gc = read_any(c);
  cr_assert(memcmp(ga, gb, 105 * 4) == 0);
  cr_assert_eq(gc[0], ga[0]);
  free(ga), free(gb), free(gc);
  lam_tensor_free(a), lam_tensor_free(b), lam_tensor_free(c);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

Test(random, bits_statistics) {
  lam_ctx *ctx = tu_ctx();
  int64_t n = stat_n();
  lam_tensor *t = lam_random_bits(ctx, lam_rng_key_make(5), 1, &n);
  uint32_t *w = read_any(t);
  double tol = 6 * sqrt(0.25 / (double)n);
  for (int bit = 0; bit < 32; bit++) {
    int64_t ones = 0;
    for (int64_t i = 0; i < n; i++) ones += (w[i] >> bit) & 1;
    cr_assert(fabs((double)ones / (double)n - 0.5) < tol, "bit %d rate %g", bit,
              (double)ones / (double)n);
  }
  free(w);
  lam_tensor_free(t);
  lam_ctx_free(ctx);
}

/* Uniform: exact bits against fma(span, u, lo) capped below hi. */
static void check_uniform_exact(lam_ctx *ctx, lam_dtype dt, lam_rng_key key, int64_t n, double lo,
                                double hi) {
  lam_tensor *t = lam_random_uniform(ctx, key, dt, 1, &n, lo, hi);
  cr_assert(t, "%s", lam_last_error());
  if (dt == LAM_F32) {
    uint32_t *w = ref_words(key, n);
    float *got = tu_read_f32(t), fl = (float)lo, fh = (float)hi, span = fh - fl;
    for (int64_t i = 0; i < n; i++) {
      float want = fminf(fmaf(span, (float)(w[i] >> 8) * 0x1.0p-24f, fl), nextafterf(fh, -INFINITY));
      cr_assert(got[i] == want, "f32 [%g,%g) element %lld: %.9g != %.9g", lo, hi, (long long)i,
                got[i], want);
      cr_assert(got[i] >= fl && got[i] < fh);
    }
    free(w);
    free(got);
  } else {
    uint32_t *w = ref_words(key, 2 * n);
    double *got = tu_read_f64(t);
    for (int64_t i = 0; i < n; i++) {
      double u = (double)(pair64(w, i) >> 11) * 0x1.0p-53;
      double want = fmin(fma(hi - lo, u, lo), nextafter(hi, -INFINITY));
      cr_assert(got[i] == want, "f64 element %lld: %.17g != %.17g", (long long)i, got[i], want);
      cr_assert(got[i] >= lo && got[i] < hi);
    }
    free(w);
    free(got);
  }
  lam_tensor_free(t);
}

Test(random, uniform_matches_reference) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  lam_rng_key key = lam_rng_key_make(11);
  for (int s = 0; s < n_odd_sizes(); s++) {
    check_uniform_exact(ctx, LAM_F32, key, odd_sizes[s], -2.5, 7.25);
    if (has_f64(ctx)) check_uniform_exact(ctx, LAM_F64, key, odd_sizes[s], -2.5, 7.25);
  }
  /* A range where lo + span * u rounds onto hi without the cap. */
  check_uniform_exact(ctx, LAM_F32, key, 4096, 0.1, 16777216.0);
  check_uniform_exact(ctx, LAM_F32, key, 1000, 1.0, 1.0000002);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

Test(random, uniform_statistics) {
  lam_ctx *ctx = tu_ctx();
  int64_t n = stat_n();
  for (int d = 0; d < 2; d++) {
    lam_dtype dt = d ? LAM_F64 : LAM_F32;
    if (dt == LAM_F64 && !has_f64(ctx)) continue;
    lam_tensor *t = lam_random_uniform(ctx, lam_rng_key_make(100 + d), dt, 1, &n, 0, 1);
    double *x = read_as_f64(t), mean, var;
    moments(x, n, &mean, &var);
    cr_assert(fabs(mean - 0.5) < 6 * sqrt(1.0 / 12 / (double)n), "%s mean %g", lam_dtype_name(dt), mean);
    /* var of U^2-ish: sd of the sample variance ~ sqrt(1/180/n) */
    cr_assert(fabs(var - 1.0 / 12) < 6 * sqrt(1.0 / 180 / (double)n), "%s var %g", lam_dtype_name(dt), var);
    /* 64-bin chi-square: mean 63, sd ~11.2; 6 sd is 130. */
    int64_t bins[64] = {0};
    double lo = 1, hi = 0;
    for (int64_t i = 0; i < n; i++) {
      bins[(int)(x[i] * 64)]++;
      lo = fmin(lo, x[i]), hi = fmax(hi, x[i]);
    }
    double chi = 0, e = (double)n / 64;
    for (int b = 0; b < 64; b++) chi += (bins[b] - e) * (bins[b] - e) / e;
    cr_assert(chi < 130, "%s chi2 %g", lam_dtype_name(dt), chi);
    cr_assert(lo >= 0 && hi < 1 && lo < 1e-3 && hi > 1 - 1e-3);
    /* Neighbours are uncorrelated (a pairing bug shows up here). */
    double c = 0;
    for (int64_t i = 0; i + 1 < n; i++) c += (x[i] - 0.5) * (x[i + 1] - 0.5);
    c /= (double)(n - 1) * (1.0 / 12);
    cr_assert(fabs(c) < 6 / sqrt((double)n), "%s lag-1 corr %g", lam_dtype_name(dt), c);
    free(x);
    lam_tensor_free(t);
  }
  lam_ctx_free(ctx);
}

/* Normal: f32 against the documented Box-Muller in double (the device's
 * float log/sqrt/sinpi/cospi allow a few ulp); f64 against the library's
 * host twin lam_random_normal_host. */
Test(random, normal_matches_reference) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  lam_rng_key key = lam_rng_key_make(12);
  const double mean = 0.5, sd = 1.5;
  for (int s = 0; s < n_odd_sizes(); s++) {
    int64_t n = odd_sizes[s];
    lam_tensor *t = lam_random_normal(ctx, key, LAM_F32, 1, &n, mean, sd);
    float *got = tu_read_f32(t);
    uint32_t *w = ref_words(key, n + 1);
    for (int64_t i = 0; i < n; i++) {
      int64_t k = i / 2;
      double u1 = (double)((w[2 * k] >> 8) + 1) * 0x1.0p-24, u2 = (double)(w[2 * k + 1] >> 8) * 0x1.0p-24;
      double r = sqrt(-2 * log(u1)), z = i % 2 ? r * sin(2 * PI * u2) : r * cos(2 * PI * u2);
      double want = mean + sd * z;
      cr_assert(isfinite(got[i]) && fabs(got[i] - want) < 3e-5 * (1 + fabs(want)),
                "f32 size %lld element %lld: %.9g != %.9g", (long long)n, (long long)i, got[i], want);
    }
    free(w);
    free(got);
    lam_tensor_free(t);
    if (!has_f64(ctx)) continue;
    t = lam_random_normal(ctx, key, LAM_F64, 1, &n, mean, sd);
    double *gd = tu_read_f64(t), *ref = malloc((size_t)n * sizeof *ref);
    cr_assert_eq(lam_random_normal_host(key, n, ref), LAM_OK);
    for (int64_t i = 0; i < n; i++) ref[i] = mean + sd * ref[i];
    tu_assert_close_f64(gd, ref, n, 1e-13, 1e-13, "normal f64 vs host twin");
    free(gd);
    free(ref);
    lam_tensor_free(t);
  }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

Test(random, normal_statistics) {
  lam_ctx *ctx = tu_ctx();
  int64_t n = stat_n();
  for (int d = 0; d < 2; d++) {
    lam_dtype dt = d ? LAM_F64 : LAM_F32;
    if (dt == LAM_F64 && !has_f64(ctx)) continue;
    const double mu = 3, sd = 2;
    lam_tensor *t = lam_random_normal(ctx, lam_rng_key_make(200 + d), dt, 1, &n, mu, sd);
    double *x = read_as_f64(t), mean, var;
    const char *nm = lam_dtype_name(dt);
    moments(x, n, &mean, &var);
    double rn = sqrt((double)n);
    cr_assert(fabs(mean - mu) < 6 * sd / rn, "%s mean %g", nm, mean);
    cr_assert(fabs(var / (sd * sd) - 1) < 6 * sqrt(2.0) / rn, "%s var %g", nm, var);
    double m3 = 0, m4 = 0, c = 0, c2 = 0;
    int64_t in1 = 0, in2 = 0;
    for (int64_t i = 0; i < n; i++) {
      cr_assert(isfinite(x[i]));
      double z = (x[i] - mu) / sd;
      m3 += z * z * z, m4 += z * z * z * z;
      in1 += fabs(z) < 1, in2 += fabs(z) < 2;
      if (i + 1 < n) {
        double z1 = (x[i + 1] - mu) / sd;
        c += z * z1;
        c2 += (z * z - 1) * (z1 * z1 - 1); /* pairs share a radius: squares must not correlate */
      }
    }
    m3 /= (double)n, m4 /= (double)n, c /= (double)n, c2 /= 2.0 * (double)n;
    cr_assert(fabs(m3) < 6 * sqrt(15.0) / rn, "%s skew %g", nm, m3);
    cr_assert(fabs(m4 - 3) < 6 * sqrt(96.0) / rn, "%s kurtosis %g", nm, m4);
    cr_assert(fabs(c) < 6 / rn, "%s lag-1 corr %g", nm, c);
    cr_assert(fabs(c2) < 6 / rn, "%s lag-1 corr of squares %g", nm, c2);
    double p1 = 0.682689492137, p2 = 0.954499736104;
    cr_assert(fabs((double)in1 / (double)n - p1) < 6 * sqrt(p1 * (1 - p1) / (double)n), "%s", nm);
    cr_assert(fabs((double)in2 / (double)n - p2) < 6 * sqrt(p2 * (1 - p2) / (double)n), "%s", nm);
    free(x);
    lam_tensor_free(t);
  }
  /* stddev 0 is allowed and gives the mean. */
  lam_tensor *z = lam_random_normal(ctx, lam_rng_key_make(1), LAM_F32, 1, (int64_t[]){5}, -1.5, 0);
  float *zv = tu_read_f32(z);
  for (int i = 0; i < 5; i++) cr_assert_eq(zv[i], -1.5f);
  free(zv);
  lam_tensor_free(z);
  lam_ctx_free(ctx);
}

/* Truncated normal: against the documented inverse-CDF mapping with an
 * independent bisection inverse, then moments of the truncated law. */
static void check_truncnorm(lam_ctx *ctx, lam_dtype dt, double lo, double hi, double sd,
                            int64_t nref, int64_t nstat) {
  const char *nm = lam_dtype_name(dt);
  lam_rng_key key = lam_rng_key_make(300);
  int flip = lo + hi > 0;
  double a = flip ? -hi : lo, b = flip ? -lo : hi, pa = phi_cdf(a), pspan = phi_cdf(b) - pa;
  lam_tensor *t = lam_random_truncated_normal(ctx, key, dt, 1, &nref, lo, hi, sd);
  double *x = read_as_f64(t);
  uint32_t *w = ref_words(key, 2 * nref);
  for (int64_t i = 0; i < nref; i++) {
    double u = dt == LAM_F32 ? (double)(((w[i] >> 9) << 1) | 1) * 0x1.0p-24
                             : (double)(((pair64(w, i) >> 12) << 1) | 1) * 0x1.0p-53;
    double z = ref_ndtri(pa + u * pspan, a, b), want = (flip ? -sd : sd) * z;
    double tol = dt == LAM_F32 ? 3e-5 * (1 + fabs(want)) : 1e-9 * (1 + fabs(want));
    cr_assert(fabs(x[i] - want) < tol, "%s [%g,%g] element %lld: %.17g != %.17g", nm, lo, hi,
              (long long)i, x[i], want);
  }
  free(w);
  free(x);
  lam_tensor_free(t);
  /* Moments of the standard normal truncated to [lo, hi]. */
  double Z = phi_cdf(hi) - phi_cdf(lo), pl = phi_pdf(lo), ph = phi_pdf(hi);
  double mu = (pl - ph) / Z, var = 1 + (lo * pl - hi * ph) / Z - mu * mu;
  t = lam_random_truncated_normal(ctx, lam_rng_key_make(301), dt, 1, &nstat, lo, hi, sd);
  x = read_as_f64(t);
  double slo = sd * (dt == LAM_F32 ? (float)lo : lo), shi = sd * (dt == LAM_F32 ? (float)hi : hi);
  for (int64_t i = 0; i < nstat; i++)
    cr_assert(x[i] >= slo - 1e-6 * fabs(slo) && x[i] <= shi + 1e-6 * fabs(shi),
              "%s [%g,%g]: %g outside", nm, lo, hi, x[i]);
  double m, v;
  moments(x, nstat, &m, &v);
  double rn = sqrt((double)nstat);
  cr_assert(fabs(m / sd - mu) < 6 * sqrt(var) / rn, "%s [%g,%g] mean %g want %g", nm, lo, hi, m / sd, mu);
  /* SE of the sample variance: sqrt((m4 - var^2) / n), m4 the 4th central moment. */
  double m4 = 0;
  for (int64_t i = 0; i < nstat; i++) m4 += pow((x[i] - m) / sd, 4);
  m4 /= (double)nstat;
  double se = sqrt(fmax(m4 - var * var, 0) / (double)nstat);
  cr_assert(fabs(v / (sd * sd) - var) < 6 * se, "%s [%g,%g] var %g want %g (se %g)", nm, lo, hi,
            v / (sd * sd), var, se);
  free(x);
  lam_tensor_free(t);
}

Test(random, truncated_normal) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  int64_t nref = tu_small() ? 257 : 4099, nstat = stat_n();
  const double iv[][3] = {{-2, 2, 1.0}, {-2, 2, 0.37}, {0.5, 3, 1.0}, {-3, -1, 2.0},
                          {4, 6, 1.0}, {-1, 5, 1.0}, {-0.01, 0.02, 1.0}};
  for (int d = 0; d < 2; d++) {
    lam_dtype dt = d ? LAM_F64 : LAM_F32;
    if (dt == LAM_F64 && !has_f64(ctx)) continue;
    for (size_t i = 0; i < sizeof iv / sizeof iv[0]; i++)
      check_truncnorm(ctx, dt, iv[i][0], iv[i][1], iv[i][2], nref, i < 2 ? nstat : nstat / 4);
  }
  /* Odd sizes and the >2^22 case stay inside the bounds. */
  for (int s = 0; s < n_odd_sizes(); s++) {
    int64_t n = odd_sizes[s];
    lam_tensor *t = lam_random_truncated_normal(ctx, lam_rng_key_make(9), LAM_F32, 1, &n, -2, 2, 1);
    float *x = tu_read_f32(t);
    for (int64_t i = 0; i < n; i++) cr_assert(x[i] >= -2 && x[i] <= 2);
    free(x);
    lam_tensor_free(t);
  }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

Test(random, bernoulli) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  lam_rng_key key = lam_rng_key_make(400);
  int64_t n = stat_n();
  const double ps[] = {0.3, 0.5, 1e-3, 0.0, 1.0};
  for (size_t j = 0; j < 5; j++) {
    lam_tensor *t = lam_random_bernoulli(ctx, key, ps[j], 1, &n);
    cr_assert_eq(lam_tensor_dtype(t), LAM_U8);
    uint8_t *x = read_any(t);
    uint32_t *w = ref_words(key, n);
    uint64_t thr = (uint64_t)llround(ldexp(ps[j], 32));
    int64_t ones = 0;
    for (int64_t i = 0; i < n; i++) {
      cr_assert(x[i] == ((uint64_t)w[i] < thr), "p %g element %lld", ps[j], (long long)i);
      ones += x[i];
    }
    double rate = (double)ones / (double)n;
    cr_assert(fabs(rate - ps[j]) <= 6 * sqrt(ps[j] * (1 - ps[j]) / (double)n), "p %g rate %g", ps[j], rate);
    free(x);
    free(w);
    lam_tensor_free(t);
  }
  for (int s = 0; s < n_odd_sizes(); s++) {
    int64_t k = odd_sizes[s];
    lam_tensor *t = lam_random_bernoulli(ctx, key, 0.25, 1, &k);
    uint8_t *x = read_any(t);
    uint32_t *w = ref_words(key, k);
    for (int64_t i = 0; i < k; i++) cr_assert(x[i] == (w[i] < 0x40000000u));
    free(x);
    free(w);
    lam_tensor_free(t);
  }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

static void check_randint(lam_ctx *ctx, lam_rng_key key, int32_t lo, int32_t hi, int64_t n) {
  lam_tensor *t = lam_random_randint(ctx, key, lo, hi, 1, &n);
  cr_assert(t, "%s", lam_last_error());
  int32_t *x = read_any(t);
  uint32_t *w = ref_words(key, 2 * n);
  uint64_t range = (uint64_t)((int64_t)hi - lo);
  for (int64_t i = 0; i < n; i++) {
    uint64_t v = (uint64_t)(((unsigned __int128)pair64(w, i) * range) >> 64);
    int64_t want = (int64_t)lo + (int64_t)v;
    cr_assert(x[i] == want, "[%d,%d) element %lld: %d != %lld", lo, hi, (long long)i, x[i], (long long)want);
    cr_assert(x[i] >= lo && x[i] < hi);
  }
  free(w);
  free(x);
  lam_tensor_free(t);
}

Test(random, randint) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  lam_rng_key key = lam_rng_key_make(500);
  for (int s = 0; s < n_odd_sizes(); s++) check_randint(ctx, key, -3, 7, odd_sizes[s]);
  check_randint(ctx, key, INT32_MIN, INT32_MAX, 10001);
  check_randint(ctx, key, 5, 6, 33);
  check_randint(ctx, key, 0, 1 << 30, 999);
  /* Rough uniformity over 10 values, and over the whole int32 range. */
  int64_t n = stat_n();
  lam_tensor *t = lam_random_randint(ctx, key, -3, 7, 1, &n);
  int32_t *x = read_any(t);
  int64_t cnt[10] = {0};
  for (int64_t i = 0; i < n; i++) cnt[x[i] + 3]++;
  for (int v = 0; v < 10; v++)
    cr_assert(fabs((double)cnt[v] / (double)n - 0.1) < 6 * sqrt(0.09 / (double)n), "value %d: %lld", v - 3, (long long)cnt[v]);
  free(x);
  lam_tensor_free(t);
  t = lam_random_randint(ctx, key, INT32_MIN, INT32_MAX, 1, &n);
  x = read_any(t);
  double mean = 0;
  int64_t neg = 0;
  for (int64_t i = 0; i < n; i++) mean += x[i] / 2147483648.0, neg += x[i] < 0;
  mean /= (double)n;
  cr_assert(fabs(mean) < 6 * sqrt(1.0 / 3 / (double)n), "mean %g", mean);
  cr_assert(fabs((double)neg / (double)n - 0.5) < 6 * sqrt(0.25 / (double)n));
  free(x);
  lam_tensor_free(t);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- determinism ----------------------------------------------------------- */

/* Every draw of a key, concatenated as bytes. */
static unsigned char *all_draws(lam_ctx *ctx, lam_rng_key key, int64_t n, size_t *bytes) {
  lam_tensor *t[8];
  int k = 0;
  t[k++] = lam_random_bits(ctx, key, 1, &n);
  t[k++] = lam_random_uniform(ctx, key, LAM_F32, 1, &n, -1, 3);
  t[k++] = lam_random_normal(ctx, key, LAM_F32, 1, &n, 0, 1);
  t[k++] = lam_random_truncated_normal(ctx, key, LAM_F32, 1, &n, -2, 2, 1);
  t[k++] = lam_random_bernoulli(ctx, key, 0.4, 1, &n);
  t[k++] = lam_random_randint(ctx, key, -100, 1000, 1, &n);
  if (has_f64(ctx)) {
    t[k++] = lam_random_normal(ctx, key, LAM_F64, 1, &n, 0, 1);
    t[k++] = lam_random_uniform(ctx, key, LAM_F64, 1, &n, 0, 1);
  }
  size_t total = 0;
  for (int i = 0; i < k; i++) total += lam_tensor_nbytes(t[i]);
  unsigned char *out = malloc(total), *p = out;
  for (int i = 0; i < k; i++) {
    void *x = read_any(t[i]);
    memcpy(p, x, lam_tensor_nbytes(t[i]));
    p += lam_tensor_nbytes(t[i]);
    free(x);
    lam_tensor_free(t[i]);
  }
  *bytes = total;
  return out;
}

Test(random, deterministic_across_calls_and_contexts) {
  lam_ctx *c1 = tu_ctx(), *c2 = tu_ctx();
  lam_rng_key key = lam_rng_key_make(77);
  int64_t n = 1027;
  size_t b1, b2, b3, b4;
  unsigned char *x1 = all_draws(c1, key, n, &b1), *x2 = all_draws(c1, key, n, &b2);
  unsigned char *x3 = all_draws(c2, key, n, &b3);
  cr_assert(b1 == b2 && b1 == b3);
  cr_assert(memcmp(x1, x2, b1) == 0, "same key, two calls");
  cr_assert(memcmp(x1, x3, b1) == 0, "same key, two contexts");
  /* Other keys (make, split, fold_in) give different streams. */
  lam_rng_key sub[2];
  lam_rng_split(key, 2, sub);
  lam_rng_key others[] = {lam_rng_key_make(78), sub[0], sub[1], lam_rng_fold_in(key, 0),
                          lam_rng_fold_in(key, 1), lam_rng_fold_in_str(key, "w")};
  for (size_t o = 0; o < sizeof others / sizeof others[0]; o++) {
    unsigned char *y = all_draws(c1, others[o], n, &b4);
    /* raw words: at most a handful of the 1027 may coincide by chance */
    int same = 0;
    for (int64_t i = 0; i < n; i++) same += memcmp(x1 + 4 * i, y + 4 * i, 4) == 0;
    cr_assert(same == 0, "key %zu: %d equal words", o, same);
    free(y);
  }
  free(x1), free(x2), free(x3);
  lam_ctx_free(c1);
  lam_ctx_free(c2);
}

/* ---- bad input ------------------------------------------------------------- */

Test(random, bad_input) {
  lam_ctx *ctx = tu_ctx();
  lam_rng_key key = lam_rng_key_make(1);
  int64_t sh[2] = {3, 4}, bad[2] = {3, 0};
  tu_mark m = tu_mark_now(ctx);

  lam_rng_key out[2];
  tu_assert_status(lam_rng_split(key, 0, out), LAM_ERR_INVALID_ARGUMENT, "lam_rng_split: n is 0");
  tu_assert_status(lam_rng_split(key, -3, out), LAM_ERR_INVALID_ARGUMENT, "-3");
  tu_assert_status(lam_rng_split(key, 2, NULL), LAM_ERR_NULL, "out is NULL");
  tu_assert_status(lam_random_normal_host(key, -1, NULL), LAM_ERR_INVALID_ARGUMENT, "n is -1");
  tu_assert_status(lam_random_normal_host(key, 4, NULL), LAM_ERR_NULL, "out is NULL");

  tu_assert_fails(lam_random_bits(NULL, key, 2, sh), LAM_ERR_NULL, "lam_random_bits: ctx is NULL");
  tu_assert_fails(lam_random_bits(ctx, key, 2, bad), LAM_ERR_SHAPE, "lam_random_bits: dim 1");
  tu_assert_fails(lam_random_bits(ctx, key, 9, sh), LAM_ERR_SHAPE, "ndim 9");
  tu_assert_fails(lam_random_bits(ctx, key, 2, NULL), LAM_ERR_NULL, "shape is NULL");
  tu_assert_fails(lam_random_bits(ctx, key, 2, (int64_t[]){1 << 16, 1 << 16}), LAM_ERR_OUT_OF_MEMORY, "2^31");

  tu_assert_fails(lam_random_uniform(ctx, key, LAM_F32, 2, sh, 1, 1), LAM_ERR_INVALID_ARGUMENT,
                  "lam_random_uniform: hi 1 must be > lo 1");
  tu_assert_fails(lam_random_uniform(ctx, key, LAM_F32, 2, sh, 2, 1), LAM_ERR_INVALID_ARGUMENT, "hi 1 must be > lo 2");
  tu_assert_fails(lam_random_uniform(ctx, key, LAM_F32, 2, sh, 1, 1 + 1e-12), LAM_ERR_INVALID_ARGUMENT, "in f32");
  tu_assert_fails(lam_random_uniform(ctx, key, LAM_F32, 2, sh, 0, INFINITY), LAM_ERR_INVALID_ARGUMENT, "finite");
  tu_assert_fails(lam_random_uniform(ctx, key, LAM_F32, 2, sh, -3e38, 3e38), LAM_ERR_INVALID_ARGUMENT, "finite");
  tu_assert_fails(lam_random_uniform(ctx, key, LAM_F32, 2, sh, NAN, 1), LAM_ERR_INVALID_ARGUMENT, "lo nan");
  tu_assert_fails(lam_random_uniform(ctx, key, LAM_I32, 2, sh, 0, 1), LAM_ERR_DTYPE, "dtype i32");
  tu_assert_fails(lam_random_uniform(ctx, key, LAM_U8, 2, sh, 0, 1), LAM_ERR_DTYPE, "dtype u8");
  tu_assert_fails(lam_random_uniform(ctx, key, LAM_F16, 2, sh, 0, 1), LAM_ERR_DTYPE, "dtype f16");
  tu_assert_fails(lam_random_uniform(ctx, key, (lam_dtype)42, 2, sh, 0, 1), LAM_ERR_DTYPE, "dtype unknown");
  tu_assert_fails(lam_random_uniform(NULL, key, LAM_F32, 2, sh, 0, 1), LAM_ERR_NULL, "ctx is NULL");
  tu_assert_fails(lam_random_uniform(ctx, key, LAM_F32, 2, bad, 0, 1), LAM_ERR_SHAPE, "lam_random_uniform: dim 1");

  tu_assert_fails(lam_random_normal(ctx, key, LAM_F32, 2, sh, 0, -1), LAM_ERR_INVALID_ARGUMENT,
                  "lam_random_normal: stddev -1 is negative");
  tu_assert_fails(lam_random_normal(ctx, key, LAM_F32, 2, sh, NAN, 1), LAM_ERR_INVALID_ARGUMENT, "finite");
  tu_assert_fails(lam_random_normal(ctx, key, LAM_F32, 2, sh, 0, 1e39), LAM_ERR_INVALID_ARGUMENT, "finite in f32");
  tu_assert_fails(lam_random_normal(ctx, key, LAM_I32, 2, sh, 0, 1), LAM_ERR_DTYPE, "lam_random_normal: dtype i32");

  const char *tn = "lam_random_truncated_normal";
  tu_assert_fails(lam_random_truncated_normal(ctx, key, LAM_F32, 2, sh, 2, -2, 1), LAM_ERR_INVALID_ARGUMENT, "hi -2 must be > lo 2");
  tu_assert_fails(lam_random_truncated_normal(ctx, key, LAM_F32, 2, sh, 1, 1, 1), LAM_ERR_INVALID_ARGUMENT, tn);
  tu_assert_fails(lam_random_truncated_normal(ctx, key, LAM_F32, 2, sh, -2, 2, -0.5), LAM_ERR_INVALID_ARGUMENT, "stddev -0.5");
  tu_assert_fails(lam_random_truncated_normal(ctx, key, LAM_F32, 2, sh, -INFINITY, 2, 1), LAM_ERR_INVALID_ARGUMENT, "finite");
  tu_assert_fails(lam_random_truncated_normal(ctx, key, LAM_F32, 2, sh, -2, 2, 3e38), LAM_ERR_INVALID_ARGUMENT, "overflows");
  tu_assert_fails(lam_random_truncated_normal(ctx, key, LAM_U8, 2, sh, -2, 2, 1), LAM_ERR_DTYPE, tn);

  tu_assert_fails(lam_random_bernoulli(ctx, key, -0.1, 2, sh), LAM_ERR_INVALID_ARGUMENT,
                  "lam_random_bernoulli: p -0.1 is outside [0, 1]");
  tu_assert_fails(lam_random_bernoulli(ctx, key, 1.5, 2, sh), LAM_ERR_INVALID_ARGUMENT, "p 1.5");
  tu_assert_fails(lam_random_bernoulli(ctx, key, NAN, 2, sh), LAM_ERR_INVALID_ARGUMENT, "p nan");
  tu_assert_fails(lam_random_bernoulli(NULL, key, 0.5, 2, sh), LAM_ERR_NULL, "ctx");

  tu_assert_fails(lam_random_randint(ctx, key, 5, 5, 2, sh), LAM_ERR_INVALID_ARGUMENT,
                  "lam_random_randint: hi 5 must be > lo 5");
  tu_assert_fails(lam_random_randint(ctx, key, 5, -5, 2, sh), LAM_ERR_INVALID_ARGUMENT, "hi -5");
  tu_assert_fails(lam_random_randint(ctx, key, 0, 5, 2, bad), LAM_ERR_SHAPE, "lam_random_randint");

  lam_error_clear();
  tu_assert_fails(lam_random_philox(NULL, key), LAM_ERR_NULL, "lam_random_philox: ctr is NULL");
  lam_tensor *f = lam_tensor_zeros(ctx, LAM_F32, 1, (int64_t[]){4});
  lam_tensor *c3 = lam_tensor_zeros(ctx, LAM_I32, 2, (int64_t[]){2, 3});
  lam_tensor *s0 = lam_tensor_zeros(ctx, LAM_I32, 0, NULL);
  tu_mark m2 = tu_mark_now(ctx);
  tu_assert_fails(lam_random_philox(f, key), LAM_ERR_DTYPE, "ctr is f32");
  tu_assert_fails(lam_random_philox(c3, key), LAM_ERR_SHAPE, "ctr shape [2,3]");
  tu_assert_fails(lam_random_philox(s0, key), LAM_ERR_SHAPE, "ctr shape");
  tu_assert_no_leak(ctx, m2);
  lam_tensor_free(f), lam_tensor_free(c3), lam_tensor_free(s0);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}
