/* runtime/tuning_internal.h: the tuning table, every device-dependent choice
 * of the ops in one struct (ctx->tuning), filled at context creation from
 * the device's capabilities (runtime/tuning.c), overridden by the
 * LAMINA_*_LAYOUT variables (read once, there) and, for the GEMM
 * parameters, by a stored lam_ctx_tune result for this device, driver and
 * lamina version (never installed). docs/devices.md lists the fields. */
#ifndef LAMINA_RUNTIME_TUNING_INTERNAL_H
#define LAMINA_RUNTIME_TUNING_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lamina/tensor.h"

/* The parameters of lamina's CPU GEMM kernels (cl/gemm.cl; the choice of
 * kernel and copies: ops/matmul.c, the built-in sets: ops/gemm_tuning.c's
 * comment says how they were found). */
typedef struct lam__gemm_params {
  int mr, vw, nv; /* gemm_nn: rows per work-item, vector width (2,4,8,16), vectors per row */
  int tm, tn, vk; /* gemm_nt: rows x cols per work-item, vector width along k (4,8,16) */
  int ly;         /* row tiles per work-group (column tiles per group: 1) */
  int copy_min;   /* C rows/cols from which operands are copied into gemm_nn's layout */
} lam__gemm_params;

typedef struct lam__tuning {
  const char *device_class; /* "cpu" or "gpu" (accelerators and others count as gpu) */
  int width_f32, width_f64; /* CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT/DOUBLE */
  int pref_f32, pref_f64;   /* CL_DEVICE_PREFERRED_VECTOR_WIDTH_FLOAT/DOUBLE */
  size_t wg_1d;             /* work-group size of 1-D streaming kernels (also ctx->wg_1d) */
  int ew_chunk;             /* elements per work-item of the strided elementwise kernels */
  int rnn_chunk;            /* units per work-item of the RNN step kernels */
  bool spread_groups;       /* few long work-items: shrink groups so every core gets some
                             * (PoCL runs a group on one core); else GPU-sized groups */
  bool reduce_gpu;          /* reductions: the GPU work split (LAMINA_REDUCE_LAYOUT) */
  int64_t reduce_par_per_cu;  /* work-items wanted per compute unit by a reduction */
  int64_t reduce_min_chunk;   /* shortest reduction chunk worth a work-item */
  bool softmax_cols;        /* softmax over a middle axis runs the column kernel (inner >= 16) */
  bool norm_cpu;            /* norms: one work-item per statistic (LAMINA_NORM_LAYOUT, else
                             * a stored lam_ctx_tune result, else the device type) */
  bool norm_tuned;          /* norm_cpu came from lam_ctx_tune (now or from the store) */
  int64_t norm_chan_per_cu; /* channel-sum work-items wanted per compute unit */
  int64_t norm_plane_target, norm_plane_minrun; /* per-plane chunks of the streaming kernels */
  bool att_gpu;             /* attention: the local-memory layout (LAMINA_ATTENTION_LAYOUT) */
  int att_bm;               /* rows per work-item of the CPU layout (-DBM; the kernel's own is 12) */
  bool att_unroll;          /* GPU layout: unrolled tile loops (-DATT_UNROLL; GPUs only) */
  int index_run;            /* gather/scatter columns per work-item off the last axis
                             * (runs of cache lines on CPUs, 1 for coalescing on GPUs) */
  bool quant_rows;          /* quantized matmul: the per-row kernels (q_rows*) at every
                             * batch size (CPUs), else q_mv / q_mm (LAMINA_QMM_PATH forces) */
  size_t ctc_wg_cap;        /* CTC alpha/beta work-group cap (a group's items run as a
                             * loop on PoCL: 64; GPUs 256) */
  int gemm_set[2];          /* built-in GEMM set index per dtype (0: f32, 1: f64) */
  lam__gemm_params gemm[2]; /* the GEMM parameters in use per dtype */
  bool gemm_tuned[2];       /* gemm[d] came from lam_ctx_tune (now or from the store) */
  char store_path[1100];    /* the tuning file of this device ("" without a cache dir) */
} lam__tuning;

/* Number of built-in GEMM sets for dtype (f32 or f64). */
int lam__gemm_set_count(lam_dtype dtype);
/* Built-in set `index` of dtype, its name in *name (may be NULL); NULL when
 * out of range. */
const lam__gemm_params *lam__gemm_set(lam_dtype dtype, int index, const char **name);
/* The built-in set index for a device of native vector width `width`. */
int lam__gemm_set_for_width(lam_dtype dtype, int width);
/* Whether cl/gemm.cl accepts p (vector widths it has, positive tiles, and
 * register tiles of at most 64 vectors). */
bool lam__gemm_params_valid(const lam__gemm_params *p);
/* "mr=6 vw=16 nv=2 tm=4 tn=4 vk=16 ly=16 copy_min=128" into buf; returns buf. */
const char *lam__gemm_params_str(const lam__gemm_params *p, char *buf, size_t cap);

typedef struct lam_ctx lam_ctx;
/* Fills ctx->tuning from ctx->info, the environment and the store (context creation). */
void lam__tuning_init(lam_ctx *ctx);
/* What the store holds: GEMM parameters per dtype and the norm layout
 * (each present or not). */
typedef struct lam__tuning_saved {
  bool has_gemm[2];
  lam__gemm_params gemm[2];
  bool has_norm;
  bool norm_cpu;
} lam__tuning_saved;
/* Writes s to the store of ctx's device. Returns 0, or -1 when there is no
 * cache dir or the file cannot be written. */
int lam__tuning_save(const lam_ctx *ctx, const lam__tuning_saved *s);
/* Reads the store of ctx's device into *s; returns 0 when the file exists,
 * has this device's key, a good checksum and valid lines, else -1 (and *s
 * empty). */
int lam__tuning_load(const lam_ctx *ctx, lam__tuning_saved *s);
/* Checksum of a store file's text up to its checksum line (for tests). */
uint64_t lam__tuning_checksum(const char *text, size_t n);

#endif
