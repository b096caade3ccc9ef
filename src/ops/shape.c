/* ops/shape.c: shape and data-movement ops (reshape-like views, permute,
 * transpose, contiguous, broadcast_to, concat, stack, split, Python-style
 * slices and pad) with their backward rules next to each forward.
 *
 * Every layout change is one "box copy" (cl/shape.cl strided_copy): a box of
 * up to 8 dims read through source strides and written through destination
 * strides. The host merges dims that are contiguous on both sides and drops
 * size-1 dims, so most copies become 1-2 dims or a plain clEnqueueCopyBuffer
 * (concat/split along a leading axis, contiguous copies); a box that is a
 * transpose of contiguous dims goes through the tiled kernel (local memory)
 * instead, so both sides are read and written along rows. When the result of
 * a permute/broadcast/slice/split occupies one contiguous run of the input,
 * the op returns a view on the input's buffer instead of copying, as
 * lam_tensor_reshape does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "lamina/shape.h"

/* ---- helpers ----------------------------------------------------------- */

/* Launches a cl/shape.cl-style 3-D range over (n0, n1, n2): local size
 * (l0, l1, 1) with l0*l1 up to the 1-D work-group size, dims 0 and 1
 * rounded up (kernels guard them), dim 2 exact. */
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

/* Copies the box `shape` (ndim dims) from x (element offset xo past
 * x->offset, strides xs) to y (offset yo past y->offset, strides ys). */
static lam_status lam__box_copy(const char *fn, const lam_tensor *x, int64_t xo, const int64_t *xs,
                                lam_tensor *y, int64_t yo, const int64_t *ys, int ndim,
                                const int64_t *shape) {
  int64_t sh[LAM_MAX_DIMS], a[LAM_MAX_DIMS], b[LAM_MAX_DIMS];
  int nd = 0;
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) {
    n *= shape[d];
    if (shape[d] == 1) continue;
    if (nd > 0 && a[nd - 1] == xs[d] * shape[d] && b[nd - 1] == ys[d] * shape[d]) {
      sh[nd - 1] *= shape[d];
      a[nd - 1] = xs[d];
      b[nd - 1] = ys[d];
    } else {
      sh[nd] = shape[d];
      a[nd] = xs[d];
      b[nd] = ys[d];
      nd++;
    }
  }
  lam_ctx *ctx = y->ctx;
  size_t es = lam_dtype_size(y->dtype);
  if (nd == 0 || (nd == 1 && a[0] == 1 && b[0] == 1)) {
    cl_int err = clEnqueueCopyBuffer(ctx->queue, x->buf->mem, y->buf->mem,
                                     ((size_t)x->offset + (size_t)xo) * es,
                                     ((size_t)y->offset + (size_t)yo) * es, (size_t)n * es, 0,
                                     NULL, NULL);
    return err == CL_SUCCESS ? LAM_OK : lam__cl_fail(err, fn, "clEnqueueCopyBuffer");
  }
  /* a transpose-like box (y contiguous along the innermost dim, x along
   * another): tiled through local memory */
  int jt = -1;
  if (b[nd - 1] == 1 && a[nd - 1] != 1 && sh[nd - 1] >= 8 && ctx->info.max_work_group_size >= 256)
    for (int j = 0; j < nd - 1; j++)
      if (a[j] == 1 && sh[j] >= 8) jt = j;
  if (jt >= 0) {
    int64_t os[8] = {1, 1, 1, 1, 1, 1, 1, 1}, oa[8] = {0}, ob[8] = {0}, n2 = 1;
    int nouter = 0;
    for (int j = nd - 2; j >= 0; j--) {
      if (j == jt) continue;
      os[nouter] = sh[j];
      oa[nouter] = a[j];
      ob[nouter++] = b[j];
      n2 *= sh[j];
    }
    cl_kernel k;
    lam_status st = lam__kernel_dt(ctx, "shape", "transpose_tile", y->dtype, NULL, &k);
    if (st != LAM_OK) return st;
    lam__arg args[] = {lam__arg_mem(x->buf->mem), lam__arg_int((int64_t)x->offset + xo),
                       lam__arg_mem(y->buf->mem), lam__arg_int((int64_t)y->offset + yo),
                       lam__arg_int(sh[nd - 1]), lam__arg_int(sh[jt]), lam__arg_int(a[nd - 1]),
                       lam__arg_int(b[jt]), lam__arg_int(nouter), lam__arg_int8(8, os),
                       lam__arg_int8(8, oa), lam__arg_int8(8, ob)};
    size_t global[3] = {((size_t)sh[nd - 1] + 31) / 32 * 32, ((size_t)sh[jt] + 31) / 32 * 8,
                        (size_t)n2};
    size_t local[3] = {32, 8, 1};
    return lam__launch(ctx, k, fn, 12, args, 3, global, local);
  }
  /* rows contiguous on both sides: a work-item per row (LAMINA_SHAPE_PATH=general: not) */
  const char *path = getenv("LAMINA_SHAPE_PATH");
  if (nd >= 2 && a[nd - 1] == 1 && b[nd - 1] == 1 && sh[nd - 1] >= 16 &&
      !(path && strcmp(path, "general") == 0)) {
    int64_t os[8] = {1, 1, 1, 1, 1, 1, 1, 1}, oa[8] = {0}, ob[8] = {0}, rows = sh[nd - 2];
    const int nouter = nd - 2;
    for (int j = 0; j < nouter; j++) {
      os[j] = sh[nouter - 1 - j];
      oa[j] = a[nouter - 1 - j];
      ob[j] = b[nouter - 1 - j];
      rows *= os[j];
    }
    cl_kernel k;
    lam_status st = lam__kernel_dt(ctx, "shape", "strided_rows", y->dtype, NULL, &k);
    if (st != LAM_OK) return st;
    lam__arg args[] = {lam__arg_mem(x->buf->mem), lam__arg_int((int64_t)x->offset + xo),
                       lam__arg_mem(y->buf->mem), lam__arg_int((int64_t)y->offset + yo),
                       lam__arg_int(sh[nd - 1]), lam__arg_int(sh[nd - 2]), lam__arg_int(a[nd - 2]),
                       lam__arg_int(b[nd - 2]), lam__arg_int(nouter), lam__arg_int8(8, os),
                       lam__arg_int8(8, oa), lam__arg_int8(8, ob), lam__arg_int(rows)};
    return lam__launch_rows(ctx, k, fn, 13, args, rows);
  }
  /* innermost dim -> range dim 0, next -> dim 1, the rest (innermost first) -> dim 2 */
  int64_t n0 = sh[nd - 1], n1 = nd > 1 ? sh[nd - 2] : 1, n2 = 1;
  int64_t os[8] = {1, 1, 1, 1, 1, 1, 1, 1}, oa[8] = {0}, ob[8] = {0};
  int nouter = nd > 2 ? nd - 2 : 0;
  for (int j = 0; j < nouter; j++) {
    os[j] = sh[nouter - 1 - j];
    oa[j] = a[nouter - 1 - j];
    ob[j] = b[nouter - 1 - j];
    n2 *= os[j];
  }
  cl_kernel k;
  lam_status st = lam__kernel_dt(ctx, "shape", "strided_copy", y->dtype, NULL, &k);
  if (st != LAM_OK) return st;
  lam__arg args[] = {lam__arg_mem(x->buf->mem), lam__arg_int((int64_t)x->offset + xo),
                     lam__arg_mem(y->buf->mem), lam__arg_int((int64_t)y->offset + yo),
                     lam__arg_int(n0), lam__arg_int(n1), lam__arg_int(a[nd - 1]),
                     lam__arg_int(b[nd - 1]), lam__arg_int(nd > 1 ? a[nd - 2] : 0),
                     lam__arg_int(nd > 1 ? b[nd - 2] : 0), lam__arg_int(nouter),
                     lam__arg_int8(8, os), lam__arg_int8(8, oa), lam__arg_int8(8, ob)};
  return lam__launch_box(ctx, k, fn, 14, args, n0, n1, n2);
}

