/* test_quant.c: group-wise affine quantization (include/lamina/quant.h; the
 * ops of src/ops/quant.c and cl/quant.cl, the layers of src/nn/quant_layers.c)
 * against plain C references: MLX's packing (little end first in 32-bit
 * words) bit for bit, quantize (bit-exact words, scales and biases),
 * dequantize, quantized_matmul through its three kernels (LAMINA_QMM_PATH
 * forces each) on odd out-features and batch sizes, an f64 finite-difference check
 * of x's gradient, the quantized layers, lam_quantize_layer (conversion,
 * predicate, gradients only for the float params), safetensors round trips
 * (and MLX's U32 words loading as i32), and bad input. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static const int BITS[2] = {4, 8};
static const int GROUPS[3] = {32, 64, 128};

/* ---- references ---------------------------------------------------------------- */

/* MLX's affine quantization of one [N, K] f32 matrix, float arithmetic. */
static void ref_quantize(const float *w, int64_t N, int64_t K, int gs, int bits, uint32_t *words, float *s,
                         float *b) {
  const int per = 32 / bits, qmax = (1 << bits) - 1;
  memset(words, 0, (size_t)(N * K / per) * sizeof *words);
  for (int64_t n = 0; n < N; n++)
    for (int64_t g = 0; g < K / gs; g++) {
      const float *v = w + n * K + g * gs;
      float lo = v[0], hi = v[0];
      for (int i = 0; i < gs; i++) lo = fminf(lo, v[i]), hi = fmaxf(hi, v[i]);
      const float scale = (hi - lo) / (float)qmax;
      s[n * (K / gs) + g] = scale, b[n * (K / gs) + g] = lo;
      for (int i = 0; i < gs; i++) {
        float q = scale > 0 ? roundf((v[i] - lo) / scale) : 0;
        q = q < 0 ? 0 : q > qmax ? (float)qmax : q;
        const int64_t k = g * gs + i;
        words[(n * K + k) / per] |= (uint32_t)q << (bits * (k % per));
      }
    }
}

/* Value k of row n, unpacked the way MLX lays words out. */
static int ref_q(const uint32_t *words, int64_t K, int bits, int64_t n, int64_t k) {
  const int per = 32 / bits;
  return (int)((words[(n * K + k) / per] >> (bits * (k % per))) & ((1u << bits) - 1u));
}

static void ref_dequant(const uint32_t *words, const double *s, const double *b, int64_t N, int64_t K, int gs,
                        int bits, double *w) {
  for (int64_t n = 0; n < N; n++)
    for (int64_t k = 0; k < K; k++)
      w[n * K + k] = s[n * (K / gs) + k / gs] * ref_q(words, K, bits, n, k) + b[n * (K / gs) + k / gs];
}

static lam_tensor *rand_dt(lam_ctx *ctx, tu_rng *r, lam_dtype dt, int64_t a, int64_t b) {
  return dt == LAM_F64 ? tu_rand_f64(ctx, r, 2, (int64_t[]){a, b}, -1, 1) : tu_rand_f32(ctx, r, 2, (int64_t[]){a, b}, -1, 1);
}

static uint32_t *read_words(const lam_tensor *t) {
  uint32_t *w = malloc(lam_tensor_nbytes(t));
  cr_assert_eq(lam_tensor_to_host(t, w, lam_tensor_nbytes(t)), LAM_OK);
  return w;
}

/* ---- packing and quantize ---------------------------------------------------------- */

/* Known q values with scale 1 and bias 0 dequantize to themselves: the words follow MLX's layout. */
Test(quant, pack_roundtrip) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(1);
  tu_mark mark = tu_mark_now(ctx);
  for (int bi = 0; bi < 2; bi++)
    for (int gi = 0; gi < 3; gi++) {
      const int bits = BITS[bi], gs = GROUPS[gi], per = 32 / bits;
      const int64_t N = 1 + 2 * tu_randint(&r, 0, 4), K = gs * tu_randint(&r, 1, 4);
      int *q = malloc((size_t)(N * K) * sizeof *q);
      uint32_t *words = calloc((size_t)(N * K / per), sizeof *words);
      for (int64_t i = 0; i < N * K; i++) {
        q[i] = (int)tu_randint(&r, 0, 1 << bits);
        words[i / per] |= (uint32_t)q[i] << (bits * (i % per));
      }
      lam_tensor *wq = lam_tensor_from_host(ctx, LAM_I32, 2, (int64_t[]){N, K / per}, words);
      lam_tensor *s = lam_tensor_full(ctx, LAM_F32, 2, (int64_t[]){N, K / gs}, 1.0);
      lam_tensor *b = lam_tensor_zeros(ctx, LAM_F32, 2, (int64_t[]){N, K / gs});
      lam_tensor *d = lam_dequantize(wq, s, b, gs, bits);
      cr_assert(d, "%s", lam_last_error());
      float *got = tu_read_f32(d);
      for (int64_t i = 0; i < N * K; i++)
        cr_assert_eq(got[i], (float)q[i], "bits %d gs %d: element %lld is %g, packed %d", bits, gs,
                     (long long)i, got[i], q[i]);
      free(got), free(q), free(words);
      lam_tensor_free(wq), lam_tensor_free(s), lam_tensor_free(b), lam_tensor_free(d);
    }
  tu_assert_no_leak(ctx, mark);
  lam_ctx_free(ctx);
}

