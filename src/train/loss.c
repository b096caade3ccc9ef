/* train/loss.c: loss functions composed from differentiable ops.
 *
 * Temporaries go into a small scope that is freed at the end; because every
 * op returns NULL on a NULL input, a failure anywhere falls through to a
 * NULL result with the first error message kept. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "lamina/elementwise.h"
#include "lamina/loss.h"
#include "lamina/reduce.h"
#include "lamina/shape.h"
#include "train/loss_internal.h"

/* The options rule (lamina/options.h): zero fields take the defaults. margin,
 * eps and p are resolved by each loss (their defaults differ); a negative
 * zero anywhere becomes +0. */
static lam_loss_opts lam__resolve(lam_loss_opts o) {
  o.label_smoothing = lam__opt_f64(o.label_smoothing, 0.0);
  if (o.ignore_index == 0 && !o.ignore_index_set) o.ignore_index = -100;
  o.ignore_index_set = true;
  o.beta = lam__opt_f64(o.beta, 1.0);
  o.delta = lam__opt_f64(o.delta, 1.0);
  if (o.axis == 0 && !o.axis_set) o.axis = 1;
  o.axis_set = true;
  return o;
}

lam_loss_opts lam_loss_defaults(void) { return lam__resolve((lam_loss_opts){0}); }

lam_loss_opts lam__loss_opts(const lam_loss_opts *o) { return lam__resolve(o ? *o : (lam_loss_opts){0}); }

/* Resolves eps (0: def, LAM_ZERO: 0) into *out; false (with a message) when negative or NaN. */
bool lam__loss_eps(const lam_loss_opts *o, double def, const char *fn, double *out) {
  *out = lam__opt_f64(o->eps, def);
  if (*out >= 0) return true;
  lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: eps %g must be >= 0", fn, o->eps);
  return false;
}

/* Resolves margin (0: def, LAM_ZERO: 0) into *out; false (with a message) when not finite. */
bool lam__loss_margin(const lam_loss_opts *o, double def, const char *fn, double *out) {
  *out = lam__opt_f64(o->margin, def);
  if (isfinite(*out)) return true;
  lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: margin %g must be finite", fn, o->margin);
  return false;
}

lam_tensor *lam__loss_reduce(lam__scope *s, lam_tensor *l, lam_reduction r, const char *fn) {
  if (!l) return NULL;
  switch (r) {
    case LAM_REDUCTION_NONE: return l;
    case LAM_REDUCTION_SUM: return K(s, lam_sum(l, 0, NULL, 0));
    case LAM_REDUCTION_MEAN: return K(s, lam_mean(l, 0, NULL, 0));
    case LAM_REDUCTION_BATCHMEAN: {
      lam_tensor *sum = K(s, lam_sum(l, 0, NULL, 0));
      return K(s, lam_div_scalar(sum, (double)(l->ndim ? l->shape[0] : 1)));
    }
  }
  return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: unknown reduction %d", fn, (int)r), NULL;
}

lam_status lam__loss_check_reduction(lam_reduction r, bool batchmean_ok, const char *fn) {
  if ((int)r < 0 || r > LAM_REDUCTION_BATCHMEAN || (r == LAM_REDUCTION_BATCHMEAN && !batchmean_ok))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: reduction %d is not one of mean, sum, none%s", fn,
                     (int)r, batchmean_ok ? ", batchmean" : "");
  return LAM_OK;
}

/* Input and target: same shape, same float dtype. */
lam_status lam__loss_check_pair(lam_tensor *a, lam_tensor *b, const char *an, const char *bn,
                                  const char *fn) {
  if (!a) return lam__null_input(fn, an), lam_last_status();
  if (!b) return lam__null_input(fn, bn), lam_last_status();
  if (!lam_dtype_is_float(a->dtype) || a->dtype != b->dtype)
    return lam__fail(LAM_ERR_DTYPE, "%s: %s is %s and %s is %s; both must be the same float dtype", fn,
                     an, lam_dtype_name(a->dtype), bn, lam_dtype_name(b->dtype));
  if (!lam_tensor_same_shape(a, b)) {
    char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR];
    return lam__fail(LAM_ERR_SHAPE, "%s: %s is %s but %s is %s", fn, an,
                     lam__shape_str(a->ndim, a->shape, b1), bn, lam__shape_str(b->ndim, b->shape, b2));
  }
  return LAM_OK;
}

