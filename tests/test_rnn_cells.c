/* test_rnn_cells.c: the single-step cells lam_nn_rnn_cell (tanh, relu),
 * lam_nn_lstm_cell and lam_nn_gru_cell against PyTorch golden data
 * (tools/gen_rnn_golden.py) in f64 and f32, finite-difference gradient
 * checks, a user loop of cells against the sequence layer (outputs and
 * gradients), the layer form with aux states and summaries, unbatched input,
 * init, and bad input. */
#include "data/rnn_common.h"

Test(rnn_cells, match_pytorch) {
  lam_ctx *ctx = tu_ctx();
  int n = 0;
  for (int i = LAM_RNN_GOLDEN_N_SEQ; i < LAM_RNN_GOLDEN_N; i++) {
    const lam_rnn_golden *g = &lam_rnn_golden_cases[i];
    cr_assert_eq(g->layers, 0);
    rc_golden(ctx, g, LAM_F64, 0, 0, 0, 1e-11, 1e-9);
    rc_golden(ctx, g, LAM_F32, 0, 0, 0, 2e-6, 1e-5);
    n++;
  }
  cr_assert_geq(n, 4);
  lam_ctx_free(ctx);
}

Test(rnn_cells, gradcheck) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  for (int mode = 0; mode < 4; mode++)
    for (int has_h = 0; has_h < 2; has_h++) {
      rcase c;
      memset(&c, 0, sizeof c);
      c.mode = mode, c.layers = 0, c.T = 1, c.B = 2, c.I = 3, c.H = 2, c.has_h0 = has_h,
      c.dt = LAM_F64;
      c.layer = rc_layer(&c);
      rc_setup(ctx, &c, 31 + mode);
      char what[40];
      snprintf(what, sizeof what, "cell mode %d%s", mode, has_h ? " with h" : "");
      tu_gradcheck(ctx, rc_fn, &c, c.all, c.n_all, 1e-6, 1e-6, 1, 2e-3, what);
      rc_free(&c);
      lam_layer_free(c.layer);
    }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- a loop of cells equals the sequence layer -------------------------------- */

typedef struct {
  int mode, T, B, I, H;
  lam_layer *seq, *cell;
} loop_case;

/* xs: x [T, B, I], w_ih, w_hh, b_ih, b_hh, h0 [B, H], c0. Returns the flat
 * outputs followed by the final states; by the layer (user->cell NULL) or a
 * loop of cells. */
static lam_tensor *loop_fn_impl(lam_tensor *const *xs, loop_case *u, int use_cells) {
  const int lstm = u->mode == M_LSTM;
  lam_ptree *p = lam_ptree_dict();
  const char *names[2][4] = {{"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"},
                             {"weight_ih", "weight_hh", "bias_ih", "bias_hh"}};
  for (int k = 0; k < 4; k++) lam_ptree_set(p, names[use_cells][k], xs[1 + k]);
  lam_tensor *y = NULL, *hn = NULL, *cn = NULL;
  if (!use_cells) {
    lam_tensor *h0 = lam_reshape(xs[5], 3, (int64_t[]){1, u->B, u->H});
    lam_tensor *c0 = lstm ? lam_reshape(xs[6], 3, (int64_t[]){1, u->B, u->H}) : NULL;
    lam_status st = lstm ? lam_nn_lstm_apply(u->seq, p, xs[0], h0, c0, NULL, NULL, &y, &hn, &cn)
                    : u->mode == M_GRU ? lam_nn_gru_apply(u->seq, p, xs[0], h0, NULL, NULL, &y, &hn)
                                       : lam_nn_rnn_apply(u->seq, p, xs[0], h0, NULL, NULL, &y, &hn);
    cr_assert_eq(st, LAM_OK, "%s", lam_last_error());
    lam_tensor_free(h0);
    lam_tensor_free(c0);
  } else {
    lam_tensor *h = lam_tensor_retain(xs[5]), *c = lstm ? lam_tensor_retain(xs[6]) : NULL;
    lam_tensor *hs[16];
    for (int t = 0; t < u->T; t++) {
      lam_tensor *row = lam_tensor_slice0(xs[0], t, t + 1);
      lam_tensor *xt = lam_reshape(row, 2, (int64_t[]){u->B, u->I});
      lam_tensor *h1 = NULL, *c1 = NULL;
      lam_status st = lstm               ? lam_nn_lstm_cell_apply(u->cell, p, xt, h, c, &h1, &c1)
                      : u->mode == M_GRU ? lam_nn_gru_cell_apply(u->cell, p, xt, h, &h1)
                                         : lam_nn_rnn_cell_apply(u->cell, p, xt, h, &h1);
      cr_assert_eq(st, LAM_OK, "%s", lam_last_error());
      lam_tensor_free(row), lam_tensor_free(xt), lam_tensor_free(h), lam_tensor_free(c);
      h = h1, c = c1;
      hs[t] = lam_tensor_retain(h1);
    }
    y = lam_stack(hs, u->T, 0);
    for (int t = 0; t < u->T; t++) lam_tensor_free(hs[t]);
    hn = h, cn = c;
  }
  lam_ptree_free(p);
  lam_tensor *parts[3] = {rc_flat(y), rc_flat(hn), rc_flat(cn)};
  lam_tensor *out = lam_concat(parts, lstm ? 3 : 2, 0);
  for (int i = 0; i < 3; i++) lam_tensor_free(parts[i]);
  lam_tensor_free(y), lam_tensor_free(hn), lam_tensor_free(cn);
  return out;
}

