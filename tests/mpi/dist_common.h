/* tests/mpi/dist_common.h: helpers of the MPI suites (tests/mpi/): a check
 * macro that reports with the rank, deterministic data shared by every
 * rank (splitmix64, never rand()), the small model the suites train, the
 * largest difference between two parameter trees, and the end of a suite
 * (a collective verdict, so every rank exits with the same code). Plain C
 * programs, not Criterion: Criterion forks each test, which MPI forbids. */
#ifndef LAMINA_TEST_DIST_COMMON_H
#define LAMINA_TEST_DIST_COMMON_H

#include <lamina.h>
#include <lamina/dist.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int dc_rank = 0;
static int dc_failures = 0;

#define DC_CHECK(cond, ...)                                              \
  do {                                                                   \
    if (!(cond)) {                                                       \
      fprintf(stderr, "[rank %d] %s:%d: FAILED: ", dc_rank, __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                                      \
      fprintf(stderr, "\n");                                             \
      dc_failures++;                                                     \
    }                                                                    \
  } while (0)

#define DC_OK(call) DC_CHECK((call) == LAM_OK, "%s: %s", #call, lam_last_error())

static inline uint64_t dc_next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

#define DC_IN 8
#define DC_OUT 4

/* n rows of DC_IN features in [-1, 1) and labels in [0, DC_OUT), the same on every rank. */
static inline void dc_data(lam_ctx *ctx, int64_t n, uint64_t seed, lam_tensor **x, lam_tensor **y) {
  float *xs = malloc((size_t)n * DC_IN * sizeof *xs);
  int32_t *ys = malloc((size_t)n * sizeof *ys);
  uint64_t s = seed;
  for (int64_t i = 0; i < n * DC_IN; i++) xs[i] = (float)((double)(dc_next(&s) >> 11) / 9007199254740992.0 * 2 - 1);
  for (int64_t i = 0; i < n; i++) ys[i] = (int32_t)(dc_next(&s) % DC_OUT);
  *x = lam_tensor_from_host(ctx, LAM_F32, 2, (int64_t[]){n, DC_IN}, xs);
  *y = lam_tensor_from_host(ctx, LAM_I32, 1, (int64_t[]){n}, ys);
  free(xs);
  free(ys);
}

static inline lam_layer *dc_model(void) {
  return lam_nn_sequential((lam_layer *[]){lam_nn_linear(DC_IN, 16, NULL), lam_nn_tanh(),
                                            lam_nn_linear(16, DC_OUT, NULL)},
                           3);
}

/* Largest |a - b| over the leaves of two trees of the same structure (INFINITY if they differ). */
static inline double dc_max_diff(const lam_ptree *a, const lam_ptree *b) {
  int n = lam_ptree_leaf_count(a);
  if (n != lam_ptree_leaf_count(b)) return INFINITY;
  double m = 0;
  for (int i = 0; i < n; i++) {
    const char *pa, *pb;
    lam_tensor *ta, *tb;
    if (lam_ptree_leaf(a, i, &pa, &ta) != LAM_OK || lam_ptree_leaf(b, i, &pb, &tb) != LAM_OK) return INFINITY;
    int64_t k = lam_tensor_numel(ta);
    if (strcmp(pa, pb) != 0 || k != lam_tensor_numel(tb) || lam_tensor_dtype(ta) != LAM_F32) return INFINITY;
    float *va = malloc((size_t)k * sizeof *va), *vb = malloc((size_t)k * sizeof *vb);
    if (lam_tensor_to_host(ta, va, (size_t)k * 4) == LAM_OK && lam_tensor_to_host(tb, vb, (size_t)k * 4) == LAM_OK) {
      for (int64_t j = 0; j < k; j++) m = fmax(m, fabs((double)va[j] - (double)vb[j]));
    } else {
      m = INFINITY;
    }
    free(va);
    free(vb);
  }
  return m;
}

static inline lam_tensor *dc_copy_leaf(const char *path, lam_tensor *t, void *user) {
  (void)path;
  (void)user;
  return lam_tensor_copy(t);
}

/* Every rank's verdict: the suite fails on every rank when one rank failed. */
static inline int dc_finish(lam_dist *d, const char *name) {
  lam_status st = lam_dist_check(d, dc_failures ? LAM_ERR_INVALID_ARGUMENT : LAM_OK);
  if (dc_rank == 0) printf("%s: %s on %d processes\n", name, st == LAM_OK ? "passed" : "FAILED", lam_dist_size(d));
  return st == LAM_OK ? 0 : 1;
}

#endif
