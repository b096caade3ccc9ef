/* test_upsample.c: upsample1d/2d (nearest, linear/bilinear; scale factor or
 * size; align_corners) against a plain C reference (forward and a
 * scatter-form backward) on random configurations and odd sizes, PyTorch
 * golden outputs and gradients (tests/data/conv_golden.safetensors from
 * tools/gen_conv_golden.py),
 * finite-difference checks, one output above 2^22 elements, bad input and
 * the layers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* ---- reference ------------------------------------------------------------------- */

typedef struct ucase {
  int nsp, N, C, in[2];
  lam_upsample_opts o;
} ucase;

/* Source taps of output o along one axis, as PyTorch defines them (nearest
 * in float; linear in double, or float when f32). */
static void taps(const ucase *c, int axis, int o, int in, int out, int f32, int *i0, int *i1,
                 double *l0, double *l1) {
  const bool has_scale = c->o.size[axis] == 0;
  const double sf = c->o.scale[axis] == 0 ? 2.0 : c->o.scale[axis];
  if (c->o.mode == LAM_UPSAMPLE_NEAREST) {
    int src;
    if (out == in) src = o;
    else if (out == 2 * in) src = o / 2;
    else {
      float scale = has_scale ? (float)(1.0 / sf) : (float)in / (float)out;
      src = (int)floorf((float)o * scale);
      if (src > in - 1) src = in - 1;
    }
    *i0 = *i1 = src, *l0 = 1, *l1 = 0;
    return;
  }
  if (out == in) {
    *i0 = *i1 = o, *l0 = 1, *l1 = 0;
    return;
  }
  double real;
  if (f32) {
    float scale = !c->o.align_corners ? (has_scale ? (float)(1.0 / sf) : (float)in / (float)out)
                  : out > 1 ? (float)(in - 1) / (float)(out - 1) : 0.0f;
    float r = c->o.align_corners ? scale * (float)o : scale * ((float)o + 0.5f) - 0.5f;
    real = r < 0 ? 0 : r;
  } else {
    double scale = !c->o.align_corners ? (has_scale ? 1.0 / sf : (double)in / out)
                   : out > 1 ? (double)(in - 1) / (out - 1) : 0.0;
    real = c->o.align_corners ? scale * o : scale * (o + 0.5) - 0.5;
    if (real < 0) real = 0;
  }
  *i0 = (int)real;
  *i1 = *i0 < in - 1 ? *i0 + 1 : *i0;
  *l1 = real - *i0;
  *l0 = 1 - *l1;
}

static void out_dims(const ucase *c, int *out) {
  for (int a = 0; a < 2; a++) {
    if (a >= c->nsp) {
      out[a] = 1;
      continue;
    }
    out[a] = c->o.size[a] ? (int)c->o.size[a]
                          : (int)floor(c->in[a] * (c->o.scale[a] == 0 ? 2.0 : c->o.scale[a]));
  }
}

/* y and dx (scatter) of the case, 1-D as H = 1. */
static void ref_ups(const ucase *c, int f32, const double *x, const double *cot, double *y,
                    double *dx) {
  int out[2];
  out_dims(c, out);
  const int IH = c->nsp == 2 ? c->in[0] : 1, IW = c->nsp == 2 ? c->in[1] : c->in[0];
  const int OH = c->nsp == 2 ? out[0] : 1, OW = c->nsp == 2 ? out[1] : out[0];
  const int planes = c->N * c->C;
  memset(dx, 0, sizeof(double) * (size_t)planes * IH * IW);
  for (int p = 0; p < planes; p++)
    for (int oh = 0; oh < OH; oh++)
      for (int ow = 0; ow < OW; ow++) {
        int h0 = 0, h1 = 0, w0, w1;
        double a0 = 1, a1 = 0, b0, b1;
        if (c->nsp == 2) taps(c, 0, oh, IH, OH, f32, &h0, &h1, &a0, &a1);
        taps(c, c->nsp == 2 ? 1 : 0, ow, IW, OW, f32, &w0, &w1, &b0, &b1);
        const double *xp = x + (size_t)p * IH * IW;
        double *dp = dx + (size_t)p * IH * IW;
        int o = (p * OH + oh) * OW + ow;
        y[o] = a0 * (b0 * xp[h0 * IW + w0] + b1 * xp[h0 * IW + w1]) +
               a1 * (b0 * xp[h1 * IW + w0] + b1 * xp[h1 * IW + w1]);
        dp[h0 * IW + w0] += cot[o] * a0 * b0;
        dp[h0 * IW + w1] += cot[o] * a0 * b1;
        dp[h1 * IW + w0] += cot[o] * a1 * b0;
        dp[h1 * IW + w1] += cot[o] * a1 * b1;
      }
}

