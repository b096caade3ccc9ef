/* ops/gemm_tuning.c: the tuned parameters of lamina's CPU GEMM kernels
 * (cl/gemm.cl): their build options, and the candidate grid lam_ctx_tune
 * searches. The built-in sets themselves (one per vector-register class and
 * precision) live in the tuning table, runtime/tuning.c, which picks one
 * per device; the notes below say how they were found.
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

int lam__gemm_cpu_set_count(lam_dtype dtype) { return lam__gemm_set_count(dtype); }

void lam__gemm_opts(const lam__gemm_params *p, char *opts, size_t cap) {
  snprintf(opts, cap, "-DGEMM_MR=%d -DGEMM_VW=%d -DGEMM_NV=%d -DGEMM_TM=%d -DGEMM_TN=%d -DGEMM_VK=%d",
           p->mr, p->vw, p->nv, p->tm, p->tn, p->vk);
}

/* The grid, around base (the table's set): gemm_nn shapes MR in {4,6,8} x NV
 * in {1,2} at the base vector width and half of it (>= 4); gemm_nt shapes
 * TMxTN in {2x4, 4x4, 4x2, 3x4} at the base VK and half of it (>= 4); row
 * tiles per group {4, 8, 16, 32}; copy_min {64, 128, 256}. Each stage
 * varies its own fields with the others at base (the tuner takes the best
 * of each stage in turn), so the kernels a tuned set can build are the
 * gemm_nn x gemm_nt shapes listed here; ly and copy_min change launches and
 * paths only. */
int lam__gemm_grid(const lam__gemm_params *base, lam__gemm_stage stage, lam__gemm_params *out,
                   int cap) {
  int n = 0;
  lam__gemm_params c = *base;
#define LAM__PUSH()                                                                        \
  do {                                                                                    \
    bool dup = false;                                                                     \
    for (int q = 0; q < n && q < cap; q++) dup = dup || memcmp(&out[q], &c, sizeof c) == 0; \
    if (!dup && lam__gemm_params_valid(&c)) {                                             \
      if (n < cap) out[n] = c;                                                            \
      n++;                                                                                \
    }                                                                                     \
  } while (0)
  if (stage == LAM__GEMM_STAGE_NN) {
    const int vws[2] = {base->vw, base->vw / 2 >= 4 ? base->vw / 2 : base->vw};
    const int mrs[3] = {4, 6, 8}, nvs[2] = {1, 2};
    c.mr = base->mr, c.vw = base->vw, c.nv = base->nv;
    LAM__PUSH(); /* the base first: it is the reference candidate */
    for (int w = 0; w < 2; w++)
      for (int m = 0; m < 3; m++)
        for (int v = 0; v < 2; v++) {
          c.vw = vws[w], c.mr = mrs[m], c.nv = nvs[v];
          LAM__PUSH();
        }
  } else if (stage == LAM__GEMM_STAGE_NT) {
    const int vks[2] = {base->vk, base->vk / 2 >= 4 ? base->vk / 2 : base->vk};
    const int tms[4] = {2, 4, 4, 3}, tns[4] = {4, 4, 2, 4};
    LAM__PUSH();
    for (int w = 0; w < 2; w++)
      for (int t = 0; t < 4; t++) {
        c.vk = vks[w], c.tm = tms[t], c.tn = tns[t];
        LAM__PUSH();
      }
  } else if (stage == LAM__GEMM_STAGE_LY) {
    const int lys[4] = {4, 8, 16, 32};
    LAM__PUSH();
    for (int l = 0; l < 4; l++) {
      c.ly = lys[l];
      LAM__PUSH();
    }
  } else {
    const int cms[3] = {64, 128, 256};
    LAM__PUSH();
    for (int l = 0; l < 3; l++) {
      c.copy_min = cms[l];
      LAM__PUSH();
    }
  }
#undef LAM__PUSH
  return n;
}
