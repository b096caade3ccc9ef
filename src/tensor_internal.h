/* tensor_internal.h: the tensor struct and helpers for op implementations. */
#ifndef LAMINA_TENSOR_INTERNAL_H
#define LAMINA_TENSOR_INTERNAL_H

#include "runtime/runtime_internal.h"

struct lam_tensor {
  lam_ctx *ctx;
  lam__buffer *buf;
  size_t offset;                 /* in elements, into buf */
  lam_dtype dtype;
  int ndim;
  int64_t shape[LAM_MAX_DIMS];
  int64_t numel;
  int refs;
  /* autodiff: slot on the tape with id tape_id; meaningful only while that
   * tape records (see autodiff/tape.h). */
  int tape_slot;
  uint64_t tape_id;
};

/* Largest element count of one tensor (kernels index with int). */
#define LAM__MAX_NUMEL ((int64_t)0x7fffffff)

/* Validates ndim/shape (named after fn) and returns the element count in
 * *numel. Dims must be >= 1, ndim 0..8, numel < 2^31. */
lam_status lam__check_shape(const char *fn, int ndim, const int64_t *shape, int64_t *numel);

/* Returns a new uninitialised tensor (as lam_tensor_empty, errors named after fn). */
lam_tensor *lam__tensor_new(lam_ctx *ctx, lam_dtype dtype, int ndim, const int64_t *shape,
                            const char *fn);
/* Returns a new handle on t's buffer with another shape/offset (a view),
 * not recorded on the tape. */
lam_tensor *lam__tensor_view(lam_tensor *t, size_t offset, int ndim, const int64_t *shape);

/* Normalises a possibly negative axis against ndim; returns -1 when out of range. */
int lam__axis(int axis, int ndim);

/* Computes the NumPy broadcast of two shapes into out (ndim *out_ndim).
 * Returns LAM_OK or LAM_ERR_SHAPE recorded against fn with both shapes. */
lam_status lam__broadcast_shapes(const char *fn, int na, const int64_t *sa, int nb,
                                 const int64_t *sb, int *out_ndim, int64_t *out);

/* Row-major strides of shape (elements). */
void lam__strides(int ndim, const int64_t *shape, int64_t *strides);

#endif