Test(quant, quantize_matches_reference) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(2);
  tu_mark mark = tu_mark_now(ctx);
  for (int bi = 0; bi < 2; bi++)
    for (int gi = 0; gi < 3; gi++) {
      const int bits = BITS[bi], gs = GROUPS[gi], per = 32 / bits;
      const int64_t N = 1 + 2 * tu_randint(&r, 0, 5), K = gs * tu_randint(&r, 1, 4), G = K / gs;
      float *w = malloc((size_t)(N * K) * sizeof *w);
      tu_fill_uniform_f32(&r, w, N * K, -2, 3);
      w[0] = w[1]; /* a repeated value */
      for (int i = 0; i < gs; i++) w[(N - 1) * K + i] = 0.25f; /* a constant group: scale 0 */
      lam_tensor *wt = lam_tensor_from_host(ctx, LAM_F32, 2, (int64_t[]){N, K}, w);
      lam_tensor *wq = NULL, *s = NULL, *b = NULL;
      cr_assert_eq(lam_quantize(wt, gs, bits, &wq, &s, &b), LAM_OK, "%s", lam_last_error());
      cr_assert(lam_tensor_dtype(wq) == LAM_I32 && lam_tensor_dim(wq, 0) == N && lam_tensor_dim(wq, 1) == K / per);
      cr_assert(lam_tensor_dim(s, 0) == N && lam_tensor_dim(s, 1) == G && lam_tensor_same_shape(s, b));
      uint32_t *rw = malloc((size_t)(N * K / per) * sizeof *rw);
      float *rs = malloc((size_t)(N * G) * sizeof *rs), *rb = malloc((size_t)(N * G) * sizeof *rb);
      ref_quantize(w, N, K, gs, bits, rw, rs, rb);
      uint32_t *gw = read_words(wq);
      float *gsc = tu_read_f32(s), *gb = tu_read_f32(b);
      cr_assert(memcmp(gw, rw, (size_t)(N * K / per) * 4) == 0, "bits %d gs %d: packed words differ", bits, gs);
      cr_assert(memcmp(gsc, rs, (size_t)(N * G) * 4) == 0, "bits %d gs %d: scales differ", bits, gs);
      cr_assert(memcmp(gb, rb, (size_t)(N * G) * 4) == 0, "bits %d gs %d: biases differ", bits, gs);
      cr_assert_eq(gsc[(N - 1) * G], 0.0f, "constant group: scale 0");
      /* Dequantize: the reference formula, and within half a step of w. */
      double *sd = malloc((size_t)(N * G) * sizeof *sd), *bd = malloc((size_t)(N * G) * sizeof *bd);
      for (int64_t i = 0; i < N * G; i++) sd[i] = rs[i], bd[i] = rb[i];
      double *want = malloc((size_t)(N * K) * sizeof *want);
      ref_dequant(rw, sd, bd, N, K, gs, bits, want);
      lam_tensor *d = lam_dequantize(wq, s, b, gs, bits);
      cr_assert(d, "%s", lam_last_error());
      tu_assert_tensor_close(d, want, N * K, 1e-6, 1e-6, "dequantize");
      for (int64_t i = 0; i < N * K; i++) {
        const double step = rs[(i / K) * G + (i % K) / gs];
        cr_assert(fabs(want[i] - w[i]) <= 0.5 * step * (1 + 1e-4) + 1e-6, "round trip error at %lld", (long long)i);
      }
      free(w), free(rw), free(rs), free(rb), free(gw), free(gsc), free(gb), free(sd), free(bd), free(want);
      lam_tensor_free(wt), lam_tensor_free(wq), lam_tensor_free(s), lam_tensor_free(b), lam_tensor_free(d);
    }
  tu_assert_no_leak(ctx, mark);
  lam_ctx_free(ctx);
}

/* ---- quantized_matmul -------------------------------------------------------------- */

typedef struct qw {
  lam_tensor *wq, *s, *b;
  double *dense; /* dequantized [N, K] (host reference) */
  int64_t N, K;
  int gs, bits;
} qw;

