/* train/fit.c: the training step, fit loop, prediction and accuracy.
 * A step is value_and_grad over the model's params, then the optimizer's
 * device-side update; the only host syncs are the loss/metric reads that the
 * caller asks for. lam_fit runs lam_fit_loader over a loader of its
 * tensors' rows (train/data.c: a Philox permutation per epoch, batches
 * uploaded ahead); the loop accumulates loss and accuracy on the device,
 * groups batches for gradient accumulation, keeps a copy of the best
 * params for restore_best and prints the progress line. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"
#include "runtime/platform_internal.h"
#include "lamina/data.h"
#include "lamina/elementwise.h"
#include "lamina/layer.h"
#include "lamina/loss.h"
#include "lamina/metrics.h"
#include "lamina/optim.h"
#include "lamina/ptree.h"
#include "lamina/reduce.h"
#include "lamina/rng.h"
#include "lamina/shape.h"
#include "lamina/train.h"

/* A failed loss is reported under the objective's name (the loss's own
 * message follows). */
static lam_tensor *lam__objective_result(lam_tensor *loss, const char *fn) {
  if (loss) return loss;
  char why[2048];
  snprintf(why, sizeof why, "%s", lam_last_error());
  lam__fail(lam_last_status() != LAM_OK ? lam_last_status() : LAM_ERR_INVALID_ARGUMENT, "%s: %s", fn, why);
  return NULL;
}

lam_tensor *lam_objective_cross_entropy(lam_tensor *pred, lam_tensor *target, void *user) {
  (void)user;
  return lam__objective_result(lam_cross_entropy(pred, target, NULL), "lam_objective_cross_entropy");
}

lam_tensor *lam_objective_mse(lam_tensor *pred, lam_tensor *target, void *user) {
  (void)user;
  return lam__objective_result(lam_mse_loss(pred, target, NULL), "lam_objective_mse");
}

typedef struct {
  lam_layer *model;
  lam_ptree *state;
  lam_tensor *x, *y;
  lam_objective_fn objective;
  void *objective_user;
  lam_apply_opts apply;
  lam_tensor *pred; /* kept for metrics (stop-gradient copy not needed: tape is gone) */
} lam__step;

static lam_tensor *lam__step_loss(lam_ptree *params, void *user) {
  lam__step *s = user;
  lam_tensor *pred = NULL;
  if (lam_layer_apply_with(s->model, params, s->state, s->x, &s->apply, &pred) != LAM_OK) return NULL;
  lam_tensor *loss = s->objective(pred, s->y, s->objective_user);
  s->pred = pred;
  return loss;
}

/* clip_norm must be >= 0 and finite (0: no clipping). */
static lam_status lam__check_clip(double clip_norm, const char *fn) {
  if (clip_norm >= 0 && isfinite(clip_norm)) return LAM_OK;
  return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: clip_norm %g must be >= 0 and finite (0: no clipping)",
                   fn, clip_norm);
}

/* The dropout key of a step with a data-parallel hook: key_fold folded in. */
static const lam_rng_key *lam__hook_key(const lam_grad_hook *h, const lam_rng_key *rng, lam_rng_key *tmp) {
  if (!h || !rng || h->key_fold == 0) return rng;
  *tmp = lam_rng_fold_in(*rng, h->key_fold);
  return tmp;
}

/* With a hook h, x and y are this process's shard of a batch of `total`
 * rows and the gradients go through h->reduce before clipping and the
 * update (also after a failure, which it reports to the peers: *told). */
static lam_status lam__step_run(lam_layer *model, lam_vars *vars, lam_optimizer *opt,
                                lam_objective_fn objective, void *objective_user, lam_tensor *x,
                                lam_tensor *y, const lam_rng_key *rng, double clip_norm,
                                const lam_grad_hook *h, int64_t total, bool *told,
                                lam_tensor **loss_out, lam_tensor **pred_out) {
  lam_rng_key folded;
  lam__step s = {model, lam_vars_state(vars), x, y, objective, objective_user,
                 {true, lam__hook_key(h, rng, &folded), NULL, NULL}, NULL};
  lam_tensor *loss = NULL;
  lam_ptree *grads = NULL;
  lam_status st = lam_value_and_grad(lam_tensor_ctx(x), lam__step_loss, &s, lam_vars_params(vars), &loss, &grads);
  if (h) {
    st = h->reduce(h->user, st, st == LAM_OK ? grads : NULL, st == LAM_OK ? loss : NULL, x->shape[0], total);
    if (st != LAM_OK && told) *told = true;
  }
  if (st == LAM_OK && clip_norm > 0) st = lam_grad_clip_norm(grads, clip_norm, NULL);
  if (st == LAM_OK) st = lam_optimizer_step(opt, lam_vars_params(vars), grads);
  lam_ptree_free(grads);
  if (st != LAM_OK) {
    lam_tensor_free(loss);
    lam_tensor_free(s.pred);
    return st;
  }
  *loss_out = loss;
  if (pred_out) *pred_out = s.pred;
  else lam_tensor_free(s.pred);
  return LAM_OK;
}

