/* test_autodiff.c: the tape itself: leaves, accumulation when a tensor is
 * used twice, views' backward rules, stop_gradient, paused recording,
 * lam_vjp (outputs and input cotangents of a non-scalar function), bad
 * input, and that every tape tensor is released. Op backward rules are
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

/* ---- lam_vjp ------------------------------------------------------------------------ */

/* y = x0 * x1 + x0; xs[2] (when given) is not used. */
static lam_tensor *mul_add(lam_tensor *const *xs, int n, void *user) {
  (void)n;
  (void)user;
  lam_tensor *p = lam_mul(xs[0], xs[1]);
  lam_tensor *y = p ? lam_add(p, xs[0]) : NULL;
  lam_tensor_free(p);
  return y;
}

Test(autodiff, vjp_output_and_cotangents) {
  lam_ctx *ctx = tu_ctx();
  const lam_dtype dts[2] = {LAM_F64, LAM_F32};
  for (int d = 0; d < 2; d++) {
    lam_dtype dt = dts[d];
    if (!tu_has_dtype(ctx, dt)) continue;
    const int64_t shape[2] = {2, 3};
    double a[6] = {1, -2, 3, 0.5, 4, -1}, b[6] = {2, 0, -1, 3, 0.25, 5}, c[6] = {1, 2, -1, 0.5, 3, -2};
    lam_tensor *xs[3] = {tu_from_f64(ctx, dt, 2, shape, a), tu_from_f64(ctx, dt, 2, shape, b),
                         tu_from_f64(ctx, dt, 1, (int64_t[]){4}, a)};
    lam_tensor *cot = tu_from_f64(ctx, dt, 2, shape, c);
    tu_mark m = tu_mark_now(ctx);
    for (int rep = 0; rep < 20; rep++) {
      lam_tensor *y = NULL, *g[3] = {NULL, NULL, NULL};
      cr_assert_eq(lam_vjp(ctx, mul_add, NULL, xs, 3, cot, &y, g), LAM_OK, "%s", lam_last_error());
      double want_y[6], want_g0[6], want_g1[6], zeros[4] = {0};
      for (int i = 0; i < 6; i++) {
        want_y[i] = a[i] * b[i] + a[i];
        want_g0[i] = c[i] * (b[i] + 1);
        want_g1[i] = c[i] * a[i];
      }
      cr_assert_eq(lam_tensor_dtype(y), dt);
      cr_assert(lam_tensor_same_shape(y, cot));
      tu_assert_tensor_close(y, want_y, 6, 0, 0, "vjp output");
      tu_assert_tensor_close(g[0], want_g0, 6, 0, 0, "vjp cotangent of x0");
      tu_assert_tensor_close(g[1], want_g1, 6, 0, 0, "vjp cotangent of x1");
      tu_assert_tensor_close(g[2], zeros, 4, 0, 0, "unused input gets zeros");
      for (int i = 0; i < 3; i++) {
        cr_assert(lam_tensor_same_shape(g[i], xs[i]) && lam_tensor_dtype(g[i]) == dt);
        lam_tensor_free(g[i]);
      }
      lam_tensor_free(y);
      /* out is optional */
      cr_assert_eq(lam_vjp(ctx, mul_add, NULL, xs, 2, cot, NULL, g), LAM_OK, "%s", lam_last_error());
      lam_tensor_free(g[0]);
      lam_tensor_free(g[1]);
    }
    tu_assert_tensor_close(cot, c, 6, 0, 0, "the cotangent is left as it was");
    tu_assert_no_leak(ctx, m);
    cr_assert(!lam_grad_is_recording(ctx));
    for (int i = 0; i < 3; i++) lam_tensor_free(xs[i]);
    lam_tensor_free(cot);
  }
  lam_ctx_free(ctx);
}

/* Calls lam_vjp while lam_vjp records: refused. */
static lam_tensor *nested(lam_tensor *const *xs, int n, void *user) {
  lam_tensor *g[2] = {NULL, NULL};
  tu_assert_status(lam_vjp(lam_tensor_ctx(xs[0]), mul_add, NULL, xs, n, user, NULL, g),
                   LAM_ERR_STATE, "lam_vjp: already recording");
  return mul_add(xs, n, NULL);
}

