/* test_mha.c (src/nn/attention_layers.c): the multi-head attention layer. Outputs and gradients (input,
 * every projection weight and bias) against torch.nn.MultiheadAttention
 * golden data (self-attention with causal and key-padding masks,
 * cross-attention with other key/value widths, no-bias projections);
 * grouped-query heads, RoPE, head_dim / value_dims / output_dims against a
 * plain C reference; incremental decoding with the KV cache equal to the
 * full sequence; the aux-context attention_mask in both forms; dropout in
 * training; parameter names and shapes; add_bias_kv / add_zero_attn against
 * PyTorch (tests/data/seq_options_golden.safetensors from
 * tools/gen_seq_options_golden.py), loaded from the packed state_dict; bad input. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "attention_common.h"

static lam_tensor *gen_tensor(lam_ctx *ctx, uint32_t seed, int ndim, const int64_t *shape, double lo,
                              double hi) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  double *v = malloc((size_t)n * sizeof *v);
  ag_gen(seed, n, lo, hi, v);
  lam_tensor *t = tu_from_f64(ctx, LAM_F32, ndim, shape, v);
  free(v);
  return t;
}

/* ---- PyTorch nn.MultiheadAttention golden -------------------------------------------- */

static const char *PNAMES[8] = {"q_proj.weight", "k_proj.weight", "v_proj.weight", "out_proj.weight",
                                "q_proj.bias",   "k_proj.bias",   "v_proj.bias",   "out_proj.bias"};

typedef struct golden_user {
  lam_layer *layer;
  lam_apply_opts opts;
  lam_tensor *w;
  int cross, nparams;
} golden_user;

/* xs: query, key, value, then the params in PNAMES order. */
static lam_tensor *golden_fn(lam_tensor *const *xs, int n, void *user) {
  golden_user *u = user;
  lam_ptree *p = lam_ptree_dict();
  for (int i = 0; i < u->nparams; i++) lam_ptree_set(p, PNAMES[i], xs[3 + i]);
  lam_tensor *y = NULL;
  if (u->cross) lam_nn_multi_head_attention_apply(u->layer, p, xs[0], xs[1], xs[2], &u->opts, &y);
  else lam_nn_multi_head_attention_apply(u->layer, p, xs[0], xs[0], xs[0], &u->opts, &y);
  lam_ptree_free(p);
  lam_tensor *prod = lam_mul(y, u->w);
  lam_tensor *s = lam_sum(prod, 0, NULL, 0);
  lam_tensor_free(y);
  lam_tensor_free(prod);
  return s;
}

