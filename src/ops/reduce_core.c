/* ops/reduce_core.c: the host side of cl/reduce.cl shared by every
 * reduction and softmax: axis validation, merging an axes set into kept and
 * reduced groups, choosing chunks and passes for the reduce kernel, and the
 * broadcast kernel backward rules use.
 *
 * Work split. A reduction has nout outputs of nred elements each. When nout
 * alone fills the device (lam__reduce_par_target work-items) each output is
 * one work-item's sequential loop (the [N, D] row pattern). Otherwise the
 * reduced space is cut into chunks of at least a minimum length, one partial
 * per (output, chunk) is written, and the partials are reduced again by the
 * same kernel until one pass suffices. CPUs (PoCL) take contiguous chunks
 * with neighbouring work-items on neighbouring outputs; GPUs take chunks
 * interleaved element by element when the reduced axis is innermost, so
 * loads coalesce. On CPUs a reduction whose innermost axis is kept (of 16 or
 * more) runs reduce_cols: 16 neighbouring outputs per work-item, one 16-wide
 * load per row. LAMINA_REDUCE_LAYOUT=gpu|cpu overrides the device-type
 * choice (for tests and tuning). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/reduce_internal.h"

lam_status lam__reduce_mask(const char *fn, int ndim, int naxes, const int *axes, unsigned *mask) {
  *mask = 0;
  if (naxes < 0 || naxes > ndim)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: naxes %d is outside 0..%d for a %d-dim tensor",
                     fn, naxes, ndim, ndim);
  if (naxes == 0) {
    *mask = ndim ? (1u << ndim) - 1u : 0u;
    return LAM_OK;
  }
  if (!axes) return lam__fail(LAM_ERR_NULL, "%s: axes is NULL with naxes %d", fn, naxes);
  for (int i = 0; i < naxes; i++) {
    int a = lam__axis(axes[i], ndim);
    if (a < 0)
      return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: axis %d is out of range for a %d-dim tensor",
                       fn, axes[i], ndim);
    if (*mask & (1u << a))
      return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: axis %d is repeated (as axis %d)", fn,
                       axes[i], a);
    *mask |= 1u << a;
  }
  return LAM_OK;
}

void lam__rgeom_make(int ndim, const int64_t *shape, unsigned mask, int keepdims, lam__rgeom *g) {
  memset(g, 0, sizeof *g);
  g->numel = 1;
  for (int d = 0; d < ndim; d++) {
    g->numel *= shape[d];
    int r = (mask >> d) & 1u;
    if (r) {
      if (keepdims) g->out_shape[g->out_ndim++] = 1;
    } else {
      g->out_shape[g->out_ndim++] = shape[d];
    }
    if (shape[d] == 1) continue; /* size-1 axes change no offset: drop them */
    if (g->nm > 0 && g->red[g->nm - 1] == r) {
      g->mshape[g->nm - 1] *= shape[d];
    } else {
      g->mshape[g->nm] = shape[d];
      g->red[g->nm] = r;
      g->nm++;
    }
  }
  /* Input strides of the merged groups (row-major), then split by role. */
  int64_t mstride[LAM_MAX_DIMS], s = 1;
  for (int d = g->nm - 1; d >= 0; d--) {
    mstride[d] = s;
    s *= g->mshape[d];
  }
  for (int d = 0; d < g->nm; d++) {
    if (g->red[d]) {
      g->rshape[g->nr] = g->mshape[d];
      g->rstride[g->nr++] = mstride[d];
    } else {
      g->kshape[g->nk] = g->mshape[d];
      g->kstride[g->nk++] = mstride[d];
    }
  }
  g->nout = 1;
  for (int d = 0; d < g->nk; d++) g->nout *= g->kshape[d];
  if (g->nr == 0) { /* nothing (of size > 1) to reduce: one element per output */
    g->nr = 1;
    g->rshape[0] = 1;
    g->rstride[0] = 0;
  }
  g->nred = 1;
  for (int d = 0; d < g->nr; d++) g->nred *= g->rshape[d];
  /* Strides of the groups in the (row-major, kept-only) reduced tensor. */
  s = 1;
  for (int d = g->nm - 1; d >= 0; d--) {
    g->ostride[d] = g->red[d] ? 0 : s;
    if (!g->red[d]) s *= g->mshape[d];
  }
}

