/* test_loss.c: every loss and reduction against PyTorch values and input
 * gradients (tests/data/loss_golden.h from tools/gen_loss_golden.py), one
 * table row per case as in ggml's test-backend-ops; finite-difference
 * checks; bad input with nothing leaked. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autodiff/tape.h"
#include "data/loss_golden.h"
#include "testutil.h"

typedef enum { CE, NLL, BCE, MSE, L1, SMOOTH_L1, HUBER, KL, HINGE, MARGIN, TRIPLET, COS, GNLL } kind;

typedef struct {
  const char *name;
  kind k;
  int n_in;                 /* float inputs (the class target, if any, is extra) */
  const double *in[3];
  int ndim;
  int64_t shape[3];
  const int *target;        /* class indices (CE/NLL) or NULL */
  int tndim;
  int64_t tshape[3];
  struct { double ls, beta, delta, margin, p; int swap, full, log_target, from_logits; } o;
  const double *y[3], *w[3], *g[3][3]; /* per reduction mean/sum/none: loss, cotangent, grads */
  int grad_mask;            /* which inputs have golden grads */
  const double *weight;     /* class weights */
  int wn;
} loss_case;

typedef struct {
  const loss_case *c;
  lam_reduction red;
  lam_tensor *target, *weight;
} run_ctx;

static lam_tensor *call_loss(lam_tensor *const *xs, int n, void *user) {
  run_ctx *r = user;
  lam_loss_opts o = lam_loss_defaults();
  o.label_smoothing = r->c->o.ls;
  o.beta = r->c->o.beta;
  o.delta = r->c->o.delta;
  o.margin = r->c->o.margin;
  o.p = r->c->o.p;
  o.swap = r->c->o.swap;
  o.full = r->c->o.full;
  o.log_target = r->c->o.log_target;
  o.from_logits = r->c->o.from_logits;
  o.reduction = r->red;
  o.weight = r->weight;
  switch (r->c->k) {
    case CE: return lam_cross_entropy(xs[0], r->target ? r->target : xs[1], &o);
    case NLL: return lam_nll_loss(xs[0], r->target, &o);
    case BCE: return lam_binary_cross_entropy(xs[0], xs[1], &o);
    case MSE: return lam_mse_loss(xs[0], xs[1], &o);
    case L1: return lam_l1_loss(xs[0], xs[1], &o);
    case SMOOTH_L1: return lam_smooth_l1_loss(xs[0], xs[1], &o);
    case HUBER: return lam_huber_loss(xs[0], xs[1], &o);
    case KL: return lam_kl_div_loss(xs[0], xs[1], &o);
    case HINGE: return lam_hinge_loss(xs[0], xs[1], &o);
    case MARGIN: return lam_margin_ranking_loss(xs[0], xs[1], xs[2], &o);
    case TRIPLET: return lam_triplet_margin_loss(xs[0], xs[1], xs[2], &o);
    case COS: return lam_cosine_similarity_loss(xs[0], xs[1], &o);
    case GNLL: return lam_gaussian_nll_loss(xs[0], xs[1], xs[2], &o);
  }
  return NULL;
}

#define STD(ls, margin) {ls, 1, 1, margin, 2, 0, 0, 0, 1}
#define OPT(ls, beta, delta, margin, p, swap, full, log_target, from_logits) {ls, beta, delta, margin, p, swap, full, log_target, from_logits}
#define R3(pre, suf) {lam_##pre##_mean_##suf, lam_##pre##_sum_##suf, lam_##pre##_none_##suf}
#define G1(pre) {{lam_##pre##_mean_g0}, {lam_##pre##_sum_g0}, {lam_##pre##_none_g0}}
#define G2(pre, a, b) {{lam_##pre##_mean_g##a, lam_##pre##_mean_g##b}, {lam_##pre##_sum_g##a, lam_##pre##_sum_g##b}, {lam_##pre##_none_g##a, lam_##pre##_none_g##b}}
#define G3(pre) {{lam_##pre##_mean_g0, lam_##pre##_mean_g1, lam_##pre##_mean_g2}, {lam_##pre##_sum_g0, lam_##pre##_sum_g1, lam_##pre##_sum_g2}, {lam_##pre##_none_g0, lam_##pre##_none_g1, lam_##pre##_none_g2}}

