/* lamina/tensor.h: the device-neutral tensor.
 *
 * A lam_tensor is a reference-counted handle to a pooled device buffer plus
 * an element offset, a dtype and a row-major contiguous shape of 0 to 8 dims
 * (0 dims is a scalar). Views (reshape, leading-axis slices) share the
 * buffer. Every dimension is at least 1 and a tensor holds fewer than 2^31
 * elements. Functions returning a tensor return a new reference, or NULL with
 * a message in lam_last_error(); given a NULL tensor they return NULL and keep
 * the first message, so chains of calls fail safely. */
#ifndef LAMINA_TENSOR_H
#define LAMINA_TENSOR_H

#include "lamina/export.h"

#include <stddef.h>
#include <stdint.h>

#include "lamina/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LAM_MAX_DIMS 8

typedef enum lam_dtype {
  LAM_F32 = 0,
  LAM_F16 = 1, /* storage on every device (docs/half-precision.md); host side: IEEE half bits */
  LAM_F64 = 2, /* where the device has cl_khr_fp64 */
  LAM_I32 = 3,
  LAM_U8 = 4
} lam_dtype;

typedef struct lam_tensor lam_tensor;

/* Returns the size of one element in bytes (0 for an unknown dtype). */
LAM_API size_t lam_dtype_size(lam_dtype dtype);
/* Returns "f32", "f16", "f64", "i32", "u8" or "unknown". */
LAM_API const char *lam_dtype_name(lam_dtype dtype);
/* Returns 1 for f32, f16 and f64, else 0. */
LAM_API int lam_dtype_is_float(lam_dtype dtype);

/* Returns a tensor with `data` (ndim == 0: one element) copied to the device. */
LAM_API lam_tensor *lam_tensor_from_host(lam_ctx *ctx, lam_dtype dtype, int ndim,
                                 const int64_t *shape, const void *data);
/* Returns an uninitialised tensor (contents are whatever the pool held). */
LAM_API lam_tensor *lam_tensor_empty(lam_ctx *ctx, lam_dtype dtype, int ndim, const int64_t *shape);
/* Returns a tensor of zeros. */
LAM_API lam_tensor *lam_tensor_zeros(lam_ctx *ctx, lam_dtype dtype, int ndim, const int64_t *shape);
/* Returns a tensor filled with `value` (converted to dtype). */
LAM_API lam_tensor *lam_tensor_full(lam_ctx *ctx, lam_dtype dtype, int ndim, const int64_t *shape,
                            double value);
/* Returns a 0-dim tensor holding `value`. */
LAM_API lam_tensor *lam_tensor_scalar(lam_ctx *ctx, lam_dtype dtype, double value);
/* Returns the 1-D tensor start, start+step, ... below stop (above, for step < 0). */
LAM_API lam_tensor *lam_tensor_arange(lam_ctx *ctx, lam_dtype dtype, double start, double stop,
                              double step);
/* Returns a zeros/full tensor shaped like `like`. */
LAM_API lam_tensor *lam_tensor_zeros_like(const lam_tensor *like);
LAM_API lam_tensor *lam_tensor_full_like(const lam_tensor *like, double value);

/* Returns a deep copy in a new buffer (not recorded on the tape). */
LAM_API lam_tensor *lam_tensor_copy(const lam_tensor *t);
/* Returns `t` converted to `dtype` (floats to integers truncate toward zero). */
LAM_API lam_tensor *lam_tensor_cast(const lam_tensor *t, lam_dtype dtype);
/* As lam_tensor_cast, as an op recorded on the tape: between float dtypes
 * the gradient flows back cast to x's dtype (mixed precision: f16
 * activations into an f32 loss). */
LAM_API lam_tensor *lam_cast(lam_tensor *x, lam_dtype dtype);
/* Returns a view of `t` with a new shape of the same element count; one
 * entry may be -1 to be inferred. Differentiable. */
