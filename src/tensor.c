/* tensor.c: creating, viewing, copying, casting and reading tensors.
 * Fills and copies use clEnqueueFillBuffer / clEnqueueCopyBuffer, which need
 * no kernel build; casts and arange use cl/tensor.cl. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensor_internal.h"

size_t lam_dtype_size(lam_dtype dtype) {
  switch (dtype) {
    case LAM_F32: return 4;
    case LAM_F16: return 2;
    case LAM_F64: return 8;
    case LAM_I32: return 4;
    case LAM_U8: return 1;
  }
  return 0;
}

const char *lam_dtype_name(lam_dtype dtype) {
  switch (dtype) {
    case LAM_F32: return "f32";
    case LAM_F16: return "f16";
    case LAM_F64: return "f64";
    case LAM_I32: return "i32";
    case LAM_U8: return "u8";
  }
  return "unknown";
}

int lam_dtype_is_float(lam_dtype dtype) {
  return dtype == LAM_F32 || dtype == LAM_F16 || dtype == LAM_F64;
}

int lam__axis(int axis, int ndim) {
  if (axis < 0) axis += ndim;
  return (axis < 0 || axis >= ndim) ? -1 : axis;
}

void lam__strides(int ndim, const int64_t *shape, int64_t *strides) {
  int64_t s = 1;
  for (int i = ndim - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
}

lam_status lam__check_shape(const char *fn, int ndim, const int64_t *shape, int64_t *numel) {
  if (ndim < 0 || ndim > LAM_MAX_DIMS)
    return lam__fail(LAM_ERR_SHAPE, "%s: ndim %d is outside 0..%d", fn, ndim, LAM_MAX_DIMS);
  if (ndim > 0 && !shape) return lam__fail(LAM_ERR_NULL, "%s: shape is NULL", fn);
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 1) {
      char buf[LAM__SHAPE_STR];
      return lam__fail(LAM_ERR_SHAPE, "%s: dim %d of shape %s is %lld; dims must be >= 1", fn, i,
                       lam__shape_str(ndim, shape, buf), (long long)shape[i]);
    }
    if (n > LAM__MAX_NUMEL / shape[i]) {
      char buf[LAM__SHAPE_STR];
      return lam__fail(LAM_ERR_OUT_OF_MEMORY, "%s: shape %s has 2^31 or more elements", fn,
                       lam__shape_str(ndim, shape, buf));
    }
    n *= shape[i];
  }
  if (numel) *numel = n;
  return LAM_OK;
}

lam_status lam__broadcast_shapes(const char *fn, int na, const int64_t *sa, int nb,
                                 const int64_t *sb, int *out_ndim, int64_t *out) {
  int n = na > nb ? na : nb;
  for (int i = 0; i < n; i++) {
    int ia = na - n + i, ib = nb - n + i;
    int64_t da = ia >= 0 ? sa[ia] : 1, db = ib >= 0 ? sb[ib] : 1;
    if (da != db && da != 1 && db != 1) {
      char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR];
      return lam__fail(LAM_ERR_SHAPE, "%s: shapes %s and %s do not broadcast (axis %d: %lld vs %lld)",
                       fn, lam__shape_str(na, sa, b1), lam__shape_str(nb, sb, b2), i,
                       (long long)da, (long long)db);
    }
    out[i] = da == 1 ? db : da;
  }
  *out_ndim = n;
  return LAM_OK;
}

lam_tensor *lam__tensor_new(lam_ctx *ctx, lam_dtype dtype, int ndim, const int64_t *shape,
                            const char *fn) {
  if (!ctx) {
    lam__fail(LAM_ERR_NULL, "%s: ctx is NULL", fn);
    return NULL;
  }
  int64_t numel = 0;
  if (lam__check_dtype_supported(ctx, dtype, fn) != LAM_OK) return NULL;
  if (lam__check_shape(fn, ndim, shape, &numel) != LAM_OK) return NULL;
  lam_tensor *t = calloc(1, sizeof *t);
  if (!t) {
    lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
    return NULL;
  }
  t->buf = lam__buffer_acquire(ctx, (size_t)numel * lam_dtype_size(dtype), fn);
  if (!t->buf) {
    free(t);
    return NULL;
  }
  t->ctx = ctx;
  t->dtype = dtype;
  t->ndim = ndim;
  for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
  t->numel = numel;
  t->refs = 1;
  t->tape_slot = -1;
  ctx->stats.live_tensors++;
  return t;
}

lam_tensor *lam__tensor_view(lam_tensor *t, size_t offset, int ndim, const int64_t *shape) {
  lam_tensor *v = calloc(1, sizeof *v);
  if (!v) {
    lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "lam_tensor view: out of host memory");
    return NULL;
  }
  *v = *t;
  v->offset = offset;
  v->ndim = ndim;
  v->numel = 1;
  for (int i = 0; i < ndim; i++) {
    v->shape[i] = shape[i];
    v->numel *= shape[i];
  }
  v->refs = 1;
  v->tape_slot = -1;
  v->tape_id = 0;
  t->buf->refs++;
  t->ctx->stats.live_tensors++;
  return v;
}

lam_tensor *lam_tensor_retain(lam_tensor *t) {
  if (t) t->refs++;
  return t;
}

void lam_tensor_free(lam_tensor *t) {
  if (!t || --t->refs > 0) return;
  lam_ctx *ctx = t->ctx;
  if (--t->buf->refs == 0) lam__buffer_release(ctx, t->buf);
  ctx->stats.live_tensors--;
  free(t);
}

lam_status lam_tensor_write(lam_tensor *t, const void *src, size_t src_bytes) {
  if (!t || !src)
    return lam__fail(LAM_ERR_NULL, "lam_tensor_write: %s is NULL", t ? "src" : "t");
  size_t nbytes = lam_tensor_nbytes(t);
  if (src_bytes != nbytes)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                     "lam_tensor_write: %zu bytes given, tensor holds %zu (%lld x %s)", src_bytes,
                     nbytes, (long long)t->numel, lam_dtype_name(t->dtype));
  cl_int err = clEnqueueWriteBuffer(t->ctx->queue, t->buf->mem, CL_TRUE,
                                    t->offset * lam_dtype_size(t->dtype), nbytes, src, 0, NULL,
                                    NULL);
  return err == CL_SUCCESS ? LAM_OK : lam__cl_fail(err, "lam_tensor_write", "clEnqueueWriteBuffer");
}

lam_tensor *lam_tensor_empty(lam_ctx *ctx, lam_dtype dtype, int ndim, const int64_t *shape) {
  return lam__tensor_new(ctx, dtype, ndim, shape, "lam_tensor_empty");
}

lam_tensor *lam_tensor_from_host(lam_ctx *ctx, lam_dtype dtype, int ndim, const int64_t *shape,
                                 const void *data) {
  if (!data) return lam__fail(LAM_ERR_NULL, "lam_tensor_from_host: data is NULL"), NULL;
  lam_tensor *t = lam__tensor_new(ctx, dtype, ndim, shape, "lam_tensor_from_host");
  if (!t) return NULL;
  if (lam_tensor_write(t, data, lam_tensor_nbytes(t)) != LAM_OK) {
    lam_tensor_free(t);
    return NULL;
  }
  return t;
}

/* Converts a double to dtype's bytes in out (returns the element size). */
static size_t lam__encode(lam_dtype dtype, double v, unsigned char *out) {
  switch (dtype) {
    case LAM_F32: { float f = (float)v; memcpy(out, &f, 4); return 4; }
    case LAM_F64: memcpy(out, &v, 8); return 8;
    case LAM_I32: { int32_t i = (int32_t)v; memcpy(out, &i, 4); return 4; }
    case LAM_U8: out[0] = (unsigned char)(int)v; return 1;
    case LAM_F16: {
      /* float -> IEEE half, round to nearest even (host side, no fp16 on host). */
      float f = (float)v;
      uint32_t x;
      memcpy(&x, &f, 4);
      uint32_t sign = (x >> 16) & 0x8000u, exp = (x >> 23) & 0xffu, man = x & 0x7fffffu;
      uint16_t h;
      if (exp == 0xff) h = (uint16_t)(sign | 0x7c00u | (man ? 0x200u : 0));
      else {
        int e = (int)exp - 127 + 15;
        if (e >= 31) h = (uint16_t)(sign | 0x7c00u);
        else if (e <= 0) {
          if (e < -10) h = (uint16_t)sign;
          else {
            man |= 0x800000u;
            int shift = 14 - e;
            uint32_t hm = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
            if (rem > half || (rem == half && (hm & 1))) hm++;
            h = (uint16_t)(sign | hm);
          }
        } else {
          uint32_t hm = man >> 13, rem = man & 0x1fffu;
          uint32_t r = sign | ((uint32_t)e << 10) | hm;
          if (rem > 0x1000u || (rem == 0x1000u && (hm & 1))) r++;
          h = (uint16_t)r;
        }
      }
      memcpy(out, &h, 2);
      return 2;
    }
  }
  return 0;
}

