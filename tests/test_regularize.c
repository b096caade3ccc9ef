/* test_regularize.c: DropBlock, StochasticDepth and linear_scheduler.
 * The random draws are Philox bernoulli tensors, bit-identical on every
 * device, so the tests rebuild each mask on the host from the same key
 * (lam_random_bernoulli) and compare outputs and gradients exactly; they also
 * check the block structure, the drop rates statistically, evaluation
 * identity, determinism per key, the layers' rng requirement and bad input. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autodiff/tape.h" /* lam__vjp */
#include "testutil.h"

static uint8_t *read_u8(const lam_tensor *t) {
  size_t n = (size_t)lam_tensor_numel(t);
  uint8_t *v = malloc(n);
  cr_assert_eq(lam_tensor_to_host(t, v, n), LAM_OK, "%s", lam_last_error());
  return v;
}

/* ---- DropBlock ------------------------------------------------------------- */

/* Host DropBlock: the same seeds (bernoulli with the same key and gamma),
 * Metalhead's mask and scale. Returns the multiplier per element (malloc'd). */
static double *host_dropblock(lam_ctx *ctx, const int64_t *shape, double rate, int64_t block,
                              double gamma_scale, lam_rng_key key, double *dropped_frac) {
  int64_t P = shape[0] * shape[1], H = shape[2], W = shape[3], n = P * H * W;
  int64_t bs = block < H ? block : H;
  if (bs > W) bs = W;
  double gamma = gamma_scale * rate * (double)(H * W) / (double)(bs * bs) /
                 ((double)(W - bs + 1) * (double)(H - bs + 1));
  if (gamma > 1) gamma = 1;
  lam_tensor *seed = lam_random_bernoulli(ctx, key, gamma, 4, shape);
  cr_assert(seed, "%s", lam_last_error());
  uint8_t *s = read_u8(seed);
  double *mask = malloc((size_t)n * sizeof *mask), sum = 0;
  int64_t p0 = bs / 2;
  for (int64_t p = 0; p < P; p++)
    for (int64_t h = 0; h < H; h++)
      for (int64_t w = 0; w < W; w++) {
        int hit = 0;
        for (int64_t hh = h - p0; hh < h - p0 + bs; hh++)
          for (int64_t ww = w - p0; ww < w - p0 + bs; ww++)
            if (hh >= 0 && hh < H && ww >= 0 && ww < W && s[(p * H + hh) * W + ww]) hit = 1;
        mask[(p * H + h) * W + w] = hit ? 0 : 1;
        sum += hit ? 0 : 1;
      }
  double scale = (double)n / (sum + 1e-6);
  for (int64_t i = 0; i < n; i++) mask[i] *= scale;
  if (dropped_frac) *dropped_frac = 1.0 - sum / (double)n;
  free(s);
  lam_tensor_free(seed);
  return mask;
}

typedef struct {
  double rate, gamma_scale;
  int64_t block;
  lam_rng_key key;
} dbcase;

static lam_tensor *db_fn(lam_tensor *const *xs, int n, void *user) {
  (void)n;
  const dbcase *c = user;
  return lam_dropblock(xs[0], c->rate, c->block, c->gamma_scale, c->key);
}

