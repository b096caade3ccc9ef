/* tests/mpi/test_dist_multi_ctx.c: several OpenCL contexts in one process
 * reduced through lam_dist_all_reduce_trees (src/dist/dist.c), the same
 * bucket path as one context: two lam_ctx on the one PoCL CPU device, each
 * with its own copy of the model, take a quarter (np 2) or a half (np 1)
 * of every global batch; their gradients are weighted by rows, summed on
 * the host bucket by bucket, reduced over the processes and written back
 * into both trees; each context's optimizer steps. After 4 steps both
 * contexts of every process must equal one context training on the whole
 * batches (lam_train_step) within 1e-5. Also: a MEAN over the trees of all
 * processes, and two local trees of different structure (LAM_ERR_SHAPE on
 * every process). Run with mpirun -np 1 and -np 2 (ctest "mpi_multi_ctx_np<N>"). */
#include "dist_common.h"

#define NCTX 2
#define BATCH 12

typedef struct {
  lam_layer *m;
  lam_ptree *state;
  lam_tensor *x, *y;
} loss_user;

static lam_tensor *loss_fn(lam_ptree *params, void *user) {
  loss_user *u = user;
  lam_tensor *pred = NULL;
  lam_apply_opts ao = {.training = true};
  if (lam_layer_apply_with(u->m, params, u->state, u->x, &ao, &pred) != LAM_OK) return NULL;
  lam_tensor *l = lam_cross_entropy(pred, u->y, NULL);
  lam_tensor_free(pred);
  return l;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  lam_dist *d = NULL;
  DC_OK(lam_dist_create(MPI_COMM_WORLD, &(lam_dist_opts){.bucket_bytes = 256}, &d));
  dc_rank = lam_dist_rank(d);
  int p = lam_dist_size(d), workers = p * NCTX;
  lam_ctx *ctx[NCTX] = {0}, *ref_ctx = NULL;
  lam_tensor *x[NCTX], *y[NCTX], *rx, *ry;
  lam_layer *m = dc_model();
  lam_vars *v[NCTX], *rv = NULL;
  lam_optimizer *opt[NCTX], *ropt = lam_sgd(&(lam_sgd_opts){.lr = 0.2, .momentum = 0.5});
  for (int c = 0; c < NCTX; c++) {
    if (lam_ctx_create(NULL, &ctx[c]) != LAM_OK) MPI_Abort(MPI_COMM_WORLD, 1);
    dc_data(ctx[c], 4 * BATCH, 21, &x[c], &y[c]);
    DC_OK(lam_layer_init(m, ctx[c], lam_rng_key_make(3), LAM_F32, &v[c]));
    opt[c] = lam_sgd(&(lam_sgd_opts){.lr = 0.2, .momentum = 0.5});
  }
  if (lam_ctx_create(NULL, &ref_ctx) != LAM_OK) MPI_Abort(MPI_COMM_WORLD, 1);
  dc_data(ref_ctx, 4 * BATCH, 21, &rx, &ry);
  DC_OK(lam_layer_init(m, ref_ctx, lam_rng_key_make(3), LAM_F32, &rv));

  for (int s = 0; s < 4; s++) {
    lam_ptree *g[NCTX] = {0};
    double w[NCTX];
    for (int c = 0; c < NCTX; c++) {
      int wk = dc_rank * NCTX + c; /* this worker's rows of the global batch */
      int64_t lo = s * BATCH + (int64_t)BATCH * wk / workers, hi = s * BATCH + (int64_t)BATCH * (wk + 1) / workers;
      loss_user u = {m, lam_vars_state(v[c]), lam_tensor_slice0(x[c], lo, hi), lam_tensor_slice0(y[c], lo, hi)};
      lam_tensor *loss = NULL;
      DC_OK(lam_value_and_grad(ctx[c], loss_fn, &u, lam_vars_params(v[c]), &loss, &g[c]));
      w[c] = (double)(hi - lo) / BATCH;
      lam_tensor_free(loss);
      lam_tensor_free(u.x);
      lam_tensor_free(u.y);
    }
    DC_OK(lam_dist_all_reduce_trees(d, NCTX, g, w, LAM_DIST_SUM));
    for (int c = 0; c < NCTX; c++) {
      DC_OK(lam_optimizer_step(opt[c], lam_vars_params(v[c]), g[c]));
      lam_ptree_free(g[c]);
    }
    lam_tensor *xb = lam_tensor_slice0(rx, s * BATCH, (s + 1) * BATCH), *yb = lam_tensor_slice0(ry, s * BATCH, (s + 1) * BATCH);
    DC_OK(lam_train_step(m, rv, ropt, xb, yb, NULL, NULL));
    lam_tensor_free(xb);
    lam_tensor_free(yb);
  }
  double worst = 0;
  for (int c = 0; c < NCTX; c++) worst = fmax(worst, dc_max_diff(lam_vars_params(v[c]), lam_vars_params(rv)));
  if (dc_rank == 0)
    printf("%d contexts x %d processes, 4 steps of batch %d: max param diff to one context %.3g\n", NCTX, p, BATCH,
           worst);
  DC_CHECK(worst <= 1e-5, "max parameter difference %g > 1e-5", worst);

  /* MEAN over all trees: tree c of rank r holds r * NCTX + c + 1. */
  lam_ptree *t[NCTX];
  for (int c = 0; c < NCTX; c++) {
    t[c] = lam_ptree_dict();
    lam_tensor *a = lam_tensor_full(ctx[c], LAM_F64, 1, (int64_t[]){3}, dc_rank * NCTX + c + 1);
    lam_ptree_set(t[c], "a", a);
    lam_tensor_free(a);
  }
  DC_OK(lam_dist_all_reduce_trees(d, NCTX, t, NULL, LAM_DIST_MEAN));
  for (int c = 0; c < NCTX; c++) {
    double got[3];
    lam_tensor_to_host(lam_ptree_get(t[c], "a"), got, sizeof got);
    DC_CHECK(fabs(got[2] - (workers + 1) / 2.0) < 1e-12, "MEAN over %d trees: %g, expected %g", workers, got[2],
             (workers + 1) / 2.0);
  }
  /* Local trees of different structure. */
  lam_tensor *b = lam_tensor_zeros(ctx[1], LAM_F64, 1, (int64_t[]){2});
  lam_ptree_set(t[1], "b", b);
  lam_tensor_free(b);
  lam_status st = lam_dist_all_reduce_trees(d, NCTX, t, NULL, LAM_DIST_SUM);
  DC_CHECK(st == LAM_ERR_SHAPE && strstr(lam_last_error(), "tree 1 differs"), "%s: %s", lam_status_string(st),
           lam_last_error());
  for (int c = 0; c < NCTX; c++) lam_ptree_free(t[c]);

  for (int c = 0; c < NCTX; c++) {
    lam_optimizer_free(opt[c]);
    lam_vars_free(v[c]);
    lam_tensor_free(x[c]);
    lam_tensor_free(y[c]);
  }
  lam_optimizer_free(ropt);
  lam_vars_free(rv);
  lam_tensor_free(rx);
  lam_tensor_free(ry);
  lam_layer_free(m);
  int rc = dc_finish(d, "test_dist_multi_ctx");
  lam_dist_free(d);
  for (int c = 0; c < NCTX; c++) lam_ctx_free(ctx[c]);
  lam_ctx_free(ref_ctx);
  MPI_Finalize();
  return rc;
}
