/* lamina/quant.h: group-wise 4- and 8-bit weight quantization (MLX's affine
 * format), the quantized matmul that dequantizes inside its kernels, the
 * quantized linear and embedding layers, and lam_quantize_layer (MLX's
 * nn.quantize) that converts a model's linear and embedding layers in place.
 *
 * Format (MLX's "affine" mode, docs/quantization.md): a weight [out, in] is
 * cut along `in` into groups of group_size (32, 64 or 128) consecutive
 * elements of a row. Per group, scale = (max - min) / (2^bits - 1) and
 * bias = min; q = round((w - bias) / scale) clamped to [0, 2^bits - 1]
 * (q = 0 when max == min), and w ~ scale * q + bias. The q of a row are
 * packed little end first into 32-bit words (8 nibbles or 4 bytes a word),
 * stored in an i32 tensor [out, in * bits / 32] holding the bit pattern of
 * MLX's uint32 words. scales and biases are [out, in / group_size] in the
 * weight's float dtype. in must be a multiple of group_size (else
 * LAM_ERR_SHAPE). group_size 0 means 64 and bits 0 means 4 (MLX's defaults). */
#ifndef LAMINA_QUANT_H
#define LAMINA_QUANT_H

#include "lamina/export.h"

#include <stdbool.h>

#include "lamina/layer.h"
#include "lamina/options.h"
#include "lamina/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- ops ------------------------------------------------------------------ */

/* Quantizes w [out, in] (f32 or f64; done on the host, once) into new
 * tensors *wq (i32 [out, in*bits/32]), *scales and *biases (w's dtype,
 * [out, in/group_size]). Nothing is returned on failure. Not differentiable. */
LAM_API lam_status lam_quantize(lam_tensor *w, int group_size, int bits, lam_tensor **wq,
                                lam_tensor **scales, lam_tensor **biases);
/* Returns the dequantized weight scale * q + bias [out, in] in scales' dtype. */
LAM_API lam_tensor *lam_dequantize(lam_tensor *wq, lam_tensor *scales, lam_tensor *biases,
                                   int group_size, int bits);
/* Returns x @ dequantize(wq, scales, biases)^T for x [..., in] (x's dtype
 * must be scales' dtype): [..., out], as torch's F.linear and MLX's
 * quantized_matmul(transpose=True). The weight is dequantized inside the
 * kernels, never stored: up to 8 rows of x run a matrix x vector kernel (the
 * decoding path), more a tiled matrix x matrix kernel. Differentiable with
 * respect to x only (the quantized weight gets no gradient). */
LAM_API lam_tensor *lam_quantized_matmul(lam_tensor *x, lam_tensor *wq, lam_tensor *scales,
                                         lam_tensor *biases, int group_size, int bits);

/* ---- layers ---------------------------------------------------------------- */

/* Options of the quantized layers and of lam_quantize_layer (the options rule). */
typedef bool (*lam_quantize_predicate_fn)(const char *path, const lam_layer *layer, void *user);
typedef struct lam_quantize_opts {
  int group_size;  /* 32, 64 or 128; 0: 64 */
  int bits;        /* 4 or 8; 0: 4 */
  bool no_bias;    /* quantized linear only: no "bias" parameter; default: with one */
  /* lam_quantize_layer only: called with each linear/embedding layer's params
   * path ("0", "1.left", ...); the layer is converted when it returns true.
   * NULL: every linear and embedding whose in-features fit group_size. */
  lam_quantize_predicate_fn predicate;
  void *user;      /* passed to predicate */
} lam_quantize_opts;
LAM_API lam_quantize_opts lam_quantize_defaults(void);

/* y = quantized_matmul(x, weight, scales, biases) + bias; x [..., in].
 * Params "weight" (i32 packed [out, in*bits/32]), "scales", "biases"
 * ([out, in/group_size]; init quantizes a glorot_uniform draw) and "bias"
 * [out] (MLX's QuantizedLinear names). weight, scales and biases are frozen:
 * training updates only bias (and the other layers). */
LAM_API lam_layer *lam_nn_quantized_linear(int64_t in_features, int64_t out_features,
                                           const lam_quantize_opts *opts);
/* Rows of a quantized table [vocab, dim] for i32 indices x, times sqrt(dim)
 * unless no_scale (as lam_nn_embedding). Params "weight", "scales", "biases"
 * (frozen). */
LAM_API lam_layer *lam_nn_quantized_embedding(int64_t vocab_size, int64_t embed_dim, bool no_scale,
                                              const lam_quantize_opts *opts);

/* MLX's nn.quantize: walks model (through lam_layer_child) and turns each
 * "linear" layer (and "embedding" without max_norm) accepted by the
 * predicate, whose in-features are a multiple of group_size, into a
 * quantized one in place (the lam_layer pointers stay valid), replacing its
 * params subtree in vars by weight/scales/biases (+ bias, kept as is).
 * Returns LAM_OK (also when nothing matched; *count, if not NULL, receives
 * the number converted). The params tree of vars must be the one from
 * lam_layer_init (or a loaded one of the same structure). */
LAM_API lam_status lam_quantize_layer(lam_layer *model, lam_vars *vars, const lam_quantize_opts *opts,
                                      int *count);

#ifdef __cplusplus
}
#endif
#endif
