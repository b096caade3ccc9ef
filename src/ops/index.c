/* ops/index.c: indexing ops (gather, take, index_select, scatter_add,
 * one_hot) and triangular masks (tril, triu and their u8 masks), with the
 * backward rules next to each forward.
 *
 * Indices are i32 tensors on the device and are never read back on the host
 * (that would stall the queue). An index t into a dim of size n means t for
 * 0 <= t < n and t + n for -n <= t < 0; any other value is out of range and
 * gathers yield 0 there while scatters drop the entry (see cl/index.cl),
 * consistently in forward and backward. Scatter-adds run deterministically
 * without atomics: each work-item owns one column of the destination (see
 * cl/index.cl for the trade-off against atomics). */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "lamina/shape.h"

/* ---- helpers ----------------------------------------------------------- */

/* 3-D range over (n0, n1, n2) as in ops/shape.c: local (l0, l1, 1), dims 0
 * and 1 rounded up and guarded by the kernels. */
static lam_status lam__launch_box(lam_ctx *ctx, cl_kernel k, const char *fn, int nargs,
                                  const lam__arg *args, int64_t n0, int64_t n1, int64_t n2) {
  size_t wg = ctx->tuning.wg_1d, l0 = 1, l1 = 1;
  while (l0 < (size_t)n0 && l0 * 2 <= wg) l0 *= 2;
  while (l1 < (size_t)n1 && l0 * l1 * 2 <= wg) l1 *= 2;
  size_t global[3] = {((size_t)n0 + l0 - 1) / l0 * l0, ((size_t)n1 + l1 - 1) / l1 * l1,
                      (size_t)n2};
  size_t local[3] = {l0, l1, 1};
  return lam__launch(ctx, k, fn, nargs, args, 3, global, local);
}

/* out[k] = v[nd-1-k] (innermost first) for k < nd, else fill. */
static void lam__rev8(int nd, const int64_t *v, int64_t fill, int64_t *out) {
  for (int k = 0; k < 8; k++) out[k] = k < nd ? v[nd - 1 - k] : fill;
}

/* Checks that index is an i32 tensor on x's context. */
static lam_status lam__check_index(const char *fn, const lam_tensor *x, const lam_tensor *index,
                                   const char *name) {
  if (index->ctx != x->ctx)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: %s is on another context than x", fn, name);
  if (index->dtype != LAM_I32)
    return lam__fail(LAM_ERR_DTYPE, "%s: %s is %s; indices must be i32", fn, name,
                     lam_dtype_name(index->dtype));
  return LAM_OK;
}

static int lam__check_axis(const char *fn, int axis, int ndim) {
  int a = lam__axis(axis, ndim);
  if (a < 0)
    lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: axis %d is out of range for a %d-dim tensor", fn,
              axis, ndim);
  return a;
}

/* Launches gather: y (contiguous, oshape) from x along axis through xstride,
 * idx through istride; dim is x's size along the axis. */
static lam_status lam__gather_launch(const char *fn, const lam_tensor *x, const int64_t *xstride,
                                     int64_t dim, const lam_tensor *idx, const int64_t *istride,
                                     lam_tensor *y, int ndim, int axis, const int64_t *oshape) {
  int64_t ro[8], rxs[8], ris[8];
  lam__rev8(ndim, oshape, 1, ro);
  lam__rev8(ndim, xstride, 0, rxs);
  lam__rev8(ndim, istride, 0, ris);
  cl_kernel k;
  lam_status st = lam__kernel_dt(x->ctx, "index", "gather", x->dtype, NULL, &k);
  if (st != LAM_OK) return st;
  lam__arg args[] = {LAM__ARG_T(x), LAM__ARG_T(idx), LAM__ARG_T(y), lam__arg_int(ndim),
                     lam__arg_int(ndim - 1 - axis), lam__arg_int(dim), lam__arg_int(xstride[axis]),
                     lam__arg_int8(8, ro), lam__arg_int8(8, rxs), lam__arg_int8(8, ris)};
  return lam__launch_box(x->ctx, k, fn, 13, args, ro[0], ro[1], y->numel / (ro[0] * ro[1]));
}

