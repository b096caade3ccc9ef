/* lamina/train.h: a training step, a fit loop with per-epoch reports,
 * evaluation helpers and the accuracy metric. */
#ifndef LAMINA_TRAIN_H
#define LAMINA_TRAIN_H

#include "lamina/export.h"

#include "lamina/layer.h"
#include "lamina/optim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Maps a model output and a target to a scalar loss (new tensor), e.g. a
 * wrapper around lam_cross_entropy. */
typedef lam_tensor *(*lam_objective_fn)(lam_tensor *pred, lam_tensor *target, void *user);

/* Built-in objectives (user is ignored): cross entropy on class indices
 * (mean), and mean squared error. */
LAM_API lam_tensor *lam_objective_cross_entropy(lam_tensor *pred, lam_tensor *target, void *user);
LAM_API lam_tensor *lam_objective_mse(lam_tensor *pred, lam_tensor *target, void *user);

/* Options of lam_train_step (the options rule, lamina/options.h: NULL, a
 * zeroed struct and lam_train_step_defaults() are the same). */
typedef struct lam_train_step_opts {
  lam_objective_fn objective; /* NULL: lam_objective_cross_entropy */
  void *objective_user;       /* passed to objective */
  const lam_rng_key *rng;     /* key of the stochastic layers (dropout); NULL: none */
  double clip_norm;           /* > 0: clip gradients to this global norm; 0: no clipping */
} lam_train_step_opts;
LAM_API lam_train_step_opts lam_train_step_defaults(void);

/* One optimisation step on a batch: forward in training mode (opts->rng
 * may be NULL when the model has no stochastic layer), loss, gradients,
 * optional global-norm clipping, optimizer update of vars' params (opts
 * NULL: defaults). Stores the loss in *loss_out when non-NULL (this reads
 * it back, a sync). A negative or non-finite clip_norm is
 * LAM_ERR_INVALID_ARGUMENT. */
LAM_API lam_status lam_train_step(lam_layer *model, lam_vars *vars, lam_optimizer *opt, lam_tensor *x,
                                  lam_tensor *y, const lam_train_step_opts *opts, double *loss_out);

/* Fraction of rows whose argmax over the last axis of logits equals the i32
 * label, in *accuracy. */
LAM_API lam_status lam_accuracy(lam_tensor *logits, lam_tensor *labels, double *accuracy);

/* Runs the model in evaluation mode over x in batches (batch_size <= 0: all
 * at once) and returns the concatenated outputs in *out. */
LAM_API lam_status lam_predict(lam_layer *model, lam_vars *vars, lam_tensor *x, int64_t batch_size,
                       lam_tensor **out);

typedef struct lam_epoch_report {
  int epoch;            /* 1-based */
  double train_loss;    /* mean over the epoch's batches */
  double train_accuracy;/* NAN with no_accuracy */
  double val_loss;      /* NAN without validation data */
  double val_accuracy;
  double seconds;
} lam_epoch_report;

/* Called after every epoch; a non-OK return stops fit with that status. */
typedef lam_status (*lam_epoch_callback)(const lam_epoch_report *report, void *user);

/* Options of lam_fit (the options rule, lamina/options.h: NULL, a zeroed
 * struct and lam_fit_defaults() are the same). */
typedef struct lam_fit_opts {
  int epochs;                 /* 0: 10 */
  int64_t batch_size;         /* 0: 32 */
  bool no_shuffle;            /* keep the sample order (default: reshuffle each epoch) */
  lam_rng_key key;            /* shuffling and dropout keys (zero: lam_rng_key_make(0)) */
  lam_objective_fn objective; /* NULL: lam_objective_cross_entropy */
  void *objective_user;
  bool no_accuracy;           /* do not report accuracy (set it for objectives that are not
                               * classification on i32 labels; default: reported) */
  double clip_norm;           /* > 0: clip gradients to this global norm; 0: no clipping */
  lam_tensor *val_x, *val_y;  /* optional validation set; NULL: none */
  lam_epoch_callback on_epoch;/* NULL: none */
  void *user;                 /* passed to on_epoch */
} lam_fit_opts;
/* Returns the resolved defaults (epochs 10, batch_size 32, shuffled, key
 * of seed 0, cross entropy, accuracy reported, no clipping). */
LAM_API lam_fit_opts lam_fit_defaults(void);

/* Trains on (x, y) (first axis = samples) for opts->epochs epochs (opts
 * NULL: defaults). Negative epochs / batch_size or a negative or
 * non-finite clip_norm are LAM_ERR_INVALID_ARGUMENT. */
LAM_API lam_status lam_fit(lam_layer *model, lam_vars *vars, lam_optimizer *opt, lam_tensor *x,
                   lam_tensor *y, const lam_fit_opts *opts);

#ifdef __cplusplus
}
#endif
#endif
