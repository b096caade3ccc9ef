/* lamina/rnn.h: recurrent layers (Elman RNN, LSTM, GRU) and their cells,
 * with PyTorch's semantics, parameter names and gate order.
 *
 * Layers. lam_nn_rnn, lam_nn_lstm and lam_nn_gru mirror torch.nn.RNN / LSTM / GRU:
 * input_size, hidden_size, and in lam_rnn_opts num_layers, no_bias,
 * batch_first, bidirectional, dropout between layers (training only) and the
 * RNN's nonlinearity. Input x is [T, B, input_size] ([B, T, input_size]
 * with batch_first) or unbatched [T, input_size]. The output sequence is
 * [T, B, D*H] ([B, T, D*H] with batch_first; [T, D*H] unbatched) with D = 2
 * when bidirectional (forward and reverse halves along the last axis, as
 * PyTorch; an LSTM with proj_size P has P in place of H in the output and
 * in h0 / h_n). Final states h_n (and the LSTM's c_n) are [num_layers*D, B, H]
 * ([num_layers*D, H] unbatched) whatever batch_first is, ordered layer by
 * layer, forward direction first. Initial states have that shape too; NULL
 * means zeros.
 *
 * Parameters follow PyTorch's state_dict, so weights load by key: for layer
 * k and direction suffix "" or "_reverse", weight_ih_l<k><sfx> [G*H, in],
 * weight_hh_l<k><sfx> [G*H, H], bias_ih_l<k><sfx> [G*H] and
 * bias_hh_l<k><sfx> [G*H] (no biases with opts.no_bias), with G = 1 (RNN),
 * 4 (LSTM gates i, f, g, o) or 3 (GRU gates r, z, n); `in` is input_size for
 * layer 0 and D*H above. GRU computes n = tanh(W_in x + b_in + r * (W_hn h
 * + b_hn)) as PyTorch. Every weight and bias starts as PyTorch's
 * U(-1/sqrt(H), 1/sqrt(H)) unless opts give another lam_init.
 *
 * Variable lengths. A `lengths` argument is NULL (every step valid), an i32
 * [B] tensor of sequence lengths (each 1..T; read back to the host once,
 * as PyTorch wants its lengths on the CPU), or a u8 step mask shaped like x's
 * two leading axes ([T, B], [B, T] with batch_first; nonzero = valid).
 * Semantics are PyTorch's packed sequences (pack_padded_sequence with
 * enforce_sorted=False, then pad_packed_sequence with total_length=T):
 * outputs past a sequence's length are 0, its final state is the state at
 * its last valid step, and the reverse direction starts at each sequence's
 * own last valid step. A mask with holes generalises this: a masked step
 * outputs 0 and carries the state over unchanged.
 *
 * As a layer. lam_layer_apply returns the output sequence only. Initial
 * states and lengths come from the aux context of lam_apply_opts under
 * "h0", "c0" and "lengths" (or "mask"), so a recurrent layer works inside
 * lam_nn_sequential. The final states are recorded as summaries "h_n" and
 * (LSTM) "c_n" when opts->summaries is set (read them with
 * lam_summaries_find; with several recurrent layers in one model each adds
 * its own entries in apply order). The functional forms below return the
 * final states directly and are the way to get them inside a loss.
 *
 * Speed. Per direction, the input projection of all T steps is one GEMM;
 * each step is one GEMM (h @ W_hh^T) plus one fused gate kernel that also
 * adds the biases; the whole sequence records a single autodiff node whose
 * backward runs through time on the device (one fused kernel plus one GEMM
 * per step; the bias gradients are summed inside those kernels; dW_hh is one
 * GEMM over all steps). bench/rnn prints LSTM timings beside PyTorch's.
 * Memory: the forward keeps every step's gates and states (6 T B H
 * elements per direction for an LSTM, 5 for a GRU, 1 for an RNN, plus the
 * output) whether or not gradients are recorded. Parameters and inputs
 * are f32 or f64 (not f16). */
#ifndef LAMINA_RNN_H
#define LAMINA_RNN_H

#include "lamina/export.h"

#include <stdbool.h>

#include "lamina/init.h"
#include "lamina/layer.h"
#include "lamina/options.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lam_rnn_nonlinearity { LAM_RNN_TANH = 0, LAM_RNN_RELU = 1 } lam_rnn_nonlinearity;

/* Options follow lamina/options.h: NULL, a zeroed struct and the defaults
 * function mean the same. */
typedef struct lam_rnn_opts {
  int num_layers;                    /* stacked layers, >= 1; 0: 1 */
  bool no_bias;                      /* no bias_ih / bias_hh; default false: biases */
  bool batch_first;                  /* x and output are [B, T, .]; default false */
  bool bidirectional;                /* default false */
  double dropout;                    /* on every layer's output but the last, in
                                        training (needs an rng key); default 0 */
  lam_rnn_nonlinearity nonlinearity; /* lam_nn_rnn only; default tanh */
  lam_init weight_init;              /* zeroed (default): U(-1/sqrt(H), 1/sqrt(H)) */
  lam_init bias_init;                /* zeroed (default): U(-1/sqrt(H), 1/sqrt(H)) */
  /* lam_nn_lstm only: torch.nn.LSTM's proj_size P, 0 (default) or in
   * [1, hidden_size). h_t = W_hr (o_t * tanh(c_t)) with a parameter
   * weight_hr_l<k><sfx> [P, H] (after the biases in the state_dict); h0,
   * h_n and each direction's output are P wide, c0 / c_n stay H wide,
   * weight_hh is [4H, P] and layers above the first take D*P inputs.
   * Runs as a per-step loop of ops rather than the fused scan (slower). */
  int64_t proj_size;
} lam_rnn_opts;
/* Returns PyTorch's defaults (one layer, bias, time-major, unidirectional). */
LAM_API lam_rnn_opts lam_rnn_defaults(void);