/* y (contiguous, dshape) = base (NULL: zeros) plus s scattered along axis
 * by idx over the index extent ishape (idx and s addressed through istride /
 * sstride). The base is written with a streaming buffer copy/fill first;
 * then scatter_cols runs one work-item per column (see cl/index.cl). */
static lam_status lam__scatter_cols(const char *fn, lam_tensor *y, int ndim, int axis,
                                    const int64_t *dshape, const lam_tensor *base,
                                    const lam_tensor *idx, const int64_t *istride,
                                    const lam_tensor *s, const int64_t *sstride,
                                    const int64_t *ishape) {
  lam_ctx *ctx = y->ctx;
  size_t es = lam_dtype_size(y->dtype);
  cl_int err;
  if (base) {
    err = clEnqueueCopyBuffer(ctx->queue, base->buf->mem, y->buf->mem, base->offset * es,
                              y->offset * es, (size_t)y->numel * es, 0, NULL, NULL);
  } else {
    const uint64_t zero = 0;
    err = clEnqueueFillBuffer(ctx->queue, y->buf->mem, &zero, es, y->offset * es,
                              (size_t)y->numel * es, 0, NULL, NULL);
  }
  if (err != CL_SUCCESS) return lam__cl_fail(err, fn, base ? "clEnqueueCopyBuffer" : "clEnqueueFillBuffer");
  /* columns per work-item along the innermost dim: the tuning table's
   * index_run (1 on GPUs for coalescing, runs of 32 elsewhere; cl/index.cl) */
  int64_t ncols = y->numel / dshape[axis], rd[8], ri[8], ris[8], rss[8];
  int64_t inner = axis == ndim - 1 ? 1 : ishape[ndim - 1];
  int64_t cpw = axis == ndim - 1 ? 1 : ctx->tuning.index_run;
  if (cpw > inner) cpw = inner;
  int64_t nchunks = (inner + cpw - 1) / cpw;
  int64_t items = axis == ndim - 1 ? ncols : ncols / dshape[ndim - 1] * nchunks;
  lam__rev8(ndim, dshape, 1, rd);
  lam__rev8(ndim, ishape, 1, ri);
  lam__rev8(ndim, istride, 0, ris);
  lam__rev8(ndim, sstride, 0, rss);
  cl_kernel k;
  lam_status st = lam__kernel_dt(ctx, "index", "scatter_cols", y->dtype, NULL, &k);
  if (st != LAM_OK) return st;
  lam__arg args[] = {LAM__ARG_T(y), LAM__ARG_T(idx), LAM__ARG_T(s), lam__arg_int(items),
                     lam__arg_int(nchunks), lam__arg_int(cpw), lam__arg_int(ndim),
                     lam__arg_int(ndim - 1 - axis),
                     lam__arg_int(dshape[axis]), lam__arg_int(ishape[axis]),
                     lam__arg_int(istride[axis]), lam__arg_int(sstride[axis]),
                     lam__arg_int8(8, rd), lam__arg_int8(8, ri), lam__arg_int8(8, ris),
                     lam__arg_int8(8, rss)};
  return lam__launch_1d(ctx, k, fn, 19, args, (size_t)items);
}

/* ---- gather ------------------------------------------------------------ */

/* d/dx gather: scatter-add g into zeros along the axis (saved[0] = index). */
static lam_status lam__gather_backward(lam__node *node, lam_tensor *g, lam_tensor **gin) {
  if (!lam__node_needs(node, 0)) return LAM_OK;
  const lam_tensor *index = node->saved[0];
  int nd = node->in_ndim[0], axis = (int)node->i[0];
  lam_tensor *gx = lam__tensor_new(g->ctx, g->dtype, nd, node->in_shape[0], node->op);
  if (!gx) return lam_last_status();
  gin[0] = gx;
  int64_t is[LAM_MAX_DIMS];
  lam__strides(nd, index->shape, is);
  return lam__scatter_cols(node->op, gx, nd, axis, gx->shape, NULL, index, is, g, is, index->shape);
}

