/* lamina/pool.h: pooling as differentiable ops and as layers: max and
 * average pools (1-D to 3-D, with PyTorch's return_indices and
 * divisor_override), adaptive and global pools, Metalhead's mean-max pool,
 * max unpooling, LP pooling and fractional max pooling.
 *
 * Layout, per-dimension option arrays and the options rule are as in
 * lamina/conv.h (which includes this header): x is [N, C, ...] channels
 * first, option entry i is spatial dim i (2-D: [0] h, [1] w), a zero field
 * means its default. Ops take f32 or f64 x, return a new tensor or NULL
 * with a message naming the function, and are differentiable in x. Indices
 * are i32 (lamina has no i64 dtype; torch returns int64): the flat position
 * inside the (n, c) plane of the pooled input. */
#ifndef LAMINA_POOL_H
#define LAMINA_POOL_H

#include "lamina/export.h"

#include <stdbool.h>
#include <stdint.h>

#include "lamina/layer.h"
#include "lamina/rng.h"
#include "lamina/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- pooling ------------------------------------------------------------------ */

typedef struct lam_pool_opts {
  int kernel[3];    /* default 2 */
  int stride[3];    /* 0 (default): the kernel size (PyTorch) */
  int padding[3];   /* implicit padding on both sides, at most half the
                       (dilated) kernel; default 0. Max pool pads with -inf,
                       average pool with zeros. */
  int dilation[3];  /* max pool only (as PyTorch); default 1 */
  bool ceil_mode;   /* output size rounds up (a last window must still start
                       inside the input or its left padding); default false */
  bool exclude_pad; /* average pool: divide by the number of input elements in
                       the window (PyTorch count_include_pad=False); default
                       false: divide by the window size clipped to the padded
                       input */
  int divisor_override; /* average pools: > 0 divides every window's sum by
                           this instead (PyTorch divisor_override); default 0:
                           none. Max and LP pools reject it. */
} lam_pool_opts;

/* Returns kernel 2, stride 0 (the kernel size, so a defaults value with a
 * new kernel still strides by it), padding 0, dilation 1, no divisor
 * override. */
LAM_API lam_pool_opts lam_pool_defaults(void);

/* As torch.nn.functional.max_pool1d/2d/3d and avg_pool1d/2d/3d. The max
 * pool's gradient goes to the first maximum of each window (NaN counts as
 * the maximum, as in PyTorch). */
LAM_API lam_tensor *lam_max_pool1d(lam_tensor *x, const lam_pool_opts *opts);
LAM_API lam_tensor *lam_max_pool2d(lam_tensor *x, const lam_pool_opts *opts);
LAM_API lam_tensor *lam_max_pool3d(lam_tensor *x, const lam_pool_opts *opts);
LAM_API lam_tensor *lam_avg_pool1d(lam_tensor *x, const lam_pool_opts *opts);
LAM_API lam_tensor *lam_avg_pool2d(lam_tensor *x, const lam_pool_opts *opts);
LAM_API lam_tensor *lam_avg_pool3d(lam_tensor *x, const lam_pool_opts *opts);

/* Max pools with PyTorch's return_indices=True: return y as lam_max_pool*d
 * and store in *indices (not NULL) a new i32 tensor shaped like y holding,
 * for each output, the flat index of its window's maximum inside its
 * (n, c) input plane (d * H * W + h * W + w), the values torch returns as
 * int64. The indices are not differentiable; y is, as without them. */
LAM_API lam_tensor *lam_max_pool1d_with_indices(lam_tensor *x, const lam_pool_opts *opts,
                                                lam_tensor **indices);
LAM_API lam_tensor *lam_max_pool2d_with_indices(lam_tensor *x, const lam_pool_opts *opts,
                                                lam_tensor **indices);
LAM_API lam_tensor *lam_max_pool3d_with_indices(lam_tensor *x, const lam_pool_opts *opts,
                                                lam_tensor **indices);

