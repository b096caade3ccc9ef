/* runtime/launch.c: kernel arguments, dtype build options and enqueueing
 * (N-D, 1-D, and one work-item per row). */
#include <stdio.h>
#include <string.h>

#include "runtime/runtime_internal.h"

const char *lam__cl_type(lam_dtype dtype) {
  switch (dtype) {
    case LAM_F32: return "float";
    case LAM_F64: return "double";
    case LAM_F16: return "half";
    case LAM_I32: return "int";
    case LAM_U8: return "uchar";
  }
  return "void";
}

lam_status lam__check_dtype_supported(lam_ctx *ctx, lam_dtype dtype, const char *fn) {
  if ((int)dtype < 0 || dtype > LAM_U8)
    return lam__fail(LAM_ERR_DTYPE, "%s: unknown dtype %d", fn, (int)dtype);
  if (dtype == LAM_F64 && !ctx->info.fp64)
    return lam__fail(LAM_ERR_UNSUPPORTED, "%s: dtype f64 is not supported by %s (no cl_khr_fp64)",
                     fn, ctx->info.name);
  /* f16 is a storage dtype on every device (core vload_half/vstore_half);
   * lam__kernel_dt decides per kernel family whether it computes on it. */
  return LAM_OK;
}

/* How each kernel family (cl/<family>.cl) treats f16. STORAGE: every
 * kernel touches REAL memory only through LOAD/STORE/MOVE/VLOADn/VSTOREn
 * (cl/common.clh), so the family builds with -DLAM_F16_STORAGE on every
 * device: halves are read with vload_half, computed in float and written
 * with vstore_half_rte. The same build is used where cl_khr_fp16 exists, so
 * results do not depend on the device. EXT: the family builds with
 * REAL=half (ACC=float) and needs cl_khr_fp16. Families not listed (gemm:
 * matmul casts f16 operands to f32 instead, src/ops/matmul.c; attention,
 * whose kernels do not build with REAL=half) reject f16. Keep in step with
 * docs/half-precision.md. */
enum { LAM__F16_NONE, LAM__F16_STORAGE, LAM__F16_EXT };
static int lam__f16_mode(const char *family) {
  static const char *const storage[] = {"tensor", "shape", "elementwise", "reduce", "norm",
                                        "autodiff", "index"};
  static const char *const ext[] = {"conv", "pool", "upsample", "rnn", "random", "optim", "ctc"};
  for (size_t i = 0; i < sizeof storage / sizeof *storage; i++)
    if (strcmp(family, storage[i]) == 0) return LAM__F16_STORAGE;
  for (size_t i = 0; i < sizeof ext / sizeof *ext; i++)
    if (strcmp(family, ext[i]) == 0) return LAM__F16_EXT;
  return LAM__F16_NONE;
}

size_t lam__acc_size(lam_dtype dtype) {
  return dtype == LAM_F64 ? sizeof(cl_double) : sizeof(cl_float); /* float, int: 4 bytes */
}

/* REAL is the storage type, ACC the type arithmetic is done in (halves are
 * computed in float), and one LAM_<DTYPE> macro names the dtype. */
lam_status lam__kernel_dt(lam_ctx *ctx, const char *family, const char *name, lam_dtype dtype,
                          const char *extra, cl_kernel *out) {
  lam_status st = lam__check_dtype_supported(ctx, dtype, name);
  if (st != LAM_OK) return st;
  static const char *const opts[] = {
      [LAM_F32] = "-DREAL=float -DACC=float -DLAM_F32",
      [LAM_F16] = "-DREAL=half -DACC=float -DLAM_F16",
      [LAM_F64] = "-DREAL=double -DACC=double -DLAM_F64",
      [LAM_I32] = "-DREAL=int -DACC=int -DLAM_I32",
      [LAM_U8] = "-DREAL=uchar -DACC=int -DLAM_U8",
  };
  if ((unsigned)dtype >= sizeof opts / sizeof *opts) return LAM_ERR_DTYPE; /* checked above */
  const char *base = opts[dtype];
  if (dtype == LAM_F16) {
    int mode = lam__f16_mode(family);
    if (mode == LAM__F16_STORAGE) base = "-DREAL=half -DACC=float -DLAM_F16 -DLAM_F16_STORAGE";
    else if (mode == LAM__F16_NONE || !ctx->info.fp16)
      return lam__fail(LAM_ERR_DTYPE,
                       "%s (%s kernels): f16 is storage-only here: these kernels compute on f16 "
                       "%s; cast to f32 first (lam_tensor_cast)",
                       name, family,
                       mode == LAM__F16_NONE ? "on no device" : "only where cl_khr_fp16 is reported");
  }
  char options[512];
  snprintf(options, sizeof options, "%s%s%s", base, extra && *extra ? " " : "",
           extra ? extra : "");
  return lam__kernel_get(ctx, family, options, name, out);
}

