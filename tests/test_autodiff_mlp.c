/* test_autodiff_mlp.c: the tape on a composite. A 2-layer MLP,
 * loss = cross_entropy(relu(x W1^T + b1) W2^T + b2, y) and an MSE variant
 * with tanh, is built from raw ops (matmul_t, add, relu/tanh, log_softmax,
 * gather or one_hot, mean...) and once with the loss functions of loss.h;
 * lam_value_and_grad on a parameter tree must give PyTorch's loss and
 * gradients in f64 to 1e-10 (tests/data/autodiff_mlp_golden.safetensors
 * from tools/gen_autodiff_golden.py), and f32 to 1e-4. Then memory: 100 calls
 * leave the live tensors and bytes unchanged, and a failing op inside the
 * loss function (on call 50 of 100) returns its status and leaks nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define N 8
#define D 5
#define H 7
#define C 3

typedef enum {
  CE_GATHER,  /* -mean(gather(log_softmax(logits), y)) */
  CE_ONE_HOT, /* -sum(one_hot(y) * log_softmax(logits)) / N */
  CE_LOSS,    /* lam_cross_entropy */
  MSE_RAW,    /* mean(square(out - t)) with tanh hidden units */
  MSE_LOSS    /* lam_mse_loss, tanh hidden units */
} variant;

typedef struct mlp {
  lam_ctx *ctx;
  lam_dtype dt;
  lam_tensor *x, *t;    /* inputs [N, D], regression targets [N, C] */
  lam_tensor *y, *ycol; /* i32 class targets [N] and [N, 1] */
  lam_ptree *params;    /* "0.weight" [H, D], "0.bias", "2.weight" [C, H], "2.bias" */
  tu_golden *gold;      /* the inputs, PyTorch's losses and gradients */
  variant v;
  int calls, fail_at;   /* fail_at > 0: call number fail_at makes a shape error */
} mlp;

static void set_param(mlp *m, const char *path, int nd, const int64_t *s, const double *v) {
  lam_tensor *p = tu_from_f64(m->ctx, m->dt, nd, s, v);
  cr_assert_eq(lam_ptree_set(m->params, path, p), LAM_OK, "%s", lam_last_error());
  lam_tensor_free(p);
}

static void mlp_init(mlp *m, lam_ctx *ctx, lam_dtype dt, variant v) {
  memset(m, 0, sizeof *m);
  m->ctx = ctx;
  m->dt = dt;
  m->v = v;
  m->gold = tu_golden_load("autodiff_mlp_golden.safetensors");
  m->x = tu_from_f64(ctx, dt, 2, (int64_t[]){N, D}, tu_golden_values(m->gold, "mlp.x"));
  m->t = tu_from_f64(ctx, dt, 2, (int64_t[]){N, C}, tu_golden_values(m->gold, "mlp.t"));
  int32_t y[N];
  for (int i = 0; i < N; i++) y[i] = (int32_t)tu_golden_values(m->gold, "mlp.y")[i];
  m->y = lam_tensor_from_host(ctx, LAM_I32, 1, (int64_t[]){N}, y);
  m->ycol = lam_tensor_from_host(ctx, LAM_I32, 2, (int64_t[]){N, 1}, y);
  cr_assert(m->y && m->ycol);
  m->params = lam_ptree_dict();
  set_param(m, "0.weight", 2, (int64_t[]){H, D}, tu_golden_values(m->gold, "mlp.w1"));
  set_param(m, "0.bias", 1, (int64_t[]){H}, tu_golden_values(m->gold, "mlp.b1"));
  set_param(m, "2.weight", 2, (int64_t[]){C, H}, tu_golden_values(m->gold, "mlp.w2"));
  set_param(m, "2.bias", 1, (int64_t[]){C}, tu_golden_values(m->gold, "mlp.b2"));
}

static void mlp_free(mlp *m) {
  lam_tensor_free(m->x);
  lam_tensor_free(m->t);
  lam_tensor_free(m->y);
  lam_tensor_free(m->ycol);
  lam_ptree_free(m->params);
  tu_golden_free(m->gold);
}