/* True when reading `shape` through strides xs visits memory in row-major
 * order without gaps, i.e. the result is a contiguous run of the source. */
static bool lam__layout_trivial(int ndim, const int64_t *shape, const int64_t *xs) {
  int64_t s = 1;
  for (int d = ndim - 1; d >= 0; d--) {
    if (shape[d] != 1 && xs[d] != s) return false;
    s *= shape[d];
  }
  return true;
}

/* Returns a tensor of `shape` holding x read through strides xs from offset
 * xo (past x->offset): a view when that is a contiguous run, else a copy. */
static lam_tensor *lam__gather_box(const char *fn, lam_tensor *x, int64_t xo, const int64_t *xs,
                                   int ndim, const int64_t *shape) {
  if (lam__layout_trivial(ndim, shape, xs))
    return lam__tensor_view(x, x->offset + (size_t)xo, ndim, shape);
  lam_tensor *y = lam__tensor_new(x->ctx, x->dtype, ndim, shape, fn);
  if (!y) return NULL;
  int64_t ys[LAM_MAX_DIMS];
  lam__strides(ndim, shape, ys);
  if (lam__box_copy(fn, x, xo, xs, y, 0, ys, ndim, shape) != LAM_OK) {
    lam_tensor_free(y);
    return NULL;
  }
  return y;
}

/* Normalises axis against ndim or records "fn: axis A is out of range ...". */
static int lam__check_axis(const char *fn, int axis, int ndim) {
  int a = lam__axis(axis, ndim);
  if (a < 0)
    lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: axis %d is out of range for a %d-dim tensor", fn,
              axis, ndim);
  return a;
}

/* lam_tensor_reshape, with its error messages renamed after fn. */
static lam_tensor *lam__reshape_as(const char *fn, lam_tensor *x, int ndim, const int64_t *shape) {
  lam_tensor *v = lam_tensor_reshape(x, ndim, shape);
  static const char prefix[] = "lam_tensor_reshape";
  if (!v && x && strncmp(lam_last_error(), prefix, sizeof prefix - 1) == 0) {
    char rest[512];
    snprintf(rest, sizeof rest, "%s", lam_last_error() + sizeof prefix - 1);
    lam__fail(lam_last_status(), "%s%s", fn, rest);
  }
  return v;
}

