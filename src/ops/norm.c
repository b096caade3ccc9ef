/* ops/norm.c: the functional normalization ops (layer, RMS, group,
 * instance, channel layer and batch norm) with their backward rules, over
 * the kernels of cl/norm.cl.
 *
 * Two kernel shapes cover every norm. A "row" norm normalizes rows of D
 * elements with a stride (layer/RMS norm: the trailing axes; group norm: a
 * group's channels of one sample; instance norm: one plane; channel layer
 * norm: axis 1 at one position): rownorm_fwd computes the statistics and y
 * in one kernel, rownorm_bwd the input gradient in one kernel, and chan_bwd
 * the weight/bias gradients as per-channel sums. Batch norm is a "channel"
 * norm: chan_fwd (statistics, running-stat update, y) and chan_bwd (sums and
 * input gradient) are one kernel each. Evaluation-mode batch/instance norm
 * is one per-channel affine kernel (chan_affine). Work split (teams of T
 * work-items per statistic) is chosen here; see the kernel file's banner.
 *
 * On CPU devices (PoCL) the same ops run the "_wi" kernels instead: row
 * norms one work-item per row with explicit vectors (still one kernel each
 * way), channel statistics as per-(channel, chunk) partials plus a merge
 * kernel, then a streaming per-channel kernel for y or dx (batch norm: three
 * launches each way, each pass over the data vectorised).
 *
 * Statistics are accumulated on shifted data (x minus the statistic's first
 * element, see cl/norm.cl): the saved mean of S statistics is a [2, S]
 * tensor of pivots and shifted means, which the backward kernels take with
 * the offset of the second row ("mlo"; 0 for a plain [S] mean). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "lamina/elementwise.h"
#include "lamina/norm.h"
#include "lamina/reduce.h"

#define LAM__NORM_WG 64 /* work-group size of the team kernels */

/* ---- validation ---------------------------------------------------------- */

static lam_status lam__norm_check_x(const char *fn, const lam_tensor *x, int min_rank) {
  if (x->dtype != LAM_F32 && x->dtype != LAM_F64 && x->dtype != LAM_F16) /* f16: storage */
    return lam__fail(LAM_ERR_DTYPE, "%s: x is %s, need f32, f64 or f16", fn, lam_dtype_name(x->dtype));
  if (x->ndim < min_rank) {
    char b[LAM__SHAPE_STR];
    return lam__fail(LAM_ERR_SHAPE, "%s: x is %s, need rank >= %d%s", fn,
                     lam__shape_str(x->ndim, x->shape, b), min_rank,
                     min_rank >= 2 ? " ([N, C, ...])" : "");
  }
  return LAM_OK;
}

/* t (may be NULL) must have x's dtype and exactly (ndim, shape). */
static lam_status lam__norm_check_param(const char *fn, const char *name, const lam_tensor *t,
                                        const lam_tensor *x, int ndim, const int64_t *shape) {
  if (!t) return LAM_OK;
  if (t->dtype != x->dtype)
    return lam__fail(LAM_ERR_DTYPE, "%s: %s is %s but x is %s", fn, name, lam_dtype_name(t->dtype),
                     lam_dtype_name(x->dtype));
  if (t->ctx != x->ctx)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: %s lives on another context than x", fn, name);
  bool ok = t->ndim == ndim;
  for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == shape[i];
  if (!ok) {
    char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR], b3[LAM__SHAPE_STR];
    return lam__fail(LAM_ERR_SHAPE, "%s: %s is %s, need %s for x %s", fn, name,
                     lam__shape_str(t->ndim, t->shape, b1), lam__shape_str(ndim, shape, b2),
                     lam__shape_str(x->ndim, x->shape, b3));
  }
  return LAM_OK;
}

static lam_status lam__norm_check_eps(const char *fn, double eps) {
  if (!(eps >= 0) || !isfinite(eps))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: eps %g must be finite and >= 0", fn, eps);
  return LAM_OK;
}

/* Largest power of two <= v (v >= 1), capped at cap. */
static int lam__pow2_floor(int64_t v, int cap) {
  int p = 1;
  while ((int64_t)p * 2 <= v && p * 2 <= cap) p *= 2;
  return p;
}

/* Work-group size of the team kernels (the device may allow fewer). */
static int lam__norm_wg(const lam_ctx *ctx) {
  size_t m = ctx->info.max_work_group_size;
  return (int)(m && m < LAM__NORM_WG ? lam__pow2_floor((int64_t)m, LAM__NORM_WG) : LAM__NORM_WG);
}

/* Launches a team kernel: `stats` statistics, T lanes each. */
static lam_status lam__team_launch(lam_ctx *ctx, cl_kernel k, const char *fn, int nargs,
                                   const lam__arg *args, int64_t stats, int T, int L) {
  size_t per = (size_t)(L / T);
  size_t groups = (size_t)((stats + (int64_t)per - 1) / (int64_t)per);
  size_t global = groups * (size_t)L, local = (size_t)L;
  return lam__launch(ctx, k, fn, nargs, args, 1, &global, &local);
}

/* True when the work-item-per-statistic kernels run (CPU devices: see the
 * CPU section of cl/norm.cl); LAMINA_NORM_LAYOUT=cpu|gpu at context
 * creation overrides the device type (the tuning table), so tests take both
 * paths on any device. */
static bool lam__norm_cpu(const lam_ctx *ctx) { return ctx->tuning.norm_cpu; }

/* 1-D launch of n long-running work-items in groups small enough that every
 * compute unit gets some (PoCL runs a work-group on one core). */
static lam_status lam__spread_launch(lam_ctx *ctx, cl_kernel k, const char *fn, int nargs,
                                     const lam__arg *args, size_t n) {
  size_t cu = ctx->info.compute_units ? ctx->info.compute_units : 1;
  size_t local = ctx->tuning.wg_1d, want = (n + 4 * cu - 1) / (4 * cu);
  if (want < local) local = want;
  if (local < 1) local = 1;
  size_t global = (n + local - 1) / local * local;
  return lam__launch(ctx, k, fn, nargs, args, 1, &global, &local);
}

/* Chunks of a channel's NS elements for chan_part_wi: enough (channel,
 * chunk) work-items for the device, each at least a few thousand elements. */
