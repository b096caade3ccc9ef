/* test_autodiff.c: the tape itself: leaves, accumulation when a tensor is
 * used twice, views' backward rules, stop_gradient, paused recording,
 * bad input, and that every tape tensor is released. Op backward rules are
 * checked in each op family's suite with tu_gradcheck. */
#include <stdlib.h>

#include "testutil.h"

static lam_tensor *slice_reshape(lam_tensor *const *xs, int n, void *user) {
  (void)n;
  (void)user;
  lam_tensor *r = lam_tensor_reshape(xs[0], 2, (int64_t[]){6, -1});
  lam_tensor *s = lam_tensor_slice0(r, 1, 4);
  lam_tensor_free(r);
  return s;
}

Test(autodiff, views_gradcheck) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(3);
  lam_tensor *x = tu_rand_f64(ctx, &r, 3, (int64_t[]){3, 2, 5}, -1, 1);
  tu_mark m = tu_mark_now(ctx);
  tu_gradcheck(ctx, slice_reshape, NULL, &x, 1, 1e-6, 1e-8, 1, 1e-6, "slice0(reshape)");
  tu_assert_no_leak(ctx, m);
  lam_tensor_free(x);
  lam_ctx_free(ctx);
}

/* loss = sum over a view used twice: gradient must accumulate. */
static lam_tensor *twice(lam_tensor *const *xs, int n, void *user) {
  (void)n;
  (void)user;
  lam_tensor *a = lam_tensor_slice0(xs[0], 0, 1);
  lam_tensor *b = lam_tensor_slice0(xs[0], 0, 1);
  lam_tensor_free(b);
  return a; /* one element: a scalar loss */
}

Test(autodiff, leaf_and_zero_grads) {
  lam_ctx *ctx = tu_ctx();
  double v[3] = {1, 2, 3};
  lam_tensor *x = lam_tensor_from_host(ctx, LAM_F64, 1, (int64_t[]){3}, v);
  lam_tensor *g = NULL, *loss = NULL;
  tu_mark m = tu_mark_now(ctx);
  for (int rep = 0; rep < 100; rep++) {
    cr_assert_eq(lam_grad(ctx, twice, NULL, &x, 1, &loss, &g), LAM_OK, "%s", lam_last_error());
    double *gv = tu_read_f64(g);
    cr_assert(gv[0] == 1 && gv[1] == 0 && gv[2] == 0);
    free(gv);
    lam_tensor_free(g);
    lam_tensor_free(loss);
  }
  tu_assert_no_leak(ctx, m);
  cr_assert(!lam_grad_is_recording(ctx));
  lam_tensor_free(x);
  lam_ctx_free(ctx);
}

static lam_tensor *whole(lam_tensor *const *xs, int n, void *user) {
  (void)n;
  (void)user;
  return lam_tensor_reshape(xs[0], 1, (int64_t[]){-1});
}

static lam_tensor *fails(lam_tensor *const *xs, int n, void *user) {
  (void)n;
  (void)user;
  lam_tensor *r = lam_tensor_reshape(xs[0], 1, (int64_t[]){-1});
  lam_tensor *bad = lam_tensor_slice0(r, 5, 99);
  lam_tensor_free(r);
  return bad;
}

static lam_tensor *stopped(lam_tensor *const *xs, int n, void *user) {
  (void)n;
  (void)user;
  lam_tensor *s = lam_stop_gradient(xs[0]);
  lam_tensor *r = lam_tensor_slice0(s, 0, 1);
  lam_tensor_free(s);
  return r;
}