lam_status lam__loss_check_broadcast(lam_tensor *w, lam_tensor *x, const char *wn, const char *fn) {
  bool ok = w->dtype == x->dtype && w->ndim <= x->ndim;
  for (int i = 1; ok && i <= w->ndim; i++) {
    int64_t a = w->shape[w->ndim - i], b = x->shape[x->ndim - i];
    ok = a == b || a == 1;
  }
  if (ok) return LAM_OK;
  char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR];
  return lam__fail(LAM_ERR_SHAPE, "%s: %s (%s %s) must be a %s tensor that broadcasts to the input %s", fn, wn,
                   lam_dtype_name(w->dtype), lam__shape_str(w->ndim, w->shape, b1), lam_dtype_name(x->dtype),
                   lam__shape_str(x->ndim, x->shape, b2));
}

/* Moves axis 1 (classes) last and flattens to [M, C]. */
static lam_tensor *lam__classes_last(lam__scope *s, lam_tensor *x) {
  int nd = x->ndim;
  lam_tensor *t = x;
  if (nd > 2) {
    int perm[LAM_MAX_DIMS];
    perm[0] = 0;
    for (int i = 2; i < nd; i++) perm[i - 1] = i;
    perm[nd - 1] = 1;
    t = K(s, lam_permute(x, perm));
  }
  return K(s, lam_reshape(t, 2, (int64_t[]){-1, x->shape[1]}));
}

/* Shared by cross_entropy (index targets) and nll_loss: logp [N, C, ...]. */
static lam_tensor *lam__nll_index(lam__scope *s, lam_tensor *logp, lam_tensor *target,
                                  const lam_loss_opts *o, double smoothing, const char *fn) {
  int64_t C = logp->shape[1];
  bool shape_ok = target->ndim == logp->ndim - 1 && target->shape[0] == logp->shape[0];
  for (int i = 1; shape_ok && i < target->ndim; i++) shape_ok = target->shape[i] == logp->shape[i + 1];
  if (!shape_ok) {
    char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR];
    return lam__fail(LAM_ERR_SHAPE, "%s: target %s does not match input %s without its class axis", fn,
                     lam__shape_str(target->ndim, target->shape, b1),
                     lam__shape_str(logp->ndim, logp->shape, b2)), NULL;
  }
  if (o->weight && (o->weight->ndim != 1 || o->weight->shape[0] != C || o->weight->dtype != logp->dtype))
    return lam__fail(LAM_ERR_SHAPE, "%s: weight must be a %s vector of %lld class weights", fn,
                     lam_dtype_name(logp->dtype), (long long)C), NULL;
  lam_tensor *lp = lam__classes_last(s, logp);                      /* [M, C] */
  lam_tensor *y = K(s, lam_reshape(target, 1, (int64_t[]){-1}));   /* [M] */
  lam_tensor *mask = K(s, lam_compare_scalar(LAM_NE, y, (double)o->ignore_index));
  lam_tensor *ysafe = K(s, lam_mul(y, K(s, lam_tensor_cast(mask, LAM_I32))));
  lam_tensor *maskf = K(s, lam_tensor_cast(mask, logp->dtype));
  int64_t M = lp ? lp->shape[0] : 1;
  lam_tensor *picked = K(s, lam_gather(lp, 1, K(s, lam_reshape(ysafe, 2, (int64_t[]){M, 1}))));
  picked = K(s, lam_reshape(picked, 1, &M));
  lam_tensor *wm = o->weight ? K(s, lam_mul(K(s, lam_take(o->weight, ysafe, 0)), maskf)) : maskf;
  lam_tensor *loss = K(s, lam_neg(K(s, lam_mul(picked, wm))));
  if (smoothing > 0) {
    lam_tensor *lw = o->weight ? K(s, lam_mul(lp, o->weight)) : lp;
    lam_tensor *smooth = K(s, lam_neg(K(s, lam_sum(lw, 1, (int[]){1}, 0))));
    smooth = K(s, lam_mul(smooth, maskf));
    loss = K(s, lam_add(K(s, lam_mul_scalar(loss, 1.0 - smoothing)),
                        K(s, lam_mul_scalar(smooth, smoothing / (double)C))));
  }
  switch (o->reduction) {
    case LAM_REDUCTION_NONE: return K(s, lam_reshape(loss, target->ndim, target->shape));
    case LAM_REDUCTION_SUM: return K(s, lam_sum(loss, 0, NULL, 0));
    default: /* mean over the weights of the non-ignored targets, as PyTorch */
      return K(s, lam_div(K(s, lam_sum(loss, 0, NULL, 0)), K(s, lam_sum(wm, 0, NULL, 0))));
  }
}

