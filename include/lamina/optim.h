/* lamina/optim.h: optimizers, learning-rate schedules and gradient clipping.
 *
 * Optimizers update a parameter tree in place on the device from a gradient
 * tree matched by path (as lam_value_and_grad returns it), with PyTorch's
 * update formulas, defaults and per-parameter state names (SGD, Adam, AdamW,
 * RMSprop, Adagrad) and the Lion update of Chen et al. 2023 as written in
 * lucidrains/lion-pytorch. Each optimizer update is one fused kernel, one
 * work-item per element, per parameter leaf. Per-parameter state is created
 * lazily on the first step that sees a path and is keyed by that path.
 *
 * Typical use:
 *   lam_optimizer *opt = lam_adamw(&(lam_adamw_opts){.lr = 3e-4});  (weight decay 1e-2)
 *   lam_schedule s = lam_schedule_warmup_cosine(1e-6, 3e-4, 100, 10000, 1e-5);
 *   lam_optimizer_set_schedule(opt, &s);
 *   for (...) { lam_value_and_grad(ctx, loss_fn, user, params, &loss, &grads);
 *               lam_grad_clip_norm(grads, 1.0, NULL);
 *               lam_optimizer_step(opt, params, grads); ... }
 *   lam_optimizer_free(opt); */
#ifndef LAMINA_OPTIM_H
#define LAMINA_OPTIM_H

#include "lamina/export.h"

#include <stdbool.h>
#include <stdint.h>

#include "lamina/options.h"
#include "lamina/ptree.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lam_optimizer lam_optimizer;

typedef enum lam_optim_kind {
  LAM_OPTIM_SGD = 0,
  LAM_OPTIM_ADAM = 1,
  LAM_OPTIM_ADAMW = 2,
  LAM_OPTIM_RMSPROP = 3,
  LAM_OPTIM_ADAGRAD = 4,
  LAM_OPTIM_LION = 5
} lam_optim_kind;

/* ---- hyperparameters (each with a defaults function) ------------------- */

/* Every struct follows the options rule (lamina/options.h): NULL, a zeroed
 * struct and lam_<name>_defaults() are the same configuration, PyTorch's
 * defaults, so `&(lam_adam_opts){.lr = 3e-4}` is torch.optim.Adam(lr=3e-4).
 * A field whose default is not zero but for which zero is meaningful
 * (learning rates, betas, alpha, eps, AdamW's weight decay) takes LAM_ZERO
 * for a real zero: `.beta1 = LAM_ZERO` is PyTorch's betas=(0, 0.999). The
 * defaults functions return the resolved values. */

/* torch.optim.SGD. Defaults: lr 1e-3 (PyTorch 2.x), momentum 0, dampening 0,
 * weight_decay 0 (L2: added to the gradient), nesterov false, maximize false.
 * The momentum buffer starts as the first (decayed) gradient, as in PyTorch.
 * Nesterov needs momentum > 0 and dampening 0. */
typedef struct lam_sgd_opts {
  double lr;           /* 0: 1e-3 */
  double momentum, dampening, weight_decay;
  bool nesterov, maximize;
} lam_sgd_opts;

/* torch.optim.Adam. Defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8,
 * weight_decay 0 (L2, added to the gradient), amsgrad false. */
typedef struct lam_adam_opts {
  double lr;           /* 0: 1e-3 */
  double beta1, beta2; /* 0: 0.9, 0.999 */
  double eps;          /* 0: 1e-8 */
  double weight_decay; /* 0: none */
  bool amsgrad, maximize;
} lam_adam_opts;

/* torch.optim.AdamW: Adam's fields and defaults, but the weight decay is
 * decoupled (param *= 1 - lr*wd before the Adam update) and a zero field
 * means PyTorch's 1e-2; LAM_ZERO turns it off (plain Adam). */
typedef struct lam_adamw_opts {
  double lr;           /* 0: 1e-3 */
  double beta1, beta2; /* 0: 0.9, 0.999 */
  double eps;          /* 0: 1e-8 */
  double weight_decay; /* 0: 1e-2; LAM_ZERO: none */
  bool amsgrad, maximize;
} lam_adamw_opts;

/* torch.optim.RMSprop. Defaults: lr 1e-2, alpha 0.99, eps 1e-8,
 * weight_decay 0, momentum 0, centered false. */
typedef struct lam_rmsprop_opts {
  double lr;           /* 0: 1e-2 */
  double alpha;        /* 0: 0.99 */
  double eps;          /* 0: 1e-8 */
  double weight_decay, momentum;
  bool centered, maximize;
} lam_rmsprop_opts;