LAM_API lam_tensor *lam_tensor_reshape(lam_tensor *t, int ndim, const int64_t *shape);
/* Returns a view of rows [start, stop) of the leading axis. Differentiable. */
LAM_API lam_tensor *lam_tensor_slice0(lam_tensor *t, int64_t start, int64_t stop);

/* Adds a reference and returns `t`. */
LAM_API lam_tensor *lam_tensor_retain(lam_tensor *t);
/* Drops one reference; the buffer goes back to the pool with the last. NULL is a no-op. */
LAM_API void lam_tensor_free(lam_tensor *t);

/* Copies the tensor to `dst`, which must hold exactly lam_tensor_nbytes(t)
 * bytes (`dst_bytes`). Blocks until done. Returns LAM_OK or the error. */
LAM_API lam_status lam_tensor_to_host(const lam_tensor *t, void *dst, size_t dst_bytes);
/* Overwrites the tensor's contents with `src` of exactly nbytes bytes. */
LAM_API lam_status lam_tensor_write(lam_tensor *t, const void *src, size_t src_bytes);
/* Reads a one-element tensor as a double into `*out`. */
LAM_API lam_status lam_tensor_item(const lam_tensor *t, double *out);

/* ---- asynchronous reads (docs/embedding.md) ----
 * lam_tensor_read_async enqueues a non-blocking copy of the tensor into
 * `dst` (exactly lam_tensor_nbytes(t) bytes, kept valid until the read has
 * completed) after all work enqueued so far, and returns at once with a
 * handle in `*out`. The handle keeps the device buffer alive: the tensor,
 * even its context's other tensors, may be freed right away. `callback`
 * (may be NULL) runs once when the read completes or fails, on a thread of
 * the OpenCL driver: it must be short, must not call lamina on the read's
 * context, and may call lam_read_handle_free on its own handle. The handle
 * functions may be called from any thread. */
typedef struct lam_read_handle lam_read_handle;
typedef void (*lam_read_callback)(lam_read_handle *handle, lam_status status, void *user);
LAM_API lam_status lam_tensor_read_async(const lam_tensor *t, void *dst, size_t dst_bytes,
                                         lam_read_callback callback, void *user,
                                         lam_read_handle **out);
/* Stores in `*done` whether the read (and its callback) has finished;
 * never blocks. Returns LAM_OK, LAM_ERR_NULL, or the read's error. */
LAM_API lam_status lam_read_handle_poll(lam_read_handle *h, bool *done);
/* Blocks until the read (and its callback) has finished. Returns LAM_OK,
 * LAM_ERR_NULL or the read's error. */
LAM_API lam_status lam_read_handle_wait(lam_read_handle *h);
/* Waits for a pending read (dst is then no longer written), then frees the
 * handle; from inside the handle's callback it returns at once and the
 * handle goes when the callback returns. NULL is a no-op. */
LAM_API void lam_read_handle_free(lam_read_handle *h);

LAM_API int lam_tensor_ndim(const lam_tensor *t);                 /* -1 for NULL */
LAM_API const int64_t *lam_tensor_shape(const lam_tensor *t);     /* borrowed; NULL for NULL */
LAM_API int64_t lam_tensor_dim(const lam_tensor *t, int axis);    /* negative axis counts from the end; -1 if bad */
LAM_API int64_t lam_tensor_numel(const lam_tensor *t);            /* 0 for NULL */
LAM_API size_t lam_tensor_nbytes(const lam_tensor *t);            /* 0 for NULL */
LAM_API lam_dtype lam_tensor_dtype(const lam_tensor *t);
LAM_API lam_ctx *lam_tensor_ctx(const lam_tensor *t);
/* Returns 1 when a and b have the same ndim and dims. */
LAM_API int lam_tensor_same_shape(const lam_tensor *a, const lam_tensor *b);

#ifdef __cplusplus
}
#endif
#endif
