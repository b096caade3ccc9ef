/* lamina/conv.h: convolution, transposed convolution, pooling and
 * upsampling, as differentiable ops and as layers.
 *
 * Layout is channels-first as in Kaun and PyTorch: 1-D inputs are
 * [batch, channels, length], 2-D [batch, channels, h, w], 3-D [batch,
 * channels, d, h, w]. Per-dimension options are arrays indexed by spatial
 * dim in that order (conv2d: [0] is h, [1] is w); entries past the op's rank
 * are ignored. Every options struct follows lamina/options.h: a zero field
 * means its default, so `&(lam_conv_opts){.stride = {2, 2}}` works, and NULL,
 * a zeroed struct and the defaults function mean the same. Parameters follow
 * PyTorch's state_dict: conv "weight" [out, in/groups, k...] and "bias"
 * [out]; transposed conv "weight" [in, out/groups, k...] and "bias" [out].
 *
 * Functional ops have the plain names (lam_conv2d); the layer constructors
 * are lam_nn_* (lam_nn_conv2d). Ops take f32 or f64 tensors, return a new
 * tensor or NULL with a message naming the function and the offending values
 * (bad rank, channels not divisible by groups, kernel larger than the padded
 * input, ...), and are differentiable in every tensor argument. */
#ifndef LAMINA_CONV_H
#define LAMINA_CONV_H

#include "lamina/export.h"

#include <stdbool.h>

#include "lamina/init.h"
#include "lamina/layer.h"
#include "lamina/shape.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- convolution ---------------------------------------------------------- */

typedef enum lam_conv_padding {
  /* Output size ceil(in / stride) (the input's size at stride 1), the total
   * padding split with the odd element after (PyTorch's padding="same" at
   * stride 1, TensorFlow's and Kaun's "SAME" at any stride). */
  LAM_PADDING_SAME = 0,
  LAM_PADDING_VALID,   /* no padding */
  LAM_PADDING_CAUSAL,  /* 1-D only: dilation*(kernel-1) before, none after */
  LAM_PADDING_EXPLICIT /* pad[d][0] before and pad[d][1] after spatial dim d */
} lam_conv_padding;

typedef struct lam_conv_opts {
  int kernel[3];    /* layers: kernel size per spatial dim (default 3); the
                       ops take it from the weight and ignore this field */
  int stride[3];    /* default 1 */
  int dilation[3];  /* default 1 */
  lam_conv_padding padding; /* default same (Kaun); at stride > 1 it pads like TF
                               ((0, 1) for k3 s2), not like PyTorch's padding=1:
                               use LAM_PADDING_EXPLICIT with pad = {{1, 1}, ...} */
  int pad[3][2];    /* explicit padding (before, after) per spatial dim, >= 0 */
  lam_pad_mode padding_mode; /* what the padding holds (torch padding_mode):
                       LAM_PAD_CONSTANT (default) zeros; LAM_PAD_REFLECT
                       (each pad < the input size), LAM_PAD_REPLICATE,
                       LAM_PAD_CIRCULAR (each pad <= the input size) pad x
                       with lam_pad in that mode, then convolve unpadded, as
                       torch.nn.ConvNd does; any padding kind above */
  int groups;       /* default 1; in and out channels must be divisible by it
                       (groups == in channels: depthwise) */
  bool no_bias;     /* layers: no "bias" parameter (default false: bias [out]) */
  lam_init weight_init; /* layers; default glorot_uniform (as Kaun); PyTorch's
                           kaiming_uniform(a=sqrt(5)) is lam_init_variance_scaling(
                           1.0 / 3, LAM_FAN_IN, LAM_DIST_UNIFORM) */
  lam_init bias_init;   /* layers; default zeros */
} lam_conv_opts;

/* Returns kernel 3, stride 1, dilation 1, same padding, 1 group, with bias. */
LAM_API lam_conv_opts lam_conv_defaults(void);

/* Cross-correlation as torch.nn.functional.conv1d/2d/3d: x [N, C, ...],
 * weight [O, C/groups, k...], bias [O] or NULL. Returns y [N, O, ...]. */
LAM_API lam_tensor *lam_conv1d(lam_tensor *x, lam_tensor *weight, lam_tensor *bias,
                               const lam_conv_opts *opts);
LAM_API lam_tensor *lam_conv2d(lam_tensor *x, lam_tensor *weight, lam_tensor *bias,
                               const lam_conv_opts *opts);
LAM_API lam_tensor *lam_conv3d(lam_tensor *x, lam_tensor *weight, lam_tensor *bias,
                               const lam_conv_opts *opts);

/* Stores in out[0..nsp) the output size of a convolution with nsp spatial
 * dims over input sizes in[0..nsp) and kernel sizes k[0..nsp) (opts'
 * kernel is not read). Returns LAM_OK, or a status with a message when the
 * options are bad or the kernel does not fit the padded input. */
LAM_API lam_status lam_conv_output_size(int nsp, const int64_t *in, const int64_t *k,
                                const lam_conv_opts *opts, int64_t *out);

/* Layers: params "weight" [out, in/groups, k...] and (unless no_bias) "bias"
 * [out]; input [N, in_channels, ...] of the params' dtype. */
