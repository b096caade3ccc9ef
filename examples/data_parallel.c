/* data_parallel.c: data-parallel training with lamina_dist (lamina/dist.h).
 * Every process reads the UCI 8x8 digits of examples/data, splits them as
 * examples/digits.c does and runs lam_fit_loader with the lam_dist grad
 * hook: each global batch of 64 images is cut into one shard per process,
 * the shards' gradients are all-reduced in buckets, and every process
 * takes the same SGD step. Rank 0 prints the progress and every rank its
 * throughput; then rank 0 trains the same model in this one process on the
 * whole batches and prints the largest parameter difference (<= 1e-5:
 * the processes together computed the single-process training), the test
 * accuracy, and saves a checkpoint from rank 0 only (lam_dist_save).
 *
 *   mpirun -np 2 build/examples/data_parallel [path/to/digits.csv]
 *   (as root: mpirun --allow-run-as-root; more processes than cores: --oversubscribe)
 * Exits 0 on every rank when the difference is <= 1e-5 and the test accuracy >= 90%. */
#include <lamina.h>
#include <lamina/dist.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_PIXELS 64
#define N_CLASSES 10
#define EPOCHS 5

static lam_status scale(const void *const *src, void *const *dst, void *user) {
  (void)user;
  const float *x = src[0];
  float *y = dst[0];
  for (int i = 0; i < N_PIXELS; i++) y[i] = x[i] / 16.0f;
  *(int32_t *)dst[1] = *(const int32_t *)src[1];
  return LAM_OK;
}

/* No dropout: its masks differ per process (the rank is folded into the
 * key), and this example compares with one process. */
static lam_layer *make_model(void) {
  return lam_nn_sequential((lam_layer *[]){lam_nn_linear(N_PIXELS, 128, NULL), lam_nn_relu(),
                                            lam_nn_linear(128, N_CLASSES, NULL)},
                           3);
}

#define CHECK(call)                                                          \
  do {                                                                       \
    if ((call) != LAM_OK) {                                                  \
      fprintf(stderr, "data_parallel [rank %d]: %s\n", rank, lam_last_error()); \
      MPI_Abort(MPI_COMM_WORLD, 1);                                          \
    }                                                                        \
  } while (0)

/* Time and rows of the epochs after the first (which compiles the kernels). */
typedef struct {
  double seconds, rows;
} timing;

static lam_status on_epoch(const lam_epoch_report *r, void *user) {
  timing *t = user;
  if (r->epoch > 1) {
    t->seconds += r->seconds;
    t->rows += (double)r->samples; /* this process's rows: its shards */
  }
  return LAM_OK;
}

/* Trains a fresh model (grad hook NULL: this process alone); returns its vars. */
static lam_vars *train(lam_ctx *ctx, lam_layer *model, lam_loader *loader, const lam_grad_hook *hook, bool progress,
                       int rank, timing *t) {
  lam_vars *vars = NULL;
  CHECK(lam_layer_init(model, ctx, lam_rng_key_make(0), LAM_F32, &vars));
  lam_optimizer *opt = lam_sgd(&(lam_sgd_opts){.lr = 0.1, .momentum = 0.9});
  lam_fit_opts fit = lam_fit_defaults();
  fit.epochs = EPOCHS;
  fit.grad_hook = hook;
  fit.no_progress = !progress;
  fit.on_epoch = on_epoch;
  fit.user = t;
  CHECK(lam_fit_loader(model, vars, opt, loader, &fit));
  lam_optimizer_free(opt);
  return vars;
}

