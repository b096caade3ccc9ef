/* lamina/models_text.h: the text half of the model zoo: a BERT-family
 * encoder and a GPT-2-style decoder whose parameter names are Hugging Face's
 * own (BertModel and GPT2LMHeadModel state_dict keys), so their checkpoints
 * load strictly with lam_ptree_load_into and no renaming; plus the sentence
 * embedding helpers (mean pooling with the attention mask, L2
 * normalisation) and GPT-2 generation (greedy, top-k, temperature) from a
 * Philox key.
 *
 * The models are layers (lam_layer): lam_layer_init makes random weights
 * (normal(0.02) as Hugging Face's _init_weights, zero biases, unit layer
 * norms), lam_ptree_load_into replaces them with a checkpoint's. Their input
 * is i32 token ids [batch, seq]. Configs follow the options rule
 * (lamina/options.h): NULL, a zeroed struct and the defaults function mean
 * the same. Constructors return NULL with a message naming the constructor
 * for a bad config. Dropout (the configs' *_dropout_prob / *_pdrop rates)
 * acts only in training (lam_apply_opts.training, which then needs
 * lam_apply_opts.rng), keyed by the model's key folded with Hugging Face's
 * module path of each dropout; its rates default to 0 here, where Hugging
 * Face's configs default to 0.1 (set them to 0.1 to train as transformers
 * does; evaluation is the same either way). */
#ifndef LAMINA_MODELS_TEXT_H
#define LAMINA_MODELS_TEXT_H

#include "lamina/export.h"

#include <stdbool.h>
#include <stdint.h>

#include "lamina/attention.h"
#include "lamina/layer.h"
#include "lamina/options.h"
#include "lamina/rng.h"
#include "lamina/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- BERT ------------------------------------------------------------------ */

/* The aux-context name of BERT's optional token type ids ([batch, seq] i32;
 * absent: zeros). The padding mask is LAM_ATTENTION_MASK_KEY ([batch, seq]
 * u8 or i32, nonzero keeps), Hugging Face's attention_mask. */
#define LAM_MODELS_TOKEN_TYPE_IDS_KEY "token_type_ids"

/* BertConfig's fields. Zeros are Hugging Face BertConfig()'s defaults
 * (bert-base-uncased): vocab 30522, hidden 768, 12 layers, 12 heads,
 * intermediate 3072, 512 positions, 2 token types, eps 1e-12. (MiniLM-L6,
 * all-MiniLM-L6-v2: hidden 384, 6 layers, 12 heads, intermediate 1536.) */
typedef struct lam_models_bert_opts {
  int64_t vocab_size;
  int64_t hidden_size;
  int64_t num_hidden_layers;
  int64_t num_attention_heads;     /* must divide hidden_size */
  int64_t intermediate_size;
  int64_t max_position_embeddings; /* longest input sequence */
  int64_t type_vocab_size;
  double layer_norm_eps;           /* 0: 1e-12; LAM_ZERO: 0 */
  bool no_pooler;                  /* no pooler.dense (BertModel(add_pooling_layer=False));
                                      default false: with it, as BertModel() */
  double hidden_dropout_prob;      /* in training: dropout of the embeddings' output and of
                                      attention.output.dense / output.dense before their
                                      residual, in [0, 1); 0: none (BertConfig's default
                                      0.1 is not lamina's: the field was added later and
                                      zero keeps the old behaviour) */
  double attention_probs_dropout_prob; /* in training: dropout of the attention weights, in
                                      [0, 1); 0: none (BertConfig: 0.1) */
} lam_models_bert_opts;

/* Returns the resolved defaults listed above (with the pooler, dropout rates 0). */
LAM_API lam_models_bert_opts lam_models_bert_defaults(void);

