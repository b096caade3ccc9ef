/* bench/norm.c: layer norm and batch norm throughput (f32) beside PyTorch on
 * the CPU (torch.set_num_threads(2), run through /usr/bin/python3 in the
 * same run; "n/a" when Python or torch is missing) and the bytes-moved limit:
 * the least bytes each op must move (forward: read x, write y; forward plus
 * backward: also read x and dy, write dx) at the bandwidth of a plain C
 * streaming loop (y = a * x + b over the same tensor size, best of one and
 * two threads) measured here. Times are the best of several runs, after a
 * warm-up that builds the kernels. Not a test: never asserts. */
#define _POSIX_C_SOURCE 200809L /* popen, clock_gettime */
#include <lamina.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- the C streaming loop ----------------------------------------------- */

typedef struct {
  const float *x;
  float *y;
  int64_t n;
} lam_bench_span;

static void *stream_part(void *p) {
  lam_bench_span *s = p;
  for (int64_t i = 0; i < s->n; i++) s->y[i] = 1.5f * s->x[i] + 0.25f;
  return NULL;
}

/* Best GB/s (read + write) of the loop over n floats with 1 or 2 threads. */
static double stream_gbs(int64_t n, int reps) {
  float *x = malloc((size_t)n * 4), *y = malloc((size_t)n * 4);
  for (int64_t i = 0; i < n; i++) x[i] = (float)(i % 977);
  memset(y, 0, (size_t)n * 4);
  double best = 1e30;
  for (int threads = 1; threads <= 2; threads++)
    for (int r = 0; r < reps; r++) {
      pthread_t th[2];
      lam_bench_span sp[2];
      double t0 = now();
      for (int k = 0; k < threads; k++) {
        int64_t lo = n * k / threads, hi = n * (k + 1) / threads;
        sp[k] = (lam_bench_span){x + lo, y + lo, hi - lo};
        pthread_create(&th[k], NULL, stream_part, &sp[k]);
      }
      for (int k = 0; k < threads; k++) pthread_join(th[k], NULL);
      double t = now() - t0;
      if (t < best) best = t;
    }
  double gbs = 8.0 * (double)n / best / 1e9 + 0 * y[n / 2];
  free(x);
  free(y);
  return gbs;
}

/* ---- PyTorch -------------------------------------------------------------- */

static const char *lam_bench_py =
    "import time\n"
    "import torch\n"
    "import torch.nn.functional as F\n"
    "torch.set_num_threads(2)\n"
    "def best(f, reps):\n"
    "    f()\n"
    "    t = 1e9\n"
    "    for _ in range(reps):\n"
    "        t0 = time.perf_counter(); f(); t = min(t, time.perf_counter() - t0)\n"
    "    return t * 1e3\n"
    "M, D = %lld, %lld\n"
    "N, C, H, W = %lld, %lld, %lld, %lld\n"
    "x = torch.randn(M, D); w = torch.ones(D, requires_grad=True); b = torch.zeros(D, requires_grad=True)\n"
    "xg = x.clone().requires_grad_(True); dy = torch.randn(M, D)\n"
    "with torch.no_grad():\n"
    "    print('ln_fwd', best(lambda: F.layer_norm(x, (D,), w, b, 1e-5), %d))\n"
    "print('ln_fwdbwd', best(lambda: torch.autograd.grad(F.layer_norm(xg, (D,), w, b, 1e-5), (xg, w, b), dy), %d))\n"
    "x4 = torch.randn(N, C, H, W); c = torch.ones(C, requires_grad=True); d = torch.zeros(C, requires_grad=True)\n"
    "rm = torch.zeros(C); rv = torch.ones(C); x4g = x4.clone().requires_grad_(True); dy4 = torch.randn(N, C, H, W)\n"
    "with torch.no_grad():\n"
    "    print('bn_fwd', best(lambda: F.batch_norm(x4, rm, rv, c, d, True, 0.1, 1e-5), %d))\n"
    "    print('bn_eval', best(lambda: F.batch_norm(x4, rm, rv, c, d, False, 0.1, 1e-5), %d))\n"
    "print('bn_fwdbwd', best(lambda: torch.autograd.grad(F.batch_norm(x4g, rm, rv, c, d, True, 0.1, 1e-5), (x4g, c, d), dy4), %d))\n";

typedef struct {
  double ln_fwd, ln_fwdbwd, bn_fwd, bn_eval, bn_fwdbwd;
} lam_bench_times;