/* ---- views ------------------------------------------------------------- */

lam_tensor *lam_reshape(lam_tensor *x, int ndim, const int64_t *shape) {
  if (!x) return lam__null_input("lam_reshape", "x");
  return lam__reshape_as("lam_reshape", x, ndim, shape);
}

lam_tensor *lam_unsqueeze(lam_tensor *x, int axis) {
  const char *fn = "lam_unsqueeze";
  if (!x) return lam__null_input(fn, "x");
  if (x->ndim == LAM_MAX_DIMS)
    return lam__fail(LAM_ERR_SHAPE, "%s: x already has %d dims", fn, LAM_MAX_DIMS), NULL;
  int a = lam__check_axis(fn, axis, x->ndim + 1);
  if (a < 0) return NULL;
  int64_t s[LAM_MAX_DIMS];
  for (int d = 0, j = 0; d <= x->ndim; d++) s[d] = d == a ? 1 : x->shape[j++];
  return lam__reshape_as(fn, x, x->ndim + 1, s);
}

lam_tensor *lam_squeeze(lam_tensor *x, int axis) {
  const char *fn = "lam_squeeze";
  if (!x) return lam__null_input(fn, "x");
  int a = lam__check_axis(fn, axis, x->ndim);
  if (a < 0) return NULL;
  if (x->shape[a] != 1) {
    char b[LAM__SHAPE_STR];
    return lam__fail(LAM_ERR_SHAPE, "%s: axis %d of %s has size %lld, not 1", fn, axis,
                     lam__shape_str(x->ndim, x->shape, b), (long long)x->shape[a]), NULL;
  }
  int64_t s[LAM_MAX_DIMS];
  for (int d = 0, j = 0; d < x->ndim; d++)
    if (d != a) s[j++] = x->shape[d];
  return lam__reshape_as(fn, x, x->ndim - 1, s);
}

lam_tensor *lam_flatten(lam_tensor *x, int start_axis, int end_axis) {
  const char *fn = "lam_flatten";
  if (!x) return lam__null_input(fn, "x");
  int nd = x->ndim ? x->ndim : 1; /* a scalar flattens to [1], as in PyTorch */
  int s0 = lam__check_axis(fn, start_axis, nd);
  if (s0 < 0) return NULL;
  int s1 = lam__check_axis(fn, end_axis, nd);
  if (s1 < 0) return NULL;
  if (s0 > s1)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: start axis %d comes after end axis %d", fn,
                     start_axis, end_axis), NULL;
  int64_t s[LAM_MAX_DIMS];
  int j = 0;
  for (int d = 0; d < nd; d++) {
    int64_t dim = x->ndim ? x->shape[d] : 1;
    if (d > s0 && d <= s1) s[j - 1] *= dim;
    else s[j++] = dim;
  }
  return lam__reshape_as(fn, x, j, s);
}

/* ---- permute / transpose ----------------------------------------------- */

static lam_tensor *lam__permute(const char *fn, lam_tensor *x, const int *perm);

static lam_status lam__permute_backward(lam__node *node, lam_tensor *g, lam_tensor **gin) {
  int inv[LAM_MAX_DIMS];
  for (int i = 0; i < node->out_ndim; i++) inv[node->i[i]] = i;
  gin[0] = lam__permute(node->op, g, inv);
  return gin[0] ? LAM_OK : lam_last_status();
}

/* perm is already validated and normalised. */
static lam_tensor *lam__permute(const char *fn, lam_tensor *x, const int *perm) {
  int64_t xs[LAM_MAX_DIMS], ps[LAM_MAX_DIMS], shape[LAM_MAX_DIMS];
  lam__strides(x->ndim, x->shape, xs);
  for (int i = 0; i < x->ndim; i++) {
    shape[i] = x->shape[perm[i]];
    ps[i] = xs[perm[i]];
  }
  lam_tensor *y = lam__gather_box(fn, x, 0, ps, x->ndim, shape);
  if (!y) return NULL;
  lam__node *node = lam__tape_record(y, fn, lam__permute_backward, 1, &x);
  if (node)
    for (int i = 0; i < x->ndim; i++) node->i[i] = perm[i];
  return y;
}

lam_tensor *lam_permute(lam_tensor *x, const int *perm) {
  const char *fn = "lam_permute";
  if (!x) return lam__null_input(fn, "x");
  if (!perm && x->ndim > 0) return lam__fail(LAM_ERR_NULL, "%s: perm is NULL", fn), NULL;
  int p[LAM_MAX_DIMS];
  bool seen[LAM_MAX_DIMS] = {false};
  for (int i = 0; i < x->ndim; i++) {
    p[i] = lam__axis(perm[i], x->ndim);
    if (p[i] < 0 || seen[p[i]]) {
      char buf[64] = "", *e = buf;
      for (int j = 0; j < x->ndim; j++)
        e += snprintf(e, (size_t)(buf + sizeof buf - e), "%s%d", j ? "," : "", perm[j]);
      return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                       "%s: perm [%s] is not a permutation of the %d axes of x (entry %d)", fn,
                       buf, x->ndim, i), NULL;
    }
    seen[p[i]] = true;
  }
  return lam__permute(fn, x, p);
}

