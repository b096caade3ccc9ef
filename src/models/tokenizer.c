/* models/tokenizer.c: BERT's WordPiece tokenizer read from a Hugging Face
 * tokenizer.json (lamina/tokenizer.h): the JSON reader (cJSON), the
 * vocabulary hash, the character classes over the generated Unicode tables
 * (tokenizer_unicode.c), and the pipeline of the `tokenizers` library:
 * added-token split, BertNormalizer, BertPreTokenizer, WordPiece,
 * post-processor, truncation and batch padding. Text is handled as arrays
 * of code points; WordPiece looks its candidate pieces up as UTF-8. */
#if LAMINA_HAVE_CJSON
#include <cjson/cJSON.h>
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/options.h"
#include "lamina/tokenizer.h"
#include "models/tokenizer_internal.h"
#include "runtime/options_internal.h"
#include "runtime/platform_internal.h"
#include "runtime/runtime_internal.h"

#define LAM__TOK_MAX_SPECIALS 8
#define LAM__TOK_MAX_ID (1 << 24)
#define LAM__TOK_DEFAULT_MAX_LENGTH 512

/* ---- character classes ------------------------------------------------------- */

static bool lam__in_ranges(const lam__uc_range *r, int n, uint32_t c) {
  int lo = 0, hi = n - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2;
    if (c < r[mid].lo) hi = mid - 1;
    else if (c > r[mid].hi) lo = mid + 1;
    else return true;
  }
  return false;
}

static const lam__uc_map *lam__find_map(const lam__uc_map *m, int n, uint32_t c) {
  int lo = 0, hi = n - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2;
    if (c < m[mid].cp) hi = mid - 1;
    else if (c > m[mid].cp) lo = mid + 1;
    else return &m[mid];
  }
  return NULL;
}

bool lam__uc_is_control(uint32_t c) { return lam__in_ranges(lam__uc_control, lam__uc_control_count, c); }
bool lam__uc_is_whitespace(uint32_t c) {
  for (int i = 0; i < lam__uc_whitespace_count; i++)
    if (lam__uc_whitespace[i] == c) return true;
  return false;
}
bool lam__uc_is_punct(uint32_t c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) return true;
  return c > 127 && lam__in_ranges(lam__uc_punct, lam__uc_punct_count, c);
}
bool lam__uc_is_mn(uint32_t c) { return c >= 0x300 && lam__in_ranges(lam__uc_mn, lam__uc_mn_count, c); }
/* tokenizers' BertNormalizer::is_chinese_char (its blocks, not Unicode data). */
bool lam__uc_is_cjk(uint32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}
int lam__uc_ccc_of(uint32_t c) {
  int lo = 0, hi = lam__uc_ccc_count - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2;
    if (c < lam__uc_ccc[mid].lo) hi = mid - 1;
    else if (c > lam__uc_ccc[mid].hi) lo = mid + 1;
    else return lam__uc_ccc[mid].ccc;
  }
  return 0;
}
int lam__uc_nfd_of(uint32_t c, uint32_t *out) {
  if (c >= 0xAC00 && c <= 0xD7A3) { /* Hangul syllable: L V (T) */
    uint32_t s = c - 0xAC00, t = s % 28;
    out[0] = 0x1100 + s / 588;
    out[1] = 0x1161 + (s % 588) / 28;
    if (!t) return 2;
    out[2] = 0x11A7 + t;
    return 3;
  }
  const lam__uc_map *m = c >= 0xC0 ? lam__find_map(lam__uc_nfd, lam__uc_nfd_count, c) : NULL;
  if (!m) {
    out[0] = c;
    return 1;
  }
  memcpy(out, lam__uc_nfd_pool + m->off, m->len * sizeof *out);
  return m->len;
}
int lam__uc_lower_of(uint32_t c, uint32_t *out) {
  if (c < 128) {
    out[0] = c >= 'A' && c <= 'Z' ? c + 32 : c;
    return 1;
  }
  const lam__uc_map *m = lam__find_map(lam__uc_lower, lam__uc_lower_count, c);
  if (!m) {
    out[0] = c;
    return 1;
  }
  memcpy(out, lam__uc_lower_pool + m->off, m->len * sizeof *out);
  return m->len;
}

/* ---- growable arrays and UTF-8 ------------------------------------------------- */

typedef struct cps {
  uint32_t *v;
  size_t n, cap;
} cps;
typedef struct ids {
  int32_t *v;
  size_t n, cap;
} ids;

static bool cps_reserve(cps *a, size_t more) {
  if (a->n + more <= a->cap) return true;
  size_t cap = a->cap ? a->cap : 64;
  while (cap < a->n + more) cap *= 2;
  uint32_t *v = realloc(a->v, cap * sizeof *v);
  if (!v) return false;
  a->v = v, a->cap = cap;
  return true;
}
static bool cps_push(cps *a, uint32_t c) {
  if (!cps_reserve(a, 1)) return false;
  a->v[a->n++] = c;
  return true;
}
static bool ids_push(ids *a, int32_t id) {
  if (a->n == a->cap) {
    size_t cap = a->cap ? 2 * a->cap : 64;
    int32_t *v = realloc(a->v, cap * sizeof *v);
    if (!v) return false;
    a->v = v, a->cap = cap;
  }
  a->v[a->n++] = id;
  return true;
}

