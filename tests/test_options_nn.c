/* test_options_nn.c: the options rule (lamina/options.h) for the layer and op
 * options structs of dense.h, elementwise.h (lam_unary), norm.h,
 * regularize.h, blocks.h, conv.h, attention.h and rnn.h (the layers of src/nn,
 * src/ops/unary.c, conv.c, conv_transpose.c, pool.c, upsample.c, rope.c,
 * attention.c).
 *
 * For every struct: NULL, a zeroed struct and lam_X_defaults() give
 * bit-identical results. Layers are built three ways, initialised with the
 * same key, applied to the same random input in evaluation and in training
 * (with the same rng key), and their params, state (after the training step)
 * and outputs compared byte for byte; op-only structs compare op outputs.
 * Structs covered:
 *   layers: lam_linear_opts (linear, bilinear), lam_embedding_opts,
 *     lam_unary_opts (lam_nn_activation), lam_prelu_opts, lam_dropout_opts
 *     (dropout, 2d, 3d), lam_dropblock_opts, lam_stochastic_depth_opts,
 *     lam_layer_scale_opts, lam_conv_norm_opts, lam_classifier_opts,
 *     lam_layer_norm_opts (layer norm, channel layer norm), lam_rms_norm_opts,
 *     lam_batch_norm_opts, lam_group_norm_opts, lam_instance_norm_opts,
 *     lam_conv_opts (conv1d/2d/3d), lam_conv_transpose_opts (1d/2d/3d),
 *     lam_pool_opts (max/avg 1d/2d/3d), lam_upsample_opts (1d/2d/3d),
 *     lam_rope_opts, lam_sinusoidal_opts, lam_alibi_opts,
 *     lam_multi_head_attention_opts, lam_rnn_opts (rnn, lstm, gru),
 *     lam_rnn_cell_opts (rnn, lstm, gru cells);
 *   ops: lam_unary_opts (lam_unary), lam_conv_opts (lam_conv2d,
 *     lam_conv_output_size), lam_conv_transpose_opts, lam_pool_opts,
 *     lam_upsample_opts, lam_attention_opts (lam_scaled_dot_product_attention),
 *     lam_rope_opts (lam_rope), lam_sinusoidal_opts (lam_sinusoidal_encoding).
 * Also: documented values returned by the defaults functions, LAM_ZERO as a
 * real zero where a field takes it, and bad options (NaN or negative rates,
 * negative eps, ...) failing with a message naming the public constructor. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* ---- helpers ----------------------------------------------------------------- */

static void *host_bytes(lam_tensor *t) {
  size_t nb = lam_tensor_nbytes(t);
  void *p = malloc(nb ? nb : 1);
  cr_assert(p);
  cr_assert_eq(lam_tensor_to_host(t, p, nb), LAM_OK, "%s", lam_last_error());
  return p;
}

/* Same dtype, shape and bytes. */
static void assert_same_tensor(lam_tensor *a, lam_tensor *b, const char *what) {
  cr_assert(a && b, "%s: missing tensor", what);
  cr_assert_eq(lam_tensor_dtype(a), lam_tensor_dtype(b), "%s: dtype", what);
  cr_assert(lam_tensor_same_shape(a, b), "%s: shape", what);
  void *pa = host_bytes(a), *pb = host_bytes(b);
  cr_assert_eq(memcmp(pa, pb, lam_tensor_nbytes(a)), 0, "%s: values differ", what);
  free(pa);
  free(pb);
}

/* Same leaves (paths in order) with the same bytes. */
static void assert_same_tree(const lam_ptree *a, const lam_ptree *b, const char *what) {
  cr_assert_eq(lam_ptree_leaf_count(a), lam_ptree_leaf_count(b), "%s: leaf count", what);
  for (int i = 0; i < lam_ptree_leaf_count(a); i++) {
    const char *pa, *pb;
    lam_tensor *ta, *tb;
    cr_assert_eq(lam_ptree_leaf(a, i, &pa, &ta), LAM_OK);
    cr_assert_eq(lam_ptree_leaf(b, i, &pb, &tb), LAM_OK);
    cr_assert_str_eq(pa, pb, "%s: leaf %d", what, i);
    char w[160];
    snprintf(w, sizeof w, "%s: %s", what, pa);
    assert_same_tensor(ta, tb, w);
  }
}

/* The input of a case: uniform floats, or i32 indices in [0, 7). */
static lam_tensor *make_input(lam_ctx *ctx, tu_rng *r, int ndim, const int64_t *shape, int indices) {
  if (!indices) return tu_rand_f32(ctx, r, ndim, shape, -2, 2);
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  int32_t *v = malloc((size_t)n * sizeof *v);
  for (int64_t i = 0; i < n; i++) v[i] = (int32_t)tu_randint(r, 0, 7);
  lam_tensor *t = lam_tensor_from_host(ctx, LAM_I32, ndim, shape, v);
  free(v);
  return t;
}

/* How a case's options are passed: NULL, a zeroed struct, the defaults. */
enum { BY_NULL, BY_ZERO, BY_DEFAULTS };

/* Defines `static lam_layer *fname(int how)` building `call`, in which `o`
 * is NULL, a pointer to (T){0} or to DEF(). */
#define MAKE(fname, T, DEF, call)                                                                   \
  static lam_layer *fname(int how) {                                                              \
    T zero = {0};                                                                                  \
    T def = DEF();                                                                                 \
    const T *o = how == BY_NULL ? NULL : how == BY_ZERO ? &zero : &def;                            \
    return call;                                                                                   \
  }

typedef lam_layer *(*make_fn)(int how);

typedef struct layer_case {
  const char *name;
  make_fn make;
  int ndim;
  int64_t shape[5];
  int indices; /* input is i32 indices */
} layer_case;

/* Builds the layer three ways; init (same key), apply in evaluation and in
 * training (same rng key); compares params, state and outputs bytewise. */
