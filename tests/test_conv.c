/* test_conv.c (src/ops/conv.c, conv_transpose.c, src/nn/conv_layers.c): conv1d/2d/3d and conv_transpose1d/2d/3d against plain C
 * references on random configurations (strides, dilations, padding modes,
 * groups incl. depthwise, odd sizes 1/5/17/31, non-square kernels) on both
 * execution paths (im2col + GEMM and the direct kernels) and with small
 * batch chunks, with every padding_mode and transposed output_size; PyTorch
 * golden outputs and gradients (tests/data/conv_golden.safetensors from
 * tools/gen_conv_golden.py, conv_modes_golden.safetensors from
 * tools/gen_conv_modes_golden.py); finite-difference gradient checks; bad
 * configurations; and the conv layers (parameter names, shapes, defaults). */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* ---- helpers -------------------------------------------------------------- */

/* ---- the C reference -------------------------------------------------------- */

/* A convolution case. Spatial arrays are indexed by spatial dim (nsp used). */
typedef struct ccase {
  int nsp, N, C, O, G;
  int in[3], k[3], s[3], d[3];
  lam_conv_padding mode;
  int pad[3][2];
  int bias;
  lam_pad_mode pm; /* padding_mode */
} ccase;

/* The case as 3-D (leading dims of size 1), with its padding and output size
 * worked out independently of the library. */
typedef struct geo {
  int in[3], k[3], s[3], d[3], pb[3], pa[3], out[3];
} geo;

/* Where padded coordinate c (minus the padding before) of a dim of size n
 * reads from under padding_mode pm; -1: a zero. */
static int pad_src(int c, int n, lam_pad_mode pm) {
  if (c >= 0 && c < n) return c;
  switch (pm) {
    case LAM_PAD_REFLECT: return c < 0 ? -c : 2 * (n - 1) - c;
    case LAM_PAD_REPLICATE: return c < 0 ? 0 : n - 1;
    case LAM_PAD_CIRCULAR: return c < 0 ? c + n : c - n;
    default: return -1;
  }
}

static int geo_make(const ccase *c, geo *g) {
  for (int i = 0; i < 3; i++)
    g->in[i] = g->k[i] = g->s[i] = g->d[i] = g->out[i] = 1, g->pb[i] = g->pa[i] = 0;
  for (int i = 0; i < c->nsp; i++) {
    int d = 3 - c->nsp + i;
    int eff = c->d[i] * (c->k[i] - 1) + 1, before = 0, after = 0;
    if (c->mode == LAM_PADDING_SAME) {
      int out = (c->in[i] + c->s[i] - 1) / c->s[i];
      int total = (out - 1) * c->s[i] + eff - c->in[i];
      if (total < 0) total = 0;
      before = total / 2, after = total - before;
    } else if (c->mode == LAM_PADDING_CAUSAL) {
      before = eff - 1;
    } else if (c->mode == LAM_PADDING_EXPLICIT) {
      before = c->pad[i][0], after = c->pad[i][1];
    }
    int padded = c->in[i] + before + after;
    if (padded < eff) return 0;
    if (c->pm == LAM_PAD_REFLECT && (before >= c->in[i] || after >= c->in[i])) return 0;
    if (c->pm == LAM_PAD_CIRCULAR && (before > c->in[i] || after > c->in[i])) return 0;
    g->pa[d] = after;
    g->in[d] = c->in[i], g->k[d] = c->k[i], g->s[d] = c->s[i], g->d[d] = c->d[i];
    g->pb[d] = before, g->out[d] = (padded - eff) / c->s[i] + 1;
  }
  return 1;
}

static void ref_conv(const ccase *c, const geo *g, const double *x, const double *w,
                     const double *b, double *y) {
  const int Cg = c->C / c->G, Og = c->O / c->G;
  const int ID = g->in[0], IH = g->in[1], IW = g->in[2];
  const int OD = g->out[0], OH = g->out[1], OW = g->out[2];
  const int KD = g->k[0], KH = g->k[1], KW = g->k[2];
  for (int n = 0; n < c->N; n++)
    for (int o = 0; o < c->O; o++)
      for (int od = 0; od < OD; od++)
        for (int oh = 0; oh < OH; oh++)
          for (int ow = 0; ow < OW; ow++) {
            double acc = b ? b[o] : 0;
            for (int cg = 0; cg < Cg; cg++) {
              int ci = (o / Og) * Cg + cg;
              for (int kd = 0; kd < KD; kd++)
                for (int kh = 0; kh < KH; kh++)
                  for (int kw = 0; kw < KW; kw++) {
                    int id = od * g->s[0] - g->pb[0] + kd * g->d[0];
                    int ih = oh * g->s[1] - g->pb[1] + kh * g->d[1];
                    int iw = ow * g->s[2] - g->pb[2] + kw * g->d[2];
                    id = pad_src(id, ID, c->pm), ih = pad_src(ih, IH, c->pm);
                    iw = pad_src(iw, IW, c->pm);
                    if (id < 0 || ih < 0 || iw < 0) continue;
                    acc += x[(((n * c->C + ci) * ID + id) * IH + ih) * IW + iw] *
                           w[(((o * Cg + cg) * KD + kd) * KH + kh) * KW + kw];
                  }
            }
            y[(((n * c->O + o) * OD + od) * OH + oh) * OW + ow] = acc;
          }
}

static void shapes(const ccase *c, const geo *g, int64_t *xs, int64_t *ws, int64_t *ys) {
  xs[0] = c->N, xs[1] = c->C, ws[0] = c->O, ws[1] = c->C / c->G, ys[0] = c->N, ys[1] = c->O;
  for (int i = 0; i < c->nsp; i++) {
    int d = 3 - c->nsp + i;
    xs[2 + i] = g->in[d], ws[2 + i] = g->k[d], ys[2 + i] = g->out[d];
  }
}

static lam_conv_opts opts_of(const ccase *c) {
  lam_conv_opts o = lam_conv_defaults();
  for (int i = 0; i < 3; i++) {
    o.stride[i] = c->s[i] ? c->s[i] : 1;
    o.dilation[i] = c->d[i] ? c->d[i] : 1;
    o.pad[i][0] = c->pad[i][0], o.pad[i][1] = c->pad[i][1];
    o.kernel[i] = 0;
  }
  o.padding = c->mode;
  o.padding_mode = c->pm;
  o.groups = c->G;
  return o;
}

static lam_tensor *conv_nd(int nsp, lam_tensor *x, lam_tensor *w, lam_tensor *b,
                           const lam_conv_opts *o) {
  return nsp == 1 ? lam_conv1d(x, w, b, o)
       : nsp == 2 ? lam_conv2d(x, w, b, o)
                  : lam_conv3d(x, w, b, o);
}

/* Runs case c in dtype dt on the device and compares with the reference. */
static void check_case(lam_ctx *ctx, tu_rng *r, const ccase *c, lam_dtype dt, const char *what) {
  geo g;
  cr_assert(geo_make(c, &g), "%s: bad test case", what);
  int64_t xs[5], ws[5], ys[5];
  shapes(c, &g, xs, ws, ys);
  const int nd = c->nsp + 2;
  int64_t nx = tu_numel(nd, xs), nw = tu_numel(nd, ws), ny = tu_numel(nd, ys);
  double *x = tu_rand_vec(r, nx, -1, 1), *w = tu_rand_vec(r, nw, -1, 1);
  double *b = tu_rand_vec(r, c->O, -1, 1), *want = malloc((size_t)ny * 8);
  ref_conv(c, &g, x, w, c->bias ? b : NULL, want);
  lam_tensor *tx = tu_from_f64(ctx, dt, nd, xs, x), *tw = tu_from_f64(ctx, dt, nd, ws, w);
  lam_tensor *tb = c->bias ? tu_from_f64(ctx, dt, 1, (int64_t[]){c->O}, b) : NULL;
  lam_conv_opts o = opts_of(c);
  lam_tensor *y = conv_nd(c->nsp, tx, tw, tb, &o);
  cr_assert(y, "%s: %s", what, lam_last_error());
  cr_assert_eq(lam_tensor_ndim(y), nd);
  for (int i = 0; i < nd; i++)
    cr_assert_eq(lam_tensor_shape(y)[i], ys[i], "%s: dim %d is %lld, want %lld", what, i,
                 (long long)lam_tensor_shape(y)[i], (long long)ys[i]);
  int64_t kred = (c->C / c->G) * tu_numel(c->nsp, ws + 2);
  double tol = dt == LAM_F64 ? 1e-12 * kred : 2e-6 * kred;
  double *got = tu_to_f64(y);
  tu_assert_close_f64(got, want, ny, tol, 1e-5, what);
  free(got);
  free(x), free(w), free(b), free(want);
  lam_tensor_free(y), lam_tensor_free(tx), lam_tensor_free(tw), lam_tensor_free(tb);
}