/* torch.optim.Adagrad. Defaults: lr 1e-2, lr_decay 0, weight_decay 0,
 * initial_accumulator_value 0, eps 1e-10. */
typedef struct lam_adagrad_opts {
  double lr;           /* 0: 1e-2 */
  double lr_decay, weight_decay, initial_accumulator_value;
  double eps;          /* 0: 1e-10 */
  bool maximize;
} lam_adagrad_opts;

/* Lion (lucidrains/lion-pytorch). Defaults: lr 1e-4, betas (0.9, 0.99),
 * weight_decay 0 (decoupled: param *= 1 - lr*wd). Update:
 *   p -= lr * sign(beta1*m + (1-beta1)*g);  m = beta2*m + (1-beta2)*g. */
typedef struct lam_lion_opts {
  double lr;           /* 0: 1e-4 */
  double beta1, beta2; /* 0: 0.9, 0.99 */
  double weight_decay;
  bool maximize;
} lam_lion_opts;

LAM_API lam_sgd_opts lam_sgd_defaults(void);
LAM_API lam_adam_opts lam_adam_defaults(void);
LAM_API lam_adamw_opts lam_adamw_defaults(void);
LAM_API lam_rmsprop_opts lam_rmsprop_defaults(void);
LAM_API lam_adagrad_opts lam_adagrad_defaults(void);
LAM_API lam_lion_opts lam_lion_defaults(void);

/* Constructors (opts NULL: defaults). Return a new optimizer, or NULL with
 * LAM_ERR_INVALID_ARGUMENT and a message naming the function and the bad
 * hyperparameter (after zero fields are resolved: lr < 0, betas outside
 * [0, 1) ([0, 1] for Lion), eps < 0, negative momentum / weight decay /
 * lr_decay / alpha / initial accumulator, non-finite values, nesterov
 * without momentum or with dampening). */
LAM_API lam_optimizer *lam_sgd(const lam_sgd_opts *opts);
LAM_API lam_optimizer *lam_adam(const lam_adam_opts *opts);
LAM_API lam_optimizer *lam_adamw(const lam_adamw_opts *opts);
LAM_API lam_optimizer *lam_rmsprop(const lam_rmsprop_opts *opts);
LAM_API lam_optimizer *lam_adagrad(const lam_adagrad_opts *opts);
LAM_API lam_optimizer *lam_lion(const lam_lion_opts *opts);

/* Frees the optimizer and its state tensors. NULL is a no-op. */
LAM_API void lam_optimizer_free(lam_optimizer *opt);

/* Returns the optimizer's kind (LAM_OPTIM_SGD for NULL), and its name
 * ("sgd", "adam", "adamw", "rmsprop", "adagrad", "lion"; "unknown" for NULL). */
LAM_API lam_optim_kind lam_optimizer_kind(const lam_optimizer *opt);
LAM_API const char *lam_optimizer_name(const lam_optimizer *opt);
/* Writes the resolved hyperparameters (zero fields replaced by their
 * defaults) as a JSON object into buf (at most `size` bytes,
 * NUL-terminated), e.g. {"kind":"adam","lr":0.001,...}; checkpoints
 * store it for reference. Returns LAM_OK or LAM_ERR_INVALID_ARGUMENT when
 * buf is too small. */
LAM_API lam_status lam_optimizer_describe(const lam_optimizer *opt, char *buf, size_t size);

/* Applies one update to every trainable leaf of `params` that has a leaf at
 * the same path in `grads`, in place on the device (leaf buffers are
 * written; the tensors keep their identity). Leaves without a gradient, and
 * frozen leaves (lam_ptree_freeze), are skipped and keep their state. All
 * checks come before anything is enqueued: a gradient whose path has no
 * parameter, a shape or dtype that differs from the parameter's, a
 * non-float parameter, or a state of the wrong shape is an error naming the
 * path, and nothing is updated. The learning rate is the schedule's value
 * at lam_optimizer_step_count() when a schedule is set, else opts.lr; the
 * count then grows by one. Returns LAM_OK or the error. */
LAM_API lam_status lam_optimizer_step(lam_optimizer *opt, lam_ptree *params, const lam_ptree *grads);

/* Number of lam_optimizer_step calls so far (or as restored). -1 for NULL. */
LAM_API int64_t lam_optimizer_step_count(const lam_optimizer *opt);

/* The learning rate the next step will use (schedule or fixed). NAN for NULL. */
LAM_API double lam_optimizer_lr(const lam_optimizer *opt);
/* Replaces the fixed learning rate (lr >= 0 and finite). Has no effect
 * on the rate used while a schedule is set. */
