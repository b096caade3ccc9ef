/* lamina/dist.h: data-parallel training across processes (and hosts) over
 * MPI, in the optional library lamina_dist (built when CMake finds MPI; the
 * core library and lamina.h never include this header or mpi.h). A
 * lam_dist wraps a duplicate of the application's communicator (the
 * application owns MPI: it calls MPI_Init and MPI_Finalize). It broadcasts
 * parameter trees, all-reduces gradient trees in buckets staged once each
 * through host memory (several local trees, e.g. one per OpenCL context of
 * this process, go through the same buckets), makes lam_train_step /
 * lam_fit / lam_fit_loader data-parallel through a lam_grad_hook, and
 * saves checkpoints from rank 0 only. Every collective is preceded by a
 * check in which all processes exchange their status and a signature of
 * their tree, so that a failing process or mismatched trees give an error
 * on every process instead of a deadlock. docs/distributed.md has the
 * launch commands, what is overlapped and the cost model. */
#ifndef LAMINA_DIST_H
#define LAMINA_DIST_H

#include <mpi.h>

#include "lamina/export.h"
#include "lamina/io.h"
#include "lamina/train.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lam_dist lam_dist;

/* How all-reduce combines the processes' trees. */
typedef enum lam_dist_op {
  LAM_DIST_MEAN = 0, /* the sum divided by the number of trees reduced (all processes together) */
  LAM_DIST_SUM = 1
} lam_dist_op;

/* Options of lam_dist_create (the options rule, lamina/options.h: NULL, a
 * zeroed struct and lam_dist_defaults() are the same). */
typedef struct lam_dist_opts {
  int64_t bucket_bytes; /* gradient bytes per message (0: 25 MiB, PyTorch DDP's bucket_cap_mb);
                         * a leaf larger than this is a bucket of its own; at most 1 GiB */
  double timeout;       /* seconds a collective waits for the other processes before failing
                         * with LAM_ERR_PEER (the lam_dist is then unusable); 0: wait forever */
  bool no_overlap;      /* reduce one bucket at a time: stage, reduce, write back (default:
                         * a bucket's reduction runs while the next is staged) */
} lam_dist_opts;
/* Returns the resolved defaults (25 MiB buckets, no timeout, overlap on). */
LAM_API lam_dist_opts lam_dist_defaults(void);

/* Creates a lam_dist over a duplicate of comm (MPI_COMM_WORLD, or any
 * communicator of the application; MPI must be initialised). Collective
 * over comm. Returns LAM_OK and *out, LAM_ERR_NULL, LAM_ERR_STATE (MPI not
 * initialised), LAM_ERR_INVALID_ARGUMENT (bad options) or LAM_ERR_PEER. */
LAM_API lam_status lam_dist_create(MPI_Comm comm, const lam_dist_opts *opts, lam_dist **out);

/* Frees d (NULL is fine). Collective over d's processes (it frees the
 * duplicated communicator) unless a timeout left d unusable. */
LAM_API void lam_dist_free(lam_dist *d);

/* This process's rank, and the number of processes; -1 for NULL. */
LAM_API int lam_dist_rank(const lam_dist *d);
LAM_API int lam_dist_size(const lam_dist *d);

/* Collective status check: every process passes its own status; returns
 * LAM_OK when all passed LAM_OK, else on every process an error naming
 * the lowest failing rank and its status (the failing process keeps its
 * own status, the others get LAM_ERR_PEER). */
LAM_API lam_status lam_dist_check(lam_dist *d, lam_status status);

/* Copies the leaves of root's tree into the leaves of every other
 * process's tree, in place (the trees must have the same paths, shapes
 * and dtypes: LAM_ERR_SHAPE on every process otherwise), bucketed as
 * all-reduce. Use it after lam_layer_init so that every process starts
 * from the same parameters. A root out of range is LAM_ERR_INVALID_ARGUMENT. */
LAM_API lam_status lam_dist_broadcast(lam_dist *d, lam_ptree *tree, int root);

/* Replaces each leaf of grads by its sum (or mean) over all processes, in
 * place. Leaves are grouped in tree order into buckets of one dtype (f32
 * or f64) of about bucket_bytes; each bucket is read into one host buffer,
 * reduced with MPI_Iallreduce and written back. Errors (on every process):
 * trees that differ in paths, shapes or dtypes (LAM_ERR_SHAPE), a leaf that
 * is not f32/f64 (LAM_ERR_DTYPE), a process that failed (lam_dist_check),
 * a timeout (LAM_ERR_PEER). */
LAM_API lam_status lam_dist_all_reduce(lam_dist *d, lam_ptree *grads, lam_dist_op op);

/* As lam_dist_all_reduce over n trees of this process (e.g. one per
 * lam_ctx, all of the same structure): tree i is scaled by weights[i]
 * (weights NULL: 1), the n trees are summed on the host bucket by bucket,
 * reduced over the processes, and the result is written into all n trees.
 * MEAN divides by the number of trees of all processes together. */
LAM_API lam_status lam_dist_all_reduce_trees(lam_dist *d, int n, lam_ptree *const *trees, const double *weights,
                                             lam_dist_op op);

/* The data-parallel hook of d for lam_train_step_opts.grad_hook and
 * lam_fit_opts.grad_hook (owned by d, valid until lam_dist_free): process
 * r of p trains on rows [r*n/p, (r+1)*n/p) of each batch of n rows (every
 * process must see the same batches: the same data and the same shuffling
 * key), folds r+1 into the dropout key, and the gradients are reduced to
 * the row-weighted mean (the gradient of the whole batch's mean loss); the
 * step's loss becomes the batch's. NULL for NULL d. */
LAM_API const lam_grad_hook *lam_dist_grad_hook(lam_dist *d);

/* lam_checkpoint_save by rank 0 only; every process returns rank 0's
 * status once the file is written (or failed). */
LAM_API lam_status lam_dist_save(lam_dist *d, const char *path, const lam_ptree *params, const lam_ptree *state,
                                 const lam_optimizer *opt, int64_t step, lam_rng_key key);

/* lam_checkpoint_load on every process (the file must be readable by each
 * of them: a shared file system or a copy), then a collective check, so
 * that all processes succeed or all fail. Any number of processes may load
 * a checkpoint that lam_dist_save (or lam_checkpoint_save) wrote. */
LAM_API lam_status lam_dist_load(lam_dist *d, const char *path, lam_ptree *params, lam_ptree *state,
                                 lam_optimizer *opt, int64_t *step, lam_rng_key *key);

/* Running totals of d's collectives since lam_dist_create. */
typedef struct lam_dist_totals {
  int64_t reductions;     /* all-reduce calls (lam_dist_all_reduce, _trees, the grad hook) */
  int64_t buckets;        /* buckets reduced */
  int64_t bytes_reduced;  /* payload bytes of those buckets (per process) */
  int64_t largest_bucket; /* bytes */
  double stage_seconds;   /* reading gradients into host buffers and writing results back */
  double wait_seconds;    /* waiting on MPI (the reductions' time not hidden behind staging) */
  double check_seconds;   /* the status and signature checks before each collective */
} lam_dist_totals;

/* Fills *out with d's totals. LAM_ERR_NULL for a NULL argument. */
LAM_API lam_status lam_dist_stats(const lam_dist *d, lam_dist_totals *out);

#ifdef __cplusplus
}
#endif
#endif
