/* ops/reduce.c: sum, mean, max, min, prod, var, logsumexp over any axes
 * set, argmax/argmin along one axis, and their backward rules (next to each
 * forward). All run on the reduce kernel (src/ops/reduce_core.c); backward
 * rules broadcast from the reduced shape with the bcast kernel. A backward
 * rule rebuilds the geometry from the input shape and the axis mask kept in
 * node->i[0] (node->i[1] is keepdims).
 *
 * Gradient conventions: max/min split the gradient evenly among the
 * elements equal to the extreme (as torch.amax/amin); prod handles zeros
 * exactly (one zero: only that element gets the product of the others;
 * two or more: all zero); var's gradient is 2 (x - mean) / (N - correction),
 * with x - mean formed as (x - K) - dm (see lam_var). */
#include <math.h>

#include "lamina/reduce.h"
#include "ops/reduce_internal.h"

/* Validates x, the dtype and the axes; fills the geometry. */
static lam_status lam__reduce_prepare(const char *fn, lam_tensor *x, int naxes, const int *axes,
                                      int keepdims, int allow_int, lam__rgeom *g,
                                      unsigned *mask) {
  lam_status st = lam__reduce_dtype(fn, x->dtype, allow_int);
  if (st == LAM_OK) st = lam__reduce_mask(fn, x->ndim, naxes, axes, mask);
  if (st == LAM_OK) lam__rgeom_make(x->ndim, x->shape, *mask, keepdims, g);
  return st;
}

/* The geometry of a node's forward (input 0 shape, mask, keepdims). */
static void lam__node_geom(const lam__node *node, lam__rgeom *g) {
  lam__rgeom_make(node->in_ndim[0], node->in_shape[0], (unsigned)node->i[0], (int)node->i[1], g);
}

/* Records node (if any) with the mask and keepdims; returns it. */
static lam__node *lam__reduce_record(lam_tensor *y, const char *fn, lam__backward_fn bw,
                                     lam_tensor *x, unsigned mask, int keepdims) {
  if (!lam_dtype_is_float(x->dtype)) return NULL;
  lam__node *node = lam__tape_record(y, fn, bw, 1, &x);
  if (node) {
    node->i[0] = mask;
    node->i[1] = keepdims;
  }
  return node;
}

/* ---- sum, mean ---------------------------------------------------------- */

static lam_status lam__sum_backward(lam__node *node, lam_tensor *g, lam_tensor **gin) {
  lam__rgeom geo;
  lam__node_geom(node, &geo);
  gin[0] = lam__bcast_run(node->op, &geo, node->in_ndim[0], node->in_shape[0], LAM__BC_GRAD,
                          node->f[0], g, NULL, g, NULL, NULL);
  return gin[0] ? LAM_OK : lam_last_status();
}

static lam_tensor *lam__sum_mean(const char *fn, lam_tensor *x, int naxes, const int *axes,
                                 int keepdims, int mean) {
  if (!x) return lam__null_input(fn, "x");
  lam__rgeom g;
  unsigned mask;
  if (lam__reduce_prepare(fn, x, naxes, axes, keepdims, !mean, &g, &mask) != LAM_OK) return NULL;
  double scale = mean ? 1.0 / (double)g.nred : 1.0;
  lam_tensor *y = lam__reduce_run(fn, x, NULL, NULL, &g, LAM__RED_SUM, LAM__POST_SCALE, scale);
  if (!y) return NULL;
  lam__node *node = lam__reduce_record(y, fn, lam__sum_backward, x, mask, keepdims);
  if (node) node->f[0] = scale;
  return y;
}

lam_tensor *lam_sum(lam_tensor *x, int naxes, const int *axes, int keepdims) {
  return lam__sum_mean("lam_sum", x, naxes, axes, keepdims, 0);
}

lam_tensor *lam_mean(lam_tensor *x, int naxes, const int *axes, int keepdims) {
  return lam__sum_mean("lam_mean", x, naxes, axes, keepdims, 1);
}

/* ---- max, min ----------------------------------------------------------- */

