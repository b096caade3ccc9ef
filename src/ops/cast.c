/* ops/cast.c: lam_cast, the differentiable dtype conversion (the op form of
 * lam_tensor_cast, which sits below autodiff and is never recorded). Mixed
 * precision uses it to move between f16 activations and f32 losses or
 * master weights inside a recorded computation. */
#include "internal.h"

/* The gradient flows back converted to the input's dtype. */
static lam_status lam__cast_backward(lam__node *node, lam_tensor *g, lam_tensor **gin) {
  gin[0] = lam_tensor_cast(g, node->in_dtype[0]);
  return gin[0] ? LAM_OK : lam_last_status();
}

lam_tensor *lam_cast(lam_tensor *x, lam_dtype dtype) {
  const char *fn = "lam_cast";
  if (!x) return lam__null_input(fn, "x");
  lam_tensor *y = lam_tensor_cast(x, dtype);
  if (!y) return NULL;
  /* Differentiable between float dtypes only (as torch's .to()). */
  if (lam_dtype_is_float(x->dtype) && lam_dtype_is_float(dtype))
    lam__tape_record(y, fn, lam__cast_backward, 1, &x);
  return y;
}