/* Temporaries of one loss evaluation, freed together. Every op returns NULL
 * on a NULL input, so a failure anywhere falls through to a NULL loss. */
typedef struct scope {
  lam_tensor *t[32];
  int n;
} scope;

static lam_tensor *K(scope *s, lam_tensor *t) {
  cr_assert(s->n < 32);
  s->t[s->n++] = t;
  return t;
}

static lam_tensor *mlp_loss(lam_ptree *p, void *user) {
  mlp *m = user;
  m->calls++;
  cr_assert(lam_grad_is_recording(m->ctx), "the loss runs while recording");
  lam_tensor *w1 = lam_ptree_get(p, "0.weight"), *b1 = lam_ptree_get(p, "0.bias");
  lam_tensor *w2 = lam_ptree_get(p, "2.weight"), *b2 = lam_ptree_get(p, "2.bias");
  scope s = {{0}, 0};
  lam_tensor *pre = K(&s, lam_add(K(&s, lam_matmul_t(m->x, w1, 0, 1)), b1));
  bool ce = m->v == CE_GATHER || m->v == CE_ONE_HOT || m->v == CE_LOSS;
  lam_tensor *h = K(&s, ce ? lam_relu(pre) : lam_tanh(pre));
  /* the deliberate failure: [N, H] x [H, C]^T has mismatched inner dims */
  bool fail = m->fail_at > 0 && m->calls == m->fail_at;
  lam_tensor *out = K(&s, lam_matmul_t(h, w2, 0, !fail));
  lam_tensor *logits = K(&s, lam_add(out, b2));
  lam_tensor *loss = NULL;
  switch (m->v) {
    case CE_GATHER: {
      lam_tensor *lsm = K(&s, lam_log_softmax(logits, 1));
      lam_tensor *picked = K(&s, lam_gather(lsm, 1, m->ycol)); /* [N, 1] */
      loss = lam_neg(K(&s, lam_mean(picked, 0, NULL, 0)));
      break;
    }
    case CE_ONE_HOT: {
      lam_tensor *lsm = K(&s, lam_log_softmax(logits, -1));
      lam_tensor *oh = K(&s, lam_one_hot(m->y, C, m->dt));
      lam_tensor *tot = K(&s, lam_sum(K(&s, lam_mul(oh, lsm)), 2, (int[]){0, 1}, 0));
      loss = lam_mul_scalar(tot, -1.0 / N);
      break;
    }
    case CE_LOSS: loss = lam_cross_entropy(logits, m->y, NULL); break;
    case MSE_RAW:
      loss = lam_mean(K(&s, lam_square(K(&s, lam_sub(logits, m->t)))), 0, NULL, 0);
      break;
    case MSE_LOSS: loss = lam_mse_loss(logits, m->t, NULL); break;
  }
  for (int i = 0; i < s.n; i++) lam_tensor_free(s.t[i]);
  return loss;
}

static const char *variant_name(variant v) {
  static const char *names[] = {"ce gather", "ce one_hot", "lam_cross_entropy", "mse raw",
                                "lam_mse_loss"};
  return names[v];
}

