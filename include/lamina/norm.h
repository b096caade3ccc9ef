/* lamina/norm.h: normalization ops and layers (layer, RMS, batch, group,
 * instance and channel layer norm). Dropout-style regularization is in
 * lamina/regularize.h, Metalhead's blocks (LayerScale, ...) in lamina/blocks.h.
 *
 * Functional ops (f32 and f64, differentiable in x, weight and bias) follow
 * torch.nn.functional: lam_layer_norm is F.layer_norm,
 * lam_batch_norm is F.batch_norm, and so on. Inputs of the channel
 * norms are channels-first [N, C, *] (rank >= 2), as in PyTorch and Kaun.
 * Statistics use the biased variance with eps inside the square root
 * (PyTorch); batch norm's running variance is updated with the unbiased one.
 * Means and variances come from Welford's algorithm, so a constant input
 * gives exactly zero variance and finite outputs.
 *
 * Layers keep PyTorch's state_dict names: "weight" and "bias" for every norm
 * ("weight" only for RMS norm), state "running_mean", "running_var" and
 * "num_batches_tracked" (i32 scalar; PyTorch's is int64) for batch and
 * instance norm with running stats. In training (lam_apply_opts.training) batch norm replaces the state
 * leaves with new tensors (the update is never differentiated); in
 * evaluation it uses them. Constructors return a new layer or NULL with a
 * message for bad options (naming the constructor); an opts pointer may be
 * NULL for that layer's defaults. */
#ifndef LAMINA_NORM_H
#define LAMINA_NORM_H

#include "lamina/export.h"

#include <stdbool.h>

#include "lamina/layer.h"
#include "lamina/options.h"
#include "lamina/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- functional ops --------------------------------------------------- */

/* F.layer_norm over the last `normalized_ndim` axes of x (>= 1, <= rank):
 * y = (x - mean) / sqrt(var + eps) * weight + bias, weight and bias (each
 * may be NULL) shaped like those axes. */
LAM_API lam_tensor *lam_layer_norm(lam_tensor *x, int normalized_ndim, lam_tensor *weight,
                                   lam_tensor *bias, double eps);

/* RMS norm over the last `normalized_ndim` axes (torch.nn.RMSNorm):
 * y = x / sqrt(mean(x^2) + eps) * weight (weight may be NULL). */
LAM_API lam_tensor *lam_rms_norm(lam_tensor *x, int normalized_ndim, lam_tensor *weight,
                                 double eps);

/* F.group_norm of x [N, C, *]: statistics per sample over each group of
 * C / groups channels (groups must divide C); weight, bias [C] or NULL. */
LAM_API lam_tensor *lam_group_norm(lam_tensor *x, int64_t groups, lam_tensor *weight,
                                   lam_tensor *bias, double eps);

/* Layer norm over the channel axis 1 of x [N, C, *] at every position
 * (Metalhead's ChannelLayerNorm, timm's LayerNorm2d); weight, bias [C]. */
LAM_API lam_tensor *lam_channel_layer_norm(lam_tensor *x, lam_tensor *weight, lam_tensor *bias,
                                           double eps);

/* F.batch_norm of x [N, C, *] (statistics over every axis but 1). In
 * training the batch statistics normalize; when running_mean/running_var
 * (both [C], or both NULL) are given, new running statistics
 * (1 - momentum) * running + momentum * batch (unbiased variance) are
 * returned in *new_mean / *new_var (new tensors, not recorded; the pointers
 * may be NULL when not wanted). In evaluation the running statistics
 * normalize (required). Training needs more than one value per channel. */
LAM_API lam_tensor *lam_batch_norm(lam_tensor *x, lam_tensor *running_mean,
                                   lam_tensor *running_var, lam_tensor *weight, lam_tensor *bias,
                                   bool training, double momentum, double eps,
                                   lam_tensor **new_mean, lam_tensor **new_var);

/* F.instance_norm of x [N, C, *]: with use_input_stats each (sample,
 * channel) is normalized by its own statistics and, when running stats are
 * given, *new_mean / *new_var get them updated with the batch average of the
 * per-instance mean and unbiased variance; without, the running statistics
 * normalize (as batch norm in evaluation). */
LAM_API lam_tensor *lam_instance_norm(lam_tensor *x, lam_tensor *running_mean,
                                      lam_tensor *running_var, lam_tensor *weight,
                                      lam_tensor *bias, bool use_input_stats, double momentum,
                                      double eps, lam_tensor **new_mean, lam_tensor **new_var);

/* ---- norm layers ---------------------------------------------------------- */

/* One options struct per family, each following lamina/options.h: NULL, a
 * zeroed struct and lam_<family>_defaults() mean the same. eps is added to
 * the variance: 0 means the family's default and LAM_ZERO a real zero
 * (negative eps is an error). */

typedef struct lam_layer_norm_opts {
  double eps;            /* 0: 1e-5 (nn.LayerNorm); LAM_ZERO: 0 */
  bool no_affine;        /* no learnable weight and bias (elementwise_affine=False) */
  bool no_bias;          /* a weight but no bias (bias=False) */
  lam_layer *activation; /* owned by the layer (also on failure; do not pass
                            it to another constructor); applied as child "act"
                            after the affine map (Metalhead's LayerNormV2 and
                            ChannelLayerNorm); NULL: none */
} lam_layer_norm_opts;
/* Returns eps 1e-5, affine with bias, no activation. */
LAM_API lam_layer_norm_opts lam_layer_norm_defaults(void);