Test(dropblock, matches_host_mask_and_gradient) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(21);
  tu_mark m = tu_mark_now(ctx);
  struct {
    int64_t shape[4];
    double rate, gs;
    int64_t block;
  } cases[] = {
      {{2, 3, 16, 16}, 0.2, 1.0, 3}, {{1, 2, 9, 7}, 0.3, 0.5, 4}, {{2, 1, 5, 6}, 0.5, 1.0, 7},
      {{3, 2, 11, 13}, 0.1, 1.0, 1}, {{1, 1, 1, 1}, 0.9, 1.0, 7},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    dbcase c = {cases[i].rate, cases[i].gs, cases[i].block, lam_rng_key_make(100 + i)};
    const int64_t *shape = cases[i].shape;
    int64_t n = shape[0] * shape[1] * shape[2] * shape[3];
    double *mult = host_dropblock(ctx, shape, c.rate, c.block, c.gamma_scale, c.key, NULL);
    lam_tensor *x = tu_rand_f64(ctx, &r, 4, shape, -2, 2);
    lam_tensor *dy = tu_rand_f64(ctx, &r, 4, shape, -1, 1);
    lam_tensor *y = NULL, *dx = NULL;
    cr_assert_eq(lam__vjp(ctx, db_fn, &c, &x, 1, dy, &y, &dx), LAM_OK, "%s", lam_last_error());
    double *xv = tu_read_f64(x), *dyv = tu_read_f64(dy), *yv = tu_read_f64(y), *dxv = tu_read_f64(dx);
    for (int64_t e = 0; e < n; e++) {
      cr_assert(fabs(yv[e] - xv[e] * mult[e]) <= 1e-12 * fabs(xv[e] * mult[e]) + 1e-300,
                "case %zu element %lld: y %g, want %g", i, (long long)e, yv[e], xv[e] * mult[e]);
      cr_assert(fabs(dxv[e] - dyv[e] * mult[e]) <= 1e-12 * fabs(dyv[e] * mult[e]) + 1e-300,
                "case %zu element %lld: dx %g, want %g", i, (long long)e, dxv[e], dyv[e] * mult[e]);
    }
    /* f32 gives the same mask */
    lam_tensor *xf = lam_tensor_cast(x, LAM_F32);
    lam_tensor *yf = lam_dropblock(xf, c.rate, c.block, c.gamma_scale, c.key);
    float *yfv = tu_read_f32(yf);
    for (int64_t e = 0; e < n; e++)
      cr_assert(fabs(yfv[e] - xv[e] * mult[e]) <= 1e-5 * (1 + fabs(xv[e] * mult[e])), "f32 element %lld", (long long)e);
    free(yfv);
    lam_tensor_free(xf);
    lam_tensor_free(yf);
    free(xv);
    free(dyv);
    free(yv);
    free(dxv);
    free(mult);
    lam_tensor_free(x);
    lam_tensor_free(dy);
    lam_tensor_free(y);
    lam_tensor_free(dx);
  }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* Dropped regions are whole blocks, the drop rate is near `rate`, the same
 * key repeats and another key differs. */
Test(dropblock, structure_rate_and_keys) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  int64_t shape[4] = {4, 8, 32, 32};
  lam_tensor *x = lam_tensor_full(ctx, LAM_F32, 4, shape, 1.0);
  lam_rng_key k1 = lam_rng_key_make(5), k2 = lam_rng_key_make(6);
  double frac = 0;
  double *mult = host_dropblock(ctx, shape, 0.1, 5, 1.0, k1, &frac);
  cr_assert(frac > 0.06 && frac < 0.14, "dropped fraction %g for rate 0.1", frac);
  free(mult);
  lam_tensor *a = lam_dropblock(x, 0.1, 5, 1.0, k1), *b = lam_dropblock(x, 0.1, 5, 1.0, k1);
  lam_tensor *c = lam_dropblock(x, 0.1, 5, 1.0, k2);
  float *av = tu_read_f32(a), *bv = tu_read_f32(b), *cv = tu_read_f32(c);
  int64_t n = 4 * 8 * 32 * 32, diff = 0;
  for (int64_t e = 0; e < n; e++) {
    cr_assert_eq(av[e], bv[e]);
    diff += av[e] != cv[e];
  }
  cr_assert(diff > n / 50, "another key changed only %lld elements", (long long)diff);
  /* every dropped element lies in a dropped 5x5 block (a dropped pixel of a
   * plane has a 5x5 all-zero window containing it) */
  for (int64_t p = 0; p < 32; p++)
    for (int64_t h = 0; h < 32; h++)
      for (int64_t w = 0; w < 32; w++) {
        if (av[(p * 32 + h) * 32 + w] != 0) continue;
        int found = 0;
        for (int64_t h0 = h - 4; h0 <= h && !found; h0++)
          for (int64_t w0 = w - 4; w0 <= w && !found; w0++) {
            int all = 1;
            for (int64_t hh = h0; hh < h0 + 5 && all; hh++)
              for (int64_t ww = w0; ww < w0 + 5 && all; ww++)
                if (hh >= 0 && hh < 32 && ww >= 0 && ww < 32 && av[(p * 32 + hh) * 32 + ww] != 0) all = 0;
            found = all;
          }
        cr_assert(found, "dropped pixel (%lld, %lld, %lld) outside a 5x5 block", (long long)p, (long long)h, (long long)w);
      }
  free(av);
  free(bv);
  free(cv);
  lam_tensor_free(a);
  lam_tensor_free(b);
  lam_tensor_free(c);
  lam_tensor_free(x);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

