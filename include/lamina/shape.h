/* lamina/shape.h: shape and data-movement ops. All return new tensors (or
 * NULL with a message); those on float tensors are differentiable. Axes may
 * be negative (counted from the end). */
#ifndef LAMINA_SHAPE_H
#define LAMINA_SHAPE_H

#include "lamina/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lam_pad_mode { LAM_PAD_CONSTANT, LAM_PAD_REFLECT, LAM_PAD_REPLICATE } lam_pad_mode;

/* Same as lam_tensor_reshape (a view; -1 infers one dim). */
lam_tensor *lam_reshape(lam_tensor *x, int ndim, const int64_t *shape);
/* Inserts / removes a size-1 axis (views). */
lam_tensor *lam_unsqueeze(lam_tensor *x, int axis);
lam_tensor *lam_squeeze(lam_tensor *x, int axis);
/* Collapses axes [start, end] (inclusive) into one (view). */
lam_tensor *lam_flatten(lam_tensor *x, int start_axis, int end_axis);
/* Returns x with axes reordered: out.shape[i] = x.shape[perm[i]]. */
lam_tensor *lam_permute(lam_tensor *x, const int *perm);
/* Swaps two axes. */
lam_tensor *lam_transpose(lam_tensor *x, int axis0, int axis1);
/* Returns a contiguous copy (differentiable identity). */
lam_tensor *lam_contiguous(lam_tensor *x);
/* Broadcasts x to `shape` (NumPy rules). */
lam_tensor *lam_broadcast_to(lam_tensor *x, int ndim, const int64_t *shape);
/* Joins n tensors of equal shape except along `axis`. */
lam_tensor *lam_concat(lam_tensor *const *xs, int n, int axis);
/* Stacks n tensors of equal shape along a new axis. */
lam_tensor *lam_stack(lam_tensor *const *xs, int n, int axis);
/* Splits x along `axis` into n parts of `sizes[i]` (sizes NULL: equal parts,
 * the axis must divide by n); stores n new tensors in out. */
lam_status lam_split(lam_tensor *x, int axis, int n, const int64_t *sizes, lam_tensor **out);
/* Python-style slice per axis: for axis i, start[i]:stop[i]:step[i] with
 * negative indices counted from the end and clamped as Python does; step != 0.
 * NULL arrays mean 0 / dim / 1. */
lam_tensor *lam_slice(lam_tensor *x, const int64_t *start, const int64_t *stop, const int64_t *step);
/* Slice along one axis. */
lam_tensor *lam_slice_axis(lam_tensor *x, int axis, int64_t start, int64_t stop, int64_t step);
/* Pads with pads[2*i] before and pads[2*i+1] after axis i (ndim pairs);
 * reflect needs pad < dim, as PyTorch. */
lam_tensor *lam_pad(lam_tensor *x, const int64_t *pads, lam_pad_mode mode, double value);
/* torch.gather: out[i][j] = x[index[i][j]][j] for axis 0; index is i32 with
 * x's rank and out has index's shape. */
lam_tensor *lam_gather(lam_tensor *x, int axis, lam_tensor *index);
/* numpy.take along axis: out.shape = x.shape[:axis] + idx.shape + x.shape[axis+1:];
 * negative indices count from the end; out of range is an error on read-back
 * clamped on the device (checked on the host when idx is small). */
lam_tensor *lam_take(lam_tensor *x, lam_tensor *indices, int axis);
/* torch.index_select: 1-D i32 index along axis. */
lam_tensor *lam_index_select(lam_tensor *x, int axis, lam_tensor *index);
/* torch.scatter_add: out = x; out[index[i][j]][j] += src[i][j] for axis 0. */
lam_tensor *lam_scatter_add(lam_tensor *x, int axis, lam_tensor *index, lam_tensor *src);
/* One-hot encoding of i32 indices: out.shape = idx.shape + [num_classes]. */
lam_tensor *lam_one_hot(lam_tensor *indices, int num_classes, lam_dtype dtype);
/* Zeroes elements above (tril) / below (triu) the k-th diagonal of the last two dims. */
lam_tensor *lam_tril(lam_tensor *x, int k);
lam_tensor *lam_triu(lam_tensor *x, int k);
/* Returns a [rows, cols] u8 mask with 1 where col - row <= k (tril) or >= k (triu). */
lam_tensor *lam_tril_mask(lam_ctx *ctx, int64_t rows, int64_t cols, int k);
lam_tensor *lam_triu_mask(lam_ctx *ctx, int64_t rows, int64_t cols, int k);

#ifdef __cplusplus
}
#endif
#endif