static lam_status lam__check_class_input(lam_tensor *x, lam_tensor *target, const lam_loss_opts *o,
                                         const char *xn, const char *fn) {
  if (!x) return lam__null_input(fn, xn), lam_last_status();
  if (!target) return lam__null_input(fn, "target"), lam_last_status();
  if (!lam_dtype_is_float(x->dtype))
    return lam__fail(LAM_ERR_DTYPE, "%s: %s is %s, need a float dtype", fn, xn, lam_dtype_name(x->dtype));
  if (x->ndim < 2) {
    char b[LAM__SHAPE_STR];
    return lam__fail(LAM_ERR_SHAPE, "%s: %s must be [N, C, ...], got %s", fn, xn,
                     lam__shape_str(x->ndim, x->shape, b));
  }
  return lam__loss_check_reduction(o->reduction, false, fn);
}

lam_tensor *lam_cross_entropy(lam_tensor *logits, lam_tensor *target, const lam_loss_opts *opts) {
  const char *fn = "lam_cross_entropy";
  lam_loss_opts o = lam__loss_opts(opts);
  if (lam__check_class_input(logits, target, &o, "logits", fn) != LAM_OK) return NULL;
  if (!(o.label_smoothing >= 0 && o.label_smoothing <= 1))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: label_smoothing %g must be in [0, 1]", fn,
                     o.label_smoothing), NULL;
  lam__scope s = {{0}, 0};
  lam_tensor *logp = K(&s, lam_log_softmax(logits, 1));
  if (!logp) return lam__done(&s, NULL);
  if (target->dtype == LAM_I32) return lam__done(&s, lam__nll_index(&s, logp, target, &o, o.label_smoothing, fn));
  /* Probability targets. */
  if (lam__loss_check_pair(logits, target, "logits", "target", fn) != LAM_OK) return lam__done(&s, NULL);
  int64_t C = logits->shape[1];
  lam_tensor *p = target;
  if (o.label_smoothing > 0)
    p = K(&s, lam_add_scalar(K(&s, lam_mul_scalar(target, 1.0 - o.label_smoothing)),
                             o.label_smoothing / (double)C));
  lam_tensor *l = K(&s, lam_mul(p, logp));
  if (o.weight) {
    if (o.weight->ndim != 1 || o.weight->shape[0] != C || o.weight->dtype != logits->dtype)
      return lam__fail(LAM_ERR_SHAPE, "%s: weight must be a %s vector of %lld class weights", fn,
                       lam_dtype_name(logits->dtype), (long long)C), lam__done(&s, NULL);
    int64_t ws[LAM_MAX_DIMS];
    for (int i = 0; i < logits->ndim - 1; i++) ws[i] = i == 0 ? C : 1;
    l = K(&s, lam_mul(l, K(&s, lam_reshape(o.weight, logits->ndim - 1, ws))));
  }
  lam_tensor *per = K(&s, lam_neg(K(&s, lam_sum(l, 1, (int[]){1}, 0))));
  return lam__done(&s, lam__loss_reduce(&s, per, o.reduction, fn));
}

lam_tensor *lam_nll_loss(lam_tensor *log_probs, lam_tensor *target, const lam_loss_opts *opts) {
  const char *fn = "lam_nll_loss";
  lam_loss_opts o = lam__loss_opts(opts);
  if (lam__check_class_input(log_probs, target, &o, "log_probs", fn) != LAM_OK) return NULL;
  if (target->dtype != LAM_I32)
    return lam__fail(LAM_ERR_DTYPE, "%s: target is %s, need i32 class indices", fn,
                     lam_dtype_name(target->dtype)), NULL;
  lam__scope s = {{0}, 0};
  return lam__done(&s, lam__nll_index(&s, log_probs, target, &o, 0.0, fn));
}