lam_tensor *lam_transpose(lam_tensor *x, int axis0, int axis1) {
  const char *fn = "lam_transpose";
  if (!x) return lam__null_input(fn, "x");
  int a0 = lam__check_axis(fn, axis0, x->ndim);
  if (a0 < 0) return NULL;
  int a1 = lam__check_axis(fn, axis1, x->ndim);
  if (a1 < 0) return NULL;
  int p[LAM_MAX_DIMS];
  for (int i = 0; i < x->ndim; i++) p[i] = i;
  p[a0] = a1;
  p[a1] = a0;
  return lam__permute(fn, x, p);
}

/* ---- contiguous -------------------------------------------------------- */

static lam_status lam__identity_backward(lam__node *node, lam_tensor *g, lam_tensor **gin) {
  (void)node;
  gin[0] = lam_tensor_retain(g);
  return LAM_OK;
}

lam_tensor *lam_contiguous(lam_tensor *x) {
  const char *fn = "lam_contiguous";
  if (!x) return lam__null_input(fn, "x");
  lam_tensor *y = lam__tensor_new(x->ctx, x->dtype, x->ndim, x->shape, fn);
  if (!y) return NULL;
  int64_t s[LAM_MAX_DIMS];
  lam__strides(x->ndim, x->shape, s);
  if (lam__box_copy(fn, x, 0, s, y, 0, s, x->ndim, x->shape) != LAM_OK) {
    lam_tensor_free(y);
    return NULL;
  }
  lam__tape_record(y, fn, lam__identity_backward, 1, &x);
  return y;
}

/* ---- broadcast_to ------------------------------------------------------ */

static lam_status lam__broadcast_backward(lam__node *node, lam_tensor *g, lam_tensor **gin) {
  gin[0] = lam__sum_to_shape(g, node->in_ndim[0], node->in_shape[0]);
  return gin[0] ? LAM_OK : lam_last_status();
}

lam_tensor *lam_broadcast_to(lam_tensor *x, int ndim, const int64_t *shape) {
  const char *fn = "lam_broadcast_to";
  if (!x) return lam__null_input(fn, "x");
  if (lam__check_shape(fn, ndim, shape, NULL) != LAM_OK) return NULL;
  int64_t xs[LAM_MAX_DIMS], bs[LAM_MAX_DIMS];
  lam__strides(x->ndim, x->shape, xs);
  for (int d = 0; d < ndim || d < x->ndim; d++) {
    int src = d - (ndim - x->ndim);
    if (d >= ndim || (src >= 0 && x->shape[src] != 1 && x->shape[src] != shape[d])) {
      char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR];
      return lam__fail(LAM_ERR_SHAPE, "%s: cannot broadcast %s to %s", fn,
                       lam__shape_str(x->ndim, x->shape, b1), lam__shape_str(ndim, shape, b2)),
             NULL;
    }
    bs[d] = src >= 0 && x->shape[src] == shape[d] ? xs[src] : 0;
  }
  lam_tensor *y = lam__gather_box(fn, x, 0, bs, ndim, shape);
  if (y) lam__tape_record(y, fn, lam__broadcast_backward, 1, &x);
  return y;
}

/* ---- concat / stack ---------------------------------------------------- */

/* Inputs are viewed as [outer, a_k, inner] with a_k = numel_k / (outer*inner);
 * the output as [outer, A, inner]. A node holds at most 4 inputs, so joins
 * of more tensors record a chain: each later node takes the previous node's
 * output handle (a view of the result) as input 0 and passes g through. */
static lam_status lam__join_backward(lam__node *node, lam_tensor *g, lam_tensor **gin) {
  int64_t outer = node->i[0], inner = node->i[1], total = node->i[2];
  int first = (int)node->i[3];
  if (first && lam__node_needs(node, 0)) gin[0] = lam_tensor_retain(g);
  for (int j = first; j < node->n_inputs; j++) {
    if (!lam__node_needs(node, j)) continue;
    lam_tensor *t = lam__tensor_new(g->ctx, g->dtype, node->in_ndim[j], node->in_shape[j], node->op);
    if (!t) return lam_last_status();
    gin[j] = t;
    int64_t a = t->numel / (outer * inner);
    int64_t box[3] = {outer, a, inner}, gs[3] = {total * inner, inner, 1}, ts[3] = {a * inner, inner, 1};
    lam_status st = lam__box_copy(node->op, g, node->i[4 + j] * inner, gs, t, 0, ts, 3, box);
    if (st != LAM_OK) return st;
  }
  return LAM_OK;
}

