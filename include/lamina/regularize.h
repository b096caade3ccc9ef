/* lamina/regularize.h: dropout, DropBlock and stochastic depth (DropPath),
 * as ops and as layers.
 *
 * Every stochastic layer is active only in training (lam_apply_opts.training)
 * and then needs opts->rng (an error without one); in evaluation it is the
 * identity. The ops take an explicit Philox key, so the same key drops the
 * same elements on every device. Layer options follow lamina/options.h
 * (NULL, a zeroed struct and the defaults function mean the same); the ops
 * take their few arguments positionally, as F.dropout(x, p). */
#ifndef LAMINA_REGULARIZE_H
#define LAMINA_REGULARIZE_H

#include "lamina/export.h"

#include <stdbool.h>

#include "lamina/layer.h"
#include "lamina/options.h"
#include "lamina/rng.h"
#include "lamina/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- dropout --------------------------------------------------------------- */

typedef struct lam_dropout_opts {
  double rate; /* drop probability in [0, 1); 0: 0.5 (PyTorch's default);
                  LAM_ZERO: no dropout (the identity) */
} lam_dropout_opts;
/* Returns rate 0.5. */
LAM_API lam_dropout_opts lam_dropout_defaults(void);

/* Zeroes elements with probability rate and scales the rest by 1/(1-rate) in
 * training (needs opts->rng; an error without one); identity in evaluation. */
LAM_API lam_layer *lam_nn_dropout(const lam_dropout_opts *opts);
/* Whole channels (axis 1) of [N, C, H, W] / [N, C, D, H, W] inputs. */
LAM_API lam_layer *lam_nn_dropout2d(const lam_dropout_opts *opts);
LAM_API lam_layer *lam_nn_dropout3d(const lam_dropout_opts *opts);
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
typedef struct lam_dropblock_opts {
  double rate;        /* in [0, 1]; 0: 0.1 (Metalhead's default); LAM_ZERO: the identity */
  int64_t block_size; /* >= 1; 0: 7 */
  double gamma_scale; /* in [0, 1]; 0: 1; LAM_ZERO: 0 (nothing dropped) */
} lam_dropblock_opts;
/* Returns rate 0.1, block_size 7, gamma_scale 1 (Metalhead's DropBlock). */
LAM_API lam_dropblock_opts lam_dropblock_defaults(void);

/* Metalhead's DropBlock: lam_dropblock in training (needs opts->rng), the
 * identity in evaluation. */
LAM_API lam_layer *lam_nn_dropblock(const lam_dropblock_opts *opts);

typedef enum lam_stochastic_depth_mode {
  LAM_STOCHASTIC_DEPTH_ROW = 0,  /* one draw per sample (axis 0) */
  LAM_STOCHASTIC_DEPTH_BATCH = 1 /* one draw for the whole batch */
} lam_stochastic_depth_mode;

/* torchvision's stochastic_depth: keeps rows (or the batch) with probability
 * 1 - rate and scales them by 1 / (1 - rate) (rate 1: all zeros). */
LAM_API lam_tensor *lam_stochastic_depth(lam_tensor *x, double rate,
                                         lam_stochastic_depth_mode mode, lam_rng_key key);
typedef struct lam_stochastic_depth_opts {
  double rate;                    /* drop probability in [0, 1]; 0 (default): the identity */
  lam_stochastic_depth_mode mode; /* default row */
} lam_stochastic_depth_opts;
/* Returns rate 0, row mode. */
LAM_API lam_stochastic_depth_opts lam_stochastic_depth_defaults(void);

/* Metalhead's StochasticDepth(p, mode) / DropPath: lam_stochastic_depth in
 * training (needs opts->rng), the identity in evaluation. */
LAM_API lam_layer *lam_nn_stochastic_depth(const lam_stochastic_depth_opts *opts);

/* Metalhead's linear_scheduler: out[i] = start_value + (drop_prob -
 * start_value) * i / (depth - 1) for i < depth (depth 1: start_value, as
 * torch.linspace). Per-block drop rates for stochastic depth. */
LAM_API lam_status lam_stochastic_depth_rates(double drop_prob, double start_value, int depth, double *out);

#ifdef __cplusplus
}
#endif
#endif