Test(mha, pytorch_golden) {
  lam_ctx *ctx = tu_ctx();
  tu_golden *f = tu_golden_load("attention_golden.safetensors");
  tu_mark m = tu_mark_now(ctx);
  for (int idx = 0; idx < 4; idx++) {
    char name[64];
    const tu_array *cfg = tu_golden_get(f, "mha%d.cfg", idx);
    cr_assert_eq(cfg->n, 11, "mha%d.cfg", idx);
    const double *c = cfg->v;
    int64_t E = (int64_t)c[0], H = (int64_t)c[1], B = (int64_t)c[2], Sq = (int64_t)c[3], Sk = (int64_t)c[4];
    int64_t kdim = (int64_t)c[5], vdim = (int64_t)c[6];
    int bias = c[7] != 0, causal = c[8] != 0, kpm = c[9] != 0;
    uint32_t base = (uint32_t)c[10];
    int64_t kd = kdim ? kdim : E, vd = vdim ? vdim : E;
    int cross = Sq != Sk || kdim || vdim;
    lam_multi_head_attention_opts o = lam_multi_head_attention_defaults();
    o.no_bias = !bias;
    o.is_causal = causal;
    o.key_input_dims = kd;
    o.value_input_dims = vd;
    golden_user u;
    u.layer = lam_nn_multi_head_attention(E, H, &o);
    cr_assert(u.layer, "%s", lam_last_error());
    memset(&u.opts, 0, sizeof u.opts);
    u.cross = cross;
    u.nparams = bias ? 8 : 4;
    lam_tensor *xs[11] = {0};
    xs[0] = gen_tensor(ctx, base + 1, 3, (int64_t[]){B, Sq, E}, -1, 1);
    xs[1] = cross ? gen_tensor(ctx, base + 2, 3, (int64_t[]){B, Sk, kd}, -1, 1) : NULL;
    xs[2] = cross ? gen_tensor(ctx, base + 3, 3, (int64_t[]){B, Sk, vd}, -1, 1) : NULL;
    int64_t wcols[4] = {E, kd, vd, E};
    for (int i = 0; i < 4; i++)
      xs[3 + i] = gen_tensor(ctx, base + 10 + (uint32_t)i, 2, (int64_t[]){E, wcols[i]}, -0.3, 0.3);
    if (bias)
      for (int i = 0; i < 4; i++) xs[7 + i] = gen_tensor(ctx, base + 20 + (uint32_t)i, 1, &E, -0.1, 0.1);
    u.w = gen_tensor(ctx, base + 4, 3, (int64_t[]){B, Sq, E}, -1, 1);
    lam_aux *aux = NULL;
    lam_tensor *mask = NULL;
    if (kpm) { /* torch: True ignores; lamina: nonzero keeps */
      double *h = malloc(sizeof(double) * (size_t)(B * Sk));
      unsigned char *keep = malloc((size_t)(B * Sk));
      ag_gen(base + 5, B * Sk, 0, 1, h);
      for (int64_t i = 0; i < B * Sk; i++) keep[i] = (i % Sk == 0) || !(h[i] < 0.3);
      mask = lam_tensor_from_host(ctx, LAM_U8, 2, (int64_t[]){B, Sk}, keep);
      aux = lam_aux_create();
      lam_aux_set(aux, LAM_ATTENTION_MASK_KEY, mask);
      u.opts.aux = aux;
      free(h);
      free(keep);
    }
    /* lam_grad over query, key, value and the params (self-attention leaves
     * the key/value slots to an unused placeholder, whose gradient is zero) */
    lam_tensor *g[11] = {0}, *loss = NULL, *packed[11];
    lam_tensor *dummy = lam_tensor_zeros(ctx, LAM_F32, 1, (int64_t[]){1});
    for (int i = 0; i < 3 + u.nparams; i++) packed[i] = xs[i] ? xs[i] : dummy;
    cr_assert_eq(lam_grad(ctx, golden_fn, &u, packed, 3 + u.nparams, &loss, g), LAM_OK, "%s",
                 lam_last_error());
    lam_tensor_free(dummy);
    lam_tensor *y = NULL;
    lam_ptree *p = lam_ptree_dict();
    for (int i = 0; i < u.nparams; i++) lam_ptree_set(p, PNAMES[i], xs[3 + i]);
    cr_assert_eq(lam_nn_multi_head_attention_apply(u.layer, p, xs[0], cross ? xs[1] : xs[0], cross ? xs[2] : xs[0], &u.opts, &y),
                 LAM_OK, "%s", lam_last_error());
    snprintf(name, sizeof name, "mha%d.out", idx);
    ag_check_sampled(f, name, y, 3e-5, 3e-4);
    if (cross) {
      snprintf(name, sizeof name, "mha%d.dx", idx);
      ag_check_sampled(f, name, g[0], 3e-5, 3e-4);
      snprintf(name, sizeof name, "mha%d.dkey", idx);
      ag_check_sampled(f, name, g[1], 3e-5, 3e-4);
      snprintf(name, sizeof name, "mha%d.dvalue", idx);
      ag_check_sampled(f, name, g[2], 3e-5, 3e-4);
    } else {
      snprintf(name, sizeof name, "mha%d.dx", idx);
      ag_check_sampled(f, name, g[0], 3e-5, 3e-4);
    }
    for (int i = 0; i < u.nparams; i++) {
      snprintf(name, sizeof name, "mha%d.d%s", idx, PNAMES[i]);
      ag_check_sampled(f, name, g[3 + i], 3e-5, 3e-4);
    }
    lam_ptree_free(p);
    lam_tensor_free(y);
    lam_tensor_free(loss);
    for (int i = 0; i < 11; i++) {
      lam_tensor_free(g[i]);
      lam_tensor_free(xs[i]);
    }
    lam_tensor_free(u.w);
    lam_tensor_free(mask);
    lam_aux_free(aux);
    lam_layer_free(u.layer);
  }
  tu_assert_no_leak(ctx, m);
  tu_golden_free(f);
  lam_ctx_free(ctx);
}

/* ---- C reference: GQA, RoPE, head_dim, value/output dims ------------------------------- */

typedef struct mha_cfg {
  int64_t E, H, Hkv, hd, vhd, odims, B, S;
  int bias, causal, rope;
} mha_cfg;

/* y[b, s, :] = x[b, s, :] W^T + bias */
static void ref_linear(const double *x, int64_t rows, int64_t in, const double *w, const double *b,
                       int64_t out, double *y) {
  for (int64_t r = 0; r < rows; r++)
    for (int64_t o = 0; o < out; o++) {
      double a = b ? b[o] : 0;
      for (int64_t i = 0; i < in; i++) a += x[r * in + i] * w[o * in + i];
      y[r * out + o] = a;
    }
}

static void ref_rope_inplace(double *t, int64_t B, int64_t S, int64_t heads, int64_t hd) {
  /* t is [B, S, heads, hd]; split-half rotation at position s */
  int64_t half = hd / 2;
  for (int64_t b = 0; b < B; b++)
    for (int64_t s = 0; s < S; s++)
      for (int64_t h = 0; h < heads; h++) {
        double *row = t + ((b * S + s) * heads + h) * hd;
        for (int64_t k = 0; k < half; k++) {
          double ang = (double)s * pow(10000.0, -2.0 * (double)k / (double)hd);
          double x0 = row[k], x1 = row[k + half];
          row[k] = x0 * cos(ang) - x1 * sin(ang);
          row[k + half] = x1 * cos(ang) + x0 * sin(ang);
        }
      }
}