static void lam__chan_chunks(const lam_ctx *ctx, int64_t NS, int64_t C, int64_t *P, int64_t *len) {
  int64_t cu = ctx->info.compute_units ? ctx->info.compute_units : 1;
  int64_t p = (64 * cu + C - 1) / C;
  int64_t most = (NS + 2047) / 2048;
  if (p > most) p = most;
  if (p < 1) p = 1;
  *len = (NS + p - 1) / p;
  *P = (NS + *len - 1) / *len;
}

/* ---- row norms ------------------------------------------------------------- */

/* Geometry of a row norm (see rownorm_fwd) and of its weight gradient as
 * channel sums over the view [cN, cC, cS] with statistic index
 * n*Gn + (c/Cg)*Gc + s*Gs (see chan_bwd). */
typedef struct {
  int64_t rows, D, Sx, G, Cg, Sw;
  int rms;
  int64_t cN, cC, cS, Gn, gCg, Gc, Gs;
} lam__rowgeo;

/* Lanes per row: about 8+ elements per lane, at most a work-group. */
static int lam__row_team(const lam_ctx *ctx, int64_t D) {
  return lam__pow2_floor(D / 8 > 0 ? D / 8 : 1, lam__norm_wg(ctx));
}

/* Lanes per channel of the channel-sum kernels. Column sums (S == 1) want
 * neighbouring work-items on neighbouring channels (T small) as long as the
 * channels fill the device; planes (S > 1) want lanes along s. */
static int lam__chan_team(const lam_ctx *ctx, int64_t N, int64_t C, int64_t S) {
  int L = lam__norm_wg(ctx);
  int64_t cu = ctx->info.compute_units ? ctx->info.compute_units : 1;
  int64_t want;
  if (S == 1) {
    int64_t target = ctx->tuning.norm_chan_per_cu * cu;
    want = (target + C - 1) / C;
    if (want > N) want = N;
  } else {
    want = N * S / 8;
  }
  return lam__pow2_floor(want > 0 ? want : 1, L);
}

static lam_status lam__rownorm_run(const char *fn, lam_tensor *x, lam_tensor *w, lam_tensor *b,
                                   const lam__rowgeo *g, double eps, lam_tensor **y,
                                   lam_tensor **mean, lam_tensor **rstd) {
  lam_ctx *ctx = x->ctx;
  *y = *mean = *rstd = NULL;
  cl_kernel k;
  lam_status st = lam__kernel_dt(ctx, "norm", "rownorm_fwd", x->dtype, NULL, &k);
  if (st != LAM_OK) return st;
  *y = lam__tensor_new(ctx, x->dtype, x->ndim, x->shape, fn);
  *rstd = lam__tensor_new(ctx, x->dtype, 1, &g->rows, fn);
  const int64_t mshape[2] = {2, g->rows}; /* pivots, shifted means */
  if (!g->rms) *mean = lam__tensor_new(ctx, x->dtype, 2, mshape, fn);
  if (!*y || !*rstd || (!g->rms && !*mean)) goto fail;
  lam_tensor *m = *mean ? *mean : *rstd;
  if (lam__norm_cpu(ctx)) {
    st = lam__kernel_dt(ctx, "norm", "rownorm_fwd_wi", x->dtype, NULL, &k);
    if (st != LAM_OK) goto fail;
    lam__arg a[] = {LAM__ARG_T(x),          LAM__ARG_T(w ? w : x),     LAM__ARG_T(b ? b : x),
                    LAM__ARG_T(*y),         LAM__ARG_T(m),             LAM__ARG_T(*rstd),
                    lam__arg_int(g->rows),  lam__arg_int(g->D),        lam__arg_int(g->Sx),
                    lam__arg_int(g->rms),   lam__arg_int(w != NULL),   lam__arg_int(b != NULL),
                    lam__arg_int(g->G),     lam__arg_int(g->Cg),       lam__arg_int(g->Sw),
                    lam__arg_real(x->dtype, eps)};
    st = lam__spread_launch(ctx, k, fn, (int)(sizeof a / sizeof a[0]), a, (size_t)g->rows);
    if (st == LAM_OK) return LAM_OK;
    goto fail;
  }
  int L = lam__norm_wg(ctx), T = lam__row_team(ctx, g->D);
  size_t acc = lam__acc_size(x->dtype);
  lam__arg args[] = {LAM__ARG_T(x),
                     LAM__ARG_T(w ? w : x),
                     LAM__ARG_T(b ? b : x),
                     LAM__ARG_T(*y),
                     LAM__ARG_T(m),
                     LAM__ARG_T(*rstd),
                     lam__arg_int(g->rows),
                     lam__arg_int(g->D),
                     lam__arg_int(g->Sx),
                     lam__arg_int(T),
                     lam__arg_int(g->rms),
                     lam__arg_int(w != NULL),
                     lam__arg_int(b != NULL),
                     lam__arg_int(g->G),
                     lam__arg_int(g->Cg),
                     lam__arg_int(g->Sw),
                     lam__arg_real(x->dtype, eps),
                     lam__arg_local((size_t)L * acc),
                     lam__arg_local((size_t)L * acc),
                     lam__arg_local((size_t)L * acc)};
  st = lam__team_launch(ctx, k, fn, (int)(sizeof args / sizeof args[0]), args, g->rows, T, L);
  if (st == LAM_OK) return LAM_OK;
fail:
  st = lam_last_status();
  lam_tensor_free(*y);
  lam_tensor_free(*mean);
  lam_tensor_free(*rstd);
  *y = *mean = *rstd = NULL;
  return st;
}

