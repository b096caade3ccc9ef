/* tests/mpi/test_dist_errors.c: errors of lamina_dist (src/dist/dist.c)
 * reach every process and never deadlock (ctest "mpi_errors_np<N>" has a
 * TIMEOUT, so a hang fails it; a warm run takes about 2 s). The last rank misbehaves:
 *   - a gradient tree with an extra leaf, or a leaf of another shape: every
 *     rank gets LAM_ERR_SHAPE ("the trees differ");
 *   - a NULL tree: that rank gets LAM_ERR_NULL, the others LAM_ERR_PEER
 *     naming it; the same for a broadcast;
 *   - a training step that fails (f32 labels for cross entropy) inside
 *     lam_fit with the grad hook: that rank gets its own error, the others
 *     LAM_ERR_PEER, and lam_fit returns on all of them;
 *   - after each error the lam_dist still works (a correct all-reduce);
 *   - a timeout: rank 0 all-reduces on a lam_dist with a 0.5 s timeout
 *     while the others do not call; rank 0 gets LAM_ERR_PEER within a few
 *     seconds and the lam_dist refuses further calls (LAM_ERR_STATE). */
#include <time.h>

#include "dist_common.h"

static int last;

static lam_ptree *tree_of(lam_ctx *ctx, int extra, int64_t cols) {
  lam_ptree *t = lam_ptree_dict();
  lam_tensor *a = lam_tensor_full(ctx, LAM_F32, 2, (int64_t[]){3, cols}, 1.0 + dc_rank);
  lam_tensor *b = lam_tensor_full(ctx, LAM_F32, 1, (int64_t[]){5}, 2.0);
  lam_ptree_set(t, "layer.weight", a);
  lam_ptree_set(t, "layer.bias", b);
  lam_tensor_free(a);
  lam_tensor_free(b);
  if (extra) {
    lam_tensor *c = lam_tensor_zeros(ctx, LAM_F32, 1, (int64_t[]){2});
    lam_ptree_set(t, "extra", c);
    lam_tensor_free(c);
  }
  return t;
}

/* A correct all-reduce after an error: sum of (1 + rank) over ranks. */
static void still_works(lam_ctx *ctx, lam_dist *d, const char *after) {
  lam_ptree *t = tree_of(ctx, 0, 4);
  DC_CHECK(lam_dist_all_reduce(d, t, LAM_DIST_SUM) == LAM_OK, "after %s: %s", after, lam_last_error());
  float v[12];
  lam_tensor_to_host(lam_ptree_get(t, "layer.weight"), v, sizeof v);
  int p = lam_dist_size(d);
  DC_CHECK(fabsf(v[0] - (float)(p * (p + 1) / 2)) < 1e-6f, "after %s: sum %g, expected %d", after, v[0], p * (p + 1) / 2);
  lam_ptree_free(t);
}

