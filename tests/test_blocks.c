/* test_blocks.c: Metalhead's building blocks: prenorm, conv_norm and
 * create_classifier. The convolution and pooling layers they combine come
 * from the conv family, which these tests do not depend on: a linear layer
 * stands in for the convolution (on [N, features] inputs, where batch norm
 * normalizes axis 1 as after a 1x1 convolution) and the identity for a
 * pooling layer; the default pool (global average) is tested on [N, C, H, W].
 * Outputs are compared with a host computation from the layers' own params;
 * children names, layer order, modes, ownership on failure and bad input
 * are checked too. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* y[n, o] = sum_i x[n, i] w[o, i] + b[o] on the host. */
static void host_linear(const double *x, const double *w, const double *b, int64_t N, int64_t in,
                        int64_t out, double *y) {
  for (int64_t n = 0; n < N; n++)
    for (int64_t o = 0; o < out; o++) {
      double s = b ? b[o] : 0;
      for (int64_t i = 0; i < in; i++) s += x[n * in + i] * w[o * in + i];
      y[n * out + o] = s;
    }
}

/* Batch norm (training) over axis 0 of [N, C] with weight/bias. */
static void host_bn(double *x, int64_t N, int64_t C, const double *w, const double *b) {
  for (int64_t c = 0; c < C; c++) {
    double m = 0, v = 0;
    for (int64_t n = 0; n < N; n++) m += x[n * C + c];
    m /= (double)N;
    for (int64_t n = 0; n < N; n++) v += (x[n * C + c] - m) * (x[n * C + c] - m);
    double rs = 1 / sqrt(v / (double)N + 1e-5);
    for (int64_t n = 0; n < N; n++) x[n * C + c] = (x[n * C + c] - m) * rs * w[c] + b[c];
  }
}

