/* bench/bandwidth.c: a memory-bound op (add of two 2^24-element f32 tensors)
 * beside the bytes-moved limit measured with a plain C loop on the host in
 * the same run. Reports GB/s counted as 3 x 4 bytes per element (two reads,
 * one write) and the ratio to the C loop. Not a test: never asserts. */
#include <lamina.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(void) {
  const int64_t n = (int64_t)1 << 24;
  const int reps = 20;
  lam_ctx *ctx = NULL;
  if (lam_ctx_create(NULL, &ctx) != LAM_OK) {
    fprintf(stderr, "bandwidth: %s\n", lam_last_error());
    return 1;
  }
  float *a = malloc((size_t)n * 4), *b = malloc((size_t)n * 4), *c = malloc((size_t)n * 4);
  for (int64_t i = 0; i < n; i++) {
    a[i] = (float)(i % 1000);
    b[i] = 1.0f;
  }
  /* Host peer: the same add as a plain loop (the compiler vectorises it). */
  double best_c = 1e30;
  for (int r = 0; r < reps; r++) {
    double t0 = now();
    for (int64_t i = 0; i < n; i++) c[i] = a[i] + b[i];
    double t = now() - t0;
    if (t < best_c) best_c = t;
  }
  lam_tensor *ta = lam_tensor_from_host(ctx, LAM_F32, 1, &n, a);
  lam_tensor *tb = lam_tensor_from_host(ctx, LAM_F32, 1, &n, b);
  lam_tensor *warm = lam_add(ta, tb);
  lam_tensor_free(warm);
  lam_ctx_finish(ctx);
  double best_l = 1e30;
  for (int r = 0; r < reps; r++) {
    double t0 = now();
    lam_tensor *y = lam_add(ta, tb);
    lam_ctx_finish(ctx);
    double t = now() - t0;
    lam_tensor_free(y);
    if (t < best_l) best_l = t;
  }
  double bytes = 3.0 * 4.0 * (double)n;
  printf("| op | elements | C loop GB/s | lamina GB/s | ratio |\n|---|---|---|---|---|\n");
  printf("| add f32 | 2^24 | %.1f | %.1f | %.2f |\n", bytes / best_c / 1e9, bytes / best_l / 1e9,
         best_c / best_l);
  printf("(device: %s; best of %d runs; C loop single-threaded on the host, %g check)\n",
         lam_ctx_device(ctx)->name, reps, (double)c[12345]);
  lam_tensor_free(ta);
  lam_tensor_free(tb);
  lam_ctx_free(ctx);
  free(a);
  free(b);
  free(c);
  return 0;
}
