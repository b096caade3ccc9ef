/* ops/upsample.c: upsample1d/2d/3d (nearest, nearest-exact, linear /
 * bilinear / trilinear, bicubic; scale factor or output size, align_corners)
 * with their backward rule.
 *
 * The host computes per-axis tables once per call with PyTorch's own
 * arithmetic (nearest and nearest-exact in float; linear and cubic in the
 * tensor's precision, as PyTorch's opmath type), including its special cases
 * (equal sizes copy, nearest at exactly 2x halves the index), so results
 * match torch's interpolate bit for bit where the kernels' sums allow. Every
 * mode is separable: per axis, output o reads T taps (1 nearest, 2 linear,
 * 4 cubic) idx[t][o] with weights w[t][o]; cubic's taps are clamped to the
 * border as torch's upsample_get_value_bounded. The kernels of
 * cl/upsample.cl read the tables; the backward pass reuses them from the
 * tape. 1-D and 2-D inputs run as 3-D with trivial leading axes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/conv.h"
#include "ops/conv_internal.h"

lam_upsample_opts lam_upsample_defaults(void) {
  lam_upsample_opts o;
  memset(&o, 0, sizeof o);
  o.mode = LAM_UPSAMPLE_NEAREST;
  o.scale[0] = o.scale[1] = o.scale[2] = 2.0;
  return o;
}

/* Taps per output for a mode. */
static int lam__ups_taps(lam_upsample_mode m) {
  return m == LAM_UPSAMPLE_CUBIC ? 4 : m == LAM_UPSAMPLE_LINEAR ? 2 : 1;
}

/* torch's get_cubic_upsample_coefficients (A = -0.75), in double or float. */
static void lam__cubic_coeffs(double t, bool f64, double *c) {
  if (f64) {
    const double A = -0.75, x1 = t, x2 = 1.0 - t;
    const double a = x1 + 1.0, d = x2 + 1.0;
    c[0] = ((A * a - 5 * A) * a + 8 * A) * a - 4 * A;
    c[1] = ((A + 2) * x1 - (A + 3)) * x1 * x1 + 1;
    c[2] = ((A + 2) * x2 - (A + 3)) * x2 * x2 + 1;
    c[3] = ((A * d - 5 * A) * d + 8 * A) * d - 4 * A;
  } else {
    const float A = -0.75f, x1 = (float)t, x2 = 1.0f - (float)t;
    const float a = x1 + 1.0f, d = x2 + 1.0f;
    c[0] = ((A * a - 5 * A) * a + 8 * A) * a - 4 * A;
    c[1] = ((A + 2) * x1 - (A + 3)) * x1 * x1 + 1;
    c[2] = ((A + 2) * x2 - (A + 3)) * x2 * x2 + 1;
    c[3] = ((A * d - 5 * A) * d + 8 * A) * d - 4 * A;
  }
}

/* One axis with T taps: ti gets idx[T][out], olo[in], ohi[in]; l gets w[T][out].
 * has_scale: the user gave scale factor sf (used for the index mapping). */
