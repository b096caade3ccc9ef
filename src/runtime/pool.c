/* runtime/pool.c: size-classed reuse of device buffers.
 *
 * Requests round up to a size class (four classes per power of two, so at
 * most 25% slack; 256 bytes minimum). A released buffer goes on its class's
 * free list and is handed to the next request of that class. Reuse is safe
 * without events because the context's queue is in-order: every command that
 * used the old contents was enqueued before any command that reuses it.
 * Every request is checked against the device's max allocation and global
 * memory; when memory runs short the cached buffers are released first.
 * Buffers wrapped from an application's cl_mem (lam__buffer_wrap) bypass the
 * pool: their release drops lamina's reference and nothing else. */
#include <stdlib.h>

#include "runtime/runtime_internal.h"

#define LAM__POOL_CLASSES 256

/* Returns the class index and its byte size for a request. */
static int lam__size_class(size_t bytes, size_t *class_bytes) {
  if (bytes <= 256) {
    *class_bytes = 256;
    return 0;
  }
  int e = 63 - __builtin_clzll((unsigned long long)(bytes - 1)); /* 2^e < bytes <= 2^(e+1) */
  size_t base = (size_t)1 << e;
  size_t quarter = base / 4;
  size_t q = (bytes - base + quarter - 1) / quarter; /* 1..4 */
  *class_bytes = base + q * quarter;
  return (e - 8) * 4 + (int)q;
}

void lam__pool_free_all(lam_ctx *ctx) {
  if (!ctx->free_lists) return;
  for (int c = 0; c < ctx->n_classes; c++) {
    lam__buffer *b = ctx->free_lists[c];
    while (b) {
      lam__buffer *next = b->next_free;
      ctx->stats.pool_bytes -= (int64_t)b->bytes;
      clReleaseMemObject(b->mem);
      free(b);
      b = next;
    }
    ctx->free_lists[c] = NULL;
  }
}

lam__buffer *lam__buffer_acquire(lam_ctx *ctx, size_t bytes, const char *fn) {
  if (bytes == 0) bytes = 1;
  if (bytes > ctx->info.max_alloc_bytes) {
    lam__fail(LAM_ERR_OUT_OF_MEMORY,
              "%s: %zu bytes exceed the device's max allocation of %llu bytes (%s)", fn, bytes,
              (unsigned long long)ctx->info.max_alloc_bytes, ctx->info.name);
    return NULL;
  }
  if (!ctx->free_lists) {
    ctx->free_lists = calloc(LAM__POOL_CLASSES, sizeof *ctx->free_lists);
    if (!ctx->free_lists) {
      lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
      return NULL;
    }
    ctx->n_classes = LAM__POOL_CLASSES;
  }
  size_t cls_bytes = 0;
  int cls = lam__size_class(bytes, &cls_bytes);
  if (cls_bytes > ctx->info.max_alloc_bytes) cls_bytes = bytes; /* last class may overshoot */
  lam__buffer *b = NULL;
  if (cls < ctx->n_classes && ctx->free_lists[cls]) {
    b = ctx->free_lists[cls];
    ctx->free_lists[cls] = b->next_free;
    ctx->stats.pool_bytes -= (int64_t)b->bytes;
  } else {
    if ((uint64_t)(ctx->stats.live_bytes + ctx->stats.pool_bytes) + cls_bytes >
        ctx->info.global_mem_bytes)
      lam__pool_free_all(ctx);
    if ((uint64_t)ctx->stats.live_bytes + cls_bytes > ctx->info.global_mem_bytes) {
      lam__fail(LAM_ERR_OUT_OF_MEMORY,
                "%s: %zu more bytes exceed the device memory of %llu bytes (%lld live)", fn,
                cls_bytes, (unsigned long long)ctx->info.global_mem_bytes,
                (long long)ctx->stats.live_bytes);
      return NULL;
    }
    b = calloc(1, sizeof *b);
    if (!b) {
      lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
      return NULL;
    }
    cl_int err = CL_SUCCESS;
    b->mem = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, cls_bytes, NULL, &err);
    if (err != CL_SUCCESS) {
      free(b);
      lam__cl_fail(err, fn, "clCreateBuffer");
      return NULL;
    }
    b->bytes = cls_bytes;
  }
  b->refs = 1;
  b->next_free = NULL;
  ctx->stats.live_bytes += (int64_t)b->bytes;
  if (ctx->stats.live_bytes > ctx->stats.peak_bytes) ctx->stats.peak_bytes = ctx->stats.live_bytes;
  return b;
}

lam__buffer *lam__buffer_wrap(cl_mem mem, size_t bytes, const char *fn) {
  lam__buffer *b = calloc(1, sizeof *b);
  if (!b) {
    lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
    return NULL;
  }
  clRetainMemObject(mem);
  b->mem = mem;
  b->bytes = bytes;
  b->refs = 1;
  b->external = true;
  return b;
}

void lam__buffer_release(lam_ctx *ctx, lam__buffer *b) {
  if (b->external) { /* the application's memory: drop our reference only */
    clReleaseMemObject(b->mem);
    free(b);
    return;
  }
  ctx->stats.live_bytes -= (int64_t)b->bytes;
  size_t cls_bytes = 0;
  int cls = lam__size_class(b->bytes, &cls_bytes);
  /* Keep at most a quarter of device memory cached. */
  if (cls_bytes != b->bytes || cls >= ctx->n_classes ||
      (uint64_t)(ctx->stats.pool_bytes + (int64_t)b->bytes) > ctx->info.global_mem_bytes / 4) {
    clReleaseMemObject(b->mem);
    free(b);
    return;
  }
  b->next_free = ctx->free_lists[cls];
  ctx->free_lists[cls] = b;
  ctx->stats.pool_bytes += (int64_t)b->bytes;
}
