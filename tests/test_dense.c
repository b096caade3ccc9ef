/* test_dense.c: linear, bilinear, embedding, prelu and glu layers against
 * PyTorch golden outputs and gradients (tests/data/layers_golden.h from
 * tools/gen_layers_golden.py), finite-difference gradient checks for every
 * parameter, and bad input on constructors and apply. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autodiff/tape.h"
#include "data/layers_golden.h"
#include "testutil.h"

static lam_tensor *T(lam_ctx *ctx, const double *v, int ndim, const int64_t *shape) {
  lam_tensor *t = lam_tensor_from_host(ctx, LAM_F64, ndim, shape, v);
  cr_assert(t, "%s", lam_last_error());
  return t;
}

static void expect(lam_tensor *t, const double *want, int64_t n, const char *what) {
  cr_assert(t, "%s: %s", what, lam_last_error());
  cr_assert_eq(lam_tensor_numel(t), n, "%s: %lld elements, want %lld", what, (long long)lam_tensor_numel(t), (long long)n);
  double *got = tu_read_f64(t);
  tu_assert_close_f64(got, want, n, 1e-10, 1e-9, what);
  free(got);
}

/* Applies `layer` with params {names[i]: xs[i+1]} to xs[0] (or to the
 * concatenation xs[0], xs[1] when two_inputs). */
typedef struct {
  lam_layer *layer;
  const char *names[3];
  int n_params;
  int n_inputs;
} apply_case;

static lam_tensor *apply_fn(lam_tensor *const *xs, int n, void *user) {
  apply_case *c = user;
  lam_ptree *p = lam_ptree_dict(), *s = lam_ptree_dict();
  for (int i = 0; i < c->n_params; i++) lam_ptree_set(p, c->names[i], xs[c->n_inputs + i]);
  lam_tensor *x = c->n_inputs == 2 ? lam_concat(xs, 2, -1) : lam_tensor_retain(xs[0]);
  lam_tensor *y = NULL;
  lam_layer_apply_with(c->layer, p, s, x, NULL, &y);
  lam_tensor_free(x);
  lam_ptree_free(p);
  lam_ptree_free(s);
  return y;
}

static void check_case(lam_ctx *ctx, apply_case *c, lam_tensor **xs, int n, const double *y_want,
                       const double *cot, const double *const *g_want, const char *what) {
  tu_mark m = tu_mark_now(ctx);
  lam_tensor *y = apply_fn(xs, n, c);
  expect(y, y_want, lam_tensor_numel(y), what);
  lam_tensor *w = T(ctx, cot, lam_tensor_ndim(y), lam_tensor_shape(y));
  lam_tensor *g[4] = {0};
  cr_assert_eq(lam__vjp(ctx, apply_fn, c, xs, n, w, NULL, g), LAM_OK, "%s: %s", what, lam_last_error());
  for (int i = 0; i < n; i++) {
    if (g_want[i]) expect(g[i], g_want[i], lam_tensor_numel(xs[i]), what);
    lam_tensor_free(g[i]);
  }
  lam_tensor_free(w);
  lam_tensor_free(y);
  tu_assert_no_leak(ctx, m);
  /* And a finite-difference check of every input and parameter. */
  tu_gradcheck(ctx, apply_fn, c, xs, n, 1e-6, 1e-6, 1, 2e-3, what);
}