lam_tensor *lam_gather(lam_tensor *x, int axis, lam_tensor *index) {
  const char *fn = "lam_gather";
  if (!x) return lam__null_input(fn, "x");
  if (!index) return lam__null_input(fn, "index");
  if (lam__check_index(fn, x, index, "index") != LAM_OK) return NULL;
  if (x->ndim == 0) return lam__fail(LAM_ERR_SHAPE, "%s: x is 0-dim", fn), NULL;
  int a = lam__check_axis(fn, axis, x->ndim);
  if (a < 0) return NULL;
  char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR];
  if (index->ndim != x->ndim)
    return lam__fail(LAM_ERR_SHAPE, "%s: index %s has %d dims but x %s has %d; ranks must match",
                     fn, lam__shape_str(index->ndim, index->shape, b1), index->ndim,
                     lam__shape_str(x->ndim, x->shape, b2), x->ndim), NULL;
  for (int d = 0; d < x->ndim; d++)
    if (d != a && index->shape[d] > x->shape[d])
      return lam__fail(LAM_ERR_SHAPE, "%s: index %s is larger than x %s along axis %d", fn,
                       lam__shape_str(index->ndim, index->shape, b1),
                       lam__shape_str(x->ndim, x->shape, b2), d), NULL;
  lam_tensor *y = lam__tensor_new(x->ctx, x->dtype, index->ndim, index->shape, fn);
  if (!y) return NULL;
  int64_t xs[LAM_MAX_DIMS], is[LAM_MAX_DIMS];
  lam__strides(x->ndim, x->shape, xs);
  lam__strides(index->ndim, index->shape, is);
  if (lam__gather_launch(fn, x, xs, x->shape[a], index, is, y, x->ndim, a, index->shape) != LAM_OK) {
    lam_tensor_free(y);
    return NULL;
  }
  lam_tensor *ins[2] = {x, index};
  lam__node *node = lam__tape_record(y, fn, lam__gather_backward, 2, ins);
  if (node) {
    lam__node_save(node, index);
    node->i[0] = a;
  }
  return y;
}

/* ---- take / index_select ----------------------------------------------- */

/* x is viewed as [pre, J, post], the output as [pre, M, post] with M the
 * number of indices; the index is addressed with strides [0, 1, 0]. */
static void lam__take_dims(const int64_t *shape, int ndim, int axis, int64_t *pre, int64_t *post) {
  *pre = 1;
  *post = 1;
  for (int d = 0; d < axis; d++) *pre *= shape[d];
  for (int d = axis + 1; d < ndim; d++) *post *= shape[d];
}

static lam_status lam__take_backward(lam__node *node, lam_tensor *g, lam_tensor **gin) {
  if (!lam__node_needs(node, 0)) return LAM_OK;
  const lam_tensor *index = node->saved[0];
  int nd = node->in_ndim[0], axis = (int)node->i[0];
  lam_tensor *gx = lam__tensor_new(g->ctx, g->dtype, nd, node->in_shape[0], node->op);
  if (!gx) return lam_last_status();
  gin[0] = gx;
  int64_t pre, post, J = gx->shape[axis], M = index->numel;
  lam__take_dims(gx->shape, nd, axis, &pre, &post);
  int64_t dshape[3] = {pre, J, post}, ishape[3] = {pre, M, post}, is[3] = {0, 1, 0},
          gs[3] = {M * post, post, 1};
  return lam__scatter_cols(node->op, gx, 3, 1, dshape, NULL, index, is, g, gs, ishape);
}