static const int plain_target[6] = {0, 4, 2, 0, 1, 4}; /* PyTorch case clamps -100 to 0 */

static void run_case(lam_ctx *ctx, const loss_case *c) {
  lam_tensor *xs[3] = {0};
  for (int i = 0; i < c->n_in; i++) {
    const int64_t *shape = c->shape;
    xs[i] = lam_tensor_from_host(ctx, LAM_F64, c->ndim, shape, c->in[i]);
  }
  lam_tensor *tgt = NULL, *weight = NULL;
  if (c->target) {
    int32_t t[32];
    int64_t n = 1;
    for (int i = 0; i < c->tndim; i++) n *= c->tshape[i];
    for (int64_t i = 0; i < n; i++) t[i] = c->target[i];
    tgt = lam_tensor_from_host(ctx, LAM_I32, c->tndim, c->tshape, t);
  }
  if (c->weight) weight = lam_tensor_from_host(ctx, LAM_F64, 1, (int64_t[]){c->wn}, c->weight);
  const lam_reduction reds[3] = {LAM_REDUCTION_MEAN, LAM_REDUCTION_SUM, LAM_REDUCTION_NONE};
  for (int r = 0; r < 3; r++) {
    tu_mark m = tu_mark_now(ctx);
    run_ctx rc = {c, reds[r], tgt, weight};
    lam_tensor *y = call_loss(xs, c->n_in, &rc);
    cr_assert(y, "%s/%d: %s", c->name, r, lam_last_error());
    int64_t ny = lam_tensor_numel(y);
    double *gy = tu_read_f64(y);
    char what[96];
    snprintf(what, sizeof what, "%s reduction %d value", c->name, r);
    tu_assert_close_f64(gy, c->y[r], ny, 1e-10, 1e-8, what);
    free(gy);
    lam_tensor *w = lam_tensor_from_host(ctx, LAM_F64, lam_tensor_ndim(y), lam_tensor_shape(y), c->w[r]);
    lam_tensor *g[3] = {0};
    cr_assert_eq(lam__vjp(ctx, call_loss, &rc, xs, c->n_in, w, NULL, g), LAM_OK, "%s: %s", c->name, lam_last_error());
    int gi = 0;
    for (int i = 0; i < c->n_in; i++) {
      if (c->grad_mask & (1 << i)) {
        double *gv = tu_read_f64(g[i]);
        snprintf(what, sizeof what, "%s reduction %d grad of input %d", c->name, r, i);
        tu_assert_close_f64(gv, c->g[r][gi++], lam_tensor_numel(xs[i]), 1e-10, 1e-7, what);
        free(gv);
      }
      lam_tensor_free(g[i]);
    }
    lam_tensor_free(w);
    lam_tensor_free(y);
    tu_assert_no_leak(ctx, m);
  }
  for (int i = 0; i < c->n_in; i++) lam_tensor_free(xs[i]);
  lam_tensor_free(tgt);
  lam_tensor_free(weight);
}

