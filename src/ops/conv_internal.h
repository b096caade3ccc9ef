/* ops/conv_internal.h: the convolution geometry and the three convolution
 * primitives (forward, adjoint w.r.t. the input, gradient w.r.t. the
 * weight) that conv.c and conv_transpose.c share, and the float-dtype check
 * that pooling and upsampling share with them (never installed). */
#ifndef LAMINA_OPS_CONV_INTERNAL_H
#define LAMINA_OPS_CONV_INTERNAL_H

#include "internal.h"
#include "lamina/conv.h"

/* A convolution of x [N, C, in...] with w [O, C/G, k...] giving
 * y [N, O, out...]. Spatial arrays always have 3 entries (D, H, W); a conv
 * with nsp < 3 spatial dims uses the last nsp and has size 1, kernel 1,
 * stride 1, dilation 1 and no padding in the others. Only the padding
 * before each dim matters to the kernels (out[] fixes the rest). */
typedef struct lam__conv_geom {
  int nsp;
  int64_t N, C, O, G;
  int64_t in[3], out[3], k[3], s[3], d[3], pb[3];
} lam__conv_geom;

/* Fills the row-major shapes of x, w and y ([N, C, in...], [O, C/G, k...],
 * [N, O, out...]; nsp + 2 dims each). */
void lam__conv_shapes(const lam__conv_geom *g, int64_t *xs, int64_t *ws, int64_t *ys);

/* Stores / loads a geometry in a tape node's int parameters i[at..at+23). */
void lam__conv_geom_save(int64_t *dst, const lam__conv_geom *g);
void lam__conv_geom_load(const int64_t *src, lam__conv_geom *g);

/* y = conv(x, w) (+ bias [O], may be NULL). Returns a new tensor [N, O, out...]. */
lam_tensor *lam__conv_fwd(lam_tensor *x, lam_tensor *w, lam_tensor *bias, const lam__conv_geom *g,
                          const char *fn);
/* Evaluation only: relu?(conv2d(x, w, opts) + b + res) with bias b [O] and res
 * (a contiguous [N, O, out...] of x's dtype) each optional, the bias, residual and
 * ReLU applied in the pass that moves the GEMM result into place (one pass
 * instead of three). Not recorded when no tape is recording (the caller's
 * evaluation path: lam_models_resnet_fuse); under a recording tape it runs
 * the recorded ops (conv, add, relu) instead. Messages name lam_conv2d. */
lam_tensor *lam__conv2d_fused(lam_tensor *x, lam_tensor *w, lam_tensor *b, lam_tensor *res, bool relu,
                              const lam_conv_opts *opts);
/* The adjoint in x: dx [N, C, in...] = conv^T(dy, w) (+ bias [C], may be NULL:
 * the transposed convolution's forward). */
lam_tensor *lam__conv_bwd_data(lam_tensor *dy, lam_tensor *w, lam_tensor *bias,
                               const lam__conv_geom *g, const char *fn);
/* The gradient in w: dw [O, C/G, k...] = sum over n and out of dy * x-taps. */
lam_tensor *lam__conv_bwd_weight(lam_tensor *dy, lam_tensor *x, const lam__conv_geom *g,
                                 const char *fn);
/* The bias gradient: dy [N, O, ...] summed over every axis but 1 -> [O]. */
lam_tensor *lam__conv_bias_grad(lam_tensor *dy);

/* Checks a convolution's x [batch, channels, spatial...] and weight (with
 * `weight_layout` named in the message) of rank nsp + 2, and an optional
 * bias: non-NULL, one context, one float dtype the device has. */
lam_status lam__conv_check_args(int nsp, const lam_tensor *x, const lam_tensor *w, const lam_tensor *b,
                                const char *weight_layout, const char *fn);
/* Checks that t is f32 or f64 and supported; records "fn: what has dtype ...". */
lam_status lam__conv_check_float(lam_ctx *ctx, const lam_tensor *t, const char *fn,
                                 const char *what);

#endif