/* One value_and_grad, compared with the golden loss and gradients. */
static void check_variant(lam_ctx *ctx, lam_dtype dt, variant v, double atol, double rtol) {
  mlp m;
  mlp_init(&m, ctx, dt, v);
  tu_mark mark = tu_mark_now(ctx);
  lam_tensor *loss = NULL;
  lam_ptree *grads = NULL;
  cr_assert_eq(lam_value_and_grad(ctx, mlp_loss, &m, m.params, &loss, &grads), LAM_OK, "%s: %s",
               variant_name(v), lam_last_error());
  cr_assert_eq(m.calls, 1);
  bool ce = v <= CE_LOSS;
  const char *lname = ce ? "ce" : "mse";
  double want_loss = tu_golden_values(m.gold, "%s.loss", lname)[0];
  const double *want[4] = {tu_golden_values(m.gold, "%s.gw1", lname),
                           tu_golden_values(m.gold, "%s.gb1", lname),
                           tu_golden_values(m.gold, "%s.gw2", lname),
                           tu_golden_values(m.gold, "%s.gb2", lname)};
  static const char *paths[4] = {"0.weight", "0.bias", "2.weight", "2.bias"};
  char what[96];
  lam_tensor *l64 = lam_tensor_cast(loss, LAM_F64);
  double lv;
  cr_assert_eq(lam_tensor_item(l64, &lv), LAM_OK);
  snprintf(what, sizeof what, "%s %s loss", variant_name(v), lam_dtype_name(dt));
  tu_assert_close_f64(&lv, &want_loss, 1, atol, rtol, what);
  cr_assert_eq(lam_ptree_leaf_count(grads), 4, "%s: %d gradients", what,
               lam_ptree_leaf_count(grads));
  for (int k = 0; k < 4; k++) {
    lam_tensor *g = lam_ptree_get(grads, paths[k]);
    cr_assert(g, "%s: no gradient for %s", variant_name(v), paths[k]);
    cr_assert(lam_tensor_same_shape(g, lam_ptree_get(m.params, paths[k])), "%s: %s shape",
              variant_name(v), paths[k]);
    cr_assert_eq(lam_tensor_dtype(g), dt);
    lam_tensor *g64 = lam_tensor_cast(g, LAM_F64);
    double *gv = tu_read_f64(g64);
    snprintf(what, sizeof what, "%s %s grad %s", variant_name(v), lam_dtype_name(dt), paths[k]);
    tu_assert_close_f64(gv, want[k], lam_tensor_numel(g), atol, rtol, what);
    free(gv);
    lam_tensor_free(g64);
  }
  lam_tensor_free(l64);
  lam_tensor_free(loss);
  lam_ptree_free(grads);
  tu_assert_no_leak(ctx, mark);
  cr_assert(!lam_grad_is_recording(ctx));
  mlp_free(&m);
}

static lam_ctx *ctx_f64(void) {
  lam_ctx *ctx = tu_ctx();
  if (!lam_ctx_device(ctx)->fp64) {
    lam_ctx_free(ctx);
    cr_skip_test("no fp64");
  }
  return ctx;
}

/* f64: |got - want| <= 1e-12 + 1e-10 |want| (the atol covers gradients that
 * cancel to ~1e-3 of the others' scale). */
#define ATOL64 1e-12
#define RTOL64 1e-10

Test(autodiff_mlp, cross_entropy_from_raw_ops_matches_pytorch) {
  lam_ctx *ctx = ctx_f64();
  check_variant(ctx, LAM_F64, CE_GATHER, ATOL64, RTOL64);
  check_variant(ctx, LAM_F64, CE_ONE_HOT, ATOL64, RTOL64);
  lam_ctx_free(ctx);
}

Test(autodiff_mlp, cross_entropy_loss_fn_matches_pytorch) {
  lam_ctx *ctx = ctx_f64();
  check_variant(ctx, LAM_F64, CE_LOSS, ATOL64, RTOL64);
  lam_ctx_free(ctx);
}

Test(autodiff_mlp, mse_tanh_matches_pytorch) {
  lam_ctx *ctx = ctx_f64();
  check_variant(ctx, LAM_F64, MSE_RAW, ATOL64, RTOL64);
  check_variant(ctx, LAM_F64, MSE_LOSS, ATOL64, RTOL64);
  lam_ctx_free(ctx);
}

/* The same composites in f32 (every device has it): PyTorch's f64 values to f32 accuracy. */
Test(autodiff_mlp, f32_matches_pytorch_loosely) {
  lam_ctx *ctx = tu_ctx();
  for (int v = CE_GATHER; v <= MSE_LOSS; v++) check_variant(ctx, LAM_F32, (variant)v, 1e-5, 1e-4);
  lam_ctx_free(ctx);
}