/* BertModel: word + position (0..seq-1) + token type embeddings, LayerNorm,
 * num_hidden_layers post-LN encoder blocks (self-attention with the key
 * padding mask from the aux context, residual, LayerNorm; dense, exact erf
 * GELU, dense, residual, LayerNorm). lam_layer_apply takes i32 ids [batch,
 * seq] (seq <= max_position_embeddings) and returns the last hidden state
 * [batch, seq, hidden]. Parameters (HF names; N = 0..layers-1):
 *   embeddings.{word,position,token_type}_embeddings.weight, embeddings.LayerNorm.{weight,bias},
 *   encoder.layer.N.attention.self.{query,key,value}.{weight,bias},
 *   encoder.layer.N.attention.output.dense.{weight,bias}, encoder.layer.N.attention.output.LayerNorm.*,
 *   encoder.layer.N.intermediate.dense.*, encoder.layer.N.output.dense.*, encoder.layer.N.output.LayerNorm.*,
 *   pooler.dense.{weight,bias} (unless no_pooler).
 * A BertModel state_dict loads strictly except for the buffer
 * embeddings.position_ids (not a parameter here): drop it, or load with
 * lam_load_opts.non_strict. */
LAM_API lam_layer *lam_models_bert(const lam_models_bert_opts *opts);

/* Both outputs: the last hidden state [batch, seq, hidden] in *hidden and,
 * when pooled is not NULL, the pooler output tanh(dense(hidden[:, 0]))
 * [batch, hidden] in *pooled (an error without a pooler). Differentiable. */
LAM_API lam_status lam_models_bert_apply(lam_layer *bert, lam_ptree *params, lam_tensor *ids,
                                         const lam_apply_opts *opts, lam_tensor **hidden,
                                         lam_tensor **pooled);

/* Sentence-transformers mean pooling: sum_s hidden[b, s] * mask[b, s] /
 * max(sum_s mask[b, s], 1e-9) for hidden [batch, seq, dim] and mask [batch,
 * seq] (u8, i32 or hidden's float dtype; NULL: every position). Returns
 * [batch, dim]; differentiable in hidden. */
LAM_API lam_tensor *lam_models_mean_pool(lam_tensor *hidden, lam_tensor *mask);
/* x / max(||x||_2, 1e-12) along the last axis (torch.nn.functional.normalize). */
LAM_API lam_tensor *lam_models_l2_normalize(lam_tensor *x);

/* ---- GPT-2 ------------------------------------------------------------------- */

/* GPT2Config's fields. Zeros are GPT2Config()'s defaults (gpt2, 124M):
 * vocab 50257, 1024 positions, n_embd 768, 12 layers, 12 heads, n_inner
 * 4 * n_embd, layer_norm_epsilon 1e-5. */
typedef struct lam_models_gpt2_opts {
  int64_t vocab_size;
  int64_t n_positions;  /* longest context (prompt + generated tokens) */
  int64_t n_embd;
  int64_t n_layer;
  int64_t n_head;       /* must divide n_embd */
  int64_t n_inner;      /* 0: 4 * n_embd */
  double layer_norm_epsilon; /* 0: 1e-5; LAM_ZERO: 0 */
  double embd_pdrop;    /* in training: dropout of wte + wpe, in [0, 1); 0: none (GPT2Config's
                           default 0.1 is not lamina's: zero keeps the older behaviour) */
  double resid_pdrop;   /* in training: dropout of attn.c_proj's and mlp.c_proj's outputs
                           before their residual; 0: none (GPT2Config: 0.1) */
  double attn_pdrop;    /* in training: dropout of the attention weights; 0: none
                           (GPT2Config: 0.1) */
} lam_models_gpt2_opts;

/* Returns the resolved defaults listed above (n_inner resolved to 3072, dropout rates 0). */
LAM_API lam_models_gpt2_opts lam_models_gpt2_defaults(void);

