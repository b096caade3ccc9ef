/* ops/pool.c: max/avg pooling (1-D to 3-D), adaptive max/avg pooling,
 * Metalhead's AdaptiveMeanMaxPool and global pools, with backward rules.
 *
 * All run the direct kernels of cl/pool.cl on a 3-D geometry (leading
 * spatial dims of size 1 for 1-D and 2-D). Max pools keep the index of each
 * window's maximum for the backward pass only when the input is tracked by
 * a recording tape, so inference allocates nothing extra. Output sizes and
 * the checks follow PyTorch (padding at most half the kernel, ceil_mode's
 * last window starting inside the input or its left padding). */
#include <string.h>

#include "lamina/conv.h"
#include "lamina/elementwise.h"
#include "lamina/shape.h"
#include "ops/conv_internal.h"

typedef struct lam__pool_geom {
  int nsp, adaptive, mode; /* mode 0 max, 1 average */
  int exclude_pad;
  int64_t N, C;
  int64_t in[3], out[3], k[3], s[3], d[3], p[3];
} lam__pool_geom;

static void lam__pool_save(lam__node *node, const lam__pool_geom *g) {
  int64_t *v = node->i;
  v[0] = g->nsp, v[1] = g->adaptive, v[2] = g->mode, v[3] = g->exclude_pad, v[4] = g->N, v[5] = g->C;
  for (int d = 0; d < 3; d++) {
    v[6 + d] = g->in[d], v[9 + d] = g->out[d], v[12 + d] = g->k[d];
    v[15 + d] = g->s[d], v[18 + d] = g->d[d], v[21 + d] = g->p[d];
  }
}

static void lam__pool_load(const lam__node *node, lam__pool_geom *g) {
  const int64_t *v = node->i;
  g->nsp = (int)v[0], g->adaptive = (int)v[1], g->mode = (int)v[2], g->exclude_pad = (int)v[3];
  g->N = v[4], g->C = v[5];
  for (int d = 0; d < 3; d++) {
    g->in[d] = v[6 + d], g->out[d] = v[9 + d], g->k[d] = v[12 + d];
    g->s[d] = v[15 + d], g->d[d] = v[18 + d], g->p[d] = v[21 + d];
  }
}

static void lam__pool_vecs(const lam__pool_geom *g, lam__arg *v, int with_k) {
  v[0] = lam__arg_int8(3, g->in);
  v[1] = lam__arg_int8(3, g->out);
  if (with_k) {
    int64_t gk[6] = {g->k[0], g->k[1], g->k[2], g->s[0], g->s[1], g->s[2]};
    int64_t gdp[6] = {g->d[0], g->d[1], g->d[2], g->p[0], g->p[1], g->p[2]};
    v[2] = lam__arg_int8(6, gk);
    v[3] = lam__arg_int8(6, gdp);
  }
}

/* Output shape [N, C, out...] (or the input's when which == 0). */
static void lam__pool_shape(const lam__pool_geom *g, int which, int64_t *s) {
  s[0] = g->N, s[1] = g->C;
  for (int i = 0; i < g->nsp; i++) s[2 + i] = which ? g->out[3 - g->nsp + i] : g->in[3 - g->nsp + i];
}

static lam_status lam__pool_backward(lam__node *node, lam_tensor *gy, lam_tensor **gin) {
  if (!lam__node_needs(node, 0)) return LAM_OK;
  lam__pool_geom g;
  lam__pool_load(node, &g);
  int64_t xs[5];
  lam__pool_shape(&g, 0, xs);
  lam_tensor *dx = lam__tensor_new(gy->ctx, gy->dtype, g.nsp + 2, xs, node->op);
  if (!dx) return lam_last_status();
  lam_tensor *idx = g.mode == 0 ? node->saved[0] : gy; /* unused buffer for averages */
  cl_kernel k;
  lam_status st = lam__kernel_dt(gy->ctx, "pool", g.adaptive ? "adaptive_bwd" : "pool_bwd",
                                 gy->dtype, NULL, &k);
  if (st == LAM_OK) {
    const int64_t rows = g.N * g.C * g.in[0] * g.in[1];
    lam__arg a[13] = {LAM__ARG_T(gy), LAM__ARG_T(idx), LAM__ARG_T(dx), lam__arg_int(rows),
                      lam__arg_int(g.mode)};
    int na = 8;
    if (!g.adaptive) a[na++] = lam__arg_int(g.exclude_pad);
    lam__pool_vecs(&g, a + na, !g.adaptive);
    na += g.adaptive ? 2 : 4;
    st = lam__launch_rows(gy->ctx, k, node->op, na, a, rows);
  }
  if (st != LAM_OK) {
    lam_tensor_free(dx);
    return st;
  }
  gin[0] = dx;
  return LAM_OK;
}

