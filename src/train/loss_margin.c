/* train/loss_margin.c: the embedding and margin losses of PyTorch composed
 * from differentiable ops: cosine_embedding, hinge_embedding, soft_margin,
 * multi_margin, multilabel_margin, multilabel_soft_margin.
 *
 * Each follows torch.nn.functional's formula term for term (1.13), so
 * values and gradients match it, including where a hinge sits exactly at
 * zero (the relu's gradient there is 0, as torch's `z > 0` tests). The
 * class-wise losses take [N, C] or one unbatched sample [C]; their none
 * reduction gives one value per sample. Temporaries live in a scope
 * (train/loss_internal.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "lamina/elementwise.h"
#include "lamina/linalg.h"
#include "lamina/loss.h"
#include "lamina/reduce.h"
#include "lamina/shape.h"
#include "train/loss_internal.h"

/* where(cond, v, 0). */
static lam_tensor *lam__where0(lam__scope *s, lam_tensor *cond, lam_tensor *v) {
  return K(s, lam_where(cond, v, K(s, lam_tensor_zeros_like(v))));
}

lam_tensor *lam_cosine_embedding_loss(lam_tensor *x1, lam_tensor *x2, lam_tensor *y,
                                      const lam_loss_opts *opts) {
  const char *fn = "lam_cosine_embedding_loss";
  lam_loss_opts o = lam__loss_opts(opts);
  if (lam__loss_check_pair(x1, x2, "x1", "x2", fn) != LAM_OK ||
      lam__loss_check_reduction(o.reduction, false, fn) != LAM_OK)
    return NULL;
  if (!y) return lam__null_input(fn, "y");
  char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR];
  if (x1->ndim != 1 && x1->ndim != 2)
    return lam__fail(LAM_ERR_SHAPE, "%s: x1 must be [N, D] or [D], got %s", fn,
                     lam__shape_str(x1->ndim, x1->shape, b1)), NULL;
  if (y->dtype != x1->dtype)
    return lam__fail(LAM_ERR_DTYPE, "%s: y is %s, x1 is %s", fn, lam_dtype_name(y->dtype),
                     lam_dtype_name(x1->dtype)), NULL;
  const int64_t n = x1->ndim == 2 ? x1->shape[0] : 1;
  if (lam_tensor_numel(y) != n || (x1->ndim == 2 && y->ndim != 1) || y->ndim > 1)
    return lam__fail(LAM_ERR_SHAPE, "%s: y %s must hold one value per row of x1 %s", fn,
                     lam__shape_str(y->ndim, y->shape, b1), lam__shape_str(x1->ndim, x1->shape, b2)), NULL;
  double margin;
  if (!lam__loss_margin(&o, 0.0, fn, &margin)) return NULL;
  lam__scope s = {{0}, 0};
  const int ax = -1;
  lam_tensor *dot = K(&s, lam_sum(K(&s, lam_mul(x1, x2)), 1, &ax, 0));
  lam_tensor *m1 = K(&s, lam_add_scalar(K(&s, lam_sum(K(&s, lam_square(x1)), 1, &ax, 0)), 1e-12));
  lam_tensor *m2 = K(&s, lam_add_scalar(K(&s, lam_sum(K(&s, lam_square(x2)), 1, &ax, 0)), 1e-12));
  lam_tensor *cosv = K(&s, lam_div(dot, K(&s, lam_sqrt(K(&s, lam_mul(m1, m2))))));
  lam_tensor *yy = y->ndim == cosv->ndim ? y : K(&s, lam_reshape(y, cosv->ndim, cosv->shape));
  lam_tensor *pos = lam__where0(&s, K(&s, lam_compare_scalar(LAM_EQ, yy, 1.0)), K(&s, lam_rsub_scalar(cosv, 1.0)));
  lam_tensor *neg = lam__where0(&s, K(&s, lam_compare_scalar(LAM_EQ, yy, -1.0)),
                                K(&s, lam_relu(K(&s, lam_sub_scalar(cosv, margin)))));
  lam_tensor *l = K(&s, lam_add(pos, neg));
  return lam__done(&s, lam__loss_reduce(&s, l, o.reduction, fn));
}

