/* lamina/elementwise.h: unary, binary (NumPy broadcasting), comparison and
 * select ops. Float ops take f32/f64/f16 (f16: stored as halves, computed in f32); add, sub,
 * mul, maximum, minimum, neg, abs, sign, square and comparisons also take
 * i32. Every function returns a new tensor or NULL with a message. Float ops
 * are differentiable (see lamina/autodiff.h). */
#ifndef LAMINA_ELEMENTWISE_H
#define LAMINA_ELEMENTWISE_H

#include "lamina/export.h"

#include "lamina/options.h"
#include "lamina/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lam_unary_op {
  LAM_NEG, LAM_ABS, LAM_SIGN, LAM_EXP, LAM_EXPM1, LAM_LOG, LAM_LOG1P, LAM_SQRT,
  LAM_RSQRT, LAM_SQUARE, LAM_RECIPROCAL, LAM_SIN, LAM_COS, LAM_TANH,
  LAM_SIGMOID, LAM_RELU, LAM_RELU6, LAM_LEAKY_RELU, LAM_ELU, LAM_CELU,
  LAM_SELU, LAM_GELU, LAM_GELU_TANH, LAM_SILU, LAM_MISH, LAM_SOFTPLUS,
  LAM_SOFTSIGN, LAM_HARD_SIGMOID, LAM_HARD_SWISH, LAM_LOG_SIGMOID, LAM_STEP,
  LAM_CLAMP,
  LAM_UNARY_COUNT
} lam_unary_op;

/* Returns the op's name ("relu", ...) or NULL if unknown. */
LAM_API const char *lam_unary_name(lam_unary_op op);

/* Parameters of the unary ops that take one (the others ignore them).
 * NULL, a zeroed struct and lam_unary_defaults() mean the same (see
 * lamina/options.h). */
typedef struct lam_unary_opts {
  double negative_slope; /* leaky_relu; 0: 0.01 (PyTorch), LAM_ZERO: 0 */
  double alpha;          /* elu, celu; 0: 1 (PyTorch), LAM_ZERO: 0 (elu only:
                            celu divides by alpha) */
  double min, max;       /* clamp bounds, used as given (0 is a bound) */
} lam_unary_opts;
/* Returns negative_slope 0.01, alpha 1, min 0, max 0. */
LAM_API lam_unary_opts lam_unary_defaults(void);

/* Applies `op` with its parameters from opts (NULL: defaults). */
LAM_API lam_tensor *lam_unary(lam_unary_op op, lam_tensor *x, const lam_unary_opts *opts);

LAM_API lam_tensor *lam_neg(lam_tensor *x);
LAM_API lam_tensor *lam_abs(lam_tensor *x);
LAM_API lam_tensor *lam_sign(lam_tensor *x);
LAM_API lam_tensor *lam_exp(lam_tensor *x);
LAM_API lam_tensor *lam_expm1(lam_tensor *x);
LAM_API lam_tensor *lam_log(lam_tensor *x);
LAM_API lam_tensor *lam_log1p(lam_tensor *x);
LAM_API lam_tensor *lam_sqrt(lam_tensor *x);
LAM_API lam_tensor *lam_rsqrt(lam_tensor *x);
LAM_API lam_tensor *lam_square(lam_tensor *x);
LAM_API lam_tensor *lam_reciprocal(lam_tensor *x);
LAM_API lam_tensor *lam_sin(lam_tensor *x);
LAM_API lam_tensor *lam_cos(lam_tensor *x);
LAM_API lam_tensor *lam_tanh(lam_tensor *x);
LAM_API lam_tensor *lam_sigmoid(lam_tensor *x);
LAM_API lam_tensor *lam_relu(lam_tensor *x);
LAM_API lam_tensor *lam_relu6(lam_tensor *x);
LAM_API lam_tensor *lam_leaky_relu(lam_tensor *x, double slope);   /* PyTorch default 0.01 */
LAM_API lam_tensor *lam_elu(lam_tensor *x, double alpha);          /* default 1.0 */
LAM_API lam_tensor *lam_celu(lam_tensor *x, double alpha);         /* default 1.0 */
LAM_API lam_tensor *lam_selu(lam_tensor *x);
LAM_API lam_tensor *lam_gelu(lam_tensor *x);                       /* exact, with erf */
LAM_API lam_tensor *lam_gelu_tanh(lam_tensor *x);                  /* tanh approximation */
LAM_API lam_tensor *lam_silu(lam_tensor *x);
LAM_API lam_tensor *lam_mish(lam_tensor *x);
LAM_API lam_tensor *lam_softplus(lam_tensor *x);
LAM_API lam_tensor *lam_softsign(lam_tensor *x);
LAM_API lam_tensor *lam_hard_sigmoid(lam_tensor *x);               /* relu6(x + 3) / 6 */
LAM_API lam_tensor *lam_hard_swish(lam_tensor *x);                 /* x * hard_sigmoid(x) */
LAM_API lam_tensor *lam_log_sigmoid(lam_tensor *x);
LAM_API lam_tensor *lam_step(lam_tensor *x);                       /* 1 where x > 0, else 0 */
LAM_API lam_tensor *lam_clamp(lam_tensor *x, double lo, double hi);

