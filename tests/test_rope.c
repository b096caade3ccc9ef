/* test_rope.c: positional encodings. lam_rope against a plain C reference
 * (split-half and interleaved layouts, partial rotary dims, offsets, scales,
 * bases, any seq axis, f32/f64) and against Hugging Face's rotate_half /
 * rotate_every_two formulas computed by PyTorch (golden file); gradient
 * checks; the RoPE layer; MLX's sinusoidal encoding with its options and
 * its gradient; ALiBi slopes, bias and layer; bad input for every function. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/attention_golden.h"
#include "testutil.h"

static lam_tensor *from_f64(lam_ctx *ctx, lam_dtype dt, int ndim, const int64_t *shape,
                            const double *v) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  void *buf = malloc((size_t)n * 8 + 8);
  for (int64_t i = 0; i < n; i++) {
    if (dt == LAM_F32) ((float *)buf)[i] = (float)v[i];
    else ((double *)buf)[i] = v[i];
  }
  lam_tensor *t = lam_tensor_from_host(ctx, dt, ndim, shape, buf);
  free(buf);
  cr_assert(t, "from_f64: %s", lam_last_error());
  return t;
}

static double *to_f64(const lam_tensor *t) {
  cr_assert(t, "to_f64: NULL tensor: %s", lam_last_error());
  int64_t n = lam_tensor_numel(t);
  void *buf = malloc(lam_tensor_nbytes(t));
  cr_assert_eq(lam_tensor_to_host(t, buf, lam_tensor_nbytes(t)), LAM_OK, "%s", lam_last_error());
  double *v = malloc((size_t)n * sizeof *v);
  for (int64_t i = 0; i < n; i++)
    v[i] = lam_tensor_dtype(t) == LAM_F32 ? ((float *)buf)[i] : ((double *)buf)[i];
  free(buf);
  return v;
}

/* ---- RoPE ------------------------------------------------------------------------- */

typedef struct rope_case {
  int ndim;
  int64_t shape[5];
  int seq_axis;
  int64_t dims; /* 0: all */
  int traditional;
  int64_t offset;
  double scale, theta;
} rope_case;

static double *ref_rope(const double *x, const rope_case *c) {
  int nd = c->ndim, a = c->seq_axis < 0 ? c->seq_axis + nd : c->seq_axis;
  int64_t F = c->shape[nd - 1], S = c->shape[a], inner = 1, outer = 1;
  for (int d = a + 1; d < nd - 1; d++) inner *= c->shape[d];
  for (int d = 0; d < a; d++) outer *= c->shape[d];
  int64_t dims = c->dims ? c->dims : F, half = dims / 2, n = outer * S * inner * F;
  double scale = c->scale ? c->scale : 1.0, theta = c->theta ? c->theta : 10000.0;
  double *y = malloc((size_t)n * sizeof *y);
  memcpy(y, x, (size_t)n * sizeof *y);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t p = 0; p < S; p++)
      for (int64_t in = 0; in < inner; in++) {
        int64_t row = ((o * S + p) * inner + in) * F;
        for (int64_t k = 0; k < half; k++) {
          double ang = (double)(c->offset + p) * scale * pow(theta, -2.0 * (double)k / (double)dims);
          int64_t e0 = c->traditional ? 2 * k : k, e1 = c->traditional ? 2 * k + 1 : k + half;
          double x0 = x[row + e0], x1 = x[row + e1];
          y[row + e0] = x0 * cos(ang) - x1 * sin(ang);
          y[row + e1] = x1 * cos(ang) + x0 * sin(ang);
        }
      }
  return y;
}

static const rope_case ROPE_CASES[] = {
    {4, {2, 3, 7, 16}, -2, 0, 0, 0, 0, 0},
    {4, {2, 3, 7, 16}, -2, 0, 1, 0, 0, 0},
    {4, {1, 2, 33, 80}, -2, 40, 0, 5, 1, 500000},
    {4, {1, 2, 33, 80}, -2, 24, 1, 5, 0.5, 0},
    {4, {2, 9, 4, 12}, 1, 0, 0, 17, 1, 0},     /* [B, S, H, D] layout */
    {3, {5, 1, 6}, 0, 4, 1, 0, 2, 100},        /* positions on axis 0 */
    {2, {1023, 64}, 0, 0, 0, 0, 1, 0},         /* rank 2 [S, D], long sequence */
    {5, {2, 3, 1, 5, 2}, 1, 0, 0, 1000, 1, 0}, /* two features, big offset */
};

