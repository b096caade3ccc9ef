/* transformer_decoder.c: a pre-norm transformer decoder block composed from
 * lamina layers (docs/transformer.md): causal self-attention with RoPE,
 * cross-attention over an encoder's output (passed in the aux context as
 * "memory", of another width than the decoder), and an MLP, each added back
 * to the residual stream. Then incremental decoding: feeding the targets one
 * position at a time through a KV cache gives the full-sequence outputs.
 * The norms are lamina's layer norm layers (lam_nn_layer_norm, norm.h). */
#include <lamina.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- the decoder block ----------------------------------------------------------- */

enum { LN1, SELF, LN2, CROSS, LN3, FC1, FC2, N_KIDS };
static const char *KIDS[N_KIDS] = {"ln1", "self_attn", "ln2", "cross_attn", "ln3", "fc1", "fc2"};

static lam_status dec_init(lam_layer *self, lam_ctx *ctx, lam_rng_key key, lam_dtype dtype,
                           lam_ptree *params, lam_ptree *state) {
  lam_layer **kid = self->impl;
  lam_status st = LAM_OK;
  for (int i = 0; i < N_KIDS && st == LAM_OK; i++)
    st = lam_layer_init_child(kid[i], KIDS[i], ctx, key, dtype, params, state);
  return st;
}

/* x [B, T, E]; the encoder output comes from opts->aux "memory". With a cache,
 * x holds the next positions and self-attention sees everything cached. */
static lam_status dec_forward(lam_layer **kid, lam_ptree *params, lam_ptree *state, lam_tensor *x,
                              const lam_apply_opts *opts, lam_kv_cache *cache, lam_tensor **out) {
  lam_tensor *memory = opts && opts->aux ? lam_aux_get(opts->aux, "memory") : NULL;
  if (!memory) {
    fprintf(stderr, "decoder_block: no \"memory\" in the aux context\n");
    return LAM_ERR_INVALID_ARGUMENT;
  }
  lam_tensor *h = NULL, *a = NULL, *h2 = NULL, *c = NULL, *h3 = NULL, *f = NULL, *m = NULL;
  lam_status st = lam_layer_apply_child(kid[LN1], KIDS[LN1], params, state, x, opts, &h);
  if (st == LAM_OK)
    st = cache ? lam_nn_multi_head_attention_apply_cached(kid[SELF], lam_ptree_subtree(params, KIDS[SELF]), h, cache, opts, &a)
               : lam_layer_apply_child(kid[SELF], KIDS[SELF], params, state, h, opts, &a);
  lam_tensor *x1 = st == LAM_OK ? lam_add(x, a) : NULL;
  if (x1) st = lam_layer_apply_child(kid[LN2], KIDS[LN2], params, state, x1, opts, &h2);
  if (x1 && st == LAM_OK) /* queries from the decoder, keys and values from the memory */
    st = lam_nn_multi_head_attention_apply(kid[CROSS], lam_ptree_subtree(params, KIDS[CROSS]), h2, memory, NULL, opts, &c);
  lam_tensor *x2 = x1 && st == LAM_OK ? lam_add(x1, c) : NULL;
  if (x2) st = lam_layer_apply_child(kid[LN3], KIDS[LN3], params, state, x2, opts, &h3);
  if (x2 && st == LAM_OK) st = lam_layer_apply_child(kid[FC1], KIDS[FC1], params, state, h3, opts, &f);
  lam_tensor *g = x2 && st == LAM_OK ? lam_gelu(f) : NULL;
  if (g) st = lam_layer_apply_child(kid[FC2], KIDS[FC2], params, state, g, opts, &m);
  *out = g && st == LAM_OK ? lam_add(x2, m) : NULL;
  lam_tensor *tmp[] = {h, a, x1, h2, c, x2, h3, f, g, m};
  for (int i = 0; i < 10; i++) lam_tensor_free(tmp[i]);
  return *out ? LAM_OK : (st != LAM_OK ? st : lam_last_status());
}

static lam_status dec_apply(lam_layer *self, lam_ptree *params, lam_ptree *state, lam_tensor *x,
                            const lam_apply_opts *opts, lam_tensor **out) {
  return dec_forward(self->impl, params, state, x, opts, NULL, out);
}

static void dec_free(lam_layer *self) {
  lam_layer **kid = self->impl;
  for (int i = 0; i < N_KIDS; i++) lam_layer_free(kid[i]);
  free(kid);
}

static const lam_layer_vtable dec_vt = {"decoder_block", dec_init, dec_apply, dec_free};

