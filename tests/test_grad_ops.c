/* test_grad_ops.c: one table, one line per differentiable op of the public
 * API (elementwise.h, reduce.h, linalg.h, shape.h and the tensor views
 * lam_tensor_reshape / lam_tensor_slice0), in the spirit of ggml's
 * test-backend-ops. Each row names the op, its input shapes, the range its
 * random f64 inputs are drawn from (kinks such as relu's 0 are kept 0.1 away)
 * and a small adapter calling the op; one parameterized Criterion test per
 * row runs tu_gradcheck (central differences in f64, relative error 1e-6,
 * and the f32 analytic gradient against the f64 one), checks the gradient is
 * not trivially zero and that nothing leaked. Further tests make sure the
 * table covers every unary/binary op code and that the checker itself would
 * catch a wrong gradient. Op results themselves are checked in the family
 * suites; this suite is only about backward rules. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
/* after criterion.h (from testutil.h): the other order leaves Test() undefined */
#include <criterion/parameterized.h>

/* ---- adapters ------------------------------------------------------------ */

/* One-input adapters see the input as x; two-input ones as a and b. */
#define F1(name, expr)                                               \
  static lam_tensor *name(lam_tensor *const *xs, int n, void *u) {   \
    (void)n;                                                         \
    (void)u;                                                         \
    lam_tensor *x = xs[0];                                           \
    return expr;                                                     \
  }
#define F2(name, expr)                                               \
  static lam_tensor *name(lam_tensor *const *xs, int n, void *u) {   \
    (void)n;                                                         \
    (void)u;                                                         \
    lam_tensor *a = xs[0], *b = xs[1];                               \
    return expr;                                                     \
  }

/* unary */
F1(f_neg, lam_neg(x))
F1(f_abs, lam_abs(x))
F1(f_sign, lam_sign(x))
F1(f_exp, lam_exp(x))
F1(f_expm1, lam_expm1(x))
F1(f_log, lam_log(x))
F1(f_log1p, lam_log1p(x))
F1(f_sqrt, lam_sqrt(x))
F1(f_rsqrt, lam_rsqrt(x))
F1(f_square, lam_square(x))
F1(f_reciprocal, lam_reciprocal(x))
F1(f_sin, lam_sin(x))
F1(f_cos, lam_cos(x))
F1(f_tanh, lam_tanh(x))
F1(f_sigmoid, lam_sigmoid(x))
F1(f_relu, lam_relu(x))
F1(f_relu6, lam_relu6(x))
F1(f_leaky_relu, lam_leaky_relu(x, 0.1))
F1(f_elu, lam_elu(x, 0.7))
F1(f_celu, lam_celu(x, 1.3))
F1(f_selu, lam_selu(x))
F1(f_gelu, lam_gelu(x))
F1(f_gelu_tanh, lam_gelu_tanh(x))
F1(f_silu, lam_silu(x))
F1(f_mish, lam_mish(x))
F1(f_softplus, lam_softplus(x))
F1(f_softsign, lam_softsign(x))
F1(f_hard_sigmoid, lam_hard_sigmoid(x))
F1(f_hard_swish, lam_hard_swish(x))
F1(f_log_sigmoid, lam_log_sigmoid(x))
F1(f_step, lam_step(x))
F1(f_clamp, lam_clamp(x, -0.5, 0.8))
F1(f_unary_celu, lam_unary(LAM_CELU, x, &(lam_unary_opts){.alpha = 0.5}))
F1(f_unary_clamp_lo, lam_unary(LAM_CLAMP, x, &(lam_unary_opts){.min = 0.2, .max = INFINITY}))

/* binary (with broadcasting) */
F2(f_add, lam_add(a, b))
F2(f_sub, lam_sub(a, b))
F2(f_mul, lam_mul(a, b))
F2(f_div, lam_div(a, b))
F2(f_pow, lam_pow(a, b))
F2(f_maximum, lam_maximum(a, b))
F2(f_minimum, lam_minimum(a, b))
F2(f_binary_sub, lam_binary(LAM_SUB, a, b))

/* scalar forms */
F1(f_add_scalar, lam_add_scalar(x, 0.3))
F1(f_sub_scalar, lam_sub_scalar(x, -1.2))
F1(f_mul_scalar, lam_mul_scalar(x, -2.5))
F1(f_div_scalar, lam_div_scalar(x, 0.7))
F1(f_pow_scalar, lam_pow_scalar(x, 2.5))
F1(f_pow_scalar_neg, lam_pow_scalar(x, -1.5))
F1(f_rsub_scalar, lam_rsub_scalar(x, 0.4))
F1(f_rdiv_scalar, lam_rdiv_scalar(x, 1.7))
F1(f_scalar_pow_first, lam_binary_scalar(LAM_POW, x, 1.7, 1))
F1(f_scalar_max, lam_binary_scalar(LAM_MAXIMUM, x, 0.3, 0))
F1(f_scalar_min_first, lam_binary_scalar(LAM_MINIMUM, x, -0.2, 1))
F1(f_scalar_sub_first, lam_binary_scalar(LAM_SUB, x, 0.6, 1))
F1(f_scalar_div_first, lam_binary_scalar(LAM_DIV, x, -1.1, 1))