static void check_layer_case(lam_ctx *ctx, const layer_case *c) {
  tu_rng r = tu_rng_make(1234);
  lam_tensor *x = make_input(ctx, &r, c->ndim, c->shape, c->indices);
  cr_assert(x, "%s: input: %s", c->name, lam_last_error());
  lam_rng_key init_key = lam_rng_key_make(7), drop_key = lam_rng_key_make(99);
  lam_apply_opts train = {.training = true, .rng = &drop_key};
  lam_vars *vars[3] = {0};
  lam_tensor *eval[3] = {0}, *tr[3] = {0};
  lam_layer *layers[3] = {0};
  for (int how = 0; how < 3; how++) {
    layers[how] = c->make(how);
    cr_assert(layers[how], "%s (way %d): %s", c->name, how, lam_last_error());
    cr_assert_eq(lam_layer_init(layers[how], ctx, init_key, LAM_F32, &vars[how]), LAM_OK,
                 "%s init: %s", c->name, lam_last_error());
    cr_assert_eq(lam_layer_apply(layers[how], vars[how], x, NULL, &eval[how]), LAM_OK,
                 "%s eval: %s", c->name, lam_last_error());
    cr_assert_eq(lam_layer_apply(layers[how], vars[how], x, &train, &tr[how]), LAM_OK,
                 "%s train: %s", c->name, lam_last_error());
  }
  char w[128];
  for (int how = 1; how < 3; how++) {
    const char *way = how == BY_ZERO ? "zeroed" : "defaults";
    cr_assert_str_eq(lam_layer_name(layers[how]), lam_layer_name(layers[0]), "%s kind", c->name);
    snprintf(w, sizeof w, "%s params, NULL vs %s", c->name, way);
    assert_same_tree(lam_vars_params(vars[0]), lam_vars_params(vars[how]), w);
    snprintf(w, sizeof w, "%s state after training, NULL vs %s", c->name, way);
    assert_same_tree(lam_vars_state(vars[0]), lam_vars_state(vars[how]), w);
    snprintf(w, sizeof w, "%s eval output, NULL vs %s", c->name, way);
    assert_same_tensor(eval[0], eval[how], w);
    snprintf(w, sizeof w, "%s training output, NULL vs %s", c->name, way);
    assert_same_tensor(tr[0], tr[how], w);
  }
  for (int how = 0; how < 3; how++) {
    lam_tensor_free(eval[how]);
    lam_tensor_free(tr[how]);
    lam_vars_free(vars[how]);
    lam_layer_free(layers[how]);
  }
  lam_tensor_free(x);
}

/* ---- layers: dense, activations, regularization, blocks ---------------------- */

MAKE(mk_linear, lam_linear_opts, lam_linear_defaults, lam_nn_linear(5, 3, o))
MAKE(mk_bilinear, lam_linear_opts, lam_linear_defaults, lam_nn_bilinear(3, 2, 4, o))
MAKE(mk_embedding, lam_embedding_opts, lam_embedding_defaults, lam_nn_embedding(7, 4, o))
MAKE(mk_leaky, lam_unary_opts, lam_unary_defaults, lam_nn_activation(LAM_LEAKY_RELU, o))
MAKE(mk_elu, lam_unary_opts, lam_unary_defaults, lam_nn_activation(LAM_ELU, o))
MAKE(mk_celu, lam_unary_opts, lam_unary_defaults, lam_nn_activation(LAM_CELU, o))
MAKE(mk_clamp, lam_unary_opts, lam_unary_defaults, lam_nn_activation(LAM_CLAMP, o))
MAKE(mk_prelu, lam_prelu_opts, lam_prelu_defaults, lam_nn_prelu(o))
MAKE(mk_dropout, lam_dropout_opts, lam_dropout_defaults, lam_nn_dropout(o))
MAKE(mk_dropout2d, lam_dropout_opts, lam_dropout_defaults, lam_nn_dropout2d(o))
MAKE(mk_dropout3d, lam_dropout_opts, lam_dropout_defaults, lam_nn_dropout3d(o))
MAKE(mk_dropblock, lam_dropblock_opts, lam_dropblock_defaults, lam_nn_dropblock(o))
MAKE(mk_sdepth, lam_stochastic_depth_opts, lam_stochastic_depth_defaults, lam_nn_stochastic_depth(o))
MAKE(mk_layer_scale, lam_layer_scale_opts, lam_layer_scale_defaults, lam_nn_layer_scale(5, o))
MAKE(mk_conv_norm, lam_conv_norm_opts, lam_conv_norm_defaults,
     lam_nn_conv_norm(lam_nn_conv2d(3, 4, NULL), lam_nn_batch_norm(4, NULL), lam_nn_relu(), o))
MAKE(mk_classifier, lam_classifier_opts, lam_classifier_defaults, lam_nn_classifier(4, 3, o))

