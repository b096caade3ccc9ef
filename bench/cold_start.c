/* bench/cold_start.c: how long a program takes the first time it runs on a
 * machine, beside PyTorch CPU importing itself and running the same MLP.
 *
 * Each workload runs as a child process three times: cold (LAMINA_CACHE_DIR
 * and POCL_CACHE_DIR both new, empty folders), half-warm (lamina's cache as
 * the cold run left it, PoCL's empty again) and warm (both as the previous
 * runs left them). Workloads: examples/quickstart (a 2-layer MLP, 30 epochs),
 * examples/digits (the README's main example) and the first forward pass of
 * a MiniLM-sized BERT encoder (6 layers, hidden 384, 12 heads, batch 1 x seq
 * 128, random weights; this program's --child encoder). The PyTorch row times
 * `/usr/bin/python3` importing torch and training the quickstart MLP (same
 * data size, epochs, batch and optimizer); "n/a" without torch.
 *
 * Usage: bench_cold_start [--only quickstart|digits|encoder] [--no-torch]
 * Timings are wall seconds of the whole child process. */
#include <lamina.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef LAMINA_EXAMPLES_DIR
#define LAMINA_EXAMPLES_DIR "examples"
#endif

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The encoder workload, run in the child: build, init, one forward, read. */
static int child_encoder(void) {
  lam_ctx *ctx = NULL;
  if (lam_ctx_create(NULL, &ctx) != LAM_OK) return 1;
  lam_models_bert_opts o = lam_models_bert_defaults();
  o.hidden_size = 384;
  o.num_hidden_layers = 6;
  o.num_attention_heads = 12;
  o.intermediate_size = 1536;
  lam_layer *bert = lam_models_bert(&o);
  lam_vars *vars = NULL;
  if (!bert || lam_layer_init(bert, ctx, lam_rng_key_make(0), LAM_F32, &vars) != LAM_OK) return 1;
  lam_tensor *ids = lam_random_randint(ctx, lam_rng_key_make(1), 0, 30000, 2, (int64_t[]){1, 128});
  lam_tensor *hidden = NULL;
  if (!ids || lam_models_bert_apply(bert, lam_vars_params(vars), ids, NULL, &hidden, NULL) != LAM_OK)
    return 1;
  float *host = malloc(384 * 128 * sizeof *host);
  int rc = host && lam_tensor_to_host(hidden, host, 384 * 128 * sizeof *host) == LAM_OK ? 0 : 1;
  if (rc) fprintf(stderr, "encoder: %s\n", lam_last_error());
  free(host);
  lam_stats s;
  lam_ctx_stats(ctx, &s);
  fprintf(stderr, "encoder: %lld programs built, %.2f s in builds\n", (long long)s.programs_built,
          s.build_seconds);
  lam_tensor_free(hidden);
  lam_tensor_free(ids);
  lam_vars_free(vars);
  lam_layer_free(bert);
  lam_ctx_free(ctx);
  return rc;
}

/* Runs argv with the two cache folders; returns wall seconds or -1. */
static double run(char *const argv[], const char *lamina_cache, const char *pocl_cache) {
  fflush(stdout); /* or the child's copy of the buffer is printed twice */
  double t0 = now();
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (lamina_cache) setenv("LAMINA_CACHE_DIR", lamina_cache, 1);
    if (pocl_cache) setenv("POCL_CACHE_DIR", pocl_cache, 1);
    if (!getenv("BENCH_VERBOSE") && !freopen("/dev/null", "w", stdout)) _exit(126);
    execv(argv[0], argv);
    _exit(127);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) return -1;
  double t = now() - t0;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? t : -1;
}

static void fresh_dir(char *out, size_t cap, const char *tag) {
  snprintf(out, cap, "/tmp/lamina-cold-%s-XXXXXX", tag);
  if (!mkdtemp(out)) out[0] = '\0';
}

static void print_time(double t) {
  if (t < 0)
    printf(" failed |");
  else
    printf(" %.2f |", t);
}

