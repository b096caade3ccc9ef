/* test_bad_input.c: a table that calls every public function (every LAM_API
 * declaration in the headers of include/lamina/) with at least one bad argument.
 *
 * Each row is X(kind, function, status, call):
 *   P  the call returns a pointer: it must be NULL, lam_last_status() must be
 *      LAM_ERR_<status> (NULLARG: LAM_ERR_NULL) and lam_last_error() must name the function;
 *   S  the call returns a lam_status: it must be LAM_ERR_<status>, with a
 *      message naming the function, and leave the outputs it was given unset;
 *   E  a function with no failure status (accessors of NULL, frees of NULL,
 *      constructors of plain descriptors validated elsewhere, functions of no
 *      argument): the expression must be true (the documented fallback) and
 *      record no error. The lam_init_* and lam_schedule_* descriptor rows
 *      instead build a bad descriptor and check that lam_init_check /
 *      lam_schedule_check rejects it with a message.
 * After every row no tensor or device byte may have leaked (lam_ctx_stats;
 * host leaks are LSan's job in the LAMINA_SANITIZE build).
 *
 * tests/check_bad_input.sh (ctest "bad_input_coverage") fails when a LAM_API
 * function of include/ has no row here, so a new function needs one. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lamina/opencl.h"
#include "testutil.h"

typedef struct fx {
  lam_ctx *ctx, *ctx2;
  lam_tensor *t, *ti, *other, *out, *out2, *out3, *outs[2];
  lam_ptree *tree, *tree_out;
  lam_layer *layer;
  lam_vars *vars, *vars_out;
  lam_optimizer *opt;
  lam_metadata *meta, *meta_out;
  lam_kv_cache *kv;
  lam_aux *aux;
  lam_summaries *sums;
  lam_apply_opts apply;
  lam_rng_key key, keys[2];
  lam_schedule sched;
  lam_init init;
  lam_stats stats;
  lam_dataset *ds, *ds_out, *ds_out2;
  lam_loader *loader, *loader_out;
  lam_batch batch;
  lam_metric *metric;
  lam_layer *bert, *gpt2;
  lam_vars *bert_vars, *gpt2_vars;
  lam_models_gpt2_cache *gpt2_cache;
  lam_tensor *ids; /* i32 [2, 3] zeros */
  lam_tokenizer *tok, *tok_out; /* tokenizer.h: tests/data/tokenizer_variant.json */
  lam_encoding enc;
  int64_t perm[4];
  int64_t shape[2], shape_out[3], step;
  const char *s1, *s2;
  double d;
  int i;
  char buf[256];
} fx;

/* E-row helpers: a constructor of no argument gives an object (freed here). */
static int layer_ok(lam_layer *l) { int ok = l != NULL; lam_layer_free(l); return ok; }
static int tree_ok(lam_ptree *t) { int ok = t != NULL; lam_ptree_free(t); return ok; }
static int kv_ok(lam_kv_cache *c) { int ok = c != NULL; lam_kv_cache_free(c); return ok; }
static int meta_ok(lam_metadata *m) { int ok = m != NULL; lam_metadata_free(m); return ok; }
static int aux_ok(lam_aux *a) { int ok = a != NULL; lam_aux_free(a); return ok; }
static int sums_ok(lam_summaries *s) { int ok = s != NULL; lam_summaries_free(s); return ok; }
/* Descriptor constructors: lam_init_check / lam_schedule_check judge them. */
static int init_ok(lam_init i) { return lam_init_check(&i) == LAM_OK; }
static int init_rejected(lam_init i) {
  return lam_init_check(&i) != LAM_OK && strstr(lam_last_error(), "lam_init_check") != NULL;
}
static int sched_rejected(lam_schedule s) {
  return lam_schedule_check(&s) != LAM_OK && strstr(lam_last_error(), "lam_schedule_check") != NULL;
}

/* The fixture's dataset: 4 samples of x f32 [3] and y i32 (a scalar). */
static const float ds_x[12] = {0};
static const int32_t ds_y[4] = {0, 1, 0, 1};
static const lam_field ds_fields[2] = {{LAM_F32, 1, {3}}, {LAM_I32, 0, {0}}};
static lam_status ds_map_copy(const void *const *src, void *const *dst, void *user) {
  (void)user;
  memcpy(dst[0], src[0], sizeof(float) * 3);
  memcpy(dst[1], src[1], sizeof(int32_t));
  return LAM_OK;
}
static lam_tensor *vjp_neg(lam_tensor *const *xs, int n, void *user) {
  (void)n, (void)user;
  return lam_neg(xs[0]);
}
static int field_zeroed(lam_field fd) { return fd.dtype == (lam_dtype)0 && fd.ndim == 0 && fd.shape[0] == 0; }

/* Bad option structs for the constructors that take only options. */
static const lam_pool_opts bad_pool = {.kernel = {-1, -1, -1}};
static const lam_upsample_opts bad_upsample = {.scale = {-2.0, -2.0, -2.0}};

