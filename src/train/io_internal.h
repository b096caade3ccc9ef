/* train/io_internal.h: a parsed safetensors file shared by safetensors.c
 * and checkpoint.c, so that a checkpoint is opened and validated once and
 * every part of it is checked before anything is modified. */
#ifndef LAMINA_IO_INTERNAL_H
#define LAMINA_IO_INTERNAL_H

#include <stdio.h>

#include "internal.h"
#include "lamina/io.h"
#include "lamina/ptree.h"

/* Element types of the safetensors format. */
typedef enum {
  LAM__ST_F64, LAM__ST_F32, LAM__ST_F16, LAM__ST_BF16, LAM__ST_I64, LAM__ST_I32, LAM__ST_I16,
  LAM__ST_I8, LAM__ST_U64, LAM__ST_U32, LAM__ST_U16, LAM__ST_U8, LAM__ST_BOOL, LAM__ST_F8_E4M3,
  LAM__ST_F8_E5M2, LAM__ST_COUNT
} lam__st_dtype;

typedef struct {
  char *name;
  lam__st_dtype dtype;
  int ndim;             /* may exceed LAM_MAX_DIMS only as a reason to refuse */
  int64_t shape[LAM_MAX_DIMS];
  int64_t numel;
  uint64_t begin, end;  /* relative to the data section */
} lam__st_entry;

typedef struct {
  FILE *f;
  const char *path;     /* borrowed from the caller */
  uint64_t data_start;  /* 8 + header length */
  uint64_t data_len;
  lam__st_entry *e;     /* in header order */
  int n;
  int *by_name;         /* entry indices sorted by name */
  lam_metadata *meta;
} lam__st_file;

/* Opens and validates a file (errors named after fn). On failure the
 * struct is left closed. */
lam_status lam__st_open(const char *path, const char *fn, lam__st_file *sf);
void lam__st_close(lam__st_file *sf);
/* Returns the entry index named `name` (prefix + rest), or -1. */
int lam__st_find(const lam__st_file *sf, const char *prefix, const char *rest);

/* Checks that the entries under prefix fit `tree` (strict: same key sets);
 * the message names every missing / unexpected / mismatched key. */
lam_status lam__st_check_into(const lam__st_file *sf, const lam_ptree *tree, const char *prefix,
                              bool strict, const char *fn);
/* Writes the entries under prefix into the matching leaves of tree (after
 * lam__st_check_into succeeded). */
lam_status lam__st_read_into(lam__st_file *sf, lam_ptree *tree, const char *prefix, const char *fn);
/* Reads the entries under prefix into a new tree on ctx. */
lam_status lam__st_read_tree(lam__st_file *sf, lam_ctx *ctx, const char *prefix, lam_ptree **out,
                             const char *fn);

/* Shared with load.c (safetensors.c defines them). */
extern const char *const lam__st_names[LAM__ST_COUNT];
extern const int lam__st_sizes[LAM__ST_COUNT];
bool lam__st_is_float(lam__st_dtype d);
/* The file dtype of a lamina dtype. */
lam__st_dtype lam__st_of(lam_dtype d);
/* Whether file dtype s can be loaded into a leaf of dtype d. */
bool lam__st_compatible(lam__st_dtype s, lam_dtype d);
/* Converts n elements from s to d; returns the first integer index out of
 * d's range, or -1. */
int64_t lam__convert(const unsigned char *src, lam__st_dtype s, unsigned char *dst, lam__st_dtype d,
                     int64_t n);
/* Reads entry e's bytes into buf (e->end - e->begin bytes). */
lam_status lam__st_read(lam__st_file *sf, const lam__st_entry *e, void *buf, const char *fn);
/* Formats a file shape (any ndim) into buf (LAM__SHAPE_STR bytes). */
const char *lam__st_shape(const lam__st_entry *e, char *buf);
bool lam__has_prefix(const char *name, const char *prefix);

/* A bounded string builder for lists of keys: items past `limit` bytes are
 * only counted, and reported as "(+N more)". */
typedef struct {
  char buf[2600];
  size_t len, limit;
  int count, omitted;
} lam__list;
void lam__list_add(lam__list *l, const char *fmt, ...) LAM__PRINTF(2, 3);
const char *lam__list_end(lam__list *l);

#endif