static qw make_qw(lam_ctx *ctx, tu_rng *r, lam_dtype dt, int64_t N, int64_t K, int gs, int bits) {
  qw q = {.N = N, .K = K, .gs = gs, .bits = bits};
  lam_tensor *w = rand_dt(ctx, r, dt, N, K);
  cr_assert_eq(lam_quantize(w, gs, bits, &q.wq, &q.s, &q.b), LAM_OK, "%s", lam_last_error());
  lam_tensor_free(w);
  uint32_t *words = read_words(q.wq);
  double *s = tu_to_f64(q.s), *b = tu_to_f64(q.b);
  q.dense = malloc((size_t)(N * K) * sizeof(double));
  ref_dequant(words, s, b, N, K, gs, bits, q.dense);
  free(words), free(s), free(b);
  return q;
}

static void free_qw(qw *q) {
  lam_tensor_free(q->wq), lam_tensor_free(q->s), lam_tensor_free(q->b);
  free(q->dense);
}

static void check_qmm(lam_ctx *ctx, tu_rng *r, lam_dtype dt, const qw *q, int64_t M, const char *path) {
  lam_tensor *x = rand_dt(ctx, r, dt, M, q->K);
  double *xh = tu_to_f64(x), *want = calloc((size_t)(M * q->N), sizeof *want);
  for (int64_t m = 0; m < M; m++)
    for (int64_t n = 0; n < q->N; n++) {
      double a = 0;
      for (int64_t k = 0; k < q->K; k++) a += xh[m * q->K + k] * q->dense[n * q->K + k];
      want[m * q->N + n] = a;
    }
  lam_tensor *y = lam_quantized_matmul(x, q->wq, q->s, q->b, q->gs, q->bits);
  cr_assert(y, "%s", lam_last_error());
  cr_assert(lam_tensor_dim(y, 0) == M && lam_tensor_dim(y, 1) == q->N);
  char what[128];
  snprintf(what, sizeof what, "qmm %s %s bits %d gs %d M %lld N %lld K %lld", path, lam_dtype_name(dt), q->bits,
           q->gs, (long long)M, (long long)q->N, (long long)q->K);
  const double tol = dt == LAM_F64 ? 1e-10 : 2e-5 * sqrt((double)q->K);
  tu_assert_tensor_close(y, want, M * q->N, tol, tol, what);
  free(xh), free(want);
  lam_tensor_free(x), lam_tensor_free(y);
}

static void qmm_suite(const char *path) {
  if (path) setenv("LAMINA_QMM_PATH", path, 1);
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(3);
  tu_mark mark = tu_mark_now(ctx);
  const int64_t Ms[] = {1, 3, 8, 9, 17, 33};
  const int nm = tu_small() ? 4 : 6;
  for (int bi = 0; bi < 2; bi++)
    for (int gi = 0; gi < 3; gi++) {
      const int64_t N = 1 + 2 * tu_randint(&r, 0, tu_small() ? 5 : 20);
      const int64_t K = GROUPS[gi] * tu_randint(&r, 1, tu_small() ? 2 : 4);
      qw q = make_qw(ctx, &r, LAM_F32, N, K, GROUPS[gi], BITS[bi]);
      for (int mi = 0; mi < nm; mi++) check_qmm(ctx, &r, LAM_F32, &q, Ms[mi], path ? path : "auto");
      free_qw(&q);
    }
  if (tu_has_dtype(ctx, LAM_F64)) {
    qw q = make_qw(ctx, &r, LAM_F64, 5, 64, 32, 4);
    check_qmm(ctx, &r, LAM_F64, &q, 2, path ? path : "auto");
    check_qmm(ctx, &r, LAM_F64, &q, 19, path ? path : "auto");
    free_qw(&q);
  }
  tu_assert_no_leak(ctx, mark);
  lam_ctx_free(ctx);
}

Test(quant, qmm_auto) { qmm_suite(NULL); }
Test(quant, qmm_force_mv) { qmm_suite("mv"); }
Test(quant, qmm_force_mm) { qmm_suite("mm"); }
Test(quant, qmm_force_rows) { qmm_suite("rows"); }

/* Batch dims and the row chunking of the matrix x vector path (M > 8 forced). */
Test(quant, qmm_batched_shape) {
  setenv("LAMINA_QMM_PATH", "mv", 1);
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(4);
  qw q = make_qw(ctx, &r, LAM_F32, 7, 64, 64, 8);
  lam_tensor *x = tu_rand_f32(ctx, &r, 3, (int64_t[]){3, 5, 64}, -1, 1);
  lam_tensor *y = lam_quantized_matmul(x, q.wq, q.s, q.b, 64, 8);
  cr_assert(y, "%s", lam_last_error());
  cr_assert(lam_tensor_ndim(y) == 3 && lam_tensor_dim(y, 2) == 7 && lam_tensor_dim(y, 1) == 5);
  double *xh = tu_to_f64(x), want[3 * 5 * 7];
  for (int m = 0; m < 15; m++)
    for (int n = 0; n < 7; n++) {
      double a = 0;
      for (int k = 0; k < 64; k++) a += xh[m * 64 + k] * q.dense[n * 64 + k];
      want[m * 7 + n] = a;
    }
  tu_assert_tensor_close(y, want, 105, 1e-4, 1e-4, "batched");
  free(xh);
  lam_tensor_free(x), lam_tensor_free(y);
  free_qw(&q);
  lam_ctx_free(ctx);
}

