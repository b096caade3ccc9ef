/* ops/elementwise_internal.h: helpers shared by the elementwise op files
 * (unary.c, binary.c, compare.c): the broadcast layout that the general
 * kernels index through, and the common argument checks. Never installed. */
#ifndef LAMINA_OPS_ELEMENTWISE_INTERNAL_H
#define LAMINA_OPS_ELEMENTWISE_INTERNAL_H

#include "internal.h"

/* Argument count of a lam__arg array. */
#define LAM__EW_NARGS(args) ((int)(sizeof(args) / sizeof((args)[0])))

/* Up to three operands broadcast onto one output shape. Size-1 output axes
 * are dropped and adjacent axes merged while every operand stays linear
 * across them, so the kernels' per-element div/mod loop is as short as
 * possible. strides[k] are operand k's element strides, 0 on broadcast axes. */
typedef struct lam__ew_layout {
  int ndim;
  int64_t shape[LAM_MAX_DIMS];
  int64_t strides[3][LAM_MAX_DIMS];
} lam__ew_layout;

/* Fills L (always ndim >= 1) for the output shape (ndim, shape) and nops (<= 3) operands whose
 * shapes broadcast to it (checked by the caller). */
void lam__ew_layout_make(int ndim, const int64_t *shape, int nops, const int *op_ndim,
                         const int64_t (*op_shape)[LAM_MAX_DIMS], lam__ew_layout *L);

/* Launches a two-operand broadcasting kernel (binary_bcast, compare_bcast)
 * of a's dtype: y[i] = kernel(op, a, b) over the output shape (ndim, shape). */
lam_status lam__ew_launch_bcast2(lam_ctx *ctx, const char *kernel, int op, const lam_tensor *a,
                                 const lam_tensor *b, lam_tensor *y, int ndim, const int64_t *shape,
                                 int chunk, const char *fn);

/* Work-items of a row/chunk launch over the n elements of layout L. */
size_t lam__ew_items(const lam__ew_layout *L, int64_t n, int chunk);

/* Elements per work-item of the chunked kernels: 64 on CPU devices (a
 * vectorisable loop per work-item), 1 elsewhere (coalesced on GPUs). */
int lam__ew_chunk(const lam_ctx *ctx);

/* Records LAM_ERR_INVALID_ARGUMENT unless a and b live on one context. */
lam_status lam__ew_same_ctx(const char *fn, const lam_tensor *a, const lam_tensor *b,
                            const char *na, const char *nb);

/* Records LAM_ERR_DTYPE "fn: dtypes differ: a is f32, b is f64" unless equal. */
lam_status lam__ew_same_dtype(const char *fn, const lam_tensor *a, const lam_tensor *b,
                              const char *na, const char *nb);

#endif
