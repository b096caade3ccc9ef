/* lamina/norm.h: normalization and regularization layers, and Metalhead's
 * building blocks.
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
 * instance norm with track_running_stats, "gamma" for LayerScale (timm's
 * name). In training (lam_apply_opts.training) batch norm replaces the state
 * leaves with new tensors (the update is never differentiated); in
 * evaluation it uses them. Constructors return a new layer or NULL with a
 * message; an opts pointer may be NULL for that layer's defaults. */
#ifndef LAMINA_NORM_H
#define LAMINA_NORM_H

#include <stdbool.h>

#include "lamina/layer.h"
#include "lamina/rng.h"
#include "lamina/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- functional ops --------------------------------------------------- */

/* F.layer_norm over the last `normalized_ndim` axes of x (>= 1, <= rank):
 * y = (x - mean) / sqrt(var + eps) * weight + bias, weight and bias (each
 * may be NULL) shaped like those axes. */
lam_tensor *lam_layer_norm(lam_tensor *x, int normalized_ndim, lam_tensor *weight,
                                   lam_tensor *bias, double eps);

/* RMS norm over the last `normalized_ndim` axes (torch.nn.RMSNorm):
 * y = x / sqrt(mean(x^2) + eps) * weight (weight may be NULL). */
lam_tensor *lam_rms_norm(lam_tensor *x, int normalized_ndim, lam_tensor *weight,
                                 double eps);

/* F.group_norm of x [N, C, *]: statistics per sample over each group of
 * C / groups channels (groups must divide C); weight, bias [C] or NULL. */
lam_tensor *lam_group_norm(lam_tensor *x, int64_t groups, lam_tensor *weight,
                                   lam_tensor *bias, double eps);

/* Layer norm over the channel axis 1 of x [N, C, *] at every position
 * (Metalhead's ChannelLayerNorm, timm's LayerNorm2d); weight, bias [C]. */
lam_tensor *lam_channel_layer_norm(lam_tensor *x, lam_tensor *weight, lam_tensor *bias,
                                           double eps);

/* F.batch_norm of x [N, C, *] (statistics over every axis but 1). In
 * training the batch statistics normalize; when running_mean/running_var
 * (both [C], or both NULL) are given, new running statistics
 * (1 - momentum) * running + momentum * batch (unbiased variance) are
 * returned in *new_mean / *new_var (new tensors, not recorded; the pointers
 * may be NULL when not wanted). In evaluation the running statistics
 * normalize (required). Training needs more than one value per channel. */
lam_tensor *lam_batch_norm(lam_tensor *x, lam_tensor *running_mean,
                                   lam_tensor *running_var, lam_tensor *weight, lam_tensor *bias,
                                   bool training, double momentum, double eps,
                                   lam_tensor **new_mean, lam_tensor **new_var);

/* F.instance_norm of x [N, C, *]: with use_input_stats each (sample,
 * channel) is normalized by its own statistics and, when running stats are
 * given, *new_mean / *new_var get them updated with the batch average of the
 * per-instance mean and unbiased variance; without, the running statistics
 * normalize (as batch norm in evaluation). */
lam_tensor *lam_instance_norm(lam_tensor *x, lam_tensor *running_mean,
                                      lam_tensor *running_var, lam_tensor *weight,
                                      lam_tensor *bias, bool use_input_stats, double momentum,
                                      double eps, lam_tensor **new_mean, lam_tensor **new_var);

/* ---- norm layers ---------------------------------------------------------- */

typedef struct lam_norm_opts {
  double eps;               /* added to the variance; see each defaults function */
  bool affine;              /* learnable weight (and bias): elementwise_affine / affine */
  bool bias;                /* layer norm: with a bias when affine (default true) */
  double momentum;          /* running statistics; negative: cumulative average
                               (PyTorch's momentum=None); default 0.1 */
  bool track_running_stats; /* batch norm default true, instance norm false */
} lam_norm_opts;

/* eps 1e-5, affine, bias (nn.LayerNorm). */
lam_norm_opts lam_layer_norm_defaults(void);
/* eps -1 (negative: the dtype's machine epsilon, as nn.RMSNorm's eps=None), affine. */
lam_norm_opts lam_rms_norm_defaults(void);
/* eps 1e-5, momentum 0.1, affine, track_running_stats (nn.BatchNorm2d). */
lam_norm_opts lam_batch_norm_defaults(void);
/* eps 1e-5, affine (nn.GroupNorm). */
lam_norm_opts lam_group_norm_defaults(void);
/* eps 1e-5, momentum 0.1, no affine, no running stats (nn.InstanceNorm2d). */
lam_norm_opts lam_instance_norm_defaults(void);

/* nn.LayerNorm(normalized_shape): normalizes the trailing `ndim` axes, which
 * must equal `shape`; params "weight", "bias" shaped `shape` (ones, zeros). */
lam_layer *lam_nn_layer_norm(int ndim, const int64_t *shape, const lam_norm_opts *opts);
/* nn.RMSNorm(normalized_shape): param "weight" (ones), no bias. */
lam_layer *lam_nn_rms_norm(int ndim, const int64_t *shape, const lam_norm_opts *opts);
/* nn.BatchNorm1d/2d/3d: inputs [N, C] (statistics over axis 0), [N, C, L]
 * (axes 0, 2), [N, C, H, W] (0, 2, 3), [N, C, D, H, W]. */
lam_layer *lam_nn_batch_norm(int64_t num_features, const lam_norm_opts *opts);
/* nn.GroupNorm(num_groups, num_channels): groups must divide channels. */
lam_layer *lam_nn_group_norm(int64_t num_groups, int64_t num_channels, const lam_norm_opts *opts);
/* nn.InstanceNorm1d/2d/3d on [N, C, *] (rank >= 3). With
 * track_running_stats, evaluation uses the running statistics. */
