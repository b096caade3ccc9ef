/* test_dense.c: linear, bilinear, embedding, prelu and glu layers against
 * PyTorch golden outputs and gradients (tests/data/layers_golden.safetensors
 * from tools/gen_layers_golden.py; embedding padding_idx / max_norm from
 * seq_options_golden.safetensors, tools/gen_seq_options_golden.py, plus C
 * references of both), finite-difference gradient checks for every
 * parameter, and bad input on constructors and apply. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* Applies `layer` with params {names[i]: xs[i+1]} to xs[0] (or to the
 * concatenation xs[0], xs[1] when two_inputs). */
typedef struct {
  lam_layer *layer;
  const char *names[3];
  int n_params;
  int n_inputs;
} apply_case;

static lam_tensor *apply_fn(lam_tensor *const *xs, int n, void *user) {
  apply_case *c = user;
  lam_ptree *p = lam_ptree_dict(), *s = lam_ptree_dict();
  for (int i = 0; i < c->n_params; i++) lam_ptree_set(p, c->names[i], xs[c->n_inputs + i]);
  lam_tensor *x = c->n_inputs == 2 ? lam_concat(xs, 2, -1) : lam_tensor_retain(xs[0]);
  lam_tensor *y = NULL;
  lam_layer_apply_with(c->layer, p, s, x, NULL, &y);
  lam_tensor_free(x);
  lam_ptree_free(p);
  lam_ptree_free(s);
  return y;
}

static void check_case(lam_ctx *ctx, apply_case *c, lam_tensor **xs, int n, const double *y_want,
                       const double *cot, const double *const *g_want, const char *what) {
  tu_mark m = tu_mark_now(ctx);
  lam_tensor *y = apply_fn(xs, n, c);
  tu_assert_tensor_close(y, y_want, lam_tensor_numel(y), 1e-10, 1e-9, what);
  lam_tensor *w = tu_from_f64(ctx, LAM_F64, lam_tensor_ndim(y), lam_tensor_shape(y), cot);
  lam_tensor *g[4] = {0};
  cr_assert_eq(lam_vjp(ctx, apply_fn, c, xs, n, w, NULL, g), LAM_OK, "%s: %s", what, lam_last_error());
  for (int i = 0; i < n; i++) {
    if (g_want[i]) tu_assert_tensor_close(g[i], g_want[i], lam_tensor_numel(xs[i]), 1e-10, 1e-9, what);
    lam_tensor_free(g[i]);
  }
  lam_tensor_free(w);
  lam_tensor_free(y);
  tu_assert_no_leak(ctx, m);
  /* And a finite-difference check of every input and parameter. */
  tu_gradcheck(ctx, apply_fn, c, xs, n, 1e-6, 1e-6, 1, 2e-3, what);
}

Test(dense, linear_matches_pytorch) {
  lam_ctx *ctx = tu_ctx();
  tu_golden *gold = tu_golden_load("layers_golden.safetensors");
  lam_layer *lin = lam_nn_linear(5, 3, NULL);
  apply_case c = {lin, {"weight", "bias"}, 2, 1};
  lam_tensor *xs[3] = {tu_golden_tensor(ctx, LAM_F64, gold, "lin.x"),
                       tu_golden_tensor(ctx, LAM_F64, gold, "lin.w"),
                       tu_golden_tensor(ctx, LAM_F64, gold, "lin.b")};
  const double *gw[] = {tu_golden_values(gold, "lin.gx"), tu_golden_values(gold, "lin.gw"),
                        tu_golden_values(gold, "lin.gb")};
  check_case(ctx, &c, xs, 3, tu_golden_values(gold, "lin.y"), tu_golden_values(gold, "lin.cot"), gw, "linear");
  for (int i = 0; i < 3; i++) lam_tensor_free(xs[i]);
  lam_layer_free(lin);

  lam_linear_opts o = lam_linear_defaults();
  o.no_bias = true;
  lam_layer *lin3 = lam_nn_linear(4, 2, &o);
  apply_case c3 = {lin3, {"weight"}, 1, 1};
  lam_tensor *x3[2] = {tu_golden_tensor(ctx, LAM_F64, gold, "lin3.x"),
                       tu_golden_tensor(ctx, LAM_F64, gold, "lin3.w")};
  const double *g3[] = {tu_golden_values(gold, "lin3.gx"), tu_golden_values(gold, "lin3.gw")};
  check_case(ctx, &c3, x3, 2, tu_golden_values(gold, "lin3.y"), tu_golden_values(gold, "lin3.cot"), g3,
             "linear rank 3, no bias");
  lam_tensor_free(x3[0]);
  lam_tensor_free(x3[1]);
  lam_layer_free(lin3);
  tu_golden_free(gold);
  lam_ctx_free(ctx);
}