/* Return a new layer, or NULL with a message for sizes < 1, num_layers < 1,
 * dropout outside [0, 1), an unknown nonlinearity or a bad init. opts NULL
 * means lam_rnn_defaults(). */
LAM_API lam_layer *lam_nn_rnn(int64_t input_size, int64_t hidden_size, const lam_rnn_opts *opts);
LAM_API lam_layer *lam_nn_lstm(int64_t input_size, int64_t hidden_size, const lam_rnn_opts *opts);
LAM_API lam_layer *lam_nn_gru(int64_t input_size, int64_t hidden_size, const lam_rnn_opts *opts);

/* Functional forms: run `layer` (made by the matching constructor) with
 * `params` (its params tree, e.g. lam_vars_params) on x. h0 / c0 (NULL for
 * zeros) and lengths are as described at the top; opts may be NULL
 * (evaluation). Stores new references in *out (the output sequence), *h_n and
 * *c_n; any of these may be NULL when not wanted. Everything is
 * differentiable (x, h0, c0 and every parameter). Returns LAM_OK, or an error
 * with a message and NULL in the outputs: LAM_ERR_NULL, LAM_ERR_SHAPE (x,
 * h0, c0, lengths or a parameter of the wrong shape), LAM_ERR_DTYPE,
 * LAM_ERR_INVALID_ARGUMENT (a layer of another kind, a length outside 1..T,
 * lengths for an unbatched input, dropout in training without an rng key),
 * LAM_ERR_NOT_FOUND (a missing parameter). */
LAM_API lam_status lam_nn_rnn_apply(lam_layer *layer, lam_ptree *params, lam_tensor *x, lam_tensor *h0,
                           lam_tensor *lengths, const lam_apply_opts *opts, lam_tensor **out,
                           lam_tensor **h_n);
LAM_API lam_status lam_nn_lstm_apply(lam_layer *layer, lam_ptree *params, lam_tensor *x, lam_tensor *h0,
                            lam_tensor *c0, lam_tensor *lengths, const lam_apply_opts *opts,
                            lam_tensor **out, lam_tensor **h_n, lam_tensor **c_n);
LAM_API lam_status lam_nn_gru_apply(lam_layer *layer, lam_ptree *params, lam_tensor *x, lam_tensor *h0,
                           lam_tensor *lengths, const lam_apply_opts *opts, lam_tensor **out,
                           lam_tensor **h_n);

/* ---- cells: one time step, for user loops ------------------------------- */

typedef struct lam_rnn_cell_opts {
  bool no_bias;                      /* no bias_ih / bias_hh; default false: biases */
  lam_rnn_nonlinearity nonlinearity; /* lam_nn_rnn_cell only; default tanh */
  lam_init weight_init;              /* zeroed (default): U(-1/sqrt(H), 1/sqrt(H)) */
  lam_init bias_init;
} lam_rnn_cell_opts;
LAM_API lam_rnn_cell_opts lam_rnn_cell_defaults(void);

/* torch.nn.RNNCell / LSTMCell / GRUCell: params weight_ih [G*H, in],
 * weight_hh [G*H, H], bias_ih [G*H], bias_hh [G*H], same gate order and init
 * as the layers. Return a new layer or NULL with a message. As a layer, apply
 * maps x [B, in] (or [in]) to the new hidden state [B, H] (or [H]), taking
 * the previous states from aux "h0" / "c0" (zeros when absent) and recording
 * "h_n" / "c_n" summaries like the sequence layers. */
LAM_API lam_layer *lam_nn_rnn_cell(int64_t input_size, int64_t hidden_size, const lam_rnn_cell_opts *opts);
LAM_API lam_layer *lam_nn_lstm_cell(int64_t input_size, int64_t hidden_size, const lam_rnn_cell_opts *opts);
LAM_API lam_layer *lam_nn_gru_cell(int64_t input_size, int64_t hidden_size, const lam_rnn_cell_opts *opts);

/* One step: x [B, in] or [in]; h, c [B, H] or [H] (NULL: zeros). Stores the
 * new states (new references) in *h_out and *c_out (c_out may be NULL).
 * Differentiable; each call is one GEMM for the input, one for the hidden
 * state and one fused gate kernel. Returns LAM_OK or an error with a message
 * (as the sequence forms). */
LAM_API lam_status lam_nn_rnn_cell_apply(lam_layer *cell, lam_ptree *params, lam_tensor *x, lam_tensor *h,
                                lam_tensor **h_out);
LAM_API lam_status lam_nn_lstm_cell_apply(lam_layer *cell, lam_ptree *params, lam_tensor *x, lam_tensor *h,
                                 lam_tensor *c, lam_tensor **h_out, lam_tensor **c_out);
LAM_API lam_status lam_nn_gru_cell_apply(lam_layer *cell, lam_ptree *params, lam_tensor *x, lam_tensor *h,
                                lam_tensor **h_out);

#ifdef __cplusplus
}
#endif
#endif