/* Runs a pool described by g on x and records it. */
static lam_tensor *lam__pool_run(lam_tensor *x, const lam__pool_geom *g, const char *fn) {
  int64_t ys[5], numel;
  lam__pool_shape(g, 1, ys);
  if (lam__check_shape(fn, g->nsp + 2, ys, &numel) != LAM_OK) return NULL;
  lam_ctx *ctx = x->ctx;
  const bool want_idx = g->mode == 0 && lam__tracked(x);
  lam_tensor *y = lam__tensor_new(ctx, x->dtype, g->nsp + 2, ys, fn);
  lam_tensor *idx = want_idx && y ? lam__tensor_new(ctx, LAM_I32, g->nsp + 2, ys, fn) : NULL;
  if (!y || (want_idx && !idx)) {
    lam_tensor_free(y);
    return NULL;
  }
  lam_tensor *ib = idx ? idx : y;
  cl_kernel k;
  lam_status st = lam__kernel_dt(ctx, "pool", g->adaptive ? "adaptive_fwd" : "pool_fwd", x->dtype,
                                 NULL, &k);
  if (st == LAM_OK) {
    const int64_t rows = g->N * g->C * g->out[0] * g->out[1];
    lam__arg a[14] = {LAM__ARG_T(x), LAM__ARG_T(y), LAM__ARG_T(ib), lam__arg_int(want_idx),
                      lam__arg_int(rows), lam__arg_int(g->mode)};
    int na = 9;
    if (!g->adaptive) a[na++] = lam__arg_int(g->exclude_pad);
    lam__pool_vecs(g, a + na, !g->adaptive);
    na += g->adaptive ? 2 : 4;
    st = lam__launch_rows(ctx, k, fn, na, a, rows);
  }
  if (st != LAM_OK) {
    lam_tensor_free(y);
    lam_tensor_free(idx);
    return NULL;
  }
  lam__node *node = lam__tape_record(y, fn, lam__pool_backward, 1, &x);
  if (node) {
    if (idx) lam__node_save(node, idx);
    lam__pool_save(node, g);
  }
  lam_tensor_free(idx);
  return y;
}

/* Common input checks: x [N, C, <nsp dims>] of f32/f64. */
static lam_status lam__pool_check_x(lam_tensor *x, int nsp, const char *fn) {
  static const char *const xdesc[] = {"", "[batch, channels, length]", "[batch, channels, h, w]",
                                      "[batch, channels, d, h, w]"};
  lam_status st = lam__conv_check_float(x->ctx, x, fn, "x");
  if (st != LAM_OK) return st;
  if (x->ndim != nsp + 2) {
    char b[LAM__SHAPE_STR];
    return lam__fail(LAM_ERR_SHAPE, "%s: x must be %s, got %s", fn, xdesc[nsp],
                     lam__shape_str(x->ndim, x->shape, b));
  }
  return LAM_OK;
}

static void lam__pool_geom_init(lam__pool_geom *g, lam_tensor *x, int nsp) {
  memset(g, 0, sizeof *g);
  g->nsp = nsp, g->N = x->shape[0], g->C = x->shape[1];
  for (int d = 0; d < 3; d++) g->in[d] = g->out[d] = g->k[d] = g->s[d] = g->d[d] = 1;
  for (int i = 0; i < nsp; i++) g->in[3 - nsp + i] = x->shape[2 + i];
}

