/* test_rnn.c (src/nn/rnn.c, src/ops/rnn_gates.c): the sequence layers lam_nn_rnn (tanh, relu), lam_nn_lstm and
 * lam_nn_gru: outputs, final states and gradients against PyTorch golden data
 * (tests/data/rnn_golden.safetensors from tools/gen_rnn_golden.py) for 1-2 layers, uni/bidirectional, batch_first
 * both ways, seq 1 and 37, variable lengths as lengths and as a mask, f64
 * and f32; a plain C reference for masks with holes and odd sizes;
 * finite-difference gradient checks; the layer API (aux states, summaries,
 * sequential, dropout, unbatched input, init); LSTM proj_size against PyTorch
 * (tests/data/seq_options_golden.safetensors from tools/gen_seq_options_golden.py);
 * and bad input. */
#include "rnn_common.h"

static void golden_mode(int mode, int with_lengths) {
  lam_ctx *ctx = tu_ctx();
  tu_golden *gold = tu_golden_load("rnn_golden.safetensors");
  int n = 0;
  for (int i = 0; i < tu_golden_count(gold, "rnn.seq_cases"); i++) {
    lam_rnn_golden gc;
    rc_golden_case(gold, "rnn.seq_cases", i, &gc);
    const lam_rnn_golden *g = &gc;
    if (g->mode != mode || (g->lengths != NULL) != with_lengths) continue;
    for (int bf = 0; bf < 2; bf++) rc_golden(ctx, g, LAM_F64, bf, 0, 0, 1e-10, 1e-8);
    rc_golden(ctx, g, LAM_F32, 0, 0, 0, 1e-4, 1e-3);
    n++;
  }
  cr_assert_geq(n, with_lengths ? 1 : 2, "no golden cases for mode %d", mode);
  tu_golden_free(gold);
  lam_ctx_free(ctx);
}

Test(rnn, tanh_matches_pytorch) { golden_mode(M_TANH, 0); }
Test(rnn, relu_matches_pytorch) { golden_mode(M_RELU, 0); }
Test(rnn, lstm_matches_pytorch) { golden_mode(M_LSTM, 0); }
Test(rnn, gru_matches_pytorch) { golden_mode(M_GRU, 0); }

/* Packed-sequence semantics, given as lengths and as the equivalent mask,
 * through the functional forms and through lam_layer_apply with aux. */
Test(rnn, variable_lengths_match_pytorch) {
  lam_ctx *ctx = tu_ctx();
  tu_golden *gold = tu_golden_load("rnn_golden.safetensors");
  int n = 0;
  for (int i = 0; i < tu_golden_count(gold, "rnn.seq_cases"); i++) {
    lam_rnn_golden gc;
    rc_golden_case(gold, "rnn.seq_cases", i, &gc);
    const lam_rnn_golden *g = &gc;
    if (!g->lengths) continue;
    for (int bf = 0; bf < 2; bf++)
      for (int as_mask = 0; as_mask < 2; as_mask++)
        rc_golden(ctx, g, LAM_F64, bf, 0, as_mask, 1e-10, 1e-8);
    rc_golden(ctx, g, LAM_F64, 1, 1, 0, 1e-10, 1e-8);
    rc_golden(ctx, g, LAM_F64, 0, 1, 1, 1e-10, 1e-8);
    rc_golden(ctx, g, LAM_F32, 0, 0, 0, 1e-4, 1e-3);
    n++;
  }
  cr_assert_geq(n, 4);
  tu_golden_free(gold);
  lam_ctx_free(ctx);
}

/* lam_layer_apply with initial states in aux and final states as summaries. */
Test(rnn, apply_with_aux_matches_pytorch) {
  lam_ctx *ctx = tu_ctx();
  tu_golden *gold = tu_golden_load("rnn_golden.safetensors");
  int n = 0;
  for (int i = 0; i < tu_golden_count(gold, "rnn.seq_cases"); i++) {
    lam_rnn_golden gc;
    rc_golden_case(gold, "rnn.seq_cases", i, &gc);
    const lam_rnn_golden *g = &gc;
    if (g->lengths || !g->has_h0 || g->T == 1) continue;
    rc_golden(ctx, g, LAM_F64, i % 2, 1, 0, 1e-10, 1e-8);
    n++;
  }
  cr_assert_geq(n, 4);
  tu_golden_free(gold);
  lam_ctx_free(ctx);
}

/* ---- against the C reference: masks with holes, odd sizes ---------------- */

static lam_tensor *host_param(lam_ptree *p, const char *name, double **out) {
  lam_tensor *t = lam_ptree_get(p, name);
  *out = t ? rc_read(t) : NULL;
  return t;
}

/* One layer with random params, x, h0/c0 and mask; compares y, h_n, c_n. */
static void ref_case_b(lam_ctx *ctx, int mode, int D, int T, int B, int I, int H, int holes,
                       int use_len, lam_dtype dt, double tol, uint64_t seed, int bias) {
  tu_mark m = tu_mark_now(ctx);
  tu_rng r = tu_rng_make(seed);
  lam_rnn_opts o = lam_rnn_defaults();
  o.no_bias = !bias;
  o.bidirectional = D == 2;
  o.nonlinearity = mode == M_RELU ? LAM_RNN_RELU : LAM_RNN_TANH;
  lam_layer *layer = mode == M_LSTM  ? lam_nn_lstm(I, H, &o)
                     : mode == M_GRU ? lam_nn_gru(I, H, &o)
                                     : lam_nn_rnn(I, H, &o);
  lam_vars *vars = NULL;
  cr_assert_eq(lam_layer_init(layer, ctx, lam_rng_key_make(seed), dt, &vars), LAM_OK, "%s",
               lam_last_error());
  lam_ptree *p = lam_vars_params(vars);
  double *w[8] = {0};
  const char *kinds[4] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
  for (int d = 0; d < D; d++)
    for (int k = 0; k < (bias ? 4 : 2); k++) {
      char name[40];
      snprintf(name, sizeof name, "%s_l0%s", kinds[k], d ? "_reverse" : "");
      cr_assert(host_param(p, name, &w[4 * d + k]), "%s", name);
    }
  const int64_t nx = (int64_t)T * B * I, ns = (int64_t)D * B * H;
  double *x = tu_rand_vec(&r, nx, -1, 1), *h0 = tu_rand_vec(&r, ns, -1, 1), *c0 = tu_rand_vec(&r, ns, -1, 1);
  uint8_t *mk = malloc((size_t)(T * B));
  int32_t *len = malloc(sizeof(int32_t) * (size_t)B);
  for (int b = 0; b < B; b++) len[b] = 1 + (int32_t)tu_randint(&r, 0, T);
  for (int t = 0; t < T; t++)
    for (int b = 0; b < B; b++)
      mk[t * B + b] = holes ? (b == 0 ? 0 : tu_next(&r) % 3 != 0) : t < len[b];
  lam_tensor *xt = rc_tensor(ctx, dt, x, 3, (int64_t[]){T, B, I});
  lam_tensor *h0t = rc_tensor(ctx, dt, h0, 3, (int64_t[]){D, B, H});
  lam_tensor *c0t = mode == M_LSTM ? rc_tensor(ctx, dt, c0, 3, (int64_t[]){D, B, H}) : NULL;
  lam_tensor *lt = use_len ? lam_tensor_from_host(ctx, LAM_I32, 1, (int64_t[]){B}, len)
                           : lam_tensor_from_host(ctx, LAM_U8, 2, (int64_t[]){T, B}, mk);
  lam_tensor *y = NULL, *hn = NULL, *cn = NULL;
  lam_status st = mode == M_LSTM  ? lam_nn_lstm_apply(layer, p, xt, h0t, c0t, lt, NULL, &y, &hn, &cn)
                  : mode == M_GRU ? lam_nn_gru_apply(layer, p, xt, h0t, lt, NULL, &y, &hn)
                                  : lam_nn_rnn_apply(layer, p, xt, h0t, lt, NULL, &y, &hn);
  cr_assert_eq(st, LAM_OK, "%s", lam_last_error());
  double *ry = malloc(sizeof(double) * (size_t)(T * B * D * H)),
         *rh = malloc(sizeof(double) * (size_t)ns);
  double *rc = malloc(sizeof(double) * (size_t)ns);
  rc_ref_layer(mode, D, T, B, I, H, x, (const double *const *)w, h0, mode == M_LSTM ? c0 : NULL, mk,
               ry, rh, mode == M_LSTM ? rc : NULL);
  char what[96];
  snprintf(what, sizeof what, "mode %d D %d T %d B %d H %d %s %s", mode, D, T, B, H,
           holes     ? "holes"
           : use_len ? "lengths"
                     : "prefix mask",
           lam_dtype_name(dt));
  double *gy = rc_read(y), *gh = rc_read(hn);
  rc_expect(gy, ry, (int64_t)T * B * D * H, tol, tol, "y", what);
  rc_expect(gh, rh, ns, tol, tol, "h_n", what);
  free(gy);
  free(gh);
  if (mode == M_LSTM) {
    double *gc = rc_read(cn);
    rc_expect(gc, rc, ns, tol, tol, "c_n", what);
    free(gc);
  }
  free(ry), free(rh), free(rc), free(x), free(h0), free(c0), free(mk), free(len);
  for (int i = 0; i < 8; i++) free(w[i]);
  lam_tensor_free(y), lam_tensor_free(hn), lam_tensor_free(cn);
  lam_tensor_free(xt), lam_tensor_free(h0t), lam_tensor_free(c0t), lam_tensor_free(lt);
  lam_vars_free(vars);
  lam_layer_free(layer);
  tu_assert_no_leak(ctx, m);
}

