/* lamina/train.h: a training step, fit loops (over device tensors, or over a
 * lam_loader of lamina/data.h) with per-batch and per-epoch callbacks,
 * validation, early stopping, learning-rate schedules, gradient
 * accumulation and clipping and a progress reporter; evaluation helpers
 * and the accuracy metric (more metrics: lamina/metrics.h). */
#ifndef LAMINA_TRAIN_H
#define LAMINA_TRAIN_H

#include "lamina/export.h"

#include <stdio.h>

#include "lamina/data.h"
#include "lamina/layer.h"
#include "lamina/metrics.h"
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

/* A data-parallel hook (lamina/dist.h fills one: lam_dist_grad_hook). With
 * one, every step of lam_train_step, lam_fit and lam_fit_loader trains on
 * rows [lo, hi) of its batch, as shard() picks them from the batch's row
 * count (an empty shard fails the step on every process alike), folds
 * key_fold into the step's dropout key, and calls reduce() with the
 * gradients of those rows, their loss (a device scalar reduce() may
 * overwrite with the global loss), the shard's rows and the batch's rows,
 * before clipping and the update. reduce() is called also when computing
 * the gradients failed (status not LAM_OK, grads and loss NULL) so that
 * its peers hear of it; it returns the step's status. A fit that stops
 * with an error outside a step calls reduce() once more with that status
 * when steps were still to come (the peers are then waiting in theirs).
 * Reports and metrics see this process's shard, the loss reduce() left. */
typedef struct lam_grad_hook {
  void (*shard)(void *user, int64_t rows, int64_t *lo, int64_t *hi);
  lam_status (*reduce)(void *user, lam_status status, lam_ptree *grads, lam_tensor *loss, int64_t rows,
                       int64_t total_rows);
  uint32_t key_fold; /* folded into each step's dropout key; 0: the key is used as it is */
  void *user;        /* passed to shard and reduce */
} lam_grad_hook;

/* Options of lam_train_step (the options rule, lamina/options.h: NULL, a
 * zeroed struct and lam_train_step_defaults() are the same). */