static lam_status lam__check_hook(const lam_grad_hook *h, const char *fn) {
  if (!h || (h->shard && h->reduce)) return LAM_OK;
  return lam__fail(LAM_ERR_NULL, "%s: grad_hook needs shard and reduce (%s is NULL)", fn,
                   !h->shard ? "shard" : "reduce");
}

/* This process's rows of a batch under a data-parallel hook (new views). */
static lam_status lam__shard(const lam_grad_hook *h, lam_tensor *x, lam_tensor *y, lam_tensor **xs, lam_tensor **ys,
                             const char *fn) {
  if (x->ndim < 1 || y->ndim < 1 || x->shape[0] != y->shape[0]) {
    char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR];
    return lam__fail(LAM_ERR_SHAPE, "%s: x %s and y %s need the same number of rows", fn,
                     lam__shape_str(x->ndim, x->shape, b1), lam__shape_str(y->ndim, y->shape, b2));
  }
  int64_t n = x->shape[0], lo = 0, hi = 0;
  h->shard(h->user, n, &lo, &hi);
  if (lo < 0 || hi > n || lo >= hi)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: the data-parallel shard [%lld, %lld) of a batch of %lld rows is "
                     "empty or out of range (a batch needs at least one row per process)", fn, (long long)lo,
                     (long long)hi, (long long)n);
  *xs = lam_tensor_slice0(x, lo, hi);
  *ys = *xs ? lam_tensor_slice0(y, lo, hi) : NULL;
  if (*ys) return LAM_OK;
  lam_tensor_free(*xs);
  *xs = NULL;
  return lam_last_status();
}

lam_train_step_opts lam_train_step_defaults(void) {
  return (lam_train_step_opts){.objective = lam_objective_cross_entropy};
}

lam_status lam_train_step(lam_layer *model, lam_vars *vars, lam_optimizer *opt, lam_tensor *x,
                          lam_tensor *y, const lam_train_step_opts *opts, double *loss_out) {
  const char *fn = "lam_train_step";
  lam_train_step_opts o = opts ? *opts : (lam_train_step_opts){0};
  if (!o.objective) o.objective = lam_objective_cross_entropy;
  if (!model || !vars || !opt || !x || !y)
    return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn,
                     !model ? "model" : !vars ? "vars" : !opt ? "opt" : !x ? "x" : "y");
  lam_status st = lam__check_clip(o.clip_norm, fn);
  if (st == LAM_OK) st = lam__check_hook(o.grad_hook, fn);
  if (st != LAM_OK) return st;
  lam_tensor *loss = NULL, *xs = NULL, *ys = NULL;
  const lam_grad_hook *h = o.grad_hook;
  if (h) {
    st = lam__shard(h, x, y, &xs, &ys, fn);
    if (st != LAM_OK) return h->reduce(h->user, st, NULL, NULL, 0, x->ndim > 0 ? x->shape[0] : 0);
  }
  st = lam__step_run(model, vars, opt, o.objective, o.objective_user, h ? xs : x, h ? ys : y, o.rng, o.clip_norm,
                     h, x->shape[0], NULL, &loss, NULL);
  if (st == LAM_OK && loss_out) st = lam_tensor_item(loss, loss_out);
  lam_tensor_free(loss);
  lam_tensor_free(xs);
  lam_tensor_free(ys);
  return st;
}

/* Number of correct predictions as a device scalar (f32), for summing. */
static lam_tensor *lam__correct(lam_tensor *logits, lam_tensor *labels) {
  lam_tensor *am = lam_argmax(logits, -1, 0);
  lam_tensor *eq = lam_eq(am, labels);
  lam_tensor *f = lam_tensor_cast(eq, LAM_F32);
  lam_tensor *n = lam_sum(f, 0, NULL, 0);
  lam_tensor_free(am);
  lam_tensor_free(eq);
  lam_tensor_free(f);
  return n;
}

lam_status lam_accuracy(lam_tensor *logits, lam_tensor *labels, double *accuracy) {
  const char *fn = "lam_accuracy";
  if (!logits || !labels || !accuracy)
    return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, !logits ? "logits" : !labels ? "labels" : "accuracy");
  if (labels->dtype != LAM_I32)
    return lam__fail(LAM_ERR_DTYPE, "%s: labels are %s, need i32", fn, lam_dtype_name(labels->dtype));
  if (logits->ndim != labels->ndim + 1) {
    char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR];
    return lam__fail(LAM_ERR_SHAPE, "%s: logits %s need one more axis than labels %s", fn,
                     lam__shape_str(logits->ndim, logits->shape, b1),
                     lam__shape_str(labels->ndim, labels->shape, b2));
  }
  lam_tensor *n = lam__correct(logits, labels);
  if (!n) return lam_last_status();
  double c = 0;
  lam_status st = lam_tensor_item(n, &c);
  lam_tensor_free(n);
  if (st == LAM_OK) *accuracy = c / (double)labels->numel;
  return st;
}

