/* lamina/attention.h: scaled dot-product attention, multi-head attention
 * with grouped-query attention and a KV cache, and positional encodings
 * (RoPE, sinusoidal, ALiBi).
 *
 * Layout is PyTorch's: attention ops take [batch, heads, seq, head_dim]
 * tensors; the multi-head attention layer takes [batch, seq, embed_dim].
 * Masks follow two conventions, each as its source library: a key padding
 * mask (Kaun's and Hugging Face's `attention_mask`, [batch, seq_k]) keeps
 * keys where it is nonzero; a boolean `mask` (PyTorch's bool attn_mask)
 * keeps entries where it is nonzero; a float `mask` is added to the scores.
 * Rows whose keys are all masked give zeros (never NaN), and their
 * gradients are zero. Functions return a new tensor (or layer) or NULL with
 * a message in lam_last_error(); float ops are differentiable. f32 and f64.
 * Options follow lamina/options.h: NULL, a zeroed struct and the defaults
 * function mean the same. */
#ifndef LAMINA_ATTENTION_H
#define LAMINA_ATTENTION_H

#include "lamina/export.h"

#include <stdbool.h>

#include "lamina/init.h"
#include "lamina/layer.h"
#include "lamina/options.h"
#include "lamina/rng.h"
#include "lamina/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- scaled dot-product attention ---------------------------------------- */

typedef enum lam_attention_impl {
  LAM_ATTENTION_AUTO = 0, /* the fused kernel where it applies, else the unfused ops */
  LAM_ATTENTION_FUSED,    /* the fused kernel (an error where it does not apply) */
  LAM_ATTENTION_UNFUSED   /* matmul + softmax + matmul from lamina ops (reference, benchmarks) */
} lam_attention_impl;

/* Largest head_dim (and value head dim) of the fused kernel; larger heads
 * use the unfused path under LAM_ATTENTION_AUTO. */
#define LAM_ATTENTION_FUSED_MAX_HEAD_DIM 256

/* Options of lam_scaled_dot_product_attention; a zeroed struct (or NULL)
 * gives the defaults, as does lam_attention_defaults(). */
typedef struct lam_attention_opts {
  double scale;       /* multiplies q.k; 0: 1/sqrt(head_dim) */
  bool causal;        /* query i attends to keys j <= i + q_offset */
  int64_t q_offset;   /* position of query row 0 among the keys: 0 is PyTorch's
                         top-left causal alignment; seq_k - seq_q aligns the
                         last query with the last key (a KV cache) */
  /* [batch, seq_k] u8 or i32: key j of batch b takes part where nonzero
   * (Kaun / Hugging Face attention_mask). NULL: none. */
  lam_tensor *key_padding_mask;
  /* Broadcastable to [batch, heads, seq_q, seq_k] (right-aligned, rank <= 4):
   * u8 keeps entries where nonzero (PyTorch's bool attn_mask); a float
   * tensor of q's dtype is added to the scaled scores (-inf masks) and gets
   * a gradient when it is being differentiated. NULL: none. */
  lam_tensor *mask;
  bool alibi;         /* add -slope_h * |i + q_offset - j|, slope_h = 2^(-8 (h+1) / heads) */
  double dropout;     /* attention-weight dropout probability in [0, 1); 0: off */
  lam_rng_key dropout_key; /* Philox key: the kept weights are exactly
                              lam_random_bernoulli(dropout_key, 1 - dropout,
                              [batch, heads, seq_q, seq_k]) != 0, scaled by 1 / (1 - dropout) */
  lam_attention_impl impl;
} lam_attention_opts;

/* Returns the defaults (every field zero: scale 1/sqrt(head_dim), no mask). */
LAM_API lam_attention_opts lam_attention_defaults(void);

