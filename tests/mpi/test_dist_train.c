/* tests/mpi/test_dist_train.c: data-parallel training (src/dist/dist.c, the
 * lam_grad_hook path of src/train/fit.c) equals one process training on the
 * whole batch. Run with mpirun -np 1, 2, 4 (ctest "mpi_train_np<N>", label
 * mpi). Every rank builds the same data; ranks start from different
 * parameters and lam_dist_broadcast makes them rank 0's; then
 *   - lam_fit over (x, y) with the grad hook (shuffled, 2 epochs, global
 *     batch 16: 8 steps; and batch 10, whose shards have 2 and 3 rows on 4
 *     processes, so the row weighting matters), SGD with momentum;
 *   - lam_train_step with the hook for 4 steps (the loss it returns is the
 *     whole batch's);
 *   - lam_fit with accumulate 2;
 * and rank 0 repeats each without the hook in one process: the largest
 * parameter difference must be <= 1e-5 (printed), and every rank must hold
 * the same parameters (their all-reduce mean equals each rank's own). The
 * bucket size is small (64 bytes) so that the parameters span many buckets
 * and the overlapped path runs; a second pass uses no_overlap. */
#include "dist_common.h"

typedef struct {
  lam_ctx *ctx;
  lam_dist *d;
  lam_tensor *x, *y;
} env;

/* Fresh model + vars: rank-dependent init, then broadcast from rank 0. */
static lam_status make(env *e, lam_layer **m, lam_vars **v, bool dist) {
  *m = dc_model();
  lam_status st = lam_layer_init(*m, e->ctx, lam_rng_key_make(dist ? 1 + (uint64_t)dc_rank : 1), LAM_F32, v);
  if (st == LAM_OK && dist) st = lam_dist_broadcast(e->d, lam_vars_params(*v), 0);
  return st;
}

/* The same parameters on every rank: the mean over ranks equals this rank's. */
static void check_same_everywhere(env *e, lam_vars *v, const char *what) {
  lam_ptree *c = lam_ptree_map(lam_vars_params(v), dc_copy_leaf, NULL);
  DC_OK(lam_dist_all_reduce(e->d, c, LAM_DIST_MEAN));
  double diff = dc_max_diff(c, lam_vars_params(v));
  DC_CHECK(diff <= 1e-6, "%s: ranks hold different parameters (max diff to the mean %g)", what, diff);
  lam_ptree_free(c);
}

static void fit_case(env *e, int64_t batch, int accumulate, const char *what) {
  lam_fit_opts fo = lam_fit_defaults();
  fo.epochs = 2;
  fo.batch_size = batch;
  fo.key = lam_rng_key_make(42);
  fo.no_progress = true;
  fo.accumulate = accumulate;
  lam_layer *m = NULL, *rm = NULL;
  lam_vars *v = NULL, *rv = NULL;
  lam_optimizer *opt = lam_sgd(&(lam_sgd_opts){.lr = 0.1, .momentum = 0.9});
  DC_OK(make(e, &m, &v, true));
  fo.grad_hook = lam_dist_grad_hook(e->d);
  DC_OK(lam_fit(m, v, opt, e->x, e->y, &fo));
  check_same_everywhere(e, v, what);
  double diff = 0;
  if (dc_rank == 0) { /* the single-process run on whole batches */
    lam_optimizer *ropt = lam_sgd(&(lam_sgd_opts){.lr = 0.1, .momentum = 0.9});
    DC_OK(make(e, &rm, &rv, false));
    fo.grad_hook = NULL;
    DC_OK(lam_fit(rm, rv, ropt, e->x, e->y, &fo));
    diff = dc_max_diff(lam_vars_params(v), lam_vars_params(rv));
    printf("%s on %d processes: max |param - single-process param| = %.3g (%lld optimizer steps)\n", what,
           lam_dist_size(e->d), diff, (long long)lam_optimizer_step_count(opt));
    DC_CHECK(diff <= 1e-5, "%s: max parameter difference %g > 1e-5", what, diff);
    lam_optimizer_free(ropt);
    lam_vars_free(rv);
    lam_layer_free(rm);
  }
  lam_optimizer_free(opt);
  lam_vars_free(v);
  lam_layer_free(m);
}

