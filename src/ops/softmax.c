/* ops/softmax.c: softmax and log_softmax along one axis, with their
 * backward rules. x is viewed as [outer, D, inner]. Three paths:
 *  rows:   one work-item per row (max, sum of exp, write; stride `inner` for
 *          axes other than the last, 16-wide when inner is 1);
 *  cols:   CPUs with inner >= 16 and D <= 256: 16 neighbouring rows per
 *          work-item, one 16-wide load per step (memory streams instead of
 *          striding column by column);
 *  reduce: few long rows: the chunked reduce kernel (max, then sum of
 *          exp(x - max)) and the bcast kernel spread one row over every core.
 * rows/cols are taken when they give enough work-items to fill the device
 * (or the tensor is small). All are stable for large |x| (max subtraction).
 * LAMINA_SOFTMAX_PATH=rows|cols|reduce forces a path (tests and tuning). */
#include <stdlib.h>
#include <string.h>

#include "lamina/reduce.h"
#include "ops/reduce_internal.h"

enum { LAM__SM_ROWS, LAM__SM_COLS, LAM__SM_REDUCE };

typedef struct lam__smgeom {
  int axis;
  int64_t outer, D, inner;
  int path;        /* LAM__SM_* */
  int64_t nwork;   /* work-items of the rows/cols kernels */
  int64_t nblk;    /* cols: blocks of 16 inner positions */
} lam__smgeom;

static void lam__softmax_geom(lam_ctx *ctx, int ndim, const int64_t *shape, int axis,
                              lam__smgeom *s) {
  s->axis = axis;
  s->outer = s->inner = 1;
  s->D = ndim ? shape[axis] : 1;
  for (int d = 0; d < ndim; d++) {
    if (d < axis) s->outer *= shape[d];
    if (d > axis) s->inner *= shape[d];
  }
  s->nblk = (s->inner + 15) / 16;
  /* CPUs take cols when inner >= 16. Rows of a cols block lie far apart
   * (often a page each): beyond a few hundred, TLB misses cost more than the
   * reduce path's extra pass, so long ones go there unless the tensor is
   * small. Rows and cols need enough work-items to fill the device. */
  const int64_t target = lam__reduce_par_target(ctx);
  const int small = s->outer * s->D * s->inner <= 65536;
  int ok;
  if (ctx->tuning.softmax_cols && s->inner >= 16) {
    s->path = LAM__SM_COLS;
    ok = s->D <= 256 && s->outer * s->nblk >= target;
  } else {
    s->path = LAM__SM_ROWS;
    ok = s->outer * s->inner >= target;
  }
  if (!ok && !small) s->path = LAM__SM_REDUCE;
  const char *e = getenv("LAMINA_SOFTMAX_PATH");
  if (e && strcmp(e, "rows") == 0) s->path = LAM__SM_ROWS;
  if (e && strcmp(e, "cols") == 0) s->path = LAM__SM_COLS;
  if (e && strcmp(e, "reduce") == 0) s->path = LAM__SM_REDUCE;
  s->nwork = s->path == LAM__SM_COLS ? s->outer * s->nblk : s->outer * s->inner;
}

/* Reduce-geometry of the softmax axis (generic path). */
static void lam__softmax_rgeom(int ndim, const int64_t *shape, int axis, lam__rgeom *g) {
  lam__rgeom_make(ndim, shape, ndim ? 1u << axis : 0u, 1, g);
}

