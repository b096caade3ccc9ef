/* char_lm.c: a small character-level language model (docs/transformer.md).
 * A decoder-only transformer (token embedding, pre-norm blocks of causal
 * multi-head attention with RoPE and an MLP, a final norm and a linear head)
 * learns Shakespeare's sonnets (examples/data/sonnets.txt) with Adam for a
 * minute or so on two CPU cores, then writes samples, decoding one
 * character at a time with a KV cache per block.
 *
 * Usage: char_lm [steps] (default 500). The norms are lamina's layer norm
 * layers (lam_nn_layer_norm, norm.h). */
#include <lamina.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef LAMINA_EXAMPLES_DIR
#define LAMINA_EXAMPLES_DIR "examples"
#endif

enum { D_MODEL = 64, N_HEADS = 4, N_LAYERS = 2, CTX = 64, BATCH = 16 };

/* ---- a pre-norm decoder block: x + attn(ln1(x)), then + mlp(ln2(x)) ----------------- */

typedef struct block {
  lam_layer *ln1, *attn, *ln2, *fc1, *fc2;
} block;

static lam_status block_init(lam_layer *self, lam_ctx *ctx, lam_rng_key key, lam_dtype dtype,
                             lam_ptree *params, lam_ptree *state) {
  block *b = self->impl;
  lam_layer *kids[5] = {b->ln1, b->attn, b->ln2, b->fc1, b->fc2};
  const char *names[5] = {"ln1", "attn", "ln2", "fc1", "fc2"};
  lam_status st = LAM_OK;
  for (int i = 0; i < 5 && st == LAM_OK; i++)
    st = lam_layer_init_child(kids[i], names[i], ctx, key, dtype, params, state);
  return st;
}

/* With a cache, attention appends this step's keys and values and attends to all of them. */
static lam_status block_forward(block *b, lam_ptree *params, lam_ptree *state, lam_tensor *x,
                                const lam_apply_opts *opts, lam_kv_cache *cache, lam_tensor **out) {
  lam_tensor *h = NULL, *a = NULL, *h2 = NULL, *f = NULL, *m = NULL;
  lam_status st = lam_layer_apply_child(b->ln1, "ln1", params, state, x, opts, &h);
  if (st == LAM_OK)
    st = cache ? lam_nn_multi_head_attention_apply_cached(b->attn, lam_ptree_subtree(params, "attn"), h, cache, opts, &a)
               : lam_layer_apply_child(b->attn, "attn", params, state, h, opts, &a);
  lam_tensor *x1 = st == LAM_OK ? lam_add(x, a) : NULL;
  if (x1) st = lam_layer_apply_child(b->ln2, "ln2", params, state, x1, opts, &h2);
  if (x1 && st == LAM_OK) st = lam_layer_apply_child(b->fc1, "fc1", params, state, h2, opts, &f);
  lam_tensor *g = x1 && st == LAM_OK ? lam_gelu(f) : NULL;
  if (g) st = lam_layer_apply_child(b->fc2, "fc2", params, state, g, opts, &m);
  *out = g && st == LAM_OK ? lam_add(x1, m) : NULL;
  lam_tensor *tmp[] = {h, a, x1, h2, f, g, m};
  for (int i = 0; i < 7; i++) lam_tensor_free(tmp[i]);
  return *out ? LAM_OK : (st != LAM_OK ? st : lam_last_status());
}

static lam_status block_apply(lam_layer *self, lam_ptree *params, lam_ptree *state, lam_tensor *x,
                              const lam_apply_opts *opts, lam_tensor **out) {
  return block_forward(self->impl, params, state, x, opts, NULL, out);
}

static void block_free(lam_layer *self) {
  block *b = self->impl;
  lam_layer *kids[5] = {b->ln1, b->attn, b->ln2, b->fc1, b->fc2};
  for (int i = 0; i < 5; i++) lam_layer_free(kids[i]);
  free(b);
}

static const lam_layer_vtable block_vt = {"decoder_block", block_init, block_apply, block_free};