/* Decodes strict UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF). Returns 0, -1 when out of memory, or 1 + the offset of the
 * first bad byte. */
static size_t utf8_decode(const char *s, size_t len, cps *out) {
  const unsigned char *p = (const unsigned char *)s;
  if (!cps_reserve(out, len + 1)) return (size_t)-1;
  static const uint32_t min_cp[4] = {0, 0x80, 0x800, 0x10000};
  for (size_t i = 0; i < len;) {
    uint32_t c = p[i];
    int n = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : -1;
    if (n < 0 || len - i <= (size_t)n) return i + 1;
    uint32_t cp = n == 0 ? c : n == 1 ? (c & 0x1F) : n == 2 ? (c & 0x0F) : (c & 0x07);
    for (int k = 1; k <= n; k++) {
      if ((p[i + k] & 0xC0) != 0x80) return i + 1;
      cp = cp << 6 | (p[i + k] & 0x3F);
    }
    if (cp < min_cp[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i + 1;
    out->v[out->n++] = cp;
    i += (size_t)n + 1;
  }
  return 0;
}

/* Appends the UTF-8 of c to buf (4 bytes of room); returns the byte count. */
static int utf8_put(uint32_t c, char *buf) {
  unsigned char *b = (unsigned char *)buf;
  if (c < 0x80) return b[0] = (unsigned char)c, 1;
  if (c < 0x800) return b[0] = (unsigned char)(0xC0 | c >> 6), b[1] = (unsigned char)(0x80 | (c & 0x3F)), 2;
  if (c < 0x10000) {
    b[0] = (unsigned char)(0xE0 | c >> 12);
    b[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
    b[2] = (unsigned char)(0x80 | (c & 0x3F));
    return 3;
  }
  b[0] = (unsigned char)(0xF0 | c >> 18);
  b[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
  b[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
  b[3] = (unsigned char)(0x80 | (c & 0x3F));
  return 4;
}

/* ---- the tokenizer --------------------------------------------------------------- */

typedef struct added_token {
  char *text;   /* its content as written */
  uint32_t *cp; /* its content as matched (normalized for a normalized token) */
  size_t len;
  int32_t id;
  bool normalized;
} added_token;

struct lam_tokenizer {
  char **tokens;        /* [vocab_count]: id -> token, NULL for an id without one */
  size_t *token_len;
  int32_t vocab_count;
  int32_t *slots;       /* WordPiece vocabulary hash: id per slot, -1 empty */
  uint64_t slot_mask;
  bool normalize, clean_text, chinese, strip_accents, lowercase;
  bool bert_pre;        /* BertPreTokenizer; false: the normalized text is one word */
  int32_t unk_id;
  char *prefix;         /* continuing_subword_prefix */
  size_t prefix_len;
  int64_t max_chars;
  int32_t pre[LAM__TOK_MAX_SPECIALS], pre_type[LAM__TOK_MAX_SPECIALS];
  int32_t post[LAM__TOK_MAX_SPECIALS], post_type[LAM__TOK_MAX_SPECIALS];
  int n_pre, n_post;
  int32_t seq_type;
  added_token *added;
  int n_added;
  int32_t pad_id, pad_type_id;
};

static uint64_t lam__hash(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  return h;
}

/* The vocabulary id of the n bytes at s, or -1. */
static int32_t lam__vocab_find(const lam_tokenizer *t, const char *s, size_t n) {
  for (uint64_t i = lam__hash(s, n) & t->slot_mask;; i = (i + 1) & t->slot_mask) {
    int32_t id = t->slots[i];
    if (id < 0) return -1;
    if (t->token_len[id] == n && memcmp(t->tokens[id], s, n) == 0) return id;
  }
}

void lam_tokenizer_free(lam_tokenizer *t) {
  if (!t) return;
  if (t->tokens)
    for (int32_t i = 0; i < t->vocab_count; i++) free(t->tokens[i]);
  free(t->tokens);
  free(t->token_len);
  free(t->slots);
  free(t->prefix);
  for (int i = 0; i < t->n_added; i++) free(t->added[i].cp), free(t->added[i].text);
  free(t->added);
  free(t);
}

#if LAMINA_HAVE_CJSON /* used by the loader only */
static char *lam__strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}
#endif

/* ---- normalization ---------------------------------------------------------------- */

/* BertNormalizer over in[0..n) into out (cleared first). */
static bool lam__normalize(const lam_tokenizer *t, const uint32_t *in, size_t n, cps *out) {
  out->n = 0;
  if (!t->normalize) {
    if (!cps_reserve(out, n)) return false;
    memcpy(out->v, in, n * sizeof *in);
    out->n = n;
    return true;
  }
  for (size_t i = 0; i < n; i++) {
    uint32_t c = in[i];
    if (t->clean_text) {
      if (c == 0 || c == 0xFFFD || lam__uc_is_control(c)) continue;
      if (lam__uc_is_whitespace(c)) c = ' ';
    }
    if (t->chinese && lam__uc_is_cjk(c)) {
      if (!cps_push(out, ' ') || !cps_push(out, c) || !cps_push(out, ' ')) return false;
    } else if (!cps_push(out, c)) {
      return false;
    }
  }
  if (t->strip_accents) {
    /* NFD: full decomposition, canonical reordering, then the Mn removed. */
    cps d = {0};
    uint32_t buf[32];
    for (size_t i = 0; i < out->n; i++) {
      int k = lam__uc_nfd_of(out->v[i], buf);
      if (!cps_reserve(&d, (size_t)k)) return free(d.v), false;
      memcpy(d.v + d.n, buf, (size_t)k * sizeof *buf);
      d.n += (size_t)k;
    }
    for (size_t i = 1; i < d.n; i++) { /* stable insertion sort of each run of nonzero classes */
      int cc = lam__uc_ccc_of(d.v[i]);
      if (!cc) continue;
      for (size_t j = i; j > 0; j--) {
        int cp = lam__uc_ccc_of(d.v[j - 1]);
        if (cp <= cc) break;
        uint32_t tmp = d.v[j];
        d.v[j] = d.v[j - 1];
        d.v[j - 1] = tmp;
      }
    }
    size_t m = 0;
    for (size_t i = 0; i < d.n; i++)
      if (!lam__uc_is_mn(d.v[i])) d.v[m++] = d.v[i];
    d.n = m;
    free(out->v);
    *out = d;
  }
  if (t->lowercase) {
    cps l = {0};
    uint32_t buf[4];
    for (size_t i = 0; i < out->n; i++) {
      int k = lam__uc_lower_of(out->v[i], buf);
      if (!cps_reserve(&l, (size_t)k)) return free(l.v), false;
      memcpy(l.v + l.n, buf, (size_t)k * sizeof *buf);
      l.n += (size_t)k;
    }
    free(out->v);
    *out = l;
  }
  return true;
}

/* ---- encoding ------------------------------------------------------------------------ */

typedef struct work {
  cps text, norm;
  char *buf;   /* a word's UTF-8 after prefix_len bytes of room */
  size_t buf_cap;
  size_t *off; /* byte offset of each of the word's characters */
  size_t off_cap;
} work;

static void work_free(work *w) {
  free(w->text.v);
  free(w->norm.v);
  free(w->buf);
  free(w->off);
}

/* The longest added token of the given kind starting at a[i], or -1. */
static int lam__added_at(const lam_tokenizer *t, const uint32_t *a, size_t n, size_t i, bool normalized) {
  int best = -1;
  size_t best_len = 0;
  for (int k = 0; k < t->n_added; k++) {
    const added_token *at = &t->added[k];
    if (at->normalized != normalized || at->len <= best_len || at->len > n - i || at->cp[0] != a[i]) continue;
    if (memcmp(at->cp, a + i, at->len * sizeof *a) == 0) best = k, best_len = at->len;
  }
  return best;
}

/* WordPiece of the word w[0..n) appended to out. Returns false when out of memory. */
static bool lam__wordpiece(const lam_tokenizer *t, const uint32_t *w, size_t n, work *wk, ids *out) {
  if ((int64_t)n > t->max_chars) return ids_push(out, t->unk_id);
  size_t need = t->prefix_len + 4 * n + 1;
  if (need > wk->buf_cap) {
    char *b = realloc(wk->buf, need);
    if (!b) return false;
    wk->buf = b, wk->buf_cap = need;
  }
  if (n + 1 > wk->off_cap) {
    size_t *o = realloc(wk->off, (n + 1) * sizeof *o);
    if (!o) return false;
    wk->off = o, wk->off_cap = n + 1;
  }
  /* The word's bytes start at base + prefix_len; a continuation's key is
   * written in place, the prefix over the bytes already consumed. */
  char *base = wk->buf, *bytes = wk->buf + t->prefix_len;
  size_t *off = wk->off;
  off[0] = 0;
  for (size_t i = 0; i < n; i++) off[i + 1] = off[i] + (size_t)utf8_put(w[i], bytes + off[i]);
  size_t first = out->n, start = 0;
  while (start < n) {
    int32_t found = -1;
    size_t end = n;
    for (; end > start; end--) {
      if (start == 0) {
        found = lam__vocab_find(t, bytes, off[end]);
      } else {
        char *key = base + off[start];
        memcpy(key, t->prefix, t->prefix_len);
        found = lam__vocab_find(t, key, t->prefix_len + off[end] - off[start]);
      }
      if (found >= 0) break;
    }
    if (found < 0) { /* no piece fits: the whole word is unknown */
      out->n = first;
      return ids_push(out, t->unk_id);
    }
    if (!ids_push(out, found)) return false;
    start = end;
  }
  return true;
}

/* Pre-tokenizes a normalized piece and appends its WordPiece ids, stopping at limit. */
static bool lam__words(const lam_tokenizer *t, const uint32_t *a, size_t n, work *wk, ids *out, size_t limit) {
  if (!t->bert_pre) return n == 0 || lam__wordpiece(t, a, n, wk, out);
  size_t w0 = 0;
  for (size_t i = 0; i <= n && out->n < limit; i++) {
    bool end = i == n, space = !end && lam__uc_is_whitespace(a[i]), punct = !end && !space && lam__uc_is_punct(a[i]);
    if (!end && !space && !punct) continue;
    if (i > w0 && !lam__wordpiece(t, a + w0, i - w0, wk, out)) return false;
    if (punct && out->n < limit && !lam__wordpiece(t, a + i, 1, wk, out)) return false;
    w0 = i + 1;
  }
  return true;
}

/* A raw piece: normalized, split on the normalized added tokens, pre-tokenized, WordPiece. */
static bool lam__piece(const lam_tokenizer *t, const uint32_t *a, size_t n, work *wk, ids *out, size_t limit) {
  if (n == 0) return true;
  if (!lam__normalize(t, a, n, &wk->norm)) return false;
  const uint32_t *b = wk->norm.v;
  size_t m = wk->norm.n, s0 = 0;
  if (m == 0) return true; /* normalised away (b may be NULL: no pointer arithmetic on it) */
  for (size_t i = 0; i < m && out->n < limit;) {
    int k = lam__added_at(t, b, m, i, true);
    if (k < 0) {
      i++;
      continue;
    }
    if (!lam__words(t, b + s0, i - s0, wk, out, limit)) return false;
    if (out->n < limit && !ids_push(out, t->added[k].id)) return false;
    i += t->added[k].len;
    s0 = i;
  }
  return out->n >= limit || lam__words(t, b + s0, m - s0, wk, out, limit);
}

/* The ids of one decoded text (wk->text), without special tokens, at most limit. */
static bool lam__encode_one(const lam_tokenizer *t, work *wk, ids *out, size_t limit) {
  const uint32_t *a = wk->text.v;
  size_t n = wk->text.n, s0 = 0;
  for (size_t i = 0; i < n && out->n < limit;) {
    int k = lam__added_at(t, a, n, i, false);
    if (k < 0) {
      i++;
      continue;
    }
    if (!lam__piece(t, a + s0, i - s0, wk, out, limit)) return false;
    if (out->n < limit && !ids_push(out, t->added[k].id)) return false;
    i += t->added[k].len;
    s0 = i;
  }
  if (out->n < limit && s0 < n && !lam__piece(t, a + s0, n - s0, wk, out, limit)) return false;
  if (out->n > limit) out->n = limit;
  return true;
}

lam_tokenizer_encode_opts lam_tokenizer_encode_defaults(void) {
  return (lam_tokenizer_encode_opts){.max_length = LAM__TOK_DEFAULT_MAX_LENGTH};
}

void lam_encoding_free(lam_encoding *enc) {
  if (!enc) return;
  free(enc->ids);
  free(enc->attention_mask);
  free(enc->token_type_ids);
  free(enc->lengths);
  memset(enc, 0, sizeof *enc);
}

lam_status lam_tokenizer_encode_batch(const lam_tokenizer *tok, const char *const *texts, int64_t count,
                                      const lam_tokenizer_encode_opts *opts, lam_encoding *out) {
  static const char fn[] = "lam_tokenizer_encode_batch";
  if (out) memset(out, 0, sizeof *out);
  if (!tok || !texts || !out)
    return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, !tok ? "tok" : !texts ? "texts" : "out");
  if (count < 1) return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: count is %lld (at least 1)", fn, (long long)count);
  lam_tokenizer_encode_opts o = opts ? *opts : lam_tokenizer_encode_defaults();
  int64_t max_length = lam__opt_i64(o.max_length, LAM__TOK_DEFAULT_MAX_LENGTH);
  int n_special = o.no_special_tokens ? 0 : tok->n_pre + tok->n_post;
  if (max_length < 0 || max_length < n_special)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: max_length %lld leaves no room for the %d special tokens", fn,
                     (long long)max_length, n_special);
  for (int64_t i = 0; i < count; i++)
    if (!texts[i]) return lam__fail(LAM_ERR_NULL, "%s: texts[%lld] is NULL", fn, (long long)i);
  if ((uint64_t)count > SIZE_MAX / sizeof(ids))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: count %lld is too large", fn, (long long)count);
  ids *rows = calloc((size_t)count, sizeof *rows);
  work wk = {0};
  lam_status st = LAM_OK;
  if (!rows) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
  size_t limit = (size_t)(max_length - n_special);
  int64_t seq = 0;
  for (int64_t i = 0; i < count && st == LAM_OK; i++) {
    wk.text.n = 0;
    size_t bad = utf8_decode(texts[i], strlen(texts[i]), &wk.text);
    if (bad == (size_t)-1 || !lam__encode_one(tok, &wk, &rows[i], limit)) {
      st = lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
    } else if (bad) {
      st = lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: texts[%lld] is not valid UTF-8 (byte %zu)", fn, (long long)i,
                     bad - 1);
    } else if ((int64_t)rows[i].n + n_special > seq) {
      seq = (int64_t)rows[i].n + n_special;
    }
  }
  work_free(&wk);
  if (st == LAM_OK && seq > 0 && count > INT32_MAX / seq)
    st = lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: %lld texts of up to %lld tokens are 2^31 or more ids", fn,
                   (long long)count, (long long)seq);
  if (st == LAM_OK) {
    size_t cells = (size_t)(count * seq) + 1; /* + 1: never malloc(0) */
    out->ids = malloc(cells * sizeof *out->ids);
    out->attention_mask = malloc(cells * sizeof *out->attention_mask);
    out->token_type_ids = malloc(cells * sizeof *out->token_type_ids);
    out->lengths = malloc((size_t)count * sizeof *out->lengths);
    if (!out->ids || !out->attention_mask || !out->token_type_ids || !out->lengths) {
      lam_encoding_free(out);
      st = lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
    }
  }
  if (st == LAM_OK) {
    out->batch = count;
    out->seq = seq;
    for (int64_t i = 0; i < count; i++) {
      int32_t *id = out->ids + i * seq, *mask = out->attention_mask + i * seq, *type = out->token_type_ids + i * seq;
      int64_t k = 0;
      if (n_special)
        for (int j = 0; j < tok->n_pre; j++, k++) id[k] = tok->pre[j], type[k] = tok->pre_type[j];
      for (size_t j = 0; j < rows[i].n; j++, k++) id[k] = rows[i].v[j], type[k] = tok->seq_type;
      if (n_special)
        for (int j = 0; j < tok->n_post; j++, k++) id[k] = tok->post[j], type[k] = tok->post_type[j];
      out->lengths[i] = k;
      for (int64_t j = 0; j < k; j++) mask[j] = 1;
      for (; k < seq; k++) id[k] = tok->pad_id, type[k] = tok->pad_type_id, mask[k] = 0;
    }
  }
  for (int64_t i = 0; i < count; i++) free(rows[i].v);
  free(rows);
  return st;
}