static double max_diff(const lam_ptree *a, const lam_ptree *b) {
  double m = 0;
  for (int i = 0; i < lam_ptree_leaf_count(a); i++) {
    const char *pa, *pb;
    lam_tensor *ta, *tb;
    lam_ptree_leaf(a, i, &pa, &ta);
    lam_ptree_leaf(b, i, &pb, &tb);
    int64_t n = lam_tensor_numel(ta);
    float *va = malloc((size_t)n * 4), *vb = malloc((size_t)n * 4);
    lam_tensor_to_host(ta, va, (size_t)n * 4);
    lam_tensor_to_host(tb, vb, (size_t)n * 4);
    for (int64_t j = 0; j < n; j++) m = fmax(m, fabs((double)va[j] - (double)vb[j]));
    free(va);
    free(vb);
  }
  return m;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  const char *path = argc > 1 ? argv[1] : LAMINA_EXAMPLES_DIR "/data/digits.csv";
  lam_ctx *ctx = NULL;
  CHECK(lam_ctx_create(NULL, &ctx));
  lam_dist *dist = NULL;
  CHECK(lam_dist_create(MPI_COMM_WORLD, NULL, &dist));
  int size = lam_dist_size(dist);
  if (rank == 0) printf("%d processes, device: %s\n", size, lam_ctx_device(ctx)->name);

  /* Every process reads the same data and shuffles with the same key, so
   * that all see the same global batches; the hook picks each one's rows. */
  lam_dataset *raw = NULL, *all = NULL, *train_set = NULL, *test_set = NULL;
  CHECK(lam_dataset_from_csv(path, NULL, &raw));
  CHECK(lam_dataset_map(raw, 0, NULL, scale, NULL, &all));
  lam_split_opts split = {.val_fraction = 0.2, .key = lam_rng_key_make(2024)};
  CHECK(lam_dataset_split(all, &split, &train_set, &test_set));
  lam_loader *loader = NULL, *test_loader = NULL;
  lam_loader_opts lo = {.batch_size = 64, .shuffle = true, .key = lam_rng_key_make(1)};
  CHECK(lam_loader_create(ctx, train_set, &lo, &loader));
  CHECK(lam_loader_create(ctx, test_set, &(lam_loader_opts){.batch_size = 512}, &test_loader));

  lam_layer *model = make_model();
  timing tm = {0, 0};
  lam_vars *vars = train(ctx, model, loader, lam_dist_grad_hook(dist), rank == 0, rank, &tm);
  double mine[2] = {tm.seconds, tm.rows / tm.seconds}, every[2 * 64];
  MPI_Gather(mine, 2, MPI_DOUBLE, every, 2, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  lam_dist_totals tot;
  CHECK(lam_dist_stats(dist, &tot));
  if (rank == 0) {
    for (int r = 0; r < size && r < 64; r++)
      printf("rank %d: epochs 2-%d in %.2f s, %.0f samples/s of its shards\n", r, EPOCHS, every[2 * r],
             every[2 * r + 1]);
    printf("rank 0: %lld reductions, %lld buckets, %.1f KiB per step; %.3f s staging, %.3f s waiting on MPI, "
           "%.3f s in checks\n", (long long)tot.reductions, (long long)tot.buckets,
           (double)tot.bytes_reduced / (double)tot.reductions / 1024.0, tot.stage_seconds, tot.wait_seconds,
           tot.check_seconds);
  }

  double acc = 0, loss = 0;
  CHECK(lam_evaluate_loader(model, vars, test_loader, NULL, &loss, &acc));
  lam_status verdict = LAM_OK;
  if (rank == 0) {
    timing st = {0, 0};
    lam_vars *ref = train(ctx, model, loader, NULL, false, rank, &st);
    double diff = max_diff(lam_vars_params(vars), lam_vars_params(ref));
    printf("single process: epochs 2-%d in %.2f s, %.0f samples/s\n", EPOCHS, st.seconds, st.rows / st.seconds);
    printf("max |parameter difference| from the single-process run: %.3g (%s 1e-5)\n", diff,
           diff <= 1e-5 ? "within" : "NOT within");
    printf("test accuracy %.3f, loss %.4f\n", acc, loss);
    if (!(diff <= 1e-5) || acc < 0.9) verdict = LAM_ERR_INVALID_ARGUMENT;
    lam_vars_free(ref);
  }
  CHECK(lam_dist_save(dist, "data_parallel.safetensors", lam_vars_params(vars), lam_vars_state(vars), NULL, 0,
                      lam_rng_key_make(1)));
  if (rank == 0) printf("checkpoint written by rank 0: data_parallel.safetensors\n");
  int rc = lam_dist_check(dist, verdict) == LAM_OK ? 0 : 2;

  lam_vars_free(vars);
  lam_layer_free(model);
  lam_loader_free(loader);
  lam_loader_free(test_loader);
  lam_dataset_free(raw);
  lam_dataset_free(all);
  lam_dataset_free(train_set);
  lam_dataset_free(test_set);
  lam_dist_free(dist);
  lam_ctx_free(ctx);
  MPI_Finalize();
  return rc;
}
