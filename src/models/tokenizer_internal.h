/* models/tokenizer_internal.h: the Unicode tables of the WordPiece tokenizer
 * (generated into tokenizer_unicode.c by tools/gen_unicode_tables.py) and
 * the character classes built on them (tokenizer.c). Never installed. */
#ifndef LAMINA_MODELS_TOKENIZER_INTERNAL_H
#define LAMINA_MODELS_TOKENIZER_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

typedef struct lam__uc_range {
  uint32_t lo, hi; /* inclusive */
} lam__uc_range;
typedef struct lam__uc_ccc_range {
  uint32_t lo, hi;
  uint8_t ccc;
} lam__uc_ccc_range;
/* A code point and its replacement: pool[off .. off + len - 1]. */
typedef struct lam__uc_map {
  uint32_t cp;
  uint16_t off;
  uint8_t len;
} lam__uc_map;

extern const char lam__uc_version[];
extern const lam__uc_range lam__uc_control[], lam__uc_punct[], lam__uc_mn[];
extern const int lam__uc_control_count, lam__uc_punct_count, lam__uc_mn_count;
extern const uint32_t lam__uc_whitespace[];
extern const int lam__uc_whitespace_count;
extern const lam__uc_ccc_range lam__uc_ccc[];
extern const int lam__uc_ccc_count;
extern const lam__uc_map lam__uc_nfd[], lam__uc_lower[];
extern const int lam__uc_nfd_count, lam__uc_lower_count;
extern const uint32_t lam__uc_nfd_pool[], lam__uc_lower_pool[];

/* The classes of Hugging Face's BertNormalizer / BertPreTokenizer. */
bool lam__uc_is_control(uint32_t c);    /* removed by clean_text (with U+0000, U+FFFD) */
bool lam__uc_is_whitespace(uint32_t c); /* White_Space, plus \t \n \r */
bool lam__uc_is_punct(uint32_t c);      /* ASCII punctuation or P* */
bool lam__uc_is_mn(uint32_t c);
bool lam__uc_is_cjk(uint32_t c);        /* handle_chinese_chars' CJK ideograph blocks */
int lam__uc_ccc_of(uint32_t c);
/* Writes the replacement of c (NFD / lowercase) into out (at least 4 code
 * points; 18 for NFD) and returns its length; a character without one is
 * written as itself. */
int lam__uc_nfd_of(uint32_t c, uint32_t *out);
int lam__uc_lower_of(uint32_t c, uint32_t *out);

#endif