static lam_status lam__fill(lam_tensor *t, double value, const char *fn) {
  unsigned char pattern[8];
  size_t es = lam__encode(t->dtype, value, pattern);
  cl_int err = clEnqueueFillBuffer(t->ctx->queue, t->buf->mem, pattern, es, t->offset * es,
                                   (size_t)t->numel * es, 0, NULL, NULL);
  return err == CL_SUCCESS ? LAM_OK : lam__cl_fail(err, fn, "clEnqueueFillBuffer");
}

/* Integer dtypes hold only values that convert without undefined behaviour:
 * finite and, after truncation toward zero (as C and torch.full), in range. */
static lam_status lam__check_fill_value(lam_dtype dtype, double value, const char *fn) {
  bool ok = true;
  if (dtype == LAM_I32) ok = value > -2147483649.0 && value < 2147483648.0;
  else if (dtype == LAM_U8) ok = value > -1.0 && value < 256.0;
  if (!ok) /* NaN fails both comparisons */
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: value %g does not fit dtype %s", fn, value,
                     lam_dtype_name(dtype));
  return LAM_OK;
}

static lam_tensor *lam__full(lam_ctx *ctx, lam_dtype dtype, int ndim, const int64_t *shape,
                             double value, const char *fn) {
  if (!ctx) return lam__null_input(fn, "ctx");
  if (lam__check_fill_value(dtype, value, fn) != LAM_OK) return NULL;
  lam_tensor *t = lam__tensor_new(ctx, dtype, ndim, shape, fn);
  if (t && lam__fill(t, value, fn) != LAM_OK) {
    lam_tensor_free(t);
    return NULL;
  }
  return t;
}

