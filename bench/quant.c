/* bench/quant.c: quantized linear layers beside f32, in one run. For the
 * linear shapes of MiniLM (384->1536, 1536->384) and GPT-2 small
 * (768->3072, 3072->768, 768->2304) it prints the weight bytes of f32, 8-bit
 * and 4-bit (packed words plus scales and biases, group size 64), the time
 * of x @ W^T at batch 1 and 32 for f32 (lam_matmul_t) and for
 * lam_quantized_matmul at 8 and 4 bits, the speed-up ratios, and the max
 * error of the quantized outputs against f32. Times are the best of several
 * runs after a warm-up that builds the kernels; quote ratios, and the
 * machine's load (printed from /proc/loadavg), not absolute times. These
 * weights fit in a large last-level cache, so a second table repeats batch
 * 1 over enough distinct weights (>= 96 MiB of f32) that each call reads its
 * weight from memory, as one decoding step over a model's layers does. Usage:
 * bench_quant [reps] [group_size]. Not a test: never asserts. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <lamina.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct {
  lam_tensor *x, *w, *wq, *s, *b;
  int gs, bits; /* bits 0: f32 */
} job;

static lam_tensor *run(const job *j) {
  return j->bits ? lam_quantized_matmul(j->x, j->wq, j->s, j->b, j->gs, j->bits) : lam_matmul_t(j->x, j->w, 0, 1);
}

/* Best milliseconds of reps runs (each synchronised). */
static double best_ms(lam_ctx *ctx, const job *j, int reps) {
  lam_tensor_free(run(j));
  lam_ctx_finish(ctx);
  double best = 1e30;
  for (int r = 0; r < reps; r++) {
    double t0 = now();
    lam_tensor *y = run(j);
    lam_ctx_finish(ctx);
    double t = now() - t0;
    lam_tensor_free(y);
    if (t < best) best = t;
  }
  return best * 1e3;
}

/* Batch 1 over `copies` distinct weights (each quantized separately), so that
 * the f32 set exceeds the last-level cache and every call streams its weight
 * from memory, as a decoding pass over a model's layers does: best
 * milliseconds per call of [f32, q8, q4]. */
static void stream_ms(lam_ctx *ctx, int64_t in, int64_t out, int gs, int copies, int reps, unsigned *seed,
                      double ms[3]) {
  job *jobs = calloc((size_t)copies * 3, sizeof *jobs);
  float *wh = malloc((size_t)(in * out) * 4), *xh = malloc((size_t)in * 4);
  for (int64_t i = 0; i < in; i++) xh[i] = (float)(rand_r(seed) % 100000) / 50000.0f - 1.0f;
  lam_tensor *x = lam_tensor_from_host(ctx, LAM_F32, 2, (int64_t[]){1, in}, xh);
  for (int c = 0; c < copies; c++) {
    for (int64_t i = 0; i < in * out; i++) wh[i] = 0.1f * ((float)(rand_r(seed) % 100000) / 100000.0f - 0.5f);
    lam_tensor *w = lam_tensor_from_host(ctx, LAM_F32, 2, (int64_t[]){out, in}, wh);
    for (int q = 0; q < 3; q++) {
      job *j = &jobs[q * copies + c];
      j->x = x, j->w = w, j->gs = gs, j->bits = q == 0 ? 0 : q == 1 ? 8 : 4;
      if (q && lam_quantize(w, gs, j->bits, &j->wq, &j->s, &j->b) != LAM_OK) {
        fprintf(stderr, "bench_quant: %s\n", lam_last_error());
        exit(1);
      }
    }
  }
  for (int q = 0; q < 3; q++) {
    double best = 1e30;
    for (int r = 0; r <= reps; r++) {
      double t0 = now();
      for (int c = 0; c < copies; c++) lam_tensor_free(run(&jobs[q * copies + c]));
      lam_ctx_finish(ctx);
      double t = now() - t0;
      if (r > 0 && t < best) best = t; /* r == 0: warm-up */
    }
    ms[q] = best * 1e3 / copies;
  }
  for (int c = 0; c < copies; c++) {
    lam_tensor_free(jobs[c].w);
    for (int q = 1; q < 3; q++)
      lam_tensor_free(jobs[q * copies + c].wq), lam_tensor_free(jobs[q * copies + c].s),
          lam_tensor_free(jobs[q * copies + c].b);
  }
  lam_tensor_free(x);
  free(jobs), free(wh), free(xh);
}

static double max_err(const lam_tensor *a, const lam_tensor *b) {
  int64_t n = lam_tensor_numel(a);
  float *x = malloc((size_t)n * 4), *y = malloc((size_t)n * 4);
  lam_tensor_to_host(a, x, (size_t)n * 4);
  lam_tensor_to_host(b, y, (size_t)n * 4);
  double e = 0;
  for (int64_t i = 0; i < n; i++) e = fmax(e, fabs((double)x[i] - (double)y[i]));
  free(x), free(y);
  return e;
}