/* Adaptive pools (torch adaptive_avg/max_pool): output cell i of a dim of
 * input size n and output size m covers [floor(i n / m), ceil((i + 1) n / m)).
 * Any output size >= 1 (larger than the input too). */
LAM_API lam_tensor *lam_adaptive_avg_pool1d(lam_tensor *x, int64_t out_l);
LAM_API lam_tensor *lam_adaptive_avg_pool2d(lam_tensor *x, int64_t out_h, int64_t out_w);
LAM_API lam_tensor *lam_adaptive_avg_pool3d(lam_tensor *x, int64_t out_d, int64_t out_h,
                                            int64_t out_w);
LAM_API lam_tensor *lam_adaptive_max_pool1d(lam_tensor *x, int64_t out_l);
LAM_API lam_tensor *lam_adaptive_max_pool2d(lam_tensor *x, int64_t out_h, int64_t out_w);
LAM_API lam_tensor *lam_adaptive_max_pool3d(lam_tensor *x, int64_t out_d, int64_t out_h,
                                            int64_t out_w);
/* The adaptive max pools with return_indices=True (indices as above). */
LAM_API lam_tensor *lam_adaptive_max_pool1d_with_indices(lam_tensor *x, int64_t out_l,
                                                         lam_tensor **indices);
LAM_API lam_tensor *lam_adaptive_max_pool2d_with_indices(lam_tensor *x, int64_t out_h,
                                                         int64_t out_w, lam_tensor **indices);
LAM_API lam_tensor *lam_adaptive_max_pool3d_with_indices(lam_tensor *x, int64_t out_d,
                                                         int64_t out_h, int64_t out_w,
                                                         lam_tensor **indices);

/* Metalhead's AdaptiveMeanMaxPool: 0.5 * (adaptive mean + adaptive max) of
 * x [N, C, H, W] -> [N, C, out_h, out_w]; with concat, the two are
 * concatenated along channels instead -> [N, 2C, out_h, out_w] (mean first;
 * Metalhead's AdaptiveCatMeanMaxPool). */
LAM_API lam_tensor *lam_adaptive_mean_max_pool2d(lam_tensor *x, int64_t out_h, int64_t out_w,
                                                 bool concat);

/* Global pools over every spatial dim of x [N, C, ...] (1 to 3 spatial dims),
 * keeping them as size 1: [N, C, 1, ...] (as Flux's GlobalMeanPool and
 * torch's adaptive pools with output 1). */
LAM_API lam_tensor *lam_global_avg_pool(lam_tensor *x);
LAM_API lam_tensor *lam_global_max_pool(lam_tensor *x);

/* Layers without params. */
LAM_API lam_layer *lam_nn_max_pool1d(const lam_pool_opts *opts);
LAM_API lam_layer *lam_nn_max_pool2d(const lam_pool_opts *opts);
LAM_API lam_layer *lam_nn_max_pool3d(const lam_pool_opts *opts);
LAM_API lam_layer *lam_nn_avg_pool1d(const lam_pool_opts *opts);
LAM_API lam_layer *lam_nn_avg_pool2d(const lam_pool_opts *opts);
LAM_API lam_layer *lam_nn_avg_pool3d(const lam_pool_opts *opts);
LAM_API lam_layer *lam_nn_adaptive_avg_pool1d(int64_t out_l);
LAM_API lam_layer *lam_nn_adaptive_avg_pool2d(int64_t out_h, int64_t out_w);
LAM_API lam_layer *lam_nn_adaptive_max_pool1d(int64_t out_l);
LAM_API lam_layer *lam_nn_adaptive_max_pool2d(int64_t out_h, int64_t out_w);
LAM_API lam_layer *lam_nn_adaptive_avg_pool3d(int64_t out_d, int64_t out_h, int64_t out_w);
LAM_API lam_layer *lam_nn_adaptive_max_pool3d(int64_t out_d, int64_t out_h, int64_t out_w);
LAM_API lam_layer *lam_nn_adaptive_mean_max_pool2d(int64_t out_h, int64_t out_w, bool concat);
LAM_API lam_layer *lam_nn_global_avg_pool(void);
LAM_API lam_layer *lam_nn_global_max_pool(void);

