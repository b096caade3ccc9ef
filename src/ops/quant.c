/* ops/quant.c: group-wise affine quantization (MLX's format, see
 * include/lamina/quant.h): lam_quantize (on the host: a one-time
 * conversion, with the weight's own float arithmetic so the packing is
 * reproducible bit for bit), lam_dequantize and lam_quantized_matmul with
 * its backward rule for x (kernels in cl/quant.cl). The packed words live in
 * an i32 tensor holding the bit pattern of MLX's uint32 words.
 * LAMINA_QMM_PATH=mv|mm|rows forces the matrix x vector, the tiled or
 * the CPU row-streaming kernel (tests). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "lamina/quant.h"

#define LAM__QMV_MAXM 8 /* cl/quant.cl QMV_MAXM */
#define LAM__QMV_ROWS 4
#define LAM__QMV_WG 64
#define LAM__QT 16

/* Resolves and checks group_size/bits (0: 64 / 4). */
static lam_status lam__q_params(const char *fn, int *group_size, int *bits) {
  if (*group_size == 0) *group_size = 64;
  if (*bits == 0) *bits = 4;
  if (*group_size != 32 && *group_size != 64 && *group_size != 128)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: group_size %d must be 32, 64 or 128", fn, *group_size);
  if (*bits != 4 && *bits != 8)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: bits %d must be 4 or 8", fn, *bits);
  return LAM_OK;
}

/* Checks wq/scales/biases against each other; *N and *K get out/in features. */
static lam_status lam__q_check(const char *fn, lam_tensor *wq, lam_tensor *scales, lam_tensor *biases,
                               int *group_size, int *bits, int64_t *N, int64_t *K) {
  if (!wq) return lam__null_input(fn, "wq"), lam_last_status();
  if (!scales) return lam__null_input(fn, "scales"), lam_last_status();
  if (!biases) return lam__null_input(fn, "biases"), lam_last_status();
  lam_status st = lam__q_params(fn, group_size, bits);
  if (st != LAM_OK) return st;
  if (wq->ctx != scales->ctx || wq->ctx != biases->ctx)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: wq, scales and biases belong to different contexts", fn);
  if (wq->dtype != LAM_I32)
    return lam__fail(LAM_ERR_DTYPE, "%s: wq must be i32 (packed words), got %s", fn, lam_dtype_name(wq->dtype));
  if ((scales->dtype != LAM_F32 && scales->dtype != LAM_F64) || biases->dtype != scales->dtype)
    return lam__fail(LAM_ERR_DTYPE, "%s: scales (%s) and biases (%s) must share one dtype, f32 or f64", fn,
                     lam_dtype_name(scales->dtype), lam_dtype_name(biases->dtype));
  char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR], b3[LAM__SHAPE_STR];
  const int64_t k = wq->ndim == 2 ? wq->shape[1] * (32 / *bits) : 0;
  if (wq->ndim != 2 || scales->ndim != 2 || !lam_tensor_same_shape(scales, biases) ||
      scales->shape[0] != wq->shape[0] || scales->shape[1] * *group_size != k)
    return lam__fail(LAM_ERR_SHAPE,
                     "%s: wq %s, scales %s and biases %s do not fit [out, in*%d/32] and [out, in/%d]", fn,
                     lam__shape_str(wq->ndim, wq->shape, b1), lam__shape_str(scales->ndim, scales->shape, b2),
                     lam__shape_str(biases->ndim, biases->shape, b3), *bits, *group_size);
  *N = wq->shape[0];
  *K = k;
  return LAM_OK;
}

/* ---- quantize (host) ---------------------------------------------------------- */