Test(dense, bilinear_matches_pytorch) {
  lam_ctx *ctx = tu_ctx();
  tu_golden *gold = tu_golden_load("layers_golden.safetensors");
  lam_layer *bil = lam_nn_bilinear(3, 4, 2, NULL);
  apply_case c = {bil, {"weight", "bias"}, 2, 2};
  lam_tensor *xs[4] = {tu_golden_tensor(ctx, LAM_F64, gold, "bil.x1"),
                       tu_golden_tensor(ctx, LAM_F64, gold, "bil.x2"),
                       tu_golden_tensor(ctx, LAM_F64, gold, "bil.w"),
                       tu_golden_tensor(ctx, LAM_F64, gold, "bil.b")};
  const double *gw[] = {tu_golden_values(gold, "bil.g1"), tu_golden_values(gold, "bil.g2"),
                        tu_golden_values(gold, "bil.gw"), tu_golden_values(gold, "bil.gb")};
  check_case(ctx, &c, xs, 4, tu_golden_values(gold, "bil.y"), tu_golden_values(gold, "bil.cot"), gw, "bilinear");
  /* The functional form on two separate inputs agrees. */
  lam_tensor *y = lam_bilinear(xs[0], xs[1], xs[2], xs[3]);
  tu_assert_tensor_close(y, tu_golden_values(gold, "bil.y"), 10, 1e-10, 1e-9, "lam_bilinear");
  lam_tensor_free(y);
  for (int i = 0; i < 4; i++) lam_tensor_free(xs[i]);
  lam_layer_free(bil);
  tu_golden_free(gold);
  lam_ctx_free(ctx);
}

typedef struct {
  lam_layer *layer;
  lam_tensor *idx;
} emb_case;

static lam_tensor *emb_fn(lam_tensor *const *xs, int n, void *user) {
  emb_case *c = user;
  lam_ptree *p = lam_ptree_dict(), *s = lam_ptree_dict();
  lam_ptree_set(p, "weight", xs[0]);
  lam_tensor *y = NULL;
  lam_layer_apply_with(c->layer, p, s, c->idx, NULL, &y);
  lam_ptree_free(p);
  lam_ptree_free(s);
  return y;
}