/* A random valid case with spatial sizes drawn from {1, 5, 17, 31} and small
 * others. */
static ccase random_case(tu_rng *r, int nsp) {
  static const int sizes[] = {1, 5, 17, 31, 2, 3, 8};
  for (;;) {
    ccase c;
    memset(&c, 0, sizeof c);
    c.nsp = nsp;
    c.N = (int)tu_randint(r, 1, 4);
    int G = (int)tu_randint(r, 1, 4);
    c.G = G;
    c.C = G * (int)tu_randint(r, 1, 4);
    c.O = G * (int)tu_randint(r, 1, 4);
    if (tu_randint(r, 0, 5) == 0) c.C = c.O = c.G = (int)tu_randint(r, 2, 6); /* depthwise */
    int64_t vol = 1;
    for (int i = 0; i < nsp; i++) {
      c.in[i] = sizes[tu_randint(r, 0, nsp == 3 ? 5 : 7)];
      if (nsp == 3 && c.in[i] > 8) c.in[i] = (int)tu_randint(r, 1, 9);
      c.k[i] = (int)tu_randint(r, 1, nsp == 3 ? 4 : 6);
      c.s[i] = (int)tu_randint(r, 1, 4);
      c.d[i] = (int)tu_randint(r, 1, 3);
      c.pad[i][0] = (int)tu_randint(r, 0, 4);
      c.pad[i][1] = (int)tu_randint(r, 0, 4);
      vol *= c.in[i];
    }
    c.mode = (lam_conv_padding)tu_randint(r, 0, nsp == 1 ? 4 : 4);
    if (c.mode == LAM_PADDING_CAUSAL && nsp != 1) c.mode = LAM_PADDING_EXPLICIT;
    c.bias = (int)tu_randint(r, 0, 2);
    c.pm = (lam_pad_mode)(tu_randint(r, 0, 2) ? 0 : tu_randint(r, 1, 4)); /* half zeros */
    geo g;
    if (vol * c.N * c.C > 20000) continue;
    if (!geo_make(&c, &g)) {
      c.pm = LAM_PAD_CONSTANT; /* a reflect / circular pad past the input: zeros instead */
      if (!geo_make(&c, &g)) continue;
    }
    return c;
  }
}

static const char *const paths[] = {"gemm", "direct"};

static void random_suite(int nsp, int ncases, uint64_t seed) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(seed);
  tu_mark m = tu_mark_now(ctx);
  for (int i = 0; i < ncases; i++) {
    ccase c = random_case(&r, nsp);
    for (int p = 0; p < 2; p++) {
      setenv("LAMINA_CONV_PATH", paths[p], 1);
      for (int dt = 0; dt < 2; dt++) {
        char what[160];
        snprintf(what, sizeof what,
                 "conv%dd case %d (%s, %s): N%d C%d O%d G%d in %d,%d,%d k %d,%d,%d s %d,%d,%d "
                 "d %d,%d,%d mode %d padding_mode %d",
                 nsp, i, paths[p], dt ? "f64" : "f32", c.N, c.C, c.O, c.G, c.in[0], c.in[1],
                 c.in[2], c.k[0], c.k[1], c.k[2], c.s[0], c.s[1], c.s[2], c.d[0], c.d[1], c.d[2],
                 (int)c.mode, (int)c.pm);
        check_case(ctx, &r, &c, dt ? LAM_F64 : LAM_F32, what);
      }
    }
  }
  unsetenv("LAMINA_CONV_PATH");
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

Test(conv, random_1d) { random_suite(1, tu_small() ? 4 : 25, 11); }
Test(conv, random_2d) { random_suite(2, tu_small() ? 4 : 25, 12); }
Test(conv, random_3d) { random_suite(3, tu_small() ? 3 : 12, 13); }
/* The same suites on the plane-wise im2col (im2col_plane), which the default
 * takes only for short rows and many planes (ResNet's late stages). */
static void random_suite_plane(int nsp, int ncases, uint64_t seed) {
  setenv("LAMINA_CONV_IM2COL", "plane", 1);
  random_suite(nsp, ncases, seed);
  unsetenv("LAMINA_CONV_IM2COL");
}
Test(conv, random_2d_im2col_plane) { random_suite_plane(2, tu_small() ? 4 : 25, 12); }
Test(conv, random_3d_im2col_plane) { random_suite_plane(3, tu_small() ? 3 : 12, 13); }

/* Fixed cases that matter: ResNet-style shapes, 1x1 (the no-im2col path),
 * one image vs several, non-square kernels, and batch chunks of 1 and 2. */
Test(conv, fixed_and_chunked) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(5);
  tu_mark m = tu_mark_now(ctx);
  const ccase cases[] = {
      {2, 1, 3, 8, 1, {17, 17}, {7, 7}, {2, 2}, {1, 1}, LAM_PADDING_EXPLICIT, {{3, 3}, {3, 3}}, 0, LAM_PAD_REFLECT},
      {2, 3, 8, 16, 1, {9, 9}, {1, 1}, {1, 1}, {1, 1}, LAM_PADDING_VALID, {{0}}, 1, LAM_PAD_CONSTANT},
      {2, 1, 8, 16, 1, {9, 9}, {1, 1}, {1, 1}, {1, 1}, LAM_PADDING_VALID, {{0}}, 1, LAM_PAD_CONSTANT},
      {2, 1, 8, 12, 2, {9, 9}, {1, 1}, {1, 1}, {1, 1}, LAM_PADDING_VALID, {{0}}, 0, LAM_PAD_CONSTANT},
      {2, 2, 8, 16, 1, {9, 9}, {1, 1}, {2, 2}, {1, 1}, LAM_PADDING_VALID, {{0}}, 1, LAM_PAD_CONSTANT},
      {2, 5, 4, 6, 1, {5, 31}, {1, 5}, {1, 2}, {1, 1}, LAM_PADDING_SAME, {{0}}, 1, LAM_PAD_CIRCULAR},
      {2, 5, 4, 6, 2, {17, 5}, {3, 2}, {2, 1}, {2, 1}, LAM_PADDING_EXPLICIT, {{1, 0}, {0, 2}}, 1, LAM_PAD_REPLICATE},
      {1, 4, 6, 6, 6, {31}, {5}, {1}, {2}, LAM_PADDING_CAUSAL, {{0}}, 1, LAM_PAD_REPLICATE},
      {3, 3, 4, 4, 1, {5, 1, 5}, {3, 1, 2}, {1, 1, 2}, {1, 1, 1}, LAM_PADDING_SAME, {{0}}, 1, LAM_PAD_CIRCULAR},
  };
  const char *chunks[] = {NULL, "1", "2"};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    for (int p = 0; p < 2; p++)
      for (int ch = 0; ch < 3; ch++) {
        setenv("LAMINA_CONV_PATH", paths[p], 1);
        if (chunks[ch]) setenv("LAMINA_CONV_CHUNK", chunks[ch], 1);
        else unsetenv("LAMINA_CONV_CHUNK");
        char what[96];
        snprintf(what, sizeof what, "fixed case %zu (%s, chunk %s)", i, paths[p],
                 chunks[ch] ? chunks[ch] : "auto");
        check_case(ctx, &r, &cases[i], LAM_F32, what);
        check_case(ctx, &r, &cases[i], LAM_F64, what);
      }
  unsetenv("LAMINA_CONV_PATH");
  unsetenv("LAMINA_CONV_CHUNK");
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- transposed convolution --------------------------------------------------- */

