/* tensor_cl.c: tensors over an application's cl_mem, a tensor's cl_mem for
 * the application (lamina/opencl.h), and asynchronous reads to host memory
 * with pollable handles and completion callbacks (lamina/tensor.h).
 *
 * A read handle holds its own references to the event and the buffer, so
 * tensors may be freed while their reads are pending (the queue is
 * in-order: a later reuse of the pooled buffer is enqueued after the read).
 * The handle's lifetime is shared between the application and the driver's
 * callback through a reference count: lam_read_handle_free waits for the
 * read and the callback, except when called from the callback itself. */
#include <stdatomic.h>
#include <stdlib.h>

#include "lamina/opencl.h"
#include "runtime/platform_internal.h"
#include "tensor_internal.h"

lam_status lam_tensor_from_cl_mem(lam_ctx *ctx, cl_mem mem, size_t offset, lam_dtype dtype,
                                  int ndim, const int64_t *shape, lam_tensor **out) {
  const char *fn = "lam_tensor_from_cl_mem";
  if (!out) return lam__fail(LAM_ERR_NULL, "%s: out is NULL", fn);
  *out = NULL;
  if (!ctx || !mem) return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, ctx ? "mem" : "ctx");
  size_t es = lam_dtype_size(dtype);
  if (es == 0) return lam__fail(LAM_ERR_DTYPE, "%s: unknown dtype %d", fn, (int)dtype);
  lam_status st = lam__check_dtype_supported(ctx, dtype, fn);
  if (st != LAM_OK) return st;
  int64_t numel = 0;
  if ((st = lam__check_shape(fn, ndim, shape, &numel)) != LAM_OK) return st;
  cl_context mctx = NULL;
  size_t size = 0;
  cl_mem_object_type type = 0;
  cl_int err = clGetMemObjectInfo(mem, CL_MEM_TYPE, sizeof type, &type, NULL);
  if (err == CL_SUCCESS) err = clGetMemObjectInfo(mem, CL_MEM_CONTEXT, sizeof mctx, &mctx, NULL);
  if (err == CL_SUCCESS) err = clGetMemObjectInfo(mem, CL_MEM_SIZE, sizeof size, &size, NULL);
  if (err != CL_SUCCESS) return lam__cl_fail(err, fn, "clGetMemObjectInfo (mem)");
  if (type != CL_MEM_OBJECT_BUFFER)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: mem is an image, not a buffer", fn);
  if (mctx != ctx->context)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: mem belongs to another cl_context", fn);
  if (offset % es != 0)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                     "%s: offset %zu is not a multiple of the %s element size %zu", fn, offset,
                     lam_dtype_name(dtype), es);
  size_t need = (size_t)numel * es;
  if (offset > size || need > size - offset) {
    char buf[LAM__SHAPE_STR];
    return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                     "%s: %s x %s at offset %zu needs %zu bytes; the buffer has %zu", fn,
                     lam__shape_str(ndim, shape, buf), lam_dtype_name(dtype), offset,
                     offset + need, size);
  }
  lam_tensor *t = calloc(1, sizeof *t);
  if (!t) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
  t->buf = lam__buffer_wrap(mem, size, fn);
  if (!t->buf) {
    free(t);
    return lam_last_status();
  }
  t->ctx = ctx;
  t->offset = offset / es;
  t->dtype = dtype;
  t->ndim = ndim;
  for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
  t->numel = numel;
  t->refs = 1;
  t->tape_slot = -1;
  ctx->stats.live_tensors++;
  *out = t;
  return LAM_OK;
}

lam_status lam_tensor_cl_mem(const lam_tensor *t, cl_mem *mem, size_t *offset) {
  const char *fn = "lam_tensor_cl_mem";
  if (!t || !mem || !offset)
    return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, !t ? "t" : !mem ? "mem" : "offset");
  *mem = t->buf->mem;
  *offset = t->offset * lam_dtype_size(t->dtype);
  return LAM_OK;
}

/* ---- asynchronous reads --------------------------------------------------- */

struct lam_read_handle {
  cl_event event;
  cl_mem mem;              /* retained: the tensor may go first */
  lam_read_callback callback;
  void *user;
  atomic_int refs;         /* the application's, plus the callback's while pending */
  atomic_int callback_done; /* 1 once the callback has returned (or when there is none) */
  atomic_int exec_status;  /* the event's final status as the callback saw it */
};

/* The handle whose callback runs on this thread (free from inside it). */
static _Thread_local lam_read_handle *lam__in_callback;

static void lam__read_handle_unref(lam_read_handle *h) {
  if (atomic_fetch_sub(&h->refs, 1) != 1) return;
  clReleaseEvent(h->event);
  clReleaseMemObject(h->mem);
  free(h);
}