static double *ref_mha(const mha_cfg *c, const double *x, double *const *P) {
  int64_t B = c->B, S = c->S, H = c->H, Hkv = c->Hkv, hd = c->hd, vhd = c->vhd, G = H / Hkv;
  double *q = malloc(sizeof(double) * (size_t)(B * S * H * hd));
  double *k = malloc(sizeof(double) * (size_t)(B * S * Hkv * hd));
  double *v = malloc(sizeof(double) * (size_t)(B * S * Hkv * vhd));
  double *att = calloc((size_t)(B * S * H * vhd), sizeof(double));
  double *y = malloc(sizeof(double) * (size_t)(B * S * c->odims));
  ref_linear(x, B * S, c->E, P[0], c->bias ? P[4] : NULL, H * hd, q);
  ref_linear(x, B * S, c->E, P[1], c->bias ? P[5] : NULL, Hkv * hd, k);
  ref_linear(x, B * S, c->E, P[2], c->bias ? P[6] : NULL, Hkv * vhd, v);
  if (c->rope) {
    ref_rope_inplace(q, B, S, H, hd);
    ref_rope_inplace(k, B, S, Hkv, hd);
  }
  double *s = malloc(sizeof(double) * (size_t)S);
  for (int64_t b = 0; b < B; b++)
    for (int64_t h = 0; h < H; h++)
      for (int64_t i = 0; i < S; i++) {
        double mx = -INFINITY, l = 0;
        for (int64_t j = 0; j < S; j++) {
          double a = 0;
          for (int64_t d = 0; d < hd; d++)
            a += q[((b * S + i) * H + h) * hd + d] * k[((b * S + j) * Hkv + h / G) * hd + d];
          s[j] = (c->causal && j > i) ? -INFINITY : a / sqrt((double)hd);
          mx = fmax(mx, s[j]);
        }
        for (int64_t j = 0; j < S; j++) l += s[j] = exp(s[j] - mx);
        for (int64_t d = 0; d < vhd; d++) {
          double a = 0;
          for (int64_t j = 0; j < S; j++) a += s[j] * v[((b * S + j) * Hkv + h / G) * vhd + d];
          att[((b * S + i) * H + h) * vhd + d] = a / l;
        }
      }
  ref_linear(att, B * S, H * vhd, P[3], c->bias ? P[7] : NULL, c->odims, y);
  free(s);
  free(q);
  free(k);
  free(v);
  free(att);
  return y;
}

static lam_layer *layer_of(const mha_cfg *c) {
  lam_multi_head_attention_opts o = lam_multi_head_attention_defaults();
  o.num_kv_heads = c->Hkv;
  o.head_dim = c->hd;
  o.value_dims = c->H * c->vhd;
  o.output_dims = c->odims;
  o.no_bias = !c->bias;
  o.is_causal = c->causal;
  o.rope = c->rope;
  lam_layer *l = lam_nn_multi_head_attention(c->E, c->H, &o);
  cr_assert(l, "%s", lam_last_error());
  return l;
}

Test(mha, gqa_rope_dims_match_reference) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  static const mha_cfg cs[] = {
      {24, 6, 2, 4, 4, 24, 2, 9, 1, 1, 1},
      {16, 4, 1, 6, 3, 10, 1, 13, 0, 0, 1},
      {20, 4, 4, 5, 7, 20, 2, 5, 1, 0, 0},
  };
  for (int ci = 0; ci < 3; ci++) {
    const mha_cfg *c = &cs[ci];
    lam_layer *l = layer_of(c);
    lam_vars *vars = NULL;
    cr_assert_eq(lam_layer_init(l, ctx, lam_rng_key_make(3 + (uint64_t)ci), LAM_F64, &vars), LAM_OK, "%s",
                 lam_last_error());
    lam_ptree *params = lam_vars_params(vars);
    cr_assert_eq(lam_ptree_leaf_count(params), c->bias ? 8 : 4);
    int64_t rows[4] = {c->H * c->hd, c->Hkv * c->hd, c->Hkv * c->vhd, c->odims};
    int64_t cols[4] = {c->E, c->E, c->E, c->H * c->vhd};
    double *P[8] = {0};
    for (int i = 0; i < (c->bias ? 8 : 4); i++) {
      lam_tensor *t = lam_ptree_get(params, PNAMES[i]);
      cr_assert(t, "param %s missing", PNAMES[i]);
      cr_assert_eq(lam_tensor_dim(t, 0), rows[i % 4], "%s rows", PNAMES[i]);
      if (i < 4) cr_assert_eq(lam_tensor_dim(t, 1), cols[i], "%s cols", PNAMES[i]);
      if (i >= 4) { /* biases default to zeros; give them values */
        tu_rng r = tu_rng_make(60 + (uint64_t)i);
        lam_tensor *nb = tu_rand_f64(ctx, &r, 1, &rows[i % 4], -0.2, 0.2);
        lam_ptree_set(params, PNAMES[i], nb);
        lam_tensor_free(nb);
        t = lam_ptree_get(params, PNAMES[i]);
      }
      P[i] = tu_to_f64(t);
    }
    tu_rng r = tu_rng_make(70 + (uint64_t)ci);
    lam_tensor *x = tu_rand_f64(ctx, &r, 3, (int64_t[]){c->B, c->S, c->E}, -1, 1);
    double *xh = tu_to_f64(x);
    double *want = ref_mha(c, xh, P);
    lam_tensor *y = NULL;
    cr_assert_eq(lam_layer_apply(l, vars, x, NULL, &y), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_tensor_dim(y, 2), c->odims);
    double *got = tu_to_f64(y);
    char what[32];
    snprintf(what, sizeof what, "mha case %d", ci);
    tu_assert_close_f64(got, want, c->B * c->S * c->odims, 1e-12, 1e-10, what);
    free(got);
    free(want);
    free(xh);
    for (int i = 0; i < 8; i++) free(P[i]);
    lam_tensor_free(x);
    lam_tensor_free(y);
    lam_vars_free(vars);
    lam_layer_free(l);
  }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- KV cache: incremental decoding equals the full sequence ----------------------------- */

