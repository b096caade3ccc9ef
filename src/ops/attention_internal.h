/* ops/attention_internal.h: what the attention op files (ops/attention.c,
 * ops/attention_backward.c, ops/kv_cache.c, ops/rope.c) share; never
 * installed, and not for the layers (nn/ uses lamina/attention.h). */
#ifndef LAMINA_ATTENTION_INTERNAL_H
#define LAMINA_ATTENTION_INTERNAL_H

#include "internal.h"
#include "lamina/attention.h"

/* Kernel flags (must match cl/attention.cl). */
#define LAM__ATT_CAUSAL 1
#define LAM__ATT_KEEP 2
#define LAM__ATT_BIAS 4
#define LAM__ATT_ALIBI 8
#define LAM__ATT_DROPOUT 16
#define LAM__ATT_DS 32

/* Number of entries of a kernel-argument array. */
#define LAM__NARGS(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Rows per work-item of the fused kernels (BM in cl/attention.cl) are the
 * tuning table's att_bm (runtime/tuning.c). */

/* Everything the fused kernels need to know about one call; kept in the
 * tape node (node->extra) for the backward pass. */
typedef struct lam__sdpa_geo {
  int64_t B, H, Hkv, G, Sq, Sk, D, Dv, Skp, Sqp;
  int64_t k_hs, k_rs, v_hs, v_rs; /* head / row strides of k and v (a cache has capacity rows) */
  int64_t q_pos;
  int flags;
  double scale;
  int64_t bst[4];                 /* mask strides over (b, h, i, j), 0 on broadcast axes */
  uint32_t k0, k1, thr;           /* dropout key and keep threshold */
  double dscale;                  /* 1 / (1 - dropout) */
  /* offsets (elements of the dtype) inside the output's buffer, after the output */
  int64_t n_out, lse_off, bias_off, keep_off; /* keep_off in bytes from the buffer start */
  int bias_in_pack;               /* the mask (as additive bias) lives in the pack */
} lam__sdpa_geo;

/* Keys / queries per tile for dtype (BN in cl/attention.cl). */
static inline int64_t lam__att_bn(lam_dtype dtype) { return dtype == LAM_F64 ? 16 : 32; }

/* Attention of q against the first kv_len rows of k / v (whose axis 2 may be
 * longer: a cache's capacity); kv_len < 0 means all rows. fn names the
 * public function in messages. */
lam_tensor *lam__sdpa(const char *fn, lam_tensor *q, lam_tensor *k, lam_tensor *v, int64_t kv_len,
                      const lam_attention_opts *opts);

/* The fused backward rule (ops/attention_backward.c). */
lam_status lam__sdpa_backward(lam__node *node, lam_tensor *grad_out, lam_tensor **grad_in);

/* Launches a fused kernel over n_items heavy work-items (small work-groups
 * so that every compute unit gets some). */
lam_status lam__att_launch(lam_ctx *ctx, cl_kernel k, const char *fn, int nargs,
                           const lam__arg *args, int64_t n_items);

/* A plain 1-D launch of the attention program's kernel `name` for dtype. */
lam_status lam__att_kernel(lam_ctx *ctx, const char *name, lam_dtype dtype, cl_kernel *k);

/* As lam__att_kernel for the fused kernels, whose private accumulators
 * must hold max_d (the larger head dim) columns. */
lam_status lam__att_kernel_d(lam_ctx *ctx, const char *name, lam_dtype dtype, int64_t max_d,
                             cl_kernel *k);

/* x [N, S, Dd] (head stride hs, row stride rs, element offset x_off in its
 * buffer) -> new [N, Dd, Sp] zero-padded; NULL with a message on failure. */
lam_tensor *lam__att_transpose_pad(const char *fn, lam_ctx *ctx, lam_dtype dtype, cl_mem x,
                                   int64_t x_off, int64_t N, int64_t S, int64_t Dd, int64_t hs,
                                   int64_t rs, int64_t Sp);

/* OpenCL int16 / int4 kernel arguments. */
lam__arg lam__att_arg_int16(const int64_t v[16]);
lam__arg lam__att_arg_int4(const int64_t v[4]);

/* Copies rows: dst[nn, dst_start + s, :] = src[nn, s, :] for nn < N, s < n,
 * rows of width Dd; head strides src_hs / dst_hs (elements). */
lam_status lam__att_copy_rows(const char *fn, lam_tensor *dst, int64_t dst_hs, int64_t dst_start,
                              cl_mem src, int64_t src_off, int64_t src_hs, int64_t N, int64_t n,
                              int64_t Dd);

/* The GPU layout of the fused kernels (the ATT_GPU section of
 * cl/attention.cl): rows (work-items) per work-group, keys or queries per
 * local-memory tile, the padded head dim, and the program's build options. */
typedef struct lam__att_gpu {
  int rows, tile, dk;
  char opts[96];
} lam__att_gpu;

/* True (and *L filled) when this call runs the GPU layout: on GPU devices
 * whose local memory holds the tiles, or whenever LAMINA_ATTENTION_LAYOUT=gpu
 * (read per call; =cpu forces the CPU layout) and the tiles fit. max_d is
 * the larger head dim. */
bool lam__att_gpu_layout(lam_ctx *ctx, lam_dtype dtype, int64_t max_d, lam__att_gpu *L);

/* Launches a GPU-layout kernel: one work-group per block of L->rows of the
 * `rows` rows of each of `heads` heads. */
lam_status lam__att_gpu_launch(lam_ctx *ctx, cl_kernel k, const char *fn, int nargs,
                               const lam__arg *args, int64_t heads, int64_t rows,
                               const lam__att_gpu *L);

#endif