lam_tensor *lam_binary_cross_entropy(lam_tensor *input, lam_tensor *target, const lam_loss_opts *opts) {
  const char *fn = "lam_binary_cross_entropy";
  lam_loss_opts o = lam__loss_opts(opts);
  if (lam__loss_check_pair(input, target, "input", "target", fn) != LAM_OK ||
      lam__loss_check_reduction(o.reduction, false, fn) != LAM_OK)
    return NULL;
  if (o.pos_weight) {
    if (o.from_probabilities)
      return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: pos_weight is only taken with logits "
                       "(from_probabilities is set)", fn), NULL;
    if (lam__loss_check_broadcast(o.pos_weight, input, "pos_weight", fn) != LAM_OK) return NULL;
  }
  lam__scope s = {{0}, 0};
  lam_tensor *l;
  if (!o.from_probabilities && o.pos_weight) {
    /* (1 - t) x + (1 + (pw - 1) t) softplus(-x), as PyTorch: stable for large |x|. */
    lam_tensor *lw = K(&s, lam_add_scalar(K(&s, lam_mul(K(&s, lam_sub_scalar(o.pos_weight, 1.0)), target)), 1.0));
    lam_tensor *a = K(&s, lam_mul(K(&s, lam_rsub_scalar(target, 1.0)), input));
    l = K(&s, lam_add(a, K(&s, lam_mul(lw, K(&s, lam_softplus(K(&s, lam_neg(input))))))));
  } else if (!o.from_probabilities) {
    /* softplus(x) - x t: stable for large |x|. */
    l = K(&s, lam_sub(K(&s, lam_softplus(input)), K(&s, lam_mul(input, target))));
  } else {
    /* PyTorch clamps the logs at -100 so p in {0, 1} stays finite. */
    lam_tensor *lp = K(&s, lam_clamp(K(&s, lam_log(input)), -100, INFINITY));
    lam_tensor *l1p = K(&s, lam_clamp(K(&s, lam_log(K(&s, lam_rsub_scalar(input, 1.0)))), -100, INFINITY));
    lam_tensor *a = K(&s, lam_mul(target, lp));
    lam_tensor *b = K(&s, lam_mul(K(&s, lam_rsub_scalar(target, 1.0)), l1p));
    l = K(&s, lam_neg(K(&s, lam_add(a, b))));
  }
  if (o.weight) l = K(&s, lam_mul(l, o.weight));
  return lam__done(&s, lam__loss_reduce(&s, l, o.reduction, fn));
}

lam_tensor *lam_mse_loss(lam_tensor *input, lam_tensor *target, const lam_loss_opts *opts) {
  const char *fn = "lam_mse_loss";
  lam_loss_opts o = lam__loss_opts(opts);
  if (lam__loss_check_pair(input, target, "input", "target", fn) != LAM_OK ||
      lam__loss_check_reduction(o.reduction, false, fn) != LAM_OK)
    return NULL;
  lam__scope s = {{0}, 0};
  lam_tensor *l = K(&s, lam_square(K(&s, lam_sub(input, target))));
  return lam__done(&s, lam__loss_reduce(&s, l, o.reduction, fn));
}

lam_tensor *lam_l1_loss(lam_tensor *input, lam_tensor *target, const lam_loss_opts *opts) {
  const char *fn = "lam_l1_loss";
  lam_loss_opts o = lam__loss_opts(opts);
  if (lam__loss_check_pair(input, target, "input", "target", fn) != LAM_OK ||
      lam__loss_check_reduction(o.reduction, false, fn) != LAM_OK)
    return NULL;
  lam__scope s = {{0}, 0};
  lam_tensor *l = K(&s, lam_abs(K(&s, lam_sub(input, target))));
  return lam__done(&s, lam__loss_reduce(&s, l, o.reduction, fn));
}