static void host_relu(double *x, int64_t n) {
  for (int64_t i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0;
}

static double *leaf(lam_vars *v, bool state, const char *path) {
  lam_tensor *t = lam_ptree_get(state ? lam_vars_state(v) : lam_vars_params(v), path);
  cr_assert(t, "missing %s %s", state ? "state" : "param", path);
  return tu_read_f64(t);
}

/* Sets every param leaf to random values so their placement matters. */
static void randomize_params(lam_ctx *ctx, tu_rng *r, lam_vars *v) {
  lam_ptree *p = lam_vars_params(v);
  for (int k = 0; k < lam_ptree_leaf_count(p); k++) {
    const char *path;
    lam_tensor *t;
    lam_ptree_leaf(p, k, &path, &t);
    lam_tensor *nt = tu_rand_f64(ctx, r, lam_tensor_ndim(t), lam_tensor_shape(t), 0.2, 1.2);
    lam_ptree_set(p, path, nt);
    lam_tensor_free(nt);
  }
}

/* ---- prenorm ----------------------------------------------------------------- */

Test(blocks, prenorm_is_norm_then_block) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(31);
  tu_mark m = tu_mark_now(ctx);
  int64_t four = 4, shape[2] = {3, 4};
  lam_layer *l = lam_nn_prenorm(lam_nn_layer_norm(1, &four, NULL), lam_nn_linear(4, 2, NULL));
  cr_assert(l, "%s", lam_last_error());
  cr_assert_str_eq(lam_layer_name(l), "prenorm");
  lam_vars *v = NULL;
  cr_assert_eq(lam_layer_init(l, ctx, lam_rng_key_make(1), LAM_F64, &v), LAM_OK);
  const char *paths[] = {"norm.weight", "norm.bias", "block.weight", "block.bias"};
  cr_assert_eq(lam_ptree_leaf_count(lam_vars_params(v)), 4);
  for (int i = 0; i < 4; i++) cr_assert(lam_ptree_get(lam_vars_params(v), paths[i]), "%s", paths[i]);
  randomize_params(ctx, &r, v);
  lam_tensor *x = tu_rand_f64(ctx, &r, 2, shape, -2, 2);
  lam_tensor *y = tu_apply(l, v, x, false);
  /* host: layer norm over the last axis, then the linear map (no residual) */
  double *xv = tu_read_f64(x), *nw = leaf(v, false, "norm.weight"), *nb = leaf(v, false, "norm.bias");
  double *lw = leaf(v, false, "block.weight"), *lb = leaf(v, false, "block.bias"), h[12], want[6];
  for (int n = 0; n < 3; n++) {
    double mu = 0, var = 0;
    for (int j = 0; j < 4; j++) mu += xv[n * 4 + j] / 4;
    for (int j = 0; j < 4; j++) var += (xv[n * 4 + j] - mu) * (xv[n * 4 + j] - mu) / 4;
    for (int j = 0; j < 4; j++) h[n * 4 + j] = (xv[n * 4 + j] - mu) / sqrt(var + 1e-5) * nw[j] + nb[j];
  }
  host_linear(h, lw, lb, 3, 4, 2, want);
  tu_assert_tensor_close(y, want, 6, 1e-10, 1e-10, "prenorm");
  free(xv);
  free(nw);
  free(nb);
  free(lw);
  free(lb);
  lam_tensor_free(x);
  lam_tensor_free(y);
  lam_vars_free(v);
  lam_layer_free(l);
  /* NULL arguments: a message, and the other layer is freed (no leak under ASan) */
  tu_assert_fails(lam_nn_prenorm(NULL, lam_nn_identity()), LAM_ERR_NULL, "lam_nn_prenorm: norm is NULL");
  tu_assert_fails(lam_nn_prenorm(lam_nn_identity(), NULL), LAM_ERR_NULL, "block is NULL");
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- conv_norm ------------------------------------------------------------------ */

/* conv_norm with a linear(5 -> 4) standing in for the convolution, batch
 * norm and relu, in each order, against the host. */
Test(blocks, conv_norm_orders) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(32);
  tu_mark m = tu_mark_now(ctx);
  int64_t shape[2] = {6, 5};
  lam_tensor *x = tu_rand_f64(ctx, &r, 2, shape, -2, 2);
  double *xv = tu_read_f64(x);
  for (int mode = 0; mode < 4; mode++) {
    lam_conv_norm_opts o = {mode == 1, mode == 2};
    lam_layer *l = lam_nn_conv_norm(lam_nn_linear(5, 4, NULL), mode == 3 ? NULL : lam_nn_batch_norm(mode == 2 ? 5 : 4, NULL),
                                 lam_nn_relu(), &o);
    cr_assert(l, "mode %d: %s", mode, lam_last_error());
    cr_assert_eq(lam_layer_child_count(l), mode == 3 ? 2 : 3);
    lam_vars *v = NULL;
    cr_assert_eq(lam_layer_init(l, ctx, lam_rng_key_make(2), LAM_F64, &v), LAM_OK);
    randomize_params(ctx, &r, v);
    lam_tensor *y = tu_apply(l, v, x, true);
    double h[30], want[24];
    /* names: the conv stand-in, the norm and its running stats sit at their position */
    const char *conv = mode == 2 ? "1" : "0", *norm = mode == 0 ? "1" : mode == 1 ? "2" : "0";
    char p[32];
    snprintf(p, sizeof p, "%s.weight", conv);
    double *cw = leaf(v, false, p);
    snprintf(p, sizeof p, "%s.bias", conv);
    double *cb = leaf(v, false, p);
    double *bw = NULL, *bb = NULL;
    if (mode != 3) {
      snprintf(p, sizeof p, "%s.weight", norm);
      bw = leaf(v, false, p);
      snprintf(p, sizeof p, "%s.bias", norm);
      bb = leaf(v, false, p);
      snprintf(p, sizeof p, "%s.running_mean", norm);
      free(leaf(v, true, p));
    }
    if (mode == 2) { /* revnorm: norm(5) -> conv -> relu */
      memcpy(h, xv, sizeof h);
      host_bn(h, 6, 5, bw, bb);
      host_linear(h, cw, cb, 6, 5, 4, want);
      host_relu(want, 24);
    } else {
      host_linear(xv, cw, cb, 6, 5, 4, want);
      if (mode == 0) { /* conv -> norm -> relu */
        host_bn(want, 6, 4, bw, bb);
        host_relu(want, 24);
      } else if (mode == 1) { /* preact: conv -> relu -> norm */
        host_relu(want, 24);
        host_bn(want, 6, 4, bw, bb);
      } else {
        host_relu(want, 24);
      }
    }
    char what[32];
    snprintf(what, sizeof what, "conv_norm mode %d", mode);
    tu_assert_tensor_close(y, want, 24, 1e-10, 1e-10, what);
    free(cw);
    free(cb);
    free(bw);
    free(bb);
    lam_tensor_free(y);
    lam_vars_free(v);
    lam_layer_free(l);
  }
  free(xv);
  lam_tensor_free(x);
  lam_conv_norm_opts both = {true, true};
  tu_assert_fails(lam_nn_conv_norm(lam_nn_identity(), lam_nn_identity(), NULL, &both), LAM_ERR_INVALID_ARGUMENT,
                  "preact and revnorm cannot be set together");
  lam_conv_norm_opts pre = {true, false};
  tu_assert_fails(lam_nn_conv_norm(lam_nn_identity(), NULL, lam_nn_relu(), &pre), LAM_ERR_INVALID_ARGUMENT,
                  "need a norm layer");
  tu_assert_fails(lam_nn_conv_norm(NULL, lam_nn_identity(), NULL, NULL), LAM_ERR_NULL, "lam_nn_conv_norm: conv is NULL");
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- create_classifier ------------------------------------------------------------- */

Test(blocks, classifier_default_pool) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(33);
  tu_mark m = tu_mark_now(ctx);
  int64_t shape[4] = {2, 6, 3, 5};
  lam_layer *l = lam_nn_classifier(6, 4, NULL);
  cr_assert(l, "%s", lam_last_error());
  cr_assert_eq(lam_layer_child_count(l), 3); /* pool, flatten, linear */
  lam_vars *v = NULL;
  cr_assert_eq(lam_layer_init(l, ctx, lam_rng_key_make(3), LAM_F64, &v), LAM_OK);
  cr_assert_eq(lam_ptree_leaf_count(lam_vars_params(v)), 2);
  randomize_params(ctx, &r, v);
  lam_tensor *x = tu_rand_f64(ctx, &r, 4, shape, -2, 2);
  lam_tensor *y = tu_apply(l, v, x, false);
  cr_assert_eq(lam_tensor_ndim(y), 2);
  cr_assert_eq(lam_tensor_shape(y)[1], 4);
  double *xv = tu_read_f64(x), pooled[12] = {0}, want[8];
  for (int n = 0; n < 2; n++)
    for (int c = 0; c < 6; c++)
      for (int s = 0; s < 15; s++) pooled[n * 6 + c] += xv[(n * 6 + c) * 15 + s] / 15;
  double *w = leaf(v, false, "2.weight"), *b = leaf(v, false, "2.bias");
  host_linear(pooled, w, b, 2, 6, 4, want);
  tu_assert_tensor_close(y, want, 8, 1e-10, 1e-10, "classifier");
  free(xv);
  free(w);
  free(b);
  lam_tensor_free(x);
  lam_tensor_free(y);
  lam_vars_free(v);
  lam_layer_free(l);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* Hidden layer, dropout and activations, with the identity standing in for
 * a pooling layer on [N, C] features: pool, flatten, linear, relu, dropout,
 * linear, sigmoid. Dropout is the identity in evaluation and needs a key in
 * training. */
Test(blocks, classifier_hidden_dropout) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(34);
  tu_mark m = tu_mark_now(ctx);
  lam_classifier_opts o = {lam_nn_identity(), 8, 0.5, NULL, lam_nn_sigmoid()};
  lam_layer *l = lam_nn_classifier(6, 3, &o);
  cr_assert(l, "%s", lam_last_error());
  cr_assert_eq(lam_layer_child_count(l), 7);
  lam_layer *relu = lam_nn_relu(), *drop = lam_nn_dropout(NULL);
  cr_assert_str_eq(lam_layer_name(lam_layer_child(l, 3)), lam_layer_name(relu));
  cr_assert_str_eq(lam_layer_name(lam_layer_child(l, 4)), lam_layer_name(drop));
  lam_layer_free(relu);
  lam_layer_free(drop);
  lam_vars *v = NULL;
  cr_assert_eq(lam_layer_init(l, ctx, lam_rng_key_make(4), LAM_F64, &v), LAM_OK);
  randomize_params(ctx, &r, v);
  int64_t shape[2] = {5, 6};
  lam_tensor *x = tu_rand_f64(ctx, &r, 2, shape, -2, 2);
  lam_tensor *y = tu_apply(l, v, x, false);
  double *xv = tu_read_f64(x), h[40], want[15];
  double *w1 = leaf(v, false, "2.weight"), *b1 = leaf(v, false, "2.bias");
  double *w2 = leaf(v, false, "5.weight"), *b2 = leaf(v, false, "5.bias");
  host_linear(xv, w1, b1, 5, 6, 8, h);
  host_relu(h, 40);
  host_linear(h, w2, b2, 5, 8, 3, want);
  for (int i = 0; i < 15; i++) want[i] = 1 / (1 + exp(-want[i]));
  tu_assert_tensor_close(y, want, 15, 1e-10, 1e-10, "classifier hidden");
  lam_tensor_free(y);
  /* training: the dropout needs a key */
  lam_apply_opts ao = {true, NULL, NULL, NULL};
  tu_assert_status(lam_layer_apply(l, v, x, &ao, &y), LAM_ERR_INVALID_ARGUMENT, "needs an rng key");
  lam_rng_key key = lam_rng_key_make(8);
  ao.rng = &key;
  cr_assert_eq(lam_layer_apply(l, v, x, &ao, &y), LAM_OK, "%s", lam_last_error());
  lam_tensor_free(y);
  free(xv);
  free(w1);
  free(b1);
  free(w2);
  free(b2);
  lam_tensor_free(x);
  lam_vars_free(v);
  lam_layer_free(l);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

Test(blocks, classifier_bad_input) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  lam_classifier_opts o = {lam_nn_identity(), 0, 1.0, lam_nn_relu(), lam_nn_sigmoid()};
  tu_assert_fails(lam_nn_classifier(6, 3, &o), LAM_ERR_INVALID_ARGUMENT, "dropout must be in [0, 1)");
  tu_assert_fails(lam_nn_classifier(0, 3, NULL), LAM_ERR_INVALID_ARGUMENT, "inplanes and nclasses must be >= 1");
  lam_classifier_opts neg = {NULL, -2, 0, NULL, NULL};
  tu_assert_fails(lam_nn_classifier(6, 3, &neg), LAM_ERR_INVALID_ARGUMENT, "hidden_planes must be >= 0");
  /* the default pool rejects rank-1 input */
  lam_layer *l = lam_nn_classifier(4, 2, NULL);
  lam_vars *v = NULL;
  cr_assert_eq(lam_layer_init(l, ctx, lam_rng_key_make(1), LAM_F32, &v), LAM_OK);
  int64_t four = 4;
  lam_tensor *x = lam_tensor_zeros(ctx, LAM_F32, 1, &four), *y = NULL;
  tu_assert_status(lam_layer_apply(l, v, x, NULL, &y), LAM_ERR_SHAPE, "global_avg_pool expects [N, C, ...]");
  lam_tensor_free(x);
  lam_vars_free(v);
  lam_layer_free(l);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* Composites expose their children by name (lam_layer_child_count /
 * lam_layer_child / lam_layer_child_key), which lam_layer_summary walks. */
Test(blocks, composites_expose_children) {
  lam_layer *pn = lam_nn_prenorm(lam_nn_layer_norm(1, (int64_t[]){4}, NULL), lam_nn_linear(4, 4, NULL));
  cr_assert_not_null(pn, "%s", lam_last_error());
  cr_assert_eq(lam_layer_child_count(pn), 2);
  cr_assert_str_eq(lam_layer_child_key(pn, 0), "norm");
  cr_assert_str_eq(lam_layer_child_key(pn, 1), "block");
  cr_assert_str_eq(lam_layer_name(lam_layer_child(pn, 1)), "linear");
  lam_layer *ln = lam_nn_layer_norm(1, (int64_t[]){4}, &(lam_layer_norm_opts){.activation = lam_nn_relu()});
  cr_assert_eq(lam_layer_child_count(ln), 1);
  cr_assert_str_eq(lam_layer_child_key(ln, 0), "act");
  lam_layer *plain = lam_nn_layer_norm(1, (int64_t[]){4}, NULL);
  cr_assert_eq(lam_layer_child_count(plain), 0);
  lam_layer_free(plain);
  lam_layer_free(ln);
  lam_layer_free(pn);
}