Test(dense, embedding_matches_pytorch) {
  lam_ctx *ctx = tu_ctx();
  tu_golden *gold = tu_golden_load("layers_golden.safetensors");
  emb_case c = {lam_nn_embedding(7, 4, NULL), NULL};
  c.idx = tu_golden_tensor(ctx, LAM_I32, gold, "emb.idx");
  lam_tensor *w = tu_golden_tensor(ctx, LAM_F64, gold, "emb.w");
  lam_tensor *y = emb_fn(&w, 1, &c);
  cr_assert_eq(lam_tensor_ndim(y), 3);
  tu_assert_tensor_close(y, tu_golden_values(gold, "emb.y"), 24, 1e-10, 1e-9, "embedding (scaled by sqrt(dim))");
  lam_tensor *cot = tu_golden_tensor(ctx, LAM_F64, gold, "emb.cot");
  lam_tensor *g = NULL;
  cr_assert_eq(lam_vjp(ctx, emb_fn, &c, &w, 1, cot, NULL, &g), LAM_OK, "%s", lam_last_error());
  tu_assert_tensor_close(g, tu_golden_values(gold, "emb.gw"), 28, 1e-10, 1e-9,
                         "embedding weight grad (repeated index accumulates)");
  tu_gradcheck(ctx, emb_fn, &c, &w, 1, 1e-6, 1e-6, 1, 2e-3, "embedding");
  /* Unscaled option. */
  lam_embedding_opts o = lam_embedding_defaults();
  o.no_scale = true;
  lam_layer *plain = lam_nn_embedding(7, 4, &o);
  emb_case c2 = {plain, c.idx};
  lam_tensor *y2 = emb_fn(&w, 1, &c2);
  double *a = tu_read_f64(y2);
  const double *emb_y = tu_golden_values(gold, "emb.y");
  for (int i = 0; i < 24; i++) cr_assert_float_eq(a[i] * 2.0, emb_y[i], 1e-12);
  free(a);
  lam_tensor *fl = lam_tensor_full(ctx, LAM_F64, 2, (int64_t[]){2, 3}, 1.0);
  lam_tensor *bad = NULL;
  lam_ptree *p = lam_ptree_dict(), *s = lam_ptree_dict();
  lam_ptree_set(p, "weight", w);
  tu_assert_status(lam_layer_apply_with(c.layer, p, s, fl, NULL, &bad), LAM_ERR_DTYPE, "i32 indices");
  lam_ptree_free(p);
  lam_ptree_free(s);
  lam_tensor *all[] = {y, y2, cot, g, w, c.idx, fl};
  for (size_t i = 0; i < 7; i++) lam_tensor_free(all[i]);
  lam_layer_free(c.layer);
  lam_layer_free(plain);
  tu_golden_free(gold);
  lam_ctx_free(ctx);
}

/* nn.Embedding(padding_idx=...) with a nonzero padding row: the output
 * reads it, the gradient skips it (tests/data/seq_options_golden.safetensors
 * from tools/gen_seq_options_golden.py). */
Test(dense, embedding_padding_idx_matches_pytorch) {
  lam_ctx *ctx = tu_ctx();
  tu_golden *gold = tu_golden_load("seq_options_golden.safetensors");
  const char *cases[] = {"embpad", "embneg"};
  for (int ci = 0; ci < 2; ci++) {
    const char *cs = cases[ci];
    tu_mark mk = tu_mark_now(ctx);
    lam_embedding_opts o = {.no_scale = true, .padding_idx = (int64_t)tu_golden_num(gold, "%s.padding_idx", cs)};
    emb_case c = {lam_nn_embedding(7, 3, &o), tu_golden_tensor(ctx, LAM_I32, gold, "%s.idx", cs)};
    cr_assert_not_null(c.layer, "%s", lam_last_error());
    lam_tensor *w = tu_golden_tensor(ctx, LAM_F64, gold, "%s.w", cs);
    lam_tensor *y = emb_fn(&w, 1, &c);
    tu_assert_tensor_close(y, tu_golden_values(gold, "%s.y", cs), 36, 1e-12, 1e-12, cs);
    lam_tensor *cot = tu_golden_tensor(ctx, LAM_F64, gold, "%s.cot", cs), *g = NULL;
    cr_assert_eq(lam_vjp(ctx, emb_fn, &c, &w, 1, cot, NULL, &g), LAM_OK, "%s", lam_last_error());
    tu_assert_tensor_close(g, tu_golden_values(gold, "%s.gw", cs), 21, 1e-12, 1e-12, "padding row gets no gradient");
    lam_tensor *all[] = {y, cot, g, w, c.idx};
    for (size_t i = 0; i < 5; i++) lam_tensor_free(all[i]);
    lam_layer_free(c.layer);
    tu_assert_no_leak(ctx, mk);
  }
  tu_golden_free(gold);
  lam_ctx_free(ctx);
}

/* padding_idx 0 (padding_idx_set) against a C reference on random odd sizes:
 * the initialiser zeroes the row, the gradient is the scatter of the
 * cotangent rows without that row, and outside recording nothing changes. */