typedef struct gc_user {
  qw *q;
} gc_user;

static lam_tensor *qmm_fn(lam_tensor *const *xs, int n, void *user) {
  (void)n;
  qw *q = ((gc_user *)user)->q;
  lam_tensor *y = lam_quantized_matmul(xs[0], q->wq, q->s, q->b, q->gs, q->bits);
  lam_tensor *t = y ? lam_tanh(y) : NULL; /* a nonlinear consumer */
  lam_tensor_free(y);
  return t;
}

Test(quant, gradcheck_x) {
  lam_ctx *ctx = tu_ctx();
  if (!tu_has_dtype(ctx, LAM_F64)) {
    lam_ctx_free(ctx);
    cr_skip_test("no f64 on this device");
  }
  tu_rng r = tu_rng_make(5);
  const char *paths[3] = {"mv", "mm", "rows"};
  for (int p = 0; p < 3; p++) {
    setenv("LAMINA_QMM_PATH", paths[p], 1);
    for (int bi = 0; bi < 2; bi++) {
      qw q = make_qw(ctx, &r, LAM_F64, 5, 64, 32, BITS[bi]);
      gc_user u = {&q};
      lam_tensor *x = tu_rand_f64(ctx, &r, 2, (int64_t[]){3, 64}, -0.3, 0.3);
      char what[64];
      snprintf(what, sizeof what, "qmm dx %s bits %d", paths[p], BITS[bi]);
      tu_gradcheck(ctx, qmm_fn, &u, &x, 1, 1e-6, 1e-6, 0, 0, what);
      lam_tensor_free(x);
      free_qw(&q);
    }
  }
  lam_ctx_free(ctx);
}

/* ---- layers ------------------------------------------------------------------------- */

static lam_tensor *apply(lam_layer *l, lam_vars *v, lam_tensor *x) {
  lam_tensor *y = NULL;
  cr_assert_eq(lam_layer_apply(l, v, x, NULL, &y), LAM_OK, "%s", lam_last_error());
  return y;
}

Test(quant, quantized_linear_layer) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(6);
  tu_mark mark = tu_mark_now(ctx);
  lam_layer *l = lam_nn_quantized_linear(64, 9, &(lam_quantize_opts){.group_size = 32, .bits = 8});
  cr_assert(l, "%s", lam_last_error());
  cr_assert_str_eq(lam_layer_name(l), "quantized_linear");
  lam_vars *v = NULL;
  cr_assert_eq(lam_layer_init(l, ctx, lam_rng_key_make(3), LAM_F32, &v), LAM_OK, "%s", lam_last_error());
  lam_ptree *p = lam_vars_params(v);
  lam_tensor *w = lam_ptree_get(p, "weight"), *s = lam_ptree_get(p, "scales"), *b = lam_ptree_get(p, "biases");
  cr_assert(w && s && b && lam_ptree_get(p, "bias"));
  cr_assert(lam_tensor_dtype(w) == LAM_I32 && lam_tensor_dim(w, 1) == 16 && lam_tensor_dim(s, 1) == 2);
  cr_assert(lam_ptree_is_frozen(p, "weight") && lam_ptree_is_frozen(p, "scales") && !lam_ptree_is_frozen(p, "bias"));
  lam_tensor *bias = lam_tensor_full(ctx, LAM_F32, 1, (int64_t[]){9}, 0.5);
  lam_ptree_set(p, "bias", bias);
  lam_tensor *x = tu_rand_f32(ctx, &r, 2, (int64_t[]){4, 64}, -1, 1);
  lam_tensor *y = apply(l, v, x);
  lam_tensor *y0 = lam_quantized_matmul(x, w, s, b, 32, 8);
  double *a = tu_to_f64(y0);
  for (int i = 0; i < 36; i++) a[i] += 0.5;
  tu_assert_tensor_close(y, a, 36, 1e-6, 1e-6, "quantized_linear = qmm + bias");
  free(a);
  lam_tensor *x1 = tu_rand_f32(ctx, &r, 2, (int64_t[]){4, 63}, -1, 1), *y1 = NULL;
  tu_assert_status(lam_layer_apply(l, v, x1, NULL, &y1), LAM_ERR_SHAPE, "quantized_linear");
  lam_tensor_free(x), lam_tensor_free(x1), lam_tensor_free(y), lam_tensor_free(y0), lam_tensor_free(bias);
  lam_vars_free(v);
  lam_layer_free(l);
  tu_assert_fails(lam_nn_quantized_linear(48, 4, NULL), LAM_ERR_SHAPE, "not a multiple of group_size 64");
  tu_assert_fails(lam_nn_quantized_linear(64, 4, &(lam_quantize_opts){.bits = 3}), LAM_ERR_INVALID_ARGUMENT, "bits 3");
  tu_assert_fails(lam_nn_quantized_embedding(10, 64, false, &(lam_quantize_opts){.group_size = 16}),
                  LAM_ERR_INVALID_ARGUMENT, "group_size 16");
  tu_assert_no_leak(ctx, mark);
  lam_ctx_free(ctx);
}

