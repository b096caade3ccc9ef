/* bench/conv.c: lamina's convolution beside PyTorch CPU (same threads: 2,
 * or --threads) on the convolution layers of ResNet-18, in one run:
 *   - ImageNet ResNet-18 on a 1x3x224x224 input (7x7/2 stem, then 3x3 and
 *     1x1/2 downsample convs at 56, 28, 14, 7);
 *   - CIFAR ResNet-18 (3x3 stem, no max pool: 32, 16, 8, 4) on a batch of
 *     32 images of 3x32x32.
 * For every distinct layer it times the forward pass and forward+backward
 * (gradients of x and the weight for a random cotangent, no bias, as
 * ResNet's convs before batch norm), best of --reps runs after a warm-up,
 * and prints lamina, PyTorch and the ratio lamina/PyTorch (lower is better;
 * < 1 means lamina is faster), then totals weighted by how often each layer
 * occurs in the network. With --rounds R (default 3) the PyTorch and the
 * lamina measurements alternate R times and each figure is the best over
 * the rounds, so both sides get the machine's quietest moments (the
 * development machines are shared; single runs vary by 2x and more).
 *
 * PyTorch runs in a child /usr/bin/python3 (the script is embedded below,
 * written to a temporary file and run through popen with the same layer
 * list); its lines "T <layer> <fwd_ms> <fwdbwd_ms>" are parsed. Without
 * python3 or torch the PyTorch columns read "n/a". The machine is shared:
 * best-of-N is the reported figure.
 *
 * Usage: bench_conv [--reps N] [--rounds R] [--threads T] [--quick] [--no-torch]
 *   --quick  only the 224x224 batch-1 set. LAMINA_DEVICE picks the device. */
#define _POSIX_C_SOURCE 200809L
#include <lamina.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

typedef struct layer {
  const char *set; /* "224" or "cifar32" */
  const char *name;
  int n, c, o, hw, k, s, p, count;
  double t_fwd, t_bwd;   /* lamina best seconds */
  double pt_fwd, pt_bwd; /* PyTorch best seconds, < 0: n/a */
} layer;

/* t_fwd/t_bwd start at 1e30 and keep the best over rounds. */
static layer layers[] = {
    {"224", "conv1 7x7/2 3->64", 1, 3, 64, 224, 7, 2, 3, 1, 1e30, 1e30, -1, -1},
    {"224", "layer1 3x3 64->64", 1, 64, 64, 56, 3, 1, 1, 4, 1e30, 1e30, -1, -1},
    {"224", "layer2.0 3x3/2 64->128", 1, 64, 128, 56, 3, 2, 1, 1, 1e30, 1e30, -1, -1},
    {"224", "layer2 3x3 128->128", 1, 128, 128, 28, 3, 1, 1, 3, 1e30, 1e30, -1, -1},
    {"224", "layer2 down 1x1/2 64->128", 1, 64, 128, 56, 1, 2, 0, 1, 1e30, 1e30, -1, -1},
    {"224", "layer3.0 3x3/2 128->256", 1, 128, 256, 28, 3, 2, 1, 1, 1e30, 1e30, -1, -1},
    {"224", "layer3 3x3 256->256", 1, 256, 256, 14, 3, 1, 1, 3, 1e30, 1e30, -1, -1},
    {"224", "layer3 down 1x1/2 128->256", 1, 128, 256, 28, 1, 2, 0, 1, 1e30, 1e30, -1, -1},
    {"224", "layer4.0 3x3/2 256->512", 1, 256, 512, 14, 3, 2, 1, 1, 1e30, 1e30, -1, -1},
    {"224", "layer4 3x3 512->512", 1, 512, 512, 7, 3, 1, 1, 3, 1e30, 1e30, -1, -1},
    {"224", "layer4 down 1x1/2 256->512", 1, 256, 512, 14, 1, 2, 0, 1, 1e30, 1e30, -1, -1},
    {"cifar32", "conv1 3x3 3->64", 32, 3, 64, 32, 3, 1, 1, 1, 1e30, 1e30, -1, -1},
    {"cifar32", "layer1 3x3 64->64", 32, 64, 64, 32, 3, 1, 1, 4, 1e30, 1e30, -1, -1},
    {"cifar32", "layer2.0 3x3/2 64->128", 32, 64, 128, 32, 3, 2, 1, 1, 1e30, 1e30, -1, -1},
    {"cifar32", "layer2 3x3 128->128", 32, 128, 128, 16, 3, 1, 1, 3, 1e30, 1e30, -1, -1},
    {"cifar32", "layer2 down 1x1/2 64->128", 32, 64, 128, 32, 1, 2, 0, 1, 1e30, 1e30, -1, -1},
    {"cifar32", "layer3.0 3x3/2 128->256", 32, 128, 256, 16, 3, 2, 1, 1, 1e30, 1e30, -1, -1},
    {"cifar32", "layer3 3x3 256->256", 32, 256, 256, 8, 3, 1, 1, 3, 1e30, 1e30, -1, -1},
    {"cifar32", "layer3 down 1x1/2 128->256", 32, 128, 256, 16, 1, 2, 0, 1, 1e30, 1e30, -1, -1},
    {"cifar32", "layer4.0 3x3/2 256->512", 32, 256, 512, 8, 3, 2, 1, 1, 1e30, 1e30, -1, -1},
    {"cifar32", "layer4 3x3 512->512", 32, 512, 512, 4, 3, 1, 1, 3, 1e30, 1e30, -1, -1},
    {"cifar32", "layer4 down 1x1/2 256->512", 32, 256, 512, 8, 1, 2, 0, 1, 1e30, 1e30, -1, -1},
};
#define NLAYERS ((int)(sizeof layers / sizeof *layers))