/* where: cond [3,1] = {1, 0, 1} broadcast against a [1,4] and b [2,3,4] */
static lam_tensor *f_where(lam_tensor *const *xs, int n, void *u) {
  (void)n;
  (void)u;
  static const uint8_t cv[3] = {1, 0, 1};
  lam_tensor *cond = lam_tensor_from_host(lam_tensor_ctx(xs[0]), LAM_U8, 2, (int64_t[]){3, 1}, cv);
  lam_tensor *y = lam_where(cond, xs[0], xs[1]);
  lam_tensor_free(cond);
  return y;
}

/* reductions over axis sets; softmax */
F1(f_sum_02, lam_sum(x, 2, (int[]){0, 2}, 0))
F1(f_sum_all, lam_sum(x, 0, NULL, 0))
F1(f_mean_last_keep, lam_mean(x, 1, (int[]){-1}, 1))
F1(f_mean_all, lam_mean(x, 0, NULL, 0))
F1(f_max_1, lam_max(x, 1, (int[]){1}, 0))
F1(f_max_all, lam_max(x, 0, NULL, 0))
F1(f_min_02_keep, lam_min(x, 2, (int[]){0, 2}, 1))
F1(f_prod_1, lam_prod(x, 1, (int[]){1}, 0))
F1(f_prod_all, lam_prod(x, 0, NULL, 1))
F1(f_var_02, lam_var(x, 2, (int[]){0, 2}, 1.0, 0))
F1(f_var_last_pop, lam_var(x, 1, (int[]){-1}, 0.0, 1))
F1(f_logsumexp_12, lam_logsumexp(x, 2, (int[]){1, 2}, 0))
F1(f_logsumexp_all, lam_logsumexp(x, 0, NULL, 1))
F1(f_softmax_1, lam_softmax(x, 1))
F1(f_softmax_last, lam_softmax(x, -1))
F1(f_log_softmax_0, lam_log_softmax(x, 0))
F1(f_log_softmax_last, lam_log_softmax(x, -1))

/* matmul */
F2(f_matmul, lam_matmul(a, b))
F2(f_matmul_tn, lam_matmul_t(a, b, 1, 0))
F2(f_matmul_nt, lam_matmul_t(a, b, 0, 1))
F2(f_matmul_tt, lam_matmul_t(a, b, 1, 1))

/* shape ops */
F1(f_tensor_reshape, lam_tensor_reshape(x, 2, (int64_t[]){6, -1}))
F1(f_tensor_slice0, lam_tensor_slice0(x, 1, 4))
F1(f_reshape, lam_reshape(x, 3, (int64_t[]){4, -1, 2}))
F1(f_permute, lam_permute(x, (int[]){2, 0, 1}))
F1(f_permute_unit, lam_permute(x, (int[]){1, 0, -1}))
F1(f_transpose, lam_transpose(x, 0, -1))
F1(f_broadcast_to, lam_broadcast_to(x, 3, (int64_t[]){2, 3, 4}))
F1(f_contiguous, lam_contiguous(x))
F1(f_flatten, lam_flatten(x, 1, 2))
F1(f_squeeze, lam_squeeze(x, 1))
F1(f_unsqueeze, lam_unsqueeze(x, -1))
F1(f_slice_steps, lam_slice(x, (int64_t[]){INT64_MAX, 1, 0}, (int64_t[]){INT64_MIN, 5, 3},
                            (int64_t[]){-1, 2, 1}))
F1(f_slice_rows, lam_slice(x, (int64_t[]){1, 0}, (int64_t[]){3, 5}, NULL))
F1(f_slice_axis, lam_slice_axis(x, -1, 3, 0, -2))
F1(f_pad_constant, lam_pad(x, (int64_t[]){1, 0, 2, 1}, LAM_PAD_CONSTANT, 0.5))
F1(f_pad_reflect, lam_pad(x, (int64_t[]){0, 0, 1, 1, 2, 3}, LAM_PAD_REFLECT, 0))
F1(f_pad_replicate, lam_pad(x, (int64_t[]){2, 1, 0, 3}, LAM_PAD_REPLICATE, 0))
F1(f_tril, lam_tril(x, 0))
F1(f_tril_neg, lam_tril(x, -1))
F1(f_triu, lam_triu(x, 1))

static lam_tensor *f_concat(lam_tensor *const *xs, int n, void *u) {
  (void)u;
  return lam_concat(xs, n, 1);
}
static lam_tensor *f_stack(lam_tensor *const *xs, int n, void *u) {
  (void)u;
  return lam_stack(xs, n, 1);
}
/* split into parts of {1, 3, 2} along axis 1, joined back in reverse order */
static lam_tensor *f_split_sizes(lam_tensor *const *xs, int n, void *u) {
  (void)n;
  (void)u;
  lam_tensor *p[3];
  if (lam_split(xs[0], 1, 3, (int64_t[]){1, 3, 2}, p) != LAM_OK) return NULL;
  lam_tensor *y = lam_concat((lam_tensor *[]){p[2], p[1], p[0]}, 3, 1);
  for (int k = 0; k < 3; k++) lam_tensor_free(p[k]);
  return y;
}
/* equal split along axis 0 (views), joined back as (last, first) */
static lam_tensor *f_split_equal(lam_tensor *const *xs, int n, void *u) {
  (void)n;
  (void)u;
  lam_tensor *p[3];
  if (lam_split(xs[0], 0, 3, NULL, p) != LAM_OK) return NULL;
  lam_tensor *y = lam_concat((lam_tensor *[]){p[2], p[0]}, 2, 0);
  for (int k = 0; k < 3; k++) lam_tensor_free(p[k]);
  return y;
}

