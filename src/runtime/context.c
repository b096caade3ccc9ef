/* runtime/context.c: creating and freeing a context (device, OpenCL context,
 * in-order queue, cache directory) and reporting its figures; a context on
 * an application's own OpenCL objects and OpenCL events in and out
 * (lamina/opencl.h: lamina retains what it is given, releases only that). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/opencl.h"
#include "runtime/platform_internal.h"
#include "runtime/runtime_internal.h"

lam_status lam__device_ids(int index, cl_platform_id *platform, cl_device_id *device,
                           lam_device_info *info);
void lam__pool_free_all(lam_ctx *ctx);
void lam__device_describe(cl_platform_id platform, cl_device_id device, lam_device_info *info);

lam_ctx_opts lam_ctx_defaults(void) { return (lam_ctx_opts){0}; }

/* Resolves the cache directory: option, LAMINA_CACHE_DIR, else the user
 * cache (lam__user_cache_dir: XDG_CACHE_HOME or ~/.cache on Linux,
 * ~/Library/Caches on macOS, %LOCALAPPDATA% on Windows). An unusable directory silently disables the disk cache (a cache
 * is an optimisation, never a reason to fail). */
static void lam__resolve_cache_dir(const lam_ctx_opts *o, char *out, size_t cap) {
  out[0] = '\0';
  if (o->cache_mode == LAM_CACHE_OFF) return;
  const char *dir = o->cache_dir;
  if (!dir || !*dir) dir = getenv("LAMINA_CACHE_DIR");
  char buf[1024];
  if (!dir || !*dir) {
    if (lam__user_cache_dir(buf, sizeof buf) != 0) return;
    dir = buf;
  }
  if (strlen(dir) + 1 > cap || lam__mkdirs(dir) != 0) return;
  snprintf(out, cap, "%s", dir);
}

/* Whether programs built from source are written to the disk cache (see
 * lam_cache_mode). PoCL is recognised by its platform name: asking it for a
 * program binary makes it compile every kernel of the program (measured: 56 s
 * of a 78 s cold quickstart went there), and its own kernel cache already
 * keeps both the builds and the work-group functions it compiles at the
 * first enqueue, which lamina's stored binaries do not include. */
static bool lam__store_binaries(const lam_ctx_opts *o, const lam_device_info *info) {
  lam_cache_mode mode = o->cache_mode;
  const char *env = getenv("LAMINA_BINARY_CACHE");
  if (mode == LAM_CACHE_AUTO && env && strcmp(env, "always") == 0) mode = LAM_CACHE_ALWAYS;
  if (mode == LAM_CACHE_AUTO && env && strcmp(env, "off") == 0) return false;
  if (mode != LAM_CACHE_AUTO) return mode == LAM_CACHE_ALWAYS;
  if (!strstr(info->platform_name, "Portable Computing Language")) return true;
  const char *pocl_cache = getenv("POCL_KERNEL_CACHE");
  return pocl_cache && strcmp(pocl_cache, "0") == 0;
}

static void lam__ctx_setup(lam_ctx *ctx, const lam_ctx_opts *o);

lam_status lam_ctx_create(const lam_ctx_opts *opts, lam_ctx **out) {
  if (!out) return lam__fail(LAM_ERR_NULL, "lam_ctx_create: out is NULL");
  *out = NULL;
  lam_ctx_opts o = opts ? *opts : lam_ctx_defaults();
  if ((int)o.cache_mode < LAM_CACHE_AUTO || o.cache_mode > LAM_CACHE_OFF)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "lam_ctx_create: cache_mode %d is not a lam_cache_mode",
                     (int)o.cache_mode);
  int index = -1;
  lam_status st = lam_device_choose(o.device, &index);
  if (st != LAM_OK) return st;

  lam_ctx *ctx = calloc(1, sizeof *ctx);
  if (!ctx) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "lam_ctx_create: out of host memory");
  st = lam__device_ids(index, &ctx->platform, &ctx->device, &ctx->info);
  if (st != LAM_OK) {
    free(ctx);
    return lam__fail(st, "lam_ctx_create: device %d disappeared", index);
  }
  cl_int err = CL_SUCCESS;
  cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)ctx->platform, 0};
  lam__cl_serial_begin(); /* see device.c: drivers' first calls are not thread-safe */
  ctx->context = clCreateContext(props, 1, &ctx->device, NULL, NULL, &err);
  const char *what = "clCreateContext";
  if (err == CL_SUCCESS) {
    ctx->queue = clCreateCommandQueue(ctx->context, ctx->device, 0, &err);
    what = "clCreateCommandQueue";
    if (err != CL_SUCCESS) clReleaseContext(ctx->context);
  }
  lam__cl_serial_end();
  if (err != CL_SUCCESS) {
    free(ctx);
    return lam__cl_fail(err, "lam_ctx_create", what);
  }
  lam__ctx_setup(ctx, &o);
  *out = ctx;
  return LAM_OK;
}

