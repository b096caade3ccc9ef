/* lamina/metrics.h: classification and regression metrics, as one-shot
 * functions and as running trackers (Keras metrics, torchmetrics).
 *
 * A tracker accumulates its counts on the device (lam_metric_update enqueues
 * a few ops and reads nothing back); lam_metric_value reads the counts once.
 * So a tracker updated every batch costs one host sync per epoch. The
 * definitions are scikit-learn's:
 *   accuracy         share of rows whose argmax over the last axis of pred
 *                    (or pred itself, for i32 class indices of labels' shape)
 *                    equals the i32 label
 *   top-k accuracy   share of rows whose label's score is among the k largest
 *                    (fewer than k scores are strictly larger)
 *                    (sklearn.metrics.top_k_accuracy_score without ties)
 *   binary accuracy  share of elements with (pred > threshold) == (target > 0.5)
 *                    (Keras BinaryAccuracy; pred are probabilities)
 *   precision, recall, F1  from the confusion matrix over num_classes classes
 *                    (sklearn's with labels=range(num_classes) and
 *                    zero_division=0): macro (unweighted mean over the
 *                    classes), micro (global counts; equal to accuracy for
 *                    single-label data), weighted (mean weighted by each
 *                    class's true count)
 *   confusion matrix counts [num_classes, num_classes], row = true class,
 *                    column = predicted class (sklearn.metrics.confusion_matrix)
 *   MSE, MAE         mean of (pred - target)^2 / |pred - target| over all elements
 * Counts are kept in f32 on the device: exact up to 2^24 per entry. */
#ifndef LAMINA_METRICS_H
#define LAMINA_METRICS_H

#include "lamina/export.h"

#include "lamina/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lam_metric_kind {
  LAM_METRIC_ACCURACY = 0,
  LAM_METRIC_TOP_K_ACCURACY = 1,
  LAM_METRIC_BINARY_ACCURACY = 2,
  LAM_METRIC_PRECISION = 3,
  LAM_METRIC_RECALL = 4,
  LAM_METRIC_F1 = 5,
  LAM_METRIC_CONFUSION = 6, /* value: accuracy; the matrix through lam_metric_confusion */
  LAM_METRIC_MSE = 7,
  LAM_METRIC_MAE = 8
} lam_metric_kind;

typedef enum lam_average {
  LAM_AVERAGE_MACRO = 0,
  LAM_AVERAGE_MICRO = 1,
  LAM_AVERAGE_WEIGHTED = 2
} lam_average;

/* Options of the metrics (the options rule, lamina/options.h: NULL, a
 * zeroed struct and lam_metric_defaults() are the same). */
typedef struct lam_metric_opts {
  int num_classes;     /* precision/recall/F1/confusion: 0: the size of pred's
                        * last axis (pred must then be scores [..., C]) */
  int k;               /* top-k: 0: 5 */
  lam_average average; /* precision/recall/F1: default macro */
  double threshold;    /* binary accuracy: 0: 0.5 (LAM_ZERO for a real 0) */
} lam_metric_opts;
LAM_API lam_metric_opts lam_metric_defaults(void);

typedef struct lam_metric lam_metric;

/* A running tracker of `kind` (NULL with a message on bad options). */
LAM_API lam_metric *lam_metric_create(lam_metric_kind kind, const lam_metric_opts *opts);
/* Adds a batch: pred (scores [..., C] or i32 class indices for the
 * classification kinds; probabilities for binary accuracy; values for
 * MSE/MAE) against target (i32 labels; for binary accuracy and MSE/MAE the
 * shape of pred, any dtype). Enqueues device work only. */
LAM_API lam_status lam_metric_update(lam_metric *m, lam_tensor *pred, lam_tensor *target);
/* The metric over everything since the last reset (one read from the
 * device). NAN before any update. */
LAM_API lam_status lam_metric_value(lam_metric *m, double *out);
/* The confusion matrix so far as a new i32 tensor [C, C] (kinds precision,
 * recall, F1 and confusion). */
LAM_API lam_status lam_metric_confusion(lam_metric *m, lam_tensor **out);
/* Samples (rows; elements for binary accuracy, MSE and MAE) seen since the reset; -1 for NULL. */
LAM_API int64_t lam_metric_count(const lam_metric *m);
/* LAM_METRIC_ACCURACY for NULL. */
LAM_API lam_metric_kind lam_metric_kind_of(const lam_metric *m);
/* "accuracy", "top_k_accuracy", "binary_accuracy", "precision", "recall", "f1",
 * "confusion", "mse", "mae"; "metric" for NULL */
LAM_API const char *lam_metric_name(const lam_metric *m);
/* NULL is a no-op (both). */
LAM_API void lam_metric_reset(lam_metric *m);
LAM_API void lam_metric_free(lam_metric *m);

/* One-shot: the metric of one (pred, target) pair (a tracker updated once). */
LAM_API lam_status lam_metric_compute(lam_metric_kind kind, const lam_metric_opts *opts, lam_tensor *pred,
                                      lam_tensor *target, double *out);
LAM_API lam_status lam_top_k_accuracy(lam_tensor *scores, lam_tensor *labels, int k, double *out);
LAM_API lam_status lam_binary_accuracy(lam_tensor *probs, lam_tensor *target, double *out);
/* Any of p, r, f1 may be NULL. */
LAM_API lam_status lam_precision_recall_f1(lam_tensor *pred, lam_tensor *labels, const lam_metric_opts *opts,
                                           double *p, double *r, double *f1);
/* num_classes 0: pred's last axis. A new i32 tensor [C, C] in *out. */
LAM_API lam_status lam_confusion_matrix(lam_tensor *pred, lam_tensor *labels, int num_classes, lam_tensor **out);
LAM_API lam_status lam_mean_squared_error(lam_tensor *pred, lam_tensor *target, double *out);
LAM_API lam_status lam_mean_absolute_error(lam_tensor *pred, lam_tensor *target, double *out);

#ifdef __cplusplus
}
#endif
#endif