lam_tensor *lam_hinge_embedding_loss(lam_tensor *input, lam_tensor *target, const lam_loss_opts *opts) {
  const char *fn = "lam_hinge_embedding_loss";
  lam_loss_opts o = lam__loss_opts(opts);
  if (lam__loss_check_pair(input, target, "input", "target", fn) != LAM_OK ||
      lam__loss_check_reduction(o.reduction, false, fn) != LAM_OK)
    return NULL;
  double margin;
  if (!lam__loss_margin(&o, 1.0, fn, &margin)) return NULL;
  lam__scope s = {{0}, 0};
  /* where(t != 1, max(0, margin - x), 0) + where(t != -1, x, 0), as torch. */
  lam_tensor *hinge = K(&s, lam_relu(K(&s, lam_rsub_scalar(input, margin))));
  lam_tensor *a = lam__where0(&s, K(&s, lam_compare_scalar(LAM_NE, target, 1.0)), hinge);
  lam_tensor *b = lam__where0(&s, K(&s, lam_compare_scalar(LAM_NE, target, -1.0)), input);
  lam_tensor *l = K(&s, lam_add(a, b));
  return lam__done(&s, lam__loss_reduce(&s, l, o.reduction, fn));
}

lam_tensor *lam_soft_margin_loss(lam_tensor *input, lam_tensor *target, const lam_loss_opts *opts) {
  const char *fn = "lam_soft_margin_loss";
  lam_loss_opts o = lam__loss_opts(opts);
  if (lam__loss_check_pair(input, target, "input", "target", fn) != LAM_OK ||
      lam__loss_check_reduction(o.reduction, false, fn) != LAM_OK)
    return NULL;
  lam__scope s = {{0}, 0};
  /* log(1 + exp(-t x)) as a softplus: finite for large |x|. */
  lam_tensor *l = K(&s, lam_softplus(K(&s, lam_neg(K(&s, lam_mul(input, target))))));
  return lam__done(&s, lam__loss_reduce(&s, l, o.reduction, fn));
}

/* The class-wise losses: input [N, C] or [C] (float), checked; *n and *c get N and C. */
static lam_status lam__check_classwise(lam_tensor *x, lam_tensor *target, const lam_loss_opts *o,
                                       const char *fn, int64_t *n, int64_t *c) {
  if (!x) return lam__null_input(fn, "input"), lam_last_status();
  if (!target) return lam__null_input(fn, "target"), lam_last_status();
  if (!lam_dtype_is_float(x->dtype))
    return lam__fail(LAM_ERR_DTYPE, "%s: input is %s, need a float dtype", fn, lam_dtype_name(x->dtype));
  char b[LAM__SHAPE_STR];
  if (x->ndim != 1 && x->ndim != 2)
    return lam__fail(LAM_ERR_SHAPE, "%s: input must be [N, C] or [C], got %s", fn,
                     lam__shape_str(x->ndim, x->shape, b));
  *n = x->ndim == 2 ? x->shape[0] : 1;
  *c = x->shape[x->ndim - 1];
  if (o->weight && (o->weight->ndim != 1 || o->weight->shape[0] != *c || o->weight->dtype != x->dtype))
    return lam__fail(LAM_ERR_SHAPE, "%s: weight must be a %s vector of %lld class weights", fn,
                     lam_dtype_name(x->dtype), (long long)*c);
  return lam__loss_check_reduction(o->reduction, false, fn);
}

/* Per-sample losses [N] back to a scalar for unbatched input under none. */
static lam_tensor *lam__per_sample(lam__scope *s, lam_tensor *l, const lam_tensor *x, lam_reduction r,
                                   const char *fn) {
  if (r == LAM_REDUCTION_NONE && x->ndim == 1) return K(s, lam_reshape(l, 0, NULL));
  return lam__loss_reduce(s, l, r, fn);
}

