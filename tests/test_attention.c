/* test_attention.c (src/ops/attention.c, attention_backward.c, kv_cache.c):
 * lam_scaled_dot_product_attention (fused kernel, both layouts, and the
 * unfused ops path) against a plain C reference in double for a table of
 * shapes (seq 1, 3, 7, 17, 33, 64, 100, 130, 257; head dims 1..300, v_dim != head_dim),
 * grouped-query heads, causal masks with offsets, key padding masks (u8 and
 * i32), bool and float masks of every broadcast rank, ALiBi and custom
 * scales, in f32 and f64; PyTorch golden outputs and gradients; gradient
 * checks; in-kernel dropout equal to the unfused path's
 * lam_random_bernoulli mask; fully masked rows; the KV cache; bad input.
 * Every test of the fused path runs under both layouts of its kernels (CPU
 * and GPU, LAMINA_ATTENTION_LAYOUT=cpu|gpu): see BOTH_LAYOUTS. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "attention_common.h"

/* ---- the two layouts ----------------------------------------------------------------- */

/* The fused kernels have a CPU and a GPU layout (cl/attention.cl), chosen
 * from the device or LAMINA_ATTENTION_LAYOUT=cpu|gpu when the context is made.
 * BOTH_LAYOUTS(suite, name) makes the tests `name` (CPU layout) and
 * `name_gpu_layout` of the function name_body, which runs with the variable
 * set and restored after. g_layout names the layout of the running body. */
static const char *g_layout = "";

static void with_layout(const char *layout, void (*body)(void)) {
  const char *old = getenv("LAMINA_ATTENTION_LAYOUT");
  char *saved = old ? strcpy(malloc(strlen(old) + 1), old) : NULL;
  setenv("LAMINA_ATTENTION_LAYOUT", layout, 1);
  g_layout = layout;
  body();
  g_layout = "";
  if (saved) setenv("LAMINA_ATTENTION_LAYOUT", saved, 1);
  else unsetenv("LAMINA_ATTENTION_LAYOUT");
  free(saved);
}

static bool gpu_layout(void) { return strcmp(g_layout, "gpu") == 0; }