/* Partial channel statistics (chan_part_wi) into a new [3 or 2, P, C] tensor. */
static lam_tensor *lam__chan_part(const char *fn, lam_tensor *x, lam_tensor *dy, lam_tensor *mean,
                                  int64_t mlo, lam_tensor *rstd, int64_t N, int64_t C, int64_t S,
                                  int mode, int64_t Gn, int64_t Cg, int64_t Gc, int64_t Gs,
                                  int64_t *P) {
  lam_ctx *ctx = x->ctx;
  int64_t len, items;
  if (S == 1) { /* [N, C]: a work-item takes whole rows (see the kernel) */
    int64_t cu = ctx->info.compute_units ? ctx->info.compute_units : 1;
    int64_t p = (N + 15) / 16;
    if (p > 64 * cu) p = 64 * cu;
    len = (N + p - 1) / p;
    *P = items = (N + len - 1) / len;
  } else {
    lam__chan_chunks(ctx, N * S, C, P, &len);
    items = C * *P;
  }
  cl_kernel k;
  if (lam__kernel_dt(ctx, "norm", "chan_part_wi", x->dtype, NULL, &k) != LAM_OK) return NULL;
  int64_t pshape[3] = {mode == 0 ? 3 : 2, *P, C};
  lam_tensor *part = lam__tensor_new(ctx, x->dtype, 3, pshape, fn);
  if (!part) return NULL;
  lam_tensor *any = rstd ? rstd : x;
  lam__arg args[] = {LAM__ARG_T(x),          LAM__ARG_T(dy ? dy : x),       LAM__ARG_T(mean ? mean : any),
                     LAM__ARG_T(any),        LAM__ARG_T(part),              lam__arg_int(N),
                     lam__arg_int(C),        lam__arg_int(S),               lam__arg_int(*P),
                     lam__arg_int(len),      lam__arg_int(mode),            lam__arg_int(Gn),
                     lam__arg_int(Cg),       lam__arg_int(Gc),              lam__arg_int(Gs),
                     lam__arg_int(mean != NULL), lam__arg_int(mean ? mlo : 0)};
  if (lam__spread_launch(ctx, k, fn, (int)(sizeof args / sizeof args[0]), args, (size_t)items) !=
      LAM_OK) {
    lam_tensor_free(part);
    return NULL;
  }
  return part;
}

/* Runs chan_merge_wi; unused tensors may be NULL. */
static lam_status lam__chan_merge(const char *fn, lam_tensor *part, lam_tensor *x, int64_t S,
                                  int64_t C, int64_t P, int mode, lam_tensor *w, lam_tensor *mean,
                                  lam_tensor *rstd, lam_tensor *a,
                                  lam_tensor *rm, lam_tensor *rv, lam_tensor *nrm, lam_tensor *nrv,
                                  lam_tensor *dw, lam_tensor *db, bool want_dx, double mom, double eps,
                                  double cnt) {
  lam_ctx *ctx = part->ctx;
  cl_kernel k;
  lam_status st = lam__kernel_dt(ctx, "norm", "chan_merge_wi", part->dtype, NULL, &k);
  if (st != LAM_OK) return st;
  lam__arg args[] = {LAM__ARG_T(part),
                     LAM__ARG_T(x),
                     lam__arg_int(S),
                     LAM__ARG_T(w ? w : part),
                     LAM__ARG_T(mean ? mean : part),
                     LAM__ARG_T(rstd ? rstd : part),
                     LAM__ARG_T(a ? a : part),
                     LAM__ARG_T(rm ? rm : part),
                     LAM__ARG_T(rv ? rv : part),
                     LAM__ARG_T(nrm ? nrm : part),
                     LAM__ARG_T(nrv ? nrv : part),
                     LAM__ARG_T(dw ? dw : part),
                     LAM__ARG_T(db ? db : part),
                     lam__arg_int(C),
                     lam__arg_int(P),
                     lam__arg_int(mode),
                     lam__arg_int(w != NULL),
                     lam__arg_int(nrm != NULL),
                     lam__arg_int(dw != NULL),
                     lam__arg_int(db != NULL),
                     lam__arg_int(want_dx),
                     lam__arg_real(part->dtype, mom),
                     lam__arg_real(part->dtype, eps),
                     lam__arg_real(part->dtype, cnt)};
  return lam__spread_launch(ctx, k, fn, (int)(sizeof args / sizeof args[0]), args, (size_t)C);
}

/* Per-plane work split of the streaming per-channel kernels (chan_affine,
 * chan_bwd_dx): enough work-items, long contiguous runs each. */
static int64_t lam__plane_chunks(const lam_ctx *ctx, int64_t planes, int64_t S) {
  int64_t target = ctx->tuning.norm_plane_target;
  int64_t chunks = planes >= target ? 1 : (target + planes - 1) / planes;
  int64_t minrun = ctx->tuning.norm_plane_minrun;
  if (chunks > S / minrun) chunks = S / minrun;
  return chunks < 1 ? 1 : chunks;
}

/* CPU form of lam__chan_bwd_run: partial sums, merge (with batch norm's dx
 * coefficients), and the streaming dx kernel. */
static lam_status lam__chan_bwd_cpu(const char *fn, lam_tensor *x, lam_tensor *dy, lam_tensor *mean,
                                    int64_t mlo, lam_tensor *rstd, lam_tensor *w, int64_t N, int64_t C,
                                    int64_t S, int64_t Gn, int64_t Cg, int64_t Gc, int64_t Gs,
                                    lam_tensor **dx, lam_tensor **dw, lam_tensor **db) {
  lam_ctx *ctx = x->ctx;
  int64_t P;
  lam_tensor *part = lam__chan_part(fn, x, dy, mean, mlo, rstd, N, C, S, 1, Gn, Cg, Gc, Gs, &P);
  if (!part) return lam_last_status();
  int64_t cshape[2] = {3, C};
  lam_tensor *tdw = dw ? lam__tensor_new(ctx, x->dtype, 1, &C, fn) : NULL;
  lam_tensor *tdb = db ? lam__tensor_new(ctx, x->dtype, 1, &C, fn) : NULL;
  lam_tensor *coef = dx ? lam__tensor_new(ctx, x->dtype, 2, cshape, fn) : NULL;
  lam_tensor *tdx = dx ? lam__tensor_new(ctx, x->dtype, x->ndim, x->shape, fn) : NULL;
  lam_status st = LAM_OK;
  if ((dw && !tdw) || (db && !tdb) || (dx && (!coef || !tdx))) st = lam_last_status();
  if (st == LAM_OK)
    st = lam__chan_merge(fn, part, x, S, C, P, 1, w, mean, rstd, coef, NULL, NULL, NULL, NULL, tdw, tdb,
                         dx != NULL, 0, 0, (double)(N * S));
  if (st == LAM_OK && dx) {
    cl_kernel k;
    st = lam__kernel_dt(ctx, "norm", "chan_bwd_dx", x->dtype, NULL, &k);
    int64_t planes = N * C, chunks = lam__plane_chunks(ctx, planes, S);
    lam__arg args[] = {LAM__ARG_T(x),       LAM__ARG_T(dy),       LAM__ARG_T(mean),
                       LAM__ARG_T(coef),    LAM__ARG_T(tdx),      lam__arg_int(planes),
                       lam__arg_int(C),     lam__arg_int(S),      lam__arg_int(chunks)};
    if (st == LAM_OK)
      st = lam__launch_1d(ctx, k, fn, (int)(sizeof args / sizeof args[0]), args,
                          (size_t)(planes * chunks));
  }
  lam_tensor_free(part);
  lam_tensor_free(coef);
  if (st != LAM_OK) {
    lam_tensor_free(tdw);
    lam_tensor_free(tdb);
    lam_tensor_free(tdx);
    return st;
  }
  if (dx) *dx = tdx;
  if (dw) *dw = tdw;
  if (db) *db = tdb;
  return LAM_OK;
}

