/* bench/gemm.c: GFLOP/s of lam_matmul (f32) beside OpenBLAS cblas_sgemm
 * measured in the same run, for square sizes 256..2048, a transformer-sized
 * 4096x768x768 and the transposed variants at 1024. OpenBLAS gets as many
 * threads as the OpenCL device has compute units. Each case is warmed up
 * (kernel builds, pool) and then timed `reps` times; the table shows the
 * best and the median run and best/best as the ratio.
 *
 * Usage: bench_gemm [--reps N] [--clblast] [--quick]
 *   --clblast  context with clblast_on_cpu (CLBlast with its defaults on CPUs)
 *   --quick    only 256..1024 square
 * LAMINA_DEVICE picks the device as for every lamina program. */
#define _POSIX_C_SOURCE 200809L
#include <lamina.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef LAMINA_HAVE_OPENBLAS
#include <cblas.h>
#endif

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return (a > b) - (a < b);
}

typedef struct {
  const char *label;
  int m, n, k, ta, tb;
} bench_case;

/* Fills best and median seconds over reps runs (after one warm-up). */
static int time_lamina(lam_ctx *ctx, const bench_case *c, int reps, double *best, double *median) {
  int64_t sa[2] = {c->ta ? c->k : c->m, c->ta ? c->m : c->k};
  int64_t sb[2] = {c->tb ? c->n : c->k, c->tb ? c->k : c->n};
  lam_tensor *a = lam_tensor_full(ctx, LAM_F32, 2, sa, 0.5);
  lam_tensor *b = lam_tensor_full(ctx, LAM_F32, 2, sb, 0.25);
  if (!a || !b) return -1;
  double *t = malloc(sizeof(double) * (size_t)reps);
  int rc = 0;
  for (int r = -1; r < reps && rc == 0; r++) {
    double t0 = now();
    lam_tensor *y = lam_matmul_t(a, b, c->ta, c->tb);
    if (!y || lam_ctx_finish(ctx) != LAM_OK) rc = -1;
    double dt = now() - t0;
    if (r >= 0) t[r] = dt;
    if (y && r == reps - 1) { /* spot-check one element: k * 0.5 * 0.25 */
      float v[1];
      lam_tensor *row = lam_tensor_reshape(y, 1, (int64_t[]){-1});
      lam_tensor *one = row ? lam_tensor_slice0(row, 0, 1) : NULL;
      if (!one || lam_tensor_to_host(one, v, sizeof v) != LAM_OK || v[0] != (float)c->k * 0.125f)
        rc = -2;
      lam_tensor_free(one);
      lam_tensor_free(row);
    }
    lam_tensor_free(y);
  }
  if (rc == 0) {
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    *best = t[0];
    *median = t[reps / 2];
  }
  free(t);
  lam_tensor_free(a);
  lam_tensor_free(b);
  return rc;
}

#ifdef LAMINA_HAVE_OPENBLAS
static double time_openblas(const bench_case *c, int reps) {
  float *a = malloc(sizeof(float) * (size_t)c->m * (size_t)c->k);
  float *b = malloc(sizeof(float) * (size_t)c->k * (size_t)c->n);
  float *y = malloc(sizeof(float) * (size_t)c->m * (size_t)c->n);
  for (size_t i = 0; i < (size_t)c->m * (size_t)c->k; i++) a[i] = 0.5f;
  for (size_t i = 0; i < (size_t)c->k * (size_t)c->n; i++) b[i] = 0.25f;
  double best = 1e30;
  for (int r = -1; r < reps; r++) {
    double t0 = now();
    cblas_sgemm(CblasRowMajor, c->ta ? CblasTrans : CblasNoTrans, c->tb ? CblasTrans : CblasNoTrans,
                c->m, c->n, c->k, 1.0f, a, c->ta ? c->m : c->k, b, c->tb ? c->k : c->n, 0.0f, y,
                c->n);
    double dt = now() - t0;
    if (r >= 0 && dt < best) best = dt;
  }
  free(a);
  free(b);
  free(y);
  return best;
}
#endif

/* --sizes a,b,...: square cases of those sizes plus the three transposed
 * cases at the first size (GPU runs use 1024,2048,4096,8192). */
enum { MAX_CASES = 16 };
static int parse_sizes(char *list, bench_case *cases, char labels[][32]) {
  int n = 0, first = 0;
  for (char *t = strtok(list, ","); t && n < MAX_CASES - 3; t = strtok(NULL, ",")) {
    int v = atoi(t);
    if (v < 1) return -1;
    if (!first) first = v;
    snprintf(labels[n], 32, "%d^3", v);
    cases[n] = (bench_case){labels[n], v, v, v, 0, 0};
    n++;
  }
  static const int tr[3][2] = {{0, 1}, {1, 0}, {1, 1}};
  static const char *suffix[3] = {"A@B^T", "A^T@B", "A^T@B^T"};
  for (int i = 0; first && i < 3; i++, n++) {
    snprintf(labels[n], 32, "%d^3 %s", first, suffix[i]);
    cases[n] = (bench_case){labels[n], first, first, first, tr[i][0], tr[i][1]};
  }
  return n;
}