static int out_hw(const layer *l) { return (l->hw + 2 * l->p - l->k) / l->s + 1; }

static double flops(const layer *l) {
  const double o = out_hw(l);
  return 2.0 * l->n * l->o * o * o * l->c * l->k * l->k;
}

/* ---- lamina ------------------------------------------------------------------- */

typedef struct run {
  lam_conv_opts o;
} run;

static lam_tensor *conv_fn(lam_tensor *const *xs, int n, void *user) {
  return lam_conv2d(xs[0], xs[1], NULL, &((run *)user)->o);
}

static int time_lamina(lam_ctx *ctx, layer *l, int reps) {
  lam_rng_key key = lam_rng_key_make(7);
  lam_rng_key k[3];
  lam_rng_split(key, 3, k);
  const int oh = out_hw(l);
  lam_tensor *x = lam_random_normal(ctx, k[0], LAM_F32, 4, (int64_t[]){l->n, l->c, l->hw, l->hw}, 0, 1);
  lam_tensor *w = lam_random_normal(ctx, k[1], LAM_F32, 4, (int64_t[]){l->o, l->c, l->k, l->k}, 0, 0.1);
  lam_tensor *cot = lam_random_normal(ctx, k[2], LAM_F32, 4, (int64_t[]){l->n, l->o, oh, oh}, 0, 1);
  if (!x || !w || !cot) return -1;
  run r;
  r.o = lam_conv_defaults();
  r.o.padding = LAM_PADDING_EXPLICIT;
  for (int i = 0; i < 2; i++) r.o.stride[i] = l->s, r.o.pad[i][0] = r.o.pad[i][1] = l->p;
  int rc = 0;
  for (int rep = -2; rep < reps && rc == 0; rep++) { /* two warm-ups: kernel builds, pool */
    double t0 = now();
    lam_tensor *y = lam_conv2d(x, w, NULL, &r.o);
    if (!y || lam_ctx_finish(ctx) != LAM_OK) rc = -1;
    double dt = now() - t0;
    lam_tensor_free(y);
    if (rep >= 0 && dt < l->t_fwd) l->t_fwd = dt;
  }
  lam_tensor *xs[2] = {x, w};
  for (int rep = -2; rep < reps && rc == 0; rep++) {
    lam_tensor *g[2] = {NULL, NULL}, *y = NULL;
    double t0 = now();
    if (lam_vjp(ctx, conv_fn, &r, xs, 2, cot, &y, g) != LAM_OK || lam_ctx_finish(ctx) != LAM_OK)
      rc = -1;
    double dt = now() - t0;
    lam_tensor_free(y), lam_tensor_free(g[0]), lam_tensor_free(g[1]);
    if (rep >= 0 && dt < l->t_bwd) l->t_bwd = dt;
  }
  lam_tensor_free(x), lam_tensor_free(w), lam_tensor_free(cot);
  return rc;
}

/* ---- PyTorch ---------------------------------------------------------------------- */