static lam_tensor *loop_seq_fn(lam_tensor *const *xs, int n, void *user) {
  return loop_fn_impl(xs, user, 0);
}
static lam_tensor *loop_cell_fn(lam_tensor *const *xs, int n, void *user) {
  return loop_fn_impl(xs, user, 1);
}

Test(rnn_cells, loop_equals_sequence_layer) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  tu_rng r = tu_rng_make(17);
  for (int mode = 0; mode < 4; mode++) {
    loop_case u = {mode, 6, 3, 4, 5, NULL, NULL};
    lam_rnn_opts so = lam_rnn_defaults();
    lam_rnn_cell_opts co = lam_rnn_cell_defaults();
    so.nonlinearity = co.nonlinearity = mode == M_RELU ? LAM_RNN_RELU : LAM_RNN_TANH;
    u.seq = mode == M_LSTM  ? lam_nn_lstm(4, 5, &so)
            : mode == M_GRU ? lam_nn_gru(4, 5, &so)
                            : lam_nn_rnn(4, 5, &so);
    u.cell = mode == M_LSTM  ? lam_nn_lstm_cell(4, 5, &co)
             : mode == M_GRU ? lam_nn_gru_cell(4, 5, &co)
                             : lam_nn_rnn_cell(4, 5, &co);
    const int64_t GH = rc_gates(mode) * 5;
    lam_tensor *xs[7] = {tu_rand_f64(ctx, &r, 3, (int64_t[]){6, 3, 4}, -1, 1),
                         tu_rand_f64(ctx, &r, 2, (int64_t[]){GH, 4}, -0.6, 0.6),
                         tu_rand_f64(ctx, &r, 2, (int64_t[]){GH, 5}, -0.6, 0.6),
                         tu_rand_f64(ctx, &r, 1, &GH, -0.6, 0.6),
                         tu_rand_f64(ctx, &r, 1, &GH, -0.6, 0.6),
                         tu_rand_f64(ctx, &r, 2, (int64_t[]){3, 5}, -1, 1),
                         tu_rand_f64(ctx, &r, 2, (int64_t[]){3, 5}, -1, 1)};
    const int n = mode == M_LSTM ? 7 : 6;
    lam_tensor *ya = loop_seq_fn(xs, n, &u), *yb = loop_cell_fn(xs, n, &u);
    const int64_t no = lam_tensor_numel(ya);
    cr_assert_eq(no, lam_tensor_numel(yb));
    double *a = rc_read(ya), *b = rc_read(yb);
    rc_expect(b, a, no, 1e-13, 1e-12, "outputs", "cell loop vs layer");
    free(a), free(b);
    double *wv = rc_draw(&r, no, -1, 1);
    lam_tensor *w = rc_tensor(ctx, LAM_F64, wv, 1, &no);
    free(wv);
    lam_tensor *ga[7] = {0}, *gb[7] = {0};
    cr_assert_eq(lam__vjp(ctx, loop_seq_fn, &u, xs, n, w, NULL, ga), LAM_OK, "%s",
                 lam_last_error());
    cr_assert_eq(lam__vjp(ctx, loop_cell_fn, &u, xs, n, w, NULL, gb), LAM_OK, "%s",
                 lam_last_error());
    for (int i = 0; i < n; i++) {
      a = rc_read(ga[i]), b = rc_read(gb[i]);
      char what[32];
      snprintf(what, sizeof what, "mode %d grad %d", mode, i);
      rc_expect(b, a, lam_tensor_numel(xs[i]), 1e-12, 1e-10, what, "cell loop vs layer");
      free(a), free(b);
      lam_tensor_free(ga[i]), lam_tensor_free(gb[i]);
    }
    lam_tensor_free(w), lam_tensor_free(ya), lam_tensor_free(yb);
    for (int i = 0; i < 7; i++) lam_tensor_free(xs[i]);
    lam_layer_free(u.seq), lam_layer_free(u.cell);
  }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- layer form, unbatched, init ------------------------------------------------- */