#define BAD_INPUT_ROWS(X)                                                                          \
  /* attention.h */                                                                                \
  X(E, lam_attention_defaults, OK, ((void)lam_attention_defaults(), 1))                            \
  X(P, lam_scaled_dot_product_attention, NULLARG, (NULL, f->t, f->t, NULL))                           \
  X(E, lam_rope_defaults, OK, ((void)lam_rope_defaults(), 1))                                      \
  X(P, lam_rope, NULLARG, (NULL, NULL))                                                               \
  X(P, lam_nn_rope, INVALID_ARGUMENT, (-1, NULL))                                                  \
  X(E, lam_sinusoidal_defaults, OK, ((void)lam_sinusoidal_defaults(), 1))                          \
  X(P, lam_sinusoidal_encoding, NULLARG, (NULL, 4, NULL))                                             \
  X(P, lam_nn_sinusoidal_encoding, INVALID_ARGUMENT, (-2, NULL))                                   \
  X(P, lam_alibi_slopes, NULLARG, (NULL, LAM_F32, 4))                                                 \
  X(P, lam_alibi_bias, NULLARG, (NULL, LAM_F32, 4, 2, 2, 0))                                          \
  X(E, lam_nn_alibi, OK, layer_ok(lam_nn_alibi(&(lam_alibi_opts){.offset = -3}))) /* every offset is valid */                                                       \
  X(E, lam_alibi_defaults, OK, lam_alibi_defaults().offset == 0)                                    \
  X(E, lam_kv_cache_create, OK, kv_ok(lam_kv_cache_create()))                                      \
  X(E, lam_kv_cache_free, OK, (lam_kv_cache_free(NULL), 1))                                        \
  X(E, lam_kv_cache_reset, OK, (lam_kv_cache_reset(NULL), 1))                                      \
  X(E, lam_kv_cache_length, OK, lam_kv_cache_length(NULL) == 0)                                    \
  X(S, lam_kv_cache_append, NULLARG, (NULL, f->t, f->t))                                              \
  X(P, lam_kv_cache_keys, NULLARG, (NULL))                                                            \
  X(P, lam_kv_cache_values, NULLARG, (NULL))                                                          \
  X(P, lam_kv_cache_attention, NULLARG, (NULL, f->t, NULL))                                           \
  X(E, lam_multi_head_attention_defaults, OK, ((void)lam_multi_head_attention_defaults(), 1))      \
  X(P, lam_nn_multi_head_attention, INVALID_ARGUMENT, (8, 3, NULL))                                \
  X(S, lam_nn_multi_head_attention_apply, NULLARG, (NULL, NULL, f->t, f->t, f->t, NULL, &f->out))     \
  X(S, lam_nn_multi_head_attention_apply_cached, NULLARG, (NULL, NULL, f->t, f->kv, NULL, &f->out))   \
  /* autodiff.h */                                                                                 \
  X(S, lam_value_and_grad, NULLARG, (f->ctx, NULL, NULL, f->tree, &f->out, &f->tree_out))             \
  X(S, lam_grad, NULLARG, (f->ctx, NULL, NULL, &f->t, 1, &f->out, f->outs))                           \
  X(S, lam_vjp, DTYPE, (f->ctx, vjp_neg, NULL, &f->t, 1, f->ti, &f->out, f->outs))                  \
  X(P, lam_stop_gradient, NULLARG, (NULL))                                                            \
  X(E, lam_grad_set_enabled, OK, lam_grad_set_enabled(NULL, true) == false)                        \
  X(E, lam_grad_is_recording, OK, lam_grad_is_recording(NULL) == false)                            \
  /* blocks.h */                                                                                   \
  X(P, lam_nn_layer_scale, INVALID_ARGUMENT, (0, NULL))                                            \
  X(E, lam_layer_scale_defaults, OK, lam_layer_scale_defaults().lambda == 1e-5)                     \
  X(P, lam_nn_prenorm, NULLARG, (NULL, NULL))                                                         \
  X(E, lam_conv_norm_defaults, OK, !lam_conv_norm_defaults().preact && !lam_conv_norm_defaults().revnorm) \
  X(P, lam_nn_conv_norm, NULLARG, (NULL, NULL, NULL, NULL))                                           \
  X(P, lam_nn_classifier, INVALID_ARGUMENT, (0, 10, NULL))                                         \
  X(E, lam_classifier_defaults, OK, lam_classifier_defaults().activation == NULL)                   \
  /* conv.h */                                                                                     \
  X(E, lam_conv_defaults, OK, ((void)lam_conv_defaults(), 1))                                      \
  X(P, lam_conv1d, NULLARG, (NULL, f->t, NULL, NULL))                                                 \
  X(P, lam_conv2d, NULLARG, (NULL, f->t, NULL, NULL))                                                 \
  X(P, lam_conv3d, NULLARG, (NULL, f->t, NULL, NULL))                                                 \
  X(S, lam_conv_output_size, NULLARG, (1, NULL, f->shape, NULL, f->shape_out))                        \
  X(P, lam_nn_conv1d, INVALID_ARGUMENT, (0, 4, NULL))                                              \
  X(P, lam_nn_conv2d, INVALID_ARGUMENT, (0, 4, NULL))                                              \
  X(P, lam_nn_conv3d, INVALID_ARGUMENT, (0, 4, NULL))                                              \
  X(E, lam_conv_transpose_defaults, OK, ((void)lam_conv_transpose_defaults(), 1))                  \
  X(P, lam_conv_transpose1d, NULLARG, (NULL, f->t, NULL, NULL))                                       \
  X(P, lam_conv_transpose2d, NULLARG, (NULL, f->t, NULL, NULL))                                       \
  X(P, lam_conv_transpose3d, NULLARG, (NULL, f->t, NULL, NULL))                                       \
  X(P, lam_nn_conv_transpose1d, INVALID_ARGUMENT, (0, 4, NULL))                                    \
  X(P, lam_nn_conv_transpose2d, INVALID_ARGUMENT, (0, 4, NULL))                                    \
  X(P, lam_nn_conv_transpose3d, INVALID_ARGUMENT, (0, 4, NULL))                                    \
  X(E, lam_pool_defaults, OK, ((void)lam_pool_defaults(), 1))                                      \
  X(P, lam_max_pool1d, NULLARG, (NULL, NULL))                                                         \
  X(P, lam_max_pool2d, NULLARG, (NULL, NULL))                                                         \
  X(P, lam_max_pool3d, NULLARG, (NULL, NULL))                                                         \
  X(P, lam_avg_pool1d, NULLARG, (NULL, NULL))                                                         \
  X(P, lam_avg_pool2d, NULLARG, (NULL, NULL))                                                         \
  X(P, lam_avg_pool3d, NULLARG, (NULL, NULL))                                                         \
  X(P, lam_adaptive_avg_pool1d, NULLARG, (NULL, 2))                                                   \
  X(P, lam_adaptive_avg_pool2d, NULLARG, (NULL, 2, 2))                                                \
  X(P, lam_adaptive_avg_pool3d, NULLARG, (NULL, 2, 2, 2))                                             \
  X(P, lam_adaptive_max_pool1d, NULLARG, (NULL, 2))                                                   \
  X(P, lam_adaptive_max_pool2d, NULLARG, (NULL, 2, 2))                                                \
  X(P, lam_adaptive_max_pool3d, NULLARG, (NULL, 2, 2, 2))                                             \
  X(P, lam_max_pool1d_with_indices, NULLARG, (NULL, NULL, &f->out))                                  \
  X(P, lam_max_pool2d_with_indices, NULLARG, (f->t, NULL, NULL))                                     \
  X(P, lam_max_pool3d_with_indices, NULLARG, (NULL, NULL, &f->out))                                  \
  X(P, lam_adaptive_max_pool1d_with_indices, NULLARG, (NULL, 2, &f->out))                            \
  X(P, lam_adaptive_max_pool2d_with_indices, NULLARG, (NULL, 2, 2, &f->out))                         \
  X(P, lam_adaptive_max_pool3d_with_indices, NULLARG, (f->t, 2, 2, 2, NULL))                         \
  X(E, lam_max_unpool_defaults, OK, lam_max_unpool_defaults().kernel[0] == 2)                        \
  X(P, lam_max_unpool1d, NULLARG, (NULL, f->ti, NULL))                                               \
  X(P, lam_max_unpool2d, NULLARG, (f->t, NULL, NULL))                                                \
  X(P, lam_max_unpool3d, NULLARG, (NULL, NULL, NULL))                                                \
  X(P, lam_lp_pool1d, NULLARG, (NULL, 2.0, NULL))                                                    \
  X(P, lam_lp_pool2d, INVALID_ARGUMENT, (f->t, 0.0, NULL))                                           \
  X(P, lam_lp_pool3d, NULLARG, (NULL, 2.0, NULL))                                                    \
  X(E, lam_fractional_max_pool_defaults, OK, lam_fractional_max_pool_defaults().output_ratio[0] == 0.5)\
  X(P, lam_fractional_max_pool2d, NULLARG, (NULL, f->key, NULL, NULL))                               \
  X(P, lam_fractional_max_pool3d, SHAPE, (f->t, f->key, NULL, &f->out))                              \
  X(P, lam_adaptive_mean_max_pool2d, NULLARG, (NULL, 1, 1, false))                                    \
  X(P, lam_global_avg_pool, NULLARG, (NULL))                                                          \
  X(P, lam_global_max_pool, NULLARG, (NULL))                                                          \
  X(P, lam_nn_max_pool1d, INVALID_ARGUMENT, (&bad_pool))                                           \
  X(P, lam_nn_max_pool2d, INVALID_ARGUMENT, (&bad_pool))                                           \
  X(P, lam_nn_max_pool3d, INVALID_ARGUMENT, (&bad_pool))                                           \
  X(P, lam_nn_avg_pool1d, INVALID_ARGUMENT, (&bad_pool))                                           \
  X(P, lam_nn_avg_pool2d, INVALID_ARGUMENT, (&bad_pool))                                           \
  X(P, lam_nn_avg_pool3d, INVALID_ARGUMENT, (&bad_pool))                                           \
  X(P, lam_nn_adaptive_avg_pool1d, INVALID_ARGUMENT, (0))                                          \
  X(P, lam_nn_adaptive_avg_pool2d, INVALID_ARGUMENT, (0, 2))                                       \
  X(P, lam_nn_adaptive_max_pool1d, INVALID_ARGUMENT, (0))                                          \
  X(P, lam_nn_adaptive_max_pool2d, INVALID_ARGUMENT, (0, 2))                                       \
  X(P, lam_nn_adaptive_mean_max_pool2d, INVALID_ARGUMENT, (0, 1, false))                           \
  X(P, lam_nn_adaptive_avg_pool3d, INVALID_ARGUMENT, (2, 0, 2))                                      \
  X(P, lam_nn_adaptive_max_pool3d, INVALID_ARGUMENT, (0, 2, 2))                                      \
  X(P, lam_nn_max_unpool1d, INVALID_ARGUMENT, (&(lam_max_unpool_opts){.kernel = {-1}}))              \
  X(P, lam_nn_max_unpool2d, INVALID_ARGUMENT, (&(lam_max_unpool_opts){.padding = {0, -1}}))          \
  X(P, lam_nn_max_unpool3d, INVALID_ARGUMENT, (&(lam_max_unpool_opts){.output_size = {0, 0, -3}}))   \
  X(S, lam_nn_max_unpool_apply, INVALID_ARGUMENT, (f->layer, f->t, f->ti, NULL, &f->out))            \
  X(S, lam_nn_max_pool_apply, INVALID_ARGUMENT, (f->layer, f->t, NULL, &f->out, &f->out2))           \
  X(P, lam_nn_lp_pool1d, INVALID_ARGUMENT, (NAN, NULL))                                              \
  X(P, lam_nn_lp_pool2d, INVALID_ARGUMENT, (2.0, &(lam_pool_opts){.padding = {1, 1}}))               \
  X(P, lam_nn_lp_pool3d, INVALID_ARGUMENT, (2.0, &(lam_pool_opts){.divisor_override = 3}))           \
  X(P, lam_nn_fractional_max_pool2d, INVALID_ARGUMENT, (&(lam_fractional_max_pool_opts){.output_ratio = {1.5}}))\
  X(P, lam_nn_fractional_max_pool3d, INVALID_ARGUMENT, (&(lam_fractional_max_pool_opts){.samples = f->t}))\
  X(E, lam_nn_global_avg_pool, OK, layer_ok(lam_nn_global_avg_pool()))                             \
  X(E, lam_nn_global_max_pool, OK, layer_ok(lam_nn_global_max_pool()))                             \
  X(E, lam_upsample_defaults, OK, ((void)lam_upsample_defaults(), 1))                              \
  X(P, lam_upsample1d, NULLARG, (NULL, NULL))                                                         \
  X(P, lam_upsample2d, NULLARG, (NULL, NULL))                                                         \
  X(P, lam_upsample3d, NULLARG, (NULL, NULL))                                                         \
  X(P, lam_nn_upsample1d, INVALID_ARGUMENT, (&bad_upsample))                                       \
  X(P, lam_nn_upsample2d, INVALID_ARGUMENT, (&bad_upsample))                                       \
  X(P, lam_nn_upsample3d, INVALID_ARGUMENT, (&bad_upsample))                                       \
  /* data.h */                                                                                      \
  X(E, lam_dataset_defaults, OK, !lam_dataset_defaults().borrow)                                    \
  X(S, lam_dataset_from_arrays, DTYPE, (4, 1, (const lam_field[]){{.dtype = (lam_dtype)99}}, (const void *const[]){ds_x}, NULL, &f->ds_out)) \
  X(S, lam_dataset_from_tensors, INVALID_ARGUMENT, (LAM_DATASET_MAX_FIELDS + 1, (lam_tensor *const[LAM_DATASET_MAX_FIELDS + 1]){f->t}, NULL, &f->ds_out)) \
  X(E, lam_csv_defaults, OK, lam_csv_defaults().delimiter == ',')                                   \
  X(S, lam_dataset_from_csv, INVALID_ARGUMENT, ("/nonexistent/x.csv", &(lam_csv_opts){.skip_rows = -1}, &f->ds_out)) \
  X(S, lam_dataset_from_npy, IO, (1, (const char *const[]){"/nonexistent/x.npy"}, &f->ds_out))      \
  X(S, lam_dataset_from_fn, NULLARG, (4, 2, ds_fields, NULL, NULL, &f->ds_out))                     \
  X(S, lam_dataset_map, INVALID_ARGUMENT, (f->ds, LAM_DATASET_MAX_FIELDS + 1, NULL, ds_map_copy, NULL, &f->ds_out)) \
  X(S, lam_dataset_subset, INVALID_ARGUMENT, (f->ds, 1, (const int64_t[]){4}, &f->ds_out))          \
  X(E, lam_split_defaults, OK, lam_split_defaults().val_fraction == 0.2)                            \
  X(S, lam_dataset_split, INVALID_ARGUMENT, (f->ds, &(lam_split_opts){.val_fraction = 1.5}, &f->ds_out, &f->ds_out2)) \
  X(E, lam_dataset_count, OK, lam_dataset_count(NULL) == -1)                                        \
  X(E, lam_dataset_field_count, OK, lam_dataset_field_count(NULL) == -1)                            \
  X(E, lam_dataset_field, OK, field_zeroed(lam_dataset_field(f->ds, 2)))                            \
  X(E, lam_dataset_field_bytes, OK, lam_dataset_field_bytes(f->ds, -1) == 0)                        \
  X(S, lam_dataset_get, INVALID_ARGUMENT, (f->ds, 4, (void *const[]){f->buf, f->buf}))              \
  X(E, lam_dataset_retain, OK, lam_dataset_retain(NULL) == NULL)                                    \
  X(E, lam_dataset_free, OK, (lam_dataset_free(NULL), 1))                                           \
  X(E, lam_loader_defaults, OK, lam_loader_defaults().batch_size == 32)                             \
  X(S, lam_loader_create, INVALID_ARGUMENT, (f->ctx, f->ds, &(lam_loader_opts){.batch_size = -1}, &f->loader_out)) \
  X(S, lam_loader_reset, INVALID_ARGUMENT, (f->loader, -1))                                         \
  X(S, lam_loader_next, NULLARG, (NULL, &f->batch))                                                 \
  X(E, lam_loader_batch_count, OK, lam_loader_batch_count(NULL) == -1)                              \
  X(E, lam_loader_sample_count, OK, lam_loader_sample_count(NULL) == -1)                            \
  X(E, lam_loader_batch_size, OK, lam_loader_batch_size(NULL) == -1)                                \
  X(E, lam_loader_epoch, OK, lam_loader_epoch(NULL) == -1)                                          \
  X(E, lam_loader_dataset, OK, lam_loader_dataset(NULL) == NULL)                                    \
  X(S, lam_loader_order, INVALID_ARGUMENT, (f->loader, -1, f->perm))                                \
  X(E, lam_loader_free, OK, (lam_loader_free(NULL), 1))                                             \
  /* dense.h */                                                                                    \
  X(E, lam_linear_defaults, OK, ((void)lam_linear_defaults(), 1))                                  \
  X(P, lam_nn_linear, INVALID_ARGUMENT, (0, 4, NULL))                                              \
  X(P, lam_nn_bilinear, INVALID_ARGUMENT, (0, 2, 2, NULL))                                         \
  X(P, lam_bilinear, NULLARG, (NULL, f->t, f->t, NULL))                                               \
  X(E, lam_nn_identity, OK, layer_ok(lam_nn_identity()))                                           \
  X(E, lam_nn_flatten, OK, layer_ok(lam_nn_flatten(3, 1))) /* axes checked against the input */   \
  X(E, lam_embedding_defaults, OK, ((void)lam_embedding_defaults(), 1))                            \
  X(P, lam_nn_embedding, INVALID_ARGUMENT, (0, 4, NULL))                                           \
  X(P, lam_nn_activation, INVALID_ARGUMENT, (LAM_UNARY_COUNT, NULL))                               \
  X(E, lam_nn_relu, OK, layer_ok(lam_nn_relu()))                                                   \
  X(E, lam_nn_gelu, OK, layer_ok(lam_nn_gelu()))                                                   \
  X(E, lam_nn_tanh, OK, layer_ok(lam_nn_tanh()))                                                   \
  X(E, lam_nn_sigmoid, OK, layer_ok(lam_nn_sigmoid()))                                             \
  X(E, lam_nn_silu, OK, layer_ok(lam_nn_silu()))                                                   \
  X(E, lam_nn_softmax, OK, layer_ok(lam_nn_softmax(9))) /* the axis is checked against the input */ \
  X(E, lam_nn_log_softmax, OK, layer_ok(lam_nn_log_softmax(9)))                                    \
  X(E, lam_nn_glu, OK, layer_ok(lam_nn_glu(9)))                                                    \
  X(P, lam_glu, NULLARG, (NULL, -1))                                                                  \
  X(P, lam_nn_prelu, INVALID_ARGUMENT, (&(lam_prelu_opts){.num_parameters = -1}))                                                  \
  X(E, lam_prelu_defaults, OK, lam_prelu_defaults().num_parameters == 1)                            \
  X(P, lam_prelu, NULLARG, (NULL, f->t))                                                              \
  /* elementwise.h */                                                                              \
  X(E, lam_unary_name, OK, lam_unary_name(LAM_UNARY_COUNT) == NULL)                                \
  X(E, lam_unary_defaults, OK, lam_unary_defaults().negative_slope == 0.01)                         \
  X(P, lam_unary, INVALID_ARGUMENT, (LAM_UNARY_COUNT, f->t, NULL))                                 \
  X(P, lam_neg, NULLARG, (NULL))                                                                      \
  X(P, lam_abs, NULLARG, (NULL))                                                                      \
  X(P, lam_sign, NULLARG, (NULL))                                                                     \
  X(P, lam_exp, NULLARG, (NULL))                                                                      \
  X(P, lam_expm1, NULLARG, (NULL))                                                                    \
  X(P, lam_log, NULLARG, (NULL))                                                                      \
  X(P, lam_log1p, NULLARG, (NULL))                                                                    \
  X(P, lam_sqrt, NULLARG, (NULL))                                                                     \
  X(P, lam_rsqrt, NULLARG, (NULL))                                                                    \
  X(P, lam_square, NULLARG, (NULL))                                                                   \
  X(P, lam_reciprocal, NULLARG, (NULL))                                                               \
  X(P, lam_sin, NULLARG, (NULL))                                                                      \
  X(P, lam_cos, NULLARG, (NULL))                                                                      \
  X(P, lam_tanh, NULLARG, (NULL))                                                                     \
  X(P, lam_sigmoid, NULLARG, (NULL))                                                                  \
  X(P, lam_relu, NULLARG, (NULL))                                                                     \
  X(P, lam_relu6, NULLARG, (NULL))                                                                    \
  X(P, lam_leaky_relu, NULLARG, (NULL, 0.01))                                                         \
  X(P, lam_elu, NULLARG, (NULL, 1.0))                                                                 \
  X(P, lam_celu, NULLARG, (NULL, 1.0))                                                                \
  X(P, lam_selu, NULLARG, (NULL))                                                                     \
  X(P, lam_gelu, NULLARG, (NULL))                                                                     \
  X(P, lam_gelu_tanh, NULLARG, (NULL))                                                                \
  X(P, lam_silu, NULLARG, (NULL))                                                                     \
  X(P, lam_mish, NULLARG, (NULL))                                                                     \
  X(P, lam_softplus, NULLARG, (NULL))                                                                 \
  X(P, lam_softsign, NULLARG, (NULL))                                                                 \
  X(P, lam_hard_sigmoid, NULLARG, (NULL))                                                             \
  X(P, lam_hard_swish, NULLARG, (NULL))                                                               \
  X(P, lam_log_sigmoid, NULLARG, (NULL))                                                              \
  X(P, lam_step, NULLARG, (NULL))                                                                     \
  X(P, lam_clamp, INVALID_ARGUMENT, (f->t, NAN, 1.0)) /* lo > hi is PyTorch's all-hi */                                              \
  X(P, lam_binary, INVALID_ARGUMENT, ((lam_binary_op)99, f->t, f->t))                              \
  X(P, lam_add, INVALID_ARGUMENT, (f->t, f->other)) /* tensors of two contexts */                  \
  X(P, lam_sub, NULLARG, (f->t, NULL))                                                                \
  X(P, lam_mul, NULLARG, (f->t, NULL))                                                                \
  X(P, lam_div, NULLARG, (f->t, NULL))                                                                \
  X(P, lam_pow, NULLARG, (f->t, NULL))                                                                \
  X(P, lam_maximum, NULLARG, (f->t, NULL))                                                            \
  X(P, lam_minimum, NULLARG, (f->t, NULL))                                                            \
  X(P, lam_binary_scalar, INVALID_ARGUMENT, ((lam_binary_op)99, f->t, 1.0, 0))                     \
  X(P, lam_add_scalar, NULLARG, (NULL, 1.0))                                                          \
  X(P, lam_sub_scalar, NULLARG, (NULL, 1.0))                                                          \
  X(P, lam_mul_scalar, NULLARG, (NULL, 1.0))                                                          \
  X(P, lam_div_scalar, NULLARG, (NULL, 1.0))                                                          \
  X(P, lam_pow_scalar, NULLARG, (NULL, 1.0))                                                          \
  X(P, lam_rsub_scalar, NULLARG, (NULL, 1.0))                                                         \
  X(P, lam_rdiv_scalar, NULLARG, (NULL, 1.0))                                                         \
  X(P, lam_compare, INVALID_ARGUMENT, ((lam_compare_op)99, f->t, f->t))                            \
  X(P, lam_compare_scalar, INVALID_ARGUMENT, ((lam_compare_op)99, f->t, 1.0))                      \
  X(P, lam_eq, NULLARG, (NULL, f->t))                                                                 \
  X(P, lam_ne, NULLARG, (NULL, f->t))                                                                 \
  X(P, lam_lt, NULLARG, (NULL, f->t))                                                                 \
  X(P, lam_le, NULLARG, (NULL, f->t))                                                                 \
  X(P, lam_gt, NULLARG, (NULL, f->t))                                                                 \
  X(P, lam_ge, NULLARG, (NULL, f->t))                                                                 \
  X(P, lam_where, NULLARG, (NULL, f->t, f->t))                                                        \
  /* init.h */                                                                                     \
  X(E, lam_init_zeros, OK, init_ok(lam_init_zeros()))                                              \
  X(E, lam_init_ones, OK, init_ok(lam_init_ones()))                                                \
  X(E, lam_init_constant, OK, init_rejected(lam_init_constant(NAN)))                               \
  X(E, lam_init_uniform, OK, init_rejected(lam_init_uniform(-1.0)))                                \
  X(E, lam_init_normal, OK, init_rejected(lam_init_normal(INFINITY)))                              \
  X(E, lam_init_variance_scaling, OK, init_rejected(lam_init_variance_scaling(-1.0, LAM_FAN_IN, 0))) \
  X(E, lam_init_glorot_uniform, OK, init_ok(lam_init_glorot_uniform()))                            \
  X(E, lam_init_glorot_normal, OK, init_ok(lam_init_glorot_normal()))                              \
  X(E, lam_init_he_uniform, OK, init_ok(lam_init_he_uniform()))                                    \
  X(E, lam_init_he_normal, OK, init_ok(lam_init_he_normal()))                                      \
  X(E, lam_init_lecun_uniform, OK, init_ok(lam_init_lecun_uniform()))                              \
  X(E, lam_init_lecun_normal, OK, init_ok(lam_init_lecun_normal()))                                \
  X(E, lam_init_orthogonal, OK, init_rejected(lam_init_orthogonal(NAN)))                           \
  X(E, lam_init_or, OK, lam_init_or(NULL, lam_init_ones()).kind == LAM_INIT_ONES)                  \
  X(S, lam_init_check, NULLARG, (NULL))                                                               \
  X(S, lam_init_fans, NULLARG, (2, NULL, &f->d, &f->d))                                               \
  X(P, lam_init_apply, NULLARG, (&f->init, NULL, f->key, LAM_F32, 1, f->shape))                       \
  X(E, lam_init_key_for, OK, ((void)lam_init_key_for(f->key, NULL), 1))                            \
  /* io.h */                                                                                       \
  X(E, lam_metadata_create, OK, meta_ok(lam_metadata_create()))                                    \
  X(E, lam_metadata_free, OK, (lam_metadata_free(NULL), 1))                                        \
  X(S, lam_metadata_set, NULLARG, (NULL, "k", "v"))                                                   \
  X(E, lam_metadata_get, OK, lam_metadata_get(NULL, "k") == NULL)                                  \
  X(E, lam_metadata_count, OK, lam_metadata_count(NULL) == 0)                                      \
  X(S, lam_metadata_entry, NOT_FOUND, (f->meta, 99, &f->s1, &f->s2))                        \
  X(E, lam_save_defaults, OK, ((void)lam_save_defaults(), 1))                                      \
  X(S, lam_safetensors_save, NULLARG, (NULL, f->tree, NULL))                                          \
  X(E, lam_load_defaults, OK, ((void)lam_load_defaults(), 1))                                      \
  X(S, lam_safetensors_load, NULLARG, (f->ctx, NULL, NULL, &f->tree_out, &f->meta_out))               \
  X(S, lam_safetensors_read_metadata, IO, ("/nonexistent/x.safetensors", &f->meta_out))            \
  X(S, lam_ptree_load_into, NULLARG, (NULL, "/nonexistent/x.safetensors", NULL))                      \
  X(E, lam_load_report_free, OK, (lam_load_report_free(NULL), 1))                                   \
  X(S, lam_vars_load, IO, (f->vars, "/nonexistent/x.safetensors", NULL, NULL))                      \
  X(S, lam_vars_load_tree, NULLARG, (f->vars, NULL, NULL, NULL))                                    \
  X(S, lam_vars_save, IO, (f->vars, "/nonexistent/dir/v.safetensors", NULL))                        \
  X(S, lam_checkpoint_save, INVALID_ARGUMENT, ("/nonexistent/c.ckpt", f->tree, NULL, NULL, -1, f->key)) \
  X(S, lam_checkpoint_load, NULLARG, (NULL, f->tree, NULL, NULL, &f->step, &f->key))                  \
  /* layer.h */                                                                                    \
  X(E, lam_aux_create, OK, aux_ok(lam_aux_create()))                                               \
  X(S, lam_aux_set, NULLARG, (NULL, "k", f->t))                                                       \
  X(E, lam_aux_get, OK, lam_aux_get(NULL, "k") == NULL)                                            \
  X(E, lam_aux_free, OK, (lam_aux_free(NULL), 1))                                                  \
  X(E, lam_summaries_create, OK, sums_ok(lam_summaries_create()))                                  \
  X(E, lam_summaries_count, OK, lam_summaries_count(NULL) == 0)                                    \
  X(S, lam_summaries_get, NOT_FOUND, (f->sums, 5, &f->s1, &f->out))                         \
  X(E, lam_summaries_find, OK, lam_summaries_find(NULL, "x") == NULL)                              \
  X(E, lam_summaries_clear, OK, (lam_summaries_clear(NULL), 1))                                    \
  X(E, lam_summaries_free, OK, (lam_summaries_free(NULL), 1))                                      \
  X(E, lam_apply_defaults, OK, ((void)lam_apply_defaults(), 1))                                    \
  X(S, lam_summaries_add, NULLARG, (&f->apply, NULL, f->t))                                           \
  X(P, lam_nn_custom, NULLARG, (NULL, NULL))                                                          \
  X(S, lam_layer_set_children, NULLARG, (NULL, NULL))                                               \
  X(E, lam_layer_free, OK, (lam_layer_free(NULL), 1))                                              \
  X(E, lam_layer_name, OK, strcmp(lam_layer_name(NULL), "layer") == 0)                             \
  X(S, lam_layer_init, NULLARG, (NULL, f->ctx, f->key, LAM_F32, &f->vars_out))                        \
  X(S, lam_layer_apply, NULLARG, (f->layer, f->vars, NULL, NULL, &f->out))                            \
  X(S, lam_layer_apply_with, NULLARG, (f->layer, NULL, NULL, f->t, NULL, &f->out))                    \
  X(P, lam_vars_create, NULLARG, (NULL, NULL, LAM_F32))                                               \
  X(E, lam_vars_free, OK, (lam_vars_free(NULL), 1))                                                \
  X(E, lam_vars_params, OK, lam_vars_params(NULL) == NULL)                                         \
  X(E, lam_vars_state, OK, lam_vars_state(NULL) == NULL)                                           \
  X(E, lam_vars_dtype, OK, lam_vars_dtype(NULL) == LAM_F32)                                        \
  X(P, lam_vars_with_params, NULLARG, (NULL, f->tree))                                                \
  X(P, lam_vars_with_state, NULLARG, (NULL, f->tree))                                                 \
  X(S, lam_vars_set_params, NULLARG, (NULL, NULL))                                                    \
  X(S, lam_vars_set_state, NULLARG, (NULL, NULL))                                                     \
  X(P, lam_nn_sequential, NULLARG, (NULL, 2))                                                         \
  X(P, lam_nn_compose, NULLARG, (NULL, NULL))                                                         \
  X(E, lam_layer_child_count, OK, lam_layer_child_count(NULL) == 0)                                \
  X(P, lam_layer_child, INVALID_ARGUMENT, (f->layer, 5))                                           \
  X(E, lam_layer_child_key, OK, lam_layer_child_key(f->layer, 5) == NULL)                           \
  X(E, lam_layer_summary_defaults, OK, lam_layer_summary_defaults().max_depth == 0)                 \
  X(S, lam_layer_summary, SHAPE, (f->layer, f->vars, 2, (const int64_t[]){2, 5}, NULL, NULL))       \
  X(S, lam_layer_apply_child, NULLARG, (NULL, "c", f->tree, NULL, f->t, NULL, &f->out))               \
  X(S, lam_layer_init_child, NULLARG, (NULL, "c", f->ctx, f->key, LAM_F32, f->tree, f->tree))         \
  /* linalg.h */                                                                                   \
  X(P, lam_matmul, SHAPE, (f->t, f->t))                                                            \
  X(P, lam_matmul_t, NULLARG, (NULL, f->t, 0, 0))                                                     \
  /* loss.h */                                                                                     \
  X(E, lam_loss_defaults, OK, ((void)lam_loss_defaults(), 1))                                      \
  X(P, lam_cross_entropy, NULLARG, (NULL, f->ti, NULL))                                               \
  X(P, lam_nll_loss, NULLARG, (NULL, f->ti, NULL))                                                    \
  X(P, lam_binary_cross_entropy, NULLARG, (NULL, f->t, NULL))                                         \
  X(P, lam_mse_loss, NULLARG, (NULL, f->t, NULL))                                                     \
  X(P, lam_l1_loss, NULLARG, (NULL, f->t, NULL))                                                      \
  X(P, lam_smooth_l1_loss, NULLARG, (NULL, f->t, NULL))                                               \
  X(P, lam_huber_loss, NULLARG, (NULL, f->t, NULL))                                                   \
  X(P, lam_kl_div_loss, NULLARG, (NULL, f->t, NULL))                                                  \
  X(P, lam_hinge_loss, NULLARG, (NULL, f->t, NULL))                                                   \
  X(P, lam_margin_ranking_loss, NULLARG, (NULL, f->t, f->t, NULL))                                    \
  X(P, lam_triplet_margin_loss, NULLARG, (NULL, f->t, f->t, NULL))                                    \
  X(P, lam_cosine_similarity_loss, NULLARG, (NULL, f->t, NULL))                                       \
  X(P, lam_gaussian_nll_loss, NULLARG, (NULL, f->t, f->t, NULL))                                      \
  X(P, lam_poisson_nll_loss, NULLARG, (NULL, f->t, NULL))                                             \
  X(P, lam_cosine_embedding_loss, NULLARG, (f->t, f->t, NULL, NULL))                                  \
  X(P, lam_hinge_embedding_loss, NULLARG, (NULL, f->t, NULL))                                         \
  X(P, lam_soft_margin_loss, NULLARG, (f->t, NULL, NULL))                                             \
  X(P, lam_multi_margin_loss, DTYPE, (f->t, f->t, NULL))                                              \
  X(P, lam_multilabel_margin_loss, NULLARG, (NULL, f->ti, NULL))                                      \
  X(P, lam_multilabel_soft_margin_loss, NULLARG, (NULL, f->t, NULL))                                  \
  X(P, lam_ctc_loss, NULLARG, (NULL, f->ti, f->ti, f->ti, NULL))                                      \
  /* metrics.h */                                                                                   \
  X(E, lam_metric_defaults, OK, lam_metric_defaults().k == 5)                                       \
  X(P, lam_metric_create, INVALID_ARGUMENT, ((lam_metric_kind)99, NULL))                            \
  X(S, lam_metric_update, DTYPE, (f->metric, f->t, f->t))                                           \
  X(S, lam_metric_value, NULLARG, (f->metric, NULL))                                                \
  X(S, lam_metric_confusion, INVALID_ARGUMENT, (f->metric, &f->out))                                \
  X(E, lam_metric_count, OK, lam_metric_count(NULL) == -1)                                          \
  X(E, lam_metric_kind_of, OK, lam_metric_kind_of(NULL) == LAM_METRIC_ACCURACY)                     \
  X(E, lam_metric_name, OK, strcmp(lam_metric_name(NULL), "metric") == 0)                           \
  X(E, lam_metric_reset, OK, (lam_metric_reset(NULL), 1))                                           \
  X(E, lam_metric_free, OK, (lam_metric_free(NULL), 1))                                             \
  X(S, lam_metric_compute, INVALID_ARGUMENT, (LAM_METRIC_ACCURACY, &(lam_metric_opts){.num_classes = 1}, f->t, f->ti, &f->d)) \
  X(S, lam_top_k_accuracy, INVALID_ARGUMENT, (f->t, f->ti, 0, &f->d))                               \
  X(S, lam_binary_accuracy, SHAPE, (f->t, f->ti, &f->d))                                            \
  X(S, lam_precision_recall_f1, INVALID_ARGUMENT, (f->t, f->ti, &(lam_metric_opts){.average = (lam_average)9}, &f->d, NULL, NULL)) \
  X(S, lam_confusion_matrix, INVALID_ARGUMENT, (f->t, f->ti, -1, &f->out))                          \
  X(S, lam_mean_squared_error, SHAPE, (f->t, f->ti, &f->d))                                         \
  X(S, lam_mean_absolute_error, DTYPE, (f->ti, f->ti, &f->d))                                       \
  /* models.h */                                                                                    \
  X(E, lam_models_resnet_defaults, OK, lam_models_resnet_defaults().width == 64)                    \
  X(P, lam_models_resnet, INVALID_ARGUMENT, (19, NULL))                                            \
  X(S, lam_models_resnet_fuse, NULLARG, (NULL, NULL))                                              \
  X(E, lam_models_mobilenet_v2_defaults, OK, lam_models_mobilenet_v2_defaults().round_nearest == 8) \
  X(P, lam_models_mobilenet_v2, INVALID_ARGUMENT, (&(lam_models_mobilenet_v2_opts){.width_mult = -1})) \
  X(E, lam_models_vit_defaults, OK, lam_models_vit_defaults().embed_dim == 768)                     \
  X(P, lam_models_vit, INVALID_ARGUMENT, (&(lam_models_vit_opts){.img_size = 20}))                  \
  /* models_text.h */                                                                               \
  X(E, lam_models_bert_defaults, OK, lam_models_bert_defaults().hidden_size == 768)                 \
  X(P, lam_models_bert, INVALID_ARGUMENT, (&(lam_models_bert_opts){.hidden_size = 10, .num_attention_heads = 3})) \
  X(S, lam_models_bert_apply, SHAPE, (f->bert, lam_vars_params(f->bert_vars), f->t, NULL, &f->out, NULL)) \
  X(P, lam_models_mean_pool, SHAPE, (f->t, NULL))                                                   \
  X(P, lam_models_l2_normalize, NULLARG, (NULL))                                                    \
  X(E, lam_models_gpt2_defaults, OK, lam_models_gpt2_defaults().n_inner == 3072)                    \
  X(P, lam_models_gpt2, INVALID_ARGUMENT, (&(lam_models_gpt2_opts){.n_embd = 10, .n_head = 3}))     \
  X(P, lam_models_gpt2_cache_create, INVALID_ARGUMENT, (f->layer))                                  \
  X(E, lam_models_gpt2_cache_free, OK, (lam_models_gpt2_cache_free(NULL), 1))                       \
  X(E, lam_models_gpt2_cache_reset, OK, (lam_models_gpt2_cache_reset(NULL), 1))                     \
  X(E, lam_models_gpt2_cache_length, OK, lam_models_gpt2_cache_length(NULL) == 0)                   \
  X(S, lam_models_gpt2_apply_cached, SHAPE, (f->gpt2, lam_vars_params(f->gpt2_vars), f->t, f->gpt2_cache, NULL, &f->out)) \
  X(E, lam_models_gpt2_generate_defaults, OK, lam_models_gpt2_generate_defaults().temperature == 1.0) \
  X(S, lam_models_gpt2_generate, SHAPE, (f->gpt2, lam_vars_params(f->gpt2_vars), f->ids, 2, NULL, &f->out)) \
  /* norm.h */                                                                                     \
  X(P, lam_layer_norm, NULLARG, (NULL, 1, NULL, NULL, 1e-5))                                          \
  X(P, lam_rms_norm, NULLARG, (NULL, 1, NULL, 1e-5))                                                  \
  X(P, lam_group_norm, NULLARG, (NULL, 1, NULL, NULL, 1e-5))                                          \
  X(P, lam_channel_layer_norm, NULLARG, (NULL, NULL, NULL, 1e-5))                                     \
  X(P, lam_batch_norm, NULLARG, (NULL, NULL, NULL, NULL, NULL, true, 0.1, 1e-5, &f->out, &f->out2))   \
  X(P, lam_instance_norm, NULLARG, (NULL, NULL, NULL, NULL, NULL, true, 0.1, 1e-5, &f->out, &f->out2)) \
  X(E, lam_layer_norm_defaults, OK, ((void)lam_layer_norm_defaults(), 1))                          \
  X(E, lam_rms_norm_defaults, OK, ((void)lam_rms_norm_defaults(), 1))                              \
  X(E, lam_batch_norm_defaults, OK, ((void)lam_batch_norm_defaults(), 1))                          \
  X(E, lam_group_norm_defaults, OK, ((void)lam_group_norm_defaults(), 1))                          \
  X(E, lam_instance_norm_defaults, OK, ((void)lam_instance_norm_defaults(), 1))                    \
  X(P, lam_nn_layer_norm, NULLARG, (1, NULL, NULL))                                                   \
  X(P, lam_nn_rms_norm, NULLARG, (1, NULL, NULL))                                                     \
  X(P, lam_nn_batch_norm, INVALID_ARGUMENT, (0, NULL))                                             \
  X(P, lam_nn_group_norm, INVALID_ARGUMENT, (3, 4, NULL))                                          \
  X(P, lam_nn_instance_norm, INVALID_ARGUMENT, (0, NULL))                                          \
  X(P, lam_nn_channel_layer_norm, INVALID_ARGUMENT, (0, NULL))                               \
  X(E, lam_local_response_norm_defaults, OK, lam_local_response_norm_defaults().beta == 0.75)        \
  X(P, lam_local_response_norm, SHAPE, (f->t, 3, NULL))                                              \
  X(P, lam_nn_local_response_norm, INVALID_ARGUMENT, (0, NULL))                                      \
  /* opencl.h */                                                                                   \
  X(S, lam_ctx_create_from_cl, NULLARG, (NULL, NULL, NULL, NULL, (lam_ctx *[1]){NULL}))            \
  X(S, lam_ctx_wait_cl_events, INVALID_ARGUMENT, (f->ctx, -1, NULL))                               \
  X(S, lam_ctx_marker_cl_event, NULLARG, (f->ctx, NULL))                                           \
  X(S, lam_tensor_from_cl_mem, NULLARG, (f->ctx, NULL, 0, LAM_F32, 1, f->shape, &f->out))          \
  X(S, lam_tensor_cl_mem, NULLARG, (NULL, (cl_mem[1]){NULL}, (size_t[1]){0}))                      \
  /* optim.h */                                                                                    \
  X(E, lam_sgd_defaults, OK, ((void)lam_sgd_defaults(), 1))                                        \
  X(E, lam_adam_defaults, OK, ((void)lam_adam_defaults(), 1))                                      \
  X(E, lam_adamw_defaults, OK, ((void)lam_adamw_defaults(), 1))                                    \
  X(E, lam_rmsprop_defaults, OK, ((void)lam_rmsprop_defaults(), 1))                                \
  X(E, lam_adagrad_defaults, OK, ((void)lam_adagrad_defaults(), 1))                                \
  X(E, lam_lion_defaults, OK, ((void)lam_lion_defaults(), 1))                                      \
  X(P, lam_sgd, INVALID_ARGUMENT, (&(lam_sgd_opts){.lr = -1.0}))                                   \
  X(P, lam_adam, INVALID_ARGUMENT, (&(lam_adam_opts){.lr = NAN}))                                  \
  X(P, lam_adamw, INVALID_ARGUMENT, (&(lam_adamw_opts){.lr = -1.0}))                               \
  X(P, lam_rmsprop, INVALID_ARGUMENT, (&(lam_rmsprop_opts){.lr = INFINITY}))                       \
  X(P, lam_adagrad, INVALID_ARGUMENT, (&(lam_adagrad_opts){.lr = -1.0}))                           \
  X(P, lam_lion, INVALID_ARGUMENT, (&(lam_lion_opts){.lr = -1.0}))                                 \
  X(E, lam_optimizer_free, OK, (lam_optimizer_free(NULL), 1))                                      \
  X(E, lam_optimizer_kind, OK, lam_optimizer_kind(NULL) == LAM_OPTIM_SGD)                          \
  X(E, lam_optimizer_name, OK, (lam_optimizer_name(NULL), 1))                                      \
  X(S, lam_optimizer_describe, NULLARG, (NULL, f->buf, sizeof f->buf))                                \
  X(S, lam_optimizer_step, NULLARG, (f->opt, NULL, NULL))                                             \
  X(E, lam_optimizer_step_count, OK, lam_optimizer_step_count(NULL) == -1)                         \
  X(E, lam_optimizer_lr, OK, isnan(lam_optimizer_lr(NULL)))                                        \
  X(S, lam_optimizer_set_lr, INVALID_ARGUMENT, (f->opt, NAN))                                      \
  X(P, lam_optimizer_state, NULLARG, (NULL))                                                          \
  X(S, lam_optimizer_load_state, NULLARG, (NULL, NULL, 0))                                            \
  X(E, lam_schedule_constant, OK, sched_rejected(lam_schedule_constant(NAN)))                      \
  X(E, lam_schedule_step, OK, sched_rejected(lam_schedule_step(1.0, 0, 0.5)))                      \
  X(E, lam_schedule_exponential, OK, sched_rejected(lam_schedule_exponential(1.0, -1.0)))          \
  X(E, lam_schedule_cosine, OK, sched_rejected(lam_schedule_cosine(1.0, -5, 0.0)))                 \
  X(E, lam_schedule_warmup_cosine, OK, sched_rejected(lam_schedule_warmup_cosine(0, 1, 10, 5, 0))) \
  X(E, lam_schedule_linear, OK, sched_rejected(lam_schedule_linear(1.0, 1.0, 0.5, -1)))            \
  X(S, lam_schedule_check, NULLARG, (NULL))                                                           \
  X(E, lam_schedule_lr, OK, isnan(lam_schedule_lr(NULL, 0)))                                       \
  X(S, lam_optimizer_set_schedule, NULLARG, (NULL, &f->sched))                                        \
  X(S, lam_grad_clip_norm, INVALID_ARGUMENT, (f->tree, NAN, &f->d))                                \
  X(E, lam_grad_scaler_defaults, OK, lam_grad_scaler_defaults().init_scale == 0)                   \
  X(P, lam_grad_scaler_create, INVALID_ARGUMENT, (&(lam_grad_scaler_opts){.backoff_factor = 2}))   \
  X(E, lam_grad_scaler_free, OK, (lam_grad_scaler_free(NULL), 1))                                  \
  X(E, lam_grad_scaler_scale, OK, lam_grad_scaler_scale(NULL) == 0)                                \
  X(P, lam_grad_scaler_scale_loss, NULLARG, (NULL, f->t))                                             \
  X(S, lam_grad_scaler_step, NULLARG, (NULL, f->opt, f->tree, f->tree, NULL))                         \
  /* ptree.h */                                                                                    \
  X(E, lam_ptree_dict, OK, tree_ok(lam_ptree_dict()))                                              \
  X(E, lam_ptree_list, OK, tree_ok(lam_ptree_list()))                                              \
  X(E, lam_ptree_free, OK, (lam_ptree_free(NULL), 1))                                              \
  X(E, lam_ptree_is_list, OK, lam_ptree_is_list(NULL) == 0)                                        \
  X(P, lam_ptree_get, NULLARG, (NULL, "w"))                                                           \
  X(P, lam_ptree_subtree, NULLARG, (NULL, ""))                                                        \
  X(S, lam_ptree_set, NULLARG, (f->tree, "x", NULL))                                                  \
  X(S, lam_ptree_set_subtree, NULLARG, (f->tree, "x", NULL))                                          \
  X(S, lam_ptree_append, INVALID_ARGUMENT, (f->tree, f->t)) /* a dict */                           \
  X(S, lam_ptree_append_subtree, NULLARG, (NULL, f->tree))                                            \
  X(S, lam_ptree_remove, NOT_FOUND, (f->tree, "nope"))                                             \
  X(E, lam_ptree_leaf_count, OK, lam_ptree_leaf_count(NULL) == 0)                                  \
  X(E, lam_ptree_param_count, OK, lam_ptree_param_count(NULL) == 0)                                \
  X(E, lam_ptree_child_count, OK, lam_ptree_child_count(NULL) == 0)                                \
  X(E, lam_ptree_child_key, OK, lam_ptree_child_key(f->tree, 99) == NULL)                          \
  X(S, lam_ptree_leaf, NOT_FOUND, (f->tree, 99, &f->s1, &f->out))                           \
  X(S, lam_ptree_foreach, NULLARG, (f->tree, NULL, NULL))                                             \
  X(P, lam_ptree_map, NULLARG, (f->tree, NULL, NULL))                                                 \
  X(P, lam_ptree_copy, NULLARG, (NULL))                                                               \
  X(S, lam_ptree_freeze, NULLARG, (NULL, ""))                                                         \
  X(S, lam_ptree_unfreeze, NULLARG, (NULL, ""))                                                       \
  X(E, lam_ptree_is_frozen, OK, lam_ptree_is_frozen(NULL, "w") == 0)                               \
  X(E, lam_ptree_leaf_frozen, OK, lam_ptree_leaf_frozen(f->tree, 99) == 0)                         \
  /* quant.h */                                                                                    \
  X(E, lam_quantize_defaults, OK, lam_quantize_defaults().bits == 4)                               \
  X(S, lam_quantize, NULLARG, (NULL, 64, 4, &f->out, &f->out2, &f->out3))                          \
  X(P, lam_dequantize, NULLARG, (NULL, f->t, f->t, 64, 4))                                         \
  X(P, lam_quantized_matmul, NULLARG, (NULL, f->t, f->t, f->t, 64, 4))                             \
  X(P, lam_nn_quantized_linear, SHAPE, (48, 4, NULL))                                              \
  X(P, lam_nn_quantized_embedding, INVALID_ARGUMENT, (0, 64, false, NULL))                         \
  X(S, lam_quantize_layer, NULLARG, (NULL, f->vars, NULL, NULL))                                   \
  /* reduce.h */                                                                                   \
  X(P, lam_sum, INVALID_ARGUMENT, (f->t, 1, (const int[]){5}, 0))                                  \
  X(P, lam_mean, NULLARG, (NULL, 0, NULL, 0))                                                         \
  X(P, lam_max, NULLARG, (NULL, 0, NULL, 0))                                                          \
  X(P, lam_min, NULLARG, (NULL, 0, NULL, 0))                                                          \
  X(P, lam_prod, NULLARG, (NULL, 0, NULL, 0))                                                         \
  X(P, lam_var, NULLARG, (NULL, 0, NULL, 1.0, 0))                                                     \
  X(P, lam_logsumexp, NULLARG, (NULL, 0, NULL, 0))                                                    \
  X(P, lam_argmax, NULLARG, (NULL, 0, 0))                                                             \
  X(P, lam_argmin, NULLARG, (NULL, 0, 0))                                                             \
  X(P, lam_softmax, NULLARG, (NULL, -1))                                                              \
  X(P, lam_log_softmax, NULLARG, (NULL, -1))                                                          \
  /* regularize.h */                                                                               \
  X(E, lam_dropout_defaults, OK, lam_dropout_defaults().rate == 0.5)                                \
  X(P, lam_nn_dropout, INVALID_ARGUMENT, (&(lam_dropout_opts){.rate = 1.5}))                                                    \
  X(P, lam_nn_dropout2d, INVALID_ARGUMENT, (&(lam_dropout_opts){.rate = -0.5}))                                                 \
  X(P, lam_nn_dropout3d, INVALID_ARGUMENT, (&(lam_dropout_opts){.rate = NAN}))                                                  \
  X(P, lam_dropout, NULLARG, (NULL, 0.5, f->key, false))                                              \
  X(P, lam_dropblock, NULLARG, (NULL, 0.1, 3, 1.0, f->key))                                           \
  X(E, lam_dropblock_defaults, OK, lam_dropblock_defaults().block_size == 7)                        \
  X(P, lam_nn_dropblock, INVALID_ARGUMENT, (&(lam_dropblock_opts){.rate = 2.0}))                                          \
  X(P, lam_stochastic_depth, NULLARG, (NULL, 0.1, LAM_STOCHASTIC_DEPTH_ROW, f->key))                  \
  X(E, lam_stochastic_depth_defaults, OK, lam_stochastic_depth_defaults().rate == 0.0)              \
  X(P, lam_nn_stochastic_depth, INVALID_ARGUMENT, (&(lam_stochastic_depth_opts){.rate = NAN}))                 \
  X(S, lam_stochastic_depth_rates, NULLARG, (0.1, 0.0, 4, NULL))                                      \
  /* rng.h */                                                                                      \
  X(E, lam_rng_key_make, OK, ((void)lam_rng_key_make(UINT64_MAX), 1))                              \
  X(S, lam_rng_split, INVALID_ARGUMENT, (f->key, -1, f->keys))                                     \
  X(E, lam_rng_fold_in, OK, ((void)lam_rng_fold_in(f->key, UINT32_MAX), 1))                        \
  X(E, lam_rng_fold_in_str, OK, ((void)lam_rng_fold_in_str(f->key, NULL), 1))                      \
  X(E, lam_philox4x32_10, OK, (lam_philox4x32_10((uint32_t[4]){0}, (uint32_t[2]){0}, (uint32_t[4]){0}), 1)) \
  X(P, lam_random_bits, NULLARG, (NULL, f->key, 1, f->shape))                                         \
  X(P, lam_random_uniform, INVALID_ARGUMENT, (f->ctx, f->key, LAM_F32, 1, f->shape, 1.0, 0.0))     \
  X(P, lam_random_normal, INVALID_ARGUMENT, (f->ctx, f->key, LAM_F32, 1, f->shape, 0.0, -1.0))     \
  X(P, lam_random_truncated_normal, INVALID_ARGUMENT, (f->ctx, f->key, LAM_F32, 1, f->shape, 1.0, -1.0, 1.0)) \
  X(P, lam_random_bernoulli, INVALID_ARGUMENT, (f->ctx, f->key, 1.5, 1, f->shape))                 \
  X(P, lam_random_randint, INVALID_ARGUMENT, (f->ctx, f->key, 5, 5, 1, f->shape))                  \
  X(P, lam_random_philox, NULLARG, (NULL, f->key))                                                    \
  X(S, lam_random_normal_host, NULLARG, (f->key, 4, NULL))                                            \
  /* rnn.h */                                                                                      \
  X(E, lam_rnn_defaults, OK, ((void)lam_rnn_defaults(), 1))                                        \
  X(P, lam_nn_rnn, INVALID_ARGUMENT, (0, 4, NULL))                                                 \
  X(P, lam_nn_lstm, INVALID_ARGUMENT, (0, 4, NULL))                                                \
  X(P, lam_nn_gru, INVALID_ARGUMENT, (0, 4, NULL))                                                 \
  X(S, lam_nn_rnn_apply, NULLARG, (NULL, NULL, f->t, NULL, NULL, NULL, &f->out, &f->out2))            \
  X(S, lam_nn_lstm_apply, NULLARG, (NULL, NULL, f->t, NULL, NULL, NULL, NULL, &f->out, &f->out2, &f->out3)) \
  X(S, lam_nn_gru_apply, NULLARG, (NULL, NULL, f->t, NULL, NULL, NULL, &f->out, &f->out2))            \
  X(E, lam_rnn_cell_defaults, OK, ((void)lam_rnn_cell_defaults(), 1))                              \
  X(P, lam_nn_rnn_cell, INVALID_ARGUMENT, (0, 4, NULL))                                            \
  X(P, lam_nn_lstm_cell, INVALID_ARGUMENT, (0, 4, NULL))                                           \
  X(P, lam_nn_gru_cell, INVALID_ARGUMENT, (0, 4, NULL))                                            \
  X(S, lam_nn_rnn_cell_apply, NULLARG, (NULL, NULL, f->t, NULL, &f->out))                             \
  X(S, lam_nn_lstm_cell_apply, NULLARG, (NULL, NULL, f->t, NULL, NULL, &f->out, &f->out2))            \
  X(S, lam_nn_gru_cell_apply, NULLARG, (NULL, NULL, f->t, NULL, &f->out))                             \
  /* runtime.h */                                                                                  \
  X(S, lam_devices_list, NULLARG, (NULL, 0, NULL))                                                    \
  X(S, lam_device_choose, DEVICE_NOT_FOUND, ("no-such-device-anywhere", &f->i))                    \
  X(E, lam_ctx_defaults, OK, ((void)lam_ctx_defaults(), 1))                                        \
  X(S, lam_ctx_create, NULLARG, (NULL, NULL))                                                         \
  X(E, lam_ctx_free, OK, (lam_ctx_free(NULL), 1))                                                  \
  X(P, lam_ctx_device, NULLARG, (NULL))                                           \
  X(S, lam_ctx_stats, NULLARG, (NULL, &f->stats))                                                     \
  X(S, lam_ctx_finish, NULLARG, (NULL))                                                               \
  X(S, lam_ctx_trim, NULLARG, (NULL))                                                                 \
  X(E, lam_ctx_cache_dir, OK, strcmp(lam_ctx_cache_dir(NULL), "") == 0)                                     \
  /* tune.h */                                                                                     \
  X(E, lam_tune_defaults, OK, lam_tune_defaults().budget_s == 0)                                    \
  X(S, lam_ctx_tune, INVALID_ARGUMENT, (f->ctx, &(lam_tune_opts){.budget_s = -1}, NULL))          \
  X(S, lam_ctx_tuning, NULLARG, (NULL, NULL, 0))                                                      \
  /* shape.h */                                                                                    \
  X(P, lam_reshape, SHAPE, (f->t, 1, (const int64_t[]){5}))                                        \
  X(P, lam_unsqueeze, INVALID_ARGUMENT, (f->t, 9))                                                 \
  X(P, lam_squeeze, INVALID_ARGUMENT, (f->t, 9))                                                   \
  X(P, lam_flatten, INVALID_ARGUMENT, (f->t, 5, 9))                                                \
  X(P, lam_permute, NULLARG, (f->t, NULL))                                                            \
  X(P, lam_transpose, INVALID_ARGUMENT, (f->t, 0, 9))                                              \
  X(P, lam_contiguous, NULLARG, (NULL))                                                               \
  X(P, lam_broadcast_to, SHAPE, (f->t, 1, (const int64_t[]){5}))                                   \
  X(P, lam_concat, NULLARG, (NULL, 2, 0))                                                             \
  X(P, lam_stack, NULLARG, (NULL, 2, 0))                                                              \
  X(S, lam_split, NULLARG, (f->t, 0, 2, NULL, NULL))                                                  \
  X(P, lam_slice, NULLARG, (NULL, f->shape, f->shape, NULL))                                          \
  X(P, lam_slice_axis, INVALID_ARGUMENT, (f->t, 0, 0, 2, 0))                                       \
  X(P, lam_pad, NULLARG, (f->t, NULL, 0, 0.0))                                                        \
  X(P, lam_gather, NULLARG, (f->t, 0, NULL))                                                          \
  X(P, lam_take, NULLARG, (f->t, NULL, 0))                                                            \
  X(P, lam_index_select, NULLARG, (f->t, 0, NULL))                                                    \
  X(P, lam_scatter_add, NULLARG, (f->t, 0, NULL, f->t))                                               \
  X(P, lam_one_hot, INVALID_ARGUMENT, (f->ti, 0, LAM_F32))                                         \
  X(P, lam_tril, NULLARG, (NULL, 0))                                                                  \
  X(P, lam_triu, NULLARG, (NULL, 0))                                                                  \
  X(P, lam_tril_mask, NULLARG, (NULL, 2, 2, 0))                                                       \
  X(P, lam_triu_mask, NULLARG, (NULL, 2, 2, 0))                                                       \
  /* status.h */                                                                                   \
  X(E, lam_status_string, OK, strcmp(lam_status_string((lam_status)12345), "unknown status") == 0) \
  X(E, lam_last_error, OK, lam_last_error() != NULL)                                               \
  X(E, lam_last_status, OK, lam_last_status() == LAM_OK)                                           \
  X(E, lam_error_clear, OK, (lam_error_clear(), 1))                                                \
  X(S, lam_error_set, NULLARG, (LAM_ERR_SHAPE, NULL))                                              \
  /* tensor.h */                                                                                   \
  X(E, lam_dtype_size, OK, lam_dtype_size((lam_dtype)99) == 0)                                     \
  X(E, lam_dtype_name, OK, lam_dtype_name((lam_dtype)99) != NULL)                                  \
  X(E, lam_dtype_is_float, OK, lam_dtype_is_float((lam_dtype)99) == 0)                             \
  X(P, lam_tensor_from_host, NULLARG, (f->ctx, LAM_F32, 1, f->shape, NULL))                           \
  X(P, lam_tensor_empty, SHAPE, (f->ctx, LAM_F32, 1, (const int64_t[]){-1}))                       \
  X(P, lam_tensor_zeros, DTYPE, (f->ctx, (lam_dtype)99, 1, f->shape))                              \
  X(P, lam_tensor_full, INVALID_ARGUMENT, (f->ctx, LAM_I32, 1, f->shape, NAN))                     \
  X(P, lam_tensor_scalar, NULLARG, (NULL, LAM_F32, 1.0))                                              \
  X(P, lam_tensor_arange, INVALID_ARGUMENT, (f->ctx, LAM_F32, 0.0, 1.0, 0.0))                      \
  X(P, lam_tensor_zeros_like, NULLARG, (NULL))                                                        \
  X(P, lam_tensor_full_like, INVALID_ARGUMENT, (f->ti, NAN))                                       \
  X(P, lam_tensor_copy, NULLARG, (NULL))                                                              \
  X(P, lam_tensor_cast, DTYPE, (f->t, (lam_dtype)99))                                              \
  X(P, lam_cast, NULLARG, (NULL, LAM_F32))                                                            \
  X(P, lam_tensor_reshape, SHAPE, (f->t, 1, (const int64_t[]){7}))                                 \
  X(P, lam_tensor_slice0, SHAPE, (f->t, 1, 0))                                          \
  X(E, lam_tensor_retain, OK, lam_tensor_retain(NULL) == NULL)                                     \
  X(E, lam_tensor_free, OK, (lam_tensor_free(NULL), 1))                                            \
  X(S, lam_tensor_to_host, INVALID_ARGUMENT, (f->t, f->buf, 1))                                    \
  X(S, lam_tensor_write, NULLARG, (f->t, NULL, 24))                                                   \
  X(S, lam_tensor_item, SHAPE, (f->t, &f->d))                                                      \
  X(S, lam_tensor_read_async, INVALID_ARGUMENT, (f->t, f->buf, 1, NULL, NULL, (lam_read_handle *[1]){NULL})) \
  X(S, lam_read_handle_poll, NULLARG, (NULL, (bool[1]){false}))                                    \
  X(S, lam_read_handle_wait, NULLARG, (NULL))                                                      \
  X(E, lam_read_handle_free, OK, (lam_read_handle_free(NULL), 1))                                  \
  X(E, lam_tensor_ndim, OK, lam_tensor_ndim(NULL) == -1)                                           \
  X(E, lam_tensor_shape, OK, lam_tensor_shape(NULL) == NULL)                                       \
  X(E, lam_tensor_dim, OK, lam_tensor_dim(f->t, 9) == -1)                                          \
  X(E, lam_tensor_numel, OK, lam_tensor_numel(NULL) == 0)                                          \
  X(E, lam_tensor_nbytes, OK, lam_tensor_nbytes(NULL) == 0)                                        \
  X(E, lam_tensor_dtype, OK, lam_tensor_dtype(NULL) == LAM_F32)                                    \
  X(E, lam_tensor_ctx, OK, lam_tensor_ctx(NULL) == NULL)                                           \
  X(E, lam_tensor_same_shape, OK, lam_tensor_same_shape(NULL, f->t) == 0)                          \
  /* tokenizer.h */                                                                                \
  X(S, lam_tokenizer_load, NULLARG, (NULL, &f->tok_out))                                           \
  X(E, lam_tokenizer_free, OK, (lam_tokenizer_free(NULL), 1))                                      \
  X(E, lam_tokenizer_vocab_count, OK, lam_tokenizer_vocab_count(NULL) == 0)                        \
  X(E, lam_tokenizer_token_id, OK, lam_tokenizer_token_id(f->tok, NULL) == -1)                     \
  X(E, lam_tokenizer_token, OK, lam_tokenizer_token(f->tok, -1) == NULL)                           \
  X(E, lam_tokenizer_encode_defaults, OK, lam_tokenizer_encode_defaults().max_length == 512)       \
  X(S, lam_tokenizer_encode_batch, INVALID_ARGUMENT, (f->tok, (const char *const[]){"bad \xff"}, 1, NULL, &f->enc)) \
  X(E, lam_encoding_free, OK, (lam_encoding_free(NULL), 1))                                        \
  /* train.h */                                                                                    \
  X(P, lam_objective_cross_entropy, NULLARG, (NULL, f->ti, NULL))                                     \
  X(P, lam_objective_mse, NULLARG, (NULL, f->t, NULL))                                                \
  X(E, lam_train_step_defaults, OK, ((void)lam_train_step_defaults(), 1))                          \
  X(S, lam_train_step, NULLARG, (NULL, f->vars, f->opt, f->t, f->t, NULL, &f->d))                     \
  X(S, lam_accuracy, NULLARG, (NULL, f->ti, &f->d))                                                   \
  X(S, lam_predict, NULLARG, (NULL, f->vars, f->t, 2, &f->out))                                       \
  X(S, lam_predict_async, NULLARG, (NULL, f->vars, f->t, 2, f->buf, 4, NULL, NULL, (lam_read_handle *[1]){NULL})) \
  X(E, lam_fit_defaults, OK, ((void)lam_fit_defaults(), 1))                                        \
  X(S, lam_fit, NULLARG, (NULL, f->vars, f->opt, f->t, f->t, NULL))                                   \
  X(S, lam_fit_loader, INVALID_ARGUMENT, (f->layer, f->vars, f->opt, f->loader, &(lam_fit_opts){.epochs = -1})) \
  X(S, lam_evaluate_loader, NULLARG, (f->layer, f->vars, f->loader, NULL, NULL, &f->d))             \
  /* version.h */                                                                                  \
  X(E, lam_version, OK, lam_version(NULL, NULL, NULL) != NULL)