static const loss_case cases[] = {
  {"ce_plain", CE, 1, {lam_ce_logits}, 2, {6, 5}, plain_target, 1, {6}, STD(0, NAN), R3(ce_plain, y), R3(ce_plain, w), G1(ce_plain), 1, NULL, 0},
  {"ce_full", CE, 1, {lam_ce_logits}, 2, {6, 5}, lam_ce_target, 1, {6}, STD(0.2, NAN), R3(ce_full, y), R3(ce_full, w), G1(ce_full), 1, lam_ce_weight, 5},
  {"ce_prob", CE, 2, {lam_ce_logits, lam_ce_probs}, 2, {6, 5}, NULL, 0, {0}, STD(0.1, NAN), R3(ce_prob, y), R3(ce_prob, w), G1(ce_prob), 1, NULL, 0},
  {"ce_sp", CE, 1, {lam_ce_sp_logits}, 3, {2, 3, 4}, lam_ce_sp_target, 2, {2, 4}, STD(0, NAN), R3(ce_sp, y), R3(ce_sp, w), G1(ce_sp), 1, NULL, 0},
  {"nll", NLL, 1, {lam_nll_logp}, 2, {6, 5}, lam_ce_target, 1, {6}, STD(0, NAN), R3(nll, y), R3(nll, w), G1(nll), 1, lam_ce_weight, 5},
  {"bce_logits", BCE, 2, {lam_bce_x, lam_bce_t}, 2, {3, 4}, NULL, 0, {0}, STD(0, NAN), R3(bce_logits, y), R3(bce_logits, w), G1(bce_logits), 1, NULL, 0},
  {"bce_probs", BCE, 2, {lam_bce_p, lam_bce_t}, 2, {3, 4}, NULL, 0, {0}, OPT(0, 1, 1, NAN, 2, 0, 0, 0, 0), R3(bce_probs, y), R3(bce_probs, w), G1(bce_probs), 1, NULL, 0},
  {"mse", MSE, 2, {lam_reg_a, lam_reg_b}, 2, {3, 5}, NULL, 0, {0}, STD(0, NAN), R3(mse, y), R3(mse, w), G1(mse), 1, NULL, 0},
  {"l1", L1, 2, {lam_reg_a, lam_reg_b}, 2, {3, 5}, NULL, 0, {0}, STD(0, NAN), R3(l1, y), R3(l1, w), G1(l1), 1, NULL, 0},
  {"smooth_l1", SMOOTH_L1, 2, {lam_reg_a, lam_reg_b}, 2, {3, 5}, NULL, 0, {0}, OPT(0, 0.7, 1, NAN, 2, 0, 0, 0, 1), R3(smooth_l1, y), R3(smooth_l1, w), G1(smooth_l1), 1, NULL, 0},
  {"huber", HUBER, 2, {lam_reg_a, lam_reg_b}, 2, {3, 5}, NULL, 0, {0}, OPT(0, 1, 0.8, NAN, 2, 0, 0, 0, 1), R3(huber, y), R3(huber, w), G1(huber), 1, NULL, 0},
  {"hinge", HINGE, 2, {lam_reg_a, lam_reg_sign}, 2, {3, 5}, NULL, 0, {0}, STD(0, NAN), R3(hinge, y), R3(hinge, w), G1(hinge), 1, NULL, 0},
  {"margin_ranking", MARGIN, 3, {lam_reg_a, lam_reg_b, lam_reg_sign}, 2, {3, 5}, NULL, 0, {0}, STD(0, 0.3), R3(margin_ranking, y), R3(margin_ranking, w), G2(margin_ranking, 0, 1), 3, NULL, 0},
  {"kl", KL, 2, {lam_kl_input, lam_kl_target}, 2, {4, 3}, NULL, 0, {0}, STD(0, NAN), R3(kl, y), R3(kl, w), G1(kl), 1, NULL, 0},
  {"kl_log", KL, 2, {lam_kl_input, lam_kl_log_target}, 2, {4, 3}, NULL, 0, {0}, OPT(0, 1, 1, NAN, 2, 0, 0, 1, 1), R3(kl_log, y), R3(kl_log, w), G1(kl_log), 1, NULL, 0},
  {"triplet", TRIPLET, 3, {lam_tri_a, lam_tri_p, lam_tri_n}, 2, {4, 6}, NULL, 0, {0}, STD(0, 1.0), R3(triplet, y), R3(triplet, w), G3(triplet), 7, NULL, 0},
  {"triplet_swap", TRIPLET, 3, {lam_tri_a, lam_tri_p, lam_tri_n}, 2, {4, 6}, NULL, 0, {0}, OPT(0, 1, 1, 2.0, 1, 1, 0, 0, 1), R3(triplet_swap, y), R3(triplet_swap, w), G3(triplet_swap), 7, NULL, 0},
  {"cos", COS, 2, {lam_cos_x1, lam_cos_x2}, 3, {3, 4, 2}, NULL, 0, {0}, STD(0, NAN), R3(cos, y), R3(cos, w), G2(cos, 0, 1), 3, NULL, 0},
  {"gnll", GNLL, 3, {lam_gnll_mu, lam_gnll_t, lam_gnll_var}, 2, {5, 2}, NULL, 0, {0}, OPT(0, 1, 1, NAN, 2, 0, 1, 0, 1), R3(gnll, y), R3(gnll, w), G2(gnll, 0, 2), 5, NULL, 0},
};

