/* testutil.h: shared helpers for the Criterion suites: context setup, a
 * seeded host RNG (no rand()), comparisons against references, leak checks
 * through lam_ctx_stats, and a finite-difference gradient checker. */
#ifndef LAMINA_TESTUTIL_H
#define LAMINA_TESTUTIL_H

#include <criterion/criterion.h>
#include <lamina.h>
#include <stdint.h>

/* Creates a context on the default device (LAMINA_DEVICE honoured); fails the test otherwise. */
lam_ctx *tu_ctx(void);

/* Deterministic host RNG (splitmix64). */
typedef struct tu_rng { uint64_t s; } tu_rng;
tu_rng tu_rng_make(uint64_t seed);
uint64_t tu_next(tu_rng *r);
double tu_uniform(tu_rng *r, double lo, double hi);  /* [lo, hi) */
int64_t tu_randint(tu_rng *r, int64_t lo, int64_t hi); /* [lo, hi) */
void tu_fill_uniform_f32(tu_rng *r, float *x, int64_t n, double lo, double hi);
void tu_fill_uniform_f64(tu_rng *r, double *x, int64_t n, double lo, double hi);

/* Smaller shapes under Oclgrind (LAMINA_TEST_SMALL=1 set by the oclgrind label). */
int tu_small(void);

/* Asserts |got - want| <= atol + rtol * |want| elementwise (NaNs must match). */
void tu_assert_close_f32(const float *got, const float *want, int64_t n, double atol, double rtol,
                         const char *what);
void tu_assert_close_f64(const double *got, const double *want, int64_t n, double atol,
                         double rtol, const char *what);

/* Reads a tensor into a new malloc'd host array (test fails on error). */
float *tu_read_f32(const lam_tensor *t);
double *tu_read_f64(const lam_tensor *t);

/* Snapshot live tensors/bytes, then assert nothing was leaked since. */
typedef struct tu_mark { int64_t tensors, bytes; } tu_mark;
tu_mark tu_mark_now(lam_ctx *ctx);
void tu_assert_no_leak(lam_ctx *ctx, tu_mark mark);

/* Asserts a NULL result came with `status` and a message containing `needle`. */
void tu_assert_fails(const void *result, lam_status status, const char *needle);
void tu_assert_status(lam_status got, lam_status status, const char *needle);

/* Gradient check. fn maps n f64 inputs to any f64 output; the check draws a
 * random cotangent w, computes analytic d<w, fn(x)>/dx with the tape and
 * central finite differences (eps), and asserts
 * |analytic - numeric| <= tol * max(1, |numeric|). With check_f32 it also runs
 * fn on f32 copies and compares the f32 analytic gradient with the f64 one
 * (tolerance f32_tol). Inputs are not modified. */
void tu_gradcheck(lam_ctx *ctx, lam_tensors_fn fn, void *user, lam_tensor *const *xs, int n,
                  double eps, double tol, int check_f32, double f32_tol, const char *what);

/* Makes an f64 tensor of uniform values in [lo, hi). */
lam_tensor *tu_rand_f64(lam_ctx *ctx, tu_rng *r, int ndim, const int64_t *shape, double lo,
                        double hi);
lam_tensor *tu_rand_f32(lam_ctx *ctx, tu_rng *r, int ndim, const int64_t *shape, double lo,
                        double hi);

#endif
