/* test_metrics.c: lamina/metrics.h against scikit-learn's definitions
 * (tests/data/metrics_golden.safetensors from tools/gen_metrics_golden.py):
 * one-shot functions, trackers updated batch by batch (same values, counts
 * kept on the device), the confusion matrix, reset, options, bad input. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static lam_ptree *golden(lam_ctx *ctx) {
  char path[1024];
  const char *dir = getenv("LAMINA_TEST_DATA");
  snprintf(path, sizeof path, "%s/metrics_golden.safetensors", dir && *dir ? dir : "tests/data");
  lam_ptree *t = NULL;
  cr_assert_eq(lam_safetensors_load(ctx, path, NULL, &t, NULL), LAM_OK, "%s", lam_last_error());
  return t;
}

static double want(lam_ptree *g, const char *name) {
  double v = 0;
  lam_tensor *t = lam_ptree_get(g, name);
  cr_assert(t, "%s missing", name);
  lam_tensor *s = lam_tensor_reshape(t, 0, NULL);
  cr_assert_eq(lam_tensor_item(s, &v), LAM_OK);
  lam_tensor_free(s);
  return v;
}

#define TOL 1e-6

static void close_to(double got, double w, const char *what) {
  cr_assert(fabs(got - w) <= TOL, "%s: got %.9f, want %.9f", what, got, w);
}

Test(metrics, one_shot_match_sklearn) {
  lam_ctx *ctx = tu_ctx();
  lam_ptree *g = golden(ctx);
  tu_mark mark = tu_mark_now(ctx);
  lam_tensor *scores = lam_ptree_get(g, "scores"), *labels = lam_ptree_get(g, "labels"), *pred = lam_ptree_get(g, "pred");
  double v = 0;
  cr_assert_eq(lam_accuracy(scores, labels, &v), LAM_OK);
  close_to(v, want(g, "accuracy"), "lam_accuracy");
  cr_assert_eq(lam_metric_compute(LAM_METRIC_ACCURACY, NULL, pred, labels, &v), LAM_OK);
  close_to(v, want(g, "accuracy"), "accuracy of class indices");
  const char *tk[] = {"top1", "top2", "top3"};
  for (int k = 1; k <= 3; k++) {
    cr_assert_eq(lam_top_k_accuracy(scores, labels, k, &v), LAM_OK);
    close_to(v, want(g, tk[k - 1]), tk[k - 1]);
  }
  cr_assert_eq(lam_binary_accuracy(lam_ptree_get(g, "probs"), lam_ptree_get(g, "binary_target"), &v), LAM_OK);
  close_to(v, want(g, "binary_accuracy"), "binary accuracy");
  const char *avg_name[] = {"macro", "micro", "weighted"};
  for (int a = 0; a < 3; a++) {
    double p = 0, r = 0, f = 0;
    char n1[64], n2[64], n3[64];
    snprintf(n1, sizeof n1, "precision_%s", avg_name[a]);
    snprintf(n2, sizeof n2, "recall_%s", avg_name[a]);
    snprintf(n3, sizeof n3, "f1_%s", avg_name[a]);
    lam_metric_opts o = {.average = (lam_average)a};
    cr_assert_eq(lam_precision_recall_f1(scores, labels, &o, &p, &r, &f), LAM_OK, "%s", lam_last_error());
    close_to(p, want(g, n1), n1);
    close_to(r, want(g, n2), n2);
    close_to(f, want(g, n3), n3);
    /* from class indices with an explicit class count */
    o.num_classes = 6;
    cr_assert_eq(lam_precision_recall_f1(pred, labels, &o, NULL, NULL, &f), LAM_OK);
    close_to(f, want(g, n3), n3);
  }
  lam_tensor *cm = NULL;
  cr_assert_eq(lam_confusion_matrix(scores, labels, 0, &cm), LAM_OK);
  cr_assert(lam_tensor_dtype(cm) == LAM_I32 && lam_tensor_dim(cm, 0) == 6 && lam_tensor_dim(cm, 1) == 6);
  int32_t got[36], ref[36];
  cr_assert_eq(lam_tensor_to_host(cm, got, sizeof got), LAM_OK);
  cr_assert_eq(lam_tensor_to_host(lam_ptree_get(g, "confusion"), ref, sizeof ref), LAM_OK);
  cr_assert_arr_eq(got, ref, sizeof got, "confusion matrix");
  lam_tensor_free(cm);
  lam_tensor *yp = lam_ptree_get(g, "reg_pred"), *yt = lam_ptree_get(g, "reg_target");
  cr_assert_eq(lam_mean_squared_error(yp, yt, &v), LAM_OK);
  close_to(v, want(g, "mse"), "mse");
  cr_assert_eq(lam_mean_absolute_error(yp, yt, &v), LAM_OK);
  close_to(v, want(g, "mae"), "mae");
  tu_assert_no_leak(ctx, mark);
  lam_ptree_free(g);
  lam_ctx_free(ctx);
}