/* ---- lookups ------------------------------------------------------------------------------ */

int64_t lam_tokenizer_vocab_count(const lam_tokenizer *tok) { return tok ? tok->vocab_count : 0; }

int32_t lam_tokenizer_token_id(const lam_tokenizer *tok, const char *token) {
  if (!tok || !token) return -1;
  size_t n = strlen(token);
  for (int k = 0; k < tok->n_added; k++)
    if (strcmp(tok->added[k].text, token) == 0) return tok->added[k].id;
  return lam__vocab_find(tok, token, n);
}

const char *lam_tokenizer_token(const lam_tokenizer *tok, int32_t id) {
  if (!tok || id < 0 || id >= tok->vocab_count) return NULL;
  return tok->tokens[id];
}

/* ---- tokenizer.json ------------------------------------------------------------------------ */

#if LAMINA_HAVE_CJSON
static const char lam__load_fn[] = "lam_tokenizer_load";

/* A JSON integer in [lo, hi] (numbers only; false when absent or not one). */
static bool lam__json_int(const cJSON *j, double lo, double hi, int64_t *v) {
  if (!cJSON_IsNumber(j) || !(j->valuedouble >= lo && j->valuedouble <= hi) ||
      j->valuedouble != (double)(int64_t)j->valuedouble)
    return false;
  *v = (int64_t)j->valuedouble;
  return true;
}