static lam_status lam__join_record(const char *fn, lam_tensor *out, lam_tensor *const *xs, int n,
                                   int64_t outer, int64_t inner, int64_t total) {
  lam_ctx *ctx = out->ctx;
  if (!lam_grad_is_recording(ctx)) return LAM_OK;
  bool any = false;
  for (int k = 0; k < n; k++) any = any || lam__tracked(xs[k]);
  if (!any) return LAM_OK;
  lam_tensor *prev = NULL;
  int64_t off = 0;
  for (int k = 0; k < n;) {
    lam_tensor *ins[LAM__NODE_MAX_INPUTS];
    int64_t offs[LAM__NODE_MAX_INPUTS] = {0};
    int m = 0, first = prev ? 1 : 0;
    if (prev) ins[m++] = prev;
    while (m < LAM__NODE_MAX_INPUTS && k < n) {
      offs[m] = off;
      off += xs[k]->numel / (outer * inner);
      ins[m++] = xs[k++];
    }
    lam_tensor *h = k == n ? out : lam__tensor_view(out, out->offset, out->ndim, out->shape);
    if (!h) {
      lam_tensor_free(prev);
      return lam_last_status();
    }
    lam__node *node = lam__tape_record(h, fn, lam__join_backward, m, ins);
    if (node) {
      node->i[0] = outer;
      node->i[1] = inner;
      node->i[2] = total;
      node->i[3] = first;
      for (int j = 0; j < m; j++) node->i[4 + j] = offs[j];
    }
    lam_tensor_free(prev);
    prev = k == n ? NULL : h;
  }
  return LAM_OK;
}

/* Joins validated inputs into a new tensor of oshape. */
static lam_tensor *lam__join(const char *fn, lam_tensor *const *xs, int n, int64_t outer,
                             int64_t inner, int ndim, const int64_t *oshape) {
  lam_tensor *y = lam__tensor_new(xs[0]->ctx, xs[0]->dtype, ndim, oshape, fn);
  if (!y) return NULL;
  int64_t total = y->numel / (outer * inner), off = 0;
  for (int k = 0; k < n; k++) {
    int64_t a = xs[k]->numel / (outer * inner);
    int64_t box[3] = {outer, a, inner}, xst[3] = {a * inner, inner, 1},
            yst[3] = {total * inner, inner, 1};
    if (lam__box_copy(fn, xs[k], 0, xst, y, off * inner, yst, 3, box) != LAM_OK) {
      lam_tensor_free(y);
      return NULL;
    }
    off += a;
  }
  if (lam__join_record(fn, y, xs, n, outer, inner, total) != LAM_OK) {
    lam_tensor_free(y);
    return NULL;
  }
  return y;
}

/* Checks xs (n tensors, none NULL, one ctx and dtype). */
static lam_status lam__check_list(const char *fn, lam_tensor *const *xs, int n) {
  if (!xs) return lam__fail(LAM_ERR_NULL, "%s: xs is NULL", fn);
  if (n < 1) return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: n is %d; it must be >= 1", fn, n);
  for (int k = 0; k < n; k++) {
    if (!xs[k]) {
      char what[32];
      snprintf(what, sizeof what, "xs[%d]", k);
      lam__null_input(fn, what);
      return lam_last_status() != LAM_OK ? lam_last_status() : LAM_ERR_NULL;
    }
  }
  for (int k = 1; k < n; k++) {
    if (xs[k]->ctx != xs[0]->ctx)
      return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: xs[%d] is on another context than xs[0]",
                       fn, k);
    if (xs[k]->dtype != xs[0]->dtype)
      return lam__fail(LAM_ERR_DTYPE, "%s: xs[%d] is %s but xs[0] is %s", fn, k,
                       lam_dtype_name(xs[k]->dtype), lam_dtype_name(xs[0]->dtype));
  }
  return LAM_OK;
}

lam_tensor *lam_concat(lam_tensor *const *xs, int n, int axis) {
  const char *fn = "lam_concat";
  if (lam__check_list(fn, xs, n) != LAM_OK) return NULL;
  const lam_tensor *x0 = xs[0];
  if (x0->ndim == 0)
    return lam__fail(LAM_ERR_SHAPE, "%s: 0-dim tensors cannot be joined (use lam_stack)", fn), NULL;
  int a = lam__check_axis(fn, axis, x0->ndim);
  if (a < 0) return NULL;
  int64_t oshape[LAM_MAX_DIMS];
  memcpy(oshape, x0->shape, sizeof oshape);
  oshape[a] = 0;
  for (int k = 0; k < n; k++) {
    bool ok = xs[k]->ndim == x0->ndim;
    for (int d = 0; ok && d < x0->ndim; d++) ok = d == a || xs[k]->shape[d] == x0->shape[d];
    if (!ok) {
      char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR];
      return lam__fail(LAM_ERR_SHAPE, "%s: xs[%d] has shape %s but xs[0] has %s; they must match "
                       "except along axis %d", fn, k, lam__shape_str(xs[k]->ndim, xs[k]->shape, b1),
                       lam__shape_str(x0->ndim, x0->shape, b2), axis), NULL;
    }
    oshape[a] += xs[k]->shape[a];
    if (oshape[a] > LAM__MAX_NUMEL)
      return lam__fail(LAM_ERR_OUT_OF_MEMORY, "%s: the result has 2^31 or more elements", fn), NULL;
  }
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < a; d++) outer *= x0->shape[d];
  for (int d = a + 1; d < x0->ndim; d++) inner *= x0->shape[d];
  return lam__join(fn, xs, n, outer, inner, x0->ndim, oshape);
}