lam_layer *lam_nn_instance_norm(int64_t num_features, const lam_norm_opts *opts);

/* Metalhead's LayerNormV2 (= PyTorch's LayerNorm, eps inside the square
 * root) followed by `activation` (a layer, owned; NULL: identity), applied
 * as child "act" after the affine map. Params "weight", "bias". */
lam_layer *lam_layer_norm_v2(int ndim, const int64_t *shape, lam_layer *activation,
                             const lam_norm_opts *opts);
/* Metalhead's ChannelLayerNorm(channels, activation): layer norm over axis 1
 * of [N, C, *] (channels-first), params "weight", "bias" [C], then
 * `activation` (owned, NULL: identity) as child "act". Default eps 1e-5 (opts
 * NULL), as Metalhead's. */
lam_layer *lam_nn_channel_layer_norm(int64_t channels, lam_layer *activation,
                                  const lam_norm_opts *opts);
/* Metalhead's LayerScale(planes, lambda): y = x * gamma over the last axis
 * ([..., planes]); param "gamma" [planes] filled with lambda. lambda <= 0
 * gives the identity layer, as in Metalhead. */
lam_layer *lam_nn_layer_scale(int64_t planes, double lambda);

/* ---- regularization --------------------------------------------------------- */

/* Metalhead's dropblock on x [N, C, H, W] (f32/f64): block centres are
 * drawn per element with probability gamma = gamma_scale * rate * H * W /
 * bs^2 / ((W - block_size + 1) * (H - block_size + 1)), bs = min(block_size,
 * H, W); the mask zeroes the bs x bs block around each centre (max-pool,
 * stride 1, pad bs/2) and the kept values are scaled by numel / (sum(mask) +
 * 1e-6) (Metalhead adds its 1e-6 after the division; lamina keeps the scale
 * finite when everything is dropped). rate in [0, 1], gamma_scale in [0, 1]. */
lam_tensor *lam_dropblock(lam_tensor *x, double rate, int64_t block_size,
                                  double gamma_scale, lam_rng_key key);
/* Metalhead's DropBlock(rate, block_size, gamma_scale) (defaults 0.1, 7, 1):
 * in training needs opts->rng; identity in evaluation and for rate 0. */
lam_layer *lam_nn_dropblock(double rate, int64_t block_size, double gamma_scale);

typedef enum lam_stochastic_depth_mode {
  LAM_STOCHASTIC_DEPTH_ROW = 0,  /* one draw per sample (axis 0) */
  LAM_STOCHASTIC_DEPTH_BATCH = 1 /* one draw for the whole batch */
} lam_stochastic_depth_mode;

/* torchvision's stochastic_depth: keeps rows (or the batch) with probability
 * 1 - rate and scales them by 1 / (1 - rate) (rate 1: all zeros). */
lam_tensor *lam_stochastic_depth(lam_tensor *x, double rate,
                                         lam_stochastic_depth_mode mode, lam_rng_key key);
/* Metalhead's StochasticDepth(p, mode) / DropPath: identity in evaluation. */
lam_layer *lam_nn_stochastic_depth(double rate, lam_stochastic_depth_mode mode);

/* Metalhead's linear_scheduler: out[i] = start_value + (drop_prob -
 * start_value) * i / (depth - 1) for i < depth (depth 1: start_value, as
 * torch.linspace). Per-block drop rates for stochastic depth. */
lam_status lam_stochastic_depth_rates(double drop_prob, double start_value, int depth, double *out);

/* ---- building blocks ------------------------------------------------------------ */

/* Metalhead's prenorm: block(norm(x)) (a Chain, no residual; wrap it in a
 * residual yourself). Children "norm" and "block"; takes ownership. */
lam_layer *lam_nn_prenorm(lam_layer *norm, lam_layer *block);

typedef struct lam_conv_norm_opts {
  bool preact;  /* conv -> activation -> norm (Metalhead's preact) */
  bool revnorm; /* norm -> conv -> activation (norm over the conv's input) */
} lam_conv_norm_opts;

/* Metalhead's conv_norm with the layers given: a sequential of conv (any
 * layer), the norm layer (NULL: none) and the activation (NULL: none), in
 * the order conv, norm, act (default; children "0", "1", "2" as
 * torchvision's Conv2dNormActivation), conv, act, norm (preact) or norm,
 * conv, act (revnorm; not with preact). Takes ownership of the layers (also
 * on failure). */
lam_layer *lam_nn_conv_norm(lam_layer *conv, lam_layer *norm, lam_layer *activation,
                         const lam_conv_norm_opts *opts);

typedef struct lam_classifier_opts {
  lam_layer *pool;              /* owned; NULL: global average over axes 2.. */
  int64_t hidden_planes;        /* > 0: a hidden linear layer */
  double dropout;               /* > 0: dropout (after the pool, or after the hidden layer) */
  lam_layer *hidden_activation; /* owned; NULL: relu (Metalhead's default) */
  lam_layer *activation;        /* owned; NULL: identity */
} lam_classifier_opts;

/* Metalhead's create_classifier: pool, flatten (to [N, features]),
 * [dropout], linear(inplanes, nclasses), [activation]; with hidden_planes:
 * pool, flatten, linear(inplanes, hidden), hidden_activation, [dropout],
 * linear(hidden, nclasses), [activation]. A sequential (children "0",
 * "1", ...). Takes ownership of the layers in opts (also on failure). */
lam_layer *lam_nn_classifier(int64_t inplanes, int64_t nclasses,
                                 const lam_classifier_opts *opts);

#ifdef __cplusplus
}
#endif
#endif