/* A boolean field: true/false, absent or null gives def; anything else is an error (-1). */
static int lam__json_bool(const cJSON *obj, const char *key, int def) {
  const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!j || cJSON_IsNull(j)) return def;
  if (!cJSON_IsBool(j)) return -1;
  return cJSON_IsTrue(j) ? 1 : 0;
}

static const char *lam__json_type(const cJSON *obj) {
  const cJSON *ty = cJSON_GetObjectItemCaseSensitive(obj, "type");
  return cJSON_IsString(ty) ? ty->valuestring : NULL;
}

static lam_status lam__parse_normalizer(lam_tokenizer *t, const cJSON *root, const char *path) {
  const cJSON *nz = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
  if (!nz || cJSON_IsNull(nz)) return LAM_OK;
  const char *ty = cJSON_IsObject(nz) ? lam__json_type(nz) : NULL;
  if (!ty) return lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": the normalizer has no type", lam__load_fn, path);
  if (strcmp(ty, "BertNormalizer") != 0)
    return lam__fail(LAM_ERR_UNSUPPORTED, "%s: \"%s\": normalizer %s is not supported (BertNormalizer or null)",
                     lam__load_fn, path, ty);
  int clean = lam__json_bool(nz, "clean_text", 1), chinese = lam__json_bool(nz, "handle_chinese_chars", 1);
  int lower = lam__json_bool(nz, "lowercase", 1);
  int strip = lam__json_bool(nz, "strip_accents", lower); /* null: as lowercase */
  if (clean < 0 || chinese < 0 || lower < 0 || strip < 0)
    return lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": a BertNormalizer flag is not a boolean", lam__load_fn, path);
  t->normalize = true;
  t->clean_text = clean, t->chinese = chinese, t->lowercase = lower, t->strip_accents = strip;
  return LAM_OK;
}

