/* ops/conv.c: conv1d/2d/3d (lam_conv*d_forward) and their backward rule,
 * and the three convolution primitives shared with transposed convolution.
 *
 * How a convolution runs, chosen on the host by shape:
 *  - thin groups (C/G * O/G <= LAM__DIRECT_MAX: depthwise, ResNeXt-style
 *    cardinality) use the direct kernels of cl/conv.cl: a GEMM per group
 *    would be a matrix-vector product and im2col would multiply memory
 *    traffic by the kernel volume;
 *  - everything else is im2col + GEMM through lam_matmul, which is
 *    lamina's register-tiled CPU GEMM on PoCL and CLBlast elsewhere. The
 *    batch is lowered in chunks of nb images to a column matrix [C*KV,
 *    nb*L] (cl/conv.cl), so group g's product W[g] [O/G, C/G*KV] @ cols[g]
 *    is ONE wide GEMM for the chunk even when L (output positions per image)
 *    is small, then chan_swap moves [O, nb, L] to [nb, O, L] adding the bias.
 *    A 1x1, stride-1, unpadded conv of one image skips im2col (x already is
 *    the column matrix) and one image needs no chan_swap (bias in place).
 * Chunks keep the column matrix cache-sized (LAM__COLS_BUDGET elements), so
 * im2col writes into cache rather than DRAM and memory stays bounded for
 * large batches. Backward: dx = col2im(W^T @ dy) (a gather, deterministic);
 * dW = dy @ cols^T, run as its transpose cols @ dy^T (an NN product, see
 * lam__conv_bwd_weight), recomputing im2col per chunk (keeping the columns
 * alive on the tape would cost KV times the input per layer); db = sum of
 * dy. LAMINA_CONV_PATH=gemm|direct forces a path, LAMINA_CONV_CHUNK=n
 * caps the images per chunk and LAMINA_CONV_IM2COL=rows|plane forces the
 * row-wise or the plane-wise im2col (tests run every path on the same cases).
 *
 * An implicit-GEMM kernel (B read straight from x, no column matrix) was
 * prototyped: on PoCL it ran at ~230 GFLOP/s against ~290 for im2col into
 * cache + the tuned GEMM, so it was not kept.
 *
 * CLBlast's Xconvgemm was considered: it covers 2-D, groups 1 and symmetric
 * padding only, and on PoCL CLBlast's GEMM runs at a fraction of lamina's
 * own kernels, so lam_matmul (which picks the right GEMM per device) is the
 * one GEMM path. */
#include <stdlib.h>
#include <string.h>

#include "lamina/conv.h"
#include "lamina/elementwise.h"
#include "lamina/linalg.h"
#include "lamina/reduce.h"
#include "ops/conv_internal.h"

/* Column-matrix elements per chunk (8 MiB of f32): the GEMM keeps its rate
 * while its B operand stays cache-sized (measured: 250-350 GFLOP/s up to
 * ~8 MiB, 140-180 beyond), and im2col writes into cache, not DRAM. */
#define LAM__COLS_BUDGET ((int64_t)1 << 21)
/* Largest C/G * O/G that takes the direct kernels. */
#define LAM__DIRECT_MAX 64

/* ---- helpers --------------------------------------------------------------- */

lam_status lam__conv_check_float(lam_ctx *ctx, const lam_tensor *t, const char *fn,
                                 const char *what) {
  if (t->dtype != LAM_F32 && t->dtype != LAM_F64)
    return lam__fail(LAM_ERR_DTYPE, "%s: %s has dtype %s; f32 or f64 expected", fn, what,
                     lam_dtype_name(t->dtype));
  return lam__check_dtype_supported(ctx, t->dtype, fn);
}

lam_status lam__conv_check_args(int nsp, const lam_tensor *x, const lam_tensor *w, const lam_tensor *b,
                                const char *weight_layout, const char *fn) {
  static const char *const xdesc[] = {"", "[batch, channels, length]",
                                      "[batch, channels, h, w]", "[batch, channels, d, h, w]"};
  if (!x) return lam__null_input(fn, "x"), lam_last_status();
  if (!w) return lam__null_input(fn, "weight"), lam_last_status();
  lam_ctx *ctx = x->ctx;
  if (w->ctx != ctx || (b && b->ctx != ctx))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: tensors belong to different contexts", fn);
  lam_status st = lam__conv_check_float(ctx, x, fn, "x");
  if (st != LAM_OK) return st;
  if (w->dtype != x->dtype || (b && b->dtype != x->dtype))
    return lam__fail(LAM_ERR_DTYPE, "%s: dtypes differ: x is %s, weight %s%s%s", fn,
                     lam_dtype_name(x->dtype), lam_dtype_name(w->dtype), b ? ", bias " : "",
                     b ? lam_dtype_name(b->dtype) : "");
  char b1[LAM__SHAPE_STR];
  if (x->ndim != nsp + 2)
    return lam__fail(LAM_ERR_SHAPE, "%s: x must be %s, got %s", fn, xdesc[nsp],
                     lam__shape_str(x->ndim, x->shape, b1));
  if (w->ndim != nsp + 2)
    return lam__fail(LAM_ERR_SHAPE, "%s: weight must have %d dims %s, got %s", fn, nsp + 2,
                     weight_layout, lam__shape_str(w->ndim, w->shape, b1));
  return LAM_OK;
}

