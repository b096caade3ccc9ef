/* ops/unary.c: the unary elementwise ops (lam_unary and its named forms),
 * their backward rule, and the broadcast-layout helpers shared with
 * binary.c and compare.c. Every op runs through the single `unary` kernel
 * of cl/elementwise.cl with the op code as an argument; the backward rule
 * runs `unary_backward` on the saved input, so no other op family is
 * needed. Float ops take f32/f16/f64; neg, abs, sign and square also take
 * i32 (not differentiable). sign and step are recorded nowhere: their
 * gradient is zero almost everywhere. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/elementwise.h"
#include "ops/elementwise_internal.h"

/* ---- helpers shared by the elementwise files ---------------------------- */

void lam__ew_layout_make(int ndim, const int64_t *shape, int nops, const int *op_ndim,
                         const int64_t (*op_shape)[LAM_MAX_DIMS], lam__ew_layout *L) {
  int64_t st[3][LAM_MAX_DIMS];
  for (int k = 0; k < nops; k++) {
    int64_t acc = 1;
    for (int d = ndim - 1; d >= 0; d--) {
      int src = d - (ndim - op_ndim[k]);
      int64_t dim = src >= 0 ? op_shape[k][src] : 1;
      st[k][d] = dim == 1 ? 0 : acc;
      acc *= dim;
    }
  }
  memset(L, 0, sizeof *L);
  for (int d = 0; d < ndim; d++) {
    if (shape[d] == 1) continue;
    int last = L->ndim - 1;
    bool merge = last >= 0;
    /* outer axis (size S1, stride t1) and inner (S2, t2) are one axis when t1 == t2 * S2 */
    for (int k = 0; merge && k < nops; k++) merge = L->strides[k][last] == st[k][d] * shape[d];
    if (merge) {
      L->shape[last] *= shape[d];
      for (int k = 0; k < nops; k++) L->strides[k][last] = st[k][d];
      continue;
    }
    L->shape[L->ndim] = shape[d];
    for (int k = 0; k < nops; k++) L->strides[k][L->ndim] = st[k][d];
    L->ndim++;
  }
  if (L->ndim == 0) { /* one element: a single row of one */
    L->ndim = 1;
    L->shape[0] = 1;
  }
}

size_t lam__ew_items(const lam__ew_layout *L, int64_t n, int chunk) {
  int64_t inner = L->shape[L->ndim - 1];
  return (size_t)(n / inner * ((inner + chunk - 1) / chunk));
}

int lam__ew_chunk(const lam_ctx *ctx) { return ctx->tuning.ew_chunk; }

lam_status lam__ew_same_ctx(const char *fn, const lam_tensor *a, const lam_tensor *b,
                            const char *na, const char *nb) {
  if (a->ctx == b->ctx) return LAM_OK;
  return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: %s and %s belong to different contexts", fn, na,
                   nb);
}

lam_status lam__ew_same_dtype(const char *fn, const lam_tensor *a, const lam_tensor *b,
                              const char *na, const char *nb) {
  if (a->dtype == b->dtype) return LAM_OK;
  return lam__fail(LAM_ERR_DTYPE, "%s: dtypes differ: %s is %s, %s is %s", fn, na,
                   lam_dtype_name(a->dtype), nb, lam_dtype_name(b->dtype));
}

/* ---- the op table -------------------------------------------------------- */

enum { U_INT = 1, U_NODIFF = 2 };