static lam_status lam__parse_pre_tokenizer(lam_tokenizer *t, const cJSON *root, const char *path) {
  const cJSON *pt = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
  if (!pt || cJSON_IsNull(pt)) return LAM_OK;
  const char *ty = cJSON_IsObject(pt) ? lam__json_type(pt) : NULL;
  if (!ty) return lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": the pre_tokenizer has no type", lam__load_fn, path);
  if (strcmp(ty, "BertPreTokenizer") != 0)
    return lam__fail(LAM_ERR_UNSUPPORTED, "%s: \"%s\": pre_tokenizer %s is not supported (BertPreTokenizer or "
                     "null)", lam__load_fn, path, ty);
  t->bert_pre = true;
  return LAM_OK;
}

/* The WordPiece model: vocabulary (into tokens and the hash), unk, prefix, max chars. */
static lam_status lam__parse_model(lam_tokenizer *t, const cJSON *root, const char *path, int64_t max_added_id) {
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "model");
  const char *ty = cJSON_IsObject(m) ? lam__json_type(m) : NULL;
  if (!ty) return lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": no \"model\" object with a type", lam__load_fn, path);
  if (strcmp(ty, "WordPiece") != 0)
    return lam__fail(LAM_ERR_UNSUPPORTED, "%s: \"%s\": model %s is not supported (only WordPiece)", lam__load_fn,
                     path, ty);
  const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(m, "vocab");
  int n = cJSON_IsObject(vocab) ? cJSON_GetArraySize(vocab) : 0;
  if (n < 1) return lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": model.vocab is missing or empty", lam__load_fn, path);
  int64_t max_id = max_added_id;
  for (const cJSON *e = vocab->child; e; e = e->next) {
    int64_t id;
    if (!lam__json_int(e, 0, LAM__TOK_MAX_ID - 1, &id))
      return lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": vocabulary entry \"%s\" has no id in [0, %d)", lam__load_fn, path,
                       e->string ? e->string : "", LAM__TOK_MAX_ID);
    if (id > max_id) max_id = id;
  }
  t->vocab_count = (int32_t)(max_id + 1);
  uint64_t cap = 16;
  while (cap < 2 * (uint64_t)n) cap *= 2;
  t->tokens = calloc((size_t)t->vocab_count, sizeof *t->tokens);
  t->token_len = calloc((size_t)t->vocab_count, sizeof *t->token_len);
  t->slots = malloc(cap * sizeof *t->slots);
  if (!t->tokens || !t->token_len || !t->slots)
    return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", lam__load_fn);
  memset(t->slots, 0xFF, cap * sizeof *t->slots);
  t->slot_mask = cap - 1;
  for (const cJSON *e = vocab->child; e; e = e->next) {
    int32_t id = (int32_t)e->valuedouble;
    const char *s = e->string ? e->string : "";
    size_t len = strlen(s);
    if (t->tokens[id])
      return lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": id %d is given to \"%s\" and \"%s\"", lam__load_fn, path, id,
                       t->tokens[id], s);
    if (lam__vocab_find(t, s, len) >= 0)
      return lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": token \"%s\" appears twice in the vocabulary", lam__load_fn,
                       path, s);
    if (!(t->tokens[id] = lam__strdup(s)))
      return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", lam__load_fn);
    t->token_len[id] = len;
    uint64_t i = lam__hash(s, len) & t->slot_mask;
    while (t->slots[i] >= 0) i = (i + 1) & t->slot_mask;
    t->slots[i] = id;
  }
  const cJSON *unk = cJSON_GetObjectItemCaseSensitive(m, "unk_token");
  const cJSON *pre = cJSON_GetObjectItemCaseSensitive(m, "continuing_subword_prefix");
  const cJSON *mc = cJSON_GetObjectItemCaseSensitive(m, "max_input_chars_per_word");
  const char *unk_s = cJSON_IsString(unk) ? unk->valuestring : "[UNK]";
  if ((unk && !cJSON_IsString(unk)) || (pre && !cJSON_IsString(pre)))
    return lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": model.unk_token or continuing_subword_prefix is not a string",
                     lam__load_fn, path);
  t->unk_id = lam__vocab_find(t, unk_s, strlen(unk_s));
  if (t->unk_id < 0)
    return lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": the unk_token \"%s\" is not in the vocabulary", lam__load_fn, path,
                     unk_s);
  if (!(t->prefix = lam__strdup(pre ? pre->valuestring : "##")))
    return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", lam__load_fn);
  t->prefix_len = strlen(t->prefix);
  t->max_chars = 100;
  if (mc && !lam__json_int(mc, 0, 1e15, &t->max_chars))
    return lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": model.max_input_chars_per_word is not a count", lam__load_fn,
                     path);
  return LAM_OK;
}