static lam_tensor *ups_fn(lam_tensor *const *xs, int n, void *user) {
  const ucase *c = user;
  return c->nsp == 1 ? lam_upsample1d(xs[0], &c->o) : lam_upsample2d(xs[0], &c->o);
}

static void check_ucase(lam_ctx *ctx, tu_rng *r, const ucase *c, lam_dtype dt, double tol,
                        const char *what) {
  int out[2];
  out_dims(c, out);
  int64_t xs[4] = {c->N, c->C, c->in[0], c->in[1]}, ys[4] = {c->N, c->C, out[0], out[1]};
  const int nd = c->nsp + 2;
  int64_t nx = c->N * c->C, ny = c->N * c->C;
  for (int i = 0; i < c->nsp; i++) nx *= c->in[i], ny *= out[i];
  double *x = malloc((size_t)nx * 8), *cot = malloc((size_t)ny * 8);
  double *y = malloc((size_t)ny * 8), *dx = malloc((size_t)nx * 8);
  tu_fill_uniform_f64(r, x, nx, -1, 1);
  tu_fill_uniform_f64(r, cot, ny, -1, 1);
  ref_ups(c, dt == LAM_F32, x, cot, y, dx);
  lam_tensor *tx = tu_from_f64(ctx, dt, nd, xs, x), *tc = tu_from_f64(ctx, dt, nd, ys, cot);
  lam_tensor *ty = NULL, *tg = NULL;
  cr_assert_eq(lam_vjp(ctx, ups_fn, (void *)c, &tx, 1, tc, &ty, &tg), LAM_OK, "%s: %s", what,
               lam_last_error());
  for (int i = 0; i < nd; i++)
    cr_assert_eq(lam_tensor_shape(ty)[i], ys[i], "%s: dim %d is %lld, want %lld", what, i,
                 (long long)lam_tensor_shape(ty)[i], (long long)ys[i]);
  double *got = tu_to_f64(ty);
  tu_assert_close_f64(got, y, ny, tol, tol, what);
  free(got);
  got = tu_to_f64(tg);
  char w2[200];
  snprintf(w2, sizeof w2, "%s grad", what);
  tu_assert_close_f64(got, dx, nx, 10 * tol, tol, w2);
  free(got);
  lam_tensor_free(tx), lam_tensor_free(tc), lam_tensor_free(ty), lam_tensor_free(tg);
  free(x), free(cot), free(y), free(dx);
}

static ucase random_ucase(tu_rng *r, int nsp) {
  static const int sizes[] = {1, 5, 17, 31, 2, 3};
  static const double scales[] = {2, 3, 1.5, 0.5, 2.5, 1, 0.7};
  ucase c;
  memset(&c, 0, sizeof c);
  c.nsp = nsp;
  c.N = (int)tu_randint(r, 1, 3);
  c.C = (int)tu_randint(r, 1, 3);
  c.o = lam_upsample_defaults();
  c.o.mode = (lam_upsample_mode)tu_randint(r, 0, 2);
  c.o.align_corners = c.o.mode == LAM_UPSAMPLE_LINEAR && tu_randint(r, 0, 2);
  for (int i = 0; i < nsp; i++) {
    c.in[i] = sizes[tu_randint(r, 0, 6)];
    if (tu_randint(r, 0, 2)) {
      c.o.size[i] = tu_randint(r, 1, 40);
    } else {
      double s;
      do s = scales[tu_randint(r, 0, 7)]; while (floor(c.in[i] * s) < 1);
      c.o.scale[i] = s;
    }
  }
  return c;
}

