/* tests/mpi/test_dist_bad_input.c: bad input for every LAM_API function of
 * include/lamina/dist.h (src/dist/dist.c): the rows that tests/test_bad_input.c
 * holds for the core headers (that suite does not link MPI). Each row calls
 * a function with a bad argument and checks the status, that the message
 * names the function, that an output stays unset and that no tensor or
 * device byte leaked (lam_ctx_stats). With LAMINA_BAD_INPUT_LIST set the
 * row names are also written there, one a line, for tests/check_bad_input.sh
 * (ctest "dist_bad_input_coverage", run on dist.h alone). Runs as a
 * singleton MPI process or under mpirun (ctest "mpi_bad_input_np<N>"): the
 * collective rows are collective on every rank alike. */
#include "dist_common.h"

static lam_ctx *ctx;
static FILE *list;

static void begin(lam_stats *s) {
  lam_error_clear();
  lam_ctx_stats(ctx, s);
}

static void end(const char *fn, const lam_stats *b, int line) {
  lam_stats a;
  lam_ctx_stats(ctx, &a);
  DC_CHECK(a.live_tensors == b->live_tensors && a.live_bytes == b->live_bytes, "row of line %d (%s) leaked", line, fn);
  if (list) fprintf(list, "%s\n", fn);
}

/* A call returning a status: want, and a message naming fn. */
#define ROW_S(fn, want, call)                                                                                 \
  do {                                                                                                        \
    lam_stats b_;                                                                                             \
    begin(&b_);                                                                                               \
    lam_status st_ = (call);                                                                                  \
    DC_CHECK(st_ == (want), "%s (line %d): %s, expected %s (%s)", #fn, __LINE__, lam_status_string(st_),      \
             lam_status_string(want), lam_last_error());                                                      \
    DC_CHECK(strstr(lam_last_error(), #fn) != NULL, "%s (line %d): message \"%s\" does not name it", #fn,      \
             __LINE__, lam_last_error());                                                                     \
    end(#fn, &b_, __LINE__);                                                                                  \
  } while (0)

/* A call returning a pointer: NULL, status want, a message naming fn. */
#define ROW_P(fn, want, call)                                                                                 \
  do {                                                                                                        \
    lam_stats b_;                                                                                             \
    begin(&b_);                                                                                               \
    const void *p_ = (call);                                                                                  \
    DC_CHECK(!p_ && lam_last_status() == (want) && strstr(lam_last_error(), #fn), "%s (line %d): %p %s (%s)",  \
             #fn, __LINE__, p_, lam_status_string(lam_last_status()), lam_last_error());                      \
    end(#fn, &b_, __LINE__);                                                                                  \
  } while (0)

/* A function with no failure: the documented fallback, no error recorded. */
#define ROW_E(fn, expr)                                                                                       \
  do {                                                                                                        \
    lam_stats b_;                                                                                             \
    begin(&b_);                                                                                               \
    DC_CHECK((expr) && lam_last_status() == LAM_OK, "%s (line %d): %s", #fn, __LINE__, lam_last_error());     \
    end(#fn, &b_, __LINE__);                                                                                  \
  } while (0)

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  if (lam_ctx_create(NULL, &ctx) != LAM_OK) MPI_Abort(MPI_COMM_WORLD, 1);
  const char *lp = getenv("LAMINA_BAD_INPUT_LIST");
  list = lp ? fopen(lp, "w") : NULL;
  lam_dist *d = NULL, *out = (lam_dist *)&ctx; /* a non-NULL sentinel that must become NULL */
  DC_OK(lam_dist_create(MPI_COMM_WORLD, NULL, &d));
  dc_rank = lam_dist_rank(d);
  lam_ptree *tree = lam_ptree_dict(), *itree = lam_ptree_dict();
  lam_tensor *t = lam_tensor_full(ctx, LAM_F32, 1, (int64_t[]){4}, 1.0), *ti = lam_tensor_zeros(ctx, LAM_I32, 1, (int64_t[]){4});
  lam_ptree_set(tree, "w", t);
  lam_ptree_set(itree, "i", ti);
  lam_tensor_free(t);
  lam_tensor_free(ti);
  lam_dist_totals totals;

  ROW_E(lam_dist_defaults, lam_dist_defaults().bucket_bytes == (int64_t)25 << 20);
  ROW_S(lam_dist_create, LAM_ERR_NULL, lam_dist_create(MPI_COMM_WORLD, NULL, NULL));
  ROW_S(lam_dist_create, LAM_ERR_INVALID_ARGUMENT,
        lam_dist_create(MPI_COMM_WORLD, &(lam_dist_opts){.bucket_bytes = -1}, &out));
  DC_CHECK(out == NULL, "lam_dist_create left *out set on error");
  ROW_S(lam_dist_create, LAM_ERR_INVALID_ARGUMENT,
        lam_dist_create(MPI_COMM_WORLD, &(lam_dist_opts){.bucket_bytes = (int64_t)2 << 30}, &out));
  ROW_S(lam_dist_create, LAM_ERR_INVALID_ARGUMENT, lam_dist_create(MPI_COMM_WORLD, &(lam_dist_opts){.timeout = -1}, &out));
  ROW_S(lam_dist_create, LAM_ERR_INVALID_ARGUMENT, lam_dist_create(MPI_COMM_NULL, NULL, &out));
  ROW_E(lam_dist_free, (lam_dist_free(NULL), 1));
  ROW_E(lam_dist_rank, lam_dist_rank(NULL) == -1);
  ROW_E(lam_dist_size, lam_dist_size(NULL) == -1);
  ROW_S(lam_dist_check, LAM_ERR_NULL, lam_dist_check(NULL, LAM_OK));
  ROW_S(lam_dist_broadcast, LAM_ERR_NULL, lam_dist_broadcast(d, NULL, 0));
  ROW_S(lam_dist_broadcast, LAM_ERR_INVALID_ARGUMENT, lam_dist_broadcast(d, tree, lam_dist_size(d)));
  ROW_S(lam_dist_broadcast, LAM_ERR_INVALID_ARGUMENT, lam_dist_broadcast(d, tree, -1));
  ROW_S(lam_dist_all_reduce, LAM_ERR_NULL, lam_dist_all_reduce(NULL, tree, LAM_DIST_SUM));
  ROW_S(lam_dist_all_reduce, LAM_ERR_NULL, lam_dist_all_reduce(d, NULL, LAM_DIST_SUM));
  ROW_S(lam_dist_all_reduce, LAM_ERR_INVALID_ARGUMENT, lam_dist_all_reduce(d, tree, (lam_dist_op)7));
  ROW_S(lam_dist_all_reduce, LAM_ERR_DTYPE, lam_dist_all_reduce(d, itree, LAM_DIST_SUM));
  ROW_S(lam_dist_all_reduce_trees, LAM_ERR_INVALID_ARGUMENT, lam_dist_all_reduce_trees(d, 0, &tree, NULL, LAM_DIST_SUM));
  ROW_S(lam_dist_all_reduce_trees, LAM_ERR_NULL, lam_dist_all_reduce_trees(d, 1, NULL, NULL, LAM_DIST_SUM));
  ROW_S(lam_dist_all_reduce_trees, LAM_ERR_INVALID_ARGUMENT,
        lam_dist_all_reduce_trees(d, 1, &tree, (const double[]){INFINITY}, LAM_DIST_SUM));
  ROW_P(lam_dist_grad_hook, LAM_ERR_NULL, lam_dist_grad_hook(NULL));
  ROW_S(lam_dist_save, LAM_ERR_NULL, lam_dist_save(d, NULL, tree, NULL, NULL, 0, lam_rng_key_make(0)));
  ROW_S(lam_dist_save, dc_rank == 0 ? LAM_ERR_IO : LAM_ERR_PEER,
        lam_dist_save(d, "/nonexistent-dir/x.safetensors", tree, NULL, NULL, 0, lam_rng_key_make(0)));
  ROW_S(lam_dist_load, LAM_ERR_NULL, lam_dist_load(d, "x.safetensors", NULL, NULL, NULL, NULL, NULL));
  ROW_S(lam_dist_load, LAM_ERR_IO, lam_dist_load(d, "/nonexistent-dir/x.safetensors", tree, NULL, NULL, NULL, NULL));
  ROW_S(lam_dist_stats, LAM_ERR_NULL, lam_dist_stats(d, NULL));
  ROW_S(lam_dist_stats, LAM_ERR_NULL, lam_dist_stats(NULL, &totals));
  /* The tree of an error row is untouched, and d still works. */
  float w[4];
  lam_tensor_to_host(lam_ptree_get(tree, "w"), w, sizeof w);
  DC_CHECK(w[0] == 1.0f, "a failed all-reduce changed its tree (%g)", w[0]);
  DC_OK(lam_dist_all_reduce(d, tree, LAM_DIST_MEAN));

  if (list) fclose(list);
  lam_ptree_free(tree);
  lam_ptree_free(itree);
  int rc = dc_finish(d, "test_dist_bad_input");
  lam_dist_free(d);
  lam_ctx_free(ctx);
  MPI_Finalize();
  return rc;
}
