/* lamina/reduce.h: reductions over any set of axes, softmax, log_softmax.
 * `axes` lists `naxes` distinct axes in any order (negative counts from the
 * end); naxes 0 (axes NULL) reduces over every axis, and a 0-dim tensor is
 * its own reduction. keepdims keeps reduced axes as size 1. Float inputs
 * (f32/f64); sum/max/min/argmax/argmin also take i32 (sum of i32 is i32 and
 * wraps on overflow). A repeated or out-of-range axis, or naxes outside
 * 0..ndim, is LAM_ERR_INVALID_ARGUMENT; another dtype is LAM_ERR_DTYPE.
 * max/min propagate NaN; argmax/argmin take NaN as the extreme (as torch).
 * Gradients: max/min split the gradient evenly among elements tied at the
 * extreme (as torch.amax/amin); prod is exact with zeros; argmax/argmin
 * record nothing. Each returns a new tensor or NULL with a message. */
#ifndef LAMINA_REDUCE_H
#define LAMINA_REDUCE_H

#include "lamina/export.h"

#include "lamina/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

LAM_API lam_tensor *lam_sum(lam_tensor *x, int naxes, const int *axes, int keepdims);
LAM_API lam_tensor *lam_mean(lam_tensor *x, int naxes, const int *axes, int keepdims);
LAM_API lam_tensor *lam_max(lam_tensor *x, int naxes, const int *axes, int keepdims);
LAM_API lam_tensor *lam_min(lam_tensor *x, int naxes, const int *axes, int keepdims);
LAM_API lam_tensor *lam_prod(lam_tensor *x, int naxes, const int *axes, int keepdims);
/* Variance with divisor max(0, N - correction) (1: unbiased, as torch.var;
 * a zero divisor gives inf, or NaN for constant input). correction must be
 * finite and >= 0. Constant inputs give exactly 0. */
LAM_API lam_tensor *lam_var(lam_tensor *x, int naxes, const int *axes, double correction, int keepdims);
LAM_API lam_tensor *lam_logsumexp(lam_tensor *x, int naxes, const int *axes, int keepdims);
/* Index of the first max/min along one axis, as i32. */
LAM_API lam_tensor *lam_argmax(lam_tensor *x, int axis, int keepdims);
LAM_API lam_tensor *lam_argmin(lam_tensor *x, int axis, int keepdims);

/* Numerically stable softmax / log_softmax along `axis` (max subtraction;
 * finite for inputs of any finite size). -inf entries (masks) give 0 /
 * -inf; a row of only -inf gives NaN, as torch. */
LAM_API lam_tensor *lam_softmax(lam_tensor *x, int axis);
LAM_API lam_tensor *lam_log_softmax(lam_tensor *x, int axis);

#ifdef __cplusplus
}
#endif
#endif