/* A model: embedding(50, 64) -> linear(64, 32) -> relu -> linear(32, 10) -> linear(10, 3). */
static lam_layer *make_model(void) {
  lam_layer *ls[5] = {lam_nn_embedding(50, 64, &(lam_embedding_opts){.no_scale = true}), lam_nn_linear(64, 32, NULL),
                      lam_nn_relu(), lam_nn_linear(32, 10, NULL), lam_nn_linear(10, 3, NULL)};
  return lam_nn_sequential(ls, 5);
}

/* Reference: the model's output with each quantized weight replaced by its dequantization. */
static lam_tensor *dequant_reference(lam_ctx *ctx, lam_ptree *qp, lam_tensor *tokens) {
  lam_layer *ref = make_model();
  lam_vars *rv = NULL;
  cr_assert_eq(lam_layer_init(ref, ctx, lam_rng_key_make(9), LAM_F32, &rv), LAM_OK);
  lam_ptree *rp = lam_vars_params(rv);
  const char *keys[] = {"0", "1", "3", "4"};
  for (int i = 0; i < 4; i++) {
    char path[32];
    lam_ptree *sub = lam_ptree_subtree(qp, keys[i]);
    lam_tensor *s = lam_ptree_get(sub, "scales");
    if (s) {
      lam_tensor *d = lam_dequantize(lam_ptree_get(sub, "weight"), s, lam_ptree_get(sub, "biases"), 32, 4);
      cr_assert(d, "%s", lam_last_error());
      snprintf(path, sizeof path, "%s.weight", keys[i]);
      lam_ptree_set(rp, path, d);
      lam_tensor_free(d);
    } else {
      snprintf(path, sizeof path, "%s.weight", keys[i]);
      lam_ptree_set(rp, path, lam_ptree_get(sub, "weight"));
    }
    if (i > 0) {
      snprintf(path, sizeof path, "%s.bias", keys[i]);
      lam_ptree_set(rp, path, lam_ptree_get(sub, "bias"));
    }
  }
  lam_tensor *y = apply(ref, rv, tokens);
  lam_vars_free(rv);
  lam_layer_free(ref);
  return y;
}

static lam_tensor *model_loss(lam_ptree *params, void *user) {
  void **u = user;
  lam_tensor *y = NULL;
  if (lam_layer_apply_with(u[0], params, lam_vars_state(u[2]), u[1], NULL, &y) != LAM_OK) return NULL;
  lam_tensor *sq = lam_mul(y, y);
  lam_tensor *l = lam_sum(sq, 0, NULL, 0);
  lam_tensor_free(y), lam_tensor_free(sq);
  return l;
}

static bool skip_first_linear(const char *path, const lam_layer *layer, void *user) {
  (void)layer;
  ++*(int *)user;
  return strcmp(path, "1") != 0;
}