/* Runs value_and_grad once; returns its status, and the gradients as one flat host array. */
static lam_status one_call(mlp *m, double *flat) {
  lam_tensor *loss = NULL;
  lam_ptree *grads = NULL;
  lam_status st = lam_value_and_grad(m->ctx, mlp_loss, m, m->params, &loss, &grads);
  if (st != LAM_OK) {
    cr_assert(loss == NULL && grads == NULL, "outputs must be NULL on failure");
    return st;
  }
  int64_t off = 0;
  for (int k = 0; k < lam_ptree_leaf_count(grads); k++) {
    lam_tensor *g;
    cr_assert_eq(lam_ptree_leaf(grads, k, NULL, &g), LAM_OK);
    cr_assert_eq(lam_tensor_to_host(g, flat + off, lam_tensor_nbytes(g)), LAM_OK);
    off += lam_tensor_numel(g);
  }
  cr_assert_eq(off, H * D + H + C * H + C);
  lam_tensor_free(loss);
  lam_ptree_free(grads);
  return LAM_OK;
}

#define N_GRADS (H * D + H + C * H + C)

/* 100 calls: live tensors and bytes come back to where they were, the pool
 * stops growing after the first call, and every call gives the same
 * gradients bit for bit. */
Test(autodiff_mlp, repeated_calls_leave_memory_unchanged) {
  lam_ctx *ctx = ctx_f64();
  mlp m;
  mlp_init(&m, ctx, LAM_F64, CE_GATHER);
  tu_mark mark = tu_mark_now(ctx);
  double first[N_GRADS], now[N_GRADS];
  cr_assert_eq(one_call(&m, first), LAM_OK, "%s", lam_last_error());
  tu_assert_no_leak(ctx, mark);
  lam_stats s1, s;
  cr_assert_eq(lam_ctx_stats(ctx, &s1), LAM_OK);
  for (int i = 1; i < 100; i++) {
    cr_assert_eq(one_call(&m, now), LAM_OK, "call %d: %s", i + 1, lam_last_error());
    cr_assert(memcmp(first, now, sizeof now) == 0, "call %d gave other gradients", i + 1);
  }
  cr_assert_eq(m.calls, 100);
  tu_assert_no_leak(ctx, mark);
  cr_assert_eq(lam_ctx_stats(ctx, &s), LAM_OK);
  cr_assert_eq(s.pool_bytes, s1.pool_bytes, "pool grew from %lld to %lld bytes",
               (long long)s1.pool_bytes, (long long)s.pool_bytes);
  cr_assert_eq(s.peak_bytes, s1.peak_bytes, "peak grew from %lld to %lld bytes",
               (long long)s1.peak_bytes, (long long)s.peak_bytes);
  cr_assert(!lam_grad_is_recording(ctx));
  mlp_free(&m);
  lam_ctx_free(ctx);
}

/* A shape error inside the loss on call 50: that call returns the op's
 * status and message with NULL outputs, nothing leaks, the tape is closed,
 * and the calls after it work again and give the same gradients. */
Test(autodiff_mlp, failing_op_inside_fn_returns_status_and_leaks_nothing) {
  lam_ctx *ctx = ctx_f64();
  mlp m;
  mlp_init(&m, ctx, LAM_F64, CE_ONE_HOT);
  m.fail_at = 50;
  tu_mark mark = tu_mark_now(ctx);
  double first[N_GRADS], now[N_GRADS];
  cr_assert_eq(one_call(&m, first), LAM_OK, "%s", lam_last_error());
  int failed = 0;
  for (int i = 1; i < 100; i++) {
    lam_status st = one_call(&m, now);
    if (i + 1 == 50) {
      tu_assert_status(st, LAM_ERR_SHAPE, "lam_matmul");
      failed++;
      tu_assert_no_leak(ctx, mark);
      cr_assert(!lam_grad_is_recording(ctx), "the tape stays open after a failure");
      continue;
    }
    cr_assert_eq(st, LAM_OK, "call %d: %s", i + 1, lam_last_error());
    cr_assert(memcmp(first, now, sizeof now) == 0, "call %d gave other gradients", i + 1);
  }
  cr_assert_eq(failed, 1);
  cr_assert_eq(m.calls, 100);
  tu_assert_no_leak(ctx, mark);
  mlp_free(&m);
  lam_ctx_free(ctx);
}