lam_tensor *lam_tensor_full(lam_ctx *ctx, lam_dtype dtype, int ndim, const int64_t *shape,
                            double value) {
  return lam__full(ctx, dtype, ndim, shape, value, "lam_tensor_full");
}

lam_tensor *lam_tensor_zeros(lam_ctx *ctx, lam_dtype dtype, int ndim, const int64_t *shape) {
  lam_tensor *t = lam__tensor_new(ctx, dtype, ndim, shape, "lam_tensor_zeros");
  if (t && lam__fill(t, 0.0, "lam_tensor_zeros") != LAM_OK) {
    lam_tensor_free(t);
    return NULL;
  }
  return t;
}

lam_tensor *lam_tensor_scalar(lam_ctx *ctx, lam_dtype dtype, double value) {
  return lam__full(ctx, dtype, 0, NULL, value, "lam_tensor_scalar");
}

lam_tensor *lam_tensor_zeros_like(const lam_tensor *like) {
  if (!like) return lam__null_input("lam_tensor_zeros_like", "like");
  return lam_tensor_zeros(like->ctx, like->dtype, like->ndim, like->shape);
}

lam_tensor *lam_tensor_full_like(const lam_tensor *like, double value) {
  if (!like) return lam__null_input("lam_tensor_full_like", "like");
  return lam__full(like->ctx, like->dtype, like->ndim, like->shape, value, "lam_tensor_full_like");
}