typedef struct tcase {
  int nsp, N, C, O, G;
  int in[3], k[3], s[3], p[3], op[3], d[3];
  int bias;
  int by_size; /* give the output size as output_size (output_padding 0) */
} tcase;

static void tshapes(const tcase *c, int64_t *xs, int64_t *ws, int64_t *zs) {
  xs[0] = c->N, xs[1] = c->C, ws[0] = c->C, ws[1] = c->O / c->G, zs[0] = c->N, zs[1] = c->O;
  for (int i = 0; i < c->nsp; i++) {
    xs[2 + i] = c->in[i], ws[2 + i] = c->k[i];
    zs[2 + i] = (c->in[i] - 1) * c->s[i] - 2 * c->p[i] + c->d[i] * (c->k[i] - 1) + c->op[i] + 1;
  }
}

/* Scatter form straight from the definition. */
static void ref_convt(const tcase *c, const double *x, const double *w, const double *b,
                      double *z) {
  int64_t xs[5], ws[5], zs[5];
  tshapes(c, xs, ws, zs);
  int I[3] = {1, 1, 1}, K[3] = {1, 1, 1}, Z[3] = {1, 1, 1}, S[3] = {1, 1, 1}, P[3] = {0}, D[3] = {1, 1, 1};
  for (int i = 0; i < c->nsp; i++) {
    int d = 3 - c->nsp + i;
    I[d] = c->in[i], K[d] = c->k[i], Z[d] = (int)zs[2 + i], S[d] = c->s[i], P[d] = c->p[i], D[d] = c->d[i];
  }
  const int Cg = c->C / c->G, Og = c->O / c->G, zn = Z[0] * Z[1] * Z[2];
  for (int n = 0; n < c->N; n++)
    for (int o = 0; o < c->O; o++)
      for (int e = 0; e < zn; e++) z[(n * c->O + o) * zn + e] = b ? b[o] : 0;
  for (int n = 0; n < c->N; n++)
    for (int ci = 0; ci < c->C; ci++)
      for (int a = 0; a < I[0]; a++)
        for (int bb = 0; bb < I[1]; bb++)
          for (int cc = 0; cc < I[2]; cc++) {
            double xv = x[(((n * c->C + ci) * I[0] + a) * I[1] + bb) * I[2] + cc];
            for (int og = 0; og < Og; og++) {
              int o = (ci / Cg) * Og + og;
              for (int kd = 0; kd < K[0]; kd++)
                for (int kh = 0; kh < K[1]; kh++)
                  for (int kw = 0; kw < K[2]; kw++) {
                    int zd = a * S[0] - P[0] + kd * D[0], zh = bb * S[1] - P[1] + kh * D[1];
                    int zw = cc * S[2] - P[2] + kw * D[2];
                    if (zd < 0 || zd >= Z[0] || zh < 0 || zh >= Z[1] || zw < 0 || zw >= Z[2]) continue;
                    z[(((n * c->O + o) * Z[0] + zd) * Z[1] + zh) * Z[2] + zw] +=
                        xv * w[(((ci * Og + og) * K[0] + kd) * K[1] + kh) * K[2] + kw];
                  }
            }
          }
}

static lam_conv_transpose_opts topts_of(const tcase *c) {
  lam_conv_transpose_opts o = lam_conv_transpose_defaults();
  for (int i = 0; i < 3; i++) {
    o.kernel[i] = 0;
    o.stride[i] = c->s[i] ? c->s[i] : 1;
    o.dilation[i] = c->d[i] ? c->d[i] : 1;
    o.padding[i] = c->p[i];
    o.output_padding[i] = c->op[i];
    if (c->by_size && i < c->nsp) {
      o.output_padding[i] = 0;
      o.output_size[i] = (c->in[i] - 1) * c->s[i] - 2 * c->p[i] + c->d[i] * (c->k[i] - 1) +
                         c->op[i] + 1;
    }
  }
  o.groups = c->G;
  return o;
}

static lam_tensor *convt_nd(int nsp, lam_tensor *x, lam_tensor *w, lam_tensor *b,
                            const lam_conv_transpose_opts *o) {
  return nsp == 1 ? lam_conv_transpose1d(x, w, b, o)
       : nsp == 2 ? lam_conv_transpose2d(x, w, b, o)
                  : lam_conv_transpose3d(x, w, b, o);
}

static void check_tcase(lam_ctx *ctx, tu_rng *r, const tcase *c, lam_dtype dt, const char *what) {
  int64_t xs[5], ws[5], zs[5];
  tshapes(c, xs, ws, zs);
  const int nd = c->nsp + 2;
  int64_t nx = tu_numel(nd, xs), nw = tu_numel(nd, ws), nz = tu_numel(nd, zs);
  double *x = tu_rand_vec(r, nx, -1, 1), *w = tu_rand_vec(r, nw, -1, 1);
  double *b = tu_rand_vec(r, c->O, -1, 1), *want = malloc((size_t)nz * 8);
  ref_convt(c, x, w, c->bias ? b : NULL, want);
  lam_tensor *tx = tu_from_f64(ctx, dt, nd, xs, x), *tw = tu_from_f64(ctx, dt, nd, ws, w);
  lam_tensor *tb = c->bias ? tu_from_f64(ctx, dt, 1, (int64_t[]){c->O}, b) : NULL;
  lam_conv_transpose_opts o = topts_of(c);
  lam_tensor *z = convt_nd(c->nsp, tx, tw, tb, &o);
  cr_assert(z, "%s: %s", what, lam_last_error());
  for (int i = 0; i < nd; i++)
    cr_assert_eq(lam_tensor_shape(z)[i], zs[i], "%s: dim %d", what, i);
  double tol = (dt == LAM_F64 ? 1e-12 : 2e-6) * (double)(c->O / c->G * tu_numel(c->nsp, ws + 2) + 1);
  double *got = tu_to_f64(z);
  tu_assert_close_f64(got, want, nz, tol, 1e-5, what);
  free(got);
  free(x), free(w), free(b), free(want);
  lam_tensor_free(z), lam_tensor_free(tx), lam_tensor_free(tw), lam_tensor_free(tb);
}

static tcase random_tcase(tu_rng *r, int nsp) {
  static const int sizes[] = {1, 5, 17, 2, 3};
  for (;;) {
    tcase c;
    memset(&c, 0, sizeof c);
    c.nsp = nsp;
    c.N = (int)tu_randint(r, 1, 4);
    c.G = (int)tu_randint(r, 1, 4);
    c.C = c.G * (int)tu_randint(r, 1, 4);
    c.O = c.G * (int)tu_randint(r, 1, 4);
    int64_t vol = 1, zvol = 1;
    int ok = 1;
    for (int i = 0; i < nsp; i++) {
      c.in[i] = sizes[tu_randint(r, 0, 5)];
      if (nsp == 3 && c.in[i] > 5) c.in[i] = 4;
      c.k[i] = (int)tu_randint(r, 1, 5);
      c.s[i] = (int)tu_randint(r, 1, 4);
      c.d[i] = (int)tu_randint(r, 1, 3);
      c.p[i] = (int)tu_randint(r, 0, 3);
      int mx = c.s[i] > c.d[i] ? c.s[i] : c.d[i];
      c.op[i] = (int)tu_randint(r, 0, mx);
      int z = (c.in[i] - 1) * c.s[i] - 2 * c.p[i] + c.d[i] * (c.k[i] - 1) + c.op[i] + 1;
      if (z < 1) ok = 0;
      vol *= c.in[i];
      zvol *= z > 0 ? z : 1;
    }
    c.bias = (int)tu_randint(r, 0, 2);
    c.by_size = (int)tu_randint(r, 0, 2);
    for (int i = 0; i < nsp; i++)
      if (c.op[i] >= c.s[i]) c.by_size = 0; /* output_size reaches output_padding < stride only */
    if (!ok || zvol * c.N * c.O > 20000 || vol * c.N * c.C > 20000) continue;
    return c;
  }
}