#define BOTH_LAYOUTS(suite, name)                                          \
  Test(suite, name) { with_layout("cpu", name##_body); }                   \
  Test(suite, name##_gpu_layout) { with_layout("gpu", name##_body); }


/* ---- the C reference ------------------------------------------------------------ */

typedef struct cfg {
  int B, H, Hkv, Sq, Sk, D, Dv;
  int causal, q_off;
  int kpm;       /* 0 none, 1 u8, 2 i32 key padding mask */
  int mask;      /* 0 none, 1 bool [Sq,Sk], 2 float [B,1,Sq,Sk], 3 float [H,Sq,Sk], 4 bool [B,H,Sq,Sk], 5 float [Sk] */
  int alibi;
  double scale;  /* 0: default */
} cfg;

/* Host-side inputs of one case (masks as full [B,H,Sq,Sk] views for the reference). */
typedef struct inputs {
  double *q, *k, *v, *kpm, *mask;
  int64_t mshape[4];
  int mndim;
} inputs;

static void mask_shape(const cfg *c, int64_t *shape, int *ndim) {
  switch (c->mask) {
  case 1: *ndim = 2; shape[0] = c->Sq; shape[1] = c->Sk; break;
  case 2: *ndim = 4; shape[0] = c->B; shape[1] = 1; shape[2] = c->Sq; shape[3] = c->Sk; break;
  case 3: *ndim = 3; shape[0] = c->H; shape[1] = c->Sq; shape[2] = c->Sk; break;
  case 4: *ndim = 4; shape[0] = c->B; shape[1] = c->H; shape[2] = c->Sq; shape[3] = c->Sk; break;
  case 5: *ndim = 1; shape[0] = c->Sk; break;
  default: *ndim = 0;
  }
}

static void make_inputs(const cfg *c, tu_rng *r, inputs *in) {
  memset(in, 0, sizeof *in);
  in->q = tu_rand_vec(r, (int64_t)c->B * c->H * c->Sq * c->D, -1, 1);
  in->k = tu_rand_vec(r, (int64_t)c->B * c->Hkv * c->Sk * c->D, -1, 1);
  in->v = tu_rand_vec(r, (int64_t)c->B * c->Hkv * c->Sk * c->Dv, -1, 1);
  if (c->kpm) {
    in->kpm = tu_rand_vec(r, (int64_t)c->B * c->Sk, 0, 1);
    for (int64_t i = 0; i < (int64_t)c->B * c->Sk; i++) in->kpm[i] = in->kpm[i] < 0.3 ? 0 : (i % 3) + 1;
  }
  mask_shape(c, in->mshape, &in->mndim);
  if (c->mask) {
    int64_t n = tu_numel(in->mndim, in->mshape);
    in->mask = tu_rand_vec(r, n, -2, 2);
    if (c->mask == 1 || c->mask == 4)
      for (int64_t i = 0; i < n; i++) in->mask[i] = in->mask[i] < -1.0 ? 0 : 1;
  }
}

static void free_inputs(inputs *in) {
  free(in->q);
  free(in->k);
  free(in->v);
  free(in->kpm);
  free(in->mask);
}

/* Mask value at (b, h, i, j) through right-aligned broadcasting. */
static double mask_at(const inputs *in, int b, int h, int i, int j) {
  int64_t full[4] = {b, h, i, j}, dims4[4] = {1, 1, 1, 1}, idx = 0;
  for (int d = 0; d < in->mndim; d++) dims4[4 - in->mndim + d] = in->mshape[d];
  for (int d = 0; d < 4; d++) idx = idx * dims4[d] + (dims4[d] == 1 ? 0 : full[d]);
  return in->mask[idx];
}

static double *ref_sdpa(const cfg *c, const inputs *in) {
  int G = c->H / c->Hkv;
  double scale = c->scale ? c->scale : 1.0 / sqrt((double)c->D);
  double *o = calloc((size_t)c->B * c->H * c->Sq * c->Dv, sizeof *o);
  double *s = malloc((size_t)c->Sk * sizeof *s);
  for (int b = 0; b < c->B; b++)
    for (int h = 0; h < c->H; h++)
      for (int i = 0; i < c->Sq; i++) {
        int hk = h / G;
        double mx = -INFINITY;
        double slope = exp2(-8.0 * (h + 1) / c->H);
        for (int j = 0; j < c->Sk; j++) {
          double a = 0;
          for (int d = 0; d < c->D; d++)
            a += in->q[(((int64_t)b * c->H + h) * c->Sq + i) * c->D + d] *
                 in->k[(((int64_t)b * c->Hkv + hk) * c->Sk + j) * c->D + d];
          a *= scale;
          if (c->mask == 2 || c->mask == 3 || c->mask == 5) a += mask_at(in, b, h, i, j);
          if ((c->mask == 1 || c->mask == 4) && mask_at(in, b, h, i, j) == 0) a = -INFINITY;
          if (c->alibi) a -= slope * fabs((double)(i + c->q_off - j));
          if (c->causal && j > i + c->q_off) a = -INFINITY;
          if (c->kpm && in->kpm[(int64_t)b * c->Sk + j] == 0) a = -INFINITY;
          s[j] = a;
          mx = fmax(mx, a);
        }
        if (isinf(mx)) continue; /* every key masked: zeros */
        double l = 0;
        for (int j = 0; j < c->Sk; j++) l += s[j] = exp(s[j] - mx);
        for (int d = 0; d < c->Dv; d++) {
          double a = 0;
          for (int j = 0; j < c->Sk; j++)
            a += s[j] * in->v[(((int64_t)b * c->Hkv + hk) * c->Sk + j) * c->Dv + d];
          o[(((int64_t)b * c->H + h) * c->Sq + i) * c->Dv + d] = a / l;
        }
      }
  free(s);
  return o;
}

/* Device tensors of one case. */
typedef struct dev {
  lam_tensor *q, *k, *v, *kpm, *mask;
} dev;

static void make_dev(lam_ctx *ctx, lam_dtype dt, const cfg *c, const inputs *in, dev *d) {
  memset(d, 0, sizeof *d);
  d->q = tu_from_f64(ctx, dt, 4, (int64_t[]){c->B, c->H, c->Sq, c->D}, in->q);
  d->k = tu_from_f64(ctx, dt, 4, (int64_t[]){c->B, c->Hkv, c->Sk, c->D}, in->k);
  d->v = tu_from_f64(ctx, dt, 4, (int64_t[]){c->B, c->Hkv, c->Sk, c->Dv}, in->v);
  if (c->kpm) {
    int64_t n = (int64_t)c->B * c->Sk;
    if (c->kpm == 1) {
      unsigned char *m = malloc((size_t)n);
      for (int64_t i = 0; i < n; i++) m[i] = (unsigned char)in->kpm[i];
      d->kpm = lam_tensor_from_host(ctx, LAM_U8, 2, (int64_t[]){c->B, c->Sk}, m);
      free(m);
    } else {
      int32_t *m = malloc((size_t)n * 4);
      for (int64_t i = 0; i < n; i++) m[i] = (int32_t)in->kpm[i] * 1000; /* any nonzero keeps */
      d->kpm = lam_tensor_from_host(ctx, LAM_I32, 2, (int64_t[]){c->B, c->Sk}, m);
      free(m);
    }
    cr_assert(d->kpm);
  }
  if (c->mask == 1 || c->mask == 4) {
    int64_t n = tu_numel(in->mndim, in->mshape);
    unsigned char *m = malloc((size_t)n);
    for (int64_t i = 0; i < n; i++) m[i] = (unsigned char)in->mask[i];
    d->mask = lam_tensor_from_host(ctx, LAM_U8, in->mndim, in->mshape, m);
    free(m);
    cr_assert(d->mask);
  } else if (c->mask) {
    d->mask = tu_from_f64(ctx, dt, in->mndim, in->mshape, in->mask);
  }
}

static void free_dev(dev *d) {
  lam_tensor_free(d->q);
  lam_tensor_free(d->k);
  lam_tensor_free(d->v);
  lam_tensor_free(d->kpm);
  lam_tensor_free(d->mask);
}

static lam_attention_opts opts_of(const cfg *c, const dev *d, lam_attention_impl impl) {
  lam_attention_opts o = lam_attention_defaults();
  o.scale = c->scale;
  o.causal = c->causal;
  o.q_offset = c->q_off;
  o.key_padding_mask = d->kpm;
  o.mask = d->mask;
  o.alibi = c->alibi;
  o.impl = impl;
  return o;
}

static const cfg CASES[] = {
    /* B  H Hkv Sq  Sk   D  Dv  causal q_off kpm mask alibi scale */
    {1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0},
    {2, 3, 3, 7, 7, 16, 16, 0, 0, 0, 0, 0, 0},
    {1, 4, 2, 33, 45, 40, 24, 1, 0, 0, 0, 0, 0},
    {2, 2, 1, 3, 100, 8, 5, 0, 0, 1, 0, 0, 0},
    {1, 2, 2, 64, 64, 64, 64, 1, 0, 2, 1, 0, 0},
    {2, 4, 4, 17, 33, 32, 32, 0, 0, 0, 2, 0, 0.7},
    {1, 6, 3, 7, 257, 80, 80, 0, 0, 1, 3, 0, 0},
    {2, 2, 2, 19, 19, 7, 9, 1, 0, 0, 4, 1, 0},
    {1, 8, 1, 12, 30, 33, 17, 1, 18, 0, 5, 1, 0},
    {1, 2, 2, 5, 40, 16, 16, 1, -2, 1, 0, 0, 0}, /* negative offset: early rows see no key */
    {1, 2, 1, 13, 9, 200, 130, 1, 0, 0, 0, 0, 0}, /* the 256-column program */
    {1, 1, 1, 4, 6, 300, 12, 0, 0, 0, 0, 0, 0},   /* beyond the fused kernel: unfused under AUTO */
    /* odd sizes for the GPU layout's work-groups (64 rows) and tiles (<= 32 keys) */
    {1, 2, 1, 1, 17, 24, 24, 1, 16, 1, 0, 0, 0},  /* decode: one query row */
    {2, 3, 3, 17, 33, 72, 72, 0, 0, 2, 2, 1, 0},
    {1, 4, 2, 33, 17, 8, 24, 1, 0, 0, 1, 0, 0},   /* seq_q > seq_k */
    {1, 1, 1, 33, 1, 72, 8, 0, 0, 0, 5, 0, 1.3},  /* one key */
    {1, 2, 1, 130, 45, 24, 8, 1, 3, 0, 4, 1, 0},  /* three query blocks */
};

static void run_case(lam_ctx *ctx, lam_dtype dt, const cfg *c, int idx) {
  tu_rng r = tu_rng_make(100 + (uint64_t)idx);
  inputs in;
  make_inputs(c, &r, &in);
  if (dt == LAM_F32) { /* the reference sees what the device sees */
    int64_t nq = (int64_t)c->B * c->H * c->Sq * c->D, nk = (int64_t)c->B * c->Hkv * c->Sk * c->D;
    int64_t nv = (int64_t)c->B * c->Hkv * c->Sk * c->Dv;
    for (int64_t i = 0; i < nq; i++) in.q[i] = (float)in.q[i];
    for (int64_t i = 0; i < nk; i++) in.k[i] = (float)in.k[i];
    for (int64_t i = 0; i < nv; i++) in.v[i] = (float)in.v[i];
    if (in.mask)
      for (int64_t i = 0; i < tu_numel(in.mndim, in.mshape); i++) in.mask[i] = (float)in.mask[i];
  }
  double *want = ref_sdpa(c, &in);
  dev d;
  make_dev(ctx, dt, c, &in, &d);
  int64_t n = (int64_t)c->B * c->H * c->Sq * c->Dv;
  for (int impl = LAM_ATTENTION_AUTO; impl <= LAM_ATTENTION_UNFUSED; impl++) {
    if (impl == LAM_ATTENTION_FUSED && c->D > LAM_ATTENTION_FUSED_MAX_HEAD_DIM) continue;
    if (impl == LAM_ATTENTION_UNFUSED && gpu_layout()) continue; /* no layouts there */
    lam_attention_opts o = opts_of(c, &d, (lam_attention_impl)impl);
    lam_tensor *y = lam_scaled_dot_product_attention(d.q, d.k, d.v, &o);
    cr_assert(y, "case %d impl %d: %s", idx, impl, lam_last_error());
    cr_assert_eq(lam_tensor_ndim(y), 4);
    cr_assert_eq(lam_tensor_dim(y, 3), c->Dv);
    cr_assert_eq(lam_tensor_dim(y, 2), c->Sq);
    double *got = tu_to_f64(y);
    char what[96];
    snprintf(what, sizeof what, "case %d %s impl %d", idx, lam_dtype_name(dt), impl);
    if (dt == LAM_F32) tu_assert_close_f64(got, want, n, 2e-5, 2e-4, what);
    else tu_assert_close_f64(got, want, n, 1e-12, 1e-10, what);
    free(got);
    lam_tensor_free(y);
  }
  free_dev(&d);
  free(want);
  free_inputs(&in);
}

static void matches_reference_f32_body(void) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  for (int i = 0; i < (int)(sizeof CASES / sizeof CASES[0]); i++) run_case(ctx, LAM_F32, &CASES[i], i);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}
BOTH_LAYOUTS(sdpa, matches_reference_f32)

static void matches_reference_f64_body(void) {
  lam_ctx *ctx = tu_ctx();
  if (!lam_ctx_device(ctx)->fp64) {
    lam_ctx_free(ctx);
    cr_skip_test("no fp64");
  }
  tu_mark m = tu_mark_now(ctx);
  for (int i = 0; i < (int)(sizeof CASES / sizeof CASES[0]); i++)
    if (!tu_small() || CASES[i].Sk < 64) run_case(ctx, LAM_F64, &CASES[i], i);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}
BOTH_LAYOUTS(sdpa, matches_reference_f64)

static void rank3_inputs_body(void) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  tu_rng r = tu_rng_make(7);
  lam_tensor *q = tu_rand_f32(ctx, &r, 3, (int64_t[]){4, 9, 16}, -1, 1);
  lam_tensor *k = tu_rand_f32(ctx, &r, 3, (int64_t[]){2, 11, 16}, -1, 1);
  lam_tensor *v = tu_rand_f32(ctx, &r, 3, (int64_t[]){2, 11, 8}, -1, 1);
  lam_tensor *y = lam_scaled_dot_product_attention(q, k, v, NULL);
  cr_assert(y, "%s", lam_last_error());
  cr_assert_eq(lam_tensor_ndim(y), 3);
  int64_t want[3] = {4, 9, 8};
  for (int i = 0; i < 3; i++) cr_assert_eq(lam_tensor_dim(y, i), want[i]);
  lam_tensor *q4 = lam_tensor_reshape(q, 4, (int64_t[]){1, 4, 9, 16});
  lam_tensor *k4 = lam_tensor_reshape(k, 4, (int64_t[]){1, 2, 11, 16});
  lam_tensor *v4 = lam_tensor_reshape(v, 4, (int64_t[]){1, 2, 11, 8});
  lam_tensor *y4 = lam_scaled_dot_product_attention(q4, k4, v4, NULL);
  float *a = tu_read_f32(y), *b = tu_read_f32(y4);
  tu_assert_close_f32(a, b, 4 * 9 * 8, 0, 0, "rank 3 vs rank 4");
  free(a);
  free(b);
  lam_tensor *ts[] = {q, k, v, y, q4, k4, v4, y4};
  for (int i = 0; i < 8; i++) lam_tensor_free(ts[i]);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}
BOTH_LAYOUTS(sdpa, rank3_inputs)

/* LAMINA_ATTENTION_LAYOUT switches the kernels: the layouts agree within
 * rounding but not bit for bit (they sum in other orders), and without the
 * variable the device's type decides (Oclgrind reports a GPU, PoCL a CPU). */
Test(sdpa, layout_variable_selects_kernels) {
  /* The variable is read when a context is made (the tuning table): one
   * context per setting, the same random inputs in each. */
  int64_t n = 2 * 4 * 37 * 24;
  lam_attention_opts o = lam_attention_defaults();
  o.causal = true;
  o.impl = LAM_ATTENTION_FUSED;
  const char *layouts[3] = {"cpu", "gpu", NULL};
  float *y[3];
  lam_device_type type = LAM_DEVICE_CPU;
  for (int l = 0; l < 3; l++) {
    if (layouts[l]) setenv("LAMINA_ATTENTION_LAYOUT", layouts[l], 1);
    else unsetenv("LAMINA_ATTENTION_LAYOUT");
    lam_ctx *ctx = tu_ctx();
    type = lam_ctx_device(ctx)->type;
    tu_mark m = tu_mark_now(ctx);
    tu_rng r = tu_rng_make(12);
    lam_tensor *q = tu_rand_f32(ctx, &r, 4, (int64_t[]){2, 4, 37, 40}, -1, 1);
    lam_tensor *k = tu_rand_f32(ctx, &r, 4, (int64_t[]){2, 2, 45, 40}, -1, 1);
    lam_tensor *v = tu_rand_f32(ctx, &r, 4, (int64_t[]){2, 2, 45, 24}, -1, 1);
    lam_tensor *t = lam_scaled_dot_product_attention(q, k, v, &o);
    cr_assert(t, "%s", lam_last_error());
    y[l] = tu_read_f32(t);
    lam_tensor *ts[] = {q, k, v, t};
    for (int i = 0; i < 4; i++) lam_tensor_free(ts[i]);
    tu_assert_no_leak(ctx, m);
    lam_ctx_free(ctx);
  }
  tu_assert_close_f32(y[1], y[0], n, 2e-6, 2e-5, "gpu vs cpu layout");
  int differ = 0;
  for (int64_t i = 0; i < n; i++) differ += y[0][i] != y[1][i];
  cr_assert(differ > 0, "the two layouts gave identical bits: the variable did not switch kernels");
  const float *want = type == LAM_DEVICE_GPU ? y[1] : y[0];
  for (int64_t i = 0; i < n; i++) cr_assert_eq(y[2][i], want[i], "default layout at %lld", (long long)i);
  for (int l = 0; l < 3; l++) free(y[l]);
}

/* ALiBi in the kernel equals the explicit lam_alibi_bias added as a mask. */
static void alibi_equals_explicit_bias_body(void) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  tu_rng r = tu_rng_make(8);
  int64_t H = 6, Sq = 5, Sk = 23;
  lam_tensor *q = tu_rand_f32(ctx, &r, 4, (int64_t[]){2, H, Sq, 16}, -1, 1);
  lam_tensor *k = tu_rand_f32(ctx, &r, 4, (int64_t[]){2, H, Sk, 16}, -1, 1);
  lam_tensor *v = tu_rand_f32(ctx, &r, 4, (int64_t[]){2, H, Sk, 16}, -1, 1);
  lam_attention_opts o = lam_attention_defaults();
  o.alibi = true;
  o.causal = true;
  o.q_offset = Sk - Sq;
  lam_tensor *a = lam_scaled_dot_product_attention(q, k, v, &o);
  lam_tensor *bias = lam_alibi_bias(ctx, LAM_F32, H, Sq, Sk, Sk - Sq);
  o.alibi = false;
  o.mask = bias;
  lam_tensor *b = lam_scaled_dot_product_attention(q, k, v, &o);
  cr_assert(a && b, "%s", lam_last_error());
  float *x = tu_read_f32(a), *y = tu_read_f32(b);
  tu_assert_close_f32(x, y, 2 * H * Sq * 16, 1e-6, 1e-5, "alibi in kernel vs bias");
  free(x);
  free(y);
  lam_tensor *ts[] = {q, k, v, a, bias, b};
  for (int i = 0; i < 6; i++) lam_tensor_free(ts[i]);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}