lam_status lam__reduce_dtype(const char *fn, lam_dtype dtype, int allow_int) {
  if (dtype == LAM_F32 || dtype == LAM_F64 || dtype == LAM_F16 || (allow_int && dtype == LAM_I32))
    return LAM_OK; /* f16: storage, computed in f32 (cl/common.clh) */
  return lam__fail(LAM_ERR_DTYPE, "%s: dtype %s is not supported (f32, f64%s)", fn,
                   lam_dtype_name(dtype), allow_int ? ", i32" : "");
}

/* True when the GPU work split applies (the tuning table: device type, or
 * LAMINA_REDUCE_LAYOUT at context creation). */
static int lam__reduce_gpu_layout(const lam_ctx *ctx) { return ctx->tuning.reduce_gpu; }

int64_t lam__reduce_par_target(const lam_ctx *ctx) {
  int64_t cu = ctx->info.compute_units ? ctx->info.compute_units : 1;
  return cu * ctx->tuning.reduce_par_per_cu;
}

/* Shortest chunk worth a work-item (loop setup and the extra pass). */
static int64_t lam__reduce_min_chunk(const lam_ctx *ctx) { return ctx->tuning.reduce_min_chunk; }

lam_status lam__reduce_launch(lam_ctx *ctx, cl_kernel k, const char *fn, int nargs,
                              const lam__arg *args, size_t n) {
  size_t local = ctx->tuning.wg_1d;
  if (ctx->tuning.spread_groups) {
    /* PoCL runs one work-group per core at a time: with few work-items, small
     * groups spread them over every core (each item loops for long, so the
     * per-group cost does not matter here). */
    size_t cu = ctx->info.compute_units ? ctx->info.compute_units : 1;
    size_t want = (n + 4 * cu - 1) / (4 * cu);
    if (want < local) local = want;
  }
  if (local > n) local = n;
  if (local < 1) local = 1;
  size_t global = (n + local - 1) / local * local;
  return lam__launch(ctx, k, fn, nargs, args, 1, &global, &local);
}

/* The op that combines partials of op. */
static lam__red_op lam__red_combine(lam__red_op op) {
  switch (op) {
    case LAM__RED_PROD:
    case LAM__RED_PRODNZ: return LAM__RED_PROD;
    case LAM__RED_MAX: return LAM__RED_MAX;
    case LAM__RED_MIN: return LAM__RED_MIN;
    default: return LAM__RED_SUM;
  }
}