static const char torch_script[] =
    "import sys, time\n"
    "try:\n"
    "    import torch\n"
    "    import torch.nn.functional as F\n"
    "except Exception as e:\n"
    "    print('E no torch: %s' % e)\n"
    "    sys.exit(0)\n"
    "reps, threads = int(sys.argv[1]), int(sys.argv[2])\n"
    "torch.set_num_threads(threads)\n"
    "print('V torch %s, %d threads, mkldnn %s' % (torch.__version__, torch.get_num_threads(),\n"
    "      torch.backends.mkldnn.is_available()))\n"
    "torch.manual_seed(0)\n"
    "for i, spec in enumerate(sys.argv[3:]):\n"
    "    n, c, o, hw, k, s, p = map(int, spec.split(','))\n"
    "    x = torch.randn(n, c, hw, hw)\n"
    "    w = torch.randn(o, c, k, k) * 0.1\n"
    "    y = F.conv2d(x, w, stride=s, padding=p)\n"
    "    cot = torch.randn(y.shape)\n"
    "    best_f = best_b = 1e30\n"
    "    with torch.no_grad():\n"
    "        for r in range(reps + 2):\n"
    "            t0 = time.perf_counter(); F.conv2d(x, w, stride=s, padding=p)\n"
    "            dt = time.perf_counter() - t0\n"
    "            if r >= 2: best_f = min(best_f, dt)\n"
    "    xg = x.clone().requires_grad_(True); wg = w.clone().requires_grad_(True)\n"
    "    for r in range(reps + 2):\n"
    "        xg.grad = None; wg.grad = None\n"
    "        t0 = time.perf_counter()\n"
    "        F.conv2d(xg, wg, stride=s, padding=p).backward(cot)\n"
    "        dt = time.perf_counter() - t0\n"
    "        if r >= 2: best_b = min(best_b, dt)\n"
    "    print('T %d %.6f %.6f' % (i, best_f * 1e3, best_b * 1e3))\n"
    "    sys.stdout.flush()\n";

/* Runs the embedded script on layers [0, n); fills pt_* and version. Returns 0 or -1. */
static int time_torch(int n, int reps, int threads, char *version, size_t vcap) {
  char path[] = "/tmp/lamina_bench_conv_XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return -1;
  FILE *f = fdopen(fd, "w");
  if (!f) {
    close(fd);
    unlink(path);
    return -1;
  }
  fputs(torch_script, f);
  fclose(f);
  size_t cap = 256 + (size_t)n * 48;
  char *cmd = malloc(cap);
  int len = snprintf(cmd, cap, "/usr/bin/python3 %s %d %d", path, reps, threads);
  for (int i = 0; i < n; i++) {
    const layer *l = &layers[i];
    len += snprintf(cmd + len, cap - (size_t)len, " %d,%d,%d,%d,%d,%d,%d", l->n, l->c, l->o, l->hw,
                    l->k, l->s, l->p);
  }
  snprintf(cmd + len, cap - (size_t)len, " 2>/dev/null");
  FILE *p = popen(cmd, "r");
  free(cmd);
  int got = 0;
  if (p) {
    char line[512];
    while (fgets(line, sizeof line, p)) {
      int i;
      double a, b;
      if (line[0] == 'T' && sscanf(line + 1, "%d %lf %lf", &i, &a, &b) == 3 && i >= 0 && i < n) {
        if (layers[i].pt_fwd < 0 || a * 1e-3 < layers[i].pt_fwd) layers[i].pt_fwd = a * 1e-3;
        if (layers[i].pt_bwd < 0 || b * 1e-3 < layers[i].pt_bwd) layers[i].pt_bwd = b * 1e-3;
        got++;
      } else if (line[0] == 'V' || line[0] == 'E') {
        line[strcspn(line, "\n")] = 0;
        size_t m = strlen(line + 2);
        if (m >= vcap) m = vcap - 1;
        memcpy(version, line + 2, m);
        version[m] = 0;
      }
    }
    pclose(p);
  }
  unlink(path);
  return got > 0 ? 0 : -1;
}

/* ---- report ------------------------------------------------------------------------ */

static void fmt_ms(char *buf, size_t cap, double s) {
  if (s < 0) snprintf(buf, cap, "n/a");
  else snprintf(buf, cap, "%.2f", s * 1e3);
}

static void fmt_ratio(char *buf, size_t cap, double a, double b) {
  if (a < 0 || b <= 0) snprintf(buf, cap, "n/a");
  else snprintf(buf, cap, "%.2f", a / b);
}

