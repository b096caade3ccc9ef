/* ops/gemm_internal.h: what ops/matmul.c, ops/gemm_tuning.c and the matmul
 * suite share about lamina's CPU GEMM kernels (never installed). */
#ifndef LAMINA_OPS_GEMM_INTERNAL_H
#define LAMINA_OPS_GEMM_INTERNAL_H

#include "internal.h"

/* Number of tuned parameter sets for dtype (gemm_tuning.c). */
int lam__gemm_cpu_set_count(lam_dtype dtype);
/* Set `index` (-1: the one for a device of native vector width
 * native_width): its name, build options, tiles, row tiles per group and
 * copy threshold. Returns 0, or -1 when index is out of range. */
int lam__gemm_cpu_params(lam_dtype dtype, int index, int native_width, const char **name,
                         char *opts, size_t cap, int nn_tile[2], int nt_tile[2], int *ly,
                         int *copy_min);
/* lam_matmul_t forced onto CPU parameter set `set` on any device, for tests. */
lam_tensor *lam__matmul_with_set(lam_tensor *a, lam_tensor *b, int ta, int tb, int set);

#endif