BOTH_LAYOUTS(sdpa, alibi_equals_explicit_bias)

/* ---- gradients ------------------------------------------------------------------------ */

typedef struct gc_user {
  lam_attention_opts o;
  int with_mask; /* xs[3] is a float mask */
} gc_user;

static lam_tensor *gc_fn(lam_tensor *const *xs, int n, void *user) {
  gc_user *u = user;
  lam_attention_opts o = u->o;
  if (u->with_mask) o.mask = xs[3];
  return lam_scaled_dot_product_attention(xs[0], xs[1], xs[2], &o);
}

static void gradcheck_case(lam_ctx *ctx, const cfg *c, lam_attention_impl impl, int idx) {
  tu_rng r = tu_rng_make(300 + (uint64_t)idx);
  inputs in;
  make_inputs(c, &r, &in);
  dev d;
  make_dev(ctx, LAM_F64, c, &in, &d);
  gc_user u;
  u.o = opts_of(c, &d, impl);
  u.with_mask = c->mask == 2 || c->mask == 3 || c->mask == 5;
  lam_tensor *xs[4] = {d.q, d.k, d.v, d.mask};
  char what[64];
  snprintf(what, sizeof what, "sdpa gradcheck case %d impl %d", idx, (int)impl);
  tu_gradcheck(ctx, gc_fn, &u, xs, u.with_mask ? 4 : 3, 1e-6, 1e-6, 1, 2e-3, what);
  free_dev(&d);
  free_inputs(&in);
}

