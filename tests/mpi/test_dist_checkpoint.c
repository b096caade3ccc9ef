/* tests/mpi/test_dist_checkpoint.c: lam_dist_save writes a checkpoint from
 * rank 0 only and every rank returns its status; lam_dist_load restores it
 * on every rank (src/dist/dist.c over src/train/checkpoint.c). Run with
 * mpirun -np 2 (ctest "mpi_checkpoint_np2") and the file path as argument:
 *   - the ranks train data-parallel for a few steps (so the optimizer has
 *     momentum state), lam_dist_save(path);
 *   - the file exists once every rank has returned, and a rank that is not
 *     0 never wrote: the save of an unwritable path fails on every rank
 *     with rank 0's message;
 *   - every rank loads it into fresh vars and optimizer (lam_dist_load):
 *     the parameters, step and key equal the trained ones;
 *   - training on from the loaded state equals training on without the
 *     reload (the optimizer state came back too). */
#include <unistd.h>

#include "dist_common.h"

static void train(lam_dist *d, lam_layer *m, lam_vars *v, lam_optimizer *opt, lam_tensor *x, lam_tensor *y, int s0,
                  int n) {
  lam_train_step_opts so = {.grad_hook = lam_dist_grad_hook(d)};
  for (int s = s0; s < s0 + n; s++) {
    lam_tensor *xb = lam_tensor_slice0(x, 8 * s, 8 * s + 8), *yb = lam_tensor_slice0(y, 8 * s, 8 * s + 8);
    DC_OK(lam_train_step(m, v, opt, xb, yb, &so, NULL));
    lam_tensor_free(xb);
    lam_tensor_free(yb);
  }
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  lam_ctx *ctx = NULL;
  if (argc < 2 || lam_ctx_create(NULL, &ctx) != LAM_OK) MPI_Abort(MPI_COMM_WORLD, 1);
  const char *path = argv[1];
  lam_dist *d = NULL;
  DC_OK(lam_dist_create(MPI_COMM_WORLD, NULL, &d));
  dc_rank = lam_dist_rank(d);
  if (dc_rank == 0) unlink(path);
  MPI_Barrier(MPI_COMM_WORLD);

  lam_tensor *x = NULL, *y = NULL;
  dc_data(ctx, 64, 11, &x, &y);
  lam_layer *m = dc_model();
  lam_vars *v = NULL;
  DC_OK(lam_layer_init(m, ctx, lam_rng_key_make(5), LAM_F32, &v));
  DC_OK(lam_dist_broadcast(d, lam_vars_params(v), 0));
  lam_optimizer *opt = lam_sgd(&(lam_sgd_opts){.lr = 0.1, .momentum = 0.9});
  train(d, m, v, opt, x, y, 0, 3);
  lam_rng_key key = lam_rng_key_make(99);
  DC_OK(lam_dist_save(d, path, lam_vars_params(v), lam_vars_state(v), opt, 3, key));
  DC_CHECK(access(path, R_OK) == 0, "%s does not exist after lam_dist_save returned", path);

  /* An unwritable path: rank 0's failure on every rank. */
  lam_status st = lam_dist_save(d, "/nonexistent-dir/ckpt.safetensors", lam_vars_params(v), NULL, NULL, 0, key);
  DC_CHECK(st != LAM_OK, "saving to a missing folder succeeded");
  if (dc_rank == 0) DC_CHECK(strstr(lam_last_error(), "rank 0 could not write") != NULL, "%s", lam_last_error());
  else DC_CHECK(st == LAM_ERR_PEER && strstr(lam_last_error(), "rank 0") != NULL, "%s", lam_last_error());

  /* Load on every rank into fresh vars and optimizer. */
  lam_vars *lv = NULL;
  DC_OK(lam_layer_init(m, ctx, lam_rng_key_make(1000 + (uint64_t)dc_rank), LAM_F32, &lv));
  lam_optimizer *lopt = lam_sgd(&(lam_sgd_opts){.lr = 0.1, .momentum = 0.9});
  int64_t step = -1;
  lam_rng_key lkey = {{0, 0}};
  DC_OK(lam_dist_load(d, path, lam_vars_params(lv), lam_vars_state(lv), lopt, &step, &lkey));
  double diff = dc_max_diff(lam_vars_params(v), lam_vars_params(lv));
  DC_CHECK(diff == 0, "loaded parameters differ by %g", diff);
  DC_CHECK(step == 3 && memcmp(&lkey, &key, sizeof key) == 0, "step %lld / key not restored", (long long)step);
  /* Training on from both: the optimizer's momentum came back. */
  train(d, m, v, opt, x, y, 3, 2);
  train(d, m, lv, lopt, x, y, 3, 2);
  diff = dc_max_diff(lam_vars_params(v), lam_vars_params(lv));
  DC_CHECK(diff <= 1e-7, "training on after the reload differs by %g", diff);
  if (dc_rank == 0) printf("checkpoint of rank 0 loaded on %d ranks; training on differs by %g\n", lam_dist_size(d), diff);
  /* A missing file fails on every rank. */
  DC_CHECK(lam_dist_load(d, "/nonexistent-dir/none.safetensors", lam_vars_params(lv), NULL, NULL, NULL, NULL) != LAM_OK,
           "loading a missing file succeeded");

  lam_optimizer_free(opt);
  lam_optimizer_free(lopt);
  lam_vars_free(v);
  lam_vars_free(lv);
  lam_layer_free(m);
  lam_tensor_free(x);
  lam_tensor_free(y);
  int rc = dc_finish(d, "test_dist_checkpoint");
  lam_dist_free(d);
  lam_ctx_free(ctx);
  MPI_Finalize();
  return rc;
}
