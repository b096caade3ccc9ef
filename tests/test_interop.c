/* test_interop.c: lamina on an application's OpenCL objects (lamina/opencl.h;
 * src/runtime/context.c, src/tensor_cl.c, the external-buffer path of
 * src/runtime/pool.c). The application side is plain OpenCL made here: its
 * own cl_context, queues, buffers and a small kernel of its own that reads a
 * lamina result; events in both directions (a user event that holds
 * lamina's work back, a marker that another queue waits for). */
#include <stdio.h>
#include <string.h>

#include "lamina/opencl.h"
#include "testutil.h"

/* The application's OpenCL objects, on the device lamina would choose. */
typedef struct {
  cl_platform_id platform;
  cl_device_id device;
  cl_context context;
  cl_command_queue queue;
} app_cl;

static app_cl app_open(void) {
  app_cl a = {0};
  int want = -1;
  cr_assert_eq(lam_device_choose(NULL, &want), LAM_OK, "%s", lam_last_error());
  cl_platform_id ps[16];
  cl_uint np = 0;
  cr_assert_eq(clGetPlatformIDs(16, ps, &np), CL_SUCCESS);
  int index = 0;
  for (cl_uint p = 0; p < np && !a.device; p++) {
    cl_device_id ds[64];
    cl_uint nd = 0;
    if (clGetDeviceIDs(ps[p], CL_DEVICE_TYPE_ALL, 64, ds, &nd) != CL_SUCCESS) continue;
    for (cl_uint d = 0; d < nd; d++, index++)
      if (index == want) {
        a.platform = ps[p];
        a.device = ds[d];
      }
  }
  cr_assert(a.device != NULL);
  cl_int err = CL_SUCCESS;
  cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)a.platform, 0};
  a.context = clCreateContext(props, 1, &a.device, NULL, NULL, &err);
  cr_assert_eq(err, CL_SUCCESS);
  a.queue = clCreateCommandQueue(a.context, a.device, 0, &err);
  cr_assert_eq(err, CL_SUCCESS);
  return a;
}

static void app_close(app_cl *a) {
  cr_assert_eq(clFinish(a->queue), CL_SUCCESS);
  clReleaseCommandQueue(a->queue);
  clReleaseContext(a->context);
}

static cl_uint refcount_ctx(cl_context c) {
  cl_uint n = 0;
  clGetContextInfo(c, CL_CONTEXT_REFERENCE_COUNT, sizeof n, &n, NULL);
  return n;
}
static cl_uint refcount_queue(cl_command_queue q) {
  cl_uint n = 0;
  clGetCommandQueueInfo(q, CL_QUEUE_REFERENCE_COUNT, sizeof n, &n, NULL);
  return n;
}
static cl_uint refcount_mem(cl_mem m) {
  cl_uint n = 0;
  clGetMemObjectInfo(m, CL_MEM_REFERENCE_COUNT, sizeof n, &n, NULL);
  return n;
}

static cl_mem app_buffer(app_cl *a, const float *data, size_t n) {
  cl_int err = CL_SUCCESS;
  cl_mem m = clCreateBuffer(a->context, CL_MEM_READ_WRITE, n * sizeof(float), NULL, &err);
  cr_assert_eq(err, CL_SUCCESS);
  if (data)
    cr_assert_eq(clEnqueueWriteBuffer(a->queue, m, CL_TRUE, 0, n * sizeof(float), data, 0, NULL,
                                      NULL),
                 CL_SUCCESS);
  return m;
}

/* The application's own kernel: out[i] = 3 * in[off + i] + 1. */
static const char *app_kernel_src =
    "__kernel void affine(__global const float *in, int off, __global float *out, int n) {\n"
    "  int i = get_global_id(0);\n"
    "  if (i < n) out[i] = 3.0f * in[off + i] + 1.0f;\n"
    "}\n";

static cl_kernel app_kernel(app_cl *a, cl_program *prog) {
  cl_int err = CL_SUCCESS;
  *prog = clCreateProgramWithSource(a->context, 1, &app_kernel_src, NULL, &err);
  cr_assert_eq(err, CL_SUCCESS);
  cr_assert_eq(clBuildProgram(*prog, 1, &a->device, "", NULL, NULL), CL_SUCCESS);
  cl_kernel k = clCreateKernel(*prog, "affine", &err);
  cr_assert_eq(err, CL_SUCCESS);
  return k;
}

