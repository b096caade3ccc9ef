/* lamina/tune.h: lam_ctx_tune, the autotuner. It searches the parameters of
 * lamina's own GEMM kernels (the CPU GEMM of lam_matmul, cl/gemm.cl) on the
 * context's device: a small grid around the tuning table's defaults, each
 * candidate built, checked against a host GEMM on small odd-sized problems
 * in all four transposition cases (a wrong result is never kept) and timed
 * at a few sizes; and the norms' kernel layout the same way (both layouts,
 * checked against host layer, group and batch norms). The winner is used by the context at once and, unless
 * no_store, stored in the context's cache directory keyed by device name,
 * driver version and lamina version, where every later context on that
 * device, driver and version loads it (docs/devices.md). */
#ifndef LAMINA_TUNE_H
#define LAMINA_TUNE_H

#include "lamina/export.h"

#include <stdbool.h>
#include <stddef.h>

#include "lamina/runtime.h"
#include "lamina/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Kernels lam_ctx_tune can search (bits of lam_tune_opts.kernels). */
typedef enum lam_tune_kernel {
  LAM_TUNE_GEMM = 1, /* lam_matmul's CPU GEMM kernels, f32 (and f64 with lam_tune_opts.f64) */
  LAM_TUNE_NORM = 2  /* the norms' kernel layout (cpu: a work-item per statistic; gpu: teams) */
} lam_tune_kernel;

/* Options of lam_ctx_tune (the options rule, lamina/options.h). */
typedef struct lam_tune_opts {
  double budget_s;   /* seconds for the whole search; 0: 120. Past it the best so far is kept */
  unsigned kernels;  /* lam_tune_kernel bits; 0: every kernel there is (GEMM and NORM) */
  bool f64;          /* also tune the f64 GEMM (devices with fp64) */
  bool verbose;      /* progress lines on stderr (default: none; the library prints nothing
                        unasked; a progress callback gets them either way) */
  bool no_store;     /* use the result in this context only; write nothing */
  /* Called with each progress line (no newline), instead of stderr; may be NULL. */
  void (*progress)(const char *line, void *user);
  void *user;        /* passed to progress */
} lam_tune_opts;

LAM_API lam_tune_opts lam_tune_defaults(void);

/* What lam_ctx_tune did. */
typedef struct lam_tune_report {
  int candidates;         /* candidates built and run */
  int rejected;           /* of them, wrong results or failed builds (never kept) */
  bool complete;          /* every stage ran within the budget */
  bool stored;            /* written to `path` */
  double seconds;         /* wall time of the search */
  char gemm_f32[96];      /* the f32 parameters chosen, "mr=6 vw=16 ..." */
  char gemm_f64[96];      /* the f64 ones ("" unless tuned) */
  char norm_layout[8];    /* "cpu" or "gpu" ("" unless tuned) */
  double gflops_default;  /* f32 GFLOP/s of the table's defaults on the timed problems */
  double gflops_tuned;    /* the same for the chosen parameters */
  char path[1100];        /* the store file ("" without a cache directory) */
} lam_tune_report;

/* Searches, checks and keeps the best parameters of the kernels in opts for
 * ctx's device (see above); out (may be NULL) receives the report. With
 * kernels 0, a context whose GEMM runs CLBlast (GPUs) tunes the norms only.
 * Returns LAM_OK, LAM_ERR_NULL (ctx), LAM_ERR_INVALID_ARGUMENT (a negative
 * budget, unknown kernel bits), LAM_ERR_UNSUPPORTED (LAM_TUNE_GEMM where the
 * context's GEMM runs CLBlast, which has its own tuners; f64 on a device
 * without it; defaults that give wrong results), or the error of a failed
 * build or run of the defaults. */
LAM_API lam_status lam_ctx_tune(lam_ctx *ctx, const lam_tune_opts *opts, lam_tune_report *out);

/* Writes the context's tuning table (every device-dependent choice lamina
 * makes: layouts, work-group sizes, tiles, the GEMM parameters and where
 * they came from), one "name value" line each, as a NUL-terminated text
 * into buf. Returns LAM_OK, LAM_ERR_NULL, or LAM_ERR_INVALID_ARGUMENT when
 * cap is too small (2048 bytes always suffice). */
LAM_API lam_status lam_ctx_tuning(const lam_ctx *ctx, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
