/* test_tokenizer.c (src/models/tokenizer.c, tokenizer_unicode.c): the WordPiece
 * tokenizer (lamina/tokenizer.h) against Hugging Face `tokenizers` on 65
 * fixed texts (ASCII, punctuation, accents, Greek, Cyrillic, CJK, Hangul,
 * emoji, controls and odd whitespace, unknown and over-long words, typed
 * special tokens, texts of more than 512 tokens, the empty text) and 40
 * seeded random ones over a mixed alphabet
 * (tests/data/tokenizer_golden.safetensors, tools/gen_tokenizer_golden.py):
 * all-MiniLM-L6-v2's tokenizer.json with and without special tokens and
 * truncated to 16, a cased variant with a trimmed vocabulary, and a padded
 * batch. Also: the Unicode classes on known code points, the lookups, the
 * options rule, and malformed or unsupported tokenizer.json files and bad
 * UTF-8 failing with a status and a message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/tokenizer_internal.h"
#include "testutil.h"

#define GOLDEN "tokenizer_golden.safetensors"

static lam_tokenizer *load_tok(const char *name) {
  lam_tokenizer *t = NULL;
  cr_assert_eq(lam_tokenizer_load(tu_data_path(name), &t), LAM_OK, "%s", lam_last_error());
  cr_assert_not_null(t);
  return t;
}

/* The NUL-terminated text of case i (malloc'd). */
static char *case_text(const tu_golden *g, int i) {
  const tu_array *a = tu_golden_get(g, "case%d.text", i);
  char *s = malloc((size_t)a->n);
  cr_assert_not_null(s);
  for (int64_t k = 0; k < a->n; k++) s[k] = (char)(unsigned char)a->v[k];
  cr_assert_eq(s[a->n - 1], '\0');
  return s;
}

/* Compares row r of an encoding with golden ids (NULL and n 0: an empty row). */
static int row_matches(const lam_encoding *e, int64_t r, const double *want, int64_t n, char *why, size_t wn) {
  if (e->lengths[r] != n) {
    snprintf(why, wn, "%lld tokens, want %lld", (long long)e->lengths[r], (long long)n);
    return 0;
  }
  for (int64_t k = 0; k < n; k++)
    if (e->ids[r * e->seq + k] != (int32_t)want[k]) {
      snprintf(why, wn, "token %lld is %d, want %d", (long long)k, e->ids[r * e->seq + k], (int)want[k]);
      return 0;
    }
  for (int64_t k = 0; k < e->seq; k++)
    if (e->attention_mask[r * e->seq + k] != (k < n)) {
      snprintf(why, wn, "mask %lld is %d", (long long)k, e->attention_mask[r * e->seq + k]);
      return 0;
    }
  return 1;
}

/* Each case encoded alone (field "ids", "plain", "variant" or "trunc") must equal the golden ids. */
static void check_cases(const char *tok_file, const char *field, const lam_tokenizer_encode_opts *opts) {
  lam_tokenizer *t = load_tok(tok_file);
  tu_golden *g = tu_golden_load(GOLDEN);
  int count = (int)tu_golden_num(g, "count"), failed = 0;
  cr_assert_eq(count, 105);
  for (int i = 0; i < count; i++) {
    char *text = case_text(g, i);
    const tu_array *want = tu_golden_find(g, "case%d.%s", i, field);
    int64_t n = want ? want->n : 0;
    if (!want) cr_assert_eq(tu_golden_num(g, "case%d.plain_len", i), 0, "case %d has no %s", i, field);
    lam_encoding e;
    cr_assert_eq(lam_tokenizer_encode_batch(t, (const char *const[]){text}, 1, opts, &e), LAM_OK, "case %d: %s", i,
                 lam_last_error());
    char why[256];
    cr_assert_eq(e.batch, 1);
    cr_assert_eq(e.seq, n, "case %d: seq %lld, want %lld", i, (long long)e.seq, (long long)n);
    if (!row_matches(&e, 0, want ? want->v : NULL, n, why, sizeof why)) {
      failed++;
      cr_log_error("%s case %d (\"%.60s\"): %s", field, i, text, why);
    }
    for (int64_t k = 0; k < e.seq; k++) cr_assert_eq(e.token_type_ids[k], 0);
    lam_encoding_free(&e);
    free(text);
  }
  cr_assert_eq(failed, 0, "%d of %d %s cases differ from tokenizers (listed above)", failed, count, field);
  tu_golden_free(g);
  lam_tokenizer_free(t);
}