/* Ties share the gradient evenly: count the elements equal to the result. */
static lam_status lam__extreme_backward(lam__node *node, lam_tensor *g, lam_tensor **gin) {
  lam__rgeom geo;
  lam__node_geom(node, &geo);
  lam_tensor *x = node->saved[0], *y = node->saved[1];
  lam_tensor *cnt = lam__reduce_run(node->op, x, NULL, y, &geo, LAM__RED_COUNTEQ,
                                    LAM__POST_SCALE, 1.0);
  if (!cnt) return lam_last_status();
  gin[0] = lam__bcast_run(node->op, &geo, node->in_ndim[0], node->in_shape[0], LAM__BC_EXTREME,
                          1.0, x, NULL, g, y, cnt);
  lam_tensor_free(cnt);
  return gin[0] ? LAM_OK : lam_last_status();
}

static lam_tensor *lam__extreme(const char *fn, lam_tensor *x, int naxes, const int *axes,
                                int keepdims, lam__red_op op) {
  if (!x) return lam__null_input(fn, "x");
  lam__rgeom g;
  unsigned mask;
  if (lam__reduce_prepare(fn, x, naxes, axes, keepdims, 1, &g, &mask) != LAM_OK) return NULL;
  lam_tensor *y = lam__reduce_run(fn, x, NULL, NULL, &g, op, LAM__POST_SCALE, 1.0);
  if (!y) return NULL;
  lam__node *node = lam__reduce_record(y, fn, lam__extreme_backward, x, mask, keepdims);
  if (node) {
    lam__node_save(node, x);
    lam__node_save(node, y);
  }
  return y;
}

lam_tensor *lam_max(lam_tensor *x, int naxes, const int *axes, int keepdims) {
  return lam__extreme("lam_max", x, naxes, axes, keepdims, LAM__RED_MAX);
}

lam_tensor *lam_min(lam_tensor *x, int naxes, const int *axes, int keepdims) {
  return lam__extreme("lam_min", x, naxes, axes, keepdims, LAM__RED_MIN);
}

/* ---- prod --------------------------------------------------------------- */

/* d prod / dx_i = product of the others: prod/x_i without zeros; with one
 * zero only the zero's gradient is non-zero (the product of the non-zeros);
 * with more, every gradient is zero. */
static lam_status lam__prod_backward(lam__node *node, lam_tensor *g, lam_tensor **gin) {
  lam__rgeom geo;
  lam__node_geom(node, &geo);
  lam_tensor *x = node->saved[0];
  lam_tensor *pnz = lam__reduce_run(node->op, x, NULL, NULL, &geo, LAM__RED_PRODNZ,
                                    LAM__POST_SCALE, 1.0);
  lam_tensor *nz = pnz ? lam__reduce_run(node->op, x, NULL, NULL, &geo, LAM__RED_COUNTZERO,
                                         LAM__POST_SCALE, 1.0)
                       : NULL;
  if (nz)
    gin[0] = lam__bcast_run(node->op, &geo, node->in_ndim[0], node->in_shape[0], LAM__BC_PROD,
                            1.0, x, NULL, g, pnz, nz);
  lam_tensor_free(pnz);
  lam_tensor_free(nz);
  return gin[0] ? LAM_OK : lam_last_status();
}

lam_tensor *lam_prod(lam_tensor *x, int naxes, const int *axes, int keepdims) {
  const char *fn = "lam_prod";
  if (!x) return lam__null_input(fn, "x");
  lam__rgeom g;
  unsigned mask;
  if (lam__reduce_prepare(fn, x, naxes, axes, keepdims, 0, &g, &mask) != LAM_OK) return NULL;
  lam_tensor *y = lam__reduce_run(fn, x, NULL, NULL, &g, LAM__RED_PROD, LAM__POST_SCALE, 1.0);
  if (!y) return NULL;
  lam__node *node = lam__reduce_record(y, fn, lam__prod_backward, x, mask, keepdims);
  if (node) lam__node_save(node, x);
  return y;
}

/* ---- var ---------------------------------------------------------------- */