Test(dense, embedding_padding_idx_zero_reference) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(23);
  for (int rep = 0; rep < 3; rep++) {
    const int64_t V = tu_randint(&r, 2, 12), D = tu_randint(&r, 1, 6), N = tu_randint(&r, 1, 14);
    const int64_t pad_in = rep == 2 ? -V : 0; /* -V names row 0 too */
    lam_embedding_opts o = {.no_scale = true, .padding_idx = pad_in, .padding_idx_set = true};
    emb_case c = {lam_nn_embedding(V, D, &o), NULL};
    cr_assert_not_null(c.layer, "%s", lam_last_error());
    lam_vars *v = NULL;
    cr_assert_eq(lam_layer_init(c.layer, ctx, lam_rng_key_make(5 + rep), LAM_F64, &v), LAM_OK, "%s", lam_last_error());
    double *w0 = tu_read_f64(lam_ptree_get(lam_vars_params(v), "weight"));
    bool others = false;
    for (int64_t j = 0; j < D; j++) cr_assert_eq(w0[j], 0.0, "init zeroes the padding row");
    for (int64_t j = D; j < V * D; j++) others = others || w0[j] != 0.0;
    cr_assert(V == 1 || others, "the other rows are drawn");
    int32_t *ix = malloc((size_t)N * sizeof *ix);
    for (int64_t i = 0; i < N; i++) ix[i] = (int32_t)(i % 3 == 0 ? 0 : tu_randint(&r, 0, V));
    c.idx = lam_tensor_from_host(ctx, LAM_I32, 1, &N, ix);
    lam_tensor *w = tu_rand_f64(ctx, &r, 2, (int64_t[]){V, D}, -1, 1);
    lam_tensor *cot = tu_rand_f64(ctx, &r, 2, (int64_t[]){N, D}, -1, 1), *g = NULL;
    cr_assert_eq(lam_vjp(ctx, emb_fn, &c, &w, 1, cot, NULL, &g), LAM_OK, "%s", lam_last_error());
    double *wv = tu_read_f64(w), *cv = tu_read_f64(cot);
    double *want = calloc((size_t)(V * D), sizeof *want), *ywant = malloc((size_t)(N * D) * sizeof *ywant);
    for (int64_t i = 0; i < N; i++)
      for (int64_t j = 0; j < D; j++) {
        ywant[i * D + j] = wv[ix[i] * D + j];
        if (ix[i] != 0) want[ix[i] * D + j] += cv[i * D + j];
      }
    tu_assert_tensor_close(g, want, V * D, 1e-14, 1e-14, "padding_idx 0 gradient");
    lam_tensor *y = emb_fn(&w, 1, &c);
    tu_assert_tensor_close(y, ywant, N * D, 0, 0, "lookup reads the padding row");
    free(w0); free(ix); free(wv); free(cv); free(want); free(ywant);
    lam_tensor *all[] = {y, cot, g, w, c.idx};
    for (size_t i = 0; i < 5; i++) lam_tensor_free(all[i]);
    lam_vars_free(v);
    lam_layer_free(c.layer);
  }
  lam_ctx_free(ctx);
}

/* nn.Embedding(max_norm=..., norm_type=2 / 1 / inf): the looked-up rows are
 * renormed in the weight itself, the others untouched, and the output and
 * gradient are those of the renormed rows. */