static void ref_case(lam_ctx *ctx, int mode, int D, int T, int B, int I, int H, int holes,
                     int use_len, lam_dtype dt, double tol, uint64_t seed) {
  ref_case_b(ctx, mode, D, T, B, I, H, holes, use_len, dt, tol, seed, 1);
}

Test(rnn, masks_with_holes_match_reference) {
  lam_ctx *ctx = tu_ctx();
  for (int mode = 0; mode < 4; mode++) {
    ref_case(ctx, mode, 2, 6, 5, 3, 7, 1, 0, LAM_F64, 1e-12, 100 + mode);
    ref_case(ctx, mode, 2, 6, 5, 3, 7, 0, 0, LAM_F64, 1e-12, 200 + mode); /* prefix mask */
  }
  lam_ctx_free(ctx);
}

/* Sizes that are not multiples of any work-group size. */
Test(rnn, odd_sizes_match_reference) {
  lam_ctx *ctx = tu_ctx();
  const int B = tu_small() ? 5 : 33, H = tu_small() ? 9 : 65;
  for (int mode = 0; mode < 4; mode++) {
    ref_case(ctx, mode, 2, 4, B, 5, H, 0, 1, LAM_F64, 1e-11, 300 + mode);
    ref_case(ctx, mode, 1, 3, B, 7, H, 0, 1, LAM_F32, 2e-5, 400 + mode);
  }
  ref_case(ctx, M_LSTM, 1, 2, 1, 1, 1, 0, 1, LAM_F64, 1e-12, 500); /* all ones */
  lam_ctx_free(ctx);
}

/* ---- finite differences ----------------------------------------------------- */

/* Small 2-layer bidirectional cases with states and lengths (or a mask with
 * holes), all inputs checked in groups of at most 8. */
static void gradcheck_mode(int mode, int holes) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  rcase c;
  memset(&c, 0, sizeof c);
  c.mode = mode, c.layers = 2, c.bidir = 1, c.T = 3, c.B = 2, c.I = 2, c.H = 2, c.has_h0 = 1;
  c.dt = LAM_F64, c.bf = mode == M_GRU;
  c.layer = rc_layer(&c);
  rc_setup(ctx, &c, 77 + mode);
  lam_tensor *len;
  if (holes) {
    const uint8_t mk[6] = {1, 0, 0, 1, 1, 1}; /* [T, B] with a hole in row 0 and a late start */
    len = lam_tensor_from_host(ctx, LAM_U8, 2, c.bf ? (int64_t[]){2, 3} : (int64_t[]){3, 2}, mk);
  } else {
    len = lam_tensor_from_host(ctx, LAM_I32, 1, (int64_t[]){2}, (int32_t[]){2, 3});
  }
  c.lengths = len;
  for (int start = 0; start < c.n_all; start += 8) {
    int n = c.n_all - start < 8 ? c.n_all - start : 8;
    c.n_sel = n;
    lam_tensor *xs[8];
    for (int i = 0; i < n; i++) c.sel[i] = start + i, xs[i] = c.all[start + i];
    char what[64];
    snprintf(what, sizeof what, "mode %d inputs %d..%d%s", mode, start, start + n - 1,
             holes ? " holes" : "");
    tu_gradcheck(ctx, rc_fn, &c, xs, n, 1e-6, 1e-6, 0, 0, what); /* f32: the golden tests */
  }
  lam_tensor_free(len);
  rc_free(&c);
  lam_layer_free(c.layer);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

Test(rnn, gradcheck_tanh) { gradcheck_mode(M_TANH, 0); }
Test(rnn, gradcheck_relu) { gradcheck_mode(M_RELU, 1); }
Test(rnn, gradcheck_lstm) {
  gradcheck_mode(M_LSTM, 0);
  gradcheck_mode(M_LSTM, 1);
}
Test(rnn, gradcheck_gru) {
  gradcheck_mode(M_GRU, 0);
  gradcheck_mode(M_GRU, 1);
}

/* ---- layer API --------------------------------------------------------------- */

Test(rnn, unbatched_equals_batch_of_one) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  tu_rng r = tu_rng_make(5);
  lam_rnn_opts o = lam_rnn_defaults();
  o.num_layers = 2;
  o.bidirectional = true;
  o.batch_first = true; /* ignored for unbatched input, as PyTorch */
  lam_layer *l = lam_nn_lstm(3, 4, &o);
  lam_vars *v = NULL;
  cr_assert_eq(lam_layer_init(l, ctx, lam_rng_key_make(1), LAM_F64, &v), LAM_OK);
  lam_tensor *x = tu_rand_f64(ctx, &r, 2, (int64_t[]){5, 3}, -1, 1);
  lam_tensor *h0 = tu_rand_f64(ctx, &r, 2, (int64_t[]){4, 4}, -1, 1);
  lam_tensor *y = NULL, *hn = NULL, *cn = NULL, *y1 = NULL, *hn1 = NULL, *cn1 = NULL;
  cr_assert_eq(lam_nn_lstm_apply(l, lam_vars_params(v), x, h0, NULL, NULL, NULL, &y, &hn, &cn),
               LAM_OK, "%s", lam_last_error());
  cr_assert_eq(lam_tensor_ndim(y), 2);
  cr_assert_eq(lam_tensor_dim(y, 0), 5);
  cr_assert_eq(lam_tensor_dim(y, 1), 8);
  cr_assert_eq(lam_tensor_ndim(hn), 2);
  cr_assert_eq(lam_tensor_dim(cn, 0), 4);
  lam_tensor *xb = lam_reshape(x, 3, (int64_t[]){1, 5, 3}); /* batch_first [B=1, T, I] */
  lam_tensor *hb = lam_reshape(h0, 3, (int64_t[]){4, 1, 4});
  cr_assert_eq(lam_nn_lstm_apply(l, lam_vars_params(v), xb, hb, NULL, NULL, NULL, &y1, &hn1, &cn1),
               LAM_OK);
  double *a = rc_read(y), *b = rc_read(y1);
  rc_expect(a, b, 40, 1e-14, 0, "y", "unbatched");
  free(a), free(b);
  a = rc_read(hn), b = rc_read(hn1);
  rc_expect(a, b, 16, 1e-14, 0, "h_n", "unbatched");
  free(a), free(b);
  lam_tensor_free(y), lam_tensor_free(hn), lam_tensor_free(cn);
  lam_tensor_free(y1), lam_tensor_free(hn1), lam_tensor_free(cn1);
  lam_tensor_free(xb), lam_tensor_free(hb), lam_tensor_free(x), lam_tensor_free(h0);
  lam_vars_free(v);
  lam_layer_free(l);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

