/* ops/gemm_internal.h: what ops/matmul.c, ops/gemm_tuning.c and the matmul
 * suite share about lamina's CPU GEMM kernels (never installed). */
#ifndef LAMINA_OPS_GEMM_INTERNAL_H
#define LAMINA_OPS_GEMM_INTERNAL_H

#include "internal.h"

/* Number of built-in parameter sets for dtype (runtime/tuning.c). */
int lam__gemm_cpu_set_count(lam_dtype dtype);
/* The -DGEMM_* build options of p. */
void lam__gemm_opts(const lam__gemm_params *p, char *opts, size_t cap);
/* lam_matmul_t forced onto CPU parameter set `set` on any device, for tests. */
lam_tensor *lam__matmul_with_set(lam_tensor *a, lam_tensor *b, int ta, int tb, int set);
/* lam_matmul_t with CPU GEMM parameters p (valid) on any device; no tape
 * entry differs from lam_matmul_t's. For the tuner and tests. */
lam_tensor *lam__matmul_with_params(lam_tensor *a, lam_tensor *b, int ta, int tb,
                                    const lam__gemm_params *p);

/* The stages of the tuner's search, each a small grid of candidates. */
typedef enum { LAM__GEMM_STAGE_NN, LAM__GEMM_STAGE_NT, LAM__GEMM_STAGE_LY, LAM__GEMM_STAGE_COPY } lam__gemm_stage;
#define LAM__GEMM_STAGES 4
/* Writes the candidates of `stage` around base (base itself first) to out
 * (up to cap); returns how many there are. Every one is valid. */
int lam__gemm_grid(const lam__gemm_params *base, lam__gemm_stage stage, lam__gemm_params *out,
                   int cap);
/* lam_ctx_tune's correctness check of p (ops/tune.c): small odd-sized
 * products in all four transposition cases, every kernel of cl/gemm.cl, vs a
 * host GEMM. LAM_OK, a build/run error, or LAM_ERR_STATE for a wrong result. */
lam_status lam__tune_gemm_check(lam_ctx *ctx, lam_dtype dt, const lam__gemm_params *p);

#endif