lam_status lam_ctx_create_from_cl(cl_context context, cl_device_id device, cl_command_queue queue,
                                  const lam_ctx_opts *opts, lam_ctx **out) {
  const char *fn = "lam_ctx_create_from_cl";
  if (!out) return lam__fail(LAM_ERR_NULL, "%s: out is NULL", fn);
  *out = NULL;
  if (!context || !device || !queue)
    return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn,
                     !context ? "context" : !device ? "device" : "queue");
  lam_ctx_opts o = opts ? *opts : lam_ctx_defaults();
  if ((int)o.cache_mode < LAM_CACHE_AUTO || o.cache_mode > LAM_CACHE_OFF)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: cache_mode %d is not a lam_cache_mode", fn,
                     (int)o.cache_mode);
  cl_context qctx = NULL;
  cl_device_id qdev = NULL;
  cl_command_queue_properties qprops = 0;
  cl_int err = clGetCommandQueueInfo(queue, CL_QUEUE_CONTEXT, sizeof qctx, &qctx, NULL);
  if (err == CL_SUCCESS)
    err = clGetCommandQueueInfo(queue, CL_QUEUE_DEVICE, sizeof qdev, &qdev, NULL);
  if (err == CL_SUCCESS)
    err = clGetCommandQueueInfo(queue, CL_QUEUE_PROPERTIES, sizeof qprops, &qprops, NULL);
  if (err != CL_SUCCESS) return lam__cl_fail(err, fn, "clGetCommandQueueInfo (queue)");
  if (qctx != context)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: queue was made on another cl_context", fn);
  if (qdev != device)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: queue was made for another device", fn);
  if (qprops & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                     "%s: queue is out-of-order; lamina needs an in-order queue "
                     "(create it without CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE)", fn);
  cl_platform_id platform = NULL;
  err = clGetDeviceInfo(device, CL_DEVICE_PLATFORM, sizeof platform, &platform, NULL);
  if (err != CL_SUCCESS) return lam__cl_fail(err, fn, "clGetDeviceInfo (device)");
  lam_ctx *ctx = calloc(1, sizeof *ctx);
  if (!ctx) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
  lam__device_describe(platform, device, &ctx->info);
  ctx->platform = platform;
  ctx->device = device;
  ctx->context = context;
  ctx->queue = queue;
  lam__cl_serial_begin();
  clRetainContext(context);
  clRetainCommandQueue(queue);
  clRetainDevice(device); /* a no-op for root devices; sub-devices are counted */
  lam__cl_serial_end();
  ctx->device_retained = true;
  lam__ctx_setup(ctx, &o);
  *out = ctx;
  return LAM_OK;
}

/* The context's settings common to both constructors. */
static void lam__ctx_setup(lam_ctx *ctx, const lam_ctx_opts *o) {
  lam__resolve_cache_dir(o, ctx->cache_dir, sizeof ctx->cache_dir);
  ctx->store_binaries = ctx->cache_dir[0] && lam__store_binaries(o, &ctx->info);
  lam__tuning_init(ctx);
  ctx->wg_1d = ctx->tuning.wg_1d;
  ctx->grad_enabled = true;
  ctx->cpu_gemm_tuning = !o->clblast_on_cpu;
}

void lam_ctx_free(lam_ctx *ctx) {
  if (!ctx) return;
  clFinish(ctx->queue);
  if (ctx->blas_free) ctx->blas_free(ctx->blas);
  lam__programs_free(ctx);
  lam__pool_free_all(ctx);
  free(ctx->free_lists);
  lam__cl_serial_begin();
  clReleaseCommandQueue(ctx->queue);
  clReleaseContext(ctx->context);
  if (ctx->device_retained) clReleaseDevice(ctx->device);
  lam__cl_serial_end();
  free(ctx);
}

const lam_device_info *lam_ctx_device(const lam_ctx *ctx) {
  if (!ctx) return lam__null_input("lam_ctx_device", "ctx");
  return &ctx->info;
}

lam_status lam_ctx_stats(const lam_ctx *ctx, lam_stats *out) {
  if (!ctx || !out)
    return lam__fail(LAM_ERR_NULL, "lam_ctx_stats: %s is NULL", ctx ? "out" : "ctx");
  *out = ctx->stats;
  return LAM_OK;
}

lam_status lam_ctx_finish(lam_ctx *ctx) {
  if (!ctx) return lam__fail(LAM_ERR_NULL, "lam_ctx_finish: ctx is NULL");
  cl_int err = clFinish(ctx->queue);
  return err == CL_SUCCESS ? LAM_OK : lam__cl_fail(err, "lam_ctx_finish", "clFinish");
}

lam_status lam_ctx_trim(lam_ctx *ctx) {
  if (!ctx) return lam__fail(LAM_ERR_NULL, "lam_ctx_trim: ctx is NULL");
  lam__pool_free_all(ctx);
  return LAM_OK;
}

const char *lam_ctx_cache_dir(const lam_ctx *ctx) { return ctx ? ctx->cache_dir : ""; }

lam_status lam_ctx_wait_cl_events(lam_ctx *ctx, int n, const cl_event *events) {
  const char *fn = "lam_ctx_wait_cl_events";
  if (!ctx) return lam__fail(LAM_ERR_NULL, "%s: ctx is NULL", fn);
  if (n < 0) return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: n %d is negative", fn, n);
  if (n == 0) return LAM_OK;
  if (!events) return lam__fail(LAM_ERR_NULL, "%s: events is NULL", fn);
  for (int i = 0; i < n; i++)
    if (!events[i]) return lam__fail(LAM_ERR_NULL, "%s: events[%d] is NULL", fn, i);
  cl_int err = clEnqueueBarrierWithWaitList(ctx->queue, (cl_uint)n, events, NULL);
  return err == CL_SUCCESS ? LAM_OK : lam__cl_fail(err, fn, "clEnqueueBarrierWithWaitList");
}

lam_status lam_ctx_marker_cl_event(lam_ctx *ctx, cl_event *event) {
  const char *fn = "lam_ctx_marker_cl_event";
  if (!ctx || !event) return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, ctx ? "event" : "ctx");
  *event = NULL;
  cl_int err = clEnqueueMarkerWithWaitList(ctx->queue, 0, NULL, event);
  if (err == CL_SUCCESS) err = clFlush(ctx->queue);
  if (err != CL_SUCCESS) {
    if (*event) clReleaseEvent(*event);
    *event = NULL;
    return lam__cl_fail(err, fn, "clEnqueueMarkerWithWaitList");
  }
  return LAM_OK;
}
