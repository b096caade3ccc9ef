/* quickstart.c: the README's program. Build a model, train it, save its
 * parameters, load them into a fresh model, predict. */
#include <lamina.h>
#include <stdio.h>

#define CHECK(call)                                   \
  if ((call) != LAM_OK) {                             \
    fprintf(stderr, "error: %s\n", lam_last_error()); \
    return 1;                                         \
  }

int main(void) {
  lam_ctx *ctx = NULL;
  CHECK(lam_ctx_create(NULL, &ctx)); /* default device, or LAMINA_DEVICE */

  /* A model: layers compose; parameters get PyTorch's names ("0.weight"). */
  lam_layer *model = lam_nn_sequential(
      (lam_layer *[]){lam_nn_linear(2, 32, NULL), lam_nn_relu(), lam_nn_linear(32, 2, NULL)}, 3);
  lam_vars *vars = NULL;
  CHECK(lam_layer_init(model, ctx, lam_rng_key_make(0), LAM_F32, &vars));

  /* Data: is the point inside the unit circle? */
  lam_rng_key key = lam_rng_key_make(1);
  lam_tensor *x = lam_random_uniform(ctx, key, LAM_F32, 2, (int64_t[]){512, 2}, -1.5, 1.5);
  lam_tensor *sq = lam_square(x);
  lam_tensor *r2 = lam_sum(sq, 1, (int[]){1}, 0);
  lam_tensor *inside = lam_compare_scalar(LAM_LT, r2, 1.0);
  lam_tensor *y = lam_tensor_cast(inside, LAM_I32);

  /* Train: Adam, cross entropy, 30 epochs of batches of 32. */
  lam_adam_opts adam = lam_adam_defaults();
  adam.lr = 1e-2;
  lam_optimizer *opt = lam_adam(&adam);
  lam_fit_opts fit = lam_fit_defaults();
  fit.epochs = 30;
  CHECK(lam_fit(model, vars, opt, x, y, &fit));

  /* Save the parameters (safetensors, loadable by PyTorch) and load them back. */
  CHECK(lam_safetensors_save("quickstart.safetensors", lam_vars_params(vars), NULL));
  lam_vars *loaded = NULL;
  CHECK(lam_layer_init(model, ctx, lam_rng_key_make(7), LAM_F32, &loaded));
  CHECK(lam_ptree_load_into(lam_vars_params(loaded), "quickstart.safetensors", NULL));

  /* Predict with the loaded parameters. */
  lam_tensor *logits = NULL;
  double acc = 0;
  CHECK(lam_predict(model, loaded, x, 0, &logits));
  CHECK(lam_accuracy(logits, y, &acc));
  printf("training accuracy after reload: %.3f\n", acc);

  lam_tensor *tensors[] = {x, sq, r2, inside, y, logits};
  for (int i = 0; i < 6; i++) lam_tensor_free(tensors[i]); /* lam_tensor_free(NULL) is a no-op */
  lam_optimizer_free(opt);
  lam_vars_free(vars);
  lam_vars_free(loaded);
  lam_layer_free(model);
  lam_ctx_free(ctx);
  return acc > 0.9 ? 0 : 1;
}