static lam_tensor *lam__take(const char *fn, lam_tensor *x, lam_tensor *index, int axis) {
  if (!x) return lam__null_input(fn, "x");
  if (!index) return lam__null_input(fn, "index");
  if (lam__check_index(fn, x, index, "index") != LAM_OK) return NULL;
  if (x->ndim == 0) return lam__fail(LAM_ERR_SHAPE, "%s: x is 0-dim", fn), NULL;
  int a = lam__check_axis(fn, axis, x->ndim);
  if (a < 0) return NULL;
  int ond = x->ndim - 1 + index->ndim;
  if (ond > LAM_MAX_DIMS) {
    char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR];
    return lam__fail(LAM_ERR_SHAPE, "%s: x %s with index %s gives %d dims, more than %d", fn,
                     lam__shape_str(x->ndim, x->shape, b1),
                     lam__shape_str(index->ndim, index->shape, b2), ond, LAM_MAX_DIMS), NULL;
  }
  int64_t oshape[LAM_MAX_DIMS];
  int j = 0;
  for (int d = 0; d < a; d++) oshape[j++] = x->shape[d];
  for (int d = 0; d < index->ndim; d++) oshape[j++] = index->shape[d];
  for (int d = a + 1; d < x->ndim; d++) oshape[j++] = x->shape[d];
  lam_tensor *y = lam__tensor_new(x->ctx, x->dtype, ond, oshape, fn);
  if (!y) return NULL;
  int64_t pre, post, J = x->shape[a], M = index->numel;
  lam__take_dims(x->shape, x->ndim, a, &pre, &post);
  int64_t o3[3] = {pre, M, post}, xs[3] = {J * post, post, 1}, is[3] = {0, 1, 0};
  if (lam__gather_launch(fn, x, xs, J, index, is, y, 3, 1, o3) != LAM_OK) {
    lam_tensor_free(y);
    return NULL;
  }
  lam_tensor *ins[2] = {x, index};
  lam__node *node = lam__tape_record(y, fn, lam__take_backward, 2, ins);
  if (node) {
    lam__node_save(node, index);
    node->i[0] = a;
  }
  return y;
}

lam_tensor *lam_take(lam_tensor *x, lam_tensor *indices, int axis) {
  return lam__take("lam_take", x, indices, axis);
}

lam_tensor *lam_index_select(lam_tensor *x, int axis, lam_tensor *index) {
  const char *fn = "lam_index_select";
  if (!x) return lam__null_input(fn, "x");
  if (index && index->ndim != 1) {
    char b[LAM__SHAPE_STR];
    return lam__fail(LAM_ERR_SHAPE, "%s: index %s must be 1-D", fn,
                     lam__shape_str(index->ndim, index->shape, b)), NULL;
  }
  return lam__take(fn, x, index, axis);
}

/* ---- scatter_add ------------------------------------------------------- */

/* d/dx = g; d/dsrc = gather of g by the index (dropped entries get 0). */
static lam_status lam__scatter_add_backward(lam__node *node, lam_tensor *g, lam_tensor **gin) {
  if (lam__node_needs(node, 0)) gin[0] = lam_tensor_retain(g);
  if (!lam__node_needs(node, 2)) return LAM_OK;
  const lam_tensor *index = node->saved[0];
  int nd = g->ndim, axis = (int)node->i[0];
  lam_tensor *gs = lam__tensor_new(g->ctx, g->dtype, nd, index->shape, node->op);
  if (!gs) return lam_last_status();
  gin[2] = gs;
  int64_t xs[LAM_MAX_DIMS], is[LAM_MAX_DIMS];
  lam__strides(nd, g->shape, xs);
  lam__strides(nd, index->shape, is);
  return lam__gather_launch(node->op, g, xs, g->shape[axis], index, is, gs, nd, axis, index->shape);
}