/* Channel sums of dy and dy * xhat (and, with want_dx, batch norm's input
 * gradient into *dx). Results are new tensors of [C] (dw, db) and x's shape
 * (dx). mean: NULL, a plain mean (mlo 0) or pivots and shifted means (the
 * latter at offset mlo). */
static lam_status lam__chan_bwd_run(const char *fn, lam_tensor *x, lam_tensor *dy, lam_tensor *mean,
                                    int64_t mlo, lam_tensor *rstd, lam_tensor *w, int64_t N, int64_t C,
                                    int64_t S, int64_t Gn, int64_t Cg, int64_t Gc, int64_t Gs,
                                    lam_tensor **dx, lam_tensor **dw, lam_tensor **db) {
  lam_ctx *ctx = x->ctx;
  if (lam__norm_cpu(ctx))
    return lam__chan_bwd_cpu(fn, x, dy, mean, mlo, rstd, w, N, C, S, Gn, Cg, Gc, Gs, dx, dw, db);
  cl_kernel k;
  lam_status st = lam__kernel_dt(ctx, "norm", "chan_bwd", x->dtype, NULL, &k);
  if (st != LAM_OK) return st;
  lam_tensor *tdx = dx ? lam__tensor_new(ctx, x->dtype, x->ndim, x->shape, fn) : NULL;
  lam_tensor *tdw = dw ? lam__tensor_new(ctx, x->dtype, 1, &C, fn) : NULL;
  lam_tensor *tdb = db ? lam__tensor_new(ctx, x->dtype, 1, &C, fn) : NULL;
  if ((dx && !tdx) || (dw && !tdw) || (db && !tdb)) {
    st = lam_last_status();
  } else {
    int L = lam__norm_wg(ctx), T = lam__chan_team(ctx, N, C, S);
    size_t acc = lam__acc_size(x->dtype);
    lam__arg args[] = {LAM__ARG_T(x),
                       LAM__ARG_T(dy),
                       LAM__ARG_T(mean ? mean : rstd),
                       LAM__ARG_T(rstd),
                       LAM__ARG_T(w ? w : rstd),
                       LAM__ARG_T(tdx ? tdx : x),
                       LAM__ARG_T(tdw ? tdw : rstd),
                       LAM__ARG_T(tdb ? tdb : rstd),
                       lam__arg_int(N),
                       lam__arg_int(C),
                       lam__arg_int(S),
                       lam__arg_int(T),
                       lam__arg_int(Gn),
                       lam__arg_int(Cg),
                       lam__arg_int(Gc),
                       lam__arg_int(Gs),
                       lam__arg_int(mean != NULL),
                       lam__arg_int(mean ? mlo : 0),
                       lam__arg_int(w != NULL),
                       lam__arg_int(tdx != NULL),
                       lam__arg_int(tdw != NULL),
                       lam__arg_int(tdb != NULL),
                       lam__arg_local((size_t)L * acc),
                       lam__arg_local((size_t)L * acc)};
    st = lam__team_launch(ctx, k, fn, (int)(sizeof args / sizeof args[0]), args, C, T, L);
  }
  if (st != LAM_OK) {
    lam_tensor_free(tdx);
    lam_tensor_free(tdw);
    lam_tensor_free(tdb);
    return st;
  }
  if (dx) *dx = tdx;
  if (dw) *dw = tdw;
  if (db) *db = tdb;
  return LAM_OK;
}

/* node: saved x, mean (NULL for RMS), rstd, weight (or NULL); inputs x, w, b;
 * i[] holds the lam__rowgeo fields in order. */
static void lam__rowgeo_store(lam__node *node, const lam__rowgeo *g) {
  const int64_t v[] = {g->rows, g->D, g->Sx, g->G, g->Cg, g->Sw, g->rms,
                       g->cN, g->cC, g->cS, g->Gn, g->gCg, g->Gc, g->Gs};
  memcpy(node->i, v, sizeof v);
}

static void lam__rowgeo_load(const lam__node *node, lam__rowgeo *g) {
  const int64_t *v = node->i;
  *g = (lam__rowgeo){v[0], v[1], v[2], v[3], v[4], v[5], (int)v[6], v[7], v[8], v[9], v[10], v[11],
                     v[12], v[13]};
}