lam__arg lam__arg_int(int64_t v) {
  lam__arg a = {sizeof(cl_int), false, {0}};
  cl_int x = (cl_int)v;
  memcpy(a.value, &x, sizeof x);
  return a;
}

lam__arg lam__arg_long(int64_t v) {
  lam__arg a = {sizeof(cl_long), false, {0}};
  cl_long x = (cl_long)v;
  memcpy(a.value, &x, sizeof x);
  return a;
}

lam__arg lam__arg_uint(uint32_t v) {
  lam__arg a = {sizeof(cl_uint), false, {0}};
  cl_uint x = (cl_uint)v;
  memcpy(a.value, &x, sizeof x);
  return a;
}

lam__arg lam__arg_float(double v) {
  lam__arg a = {sizeof(cl_float), false, {0}};
  cl_float x = (cl_float)v;
  memcpy(a.value, &x, sizeof x);
  return a;
}

lam__arg lam__arg_real(lam_dtype dtype, double v) {
  if (dtype == LAM_F64) {
    lam__arg a = {sizeof(cl_double), false, {0}};
    memcpy(a.value, &v, sizeof v);
    return a;
  }
  if (dtype == LAM_I32 || dtype == LAM_U8) return lam__arg_int((int64_t)v);
  return lam__arg_float(v); /* f32, and f16 kernels take float scalars (ACC) */
}

lam__arg lam__arg_mem(cl_mem mem) {
  lam__arg a = {sizeof(cl_mem), false, {0}};
  memcpy(a.value, &mem, sizeof mem);
  return a;
}

lam__arg lam__arg_int8(int n, const int64_t *v) {
  lam__arg a = {sizeof(cl_int8), false, {0}};
  cl_int8 x;
  memset(&x, 0, sizeof x);
  for (int i = 0; i < n && i < 8; i++) x.s[i] = (cl_int)v[i];
  memcpy(a.value, &x, sizeof x);
  return a;
}

lam__arg lam__arg_local(size_t bytes) {
  lam__arg a = {bytes, true, {0}};
  return a;
}

lam_status lam__launch(lam_ctx *ctx, cl_kernel k, const char *fn, int nargs, const lam__arg *args,
                       cl_uint dims, const size_t *global, const size_t *local) {
  for (int i = 0; i < nargs; i++) {
    cl_int err = clSetKernelArg(k, (cl_uint)i, args[i].size, args[i].local ? NULL : args[i].value);
    if (err != CL_SUCCESS) {
      char what[64];
      snprintf(what, sizeof what, "clSetKernelArg(%d)", i);
      return lam__cl_fail(err, fn, what);
    }
  }
  cl_int err = clEnqueueNDRangeKernel(ctx->queue, k, dims, NULL, global, local, 0, NULL, NULL);
  if (err != CL_SUCCESS) return lam__cl_fail(err, fn, "clEnqueueNDRangeKernel");
  return LAM_OK;
}

/* One work-group size for every length, small ones included: the kernels
 * guard i < n, and PoCL compiles a work-group function per kernel and local
 * size at the first enqueue (~0.15 s each), so a local size that followed n
 * below wg_1d cost a compile per distinct small length (12 of the 43
 * compiles of the cold quickstart); the idle work-items of a small launch
 * cost nothing measurable. */
lam_status lam__launch_1d(lam_ctx *ctx, cl_kernel k, const char *fn, int nargs,
                          const lam__arg *args, size_t n) {
  size_t local = ctx->wg_1d;
  size_t global = (n + local - 1) / local * local;
  if (global == 0) global = local;
  return lam__launch(ctx, k, fn, nargs, args, 1, &global, &local);
}

lam_status lam__launch_rows(lam_ctx *ctx, cl_kernel k, const char *fn, int nargs,
                            const lam__arg *args, int64_t rows) {
  /* Work-groups small enough that every core gets several (a row is a lot
   * of work), at most 64 items. */
  const int64_t cu = ctx->info.compute_units ? ctx->info.compute_units : 1;
  size_t local = 1;
  while (local < 64 && (int64_t)local * 2 * 8 * cu <= rows) local *= 2;
  const size_t maxwg = ctx->info.max_work_group_size ? ctx->info.max_work_group_size : 1;
  while (local > maxwg) local /= 2;
  size_t global = ((size_t)rows + local - 1) / local * local;
  return lam__launch(ctx, k, fn, nargs, args, 1, &global, &local);
}