static lam_layer *decoder_block(int64_t dim, int64_t heads) {
  block *b = calloc(1, sizeof *b);
  lam_multi_head_attention_opts o = lam_multi_head_attention_defaults();
  o.is_causal = true;
  o.rope = true;
  b->ln1 = lam_nn_layer_norm(1, &dim, NULL);
  b->attn = lam_nn_multi_head_attention(dim, heads, &o);
  b->ln2 = lam_nn_layer_norm(1, &dim, NULL);
  b->fc1 = lam_nn_linear(dim, 4 * dim, NULL);
  b->fc2 = lam_nn_linear(4 * dim, dim, NULL);
  return lam_nn_custom(&block_vt, b);
}

/* ---- the model: embedding, blocks, final norm, head ------------------------------- */

typedef struct model {
  lam_layer *tok, *blocks[N_LAYERS], *ln_f, *head;
} model;

static const char *BLOCK_KEYS[N_LAYERS] = {"block0", "block1"};

static lam_status model_init(lam_layer *self, lam_ctx *ctx, lam_rng_key key, lam_dtype dtype,
                             lam_ptree *params, lam_ptree *state) {
  model *m = self->impl;
  lam_status st = lam_layer_init_child(m->tok, "tok", ctx, key, dtype, params, state);
  for (int i = 0; i < N_LAYERS && st == LAM_OK; i++)
    st = lam_layer_init_child(m->blocks[i], BLOCK_KEYS[i], ctx, key, dtype, params, state);
  if (st == LAM_OK) st = lam_layer_init_child(m->ln_f, "ln_f", ctx, key, dtype, params, state);
  if (st == LAM_OK) st = lam_layer_init_child(m->head, "head", ctx, key, dtype, params, state);
  return st;
}

/* tokens: i32 [batch, n] -> logits [batch, n, vocab]; caches: one per block or NULL. */
static lam_status model_forward(model *m, lam_ptree *params, lam_ptree *state, lam_tensor *tokens,
                                const lam_apply_opts *opts, lam_kv_cache **caches, lam_tensor **out) {
  lam_tensor *h = NULL;
  lam_status st = lam_layer_apply_child(m->tok, "tok", params, state, tokens, opts, &h);
  for (int i = 0; i < N_LAYERS && st == LAM_OK; i++) {
    lam_tensor *next = NULL;
    st = block_forward(m->blocks[i]->impl, lam_ptree_subtree(params, BLOCK_KEYS[i]),
                       lam_ptree_subtree(state, BLOCK_KEYS[i]), h, opts, caches ? caches[i] : NULL, &next);
    lam_tensor_free(h);
    h = next;
  }
  lam_tensor *n = NULL;
  if (st == LAM_OK) st = lam_layer_apply_child(m->ln_f, "ln_f", params, state, h, opts, &n);
  if (st == LAM_OK) st = lam_layer_apply_child(m->head, "head", params, state, n, opts, out);
  lam_tensor_free(h);
  lam_tensor_free(n);
  return st;
}

static lam_status model_apply(lam_layer *self, lam_ptree *params, lam_ptree *state, lam_tensor *x,
                              const lam_apply_opts *opts, lam_tensor **out) {
  return model_forward(self->impl, params, state, x, opts, NULL, out);
}

static void model_free(lam_layer *self) {
  model *m = self->impl;
  lam_layer_free(m->tok);
  for (int i = 0; i < N_LAYERS; i++) lam_layer_free(m->blocks[i]);
  lam_layer_free(m->ln_f);
  lam_layer_free(m->head);
  free(m);
}

static const lam_layer_vtable model_vt = {"char_lm", model_init, model_apply, model_free};