LAM_API lam_status lam_optimizer_set_lr(lam_optimizer *opt, double lr);

/* Returns the optimizer state as a new tree (NULL with a message on
 * failure). Paths are "<slot>.<param path>", one subtree per slot shaped
 * like the parameters seen so far, with PyTorch's slot names:
 *   sgd      momentum_buffer (when momentum != 0)
 *   adam(w)  exp_avg, exp_avg_sq, max_exp_avg_sq (amsgrad)
 *   rmsprop  square_avg, momentum_buffer (momentum > 0), grad_avg (centered)
 *   adagrad  sum
 *   lion     exp_avg
 * plus "step.<param path>": an i32 scalar counting the updates of that
 * parameter (PyTorch's per-parameter state["step"]). The leaves are the
 * optimizer's own tensors (new references): later steps change them, so
 * copy them to keep a snapshot. */
LAM_API lam_ptree *lam_optimizer_state(const lam_optimizer *opt);

/* Replaces the optimizer state with copies of the leaves of `state` (in the
 * layout lam_optimizer_state returns) and sets the step count to `step`
 * (>= 0). Every slot this optimizer's configuration needs must be present
 * for each path, with one shape and float dtype per path; "step.<path>"
 * entries are optional (missing: `step`). Validated in full first: on error
 * the old state is kept. An empty tree clears the state. Returns LAM_OK,
 * LAM_ERR_INVALID_ARGUMENT / LAM_ERR_SHAPE / LAM_ERR_DTYPE naming the path. */
LAM_API lam_status lam_optimizer_load_state(lam_optimizer *opt, const lam_ptree *state, int64_t step);

/* ---- learning-rate schedules --------------------------------------------- */

typedef enum lam_schedule_kind {
  LAM_SCHEDULE_CONSTANT = 0,
  LAM_SCHEDULE_STEP = 1,
  LAM_SCHEDULE_EXPONENTIAL = 2,
  LAM_SCHEDULE_COSINE = 3,
  LAM_SCHEDULE_WARMUP_COSINE = 4,
  LAM_SCHEDULE_LINEAR = 5
} lam_schedule_kind;

/* A schedule is a plain value giving the absolute learning rate for the
 * step count t = 0, 1, 2, ... (the number of optimizer steps already
 * taken), as PyTorch's scheduler gives it after t calls of scheduler.step():
 *   constant     lr
 *   step         lr * gamma^floor(t / step_size)                     (StepLR)
 *   exponential  lr * gamma^t                                  (ExponentialLR)
 *   cosine       min_lr + (lr - min_lr) * (1 + cos(pi * t / decay_steps)) / 2
 *                for t <= decay_steps, then min_lr  (CosineAnnealingLR with
 *                T_max = decay_steps, eta_min = min_lr, until T_max; PyTorch
 *                would rise again after T_max, optax stays at the minimum
 *                as here)
 *   warmup_cosine  init_lr -> lr linearly over warmup_steps, then cosine
 *                from lr to min_lr over decay_steps - warmup_steps, then
 *                min_lr: optax.warmup_cosine_decay_schedule(init_value=init_lr,
 *                peak_value=lr, warmup_steps, decay_steps, end_value=min_lr),
 *                equal to PyTorch's SequentialLR([LinearLR(start_factor =
 *                init_lr/lr, total_iters=warmup), CosineAnnealingLR(T_max =
 *                decay_steps - warmup_steps, eta_min=min_lr)], [warmup])
 *   linear       lr * (start + (end - start) * min(t, total) / total)
 *                (LinearLR; start_factor < 1, end_factor 1 is a warmup) */
typedef struct lam_schedule {
  lam_schedule_kind kind;
  double lr;             /* base (peak) learning rate */
  double gamma;          /* step, exponential */
  int64_t step_size;     /* step */
  int64_t warmup_steps;  /* warmup_cosine */
  int64_t decay_steps;   /* cosine, warmup_cosine (total, incl. warmup); linear: total_iters */
  double init_lr;        /* warmup_cosine: lr at t = 0 */
  double min_lr;         /* cosine, warmup_cosine: final lr */
  double start_factor, end_factor; /* linear */
} lam_schedule;

LAM_API lam_schedule lam_schedule_constant(double lr);
LAM_API lam_schedule lam_schedule_step(double lr, int64_t step_size, double gamma);
LAM_API lam_schedule lam_schedule_exponential(double lr, double gamma);
LAM_API lam_schedule lam_schedule_cosine(double lr, int64_t decay_steps, double min_lr);
LAM_API lam_schedule lam_schedule_warmup_cosine(double init_lr, double peak_lr, int64_t warmup_steps,
                                        int64_t decay_steps, double min_lr);