lam_tensor *lam_tensor_arange(lam_ctx *ctx, lam_dtype dtype, double start, double stop,
                              double step) {
  const char *fn = "lam_tensor_arange";
  if (!ctx) return lam__null_input(fn, "ctx");
  if (step == 0 || !isfinite(start) || !isfinite(stop) || !isfinite(step))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: start %g, stop %g, step %g: step must be "
                     "nonzero and all finite", fn, start, stop, step), NULL;
  double count = ceil((stop - start) / step);
  if (count < 1)
    return lam__fail(LAM_ERR_SHAPE, "%s: start %g, stop %g, step %g give no elements", fn, start,
                     stop, step), NULL;
  if (count > (double)LAM__MAX_NUMEL)
    return lam__fail(LAM_ERR_OUT_OF_MEMORY, "%s: %g elements is too many", fn, count), NULL;
  int64_t n = (int64_t)count;
  lam_tensor *t = lam__tensor_new(ctx, dtype, 1, &n, fn);
  if (!t) return NULL;
  cl_kernel k;
  lam_status st = lam__kernel_dt(ctx, "tensor", "arange", dtype, NULL, &k);
  if (st == LAM_OK) {
    lam__arg args[] = {LAM__ARG_T(t), lam__arg_int(n), lam__arg_real(dtype, start),
                       lam__arg_real(dtype, step)};
    st = lam__launch_1d(ctx, k, fn, 5, args, (size_t)n);
  }
  if (st != LAM_OK) {
    lam_tensor_free(t);
    return NULL;
  }
  return t;
}

lam_tensor *lam_tensor_copy(const lam_tensor *t) {
  if (!t) return lam__null_input("lam_tensor_copy", "t");
  lam_tensor *c = lam__tensor_new(t->ctx, t->dtype, t->ndim, t->shape, "lam_tensor_copy");
  if (!c) return NULL;
  size_t es = lam_dtype_size(t->dtype);
  cl_int err = clEnqueueCopyBuffer(t->ctx->queue, t->buf->mem, c->buf->mem, t->offset * es, 0,
                                   (size_t)t->numel * es, 0, NULL, NULL);
  if (err != CL_SUCCESS) {
    lam__cl_fail(err, "lam_tensor_copy", "clEnqueueCopyBuffer");
    lam_tensor_free(c);
    return NULL;
  }
  return c;
}

lam_tensor *lam_tensor_cast(const lam_tensor *t, lam_dtype dtype) {
  const char *fn = "lam_tensor_cast";
  if (!t) return lam__null_input(fn, "t");
  if (lam__check_dtype_supported(t->ctx, dtype, fn) != LAM_OK) return NULL;
  if (dtype == t->dtype) return lam_tensor_copy(t);
  lam_tensor *y = lam__tensor_new(t->ctx, dtype, t->ndim, t->shape, fn);
  if (!y) return NULL;
  char extra[64];
  /* An f16 source is storage only (read with vload_half) on every device. */
  snprintf(extra, sizeof extra, "-DSRC=%s%s", lam__cl_type(t->dtype),
           t->dtype == LAM_F64   ? " -DLAM_SRC_F64"
           : t->dtype == LAM_F16 ? " -DLAM_SRC_F16_STORAGE"
                                 : "");
  cl_kernel k;
  lam_status st = lam__kernel_dt(t->ctx, "tensor", "cast", dtype, extra, &k);
  if (st == LAM_OK) {
    lam__arg args[] = {LAM__ARG_T(t), LAM__ARG_T(y), lam__arg_int(t->numel)};
    st = lam__launch_1d(t->ctx, k, fn, 5, args, (size_t)t->numel);
  }
  if (st != LAM_OK) {
    lam_tensor_free(y);
    return NULL;
  }
  return y;
}

