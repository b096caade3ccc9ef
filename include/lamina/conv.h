/* lamina/conv.h: convolution, transposed convolution and upsampling, as
 * differentiable ops and as layers (pooling is in lamina/pool.h, included
 * here).
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
#include "lamina/pool.h"

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

/* Pooling (lam_max_pool2d, lam_nn_max_pool2d, ...) is declared in
 * lamina/pool.h, included here so that users of conv.h keep compiling. */

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
