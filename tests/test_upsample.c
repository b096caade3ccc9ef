/* test_upsample.c (src/ops/upsample.c, cl/upsample.cl): upsample1d/2d/3d
 * (nearest, nearest-exact, linear / bilinear / trilinear, bicubic; scale
 * factor or size; align_corners) against a plain C reference (forward and a
 * scatter-form backward) on random configurations and odd sizes, PyTorch
 * golden outputs and gradients (tests/data/conv_golden.safetensors from
 * tools/gen_conv_golden.py and tests/data/upsample_golden.safetensors from
 * tools/gen_upsample_golden.py), finite-difference checks, one output above
 * 2^22 elements, bad input and the layers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* ---- reference ------------------------------------------------------------------- */

typedef struct ucase {
  int nsp, N, C, in[3];
  lam_upsample_opts o;
} ucase;

static void cubic_coeffs(double t, int f32, double *c) {
  if (f32) {
    const float A = -0.75f, x1 = (float)t, x2 = 1.0f - (float)t;
    c[0] = ((A * (x1 + 1) - 5 * A) * (x1 + 1) + 8 * A) * (x1 + 1) - 4 * A;
    c[1] = ((A + 2) * x1 - (A + 3)) * x1 * x1 + 1;
    c[2] = ((A + 2) * x2 - (A + 3)) * x2 * x2 + 1;
    c[3] = ((A * (x2 + 1) - 5 * A) * (x2 + 1) + 8 * A) * (x2 + 1) - 4 * A;
    return;
  }
  const double A = -0.75, x1 = t, x2 = 1 - t;
  c[0] = ((A * (x1 + 1) - 5 * A) * (x1 + 1) + 8 * A) * (x1 + 1) - 4 * A;
  c[1] = ((A + 2) * x1 - (A + 3)) * x1 * x1 + 1;
  c[2] = ((A + 2) * x2 - (A + 3)) * x2 * x2 + 1;
  c[3] = ((A * (x2 + 1) - 5 * A) * (x2 + 1) + 8 * A) * (x2 + 1) - 4 * A;
}

/* Source taps of output o along spatial dim `axis`, as PyTorch defines them
 * (nearest in float; linear and cubic in double, or float when f32): stores
 * up to 4 indices and weights, returns their count. */
static int taps(const ucase *c, int axis, int o, int in, int out, int f32, int *idx, double *w) {
  const bool has_scale = c->o.size[axis] == 0;
  const double sf = c->o.scale[axis] == 0 ? 2.0 : c->o.scale[axis];
  const lam_upsample_mode mode = c->o.mode;
  if (mode == LAM_UPSAMPLE_NEAREST || mode == LAM_UPSAMPLE_NEAREST_EXACT) {
    float scale = has_scale ? (float)(1.0 / sf) : (float)in / (float)out;
    int src;
    if (mode == LAM_UPSAMPLE_NEAREST_EXACT) src = (int)floorf((float)((o + 0.5) * scale));
    else if (out == in) src = o;
    else if (out == 2 * in) src = o / 2;
    else src = (int)floorf((float)o * scale);
    if (src > in - 1) src = in - 1;
    idx[0] = src, w[0] = 1;
    return 1;
  }
  const bool cubic = mode == LAM_UPSAMPLE_CUBIC, ac = c->o.align_corners;
  if (!cubic && out == in) {
    idx[0] = idx[1] = o, w[0] = 1, w[1] = 0;
    return 2;
  }
  double real;
  if (f32) {
    float scale = !ac ? (has_scale ? (float)(1.0 / sf) : (float)in / (float)out)
                  : out > 1 ? (float)(in - 1) / (float)(out - 1) : 0.0f;
    float r = ac ? scale * (float)o : scale * ((float)o + 0.5f) - 0.5f;
    real = r < 0 && !cubic ? 0 : r;
  } else {
    double scale = !ac ? (has_scale ? 1.0 / sf : (double)in / out)
                   : out > 1 ? (double)(in - 1) / (out - 1) : 0.0;
    real = ac ? scale * o : scale * (o + 0.5) - 0.5;
    if (real < 0 && !cubic) real = 0;
  }
  int i0 = (int)floor(real);
  if (i0 > in - 1) i0 = in - 1;
  double t = f32 ? (double)((float)real - (float)i0) : real - i0;
  if (t < 0) t = 0;
  if (t > 1) t = 1;
  if (!cubic) {
    idx[0] = i0, idx[1] = i0 < in - 1 ? i0 + 1 : i0;
    w[1] = t, w[0] = f32 ? (double)(1.0f - (float)t) : 1 - t;
    return 2;
  }
  cubic_coeffs(t, f32, w);
  for (int k = 0; k < 4; k++) {
    int j = i0 - 1 + k;
    idx[k] = j < 0 ? 0 : j > in - 1 ? in - 1 : j;
  }
  return 4;
}

