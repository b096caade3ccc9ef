/* bench/dist.c: data-parallel step time of lamina_dist (lamina/dist.h),
 * split into compute and communication, for 1, 2 and 4 processes in one
 * run. Launch it with 4 processes; the communicator is split into groups
 * of the first 1, 2 and 4 ranks, and each group trains the same MLP
 * (256-1024-1024-10, 1.3 M f32 parameters, 5.3 MB of gradients) on a
 * global batch of 256 rows cut into equal shards:
 *   compute  lam_value_and_grad of the shard + SGD step (lam_ctx_finish),
 *   comm     lam_dist_all_reduce of the gradients (MEAN): the status check,
 *            staging through host buffers, and MPI (overlapped bucket by
 *            bucket), for 25 MiB (one bucket) and 1 MiB buckets.
 * Times are medians over the steps of the slowest rank. Then it times
 * MPI_Allreduce alone on host buffers of 8 B to 8 MiB per group size, the
 * data of the alpha-beta model in docs/distributed.md. The peer is the
 * one-process step (group of 1), measured in the same run.
 *
 *   mpirun --oversubscribe -np 4 build/bench/bench_dist [--steps N]
 *   (as root add --allow-run-as-root) */
#include <lamina.h>
#include <lamina/dist.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 256
#define IN 256
#define HID 1024
#define OUT 10

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

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

#define CHECK(call)                                                    \
  do {                                                                 \
    if ((call) != LAM_OK) {                                            \
      fprintf(stderr, "bench_dist: %s\n", lam_last_error());           \
      MPI_Abort(MPI_COMM_WORLD, 1);                                    \
    }                                                                  \
  } while (0)

/* One group: steps of compute + all-reduce; prints a row on the group's rank 0. */
static void run_group(MPI_Comm comm, lam_ctx *ctx, int steps, int64_t bucket) {
  lam_dist *d = NULL;
  CHECK(lam_dist_create(comm, &(lam_dist_opts){.bucket_bytes = bucket}, &d));
  int r = lam_dist_rank(d), p = lam_dist_size(d);
  int64_t rows = BATCH / p;
  float *xs = malloc((size_t)rows * IN * sizeof *xs);
  int32_t *ys = malloc((size_t)rows * sizeof *ys);
  for (int64_t i = 0; i < rows * IN; i++) xs[i] = (float)((i * 7919 + r * 31) % 1000) / 1000.0f - 0.5f;
  for (int64_t i = 0; i < rows; i++) ys[i] = (int32_t)((i + r) % OUT);
  lam_tensor *x = lam_tensor_from_host(ctx, LAM_F32, 2, (int64_t[]){rows, IN}, xs);
  lam_tensor *y = lam_tensor_from_host(ctx, LAM_I32, 1, (int64_t[]){rows}, ys);
  free(xs);
  free(ys);
  lam_layer *m = lam_nn_sequential((lam_layer *[]){lam_nn_linear(IN, HID, NULL), lam_nn_relu(),
                                                   lam_nn_linear(HID, HID, NULL), lam_nn_relu(),
                                                   lam_nn_linear(HID, OUT, NULL)},
                                   5);
  lam_vars *v = NULL;
  CHECK(lam_layer_init(m, ctx, lam_rng_key_make(0), LAM_F32, &v));
  CHECK(lam_dist_broadcast(d, lam_vars_params(v), 0));
  lam_optimizer *opt = lam_sgd(&(lam_sgd_opts){.lr = 0.01});
  int warm = 2, n = warm + steps;
  double *tc = calloc((size_t)n, sizeof *tc), *tm = calloc((size_t)n, sizeof *tm);
  lam_dist_totals t0 = {0}, t1 = {0};
  for (int s = 0; s < n; s++) {
    if (s == warm) CHECK(lam_dist_stats(d, &t0));
    double a = MPI_Wtime();
    loss_user u = {m, lam_vars_state(v), x, y};
    lam_tensor *loss = NULL;
    lam_ptree *g = NULL;
    CHECK(lam_value_and_grad(ctx, loss_fn, &u, lam_vars_params(v), &loss, &g));
    CHECK(lam_ctx_finish(ctx));
    double b = MPI_Wtime();
    CHECK(lam_dist_all_reduce(d, g, LAM_DIST_MEAN));
    double c = MPI_Wtime();
    CHECK(lam_optimizer_step(opt, lam_vars_params(v), g));
    CHECK(lam_ctx_finish(ctx));
    double e = MPI_Wtime();
    tc[s] = (b - a) + (e - c);
    tm[s] = c - b;
    lam_tensor_free(loss);
    lam_ptree_free(g);
  }
  CHECK(lam_dist_stats(d, &t1));
  /* The slowest rank's time per step. */
  MPI_Allreduce(MPI_IN_PLACE, tc, n, MPI_DOUBLE, MPI_MAX, comm);
  MPI_Allreduce(MPI_IN_PLACE, tm, n, MPI_DOUBLE, MPI_MAX, comm);
  double mc = median(tc + warm, steps), mm = median(tm + warm, steps);
  double st = (t1.stage_seconds - t0.stage_seconds) / steps, wt = (t1.wait_seconds - t0.wait_seconds) / steps,
         ck = (t1.check_seconds - t0.check_seconds) / steps;
  double bytes = (double)(t1.bytes_reduced - t0.bytes_reduced) / steps;
  double buckets = (double)(t1.buckets - t0.buckets) / steps;
  if (r == 0)
    printf("| %d | %6.1f | %8.2f | %8.2f | %8.2f | %6.2f | %6.2f | %6.2f | %9.0f | %4.0f | %7.0f |\n", p,
           bucket / 1048576.0, mc * 1e3, mm * 1e3, (mc + mm) * 1e3, st * 1e3, wt * 1e3, ck * 1e3, bytes, buckets,
           BATCH / (mc + mm));
  free(tc);
  free(tm);
  lam_optimizer_free(opt);
  lam_vars_free(v);
  lam_layer_free(m);
  lam_tensor_free(x);
  lam_tensor_free(y);
  lam_dist_free(d);
}