static lam_layer *char_model(int64_t vocab) {
  model *m = calloc(1, sizeof *m);
  lam_embedding_opts eo = lam_embedding_defaults();
  eo.no_scale = true;
  m->tok = lam_nn_embedding(vocab, D_MODEL, &eo);
  for (int i = 0; i < N_LAYERS; i++) m->blocks[i] = decoder_block(D_MODEL, N_HEADS);
  m->ln_f = lam_nn_layer_norm(1, (int64_t[]){D_MODEL}, NULL);
  m->head = lam_nn_linear(D_MODEL, vocab, NULL);
  return lam_nn_custom(&model_vt, m);
}

/* ---- training ------------------------------------------------------------------------ */

typedef struct batch {
  lam_layer *model;
  lam_ptree *state;
  lam_tensor *x, *y; /* i32 [BATCH, CTX] inputs and [BATCH * CTX] next characters */
  int64_t vocab;
} batch;

static lam_tensor *loss_fn(lam_ptree *params, void *user) {
  batch *b = user;
  lam_tensor *logits = NULL;
  if (lam_layer_apply_with(b->model, params, b->state, b->x, NULL, &logits) != LAM_OK) return NULL;
  lam_tensor *flat = lam_reshape(logits, 2, (int64_t[]){BATCH * CTX, b->vocab});
  lam_tensor *loss = lam_cross_entropy(flat, b->y, NULL);
  lam_tensor_free(logits);
  lam_tensor_free(flat);
  return loss;
}

/* Adam (beta1 0.9, beta2 0.99) written with lamina ops, one leaf at a time. */
typedef struct adam {
  lam_ptree *m, *v;
  int t;
} adam;

static lam_tensor *zeros_like_leaf(const char *path, lam_tensor *w, void *user) {
  return lam_tensor_zeros_like(w);
}

static lam_status adam_step(adam *a, lam_ptree *params, lam_ptree *grads, double lr) {
  const double b1 = 0.9, b2 = 0.99;
  a->t++;
  double c1 = 1 - pow(b1, a->t), c2 = 1 - pow(b2, a->t);
  for (int i = 0; i < lam_ptree_leaf_count(params); i++) {
    const char *p0;
    lam_tensor *w;
    lam_ptree_leaf(params, i, &p0, &w);
    char path[128];
    snprintf(path, sizeof path, "%s", p0);
    lam_tensor *g = lam_ptree_get(grads, path), *m = lam_ptree_get(a->m, path), *v = lam_ptree_get(a->v, path);
    lam_tensor *m1 = lam_mul_scalar(m, b1), *g1 = lam_mul_scalar(g, 1 - b1), *m2 = lam_add(m1, g1);
    lam_tensor *gg = lam_square(g), *v1 = lam_mul_scalar(v, b2), *g2 = lam_mul_scalar(gg, 1 - b2);
    lam_tensor *v2 = lam_add(v1, g2);
    lam_tensor *vh = lam_mul_scalar(v2, 1 / c2), *sq = lam_sqrt(vh), *den = lam_add_scalar(sq, 1e-8);
    lam_tensor *mh = lam_mul_scalar(m2, lr / c1), *step = lam_div(mh, den), *w2 = lam_sub(w, step);
    lam_status st = w2 ? LAM_OK : lam_last_status();
    if (st == LAM_OK) st = lam_ptree_set(a->m, path, m2);
    if (st == LAM_OK) st = lam_ptree_set(a->v, path, v2);
    if (st == LAM_OK) st = lam_ptree_set(params, path, w2);
    lam_tensor *tmp[] = {m1, g1, m2, gg, v1, g2, v2, vh, sq, den, mh, step, w2};
    for (int k = 0; k < 13; k++) lam_tensor_free(tmp[k]);
    if (st != LAM_OK) return st;
  }
  return LAM_OK;
}

/* ---- data and sampling --------------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s) { /* xorshift64* */
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 0x2545F4914F6CDD1Dull;
}

static char *read_text(const char *path, long *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  rewind(f);
  char *s = malloc((size_t)n + 1);
  if (fread(s, 1, (size_t)n, f) != (size_t)n) n = 0;
  s[n] = 0;
  fclose(f);
  const char *start = strstr(s, "*** START OF TEXT ***\n");
  if (start) { /* skip the attribution header */
    start += strlen("*** START OF TEXT ***\n");
    memmove(s, start, strlen(start) + 1);
  }
  *len = (long)strlen(s);
  return s;
}

