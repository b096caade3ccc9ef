/* ops/pool.c: max/avg pooling (1-D to 3-D, with indices and
 * divisor_override), adaptive max/avg pooling, Metalhead's
 * AdaptiveMeanMaxPool, global pools, fractional max pooling and max
 * unpooling, with backward rules.
 *
 * All run the direct kernels of cl/pool.cl on a 3-D geometry (leading
 * spatial dims of size 1 for 1-D and 2-D). Max pools keep the index of each
 * window's maximum for the backward pass only when the input is tracked by
 * a recording tape, so inference allocates nothing extra. Output sizes and
 * the checks follow PyTorch (padding at most half the kernel, ceil_mode's
 * last window starting inside the input or its left padding). */
#include <stdlib.h>
#include <string.h>

#include "lamina/elementwise.h"
#include "lamina/pool.h"
#include "lamina/rng.h"
#include "lamina/shape.h"
#include "ops/conv_internal.h"

typedef struct lam__pool_geom {
  int nsp, adaptive, mode; /* mode 0 max, 1 average */
  int exclude_pad, divisor; /* divisor: divisor_override (0: none) */
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
  v[24] = g->divisor;
}

static void lam__pool_load(const lam__node *node, lam__pool_geom *g) {
  const int64_t *v = node->i;
  g->nsp = (int)v[0], g->adaptive = (int)v[1], g->mode = (int)v[2], g->exclude_pad = (int)v[3];
  g->N = v[4], g->C = v[5];
  for (int d = 0; d < 3; d++) {
    g->in[d] = v[6 + d], g->out[d] = v[9 + d], g->k[d] = v[12 + d];
    g->s[d] = v[15 + d], g->d[d] = v[18 + d], g->p[d] = v[21 + d];
  }
  g->divisor = (int)v[24];
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
    lam__arg a[14] = {LAM__ARG_T(gy), LAM__ARG_T(idx), LAM__ARG_T(dx), lam__arg_int(rows),
                      lam__arg_int(g.mode)};
    int na = 8;
    if (!g.adaptive) a[na++] = lam__arg_int(g.exclude_pad), a[na++] = lam__arg_int(g.divisor);
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

/* Runs a pool described by g on x and records it; a max pool's indices go
 * to *indices when indices is not NULL. */
static lam_tensor *lam__pool_run(lam_tensor *x, const lam__pool_geom *g, lam_tensor **indices,
                                 const char *fn) {
  int64_t ys[5], numel;
  lam__pool_shape(g, 1, ys);
  if (lam__check_shape(fn, g->nsp + 2, ys, &numel) != LAM_OK) return NULL;
  lam_ctx *ctx = x->ctx;
  const bool want_idx = g->mode == 0 && (indices || lam__tracked(x));
  lam_tensor *y = lam__tensor_new(ctx, x->dtype, g->nsp + 2, ys, fn);
  lam_tensor *idx = want_idx && y ? lam__tensor_new(ctx, LAM_I32, g->nsp + 2, ys, fn) : NULL;
  if (!y || (want_idx && !idx)) {
    lam_tensor_free(y);
    return NULL;
  }
  lam_tensor *ib = idx ? idx : y;
  cl_kernel k;
  const char *path = getenv("LAMINA_POOL_PATH"); /* tests: "general" forces pool_fwd, "rows" max_pool2d_rows */
  const bool rows2d = g->mode == 0 && !g->adaptive && g->in[0] == 1 && g->k[0] == 1 &&
                      g->d[1] == 1 && g->d[2] == 1 && !(path && strcmp(path, "general") == 0);
  const bool k3s2 = rows2d && !want_idx && g->k[1] == 3 && g->k[2] == 3 && g->s[1] == 2 && g->s[2] == 2 &&
                    !(path && strcmp(path, "rows") == 0);
  lam_status st = lam__kernel_dt(ctx, "pool",
                                 k3s2     ? "max_pool2d_k3s2"
                                 : rows2d ? "max_pool2d_rows"
                                 : g->adaptive ? "adaptive_fwd" : "pool_fwd",
                                 x->dtype, NULL, &k);
  if (st == LAM_OK && k3s2) {
    const int64_t rows = g->N * g->C * g->out[1];
    lam__arg a[11] = {LAM__ARG_T(x), LAM__ARG_T(y), lam__arg_int(rows), lam__arg_int(g->in[1]),
                      lam__arg_int(g->in[2]), lam__arg_int(g->out[1]), lam__arg_int(g->out[2]),
                      lam__arg_int(g->p[1]), lam__arg_int(g->p[2])};
    st = lam__launch_rows(ctx, k, fn, 11, a, rows);
  } else if (st == LAM_OK && rows2d) {
    const int64_t rows = g->N * g->C * g->out[1];
    lam__arg a[18] = {LAM__ARG_T(x), LAM__ARG_T(y), LAM__ARG_T(ib), lam__arg_int(want_idx),
                      lam__arg_int(rows), lam__arg_int(g->in[1]), lam__arg_int(g->in[2]),
                      lam__arg_int(g->out[1]), lam__arg_int(g->out[2]), lam__arg_int(g->k[1]),
                      lam__arg_int(g->k[2]), lam__arg_int(g->s[1]), lam__arg_int(g->s[2]),
                      lam__arg_int(g->p[1]), lam__arg_int(g->p[2])};
    st = lam__launch_rows(ctx, k, fn, 18, a, rows);
  } else if (st == LAM_OK) {
    const int64_t rows = g->N * g->C * g->out[0] * g->out[1];
    lam__arg a[15] = {LAM__ARG_T(x), LAM__ARG_T(y), LAM__ARG_T(ib), lam__arg_int(want_idx),
                      lam__arg_int(rows), lam__arg_int(g->mode)};
    int na = 9;
    if (!g->adaptive) a[na++] = lam__arg_int(g->exclude_pad), a[na++] = lam__arg_int(g->divisor);
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
  if (indices)
    *indices = idx;
  else
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
                             lam_tensor **indices, const char *fn) {
  if (indices) *indices = NULL;
  if (!x) return lam__null_input(fn, "x");
  if (lam__pool_check_x(x, nsp, fn) != LAM_OK) return NULL;
  lam_pool_opts def = lam_pool_defaults();
  const lam_pool_opts *o = opts ? opts : &def;
  lam__pool_geom g;
  lam__pool_geom_init(&g, x, nsp);
  g.mode = mode;
  g.exclude_pad = mode == 1 && o->exclude_pad;
  if (o->divisor_override < 0 || (mode == 0 && o->divisor_override))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                     "%s: divisor_override %d: must be >= 0 (0: none), and only average pools "
                     "take one", fn, o->divisor_override), NULL;
  g.divisor = o->divisor_override;
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
  return lam__pool_run(x, &g, indices, fn);
}

lam_tensor *lam_max_pool1d(lam_tensor *x, const lam_pool_opts *opts) {
  return lam__pool(1, 0, x, opts, NULL, "lam_max_pool1d");
}
lam_tensor *lam_max_pool2d(lam_tensor *x, const lam_pool_opts *opts) {
  return lam__pool(2, 0, x, opts, NULL, "lam_max_pool2d");
}
lam_tensor *lam_max_pool3d(lam_tensor *x, const lam_pool_opts *opts) {
  return lam__pool(3, 0, x, opts, NULL, "lam_max_pool3d");
}
/* The indices' destination is checked before anything runs. */
static lam_tensor *lam__pool_idx(int nsp, lam_tensor *x, const lam_pool_opts *opts,
                                 lam_tensor **indices, const char *fn) {
  if (!indices) return lam__fail(LAM_ERR_NULL, "%s: indices (the output pointer) is NULL", fn), NULL;
  return lam__pool(nsp, 0, x, opts, indices, fn);
}
lam_tensor *lam_max_pool1d_with_indices(lam_tensor *x, const lam_pool_opts *opts,
                                        lam_tensor **indices) {
  return lam__pool_idx(1, x, opts, indices, "lam_max_pool1d_with_indices");
}
lam_tensor *lam_max_pool2d_with_indices(lam_tensor *x, const lam_pool_opts *opts,
                                        lam_tensor **indices) {
  return lam__pool_idx(2, x, opts, indices, "lam_max_pool2d_with_indices");
}
lam_tensor *lam_max_pool3d_with_indices(lam_tensor *x, const lam_pool_opts *opts,
                                        lam_tensor **indices) {
  return lam__pool_idx(3, x, opts, indices, "lam_max_pool3d_with_indices");
}
lam_tensor *lam_avg_pool1d(lam_tensor *x, const lam_pool_opts *opts) {
  return lam__pool(1, 1, x, opts, NULL, "lam_avg_pool1d");
}
lam_tensor *lam_avg_pool2d(lam_tensor *x, const lam_pool_opts *opts) {
  return lam__pool(2, 1, x, opts, NULL, "lam_avg_pool2d");
}
lam_tensor *lam_avg_pool3d(lam_tensor *x, const lam_pool_opts *opts) {
  return lam__pool(3, 1, x, opts, NULL, "lam_avg_pool3d");
}

/* ---- adaptive and global ---------------------------------------------------- */

static lam_tensor *lam__adaptive(int nsp, int mode, lam_tensor *x, const int64_t *out,
                                 lam_tensor **indices, const char *fn) {
  if (indices) *indices = NULL;
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
  return lam__pool_run(x, &g, indices, fn);
}

lam_tensor *lam_adaptive_avg_pool1d(lam_tensor *x, int64_t out_l) {
  return lam__adaptive(1, 1, x, &out_l, NULL, "lam_adaptive_avg_pool1d");
}
lam_tensor *lam_adaptive_avg_pool2d(lam_tensor *x, int64_t out_h, int64_t out_w) {
  return lam__adaptive(2, 1, x, (int64_t[]){out_h, out_w}, NULL, "lam_adaptive_avg_pool2d");
}
lam_tensor *lam_adaptive_avg_pool3d(lam_tensor *x, int64_t out_d, int64_t out_h,
                                            int64_t out_w) {
  return lam__adaptive(3, 1, x, (int64_t[]){out_d, out_h, out_w}, NULL, "lam_adaptive_avg_pool3d");
}
lam_tensor *lam_adaptive_max_pool1d(lam_tensor *x, int64_t out_l) {
  return lam__adaptive(1, 0, x, &out_l, NULL, "lam_adaptive_max_pool1d");
}
lam_tensor *lam_adaptive_max_pool2d(lam_tensor *x, int64_t out_h, int64_t out_w) {
  return lam__adaptive(2, 0, x, (int64_t[]){out_h, out_w}, NULL, "lam_adaptive_max_pool2d");
}
lam_tensor *lam_adaptive_max_pool3d(lam_tensor *x, int64_t out_d, int64_t out_h,
                                            int64_t out_w) {
  return lam__adaptive(3, 0, x, (int64_t[]){out_d, out_h, out_w}, NULL, "lam_adaptive_max_pool3d");
}

static lam_tensor *lam__adaptive_idx(int nsp, lam_tensor *x, const int64_t *out,
                                     lam_tensor **indices, const char *fn) {
  if (!indices) return lam__fail(LAM_ERR_NULL, "%s: indices (the output pointer) is NULL", fn), NULL;
  return lam__adaptive(nsp, 0, x, out, indices, fn);
}
lam_tensor *lam_adaptive_max_pool1d_with_indices(lam_tensor *x, int64_t out_l,
                                                 lam_tensor **indices) {
  return lam__adaptive_idx(1, x, &out_l, indices, "lam_adaptive_max_pool1d_with_indices");
}
lam_tensor *lam_adaptive_max_pool2d_with_indices(lam_tensor *x, int64_t out_h, int64_t out_w,
                                                 lam_tensor **indices) {
  return lam__adaptive_idx(2, x, (int64_t[]){out_h, out_w}, indices,
                           "lam_adaptive_max_pool2d_with_indices");
}
lam_tensor *lam_adaptive_max_pool3d_with_indices(lam_tensor *x, int64_t out_d, int64_t out_h,
                                                 int64_t out_w, lam_tensor **indices) {
  return lam__adaptive_idx(3, x, (int64_t[]){out_d, out_h, out_w}, indices,
                           "lam_adaptive_max_pool3d_with_indices");
}

lam_tensor *lam_adaptive_mean_max_pool2d(lam_tensor *x, int64_t out_h, int64_t out_w,
                                                 bool concat) {
  const char *fn = "lam_adaptive_mean_max_pool2d";
  if (!x) return lam__null_input(fn, "x");
  const int64_t out[2] = {out_h, out_w};
  lam_tensor *mean = lam__adaptive(2, 1, x, out, NULL, fn);
  lam_tensor *mx = mean ? lam__adaptive(2, 0, x, out, NULL, fn) : NULL;
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
  return lam__adaptive(x->ndim - 2, mode, x, ones, NULL, fn);
}

lam_tensor *lam_global_avg_pool(lam_tensor *x) {
  return lam__global(1, x, "lam_global_avg_pool");
}
lam_tensor *lam_global_max_pool(lam_tensor *x) {
  return lam__global(0, x, "lam_global_max_pool");
}

/* ---- max unpooling ---------------------------------------------------------------- */

lam_max_unpool_opts lam_max_unpool_defaults(void) {
  lam_max_unpool_opts o;
  memset(&o, 0, sizeof o);
  for (int d = 0; d < 3; d++) o.kernel[d] = 2; /* stride 0: the kernel; output size 0: the default */
  return o;
}

/* Launches plane_scatter: dst plane p = zeros with src[p, i] stored (or
 * added) at idx[p, i]. */
static lam_status lam__plane_scatter(lam_tensor *src, lam_tensor *idx, lam_tensor *dst,
                                     int64_t planes, int64_t n_src, int64_t n_dst, int accumulate,
                                     const char *fn) {
  cl_kernel k;
  lam_status st = lam__kernel_dt(src->ctx, "pool", "plane_scatter", src->dtype, NULL, &k);
  if (st != LAM_OK) return st;
  lam__arg a[10] = {LAM__ARG_T(src), LAM__ARG_T(idx), LAM__ARG_T(dst), lam__arg_int(planes),
                    lam__arg_int(n_src), lam__arg_int(n_dst), lam__arg_int(accumulate)};
  return lam__launch_rows(src->ctx, k, fn, 10, a, planes);
}

/* dx[i] = dy[plane(i), indices[i]]: i[0] is the elements per plane of x,
 * i[1] of y. */
static lam_status lam__unpool_backward(lam__node *node, lam_tensor *gy, lam_tensor **gin) {
  if (!lam__node_needs(node, 0)) return LAM_OK;
  lam_tensor *idx = node->saved[0];
  lam_tensor *dx = lam__tensor_new(gy->ctx, gy->dtype, node->in_ndim[0], node->in_shape[0], node->op);
  if (!dx) return lam_last_status();
  cl_kernel k;
  lam_status st = lam__kernel_dt(gy->ctx, "pool", "plane_gather", gy->dtype, NULL, &k);
  if (st == LAM_OK) {
    const int64_t total = lam_tensor_numel(dx);
    lam__arg a[9] = {LAM__ARG_T(gy), LAM__ARG_T(idx), LAM__ARG_T(dx), lam__arg_int(total),
                     lam__arg_int(node->i[0]), lam__arg_int(node->i[1])};
    st = lam__launch_1d(gy->ctx, k, node->op, 9, a, (size_t)total);
  }
  if (st != LAM_OK) {
    lam_tensor_free(dx);
    return st;
  }
  gin[0] = dx;
  return LAM_OK;
}

/* Checks an i32 index tensor shaped exactly like x on x's context. */
static lam_status lam__check_indices(lam_tensor *x, lam_tensor *idx, const char *fn) {
  char b[LAM__SHAPE_STR], c[LAM__SHAPE_STR];
  if (idx->ctx != x->ctx)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: x and indices belong to different contexts", fn);
  if (idx->dtype != LAM_I32)
    return lam__fail(LAM_ERR_DTYPE, "%s: indices must be i32, got %s", fn,
                     lam_dtype_name(idx->dtype));
  bool same = idx->ndim == x->ndim;
  for (int i = 0; same && i < x->ndim; i++) same = idx->shape[i] == x->shape[i];
  if (!same)
    return lam__fail(LAM_ERR_SHAPE, "%s: indices %s must have x's shape %s", fn,
                     lam__shape_str(idx->ndim, idx->shape, b), lam__shape_str(x->ndim, x->shape, c));
  return LAM_OK;
}

static lam_tensor *lam__unpool(int nsp, lam_tensor *x, lam_tensor *indices,
                               const lam_max_unpool_opts *opts, const char *fn) {
  if (!x) return lam__null_input(fn, "x");
  if (!indices) return lam__null_input(fn, "indices");
  if (lam__pool_check_x(x, nsp, fn) != LAM_OK || lam__check_indices(x, indices, fn) != LAM_OK)
    return NULL;
  lam_max_unpool_opts def = lam_max_unpool_defaults();
  const lam_max_unpool_opts *o = opts ? opts : &def;
  int64_t ys[5] = {x->shape[0], x->shape[1]};
  for (int i = 0; i < nsp; i++) {
    const int64_t k = o->kernel[i] ? o->kernel[i] : 2, s = o->stride[i] ? o->stride[i] : k;
    const int64_t p = o->padding[i];
    if (k < 1 || s < 1 || p < 0 || o->output_size[i] < 0)
      return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                       "%s: kernel %d and stride %d must be >= 1 (0: default), padding %d and "
                       "output size %lld >= 0 in spatial dim %d",
                       fn, o->kernel[i], o->stride[i], o->padding[i],
                       (long long)o->output_size[i], i), NULL;
    const int64_t def_size = (x->shape[2 + i] - 1) * s - 2 * p + k;
    int64_t out = o->output_size[i] ? o->output_size[i] : def_size;
    if (o->output_size[i] && !(def_size - s < out && out < def_size + s))
      return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                       "%s: output size %lld of spatial dim %d must lie strictly between %lld and "
                       "%lld (the default size %lld -/+ the stride)",
                       fn, (long long)out, i, (long long)(def_size - s), (long long)(def_size + s),
                       (long long)def_size), NULL;
    if (out < 1)
      return lam__fail(LAM_ERR_SHAPE, "%s: the output size %lld of spatial dim %d is below 1", fn,
                       (long long)out, i), NULL;
    ys[2 + i] = out;
  }
  int64_t numel;
  if (lam__check_shape(fn, nsp + 2, ys, &numel) != LAM_OK) return NULL;
  const int64_t planes = x->shape[0] * x->shape[1];
  const int64_t n_src = lam_tensor_numel(x) / planes, n_dst = numel / planes;
  lam_tensor *y = lam__tensor_new(x->ctx, x->dtype, nsp + 2, ys, fn);
  if (!y) return NULL;
  if (lam__plane_scatter(x, indices, y, planes, n_src, n_dst, 0, fn) != LAM_OK) {
    lam_tensor_free(y);
    return NULL;
  }
  lam__node *node = lam__tape_record(y, fn, lam__unpool_backward, 1, &x);
  if (node) {
    lam__node_save(node, indices);
    node->i[0] = n_src, node->i[1] = n_dst;
  }
  return y;
}

