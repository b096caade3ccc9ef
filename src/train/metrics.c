/* train/metrics.c: metric trackers accumulated on the device and the
 * one-shot metric functions built on them.
 *
 * Each tracker keeps one device accumulator: a scalar count or sum (accuracy,
 * top-k, binary accuracy, MSE, MAE) or a [C, C] confusion matrix (precision,
 * recall, F1, confusion), grown with ops per update (one_hot^T @ one_hot for
 * the matrix) without reading anything back; lam_metric_value reads it once
 * and finishes the formula on the host in double. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "lamina/autodiff.h"
#include "lamina/elementwise.h"
#include "lamina/linalg.h"
#include "lamina/metrics.h"
#include "lamina/reduce.h"
#include "lamina/shape.h"

struct lam_metric {
  lam_metric_kind kind;
  lam_metric_opts o;
  int classes;     /* confusion kinds: fixed at the first update */
  lam_tensor *acc; /* device accumulator or NULL */
  int64_t count;
};

static const char *const lam__metric_names[] = {"accuracy", "top_k_accuracy", "binary_accuracy", "precision",
                                                "recall", "f1", "confusion", "mse", "mae"};

static bool lam__is_confusion(lam_metric_kind k) {
  return k == LAM_METRIC_PRECISION || k == LAM_METRIC_RECALL || k == LAM_METRIC_F1 || k == LAM_METRIC_CONFUSION;
}

lam_metric_opts lam_metric_defaults(void) { return (lam_metric_opts){.k = 5, .threshold = 0.5}; }

static lam_metric *lam__metric_new(lam_metric_kind kind, const lam_metric_opts *opts, const char *fn) {
  if ((int)kind < 0 || kind > LAM_METRIC_MAE)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: unknown metric kind %d", fn, (int)kind), NULL;
  lam_metric_opts o = opts ? *opts : (lam_metric_opts){0};
  if (o.k == 0) o.k = 5;
  o.threshold = lam__opt_f64(o.threshold, 0.5);
  if (o.num_classes < 0 || o.num_classes == 1)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: num_classes %d must be >= 2 (0: pred's last axis)", fn,
                     o.num_classes), NULL;
  if (o.k < 1) return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: k %d must be >= 1 (0: 5)", fn, o.k), NULL;
  if ((int)o.average < 0 || o.average > LAM_AVERAGE_WEIGHTED)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: unknown average %d", fn, (int)o.average), NULL;
  if (!isfinite(o.threshold))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: threshold %g must be finite", fn, o.threshold), NULL;
  lam_metric *m = calloc(1, sizeof *m);
  if (!m) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn), NULL;
  m->kind = kind;
  m->o = o;
  m->classes = o.num_classes;
  return m;
}

lam_metric *lam_metric_create(lam_metric_kind kind, const lam_metric_opts *opts) {
  return lam__metric_new(kind, opts, "lam_metric_create");
}

static lam_status lam__shape_fail(const char *fn, const char *what, lam_tensor *a, lam_tensor *b) {
  char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR];
  return lam__fail(LAM_ERR_SHAPE, "%s: pred %s and target %s: %s", fn, lam__shape_str(a->ndim, a->shape, b1),
                   lam__shape_str(b->ndim, b->shape, b2), what);
}

/* Predicted classes (i32, labels' shape) from scores or class indices. */
static lam_tensor *lam__classes(lam_tensor *pred, lam_tensor *labels, const char *fn) {
  if (pred->dtype == LAM_I32 && lam_tensor_same_shape(pred, labels)) return lam_tensor_retain(pred);
  bool ok = lam_dtype_is_float(pred->dtype) && pred->ndim == labels->ndim + 1;
  for (int a = 0; ok && a < labels->ndim; a++) ok = pred->shape[a] == labels->shape[a];
  if (!ok) {
    lam__shape_fail(fn, "need float scores with one more axis than the labels, or i32 classes of their shape",
                    pred, labels);
    return NULL;
  }
  return lam_argmax(pred, -1, 0);
}

/* Adds x to the accumulator (both consumed / borrowed as appropriate). */
static lam_status lam__acc_add(lam_metric *m, lam_tensor *x) {
  if (!x) return lam_last_status();
  lam_tensor *s = m->acc ? lam_add(m->acc, x) : lam_tensor_retain(x);
  lam_tensor_free(x);
  if (!s) return lam_last_status();
  lam_tensor_free(m->acc);
  m->acc = s;
  return LAM_OK;
}