/* where(|d| < t, quad_scale * d^2, lin_scale * (|d| - 0.5 t)). */
static lam_tensor *lam__piecewise(lam__scope *s, lam_tensor *d, double t, double quad_scale,
                                  double lin_scale, bool le) {
  lam_tensor *ad = K(s, lam_abs(d));
  lam_tensor *quad = K(s, lam_mul_scalar(K(s, lam_square(d)), quad_scale));
  lam_tensor *lin = K(s, lam_mul_scalar(K(s, lam_sub_scalar(ad, 0.5 * t)), lin_scale));
  lam_tensor *cond = K(s, lam_compare_scalar(le ? LAM_LE : LAM_LT, ad, t));
  return K(s, lam_where(cond, quad, lin));
}

lam_tensor *lam_smooth_l1_loss(lam_tensor *input, lam_tensor *target, const lam_loss_opts *opts) {
  const char *fn = "lam_smooth_l1_loss";
  lam_loss_opts o = lam__loss_opts(opts);
  if (lam__loss_check_pair(input, target, "input", "target", fn) != LAM_OK ||
      lam__loss_check_reduction(o.reduction, false, fn) != LAM_OK)
    return NULL;
  if (!(o.beta >= 0)) return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: beta %g must be >= 0", fn, o.beta), NULL;
  lam__scope s = {{0}, 0};
  lam_tensor *d = K(&s, lam_sub(input, target));
  lam_tensor *l = o.beta == 0 ? K(&s, lam_abs(d)) : lam__piecewise(&s, d, o.beta, 0.5 / o.beta, 1.0, false);
  return lam__done(&s, lam__loss_reduce(&s, l, o.reduction, fn));
}

lam_tensor *lam_huber_loss(lam_tensor *input, lam_tensor *target, const lam_loss_opts *opts) {
  const char *fn = "lam_huber_loss";
  lam_loss_opts o = lam__loss_opts(opts);
  if (lam__loss_check_pair(input, target, "input", "target", fn) != LAM_OK ||
      lam__loss_check_reduction(o.reduction, false, fn) != LAM_OK)
    return NULL;
  if (!(o.delta > 0)) return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: delta %g must be > 0", fn, o.delta), NULL;
  lam__scope s = {{0}, 0};
  lam_tensor *d = K(&s, lam_sub(input, target));
  lam_tensor *l = lam__piecewise(&s, d, o.delta, 0.5, o.delta, true);
  return lam__done(&s, lam__loss_reduce(&s, l, o.reduction, fn));
}

lam_tensor *lam_kl_div_loss(lam_tensor *input, lam_tensor *target, const lam_loss_opts *opts) {
  const char *fn = "lam_kl_div_loss";
  lam_loss_opts o = lam__loss_opts(opts);
  if (lam__loss_check_pair(input, target, "input", "target", fn) != LAM_OK ||
      lam__loss_check_reduction(o.reduction, true, fn) != LAM_OK)
    return NULL;
  lam__scope s = {{0}, 0};
  lam_tensor *l;
  if (o.log_target) {
    l = K(&s, lam_mul(K(&s, lam_exp(target)), K(&s, lam_sub(target, input))));
  } else {
    /* xlogy: 0 where target == 0 (log of a clamped target keeps it finite). */
    lam_tensor *pos = K(&s, lam_compare_scalar(LAM_GT, target, 0.0));
    lam_tensor *lt = K(&s, lam_log(K(&s, lam_clamp(target, 1e-300, INFINITY))));
    lam_tensor *v = K(&s, lam_mul(target, K(&s, lam_sub(lt, input))));
    l = K(&s, lam_where(pos, v, K(&s, lam_tensor_zeros_like(v))));
  }
  return lam__done(&s, lam__loss_reduce(&s, l, o.reduction, fn));
}

lam_tensor *lam_hinge_loss(lam_tensor *input, lam_tensor *target, const lam_loss_opts *opts) {
  const char *fn = "lam_hinge_loss";
  lam_loss_opts o = lam__loss_opts(opts);
  if (lam__loss_check_pair(input, target, "input", "target", fn) != LAM_OK ||
      lam__loss_check_reduction(o.reduction, false, fn) != LAM_OK)
    return NULL;
  lam__scope s = {{0}, 0};
  lam_tensor *l = K(&s, lam_relu(K(&s, lam_rsub_scalar(K(&s, lam_mul(input, target)), 1.0))));
  return lam__done(&s, lam__loss_reduce(&s, l, o.reduction, fn));
}

