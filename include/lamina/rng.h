/* lamina/rng.h: counter-based random numbers (Philox-4x32-10).
 * Keys are values, split and folded like JAX's; the same key gives the same
 * bits on every device. There is no global state and no time-based seed. */
#ifndef LAMINA_RNG_H
#define LAMINA_RNG_H

#include <stdint.h>

#include "lamina/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lam_rng_key {
  uint32_t k[2];
} lam_rng_key;

/* Returns the key for a 64-bit seed. */
lam_rng_key lam_rng_key_make(uint64_t seed);
/* Stores n (>= 1) independent keys derived from `key` in `out`. */
lam_status lam_rng_split(lam_rng_key key, int n, lam_rng_key *out);
/* Returns a key derived from `key` and `data` (e.g. a layer index). */
lam_rng_key lam_rng_fold_in(lam_rng_key key, uint32_t data);
/* Returns a key derived from `key` and a string (e.g. a parameter path). */
lam_rng_key lam_rng_fold_in_str(lam_rng_key key, const char *text);
/* Reference Philox-4x32-10 block on the host: out = philox(ctr, key). */
void lam_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* Raw 32-bit words as i32 (element i is word i of the Philox stream). */
lam_tensor *lam_random_bits(lam_ctx *ctx, lam_rng_key key, int ndim, const int64_t *shape);
/* Uniform in [lo, hi). */
lam_tensor *lam_random_uniform(lam_ctx *ctx, lam_rng_key key, lam_dtype dtype, int ndim,
                               const int64_t *shape, double lo, double hi);
/* Normal with `mean` and `stddev`. */
lam_tensor *lam_random_normal(lam_ctx *ctx, lam_rng_key key, lam_dtype dtype, int ndim,
                              const int64_t *shape, double mean, double stddev);
/* Standard normal truncated to [lo, hi], scaled by stddev. */
lam_tensor *lam_random_truncated_normal(lam_ctx *ctx, lam_rng_key key, lam_dtype dtype,
                                        int ndim, const int64_t *shape, double lo, double hi,
                                        double stddev);
/* u8 with 1 at probability p. */
lam_tensor *lam_random_bernoulli(lam_ctx *ctx, lam_rng_key key, double p, int ndim,
                                 const int64_t *shape);
/* i32 uniform in [lo, hi). */
lam_tensor *lam_random_randint(lam_ctx *ctx, lam_rng_key key, int32_t lo, int32_t hi, int ndim,
                               const int64_t *shape);

#ifdef __cplusplus
}
#endif
#endif