/* index ops: the i32 index is made on the fly (it is not differentiated) */
static lam_tensor *i32(lam_tensor *like, int nd, const int64_t *shape, const int32_t *v) {
  return lam_tensor_from_host(lam_tensor_ctx(like), LAM_I32, nd, shape, v);
}
/* gather along axis 1 of [2,4,3] with an index [2,5,2]: repeats, negatives, out of range */
static lam_tensor *f_gather(lam_tensor *const *xs, int n, void *u) {
  (void)n;
  (void)u;
  static const int32_t v[20] = {0, 0, 3, -1, 3, 3, 9, 2, -4, 1, 1, 1, 2, 2, -9, 0, 3, 3, 0, 0};
  lam_tensor *idx = i32(xs[0], 3, (int64_t[]){2, 5, 2}, v);
  lam_tensor *y = lam_gather(xs[0], 1, idx);
  lam_tensor_free(idx);
  return y;
}
/* take along axis 1 of [3,4] with a [2,3] index (repeats, a negative, one out of range) */
static lam_tensor *f_take(lam_tensor *const *xs, int n, void *u) {
  (void)n;
  (void)u;
  static const int32_t v[6] = {2, -1, 0, 2, 2, 5};
  lam_tensor *idx = i32(xs[0], 2, (int64_t[]){2, 3}, v);
  lam_tensor *y = lam_take(xs[0], idx, 1);
  lam_tensor_free(idx);
  return y;
}
/* take with a 0-dim index along axis 0 */
static lam_tensor *f_take_scalar(lam_tensor *const *xs, int n, void *u) {
  (void)n;
  (void)u;
  static const int32_t v[1] = {-2};
  lam_tensor *idx = i32(xs[0], 0, NULL, v);
  lam_tensor *y = lam_take(xs[0], idx, 0);
  lam_tensor_free(idx);
  return y;
}
static lam_tensor *f_index_select(lam_tensor *const *xs, int n, void *u) {
  (void)n;
  (void)u;
  static const int32_t v[5] = {2, 0, 2, -1, 1};
  lam_tensor *idx = i32(xs[0], 1, (int64_t[]){5}, v);
  lam_tensor *y = lam_index_select(xs[0], 0, idx);
  lam_tensor_free(idx);
  return y;
}
/* scatter_add into x [3,4] along axis 0 from src [2,4]: both get gradients */
static lam_tensor *f_scatter_add(lam_tensor *const *xs, int n, void *u) {
  (void)n;
  (void)u;
  static const int32_t v[8] = {2, 0, 2, -1, 2, 1, 0, 2};
  lam_tensor *idx = i32(xs[0], 2, (int64_t[]){2, 4}, v);
  lam_tensor *y = lam_scatter_add(xs[0], 0, idx, xs[1]);
  lam_tensor_free(idx);
  return y;
}

/* ---- the table ----------------------------------------------------------- */

/* An input: rank, shape, and the range [lo, hi) its values are drawn from. */
typedef struct gin {
  int nd;
  int64_t s[4];
  double lo, hi;
} gin;

enum { ZERO_GRAD = 1 }; /* the op's gradient is zero everywhere (sign, step) */

typedef struct grow {
  const char *name; /* unary/binary rows use lam_unary_name / the op's name */
  lam_tensors_fn fn;
  int n;            /* float inputs */
  gin in[4];
  int nkink;        /* values are kept at least KINK_GAP away from these */
  double kink[2];
  unsigned flags;
  double f32_tol;   /* 0: DEFAULT_F32_TOL */
  const char *known_bad; /* set: the row is skipped with this reason (a backward bug) */
} grow;

#define S0 0, {0}
#define S1(a) 1, {a}
#define S2(a, b) 2, {a, b}
#define S3(a, b, c) 3, {a, b, c}
#define S4(a, b, c, d) 4, {a, b, c, d}
#define K1(a) .nkink = 1, .kink = {a}
#define K2(a, b) .nkink = 2, .kink = {a, b}
#define KINK_GAP 0.1
#define DEFAULT_F32_TOL 2e-3