lam_tensor *lam_margin_ranking_loss(lam_tensor *x1, lam_tensor *x2, lam_tensor *y,
                                    const lam_loss_opts *opts) {
  const char *fn = "lam_margin_ranking_loss";
  lam_loss_opts o = lam__loss_opts(opts);
  if (lam__loss_check_pair(x1, x2, "x1", "x2", fn) != LAM_OK || lam__loss_check_pair(x1, y, "x1", "y", fn) != LAM_OK ||
      lam__loss_check_reduction(o.reduction, false, fn) != LAM_OK)
    return NULL;
  double margin;
  if (!lam__loss_margin(&o, 0.0, fn, &margin)) return NULL;
  lam__scope s = {{0}, 0};
  lam_tensor *d = K(&s, lam_mul(K(&s, lam_neg(y)), K(&s, lam_sub(x1, x2))));
  lam_tensor *l = K(&s, lam_relu(K(&s, lam_add_scalar(d, margin))));
  return lam__done(&s, lam__loss_reduce(&s, l, o.reduction, fn));
}

/* ||a - b + eps||_p over the last axis (torch.pairwise_distance). */
static lam_tensor *lam__pdist(lam__scope *s, lam_tensor *a, lam_tensor *b, double p, double eps) {
  lam_tensor *d = K(s, lam_abs(K(s, lam_add_scalar(K(s, lam_sub(a, b)), eps))));
  lam_tensor *pw = p == 2 ? K(s, lam_square(d)) : p == 1 ? d : K(s, lam_pow_scalar(d, p));
  lam_tensor *sum = K(s, lam_sum(pw, 1, (int[]){-1}, 0));
  return p == 2 ? K(s, lam_sqrt(sum)) : p == 1 ? sum : K(s, lam_pow_scalar(sum, 1.0 / p));
}

lam_tensor *lam_triplet_margin_loss(lam_tensor *anchor, lam_tensor *positive, lam_tensor *negative,
                                    const lam_loss_opts *opts) {
  const char *fn = "lam_triplet_margin_loss";
  lam_loss_opts o = lam__loss_opts(opts);
  if (lam__loss_check_pair(anchor, positive, "anchor", "positive", fn) != LAM_OK ||
      lam__loss_check_pair(anchor, negative, "anchor", "negative", fn) != LAM_OK ||
      lam__loss_check_reduction(o.reduction, false, fn) != LAM_OK)
    return NULL;
  o.p = lam__opt_f64(o.p, 2.0);
  if (!(o.p > 0)) return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: p %g must be > 0", fn, o.p), NULL;
  double eps, margin;
  if (!lam__loss_eps(&o, 1e-6, fn, &eps) || !lam__loss_margin(&o, 1.0, fn, &margin)) return NULL;
  lam__scope s = {{0}, 0};
  lam_tensor *dp = lam__pdist(&s, anchor, positive, o.p, eps);
  lam_tensor *dn = lam__pdist(&s, anchor, negative, o.p, eps);
  if (o.swap) dn = K(&s, lam_minimum(dn, lam__pdist(&s, positive, negative, o.p, eps)));
  lam_tensor *l = K(&s, lam_relu(K(&s, lam_add_scalar(K(&s, lam_sub(dp, dn)), margin))));
  return lam__done(&s, lam__loss_reduce(&s, l, o.reduction, fn));
}

lam_tensor *lam_cosine_similarity_loss(lam_tensor *x1, lam_tensor *x2, const lam_loss_opts *opts) {
  const char *fn = "lam_cosine_similarity_loss";
  lam_loss_opts o = lam__loss_opts(opts);
  if (lam__loss_check_pair(x1, x2, "x1", "x2", fn) != LAM_OK || lam__loss_check_reduction(o.reduction, false, fn) != LAM_OK)
    return NULL;
  int ax = lam__axis(o.axis, x1->ndim);
  if (ax < 0)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: axis %d out of range for rank %d", fn, o.axis, x1->ndim), NULL;
  double eps;
  if (!lam__loss_eps(&o, 1e-8, fn, &eps)) return NULL;
  lam__scope s = {{0}, 0};
  lam_tensor *dot = K(&s, lam_sum(K(&s, lam_mul(x1, x2)), 1, &ax, 0));
  lam_tensor *n1 = K(&s, lam_sqrt(K(&s, lam_sum(K(&s, lam_square(x1)), 1, &ax, 0))));
  lam_tensor *n2 = K(&s, lam_sqrt(K(&s, lam_sum(K(&s, lam_square(x2)), 1, &ax, 0))));
  lam_tensor *den = K(&s, lam_binary_scalar(LAM_MAXIMUM, K(&s, lam_mul(n1, n2)), eps, 0));
  lam_tensor *l = K(&s, lam_div(dot, den));
  return lam__done(&s, lam__loss_reduce(&s, l, o.reduction, fn));
}

