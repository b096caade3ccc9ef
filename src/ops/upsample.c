/* ops/upsample.c: upsample1d/2d (nearest and linear/bilinear, scale factor
 * or output size, align_corners) with their backward rule.
 *
 * The host computes per-axis tables once per call with PyTorch's own
 * arithmetic (nearest in float; linear in the tensor's precision, as
 * PyTorch's opmath type), including its special cases (equal sizes copy,
 * nearest at exactly 2x halves the index), so results match torch's
 * interpolate bit for bit where the kernels' sums allow. The kernels of
 * cl/upsample.cl read the tables; the backward pass reuses them from the
 * tape. 1-D inputs run as 2-D with a trivial H axis. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/conv.h"
#include "ops/conv_internal.h"

lam_upsample_opts lam_upsample_defaults(void) {
  lam_upsample_opts o;
  memset(&o, 0, sizeof o);
  o.mode = LAM_UPSAMPLE_NEAREST;
  o.scale[0] = o.scale[1] = 2.0;
  return o;
}

/* One axis: ti gets i0[out], i1[out], olo[in], ohi[in]; l gets l0[out], l1[out].
 * has_scale: the user gave scale factor sf (used for the index mapping). */
static void lam__ups_axis(lam_upsample_mode mode, bool align, bool has_scale, double sf,
                          int64_t in, int64_t out, bool f64, int32_t *ti, double *l) {
  int32_t *i0 = ti, *i1 = ti + out, *olo = ti + 2 * out, *ohi = ti + 2 * out + in;
  double *l0 = l, *l1 = l + out;
  for (int64_t o = 0; o < out; o++) {
    if (mode == LAM_UPSAMPLE_NEAREST) {
      int64_t src;
      if (out == in) {
        src = o;
      } else if (out == 2 * in) {
        src = o >> 1;
      } else {
        const float scale = has_scale ? (float)(1.0 / sf) : (float)in / (float)out;
        const float pos = (float)o * scale;
        src = (int64_t)floorf(pos);
        if (src > in - 1) src = in - 1;
      }
      i0[o] = i1[o] = (int32_t)src;
      l0[o] = 1, l1[o] = 0;
      continue;
    }
    if (out == in) {
      i0[o] = i1[o] = (int32_t)o;
      l0[o] = 1, l1[o] = 0;
      continue;
    }
    double real, lam1;
    if (f64) {
      /* PyTorch's area_pixel_compute_scale: 0 only when aligning a single output. */
      double scale = 0;
      if (!align) scale = has_scale ? 1.0 / sf : (double)in / (double)out;
      else if (out > 1) scale = (double)(in - 1) / (double)(out - 1);
      real = align ? scale * (double)o : scale * ((double)o + 0.5) - 0.5;
      if (real < 0) real = 0;
      lam1 = real - (double)(int64_t)real;
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
      if (r < 0) r = 0;
      real = r;
      const float lf = r - (float)(int64_t)r;
      lam1 = lf;
    }
    const int64_t a = (int64_t)real;
    if (lam1 < 0) lam1 = 0;
    if (lam1 > 1) lam1 = 1;
    i0[o] = (int32_t)a;
    i1[o] = (int32_t)(a < in - 1 ? a + 1 : a);
    l1[o] = lam1;
    l0[o] = f64 ? 1.0 - lam1 : (double)(1.0f - (float)lam1);
  }
  /* Outputs reading input i form one run (i0 and i1 never decrease). */
  for (int64_t i = 0; i < in; i++) olo[i] = (int32_t)out, ohi[i] = 0;
  for (int64_t o = 0; o < out; o++)
    for (int s = 0; s < 2; s++) {
      const int32_t i = s ? i1[o] : i0[o];
      if (o < olo[i]) olo[i] = (int32_t)o;
      if (o + 1 > ohi[i]) ohi[i] = (int32_t)(o + 1);
    }
  for (int64_t i = 0; i < in; i++)
    if (ohi[i] == 0) olo[i] = 0; /* read by no output */
}