static const cfg GC_CASES[] = {
    {1, 2, 1, 5, 6, 4, 3, 1, 0, 1, 0, 0, 0},
    {2, 2, 2, 3, 7, 5, 5, 0, 0, 0, 3, 1, 0.9},
    {1, 4, 2, 6, 4, 3, 2, 1, 2, 0, 2, 0, 0},
    {1, 1, 1, 4, 4, 2, 3, 0, 0, 2, 4, 0, 0},
    {1, 1, 1, 17, 5, 8, 3, 1, 2, 1, 5, 1, 0},
    {1, 2, 1, 3, 33, 2, 2, 0, 0, 0, 2, 0, 0}, /* two key tiles */
};

static void gradcheck_fused_body(void) {
  lam_ctx *ctx = tu_ctx();
  if (!lam_ctx_device(ctx)->fp64) {
    lam_ctx_free(ctx);
    cr_skip_test("no fp64");
  }
  tu_mark m = tu_mark_now(ctx);
  for (int i = 0; i < (int)(sizeof GC_CASES / sizeof GC_CASES[0]); i++)
    gradcheck_case(ctx, &GC_CASES[i], LAM_ATTENTION_FUSED, i);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}
BOTH_LAYOUTS(sdpa, gradcheck_fused)

Test(sdpa, gradcheck_unfused) {
  lam_ctx *ctx = tu_ctx();
  if (!lam_ctx_device(ctx)->fp64) {
    lam_ctx_free(ctx);
    cr_skip_test("no fp64");
  }
  tu_mark m = tu_mark_now(ctx);
  gradcheck_case(ctx, &GC_CASES[0], LAM_ATTENTION_UNFUSED, 0);
  gradcheck_case(ctx, &GC_CASES[2], LAM_ATTENTION_UNFUSED, 2);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* Gradients of fused and unfused agree on larger shapes (every option on). */
typedef struct vjp_user {
  lam_attention_opts o;
  lam_tensor *w;
  int with_mask;
} vjp_user;

static lam_tensor *vjp_fn(lam_tensor *const *xs, int n, void *user) {
  vjp_user *u = user;
  lam_attention_opts o = u->o;
  if (u->with_mask) o.mask = xs[3];
  lam_tensor *y = lam_scaled_dot_product_attention(xs[0], xs[1], xs[2], &o);
  lam_tensor *p = lam_mul(y, u->w);
  lam_tensor *s = lam_sum(p, 0, NULL, 0);
  lam_tensor_free(y);
  lam_tensor_free(p);
  return s;
}

static void grads_of(lam_ctx *ctx, vjp_user *u, lam_tensor *const *xs, int n, lam_attention_impl impl,
                     double **g) {
  u->o.impl = impl;
  lam_tensor *gt[4] = {0}, *loss = NULL;
  cr_assert_eq(lam_grad(ctx, vjp_fn, u, xs, n, &loss, gt), LAM_OK, "%s", lam_last_error());
  for (int i = 0; i < n; i++) {
    g[i] = tu_to_f64(gt[i]);
    lam_tensor_free(gt[i]);
  }
  lam_tensor_free(loss);
}

static void fused_vs_unfused_grads(lam_ctx *ctx, const cfg *c, double dropout, int idx) {
  tu_rng r = tu_rng_make(500 + (uint64_t)idx);
  inputs in;
  make_inputs(c, &r, &in);
  dev d;
  make_dev(ctx, LAM_F32, c, &in, &d);
  vjp_user u;
  u.o = opts_of(c, &d, LAM_ATTENTION_FUSED);
  u.o.dropout = dropout;
  u.o.dropout_key = lam_rng_key_make(99 + (uint64_t)idx);
  u.with_mask = c->mask == 2 || c->mask == 3 || c->mask == 5;
  u.w = tu_rand_f32(ctx, &r, 4, (int64_t[]){c->B, c->H, c->Sq, c->Dv}, -1, 1);
  lam_tensor *xs[4] = {d.q, d.k, d.v, d.mask};
  int n = u.with_mask ? 4 : 3;
  double *gf[4], *gu[4];
  grads_of(ctx, &u, xs, n, LAM_ATTENTION_FUSED, gf);
  grads_of(ctx, &u, xs, n, LAM_ATTENTION_UNFUSED, gu);
  for (int i = 0; i < n; i++) {
    char what[80];
    snprintf(what, sizeof what, "case %d dropout %g grad %d fused vs unfused", idx, dropout, i);
    tu_assert_close_f64(gf[i], gu[i], lam_tensor_numel(xs[i]), 2e-5, 2e-4, what);
    free(gf[i]);
    free(gu[i]);
  }
  lam_tensor_free(u.w);
  free_dev(&d);
  free_inputs(&in);
}

static void fused_grads_match_unfused_body(void) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  static const cfg cs[] = {
      {2, 4, 2, 37, 45, 40, 24, 1, 0, 0, 0, 0, 0},
      {1, 2, 1, 33, 70, 32, 32, 0, 0, 1, 2, 1, 0},
      {2, 2, 2, 64, 64, 80, 80, 1, 0, 0, 3, 0, 0},
      {1, 3, 3, 7, 100, 16, 16, 1, 93, 2, 1, 0, 0},
      {1, 2, 1, 20, 30, 160, 144, 1, 0, 0, 0, 1, 0}, /* the 256-column program */
  };
  int nc = tu_small() ? 2 : 5;
  for (int i = 0; i < nc; i++) fused_vs_unfused_grads(ctx, &cs[i], 0.0, i);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}