Test(interop, context_on_application_objects_keeps_their_references) {
  app_cl a = app_open();
  cl_uint rc0 = refcount_ctx(a.context), rq0 = refcount_queue(a.queue);
  lam_ctx *ctx = NULL;
  cr_assert_eq(lam_ctx_create_from_cl(a.context, a.device, a.queue, NULL, &ctx), LAM_OK, "%s",
               lam_last_error());
  cr_assert_gt(refcount_ctx(a.context), rc0);
  cr_assert_gt(refcount_queue(a.queue), rq0);
  const lam_device_info *info = lam_ctx_device(ctx);
  char name[128] = {0};
  clGetDeviceInfo(a.device, CL_DEVICE_NAME, sizeof name - 1, name, NULL);
  cr_assert_str_eq(info->name, name);
  int want = -1;
  lam_device_choose(NULL, &want);
  cr_assert_eq(info->index, want);
  /* lamina's own tensors live in the application's context. */
  lam_tensor *t = lam_tensor_full(ctx, LAM_F32, 1, (int64_t[]){100}, 2.5);
  lam_tensor *s = lam_sum(t, 0, NULL, 0);
  double v = 0;
  cr_assert_eq(lam_tensor_item(s, &v), LAM_OK, "%s", lam_last_error());
  cr_assert_float_eq(v, 250.0, 1e-4);
  cl_mem m = NULL;
  size_t off = 1;
  cr_assert_eq(lam_tensor_cl_mem(t, &m, &off), LAM_OK);
  cl_context mc = NULL;
  clGetMemObjectInfo(m, CL_MEM_CONTEXT, sizeof mc, &mc, NULL);
  cr_assert_eq(mc, a.context);
  cr_assert_eq(off, 0);
  lam_tensor_free(s);
  lam_tensor_free(t);
  lam_ctx_free(ctx);
  /* Only lamina's own references went; the application's objects still work. */
  cr_assert_eq(refcount_ctx(a.context), rc0);
  cr_assert_eq(refcount_queue(a.queue), rq0);
  float x[4] = {1, 2, 3, 4};
  cl_mem b = app_buffer(&a, x, 4);
  clReleaseMemObject(b);
  app_close(&a);
}

Test(interop, rejects_out_of_order_and_mismatched_queues) {
  app_cl a = app_open();
  lam_ctx *ctx = (lam_ctx *)&a; /* must be reset to NULL on failure */
  cl_command_queue_properties qp = 0;
  clGetDeviceInfo(a.device, CL_DEVICE_QUEUE_PROPERTIES, sizeof qp, &qp, NULL);
  cr_assert(qp & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE, "the test device (PoCL) has out-of-order queues");
  cl_int err = CL_SUCCESS;
  cl_command_queue ooo =
      clCreateCommandQueue(a.context, a.device, CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE, &err);
  cr_assert_eq(err, CL_SUCCESS);
  tu_assert_status(lam_ctx_create_from_cl(a.context, a.device, ooo, NULL, &ctx),
                   LAM_ERR_INVALID_ARGUMENT, "out-of-order");
  cr_assert_null(ctx);
  clReleaseCommandQueue(ooo);
  /* A queue of another context. */
  app_cl b = app_open();
  tu_assert_status(lam_ctx_create_from_cl(a.context, a.device, b.queue, NULL, &ctx),
                   LAM_ERR_INVALID_ARGUMENT, "another cl_context");
  app_close(&b);
  app_close(&a);
}

