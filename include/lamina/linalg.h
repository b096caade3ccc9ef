/* lamina/linalg.h: matrix products through CLBlast (on CPU devices, with
 * by default, through lamina's own tuned kernels; lam_ctx_opts.clblast_on_cpu
 * keeps CLBlast there too).
 * Operands of rank >= 2 are stacks of matrices with NumPy-broadcast batch
 * dims; a rank-1 operand is a vector (as numpy.matmul). f32 and f64.
 * Returns a new tensor or NULL with a message. Differentiable. */
#ifndef LAMINA_LINALG_H
#define LAMINA_LINALG_H

#include "lamina/export.h"

#include "lamina/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Returns a @ b. */
LAM_API lam_tensor *lam_matmul(lam_tensor *a, lam_tensor *b);
/* Returns op(a) @ op(b), op transposing the last two dims when its flag is
 * set (a flag on a rank-1 operand changes nothing). */
LAM_API lam_tensor *lam_matmul_t(lam_tensor *a, lam_tensor *b, int transpose_a, int transpose_b);

#ifdef __cplusplus
}
#endif
#endif