lam_tensor *lam_scatter_add(lam_tensor *x, int axis, lam_tensor *index, lam_tensor *src) {
  const char *fn = "lam_scatter_add";
  if (!x) return lam__null_input(fn, "x");
  if (!index) return lam__null_input(fn, "index");
  if (!src) return lam__null_input(fn, "src");
  if (lam__check_index(fn, x, index, "index") != LAM_OK) return NULL;
  if (src->ctx != x->ctx)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: src is on another context than x", fn), NULL;
  if (src->dtype != x->dtype)
    return lam__fail(LAM_ERR_DTYPE, "%s: src is %s but x is %s", fn, lam_dtype_name(src->dtype),
                     lam_dtype_name(x->dtype)), NULL;
  if (x->ndim == 0) return lam__fail(LAM_ERR_SHAPE, "%s: x is 0-dim", fn), NULL;
  int a = lam__check_axis(fn, axis, x->ndim);
  if (a < 0) return NULL;
  char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR];
  if (index->ndim != x->ndim)
    return lam__fail(LAM_ERR_SHAPE, "%s: index %s has %d dims but x %s has %d; ranks must match",
                     fn, lam__shape_str(index->ndim, index->shape, b1), index->ndim,
                     lam__shape_str(x->ndim, x->shape, b2), x->ndim), NULL;
  if (!lam_tensor_same_shape(src, index))
    return lam__fail(LAM_ERR_SHAPE, "%s: src %s must have the shape of index %s", fn,
                     lam__shape_str(src->ndim, src->shape, b1),
                     lam__shape_str(index->ndim, index->shape, b2)), NULL;
  for (int d = 0; d < x->ndim; d++)
    if (d != a && index->shape[d] > x->shape[d])
      return lam__fail(LAM_ERR_SHAPE, "%s: index %s is larger than x %s along axis %d", fn,
                       lam__shape_str(index->ndim, index->shape, b1),
                       lam__shape_str(x->ndim, x->shape, b2), d), NULL;
  lam_tensor *y = lam__tensor_new(x->ctx, x->dtype, x->ndim, x->shape, fn);
  if (!y) return NULL;
  int64_t is[LAM_MAX_DIMS];
  lam__strides(index->ndim, index->shape, is);
  if (lam__scatter_cols(fn, y, x->ndim, a, x->shape, x, index, is, src, is, index->shape) != LAM_OK) {
    lam_tensor_free(y);
    return NULL;
  }
  lam_tensor *ins[3] = {x, index, src};
  lam__node *node = lam__tape_record(y, fn, lam__scatter_add_backward, 3, ins);
  if (node) {
    lam__node_save(node, index);
    node->i[0] = a;
  }
  return y;
}

/* ---- one_hot ----------------------------------------------------------- */

lam_tensor *lam_one_hot(lam_tensor *indices, int num_classes, lam_dtype dtype) {
  const char *fn = "lam_one_hot";
  if (!indices) return lam__null_input(fn, "indices");
  if (indices->dtype != LAM_I32)
    return lam__fail(LAM_ERR_DTYPE, "%s: indices are %s; they must be i32", fn,
                     lam_dtype_name(indices->dtype)), NULL;
  if (num_classes <= 0)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: num_classes is %d; it must be >= 1", fn,
                     num_classes), NULL;
  if (indices->ndim == LAM_MAX_DIMS)
    return lam__fail(LAM_ERR_SHAPE, "%s: indices already have %d dims", fn, LAM_MAX_DIMS), NULL;
  int64_t shape[LAM_MAX_DIMS];
  memcpy(shape, indices->shape, sizeof shape);
  shape[indices->ndim] = num_classes;
  lam_tensor *y = lam__tensor_new(indices->ctx, dtype, indices->ndim + 1, shape, fn);
  if (!y) return NULL;
  cl_kernel k;
  lam_status st = lam__kernel_dt(y->ctx, "index", "one_hot", dtype, NULL, &k);
  if (st == LAM_OK) {
    int64_t rows = indices->numel;
    lam__arg args[] = {LAM__ARG_T(indices), LAM__ARG_T(y), lam__arg_int(rows),
                       lam__arg_int(num_classes)};
    st = lam__launch_box(y->ctx, k, fn, 6, args, num_classes, rows, 1);
  }
  if (st != LAM_OK) {
    lam_tensor_free(y);
    return NULL;
  }
  return y; /* not differentiable: records nothing */
}

