/* bench/attention.c: scaled dot-product attention, lamina's fused kernel
 * beside lamina's unfused path (matmul + softmax + matmul from ops) and
 * PyTorch on the CPU (2 threads, run as /usr/bin/python3 in the same run:
 * F.scaled_dot_product_attention where the installed torch has it, else the
 * same math as torch ops; "n/a" without python3/torch). For each sequence
 * length it prints the median forward and forward+backward times (backward
 * of sum(out * w) with respect to q, k and v) and the device memory each
 * lamina path needs on top of its inputs (peak live bytes in a fresh
 * context), which grows linearly with the sequence for the fused kernel and
 * quadratically for the unfused one. Not a test: never asserts.
 *
 * Usage: bench_attention [--reps N] [--batch B] [--heads H] [--head-dim D]
 *                        [--causal] [--seqs 128,512,2048] [--no-torch]
 * LAMINA_DEVICE picks the device as for every lamina program. */
#define _POSIX_C_SOURCE 200809L
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

static int cmp_double(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return (a > b) - (a < b);
}

typedef struct cfg {
  int64_t B, H, D, S;
  int causal;
  lam_attention_impl impl;
  lam_tensor *w;
} cfg;

static lam_tensor *loss_fn(lam_tensor *const *xs, int n, void *user) {
  cfg *c = user;
  lam_attention_opts o = lam_attention_defaults();
  o.causal = c->causal;
  o.impl = c->impl;
  lam_tensor *y = lam_scaled_dot_product_attention(xs[0], xs[1], xs[2], &o);
  lam_tensor *p = lam_mul(y, c->w);
  lam_tensor *s = lam_sum(p, 0, NULL, 0);
  lam_tensor_free(y);
  lam_tensor_free(p);
  return s;
}

typedef struct inputs {
  lam_tensor *q, *k, *v;
} inputs;

static int make_inputs(lam_ctx *ctx, cfg *c, inputs *in) {
  lam_rng_key keys[4];
  lam_rng_split(lam_rng_key_make(1), 4, keys);
  int64_t shape[4] = {c->B, c->H, c->S, c->D};
  in->q = lam_random_normal(ctx, keys[0], LAM_F32, 4, shape, 0, 1);
  in->k = lam_random_normal(ctx, keys[1], LAM_F32, 4, shape, 0, 1);
  in->v = lam_random_normal(ctx, keys[2], LAM_F32, 4, shape, 0, 1);
  c->w = lam_random_normal(ctx, keys[3], LAM_F32, 4, shape, 0, 1);
  return in->q && in->k && in->v && c->w ? 0 : -1;
}

static void free_inputs(cfg *c, inputs *in) {
  lam_tensor_free(in->q);
  lam_tensor_free(in->k);
  lam_tensor_free(in->v);
  lam_tensor_free(c->w);
  c->w = NULL;
}

/* One run: forward only (backward 0) or forward + backward. Returns seconds or -1. */
static double run_once(lam_ctx *ctx, cfg *c, const inputs *in, int backward) {
  double t0 = now();
  if (!backward) {
    lam_attention_opts o = lam_attention_defaults();
    o.causal = c->causal;
    o.impl = c->impl;
    lam_tensor *y = lam_scaled_dot_product_attention(in->q, in->k, in->v, &o);
    if (!y || lam_ctx_finish(ctx) != LAM_OK) return -1;
    lam_tensor_free(y);
  } else {
    lam_tensor *xs[3] = {in->q, in->k, in->v}, *g[3] = {0}, *loss = NULL;
    if (lam_grad(ctx, loss_fn, c, xs, 3, &loss, g) != LAM_OK || lam_ctx_finish(ctx) != LAM_OK) return -1;
    for (int i = 0; i < 3; i++) lam_tensor_free(g[i]);
    lam_tensor_free(loss);
  }
  return now() - t0;
}

/* Extra device bytes of one forward+backward in a fresh context (-1 on failure). */
static double extra_bytes(cfg c, int backward) {
  lam_ctx *ctx = NULL;
  if (lam_ctx_create(NULL, &ctx) != LAM_OK) return -1;
  inputs in;
  double r = -1;
  if (make_inputs(ctx, &c, &in) == 0 && lam_ctx_finish(ctx) == LAM_OK) {
    lam_stats s0, s1;
    lam_ctx_stats(ctx, &s0);
    if (run_once(ctx, &c, &in, backward) >= 0) {
      lam_ctx_stats(ctx, &s1);
      r = (double)(s1.peak_bytes - s0.live_bytes);
    }
  }
  free_inputs(&c, &in);
  lam_ctx_free(ctx);
  return r;
}

