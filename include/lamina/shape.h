/* lamina/shape.h: shape and data-movement ops. All return new tensors (or
 * NULL with a message); those on float tensors are differentiable. Axes may
 * be negative (counted from the end). Data movement works for every dtype
 * (f32, f64, i32, u8 and f16, moved bit for bit). Where the result is
 * one contiguous run of the input (reshape-like ops, a permute that moves
 * only size-1 axes, a slice of leading rows, split along a leading axis) the
 * new tensor is a view sharing the input's buffer, like lam_tensor_reshape.
 *
 * Indices (gather, take, index_select, scatter_add) are i32 tensors. An
 * index t into an axis of size n selects t when 0 <= t < n and t + n when
 * -n <= t < 0 (NumPy's rule, for every index op). Any other value is out of
 * range: indices stay on the device (checking them on the host would stall
 * the queue), so such an entry is not an error; gathers (gather, take,
 * index_select) produce 0 there and scatter_add drops that src entry. Nothing
 * is read or written outside a tensor, and the gradients follow the same
 * rule. Scatter-adds (scatter_add and the gathers' backward) are
 * deterministic: every run sums in the same order. */
#ifndef LAMINA_SHAPE_H
#define LAMINA_SHAPE_H

#include "lamina/export.h"

#include "lamina/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lam_pad_mode {
  LAM_PAD_CONSTANT,
  LAM_PAD_REFLECT,
  LAM_PAD_REPLICATE,
  LAM_PAD_CIRCULAR /* wraps around (torch mode="circular"); pad <= dim */
} lam_pad_mode;

/* Same as lam_tensor_reshape (a view; -1 infers one dim). */
LAM_API lam_tensor *lam_reshape(lam_tensor *x, int ndim, const int64_t *shape);
/* Inserts a size-1 axis at `axis` (-ndim-1 .. ndim) / removes size-1 axis
 * `axis` (an error when it is not size 1). Views. */
LAM_API lam_tensor *lam_unsqueeze(lam_tensor *x, int axis);
LAM_API lam_tensor *lam_squeeze(lam_tensor *x, int axis);
/* Collapses axes [start, end] (inclusive) into one (view); a 0-dim tensor
 * flattens to [1]. */
LAM_API lam_tensor *lam_flatten(lam_tensor *x, int start_axis, int end_axis);
/* Returns x with axes reordered: out.shape[i] = x.shape[perm[i]] (perm
 * holds x's ndim entries, each axis once; entries may be negative). */
LAM_API lam_tensor *lam_permute(lam_tensor *x, const int *perm);
/* Swaps two axes. */
LAM_API lam_tensor *lam_transpose(lam_tensor *x, int axis0, int axis1);
/* Returns a contiguous copy (differentiable identity). */
LAM_API lam_tensor *lam_contiguous(lam_tensor *x);
/* Broadcasts x to `shape` (NumPy rules: x's dims align to the right and
 * each is 1 or equal to the target's); the gradient sums back. */
LAM_API lam_tensor *lam_broadcast_to(lam_tensor *x, int ndim, const int64_t *shape);
/* Joins n >= 1 tensors of one dtype and equal shape except along `axis`
 * (a message names the first tensor that differs). */
LAM_API lam_tensor *lam_concat(lam_tensor *const *xs, int n, int axis);
/* Stacks n >= 1 tensors of equal shape along a new axis (-ndim-1 .. ndim). */
LAM_API lam_tensor *lam_stack(lam_tensor *const *xs, int n, int axis);
/* Splits x along `axis` into n parts of `sizes[i]` (sizes NULL: equal parts,
 * the axis must divide by n; else every size >= 1 and they sum to the axis);
 * stores n new tensors in out (all NULL on error). Returns LAM_OK or the error. */