Test(dropblock, layer_modes_and_bad_input) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(22);
  int64_t shape[4] = {2, 3, 8, 8};
  lam_tensor *x = tu_rand_f32(ctx, &r, 4, shape, -1, 1);
  lam_tensor *x3 = tu_rand_f32(ctx, &r, 3, shape, -1, 1);
  lam_tensor *xi = lam_tensor_zeros(ctx, LAM_I32, 4, shape);
  tu_mark m = tu_mark_now(ctx);
  lam_layer *l = lam_nn_dropblock(0.2, 3, 1.0);
  cr_assert(l, "%s", lam_last_error());
  lam_vars *v = NULL;
  cr_assert_eq(lam_layer_init(l, ctx, lam_rng_key_make(1), LAM_F32, &v), LAM_OK);
  cr_assert_eq(lam_ptree_leaf_count(lam_vars_params(v)), 0);
  lam_tensor *y = NULL;
  /* evaluation: the identity */
  cr_assert_eq(lam_layer_apply(l, v, x, NULL, &y), LAM_OK);
  cr_assert_eq(y, x);
  lam_tensor_free(y);
  /* training: needs a key, then equals the functional form with it */
  lam_apply_opts o = {true, NULL, NULL, NULL};
  tu_assert_status(lam_layer_apply(l, v, x, &o, &y), LAM_ERR_INVALID_ARGUMENT, "needs an rng key");
  lam_rng_key key = lam_rng_key_make(77);
  o.rng = &key;
  cr_assert_eq(lam_layer_apply(l, v, x, &o, &y), LAM_OK, "%s", lam_last_error());
  lam_tensor *want = lam_dropblock(x, 0.2, 3, 1.0, key);
  float *yv = tu_read_f32(y), *wv = tu_read_f32(want);
  cr_assert_eq(memcmp(yv, wv, 2 * 3 * 8 * 8 * 4), 0);
  free(yv);
  free(wv);
  lam_tensor_free(y);
  lam_tensor_free(want);
  tu_assert_status(lam_layer_apply(l, v, x3, &o, &y), LAM_ERR_SHAPE, "dropblock expects [N, C, H, W]");
  lam_vars_free(v);
  lam_layer_free(l);
  /* rate 0: identity */
  lam_tensor *same = lam_dropblock(x, 0, 3, 1.0, key);
  cr_assert_eq(same, x);
  lam_tensor_free(same);
  lam_error_clear();
  tu_assert_fails(lam_dropblock(NULL, 0.1, 3, 1, key), LAM_ERR_NULL, "lam_dropblock: x is NULL");
  tu_assert_fails(lam_dropblock(x3, 0.1, 3, 1, key), LAM_ERR_SHAPE, "need [N, C, H, W]");
  tu_assert_fails(lam_dropblock(xi, 0.1, 3, 1, key), LAM_ERR_DTYPE, "need f32 or f64");
  tu_assert_fails(lam_dropblock(x, 1.5, 3, 1, key), LAM_ERR_INVALID_ARGUMENT, "rate 1.5");
  tu_assert_fails(lam_dropblock(x, 0.1, 3, 2, key), LAM_ERR_INVALID_ARGUMENT, "gamma_scale 2");
  tu_assert_fails(lam_dropblock(x, 0.1, 0, 1, key), LAM_ERR_INVALID_ARGUMENT, "block_size 0");
  tu_assert_fails(lam_nn_dropblock(NAN, 3, 1), LAM_ERR_INVALID_ARGUMENT, "lam_nn_dropblock: rate");
  tu_assert_fails(lam_nn_dropblock(0.1, -1, 1), LAM_ERR_INVALID_ARGUMENT, "block_size -1");
  tu_assert_fails(lam_nn_dropblock(0.1, 3, -0.5), LAM_ERR_INVALID_ARGUMENT, "gamma_scale -0.5");
  tu_assert_no_leak(ctx, m);
  lam_tensor_free(x);
  lam_tensor_free(x3);
  lam_tensor_free(xi);
  lam_ctx_free(ctx);
}

