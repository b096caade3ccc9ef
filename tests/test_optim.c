/* test_optim.c: optimizers, learning-rate schedules and gradient clipping.
 * Each optimizer configuration runs 10 steps on a fixed gradient sequence
 * and is compared with PyTorch (tests/data/optim_golden.safetensors, made by
 * tools/gen_optim_golden.py; Lion with the lucidrains reference written out
 * there) in f32 and f64, and with a plain C reference on odd sizes and one
 * large tensor. Also: frozen and missing gradients, lazily created state,
 * state export/import, schedules against PyTorch's schedulers, clipping
 * against torch.nn.utils.clip_grad_norm_, and bad input everywhere. */
#include <lamina/io.h>
#include <lamina/optim.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static const char *data_path(const char *name) {
  static char buf[1024];
  const char *dir = getenv("LAMINA_TEST_DATA");
  snprintf(buf, sizeof buf, "%s/%s", dir && *dir ? dir : "tests/data", name);
  return buf;
}

static lam_ptree *load_data(lam_ctx *ctx, const char *name) {
  lam_ptree *t = NULL;
  cr_assert_eq(lam_safetensors_load(ctx, data_path(name), NULL, &t, NULL), LAM_OK, "%s", lam_last_error());
  return t;
}

/* ---- the configurations (must match tools/gen_optim_golden.py) ------------ */

typedef struct {
  const char *name;
  lam_optim_kind kind;
  lam_sgd_opts sgd;
  lam_adam_opts adam;
  lam_rmsprop_opts rms;
  lam_adagrad_opts ada;
  lam_lion_opts lion;
} combo;

#define N_COMBOS 13

static combo get_combo(int i) {
  combo c = {.sgd = lam_sgd_defaults(), .rms = lam_rmsprop_defaults(), .ada = lam_adagrad_defaults(),
             .lion = lam_lion_defaults()};
  switch (i) {
    case 0: c.name = "sgd_plain"; c.kind = LAM_OPTIM_SGD; c.sgd.lr = 0.1; break;
    case 1:
      c.name = "sgd_nesterov_wd"; c.kind = LAM_OPTIM_SGD;
      c.sgd.lr = 0.05; c.sgd.momentum = 0.9; c.sgd.nesterov = true; c.sgd.weight_decay = 0.01;
      break;
    case 2:
      c.name = "sgd_damp_max"; c.kind = LAM_OPTIM_SGD;
      c.sgd.lr = 0.05; c.sgd.momentum = 0.8; c.sgd.dampening = 0.3; c.sgd.maximize = true;
      break;
    case 3: c.name = "adam"; c.kind = LAM_OPTIM_ADAM; c.adam = lam_adam_defaults(); c.adam.lr = 0.01; break;
    case 4:
      c.name = "adam_amsgrad_wd"; c.kind = LAM_OPTIM_ADAM; c.adam = lam_adam_defaults();
      c.adam.lr = 0.01; c.adam.beta1 = 0.8; c.adam.beta2 = 0.95; c.adam.eps = 1e-6;
      c.adam.weight_decay = 0.05; c.adam.amsgrad = true;
      break;
    case 5:
      c.name = "adamw"; c.kind = LAM_OPTIM_ADAMW; c.adam = lam_adamw_defaults();
      c.adam.lr = 0.01; c.adam.weight_decay = 0.1;
      break;
    case 6:
      c.name = "adamw_amsgrad_max"; c.kind = LAM_OPTIM_ADAMW; c.adam = lam_adamw_defaults();
      c.adam.lr = 0.02; c.adam.amsgrad = true; c.adam.maximize = true;
      break;
    case 7: c.name = "rmsprop"; c.kind = LAM_OPTIM_RMSPROP; c.rms.lr = 0.01; break;
    case 8:
      c.name = "rmsprop_centered_mom"; c.kind = LAM_OPTIM_RMSPROP;
      c.rms.lr = 0.01; c.rms.alpha = 0.9; c.rms.momentum = 0.5; c.rms.centered = true;
      c.rms.weight_decay = 0.01;
      break;
    case 9: c.name = "adagrad"; c.kind = LAM_OPTIM_ADAGRAD; c.ada.lr = 0.1; break;
    case 10:
      c.name = "adagrad_decay_wd"; c.kind = LAM_OPTIM_ADAGRAD;
      c.ada.lr = 0.1; c.ada.lr_decay = 0.01; c.ada.weight_decay = 0.02;
      c.ada.initial_accumulator_value = 0.1;
      break;
    case 11:
      c.name = "lion"; c.kind = LAM_OPTIM_LION;
      c.lion.lr = 0.01; c.lion.beta1 = 0.9; c.lion.beta2 = 0.99; c.lion.weight_decay = 0.1;
      break;
    case 12: c.name = "lion_default"; c.kind = LAM_OPTIM_LION; c.lion.lr = 1e-3; break;
  }
  return c;
}

static lam_optimizer *make_opt(const combo *c) {
  lam_optimizer *o = NULL;
  switch (c->kind) {
    case LAM_OPTIM_SGD: o = lam_sgd(&c->sgd); break;
    case LAM_OPTIM_ADAM: o = lam_adam(&c->adam); break;
    case LAM_OPTIM_ADAMW: o = lam_adamw(&c->adam); break;
    case LAM_OPTIM_RMSPROP: o = lam_rmsprop(&c->rms); break;
    case LAM_OPTIM_ADAGRAD: o = lam_adagrad(&c->ada); break;
    case LAM_OPTIM_LION: o = lam_lion(&c->lion); break;
  }
  cr_assert(o, "%s: %s", c->name, lam_last_error());
  return o;
}

/* ---- plain C reference in double (PyTorch's formulas) ---------------------- */

typedef struct {
  int64_t n, step;
  double *s[3];
  bool started;
} ref_state;

static void ref_init(ref_state *r, int64_t n, double init0) {
  r->n = n;
  r->step = 0;
  r->started = false;
  for (int s = 0; s < 3; s++) {
    r->s[s] = calloc((size_t)n, sizeof(double));
    if (s == 0)
      for (int64_t i = 0; i < n; i++) r->s[s][i] = init0;
  }
}

static void ref_free(ref_state *r) {
  for (int s = 0; s < 3; s++) free(r->s[s]);
}

static double sgn(double x) { return x > 0 ? 1 : x < 0 ? -1 : 0; }