static void random_tsuite(int nsp, int ncases, uint64_t seed) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(seed);
  tu_mark m = tu_mark_now(ctx);
  for (int i = 0; i < ncases; i++) {
    tcase c = random_tcase(&r, nsp);
    for (int p = 0; p < 2; p++) {
      setenv("LAMINA_CONV_PATH", paths[p], 1);
      if (i % 3 == 2) setenv("LAMINA_CONV_CHUNK", "1", 1);
      else unsetenv("LAMINA_CONV_CHUNK");
      for (int dt = 0; dt < 2; dt++) {
        char what[180];
        snprintf(what, sizeof what,
                 "conv_transpose%dd case %d (%s, %s): N%d C%d O%d G%d in %d,%d,%d k %d,%d,%d "
                 "s %d,%d,%d p %d,%d,%d op %d,%d,%d d %d,%d,%d by_size %d",
                 nsp, i, paths[p], dt ? "f64" : "f32", c.N, c.C, c.O, c.G, c.in[0], c.in[1],
                 c.in[2], c.k[0], c.k[1], c.k[2], c.s[0], c.s[1], c.s[2], c.p[0], c.p[1], c.p[2],
                 c.op[0], c.op[1], c.op[2], c.d[0], c.d[1], c.d[2], c.by_size);
        check_tcase(ctx, &r, &c, dt ? LAM_F64 : LAM_F32, what);
      }
    }
  }
  unsetenv("LAMINA_CONV_PATH");
  unsetenv("LAMINA_CONV_CHUNK");
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

Test(conv_transpose, random_1d) { random_tsuite(1, tu_small() ? 3 : 15, 21); }
Test(conv_transpose, random_2d) { random_tsuite(2, tu_small() ? 3 : 15, 22); }
Test(conv_transpose, random_3d) { random_tsuite(3, tu_small() ? 2 : 8, 23); }

/* ---- gradient checks ------------------------------------------------------------ */

typedef struct gcase {
  int transpose;
  int nsp;
  lam_conv_opts o;
  lam_conv_transpose_opts t;
} gcase;

static lam_tensor *conv_fn(lam_tensor *const *xs, int n, void *user) {
  gcase *g = user;
  lam_tensor *b = n > 2 ? xs[2] : NULL;
  return g->transpose ? convt_nd(g->nsp, xs[0], xs[1], b, &g->t)
                      : conv_nd(g->nsp, xs[0], xs[1], b, &g->o);
}

static void gradcheck_case(lam_ctx *ctx, tu_rng *r, gcase *g, const int64_t *xs, const int64_t *ws,
                           int64_t nbias, const char *what) {
  const int nd = g->nsp + 2;
  lam_tensor *t[3];
  t[0] = tu_rand_f64(ctx, r, nd, xs, -1, 1);
  t[1] = tu_rand_f64(ctx, r, nd, ws, -1, 1);
  t[2] = nbias ? tu_rand_f64(ctx, r, 1, &nbias, -1, 1) : NULL;
  for (int p = 0; p < 2; p++) {
    setenv("LAMINA_CONV_PATH", paths[p], 1);
    char w2[128];
    snprintf(w2, sizeof w2, "%s (%s)", what, paths[p]);
    tu_gradcheck(ctx, conv_fn, g, t, nbias ? 3 : 2, 1e-6, 1e-6, 1, 1e-4, w2);
  }
  unsetenv("LAMINA_CONV_PATH");
  for (int i = 0; i < 3; i++) lam_tensor_free(t[i]);
}

Test(conv, gradcheck) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(31);
  tu_mark m = tu_mark_now(ctx);
  gcase g;
  memset(&g, 0, sizeof g);
  /* conv1d: stride 2, dilation 2, explicit asymmetric padding, 2 groups, bias */
  g.nsp = 1;
  g.o = lam_conv_defaults();
  g.o.kernel[0] = 0;
  g.o.stride[0] = 2, g.o.dilation[0] = 2, g.o.groups = 2;
  g.o.padding = LAM_PADDING_EXPLICIT, g.o.pad[0][0] = 2, g.o.pad[0][1] = 1;
  gradcheck_case(ctx, &r, &g, (int64_t[]){2, 4, 9}, (int64_t[]){4, 2, 3}, 4, "conv1d");
  /* conv2d: same padding, non-square kernel, stride (2,1), one image */
  g.nsp = 2;
  g.o = lam_conv_defaults();
  g.o.kernel[0] = g.o.kernel[1] = 0;
  g.o.stride[0] = 2;
  gradcheck_case(ctx, &r, &g, (int64_t[]){1, 3, 5, 4}, (int64_t[]){2, 3, 3, 2}, 2, "conv2d");
  /* conv2d, batch 3, depthwise, dilation, no bias, chunks of 2 images */
  setenv("LAMINA_CONV_CHUNK", "2", 1);
  g.o = lam_conv_defaults();
  g.o.kernel[0] = g.o.kernel[1] = 0;
  g.o.groups = 3, g.o.dilation[1] = 2, g.o.padding = LAM_PADDING_VALID;
  gradcheck_case(ctx, &r, &g, (int64_t[]){3, 3, 4, 6}, (int64_t[]){3, 1, 2, 2}, 0, "conv2d dw");
  unsetenv("LAMINA_CONV_CHUNK");
  /* conv3d */
  g.nsp = 3;
  g.o = lam_conv_defaults();
  g.o.kernel[0] = g.o.kernel[1] = g.o.kernel[2] = 0;
  g.o.stride[2] = 2;
  gradcheck_case(ctx, &r, &g, (int64_t[]){2, 2, 3, 3, 4}, (int64_t[]){2, 2, 2, 1, 3}, 2, "conv3d");
  /* padding_mode: reflect / replicate / circular (through lam_pad's gradient) */
  static const char *const pmn[] = {"", "conv1d reflect", "conv2d replicate", "conv3d circular"};
  for (int pm = 1; pm < 4; pm++) {
    g.nsp = pm;
    g.o = lam_conv_defaults();
    for (int i = 0; i < 3; i++) g.o.kernel[i] = 0;
    g.o.padding = LAM_PADDING_EXPLICIT, g.o.padding_mode = (lam_pad_mode)pm;
    g.o.pad[0][0] = 2, g.o.pad[0][1] = pm == 3 ? 3 : 1, g.o.stride[0] = pm == 2 ? 2 : 1;
    if (pm == 1) g.o.padding = LAM_PADDING_CAUSAL, g.o.dilation[0] = 2;
    int64_t xs[5] = {2, 2, 3, 4, 3}, ws[5] = {3, 2, 2, 3, 2};
    if (pm == 1) xs[2] = 5;
    gradcheck_case(ctx, &r, &g, xs, ws, 3, pmn[pm]);
  }
  /* transposed 1d/2d/3d with output padding, groups, dilation */
  g.transpose = 1;
  g.nsp = 1;
  g.t = lam_conv_transpose_defaults();
  g.t.kernel[0] = 0;
  g.t.stride[0] = 3, g.t.padding[0] = 1, g.t.output_padding[0] = 2, g.t.groups = 2;
  gradcheck_case(ctx, &r, &g, (int64_t[]){2, 4, 4}, (int64_t[]){4, 1, 3}, 2, "conv_transpose1d");
  g.nsp = 2;
  g.t = lam_conv_transpose_defaults();
  g.t.kernel[0] = g.t.kernel[1] = 0;
  g.t.stride[0] = 2, g.t.dilation[1] = 2, g.t.output_padding[0] = 1, g.t.padding[1] = 1;
  gradcheck_case(ctx, &r, &g, (int64_t[]){2, 2, 3, 3}, (int64_t[]){2, 3, 2, 3}, 3,
                 "conv_transpose2d");
  g.t.output_padding[0] = 0, g.t.output_size[0] = 6, g.t.output_size[1] = 5; /* op 1, 0 */
  gradcheck_case(ctx, &r, &g, (int64_t[]){2, 2, 3, 3}, (int64_t[]){2, 3, 2, 3}, 3,
                 "conv_transpose2d output_size");
  g.nsp = 3;
  g.t = lam_conv_transpose_defaults();
  g.t.kernel[0] = g.t.kernel[1] = g.t.kernel[2] = 0;
  g.t.stride[1] = 2;
  gradcheck_case(ctx, &r, &g, (int64_t[]){1, 2, 2, 2, 3}, (int64_t[]){2, 2, 2, 2, 1}, 0,
                 "conv_transpose3d");
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- PyTorch golden data ----------------------------------------------------------- */

