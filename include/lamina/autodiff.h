/* lamina/autodiff.h: reverse-mode automatic differentiation.
 * While a tape is recording, every differentiable op whose inputs depend on
 * the watched tensors records a node; backward rules run on the device.
 * Outside lam_value_and_grad / lam_grad nothing is recorded, so inference
 * pays nothing. Higher-order gradients are not supported. */
#ifndef LAMINA_AUTODIFF_H
#define LAMINA_AUTODIFF_H

#include "lamina/export.h"

#include <stdbool.h>

#include "lamina/ptree.h"
#include "lamina/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A loss function over a parameter tree: returns a new scalar tensor (one
 * element) or NULL on failure. */
typedef lam_tensor *(*lam_loss_fn)(lam_ptree *params, void *user);

/* Runs fn(params, user) while recording and returns in `*loss` the loss and
 * in `*grads` a new tree with the same paths and shapes as the trainable
 * leaves of `params` (frozen leaves are left out; leaves the loss does not
 * depend on get zeros). Every tape tensor is released before returning.
 * Returns LAM_OK, the status of a failing op inside fn, or LAM_ERR_SHAPE for
 * a loss with more than one element. */
LAM_API lam_status lam_value_and_grad(lam_ctx *ctx, lam_loss_fn fn, void *user, lam_ptree *params,
                              lam_tensor **loss, lam_ptree **grads);

typedef lam_tensor *(*lam_tensors_fn)(lam_tensor *const *xs, int n, void *user);
/* As lam_value_and_grad over a list of n tensors: grads[i] receives a new
 * tensor shaped like xs[i]. `loss` may be NULL if not wanted. */
LAM_API lam_status lam_grad(lam_ctx *ctx, lam_tensors_fn fn, void *user, lam_tensor *const *xs, int n,
                    lam_tensor **loss, lam_tensor **grads);

/* Vector-Jacobian product (JAX's vjp, evaluated at once): runs y = fn(xs) while recording,
 * then backward seeded with `cotangent` (same shape and dtype as y) instead of a scalar loss.
 * grads[i] receives a new tensor d<cotangent, y>/dxs[i] shaped like xs[i] (zeros where y does
 * not depend on xs[i]); *out receives y (pass NULL if not wanted). fn may return any shape and
 * any float dtype. xs must be float tensors of ctx. Returns LAM_OK, LAM_ERR_NULL,
 * LAM_ERR_INVALID_ARGUMENT (n < 1, another context), LAM_ERR_DTYPE (non-float xs),
 * LAM_ERR_SHAPE (cotangent does not match y), LAM_ERR_STATE (already recording) or the status
 * of a failing op inside fn; on failure no tensor is returned (*out is NULL). */
LAM_API lam_status lam_vjp(lam_ctx *ctx, lam_tensors_fn fn, void *user, lam_tensor *const *xs, int n,
                   const lam_tensor *cotangent, lam_tensor **out, lam_tensor **grads);

/* Returns a handle sharing x's buffer that gradients do not flow through. */
LAM_API lam_tensor *lam_stop_gradient(lam_tensor *x);

/* Pauses (false) or resumes (true) recording on ctx; returns the previous setting. */
LAM_API bool lam_grad_set_enabled(lam_ctx *ctx, bool enabled);
/* Returns true while a tape is recording on ctx. */
LAM_API bool lam_grad_is_recording(const lam_ctx *ctx);

#ifdef __cplusplus
}
#endif
#endif