Test(rnn, init_names_shapes_and_bounds) {
  lam_ctx *ctx = tu_ctx();
  lam_rnn_opts o = lam_rnn_defaults();
  o.num_layers = 2;
  o.bidirectional = true;
  lam_layer *l = lam_nn_gru(5, 16, &o);
  lam_vars *v = NULL, *v2 = NULL, *v3 = NULL;
  cr_assert_eq(lam_layer_init(l, ctx, lam_rng_key_make(9), LAM_F32, &v), LAM_OK, "%s",
               lam_last_error());
  cr_assert_eq(lam_layer_init(l, ctx, lam_rng_key_make(9), LAM_F32, &v2), LAM_OK);
  cr_assert_eq(lam_layer_init(l, ctx, lam_rng_key_make(10), LAM_F32, &v3), LAM_OK);
  lam_ptree *p = lam_vars_params(v);
  cr_assert_eq(lam_ptree_leaf_count(p), 16);
  const char *want[] = {"weight_ih_l0",       "weight_hh_l0",         "bias_ih_l0",
                        "bias_hh_l0",         "weight_ih_l0_reverse", "weight_hh_l0_reverse",
                        "bias_ih_l0_reverse", "bias_hh_l0_reverse",   "weight_ih_l1"};
  for (int i = 0; i < 9; i++) {
    const char *path;
    lam_tensor *t;
    cr_assert_eq(lam_ptree_leaf(p, i, &path, &t), LAM_OK);
    cr_assert_str_eq(path, want[i]);
  }
  lam_tensor *w = lam_ptree_get(p, "weight_ih_l1_reverse");
  cr_assert_eq(lam_tensor_dim(w, 0), 48);
  cr_assert_eq(lam_tensor_dim(w, 1), 32);
  cr_assert_eq(lam_tensor_dim(lam_ptree_get(p, "bias_hh_l1"), 0), 48);
  /* U(-1/4, 1/4): bounded, centred, spread; deterministic per key */
  float *a = tu_read_f32(w),
        *b = tu_read_f32(lam_ptree_get(lam_vars_params(v2), "weight_ih_l1_reverse"));
  float *c = tu_read_f32(lam_ptree_get(lam_vars_params(v3), "weight_ih_l1_reverse"));
  double mean = 0, mx = 0;
  int same = 0;
  for (int i = 0; i < 48 * 32; i++) {
    cr_assert(a[i] >= -0.25f && a[i] < 0.25f, "%g", a[i]);
    cr_assert_eq(a[i], b[i]);
    same += a[i] == c[i];
    mean += a[i];
    mx = fmax(mx, fabs(a[i]));
  }
  cr_assert(fabs(mean / (48 * 32)) < 0.02, "mean %g", mean / (48 * 32));
  cr_assert(mx > 0.24, "max %g", mx);
  cr_assert(same < 10);
  free(a), free(b), free(c);
  /* different params of one layer differ */
  float *bi = tu_read_f32(lam_ptree_get(p, "bias_ih_l0")),
        *bh = tu_read_f32(lam_ptree_get(p, "bias_hh_l0"));
  cr_assert(bi[0] != bh[0] || bi[1] != bh[1]);
  free(bi), free(bh);
  lam_vars_free(v), lam_vars_free(v2), lam_vars_free(v3);
  lam_layer_free(l);
  /* no bias; custom init */
  o = lam_rnn_defaults();
  o.no_bias = true;
  o.weight_init = lam_init_constant(0.5);
  l = lam_nn_rnn(2, 3, &o);
  cr_assert_eq(lam_layer_init(l, ctx, lam_rng_key_make(1), LAM_F64, &v), LAM_OK);
  cr_assert_eq(lam_ptree_leaf_count(lam_vars_params(v)), 2);
  double *wv = tu_read_f64(lam_ptree_get(lam_vars_params(v), "weight_hh_l0"));
  for (int i = 0; i < 9; i++) cr_assert_eq(wv[i], 0.5);
  free(wv);
  lam_vars_free(v);
  lam_layer_free(l);
  lam_ctx_free(ctx);
}

/* Dropout between layers: active only in training, keyed by the rng. */
Test(rnn, dropout_between_layers) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  tu_rng r = tu_rng_make(3);
  lam_rnn_opts o = lam_rnn_defaults();
  o.num_layers = 2;
  o.dropout = 0.5;
  lam_layer *l = lam_nn_lstm(3, 8, &o);
  o.dropout = 0;
  lam_layer *l0 = lam_nn_lstm(3, 8, &o);
  lam_vars *v = NULL;
  cr_assert_eq(lam_layer_init(l, ctx, lam_rng_key_make(2), LAM_F64, &v), LAM_OK);
  lam_tensor *x = tu_rand_f64(ctx, &r, 3, (int64_t[]){4, 2, 3}, -1, 1);
  lam_rng_key k1 = lam_rng_key_make(11), k2 = lam_rng_key_make(12);
  lam_apply_opts ev = {false, NULL, NULL, NULL}, tr1 = {true, &k1, NULL, NULL},
                 tr2 = {true, &k2, NULL, NULL};
  lam_tensor *ye = NULL, *y0 = NULL, *ya = NULL, *yb = NULL, *yc = NULL;
  cr_assert_eq(lam_layer_apply(l, v, x, &ev, &ye), LAM_OK);
  cr_assert_eq(lam_layer_apply(l0, v, x, &tr1, &y0), LAM_OK); /* rate 0: no rng needed either */
  cr_assert_eq(lam_layer_apply(l, v, x, &tr1, &ya), LAM_OK, "%s", lam_last_error());
  cr_assert_eq(lam_layer_apply(l, v, x, &tr1, &yb), LAM_OK);
  cr_assert_eq(lam_layer_apply(l, v, x, &tr2, &yc), LAM_OK);
  double *e = rc_read(ye), *z = rc_read(y0), *a = rc_read(ya), *b = rc_read(yb), *c = rc_read(yc);
  int diff_a = 0, diff_c = 0;
  for (int i = 0; i < 64; i++) {
    cr_assert_eq(e[i], z[i]);
    cr_assert_eq(a[i], b[i]);
    diff_a += a[i] != e[i];
    diff_c += c[i] != a[i];
  }
  cr_assert(diff_a > 32 && diff_c > 32, "%d %d", diff_a, diff_c);
  free(e), free(z), free(a), free(b), free(c);
  lam_tensor *bad = NULL;
  lam_apply_opts norng = {true, NULL, NULL, NULL};
  tu_assert_status(lam_layer_apply(l, v, x, &norng, &bad), LAM_ERR_INVALID_ARGUMENT, "rng key");
  cr_assert_null(bad);
  lam_tensor_free(ye), lam_tensor_free(y0), lam_tensor_free(ya), lam_tensor_free(yb),
      lam_tensor_free(yc);
  lam_tensor_free(x);
  lam_vars_free(v);
  lam_layer_free(l), lam_layer_free(l0);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

typedef struct {
  lam_layer *model;
  lam_tensor *x;
  lam_aux *aux;
  lam_ptree *state;
} seq_user;

static lam_tensor *seq_loss(lam_ptree *params, void *user) {
  seq_user *u = user;
  lam_apply_opts o = {true, NULL, u->aux, NULL};
  lam_tensor *y = NULL;
  lam_layer_apply_with(u->model, params, u->state, u->x, &o, &y);
  lam_tensor *s = y ? lam_sum(y, 0, NULL, 0) : NULL;
  lam_tensor_free(y);
  return s;
}

/* Inside lam_nn_sequential with lengths through aux; gradients reach every
 * parameter by its PyTorch path. */