/* ---- tril / triu ------------------------------------------------------- */

static lam_status lam__tri_launch(const char *fn, const lam_tensor *x, lam_tensor *y, int k,
                                  int upper) {
  cl_kernel kern;
  lam_status st = lam__kernel_dt(x->ctx, "index", "tri", x->dtype, NULL, &kern);
  if (st != LAM_OK) return st;
  int64_t rows = x->shape[x->ndim - 2], cols = x->shape[x->ndim - 1];
  lam__arg args[] = {LAM__ARG_T(x), lam__arg_int(1), LAM__ARG_T(y), lam__arg_int(rows),
                     lam__arg_int(cols), lam__arg_int(k), lam__arg_int(upper)};
  return lam__launch_box(x->ctx, kern, fn, 9, args, cols, rows, x->numel / (rows * cols));
}

/* The same mask applied to g. */
static lam_status lam__tri_backward(lam__node *node, lam_tensor *g, lam_tensor **gin) {
  lam_tensor *gx = lam__tensor_new(g->ctx, g->dtype, g->ndim, g->shape, node->op);
  if (!gx) return lam_last_status();
  gin[0] = gx;
  return lam__tri_launch(node->op, g, gx, (int)node->i[0], (int)node->i[1]);
}

static lam_tensor *lam__tri(const char *fn, lam_tensor *x, int k, int upper) {
  if (!x) return lam__null_input(fn, "x");
  if (x->ndim < 2) {
    char b[LAM__SHAPE_STR];
    return lam__fail(LAM_ERR_SHAPE, "%s: x %s needs at least 2 dims", fn,
                     lam__shape_str(x->ndim, x->shape, b)), NULL;
  }
  lam_tensor *y = lam__tensor_new(x->ctx, x->dtype, x->ndim, x->shape, fn);
  if (!y) return NULL;
  if (lam__tri_launch(fn, x, y, k, upper) != LAM_OK) {
    lam_tensor_free(y);
    return NULL;
  }
  lam__node *node = lam__tape_record(y, fn, lam__tri_backward, 1, &x);
  if (node) {
    node->i[0] = k;
    node->i[1] = upper;
  }
  return y;
}

lam_tensor *lam_tril(lam_tensor *x, int k) { return lam__tri("lam_tril", x, k, 0); }
lam_tensor *lam_triu(lam_tensor *x, int k) { return lam__tri("lam_triu", x, k, 1); }

static lam_tensor *lam__tri_mask(const char *fn, lam_ctx *ctx, int64_t rows, int64_t cols, int k,
                                 int upper) {
  if (!ctx) return lam__null_input(fn, "ctx");
  int64_t shape[2] = {rows, cols};
  lam_tensor *y = lam__tensor_new(ctx, LAM_U8, 2, shape, fn);
  if (!y) return NULL;
  cl_kernel kern;
  lam_status st = lam__kernel_dt(ctx, "index", "tri", LAM_U8, NULL, &kern);
  if (st == LAM_OK) {
    lam__arg args[] = {LAM__ARG_T(y), lam__arg_int(0), LAM__ARG_T(y), lam__arg_int(rows),
                       lam__arg_int(cols), lam__arg_int(k), lam__arg_int(upper)};
    st = lam__launch_box(ctx, kern, fn, 9, args, cols, rows, 1);
  }
  if (st != LAM_OK) {
    lam_tensor_free(y);
    return NULL;
  }
  return y;
}

lam_tensor *lam_tril_mask(lam_ctx *ctx, int64_t rows, int64_t cols, int k) {
  return lam__tri_mask("lam_tril_mask", ctx, rows, cols, k, 0);
}
lam_tensor *lam_triu_mask(lam_ctx *ctx, int64_t rows, int64_t cols, int k) {
  return lam__tri_mask("lam_triu_mask", ctx, rows, cols, k, 1);
}