static void random_usuite(int nsp, int ncases, uint64_t seed) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(seed);
  tu_mark m = tu_mark_now(ctx);
  for (int i = 0; i < ncases; i++) {
    ucase c = random_ucase(&r, nsp);
    for (int dt = 0; dt < 2; dt++) {
      char what[200];
      snprintf(what, sizeof what,
               "upsample%dd case %d (%s): N%d C%d in %d,%d mode %d size %lld,%lld scale %g,%g "
               "align %d",
               nsp, i, dt ? "f64" : "f32", c.N, c.C, c.in[0], c.in[1], (int)c.o.mode,
               (long long)c.o.size[0], (long long)c.o.size[1], c.o.scale[0], c.o.scale[1],
               (int)c.o.align_corners);
      check_ucase(ctx, &r, &c, dt ? LAM_F64 : LAM_F32, dt ? 1e-12 : 2e-6, what);
    }
  }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

Test(upsample, random_1d) { random_usuite(1, tu_small() ? 5 : 40, 51); }
Test(upsample, random_2d) { random_usuite(2, tu_small() ? 5 : 40, 52); }

Test(upsample, large) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(53);
  ucase c;
  memset(&c, 0, sizeof c);
  c.nsp = 2, c.N = 2, c.C = 4;
  c.in[0] = tu_small() ? 17 : 512, c.in[1] = tu_small() ? 9 : 513;
  c.o = lam_upsample_defaults();
  check_ucase(ctx, &r, &c, LAM_F32, 1e-6, "nearest x2 large");
  c.o.mode = LAM_UPSAMPLE_LINEAR;
  check_ucase(ctx, &r, &c, LAM_F32, 2e-6, "bilinear x2 large");
  lam_ctx_free(ctx);
}

Test(upsample, gradcheck) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(54);
  tu_mark m = tu_mark_now(ctx);
  for (int i = 0; i < 6; i++) {
    ucase c;
    memset(&c, 0, sizeof c);
    c.nsp = 1 + i % 2, c.N = 2, c.C = 2, c.in[0] = 3, c.in[1] = 4;
    c.o = lam_upsample_defaults();
    c.o.mode = i < 2 ? LAM_UPSAMPLE_NEAREST : LAM_UPSAMPLE_LINEAR;
    c.o.align_corners = i >= 4;
    c.o.scale[0] = 1.5, c.o.scale[1] = 2;
    if (i == 3) c.o.size[0] = 7;
    int64_t xs[4] = {c.N, c.C, c.in[0], c.in[1]};
    lam_tensor *x = tu_rand_f64(ctx, &r, c.nsp + 2, xs, -1, 1);
    char what[32];
    snprintf(what, sizeof what, "upsample gradcheck %d", i);
    tu_gradcheck(ctx, ups_fn, &c, &x, 1, 1e-6, 1e-6, 1, 1e-5, what);
    lam_tensor_free(x);
  }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* Case `name` of tools/gen_conv_golden.py: tensors upsample.<name>.*, the rest metadata. */
typedef struct upsample_golden_case {
  const char *name;
  int nsp, mode; /* mode: 0 nearest, 1 linear */
  int64_t size[2];
  double scale[2];
  int align;
  int64_t xshape[4], yshape[4];
  const double *x, *cot, *y, *gx;
} upsample_golden_case;