static void lam__ups_axis(lam_upsample_mode mode, bool align, bool has_scale, double sf,
                          int64_t in, int64_t out, bool f64, int T, int32_t *ti, double *l) {
  int32_t *olo = ti + T * out, *ohi = ti + T * out + in;
  for (int64_t o = 0; o < out; o++) {
    int32_t *idx = ti + o;
    double *w = l + o;
    for (int t = 0; t < T; t++) idx[t * out] = 0, w[t * out] = 0;
    if (mode == LAM_UPSAMPLE_NEAREST || mode == LAM_UPSAMPLE_NEAREST_EXACT) {
      int64_t src;
      const float scale = has_scale ? (float)(1.0 / sf) : (float)in / (float)out;
      if (mode == LAM_UPSAMPLE_NEAREST_EXACT) {
        /* torch: floorf((dst + 0.5) * scale), the product in double */
        src = (int64_t)floorf((float)(((double)o + 0.5) * (double)scale));
      } else if (out == in) {
        src = o;
      } else if (out == 2 * in) {
        src = o >> 1;
      } else {
        src = (int64_t)floorf((float)o * scale);
      }
      if (src > in - 1) src = in - 1;
      idx[0] = (int32_t)src, w[0] = 1;
      continue;
    }
    if (mode == LAM_UPSAMPLE_LINEAR && out == in) {
      idx[0] = idx[out] = (int32_t)o;
      w[0] = 1;
      continue;
    }
    const bool cubic = mode == LAM_UPSAMPLE_CUBIC;
    double real, lam1;
    if (f64) {
      /* PyTorch's area_pixel_compute_scale: 0 only when aligning a single output. */
      double scale = 0;
      if (!align) scale = has_scale ? 1.0 / sf : (double)in / (double)out;
      else if (out > 1) scale = (double)(in - 1) / (double)(out - 1);
      real = align ? scale * (double)o : scale * ((double)o + 0.5) - 0.5;
      if (real < 0 && !cubic) real = 0;
    } else {
      float scale = 0;
      if (!align) scale = has_scale ? (float)(1.0 / sf) : (float)in / (float)out;
      else if (out > 1) scale = (float)(in - 1) / (float)(out - 1);
      float r;
      if (align) {
        r = scale * (float)o;
      } else {
        const float t = (float)o + 0.5f;
        const float u = scale * t;
        r = u - 0.5f;
      }
      if (r < 0 && !cubic) r = 0;
      real = r;
    }
    int64_t a;
    if (cubic) {
      /* torch's guard_index_and_lambda: floorf, clamped to the last index */
      a = (int64_t)floorf((float)real);
      if (a > in - 1) a = in - 1;
      lam1 = f64 ? real - (double)a : (double)((float)real - (float)a);
    } else {
      a = (int64_t)real;
      lam1 = f64 ? real - (double)a : (double)((float)real - (float)a);
    }
    if (lam1 < 0) lam1 = 0;
    if (lam1 > 1) lam1 = 1;
    if (cubic) {
      double c[4];
      lam__cubic_coeffs(lam1, f64, c);
      for (int t = 0; t < 4; t++) {
        int64_t j = a - 1 + t;
        if (j < 0) j = 0;
        if (j > in - 1) j = in - 1;
        idx[t * out] = (int32_t)j, w[t * out] = c[t];
      }
    } else {
      idx[0] = (int32_t)a;
      idx[out] = (int32_t)(a < in - 1 ? a + 1 : a);
      w[out] = lam1;
      w[0] = f64 ? 1.0 - lam1 : (double)(1.0f - (float)lam1);
    }
  }
  /* Outputs reading input i lie in [olo, ohi) (every tap index is
   * non-decreasing in o; the kernel still checks each one). */
  for (int64_t i = 0; i < in; i++) olo[i] = (int32_t)out, ohi[i] = 0;
  for (int64_t o = 0; o < out; o++)
    for (int t = 0; t < T; t++) {
      const int32_t i = ti[t * out + o];
      if (o < olo[i]) olo[i] = (int32_t)o;
      if (o + 1 > ohi[i]) ohi[i] = (int32_t)(o + 1);
    }
  for (int64_t i = 0; i < in; i++)
    if (ohi[i] == 0) olo[i] = 0; /* read by no output */
}

/* v (node->i): planes, ID, IH, IW, OD, OH, OW, T, int table offsets (3),
 * weight table offsets (3). saved: ti, tr. */
static lam_status lam__ups_launch(lam_ctx *ctx, const char *kname, lam_tensor *src, lam_tensor *dst,
                                  lam_tensor *ti, lam_tensor *tr, const int64_t *v, const char *fn) {
  cl_kernel k;
  lam_status st = lam__kernel_dt(ctx, "upsample", kname, src->dtype, NULL, &k);
  if (st != LAM_OK) return st;
  const bool fwd = strcmp(kname, "upsample_fwd") == 0;
  const int64_t rows = v[0] * (fwd ? v[4] * v[5] : v[1] * v[2]);
  const int64_t gs[8] = {v[1], v[2], v[3], v[4], v[5], v[6], v[7], 0};
  const int64_t offs[8] = {v[8], v[9], v[10], v[11], v[12], v[13], 0, 0};
  lam__arg a[] = {LAM__ARG_T(src), LAM__ARG_T(dst), LAM__ARG_T(ti), LAM__ARG_T(tr),
                  lam__arg_int(rows), lam__arg_int8(8, gs), lam__arg_int8(8, offs)};
  return lam__launch_rows(ctx, k, fn, 11, a, rows);
}

static lam_status lam__ups_backward(lam__node *node, lam_tensor *gy, lam_tensor **gin) {
  if (!lam__node_needs(node, 0)) return LAM_OK;
  lam_tensor *dx = lam__tensor_new(gy->ctx, gy->dtype, node->in_ndim[0], node->in_shape[0], node->op);
  if (!dx) return lam_last_status();
  lam_status st = lam__ups_launch(gy->ctx, "upsample_bwd", gy, dx, node->saved[0], node->saved[1],
                                  node->i, node->op);
  if (st != LAM_OK) {
    lam_tensor_free(dx);
    return st;
  }
  gin[0] = dx;
  return LAM_OK;
}