/* node->i: N*C planes, IH, IW, OH, OW, table offsets (4). saved: ti, tr. */
static lam_status lam__ups_launch(lam_ctx *ctx, const char *kname, lam_tensor *src, lam_tensor *dst,
                                  lam_tensor *ti, lam_tensor *tr, const int64_t *v, const char *fn) {
  cl_kernel k;
  lam_status st = lam__kernel_dt(ctx, "upsample", kname, src->dtype, NULL, &k);
  if (st != LAM_OK) return st;
  const bool fwd = strcmp(kname, "upsample_fwd") == 0;
  const int64_t rows = v[0] * (fwd ? v[3] : v[1]);
  lam__arg a[] = {LAM__ARG_T(src), LAM__ARG_T(dst), LAM__ARG_T(ti), LAM__ARG_T(tr),
                  lam__arg_int(rows), lam__arg_int8(4, v + 1), lam__arg_int8(4, v + 5)};
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
  static const char *const xdesc[] = {"", "[batch, channels, length]", "[batch, channels, h, w]"};
  if (!x) return lam__null_input(fn, "x");
  if (lam__conv_check_float(x->ctx, x, fn, "x") != LAM_OK) return NULL;
  char b[LAM__SHAPE_STR];
  if (x->ndim != nsp + 2)
    return lam__fail(LAM_ERR_SHAPE, "%s: x must be %s, got %s", fn, xdesc[nsp],
                     lam__shape_str(x->ndim, x->shape, b)), NULL;
  lam_upsample_opts def = lam_upsample_defaults();
  const lam_upsample_opts *o = opts ? opts : &def;
  if ((int)o->mode < 0 || o->mode > LAM_UPSAMPLE_LINEAR)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: unknown mode %d", fn, (int)o->mode), NULL;
  if (o->align_corners && o->mode != LAM_UPSAMPLE_LINEAR)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: align_corners is only for linear mode", fn), NULL;
  int64_t in[2] = {1, 1}, out[2] = {1, 1};
  bool has_scale[2] = {false, false};
  double sf[2] = {1, 1};
  for (int i = 0; i < nsp; i++) {
    const int a = 2 - nsp + i;
    in[a] = x->shape[2 + i];
    if (o->size[i] < 0)
      return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: size %lld of spatial dim %d must be >= 0", fn,
                       (long long)o->size[i], i), NULL;
    if (o->size[i] > 0) {
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
  int64_t ys[4] = {x->shape[0], x->shape[1]}, numel;
  for (int i = 0; i < nsp; i++) ys[2 + i] = out[2 - nsp + i];
  if (lam__check_shape(fn, nsp + 2, ys, &numel) != LAM_OK) return NULL;

  const int64_t ni = 2 * (out[0] + in[0] + out[1] + in[1]), nr = 2 * (out[0] + out[1]);
  int32_t *ti = malloc((size_t)ni * sizeof *ti);
  double *l = malloc((size_t)nr * sizeof *l);
  void *lr = malloc((size_t)nr * sizeof(double));
  if (!ti || !l || !lr) {
    free(ti), free(l), free(lr);
    return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn), NULL;
  }
  const bool f64 = x->dtype == LAM_F64;
  const int64_t wi = 2 * (out[0] + in[0]), wr = 2 * out[0];
  lam__ups_axis(o->mode, o->align_corners, has_scale[0], sf[0], in[0], out[0], f64, ti, l);
  lam__ups_axis(o->mode, o->align_corners, has_scale[1], sf[1], in[1], out[1], f64, ti + wi, l + wr);
  for (int64_t i = 0; i < nr; i++) {
    if (f64) ((double *)lr)[i] = l[i];
    else ((float *)lr)[i] = (float)l[i];
  }
  lam_ctx *ctx = x->ctx;
  lam_tensor *tti = lam_tensor_from_host(ctx, LAM_I32, 1, &ni, ti);
  lam_tensor *ttr = tti ? lam_tensor_from_host(ctx, x->dtype, 1, &nr, lr) : NULL;
  free(ti), free(l), free(lr);
  lam_tensor *y = ttr ? lam__tensor_new(ctx, x->dtype, nsp + 2, ys, fn) : NULL;
  const int64_t v[9] = {x->shape[0] * x->shape[1], in[0], in[1], out[0], out[1], 0, wi, 0, wr};
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