/* ---- stochastic depth ------------------------------------------------------------ */

typedef struct {
  double rate;
  lam_stochastic_depth_mode mode;
  lam_rng_key key;
} sdcase;

static lam_tensor *sd_fn(lam_tensor *const *xs, int n, void *user) {
  (void)n;
  const sdcase *c = user;
  return lam_stochastic_depth(xs[0], c->rate, c->mode, c->key);
}

Test(stochastic_depth, rows_and_batch_match_host) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(23);
  tu_mark m = tu_mark_now(ctx);
  for (int mode = 0; mode < 2; mode++)
    for (int k = 0; k < 3; k++) {
      sdcase c = {k == 0 ? 0.3 : k == 1 ? 0.5 : 1.0, (lam_stochastic_depth_mode)mode,
                  lam_rng_key_make(200 + 10 * mode + k)};
      int64_t shape[3] = {33, 3, 5}, nshape[3] = {mode ? 1 : 33, 1, 1};
      lam_tensor *x = tu_rand_f64(ctx, &r, 3, shape, -2, 2), *dy = tu_rand_f64(ctx, &r, 3, shape, -1, 1);
      lam_tensor *keep = lam_random_bernoulli(ctx, c.key, 1.0 - c.rate, 3, nshape);
      uint8_t *kv = read_u8(keep);
      lam_tensor *y = NULL, *dx = NULL;
      cr_assert_eq(lam__vjp(ctx, sd_fn, &c, &x, 1, dy, &y, &dx), LAM_OK, "%s", lam_last_error());
      double *xv = tu_read_f64(x), *yv = tu_read_f64(y), *dyv = tu_read_f64(dy), *dxv = tu_read_f64(dx);
      int kept = 0;
      for (int64_t e = 0; e < 33 * 15; e++) {
        int row = mode ? 0 : (int)(e / 15);
        double mult = kv[row] ? 1.0 / (1.0 - c.rate) : 0.0;
        if (c.rate == 1.0) mult = 0;
        kept += kv[row] != 0;
        cr_assert(fabs(yv[e] - xv[e] * mult) <= 1e-12 * fabs(xv[e] * mult), "mode %d rate %g element %lld",
                  mode, c.rate, (long long)e);
        cr_assert(fabs(dxv[e] - dyv[e] * mult) <= 1e-12 * fabs(dyv[e] * mult), "dx element %lld", (long long)e);
      }
      if (c.rate == 1.0) cr_assert_eq(kept, 0);
      free(kv);
      free(xv);
      free(yv);
      free(dyv);
      free(dxv);
      lam_tensor_free(keep);
      lam_tensor_free(x);
      lam_tensor_free(dy);
      lam_tensor_free(y);
      lam_tensor_free(dx);
    }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* Rows survive with probability 1 - rate and are all-or-nothing. */
Test(stochastic_depth, survival_rate) {
  lam_ctx *ctx = tu_ctx();
  int64_t shape[2] = {4000, 7};
  lam_tensor *x = lam_tensor_full(ctx, LAM_F32, 2, shape, 1.0);
  lam_tensor *y = lam_stochastic_depth(x, 0.25, LAM_STOCHASTIC_DEPTH_ROW, lam_rng_key_make(9));
  float *v = tu_read_f32(y);
  int kept = 0;
  for (int i = 0; i < 4000; i++) {
    for (int j = 1; j < 7; j++) cr_assert_eq(v[i * 7 + j], v[i * 7], "row %d not uniform", i);
    cr_assert(v[i * 7] == 0 || fabsf(v[i * 7] - 1.0f / 0.75f) < 1e-6f, "row %d value %g", i, v[i * 7]);
    kept += v[i * 7] != 0;
  }
  /* 4000 draws at p = 0.75: sd 27; 5 sd bounds */
  cr_assert(abs(kept - 3000) < 140, "kept %d of 4000 rows", kept);
  free(v);
  lam_tensor_free(y);
  lam_tensor_free(x);
  lam_ctx_free(ctx);
}