BOTH_LAYOUTS(sdpa, fused_grads_match_unfused)

/* ---- dropout ----------------------------------------------------------------------------- */

/* The fused kernel drops exactly the weights lam_random_bernoulli(key, 1 - p)
 * drops (the unfused path uses that tensor): outputs and gradients agree. */
static void dropout_matches_bernoulli_mask_body(void) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  static const cfg cs[] = {
      {2, 4, 2, 37, 45, 40, 24, 1, 0, 0, 0, 0, 0},
      {1, 2, 2, 13, 67, 16, 16, 0, 0, 1, 2, 0, 0},
  };
  for (int i = 0; i < 2; i++) fused_vs_unfused_grads(ctx, &cs[i], 0.3, 10 + i);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}
BOTH_LAYOUTS(sdpa, dropout_matches_bernoulli_mask)

/* Dropout statistics: with v = 1 the output row sums the kept weights / (1 - p),
 * whose mean is 1; a fixed key is reproducible and another key differs. */
static void dropout_statistics_body(void) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  tu_rng r = tu_rng_make(9);
  int64_t Sq = 64, Sk = 256;
  lam_tensor *q = tu_rand_f32(ctx, &r, 4, (int64_t[]){1, 4, Sq, 8}, -0.1, 0.1);
  lam_tensor *k = tu_rand_f32(ctx, &r, 4, (int64_t[]){1, 4, Sk, 8}, -0.1, 0.1);
  lam_tensor *v = lam_tensor_full(ctx, LAM_F32, 4, (int64_t[]){1, 4, Sk, 1}, 1.0);
  lam_attention_opts o = lam_attention_defaults();
  o.dropout = 0.25;
  o.dropout_key = lam_rng_key_make(5);
  lam_tensor *a = lam_scaled_dot_product_attention(q, k, v, &o);
  lam_tensor *b = lam_scaled_dot_product_attention(q, k, v, &o);
  o.dropout_key = lam_rng_key_make(6);
  lam_tensor *c = lam_scaled_dot_product_attention(q, k, v, &o);
  cr_assert(a && b && c, "%s", lam_last_error());
  float *x = tu_read_f32(a), *y = tu_read_f32(b), *z = tu_read_f32(c);
  double mean = 0;
  int differ = 0;
  for (int i = 0; i < 4 * Sq; i++) {
    cr_assert_eq(x[i], y[i], "same key, same output");
    differ += x[i] != z[i];
    mean += x[i];
  }
  mean /= 4 * Sq;
  cr_assert(fabs(mean - 1.0) < 0.02, "mean of kept weights / (1 - p) is %g", mean);
  cr_assert(differ > 4 * Sq / 2, "another key changes the output (%d rows differ)", differ);
  free(x);
  free(y);
  free(z);
  lam_tensor *ts[] = {q, k, v, a, b, c};
  for (int i = 0; i < 6; i++) lam_tensor_free(ts[i]);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}
BOTH_LAYOUTS(sdpa, dropout_statistics)

/* ---- fully masked rows ---------------------------------------------------------------------- */

typedef struct fm_user {
  lam_attention_opts o;
} fm_user;

static lam_tensor *fm_fn(lam_tensor *const *xs, int n, void *user) {
  fm_user *u = user;
  lam_tensor *y = lam_scaled_dot_product_attention(xs[0], xs[1], xs[2], &u->o);
  lam_tensor *s = lam_sum(y, 0, NULL, 0);
  lam_tensor_free(y);
  return s;
}

static void fully_masked_rows_give_zeros_body(void) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  tu_rng r = tu_rng_make(10);
  int64_t B = 2, H = 2, Sq = 9, Sk = 40, D = 16;
  lam_tensor *q = tu_rand_f32(ctx, &r, 4, (int64_t[]){B, H, Sq, D}, -1, 1);
  lam_tensor *k = tu_rand_f32(ctx, &r, 4, (int64_t[]){B, H, Sk, D}, -1, 1);
  lam_tensor *v = tu_rand_f32(ctx, &r, 4, (int64_t[]){B, H, Sk, D}, 0.5, 1);
  unsigned char keep[2 * 40];
  for (int j = 0; j < Sk; j++) {
    keep[j] = 0;           /* batch 0: every key padded */
    keep[Sk + j] = j >= 5; /* batch 1: causal rows i < 5 see only padded keys */
  }
  lam_tensor *kpm = lam_tensor_from_host(ctx, LAM_U8, 2, (int64_t[]){B, Sk}, keep);
  for (int impl = LAM_ATTENTION_FUSED; impl <= (gpu_layout() ? LAM_ATTENTION_FUSED : LAM_ATTENTION_UNFUSED); impl++) {
    fm_user u;
    u.o = lam_attention_defaults();
    u.o.impl = (lam_attention_impl)impl;
    u.o.key_padding_mask = kpm;
    u.o.causal = true;
    lam_tensor *y = lam_scaled_dot_product_attention(q, k, v, &u.o);
    cr_assert(y, "%s", lam_last_error());
    float *o = tu_read_f32(y);
    for (int64_t b = 0; b < B; b++)
      for (int64_t h = 0; h < H; h++)
        for (int64_t i = 0; i < Sq; i++)
          for (int64_t d = 0; d < D; d++) {
            float x = o[((b * H + h) * Sq + i) * D + d];
            if (b == 0 || i < 5) cr_assert_eq(x, 0.0f, "impl %d b %lld row %lld: %g", impl, (long long)b, (long long)i, x);
            else cr_assert(x >= 0.5f && x <= 1.0f, "impl %d live row: %g", impl, x);
          }
    free(o);
    lam_tensor_free(y);
    /* gradients are finite, and zero for the queries of masked rows */
    lam_tensor *xs[3] = {q, k, v}, *g[3] = {0}, *loss = NULL;
    cr_assert_eq(lam_grad(ctx, fm_fn, &u, xs, 3, &loss, g), LAM_OK, "%s", lam_last_error());
    for (int i = 0; i < 3; i++) {
      float *gv = tu_read_f32(g[i]);
      for (int64_t e = 0; e < lam_tensor_numel(g[i]); e++) cr_assert(isfinite(gv[e]), "impl %d grad %d", impl, i);
      if (i == 0)
        for (int64_t b = 0; b < B; b++)
          for (int64_t h = 0; h < H; h++)
            for (int64_t row = 0; row < (b == 0 ? Sq : 5); row++)
              for (int64_t d = 0; d < D; d++) cr_assert_eq(gv[((b * H + h) * Sq + row) * D + d], 0.0f);
      free(gv);
      lam_tensor_free(g[i]);
    }
    lam_tensor_free(loss);
  }
  lam_tensor *ts[] = {q, k, v, kpm};
  for (int i = 0; i < 4; i++) lam_tensor_free(ts[i]);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}
