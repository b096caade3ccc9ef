/* runtime/runtime_internal.h: the context, buffers, errors and kernel
 * launching, shared by every part of the library (never installed). It
 * brings the base public headers (status, runtime, tensor: lam_dtype) and no
 * others: each file includes the public headers of what else it uses. */
#ifndef LAMINA_RUNTIME_INTERNAL_H
#define LAMINA_RUNTIME_INTERNAL_H

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#if defined(__APPLE__)
#include <OpenCL/opencl.h> /* macOS: the OpenCL 1.2 framework */
#else
#include <CL/cl.h>
#endif
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h> /* MinGW: __MINGW_PRINTF_FORMAT */

#include "lamina/runtime.h"
#include "lamina/status.h"
#include "lamina/tensor.h"
#include "runtime/tuning_internal.h"

/* printf-style format checking: MinGW-w64's C99 printf (__USE_MINGW_ANSI_STDIO,
 * set by the build on Windows) is gnu_printf, not the archetype "printf"
 * (Microsoft's, which lacks %zu and %lld in GCC's view). */
#if defined(__MINGW32__) && defined(__MINGW_PRINTF_FORMAT)
#define LAM__PRINTF(f, a) __attribute__((format(__MINGW_PRINTF_FORMAT, f, a)))
#else
#define LAM__PRINTF(f, a) __attribute__((format(printf, f, a)))
#endif

/* ---- errors ------------------------------------------------------------ */

/* Records `status` and a printf-style message (which starts with the public
 * function's name) as this thread's last error; returns `status`. */
lam_status lam__fail(lam_status status, const char *fmt, ...) LAM__PRINTF(2, 3);
/* Maps an OpenCL error code to a lam_status and records "fn: what (CL name)". */
lam_status lam__cl_fail(cl_int err, const char *fn, const char *what);
/* Returns OpenCL's name for an error code ("CL_OUT_OF_RESOURCES"). */
const char *lam__cl_error_name(cl_int err);
/* For ops given a NULL input: keeps an earlier message (a failed op up the
 * chain) or records "fn: <what> is NULL". Returns NULL for convenience. */
void *lam__null_input(const char *fn, const char *what);

/* Formats a shape as "[4,5]" into buf (LAM__SHAPE_STR bytes); returns buf. */
#define LAM__SHAPE_STR 112
const char *lam__shape_str(int ndim, const int64_t *shape, char *buf);

/* Serialise the driver calls that are not thread-safe (device listing,
 * context creation and release; see device.c). Never nested. */
void lam__cl_serial_begin(void);
void lam__cl_serial_end(void);

/* ---- buffers and pool -------------------------------------------------- */

typedef struct lam__buffer {
  cl_mem mem;
  size_t bytes;   /* capacity (the size class) */
  int refs;       /* tensors sharing this buffer */
  bool external;  /* an application's cl_mem (lam_tensor_from_cl_mem): never pooled */
  struct lam__buffer *next_free;
} lam__buffer;

/* Returns a buffer of at least `bytes` from the pool, or NULL with
 * LAM_ERR_OUT_OF_MEMORY (max alloc / device memory) named after fn. */
lam__buffer *lam__buffer_acquire(lam_ctx *ctx, size_t bytes, const char *fn);
/* Returns a buffer whose last reference is gone to the pool. */
void lam__buffer_release(lam_ctx *ctx, lam__buffer *buf);
/* Wraps an application's cl_mem (retained here, released with the buffer,
 * never returned to the pool nor counted in live_bytes). NULL on OOM. */
lam__buffer *lam__buffer_wrap(cl_mem mem, size_t bytes, const char *fn);

/* ---- programs and kernels ---------------------------------------------- */

typedef struct lam__program lam__program;
typedef struct lam__tape lam__tape;

