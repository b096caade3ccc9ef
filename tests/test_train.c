/* test_train.c: the training step, fit loop, prediction and accuracy:
 * loss decreases and matches a hand-run step, callbacks see every epoch,
 * predict in batches equals one pass, determinism per key, bad input, and
 * the data-parallel lam_grad_hook (called per step, shards, errors). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static lam_layer *small_model(void) {
  return lam_nn_sequential((lam_layer *[]){lam_nn_linear(4, 16, NULL), lam_nn_tanh(),
                                            lam_nn_dropout(&(lam_dropout_opts){.rate = 0.1}),
                                            lam_nn_linear(16, 3, NULL)},
                           4);
}

/* A separable toy problem: class = argmax of the first three features. */
static void make_data(lam_ctx *ctx, int n, lam_tensor **x, lam_tensor **y) {
  tu_rng r = tu_rng_make(9);
  float *xv = malloc((size_t)n * 4 * sizeof *xv);
  int32_t *yv = malloc((size_t)n * sizeof *yv);
  tu_fill_uniform_f32(&r, xv, n * 4, -1, 1);
  for (int i = 0; i < n; i++) {
    int best = 0;
    for (int j = 1; j < 3; j++)
      if (xv[i * 4 + j] > xv[i * 4 + best]) best = j;
    yv[i] = best;
  }
  *x = lam_tensor_from_host(ctx, LAM_F32, 2, (int64_t[]){n, 4}, xv);
  *y = lam_tensor_from_host(ctx, LAM_I32, 1, (int64_t[]){n}, yv);
  free(xv);
  free(yv);
}

typedef struct {
  int calls;
  double first, last, acc;
} seen;

static lam_status on_epoch(const lam_epoch_report *r, void *user) {
  seen *s = user;
  s->calls++;
  cr_assert_eq(r->epoch, s->calls);
  if (r->epoch == 1) s->first = r->train_loss;
  s->last = r->train_loss;
  s->acc = r->val_accuracy;
  cr_assert(isfinite(r->train_loss) && r->train_accuracy >= 0 && r->train_accuracy <= 1);
  return LAM_OK;
}

static lam_status stop_early(const lam_epoch_report *r, void *user) {
  return r->epoch == 2 ? LAM_ERR_STATE : LAM_OK;
}

Test(train, fit_learns_and_reports_every_epoch) {
  lam_ctx *ctx = tu_ctx();
  lam_tensor *x, *y, *vx, *vy;
  make_data(ctx, 300, &x, &y);
  make_data(ctx, 300, &vx, &vy);
  lam_layer *m = small_model();
  lam_vars *v = NULL;
  cr_assert_eq(lam_layer_init(m, ctx, lam_rng_key_make(1), LAM_F32, &v), LAM_OK);
  lam_adam_opts ao = lam_adam_defaults();
  ao.lr = 0.02;
  lam_optimizer *opt = lam_adam(&ao);
  seen s = {0, 0, 0, 0};
  lam_fit_opts o = lam_fit_defaults();
  o.epochs = 8;
  o.batch_size = 17; /* leaves a partial last batch */
  o.val_x = vx;
  o.val_y = vy;
  o.on_epoch = on_epoch;
  o.user = &s;
  tu_mark mk = tu_mark_now(ctx);
  cr_assert_eq(lam_fit(m, v, opt, x, y, &o), LAM_OK, "%s", lam_last_error());
  cr_assert_eq(s.calls, 8);
  cr_assert_lt(s.last, s.first * 0.5, "loss %g -> %g", s.first, s.last);
  cr_assert_gt(s.acc, 0.9, "validation accuracy %g", s.acc);
  cr_assert_eq(lam_optimizer_step_count(opt), 8 * 18);
  /* The optimizer's moments (exp_avg, exp_avg_sq per param) are the only growth. */
  lam_stats st;
  lam_ctx_stats(ctx, &st);
  cr_assert_eq(st.live_tensors - mk.tensors, 2 * lam_ptree_leaf_count(lam_vars_params(v)),
               "only optimizer state remains: %lld extra", (long long)(st.live_tensors - mk.tensors));
  o.on_epoch = stop_early;
  lam_error_clear();
  tu_assert_status(lam_fit(m, v, opt, x, y, &o), LAM_ERR_STATE, "callback stopped training at epoch 2");
  lam_tensor *all[] = {x, y, vx, vy};
  for (int i = 0; i < 4; i++) lam_tensor_free(all[i]);
  lam_optimizer_free(opt);
  lam_vars_free(v);
  lam_layer_free(m);
  lam_ctx_free(ctx);
}