lam_pool_opts lam_pool_defaults(void) {
  lam_pool_opts o;
  memset(&o, 0, sizeof o);
  for (int d = 0; d < 3; d++) o.kernel[d] = 2, o.stride[d] = 0, o.dilation[d] = 1; /* stride: the kernel */
  return o;
}

static lam_tensor *lam__pool(int nsp, int mode, lam_tensor *x, const lam_pool_opts *opts,
                             const char *fn) {
  if (!x) return lam__null_input(fn, "x");
  if (lam__pool_check_x(x, nsp, fn) != LAM_OK) return NULL;
  lam_pool_opts def = lam_pool_defaults();
  const lam_pool_opts *o = opts ? opts : &def;
  lam__pool_geom g;
  lam__pool_geom_init(&g, x, nsp);
  g.mode = mode;
  g.exclude_pad = mode == 1 && o->exclude_pad;
  for (int i = 0; i < nsp; i++) {
    const int d = 3 - nsp + i;
    const int64_t k = o->kernel[i] ? o->kernel[i] : 2;
    const int64_t s = o->stride[i] ? o->stride[i] : k;
    const int64_t dil = o->dilation[i] ? o->dilation[i] : 1, p = o->padding[i];
    if (k < 1 || s < 1 || dil < 1 || p < 0)
      return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                       "%s: kernel %d, stride %d, dilation %d must be >= 1 (0: default) and "
                       "padding %d >= 0 in spatial dim %d",
                       fn, o->kernel[i], o->stride[i], o->dilation[i], o->padding[i], i), NULL;
    if (mode == 1 && dil != 1)
      return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                       "%s: dilation %lld in spatial dim %d: average pools take no dilation", fn,
                       (long long)dil, i), NULL;
    if (p > k / 2)
      return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                       "%s: padding %lld must be at most half the kernel %lld in spatial dim %d",
                       fn, (long long)p, (long long)k, i), NULL;
    const int64_t in = g.in[d], eff = dil * (k - 1) + 1;
    int64_t num = in + 2 * p - eff + (o->ceil_mode ? s - 1 : 0);
    int64_t out = num < 0 ? 0 : num / s + 1;
    if (o->ceil_mode && out > 0 && (out - 1) * s >= in + p) out--;
    if (out < 1)
      return lam__fail(LAM_ERR_SHAPE,
                       "%s: kernel %lld (dilated %lld) is larger than the padded input %lld of "
                       "spatial dim %d",
                       fn, (long long)k, (long long)eff, (long long)(in + 2 * p), i), NULL;
    g.out[d] = out, g.k[d] = k, g.s[d] = s, g.d[d] = dil, g.p[d] = p;
  }
  return lam__pool_run(x, &g, fn);
}

lam_tensor *lam_max_pool1d(lam_tensor *x, const lam_pool_opts *opts) {
  return lam__pool(1, 0, x, opts, "lam_max_pool1d");
}
lam_tensor *lam_max_pool2d(lam_tensor *x, const lam_pool_opts *opts) {
  return lam__pool(2, 0, x, opts, "lam_max_pool2d");
}
lam_tensor *lam_max_pool3d(lam_tensor *x, const lam_pool_opts *opts) {
  return lam__pool(3, 0, x, opts, "lam_max_pool3d");
}
lam_tensor *lam_avg_pool1d(lam_tensor *x, const lam_pool_opts *opts) {
  return lam__pool(1, 1, x, opts, "lam_avg_pool1d");
}
lam_tensor *lam_avg_pool2d(lam_tensor *x, const lam_pool_opts *opts) {
  return lam__pool(2, 1, x, opts, "lam_avg_pool2d");
}
lam_tensor *lam_avg_pool3d(lam_tensor *x, const lam_pool_opts *opts) {
  return lam__pool(3, 1, x, opts, "lam_avg_pool3d");
}

/* ---- adaptive and global ---------------------------------------------------- */

