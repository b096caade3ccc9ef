/* lamina/runtime.h: devices and contexts.
 *
 * A lam_ctx owns one OpenCL device, one in-order queue, the kernel program
 * cache (in memory and on disk) and a buffer pool. Device choice, in order:
 * lam_ctx_opts.device, the LAMINA_DEVICE environment variable (an index,
 * "cpu", "gpu", or a case-insensitive substring of the platform or device
 * name), else the first GPU, else the first CPU.
 *
 * Threads: a context, and every tensor, layer, vars and optimizer made on
 * it, is used by one thread at a time (several threads may take turns with
 * their own synchronisation). Different threads may each use their own
 * context at once: lam_devices_list, lam_device_choose, lam_ctx_create,
 * lam_ctx_create_from_cl (lamina/opencl.h) and lam_ctx_free are safe to call
 * concurrently (lamina serialises the driver calls that are not). Read
 * handles (lamina/tensor.h) may be polled, waited for and freed from any
 * thread. Error messages (lam_last_error) are per thread. */
#ifndef LAMINA_RUNTIME_H
#define LAMINA_RUNTIME_H

#include "lamina/export.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lamina/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lam_ctx lam_ctx;

typedef enum lam_device_type {
  LAM_DEVICE_CPU = 1,
  LAM_DEVICE_GPU = 2,
  LAM_DEVICE_ACCELERATOR = 4,
  LAM_DEVICE_OTHER = 8
} lam_device_type;

/* What lamina knows of one device; capabilities decide, never vendor names. */
typedef struct lam_device_info {
  int index;                 /* position in lam_devices_list order */
  char platform_name[128];
  char name[128];
  char vendor[128];
  char driver_version[64];
  char opencl_c_version[64]; /* e.g. "OpenCL C 1.2 PoCL" */
  lam_device_type type;
  uint32_t compute_units;
  uint64_t global_mem_bytes;
  uint64_t local_mem_bytes;
  uint64_t max_alloc_bytes;
  size_t max_work_group_size;
  bool fp16;                 /* cl_khr_fp16 */
  bool fp64;                 /* cl_khr_fp64 */
  bool subgroups;            /* cl_khr_subgroups or cl_intel_subgroups */
} lam_device_info;

/* Lists the devices of all platforms into `out` (up to `capacity` entries;
 * `out` may be NULL to only count) and stores the total in `*count`.
 * Returns LAM_OK, or LAM_ERR_DEVICE_NOT_FOUND when no OpenCL device exists. */
LAM_API lam_status lam_devices_list(lam_device_info *out, int capacity, int *count);

/* Resolves a selector ("2", "cpu", "gpu", a name substring; NULL or "" means
 * LAMINA_DEVICE, else the default rule) to a device index in `*index`.
 * Returns LAM_OK or LAM_ERR_DEVICE_NOT_FOUND with the selector named. */
LAM_API lam_status lam_device_choose(const char *selector, int *index);

/* Options of lam_ctx_create (the options rule, lamina/options.h: NULL, a
 * zeroed struct and lam_ctx_defaults() are the same). */
/* Whether compiled kernel programs are stored in lamina's disk cache.
 * AUTO (the default) stores them unless the driver keeps a persistent kernel
 * cache of its own and exporting a binary costs a compile of its own: PoCL
 * compiles every kernel of a program when asked for its binary (seconds per
 * program), while its kernel cache already makes later runs warm, so on PoCL
 * lamina stores nothing unless PoCL's cache is off (POCL_KERNEL_CACHE=0).
 * The environment variable LAMINA_BINARY_CACHE=always|off|auto overrides
 * AUTO. Existing entries are loaded in AUTO and ALWAYS modes. */
typedef enum lam_cache_mode {
  LAM_CACHE_AUTO = 0,
  LAM_CACHE_ALWAYS, /* store every program built from source */
  LAM_CACHE_OFF     /* neither load nor store: every program builds from source */
} lam_cache_mode;

typedef struct lam_ctx_opts {
  const char *device;       /* selector as for lam_device_choose; NULL or "": env/default */
  const char *cache_dir;    /* kernel binary cache; NULL or "": LAMINA_CACHE_DIR, else user cache */
  lam_cache_mode cache_mode; /* default AUTO (see lam_cache_mode) */
  /* On CPU devices run GEMMs with CLBlast and its own parameters. Default
   * (false): lamina's tuned kernels (cl/gemm.cl) on CPU devices; other
   * devices use CLBlast either way. No effect in a build without CLBlast
   * (LAMINA_WITH_CLBLAST), where every device runs lamina's kernels. */
  bool clblast_on_cpu;
} lam_ctx_opts;

/* Returns the default options (every field as for opts == NULL). */
LAM_API lam_ctx_opts lam_ctx_defaults(void);

/* Creates a context on the chosen device (opts NULL: defaults) in `*out`.
 * Returns LAM_OK, or a status with the reason in lam_last_error(). */
LAM_API lam_status lam_ctx_create(const lam_ctx_opts *opts, lam_ctx **out);

/* Waits for queued work, releases every cached buffer and program, frees the
 * context. Tensors still alive must not be used afterwards. NULL is a no-op. */
LAM_API void lam_ctx_free(lam_ctx *ctx);

/* Returns the context's device description (borrowed, lives with ctx). */
LAM_API const lam_device_info *lam_ctx_device(const lam_ctx *ctx);

/* Memory and cache figures of a context. */
typedef struct lam_stats {
  int64_t live_tensors;     /* tensor handles not yet freed */
  int64_t live_bytes;       /* device bytes held by live buffers */
  int64_t pool_bytes;       /* device bytes cached for reuse */
  int64_t peak_bytes;       /* highest live_bytes seen */
  int64_t programs_built;   /* programs compiled from source */
  int64_t programs_loaded;  /* programs loaded from the disk cache */
  int64_t programs_stored;  /* programs written to the disk cache */
  double build_seconds;     /* wall time spent building, loading and storing programs */
} lam_stats;

/* Stores the context's figures in `*out`. Returns LAM_OK or LAM_ERR_NULL. */
LAM_API lam_status lam_ctx_stats(const lam_ctx *ctx, lam_stats *out);

/* Blocks until all queued work has finished. Returns LAM_OK or the error. */
LAM_API lam_status lam_ctx_finish(lam_ctx *ctx);

/* Releases the buffers cached in the pool. Returns LAM_OK. */
LAM_API lam_status lam_ctx_trim(lam_ctx *ctx);

/* Returns the directory used for kernel binaries ("" when disabled). */
LAM_API const char *lam_ctx_cache_dir(const lam_ctx *ctx);

#ifdef __cplusplus
}
#endif
#endif