void lam__conv_shapes(const lam__conv_geom *g, int64_t *xs, int64_t *ws, int64_t *ys) {
  const int o = 3 - g->nsp;
  if (xs) xs[0] = g->N, xs[1] = g->C;
  if (ws) ws[0] = g->O, ws[1] = g->C / g->G;
  if (ys) ys[0] = g->N, ys[1] = g->O;
  for (int d = 0; d < g->nsp; d++) {
    if (xs) xs[2 + d] = g->in[o + d];
    if (ws) ws[2 + d] = g->k[o + d];
    if (ys) ys[2 + d] = g->out[o + d];
  }
}

void lam__conv_geom_save(int64_t *dst, const lam__conv_geom *g) {
  dst[0] = g->nsp, dst[1] = g->N, dst[2] = g->C, dst[3] = g->O, dst[4] = g->G;
  for (int d = 0; d < 3; d++) {
    dst[5 + d] = g->in[d];
    dst[8 + d] = g->out[d];
    dst[11 + d] = g->k[d];
    dst[14 + d] = g->s[d];
    dst[17 + d] = g->d[d];
    dst[20 + d] = g->pb[d];
  }
}

void lam__conv_geom_load(const int64_t *src, lam__conv_geom *g) {
  g->nsp = (int)src[0], g->N = src[1], g->C = src[2], g->O = src[3], g->G = src[4];
  for (int d = 0; d < 3; d++) {
    g->in[d] = src[5 + d];
    g->out[d] = src[8 + d];
    g->k[d] = src[11 + d];
    g->s[d] = src[14 + d];
    g->d[d] = src[17 + d];
    g->pb[d] = src[20 + d];
  }
}

static int64_t lam__kvol(const lam__conv_geom *g) { return g->k[0] * g->k[1] * g->k[2]; }
static int64_t lam__lout(const lam__conv_geom *g) { return g->out[0] * g->out[1] * g->out[2]; }
static int64_t lam__lin(const lam__conv_geom *g) { return g->in[0] * g->in[1] * g->in[2]; }

/* Kernel geometry vectors (see cl/conv.cl). nb: images in the chunk. */
static void lam__conv_vecs(const lam__conv_geom *g, int64_t nb, lam__arg *v) {
  int64_t gin[5] = {g->C, g->in[0], g->in[1], g->in[2], nb};
  int64_t gk[6] = {g->k[0], g->k[1], g->k[2], g->s[0], g->s[1], g->s[2]};
  int64_t gdp[6] = {g->d[0], g->d[1], g->d[2], g->pb[0], g->pb[1], g->pb[2]};
  v[0] = lam__arg_int8(5, gin);
  v[1] = lam__arg_int8(3, g->out);
  v[2] = lam__arg_int8(6, gk);
  v[3] = lam__arg_int8(6, gdp);
}

static bool lam__pointwise(const lam__conv_geom *g) {
  for (int d = 0; d < 3; d++)
    if (g->k[d] != 1 || g->s[d] != 1 || g->pb[d] != 0 || g->in[d] != g->out[d]) return false;
  return true;
}

static bool lam__use_direct(const lam__conv_geom *g) {
  const char *e = getenv("LAMINA_CONV_PATH");
  if (e && strcmp(e, "gemm") == 0) return false;
  if (e && strcmp(e, "direct") == 0) return true;
  return (g->C / g->G) * (g->O / g->G) <= LAM__DIRECT_MAX;
}

/* Images per chunk: the column matrix (or the GEMM output) under budget.
 * min_cols > 0 asks for at least that many GEMM columns (nb * L) even past
 * the budget: the weight gradient sums one [O, C/G*KV] product per chunk,
 * and narrow chunks would spend more on those sums than on the GEMMs. */
static int64_t lam__chunk(const lam__conv_geom *g, int64_t min_cols) {
  int64_t rows = g->C * lam__kvol(g);
  if (g->O > rows) rows = g->O;
  int64_t per = rows * lam__lout(g);
  int64_t nb = per > 0 ? LAM__COLS_BUDGET / per : 1;
  const int64_t want = (min_cols + lam__lout(g) - 1) / lam__lout(g);
  if (nb < want && want * per <= 4 * LAM__COLS_BUDGET) nb = want;
  const char *e = getenv("LAMINA_CONV_CHUNK"); /* tests: force small chunks */
  if (e && atoll(e) > 0 && atoll(e) < nb) nb = atoll(e);
  if (nb < 1) nb = 1;
  if (nb > g->N) nb = g->N;
  return nb;
}

static lam_status lam__check_cols(const lam__conv_geom *g, const char *fn) {
  const int64_t per = (g->C * lam__kvol(g) > g->O ? g->C * lam__kvol(g) : g->O) * lam__lout(g);
  if (per > LAM__MAX_NUMEL)
    return lam__fail(LAM_ERR_SHAPE,
                     "%s: one image's column matrix (%lld channels x kernel taps x %lld output "
                     "positions) exceeds 2^31 elements",
                     fn, (long long)(g->C * lam__kvol(g)), (long long)lam__lout(g));
  return LAM_OK;
}