Test(quant, quantize_layer) {
  lam_ctx *ctx = tu_ctx();
  tu_mark mark = tu_mark_now(ctx);
  lam_layer *m = make_model();
  lam_vars *v = NULL;
  cr_assert_eq(lam_layer_init(m, ctx, lam_rng_key_make(7), LAM_F32, &v), LAM_OK);
  lam_tensor *tok = lam_tensor_from_host(ctx, LAM_I32, 2, (int64_t[]){2, 3}, (int32_t[]){1, 7, 49, 0, -1, 23});
  lam_tensor *y32 = apply(m, v, tok);
  int count = -1;
  cr_assert_eq(lam_quantize_layer(m, v, &(lam_quantize_opts){.group_size = 32}, &count), LAM_OK, "%s",
               lam_last_error());
  cr_assert_eq(count, 3, "embedding, linear 64->32 and 32->10 converted (10->3 does not fit 32), got %d", count);
  cr_assert_str_eq(lam_layer_name(lam_layer_child(m, 0)), "quantized_embedding");
  cr_assert_str_eq(lam_layer_name(lam_layer_child(m, 1)), "quantized_linear");
  cr_assert_str_eq(lam_layer_name(lam_layer_child(m, 4)), "linear");
  lam_ptree *p = lam_vars_params(v);
  cr_assert(lam_tensor_dtype(lam_ptree_get(p, "1.weight")) == LAM_I32 && lam_ptree_get(p, "1.scales"));
  lam_tensor *yq = apply(m, v, tok);
  lam_tensor *yr = dequant_reference(ctx, p, tok);
  double *want = tu_to_f64(yr), *a = tu_to_f64(y32);
  tu_assert_tensor_close(yq, want, 18, 1e-5, 1e-5, "quantized model = dequantized weights");
  double err = 0;
  for (int i = 0; i < 18; i++) err = fmax(err, fabs(a[i] - want[i]));
  cr_assert(err > 0 && err < 0.5, "4-bit error vs f32 %g", err);
  free(want), free(a);
  /* Gradients: the float params only. */
  void *u[3] = {m, tok, v};
  lam_tensor *loss = NULL;
  lam_ptree *g = NULL;
  cr_assert_eq(lam_value_and_grad(ctx, model_loss, u, p, &loss, &g), LAM_OK, "%s", lam_last_error());
  cr_assert(lam_ptree_get(g, "1.bias") && lam_ptree_get(g, "3.bias") && lam_ptree_get(g, "4.weight"));
  lam_error_clear();
  cr_assert(!lam_ptree_subtree(g, "0") || lam_ptree_leaf_count(lam_ptree_subtree(g, "0")) == 0);
  const char *none[] = {"1.weight", "1.scales", "1.biases", "3.weight", "3.scales"};
  for (int i = 0; i < 5; i++) cr_assert(!lam_ptree_get(g, none[i]), "no grad for %s", none[i]);
  double *gb = tu_to_f64(lam_ptree_get(g, "1.bias")), gsum = 0;
  for (int i = 0; i < 32; i++) gsum += fabs(gb[i]);
  cr_assert(gsum > 0, "bias gradient through the quantized matmul is nonzero");
  free(gb);
  lam_tensor_free(loss), lam_ptree_free(g);
  /* Save, and load into a freshly quantized model: same outputs. */
  tu_make_tmpdir("lamina-quant");
  const char *file = tu_tmp("quant.safetensors");
  cr_assert_eq(lam_vars_save(v, file, NULL), LAM_OK, "%s", lam_last_error());
  lam_layer *m2 = make_model();
  lam_vars *v2 = NULL;
  cr_assert_eq(lam_layer_init(m2, ctx, lam_rng_key_make(8), LAM_F32, &v2), LAM_OK);
  cr_assert_eq(lam_quantize_layer(m2, v2, &(lam_quantize_opts){.group_size = 32}, NULL), LAM_OK);
  cr_assert_eq(lam_vars_load(v2, file, NULL, NULL), LAM_OK, "%s", lam_last_error());
  lam_tensor *y2 = apply(m2, v2, tok);
  cr_assert(tu_bits_equal(y2, yq), "outputs after a save/load round trip");
  lam_tensor_free(y2);
  lam_vars_free(v2), lam_layer_free(m2);
  /* The predicate sees every candidate path and can keep one float. */
  lam_layer *m3 = make_model();
  lam_vars *v3 = NULL;
  cr_assert_eq(lam_layer_init(m3, ctx, lam_rng_key_make(7), LAM_F32, &v3), LAM_OK);
  int seen = 0;
  cr_assert_eq(lam_quantize_layer(m3, v3, &(lam_quantize_opts){.group_size = 32, .bits = 8,
                                                              .predicate = skip_first_linear, .user = &seen},
                                  &count),
               LAM_OK);
  cr_assert_eq(count, 2);
  cr_assert_eq(seen, 3);
  cr_assert_str_eq(lam_layer_name(lam_layer_child(m3, 1)), "linear");
  cr_assert_str_eq(lam_layer_name(lam_layer_child(m3, 3)), "quantized_linear");
  lam_tensor *y3 = apply(m3, v3, tok);
  double *w3 = tu_to_f64(y32);
  tu_assert_tensor_close(y3, w3, 18, 0.05, 0.05, "8-bit close to f32");
  free(w3);
  lam_tensor_free(y3);
  lam_vars_free(v3), lam_layer_free(m3);
  lam_tensor_free(tok), lam_tensor_free(y32), lam_tensor_free(yq), lam_tensor_free(yr);
  lam_vars_free(v);
  lam_layer_free(m);
  tu_assert_no_leak(ctx, mark);
  tu_remove_tmpdir();
  lam_ctx_free(ctx);
}