Test(dense, linear_matches_pytorch) {
  lam_ctx *ctx = tu_ctx();
  lam_layer *lin = lam_nn_linear(5, 3, NULL);
  apply_case c = {lin, {"weight", "bias"}, 2, 1};
  lam_tensor *xs[3] = {T(ctx, lam_lin_x, 2, (int64_t[]){4, 5}), T(ctx, lam_lin_w, 2, (int64_t[]){3, 5}),
                       T(ctx, lam_lin_b, 1, (int64_t[]){3})};
  const double *gw[] = {lam_lin_gx, lam_lin_gw, lam_lin_gb};
  check_case(ctx, &c, xs, 3, lam_lin_y, lam_lin_cot, gw, "linear");
  for (int i = 0; i < 3; i++) lam_tensor_free(xs[i]);
  lam_layer_free(lin);

  lam_linear_opts o = lam_linear_defaults();
  o.bias = false;
  lam_layer *lin3 = lam_nn_linear(4, 2, &o);
  apply_case c3 = {lin3, {"weight"}, 1, 1};
  lam_tensor *x3[2] = {T(ctx, lam_lin3_x, 3, (int64_t[]){2, 3, 4}), T(ctx, lam_lin3_w, 2, (int64_t[]){2, 4})};
  const double *g3[] = {lam_lin3_gx, lam_lin3_gw};
  check_case(ctx, &c3, x3, 2, lam_lin3_y, lam_lin3_cot, g3, "linear rank 3, no bias");
  lam_tensor_free(x3[0]);
  lam_tensor_free(x3[1]);
  lam_layer_free(lin3);
  lam_ctx_free(ctx);
}

Test(dense, bilinear_matches_pytorch) {
  lam_ctx *ctx = tu_ctx();
  lam_layer *bil = lam_nn_bilinear(3, 4, 2, NULL);
  apply_case c = {bil, {"weight", "bias"}, 2, 2};
  lam_tensor *xs[4] = {T(ctx, lam_bil_x1, 2, (int64_t[]){5, 3}), T(ctx, lam_bil_x2, 2, (int64_t[]){5, 4}),
                       T(ctx, lam_bil_w, 3, (int64_t[]){2, 3, 4}), T(ctx, lam_bil_b, 1, (int64_t[]){2})};
  const double *gw[] = {lam_bil_g1, lam_bil_g2, lam_bil_gw, lam_bil_gb};
  check_case(ctx, &c, xs, 4, lam_bil_y, lam_bil_cot, gw, "bilinear");
  /* The functional form on two separate inputs agrees. */
  lam_tensor *y = lam_bilinear(xs[0], xs[1], xs[2], xs[3]);
  expect(y, lam_bil_y, 10, "lam_bilinear");
  lam_tensor_free(y);
  for (int i = 0; i < 4; i++) lam_tensor_free(xs[i]);
  lam_layer_free(bil);
  lam_ctx_free(ctx);
}

typedef struct {
  lam_layer *layer;
  lam_tensor *idx;
} emb_case;

static lam_tensor *emb_fn(lam_tensor *const *xs, int n, void *user) {
  emb_case *c = user;
  lam_ptree *p = lam_ptree_dict(), *s = lam_ptree_dict();
  lam_ptree_set(p, "weight", xs[0]);
  lam_tensor *y = NULL;
  lam_layer_apply_with(c->layer, p, s, c->idx, NULL, &y);
  lam_ptree_free(p);
  lam_ptree_free(s);
  return y;
}