lam_tensor *lam__reduce_run(const char *fn, lam_tensor *x, lam_tensor *x2, lam_tensor *sh,
                            const lam__rgeom *g, lam__red_op op, lam__red_post post,
                            double scale) {
  lam_ctx *ctx = x->ctx;
  cl_kernel k;
  if (lam__kernel_dt(ctx, "reduce", "reduce", x->dtype, NULL, &k) != LAM_OK) return NULL;
  lam_tensor *y = lam__tensor_new(ctx, x->dtype, g->out_ndim, g->out_shape, fn);
  if (!y) return NULL;
  const int gpu = lam__reduce_gpu_layout(ctx);
  const int64_t target = lam__reduce_par_target(ctx), min_chunk = lam__reduce_min_chunk(ctx);
  cl_kernel kc = NULL;
  if (!gpu && lam__kernel_dt(ctx, "reduce", "reduce_cols", x->dtype, NULL, &kc) != LAM_OK) {
    lam_tensor_free(y);
    return NULL;
  }
  const int64_t nout = g->nout;
  int nk = g->nk, nr = g->nr;
  int64_t kshape[LAM_MAX_DIMS], kstride[LAM_MAX_DIMS], rshape[LAM_MAX_DIMS], rstride[LAM_MAX_DIMS];
  memcpy(kshape, g->kshape, sizeof kshape);
  memcpy(kstride, g->kstride, sizeof kstride);
  memcpy(rshape, g->rshape, sizeof rshape);
  memcpy(rstride, g->rstride, sizeof rstride);
  lam_tensor *src = x, *src2 = x2 ? x2 : x;
  lam_tensor *shv = sh ? sh : x;
  lam__red_op cur = op;
  lam_status st = LAM_OK;
  for (;;) {
    int64_t nred = 1;
    for (int d = 0; d < nr; d++) nred *= rshape[d];
    const int64_t R0 = rshape[nr - 1];
    const int cfast = gpu && rstride[nr - 1] == 1 && R0 > 1;
    /* CPU, innermost axis kept and wide enough: 16 outputs per work-item. */
    const int64_t I = nk > 0 && kstride[nk - 1] == 1 ? kshape[nk - 1] : 0;
    const int cols = !gpu && I >= 16 && cur != LAM__RED_FIRST;
    const int64_t nblk = (I + 15) / 16, nwork = cols ? nout / I * nblk : nout;
    int64_t chunks = 1, clen = nred;
    if (nwork < target && cur != LAM__RED_FIRST) {
      chunks = (target + nwork - 1) / nwork;
      /* a cols row step reads 16 elements */
      int64_t most = nred / (cols ? min_chunk / 16 : min_chunk);
      if (cfast && most > R0) most = R0;
      if (chunks > most) chunks = most;
      if (chunks < 1) chunks = 1;
      clen = (nred + chunks - 1) / chunks;
      if (!cfast) chunks = (nred + clen - 1) / clen; /* no empty chunks */
    }
    if (cols && clen > 256) {
      /* Rows are far apart (often a page each): neighbouring work-items walk
       * the same rows, so keep a chunk's rows within the TLB's reach. */
      chunks = (nred + 255) / 256;
      clen = (nred + chunks - 1) / chunks;
      chunks = (nred + clen - 1) / clen;
    }
    const int last = chunks == 1;
    lam_tensor *dst = y;
    if (!last) {
      int64_t pshape[1] = {nout * chunks};
      dst = lam__tensor_new(ctx, x->dtype, 1, pshape, fn);
      if (!dst) {
        st = lam_last_status();
        break;
      }
    }
    if (cols) {
      lam__arg args[] = {LAM__ARG_T(src),
                         LAM__ARG_T(src2),
                         LAM__ARG_T(shv),
                         LAM__ARG_T(dst),
                         lam__arg_int(cur),
                         lam__arg_int(nout),
                         lam__arg_int(I),
                         lam__arg_int(nblk),
                         lam__arg_int(chunks),
                         lam__arg_int(clen),
                         lam__arg_int(nk - 1),
                         lam__arg_int8(nk - 1, kshape),
                         lam__arg_int8(nk - 1, kstride),
                         lam__arg_int(nr),
                         lam__arg_int8(nr, rshape),
                         lam__arg_int8(nr, rstride),
                         lam__arg_int(last ? post : LAM__POST_SCALE),
                         lam__arg_real(x->dtype, last ? scale : 1.0)};
      st = lam__reduce_launch(ctx, kc, fn, (int)(sizeof args / sizeof args[0]), args,
                              (size_t)(nwork * chunks));
    } else {
      lam__arg args[] = {LAM__ARG_T(src),
                         LAM__ARG_T(src2),
                         LAM__ARG_T(shv),
                         LAM__ARG_T(dst),
                         lam__arg_int(cur),
                         lam__arg_int(nout),
                         lam__arg_int(chunks),
                         lam__arg_int(clen),
                         lam__arg_int(cfast),
                         lam__arg_int(nk),
                         lam__arg_int8(nk, kshape),
                         lam__arg_int8(nk, kstride),
                         lam__arg_int(nr),
                         lam__arg_int8(nr, rshape),
                         lam__arg_int8(nr, rstride),
                         lam__arg_int(last ? post : LAM__POST_SCALE),
                         lam__arg_real(x->dtype, last ? scale : 1.0)};
      st = lam__reduce_launch(ctx, k, fn, (int)(sizeof args / sizeof args[0]), args,
                              (size_t)(nout * chunks));
    }
    if (src != x) lam_tensor_free(src);
    src = NULL;
    if (st != LAM_OK || last) {
      if (dst != y) lam_tensor_free(dst);
      break;
    }
    /* Next pass: reduce the partials [nout, chunks] (c-fast) or [chunks, nout]. */
    src = src2 = dst;
    cur = lam__red_combine(cur);
    nk = 1;
    kshape[0] = nout;
    kstride[0] = cfast ? chunks : 1;
    nr = 1;
    rshape[0] = chunks;
    rstride[0] = cfast ? 1 : nout;
  }
  if (st != LAM_OK) {
    lam_tensor_free(y);
    return NULL;
  }
  return y;
}