Test(rnn, inside_sequential_with_value_and_grad) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  tu_rng r = tu_rng_make(8);
  lam_rnn_opts o = lam_rnn_defaults();
  o.batch_first = true;
  o.bidirectional = true;
  lam_layer *model = lam_nn_sequential((lam_layer *[]){lam_nn_gru(3, 5, &o), lam_nn_linear(10, 2, NULL)}, 2);
  cr_assert(model, "%s", lam_last_error());
  lam_vars *v = NULL;
  cr_assert_eq(lam_layer_init(model, ctx, lam_rng_key_make(4), LAM_F32, &v), LAM_OK, "%s",
               lam_last_error());
  cr_assert(lam_ptree_get(lam_vars_params(v), "0.weight_hh_l0_reverse"));
  seq_user u = {model, tu_rand_f32(ctx, &r, 3, (int64_t[]){3, 6, 3}, -1, 1), lam_aux_create(),
                lam_vars_state(v)};
  lam_tensor *len = lam_tensor_from_host(ctx, LAM_I32, 1, (int64_t[]){3}, (int32_t[]){6, 2, 4});
  lam_aux_set(u.aux, "lengths", len);
  lam_tensor *loss = NULL;
  lam_ptree *grads = NULL;
  cr_assert_eq(lam_value_and_grad(ctx, seq_loss, &u, lam_vars_params(v), &loss, &grads), LAM_OK,
               "%s", lam_last_error());
  cr_assert_eq(lam_ptree_leaf_count(grads), 10);
  float *g = tu_read_f32(lam_ptree_get(grads, "0.weight_ih_l0_reverse"));
  double s = 0;
  for (int i = 0; i < 45; i++) s += fabs(g[i]);
  cr_assert(s > 0);
  free(g);
  lam_tensor_free(loss);
  lam_ptree_free(grads);
  lam_tensor_free(len);
  lam_tensor_free(u.x);
  lam_aux_free(u.aux);
  lam_vars_free(v);
  lam_layer_free(model);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- no biases; partial initial states --------------------------------------- */

typedef struct {
  lam_layer *layer;
  int lstm;
  int which; /* states given: 1 h0, 2 c0, 3 both (xs[1], xs[2]) */
} nb_case;

/* xs: x, then the params of a one-layer bidirectional layer without biases
 * (4 tensors), then up to two states; returns y and h_n flat. */
static lam_tensor *nb_fn(lam_tensor *const *xs, int n, void *user) {
  nb_case *c = user;
  lam_ptree *p = lam_ptree_dict();
  const char *names[4] = {"weight_ih_l0", "weight_hh_l0", "weight_ih_l0_reverse",
                          "weight_hh_l0_reverse"};
  for (int i = 0; i < 4; i++) lam_ptree_set(p, names[i], xs[1 + i]);
  lam_tensor *h0 = n > 5 ? xs[5] : NULL, *y = NULL, *hn = NULL;
  lam_status st = c->lstm
                      ? lam_nn_lstm_apply(c->layer, p, xs[0], h0, NULL, NULL, NULL, &y, &hn, NULL)
                      : lam_nn_gru_apply(c->layer, p, xs[0], h0, NULL, NULL, &y, &hn);
  lam_ptree_free(p);
  if (st != LAM_OK) return NULL;
  lam_tensor *parts[2] = {rc_flat(y), rc_flat(hn)};
  lam_tensor *out = lam_concat(parts, 2, 0);
  lam_tensor_free(parts[0]), lam_tensor_free(parts[1]), lam_tensor_free(y), lam_tensor_free(hn);
  return out;
}

Test(rnn, no_bias_matches_reference_and_gradcheck) {
  lam_ctx *ctx = tu_ctx();
  for (int mode = 0; mode < 4; mode++)
    ref_case_b(ctx, mode, 2, 5, 3, 4, 6, mode == M_GRU, mode != M_GRU, LAM_F64, 1e-12, 600 + mode,
               0);
  tu_mark m = tu_mark_now(ctx);
  tu_rng r = tu_rng_make(61);
  for (int lstm = 0; lstm < 2; lstm++) {
    lam_rnn_opts o = lam_rnn_defaults();
    o.no_bias = true;
    o.bidirectional = true;
    nb_case c = {lstm ? lam_nn_lstm(2, 2, &o) : lam_nn_gru(2, 2, &o), lstm, 1};
    const int64_t GH = lstm ? 8 : 6;
    lam_tensor *xs[6] = {tu_rand_f64(ctx, &r, 3, (int64_t[]){3, 2, 2}, -1, 1),
                         tu_rand_f64(ctx, &r, 2, (int64_t[]){GH, 2}, -0.8, 0.8),
                         tu_rand_f64(ctx, &r, 2, (int64_t[]){GH, 2}, -0.8, 0.8),
                         tu_rand_f64(ctx, &r, 2, (int64_t[]){GH, 2}, -0.8, 0.8),
                         tu_rand_f64(ctx, &r, 2, (int64_t[]){GH, 2}, -0.8, 0.8),
                         tu_rand_f64(ctx, &r, 3, (int64_t[]){2, 2, 2}, -1, 1)};
    tu_gradcheck(ctx, nb_fn, &c, xs, 6, 1e-6, 1e-6, 1, 2e-3, lstm ? "lstm no bias" : "gru no bias");
    for (int i = 0; i < 6; i++) lam_tensor_free(xs[i]);
    lam_layer_free(c.layer);
  }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

typedef struct {
  lam_layer *layer;
  lam_ptree *params;
  lam_tensor *x, *zeros;
  int which; /* 1: h0 = xs[0], c0 absent; 2: c0 = xs[0], h0 absent; +4: the absent one as zeros */
} ps_case;

static lam_tensor *ps_fn(lam_tensor *const *xs, int n, void *user) {
  ps_case *c = user;
  const int k = c->which & 3, z = c->which & 4;
  lam_tensor *h0 = k == 1 ? xs[0] : z ? c->zeros : NULL, *c0 = k == 2 ? xs[0] : z ? c->zeros : NULL;
  lam_tensor *y = NULL, *hn = NULL, *cn = NULL;
  if (lam_nn_lstm_apply(c->layer, c->params, c->x, h0, c0, NULL, NULL, &y, &hn, &cn) != LAM_OK)
    return NULL;
  lam_tensor *parts[3] = {rc_flat(y), rc_flat(hn), rc_flat(cn)};
  lam_tensor *out = lam_concat(parts, 3, 0);
  for (int i = 0; i < 3; i++) lam_tensor_free(parts[i]);
  lam_tensor_free(y), lam_tensor_free(hn), lam_tensor_free(cn);
  return out;
}

/* An LSTM given only h0 or only c0 treats the other as zeros. */
Test(rnn, lstm_partial_initial_states) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  tu_rng r = tu_rng_make(71);
  lam_rnn_opts o = lam_rnn_defaults();
  o.num_layers = 2;
  lam_layer *l = lam_nn_lstm(3, 4, &o);
  lam_vars *v = NULL;
  cr_assert_eq(lam_layer_init(l, ctx, lam_rng_key_make(5), LAM_F64, &v), LAM_OK);
  ps_case c = {l, lam_vars_params(v), tu_rand_f64(ctx, &r, 3, (int64_t[]){4, 2, 3}, -1, 1),
               lam_tensor_zeros(ctx, LAM_F64, 3, (int64_t[]){2, 2, 4}), 0};
  lam_tensor *s = tu_rand_f64(ctx, &r, 3, (int64_t[]){2, 2, 4}, -1, 1);
  for (int k = 1; k <= 2; k++) {
    lam_tensor *w = NULL, *ga = NULL, *gb = NULL, *ya = NULL, *yb = NULL;
    c.which = k;
    ya = ps_fn(&s, 1, &c);
    cr_assert(ya, "%s", lam_last_error());
    double *wv = tu_rand_vec(&r, lam_tensor_numel(ya), -1, 1);
    w = rc_tensor(ctx, LAM_F64, wv, 1, (int64_t[]){lam_tensor_numel(ya)});
    free(wv);
    cr_assert_eq(lam_vjp(ctx, ps_fn, &c, &s, 1, w, NULL, &ga), LAM_OK, "%s", lam_last_error());
    c.which = k + 4;
    yb = ps_fn(&s, 1, &c);
    cr_assert_eq(lam_vjp(ctx, ps_fn, &c, &s, 1, w, NULL, &gb), LAM_OK, "%s", lam_last_error());
    double *a = rc_read(ya), *b = rc_read(yb);
    rc_expect(a, b, lam_tensor_numel(ya), 1e-15, 0, "outputs", k == 1 ? "h0 only" : "c0 only");
    free(a), free(b);
    a = rc_read(ga), b = rc_read(gb);
    rc_expect(a, b, 16, 1e-15, 0, "state gradient", k == 1 ? "h0 only" : "c0 only");
    free(a), free(b);
    lam_tensor_free(w), lam_tensor_free(ga), lam_tensor_free(gb), lam_tensor_free(ya),
        lam_tensor_free(yb);
  }
  lam_tensor_free(s), lam_tensor_free(c.x), lam_tensor_free(c.zeros);
  lam_vars_free(v);
  lam_layer_free(l);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- bad input ------------------------------------------------------------------ */

/* ---- LSTM proj_size ------------------------------------------------------------- */

/* A torch.nn.LSTM(proj_size=P) case of tools/gen_seq_options_golden.py:
 * xs are x, then h0 and c0 (when the case has them), then the params in the
 * state_dict order of "<case>.params"; the function is sum(y cy) + sum(h_n
 * ch) + sum(c_n cc) with the stored cotangents. */
typedef struct {
  lam_layer *layer;
  char names[24][48]; /* copies: tu_golden_word's buffer is reused */
  int np, has0, bf;
  lam_tensor *lengths, *cy, *ch, *cc;
} proj_user;

static lam_tensor *proj_fn(lam_tensor *const *xs, int n, void *user) {
  proj_user *u = user;
  const int off = u->has0 ? 3 : 1;
  lam_ptree *p = lam_ptree_dict();
  for (int i = 0; i < u->np; i++) lam_ptree_set(p, u->names[i], xs[off + i]);
  lam_tensor *x = u->bf ? lam_transpose(xs[0], 0, 1) : lam_tensor_retain(xs[0]);
  lam_tensor *y = NULL, *hn = NULL, *cn = NULL;
  lam_status st = lam_nn_lstm_apply(u->layer, p, x, u->has0 ? xs[1] : NULL, u->has0 ? xs[2] : NULL, u->lengths,
                                    NULL, &y, &hn, &cn);
  lam_ptree_free(p);
  lam_tensor_free(x);
  if (st != LAM_OK) return NULL;
  lam_tensor *yt = u->bf ? lam_transpose(y, 0, 1) : lam_tensor_retain(y);
  lam_tensor *a = lam_mul(yt, u->cy), *b = lam_mul(hn, u->ch), *c = lam_mul(cn, u->cc);
  lam_tensor *sa = lam_sum(a, 0, NULL, 0), *sb = lam_sum(b, 0, NULL, 0), *sc = lam_sum(c, 0, NULL, 0);
  lam_tensor *s1 = lam_add(sa, sb), *s = lam_add(s1, sc);
  lam_tensor *all[] = {y, hn, cn, yt, a, b, c, sa, sb, sc, s1};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) lam_tensor_free(all[i]);
  return s;
}