typedef enum { K_P, K_S, K_E } kind;
typedef struct row {
  const char *name;
  kind k;
  lam_status want;
  const void *(*call_p)(fx *f);
  lam_status (*call_s)(fx *f);
  int (*call_e)(fx *f);
} row;

#define LAM_ERR_OK LAM_OK
#define LAM_ERR_NULLARG LAM_ERR_NULL
#define DEF_P(fn, args) static const void *call_##fn(fx *f) { (void)f; return (const void *)fn args; }
#define DEF_S(fn, args) static lam_status call_##fn(fx *f) { (void)f; return fn args; }
#define DEF_E(fn, expr) static int call_##fn(fx *f) { (void)f; return (expr) ? 1 : 0; }
#define DEF(kind, fn, want, args) DEF_##kind(fn, args)
BAD_INPUT_ROWS(DEF)

#define ROW_P(fn, want) {#fn, K_P, LAM_ERR_##want, call_##fn, NULL, NULL},
#define ROW_S(fn, want) {#fn, K_S, LAM_ERR_##want, NULL, call_##fn, NULL},
#define ROW_E(fn, want) {#fn, K_E, LAM_OK, NULL, NULL, call_##fn},
#define ROW(kind, fn, want, args) ROW_##kind(fn, want)
static const row rows[] = {BAD_INPUT_ROWS(ROW)};