lam_status lam_predict(lam_layer *model, lam_vars *vars, lam_tensor *x, int64_t batch_size,
                       lam_tensor **out) {
  const char *fn = "lam_predict";
  if (!model || !vars || !x || !out)
    return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, !model ? "model" : !vars ? "vars" : !x ? "x" : "out");
  *out = NULL;
  if (x->ndim < 1) return lam__fail(LAM_ERR_SHAPE, "%s: x needs a leading sample axis", fn);
  int64_t n = x->shape[0];
  if (batch_size <= 0 || batch_size >= n) return lam_layer_apply(model, vars, x, NULL, out);
  int nb = (int)((n + batch_size - 1) / batch_size);
  lam_tensor **parts = calloc((size_t)nb, sizeof *parts);
  if (!parts) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
  lam_status st = LAM_OK;
  bool was = lam_grad_set_enabled(x->ctx, false);
  for (int b = 0; b < nb && st == LAM_OK; b++) {
    int64_t lo = (int64_t)b * batch_size, hi = lo + batch_size < n ? lo + batch_size : n;
    lam_tensor *xb = lam_tensor_slice0(x, lo, hi);
    st = xb ? lam_layer_apply(model, vars, xb, NULL, &parts[b]) : lam_last_status();
    lam_tensor_free(xb);
  }
  lam_grad_set_enabled(x->ctx, was);
  if (st == LAM_OK) {
    *out = lam_concat(parts, nb, 0);
    if (!*out) st = lam_last_status();
  }
  for (int b = 0; b < nb; b++) lam_tensor_free(parts[b]);
  free(parts);
  return st;
}

lam_status lam_predict_async(lam_layer *model, lam_vars *vars, lam_tensor *x, int64_t batch_size,
                             void *dst, size_t dst_bytes, lam_read_callback callback, void *user,
                             lam_read_handle **out) {
  const char *fn = "lam_predict_async";
  if (!out) return lam__fail(LAM_ERR_NULL, "%s: out is NULL", fn);
  *out = NULL;
  if (!model || !vars || !x || !dst)
    return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn,
                     !model ? "model" : !vars ? "vars" : !x ? "x" : "dst");
  lam_tensor *pred = NULL;
  lam_status st = lam_predict(model, vars, x, batch_size, &pred);
  if (st != LAM_OK) return st;
  if (lam_tensor_nbytes(pred) != dst_bytes) {
    char buf[LAM__SHAPE_STR];
    st = lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: dst holds %zu bytes; the output %s x %s has %zu",
                   fn, dst_bytes, lam__shape_str(pred->ndim, pred->shape, buf),
                   lam_dtype_name(pred->dtype), lam_tensor_nbytes(pred));
  } else {
    st = lam_tensor_read_async(pred, dst, dst_bytes, callback, user, out);
  }
  lam_tensor_free(pred); /* the handle keeps the buffer */
  return st;
}

/* ---- the fit loop ------------------------------------------------------------ */

/* The options rule: zero fields take the defaults. */
static lam_fit_opts lam__fit_resolve(lam_fit_opts o) {
  if (o.epochs == 0) o.epochs = 10;
  o.batch_size = lam__opt_i64(o.batch_size, 32);
  if (!o.objective) o.objective = lam_objective_cross_entropy;
  o.clip_norm = lam__opt_f64(o.clip_norm, 0.0);
  o.min_delta = lam__opt_f64(o.min_delta, 0.0);
  if (o.accumulate == 0) o.accumulate = 1;
  return o;
}

lam_fit_opts lam_fit_defaults(void) { return lam__fit_resolve((lam_fit_opts){0}); }

static double lam__seconds(void) { return lam__now_seconds(); }

/* Mean loss and accuracy of the model on (x, y) in evaluation mode. */
static lam_status lam__evaluate(lam_layer *model, lam_vars *vars, const lam_fit_opts *o, lam_tensor *x,
                                lam_tensor *y, double *loss, double *acc) {
  lam_tensor *pred = NULL;
  lam_status st = lam_predict(model, vars, x, o->batch_size * 4, &pred);
  if (st != LAM_OK) return st;
  lam_tensor *l = o->objective(pred, y, o->objective_user);
  st = l ? lam_tensor_item(l, loss) : lam_last_status();
  lam_tensor_free(l);
  if (st == LAM_OK && !o->no_accuracy) st = lam_accuracy(pred, y, acc);
  for (int i = 0; i < o->n_val_metrics && st == LAM_OK; i++) st = lam_metric_update(o->val_metrics[i], pred, y);
  lam_tensor_free(pred);
  return st;
}