Test(rnn_cells, apply_aux_summaries_and_unbatched) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  tu_rng r = tu_rng_make(23);
  lam_layer *cell = lam_nn_lstm_cell(3, 4, NULL);
  lam_vars *v = NULL;
  cr_assert_eq(lam_layer_init(cell, ctx, lam_rng_key_make(3), LAM_F64, &v), LAM_OK, "%s",
               lam_last_error());
  cr_assert_eq(lam_ptree_leaf_count(lam_vars_params(v)), 4);
  cr_assert_eq(lam_tensor_dim(lam_ptree_get(lam_vars_params(v), "weight_ih"), 0), 16);
  cr_assert_eq(lam_tensor_dim(lam_ptree_get(lam_vars_params(v), "weight_hh"), 1), 4);
  lam_tensor *x = tu_rand_f64(ctx, &r, 2, (int64_t[]){2, 3}, -1, 1);
  lam_tensor *h = tu_rand_f64(ctx, &r, 2, (int64_t[]){2, 4}, -1, 1);
  lam_tensor *c = tu_rand_f64(ctx, &r, 2, (int64_t[]){2, 4}, -1, 1);
  lam_tensor *h1 = NULL, *c1 = NULL, *ha = NULL;
  cr_assert_eq(lam_nn_lstm_cell_apply(cell, lam_vars_params(v), x, h, c, &h1, &c1), LAM_OK);
  lam_aux *aux = lam_aux_create();
  lam_summaries *sm = lam_summaries_create();
  lam_aux_set(aux, "h0", h);
  lam_aux_set(aux, "c0", c);
  lam_apply_opts o = {false, NULL, aux, sm};
  cr_assert_eq(lam_layer_apply(cell, v, x, &o, &ha), LAM_OK, "%s", lam_last_error());
  double *a = rc_read(h1), *b = rc_read(ha), *cs = rc_read(c1),
         *cb = rc_read(lam_summaries_find(sm, "c_n"));
  rc_expect(b, a, 8, 0, 0, "h'", "apply");
  rc_expect(cb, cs, 8, 0, 0, "c'", "summary");
  free(a), free(b), free(cs), free(cb);
  /* unbatched: x [3], h [4] -> [4], equal to row 1 of the batch */
  lam_tensor *x1 = lam_tensor_slice0(x, 1, 2), *h1r = lam_tensor_slice0(h, 1, 2),
             *c1r = lam_tensor_slice0(c, 1, 2);
  lam_tensor *xu = lam_reshape(x1, 1, (int64_t[]){3}), *hu = lam_reshape(h1r, 1, (int64_t[]){4});
  lam_tensor *cu = lam_reshape(c1r, 1, (int64_t[]){4});
  lam_tensor *hu1 = NULL, *cu1 = NULL;
  cr_assert_eq(lam_nn_lstm_cell_apply(cell, lam_vars_params(v), xu, hu, cu, &hu1, &cu1), LAM_OK,
               "%s", lam_last_error());
  cr_assert_eq(lam_tensor_ndim(hu1), 1);
  cr_assert_eq(lam_tensor_dim(cu1, 0), 4);
  a = rc_read(h1), b = rc_read(hu1);
  rc_expect(b, a + 4, 4, 1e-15, 0, "h'", "unbatched");
  free(a), free(b);
  /* no previous state = zeros; c_out may be NULL */
  lam_tensor *hz = NULL, *z = lam_tensor_zeros(ctx, LAM_F64, 2, (int64_t[]){2, 4}), *hzz = NULL;
  cr_assert_eq(lam_nn_lstm_cell_apply(cell, lam_vars_params(v), x, NULL, NULL, &hz, NULL), LAM_OK);
  cr_assert_eq(lam_nn_lstm_cell_apply(cell, lam_vars_params(v), x, z, z, &hzz, NULL), LAM_OK);
  a = rc_read(hz), b = rc_read(hzz);
  rc_expect(a, b, 8, 1e-15, 0, "h'", "zero state");
  free(a), free(b);
  lam_tensor_free(hz), lam_tensor_free(z), lam_tensor_free(hzz);
  lam_tensor_free(x1), lam_tensor_free(h1r), lam_tensor_free(c1r), lam_tensor_free(xu),
      lam_tensor_free(hu);
  lam_tensor_free(cu), lam_tensor_free(hu1), lam_tensor_free(cu1);
  lam_summaries_free(sm);
  lam_aux_free(aux);
  lam_tensor_free(x), lam_tensor_free(h), lam_tensor_free(c), lam_tensor_free(h1),
      lam_tensor_free(c1);
  lam_tensor_free(ha);
  lam_vars_free(v);
  lam_layer_free(cell);
  /* a GRU cell without bias has two params; bounds U(-1/sqrt(H), 1/sqrt(H)) */
  lam_rnn_cell_opts co = lam_rnn_cell_defaults();
  co.bias = false;
  cell = lam_nn_gru_cell(5, 9, &co);
  cr_assert_eq(lam_layer_init(cell, ctx, lam_rng_key_make(3), LAM_F32, &v), LAM_OK);
  cr_assert_eq(lam_ptree_leaf_count(lam_vars_params(v)), 2);
  float *w = tu_read_f32(lam_ptree_get(lam_vars_params(v), "weight_ih"));
  for (int i = 0; i < 27 * 5; i++) cr_assert(fabsf(w[i]) <= 1.0f / 3.0f);
  free(w);
  lam_vars_free(v);
  lam_layer_free(cell);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

