/* lamina/loss.h: loss functions (MLX's list) with PyTorch's semantics.
 * Each returns a new tensor: a scalar for mean/sum, per-element (or
 * per-sample) for none; NULL with a message on bad input. All are built from
 * differentiable ops, so gradients flow through lam_value_and_grad. */
#ifndef LAMINA_LOSS_H
#define LAMINA_LOSS_H

#include "lamina/export.h"

#include <stdbool.h>

#include "lamina/options.h"
#include "lamina/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lam_reduction {
  LAM_REDUCTION_MEAN = 0,
  LAM_REDUCTION_SUM,
  LAM_REDUCTION_NONE,
  LAM_REDUCTION_BATCHMEAN /* kl_div only: sum / batch size, as PyTorch */
} lam_reduction;

/* One options struct for every loss; each loss reads the fields it names.
 * It follows the options rule (lamina/options.h): NULL, a zeroed struct
 * and lam_loss_defaults() mean the same thing, PyTorch's defaults, and a
 * zero field means the default. Where a default is not zero but zero is a
 * valid value:
 *   - beta, margin, eps take LAM_ZERO for a real zero;
 *   - the integers ignore_index and axis are used when nonzero or when
 *     their `_set` flag is true, so `.ignore_index = 3` ignores class 3,
 *     `.ignore_index_set = true` (ignore_index 0) ignores class 0, and a
 *     zeroed struct ignores -100 as PyTorch. lam_loss_defaults() returns
 *     the resolved values with the flags set, so changing a field of it to
 *     0 means 0. */
typedef struct lam_loss_opts {
  lam_reduction reduction; /* default mean */
  lam_tensor *weight;      /* cross_entropy/nll: class weights [C]; bce: elementwise weight; NULL: none */
  double label_smoothing;  /* cross_entropy, default 0 */
  int ignore_index;        /* cross_entropy/nll with class indices: targets equal to it are skipped
                            * (default -100, as PyTorch); read when nonzero or ignore_index_set */
  bool ignore_index_set;   /* ignore_index holds the value even when it is 0 */
  /* binary_cross_entropy: false (default): input is logits, as MLX's
   * binary_cross_entropy and PyTorch's binary_cross_entropy_with_logits
   * (stable); true: input is probabilities, as PyTorch's
   * F.binary_cross_entropy (logs clamped at -100). */
  bool from_probabilities;
  double beta;             /* smooth_l1 (0: 1; LAM_ZERO: 0, which is the L1 loss) */
  double delta;            /* huber (0: 1; must be > 0) */
  double margin;           /* 0: the loss's default (margin_ranking 0, triplet 1); LAM_ZERO: 0 */
  double p;                /* triplet norm degree (0: 2; must be > 0) */
  double eps;              /* 0: the loss's default (triplet 1e-6, cosine 1e-8, gaussian_nll 1e-6);
                            * LAM_ZERO: 0; must be >= 0 */
  bool swap;               /* triplet distance swap (default false) */
  bool full;               /* gaussian_nll: add the constant term (default false) */
  bool log_target;         /* kl_div: target given as log-probabilities (default false) */
  int axis;                /* cosine_similarity axis (default 1, as MLX); read when nonzero or axis_set */
  bool axis_set;           /* axis holds the value even when it is 0 */
} lam_loss_opts;

/* Returns the defaults listed above, resolved: reduction mean, no weight,
 * ignore_index -100 (ignore_index_set true), logits for BCE, beta 1,
 * delta 1, p 2, axis 1 (axis_set true). margin and eps stay 0, which means
 * each loss's own default (they differ between losses). */
LAM_API lam_loss_opts lam_loss_defaults(void);

/* logits [N, C] or [N, C, d1, ...]; target i32 class indices [N, d1, ...]
 * or float probabilities shaped like logits. Class weights, label smoothing
 * and ignore_index as torch.nn.functional.cross_entropy. */
LAM_API lam_tensor *lam_cross_entropy(lam_tensor *logits, lam_tensor *target, const lam_loss_opts *opts);
/* log-probabilities [N, C, ...] and i32 targets: torch.nn.functional.nll_loss. */
LAM_API lam_tensor *lam_nll_loss(lam_tensor *log_probs, lam_tensor *target, const lam_loss_opts *opts);
/* Logits (default) or probabilities (from_probabilities) against float targets in [0, 1]. */
LAM_API lam_tensor *lam_binary_cross_entropy(lam_tensor *input, lam_tensor *target, const lam_loss_opts *opts);
LAM_API lam_tensor *lam_mse_loss(lam_tensor *input, lam_tensor *target, const lam_loss_opts *opts);
LAM_API lam_tensor *lam_l1_loss(lam_tensor *input, lam_tensor *target, const lam_loss_opts *opts);
LAM_API lam_tensor *lam_smooth_l1_loss(lam_tensor *input, lam_tensor *target, const lam_loss_opts *opts);
LAM_API lam_tensor *lam_huber_loss(lam_tensor *input, lam_tensor *target, const lam_loss_opts *opts);
/* input: log-probabilities; target: probabilities (or log-probabilities with log_target). */
LAM_API lam_tensor *lam_kl_div_loss(lam_tensor *input, lam_tensor *target, const lam_loss_opts *opts);
/* max(0, 1 - input * target) with targets in {-1, 1} (MLX hinge_loss). */
LAM_API lam_tensor *lam_hinge_loss(lam_tensor *input, lam_tensor *target, const lam_loss_opts *opts);
/* max(0, -y (x1 - x2) + margin). */
LAM_API lam_tensor *lam_margin_ranking_loss(lam_tensor *x1, lam_tensor *x2, lam_tensor *y,
                                    const lam_loss_opts *opts);
/* max(d(a, p) - d(a, n) + margin, 0) with d the p-norm of the difference (+eps) over the last axis. */
LAM_API lam_tensor *lam_triplet_margin_loss(lam_tensor *anchor, lam_tensor *positive, lam_tensor *negative,
                                    const lam_loss_opts *opts);
/* Cosine similarity along opts->axis: dot / max(|x1| |x2|, eps) (MLX
 * cosine_similarity_loss), reduced; default reduction for it is still mean. */
LAM_API lam_tensor *lam_cosine_similarity_loss(lam_tensor *x1, lam_tensor *x2, const lam_loss_opts *opts);
/* 0.5 (log(max(var, eps)) + (input - target)^2 / max(var, eps)) [+ 0.5 log(2 pi)]. */
LAM_API lam_tensor *lam_gaussian_nll_loss(lam_tensor *input, lam_tensor *target, lam_tensor *var,
                                  const lam_loss_opts *opts);

#ifdef __cplusplus
}
#endif
#endif