static lam_status lam__var_backward(lam__node *node, lam_tensor *g, lam_tensor **gin) {
  lam__rgeom geo;
  lam__node_geom(node, &geo);
  gin[0] = lam__bcast_run(node->op, &geo, node->in_ndim[0], node->in_shape[0], LAM__BC_VAR,
                          node->f[0], node->saved[0], NULL, g, node->saved[1], node->saved[2]);
  return gin[0] ? LAM_OK : lam_last_status();
}

/* Shifted data, two passes. K is the first element of each reduction (the
 * pivot) and dm = sum(x - K)/N the shifted mean; the second pass sums
 * ((x - K) - dm)^2. In f32 x - K is exact when |mean| >> std, so neither
 * pass loses digits to the mean's magnitude: the mean is never rounded to
 * f32 as one number (a rounded mean of 1e4 is 5e-4 off, which adds
 * (5e-4)^2 to a variance of 0.01 and 5e-4 to every x - mean of the
 * backward). Constant inputs give exactly 0. */
lam_tensor *lam_var(lam_tensor *x, int naxes, const int *axes, double correction, int keepdims) {
  const char *fn = "lam_var";
  if (!x) return lam__null_input(fn, "x");
  if (!isfinite(correction) || correction < 0)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: correction %g is not a finite value >= 0", fn,
                     correction), NULL;
  lam__rgeom g;
  unsigned mask;
  if (lam__reduce_prepare(fn, x, naxes, axes, keepdims, 0, &g, &mask) != LAM_OK) return NULL;
  double n = (double)g.nred, div = n - correction > 0 ? n - correction : 0.0;
  lam_tensor *k = lam__reduce_run(fn, x, NULL, NULL, &g, LAM__RED_FIRST, LAM__POST_SCALE, 1.0);
  lam_tensor *dm = k ? lam__reduce_run(fn, x, NULL, k, &g, LAM__RED_SUMSHIFT, LAM__POST_SCALE,
                                       1.0 / n)
                     : NULL;
  /* div 0 gives inf (0 * inf = NaN for a constant), as torch. */
  lam_tensor *y = dm ? lam__reduce_run(fn, x, dm, k, &g, LAM__RED_SUMSQ2, LAM__POST_SCALE,
                                       div > 0 ? 1.0 / div : INFINITY)
                     : NULL;
  if (y) {
    lam__node *node = lam__reduce_record(y, fn, lam__var_backward, x, mask, keepdims);
    if (node) {
      node->f[0] = div > 0 ? 2.0 / div : INFINITY;
      lam__node_save(node, x);
      lam__node_save(node, k);
      lam__node_save(node, dm);
    }
  }
  lam_tensor_free(k);
  lam_tensor_free(dm);
  return y;
}

/* ---- logsumexp ---------------------------------------------------------- */

static lam_status lam__lse_backward(lam__node *node, lam_tensor *g, lam_tensor **gin) {
  lam__rgeom geo;
  lam__node_geom(node, &geo);
  gin[0] = lam__bcast_run(node->op, &geo, node->in_ndim[0], node->in_shape[0], LAM__BC_LSE, 1.0,
                          node->saved[0], NULL, g, node->saved[1], NULL);
  return gin[0] ? LAM_OK : lam_last_status();
}

/* max first, then max + log(sum exp(x - max)): stable for any finite x. */
lam_tensor *lam_logsumexp(lam_tensor *x, int naxes, const int *axes, int keepdims) {
  const char *fn = "lam_logsumexp";
  if (!x) return lam__null_input(fn, "x");
  lam__rgeom g;
  unsigned mask;
  if (lam__reduce_prepare(fn, x, naxes, axes, keepdims, 0, &g, &mask) != LAM_OK) return NULL;
  lam_tensor *m = lam__reduce_run(fn, x, NULL, NULL, &g, LAM__RED_MAX, LAM__POST_SCALE, 1.0);
  if (!m) return NULL;
  lam_tensor *y = lam__reduce_run(fn, x, NULL, m, &g, LAM__RED_SUMEXP, LAM__POST_LOGSHIFT, 1.0);
  lam_tensor_free(m);
  if (!y) return NULL;
  lam__node *node = lam__reduce_record(y, fn, lam__lse_backward, x, mask, keepdims);
  if (node) {
    lam__node_save(node, x);
    lam__node_save(node, y);
  }
  return y;
}

