/* lamina/dense.h: dense layers (linear, bilinear, identity, flatten),
 * embedding and activations as layers.
 * Constructors return a new layer or NULL with a message for bad arguments.
 * Options follow lamina/options.h: NULL, a zeroed struct and the struct's
 * defaults function mean the same, so designated initialisers name only what
 * they change. Parameter names and layouts follow PyTorch's state_dict. */
#ifndef LAMINA_DENSE_H
#define LAMINA_DENSE_H

#include "lamina/export.h"

#include <stdbool.h>

#include "lamina/elementwise.h"
#include "lamina/init.h"
#include "lamina/layer.h"
#include "lamina/options.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- linear, bilinear, identity, flatten ------------------------------ */

typedef struct lam_linear_opts {
  bool no_bias;          /* no "bias" parameter; default false: with a bias */
  lam_init weight_init;  /* zeroed (default): glorot_uniform (as Kaun); PyTorch's
                            nn.Linear draws U(+-1/sqrt(in)): lam_init_variance_scaling(
                            1.0 / 3, LAM_FAN_IN, LAM_DIST_UNIFORM) */
  lam_init bias_init;    /* zeroed (default): zeros */
} lam_linear_opts;
LAM_API lam_linear_opts lam_linear_defaults(void);

/* y = x @ weight^T + bias; x [..., in_features]; params "weight" [out, in], "bias" [out]. */
LAM_API lam_layer *lam_nn_linear(int64_t in_features, int64_t out_features, const lam_linear_opts *opts);

/* y_k = x1^T weight_k x2 + bias_k with x = concat(x1, x2) along the last axis
 * ([..., in1 + in2]; use lam_bilinear for two separate inputs).
 * Params "weight" [out, in1, in2], "bias" [out] (PyTorch's nn.Bilinear). */
LAM_API lam_layer *lam_nn_bilinear(int64_t in1_features, int64_t in2_features, int64_t out_features,
                        const lam_linear_opts *opts);
/* The bilinear map on two inputs [..., in1] and [..., in2]; bias may be NULL. */
LAM_API lam_tensor *lam_bilinear(lam_tensor *x1, lam_tensor *x2, lam_tensor *weight,
                                 lam_tensor *bias);

LAM_API lam_layer *lam_nn_identity(void);
/* Flattens axes start_axis..end_axis (PyTorch nn.Flatten defaults: 1, -1). */
LAM_API lam_layer *lam_nn_flatten(int start_axis, int end_axis);

/* ---- embedding --------------------------------------------------------- */

typedef struct lam_embedding_opts {
  bool no_scale;          /* default false: outputs are multiplied by sqrt(embed_dim)
                             (Kaun's embedding). PyTorch's nn.Embedding does not
                             scale: use .no_scale = true for it. */
  lam_init init;          /* zeroed (default): normal(0.02) */
  /* nn.Embedding's padding_idx: lookups of this row get no gradient (the
   * row stays fixed in training) and the initialiser zeroes it. Negative
   * values count from the end (-1: vocab_size - 1). Read when nonzero or
   * padding_idx_set; default: none. */
  int64_t padding_idx;
  bool padding_idx_set;   /* padding_idx holds the value even when it is 0 */
  /* nn.Embedding's max_norm: before each lookup, every row that the indices
   * name and whose norm_type-norm exceeds max_norm is rescaled IN PLACE in
   * the "weight" parameter by max_norm / (norm + 1e-7) (torch's
   * embedding_renorm_, not recorded for autodiff), and the output reads the
   * renormed rows. It costs one pass over the whole weight per apply.
   * 0 (default): no renormalisation; else finite and > 0. */
  double max_norm;
  double norm_type;       /* p of the norm for max_norm; 0: 2; > 0 or INFINITY */
} lam_embedding_opts;
/* Returns no_scale false, init normal(0.02), no padding_idx, no max_norm,
 * norm_type 2. */
LAM_API lam_embedding_opts lam_embedding_defaults(void);

/* i32 indices of any shape -> [..., embed_dim]; param "weight" [vocab, dim].
 * Negative indices count from the end and indices outside [-vocab, vocab)
 * give rows of zeros (as lam_take). vocab_size >= 1, embed_dim >= 1 and a
 * padding_idx in [-vocab_size, vocab_size); otherwise NULL with a message. */
LAM_API lam_layer *lam_nn_embedding(int64_t vocab_size, int64_t embed_dim, const lam_embedding_opts *opts);

/* ---- activations as layers ----------------------------------------------- */

/* Any unary op of lamina/elementwise.h with its parameters (leaky_relu's
 * negative_slope, elu/celu's alpha, clamp's min/max; opts NULL: defaults). */
LAM_API lam_layer *lam_nn_activation(lam_unary_op op, const lam_unary_opts *opts);
LAM_API lam_layer *lam_nn_relu(void);
LAM_API lam_layer *lam_nn_gelu(void);
LAM_API lam_layer *lam_nn_tanh(void);
LAM_API lam_layer *lam_nn_sigmoid(void);
LAM_API lam_layer *lam_nn_silu(void);
LAM_API lam_layer *lam_nn_softmax(int axis);
LAM_API lam_layer *lam_nn_log_softmax(int axis);
/* a * sigmoid(b) where a, b are the halves of x along axis (PyTorch GLU, default -1). */
LAM_API lam_layer *lam_nn_glu(int axis);
LAM_API lam_tensor *lam_glu(lam_tensor *x, int axis);
typedef struct lam_prelu_opts {
  int64_t num_parameters; /* 1 (one slope), or the channels on axis 1; 0: 1 */
  double init;            /* initial slope; 0: 0.25 (PyTorch), LAM_ZERO: 0 */
} lam_prelu_opts;
/* Returns num_parameters 1, init 0.25 (nn.PReLU's defaults). */
LAM_API lam_prelu_opts lam_prelu_defaults(void);

/* nn.PReLU: a learnable "weight" [num_parameters]. */
LAM_API lam_layer *lam_nn_prelu(const lam_prelu_opts *opts);
LAM_API lam_tensor *lam_prelu(lam_tensor *x, lam_tensor *weight);

#ifdef __cplusplus
}
#endif
#endif