Test(rnn_cells, bad_input) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(4);
  tu_assert_fails(lam_nn_lstm_cell(0, 3, NULL), LAM_ERR_INVALID_ARGUMENT, "input_size 0");
  tu_assert_fails(lam_nn_gru_cell(3, 0, NULL), LAM_ERR_INVALID_ARGUMENT, "hidden_size 0");
  lam_rnn_cell_opts co = lam_rnn_cell_defaults();
  co.nonlinearity = (lam_rnn_nonlinearity)3;
  tu_assert_fails(lam_nn_rnn_cell(3, 4, &co), LAM_ERR_INVALID_ARGUMENT, "nonlinearity 3");
  co = lam_rnn_cell_defaults();
  co.bias_init = lam_init_normal(-2);
  tu_assert_fails(lam_nn_rnn_cell(3, 4, &co), LAM_ERR_INVALID_ARGUMENT, "bias_init");
  lam_layer *cell = lam_nn_lstm_cell(3, 4, NULL), *gcell = lam_nn_gru_cell(3, 4, NULL);
  lam_layer *seq = lam_nn_lstm(3, 4, NULL);
  lam_vars *v = NULL;
  cr_assert_eq(lam_layer_init(cell, ctx, lam_rng_key_make(1), LAM_F32, &v), LAM_OK);
  lam_ptree *p = lam_vars_params(v);
  tu_mark m = tu_mark_now(ctx);
  lam_tensor *x = tu_rand_f32(ctx, &r, 2, (int64_t[]){2, 3}, -1, 1);
  lam_tensor *x64 = tu_rand_f64(ctx, &r, 2, (int64_t[]){2, 3}, -1, 1);
  lam_tensor *x3 = tu_rand_f32(ctx, &r, 3, (int64_t[]){1, 2, 3}, -1, 1);
  lam_tensor *h = tu_rand_f32(ctx, &r, 2, (int64_t[]){2, 4}, -1, 1);
  lam_tensor *hb = tu_rand_f32(ctx, &r, 2, (int64_t[]){3, 4}, -1, 1);
  lam_tensor *h1 = NULL, *c1 = NULL, *xnull = NULL;