/* Applies a max-pool layer (lam_nn_max_pool1d/2d/3d,
 * lam_nn_adaptive_max_pool1d/2d/3d, lam_nn_fractional_max_pool2d/3d) as
 * lam_layer_apply does and also stores its indices (as
 * lam_max_pool2d_with_indices) in *indices: PyTorch's return_indices=True
 * on the module. opts as lam_layer_apply's (the fractional pools need
 * opts->rng). Returns LAM_OK, or a status with a message (another layer
 * kind is LAM_ERR_INVALID_ARGUMENT). */
LAM_API lam_status lam_nn_max_pool_apply(lam_layer *layer, lam_tensor *x, const lam_apply_opts *opts,
                                         lam_tensor **out, lam_tensor **indices);

/* ---- max unpooling ------------------------------------------------------------- */

typedef struct lam_max_unpool_opts {
  int kernel[3];          /* the max pool's kernel; default 2 */
  int stride[3];          /* 0 (default): the kernel size (PyTorch) */
  int padding[3];         /* the max pool's padding, >= 0; default 0 */
  int64_t output_size[3]; /* output size per spatial dim; 0 (default):
                             (in - 1) * stride - 2 * padding + kernel. Else
                             strictly within stride of that size, as torch */
} lam_max_unpool_opts;

/* Returns kernel 2, stride 0 (the kernel), padding 0, the default size. */
LAM_API lam_max_unpool_opts lam_max_unpool_defaults(void);

/* As torch.nn.functional.max_unpool1d/2d/3d: x [N, C, ...] (f32/f64) and
 * indices (i32, x's shape; in-plane flat indices as the max pools return)
 * give y [N, C, out...], zero except y[n, c][indices[n, c, i]] = x[n, c, i]
 * (when two entries share an index the later one wins, as torch on the
 * CPU). An index outside the output plane is ignored (torch raises an
 * error). Differentiable in x: dx[i] = dy[indices[i]]. Returns y or NULL. */
LAM_API lam_tensor *lam_max_unpool1d(lam_tensor *x, lam_tensor *indices,
                                     const lam_max_unpool_opts *opts);
LAM_API lam_tensor *lam_max_unpool2d(lam_tensor *x, lam_tensor *indices,
                                     const lam_max_unpool_opts *opts);
LAM_API lam_tensor *lam_max_unpool3d(lam_tensor *x, lam_tensor *indices,
                                     const lam_max_unpool_opts *opts);

/* Layers (nn.MaxUnpool1d/2d/3d), without params. They take two inputs, so
 * they run through lam_nn_max_unpool_apply (lam_layer_apply fails). */
LAM_API lam_layer *lam_nn_max_unpool1d(const lam_max_unpool_opts *opts);
LAM_API lam_layer *lam_nn_max_unpool2d(const lam_max_unpool_opts *opts);
LAM_API lam_layer *lam_nn_max_unpool3d(const lam_max_unpool_opts *opts);
/* Applies a max-unpool layer to x and indices; output_size (the layer's
 * spatial dims count of entries, NULL: the layer's opts) as torch's
 * forward(input, indices, output_size). Returns LAM_OK or a status. */
LAM_API lam_status lam_nn_max_unpool_apply(lam_layer *layer, lam_tensor *x, lam_tensor *indices,
                                           const int64_t *output_size, lam_tensor **out);

/* ---- LP pooling ------------------------------------------------------------------ */