Test(autodiff, vjp_bad_input) {
  lam_ctx *ctx = tu_ctx(), *other = tu_ctx();
  double v[3] = {1, 2, 3};
  const int64_t s3[1] = {3};
  lam_tensor *xs[2] = {tu_from_f64(ctx, LAM_F64, 1, s3, v), tu_from_f64(ctx, LAM_F64, 1, s3, v)};
  lam_tensor *cot = tu_from_f64(ctx, LAM_F64, 1, s3, v);
  lam_tensor *cot_i32 = tu_from_f64(ctx, LAM_I32, 1, s3, v);
  lam_tensor *cot_short = tu_from_f64(ctx, LAM_F64, 1, (int64_t[]){2}, v);
  lam_tensor *cot_f32 = tu_from_f64(ctx, LAM_F32, 1, s3, v);
  lam_tensor *cot_other = tu_from_f64(other, LAM_F64, 1, s3, v);
  lam_tensor *x_i32 = tu_from_f64(ctx, LAM_I32, 1, s3, v);
  lam_tensor *x_other = tu_from_f64(other, LAM_F64, 1, s3, v);
  lam_tensor *y = xs[0], *g[2] = {xs[0], xs[1]};
  tu_mark m = tu_mark_now(ctx);

  tu_assert_status(lam_vjp(NULL, mul_add, NULL, xs, 2, cot, &y, g), LAM_ERR_NULL, "lam_vjp: ctx");
  cr_assert_null(y, "*out is cleared on failure");
  tu_assert_status(lam_vjp(ctx, NULL, NULL, xs, 2, cot, &y, g), LAM_ERR_NULL, "lam_vjp: fn");
  tu_assert_status(lam_vjp(ctx, mul_add, NULL, NULL, 2, cot, &y, g), LAM_ERR_NULL, "lam_vjp: xs");
  tu_assert_status(lam_vjp(ctx, mul_add, NULL, xs, 2, cot, &y, NULL), LAM_ERR_NULL,
                   "lam_vjp: grads");
  tu_assert_status(lam_vjp(ctx, mul_add, NULL, xs, 0, cot, &y, g), LAM_ERR_INVALID_ARGUMENT,
                   "lam_vjp: n is 0");
  tu_assert_status(lam_vjp(ctx, mul_add, NULL, (lam_tensor *[]){xs[0], NULL}, 2, cot, &y, g),
                   LAM_ERR_NULL, "lam_vjp: xs[1] is NULL");
  tu_assert_status(lam_vjp(ctx, mul_add, NULL, (lam_tensor *[]){xs[0], x_i32}, 2, cot, &y, g),
                   LAM_ERR_DTYPE, "lam_vjp: xs[1] is i32");
  tu_assert_status(lam_vjp(ctx, mul_add, NULL, (lam_tensor *[]){x_other, xs[1]}, 2, cot, &y, g),
                   LAM_ERR_INVALID_ARGUMENT, "lam_vjp: xs[0] belongs to another context");
  tu_assert_status(lam_vjp(ctx, mul_add, NULL, xs, 2, NULL, &y, g), LAM_ERR_NULL,
                   "lam_vjp: cotangent is NULL");
  tu_assert_status(lam_vjp(ctx, mul_add, NULL, xs, 2, cot_i32, &y, g), LAM_ERR_DTYPE,
                   "lam_vjp: cotangent is i32");
  tu_assert_status(lam_vjp(ctx, mul_add, NULL, xs, 2, cot_other, &y, g), LAM_ERR_INVALID_ARGUMENT,
                   "lam_vjp: cotangent belongs to another context");
  tu_assert_status(lam_vjp(ctx, mul_add, NULL, xs, 2, cot_short, &y, g), LAM_ERR_SHAPE,
                   "lam_vjp: cotangent f64 [2] does not match output f64 [3]");
  tu_assert_status(lam_vjp(ctx, mul_add, NULL, xs, 2, cot_f32, &y, g), LAM_ERR_SHAPE,
                   "does not match output");
  cr_assert(g[0] == NULL && g[1] == NULL && y == NULL, "nothing is returned on failure");
  /* a failing op inside fn: its own status and message */
  tu_assert_status(lam_vjp(ctx, fails, NULL, xs, 1, cot, &y, g), LAM_ERR_SHAPE, "lam_tensor_slice0");
  cr_assert(g[0] == NULL && y == NULL);
  /* lam_vjp inside lam_vjp is refused; the outer call still succeeds */
  cr_assert_eq(lam_vjp(ctx, nested, cot, xs, 2, cot, &y, g), LAM_OK, "%s", lam_last_error());
  lam_tensor_free(y), lam_tensor_free(g[0]), lam_tensor_free(g[1]);
  tu_assert_no_leak(ctx, m);
  cr_assert(!lam_grad_is_recording(ctx));

  lam_tensor *all[] = {xs[0], xs[1], cot, cot_i32, cot_short, cot_f32, cot_other, x_i32, x_other};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) lam_tensor_free(all[i]);
  lam_ctx_free(other);
  lam_ctx_free(ctx);
}