lam_tensor *lam_stack(lam_tensor *const *xs, int n, int axis) {
  const char *fn = "lam_stack";
  if (lam__check_list(fn, xs, n) != LAM_OK) return NULL;
  const lam_tensor *x0 = xs[0];
  if (x0->ndim == LAM_MAX_DIMS)
    return lam__fail(LAM_ERR_SHAPE, "%s: inputs already have %d dims", fn, LAM_MAX_DIMS), NULL;
  int a = lam__check_axis(fn, axis, x0->ndim + 1);
  if (a < 0) return NULL;
  for (int k = 1; k < n; k++) {
    if (!lam_tensor_same_shape(xs[k], x0)) {
      char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR];
      return lam__fail(LAM_ERR_SHAPE, "%s: xs[%d] has shape %s but xs[0] has %s; all must match",
                       fn, k, lam__shape_str(xs[k]->ndim, xs[k]->shape, b1),
                       lam__shape_str(x0->ndim, x0->shape, b2)), NULL;
    }
  }
  int64_t oshape[LAM_MAX_DIMS], outer = 1, inner = 1;
  for (int d = 0, j = 0; d <= x0->ndim; d++) oshape[d] = d == a ? n : x0->shape[j++];
  for (int d = 0; d < a; d++) outer *= x0->shape[d];
  for (int d = a; d < x0->ndim; d++) inner *= x0->shape[d];
  if (x0->numel > LAM__MAX_NUMEL / n)
    return lam__fail(LAM_ERR_OUT_OF_MEMORY, "%s: the result has 2^31 or more elements", fn), NULL;
  return lam__join(fn, xs, n, outer, inner, x0->ndim + 1, oshape);
}

/* ---- split ------------------------------------------------------------- */

/* Gradient of one part: zeros shaped like x with g written into the part's
 * region (the other parts' gradients arrive through their own nodes). */
static lam_status lam__split_backward(lam__node *node, lam_tensor *g, lam_tensor **gin) {
  int64_t outer = node->i[0], inner = node->i[1], total = node->i[2], off = node->i[3];
  lam_tensor *z = lam_tensor_zeros(g->ctx, g->dtype, node->in_ndim[0], node->in_shape[0]);
  if (!z) return lam_last_status();
  gin[0] = z;
  int64_t a = g->numel / (outer * inner);
  int64_t box[3] = {outer, a, inner}, gs[3] = {a * inner, inner, 1}, zs[3] = {total * inner, inner, 1};
  return lam__box_copy(node->op, g, 0, gs, z, off * inner, zs, 3, box);
}

lam_status lam_split(lam_tensor *x, int axis, int n, const int64_t *sizes, lam_tensor **out) {
  const char *fn = "lam_split";
  if (!out) return lam__fail(LAM_ERR_NULL, "%s: out is NULL", fn);
  if (n < 1) return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: n is %d; it must be >= 1", fn, n);
  for (int k = 0; k < n; k++) out[k] = NULL;
  if (!x) {
    lam__null_input(fn, "x");
    return lam_last_status() != LAM_OK ? lam_last_status() : LAM_ERR_NULL;
  }
  if (x->ndim == 0) return lam__fail(LAM_ERR_SHAPE, "%s: a 0-dim tensor has no axis to split", fn);
  int a = lam__check_axis(fn, axis, x->ndim);
  if (a < 0) return lam_last_status();
  int64_t dim = x->shape[a];
  if (!sizes) {
    if (dim % n != 0)
      return lam__fail(LAM_ERR_SHAPE, "%s: axis %d of size %lld does not split into %d equal parts",
                       fn, axis, (long long)dim, n);
  } else {
    int64_t sum = 0;
    for (int k = 0; k < n; k++)
      if (sizes[k] < 1)
        return lam__fail(LAM_ERR_SHAPE, "%s: sizes[%d] is %lld; parts must have size >= 1", fn, k,
                         (long long)sizes[k]);
    for (int k = 0; k < n && sum <= dim; k++) sum += sizes[k] > dim ? dim + 1 : sizes[k];
    if (sum != dim)
      return lam__fail(LAM_ERR_SHAPE, "%s: sizes do not sum to %lld, the size of axis %d", fn,
                       (long long)dim, axis);
  }
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < a; d++) outer *= x->shape[d];
  for (int d = a + 1; d < x->ndim; d++) inner *= x->shape[d];
  int64_t off = 0;
  for (int k = 0; k < n; k++) {
    int64_t s = sizes ? sizes[k] : dim / n;
    int64_t shape[LAM_MAX_DIMS], box[3] = {outer, s, inner}, xs[3] = {dim * inner, inner, 1};
    memcpy(shape, x->shape, sizeof shape);
    shape[a] = s;
    lam_tensor *p = lam__gather_box(fn, x, off * inner, xs, 3, box);
    lam_tensor *v = p ? lam__tensor_view(p, p->offset, x->ndim, shape) : NULL;
    lam_tensor_free(p);
    if (!v) {
      for (int j = 0; j < k; j++) {
        lam_tensor_free(out[j]);
        out[j] = NULL;
      }
      return lam_last_status();
    }
    lam__node *node = lam__tape_record(v, fn, lam__split_backward, 1, &x);
    if (node) {
      node->i[0] = outer;
      node->i[1] = inner;
      node->i[2] = dim;
      node->i[3] = off;
    }
    out[k] = v;
    off += s;
  }
  return LAM_OK;
}

/* ---- slice ------------------------------------------------------------- */