static lam_tensor *lam__upsample(int nsp, lam_tensor *x, const lam_upsample_opts *opts,
                                 const char *fn) {
  static const char *const xdesc[] = {"", "[batch, channels, length]", "[batch, channels, h, w]",
                                      "[batch, channels, d, h, w]"};
  if (!x) return lam__null_input(fn, "x");
  if (lam__conv_check_float(x->ctx, x, fn, "x") != LAM_OK) return NULL;
  char b[LAM__SHAPE_STR];
  if (x->ndim != nsp + 2)
    return lam__fail(LAM_ERR_SHAPE, "%s: x must be %s, got %s", fn, xdesc[nsp],
                     lam__shape_str(x->ndim, x->shape, b)), NULL;
  lam_upsample_opts def = lam_upsample_defaults();
  const lam_upsample_opts *o = opts ? opts : &def;
  if ((int)o->mode < 0 || o->mode > LAM_UPSAMPLE_CUBIC)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: unknown mode %d", fn, (int)o->mode), NULL;
  if (o->mode == LAM_UPSAMPLE_CUBIC && nsp != 2)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                     "%s: cubic mode is for 2-D inputs only (torch's bicubic)", fn), NULL;
  if (o->align_corners && o->mode != LAM_UPSAMPLE_LINEAR && o->mode != LAM_UPSAMPLE_CUBIC)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                     "%s: align_corners is only for linear and cubic modes", fn), NULL;
  int64_t in[3] = {1, 1, 1}, out[3] = {1, 1, 1};
  bool has_scale[3] = {false, false, false};
  double sf[3] = {1, 1, 1};
  for (int i = 0; i < nsp; i++) {
    const int a = 3 - nsp + i;
    in[a] = x->shape[2 + i];
    if (o->size[i] < 0)
      return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: size %lld of spatial dim %d must be >= 0", fn,
                       (long long)o->size[i], i), NULL;
    if (o->size[i] > 0) {
      if (o->size[i] > LAM__MAX_NUMEL)
        return lam__fail(LAM_ERR_SHAPE, "%s: size %lld of spatial dim %d is out of range", fn,
                         (long long)o->size[i], i), NULL;
      out[a] = o->size[i];
    } else {
      const double s = o->scale[i] == 0 ? 2.0 : o->scale[i];
      if (!(s > 0) || !isfinite(s))
        return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: scale %g of spatial dim %d must be > 0", fn,
                         s, i), NULL;
      const double v = floor((double)in[a] * s);
      if (v < 1 || v > (double)LAM__MAX_NUMEL)
        return lam__fail(LAM_ERR_SHAPE, "%s: output size %g of spatial dim %d (input %lld x scale %g) is out of range",
                         fn, v, i, (long long)in[a], s), NULL;
      out[a] = (int64_t)v;
      has_scale[a] = true;
      sf[a] = s;
    }
  }
  int64_t ys[5] = {x->shape[0], x->shape[1]}, numel;
  for (int i = 0; i < nsp; i++) ys[2 + i] = out[3 - nsp + i];
  if (lam__check_shape(fn, nsp + 2, ys, &numel) != LAM_OK) return NULL;

  const int T = lam__ups_taps(o->mode);
  int64_t ni = 0, nr = 0, tio[3], tro[3];
  for (int a = 0; a < 3; a++) {
    tio[a] = ni, tro[a] = nr;
    ni += T * out[a] + 2 * in[a];
    nr += T * out[a];
  }
  int32_t *ti = malloc((size_t)ni * sizeof *ti);
  double *l = malloc((size_t)nr * sizeof *l);
  void *lr = malloc((size_t)nr * sizeof(double));
  if (!ti || !l || !lr) {
    free(ti), free(l), free(lr);
    return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn), NULL;
  }
  const bool f64 = x->dtype == LAM_F64;
  for (int a = 0; a < 3; a++)
    lam__ups_axis(o->mode, o->align_corners, has_scale[a], sf[a], in[a], out[a], f64, T,
                  ti + tio[a], l + tro[a]);
  for (int64_t i = 0; i < nr; i++) {
    if (f64) ((double *)lr)[i] = l[i];
    else ((float *)lr)[i] = (float)l[i];
  }
  lam_ctx *ctx = x->ctx;
  lam_tensor *tti = lam_tensor_from_host(ctx, LAM_I32, 1, &ni, ti);
  lam_tensor *ttr = tti ? lam_tensor_from_host(ctx, x->dtype, 1, &nr, lr) : NULL;
  free(ti), free(l), free(lr);
  lam_tensor *y = ttr ? lam__tensor_new(ctx, x->dtype, nsp + 2, ys, fn) : NULL;
  const int64_t v[14] = {x->shape[0] * x->shape[1], in[0], in[1], in[2], out[0], out[1], out[2], T,
                         tio[0], tio[1], tio[2], tro[0], tro[1], tro[2]};
  if (!y || lam__ups_launch(ctx, "upsample_fwd", x, y, tti, ttr, v, fn) != LAM_OK) {
    lam_tensor_free(y), lam_tensor_free(tti), lam_tensor_free(ttr);
    return NULL;
  }
  lam__node *node = lam__tape_record(y, fn, lam__ups_backward, 1, &x);
  if (node) {
    lam__node_save(node, tti);
    lam__node_save(node, ttr);
    memcpy(node->i, v, sizeof v);
  }
  lam_tensor_free(tti), lam_tensor_free(ttr);
  return y;
}

lam_tensor *lam_upsample1d(lam_tensor *x, const lam_upsample_opts *opts) {
  return lam__upsample(1, x, opts, "lam_upsample1d");
}

lam_tensor *lam_upsample2d(lam_tensor *x, const lam_upsample_opts *opts) {
  return lam__upsample(2, x, opts, "lam_upsample2d");
}

lam_tensor *lam_upsample3d(lam_tensor *x, const lam_upsample_opts *opts) {
  return lam__upsample(3, x, opts, "lam_upsample3d");
}