/* softmax(q k^T * scale + masks) v with q [batch, heads, seq_q, head_dim],
 * k [batch, kv_heads, seq_k, head_dim] and v [batch, kv_heads, seq_k,
 * v_dim] (rank 3 inputs drop the batch axis). kv_heads must divide heads:
 * query head h reads kv head h / (heads / kv_heads) (grouped-query
 * attention) without copying k or v. Returns [batch, heads, seq_q, v_dim].
 *
 * The fused kernel walks the keys in tiles with an online softmax, so the
 * forward pass never stores the seq_q x seq_k weights (memory linear in the
 * sequence); the backward pass recomputes them from a saved log-sum-exp,
 * also tile by tile. Dropout draws its mask inside the kernel from
 * opts->dropout_key. Differentiable in q, k, v and a float mask. */
LAM_API lam_tensor *lam_scaled_dot_product_attention(lam_tensor *q, lam_tensor *k, lam_tensor *v,
                                             const lam_attention_opts *opts);

/* ---- rotary position embedding (RoPE) ------------------------------------ */

typedef struct lam_rope_opts {
  double theta;      /* base of the frequencies theta^(-2k/dims); 0: 10000 */
  int seq_axis;      /* axis of the positions (not the last); 0 (default): -2.
                        So 0 never names axis 0 (the batch of a rank > 2
                        tensor; on a rank-2 one, -2 is axis 0 anyway): name
                        axis 0 of a rank-n tensor by its negative index -n */
  int64_t offset;    /* position of the first element along seq_axis (KV cache) */
  bool traditional;  /* rotate interleaved pairs (x[2k], x[2k+1]) as GPT-J and
                        MLX's traditional=True; default false: the halves
                        (x[k], x[k + dims/2]) as GPT-NeoX, Llama and Hugging Face */
  int64_t dims;      /* rotate the first `dims` features of the last axis (even),
                        pass the rest through; 0: all */
  double scale;      /* positions are multiplied by scale (linear RoPE scaling);
                        0: 1; LAM_ZERO: 0 */
} lam_rope_opts;

/* Returns the defaults: theta 10000, seq_axis -2, offset 0, split-half
 * layout, all dims, scale 1. */
LAM_API lam_rope_opts lam_rope_defaults(void);

/* Rotates feature pairs of x (rank >= 2; the last axis holds the features)
 * by angle (offset + p) * scale * theta^(-2k/dims) at position p along
 * seq_axis. The cos/sin table is computed on the host in double precision.
 * opts NULL: defaults. Differentiable (the backward rotates by -angle). */
LAM_API lam_tensor *lam_rope(lam_tensor *x, const lam_rope_opts *opts);

/* RoPE as a layer (MLX's nn.RoPE): applies lam_rope with opts to its input
 * (no parameters). dims is the number of rotated features (0: all). */
LAM_API lam_layer *lam_nn_rope(int64_t dims, const lam_rope_opts *opts);

/* ---- sinusoidal positional encoding (MLX SinusoidalPositionalEncoding) --- */

typedef struct lam_sinusoidal_opts {
  double min_freq;   /* > 0; 0: 0.0001 */
  double max_freq;   /* > 0; 0: 1 */
  double scale;      /* 0: sqrt(2 / dims) (left 0 by the defaults function) */
  bool cos_first;    /* [cos, sin] instead of [sin, cos] */
  bool full_turns;   /* multiply the frequencies by 2 pi */
} lam_sinusoidal_opts;

LAM_API lam_sinusoidal_opts lam_sinusoidal_defaults(void);

/* Encodes float positions x (any shape) into [..., dims] (dims even, >= 4):
 * with frequencies f_k = exp(log(min_freq) + (1 - k / (dims/2 - 1)) *
 * (log(max_freq) - log(min_freq))), k < dims/2, returns
 * scale * concat(sin(x f), cos(x f)) (cos first when asked). */
LAM_API lam_tensor *lam_sinusoidal_encoding(lam_tensor *x, int64_t dims, const lam_sinusoidal_opts *opts);
/* The encoding as a layer (no parameters). */
LAM_API lam_layer *lam_nn_sinusoidal_encoding(int64_t dims, const lam_sinusoidal_opts *opts);

