/* test_norm.c: the normalization ops and layers: PyTorch golden outputs and
 * gradients (layer, RMS, group, instance, channel layer and batch norm in
 * training and evaluation, ranks 2-5, odd sizes, batch size 1, inputs far
 * from zero) in f32 and f64 (tests/data/norm_golden.safetensors); a
 * plain C reference (forward and backward) on random shapes that take every
 * kernel path (one team per row or many rows
 * per work-group, column sums, strided channel loops, one layer norm above
 * 2^22 elements); finite-difference gradient checks; constant inputs;
 * the layers (params/state names, batch norm's running statistics after 3
 * training steps against nn.BatchNorm2d, evaluation mode, cumulative
 * momentum, instance norm tracking, layer norm with an activation
 * (LayerNormV2), ChannelLayerNorm,
 * LayerScale); conditioning: inputs with a large mean beside a small spread
 * (|mean|/std up to 1e5) against float64 and PyTorch f32's own error
 * (tests/data/norm_cond_golden.safetensors, tools/gen_cond_golden.py) on
 * both kernel layouts; and bad input with its status and message, without
 * leaks. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* ---- helpers -------------------------------------------------------------- */

/* Values as an f32 tensor holds them, so references see the same input. */
static void round_f32(double *v, int64_t n) {
  for (int64_t i = 0; i < n; i++) v[i] = (float)v[i];
}

/* ---- PyTorch golden data ---------------------------------------------------- */

/* Golden inputs are float32 values (outputs f64): rounding through float
 * keeps them exact. */
static lam_tensor *from_golden(lam_ctx *ctx, lam_dtype dt, int ndim, const int64_t *shape,
                               const double *v) {
  int64_t n = tu_numel(ndim, shape);
  double *c = malloc((size_t)n * sizeof *c);
  for (int64_t i = 0; i < n; i++) c[i] = (float)v[i];
  lam_tensor *t = tu_from_f64(ctx, dt, ndim, shape, c);
  free(c);
  return t;
}

enum { NG_LAYER, NG_RMS, NG_GROUP, NG_INSTANCE, NG_CHANNEL_LN, NG_BATCH_TRAIN, NG_BATCH_EVAL };

/* Case c of tools/gen_norm_golden.py: tensors norm.<c>.<name>, the rest metadata. */
typedef struct norm_golden {
  int op;
  int ndim;
  int64_t shape[8];
  int nd;          /* layer/rms: normalized ndim */
  int64_t groups;  /* group norm */
  double eps, momentum;
  int pndim;       /* params' rank and shape */
  int64_t pshape[8];
  const double *x, *w, *b, *rm, *rv, *dy, *y, *dx, *dw, *db, *nrm, *nrv; /* NULL: absent */
} norm_golden;

static norm_golden norm_golden_case(const tu_golden *gold, int c) {
  static const char *const ops[] = {"layer",    "rms",         "group",     "instance",
                                    "channel_ln", "batch_train", "batch_eval"};
  norm_golden g = {0};
  const char *op = tu_golden_meta(gold, "norm.%d.op", c);
  g.op = -1;
  for (int k = 0; k < 7; k++)
    if (strcmp(op, ops[k]) == 0) g.op = k;
  cr_assert(g.op >= 0, "norm golden op %s", op);
  const tu_array *x = tu_golden_get(gold, "norm.%d.x", c);
  g.ndim = x->ndim;
  memcpy(g.shape, x->shape, sizeof g.shape);
  g.nd = (int)tu_golden_num(gold, "norm.%d.nd", c);
  g.groups = (int64_t)tu_golden_num(gold, "norm.%d.groups", c);
  g.eps = tu_golden_num(gold, "norm.%d.eps", c);
  g.momentum = tu_golden_num(gold, "norm.%d.momentum", c);
  double ps[8];
  g.pndim = tu_golden_nums(gold, ps, 8, "norm.%d.pshape", c);
  for (int d = 0; d < g.pndim; d++) g.pshape[d] = (int64_t)ps[d];
  const double **fields[] = {&g.x,  &g.w,  &g.b,  &g.rm, &g.rv,  &g.dy,
                             &g.y,  &g.dx, &g.dw, &g.db, &g.nrm, &g.nrv};
  static const char *const names[] = {"x", "w", "b", "rm", "rv", "dy", "y", "dx", "dw", "db", "nrm", "nrv"};
  for (int k = 0; k < 12; k++) {
    const tu_array *a = tu_golden_find(gold, "norm.%d.%s", c, names[k]);
    *fields[k] = a ? a->v : NULL;
  }
  return g;
}

typedef struct {
  const norm_golden *g;
  lam_dtype dt;
  lam_tensor *rm, *rv;   /* running stats (inputs) */
  lam_tensor *nrm, *nrv; /* updated ones (outputs of the last call) */
} grun;

static lam_tensor *golden_fn(lam_tensor *const *xs, int n, void *user) {
  (void)n;
  grun *r = user;
  const norm_golden *g = r->g;
  lam_tensor *x = xs[0];
  int k = 1;
  lam_tensor *w = g->w ? xs[k++] : NULL;
  lam_tensor *b = g->b ? xs[k++] : NULL;
  lam_tensor_free(r->nrm);
  lam_tensor_free(r->nrv);
  r->nrm = r->nrv = NULL;
  switch (g->op) {
    case NG_LAYER: return lam_layer_norm(x, g->nd, w, b, g->eps);
    case NG_RMS: return lam_rms_norm(x, g->nd, w, g->eps);
    case NG_GROUP: return lam_group_norm(x, g->groups, w, b, g->eps);
    case NG_INSTANCE:
      return lam_instance_norm(x, r->rm, r->rv, w, b, true, g->momentum, g->eps, &r->nrm,
                                       &r->nrv);
    case NG_CHANNEL_LN: return lam_channel_layer_norm(x, w, b, g->eps);
    case NG_BATCH_TRAIN:
      return lam_batch_norm(x, r->rm, r->rv, w, b, true, g->momentum, g->eps, &r->nrm,
                                    &r->nrv);
    default:
      return lam_batch_norm(x, r->rm, r->rv, w, b, false, g->momentum, g->eps, NULL, NULL);
  }
}

static void run_golden(lam_dtype dt) {
  lam_ctx *ctx = tu_ctx();
  tu_golden *gold = tu_golden_load("norm_golden.safetensors");
  tu_mark m = tu_mark_now(ctx);
  const double atol = dt == LAM_F64 ? 1e-9 : 3e-4, rtol = dt == LAM_F64 ? 1e-9 : 3e-4;
  for (int c = 0; c < tu_golden_count(gold, "norm.cases"); c++) {
    const norm_golden gc = norm_golden_case(gold, c), *g = &gc;
    int64_t n = tu_numel(g->ndim, g->shape), np = tu_numel(g->pndim, g->pshape);
    int64_t C = g->shape[1];
    grun r = {g, dt, NULL, NULL, NULL, NULL};
    lam_tensor *xs[3];
    int nx = 0;
    xs[nx++] = from_golden(ctx, dt, g->ndim, g->shape, g->x);
    if (g->w) xs[nx++] = from_golden(ctx, dt, g->pndim, g->pshape, g->w);
    if (g->b) xs[nx++] = from_golden(ctx, dt, g->pndim, g->pshape, g->b);
    if (g->rm) {
      r.rm = from_golden(ctx, dt, 1, &C, g->rm);
      r.rv = from_golden(ctx, dt, 1, &C, g->rv);
    }
    lam_tensor *dy = from_golden(ctx, dt, g->ndim, g->shape, g->dy);
    lam_tensor *y = NULL, *grads[3] = {0};
    lam_status st = lam_vjp(ctx, golden_fn, &r, xs, nx, dy, &y, grads);
    char what[96];
    snprintf(what, sizeof what, "golden case %d (op %d) %s", c, g->op, lam_dtype_name(dt));
    cr_assert_eq(st, LAM_OK, "%s: %s", what, lam_last_error());
    /* inputs far from zero lose digits in f32 before any op runs */
    double sc = g->x[0] > 100 ? 10 : 1;
    tu_assert_tensor_close(y, g->y, n, atol * sc, rtol, what);
    tu_assert_tensor_close(grads[0], g->dx, n, atol * sc, rtol * sc, what);
    int k = 1;
    if (g->w) tu_assert_tensor_close(grads[k++], g->dw, np, atol * sc, rtol * sc, what);
    if (g->b) tu_assert_tensor_close(grads[k++], g->db, np, atol, rtol, what);
    if (g->nrm) {
      tu_assert_tensor_close(r.nrm, g->nrm, C, atol * sc, rtol, what);
      tu_assert_tensor_close(r.nrv, g->nrv, C, atol * sc, rtol, what);
    }
    for (int i = 0; i < nx; i++) {
      lam_tensor_free(xs[i]);
      lam_tensor_free(grads[i]);
    }
    lam_tensor_free(y);
    lam_tensor_free(dy);
    lam_tensor_free(r.rm);
    lam_tensor_free(r.rv);
    lam_tensor_free(r.nrm);
    lam_tensor_free(r.nrv);
  }
  tu_assert_no_leak(ctx, m);
  tu_golden_free(gold);
  lam_ctx_free(ctx);
}