/* *sum += x (device tensors; x borrowed). */
static lam_status lam__acc(lam_tensor **sum, lam_tensor *x) {
  if (!x) return lam_last_status();
  lam_tensor *s = *sum ? lam_add(*sum, x) : lam_tensor_retain(x);
  if (!s) return lam_last_status();
  lam_tensor_free(*sum);
  *sum = s;
  return LAM_OK;
}

static lam_status lam__eval_loader(lam_layer *model, lam_vars *vars, lam_loader *loader, const lam_fit_opts *o,
                                   double *loss, double *acc, const char *fn) {
  if (lam_dataset_field_count(lam_loader_dataset(loader)) < 2)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: the validation loader's dataset needs 2 fields (x, y), has %d", fn,
                     lam_dataset_field_count(lam_loader_dataset(loader)));
  lam_status st = lam_loader_reset(loader, 0);
  lam_tensor *loss_sum = NULL, *correct_sum = NULL;
  int64_t rows = 0;
  lam_ctx *ctx = NULL;
  bool was = false;
  while (st == LAM_OK) {
    lam_batch b;
    st = lam_loader_next(loader, &b);
    if (st != LAM_OK || b.size == 0) break;
    if (!ctx) {
      ctx = lam_tensor_ctx(b.fields[0]);
      was = lam_grad_set_enabled(ctx, false);
    }
    lam_tensor *pred = NULL;
    st = lam_layer_apply(model, vars, b.fields[0], NULL, &pred);
    if (st != LAM_OK) break;
    lam_tensor *l = o->objective(pred, b.fields[1], o->objective_user);
    lam_tensor *lw = l ? lam_mul_scalar(l, (double)b.size) : NULL;
    st = lam__acc(&loss_sum, lw);
    if (st == LAM_OK && !o->no_accuracy) {
      lam_tensor *c = lam__correct(pred, b.fields[1]);
      st = lam__acc(&correct_sum, c);
      lam_tensor_free(c);
    }
    for (int i = 0; i < o->n_val_metrics && st == LAM_OK; i++) st = lam_metric_update(o->val_metrics[i], pred, b.fields[1]);
    rows += b.size;
    lam_tensor_free(l);
    lam_tensor_free(lw);
    lam_tensor_free(pred);
  }
  if (ctx) lam_grad_set_enabled(ctx, was);
  double v = 0;
  if (st == LAM_OK && loss_sum && (st = lam_tensor_item(loss_sum, &v)) == LAM_OK) *loss = v / (double)rows;
  if (st == LAM_OK && correct_sum && acc && (st = lam_tensor_item(correct_sum, &v)) == LAM_OK) *acc = v / (double)rows;
  lam_tensor_free(loss_sum);
  lam_tensor_free(correct_sum);
  return st;
}

lam_status lam_evaluate_loader(lam_layer *model, lam_vars *vars, lam_loader *loader, const lam_fit_opts *opts,
                               double *loss, double *acc) {
  const char *fn = "lam_evaluate_loader";
  if (!model || !vars || !loader || !loss)
    return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, !model ? "model" : !vars ? "vars" : !loader ? "loader" : "loss");
  lam_fit_opts o = lam__fit_resolve(opts ? *opts : (lam_fit_opts){0});
  *loss = NAN;
  if (acc) *acc = NAN;
  return lam__eval_loader(model, vars, loader, &o, loss, acc, fn);
}

/* ---- progress --------------------------------------------------------------- */

typedef struct {
  FILE *f;
  bool on, tty;
  int epochs;
  double t0, last;
  const lam_fit_opts *o;
} lam__progress;

/* Appends to a line, never past its end. */
typedef struct {
  char buf[640];
  size_t k;
} lam__line;

static void lam__app(lam__line *l, const char *fmt, ...) LAM__PRINTF(2, 3);
static void lam__app(lam__line *l, const char *fmt, ...) {
  if (l->k >= sizeof l->buf - 1) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(l->buf + l->k, sizeof l->buf - l->k, fmt, ap);
  va_end(ap);
  if (n > 0) l->k += (size_t)n;
  if (l->k > sizeof l->buf - 1) l->k = sizeof l->buf - 1;
}

/* "  name value" for each tracker (final lines only: reading them syncs). */
static void lam__metrics_str(lam__line *l, const char *prefix, lam_metric *const *m, int n) {
  for (int i = 0; i < n; i++) {
    double v = NAN;
    if (lam_metric_value(m[i], &v) == LAM_OK) lam__app(l, "  %s%s %.4f", prefix, lam_metric_name(m[i]), v);
  }
}