typedef struct {
  proj_user *u;
  lam_tensor **all;
  int idx[8], n, total;
} proj_subset;

static lam_tensor *proj_subset_fn(lam_tensor *const *xs, int n, void *user) {
  proj_subset *su = user;
  lam_tensor *in[32];
  for (int i = 0; i < su->total; i++) in[i] = su->all[i];
  for (int i = 0; i < n; i++) in[su->idx[i]] = xs[i];
  return proj_fn(in, su->total, su->u);
}

/* Outputs, final states and every gradient against torch.nn.LSTM(proj_size)
 * (tests/data/seq_options_golden.safetensors): one layer with h0 / c0, and
 * two bidirectional layers with variable lengths; both time-major and
 * batch_first; the params lamina creates are exactly torch's state_dict keys
 * and shapes; then an f64 finite-difference check. */
Test(rnn, lstm_proj_size_matches_pytorch) {
  /* proj_size composes existing ops step by step (no kernel of its own, so
   * nothing for Oclgrind to check) and runs thousands of launches: skipped
   * on the small-shape (Oclgrind) run. */
  if (tu_small()) cr_skip_test("proj_size owns no kernels; its ops run under Oclgrind in other tests");
  lam_ctx *ctx = tu_ctx();
  tu_golden *gold = tu_golden_load("seq_options_golden.safetensors");
  const char *cases[] = {"lstmp1", "lstmp2"};
  for (int ci = 0; ci < 2; ci++) {
    const char *cs = cases[ci];
    int d[7];
    cr_assert_eq(tu_golden_ints(gold, d, 7, "%s.dims", cs), 7);
    const int I = d[0], H = d[1], P = d[2], L = d[3], D = d[4], T = d[5], B = d[6];
    char key[64];
    snprintf(key, sizeof key, "%s.params", cs);
    for (int bf = 0; bf < 2; bf++) {
      tu_mark mk = tu_mark_now(ctx);
      lam_rnn_opts o = {.num_layers = L, .bidirectional = D == 2, .proj_size = P, .batch_first = bf};
      proj_user u = {.layer = lam_nn_lstm(I, H, &o), .np = tu_golden_count(gold, key), .bf = bf};
      cr_assert_not_null(u.layer, "%s", lam_last_error());
      u.has0 = tu_golden_find(gold, "%s.h0", cs) != NULL;
      if (tu_golden_find(gold, "%s.lengths", cs)) u.lengths = tu_golden_tensor(ctx, LAM_I32, gold, "%s.lengths", cs);
      u.cy = tu_golden_tensor(ctx, LAM_F64, gold, "%s.cy", cs);
      u.ch = tu_golden_tensor(ctx, LAM_F64, gold, "%s.ch", cs);
      u.cc = tu_golden_tensor(ctx, LAM_F64, gold, "%s.cc", cs);
      lam_tensor *xs[32] = {0}, *g[32] = {0};
      int n = 0;
      xs[n++] = tu_golden_tensor(ctx, LAM_F64, gold, "%s.x", cs);
      if (u.has0) {
        xs[n++] = tu_golden_tensor(ctx, LAM_F64, gold, "%s.h0", cs);
        xs[n++] = tu_golden_tensor(ctx, LAM_F64, gold, "%s.c0", cs);
      }
      /* lamina's own params: the same keys and shapes as torch's state_dict. */
      lam_vars *v = NULL;
      cr_assert_eq(lam_layer_init(u.layer, ctx, lam_rng_key_make(4), LAM_F64, &v), LAM_OK, "%s", lam_last_error());
      cr_assert_eq(lam_ptree_leaf_count(lam_vars_params(v)), u.np, "%s: param count", cs);
      for (int i = 0; i < u.np; i++) {
        snprintf(u.names[i], sizeof u.names[i], "%s", tu_golden_word(gold, key, i));
        xs[n++] = tu_golden_tensor(ctx, LAM_F64, gold, "%s.p.%s", cs, u.names[i]);
        lam_tensor *mine = lam_ptree_get(lam_vars_params(v), u.names[i]);
        cr_assert_not_null(mine, "%s: lamina has no \"%s\"", cs, u.names[i]);
        const tu_array *ta = tu_golden_get(gold, "%s.p.%s", cs, u.names[i]);
        cr_assert_eq(lam_tensor_ndim(mine), ta->ndim, "%s", u.names[i]);
        for (int k = 0; k < ta->ndim; k++) cr_assert_eq(lam_tensor_shape(mine)[k], ta->shape[k], "%s", u.names[i]);
      }
      lam_vars_free(v);
      /* Outputs and final states. */
      lam_ptree *p = lam_ptree_dict();
      for (int i = 0; i < u.np; i++) lam_ptree_set(p, u.names[i], xs[n - u.np + i]);
      lam_tensor *x = bf ? lam_transpose(xs[0], 0, 1) : lam_tensor_retain(xs[0]);
      lam_tensor *y = NULL, *hn = NULL, *cn = NULL;
      cr_assert_eq(lam_nn_lstm_apply(u.layer, p, x, u.has0 ? xs[1] : NULL, u.has0 ? xs[2] : NULL, u.lengths, NULL,
                                     &y, &hn, &cn),
                   LAM_OK, "%s", lam_last_error());
      lam_tensor *yt = bf ? lam_transpose(y, 0, 1) : lam_tensor_retain(y);
      cr_assert_eq(lam_tensor_shape(yt)[2], D * P, "output is D * proj_size wide");
      tu_assert_tensor_close(yt, tu_golden_values(gold, "%s.y", cs), (int64_t)T * B * D * P, 1e-10, 1e-10, "y");
      tu_assert_tensor_close(hn, tu_golden_values(gold, "%s.hn", cs), (int64_t)L * D * B * P, 1e-10, 1e-10, "h_n");
      tu_assert_tensor_close(cn, tu_golden_values(gold, "%s.cn", cs), (int64_t)L * D * B * H, 1e-10, 1e-10, "c_n");
      lam_tensor *tmp[] = {x, y, hn, cn, yt};
      for (size_t i = 0; i < 5; i++) lam_tensor_free(tmp[i]);
      lam_ptree_free(p);
      /* Gradients of everything. */
      lam_tensor *one = lam_tensor_scalar(ctx, LAM_F64, 1.0);
      cr_assert_eq(lam_vjp(ctx, proj_fn, &u, xs, n, one, NULL, g), LAM_OK, "%s", lam_last_error());
      tu_assert_tensor_close(g[0], tu_golden_values(gold, "%s.gx", cs), (int64_t)T * B * I, 1e-10, 1e-10, "grad x");
      if (u.has0) {
        tu_assert_tensor_close(g[1], tu_golden_values(gold, "%s.gh0", cs), (int64_t)L * D * B * P, 1e-10, 1e-10, "grad h0");
        tu_assert_tensor_close(g[2], tu_golden_values(gold, "%s.gc0", cs), (int64_t)L * D * B * H, 1e-10, 1e-10, "grad c0");
      }
      for (int i = 0; i < u.np; i++) {
        const tu_array *ga = tu_golden_get(gold, "%s.g.%s", cs, u.names[i]);
        tu_assert_tensor_close(g[n - u.np + i], ga->v, ga->n, 1e-10, 1e-10, u.names[i]);
      }
      /* Finite differences (time-major only): x, the states, and the recurrent / projection weights. */
      if (!bf) {
        proj_subset su = {&u, xs, {0}, 0, n};
        for (int i = 0; i < (u.has0 ? 3 : 1); i++) su.idx[su.n++] = i;
        for (int i = 0; i < u.np && su.n < 8; i++)
          if (strstr(u.names[i], "weight_hr") || strstr(u.names[i], "weight_hh") || strstr(u.names[i], "bias_hh"))
            su.idx[su.n++] = n - u.np + i;
        lam_tensor *sx[8];
        for (int i = 0; i < su.n; i++) sx[i] = xs[su.idx[i]];
        tu_gradcheck(ctx, proj_subset_fn, &su, sx, su.n, 1e-6, 1e-6, 0, 0, cs);
      }
      lam_tensor_free(one);
      for (int i = 0; i < n; i++) {
        lam_tensor_free(xs[i]);
        lam_tensor_free(g[i]);
      }
      lam_tensor_free(u.lengths);
      lam_tensor_free(u.cy);
      lam_tensor_free(u.ch);
      lam_tensor_free(u.cc);
      lam_layer_free(u.layer);
      tu_assert_no_leak(ctx, mk);
    }
  }
  /* f32, and an unbatched input (batch row 0 of lstmp1, through the layer API with aux h0 / c0). */
  {
    tu_mark mk = tu_mark_now(ctx);
    lam_layer *l = lam_nn_lstm(3, 5, &(lam_rnn_opts){.proj_size = 2});
    lam_ptree *p = lam_ptree_dict();
    const char *nm[] = {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_hr_l0"};
    for (int i = 0; i < 5; i++) {
      lam_tensor *t = tu_golden_tensor(ctx, LAM_F32, gold, "lstmp1.p.%s", nm[i]);
      lam_ptree_set(p, nm[i], t);
      lam_tensor_free(t);
    }
    lam_tensor *x = tu_golden_tensor(ctx, LAM_F32, gold, "lstmp1.x"); /* [4, 3, 3] */
    lam_tensor *h0 = tu_golden_tensor(ctx, LAM_F32, gold, "lstmp1.h0"), *c0 = tu_golden_tensor(ctx, LAM_F32, gold, "lstmp1.c0");
    lam_tensor *y = NULL, *hn = NULL, *cn = NULL;
    cr_assert_eq(lam_nn_lstm_apply(l, p, x, h0, c0, NULL, NULL, &y, &hn, &cn), LAM_OK, "%s", lam_last_error());
    tu_assert_tensor_close(y, tu_golden_values(gold, "lstmp1.y"), 24, 2e-6, 1e-5, "f32 y");
    tu_assert_tensor_close(cn, tu_golden_values(gold, "lstmp1.cn"), 15, 2e-6, 1e-5, "f32 c_n");
    lam_tensor_free(y);
    lam_tensor_free(hn);
    lam_tensor_free(cn);
    lam_tensor *xs0 = lam_slice_axis(x, 1, 0, 1, 1), *h00 = lam_slice_axis(h0, 1, 0, 1, 1), *c00 = lam_slice_axis(c0, 1, 0, 1, 1);
    lam_tensor *x2 = lam_reshape(xs0, 2, (int64_t[]){4, 3}), *h2 = lam_reshape(h00, 2, (int64_t[]){1, 2}),
               *c2 = lam_reshape(c00, 2, (int64_t[]){1, 5});
    lam_aux *aux = lam_aux_create();
    lam_aux_set(aux, "h0", h2);
    lam_aux_set(aux, "c0", c2);
    lam_tensor *yu = NULL;
    lam_ptree *st = lam_ptree_dict();
    cr_assert_eq(lam_layer_apply_with(l, p, st, x2, &(lam_apply_opts){.aux = aux}, &yu), LAM_OK, "%s", lam_last_error());
    cr_assert(lam_tensor_ndim(yu) == 2 && lam_tensor_shape(yu)[0] == 4 && lam_tensor_shape(yu)[1] == 2, "unbatched [T, P]");
    const double *yg = tu_golden_values(gold, "lstmp1.y");
    double want[8];
    for (int t = 0; t < 4; t++)
      for (int j = 0; j < 2; j++) want[t * 2 + j] = yg[t * 3 * 2 + j];
    tu_assert_tensor_close(yu, want, 8, 2e-6, 1e-5, "unbatched = batch row 0");
    lam_tensor *all[] = {xs0, h00, c00, x2, h2, c2, yu, x, h0, c0};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) lam_tensor_free(all[i]);
    lam_aux_free(aux);
    lam_ptree_free(st);
    lam_ptree_free(p);
    lam_layer_free(l);
    tu_assert_no_leak(ctx, mk);
  }
  tu_golden_free(gold);
  lam_ctx_free(ctx);
}