/* ---- ALiBi ------------------------------------------------------------------ */

/* Returns the [num_heads] slopes 2^(-8 i / num_heads), i = 1..num_heads (MLX). */
LAM_API lam_tensor *lam_alibi_slopes(lam_ctx *ctx, lam_dtype dtype, int64_t num_heads);
/* Returns the [1, num_heads, seq_q, seq_k] bias -slope_h * |i + offset - j|
 * (MLX ALiBi.create_alibi_matrix). The fused attention computes the same
 * bias in the kernel with lam_attention_opts.alibi, without this tensor. */
LAM_API lam_tensor *lam_alibi_bias(lam_ctx *ctx, lam_dtype dtype, int64_t num_heads, int64_t seq_q,
                           int64_t seq_k, int64_t offset);
typedef struct lam_alibi_opts {
  int64_t offset; /* position of query row 0 among the keys; default 0 */
} lam_alibi_opts;
/* Returns offset 0. */
LAM_API lam_alibi_opts lam_alibi_defaults(void);

/* ALiBi as a layer (MLX nn.ALiBi): adds lam_alibi_bias to attention scores
 * [batch, heads, seq_q, seq_k] with opts->offset (no parameters). */
LAM_API lam_layer *lam_nn_alibi(const lam_alibi_opts *opts);

/* ---- KV cache ------------------------------------------------------------------ */

/* Keys and values of past positions for incremental decoding, one cache per
 * attention layer. Storage grows geometrically; appending is O(new rows).
 * The cache is for inference: gradients do not flow into cached entries. */
typedef struct lam_kv_cache lam_kv_cache;

/* Returns a new empty cache (NULL if out of host memory). */
LAM_API lam_kv_cache *lam_kv_cache_create(void);
LAM_API void lam_kv_cache_free(lam_kv_cache *cache);
/* Forgets every entry (keeps the storage). */
LAM_API void lam_kv_cache_reset(lam_kv_cache *cache);
/* Number of cached positions (0 for NULL). */
LAM_API int64_t lam_kv_cache_length(const lam_kv_cache *cache);
/* Appends k [batch, kv_heads, n, head_dim] and v [batch, kv_heads, n,
 * v_dim] (same batch, heads, dims and dtype as earlier appends). Returns
 * LAM_OK or the error (nothing appended). */
LAM_API lam_status lam_kv_cache_append(lam_kv_cache *cache, lam_tensor *k, lam_tensor *v);
/* Returns contiguous copies of the cached keys / values
 * [batch, kv_heads, length, dim] (NULL with a message when empty). */
LAM_API lam_tensor *lam_kv_cache_keys(const lam_kv_cache *cache);
LAM_API lam_tensor *lam_kv_cache_values(const lam_kv_cache *cache);
/* Attention of q [batch, heads, n, head_dim] against every cached key and
 * value (append the new keys first): as lam_scaled_dot_product_attention
 * on the cached tensors, reading them in place. opts->q_offset is usually
 * length - n. */
LAM_API lam_tensor *lam_kv_cache_attention(const lam_kv_cache *cache, lam_tensor *q,
                                   const lam_attention_opts *opts);

/* ---- multi-head attention layer ---------------------------------------------- */

/* The aux-context name of the attention mask read by lam_nn_multi_head_attention:
 * [batch, seq_k] (u8 / i32, nonzero keeps: a key padding mask) or any other
 * rank (a `mask` as in lam_attention_opts: u8 keeps, float is added). */
#define LAM_ATTENTION_MASK_KEY "attention_mask"