Test(options_nn, dense_activation_regularize_blocks_layers) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  const layer_case cases[] = {
      {"linear", mk_linear, 2, {4, 5}, 0},
      {"bilinear", mk_bilinear, 2, {4, 5}, 0},
      {"embedding", mk_embedding, 2, {2, 3}, 1},
      {"leaky_relu", mk_leaky, 2, {3, 8}, 0},
      {"elu", mk_elu, 2, {3, 8}, 0},
      {"celu", mk_celu, 2, {3, 8}, 0},
      {"clamp", mk_clamp, 2, {3, 8}, 0},
      {"prelu", mk_prelu, 3, {2, 3, 4}, 0},
      {"dropout", mk_dropout, 2, {16, 32}, 0},
      {"dropout2d", mk_dropout2d, 4, {4, 8, 3, 3}, 0},
      {"dropout3d", mk_dropout3d, 5, {2, 8, 2, 3, 2}, 0},
      {"dropblock", mk_dropblock, 4, {2, 3, 9, 9}, 0},
      {"stochastic_depth", mk_sdepth, 3, {6, 3, 4}, 0},
      {"layer_scale", mk_layer_scale, 2, {3, 5}, 0},
      {"conv_norm", mk_conv_norm, 4, {2, 3, 6, 6}, 0},
      {"classifier", mk_classifier, 4, {2, 4, 3, 3}, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_layer_case(ctx, &cases[i]);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- layers: norms ----------------------------------------------------------- */

static const int64_t five = 5;
MAKE(mk_layer_norm, lam_layer_norm_opts, lam_layer_norm_defaults, lam_nn_layer_norm(1, &five, o))
MAKE(mk_rms_norm, lam_rms_norm_opts, lam_rms_norm_defaults, lam_nn_rms_norm(1, &five, o))
MAKE(mk_batch_norm, lam_batch_norm_opts, lam_batch_norm_defaults, lam_nn_batch_norm(3, o))
MAKE(mk_group_norm, lam_group_norm_opts, lam_group_norm_defaults, lam_nn_group_norm(2, 4, o))
MAKE(mk_instance_norm, lam_instance_norm_opts, lam_instance_norm_defaults, lam_nn_instance_norm(3, o))
MAKE(mk_channel_ln, lam_layer_norm_opts, lam_layer_norm_defaults, lam_nn_channel_layer_norm(3, o))

Test(options_nn, norm_layers) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  const layer_case cases[] = {
      {"layer_norm", mk_layer_norm, 3, {2, 3, 5}, 0},
      {"rms_norm", mk_rms_norm, 3, {2, 3, 5}, 0},
      {"batch_norm", mk_batch_norm, 3, {4, 3, 5}, 0},
      {"group_norm", mk_group_norm, 3, {2, 4, 5}, 0},
      {"instance_norm", mk_instance_norm, 3, {2, 3, 6}, 0},
      {"channel_layer_norm", mk_channel_ln, 4, {2, 3, 4, 4}, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_layer_case(ctx, &cases[i]);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- layers: convolution, pooling, upsampling -------------------------------- */

MAKE(mk_conv1d, lam_conv_opts, lam_conv_defaults, lam_nn_conv1d(3, 4, o))
MAKE(mk_conv2d, lam_conv_opts, lam_conv_defaults, lam_nn_conv2d(3, 4, o))
MAKE(mk_conv3d, lam_conv_opts, lam_conv_defaults, lam_nn_conv3d(2, 3, o))
MAKE(mk_convt1d, lam_conv_transpose_opts, lam_conv_transpose_defaults, lam_nn_conv_transpose1d(3, 4, o))
MAKE(mk_convt2d, lam_conv_transpose_opts, lam_conv_transpose_defaults, lam_nn_conv_transpose2d(3, 4, o))
MAKE(mk_convt3d, lam_conv_transpose_opts, lam_conv_transpose_defaults, lam_nn_conv_transpose3d(2, 3, o))
MAKE(mk_maxp1d, lam_pool_opts, lam_pool_defaults, lam_nn_max_pool1d(o))
MAKE(mk_maxp2d, lam_pool_opts, lam_pool_defaults, lam_nn_max_pool2d(o))
MAKE(mk_maxp3d, lam_pool_opts, lam_pool_defaults, lam_nn_max_pool3d(o))
MAKE(mk_avgp1d, lam_pool_opts, lam_pool_defaults, lam_nn_avg_pool1d(o))
MAKE(mk_avgp2d, lam_pool_opts, lam_pool_defaults, lam_nn_avg_pool2d(o))
MAKE(mk_avgp3d, lam_pool_opts, lam_pool_defaults, lam_nn_avg_pool3d(o))
MAKE(mk_ups1d, lam_upsample_opts, lam_upsample_defaults, lam_nn_upsample1d(o))
MAKE(mk_ups2d, lam_upsample_opts, lam_upsample_defaults, lam_nn_upsample2d(o))
MAKE(mk_ups3d, lam_upsample_opts, lam_upsample_defaults, lam_nn_upsample3d(o))

Test(options_nn, conv_pool_upsample_layers) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  const layer_case cases[] = {
      {"conv1d", mk_conv1d, 3, {2, 3, 8}, 0},
      {"conv2d", mk_conv2d, 4, {2, 3, 6, 5}, 0},
      {"conv3d", mk_conv3d, 5, {1, 2, 4, 4, 3}, 0},
      {"conv_transpose1d", mk_convt1d, 3, {2, 3, 5}, 0},
      {"conv_transpose2d", mk_convt2d, 4, {2, 3, 4, 3}, 0},
      {"conv_transpose3d", mk_convt3d, 5, {1, 2, 3, 3, 2}, 0},
      {"max_pool1d", mk_maxp1d, 3, {2, 3, 8}, 0},
      {"max_pool2d", mk_maxp2d, 4, {2, 3, 6, 5}, 0},
      {"max_pool3d", mk_maxp3d, 5, {1, 2, 4, 4, 4}, 0},
      {"avg_pool1d", mk_avgp1d, 3, {2, 3, 8}, 0},
      {"avg_pool2d", mk_avgp2d, 4, {2, 3, 6, 5}, 0},
      {"avg_pool3d", mk_avgp3d, 5, {1, 2, 4, 4, 4}, 0},
      {"upsample1d", mk_ups1d, 3, {2, 3, 5}, 0},
      {"upsample2d", mk_ups2d, 4, {2, 3, 4, 3}, 0},
      {"upsample3d", mk_ups3d, 5, {1, 2, 3, 2, 3}, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_layer_case(ctx, &cases[i]);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- layers: attention and positional encodings, recurrent ------------------- */

MAKE(mk_rope, lam_rope_opts, lam_rope_defaults, lam_nn_rope(0, o))
MAKE(mk_sinusoidal, lam_sinusoidal_opts, lam_sinusoidal_defaults, lam_nn_sinusoidal_encoding(8, o))
MAKE(mk_alibi, lam_alibi_opts, lam_alibi_defaults, lam_nn_alibi(o))
MAKE(mk_mha, lam_multi_head_attention_opts, lam_multi_head_attention_defaults,
     lam_nn_multi_head_attention(8, 2, o))
MAKE(mk_rnn, lam_rnn_opts, lam_rnn_defaults, lam_nn_rnn(3, 4, o))
MAKE(mk_lstm, lam_rnn_opts, lam_rnn_defaults, lam_nn_lstm(3, 4, o))
MAKE(mk_gru, lam_rnn_opts, lam_rnn_defaults, lam_nn_gru(3, 4, o))
MAKE(mk_rnn_cell, lam_rnn_cell_opts, lam_rnn_cell_defaults, lam_nn_rnn_cell(3, 4, o))
MAKE(mk_lstm_cell, lam_rnn_cell_opts, lam_rnn_cell_defaults, lam_nn_lstm_cell(3, 4, o))
MAKE(mk_gru_cell, lam_rnn_cell_opts, lam_rnn_cell_defaults, lam_nn_gru_cell(3, 4, o))

Test(options_nn, attention_and_recurrent_layers) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  const layer_case cases[] = {
      {"rope", mk_rope, 4, {2, 2, 5, 8}, 0},
      {"sinusoidal", mk_sinusoidal, 2, {2, 5}, 0},
      {"alibi", mk_alibi, 4, {2, 4, 3, 5}, 0},
      {"multi_head_attention", mk_mha, 3, {2, 4, 8}, 0},
      {"rnn", mk_rnn, 3, {5, 2, 3}, 0},
      {"lstm", mk_lstm, 3, {5, 2, 3}, 0},
      {"gru", mk_gru, 3, {5, 2, 3}, 0},
      {"rnn_cell", mk_rnn_cell, 2, {2, 3}, 0},
      {"lstm_cell", mk_lstm_cell, 2, {2, 3}, 0},
      {"gru_cell", mk_gru_cell, 2, {2, 3}, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_layer_case(ctx, &cases[i]);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- op-only uses of the structs ------------------------------------------------ */

/* Asserts the three results are the same, then frees them. */
static void assert_three(lam_tensor *y[3], const char *what) {
  char w[128];
  for (int i = 0; i < 3; i++) cr_assert(y[i], "%s (way %d): %s", what, i, lam_last_error());
  snprintf(w, sizeof w, "%s: NULL vs zeroed", what);
  assert_same_tensor(y[0], y[1], w);
  snprintf(w, sizeof w, "%s: NULL vs defaults", what);
  assert_same_tensor(y[0], y[2], w);
  for (int i = 0; i < 3; i++) lam_tensor_free(y[i]);
}

/* y[i] = call with `o` NULL, zeroed, defaults. */
#define THREE(y, T, DEF, call)                                                                      \
  do {                                                                                             \
    T zero_ = {0};                                                                                 \
    T def_ = DEF();                                                                                \
    const T *ways_[3] = {NULL, &zero_, &def_};                                                      \
    for (int w_ = 0; w_ < 3; w_++) {                                                               \
      const T *o = ways_[w_];                                                                      \
      y[w_] = call;                                                                                \
    }                                                                                              \
  } while (0)

Test(options_nn, op_structs) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  tu_rng r = tu_rng_make(5);
  lam_tensor *y[3];
  lam_tensor *x = tu_rand_f32(ctx, &r, 2, (int64_t[]){4, 9}, -3, 3);
  const lam_unary_op uops[] = {LAM_LEAKY_RELU, LAM_ELU, LAM_CELU, LAM_CLAMP, LAM_RELU};
  for (size_t i = 0; i < sizeof uops / sizeof uops[0]; i++) {
    THREE(y, lam_unary_opts, lam_unary_defaults, lam_unary(uops[i], x, o));
    assert_three(y, lam_unary_name(uops[i]));
  }
  /* conv2d / conv_transpose2d with weight and bias */
  lam_tensor *xc = tu_rand_f32(ctx, &r, 4, (int64_t[]){2, 3, 6, 5}, -1, 1);
  lam_tensor *wc = tu_rand_f32(ctx, &r, 4, (int64_t[]){4, 3, 3, 3}, -1, 1);
  lam_tensor *wt = tu_rand_f32(ctx, &r, 4, (int64_t[]){3, 4, 3, 3}, -1, 1);
  lam_tensor *bc = tu_rand_f32(ctx, &r, 1, (int64_t[]){4}, -1, 1);
  THREE(y, lam_conv_opts, lam_conv_defaults, lam_conv2d(xc, wc, bc, o));
  assert_three(y, "lam_conv2d");
  THREE(y, lam_conv_transpose_opts, lam_conv_transpose_defaults, lam_conv_transpose2d(xc, wt, bc, o));
  assert_three(y, "lam_conv_transpose2d");
  {
    int64_t outs[3][2];
    lam_conv_opts zero = {0}, def = lam_conv_defaults();
    const lam_conv_opts *ways[3] = {NULL, &zero, &def};
    for (int w = 0; w < 3; w++)
      cr_assert_eq(lam_conv_output_size(2, (int64_t[]){7, 5}, (int64_t[]){3, 2}, ways[w], outs[w]), LAM_OK);
    for (int w = 1; w < 3; w++) cr_assert(outs[w][0] == outs[0][0] && outs[w][1] == outs[0][1]);
  }
  THREE(y, lam_pool_opts, lam_pool_defaults, lam_max_pool2d(xc, o));
  assert_three(y, "lam_max_pool2d");
  THREE(y, lam_pool_opts, lam_pool_defaults, lam_avg_pool2d(xc, o));
  assert_three(y, "lam_avg_pool2d");
  THREE(y, lam_upsample_opts, lam_upsample_defaults, lam_upsample2d(xc, o));
  assert_three(y, "lam_upsample2d");
  /* attention, rope, sinusoidal */
  lam_tensor *q = tu_rand_f32(ctx, &r, 4, (int64_t[]){2, 2, 5, 8}, -1, 1);
  lam_tensor *k = tu_rand_f32(ctx, &r, 4, (int64_t[]){2, 2, 6, 8}, -1, 1);
  lam_tensor *v = tu_rand_f32(ctx, &r, 4, (int64_t[]){2, 2, 6, 4}, -1, 1);
  THREE(y, lam_attention_opts, lam_attention_defaults, lam_scaled_dot_product_attention(q, k, v, o));
  assert_three(y, "lam_scaled_dot_product_attention");
  THREE(y, lam_rope_opts, lam_rope_defaults, lam_rope(q, o));
  assert_three(y, "lam_rope");
  lam_tensor *pos = tu_rand_f32(ctx, &r, 2, (int64_t[]){3, 4}, 0, 20);
  THREE(y, lam_sinusoidal_opts, lam_sinusoidal_defaults, lam_sinusoidal_encoding(pos, 8, o));
  assert_three(y, "lam_sinusoidal_encoding");
  lam_tensor *all[] = {x, xc, wc, wt, bc, q, k, v, pos};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) lam_tensor_free(all[i]);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- documented defaults ------------------------------------------------------------- */

Test(options_nn, documented_default_values) {
  cr_assert_eq(lam_unary_defaults().negative_slope, 0.01);
  cr_assert_eq(lam_unary_defaults().alpha, 1.0);
  cr_assert(!lam_linear_defaults().no_bias);
  cr_assert_eq(lam_linear_defaults().weight_init.kind, LAM_INIT_VARIANCE_SCALING);
  cr_assert_eq(lam_linear_defaults().bias_init.kind, LAM_INIT_ZEROS);
  cr_assert(!lam_embedding_defaults().no_scale);
  cr_assert_eq(lam_embedding_defaults().init.kind, LAM_INIT_NORMAL);
  cr_assert_eq(lam_embedding_defaults().init.value, 0.02);
  cr_assert(!lam_embedding_defaults().padding_idx_set && lam_embedding_defaults().max_norm == 0 &&
            lam_embedding_defaults().norm_type == 2);
  cr_assert_eq(lam_prelu_defaults().num_parameters, 1);
  cr_assert_eq(lam_prelu_defaults().init, 0.25);
  cr_assert_eq(lam_dropout_defaults().rate, 0.5);
  lam_dropblock_opts db = lam_dropblock_defaults();
  cr_assert(db.rate == 0.1 && db.block_size == 7 && db.gamma_scale == 1.0);
  cr_assert_eq(lam_stochastic_depth_defaults().rate, 0.0);
  cr_assert_eq(lam_stochastic_depth_defaults().mode, LAM_STOCHASTIC_DEPTH_ROW);
  cr_assert_eq(lam_layer_scale_defaults().lambda, 1e-5);
  cr_assert(!lam_conv_norm_defaults().preact && !lam_conv_norm_defaults().revnorm);
  cr_assert(!lam_classifier_defaults().pool && lam_classifier_defaults().dropout == 0);
  lam_layer_norm_opts ln = lam_layer_norm_defaults();
  cr_assert(ln.eps == 1e-5 && !ln.no_affine && !ln.no_bias && !ln.activation);
  cr_assert_eq(lam_rms_norm_defaults().eps, 0.0); /* the dtype's epsilon, at apply */
  lam_batch_norm_opts bn = lam_batch_norm_defaults();
  cr_assert(bn.eps == 1e-5 && bn.momentum == 0.1 && !bn.cumulative && !bn.no_affine && !bn.no_running_stats);
  cr_assert_eq(lam_group_norm_defaults().eps, 1e-5);
  lam_instance_norm_opts in = lam_instance_norm_defaults();
  cr_assert(in.eps == 1e-5 && in.momentum == 0.1 && !in.affine && !in.track_running_stats);
  lam_conv_opts co = lam_conv_defaults();
  cr_assert(co.kernel[0] == 3 && co.stride[1] == 1 && co.dilation[2] == 1 && co.groups == 1 && !co.no_bias);
  cr_assert_eq(co.padding, LAM_PADDING_SAME);
  lam_conv_transpose_opts ct = lam_conv_transpose_defaults();
  cr_assert(ct.kernel[0] == 3 && ct.stride[0] == 1 && ct.groups == 1 && ct.padding[0] == 0);
  lam_pool_opts po = lam_pool_defaults();
  cr_assert(po.kernel[0] == 2 && po.stride[0] == 0 && po.dilation[0] == 1 && po.padding[0] == 0);
  cr_assert(lam_upsample_defaults().scale[0] == 2 && lam_upsample_defaults().mode == LAM_UPSAMPLE_NEAREST);
  cr_assert(lam_attention_defaults().scale == 0 && lam_attention_defaults().impl == LAM_ATTENTION_AUTO);
  lam_rope_opts ro = lam_rope_defaults();
  cr_assert(ro.theta == 10000 && ro.seq_axis == -2 && ro.scale == 1 && ro.dims == 0);
  cr_assert(lam_sinusoidal_defaults().min_freq == 1e-4 && lam_sinusoidal_defaults().max_freq == 1);
  cr_assert_eq(lam_alibi_defaults().offset, 0);
  lam_multi_head_attention_opts mo = lam_multi_head_attention_defaults();
  cr_assert(mo.rope_theta == 10000 && !mo.no_bias && mo.dropout == 0);
  cr_assert(!mo.add_bias_kv && !mo.add_zero_attn);
  lam_rnn_opts rn = lam_rnn_defaults();
  cr_assert(rn.num_layers == 1 && !rn.no_bias && !rn.batch_first && rn.nonlinearity == LAM_RNN_TANH);
  cr_assert_eq(rn.proj_size, 0);
  cr_assert(!lam_rnn_cell_defaults().no_bias);
}

/* Runs layer l (freed here) on x and returns the output (eval or training). */
static lam_tensor *run_layer(lam_ctx *ctx, lam_layer *l, lam_tensor *x, bool training, lam_vars **keep) {
  cr_assert(l, "%s", lam_last_error());
  lam_vars *v = NULL;
  cr_assert_eq(lam_layer_init(l, ctx, lam_rng_key_make(3), LAM_F32, &v), LAM_OK, "%s", lam_last_error());
  lam_rng_key key = lam_rng_key_make(8);
  lam_apply_opts o = {.training = training, .rng = &key};
  lam_tensor *y = NULL;
  cr_assert_eq(lam_layer_apply(l, v, x, &o, &y), LAM_OK, "%s", lam_last_error());
  if (keep) *keep = v;
  else lam_vars_free(v);
  lam_layer_free(l);
  return y;
}

/* The defaults do what they say: dropout drops about half, prelu starts at
 * 0.25, LayerScale at 1e-5, embedding scales by sqrt(dim). */
Test(options_nn, defaults_take_effect) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  int64_t n = 20000;
  lam_tensor *ones = lam_tensor_full(ctx, LAM_F32, 2, (int64_t[]){1, n}, 1.0);
  lam_tensor *y = run_layer(ctx, lam_nn_dropout(NULL), ones, true, NULL);
  float *fy = tu_read_f32(y);
  int64_t zeros = 0;
  for (int64_t i = 0; i < n; i++) {
    if (fy[i] == 0) zeros++;
    else cr_assert_eq(fy[i], 2.0f, "kept values are scaled by 1 / (1 - 0.5)");
  }
  cr_assert(fabs((double)zeros / (double)n - 0.5) < 0.02, "drop rate %g", (double)zeros / (double)n);
  free(fy);
  lam_tensor_free(y);
  lam_vars *v = NULL;
  lam_tensor_free(run_layer(ctx, lam_nn_prelu(NULL), ones, false, &v));
  lam_tensor *w = lam_ptree_get(lam_vars_params(v), "weight");
  cr_assert_eq(lam_tensor_numel(w), 1);
  double d = 0;
  cr_assert_eq(lam_tensor_item(w, &d), LAM_OK);
  cr_assert_eq(d, 0.25);
  lam_vars_free(v);
  lam_tensor *x5 = tu_rand_f32(ctx, &(tu_rng){11}, 2, (int64_t[]){2, 5}, -1, 1);
  lam_tensor_free(run_layer(ctx, lam_nn_layer_scale(5, NULL), x5, false, &v));
  float *g = tu_read_f32(lam_ptree_get(lam_vars_params(v), "gamma"));
  for (int i = 0; i < 5; i++) cr_assert_eq(g[i], 1e-5f);
  free(g);
  lam_vars_free(v);
  /* embedding: default scaled by sqrt(4) = 2 against no_scale */
  int32_t idx[3] = {0, 3, 6};
  lam_tensor *ix = lam_tensor_from_host(ctx, LAM_I32, 1, (int64_t[]){3}, idx);
  lam_tensor *ys = run_layer(ctx, lam_nn_embedding(7, 4, NULL), ix, false, NULL);
  lam_tensor *yp = run_layer(ctx, lam_nn_embedding(7, 4, &(lam_embedding_opts){.no_scale = true}), ix, false, NULL);
  float *a = tu_read_f32(ys), *b = tu_read_f32(yp);
  for (int i = 0; i < 12; i++) cr_assert_eq(a[i], 2.0f * b[i]);
  free(a);
  free(b);
  lam_tensor_free(ys);
  lam_tensor_free(yp);
  /* leaky_relu's default slope 0.01 */
  lam_tensor *neg = lam_tensor_full(ctx, LAM_F32, 1, (int64_t[]){3}, -2.0);
  lam_tensor *lr = lam_unary(LAM_LEAKY_RELU, neg, NULL), *lr2 = lam_leaky_relu(neg, 0.01);
  assert_same_tensor(lr, lr2, "leaky_relu default slope");
  lam_tensor *all[] = {ones, x5, ix, neg, lr, lr2};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) lam_tensor_free(all[i]);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- LAM_ZERO: a real zero where zero is meaningful but not the default ---------- */

Test(options_nn, lam_zero_is_a_real_zero) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  tu_rng r = tu_rng_make(17);
  lam_tensor *x = tu_rand_f32(ctx, &r, 4, (int64_t[]){4, 3, 5, 5}, -2, 2);
  /* dropout and dropblock with rate LAM_ZERO: the identity in training */
  lam_tensor *y = run_layer(ctx, lam_nn_dropout(&(lam_dropout_opts){.rate = LAM_ZERO}), x, true, NULL);
  assert_same_tensor(y, x, "dropout rate LAM_ZERO");
  lam_tensor_free(y);
  y = run_layer(ctx, lam_nn_dropout2d(&(lam_dropout_opts){.rate = LAM_ZERO}), x, true, NULL);
  assert_same_tensor(y, x, "dropout2d rate LAM_ZERO");
  lam_tensor_free(y);
  y = run_layer(ctx, lam_nn_dropblock(&(lam_dropblock_opts){.rate = LAM_ZERO}), x, true, NULL);
  assert_same_tensor(y, x, "dropblock rate LAM_ZERO");
  lam_tensor_free(y);
  y = run_layer(ctx, lam_nn_dropblock(&(lam_dropblock_opts){.gamma_scale = LAM_ZERO}), x, true, NULL);
  assert_same_tensor(y, x, "dropblock gamma_scale LAM_ZERO");
  lam_tensor_free(y);
  /* batch / instance norm with momentum LAM_ZERO: running stats unchanged */
  lam_vars *v = NULL;
  lam_tensor_free(run_layer(ctx, lam_nn_batch_norm(3, &(lam_batch_norm_opts){.momentum = LAM_ZERO}), x, true, &v));
  lam_tensor *z3 = lam_tensor_zeros(ctx, LAM_F32, 1, (int64_t[]){3});
  lam_tensor *o3 = lam_tensor_full(ctx, LAM_F32, 1, (int64_t[]){3}, 1.0);
  assert_same_tensor(lam_ptree_get(lam_vars_state(v), "running_mean"), z3, "batch norm running_mean");
  assert_same_tensor(lam_ptree_get(lam_vars_state(v), "running_var"), o3, "batch norm running_var");
  double nbt = 0;
  cr_assert_eq(lam_tensor_item(lam_ptree_get(lam_vars_state(v), "num_batches_tracked"), &nbt), LAM_OK);
  cr_assert_eq(nbt, 1.0);
  lam_vars_free(v);
  /* ... while the default momentum moves them */
  lam_tensor_free(run_layer(ctx, lam_nn_batch_norm(3, NULL), x, true, &v));
  float *rm = tu_read_f32(lam_ptree_get(lam_vars_state(v), "running_mean"));
  cr_assert(rm[0] != 0 || rm[1] != 0 || rm[2] != 0);
  free(rm);
  lam_vars_free(v);
  lam_instance_norm_opts io = {.momentum = LAM_ZERO, .track_running_stats = true};
  lam_tensor_free(run_layer(ctx, lam_nn_instance_norm(3, &io), x, true, &v));
  assert_same_tensor(lam_ptree_get(lam_vars_state(v), "running_mean"), z3, "instance norm running_mean");
  assert_same_tensor(lam_ptree_get(lam_vars_state(v), "running_var"), o3, "instance norm running_var");
  lam_vars_free(v);
  /* layer norm with eps LAM_ZERO: the functional op with eps 0 */
  int64_t five = 5;
  y = run_layer(ctx, lam_nn_layer_norm(1, &five, &(lam_layer_norm_opts){.eps = LAM_ZERO, .no_affine = true}),
                x, false, NULL);
  lam_tensor *want = lam_layer_norm(x, 1, NULL, NULL, 0.0);
  assert_same_tensor(y, want, "layer norm eps LAM_ZERO");
  lam_tensor_free(y);
  lam_tensor_free(want);
  /* RMS norm: eps 0 is the dtype's epsilon, LAM_ZERO a real 0 */
  y = run_layer(ctx, lam_nn_rms_norm(1, &five, &(lam_rms_norm_opts){.eps = LAM_ZERO, .no_affine = true}), x,
                false, NULL);
  want = lam_rms_norm(x, 1, NULL, 0.0);
  assert_same_tensor(y, want, "rms norm eps LAM_ZERO");
  lam_tensor_free(y);
  lam_tensor_free(want);
  /* prelu init LAM_ZERO: slope 0, so relu */
  y = run_layer(ctx, lam_nn_prelu(&(lam_prelu_opts){.init = LAM_ZERO}), x, false, NULL);
  want = lam_relu(x);
  assert_same_tensor(y, want, "prelu init LAM_ZERO");
  lam_tensor_free(y);
  lam_tensor_free(want);
  /* leaky_relu negative_slope LAM_ZERO: relu (the layer and the op) */
  lam_unary_opts uz = {.negative_slope = LAM_ZERO};
  y = run_layer(ctx, lam_nn_activation(LAM_LEAKY_RELU, &uz), x, false, NULL);
  want = lam_leaky_relu(x, 0.0);
  assert_same_tensor(y, want, "leaky_relu layer slope LAM_ZERO");
  lam_tensor_free(y);
  y = lam_unary(LAM_LEAKY_RELU, x, &uz);
  assert_same_tensor(y, want, "leaky_relu op slope LAM_ZERO");
  lam_tensor_free(y);
  lam_tensor_free(want);
  /* LayerScale lambda LAM_ZERO: the identity layer */
  lam_layer *id = lam_nn_layer_scale(5, &(lam_layer_scale_opts){.lambda = LAM_ZERO});
  cr_assert_str_eq(lam_layer_name(id), "identity");
  lam_layer_free(id);
  /* RoPE scale LAM_ZERO: every angle 0, the identity; seq_axis 0 means -2 */
  lam_tensor *xr = tu_rand_f32(ctx, &r, 4, (int64_t[]){2, 3, 4, 6}, -2, 2);
  y = lam_rope(xr, &(lam_rope_opts){.scale = LAM_ZERO});
  cr_assert(y, "%s", lam_last_error());
  float *fy = tu_read_f32(y), *fx = tu_read_f32(xr);
  for (int64_t i = 0; i < lam_tensor_numel(xr); i++) cr_assert_float_eq(fy[i], fx[i], 1e-6);
  free(fy);
  free(fx);
  lam_tensor_free(y);
  y = lam_rope(xr, &(lam_rope_opts){.seq_axis = 0});
  want = lam_rope(xr, &(lam_rope_opts){.seq_axis = -2});
  assert_same_tensor(y, want, "rope seq_axis 0 is -2");
  lam_tensor_free(y);
  lam_tensor_free(want);
  lam_tensor *all[] = {x, xr, z3, o3};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) lam_tensor_free(all[i]);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- bad options -------------------------------------------------------------------------- */

Test(options_nn, bad_options_name_the_constructor) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  int64_t five = 5;
  lam_error_clear();
  /* dropout family */
  tu_assert_fails(lam_nn_dropout(&(lam_dropout_opts){.rate = NAN}), LAM_ERR_INVALID_ARGUMENT, "lam_nn_dropout: rate");
  tu_assert_fails(lam_nn_dropout(&(lam_dropout_opts){.rate = -0.5}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_nn_dropout: rate -0.5");
  tu_assert_fails(lam_nn_dropout(&(lam_dropout_opts){.rate = 1}), LAM_ERR_INVALID_ARGUMENT, "lam_nn_dropout: rate 1");
  tu_assert_fails(lam_nn_dropout2d(&(lam_dropout_opts){.rate = NAN}), LAM_ERR_INVALID_ARGUMENT, "lam_nn_dropout2d");
  tu_assert_fails(lam_nn_dropout3d(&(lam_dropout_opts){.rate = INFINITY}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_nn_dropout3d");
  tu_assert_fails(lam_nn_dropblock(&(lam_dropblock_opts){.rate = -0.1}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_nn_dropblock: rate -0.1");
  tu_assert_fails(lam_nn_dropblock(&(lam_dropblock_opts){.gamma_scale = NAN}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_nn_dropblock: gamma_scale");
  tu_assert_fails(lam_nn_dropblock(&(lam_dropblock_opts){.block_size = -3}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_nn_dropblock: block_size -3");
  tu_assert_fails(lam_nn_stochastic_depth(&(lam_stochastic_depth_opts){.rate = NAN}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_nn_stochastic_depth: rate");
  tu_assert_fails(lam_nn_stochastic_depth(&(lam_stochastic_depth_opts){.rate = -1}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_nn_stochastic_depth: rate -1");
  tu_assert_fails(lam_nn_stochastic_depth(&(lam_stochastic_depth_opts){.mode = (lam_stochastic_depth_mode)5}),
                  LAM_ERR_INVALID_ARGUMENT, "lam_nn_stochastic_depth: mode 5");
  tu_assert_fails(lam_nn_classifier(4, 3, &(lam_classifier_opts){.dropout = NAN}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_nn_classifier: dropout");
  /* norms */
  tu_assert_fails(lam_nn_layer_norm(1, &five, &(lam_layer_norm_opts){.eps = -1}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_nn_layer_norm: eps -1");
  tu_assert_fails(lam_nn_layer_norm(1, &five, &(lam_layer_norm_opts){.eps = NAN, .activation = lam_nn_relu()}),
                  LAM_ERR_INVALID_ARGUMENT, "lam_nn_layer_norm: eps");
  tu_assert_fails(lam_nn_rms_norm(1, &five, &(lam_rms_norm_opts){.eps = -1e-6}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_nn_rms_norm: eps");
  tu_assert_fails(lam_nn_batch_norm(3, &(lam_batch_norm_opts){.eps = -1}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_nn_batch_norm: eps -1");
  tu_assert_fails(lam_nn_batch_norm(3, &(lam_batch_norm_opts){.momentum = -0.5}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_nn_batch_norm: momentum -0.5");
  tu_assert_fails(lam_nn_batch_norm(3, &(lam_batch_norm_opts){.momentum = NAN}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_nn_batch_norm: momentum");
  tu_assert_fails(lam_nn_batch_norm(3, &(lam_batch_norm_opts){.momentum = 1.5}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_nn_batch_norm: momentum 1.5");
  tu_assert_fails(lam_nn_group_norm(2, 4, &(lam_group_norm_opts){.eps = NAN}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_nn_group_norm: eps");
  tu_assert_fails(lam_nn_instance_norm(3, &(lam_instance_norm_opts){.momentum = 2}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_nn_instance_norm: momentum 2");
  tu_assert_fails(lam_nn_instance_norm(3, &(lam_instance_norm_opts){.eps = -INFINITY}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_nn_instance_norm: eps");
  tu_assert_fails(lam_nn_channel_layer_norm(3, &(lam_layer_norm_opts){.eps = -1, .activation = lam_nn_gelu()}),
                  LAM_ERR_INVALID_ARGUMENT, "lam_nn_channel_layer_norm: eps -1");
  tu_assert_fails(lam_nn_layer_scale(5, &(lam_layer_scale_opts){.lambda = NAN}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_nn_layer_scale: lambda");
  tu_assert_fails(lam_nn_layer_scale(5, &(lam_layer_scale_opts){.lambda = INFINITY}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_nn_layer_scale: lambda");
  /* dense and activations */
  tu_assert_fails(lam_nn_prelu(&(lam_prelu_opts){.num_parameters = -2}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_nn_prelu: num_parameters -2");
  tu_assert_fails(lam_nn_prelu(&(lam_prelu_opts){.init = NAN}), LAM_ERR_INVALID_ARGUMENT, "lam_nn_prelu: init");
  tu_assert_fails(lam_nn_activation(LAM_LEAKY_RELU, &(lam_unary_opts){.negative_slope = NAN}),
                  LAM_ERR_INVALID_ARGUMENT, "lam_nn_activation: negative_slope");
  tu_assert_fails(lam_nn_activation(LAM_CELU, &(lam_unary_opts){.alpha = LAM_ZERO}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_nn_activation: alpha is 0");
  tu_assert_fails(lam_nn_activation(LAM_CLAMP, &(lam_unary_opts){.min = NAN}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_nn_activation: clamp bounds");
  /* attention and recurrent */
  tu_assert_fails(lam_nn_multi_head_attention(8, 2, &(lam_multi_head_attention_opts){.dropout = NAN}),
                  LAM_ERR_INVALID_ARGUMENT, "lam_nn_multi_head_attention: dropout");
  tu_assert_fails(lam_nn_multi_head_attention(8, 2, &(lam_multi_head_attention_opts){.rope = true, .rope_theta = -1}),
                  LAM_ERR_INVALID_ARGUMENT, "lam_nn_multi_head_attention: rope_theta -1");
  tu_assert_fails(lam_nn_alibi(&(lam_alibi_opts){.offset = (int64_t)1 << 50}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_nn_alibi: offset");
  tu_assert_fails(lam_nn_lstm(3, 4, &(lam_rnn_opts){.num_layers = -1}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_nn_lstm: num_layers -1");
  tu_assert_fails(lam_nn_gru(3, 4, &(lam_rnn_opts){.dropout = NAN}), LAM_ERR_INVALID_ARGUMENT, "lam_nn_gru: dropout");
  tu_assert_fails(lam_nn_rnn_cell(3, 4, &(lam_rnn_cell_opts){.nonlinearity = (lam_rnn_nonlinearity)9}),
                  LAM_ERR_INVALID_ARGUMENT, "lam_nn_rnn_cell: unknown nonlinearity 9");
  /* conv family */
  tu_assert_fails(lam_nn_conv2d(3, 4, &(lam_conv_opts){.stride = {-1}}), LAM_ERR_INVALID_ARGUMENT, "lam_nn_conv2d");
  tu_assert_fails(lam_nn_max_pool2d(&(lam_pool_opts){.padding = {-1}}), LAM_ERR_INVALID_ARGUMENT, "lam_nn_max_pool2d");
  tu_assert_fails(lam_nn_upsample2d(&(lam_upsample_opts){.scale = {NAN}}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_nn_upsample2d");
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}