typedef struct lam_rms_norm_opts {
  double eps;     /* 0: the machine epsilon of the input's dtype (nn.RMSNorm's
                     eps=None); LAM_ZERO: 0 */
  bool no_affine; /* no learnable weight */
} lam_rms_norm_opts;
/* Returns eps 0 (the dtype's machine epsilon, resolved at apply), affine. */
LAM_API lam_rms_norm_opts lam_rms_norm_defaults(void);

typedef struct lam_batch_norm_opts {
  double eps;            /* 0: 1e-5; LAM_ZERO: 0 */
  double momentum;       /* running = (1 - momentum) running + momentum batch, in
                            [0, 1]; 0: 0.1; LAM_ZERO: 0 (running stats unchanged) */
  bool cumulative;       /* cumulative moving average (PyTorch's momentum=None);
                            momentum is then not read */
  bool no_affine;        /* no learnable weight and bias */
  bool no_running_stats; /* track_running_stats=False: batch statistics in
                            evaluation too, no state */
} lam_batch_norm_opts;
/* Returns eps 1e-5, momentum 0.1, affine, tracking running stats (nn.BatchNorm2d). */
LAM_API lam_batch_norm_opts lam_batch_norm_defaults(void);

typedef struct lam_group_norm_opts {
  double eps;     /* 0: 1e-5; LAM_ZERO: 0 */
  bool no_affine; /* no learnable weight and bias */
} lam_group_norm_opts;
/* Returns eps 1e-5, affine (nn.GroupNorm). */
LAM_API lam_group_norm_opts lam_group_norm_defaults(void);

typedef struct lam_instance_norm_opts {
  double eps;               /* 0: 1e-5; LAM_ZERO: 0 */
  double momentum;          /* as batch norm's; 0: 0.1; LAM_ZERO: 0 */
  bool cumulative;          /* as batch norm's */
  bool affine;              /* learnable weight and bias; default false (PyTorch) */
  bool track_running_stats; /* default false (PyTorch) */
} lam_instance_norm_opts;
/* Returns eps 1e-5, momentum 0.1, no affine, no running stats (nn.InstanceNorm2d). */
LAM_API lam_instance_norm_opts lam_instance_norm_defaults(void);

/* nn.LayerNorm(normalized_shape): normalizes the trailing `ndim` axes, which
 * must equal `shape`; params "weight", "bias" shaped `shape` (ones, zeros).
 * With opts->activation it is Metalhead's LayerNormV2 (eps inside the square
 * root, as PyTorch) followed by the activation as child "act". */
LAM_API lam_layer *lam_nn_layer_norm(int ndim, const int64_t *shape, const lam_layer_norm_opts *opts);
/* nn.RMSNorm(normalized_shape): param "weight" (ones), no bias. */
LAM_API lam_layer *lam_nn_rms_norm(int ndim, const int64_t *shape, const lam_rms_norm_opts *opts);
/* nn.BatchNorm1d/2d/3d: inputs [N, C] (statistics over axis 0), [N, C, L]
 * (axes 0, 2), [N, C, H, W] (0, 2, 3), [N, C, D, H, W]. */
LAM_API lam_layer *lam_nn_batch_norm(int64_t num_features, const lam_batch_norm_opts *opts);
/* nn.GroupNorm(num_groups, num_channels): groups must divide channels. */
LAM_API lam_layer *lam_nn_group_norm(int64_t num_groups, int64_t num_channels,
                                     const lam_group_norm_opts *opts);
/* nn.InstanceNorm1d/2d/3d on [N, C, *] (rank >= 3). With
 * track_running_stats, evaluation uses the running statistics. */
LAM_API lam_layer *lam_nn_instance_norm(int64_t num_features, const lam_instance_norm_opts *opts);

/* Metalhead's ChannelLayerNorm(channels, activation): layer norm over axis 1
 * of [N, C, *] (channels-first), params "weight", "bias" [C], then
 * opts->activation (owned; NULL: none) as child "act". Default eps 1e-5, as
 * Metalhead's. */
LAM_API lam_layer *lam_nn_channel_layer_norm(int64_t channels, const lam_layer_norm_opts *opts);

/* ---- local response normalization ---------------------------------------- */

typedef struct lam_local_response_norm_opts {
  double alpha; /* default 1e-4 (LAM_ZERO: 0) */
  double beta;  /* default 0.75 (LAM_ZERO: 0) */
  double k;     /* default 1 (LAM_ZERO: 0) */
} lam_local_response_norm_opts;

/* Returns alpha 1e-4, beta 0.75, k 1 (nn.LocalResponseNorm's). */
LAM_API lam_local_response_norm_opts lam_local_response_norm_defaults(void);

/* As torch.nn.functional.local_response_norm on x [N, C, ...] (3 to 5
 * dims, f32/f64): y = x / (k + alpha / size * sum x^2 over the channels
 * c - size/2 .. c + (size-1)/2 (zero beyond the edges))^beta. size >= 1.
 * Differentiable. Returns y or NULL. */
LAM_API lam_tensor *lam_local_response_norm(lam_tensor *x, int64_t size,
                                            const lam_local_response_norm_opts *opts);
/* nn.LocalResponseNorm(size): the op as a layer without params. */
LAM_API lam_layer *lam_nn_local_response_norm(int64_t size, const lam_local_response_norm_opts *opts);

#ifdef __cplusplus
}
#endif
#endif
