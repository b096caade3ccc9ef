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
 *   - beta, margin, eps, p take LAM_ZERO for a real zero;
 *   - the integers ignore_index and axis are used when nonzero or when
 *     their `_set` flag is true, so `.ignore_index = 3` ignores class 3,
 *     `.ignore_index_set = true` (ignore_index 0) ignores class 0, and a
 *     zeroed struct ignores -100 as PyTorch. lam_loss_defaults() returns
 *     the resolved values with the flags set, so changing a field of it to
 *     0 means 0. */
typedef struct lam_loss_opts {
  lam_reduction reduction; /* default mean */
  lam_tensor *weight;      /* cross_entropy/nll/multi_margin/multilabel_soft_margin: class weights [C];
                            * bce: elementwise weight (broadcast); NULL: none */
  lam_tensor *pos_weight;  /* bce with logits: weight of the positive term, broadcast against the input
                            * (a [C] vector weighs each class of [..., C]), as PyTorch; NULL: none */
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
  double margin;           /* 0: the loss's default (margin_ranking 0, triplet 1, cosine_embedding 0,
                            * hinge_embedding 1, multi_margin 1); LAM_ZERO: 0 */
  double p;                /* 0: the loss's default: triplet norm degree (2; must be > 0),
                            * multi_margin exponent (1; 1 or 2) */
  double eps;              /* 0: the loss's default (triplet 1e-6, cosine 1e-8, gaussian_nll 1e-6,
                            * poisson_nll 1e-8); LAM_ZERO: 0; must be >= 0 */
  bool swap;               /* triplet distance swap (default false) */
  bool full;               /* gaussian_nll: add the constant term; poisson_nll: add the Stirling term
                            * where target > 1 (default false) */
  bool no_log_input;       /* poisson_nll: input is the rate itself, not its log (PyTorch's
                            * log_input=False; default false: log_input=True) */
  bool log_target;         /* kl_div: target given as log-probabilities (default false) */
  int axis;                /* cosine_similarity axis (default 1, as MLX); read when nonzero or axis_set */
  bool axis_set;           /* axis holds the value even when it is 0 */
  int blank;               /* ctc: the blank label (default 0) */
  bool zero_infinity;      /* ctc: infinite losses (impossible alignments) and their gradients become 0 */
} lam_loss_opts;

/* Returns the defaults listed above, resolved: reduction mean, no weight,
 * ignore_index -100 (ignore_index_set true), logits for BCE, beta 1,
 * delta 1, axis 1 (axis_set true), blank 0. margin, eps and p stay 0, which
 * means each loss's own default (they differ between losses). */
LAM_API lam_loss_opts lam_loss_defaults(void);

/* logits [N, C] or [N, C, d1, ...]; target i32 class indices [N, d1, ...]
 * or float probabilities shaped like logits. Class weights, label smoothing
 * and ignore_index as torch.nn.functional.cross_entropy. */
LAM_API lam_tensor *lam_cross_entropy(lam_tensor *logits, lam_tensor *target, const lam_loss_opts *opts);
/* log-probabilities [N, C, ...] and i32 targets: torch.nn.functional.nll_loss. */
LAM_API lam_tensor *lam_nll_loss(lam_tensor *log_probs, lam_tensor *target, const lam_loss_opts *opts);
/* Logits (default) or probabilities (from_probabilities) against float targets in [0, 1].
 * With logits, pos_weight p gives -w [p t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))]
 * (PyTorch's binary_cross_entropy_with_logits); it is not taken with probabilities. */
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

/* torch.nn.functional.poisson_nll_loss: exp(input) - target input (default, log_input) or,
 * with no_log_input, input - target log(input + eps) (eps 1e-8); full adds the
 * Stirling term target log(target) - target + 0.5 log(2 pi target) where target > 1. */
LAM_API lam_tensor *lam_poisson_nll_loss(lam_tensor *input, lam_tensor *target, const lam_loss_opts *opts);
/* torch.nn.functional.cosine_embedding_loss: x1, x2 [N, D] (or [D]), y [N] (or one value, x1's dtype)
 * of +1 / -1: 1 - cos where y = 1, max(0, cos - margin) where y = -1 (margin 0); cos over
 * the last axis, cos = x1.x2 / sqrt((|x1|^2 + 1e-12)(|x2|^2 + 1e-12)). none gives [N]. */
LAM_API lam_tensor *lam_cosine_embedding_loss(lam_tensor *x1, lam_tensor *x2, lam_tensor *y,
                                              const lam_loss_opts *opts);
/* torch.nn.functional.hinge_embedding_loss: input where target = 1, max(0, margin - input)
 * where target = -1 (margin 1); input and target of the same shape. */
LAM_API lam_tensor *lam_hinge_embedding_loss(lam_tensor *input, lam_tensor *target, const lam_loss_opts *opts);
/* torch.nn.functional.soft_margin_loss: log(1 + exp(-target input)), targets +1 / -1. */
LAM_API lam_tensor *lam_soft_margin_loss(lam_tensor *input, lam_tensor *target, const lam_loss_opts *opts);
/* torch.nn.functional.multi_margin_loss: input [N, C] (or [C]), i32 target [N] (or one
 * value): sum over i != y of weight[y] max(0, margin - x[y] + x[i])^p / C, with p 1 (or 2),
 * margin 1 and optional class weights [C]. none gives [N]. */
LAM_API lam_tensor *lam_multi_margin_loss(lam_tensor *input, lam_tensor *target, const lam_loss_opts *opts);
/* torch.nn.functional.multilabel_margin_loss: input [N, C] (or [C]); i32 target of the same
 * shape holding class indices, ended by the first -1 (the rest is ignored): sum over
 * target classes j and non-target classes i of max(0, 1 - (x[j] - x[i])) / C. none gives [N]. */
LAM_API lam_tensor *lam_multilabel_margin_loss(lam_tensor *input, lam_tensor *target,
                                               const lam_loss_opts *opts);
/* torch.nn.functional.multilabel_soft_margin_loss: input and target [N, C] (or [C]), targets
 * in [0, 1]: -mean over classes of weight (t log sigmoid(x) + (1 - t) log sigmoid(-x)).
 * none gives [N]. */
LAM_API lam_tensor *lam_multilabel_soft_margin_loss(lam_tensor *input, lam_tensor *target,
                                                    const lam_loss_opts *opts);
/* torch.nn.functional.ctc_loss (connectionist temporal classification).
 * log_probs: [T, N, C] (or unbatched [T, C]) log-probabilities, f32 or f64 (usually
 * log_softmax outputs); targets: i32, padded [N, S] (row n holds its target_lengths[n]
 * labels first) or the N targets concatenated in one 1-D tensor; input_lengths and
 * target_lengths: i32 [N] (one value when unbatched), 1 <= input_lengths[n] <= T.
 * Labels lie in [0, C) and differ from opts->blank (default 0). Reductions: none gives
 * the per-sample loss [N]; sum their sum; mean divides each by its target length
 * (at least 1) and averages, as PyTorch. zero_infinity: infinite losses (no
 * alignment fits) and their gradients are 0. The lengths and targets are read on
 * the host (a synchronisation) to check them; the dynamic programs run on the
 * device. The gradient is the exact derivative with respect to log_probs (see
 * docs/porting-from-pytorch.md: PyTorch's adds exp(log_probs), which cancels
 * through log_softmax). */
LAM_API lam_tensor *lam_ctc_loss(lam_tensor *log_probs, lam_tensor *targets, lam_tensor *input_lengths,
                                 lam_tensor *target_lengths, const lam_loss_opts *opts);

#ifdef __cplusplus
}
#endif
#endif