static void workload(const char *name, char *const argv[]) {
  char lam_dir[128], pocl_cold[128], pocl_half[128];
  fresh_dir(lam_dir, sizeof lam_dir, "lamina");
  fresh_dir(pocl_cold, sizeof pocl_cold, "pocl");
  fresh_dir(pocl_half, sizeof pocl_half, "pocl");
  double cold = run(argv, lam_dir, pocl_cold);
  double half = run(argv, lam_dir, pocl_half);
  double warm = run(argv, lam_dir, pocl_half);
  printf("| %s |", name);
  print_time(cold);
  print_time(half);
  print_time(warm);
  printf("\n");
  fflush(stdout);
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf %s %s %s", lam_dir, pocl_cold, pocl_half);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", lam_dir);
}

/* PyTorch: interpreter start + import torch + the quickstart MLP, twice (the
 * second run has the OS file cache warm, as lamina's warm column). */
static const char *torch_mlp =
    "import torch\n"
    "torch.manual_seed(0)\n"
    "x = torch.rand(512, 2) * 3 - 1.5\n"
    "y = ((x * x).sum(1) < 1).long()\n"
    "m = torch.nn.Sequential(torch.nn.Linear(2, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))\n"
    "opt = torch.optim.Adam(m.parameters(), lr=1e-2)\n"
    "for epoch in range(30):\n"
    "    p = torch.randperm(512)\n"
    "    for i in range(0, 512, 32):\n"
    "        b = p[i:i + 32]\n"
    "        opt.zero_grad()\n"
    "        loss = torch.nn.functional.cross_entropy(m(x[b]), y[b])\n"
    "        loss.backward()\n"
    "        opt.step()\n";

int main(int argc, char **argv) {
  const char *only = NULL;
  int torch = 1;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--child") == 0 && i + 1 < argc && strcmp(argv[i + 1], "encoder") == 0)
      return child_encoder();
    if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) only = argv[++i];
    else if (strcmp(argv[i], "--no-torch") == 0) torch = 0;
  }
  char self[1024];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) {
    fprintf(stderr, "bench_cold_start: cannot find its own path\n");
    return 1;
  }
  self[n] = '\0';
  lam_ctx *ctx = NULL;
  if (lam_ctx_create(NULL, &ctx) != LAM_OK) {
    fprintf(stderr, "bench_cold_start: %s\n", lam_last_error());
    return 1;
  }
  double load[3] = {0, 0, 0};
  FILE *la = fopen("/proc/loadavg", "r");
  if (la) {
    if (fscanf(la, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3) load[0] = -1;
    fclose(la);
  }
  printf("device: %s (%s); %ld cores; load average %.2f %.2f %.2f\n", lam_ctx_device(ctx)->name,
         lam_ctx_device(ctx)->platform_name, sysconf(_SC_NPROCESSORS_ONLN), load[0], load[1],
         load[2]);
  lam_ctx_free(ctx);
  printf("| workload | cold s | half-warm s (lamina cache warm, PoCL's empty) | warm s |\n");
  printf("|---|---|---|---|\n");
  char quick[1200], digits[1200];
  snprintf(quick, sizeof quick, "%s/quickstart", LAMINA_EXAMPLES_DIR);
  snprintf(digits, sizeof digits, "%s/digits", LAMINA_EXAMPLES_DIR);
  if (!only || strcmp(only, "quickstart") == 0) workload("quickstart (MLP, 30 epochs)", (char *[]){quick, NULL});
  if (!only || strcmp(only, "digits") == 0) workload("digits (README main example)", (char *[]){digits, NULL});
  if (!only || strcmp(only, "encoder") == 0)
    workload("MiniLM-sized encoder, first forward", (char *[]){self, "--child", "encoder", NULL});
  if (torch && (!only || strcmp(only, "quickstart") == 0)) {
    char *py[] = {"/usr/bin/python3", "-c", (char *)torch_mlp, NULL};
    double first = access(py[0], X_OK) == 0 ? run(py, NULL, NULL) : -1;
    double second = first >= 0 ? run(py, NULL, NULL) : -1;
    printf("| PyTorch CPU: import torch + the quickstart MLP |");
    if (first < 0)
      printf(" n/a | n/a | n/a |\n");
    else
      printf(" %.2f (first run) | - | %.2f |\n", first, second);
  }
  return 0;
}