/* PyTorch timings (ms) through /usr/bin/python3; 0 with a note when unavailable. */
static const char *TORCH_SCRIPT =
    "import sys, time, math\n"
    "try:\n"
    "    import torch\n"
    "except Exception:\n"
    "    print('n/a n/a none'); sys.exit(0)\n"
    "torch.set_num_threads(2)\n"
    "B, H, S, D, causal, reps = [int(a) for a in sys.argv[1:7]]\n"
    "F = torch.nn.functional\n"
    "fused = hasattr(F, 'scaled_dot_product_attention')\n"
    "def sdpa(q, k, v):\n"
    "    if fused:\n"
    "        return F.scaled_dot_product_attention(q, k, v, is_causal=bool(causal))\n"
    "    s = q @ k.transpose(-2, -1) / math.sqrt(D)\n"
    "    if causal:\n"
    "        s = s.masked_fill(torch.ones(S, S, dtype=torch.bool).triu(1), float('-inf'))\n"
    "    return torch.softmax(s, -1) @ v\n"
    "g = torch.Generator().manual_seed(0)\n"
    "q, k, v, w = [torch.randn(B, H, S, D, generator=g) for _ in range(4)]\n"
    "def med(f):\n"
    "    f(); ts = []\n"
    "    for _ in range(reps):\n"
    "        t0 = time.perf_counter(); f(); ts.append(time.perf_counter() - t0)\n"
    "    ts.sort(); return ts[len(ts) // 2] * 1e3\n"
    "def fwd():\n"
    "    with torch.no_grad(): sdpa(q, k, v)\n"
    "def fb():\n"
    "    qq, kk, vv = [t.clone().requires_grad_() for t in (q, k, v)]\n"
    "    (sdpa(qq, kk, vv) * w).sum().backward()\n"
    "print('%.3f %.3f %s' % (med(fwd), med(fb), 'sdpa' if fused else 'math'))\n";

static int torch_times(const cfg *c, int reps, double *fwd, double *fb, char *kind, size_t kind_cap) {
  if (access("/usr/bin/python3", X_OK) != 0) return -1;
  char path[] = "/tmp/lamina_bench_attention_XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return -1;
  FILE *f = fdopen(fd, "w");
  if (!f) {
    close(fd);
    unlink(path);
    return -1;
  }
  fputs(TORCH_SCRIPT, f);
  fclose(f);
  char cmd[512];
  /* passive OpenMP waits: spinning threads distort small cases on a shared machine */
  snprintf(cmd, sizeof cmd,
           "OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE} /usr/bin/python3 %s %lld %lld %lld %lld %d %d 2>/dev/null", path,
           (long long)c->B, (long long)c->H, (long long)c->S, (long long)c->D, c->causal, reps);
  FILE *p = popen(cmd, "r");
  int rc = -1;
  if (p) {
    char a[64] = "", b[64] = "", k[32] = "";
    if (fscanf(p, "%63s %63s %31s", a, b, k) == 3 && strcmp(a, "n/a") != 0) {
      *fwd = atof(a);
      *fb = atof(b);
      snprintf(kind, kind_cap, "%s", k);
      rc = 0;
    }
    pclose(p);
  }
  unlink(path);
  return rc;
}

static void fmt_ms(char *buf, size_t cap, double ms) {
  if (ms < 0) snprintf(buf, cap, "n/a");
  else snprintf(buf, cap, "%.2f", ms);
}

