/* ops/gemm_tuning.c: the tuned parameters of lamina's CPU GEMM kernels
 * (cl/gemm.cl), one set per vector-register class and precision, and the
 * choice of set for a device.
 *
 * Why lamina's own kernel on CPUs: CLBlast 1.5.3 on PoCL 3.1 reaches about
 * 16 GFLOP/s at 1024^3 (0.08 of OpenBLAS) with its defaults; a hand search
 * of CLBlastOverrideParameters for Xgemm (SA=SB=0, MWG=64, NWG=64, KWG=16,
 * MDIMC=4, NDIMC=8, VWM=VWN=8, KWI=2..4) gave 90-125 GFLOP/s (0.45-0.55)
 * with large run-to-run spread and a 5 s compile per precision. The
 * register-tiled kernels here reach 0.9-1.3 of OpenBLAS on the same machine
 * (bench/README.md), so CPU contexts with cpu_gemm_tuning use them and GPUs
 * keep CLBlast and its own database.
 *
 * How the values were found (2 vCPUs of an AMD EPYC with AVX-512, PoCL 3.1,
 * LLVM 15, shared machine, best of 4-8 runs at 1024^3 and 2048^3, 2025):
 * a grid over GEMM_MR in {4,6,8}, GEMM_VW in {8,16}, GEMM_NV in {1,2,4} for
 * gemm_nn and GEMM_TM x GEMM_TN in {2,4,5}x{2,4} for gemm_nt, and the
 * work-group shape. MR=6 x (2 vectors of 16) keeps 12 accumulators + 2 B
 * vectors + 1 broadcast in the 32 vector registers (the shape of OpenBLAS's
 * SkylakeX micro-kernel); MR=6 x (4 x 8) was 20% slower, MR=8 x 16 and
 * MR=4 x 32 30-40% slower. A work-group of 16 row tiles sharing one column
 * panel keeps the B panel in L2 and was best at 2048. The 8-wide (AVX2,
 * 16 registers: the classic 6x16 Haswell shape) and 4-wide (SSE/NEON) sets
 * follow the same register budget; they are verified for correctness on
 * every run of tests/test_matmul.c but were not timed on their hardware.
 * f64 uses the same shapes with vectors of 8 doubles. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

typedef struct lam__gemm_set {
  const char *name;
  int min_width;  /* smallest native vector width (elements) the set is for */
  int mr, vw, nv; /* gemm_nn: rows per work-item, vector width, vectors per row */
  int tm, tn, vk; /* gemm_nt: rows x cols per work-item, vector width along k */
  int ly;         /* row tiles per work-group (column tiles per group: 1) */
  int pad_min;    /* rows of C from which gemm_nn copies a 4 KiB-strided B (matmul.c) */
} lam__gemm_set;

/* Widest first: the first set whose min_width the device reaches is used. */
static const lam__gemm_set lam__gemm_f32_sets[] = {
    {"f32-w16", 16, 6, 16, 2, 4, 4, 16, 16, 128},
    {"f32-w8", 8, 6, 8, 2, 4, 4, 8, 16, 128},
    {"f32-w4", 1, 4, 4, 3, 4, 4, 4, 16, 128},
};
static const lam__gemm_set lam__gemm_f64_sets[] = {
    {"f64-w8", 8, 6, 8, 2, 4, 4, 8, 16, 128},
    {"f64-w4", 4, 6, 4, 2, 4, 4, 4, 16, 128},
    {"f64-w2", 1, 4, 2, 3, 4, 4, 4, 16, 128},
};

static const lam__gemm_set *lam__gemm_sets(lam_dtype dtype, int *count) {
  if (dtype == LAM_F64) {
    *count = (int)(sizeof lam__gemm_f64_sets / sizeof *lam__gemm_f64_sets);
    return lam__gemm_f64_sets;
  }
  *count = (int)(sizeof lam__gemm_f32_sets / sizeof *lam__gemm_f32_sets);
  return lam__gemm_f32_sets;
}

int lam__gemm_cpu_set_count(lam_dtype dtype) {
  int n;
  lam__gemm_sets(dtype, &n);
  return n;
}

/* Looks up set `index` of dtype (index < 0: the set for a device whose
 * native vector width for dtype is `native_width`). Writes its name, the
 * kernel build options, the gemm_nn and gemm_nt tile sizes and the row
 * tiles per work-group and the B-copying threshold. Returns 0, or -1
 * when index is out of range. */
int lam__gemm_cpu_params(lam_dtype dtype, int index, int native_width, const char **name,
                         char *opts, size_t cap, int nn_tile[2], int nt_tile[2], int *ly,
                         int *pad_min) {
  int n;
  const lam__gemm_set *sets = lam__gemm_sets(dtype, &n);
  if (index >= n) return -1;
  if (index < 0) {
    index = n - 1;
    for (int i = 0; i < n; i++)
      if (native_width >= sets[i].min_width) {
        index = i;
        break;
      }
  }
  const lam__gemm_set *s = &sets[index];
  *name = s->name;
  snprintf(opts, cap, "-DGEMM_MR=%d -DGEMM_VW=%d -DGEMM_NV=%d -DGEMM_TM=%d -DGEMM_TN=%d -DGEMM_VK=%d",
           s->mr, s->vw, s->nv, s->tm, s->tn, s->vk);
  nn_tile[0] = s->mr;
  nn_tile[1] = s->vw * s->nv;
  nt_tile[0] = s->tm;
  nt_tile[1] = s->tn;
  *ly = s->ly;
  *pad_min = s->pad_min;
  return 0;
}