static lam_status lam__exec_status(cl_int s, const char *fn) {
  if (s >= 0) return LAM_OK;
  return lam__cl_fail(s, fn, "the read");
}

static void CL_CALLBACK lam__read_done(cl_event ev, cl_int status, void *p) {
  lam_read_handle *h = p;
  (void)ev;
  atomic_store(&h->exec_status, status);
  lam__in_callback = h;
  h->callback(h, status >= 0 ? LAM_OK : lam__exec_status(status, "lam_tensor_read_async"),
              h->user);
  lam__in_callback = NULL;
  atomic_store(&h->callback_done, 1);
  lam__read_handle_unref(h);
}

lam_status lam_tensor_read_async(const lam_tensor *t, void *dst, size_t dst_bytes,
                                 lam_read_callback callback, void *user, lam_read_handle **out) {
  const char *fn = "lam_tensor_read_async";
  if (!out) return lam__fail(LAM_ERR_NULL, "%s: out is NULL", fn);
  *out = NULL;
  if (!t || !dst) return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, t ? "dst" : "t");
  size_t nbytes = lam_tensor_nbytes(t);
  if (dst_bytes != nbytes)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                     "%s: destination holds %zu bytes, tensor has %zu (%lld x %s)", fn, dst_bytes,
                     nbytes, (long long)t->numel, lam_dtype_name(t->dtype));
  lam_read_handle *h = calloc(1, sizeof *h);
  if (!h) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
  cl_int err = clEnqueueReadBuffer(t->ctx->queue, t->buf->mem, CL_FALSE,
                                   t->offset * lam_dtype_size(t->dtype), nbytes, dst, 0, NULL,
                                   &h->event);
  if (err != CL_SUCCESS) {
    free(h);
    return lam__cl_fail(err, fn, "clEnqueueReadBuffer");
  }
  clRetainMemObject(t->buf->mem);
  h->mem = t->buf->mem;
  h->callback = callback;
  h->user = user;
  atomic_init(&h->refs, callback ? 2 : 1);
  atomic_init(&h->callback_done, callback ? 0 : 1);
  atomic_init(&h->exec_status, 1);
  if (callback) {
    err = clSetEventCallback(h->event, CL_COMPLETE, lam__read_done, h);
    if (err != CL_SUCCESS) {
      clWaitForEvents(1, &h->event); /* dst is written: do not leave it pending */
      atomic_store(&h->refs, 1);
      lam__read_handle_unref(h);
      return lam__cl_fail(err, fn, "clSetEventCallback");
    }
  }
  /* Submit now: a driver may hold unflushed commands until the next sync. */
  err = clFlush(t->ctx->queue);
  if (err != CL_SUCCESS) {
    lam_read_handle_free(h);
    return lam__cl_fail(err, fn, "clFlush");
  }
  *out = h;
  return LAM_OK;
}

lam_status lam_read_handle_poll(lam_read_handle *h, bool *done) {
  const char *fn = "lam_read_handle_poll";
  if (!h || !done) return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, h ? "done" : "h");
  *done = false;
  cl_int s = CL_QUEUED;
  cl_int err = clGetEventInfo(h->event, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof s, &s, NULL);
  if (err != CL_SUCCESS) return lam__cl_fail(err, fn, "clGetEventInfo");
  if (s < 0) {
    *done = atomic_load(&h->callback_done) != 0;
    return lam__exec_status(s, fn);
  }
  *done = s == CL_COMPLETE && atomic_load(&h->callback_done) != 0;
  return LAM_OK;
}

lam_status lam_read_handle_wait(lam_read_handle *h) {
  const char *fn = "lam_read_handle_wait";
  if (!h) return lam__fail(LAM_ERR_NULL, "%s: h is NULL", fn);
  cl_int err = clWaitForEvents(1, &h->event);
  /* The callback runs on a driver thread after the status changes. */
  if (lam__in_callback != h)
    while (!atomic_load(&h->callback_done)) lam__thread_yield();
  cl_int s = CL_COMPLETE;
  clGetEventInfo(h->event, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof s, &s, NULL);
  if (s < 0) return lam__exec_status(s, fn);
  if (err != CL_SUCCESS) return lam__cl_fail(err, fn, "clWaitForEvents");
  return LAM_OK;
}

void lam_read_handle_free(lam_read_handle *h) {
  if (!h) return;
  if (lam__in_callback != h) {
    clWaitForEvents(1, &h->event);
    while (!atomic_load(&h->callback_done)) lam__thread_yield();
  }
  lam__read_handle_unref(h);
}