LAM_API lam_status lam_split(lam_tensor *x, int axis, int n, const int64_t *sizes, lam_tensor **out);
/* Python-style slice per axis: for axis i, start[i]:stop[i]:step[i] with
 * negative indices counted from the end and clamped as Python does; step != 0.
 * A NULL start or stop array means Python's None on every axis (the whole
 * axis in the step's direction: 0 / dim for positive steps, the last element /
 * past the first for negative ones); a NULL step array means 1. Single
 * entries clamp, so INT64_MAX / INT64_MIN also act as None (x[::-1] is start
 * INT64_MAX, stop INT64_MIN, step -1). A slice that selects no elements is
 * LAM_ERR_SHAPE (zero-size tensors are not supported). */
LAM_API lam_tensor *lam_slice(lam_tensor *x, const int64_t *start, const int64_t *stop, const int64_t *step);
/* Slice along one axis (Python semantics as lam_slice). */
LAM_API lam_tensor *lam_slice_axis(lam_tensor *x, int axis, int64_t start, int64_t stop, int64_t step);
/* Pads with pads[2*i] before and pads[2*i+1] after axis i (ndim pairs, each
 * >= 0; crop with lam_slice). Constant fills with `value` converted to x's
 * dtype (for i32/u8 it must lie in the dtype's range; fractions truncate); reflect mirrors without repeating the edge and needs pad < dim, as
 * PyTorch; replicate repeats the edge (any pad); circular wraps around
 * (x[-1] before x[0]) and needs pad <= dim, as PyTorch (one wrap). The
 * gradient crops (constant) or also sums the mirrored / repeated / wrapped
 * positions. */
LAM_API lam_tensor *lam_pad(lam_tensor *x, const int64_t *pads, lam_pad_mode mode, double value);
/* torch.gather: out[i][j] = x[index[i][j]][j] for axis 0; index is i32 with
 * x's rank, no larger than x on the other axes, and out has index's shape. */
LAM_API lam_tensor *lam_gather(lam_tensor *x, int axis, lam_tensor *index);
/* numpy.take along axis: out.shape = x.shape[:axis] + idx.shape + x.shape[axis+1:]
 * (idx may be 0-dim); negative indices count from the end; out of range
 * gives 0 (see the top of this header). */
LAM_API lam_tensor *lam_take(lam_tensor *x, lam_tensor *indices, int axis);
/* torch.index_select: 1-D i32 index along axis. */
LAM_API lam_tensor *lam_index_select(lam_tensor *x, int axis, lam_tensor *index);
/* torch.scatter_add: out = x; out[index[i][j]][j] += src[i][j] for axis 0.
 * index is i32 with x's rank, no larger than x on the other axes; src has
 * x's dtype and exactly index's shape (PyTorch also takes a larger src:
 * slice it first). Integer sums wrap. Out-of-range entries are dropped. */
LAM_API lam_tensor *lam_scatter_add(lam_tensor *x, int axis, lam_tensor *index, lam_tensor *src);
/* One-hot encoding of i32 indices: out.shape = idx.shape + [num_classes]
 * (num_classes >= 1), 1 at the index and 0 elsewhere in `dtype`. An index
 * outside [0, num_classes), negative ones included (e.g. an ignore label),
 * gives a row of zeros, as jax.nn.one_hot. Not differentiable. */
LAM_API lam_tensor *lam_one_hot(lam_tensor *indices, int num_classes, lam_dtype dtype);
/* Zeroes elements above (tril) / below (triu) the k-th diagonal of the last
 * two dims (x has >= 2 dims; k > 0 is above the main diagonal). */
LAM_API lam_tensor *lam_tril(lam_tensor *x, int k);
LAM_API lam_tensor *lam_triu(lam_tensor *x, int k);
/* Returns a [rows, cols] u8 mask with 1 where col - row <= k (tril) or >= k (triu). */
LAM_API lam_tensor *lam_tril_mask(lam_ctx *ctx, int64_t rows, int64_t cols, int k);
LAM_API lam_tensor *lam_triu_mask(lam_ctx *ctx, int64_t rows, int64_t cols, int k);

#ifdef __cplusplus
}
#endif
#endif
