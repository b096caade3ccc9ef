/* test_options_train.c: the options rule (lamina/options.h) for the option
 * structs of training, files and the runtime: for each of
 *   lam_sgd_opts, lam_adam_opts, lam_adamw_opts, lam_rmsprop_opts,
 *   lam_adagrad_opts, lam_lion_opts            (optim.h, src/train/optim.c)
 *   lam_loss_opts                              (loss.h, src/train/loss.c)
 *   lam_train_step_opts, lam_fit_opts          (train.h, src/train/fit.c)
 *   lam_save_opts, lam_load_opts               (io.h, src/train/safetensors.c)
 *   lam_ctx_opts                               (runtime.h, src/runtime/context.c)
 *   lam_apply_opts                             (layer.h, src/nn/layer.c)
 * NULL, a zeroed struct and lam_X_defaults() give bit-identical results
 * (optimizer steps, every loss, a train step, a fit, saved bytes, loads, a
 * matmul on each context, a forward pass). Also: the documented default
 * values (PyTorch's), LAM_ZERO as a real zero (Adam with beta1 = LAM_ZERO
 * against a plain C Adam with betas (0, 0.999), AdamW without decay, smooth
 * L1 with beta 0 = L1, triplet margin and eps 0 against a host reference),
 * the `_set` flags of ignore_index and axis, the negative booleans
 * (from_probabilities, no_shuffle, no_accuracy, non_strict, clblast_on_cpu)
 * and bad values failing with a message that names the public function. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#define NFORMS 3
static const char *const form_names[NFORMS] = {"NULL", "{0}", "defaults()"};

static bool same_bytes(const lam_tensor *a, const lam_tensor *b) {
  size_t n = lam_tensor_nbytes(a);
  if (!a || !b || n != lam_tensor_nbytes(b) || lam_tensor_dtype(a) != lam_tensor_dtype(b)) return false;
  unsigned char *x = malloc(n), *y = malloc(n);
  bool eq = lam_tensor_to_host(a, x, n) == LAM_OK && lam_tensor_to_host(b, y, n) == LAM_OK &&
            memcmp(x, y, n) == 0;
  free(x);
  free(y);
  return eq;
}

/* ---- optimizers ------------------------------------------------------------------- */

#define NP 7

/* The optimizer of `kind` from its options in form 0 (NULL), 1 ({0}) or 2 (defaults()). */
static lam_optimizer *make_opt(lam_optim_kind kind, int form) {
  switch (kind) {
    case LAM_OPTIM_SGD: {
      lam_sgd_opts z = {0}, d = lam_sgd_defaults();
      return lam_sgd(form == 0 ? NULL : form == 1 ? &z : &d);
    }
    case LAM_OPTIM_ADAM: {
      lam_adam_opts z = {0}, d = lam_adam_defaults();
      return lam_adam(form == 0 ? NULL : form == 1 ? &z : &d);
    }
    case LAM_OPTIM_ADAMW: {
      lam_adamw_opts z = {0}, d = lam_adamw_defaults();
      return lam_adamw(form == 0 ? NULL : form == 1 ? &z : &d);
    }
    case LAM_OPTIM_RMSPROP: {
      lam_rmsprop_opts z = {0}, d = lam_rmsprop_defaults();
      return lam_rmsprop(form == 0 ? NULL : form == 1 ? &z : &d);
    }
    case LAM_OPTIM_ADAGRAD: {
      lam_adagrad_opts z = {0}, d = lam_adagrad_defaults();
      return lam_adagrad(form == 0 ? NULL : form == 1 ? &z : &d);
    }
    case LAM_OPTIM_LION: {
      lam_lion_opts z = {0}, d = lam_lion_defaults();
      return lam_lion(form == 0 ? NULL : form == 1 ? &z : &d);
    }
  }
  return NULL;
}

static double p0(int i) { return 0.3 + 0.25 * sin(1.0 + i); }
static double g0(int t, int i) { return 0.5 * cos(0.7 * t + 1.3 * i) + 0.05 * i; }

/* Three steps of opt on one parameter of NP elements (dtype dt) from p0 with
 * the gradients g0(t, .); returns the final parameter tensor. */
static lam_tensor *run3(lam_ctx *ctx, lam_optimizer *opt, lam_dtype dt) {
  double v[NP];
  int64_t n = NP;
  for (int i = 0; i < NP; i++) v[i] = p0(i);
  lam_tensor *w = tu_from_f64(ctx, dt, 1, &n, v);
  lam_ptree *p = lam_ptree_dict();
  lam_ptree_set(p, "w", w);
  for (int t = 1; t <= 3; t++) {
    for (int i = 0; i < NP; i++) v[i] = g0(t, i);
    lam_tensor *g = tu_from_f64(ctx, dt, 1, &n, v);
    lam_ptree *gt = lam_ptree_dict();
    lam_ptree_set(gt, "w", g);
    cr_assert_eq(lam_optimizer_step(opt, p, gt), LAM_OK, "%s", lam_last_error());
    lam_ptree_free(gt);
    lam_tensor_free(g);
  }
  lam_ptree_free(p);
  return w;
}

Test(options_train, optimizers_null_zero_and_defaults_agree) {
  lam_ctx *ctx = tu_ctx();
  for (int k = LAM_OPTIM_SGD; k <= LAM_OPTIM_LION; k++) {
    lam_tensor *res[NFORMS];
    char desc[NFORMS][512];
    for (int f = 0; f < NFORMS; f++) {
      lam_optimizer *opt = make_opt((lam_optim_kind)k, f);
      cr_assert(opt, "kind %d %s: %s", k, form_names[f], lam_last_error());
      res[f] = run3(ctx, opt, LAM_F32);
      cr_assert_eq(lam_optimizer_describe(opt, desc[f], sizeof desc[f]), LAM_OK);
      lam_optimizer_free(opt);
    }
    for (int f = 1; f < NFORMS; f++) {
      cr_assert(same_bytes(res[0], res[f]), "kind %d: %s and %s differ", k, form_names[0], form_names[f]);
      cr_assert_str_eq(desc[0], desc[f], "kind %d: %s describes as %s", k, form_names[f], desc[f]);
    }
    /* The step moved the parameter: the default learning rate is not 0. */
    float *a = tu_read_f32(res[0]);
    cr_assert_neq(a[0], (float)p0(0), "kind %d did not update", k);
    free(a);
    for (int f = 0; f < NFORMS; f++) lam_tensor_free(res[f]);
  }
  lam_ctx_free(ctx);
}