static const struct {
  const char *name; /* lam_unary_name */
  const char *fn;   /* public function, used in messages and on the tape */
  unsigned flags;
} lam__unary_ops[LAM_UNARY_COUNT] = {
    [LAM_NEG] = {"neg", "lam_neg", U_INT},
    [LAM_ABS] = {"abs", "lam_abs", U_INT},
    [LAM_SIGN] = {"sign", "lam_sign", U_INT | U_NODIFF},
    [LAM_EXP] = {"exp", "lam_exp", 0},
    [LAM_EXPM1] = {"expm1", "lam_expm1", 0},
    [LAM_LOG] = {"log", "lam_log", 0},
    [LAM_LOG1P] = {"log1p", "lam_log1p", 0},
    [LAM_SQRT] = {"sqrt", "lam_sqrt", 0},
    [LAM_RSQRT] = {"rsqrt", "lam_rsqrt", 0},
    [LAM_SQUARE] = {"square", "lam_square", U_INT},
    [LAM_RECIPROCAL] = {"reciprocal", "lam_reciprocal", 0},
    [LAM_SIN] = {"sin", "lam_sin", 0},
    [LAM_COS] = {"cos", "lam_cos", 0},
    [LAM_TANH] = {"tanh", "lam_tanh", 0},
    [LAM_SIGMOID] = {"sigmoid", "lam_sigmoid", 0},
    [LAM_RELU] = {"relu", "lam_relu", 0},
    [LAM_RELU6] = {"relu6", "lam_relu6", 0},
    [LAM_LEAKY_RELU] = {"leaky_relu", "lam_leaky_relu", 0},
    [LAM_ELU] = {"elu", "lam_elu", 0},
    [LAM_CELU] = {"celu", "lam_celu", 0},
    [LAM_SELU] = {"selu", "lam_selu", 0},
    [LAM_GELU] = {"gelu", "lam_gelu", 0},
    [LAM_GELU_TANH] = {"gelu_tanh", "lam_gelu_tanh", 0},
    [LAM_SILU] = {"silu", "lam_silu", 0},
    [LAM_MISH] = {"mish", "lam_mish", 0},
    [LAM_SOFTPLUS] = {"softplus", "lam_softplus", 0},
    [LAM_SOFTSIGN] = {"softsign", "lam_softsign", 0},
    [LAM_HARD_SIGMOID] = {"hard_sigmoid", "lam_hard_sigmoid", 0},
    [LAM_HARD_SWISH] = {"hard_swish", "lam_hard_swish", 0},
    [LAM_LOG_SIGMOID] = {"log_sigmoid", "lam_log_sigmoid", 0},
    [LAM_STEP] = {"step", "lam_step", U_NODIFF},
    [LAM_CLAMP] = {"clamp", "lam_clamp", 0},
};

const char *lam_unary_name(lam_unary_op op) {
  return (unsigned)op < LAM_UNARY_COUNT ? lam__unary_ops[op].name : NULL;
}

/* ---- forward and backward ------------------------------------------------ */

/* dx = unary_backward(op, x, g): the op's derivative is recomputed from x. */
static lam_status lam__unary_backward(lam__node *node, lam_tensor *g, lam_tensor **gin) {
  if (!lam__node_needs(node, 0)) return LAM_OK;
  lam_tensor *x = node->saved[0];
  lam_tensor *dx = lam__tensor_new(x->ctx, x->dtype, x->ndim, x->shape, node->op);
  if (!dx) return lam_last_status();
  cl_kernel k;
  int chunk = lam__ew_chunk(x->ctx);
  lam_status st = lam__kernel_dt(x->ctx, "elementwise", "unary_backward", x->dtype, NULL, &k);
  if (st == LAM_OK) {
    lam__arg args[] = {LAM__ARG_T(x),
                       LAM__ARG_T(g),
                       LAM__ARG_T(dx),
                       lam__arg_int(x->numel),
                       lam__arg_int(node->i[0]),
                       lam__arg_real(x->dtype, node->f[0]),
                       lam__arg_real(x->dtype, node->f[1]),
                       lam__arg_int(chunk)};
    st = lam__launch_1d(x->ctx, k, node->op, LAM__EW_NARGS(args), args,
                        (size_t)((x->numel + chunk - 1) / chunk));
  }
  if (st != LAM_OK) {
    lam_tensor_free(dx);
    return st;
  }
  gin[0] = dx;
  return LAM_OK;
}

