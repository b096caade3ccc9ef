/* ops/reduce_internal.h: the reduction machinery shared by src/ops/reduce.c
 * and src/ops/softmax.c (never installed). A reduction is described by a
 * lam__rgeom: the input's axes merged into alternating kept/reduced groups,
 * from which the reduce kernel's geometry, the output shape and the
 * broadcast kernel's strides follow. See cl/reduce.cl for the kernels. */
#ifndef LAMINA_OPS_REDUCE_INTERNAL_H
#define LAMINA_OPS_REDUCE_INTERNAL_H

#include "internal.h"

/* Kernel op codes (cl/reduce.cl OP_*). */
typedef enum lam__red_op {
  LAM__RED_SUM = 0,
  LAM__RED_PROD = 1,
  LAM__RED_MAX = 2,
  LAM__RED_MIN = 3,
  LAM__RED_FIRST = 4,
  LAM__RED_SUMEXP = 5,
  LAM__RED_SUMSQ = 6,
  LAM__RED_SUMSHIFT = 7,
  LAM__RED_DOT = 8,
  LAM__RED_COUNTEQ = 9,
  LAM__RED_PRODNZ = 10,
  LAM__RED_COUNTZERO = 11,
  LAM__RED_SUMSQ2 = 12 /* sum ((x - sh[o]) - x2[o])^2: x2 a per-output tensor here */
} lam__red_op;

/* Post transforms applied by the last pass (cl/reduce.cl POST_*). */
typedef enum lam__red_post {
  LAM__POST_SCALE = 0,    /* acc * scale */
  LAM__POST_SHIFT = 1,    /* sh + acc * scale */
  LAM__POST_LOGSHIFT = 2  /* sh + log(acc) (sh infinite -> 0) */
} lam__red_post;

/* Broadcast kernel modes (the bc_* kernels of cl/reduce.cl, in this order). */
typedef enum lam__bc_mode {
  LAM__BC_GRAD = 0,
  LAM__BC_EXTREME = 1,
  LAM__BC_PROD = 2,
  LAM__BC_VAR = 3,
  LAM__BC_LSE = 4,
  LAM__BC_SOFTMAX = 5,
  LAM__BC_LOGSOFTMAX = 6,
  LAM__BC_SOFTMAX_BW = 7,
  LAM__BC_LOGSOFTMAX_BW = 8
} lam__bc_mode;

typedef struct lam__rgeom {
  /* merged groups of the input, outermost first; red[d] marks reduced ones */
  int nm;
  int64_t mshape[LAM_MAX_DIMS];
  int red[LAM_MAX_DIMS];
  int64_t ostride[LAM_MAX_DIMS]; /* stride of each group in the reduced tensor (0: reduced) */
  /* reduce kernel view: kept and reduced groups with their input strides */
  int nk, nr;
  int64_t kshape[LAM_MAX_DIMS], kstride[LAM_MAX_DIMS];
  int64_t rshape[LAM_MAX_DIMS], rstride[LAM_MAX_DIMS];
  int64_t nout, nred, numel;
  /* the public result shape (keepdims or not) */
  int out_ndim;
  int64_t out_shape[LAM_MAX_DIMS];
} lam__rgeom;

/* Validates axes for a tensor of rank ndim (naxes 0 means every axis;
 * negative axes count from the end; duplicates and out-of-range axes are
 * LAM_ERR_INVALID_ARGUMENT named after fn) and returns the bit mask of
 * reduced axes in *mask. */
lam_status lam__reduce_mask(const char *fn, int ndim, int naxes, const int *axes, unsigned *mask);

/* Fills g for an input of (ndim, shape) reducing the axes in mask. */
void lam__rgeom_make(int ndim, const int64_t *shape, unsigned mask, int keepdims, lam__rgeom *g);

/* Returns LAM_OK when dtype is f32/f64 (or also i32 when allow_int), else
 * LAM_ERR_DTYPE naming fn and the dtype. */
lam_status lam__reduce_dtype(const char *fn, lam_dtype dtype, int allow_int);

/* Reduces x over g into a new tensor of shape (g->out_ndim, g->out_shape)
 * (element o is output o whatever keepdims), splitting into chunks and
 * passes as the device needs. x2 is OP_DOT's second operand (OP_SUMSQ2's
 * per-output second shift; else NULL); sh a
 * per-output tensor of g->nout elements (or NULL) used by shifted ops and
 * the post transform. Returns NULL with a message on failure. */
lam_tensor *lam__reduce_run(const char *fn, lam_tensor *x, lam_tensor *x2, lam_tensor *sh,
                            const lam__rgeom *g, lam__red_op op, lam__red_post post,
                            double scale);

/* Runs the broadcast kernel: a new tensor shaped (ndim, shape) with dtype of
 * a (a/b full-shaped, r/s/t reduced-shaped per g; unused ones NULL). */
lam_tensor *lam__bcast_run(const char *fn, const lam__rgeom *g, int ndim, const int64_t *shape,
                           lam__bc_mode mode, double scale, lam_tensor *a, lam_tensor *b,
                           lam_tensor *r, lam_tensor *s, lam_tensor *t);

/* Work-items a kernel needs to fill the device (host heuristic). */
int64_t lam__reduce_par_target(const lam_ctx *ctx);

/* Launches a 1-D kernel over n work-items with groups small enough that
 * every compute unit gets work (reductions have few, long work-items). */
lam_status lam__reduce_launch(lam_ctx *ctx, cl_kernel k, const char *fn, int nargs,
                              const lam__arg *args, size_t n);

#endif