static void expect(lam_status got, lam_status want, const char *piece, const char *what) {
  DC_CHECK(got == want, "%s: status %s, expected %s (%s)", what, lam_status_string(got), lam_status_string(want),
           lam_last_error());
  DC_CHECK(strstr(lam_last_error(), piece) != NULL, "%s: message \"%s\" lacks \"%s\"", what, lam_last_error(), piece);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  lam_ctx *ctx = NULL;
  if (lam_ctx_create(NULL, &ctx) != LAM_OK) MPI_Abort(MPI_COMM_WORLD, 1);
  lam_dist *d = NULL;
  DC_OK(lam_dist_create(MPI_COMM_WORLD, NULL, &d));
  dc_rank = lam_dist_rank(d);
  last = lam_dist_size(d) - 1;
  bool bad = dc_rank == last;

  /* mismatched trees */
  lam_ptree *t = tree_of(ctx, bad, 4);
  expect(lam_dist_all_reduce(d, t, LAM_DIST_MEAN), LAM_ERR_SHAPE, "trees differ", "extra leaf");
  lam_ptree_free(t);
  still_works(ctx, d, "an extra leaf");
  t = tree_of(ctx, 0, bad ? 5 : 4);
  expect(lam_dist_all_reduce(d, t, LAM_DIST_SUM), LAM_ERR_SHAPE, "trees differ", "other shape");
  lam_ptree_free(t);

  /* a failing rank */
  t = tree_of(ctx, 0, 4);
  lam_status st = lam_dist_all_reduce(d, bad ? NULL : t, LAM_DIST_SUM);
  if (bad) expect(st, LAM_ERR_NULL, "grads is NULL", "NULL tree (the failing rank)");
  else expect(st, LAM_ERR_PEER, "failed", "NULL tree (a peer)");
  char want[64];
  snprintf(want, sizeof want, "rank %d", last);
  DC_CHECK(strstr(lam_last_error(), want) != NULL, "the message names %s: %s", want, lam_last_error());
  st = lam_dist_broadcast(d, bad ? NULL : t, 0);
  if (bad) expect(st, LAM_ERR_NULL, "tree is NULL", "broadcast of NULL (the failing rank)");
  else expect(st, LAM_ERR_PEER, "lam_dist_broadcast", "broadcast of NULL (a peer)");
  lam_ptree_free(t);
  still_works(ctx, d, "a NULL tree");

  /* a failing training step inside lam_fit */
  lam_tensor *x = NULL, *y = NULL;
  dc_data(ctx, 32, 3, &x, &y);
  lam_tensor *yf = bad ? lam_tensor_cast(y, LAM_F32) : lam_tensor_retain(y);
  lam_layer *m = dc_model();
  lam_vars *v = NULL;
  DC_OK(lam_layer_init(m, ctx, lam_rng_key_make(1), LAM_F32, &v));
  lam_optimizer *opt = lam_sgd(NULL);
  lam_fit_opts fo = {.epochs = 3, .batch_size = 8, .no_progress = true, .grad_hook = lam_dist_grad_hook(d)};
  st = lam_fit(m, v, opt, x, yf, &fo);
  if (bad) DC_CHECK(st != LAM_OK && st != LAM_ERR_PEER, "the failing rank: %s (%s)", lam_status_string(st),
                    lam_last_error());
  else expect(st, LAM_ERR_PEER, "lam_dist_grad_hook", "a failing step in lam_fit (a peer)");
  if (dc_rank == 0) printf("a failing step: rank 0 was told \"%s\"\n", lam_last_error());
  lam_optimizer_free(opt);
  lam_vars_free(v);
  lam_layer_free(m);
  lam_tensor_free(yf);
  lam_tensor_free(x);
  lam_tensor_free(y);
  still_works(ctx, d, "a failing step");

  /* a timeout: only rank 0 calls */
  lam_dist *dt = NULL;
  DC_OK(lam_dist_create(MPI_COMM_WORLD, &(lam_dist_opts){.timeout = 0.5}, &dt));
  if (dc_rank == 0) {
    t = tree_of(ctx, 0, 4);
    double t0 = MPI_Wtime();
    expect(lam_dist_all_reduce(dt, t, LAM_DIST_SUM), LAM_ERR_PEER, "timeout", "a peer that does not call");
    double waited = MPI_Wtime() - t0;
    DC_CHECK(waited >= 0.4 && waited < 10, "the timeout took %.2f s", waited);
    printf("a missing peer: rank 0 gave up after %.2f s: \"%s\"\n", waited, lam_last_error());
    expect(lam_dist_all_reduce(dt, t, LAM_DIST_SUM), LAM_ERR_STATE, "timed out", "after a timeout");
    lam_ptree_free(t);
  } else {
    /* Late, match rank 0's pending check so that its requests complete before MPI_Finalize. */
    struct timespec ts = {1, 0};
    nanosleep(&ts, NULL);
    lam_dist_check(dt, LAM_OK);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  lam_dist_free(dt);

  int rc = dc_finish(d, "test_dist_errors");
  lam_dist_free(d);
  lam_ctx_free(ctx);
  MPI_Finalize();
  return rc;
}