/* Kernel names per lam__bc_mode; "<name>3" is the 3-D variant. */
static const char *const lam__bc_names[] = {
    "bc_grad",    "bc_extreme",    "bc_prod",       "bc_var",          "bc_lse",
    "bc_softmax", "bc_logsoftmax", "bc_softmax_bw", "bc_logsoftmax_bw"};

lam_tensor *lam__bcast_run(const char *fn, const lam__rgeom *g, int ndim, const int64_t *shape,
                           lam__bc_mode mode, double scale, lam_tensor *a, lam_tensor *b,
                           lam_tensor *r, lam_tensor *s, lam_tensor *t) {
  lam_ctx *ctx = a->ctx;
  /* Up to 3 merged groups with a wide innermost one: the 3-D kernel, 16
   * innermost elements per work-item (16-wide math, no divisions). */
  const int nm = g->nm;
  const int three = nm >= 1 && nm <= 3 && g->mshape[nm - 1] >= 16;
  char name[32];
  snprintf(name, sizeof name, "%s%s", lam__bc_names[mode], three ? "3" : "");
  cl_kernel k;
  if (lam__kernel_dt(ctx, "reduce", name, a->dtype, NULL, &k) != LAM_OK) return NULL;
  lam_tensor *y = lam__tensor_new(ctx, a->dtype, ndim, shape, fn);
  if (!y) return NULL;
  lam_status st;
  if (three) {
    int64_t m[3] = {1, 1, 1}, os[3] = {0, 0, 0}; /* innermost first */
    for (int d = 0; d < nm; d++) {
      m[d] = g->mshape[nm - 1 - d];
      os[d] = g->ostride[nm - 1 - d];
    }
    lam__arg args[] = {LAM__ARG_T(y),        LAM__ARG_T(a),         LAM__ARG_T(b ? b : a),
                       LAM__ARG_T(r ? r : a), LAM__ARG_T(s ? s : a), LAM__ARG_T(t ? t : a),
                       lam__arg_real(a->dtype, scale), lam__arg_int(m[0]), lam__arg_int(m[1]),
                       lam__arg_int(os[0]),  lam__arg_int(os[1]),   lam__arg_int(os[2])};
    size_t nb = ((size_t)m[0] + 15) / 16;
    size_t local[3] = {ctx->tuning.wg_1d < nb ? ctx->tuning.wg_1d : nb, 1, 1};
    size_t global[3] = {(nb + local[0] - 1) / local[0] * local[0], (size_t)m[1], (size_t)m[2]};
    st = lam__launch(ctx, k, fn, (int)(sizeof args / sizeof args[0]), args, 3, global, local);
  } else {
    lam__arg args[] = {LAM__ARG_T(y),        LAM__ARG_T(a),         LAM__ARG_T(b ? b : a),
                       LAM__ARG_T(r ? r : a), LAM__ARG_T(s ? s : a), LAM__ARG_T(t ? t : a),
                       lam__arg_real(a->dtype, scale), lam__arg_int(y->numel), lam__arg_int(nm),
                       lam__arg_int8(nm, g->mshape), lam__arg_int8(nm, g->ostride)};
    st = lam__launch_1d(ctx, k, fn, (int)(sizeof args / sizeof args[0]), args, (size_t)y->numel);
  }
  if (st != LAM_OK) {
    lam_tensor_free(y);
    return NULL;
  }
  return y;
}