static void fx_setup(fx *f) {
  memset(f, 0, sizeof *f);
  f->ctx = tu_ctx();
  f->ctx2 = tu_ctx();
  f->shape[0] = 2;
  f->shape[1] = 3;
  f->t = lam_tensor_full(f->ctx, LAM_F32, 2, f->shape, 1.0);
  f->ti = lam_tensor_zeros(f->ctx, LAM_I32, 1, f->shape);
  f->other = lam_tensor_full(f->ctx2, LAM_F32, 2, f->shape, 1.0);
  f->tree = lam_ptree_dict();
  cr_assert(f->t && f->ti && f->other && f->tree);
  cr_assert_eq(lam_ptree_set(f->tree, "w", f->t), LAM_OK);
  f->layer = lam_nn_linear(3, 4, NULL);
  cr_assert(f->layer, "%s", lam_last_error());
  f->key = lam_rng_key_make(7);
  cr_assert_eq(lam_layer_init(f->layer, f->ctx, f->key, LAM_F32, &f->vars), LAM_OK, "%s", lam_last_error());
  f->opt = lam_sgd(NULL);
  f->meta = lam_metadata_create();
  f->kv = lam_kv_cache_create();
  f->aux = lam_aux_create();
  f->sums = lam_summaries_create();
  cr_assert(f->opt && f->meta && f->kv && f->aux && f->sums);
  f->apply = lam_apply_defaults();
  f->apply.summaries = f->sums;
  f->sched = lam_schedule_constant(0.1);
  f->init = lam_init_ones();
  /* data.h: a dataset of 4 samples and a loader of batches of 2 over it */
  cr_assert_eq(lam_dataset_from_arrays(4, 2, ds_fields, (const void *const[]){ds_x, ds_y}, NULL, &f->ds), LAM_OK,
               "%s", lam_last_error());
  cr_assert_eq(lam_loader_create(f->ctx, f->ds, &(lam_loader_opts){.batch_size = 2, .no_prefetch = true}, &f->loader),
               LAM_OK, "%s", lam_last_error());
  f->metric = lam_metric_create(LAM_METRIC_ACCURACY, NULL);
  cr_assert(f->metric, "%s", lam_last_error());
  /* models_text.h: tiny models and their parameters */
  f->ids = lam_tensor_zeros(f->ctx, LAM_I32, 2, f->shape);
  f->bert = lam_models_bert(&(lam_models_bert_opts){.vocab_size = 8, .hidden_size = 4, .num_hidden_layers = 1,
                                                    .num_attention_heads = 1, .intermediate_size = 4,
                                                    .max_position_embeddings = 4});
  f->gpt2 = lam_models_gpt2(&(lam_models_gpt2_opts){.vocab_size = 8, .n_positions = 4, .n_embd = 4, .n_layer = 1,
                                                    .n_head = 1});
  cr_assert(f->ids && f->bert && f->gpt2, "%s", lam_last_error());
  cr_assert_eq(lam_layer_init(f->bert, f->ctx, f->key, LAM_F32, &f->bert_vars), LAM_OK, "%s", lam_last_error());
  cr_assert_eq(lam_layer_init(f->gpt2, f->ctx, f->key, LAM_F32, &f->gpt2_vars), LAM_OK, "%s", lam_last_error());
  f->gpt2_cache = lam_models_gpt2_cache_create(f->gpt2);
  cr_assert(f->gpt2_cache, "%s", lam_last_error());
  cr_assert_eq(lam_tokenizer_load(tu_data_path("tokenizer_variant.json"), &f->tok), LAM_OK, "%s", lam_last_error());
}