Test(tokenizer, minilm_matches_tokenizers) { check_cases("minilm_tokenizer.json", "ids", NULL); }

Test(tokenizer, minilm_without_special_tokens) {
  check_cases("minilm_tokenizer.json", "plain", &(lam_tokenizer_encode_opts){.no_special_tokens = true});
}

Test(tokenizer, minilm_truncated) {
  check_cases("minilm_tokenizer.json", "trunc", &(lam_tokenizer_encode_opts){.max_length = 16});
}

/* Cased, no Chinese spacing, no accent stripping, prefix "@@", max 12 chars, a normalized added token. */
Test(tokenizer, variant_matches_tokenizers) { check_cases("tokenizer_variant.json", "variant", NULL); }

/* Every case in one batch: each row as alone, padded with [PAD] (0) to the longest. */
Test(tokenizer, batch_of_all_cases) {
  lam_tokenizer *t = load_tok("minilm_tokenizer.json");
  tu_golden *g = tu_golden_load(GOLDEN);
  int count = (int)tu_golden_num(g, "count");
  char **texts = calloc((size_t)count, sizeof *texts);
  int64_t longest = 0;
  for (int i = 0; i < count; i++) {
    texts[i] = case_text(g, i);
    int64_t n = tu_golden_get(g, "case%d.ids", i)->n;
    if (n > longest) longest = n;
  }
  lam_encoding e;
  cr_assert_eq(lam_tokenizer_encode_batch(t, (const char *const *)texts, count, NULL, &e), LAM_OK, "%s",
               lam_last_error());
  cr_assert_eq(e.batch, count);
  cr_assert_eq(e.seq, 512);
  cr_assert_eq(longest, 512);
  for (int i = 0; i < count; i++) {
    const tu_array *want = tu_golden_get(g, "case%d.ids", i);
    char why[256];
    cr_assert(row_matches(&e, i, want->v, want->n, why, sizeof why), "row %d: %s", i, why);
    for (int64_t k = want->n; k < e.seq; k++) cr_assert_eq(e.ids[i * e.seq + k], 0, "row %d pad %lld", i, (long long)k);
    free(texts[i]);
  }
  free(texts);
  lam_encoding_free(&e);
  cr_assert_null(e.ids);
  tu_golden_free(g);
  lam_tokenizer_free(t);
}