Test(interop, tensor_over_application_buffer_without_copy) {
  app_cl a = app_open();
  lam_ctx *ctx = NULL;
  cr_assert_eq(lam_ctx_create_from_cl(a.context, a.device, a.queue, NULL, &ctx), LAM_OK, "%s",
               lam_last_error());
  enum { N = 40 };
  float host[N];
  for (int i = 0; i < N; i++) host[i] = (float)(i * 0.5 - 3);
  cl_mem buf = app_buffer(&a, host, N);
  lam_stats s0;
  lam_ctx_stats(ctx, &s0);
  /* Elements 4..18 as a 3x5 matrix. */
  lam_tensor *t = NULL;
  cr_assert_eq(lam_tensor_from_cl_mem(ctx, buf, 4 * sizeof(float), LAM_F32, 2, (int64_t[]){3, 5}, &t),
               LAM_OK, "%s", lam_last_error());
  cr_assert_eq(refcount_mem(buf), 2);
  lam_tensor *y = lam_mul_scalar(t, 2.0);
  float out[15];
  cr_assert_eq(lam_tensor_to_host(y, out, sizeof out), LAM_OK, "%s", lam_last_error());
  for (int i = 0; i < 15; i++) cr_assert_float_eq(out[i], 2 * host[4 + i], 1e-6, "at %d", i);
  /* No copy: a write through lamina shows in the application's buffer. */
  float ones[15];
  for (int i = 0; i < 15; i++) ones[i] = 7.0f + (float)i;
  cr_assert_eq(lam_tensor_write(t, ones, sizeof ones), LAM_OK);
  float back[N];
  cr_assert_eq(clEnqueueReadBuffer(a.queue, buf, CL_TRUE, 0, sizeof back, back, 0, NULL, NULL),
               CL_SUCCESS);
  for (int i = 0; i < N; i++)
    cr_assert_float_eq(back[i], i >= 4 && i < 19 ? ones[i - 4] : host[i], 0, "at %d", i);
  /* The wrapped buffer is not lamina's memory and never enters the pool. */
  lam_stats s1;
  lam_ctx_stats(ctx, &s1);
  cr_assert_eq(s1.live_bytes - s0.live_bytes, 256, "only y's pooled buffer counts (256-byte class)");
  lam_tensor *view = lam_tensor_slice0(t, 1, 3); /* shares the wrapped buffer */
  cr_assert_not_null(view);
  lam_tensor_free(t);
  cr_assert_eq(refcount_mem(buf), 2, "a view keeps lamina's reference");
  cl_mem vm = NULL;
  size_t voff = 0;
  cr_assert_eq(lam_tensor_cl_mem(view, &vm, &voff), LAM_OK);
  cr_assert_eq(vm, buf);
  cr_assert_eq(voff, (4 + 5) * sizeof(float));
  lam_tensor_free(view);
  cr_assert_eq(refcount_mem(buf), 1, "lamina dropped its reference");
  lam_stats s2;
  lam_ctx_stats(ctx, &s2);
  cr_assert_eq(s2.pool_bytes, s1.pool_bytes, "the application's buffer is not pooled");
  lam_tensor_free(y);
  lam_ctx_free(ctx);
  clReleaseMemObject(buf);
  app_close(&a);
}

Test(interop, tensor_from_cl_mem_checks_bounds_and_context) {
  app_cl a = app_open();
  lam_ctx *ctx = NULL;
  cr_assert_eq(lam_ctx_create_from_cl(a.context, a.device, a.queue, NULL, &ctx), LAM_OK);
  cl_mem buf = app_buffer(&a, NULL, 16); /* 64 bytes */
  lam_tensor *t = NULL;
  cr_assert_eq(lam_tensor_from_cl_mem(ctx, buf, 0, LAM_F32, 1, (int64_t[]){16}, &t), LAM_OK);
  lam_tensor_free(t);
  cr_assert_eq(lam_tensor_from_cl_mem(ctx, buf, 60, LAM_F32, 1, (int64_t[]){1}, &t), LAM_OK);
  lam_tensor_free(t);
  tu_assert_status(lam_tensor_from_cl_mem(ctx, buf, 4, LAM_F32, 1, (int64_t[]){16}, &t),
                   LAM_ERR_INVALID_ARGUMENT, "the buffer has 64");
  cr_assert_null(t);
  tu_assert_status(lam_tensor_from_cl_mem(ctx, buf, 68, LAM_F32, 0, NULL, &t),
                   LAM_ERR_INVALID_ARGUMENT, "the buffer has 64");
  tu_assert_status(lam_tensor_from_cl_mem(ctx, buf, 2, LAM_F32, 1, (int64_t[]){2}, &t),
                   LAM_ERR_INVALID_ARGUMENT, "multiple");
  tu_assert_status(lam_tensor_from_cl_mem(ctx, buf, 0, LAM_F32, 1, (int64_t[]){0}, &t),
                   LAM_ERR_SHAPE, "dims must be >= 1");
  /* A buffer of another cl_context. */
  lam_ctx *own = tu_ctx();
  lam_tensor *o = lam_tensor_zeros(own, LAM_F32, 1, (int64_t[]){16});
  cl_mem om = NULL;
  size_t oo = 0;
  cr_assert_eq(lam_tensor_cl_mem(o, &om, &oo), LAM_OK);
  tu_assert_status(lam_tensor_from_cl_mem(ctx, om, 0, LAM_F32, 1, (int64_t[]){16}, &t),
                   LAM_ERR_INVALID_ARGUMENT, "another cl_context");
  lam_tensor_free(o);
  cr_assert_eq(refcount_mem(buf), 1);
  lam_ctx_free(ctx);
  clReleaseMemObject(buf);
  app_close(&a);
  lam_ctx_free(own);
}