static void lam__progress_line(lam__progress *p, int epoch, int64_t i, int64_t n, int64_t rows, double loss,
                               double acc, const lam_epoch_report *r) {
  double el = lam__seconds() - p->t0;
  lam__line l = {{0}, 0};
  lam__app(&l, "epoch %d/%d  %lld/%lld  loss %.4f", epoch, p->epochs, (long long)i, (long long)n, loss);
  if (!isnan(acc)) lam__app(&l, "  acc %.4f", acc);
  if (r) lam__metrics_str(&l, "", p->o->metrics, p->o->n_metrics);
  if (r && !isnan(r->val_loss)) lam__app(&l, "  val_loss %.4f", r->val_loss);
  if (r && !isnan(r->val_accuracy)) lam__app(&l, "  val_acc %.4f", r->val_accuracy);
  if (r) lam__metrics_str(&l, "val_", p->o->val_metrics, p->o->n_val_metrics);
  lam__app(&l, "  %.0f samples/s", el > 0 ? (double)rows / el : 0.0);
  if (r) lam__app(&l, "  %.2fs%s", el, r->stop ? "  (early stop)" : "");
  else lam__app(&l, "  ETA %.1fs", i > 0 ? el / (double)i * (double)(n - i) : 0.0);
  if (p->tty) fprintf(p->f, "\r\033[K%s%s", l.buf, r ? "\n" : "");
  else fprintf(p->f, "%s\n", l.buf);
  fflush(p->f);
}

/* ---- the loop ---------------------------------------------------------------- */

typedef struct {
  lam_ptree *acc;
  double w;
} lam__accum;

static lam_tensor *lam__accum_leaf(const char *path, lam_tensor *g, void *user) {
  lam__accum *a = user;
  lam_tensor *sg = lam_mul_scalar(g, a->w);
  lam_tensor *prev = a->acc ? lam_ptree_get(a->acc, path) : NULL;
  if (!prev || !sg) return sg;
  lam_tensor *r = lam_add(prev, sg);
  lam_tensor_free(sg);
  return r;
}

static lam_tensor *lam__copy_leaf(const char *path, lam_tensor *t, void *user) {
  (void)path;
  (void)user;
  return lam_tensor_copy(t);
}

/* Writes the snapshot's leaves into the params' own buffers (identity kept). */
static lam_status lam__restore_leaf(const char *path, lam_tensor *dst, void *user) {
  lam_tensor *src = lam_ptree_get(user, path);
  if (!src || src->numel != dst->numel || src->dtype != dst->dtype) return LAM_OK;
  size_t es = lam_dtype_size(dst->dtype);
  cl_int err = clEnqueueCopyBuffer(dst->ctx->queue, src->buf->mem, dst->buf->mem, src->offset * es, dst->offset * es,
                                   (size_t)dst->numel * es, 0, NULL, NULL);
  return err == CL_SUCCESS ? LAM_OK : lam__cl_fail(err, "lam_fit", "clEnqueueCopyBuffer");
}

static lam_status lam__fit_check(const lam_fit_opts *o, const char *fn) {
  if (o->epochs < 1)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: epochs %d must be >= 1 (0: 10)", fn, o->epochs);
  if (o->patience < 0 || o->accumulate < 1)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: patience %d must be >= 0 and accumulate %d >= 1 (0: 1)", fn,
                     o->patience, o->accumulate);
  if (!(o->min_delta >= 0 && isfinite(o->min_delta)))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: min_delta %g must be >= 0 and finite", fn, o->min_delta);
  if ((int)o->monitor < 0 || o->monitor > LAM_MONITOR_TRAIN_LOSS)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: unknown monitor %d", fn, (int)o->monitor);
  bool has_val = o->val_loader || (o->val_x && o->val_y);
  if (!has_val && (o->monitor == LAM_MONITOR_VAL_LOSS || o->monitor == LAM_MONITOR_VAL_ACCURACY))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: monitor %s without validation data", fn,
                     o->monitor == LAM_MONITOR_VAL_LOSS ? "val_loss" : "val_accuracy");
  if (o->monitor == LAM_MONITOR_VAL_ACCURACY && o->no_accuracy)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: monitor val_accuracy with no_accuracy", fn);
  if (o->n_metrics < 0 || o->n_val_metrics < 0 || (o->n_metrics && !o->metrics) ||
      (o->n_val_metrics && !o->val_metrics))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: n_metrics %d / n_val_metrics %d need arrays of trackers", fn,
                     o->n_metrics, o->n_val_metrics);
  for (int i = 0; i < o->n_metrics; i++)
    if (!o->metrics[i]) return lam__fail(LAM_ERR_NULL, "%s: metrics[%d] is NULL", fn, i);
  for (int i = 0; i < o->n_val_metrics; i++)
    if (!o->val_metrics[i]) return lam__fail(LAM_ERR_NULL, "%s: val_metrics[%d] is NULL", fn, i);
  if (o->schedule) {
    lam_status st = lam_schedule_check(o->schedule);
    if (st != LAM_OK) return st;
  }
  lam_status st = lam__check_hook(o->grad_hook, fn);
  return st != LAM_OK ? st : lam__check_clip(o->clip_norm, fn);
}