Test(mha, kv_cache_incremental_equals_full) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  mha_cfg c = {32, 4, 2, 8, 8, 32, 2, 23, 1, 1, 1};
  lam_layer *l = layer_of(&c);
  lam_vars *vars = NULL;
  cr_assert_eq(lam_layer_init(l, ctx, lam_rng_key_make(5), LAM_F32, &vars), LAM_OK, "%s", lam_last_error());
  tu_rng r = tu_rng_make(80);
  lam_tensor *x = tu_rand_f32(ctx, &r, 3, (int64_t[]){c.B, c.S, c.E}, -1, 1);
  lam_tensor *full = NULL;
  cr_assert_eq(lam_layer_apply(l, vars, x, NULL, &full), LAM_OK, "%s", lam_last_error());
  float *want = tu_read_f32(full);
  lam_kv_cache *cache = lam_kv_cache_create();
  static const int64_t steps[] = {5, 1, 1, 1, 12, 3};
  int64_t pos = 0;
  for (int s = 0; s < 6; s++) {
    lam_tensor *xs = lam_slice_axis(x, 1, pos, pos + steps[s], 1);
    lam_tensor *y = NULL;
    cr_assert_eq(lam_nn_multi_head_attention_apply_cached(l, lam_vars_params(vars), xs, cache, NULL, &y), LAM_OK, "%s",
                 lam_last_error());
    cr_assert_eq(lam_kv_cache_length(cache), pos + steps[s]);
    float *got = tu_read_f32(y);
    for (int64_t b = 0; b < c.B; b++)
      for (int64_t i = 0; i < steps[s]; i++)
        for (int64_t e = 0; e < c.E; e++) {
          float g = got[(b * steps[s] + i) * c.E + e], w = want[(b * c.S + pos + i) * c.E + e];
          cr_assert(fabsf(g - w) <= 1e-5f + 1e-4f * fabsf(w), "step %d b %lld pos %lld: %g vs %g", s,
                    (long long)b, (long long)(pos + i), g, w);
        }
    free(got);
    lam_tensor_free(y);
    lam_tensor_free(xs);
    pos += steps[s];
  }
  lam_kv_cache_free(cache);
  free(want);
  lam_tensor_free(x);
  lam_tensor_free(full);
  lam_vars_free(vars);
  lam_layer_free(l);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- masks through the aux context, dropout ----------------------------------------------- */

Test(mha, attention_mask_forms_and_dropout) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  int64_t B = 2, S = 11, E = 16;
  lam_multi_head_attention_opts o = lam_multi_head_attention_defaults();
  o.dropout = 0.2;
  lam_layer *l = lam_nn_multi_head_attention(E, 4, &o);
  lam_vars *vars = NULL;
  cr_assert_eq(lam_layer_init(l, ctx, lam_rng_key_make(6), LAM_F32, &vars), LAM_OK);
  tu_rng r = tu_rng_make(81);
  lam_tensor *x = tu_rand_f32(ctx, &r, 3, (int64_t[]){B, S, E}, -1, 1);
  unsigned char keep[2 * 11];
  for (int i = 0; i < B * S; i++) keep[i] = (i % 3) != 2;
  lam_tensor *kpm = lam_tensor_from_host(ctx, LAM_U8, 2, (int64_t[]){B, S}, keep);
  lam_tensor *m4 = lam_tensor_from_host(ctx, LAM_U8, 4, (int64_t[]){B, 1, 1, S}, keep);
  int32_t keep_i[2 * 11];
  for (int i = 0; i < B * S; i++) keep_i[i] = keep[i] ? 7 : 0;
  lam_tensor *kpm_i = lam_tensor_from_host(ctx, LAM_I32, 2, (int64_t[]){B, S}, keep_i);
  lam_tensor *ys[4] = {0};
  lam_tensor *masks[4] = {kpm, m4, kpm_i, NULL};
  for (int i = 0; i < 4; i++) {
    lam_aux *aux = lam_aux_create();
    if (masks[i]) lam_aux_set(aux, LAM_ATTENTION_MASK_KEY, masks[i]);
    lam_apply_opts ao = {false, NULL, aux, NULL};
    cr_assert_eq(lam_layer_apply(l, vars, x, &ao, &ys[i]), LAM_OK, "%s", lam_last_error());
    lam_aux_free(aux);
  }
  float *a = tu_read_f32(ys[0]), *b = tu_read_f32(ys[1]), *c = tu_read_f32(ys[2]), *d = tu_read_f32(ys[3]);
  tu_assert_close_f32(a, b, B * S * E, 1e-6, 1e-5, "2-D key padding vs 4-D bool mask");
  tu_assert_close_f32(a, c, B * S * E, 0, 0, "u8 vs i32 key padding");
  int differ = 0;
  for (int i = 0; i < B * S * E; i++) differ += a[i] != d[i];
  cr_assert(differ > 0, "the mask changes the output");
  free(a);
  free(b);
  free(c);
  /* dropout: needs a key in training; reproducible per key; off in evaluation */
  lam_apply_opts train = {true, NULL, NULL, NULL};
  lam_tensor *y = NULL;
  tu_assert_status(lam_layer_apply(l, vars, x, &train, &y), LAM_ERR_INVALID_ARGUMENT, "needs an rng key");
  lam_rng_key key = lam_rng_key_make(9);
  train.rng = &key;
  lam_tensor *t1 = NULL, *t2 = NULL;
  cr_assert_eq(lam_layer_apply(l, vars, x, &train, &t1), LAM_OK, "%s", lam_last_error());
  cr_assert_eq(lam_layer_apply(l, vars, x, &train, &t2), LAM_OK, "%s", lam_last_error());
  float *p1 = tu_read_f32(t1), *p2 = tu_read_f32(t2);
  tu_assert_close_f32(p1, p2, B * S * E, 0, 0, "same key, same dropout");
  differ = 0;
  for (int i = 0; i < B * S * E; i++) differ += p1[i] != d[i];
  cr_assert(differ > B * S * E / 2, "dropout changes the training output");
  free(p1);
  free(p2);
  free(d);
  lam_tensor *ts[] = {x, kpm, m4, kpm_i, ys[0], ys[1], ys[2], ys[3], t1, t2};
  for (int i = 0; i < 10; i++) lam_tensor_free(ts[i]);
  lam_vars_free(vars);
  lam_layer_free(l);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- bad input ------------------------------------------------------------------------------ */