static upsample_golden_case upsample_golden(const tu_golden *g, const char *name) {
  upsample_golden_case c = {0};
  c.name = name;
  const char *mode = tu_golden_meta(g, "upsample.%s.mode", name);
  cr_assert(strcmp(mode, "nearest") == 0 || strcmp(mode, "linear") == 0, "mode %s", mode);
  c.mode = strcmp(mode, "linear") == 0;
  int size[2];
  cr_assert_eq(tu_golden_ints(g, size, 2, "upsample.%s.size", name), 2);
  c.size[0] = size[0], c.size[1] = size[1];
  cr_assert_eq(tu_golden_nums(g, c.scale, 2, "upsample.%s.scale", name), 2);
  c.align = (int)tu_golden_num(g, "upsample.%s.align", name);
  const tu_array *x = tu_golden_get(g, "upsample.%s.x", name);
  const tu_array *y = tu_golden_get(g, "upsample.%s.y", name);
  c.nsp = x->ndim - 2;
  memcpy(c.xshape, x->shape, sizeof c.xshape);
  memcpy(c.yshape, y->shape, sizeof c.yshape);
  c.x = x->v, c.y = y->v;
  c.cot = tu_golden_values(g, "upsample.%s.cot", name);
  c.gx = tu_golden_values(g, "upsample.%s.gx", name);
  return c;
}

Test(upsample, pytorch_golden) {
  lam_ctx *ctx = tu_ctx();
  tu_golden *gold = tu_golden_load("conv_golden.safetensors");
  tu_mark m = tu_mark_now(ctx);
  const int ncases = tu_golden_count(gold, "upsample.cases");
  for (int ci = 0; ci < ncases; ci++) {
    char name[64];
    snprintf(name, sizeof name, "%s", tu_golden_word(gold, "upsample.cases", ci));
    const upsample_golden_case ug = upsample_golden(gold, name), *gc = &ug;
    ucase c;
    memset(&c, 0, sizeof c);
    c.nsp = gc->nsp;
    c.o.mode = (lam_upsample_mode)gc->mode;
    c.o.align_corners = gc->align;
    for (int i = 0; i < 2; i++) c.o.size[i] = gc->size[i], c.o.scale[i] = gc->scale[i];
    const int nd = gc->nsp + 2;
    int64_t nx = 1, ny = 1;
    for (int i = 0; i < nd; i++) nx *= gc->xshape[i], ny *= gc->yshape[i];
    for (int dt = 0; dt < 2; dt++) {
      const lam_dtype t = dt ? LAM_F64 : LAM_F32;
      lam_tensor *x = tu_from_f64(ctx, t, nd, gc->xshape, gc->x);
      lam_tensor *cot = tu_from_f64(ctx, t, nd, gc->yshape, gc->cot);
      lam_tensor *y = NULL, *g = NULL;
      cr_assert_eq(lam_vjp(ctx, ups_fn, &c, &x, 1, cot, &y, &g), LAM_OK, "golden %s: %s",
                   gc->name, lam_last_error());
      char what[96];
      snprintf(what, sizeof what, "golden %s (%s)", gc->name, dt ? "f64" : "f32");
      for (int i = 0; i < nd; i++)
        cr_assert_eq(lam_tensor_shape(y)[i], gc->yshape[i], "%s dim %d: %lld vs %lld", what, i,
                     (long long)lam_tensor_shape(y)[i], (long long)gc->yshape[i]);
      const double tol = dt ? 1e-11 : 1e-5;
      double *v = tu_to_f64(y);
      tu_assert_close_f64(v, gc->y, ny, tol, tol, what);
      free(v);
      v = tu_to_f64(g);
      strcat(what, " grad");
      tu_assert_close_f64(v, gc->gx, nx, tol, tol, what);
      free(v);
      lam_tensor_free(x), lam_tensor_free(cot), lam_tensor_free(y), lam_tensor_free(g);
    }
  }
  tu_assert_no_leak(ctx, m);
  tu_golden_free(gold);
  lam_ctx_free(ctx);
}