Test(dense, embedding_max_norm_matches_pytorch) {
  lam_ctx *ctx = tu_ctx();
  tu_golden *gold = tu_golden_load("seq_options_golden.safetensors");
  const char *cases[] = {"embmn2", "embmn1", "embmninf"};
  for (int ci = 0; ci < 3; ci++) {
    const char *cs = cases[ci];
    tu_mark mk = tu_mark_now(ctx);
    double p = tu_golden_num(gold, "%s.norm_type", cs);
    lam_embedding_opts o = {.no_scale = true, .max_norm = tu_golden_num(gold, "%s.max_norm", cs),
                            .norm_type = p < 0 ? INFINITY : p};
    emb_case c = {lam_nn_embedding(9, 5, &o), tu_golden_tensor(ctx, LAM_I32, gold, "%s.idx", cs)};
    cr_assert_not_null(c.layer, "%s", lam_last_error());
    lam_tensor *w = tu_golden_tensor(ctx, LAM_F64, gold, "%s.w", cs);
    lam_tensor *y = emb_fn(&w, 1, &c);
    tu_assert_tensor_close(y, tu_golden_values(gold, "%s.y", cs), 40, 1e-12, 1e-12, cs);
    tu_assert_tensor_close(w, tu_golden_values(gold, "%s.w_after", cs), 45, 1e-12, 1e-12,
                           "renormed in place, rows not looked up untouched");
    lam_tensor *cot = tu_golden_tensor(ctx, LAM_F64, gold, "%s.cot", cs), *g = NULL;
    cr_assert_eq(lam_vjp(ctx, emb_fn, &c, &w, 1, cot, NULL, &g), LAM_OK, "%s", lam_last_error());
    tu_assert_tensor_close(g, tu_golden_values(gold, "%s.gw", cs), 45, 1e-12, 1e-12, cs);
    lam_tensor *all[] = {y, cot, g, w, c.idx};
    for (size_t i = 0; i < 5; i++) lam_tensor_free(all[i]);
    lam_layer_free(c.layer);
    tu_assert_no_leak(ctx, mk);
  }
  tu_golden_free(gold);
  lam_ctx_free(ctx);
}

/* max_norm against a C reference of embedding_renorm_ on random sizes, with
 * p = 3 (the generic power path), negative indices and f32 weights. */
Test(dense, embedding_max_norm_reference) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(77);
  for (int rep = 0; rep < 4; rep++) {
    const int64_t V = tu_randint(&r, 3, 13), D = tu_randint(&r, 1, 7), N = tu_randint(&r, 1, 9);
    const double p = rep % 2 ? 3.0 : 2.0, mn = 0.7;
    const lam_dtype dt = rep < 2 ? LAM_F64 : LAM_F32;
    lam_embedding_opts o = {.no_scale = rep != 3, .max_norm = mn, .norm_type = p};
    emb_case c = {lam_nn_embedding(V, D, &o), NULL};
    int32_t *ix = malloc((size_t)N * sizeof *ix);
    for (int64_t i = 0; i < N; i++) ix[i] = (int32_t)tu_randint(&r, -V, V);
    c.idx = lam_tensor_from_host(ctx, LAM_I32, 1, &N, ix);
    lam_tensor *w = dt == LAM_F64 ? tu_rand_f64(ctx, &r, 2, (int64_t[]){V, D}, -1, 1)
                                  : tu_rand_f32(ctx, &r, 2, (int64_t[]){V, D}, -1, 1);
    double *w0 = tu_to_f64(w);
    lam_tensor *y = emb_fn(&w, 1, &c);
    cr_assert_not_null(y, "%s", lam_last_error());
    bool *used = calloc((size_t)V, 1);
    for (int64_t i = 0; i < N; i++) used[ix[i] < 0 ? ix[i] + V : ix[i]] = true;
    for (int64_t v = 0; v < V; v++) {
      double n = 0;
      for (int64_t j = 0; j < D; j++) n += pow(fabs(w0[v * D + j]), p);
      n = pow(n, 1 / p);
      if (used[v] && n > mn)
        for (int64_t j = 0; j < D; j++) w0[v * D + j] *= mn / (n + 1e-7);
    }
    double *ywant = malloc((size_t)(N * D) * sizeof *ywant), sc = rep == 3 ? sqrt((double)D) : 1;
    for (int64_t i = 0; i < N; i++)
      for (int64_t j = 0; j < D; j++) ywant[i * D + j] = sc * w0[(ix[i] < 0 ? ix[i] + V : ix[i]) * D + j];
    const double tol = dt == LAM_F64 ? 1e-13 : 2e-6;
    tu_assert_tensor_close(w, w0, V * D, tol, tol, "renormed weight");
    tu_assert_tensor_close(y, ywant, N * D, tol, tol, "renormed lookup");
    free(ix); free(w0); free(used); free(ywant);
    lam_tensor_free(y);
    lam_tensor_free(w);
    lam_tensor_free(c.idx);
    lam_layer_free(c.layer);
  }
  lam_ctx_free(ctx);
}

