/* lamina/init.h: parameter initializers (Kaun's Init, Flax semantics).
 *
 * A lam_init is a small value (a kind and its numbers) made by the
 * constructors below and applied with lam_init_apply to make a tensor of a
 * given shape from an rng key. Constructors never fail; lam_init_apply (and
 * lam_init_check) validate. The same key, dtype and shape give the same
 * values on every call; layers derive one key per parameter with
 * lam_init_key_for(key, "weight"), so values depend on the key and the
 * parameter's path, not on creation order.
 *
 * Fans follow PyTorch's layout: a linear weight [out, in] has fan_in = in,
 * fan_out = out; a conv weight [out, in/groups, k...] has
 * fan_in = in/groups * prod(k), fan_out = out * prod(k); a 1-D shape [d] has
 * fan_in = fan_out = d; a scalar has 1 and 1.
 *
 * Variance scaling (Flax/JAX): n = fan_in, fan_out or (fan_in + fan_out) / 2
 * (at least 1), variance = scale / n, then
 *   truncated_normal: stddev * N(0,1) truncated to [-2, 2], with
 *                     stddev = sqrt(variance) / 0.87962566103423978 (so the
 *                     result has the target variance);
 *   normal:           N(0, variance) (JAX's "untruncated_normal"; JAX's own
 *                     "normal" also truncates);
 *   uniform:          U[-limit, limit), limit = sqrt(3 variance).
 * glorot = fan_avg, scale 1; lecun = fan_in, scale 1; he = fan_in, scale 2;
 * their *_normal variants use truncated_normal, as in Flax. */
#ifndef LAMINA_INIT_H
#define LAMINA_INIT_H

#include "lamina/export.h"

#include "lamina/rng.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lam_init_kind {
  LAM_INIT_DEFAULT = 0, /* "the layer's default": a zeroed lam_init; see lam_init_or */
  LAM_INIT_ZEROS,
  LAM_INIT_ONES,
  LAM_INIT_CONSTANT,
  LAM_INIT_UNIFORM,          /* U[0, scale) */
  LAM_INIT_NORMAL,           /* N(0, scale^2) */
  LAM_INIT_VARIANCE_SCALING, /* scale, mode, distribution */
  LAM_INIT_ORTHOGONAL        /* scale (gain) */
} lam_init_kind;

typedef enum lam_fan_mode { LAM_FAN_IN = 0, LAM_FAN_OUT, LAM_FAN_AVG } lam_fan_mode;

typedef enum lam_init_distribution {
  LAM_DIST_TRUNCATED_NORMAL = 0,
  LAM_DIST_NORMAL,
  LAM_DIST_UNIFORM
} lam_init_distribution;

typedef struct lam_init {
  lam_init_kind kind;
  double value; /* constant: the value; uniform: scale; normal: stddev;
                   variance scaling: scale; orthogonal: gain */
  lam_fan_mode mode;
  lam_init_distribution distribution;
} lam_init;

/* Flax's default scale of lam_init_uniform and stddev of lam_init_normal. */
#define LAM_INIT_DEFAULT_SCALE 1e-2

LAM_API lam_init lam_init_zeros(void);
LAM_API lam_init lam_init_ones(void);
LAM_API lam_init lam_init_constant(double value);
/* U[0, scale) (Flax's uniform; LAM_INIT_DEFAULT_SCALE is its default). */
LAM_API lam_init lam_init_uniform(double scale);
/* N(0, stddev^2) (Flax's normal; LAM_INIT_DEFAULT_SCALE is its default). */
LAM_API lam_init lam_init_normal(double stddev);
LAM_API lam_init lam_init_variance_scaling(double scale, lam_fan_mode mode,
                                   lam_init_distribution distribution);
LAM_API lam_init lam_init_glorot_uniform(void); /* xavier_uniform */
LAM_API lam_init lam_init_glorot_normal(void);
LAM_API lam_init lam_init_he_uniform(void);     /* kaiming_uniform */
LAM_API lam_init lam_init_he_normal(void);
LAM_API lam_init lam_init_lecun_uniform(void);
LAM_API lam_init lam_init_lecun_normal(void);
/* A (semi-)orthogonal matrix times `scale`, as PyTorch's orthogonal_ and
 * Flax's orthogonal: the shape is viewed as [rows = shape[0], cols =
 * prod(rest)], a standard normal matrix of that shape (rows < cols:
 * transposed) is QR-factorised on the host in f64 and Q's columns are
 * multiplied by sign(diag(R)). Rows >= cols gives orthonormal columns
 * (Q^T Q = I), rows < cols orthonormal rows (Q Q^T = I). Needs ndim >= 2. */
LAM_API lam_init lam_init_orthogonal(double scale);

/* Returns *init, or `fallback` when init is NULL or its kind is
 * LAM_INIT_DEFAULT (for layer options whose zeroed init means "default"). */
LAM_API lam_init lam_init_or(const lam_init *init, lam_init fallback);

/* Checks the kind, mode, distribution and value of `init` (scales must be
 * finite and >= 0, a constant finite; LAM_INIT_DEFAULT is not applicable).
 * Returns LAM_OK, or LAM_ERR_INVALID_ARGUMENT / LAM_ERR_NULL with a message.
 * lam_init_apply runs the same checks. */
LAM_API lam_status lam_init_check(const lam_init *init);

/* Stores PyTorch's fans of `shape` (see above) in *fan_in / *fan_out (either
 * may be NULL). Returns LAM_OK, or LAM_ERR_SHAPE for a bad shape. */
LAM_API lam_status lam_init_fans(int ndim, const int64_t *shape, double *fan_in, double *fan_out);

/* Returns a new tensor of `dtype` and `shape` drawn by `init` from `key`.
 * Random kinds need a float dtype (f32, f64, or f16 drawn in f32 and cast); zeros/ones/constant accept any dtype. Returns NULL
 * with a message on bad input (unknown kind/mode/distribution, negative or
 * non-finite scale, orthogonal on fewer than 2 dims, bad shape or dtype). */
LAM_API lam_tensor *lam_init_apply(const lam_init *init, lam_ctx *ctx, lam_rng_key key, lam_dtype dtype,
                           int ndim, const int64_t *shape);

/* The key for one parameter: lam_rng_fold_in_str(key, param_path). */
LAM_API lam_rng_key lam_init_key_for(lam_rng_key key, const char *param_path);

#ifdef __cplusplus
}
#endif
#endif