static void ref_step(const combo *c, ref_state *r, double *p, const double *g0, double lr) {
  int64_t t = ++r->step;
  for (int64_t i = 0; i < r->n; i++) {
    double x = p[i], g = g0[i];
    switch (c->kind) {
      case LAM_OPTIM_SGD: {
        const lam_sgd_opts *o = &c->sgd;
        if (o->maximize) g = -g;
        if (o->weight_decay != 0) g += o->weight_decay * x;
        if (o->momentum != 0) {
          double *b = &r->s[0][i];
          *b = t == 1 ? g : *b * o->momentum + (1 - o->dampening) * g;
          g = o->nesterov ? g + o->momentum * *b : *b;
        }
        p[i] = x - lr * g;
        break;
      }
      case LAM_OPTIM_ADAM:
      case LAM_OPTIM_ADAMW: {
        const lam_adam_opts *o = &c->adam;
        if (o->maximize) g = -g;
        if (c->kind == LAM_OPTIM_ADAMW) x *= 1 - lr * o->weight_decay;
        else if (o->weight_decay != 0) g += o->weight_decay * x;
        double *m = &r->s[0][i], *v = &r->s[1][i], *vm = &r->s[2][i];
        *m = *m * o->beta1 + (1 - o->beta1) * g;
        *v = *v * o->beta2 + (1 - o->beta2) * g * g;
        double sq = *v;
        if (o->amsgrad) sq = *vm = fmax(*vm, *v);
        double bc1 = 1 - pow(o->beta1, (double)t), bc2 = 1 - pow(o->beta2, (double)t);
        p[i] = x - lr / bc1 * (*m / (sqrt(sq) / sqrt(bc2) + o->eps));
        break;
      }
      case LAM_OPTIM_RMSPROP: {
        const lam_rmsprop_opts *o = &c->rms;
        if (o->maximize) g = -g;
        if (o->weight_decay != 0) g += o->weight_decay * x;
        double *sq = &r->s[0][i], *ga = &r->s[1][i], *b = &r->s[2][i];
        *sq = *sq * o->alpha + (1 - o->alpha) * g * g;
        double avg;
        if (o->centered) {
          *ga = *ga * o->alpha + (1 - o->alpha) * g;
          avg = sqrt(*sq - *ga * *ga);
        } else {
          avg = sqrt(*sq);
        }
        avg += o->eps;
        if (o->momentum > 0) {
          *b = *b * o->momentum + g / avg;
          p[i] = x - lr * *b;
        } else {
          p[i] = x - lr * g / avg;
        }
        break;
      }
      case LAM_OPTIM_ADAGRAD: {
        const lam_adagrad_opts *o = &c->ada;
        if (o->maximize) g = -g;
        if (o->weight_decay != 0) g += o->weight_decay * x;
        double clr = lr / (1 + (double)(t - 1) * o->lr_decay);
        r->s[0][i] += g * g;
        p[i] = x - clr * g / (sqrt(r->s[0][i]) + o->eps);
        break;
      }
      case LAM_OPTIM_LION: {
        const lam_lion_opts *o = &c->lion;
        if (o->maximize) g = -g;
        x *= 1 - lr * o->weight_decay;
        double *m = &r->s[0][i];
        p[i] = x - lr * sgn(*m * o->beta1 + (1 - o->beta1) * g);
        *m = *m * o->beta2 + (1 - o->beta2) * g;
        break;
      }
    }
  }
}

static double combo_lr(const combo *c) {
  switch (c->kind) {
    case LAM_OPTIM_SGD: return c->sgd.lr;
    case LAM_OPTIM_ADAM:
    case LAM_OPTIM_ADAMW: return c->adam.lr;
    case LAM_OPTIM_RMSPROP: return c->rms.lr;
    case LAM_OPTIM_ADAGRAD: return c->ada.lr;
    case LAM_OPTIM_LION: return c->lion.lr;
  }
  return 0;
}

static double combo_init0(const combo *c) {
  return c->kind == LAM_OPTIM_ADAGRAD ? c->ada.initial_accumulator_value : 0;
}

/* ---- helpers ---------------------------------------------------------------- */

static lam_tensor *cast_leaf(const char *path, lam_tensor *v, void *user) {
  (void)path;
  return lam_tensor_cast(v, *(lam_dtype *)user);
}

/* A new tree of copies of golden's subtree at `at`, cast to dt. */
static lam_ptree *golden_tree(const lam_ptree *golden, const char *at, lam_dtype dt) {
  lam_ptree *sub = lam_ptree_subtree(golden, at);
  cr_assert(sub, "%s: %s", at, lam_last_error());
  lam_ptree *t = lam_ptree_map(sub, cast_leaf, &dt);
  cr_assert(t, "%s", lam_last_error());
  return t;
}

static void assert_leaf_close(const lam_tensor *got, const lam_tensor *want, double atol,
                              double rtol, const char *what) {
  cr_assert(lam_tensor_same_shape(got, want), "%s: shape", what);
  int64_t n = lam_tensor_numel(got);
  if (lam_tensor_dtype(got) == LAM_F64) {
    double *a = tu_read_f64(got), *b = tu_read_f64(want);
    tu_assert_close_f64(a, b, n, atol, rtol, what);
    free(a);
    free(b);
  } else {
    float *a = tu_read_f32(got), *b = tu_read_f32(want);
    tu_assert_close_f32(a, b, n, atol, rtol, what);
    free(a);
    free(b);
  }
}

static bool bits_equal(const lam_tensor *a, const lam_tensor *b) {
  size_t n = lam_tensor_nbytes(a);
  if (n != lam_tensor_nbytes(b) || lam_tensor_dtype(a) != lam_tensor_dtype(b)) return false;
  unsigned char *x = malloc(n), *y = malloc(n);
  cr_assert_eq(lam_tensor_to_host(a, x, n), LAM_OK);
  cr_assert_eq(lam_tensor_to_host(b, y, n), LAM_OK);
  bool eq = memcmp(x, y, n) == 0;
  free(x);
  free(y);
  return eq;
}

/* ---- against PyTorch ---------------------------------------------------------- */

static void run_golden(lam_ctx *ctx, lam_dtype dt) {
  lam_ptree *golden = load_data(ctx, "optim_golden.safetensors");
  tu_mark m = tu_mark_now(ctx);
  for (int ci = 0; ci < N_COMBOS; ci++) {
    combo c = get_combo(ci);
    lam_ptree *params = golden_tree(golden, "init", dt);
    lam_optimizer *opt = make_opt(&c);
    for (int t = 0; t < 10; t++) {
      char at[32];
      snprintf(at, sizeof at, "grad.%d", t);
      lam_ptree *grads = golden_tree(golden, at, dt);
      cr_assert_eq(lam_optimizer_step(opt, params, grads), LAM_OK, "%s: %s", c.name, lam_last_error());
      lam_ptree_free(grads);
    }
    cr_assert_eq(lam_optimizer_step_count(opt), 10);
    const char *keys[] = {"w", "b"};
    for (int k = 0; k < 2; k++) {
      char path[128], what[160];
      snprintf(path, sizeof path, "%s.%s.%s", c.name, dt == LAM_F64 ? "final64" : "final32", keys[k]);
      snprintf(what, sizeof what, "%s %s", path, lam_dtype_name(dt));
      lam_tensor *want = lam_ptree_get(golden, path);
      cr_assert(want, "%s", lam_last_error());
      lam_tensor *got = lam_ptree_get(params, keys[k]);
      if (dt == LAM_F64) assert_leaf_close(got, want, 1e-12, 1e-12, what);
      else assert_leaf_close(got, want, 1e-6, 1e-6, what);
    }
    lam_optimizer_free(opt);
    lam_ptree_free(params);
  }
  tu_assert_no_leak(ctx, m);
  lam_ptree_free(golden);
}