/* MLX writes the packed words as U32: they load as i32 with the same bits. */
Test(quant, safetensors_u32) {
  lam_ctx *ctx = tu_ctx();
  tu_make_tmpdir("lamina-quant");
  const char *file = tu_tmp("u32.safetensors");
  const char hdr[] = "{\"w\":{\"dtype\":\"U32\",\"shape\":[1,2],\"data_offsets\":[0,8]}}";
  uint64_t hl = (sizeof hdr - 1 + 7) / 8 * 8;
  char pad[128];
  memset(pad, ' ', sizeof pad);
  memcpy(pad, hdr, sizeof hdr - 1);
  const uint32_t words[2] = {0xfedcba98u, 0x01234567u};
  FILE *f = fopen(file, "wb");
  cr_assert(f);
  fwrite(&hl, 8, 1, f), fwrite(pad, 1, (size_t)hl, f), fwrite(words, 4, 2, f);
  fclose(f);
  lam_ptree *t = NULL;
  cr_assert_eq(lam_safetensors_load(ctx, file, NULL, &t, NULL), LAM_OK, "%s", lam_last_error());
  lam_tensor *w = lam_ptree_get(t, "w");
  cr_assert(lam_tensor_dtype(w) == LAM_I32);
  uint32_t *got = read_words(w);
  cr_assert(got[0] == words[0] && got[1] == words[1]);
  free(got);
  /* and into an existing i32 leaf */
  lam_ptree *dst = lam_ptree_dict();
  lam_tensor *z = lam_tensor_zeros(ctx, LAM_I32, 2, (int64_t[]){1, 2});
  lam_ptree_set(dst, "w", z);
  cr_assert_eq(lam_ptree_load_into(dst, file, NULL), LAM_OK, "%s", lam_last_error());
  got = read_words(lam_ptree_get(dst, "w"));
  cr_assert(got[0] == words[0] && got[1] == words[1]);
  free(got);
  lam_tensor_free(z), lam_ptree_free(dst), lam_ptree_free(t);
  tu_remove_tmpdir();
  lam_ctx_free(ctx);
}

/* ---- bad input ------------------------------------------------------------------------ */

Test(quant, bad_input) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(8);
  lam_tensor *w = tu_rand_f32(ctx, &r, 2, (int64_t[]){4, 96}, -1, 1), *wq, *s, *b;
  tu_assert_status(lam_quantize(w, 64, 4, &wq, &s, &b), LAM_ERR_SHAPE, "not a multiple of group_size 64");
  cr_assert(!wq && !s && !b);
  tu_assert_status(lam_quantize(w, 32, 2, &wq, &s, &b), LAM_ERR_INVALID_ARGUMENT, "bits 2");
  tu_assert_status(lam_quantize(w, 48, 4, &wq, &s, &b), LAM_ERR_INVALID_ARGUMENT, "group_size 48");
  lam_error_clear();
  tu_assert_status(lam_quantize(NULL, 32, 4, &wq, &s, &b), LAM_ERR_NULL, "w is NULL");
  lam_tensor *w3 = tu_rand_f32(ctx, &r, 3, (int64_t[]){2, 2, 32}, -1, 1);
  tu_assert_status(lam_quantize(w3, 32, 4, &wq, &s, &b), LAM_ERR_SHAPE, "2-D");
  lam_tensor *wi = lam_tensor_zeros(ctx, LAM_I32, 2, (int64_t[]){4, 32});
  tu_assert_status(lam_quantize(wi, 32, 4, &wq, &s, &b), LAM_ERR_DTYPE, "f32 or f64");
  float inf[32] = {0};
  inf[3] = INFINITY;
  lam_tensor *wn = lam_tensor_from_host(ctx, LAM_F32, 2, (int64_t[]){1, 32}, inf);
  tu_assert_status(lam_quantize(wn, 32, 4, &wq, &s, &b), LAM_ERR_INVALID_ARGUMENT, "non-finite");
  cr_assert_eq(lam_quantize(w, 32, 8, &wq, &s, &b), LAM_OK);
  tu_assert_fails(lam_dequantize(wq, s, b, 32, 4), LAM_ERR_SHAPE, "do not fit");
  lam_error_clear();
  tu_assert_fails(lam_dequantize(wq, s, NULL, 32, 8), LAM_ERR_NULL, "biases is NULL");
  tu_assert_fails(lam_dequantize(s, s, b, 32, 8), LAM_ERR_DTYPE, "must be i32");
  lam_tensor *x = tu_rand_f32(ctx, &r, 2, (int64_t[]){2, 95}, -1, 1);
  tu_assert_fails(lam_quantized_matmul(x, wq, s, b, 32, 8), LAM_ERR_SHAPE, "in-features");
  lam_error_clear();
  tu_assert_fails(lam_quantized_matmul(NULL, wq, s, b, 32, 8), LAM_ERR_NULL, "x is NULL");
  lam_tensor *xi = lam_tensor_zeros(ctx, LAM_I32, 2, (int64_t[]){2, 96});
  tu_assert_fails(lam_quantized_matmul(xi, wq, s, b, 32, 8), LAM_ERR_DTYPE, "x is i32");
  tu_assert_status(lam_quantize_layer(NULL, NULL, NULL, NULL), LAM_ERR_NULL, "model is NULL");
  lam_tensor *all[] = {w, w3, wi, wn, wq, s, b, x, xi};
  for (int i = 0; i < 9; i++) lam_tensor_free(all[i]);
  lam_ctx_free(ctx);
}

