/* tests/fuzz/fuzz_tokenizer.c: libFuzzer target for the WordPiece tokenizer
 * (lamina/tokenizer.h). The first byte chooses what the rest is: odd, a
 * tokenizer.json for lam_tokenizer_load (vocabulary, added tokens,
 * normalizer, pre-tokenizer, post-processor and padding sections), which,
 * when it loads, encodes three fixed texts; even, UTF-8 text (cut into up to
 * four texts at NUL bytes) encoded as one batch with a small built-in
 * tokenizer (lowercase, accents stripped, a normalized added token), with
 * max_length and no_special_tokens taken from the second byte. Any input must
 * give LAM_OK or an error with a message, and leak nothing; a successful
 * encoding must be consistent (lengths within seq, mask and padding). */
#include "fuzz_common.h"

static const char TINY[] =
    "{\"added_tokens\": [{\"id\": 0, \"content\": \"[PAD]\", \"special\": true, \"normalized\": false},"
    " {\"id\": 2, \"content\": \"[CLS]\", \"special\": true, \"normalized\": false},"
    " {\"id\": 11, \"content\": \"<Hi>\", \"special\": false, \"normalized\": true}],"
    " \"normalizer\": {\"type\": \"BertNormalizer\", \"clean_text\": true, \"handle_chinese_chars\": true,"
    " \"strip_accents\": null, \"lowercase\": true},"
    " \"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"},"
    " \"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"[CLS]\","
    " \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}, {\"SpecialToken\": {\"id\": \"[SEP]\","
    " \"type_id\": 0}}], \"special_tokens\": {\"[CLS]\": {\"id\": \"[CLS]\", \"ids\": [2], \"tokens\": [\"[CLS]\"]},"
    " \"[SEP]\": {\"id\": \"[SEP]\", \"ids\": [3], \"tokens\": [\"[SEP]\"]}}},"
    " \"model\": {\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\", \"continuing_subword_prefix\": \"##\","
    " \"max_input_chars_per_word\": 20, \"vocab\": {\"[PAD]\": 0, \"[UNK]\": 1, \"[CLS]\": 2, \"[SEP]\": 3, \"a\": 4,"
    " \"##a\": 5, \"cafe\": 6, \"##s\": 7, \"\\u6211\": 8, \"!\": 9, \"e\": 10}}}";

static char dir[64], json_path[128], tiny_path[128];
static lam_tokenizer *tiny;

static void setup(void) {
  if (dir[0]) return;
  snprintf(dir, sizeof dir, "/tmp/lamina-fuzz-tok-%ld", (long)getpid());
  if (mkdir(dir, 0700) != 0) abort();
  snprintf(json_path, sizeof json_path, "%s/tokenizer.json", dir);
  snprintf(tiny_path, sizeof tiny_path, "%s/tiny.json", dir);
  FILE *f = fopen(tiny_path, "wb");
  if (!f || fputs(TINY, f) < 0 || fclose(f) != 0) abort();
  if (lam_tokenizer_load(tiny_path, &tiny) != LAM_OK) {
    fprintf(stderr, "fuzz: %s\n", lam_last_error());
    abort();
  }
}

static void check(const lam_tokenizer *tok, const char *const *texts, int n, const lam_tokenizer_encode_opts *o) {
  lam_encoding e = {0};
  lam_status st = lam_tokenizer_encode_batch(tok, texts, n, o, &e);
  if (st != LAM_OK) {
    if (!lam_last_error()[0] || e.ids || e.batch) abort();
    return;
  }
  if (e.batch != n || e.seq < 0) abort();
  for (int r = 0; r < n; r++) {
    if (e.lengths[r] < 0 || e.lengths[r] > e.seq) abort();
    for (int64_t k = 0; k < e.seq; k++) {
      int32_t id = e.ids[r * e.seq + k];
      if (e.attention_mask[r * e.seq + k] != (k < e.lengths[r])) abort();
      if (k < e.lengths[r] && (id < 0 || id >= lam_tokenizer_vocab_count(tok))) abort();
    }
  }
  lam_encoding_free(&e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  setup();
  if (size < 2) return 0;
  if (data[0] & 1) {
    FILE *f = fopen(json_path, "wb");
    if (!f || fwrite(data + 1, 1, size - 1, f) != size - 1 || fclose(f) != 0) abort();
    lam_tokenizer *tok = NULL;
    lam_status st = lam_tokenizer_load(json_path, &tok);
    if (st != LAM_OK) {
      if (!lam_last_error()[0] || tok) abort();
      return 0;
    }
    static const char *const texts[] = {"Hello, world! caf\xc3\xa9 [CLS] \xe6\x88\x91", "", "aaaaaaaaaaaa##a"};
    check(tok, texts, 3, NULL);
    check(tok, texts, 3, &(lam_tokenizer_encode_opts){.max_length = 4, .no_special_tokens = true});
    (void)lam_tokenizer_token(tok, 0);
    (void)lam_tokenizer_token_id(tok, "[UNK]");
    lam_tokenizer_free(tok);
    return 0;
  }
  char *buf = malloc(size - 1);
  if (!buf) abort();
  memcpy(buf, data + 2, size - 2);
  buf[size - 2] = '\0';
  const char *texts[4];
  int n = 0;
  for (size_t i = 0; n < 4;) {
    texts[n++] = buf + i;
    i += strlen(buf + i) + 1;
    if (i >= size - 1) break;
  }
  lam_tokenizer_encode_opts o = {.max_length = data[1] >> 1, .no_special_tokens = data[1] & 1};
  check(tiny, texts, n, &o);
  free(buf);
  return 0;
}
