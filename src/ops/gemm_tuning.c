/* ops/gemm_tuning.c: the tuned parameters of lamina's CPU GEMM kernels
 * (cl/gemm.cl), one set per vector-register class and precision, and the
 * choice of set for a device.
 *
 * Why lamina's own kernels on CPUs: CLBlast 1.5.3 on PoCL 3.1 reaches
 * 16-20 GFLOP/s at 1024^3 (0.07-0.09 of OpenBLAS) with its defaults; a hand
 * search of CLBlastOverrideParameters for Xgemm (SA=SB=0, MWG=NWG=64,
 * KWG=16, MDIMC=4, NDIMC=8, VWM=VWN=8, KWI=2..4, ...) gave 55-125 GFLOP/s
 * (0.3-0.55) with a large run-to-run spread and a 5 s compile per
 * precision and routine. The barrier-free register-tiled kernels of
 * cl/gemm.cl reach 1.4-2.0x OpenBLAS at 1024^3 and above on the same
 * machine (bench/README.md), so CPU contexts use them (unless created with
 * lam_ctx_opts.clblast_on_cpu);
 * GPUs keep CLBlast and its own database. No CLBlast override set ships.
 *
 * How the values were found (2 vCPUs of an AMD EPYC with AVX-512 (Zen 5
 * class), PoCL 3.1 / LLVM 15, a machine shared with 5 other jobs, best of
 * 10-20 runs, 2026-11): a hand grid with a stand-alone OpenCL harness over
 * gemm_nn GEMM_MR in {4,6,8} x GEMM_VW in {8,16} x GEMM_NV in {1,2,4}, gemm_nt
 * GEMM_TM x GEMM_TN in {2..8}x{2..5} with GEMM_VK in {8,16}, and 1..32 row
 * tiles per work-group, at 256^3..2048^3 and 4096x768x768:
 *  - gemm_nn MR=6 x 2 vectors of 16 (12 accumulators + 2 B vectors + a
 *    broadcast: OpenBLAS's SkylakeX micro-kernel shape) ran 230-270 GFLOP/s
 *    at 1024^3 against 110-210 for 6x(4x8), 8x16, 4x32 and 8x(4x8); 440
 *    once B rows are not 4 KiB apart (matmul.c copies them to longer rows).
 *  - gemm_nt 4x4 with 16-wide vectors: 300-380 at 1024^3; 2x4, 3x4, 5x4,
 *    4x5 within noise of it, 4x2 and 8-wide vectors 30-60% slower. It loses
 *    to gemm_nn on large products (e.g. 4096x768x768: ~380 vs ~450), so it
 *    runs where C is narrow or has few rows.
 *  - 16 row tiles per work-group (one B panel shared in L2) were best or
 *    within noise for both kernels.
 *  - copy_min 128: copying an operand (O(MK) or O(KN), ~0.3 ms per 1M
 *    floats) into gemm_nn's layout paid off from about 128 rows/columns
 *    of C (1024x1024 with M=128: 150 -> 200+ GFLOP/s; M=64: no gain).
 * The 8-wide (AVX2, 16 registers: the classic 6x16 Haswell shape) and
 * 4-wide (SSE/NEON) sets follow the same register budget; they are checked
 * for correctness on every run of tests/test_matmul.c but were not timed on
 * such hardware. f64 uses the same shapes with 8-double vectors. */
#include <stdio.h>
#include <string.h>

#include "ops/gemm_internal.h"

typedef struct lam__gemm_set {
  const char *name;
  int min_width;  /* smallest native vector width (elements) the set is for */
  int mr, vw, nv; /* gemm_nn: rows per work-item, vector width, vectors per row */
  int tm, tn, vk; /* gemm_nt: rows x cols per work-item, vector width along k */
  int ly;         /* row tiles per work-group (column tiles per group: 1) */
  int copy_min;   /* C rows/cols from which operands are copied into gemm_nn's layout */
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
 * tiles per work-group and the copying threshold (copy_min). Returns 0, or -1
 * when index is out of range. */
int lam__gemm_cpu_params(lam_dtype dtype, int index, int native_width, const char **name,
                         char *opts, size_t cap, int nn_tile[2], int nt_tile[2], int *ly,
                         int *copy_min) {
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
  *copy_min = s->copy_min;
  return 0;
}