typedef enum lam_binary_op {
  LAM_ADD, LAM_SUB, LAM_MUL, LAM_DIV, LAM_POW, LAM_MAXIMUM, LAM_MINIMUM,
  LAM_BINARY_COUNT
} lam_binary_op;

typedef enum lam_compare_op {
  LAM_EQ, LAM_NE, LAM_LT, LAM_LE, LAM_GT, LAM_GE,
  LAM_COMPARE_COUNT
} lam_compare_op;

/* Applies `op` with NumPy broadcasting; a and b share a dtype. */
LAM_API lam_tensor *lam_binary(lam_binary_op op, lam_tensor *a, lam_tensor *b);
LAM_API lam_tensor *lam_add(lam_tensor *a, lam_tensor *b);
LAM_API lam_tensor *lam_sub(lam_tensor *a, lam_tensor *b);
LAM_API lam_tensor *lam_mul(lam_tensor *a, lam_tensor *b);
LAM_API lam_tensor *lam_div(lam_tensor *a, lam_tensor *b);
LAM_API lam_tensor *lam_pow(lam_tensor *a, lam_tensor *b);
LAM_API lam_tensor *lam_maximum(lam_tensor *a, lam_tensor *b);
LAM_API lam_tensor *lam_minimum(lam_tensor *a, lam_tensor *b);

/* Scalar forms: `x op s`, or `s op x` when scalar_first is nonzero. */
LAM_API lam_tensor *lam_binary_scalar(lam_binary_op op, lam_tensor *x, double s, int scalar_first);
LAM_API lam_tensor *lam_add_scalar(lam_tensor *x, double s);
LAM_API lam_tensor *lam_sub_scalar(lam_tensor *x, double s);
LAM_API lam_tensor *lam_mul_scalar(lam_tensor *x, double s);
LAM_API lam_tensor *lam_div_scalar(lam_tensor *x, double s);
LAM_API lam_tensor *lam_pow_scalar(lam_tensor *x, double s);
LAM_API lam_tensor *lam_rsub_scalar(lam_tensor *x, double s);      /* s - x */
LAM_API lam_tensor *lam_rdiv_scalar(lam_tensor *x, double s);      /* s / x */

/* Comparisons with broadcasting; return u8 (1 true, 0 false). */
LAM_API lam_tensor *lam_compare(lam_compare_op op, lam_tensor *a, lam_tensor *b);
LAM_API lam_tensor *lam_compare_scalar(lam_compare_op op, lam_tensor *x, double s);
LAM_API lam_tensor *lam_eq(lam_tensor *a, lam_tensor *b);
LAM_API lam_tensor *lam_ne(lam_tensor *a, lam_tensor *b);
LAM_API lam_tensor *lam_lt(lam_tensor *a, lam_tensor *b);
LAM_API lam_tensor *lam_le(lam_tensor *a, lam_tensor *b);
LAM_API lam_tensor *lam_gt(lam_tensor *a, lam_tensor *b);
LAM_API lam_tensor *lam_ge(lam_tensor *a, lam_tensor *b);

/* Returns cond ? a : b elementwise with broadcasting of all three; cond is
 * u8 (nonzero true), a and b share a dtype. Differentiable in a and b. */
LAM_API lam_tensor *lam_where(lam_tensor *cond, lam_tensor *a, lam_tensor *b);

#ifdef __cplusplus
}
#endif
#endif