/* cols [G, C/G*KV, nb*L] (= [C*KV, nb*L]) from images n0..n0+nb of x. */
static lam_tensor *lam__im2col(lam_tensor *x, const lam__conv_geom *g, int64_t n0, int64_t nb,
                               const char *fn) {
  const int64_t kv = lam__kvol(g), L = lam__lout(g);
  const int64_t G = g->G, Kg = g->C / G * kv;
  int64_t shape[3] = {G, Kg, nb * L};
  lam_tensor *cols = lam__tensor_new(x->ctx, x->dtype, 3, shape, fn);
  if (!cols) return NULL;
  cl_kernel k;
  /* short rows: a work-item per plane of OH rows (im2col_plane, cl/conv.cl) */
  const char *e = getenv("LAMINA_CONV_IM2COL");
  const int64_t planes = g->C * kv * nb * g->out[0];
  const bool by_plane = e && strcmp(e, "plane") == 0 ? true
                        : e && strcmp(e, "rows") == 0 ? false
                                                       : g->out[2] < 32 && planes >= 256;
  lam_status st = lam__kernel_dt(x->ctx, "conv", by_plane ? "im2col_plane" : "im2col", x->dtype, NULL, &k);
  if (st == LAM_OK && by_plane) {
    lam__arg a[10] = {lam__arg_mem(x->buf->mem),
                      lam__arg_int((int64_t)x->offset + n0 * g->C * lam__lin(g)),
                      LAM__ARG_T(cols), lam__arg_int(planes)};
    lam__conv_vecs(g, nb, a + 5);
    st = lam__launch_rows(x->ctx, k, fn, 9, a, planes);
  } else if (st == LAM_OK) {
    const int64_t rows = g->C * kv * nb * g->out[0] * g->out[1];
    lam__arg a[10] = {lam__arg_mem(x->buf->mem),
                      lam__arg_int((int64_t)x->offset + n0 * g->C * lam__lin(g)),
                      LAM__ARG_T(cols), lam__arg_int(rows)};
    lam__conv_vecs(g, nb, a + 5);
    st = lam__launch_rows(x->ctx, k, fn, 9, a, rows);
  }
  if (st != LAM_OK) {
    lam_tensor_free(cols);
    return NULL;
  }
  return cols;
}

/* dst[q, p, l] = src[p, q, l] (+ bias[p]); dst at element offset dst_off of dst_t's buffer.
 * With res (dst's layout [Q, P, L], at its own offset) adds it; relu clamps at 0. */
static lam_status lam__chan_swap_epi(lam_tensor *src, size_t src_off, lam_tensor *dst, size_t dst_off,
                                     lam_tensor *bias, lam_tensor *res, size_t res_off, bool relu,
                                     int64_t P, int64_t Q, int64_t L, const char *fn) {
  cl_kernel k;
  lam_status st = lam__kernel_dt(src->ctx, "conv", "chan_swap", src->dtype, NULL, &k);
  if (st != LAM_OK) return st;
  lam_tensor *b = bias ? bias : src; /* any valid buffer when unused */
  lam_tensor *e = res ? res : src;
  lam__arg a[] = {lam__arg_mem(src->buf->mem), lam__arg_int((int64_t)src_off),
                  lam__arg_mem(dst->buf->mem), lam__arg_int((int64_t)dst_off),
                  LAM__ARG_T(b), lam__arg_int(bias != NULL), lam__arg_int(P), lam__arg_int(Q),
                  lam__arg_int(L), lam__arg_mem(e->buf->mem),
                  lam__arg_int(res ? (int64_t)res_off : 0), lam__arg_int(res != NULL),
                  lam__arg_int(relu)};
  return lam__launch_rows(src->ctx, k, fn, 14, a, P * Q);
}

static lam_status lam__chan_swap(lam_tensor *src, size_t src_off, lam_tensor *dst, size_t dst_off,
                                 lam_tensor *bias, int64_t P, int64_t Q, int64_t L, const char *fn) {
  return lam__chan_swap_epi(src, src_off, dst, dst_off, bias, NULL, 0, false, P, Q, L, fn);
}

/* The weight as GEMM operand [G, O/G, C/G*KV] (a view, not recorded). */
static lam_tensor *lam__wmat(lam_tensor *w, const lam__conv_geom *g) {
  const int64_t G = g->G;
  int64_t s3[3] = {G, g->O / G, g->C / G * lam__kvol(g)};
  return G == 1 ? lam__tensor_view(w, w->offset, 2, s3 + 1) : lam__tensor_view(w, w->offset, 3, s3);
}

/* dy images n0..n0+nb as the GEMM operand [G, O/G, nb*L]: a view for one image,
 * else a chan_swap copy [O, nb, L]. */
static lam_tensor *lam__dy_mat(lam_tensor *dy, const lam__conv_geom *g, int64_t n0, int64_t nb,
                               const char *fn) {
  const int64_t L = lam__lout(g), G = g->G;
  int64_t s3[3] = {G, g->O / G, nb * L};
  const size_t off = dy->offset + (size_t)(n0 * g->O * L);
  if (nb == 1)
    return G == 1 ? lam__tensor_view(dy, off, 2, s3 + 1) : lam__tensor_view(dy, off, 3, s3);
  lam_tensor *m = G == 1 ? lam__tensor_new(dy->ctx, dy->dtype, 2, s3 + 1, fn)
                         : lam__tensor_new(dy->ctx, dy->dtype, 3, s3, fn);
  if (!m) return NULL;
  if (lam__chan_swap(dy, off, m, m->offset, NULL, nb, g->O, L, fn) != LAM_OK) {
    lam_tensor_free(m);
    return NULL;
  }
  return m;
}

