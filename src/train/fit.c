/* train/fit.c: the training step, fit loop, prediction and accuracy.
 * A step is value_and_grad over the model's params, then the optimizer's
 * device-side update; the only host syncs are the loss/metric reads that the
 * caller asks for. Shuffling gathers the dataset once per epoch with a
 * Philox-derived permutation; batches are then views (leading-axis slices). */
#include <math.h>
#include <stdlib.h>
#include <time.h>

#include "internal.h"

lam_tensor *lam_objective_cross_entropy(lam_tensor *pred, lam_tensor *target, void *user) {
  (void)user;
  return lam_cross_entropy(pred, target, NULL);
}

lam_tensor *lam_objective_mse(lam_tensor *pred, lam_tensor *target, void *user) {
  (void)user;
  return lam_mse_loss(pred, target, NULL);
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

static lam_status lam__step_run(lam_layer *model, lam_vars *vars, lam_optimizer *opt,
                                lam_objective_fn objective, void *objective_user, lam_tensor *x,
                                lam_tensor *y, const lam_rng_key *rng, double clip_norm,
                                lam_tensor **loss_out, lam_tensor **pred_out) {
  const char *fn = "lam_train_step";
  if (!model || !vars || !opt || !objective || !x || !y)
    return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn,
                     !model ? "model" : !vars ? "vars" : !opt ? "opt" : !objective ? "objective" : !x ? "x" : "y");
  lam__step s = {model, lam_vars_state(vars), x, y, objective, objective_user,
                 {true, rng, NULL, NULL}, NULL};
  lam_tensor *loss = NULL;
  lam_ptree *grads = NULL;
  lam_status st = lam_value_and_grad(lam_tensor_ctx(x), lam__step_loss, &s, lam_vars_params(vars), &loss, &grads);
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

lam_status lam_train_step(lam_layer *model, lam_vars *vars, lam_optimizer *opt,
                          lam_objective_fn objective, void *objective_user, lam_tensor *x,
                          lam_tensor *y, const lam_rng_key *rng, double clip_norm, double *loss_out) {
  lam_tensor *loss = NULL;
  lam_status st = lam__step_run(model, vars, opt, objective, objective_user, x, y, rng, clip_norm, &loss, NULL);
  if (st == LAM_OK && loss_out) st = lam_tensor_item(loss, loss_out);
  lam_tensor_free(loss);
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

lam_fit_opts lam_fit_defaults(void) {
  lam_fit_opts o = {0};
  o.epochs = 10;
  o.batch_size = 32;
  o.shuffle = true;
  o.key = lam_rng_key_make(0);
  o.objective = lam_objective_cross_entropy;
  o.classification = true;
  return o;
}

/* A permutation of 0..n-1 from the key (Fisher-Yates on Philox words). */
static lam_tensor *lam__permutation(lam_ctx *ctx, lam_rng_key key, int64_t n) {
  int32_t *p = malloc((size_t)n * sizeof *p);
  if (!p) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "lam_fit: out of host memory"), NULL;
  for (int64_t i = 0; i < n; i++) p[i] = (int32_t)i;
  uint32_t words[4];
  for (int64_t i = n - 1; i > 0; i--) {
    uint32_t ctr[4] = {(uint32_t)i, (uint32_t)((uint64_t)i >> 32), 0x5eed, 0};
    lam_philox4x32_10(ctr, key.k, words);
    uint64_t r = ((uint64_t)words[0] << 32 | words[1]) % (uint64_t)(i + 1);
    int32_t t = p[i];
    p[i] = p[r];
    p[r] = t;
  }
  lam_tensor *t = lam_tensor_from_host(ctx, LAM_I32, 1, &n, p);
  free(p);
  return t;
}

static double lam__seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Mean loss and accuracy of the model on (x, y) in evaluation mode. */
static lam_status lam__evaluate(lam_layer *model, lam_vars *vars, const lam_fit_opts *o, lam_tensor *x,
                                lam_tensor *y, double *loss, double *acc) {
  lam_tensor *pred = NULL;
  lam_status st = lam_predict(model, vars, x, o->batch_size * 4, &pred);
  if (st != LAM_OK) return st;
  lam_tensor *l = o->objective(pred, y, o->objective_user);
  st = l ? lam_tensor_item(l, loss) : lam_last_status();
  lam_tensor_free(l);
  if (st == LAM_OK && o->classification) st = lam_accuracy(pred, y, acc);
  lam_tensor_free(pred);
  return st;
}

lam_status lam_fit(lam_layer *model, lam_vars *vars, lam_optimizer *opt, lam_tensor *x,
                   lam_tensor *y, const lam_fit_opts *opts) {
  const char *fn = "lam_fit";
  lam_fit_opts o = opts ? *opts : lam_fit_defaults();
  if (!model || !vars || !opt || !x || !y)
    return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn,
                     !model ? "model" : !vars ? "vars" : !opt ? "opt" : !x ? "x" : "y");
  if (o.epochs < 1 || o.batch_size < 1)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: epochs %d and batch_size %lld must be >= 1", fn,
                     o.epochs, (long long)o.batch_size);
  if (!o.objective) o.objective = lam_objective_cross_entropy;
  if (x->ndim < 1 || y->ndim < 1 || x->shape[0] != y->shape[0]) {
    char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR];
    return lam__fail(LAM_ERR_SHAPE, "%s: x %s and y %s need the same number of samples", fn,
                     lam__shape_str(x->ndim, x->shape, b1), lam__shape_str(y->ndim, y->shape, b2));
  }
  int64_t n = x->shape[0];
  lam_status st = LAM_OK;
  for (int epoch = 1; epoch <= o.epochs && st == LAM_OK; epoch++) {
    double t0 = lam__seconds();
    lam_rng_key ekey = lam_rng_fold_in(o.key, (uint32_t)epoch);
    lam_tensor *xs = lam_tensor_retain(x), *ys = lam_tensor_retain(y);
    if (o.shuffle) {
      lam_tensor *perm = lam__permutation(x->ctx, ekey, n);
      lam_tensor_free(xs);
      lam_tensor_free(ys);
      xs = lam_index_select(x, 0, perm);
      ys = lam_index_select(y, 0, perm);
      lam_tensor_free(perm);
      if (!xs || !ys) st = lam_last_status();
    }
    lam_tensor *loss_sum = NULL, *correct_sum = NULL;
    int64_t batches = 0;
    for (int64_t lo = 0; lo < n && st == LAM_OK; lo += o.batch_size, batches++) {
      int64_t hi = lo + o.batch_size < n ? lo + o.batch_size : n;
      lam_tensor *xb = lam_tensor_slice0(xs, lo, hi), *yb = lam_tensor_slice0(ys, lo, hi);
      lam_rng_key bkey = lam_rng_fold_in(ekey, (uint32_t)batches + 1);
      lam_tensor *loss = NULL, *pred = NULL;
      st = xb && yb ? lam__step_run(model, vars, opt, o.objective, o.objective_user, xb, yb, &bkey,
                                    o.clip_norm, &loss, &pred)
                    : lam_last_status();
      /* Accumulate on the device: no sync per batch. */
      if (st == LAM_OK) {
        lam_tensor *ls = loss_sum ? lam_add(loss_sum, loss) : lam_tensor_retain(loss);
        lam_tensor_free(loss_sum);
        loss_sum = ls;
        if (o.classification) {
          lam_tensor *c = lam__correct(pred, yb);
          lam_tensor *cs = correct_sum && c ? lam_add(correct_sum, c) : lam_tensor_retain(c);
          lam_tensor_free(correct_sum);
          lam_tensor_free(c);
          correct_sum = cs;
        }
        if (!loss_sum || (o.classification && !correct_sum)) st = lam_last_status();
      }
      lam_tensor_free(loss);
      lam_tensor_free(pred);
      lam_tensor_free(xb);
      lam_tensor_free(yb);
    }
    lam_epoch_report r = {epoch, NAN, NAN, NAN, NAN, 0};
    double v = 0;
    if (st == LAM_OK && lam_tensor_item(loss_sum, &v) == LAM_OK) r.train_loss = v / (double)batches;
    if (st == LAM_OK && correct_sum && lam_tensor_item(correct_sum, &v) == LAM_OK) r.train_accuracy = v / (double)n;
    lam_tensor_free(loss_sum);
    lam_tensor_free(correct_sum);
    lam_tensor_free(xs);
    lam_tensor_free(ys);
    if (st == LAM_OK && o.val_x && o.val_y)
      st = lam__evaluate(model, vars, &o, o.val_x, o.val_y, &r.val_loss, &r.val_accuracy);
    r.seconds = lam__seconds() - t0;
    if (st == LAM_OK && o.on_epoch) {
      st = o.on_epoch(&r, o.user);
      if (st != LAM_OK && lam_last_status() != st)
        lam__fail(st, "lam_fit: the epoch callback stopped training at epoch %d (%s)", epoch,
                  lam_status_string(st));
    }
  }
  return st;
}