static lam_tensor *lam__adaptive(int nsp, int mode, lam_tensor *x, const int64_t *out,
                                 const char *fn) {
  if (!x) return lam__null_input(fn, "x");
  if (lam__pool_check_x(x, nsp, fn) != LAM_OK) return NULL;
  lam__pool_geom g;
  lam__pool_geom_init(&g, x, nsp);
  g.adaptive = 1, g.mode = mode;
  for (int i = 0; i < nsp; i++) {
    if (out[i] < 1)
      return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: output size %lld of spatial dim %d must be >= 1",
                       fn, (long long)out[i], i), NULL;
    g.out[3 - nsp + i] = out[i];
  }
  return lam__pool_run(x, &g, fn);
}

lam_tensor *lam_adaptive_avg_pool1d(lam_tensor *x, int64_t out_l) {
  return lam__adaptive(1, 1, x, &out_l, "lam_adaptive_avg_pool1d");
}
lam_tensor *lam_adaptive_avg_pool2d(lam_tensor *x, int64_t out_h, int64_t out_w) {
  return lam__adaptive(2, 1, x, (int64_t[]){out_h, out_w}, "lam_adaptive_avg_pool2d");
}
lam_tensor *lam_adaptive_avg_pool3d(lam_tensor *x, int64_t out_d, int64_t out_h,
                                            int64_t out_w) {
  return lam__adaptive(3, 1, x, (int64_t[]){out_d, out_h, out_w}, "lam_adaptive_avg_pool3d");
}
lam_tensor *lam_adaptive_max_pool1d(lam_tensor *x, int64_t out_l) {
  return lam__adaptive(1, 0, x, &out_l, "lam_adaptive_max_pool1d");
}
lam_tensor *lam_adaptive_max_pool2d(lam_tensor *x, int64_t out_h, int64_t out_w) {
  return lam__adaptive(2, 0, x, (int64_t[]){out_h, out_w}, "lam_adaptive_max_pool2d");
}
lam_tensor *lam_adaptive_max_pool3d(lam_tensor *x, int64_t out_d, int64_t out_h,
                                            int64_t out_w) {
  return lam__adaptive(3, 0, x, (int64_t[]){out_d, out_h, out_w}, "lam_adaptive_max_pool3d");
}

lam_tensor *lam_adaptive_mean_max_pool2d(lam_tensor *x, int64_t out_h, int64_t out_w,
                                                 bool concat) {
  const char *fn = "lam_adaptive_mean_max_pool2d";
  if (!x) return lam__null_input(fn, "x");
  const int64_t out[2] = {out_h, out_w};
  lam_tensor *mean = lam__adaptive(2, 1, x, out, fn);
  lam_tensor *mx = mean ? lam__adaptive(2, 0, x, out, fn) : NULL;
  lam_tensor *y = NULL;
  if (mx && concat) {
    y = lam_concat((lam_tensor *[]){mean, mx}, 2, 1);
  } else if (mx) {
    lam_tensor *s = lam_add(mean, mx);
    y = s ? lam_mul_scalar(s, 0.5) : NULL;
    lam_tensor_free(s);
  }
  lam_tensor_free(mean);
  lam_tensor_free(mx);
  return y;
}

static lam_tensor *lam__global(int mode, lam_tensor *x, const char *fn) {
  if (!x) return lam__null_input(fn, "x");
  if (x->ndim < 3 || x->ndim > 5) {
    char b[LAM__SHAPE_STR];
    return lam__fail(LAM_ERR_SHAPE, "%s: x must be [batch, channels, ...] with 1 to 3 spatial dims, got %s",
                     fn, lam__shape_str(x->ndim, x->shape, b)), NULL;
  }
  const int64_t ones[3] = {1, 1, 1};
  return lam__adaptive(x->ndim - 2, mode, x, ones, fn);
}

lam_tensor *lam_global_avg_pool(lam_tensor *x) {
  return lam__global(1, x, "lam_global_avg_pool");
}
lam_tensor *lam_global_max_pool(lam_tensor *x) {
  return lam__global(0, x, "lam_global_max_pool");
}