Test(options_train, optimizer_defaults_are_pytorchs) {
  lam_sgd_opts s = lam_sgd_defaults();
  cr_assert(s.lr == 1e-3 && s.momentum == 0 && s.dampening == 0 && s.weight_decay == 0 && !s.nesterov &&
            !s.maximize);
  lam_adam_opts a = lam_adam_defaults();
  cr_assert(a.lr == 1e-3 && a.beta1 == 0.9 && a.beta2 == 0.999 && a.eps == 1e-8 && a.weight_decay == 0 &&
            !a.amsgrad && !a.maximize);
  lam_adamw_opts w = lam_adamw_defaults();
  cr_assert(w.lr == 1e-3 && w.beta1 == 0.9 && w.beta2 == 0.999 && w.eps == 1e-8 && w.weight_decay == 0.01 &&
            !w.amsgrad && !w.maximize);
  lam_rmsprop_opts r = lam_rmsprop_defaults();
  cr_assert(r.lr == 1e-2 && r.alpha == 0.99 && r.eps == 1e-8 && r.weight_decay == 0 && r.momentum == 0 &&
            !r.centered);
  lam_adagrad_opts g = lam_adagrad_defaults();
  cr_assert(g.lr == 1e-2 && g.eps == 1e-10 && g.lr_decay == 0 && g.weight_decay == 0 &&
            g.initial_accumulator_value == 0);
  lam_lion_opts l = lam_lion_defaults();
  cr_assert(l.lr == 1e-4 && l.beta1 == 0.9 && l.beta2 == 0.99 && l.weight_decay == 0);
  /* The description (stored in checkpoints) records the resolved values. */
  char buf[512];
  lam_optimizer *o = lam_adamw(&(lam_adamw_opts){.lr = 3e-4});
  cr_assert_eq(lam_optimizer_describe(o, buf, sizeof buf), LAM_OK);
  cr_assert(strstr(buf, "\"kind\":\"adamw\",\"lr\":0.00029999999999999997,") &&
            strstr(buf, "\"eps\":1e-08,\"weight_decay\":0.01,"), "%s", buf);
  lam_optimizer_free(o);
  o = lam_adamw(&(lam_adamw_opts){.weight_decay = LAM_ZERO, .beta1 = LAM_ZERO});
  cr_assert_eq(lam_optimizer_describe(o, buf, sizeof buf), LAM_OK);
  cr_assert(strstr(buf, "\"lr\":0.001,\"beta1\":0,\"beta2\":0.999") && strstr(buf, "\"weight_decay\":0,"),
            "%s", buf);
  lam_optimizer_free(o);
  o = lam_sgd(&(lam_sgd_opts){.momentum = LAM_ZERO});
  cr_assert_eq(lam_optimizer_describe(o, buf, sizeof buf), LAM_OK);
  cr_assert(strstr(buf, "\"lr\":0.001,\"momentum\":0,") && !strstr(buf, "-0"), "%s", buf);
  lam_optimizer_free(o);
}

/* Plain C Adam/AdamW (PyTorch's formulas) in double for three steps. */
static void ref_adam(double lr, double b1, double b2, double eps, double wd, bool decoupled, double *p) {
  double m[NP] = {0}, v[NP] = {0};
  for (int i = 0; i < NP; i++) p[i] = p0(i);
  for (int t = 1; t <= 3; t++) {
    double bc1 = 1 - pow(b1, t), bc2 = 1 - pow(b2, t);
    for (int i = 0; i < NP; i++) {
      double g = g0(t, i);
      if (decoupled) p[i] *= 1 - lr * wd;
      else g += wd * p[i];
      m[i] = b1 * m[i] + (1 - b1) * g;
      v[i] = b2 * v[i] + (1 - b2) * g * g;
      p[i] -= lr / bc1 * (m[i] / (sqrt(v[i]) / sqrt(bc2) + eps));
    }
  }
}

static void assert_ref(lam_tensor *t, const double *want, const char *what) {
  double *got = tu_read_f64(t);
  tu_assert_close_f64(got, want, NP, 1e-13, 1e-11, what);
  free(got);
}