Test(norm, golden_f64) { run_golden(LAM_F64); }
Test(norm, golden_f32) { run_golden(LAM_F32); }

/* ---- plain C references ---------------------------------------------------------- */

/* A row norm over rows of D elements at stride Sx (see cl/norm.cl): row r is
 * (n, s) = (r / Sx, r % Sx) at n*D*Sx + s; affine index (r % G) * Cg + j / Sw. */
typedef struct {
  int64_t rows, D, Sx, G, Cg, Sw;
  int rms;
} rgeo;

static int64_t relem(const rgeo *g, int64_t r, int64_t j) {
  return (r / g->Sx) * g->D * g->Sx + r % g->Sx + j * g->Sx;
}
static int64_t raff(const rgeo *g, int64_t r, int64_t j) { return (r % g->G) * g->Cg + j / g->Sw; }

/* Forward and backward of a row norm in double; w, b, dy may be NULL. */
static void ref_rownorm(const rgeo *g, const double *x, const double *w, const double *b,
                        double eps, const double *dy, double *y, double *dx, double *dw,
                        double *db, int64_t np) {
  if (dw) memset(dw, 0, (size_t)np * sizeof *dw);
  if (db) memset(db, 0, (size_t)np * sizeof *db);
  for (int64_t r = 0; r < g->rows; r++) {
    double mean = 0, var = 0;
    if (!g->rms) {
      for (int64_t j = 0; j < g->D; j++) mean += x[relem(g, r, j)];
      mean /= (double)g->D;
    }
    for (int64_t j = 0; j < g->D; j++) {
      double d = x[relem(g, r, j)] - mean;
      var += d * d;
    }
    double rs = 1.0 / sqrt(var / (double)g->D + eps);
    double sa = 0, sb = 0;
    for (int64_t j = 0; j < g->D; j++) {
      int64_t e = relem(g, r, j), a = raff(g, r, j);
      double xh = (x[e] - mean) * rs;
      y[e] = xh * (w ? w[a] : 1) + (b ? b[a] : 0);
      if (dy) {
        double gg = dy[e] * (w ? w[a] : 1);
        sa += gg;
        sb += gg * xh;
        if (dw) dw[a] += dy[e] * xh;
        if (db) db[a] += dy[e];
      }
    }
    if (!dy) continue;
    for (int64_t j = 0; j < g->D; j++) {
      int64_t e = relem(g, r, j), a = raff(g, r, j);
      double xh = (x[e] - mean) * rs;
      double gg = dy[e] * (w ? w[a] : 1);
      dx[e] = rs * (gg - (g->rms ? 0 : sa / (double)g->D) - xh * sb / (double)g->D);
    }
  }
}

/* Batch norm in training on [N, C, S]: y, new running stats, and gradients. */
static void ref_batchnorm(int64_t N, int64_t C, int64_t S, const double *x, const double *w,
                          const double *b, double eps, double mom, double *rm, double *rv,
                          const double *dy, double *y, double *dx, double *dw, double *db) {
  double cnt = (double)(N * S);
  for (int64_t c = 0; c < C; c++) {
    double mean = 0, var = 0;
    for (int64_t n = 0; n < N; n++)
      for (int64_t s = 0; s < S; s++) mean += x[(n * C + c) * S + s];
    mean /= cnt;
    for (int64_t n = 0; n < N; n++)
      for (int64_t s = 0; s < S; s++) {
        double d = x[(n * C + c) * S + s] - mean;
        var += d * d;
      }
    double rs = 1.0 / sqrt(var / cnt + eps), wc = w ? w[c] : 1;
    if (rm) {
      rm[c] = (1 - mom) * rm[c] + mom * mean;
      rv[c] = (1 - mom) * rv[c] + mom * var / (cnt - 1);
    }
    double sa = 0, sb = 0;
    for (int64_t n = 0; n < N; n++)
      for (int64_t s = 0; s < S; s++) {
        int64_t e = (n * C + c) * S + s;
        double xh = (x[e] - mean) * rs;
        y[e] = xh * wc + (b ? b[c] : 0);
        if (dy) {
          sa += dy[e];
          sb += dy[e] * xh;
        }
      }
    if (!dy) continue;
    if (dw) dw[c] = sb;
    if (db) db[c] = sa;
    for (int64_t n = 0; n < N; n++)
      for (int64_t s = 0; s < S; s++) {
        int64_t e = (n * C + c) * S + s;
        double xh = (x[e] - mean) * rs;
        dx[e] = wc * rs * (dy[e] - sa / cnt - xh * sb / cnt);
      }
  }
}

typedef enum { K_LAYER, K_RMS, K_GROUP, K_INSTANCE, K_CHANNEL } rkind;

typedef struct {
  rkind kind;
  int nd;          /* layer/rms: normalized ndim */
  int64_t groups;  /* group */
  bool affine;
} rcase;

static lam_tensor *rcase_fn(lam_tensor *const *xs, int n, void *user) {
  const rcase *c = user;
  lam_tensor *w = n > 1 ? xs[1] : NULL, *b = n > 2 ? xs[2] : NULL;
  switch (c->kind) {
    case K_LAYER: return lam_layer_norm(xs[0], c->nd, w, b, 1e-5);
    case K_RMS: return lam_rms_norm(xs[0], c->nd, w, 1e-5);
    case K_GROUP: return lam_group_norm(xs[0], c->groups, w, b, 1e-5);
    case K_INSTANCE:
      return lam_instance_norm(xs[0], NULL, NULL, w, b, true, 0.1, 1e-5, NULL, NULL);
    default: return lam_channel_layer_norm(xs[0], w, b, 1e-5);
  }
}

/* Geometry of a case for the reference; np params of shape pshape. */
static rgeo rcase_geo(const rcase *c, int ndim, const int64_t *shape, int *pnd, int64_t *pshape) {
  int64_t n = tu_numel(ndim, shape);
  if (c->kind == K_LAYER || c->kind == K_RMS) {
    int64_t D = tu_numel(c->nd, shape + ndim - c->nd);
    *pnd = c->nd;
    memcpy(pshape, shape + ndim - c->nd, (size_t)c->nd * sizeof *pshape);
    return (rgeo){n / D, D, 1, 1, 0, 1, c->kind == K_RMS};
  }
  int64_t N = shape[0], C = shape[1], S = n / (N * C);
  *pnd = 1;
  pshape[0] = C;
  if (c->kind == K_CHANNEL) return (rgeo){N * S, C, S, 1, 0, 1, 0};
  int64_t G = c->kind == K_INSTANCE ? C : c->groups;
  return (rgeo){N * G, C / G * S, 1, G, C / G, S, 0};
}

static void run_rcase(lam_ctx *ctx, tu_rng *r, lam_dtype dt, const rcase *c, int ndim,
                      const int64_t *shape, bool grads) {
  int pnd;
  int64_t pshape[8];
  rgeo g = rcase_geo(c, ndim, shape, &pnd, pshape);
  int64_t n = tu_numel(ndim, shape), np = tu_numel(pnd, pshape);
  double *x = tu_rand_vec(r, n, -3, 5), *w = tu_rand_vec(r, np, 0.5, 1.5), *b = tu_rand_vec(r, np, -1, 1);
  double *dy = tu_rand_vec(r, n, -1, 1);
  if (dt == LAM_F32) {
    round_f32(x, n);
    round_f32(w, np);
    round_f32(b, np);
    round_f32(dy, n);
  }
  double *y = malloc((size_t)n * 8), *dx = malloc((size_t)n * 8), *dw = malloc((size_t)np * 8),
         *db = malloc((size_t)np * 8);
  bool hb = c->affine && c->kind != K_RMS;
  ref_rownorm(&g, x, c->affine ? w : NULL, hb ? b : NULL, 1e-5, grads ? dy : NULL, y, dx, dw, db, np);
  lam_tensor *xs[3] = {tu_from_f64(ctx, dt, ndim, shape, x), NULL, NULL};
  int nx = 1;
  if (c->affine) xs[nx++] = tu_from_f64(ctx, dt, pnd, pshape, w);
  if (hb) xs[nx++] = tu_from_f64(ctx, dt, pnd, pshape, b);
  char what[128];
  snprintf(what, sizeof what, "kind %d shape[0..] %lld,%lld rank %d %s", c->kind, (long long)shape[0],
           (long long)(ndim > 1 ? shape[1] : 0), ndim, lam_dtype_name(dt));
  double atol = dt == LAM_F64 ? 1e-10 : 2e-4, rtol = dt == LAM_F64 ? 1e-10 : 2e-4;
  if (grads) {
    lam_tensor *t_dy = tu_from_f64(ctx, dt, ndim, shape, dy);
    lam_tensor *out = NULL, *gr[3] = {0};
    lam_status st = lam_vjp(ctx, rcase_fn, (void *)c, xs, nx, t_dy, &out, gr);
    cr_assert_eq(st, LAM_OK, "%s: %s", what, lam_last_error());
    tu_assert_tensor_close(out, y, n, atol, rtol, what);
    tu_assert_tensor_close(gr[0], dx, n, atol * 4, rtol * 4, what);
    /* column sums over many rows: f32 accumulates more rounding */
    double sat = dt == LAM_F64 ? 1e-9 : 2e-4 * sqrt((double)(n / np) + 1);
    if (c->affine) tu_assert_tensor_close(gr[1], dw, np, sat, rtol * 4, what);
    if (hb) tu_assert_tensor_close(gr[2], db, np, sat, rtol * 4, what);
    lam_tensor_free(t_dy);
    lam_tensor_free(out);
    for (int i = 0; i < 3; i++) lam_tensor_free(gr[i]);
  } else {
    lam_tensor *out = rcase_fn(xs, nx, (void *)c);
    tu_assert_tensor_close(out, y, n, atol, rtol, what);
    lam_tensor_free(out);
  }
  for (int i = 0; i < nx; i++) lam_tensor_free(xs[i]);
  free(x);
  free(w);
  free(b);
  free(dy);
  free(y);
  free(dx);
  free(dw);
  free(db);
}