BOTH_LAYOUTS(sdpa, fully_masked_rows_give_zeros)

/* ---- PyTorch golden ---------------------------------------------------------------------------- */

typedef struct golden_user {
  lam_attention_opts o;
  lam_tensor *w;
  int with_mask;
} golden_user;

static lam_tensor *golden_fn(lam_tensor *const *xs, int n, void *user) {
  golden_user *u = user;
  lam_attention_opts o = u->o;
  if (u->with_mask) o.mask = xs[3];
  lam_tensor *y = lam_scaled_dot_product_attention(xs[0], xs[1], xs[2], &o);
  lam_tensor *p = lam_mul(y, u->w);
  lam_tensor *s = lam_sum(p, 0, NULL, 0);
  lam_tensor_free(y);
  lam_tensor_free(p);
  return s;
}

static void golden_case(lam_ctx *ctx, const tu_golden *f, int idx, lam_dtype dt, lam_attention_impl impl) {
  char name[64];
  const tu_array *cfg = tu_golden_get(f, "sdpa%d.cfg", idx);
  cr_assert_eq(cfg->n, 10, "sdpa%d.cfg", idx);
  const double *c = cfg->v;
  int64_t B = (int64_t)c[0], H = (int64_t)c[1], Hkv = (int64_t)c[2], Sq = (int64_t)c[3];
  int64_t Sk = (int64_t)c[4], D = (int64_t)c[5];
  int causal = (int)c[6], mkind = (int)c[7];
  double scale = c[8];
  uint32_t base = (uint32_t)c[9];
  int64_t sq[4] = {B, H, Sq, D}, sk[4] = {B, Hkv, Sk, D};
  double *hq = malloc(sizeof(double) * (size_t)tu_numel(4, sq)), *hk = malloc(sizeof(double) * (size_t)tu_numel(4, sk));
  double *hv = malloc(sizeof(double) * (size_t)tu_numel(4, sk)), *hw = malloc(sizeof(double) * (size_t)tu_numel(4, sq));
  ag_gen(base + 1, tu_numel(4, sq), -1, 1, hq);
  ag_gen(base + 2, tu_numel(4, sk), -1, 1, hk);
  ag_gen(base + 3, tu_numel(4, sk), -1, 1, hv);
  ag_gen(base + 4, tu_numel(4, sq), -1, 1, hw);
  golden_user u;
  u.o = lam_attention_defaults();
  u.o.causal = causal;
  u.o.scale = scale;
  u.o.impl = impl;
  u.with_mask = 0;
  lam_tensor *xs[4] = {tu_from_f64(ctx, dt, 4, sq, hq), tu_from_f64(ctx, dt, 4, sk, hk),
                       tu_from_f64(ctx, dt, 4, sk, hv), NULL};
  u.w = tu_from_f64(ctx, dt, 4, sq, hw);
  lam_tensor *kpm = NULL, *bm = NULL;
  if (mkind == 1 || mkind == 3) {
    int64_t ms[2] = {mkind == 1 ? B : Sq, Sk};
    double *h = malloc(sizeof(double) * (size_t)tu_numel(2, ms));
    unsigned char *u8 = malloc((size_t)tu_numel(2, ms));
    ag_gen(base + 5, tu_numel(2, ms), 0, 1, h);
    for (int64_t i = 0; i < tu_numel(2, ms); i++) u8[i] = (i % Sk == 0) || h[i] >= (mkind == 1 ? 0.25 : 0.3);
    lam_tensor *t = lam_tensor_from_host(ctx, LAM_U8, 2, ms, u8);
    if (mkind == 1) u.o.key_padding_mask = kpm = t;
    else u.o.mask = bm = t;
    free(h);
    free(u8);
  } else if (mkind == 2 || mkind == 4) {
    int64_t ms4[4] = {B, 1, Sq, Sk}, ms3[3] = {H, Sq, Sk};
    int nd = mkind == 2 ? 4 : 3;
    const int64_t *ms = mkind == 2 ? ms4 : ms3;
    double *h = malloc(sizeof(double) * (size_t)tu_numel(nd, ms));
    ag_gen(base + 5, tu_numel(nd, ms), -2, 2, h);
    xs[3] = tu_from_f64(ctx, dt, nd, ms, h);
    u.with_mask = 1;
    free(h);
  }
  lam_tensor *g[4] = {0}, *loss = NULL;
  int nx = u.with_mask ? 4 : 3;
  cr_assert_eq(lam_grad(ctx, golden_fn, &u, xs, nx, &loss, g), LAM_OK, "%s", lam_last_error());
  lam_attention_opts o = u.o;
  if (u.with_mask) o.mask = xs[3];
  lam_tensor *y = lam_scaled_dot_product_attention(xs[0], xs[1], xs[2], &o);
  cr_assert(y, "%s", lam_last_error());
  double at = dt == LAM_F32 ? 3e-5 : 1e-6, rt = dt == LAM_F32 ? 3e-4 : 1e-5;
  const char *sfx[] = {"out", "dq", "dk", "dv", "dmask"};
  lam_tensor *res[] = {y, g[0], g[1], g[2], g[3]};
  for (int i = 0; i < (u.with_mask ? 5 : 4); i++) {
    snprintf(name, sizeof name, "sdpa%d.%s", idx, sfx[i]);
    ag_check_sampled(f, name, res[i], at, rt);
  }
  lam_tensor_free(y);
  lam_tensor_free(loss);
  for (int i = 0; i < 4; i++) {
    lam_tensor_free(g[i]);
    lam_tensor_free(xs[i]);
  }
  lam_tensor_free(u.w);
  lam_tensor_free(kpm);
  lam_tensor_free(bm);
  free(hq);
  free(hk);
  free(hv);
  free(hw);
}

static void pytorch_golden_body(void) {
  lam_ctx *ctx = tu_ctx();
  tu_golden *f = tu_golden_load("attention_golden.safetensors");
  tu_mark m = tu_mark_now(ctx);
  for (int i = 0; i < 13; i++) {
    if (tu_small() && (i == 4 || i == 7 || i == 10 || i == 12)) continue; /* seq 257 */
    golden_case(ctx, f, i, LAM_F32, LAM_ATTENTION_AUTO);
  }
  if (!tu_small()) {
    if (!gpu_layout()) {
      golden_case(ctx, f, 3, LAM_F32, LAM_ATTENTION_UNFUSED);
      golden_case(ctx, f, 5, LAM_F32, LAM_ATTENTION_UNFUSED);
    }
    if (lam_ctx_device(ctx)->fp64) {
      golden_case(ctx, f, 4, LAM_F64, LAM_ATTENTION_AUTO);
      golden_case(ctx, f, 11, LAM_F64, LAM_ATTENTION_AUTO);
    }
  }
  tu_assert_no_leak(ctx, m);
  tu_golden_free(f);
  lam_ctx_free(ctx);
}
BOTH_LAYOUTS(sdpa, pytorch_golden)