/* Gradient: zeros shaped like x with g written through the slice's strides. */
static lam_status lam__slice_backward(lam__node *node, lam_tensor *g, lam_tensor **gin) {
  int nd = node->in_ndim[0];
  lam_tensor *z = lam_tensor_zeros(g->ctx, g->dtype, nd, node->in_shape[0]);
  if (!z) return lam_last_status();
  gin[0] = z;
  int64_t xs[LAM_MAX_DIMS], zs[LAM_MAX_DIMS], gs[LAM_MAX_DIMS], off = 0;
  lam__strides(nd, node->in_shape[0], xs);
  lam__strides(nd, g->shape, gs);
  for (int d = 0; d < nd; d++) {
    off += node->i[d] * xs[d];
    zs[d] = xs[d] * node->i[8 + d];
  }
  return lam__box_copy(node->op, g, 0, gs, z, off, zs, nd, g->shape);
}

/* start/stop may be NULL (Python's None); step has no NULL here. */
static lam_tensor *lam__slice(const char *fn, lam_tensor *x, const int64_t *start,
                              const int64_t *stop, const int64_t *step) {
  int nd = x->ndim;
  int64_t xs[LAM_MAX_DIMS], st[LAM_MAX_DIMS], beg[LAM_MAX_DIMS], shape[LAM_MAX_DIMS],
      ss[LAM_MAX_DIMS], off = 0;
  lam__strides(nd, x->shape, xs);
  for (int d = 0; d < nd; d++) {
    int64_t dim = x->shape[d], p = step[d], s, e, len;
    if (p == 0)
      return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: the step of axis %d is 0", fn, d), NULL;
    if (start) {
      s = start[d];
      if (s < 0) {
        s += dim;
        if (s < 0) s = p < 0 ? -1 : 0;
      } else if (s >= dim) {
        s = p < 0 ? dim - 1 : dim;
      }
    } else {
      s = p < 0 ? dim - 1 : 0;
    }
    if (stop) {
      e = stop[d];
      if (e < 0) {
        e += dim;
        if (e < 0) e = p < 0 ? -1 : 0;
      } else if (e >= dim) {
        e = p < 0 ? dim - 1 : dim;
      }
    } else {
      e = p < 0 ? -1 : dim;
    }
    /* |step| > dim selects at most one element: clamp so strides stay small. */
    if (p > dim) p = dim;
    if (p < -dim) p = -dim;
    if (p > 0) len = s < e ? (e - s - 1) / p + 1 : 0;
    else len = e < s ? (s - e - 1) / (-p) + 1 : 0;
    if (len == 0) {
      char b[LAM__SHAPE_STR], b0[24] = "None", b1[24] = "None";
      if (start) snprintf(b0, sizeof b0, "%lld", (long long)start[d]);
      if (stop) snprintf(b1, sizeof b1, "%lld", (long long)stop[d]);
      return lam__fail(LAM_ERR_SHAPE, "%s: axis %d of %s: slice %s:%s:%lld selects no elements "
                       "(zero-size tensors are not supported)", fn, d,
                       lam__shape_str(nd, x->shape, b), b0, b1, (long long)step[d]), NULL;
    }
    beg[d] = s;
    st[d] = p;
    shape[d] = len;
    ss[d] = xs[d] * p;
    off += s * xs[d];
  }
  lam_tensor *y = lam__gather_box(fn, x, off, ss, nd, shape);
  if (!y) return NULL;
  lam__node *node = lam__tape_record(y, fn, lam__slice_backward, 1, &x);
  if (node)
    for (int d = 0; d < nd; d++) {
      node->i[d] = beg[d];
      node->i[8 + d] = st[d];
    }
  return y;
}

lam_tensor *lam_slice(lam_tensor *x, const int64_t *start, const int64_t *stop,
                      const int64_t *step) {
  const char *fn = "lam_slice";
  if (!x) return lam__null_input(fn, "x");
  int64_t ones[LAM_MAX_DIMS] = {1, 1, 1, 1, 1, 1, 1, 1};
  return lam__slice(fn, x, start, stop, step ? step : ones);
}

lam_tensor *lam_slice_axis(lam_tensor *x, int axis, int64_t start, int64_t stop, int64_t step) {
  const char *fn = "lam_slice_axis";
  if (!x) return lam__null_input(fn, "x");
  int a = lam__check_axis(fn, axis, x->ndim);
  if (a < 0) return NULL;
  int64_t s[LAM_MAX_DIMS], e[LAM_MAX_DIMS], p[LAM_MAX_DIMS];
  for (int d = 0; d < x->ndim; d++) {
    s[d] = d == a ? start : 0;
    e[d] = d == a ? stop : x->shape[d];
    p[d] = d == a ? step : 1;
  }
  return lam__slice(fn, x, s, e, p);
}

/* ---- pad --------------------------------------------------------------- */

/* One kernel for every mode: each x element sums the g positions that read
 * it (constant: its copy only, so this is a crop). */
