/* test_state_dict.c: a PyTorch state_dict saved as safetensors (f32 and
 * f16 files, tools/gen_state_dict_golden.py) loads by key into the
 * equivalent lamina model and gives PyTorch's outputs
 * (tests/data/torch_mlp_golden.safetensors); a model with other
 * shapes or names is refused with every offending key named. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static lam_layer *mlp(int64_t hidden) {
  return lam_nn_sequential((lam_layer *[]){lam_nn_linear(6, hidden, NULL), lam_nn_relu(),
                                        lam_nn_linear(hidden, 3, NULL)}, 3);
}

static void check_file(const char *file, const char *want) {
  lam_ctx *ctx = tu_ctx();
  tu_golden *gold = tu_golden_load("torch_mlp_golden.safetensors");
  const char *path = tu_data_path(file);
  lam_layer *m = mlp(5);
  lam_vars *v = NULL;
  cr_assert_eq(lam_layer_init(m, ctx, lam_rng_key_make(0), LAM_F32, &v), LAM_OK);
  cr_assert_eq(lam_ptree_load_into(lam_vars_params(v), path, NULL), LAM_OK, "%s", lam_last_error());
  lam_tensor *x = tu_golden_tensor(ctx, LAM_F32, gold, "mlp.x");
  lam_tensor *y = NULL;
  cr_assert_eq(lam_layer_apply(m, v, x, NULL, &y), LAM_OK, "%s", lam_last_error());
  double *got = tu_to_f64(y);
  tu_assert_close_f64(got, tu_golden_values(gold, "%s", want), 12, 1e-6, 1e-5, file);
  free(got);
  lam_tensor_free(x);
  lam_tensor_free(y);
  lam_vars_free(v);
  lam_layer_free(m);
  tu_golden_free(gold);
  lam_ctx_free(ctx);
}

Test(state_dict, pytorch_f32_weights_give_pytorch_outputs) { check_file("torch_mlp_f32.safetensors", "mlp.y_f32"); }

Test(state_dict, pytorch_f16_weights_load_into_f32_model) { check_file("torch_mlp_f16.safetensors", "mlp.y_f16"); }

Test(state_dict, mismatched_model_is_refused_with_keys_named) {
  lam_ctx *ctx = tu_ctx();
  const char *path = tu_data_path("torch_mlp_f32.safetensors");
  lam_layer *m = mlp(4); /* hidden 4 instead of 5 */
  lam_vars *v = NULL;
  cr_assert_eq(lam_layer_init(m, ctx, lam_rng_key_make(0), LAM_F32, &v), LAM_OK);
  float *before = tu_read_f32(lam_ptree_get(lam_vars_params(v), "2.bias"));
  tu_mark mk = tu_mark_now(ctx);
  cr_assert_neq(lam_ptree_load_into(lam_vars_params(v), path, NULL), LAM_OK);
  cr_assert(strstr(lam_last_error(), "0.weight") && strstr(lam_last_error(), "2.weight"), "%s", lam_last_error());
  float *after = tu_read_f32(lam_ptree_get(lam_vars_params(v), "2.bias"));
  cr_assert(memcmp(before, after, 3 * sizeof(float)) == 0, "nothing written on error");
  tu_assert_no_leak(ctx, mk);
  free(before);
  free(after);
  lam_vars_free(v);
  lam_layer_free(m);
  lam_ctx_free(ctx);
}
