/* lamina/rng.h: counter-based random numbers (Philox-4x32-10).
 * Keys are values, split and folded like JAX's; the same key gives the same
 * bits on every device. There is no global state and no time-based seed.
 *
 * The scheme (stable: changing it changes every model's initial weights):
 *  - philox(ctr, key) is Philox-4x32-10 of Random123 (10 rounds, multipliers
 *    0xD2511F53/0xCD9E8D57, key bumps 0x9E3779B9/0xBB67AE85).
 *  - Counter word 2 is a domain tag, so the streams below never overlap:
 *      tensor draws  ctr = {block, 0, LAM_RNG_TAG_TENSOR (0), 0}
 *      split         ctr = {i, 0, LAM_RNG_TAG_SPLIT, 0}
 *      fold_in       ctr = {data, 0, LAM_RNG_TAG_FOLD, 0}
 *      fold_in_str   ctr = {h & 0xffffffff, h >> 32, LAM_RNG_TAG_FOLD_STR, 0},
 *                    h = 64-bit FNV-1a of the string's bytes
 *    A derived key is words 0 and 1 of that block.
 *  - lam_rng_key_make(seed) = {seed >> 32, seed & 0xffffffff}, as JAX's
 *    PRNGKey (so seeds below 2^32 give {0, seed}).
 *  - The word stream of a key is W(m) = philox({m >> 2, 0, 0, 0}, key)[m & 3].
 *    Every tensor draw is a function of W and the element index only, so a
 *    draw does not depend on the device, its work-group size or a seed
 *    counter; two draws with the same key are correlated exactly as in JAX
 *    (split or fold_in the key first). Mappings, for element m:
 *      bits        W(m)
 *      uniform f32 lo + (hi - lo) * u (one fma), u = (W(m) >> 8) * 2^-24,
 *                  capped at the largest float below hi
 *      uniform f64 same with u = (X(m) >> 11) * 2^-53, where
 *                  X(m) = W(2m) << 32 | W(2m+1) (the 64-bit pair)
 *      normal      Box-Muller on pairs (2k, 2k+1): u1 in (0,1], u2 in [0,1),
 *                  r = sqrt(-2 ln u1), z(2k) = r cos(2 pi u2),
 *                  z(2k+1) = r sin(2 pi u2), y = mean + stddev * z (one fma).
 *                  f32: u1 = ((W(2k) >> 8) + 1) 2^-24, u2 = (W(2k+1) >> 8) 2^-24;
 *                  f64: u1 = ((X(2k) >> 11) + 1) 2^-53, u2 = (X(2k+1) >> 11) 2^-53.
 *                  Never inf or NaN; |z| <= 5.77 (f32) or 8.58 (f64).
 *      truncated   inverse CDF: u in (0,1) (f32: (2 (W(m) >> 9) + 1) 2^-24,
 *      normal      f64: (2 (X(m) >> 12) + 1) 2^-53), p = Phi(a) + u (Phi(b) -
 *                  Phi(a)), z = Phi^-1(p) clamped to [a, b]; when lo + hi > 0
 *                  the interval is mirrored ([a, b] = [-hi, -lo], z negated)
 *                  so the CDF is evaluated where it is accurate.
 *      bernoulli   W(m) < round(p * 2^32): exactly that probability.
 *      randint     lo + floor(X(m) * (hi - lo) / 2^64) (multiply-shift on 64
 *                  bits): each value's probability is off by at most
 *                  (hi - lo) / 2^64, i.e. unmeasurable.
 *  - Bits, uniform, bernoulli and randint are bit-identical on every device
 *    (integer ops, exact conversions, correctly rounded fma). Normal and
 *    truncated normal use the device's log/sqrt/sinpi/cospi/erfc, which
 *    OpenCL lets differ by a few ulp between implementations. */
#ifndef LAMINA_RNG_H
#define LAMINA_RNG_H

#include "lamina/export.h"

#include <stdint.h>

#include "lamina/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lam_rng_key {
  uint32_t k[2];
} lam_rng_key;