/* The largest id of "added_tokens" (-1 when none); checks their shape. */
static lam_status lam__scan_added(const cJSON *root, const char *path, int64_t *max_id, int *count) {
  const cJSON *at = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
  *max_id = -1, *count = 0;
  if (!at || cJSON_IsNull(at)) return LAM_OK;
  if (!cJSON_IsArray(at)) return lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": added_tokens is not an array", lam__load_fn, path);
  for (const cJSON *e = at->child; e; e = e->next) {
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(e, "content");
    int64_t id;
    if (!lam__json_int(cJSON_GetObjectItemCaseSensitive(e, "id"), 0, LAM__TOK_MAX_ID - 1, &id) ||
        !cJSON_IsString(content) || !*content->valuestring || lam__json_bool(e, "normalized", 0) < 0 ||
        lam__json_bool(e, "special", 0) < 0)
      return lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": added_tokens[%d] needs an id, a non-empty content and boolean "
                       "flags", lam__load_fn, path, *count);
    if (id > *max_id) *max_id = id;
    ++*count;
  }
  return LAM_OK;
}

static lam_status lam__parse_added(lam_tokenizer *t, const cJSON *root, const char *path, int count) {
  if (count == 0) return LAM_OK;
  const cJSON *at = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
  if (!(t->added = calloc((size_t)count, sizeof *t->added)))
    return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", lam__load_fn);
  cps raw = {0}, norm = {0};
  lam_status st = LAM_OK;
  for (const cJSON *e = at->child; e && st == LAM_OK; e = e->next) {
    const char *content = cJSON_GetObjectItemCaseSensitive(e, "content")->valuestring;
    int32_t id = (int32_t)cJSON_GetObjectItemCaseSensitive(e, "id")->valuedouble;
    /* tokenizers' AddedToken default: normalized unless special. */
    bool normalized = lam__json_bool(e, "normalized", !lam__json_bool(e, "special", 0)) == 1;
    raw.n = 0;
    size_t bad = utf8_decode(content, strlen(content), &raw);
    if (bad == (size_t)-1 || (normalized && !lam__normalize(t, raw.v, raw.n, &norm))) {
      st = lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", lam__load_fn);
      break;
    }
    if (bad) {
      st = lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": added token %d is not valid UTF-8", lam__load_fn, path, id);
      break;
    }
    const cps *m = normalized ? &norm : &raw;
    added_token *a = &t->added[t->n_added];
    a->id = id;
    a->normalized = normalized;
    a->text = lam__strdup(content);
    a->len = m->n;
    a->cp = malloc((m->n + 1) * sizeof *a->cp);
    if (!a->text || !a->cp || (!t->tokens[id] && !(t->tokens[id] = lam__strdup(content)))) {
      free(a->text), free(a->cp);
      st = lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", lam__load_fn);
      break;
    }
    if (m->n) memcpy(a->cp, m->v, m->n * sizeof *a->cp);
    if (!t->token_len[id]) t->token_len[id] = strlen(t->tokens[id]);
    if (a->len == 0) { /* normalizes to nothing: never matches */
      free(a->text), free(a->cp);
      continue;
    }
    t->n_added++;
  }
  free(raw.v);
  free(norm.v);
  return st;
}