Test(train, step_updates_and_clips) {
  lam_ctx *ctx = tu_ctx();
  lam_tensor *x, *y;
  make_data(ctx, 20, &x, &y);
  lam_layer *m = lam_nn_linear(4, 3, NULL);
  lam_vars *v = NULL;
  cr_assert_eq(lam_layer_init(m, ctx, lam_rng_key_make(3), LAM_F32, &v), LAM_OK);
  lam_sgd_opts so = lam_sgd_defaults();
  so.lr = 0.5;
  lam_optimizer *opt = lam_sgd(&so);
  float *w0 = tu_read_f32(lam_ptree_get(lam_vars_params(v), "weight"));
  double loss = 0;
  cr_assert_eq(lam_train_step(m, v, opt, x, y, NULL, &loss), LAM_OK,
               "%s", lam_last_error());
  cr_assert(isfinite(loss) && loss > 0);
  float *w1 = tu_read_f32(lam_ptree_get(lam_vars_params(v), "weight"));
  int changed = 0;
  for (int i = 0; i < 12; i++) changed += w0[i] != w1[i];
  cr_assert_gt(changed, 6, "the step updated the weights in place");
  free(w0);
  free(w1);
  /* Clipping to a tiny norm makes the update tiny. */
  float *wa = tu_read_f32(lam_ptree_get(lam_vars_params(v), "weight"));
  cr_assert_eq(lam_train_step(m, v, opt, x, y, &(lam_train_step_opts){.clip_norm = 1e-6}, NULL), LAM_OK);
  float *wb = tu_read_f32(lam_ptree_get(lam_vars_params(v), "weight"));
  for (int i = 0; i < 12; i++) cr_assert(fabsf(wa[i] - wb[i]) <= 0.5f * 1e-6f + 1e-7f, "clipped step");
  free(wa);
  free(wb);
  lam_tensor_free(x);
  lam_tensor_free(y);
  lam_optimizer_free(opt);
  lam_vars_free(v);
  lam_layer_free(m);
  lam_ctx_free(ctx);
}

Test(train, predict_in_batches_and_accuracy) {
  lam_ctx *ctx = tu_ctx();
  lam_tensor *x, *y;
  make_data(ctx, 50, &x, &y);
  lam_layer *m = small_model();
  lam_vars *v = NULL;
  cr_assert_eq(lam_layer_init(m, ctx, lam_rng_key_make(1), LAM_F32, &v), LAM_OK);
  lam_tensor *a = NULL, *b = NULL;
  cr_assert_eq(lam_predict(m, v, x, 0, &a), LAM_OK, "%s", lam_last_error());
  cr_assert_eq(lam_predict(m, v, x, 7, &b), LAM_OK, "%s", lam_last_error());
  float *fa = tu_read_f32(a), *fb = tu_read_f32(b);
  tu_assert_close_f32(fb, fa, 150, 1e-6, 1e-5, "batched predict");
  /* accuracy against a host argmax */
  int32_t yv[50];
  lam_tensor_to_host(y, yv, sizeof yv);
  int correct = 0;
  for (int i = 0; i < 50; i++) {
    int best = 0;
    for (int j = 1; j < 3; j++)
      if (fa[i * 3 + j] > fa[i * 3 + best]) best = j;
    correct += best == yv[i];
  }
  double acc = -1;
  cr_assert_eq(lam_accuracy(a, y, &acc), LAM_OK);
  cr_assert_float_eq(acc, correct / 50.0, 1e-12);
  free(fa);
  free(fb);
  tu_assert_status(lam_accuracy(a, x, &acc), LAM_ERR_DTYPE, "i32");
  tu_assert_status(lam_accuracy(x, y, NULL), LAM_ERR_NULL, "accuracy");
  lam_tensor_free(a);
  lam_tensor_free(b);
  lam_tensor_free(x);
  lam_tensor_free(y);
  lam_vars_free(v);
  lam_layer_free(m);
  lam_ctx_free(ctx);
}