Test(options_train, lam_zero_is_a_real_zero) {
  lam_ctx *ctx = tu_ctx();
  if (!lam_ctx_device(ctx)->fp64) {
    lam_ctx_free(ctx);
    cr_skip_test("no fp64");
  }
  double want[NP];
  /* torch.optim.Adam(lr=0.01, betas=(0, 0.999)). */
  lam_optimizer *o = lam_adam(&(lam_adam_opts){.lr = 0.01, .beta1 = LAM_ZERO});
  cr_assert(o, "%s", lam_last_error());
  lam_tensor *w = run3(ctx, o, LAM_F64);
  ref_adam(0.01, 0.0, 0.999, 1e-8, 0.0, false, want);
  assert_ref(w, want, "adam beta1 LAM_ZERO");
  lam_tensor_free(w);
  lam_optimizer_free(o);
  /* A zeroed Adam is the defaults. */
  w = run3(ctx, o = lam_adam(&(lam_adam_opts){0}), LAM_F64);
  ref_adam(1e-3, 0.9, 0.999, 1e-8, 0.0, false, want);
  assert_ref(w, want, "adam {0}");
  lam_tensor_free(w);
  lam_optimizer_free(o);
  /* AdamW: 0 is PyTorch's decay 0.01, LAM_ZERO none. */
  w = run3(ctx, o = lam_adamw(&(lam_adamw_opts){.lr = 0.05}), LAM_F64);
  ref_adam(0.05, 0.9, 0.999, 1e-8, 0.01, true, want);
  assert_ref(w, want, "adamw weight_decay default");
  lam_tensor_free(w);
  lam_optimizer_free(o);
  w = run3(ctx, o = lam_adamw(&(lam_adamw_opts){.lr = 0.05, .weight_decay = LAM_ZERO, .eps = LAM_ZERO}),
           LAM_F64);
  ref_adam(0.05, 0.9, 0.999, 0.0, 0.0, true, want);
  assert_ref(w, want, "adamw weight_decay and eps LAM_ZERO");
  lam_tensor_free(w);
  lam_optimizer_free(o);
  /* SGD with lr LAM_ZERO leaves the parameter as it was. */
  w = run3(ctx, o = lam_sgd(&(lam_sgd_opts){.lr = LAM_ZERO}), LAM_F64);
  for (int i = 0; i < NP; i++) want[i] = p0(i);
  assert_ref(w, want, "sgd lr LAM_ZERO");
  lam_tensor_free(w);
  lam_optimizer_free(o);
  /* Betas that are 0 where PyTorch allows it. */
  lam_optimizer *ok[] = {lam_rmsprop(&(lam_rmsprop_opts){.alpha = LAM_ZERO}),
                         lam_lion(&(lam_lion_opts){.beta1 = LAM_ZERO, .beta2 = LAM_ZERO}),
                         lam_adagrad(&(lam_adagrad_opts){.eps = LAM_ZERO})};
  for (int i = 0; i < 3; i++) {
    cr_assert(ok[i], "%s", lam_last_error());
    lam_optimizer_free(ok[i]);
  }
  lam_ctx_free(ctx);
}