/* Case `name` of tools/gen_conv_golden.py: tensors conv.<name>.*, the rest metadata. */
typedef struct conv_golden_case {
  const char *name;
  int transpose, nsp, mode, groups, has_bias;
  int stride[3], dilation[3], pad[3][2], output_padding[3], output_size[3];
  lam_pad_mode padding_mode;
  int64_t xshape[5], wshape[5], yshape[5];
  const double *x, *w, *b, *cot, *y, *gx, *gw, *gb; /* b, gb: NULL without a bias */
} conv_golden_case;

/* ext: the file also has padding_mode and output_size (tools/gen_conv_modes_golden.py). */
static conv_golden_case conv_golden(const tu_golden *g, const char *name, int ext) {
  static const char *const modes[] = {"same", "valid", "causal", "explicit"}; /* lam_conv_padding */
  static const char *const pmodes[] = {"zeros", "reflect", "replicate", "circular"}; /* lam_pad_mode */
  conv_golden_case c = {0};
  c.name = name;
  c.transpose = (int)tu_golden_num(g, "conv.%s.transpose", name);
  const char *mode = tu_golden_meta(g, "conv.%s.mode", name);
  c.mode = -1;
  for (int i = 0; i < 4; i++)
    if (strcmp(mode, modes[i]) == 0) c.mode = i;
  cr_assert(c.mode >= 0, "conv golden %s: mode %s", name, mode);
  c.groups = (int)tu_golden_num(g, "conv.%s.groups", name);
  c.has_bias = (int)tu_golden_num(g, "conv.%s.bias", name);
  cr_assert_eq(tu_golden_ints(g, c.stride, 3, "conv.%s.stride", name), 3);
  cr_assert_eq(tu_golden_ints(g, c.dilation, 3, "conv.%s.dilation", name), 3);
  cr_assert_eq(tu_golden_ints(g, &c.pad[0][0], 6, "conv.%s.pad", name), 6);
  cr_assert_eq(tu_golden_ints(g, c.output_padding, 3, "conv.%s.output_padding", name), 3);
  c.padding_mode = LAM_PAD_CONSTANT;
  if (ext) {
    cr_assert_eq(tu_golden_ints(g, c.output_size, 3, "conv.%s.output_size", name), 3);
    const char *pm = tu_golden_meta(g, "conv.%s.padding_mode", name);
    int found = 0;
    for (int i = 0; i < 4; i++)
      if (strcmp(pm, pmodes[i]) == 0) c.padding_mode = (lam_pad_mode)i, found = 1;
    cr_assert(found, "conv golden %s: padding_mode %s", name, pm);
  }
  const tu_array *x = tu_golden_get(g, "conv.%s.x", name), *w = tu_golden_get(g, "conv.%s.w", name);
  const tu_array *y = tu_golden_get(g, "conv.%s.y", name);
  c.nsp = x->ndim - 2;
  memcpy(c.xshape, x->shape, sizeof c.xshape);
  memcpy(c.wshape, w->shape, sizeof c.wshape);
  memcpy(c.yshape, y->shape, sizeof c.yshape);
  c.x = x->v, c.w = w->v, c.y = y->v;
  c.cot = tu_golden_values(g, "conv.%s.cot", name);
  c.gx = tu_golden_values(g, "conv.%s.gx", name);
  c.gw = tu_golden_values(g, "conv.%s.gw", name);
  c.b = c.has_bias ? tu_golden_values(g, "conv.%s.b", name) : NULL;
  c.gb = c.has_bias ? tu_golden_values(g, "conv.%s.gb", name) : NULL;
  return c;
}

/* A malloc'd copy of n golden values (v may be NULL when n is 0). */
static double *gvals(const double *v, int64_t n) {
  double *c = malloc((size_t)(n ? n : 1) * sizeof *c);
  for (int64_t i = 0; i < n; i++) c[i] = v[i];
  return c;
}

typedef struct golden_user {
  const conv_golden_case *c;
} golden_user;

static lam_tensor *golden_fn(lam_tensor *const *xs, int n, void *user) {
  const conv_golden_case *c = ((golden_user *)user)->c;
  lam_tensor *b = c->has_bias ? xs[2] : NULL;
  if (c->transpose) {
    lam_conv_transpose_opts o;
    memset(&o, 0, sizeof o);
    for (int i = 0; i < 3; i++) {
      o.stride[i] = c->stride[i], o.dilation[i] = c->dilation[i];
      o.padding[i] = c->pad[i][0], o.output_padding[i] = c->output_padding[i];
      o.output_size[i] = c->output_size[i];
    }
    o.groups = c->groups;
    return convt_nd(c->nsp, xs[0], xs[1], b, &o);
  }
  lam_conv_opts o;
  memset(&o, 0, sizeof o);
  for (int i = 0; i < 3; i++) {
    o.stride[i] = c->stride[i], o.dilation[i] = c->dilation[i];
    o.pad[i][0] = c->pad[i][0], o.pad[i][1] = c->pad[i][1];
  }
  o.padding = (lam_conv_padding)c->mode;
  o.padding_mode = c->padding_mode;
  o.groups = c->groups;
  return conv_nd(c->nsp, xs[0], xs[1], b, &o);
}

/* Output and the gradients of sum(y * cot) in x, w, b, as PyTorch computed
 * them (f64), for f64 and f32 runs, through both paths. */
static void golden_suite(const char *file, int ext) {
  lam_ctx *ctx = tu_ctx();
  tu_golden *gold = tu_golden_load(file);
  tu_mark m = tu_mark_now(ctx);
  const int ncases = tu_golden_count(gold, "conv.cases");
  for (int ci = 0; ci < ncases; ci++) {
    char name[64];
    snprintf(name, sizeof name, "%s", tu_golden_word(gold, "conv.cases", ci));
    const conv_golden_case cg = conv_golden(gold, name, ext), *c = &cg;
    const int nd = c->nsp + 2;
    const int64_t nx = tu_numel(nd, c->xshape), nw = tu_numel(nd, c->wshape), ny = tu_numel(nd, c->yshape);
    const int64_t nb = c->has_bias ? c->yshape[1] : 0;
    for (int p = 0; p < 2; p++)
      for (int dt = 0; dt < 2; dt++) {
        setenv("LAMINA_CONV_PATH", paths[p], 1);
        const lam_dtype t = dt ? LAM_F64 : LAM_F32;
        double *x = gvals(c->x, nx), *w = gvals(c->w, nw), *b = gvals(c->b, nb);
        double *cot = gvals(c->cot, ny);
        lam_tensor *xs[3] = {tu_from_f64(ctx, t, nd, c->xshape, x), tu_from_f64(ctx, t, nd, c->wshape, w),
                             nb ? tu_from_f64(ctx, t, 1, &nb, b) : NULL};
        lam_tensor *tc = tu_from_f64(ctx, t, nd, c->yshape, cot);
        golden_user u = {c};
        lam_tensor *y = NULL, *grads[3] = {0};
        cr_assert_eq(lam_vjp(ctx, golden_fn, &u, xs, nb ? 3 : 2, tc, &y, grads), LAM_OK,
                     "golden %s: %s", c->name, lam_last_error());
        char what[128];
        const double atol = dt ? 1e-10 : 2e-4, rtol = dt ? 1e-10 : 1e-4;
        snprintf(what, sizeof what, "golden %s y (%s, %s)", c->name, paths[p], dt ? "f64" : "f32");
        for (int i = 0; i < nd; i++) cr_assert_eq(lam_tensor_shape(y)[i], c->yshape[i], "%s", what);
        double *got = tu_to_f64(y), *want = gvals(c->y, ny);
        tu_assert_close_f64(got, want, ny, atol, rtol, what);
        free(got), free(want);
        const int64_t counts[3] = {nx, nw, nb};
        const double *offs[3] = {c->gx, c->gw, c->gb};
        for (int i = 0; i < (nb ? 3 : 2); i++) {
          snprintf(what, sizeof what, "golden %s grad %d (%s, %s)", c->name, i, paths[p],
                   dt ? "f64" : "f32");
          got = tu_to_f64(grads[i]);
          want = gvals(offs[i], counts[i]);
          tu_assert_close_f64(got, want, counts[i], atol, rtol, what);
          free(got), free(want);
          lam_tensor_free(grads[i]);
        }
        lam_tensor_free(y), lam_tensor_free(tc);
        for (int i = 0; i < 3; i++) lam_tensor_free(xs[i]);
        free(x), free(w), free(b), free(cot);
      }
  }
  unsetenv("LAMINA_CONV_PATH");
  tu_assert_no_leak(ctx, m);
  tu_golden_free(gold);
  lam_ctx_free(ctx);
}