static lam_status lam__rownorm_bw(lam__node *node, lam_tensor *gy, lam_tensor **gin) {
  const char *fn = node->op;
  lam_tensor *x = node->saved[0], *mean = node->saved[1], *rstd = node->saved[2],
             *w = node->saved[3];
  lam__rowgeo g;
  lam__rowgeo_load(node, &g);
  lam_ctx *ctx = x->ctx;
  if (lam__node_needs(node, 0) && lam__norm_cpu(ctx)) {
    cl_kernel k;
    lam_status st = lam__kernel_dt(ctx, "norm", "rownorm_bwd_wi", x->dtype, NULL, &k);
    if (st != LAM_OK) return st;
    lam_tensor *dx = lam__tensor_new(ctx, x->dtype, x->ndim, x->shape, fn);
    if (!dx) return lam_last_status();
    lam__arg args[] = {LAM__ARG_T(x),         LAM__ARG_T(gy),          LAM__ARG_T(w ? w : rstd),
                       LAM__ARG_T(mean ? mean : rstd), LAM__ARG_T(rstd), LAM__ARG_T(dx),
                       lam__arg_int(g.rows),  lam__arg_int(g.D),       lam__arg_int(g.Sx),
                       lam__arg_int(g.rms),   lam__arg_int(w != NULL), lam__arg_int(g.G),
                       lam__arg_int(g.Cg),    lam__arg_int(g.Sw)};
    st = lam__spread_launch(ctx, k, fn, (int)(sizeof args / sizeof args[0]), args, (size_t)g.rows);
    if (st != LAM_OK) {
      lam_tensor_free(dx);
      return st;
    }
    gin[0] = dx;
  } else if (lam__node_needs(node, 0)) {
    cl_kernel k;
    lam_status st = lam__kernel_dt(ctx, "norm", "rownorm_bwd", x->dtype, NULL, &k);
    if (st != LAM_OK) return st;
    lam_tensor *dx = lam__tensor_new(ctx, x->dtype, x->ndim, x->shape, fn);
    if (!dx) return lam_last_status();
    int L = lam__norm_wg(ctx), T = lam__row_team(ctx, g.D);
    size_t acc = lam__acc_size(x->dtype);
    lam__arg args[] = {LAM__ARG_T(x),
                       LAM__ARG_T(gy),
                       LAM__ARG_T(w ? w : rstd),
                       LAM__ARG_T(mean ? mean : rstd),
                       LAM__ARG_T(rstd),
                       LAM__ARG_T(dx),
                       lam__arg_int(g.rows),
                       lam__arg_int(g.D),
                       lam__arg_int(g.Sx),
                       lam__arg_int(T),
                       lam__arg_int(g.rms),
                       lam__arg_int(w != NULL),
                       lam__arg_int(g.G),
                       lam__arg_int(g.Cg),
                       lam__arg_int(g.Sw),
                       lam__arg_local((size_t)L * acc),
                       lam__arg_local((size_t)L * acc)};
    st = lam__team_launch(ctx, k, fn, (int)(sizeof args / sizeof args[0]), args, g.rows, T, L);
    if (st != LAM_OK) {
      lam_tensor_free(dx);
      return st;
    }
    gin[0] = dx;
  }
  bool nw = lam__node_needs(node, 1), nb = node->n_inputs > 2 && lam__node_needs(node, 2);
  if (nw || nb) {
    lam_tensor *dw = NULL, *db = NULL;
    lam_status st = lam__chan_bwd_run(fn, x, gy, mean, g.rows, rstd, NULL, g.cN, g.cC, g.cS, g.Gn, g.gCg,
                                      g.Gc, g.Gs, NULL, nw ? &dw : NULL, nb ? &db : NULL);
    if (st != LAM_OK) return st;
    /* [C] -> the parameter's shape (layer norm: the normalized shape). */
    if (dw) {
      gin[1] = lam_tensor_reshape(dw, node->in_ndim[1], node->in_shape[1]);
      lam_tensor_free(dw);
    }
    if (db) {
      gin[2] = lam_tensor_reshape(db, node->in_ndim[2], node->in_shape[2]);
      lam_tensor_free(db);
    }
    if ((nw && !gin[1]) || (nb && !gin[2])) return lam_last_status();
  }
  return LAM_OK;
}

/* Runs a row norm and records it (inputs x, w, b). */
static lam_tensor *lam__rownorm(const char *fn, lam_tensor *x, lam_tensor *w, lam_tensor *b,
                                const lam__rowgeo *g, double eps) {
  lam_tensor *y, *mean, *rstd;
  if (lam__rownorm_run(fn, x, w, b, g, eps, &y, &mean, &rstd) != LAM_OK) return NULL;
  lam_tensor *inputs[3] = {x, w, b};
  lam__node *node = lam__tape_record(y, fn, lam__rownorm_bw, g->rms ? 2 : 3, inputs);
  if (node) {
    lam__node_save(node, x);
    lam__node_save(node, mean);
    lam__node_save(node, rstd);
    lam__node_save(node, w);
    lam__rowgeo_store(node, g);
  }
  lam_tensor_free(mean);
  lam_tensor_free(rstd);
  return y;
}

/* Shared checks of layer/RMS norm; fills the geometry of the trailing axes. */
static lam_status lam__trailing_geo(const char *fn, lam_tensor *x, int nd, lam_tensor *w,
                                    lam_tensor *b, double eps, int rms, lam__rowgeo *g) {
  lam_status st = lam__norm_check_x(fn, x, 1);
  if (st != LAM_OK) return st;
  if (nd < 1 || nd > x->ndim) {
    char bs[LAM__SHAPE_STR];
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: normalized_ndim %d is outside 1..%d for x %s",
                     fn, nd, x->ndim, lam__shape_str(x->ndim, x->shape, bs));
  }
  const int64_t *ns = x->shape + (x->ndim - nd);
  if ((st = lam__norm_check_param(fn, "weight", w, x, nd, ns)) != LAM_OK) return st;
  if ((st = lam__norm_check_param(fn, "bias", b, x, nd, ns)) != LAM_OK) return st;
  if ((st = lam__norm_check_eps(fn, eps)) != LAM_OK) return st;
  int64_t D = 1;
  for (int i = 0; i < nd; i++) D *= ns[i];
  *g = (lam__rowgeo){x->numel / D, D, 1, 1, 0, 1, rms, x->numel / D, D, 1, 1, D, 0, 0};
  return LAM_OK;
}

lam_tensor *lam_layer_norm(lam_tensor *x, int normalized_ndim, lam_tensor *weight,
                                   lam_tensor *bias, double eps) {
  const char *fn = "lam_layer_norm";
  if (!x) return lam__null_input(fn, "x");
  lam__rowgeo g;
  if (lam__trailing_geo(fn, x, normalized_ndim, weight, bias, eps, 0, &g) != LAM_OK) return NULL;
  return lam__rownorm(fn, x, weight, bias, &g, eps);
}

