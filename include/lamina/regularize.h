/* lamina/regularize.h: dropout, DropBlock and stochastic depth (DropPath),
 * as ops and as layers.
 *
 * Every stochastic layer is active only in training (lam_apply_opts.training)
 * and then needs opts->rng (an error without one); in evaluation it is the
 * identity. The ops take an explicit Philox key, so the same key drops the
 * same elements on every device. */
#ifndef LAMINA_REGULARIZE_H
#define LAMINA_REGULARIZE_H

#include "lamina/export.h"

#include <stdbool.h>

#include "lamina/layer.h"
#include "lamina/rng.h"
#include "lamina/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- dropout --------------------------------------------------------------- */

/* Zeroes elements with probability rate and scales the rest by 1/(1-rate) in
 * training (needs opts->rng; an error without one); identity in evaluation. */
LAM_API lam_layer *lam_nn_dropout(double rate);
/* Whole channels (axis 1) of [N, C, H, W] / [N, C, D, H, W] inputs. */
LAM_API lam_layer *lam_nn_dropout2d(double rate);
LAM_API lam_layer *lam_nn_dropout3d(double rate);
/* Functional dropout: drops with `rate`, whole channels when channel_wise. */
LAM_API lam_tensor *lam_dropout(lam_tensor *x, double rate, lam_rng_key key, bool channel_wise);


/* ---- regularization --------------------------------------------------------- */

/* Metalhead's dropblock on x [N, C, H, W] (f32/f64): block centres are
 * drawn per element with probability gamma = gamma_scale * rate * H * W /
 * bs^2 / ((W - block_size + 1) * (H - block_size + 1)), bs = min(block_size,
 * H, W); the mask zeroes the bs x bs block around each centre (max-pool,
 * stride 1, pad bs/2) and the kept values are scaled by numel / (sum(mask) +
 * 1e-6) (Metalhead adds its 1e-6 after the division; lamina keeps the scale
 * finite when everything is dropped). rate in [0, 1], gamma_scale in [0, 1]. */
LAM_API lam_tensor *lam_dropblock(lam_tensor *x, double rate, int64_t block_size,
                                  double gamma_scale, lam_rng_key key);
/* Metalhead's DropBlock(rate, block_size, gamma_scale) (defaults 0.1, 7, 1):
 * in training needs opts->rng; identity in evaluation and for rate 0. */
LAM_API lam_layer *lam_nn_dropblock(double rate, int64_t block_size, double gamma_scale);

typedef enum lam_stochastic_depth_mode {
  LAM_STOCHASTIC_DEPTH_ROW = 0,  /* one draw per sample (axis 0) */
  LAM_STOCHASTIC_DEPTH_BATCH = 1 /* one draw for the whole batch */
} lam_stochastic_depth_mode;

/* torchvision's stochastic_depth: keeps rows (or the batch) with probability
 * 1 - rate and scales them by 1 / (1 - rate) (rate 1: all zeros). */
LAM_API lam_tensor *lam_stochastic_depth(lam_tensor *x, double rate,
                                         lam_stochastic_depth_mode mode, lam_rng_key key);
/* Metalhead's StochasticDepth(p, mode) / DropPath: identity in evaluation. */
LAM_API lam_layer *lam_nn_stochastic_depth(double rate, lam_stochastic_depth_mode mode);

/* Metalhead's linear_scheduler: out[i] = start_value + (drop_prob -
 * start_value) * i / (depth - 1) for i < depth (depth 1: start_value, as
 * torch.linspace). Per-block drop rates for stochastic depth. */
LAM_API lam_status lam_stochastic_depth_rates(double drop_prob, double start_value, int depth, double *out);

#ifdef __cplusplus
}
#endif
#endif