/* One optimizer step from the accumulated, row-weighted gradients (with a
 * hook: this process's rows of `total`, reduced before the step). */
static lam_status lam__accum_step(lam_optimizer *opt, lam_vars *vars, lam_ptree **acc, int64_t rows, double clip,
                                  const lam_grad_hook *h, int64_t total, bool *told) {
  lam__accum a = {NULL, 1.0 / (double)rows};
  lam_ptree *g = lam_ptree_map(*acc, lam__accum_leaf, &a);
  lam_ptree_free(*acc);
  *acc = NULL;
  lam_status st = g ? LAM_OK : lam_last_status();
  if (h) {
    st = h->reduce(h->user, st, g, NULL, rows, total);
    if (st != LAM_OK) *told = true;
  }
  if (!g) return st;
  if (st == LAM_OK && clip > 0) st = lam_grad_clip_norm(g, clip, NULL);
  if (st == LAM_OK) st = lam_optimizer_step(opt, lam_vars_params(vars), g);
  lam_ptree_free(g);
  return st;
}

static lam_status lam__fit_run(lam_layer *model, lam_vars *vars, lam_optimizer *opt, lam_loader *train,
                               const lam_fit_opts *op, const char *fn) {
  const lam_fit_opts o = *op;
  lam__progress prog = {o.progress ? o.progress : stdout, !o.no_progress, false, o.epochs, 0, 0, &o};
  if (prog.on) prog.tty = lam__is_tty(prog.f);
  bool has_val = o.val_loader || (o.val_x && o.val_y);
  lam_monitor mon = o.monitor == LAM_MONITOR_AUTO ? (has_val ? LAM_MONITOR_VAL_LOSS : LAM_MONITOR_TRAIN_LOSS) : o.monitor;
  bool higher = mon == LAM_MONITOR_VAL_ACCURACY;
  double best = higher ? -INFINITY : INFINITY;
  int best_epoch = 0, wait = 0;
  lam_ptree *best_params = NULL, *best_state = NULL;
  int64_t steps = 0;
  const lam_grad_hook *h = o.grad_hook;
  bool told = false, more = true; /* a failure reached the peers; steps were still to come */
  double lr = lam_optimizer_lr(opt);
  lam_status st = LAM_OK;
  for (int epoch = 1; epoch <= o.epochs && st == LAM_OK; epoch++) {
    prog.t0 = prog.last = lam__seconds();
    if (o.schedule && o.schedule_per_epoch) st = lam_optimizer_set_lr(opt, lam_schedule_lr(o.schedule, epoch - 1));
    if (st == LAM_OK) st = lam_loader_reset(train, epoch);
    for (int i = 0; i < o.n_metrics; i++) lam_metric_reset(o.metrics[i]);
    for (int i = 0; i < o.n_val_metrics; i++) lam_metric_reset(o.val_metrics[i]);
    lam_rng_key ekey = lam_rng_fold_in(o.key, (uint32_t)epoch);
    lam_tensor *loss_sum = NULL, *correct_sum = NULL;
    lam_ptree *acc = NULL;
    int64_t batches = 0, rows = 0, acc_rows = 0, acc_total = 0, nb = lam_loader_batch_count(train);
    int in_group = 0;
    while (st == LAM_OK) {
      lam_batch b;
      st = lam_loader_next(train, &b);
      if (st != LAM_OK || b.size == 0) break;
      lam_tensor *xb = b.fields[0], *yb = b.fields[1], *xs = NULL, *ys = NULL;
      int64_t total = b.size;
      if (h) {
        st = lam__shard(h, xb, yb, &xs, &ys, fn);
        if (st != LAM_OK) {
          st = h->reduce(h->user, st, NULL, NULL, 0, total);
          told = true;
          break;
        }
        xb = xs;
        yb = ys;
        b.size = xb->shape[0];
      }
      lam_rng_key bkey = lam_rng_fold_in(ekey, (uint32_t)batches + 1), hkey;
      if (o.schedule && !o.schedule_per_epoch && in_group == 0)
        st = lam_optimizer_set_lr(opt, lam_schedule_lr(o.schedule, steps));
      if (in_group == 0) lr = lam_optimizer_lr(opt);
      lam_tensor *loss = NULL, *pred = NULL;
      if (st == LAM_OK && o.accumulate == 1) {
        st = lam__step_run(model, vars, opt, o.objective, o.objective_user, xb, yb, &bkey, o.clip_norm, h, total,
                           &told, &loss, &pred);
        if (st == LAM_OK) steps++;
      } else if (st == LAM_OK) {
        lam__step s = {model, lam_vars_state(vars), xb, yb, o.objective, o.objective_user,
                       {true, lam__hook_key(h, &bkey, &hkey), NULL, NULL}, NULL};
        lam_ptree *grads = NULL;
        st = lam_value_and_grad(lam_tensor_ctx(xb), lam__step_loss, &s, lam_vars_params(vars), &loss, &grads);
        pred = s.pred;
        if (st != LAM_OK && h) { /* the peers are waiting at the group's reduction */
          st = h->reduce(h->user, st, NULL, NULL, 0, 0);
          told = true;
        }
        if (st == LAM_OK) {
          lam__accum a = {acc, (double)b.size};
          lam_ptree *next = lam_ptree_map(grads, lam__accum_leaf, &a);
          if (!next) st = lam_last_status();
          lam_ptree_free(acc);
          acc = next;
          acc_rows += b.size;
          acc_total += total;
        }
        lam_ptree_free(grads);
        if (st == LAM_OK && ++in_group == o.accumulate) {
          st = lam__accum_step(opt, vars, &acc, acc_rows, o.clip_norm, h, acc_total, &told);
          in_group = 0;
          acc_rows = 0;
          acc_total = 0;
          if (st == LAM_OK) steps++;
        }
      }
      /* Accumulate on the device: no sync per batch. */
      if (st == LAM_OK) st = lam__acc(&loss_sum, loss);
      if (st == LAM_OK && !o.no_accuracy) {
        lam_tensor *c = lam__correct(pred, yb);
        st = lam__acc(&correct_sum, c);
        lam_tensor_free(c);
      }
      for (int i = 0; i < o.n_metrics && st == LAM_OK; i++) st = lam_metric_update(o.metrics[i], pred, yb);
      batches++;
      rows += b.size;
      if (st == LAM_OK && o.on_batch) {
        lam_batch_report br = {epoch, batches, nb, b.size, loss, lr, steps};
        st = o.on_batch(&br, o.user);
        if (st != LAM_OK && lam_last_status() != st)
          lam__fail(st, "%s: the batch callback stopped training at epoch %d, batch %lld (%s)", fn, epoch,
                    (long long)batches, lam_status_string(st));
      }
      if (st == LAM_OK && prog.on && prog.tty && batches < nb && lam__seconds() - prog.last > 0.25) {
        double l = NAN, c = NAN;
        if (lam_tensor_item(loss_sum, &l) == LAM_OK && correct_sum && lam_tensor_item(correct_sum, &c) == LAM_OK)
          c /= (double)rows;
        lam__progress_line(&prog, epoch, batches, nb, rows, l / (double)batches, c, NULL);
        prog.last = lam__seconds();
      }
      lam_tensor_free(loss);
      lam_tensor_free(pred);
      lam_tensor_free(xs);
      lam_tensor_free(ys);
    }
    if (st == LAM_OK && in_group > 0) { /* a partial group at the end of the epoch */
      st = lam__accum_step(opt, vars, &acc, acc_rows, o.clip_norm, h, acc_total, &told);
      if (st == LAM_OK) steps++;
    }
    lam_ptree_free(acc);
    lam_epoch_report r = {epoch, NAN, NAN, NAN, NAN, 0, batches, rows, lr, NAN, best_epoch, false};
    double v = 0;
    if (st == LAM_OK && loss_sum && (st = lam_tensor_item(loss_sum, &v)) == LAM_OK) r.train_loss = v / (double)batches;
    if (st == LAM_OK && correct_sum && (st = lam_tensor_item(correct_sum, &v)) == LAM_OK)
      r.train_accuracy = v / (double)rows;
    lam_tensor_free(loss_sum);
    lam_tensor_free(correct_sum);
    if (st == LAM_OK && o.val_loader)
      st = lam__eval_loader(model, vars, o.val_loader, &o, &r.val_loss, o.no_accuracy ? NULL : &r.val_accuracy, fn);
    else if (st == LAM_OK && o.val_x && o.val_y)
      st = lam__evaluate(model, vars, &o, o.val_x, o.val_y, &r.val_loss, &r.val_accuracy);
    more = epoch < o.epochs;
    if (st != LAM_OK) break;
    r.monitored = mon == LAM_MONITOR_VAL_LOSS ? r.val_loss : mon == LAM_MONITOR_VAL_ACCURACY ? r.val_accuracy
                                                                                               : r.train_loss;
    bool improved = higher ? r.monitored > best + o.min_delta : r.monitored < best - o.min_delta;
    if (best_epoch == 0 && !isnan(r.monitored) && isinf(best)) improved = true;
    if (improved) {
      best = r.monitored;
      best_epoch = epoch;
      wait = 0;
      if (o.restore_best) {
        lam_ptree_free(best_params);
        lam_ptree_free(best_state);
        best_params = lam_ptree_map(lam_vars_params(vars), lam__copy_leaf, NULL);
        best_state = lam_ptree_map(lam_vars_state(vars), lam__copy_leaf, NULL);
        if (!best_params || !best_state) st = lam_last_status();
      }
    } else {
      wait++;
    }
    r.best_epoch = best_epoch;
    r.stop = o.patience > 0 && wait >= o.patience && epoch < o.epochs;
    r.seconds = lam__seconds() - prog.t0;
    if (st == LAM_OK && prog.on) {
      double c = r.train_accuracy;
      lam__progress_line(&prog, epoch, batches, nb, rows, r.train_loss, c, &r);
    }
    if (st == LAM_OK && o.on_epoch) {
      st = o.on_epoch(&r, o.user);
      if (st != LAM_OK && lam_last_status() != st)
        lam__fail(st, "%s: the epoch callback stopped training at epoch %d (%s)", fn, epoch, lam_status_string(st));
    }
    if (r.stop) break;
  }
  /* A failure outside a step: the peers learn of it at their next reduction. */
  if (st != LAM_OK && h && !told && more) h->reduce(h->user, st, NULL, NULL, 0, 0);
  if (st == LAM_OK && o.restore_best && best_params) {
    st = lam_ptree_foreach(lam_vars_params(vars), lam__restore_leaf, best_params);
    if (st == LAM_OK) {
      st = lam_vars_set_state(vars, best_state);
      best_state = NULL;
    }
  }
  lam_ptree_free(best_params);
  lam_ptree_free(best_state);
  return st;
}