/* Sum of all elements of a u8 mask as an f32 scalar (frees mask). */
static lam_tensor *lam__count(lam_tensor *mask) {
  lam_tensor *f = lam_tensor_cast(mask, LAM_F32);
  lam_tensor *s = lam_sum(f, 0, NULL, 0);
  lam_tensor_free(mask);
  lam_tensor_free(f);
  return s;
}

static lam_status lam__update(lam_metric *m, lam_tensor *pred, lam_tensor *target, const char *fn) {
  if (!m || !pred || !target)
    return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, !m ? "metric" : !pred ? "pred" : "target");
  if (pred->ctx != target->ctx) return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: pred and target are on different contexts", fn);
  bool classification = m->kind != LAM_METRIC_BINARY_ACCURACY && m->kind != LAM_METRIC_MSE && m->kind != LAM_METRIC_MAE;
  if (classification && target->dtype != LAM_I32)
    return lam__fail(LAM_ERR_DTYPE, "%s: %s needs i32 labels, got %s", fn, lam__metric_names[m->kind],
                     lam_dtype_name(target->dtype));
  if (!classification && !lam_tensor_same_shape(pred, target))
    return lam__shape_fail(fn, "need the same shape", pred, target);
  if (!classification && !lam_dtype_is_float(pred->dtype))
    return lam__fail(LAM_ERR_DTYPE, "%s: %s needs float pred, got %s", fn, lam__metric_names[m->kind],
                     lam_dtype_name(pred->dtype));
  bool was = lam_grad_set_enabled(pred->ctx, false);
  lam_status st = LAM_OK;
  int64_t rows = target->numel;
  switch (m->kind) {
    case LAM_METRIC_ACCURACY: {
      lam_tensor *c = lam__classes(pred, target, fn);
      st = c ? lam__acc_add(m, lam__count(lam_eq(c, target))) : lam_last_status();
      lam_tensor_free(c);
      break;
    }
    case LAM_METRIC_TOP_K_ACCURACY: {
      bool ok = lam_dtype_is_float(pred->dtype) && pred->ndim == target->ndim + 1;
      for (int a = 0; ok && a < target->ndim; a++) ok = pred->shape[a] == target->shape[a];
      if (!ok) {
        st = lam__shape_fail(fn, "top-k needs float scores with one more axis than the labels", pred, target);
        break;
      }
      int c = (int)pred->shape[pred->ndim - 1];
      lam_tensor *oh = lam_one_hot(target, c, pred->dtype);
      lam_tensor *picked = lam_mul(pred, oh);
      int ax = -1;
      lam_tensor *true_score = lam_sum(picked, 1, &ax, 1);
      lam_tensor *gt = lam_gt(pred, true_score);
      lam_tensor *gtf = lam_tensor_cast(gt, LAM_F32);
      lam_tensor *above = lam_sum(gtf, 1, &ax, 0);
      st = above ? lam__acc_add(m, lam__count(lam_compare_scalar(LAM_LT, above, (double)m->o.k))) : lam_last_status();
      lam_tensor *tmp[] = {oh, picked, true_score, gt, gtf, above};
      for (size_t i = 0; i < sizeof tmp / sizeof *tmp; i++) lam_tensor_free(tmp[i]);
      break;
    }
    case LAM_METRIC_BINARY_ACCURACY: {
      lam_tensor *p = lam_compare_scalar(LAM_GT, pred, m->o.threshold);
      lam_tensor *tf = target->dtype == pred->dtype ? lam_tensor_retain(target) : lam_tensor_cast(target, pred->dtype);
      lam_tensor *t = lam_compare_scalar(LAM_GT, tf, 0.5);
      st = p && t ? lam__acc_add(m, lam__count(lam_eq(p, t))) : lam_last_status();
      lam_tensor_free(p);
      lam_tensor_free(tf);
      lam_tensor_free(t);
      break;
    }
    case LAM_METRIC_MSE:
    case LAM_METRIC_MAE: {
      lam_tensor *tf = target->dtype == pred->dtype ? lam_tensor_retain(target) : lam_tensor_cast(target, pred->dtype);
      lam_tensor *d = lam_sub(pred, tf);
      lam_tensor *e = m->kind == LAM_METRIC_MSE ? lam_square(d) : lam_abs(d);
      st = e ? lam__acc_add(m, lam_sum(e, 0, NULL, 0)) : lam_last_status();
      lam_tensor_free(tf);
      lam_tensor_free(d);
      lam_tensor_free(e);
      break;
    }
    default: { /* the confusion kinds */
      int c = m->classes;
      if (c == 0) {
        if (!(lam_dtype_is_float(pred->dtype) && pred->ndim == target->ndim + 1)) {
          st = lam__shape_fail(fn, "num_classes is 0 and pred holds no scores to take it from", pred, target);
          break;
        }
        c = (int)pred->shape[pred->ndim - 1];
        if (c < 2) {
          st = lam__fail(LAM_ERR_SHAPE, "%s: %d class; need >= 2", fn, c);
          break;
        }
      } else if (lam_dtype_is_float(pred->dtype) && pred->ndim == target->ndim + 1 &&
                 pred->shape[pred->ndim - 1] != c) {
        st = lam__fail(LAM_ERR_SHAPE, "%s: pred has %lld scores per row, num_classes is %d", fn,
                       (long long)pred->shape[pred->ndim - 1], c);
        break;
      }
      lam_tensor *cls = lam__classes(pred, target, fn);
      if (!cls) {
        st = lam_last_status();
        break;
      }
      int64_t n = target->numel;
      lam_tensor *tl = lam_reshape(target, 1, &n), *pl = lam_reshape(cls, 1, &n);
      lam_tensor *ot = lam_one_hot(tl, c, LAM_F32), *op = lam_one_hot(pl, c, LAM_F32);
      st = ot && op ? lam__acc_add(m, lam_matmul_t(ot, op, 1, 0)) : lam_last_status();
      if (st == LAM_OK) m->classes = c;
      lam_tensor *tmp[] = {cls, tl, pl, ot, op};
      for (size_t i = 0; i < sizeof tmp / sizeof *tmp; i++) lam_tensor_free(tmp[i]);
      break;
    }
  }
  lam_grad_set_enabled(pred->ctx, was);
  if (st == LAM_OK) m->count += m->kind == LAM_METRIC_BINARY_ACCURACY || m->kind == LAM_METRIC_MSE ||
                                        m->kind == LAM_METRIC_MAE ? pred->numel : rows;
  return st;
}

