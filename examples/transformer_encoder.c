/* transformer_encoder.c: a pre-norm transformer encoder block composed from
 * lamina layers (docs/transformer.md): x + attn(ln1(x)), then x + mlp(ln2(x)),
 * stacked twice with lam_nn_sequential. The padding mask travels in the apply
 * options' aux context as "attention_mask", which every sublayer receives.
 * The norms are lamina's layer norm layers (lam_nn_layer_norm, norm.h). */
#include <lamina.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- the encoder block ---------------------------------------------------------- */

enum { LN1, ATTN, LN2, FC1, FC2, N_KIDS };
static const char *KIDS[N_KIDS] = {"ln1", "attn", "ln2", "fc1", "fc2"};

static lam_status enc_init(lam_layer *self, lam_ctx *ctx, lam_rng_key key, lam_dtype dtype,
                           lam_ptree *params, lam_ptree *state) {
  lam_layer **kid = self->impl;
  lam_status st = LAM_OK;
  for (int i = 0; i < N_KIDS && st == LAM_OK; i++)
    st = lam_layer_init_child(kid[i], KIDS[i], ctx, key, dtype, params, state);
  return st;
}

static lam_status enc_apply(lam_layer *self, lam_ptree *params, lam_ptree *state, lam_tensor *x,
                            const lam_apply_opts *opts, lam_tensor **out) {
  lam_layer **kid = self->impl;
  lam_tensor *h = NULL, *a = NULL, *h2 = NULL, *f = NULL, *m = NULL;
  lam_status st = lam_layer_apply_child(kid[LN1], KIDS[LN1], params, state, x, opts, &h);
  if (st == LAM_OK) st = lam_layer_apply_child(kid[ATTN], KIDS[ATTN], params, state, h, opts, &a);
  lam_tensor *x1 = st == LAM_OK ? lam_add(x, a) : NULL; /* residual */
  if (x1) st = lam_layer_apply_child(kid[LN2], KIDS[LN2], params, state, x1, opts, &h2);
  if (x1 && st == LAM_OK) st = lam_layer_apply_child(kid[FC1], KIDS[FC1], params, state, h2, opts, &f);
  lam_tensor *g = x1 && st == LAM_OK ? lam_gelu(f) : NULL;
  if (g) st = lam_layer_apply_child(kid[FC2], KIDS[FC2], params, state, g, opts, &m);
  *out = g && st == LAM_OK ? lam_add(x1, m) : NULL; /* residual */
  lam_tensor *tmp[] = {h, a, x1, h2, f, g, m};
  for (int i = 0; i < 7; i++) lam_tensor_free(tmp[i]);
  return *out ? LAM_OK : (st != LAM_OK ? st : lam_last_status());
}

static void enc_free(lam_layer *self) {
  lam_layer **kid = self->impl;
  for (int i = 0; i < N_KIDS; i++) lam_layer_free(kid[i]);
  free(kid);
}

static const lam_layer_vtable enc_vt = {"encoder_block", enc_init, enc_apply, enc_free};

static lam_layer *encoder_block(int64_t dim, int64_t heads, double dropout) {
  lam_layer **kid = malloc(N_KIDS * sizeof *kid);
  lam_multi_head_attention_opts o = lam_multi_head_attention_defaults();
  o.dropout = dropout;
  kid[LN1] = lam_nn_layer_norm(1, &dim, NULL);
  kid[ATTN] = lam_nn_multi_head_attention(dim, heads, &o);
  kid[LN2] = lam_nn_layer_norm(1, &dim, NULL);
  kid[FC1] = lam_nn_linear(dim, 4 * dim, NULL);
  kid[FC2] = lam_nn_linear(4 * dim, dim, NULL);
  return lam_nn_custom(&enc_vt, kid);
}