Test(dense, prelu_and_glu_match_pytorch) {
  lam_ctx *ctx = tu_ctx();
  tu_golden *gold = tu_golden_load("layers_golden.safetensors");
  lam_layer *pr = lam_nn_prelu(&(lam_prelu_opts){.num_parameters = 3});
  apply_case c = {pr, {"weight"}, 1, 1};
  lam_tensor *xs[2] = {tu_golden_tensor(ctx, LAM_F64, gold, "prelu.x"),
                       tu_golden_tensor(ctx, LAM_F64, gold, "prelu.w")};
  const double *gw[] = {tu_golden_values(gold, "prelu.gx"), tu_golden_values(gold, "prelu.gw")};
  check_case(ctx, &c, xs, 2, tu_golden_values(gold, "prelu.y"), tu_golden_values(gold, "prelu.cot"), gw, "prelu");
  lam_tensor_free(xs[0]);
  lam_tensor_free(xs[1]);
  lam_layer_free(pr);

  lam_layer *glu = lam_nn_glu(-1);
  apply_case cg = {glu, {NULL}, 0, 1};
  lam_tensor *xg = tu_golden_tensor(ctx, LAM_F64, gold, "glu.x");
  const double *gg[] = {tu_golden_values(gold, "glu.gx")};
  check_case(ctx, &cg, &xg, 1, tu_golden_values(gold, "glu.y"), tu_golden_values(gold, "glu.cot"), gg, "glu");
  lam_tensor *row = lam_tensor_slice0(xg, 0, 1);
  tu_assert_fails(lam_glu(row, 0), LAM_ERR_SHAPE, "even size");
  lam_tensor_free(row);
  lam_tensor_free(xg);
  lam_layer_free(glu);
  tu_golden_free(gold);
  lam_ctx_free(ctx);
}

Test(dense, init_is_deterministic_and_glorot_bounded) {
  lam_ctx *ctx = tu_ctx();
  lam_layer *lin = lam_nn_linear(300, 200, NULL);
  lam_vars *a = NULL, *b = NULL, *c = NULL;
  cr_assert_eq(lam_layer_init(lin, ctx, lam_rng_key_make(7), LAM_F32, &a), LAM_OK, "%s", lam_last_error());
  cr_assert_eq(lam_layer_init(lin, ctx, lam_rng_key_make(7), LAM_F32, &b), LAM_OK);
  cr_assert_eq(lam_layer_init(lin, ctx, lam_rng_key_make(8), LAM_F32, &c), LAM_OK);
  float *wa = tu_read_f32(lam_ptree_get(lam_vars_params(a), "weight"));
  float *wb = tu_read_f32(lam_ptree_get(lam_vars_params(b), "weight"));
  float *wc = tu_read_f32(lam_ptree_get(lam_vars_params(c), "weight"));
  cr_assert(memcmp(wa, wb, 60000 * sizeof(float)) == 0, "same key, same params");
  cr_assert(memcmp(wa, wc, 60000 * sizeof(float)) != 0, "other key, other params");
  double limit = sqrt(6.0 / 500.0), sum2 = 0;
  for (int i = 0; i < 60000; i++) {
    cr_assert(fabsf(wa[i]) <= limit, "glorot bound");
    sum2 += (double)wa[i] * wa[i];
  }
  cr_assert_float_eq(sum2 / 60000, limit * limit / 3, 0.05 * limit * limit / 3, "glorot variance");
  float *bias = tu_read_f32(lam_ptree_get(lam_vars_params(a), "bias"));
  for (int i = 0; i < 200; i++) cr_assert_eq(bias[i], 0.0f);
  free(wa); free(wb); free(wc); free(bias);
  lam_vars_free(a); lam_vars_free(b); lam_vars_free(c);
  lam_layer_free(lin);
  lam_ctx_free(ctx);
}