/* ---- add_bias_kv / add_zero_attn, loaded from a packed torch state_dict ------------ */

static const char *KVNAMES[10] = {"q_proj.weight", "k_proj.weight", "v_proj.weight", "out_proj.weight",
                                  "q_proj.bias",   "k_proj.bias",   "v_proj.bias",   "out_proj.bias",
                                  "bias_k",        "bias_v"};

/* xs: query, key, value, then the params in KVNAMES order (nparams of them). */
static lam_tensor *kv_fn(lam_tensor *const *xs, int n, void *user) {
  golden_user *u = user;
  lam_ptree *p = lam_ptree_dict();
  for (int i = 0; i < u->nparams; i++) lam_ptree_set(p, KVNAMES[i], xs[3 + i]);
  lam_tensor *y = NULL;
  lam_nn_multi_head_attention_apply(u->layer, p, xs[0], xs[1], xs[2], &u->opts, &y);
  lam_ptree_free(p);
  if (!u->w) return y;
  lam_tensor *prod = y ? lam_mul(y, u->w) : NULL;
  lam_tensor *s = prod ? lam_sum(prod, 0, NULL, 0) : NULL;
  lam_tensor_free(y);
  lam_tensor_free(prod);
  return s;
}

/* kv_fn on a subset of its inputs (tu_gradcheck takes at most 8): the
 * inputs listed in idx come from xs, the rest from all. */
typedef struct {
  golden_user *u;
  lam_tensor **all;
  int idx[8], n, total;
} subset_user;

static lam_tensor *subset_fn(lam_tensor *const *xs, int n, void *user) {
  subset_user *su = user;
  lam_tensor *in[13];
  for (int i = 0; i < su->total; i++) in[i] = su->all[i];
  for (int i = 0; i < n; i++) in[su->idx[i]] = xs[i];
  return kv_fn(in, su->total, su->u);
}

/* torch.nn.MultiheadAttention(6, 2, batch_first=True, add_bias_kv / add_zero_attn)
 * from tools/gen_seq_options_golden.py: its state_dict (packed in_proj_weight
 * / in_proj_bias, out_proj, bias_k, bias_v) loads through lam_vars_load with
 * a split transform, and outputs and every gradient match, with a key
 * padding mask, an additive float mask (with a -inf) or none; then an f64
 * finite-difference check. */
