/* testutil.h: shared helpers for the Criterion suites: context setup, a
 * seeded host RNG (no rand()), comparisons against references, leak checks
 * through lam_ctx_stats, a finite-difference gradient checker, host data of
 * any dtype, temporary files, and the reader of the golden safetensors
 * files in tests/data. Suites define no copies of these. */
#ifndef LAMINA_TESTUTIL_H
#define LAMINA_TESTUTIL_H

#include <criterion/criterion.h>
#include <lamina.h>
#include <stdbool.h>
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

/* ---- host data of any dtype ---------------------------------------------------------- */

/* Product of the dims (1 for rank 0). */
int64_t tu_numel(int ndim, const int64_t *shape);
/* True when ctx can hold dt (f64 needs cl_khr_fp64, f16 cl_khr_fp16). */
bool tu_has_dtype(lam_ctx *ctx, lam_dtype dt);
/* A tensor of dtype dt (f32, f64, i32 or u8) holding v converted (test fails on error). */
lam_tensor *tu_from_f64(lam_ctx *ctx, lam_dtype dt, int ndim, const int64_t *shape,
                        const double *v);
/* A tensor's values (f32, f16, f64, i32 or u8) as a new malloc'd double array. */
double *tu_to_f64(const lam_tensor *t);
/* A tensor's raw bytes in a new malloc'd buffer. */
void *tu_read_bytes(const lam_tensor *t);
/* Asserts t is non-NULL with n elements, each close to want (as tu_assert_close_f64). */
void tu_assert_tensor_close(const lam_tensor *t, const double *want, int64_t n, double atol,
                            double rtol, const char *what);
/* Asserts y has shape (nd, shape) and elements bytewise equal to want. */
void tu_assert_tensor_bytes(const lam_tensor *y, int nd, const int64_t *shape,
                            const unsigned char *want, const char *what);
/* True when a and b have the same dtype, shape and bytes. */
bool tu_bits_equal(const lam_tensor *a, const lam_tensor *b);

/* n uniform doubles in [lo, hi), malloc'd (at least one element). */
double *tu_rand_vec(tu_rng *r, int64_t n, double lo, double hi);
/* A tensor of random elements of dtype dt (floats uniform in [-10, 10), ints across their
 * range); the host copy is returned in *host (caller frees). */
lam_tensor *tu_rand_tensor(lam_ctx *ctx, tu_rng *r, lam_dtype dt, int nd, const int64_t *shape,
                           unsigned char **host);
/* A random shape of rank nd, dims from {1, 2, 3, 5, 7, 33}, numel <= cap. */
void tu_rand_shape(tu_rng *r, int nd, int64_t cap, int64_t *shape);
/* Row-major strides of a shape, and the coordinates of flat index i. */
void tu_strides(int nd, const int64_t *shape, int64_t *strides);
void tu_unravel(int64_t i, int nd, const int64_t *shape, int64_t *coords);

/* The standard normal density and distribution function. */
double tu_normal_pdf(double x);
double tu_normal_cdf(double x);

/* ---- layers and files ---------------------------------------------------------------- */

/* lam_layer_apply(l, v, x) in training or inference mode; the test fails on error. */
lam_tensor *tu_apply(lam_layer *l, lam_vars *v, lam_tensor *x, bool training);

/* Path of a file in tests/data ($LAMINA_TEST_DATA, else tests/data), in a static buffer that
 * the next call (tu_golden_load makes one too) overwrites. */
const char *tu_data_path(const char *name);
/* Makes a fresh directory /tmp/<prefix>-XXXXXX for this process (Criterion runs each test in
 * its own) and returns it; tu_tmp(name) is a path inside it (four rotating static buffers). */
const char *tu_make_tmpdir(const char *prefix);
const char *tu_tmp(const char *name);
/* Removes the files in that directory, then the directory. */
void tu_remove_tmpdir(void);

/* ---- golden data ---------------------------------------------------------------------- */

/* Golden files are tests/data/<name>.safetensors written by tools/gen_*_golden.py: tensors
 * named "<case>.<field>" and the configuration in __metadata__ (numbers as text, lists
 * space-separated). tu_golden_load reads one through lam_safetensors_load on a context of its
 * own and keeps every tensor on the host as doubles, so suites need no context order or leak
 * bookkeeping for it. */
typedef struct tu_array {
  int ndim;
  int64_t shape[LAM_MAX_DIMS];
  int64_t n;       /* elements */
  const double *v; /* the values (integers and f32 exactly) */
} tu_array;
typedef struct tu_golden tu_golden;

/* Loads tests/data/<file> (the test fails on error). */
tu_golden *tu_golden_load(const char *file);
void tu_golden_free(tu_golden *g);
/* The tensor named printf(fmt, ...): tu_golden_get fails the test when it is absent,
 * tu_golden_find returns NULL. Borrowed until tu_golden_free. */
const tu_array *tu_golden_get(const tu_golden *g, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
const tu_array *tu_golden_find(const tu_golden *g, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Shorthands: the values of tensor printf(fmt, ...), and a new tensor of dtype dt holding them
 * (the test fails when it is absent). */
const double *tu_golden_values(const tu_golden *g, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
lam_tensor *tu_golden_tensor(lam_ctx *ctx, lam_dtype dt, const tu_golden *g, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Metadata value of key printf(fmt, ...) (the test fails when absent), as text, one number, or
 * up to max numbers or integers (returns how many; at most 16 integers). */
const char *tu_golden_meta(const tu_golden *g, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
double tu_golden_num(const tu_golden *g, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int tu_golden_nums(const tu_golden *g, double *out, int max, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int tu_golden_ints(const tu_golden *g, int *out, int max, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Metadata key as a list of space-separated words (such as "cases"): their count, and word i
 * (in one of eight rotating static buffers). */
int tu_golden_count(const tu_golden *g, const char *key);
const char *tu_golden_word(const tu_golden *g, const char *key, int i);

#endif