static void rope_check(lam_ctx *ctx, lam_dtype dt, const rope_case *c, int idx) {
  tu_rng r = tu_rng_make(40 + (uint64_t)idx);
  int64_t n = 1;
  for (int d = 0; d < c->ndim; d++) n *= c->shape[d];
  double *x = malloc((size_t)n * sizeof *x);
  tu_fill_uniform_f64(&r, x, n, -1, 1);
  if (dt == LAM_F32)
    for (int64_t i = 0; i < n; i++) x[i] = (float)x[i];
  double *want = ref_rope(x, c);
  lam_tensor *t = from_f64(ctx, dt, c->ndim, c->shape, x);
  lam_rope_opts o = lam_rope_defaults();
  o.seq_axis = c->seq_axis;
  o.dims = c->dims;
  o.traditional = c->traditional;
  o.offset = c->offset;
  o.scale = c->scale;
  o.theta = c->theta;
  lam_tensor *y = lam_rope(t, &o);
  cr_assert(y, "case %d: %s", idx, lam_last_error());
  cr_assert(lam_tensor_same_shape(y, t));
  double *got = to_f64(y);
  char what[64];
  snprintf(what, sizeof what, "rope case %d %s", idx, lam_dtype_name(dt));
  /* f32: the table is rounded from double; angles up to ~1000 rad stay exact */
  tu_assert_close_f64(got, want, n, dt == LAM_F32 ? 2e-6 : 1e-13, dt == LAM_F32 ? 2e-6 : 1e-12, what);
  /* the layer does the same */
  lam_layer *layer = lam_nn_rope(c->dims, &o);
  cr_assert(layer, "%s", lam_last_error());
  lam_vars *vars = NULL;
  cr_assert_eq(lam_layer_init(layer, ctx, lam_rng_key_make(0), dt, &vars), LAM_OK, "%s", lam_last_error());
  lam_tensor *yl = NULL;
  cr_assert_eq(lam_layer_apply(layer, vars, t, NULL, &yl), LAM_OK, "%s", lam_last_error());
  double *gl = to_f64(yl);
  tu_assert_close_f64(gl, got, n, 0, 0, "rope layer");
  free(gl);
  lam_tensor_free(yl);
  lam_vars_free(vars);
  lam_layer_free(layer);
  free(got);
  free(want);
  free(x);
  lam_tensor_free(t);
  lam_tensor_free(y);
}

Test(rope, matches_reference) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  for (int i = 0; i < (int)(sizeof ROPE_CASES / sizeof ROPE_CASES[0]); i++) {
    rope_check(ctx, LAM_F32, &ROPE_CASES[i], i);
    if (lam_ctx_device(ctx)->fp64) rope_check(ctx, LAM_F64, &ROPE_CASES[i], i);
  }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* One tensor above 2^22 elements (the rope kernel streams one element per work-item). */
Test(rope, large) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  rope_case c = {4, {1, 16, 2049, 128}, -2, 96, 0, 7, 1, 0};
  if (tu_small()) c.shape[2] = 33;
  rope_check(ctx, LAM_F32, &c, 99);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

Test(rope, huggingface_golden) {
  lam_ctx *ctx = tu_ctx();
  ag_file f;
  cr_assert_eq(ag_load(&f), 0, "cannot read tests/data/attention_golden.bin");
  tu_mark m = tu_mark_now(ctx);
  for (int idx = 0; idx < 5; idx++) {
    char name[32];
    snprintf(name, sizeof name, "rope%d.cfg", idx);
    int n = 0;
    const float *c = ag_get(&f, name, &n);
    cr_assert(c && n == 10, "missing %s", name);
    int64_t shape[4] = {(int64_t)c[0], (int64_t)c[1], (int64_t)c[2], (int64_t)c[3]};
    int64_t numel = shape[0] * shape[1] * shape[2] * shape[3];
    double *x = malloc((size_t)numel * sizeof *x);
    ag_gen((uint32_t)c[9] + 1, numel, -1, 1, x);
    lam_tensor *t = from_f64(ctx, LAM_F32, 4, shape, x);
    lam_rope_opts o = lam_rope_defaults();
    o.dims = (int64_t)c[4];
    o.traditional = c[5] != 0;
    o.theta = c[6];
    o.offset = (int64_t)c[7];
    o.scale = c[8];
    lam_tensor *y = lam_rope(t, &o);
    cr_assert(y, "%s", lam_last_error());
    int ns = 0;
    snprintf(name, sizeof name, "rope%d.out", idx);
    const float *want = ag_get(&f, name, &ns);
    cr_assert(want, "missing %s", name);
    double *full = to_f64(y), *got = malloc((size_t)ns * sizeof *got), *w = malloc((size_t)ns * sizeof *w);
    ag_sample(full, numel, ns, got);
    for (int i = 0; i < ns; i++) w[i] = want[i];
    tu_assert_close_f64(got, w, ns, 2e-6, 2e-6, name);
    free(full);
    free(got);
    free(w);
    free(x);
    lam_tensor_free(t);
    lam_tensor_free(y);
  }
  tu_assert_no_leak(ctx, m);
  ag_free(&f);
  lam_ctx_free(ctx);
}