static void print_set(const char *set, const char *title, int n) {
  printf("\n%s\n\n", title);
  printf("| %-28s | %3s | %8s | %8s | %6s | %5s | %9s | %9s | %5s |\n", "layer (count)", "x", "lam fwd",
         "pt fwd", "GF/s", "ratio", "lam f+b", "pt f+b", "ratio");
  printf("|------------------------------|----:|---------:|---------:|-------:|------:|----------:|----------:|------:|\n");
  double tf = 0, tb = 0, pf = 0, pb = 0;
  int have_pt = 1;
  for (int i = 0; i < n; i++) {
    const layer *l = &layers[i];
    if (strcmp(l->set, set) != 0) continue;
    char a[32], b[32], c[32], d[32], e[32], f[32];
    fmt_ms(a, sizeof a, l->t_fwd), fmt_ms(b, sizeof b, l->pt_fwd);
    fmt_ratio(c, sizeof c, l->t_fwd, l->pt_fwd);
    fmt_ms(d, sizeof d, l->t_bwd), fmt_ms(e, sizeof e, l->pt_bwd);
    fmt_ratio(f, sizeof f, l->t_bwd, l->pt_bwd);
    printf("| %-28s | %3d | %8s | %8s | %6.0f | %5s | %9s | %9s | %5s |\n", l->name, l->count, a, b,
           flops(l) / l->t_fwd * 1e-9, c, d, e, f);
    tf += l->count * l->t_fwd, tb += l->count * l->t_bwd;
    if (l->pt_fwd < 0) have_pt = 0;
    pf += l->count * l->pt_fwd, pb += l->count * l->pt_bwd;
  }
  char a[32], b[32], c[32], d[32], e[32], f[32];
  fmt_ms(a, sizeof a, tf), fmt_ms(b, sizeof b, have_pt ? pf : -1);
  fmt_ratio(c, sizeof c, tf, have_pt ? pf : -1);
  fmt_ms(d, sizeof d, tb), fmt_ms(e, sizeof e, have_pt ? pb : -1);
  fmt_ratio(f, sizeof f, tb, have_pt ? pb : -1);
  printf("| %-28s | %3s | %8s | %8s | %6s | %5s | %9s | %9s | %5s |\n", "total (weighted by count)", "",
         a, b, "", c, d, e, f);
}

int main(int argc, char **argv) {
  int reps = 5, rounds = 3, threads = 2, quick = 0, torch = 1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--quick")) quick = 1;
    else if (!strcmp(argv[i], "--no-torch")) torch = 0;
    else {
      fprintf(stderr, "usage: %s [--reps N] [--rounds R] [--threads T] [--quick] [--no-torch]\n",
              argv[0]);
      return 2;
    }
  }
  if (reps < 1) reps = 1;
  if (rounds < 1) rounds = 1;
  lam_ctx *ctx;
  if (lam_ctx_create(NULL, &ctx) != LAM_OK) {
    fprintf(stderr, "bench_conv: %s\n", lam_last_error());
    return 1;
  }
  const lam_device_info *dev = lam_ctx_device(ctx);
  int n = 0;
  while (n < NLAYERS && (!quick || strcmp(layers[n].set, "224") == 0)) n++;
  char version[256] = "not run";
  for (int round = 0; round < rounds; round++) {
    if (torch && time_torch(n, reps, threads, version, sizeof version) != 0 &&
        strcmp(version, "not run") == 0) {
      snprintf(version, sizeof version, "unavailable (no /usr/bin/python3 or it failed)");
      torch = 0;
    }
    for (int i = 0; i < n; i++) {
      if (time_lamina(ctx, &layers[i], reps) != 0) {
        fprintf(stderr, "bench_conv: %s: %s\n", layers[i].name, lam_last_error());
        lam_ctx_free(ctx);
        return 1;
      }
    }
  }
  printf("device: %s (%s), %u compute units; PyTorch: %s; best of %d runs x %d rounds, f32\n",
         dev->name, dev->platform_name, dev->compute_units, version, reps, rounds);
  print_set("224", "ResNet-18 conv layers, input 1x3x224x224 (ms)", n);
  if (!quick) print_set("cifar32", "CIFAR ResNet-18 conv layers, batch 32 x 3x32x32 (ms)", n);
  printf("\nratio = lamina time / PyTorch time (lower is better); f+b = forward + backward "
         "(input and weight gradients); GF/s = lamina forward.\n");
  lam_ctx_free(ctx);
  return 0;
}