static lam_tensor *lam__unary(const char *fn, lam_unary_op op, lam_tensor *x, double p0,
                              double p1) {
  if (!x) return lam__null_input(fn, "x");
  if ((unsigned)op >= LAM_UNARY_COUNT)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: unknown unary op %d (0..%d)", fn, (int)op,
                     LAM_UNARY_COUNT - 1),
           NULL;
  unsigned flags = lam__unary_ops[op].flags;
  const char *name = lam__unary_ops[op].name;
  if (!lam_dtype_is_float(x->dtype) && !(x->dtype == LAM_I32 && (flags & U_INT)))
    return lam__fail(LAM_ERR_DTYPE, "%s: x is %s; %s takes %s", fn, lam_dtype_name(x->dtype), name,
                     (flags & U_INT) ? "f32, f16, f64 or i32" : "f32, f16 or f64"),
           NULL;
  if (op == LAM_CELU && p0 == 0)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: alpha is 0 (celu divides by alpha)", fn), NULL;
  if (op == LAM_CLAMP && (isnan(p0) || isnan(p1)))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: bounds [%g, %g] contain NaN", fn, p0, p1), NULL;
  lam_tensor *y = lam__tensor_new(x->ctx, x->dtype, x->ndim, x->shape, fn);
  if (!y) return NULL;
  cl_kernel k;
  lam_status st = lam__kernel_dt(x->ctx, "elementwise", "unary", x->dtype, NULL, &k);
  if (st == LAM_OK) {
    int chunk = lam__ew_chunk(x->ctx);
    lam__arg args[] = {LAM__ARG_T(x),
                       LAM__ARG_T(y),
                       lam__arg_int(x->numel),
                       lam__arg_int(op),
                       lam__arg_real(x->dtype, p0),
                       lam__arg_real(x->dtype, p1),
                       lam__arg_int(chunk)};
    st = lam__launch_1d(x->ctx, k, fn, LAM__EW_NARGS(args), args,
                        (size_t)((x->numel + chunk - 1) / chunk));
  }
  if (st != LAM_OK) {
    lam_tensor_free(y);
    return NULL;
  }
  if (lam_dtype_is_float(x->dtype) && !(flags & U_NODIFF)) {
    lam__node *node = lam__tape_record(y, lam__unary_ops[op].fn, lam__unary_backward, 1, &x);
    if (node) {
      lam__node_save(node, x);
      node->i[0] = op;
      node->f[0] = p0;
      node->f[1] = p1;
    }
  }
  return y;
}

lam_unary_opts lam_unary_defaults(void) {
  return (lam_unary_opts){.negative_slope = 0.01, .alpha = 1.0, .min = 0.0, .max = 0.0};
}

/* The options with zeros resolved (NULL: defaults). */
static lam_unary_opts lam__unary_resolve(const lam_unary_opts *opts) {
  lam_unary_opts o = opts ? *opts : lam_unary_defaults();
  lam_unary_opts def = lam_unary_defaults();
  o.negative_slope = lam__opt_f64(o.negative_slope, def.negative_slope);
  o.alpha = lam__opt_f64(o.alpha, def.alpha);
  return o;
}

lam_tensor *lam_unary(lam_unary_op op, lam_tensor *x, const lam_unary_opts *opts) {
  lam_unary_opts o = lam__unary_resolve(opts);
  double p0 = 0, p1 = 0;
  switch (op) {
    case LAM_LEAKY_RELU: p0 = o.negative_slope; break;
    case LAM_ELU:
    case LAM_CELU: p0 = o.alpha; break;
    case LAM_CLAMP: p0 = o.min, p1 = o.max; break;
    default: break;
  }
  return lam__unary("lam_unary", op, x, p0, p1);
}