LAM_API lam_schedule lam_schedule_linear(double lr, double start_factor, double end_factor,
                                 int64_t total_steps);

/* Checks a schedule's fields (rates >= 0 and finite, step_size >= 1,
 * gamma >= 0, 0 <= warmup_steps <= decay_steps, decay_steps >= 1 where
 * used, factors >= 0, known kind). Returns LAM_OK or LAM_ERR_INVALID_ARGUMENT
 * (or LAM_ERR_NULL) with a message. */
LAM_API lam_status lam_schedule_check(const lam_schedule *s);
/* Returns the learning rate at step count `step` (negative counts as 0),
 * or NAN (with a message) for an invalid schedule. */
LAM_API double lam_schedule_lr(const lam_schedule *s, int64_t step);
/* Makes the optimizer take its learning rate from a copy of `s`; NULL
 * removes the schedule (back to the fixed lr). Returns LAM_OK or the
 * lam_schedule_check error. */
LAM_API lam_status lam_optimizer_set_schedule(lam_optimizer *opt, const lam_schedule *s);

/* ---- gradient clipping --------------------------------------------------- */

/* torch.nn.utils.clip_grad_norm_ over all leaves of `grads` (norm type 2):
 * total = sqrt(sum of squares of every element); when
 * max_norm / (total + 1e-6) < 1 every leaf is scaled in place by that
 * coefficient (a NaN or infinite total propagates as in PyTorch). Computed
 * on the device (per-leaf partial sums of squares, one reduction, one scale
 * kernel per leaf); the total is read back once. Leaves must share one
 * float dtype. `total_norm_out` may be NULL. max_norm must be >= 0 and
 * finite. An empty tree gives total 0. Returns LAM_OK or the error. */
LAM_API lam_status lam_grad_clip_norm(lam_ptree *grads, double max_norm, double *total_norm_out);

/* ---- loss scaling (mixed precision) --------------------------------------- */

/* Dynamic loss scaling as torch.cuda.amp.GradScaler: the loss is multiplied
 * by `scale` before the backward pass so small f16 gradients do not flush to
 * zero; lam_grad_scaler_step unscales them into the parameters' dtype (f32
 * master weights) and steps the optimizer unless some gradient is inf or
 * nan, in which case the step is skipped and the scale multiplied by
 * backoff_factor. After growth_interval finite steps in a row the scale is
 * multiplied by growth_factor. docs/half-precision.md has the recipe. */
typedef struct lam_grad_scaler lam_grad_scaler;
typedef struct lam_grad_scaler_opts {
  double init_scale;       /* 0 (default): 65536 (2^16) */
  double growth_factor;    /* > 1; 0 (default): 2 */
  double backoff_factor;   /* in (0, 1); 0 (default): 0.5 */
  int64_t growth_interval; /* >= 1; 0 (default): 2000 */
  bool no_growth;          /* a static scale that never grows (still backs off) */
} lam_grad_scaler_opts;

LAM_API lam_grad_scaler_opts lam_grad_scaler_defaults(void);
/* Returns a new scaler (opts may be NULL), or NULL with
 * LAM_ERR_INVALID_ARGUMENT for an out-of-range option. */
LAM_API lam_grad_scaler *lam_grad_scaler_create(const lam_grad_scaler_opts *opts);
LAM_API void lam_grad_scaler_free(lam_grad_scaler *scaler); /* NULL is a no-op */
/* The current scale (0 for NULL). */
LAM_API double lam_grad_scaler_scale(const lam_grad_scaler *scaler);
/* Returns loss * scale (differentiable; compute the loss in f32 so the
 * scaled value cannot overflow: lam_cast the f16 outputs first). */
LAM_API lam_tensor *lam_grad_scaler_scale_loss(const lam_grad_scaler *scaler, lam_tensor *loss);
/* Unscales `grads` (any float dtype, e.g. f16 gradients of f16 parameter
 * copies) into the dtype of the matching leaves of `params`, checks them
 * for inf/nan, steps `opt` on `params` when all are finite, and updates the
 * scale. `*stepped` (may be NULL) tells whether the step was taken.
 * `grads` is not changed. Returns LAM_OK (a skipped step included),
 * LAM_ERR_NULL, LAM_ERR_SHAPE for a grads leaf missing from params or of
 * another shape, or the optimizer's error. */
LAM_API lam_status lam_grad_scaler_step(lam_grad_scaler *scaler, lam_optimizer *opt, lam_ptree *params,
                                        const lam_ptree *grads, bool *stepped);

#ifdef __cplusplus
}
#endif
#endif