Test(dense, bad_input) {
  lam_ctx *ctx = tu_ctx();
  lam_error_clear();
  tu_assert_fails(lam_nn_linear(0, 3, NULL), LAM_ERR_INVALID_ARGUMENT, "in_features 0");
  tu_assert_fails(lam_nn_bilinear(2, -1, 3, NULL), LAM_ERR_INVALID_ARGUMENT, "lam_nn_bilinear");
  tu_assert_fails(lam_nn_embedding(5, 0, NULL), LAM_ERR_INVALID_ARGUMENT, "embed_dim 0");
  tu_assert_fails(lam_nn_embedding(5, 3, &(lam_embedding_opts){.padding_idx = 5}), LAM_ERR_INVALID_ARGUMENT,
                  "padding_idx 5 must be in [-5, 5)");
  tu_assert_fails(lam_nn_embedding(5, 3, &(lam_embedding_opts){.padding_idx = -6}), LAM_ERR_INVALID_ARGUMENT,
                  "padding_idx -6");
  tu_assert_fails(lam_nn_embedding(5, 3, &(lam_embedding_opts){.max_norm = -1}), LAM_ERR_INVALID_ARGUMENT,
                  "max_norm -1 must be finite and > 0");
  tu_assert_fails(lam_nn_embedding(5, 3, &(lam_embedding_opts){.max_norm = NAN}), LAM_ERR_INVALID_ARGUMENT,
                  "max_norm");
  tu_assert_fails(lam_nn_embedding(5, 3, &(lam_embedding_opts){.max_norm = 1, .norm_type = -2}),
                  LAM_ERR_INVALID_ARGUMENT, "norm_type -2 must be > 0");
  tu_assert_fails(lam_nn_prelu(&(lam_prelu_opts){.num_parameters = -1}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_nn_prelu: num_parameters -1");
  tu_assert_fails(lam_nn_activation((lam_unary_op)999, NULL), LAM_ERR_INVALID_ARGUMENT, "unknown unary op");
  lam_layer *lin = lam_nn_linear(5, 3, NULL);
  lam_vars *v = NULL;
  tu_assert_status(lam_layer_init(lin, ctx, lam_rng_key_make(0), LAM_I32, &v), LAM_ERR_DTYPE, "float");
  cr_assert_eq(lam_layer_init(lin, ctx, lam_rng_key_make(0), LAM_F32, &v), LAM_OK);
  tu_mark m = tu_mark_now(ctx);
  lam_tensor *x = lam_tensor_zeros(ctx, LAM_F32, 2, (int64_t[]){2, 4});
  lam_tensor *y = NULL;
  tu_assert_status(lam_layer_apply(lin, v, x, NULL, &y), LAM_ERR_SHAPE, "linear expects [..., 5]");
  cr_assert_null(y);
  lam_tensor *xd = lam_tensor_zeros(ctx, LAM_F64, 2, (int64_t[]){2, 5});
  tu_assert_status(lam_layer_apply(lin, v, xd, NULL, &y), LAM_ERR_DTYPE, "f64");
  lam_error_clear(); /* a NULL x after a failure keeps that failure (chains) */
  tu_assert_status(lam_layer_apply(lin, v, NULL, NULL, &y), LAM_ERR_NULL, "x");
  tu_assert_status(lam_layer_apply(lin, NULL, x, NULL, &y), LAM_ERR_NULL, "vars");
  lam_tensor *x5 = lam_tensor_zeros(ctx, LAM_F32, 2, (int64_t[]){2, 5});
  lam_tensor *bias = lam_tensor_retain(lam_ptree_get(lam_vars_params(v), "bias"));
  lam_ptree_remove(lam_vars_params(v), "bias");
  tu_assert_status(lam_layer_apply(lin, v, x5, NULL, &y), LAM_ERR_NOT_FOUND, "bias");
  lam_ptree_set(lam_vars_params(v), "bias", bias);
  lam_tensor_free(bias);
  lam_tensor_free(x);
  lam_tensor_free(xd);
  lam_tensor_free(x5);
  tu_assert_no_leak(ctx, m);
  lam_vars_free(v);
  lam_layer_free(lin);
  lam_ctx_free(ctx);
}