static const grow rows[] = {
    /* unary: names equal lam_unary_name(op) (checked by table_covers_every_op_code) */
    {"neg", f_neg, 1, .in = {{S2(3, 4), -2, 2}}},
    {"abs", f_abs, 1, .in = {{S2(3, 4), -2, 2}}, K1(0)},
    {"sign", f_sign, 1, .in = {{S2(3, 4), -2, 2}}, K1(0), .flags = ZERO_GRAD},
    {"exp", f_exp, 1, .in = {{S2(3, 4), -2, 2}}},
    {"expm1", f_expm1, 1, .in = {{S2(3, 4), -2, 2}}},
    {"log", f_log, 1, .in = {{S2(3, 4), 0.3, 3}}},
    {"log1p", f_log1p, 1, .in = {{S2(3, 4), -0.7, 2}}},
    {"sqrt", f_sqrt, 1, .in = {{S2(3, 4), 0.3, 3}}},
    {"rsqrt", f_rsqrt, 1, .in = {{S2(3, 4), 0.3, 3}}},
    {"square", f_square, 1, .in = {{S2(3, 4), -2, 2}}},
    {"reciprocal", f_reciprocal, 1, .in = {{S2(3, 4), 0.3, 3}}},
    {"sin", f_sin, 1, .in = {{S2(3, 4), -3, 3}}},
    {"cos", f_cos, 1, .in = {{S2(3, 4), -3, 3}}},
    {"tanh", f_tanh, 1, .in = {{S2(3, 4), -2, 2}}},
    {"sigmoid", f_sigmoid, 1, .in = {{S2(3, 4), -4, 4}}},
    {"relu", f_relu, 1, .in = {{S2(3, 4), -2, 2}}, K1(0)},
    {"relu6", f_relu6, 1, .in = {{S2(3, 4), -2, 8}}, K2(0, 6)},
    {"leaky_relu", f_leaky_relu, 1, .in = {{S2(3, 4), -2, 2}}, K1(0)},
    {"elu", f_elu, 1, .in = {{S2(3, 4), -3, 2}}, K1(0)},
    {"celu", f_celu, 1, .in = {{S2(3, 4), -3, 2}}, K1(0)},
    {"selu", f_selu, 1, .in = {{S2(3, 4), -3, 2}}, K1(0)},
    {"gelu", f_gelu, 1, .in = {{S2(3, 4), -3, 3}}},
    {"gelu_tanh", f_gelu_tanh, 1, .in = {{S2(3, 4), -3, 3}}},
    {"silu", f_silu, 1, .in = {{S2(3, 4), -4, 4}}},
    {"mish", f_mish, 1, .in = {{S2(3, 4), -4, 4}}},
    {"softplus", f_softplus, 1, .in = {{S2(3, 4), -4, 4}}},
    {"softsign", f_softsign, 1, .in = {{S2(3, 4), -3, 3}}, K1(0)},
    {"hard_sigmoid", f_hard_sigmoid, 1, .in = {{S2(3, 4), -5, 5}}, K2(-3, 3)},
    {"hard_swish", f_hard_swish, 1, .in = {{S2(3, 4), -5, 5}}, K2(-3, 3)},
    {"log_sigmoid", f_log_sigmoid, 1, .in = {{S2(3, 4), -4, 4}}},
    {"step", f_step, 1, .in = {{S2(3, 4), -2, 2}}, K1(0), .flags = ZERO_GRAD},
    {"clamp", f_clamp, 1, .in = {{S2(3, 4), -2, 2}}, K2(-0.5, 0.8)},
    {"unary(celu, alpha 0.5)", f_unary_celu, 1, .in = {{S3(2, 3, 2), -3, 2}}, K1(0)},
    {"unary(clamp, lo only)", f_unary_clamp_lo, 1, .in = {{S3(2, 3, 2), -2, 2}}, K1(0.2)},

    /* binary with broadcasting pairs; names equal the op's name */
    {"add", f_add, 2, .in = {{S3(2, 3, 4), -2, 2}, {S2(3, 1), -2, 2}}},
    {"sub", f_sub, 2, .in = {{S2(3, 1), -2, 2}, {S3(2, 1, 4), -2, 2}}},
    {"mul", f_mul, 2, .in = {{S1(4), -2, 2}, {S3(2, 3, 4), -2, 2}}},
    {"div", f_div, 2, .in = {{S2(3, 4), -2, 2}, {S2(3, 1), 0.5, 2}}},
    {"pow", f_pow, 2, .in = {{S3(2, 1, 4), 0.5, 2}, {S2(3, 1), -1.5, 2}}},
    {"maximum", f_maximum, 2, .in = {{S2(3, 4), -2, 2}, {S1(4), -2, 2}}},
    {"minimum", f_minimum, 2, .in = {{S3(2, 3, 1), -2, 2}, {S2(1, 4), -2, 2}}},
    {"binary(sub) 0-dim - [3,4]", f_binary_sub, 2, .in = {{S0, -2, 2}, {S2(3, 4), -2, 2}}},

    /* scalar forms */
    {"add_scalar", f_add_scalar, 1, .in = {{S2(3, 4), -2, 2}}},
    {"sub_scalar", f_sub_scalar, 1, .in = {{S2(3, 4), -2, 2}}},
    {"mul_scalar", f_mul_scalar, 1, .in = {{S2(3, 4), -2, 2}}},
    {"div_scalar", f_div_scalar, 1, .in = {{S2(3, 4), -2, 2}}},
    {"pow_scalar 2.5", f_pow_scalar, 1, .in = {{S2(3, 4), 0.3, 2.5}}},
    {"pow_scalar -1.5", f_pow_scalar_neg, 1, .in = {{S2(3, 4), 0.3, 2.5}}},
    {"rsub_scalar", f_rsub_scalar, 1, .in = {{S2(3, 4), -2, 2}}},
    {"rdiv_scalar", f_rdiv_scalar, 1, .in = {{S2(3, 4), 0.4, 2.5}}},
    {"binary_scalar(pow, first): 1.7^x", f_scalar_pow_first, 1, .in = {{S2(3, 4), -2, 2}}},
    {"binary_scalar(maximum)", f_scalar_max, 1, .in = {{S2(3, 4), -2, 2}}, K1(0.3)},
    {"binary_scalar(minimum, first)", f_scalar_min_first, 1, .in = {{S2(3, 4), -2, 2}}, K1(-0.2)},
    {"binary_scalar(sub, first)", f_scalar_sub_first, 1, .in = {{S2(3, 4), -2, 2}}},
    {"binary_scalar(div, first)", f_scalar_div_first, 1, .in = {{S2(3, 4), 0.4, 2.5}}},

    {"where [3,1] ? [1,4] : [2,3,4]", f_where, 2, .in = {{S2(1, 4), -2, 2}, {S3(2, 3, 4), -2, 2}}},

    /* reductions over axis sets */
    {"sum axes {0,2}", f_sum_02, 1, .in = {{S3(2, 3, 4), -2, 2}}},
    {"sum all", f_sum_all, 1, .in = {{S3(2, 3, 4), -2, 2}}},
    {"mean axis -1 keepdims", f_mean_last_keep, 1, .in = {{S3(2, 3, 4), -2, 2}}},
    {"mean all", f_mean_all, 1, .in = {{S3(2, 3, 4), -2, 2}}},
    {"max axis 1", f_max_1, 1, .in = {{S3(2, 3, 4), -2, 2}}},
    {"max all", f_max_all, 1, .in = {{S3(2, 3, 4), -2, 2}}},
    {"min axes {0,2} keepdims", f_min_02_keep, 1, .in = {{S3(2, 3, 4), -2, 2}}},
    {"prod axis 1 (mixed signs)", f_prod_1, 1, .in = {{S3(2, 3, 4), -1.5, 1.5}}, K1(0)},
    {"prod all keepdims", f_prod_all, 1, .in = {{S3(2, 3, 4), 0.6, 1.4}}},
    {"var axes {0,2} correction 1", f_var_02, 1, .in = {{S3(2, 3, 4), -2, 2}}},
    {"var axis -1 correction 0 keepdims", f_var_last_pop, 1, .in = {{S3(2, 3, 4), -2, 2}}},
    {"logsumexp axes {1,2}", f_logsumexp_12, 1, .in = {{S3(2, 3, 4), -3, 3}}},
    {"logsumexp all keepdims", f_logsumexp_all, 1, .in = {{S3(2, 3, 4), -3, 3}}},
    {"softmax axis 1", f_softmax_1, 1, .in = {{S3(2, 3, 4), -3, 3}}},
    {"softmax axis -1", f_softmax_last, 1, .in = {{S3(2, 3, 4), -3, 3}}},
    {"log_softmax axis 0", f_log_softmax_0, 1, .in = {{S3(2, 3, 4), -3, 3}}},
    {"log_softmax axis -1", f_log_softmax_last, 1, .in = {{S3(2, 3, 4), -3, 3}}},

    /* matmul: plain, batch broadcast, vectors, transposes */
    {"matmul [3,4]@[4,5]", f_matmul, 2, .in = {{S2(3, 4), -1, 1}, {S2(4, 5), -1, 1}}},
    {"matmul [2,3,4]@[4,2]", f_matmul, 2, .in = {{S3(2, 3, 4), -1, 1}, {S2(4, 2), -1, 1}}},
    {"matmul [2,1,3,4]@[3,4,2]", f_matmul, 2, .in = {{S4(2, 1, 3, 4), -1, 1}, {S3(3, 4, 2), -1, 1}}},
    {"matmul [4]@[2,4,3]", f_matmul, 2, .in = {{S1(4), -1, 1}, {S3(2, 4, 3), -1, 1}}},
    {"matmul [2,3,4]@[4]", f_matmul, 2, .in = {{S3(2, 3, 4), -1, 1}, {S1(4), -1, 1}}},
    {"matmul [4]@[4]", f_matmul, 2, .in = {{S1(4), -1, 1}, {S1(4), -1, 1}}},
    {"matmul_t a^T [4,3] b [4,5]", f_matmul_tn, 2, .in = {{S2(4, 3), -1, 1}, {S2(4, 5), -1, 1}}},
    {"matmul_t a [2,3,4] b^T [5,4]", f_matmul_nt, 2, .in = {{S3(2, 3, 4), -1, 1}, {S2(5, 4), -1, 1}}},
    {"matmul_t a^T [2,1,4,3] b^T [3,5,4]", f_matmul_tt, 2,
     .in = {{S4(2, 1, 4, 3), -1, 1}, {S3(3, 5, 4), -1, 1}}},

    /* views and shape ops */
    {"lam_tensor_reshape [2,3,4]->[6,-1]", f_tensor_reshape, 1, .in = {{S3(2, 3, 4), -2, 2}}},
    {"lam_tensor_slice0 [5,3] 1:4", f_tensor_slice0, 1, .in = {{S2(5, 3), -2, 2}}},
    {"reshape [2,3,4]->[4,-1,2]", f_reshape, 1, .in = {{S3(2, 3, 4), -2, 2}}},
    {"permute {2,0,1}", f_permute, 1, .in = {{S3(2, 3, 4), -2, 2}}},
    {"permute of size-1 axes (view)", f_permute_unit, 1, .in = {{S3(3, 1, 4), -2, 2}}},
    {"transpose 0,-1", f_transpose, 1, .in = {{S3(2, 3, 4), -2, 2}}},
    {"broadcast_to [3,1]->[2,3,4]", f_broadcast_to, 1, .in = {{S2(3, 1), -2, 2}}},
    {"concat axis 1", f_concat, 3, .in = {{S3(2, 1, 4), -2, 2}, {S3(2, 3, 4), -2, 2}, {S3(2, 2, 4), -2, 2}}},
    {"stack axis 1", f_stack, 3, .in = {{S2(3, 4), -2, 2}, {S2(3, 4), -2, 2}, {S2(3, 4), -2, 2}}},
    {"split sizes {1,3,2} axis 1", f_split_sizes, 1, .in = {{S3(2, 6, 3), -2, 2}}},
    {"split equal axis 0 (views)", f_split_equal, 1, .in = {{S2(6, 2), -2, 2}}},
    {"slice [::-1, 1:5:2, :]", f_slice_steps, 1, .in = {{S3(4, 5, 3), -2, 2}}},
    {"slice [1:3] (view)", f_slice_rows, 1, .in = {{S2(4, 5), -2, 2}}},
    {"slice_axis -1 3:0:-2", f_slice_axis, 1, .in = {{S2(3, 5), -2, 2}}},
    {"pad constant", f_pad_constant, 1, .in = {{S2(2, 3), -2, 2}}},
    {"pad reflect", f_pad_reflect, 1, .in = {{S3(2, 3, 4), -2, 2}}},
    {"pad replicate", f_pad_replicate, 1, .in = {{S2(3, 4), -2, 2}}},
    {"gather axis 1", f_gather, 1, .in = {{S3(2, 4, 3), -2, 2}}},
    {"take axis 1, [2,3] index", f_take, 1, .in = {{S2(3, 4), -2, 2}}},
    {"take axis 0, 0-dim index", f_take_scalar, 1, .in = {{S2(3, 4), -2, 2}}},
    {"index_select axis 0", f_index_select, 1, .in = {{S2(3, 4), -2, 2}}},
    {"scatter_add axis 0 (x and src)", f_scatter_add, 2, .in = {{S2(3, 4), -2, 2}, {S2(2, 4), -2, 2}}},
    {"tril k 0", f_tril, 1, .in = {{S2(3, 4), -2, 2}}},
    {"tril k -1 batched", f_tril_neg, 1, .in = {{S3(2, 4, 3), -2, 2}}},
    {"triu k 1 batched", f_triu, 1, .in = {{S3(2, 3, 4), -2, 2}}},
    {"contiguous", f_contiguous, 1, .in = {{S3(2, 3, 4), -2, 2}}},
    {"flatten 1..2", f_flatten, 1, .in = {{S3(2, 3, 4), -2, 2}}},
    {"squeeze axis 1", f_squeeze, 1, .in = {{S3(3, 1, 4), -2, 2}}},
    {"unsqueeze axis -1", f_unsqueeze, 1, .in = {{S2(3, 4), -2, 2}}},
};
#define N_ROWS ((int)(sizeof rows / sizeof rows[0]))