/* tokenizers' encode_batch with padding: ids, attention mask and type ids [5, S]. */
Test(tokenizer, padded_batch_matches_tokenizers) {
  static const char *const batch[] = {"Hello, world!", "A", "", "The quick brown fox jumps over the lazy dog.",
                                      "na\xc3\xafve \xe6\x88\x91\xe7\x88\xb1 \xf0\x9f\x98\x80"};
  lam_tokenizer *t = load_tok("minilm_tokenizer.json");
  tu_golden *g = tu_golden_load(GOLDEN);
  const tu_array *ids = tu_golden_get(g, "batch.ids"), *mask = tu_golden_get(g, "batch.mask"),
                 *types = tu_golden_get(g, "batch.types");
  cr_assert_eq(tu_golden_num(g, "batch.count"), 5);
  lam_encoding e;
  cr_assert_eq(lam_tokenizer_encode_batch(t, batch, 5, &(lam_tokenizer_encode_opts){0}, &e), LAM_OK, "%s",
               lam_last_error());
  cr_assert_eq(e.batch, ids->shape[0]);
  cr_assert_eq(e.seq, ids->shape[1]);
  for (int64_t k = 0; k < ids->n; k++) {
    cr_assert_eq(e.ids[k], (int32_t)ids->v[k], "ids[%lld]", (long long)k);
    cr_assert_eq(e.attention_mask[k], (int32_t)mask->v[k], "mask[%lld]", (long long)k);
    cr_assert_eq(e.token_type_ids[k], (int32_t)types->v[k], "types[%lld]", (long long)k);
  }
  for (int r = 0; r < 5; r++) {
    int64_t len = 0;
    for (int64_t k = 0; k < e.seq; k++) len += (int64_t)mask->v[r * e.seq + k];
    cr_assert_eq(e.lengths[r], len, "row %d length %lld, want %lld", r, (long long)e.lengths[r], (long long)len);
  }
  cr_assert_eq(e.lengths[2], 2); /* the empty text: [CLS] [SEP] */
  lam_encoding_free(&e);
  tu_golden_free(g);
  lam_tokenizer_free(t);
}

/* The variant's padding section: pad_id 7, pad_type_id 1. */
Test(tokenizer, padding_section_ids) {
  lam_tokenizer *t = load_tok("tokenizer_variant.json");
  lam_encoding e;
  cr_assert_eq(lam_tokenizer_encode_batch(t, (const char *const[]){"Hello", "Hello, world!"}, 2, NULL, &e), LAM_OK,
               "%s", lam_last_error());
  cr_assert_eq(e.seq, 6);
  cr_assert_eq(e.lengths[0], 3);
  for (int k = 3; k < 6; k++) {
    cr_assert_eq(e.ids[k], 7);
    cr_assert_eq(e.token_type_ids[k], 1);
    cr_assert_eq(e.attention_mask[k], 0);
  }
  lam_encoding_free(&e);
  lam_tokenizer_free(t);
}

Test(tokenizer, lookups) {
  lam_tokenizer *t = load_tok("minilm_tokenizer.json");
  cr_assert_eq(lam_tokenizer_vocab_count(t), 30522);
  cr_assert_eq(lam_tokenizer_token_id(t, "[CLS]"), 101);
  cr_assert_eq(lam_tokenizer_token_id(t, "[SEP]"), 102);
  cr_assert_eq(lam_tokenizer_token_id(t, "hello"), 7592);
  cr_assert_eq(lam_tokenizer_token_id(t, "not-a-token-at-all"), -1);
  cr_assert_str_eq(lam_tokenizer_token(t, 101), "[CLS]");
  cr_assert_str_eq(lam_tokenizer_token(t, 7592), "hello");
  cr_assert_null(lam_tokenizer_token(t, -1));
  cr_assert_null(lam_tokenizer_token(t, 30522));
  /* every id of the golden data has a token that maps back to it */
  tu_golden *g = tu_golden_load(GOLDEN);
  int count = (int)tu_golden_num(g, "count");
  for (int i = 0; i < count; i++) {
    const tu_array *a = tu_golden_get(g, "case%d.ids", i);
    for (int64_t k = 0; k < a->n; k++) {
      const char *s = lam_tokenizer_token(t, (int32_t)a->v[k]);
      cr_assert_not_null(s, "id %d", (int)a->v[k]);
      cr_assert_eq(lam_tokenizer_token_id(t, s), (int32_t)a->v[k], "token %s", s);
    }
  }
  tu_golden_free(g);
  lam_tokenizer_free(t);
  /* the variant's normalized added token, outside the original vocabulary */
  t = load_tok("tokenizer_variant.json");
  int32_t city = lam_tokenizer_token_id(t, "<city>");
  cr_assert_eq(city, lam_tokenizer_vocab_count(t) - 1);
  cr_assert_str_eq(lam_tokenizer_token(t, city), "<city>");
  cr_assert_geq(lam_tokenizer_token_id(t, "@@ization"), 0);
  cr_assert_eq(lam_tokenizer_token_id(t, "##ization"), -1);
  lam_tokenizer_free(t);
}