lam_tensor *lam_multi_margin_loss(lam_tensor *input, lam_tensor *target, const lam_loss_opts *opts) {
  const char *fn = "lam_multi_margin_loss";
  lam_loss_opts o = lam__loss_opts(opts);
  int64_t n, c;
  if (lam__check_classwise(input, target, &o, fn, &n, &c) != LAM_OK) return NULL;
  char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR];
  if (target->dtype != LAM_I32)
    return lam__fail(LAM_ERR_DTYPE, "%s: target is %s, need i32 class indices", fn,
                     lam_dtype_name(target->dtype)), NULL;
  if (lam_tensor_numel(target) != n || target->ndim > 1 || (input->ndim == 2 && target->ndim != 1))
    return lam__fail(LAM_ERR_SHAPE, "%s: target %s must hold one class per row of input %s", fn,
                     lam__shape_str(target->ndim, target->shape, b1),
                     lam__shape_str(input->ndim, input->shape, b2)), NULL;
  const double p = lam__opt_f64(o.p, 1.0);
  if (p != 1 && p != 2)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: p %g must be 1 or 2", fn, p), NULL;
  double margin;
  if (!lam__loss_margin(&o, 1.0, fn, &margin)) return NULL;
  lam__scope s = {{0}, 0};
  lam_tensor *x = input->ndim == 2 ? input : K(&s, lam_reshape(input, 2, (int64_t[]){1, c}));
  lam_tensor *t = K(&s, lam_reshape(target, 2, (int64_t[]){n, 1}));
  /* Class indices stay on the device (lamina/shape.h's index rule): torch rejects one
   * outside [0, C); here it is not checked and its row's loss is not meaningful. */
  lam_tensor *xt = K(&s, lam_gather(x, 1, t));                                      /* [N, 1] */
  lam_tensor *z = K(&s, lam_relu(K(&s, lam_add_scalar(K(&s, lam_sub(x, xt)), margin)))); /* [N, C] */
  lam_tensor *h = p == 2 ? K(&s, lam_square(z)) : z;
  lam_tensor *oh = K(&s, lam_one_hot(K(&s, lam_reshape(target, 1, &n)), (int)c, input->dtype));
  h = K(&s, lam_mul(h, K(&s, lam_rsub_scalar(oh, 1.0)))); /* i != y */
  if (o.weight) h = K(&s, lam_mul(h, K(&s, lam_reshape(K(&s, lam_take(o.weight, target, 0)), 2, (int64_t[]){n, 1}))));
  lam_tensor *l = K(&s, lam_div_scalar(K(&s, lam_sum(h, 1, (int[]){1}, 0)), (double)c)); /* [N] */
  return lam__done(&s, lam__per_sample(&s, l, input, o.reduction, fn));
}