#define LAM__UNARY0(fname, OP)                                                                     \
  lam_tensor *fname(lam_tensor *x) { return lam__unary(#fname, OP, x, 0, 0); }

LAM__UNARY0(lam_neg, LAM_NEG)
LAM__UNARY0(lam_abs, LAM_ABS)
LAM__UNARY0(lam_sign, LAM_SIGN)
LAM__UNARY0(lam_exp, LAM_EXP)
LAM__UNARY0(lam_expm1, LAM_EXPM1)
LAM__UNARY0(lam_log, LAM_LOG)
LAM__UNARY0(lam_log1p, LAM_LOG1P)
LAM__UNARY0(lam_sqrt, LAM_SQRT)
LAM__UNARY0(lam_rsqrt, LAM_RSQRT)
LAM__UNARY0(lam_square, LAM_SQUARE)
LAM__UNARY0(lam_reciprocal, LAM_RECIPROCAL)
LAM__UNARY0(lam_sin, LAM_SIN)
LAM__UNARY0(lam_cos, LAM_COS)
LAM__UNARY0(lam_tanh, LAM_TANH)
LAM__UNARY0(lam_sigmoid, LAM_SIGMOID)
LAM__UNARY0(lam_relu, LAM_RELU)
LAM__UNARY0(lam_relu6, LAM_RELU6)
LAM__UNARY0(lam_selu, LAM_SELU)
LAM__UNARY0(lam_gelu, LAM_GELU)
LAM__UNARY0(lam_gelu_tanh, LAM_GELU_TANH)
LAM__UNARY0(lam_silu, LAM_SILU)
LAM__UNARY0(lam_mish, LAM_MISH)
LAM__UNARY0(lam_softplus, LAM_SOFTPLUS)
LAM__UNARY0(lam_softsign, LAM_SOFTSIGN)
LAM__UNARY0(lam_hard_sigmoid, LAM_HARD_SIGMOID)
LAM__UNARY0(lam_hard_swish, LAM_HARD_SWISH)
LAM__UNARY0(lam_log_sigmoid, LAM_LOG_SIGMOID)
LAM__UNARY0(lam_step, LAM_STEP)

lam_tensor *lam_leaky_relu(lam_tensor *x, double slope) {
  return lam__unary("lam_leaky_relu", LAM_LEAKY_RELU, x, slope, 0);
}

lam_tensor *lam_elu(lam_tensor *x, double alpha) {
  return lam__unary("lam_elu", LAM_ELU, x, alpha, 0);
}

lam_tensor *lam_celu(lam_tensor *x, double alpha) {
  return lam__unary("lam_celu", LAM_CELU, x, alpha, 0);
}

lam_tensor *lam_clamp(lam_tensor *x, double lo, double hi) {
  return lam__unary("lam_clamp", LAM_CLAMP, x, lo, hi);
}

lam_status lam__ew_launch_bcast2(lam_ctx *ctx, const char *kernel, int op, const lam_tensor *a,
                                 const lam_tensor *b, lam_tensor *y, int ndim, const int64_t *shape,
                                 int chunk, const char *fn) {
  lam__ew_layout L;
  const int nd[2] = {a->ndim, b->ndim};
  int64_t sh[2][LAM_MAX_DIMS];
  memcpy(sh[0], a->shape, sizeof sh[0]);
  memcpy(sh[1], b->shape, sizeof sh[1]);
  lam__ew_layout_make(ndim, shape, 2, nd, (const int64_t(*)[LAM_MAX_DIMS])sh, &L);
  cl_kernel k;
  lam_status st = lam__kernel_dt(ctx, "elementwise", kernel, a->dtype, NULL, &k);
  if (st != LAM_OK) return st;
  const int64_t n = y->numel;
  lam__arg args[] = {LAM__ARG_T(a),
                     LAM__ARG_T(b),
                     LAM__ARG_T(y),
                     lam__arg_int(n),
                     lam__arg_int(op),
                     lam__arg_int(L.ndim),
                     lam__arg_int8(L.ndim, L.shape),
                     lam__arg_int8(L.ndim, L.strides[0]),
                     lam__arg_int8(L.ndim, L.strides[1]),
                     lam__arg_int(chunk)};
  return lam__launch_1d(ctx, k, fn, LAM__EW_NARGS(args), args, lam__ew_items(&L, n, chunk));
}