Test(mha, add_bias_kv_zero_attn_packed_state_dict) {
  lam_ctx *ctx = tu_ctx();
  tu_golden *f = tu_golden_load("seq_options_golden.safetensors");
  const char *cases[] = {"mhakv", "mhaza", "mhaboth"};
  const bool bkv[] = {true, false, true}, za[] = {false, true, true};
  for (int ci = 0; ci < 3; ci++) {
    const char *cs = cases[ci];
    tu_mark mk = tu_mark_now(ctx);
    lam_layer *layer = lam_nn_multi_head_attention(
        6, 2, &(lam_multi_head_attention_opts){.add_bias_kv = bkv[ci], .add_zero_attn = za[ci]});
    cr_assert_not_null(layer, "%s", lam_last_error());
    lam_vars *v = NULL;
    cr_assert_eq(lam_layer_init(layer, ctx, lam_rng_key_make(3), LAM_F64, &v), LAM_OK, "%s", lam_last_error());
    lam_tensor *bk = lam_ptree_get(lam_vars_params(v), "bias_k");
    cr_assert_eq(bk != NULL, bkv[ci], "bias_k exists only with add_bias_kv");
    if (bk) cr_assert(lam_tensor_ndim(bk) == 3 && lam_tensor_shape(bk)[2] == 6, "bias_k [1, 1, E]");
    const char *wi[] = {"q_proj.weight", "k_proj.weight", "v_proj.weight"};
    const char *bi[] = {"q_proj.bias", "k_proj.bias", "v_proj.bias"};
    lam_load_transform tr[] = {{.key = "in_proj_weight", .split_count = 3, .split_into = wi},
                               {.key = "in_proj_bias", .split_count = 3, .split_into = bi}};
    char prefix[32];
    snprintf(prefix, sizeof prefix, "%s.sd.", cs);
    lam_load_opts lo = {.prefix = prefix, .transforms = tr, .transform_count = 2};
    cr_assert_eq(lam_vars_load(v, tu_data_path("seq_options_golden.safetensors"), &lo, NULL), LAM_OK, "%s: %s",
                 cs, lam_last_error());
    const char *masking = tu_golden_meta(f, "%s.masking", cs);
    lam_tensor *mask = !strcmp(masking, "kpm")    ? tu_golden_tensor(ctx, LAM_U8, f, "%s.keep", cs)
                       : !strcmp(masking, "attn") ? tu_golden_tensor(ctx, LAM_F64, f, "%s.attn_mask", cs)
                                                  : NULL;
    if (mask && lam_tensor_dtype(mask) == LAM_F64) { /* a rank-2 aux mask is a key padding mask: [1, Lq, S] */
      lam_tensor *m3 = lam_tensor_reshape(mask, 3, (int64_t[]){1, 3, 4});
      lam_tensor_free(mask);
      mask = m3;
    }
    lam_aux *aux = lam_aux_create();
    if (mask) lam_aux_set(aux, LAM_ATTENTION_MASK_KEY, mask);
    golden_user u = {layer, {false, NULL, aux, NULL}, NULL, 1, bkv[ci] ? 10 : 8};
    lam_tensor *xs[13] = {tu_golden_tensor(ctx, LAM_F64, f, "%s.q", cs), tu_golden_tensor(ctx, LAM_F64, f, "%s.k", cs),
                          tu_golden_tensor(ctx, LAM_F64, f, "%s.v", cs)};
    for (int i = 0; i < u.nparams; i++) xs[3 + i] = lam_tensor_retain(lam_ptree_get(lam_vars_params(v), KVNAMES[i]));
    lam_tensor *y = kv_fn(xs, 3 + u.nparams, &u);
    cr_assert_not_null(y, "%s: %s", cs, lam_last_error());
    tu_assert_tensor_close(y, tu_golden_values(f, "%s.y", cs), 36, 1e-10, 1e-10, cs);
    u.w = tu_golden_tensor(ctx, LAM_F64, f, "%s.cot", cs);
    lam_tensor *g[13] = {0};
    lam_tensor *one = lam_tensor_scalar(ctx, LAM_F64, 1.0);
    cr_assert_eq(lam_vjp(ctx, kv_fn, &u, xs, 3 + u.nparams, one, NULL, g), LAM_OK, "%s", lam_last_error());
    tu_assert_tensor_close(g[0], tu_golden_values(f, "%s.gq", cs), 36, 1e-10, 1e-10, "grad query");
    tu_assert_tensor_close(g[1], tu_golden_values(f, "%s.gk", cs), 48, 1e-10, 1e-10, "grad key");
    tu_assert_tensor_close(g[2], tu_golden_values(f, "%s.gv", cs), 48, 1e-10, 1e-10, "grad value");
    const double *gin = tu_golden_values(f, "%s.g_in_proj_weight", cs), *gib = tu_golden_values(f, "%s.g_in_proj_bias", cs);
    for (int i = 0; i < 3; i++) {
      tu_assert_tensor_close(g[3 + i], gin + 36 * i, 36, 1e-10, 1e-10, "grad in_proj_weight part");
      tu_assert_tensor_close(g[7 + i], gib + 6 * i, 6, 1e-10, 1e-10, "grad in_proj_bias part");
    }
    tu_assert_tensor_close(g[6], tu_golden_values(f, "%s.g_out_proj_weight", cs), 36, 1e-10, 1e-10, "grad out_proj");
    if (bkv[ci]) {
      tu_assert_tensor_close(g[11], tu_golden_values(f, "%s.g_bias_k", cs), 6, 1e-10, 1e-10, "grad bias_k");
      tu_assert_tensor_close(g[12], tu_golden_values(f, "%s.g_bias_v", cs), 6, 1e-10, 1e-10, "grad bias_v");
    }
    /* Finite differences: query, key, value, k_proj / out_proj weights, and bias_k / bias_v. */
    subset_user su = {&u, xs, {0, 1, 2, 4, 6, 11, 12}, bkv[ci] ? 7 : 5, 3 + u.nparams};
    lam_tensor *sx[8];
    for (int i = 0; i < su.n; i++) sx[i] = xs[su.idx[i]];
    tu_gradcheck(ctx, subset_fn, &su, sx, su.n, 1e-6, 1e-6, 0, 0, cs);
    for (int i = 0; i < 13; i++) {
      lam_tensor_free(xs[i]);
      lam_tensor_free(g[i]);
    }
    /* f32: the same file loads into f32 params (converted) and matches to f32 rounding. */
    lam_vars *v32 = NULL;
    cr_assert_eq(lam_layer_init(layer, ctx, lam_rng_key_make(3), LAM_F32, &v32), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_vars_load(v32, tu_data_path("seq_options_golden.safetensors"), &lo, NULL), LAM_OK, "%s",
                 lam_last_error());
    lam_tensor *q32 = tu_golden_tensor(ctx, LAM_F32, f, "%s.q", cs), *k32 = tu_golden_tensor(ctx, LAM_F32, f, "%s.k", cs),
               *v32t = tu_golden_tensor(ctx, LAM_F32, f, "%s.v", cs), *m32 = NULL, *y32 = NULL;
    if (mask && lam_tensor_dtype(mask) == LAM_F64) {
      m32 = lam_tensor_cast(mask, LAM_F32);
      lam_aux_set(aux, LAM_ATTENTION_MASK_KEY, m32);
    }
    cr_assert_eq(lam_nn_multi_head_attention_apply(layer, lam_vars_params(v32), q32, k32, v32t,
                                                   &(lam_apply_opts){.aux = aux}, &y32),
                 LAM_OK, "%s", lam_last_error());
    tu_assert_tensor_close(y32, tu_golden_values(f, "%s.y", cs), 36, 1e-5, 1e-4, "f32");
    lam_tensor *f32s[] = {q32, k32, v32t, m32, y32};
    for (size_t i = 0; i < 5; i++) lam_tensor_free(f32s[i]);
    lam_vars_free(v32);
    lam_tensor_free(one);
    lam_tensor_free(u.w);
    lam_tensor_free(y);
    lam_tensor_free(mask);
    lam_aux_free(aux);
    lam_vars_free(v);
    lam_layer_free(layer);
    tu_assert_no_leak(ctx, mk);
  }
  /* As a layer (self-attention), with a [B, S] mask: the extended mask keeps the extra keys. */
  lam_layer *sl = lam_nn_multi_head_attention(4, 2, &(lam_multi_head_attention_opts){.add_bias_kv = true,
                                                                                     .add_zero_attn = true});
  lam_vars *sv = NULL;
  cr_assert_eq(lam_layer_init(sl, ctx, lam_rng_key_make(9), LAM_F32, &sv), LAM_OK, "%s", lam_last_error());
  lam_tensor *x = gen_tensor(ctx, 5, 3, (int64_t[]){2, 3, 4}, -1, 1);
  lam_tensor *keep = lam_tensor_from_host(ctx, LAM_U8, 2, (int64_t[]){2, 3}, (uint8_t[]){1, 1, 0, 1, 1, 1});
  lam_aux *aux = lam_aux_create();
  lam_aux_set(aux, LAM_ATTENTION_MASK_KEY, keep);
  lam_tensor *y = NULL;
  cr_assert_eq(lam_layer_apply(sl, sv, x, &(lam_apply_opts){.aux = aux}, &y), LAM_OK, "%s", lam_last_error());
  cr_assert(lam_tensor_ndim(y) == 3 && lam_tensor_shape(y)[1] == 3 && lam_tensor_shape(y)[2] == 4);
  /* Every mask form is extended: all-keep u8 [1, 1, 3, 3] and zero float [3, 3] masks equal no mask. */
  lam_tensor *y0 = NULL, *y1 = NULL, *y2 = NULL;
  lam_tensor *ones = lam_tensor_full(ctx, LAM_U8, 4, (int64_t[]){1, 1, 3, 3}, 1.0);
  lam_tensor *zeros = lam_tensor_zeros(ctx, LAM_F32, 3, (int64_t[]){1, 3, 3});
  lam_aux *a1 = lam_aux_create(), *a2 = lam_aux_create();
  lam_aux_set(a1, LAM_ATTENTION_MASK_KEY, ones);
  lam_aux_set(a2, LAM_ATTENTION_MASK_KEY, zeros);
  cr_assert_eq(lam_layer_apply(sl, sv, x, NULL, &y0), LAM_OK, "%s", lam_last_error());
  cr_assert_eq(lam_layer_apply(sl, sv, x, &(lam_apply_opts){.aux = a1}, &y1), LAM_OK, "%s", lam_last_error());
  cr_assert_eq(lam_layer_apply(sl, sv, x, &(lam_apply_opts){.aux = a2}, &y2), LAM_OK, "%s", lam_last_error());
  double *d0 = tu_to_f64(y0), *d1 = tu_to_f64(y1), *d2 = tu_to_f64(y2), *dk = tu_to_f64(y);
  bool differs = false;
  for (int i = 0; i < 24; i++) differs = differs || fabs(dk[i] - d0[i]) > 1e-6;
  cr_assert(differs, "the key padding mask (extended) still masks key 2 of batch 0");
  tu_assert_close_f64(d1, d0, 24, 1e-6, 1e-6, "u8 mask extended with kept columns");
  tu_assert_close_f64(d2, d0, 24, 1e-6, 1e-6, "float mask extended with zeros");
  free(d0); free(d1); free(d2); free(dk);
  lam_aux_free(a1);
  lam_aux_free(a2);
  lam_tensor *mf[] = {y0, y1, y2, ones, zeros};
  for (size_t i = 0; i < 5; i++) lam_tensor_free(mf[i]);
  lam_tensor_free(y);
  lam_kv_cache *cache = lam_kv_cache_create();
  tu_assert_status(lam_nn_multi_head_attention_apply_cached(sl, lam_vars_params(sv), x, cache, NULL, &y),
                   LAM_ERR_INVALID_ARGUMENT, "KV cache");
  lam_kv_cache_free(cache);
  lam_aux_free(aux);
  lam_tensor_free(keep);
  lam_tensor_free(x);
  lam_vars_free(sv);
  lam_layer_free(sl);
  tu_golden_free(f);
  lam_ctx_free(ctx);
}