/* A special token's ids from TemplateProcessing's special_tokens map. */
static lam_status lam__template_special(lam_tokenizer *t, const cJSON *specials, const cJSON *item, bool after,
                                        const char *path) {
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(item, "id");
  int64_t type = 0;
  const cJSON *tj = cJSON_GetObjectItemCaseSensitive(item, "type_id");
  const cJSON *sp = cJSON_IsString(name) ? cJSON_GetObjectItemCaseSensitive(specials, name->valuestring) : NULL;
  const cJSON *sids = sp ? cJSON_GetObjectItemCaseSensitive(sp, "ids") : NULL;
  if (!cJSON_IsArray(sids) || (tj && !lam__json_int(tj, 0, INT32_MAX, &type)))
    return lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": the post_processor's special token %s has no ids", lam__load_fn,
                     path, cJSON_IsString(name) ? name->valuestring : "?");
  for (const cJSON *e = sids->child; e; e = e->next) {
    int64_t id;
    int *n = after ? &t->n_post : &t->n_pre;
    if (!lam__json_int(e, 0, t->vocab_count - 1, &id))
      return lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": special token %s has an id outside the vocabulary", lam__load_fn,
                       path, name->valuestring);
    if (*n == LAM__TOK_MAX_SPECIALS)
      return lam__fail(LAM_ERR_UNSUPPORTED, "%s: \"%s\": more than %d special tokens on one side", lam__load_fn,
                       path, LAM__TOK_MAX_SPECIALS);
    (after ? t->post : t->pre)[*n] = (int32_t)id;
    (after ? t->post_type : t->pre_type)[*n] = (int32_t)type;
    ++*n;
  }
  return LAM_OK;
}