Test(dense, embedding_matches_pytorch) {
  lam_ctx *ctx = tu_ctx();
  emb_case c = {lam_nn_embedding(7, 4, NULL), NULL};
  int32_t idx[6];
  for (int i = 0; i < 6; i++) idx[i] = lam_emb_idx[i];
  c.idx = lam_tensor_from_host(ctx, LAM_I32, 2, (int64_t[]){2, 3}, idx);
  lam_tensor *w = T(ctx, lam_emb_w, 2, (int64_t[]){7, 4});
  lam_tensor *y = emb_fn(&w, 1, &c);
  cr_assert_eq(lam_tensor_ndim(y), 3);
  expect(y, lam_emb_y, 24, "embedding (scaled by sqrt(dim))");
  lam_tensor *cot = T(ctx, lam_emb_cot, 3, (int64_t[]){2, 3, 4});
  lam_tensor *g = NULL;
  cr_assert_eq(lam__vjp(ctx, emb_fn, &c, &w, 1, cot, NULL, &g), LAM_OK, "%s", lam_last_error());
  expect(g, lam_emb_gw, 28, "embedding weight grad (repeated index accumulates)");
  tu_gradcheck(ctx, emb_fn, &c, &w, 1, 1e-6, 1e-6, 1, 2e-3, "embedding");
  /* Unscaled option. */
  lam_embedding_opts o = lam_embedding_defaults();
  o.scale = false;
  lam_layer *plain = lam_nn_embedding(7, 4, &o);
  emb_case c2 = {plain, c.idx};
  lam_tensor *y2 = emb_fn(&w, 1, &c2);
  double *a = tu_read_f64(y2);
  for (int i = 0; i < 24; i++) cr_assert_float_eq(a[i] * 2.0, lam_emb_y[i], 1e-12);
  free(a);
  lam_tensor *fl = lam_tensor_full(ctx, LAM_F64, 2, (int64_t[]){2, 3}, 1.0);
  lam_tensor *bad = NULL;
  lam_ptree *p = lam_ptree_dict(), *s = lam_ptree_dict();
  lam_ptree_set(p, "weight", w);
  tu_assert_status(lam_layer_apply_with(c.layer, p, s, fl, NULL, &bad), LAM_ERR_DTYPE, "i32 indices");
  lam_ptree_free(p);
  lam_ptree_free(s);
  lam_tensor *all[] = {y, y2, cot, g, w, c.idx, fl};
  for (size_t i = 0; i < 7; i++) lam_tensor_free(all[i]);
  lam_layer_free(c.layer);
  lam_layer_free(plain);
  lam_ctx_free(ctx);
}

Test(dense, prelu_and_glu_match_pytorch) {
  lam_ctx *ctx = tu_ctx();
  lam_layer *pr = lam_nn_prelu(3, 0.25);
  apply_case c = {pr, {"weight"}, 1, 1};
  lam_tensor *xs[2] = {T(ctx, lam_prelu_x, 3, (int64_t[]){2, 3, 4}), T(ctx, lam_prelu_w, 1, (int64_t[]){3})};
  const double *gw[] = {lam_prelu_gx, lam_prelu_gw};
  check_case(ctx, &c, xs, 2, lam_prelu_y, lam_prelu_cot, gw, "prelu");
  lam_tensor_free(xs[0]);
  lam_tensor_free(xs[1]);
  lam_layer_free(pr);

  lam_layer *glu = lam_nn_glu(-1);
  apply_case cg = {glu, {NULL}, 0, 1};
  lam_tensor *xg = T(ctx, lam_glu_x, 2, (int64_t[]){2, 6});
  const double *gg[] = {lam_glu_gx};
  check_case(ctx, &cg, &xg, 1, lam_glu_y, lam_glu_cot, gg, "glu");
  tu_assert_fails(lam_glu(lam_tensor_slice0(xg, 0, 1), 0), LAM_ERR_SHAPE, "even size");
  lam_tensor_free(xg);
  lam_layer_free(glu);
  lam_ctx_free(ctx);
}

Test(dense, init_is_deterministic_and_glorot_bounded) {
  lam_ctx *ctx = tu_ctx();
  lam_layer *lin = lam_nn_linear(300, 200, NULL);
  lam_vars *a = NULL, *b = NULL, *c = NULL;
  cr_assert_eq(lam_layer_init(lin, ctx, lam_rng_key_make(7), LAM_F32, &a), LAM_OK, "%s", lam_last_error());
  cr_assert_eq(lam_layer_init(lin, ctx, lam_rng_key_make(7), LAM_F32, &b), LAM_OK);
  cr_assert_eq(lam_layer_init(lin, ctx, lam_rng_key_make(8), LAM_F32, &c), LAM_OK);
  float *wa = tu_read_f32(lam_ptree_get(lam_vars_params(a), "weight"));
  float *wb = tu_read_f32(lam_ptree_get(lam_vars_params(b), "weight"));
  float *wc = tu_read_f32(lam_ptree_get(lam_vars_params(c), "weight"));
  cr_assert(memcmp(wa, wb, 60000 * sizeof(float)) == 0, "same key, same params");
  cr_assert(memcmp(wa, wc, 60000 * sizeof(float)) != 0, "other key, other params");
  double limit = sqrt(6.0 / 500.0), sum2 = 0;
  for (int i = 0; i < 60000; i++) {
    cr_assert(fabsf(wa[i]) <= limit, "glorot bound");
    sum2 += (double)wa[i] * wa[i];
  }
  cr_assert_float_eq(sum2 / 60000, limit * limit / 3, 0.05 * limit * limit / 3, "glorot variance");
  float *bias = tu_read_f32(lam_ptree_get(lam_vars_params(a), "bias"));
  for (int i = 0; i < 200; i++) cr_assert_eq(bias[i], 0.0f);
  free(wa); free(wb); free(wc); free(bias);
  lam_vars_free(a); lam_vars_free(b); lam_vars_free(c);
  lam_layer_free(lin);
  lam_ctx_free(ctx);
}