#define FAILS(call, status, needle)           \
  do {                                        \
    tu_assert_status((call), status, needle); \
    cr_assert(h1 == NULL && c1 == NULL);      \
  } while (0)
  FAILS(lam_nn_lstm_cell_apply(NULL, p, x, h, h, &h1, &c1), LAM_ERR_NULL, "cell is NULL");
  FAILS(lam_nn_lstm_cell_apply(cell, p, x, h, h, NULL, &c1), LAM_ERR_NULL, "h_out is NULL");
  FAILS(lam_nn_lstm_cell_apply(cell, NULL, x, h, h, &h1, &c1), LAM_ERR_NULL, "params is NULL");
  lam_error_clear();
  FAILS(lam_nn_lstm_cell_apply(cell, p, xnull, h, h, &h1, &c1), LAM_ERR_NULL, "x is NULL");
  FAILS(lam_nn_lstm_cell_apply(seq, p, x, h, h, &h1, &c1), LAM_ERR_INVALID_ARGUMENT,
        "is a \"lstm\"");
  FAILS(lam_nn_gru_cell_apply(cell, p, x, h, &h1), LAM_ERR_INVALID_ARGUMENT,
        "expected a \"gru_cell\"");
  FAILS(lam_nn_rnn_cell_apply(gcell, p, x, h, &h1), LAM_ERR_INVALID_ARGUMENT,
        "expected a \"rnn_cell\"");
  FAILS(lam_nn_lstm_cell_apply(cell, p, x64, h, h, &h1, &c1), LAM_ERR_DTYPE, "x is f64");
  FAILS(lam_nn_lstm_cell_apply(cell, p, x3, h, h, &h1, &c1), LAM_ERR_SHAPE, "x is [1,2,3]");
  FAILS(lam_nn_lstm_cell_apply(cell, p, x, hb, h, &h1, &c1), LAM_ERR_SHAPE,
        "h is [3,4], expected [2,4]");
  FAILS(lam_nn_lstm_cell_apply(cell, p, x, h, hb, &h1, &c1), LAM_ERR_SHAPE, "c is [3,4]");
  lam_ptree *p2 = lam_ptree_copy(p);
  lam_ptree_remove(p2, "weight_hh");
  FAILS(lam_nn_lstm_cell_apply(cell, p2, x, h, h, &h1, &c1), LAM_ERR_NOT_FOUND, "\"weight_hh\"");
  lam_ptree_set(p2, "weight_hh", x);
  FAILS(lam_nn_lstm_cell_apply(cell, p2, x, h, h, &h1, &c1), LAM_ERR_SHAPE,
        "\"weight_hh\" is [2,3], expected [16,4]");
  lam_ptree_free(p2);
  lam_aux *aux = lam_aux_create();
  lam_aux_set(aux, "c0", h);
  lam_apply_opts o = {false, NULL, aux, NULL};
  lam_vars *gv = NULL;
  cr_assert_eq(lam_layer_init(gcell, ctx, lam_rng_key_make(1), LAM_F32, &gv), LAM_OK);
  FAILS(lam_layer_apply(gcell, gv, x, &o, &h1), LAM_ERR_INVALID_ARGUMENT, "LSTM cells only");
  lam_aux_set(aux, "h0", hb);
  FAILS(lam_layer_apply(cell, v, x, &o, &h1), LAM_ERR_SHAPE,
        "lam_layer_apply: lstm_cell: h is [3,4]");
#undef FAILS
  lam_aux_free(aux);
  lam_vars_free(gv);
  lam_tensor_free(x), lam_tensor_free(x64), lam_tensor_free(x3), lam_tensor_free(h),
      lam_tensor_free(hb);
  tu_assert_no_leak(ctx, m);
  lam_vars_free(v);
  lam_layer_free(cell), lam_layer_free(gcell), lam_layer_free(seq);
  lam_ctx_free(ctx);
}