Test(loss, every_loss_and_reduction_matches_pytorch) {
  lam_ctx *ctx = tu_ctx();
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(ctx, &cases[i]);
  lam_ctx_free(ctx);
}

Test(loss, kl_batchmean) {
  lam_ctx *ctx = tu_ctx();
  lam_tensor *x = lam_tensor_from_host(ctx, LAM_F64, 2, (int64_t[]){4, 3}, lam_kl_input);
  lam_tensor *t = lam_tensor_from_host(ctx, LAM_F64, 2, (int64_t[]){4, 3}, lam_kl_target);
  lam_loss_opts o = lam_loss_defaults();
  o.reduction = LAM_REDUCTION_BATCHMEAN;
  lam_tensor *y = lam_kl_div_loss(x, t, &o);
  double v;
  cr_assert_eq(lam_tensor_item(y, &v), LAM_OK, "%s", lam_last_error());
  cr_assert_float_eq(v, lam_kl_batchmean_y[0], 1e-12);
  o.reduction = LAM_REDUCTION_BATCHMEAN;
  tu_assert_fails(lam_mse_loss(x, t, &o), LAM_ERR_INVALID_ARGUMENT, "reduction 3");
  lam_tensor_free(y);
  lam_tensor_free(x);
  lam_tensor_free(t);
  lam_ctx_free(ctx);
}

typedef struct { lam_tensor *target; } ce_fd;

static lam_tensor *ce_fn(lam_tensor *const *xs, int n, void *user) {
  ce_fd *c = user;
  lam_loss_opts o = lam_loss_defaults();
  o.label_smoothing = 0.15;
  return lam_cross_entropy(xs[0], c->target, &o);
}

Test(loss, gradient_checks_and_large_logits) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(3);
  lam_tensor *x = tu_rand_f64(ctx, &r, 3, (int64_t[]){3, 4, 5}, -2, 2);
  int32_t t[15];
  for (int i = 0; i < 15; i++) t[i] = (int32_t)tu_randint(&r, 0, 4);
  ce_fd c = {lam_tensor_from_host(ctx, LAM_I32, 2, (int64_t[]){3, 5}, t)};
  tu_gradcheck(ctx, ce_fn, &c, &x, 1, 1e-6, 1e-6, 1, 1e-3, "cross_entropy spatial + smoothing");
  /* Logits of +-1e4 stay finite in f32. */
  float big[4] = {1e4f, -1e4f, 0, 5e3f};
  lam_tensor *xb = lam_tensor_from_host(ctx, LAM_F32, 2, (int64_t[]){1, 4}, big);
  int32_t tb = 1;
  lam_tensor *tt = lam_tensor_from_host(ctx, LAM_I32, 1, (int64_t[]){1}, &tb);
  lam_tensor *y = lam_cross_entropy(xb, tt, NULL);
  double v;
  cr_assert_eq(lam_tensor_item(y, &v), LAM_OK);
  cr_assert(isfinite(v) && fabs(v - 2e4) < 1, "loss %g", v);
  lam_tensor *xl = lam_tensor_from_host(ctx, LAM_F32, 2, (int64_t[]){2, 2}, (float[]){50, -50, 30, -80});
  lam_tensor *tl = lam_tensor_from_host(ctx, LAM_F32, 2, (int64_t[]){2, 2}, (float[]){1, 0, 0, 1});
  lam_tensor *yl = lam_binary_cross_entropy(xl, tl, NULL);
  cr_assert_eq(lam_tensor_item(yl, &v), LAM_OK);
  cr_assert(isfinite(v) && fabs(v - (30 + 80) / 4.0) < 1e-3, "bce with large logits %g", v);
  lam_tensor *all[] = {x, c.target, xb, tt, y, xl, tl, yl};
  for (size_t i = 0; i < 8; i++) lam_tensor_free(all[i]);
  lam_ctx_free(ctx);
}