/* As torch.nn.functional.lp_pool1d/2d (and lp_pool3d of later torch
 * versions): with s = avg_pool(x^p) over the kernel, stride and ceil_mode of
 * opts (no padding, dilation, exclude_pad or divisor_override), returns
 * (sign(s) relu(|s|) * K)^(1/p), K the kernel's element count, exactly
 * torch's formula, so its gradient (and its NaN for negative inputs with a
 * fractional p, or zero windows) is torch's too. norm_type p != 0. */
LAM_API lam_tensor *lam_lp_pool1d(lam_tensor *x, double norm_type, const lam_pool_opts *opts);
LAM_API lam_tensor *lam_lp_pool2d(lam_tensor *x, double norm_type, const lam_pool_opts *opts);
LAM_API lam_tensor *lam_lp_pool3d(lam_tensor *x, double norm_type, const lam_pool_opts *opts);

/* Layers nn.LPPool1d/2d/3d, without params. */
LAM_API lam_layer *lam_nn_lp_pool1d(double norm_type, const lam_pool_opts *opts);
LAM_API lam_layer *lam_nn_lp_pool2d(double norm_type, const lam_pool_opts *opts);
LAM_API lam_layer *lam_nn_lp_pool3d(double norm_type, const lam_pool_opts *opts);

/* ---- fractional max pooling ------------------------------------------------------- */

typedef struct lam_fractional_max_pool_opts {
  int kernel[3];           /* pool size per spatial dim (torch's kernel_size,
                              required there); default 2 */
  int64_t output_size[3];  /* output size per spatial dim; 0 (default): from
                              output_ratio */
  double output_ratio[3];  /* where output_size is 0: out = floor(in * ratio),
                              0 < ratio < 1; default 0.5 (torch requires
                              output_size or output_ratio) */
  lam_tensor *samples;     /* torch's _random_samples: [N, C, nsp] in x's
                              dtype, values in [0, 1) (other values give
                              windows clamped into the input), borrowed; entry
                              0 is W, 1 H for 2-D, (D, H, W) for 3-D, as torch.
                              NULL (default): drawn uniform [0, 1) from the key */
} lam_fractional_max_pool_opts;

/* Returns kernel 2, output_ratio 0.5, no output_size, no samples. */
LAM_API lam_fractional_max_pool_opts lam_fractional_max_pool_defaults(void);

/* As torch.nn.functional.fractional_max_pool2d/3d on x [N, C, H, W] /
 * [N, C, D, H, W]: per (n, c) plane and dim, the windows of size k start at
 * floor((i + u) a) - floor(u a) (i < out - 1; the last at in - k), a = (in
 * - k) / (out - 1), computed in x's dtype as torch, u the plane's sample.
 * Needs out + k - 1 <= in. The samples are opts->samples, or
 * lam_random_uniform(ctx, key, x's dtype, [N, C, nsp], 0, 1) (the key is
 * not read when samples are given). When indices is not NULL it receives
 * the in-plane flat indices (i32, as lam_max_pool2d_with_indices).
 * Differentiable in x (first maximum; NaN wins). Returns y or NULL. */
LAM_API lam_tensor *lam_fractional_max_pool2d(lam_tensor *x, lam_rng_key key,
                                              const lam_fractional_max_pool_opts *opts,
                                              lam_tensor **indices);
LAM_API lam_tensor *lam_fractional_max_pool3d(lam_tensor *x, lam_rng_key key,
                                              const lam_fractional_max_pool_opts *opts,
                                              lam_tensor **indices);

/* Layers nn.FractionalMaxPool2d/3d, without params; opts->samples must be
 * NULL. Each application draws new samples from lam_apply_opts.rng (needed,
 * in training and evaluation alike, as torch draws them on every call). */
LAM_API lam_layer *lam_nn_fractional_max_pool2d(const lam_fractional_max_pool_opts *opts);
LAM_API lam_layer *lam_nn_fractional_max_pool3d(const lam_fractional_max_pool_opts *opts);

#ifdef __cplusplus
}
#endif
#endif
