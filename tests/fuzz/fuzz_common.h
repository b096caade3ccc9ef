/* tests/fuzz/fuzz_common.h: shared pieces of the libFuzzer targets and of the
 * seed-corpus writer: one context per process, the model tree the loaders
 * read into (the same tree the seeds are written from), and the fuzz input
 * handed to the path-taking loaders as an in-memory file. */
#ifndef LAMINA_FUZZ_COMMON_H
#define LAMINA_FUZZ_COMMON_H

#include <lamina.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* The context lives for the process (reachable, so LSan does not report it). */
static inline lam_ctx *fz_ctx(void) {
  static lam_ctx *ctx;
  if (!ctx && lam_ctx_create(NULL, &ctx) != LAM_OK) {
    fprintf(stderr, "fuzz: no context: %s\n", lam_last_error());
    abort();
  }
  return ctx;
}

static inline lam_tensor *fz_leaf(lam_ctx *ctx, lam_dtype dt, int ndim, const int64_t *shape, double v) {
  lam_tensor *t = lam_tensor_full(ctx, dt, ndim, shape, v);
  if (!t) {
    fprintf(stderr, "fuzz: %s\n", lam_last_error());
    abort();
  }
  return t;
}

static inline void fz_put(lam_ptree *tree, const char *path, lam_tensor *t) {
  if (lam_ptree_set(tree, path, t) != LAM_OK) {
    fprintf(stderr, "fuzz: %s\n", lam_last_error());
    abort();
  }
  lam_tensor_free(t);
}

/* The model: float leaves of two ranks, a list, an i32 and a u8 leaf. */
static inline lam_ptree *fz_model(lam_ctx *ctx) {
  lam_ptree *m = lam_ptree_dict();
  fz_put(m, "enc.w", fz_leaf(ctx, LAM_F32, 2, (int64_t[]){2, 3}, 0.5));
  fz_put(m, "enc.b", fz_leaf(ctx, LAM_F32, 1, (int64_t[]){3}, -1.0));
  fz_put(m, "layers.0.g", fz_leaf(ctx, LAM_F32, 1, (int64_t[]){2}, 1.0));
  fz_put(m, "ids", fz_leaf(ctx, LAM_I32, 1, (int64_t[]){4}, 7));
  fz_put(m, "mask", fz_leaf(ctx, LAM_U8, 1, (int64_t[]){5}, 1));
  return m;
}

/* Model state for checkpoints (a running mean). */
static inline lam_ptree *fz_state(lam_ctx *ctx) {
  lam_ptree *s = lam_ptree_dict();
  fz_put(s, "bn.mean", fz_leaf(ctx, LAM_F32, 1, (int64_t[]){3}, 0.25));
  return s;
}

/* Returns a path naming a file that holds exactly data[0..size) (an
 * anonymous memory file, rewritten on each call). */
static inline const char *fz_file(const uint8_t *data, size_t size) {
  static int fd = -1;
  static char path[64];
  if (fd < 0) {
    fd = memfd_create("lamina-fuzz", 0);
    if (fd < 0) {
      perror("memfd_create");
      abort();
    }
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  }
  if (ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size)) {
    perror("fuzz input");
    abort();
  }
  return path;
}

/* A NUL-terminated copy of the input (caller frees). */
static inline char *fz_string(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (!s) abort();
  memcpy(s, data, size);
  s[size] = '\0';
  return s;
}

#endif