static void fx_teardown(fx *f) {
  lam_tokenizer_free(f->tok);
  lam_models_gpt2_cache_free(f->gpt2_cache);
  lam_vars_free(f->gpt2_vars);
  lam_vars_free(f->bert_vars);
  lam_layer_free(f->gpt2);
  lam_layer_free(f->bert);
  lam_tensor_free(f->ids);
  lam_metric_free(f->metric);
  lam_loader_free(f->loader);
  lam_dataset_free(f->ds);
  lam_summaries_free(f->sums);
  lam_aux_free(f->aux);
  lam_kv_cache_free(f->kv);
  lam_metadata_free(f->meta);
  lam_optimizer_free(f->opt);
  lam_vars_free(f->vars);
  lam_layer_free(f->layer);
  lam_ptree_free(f->tree);
  lam_tensor_free(f->other);
  lam_tensor_free(f->ti);
  lam_tensor_free(f->t);
  lam_ctx_free(f->ctx2);
  lam_ctx_free(f->ctx);
}

/* Runs one row; returns 0 and explains in why when it fails. */
static int run_row(fx *f, const row *r, char *why, size_t n) {
  lam_stats before, after;
  f->out = f->out2 = f->out3 = f->outs[0] = f->outs[1] = NULL;
  f->tree_out = NULL;
  f->vars_out = NULL;
  f->meta_out = NULL;
  f->ds_out = f->ds_out2 = NULL;
  f->loader_out = NULL;
  f->tok_out = NULL;
  memset(&f->enc, 0, sizeof f->enc);
  lam_error_clear();
  cr_assert_eq(lam_ctx_stats(f->ctx, &before), LAM_OK);
  int ok = 1;
  if (r->k == K_P) {
    const void *p = r->call_p(f);
    if (p) ok = 0, snprintf(why, n, "returned a result, not NULL");
    else if (lam_last_status() != r->want)
      ok = 0, snprintf(why, n, "status %s, expected %s (\"%s\")", lam_status_string(lam_last_status()),
                       lam_status_string(r->want), lam_last_error());
  } else if (r->k == K_S) {
    lam_status st = r->call_s(f);
    if (st != r->want)
      ok = 0, snprintf(why, n, "returned %s, expected %s (\"%s\")", lam_status_string(st),
                       lam_status_string(r->want), lam_last_error());
    else if (f->out || f->out2 || f->out3 || f->outs[0] || f->tree_out || f->vars_out || f->meta_out || f->ds_out ||
             f->ds_out2 || f->loader_out || f->tok_out || f->enc.ids || f->enc.batch)
      ok = 0, snprintf(why, n, "wrote an output on failure");
  } else {
    if (!r->call_e(f)) ok = 0, snprintf(why, n, "the documented fallback did not hold");
    else if (lam_last_status() != LAM_OK && strncmp(r->name, "lam_init_", 9) != 0 &&
             strncmp(r->name, "lam_schedule_", 13) != 0)
      ok = 0, snprintf(why, n, "recorded an error: \"%s\"", lam_last_error());
  }
  if (ok && r->k != K_E && !strstr(lam_last_error(), r->name))
    ok = 0, snprintf(why, n, "the message does not name it: \"%s\"", lam_last_error());
  cr_assert_eq(lam_ctx_stats(f->ctx, &after), LAM_OK);
  if (ok && (after.live_tensors != before.live_tensors || after.live_bytes != before.live_bytes))
    ok = 0, snprintf(why, n, "leaked %lld tensors / %lld bytes",
                     (long long)(after.live_tensors - before.live_tensors),
                     (long long)(after.live_bytes - before.live_bytes));
  return ok;
}