Test(upsample, bad_input) {
  lam_ctx *ctx = tu_ctx();
  lam_tensor *x = lam_tensor_zeros(ctx, LAM_F32, 4, (int64_t[]){1, 2, 5, 5});
  lam_tensor *xi = lam_tensor_zeros(ctx, LAM_I32, 4, (int64_t[]){1, 2, 5, 5});
  tu_mark m = tu_mark_now(ctx);
  tu_assert_fails(lam_upsample2d(NULL, NULL), LAM_ERR_NULL, "lam_upsample2d: x");
  tu_assert_fails(lam_upsample1d(x, NULL), LAM_ERR_SHAPE, "[batch, channels, length]");
  tu_assert_fails(lam_upsample2d(xi, NULL), LAM_ERR_DTYPE, "i32");
  lam_upsample_opts o = lam_upsample_defaults();
  o.align_corners = true;
  tu_assert_fails(lam_upsample2d(x, &o), LAM_ERR_INVALID_ARGUMENT, "align_corners");
  o = lam_upsample_defaults();
  o.scale[1] = -2;
  tu_assert_fails(lam_upsample2d(x, &o), LAM_ERR_INVALID_ARGUMENT, "scale -2");
  o = lam_upsample_defaults();
  o.scale[0] = 0.1;
  tu_assert_fails(lam_upsample2d(x, &o), LAM_ERR_SHAPE, "output size 0");
  o = lam_upsample_defaults();
  o.size[0] = -3;
  tu_assert_fails(lam_upsample2d(x, &o), LAM_ERR_INVALID_ARGUMENT, "size -3");
  o = lam_upsample_defaults();
  o.mode = (lam_upsample_mode)7;
  tu_assert_fails(lam_upsample2d(x, &o), LAM_ERR_INVALID_ARGUMENT, "mode 7");
  tu_assert_no_leak(ctx, m);
  lam_tensor_free(x), lam_tensor_free(xi);
  lam_ctx_free(ctx);
}

Test(upsample, layers) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(55);
  lam_tensor *x = tu_rand_f32(ctx, &r, 4, (int64_t[]){2, 3, 4, 5}, -1, 1);
  lam_tensor *x1 = tu_rand_f32(ctx, &r, 3, (int64_t[]){2, 3, 5}, -1, 1);
  tu_mark m = tu_mark_now(ctx);
  lam_layer *l = lam_nn_upsample2d(NULL);
  cr_assert(l);
  cr_assert_str_eq(lam_layer_name(l), "upsample2d");
  lam_vars *v = NULL;
  cr_assert_eq(lam_layer_init(l, ctx, lam_rng_key_make(1), LAM_F32, &v), LAM_OK);
  lam_tensor *y = NULL;
  cr_assert_eq(lam_layer_apply(l, v, x, NULL, &y), LAM_OK, "%s", lam_last_error());
  cr_assert(lam_tensor_shape(y)[2] == 8 && lam_tensor_shape(y)[3] == 10);
  lam_tensor_free(y);
  tu_assert_status(lam_layer_apply(l, v, x1, NULL, &y), LAM_ERR_SHAPE, "upsample2d expects");
  lam_layer_free(l);
  l = lam_nn_upsample1d(&(lam_upsample_opts){.mode = LAM_UPSAMPLE_LINEAR, .size = {9}, .align_corners = true});
  cr_assert(l);
  cr_assert_eq(lam_layer_apply(l, v, x1, NULL, &y), LAM_OK, "%s", lam_last_error());
  cr_assert(lam_tensor_shape(y)[2] == 9);
  lam_tensor_free(y);
  lam_layer_free(l);
  lam_vars_free(v);
  tu_assert_fails(lam_nn_upsample2d(&(lam_upsample_opts){.align_corners = true}),
                  LAM_ERR_INVALID_ARGUMENT, "align_corners");
  tu_assert_fails(lam_nn_upsample1d(&(lam_upsample_opts){.scale = {-1}}), LAM_ERR_INVALID_ARGUMENT,
                  "scale -1");
  tu_assert_no_leak(ctx, m);
  lam_tensor_free(x), lam_tensor_free(x1);
  lam_ctx_free(ctx);
}
