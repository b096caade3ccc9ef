/* attention_common.h: test code shared by the attention suites (test_attention.c,
 * test_mha.c, test_rope.c) for tests/data/attention_golden.safetensors (written by
 * tools/gen_attention_golden.py from PyTorch, read with tu_golden_load): the generator's
 * inputs, drawn again from the same integer hash so the file stores only results, and the
 * sampling of large results (stored entry j is element floor(j * numel / n) of the tensor) and
 * their comparison. */
#ifndef LAMINA_TEST_ATTENTION_COMMON_H
#define LAMINA_TEST_ATTENTION_COMMON_H

#include <stdint.h>
#include <stdlib.h>

#include "testutil.h"

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

/* The samples of a full tensor (numel values) as the file stores them:
 * out[j] = full[j * numel / n] for j < n. */
static inline void ag_sample(const double *full, int64_t numel, int n, double *out) {
  for (int j = 0; j < n; j++) out[j] = full[(int64_t)j * numel / n];
}

/* Asserts the samples of t equal golden record `name` of f within atol + rtol |want|. */
static inline void ag_check_sampled(const tu_golden *f, const char *name, const lam_tensor *t,
                                    double atol, double rtol) {
  const tu_array *a = tu_golden_get(f, "%s", name);
  const int n = (int)a->n;
  double *full = tu_to_f64(t), *got = malloc((size_t)n * sizeof *got);
  ag_sample(full, lam_tensor_numel(t), n, got);
  tu_assert_close_f64(got, a->v, n, atol, rtol, name);
  free(full);
  free(got);
}

#endif