Test(optim, pytorch_golden_f32) {
  lam_ctx *ctx = tu_ctx();
  run_golden(ctx, LAM_F32);
  lam_ctx_free(ctx);
}

Test(optim, pytorch_golden_f64) {
  lam_ctx *ctx = tu_ctx();
  if (!lam_ctx_device(ctx)->fp64) {
    lam_ctx_free(ctx);
    cr_skip_test("no fp64");
  }
  run_golden(ctx, LAM_F64);
  lam_ctx_free(ctx);
}

/* The C reference itself agrees with PyTorch (f64), so the odd-size tests
 * below compare with something trustworthy. */
Test(optim, reference_matches_pytorch) {
  lam_ctx *ctx = tu_ctx();
  if (!lam_ctx_device(ctx)->fp64) {
    lam_ctx_free(ctx);
    cr_skip_test("no fp64");
  }
  lam_ptree *golden = load_data(ctx, "optim_golden.safetensors");
  for (int ci = 0; ci < N_COMBOS; ci++) {
    combo c = get_combo(ci);
    const char *keys[] = {"w", "b"};
    for (int k = 0; k < 2; k++) {
      char path[128];
      snprintf(path, sizeof path, "init.%s", keys[k]);
      lam_tensor *init = lam_tensor_cast(lam_ptree_get(golden, path), LAM_F64);
      double *p = tu_read_f64(init);
      int64_t n = lam_tensor_numel(init);
      ref_state r;
      ref_init(&r, n, combo_init0(&c));
      for (int t = 0; t < 10; t++) {
        snprintf(path, sizeof path, "grad.%d.%s", t, keys[k]);
        lam_tensor *g = lam_tensor_cast(lam_ptree_get(golden, path), LAM_F64);
        double *gv = tu_read_f64(g);
        ref_step(&c, &r, p, gv, combo_lr(&c));
        free(gv);
        lam_tensor_free(g);
      }
      snprintf(path, sizeof path, "%s.final64.%s", c.name, keys[k]);
      double *want = tu_read_f64(lam_ptree_get(golden, path));
      tu_assert_close_f64(p, want, n, 1e-12, 1e-12, c.name);
      free(want);
      free(p);
      ref_free(&r);
      lam_tensor_free(init);
    }
  }
  lam_ptree_free(golden);
  lam_ctx_free(ctx);
}