/* Runs the PyTorch peer; missing values stay negative. */
static void torch_times(const int64_t *ln, const int64_t *bn, int reps, lam_bench_times *t) {
  *t = (lam_bench_times){-1, -1, -1, -1, -1};
  char script[4096];
  snprintf(script, sizeof script, lam_bench_py, (long long)ln[0], (long long)ln[1], (long long)bn[0],
           (long long)bn[1], (long long)bn[2], (long long)bn[3], reps, reps, reps, reps, reps);
  char path[] = "/tmp/lamina_bench_norm_XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return;
  FILE *f = fdopen(fd, "w");
  if (!f) return;
  fputs(script, f);
  fclose(f);
  char cmd[256];
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s 2>/dev/null", path);
  FILE *p = popen(cmd, "r");
  if (p) {
    char name[32];
    double v;
    while (fscanf(p, "%31s %lf", name, &v) == 2) {
      if (!strcmp(name, "ln_fwd")) t->ln_fwd = v;
      if (!strcmp(name, "ln_fwdbwd")) t->ln_fwdbwd = v;
      if (!strcmp(name, "bn_fwd")) t->bn_fwd = v;
      if (!strcmp(name, "bn_eval")) t->bn_eval = v;
      if (!strcmp(name, "bn_fwdbwd")) t->bn_fwdbwd = v;
    }
    pclose(p);
  }
  remove(path);
}

/* ---- lamina ------------------------------------------------------------------ */

typedef struct {
  int op; /* 0 layer norm, 1 batch norm training, 2 batch norm evaluation */
  lam_tensor *w, *b, *rm, *rv;
} lam_bench_op;

static lam_tensor *run_op(lam_tensor *const *xs, int n, void *user) {
  (void)n;
  lam_bench_op *o = user;
  if (o->op == 0) return lam_layer_norm(xs[0], 1, xs[1], xs[2], 1e-5);
  return lam_batch_norm(xs[0], o->rm, o->rv, xs[1], xs[2], o->op == 1, 0.1, 1e-5, NULL, NULL);
}

/* Best ms of the forward (bwd 0) or forward + backward (bwd 1). */
static double lamina_ms(lam_ctx *ctx, lam_bench_op *o, lam_tensor *const *xs, lam_tensor *dy, int bwd,
                        int reps) {
  double best = 1e30;
  for (int r = 0; r <= reps; r++) { /* r == 0: warm-up (kernel builds) */
    double t0 = now();
    if (bwd) {
      lam_tensor *out = NULL, *g[3] = {0};
      if (lam_vjp(ctx, run_op, o, xs, 3, dy, &out, g) != LAM_OK) {
        fprintf(stderr, "bench_norm: %s\n", lam_last_error());
        return -1;
      }
      lam_ctx_finish(ctx);
      lam_tensor_free(out);
      for (int i = 0; i < 3; i++) lam_tensor_free(g[i]);
    } else {
      lam_tensor *y = run_op(xs, 3, o);
      if (!y) {
        fprintf(stderr, "bench_norm: %s\n", lam_last_error());
        return -1;
      }
      lam_ctx_finish(ctx);
      lam_tensor_free(y);
    }
    double t = (now() - t0) * 1e3;
    if (r > 0 && t < best) best = t;
  }
  return best;
}

static void cell(char *buf, size_t n, double v) {
  if (v < 0) snprintf(buf, n, "n/a");
  else snprintf(buf, n, "%.2f", v);
}