/* One direction of a projected LSTM in plain C (zero initial states): a
 * masked step outputs 0 and keeps the states. y is [T, B, ystride] written
 * at column offset yoff; hn [B, P], cn [B, H]. */
static void ref_lstmp(int T, int B, int I, int H, int P, const double *x, const double *wih, const double *whh,
                      const double *bih, const double *bhh, const double *whr, const uint8_t *mask, int reverse,
                      double *y, int ystride, int yoff, double *hn, double *cn) {
  double *g = malloc(sizeof(double) * 4 * H), *hh = malloc(sizeof(double) * H), *h1 = malloc(sizeof(double) * P);
  for (int i = 0; i < B * P; i++) hn[i] = 0;
  for (int i = 0; i < B * H; i++) cn[i] = 0;
  for (int s = 0; s < T; s++) {
    const int t = reverse ? T - 1 - s : s;
    for (int b = 0; b < B; b++) {
      double *yo = y + ((int64_t)t * B + b) * ystride + yoff, *h = hn + b * P, *c = cn + b * H;
      if (!mask[t * B + b]) {
        for (int j = 0; j < P; j++) yo[j] = 0;
        continue;
      }
      for (int r = 0; r < 4 * H; r++) {
        double a = bih[r] + bhh[r];
        for (int k = 0; k < I; k++) a += wih[r * I + k] * x[((int64_t)t * B + b) * I + k];
        for (int k = 0; k < P; k++) a += whh[r * P + k] * h[k];
        g[r] = a;
      }
      for (int j = 0; j < H; j++) {
        c[j] = rc_sig(g[H + j]) * c[j] + rc_sig(g[j]) * tanh(g[2 * H + j]);
        hh[j] = rc_sig(g[3 * H + j]) * tanh(c[j]);
      }
      for (int j = 0; j < P; j++) {
        double a = 0;
        for (int k = 0; k < H; k++) a += whr[j * H + k] * hh[k];
        h1[j] = a;
      }
      for (int j = 0; j < P; j++) yo[j] = h[j] = h1[j];
    }
  }
  free(g);
  free(hh);
  free(h1);
}