lam_tensor *lam_rms_norm(lam_tensor *x, int normalized_ndim, lam_tensor *weight,
                                 double eps) {
  const char *fn = "lam_rms_norm";
  if (!x) return lam__null_input(fn, "x");
  lam__rowgeo g;
  if (lam__trailing_geo(fn, x, normalized_ndim, weight, NULL, eps, 1, &g) != LAM_OK) return NULL;
  return lam__rownorm(fn, x, weight, NULL, &g, eps);
}

/* Product of x's axes 2.. (1 for rank 2). */
static int64_t lam__spatial(const lam_tensor *x) {
  int64_t S = 1;
  for (int i = 2; i < x->ndim; i++) S *= x->shape[i];
  return S;
}

/* Checks x [N, C, *] and per-channel weight/bias [C]. */
static lam_status lam__channel_checks(const char *fn, lam_tensor *x, int min_rank, lam_tensor *w,
                                      lam_tensor *b, double eps) {
  lam_status st = lam__norm_check_x(fn, x, min_rank);
  if (st != LAM_OK) return st;
  const int64_t C = x->shape[1];
  if ((st = lam__norm_check_param(fn, "weight", w, x, 1, &C)) != LAM_OK) return st;
  if ((st = lam__norm_check_param(fn, "bias", b, x, 1, &C)) != LAM_OK) return st;
  return lam__norm_check_eps(fn, eps);
}

lam_tensor *lam_group_norm(lam_tensor *x, int64_t groups, lam_tensor *weight,
                                   lam_tensor *bias, double eps) {
  const char *fn = "lam_group_norm";
  if (!x) return lam__null_input(fn, "x");
  if (lam__channel_checks(fn, x, 2, weight, bias, eps) != LAM_OK) return NULL;
  const int64_t N = x->shape[0], C = x->shape[1], S = lam__spatial(x);
  if (groups < 1 || C % groups != 0)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: groups %lld must be >= 1 and divide the %lld channels",
                     fn, (long long)groups, (long long)C), NULL;
  const int64_t Cg = C / groups;
  lam__rowgeo g = {N * groups, Cg * S, 1, groups, Cg, S, 0, N, C, S, groups, Cg, 1, 0};
  return lam__rownorm(fn, x, weight, bias, &g, eps);
}

lam_tensor *lam_channel_layer_norm(lam_tensor *x, lam_tensor *weight, lam_tensor *bias,
                                           double eps) {
  const char *fn = "lam_channel_layer_norm";
  if (!x) return lam__null_input(fn, "x");
  if (lam__channel_checks(fn, x, 2, weight, bias, eps) != LAM_OK) return NULL;
  const int64_t N = x->shape[0], C = x->shape[1], S = lam__spatial(x);
  lam__rowgeo g = {N * S, C, S, 1, 0, 1, 0, N, C, S, S, 1, 0, 1};
  return lam__rownorm(fn, x, weight, bias, &g, eps);
}

/* ---- per-channel affine (evaluation with running statistics) --------------- */

/* y = (x - m[c]) * a[c] + b[c]; m, b may be NULL; mlo: m is a [2, C] saved
 * mean, y = ((x - m[c]) - m[mlo + c]) * a[c] + b[c]. */
static lam_tensor *lam__chan_affine_run(const char *fn, lam_tensor *x, lam_tensor *m, int64_t mlo,
                                        lam_tensor *a, lam_tensor *b) {
  lam_ctx *ctx = x->ctx;
  const int64_t C = x->shape[1], S = lam__spatial(x), planes = x->numel / S;
  cl_kernel k;
  if (lam__kernel_dt(ctx, "norm", "chan_affine", x->dtype, NULL, &k) != LAM_OK) return NULL;
  lam_tensor *y = lam__tensor_new(ctx, x->dtype, x->ndim, x->shape, fn);
  if (!y) return NULL;
  int64_t chunks = lam__plane_chunks(ctx, planes, S);
  lam__arg args[] = {LAM__ARG_T(x),         LAM__ARG_T(m ? m : a), LAM__ARG_T(a),
                     LAM__ARG_T(b ? b : a), LAM__ARG_T(y),         lam__arg_int(planes),
                     lam__arg_int(C),       lam__arg_int(S),       lam__arg_int(chunks),
                     lam__arg_int(m != NULL), lam__arg_int(m ? mlo : 0), lam__arg_int(b != NULL)};
  if (lam__launch_1d(ctx, k, fn, (int)(sizeof args / sizeof args[0]), args,
                     (size_t)(planes * chunks)) != LAM_OK) {
    lam_tensor_free(y);
    return NULL;
  }
  return y;
}

/* Inputs x, m, a, b; saved x, m, a. */
static lam_status lam__chan_affine_bw(lam__node *node, lam_tensor *gy, lam_tensor **gin) {
  const char *fn = node->op;
  lam_tensor *x = node->saved[0], *m = node->saved[1], *a = node->saved[2];
  const int64_t N = x->shape[0], C = x->shape[1], S = lam__spatial(x);
  if (lam__node_needs(node, 0) && !(gin[0] = lam__chan_affine_run(fn, gy, NULL, 0, a, NULL)))
    return lam_last_status();
  bool nm = m && lam__node_needs(node, 1), na = lam__node_needs(node, 2),
       nb = lam__node_needs(node, 3);
  if (!nm && !na && !nb) return LAM_OK;
  lam_tensor *ones = lam_tensor_full(x->ctx, x->dtype, 1, &C, 1.0);
  if (!ones) return lam_last_status();
  lam_tensor *da = NULL, *sdy = NULL;
  /* sum dy * (x - m) and sum dy per channel: the sums kernel with rstd = 1. */
  lam_status st = lam__chan_bwd_run(fn, x, gy, m, 0, ones, NULL, N, C, S, 0, 1, 1, 0, NULL,
                                    na ? &da : NULL, (nm || nb) ? &sdy : NULL);
  lam_tensor_free(ones);
  if (st != LAM_OK) return st;
  gin[2] = da;
  if (nm) {
    lam_tensor *t = lam_mul(sdy, a);
    gin[1] = t ? lam_neg(t) : NULL;
    lam_tensor_free(t);
  }
  if (nb) gin[3] = lam_tensor_retain(sdy);
  lam_tensor_free(sdy);
  return (nm && !gin[1]) ? lam_last_status() : LAM_OK;
}

