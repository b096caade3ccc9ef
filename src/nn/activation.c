/* nn/activation.c: activations as layers (any unary op, softmax,
 * log_softmax, GLU) and PReLU with its learnable slope. */
#include <math.h>
#include <stdlib.h>

#include "lamina/dense.h"
#include "lamina/elementwise.h"
#include "lamina/reduce.h"
#include "lamina/shape.h"
#include "nn/nn_internal.h"

typedef struct {
  int kind; /* 0 unary, 1 softmax, 2 log_softmax, 3 glu */
  lam_unary_op op;
  lam_unary_opts uo;
  int axis;
} lam__act;

static lam_status lam__act_apply(lam_layer *self, lam_ptree *params, lam_ptree *state,
                                 lam_tensor *x, const lam_apply_opts *opts, lam_tensor **out) {
  lam__act *a = self->impl;
  switch (a->kind) {
    case 0: *out = lam_unary(a->op, x, &a->uo); break;
    case 1: *out = lam_softmax(x, a->axis); break;
    case 2: *out = lam_log_softmax(x, a->axis); break;
    default: *out = lam_glu(x, a->axis); break;
  }
  return *out ? LAM_OK : lam_last_status();
}

static const lam_layer_vtable lam__act_vt = {"activation", lam__no_params_init, lam__act_apply,
                                             lam__free_impl};

static lam_layer *lam__act_new(int kind, lam_unary_op op, const lam_unary_opts *uo, int axis,
                               const char *fn) {
  if (kind == 0 && !lam_unary_name(op))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: unknown unary op %d", fn, (int)op), NULL;
  if (kind == 0 && uo) { /* the checks lam_unary would make at apply time, made now */
    const lam_unary_opts def = lam_unary_defaults();
    double slope = lam__opt_f64(uo->negative_slope, def.negative_slope);
    double alpha = lam__opt_f64(uo->alpha, def.alpha);
    if (op == LAM_LEAKY_RELU && !isfinite(slope))
      return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: negative_slope %g must be finite", fn, slope), NULL;
    if ((op == LAM_ELU || op == LAM_CELU) && !isfinite(alpha))
      return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: alpha %g must be finite", fn, alpha), NULL;
    if (op == LAM_CELU && alpha == 0)
      return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: alpha is 0 (celu divides by alpha)", fn), NULL;
    if (op == LAM_CLAMP && (isnan(uo->min) || isnan(uo->max)))
      return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: clamp bounds [%g, %g] contain NaN", fn, uo->min,
                       uo->max), NULL;
  }
  lam__act *a = calloc(1, sizeof *a);
  if (!a) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn), NULL;
  *a = (lam__act){kind, op, uo ? *uo : lam_unary_defaults(), axis};
  lam_layer *l = lam_nn_custom(&lam__act_vt, a);
  if (!l) free(a);
  return l;
}

lam_layer *lam_nn_activation(lam_unary_op op, const lam_unary_opts *opts) {
  return lam__act_new(0, op, opts, 0, "lam_nn_activation");
}
lam_layer *lam_nn_relu(void) { return lam_nn_activation(LAM_RELU, NULL); }
lam_layer *lam_nn_gelu(void) { return lam_nn_activation(LAM_GELU, NULL); }
lam_layer *lam_nn_tanh(void) { return lam_nn_activation(LAM_TANH, NULL); }
lam_layer *lam_nn_sigmoid(void) { return lam_nn_activation(LAM_SIGMOID, NULL); }
lam_layer *lam_nn_silu(void) { return lam_nn_activation(LAM_SILU, NULL); }
lam_layer *lam_nn_softmax(int axis) { return lam__act_new(1, LAM_NEG, NULL, axis, "lam_nn_softmax"); }
lam_layer *lam_nn_log_softmax(int axis) {
  return lam__act_new(2, LAM_NEG, NULL, axis, "lam_nn_log_softmax");
}
lam_layer *lam_nn_glu(int axis) { return lam__act_new(3, LAM_NEG, NULL, axis, "lam_nn_glu"); }

lam_tensor *lam_glu(lam_tensor *x, int axis) {
  if (!x) return lam__null_input("lam_glu", "x");
  int ax = lam__axis(axis, x->ndim);
  if (ax < 0 || x->shape[ax] % 2 != 0) {
    char b[LAM__SHAPE_STR];
    return lam__fail(LAM_ERR_SHAPE, "lam_glu: axis %d of %s must exist and have an even size", axis,
                     lam__shape_str(x->ndim, x->shape, b)), NULL;
  }
  lam_tensor *h[2] = {0};
  if (lam_split(x, ax, 2, NULL, h) != LAM_OK) return NULL;
  lam_tensor *g = lam_sigmoid(h[1]);
  lam_tensor *y = g ? lam_mul(h[0], g) : NULL;
  lam_tensor_free(g);
  lam_tensor_free(h[0]);
  lam_tensor_free(h[1]);
  return y;
}

