/* lamina/opencl.h: sharing OpenCL objects between an application and lamina
 * (the only public header with OpenCL types; the others stay free of them).
 *
 * - A context on the application's own cl_context, device and in-order
 *   queue: lamina enqueues its kernels on that queue, so the application's
 *   and lamina's work are ordered by the queue itself.
 * - Tensors over the application's cl_mem (no copy) and the cl_mem of any
 *   lamina tensor, for the application's kernels.
 * - Events both ways, for work on other queues (or other APIs).
 *
 * Ownership: lamina retains every object it is handed and releases only the
 * references it took; it never releases an application's last reference.
 *
 * CL/GL sharing: the application makes the cl_context with its GL context
 * properties (CL_GL_CONTEXT_KHR ...), creates the buffer with
 * clCreateFromGLBuffer, and around lamina's use of it calls
 * clEnqueueAcquireGLObjects before and clEnqueueReleaseGLObjects after, on
 * the queue given to lam_ctx_create_from_cl (glFinish before the acquire
 * unless cl_khr_gl_event is used). Between the two the buffer is an ordinary
 * cl_mem for lam_tensor_from_cl_mem. docs/embedding.md has the details. */
#ifndef LAMINA_OPENCL_H
#define LAMINA_OPENCL_H

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#if defined(__APPLE__)
#include <OpenCL/opencl.h>
#else
#include <CL/cl.h>
#endif

#include "lamina/export.h"
#include "lamina/runtime.h"
#include "lamina/status.h"
#include "lamina/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Creates a context on the application's OpenCL objects in `*out`: device
 * must belong to context, and queue (made on that context and device) must
 * be in-order (no CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE: lamina's buffer
 * reuse relies on the order). opts as for lam_ctx_create (its device
 * selector is ignored). lam_ctx_device describes the device (its index is
 * its place in lam_devices_list, -1 if not listed). lamina retains the three objects and releases those
 * references in lam_ctx_free, which also waits (clFinish) for the queue.
 * Returns LAM_OK, LAM_ERR_NULL, LAM_ERR_INVALID_ARGUMENT (mismatched
 * objects, out-of-order queue) or the OpenCL error. */
LAM_API lam_status lam_ctx_create_from_cl(cl_context context, cl_device_id device,
                                          cl_command_queue queue, const lam_ctx_opts *opts,
                                          lam_ctx **out);

/* Makes lamina's next enqueued work wait for n application events (a
 * barrier on lamina's queue; the events may come from other queues of the
 * same cl_context). Returns at once; n == 0 is a no-op. Returns LAM_OK,
 * LAM_ERR_NULL or the OpenCL error. */
LAM_API lam_status lam_ctx_wait_cl_events(lam_ctx *ctx, int n, const cl_event *events);

/* Stores in `*event` a new event that completes when all the work lamina
 * has enqueued so far has completed (a marker; the queue is flushed). The
 * caller owns it (clReleaseEvent). Returns LAM_OK, LAM_ERR_NULL or the
 * OpenCL error. */
LAM_API lam_status lam_ctx_marker_cl_event(lam_ctx *ctx, cl_event *event);

/* Wraps bytes [offset, offset + numel * dtype size) of the application's
 * buffer `mem` as a tensor of `dtype` and `shape` in `*out`, without a copy.
 * mem must belong to ctx's cl_context; offset must be a multiple of the
 * dtype size (no sub-buffer is made, so the device's base-address alignment
 * does not apply); the range must lie within the buffer. lamina retains mem
 * and releases that reference when the last tensor on it is freed; the
 * buffer never enters lamina's pool. Ops read it and may write it (in-place
 * updates such as optimizer steps); results of ops are new lamina buffers.
 * Returns LAM_OK, LAM_ERR_NULL, LAM_ERR_SHAPE, LAM_ERR_INVALID_ARGUMENT or
 * LAM_ERR_UNSUPPORTED (dtype). */
LAM_API lam_status lam_tensor_from_cl_mem(lam_ctx *ctx, cl_mem mem, size_t offset, lam_dtype dtype,
                                          int ndim, const int64_t *shape, lam_tensor **out);

/* Stores the tensor's buffer in `*mem` (borrowed: valid while the tensor
 * lives, clRetainMemObject to keep it) and the byte offset of its first
 * element in `*offset`. The elements are contiguous, row-major. Work the
 * application enqueues on lamina's queue is ordered after lamina's; on
 * another queue wait for lam_ctx_marker_cl_event first. Returns LAM_OK or
 * LAM_ERR_NULL. */
LAM_API lam_status lam_tensor_cl_mem(const lam_tensor *t, cl_mem *mem, size_t *offset);

#ifdef __cplusplus
}
#endif
#endif