/* One row of K values (float or double arithmetic per f64) into words/s/b. */
#define LAM__Q_ROW(T, ROUND)                                                          \
  for (int64_t g = 0; g < K / gs; g++) {                                              \
    const T *v = (const T *)src + n * K + g * gs;                                     \
    T mn = v[0], mx = v[0];                                                           \
    for (int i = 1; i < gs; i++) {                                                    \
      if (v[i] < mn) mn = v[i];                                                       \
      if (v[i] > mx) mx = v[i];                                                       \
    }                                                                                 \
    const T scale = (mx - mn) / (T)qmax, bias = mn;                                   \
    ((T *)sd)[n * (K / gs) + g] = scale;                                              \
    ((T *)bd)[n * (K / gs) + g] = bias;                                               \
    for (int i = 0; i < gs; i++) {                                                    \
      T q = scale > 0 ? ROUND((v[i] - bias) / scale) : (T)0;                          \
      if (q < 0) q = 0;                                                               \
      if (q > (T)qmax) q = (T)qmax;                                                   \
      const int64_t k = g * gs + i;                                                   \
      words[n * wpr + k / per] |= (uint32_t)q << (bits * (k % per));                  \
    }                                                                                 \
  }

lam_status lam_quantize(lam_tensor *w, int group_size, int bits, lam_tensor **wq, lam_tensor **scales,
                        lam_tensor **biases) {
  const char *fn = "lam_quantize";
  if (!wq || !scales || !biases) return lam__fail(LAM_ERR_NULL, "%s: an output pointer is NULL", fn);
  *wq = *scales = *biases = NULL;
  if (!w) return lam__null_input(fn, "w"), lam_last_status();
  lam_status st = lam__q_params(fn, &group_size, &bits);
  if (st != LAM_OK) return st;
  if (w->dtype != LAM_F32 && w->dtype != LAM_F64)
    return lam__fail(LAM_ERR_DTYPE, "%s: w must be f32 or f64, got %s", fn, lam_dtype_name(w->dtype));
  char b[LAM__SHAPE_STR];
  if (w->ndim != 2)
    return lam__fail(LAM_ERR_SHAPE, "%s: w %s must be 2-D [out, in]", fn, lam__shape_str(w->ndim, w->shape, b));
  const int64_t N = w->shape[0], K = w->shape[1], gs = group_size;
  if (K % gs != 0)
    return lam__fail(LAM_ERR_SHAPE, "%s: in-features %lld of w %s are not a multiple of group_size %d", fn,
                     (long long)K, lam__shape_str(w->ndim, w->shape, b), group_size);
  const int per = 32 / bits;
  const int64_t wpr = K / per, qmax = (1 << bits) - 1;
  const size_t es = lam_dtype_size(w->dtype);
  void *src = malloc((size_t)(N * K) * es), *sd = malloc((size_t)(N * (K / gs)) * es);
  void *bd = malloc((size_t)(N * (K / gs)) * es);
  uint32_t *words = calloc((size_t)(N * wpr), sizeof *words);
  if (!src || !sd || !bd || !words) {
    free(src), free(sd), free(bd), free(words);
    return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
  }
  st = lam_tensor_to_host(w, src, (size_t)(N * K) * es);
  for (int64_t i = 0; st == LAM_OK && i < N * K; i++) {
    const double v = w->dtype == LAM_F64 ? ((double *)src)[i] : ((float *)src)[i];
    if (!isfinite(v))
      st = lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: w has a non-finite value at flat index %lld", fn,
                     (long long)i);
  }
  if (st == LAM_OK) {
    for (int64_t n = 0; n < N; n++) {
      if (w->dtype == LAM_F64) {
        LAM__Q_ROW(double, round)
      } else {
        LAM__Q_ROW(float, roundf)
      }
    }
    lam_ctx *ctx = w->ctx;
    *wq = lam_tensor_from_host(ctx, LAM_I32, 2, (int64_t[]){N, wpr}, words);
    *scales = *wq ? lam_tensor_from_host(ctx, w->dtype, 2, (int64_t[]){N, K / gs}, sd) : NULL;
    *biases = *scales ? lam_tensor_from_host(ctx, w->dtype, 2, (int64_t[]){N, K / gs}, bd) : NULL;
    if (!*biases) {
      st = lam_last_status();
      lam_tensor_free(*wq), lam_tensor_free(*scales);
      *wq = *scales = NULL;
    }
  }
  free(src), free(sd), free(bd), free(words);
  return st;
}

/* ---- kernels ---------------------------------------------------------------------- */