static void out_dims(const ucase *c, int *out) {
  for (int a = 0; a < 3; a++) {
    if (a >= c->nsp) {
      out[a] = 1;
      continue;
    }
    out[a] = c->o.size[a] ? (int)c->o.size[a]
                          : (int)floor(c->in[a] * (c->o.scale[a] == 0 ? 2.0 : c->o.scale[a]));
  }
}

/* y and dx (scatter) of the case, run as 3-D with leading size-1 axes. */
static void ref_ups(const ucase *c, int f32, const double *x, const double *cot, double *y,
                    double *dx) {
  int out[3], I[3] = {1, 1, 1}, O[3] = {1, 1, 1};
  out_dims(c, out);
  for (int i = 0; i < c->nsp; i++) I[3 - c->nsp + i] = c->in[i], O[3 - c->nsp + i] = out[i];
  const int planes = c->N * c->C, ni = I[0] * I[1] * I[2];
  memset(dx, 0, sizeof(double) * (size_t)planes * ni);
  for (int p = 0; p < planes; p++)
    for (int od = 0; od < O[0]; od++)
      for (int oh = 0; oh < O[1]; oh++)
        for (int ow = 0; ow < O[2]; ow++) {
          int id[4] = {0}, ih[4] = {0}, iw[4];
          double wd[4] = {1}, wh[4] = {1}, ww[4];
          int nd = 1, nh = 1;
          const int s0 = 3 - c->nsp;
          if (s0 == 0) nd = taps(c, 0, od, I[0], O[0], f32, id, wd);
          if (s0 <= 1) nh = taps(c, 1 - s0, oh, I[1], O[1], f32, ih, wh);
          const int nw = taps(c, 2 - s0, ow, I[2], O[2], f32, iw, ww);
          const double *xp = x + (size_t)p * ni;
          double *dp = dx + (size_t)p * ni;
          const int o = ((p * O[0] + od) * O[1] + oh) * O[2] + ow;
          double v = 0;
          for (int a = 0; a < nd; a++)
            for (int b = 0; b < nh; b++)
              for (int k = 0; k < nw; k++) {
                const int e = (id[a] * I[1] + ih[b]) * I[2] + iw[k];
                v += wd[a] * wh[b] * ww[k] * xp[e];
                dp[e] += cot[o] * wd[a] * wh[b] * ww[k];
              }
          y[o] = v;
        }
}

static lam_tensor *ups_fn(lam_tensor *const *xs, int n, void *user) {
  const ucase *c = user;
  return c->nsp == 1 ? lam_upsample1d(xs[0], &c->o)
       : c->nsp == 2 ? lam_upsample2d(xs[0], &c->o)
                     : lam_upsample3d(xs[0], &c->o);
}

static void check_ucase(lam_ctx *ctx, tu_rng *r, const ucase *c, lam_dtype dt, double tol,
                        const char *what) {
  int out[3];
  out_dims(c, out);
  int64_t xs[5] = {c->N, c->C, c->in[0], c->in[1], c->in[2]};
  int64_t ys[5] = {c->N, c->C, out[0], out[1], out[2]};
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
  c.o.mode = (lam_upsample_mode)tu_randint(r, 0, nsp == 2 ? 4 : 3); /* cubic: 2-D only */
  c.o.align_corners =
      (c.o.mode == LAM_UPSAMPLE_LINEAR || c.o.mode == LAM_UPSAMPLE_CUBIC) && tu_randint(r, 0, 2);
  for (int i = 0; i < nsp; i++) {
    c.in[i] = sizes[tu_randint(r, 0, 6)];
    if (nsp == 3 && c.in[i] > 5) c.in[i] = (int)tu_randint(r, 1, 6);
    if (tu_randint(r, 0, 2)) {
      c.o.size[i] = tu_randint(r, 1, nsp == 3 ? 12 : 40);
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
               "upsample%dd case %d (%s): N%d C%d in %d,%d,%d mode %d size %lld,%lld,%lld "
               "scale %g,%g,%g align %d",
               nsp, i, dt ? "f64" : "f32", c.N, c.C, c.in[0], c.in[1], c.in[2], (int)c.o.mode,
               (long long)c.o.size[0], (long long)c.o.size[1], (long long)c.o.size[2],
               c.o.scale[0], c.o.scale[1], c.o.scale[2], (int)c.o.align_corners);
      check_ucase(ctx, &r, &c, dt ? LAM_F64 : LAM_F32, dt ? 1e-12 : 2e-6, what);
    }
  }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