lam_status lam_tensor_to_host(const lam_tensor *t, void *dst, size_t dst_bytes) {
  if (!t || !dst)
    return lam__fail(LAM_ERR_NULL, "lam_tensor_to_host: %s is NULL", t ? "dst" : "t");
  size_t nbytes = lam_tensor_nbytes(t);
  if (dst_bytes != nbytes)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                     "lam_tensor_to_host: destination holds %zu bytes, tensor has %zu (%lld x %s)",
                     dst_bytes, nbytes, (long long)t->numel, lam_dtype_name(t->dtype));
  cl_int err = clEnqueueReadBuffer(t->ctx->queue, t->buf->mem, CL_TRUE,
                                   t->offset * lam_dtype_size(t->dtype), nbytes, dst, 0, NULL,
                                   NULL);
  return err == CL_SUCCESS ? LAM_OK : lam__cl_fail(err, "lam_tensor_to_host", "clEnqueueReadBuffer");
}

static double lam__half_to_double(uint16_t h) {
  int e = (h >> 10) & 0x1f, m = h & 0x3ff;
  double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(m | 0x400, e - 25);
  return (h & 0x8000) ? -v : v;
}

lam_status lam_tensor_item(const lam_tensor *t, double *out) {
  if (!t || !out) return lam__fail(LAM_ERR_NULL, "lam_tensor_item: %s is NULL", t ? "out" : "t");
  if (t->numel != 1) {
    char buf[LAM__SHAPE_STR];
    return lam__fail(LAM_ERR_SHAPE, "lam_tensor_item: tensor of shape %s has %lld elements, not 1",
                     lam__shape_str(t->ndim, t->shape, buf), (long long)t->numel);
  }
  unsigned char b[8];
  lam_status st = lam_tensor_to_host(t, b, lam_dtype_size(t->dtype));
  if (st != LAM_OK) return st;
  switch (t->dtype) {
    case LAM_F32: { float f; memcpy(&f, b, 4); *out = f; break; }
    case LAM_F64: memcpy(out, b, 8); break;
    case LAM_I32: { int32_t i; memcpy(&i, b, 4); *out = i; break; }
    case LAM_U8: *out = b[0]; break;
    case LAM_F16: { uint16_t h; memcpy(&h, b, 2); *out = lam__half_to_double(h); break; }
  }
  return LAM_OK;
}

int lam_tensor_ndim(const lam_tensor *t) { return t ? t->ndim : -1; }
const int64_t *lam_tensor_shape(const lam_tensor *t) { return t ? t->shape : NULL; }
int64_t lam_tensor_dim(const lam_tensor *t, int axis) {
  if (!t) return -1;
  int a = lam__axis(axis, t->ndim);
  return a < 0 ? -1 : t->shape[a];
}
int64_t lam_tensor_numel(const lam_tensor *t) { return t ? t->numel : 0; }
size_t lam_tensor_nbytes(const lam_tensor *t) {
  return t ? (size_t)t->numel * lam_dtype_size(t->dtype) : 0;
}
lam_dtype lam_tensor_dtype(const lam_tensor *t) { return t ? t->dtype : LAM_F32; }
lam_ctx *lam_tensor_ctx(const lam_tensor *t) { return t ? t->ctx : NULL; }
int lam_tensor_same_shape(const lam_tensor *a, const lam_tensor *b) {
  if (!a || !b || a->ndim != b->ndim) return 0;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i]) return 0;
  return 1;
}