/* The column matrix of images n0..n0+nb as GEMM operand [G, C/G*KV, nb*L]. */
static lam_tensor *lam__cols_mat(lam_tensor *x, const lam__conv_geom *g, int64_t n0, int64_t nb,
                                 const char *fn) {
  if (nb == 1 && lam__pointwise(g)) {
    const int64_t L = lam__lout(g), G = g->G;
    int64_t s3[3] = {G, g->C / G, L};
    const size_t off = x->offset + (size_t)(n0 * g->C * L);
    return G == 1 ? lam__tensor_view(x, off, 2, s3 + 1) : lam__tensor_view(x, off, 3, s3);
  }
  lam_tensor *c = lam__im2col(x, g, n0, nb, fn);
  if (c && g->G == 1) {
    lam_tensor *v = lam__tensor_view(c, c->offset, 2, c->shape + 1);
    lam_tensor_free(c);
    c = v;
  }
  return c;
}

static lam_tensor *lam__new_shaped(lam_tensor *like, int which, const lam__conv_geom *g,
                                   const char *fn) {
  int64_t xs[5], ws[5], ys[5];
  lam__conv_shapes(g, xs, ws, ys);
  const int64_t *s = which == 0 ? xs : which == 1 ? ws : ys;
  return lam__tensor_new(like->ctx, like->dtype, g->nsp + 2, s, fn);
}

/* ---- direct kernels ------------------------------------------------------------ */

static void lam__direct_w(const lam__conv_geom *g, int has_bias, lam__arg *v) {
  int64_t gw[4] = {g->O, g->C / g->G, g->O / g->G, has_bias};
  *v = lam__arg_int8(4, gw);
}

static lam_tensor *lam__direct_fwd(lam_tensor *x, lam_tensor *w, lam_tensor *bias,
                                   const lam__conv_geom *g, const char *fn) {
  lam_tensor *y = lam__new_shaped(x, 2, g, fn);
  if (!y) return NULL;
  cl_kernel k;
  lam_status st = lam__kernel_dt(x->ctx, "conv", "direct_fwd", x->dtype, NULL, &k);
  if (st == LAM_OK) {
    const int64_t rows = g->N * g->O * g->out[0] * g->out[1];
    lam_tensor *b = bias ? bias : w;
    lam__arg a[14] = {LAM__ARG_T(x), LAM__ARG_T(w), LAM__ARG_T(b), LAM__ARG_T(y),
                      lam__arg_int(rows)};
    lam__conv_vecs(g, g->N, a + 9);
    lam__direct_w(g, bias != NULL, a + 13);
    st = lam__launch_rows(x->ctx, k, fn, 14, a, rows);
  }
  if (st != LAM_OK) {
    lam_tensor_free(y);
    return NULL;
  }
  return y;
}

/* The direct adjoint in x; with bias [C], adds it (transposed conv). */
static lam_tensor *lam__direct_bwd_data(lam_tensor *dy, lam_tensor *w, lam_tensor *bias,
                                        const lam__conv_geom *g, const char *fn) {
  lam_tensor *dx = lam__new_shaped(dy, 0, g, fn);
  if (!dx) return NULL;
  cl_kernel k;
  lam_status st = lam__kernel_dt(dy->ctx, "conv", "direct_bwd_data", dy->dtype, NULL, &k);
  if (st == LAM_OK) {
    const int64_t rows = g->N * g->C * g->in[0] * g->in[1];
    lam_tensor *b = bias ? bias : w;
    lam__arg a[14] = {LAM__ARG_T(dy), LAM__ARG_T(w), LAM__ARG_T(b), LAM__ARG_T(dx),
                      lam__arg_int(rows)};
    lam__conv_vecs(g, g->N, a + 9);
    lam__direct_w(g, bias != NULL, a + 13);
    st = lam__launch_rows(dy->ctx, k, fn, 14, a, rows);
  }
  if (st != LAM_OK) {
    lam_tensor_free(dx);
    return NULL;
  }
  return dx;
}

static lam_tensor *lam__direct_bwd_weight(lam_tensor *dy, lam_tensor *x, const lam__conv_geom *g,
                                          const char *fn) {
  lam_tensor *dw = lam__new_shaped(dy, 1, g, fn);
  if (!dw) return NULL;
  cl_kernel k;
  lam_status st = lam__kernel_dt(dy->ctx, "conv", "direct_bwd_weight", dy->dtype, NULL, &k);
  if (st == LAM_OK) {
    const int64_t rows = g->O * (g->C / g->G) * lam__kvol(g);
    lam__arg a[12] = {LAM__ARG_T(dy), LAM__ARG_T(x), LAM__ARG_T(dw), lam__arg_int(rows)};
    lam__conv_vecs(g, g->N, a + 7);
    lam__direct_w(g, 0, a + 11);
    st = lam__launch_rows(dy->ctx, k, fn, 12, a, rows);
  }
  if (st != LAM_OK) {
    lam_tensor_free(dw);
    return NULL;
  }
  return dw;
}

/* ---- the three primitives ---------------------------------------------------- */

/* The forward pass with the evaluation epilogue: + res [N, O, out...] (NULL: none)
 * and ReLU in the output pass of the GEMM path (separate ops on the direct path). */
static lam_tensor *lam__conv_fwd_epi(lam_tensor *x, lam_tensor *w, lam_tensor *bias, lam_tensor *res,
                                     bool relu, const lam__conv_geom *g, const char *fn);

lam_tensor *lam__conv_fwd(lam_tensor *x, lam_tensor *w, lam_tensor *bias, const lam__conv_geom *g,
                          const char *fn) {
  return lam__conv_fwd_epi(x, w, bias, NULL, false, g, fn);
}