/* Row norms on shapes that take each path: one work-item per row (short
 * rows, partial work-groups), teams of 4..64 lanes, strided rows (channel
 * layer norm), odd sizes 1, 3, 7, 33, 1023. */
static void row_norm_cases(void) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(7);
  tu_mark m = tu_mark_now(ctx);
  struct {
    rcase c;
    int ndim;
    int64_t shape[5];
  } cases[] = {
      {{K_LAYER, 1, 0, true}, 2, {33, 7}},       {{K_LAYER, 1, 0, true}, 2, {3, 1023}},
      {{K_LAYER, 2, 0, true}, 3, {7, 3, 33}},    {{K_LAYER, 1, 0, false}, 1, {1}},
      {{K_LAYER, 1, 0, true}, 2, {65, 1}},       {{K_LAYER, 3, 0, true}, 4, {1, 3, 7, 5}},
      {{K_RMS, 1, 0, true}, 2, {33, 65}},        {{K_RMS, 2, 0, false}, 3, {3, 7, 33}},
      {{K_GROUP, 0, 3, true}, 3, {3, 9, 33}},    {{K_GROUP, 0, 1, true}, 4, {1, 7, 3, 5}},
      {{K_GROUP, 0, 7, false}, 2, {33, 7}},      {{K_INSTANCE, 0, 0, true}, 3, {3, 7, 129}},
      {{K_INSTANCE, 0, 0, false}, 5, {2, 3, 3, 1, 7}}, {{K_CHANNEL, 0, 0, true}, 4, {3, 7, 5, 9}},
      {{K_CHANNEL, 0, 0, true}, 3, {1, 130, 3}}, {{K_CHANNEL, 0, 0, false}, 2, {33, 3}},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    for (int d = 0; d < 2; d++)
      run_rcase(ctx, &r, d ? LAM_F32 : LAM_F64, &cases[i].c, cases[i].ndim, cases[i].shape, true);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

Test(norm, row_norms_vs_reference) { row_norm_cases(); }

/* One layer norm above 2^22 elements (streaming, long rows) and one with
 * many short rows; forward and backward against the reference in f32. */
Test(norm, layer_norm_large, .timeout = 300) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(8);
  tu_mark m = tu_mark_now(ctx);
  rcase c = {K_LAYER, 1, 0, true};
  int64_t big[2] = {tu_small() ? 8 : 4096, tu_small() ? 300 : 1025};
  run_rcase(ctx, &r, LAM_F32, &c, 2, big, true);
  int64_t many[2] = {tu_small() ? 100 : 100000, 3};
  run_rcase(ctx, &r, LAM_F32, &c, 2, many, true);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

typedef struct {
  bool affine, running;
  double mom;
} bcase;

static lam_tensor *bcase_fn(lam_tensor *const *xs, int n, void *user) {
  (void)user;
  lam_tensor *w = n > 1 ? xs[1] : NULL, *b = n > 2 ? xs[2] : NULL;
  return lam_batch_norm(xs[0], NULL, NULL, w, b, true, 0.1, 1e-5, NULL, NULL);
}

static void run_bcase(lam_ctx *ctx, tu_rng *r, lam_dtype dt, bool affine, int ndim,
                      const int64_t *shape) {
  int64_t n = tu_numel(ndim, shape), N = shape[0], C = shape[1], S = n / (N * C);
  double *x = tu_rand_vec(r, n, -2, 6), *w = tu_rand_vec(r, C, 0.5, 1.5), *b = tu_rand_vec(r, C, -1, 1);
  double *dy = tu_rand_vec(r, n, -1, 1), *rm = tu_rand_vec(r, C, -1, 1), *rv = tu_rand_vec(r, C, 0.5, 2);
  if (dt == LAM_F32) {
    round_f32(x, n);
    round_f32(w, C);
    round_f32(b, C);
    round_f32(dy, n);
    round_f32(rm, C);
    round_f32(rv, C);
  }
  lam_tensor *trm = tu_from_f64(ctx, dt, 1, &C, rm), *trv = tu_from_f64(ctx, dt, 1, &C, rv);
  double *y = malloc((size_t)n * 8), *dx = malloc((size_t)n * 8), *dw = malloc((size_t)C * 8),
         *db = malloc((size_t)C * 8);
  ref_batchnorm(N, C, S, x, affine ? w : NULL, affine ? b : NULL, 1e-5, 0.1, rm, rv, dy, y, dx, dw, db);
  lam_tensor *xs[3] = {tu_from_f64(ctx, dt, ndim, shape, x), NULL, NULL};
  int nx = 1;
  if (affine) {
    xs[nx++] = tu_from_f64(ctx, dt, 1, &C, w);
    xs[nx++] = tu_from_f64(ctx, dt, 1, &C, b);
  }
  char what[96];
  snprintf(what, sizeof what, "batch norm [%lld, %lld, S=%lld] %s", (long long)N, (long long)C,
           (long long)S, lam_dtype_name(dt));
  double atol = dt == LAM_F64 ? 1e-10 : 3e-4, rtol = atol;
  lam_tensor *t_dy = tu_from_f64(ctx, dt, ndim, shape, dy);
  lam_tensor *out = NULL, *gr[3] = {0};
  cr_assert_eq(lam_vjp(ctx, bcase_fn, NULL, xs, nx, t_dy, &out, gr), LAM_OK, "%s: %s", what,
               lam_last_error());
  tu_assert_tensor_close(out, y, n, atol, rtol, what);
  tu_assert_tensor_close(gr[0], dx, n, atol * 4, rtol * 4, what);
  double sat = dt == LAM_F64 ? 1e-9 : 2e-4 * sqrt((double)(N * S));
  if (affine) {
    tu_assert_tensor_close(gr[1], dw, C, sat, rtol * 4, what);
    tu_assert_tensor_close(gr[2], db, C, sat, rtol * 4, what);
  }
  /* running statistics from the same kernel */
  lam_tensor *nm = NULL, *nv = NULL;
  lam_tensor *y2 = lam_batch_norm(xs[0], trm, trv, affine ? xs[1] : NULL,
                                          affine ? xs[2] : NULL, true, 0.1, 1e-5, &nm, &nv);
  tu_assert_tensor_close(y2, y, n, atol, rtol, what);
  tu_assert_tensor_close(nm, rm, C, atol, rtol, what);
  tu_assert_tensor_close(nv, rv, C, atol, rtol, what);
  lam_tensor_free(y2);
  lam_tensor_free(nm);
  lam_tensor_free(nv);
  lam_tensor_free(t_dy);
  lam_tensor_free(out);
  for (int i = 0; i < 3; i++) lam_tensor_free(gr[i]);
  for (int i = 0; i < nx; i++) lam_tensor_free(xs[i]);
  lam_tensor_free(trm);
  lam_tensor_free(trv);
  free(x);
  free(w);
  free(b);
  free(dy);
  free(rm);
  free(rv);
  free(y);
  free(dx);
  free(dw);
  free(db);
}

/* Batch norm on each channel-loop path: S == 1 (rank 2, one lane or many
 * per channel), S >= T (planes), S < T (flat index), batch size 1. */
static void batch_norm_cases(void) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(9);
  tu_mark m = tu_mark_now(ctx);
  struct {
    int ndim;
    int64_t shape[5];
  } cases[] = {{2, {7, 33}},        {2, {1023, 3}},      {3, {3, 5, 7}},
               {4, {2, 3, 33, 31}}, {3, {1023, 3, 2}},   {3, {1, 7, 1023}},
               {5, {2, 3, 3, 1, 7}}, {4, {33, 1, 1, 3}}, {2, {2, 1}}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    for (int d = 0; d < 2; d++)
      run_bcase(ctx, &r, d ? LAM_F32 : LAM_F64, i % 2 == 0, cases[i].ndim, cases[i].shape);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

Test(norm, batch_norm_vs_reference) { batch_norm_cases(); }

/* The other kernel layout than the device's own (teams with local-memory
 * reductions on a CPU; one work-item per statistic elsewhere), so both
 * layouts are tested on every machine. */
static void other_layout(void) {
  lam_ctx *ctx = tu_ctx();
  bool cpu = lam_ctx_device(ctx)->type == LAM_DEVICE_CPU;
  lam_ctx_free(ctx);
  setenv("LAMINA_NORM_LAYOUT", cpu ? "gpu" : "cpu", 1);
}

Test(norm, other_layout_row_norms) {
  other_layout();
  row_norm_cases();
}

Test(norm, other_layout_batch_norm) {
  other_layout();
  batch_norm_cases();
}

Test(norm, other_layout_golden) {
  other_layout();
  run_golden(LAM_F64);
  run_golden(LAM_F32);
}

/* ---- conditioning: a large mean beside a small spread ----------------------------- */

/* tools/gen_cond_golden.py: std 0.1 around means 0 .. 1e4 (|mean|/std up to 1e5), f32
 * inputs, the f64 answer and PyTorch f32's own max error, which lamina's f32 error (every
 * output and gradient, each kernel layout) must not exceed. Where PyTorch is exact to the
 * final rounding (it accumulates some sums in double) the bar is instead the f32 floor: four
 * ulps of the largest answer, or twice lamina's own error on the mean-0 input of the same op
 * and shape (the error must not grow with |mean|/std; sums that cancel, such as db, sit
 * above an ulp of their answer). */
typedef struct {
  int op; /* index in cond_ops */
  int nd;
  int64_t groups;
} cond_case;

static const char *const cond_ops[] = {"layer", "rms", "group", "instance", "channel_ln", "batch_train"};

static lam_tensor *cond_fn(lam_tensor *const *xs, int n, void *user) {
  const cond_case *c = user;
  lam_tensor *w = xs[1], *b = n > 2 ? xs[2] : NULL;
  switch (c->op) {
    case 0: return lam_layer_norm(xs[0], c->nd, w, b, 1e-5);
    case 1: return lam_rms_norm(xs[0], c->nd, w, 1e-5);
    case 2: return lam_group_norm(xs[0], c->groups, w, b, 1e-5);
    case 3: return lam_instance_norm(xs[0], NULL, NULL, w, b, true, 0.1, 1e-5, NULL, NULL);
    case 4: return lam_channel_layer_norm(xs[0], w, b, 1e-5);
    default: return lam_batch_norm(xs[0], NULL, NULL, w, b, true, 0.1, 1e-5, NULL, NULL);
  }
}

/* Max |t - want| over n elements. */
static double max_err(const lam_tensor *t, const double *want, int64_t n) {
  cr_assert_not_null(t);
  cr_assert_eq(lam_tensor_numel(t), n);
  double *v = tu_to_f64(t), e = 0;
  for (int64_t i = 0; i < n; i++) e = fmax(e, fabs(v[i] - want[i]));
  free(v);
  return e;
}

/* Four f32 ulps of the largest |want|. */
static double f32_floor(const double *want, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(want[i]));
  float f = (float)m;
  return 4.0 * ((double)nextafterf(f, INFINITY) - (double)f);
}

static void cond_norm_cases(const char *layout) {
  setenv("LAMINA_NORM_LAYOUT", layout, 1);
  lam_ctx *ctx = tu_ctx();
  tu_golden *gold = tu_golden_load("norm_cond_golden.safetensors");
  tu_mark m = tu_mark_now(ctx);
  static const char *const qn[4] = {"y", "dx", "dw", "db"};
  double err0[4] = {0}; /* lamina's errors on the last mean-0 case */
  for (int c = 0; c < tu_golden_count(gold, "cond.cases"); c++) {
    cond_case cc = {-1, (int)tu_golden_num(gold, "cond.%d.nd", c),
                    (int64_t)tu_golden_num(gold, "cond.%d.groups", c)};
    const char *op = tu_golden_meta(gold, "cond.%d.op", c);
    for (int k = 0; k < 6; k++)
      if (strcmp(op, cond_ops[k]) == 0) cc.op = k;
    cr_assert(cc.op >= 0, "cond golden op %s", op);
    const double mean = tu_golden_num(gold, "cond.%d.mean", c);
    const tu_array *xa = tu_golden_get(gold, "cond.%d.x", c), *wa = tu_golden_get(gold, "cond.%d.w", c);
    const bool hb = tu_golden_find(gold, "cond.%d.b", c) != NULL;
    lam_tensor *xs[3] = {tu_from_f64(ctx, LAM_F32, xa->ndim, xa->shape, xa->v),
                         tu_from_f64(ctx, LAM_F32, wa->ndim, wa->shape, wa->v), NULL};
    if (hb) xs[2] = tu_golden_tensor(ctx, LAM_F32, gold, "cond.%d.b", c);
    lam_tensor *dy = tu_golden_tensor(ctx, LAM_F32, gold, "cond.%d.dy", c);
    lam_tensor *y = NULL, *gr[3] = {0};
    cr_assert_eq(lam_vjp(ctx, cond_fn, &cc, xs, hb ? 3 : 2, dy, &y, gr), LAM_OK, "cond case %d: %s", c,
                 lam_last_error());
    double terr[4] = {0};
    cr_assert_eq(tu_golden_nums(gold, terr, 4, "cond.%d.terr", c), 4);
    const lam_tensor *got[4] = {y, gr[0], gr[1], gr[2]};
    const int64_t cnt[4] = {xa->n, xa->n, wa->n, wa->n};
    char line[256], shape[48];
    int at = 0;
    for (int d = 0; d < xa->ndim; d++)
      at += snprintf(shape + at, sizeof shape - (size_t)at, "%s%lld", d ? "," : "", (long long)xa->shape[d]);
    at = snprintf(line, sizeof line, "cond %-3s %-11s %-10s mean %-5g:", layout, op, shape, mean);
    for (int q = 0; q < 3 + hb; q++) {
      const double *want = tu_golden_values(gold, "cond.%d.%s", c, qn[q]);
      double e = max_err(got[q], want, cnt[q]);
      if (mean == 0) err0[q] = e;
      double bar = fmax(terr[q], fmax(f32_floor(want, cnt[q]), 2 * err0[q]));
      at += snprintf(line + at, sizeof line - (size_t)at, " %s %.1e (torch %.1e)", qn[q], e, terr[q]);
      cr_expect(e <= bar, "cond case %d (%s, mean %g, layout %s): %s error %.3g > bar %.3g (torch %.3g)", c,
                op, mean, layout, qn[q], e, bar, terr[q]);
    }
    fprintf(stderr, "%s\n", line);
    lam_tensor_free(y);
    lam_tensor_free(dy);
    for (int i = 0; i < 3; i++) {
      lam_tensor_free(xs[i]);
      lam_tensor_free(gr[i]);
    }
  }
  tu_assert_no_leak(ctx, m);
  tu_golden_free(gold);
  lam_ctx_free(ctx);
}

Test(norm, conditioning_cpu_layout) { cond_norm_cases("cpu"); }
Test(norm, conditioning_gpu_layout) { cond_norm_cases("gpu"); }

/* ---- gradient checks ------------------------------------------------------------------ */

typedef struct {
  int op; /* 0..4 rkind, 5 batch train, 6 batch eval, 7 instance eval */
  int nd;
  int64_t groups;
  const double *rm, *rv; /* eval: running stats (cast to x's dtype inside) */
  int64_t C;
} gcase;

static lam_tensor *gcase_fn(lam_tensor *const *xs, int n, void *user) {
  const gcase *g = user;
  lam_tensor *w = n > 1 ? xs[1] : NULL, *b = n > 2 ? xs[2] : NULL;
  if (g->op <= K_CHANNEL) {
    rcase c = {(rkind)g->op, g->nd, g->groups, n > 1};
    return rcase_fn(xs, n, &c);
  }
  if (g->op == 5) return lam_batch_norm(xs[0], NULL, NULL, w, b, true, 0.1, 1e-5, NULL, NULL);
  lam_ctx *ctx = lam_tensor_ctx(xs[0]);
  lam_tensor *rm = from_golden(ctx, lam_tensor_dtype(xs[0]), 1, &g->C, g->rm);
  lam_tensor *rv = from_golden(ctx, lam_tensor_dtype(xs[0]), 1, &g->C, g->rv);
  lam_tensor *y = g->op == 6
                      ? lam_batch_norm(xs[0], rm, rv, w, b, false, 0.1, 1e-5, NULL, NULL)
                      : lam_instance_norm(xs[0], rm, rv, w, b, false, 0.1, 1e-5, NULL, NULL);
  lam_tensor_free(rm);
  lam_tensor_free(rv);
  return y;
}

Test(norm, gradcheck) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(10);
  tu_mark m = tu_mark_now(ctx);
  static const double rm[3] = {0.3, -0.2, 0.1}, rv[3] = {0.8, 1.3, 0.6};
  struct {
    gcase g;
    int ndim;
    int64_t shape[4];
    int pnd;
    int64_t pshape[2];
    int nparams; /* 0, 1 (weight), 2 (weight, bias) */
  } cases[] = {
      {{K_LAYER, 1, 0, 0, 0, 0}, 2, {3, 5}, 1, {5}, 2},
      {{K_LAYER, 2, 0, 0, 0, 0}, 3, {2, 3, 4}, 2, {3, 4}, 1},
      {{K_RMS, 1, 0, 0, 0, 0}, 2, {3, 5}, 1, {5}, 1},
      {{K_RMS, 1, 0, 0, 0, 0}, 2, {2, 4}, 1, {4}, 0},
      {{K_GROUP, 0, 2, 0, 0, 0}, 3, {2, 4, 3}, 1, {4}, 2},
      {{K_INSTANCE, 0, 0, 0, 0, 0}, 3, {2, 3, 4}, 1, {3}, 2},
      {{K_CHANNEL, 0, 0, 0, 0, 0}, 3, {2, 3, 4}, 1, {3}, 2},
      {{5, 0, 0, 0, 0, 0}, 3, {4, 3, 2}, 1, {3}, 2},
      {{5, 0, 0, 0, 0, 0}, 2, {5, 3}, 1, {3}, 0},
      {{6, 0, 0, rm, rv, 3}, 3, {3, 3, 2}, 1, {3}, 2},
      {{7, 0, 0, rm, rv, 3}, 3, {2, 3, 3}, 1, {3}, 2},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    lam_tensor *xs[3];
    int n = 0;
    xs[n++] = tu_rand_f64(ctx, &r, cases[i].ndim, cases[i].shape, -2, 2);
    if (cases[i].nparams >= 1) xs[n++] = tu_rand_f64(ctx, &r, cases[i].pnd, cases[i].pshape, 0.5, 1.5);
    if (cases[i].nparams >= 2) xs[n++] = tu_rand_f64(ctx, &r, cases[i].pnd, cases[i].pshape, -1, 1);
    char what[64];
    snprintf(what, sizeof what, "gradcheck case %zu (op %d)", i, cases[i].g.op);
    tu_gradcheck(ctx, gcase_fn, &cases[i].g, xs, n, 1e-6, 1e-6, 1, 2e-3, what);
    for (int k = 0; k < n; k++) lam_tensor_free(xs[k]);
  }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- stability --------------------------------------------------------------------------- */

/* Constant inputs (here 1e3 + 0, where a naive E[x^2] - E[x]^2 cancels) give
 * exactly zero variance and finite outputs equal to the bias; so do their
 * gradients. */
Test(norm, constant_input_is_finite) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  int64_t shape[4] = {2, 4, 3, 5}, C = 4;
  lam_tensor *x = lam_tensor_full(ctx, LAM_F32, 4, shape, 1000.0);
  lam_tensor *b = lam_tensor_full(ctx, LAM_F32, 1, &C, 0.25);
  lam_tensor *ys[4] = {
      lam_layer_norm(x, 3, NULL, NULL, 1e-5),
      lam_batch_norm(x, NULL, NULL, NULL, b, true, 0.1, 1e-5, NULL, NULL),
      lam_group_norm(x, 2, NULL, b, 1e-5),
      lam_channel_layer_norm(x, NULL, b, 1e-5),
  };
  const double want[4] = {0, 0.25, 0.25, 0.25};
  for (int i = 0; i < 4; i++) {
    cr_assert(ys[i], "case %d: %s", i, lam_last_error());
    double *v = tu_to_f64(ys[i]);
    for (int64_t e = 0; e < lam_tensor_numel(ys[i]); e++)
      cr_assert(isfinite(v[e]) && v[e] == want[i], "case %d element %lld: %g", i, (long long)e, v[e]);
    free(v);
    lam_tensor_free(ys[i]);
  }
  /* and a constant with f64 noise-free rows of huge magnitude: still exact */
  lam_tensor *xd = lam_tensor_full(ctx, LAM_F64, 2, (int64_t[]){3, 1023}, -3e7);
  lam_tensor *yd = lam_rms_norm(xd, 1, NULL, 1e-6);
  lam_tensor *zd = lam_layer_norm(xd, 1, NULL, NULL, 1e-6);
  double *v = tu_to_f64(yd), *z = tu_to_f64(zd);
  for (int e = 0; e < 3 * 1023; e++) {
    cr_assert(fabs(v[e] + 1.0) < 1e-12, "rms element %d: %g", e, v[e]);
    cr_assert(z[e] == 0, "layer element %d: %g", e, z[e]);
  }
  free(v);
  free(z);
  lam_tensor_free(xd);
  lam_tensor_free(yd);
  lam_tensor_free(zd);
  lam_tensor_free(x);
  lam_tensor_free(b);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- layers ------------------------------------------------------------------------------- */

static void bn_three_steps(lam_dtype dt) {
  lam_ctx *ctx = tu_ctx();
  tu_golden *gold = tu_golden_load("norm_golden.safetensors");
  tu_mark m = tu_mark_now(ctx);
  lam_layer *bn = lam_nn_batch_norm(3, NULL);
  lam_vars *v = NULL;
  cr_assert_eq(lam_layer_init(bn, ctx, lam_rng_key_make(1), dt, &v), LAM_OK, "%s", lam_last_error());
  int64_t C = 3, shape[4] = {2, 3, 4, 5};
  lam_tensor *w = from_golden(ctx, dt, 1, &C, tu_golden_values(gold, "bn3.weight"));
  lam_tensor *b = from_golden(ctx, dt, 1, &C, tu_golden_values(gold, "bn3.bias"));
  cr_assert_eq(lam_ptree_set(lam_vars_params(v), "weight", w), LAM_OK);
  cr_assert_eq(lam_ptree_set(lam_vars_params(v), "bias", b), LAM_OK);
  const double *xs[4] = {tu_golden_values(gold, "bn3.x0"), tu_golden_values(gold, "bn3.x1"),
                         tu_golden_values(gold, "bn3.x2"), tu_golden_values(gold, "bn3.x3")};
  lam_tensor *first_state = lam_tensor_retain(lam_ptree_get(lam_vars_state(v), "running_mean"));
  for (int i = 0; i < 3; i++) {
    lam_tensor *x = from_golden(ctx, dt, 4, shape, xs[i]);
    lam_tensor_free(tu_apply(bn, v, x, true));
    lam_tensor_free(x);
  }
  double tol = dt == LAM_F64 ? 1e-12 : 1e-5;
  lam_ptree *st = lam_vars_state(v);
  tu_assert_tensor_close(lam_ptree_get(st, "running_mean"), tu_golden_values(gold, "bn3.running_mean"), 3,
                         tol, tol, "running_mean");
  tu_assert_tensor_close(lam_ptree_get(st, "running_var"), tu_golden_values(gold, "bn3.running_var"), 3,
                         tol, tol, "running_var");
  lam_tensor *nbt = lam_ptree_get(st, "num_batches_tracked");
  cr_assert_eq(lam_tensor_dtype(nbt), LAM_I32);
  cr_assert_eq(lam_tensor_ndim(nbt), 0);
  double nb = 0;
  cr_assert_eq(lam_tensor_item(nbt, &nb), LAM_OK);
  cr_assert_eq((int)nb, (int)tu_golden_values(gold, "bn3.num_batches_tracked")[0]);
  /* the state leaves were replaced, the old tensor untouched (zeros) */
  cr_assert_neq(lam_ptree_get(st, "running_mean"), first_state);
  double *z = tu_to_f64(first_state);
  cr_assert(z[0] == 0 && z[1] == 0 && z[2] == 0);
  free(z);
  lam_tensor_free(first_state);
  /* evaluation uses the running statistics and leaves them alone */
  lam_tensor *rm_before = lam_ptree_get(st, "running_mean");
  lam_tensor *x3 = from_golden(ctx, dt, 4, shape, xs[3]);
  lam_tensor *y = tu_apply(bn, v, x3, false);
  tu_assert_tensor_close(y, tu_golden_values(gold, "bn3.y"), 120, dt == LAM_F64 ? 1e-10 : 2e-5, 2e-5,
                         "eval output");
  cr_assert_eq(lam_ptree_get(st, "running_mean"), rm_before);
  lam_tensor_free(y);
  lam_tensor_free(x3);
  lam_tensor_free(w);
  lam_tensor_free(b);
  lam_vars_free(v);
  lam_layer_free(bn);
  tu_assert_no_leak(ctx, m);
  tu_golden_free(gold);
  lam_ctx_free(ctx);
}

Test(norm_layers, batch_norm_three_steps_match_pytorch_f64) { bn_three_steps(LAM_F64); }
Test(norm_layers, batch_norm_three_steps_match_pytorch_f32) { bn_three_steps(LAM_F32); }

static void assert_leaf(lam_ptree *t, const char *path, int ndim, const int64_t *shape, double fill) {
  lam_tensor *l = lam_ptree_get(t, path);
  cr_assert(l, "missing leaf %s", path);
  cr_assert_eq(lam_tensor_ndim(l), ndim, "%s rank", path);
  for (int i = 0; i < ndim; i++) cr_assert_eq(lam_tensor_shape(l)[i], shape[i], "%s dim %d", path, i);
  if (isnan(fill)) return;
  double *v = tu_to_f64(l);
  for (int64_t i = 0; i < lam_tensor_numel(l); i++) cr_assert(v[i] == fill, "%s[%lld] = %g", path, (long long)i, v[i]);
  free(v);
}

Test(norm_layers, params_and_state_names) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  lam_rng_key key = lam_rng_key_make(3);
  int64_t ns[2] = {4, 5}, C = 6;
  lam_layer_norm_opts nob = {.no_bias = true};
  lam_layer_norm_opts noaff = {.no_affine = true};
  lam_instance_norm_opts itrack = {.affine = true, .track_running_stats = true};
  struct {
    lam_layer *l;
    int nparams, nstate;
  } cases[] = {
      {lam_nn_layer_norm(2, ns, NULL), 2, 0},  {lam_nn_layer_norm(2, ns, &nob), 1, 0},
      {lam_nn_layer_norm(2, ns, &noaff), 0, 0}, {lam_nn_rms_norm(2, ns, NULL), 1, 0},
      {lam_nn_batch_norm(C, NULL), 2, 3},      {lam_nn_group_norm(3, C, NULL), 2, 0},
      {lam_nn_instance_norm(C, NULL), 0, 0},   {lam_nn_instance_norm(C, &itrack), 2, 3},
      {lam_nn_layer_scale(C, NULL), 1, 0},
      {lam_nn_channel_layer_norm(C, &(lam_layer_norm_opts){.activation = lam_nn_relu()}), 2, 0},
      {lam_nn_layer_norm(2, ns, &(lam_layer_norm_opts){.activation = lam_nn_relu()}), 2, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cr_assert(cases[i].l, "case %zu: %s", i, lam_last_error());
    lam_vars *v = NULL;
    cr_assert_eq(lam_layer_init(cases[i].l, ctx, key, LAM_F32, &v), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_ptree_leaf_count(lam_vars_params(v)), cases[i].nparams, "case %zu (%s) params",
                 i, lam_layer_name(cases[i].l));
    cr_assert_eq(lam_ptree_leaf_count(lam_vars_state(v)), cases[i].nstate, "case %zu state", i);
    lam_ptree *p = lam_vars_params(v), *s = lam_vars_state(v);
    if (i <= 1) assert_leaf(p, "weight", 2, ns, 1.0);
    if (i == 0) assert_leaf(p, "bias", 2, ns, 0.0);
    if (i == 3) assert_leaf(p, "weight", 2, ns, 1.0);
    if (i == 4 || i == 5 || i == 7 || i == 9) {
      assert_leaf(p, "weight", 1, &C, 1.0);
      assert_leaf(p, "bias", 1, &C, 0.0);
    }
    if (i == 4 || i == 7) {
      assert_leaf(s, "running_mean", 1, &C, 0.0);
      assert_leaf(s, "running_var", 1, &C, 1.0);
      assert_leaf(s, "num_batches_tracked", 0, NULL, 0.0);
    }
    if (i == 8) assert_leaf(p, "gamma", 1, &C, (float)1e-5);
    lam_vars_free(v);
    lam_layer_free(cases[i].l);
  }
  /* LayerScale with lambda <= 0 is the identity (Metalhead): LAM_ZERO or negative */
  lam_layer *id = lam_nn_layer_scale(C, &(lam_layer_scale_opts){.lambda = LAM_ZERO});
  cr_assert_str_eq(lam_layer_name(id), "identity");
  lam_layer_free(id);
  id = lam_nn_layer_scale(C, &(lam_layer_scale_opts){.lambda = -1});
  cr_assert_str_eq(lam_layer_name(id), "identity");
  lam_layer_free(id);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* Each layer's output against its functional op (and activations). */
Test(norm_layers, layers_match_functional) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(11);
  tu_mark m = tu_mark_now(ctx);
  int64_t shape[4] = {2, 6, 3, 5}, C = 6, last = 5;
  lam_tensor *x = tu_rand_f32(ctx, &r, 4, shape, -2, 2);
  lam_rng_key key = lam_rng_key_make(4);
  lam_layer_norm_opts eps6 = {.eps = 1e-6, .activation = lam_nn_gelu()};
  lam_layer *layers[] = {
      lam_nn_layer_norm(1, &last, NULL),
      lam_nn_rms_norm(1, &last, NULL),
      lam_nn_group_norm(2, C, NULL),
      lam_nn_layer_norm(1, &last, &(lam_layer_norm_opts){.activation = lam_nn_relu()}),
      lam_nn_channel_layer_norm(C, &eps6),
      lam_nn_layer_scale(last, &(lam_layer_scale_opts){.lambda = 0.5}),
      lam_nn_instance_norm(C, NULL),
  };
  for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++) {
    cr_assert(layers[i], "%s", lam_last_error());
    lam_vars *v = NULL;
    cr_assert_eq(lam_layer_init(layers[i], ctx, key, LAM_F32, &v), LAM_OK, "%s", lam_last_error());
    /* non-trivial params so their placement matters */
    lam_ptree *p = lam_vars_params(v);
    for (int k = 0; k < lam_ptree_leaf_count(p); k++) {
      const char *path;
      lam_tensor *t;
      lam_ptree_leaf(p, k, &path, &t);
      lam_tensor *nt = tu_rand_f32(ctx, &r, lam_tensor_ndim(t), lam_tensor_shape(t), 0.5, 1.5);
      lam_ptree_set(p, path, nt);
      lam_tensor_free(nt);
    }
    lam_tensor *y = tu_apply(layers[i], v, x, true);
    lam_tensor *w = lam_ptree_get(p, "weight"), *b = lam_ptree_get(p, "bias");
    lam_tensor *want = NULL, *t = NULL;
    switch (i) {
      case 0: want = lam_layer_norm(x, 1, w, b, 1e-5); break;
      case 1: want = lam_rms_norm(x, 1, w, FLT_EPSILON); break;
      case 2: want = lam_group_norm(x, 2, w, b, 1e-5); break;
      case 3: t = lam_layer_norm(x, 1, w, b, 1e-5); want = lam_relu(t); break;
      case 4: t = lam_channel_layer_norm(x, w, b, 1e-6); want = lam_gelu(t); break;
      case 5: want = lam_mul(x, lam_ptree_get(p, "gamma")); break;
      default: want = lam_instance_norm(x, NULL, NULL, NULL, NULL, true, 0.1, 1e-5, NULL, NULL); break;
    }
    double *wv = tu_to_f64(want);
    tu_assert_tensor_close(y, wv, lam_tensor_numel(x), 1e-6, 1e-6, lam_layer_name(layers[i]));
    free(wv);
    lam_tensor_free(t);
    lam_tensor_free(want);
    lam_tensor_free(y);
    lam_vars_free(v);
    lam_layer_free(layers[i]);
  }
  lam_tensor_free(x);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* Instance norm with running stats: training updates them (golden-checked in
 * the functional test), evaluation normalizes with them; batch norm without
 * tracking uses batch statistics in evaluation; cumulative averages. */
Test(norm_layers, running_stat_modes) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(12);
  tu_mark m = tu_mark_now(ctx);
  int64_t shape[3] = {4, 3, 6}, C = 3;
  lam_tensor *x1 = tu_rand_f64(ctx, &r, 3, shape, -1, 3), *x2 = tu_rand_f64(ctx, &r, 3, shape, 0, 2);
  lam_rng_key key = lam_rng_key_make(5);
  /* instance norm, tracking */
  lam_instance_norm_opts io = lam_instance_norm_defaults();
  io.track_running_stats = true;
  lam_layer *in = lam_nn_instance_norm(C, &io);
  lam_vars *v = NULL;
  cr_assert_eq(lam_layer_init(in, ctx, key, LAM_F64, &v), LAM_OK);
  lam_tensor_free(tu_apply(in, v, x1, true));
  lam_tensor *rm = lam_ptree_get(lam_vars_state(v), "running_mean");
  lam_tensor *rv = lam_ptree_get(lam_vars_state(v), "running_var");
  lam_tensor *want = lam_instance_norm(x2, rm, rv, NULL, NULL, false, 0.1, 1e-5, NULL, NULL);
  lam_tensor *got = tu_apply(in, v, x2, false);
  double *wv = tu_to_f64(want);
  tu_assert_tensor_close(got, wv, 72, 1e-12, 1e-12, "instance eval");
  free(wv);
  lam_tensor_free(want);
  lam_tensor_free(got);
  lam_vars_free(v);
  lam_layer_free(in);
  /* batch norm without tracking: batch stats in evaluation too */
  lam_batch_norm_opts bo = lam_batch_norm_defaults();
  bo.no_running_stats = true;
  lam_layer *bn = lam_nn_batch_norm(C, &bo);
  cr_assert_eq(lam_layer_init(bn, ctx, key, LAM_F64, &v), LAM_OK);
  cr_assert_eq(lam_ptree_leaf_count(lam_vars_state(v)), 0);
  got = tu_apply(bn, v, x1, false);
  want = lam_batch_norm(x1, NULL, NULL, NULL, NULL, true, 0.1, 1e-5, NULL, NULL);
  wv = tu_to_f64(want);
  tu_assert_tensor_close(got, wv, 72, 1e-12, 1e-12, "batch norm untracked eval");
  free(wv);
  lam_tensor_free(want);
  lam_tensor_free(got);
  lam_vars_free(v);
  lam_layer_free(bn);
  /* cumulative moving average (momentum None): the plain mean of batch means */
  bo = lam_batch_norm_defaults();
  bo.cumulative = true;
  bn = lam_nn_batch_norm(C, &bo);
  cr_assert_eq(lam_layer_init(bn, ctx, key, LAM_F64, &v), LAM_OK);
  lam_tensor_free(tu_apply(bn, v, x1, true));
  lam_tensor_free(tu_apply(bn, v, x2, true));
  lam_tensor *m1 = lam_mean(x1, 2, (int[]){0, 2}, 0), *m2 = lam_mean(x2, 2, (int[]){0, 2}, 0);
  double *a = tu_to_f64(m1), *b = tu_to_f64(m2), avg[3];
  for (int c = 0; c < 3; c++) avg[c] = 0.5 * (a[c] + b[c]);
  tu_assert_tensor_close(lam_ptree_get(lam_vars_state(v), "running_mean"), avg, 3, 1e-12, 1e-12, "cumulative mean");
  free(a);
  free(b);
  lam_tensor_free(m1);
  lam_tensor_free(m2);
  lam_vars_free(v);
  lam_layer_free(bn);
  lam_tensor_free(x1);
  lam_tensor_free(x2);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* Parameter gradients through a layer with lam_value_and_grad. */
typedef struct {
  lam_layer *l;
  lam_ptree *state;
  lam_tensor *x, *dy;
} lossctx;

static lam_tensor *layer_loss(lam_ptree *params, void *user) {
  lossctx *c = user;
  lam_apply_opts o = {true, NULL, NULL, NULL};
  lam_tensor *y = NULL;
  if (lam_layer_apply_with(c->l, params, c->state, c->x, &o, &y) != LAM_OK) return NULL;
  lam_tensor *p = lam_mul(y, c->dy);
  lam_tensor *s = lam_sum(p, 0, NULL, 0);
  lam_tensor_free(y);
  lam_tensor_free(p);
  return s;
}

Test(norm_layers, batch_norm_param_grads_match_golden) {
  lam_ctx *ctx = tu_ctx();
  tu_golden *gold = tu_golden_load("norm_golden.safetensors");
  tu_mark m = tu_mark_now(ctx);
  norm_golden gc;
  const norm_golden *g = NULL;
  for (int c = 0; c < tu_golden_count(gold, "norm.cases") && !g; c++) {
    gc = norm_golden_case(gold, c);
    if (gc.op == NG_BATCH_TRAIN && gc.ndim == 4 && gc.w) g = &gc;
  }
  cr_assert(g);
  int64_t C = g->shape[1];
  lam_batch_norm_opts o = lam_batch_norm_defaults();
  o.momentum = g->momentum;
  lam_layer *bn = lam_nn_batch_norm(C, &o);
  lam_vars *v = NULL;
  cr_assert_eq(lam_layer_init(bn, ctx, lam_rng_key_make(1), LAM_F64, &v), LAM_OK);
  lam_tensor *w = from_golden(ctx, LAM_F64, 1, &C, g->w), *b = from_golden(ctx, LAM_F64, 1, &C, g->b);
  lam_tensor *rm = from_golden(ctx, LAM_F64, 1, &C, g->rm), *rv = from_golden(ctx, LAM_F64, 1, &C, g->rv);
  lam_ptree_set(lam_vars_params(v), "weight", w);
  lam_ptree_set(lam_vars_params(v), "bias", b);
  lam_ptree_set(lam_vars_state(v), "running_mean", rm);
  lam_ptree_set(lam_vars_state(v), "running_var", rv);
  lossctx c = {bn, lam_vars_state(v), from_golden(ctx, LAM_F64, g->ndim, g->shape, g->x),
               from_golden(ctx, LAM_F64, g->ndim, g->shape, g->dy)};
  lam_tensor *loss = NULL;
  lam_ptree *grads = NULL;
  cr_assert_eq(lam_value_and_grad(ctx, layer_loss, &c, lam_vars_params(v), &loss, &grads), LAM_OK,
               "%s", lam_last_error());
  tu_assert_tensor_close(lam_ptree_get(grads, "weight"), g->dw, C, 1e-9, 1e-9, "dweight");
  tu_assert_tensor_close(lam_ptree_get(grads, "bias"), g->db, C, 1e-9, 1e-9, "dbias");
  tu_assert_tensor_close(lam_ptree_get(lam_vars_state(v), "running_mean"), g->nrm, C, 1e-12, 1e-12, "rm");
  tu_assert_tensor_close(lam_ptree_get(lam_vars_state(v), "running_var"), g->nrv, C, 1e-12, 1e-12, "rv");
  lam_tensor_free(loss);
  lam_ptree_free(grads);
  lam_tensor_free(c.x);
  lam_tensor_free(c.dy);
  lam_tensor_free(w);
  lam_tensor_free(b);
  lam_tensor_free(rm);
  lam_tensor_free(rv);
  lam_vars_free(v);
  lam_layer_free(bn);
  tu_assert_no_leak(ctx, m);
  tu_golden_free(gold);
  lam_ctx_free(ctx);
}

/* ---- bad input ------------------------------------------------------------------------------ */

Test(norm, bad_input) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(13);
  int64_t shape[3] = {2, 4, 5}, C = 4, C5 = 5, one[2] = {1, 4};
  lam_tensor *x = tu_rand_f32(ctx, &r, 3, shape, -1, 1);
  lam_tensor *xd = tu_rand_f64(ctx, &r, 3, shape, -1, 1);
  lam_tensor *xi = lam_tensor_zeros(ctx, LAM_I32, 3, shape);
  lam_tensor *x2 = tu_rand_f32(ctx, &r, 2, one, -1, 1);
  lam_tensor *x1 = tu_rand_f32(ctx, &r, 1, &C, -1, 1);
  lam_tensor *w4 = lam_tensor_full(ctx, LAM_F32, 1, &C, 1), *w5 = lam_tensor_full(ctx, LAM_F32, 1, &C5, 1);
  lam_tensor *w4d = lam_tensor_full(ctx, LAM_F64, 1, &C, 1);
  lam_tensor *x21 = tu_rand_f32(ctx, &r, 3, (int64_t[]){2, 4, 1}, -1, 1);
  tu_mark m = tu_mark_now(ctx);
  lam_tensor *nm = NULL, *nv = NULL;
  /* NULL inputs (errors cleared first: a NULL after a failure keeps that message) */
  const char *fns[] = {"lam_layer_norm", "lam_rms_norm", "lam_group_norm",
                       "lam_channel_layer_norm", "lam_batch_norm",
                       "lam_instance_norm"};
  for (int i = 0; i < 6; i++) {
    lam_error_clear();
    lam_tensor *t = i == 0   ? lam_layer_norm(NULL, 1, NULL, NULL, 1e-5)
                    : i == 1 ? lam_rms_norm(NULL, 1, NULL, 1e-5)
                    : i == 2 ? lam_group_norm(NULL, 1, NULL, NULL, 1e-5)
                    : i == 3 ? lam_channel_layer_norm(NULL, NULL, NULL, 1e-5)
                    : i == 4 ? lam_batch_norm(NULL, NULL, NULL, NULL, NULL, true, 0.1, 1e-5, &nm, &nv)
                             : lam_instance_norm(NULL, NULL, NULL, NULL, NULL, true, 0.1, 1e-5, &nm, &nv);
    tu_assert_fails(t, LAM_ERR_NULL, fns[i]);
    tu_assert_fails(t, LAM_ERR_NULL, "x is NULL");
  }
  /* layer / rms */
  tu_assert_fails(lam_layer_norm(xi, 1, NULL, NULL, 1e-5), LAM_ERR_DTYPE, "need f32, f64 or f16");
  tu_assert_fails(lam_layer_norm(x, 0, NULL, NULL, 1e-5), LAM_ERR_INVALID_ARGUMENT, "normalized_ndim 0");
  tu_assert_fails(lam_layer_norm(x, 4, NULL, NULL, 1e-5), LAM_ERR_INVALID_ARGUMENT, "outside 1..3");
  tu_assert_fails(lam_layer_norm(x, 1, w4, NULL, 1e-5), LAM_ERR_SHAPE, "weight is [4], need [5]");
  tu_assert_fails(lam_layer_norm(x, 1, NULL, w4, 1e-5), LAM_ERR_SHAPE, "bias is [4]");
  tu_assert_fails(lam_layer_norm(x, 1, w5, NULL, -1), LAM_ERR_INVALID_ARGUMENT, "eps -1");
  tu_assert_fails(lam_layer_norm(x, 1, w5, NULL, NAN), LAM_ERR_INVALID_ARGUMENT, "eps");
  tu_assert_fails(lam_rms_norm(xd, 1, w5, 1e-5), LAM_ERR_DTYPE, "weight is f32 but x is f64");
  /* group / channel layer norm */
  tu_assert_fails(lam_group_norm(x, 3, NULL, NULL, 1e-5), LAM_ERR_INVALID_ARGUMENT, "groups 3 must be >= 1 and divide the 4 channels");
  tu_assert_fails(lam_group_norm(x, 0, NULL, NULL, 1e-5), LAM_ERR_INVALID_ARGUMENT, "groups 0");
  tu_assert_fails(lam_group_norm(x1, 1, NULL, NULL, 1e-5), LAM_ERR_SHAPE, "need rank >= 2");
  tu_assert_fails(lam_group_norm(x, 2, w5, NULL, 1e-5), LAM_ERR_SHAPE, "weight is [5], need [4]");
  tu_assert_fails(lam_channel_layer_norm(x, w4, w5, 1e-5), LAM_ERR_SHAPE, "bias is [5], need [4]");
  tu_assert_fails(lam_channel_layer_norm(x, w4d, NULL, 1e-5), LAM_ERR_DTYPE, "weight is f64");
  /* batch norm */
  tu_assert_fails(lam_batch_norm(x2, NULL, NULL, NULL, NULL, true, 0.1, 1e-5, &nm, &nv),
                  LAM_ERR_SHAPE, "more than 1 value per channel");
  cr_assert(!nm && !nv);
  tu_assert_fails(lam_batch_norm(x, w4, NULL, NULL, NULL, true, 0.1, 1e-5, &nm, &nv),
                  LAM_ERR_NULL, "running_var is NULL");
  tu_assert_fails(lam_batch_norm(x, w5, w5, NULL, NULL, true, 0.1, 1e-5, &nm, &nv),
                  LAM_ERR_SHAPE, "running_mean is [5], need [4]");
  tu_assert_fails(lam_batch_norm(x, NULL, NULL, NULL, NULL, false, 0.1, 1e-5, NULL, NULL),
                  LAM_ERR_NULL, "evaluation needs running_mean");
  tu_assert_fails(lam_batch_norm(x, w4, w4, NULL, NULL, true, 1.5, 1e-5, NULL, NULL),
                  LAM_ERR_INVALID_ARGUMENT, "momentum 1.5");
  tu_assert_fails(lam_batch_norm(x1, NULL, NULL, NULL, NULL, true, 0.1, 1e-5, NULL, NULL),
                  LAM_ERR_SHAPE, "rank >= 2");
  tu_assert_fails(lam_batch_norm(x, NULL, NULL, w5, NULL, true, 0.1, 1e-5, NULL, NULL),
                  LAM_ERR_SHAPE, "weight is [5], need [4]");
  /* instance norm */
  tu_assert_fails(lam_instance_norm(x2, NULL, NULL, NULL, NULL, true, 0.1, 1e-5, NULL, NULL),
                  LAM_ERR_SHAPE, "rank >= 3");
  tu_assert_fails(lam_instance_norm(x21, NULL, NULL, NULL, NULL, true, 0.1, 1e-5, NULL, NULL),
                  LAM_ERR_SHAPE, "more than 1 spatial element");
  tu_assert_fails(lam_instance_norm(x, NULL, NULL, NULL, NULL, false, 0.1, 1e-5, NULL, NULL),
                  LAM_ERR_NULL, "use_input_stats false needs");
  /* a failed op up the chain keeps its message */
  lam_tensor *bad = lam_group_norm(x, 3, NULL, NULL, 1e-5);
  tu_assert_fails(lam_layer_norm(bad, 1, NULL, NULL, 1e-5), LAM_ERR_INVALID_ARGUMENT, "lam_group_norm");
  tu_assert_no_leak(ctx, m);
  lam_tensor_free(x);
  lam_tensor_free(xd);
  lam_tensor_free(xi);
  lam_tensor_free(x2);
  lam_tensor_free(x1);
  lam_tensor_free(w4);
  lam_tensor_free(w5);
  lam_tensor_free(w4d);
  lam_tensor_free(x21);
  lam_ctx_free(ctx);
}