int main(int argc, char **argv) {
  int reps = 5, causal = 0, use_torch = 1;
  int64_t B = 1, H = 8, D = 64;
  int64_t seqs[8] = {128, 512, 2048};
  int nseq = 3;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--batch") && i + 1 < argc) B = atoll(argv[++i]);
    else if (!strcmp(argv[i], "--heads") && i + 1 < argc) H = atoll(argv[++i]);
    else if (!strcmp(argv[i], "--head-dim") && i + 1 < argc) D = atoll(argv[++i]);
    else if (!strcmp(argv[i], "--causal")) causal = 1;
    else if (!strcmp(argv[i], "--no-torch")) use_torch = 0;
    else if (!strcmp(argv[i], "--seqs") && i + 1 < argc) {
      nseq = 0;
      for (char *t = strtok(argv[++i], ","); t && nseq < 8; t = strtok(NULL, ",")) seqs[nseq++] = atoll(t);
    } else {
      fprintf(stderr, "usage: %s [--reps N] [--batch B] [--heads H] [--head-dim D] [--causal] "
                      "[--seqs a,b,c] [--no-torch]\n", argv[0]);
      return 2;
    }
  }
  if (reps < 1) reps = 1;
  lam_ctx *ctx = NULL;
  if (lam_ctx_create(NULL, &ctx) != LAM_OK) {
    fprintf(stderr, "attention: %s\n", lam_last_error());
    return 1;
  }
  const lam_device_info *dev = lam_ctx_device(ctx);
  printf("Device: %s (%s), %u compute units; batch %lld, heads %lld, head_dim %lld, %s, f32; "
         "median of %d runs\n\n",
         dev->name, dev->platform_name, dev->compute_units, (long long)B, (long long)H, (long long)D,
         causal ? "causal" : "no mask", reps);
  printf("| seq  | fused fwd | unfused fwd | torch fwd | fused f+b | unfused f+b | torch f+b | "
         "fwd x | f+b x | fused mem MB (f / f+b) | unfused mem MB (f / f+b) |\n");
  printf("|------|----------:|------------:|----------:|----------:|------------:|----------:|"
         "------:|------:|-----------------------:|-------------------------:|\n");
  char torch_kind[32] = "";
  for (int si = 0; si < nseq; si++) {
    cfg c = {B, H, D, seqs[si], causal, LAM_ATTENTION_FUSED, NULL};
    inputs in;
    if (make_inputs(ctx, &c, &in) != 0) {
      fprintf(stderr, "attention: %s\n", lam_last_error());
      return 1;
    }
    double med[2][2] = {{-1, -1}, {-1, -1}}; /* [impl][backward] in ms; -1: n/a */
    for (int bw = 0; bw < 2; bw++) {
      double t[2][64];
      int r = reps > 64 ? 64 : reps, ok[2] = {1, 1};
      for (int impl = 0; impl < 2; impl++) { /* warm-up: kernel builds, pool */
        c.impl = impl ? LAM_ATTENTION_UNFUSED : LAM_ATTENTION_FUSED;
        if (run_once(ctx, &c, &in, bw) < 0) { /* e.g. unfused scores past 2^31 elements */
          fprintf(stderr, "attention: seq %lld %s: %s\n", (long long)c.S,
                  impl ? "unfused" : "fused", lam_last_error());
          ok[impl] = 0;
        }
      }
      for (int k = 0; k < r; k++) /* interleaved, so load changes hit both paths alike */
        for (int impl = 0; impl < 2; impl++) {
          if (!ok[impl]) continue;
          c.impl = impl ? LAM_ATTENTION_UNFUSED : LAM_ATTENTION_FUSED;
          t[impl][k] = run_once(ctx, &c, &in, bw) * 1e3;
        }
      for (int impl = 0; impl < 2; impl++) {
        if (!ok[impl]) continue;
        qsort(t[impl], (size_t)r, sizeof(double), cmp_double);
        med[impl][bw] = t[impl][r / 2];
      }
    }
    free_inputs(&c, &in);
    lam_ctx_trim(ctx);
    double tf = -1, tb = -1;
    if (use_torch && torch_times(&c, reps, &tf, &tb, torch_kind, sizeof torch_kind) != 0) tf = tb = -1;
    double mem[2][2];
    for (int impl = 0; impl < 2; impl++)
      for (int bw = 0; bw < 2; bw++) {
        cfg cm = c;
        cm.impl = impl ? LAM_ATTENTION_UNFUSED : LAM_ATTENTION_FUSED;
        mem[impl][bw] = extra_bytes(cm, bw) / (1024.0 * 1024.0);
      }
    char s[6][32];
    fmt_ms(s[0], 32, med[0][0]);
    fmt_ms(s[1], 32, med[1][0]);
    fmt_ms(s[2], 32, tf);
    fmt_ms(s[3], 32, med[0][1]);
    fmt_ms(s[4], 32, med[1][1]);
    fmt_ms(s[5], 32, tb);
    char rf[16] = "  n/a", rb[16] = "  n/a";
    if (med[0][0] > 0 && med[1][0] > 0) snprintf(rf, sizeof rf, "%5.2f", med[1][0] / med[0][0]);
    if (med[0][1] > 0 && med[1][1] > 0) snprintf(rb, sizeof rb, "%5.2f", med[1][1] / med[0][1]);
    printf("| %4lld | %9s | %11s | %9s | %9s | %11s | %9s | %5s | %5s | %10.1f / %9.1f | %11.1f / %10.1f |\n",
           (long long)c.S, s[0], s[1], s[2], s[3], s[4], s[5], rf, rb, mem[0][0], mem[0][1],
           mem[1][0], mem[1][1]);
    fflush(stdout);
  }
  printf("\nTimes in ms. fwd x / f+b x: unfused time / fused time. Memory: peak device bytes\n"
         "above the inputs in a fresh context. torch: %s.\n",
         torch_kind[0] ? (strcmp(torch_kind, "sdpa") == 0 ? "F.scaled_dot_product_attention, 2 threads"
                                                            : "matmul + softmax + matmul (this torch has no "
                                                              "F.scaled_dot_product_attention), 2 threads")
                       : "not available");
  lam_ctx_free(ctx);
  return 0;
}