/* Every kind as a tracker over batches of 50 rows gives the one-shot value. */
Test(metrics, trackers_over_batches) {
  lam_ctx *ctx = tu_ctx();
  lam_ptree *g = golden(ctx);
  tu_mark mark = tu_mark_now(ctx);
  lam_tensor *scores = lam_ptree_get(g, "scores"), *labels = lam_ptree_get(g, "labels");
  struct {
    lam_metric_kind kind;
    lam_metric_opts o;
    const char *ref;
    int source; /* 0 classification, 1 binary, 2 regression */
  } cases[] = {
      {LAM_METRIC_ACCURACY, {0}, "accuracy", 0},
      {LAM_METRIC_TOP_K_ACCURACY, {.k = 2}, "top2", 0},
      {LAM_METRIC_PRECISION, {0}, "precision_macro", 0},
      {LAM_METRIC_RECALL, {.average = LAM_AVERAGE_WEIGHTED}, "recall_weighted", 0},
      {LAM_METRIC_F1, {.average = LAM_AVERAGE_MICRO}, "f1_micro", 0},
      {LAM_METRIC_F1, {.average = LAM_AVERAGE_WEIGHTED, .num_classes = 6}, "f1_weighted", 0},
      {LAM_METRIC_CONFUSION, {0}, "accuracy", 0},
      {LAM_METRIC_BINARY_ACCURACY, {0}, "binary_accuracy", 1},
      {LAM_METRIC_MSE, {0}, "mse", 2},
      {LAM_METRIC_MAE, {0}, "mae", 2},
  };
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    lam_metric *m = lam_metric_create(cases[c].kind, &cases[c].o);
    cr_assert(m, "%s", lam_last_error());
    lam_tensor *p = cases[c].source == 0 ? scores : cases[c].source == 1 ? lam_ptree_get(g, "probs")
                                                                       : lam_ptree_get(g, "reg_pred");
    lam_tensor *t = cases[c].source == 0 ? labels : cases[c].source == 1 ? lam_ptree_get(g, "binary_target")
                                                                       : lam_ptree_get(g, "reg_target");
    double v = 0;
    cr_assert_eq(lam_metric_value(m, &v), LAM_OK);
    cr_assert(isnan(v), "NAN before any update");
    for (int rep = 0; rep < 2; rep++) { /* the second pass after a reset */
      int64_t n = lam_tensor_dim(p, 0);
      for (int64_t lo = 0; lo < n; lo += 50) {
        lam_tensor *pb = lam_tensor_slice0(p, lo, lo + 50 < n ? lo + 50 : n);
        lam_tensor *tb = lam_tensor_slice0(t, lo, lo + 50 < n ? lo + 50 : n);
        cr_assert_eq(lam_metric_update(m, pb, tb), LAM_OK, "%s: %s", lam_metric_name(m), lam_last_error());
        lam_tensor_free(pb);
        lam_tensor_free(tb);
      }
      cr_assert_eq(lam_metric_count(m), lam_tensor_numel(cases[c].source == 0 ? labels : t));
      cr_assert_eq(lam_metric_value(m, &v), LAM_OK);
      close_to(v, want(g, cases[c].ref), lam_metric_name(m));
      lam_metric_reset(m);
      cr_assert_eq(lam_metric_count(m), 0);
    }
    cr_assert_eq(lam_metric_kind_of(m), cases[c].kind);
    lam_metric_free(m);
  }
  /* the tracker's confusion matrix */
  lam_metric *m = lam_metric_create(LAM_METRIC_F1, NULL);
  cr_assert_eq(lam_metric_update(m, scores, labels), LAM_OK);
  lam_tensor *cm = NULL;
  cr_assert_eq(lam_metric_confusion(m, &cm), LAM_OK);
  int32_t got[36], ref[36];
  cr_assert_eq(lam_tensor_to_host(cm, got, sizeof got), LAM_OK);
  cr_assert_eq(lam_tensor_to_host(lam_ptree_get(g, "confusion"), ref, sizeof ref), LAM_OK);
  cr_assert_arr_eq(got, ref, sizeof got);
  lam_tensor_free(cm);
  lam_metric_free(m);
  tu_assert_no_leak(ctx, mark);
  lam_ptree_free(g);
  lam_ctx_free(ctx);
}