Test(upsample, random_1d) { random_usuite(1, tu_small() ? 5 : 40, 51); }
Test(upsample, random_2d) { random_usuite(2, tu_small() ? 5 : 40, 52); }
Test(upsample, random_3d) { random_usuite(3, tu_small() ? 4 : 30, 56); }

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
  for (int i = 0; i < 14; i++) {
    ucase c;
    memset(&c, 0, sizeof c);
    c.nsp = 1 + i % 2, c.N = 2, c.C = 2, c.in[0] = 3, c.in[1] = 4, c.in[2] = 3;
    c.o = lam_upsample_defaults();
    c.o.mode = i < 2 ? LAM_UPSAMPLE_NEAREST : LAM_UPSAMPLE_LINEAR;
    c.o.align_corners = i >= 4 && i < 6;
    c.o.scale[0] = 1.5, c.o.scale[1] = 2, c.o.scale[2] = 1.7;
    if (i == 3) c.o.size[0] = 7;
    if (i >= 6 && i < 8) c.o.mode = LAM_UPSAMPLE_NEAREST_EXACT;
    if (i >= 8 && i < 10) c.nsp = 2, c.o.mode = LAM_UPSAMPLE_CUBIC, c.o.align_corners = i == 9;
    if (i == 9) c.o.size[1] = 3; /* cubic downsampling */
    if (i >= 10) c.nsp = 3, c.N = 1, c.o.mode = i < 12 ? LAM_UPSAMPLE_LINEAR : LAM_UPSAMPLE_NEAREST_EXACT;
    if (i == 11) c.o.align_corners = true, c.o.size[2] = 2;
    if (i == 13) c.o.mode = LAM_UPSAMPLE_NEAREST, c.o.scale[0] = 0.7;
    int64_t xs[5] = {c.N, c.C, c.in[0], c.in[1], c.in[2]};
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
  int nsp, mode; /* lam_upsample_mode */
  int64_t size[3];
  double scale[3];
  int align, grad; /* grad 0: torch's gx is not the adjoint (see the generator) */
  int64_t xshape[5], yshape[5];
  const double *x, *cot, *y, *gx;
} upsample_golden_case;

static upsample_golden_case upsample_golden(const tu_golden *g, const char *name, int ext) {
  upsample_golden_case c = {0};
  c.name = name;
  static const char *const modes[] = {"nearest", "linear", "nearest-exact", "cubic"};
  const char *mode = tu_golden_meta(g, "upsample.%s.mode", name);
  c.mode = -1;
  for (int i = 0; i < 4; i++)
    if (strcmp(mode, modes[i]) == 0) c.mode = i;
  cr_assert(c.mode >= 0, "mode %s", mode);
  int size[3] = {0}; /* conv_golden has 2 entries, upsample_golden 3 */
  const int n = tu_golden_ints(g, size, 3, "upsample.%s.size", name);
  cr_assert(n == 2 || n == 3, "golden %s: %d sizes", name, n);
  for (int i = 0; i < 3; i++) c.size[i] = size[i];
  cr_assert_eq(tu_golden_nums(g, c.scale, 3, "upsample.%s.scale", name), n);
  c.align = (int)tu_golden_num(g, "upsample.%s.align", name);
  c.grad = ext ? (int)tu_golden_num(g, "upsample.%s.grad", name) : 1;
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

static void golden_suite(const char *file, int ext) {
  lam_ctx *ctx = tu_ctx();
  tu_golden *gold = tu_golden_load(file);
  tu_mark m = tu_mark_now(ctx);
  const int ncases = tu_golden_count(gold, "upsample.cases");
  for (int ci = 0; ci < ncases; ci++) {
    char name[64];
    snprintf(name, sizeof name, "%s", tu_golden_word(gold, "upsample.cases", ci));
    const upsample_golden_case ug = upsample_golden(gold, name, ext), *gc = &ug;
    ucase c;
    memset(&c, 0, sizeof c);
    c.nsp = gc->nsp;
    c.o.mode = (lam_upsample_mode)gc->mode;
    c.o.align_corners = gc->align;
    for (int i = 0; i < 3; i++) c.o.size[i] = gc->size[i], c.o.scale[i] = gc->scale[i];
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
      if (gc->grad) tu_assert_close_f64(v, gc->gx, nx, tol, tol, what);
      free(v);
      lam_tensor_free(x), lam_tensor_free(cot), lam_tensor_free(y), lam_tensor_free(g);
    }
  }
  tu_assert_no_leak(ctx, m);
  tu_golden_free(gold);
  lam_ctx_free(ctx);
}