/* PReLU: max(0, x) + weight * min(0, x), weight broadcast along axis 1. */
lam_tensor *lam_prelu(lam_tensor *x, lam_tensor *weight) {
  const char *fn = "lam_prelu";
  if (!x) return lam__null_input(fn, "x");
  if (!weight) return lam__null_input(fn, "weight");
  int64_t n = lam_tensor_numel(weight);
  if (weight->ndim != 1 || (n != 1 && (x->ndim < 2 || x->shape[1] != n))) {
    char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR];
    return lam__fail(LAM_ERR_SHAPE, "%s: weight %s must have 1 or x.shape[1] elements (x is %s)", fn,
                     lam__shape_str(weight->ndim, weight->shape, b1), lam__shape_str(x->ndim, x->shape, b2)), NULL;
  }
  lam_tensor *w = lam_tensor_retain(weight);
  if (n != 1 && x->ndim > 2) {
    int64_t s[LAM_MAX_DIMS];
    for (int i = 0; i < x->ndim - 1; i++) s[i] = i == 0 ? n : 1;
    lam_tensor_free(w);
    w = lam_reshape(weight, x->ndim - 1, s);
  }
  lam_tensor *pos = lam_relu(x);
  lam_tensor *negx = lam_neg(x);
  lam_tensor *rn = lam_relu(negx);        /* -min(0, x) */
  lam_tensor *wn = lam_mul(w, rn);        /* -w min(0, x) */
  lam_tensor *y = lam_sub(pos, wn);
  lam_tensor_free(w);
  lam_tensor_free(pos);
  lam_tensor_free(negx);
  lam_tensor_free(rn);
  lam_tensor_free(wn);
  return y;
}

typedef struct {
  int64_t n;
  double init;
} lam__prelu;

static lam_status lam__prelu_init(lam_layer *self, lam_ctx *ctx, lam_rng_key key, lam_dtype dtype,
                                  lam_ptree *params, lam_ptree *state) {
  lam__prelu *p = self->impl;
  lam_init init = lam_init_constant(p->init);
  return lam__param_make(params, "weight", &init, ctx, key, dtype, 1, &p->n);
}

static lam_status lam__prelu_apply(lam_layer *self, lam_ptree *params, lam_ptree *state,
                                   lam_tensor *x, const lam_apply_opts *opts, lam_tensor **out) {
  lam__prelu *p = self->impl;
  lam_tensor *w = lam__param_get(params, "prelu", "weight", 1, &p->n);
  if (!w) return lam_last_status();
  *out = lam_prelu(x, w);
  return *out ? LAM_OK : lam_last_status();
}

static const lam_layer_vtable lam__prelu_vt = {"prelu", lam__prelu_init, lam__prelu_apply, lam__free_impl};

lam_prelu_opts lam_prelu_defaults(void) {
  return (lam_prelu_opts){.num_parameters = 1, .init = 0.25};
}

/* The options with zeros resolved (NULL: defaults). */
static lam_prelu_opts lam__prelu_resolve(const lam_prelu_opts *opts) {
  lam_prelu_opts def = lam_prelu_defaults(), o = opts ? *opts : def;
  o.num_parameters = lam__opt_i64(o.num_parameters, def.num_parameters);
  o.init = lam__opt_f64(o.init, def.init);
  return o;
}

lam_layer *lam_nn_prelu(const lam_prelu_opts *opts) {
  lam_prelu_opts o = lam__prelu_resolve(opts);
  if (o.num_parameters < 1)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "lam_nn_prelu: num_parameters %lld must be >= 1 (0: 1)",
                     (long long)o.num_parameters), NULL;
  if (!isfinite(o.init))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "lam_nn_prelu: init %g must be finite", o.init), NULL;
  lam__prelu *p = calloc(1, sizeof *p);
  if (!p) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "lam_nn_prelu: out of host memory"), NULL;
  p->n = o.num_parameters;
  p->init = o.init;
  lam_layer *l = lam_nn_custom(&lam__prelu_vt, p);
  if (!l) free(p);
  return l;
}

bool lam__nn_is_relu(const lam_layer *l) {
  if (!l || l->vt != &lam__act_vt) return false;
  const lam__act *a = l->impl;
  return a->kind == 0 && a->op == LAM_RELU;
}