Test(mha, bad_input) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  tu_assert_fails(lam_nn_multi_head_attention(10, 3, NULL), LAM_ERR_INVALID_ARGUMENT,
                  "embed_dim 10 is not divisible by num_heads 3");
  lam_multi_head_attention_opts o = lam_multi_head_attention_defaults();
  o.num_kv_heads = 3;
  tu_assert_fails(lam_nn_multi_head_attention(16, 4, &o), LAM_ERR_INVALID_ARGUMENT,
                  "num_kv_heads 3 does not divide num_heads 4");
  o = lam_multi_head_attention_defaults();
  o.dropout = 1.5;
  tu_assert_fails(lam_nn_multi_head_attention(16, 4, &o), LAM_ERR_INVALID_ARGUMENT, "dropout 1.5");
  tu_assert_fails(lam_nn_multi_head_attention(16, 4, &(lam_multi_head_attention_opts){.add_bias_kv = true, .is_causal = true}),
                  LAM_ERR_INVALID_ARGUMENT, "add_bias_kv / add_zero_attn do not combine with is_causal");
  tu_assert_fails(lam_nn_multi_head_attention(16, 4, &(lam_multi_head_attention_opts){.add_zero_attn = true, .rope = true}),
                  LAM_ERR_INVALID_ARGUMENT, "do not combine with rope");
  o = lam_multi_head_attention_defaults();
  o.rope = true;
  o.head_dim = 5;
  tu_assert_fails(lam_nn_multi_head_attention(16, 4, &o), LAM_ERR_INVALID_ARGUMENT, "even head_dim");
  o = lam_multi_head_attention_defaults();
  o.value_dims = 10;
  tu_assert_fails(lam_nn_multi_head_attention(16, 4, &o), LAM_ERR_INVALID_ARGUMENT, "value_dims 10");
  tu_assert_fails(lam_nn_multi_head_attention(0, 4, NULL), LAM_ERR_INVALID_ARGUMENT, "must be >= 1");

  lam_layer *l = lam_nn_multi_head_attention(16, 4, NULL);
  lam_vars *vars = NULL;
  cr_assert_eq(lam_layer_init(l, ctx, lam_rng_key_make(1), LAM_F32, &vars), LAM_OK);
  lam_tensor *x = lam_tensor_zeros(ctx, LAM_F32, 3, (int64_t[]){2, 5, 16});
  lam_tensor *xw = lam_tensor_zeros(ctx, LAM_F32, 3, (int64_t[]){2, 5, 12});
  lam_tensor *x2 = lam_tensor_zeros(ctx, LAM_F32, 2, (int64_t[]){5, 16});
  lam_tensor *xd = lam_tensor_zeros(ctx, LAM_F64, 3, (int64_t[]){2, 5, 16});
  lam_tensor *kb = lam_tensor_zeros(ctx, LAM_F32, 3, (int64_t[]){3, 5, 16});
  lam_tensor *vs = lam_tensor_zeros(ctx, LAM_F32, 3, (int64_t[]){2, 4, 16});
  lam_tensor *bad_mask = lam_tensor_zeros(ctx, LAM_U8, 2, (int64_t[]){2, 4});
  lam_tensor *y = NULL;
  tu_assert_status(lam_layer_apply(l, vars, xw, NULL, &y), LAM_ERR_SHAPE, "expects query [batch, seq, 16]");
  tu_assert_status(lam_layer_apply(l, vars, x2, NULL, &y), LAM_ERR_SHAPE, "expects query");
  tu_assert_status(lam_layer_apply(l, vars, xd, NULL, &y), LAM_ERR_DTYPE, "query is f64");
  tu_assert_status(lam_nn_multi_head_attention_apply(l, lam_vars_params(vars), x, kb, NULL, NULL, &y), LAM_ERR_SHAPE,
                   "with the query's batch");
  tu_assert_status(lam_nn_multi_head_attention_apply(l, lam_vars_params(vars), x, x, vs, NULL, &y), LAM_ERR_SHAPE,
                   "key has 5 positions, value 4");
  lam_aux *aux = lam_aux_create();
  lam_aux_set(aux, LAM_ATTENTION_MASK_KEY, bad_mask);
  lam_apply_opts ao = {false, NULL, aux, NULL};
  tu_assert_status(lam_layer_apply(l, vars, x, &ao, &y), LAM_ERR_SHAPE, "key_padding_mask is [2,4]");
  lam_layer *other = lam_nn_relu();
  tu_assert_status(lam_nn_multi_head_attention_apply(other, lam_vars_params(vars), x, x, x, NULL, &y), LAM_ERR_INVALID_ARGUMENT,
                   "not multi_head_attention");
  tu_assert_status(lam_nn_multi_head_attention_apply(NULL, lam_vars_params(vars), x, x, x, NULL, &y), LAM_ERR_NULL, "layer is NULL");
  tu_assert_status(lam_nn_multi_head_attention_apply_cached(l, lam_vars_params(vars), x, NULL, NULL, &y), LAM_ERR_NULL,
                   "cache is NULL");
  lam_error_clear();
  tu_assert_status(lam_nn_multi_head_attention_apply(l, lam_vars_params(vars), NULL, x, x, NULL, &y), LAM_ERR_NULL,
                   "query is NULL");
  /* params of the wrong shape */
  lam_ptree *p = lam_ptree_copy(lam_vars_params(vars));
  lam_tensor *wbad = lam_tensor_zeros(ctx, LAM_F32, 2, (int64_t[]){16, 15});
  lam_ptree_set(p, "k_proj.weight", wbad);
  tu_assert_status(lam_nn_multi_head_attention_apply(l, p, x, x, x, NULL, &y), LAM_ERR_SHAPE, "k_proj.weight");
  lam_ptree_free(p);
  lam_aux_free(aux);
  lam_layer_free(other);
  lam_tensor *ts[] = {x, xw, x2, xd, kb, vs, bad_mask, wbad};
  for (int i = 0; i < 8; i++) lam_tensor_free(ts[i]);
  lam_vars_free(vars);
  lam_layer_free(l);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}