static lam_tensor *lam__conv_fwd_epi(lam_tensor *x, lam_tensor *w, lam_tensor *bias, lam_tensor *res,
                                     bool relu, const lam__conv_geom *g, const char *fn) {
  if (lam__use_direct(g)) {
    lam_tensor *y = lam__direct_fwd(x, w, bias, g, fn);
    if (y && res) {
      lam_tensor *s = lam_add(y, res);
      lam_tensor_free(y);
      y = s;
    }
    if (y && relu) {
      lam_tensor *s = lam_relu(y);
      lam_tensor_free(y);
      y = s;
    }
    return y;
  }
  if (lam__check_cols(g, fn) != LAM_OK) return NULL;
  const int64_t L = lam__lout(g), nb = lam__chunk(g, 0);
  lam_tensor *wm = lam__wmat(w, g);
  if (!wm) return NULL;
  lam_tensor *y = NULL;
  if (g->N == 1) {
    /* One image: the GEMM result [O, L] is y's layout; add the bias in place. */
    lam_tensor *cols = lam__cols_mat(x, g, 0, 1, fn);
    lam_tensor *r = cols ? lam_matmul(wm, cols) : NULL;
    lam_tensor_free(cols);
    if (r && (bias || res || relu) &&
        lam__chan_swap_epi(r, r->offset, r, r->offset, bias, res, res ? res->offset : 0, relu, g->O, 1,
                           L, fn) != LAM_OK) {
      lam_tensor_free(r);
      r = NULL;
    }
    if (r) {
      int64_t ys[5];
      lam__conv_shapes(g, NULL, NULL, ys);
      y = lam__tensor_view(r, r->offset, g->nsp + 2, ys);
      lam_tensor_free(r);
    }
    lam_tensor_free(wm);
    return y;
  }
  y = lam__new_shaped(x, 2, g, fn);
  lam_status st = y ? LAM_OK : lam_last_status();
  for (int64_t n0 = 0; n0 < g->N && st == LAM_OK; n0 += nb) {
    const int64_t nc = g->N - n0 < nb ? g->N - n0 : nb;
    lam_tensor *cols = lam__cols_mat(x, g, n0, nc, fn);
    lam_tensor *r = cols ? lam_matmul(wm, cols) : NULL;
    st = r ? lam__chan_swap_epi(r, r->offset, y, y->offset + (size_t)(n0 * g->O * L), bias, res,
                                res ? res->offset + (size_t)(n0 * g->O * L) : 0, relu, g->O, nc, L, fn)
           : lam_last_status();
    lam_tensor_free(cols);
    lam_tensor_free(r);
  }
  lam_tensor_free(wm);
  if (st != LAM_OK) {
    lam_tensor_free(y);
    return NULL;
  }
  return y;
}

/* col2im of dcols [C*KV, nb*L] into images n0.. of dx (+ bias [C]). */
static lam_status lam__col2im(lam_tensor *dcols, lam_tensor *dx, lam_tensor *bias,
                              const lam__conv_geom *g, int64_t n0, int64_t nb, const char *fn) {
  cl_kernel k;
  lam_status st = lam__kernel_dt(dx->ctx, "conv", "col2im", dx->dtype, NULL, &k);
  if (st != LAM_OK) return st;
  const int64_t rows = nb * g->C * g->in[0] * g->in[1];
  lam_tensor *b = bias ? bias : dx;
  lam__arg a[13] = {LAM__ARG_T(dcols), lam__arg_mem(dx->buf->mem),
                    lam__arg_int((int64_t)dx->offset + n0 * g->C * lam__lin(g)), LAM__ARG_T(b),
                    lam__arg_int(bias != NULL), lam__arg_int(rows)};
  lam__conv_vecs(g, nb, a + 8);
  return lam__launch_rows(dx->ctx, k, fn, 12, a, rows);
}

lam_tensor *lam__conv_bwd_data(lam_tensor *dy, lam_tensor *w, lam_tensor *bias,
                               const lam__conv_geom *g, const char *fn) {
  if (lam__use_direct(g)) return lam__direct_bwd_data(dy, w, bias, g, fn);
  if (lam__check_cols(g, fn) != LAM_OK) return NULL;
  const int64_t nb = lam__chunk(g, 0);
  lam_tensor *wm = lam__wmat(w, g);
  lam_tensor *dx = wm ? lam__new_shaped(dy, 0, g, fn) : NULL;
  lam_status st = dx ? LAM_OK : lam_last_status();
  for (int64_t n0 = 0; n0 < g->N && st == LAM_OK; n0 += nb) {
    const int64_t nc = g->N - n0 < nb ? g->N - n0 : nb;
    lam_tensor *dym = lam__dy_mat(dy, g, n0, nc, fn);
    lam_tensor *dcols = dym ? lam_matmul_t(wm, dym, 1, 0) : NULL;
    st = dcols ? lam__col2im(dcols, dx, bias, g, n0, nc, fn) : lam_last_status();
    lam_tensor_free(dym);
    lam_tensor_free(dcols);
  }
  lam_tensor_free(wm);
  if (st != LAM_OK) {
    lam_tensor_free(dx);
    return NULL;
  }
  return dx;
}

/* Batched tiled transpose (cl/conv.cl transpose_tiles): nb*G matrices
 * [R, Cc] from src (element offset src_off) to [Cc, R] in dst, batch order
 * (image, group) -> (group, image). */