/* The options rule: NULL, a zeroed struct and the defaults give the same. */
Test(tokenizer, options_rule) {
  lam_tokenizer_encode_opts d = lam_tokenizer_encode_defaults();
  cr_assert_eq(d.max_length, 512);
  cr_assert_not(d.no_special_tokens);
  lam_tokenizer *t = load_tok("minilm_tokenizer.json");
  tu_golden *g = tu_golden_load(GOLDEN);
  char *text = case_text(g, 59); /* more than 512 tokens */
  const lam_tokenizer_encode_opts *variants[3] = {NULL, &(lam_tokenizer_encode_opts){0}, &d};
  lam_encoding e[3];
  for (int v = 0; v < 3; v++)
    cr_assert_eq(lam_tokenizer_encode_batch(t, (const char *const[]){text}, 1, variants[v], &e[v]), LAM_OK);
  for (int v = 1; v < 3; v++) {
    cr_assert_eq(e[v].seq, e[0].seq);
    cr_assert_eq(memcmp(e[v].ids, e[0].ids, (size_t)e[0].seq * sizeof(int32_t)), 0);
  }
  cr_assert_eq(e[0].seq, 512);
  /* max_length equal to the special tokens: [CLS] [SEP] only */
  lam_encoding s;
  cr_assert_eq(lam_tokenizer_encode_batch(t, (const char *const[]){text}, 1, &(lam_tokenizer_encode_opts){.max_length = 2},
                                          &s), LAM_OK);
  cr_assert_eq(s.seq, 2);
  cr_assert_eq(s.ids[0], 101);
  cr_assert_eq(s.ids[1], 102);
  lam_encoding_free(&s);
  for (int v = 0; v < 3; v++) lam_encoding_free(&e[v]);
  free(text);
  tu_golden_free(g);
  lam_tokenizer_free(t);
}

/* A text of 2 MB is cut at max_length without tokenizing all of it, and agrees with a shorter prefix. */
Test(tokenizer, long_text_truncates) {
  lam_tokenizer *t = load_tok("minilm_tokenizer.json");
  size_t n = 2u << 20;
  char *big = malloc(n + 1);
  for (size_t i = 0; i < n; i++) big[i] = "word, "[i % 6];
  big[n] = '\0';
  lam_encoding a, b;
  cr_assert_eq(lam_tokenizer_encode_batch(t, (const char *const[]){big}, 1, NULL, &a), LAM_OK);
  big[6 * 300] = '\0'; /* 600 tokens */
  cr_assert_eq(lam_tokenizer_encode_batch(t, (const char *const[]){big}, 1, NULL, &b), LAM_OK);
  cr_assert_eq(a.seq, 512);
  cr_assert_eq(b.seq, 512);
  cr_assert_eq(memcmp(a.ids, b.ids, 512 * sizeof(int32_t)), 0);
  cr_assert_eq(a.ids[511], 102);
  lam_encoding_free(&a);
  lam_encoding_free(&b);
  free(big);
  lam_tokenizer_free(t);
}