/* Odd sizes (one leaf each) in f64 against the C reference, every combo. */
Test(optim, odd_sizes_match_reference) {
  lam_ctx *ctx = tu_ctx();
  if (!lam_ctx_device(ctx)->fp64) {
    lam_ctx_free(ctx);
    cr_skip_test("no fp64");
  }
  const int64_t sizes[] = {1, 3, 7, 33, 1023};
  const int ns = 5;
  tu_rng rng = tu_rng_make(42);
  tu_mark m = tu_mark_now(ctx);
  for (int ci = 0; ci < N_COMBOS; ci++) {
    combo c = get_combo(ci);
    lam_ptree *params = lam_ptree_dict();
    double *ref_p[5];
    ref_state refs[5];
    for (int s = 0; s < ns; s++) {
      ref_p[s] = malloc((size_t)sizes[s] * sizeof(double));
      tu_fill_uniform_f64(&rng, ref_p[s], sizes[s], -1, 1);
      lam_tensor *t = lam_tensor_from_host(ctx, LAM_F64, 1, &sizes[s], ref_p[s]);
      char key[16];
      snprintf(key, sizeof key, "l%d", s);
      cr_assert_eq(lam_ptree_set(params, key, t), LAM_OK);
      lam_tensor_free(t);
      ref_init(&refs[s], sizes[s], combo_init0(&c));
    }
    lam_optimizer *opt = make_opt(&c);
    for (int t = 0; t < 4; t++) {
      lam_ptree *grads = lam_ptree_dict();
      for (int s = 0; s < ns; s++) {
        double *g = malloc((size_t)sizes[s] * sizeof(double));
        tu_fill_uniform_f64(&rng, g, sizes[s], -2, 2);
        lam_tensor *gt = lam_tensor_from_host(ctx, LAM_F64, 1, &sizes[s], g);
        char key[16];
        snprintf(key, sizeof key, "l%d", s);
        lam_ptree_set(grads, key, gt);
        lam_tensor_free(gt);
        ref_step(&c, &refs[s], ref_p[s], g, combo_lr(&c));
        free(g);
      }
      cr_assert_eq(lam_optimizer_step(opt, params, grads), LAM_OK, "%s", lam_last_error());
      lam_ptree_free(grads);
    }
    for (int s = 0; s < ns; s++) {
      char key[16];
      snprintf(key, sizeof key, "l%d", s);
      double *got = tu_read_f64(lam_ptree_get(params, key));
      tu_assert_close_f64(got, ref_p[s], sizes[s], 1e-12, 1e-11, c.name);
      free(got);
      free(ref_p[s]);
      ref_free(&refs[s]);
    }
    lam_optimizer_free(opt);
    lam_ptree_free(params);
  }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* One tensor above 2^22 elements (f32) for Adam (amsgrad) and Lion: a
 * streaming launch with many work-groups and a partial last one. */
Test(optim, large_tensor_f32) {
  lam_ctx *ctx = tu_ctx();
  int64_t n = tu_small() ? 4099 : (1 << 22) + 77;
  tu_rng rng = tu_rng_make(7);
  float *p0 = malloc((size_t)n * 4), *g = malloc((size_t)n * 4);
  tu_fill_uniform_f32(&rng, p0, n, -1, 1);
  tu_fill_uniform_f32(&rng, g, n, -1, 1);
  int which[] = {4, 11};
  for (int w = 0; w < 2; w++) {
    combo c = get_combo(which[w]);
    lam_tensor *p = lam_tensor_from_host(ctx, LAM_F32, 1, &n, p0);
    lam_tensor *gt = lam_tensor_from_host(ctx, LAM_F32, 1, &n, g);
    lam_ptree *params = lam_ptree_dict(), *grads = lam_ptree_dict();
    lam_ptree_set(params, "p", p);
    lam_ptree_set(grads, "p", gt);
    lam_optimizer *opt = make_opt(&c);
    double *rp = malloc((size_t)n * 8), *rg = malloc((size_t)n * 8);
    for (int64_t i = 0; i < n; i++) {
      rp[i] = p0[i];
      rg[i] = g[i];
    }
    ref_state r;
    ref_init(&r, n, 0);
    for (int t = 0; t < 2; t++) {
      cr_assert_eq(lam_optimizer_step(opt, params, grads), LAM_OK, "%s", lam_last_error());
      ref_step(&c, &r, rp, rg, combo_lr(&c));
    }
    float *got = tu_read_f32(p);
    for (int64_t i = 0; i < n; i++)
      cr_assert(fabs(got[i] - rp[i]) <= 1e-6 + 1e-5 * fabs(rp[i]), "%s: element %lld: %.9g vs %.9g",
                c.name, (long long)i, got[i], rp[i]);
    free(got);
    free(rp);
    free(rg);
    ref_free(&r);
    lam_optimizer_free(opt);
    lam_ptree_free(params);
    lam_ptree_free(grads);
    lam_tensor_free(p);
    lam_tensor_free(gt);
  }
  free(p0);
  free(g);
  lam_ctx_free(ctx);
}

/* ---- skipping, frozen leaves, lazy state ----------------------------------------- */

static lam_tensor *vec(lam_ctx *ctx, int64_t n, double base) {
  float *x = malloc((size_t)n * 4);
  for (int64_t i = 0; i < n; i++) x[i] = (float)(base + 0.1 * (double)i);
  lam_tensor *t = lam_tensor_from_host(ctx, LAM_F32, 1, &n, x);
  free(x);
  return t;
}

Test(optim, frozen_and_missing_grads_are_skipped) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  lam_ptree *params = lam_ptree_dict();
  lam_tensor *a = vec(ctx, 5, 1), *b = vec(ctx, 3, -1), *f = vec(ctx, 4, 2);
  lam_ptree_set(params, "enc.a", a);
  lam_ptree_set(params, "enc.b", b);
  lam_ptree_set(params, "frozen", f);
  cr_assert_eq(lam_ptree_freeze(params, "frozen"), LAM_OK);
  lam_tensor *f_before = lam_tensor_copy(f), *b_before = lam_tensor_copy(b);
  /* Gradients for a and for the frozen leaf, none for b. */
  lam_ptree *grads = lam_ptree_dict();
  lam_tensor *ga = lam_tensor_full(ctx, LAM_F32, 1, (int64_t[]){5}, 0.5);
  lam_tensor *gf = lam_tensor_full(ctx, LAM_F32, 1, (int64_t[]){4}, 0.5);
  lam_ptree_set(grads, "enc.a", ga);
  lam_ptree_set(grads, "frozen", gf);
  lam_adam_opts o = lam_adam_defaults();
  o.lr = 0.1;
  lam_optimizer *opt = lam_adam(&o);
  for (int t = 0; t < 3; t++) cr_assert_eq(lam_optimizer_step(opt, params, grads), LAM_OK, "%s", lam_last_error());
  cr_assert(bits_equal(f, f_before), "frozen leaf changed");
  cr_assert(bits_equal(b, b_before), "leaf without gradient changed");
  float av[5];
  lam_tensor_to_host(a, av, sizeof av);
  /* Adam with a constant gradient moves each step by ~lr. */
  cr_assert_float_eq(av[0], 1.0f - 0.3f, 1e-4, "a[0] = %g", av[0]);
  lam_ptree *st = lam_optimizer_state(opt);
  cr_assert(st, "%s", lam_last_error());
  cr_assert_eq(lam_ptree_leaf_count(st), 3, "only enc.a has state: exp_avg, exp_avg_sq, step");
  cr_assert(lam_ptree_get(st, "exp_avg.enc.a") && lam_ptree_get(st, "exp_avg_sq.enc.a"));
  double stepv;
  cr_assert_eq(lam_tensor_item(lam_ptree_get(st, "step.enc.a"), &stepv), LAM_OK);
  cr_assert_eq(stepv, 3);
  lam_ptree_free(st);
  /* Now b gets gradients too: its state starts fresh (its own step 1), so
   * it moves like a fresh optimizer's first step. */
  lam_tensor *gb = lam_tensor_full(ctx, LAM_F32, 1, (int64_t[]){3}, -2.0);
  lam_ptree_set(grads, "enc.b", gb);
  cr_assert_eq(lam_optimizer_step(opt, params, grads), LAM_OK, "%s", lam_last_error());
  float bv[3];
  lam_tensor_to_host(b, bv, sizeof bv);
  cr_assert_float_eq(bv[0], -1.0f + 0.1f, 1e-5, "b[0] = %g", bv[0]);
  st = lam_optimizer_state(opt);
  cr_assert_eq(lam_tensor_item(lam_ptree_get(st, "step.enc.b"), &stepv), LAM_OK);
  cr_assert_eq(stepv, 1);
  cr_assert_eq(lam_tensor_item(lam_ptree_get(st, "step.enc.a"), &stepv), LAM_OK);
  cr_assert_eq(stepv, 4);
  cr_assert_eq(lam_optimizer_step_count(opt), 4);
  lam_ptree_free(st);
  lam_optimizer_free(opt);
  lam_ptree_free(grads);
  lam_ptree_free(params);
  lam_tensor *all[] = {a, b, f, f_before, b_before, ga, gf, gb};
  for (size_t i = 0; i < 8; i++) lam_tensor_free(all[i]);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* State export -> import into a fresh optimizer continues bit-exactly. */
Test(optim, state_roundtrip_continues_exactly) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  for (int ci = 0; ci < N_COMBOS; ci++) {
    combo c = get_combo(ci);
    lam_ptree *p1 = lam_ptree_dict(), *p2 = lam_ptree_dict(), *grads = lam_ptree_dict();
    lam_tensor *x = vec(ctx, 7, 0.3), *gx = vec(ctx, 7, -0.2);
    lam_ptree_set(p1, "x", x);
    lam_ptree_set(grads, "x", gx);
    lam_optimizer *o1 = make_opt(&c), *o2 = make_opt(&c);
    for (int t = 0; t < 3; t++) cr_assert_eq(lam_optimizer_step(o1, p1, grads), LAM_OK);
    /* Snapshot: copy params and state into o2. */
    lam_tensor *x2 = lam_tensor_copy(x);
    lam_ptree_set(p2, "x", x2);
    lam_ptree *st = lam_optimizer_state(o1);
    cr_assert(st, "%s", lam_last_error());
    cr_assert_eq(lam_optimizer_load_state(o2, st, lam_optimizer_step_count(o1)), LAM_OK, "%s: %s",
                 c.name, lam_last_error());
    lam_ptree_free(st);
    cr_assert_eq(lam_optimizer_step_count(o2), 3);
    for (int t = 0; t < 3; t++) {
      cr_assert_eq(lam_optimizer_step(o1, p1, grads), LAM_OK);
      cr_assert_eq(lam_optimizer_step(o2, p2, grads), LAM_OK);
    }
    cr_assert(bits_equal(x, x2), "%s: resumed run differs", c.name);
    lam_optimizer_free(o1);
    lam_optimizer_free(o2);
    lam_ptree_free(p1);
    lam_ptree_free(p2);
    lam_ptree_free(grads);
    lam_tensor_free(x);
    lam_tensor_free(x2);
    lam_tensor_free(gx);
  }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

Test(optim, state_names_and_describe) {
  lam_ctx *ctx = tu_ctx();
  lam_ptree *p = lam_ptree_dict(), *g = lam_ptree_dict();
  lam_tensor *x = vec(ctx, 2, 1), *gx = vec(ctx, 2, 1);
  lam_ptree_set(p, "0.weight", x);
  lam_ptree_set(g, "0.weight", gx);
  struct { lam_optimizer *o; const char *names[4]; int n; } cases[] = {
      {lam_sgd(&(lam_sgd_opts){.lr = 0.1, .momentum = 0.9}), {"momentum_buffer.0.weight", "step.0.weight"}, 2},
      {lam_sgd(NULL), {NULL}, 0},
      {lam_adam(&(lam_adam_opts){.lr = 0.1, .beta1 = 0.9, .beta2 = 0.99, .amsgrad = true}),
       {"exp_avg.0.weight", "exp_avg_sq.0.weight", "max_exp_avg_sq.0.weight", "step.0.weight"}, 4},
      {lam_rmsprop(&(lam_rmsprop_opts){.lr = 0.1, .alpha = 0.9, .momentum = 0.1, .centered = true}),
       {"square_avg.0.weight", "grad_avg.0.weight", "momentum_buffer.0.weight", "step.0.weight"}, 4},
      {lam_adagrad(NULL), {"sum.0.weight", "step.0.weight"}, 2},
      {lam_lion(NULL), {"exp_avg.0.weight", "step.0.weight"}, 2},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cr_assert(cases[i].o, "%s", lam_last_error());
    cr_assert_eq(lam_optimizer_step(cases[i].o, p, g), LAM_OK, "%s", lam_last_error());
    lam_ptree *st = lam_optimizer_state(cases[i].o);
    cr_assert_eq(lam_ptree_leaf_count(st), cases[i].n, "%s", lam_optimizer_name(cases[i].o));
    for (int k = 0; k < cases[i].n; k++)
      cr_assert(lam_ptree_get(st, cases[i].names[k]), "%s lacks %s", lam_optimizer_name(cases[i].o),
                cases[i].names[k]);
    char buf[512];
    cr_assert_eq(lam_optimizer_describe(cases[i].o, buf, sizeof buf), LAM_OK);
    cr_assert(strstr(buf, lam_optimizer_name(cases[i].o)), "%s", buf);
    tu_assert_status(lam_optimizer_describe(cases[i].o, buf, 10), LAM_ERR_INVALID_ARGUMENT, "too small");
    lam_ptree_free(st);
    lam_optimizer_free(cases[i].o);
  }
  lam_ptree_free(p);
  lam_ptree_free(g);
  lam_tensor_free(x);
  lam_tensor_free(gx);
  lam_ctx_free(ctx);
}

/* ---- schedules ------------------------------------------------------------------ */

Test(optim, schedules_match_pytorch) {
  lam_ctx *ctx = tu_ctx();
  lam_ptree *golden = load_data(ctx, "schedules_golden.safetensors");
  struct { const char *name; lam_schedule s; int upto; } cases[] = {
      {"step", lam_schedule_step(0.1, 7, 0.5), 50},
      {"exponential", lam_schedule_exponential(0.1, 0.95), 50},
      {"cosine", lam_schedule_cosine(0.1, 40, 0.001), 41}, /* PyTorch rises again after T_max */
      {"linear", lam_schedule_linear(0.1, 0.1, 1.0, 10), 50},
      {"warmup_cosine", lam_schedule_warmup_cosine(0.001, 0.1, 5, 50, 1e-4), 50},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cr_assert_eq(lam_schedule_check(&cases[i].s), LAM_OK, "%s", lam_last_error());
    lam_tensor *t = lam_ptree_get(golden, cases[i].name);
    cr_assert(t);
    double *want = tu_read_f64(t);
    for (int k = 0; k < cases[i].upto; k++) {
      double got = lam_schedule_lr(&cases[i].s, k);
      cr_assert(fabs(got - want[k]) <= 1e-12 * fabs(want[k]) + 1e-15, "%s step %d: %.17g vs %.17g",
                cases[i].name, k, got, want[k]);
    }
    free(want);
  }
  /* After decay_steps the cosine schedules stay at the minimum (optax). */
  lam_schedule c = lam_schedule_cosine(0.1, 40, 0.001);
  cr_assert_eq(lam_schedule_lr(&c, 41), 0.001);
  cr_assert_eq(lam_schedule_lr(&c, 1000), 0.001);
  lam_schedule w = lam_schedule_warmup_cosine(0, 1, 10, 20, 0.5);
  cr_assert_eq(lam_schedule_lr(&w, 0), 0);
  cr_assert_eq(lam_schedule_lr(&w, 5), 0.5);
  cr_assert_eq(lam_schedule_lr(&w, 10), 1);
  cr_assert_eq(lam_schedule_lr(&w, 25), 0.5);
  cr_assert_eq(lam_schedule_lr(&w, -3), 0);
  lam_schedule k = lam_schedule_constant(0.25);
  cr_assert_eq(lam_schedule_lr(&k, 12345), 0.25);
  lam_ptree_free(golden);
  lam_ctx_free(ctx);
}

/* The optimizer takes its rate from the schedule at its step count. */
Test(optim, optimizer_uses_schedule) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  lam_ptree *p = lam_ptree_dict(), *g = lam_ptree_dict();
  lam_tensor *x = lam_tensor_zeros(ctx, lam_ctx_device(ctx)->fp64 ? LAM_F64 : LAM_F32,
                                   1, (int64_t[]){3});
  lam_tensor *gx = lam_tensor_full(ctx, lam_tensor_dtype(x), 1, (int64_t[]){3}, 1.0);
  lam_ptree_set(p, "x", x);
  lam_ptree_set(g, "x", gx);
  lam_sgd_opts so = lam_sgd_defaults();
  so.lr = 123; /* ignored while the schedule is set */
  lam_optimizer *opt = lam_sgd(&so);
  lam_schedule s = lam_schedule_step(0.1, 2, 0.5);
  cr_assert_eq(lam_optimizer_set_schedule(opt, &s), LAM_OK);
  double want = 0;
  for (int t = 0; t < 5; t++) {
    cr_assert_eq(lam_optimizer_lr(opt), lam_schedule_lr(&s, t));
    want -= lam_schedule_lr(&s, t);
    cr_assert_eq(lam_optimizer_step(opt, p, g), LAM_OK, "%s", lam_last_error());
  }
  double got;
  lam_tensor *x0 = lam_tensor_slice0(x, 0, 1);
  cr_assert_eq(lam_tensor_item(x0, &got), LAM_OK);
  cr_assert(fabs(got - want) < 1e-6, "%g vs %g", got, want);
  cr_assert_eq(lam_optimizer_set_schedule(opt, NULL), LAM_OK);
  cr_assert_eq(lam_optimizer_lr(opt), 123);
  cr_assert_eq(lam_optimizer_set_lr(opt, 0.5), LAM_OK);
  cr_assert_eq(lam_optimizer_lr(opt), 0.5);
  lam_tensor_free(x0);
  lam_optimizer_free(opt);
  lam_ptree_free(p);
  lam_ptree_free(g);
  lam_tensor_free(x);
  lam_tensor_free(gx);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- clipping -------------------------------------------------------------------- */

Test(optim, clip_grad_norm_matches_pytorch) {
  lam_ctx *ctx = tu_ctx();
  lam_ptree *golden = load_data(ctx, "clip_golden.safetensors");
  tu_mark m = tu_mark_now(ctx);
  const char *cases[] = {"clip", "noclip"};
  for (int c = 0; c < 2; c++) {
    char at[64];
    snprintf(at, sizeof at, "%s.in", cases[c]);
    lam_ptree *grads = golden_tree(golden, at, LAM_F32);
    double max_norm, want_total, total = -1;
    snprintf(at, sizeof at, "%s.max_norm", cases[c]);
    lam_tensor_item(lam_ptree_get(golden, at), &max_norm);
    snprintf(at, sizeof at, "%s.total", cases[c]);
    lam_tensor_item(lam_ptree_get(golden, at), &want_total);
    cr_assert_eq(lam_grad_clip_norm(grads, max_norm, &total), LAM_OK, "%s", lam_last_error());
    cr_assert(fabs(total - want_total) <= 1e-6 * want_total, "%s: total %.9g vs %.9g", cases[c],
              total, want_total);
    const char *keys[] = {"a", "b"};
    for (int k = 0; k < 2; k++) {
      snprintf(at, sizeof at, "%s.out.%s", cases[c], keys[k]);
      assert_leaf_close(lam_ptree_get(grads, keys[k]), lam_ptree_get(golden, at), 1e-7, 1e-6, at);
    }
    lam_ptree_free(grads);
  }
  tu_assert_no_leak(ctx, m);
  lam_ptree_free(golden);
  lam_ctx_free(ctx);
}

/* Many leaves of odd sizes plus one large one against a double reference. */
Test(optim, clip_grad_norm_sizes) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  const int64_t sizes[] = {1, 3, 7, 33, 1023, tu_small() ? 5000 : (1 << 22) + 5};
  tu_rng rng = tu_rng_make(11);
  lam_ptree *grads = lam_ptree_list();
  float *host[6];
  double sumsq = 0;
  for (int i = 0; i < 6; i++) {
    host[i] = malloc((size_t)sizes[i] * 4);
    tu_fill_uniform_f32(&rng, host[i], sizes[i], -1, 1);
    for (int64_t j = 0; j < sizes[i]; j++) sumsq += (double)host[i][j] * host[i][j];
    lam_tensor *t = lam_tensor_from_host(ctx, LAM_F32, 1, &sizes[i], host[i]);
    cr_assert_eq(lam_ptree_append(grads, t), LAM_OK);
    lam_tensor_free(t);
  }
  double norm = sqrt(sumsq), total;
  double max_norm = norm / 4;
  cr_assert_eq(lam_grad_clip_norm(grads, max_norm, &total), LAM_OK, "%s", lam_last_error());
  cr_assert(fabs(total - norm) <= 1e-5 * norm, "total %.9g vs %.9g", total, norm);
  double coef = max_norm / (total + 1e-6);
  double after = 0;
  for (int i = 0; i < 6; i++) {
    lam_tensor *t;
    lam_ptree_leaf(grads, i, NULL, &t);
    float *got = tu_read_f32(t);
    for (int64_t j = 0; j < sizes[i]; j++) {
      cr_assert(fabs(got[j] - host[i][j] * coef) <= 1e-6 + 1e-5 * fabs(host[i][j] * coef),
                "leaf %d element %lld", i, (long long)j);
      after += (double)got[j] * got[j];
    }
    free(got);
    free(host[i]);
  }
  cr_assert(fabs(sqrt(after) - max_norm) <= 1e-4 * max_norm);
  /* Below the limit nothing changes; an empty tree has norm 0. */
  cr_assert_eq(lam_grad_clip_norm(grads, 1e30, &total), LAM_OK);
  lam_ptree *empty = lam_ptree_dict();
  cr_assert_eq(lam_grad_clip_norm(empty, 1, &total), LAM_OK);
  cr_assert_eq(total, 0);
  cr_assert_eq(lam_grad_clip_norm(grads, 1.0, NULL), LAM_OK);
  lam_ptree_free(empty);
  lam_ptree_free(grads);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

Test(optim, clip_grad_norm_nonfinite_propagates) {
  lam_ctx *ctx = tu_ctx();
  float v[3] = {1, NAN, 2};
  lam_tensor *t = lam_tensor_from_host(ctx, LAM_F32, 1, (int64_t[]){3}, v);
  lam_ptree *g = lam_ptree_dict();
  lam_ptree_set(g, "x", t);
  double total;
  cr_assert_eq(lam_grad_clip_norm(g, 1.0, &total), LAM_OK);
  cr_assert(isnan(total));
  float out[3];
  lam_tensor_to_host(t, out, sizeof out);
  cr_assert(isnan(out[0]) && isnan(out[2]), "PyTorch multiplies by a NaN coefficient");
  lam_ptree_free(g);
  lam_tensor_free(t);
  lam_ctx_free(ctx);
}

/* ---- bad input ---------------------------------------------------------------------- */

Test(optim, bad_hyperparameters) {
  lam_sgd_opts s = lam_sgd_defaults();
  s.lr = -1;
  tu_assert_fails(lam_sgd(&s), LAM_ERR_INVALID_ARGUMENT, "lr = -1");
  s = lam_sgd_defaults();
  s.nesterov = true;
  tu_assert_fails(lam_sgd(&s), LAM_ERR_INVALID_ARGUMENT, "nesterov");
  s.momentum = 0.9;
  s.dampening = 0.1;
  tu_assert_fails(lam_sgd(&s), LAM_ERR_INVALID_ARGUMENT, "dampening");
  s = lam_sgd_defaults();
  s.momentum = -0.5;
  tu_assert_fails(lam_sgd(&s), LAM_ERR_INVALID_ARGUMENT, "momentum");
  s = lam_sgd_defaults();
  s.weight_decay = NAN;
  tu_assert_fails(lam_sgd(&s), LAM_ERR_INVALID_ARGUMENT, "weight_decay");
  lam_adam_opts a = lam_adam_defaults();
  a.beta1 = 1.0;
  tu_assert_fails(lam_adam(&a), LAM_ERR_INVALID_ARGUMENT, "beta1");
  a = lam_adamw_defaults();
  a.beta2 = -0.1;
  tu_assert_fails(lam_adamw(&a), LAM_ERR_INVALID_ARGUMENT, "beta2");
  a = lam_adam_defaults();
  a.eps = -1e-8;
  tu_assert_fails(lam_adam(&a), LAM_ERR_INVALID_ARGUMENT, "eps");
  a = lam_adam_defaults();
  a.lr = INFINITY;
  tu_assert_fails(lam_adam(&a), LAM_ERR_INVALID_ARGUMENT, "lr");
  lam_rmsprop_opts r = lam_rmsprop_defaults();
  r.alpha = -1;
  tu_assert_fails(lam_rmsprop(&r), LAM_ERR_INVALID_ARGUMENT, "alpha");
  r = lam_rmsprop_defaults();
  r.eps = -1;
  tu_assert_fails(lam_rmsprop(&r), LAM_ERR_INVALID_ARGUMENT, "eps");
  lam_adagrad_opts g = lam_adagrad_defaults();
  g.lr_decay = -1;
  tu_assert_fails(lam_adagrad(&g), LAM_ERR_INVALID_ARGUMENT, "lr_decay");
  g = lam_adagrad_defaults();
  g.initial_accumulator_value = -1;
  tu_assert_fails(lam_adagrad(&g), LAM_ERR_INVALID_ARGUMENT, "initial_accumulator_value");
  lam_lion_opts l = lam_lion_defaults();
  l.beta1 = 1.5;
  tu_assert_fails(lam_lion(&l), LAM_ERR_INVALID_ARGUMENT, "beta1");
  l = lam_lion_defaults();
  l.lr = -0.1;
  tu_assert_fails(lam_lion(&l), LAM_ERR_INVALID_ARGUMENT, "lr");
  /* Defaults are PyTorch's. */
  cr_assert_eq(lam_adam_defaults().lr, 1e-3);
  cr_assert_eq(lam_adam_defaults().beta2, 0.999);
  cr_assert_eq(lam_adam_defaults().eps, 1e-8);
  cr_assert_eq(lam_adamw_defaults().weight_decay, 1e-2);
  cr_assert_eq(lam_rmsprop_defaults().alpha, 0.99);
  cr_assert_eq(lam_adagrad_defaults().eps, 1e-10);
  cr_assert_eq(lam_lion_defaults().beta2, 0.99);
  lam_optimizer_free(NULL);
  cr_assert_str_eq(lam_optimizer_name(NULL), "unknown");
  cr_assert_eq(lam_optimizer_step_count(NULL), -1);
  cr_assert(isnan(lam_optimizer_lr(NULL)));
  char buf[64];
  tu_assert_status(lam_optimizer_describe(NULL, buf, sizeof buf), LAM_ERR_NULL, "opt");
  lam_optimizer *o = lam_adam(NULL);
  tu_assert_status(lam_optimizer_describe(o, NULL, 0), LAM_ERR_NULL, "buf");
  cr_assert_eq(lam_optimizer_kind(o), LAM_OPTIM_ADAM);
  lam_optimizer_free(o);
  cr_assert(isnan(lam_schedule_lr(NULL, 0)));
  tu_assert_status(lam_last_status(), LAM_ERR_NULL, "schedule");
}

Test(optim, bad_step_input_changes_nothing) {
  lam_ctx *ctx = tu_ctx();
  lam_ptree *p = lam_ptree_dict(), *g = lam_ptree_dict();
  lam_tensor *w = vec(ctx, 4, 1), *b = vec(ctx, 2, 1);
  lam_ptree_set(p, "w", w);
  lam_ptree_set(p, "b", b);
  lam_tensor *w0 = lam_tensor_copy(w);
  lam_tensor *gw = vec(ctx, 4, 1);
  lam_ptree_set(g, "w", gw);
  lam_optimizer *opt = lam_adam(NULL);
  tu_mark m = tu_mark_now(ctx);
  tu_assert_status(lam_optimizer_step(NULL, p, g), LAM_ERR_NULL, "opt");
  tu_assert_status(lam_optimizer_step(opt, NULL, g), LAM_ERR_NULL, "params");
  tu_assert_status(lam_optimizer_step(opt, p, NULL), LAM_ERR_NULL, "grads");
  /* A gradient without a parameter (checked before w's update is enqueued). */
  lam_tensor *stray = vec(ctx, 2, 0);
  lam_ptree_set(g, "decoder.x", stray);
  tu_assert_status(lam_optimizer_step(opt, p, g), LAM_ERR_NOT_FOUND, "\"decoder.x\"");
  cr_assert(bits_equal(w, w0), "w changed on a failed step");
  lam_ptree_remove(g, "decoder");
  /* Shape and dtype mismatch. */
  lam_tensor *gb = vec(ctx, 3, 0);
  lam_ptree_set(g, "b", gb);
  tu_assert_status(lam_optimizer_step(opt, p, g), LAM_ERR_SHAPE, "\"b\"");
  lam_tensor *gbi = lam_tensor_zeros(ctx, LAM_I32, 1, (int64_t[]){2});
  lam_ptree_set(g, "b", gbi);
  tu_assert_status(lam_optimizer_step(opt, p, g), LAM_ERR_DTYPE, "\"b\"");
  cr_assert(bits_equal(w, w0), "w changed on a failed step");
  cr_assert_eq(lam_optimizer_step_count(opt), 0);
  lam_ptree_remove(g, "b");
  /* Integer parameter with an integer gradient. */
  lam_tensor *ip = lam_tensor_zeros(ctx, LAM_I32, 1, (int64_t[]){2});
  lam_ptree_set(p, "i", ip);
  lam_ptree_set(g, "i", ip);
  tu_assert_status(lam_optimizer_step(opt, p, g), LAM_ERR_DTYPE, "\"i\"");
  lam_ptree_remove(g, "i");
  lam_ptree_remove(p, "i");
  /* A loaded state of the wrong shape is caught at the step. */
  lam_ptree *bad = lam_ptree_dict();
  lam_tensor *z = lam_tensor_zeros(ctx, LAM_F32, 1, (int64_t[]){5});
  lam_ptree_set(bad, "exp_avg.w", z);
  lam_ptree_set(bad, "exp_avg_sq.w", z);
  cr_assert_eq(lam_optimizer_load_state(opt, bad, 0), LAM_OK, "%s", lam_last_error());
  tu_assert_status(lam_optimizer_step(opt, p, g), LAM_ERR_SHAPE, "\"w\"");
  cr_assert(bits_equal(w, w0));
  lam_ptree_free(bad);
  lam_tensor_free(z);
  lam_tensor_free(stray);
  lam_tensor_free(gb);
  lam_tensor_free(gbi);
  lam_tensor_free(ip);
  lam_optimizer_free(opt);
  tu_assert_no_leak(ctx, m);
  lam_ptree_free(p);
  lam_ptree_free(g);
  lam_tensor *all[] = {w, b, w0, gw};
  for (int i = 0; i < 4; i++) lam_tensor_free(all[i]);
  lam_ctx_free(ctx);
}

Test(optim, bad_load_state) {
  lam_ctx *ctx = tu_ctx();
  lam_optimizer *opt = lam_adam(NULL);
  lam_tensor *z3 = lam_tensor_zeros(ctx, LAM_F32, 1, (int64_t[]){3});
  lam_tensor *z4 = lam_tensor_zeros(ctx, LAM_F32, 1, (int64_t[]){4});
  lam_tensor *zi = lam_tensor_zeros(ctx, LAM_I32, 1, (int64_t[]){3});
  lam_tensor *neg = lam_tensor_full(ctx, LAM_I32, 0, NULL, -2);
  tu_mark m = tu_mark_now(ctx);
  tu_assert_status(lam_optimizer_load_state(NULL, NULL, 0), LAM_ERR_NULL, "opt");
  lam_ptree *s = lam_ptree_dict();
  tu_assert_status(lam_optimizer_load_state(opt, s, -1), LAM_ERR_INVALID_ARGUMENT, "negative");
  lam_ptree_set(s, "momentum_buffer.w", z3);
  tu_assert_status(lam_optimizer_load_state(opt, s, 0), LAM_ERR_INVALID_ARGUMENT, "momentum_buffer.w");
  lam_ptree_free(s);
  s = lam_ptree_dict();
  lam_ptree_set(s, "exp_avg.w", z3);
  tu_assert_status(lam_optimizer_load_state(opt, s, 0), LAM_ERR_INVALID_ARGUMENT, "exp_avg_sq.w");
  lam_ptree_set(s, "exp_avg_sq.w", z4);
  tu_assert_status(lam_optimizer_load_state(opt, s, 0), LAM_ERR_SHAPE, "exp_avg_sq.w");
  lam_ptree_set(s, "exp_avg_sq.w", zi);
  tu_assert_status(lam_optimizer_load_state(opt, s, 0), LAM_ERR_DTYPE, "exp_avg_sq.w");
  lam_ptree_set(s, "exp_avg_sq.w", z3);
  lam_ptree_set(s, "step.w", neg);
  tu_assert_status(lam_optimizer_load_state(opt, s, 0), LAM_ERR_INVALID_ARGUMENT, "step.w");
  lam_ptree_remove(s, "step");
  cr_assert_eq(lam_optimizer_load_state(opt, s, 7), LAM_OK, "%s", lam_last_error());
  cr_assert_eq(lam_optimizer_step_count(opt), 7);
  lam_ptree *back = lam_optimizer_state(opt);
  double st;
  cr_assert_eq(lam_tensor_item(lam_ptree_get(back, "step.w"), &st), LAM_OK);
  cr_assert_eq(st, 7, "a missing step entry takes the step count");
  lam_ptree_free(back);
  lam_ptree_free(s);
  lam_optimizer_free(opt);
  tu_assert_no_leak(ctx, m);
  tu_assert_fails(lam_optimizer_state(NULL), LAM_ERR_NULL, "opt");
  lam_tensor_free(z3);
  lam_tensor_free(z4);
  lam_tensor_free(zi);
  lam_tensor_free(neg);
  lam_ctx_free(ctx);
}

Test(optim, bad_schedule_and_clip_input) {
  lam_schedule s = lam_schedule_step(0.1, 0, 0.5);
  tu_assert_status(lam_schedule_check(&s), LAM_ERR_INVALID_ARGUMENT, "step_size");
  cr_assert(isnan(lam_schedule_lr(&s, 3)));
  s = lam_schedule_exponential(-0.1, 0.5);
  tu_assert_status(lam_schedule_check(&s), LAM_ERR_INVALID_ARGUMENT, "lr");
  s = lam_schedule_warmup_cosine(0, 0.1, 10, 10, 0);
  tu_assert_status(lam_schedule_check(&s), LAM_ERR_INVALID_ARGUMENT, "warmup_steps");
  s = lam_schedule_cosine(0.1, 0, 0);
  tu_assert_status(lam_schedule_check(&s), LAM_ERR_INVALID_ARGUMENT, "decay_steps");
  s = lam_schedule_linear(0.1, -1, 1, 5);
  tu_assert_status(lam_schedule_check(&s), LAM_ERR_INVALID_ARGUMENT, "start_factor");
  s.kind = (lam_schedule_kind)99;
  tu_assert_status(lam_schedule_check(&s), LAM_ERR_INVALID_ARGUMENT, "kind");
  tu_assert_status(lam_schedule_check(NULL), LAM_ERR_NULL, "schedule");
  lam_optimizer *opt = lam_sgd(NULL);
  tu_assert_status(lam_optimizer_set_schedule(opt, &s), LAM_ERR_INVALID_ARGUMENT, "kind");
  tu_assert_status(lam_optimizer_set_schedule(NULL, NULL), LAM_ERR_NULL, "opt");
  tu_assert_status(lam_optimizer_set_lr(opt, -1), LAM_ERR_INVALID_ARGUMENT, "lr");
  lam_optimizer_free(opt);

  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  lam_ptree *g = lam_ptree_dict();
  lam_tensor *a = lam_tensor_zeros(ctx, LAM_F32, 1, (int64_t[]){3});
  lam_tensor *i = lam_tensor_zeros(ctx, LAM_I32, 1, (int64_t[]){3});
  lam_ptree_set(g, "a", a);
  tu_assert_status(lam_grad_clip_norm(NULL, 1, NULL), LAM_ERR_NULL, "grads");
  tu_assert_status(lam_grad_clip_norm(g, -1, NULL), LAM_ERR_INVALID_ARGUMENT, "max_norm");
  tu_assert_status(lam_grad_clip_norm(g, NAN, NULL), LAM_ERR_INVALID_ARGUMENT, "max_norm");
  lam_ptree_set(g, "i", i);
  tu_assert_status(lam_grad_clip_norm(g, 1, NULL), LAM_ERR_DTYPE, "\"i\"");
  if (lam_ctx_device(ctx)->fp64) {
    lam_tensor *d = lam_tensor_zeros(ctx, LAM_F64, 1, (int64_t[]){3});
    lam_ptree_set(g, "i", d);
    tu_assert_status(lam_grad_clip_norm(g, 1, NULL), LAM_ERR_DTYPE, "one float dtype");
    lam_tensor_free(d);
  }
  lam_ptree_free(g);
  lam_tensor_free(a);
  lam_tensor_free(i);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}