struct lam_ctx {
  lam_device_info info;
  cl_platform_id platform;
  cl_device_id device;
  cl_context context;
  cl_command_queue queue;
  char cache_dir[1024]; /* "" when the disk cache is off */
  bool store_binaries;  /* programs built from source are written to cache_dir */
  lam__program *programs; /* linked list: family + options -> program + kernels */
  lam__buffer **free_lists; /* one list per size class */
  int n_classes;
  lam_stats stats;
  size_t wg_1d;         /* work-group size for 1-D streaming kernels (= tuning.wg_1d) */
  lam__tuning tuning;   /* every device-dependent choice (runtime/tuning.c) */
  lam__tape *tape;      /* active tape, or NULL */
  uint64_t tape_seq;    /* ids for tapes made on this context */
  bool grad_enabled;    /* false pauses recording */
  bool device_retained; /* lam_ctx_create_from_cl retained the application's device */
  bool cpu_gemm_tuning; /* CPU devices use lamina's GEMM kernels (cl/gemm.cl), not CLBlast */
  void *blas;           /* matmul/CLBlast per-context state, owned by ops/matmul */
  void (*blas_free)(void *);
};

/* Returns the kernel `name` of program `family` (the cl/<family>.cl file)
 * built with `options`, building and caching on first use. On failure
 * returns a status (LAM_ERR_BUILD keeps the build log in the message). */
lam_status lam__kernel_get(lam_ctx *ctx, const char *family, const char *options,
                           const char *name, cl_kernel *out);

/* As lam__kernel_get, with options "-DREAL=<type> ..." for `dtype` followed
 * by `extra` (may be NULL). Fails with LAM_ERR_UNSUPPORTED when the device
 * lacks f64, and with LAM_ERR_DTYPE for f16 on a family that cannot compute
 * on it here (the per-family f16 table in runtime/launch.c). */
lam_status lam__kernel_dt(lam_ctx *ctx, const char *family, const char *name, lam_dtype dtype,
                          const char *extra, cl_kernel *out);

/* Bytes of one ACC value of a kernel built for `dtype` (halves compute in
 * float): the element size of local-memory scratch arrays. */
size_t lam__acc_size(lam_dtype dtype);

/* Returns LAM_OK if the device can hold `dtype`, else records
 * "fn: dtype f64 is not supported by <device>" and returns LAM_ERR_UNSUPPORTED. */
lam_status lam__check_dtype_supported(lam_ctx *ctx, lam_dtype dtype, const char *fn);

/* Frees every cached program and kernel (context teardown). */
void lam__programs_free(lam_ctx *ctx);

/* One kernel argument: a value copied from `value` (size bytes), or local
 * memory of `size` bytes when local is set. */
typedef struct lam__arg {
  size_t size;
  bool local;
  unsigned char value[64];
} lam__arg;

lam__arg lam__arg_int(int64_t v);    /* cl_int */
lam__arg lam__arg_long(int64_t v);   /* cl_long */
lam__arg lam__arg_uint(uint32_t v);  /* cl_uint */
lam__arg lam__arg_real(lam_dtype dtype, double v); /* float or double per dtype */
lam__arg lam__arg_float(double v);   /* cl_float */
lam__arg lam__arg_mem(cl_mem mem);
lam__arg lam__arg_local(size_t bytes);
/* Up to 8 values as an OpenCL int8 (unused entries 0): shapes and strides. */
lam__arg lam__arg_int8(int n, const int64_t *v);
/* A tensor is passed as two arguments: its buffer and its element offset. */
#define LAM__ARG_T(t) lam__arg_mem((t)->buf->mem), lam__arg_int((int64_t)(t)->offset)

/* Sets `nargs` arguments and enqueues an N-D range (local may be NULL).
 * Returns LAM_OK or the OpenCL error, recorded against `fn`. */
lam_status lam__launch(lam_ctx *ctx, cl_kernel k, const char *fn, int nargs, const lam__arg *args,
                       cl_uint dims, const size_t *global, const size_t *local);
/* 1-D launch over n work-items, rounded up to the context's work-group size;
 * kernels guard with `if (i >= n) return;` (n passed by the caller). */
lam_status lam__launch_1d(lam_ctx *ctx, cl_kernel k, const char *fn, int nargs,
                          const lam__arg *args, size_t n);
/* 1-D launch of one work-item per row (the conv, pool and upsample kernels
 * loop over a row inside the work-item), with work-groups small enough to
 * give every core several; kernels guard `if (r >= rows) return;`. */
lam_status lam__launch_rows(lam_ctx *ctx, cl_kernel k, const char *fn, int nargs,
                            const lam__arg *args, int64_t rows);

/* Returns the OpenCL type name for dtype ("float", "double", "half", "int", "uchar"). */
const char *lam__cl_type(lam_dtype dtype);

#endif