typedef struct lam_train_step_opts {
  lam_objective_fn objective; /* NULL: lam_objective_cross_entropy */
  void *objective_user;       /* passed to objective */
  const lam_rng_key *rng;     /* key of the stochastic layers (dropout); NULL: none */
  double clip_norm;           /* > 0: clip gradients to this global norm; 0: no clipping */
  const lam_grad_hook *grad_hook; /* data-parallel step (above); NULL: none */
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

/* lam_predict without waiting for the result: enqueues the model's work and
 * a non-blocking read of the output into `dst` (exactly the output's bytes,
 * `dst_bytes`, valid until the read completes), returning a read handle in
 * `*out` (lam_tensor_read_async: poll, wait, callback). The call itself
 * returns once the work is enqueued; the first call on a context may build
 * kernels (seconds; cached on disk after). Run it on a worker thread that
 * owns the context to keep a UI thread free (docs/embedding.md). */
LAM_API lam_status lam_predict_async(lam_layer *model, lam_vars *vars, lam_tensor *x,
                                     int64_t batch_size, void *dst, size_t dst_bytes,
                                     lam_read_callback callback, void *user,
                                     lam_read_handle **out);

typedef struct lam_epoch_report {
  int epoch;            /* 1-based */
  double train_loss;    /* mean over the epoch's batches */
  double train_accuracy;/* NAN with no_accuracy */
  double val_loss;      /* NAN without validation data */
  double val_accuracy;
  double seconds;
  int64_t batches;      /* batches of the epoch */
  int64_t samples;      /* rows of the epoch (padding included) */
  double lr;            /* learning rate of the epoch's last step */
  double monitored;     /* the value early stopping watches (see lam_monitor) */
  int best_epoch;       /* epoch with the best monitored value so far */
  bool stop;            /* early stopping ends training after this epoch */
} lam_epoch_report;

/* Called after every epoch; a non-OK return stops fit with that status. */
typedef lam_status (*lam_epoch_callback)(const lam_epoch_report *report, void *user);

typedef struct lam_batch_report {
  int epoch;            /* 1-based */
  int64_t batch;        /* 1-based within the epoch */
  int64_t batches;      /* per epoch */
  int64_t size;         /* rows of the batch */
  lam_tensor *loss;     /* the batch's loss, a device scalar (borrowed; reading it is a sync) */
  double lr;            /* learning rate of the step this batch contributes to */
  int64_t steps;        /* optimizer steps taken so far in this fit */
} lam_batch_report;

/* Called after every batch; a non-OK return stops fit with that status. */
typedef lam_status (*lam_batch_callback)(const lam_batch_report *report, void *user);

/* What early stopping and restore_best watch. */
typedef enum lam_monitor {
  LAM_MONITOR_AUTO = 0,         /* val_loss with validation data, else train_loss */
  LAM_MONITOR_VAL_LOSS = 1,     /* lower is better */
  LAM_MONITOR_VAL_ACCURACY = 2, /* higher is better */
  LAM_MONITOR_TRAIN_LOSS = 3
} lam_monitor;

/* Options of lam_fit and lam_fit_loader (the options rule, lamina/options.h:
 * NULL, a zeroed struct and lam_fit_defaults() are the same). The fields
 * marked "lam_fit" describe the data of lam_fit; lam_fit_loader takes them
 * from its loaders instead. */
typedef struct lam_fit_opts {
  int epochs;                 /* 0: 10 */
  int64_t batch_size;         /* lam_fit: 0: 32 */
  bool no_shuffle;            /* lam_fit: keep the sample order (default: reshuffle each epoch) */
  lam_rng_key key;            /* lam_fit: shuffling; both: dropout keys (zero: lam_rng_key_make(0)) */
  lam_objective_fn objective; /* NULL: lam_objective_cross_entropy */
  void *objective_user;
  bool no_accuracy;           /* do not report accuracy (set it for objectives that are not
                               * classification on i32 labels; default: reported) */
  double clip_norm;           /* > 0: clip gradients to this global norm; 0: no clipping */
  lam_tensor *val_x, *val_y;  /* lam_fit: optional validation set; NULL: none */
  lam_epoch_callback on_epoch;/* NULL: none */
  void *user;                 /* passed to on_epoch and on_batch */
  /* ---- both ---- */
  lam_loader *val_loader;     /* lam_fit_loader: validation batches (fields x, y) evaluated each epoch */
  lam_batch_callback on_batch;/* NULL: none */
  int patience;               /* early stopping: stop when the monitored value has not improved
                               * for this many epochs (0: never stop early) */
  double min_delta;           /* an improvement must exceed this (default 0) */
  bool restore_best;          /* at the end, put back the params and state of the best epoch */
  lam_monitor monitor;        /* default LAM_MONITOR_AUTO */
  const lam_schedule *schedule; /* NULL: the optimizer's own rate; else lam_fit sets the rate
                                 * lam_schedule_lr(schedule, t) before each step (an optimizer
                                 * schedule set with lam_optimizer_set_schedule takes precedence) */
  bool schedule_per_epoch;    /* t counts epochs (0-based) instead of optimizer steps */
  int accumulate;             /* batches whose gradients make one optimizer step (0: 1); the
                               * step uses their row-weighted mean, so k batches of b rows step as
                               * one batch of k*b rows; clipping applies to that mean */
  lam_metric *const *metrics; /* trackers (lamina/metrics.h) updated with every training batch's
                               * (pred, target), reset at each epoch's start; the reporter prints
                               * their values and on_epoch may read them; NULL: none */
  int n_metrics;
  lam_metric *const *val_metrics; /* the same for the validation batches */
  int n_val_metrics;
  bool no_progress;           /* built-in progress reporter off (default on: one updating line per
                               * epoch on a terminal, one line per epoch otherwise) */
  FILE *progress;             /* where the reporter writes; NULL: stdout */
  const lam_grad_hook *grad_hook; /* data-parallel steps (lam_grad_hook above); NULL: none */
} lam_fit_opts;
/* Returns the resolved defaults (epochs 10, batch_size 32, shuffled, key
 * of seed 0, cross entropy, accuracy reported, no clipping, accumulate 1,
 * no early stopping, progress on stdout). */
LAM_API lam_fit_opts lam_fit_defaults(void);

/* Trains on (x, y) (first axis = samples) for opts->epochs epochs (opts
 * NULL: defaults): a loader over the rows (lam_dataset_from_tensors) runs
 * lam_fit_loader. Negative epochs / batch_size / patience / accumulate or a
 * negative or non-finite clip_norm / min_delta are LAM_ERR_INVALID_ARGUMENT. */
LAM_API lam_status lam_fit(lam_layer *model, lam_vars *vars, lam_optimizer *opt, lam_tensor *x,
                   lam_tensor *y, const lam_fit_opts *opts);

/* Trains on the batches of `train` (field 0 the input, field 1 the target)
 * for opts->epochs epochs; epoch e (1-based) is lam_loader_reset(train, e),
 * so the order is the loader's for that epoch. Batch and epoch callbacks,
 * validation on opts->val_loader, early stopping, schedule, accumulation,
 * clipping and the progress reporter as lam_fit_opts describes. Only the
 * loss and metric reads of the reports sync with the device (once per
 * epoch without a terminal). */
LAM_API lam_status lam_fit_loader(lam_layer *model, lam_vars *vars, lam_optimizer *opt, lam_loader *train,
                                  const lam_fit_opts *opts);

/* Mean loss (weighted by batch rows) and accuracy (NAN with no_accuracy or
 * NULL acc) of the model in evaluation mode over the loader's epoch 0. */
LAM_API lam_status lam_evaluate_loader(lam_layer *model, lam_vars *vars, lam_loader *loader,
                                       const lam_fit_opts *opts, double *loss, double *acc);

#ifdef __cplusplus
}
#endif
#endif