static lam_status lam__q_kernel(lam_ctx *ctx, const char *name, lam_dtype dt, int bits, cl_kernel *k) {
  return lam__kernel_dt(ctx, "quant", name, dt, bits == 8 ? "-DQBITS=8" : "-DQBITS=4", k);
}

lam_tensor *lam_dequantize(lam_tensor *wq, lam_tensor *scales, lam_tensor *biases, int group_size, int bits) {
  const char *fn = "lam_dequantize";
  int64_t N, K;
  if (lam__q_check(fn, wq, scales, biases, &group_size, &bits, &N, &K) != LAM_OK) return NULL;
  lam_ctx *ctx = wq->ctx;
  cl_kernel k;
  if (lam__q_kernel(ctx, "q_dequant", scales->dtype, bits, &k) != LAM_OK) return NULL;
  lam_tensor *w = lam__tensor_new(ctx, scales->dtype, 2, (int64_t[]){N, K}, fn);
  if (!w) return NULL;
  lam__arg a[] = {LAM__ARG_T(wq), LAM__ARG_T(scales), LAM__ARG_T(biases), LAM__ARG_T(w),
                  lam__arg_int(wq->numel), lam__arg_int(K), lam__arg_int(group_size)};
  if (lam__launch_1d(ctx, k, fn, 11, a, (size_t)wq->numel) != LAM_OK) {
    lam_tensor_free(w);
    return NULL;
  }
  return w;
}

/* y [M, N] = x [M, K] @ W^T (kind "q_mv" / "q_mm") or dx [M, K] = g [M, N] @ W ("q_mtv"). */
static lam_status lam__q_launch(const char *fn, const char *kname, lam_tensor *in, lam_tensor *wq,
                                lam_tensor *scales, lam_tensor *biases, lam_tensor *out, int64_t M,
                                int64_t N, int64_t K, int gs, int bits) {
  lam_ctx *ctx = in->ctx;
  cl_kernel k;
  lam_status st = lam__q_kernel(ctx, kname, scales->dtype, bits, &k);
  if (st != LAM_OK) return st;
  lam__arg a[] = {LAM__ARG_T(in),      LAM__ARG_T(wq),  LAM__ARG_T(scales), LAM__ARG_T(biases),
                  LAM__ARG_T(out),     lam__arg_int(M), lam__arg_int(N),    lam__arg_int(K),
                  lam__arg_int(gs)};
  if (strcmp(kname, "q_mtv") == 0) return lam__launch_1d(ctx, k, fn, 14, a, (size_t)(M * K));
  if (strncmp(kname, "q_rows", 6) == 0) {
    const int64_t mr = kname[6] - '0', rows = N * ((M + mr - 1) / mr);
    lam__arg ar[15];
    memcpy(ar, a, sizeof a);
    ar[14] = lam__arg_int(rows);
    return lam__launch_rows(ctx, k, fn, 15, ar, rows);
  }
  if (strcmp(kname, "q_mv") == 0) {
    const size_t g = (size_t)((N + LAM__QMV_ROWS - 1) / LAM__QMV_ROWS) * LAM__QMV_WG, l = LAM__QMV_WG;
    return lam__launch(ctx, k, fn, 14, a, 1, &g, &l);
  }
  const size_t g[2] = {(size_t)((N + LAM__QT - 1) / LAM__QT) * LAM__QT,
                       (size_t)((M + LAM__QT - 1) / LAM__QT) * LAM__QT};
  const size_t l[2] = {LAM__QT, LAM__QT};
  return lam__launch(ctx, k, fn, 14, a, 2, g, l);
}

/* node->i: N, K, group_size, bits; saved: wq, scales, biases. */
static lam_status lam__qmm_backward(lam__node *node, lam_tensor *gy, lam_tensor **gin) {
  if (!lam__node_needs(node, 0)) return LAM_OK;
  const int64_t N = node->i[0], K = node->i[1], M = gy->numel / N;
  lam_tensor *dx = lam__tensor_new(gy->ctx, gy->dtype, node->in_ndim[0], node->in_shape[0], node->op);
  if (!dx) return lam_last_status();
  lam_status st = lam__q_launch(node->op, "q_mtv", gy, node->saved[0], node->saved[1], node->saved[2], dx, M,
                                N, K, (int)node->i[2], (int)node->i[3]);
  if (st != LAM_OK) {
    lam_tensor_free(dx);
    return st;
  }
  gin[0] = dx;
  return LAM_OK;
}