/* ---- KV cache ---------------------------------------------------------------------------- */

static void incremental_equals_full_body(void) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  tu_rng r = tu_rng_make(11);
  int64_t B = 2, H = 4, Hkv = 2, S = 37, D = 32, Dv = 24;
  lam_tensor *q = tu_rand_f32(ctx, &r, 4, (int64_t[]){B, H, S, D}, -1, 1);
  lam_tensor *k = tu_rand_f32(ctx, &r, 4, (int64_t[]){B, Hkv, S, D}, -1, 1);
  lam_tensor *v = tu_rand_f32(ctx, &r, 4, (int64_t[]){B, Hkv, S, Dv}, -1, 1);
  lam_attention_opts o = lam_attention_defaults();
  o.causal = true;
  o.alibi = true;
  lam_tensor *full = lam_scaled_dot_product_attention(q, k, v, &o);
  cr_assert(full, "%s", lam_last_error());
  float *want = tu_read_f32(full);
  lam_kv_cache *c = lam_kv_cache_create();
  cr_assert_eq(lam_kv_cache_length(c), 0);
  static const int64_t steps[] = {3, 1, 1, 12, 1, 19}; /* grows past the first capacity (16) */
  int64_t pos = 0;
  for (int s = 0; s < 6; s++) {
    int64_t n = steps[s];
    lam_tensor *qs = lam_slice_axis(q, 2, pos, pos + n, 1);
    lam_tensor *ks = lam_slice_axis(k, 2, pos, pos + n, 1);
    lam_tensor *vs = lam_slice_axis(v, 2, pos, pos + n, 1);
    cr_assert_eq(lam_kv_cache_append(c, ks, vs), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_kv_cache_length(c), pos + n);
    for (int impl = LAM_ATTENTION_FUSED; impl <= (gpu_layout() ? LAM_ATTENTION_FUSED : LAM_ATTENTION_UNFUSED); impl++) {
      o.q_offset = pos;
      o.impl = (lam_attention_impl)impl;
      lam_tensor *y = lam_kv_cache_attention(c, qs, &o);
      cr_assert(y, "%s", lam_last_error());
      float *got = tu_read_f32(y);
      for (int64_t b = 0; b < B * H; b++)
        for (int64_t i = 0; i < n; i++)
          for (int64_t d = 0; d < Dv; d++) {
            float g = got[(b * n + i) * Dv + d], w = want[(b * S + pos + i) * Dv + d];
            cr_assert(fabsf(g - w) <= 1e-5f + 1e-4f * fabsf(w), "step %d impl %d: %g vs %g", s, impl, g, w);
          }
      free(got);
      lam_tensor_free(y);
    }
    lam_tensor_free(qs);
    lam_tensor_free(ks);
    lam_tensor_free(vs);
    pos += n;
  }
  /* keys / values read back contiguously */
  lam_tensor *kk = lam_kv_cache_keys(c), *vv = lam_kv_cache_values(c);
  cr_assert(kk && vv, "%s", lam_last_error());
  float *a = tu_read_f32(kk), *b = tu_read_f32(k);
  tu_assert_close_f32(a, b, B * Hkv * S * D, 0, 0, "cached keys");
  free(a);
  free(b);
  a = tu_read_f32(vv);
  b = tu_read_f32(v);
  tu_assert_close_f32(a, b, B * Hkv * S * Dv, 0, 0, "cached values");
  free(a);
  free(b);
  lam_tensor_free(kk);
  lam_tensor_free(vv);
  /* reset and reuse with another geometry */
  lam_kv_cache_reset(c);
  cr_assert_eq(lam_kv_cache_length(c), 0);
  lam_tensor *k1 = lam_tensor_zeros(ctx, LAM_F32, 4, (int64_t[]){1, 1, 2, 8});
  cr_assert_eq(lam_kv_cache_append(c, k1, k1), LAM_OK, "%s", lam_last_error());
  lam_kv_cache_free(c);
  lam_kv_cache_free(NULL);
  lam_tensor *ts[] = {q, k, v, full, k1};
  for (int i = 0; i < 5; i++) lam_tensor_free(ts[i]);
  free(want);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}
BOTH_LAYOUTS(kv_cache, incremental_equals_full)

Test(kv_cache, bad_input) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  lam_kv_cache *c = lam_kv_cache_create();
  lam_tensor *k = lam_tensor_zeros(ctx, LAM_F32, 4, (int64_t[]){1, 2, 3, 8});
  lam_tensor *v = lam_tensor_zeros(ctx, LAM_F32, 4, (int64_t[]){1, 2, 3, 4});
  lam_tensor *k3 = lam_tensor_zeros(ctx, LAM_F32, 3, (int64_t[]){2, 3, 8});
  lam_tensor *kd = lam_tensor_zeros(ctx, LAM_F64, 4, (int64_t[]){1, 2, 3, 8});
  lam_tensor *k2 = lam_tensor_zeros(ctx, LAM_F32, 4, (int64_t[]){1, 1, 3, 8});
  lam_tensor *q = lam_tensor_zeros(ctx, LAM_F32, 4, (int64_t[]){1, 2, 1, 8});
  tu_assert_fails(lam_kv_cache_attention(c, q, NULL), LAM_ERR_STATE, "empty");
  tu_assert_fails(lam_kv_cache_keys(c), LAM_ERR_STATE, "empty");
  tu_assert_status(lam_kv_cache_append(NULL, k, v), LAM_ERR_NULL, "cache is NULL");
  lam_error_clear();
  tu_assert_status(lam_kv_cache_append(c, NULL, v), LAM_ERR_NULL, "k is NULL");
  tu_assert_status(lam_kv_cache_append(c, k3, v), LAM_ERR_SHAPE, "kv_heads");
  tu_assert_status(lam_kv_cache_append(c, kd, v), LAM_ERR_DTYPE, "share a float dtype");
  cr_assert_eq(lam_kv_cache_append(c, k, v), LAM_OK, "%s", lam_last_error());
  lam_tensor *v2 = lam_tensor_zeros(ctx, LAM_F32, 4, (int64_t[]){1, 1, 3, 4});
  tu_assert_status(lam_kv_cache_append(c, k2, v2), LAM_ERR_SHAPE, "do not match the cached");
  cr_assert_eq(lam_kv_cache_length(c), 3);
  lam_tensor *qb = lam_tensor_zeros(ctx, LAM_F32, 4, (int64_t[]){1, 3, 1, 8});
  tu_assert_fails(lam_kv_cache_attention(c, qb, NULL), LAM_ERR_SHAPE, "do not divide");
  tu_assert_fails(lam_kv_cache_attention(NULL, q, NULL), LAM_ERR_NULL, "cache is NULL");
  lam_kv_cache_free(c);
  lam_tensor *ts[] = {k, v, k3, kd, k2, q, v2, qb};
  for (int i = 0; i < 8; i++) lam_tensor_free(ts[i]);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- bad input ------------------------------------------------------------------------------- */