Test(conv, pytorch_golden) { golden_suite("conv_golden.safetensors", 0); }
/* padding_mode (reflect, replicate, circular) and transposed output_size. */
Test(conv, pytorch_golden_modes) { golden_suite("conv_modes_golden.safetensors", 1); }

/* The layers pass padding_mode and output_size to the ops; bad values fail
 * at construction. */
Test(conv, layers_padding_mode_output_size) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(9);
  tu_mark m = tu_mark_now(ctx);
  const lam_conv_opts co = {.kernel = {3, 3}, .padding_mode = LAM_PAD_CIRCULAR};
  lam_layer *l = lam_nn_conv2d(2, 3, &co);
  cr_assert(l, "%s", lam_last_error());
  lam_vars *v = NULL;
  cr_assert_eq(lam_layer_init(l, ctx, lam_rng_key_make(4), LAM_F32, &v), LAM_OK);
  lam_tensor *wt = lam_ptree_get(lam_vars_params(v), "weight");
  lam_tensor *bt = lam_ptree_get(lam_vars_params(v), "bias");
  lam_tensor *x = tu_rand_f32(ctx, &r, 4, (int64_t[]){2, 2, 5, 4}, -1, 1);
  lam_tensor *y = NULL;
  cr_assert_eq(lam_layer_apply(l, v, x, NULL, &y), LAM_OK, "%s", lam_last_error());
  lam_tensor *y2 = lam_conv2d(x, wt, bt, &co), *y0 = lam_conv2d(x, wt, bt, NULL);
  double *a = tu_to_f64(y), *b = tu_to_f64(y2), *c = tu_to_f64(y0);
  tu_assert_close_f64(a, b, lam_tensor_numel(y), 0, 0, "circular layer == functional");
  int differs = 0; /* the border rows see the wrapped input, not zeros */
  for (int64_t i = 0; i < lam_tensor_numel(y); i++) differs |= a[i] != c[i];
  cr_assert(differs, "circular padding gave the zero-padded result");
  free(a), free(b), free(c);
  lam_tensor_free(y), lam_tensor_free(y2), lam_tensor_free(y0), lam_tensor_free(x);
  lam_vars_free(v);
  lam_layer_free(l);
  const lam_conv_transpose_opts to = {.kernel = {3}, .stride = {3}, .output_size = {14}};
  l = lam_nn_conv_transpose1d(2, 2, &to);
  cr_assert(l, "%s", lam_last_error());
  cr_assert_eq(lam_layer_init(l, ctx, lam_rng_key_make(5), LAM_F32, &v), LAM_OK);
  x = tu_rand_f32(ctx, &r, 3, (int64_t[]){1, 2, 4}, -1, 1);
  cr_assert_eq(lam_layer_apply(l, v, x, NULL, &y), LAM_OK, "%s", lam_last_error());
  cr_assert_eq(lam_tensor_shape(y)[2], 14);
  lam_tensor_free(y), lam_tensor_free(x);
  x = tu_rand_f32(ctx, &r, 3, (int64_t[]){1, 2, 6}, -1, 1); /* sizes 18..20: 14 is out */
  tu_assert_status(lam_layer_apply(l, v, x, NULL, &y), LAM_ERR_SHAPE, "valid sizes range from 18");
  lam_tensor_free(x);
  lam_vars_free(v);
  lam_layer_free(l);
  tu_assert_fails(lam_nn_conv2d(2, 3, &(lam_conv_opts){.padding_mode = (lam_pad_mode)5}),
                  LAM_ERR_INVALID_ARGUMENT, "lam_nn_conv2d: unknown padding_mode 5");
  tu_assert_fails(lam_nn_conv_transpose2d(2, 3, &(lam_conv_transpose_opts){.output_size = {4, -2}}),
                  LAM_ERR_INVALID_ARGUMENT, "lam_nn_conv_transpose2d: output_size -2 of spatial dim 1");
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- bad configurations --------------------------------------------------------------- */

