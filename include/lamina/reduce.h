/* lamina/reduce.h: reductions over any set of axes, softmax, log_softmax.
 * `axes` lists `naxes` distinct axes (negative counts from the end); naxes 0
 * with axes NULL reduces over every axis. keepdims keeps reduced axes as
 * size 1. Float inputs (f32/f64); sum/max/min/argmax/argmin also take i32.
 * Each returns a new tensor or NULL with a message. */
#ifndef LAMINA_REDUCE_H
#define LAMINA_REDUCE_H

#include "lamina/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

lam_tensor *lam_sum(lam_tensor *x, int naxes, const int *axes, int keepdims);
lam_tensor *lam_mean(lam_tensor *x, int naxes, const int *axes, int keepdims);
lam_tensor *lam_max(lam_tensor *x, int naxes, const int *axes, int keepdims);
lam_tensor *lam_min(lam_tensor *x, int naxes, const int *axes, int keepdims);
lam_tensor *lam_prod(lam_tensor *x, int naxes, const int *axes, int keepdims);
/* Variance with divisor N - correction (1: unbiased, as torch.var). */
lam_tensor *lam_var(lam_tensor *x, int naxes, const int *axes, double correction, int keepdims);
lam_tensor *lam_logsumexp(lam_tensor *x, int naxes, const int *axes, int keepdims);
/* Index of the first max/min along one axis, as i32. */
lam_tensor *lam_argmax(lam_tensor *x, int axis, int keepdims);
lam_tensor *lam_argmin(lam_tensor *x, int axis, int keepdims);

/* Numerically stable softmax / log_softmax along `axis`. */
lam_tensor *lam_softmax(lam_tensor *x, int axis);
lam_tensor *lam_log_softmax(lam_tensor *x, int axis);

#ifdef __cplusplus
}
#endif
#endif