Test(train, bad_input) {
  lam_ctx *ctx = tu_ctx();
  lam_tensor *x, *y;
  make_data(ctx, 10, &x, &y);
  lam_tensor *y9 = lam_tensor_slice0(y, 0, 9);
  lam_layer *m = small_model();
  lam_vars *v = NULL;
  cr_assert_eq(lam_layer_init(m, ctx, lam_rng_key_make(1), LAM_F32, &v), LAM_OK);
  lam_optimizer *opt = lam_sgd(NULL);
  tu_mark mk = tu_mark_now(ctx);
  lam_fit_opts o = lam_fit_defaults();
  tu_assert_status(lam_fit(m, v, opt, x, y9, &o), LAM_ERR_SHAPE, "same number of samples");
  o.epochs = -1;
  tu_assert_status(lam_fit(m, v, opt, x, y, &o), LAM_ERR_INVALID_ARGUMENT, "epochs -1");
  o = lam_fit_defaults();
  o.clip_norm = -1;
  tu_assert_status(lam_fit(m, v, opt, x, y, &o), LAM_ERR_INVALID_ARGUMENT, "lam_fit: clip_norm -1");
  tu_assert_status(lam_fit(m, v, NULL, x, y, NULL), LAM_ERR_NULL, "opt");
  tu_assert_status(lam_train_step(m, v, NULL, x, y, NULL, NULL), LAM_ERR_NULL, "opt");
  tu_assert_status(lam_train_step(m, v, opt, x, y, &(lam_train_step_opts){.clip_norm = NAN}, NULL),
                   LAM_ERR_INVALID_ARGUMENT, "lam_train_step: clip_norm nan");
  /* Training with dropout and no key fails cleanly (a NULL objective is cross entropy). */
  tu_assert_status(lam_train_step(m, v, opt, x, y, &(lam_train_step_opts){0}, NULL),
                   LAM_ERR_INVALID_ARGUMENT, "rng key");
  tu_assert_no_leak(ctx, mk);
  lam_tensor_free(y9);
  lam_tensor_free(x);
  lam_tensor_free(y);
  lam_optimizer_free(opt);
  lam_vars_free(v);
  lam_layer_free(m);
  lam_ctx_free(ctx);
}

/* ---- lam_grad_hook (the data-parallel hook of lamina/dist.h) in one process ---- */

typedef struct {
  int calls, failed_calls, fail_at;
  int64_t lo, hi_minus; /* shard: [lo, n - hi_minus) */
  int64_t rows, total;
  bool saw_loss;
} hook_log;

static void hook_shard(void *user, int64_t rows, int64_t *lo, int64_t *hi) {
  hook_log *h = user;
  *lo = h->lo;
  *hi = rows - h->hi_minus;
}

static lam_status hook_reduce(void *user, lam_status status, lam_ptree *grads, lam_tensor *loss, int64_t rows,
                              int64_t total) {
  hook_log *h = user;
  h->calls++;
  if (status != LAM_OK) {
    cr_assert_null(grads);
    h->failed_calls++;
    return status;
  }
  cr_assert(grads && lam_ptree_leaf_count(grads) == 4);
  h->saw_loss = h->saw_loss || loss != NULL;
  h->rows += rows;
  h->total += total;
  if (h->calls == h->fail_at) return lam_error_set(LAM_ERR_PEER, "hook_reduce: a peer failed");
  return LAM_OK;
}

static lam_status fit_with(lam_grad_hook *hook, lam_tensor *x, lam_tensor *y, lam_vars **out) {
  lam_ctx *ctx = lam_tensor_ctx(x);
  lam_layer *m = small_model();
  cr_assert_eq(lam_layer_init(m, ctx, lam_rng_key_make(3), LAM_F32, out), LAM_OK);
  lam_optimizer *opt = lam_sgd(&(lam_sgd_opts){.lr = 0.1});
  lam_fit_opts fo = {.epochs = 2, .batch_size = 10, .no_progress = true, .grad_hook = hook};
  lam_status st = lam_fit(m, *out, opt, x, y, &fo);
  lam_optimizer_free(opt);
  lam_layer_free(m);
  return st;
}

static double params_diff(lam_vars *a, lam_vars *b) {
  double m = 0;
  for (int i = 0; i < lam_ptree_leaf_count(lam_vars_params(a)); i++) {
    const char *p;
    lam_tensor *ta, *tb;
    lam_ptree_leaf(lam_vars_params(a), i, &p, &ta);
    lam_ptree_leaf(lam_vars_params(b), i, &p, &tb);
    float *va = tu_read_f32(ta), *vb = tu_read_f32(tb);
    for (int64_t j = 0; j < lam_tensor_numel(ta); j++) m = fmax(m, fabs((double)va[j] - vb[j]));
    free(va);
    free(vb);
  }
  return m;
}