lam_status lam_metric_update(lam_metric *m, lam_tensor *pred, lam_tensor *target) {
  return lam__update(m, pred, target, "lam_metric_update");
}

/* precision / recall / F1 of the confusion matrix M (row true, col pred). */
static double lam__prf(const float *M, int c, lam_metric_kind kind, lam_average avg) {
  double total = 0, tp_all = 0;
  for (int i = 0; i < c * c; i++) total += M[i];
  for (int i = 0; i < c; i++) tp_all += M[i * c + i];
  if (kind == LAM_METRIC_CONFUSION || avg == LAM_AVERAGE_MICRO) return total > 0 ? tp_all / total : 0;
  double sum = 0;
  for (int k = 0; k < c; k++) {
    double tp = M[k * c + k], npred = 0, ntrue = 0;
    for (int i = 0; i < c; i++) {
      npred += M[i * c + k];
      ntrue += M[k * c + i];
    }
    double v = kind == LAM_METRIC_PRECISION ? (npred > 0 ? tp / npred : 0)
             : kind == LAM_METRIC_RECALL    ? (ntrue > 0 ? tp / ntrue : 0)
                                            : (npred + ntrue > 0 ? 2 * tp / (npred + ntrue) : 0);
    sum += avg == LAM_AVERAGE_WEIGHTED ? v * ntrue : v;
  }
  return avg == LAM_AVERAGE_WEIGHTED ? (total > 0 ? sum / total : 0) : sum / c;
}

static lam_status lam__value(lam_metric *m, double *out, const char *fn) {
  if (!m || !out) return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, !m ? "metric" : "out");
  if (!m->acc || m->count == 0) {
    *out = NAN;
    return LAM_OK;
  }
  if (lam__is_confusion(m->kind)) {
    int c = m->classes;
    float *M = malloc(sizeof(float) * (size_t)c * (size_t)c);
    if (!M) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
    lam_status st = lam_tensor_to_host(m->acc, M, sizeof(float) * (size_t)c * (size_t)c);
    if (st == LAM_OK) *out = lam__prf(M, c, m->kind, m->o.average);
    free(M);
    return st;
  }
  double v = 0;
  lam_status st = lam_tensor_item(m->acc, &v);
  if (st == LAM_OK) *out = v / (double)m->count;
  return st;
}

lam_status lam_metric_value(lam_metric *m, double *out) { return lam__value(m, out, "lam_metric_value"); }

lam_status lam_metric_confusion(lam_metric *m, lam_tensor **out) {
  const char *fn = "lam_metric_confusion";
  if (!m || !out) return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, !m ? "metric" : "out");
  *out = NULL;
  if (!lam__is_confusion(m->kind))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: a %s tracker keeps no confusion matrix", fn,
                     lam__metric_names[m->kind]);
  if (!m->acc) return lam__fail(LAM_ERR_STATE, "%s: no update yet", fn);
  *out = lam_tensor_cast(m->acc, LAM_I32);
  return *out ? LAM_OK : lam_last_status();
}