/* ---- a MiniLM-shaped encoder ------------------------------------------------------------ */

/* Sentence embeddings (mean pool, L2 normalise) of a lamina-built BERT with
 * MiniLM-L6's widths (hidden 384, intermediate 1536, 12 heads; 2 layers and
 * a 1000-token vocabulary to stay quick; random init) against the same
 * model quantized: cosine >= 0.999 at 8 bits and >= 0.99 at 4 bits. */
static lam_tensor *embed(lam_layer *bert, lam_vars *v, lam_tensor *ids) {
  lam_tensor *h = NULL;
  cr_assert_eq(lam_models_bert_apply(bert, lam_vars_params(v), ids, NULL, &h, NULL), LAM_OK, "%s", lam_last_error());
  lam_tensor *p = lam_models_mean_pool(h, NULL), *e = p ? lam_models_l2_normalize(p) : NULL;
  cr_assert(e, "%s", lam_last_error());
  lam_tensor_free(h), lam_tensor_free(p);
  return e;
}

Test(quant, encoder_cosine) {
  lam_ctx *ctx = tu_ctx();
  const bool small = tu_small();
  lam_models_bert_opts o = {.vocab_size = 1000, .hidden_size = small ? 64 : 384, .num_hidden_layers = small ? 1 : 2,
                            .num_attention_heads = small ? 4 : 12, .intermediate_size = small ? 128 : 1536,
                            .max_position_embeddings = 64, .no_pooler = true};
  const int64_t B = 3, S = small ? 5 : 16, H = o.hidden_size;
  int32_t ids[3 * 16];
  tu_rng r = tu_rng_make(10);
  for (int i = 0; i < B * S; i++) ids[i] = (int32_t)tu_randint(&r, 0, 1000);
  lam_tensor *tid = lam_tensor_from_host(ctx, LAM_I32, 2, (int64_t[]){B, S}, ids);
  lam_layer *ref = lam_models_bert(&o);
  lam_vars *rv = NULL;
  cr_assert_eq(lam_layer_init(ref, ctx, lam_rng_key_make(11), LAM_F32, &rv), LAM_OK, "%s", lam_last_error());
  lam_tensor *e32 = embed(ref, rv, tid);
  double *a = tu_to_f64(e32);
  const int bits[2] = {8, 4};
  const double need[2] = {0.999, 0.99};
  for (int bi = 0; bi < 2; bi++) {
    lam_layer *q = lam_models_bert(&o);
    lam_vars *qv = NULL;
    cr_assert_eq(lam_layer_init(q, ctx, lam_rng_key_make(11), LAM_F32, &qv), LAM_OK);
    int n = 0;
    cr_assert_eq(lam_quantize_layer(q, qv, &(lam_quantize_opts){.bits = bits[bi], .group_size = small ? 32 : 64}, &n),
                 LAM_OK, "%s", lam_last_error());
    /* 3 embeddings + 6 linears a layer */
    cr_assert_eq(n, 3 + 6 * (int)o.num_hidden_layers, "converted %d", n);
    lam_tensor *eq = embed(q, qv, tid);
    double *b = tu_to_f64(eq), worst = 1;
    for (int s = 0; s < B; s++) {
      double c = 0;
      for (int k = 0; k < H; k++) c += a[s * H + k] * b[s * H + k];
      worst = fmin(worst, c);
    }
    cr_assert(worst >= need[bi], "%d-bit: cosine %.6f < %.3f", bits[bi], worst, need[bi]);
    cr_assert(worst < 1.0 - 1e-9 || bits[bi] == 8, "4-bit changed nothing?");
    fprintf(stderr, "encoder %d-bit: worst cosine to f32 %.6f\n", bits[bi], worst);
    free(b);
    lam_tensor_free(eq);
    lam_vars_free(qv), lam_layer_free(q);
  }
  free(a);
  lam_tensor_free(e32), lam_tensor_free(tid);
  lam_vars_free(rv), lam_layer_free(ref);
  lam_ctx_free(ctx);
}