static void step_case(env *e) {
  lam_layer *m = NULL, *rm = NULL;
  lam_vars *v = NULL, *rv = NULL;
  lam_optimizer *opt = lam_sgd(&(lam_sgd_opts){.lr = 0.2});
  lam_optimizer *ropt = lam_sgd(&(lam_sgd_opts){.lr = 0.2});
  DC_OK(make(e, &m, &v, true));
  DC_OK(make(e, &rm, &rv, false));
  lam_train_step_opts so = {.grad_hook = lam_dist_grad_hook(e->d)};
  double worst_loss = 0;
  for (int s = 0; s < 4; s++) {
    lam_tensor *xb = lam_tensor_slice0(e->x, 10 * s, 10 * s + 10), *yb = lam_tensor_slice0(e->y, 10 * s, 10 * s + 10);
    double loss = NAN, rloss = NAN;
    DC_OK(lam_train_step(m, v, opt, xb, yb, &so, &loss));
    DC_OK(lam_train_step(rm, rv, ropt, xb, yb, NULL, &rloss)); /* every rank: no collective inside */
    worst_loss = fmax(worst_loss, fabs(loss - rloss));
    lam_tensor_free(xb);
    lam_tensor_free(yb);
  }
  double diff = dc_max_diff(lam_vars_params(v), lam_vars_params(rv));
  if (dc_rank == 0)
    printf("lam_train_step x4, batch 10, on %d processes: max param diff %.3g, max loss diff %.3g\n",
           lam_dist_size(e->d), diff, worst_loss);
  DC_CHECK(diff <= 1e-5, "train_step: max parameter difference %g > 1e-5", diff);
  DC_CHECK(worst_loss <= 1e-5, "train_step: the loss is not the whole batch's (diff %g)", worst_loss);
  check_same_everywhere(e, v, "train_step");
  lam_optimizer_free(opt);
  lam_optimizer_free(ropt);
  lam_vars_free(v);
  lam_vars_free(rv);
  lam_layer_free(m);
  lam_layer_free(rm);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  env e = {0};
  lam_status st = lam_ctx_create(NULL, &e.ctx);
  if (st != LAM_OK) {
    fprintf(stderr, "no device: %s\n", lam_last_error());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  for (int pass = 0; pass < 2; pass++) {
    DC_OK(lam_dist_create(MPI_COMM_WORLD, &(lam_dist_opts){.bucket_bytes = 64, .no_overlap = pass == 1}, &e.d));
    if (!e.d) break;
    dc_rank = lam_dist_rank(e.d);
    if (pass == 0) dc_data(e.ctx, 64, 7, &e.x, &e.y);
    fit_case(&e, 16, 1, pass ? "lam_fit batch 16 (no_overlap)" : "lam_fit batch 16");
    if (pass == 0) {
      fit_case(&e, 10, 1, "lam_fit batch 10 (uneven shards)");
      fit_case(&e, 16, 2, "lam_fit batch 16, accumulate 2");
      step_case(&e);
      lam_dist_totals t;
      DC_OK(lam_dist_stats(e.d, &t));
      DC_CHECK(t.buckets > t.reductions, "64-byte buckets: %lld buckets for %lld reductions", (long long)t.buckets,
               (long long)t.reductions);
    }
    int rc = dc_finish(e.d, pass ? "test_dist_train (no_overlap)" : "test_dist_train");
    lam_dist_free(e.d);
    e.d = NULL;
    if (rc) dc_failures++;
  }
  lam_tensor_free(e.x);
  lam_tensor_free(e.y);
  lam_ctx_free(e.ctx);
  MPI_Finalize();
  return dc_failures ? 1 : 0;
}
