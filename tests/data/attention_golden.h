/* attention_golden.h: shared by the attention suites (test_attention.c,
 * test_mha.c, test_rope.c). Reads tests/data/attention_golden.bin (written
 * by tools/gen_attention_golden.py from PyTorch) and draws the inputs the
 * generator used from the same integer hash, so the file stores only
 * results. Large results are sampled: stored entry j is element
 * floor(j * numel / n) of the tensor. */
#ifndef LAMINA_ATTENTION_GOLDEN_H
#define LAMINA_ATTENTION_GOLDEN_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* lo + (hi - lo) * u rounded to float, u = (fmix32(i * 0x9E3779B1 + seed *
 * 0x85EBCA77 + 1) >> 8) / 2^24: the generator's gen(). */
static inline void ag_gen(uint32_t seed, int64_t n, double lo, double hi, double *out) {
  for (int64_t i = 0; i < n; i++) {
    uint32_t h = (uint32_t)i * 0x9E3779B1u + seed * 0x85EBCA77u + 1u;
    h ^= h >> 16;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    h *= 0xC2B2AE35u;
    h ^= h >> 16;
    double u = (double)(h >> 8) / (double)(1u << 24);
    out[i] = (double)(float)(lo + (hi - lo) * u);
  }
}

typedef struct ag_rec {
  char name[64];
  int n;
  float *v;
} ag_rec;

typedef struct ag_file {
  ag_rec *recs;
  int n;
} ag_file;

/* Loads the golden file (LAMINA_TEST_DATA, else the folder of this header);
 * returns 0 on success. */
static inline int ag_load(ag_file *f) {
  char path[1024];
  const char *dir = getenv("LAMINA_TEST_DATA");
  if (dir && *dir) {
    snprintf(path, sizeof path, "%s/attention_golden.bin", dir);
  } else {
    snprintf(path, sizeof path, "%s", __FILE__);
    char *slash = strrchr(path, '/');
    if (slash) slash[1] = 0;
    else path[0] = 0;
    strncat(path, "attention_golden.bin", sizeof path - strlen(path) - 1);
  }
  memset(f, 0, sizeof *f);
  FILE *fp = fopen(path, "rb");
  if (!fp) return -1;
  char magic[4];
  if (fread(magic, 1, 4, fp) != 4 || memcmp(magic, "LAMG", 4) != 0) {
    fclose(fp);
    return -1;
  }
  int cap = 0;
  for (;;) {
    uint32_t len, cnt;
    if (fread(&len, 4, 1, fp) != 1) break;
    if (len >= 64) break;
    if (f->n == cap) {
      cap = cap ? cap * 2 : 64;
      f->recs = realloc(f->recs, (size_t)cap * sizeof *f->recs);
    }
    ag_rec *r = &f->recs[f->n];
    memset(r->name, 0, sizeof r->name);
    if (fread(r->name, 1, len, fp) != len || fread(&cnt, 4, 1, fp) != 1) break;
    r->n = (int)cnt;
    r->v = malloc((size_t)cnt * sizeof(float) + 1);
    if (fread(r->v, sizeof(float), cnt, fp) != cnt) {
      free(r->v);
      break;
    }
    f->n++;
  }
  fclose(fp);
  return f->n > 0 ? 0 : -1;
}

static inline void ag_free(ag_file *f) {
  for (int i = 0; i < f->n; i++) free(f->recs[i].v);
  free(f->recs);
  memset(f, 0, sizeof *f);
}

/* Returns the record's values (and count in *n) or NULL. */
static inline const float *ag_get(const ag_file *f, const char *name, int *n) {
  for (int i = 0; i < f->n; i++)
    if (strcmp(f->recs[i].name, name) == 0) {
      if (n) *n = f->recs[i].n;
      return f->recs[i].v;
    }
  return NULL;
}

/* The samples of a full tensor (numel values) as the file stores them:
 * out[j] = full[j * numel / n] for j < n. */
static inline void ag_sample(const double *full, int64_t numel, int n, double *out) {
  for (int j = 0; j < n; j++) out[j] = full[(int64_t)j * numel / n];
}

#endif
