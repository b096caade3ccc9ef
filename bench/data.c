/* bench/data.c: the loader's overlap. One training epoch (lam_fit_loader,
 * an MLP 1024 -> 512 -> 10 with Adam) over a callback dataset whose samples
 * cost host work to produce (a synthetic "decode": a few flops per
 * element), with prefetch (batch k+1 gathered and uploaded with a
 * non-blocking write while the device still runs batch k) and without (each
 * batch gathered and written with a blocking write, which also waits for the
 * device's queue to drain), in the same run; plus the loader alone (host
 * gather + upload, no training) as the floor. Best of --reps epochs each.
 * Not a test: never asserts.
 *
 *   bench_data [--samples N] [--batch B] [--reps R] */
#include <lamina.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FEAT 1024

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Sample i: FEAT features from a cheap hash "decode", label i % 10. */
static lam_status decode(int64_t i, void *const *dst, void *user) {
  (void)user;
  float *x = dst[0];
  uint32_t h = (uint32_t)i * 2654435761u;
  for (int j = 0; j < FEAT; j++) {
    h ^= h << 13;
    h ^= h >> 17;
    h ^= h << 5;
    x[j] = sinf((float)(h & 0xffff) * 1e-4f) * 0.5f;
  }
  *(int32_t *)dst[1] = (int32_t)(i % 10);
  return LAM_OK;
}

static lam_status quiet(const lam_epoch_report *r, void *user) {
  *(double *)user = r->seconds;
  return LAM_OK;
}

int main(int argc, char **argv) {
  int64_t samples = 4096, batch = 128;
  int reps = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--samples")) samples = atoll(argv[i + 1]);
    else if (!strcmp(argv[i], "--batch")) batch = atoll(argv[i + 1]);
    else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
  }
  lam_ctx *ctx = NULL;
  if (lam_ctx_create(NULL, &ctx) != LAM_OK) {
    fprintf(stderr, "bench_data: %s\n", lam_last_error());
    return 1;
  }
  const lam_field fields[2] = {{LAM_F32, 1, {FEAT}}, {LAM_I32, 0, {0}}};
  lam_dataset *d = NULL;
  if (lam_dataset_from_fn(samples, 2, fields, decode, NULL, &d) != LAM_OK) {
    fprintf(stderr, "bench_data: %s\n", lam_last_error());
    return 1;
  }
  lam_layer *model = lam_nn_sequential(
      (lam_layer *[]){lam_nn_linear(FEAT, 512, NULL), lam_nn_relu(), lam_nn_linear(512, 10, NULL)}, 3);
  lam_vars *vars = NULL;
  lam_optimizer *opt = lam_adam(NULL);
  if (lam_layer_init(model, ctx, lam_rng_key_make(0), LAM_F32, &vars) != LAM_OK) {
    fprintf(stderr, "bench_data: %s\n", lam_last_error());
    return 1;
  }
  printf("device: %s\n", lam_ctx_device(ctx)->name);
  printf("%lld samples of %d f32 (decoded on the host per batch), batch %lld, MLP %d-512-10, best of %d\n",
         (long long)samples, FEAT, (long long)batch, FEAT, reps);
  printf("%-28s %12s %14s\n", "configuration", "epoch (s)", "samples/s");
  double best[2][2] = {{1e30, 1e30}, {1e30, 1e30}}; /* [prefetch][train] */
  for (int warm = 0; warm < 2; warm++) /* the first round builds kernels */
    for (int r = 0; r < (warm ? reps : 1); r++)
      for (int prefetch = 1; prefetch >= 0; prefetch--) {
        lam_loader *l = NULL;
        lam_loader_opts lo = {.batch_size = batch, .shuffle = true, .no_prefetch = !prefetch};
        if (lam_loader_create(ctx, d, &lo, &l) != LAM_OK) {
          fprintf(stderr, "bench_data: %s\n", lam_last_error());
          return 1;
        }
        /* the loader alone */
        double t0 = now();
        lam_loader_reset(l, 1);
        for (;;) {
          lam_batch b;
          if (lam_loader_next(l, &b) != LAM_OK || b.size == 0) break;
        }
        lam_tensor *sync = lam_tensor_scalar(ctx, LAM_F32, 0);
        double v;
        lam_tensor_item(sync, &v);
        lam_tensor_free(sync);
        double t_load = now() - t0;
        /* one training epoch */
        double secs = 0;
        lam_fit_opts fo = {.epochs = 1, .no_progress = true, .on_epoch = quiet, .user = &secs};
        if (lam_fit_loader(model, vars, opt, l, &fo) != LAM_OK) {
          fprintf(stderr, "bench_data: %s\n", lam_last_error());
          return 1;
        }
        if (warm) {
          if (t_load < best[prefetch][0]) best[prefetch][0] = t_load;
          if (secs < best[prefetch][1]) best[prefetch][1] = secs;
        }
        lam_loader_free(l);
      }
  const char *names[2][2] = {{"loader only, no prefetch", "train epoch, no prefetch"},
                             {"loader only, prefetch", "train epoch, prefetch"}};
  for (int k = 0; k < 2; k++)
    for (int p = 1; p >= 0; p--)
      printf("%-28s %12.3f %14.0f\n", names[p][k], best[p][k], (double)samples / best[p][k]);
  printf("prefetch speedup of a training epoch: %.2fx\n", best[0][1] / best[1][1]);
  lam_optimizer_free(opt);
  lam_vars_free(vars);
  lam_layer_free(model);
  lam_dataset_free(d);
  lam_ctx_free(ctx);
  return 0;
}
