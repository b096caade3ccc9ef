/* bench/kernel_build.c: how long the first use of a kernel program takes,
 * cold (built from source) and warm (loaded from lamina's disk cache), per
 * op family. Point POCL_CACHE_DIR at an empty directory too for a truly cold
 * PoCL build. Usage: bench_kernel_build [cache_dir] (default: a fresh temp dir). */
#include <lamina.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One op per family; returns seconds for its first call in a new context. */
static double first_use(const char *cache, int family, lam_stats *stats) {
  lam_ctx_opts o = lam_ctx_defaults();
  o.cache_dir = cache;
  lam_ctx *ctx = NULL;
  if (lam_ctx_create(&o, &ctx) != LAM_OK) return -1;
  lam_tensor *x = lam_tensor_full(ctx, LAM_F32, 2, (int64_t[]){64, 64}, 1.0);
  lam_ctx_finish(ctx);
  double t0 = now();
  lam_tensor *y = NULL;
  switch (family) {
    case 0: y = lam_tensor_arange(ctx, LAM_F32, 0, 10, 1); break;
    case 1: y = lam_exp(x); break;
    case 2: y = lam_sum(x, 1, (int[]){1}, 0); break;
    case 3: y = lam_transpose(x, 0, 1); break;
    case 4: y = lam_random_uniform(ctx, lam_rng_key_make(0), LAM_F32, 1, (int64_t[]){16}, 0, 1); break;
  }
  lam_ctx_finish(ctx);
  double t = now() - t0;
  lam_ctx_stats(ctx, stats);
  lam_tensor_free(y);
  lam_tensor_free(x);
  lam_ctx_free(ctx);
  return t;
}

int main(int argc, char **argv) {
  char tmpl[] = "/tmp/lamina-kcache-XXXXXX";
  const char *cache = argc > 1 ? argv[1] : mkdtemp(tmpl);
  const char *names[] = {"tensor (arange)", "elementwise (exp)", "reduce (sum)", "shape (transpose)",
                         "random (uniform)"};
  printf("| program | cold build s | warm (disk cache) s | ratio |\n|---|---|---|---|\n");
  for (int f = 0; f < 5; f++) {
    lam_stats a, b;
    double cold = first_use(cache, f, &a);
    double warm = first_use(cache, f, &b);
    printf("| %s | %.3f (%lld built) | %.3f (%lld loaded) | %.0fx |\n", names[f], cold,
           (long long)a.programs_built, warm, (long long)b.programs_loaded, cold / warm);
  }
  printf("(cache %s; set POCL_CACHE_DIR to an empty dir for a cold PoCL)\n", cache);
  return 0;
}