static lam_status lam__transpose(lam_tensor *src, size_t src_off, lam_tensor *dst, int64_t R,
                                 int64_t Cc, int64_t nb, int64_t G, const char *fn) {
  cl_kernel k;
  lam_status st = lam__kernel_dt(src->ctx, "conv", "transpose_tiles", src->dtype, NULL, &k);
  if (st != LAM_OK) return st;
  const int64_t ntiles = nb * G * ((R + 15) / 16) * ((Cc + 15) / 16);
  lam__arg a[] = {lam__arg_mem(src->buf->mem), lam__arg_int((int64_t)src_off), LAM__ARG_T(dst),
                  lam__arg_int(R), lam__arg_int(Cc), lam__arg_int(nb), lam__arg_int(G),
                  lam__arg_int(ntiles)};
  return lam__launch_rows(src->ctx, k, fn, 9, a, ntiles);
}

lam_tensor *lam__conv_bwd_weight(lam_tensor *dy, lam_tensor *x, const lam__conv_geom *g,
                                 const char *fn) {
  if (lam__use_direct(g)) return lam__direct_bwd_weight(dy, x, g, fn);
  if (lam__check_cols(g, fn) != LAM_OK) return NULL;
  /* dW^T[g] = cols[g] [Kg, nb*L] @ dy^T[g] [nb*L, Og] per chunk (an NN
   * product: 1.3-3x faster than dy @ cols^T with the CPU GEMM), summed over
   * chunks, then transposed once to [G, Og, Kg]. */
  const int64_t nb = lam__chunk(g, 2048), L = lam__lout(g), G = g->G, Og = g->O / G;
  const int64_t Kg = g->C / G * lam__kvol(g);
  lam_tensor *acc = NULL;
  lam_status st = LAM_OK;
  for (int64_t n0 = 0; n0 < g->N && st == LAM_OK; n0 += nb) {
    const int64_t nc = g->N - n0 < nb ? g->N - n0 : nb;
    int64_t ts[3] = {G, nc * L, Og};
    lam_tensor *dyt = G == 1 ? lam__tensor_new(dy->ctx, dy->dtype, 2, ts + 1, fn)
                             : lam__tensor_new(dy->ctx, dy->dtype, 3, ts, fn);
    if (dyt && lam__transpose(dy, dy->offset + (size_t)(n0 * g->O * L), dyt, Og, L, nc, G, fn) != LAM_OK) {
      lam_tensor_free(dyt);
      dyt = NULL;
    }
    lam_tensor *cols = dyt ? lam__cols_mat(x, g, n0, nc, fn) : NULL;
    lam_tensor *part = cols ? lam_matmul(cols, dyt) : NULL;
    if (part && acc) {
      lam_tensor *s = lam_add(acc, part);
      lam_tensor_free(part);
      lam_tensor_free(acc);
      acc = s;
    } else {
      acc = part;
    }
    if (!acc) st = lam_last_status();
    lam_tensor_free(dyt);
    lam_tensor_free(cols);
  }
  lam_tensor *dw = st == LAM_OK ? lam__new_shaped(dy, 1, g, fn) : NULL;
  if (dw && lam__transpose(acc, acc->offset, dw, Kg, Og, 1, G, fn) != LAM_OK) {
    lam_tensor_free(dw);
    dw = NULL;
  }
  lam_tensor_free(acc);
  return dw;
}

lam_tensor *lam__conv_bias_grad(lam_tensor *dy) {
  int axes[LAM_MAX_DIMS], n = 0;
  for (int d = 0; d < dy->ndim; d++)
    if (d != 1) axes[n++] = d;
  return lam_sum(dy, n, axes, 0);
}

/* ---- options and the public ops ------------------------------------------------ */

/* Resolves padding, stride and dilation for nsp dims (index d of the opts
 * arrays) and the output sizes; fills the last nsp entries of g's arrays and,
 * when pa is not NULL, the padding after each spatial dim i in pa[i]. */