lam_tensor *lam_max_unpool1d(lam_tensor *x, lam_tensor *indices, const lam_max_unpool_opts *opts) {
  return lam__unpool(1, x, indices, opts, "lam_max_unpool1d");
}
lam_tensor *lam_max_unpool2d(lam_tensor *x, lam_tensor *indices, const lam_max_unpool_opts *opts) {
  return lam__unpool(2, x, indices, opts, "lam_max_unpool2d");
}
lam_tensor *lam_max_unpool3d(lam_tensor *x, lam_tensor *indices, const lam_max_unpool_opts *opts) {
  return lam__unpool(3, x, indices, opts, "lam_max_unpool3d");
}

/* ---- fractional max pooling -------------------------------------------------------- */

lam_fractional_max_pool_opts lam_fractional_max_pool_defaults(void) {
  lam_fractional_max_pool_opts o;
  memset(&o, 0, sizeof o);
  for (int d = 0; d < 3; d++) o.kernel[d] = 2, o.output_ratio[d] = 0.5;
  return o;
}

/* dx plane = the sum of dy at the recorded maxima: i[0] planes, i[1] the
 * elements per plane of y, i[2] of x. */
static lam_status lam__fractional_backward(lam__node *node, lam_tensor *gy, lam_tensor **gin) {
  if (!lam__node_needs(node, 0)) return LAM_OK;
  lam_tensor *dx = lam__tensor_new(gy->ctx, gy->dtype, node->in_ndim[0], node->in_shape[0], node->op);
  if (!dx) return lam_last_status();
  lam_status st = lam__plane_scatter(gy, node->saved[0], dx, node->i[0], node->i[1], node->i[2], 1,
                                     node->op);
  if (st != LAM_OK) {
    lam_tensor_free(dx);
    return st;
  }
  gin[0] = dx;
  return LAM_OK;
}