Test(autodiff, errors_and_stop_gradient) {
  lam_ctx *ctx = tu_ctx();
  double v[3] = {1, 2, 3};
  lam_tensor *x = lam_tensor_from_host(ctx, LAM_F64, 1, (int64_t[]){3}, v);
  lam_tensor *g = NULL, *loss = NULL;
  tu_mark m = tu_mark_now(ctx);
  tu_assert_status(lam_grad(ctx, whole, NULL, &x, 1, &loss, &g), LAM_ERR_SHAPE, "one float element");
  cr_assert_null(g);
  tu_assert_status(lam_grad(ctx, fails, NULL, &x, 1, &loss, &g), LAM_ERR_SHAPE, "lam_tensor_slice0");
  tu_assert_status(lam_grad(NULL, whole, NULL, &x, 1, &loss, &g), LAM_ERR_NULL, "ctx");
  tu_assert_status(lam_grad(ctx, whole, NULL, &x, 0, &loss, &g), LAM_ERR_INVALID_ARGUMENT, "n is 0");
  tu_assert_no_leak(ctx, m);
  cr_assert_eq(lam_grad(ctx, stopped, NULL, &x, 1, &loss, &g), LAM_OK, "%s", lam_last_error());
  double *gv = tu_read_f64(g);
  cr_assert(gv[0] == 0 && gv[1] == 0 && gv[2] == 0, "stop_gradient lets nothing through");
  free(gv);
  lam_tensor_free(g);
  lam_tensor_free(loss);
  int32_t iv[2] = {1, 2};
  lam_tensor *xi = lam_tensor_from_host(ctx, LAM_I32, 1, (int64_t[]){2}, iv);
  tu_assert_status(lam_grad(ctx, whole, NULL, &xi, 1, &loss, &g), LAM_ERR_DTYPE, "float");
  lam_tensor_free(xi);
  lam_tensor_free(x);
  lam_ctx_free(ctx);
}

static lam_tensor *tree_loss(lam_ptree *p, void *user) {
  (void)user;
  return lam_tensor_slice0(lam_ptree_get(p, "layer.w"), 1, 2);
}

Test(autodiff, value_and_grad_tree_and_frozen) {
  lam_ctx *ctx = tu_ctx();
  double v[3] = {1, 2, 3};
  lam_ptree *p = lam_ptree_dict();
  lam_tensor *w = lam_tensor_from_host(ctx, LAM_F64, 1, (int64_t[]){3}, v);
  lam_tensor *b = lam_tensor_from_host(ctx, LAM_F64, 1, (int64_t[]){2}, v);
  cr_assert_eq(lam_ptree_set(p, "layer.w", w), LAM_OK);
  cr_assert_eq(lam_ptree_set(p, "layer.b", b), LAM_OK);
  lam_tensor_free(w);
  lam_tensor_free(b);
  tu_mark m = tu_mark_now(ctx);
  lam_tensor *loss;
  lam_ptree *grads;
  cr_assert_eq(lam_value_and_grad(ctx, tree_loss, NULL, p, &loss, &grads), LAM_OK, "%s", lam_last_error());
  double lv;
  lam_tensor_item(loss, &lv);
  cr_assert_eq(lv, 2);
  cr_assert_eq(lam_ptree_leaf_count(grads), 2);
  double *gw = tu_read_f64(lam_ptree_get(grads, "layer.w"));
  cr_assert(gw[0] == 0 && gw[1] == 1 && gw[2] == 0);
  free(gw);
  double *gb = tu_read_f64(lam_ptree_get(grads, "layer.b"));
  cr_assert(gb[0] == 0 && gb[1] == 0);
  free(gb);
  lam_ptree_free(grads);
  lam_tensor_free(loss);
  cr_assert_eq(lam_ptree_freeze(p, "layer.b"), LAM_OK);
  cr_assert_eq(lam_value_and_grad(ctx, tree_loss, NULL, p, &loss, &grads), LAM_OK);
  cr_assert_eq(lam_ptree_leaf_count(grads), 1);
  cr_assert_null(lam_ptree_get(grads, "layer.b"));
  lam_ptree_free(grads);
  lam_tensor_free(loss);
  tu_assert_no_leak(ctx, m);
  lam_ptree_free(p);
  lam_ctx_free(ctx);
}