lam_tensor *lam_multilabel_margin_loss(lam_tensor *input, lam_tensor *target, const lam_loss_opts *opts) {
  const char *fn = "lam_multilabel_margin_loss";
  lam_loss_opts o = lam__loss_opts(opts);
  o.weight = NULL; /* torch's multilabel_margin_loss takes no weight */
  int64_t n, c;
  if (lam__check_classwise(input, target, &o, fn, &n, &c) != LAM_OK) return NULL;
  if (target->dtype != LAM_I32)
    return lam__fail(LAM_ERR_DTYPE, "%s: target is %s, need i32 class indices", fn,
                     lam_dtype_name(target->dtype)), NULL;
  if (!lam_tensor_same_shape(input, target)) {
    char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR];
    return lam__fail(LAM_ERR_SHAPE, "%s: target %s must have input's shape %s", fn,
                     lam__shape_str(target->ndim, target->shape, b1),
                     lam__shape_str(input->ndim, input->shape, b2)), NULL;
  }
  lam__scope s = {{0}, 0};
  lam_ctx *ctx = input->ctx;
  const lam_dtype dt = input->dtype;
  lam_tensor *x = input->ndim == 2 ? input : K(&s, lam_reshape(input, 2, (int64_t[]){1, c}));
  lam_tensor *t = target->ndim == 2 ? target : K(&s, lam_reshape(target, 2, (int64_t[]){1, c}));
  /* valid[n, j]: no negative entry at or before j (the first -1 ends the list):
   * the count of negatives up to j is neg @ triu(ones). Not differentiable. */
  lam_tensor *neg = K(&s, lam_tensor_cast(K(&s, lam_compare_scalar(LAM_LT, t, 0.0)), dt));
  lam_tensor *upper = K(&s, lam_tensor_cast(K(&s, lam_triu_mask(ctx, c, c, 0)), dt));
  lam_tensor *cnt = K(&s, lam_matmul(neg, upper));
  lam_tensor *valid = K(&s, lam_tensor_cast(K(&s, lam_compare_scalar(LAM_EQ, cnt, 0.0)), dt)); /* [N, S] */
  lam_tensor *tsafe = K(&s, lam_mul(t, K(&s, lam_tensor_cast(valid, LAM_I32))));
  /* is_target[n, i]: some valid j names class i. */
  lam_tensor *oh = K(&s, lam_one_hot(tsafe, (int)c, dt));                                   /* [N, S, C] */
  oh = K(&s, lam_mul(oh, K(&s, lam_reshape(valid, 3, (int64_t[]){n, c, 1}))));
  lam_tensor *is_t = K(&s, lam_max(oh, 1, (int[]){1}, 1));                                   /* [N, 1, C] */
  lam_tensor *xt = K(&s, lam_reshape(K(&s, lam_gather(x, 1, tsafe)), 3, (int64_t[]){n, c, 1})); /* [N, S, 1] */
  lam_tensor *x3 = K(&s, lam_reshape(x, 3, (int64_t[]){n, 1, c}));                          /* [N, 1, C] */
  lam_tensor *z = K(&s, lam_relu(K(&s, lam_add_scalar(K(&s, lam_sub(x3, xt)), 1.0))));       /* [N, S, C] */
  lam_tensor *mask = K(&s, lam_mul(K(&s, lam_reshape(valid, 3, (int64_t[]){n, c, 1})),
                                   K(&s, lam_rsub_scalar(is_t, 1.0))));
  lam_tensor *h = K(&s, lam_mul(z, mask));
  lam_tensor *l = K(&s, lam_div_scalar(K(&s, lam_sum(h, 2, (int[]){1, 2}, 0)), (double)c)); /* [N] */
  return lam__done(&s, lam__per_sample(&s, l, input, o.reduction, fn));
}

lam_tensor *lam_multilabel_soft_margin_loss(lam_tensor *input, lam_tensor *target,
                                            const lam_loss_opts *opts) {
  const char *fn = "lam_multilabel_soft_margin_loss";
  lam_loss_opts o = lam__loss_opts(opts);
  int64_t n, c;
  if (lam__check_classwise(input, target, &o, fn, &n, &c) != LAM_OK ||
      lam__loss_check_pair(input, target, "input", "target", fn) != LAM_OK)
    return NULL;
  lam__scope s = {{0}, 0};
  /* -(t log sigmoid(x) + (1 - t) log sigmoid(-x)) [* weight], mean over classes. */
  lam_tensor *a = K(&s, lam_mul(target, K(&s, lam_log_sigmoid(input))));
  lam_tensor *b = K(&s, lam_mul(K(&s, lam_rsub_scalar(target, 1.0)), K(&s, lam_log_sigmoid(K(&s, lam_neg(input))))));
  lam_tensor *l = K(&s, lam_neg(K(&s, lam_add(a, b))));
  if (o.weight) l = K(&s, lam_mul(l, o.weight));
  const int ax = -1;
  l = K(&s, lam_div_scalar(K(&s, lam_sum(l, 1, &ax, 0)), (double)c));
  return lam__done(&s, lam__loss_reduce(&s, l, o.reduction, fn));
}