static lam_tensor *lam__chan_affine(const char *fn, lam_tensor *x, lam_tensor *m, lam_tensor *a,
                                    lam_tensor *b) {
  lam_tensor *y = lam__chan_affine_run(fn, x, m, 0, a, b);
  if (!y) return NULL;
  lam_tensor *inputs[4] = {x, m, a, b};
  lam__node *node = lam__tape_record(y, fn, lam__chan_affine_bw, 4, inputs);
  if (node) {
    lam__node_save(node, x);
    lam__node_save(node, m);
    lam__node_save(node, a);
  }
  return y;
}

/* Evaluation with running statistics: a = weight / sqrt(var + eps). */
static lam_tensor *lam__running_norm(const char *fn, lam_tensor *x, lam_tensor *rm, lam_tensor *rv,
                                     lam_tensor *w, lam_tensor *b, double eps) {
  lam_tensor *ve = lam_add_scalar(rv, eps);
  lam_tensor *r = ve ? lam_rsqrt(ve) : NULL;
  lam_tensor *a = r && w ? lam_mul(r, w) : lam_tensor_retain(r);
  lam_tensor *y = a ? lam__chan_affine(fn, x, rm, a, b) : NULL;
  lam_tensor_free(ve);
  lam_tensor_free(r);
  lam_tensor_free(a);
  return y;
}

/* ---- batch norm ------------------------------------------------------------------ */

/* Inputs x, w, b; saved x, mean ([2, C]: pivots, shifted means), rstd, w; i[0..2] = N, C, S. */
static lam_status lam__batch_norm_bw(lam__node *node, lam_tensor *gy, lam_tensor **gin) {
  lam_tensor *x = node->saved[0], *mean = node->saved[1], *rstd = node->saved[2],
             *w = node->saved[3];
  bool nx = lam__node_needs(node, 0), nw = lam__node_needs(node, 1), nb = lam__node_needs(node, 2);
  return lam__chan_bwd_run(node->op, x, gy, mean, node->i[1], rstd, w, node->i[0], node->i[1], node->i[2], 0,
                           1, 1, 0, nx ? &gin[0] : NULL, nw ? &gin[1] : NULL, nb ? &gin[2] : NULL);
}

static lam_status lam__running_checks(const char *fn, lam_tensor *x, lam_tensor *rm, lam_tensor *rv,
                                      double momentum) {
  if (!rm != !rv)
    return lam__fail(LAM_ERR_NULL, "%s: running_mean and running_var must be both given or both NULL (%s is NULL)",
                     fn, rm ? "running_var" : "running_mean");
  const int64_t C = x->shape[1];
  lam_status st = lam__norm_check_param(fn, "running_mean", rm, x, 1, &C);
  if (st == LAM_OK) st = lam__norm_check_param(fn, "running_var", rv, x, 1, &C);
  if (st == LAM_OK && (!isfinite(momentum) || momentum < 0 || momentum > 1))
    st = lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: momentum %g must be in [0, 1]", fn, momentum);
  return st;
}

lam_tensor *lam_batch_norm(lam_tensor *x, lam_tensor *running_mean,
                                   lam_tensor *running_var, lam_tensor *weight, lam_tensor *bias,
                                   bool training, double momentum, double eps,
                                   lam_tensor **new_mean, lam_tensor **new_var) {
  const char *fn = "lam_batch_norm";
  if (new_mean) *new_mean = NULL;
  if (new_var) *new_var = NULL;
  if (!x) return lam__null_input(fn, "x");
  if (lam__channel_checks(fn, x, 2, weight, bias, eps) != LAM_OK ||
      lam__running_checks(fn, x, running_mean, running_var, momentum) != LAM_OK)
    return NULL;
  const int64_t N = x->shape[0], C = x->shape[1], S = lam__spatial(x);
  if (!training) {
    if (!running_mean)
      return lam__fail(LAM_ERR_NULL, "%s: evaluation needs running_mean and running_var", fn), NULL;
    return lam__running_norm(fn, x, running_mean, running_var, weight, bias, eps);
  }
  if (N * S < 2) {
    char bs[LAM__SHAPE_STR];
    return lam__fail(LAM_ERR_SHAPE, "%s: expected more than 1 value per channel when training, got x %s",
                     fn, lam__shape_str(x->ndim, x->shape, bs)), NULL;
  }
  lam_ctx *ctx = x->ctx;
  cl_kernel k;
  if (lam__kernel_dt(ctx, "norm", "chan_fwd", x->dtype, NULL, &k) != LAM_OK) return NULL;
  const bool upd = running_mean != NULL;
  lam_tensor *y = lam__tensor_new(ctx, x->dtype, x->ndim, x->shape, fn);
  const int64_t mshape[2] = {2, C}; /* pivots, shifted means */
  lam_tensor *mean = lam__tensor_new(ctx, x->dtype, 2, mshape, fn);
  lam_tensor *rstd = lam__tensor_new(ctx, x->dtype, 1, &C, fn);
  lam_tensor *nrm = upd ? lam__tensor_new(ctx, x->dtype, 1, &C, fn) : NULL;
  lam_tensor *nrv = upd ? lam__tensor_new(ctx, x->dtype, 1, &C, fn) : NULL;
  lam_status st = LAM_OK;
  if (!y || !mean || !rstd || (upd && (!nrm || !nrv))) {
    st = lam_last_status();
  } else if (lam__norm_cpu(ctx)) {
    /* partial Welford statistics, merge (mean, rstd, scale, running stats), normalize */
    int64_t P;
    lam_tensor *part = lam__chan_part(fn, x, NULL, NULL, 0, NULL, N, C, S, 0, 0, 1, 1, 0, &P);
    lam_tensor *a = part ? lam__tensor_new(ctx, x->dtype, 1, &C, fn) : NULL;
    st = a ? lam__chan_merge(fn, part, x, S, C, P, 0, weight, mean, rstd, a, running_mean, running_var,
                             nrm, nrv, NULL, NULL, false, momentum, eps, 0)
           : lam_last_status();
    lam_tensor_free(y);
    y = st == LAM_OK ? lam__chan_affine_run(fn, x, mean, C, a, bias) : NULL;
    if (!y) st = lam_last_status();
    lam_tensor_free(part);
    lam_tensor_free(a);
  } else {
    int L = lam__norm_wg(ctx), T = lam__chan_team(ctx, N, C, S);
    size_t acc = lam__acc_size(x->dtype);
    lam__arg args[] = {LAM__ARG_T(x),
                       LAM__ARG_T(weight ? weight : x),
                       LAM__ARG_T(bias ? bias : x),
                       LAM__ARG_T(y),
                       LAM__ARG_T(mean),
                       LAM__ARG_T(rstd),
                       LAM__ARG_T(upd ? running_mean : mean),
                       LAM__ARG_T(upd ? running_var : mean),
                       LAM__ARG_T(upd ? nrm : mean),
                       LAM__ARG_T(upd ? nrv : mean),
                       lam__arg_int(N),
                       lam__arg_int(C),
                       lam__arg_int(S),
                       lam__arg_int(T),
                       lam__arg_int(weight != NULL),
                       lam__arg_int(bias != NULL),
                       lam__arg_int(upd),
                       lam__arg_real(x->dtype, momentum),
                       lam__arg_real(x->dtype, eps),
                       lam__arg_local((size_t)L * acc),
                       lam__arg_local((size_t)L * acc),
                       lam__arg_local((size_t)L * acc)};
    st = lam__team_launch(ctx, k, fn, (int)(sizeof args / sizeof args[0]), args, C, T, L);
  }
  if (st != LAM_OK) {
    lam_tensor_free(y);
    lam_tensor_free(mean);
    lam_tensor_free(rstd);
    lam_tensor_free(nrm);
    lam_tensor_free(nrv);
    return NULL;
  }
  lam_tensor *inputs[3] = {x, weight, bias};
  lam__node *node = lam__tape_record(y, fn, lam__batch_norm_bw, 3, inputs);
  if (node) {
    lam__node_save(node, x);
    lam__node_save(node, mean);
    lam__node_save(node, rstd);
    lam__node_save(node, weight);
    node->i[0] = N;
    node->i[1] = C;
    node->i[2] = S;
  }
  lam_tensor_free(mean);
  lam_tensor_free(rstd);
  if (new_mean) *new_mean = nrm;
  else lam_tensor_free(nrm);
  if (new_var) *new_var = nrv;
  else lam_tensor_free(nrv);
  return y;
}