Test(upsample, pytorch_golden) { golden_suite("conv_golden.safetensors", 0); }
/* nearest-exact, bicubic, 3-D nearest / trilinear, scale factor vs size. */
Test(upsample, pytorch_golden_modes) { golden_suite("upsample_golden.safetensors", 1); }

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
  o = lam_upsample_defaults();
  o.mode = LAM_UPSAMPLE_NEAREST_EXACT, o.align_corners = true;
  tu_assert_fails(lam_upsample2d(x, &o), LAM_ERR_INVALID_ARGUMENT,
                  "align_corners is only for linear and cubic modes");
  o.mode = LAM_UPSAMPLE_CUBIC; /* cubic aligns */
  lam_tensor *yc = lam_upsample2d(x, &o);
  cr_assert(yc, "%s", lam_last_error());
  lam_tensor_free(yc);
  lam_tensor *x1 = lam_tensor_zeros(ctx, LAM_F32, 3, (int64_t[]){1, 2, 5});
  lam_tensor *x5 = lam_tensor_zeros(ctx, LAM_F32, 5, (int64_t[]){1, 2, 3, 4, 5});
  tu_assert_fails(lam_upsample1d(x1, &o), LAM_ERR_INVALID_ARGUMENT,
                  "lam_upsample1d: cubic mode is for 2-D inputs only");
  tu_assert_fails(lam_upsample3d(x5, &o), LAM_ERR_INVALID_ARGUMENT,
                  "lam_upsample3d: cubic mode is for 2-D inputs only");
  tu_assert_fails(lam_upsample3d(x, NULL), LAM_ERR_SHAPE, "[batch, channels, d, h, w]");
  lam_error_clear(); /* a NULL input keeps an earlier message */
  tu_assert_fails(lam_upsample3d(NULL, NULL), LAM_ERR_NULL, "lam_upsample3d: x");
  o = lam_upsample_defaults();
  o.scale[2] = -1;
  tu_assert_fails(lam_upsample3d(x5, &o), LAM_ERR_INVALID_ARGUMENT, "scale -1 of spatial dim 2");
  o = lam_upsample_defaults();
  o.size[1] = (int64_t)1 << 40;
  tu_assert_fails(lam_upsample3d(x5, &o), LAM_ERR_SHAPE, "out of range");
  lam_tensor_free(x1), lam_tensor_free(x5);
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
  tu_assert_fails(lam_nn_upsample3d(&(lam_upsample_opts){.mode = LAM_UPSAMPLE_CUBIC}),
                  LAM_ERR_INVALID_ARGUMENT, "lam_nn_upsample3d: cubic mode is for 2-D");
  tu_assert_fails(lam_nn_upsample3d(&(lam_upsample_opts){.scale = {1, 1, -3}}),
                  LAM_ERR_INVALID_ARGUMENT, "scale -3 of spatial dim 2");
  /* 3-D layer: trilinear to a size, nearest-exact by factors; the op's result */
  lam_tensor *x3 = tu_rand_f32(ctx, &r, 5, (int64_t[]){1, 2, 3, 4, 5}, -1, 1);
  const lam_upsample_opts o3 = {.mode = LAM_UPSAMPLE_LINEAR, .size = {5, 2, 7}, .align_corners = true};
  l = lam_nn_upsample3d(&o3);
  cr_assert(l);
  cr_assert_str_eq(lam_layer_name(l), "upsample3d");
  cr_assert_eq(lam_layer_init(l, ctx, lam_rng_key_make(1), LAM_F32, &v), LAM_OK);
  cr_assert_eq(lam_layer_apply(l, v, x3, NULL, &y), LAM_OK, "%s", lam_last_error());
  lam_tensor *want = lam_upsample3d(x3, &o3);
  cr_assert(lam_tensor_shape(y)[2] == 5 && lam_tensor_shape(y)[3] == 2 && lam_tensor_shape(y)[4] == 7);
  double *a = tu_to_f64(y), *b = tu_to_f64(want);
  tu_assert_close_f64(a, b, lam_tensor_numel(y), 0, 0, "upsample3d layer");
  free(a), free(b);
  lam_tensor_free(y), lam_tensor_free(want);
  tu_assert_status(lam_layer_apply(l, v, x, NULL, &y), LAM_ERR_SHAPE, "upsample3d expects");
  lam_layer_free(l);
  lam_vars_free(v);
  l = lam_nn_upsample3d(&(lam_upsample_opts){.mode = LAM_UPSAMPLE_NEAREST_EXACT, .scale = {1.5, 0.5, 2}});
  cr_assert(l);
  cr_assert_eq(lam_layer_init(l, ctx, lam_rng_key_make(1), LAM_F32, &v), LAM_OK);
  cr_assert_eq(lam_layer_apply(l, v, x3, NULL, &y), LAM_OK, "%s", lam_last_error());
  cr_assert(lam_tensor_shape(y)[2] == 4 && lam_tensor_shape(y)[3] == 2 && lam_tensor_shape(y)[4] == 10);
  lam_tensor_free(y);
  lam_layer_free(l);
  lam_vars_free(v);
  lam_tensor_free(x3);
  tu_assert_no_leak(ctx, m);
  lam_tensor_free(x), lam_tensor_free(x1);
  lam_ctx_free(ctx);
}