/* proj_size on random odd sizes, bidirectional, with a step mask that has
 * holes (which PyTorch's packed sequences cannot express), against ref_lstmp. */
Test(rnn, lstm_proj_size_masks_with_holes_match_reference) {
  /* proj_size composes existing ops step by step (no kernel of its own, so
   * nothing for Oclgrind to check) and runs thousands of launches: skipped
   * on the small-shape (Oclgrind) run. */
  if (tu_small()) cr_skip_test("proj_size owns no kernels; its ops run under Oclgrind in other tests");
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(31);
  for (int rep = 0; rep < 2; rep++) {
    const int T = (int)tu_randint(&r, 1, 7), B = (int)tu_randint(&r, 1, 4), I = (int)tu_randint(&r, 1, 6);
    const int H = (int)tu_randint(&r, 2, 8), P = (int)tu_randint(&r, 1, H);
    lam_layer *l = lam_nn_lstm(I, H, &(lam_rnn_opts){.bidirectional = true, .proj_size = P});
    lam_vars *v = NULL;
    cr_assert_eq(lam_layer_init(l, ctx, lam_rng_key_make(40 + rep), LAM_F64, &v), LAM_OK, "%s", lam_last_error());
    lam_tensor *x = tu_rand_f64(ctx, &r, 3, (int64_t[]){T, B, I}, -1, 1);
    uint8_t *m = malloc((size_t)(T * B));
    for (int i = 0; i < T * B; i++) m[i] = tu_randint(&r, 0, 3) != 0;
    lam_tensor *mask = lam_tensor_from_host(ctx, LAM_U8, 2, (int64_t[]){T, B}, m);
    lam_tensor *y = NULL, *hn = NULL, *cn = NULL;
    cr_assert_eq(lam_nn_lstm_apply(l, lam_vars_params(v), x, NULL, NULL, mask, NULL, &y, &hn, &cn), LAM_OK, "%s",
                 lam_last_error());
    double *xv = tu_read_f64(x), *yw = malloc(sizeof(double) * T * B * 2 * P);
    double *hw = malloc(sizeof(double) * 2 * B * P), *cw = malloc(sizeof(double) * 2 * B * H);
    for (int d = 0; d < 2; d++) {
      const char *sfx = d ? "_reverse" : "";
      char n[5][40];
      const char *base[5] = {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_hr_l0"};
      double *pv[5];
      for (int i = 0; i < 5; i++) {
        snprintf(n[i], sizeof n[i], "%s%s", base[i], sfx);
        pv[i] = tu_read_f64(lam_ptree_get(lam_vars_params(v), n[i]));
      }
      ref_lstmp(T, B, I, H, P, xv, pv[0], pv[1], pv[2], pv[3], pv[4], m, d, yw, 2 * P, d * P, hw + d * B * P,
                cw + d * B * H);
      for (int i = 0; i < 5; i++) free(pv[i]);
    }
    tu_assert_tensor_close(y, yw, (int64_t)T * B * 2 * P, 1e-12, 1e-12, "proj outputs with holes");
    tu_assert_tensor_close(hn, hw, 2 * B * P, 1e-12, 1e-12, "proj h_n");
    tu_assert_tensor_close(cn, cw, 2 * B * H, 1e-12, 1e-12, "proj c_n");
    free(m); free(xv); free(yw); free(hw); free(cw);
    lam_tensor *all[] = {x, mask, y, hn, cn};
    for (size_t i = 0; i < 5; i++) lam_tensor_free(all[i]);
    lam_vars_free(v);
    lam_layer_free(l);
  }
  lam_ctx_free(ctx);
}

Test(rnn, bad_input) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(2);
  lam_rnn_opts o = lam_rnn_defaults();
  tu_assert_fails(lam_nn_lstm(0, 4, NULL), LAM_ERR_INVALID_ARGUMENT, "input_size 0");
  tu_assert_fails(lam_nn_gru(3, -2, NULL), LAM_ERR_INVALID_ARGUMENT, "hidden_size -2");
  tu_assert_fails(lam_nn_lstm(3, 4, &(lam_rnn_opts){.proj_size = 4}), LAM_ERR_INVALID_ARGUMENT,
                  "proj_size 4 must be in [0, hidden_size 4)");
  tu_assert_fails(lam_nn_lstm(3, 4, &(lam_rnn_opts){.proj_size = -1}), LAM_ERR_INVALID_ARGUMENT, "proj_size -1");
  tu_assert_fails(lam_nn_gru(3, 4, &(lam_rnn_opts){.proj_size = 2}), LAM_ERR_INVALID_ARGUMENT, "for LSTMs only");
  o.num_layers = -1; /* 0 is the default, 1 */
  tu_assert_fails(lam_nn_rnn(3, 4, &o), LAM_ERR_INVALID_ARGUMENT, "num_layers -1");
  o = lam_rnn_defaults();
  o.dropout = 1.0;
  tu_assert_fails(lam_nn_lstm(3, 4, &o), LAM_ERR_INVALID_ARGUMENT, "dropout 1");
  o = lam_rnn_defaults();
  o.nonlinearity = (lam_rnn_nonlinearity)7;
  tu_assert_fails(lam_nn_rnn(3, 4, &o), LAM_ERR_INVALID_ARGUMENT, "nonlinearity 7");
  o = lam_rnn_defaults();
  o.weight_init = lam_init_uniform(-1);
  tu_assert_fails(lam_nn_gru(3, 4, &o), LAM_ERR_INVALID_ARGUMENT, "weight_init");
  o = lam_rnn_defaults();
  o.num_layers = 2;
  lam_layer *l = lam_nn_lstm(3, 4, &o), *g = lam_nn_gru(3, 4, NULL);
  lam_vars *v = NULL;
  if (lam_ctx_device(ctx)->fp16) {
    tu_assert_status(lam_layer_init(l, ctx, lam_rng_key_make(1), LAM_F16, &v), LAM_ERR_DTYPE,
                     "not f16");
  }
  cr_assert_eq(lam_layer_init(l, ctx, lam_rng_key_make(1), LAM_F32, &v), LAM_OK);
  lam_ptree *p = lam_vars_params(v);
  tu_mark m = tu_mark_now(ctx);
  lam_tensor *x = tu_rand_f32(ctx, &r, 3, (int64_t[]){5, 2, 3}, -1, 1);
  lam_tensor *x64 = tu_rand_f64(ctx, &r, 3, (int64_t[]){5, 2, 3}, -1, 1);
  lam_tensor *xw = tu_rand_f32(ctx, &r, 3, (int64_t[]){5, 2, 4}, -1, 1);
  lam_tensor *x4 = tu_rand_f32(ctx, &r, 4, (int64_t[]){5, 2, 3, 1}, -1, 1);
  lam_tensor *h = tu_rand_f32(ctx, &r, 3, (int64_t[]){2, 2, 4}, -1, 1);
  lam_tensor *hbad = tu_rand_f32(ctx, &r, 3, (int64_t[]){1, 2, 4}, -1, 1);
  lam_tensor *h64 = tu_rand_f64(ctx, &r, 3, (int64_t[]){2, 2, 4}, -1, 1);
  lam_tensor *len0 = lam_tensor_from_host(ctx, LAM_I32, 1, (int64_t[]){2}, (int32_t[]){0, 5});
  lam_tensor *len6 = lam_tensor_from_host(ctx, LAM_I32, 1, (int64_t[]){2}, (int32_t[]){6, 5});
  lam_tensor *len3 = lam_tensor_from_host(ctx, LAM_I32, 1, (int64_t[]){3}, (int32_t[]){1, 2, 3});
  lam_tensor *lenf = lam_tensor_full(ctx, LAM_F32, 1, (int64_t[]){2}, 3);
  lam_tensor *mbad =
      lam_tensor_zeros(ctx, LAM_U8, 2, (int64_t[]){2, 5}); /* [B, T] but time-major */
  lam_tensor *y = NULL, *hn = NULL, *cn = NULL;
  lam_tensor *xnull = NULL;
#define FAILS(call, status, needle)                   \
  do {                                                \
    tu_assert_status((call), status, needle);         \
    cr_assert(y == NULL && hn == NULL && cn == NULL); \
  } while (0)
  FAILS(lam_nn_lstm_apply(NULL, p, x, NULL, NULL, NULL, NULL, &y, &hn, &cn), LAM_ERR_NULL,
        "layer is NULL");
  FAILS(lam_nn_lstm_apply(l, NULL, x, NULL, NULL, NULL, NULL, &y, &hn, &cn), LAM_ERR_NULL,
        "params is NULL");
  lam_error_clear();
  FAILS(lam_nn_lstm_apply(l, p, xnull, NULL, NULL, NULL, NULL, &y, &hn, &cn), LAM_ERR_NULL,
        "x is NULL");
  FAILS(lam_nn_gru_apply(l, p, x, NULL, NULL, NULL, &y, &hn), LAM_ERR_INVALID_ARGUMENT,
        "expected a \"gru\"");
  FAILS(lam_nn_rnn_apply(g, p, x, NULL, NULL, NULL, &y, &hn), LAM_ERR_INVALID_ARGUMENT,
        "is a \"gru\"");
  FAILS(lam_nn_lstm_apply(l, p, x64, NULL, NULL, NULL, NULL, &y, &hn, &cn), LAM_ERR_DTYPE,
        "x is f64");
  FAILS(lam_nn_lstm_apply(l, p, xw, NULL, NULL, NULL, NULL, &y, &hn, &cn), LAM_ERR_SHAPE, "[5,2,4]");
  FAILS(lam_nn_lstm_apply(l, p, x4, NULL, NULL, NULL, NULL, &y, &hn, &cn), LAM_ERR_SHAPE,
        "x is [5,2,3,1]");
  FAILS(lam_nn_lstm_apply(l, p, x, hbad, NULL, NULL, NULL, &y, &hn, &cn), LAM_ERR_SHAPE,
        "h0 is [1,2,4]");
  FAILS(lam_nn_lstm_apply(l, p, x, h, h64, NULL, NULL, &y, &hn, &cn), LAM_ERR_DTYPE, "c0 is f64");
  FAILS(lam_nn_lstm_apply(l, p, x, NULL, NULL, len0, NULL, &y, &hn, &cn), LAM_ERR_INVALID_ARGUMENT,
        "lengths[0] = 0");
  FAILS(lam_nn_lstm_apply(l, p, x, NULL, NULL, len6, NULL, &y, &hn, &cn), LAM_ERR_INVALID_ARGUMENT,
        "outside 1..5");
  FAILS(lam_nn_lstm_apply(l, p, x, NULL, NULL, len3, NULL, &y, &hn, &cn), LAM_ERR_SHAPE,
        "lengths is [3]");
  FAILS(lam_nn_lstm_apply(l, p, x, NULL, NULL, lenf, NULL, &y, &hn, &cn), LAM_ERR_DTYPE, "u8 mask");
  FAILS(lam_nn_lstm_apply(l, p, x, NULL, NULL, mbad, NULL, &y, &hn, &cn), LAM_ERR_SHAPE,
        "mask is [2,5]");
  lam_tensor *x2 = lam_reshape(x, 2, (int64_t[]){10, 3});
  FAILS(lam_nn_lstm_apply(l, p, x2, NULL, NULL, len3, NULL, &y, &hn, &cn), LAM_ERR_INVALID_ARGUMENT,
        "batched input");
  lam_tensor_free(x2);
  /* parameters: missing, wrong shape, wrong dtype */
  lam_ptree *p2 = lam_ptree_copy(p);
  lam_ptree_remove(p2, "bias_hh_l1");
  FAILS(lam_nn_lstm_apply(l, p2, x, NULL, NULL, NULL, NULL, &y, &hn, &cn), LAM_ERR_NOT_FOUND,
        "\"bias_hh_l1\"");
  lam_ptree_set(p2, "bias_hh_l1", h);
  FAILS(lam_nn_lstm_apply(l, p2, x, NULL, NULL, NULL, NULL, &y, &hn, &cn), LAM_ERR_SHAPE,
        "param \"bias_hh_l1\" is [2,2,4], expected [16]");
  lam_tensor *w64 = lam_tensor_zeros(ctx, LAM_F64, 2, (int64_t[]){16, 4});
  lam_ptree_set(p2, "weight_hh_l0", w64);
  FAILS(lam_nn_lstm_apply(l, p2, x, NULL, NULL, NULL, NULL, &y, &hn, &cn), LAM_ERR_DTYPE,
        "\"weight_hh_l0\" is f64");
  lam_tensor_free(w64);
  lam_ptree_free(p2);
  /* through lam_layer_apply: aux misuse, dropout without rng */
  lam_aux *aux = lam_aux_create();
  lam_aux_set(aux, "lengths", len6);
  lam_aux_set(aux, "mask", mbad);
  lam_apply_opts ao = {false, NULL, aux, NULL};
  FAILS(lam_layer_apply(l, v, x, &ao, &y), LAM_ERR_INVALID_ARGUMENT,
        "both \"lengths\" and \"mask\"");
  lam_aux_free(aux);
  aux = lam_aux_create();
  lam_aux_set(aux, "c0", h);
  ao.aux = aux;
  lam_vars *vg = NULL;
  cr_assert_eq(lam_layer_init(g, ctx, lam_rng_key_make(1), LAM_F32, &vg), LAM_OK);
  FAILS(lam_layer_apply(g, vg, x, &ao, &y), LAM_ERR_INVALID_ARGUMENT, "LSTMs only");
  lam_aux_set(aux, "c0", hbad);
  FAILS(lam_layer_apply(l, v, x, &ao, &y), LAM_ERR_SHAPE, "lam_layer_apply: lstm: c0 is [1,2,4]");
  lam_aux_free(aux);
  lam_vars_free(vg);
#undef FAILS
  lam_tensor_free(x), lam_tensor_free(x64), lam_tensor_free(xw), lam_tensor_free(x4);
  lam_tensor_free(h), lam_tensor_free(hbad), lam_tensor_free(h64);
  lam_tensor_free(len0), lam_tensor_free(len6), lam_tensor_free(len3), lam_tensor_free(lenf);
  lam_tensor_free(mbad);
  tu_assert_no_leak(ctx, m);
  lam_vars_free(v);
  lam_layer_free(l);
  lam_layer_free(g);
  lam_ctx_free(ctx);
}