static lam_status lam__softmax_backward(lam__node *node, lam_tensor *g, lam_tensor **gin) {
  lam_tensor *y = node->saved[0];
  const int logmode = (int)node->i[1];
  lam__smgeom s;
  lam__softmax_geom(g->ctx, node->in_ndim[0], node->in_shape[0], (int)node->i[0], &s);
  if (s.path != LAM__SM_REDUCE) {
    const int cols = s.path == LAM__SM_COLS;
    cl_kernel k;
    lam_status st = lam__kernel_dt(g->ctx, "reduce", cols ? "softmax_cols_bw" : "softmax_rows_bw",
                                   g->dtype, NULL, &k);
    if (st != LAM_OK) return st;
    lam_tensor *dx = lam__tensor_new(g->ctx, g->dtype, node->in_ndim[0], node->in_shape[0],
                                     node->op);
    if (!dx) return lam_last_status();
    lam__arg args[] = {LAM__ARG_T(y),
                       LAM__ARG_T(g),
                       LAM__ARG_T(dx),
                       lam__arg_int(cols ? s.outer : s.outer * s.inner),
                       lam__arg_int(s.D),
                       lam__arg_int(s.inner),
                       lam__arg_int(s.nblk),
                       lam__arg_int(logmode)};
    /* softmax_rows_bw has no nblk argument */
    lam__arg rargs[] = {args[0], args[1], args[2], args[3], args[4], args[5],
                        args[6], args[7], args[8], args[10]};
    st = cols ? lam__reduce_launch(g->ctx, k, node->op, 11, args, (size_t)s.nwork)
              : lam__reduce_launch(g->ctx, k, node->op, 10, rargs, (size_t)s.nwork);
    if (st != LAM_OK) {
      lam_tensor_free(dx);
      return st;
    }
    gin[0] = dx;
    return LAM_OK;
  }
  lam__rgeom geo;
  lam__softmax_rgeom(node->in_ndim[0], node->in_shape[0], s.axis, &geo);
  lam_tensor *r = logmode ? lam__reduce_run(node->op, g, NULL, NULL, &geo, LAM__RED_SUM,
                                            LAM__POST_SCALE, 1.0)
                          : lam__reduce_run(node->op, g, y, NULL, &geo, LAM__RED_DOT,
                                            LAM__POST_SCALE, 1.0);
  if (!r) return lam_last_status();
  gin[0] = lam__bcast_run(node->op, &geo, node->in_ndim[0], node->in_shape[0],
                          logmode ? LAM__BC_LOGSOFTMAX_BW : LAM__BC_SOFTMAX_BW, 1.0, y, g, r,
                          NULL, NULL);
  lam_tensor_free(r);
  return gin[0] ? LAM_OK : lam_last_status();
}

static lam_tensor *lam__softmax(const char *fn, lam_tensor *x, int axis, int logmode) {
  if (!x) return lam__null_input(fn, "x");
  if (lam__reduce_dtype(fn, x->dtype, 0) != LAM_OK) return NULL;
  /* A 0-dim tensor is one row of one element (axis 0 or -1, as torch). */
  int a = lam__axis(axis, x->ndim ? x->ndim : 1);
  if (a < 0)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: axis %d is out of range for a %d-dim tensor",
                     fn, axis, x->ndim), NULL;
  lam_ctx *ctx = x->ctx;
  lam__smgeom s;
  lam__softmax_geom(ctx, x->ndim, x->shape, a, &s);
  lam_tensor *y = NULL;
  if (s.path != LAM__SM_REDUCE) {
    const int cols = s.path == LAM__SM_COLS;
    cl_kernel k;
    if (lam__kernel_dt(ctx, "reduce", cols ? "softmax_cols" : "softmax_rows", x->dtype, NULL,
                       &k) != LAM_OK)
      return NULL;
    y = lam__tensor_new(ctx, x->dtype, x->ndim, x->shape, fn);
    if (!y) return NULL;
    lam__arg args[] = {LAM__ARG_T(x),
                       LAM__ARG_T(y),
                       lam__arg_int(cols ? s.outer : s.outer * s.inner),
                       lam__arg_int(s.D),
                       lam__arg_int(s.inner),
                       lam__arg_int(s.nblk),
                       lam__arg_int(logmode)};
    /* softmax_rows has no nblk argument */
    lam__arg rargs[] = {args[0], args[1], args[2], args[3], args[4], args[5], args[6], args[8]};
    lam_status st = cols ? lam__reduce_launch(ctx, k, fn, 9, args, (size_t)s.nwork)
                         : lam__reduce_launch(ctx, k, fn, 8, rargs, (size_t)s.nwork);
    if (st != LAM_OK) {
      lam_tensor_free(y);
      return NULL;
    }
  } else {
    lam__rgeom g;
    lam__softmax_rgeom(x->ndim, x->shape, a, &g);
    lam_tensor *m = lam__reduce_run(fn, x, NULL, NULL, &g, LAM__RED_MAX, LAM__POST_SCALE, 1.0);
    lam_tensor *l = m ? lam__reduce_run(fn, x, NULL, m, &g, LAM__RED_SUMEXP, LAM__POST_SCALE, 1.0)
                      : NULL;
    if (l)
      y = lam__bcast_run(fn, &g, x->ndim, x->shape, logmode ? LAM__BC_LOGSOFTMAX : LAM__BC_SOFTMAX,
                         1.0, x, NULL, NULL, m, l);
    lam_tensor_free(m);
    lam_tensor_free(l);
    if (!y) return NULL;
  }
  lam__node *node = lam__tape_record(y, fn, lam__softmax_backward, 1, &x);
  if (node) {
    node->i[0] = a;
    node->i[1] = logmode;
    lam__node_save(node, y);
  }
  return y;
}

lam_tensor *lam_softmax(lam_tensor *x, int axis) { return lam__softmax("lam_softmax", x, axis, 0); }

lam_tensor *lam_log_softmax(lam_tensor *x, int axis) {
  return lam__softmax("lam_log_softmax", x, axis, 1);
}