Test(options_train, bad_optimizer_values_name_the_function) {
  tu_assert_fails(lam_sgd(&(lam_sgd_opts){.lr = NAN}), LAM_ERR_INVALID_ARGUMENT, "lam_sgd: lr = ");
  tu_assert_fails(lam_sgd(&(lam_sgd_opts){.momentum = -0.5}), LAM_ERR_INVALID_ARGUMENT, "lam_sgd: momentum");
  tu_assert_fails(lam_adam(&(lam_adam_opts){.lr = NAN}), LAM_ERR_INVALID_ARGUMENT, "lam_adam: lr = ");
  tu_assert_fails(lam_adam(&(lam_adam_opts){.eps = -1e-8}), LAM_ERR_INVALID_ARGUMENT, "lam_adam: eps");
  tu_assert_fails(lam_adam(&(lam_adam_opts){.beta1 = 1.0}), LAM_ERR_INVALID_ARGUMENT, "lam_adam: beta1");
  tu_assert_fails(lam_adam(&(lam_adam_opts){.beta2 = 1.5}), LAM_ERR_INVALID_ARGUMENT, "lam_adam: beta2");
  tu_assert_fails(lam_adamw(&(lam_adamw_opts){.lr = NAN}), LAM_ERR_INVALID_ARGUMENT, "lam_adamw: lr = ");
  tu_assert_fails(lam_adamw(&(lam_adamw_opts){.eps = -1}), LAM_ERR_INVALID_ARGUMENT, "lam_adamw: eps");
  tu_assert_fails(lam_adamw(&(lam_adamw_opts){.beta1 = 1.0}), LAM_ERR_INVALID_ARGUMENT, "lam_adamw: beta1");
  tu_assert_fails(lam_adamw(&(lam_adamw_opts){.weight_decay = -0.1}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_adamw: weight_decay");
  tu_assert_fails(lam_rmsprop(&(lam_rmsprop_opts){.lr = NAN}), LAM_ERR_INVALID_ARGUMENT, "lam_rmsprop: lr = ");
  tu_assert_fails(lam_rmsprop(&(lam_rmsprop_opts){.eps = -1}), LAM_ERR_INVALID_ARGUMENT, "lam_rmsprop: eps");
  tu_assert_fails(lam_adagrad(&(lam_adagrad_opts){.lr = NAN}), LAM_ERR_INVALID_ARGUMENT, "lam_adagrad: lr = ");
  tu_assert_fails(lam_adagrad(&(lam_adagrad_opts){.eps = -1}), LAM_ERR_INVALID_ARGUMENT, "lam_adagrad: eps");
  tu_assert_fails(lam_lion(&(lam_lion_opts){.lr = NAN}), LAM_ERR_INVALID_ARGUMENT, "lam_lion: lr = ");
  tu_assert_fails(lam_lion(&(lam_lion_opts){.beta2 = 1.01}), LAM_ERR_INVALID_ARGUMENT, "lam_lion: beta2");
}

/* ---- losses ----------------------------------------------------------------------- */

typedef enum { CE, NLL, BCE, MSE, L1, SMOOTH_L1, HUBER, KL, HINGE, MARGIN, TRIPLET, COS, GNLL, N_LOSSES } loss_kind;
static const char *const loss_names[N_LOSSES] = {"cross_entropy", "nll", "bce", "mse", "l1", "smooth_l1", "huber",
                                                 "kl_div", "hinge", "margin_ranking", "triplet", "cosine", "gaussian_nll"};

typedef struct {
  lam_tensor *a, *b, *c, *prob, *sign, *sign1, *y, *x1, *x2;
} loss_inputs;

static loss_inputs make_inputs(lam_ctx *ctx, lam_dtype dt) {
  tu_rng r = tu_rng_make(11);
  double a[12], b[12], c[12], prob[12], sign[12], x1[4], x2[4], sign1[4];
  for (int i = 0; i < 12; i++) {
    a[i] = tu_uniform(&r, -1, 1);
    b[i] = tu_uniform(&r, -1, 1);
    c[i] = tu_uniform(&r, -1, 1);
    prob[i] = tu_uniform(&r, 0.05, 0.95);
    sign[i] = tu_uniform(&r, 0, 1) < 0.5 ? -1 : 1;
  }
  for (int i = 0; i < 4; i++) {
    x1[i] = tu_uniform(&r, -1, 1);
    x2[i] = tu_uniform(&r, -1, 1);
    sign1[i] = i % 2 ? -1 : 1;
  }
  const int64_t s2[2] = {4, 3}, s1[1] = {4};
  int32_t y[4] = {0, 2, -100, 1};
  loss_inputs in = {tu_from_f64(ctx, dt, 2, s2, a), tu_from_f64(ctx, dt, 2, s2, b), tu_from_f64(ctx, dt, 2, s2, c),
                    tu_from_f64(ctx, dt, 2, s2, prob), tu_from_f64(ctx, dt, 2, s2, sign),
                    tu_from_f64(ctx, dt, 1, s1, sign1), lam_tensor_from_host(ctx, LAM_I32, 1, s1, y),
                    tu_from_f64(ctx, dt, 1, s1, x1), tu_from_f64(ctx, dt, 1, s1, x2)};
  return in;
}

static void free_inputs(loss_inputs *in) {
  lam_tensor *all[] = {in->a, in->b, in->c, in->prob, in->sign, in->sign1, in->y, in->x1, in->x2};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) lam_tensor_free(all[i]);
}

static lam_tensor *call_loss(loss_kind k, const loss_inputs *in, const lam_loss_opts *o) {
  switch (k) {
    case CE: return lam_cross_entropy(in->a, in->y, o);
    case NLL: return lam_nll_loss(in->a, in->y, o);
    case BCE: return lam_binary_cross_entropy(in->a, in->prob, o);
    case MSE: return lam_mse_loss(in->a, in->b, o);
    case L1: return lam_l1_loss(in->a, in->b, o);
    case SMOOTH_L1: return lam_smooth_l1_loss(in->a, in->b, o);
    case HUBER: return lam_huber_loss(in->a, in->b, o);
    case KL: return lam_kl_div_loss(in->a, in->prob, o);
    case HINGE: return lam_hinge_loss(in->a, in->sign, o);
    case MARGIN: return lam_margin_ranking_loss(in->x1, in->x2, in->sign1, o);
    case TRIPLET: return lam_triplet_margin_loss(in->a, in->b, in->c, o);
    case COS: return lam_cosine_similarity_loss(in->a, in->b, o);
    case GNLL: return lam_gaussian_nll_loss(in->a, in->b, in->prob, o);
    case N_LOSSES: break;
  }
  return NULL;
}

static lam_tensor *loss_ok(loss_kind k, const loss_inputs *in, const lam_loss_opts *o, const char *what) {
  lam_tensor *t = call_loss(k, in, o);
  cr_assert(t, "%s %s: %s", loss_names[k], what, lam_last_error());
  return t;
}

Test(options_train, losses_null_zero_and_defaults_agree) {
  lam_ctx *ctx = tu_ctx();
  loss_inputs in = make_inputs(ctx, LAM_F32);
  lam_loss_opts z = {0}, d = lam_loss_defaults();
  const lam_loss_opts *forms[NFORMS] = {NULL, &z, &d};
  for (int k = 0; k < N_LOSSES; k++) {
    lam_tensor *res[NFORMS];
    for (int f = 0; f < NFORMS; f++) res[f] = loss_ok((loss_kind)k, &in, forms[f], form_names[f]);
    cr_assert_eq(lam_tensor_ndim(res[0]), 0, "%s: mean by default", loss_names[k]);
    for (int f = 1; f < NFORMS; f++)
      cr_assert(same_bytes(res[0], res[f]), "%s: %s and %s differ", loss_names[k], form_names[0],
                form_names[f]);
    for (int f = 0; f < NFORMS; f++) lam_tensor_free(res[f]);
  }
  free_inputs(&in);
  lam_ctx_free(ctx);
}

/* Asserts two losses give the same bytes. */
static void assert_same_loss(loss_kind k, const loss_inputs *in, const lam_loss_opts *a, const lam_loss_opts *b,
                             const char *what) {
  lam_tensor *x = loss_ok(k, in, a, what), *y = loss_ok(k, in, b, what);
  cr_assert(same_bytes(x, y), "%s: %s", loss_names[k], what);
  lam_tensor_free(x);
  lam_tensor_free(y);
}

static void assert_other_loss(loss_kind k, const loss_inputs *in, const lam_loss_opts *a, const lam_loss_opts *b,
                              const char *what) {
  lam_tensor *x = loss_ok(k, in, a, what), *y = loss_ok(k, in, b, what);
  cr_assert(!same_bytes(x, y), "%s: %s", loss_names[k], what);
  lam_tensor_free(x);
  lam_tensor_free(y);
}

static double item(lam_tensor *t) {
  double v = NAN;
  cr_assert(t, "%s", lam_last_error());
  cr_assert_eq(lam_tensor_item(t, &v), LAM_OK, "%s", lam_last_error());
  lam_tensor_free(t);
  return v;
}

Test(options_train, loss_defaults_and_explicit_zeros) {
  lam_ctx *ctx = tu_ctx();
  bool f64 = lam_ctx_device(ctx)->fp64;
  loss_inputs in = make_inputs(ctx, LAM_F32);
  lam_loss_opts d = lam_loss_defaults();
  cr_assert(d.reduction == LAM_REDUCTION_MEAN && !d.weight && d.label_smoothing == 0 && d.ignore_index == -100 &&
            !d.from_probabilities && d.beta == 1 && d.delta == 1 && d.margin == 0 && d.p == 0 && d.eps == 0 &&
            !d.swap && !d.full && !d.log_target && d.axis == 1);
  /* The documented values, spelled out, are the zeroed struct. */
  assert_same_loss(CE, &in, NULL, &(lam_loss_opts){.ignore_index = -100}, "ignore_index -100");
  assert_same_loss(SMOOTH_L1, &in, NULL, &(lam_loss_opts){.beta = 1}, "beta 1");
  assert_same_loss(HUBER, &in, NULL, &(lam_loss_opts){.delta = 1}, "delta 1");
  assert_same_loss(TRIPLET, &in, NULL, &(lam_loss_opts){.margin = 1, .p = 2, .eps = 1e-6}, "triplet 1, 2, 1e-6");
  assert_same_loss(MARGIN, &in, NULL, &(lam_loss_opts){.margin = LAM_ZERO}, "margin_ranking 0");
  assert_same_loss(COS, &in, NULL, &(lam_loss_opts){.axis = 1, .eps = 1e-8}, "cosine axis 1, eps 1e-8");
  assert_same_loss(COS, &in, NULL, &(lam_loss_opts){.axis = -1}, "cosine axis 1 = -1 on rank 2");
  assert_same_loss(GNLL, &in, NULL, &(lam_loss_opts){.eps = 1e-6}, "gaussian_nll eps 1e-6");
  assert_same_loss(BCE, &in, NULL, &(lam_loss_opts){.from_probabilities = false}, "bce logits");
  /* LAM_ZERO: smooth L1 with beta 0 is L1. */
  lam_tensor *s = loss_ok(SMOOTH_L1, &in, &(lam_loss_opts){.beta = LAM_ZERO}, "beta LAM_ZERO");
  lam_tensor *l1 = loss_ok(L1, &in, NULL, "l1");
  cr_assert(same_bytes(s, l1), "smooth_l1 beta LAM_ZERO is l1");
  lam_tensor_free(s);
  lam_tensor_free(l1);
  /* ignore_index: 0 is a class; used when set (or nonzero). Targets {0, 2, 0, 1}. */
  lam_tensor *y0 = lam_tensor_from_host(ctx, LAM_I32, 1, (int64_t[]){4}, (int32_t[]){0, 2, 0, 1});
  lam_loss_opts ign0 = {.ignore_index_set = true};
  lam_tensor *ce_none = lam_cross_entropy(in.a, y0, NULL), *ce_ign0 = lam_cross_entropy(in.a, y0, &ign0);
  cr_assert(ce_none && ce_ign0 && !same_bytes(ce_none, ce_ign0), "ignore class 0 changes the loss");
  d = lam_loss_defaults();
  d.ignore_index = 0; /* defaults() has the flag set: this ignores class 0 */
  lam_tensor *ce_d0 = lam_cross_entropy(in.a, y0, &d);
  cr_assert(same_bytes(ce_d0, ce_ign0), "defaults() with ignore_index 0 ignores class 0");
  /* Ignoring class 0 leaves rows 1 and 3 (classes 2 and 1): their mean. */
  float av[12];
  lam_tensor_to_host(in.a, av, sizeof av);
  double want = 0;
  const int rows[2] = {1, 3}, cls[2] = {2, 1};
  for (int j = 0; j < 2; j++) {
    const float *x = av + 3 * rows[j];
    double mx = fmax(x[0], fmax(x[1], x[2]));
    double lse = mx + log(exp(x[0] - mx) + exp(x[1] - mx) + exp(x[2] - mx));
    want += (lse - x[cls[j]]) / 2;
  }
  double got = item(ce_ign0);
  cr_assert(fabs(got - want) < 1e-5, "ignore class 0: %g, want %g", got, want);
  lam_tensor_free(ce_none);
  lam_tensor_free(ce_d0);
  lam_tensor *n2 = lam_nll_loss(in.a, y0, &(lam_loss_opts){.ignore_index = 2});
  lam_tensor *n2s = lam_nll_loss(in.a, y0, &(lam_loss_opts){.ignore_index = 2, .ignore_index_set = true});
  cr_assert(n2 && same_bytes(n2, n2s), "a nonzero ignore_index needs no flag: %s", lam_last_error());
  lam_tensor_free(n2);
  lam_tensor_free(n2s);
  lam_tensor_free(y0);
  /* axis: 0 is an axis; used when set (or nonzero). */
  assert_same_loss(COS, &in, &(lam_loss_opts){.axis_set = true}, &(lam_loss_opts){.axis = -2}, "cosine axis 0");
  assert_other_loss(COS, &in, NULL, &(lam_loss_opts){.axis_set = true}, "axis 0 differs from 1");
  /* from_probabilities: PyTorch's F.binary_cross_entropy on probabilities. */
  float pv[12];
  lam_tensor_to_host(in.prob, pv, sizeof pv);
  double bce = item(lam_binary_cross_entropy(in.prob, in.prob, &(lam_loss_opts){.from_probabilities = true}));
  want = 0;
  for (int i = 0; i < 12; i++) want -= (pv[i] * log(pv[i]) + (1 - pv[i]) * log(1 - pv[i])) / 12;
  cr_assert(fabs(bce - want) < 1e-5, "bce on probabilities %g, want %g", bce, want);
  free_inputs(&in);
  /* Triplet with margin and eps LAM_ZERO against a host reference (f64). */
  if (f64) {
    loss_inputs i64 = make_inputs(ctx, LAM_F64);
    double *a = tu_read_f64(i64.a), *p = tu_read_f64(i64.b), *n = tu_read_f64(i64.c);
    got = item(lam_triplet_margin_loss(i64.a, i64.b, i64.c,
                                              &(lam_loss_opts){.margin = LAM_ZERO, .eps = LAM_ZERO}));
    want = 0;
    for (int r = 0; r < 4; r++) {
      double dp = 0, dn = 0;
      for (int c = 0; c < 3; c++) {
        dp += pow(a[3 * r + c] - p[3 * r + c], 2);
        dn += pow(a[3 * r + c] - n[3 * r + c], 2);
      }
      want += fmax(sqrt(dp) - sqrt(dn), 0) / 4;
    }
    cr_assert(fabs(got - want) < 1e-12, "triplet margin/eps LAM_ZERO %.17g, want %.17g", got, want);
    free(a);
    free(p);
    free(n);
    free_inputs(&i64);
  }
  lam_ctx_free(ctx);
}

Test(options_train, bad_loss_values_name_the_function) {
  lam_ctx *ctx = tu_ctx();
  loss_inputs in = make_inputs(ctx, LAM_F32);
  lam_error_clear();
  tu_assert_fails(lam_huber_loss(in.a, in.b, &(lam_loss_opts){.delta = LAM_ZERO}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_huber_loss: delta");
  tu_assert_fails(lam_smooth_l1_loss(in.a, in.b, &(lam_loss_opts){.beta = -1}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_smooth_l1_loss: beta");
  tu_assert_fails(lam_triplet_margin_loss(in.a, in.b, in.c, &(lam_loss_opts){.eps = -1e-6}),
                  LAM_ERR_INVALID_ARGUMENT, "lam_triplet_margin_loss: eps");
  tu_assert_fails(lam_triplet_margin_loss(in.a, in.b, in.c, &(lam_loss_opts){.p = LAM_ZERO}),
                  LAM_ERR_INVALID_ARGUMENT, "lam_triplet_margin_loss: p");
  tu_assert_fails(lam_triplet_margin_loss(in.a, in.b, in.c, &(lam_loss_opts){.margin = NAN}),
                  LAM_ERR_INVALID_ARGUMENT, "lam_triplet_margin_loss: margin");
  tu_assert_fails(lam_margin_ranking_loss(in.x1, in.x2, in.sign1, &(lam_loss_opts){.margin = INFINITY}),
                  LAM_ERR_INVALID_ARGUMENT, "lam_margin_ranking_loss: margin");
  tu_assert_fails(lam_cosine_similarity_loss(in.a, in.b, &(lam_loss_opts){.eps = NAN}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_cosine_similarity_loss: eps");
  tu_assert_fails(lam_gaussian_nll_loss(in.a, in.b, in.prob, &(lam_loss_opts){.eps = -1}),
                  LAM_ERR_INVALID_ARGUMENT, "lam_gaussian_nll_loss: eps");
  tu_assert_fails(lam_cosine_similarity_loss(in.a, in.b, &(lam_loss_opts){.axis = 2}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_cosine_similarity_loss: axis 2");
  free_inputs(&in);
  lam_ctx_free(ctx);
}

/* ---- train step and fit ----------------------------------------------------------- */

#define NS 40

/* A separable toy set: 40 samples of 4 features, class = argmax of the first 3. */
static void make_data(lam_ctx *ctx, lam_tensor **x, lam_tensor **y) {
  tu_rng r = tu_rng_make(5);
  float xv[NS * 4];
  int32_t yv[NS];
  for (int i = 0; i < NS; i++) {
    for (int j = 0; j < 4; j++) xv[i * 4 + j] = (float)tu_uniform(&r, -1, 1);
    int b = 0;
    for (int j = 1; j < 3; j++)
      if (xv[i * 4 + j] > xv[i * 4 + b]) b = j;
    yv[i] = b;
  }
  *x = lam_tensor_from_host(ctx, LAM_F32, 2, (int64_t[]){NS, 4}, xv);
  *y = lam_tensor_from_host(ctx, LAM_I32, 1, (int64_t[]){NS}, yv);
}

static lam_layer *model(void) {
  return lam_nn_sequential((lam_layer *[]){lam_nn_linear(4, 8, NULL), lam_nn_tanh(), lam_nn_linear(8, 3, NULL)}, 3);
}

typedef struct {
  int calls;
  double acc;
} seen;

static lam_status on_epoch(const lam_epoch_report *r, void *user) {
  seen *s = user;
  s->calls++;
  s->acc = r->train_accuracy;
  return LAM_OK;
}

/* Fits a fresh model (same init every time) with opts; returns its params'
 * first weight and the optimizer's step count. */
static lam_tensor *fit_once(lam_ctx *ctx, lam_tensor *x, lam_tensor *y, const lam_fit_opts *o, int64_t *steps) {
  lam_layer *m = model();
  lam_vars *v = NULL;
  cr_assert_eq(lam_layer_init(m, ctx, lam_rng_key_make(2), LAM_F32, &v), LAM_OK, "%s", lam_last_error());
  lam_optimizer *opt = lam_sgd(&(lam_sgd_opts){.lr = 0.1});
  cr_assert_eq(lam_fit(m, v, opt, x, y, o), LAM_OK, "%s", lam_last_error());
  *steps = lam_optimizer_step_count(opt);
  lam_tensor *w = lam_tensor_retain(lam_ptree_get(lam_vars_params(v), "0.weight"));
  cr_assert(w, "%s", lam_last_error());
  lam_optimizer_free(opt);
  lam_vars_free(v);
  lam_layer_free(m);
  return w;
}

Test(options_train, fit_null_zero_and_defaults_agree) {
  lam_ctx *ctx = tu_ctx();
  lam_tensor *x, *y;
  make_data(ctx, &x, &y);
  lam_fit_opts z = {0}, d = lam_fit_defaults();
  cr_assert(d.epochs == 10 && d.batch_size == 32 && !d.no_shuffle && d.key.k[0] == 0 && d.key.k[1] == 0 &&
            d.objective == lam_objective_cross_entropy && !d.no_accuracy && d.clip_norm == 0 && !d.val_x &&
            !d.on_epoch);
  const lam_fit_opts *forms[NFORMS] = {NULL, &z, &d};
  lam_tensor *w[NFORMS];
  for (int f = 0; f < NFORMS; f++) {
    int64_t steps = 0;
    w[f] = fit_once(ctx, x, y, forms[f], &steps);
    cr_assert_eq(steps, 10 * 2, "%s: 10 epochs of 2 batches (32 + 8), got %lld steps", form_names[f],
                 (long long)steps);
  }
  for (int f = 1; f < NFORMS; f++)
    cr_assert(same_bytes(w[0], w[f]), "fit: %s and %s differ", form_names[0], form_names[f]);
  /* One epoch of one batch; the negative booleans change what they say. */
  seen s = {0, 0};
  int64_t steps = 0;
  lam_tensor *a = fit_once(ctx, x, y, &(lam_fit_opts){.epochs = 1, .on_epoch = on_epoch, .user = &s}, &steps);
  cr_assert(steps == 2 && s.calls == 1 && s.acc >= 0 && s.acc <= 1, "accuracy reported: %g", s.acc);
  lam_tensor *b = fit_once(ctx, x, y, &(lam_fit_opts){.epochs = 1, .no_shuffle = true, .no_accuracy = true,
                                                      .on_epoch = on_epoch, .user = &s}, &steps);
  cr_assert(s.calls == 2 && isnan(s.acc), "no_accuracy: %g", s.acc);
  cr_assert(!same_bytes(a, b), "no_shuffle keeps the sample order");
  lam_tensor *c = fit_once(ctx, x, y, &(lam_fit_opts){.epochs = 1, .key = lam_rng_key_make(0)}, &steps);
  cr_assert(same_bytes(a, c), "the zero key is seed 0");
  for (int f = 0; f < NFORMS; f++) lam_tensor_free(w[f]);
  lam_tensor_free(a);
  lam_tensor_free(b);
  lam_tensor_free(c);
  /* Bad values name lam_fit. */
  lam_layer *m = model();
  lam_vars *v = NULL;
  cr_assert_eq(lam_layer_init(m, ctx, lam_rng_key_make(2), LAM_F32, &v), LAM_OK);
  lam_optimizer *opt = lam_sgd(NULL);
  tu_assert_status(lam_fit(m, v, opt, x, y, &(lam_fit_opts){.batch_size = -4}), LAM_ERR_INVALID_ARGUMENT,
                   "lam_fit: epochs 10 and batch_size -4");
  tu_assert_status(lam_fit(m, v, opt, x, y, &(lam_fit_opts){.clip_norm = NAN}), LAM_ERR_INVALID_ARGUMENT,
                   "lam_fit: clip_norm");
  lam_optimizer_free(opt);
  lam_vars_free(v);
  lam_layer_free(m);
  lam_tensor_free(x);
  lam_tensor_free(y);
  lam_ctx_free(ctx);
}

Test(options_train, train_step_null_zero_and_defaults_agree) {
  lam_ctx *ctx = tu_ctx();
  lam_tensor *x, *y;
  make_data(ctx, &x, &y);
  lam_train_step_opts z = {0}, d = lam_train_step_defaults();
  cr_assert(d.objective == lam_objective_cross_entropy && !d.objective_user && !d.rng && d.clip_norm == 0);
  const lam_train_step_opts *forms[NFORMS] = {NULL, &z, &d};
  lam_tensor *w[NFORMS];
  double loss[NFORMS];
  for (int f = 0; f < NFORMS; f++) {
    lam_layer *m = model();
    lam_vars *v = NULL;
    cr_assert_eq(lam_layer_init(m, ctx, lam_rng_key_make(2), LAM_F32, &v), LAM_OK);
    lam_optimizer *opt = lam_adam(NULL);
    for (int t = 0; t < 2; t++)
      cr_assert_eq(lam_train_step(m, v, opt, x, y, forms[f], &loss[f]), LAM_OK, "%s", lam_last_error());
    w[f] = lam_tensor_retain(lam_ptree_get(lam_vars_params(v), "2.weight"));
    lam_optimizer_free(opt);
    lam_vars_free(v);
    lam_layer_free(m);
  }
  for (int f = 1; f < NFORMS; f++) {
    cr_assert(same_bytes(w[0], w[f]), "train_step: %s and %s differ", form_names[0], form_names[f]);
    cr_assert(memcmp(&loss[0], &loss[f], sizeof loss[0]) == 0, "train_step loss %s", form_names[f]);
  }
  for (int f = 0; f < NFORMS; f++) lam_tensor_free(w[f]);
  lam_tensor_free(x);
  lam_tensor_free(y);
  lam_ctx_free(ctx);
}

/* ---- files -------------------------------------------------------------------------- */

static char tmpdir[256];

static const char *tmp(const char *name) {
  static char buf[4][512];
  static int k;
  k = (k + 1) % 4;
  if (!tmpdir[0]) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lamina_opts_XXXXXX");
    cr_assert(mkdtemp(tmpdir), "mkdtemp");
  }
  snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
  return buf[k];
}

static unsigned char *read_file(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  cr_assert(f, "%s", path);
  fseek(f, 0, SEEK_END);
  *n = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc(*n + 1);
  cr_assert_eq(fread(b, 1, *n, f), *n);
  fclose(f);
  return b;
}

Test(options_train, save_and_load_null_zero_and_defaults_agree) {
  lam_ctx *ctx = tu_ctx();
  lam_ptree *t = lam_ptree_dict();
  lam_tensor *a = tu_from_f64(ctx, LAM_F32, 1, (int64_t[]){3}, (double[]){1, 2.5, -3});
  lam_tensor *b = lam_tensor_from_host(ctx, LAM_I32, 1, (int64_t[]){2}, (int32_t[]){7, -8});
  lam_ptree_set(t, "layer.weight", a);
  lam_ptree_set(t, "layer.count", b);
  lam_save_opts sz = {0}, sd = lam_save_defaults();
  cr_assert(!sd.metadata && sd.float_dtype == LAM_FILE_KEEP);
  const lam_save_opts *sforms[NFORMS] = {NULL, &sz, &sd};
  const char *names[NFORMS] = {"s0.st", "s1.st", "s2.st"};
  unsigned char *bytes[NFORMS];
  size_t nb[NFORMS];
  for (int f = 0; f < NFORMS; f++) {
    cr_assert_eq(lam_safetensors_save(tmp(names[f]), t, sforms[f]), LAM_OK, "%s", lam_last_error());
    bytes[f] = read_file(tmp(names[f]), &nb[f]);
  }
  for (int f = 1; f < NFORMS; f++)
    cr_assert(nb[f] == nb[0] && memcmp(bytes[0], bytes[f], nb[0]) == 0, "save: %s differs", form_names[f]);
  for (int f = 0; f < NFORMS; f++) free(bytes[f]);
  /* Loading: whole file and into a model, strict by default. */
  lam_load_opts lz = {0}, ld = lam_load_defaults();
  cr_assert(!ld.non_strict && !ld.prefix);
  const lam_load_opts *lforms[NFORMS] = {NULL, &lz, &ld};
  lam_ptree *extra = lam_ptree_dict(); /* the model lacks "layer.count": an unexpected key */
  lam_tensor *e = lam_tensor_zeros(ctx, LAM_F32, 1, (int64_t[]){3});
  lam_ptree_set(extra, "layer.weight", e);
  for (int f = 0; f < NFORMS; f++) {
    lam_ptree *got = NULL;
    cr_assert_eq(lam_safetensors_load(ctx, tmp("s0.st"), lforms[f], &got, NULL), LAM_OK, "%s", lam_last_error());
    cr_assert(same_bytes(lam_ptree_get(got, "layer.weight"), a) && same_bytes(lam_ptree_get(got, "layer.count"), b),
              "load %s", form_names[f]);
    cr_assert_eq(lam_ptree_load_into(got, tmp("s0.st"), lforms[f]), LAM_OK, "%s", lam_last_error());
    lam_ptree_free(got);
    tu_assert_status(lam_ptree_load_into(extra, tmp("s0.st"), lforms[f]), LAM_ERR_NOT_FOUND, "layer.count");
  }
  /* non_strict: PyTorch's strict=False loads what both have. */
  cr_assert_eq(lam_ptree_load_into(extra, tmp("s0.st"), &(lam_load_opts){.non_strict = true}), LAM_OK, "%s",
               lam_last_error());
  cr_assert(same_bytes(e, a), "non-strict load wrote the shared key");
  lam_ptree_free(extra);
  lam_tensor_free(e);
  lam_ptree_free(t);
  lam_tensor_free(a);
  lam_tensor_free(b);
  for (int f = 0; f < NFORMS; f++) remove(tmp(names[f]));
  rmdir(tmpdir);
  lam_ctx_free(ctx);
}

/* ---- contexts and apply ------------------------------------------------------------- */

Test(options_train, ctx_null_zero_and_defaults_agree) {
  lam_ctx_opts z = {0}, d = lam_ctx_defaults();
  cr_assert(!d.device && !d.cache_dir && d.cache_mode == LAM_CACHE_AUTO && !d.clblast_on_cpu);
  const lam_ctx_opts *forms[NFORMS] = {NULL, &z, &d};
  tu_rng r = tu_rng_make(9);
  double av[48 * 40], bv[40 * 24];
  tu_fill_uniform_f64(&r, av, 48 * 40, -1, 1);
  tu_fill_uniform_f64(&r, bv, 40 * 24, -1, 1);
  float *res[NFORMS];
  char name[NFORMS][128];
  for (int f = 0; f < NFORMS; f++) {
    lam_ctx *ctx = NULL;
    cr_assert_eq(lam_ctx_create(forms[f], &ctx), LAM_OK, "%s", lam_last_error());
    snprintf(name[f], sizeof name[f], "%s", lam_ctx_device(ctx)->name);
    lam_tensor *a = tu_from_f64(ctx, LAM_F32, 2, (int64_t[]){48, 40}, av);
    lam_tensor *b = tu_from_f64(ctx, LAM_F32, 2, (int64_t[]){40, 24}, bv);
    lam_tensor *c = lam_matmul(a, b);
    cr_assert(c, "%s", lam_last_error());
    res[f] = tu_read_f32(c);
    lam_tensor_free(a);
    lam_tensor_free(b);
    lam_tensor_free(c);
    lam_ctx_free(ctx);
  }
  for (int f = 1; f < NFORMS; f++) {
    cr_assert_str_eq(name[0], name[f], "ctx %s picked another device", form_names[f]);
    cr_assert(memcmp(res[0], res[f], 48 * 24 * sizeof(float)) == 0, "matmul on ctx %s differs", form_names[f]);
  }
  /* clblast_on_cpu (the old cpu_gemm_tuning = false) still multiplies. */
  lam_ctx *ctx = NULL;
  cr_assert_eq(lam_ctx_create(&(lam_ctx_opts){.clblast_on_cpu = true}, &ctx), LAM_OK, "%s", lam_last_error());
  lam_tensor *a = tu_from_f64(ctx, LAM_F32, 2, (int64_t[]){48, 40}, av);
  lam_tensor *b = tu_from_f64(ctx, LAM_F32, 2, (int64_t[]){40, 24}, bv);
  lam_tensor *c = lam_matmul(a, b);
  float *got = tu_read_f32(c);
  tu_assert_close_f32(got, res[0], 48 * 24, 1e-5, 1e-5, "clblast_on_cpu matmul");
  free(got);
  lam_tensor_free(a);
  lam_tensor_free(b);
  lam_tensor_free(c);
  lam_ctx_free(ctx);
  for (int f = 0; f < NFORMS; f++) free(res[f]);
}

Test(options_train, apply_null_zero_and_defaults_agree) {
  lam_ctx *ctx = tu_ctx();
  lam_tensor *x, *y;
  make_data(ctx, &x, &y);
  lam_layer *m = model();
  lam_vars *v = NULL;
  cr_assert_eq(lam_layer_init(m, ctx, lam_rng_key_make(4), LAM_F32, &v), LAM_OK);
  lam_apply_opts z = {0}, d = lam_apply_defaults();
  cr_assert(!d.training && !d.rng && !d.aux && !d.summaries);
  const lam_apply_opts *forms[NFORMS] = {NULL, &z, &d};
  lam_tensor *out[NFORMS];
  for (int f = 0; f < NFORMS; f++)
    cr_assert_eq(lam_layer_apply(m, v, x, forms[f], &out[f]), LAM_OK, "%s", lam_last_error());
  for (int f = 1; f < NFORMS; f++) cr_assert(same_bytes(out[0], out[f]), "apply %s differs", form_names[f]);
  for (int f = 0; f < NFORMS; f++) lam_tensor_free(out[f]);
  lam_vars_free(v);
  lam_layer_free(m);
  lam_tensor_free(x);
  lam_tensor_free(y);
  lam_ctx_free(ctx);
}