Test(norm_layers, bad_input) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(14);
  int64_t ns[1] = {5}, bad0[1] = {0};
  lam_batch_norm_opts o = lam_batch_norm_defaults();
  /* constructors */
  tu_assert_fails(lam_nn_layer_norm(0, ns, NULL), LAM_ERR_INVALID_ARGUMENT, "lam_nn_layer_norm: ndim 0");
  tu_assert_fails(lam_nn_layer_norm(1, NULL, NULL), LAM_ERR_NULL, "shape is NULL");
  tu_assert_fails(lam_nn_rms_norm(1, bad0, NULL), LAM_ERR_SHAPE, "dims must be >= 1");
  tu_assert_fails(lam_nn_batch_norm(0, NULL), LAM_ERR_INVALID_ARGUMENT, "num_features 0");
  tu_assert_fails(lam_nn_group_norm(4, 6, NULL), LAM_ERR_INVALID_ARGUMENT, "num_groups 4 does not divide num_channels 6");
  tu_assert_fails(lam_nn_group_norm(0, 6, NULL), LAM_ERR_INVALID_ARGUMENT, "num_groups 0");
  o.momentum = 2;
  tu_assert_fails(lam_nn_batch_norm(3, &o), LAM_ERR_INVALID_ARGUMENT, "momentum 2");
  tu_assert_fails(lam_nn_instance_norm(3, &(lam_instance_norm_opts){.eps = -1}), LAM_ERR_INVALID_ARGUMENT,
                  "eps -1");
  tu_assert_fails(lam_nn_layer_scale(0, NULL), LAM_ERR_INVALID_ARGUMENT, "planes 0");
  tu_assert_fails(lam_nn_layer_scale(3, &(lam_layer_scale_opts){.lambda = NAN}), LAM_ERR_INVALID_ARGUMENT,
                  "lambda");
  tu_assert_fails(lam_nn_channel_layer_norm(0, &(lam_layer_norm_opts){.activation = lam_nn_relu()}),
                  LAM_ERR_INVALID_ARGUMENT, "channels 0");
  /* apply: channel and shape mismatches */
  int64_t shape[3] = {2, 4, 5};
  lam_tensor *x = tu_rand_f32(ctx, &r, 3, shape, -1, 1);
  lam_tensor *x2 = tu_rand_f32(ctx, &r, 2, (int64_t[]){2, 4}, -1, 1);
  lam_tensor *xd = tu_rand_f64(ctx, &r, 3, shape, -1, 1);
  struct {
    lam_layer *l;
    lam_tensor *x;
    lam_status st;
    const char *msg;
  } cases[] = {
      {lam_nn_batch_norm(3, NULL), x, LAM_ERR_SHAPE, "batch_norm(3) expects [N, 3, ...]"},
      {lam_nn_group_norm(2, 6, NULL), x, LAM_ERR_SHAPE, "group_norm(6) expects [N, 6, ...]"},
      {lam_nn_instance_norm(4, NULL), x2, LAM_ERR_SHAPE, "rank >= 3"},
      {lam_nn_layer_norm(1, (int64_t[]){4}, NULL), x, LAM_ERR_SHAPE, "expects [..., [4]]"},
      {lam_nn_channel_layer_norm(5, NULL), x, LAM_ERR_SHAPE, "channel_layer_norm(5)"},
      {lam_nn_layer_scale(4, &(lam_layer_scale_opts){.lambda = 0.1}), x, LAM_ERR_SHAPE,
       "layer_scale expects [..., 4]"},
      {lam_nn_layer_norm(1, ns, NULL), xd, LAM_ERR_DTYPE, "weight is f32 but x is f64"},
  };
  tu_mark m = tu_mark_now(ctx);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    lam_vars *v = NULL;
    cr_assert(cases[i].l, "%s", lam_last_error());
    cr_assert_eq(lam_layer_init(cases[i].l, ctx, lam_rng_key_make(1), LAM_F32, &v), LAM_OK);
    lam_tensor *y = NULL;
    lam_apply_opts ao = {true, NULL, NULL, NULL};
    tu_assert_status(lam_layer_apply(cases[i].l, v, cases[i].x, &ao, &y), cases[i].st, cases[i].msg);
    cr_assert_null(y);
    lam_vars_free(v);
    lam_layer_free(cases[i].l);
  }
  tu_assert_no_leak(ctx, m);
  lam_tensor_free(x);
  lam_tensor_free(x2);
  lam_tensor_free(xd);
  lam_ctx_free(ctx);
}