lam_tensor *lam_quantized_matmul(lam_tensor *x, lam_tensor *wq, lam_tensor *scales, lam_tensor *biases,
                                 int group_size, int bits) {
  const char *fn = "lam_quantized_matmul";
  if (!x) return lam__null_input(fn, "x");
  int64_t N, K;
  if (lam__q_check(fn, wq, scales, biases, &group_size, &bits, &N, &K) != LAM_OK) return NULL;
  if (x->ctx != wq->ctx)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: x and wq belong to different contexts", fn), NULL;
  if (x->dtype != scales->dtype)
    return lam__fail(LAM_ERR_DTYPE, "%s: x is %s but scales are %s", fn, lam_dtype_name(x->dtype),
                     lam_dtype_name(scales->dtype)), NULL;
  char b1[LAM__SHAPE_STR];
  if (x->ndim < 1 || x->shape[x->ndim - 1] != K)
    return lam__fail(LAM_ERR_SHAPE, "%s: x %s must be [..., %lld] (the weight's in-features)", fn,
                     lam__shape_str(x->ndim, x->shape, b1), (long long)K), NULL;
  const int64_t M = x->numel / K;
  int64_t ys[LAM_MAX_DIMS], numel;
  memcpy(ys, x->shape, sizeof ys);
  ys[x->ndim - 1] = N;
  if (lam__check_shape(fn, x->ndim, ys, &numel) != LAM_OK) return NULL;
  /* The tuning table's quant_rows (CPU devices): q_rows at every batch
   * size. Others: q_mv up to QMV_MAXM rows, q_mm beyond. */
  const char *e = getenv("LAMINA_QMM_PATH");
  bool mv = M <= LAM__QMV_MAXM, rows = x->ctx->tuning.quant_rows;
  if (e && strcmp(e, "mm") == 0) mv = false, rows = false;
  if (e && strcmp(e, "mv") == 0) mv = true, rows = false;
  if (e && strcmp(e, "rows") == 0) mv = false, rows = true;
  lam_tensor *y = lam__tensor_new(x->ctx, x->dtype, x->ndim, ys, fn);
  if (!y) return NULL;
  lam_status st = LAM_OK;
  /* The matrix x vector kernel takes up to QMV_MAXM rows at a time. */
  if (rows) st = lam__q_launch(fn, M == 1 ? "q_rows1" : M < 16 ? "q_rows4" : "q_rows8", x, wq, scales, biases, y, M, N, K, group_size, bits);
  for (int64_t m0 = 0; !rows && mv && st == LAM_OK && m0 < M; m0 += LAM__QMV_MAXM) {
    const int64_t mc = M - m0 < LAM__QMV_MAXM ? M - m0 : LAM__QMV_MAXM;
    lam_tensor *xv = lam__tensor_view(x, x->offset + (size_t)(m0 * K), 2, (int64_t[]){mc, K});
    lam_tensor *yv = xv ? lam__tensor_view(y, y->offset + (size_t)(m0 * N), 2, (int64_t[]){mc, N}) : NULL;
    st = yv ? lam__q_launch(fn, "q_mv", xv, wq, scales, biases, yv, mc, N, K, group_size, bits)
            : lam_last_status();
    lam_tensor_free(xv), lam_tensor_free(yv);
  }
  if (!rows && !mv) st = lam__q_launch(fn, "q_mm", x, wq, scales, biases, y, M, N, K, group_size, bits);
  if (st != LAM_OK) {
    lam_tensor_free(y);
    return NULL;
  }
  lam__node *node = lam__tape_record(y, fn, lam__qmm_backward, 1, &x);
  if (node) {
    lam__node_save(node, wq);
    lam__node_save(node, scales);
    lam__node_save(node, biases);
    node->i[0] = N, node->i[1] = K, node->i[2] = group_size, node->i[3] = bits;
  }
  return y;
}