static lam_tensor *rope_fn(lam_tensor *const *xs, int n, void *user) {
  return lam_rope(xs[0], user);
}

Test(rope, gradcheck) {
  lam_ctx *ctx = tu_ctx();
  if (!lam_ctx_device(ctx)->fp64) {
    lam_ctx_free(ctx);
    cr_skip_test("no fp64");
  }
  tu_mark m = tu_mark_now(ctx);
  tu_rng r = tu_rng_make(41);
  for (int trad = 0; trad < 2; trad++) {
    lam_tensor *x = tu_rand_f64(ctx, &r, 3, (int64_t[]){2, 5, 10}, -1, 1);
    lam_rope_opts o = lam_rope_defaults();
    o.traditional = trad;
    o.dims = 6;
    o.offset = 3;
    o.theta = 50;
    tu_gradcheck(ctx, rope_fn, &o, &x, 1, 1e-6, 1e-6, 1, 1e-5, trad ? "rope traditional" : "rope");
    lam_tensor_free(x);
  }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

Test(rope, bad_input) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  lam_tensor *x = lam_tensor_zeros(ctx, LAM_F32, 3, (int64_t[]){2, 5, 8});
  lam_tensor *x1 = lam_tensor_zeros(ctx, LAM_F32, 1, (int64_t[]){8});
  lam_tensor *xi = lam_tensor_zeros(ctx, LAM_I32, 3, (int64_t[]){2, 5, 8});
  lam_tensor *xo = lam_tensor_zeros(ctx, LAM_F32, 3, (int64_t[]){2, 5, 7});
  lam_error_clear();
  tu_assert_fails(lam_rope(NULL, NULL), LAM_ERR_NULL, "lam_rope: x is NULL");
  tu_assert_fails(lam_rope(xi, NULL), LAM_ERR_DTYPE, "need f32 or f64");
  tu_assert_fails(lam_rope(x1, NULL), LAM_ERR_SHAPE, "rank >= 2");
  tu_assert_fails(lam_rope(xo, NULL), LAM_ERR_INVALID_ARGUMENT, "rotated dims 7 must be even");
  lam_rope_opts o = lam_rope_defaults();
  o.seq_axis = -1;
  tu_assert_fails(lam_rope(x, &o), LAM_ERR_INVALID_ARGUMENT, "seq_axis -1");
  o.seq_axis = 3;
  tu_assert_fails(lam_rope(x, &o), LAM_ERR_INVALID_ARGUMENT, "seq_axis 3");
  o = lam_rope_defaults();
  o.dims = 10;
  tu_assert_fails(lam_rope(x, &o), LAM_ERR_INVALID_ARGUMENT, "rotated dims 10");
  o.dims = 3;
  tu_assert_fails(lam_rope(x, &o), LAM_ERR_INVALID_ARGUMENT, "rotated dims 3");
  o = lam_rope_defaults();
  o.theta = -1;
  tu_assert_fails(lam_rope(x, &o), LAM_ERR_INVALID_ARGUMENT, "theta");
  o = lam_rope_defaults();
  o.scale = NAN;
  tu_assert_fails(lam_rope(x, &o), LAM_ERR_INVALID_ARGUMENT, "scale");
  tu_assert_fails(lam_nn_rope(3, NULL), LAM_ERR_INVALID_ARGUMENT, "lam_nn_rope: dims 3");
  tu_assert_fails(lam_nn_rope(-2, NULL), LAM_ERR_INVALID_ARGUMENT, "dims -2");
  lam_tensor *ts[] = {x, x1, xi, xo};
  for (int i = 0; i < 4; i++) lam_tensor_free(ts[i]);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- sinusoidal --------------------------------------------------------------------- */

static double *ref_sinusoidal(const double *x, int64_t n, int64_t dims, const lam_sinusoidal_opts *o) {
  int64_t half = dims / 2;
  double *y = malloc((size_t)(n * dims) * sizeof *y);
  double scale = o->scale ? o->scale : sqrt(2.0 / (double)dims);
  for (int64_t i = 0; i < n; i++)
    for (int64_t k = 0; k < half; k++) {
      double one_zero = 1.0 - (double)k / (double)(half - 1);
      double f = exp(one_zero * (log(o->max_freq) - log(o->min_freq)) + log(o->min_freq));
      if (o->full_turns) f *= 2 * 3.14159265358979323846;
      double s = sin(x[i] * f) * scale, c = cos(x[i] * f) * scale;
      y[i * dims + k] = o->cos_first ? c : s;
      y[i * dims + half + k] = o->cos_first ? s : c;
    }
  return y;
}

Test(sinusoidal, matches_reference) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  tu_rng r = tu_rng_make(42);
  for (int variant = 0; variant < 4; variant++) {
    lam_sinusoidal_opts o = lam_sinusoidal_defaults();
    int64_t dims = variant == 2 ? 4 : 32 + 2 * variant;
    if (variant == 1) o.cos_first = true;
    if (variant == 2) o.full_turns = true;
    if (variant == 3) {
      o.min_freq = 0.01;
      o.max_freq = 3;
      o.scale = 1.5;
    }
    int64_t shape[2] = {3, 11}, n = 33;
    double *x = malloc((size_t)n * sizeof *x);
    tu_fill_uniform_f64(&r, x, n, 0, 50);
    for (int64_t i = 0; i < n; i++) x[i] = floor(x[i]); /* integer positions, exact in f32 */
    double *want = ref_sinusoidal(x, n, dims, &o);
    for (int dti = 0; dti < 2; dti++) {
      lam_dtype dt = dti ? LAM_F64 : LAM_F32;
      if (dt == LAM_F64 && !lam_ctx_device(ctx)->fp64) continue;
      lam_tensor *t = from_f64(ctx, dt, 2, shape, x);
      lam_tensor *y = lam_sinusoidal_encoding(t, dims, &o);
      cr_assert(y, "%s", lam_last_error());
      cr_assert_eq(lam_tensor_ndim(y), 3);
      cr_assert_eq(lam_tensor_dim(y, 2), dims);
      double *got = to_f64(y);
      char what[64];
      snprintf(what, sizeof what, "sinusoidal variant %d %s", variant, lam_dtype_name(dt));
      tu_assert_close_f64(got, want, n * dims, dt == LAM_F32 ? 2e-5 : 1e-12, dt == LAM_F32 ? 1e-5 : 1e-12, what);
      /* as a layer */
      lam_layer *l = lam_nn_sinusoidal_encoding(dims, &o);
      lam_vars *vars = NULL;
      cr_assert_eq(lam_layer_init(l, ctx, lam_rng_key_make(0), dt, &vars), LAM_OK, "%s", lam_last_error());
      lam_tensor *yl = NULL;
      cr_assert_eq(lam_layer_apply(l, vars, t, NULL, &yl), LAM_OK, "%s", lam_last_error());
      double *gl = to_f64(yl);
      tu_assert_close_f64(gl, got, n * dims, 0, 0, "sinusoidal layer");
      free(gl);
      free(got);
      lam_tensor_free(yl);
      lam_vars_free(vars);
      lam_layer_free(l);
      lam_tensor_free(t);
      lam_tensor_free(y);
    }
    free(want);
    free(x);
  }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

static lam_tensor *sin_fn(lam_tensor *const *xs, int n, void *user) {
  return lam_sinusoidal_encoding(xs[0], 8, user);
}

Test(sinusoidal, gradcheck_and_bad_input) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  tu_rng r = tu_rng_make(43);
  if (lam_ctx_device(ctx)->fp64) {
    lam_tensor *x = tu_rand_f64(ctx, &r, 1, (int64_t[]){5}, 0, 3);
    lam_sinusoidal_opts o = lam_sinusoidal_defaults();
    o.cos_first = true;
    tu_gradcheck(ctx, sin_fn, &o, &x, 1, 1e-6, 1e-6, 1, 1e-4, "sinusoidal");
    lam_tensor_free(x);
  }
  lam_tensor *x = lam_tensor_zeros(ctx, LAM_F32, 1, (int64_t[]){5});
  lam_tensor *xi = lam_tensor_zeros(ctx, LAM_I32, 1, (int64_t[]){5});
  lam_error_clear();
  tu_assert_fails(lam_sinusoidal_encoding(NULL, 8, NULL), LAM_ERR_NULL, "x is NULL");
  tu_assert_fails(lam_sinusoidal_encoding(xi, 8, NULL), LAM_ERR_DTYPE, "need f32 or f64");
  tu_assert_fails(lam_sinusoidal_encoding(x, 7, NULL), LAM_ERR_INVALID_ARGUMENT, "dims 7");
  tu_assert_fails(lam_sinusoidal_encoding(x, 2, NULL), LAM_ERR_INVALID_ARGUMENT, "dims 2");
  lam_sinusoidal_opts o = lam_sinusoidal_defaults();
  o.min_freq = 0;
  tu_assert_fails(lam_sinusoidal_encoding(x, 8, &o), LAM_ERR_INVALID_ARGUMENT, "min_freq");
  tu_assert_fails(lam_nn_sinusoidal_encoding(6 + 1, NULL), LAM_ERR_INVALID_ARGUMENT, "dims 7");
  lam_tensor_free(x);
  lam_tensor_free(xi);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- ALiBi -------------------------------------------------------------------------- */

Test(alibi, slopes_bias_and_layer) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  for (int64_t H = 1; H <= 12; H += 11) {
    lam_tensor *s = lam_alibi_slopes(ctx, LAM_F32, H);
    cr_assert(s, "%s", lam_last_error());
    float *sv = tu_read_f32(s);
    for (int64_t h = 0; h < H; h++) /* MLX: ((2^8)^(1/H))^-(h+1) */
      cr_assert(fabs(sv[h] - pow(pow(256.0, 1.0 / (double)H), -(double)(h + 1))) < 1e-7, "slope %lld", (long long)h);
    free(sv);
    lam_tensor_free(s);
  }
  int64_t H = 3, Sq = 4, Sk = 7, off = 3;
  lam_tensor *b = lam_alibi_bias(ctx, LAM_F64, H, Sq, Sk, off);
  cr_assert(b, "%s", lam_last_error());
  cr_assert_eq(lam_tensor_ndim(b), 4);
  double *bv = tu_read_f64(b);
  for (int64_t h = 0; h < H; h++)
    for (int64_t i = 0; i < Sq; i++)
      for (int64_t j = 0; j < Sk; j++) {
        double want = -exp2(-8.0 * (double)(h + 1) / (double)H) * fabs((double)(i + off - j));
        cr_assert(fabs(bv[(h * Sq + i) * Sk + j] - want) < 1e-15);
      }
  free(bv);
  /* the layer adds the bias to scores [B, H, Sq, Sk] */
  tu_rng r = tu_rng_make(44);
  lam_tensor *scores = tu_rand_f64(ctx, &r, 4, (int64_t[]){2, H, Sq, Sk}, -1, 1);
  lam_layer *l = lam_nn_alibi(off);
  lam_vars *vars = NULL;
  cr_assert_eq(lam_layer_init(l, ctx, lam_rng_key_make(0), LAM_F64, &vars), LAM_OK);
  lam_tensor *y = NULL;
  cr_assert_eq(lam_layer_apply(l, vars, scores, NULL, &y), LAM_OK, "%s", lam_last_error());
  lam_tensor *want = lam_add(scores, b);
  double *a1 = tu_read_f64(y), *a2 = tu_read_f64(want);
  tu_assert_close_f64(a1, a2, 2 * H * Sq * Sk, 0, 0, "alibi layer");
  free(a1);
  free(a2);
  lam_tensor *s3 = lam_tensor_zeros(ctx, LAM_F64, 3, (int64_t[]){H, Sq, Sk}), *bad = NULL;
  tu_assert_status(lam_layer_apply(l, vars, s3, NULL, &bad), LAM_ERR_SHAPE, "alibi expects scores");
  tu_assert_fails(lam_alibi_slopes(NULL, LAM_F32, 4), LAM_ERR_NULL, "ctx is NULL");
  tu_assert_fails(lam_alibi_slopes(ctx, LAM_I32, 4), LAM_ERR_DTYPE, "need f32 or f64");
  tu_assert_fails(lam_alibi_slopes(ctx, LAM_F32, 0), LAM_ERR_INVALID_ARGUMENT, "num_heads 0");
  tu_assert_fails(lam_alibi_bias(ctx, LAM_F32, 2, 0, 3, 0), LAM_ERR_SHAPE, "lam_alibi_bias");
  lam_vars_free(vars);
  lam_layer_free(l);
  lam_tensor *ts[] = {b, scores, y, want, s3};
  for (int i = 0; i < 5; i++) lam_tensor_free(ts[i]);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}