static lam_status lam__conv_resolve(const char *fn, int nsp, const int64_t *in, const int64_t *k,
                                    const lam_conv_opts *o, lam__conv_geom *g, int64_t *pa) {
  static const lam_conv_opts def; /* the geometry's defaults are its zeros */
  if (!o) o = &def;
  if ((int)o->padding < LAM_PADDING_SAME || o->padding > LAM_PADDING_EXPLICIT)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: unknown padding mode %d", fn, (int)o->padding);
  if (o->padding == LAM_PADDING_CAUSAL && nsp != 1)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: causal padding is for 1-D convolutions only",
                     fn);
  if ((int)o->padding_mode < LAM_PAD_CONSTANT || o->padding_mode > LAM_PAD_CIRCULAR)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: unknown padding_mode %d", fn,
                     (int)o->padding_mode);
  for (int d = 0; d < 3; d++) g->in[d] = g->out[d] = g->k[d] = g->s[d] = g->d[d] = 1, g->pb[d] = 0;
  for (int i = 0; i < nsp; i++) {
    const int d = 3 - nsp + i;
    const int64_t s = o->stride[i] ? o->stride[i] : 1, dil = o->dilation[i] ? o->dilation[i] : 1;
    if (s < 1 || dil < 1)
      return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                       "%s: stride %d and dilation %d of spatial dim %d must be >= 1", fn,
                       o->stride[i], o->dilation[i], i);
    if (k[i] < 1 || in[i] < 1)
      return lam__fail(LAM_ERR_SHAPE, "%s: kernel %lld and input %lld of spatial dim %d must be >= 1",
                       fn, (long long)k[i], (long long)in[i], i);
    const int64_t eff = dil * (k[i] - 1) + 1;
    int64_t before = 0, after = 0, out;
    switch (o->padding) {
      case LAM_PADDING_SAME: {
        out = (in[i] + s - 1) / s;
        int64_t total = (out - 1) * s + eff - in[i];
        if (total < 0) total = 0;
        before = total / 2;
        after = total - before;
        break;
      }
      case LAM_PADDING_CAUSAL: before = eff - 1; break;
      case LAM_PADDING_EXPLICIT:
        before = o->pad[i][0];
        after = o->pad[i][1];
        if (before < 0 || after < 0)
          return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                           "%s: padding (%d, %d) of spatial dim %d must be >= 0", fn, o->pad[i][0],
                           o->pad[i][1], i);
        break;
      default: break;
    }
    if (o->padding_mode == LAM_PAD_REFLECT && (before >= in[i] || after >= in[i]))
      return lam__fail(LAM_ERR_SHAPE,
                       "%s: reflect padding (%lld, %lld) of spatial dim %d must be less than the "
                       "input size %lld",
                       fn, (long long)before, (long long)after, i, (long long)in[i]);
    if (o->padding_mode == LAM_PAD_CIRCULAR && (before > in[i] || after > in[i]))
      return lam__fail(LAM_ERR_SHAPE,
                       "%s: circular padding (%lld, %lld) of spatial dim %d must be at most the "
                       "input size %lld (one wrap)",
                       fn, (long long)before, (long long)after, i, (long long)in[i]);
    if (pa) pa[i] = after;
    const int64_t padded = in[i] + before + after;
    if (padded < eff)
      return lam__fail(LAM_ERR_SHAPE,
                       "%s: kernel %lld (dilated %lld) is larger than the padded input %lld of "
                       "spatial dim %d",
                       fn, (long long)k[i], (long long)eff, (long long)padded, i);
    out = (padded - eff) / s + 1;
    g->in[d] = in[i], g->out[d] = out, g->k[d] = k[i], g->s[d] = s, g->d[d] = dil;
    g->pb[d] = before;
  }
  return LAM_OK;
}

lam_status lam_conv_output_size(int nsp, const int64_t *in, const int64_t *k,
                                const lam_conv_opts *opts, int64_t *out) {
  const char *fn = "lam_conv_output_size";
  if (!in || !k || !out) return lam__fail(LAM_ERR_NULL, "%s: in, k and out must not be NULL", fn);
  if (nsp < 1 || nsp > 3)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: nsp %d must be 1, 2 or 3", fn, nsp);
  lam__conv_geom g;
  lam_status st = lam__conv_resolve(fn, nsp, in, k, opts, &g, NULL);
  if (st != LAM_OK) return st;
  for (int i = 0; i < nsp; i++) out[i] = g.out[3 - nsp + i];
  return LAM_OK;
}

static lam_status lam__conv_backward(lam__node *node, lam_tensor *gy, lam_tensor **gin) {
  lam__conv_geom g;
  lam__conv_geom_load(node->i, &g);
  lam_tensor *x = node->saved[0], *w = node->saved[1];
  if (lam__node_needs(node, 0) && !(gin[0] = lam__conv_bwd_data(gy, w, NULL, &g, node->op)))
    return lam_last_status();
  if (lam__node_needs(node, 1) && !(gin[1] = lam__conv_bwd_weight(gy, x, &g, node->op)))
    return lam_last_status();
  if (node->n_inputs > 2 && lam__node_needs(node, 2) && !(gin[2] = lam__conv_bias_grad(gy)))
    return lam_last_status();
  return LAM_OK;
}

static lam_tensor *lam__conv_run(lam_tensor *x, lam_tensor *w, lam_tensor *b,
                                 const lam__conv_geom *gp, const char *fn);

/* The evaluation epilogue of lam__conv2d_fused (NULL in lam__conv: none). */
typedef struct {
  lam_tensor *res;
  bool relu;
} lam__conv_epi;

/* y + res, then ReLU, as separate recorded ops (the general path of an epilogue). */
static lam_tensor *lam__epi_apply(lam_tensor *y, const lam__conv_epi *epi) {
  if (y && epi && epi->res) {
    lam_tensor *s = lam_add(y, epi->res);
    lam_tensor_free(y);
    y = s;
  }
  if (y && epi && epi->relu) {
    lam_tensor *s = lam_relu(y);
    lam_tensor_free(y);
    y = s;
  }
  return y;
}