Test(dense, bad_input) {
  lam_ctx *ctx = tu_ctx();
  lam_error_clear();
  tu_assert_fails(lam_nn_linear(0, 3, NULL), LAM_ERR_INVALID_ARGUMENT, "in_features 0");
  tu_assert_fails(lam_nn_bilinear(2, -1, 3, NULL), LAM_ERR_INVALID_ARGUMENT, "lam_nn_bilinear");
  tu_assert_fails(lam_nn_embedding(5, 0, NULL), LAM_ERR_INVALID_ARGUMENT, "embed_dim 0");
  tu_assert_fails(lam_nn_prelu(0, 0.25), LAM_ERR_INVALID_ARGUMENT, "num_parameters");
  tu_assert_fails(lam_nn_activation((lam_unary_op)999, 0, 0), LAM_ERR_INVALID_ARGUMENT, "unknown unary op");
  lam_layer *lin = lam_nn_linear(5, 3, NULL);
  lam_vars *v = NULL;
  tu_assert_status(lam_layer_init(lin, ctx, lam_rng_key_make(0), LAM_I32, &v), LAM_ERR_DTYPE, "float");
  cr_assert_eq(lam_layer_init(lin, ctx, lam_rng_key_make(0), LAM_F32, &v), LAM_OK);
  tu_mark m = tu_mark_now(ctx);
  lam_tensor *x = lam_tensor_zeros(ctx, LAM_F32, 2, (int64_t[]){2, 4});
  lam_tensor *y = NULL;
  tu_assert_status(lam_layer_apply(lin, v, x, NULL, &y), LAM_ERR_SHAPE, "linear expects [..., 5]");
  cr_assert_null(y);
  lam_tensor *xd = lam_tensor_zeros(ctx, LAM_F64, 2, (int64_t[]){2, 5});
  tu_assert_status(lam_layer_apply(lin, v, xd, NULL, &y), LAM_ERR_DTYPE, "f64");
  lam_error_clear(); /* a NULL x after a failure keeps that failure (chains) */
  tu_assert_status(lam_layer_apply(lin, v, NULL, NULL, &y), LAM_ERR_NULL, "x");
  tu_assert_status(lam_layer_apply(lin, NULL, x, NULL, &y), LAM_ERR_NULL, "vars");
  lam_tensor *x5 = lam_tensor_zeros(ctx, LAM_F32, 2, (int64_t[]){2, 5});
  lam_tensor *bias = lam_tensor_retain(lam_ptree_get(lam_vars_params(v), "bias"));
  lam_ptree_remove(lam_vars_params(v), "bias");
  tu_assert_status(lam_layer_apply(lin, v, x5, NULL, &y), LAM_ERR_NOT_FOUND, "bias");
  lam_ptree_set(lam_vars_params(v), "bias", bias);
  lam_tensor_free(bias);
  lam_tensor_free(x);
  lam_tensor_free(xd);
  lam_tensor_free(x5);
  tu_assert_no_leak(ctx, m);
  lam_vars_free(v);
  lam_layer_free(lin);
  lam_ctx_free(ctx);
}