Test(conv, bad_input) {
  lam_ctx *ctx = tu_ctx();
  lam_tensor *x = lam_tensor_zeros(ctx, LAM_F32, 4, (int64_t[]){1, 4, 5, 5});
  lam_tensor *w = lam_tensor_zeros(ctx, LAM_F32, 4, (int64_t[]){6, 2, 3, 3});
  lam_tensor *w1 = lam_tensor_zeros(ctx, LAM_F32, 4, (int64_t[]){6, 4, 3, 3});
  lam_tensor *w7 = lam_tensor_zeros(ctx, LAM_F32, 4, (int64_t[]){6, 4, 7, 7});
  lam_tensor *xd = lam_tensor_zeros(ctx, LAM_F64, 4, (int64_t[]){1, 4, 5, 5});
  lam_tensor *xi = lam_tensor_zeros(ctx, LAM_I32, 4, (int64_t[]){1, 4, 5, 5});
  lam_tensor *x3 = lam_tensor_zeros(ctx, LAM_F32, 3, (int64_t[]){1, 4, 5});
  lam_tensor *b5 = lam_tensor_zeros(ctx, LAM_F32, 1, (int64_t[]){5});
  lam_tensor *wt = lam_tensor_zeros(ctx, LAM_F32, 4, (int64_t[]){4, 3, 3, 3});
  lam_tensor *wt5 = lam_tensor_zeros(ctx, LAM_F32, 4, (int64_t[]){5, 3, 3, 3});
  tu_mark m = tu_mark_now(ctx);
  lam_conv_opts o = lam_conv_defaults();
  tu_assert_fails(lam_conv2d(NULL, w1, NULL, NULL), LAM_ERR_NULL, "x");
  lam_error_clear(); /* a NULL input keeps an earlier message (chains fail safely) */
  tu_assert_fails(lam_conv2d(x, NULL, NULL, NULL), LAM_ERR_NULL, "weight");
  tu_assert_fails(lam_conv2d(x3, w1, NULL, NULL), LAM_ERR_SHAPE, "[batch, channels, h, w]");
  tu_assert_fails(lam_conv1d(x, w1, NULL, NULL), LAM_ERR_SHAPE, "[batch, channels, length]");
  tu_assert_fails(lam_conv3d(x, w1, NULL, NULL), LAM_ERR_SHAPE, "lam_conv3d");
  tu_assert_fails(lam_conv2d(xi, w1, NULL, NULL), LAM_ERR_DTYPE, "i32");
  tu_assert_fails(lam_conv2d(xd, w1, NULL, NULL), LAM_ERR_DTYPE, "dtypes differ");
  tu_assert_fails(lam_conv2d(x, w, NULL, NULL), LAM_ERR_SHAPE, "input channels");
  o.groups = 3;
  tu_assert_fails(lam_conv2d(x, w, NULL, &o), LAM_ERR_SHAPE, "divisible by groups 3");
  o.groups = -1;
  tu_assert_fails(lam_conv2d(x, w, NULL, &o), LAM_ERR_INVALID_ARGUMENT, "groups");
  o = lam_conv_defaults();
  o.padding = LAM_PADDING_VALID;
  tu_assert_fails(lam_conv2d(x, w7, NULL, &o), LAM_ERR_SHAPE,
                  "kernel 7 (dilated 7) is larger than the padded input 5");
  o.dilation[0] = 3;
  tu_assert_fails(lam_conv2d(x, w1, NULL, &o), LAM_ERR_SHAPE, "(dilated 7)");
  o = lam_conv_defaults();
  o.stride[1] = -2;
  tu_assert_fails(lam_conv2d(x, w1, NULL, &o), LAM_ERR_INVALID_ARGUMENT, "stride");
  o = lam_conv_defaults();
  o.padding = LAM_PADDING_CAUSAL;
  tu_assert_fails(lam_conv2d(x, w1, NULL, &o), LAM_ERR_INVALID_ARGUMENT, "causal");
  o.padding = LAM_PADDING_EXPLICIT;
  o.pad[1][0] = -1;
  tu_assert_fails(lam_conv2d(x, w1, NULL, &o), LAM_ERR_INVALID_ARGUMENT, "padding");
  o = lam_conv_defaults();
  o.padding = (lam_conv_padding)9;
  tu_assert_fails(lam_conv2d(x, w1, NULL, &o), LAM_ERR_INVALID_ARGUMENT, "padding mode");
  o = lam_conv_defaults();
  o.padding_mode = (lam_pad_mode)9;
  tu_assert_fails(lam_conv2d(x, w1, NULL, &o), LAM_ERR_INVALID_ARGUMENT, "unknown padding_mode 9");
  o = lam_conv_defaults();
  o.padding = LAM_PADDING_EXPLICIT, o.pad[1][1] = 5, o.padding_mode = LAM_PAD_REFLECT;
  tu_assert_fails(lam_conv2d(x, w1, NULL, &o), LAM_ERR_SHAPE,
                  "lam_conv2d: reflect padding (0, 5) of spatial dim 1 must be less than the input "
                  "size 5");
  o.padding_mode = LAM_PAD_CIRCULAR;
  lam_tensor *yc = lam_conv2d(x, w1, NULL, &o); /* circular: pad == size is one wrap */
  cr_assert(yc, "%s", lam_last_error());
  lam_tensor_free(yc);
  o.pad[1][1] = 6;
  tu_assert_fails(lam_conv2d(x, w1, NULL, &o), LAM_ERR_SHAPE,
                  "circular padding (0, 6) of spatial dim 1 must be at most the input size 5");
  o.padding_mode = LAM_PAD_REPLICATE; /* replicate takes any padding */
  yc = lam_conv2d(x, w1, NULL, &o);
  cr_assert(yc, "%s", lam_last_error());
  lam_tensor_free(yc);
  tu_assert_fails(lam_conv2d(x, w1, b5, NULL), LAM_ERR_SHAPE, "bias must be [6]");
  /* transposed */
  lam_conv_transpose_opts t = lam_conv_transpose_defaults();
  tu_assert_fails(lam_conv_transpose2d(x, wt5, NULL, NULL), LAM_ERR_SHAPE,
                  "expects 5 input channels");
  tu_assert_fails(lam_conv_transpose1d(x, wt, NULL, NULL), LAM_ERR_SHAPE, "length");
  t.output_padding[0] = 1;
  tu_assert_fails(lam_conv_transpose2d(x, wt, NULL, &t), LAM_ERR_INVALID_ARGUMENT,
                  "output_padding 1");
  t = lam_conv_transpose_defaults();
  t.padding[1] = 4;
  tu_assert_fails(lam_conv_transpose2d(x, wt, NULL, &t), LAM_ERR_SHAPE, "output size");
  t = lam_conv_transpose_defaults();
  t.groups = 3;
  tu_assert_fails(lam_conv_transpose2d(x, wt, NULL, &t), LAM_ERR_SHAPE, "divisible");
  /* output_size: x 5x5, k 3, stride (2, 1): valid sizes 11..12 and 7..7 */
  t = lam_conv_transpose_defaults();
  t.stride[0] = 2;
  t.output_size[0] = 13, t.output_size[1] = 7;
  tu_assert_fails(lam_conv_transpose2d(x, wt, NULL, &t), LAM_ERR_SHAPE,
                  "lam_conv_transpose2d: requested output_size 13 of spatial dim 0, but valid "
                  "sizes range from 11 to 12 (for an input of 5)");
  t.output_size[0] = 12, t.output_size[1] = 8;
  tu_assert_fails(lam_conv_transpose2d(x, wt, NULL, &t), LAM_ERR_SHAPE, "range from 7 to 7");
  t.output_size[1] = 0;
  t.output_padding[0] = 1;
  lam_tensor *zt = lam_conv_transpose2d(x, wt, NULL, &t); /* agrees: output_padding 1 */
  cr_assert(zt && lam_tensor_shape(zt)[2] == 12 && lam_tensor_shape(zt)[3] == 7, "%s",
            lam_last_error());
  lam_tensor_free(zt);
  t.output_size[0] = 11;
  tu_assert_fails(lam_conv_transpose2d(x, wt, NULL, &t), LAM_ERR_INVALID_ARGUMENT,
                  "output_padding 1 of spatial dim 0 contradicts output_size 11");
  t.output_size[0] = -1;
  tu_assert_fails(lam_conv_transpose2d(x, wt, NULL, &t), LAM_ERR_INVALID_ARGUMENT,
                  "output_size -1");
  lam_error_clear();
  tu_assert_fails(lam_conv_transpose2d(NULL, wt, NULL, &t), LAM_ERR_NULL, "x");
  tu_assert_fails(lam_conv_transpose2d(x, wt, b5, NULL), LAM_ERR_SHAPE, "bias must be [3]");
  /* output-size helper */
  int64_t out[2];
  o = lam_conv_defaults();
  o.stride[0] = 2;
  cr_assert_eq(lam_conv_output_size(2, (int64_t[]){7, 5}, (int64_t[]){3, 3}, &o, out), LAM_OK);
  cr_assert(out[0] == 4 && out[1] == 5);
  tu_assert_status(lam_conv_output_size(4, (int64_t[]){7, 5}, (int64_t[]){3, 3}, &o, out),
                   LAM_ERR_INVALID_ARGUMENT, "nsp");
  tu_assert_no_leak(ctx, m);
  lam_tensor *all[] = {x, w, w1, w7, xd, xi, x3, b5, wt, wt5};
  for (int i = 0; i < 10; i++) lam_tensor_free(all[i]);
  lam_ctx_free(ctx);
}

/* ---- layers ------------------------------------------------------------------------------ */

