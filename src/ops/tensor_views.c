/* ops/tensor_views.c: views that share a buffer (reshape, leading-axis
 * slices, stop_gradient) and their backward rules (an op: it records on the
 * tape, so it sits above autodiff, not in the tensor layer). */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static lam_status lam__reshape_backward(lam__node *node, lam_tensor *g, lam_tensor **gin) {
  gin[0] = lam_tensor_reshape(g, node->in_ndim[0], node->in_shape[0]);
  return gin[0] ? LAM_OK : lam_last_status();
}

lam_tensor *lam_tensor_reshape(lam_tensor *t, int ndim, const int64_t *shape) {
  const char *fn = "lam_tensor_reshape";
  if (!t) return lam__null_input(fn, "t");
  if (ndim < 0 || ndim > LAM_MAX_DIMS)
    return lam__fail(LAM_ERR_SHAPE, "%s: ndim %d is outside 0..%d", fn, ndim, LAM_MAX_DIMS), NULL;
  if (ndim > 0 && !shape) return lam__fail(LAM_ERR_NULL, "%s: shape is NULL", fn), NULL;
  int64_t s[LAM_MAX_DIMS];
  int infer = -1;
  int64_t known = 1;
  bool fits = true;
  for (int i = 0; i < ndim; i++) {
    s[i] = shape[i];
    if (s[i] == -1 && infer < 0) {
      infer = i;
      continue;
    }
    if (s[i] < 1) {
      char b[LAM__SHAPE_STR];
      return lam__fail(LAM_ERR_SHAPE, "%s: bad target shape %s (dims >= 1, one may be -1)", fn,
                       lam__shape_str(ndim, shape, b)), NULL;
    }
    if (s[i] > t->numel / known) { /* the product would pass numel (or overflow int64) */
      fits = false;
      break;
    }
    known *= s[i];
  }
  int64_t n = -1;
  if (fits) {
    if (infer >= 0) s[infer] = t->numel % known == 0 ? t->numel / known : -1;
    n = 1;
    for (int i = 0; i < ndim; i++) n *= s[i];
  }
  if (n != t->numel || (infer >= 0 && s[infer] < 1)) {
    char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR];
    return lam__fail(LAM_ERR_SHAPE, "%s: cannot reshape %s (%lld elements) to %s", fn,
                     lam__shape_str(t->ndim, t->shape, b1), (long long)t->numel,
                     lam__shape_str(ndim, shape, b2)), NULL;
  }
  lam_tensor *v = lam__tensor_view(t, t->offset, ndim, s);
  if (v) lam__tape_record(v, "lam_tensor_reshape", lam__reshape_backward, 1, &t);
  return v;
}

/* Gradient of a leading-axis slice: zeros with the slice's rows filled in. */
static lam_status lam__slice0_backward(lam__node *node, lam_tensor *g, lam_tensor **gin) {
  lam_tensor *z = lam_tensor_zeros(g->ctx, g->dtype, node->in_ndim[0], node->in_shape[0]);
  if (!z) return lam_last_status();
  size_t es = lam_dtype_size(g->dtype);
  int64_t row = 1;
  for (int d = 1; d < node->in_ndim[0]; d++) row *= node->in_shape[0][d];
  cl_int err = clEnqueueCopyBuffer(g->ctx->queue, g->buf->mem, z->buf->mem, g->offset * es,
                                   (size_t)(node->i[0] * row) * es, (size_t)g->numel * es, 0, NULL,
                                   NULL);
  if (err != CL_SUCCESS) {
    lam_tensor_free(z);
    return lam__cl_fail(err, "lam_tensor_slice0 backward", "clEnqueueCopyBuffer");
  }
  gin[0] = z;
  return LAM_OK;
}

lam_tensor *lam_tensor_slice0(lam_tensor *t, int64_t start, int64_t stop) {
  const char *fn = "lam_tensor_slice0";
  if (!t) return lam__null_input(fn, "t");
  if (t->ndim == 0)
    return lam__fail(LAM_ERR_SHAPE, "%s: a 0-dim tensor has no leading axis", fn), NULL;
  if (start < 0 || stop > t->shape[0] || start >= stop)
    return lam__fail(LAM_ERR_SHAPE, "%s: rows [%lld, %lld) are not a non-empty range of 0..%lld",
                     fn, (long long)start, (long long)stop, (long long)t->shape[0]), NULL;
  int64_t row = t->numel / t->shape[0];
  int64_t s[LAM_MAX_DIMS];
  memcpy(s, t->shape, sizeof s);
  s[0] = stop - start;
  lam_tensor *v = lam__tensor_view(t, t->offset + (size_t)(start * row), t->ndim, s);
  if (!v) return NULL;
  lam__node *node = lam__tape_record(v, fn, lam__slice0_backward, 1, &t);
  if (node) node->i[0] = start;
  return v;
}

lam_tensor *lam_stop_gradient(lam_tensor *x) {
  if (!x) return lam__null_input("lam_stop_gradient", "x");
  return lam__tensor_view(x, x->offset, x->ndim, x->shape); /* views start untracked */
}