Test(bad_input, every_public_function) {
  fx f;
  fx_setup(&f);
  tu_mark mark = tu_mark_now(f.ctx);
  int n = (int)(sizeof rows / sizeof rows[0]), failed = 0;
  for (int i = 0; i < n; i++) {
    char why[1024];
    if (!run_row(&f, &rows[i], why, sizeof why)) {
      failed++;
      cr_log_error("%s: %s", rows[i].name, why);
    }
  }
  tu_assert_no_leak(f.ctx, mark);
  cr_log_info("bad input: %d functions, %d failed", n, failed);
  cr_expect_eq(failed, 0, "%d of %d functions mishandle bad input (listed above)", failed, n);
  fx_teardown(&f);
}

/* The function list for tests/check_bad_input.sh: one name per line. */
Test(bad_input, list) {
  const char *path = getenv("LAMINA_BAD_INPUT_LIST");
  if (!path) return;
  FILE *out = fopen(path, "w");
  cr_assert(out, "cannot write %s", path);
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) fprintf(out, "%s\n", rows[i].name);
  fclose(out);
}

/* A subtree belongs to one tree: attaching it twice, or inside itself, is
 * refused (it used to give a double free or a cycle), and on failure the
 * caller still owns the child. */
Test(bad_input, ptree_child_owned_once) {
  lam_ptree *a = lam_ptree_dict(), *b = lam_ptree_dict(), *sub = lam_ptree_dict(), *list = lam_ptree_list();
  cr_assert_eq(lam_ptree_set_subtree(a, "s", sub), LAM_OK);
  cr_assert_eq(lam_ptree_set_subtree(a, "s", sub), LAM_OK, "the same child at the same path is a no-op");
  tu_assert_status(lam_ptree_set_subtree(b, "s", sub), LAM_ERR_INVALID_ARGUMENT, "already part of a tree");
  tu_assert_status(lam_ptree_append_subtree(list, sub), LAM_ERR_INVALID_ARGUMENT, "already part of a tree");
  tu_assert_status(lam_ptree_set_subtree(sub, "loop", a), LAM_ERR_INVALID_ARGUMENT, "cycle");
  tu_assert_status(lam_ptree_set_subtree(a, "self", a), LAM_ERR_INVALID_ARGUMENT, "cycle");
  tu_assert_status(lam_ptree_append_subtree(list, list), LAM_ERR_INVALID_ARGUMENT, "cycle");
  cr_assert_eq(lam_ptree_child_count(b), 0);
  lam_ptree_free(list);
  lam_ptree_free(b);
  lam_ptree_free(a);
}