/* Continues `prompt` by n characters, one at a time through the KV caches.
 * The model saw windows of CTX characters in training, so when the caches
 * fill up they are reset and the last CTX / 2 characters are fed again. */
static int sample(lam_ctx *ctx, model *m, lam_ptree *params, lam_ptree *state, const int *to_id,
                  const char *from_id, int64_t vocab, const char *prompt, int n, double temp,
                  uint64_t *rs) {
  lam_kv_cache *caches[N_LAYERS];
  for (int i = 0; i < N_LAYERS; i++) caches[i] = lam_kv_cache_create();
  int32_t hist[1024];
  int np = (int)strlen(prompt), nh = np;
  for (int i = 0; i < np; i++) hist[i] = to_id[(unsigned char)prompt[i]];
  printf("%s", prompt);
  lam_tensor *in = lam_tensor_from_host(ctx, LAM_I32, 2, (int64_t[]){1, np}, hist);
  float *logits = malloc(sizeof(float) * (size_t)(CTX * vocab));
  int rc = 0;
  for (int step = 0; step < n && rc == 0; step++) {
    lam_tensor *out = NULL;
    int64_t len = lam_tensor_dim(in, 1);
    if (model_forward(m, params, state, in, NULL, caches, &out) != LAM_OK ||
        lam_tensor_to_host(out, logits, sizeof(float) * (size_t)(len * vocab)) != LAM_OK) {
      fprintf(stderr, "%s\n", lam_last_error());
      rc = 1;
    }
    lam_tensor_free(out);
    lam_tensor_free(in);
    in = NULL;
    if (rc) break;
    const float *last = logits + (len - 1) * vocab; /* softmax(last / temp) on the host */
    double mx = -1e30, sum = 0, p[256];
    for (int c = 0; c < vocab; c++) mx = fmax(mx, last[c] / temp);
    for (int c = 0; c < vocab; c++) sum += p[c] = exp(last[c] / temp - mx);
    double u = (double)(rng_next(rs) >> 11) * 0x1.0p-53 * sum;
    int32_t next = (int32_t)vocab - 1;
    for (int c = 0; c < vocab; c++) {
      if (u < p[c]) {
        next = c;
        break;
      }
      u -= p[c];
    }
    putchar(from_id[next]);
    hist[nh++] = next;
    if (lam_kv_cache_length(caches[0]) < CTX) {
      in = lam_tensor_from_host(ctx, LAM_I32, 2, (int64_t[]){1, 1}, &next);
    } else {
      for (int i = 0; i < N_LAYERS; i++) lam_kv_cache_reset(caches[i]);
      in = lam_tensor_from_host(ctx, LAM_I32, 2, (int64_t[]){1, CTX / 2}, hist + nh - CTX / 2);
    }
  }
  printf("\n");
  lam_tensor_free(in);
  free(logits);
  for (int i = 0; i < N_LAYERS; i++) lam_kv_cache_free(caches[i]);
  return rc;
}

