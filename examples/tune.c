/* tune.c: tunes lamina's kernels for this machine's device and stores the
 * result beside the kernel cache, where every later lamina program on the
 * same device, driver and lamina version picks it up (docs/devices.md).
 *
 *   tune [--budget SECONDS] [--kernel gemm|norm]... [--f64] [--no-store]
 *
 * Prints a progress line per candidate and the parameters chosen. */
#include <lamina.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(void) {
  fprintf(stderr, "usage: tune [--budget SECONDS] [--kernel gemm|norm]... [--f64] [--no-store]\n");
  return 2;
}

int main(int argc, char **argv) {
  lam_tune_opts o = lam_tune_defaults();
  o.verbose = true; /* the tool shows its progress; the library is silent unless asked */
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--budget") == 0 && i + 1 < argc) {
      char *end;
      o.budget_s = strtod(argv[++i], &end);
      if (*end || o.budget_s <= 0) return usage();
    } else if (strcmp(argv[i], "--kernel") == 0 && i + 1 < argc) {
      i++;
      if (strcmp(argv[i], "gemm") == 0)
        o.kernels |= LAM_TUNE_GEMM;
      else if (strcmp(argv[i], "norm") == 0)
        o.kernels |= LAM_TUNE_NORM;
      else
        return usage();
    } else if (strcmp(argv[i], "--f64") == 0) {
      o.f64 = true;
    } else if (strcmp(argv[i], "--no-store") == 0) {
      o.no_store = true;
    } else {
      return usage();
    }
  }
  lam_ctx *ctx = NULL;
  if (lam_ctx_create(NULL, &ctx) != LAM_OK) {
    fprintf(stderr, "tune: %s\n", lam_last_error());
    return 1;
  }
  printf("tuning for %s (driver %s), budget %.0f s\n", lam_ctx_device(ctx)->name,
         lam_ctx_device(ctx)->driver_version, o.budget_s > 0 ? o.budget_s : 120.0);
  fflush(stdout); /* before the progress lines on stderr */
  lam_tune_report r;
  if (lam_ctx_tune(ctx, &o, &r) != LAM_OK) {
    fprintf(stderr, "tune: %s\n", lam_last_error());
    lam_ctx_free(ctx);
    return 1;
  }
  if (r.gemm_f32[0]) {
    printf("gemm f32: %s\n", r.gemm_f32);
    printf("f32 square products: %.1f GFLOP/s with the defaults, %.1f tuned\n", r.gflops_default,
           r.gflops_tuned);
  }
  if (r.gemm_f64[0]) printf("gemm f64: %s\n", r.gemm_f64);
  if (r.norm_layout[0]) printf("norm layout: %s\n", r.norm_layout);
  printf("%d candidates (%d rejected) in %.1f s%s\n", r.candidates, r.rejected, r.seconds,
         r.complete ? "" : " (budget spent before the last stage)");
  if (r.stored)
    printf("stored in %s\n", r.path);
  else
    printf("not stored%s\n", o.no_store ? " (--no-store)" : " (no cache directory)");
  lam_ctx_free(ctx);
  return 0;
}