/* ---- running a row ------------------------------------------------------- */

static bool near_kink(const grow *row, double v) {
  for (int k = 0; k < row->nkink; k++)
    if (fabs(v - row->kink[k]) < KINK_GAP) return true;
  return false;
}

/* A random f64 input for row->in[i], values redrawn while near a kink. */
static lam_tensor *make_input(lam_ctx *ctx, tu_rng *r, const grow *row, int i) {
  const gin *g = &row->in[i];
  int64_t m = 1;
  for (int d = 0; d < g->nd; d++) m *= g->s[d];
  double *v = malloc((size_t)m * sizeof *v);
  cr_assert(v);
  for (int64_t e = 0; e < m; e++) {
    int tries = 0;
    do {
      v[e] = tu_uniform(r, g->lo, g->hi);
      cr_assert(++tries < 1000, "%s: input %d range [%g, %g) is all kinks", row->name, i, g->lo,
                g->hi);
    } while (near_kink(row, v[e]));
  }
  lam_tensor *t = lam_tensor_from_host(ctx, LAM_F64, g->nd, g->nd ? g->s : NULL, v);
  free(v);
  cr_assert(t, "%s: %s", row->name, lam_last_error());
  return t;
}

/* The gradient for a cotangent of ones must not vanish for any input (an
 * adapter whose output ignores an input would otherwise pass trivially). */