Test(train, grad_hook_is_called_every_step_and_errors_stop_fit) {
  lam_ctx *ctx = tu_ctx();
  lam_tensor *x, *y;
  make_data(ctx, 40, &x, &y);
  /* The whole batch as the shard and an identity reduce: the same training. */
  lam_vars *plain = NULL, *hooked = NULL, *folded = NULL, *v = NULL;
  cr_assert_eq(fit_with(NULL, x, y, &plain), LAM_OK, "%s", lam_last_error());
  hook_log h = {0};
  lam_grad_hook hook = {hook_shard, hook_reduce, 0, &h};
  cr_assert_eq(fit_with(&hook, x, y, &hooked), LAM_OK, "%s", lam_last_error());
  cr_assert_eq(h.calls, 8, "one reduce per step: %d", h.calls);
  cr_assert(h.rows == 80 && h.total == 80 && h.saw_loss);
  cr_assert_eq(params_diff(plain, hooked), 0.0);
  /* key_fold changes the dropout masks. */
  hook.key_fold = 2;
  cr_assert_eq(fit_with(&hook, x, y, &folded), LAM_OK);
  cr_assert_gt(params_diff(plain, folded), 1e-6);
  hook.key_fold = 0;
  /* A shard of rows [2, n - 3): the reduce sees 5 of 10 rows. */
  h = (hook_log){.lo = 2, .hi_minus = 3};
  cr_assert_eq(fit_with(&hook, x, y, &v), LAM_OK);
  cr_assert(h.rows == 40 && h.total == 80, "rows %lld of %lld", (long long)h.rows, (long long)h.total);
  lam_vars_free(v);
  /* The reduce fails at the 3rd step: fit returns that, with no further call. */
  h = (hook_log){.fail_at = 3};
  tu_assert_status(fit_with(&hook, x, y, &v), LAM_ERR_PEER, "a peer failed");
  cr_assert_eq(h.calls, 3);
  lam_vars_free(v);
  /* A failing step (f32 labels) is reported to the reduce, once. */
  lam_tensor *yf = lam_tensor_cast(y, LAM_F32);
  h = (hook_log){0};
  cr_assert_neq(fit_with(&hook, x, yf, &v), LAM_OK);
  cr_assert(h.calls == 1 && h.failed_calls == 1, "calls %d, failed %d", h.calls, h.failed_calls);
  lam_vars_free(v);
  /* An empty shard fails the step, through the reduce. */
  h = (hook_log){.lo = 5, .hi_minus = 5};
  tu_assert_status(fit_with(&hook, x, y, &v), LAM_ERR_INVALID_ARGUMENT, "empty or out of range");
  cr_assert(h.calls == 1 && h.failed_calls == 1);
  lam_vars_free(v);
  /* lam_train_step with a hook, and a hook without reduce. */
  lam_layer *m = small_model();
  cr_assert_eq(lam_layer_init(m, ctx, lam_rng_key_make(3), LAM_F32, &v), LAM_OK);
  lam_optimizer *opt = lam_sgd(NULL);
  h = (hook_log){0};
  double loss = NAN;
  lam_rng_key key = lam_rng_key_make(4);
  cr_assert_eq(lam_train_step(m, v, opt, x, y, &(lam_train_step_opts){.rng = &key, .grad_hook = &hook}, &loss),
               LAM_OK, "%s", lam_last_error());
  cr_assert(h.calls == 1 && h.rows == 40 && isfinite(loss));
  lam_grad_hook half = {hook_shard, NULL, 0, &h};
  tu_assert_status(lam_train_step(m, v, opt, x, y, &(lam_train_step_opts){.grad_hook = &half}, NULL), LAM_ERR_NULL,
                   "grad_hook needs shard and reduce");
  tu_assert_status(lam_fit(m, v, opt, x, y, &(lam_fit_opts){.grad_hook = &half, .no_progress = true}), LAM_ERR_NULL,
                   "lam_fit: grad_hook");
  lam_optimizer_free(opt);
  lam_layer_free(m);
  lam_tensor_free(yf);
  lam_vars_free(v);
  lam_vars_free(plain);
  lam_vars_free(hooked);
  lam_vars_free(folded);
  lam_tensor_free(x);
  lam_tensor_free(y);
  lam_ctx_free(ctx);
}