/* ---- argmax, argmin ----------------------------------------------------- */

static lam_tensor *lam__argreduce(const char *fn, lam_tensor *x, int axis, int keepdims,
                                  int is_max) {
  if (!x) return lam__null_input(fn, "x");
  if (lam__reduce_dtype(fn, x->dtype, 1) != LAM_OK) return NULL;
  /* A 0-dim tensor has one element along axis 0 / -1 (as torch). */
  int ndim = x->ndim ? x->ndim : 1;
  int a = lam__axis(axis, ndim);
  if (a < 0)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: axis %d is out of range for a %d-dim tensor",
                     fn, axis, x->ndim), NULL;
  int64_t outer = 1, inner = 1, R = x->ndim ? x->shape[a] : 1;
  int64_t oshape[LAM_MAX_DIMS];
  int ond = 0;
  for (int d = 0; d < x->ndim; d++) {
    if (d < a) outer *= x->shape[d];
    if (d > a) inner *= x->shape[d];
    if (d != a) oshape[ond++] = x->shape[d];
    else if (keepdims) oshape[ond++] = 1;
  }
  lam_ctx *ctx = x->ctx;
  cl_kernel kr, kc;
  if (lam__kernel_dt(ctx, "reduce", "argreduce", x->dtype, NULL, &kr) != LAM_OK ||
      lam__kernel_dt(ctx, "reduce", "argcombine", x->dtype, NULL, &kc) != LAM_OK)
    return NULL;
  lam_tensor *y = lam__tensor_new(ctx, LAM_I32, ond, oshape, fn);
  if (!y) return NULL;
  /* Split long scans into contiguous chunks when there are few outputs. */
  const int64_t nout = outer * inner, target = lam__reduce_par_target(ctx);
  int64_t chunks = 1, clen = R;
  if (nout < target) {
    chunks = (target + nout - 1) / nout;
    if (chunks > R / 2048) chunks = R / 2048;
    if (chunks < 1) chunks = 1;
    clen = (R + chunks - 1) / chunks;
    chunks = (R + clen - 1) / clen;
  }
  lam_tensor *pv = NULL, *pi = y;
  lam_status st = LAM_OK;
  if (chunks > 1) {
    int64_t pshape[1] = {nout * chunks};
    pv = lam__tensor_new(ctx, x->dtype, 1, pshape, fn);
    pi = pv ? lam__tensor_new(ctx, LAM_I32, 1, pshape, fn) : NULL;
    if (!pi) st = lam_last_status();
  }
  if (st == LAM_OK) {
    lam_tensor *pvt = pv ? pv : x; /* never written with one chunk */
    lam__arg args[] = {LAM__ARG_T(x),           LAM__ARG_T(pvt),         LAM__ARG_T(pi),
                       lam__arg_int(is_max),    lam__arg_int(nout),      lam__arg_int(chunks),
                       lam__arg_int(clen),      lam__arg_int(inner),     lam__arg_int(R)};
    st = lam__reduce_launch(ctx, kr, fn, 12, args, (size_t)(nout * chunks));
  }
  if (st == LAM_OK && chunks > 1) {
    lam__arg args[] = {LAM__ARG_T(pv),        LAM__ARG_T(pi),     LAM__ARG_T(y),
                       lam__arg_int(is_max),  lam__arg_int(nout), lam__arg_int(chunks)};
    st = lam__launch_1d(ctx, kc, fn, 9, args, (size_t)nout);
  }
  if (pi != y) lam_tensor_free(pi);
  lam_tensor_free(pv);
  if (st != LAM_OK) {
    lam_tensor_free(y);
    return NULL;
  }
  return y; /* integer result: records nothing */
}

lam_tensor *lam_argmax(lam_tensor *x, int axis, int keepdims) {
  return lam__argreduce("lam_argmax", x, axis, keepdims, 1);
}

lam_tensor *lam_argmin(lam_tensor *x, int axis, int keepdims) {
  return lam__argreduce("lam_argmin", x, axis, keepdims, 0);
}