static lam_tensor *lam__conv(int nsp, lam_tensor *x, lam_tensor *w, lam_tensor *b,
                             const lam_conv_opts *o, const lam__conv_epi *epi, const char *fn) {
  if (lam__conv_check_args(nsp, x, w, b, "[out, in/groups, k...]", fn) != LAM_OK) return NULL;
  char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR];
  const int64_t G = o && o->groups ? o->groups : 1;
  if (G < 1)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: groups %lld must be >= 1", fn, (long long)G), NULL;
  const int64_t C = x->shape[1], O = w->shape[0];
  if (C % G != 0 || O % G != 0)
    return lam__fail(LAM_ERR_SHAPE,
                     "%s: in channels %lld and out channels %lld must be divisible by groups %lld",
                     fn, (long long)C, (long long)O, (long long)G), NULL;
  if (w->shape[1] * G != C)
    return lam__fail(LAM_ERR_SHAPE,
                     "%s: weight %s expects %lld input channels (in/groups %lld x groups %lld), "
                     "x %s has %lld",
                     fn, lam__shape_str(w->ndim, w->shape, b1), (long long)(w->shape[1] * G),
                     (long long)w->shape[1], (long long)G, lam__shape_str(x->ndim, x->shape, b2),
                     (long long)C), NULL;
  if (b && (b->ndim != 1 || b->shape[0] != O))
    return lam__fail(LAM_ERR_SHAPE, "%s: bias must be [%lld], got %s", fn, (long long)O,
                     lam__shape_str(b->ndim, b->shape, b1)), NULL;
  lam__conv_geom g;
  g.nsp = nsp, g.N = x->shape[0], g.C = C, g.O = O, g.G = G;
  int64_t after[3] = {0, 0, 0};
  if (lam__conv_resolve(fn, nsp, x->shape + 2, w->shape + 2, o, &g, after) != LAM_OK) return NULL;
  int64_t ys[5], numel;
  lam__conv_shapes(&g, NULL, NULL, ys);
  if (lam__check_shape(fn, nsp + 2, ys, &numel) != LAM_OK) return NULL;
  if (o && o->padding_mode != LAM_PAD_CONSTANT) {
    /* torch.nn.ConvNd with padding_mode != "zeros": F.pad in that mode (a
     * recorded, differentiable op), then an unpadded convolution. */
    int64_t pads[10] = {0}, any = 0;
    for (int i = 0; i < nsp; i++) {
      const int d = 3 - nsp + i;
      pads[4 + 2 * i] = g.pb[d], pads[5 + 2 * i] = after[i];
      any |= g.pb[d] | after[i];
    }
    if (any) {
      int64_t xs[5];
      for (int i = 0; i < nsp; i++) {
        const int d = 3 - nsp + i;
        g.in[d] += pads[4 + 2 * i] + pads[5 + 2 * i];
        g.pb[d] = 0;
        xs[2 + i] = g.in[d];
      }
      xs[0] = x->shape[0], xs[1] = C;
      if (lam__check_shape(fn, nsp + 2, xs, &numel) != LAM_OK) return NULL;
      lam_tensor *xp = lam_pad(x, pads, o->padding_mode, 0);
      if (!xp) return NULL;
      lam_tensor *y = lam__conv_run(xp, w, b, &g, fn);
      lam_tensor_free(xp);
      return lam__epi_apply(y, epi);
    }
  }
  if (epi && epi->res) {
    const lam_tensor *r = epi->res;
    bool same = r->ctx == x->ctx && r->dtype == x->dtype && r->ndim == nsp + 2;
    for (int d = 0; same && d < nsp + 2; d++) same = r->shape[d] == ys[d];
    if (!same)
      return lam__fail(LAM_ERR_SHAPE, "%s: the residual must be %s of x's dtype", fn,
                       lam__shape_str(nsp + 2, ys, b1)), NULL;
  }
  if (epi && !lam_grad_is_recording(x->ctx)) {
    const bool was = lam_grad_set_enabled(x->ctx, false);
    lam_tensor *y = lam__conv_fwd_epi(x, w, b, epi->res, epi->relu, &g, fn);
    lam_grad_set_enabled(x->ctx, was);
    return y;
  }
  return lam__epi_apply(lam__conv_run(x, w, b, &g, fn), epi);
}

lam_tensor *lam__conv2d_fused(lam_tensor *x, lam_tensor *w, lam_tensor *b, lam_tensor *res, bool relu,
                              const lam_conv_opts *opts) {
  const lam__conv_epi epi = {res, relu};
  return lam__conv(2, x, w, b, opts, &epi, "lam_conv2d");
}

/* The recorded convolution of x with geometry g (checked). */
static lam_tensor *lam__conv_run(lam_tensor *x, lam_tensor *w, lam_tensor *b,
                                 const lam__conv_geom *gp, const char *fn) {
  lam_ctx *ctx = x->ctx;
  const lam__conv_geom g = *gp;

  const bool was = lam_grad_set_enabled(ctx, false);
  lam_tensor *y = lam__conv_fwd(x, w, b, &g, fn);
  lam_grad_set_enabled(ctx, was);
  if (!y) return NULL;
  lam__node *node = lam__tape_record(y, fn, lam__conv_backward, b ? 3 : 2,
                                     (lam_tensor *[]){x, w, b});
  if (node) {
    lam__node_save(node, x);
    lam__node_save(node, w);
    lam__conv_geom_save(node->i, &g);
  }
  return y;
}

lam_tensor *lam_conv1d(lam_tensor *x, lam_tensor *weight, lam_tensor *bias,
                               const lam_conv_opts *opts) {
  return lam__conv(1, x, weight, bias, opts, NULL, "lam_conv1d");
}

lam_tensor *lam_conv2d(lam_tensor *x, lam_tensor *weight, lam_tensor *bias,
                               const lam_conv_opts *opts) {
  return lam__conv(2, x, weight, bias, opts, NULL, "lam_conv2d");
}

lam_tensor *lam_conv3d(lam_tensor *x, lam_tensor *weight, lam_tensor *bias,
                               const lam_conv_opts *opts) {
  return lam__conv(3, x, weight, bias, opts, NULL, "lam_conv3d");
}