Test(interop, application_kernel_reads_lamina_result_on_the_same_queue) {
  app_cl a = app_open();
  lam_ctx *ctx = NULL;
  cr_assert_eq(lam_ctx_create_from_cl(a.context, a.device, a.queue, NULL, &ctx), LAM_OK);
  cl_program prog = NULL;
  cl_kernel k = app_kernel(&a, &prog);
  enum { ROWS = 7, COLS = 9 };
  lam_tensor *x = lam_tensor_arange(ctx, LAM_F32, 0, ROWS * COLS, 1);
  lam_tensor *x2 = lam_tensor_reshape(x, 2, (int64_t[]){ROWS, COLS});
  lam_tensor *shifted = lam_add_scalar(x2, -20.0);
  lam_tensor *r = lam_relu(shifted); /* max(i - 20, 0) */
  cr_assert_not_null(r, "%s", lam_last_error());
  lam_tensor *rows = lam_tensor_slice0(r, 2, 5); /* a view at a nonzero offset */
  cl_mem m = NULL;
  size_t off = 0;
  cr_assert_eq(lam_tensor_cl_mem(rows, &m, &off), LAM_OK);
  cr_assert_eq(off % sizeof(float), 0);
  int n = 3 * COLS, eoff = (int)(off / sizeof(float));
  cr_assert_eq(eoff, 2 * COLS);
  cl_mem out = app_buffer(&a, NULL, (size_t)n);
  clSetKernelArg(k, 0, sizeof m, &m);
  clSetKernelArg(k, 1, sizeof eoff, &eoff);
  clSetKernelArg(k, 2, sizeof out, &out);
  clSetKernelArg(k, 3, sizeof n, &n);
  size_t g = (size_t)n;
  cr_assert_eq(clEnqueueNDRangeKernel(a.queue, k, 1, NULL, &g, NULL, 0, NULL, NULL), CL_SUCCESS);
  /* And lamina uses the application's result in turn. */
  lam_tensor *back = NULL;
  cr_assert_eq(lam_tensor_from_cl_mem(ctx, out, 0, LAM_F32, 1, (int64_t[]){n}, &back), LAM_OK);
  lam_tensor *total = lam_sum(back, 0, NULL, 0);
  double got = 0, want = 0;
  cr_assert_eq(lam_tensor_item(total, &got), LAM_OK, "%s", lam_last_error());
  for (int i = 2 * COLS; i < 5 * COLS; i++) want += 3.0 * (i > 20 ? i - 20 : 0) + 1.0;
  cr_assert_float_eq(got, want, 1e-3);
  lam_tensor_free(total);
  lam_tensor_free(back);
  clReleaseMemObject(out);
  lam_tensor_free(rows);
  lam_tensor_free(r);
  lam_tensor_free(shifted);
  lam_tensor_free(x2);
  lam_tensor_free(x);
  clReleaseKernel(k);
  clReleaseProgram(prog);
  lam_ctx_free(ctx);
  app_close(&a);
}