int main(int argc, char **argv) {
  int reps = 5, quick = 0, use_openblas = 1, n_custom = 0;
  bench_case custom[MAX_CASES];
  char labels[MAX_CASES][32];
  lam_ctx_opts o = lam_ctx_defaults();
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--clblast")) o.clblast_on_cpu = true;
    else if (!strcmp(argv[i], "--quick")) quick = 1;
    else if (!strcmp(argv[i], "--no-openblas")) use_openblas = 0;
    else if (!strcmp(argv[i], "--sizes") && i + 1 < argc &&
             (n_custom = parse_sizes(argv[++i], custom, labels)) > 0) {
    } else {
      fprintf(stderr, "usage: %s [--reps N] [--clblast] [--quick] [--no-openblas] "
                      "[--sizes a,b,...]\n", argv[0]);
      return 2;
    }
  }
  if (reps < 1) reps = 1;
  (void)use_openblas; /* unused without OpenBLAS */
  lam_ctx *ctx;
  if (lam_ctx_create(&o, &ctx) != LAM_OK) {
    fprintf(stderr, "bench_gemm: %s\n", lam_last_error());
    return 1;
  }
  const lam_device_info *dev = lam_ctx_device(ctx);
#ifdef LAMINA_HAVE_OPENBLAS
  openblas_set_num_threads((int)dev->compute_units);
#endif
  printf("device: %s (%s), %u compute units; lamina %s; OpenBLAS threads: %u; reps %d\n",
         dev->name, dev->platform_name, dev->compute_units,
         !o.clblast_on_cpu ? "tuned CPU GEMM where CPU" : "CLBlast defaults", dev->compute_units,
         reps);
  const bench_case default_cases[] = {
      {"256^3", 256, 256, 256, 0, 0},        {"512^3", 512, 512, 512, 0, 0},
      {"1024^3", 1024, 1024, 1024, 0, 0},    {"2048^3", 2048, 2048, 2048, 0, 0},
      {"4096x768x768", 4096, 768, 768, 0, 0}, {"1024^3 A@B^T", 1024, 1024, 1024, 0, 1},
      {"1024^3 A^T@B", 1024, 1024, 1024, 1, 0}, {"1024^3 A^T@B^T", 1024, 1024, 1024, 1, 1},
  };
  /* All lamina cases first, then all OpenBLAS cases: OpenBLAS's idle
   * threads keep spinning for a while after a call and would steal the
   * cores from the next lamina case. */
  const bench_case *cases = n_custom ? custom : default_cases;
  const int NC = n_custom ? n_custom : (int)(sizeof default_cases / sizeof *default_cases);
  double best[MAX_CASES], median[MAX_CASES], ob[MAX_CASES];
  int rc[MAX_CASES];
  for (int i = 0; i < NC; i++) {
    const bench_case *c = &cases[i];
    rc[i] = quick && (c->m > 1024 || c->n > 1024 || c->k > 1024)
                ? 1
                : time_lamina(ctx, c, reps, &best[i], &median[i]);
    if (rc[i] == -1) fprintf(stderr, "bench_gemm: %s: %s\n", c->label, lam_last_error());
  }
  for (int i = 0; i < NC; i++) {
    ob[i] = 0;
#ifdef LAMINA_HAVE_OPENBLAS
    if (rc[i] != 1 && use_openblas) ob[i] = time_openblas(&cases[i], reps);
#endif
  }
  printf("\n| %-15s | %12s | %14s | %15s | %5s |\n", "M x N x K", "lamina best", "lamina median",
         "OpenBLAS best", "ratio");
  printf("|-----------------|-------------:|---------------:|----------------:|------:|\n");
  for (int i = 0; i < NC; i++) {
    const bench_case *c = &cases[i];
    if (rc[i] == 1) continue;
    if (rc[i] != 0) {
      printf("| %-15s | %s |\n", c->label, rc[i] == -2 ? "WRONG RESULT" : "failed");
      continue;
    }
    double flop = 2.0 * c->m * c->n * c->k;
    if (ob[i] > 0)
      printf("| %-15s | %12.1f | %14.1f | %15.1f | %5.2f |\n", c->label, flop / best[i] * 1e-9,
             flop / median[i] * 1e-9, flop / ob[i] * 1e-9, ob[i] / best[i]);
    else
      printf("| %-15s | %12.1f | %14.1f | %15s | %5s |\n", c->label, flop / best[i] * 1e-9,
             flop / median[i] * 1e-9, "n/a", "n/a");
  }
  printf("\nGFLOP/s = 2*M*N*K / seconds; ratio = OpenBLAS best time / lamina best time.\n");
  lam_ctx_free(ctx);
  return 0;
}