Test(conv, layers) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(8);
  tu_mark m = tu_mark_now(ctx);
  /* Defaults: kernel 3, same padding, bias; output keeps the spatial size. */
  lam_layer *l = lam_nn_conv2d(3, 8, NULL);
  cr_assert(l, "%s", lam_last_error());
  cr_assert_str_eq(lam_layer_name(l), "conv2d");
  lam_vars *v = NULL;
  cr_assert_eq(lam_layer_init(l, ctx, lam_rng_key_make(1), LAM_F32, &v), LAM_OK, "%s",
               lam_last_error());
  lam_tensor *wt = lam_ptree_get(lam_vars_params(v), "weight");
  lam_tensor *bt = lam_ptree_get(lam_vars_params(v), "bias");
  cr_assert(wt && bt);
  cr_assert(lam_tensor_ndim(wt) == 4 && lam_tensor_shape(wt)[0] == 8 &&
            lam_tensor_shape(wt)[1] == 3 && lam_tensor_shape(wt)[2] == 3 &&
            lam_tensor_shape(wt)[3] == 3);
  cr_assert(lam_tensor_ndim(bt) == 1 && lam_tensor_shape(bt)[0] == 8);
  lam_tensor *x = tu_rand_f32(ctx, &r, 4, (int64_t[]){2, 3, 7, 6}, -1, 1);
  lam_tensor *y = NULL;
  cr_assert_eq(lam_layer_apply(l, v, x, NULL, &y), LAM_OK, "%s", lam_last_error());
  cr_assert(lam_tensor_shape(y)[1] == 8 && lam_tensor_shape(y)[2] == 7 && lam_tensor_shape(y)[3] == 6);
  lam_tensor *y2 = lam_conv2d(x, wt, bt, NULL);
  double *a = tu_to_f64(y), *b = tu_to_f64(y2);
  tu_assert_close_f64(a, b, lam_tensor_numel(y), 0, 0, "layer == functional");
  free(a), free(b);
  lam_tensor_free(y), lam_tensor_free(y2);
  /* wrong channels / rank / dtype are reported by apply */
  lam_tensor *xbad = lam_tensor_zeros(ctx, LAM_F32, 4, (int64_t[]){2, 4, 7, 6});
  tu_assert_status(lam_layer_apply(l, v, xbad, NULL, &y), LAM_ERR_SHAPE, "conv2d");
  lam_tensor *x3 = lam_tensor_zeros(ctx, LAM_F32, 3, (int64_t[]){2, 3, 7});
  tu_assert_status(lam_layer_apply(l, v, x3, NULL, &y), LAM_ERR_SHAPE, "conv2d");
  lam_tensor *xd = lam_tensor_zeros(ctx, LAM_F64, 4, (int64_t[]){2, 3, 7, 6});
  tu_assert_status(lam_layer_apply(l, v, xd, NULL, &y), LAM_ERR_DTYPE, "conv2d");
  lam_tensor_free(xbad), lam_tensor_free(x3), lam_tensor_free(xd);
  lam_vars_free(v);
  lam_layer_free(l);

  /* conv1d without bias, depthwise; conv3d; transposed layers */
  lam_conv_opts o = lam_conv_defaults();
  o.no_bias = true;
  o.groups = 4;
  o.kernel[0] = 5;
  o.padding = LAM_PADDING_CAUSAL;
  l = lam_nn_conv1d(4, 8, &o);
  cr_assert(l);
  cr_assert_eq(lam_layer_init(l, ctx, lam_rng_key_make(2), LAM_F64, &v), LAM_OK);
  cr_assert_null(lam_ptree_get(lam_vars_params(v), "bias"));
  wt = lam_ptree_get(lam_vars_params(v), "weight");
  cr_assert(lam_tensor_shape(wt)[0] == 8 && lam_tensor_shape(wt)[1] == 1 && lam_tensor_shape(wt)[2] == 5);
  lam_tensor *x1 = tu_rand_f64(ctx, &r, 3, (int64_t[]){1, 4, 10}, -1, 1);
  cr_assert_eq(lam_layer_apply(l, v, x1, NULL, &y), LAM_OK, "%s", lam_last_error());
  cr_assert(lam_tensor_shape(y)[2] == 10);
  lam_tensor_free(y), lam_tensor_free(x1);
  lam_vars_free(v);
  lam_layer_free(l);

  l = lam_nn_conv3d(2, 3, &(lam_conv_opts){.kernel = {1, 2, 3}, .padding = LAM_PADDING_VALID});
  cr_assert(l);
  cr_assert_eq(lam_layer_init(l, ctx, lam_rng_key_make(3), LAM_F32, &v), LAM_OK);
  wt = lam_ptree_get(lam_vars_params(v), "weight");
  cr_assert(lam_tensor_shape(wt)[2] == 1 && lam_tensor_shape(wt)[3] == 2 && lam_tensor_shape(wt)[4] == 3);
  cr_assert_not_null(lam_ptree_get(lam_vars_params(v), "bias"));
  lam_tensor *x5 = tu_rand_f32(ctx, &r, 5, (int64_t[]){1, 2, 3, 4, 5}, -1, 1);
  cr_assert_eq(lam_layer_apply(l, v, x5, NULL, &y), LAM_OK, "%s", lam_last_error());
  cr_assert(lam_tensor_shape(y)[2] == 3 && lam_tensor_shape(y)[3] == 3 && lam_tensor_shape(y)[4] == 3);
  lam_tensor_free(y), lam_tensor_free(x5);
  lam_vars_free(v);
  lam_layer_free(l);

  lam_conv_transpose_opts t = lam_conv_transpose_defaults();
  t.kernel[0] = t.kernel[1] = 4;
  t.stride[0] = t.stride[1] = 2;
  t.padding[0] = t.padding[1] = 1;
  l = lam_nn_conv_transpose2d(3, 6, &t);
  cr_assert(l);
  cr_assert_str_eq(lam_layer_name(l), "conv_transpose2d");
  cr_assert_eq(lam_layer_init(l, ctx, lam_rng_key_make(4), LAM_F32, &v), LAM_OK);
  wt = lam_ptree_get(lam_vars_params(v), "weight");
  cr_assert(lam_tensor_shape(wt)[0] == 3 && lam_tensor_shape(wt)[1] == 6 && lam_tensor_shape(wt)[2] == 4);
  cr_assert_eq(lam_layer_apply(l, v, x, NULL, &y), LAM_OK, "%s", lam_last_error());
  cr_assert(lam_tensor_shape(y)[1] == 6 && lam_tensor_shape(y)[2] == 14 && lam_tensor_shape(y)[3] == 12);
  lam_tensor_free(y);
  lam_vars_free(v);
  lam_layer_free(l);
  l = lam_nn_conv_transpose1d(2, 2, NULL);
  cr_assert(l);
  lam_layer_free(l);
  l = lam_nn_conv_transpose3d(2, 2, NULL);
  cr_assert(l);
  lam_layer_free(l);

  /* bad constructor arguments */
  tu_assert_fails(lam_nn_conv2d(0, 3, NULL), LAM_ERR_INVALID_ARGUMENT, "lam_nn_conv2d");
  tu_assert_fails(lam_nn_conv2d(4, 6, &(lam_conv_opts){.groups = 4}), LAM_ERR_INVALID_ARGUMENT,
                  "divisible by groups");
  tu_assert_fails(lam_nn_conv2d(4, 6, &(lam_conv_opts){.kernel = {-1, 3}}), LAM_ERR_INVALID_ARGUMENT,
                  "kernel");
  tu_assert_fails(lam_nn_conv2d(4, 6, &(lam_conv_opts){.padding = LAM_PADDING_CAUSAL}),
                  LAM_ERR_INVALID_ARGUMENT, "causal");
  tu_assert_fails(lam_nn_conv_transpose2d(4, 6, &(lam_conv_transpose_opts){.groups = 4}),
                  LAM_ERR_INVALID_ARGUMENT, "divisible by groups");
  lam_tensor_free(x);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* Gradients flow through a layer inside lam_value_and_grad (params tree). */
typedef struct lg_user {
  lam_layer *l;
  lam_tensor *x;
  lam_ptree *state;
} lg_user;

static lam_tensor *layer_loss(lam_ptree *params, void *user) {
  lg_user *u = user;
  lam_tensor *y = NULL;
  if (lam_layer_apply_with(u->l, params, u->state, u->x, NULL, &y) != LAM_OK) return NULL;
  lam_tensor *s = lam_sum(y, 0, NULL, 0);
  lam_tensor_free(y);
  return s;
}

Test(conv, layer_value_and_grad) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(9);
  lam_layer *l = lam_nn_conv2d(2, 3, &(lam_conv_opts){.kernel = {3, 1}, .stride = {2, 1}});
  lam_vars *v = NULL;
  cr_assert_eq(lam_layer_init(l, ctx, lam_rng_key_make(5), LAM_F64, &v), LAM_OK);
  lg_user u = {l, tu_rand_f64(ctx, &r, 4, (int64_t[]){2, 2, 5, 4}, -1, 1), lam_vars_state(v)};
  lam_tensor *loss = NULL;
  lam_ptree *grads = NULL;
  cr_assert_eq(lam_value_and_grad(ctx, layer_loss, &u, lam_vars_params(v), &loss, &grads), LAM_OK,
               "%s", lam_last_error());
  /* d sum(y) / d bias[o] = number of output positions (2 * 3 * 4). */
  double *gb = tu_to_f64(lam_ptree_get(grads, "bias"));
  for (int o = 0; o < 3; o++) cr_assert(fabs(gb[o] - 24) < 1e-12, "bias grad %g", gb[o]);
  free(gb);
  lam_tensor *gw = lam_ptree_get(grads, "weight");
  cr_assert(gw && lam_tensor_shape(gw)[0] == 3 && lam_tensor_shape(gw)[2] == 3 && lam_tensor_shape(gw)[3] == 1);
  lam_ptree_free(grads);
  lam_tensor_free(loss);
  lam_tensor_free(u.x);
  lam_vars_free(v);
  lam_layer_free(l);
  lam_ctx_free(ctx);
}