int main(int argc, char **argv) {
  int small = argc > 1 && !strcmp(argv[1], "--small");
  const int reps = small ? 3 : 10;
  const int64_t ln[2] = {small ? 1024 : 8192, 1024};
  const int64_t bn[4] = {small ? 4 : 32, 64, 56, 56};
  lam_ctx *ctx = NULL;
  if (lam_ctx_create(NULL, &ctx) != LAM_OK) {
    fprintf(stderr, "bench_norm: %s\n", lam_last_error());
    return 1;
  }
  const int64_t nln = ln[0] * ln[1], nbn = bn[0] * bn[1] * bn[2] * bn[3];
  lam_rng_key key = lam_rng_key_make(1);
  lam_tensor *lx = lam_random_normal(ctx, key, LAM_F32, 2, ln, 0, 1);
  lam_tensor *ldy = lam_random_normal(ctx, lam_rng_fold_in(key, 1), LAM_F32, 2, ln, 0, 1);
  lam_tensor *lw = lam_tensor_full(ctx, LAM_F32, 1, &ln[1], 1), *lb = lam_tensor_zeros(ctx, LAM_F32, 1, &ln[1]);
  lam_tensor *bx = lam_random_normal(ctx, lam_rng_fold_in(key, 2), LAM_F32, 4, bn, 0, 1);
  lam_tensor *bdy = lam_random_normal(ctx, lam_rng_fold_in(key, 3), LAM_F32, 4, bn, 0, 1);
  lam_tensor *bw = lam_tensor_full(ctx, LAM_F32, 1, &bn[1], 1), *bb = lam_tensor_zeros(ctx, LAM_F32, 1, &bn[1]);
  lam_tensor *rm = lam_tensor_zeros(ctx, LAM_F32, 1, &bn[1]), *rv = lam_tensor_full(ctx, LAM_F32, 1, &bn[1], 1);
  if (!lx || !ldy || !lw || !lb || !bx || !bdy || !bw || !bb || !rm || !rv) {
    fprintf(stderr, "bench_norm: %s\n", lam_last_error());
    return 1;
  }
  lam_bench_op lno = {0, NULL, NULL, NULL, NULL}, bno = {1, NULL, NULL, rm, rv}, beo = {2, NULL, NULL, rm, rv};
  lam_tensor *lxs[3] = {lx, lw, lb}, *bxs[3] = {bx, bw, bb};
  double l[5] = {lamina_ms(ctx, &lno, lxs, ldy, 0, reps), lamina_ms(ctx, &lno, lxs, ldy, 1, reps),
                 lamina_ms(ctx, &bno, bxs, bdy, 0, reps), lamina_ms(ctx, &beo, bxs, bdy, 0, reps),
                 lamina_ms(ctx, &bno, bxs, bdy, 1, reps)};
  lam_bench_times pt;
  torch_times(ln, bn, reps, &pt);
  double p[5] = {pt.ln_fwd, pt.ln_fwdbwd, pt.bn_fwd, pt.bn_eval, pt.bn_fwdbwd};
  double gbs = stream_gbs(nbn > nln ? nbn : nln, reps);
  /* least bytes: forward 2 passes (x in, y out), forward + backward 5 (x, y; x, dy, dx) */
  const double bytes[5] = {8.0 * nln, 20.0 * nln, 8.0 * nbn, 8.0 * nbn, 20.0 * nbn};
  const char *names[5] = {"layer_norm fwd", "layer_norm fwd+bwd", "batch_norm train fwd",
                          "batch_norm eval fwd", "batch_norm train fwd+bwd"};
  char lshape[64], bshape[64];
  snprintf(lshape, sizeof lshape, "[%lld, %lld]", (long long)ln[0], (long long)ln[1]);
  snprintf(bshape, sizeof bshape, "[%lld, %lld, %lld, %lld]", (long long)bn[0], (long long)bn[1],
           (long long)bn[2], (long long)bn[3]);
  printf("| op (f32) | shape | lamina ms | lamina GB/s | PyTorch CPU ms | bytes-moved limit ms | lamina / limit |\n");
  printf("|---|---|---|---|---|---|---|\n");
  for (int i = 0; i < 5; i++) {
    double lim = bytes[i] / (gbs * 1e9) * 1e3;
    char a[32], b[32], c[32], d[32], e[32];
    cell(a, sizeof a, l[i]);
    cell(b, sizeof b, l[i] > 0 ? bytes[i] / (l[i] * 1e-3) / 1e9 : -1);
    cell(c, sizeof c, p[i]);
    cell(d, sizeof d, lim);
    cell(e, sizeof e, l[i] > 0 ? l[i] / lim : -1);
    printf("| %s | %s | %s | %s | %s | %s | %sx |\n", names[i], i < 2 ? lshape : bshape, a, b, c, d, e);
  }
  printf("(device: %s; best of %d runs; C streaming loop %.1f GB/s; PyTorch %s with 2 threads; "
         "lamina fwd+bwd through lam_vjp, which also copies the cotangent)\n",
         lam_ctx_device(ctx)->name, reps, gbs, p[0] < 0 ? "unavailable" : "CPU");
  lam_tensor *ts[] = {lx, ldy, lw, lb, bx, bdy, bw, bb, rm, rv};
  for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) lam_tensor_free(ts[i]);
  lam_ctx_free(ctx);
  return 0;
}