int main(void) {
  lam_ctx *ctx = NULL;
  if (lam_ctx_create(NULL, &ctx) != LAM_OK) {
    fprintf(stderr, "%s\n", lam_last_error());
    return 1;
  }
  const int64_t B = 2, S = 10, E = 32;
  lam_layer *encoder = lam_nn_sequential((lam_layer *[]){encoder_block(E, 4, 0.1), encoder_block(E, 4, 0.1)}, 2);
  lam_vars *vars = NULL;
  if (lam_layer_init(encoder, ctx, lam_rng_key_make(0), LAM_F32, &vars) != LAM_OK) {
    fprintf(stderr, "%s\n", lam_last_error());
    return 1;
  }
  lam_ptree *params = lam_vars_params(vars);
  printf("%d tensors, %lld parameters; block 0:\n", lam_ptree_leaf_count(params),
         (long long)lam_ptree_param_count(params));
  for (int i = 0; i < lam_ptree_leaf_count(params) / 2; i++) {
    const char *path;
    lam_tensor *t;
    lam_ptree_leaf(params, i, &path, &t);
    if (lam_tensor_ndim(t) == 2)
      printf("  %-22s [%lld,%lld]\n", path, (long long)lam_tensor_dim(t, 0), (long long)lam_tensor_dim(t, 1));
    else
      printf("  %-22s [%lld]\n", path, (long long)lam_tensor_dim(t, 0));
  }
  /* The second sequence has 7 real tokens and 3 padding positions. */
  unsigned char keep[2 * 10];
  for (int i = 0; i < B * S; i++) keep[i] = i < S || i % S < 7;
  lam_tensor *mask = lam_tensor_from_host(ctx, LAM_U8, 2, (int64_t[]){B, S}, keep);
  lam_aux *aux = lam_aux_create();
  lam_aux_set(aux, "attention_mask", mask);
  lam_apply_opts eval = {false, NULL, aux, NULL};

  lam_rng_key k = lam_rng_key_make(1);
  lam_tensor *x = lam_random_normal(ctx, k, LAM_F32, 3, (int64_t[]){B, S, E}, 0, 1);
  lam_tensor *y = NULL;
  if (lam_layer_apply(encoder, vars, x, &eval, &y) != LAM_OK) {
    fprintf(stderr, "%s\n", lam_last_error());
    return 1;
  }
  printf("output [%lld,%lld,%lld]\n", (long long)lam_tensor_dim(y, 0), (long long)lam_tensor_dim(y, 1),
         (long long)lam_tensor_dim(y, 2));

  /* Padding is invisible: changing the padded inputs leaves the real positions alone. */
  float *xv = malloc(sizeof(float) * (size_t)(B * S * E)), *y0 = malloc(sizeof(float) * (size_t)(B * S * E));
  lam_tensor_to_host(x, xv, sizeof(float) * (size_t)(B * S * E));
  lam_tensor_to_host(y, y0, sizeof(float) * (size_t)(B * S * E));
  for (int64_t s = 7; s < S; s++)
    for (int64_t e = 0; e < E; e++) xv[(S + s) * E + e] = 100.0f;
  lam_tensor *x2 = lam_tensor_from_host(ctx, LAM_F32, 3, (int64_t[]){B, S, E}, xv);
  lam_tensor *y2 = NULL;
  lam_layer_apply(encoder, vars, x2, &eval, &y2);
  float *y2v = malloc(sizeof(float) * (size_t)(B * S * E));
  lam_tensor_to_host(y2, y2v, sizeof(float) * (size_t)(B * S * E));
  double diff = 0;
  for (int64_t i = 0; i < B * S * E; i++)
    if (i / (S * E) == 0 || (i / E) % S < 7) diff = fmax(diff, fabs(y0[i] - y2v[i]));
  printf("largest change at real positions after editing the padding: %g\n", diff);

  /* In training, attention dropout needs an rng key in the apply options. */
  lam_rng_key dk = lam_rng_key_make(2);
  lam_apply_opts train = {true, &dk, aux, NULL};
  lam_tensor *yt = NULL;
  if (lam_layer_apply(encoder, vars, x, &train, &yt) != LAM_OK) {
    fprintf(stderr, "%s\n", lam_last_error());
    return 1;
  }
  printf("training-mode forward (attention dropout 0.1) done\n");

  free(xv);
  free(y0);
  free(y2v);
  lam_tensor *ts[] = {mask, x, y, x2, y2, yt};
  for (int i = 0; i < 6; i++) lam_tensor_free(ts[i]);
  lam_aux_free(aux);
  lam_vars_free(vars);
  lam_layer_free(encoder);
  lam_ctx_free(ctx);
  return diff < 1e-4 ? 0 : 1;
}