/* The generated tables on code points whose classes are known. */
Test(tokenizer, unicode_classes) {
  cr_assert_str_eq(lam__uc_version, "14.0.0");
  cr_assert(lam__uc_is_punct('!') && lam__uc_is_punct('$') && lam__uc_is_punct('`') && lam__uc_is_punct('~'));
  cr_assert(lam__uc_is_punct(0x2014) && lam__uc_is_punct(0x3002) && lam__uc_is_punct(0xFF0C)); /* em dash, 。，*/
  cr_assert(!lam__uc_is_punct('a') && !lam__uc_is_punct(0x20AC) && !lam__uc_is_punct(0x4E00)); /* € is Sc */
  cr_assert(lam__uc_is_whitespace(' ') && lam__uc_is_whitespace('\t') && lam__uc_is_whitespace(0x3000));
  cr_assert(lam__uc_is_whitespace(0x85) && !lam__uc_is_whitespace(0x200B) && !lam__uc_is_whitespace(0x1C));
  cr_assert(lam__uc_is_control(0x01) && lam__uc_is_control(0x200D) && lam__uc_is_control(0xAD));
  cr_assert(lam__uc_is_control(0xE000) && !lam__uc_is_control('\n') && !lam__uc_is_control(0x378)); /* Co; Cn kept */
  cr_assert(lam__uc_is_mn(0x301) && lam__uc_is_mn(0x5B8) && !lam__uc_is_mn(0x903) && !lam__uc_is_mn('e'));
  cr_assert(lam__uc_is_cjk(0x6211) && lam__uc_is_cjk(0x20000) && lam__uc_is_cjk(0xF900));
  cr_assert(!lam__uc_is_cjk(0x3042) && !lam__uc_is_cjk(0xD55C) && !lam__uc_is_cjk(0x2B81F + 1));
  uint32_t b[18];
  cr_assert_eq(lam__uc_nfd_of(0xE9, b), 2); /* é = e + U+0301 */
  cr_assert(b[0] == 'e' && b[1] == 0x301);
  cr_assert_eq(lam__uc_nfd_of(0x1EC7, b), 3); /* ệ = e + U+0323 + U+0302 (canonical order) */
  cr_assert(b[0] == 'e' && b[1] == 0x323 && b[2] == 0x302);
  cr_assert_eq(lam__uc_nfd_of(0xD55C, b), 3); /* 한 = U+1112 U+1161 U+11AB */
  cr_assert(b[0] == 0x1112 && b[1] == 0x1161 && b[2] == 0x11AB);
  cr_assert_eq(lam__uc_nfd_of(0xAC00, b), 2);
  cr_assert_eq(lam__uc_nfd_of(0xFB01, b), 1); /* ﬁ: a compatibility decomposition only */
  cr_assert_eq(lam__uc_ccc_of(0x301), 230);
  cr_assert_eq(lam__uc_ccc_of(0x323), 220);
  cr_assert_eq(lam__uc_ccc_of('a'), 0);
  cr_assert_eq(lam__uc_lower_of('Q', b), 1);
  cr_assert_eq(b[0], 'q');
  cr_assert_eq(lam__uc_lower_of(0x130, b), 2); /* İ = i + U+0307 */
  cr_assert(b[0] == 'i' && b[1] == 0x307);
  cr_assert_eq(lam__uc_lower_of(0x3A3, b), 1); /* Σ = σ (no final-sigma context, as Rust) */
  cr_assert_eq(b[0], 0x3C3);
  cr_assert_eq(lam__uc_lower_of(0x1E9E, b), 1); /* ẞ = ß */
  cr_assert_eq(b[0], 0xDF);
}