int64_t lam_metric_count(const lam_metric *m) { return m ? m->count : -1; }
lam_metric_kind lam_metric_kind_of(const lam_metric *m) { return m ? m->kind : LAM_METRIC_ACCURACY; }
const char *lam_metric_name(const lam_metric *m) { return m ? lam__metric_names[m->kind] : "metric"; }

void lam_metric_reset(lam_metric *m) {
  if (!m) return;
  lam_tensor_free(m->acc);
  m->acc = NULL;
  m->count = 0;
  m->classes = m->o.num_classes;
}

void lam_metric_free(lam_metric *m) {
  if (!m) return;
  lam_tensor_free(m->acc);
  free(m);
}

/* ---- one-shot ------------------------------------------------------------ */

static lam_status lam__once(lam_metric_kind kind, const lam_metric_opts *opts, lam_tensor *pred, lam_tensor *target,
                            double *out, const char *fn) {
  if (!out) return lam__fail(LAM_ERR_NULL, "%s: out is NULL", fn);
  lam_metric *m = lam__metric_new(kind, opts, fn);
  if (!m) return lam_last_status();
  lam_status st = lam__update(m, pred, target, fn);
  if (st == LAM_OK) st = lam__value(m, out, fn);
  lam_metric_free(m);
  return st;
}

lam_status lam_metric_compute(lam_metric_kind kind, const lam_metric_opts *opts, lam_tensor *pred, lam_tensor *target,
                              double *out) {
  return lam__once(kind, opts, pred, target, out, "lam_metric_compute");
}

lam_status lam_top_k_accuracy(lam_tensor *scores, lam_tensor *labels, int k, double *out) {
  if (k < 1) return lam__fail(LAM_ERR_INVALID_ARGUMENT, "lam_top_k_accuracy: k %d must be >= 1", k);
  return lam__once(LAM_METRIC_TOP_K_ACCURACY, &(lam_metric_opts){.k = k}, scores, labels, out, "lam_top_k_accuracy");
}

lam_status lam_binary_accuracy(lam_tensor *probs, lam_tensor *target, double *out) {
  return lam__once(LAM_METRIC_BINARY_ACCURACY, NULL, probs, target, out, "lam_binary_accuracy");
}

lam_status lam_precision_recall_f1(lam_tensor *pred, lam_tensor *labels, const lam_metric_opts *opts, double *p,
                                   double *r, double *f1) {
  const char *fn = "lam_precision_recall_f1";
  lam_metric *m = lam__metric_new(LAM_METRIC_CONFUSION, opts, fn);
  if (!m) return lam_last_status();
  lam_status st = lam__update(m, pred, labels, fn);
  if (st == LAM_OK) {
    int c = m->classes;
    float *M = malloc(sizeof(float) * (size_t)c * (size_t)c);
    st = M ? lam_tensor_to_host(m->acc, M, sizeof(float) * (size_t)c * (size_t)c)
           : lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
    if (st == LAM_OK) {
      if (p) *p = lam__prf(M, c, LAM_METRIC_PRECISION, m->o.average);
      if (r) *r = lam__prf(M, c, LAM_METRIC_RECALL, m->o.average);
      if (f1) *f1 = lam__prf(M, c, LAM_METRIC_F1, m->o.average);
    }
    free(M);
  }
  lam_metric_free(m);
  return st;
}

lam_status lam_confusion_matrix(lam_tensor *pred, lam_tensor *labels, int num_classes, lam_tensor **out) {
  const char *fn = "lam_confusion_matrix";
  if (!out) return lam__fail(LAM_ERR_NULL, "%s: out is NULL", fn);
  *out = NULL;
  lam_metric *m = lam__metric_new(LAM_METRIC_CONFUSION, &(lam_metric_opts){.num_classes = num_classes}, fn);
  if (!m) return lam_last_status();
  lam_status st = lam__update(m, pred, labels, fn);
  if (st == LAM_OK) {
    *out = lam_tensor_cast(m->acc, LAM_I32);
    if (!*out) st = lam_last_status();
  }
  lam_metric_free(m);
  return st;
}

lam_status lam_mean_squared_error(lam_tensor *pred, lam_tensor *target, double *out) {
  return lam__once(LAM_METRIC_MSE, NULL, pred, target, out, "lam_mean_squared_error");
}

lam_status lam_mean_absolute_error(lam_tensor *pred, lam_tensor *target, double *out) {
  return lam__once(LAM_METRIC_MAE, NULL, pred, target, out, "lam_mean_absolute_error");
}