/* MPI_Allreduce alone (SUM of floats) on host buffers: median seconds. */
static double allreduce_time(MPI_Comm comm, size_t bytes, int reps) {
  size_t n = bytes / 4 ? bytes / 4 : 1;
  float *buf = calloc(n, sizeof *buf);
  double *t = calloc((size_t)reps, sizeof *t);
  for (int i = 0; i < reps + 2; i++) {
    MPI_Barrier(comm);
    double a = MPI_Wtime();
    MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, comm);
    double b = MPI_Wtime() - a;
    MPI_Allreduce(MPI_IN_PLACE, &b, 1, MPI_DOUBLE, MPI_MAX, comm);
    if (i >= 2) t[i - 2] = b;
  }
  double m = median(t, reps);
  free(buf);
  free(t);
  return m;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int steps = 10;
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  lam_ctx *ctx = NULL;
  CHECK(lam_ctx_create(NULL, &ctx));
  if (rank == 0) {
    printf("bench_dist: %d processes launched, device %s, global batch %d, %d steps (median of the slowest "
           "rank)\n\n", size, lam_ctx_device(ctx)->name, BATCH, steps);
    printf("| ranks | bucket MiB | compute ms | comm ms | step ms | staging ms | MPI wait ms | checks ms | bytes "
           "reduced/step | buckets | samples/s |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
  }
  int groups[3] = {1, 2, 4};
  for (int gi = 0; gi < 3; gi++) {
    int p = groups[gi];
    if (p > size) break;
    MPI_Comm c;
    MPI_Comm_split(MPI_COMM_WORLD, rank < p ? 0 : MPI_UNDEFINED, rank, &c);
    for (int bi = 0; bi < 2; bi++) {
      if (c != MPI_COMM_NULL) run_group(c, ctx, steps, bi == 0 ? (int64_t)25 << 20 : (int64_t)1 << 20);
      fflush(stdout);
      MPI_Barrier(MPI_COMM_WORLD);
    }
    if (c != MPI_COMM_NULL) MPI_Comm_free(&c);
  }
  if (rank == 0) printf("\nMPI_Allreduce alone (host buffers, median of 20, slowest rank), microseconds:\n\n"
                        "| bytes | 2 ranks | 4 ranks |\n|---|---|---|\n");
  size_t sizes[] = {8, 65536, 1 << 20, 4 << 20, 8 << 20};
  MPI_Comm c2;
  MPI_Comm_split(MPI_COMM_WORLD, rank < 2 ? 0 : MPI_UNDEFINED, rank, &c2);
  for (int i = 0; i < 5; i++) {
    double t2 = 0, t4 = 0;
    if (c2 != MPI_COMM_NULL) t2 = allreduce_time(c2, sizes[i], 20);
    MPI_Barrier(MPI_COMM_WORLD);
    if (size >= 4) t4 = allreduce_time(MPI_COMM_WORLD, sizes[i], 20);
    if (rank == 0) printf("| %zu | %.1f | %.1f |\n", sizes[i], t2 * 1e6, t4 * 1e6);
  }
  if (c2 != MPI_COMM_NULL) MPI_Comm_free(&c2);
  lam_ctx_free(ctx);
  MPI_Finalize();
  return 0;
}