static lam_tensor *lam__fractional(int nsp, lam_tensor *x, lam_rng_key key,
                                   const lam_fractional_max_pool_opts *opts, lam_tensor **indices,
                                   const char *fn) {
  if (indices) *indices = NULL;
  if (!x) return lam__null_input(fn, "x");
  if (lam__pool_check_x(x, nsp, fn) != LAM_OK) return NULL;
  lam_fractional_max_pool_opts def = lam_fractional_max_pool_defaults();
  const lam_fractional_max_pool_opts *o = opts ? opts : &def;
  lam__pool_geom g;
  lam__pool_geom_init(&g, x, nsp);
  double alpha[3] = {0, 0, 0};
  for (int i = 0; i < nsp; i++) {
    const int d = 3 - nsp + i;
    const int64_t k = o->kernel[i] ? o->kernel[i] : 2, in = g.in[d];
    const double ratio = o->output_ratio[i] != 0 ? o->output_ratio[i] : 0.5;
    if (k < 1 || o->output_size[i] < 0)
      return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                       "%s: kernel %d must be >= 1 (0: default) and output size %lld >= 0 in "
                       "spatial dim %d", fn, o->kernel[i], (long long)o->output_size[i], i), NULL;
    if (!o->output_size[i] && !(ratio > 0 && ratio < 1))
      return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                       "%s: output_ratio %g of spatial dim %d must lie in (0, 1)", fn, ratio, i),
             NULL;
    const int64_t out = o->output_size[i] ? o->output_size[i] : (int64_t)((double)in * ratio);
    if (out < 1 || out + k - 1 > in)
      return lam__fail(LAM_ERR_SHAPE,
                       "%s: output size %lld and kernel %lld of spatial dim %d need 1 <= output "
                       "and output + kernel - 1 <= the input size %lld", fn, (long long)out,
                       (long long)k, i, (long long)in), NULL;
    g.out[d] = out, g.k[d] = k;
    if (out > 1)
      alpha[d] = x->dtype == LAM_F32 ? (double)((float)(in - k) / (float)(out - 1))
                                     : (double)(in - k) / (double)(out - 1);
  }
  lam_ctx *ctx = x->ctx;
  const int64_t sshape[3] = {g.N, g.C, nsp};
  lam_tensor *smp = o->samples;
  if (smp) {
    if (smp->ctx != ctx)
      return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: x and samples belong to different contexts",
                       fn), NULL;
    char b[LAM__SHAPE_STR];
    if (smp->dtype != x->dtype)
      return lam__fail(LAM_ERR_DTYPE, "%s: samples must have x's dtype %s, got %s", fn,
                       lam_dtype_name(x->dtype), lam_dtype_name(smp->dtype)), NULL;
    if (smp->ndim != 3 || smp->shape[0] != g.N || smp->shape[1] != g.C || smp->shape[2] != nsp)
      return lam__fail(LAM_ERR_SHAPE, "%s: samples must be [%lld, %lld, %d] ([N, C, %d]), got %s",
                       fn, (long long)g.N, (long long)g.C, nsp, nsp,
                       lam__shape_str(smp->ndim, smp->shape, b)), NULL;
  } else {
    smp = lam_random_uniform(ctx, key, x->dtype, 3, sshape, 0, 1);
    if (!smp) return NULL;
  }
  int64_t ys[5], numel;
  lam__pool_shape(&g, 1, ys);
  lam_tensor *y = NULL, *idx = NULL;
  const bool want_idx = indices || lam__tracked(x);
  if (lam__check_shape(fn, nsp + 2, ys, &numel) == LAM_OK) {
    y = lam__tensor_new(ctx, x->dtype, nsp + 2, ys, fn);
    idx = want_idx && y ? lam__tensor_new(ctx, LAM_I32, nsp + 2, ys, fn) : NULL;
  }
  /* sample entry per dim D, H, W: torch's (W, H) for 2-D, (T, H, W) for 3-D */
  const int64_t smap[3] = {nsp == 3 ? 0 : -1, 1, nsp == 3 ? 2 : 0};
  cl_kernel k;
  lam_status st = y && (idx || !want_idx) ? LAM_OK : lam_last_status();
  if (st == LAM_OK) st = lam__kernel_dt(ctx, "pool", "fractional_fwd", x->dtype, NULL, &k);
  if (st == LAM_OK) {
    const int64_t rows = g.N * g.C * g.out[0] * g.out[1];
    lam__arg a[18] = {LAM__ARG_T(x), LAM__ARG_T(y), LAM__ARG_T(idx ? idx : y),
                      lam__arg_int(want_idx), LAM__ARG_T(smp), lam__arg_int(nsp),
                      lam__arg_int(rows), lam__arg_int8(3, g.in), lam__arg_int8(3, g.out),
                      lam__arg_int8(3, g.k), lam__arg_int8(3, smap),
                      lam__arg_real(x->dtype, alpha[0]), lam__arg_real(x->dtype, alpha[1]),
                      lam__arg_real(x->dtype, alpha[2])};
    st = lam__launch_rows(ctx, k, fn, 18, a, rows);
  }
  if (smp != o->samples) lam_tensor_free(smp);
  if (st != LAM_OK) {
    lam_tensor_free(y);
    lam_tensor_free(idx);
    return NULL;
  }
  lam__node *node = lam__tape_record(y, fn, lam__fractional_backward, 1, &x);
  if (node) {
    lam__node_save(node, idx);
    node->i[0] = g.N * g.C, node->i[1] = g.out[0] * g.out[1] * g.out[2];
    node->i[2] = g.in[0] * g.in[1] * g.in[2];
  }
  if (indices)
    *indices = idx;
  else
    lam_tensor_free(idx);
  return y;
}

lam_tensor *lam_fractional_max_pool2d(lam_tensor *x, lam_rng_key key,
                                      const lam_fractional_max_pool_opts *opts,
                                      lam_tensor **indices) {
  return lam__fractional(2, x, key, opts, indices, "lam_fractional_max_pool2d");
}
lam_tensor *lam_fractional_max_pool3d(lam_tensor *x, lam_rng_key key,
                                      const lam_fractional_max_pool_opts *opts,
                                      lam_tensor **indices) {
  return lam__fractional(3, x, key, opts, indices, "lam_fractional_max_pool3d");
}