static void assert_grads_nonzero(lam_ctx *ctx, const grow *row, lam_tensor *const *xs) {
  lam_tensor *y = row->fn(xs, row->n, NULL);
  cr_assert(y, "%s: %s", row->name, lam_last_error());
  lam_tensor *ones = lam_tensor_full_like(y, 1.0);
  lam_tensor_free(y);
  lam_tensor *g[4] = {0};
  cr_assert_eq(lam_vjp(ctx, row->fn, NULL, xs, row->n, ones, NULL, g), LAM_OK, "%s: %s", row->name,
               lam_last_error());
  for (int i = 0; i < row->n; i++) {
    double *v = tu_read_f64(g[i]);
    double mx = 0;
    for (int64_t e = 0; e < lam_tensor_numel(g[i]); e++) mx = fmax(mx, fabs(v[e]));
    free(v);
    if (row->flags & ZERO_GRAD)
      cr_assert(mx == 0, "%s: input %d: gradient should be zero, max |g| %g", row->name, i, mx);
    else
      cr_assert(mx > 0, "%s: input %d: gradient is identically zero", row->name, i);
    lam_tensor_free(g[i]);
  }
  lam_tensor_free(ones);
}

static void run_row(int index) {
  cr_assert(index >= 0 && index < N_ROWS);
  const grow *row = &rows[index];
  if (row->known_bad) cr_skip_test("%s: known backward bug: %s", row->name, row->known_bad);
  lam_ctx *ctx = tu_ctx();
  if (!lam_ctx_device(ctx)->fp64) {
    lam_ctx_free(ctx);
    cr_skip_test("no fp64");
  }
  tu_rng r = tu_rng_make(1000 + (uint64_t)index);
  tu_mark m = tu_mark_now(ctx);
  lam_tensor *xs[4] = {0};
  for (int i = 0; i < row->n; i++) xs[i] = make_input(ctx, &r, row, i);
  char what[128];
  snprintf(what, sizeof what, "row %d \"%s\"", index, row->name);
  tu_gradcheck(ctx, row->fn, NULL, xs, row->n, 1e-6, 1e-6, 1,
               row->f32_tol > 0 ? row->f32_tol : DEFAULT_F32_TOL, what);
  assert_grads_nonzero(ctx, row, xs);
  for (int i = 0; i < row->n; i++) lam_tensor_free(xs[i]);
  tu_assert_no_leak(ctx, m);
  cr_assert(!lam_grad_is_recording(ctx), "%s: tape left recording", row->name);
  lam_ctx_free(ctx);
}