Test(stochastic_depth, layer_modes_and_bad_input) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(24);
  int64_t shape[3] = {6, 3, 4};
  lam_tensor *x = tu_rand_f32(ctx, &r, 3, shape, -1, 1);
  lam_tensor *xi = lam_tensor_zeros(ctx, LAM_I32, 3, shape);
  lam_tensor *s = lam_tensor_scalar(ctx, LAM_F32, 1.0);
  tu_mark m = tu_mark_now(ctx);
  lam_layer *l = lam_nn_stochastic_depth(0.5, LAM_STOCHASTIC_DEPTH_BATCH);
  lam_vars *v = NULL;
  cr_assert_eq(lam_layer_init(l, ctx, lam_rng_key_make(1), LAM_F32, &v), LAM_OK);
  lam_tensor *y = NULL;
  lam_apply_opts o = {false, NULL, NULL, NULL};
  cr_assert_eq(lam_layer_apply(l, v, x, &o, &y), LAM_OK);
  cr_assert_eq(y, x);
  lam_tensor_free(y);
  o.training = true;
  tu_assert_status(lam_layer_apply(l, v, x, &o, &y), LAM_ERR_INVALID_ARGUMENT, "stochastic_depth in training needs an rng key");
  lam_rng_key key = lam_rng_key_make(3);
  o.rng = &key;
  cr_assert_eq(lam_layer_apply(l, v, x, &o, &y), LAM_OK);
  lam_tensor *want = lam_stochastic_depth(x, 0.5, LAM_STOCHASTIC_DEPTH_BATCH, key);
  float *yv = tu_read_f32(y), *wv = tu_read_f32(want);
  cr_assert_eq(memcmp(yv, wv, 72 * 4), 0);
  free(yv);
  free(wv);
  lam_tensor_free(y);
  lam_tensor_free(want);
  lam_vars_free(v);
  lam_layer_free(l);
  lam_tensor *same = lam_stochastic_depth(x, 0, LAM_STOCHASTIC_DEPTH_ROW, key);
  cr_assert_eq(same, x);
  lam_tensor_free(same);
  lam_error_clear();
  tu_assert_fails(lam_stochastic_depth(NULL, 0.1, 0, key), LAM_ERR_NULL, "x is NULL");
  tu_assert_fails(lam_stochastic_depth(xi, 0.1, 0, key), LAM_ERR_DTYPE, "need a float dtype");
  tu_assert_fails(lam_stochastic_depth(s, 0.1, 0, key), LAM_ERR_SHAPE, "scalar");
  tu_assert_fails(lam_stochastic_depth(x, -0.1, 0, key), LAM_ERR_INVALID_ARGUMENT, "rate -0.1");
  tu_assert_fails(lam_stochastic_depth(x, 0.1, (lam_stochastic_depth_mode)7, key),
                  LAM_ERR_INVALID_ARGUMENT, "mode 7");
  tu_assert_fails(lam_nn_stochastic_depth(2, LAM_STOCHASTIC_DEPTH_ROW), LAM_ERR_INVALID_ARGUMENT, "lam_nn_stochastic_depth: rate 2");
  tu_assert_no_leak(ctx, m);
  lam_tensor_free(x);
  lam_tensor_free(xi);
  lam_tensor_free(s);
  lam_ctx_free(ctx);
}

Test(linear_scheduler, values_and_bad_input) {
  double out[5];
  cr_assert_eq(lam_stochastic_depth_rates(0.1, 0.0, 5, out), LAM_OK);
  const double want[5] = {0, 0.025, 0.05, 0.075, 0.1};
  for (int i = 0; i < 5; i++) cr_assert(fabs(out[i] - want[i]) < 1e-15, "out[%d] = %g", i, out[i]);
  cr_assert_eq(lam_stochastic_depth_rates(0.3, 0.1, 3, out), LAM_OK);
  cr_assert(fabs(out[1] - 0.2) < 1e-15 && out[2] == 0.3 && out[0] == 0.1);
  cr_assert_eq(lam_stochastic_depth_rates(0.5, 0.2, 1, out), LAM_OK);
  cr_assert_eq(out[0], 0.2);
  tu_assert_status(lam_stochastic_depth_rates(0.1, 0, 0, out), LAM_ERR_INVALID_ARGUMENT, "depth 0");
  tu_assert_status(lam_stochastic_depth_rates(0.1, 0, 3, NULL), LAM_ERR_NULL, "out is NULL");
  tu_assert_status(lam_stochastic_depth_rates(NAN, 0, 3, out), LAM_ERR_INVALID_ARGUMENT, "finite");
}