/* Bad UTF-8: a status and the offending byte; the output stays zeroed. */
Test(tokenizer, invalid_utf8) {
  static const char *const bad[] = {"ok \x80 stray", "overlong \xc0\x80", "surrogate \xed\xa0\x80",
                                    "cut \xe2\x82", "too big \xf4\x90\x80\x80", "five \xf8\x88\x80\x80\x80"};
  lam_tokenizer *t = load_tok("minilm_tokenizer.json");
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    lam_encoding e = {.batch = 99};
    tu_assert_status(lam_tokenizer_encode_batch(t, (const char *const[]){"fine", bad[i]}, 2, NULL, &e),
                     LAM_ERR_INVALID_ARGUMENT, "texts[1] is not valid UTF-8");
    cr_assert(e.batch == 0 && e.ids == NULL && e.lengths == NULL);
  }
  tu_assert_status(lam_tokenizer_encode_batch(t, (const char *const[]){"x", NULL}, 2, NULL, &(lam_encoding){0}),
                   LAM_ERR_NULL, "texts[1] is NULL");
  tu_assert_status(lam_tokenizer_encode_batch(t, (const char *const[]){"x"}, 0, NULL, &(lam_encoding){0}),
                   LAM_ERR_INVALID_ARGUMENT, "count is 0");
  tu_assert_status(lam_tokenizer_encode_batch(t, (const char *const[]){"x"}, 1,
                                              &(lam_tokenizer_encode_opts){.max_length = 1}, &(lam_encoding){0}),
                   LAM_ERR_INVALID_ARGUMENT, "no room for the 2 special tokens");
  tu_assert_status(lam_tokenizer_encode_batch(t, (const char *const[]){"x"}, 1,
                                              &(lam_tokenizer_encode_opts){.max_length = -5}, &(lam_encoding){0}),
                   LAM_ERR_INVALID_ARGUMENT, "max_length -5");
  lam_tokenizer_free(t);
}

/* Malformed and unsupported tokenizer.json files. */
Test(tokenizer, bad_files) {
  static const struct {
    const char *json;
    lam_status st;
    const char *needle;
  } cases[] = {
      {"{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0", LAM_ERR_FORMAT, "is not a JSON object"},
      {"[1, 2]", LAM_ERR_FORMAT, "is not a JSON object"},
      {"{}", LAM_ERR_FORMAT, "no \"model\" object"},
      {"{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}}", LAM_ERR_UNSUPPORTED, "model BPE"},
      {"{\"model\": {\"type\": \"WordPiece\"}}", LAM_ERR_FORMAT, "vocab is missing or empty"},
      {"{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}", LAM_ERR_FORMAT, "vocab is missing or empty"},
      {"{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": -1}}}", LAM_ERR_FORMAT, "has no id"},
      {"{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 1.5}}}", LAM_ERR_FORMAT, "has no id"},
      {"{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 99999999999}}}", LAM_ERR_FORMAT, "has no id"},
      {"{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0, \"b\": 0}}}", LAM_ERR_FORMAT, "id 0 is given"},
      {"{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0, \"a\": 1}}}", LAM_ERR_FORMAT, "appears twice"},
      {"{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}", LAM_ERR_FORMAT, "unk_token \"[UNK]\""},
      {"{\"model\": {\"type\": \"WordPiece\", \"unk_token\": 3, \"vocab\": {\"[UNK]\": 0}}}", LAM_ERR_FORMAT,
       "is not a string"},
      {"{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0}, \"max_input_chars_per_word\": -2}}",
       LAM_ERR_FORMAT, "max_input_chars_per_word"},
      {"{\"normalizer\": {\"type\": \"NFKC\"}, \"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0}}}",
       LAM_ERR_UNSUPPORTED, "normalizer NFKC"},
      {"{\"normalizer\": {\"type\": \"BertNormalizer\", \"lowercase\": 1}, \"model\": {\"type\": \"WordPiece\", "
       "\"vocab\": {\"[UNK]\": 0}}}",
       LAM_ERR_FORMAT, "not a boolean"},
      {"{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": "
       "0}}}",
       LAM_ERR_UNSUPPORTED, "pre_tokenizer ByteLevel"},
      {"{\"post_processor\": {\"type\": \"Sequence\"}, \"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": "
       "0}}}",
       LAM_ERR_UNSUPPORTED, "post_processor Sequence"},
      {"{\"post_processor\": {\"type\": \"BertProcessing\", \"cls\": [\"[CLS]\", 5], \"sep\": [\"[SEP]\", 0]}, "
       "\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0}}}",
       LAM_ERR_FORMAT, "cls and sep"},
      {"{\"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [], \"special_tokens\": {}}, "
       "\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0}}}",
       LAM_ERR_FORMAT, "0 sequences"},
      {"{\"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"X\", "
       "\"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}], \"special_tokens\": {}}, "
       "\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0}}}",
       LAM_ERR_FORMAT, "special token X has no ids"},
      {"{\"added_tokens\": [{\"id\": 3}], \"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0}}}",
       LAM_ERR_FORMAT, "added_tokens[0]"},
      {"{\"added_tokens\": {}, \"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0}}}", LAM_ERR_FORMAT,
       "added_tokens is not an array"},
      {"{\"padding\": {\"pad_id\": \"x\"}, \"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0}}}",
       LAM_ERR_FORMAT, "pad_id"},
  };
  tu_make_tmpdir("lam-tok");
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *p = tu_tmp("t.json");
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs(cases[i].json, f);
    fclose(f);
    lam_tokenizer *t = (lam_tokenizer *)&t;
    tu_assert_status(lam_tokenizer_load(p, &t), cases[i].st, cases[i].needle);
    cr_assert_null(t, "case %zu", i);
  }
  /* the smallest valid file: no normalizer, pre-tokenizer or post-processor */
  const char *p = tu_tmp("ok.json");
  FILE *f = fopen(p, "w");
  fputs("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0, \"ab\": 1, \"##c\": 2}}}", f);
  fclose(f);
  lam_tokenizer *t = NULL;
  cr_assert_eq(lam_tokenizer_load(p, &t), LAM_OK, "%s", lam_last_error());
  lam_encoding e;
  cr_assert_eq(lam_tokenizer_encode_batch(t, (const char *const[]){"abc", "AB", ""}, 3, NULL, &e), LAM_OK);
  cr_assert_eq(e.seq, 2);
  cr_assert(e.ids[0] == 1 && e.ids[1] == 2 && e.ids[2] == 0 && e.lengths[1] == 1 && e.lengths[2] == 0);
  lam_encoding_free(&e);
  lam_tokenizer_free(t);
  tu_assert_status(lam_tokenizer_load(tu_tmp("missing.json"), &t), LAM_ERR_IO, "cannot open");
  tu_assert_status(lam_tokenizer_load(tu_tmp(""), &t), LAM_ERR_IO, "not a regular file");
  tu_remove_tmpdir();
}