ParameterizedTestParameters(grad_ops, row) {
  static int idx[N_ROWS];
  for (int i = 0; i < N_ROWS; i++) idx[i] = i;
  return cr_make_param_array(int, idx, N_ROWS);
}

ParameterizedTest(int *index, grad_ops, row) { run_row(*index); }

/* ---- the table itself ---------------------------------------------------- */

static int find_row(const char *name) {
  for (int i = 0; i < N_ROWS; i++)
    if (strcmp(rows[i].name, name) == 0) return i;
  return -1;
}

/* Every unary and binary op code has a row named after it, so an op added to
 * the enums without a gradient row fails here; rows are well formed. */
Test(grad_ops, table_covers_every_op_code) {
  cr_assert_geq(N_ROWS, 100, "the table has only %d rows", N_ROWS);
  for (int op = 0; op < LAM_UNARY_COUNT; op++) {
    const char *nm = lam_unary_name((lam_unary_op)op);
    cr_assert(nm && find_row(nm) >= 0, "no gradient row for unary op %d (%s)", op, nm ? nm : "?");
  }
  static const char *bin[LAM_BINARY_COUNT] = {"add", "sub",     "mul",    "div",
                                              "pow", "maximum", "minimum"};
  for (int op = 0; op < LAM_BINARY_COUNT; op++)
    cr_assert(find_row(bin[op]) >= 0, "no gradient row for binary op %s", bin[op]);
  for (int i = 0; i < N_ROWS; i++) {
    const grow *row = &rows[i];
    cr_assert(row->name && row->fn, "row %d is incomplete", i);
    cr_assert(row->n >= 1 && row->n <= 4, "row %s: %d inputs", row->name, row->n);
    cr_assert(find_row(row->name) == i, "row name \"%s\" is used twice", row->name);
    for (int k = 0; k < row->n; k++)
      cr_assert(row->in[k].hi > row->in[k].lo, "row %s input %d: empty range", row->name, k);
  }
}

/* ---- the checker itself -------------------------------------------------- */

static lam_tensor *x_times_x(lam_tensor *const *xs, int n, void *u) {
  (void)n;
  (void)u;
  return lam_mul(xs[0], xs[0]);
}
/* x * stop_gradient(x): the tape sees d/dx = x, the true derivative is 2x. */
static lam_tensor *x_times_stopped_x(lam_tensor *const *xs, int n, void *u) {
  (void)n;
  (void)u;
  lam_tensor *s = lam_stop_gradient(xs[0]);
  lam_tensor *y = lam_mul(xs[0], s);
  lam_tensor_free(s);
  return y;
}
static lam_tensor *sum_of(lam_tensors_fn f, lam_tensor *const *xs) {
  lam_tensor *y = f(xs, 1, NULL);
  lam_tensor *s = lam_sum(y, 0, NULL, 0);
  lam_tensor_free(y);
  return s;
}
static lam_tensor *sum_x_times_x(lam_tensor *const *xs, int n, void *u) {
  (void)n;
  (void)u;
  return sum_of(x_times_x, xs);
}
static lam_tensor *sum_x_times_stopped_x(lam_tensor *const *xs, int n, void *u) {
  (void)n;
  (void)u;
  return sum_of(x_times_stopped_x, xs);
}

