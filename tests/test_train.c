/* test_train.c: the training step, fit loop, prediction and accuracy:
 * loss decreases and matches a hand-run step, callbacks see every epoch,
 * predict in batches equals one pass, determinism per key, bad input. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static lam_layer *small_model(void) {
  return lam_nn_sequential((lam_layer *[]){lam_nn_linear(4, 16, NULL), lam_nn_tanh(), lam_nn_dropout(0.1),
                                        lam_nn_linear(16, 3, NULL)}, 4);
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
  cr_assert_eq(lam_train_step(m, v, opt, lam_objective_cross_entropy, NULL, x, y, NULL, 0, &loss), LAM_OK,
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
  cr_assert_eq(lam_train_step(m, v, opt, lam_objective_cross_entropy, NULL, x, y, NULL, 1e-6, NULL), LAM_OK);
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
  o.epochs = 0;
  tu_assert_status(lam_fit(m, v, opt, x, y, &o), LAM_ERR_INVALID_ARGUMENT, "epochs 0");
  tu_assert_status(lam_fit(m, v, NULL, x, y, NULL), LAM_ERR_NULL, "opt");
  tu_assert_status(lam_train_step(m, v, opt, NULL, NULL, x, y, NULL, 0, NULL), LAM_ERR_NULL, "objective");
  /* Training with dropout and no key fails cleanly. */
  tu_assert_status(lam_train_step(m, v, opt, lam_objective_cross_entropy, NULL, x, y, NULL, 0, NULL),
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