/* ---- instance norm ------------------------------------------------------------------ */

/* (1 - m) * old + m * mean over the batch of the per-instance stat [N, C]. */
static lam_tensor *lam__blend(lam_tensor *old, lam_tensor *stat, double m) {
  lam_tensor *avg = lam_mean(stat, 1, (int[]){0}, 0);
  lam_tensor *a = avg ? lam_mul_scalar(avg, m) : NULL;
  lam_tensor *o = a ? lam_mul_scalar(old, 1.0 - m) : NULL;
  lam_tensor *r = o ? lam_add(o, a) : NULL;
  lam_tensor_free(avg);
  lam_tensor_free(a);
  lam_tensor_free(o);
  return r;
}

lam_tensor *lam_instance_norm(lam_tensor *x, lam_tensor *running_mean,
                                      lam_tensor *running_var, lam_tensor *weight,
                                      lam_tensor *bias, bool use_input_stats, double momentum,
                                      double eps, lam_tensor **new_mean, lam_tensor **new_var) {
  const char *fn = "lam_instance_norm";
  if (new_mean) *new_mean = NULL;
  if (new_var) *new_var = NULL;
  if (!x) return lam__null_input(fn, "x");
  if (lam__channel_checks(fn, x, 3, weight, bias, eps) != LAM_OK ||
      lam__running_checks(fn, x, running_mean, running_var, momentum) != LAM_OK)
    return NULL;
  const int64_t N = x->shape[0], C = x->shape[1], S = lam__spatial(x);
  if (!use_input_stats) {
    if (!running_mean)
      return lam__fail(LAM_ERR_NULL, "%s: use_input_stats false needs running_mean and running_var", fn), NULL;
    return lam__running_norm(fn, x, running_mean, running_var, weight, bias, eps);
  }
  if (S < 2) {
    char bs[LAM__SHAPE_STR];
    return lam__fail(LAM_ERR_SHAPE, "%s: expected more than 1 spatial element when training, got x %s",
                     fn, lam__shape_str(x->ndim, x->shape, bs)), NULL;
  }
  lam__rowgeo g = {N * C, S, 1, C, 1, S, 0, N, C, S, C, 1, 1, 0};
  lam_tensor *y = lam__rownorm(fn, x, weight, bias, &g, eps);
  if (!y || !running_mean || (!new_mean && !new_var)) return y;
  /* Running statistics from the per-instance mean and unbiased variance
   * (an extra pass, only when tracking), never recorded. */
  bool was = lam_grad_set_enabled(x->ctx, false);
  lam_tensor *x3 = lam_tensor_reshape(x, 3, (int64_t[]){N, C, S});
  lam_tensor *mu = x3 ? lam_mean(x3, 1, (int[]){2}, 0) : NULL;
  lam_tensor *var = x3 ? lam_var(x3, 1, (int[]){2}, 1.0, 0) : NULL;
  lam_tensor *nm = mu ? lam__blend(running_mean, mu, momentum) : NULL;
  lam_tensor *nv = var ? lam__blend(running_var, var, momentum) : NULL;
  lam_grad_set_enabled(x->ctx, was);
  lam_tensor_free(x3);
  lam_tensor_free(mu);
  lam_tensor_free(var);
  if (!nm || !nv) {
    lam_tensor_free(nm);
    lam_tensor_free(nv);
    lam_tensor_free(y);
    return NULL;
  }
  if (new_mean) *new_mean = nm;
  else lam_tensor_free(nm);
  if (new_var) *new_var = nv;
  else lam_tensor_free(nv);
  return y;
}