static lam_status lam__pad_backward(lam__node *node, lam_tensor *g, lam_tensor **gin) {
  int nd = node->in_ndim[0];
  lam_tensor *gx = lam__tensor_new(g->ctx, g->dtype, nd, node->in_shape[0], node->op);
  if (!gx) return lam_last_status();
  gin[0] = gx;
  int64_t before[LAM_MAX_DIMS], rb[8], rg[8], rx[8];
  for (int d = 0; d < nd; d++) before[d] = node->i[2 * d];
  lam__rev8(nd, before, 0, rb);
  lam__rev8(nd, g->shape, 1, rg);
  lam__rev8(nd, gx->shape, 1, rx);
  cl_kernel k;
  lam_status st = lam__kernel_dt(g->ctx, "shape", "pad_backward", g->dtype, NULL, &k);
  if (st != LAM_OK) return st;
  lam__arg args[] = {LAM__ARG_T(g), LAM__ARG_T(gx), lam__arg_int(nd), lam__arg_int8(8, rg),
                     lam__arg_int8(8, rx), lam__arg_int8(8, rb), lam__arg_int(node->i[16])};
  return lam__launch_box(g->ctx, k, node->op, 9, args, rx[0], rx[1], gx->numel / (rx[0] * rx[1]));
}

lam_tensor *lam_pad(lam_tensor *x, const int64_t *pads, lam_pad_mode mode, double value) {
  const char *fn = "lam_pad";
  if (!x) return lam__null_input(fn, "x");
  if (mode != LAM_PAD_CONSTANT && mode != LAM_PAD_REFLECT && mode != LAM_PAD_REPLICATE &&
      mode != LAM_PAD_CIRCULAR)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: unknown pad mode %d", fn, (int)mode), NULL;
  if (!pads && x->ndim > 0) return lam__fail(LAM_ERR_NULL, "%s: pads is NULL", fn), NULL;
  double lo = x->dtype == LAM_I32 ? -2147483648.0 : 0, hi = x->dtype == LAM_I32 ? 2147483647.0 : 255;
  if (mode == LAM_PAD_CONSTANT && !lam_dtype_is_float(x->dtype) && !(value >= lo && value <= hi))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: value %g does not fit dtype %s", fn, value,
                     lam_dtype_name(x->dtype)), NULL;
  int nd = x->ndim;
  int64_t oshape[LAM_MAX_DIMS] = {0}, before[LAM_MAX_DIMS] = {0};
  for (int d = 0; d < nd; d++) {
    int64_t b = pads[2 * d], a = pads[2 * d + 1];
    if (b < 0 || a < 0 || b > LAM__MAX_NUMEL || a > LAM__MAX_NUMEL)
      return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: pads[%d] is %lld; pads must be in 0..2^31",
                       fn, b < 0 || b > LAM__MAX_NUMEL ? 2 * d : 2 * d + 1,
                       (long long)(b < 0 || b > LAM__MAX_NUMEL ? b : a)), NULL;
    if (mode == LAM_PAD_REFLECT && (b >= x->shape[d] || a >= x->shape[d]))
      return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: reflect pads (%lld, %lld) of axis %d must be "
                       "less than its size %lld", fn, (long long)b, (long long)a, d,
                       (long long)x->shape[d]), NULL;
    if (mode == LAM_PAD_CIRCULAR && (b > x->shape[d] || a > x->shape[d]))
      return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: circular pads (%lld, %lld) of axis %d must be "
                       "at most its size %lld (one wrap)", fn, (long long)b, (long long)a, d,
                       (long long)x->shape[d]), NULL;
    before[d] = b;
    oshape[d] = x->shape[d] + b + a;
  }
  lam_tensor *y = lam__tensor_new(x->ctx, x->dtype, nd, oshape, fn);
  if (!y) return NULL;
  /* size-1 dims without pads change nothing: drop them so the two range
   * dims carry real extents */
  int kd = 0;
  int64_t ks[LAM_MAX_DIMS], kx[LAM_MAX_DIMS], kb[LAM_MAX_DIMS], ry[8], rx[8], rb[8];
  for (int d = 0; d < nd; d++)
    if (oshape[d] != 1) {
      ks[kd] = oshape[d];
      kx[kd] = x->shape[d];
      kb[kd++] = before[d];
    }
  lam__rev8(kd, ks, 1, ry);
  lam__rev8(kd, kx, 1, rx);
  lam__rev8(kd, kb, 0, rb);
  cl_kernel k;
  lam_status st = lam__kernel_dt(x->ctx, "shape", "pad", x->dtype, NULL, &k);
  if (st == LAM_OK) {
    lam__arg args[] = {LAM__ARG_T(x), LAM__ARG_T(y), lam__arg_int(kd), lam__arg_int8(8, ry),
                       lam__arg_int8(8, rx), lam__arg_int8(8, rb), lam__arg_int(mode),
                       lam__arg_real(x->dtype, value)};
    st = lam__launch_box(x->ctx, k, fn, 10, args, ry[0], ry[1], y->numel / (ry[0] * ry[1]));
  }
  if (st != LAM_OK) {
    lam_tensor_free(y);
    return NULL;
  }
  lam__node *node = lam__tape_record(y, fn, lam__pad_backward, 1, &x);
  if (node) {
    for (int d = 0; d < 2 * nd; d++) node->i[d] = pads[d];
    node->i[16] = mode;
  }
  return y;
}