Test(loss, bad_input) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  lam_tensor *a = lam_tensor_zeros(ctx, LAM_F32, 2, (int64_t[]){3, 4});
  lam_tensor *b = lam_tensor_zeros(ctx, LAM_F32, 2, (int64_t[]){4, 3});
  lam_tensor *d = lam_tensor_zeros(ctx, LAM_F64, 2, (int64_t[]){3, 4});
  lam_tensor *ti = lam_tensor_zeros(ctx, LAM_I32, 1, (int64_t[]){4});
  lam_tensor *one = lam_tensor_zeros(ctx, LAM_F32, 1, (int64_t[]){4});
  lam_error_clear();
  tu_assert_fails(lam_mse_loss(a, b, NULL), LAM_ERR_SHAPE, "input is [3,4] but target is [4,3]");
  tu_assert_fails(lam_l1_loss(a, d, NULL), LAM_ERR_DTYPE, "f64");
  lam_error_clear();
  tu_assert_fails(lam_mse_loss(NULL, a, NULL), LAM_ERR_NULL, "input");
  tu_assert_fails(lam_cross_entropy(a, ti, NULL), LAM_ERR_SHAPE, "target [4]");
  tu_assert_fails(lam_cross_entropy(one, ti, NULL), LAM_ERR_SHAPE, "[N, C, ...]");
  lam_loss_opts o = lam_loss_defaults();
  o.label_smoothing = 1.5;
  tu_assert_fails(lam_cross_entropy(a, a, &o), LAM_ERR_INVALID_ARGUMENT, "label_smoothing");
  o = lam_loss_defaults();
  o.weight = one; /* 4 weights for 4 classes is fine; 3 rows of targets are needed */
  lam_tensor *t3 = lam_tensor_zeros(ctx, LAM_I32, 1, (int64_t[]){3});
  lam_tensor *w3 = lam_tensor_zeros(ctx, LAM_F32, 1, (int64_t[]){3});
  o.weight = w3;
  tu_assert_fails(lam_cross_entropy(a, t3, &o), LAM_ERR_SHAPE, "class weights");
  tu_assert_fails(lam_nll_loss(a, a, NULL), LAM_ERR_DTYPE, "i32");
  o = lam_loss_defaults();
  o.reduction = (lam_reduction)9;
  tu_assert_fails(lam_mse_loss(a, a, &o), LAM_ERR_INVALID_ARGUMENT, "reduction 9");
  o = lam_loss_defaults();
  o.delta = 0;
  tu_assert_fails(lam_huber_loss(a, a, &o), LAM_ERR_INVALID_ARGUMENT, "delta");
  lam_error_clear();
  tu_assert_fails(lam_gaussian_nll_loss(a, a, NULL, NULL), LAM_ERR_NULL, "var");
  o = lam_loss_defaults();
  o.axis = 5;
  tu_assert_fails(lam_cosine_similarity_loss(a, a, &o), LAM_ERR_INVALID_ARGUMENT, "axis 5");
  lam_tensor *all[] = {a, b, d, ti, one, t3, w3};
  for (size_t i = 0; i < 7; i++) lam_tensor_free(all[i]);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}