/* Domain tags in counter word 2 (see above). */
#define LAM_RNG_TAG_TENSOR 0u
#define LAM_RNG_TAG_SPLIT 0x73706c74u    /* "splt" */
#define LAM_RNG_TAG_FOLD 0x666f6c64u     /* "fold" */
#define LAM_RNG_TAG_FOLD_STR 0x66737472u /* "fstr" */

/* Returns the key for a 64-bit seed: {seed >> 32, seed & 0xffffffff}. */
LAM_API lam_rng_key lam_rng_key_make(uint64_t seed);
/* Stores n (>= 1) independent keys derived from `key` in `out`:
 * out[i] = philox({i, 0, LAM_RNG_TAG_SPLIT, 0}, key)[0..1]. Returns LAM_OK,
 * or LAM_ERR_NULL / LAM_ERR_INVALID_ARGUMENT with a message. */
LAM_API lam_status lam_rng_split(lam_rng_key key, int n, lam_rng_key *out);
/* Returns a key derived from `key` and `data` (e.g. a layer index):
 * philox({data, 0, LAM_RNG_TAG_FOLD, 0}, key)[0..1]. */
LAM_API lam_rng_key lam_rng_fold_in(lam_rng_key key, uint32_t data);
/* Returns a key derived from `key` and a string (e.g. a parameter path),
 * through its 64-bit FNV-1a hash (NULL is hashed as ""). */
LAM_API lam_rng_key lam_rng_fold_in_str(lam_rng_key key, const char *text);
/* Reference Philox-4x32-10 block on the host: out = philox(ctr, key). */
LAM_API void lam_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* Raw 32-bit words as i32 (element i is word i of the Philox stream). */
LAM_API lam_tensor *lam_random_bits(lam_ctx *ctx, lam_rng_key key, int ndim, const int64_t *shape);
/* Uniform in [lo, hi) (f32 or f64; lo < hi once converted to dtype, hi - lo finite). */
LAM_API lam_tensor *lam_random_uniform(lam_ctx *ctx, lam_rng_key key, lam_dtype dtype, int ndim,
                               const int64_t *shape, double lo, double hi);
/* Normal with `mean` and `stddev` (>= 0; f32 or f64). */
LAM_API lam_tensor *lam_random_normal(lam_ctx *ctx, lam_rng_key key, lam_dtype dtype, int ndim,
                              const int64_t *shape, double mean, double stddev);
/* Standard normal truncated to [lo, hi] (finite, lo < hi), scaled by stddev
 * (>= 0): every value lies in [stddev * lo, stddev * hi]. f32 or f64. */
LAM_API lam_tensor *lam_random_truncated_normal(lam_ctx *ctx, lam_rng_key key, lam_dtype dtype,
                                        int ndim, const int64_t *shape, double lo, double hi,
                                        double stddev);
/* u8 with 1 at probability p (0 <= p <= 1). */
LAM_API lam_tensor *lam_random_bernoulli(lam_ctx *ctx, lam_rng_key key, double p, int ndim,
                                 const int64_t *shape);
/* i32 uniform in [lo, hi) (hi > lo). */
LAM_API lam_tensor *lam_random_randint(lam_ctx *ctx, lam_rng_key key, int32_t lo, int32_t hi, int ndim,
                               const int64_t *shape);

/* Runs Philox on the device for caller-given counters: `ctr` is an i32
 * tensor whose last dim is 4 (one counter per row, words as uint32 bits);
 * returns an i32 tensor of the same shape with philox(row, key) per row.
 * For known-answer tests and custom streams. */
LAM_API lam_tensor *lam_random_philox(lam_tensor *ctr, lam_rng_key key);
/* Host twin of lam_random_normal(ctx, key, LAM_F64, 1, {n}, 0, 1): fills
 * out[0..n) with the same values (up to the last bits of the math library).
 * Used where a host algorithm needs normals (orthogonal init). Returns LAM_OK
 * or LAM_ERR_NULL / LAM_ERR_INVALID_ARGUMENT. */
LAM_API lam_status lam_random_normal_host(lam_rng_key key, int64_t n, double *out);

#ifdef __cplusplus
}
#endif
#endif
