/* torch_export.c: the lamina half of tools/check_torch_load.py (ctest
 * "torch_load"). Builds linear(3, 4) + batch_norm(4), runs two training
 * passes so the batch-norm state (running_mean, running_var,
 * num_batches_tracked) moves, and writes into the folder argv[1]:
 * model.safetensors (lam_vars_save: params and state as one state_dict) and
 * io.safetensors ("x", and "y", the model's output on x in evaluation). */
#include <lamina.h>
#include <stdio.h>

static int fail(const char *what) {
  fprintf(stderr, "torch_export: %s: %s\n", what, lam_last_error());
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: torch_export OUT_DIR\n");
    return 2;
  }
  char mpath[4096], iopath[4096];
  snprintf(mpath, sizeof mpath, "%s/model.safetensors", argv[1]);
  snprintf(iopath, sizeof iopath, "%s/io.safetensors", argv[1]);
  lam_ctx *ctx = NULL;
  if (lam_ctx_create(NULL, &ctx) != LAM_OK) return fail("lam_ctx_create");
  lam_layer *m = lam_nn_sequential((lam_layer *[]){lam_nn_linear(3, 4, NULL), lam_nn_batch_norm(4, NULL)}, 2);
  lam_vars *v = NULL;
  if (lam_layer_init(m, ctx, lam_rng_key_make(5), LAM_F32, &v) != LAM_OK) return fail("lam_layer_init");
  lam_apply_opts train = {.training = true};
  for (int step = 0; step < 2; step++) {
    lam_tensor *xb = lam_random_normal(ctx, lam_rng_key_make(10 + (uint64_t)step), LAM_F32, 2,
                                       (int64_t[]){8, 3}, 1.0, 2.0);
    lam_tensor *yb = NULL;
    if (!xb || lam_layer_apply(m, v, xb, &train, &yb) != LAM_OK) return fail("training pass");
    lam_tensor_free(xb);
    lam_tensor_free(yb);
  }
  lam_tensor *x = lam_random_normal(ctx, lam_rng_key_make(99), LAM_F32, 2, (int64_t[]){5, 3}, 0.0, 1.0);
  lam_tensor *y = NULL;
  if (!x || lam_layer_apply(m, v, x, NULL, &y) != LAM_OK) return fail("evaluation pass");
  if (lam_vars_save(v, mpath, NULL) != LAM_OK) return fail("lam_vars_save");
  lam_ptree *io = lam_ptree_dict();
  lam_ptree_set(io, "x", x);
  lam_ptree_set(io, "y", y);
  if (lam_safetensors_save(iopath, io, NULL) != LAM_OK) return fail("lam_safetensors_save");
  lam_ptree_free(io);
  lam_tensor_free(x);
  lam_tensor_free(y);
  lam_vars_free(v);
  lam_layer_free(m);
  lam_ctx_free(ctx);
  printf("torch_export: wrote %s and %s\n", mpath, iopath);
  return 0;
}