Test(metrics, options_and_bad_input) {
  lam_ctx *ctx = tu_ctx();
  lam_ptree *g = golden(ctx);
  tu_mark mark = tu_mark_now(ctx);
  lam_tensor *scores = lam_ptree_get(g, "scores"), *labels = lam_ptree_get(g, "labels"), *pred = lam_ptree_get(g, "pred");
  lam_metric_opts d = lam_metric_defaults();
  cr_assert(d.k == 5 && d.threshold == 0.5 && d.average == LAM_AVERAGE_MACRO && d.num_classes == 0);
  /* NULL, {0} and the defaults agree */
  double a = 0, b = 0, c = 0;
  cr_assert_eq(lam_metric_compute(LAM_METRIC_TOP_K_ACCURACY, NULL, scores, labels, &a), LAM_OK);
  cr_assert_eq(lam_metric_compute(LAM_METRIC_TOP_K_ACCURACY, &(lam_metric_opts){0}, scores, labels, &b), LAM_OK);
  cr_assert_eq(lam_metric_compute(LAM_METRIC_TOP_K_ACCURACY, &d, scores, labels, &c), LAM_OK);
  cr_assert(a == b && b == c);
  /* LAM_ZERO is a real zero threshold: every probability counts as 1 */
  lam_tensor *probs = lam_ptree_get(g, "probs"), *bt = lam_ptree_get(g, "binary_target");
  cr_assert_eq(lam_metric_compute(LAM_METRIC_BINARY_ACCURACY, &(lam_metric_opts){.threshold = LAM_ZERO}, probs, bt, &a),
               LAM_OK);
  int32_t t[406];
  cr_assert_eq(lam_tensor_to_host(bt, t, sizeof t), LAM_OK);
  int ones = 0;
  for (int i = 0; i < 406; i++) ones += t[i];
  close_to(a, ones / 406.0, "threshold 0");
  lam_metric *m = NULL;
  tu_assert_fails(lam_metric_create(LAM_METRIC_F1, &(lam_metric_opts){.num_classes = 1}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_metric_create: num_classes 1");
  tu_assert_fails(lam_metric_create((lam_metric_kind)42, NULL), LAM_ERR_INVALID_ARGUMENT, "unknown metric kind");
  tu_assert_status(lam_top_k_accuracy(scores, labels, 0, &a), LAM_ERR_INVALID_ARGUMENT, "lam_top_k_accuracy: k 0");
  tu_assert_status(lam_metric_compute(LAM_METRIC_ACCURACY, NULL, scores, scores, &a), LAM_ERR_DTYPE,
                   "lam_metric_compute: accuracy needs i32 labels");
  lam_tensor *short_labels = lam_tensor_slice0(labels, 0, 10);
  tu_assert_status(lam_metric_compute(LAM_METRIC_ACCURACY, NULL, scores, short_labels, &a), LAM_ERR_SHAPE,
                   "lam_metric_compute: pred [203,6] and target [10]");
  tu_assert_status(lam_confusion_matrix(pred, labels, 0, &(lam_tensor *){NULL}), LAM_ERR_SHAPE,
                   "lam_confusion_matrix: pred [203] and target [203]: num_classes is 0");
  tu_assert_status(lam_mean_squared_error(scores, probs, &a), LAM_ERR_SHAPE, "lam_mean_squared_error");
  tu_assert_status(lam_metric_update(NULL, scores, labels), LAM_ERR_NULL, "lam_metric_update: metric is NULL");
  m = lam_metric_create(LAM_METRIC_MSE, NULL);
  tu_assert_status(lam_metric_confusion(m, &(lam_tensor *){NULL}), LAM_ERR_INVALID_ARGUMENT, "keeps no confusion");
  lam_metric_free(m);
  lam_metric_free(NULL);
  lam_tensor_free(short_labels);
  tu_assert_no_leak(ctx, mark);
  lam_ptree_free(g);
  lam_ctx_free(ctx);
}