typedef struct lam_multi_head_attention_opts {
  int64_t num_kv_heads;      /* 0: num_heads; fewer: grouped-query attention */
  int64_t head_dim;          /* 0: embed_dim / num_heads */
  bool is_causal;
  bool rope;                 /* rotate q and k (split-half layout) before attention */
  double rope_theta;         /* 0: 10000 */
  double dropout;            /* attention dropout in training (needs an rng key); 0: none */
  bool no_bias;              /* no biases on the four projections (MLX and Kaun
                                have none); default false: biases, as PyTorch */
  int64_t query_input_dims;  /* 0: embed_dim (MLX) */
  int64_t key_input_dims;    /* 0: embed_dim */
  int64_t value_input_dims;  /* 0: key_input_dims */
  int64_t value_dims;        /* total value width (heads * v_head_dim); 0: heads * head_dim */
  int64_t output_dims;       /* 0: embed_dim */
  lam_init weight_init;      /* default glorot_uniform */
  lam_init bias_init;        /* default zeros */
  /* torch.nn.MultiheadAttention's add_bias_kv: parameters "bias_k" [1, 1,
   * kv_heads * head_dim] and "bias_v" [1, 1, value_dims / (heads / kv_heads)]
   * ([1, 1, embed_dim] in torch's case) appended to the projected keys and
   * values as one more position; a mask gets a kept column for it. Drawn
   * from weight_init (torch: xavier_normal_). Default false. */
  bool add_bias_kv;
  /* add_zero_attn: a zero key and value appended per head after the
   * projections (after bias_kv), with a kept mask column. Default false.
   * Neither option works with is_causal, rope or the KV cache (an error). */
  bool add_zero_attn;
} lam_multi_head_attention_opts;

/* Returns the defaults listed above (rope_theta 10000, with biases). */
LAM_API lam_multi_head_attention_opts lam_multi_head_attention_defaults(void);

/* Multi-head attention (Kaun's multi_head_attention with MLX's options).
 * lam_layer_apply runs self-attention on x [batch, seq, query_input_dims]
 * and returns [batch, seq, output_dims]; the aux context may hold
 * LAM_ATTENTION_MASK_KEY. Parameters as Hugging Face names them:
 * q_proj.weight [heads * head_dim, query_input_dims], k_proj.weight
 * [kv_heads * head_dim, key_input_dims], v_proj.weight [kv_heads * v_head_dim,
 * value_input_dims], out_proj.weight [output_dims, value_dims], and .bias
 * [rows] of each unless opts->no_bias (plus bias_k / bias_v with
 * add_bias_kv). A torch.nn.MultiheadAttention state_dict (packed
 * in_proj_weight / in_proj_bias) loads with lam_vars_load and a split
 * transform (docs/porting-from-pytorch.md). embed_dim must divide by num_heads (unless
 * head_dim is given) and num_heads by num_kv_heads; otherwise NULL with a
 * message. */
LAM_API lam_layer *lam_nn_multi_head_attention(int64_t embed_dim, int64_t num_heads,
                                    const lam_multi_head_attention_opts *opts);

/* Cross-attention (or any query/key/value triple) with a multi-head
 * attention layer's params: query [batch, seq_q, query_input_dims], key
 * [batch, seq_k, key_input_dims], value [batch, seq_k, value_input_dims]
 * (value NULL: key). opts may be NULL. */
LAM_API lam_status lam_nn_multi_head_attention_apply(lam_layer *mha, lam_ptree *params, lam_tensor *query, lam_tensor *key,
                           lam_tensor *value, const lam_apply_opts *opts, lam_tensor **out);

/* Incremental self-attention: x [batch, n, dims] holds the next n
 * positions; their keys and values are appended to `cache` and the queries
 * attend to everything cached (causally when the layer is causal; RoPE at
 * positions length .. length + n - 1). Feeding a sequence in pieces gives
 * the same outputs as one call on the whole sequence. */
LAM_API lam_status lam_nn_multi_head_attention_apply_cached(lam_layer *mha, lam_ptree *params, lam_tensor *x,
                                  lam_kv_cache *cache, const lam_apply_opts *opts,
                                  lam_tensor **out);

#ifdef __cplusplus
}
#endif
#endif