int main(int argc, char **argv) {
  const int reps = argc > 1 ? atoi(argv[1]) : 10;
  const int gs = argc > 2 ? atoi(argv[2]) : 64;
  lam_ctx *ctx = NULL;
  if (lam_ctx_create(NULL, &ctx) != LAM_OK) {
    fprintf(stderr, "bench_quant: %s\n", lam_last_error());
    return 1;
  }
  char load[128] = "n/a";
  FILE *lf = fopen("/proc/loadavg", "r");
  if (lf) {
    if (!fgets(load, sizeof load, lf)) strcpy(load, "n/a\n");
    fclose(lf);
  }
  printf("device: %s; load average: %s", lam_ctx_device(ctx)->name, load);
  printf("group size %d, best of %d runs; weights U(-0.05, 0.05), x U(-1, 1); err = max |y_q - y_f32|\n", gs, reps);
  static const struct {
    const char *name;
    int64_t in, out;
  } shapes[] = {{"MiniLM ffn in", 384, 1536},   {"MiniLM ffn out", 1536, 384}, {"GPT-2 mlp in", 768, 3072},
                {"GPT-2 mlp out", 3072, 768}, {"GPT-2 qkv", 768, 2304}};
  printf("%-15s %-10s %9s %6s %6s | %9s %9s %9s %6s %6s | %9s %9s %9s %6s %6s | %8s %8s\n", "layer", "in->out",
         "f32 KiB", "q8/f32", "q4/f32", "b1 f32ms", "b1 q8ms", "b1 q4ms", "f32/q8", "f32/q4", "b32 f32", "b32 q8",
         "b32 q4", "f32/q8", "f32/q4", "err q8", "err q4");
  unsigned seed = 1;
  for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
    const int64_t in = shapes[si].in, out = shapes[si].out;
    float *wh = malloc((size_t)(in * out) * 4);
    for (int64_t i = 0; i < in * out; i++) wh[i] = 0.1f * ((float)(rand_r(&seed) % 100000) / 100000.0f - 0.5f);
    lam_tensor *w = lam_tensor_from_host(ctx, LAM_F32, 2, (int64_t[]){out, in}, wh);
    free(wh);
    job jobs[3] = {{.w = w}, {.w = w, .gs = gs, .bits = 8}, {.w = w, .gs = gs, .bits = 4}};
    double bytes[3] = {(double)lam_tensor_nbytes(w), 0, 0};
    for (int q = 1; q < 3; q++) {
      if (lam_quantize(w, gs, jobs[q].bits, &jobs[q].wq, &jobs[q].s, &jobs[q].b) != LAM_OK) {
        fprintf(stderr, "bench_quant: %s\n", lam_last_error());
        return 1;
      }
      bytes[q] = (double)(lam_tensor_nbytes(jobs[q].wq) + lam_tensor_nbytes(jobs[q].s) + lam_tensor_nbytes(jobs[q].b));
    }
    double ms[2][3], err[3] = {0};
    const int64_t batches[2] = {1, 32};
    for (int bi = 0; bi < 2; bi++) {
      float *xh = malloc((size_t)(batches[bi] * in) * 4);
      for (int64_t i = 0; i < batches[bi] * in; i++) xh[i] = (float)(rand_r(&seed) % 100000) / 50000.0f - 1.0f;
      lam_tensor *x = lam_tensor_from_host(ctx, LAM_F32, 2, (int64_t[]){batches[bi], in}, xh);
      free(xh);
      for (int q = 0; q < 3; q++) {
        jobs[q].x = x;
        ms[bi][q] = best_ms(ctx, &jobs[q], reps);
      }
      if (bi == 1) {
        lam_tensor *y0 = run(&jobs[0]);
        for (int q = 1; q < 3; q++) {
          lam_tensor *yq = run(&jobs[q]);
          err[q] = max_err(y0, yq);
          lam_tensor_free(yq);
        }
        lam_tensor_free(y0);
      }
      lam_tensor_free(x);
    }
    char io[24];
    snprintf(io, sizeof io, "%lld->%lld", (long long)in, (long long)out);
    printf("%-15s %-10s %9.0f %6.3f %6.3f | %9.3f %9.3f %9.3f %6.2f %6.2f | %9.3f %9.3f %9.3f %6.2f %6.2f | %8.2e %8.2e\n",
           shapes[si].name, io, bytes[0] / 1024, bytes[1] / bytes[0], bytes[2] / bytes[0], ms[0][0], ms[0][1],
           ms[0][2], ms[0][0] / ms[0][1], ms[0][0] / ms[0][2], ms[1][0], ms[1][1], ms[1][2], ms[1][0] / ms[1][1],
           ms[1][0] / ms[1][2], err[1], err[2]);
    for (int q = 1; q < 3; q++) lam_tensor_free(jobs[q].wq), lam_tensor_free(jobs[q].s), lam_tensor_free(jobs[q].b);
    lam_tensor_free(w);
  }
  printf("\nbatch 1, streaming: distinct weights per call, f32 set >= 96 MiB (past the caches), ms per call\n");
  printf("%-15s %-10s %6s | %9s %9s %9s %6s %6s\n", "layer", "in->out", "copies", "f32 ms", "q8 ms", "q4 ms",
         "f32/q8", "f32/q4");
  for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
    const int64_t in = shapes[si].in, out = shapes[si].out;
    const int copies = (int)((96ll << 20) / (in * out * 4)) + 1;
    double ms[3];
    stream_ms(ctx, in, out, gs, copies, reps > 3 ? 3 : reps, &seed, ms);
    char io[24];
    snprintf(io, sizeof io, "%lld->%lld", (long long)in, (long long)out);
    printf("%-15s %-10s %6d | %9.3f %9.3f %9.3f %6.2f %6.2f\n", shapes[si].name, io, copies, ms[0], ms[1], ms[2],
           ms[0] / ms[1], ms[0] / ms[2]);
  }
  lf = fopen("/proc/loadavg", "r");
  if (lf) {
    if (fgets(load, sizeof load, lf)) printf("load average after: %s", load);
    fclose(lf);
  }
  lam_ctx_free(ctx);
  return 0;
}