static lam_layer *decoder_block(int64_t dim, int64_t heads, int64_t memory_dim) {
  lam_layer **kid = malloc(N_KIDS * sizeof *kid);
  lam_multi_head_attention_opts self_o = lam_multi_head_attention_defaults(), cross_o = lam_multi_head_attention_defaults();
  self_o.is_causal = true;
  self_o.rope = true;
  self_o.num_kv_heads = heads / 2; /* grouped-query attention */
  cross_o.key_input_dims = memory_dim;
  kid[LN1] = lam_nn_layer_norm(1, &dim, NULL);
  kid[SELF] = lam_nn_multi_head_attention(dim, heads, &self_o);
  kid[LN2] = lam_nn_layer_norm(1, &dim, NULL);
  kid[CROSS] = lam_nn_multi_head_attention(dim, heads, &cross_o);
  kid[LN3] = lam_nn_layer_norm(1, &dim, NULL);
  kid[FC1] = lam_nn_linear(dim, 4 * dim, NULL);
  kid[FC2] = lam_nn_linear(4 * dim, dim, NULL);
  return lam_nn_custom(&dec_vt, kid);
}

int main(void) {
  lam_ctx *ctx = NULL;
  if (lam_ctx_create(NULL, &ctx) != LAM_OK) {
    fprintf(stderr, "%s\n", lam_last_error());
    return 1;
  }
  const int64_t B = 2, T = 6, S = 7, E = 32, M = 48;
  lam_layer *block = decoder_block(E, 4, M);
  lam_vars *vars = NULL;
  if (lam_layer_init(block, ctx, lam_rng_key_make(0), LAM_F32, &vars) != LAM_OK) {
    fprintf(stderr, "%s\n", lam_last_error());
    return 1;
  }
  lam_ptree *params = lam_vars_params(vars);
  printf("decoder block: %d tensors, %lld parameters\n", lam_ptree_leaf_count(params),
         (long long)lam_ptree_param_count(params));
  lam_rng_key k[2];
  lam_rng_split(lam_rng_key_make(1), 2, k);
  lam_tensor *memory = lam_random_normal(ctx, k[0], LAM_F32, 3, (int64_t[]){B, S, M}, 0, 1);
  lam_tensor *x = lam_random_normal(ctx, k[1], LAM_F32, 3, (int64_t[]){B, T, E}, 0, 1);
  lam_aux *aux = lam_aux_create();
  lam_aux_set(aux, "memory", memory);
  lam_apply_opts opts = {false, NULL, aux, NULL};

  /* the whole target sequence at once */
  lam_tensor *y = NULL;
  if (lam_layer_apply(block, vars, x, &opts, &y) != LAM_OK) {
    fprintf(stderr, "%s\n", lam_last_error());
    return 1;
  }
  float *full = malloc(sizeof(float) * (size_t)(B * T * E)), *step = malloc(sizeof(float) * (size_t)(B * E));
  lam_tensor_to_host(y, full, sizeof(float) * (size_t)(B * T * E));
  printf("output [%lld,%lld,%lld]\n", (long long)lam_tensor_dim(y, 0), (long long)lam_tensor_dim(y, 1),
         (long long)lam_tensor_dim(y, 2));

  /* one position at a time with a KV cache: the same outputs */
  lam_kv_cache *cache = lam_kv_cache_create();
  double diff = 0;
  for (int64_t t = 0; t < T; t++) {
    lam_tensor *xt = lam_slice_axis(x, 1, t, t + 1, 1), *yt = NULL;
    if (dec_forward(block->impl, params, lam_vars_state(vars), xt, &opts, cache, &yt) != LAM_OK) {
      fprintf(stderr, "%s\n", lam_last_error());
      return 1;
    }
    lam_tensor_to_host(yt, step, sizeof(float) * (size_t)(B * E));
    for (int64_t b = 0; b < B; b++)
      for (int64_t e = 0; e < E; e++) diff = fmax(diff, fabs(step[b * E + e] - full[(b * T + t) * E + e]));
    lam_tensor_free(xt);
    lam_tensor_free(yt);
  }
  printf("incremental decoding (%lld cached positions): largest difference %g\n",
         (long long)lam_kv_cache_length(cache), diff);

  lam_kv_cache_free(cache);
  free(full);
  free(step);
  lam_tensor_free(memory);
  lam_tensor_free(x);
  lam_tensor_free(y);
  lam_aux_free(aux);
  lam_vars_free(vars);
  lam_layer_free(block);
  lam_ctx_free(ctx);
  return diff < 1e-4 ? 0 : 1;
}