lam_status lam_fit_loader(lam_layer *model, lam_vars *vars, lam_optimizer *opt, lam_loader *train,
                          const lam_fit_opts *opts) {
  const char *fn = "lam_fit_loader";
  lam_fit_opts o = lam__fit_resolve(opts ? *opts : (lam_fit_opts){0});
  if (!model || !vars || !opt || !train)
    return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn,
                     !model ? "model" : !vars ? "vars" : !opt ? "opt" : "train");
  lam_status st = lam__fit_check(&o, fn);
  if (st != LAM_OK) return st;
  if (lam_dataset_field_count(lam_loader_dataset(train)) < 2)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: the train loader's dataset needs 2 fields (x, y), has %d", fn,
                     lam_dataset_field_count(lam_loader_dataset(train)));
  return lam__fit_run(model, vars, opt, train, &o, fn);
}

lam_status lam_fit(lam_layer *model, lam_vars *vars, lam_optimizer *opt, lam_tensor *x,
                   lam_tensor *y, const lam_fit_opts *opts) {
  const char *fn = "lam_fit";
  lam_fit_opts o = lam__fit_resolve(opts ? *opts : (lam_fit_opts){0});
  if (!model || !vars || !opt || !x || !y)
    return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn,
                     !model ? "model" : !vars ? "vars" : !opt ? "opt" : !x ? "x" : "y");
  if (o.epochs < 1 || o.batch_size < 1)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: epochs %d and batch_size %lld must be >= 1 (0: the "
                     "defaults 10 and 32)", fn, o.epochs, (long long)o.batch_size);
  lam_status st = lam__fit_check(&o, fn);
  if (st != LAM_OK) return st;
  if (o.val_loader) return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: val_loader is for lam_fit_loader (use val_x, val_y)", fn);
  if (x->ndim < 1 || y->ndim < 1 || x->shape[0] != y->shape[0]) {
    char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR];
    return lam__fail(LAM_ERR_SHAPE, "%s: x %s and y %s need the same number of samples", fn,
                     lam__shape_str(x->ndim, x->shape, b1), lam__shape_str(y->ndim, y->shape, b2));
  }
  lam_dataset *d = NULL;
  lam_loader *l = NULL;
  st = lam_dataset_from_tensors(2, (lam_tensor *[]){x, y}, NULL, &d);
  lam_loader_opts lo = {.batch_size = o.batch_size, .shuffle = !o.no_shuffle, .key = o.key};
  if (st == LAM_OK) st = lam_loader_create(x->ctx, d, &lo, &l);
  if (st == LAM_OK) st = lam__fit_run(model, vars, opt, l, &o, fn);
  lam_loader_free(l);
  lam_dataset_free(d);
  return st;
}