lam_tensor *lam_gaussian_nll_loss(lam_tensor *input, lam_tensor *target, lam_tensor *var,
                                  const lam_loss_opts *opts) {
  const char *fn = "lam_gaussian_nll_loss";
  lam_loss_opts o = lam__loss_opts(opts);
  if (lam__loss_check_pair(input, target, "input", "target", fn) != LAM_OK ||
      lam__loss_check_reduction(o.reduction, false, fn) != LAM_OK)
    return NULL;
  if (!var) return lam__null_input(fn, "var");
  if (var->dtype != input->dtype)
    return lam__fail(LAM_ERR_DTYPE, "%s: var is %s, input is %s", fn, lam_dtype_name(var->dtype),
                     lam_dtype_name(input->dtype)), NULL;
  double eps;
  if (!lam__loss_eps(&o, 1e-6, fn, &eps)) return NULL;
  lam__scope s = {{0}, 0};
  /* var below eps is clamped; there its gradient is zero (PyTorch passes it through). */
  lam_tensor *v = K(&s, lam_clamp(var, eps, INFINITY));
  lam_tensor *sq = K(&s, lam_div(K(&s, lam_square(K(&s, lam_sub(input, target)))), v));
  lam_tensor *l = K(&s, lam_mul_scalar(K(&s, lam_add(K(&s, lam_log(v)), sq)), 0.5));
  if (o.full) l = K(&s, lam_add_scalar(l, 0.9189385332046727 /* 0.5 log(2 pi) */));
  return lam__done(&s, lam__loss_reduce(&s, l, o.reduction, fn));
}

lam_tensor *lam_poisson_nll_loss(lam_tensor *input, lam_tensor *target, const lam_loss_opts *opts) {
  const char *fn = "lam_poisson_nll_loss";
  lam_loss_opts o = lam__loss_opts(opts);
  if (lam__loss_check_pair(input, target, "input", "target", fn) != LAM_OK ||
      lam__loss_check_reduction(o.reduction, false, fn) != LAM_OK)
    return NULL;
  double eps;
  if (!lam__loss_eps(&o, 1e-8, fn, &eps)) return NULL;
  lam__scope s = {{0}, 0};
  lam_tensor *l;
  if (!o.no_log_input) /* exp(x) - t x */
    l = K(&s, lam_sub(K(&s, lam_exp(input)), K(&s, lam_mul(target, input))));
  else /* x - t log(x + eps) */
    l = K(&s, lam_sub(input, K(&s, lam_mul(target, K(&s, lam_log(K(&s, lam_add_scalar(input, eps))))))));
  if (o.full) {
    /* t log t - t + 0.5 log(2 pi t) where t > 1, else 0; computed on max(t, 1) so
     * that the masked entries (and their target gradient) stay finite. */
    lam_tensor *gt1 = K(&s, lam_compare_scalar(LAM_GT, target, 1.0));
    lam_tensor *tc = K(&s, lam_clamp(target, 1.0, INFINITY));
    lam_tensor *lt = K(&s, lam_log(tc));
    lam_tensor *st = K(&s, lam_sub(K(&s, lam_mul(tc, lt)), tc));
    st = K(&s, lam_add(st, K(&s, lam_add_scalar(K(&s, lam_mul_scalar(lt, 0.5)), 0.9189385332046727))));
    l = K(&s, lam_add(l, K(&s, lam_where(gt1, st, K(&s, lam_tensor_zeros_like(st))))));
  }
  return lam__done(&s, lam__loss_reduce(&s, l, o.reduction, fn));
}