/* GPT2LMHeadModel: token + position embeddings, n_layer pre-LN blocks
 * (ln_1, causal self-attention with fused q/k/v, residual; ln_2, MLP with
 * gelu_tanh ("gelu_new"), residual), ln_f, and the LM head tied to the token
 * embedding (logits = h @ wte^T; no lm_head parameter). lam_layer_apply takes
 * i32 ids [batch, seq] and returns logits [batch, seq, vocab]; an aux
 * LAM_ATTENTION_MASK_KEY [batch, seq] masks padded keys (positions stay
 * 0..seq-1). Parameters (HF names):
 *   transformer.wte.weight [vocab, n_embd], transformer.wpe.weight [n_positions, n_embd],
 *   transformer.h.N.ln_1.{weight,bias}, transformer.h.N.attn.c_attn.{weight [n_embd, 3 n_embd], bias},
 *   transformer.h.N.attn.c_proj.{weight [n_embd, n_embd], bias}, transformer.h.N.ln_2.*,
 *   transformer.h.N.mlp.c_fc.{weight [n_embd, n_inner], bias},
 *   transformer.h.N.mlp.c_proj.{weight [n_inner, n_embd], bias}, transformer.ln_f.{weight,bias}.
 * The Conv1D weights keep Hugging Face's [in, out] layout (y = x @ W + b,
 * lam_matmul without a transpose), so they load as stored. A GPT2LMHeadModel
 * state_dict loads strictly once its tied lm_head.weight (the same tensor as
 * transformer.wte.weight) and any attn.bias / attn.masked_bias buffers are
 * dropped (or with lam_load_opts.non_strict). */
LAM_API lam_layer *lam_models_gpt2(const lam_models_gpt2_opts *opts);

/* The KV caches of a GPT-2 model's layers for incremental decoding. */
typedef struct lam_models_gpt2_cache lam_models_gpt2_cache;
/* Returns an empty cache for the model (NULL with a message on bad input). */
LAM_API lam_models_gpt2_cache *lam_models_gpt2_cache_create(const lam_layer *gpt2);
LAM_API void lam_models_gpt2_cache_free(lam_models_gpt2_cache *cache);
/* Forgets every cached position. */
LAM_API void lam_models_gpt2_cache_reset(lam_models_gpt2_cache *cache);
/* Number of cached positions (0 for NULL). */
LAM_API int64_t lam_models_gpt2_cache_length(const lam_models_gpt2_cache *cache);

/* Incremental decoding: ids [batch, n] are the next n tokens (positions
 * length .. length + n - 1 of the cache); their keys and values are
 * appended and *logits receives [batch, n, vocab]. Feeding a sequence in
 * pieces gives the logits of one full lam_layer_apply. opts may be NULL;
 * an aux attention mask must cover every cached position plus the n new ones
 * ([batch, length + n]). */
LAM_API lam_status lam_models_gpt2_apply_cached(lam_layer *gpt2, lam_ptree *params, lam_tensor *ids,
                                                lam_models_gpt2_cache *cache,
                                                const lam_apply_opts *opts, lam_tensor **logits);

/* Options of lam_models_gpt2_generate (the options rule). */
typedef struct lam_models_gpt2_generate_opts {
  bool sample;        /* draw from softmax(logits / temperature) over the top_k;
                         default false: greedy (argmax, lowest index on ties) */
  double temperature; /* > 0; 0: 1 */
  int64_t top_k;      /* keep the top_k largest logits when sampling; 0: all */
  lam_rng_key key;    /* Philox key of the draws: token t of row b uses the
                         uniform of philox({t, b, 0x67656e00, 0}, key)[0] */
} lam_models_gpt2_generate_opts;
/* Returns greedy decoding, temperature 1, no top-k, key {0, 0}. */
LAM_API lam_models_gpt2_generate_opts lam_models_gpt2_generate_defaults(void);

/* Continues the i32 prompt [batch, seq] by max_new_tokens tokens with a
 * KV cache (the prompt in one pass, then one token at a time) and returns
 * the prompt followed by them, [batch, seq + max_new_tokens] i32, in *out.
 * seq + max_new_tokens must not exceed n_positions. opts may be NULL. */
LAM_API lam_status lam_models_gpt2_generate(lam_layer *gpt2, lam_ptree *params, lam_tensor *prompt,
                                            int64_t max_new_tokens,
                                            const lam_models_gpt2_generate_opts *opts,
                                            lam_tensor **out);

#ifdef __cplusplus
}
#endif
#endif