Test(interop, lamina_waits_for_application_event) {
  app_cl a = app_open();
  lam_ctx *ctx = NULL;
  cr_assert_eq(lam_ctx_create_from_cl(a.context, a.device, a.queue, NULL, &ctx), LAM_OK);
  cl_int err = CL_SUCCESS;
  cl_command_queue q2 = clCreateCommandQueue(a.context, a.device, 0, &err);
  cr_assert_eq(err, CL_SUCCESS);
  float zeros[32] = {0}, data[32];
  for (int i = 0; i < 32; i++) data[i] = (float)i;
  cl_mem buf = app_buffer(&a, zeros, 32);
  cl_event gate = clCreateUserEvent(a.context, &err);
  cr_assert_eq(err, CL_SUCCESS);
  cr_assert_eq(lam_ctx_wait_cl_events(ctx, 1, &gate), LAM_OK, "%s", lam_last_error());
  /* lamina's work is enqueued now but must not run before the gate opens. */
  lam_tensor *t = NULL;
  cr_assert_eq(lam_tensor_from_cl_mem(ctx, buf, 0, LAM_F32, 1, (int64_t[]){32}, &t), LAM_OK);
  lam_tensor *y = lam_mul_scalar(t, 10.0);
  float got[32];
  lam_read_handle *h = NULL;
  cr_assert_eq(lam_tensor_read_async(y, got, sizeof got, NULL, NULL, &h), LAM_OK, "%s",
               lam_last_error());
  bool done = true;
  cr_assert_eq(lam_read_handle_poll(h, &done), LAM_OK);
  cr_assert(!done, "the read ran past the application's event");
  /* The application fills the buffer on its other queue, then opens the gate. */
  cr_assert_eq(clEnqueueWriteBuffer(q2, buf, CL_TRUE, 0, sizeof data, data, 0, NULL, NULL),
               CL_SUCCESS);
  cr_assert_eq(clSetUserEventStatus(gate, CL_COMPLETE), CL_SUCCESS);
  cr_assert_eq(lam_read_handle_wait(h), LAM_OK, "%s", lam_last_error());
  for (int i = 0; i < 32; i++) cr_assert_float_eq(got[i], 10.0f * (float)i, 0, "at %d", i);
  lam_read_handle_free(h);
  lam_tensor_free(y);
  lam_tensor_free(t);
  cr_assert_eq(lam_ctx_wait_cl_events(ctx, 0, NULL), LAM_OK);
  clReleaseEvent(gate);
  clReleaseMemObject(buf);
  clReleaseCommandQueue(q2);
  lam_ctx_free(ctx);
  app_close(&a);
}

Test(interop, application_queue_waits_for_lamina_marker) {
  app_cl a = app_open();
  /* lamina on its own queue of the application's context (a second queue). */
  cl_int err = CL_SUCCESS;
  cl_command_queue lq = clCreateCommandQueue(a.context, a.device, 0, &err);
  cr_assert_eq(err, CL_SUCCESS);
  lam_ctx *ctx = NULL;
  cr_assert_eq(lam_ctx_create_from_cl(a.context, a.device, lq, NULL, &ctx), LAM_OK);
  cl_program prog = NULL;
  cl_kernel k = app_kernel(&a, &prog);
  enum { N = 4099 };
  lam_tensor *x = lam_tensor_arange(ctx, LAM_F32, 0, N, 1);
  lam_tensor *y = lam_mul(x, x); /* i^2 */
  cl_event done = NULL;
  cr_assert_eq(lam_ctx_marker_cl_event(ctx, &done), LAM_OK, "%s", lam_last_error());
  cr_assert_not_null(done);
  cl_mem m = NULL;
  size_t off = 0;
  lam_tensor_cl_mem(y, &m, &off);
  cl_mem out = app_buffer(&a, NULL, N);
  int eoff = (int)(off / sizeof(float)), n = N;
  clSetKernelArg(k, 0, sizeof m, &m);
  clSetKernelArg(k, 1, sizeof eoff, &eoff);
  clSetKernelArg(k, 2, sizeof out, &out);
  clSetKernelArg(k, 3, sizeof n, &n);
  size_t g = N;
  cr_assert_eq(clEnqueueNDRangeKernel(a.queue, k, 1, NULL, &g, NULL, 1, &done, NULL), CL_SUCCESS);
  static float res[N];
  cr_assert_eq(clEnqueueReadBuffer(a.queue, out, CL_TRUE, 0, sizeof res, res, 0, NULL, NULL),
               CL_SUCCESS);
  for (int i = 0; i < N; i += 97)
    cr_assert_float_eq(res[i], 3.0f * (float)i * (float)i + 1.0f, 1e-2f * (float)i * (float)i + 1e-3f,
                       "at %d", i);
  cl_int es = 0;
  clGetEventInfo(done, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof es, &es, NULL);
  cr_assert_eq(es, CL_COMPLETE);
  clReleaseEvent(done);
  clReleaseMemObject(out);
  lam_tensor_free(y);
  lam_tensor_free(x);
  clReleaseKernel(k);
  clReleaseProgram(prog);
  lam_ctx_free(ctx);
  clReleaseCommandQueue(lq);
  app_close(&a);
}