LAM_API lam_layer *lam_nn_conv1d(int64_t in_channels, int64_t out_channels, const lam_conv_opts *opts);
LAM_API lam_layer *lam_nn_conv2d(int64_t in_channels, int64_t out_channels, const lam_conv_opts *opts);
LAM_API lam_layer *lam_nn_conv3d(int64_t in_channels, int64_t out_channels, const lam_conv_opts *opts);

/* ---- transposed convolution ------------------------------------------------ */

typedef struct lam_conv_transpose_opts {
  int kernel[3];         /* layers (default 3); ops take it from the weight */
  int stride[3];         /* default 1 */
  int padding[3];        /* PyTorch's padding: removed from both sides of the
                            output; >= 0, default 0 */
  int output_padding[3]; /* added after; < max(stride, dilation); default 0 */
  int64_t output_size[3]; /* requested output size per spatial dim (torch's
                            forward(x, output_size)); 0 (default): from
                            output_padding. Must lie in [min, min + stride - 1]
                            with min the size at output_padding 0; picks
                            output_padding = size - min (a nonzero
                            output_padding must then equal it) */
  int dilation[3];       /* default 1 */
  int groups;            /* default 1 */
  bool no_bias;          /* layers: no "bias" (default false) */
  lam_init weight_init;  /* layers; default glorot_uniform */
  lam_init bias_init;    /* layers; default zeros */
} lam_conv_transpose_opts;

LAM_API lam_conv_transpose_opts lam_conv_transpose_defaults(void);

/* As torch.nn.functional.conv_transpose1d/2d/3d: x [N, C, ...], weight
 * [C, O/groups, k...], bias [O] or NULL. Output size per dim:
 * (in - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1,
 * or opts' output_size where given. */
LAM_API lam_tensor *lam_conv_transpose1d(lam_tensor *x, lam_tensor *weight, lam_tensor *bias,
                                         const lam_conv_transpose_opts *opts);
LAM_API lam_tensor *lam_conv_transpose2d(lam_tensor *x, lam_tensor *weight, lam_tensor *bias,
                                         const lam_conv_transpose_opts *opts);
LAM_API lam_tensor *lam_conv_transpose3d(lam_tensor *x, lam_tensor *weight, lam_tensor *bias,
                                         const lam_conv_transpose_opts *opts);

/* Layers: params "weight" [in, out/groups, k...] and "bias" [out]. */
LAM_API lam_layer *lam_nn_conv_transpose1d(int64_t in_channels, int64_t out_channels,
                                const lam_conv_transpose_opts *opts);
LAM_API lam_layer *lam_nn_conv_transpose2d(int64_t in_channels, int64_t out_channels,
                                const lam_conv_transpose_opts *opts);
LAM_API lam_layer *lam_nn_conv_transpose3d(int64_t in_channels, int64_t out_channels,
                                const lam_conv_transpose_opts *opts);

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
} lam_pool_opts;

/* Returns kernel 2, stride 0 (the kernel size, so a defaults value with a
 * new kernel still strides by it), padding 0, dilation 1. */
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
LAM_API lam_layer *lam_nn_adaptive_mean_max_pool2d(int64_t out_h, int64_t out_w, bool concat);
LAM_API lam_layer *lam_nn_global_avg_pool(void);
LAM_API lam_layer *lam_nn_global_max_pool(void);

/* ---- upsampling ------------------------------------------------------------------- */

typedef enum lam_upsample_mode {
  LAM_UPSAMPLE_NEAREST = 0, /* torch "nearest": src = floor(dst * in_scale) */
  LAM_UPSAMPLE_LINEAR,      /* torch "linear" (1-D) / "bilinear" (2-D) /
                               "trilinear" (3-D) */
  LAM_UPSAMPLE_NEAREST_EXACT, /* torch "nearest-exact": src = floor((dst + 0.5)
                                 * in_scale), pixel centres aligned */
  LAM_UPSAMPLE_CUBIC        /* torch "bicubic" (2-D only): A = -0.75, the 4x4
                               taps clamped to the border */
} lam_upsample_mode;

typedef struct lam_upsample_opts {
  lam_upsample_mode mode; /* default nearest */
  int64_t size[3];        /* output size per spatial dim; 0: from scale */
  double scale[3];        /* scale factor per spatial dim, used where size is
                             0 (output floor(in * scale)); default 2. As torch
                             with recompute_scale_factor unset (its default),
                             the given factor (not out/in) maps output to
                             input coordinates; for torch's
                             recompute_scale_factor=True give the size instead. */
  bool align_corners;     /* linear and cubic: corners of input and output
                             align (torch align_corners=True); default false */
} lam_upsample_opts;

LAM_API lam_upsample_opts lam_upsample_defaults(void);

/* As torch.nn.functional.interpolate on x [N, C, L] / [N, C, H, W] /
 * [N, C, D, H, W]. */
LAM_API lam_tensor *lam_upsample1d(lam_tensor *x, const lam_upsample_opts *opts);
LAM_API lam_tensor *lam_upsample2d(lam_tensor *x, const lam_upsample_opts *opts);
LAM_API lam_tensor *lam_upsample3d(lam_tensor *x, const lam_upsample_opts *opts);

LAM_API lam_layer *lam_nn_upsample1d(const lam_upsample_opts *opts);
LAM_API lam_layer *lam_nn_upsample2d(const lam_upsample_opts *opts);
LAM_API lam_layer *lam_nn_upsample3d(const lam_upsample_opts *opts);

#ifdef __cplusplus
}
#endif
#endif