static lam_status lam__parse_post(lam_tokenizer *t, const cJSON *root, const char *path) {
  const cJSON *pp = cJSON_GetObjectItemCaseSensitive(root, "post_processor");
  if (!pp || cJSON_IsNull(pp)) return LAM_OK;
  const char *ty = cJSON_IsObject(pp) ? lam__json_type(pp) : NULL;
  if (!ty) return lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": the post_processor has no type", lam__load_fn, path);
  if (strcmp(ty, "BertProcessing") == 0 || strcmp(ty, "RobertaProcessing") == 0) {
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(pp, "cls"), *sep = cJSON_GetObjectItemCaseSensitive(pp, "sep");
    int64_t c, s;
    if (cJSON_GetArraySize(cls) != 2 || cJSON_GetArraySize(sep) != 2 ||
        !lam__json_int(cJSON_GetArrayItem(cls, 1), 0, t->vocab_count - 1, &c) ||
        !lam__json_int(cJSON_GetArrayItem(sep, 1), 0, t->vocab_count - 1, &s))
      return lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": %s needs cls and sep as [token, id] in the vocabulary",
                       lam__load_fn, path, ty);
    t->pre[0] = (int32_t)c, t->post[0] = (int32_t)s;
    t->n_pre = t->n_post = 1;
    return LAM_OK;
  }
  if (strcmp(ty, "TemplateProcessing") != 0)
    return lam__fail(LAM_ERR_UNSUPPORTED, "%s: \"%s\": post_processor %s is not supported (TemplateProcessing, "
                     "BertProcessing, RobertaProcessing or null)", lam__load_fn, path, ty);
  const cJSON *single = cJSON_GetObjectItemCaseSensitive(pp, "single");
  const cJSON *specials = cJSON_GetObjectItemCaseSensitive(pp, "special_tokens");
  if (!cJSON_IsArray(single) || !cJSON_IsObject(specials))
    return lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": TemplateProcessing needs a single template and special_tokens",
                     lam__load_fn, path);
  int sequences = 0;
  for (const cJSON *item = single->child; item; item = item->next) {
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(item, "SpecialToken");
    const cJSON *sq = cJSON_GetObjectItemCaseSensitive(item, "Sequence");
    int64_t type = 0;
    if (cJSON_IsObject(sp)) {
      lam_status st = lam__template_special(t, specials, sp, sequences > 0, path);
      if (st != LAM_OK) return st;
    } else if (cJSON_IsObject(sq) &&
               lam__json_int(cJSON_GetObjectItemCaseSensitive(sq, "type_id"), 0, INT32_MAX, &type)) {
      sequences++;
      t->seq_type = (int32_t)type;
    } else {
      return lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": a single-template item is neither SpecialToken nor Sequence",
                       lam__load_fn, path);
    }
  }
  if (sequences != 1)
    return lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": the single template has %d sequences (1 expected)", lam__load_fn,
                     path, sequences);
  return LAM_OK;
}

static lam_status lam__parse_padding(lam_tokenizer *t, const cJSON *root, const char *path) {
  const cJSON *pad = cJSON_GetObjectItemCaseSensitive(root, "padding");
  int32_t pid = lam__vocab_find(t, "[PAD]", 5);
  t->pad_id = pid >= 0 ? pid : 0;
  if (!pad || cJSON_IsNull(pad)) return LAM_OK;
  const cJSON *id = cJSON_GetObjectItemCaseSensitive(pad, "pad_id"), *ty = cJSON_GetObjectItemCaseSensitive(pad, "pad_type_id");
  int64_t v;
  if (id) {
    if (!lam__json_int(id, 0, INT32_MAX, &v)) goto bad;
    t->pad_id = (int32_t)v;
  }
  if (ty) {
    if (!lam__json_int(ty, 0, INT32_MAX, &v)) goto bad;
    t->pad_type_id = (int32_t)v;
  }
  return LAM_OK;
bad:
  return lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": padding.pad_id / pad_type_id is not an id", lam__load_fn, path);
}

lam_status lam_tokenizer_load(const char *path, lam_tokenizer **out) {
  const char *fn = lam__load_fn;
  if (out) *out = NULL;
  if (!path || !out) return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, !path ? "path" : "out");
  FILE *f = fopen(path, "rb");
  if (!f) return lam__fail(LAM_ERR_IO, "%s: cannot open \"%s\": %s", fn, path, strerror(errno));
  fclose(f);
  size_t len = 0;
  char *text = lam__read_all(path, 1000000000, &len); /* NUL-terminated */
  if (!text) return lam__fail(LAM_ERR_IO, "%s: \"%s\" is not a regular file of at most 1 GB (or unreadable)", fn, path);
  cJSON *root = cJSON_ParseWithLength(text, len);
  free(text);
  if (!cJSON_IsObject(root)) {
    cJSON_Delete(root);
    return lam__fail(LAM_ERR_FORMAT, "%s: \"%s\" is not a JSON object", fn, path);
  }
  lam_tokenizer *t = calloc(1, sizeof *t);
  lam_status st = t ? LAM_OK : lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
  int64_t max_added = -1;
  int n_added = 0;
  if (st == LAM_OK) st = lam__scan_added(root, path, &max_added, &n_added);
  if (st == LAM_OK) st = lam__parse_model(t, root, path, max_added);
  if (st == LAM_OK) st = lam__parse_normalizer(t, root, path);
  if (st == LAM_OK) st = lam__parse_pre_tokenizer(t, root, path);
  if (st == LAM_OK) st = lam__parse_added(t, root, path, n_added);
  if (st == LAM_OK) st = lam__parse_post(t, root, path);
  if (st == LAM_OK) st = lam__parse_padding(t, root, path);
  cJSON_Delete(root);
  if (st != LAM_OK) {
    lam_tokenizer_free(t);
    return st;
  }
  *out = t;
  return LAM_OK;
}

#else /* !LAMINA_HAVE_CJSON */
lam_status lam_tokenizer_load(const char *path, lam_tokenizer **out) {
  if (out) *out = NULL;
  if (!path || !out)
    return lam__fail(LAM_ERR_NULL, "lam_tokenizer_load: %s is NULL", !path ? "path" : "out");
  return lam__fail(LAM_ERR_UNSUPPORTED,
                   "lam_tokenizer_load: \"%s\": this lamina was built without cJSON (LAMINA_WITH_CJSON); "
                   "tokenizer.json cannot be parsed", path);
}
#endif /* LAMINA_HAVE_CJSON */