/* strip_accents is NFD with its canonical reordering: U+1D16D (class 226)
 * before U+1D165 (216) is reordered, both spacing marks (Mc) that stay, so
 * either order finds the one vocabulary entry (tokenizers gives U+1D165
 * U+1D16D for both, as unicodedata.normalize("NFD") does). */
Test(tokenizer, canonical_reordering) {
  tu_make_tmpdir("lam-tok-nfd");
  const char *p = tu_tmp("nfd.json");
  FILE *f = fopen(p, "w");
  cr_assert_not_null(f);
  fputs("{\"normalizer\": {\"type\": \"BertNormalizer\", \"strip_accents\": true, \"lowercase\": false},"
        " \"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0, \"\xf0\x9d\x85\xa5\xf0\x9d\x85\xad\": 1}}}",
        f);
  fclose(f);
  lam_tokenizer *t = NULL;
  cr_assert_eq(lam_tokenizer_load(p, &t), LAM_OK, "%s", lam_last_error());
  lam_encoding e;
  cr_assert_eq(lam_tokenizer_encode_batch(t, (const char *const[]){"\xf0\x9d\x85\xad\xf0\x9d\x85\xa5",
                                                                   "\xf0\x9d\x85\xa5\xf0\x9d\x85\xad",
                                                                   "\xf0\x9d\x85\xad"},
                                          3, NULL, &e),
               LAM_OK, "%s", lam_last_error());
  cr_assert_eq(e.seq, 1);
  cr_assert_eq(e.ids[0], 1, "reordered");
  cr_assert_eq(e.ids[1], 1);
  cr_assert_eq(e.ids[2], 0, "U+1D16D alone is unknown");
  lam_encoding_free(&e);
  lam_tokenizer_free(t);
  tu_remove_tmpdir();
}
