/* bench/rnn.c: LSTM forward and forward+backward time of lamina (f32)
 * beside PyTorch on the CPU (torch.set_num_threads(2), through
 * /usr/bin/python3) measured in the same run: batch 32, sequence 100,
 * input and hidden 256, one layer, time-major (PyTorch's defaults). The
 * backward is the gradient of sum(y) with respect to every parameter
 * (lam_value_and_grad; PyTorch: y.sum().backward()). Each case is warmed up
 * once and then timed `reps` times; the table shows the best and the median
 * run, and lamina's best over PyTorch's best. PyTorch columns read "n/a"
 * when /usr/bin/python3 or torch is missing.
 *
 * Usage: bench_rnn [--reps N] [--batch B] [--seq T] [--hidden H] [--layers L] [--bidirectional]
 * LAMINA_DEVICE picks the device as for every lamina program. */
#define _POSIX_C_SOURCE 200809L
#include <lamina.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
  lam_layer *layer;
  lam_tensor *x;
} bench_user;

static lam_tensor *loss_fn(lam_ptree *params, void *user) {
  bench_user *u = user;
  lam_tensor *y = NULL;
  if (lam_nn_lstm_apply(u->layer, params, u->x, NULL, NULL, NULL, NULL, &y, NULL, NULL) != LAM_OK)
    return NULL;
  lam_tensor *s = lam_sum(y, 0, NULL, 0);
  lam_tensor_free(y);
  return s;
}

/* Times one pass (backward when bwd) reps times after a warm-up; 0 on success. */
static int time_lamina(lam_ctx *ctx, bench_user *u, lam_ptree *params, int bwd, int reps,
                       double *best, double *median) {
  double *t = malloc(sizeof(double) * (size_t)reps);
  int rc = 0;
  for (int r = -1; r < reps && rc == 0; r++) {
    double t0 = now();
    if (bwd) {
      lam_tensor *loss = NULL;
      lam_ptree *grads = NULL;
      if (lam_value_and_grad(ctx, loss_fn, u, params, &loss, &grads) != LAM_OK) rc = -1;
      if (rc == 0 && lam_ctx_finish(ctx) != LAM_OK) rc = -1;
      lam_tensor_free(loss);
      lam_ptree_free(grads);
    } else {
      lam_tensor *y = NULL;
      if (lam_nn_lstm_apply(u->layer, params, u->x, NULL, NULL, NULL, NULL, &y, NULL, NULL) !=
              LAM_OK ||
          lam_ctx_finish(ctx) != LAM_OK)
        rc = -1;
      lam_tensor_free(y);
    }
    if (r >= 0) t[r] = now() - t0;
  }
  if (rc == 0) {
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    *best = t[0];
    *median = t[reps / 2];
  }
  free(t);
  return rc;
}

/* PyTorch's best/median forward and forward+backward in ms; 0 on success. */
static int time_torch(int B, int T, int H, int L, int bidir, int reps, double out[4]) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "/usr/bin/python3 -c '\n"
           "import time, torch\n"
           "torch.set_num_threads(2)\n"
           "torch.manual_seed(0)\n"
           "m = torch.nn.LSTM(%d, %d, num_layers=%d, bidirectional=%s)\n"
           "x = torch.randn(%d, %d, %d)\n"
           "def run(f):\n"
           "    f()\n"
           "    ts = []\n"
           "    for _ in range(%d):\n"
           "        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)\n"
           "    ts.sort()\n"
           "    return ts[0] * 1e3, ts[len(ts) // 2] * 1e3\n"
           "def fwd():\n"
           "    with torch.no_grad():\n"
           "        m(x)\n"
           "def fwdbwd():\n"
           "    m.zero_grad()\n"
           "    y, _ = m(x)\n"
           "    y.sum().backward()\n"
           "a = run(fwd)\n"
           "b = run(fwdbwd)\n"
           "print(a[0], a[1], b[0], b[1])\n"
           "' 2>/dev/null",
           H, H, L, bidir ? "True" : "False", T, B, H, reps);
  FILE *p = popen(cmd, "r");
  if (!p) return -1;
  int n = fscanf(p, "%lf %lf %lf %lf", &out[0], &out[1], &out[2], &out[3]);
  int rc = pclose(p);
  return n == 4 && rc == 0 ? 0 : -1;
}

int main(int argc, char **argv) {
  int reps = 5, B = 32, T = 100, H = 256, L = 1, bidir = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--reps") && i + 1 < argc)
      reps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
      B = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--seq") && i + 1 < argc)
      T = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--hidden") && i + 1 < argc)
      H = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--layers") && i + 1 < argc)
      L = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--bidirectional"))
      bidir = 1;
    else {
      fprintf(stderr,
              "usage: %s [--reps N] [--batch B] [--seq T] [--hidden H] [--layers L] "
              "[--bidirectional]\n",
              argv[0]);
      return 2;
    }
  }
  if (reps < 1 || B < 1 || T < 1 || H < 1 || L < 1) {
    fprintf(stderr, "bench_rnn: sizes and reps must be >= 1\n");
    return 2;
  }
  lam_ctx *ctx = NULL;
  if (lam_ctx_create(NULL, &ctx) != LAM_OK) {
    fprintf(stderr, "bench_rnn: %s\n", lam_last_error());
    return 1;
  }
  lam_rnn_opts o = lam_rnn_defaults();
  o.num_layers = L;
  o.bidirectional = bidir;
  lam_layer *layer = lam_nn_lstm(H, H, &o);
  lam_vars *vars = NULL;
  lam_tensor *x =
      lam_random_uniform(ctx, lam_rng_key_make(1), LAM_F32, 3, (int64_t[]){T, B, H}, -1, 1);
  if (!layer || !x || lam_layer_init(layer, ctx, lam_rng_key_make(0), LAM_F32, &vars) != LAM_OK) {
    fprintf(stderr, "bench_rnn: %s\n", lam_last_error());
    return 1;
  }
  bench_user u = {layer, x};
  double lb[2], lm[2];
  for (int bwd = 0; bwd < 2; bwd++)
    if (time_lamina(ctx, &u, lam_vars_params(vars), bwd, reps, &lb[bwd], &lm[bwd]) != 0) {
      fprintf(stderr, "bench_rnn: %s\n", lam_last_error());
      return 1;
    }
  double tt[4];
  const int have_torch = time_torch(B, T, H, L, bidir, reps, tt) == 0;
  printf(
      "LSTM f32: batch %d, seq %d, input = hidden %d, %d layer(s)%s; %d reps (best / median ms)\n",
      B, T, H, L, bidir ? ", bidirectional" : "", reps);
  printf("device: %s\n", lam_ctx_device(ctx)->name);
  printf("%-18s %10s %10s   %10s %10s   %8s\n", "pass", "lamina", "", "torch-cpu2", "", "ratio");
  const char *names[2] = {"forward", "forward+backward"};
  for (int i = 0; i < 2; i++) {
    if (have_torch)
      printf("%-18s %10.2f %10.2f   %10.2f %10.2f   %7.2fx\n", names[i], lb[i] * 1e3, lm[i] * 1e3,
             tt[2 * i], tt[2 * i + 1], lb[i] * 1e3 / tt[2 * i]);
    else
      printf("%-18s %10.2f %10.2f   %10s %10s   %8s\n", names[i], lb[i] * 1e3, lm[i] * 1e3, "n/a",
             "n/a", "n/a");
  }
  printf("ratio: lamina best / torch best (lower is better for lamina)\n");
  lam_tensor_free(x);
  lam_vars_free(vars);
  lam_layer_free(layer);
  lam_ctx_free(ctx);
  return 0;
}