Test(sdpa, bad_input) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  const char *fn = "lam_scaled_dot_product_attention";
  lam_tensor *q = lam_tensor_zeros(ctx, LAM_F32, 4, (int64_t[]){2, 4, 5, 8});
  lam_tensor *k = lam_tensor_zeros(ctx, LAM_F32, 4, (int64_t[]){2, 2, 6, 8});
  lam_tensor *v = lam_tensor_zeros(ctx, LAM_F32, 4, (int64_t[]){2, 2, 6, 3});
  lam_tensor *k3 = lam_tensor_zeros(ctx, LAM_F32, 4, (int64_t[]){2, 3, 6, 8});
  lam_tensor *v3 = lam_tensor_zeros(ctx, LAM_F32, 4, (int64_t[]){2, 3, 6, 3});
  lam_tensor *kD = lam_tensor_zeros(ctx, LAM_F32, 4, (int64_t[]){2, 2, 6, 7});
  lam_tensor *vS = lam_tensor_zeros(ctx, LAM_F32, 4, (int64_t[]){2, 2, 5, 3});
  lam_tensor *qi = lam_tensor_zeros(ctx, LAM_I32, 4, (int64_t[]){2, 4, 5, 8});
  lam_tensor *kd = lam_tensor_zeros(ctx, LAM_F64, 4, (int64_t[]){2, 2, 6, 8});
  lam_tensor *q2 = lam_tensor_zeros(ctx, LAM_F32, 2, (int64_t[]){5, 8});
  lam_tensor *kpm_bad = lam_tensor_zeros(ctx, LAM_U8, 2, (int64_t[]){2, 5});
  lam_tensor *kpm_f = lam_tensor_zeros(ctx, LAM_F32, 2, (int64_t[]){2, 6});
  lam_tensor *mask_bad = lam_tensor_zeros(ctx, LAM_F32, 2, (int64_t[]){5, 7});
  lam_tensor *mask_5d = lam_tensor_zeros(ctx, LAM_F32, 5, (int64_t[]){1, 2, 4, 5, 6});
  lam_tensor *mask_i = lam_tensor_zeros(ctx, LAM_I32, 2, (int64_t[]){5, 6});
  lam_tensor *qbig = lam_tensor_zeros(ctx, LAM_F32, 4, (int64_t[]){1, 1, 2, 300});
  lam_tensor *kbig = lam_tensor_zeros(ctx, LAM_F32, 4, (int64_t[]){1, 1, 2, 300});

  lam_error_clear();
  tu_assert_fails(lam_scaled_dot_product_attention(NULL, k, v, NULL), LAM_ERR_NULL, "q is NULL");
  lam_error_clear();
  tu_assert_fails(lam_scaled_dot_product_attention(q, NULL, v, NULL), LAM_ERR_NULL, "k is NULL");
  lam_error_clear();
  tu_assert_fails(lam_scaled_dot_product_attention(q, k, NULL, NULL), LAM_ERR_NULL, "v is NULL");
  tu_assert_fails(lam_scaled_dot_product_attention(qi, k, v, NULL), LAM_ERR_DTYPE, "need f32 or f64");
  tu_assert_fails(lam_scaled_dot_product_attention(q, kd, v, NULL), LAM_ERR_DTYPE, "share a dtype");
  tu_assert_fails(lam_scaled_dot_product_attention(q2, k, v, NULL), LAM_ERR_SHAPE, "[batch, heads, seq, head_dim]");
  tu_assert_fails(lam_scaled_dot_product_attention(q, k3, v3, NULL), LAM_ERR_SHAPE, "kv heads 3 do not divide query heads 4");
  tu_assert_fails(lam_scaled_dot_product_attention(q, kD, v, NULL), LAM_ERR_SHAPE, "do not fit");
  tu_assert_fails(lam_scaled_dot_product_attention(q, k, vS, NULL), LAM_ERR_SHAPE, "do not fit");
  cr_assert(strstr(lam_last_error(), fn) == lam_last_error(), "messages start with the function name");
  lam_attention_opts o = lam_attention_defaults();
  o.key_padding_mask = kpm_bad;
  tu_assert_fails(lam_scaled_dot_product_attention(q, k, v, &o), LAM_ERR_SHAPE, "key_padding_mask is [2,5]");
  o.key_padding_mask = kpm_f;
  tu_assert_fails(lam_scaled_dot_product_attention(q, k, v, &o), LAM_ERR_DTYPE, "u8 or i32");
  o = lam_attention_defaults();
  o.mask = mask_bad;
  tu_assert_fails(lam_scaled_dot_product_attention(q, k, v, &o), LAM_ERR_SHAPE, "does not broadcast");
  o.mask = mask_5d;
  tu_assert_fails(lam_scaled_dot_product_attention(q, k, v, &o), LAM_ERR_SHAPE, "does not broadcast");
  o.mask = mask_i;
  tu_assert_fails(lam_scaled_dot_product_attention(q, k, v, &o), LAM_ERR_DTYPE, "mask is i32");
  o = lam_attention_defaults();
  o.dropout = 1.0;
  tu_assert_fails(lam_scaled_dot_product_attention(q, k, v, &o), LAM_ERR_INVALID_ARGUMENT, "dropout");
  o.dropout = -0.1;
  tu_assert_fails(lam_scaled_dot_product_attention(q, k, v, &o), LAM_ERR_INVALID_ARGUMENT, "dropout");
  o = lam_attention_defaults();
  o.scale = INFINITY;
  tu_assert_fails(lam_scaled_dot_product_attention(q, k, v, &o), LAM_ERR_INVALID_ARGUMENT, "scale");
  o = lam_attention_defaults();
  o.q_offset = (int64_t)1 << 40;
  tu_assert_fails(lam_scaled_dot_product_attention(q, k, v, &o), LAM_ERR_INVALID_ARGUMENT, "q_offset");
  o = lam_attention_defaults();
  o.impl = (lam_attention_impl)7;
  tu_assert_fails(lam_scaled_dot_product_attention(q, k, v, &o), LAM_ERR_INVALID_ARGUMENT, "impl");
  o = lam_attention_defaults();
  o.impl = LAM_ATTENTION_FUSED;
  tu_assert_fails(lam_scaled_dot_product_attention(qbig, kbig, kbig, &o), LAM_ERR_UNSUPPORTED, "up to 256");
  /* a failed op keeps its message through a chain */
  lam_tensor *chained = lam_scaled_dot_product_attention(lam_scaled_dot_product_attention(q, k3, v3, NULL), k, v, NULL);
  tu_assert_fails(chained, LAM_ERR_SHAPE, "do not divide");
  lam_tensor *ts[] = {q, k, v, k3, v3, kD, vS, qi, kd, q2, kpm_bad, kpm_f, mask_bad, mask_5d, mask_i, qbig, kbig};
  for (int i = 0; i < (int)(sizeof ts / sizeof ts[0]); i++) lam_tensor_free(ts[i]);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}