int main(int argc, char **argv) {
  int steps = argc > 1 ? atoi(argv[1]) : 500;
  long len = 0;
  char *text = read_text(LAMINA_EXAMPLES_DIR "/data/sonnets.txt", &len);
  if (!text) text = read_text("examples/data/sonnets.txt", &len);
  if (!text || len < CTX + 1) {
    fprintf(stderr, "char_lm: cannot read examples/data/sonnets.txt\n");
    return 1;
  }
  /* vocabulary: the characters that occur, in byte order */
  int to_id[256], vocab = 0;
  char from_id[256];
  int seen[256] = {0};
  for (long i = 0; i < len; i++) seen[(unsigned char)text[i]] = 1;
  for (int c = 0; c < 256; c++) {
    to_id[c] = seen[c] ? vocab : 0;
    if (seen[c]) from_id[vocab++] = (char)c;
  }
  lam_ctx *ctx = NULL;
  if (lam_ctx_create(NULL, &ctx) != LAM_OK) {
    fprintf(stderr, "%s\n", lam_last_error());
    return 1;
  }
  lam_layer *net = char_model(vocab);
  lam_vars *vars = NULL;
  if (lam_layer_init(net, ctx, lam_rng_key_make(0), LAM_F32, &vars) != LAM_OK) {
    fprintf(stderr, "%s\n", lam_last_error());
    return 1;
  }
  printf("%ld characters, vocabulary %d, %lld parameters, %d steps of %d x %d characters\n", len,
         vocab, (long long)lam_ptree_param_count(lam_vars_params(vars)), steps, BATCH, CTX);
  lam_ptree *params = lam_ptree_copy(lam_vars_params(vars));
  adam opt = {lam_ptree_map(params, zeros_like_leaf, NULL), lam_ptree_map(params, zeros_like_leaf, NULL), 0};
  uint64_t rs = 0x9E3779B97F4A7C15ull;
  int32_t *xb = malloc(sizeof(int32_t) * BATCH * CTX), *yb = malloc(sizeof(int32_t) * BATCH * CTX);
  batch b = {net, lam_vars_state(vars), NULL, NULL, vocab};
  double avg = 0;
  struct timespec w0, w1;
  clock_gettime(CLOCK_MONOTONIC, &w0);
  for (int step = 1; step <= steps; step++) {
    for (int r = 0; r < BATCH; r++) { /* random windows of the text */
      long s = (long)(rng_next(&rs) % (uint64_t)(len - CTX - 1));
      for (int t = 0; t < CTX; t++) {
        xb[r * CTX + t] = to_id[(unsigned char)text[s + t]];
        yb[r * CTX + t] = to_id[(unsigned char)text[s + t + 1]];
      }
    }
    b.x = lam_tensor_from_host(ctx, LAM_I32, 2, (int64_t[]){BATCH, CTX}, xb);
    b.y = lam_tensor_from_host(ctx, LAM_I32, 1, (int64_t[]){BATCH * CTX}, yb);
    lam_tensor *loss = NULL;
    lam_ptree *grads = NULL;
    double lr = 3e-3 * (step < 50 ? step / 50.0 : 1.0); /* short warm-up */
    if (lam_value_and_grad(ctx, loss_fn, &b, params, &loss, &grads) != LAM_OK ||
        adam_step(&opt, params, grads, lr) != LAM_OK) {
      fprintf(stderr, "%s\n", lam_last_error());
      return 1;
    }
    double l = 0;
    lam_tensor_item(loss, &l);
    avg = step == 1 ? l : 0.95 * avg + 0.05 * l;
    if (step == 1 || step % 50 == 0) {
      clock_gettime(CLOCK_MONOTONIC, &w1);
      printf("step %4d  loss %.3f  (%.1f s)\n", step, avg,
             (double)(w1.tv_sec - w0.tv_sec) + 1e-9 * (double)(w1.tv_nsec - w0.tv_nsec));
      fflush(stdout);
    }
    lam_tensor_free(loss);
    lam_ptree_free(grads);
    lam_tensor_free(b.x);
    lam_tensor_free(b.y);
  }
  printf("\nsamples (temperature 0.8):\n\n");
  const char *prompts[3] = {"Shall I ", "When ", "Love "};
  int rc = 0;
  for (int i = 0; i < 3 && rc == 0; i++) {
    rc = sample(ctx, net->impl, params, lam_vars_state(vars), to_id, from_id, vocab, prompts[i], 160, 0.8, &rs);
    printf("\n");
  }
  free(xb);
  free(yb);
  free(text);
  lam_ptree_free(opt.m);
  lam_ptree_free(opt.v);
  lam_ptree_free(params);
  lam_vars_free(vars);
  lam_layer_free(net);
  lam_ctx_free(ctx);
  return rc;
}