/* Exact values: d/dx sum(x*x) at x = 3 (and -0.5, 1) is 2x exactly, through
 * both lam_grad and the vjp that tu_gradcheck uses. */
Test(grad_ops, checker_exact_values) {
  lam_ctx *ctx = tu_ctx();
  if (!lam_ctx_device(ctx)->fp64) {
    lam_ctx_free(ctx);
    cr_skip_test("no fp64");
  }
  tu_mark m = tu_mark_now(ctx);
  double v[3] = {3, -0.5, 1};
  lam_tensor *x = lam_tensor_from_host(ctx, LAM_F64, 1, (int64_t[]){3}, v);
  lam_tensor *g = NULL, *loss = NULL;
  cr_assert_eq(lam_grad(ctx, sum_x_times_x, NULL, &x, 1, &loss, &g), LAM_OK, "%s",
               lam_last_error());
  double lv, *gv = tu_read_f64(g);
  cr_assert_eq(lam_tensor_item(loss, &lv), LAM_OK);
  cr_assert(lv == 10.25, "loss %g", lv);
  cr_assert(gv[0] == 6 && gv[1] == -1 && gv[2] == 2, "grad %g %g %g", gv[0], gv[1], gv[2]);
  free(gv);
  lam_tensor_free(g);
  lam_tensor_free(loss);
  /* the vjp with cotangent w gives 2 x w exactly */
  double wv[3] = {1, 2, -4};
  lam_tensor *w = lam_tensor_from_host(ctx, LAM_F64, 1, (int64_t[]){3}, wv);
  lam_tensor *gs[1] = {0};
  cr_assert_eq(lam_vjp(ctx, x_times_x, NULL, &x, 1, w, NULL, gs), LAM_OK, "%s", lam_last_error());
  gv = tu_read_f64(gs[0]);
  cr_assert(gv[0] == 6 && gv[1] == -2 && gv[2] == -8, "vjp %g %g %g", gv[0], gv[1], gv[2]);
  free(gv);
  lam_tensor_free(gs[0]);
  lam_tensor_free(w);
  lam_tensor_free(x);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* A wrong analytic gradient is caught: for x * stop_gradient(x) the tape
 * returns x while central differences give 2x, and the difference is far
 * beyond tu_gradcheck's acceptance |analytic - numeric| <= 1e-6 max(1, |numeric|)
 * (computed here with the same formula and step). The correct function
 * passes tu_gradcheck on the same point. */
Test(grad_ops, checker_catches_a_wrong_gradient) {
  lam_ctx *ctx = tu_ctx();
  if (!lam_ctx_device(ctx)->fp64) {
    lam_ctx_free(ctx);
    cr_skip_test("no fp64");
  }
  tu_mark m = tu_mark_now(ctx);
  double v[3] = {3, -0.5, 1.25};
  lam_tensor *x = lam_tensor_from_host(ctx, LAM_F64, 1, (int64_t[]){3}, v);
  tu_gradcheck(ctx, sum_x_times_x, NULL, &x, 1, 1e-6, 1e-6, 1, DEFAULT_F32_TOL, "sum(x*x)");
  lam_tensor *g = NULL;
  cr_assert_eq(lam_grad(ctx, sum_x_times_stopped_x, NULL, &x, 1, NULL, &g), LAM_OK, "%s",
               lam_last_error());
  double *ga = tu_read_f64(g);
  const double eps = 1e-6;
  int caught = 0;
  for (int e = 0; e < 3; e++) {
    double p[3] = {v[0], v[1], v[2]}, f[2];
    for (int s = 0; s < 2; s++) {
      p[e] = v[e] + (s ? -eps : eps);
      lam_tensor *xp = lam_tensor_from_host(ctx, LAM_F64, 1, (int64_t[]){3}, p);
      lam_tensor *y = sum_x_times_stopped_x(&xp, 1, NULL);
      cr_assert_eq(lam_tensor_item(y, &f[s]), LAM_OK);
      lam_tensor_free(y);
      lam_tensor_free(xp);
    }
    double num = (f[0] - f[1]) / (2 * eps);
    cr_assert(fabs(num - 2 * v[e]) < 1e-6 * fmax(1, fabs(num)), "numeric %g for 2x = %g", num,
              2 * v[e]);
    cr_assert(ga[e] == v[e], "tape gradient %g, expected the (wrong) %g", ga[e], v[e]);
    if (fabs(ga[e] - num) > 1e-6 * fmax(1.0, fabs(num))) caught++;
  }
  cr_assert_eq(caught, 3, "the wrong gradient slipped through on %d of 3 elements", 3 - caught);
  free(ga);
  lam_tensor_free(g);
  lam_tensor_free(x);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}
