/* ops/tune.c: lam_ctx_tune (lamina/tune.h), the GEMM autotuner.
 *
 * The search is coordinate-wise over the stages of lam__gemm_grid
 * (ops/gemm_tuning.c): first the gemm_nn register tile, then the gemm_nt
 * tile, the row tiles per work-group and the copy threshold, each stage's
 * candidates around the best of the stages before it (the table's set
 * first, so the result is never worse than the defaults on the timed
 * problems, noise aside). A full product grid would need hundreds of
 * builds (seconds each on PoCL); the stages need about 30.
 *
 * Every candidate is first checked: small odd-sized products in all four
 * transposition cases, once with copy_min 1 (every operand copied into
 * gemm_nn's layout, so gemm_nn and the transpose kernel run) and once with
 * the candidate's own copy_min (gemm_nt for A @ B^T with few rows), plus a
 * product narrower than a tile (gemm_nt), against a host GEMM in double. A
 * candidate that fails to build or gives a wrong result is rejected. Then
 * it is timed, best of a few runs per problem, each problem sized so the
 * stage's parameters matter (see lam__tune_problems); the score is the sum
 * of the best times.
 *
 * The norm layout (LAM_TUNE_NORM) has two candidates, the table's own
 * first: each checked against host layer, group and batch norms on small
 * odd shapes, then timed on a transformer-sized layer norm, a group norm and
 * a batch norm. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/linalg.h"
#include "lamina/norm.h"
#include "lamina/tune.h"
#include "ops/gemm_internal.h"
#include "runtime/platform_internal.h"

lam_tune_opts lam_tune_defaults(void) {
  lam_tune_opts o;
  memset(&o, 0, sizeof o);
  return o;
}

static double lam__now(void) { return lam__now_seconds(); } /* runtime/platform.c */

typedef struct {
  lam_ctx *ctx;
  const lam_tune_opts *o;
  double t0, budget;
  lam_tune_report *rep;
} lam__tuner;

static void lam__tune_say(lam__tuner *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void lam__tune_say(lam__tuner *t, const char *fmt, ...) {
  char line[320];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (t->o->progress)
    t->o->progress(line, t->o->user);
  else if (t->o->verbose)
    fprintf(stderr, "%s\n", line);
}

/* Uniform values in [-1, 1) from a small LCG (reproducible problems). */
static void lam__tune_fill(double *x, int64_t n, uint64_t *s) {
  for (int64_t i = 0; i < n; i++) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    x[i] = (double)(*s >> 11) / 4503599627370496.0 - 1.0;
  }
}

static lam_tensor *lam__tune_tensor(lam_ctx *ctx, lam_dtype dt, int64_t r, int64_t c,
                                    const double *x) {
  const int64_t n = r * c;
  void *h = malloc((size_t)n * lam_dtype_size(dt));
  if (!h) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "lam_ctx_tune: out of host memory"), NULL;
  for (int64_t i = 0; i < n; i++) {
    if (dt == LAM_F64)
      ((double *)h)[i] = x[i];
    else
      ((float *)h)[i] = (float)x[i];
  }
  lam_tensor *t = lam_tensor_from_host(ctx, dt, 2, (int64_t[]){r, c}, h);
  free(h);
  return t;
}

/* One checked product: op(A) [M,K] @ op(B) [K,N] with p against a host
 * GEMM. Returns LAM_OK, a build or run error, or LAM_ERR_STATE (wrong). */
static lam_status lam__tune_check1(lam_ctx *ctx, lam_dtype dt, const lam__gemm_params *p,
                                   int64_t M, int64_t N, int64_t K, int ta, int tb, uint64_t seed) {
  double *a = malloc(sizeof(double) * (size_t)(M * K)), *b = malloc(sizeof(double) * (size_t)(K * N));
  double *c = malloc(sizeof(double) * (size_t)(M * N));
  lam_status st = LAM_OK;
  lam_tensor *ta_ = NULL, *tb_ = NULL, *tc = NULL;
  if (!a || !b || !c) {
    st = lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "lam_ctx_tune: out of host memory");
    goto done;
  }
  lam__tune_fill(a, M * K, &seed);
  lam__tune_fill(b, K * N, &seed);
  /* a is stored [M,K] or, transposed, [K,M]; b [K,N] or [N,K]. */
  ta_ = lam__tune_tensor(ctx, dt, ta ? K : M, ta ? M : K, a);
  tb_ = lam__tune_tensor(ctx, dt, tb ? N : K, tb ? K : N, b);
  if (ta_ && tb_) tc = lam__matmul_with_params(ta_, tb_, ta, tb, p);
  if (!tc) {
    st = lam_last_status();
    goto done;
  }
  const size_t es = lam_dtype_size(dt);
  void *h = malloc((size_t)(M * N) * es);
  if (!h || (st = lam_tensor_to_host(tc, h, (size_t)(M * N) * es)) != LAM_OK) {
    if (!h) st = lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "lam_ctx_tune: out of host memory");
    free(h);
    goto done;
  }
  for (int64_t i = 0; i < M * N; i++) c[i] = dt == LAM_F64 ? ((double *)h)[i] : ((float *)h)[i];
  free(h);
  /* Rounding of a K-term dot product of values in [-1, 1]: K * eps each. */
  const double tol = (double)K * (dt == LAM_F64 ? 1e-14 : 4e-7) + (dt == LAM_F64 ? 1e-13 : 1e-6);
  for (int64_t i = 0; i < M && st == LAM_OK; i++)
    for (int64_t j = 0; j < N; j++) {
      double want = 0;
      for (int64_t k = 0; k < K; k++)
        want += a[ta ? k * M + i : i * K + k] * b[tb ? j * K + k : k * N + j];
      if (!(fabs(c[i * N + j] - want) <= tol)) {
        st = lam__fail(LAM_ERR_STATE, "lam_ctx_tune: wrong result at (%lld,%lld): %g, want %g",
                       (long long)i, (long long)j, c[i * N + j], want);
        break;
      }
    }
done:
  lam_tensor_free(ta_);
  lam_tensor_free(tb_);
  lam_tensor_free(tc);
  free(a);
  free(b);
  free(c);
  return st;
}

/* The correctness check of one candidate (see the file comment). */
lam_status lam__tune_gemm_check(lam_ctx *ctx, lam_dtype dt, const lam__gemm_params *p) {
  lam__gemm_params all_copy = *p;
  all_copy.copy_min = 1;
  lam_status st = LAM_OK;
  for (int v = 0; v < 2 && st == LAM_OK; v++)
    for (int c = 0; c < 4 && st == LAM_OK; c++)
      st = lam__tune_check1(ctx, dt, v ? p : &all_copy, 37, 45, 29, c & 1, c >> 1,
                            (uint64_t)(11 + 4 * v + c));
  if (st == LAM_OK) st = lam__tune_check1(ctx, dt, p, 37, 7, 29, 0, 0, 3);
  if (st == LAM_OK) st = lam__tune_check1(ctx, dt, p, 23, 1, 41, 0, 0, 5);
  return st;
}

/* A timed problem: op(A) [M,K] @ op(B) [K,N]. */
typedef struct {
  int64_t M, N, K;
  int ta, tb;
} lam__tune_problem;

/* The problems of a stage: gemm_nn tiles on square products; gemm_nt on
 * A @ B^T with few rows (the kernel's case); row tiles on both; copy_min on
 * A @ B^T with rows on both sides of the default threshold. */
static int lam__tune_problems(lam__gemm_stage s, lam__tune_problem *p) {
  switch (s) {
    case LAM__GEMM_STAGE_NN:
      p[0] = (lam__tune_problem){256, 256, 256, 0, 0};
      p[1] = (lam__tune_problem){512, 512, 512, 0, 0};
      return 2;
    case LAM__GEMM_STAGE_NT:
      p[0] = (lam__tune_problem){64, 512, 512, 0, 1};
      p[1] = (lam__tune_problem){96, 1024, 256, 0, 1};
      return 2;
    case LAM__GEMM_STAGE_LY:
      p[0] = (lam__tune_problem){512, 512, 512, 0, 0};
      p[1] = (lam__tune_problem){64, 512, 512, 0, 1};
      return 2;
    default:
      p[0] = (lam__tune_problem){96, 512, 512, 0, 1};
      p[1] = (lam__tune_problem){192, 512, 512, 0, 1};
      return 2;
  }
}

/* Best-of-runs seconds of one problem with p (runs until 3 runs or 0.3 s
 * after a warm-up run); <0 on error. */
static double lam__tune_time(lam_ctx *ctx, lam_dtype dt, const lam__gemm_params *p,
                             const lam__tune_problem *q) {
  const int64_t ar = q->ta ? q->K : q->M, ac = q->ta ? q->M : q->K;
  const int64_t br = q->tb ? q->N : q->K, bc = q->tb ? q->K : q->N;
  lam_tensor *a = lam_tensor_full(ctx, dt, 2, (int64_t[]){ar, ac}, 0.5);
  lam_tensor *b = lam_tensor_full(ctx, dt, 2, (int64_t[]){br, bc}, 0.25);
  double best = -1;
  if (a && b) {
    double spent = 0;
    for (int r = 0; r < 4 && (r < 2 || spent < 0.3); r++) {
      double t = lam__now();
      lam_tensor *c = lam__matmul_with_params(a, b, q->ta, q->tb, p);
      lam_status st = c ? lam_ctx_finish(ctx) : lam_last_status();
      t = lam__now() - t;
      lam_tensor_free(c);
      if (st != LAM_OK) {
        best = -1;
        break;
      }
      spent += t;
      if (r > 0 && (best < 0 || t < best)) best = t; /* run 0 warms up (and builds) */
    }
  }
  lam_tensor_free(a);
  lam_tensor_free(b);
  return best;
}

static double lam__tune_flops(const lam__tune_problem *q, int n) {
  double f = 0;
  for (int i = 0; i < n; i++) f += 2.0 * (double)q[i].M * (double)q[i].N * (double)q[i].K;
  return f;
}

/* Searches dtype's parameters from ctx->tuning.gemm[d]; writes the best to
 * *best. Returns LAM_OK, or the defaults' own failure. */
static lam_status lam__tune_gemm(lam__tuner *t, lam_dtype dt, lam__gemm_params *best) {
  lam_ctx *ctx = t->ctx;
  const int d = dt == LAM_F64;
  *best = ctx->tuning.gemm[d];
  char buf[160];
  double gf_default = 0, gf_best = 0;
  for (int s = 0; s < LAM__GEMM_STAGES; s++) {
    lam__gemm_params cand[32];
    int n = lam__gemm_grid(best, (lam__gemm_stage)s, cand, 32);
    if (n > 32) n = 32;
    lam__tune_problem prob[4];
    const int np = lam__tune_problems((lam__gemm_stage)s, prob);
    const double flops = lam__tune_flops(prob, np);
    static const char *const stage_name[] = {"gemm_nn tile", "gemm_nt tile", "row tiles",
                                             "copy threshold"};
    double best_time = -1;
    int best_i = 0;
    for (int i = 0; i < n; i++) {
      const double el = lam__now() - t->t0;
      if (i > 0 && el > t->budget) { /* the base (i == 0) always runs: a stage's reference */
        t->rep->complete = false;
        lam__tune_say(t, "lam_ctx_tune: budget of %.0f s spent; keeping the best so far", t->budget);
        break;
      }
      t->rep->candidates++;
      lam_status st = lam__tune_gemm_check(ctx, dt, &cand[i]);
      double sec = 0;
      for (int q = 0; q < np && st == LAM_OK; q++) {
        double x = lam__tune_time(ctx, dt, &cand[i], &prob[q]);
        if (x < 0) st = lam_last_status() != LAM_OK ? lam_last_status() : LAM_ERR_OPENCL;
        sec += x;
      }
      lam__gemm_params_str(&cand[i], buf, sizeof buf);
      if (st != LAM_OK) {
        t->rep->rejected++;
        lam__tune_say(t, "lam_ctx_tune: %s %s %d/%d %s: rejected (%s)", lam_dtype_name(dt),
                      stage_name[s], i + 1, n, buf, lam_last_error());
        if (i == 0 && s == 0)
          return lam__fail(st == LAM_ERR_STATE ? LAM_ERR_UNSUPPORTED : st,
                           "lam_ctx_tune: the default %s GEMM parameters fail on %s (%s)",
                           lam_dtype_name(dt), ctx->info.name, buf);
        continue;
      }
      if (best_time < 0 || sec < best_time) best_time = sec, best_i = i;
      if (s == 0 && i == 0) gf_default = flops / sec * 1e-9;
      lam__tune_say(t, "lam_ctx_tune: %s %s %d/%d %s: %.1f GFLOP/s (best %.1f), %.0f s of %.0f",
                    lam_dtype_name(dt), stage_name[s], i + 1, n, buf, flops / sec * 1e-9,
                    flops / best_time * 1e-9, lam__now() - t->t0, t->budget);
    }
    if (best_time > 0) {
      *best = cand[best_i];
      if (s == 0) gf_best = flops / best_time * 1e-9;
    }
  }
  if (dt == LAM_F32) {
    /* The gemm_nn problems again with the final choice, for the report. */
    lam__tune_problem prob[4];
    const int np = lam__tune_problems(LAM__GEMM_STAGE_NN, prob);
    double sec = 0;
    for (int q = 0; q < np && sec >= 0; q++) {
      double x = lam__tune_time(ctx, dt, best, &prob[q]);
      sec = x < 0 ? -1 : sec + x;
    }
    t->rep->gflops_default = gf_default;
    t->rep->gflops_tuned = sec > 0 ? lam__tune_flops(prob, np) / sec * 1e-9 : gf_best;
  }
  return LAM_OK;
}

/* ---- the norm layout ---------------------------------------------------------- */

/* y of op (0: layer norm over the last axis of [R, D]; 1: group norm of
 * [N, C, S] in G groups; 2: batch norm in training of [N, C, S]) against a
 * host reference, inputs in [-1, 1). */
static lam_status lam__tune_norm_check1(lam_ctx *ctx, int op, int64_t n0, int64_t n1, int64_t n2,
                                        int64_t G, uint64_t seed) {
  const int64_t n = n0 * n1 * (op ? n2 : 1);
  double *x = malloc(sizeof(double) * (size_t)n), *want = malloc(sizeof(double) * (size_t)n);
  lam_status st = LAM_OK;
  lam_tensor *tx = NULL, *ty = NULL;
  float *got = NULL;
  if (!x || !want) {
    st = lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "lam_ctx_tune: out of host memory");
    goto done;
  }
  lam__tune_fill(x, n, &seed);
  /* Each statistic is a set of `len` elements: first at `base(s)`, element e
   * at base + (e / run) * jump + e % run. */
  const int64_t nstat = op == 0 ? n0 : op == 1 ? n0 * G : n1;
  for (int64_t s = 0; s < nstat; s++) {
    int64_t len, run, jump, base;
    if (op == 0) len = n1, run = n1, jump = 0, base = s * n1;
    else if (op == 1) len = n1 / G * n2, run = len, jump = 0, base = s * len;
    else len = n0 * n2, run = n2, jump = n1 * n2, base = s * n2;
    double m = 0, v = 0;
    for (int64_t e = 0; e < len; e++) m += x[base + (e / run) * jump + e % run];
    m /= (double)len;
    for (int64_t e = 0; e < len; e++) {
      double d = x[base + (e / run) * jump + e % run] - m;
      v += d * d;
    }
    v /= (double)len;
    for (int64_t e = 0; e < len; e++) {
      int64_t i = base + (e / run) * jump + e % run;
      want[i] = (x[i] - m) / sqrt(v + 1e-5);
    }
  }
  tx = op == 0 ? lam__tune_tensor(ctx, LAM_F32, n0, n1, x)
               : lam__tune_tensor(ctx, LAM_F32, n0, n1 * n2, x);
  if (tx && op > 0) {
    lam_tensor *r = lam_tensor_reshape(tx, 3, (int64_t[]){n0, n1, n2});
    lam_tensor_free(tx);
    tx = r;
  }
  if (tx)
    ty = op == 0   ? lam_layer_norm(tx, 1, NULL, NULL, 1e-5)
         : op == 1 ? lam_group_norm(tx, G, NULL, NULL, 1e-5)
                   : lam_batch_norm(tx, NULL, NULL, NULL, NULL, true, 0.1, 1e-5, NULL, NULL);
  got = malloc(sizeof(float) * (size_t)n);
  if (!ty || !got) {
    st = !got ? lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "lam_ctx_tune: out of host memory")
              : lam_last_status();
    goto done;
  }
  if ((st = lam_tensor_to_host(ty, got, sizeof(float) * (size_t)n)) != LAM_OK) goto done;
  for (int64_t i = 0; i < n; i++)
    if (!(fabs((double)got[i] - want[i]) <= 2e-4 + 2e-4 * fabs(want[i]))) {
      st = lam__fail(LAM_ERR_STATE, "lam_ctx_tune: norm %d wrong at %lld: %g, want %g", op,
                     (long long)i, (double)got[i], want[i]);
      break;
    }
done:
  lam_tensor_free(tx);
  lam_tensor_free(ty);
  free(x);
  free(want);
  free(got);
  return st;
}

/* Seconds (best of a few runs after a warm-up) of the timed norms; <0 on error. */
static double lam__tune_norm_time(lam_ctx *ctx) {
  lam_tensor *a = lam_tensor_full(ctx, LAM_F32, 2, (int64_t[]){1024, 768}, 0.5);
  lam_tensor *b = lam_tensor_full(ctx, LAM_F32, 3, (int64_t[]){8, 64, 1024}, 0.5);
  double total = 0;
  for (int op = 0; op < 3 && total >= 0; op++) {
    double best = -1, spent = 0;
    for (int r = 0; r < 5 && (r < 2 || spent < 0.2); r++) {
      double t = lam__now();
      lam_tensor *y = !a || !b    ? NULL
                      : op == 0 ? lam_layer_norm(a, 1, NULL, NULL, 1e-5)
                      : op == 1 ? lam_group_norm(b, 32, NULL, NULL, 1e-5)
                                : lam_batch_norm(b, NULL, NULL, NULL, NULL, true, 0.1, 1e-5, NULL, NULL);
      lam_status st = y ? lam_ctx_finish(ctx) : LAM_ERR_OPENCL;
      t = lam__now() - t;
      lam_tensor_free(y);
      if (st != LAM_OK) {
        best = -1;
        break;
      }
      spent += t;
      if (r > 0 && (best < 0 || t < best)) best = t;
    }
    total = best < 0 ? -1 : total + best;
  }
  lam_tensor_free(a);
  lam_tensor_free(b);
  return total;
}

/* Picks the norm layout into *cpu (the table's unchanged when nothing passes). */
static lam_status lam__tune_norm(lam__tuner *t, bool *cpu) {
  lam_ctx *ctx = t->ctx;
  const bool base = ctx->tuning.norm_cpu;
  double best_time = -1;
  *cpu = base;
  for (int i = 0; i < 2; i++) {
    const bool cand = i ? !base : base;
    if (i > 0 && lam__now() - t->t0 > t->budget) {
      t->rep->complete = false;
      lam__tune_say(t, "lam_ctx_tune: budget of %.0f s spent; keeping the best so far", t->budget);
      break;
    }
    t->rep->candidates++;
    ctx->tuning.norm_cpu = cand;
    lam_status st = lam__tune_norm_check1(ctx, 0, 37, 53, 1, 1, 21);
    if (st == LAM_OK) st = lam__tune_norm_check1(ctx, 1, 3, 6, 29, 3, 22);
    if (st == LAM_OK) st = lam__tune_norm_check1(ctx, 2, 5, 4, 13, 1, 23);
    double sec = st == LAM_OK ? lam__tune_norm_time(ctx) : -1;
    if (st == LAM_OK && sec < 0) st = LAM_ERR_OPENCL;
    ctx->tuning.norm_cpu = base;
    if (st != LAM_OK) {
      t->rep->rejected++;
      lam__tune_say(t, "lam_ctx_tune: norm layout %d/2 %s: rejected (%s)", i + 1,
                    cand ? "cpu" : "gpu", lam_last_error());
      continue;
    }
    if (best_time < 0 || sec < best_time) best_time = sec, *cpu = cand;
    lam__tune_say(t, "lam_ctx_tune: norm layout %d/2 %s: %.2f ms (best %s), %.0f s of %.0f", i + 1,
                  cand ? "cpu" : "gpu", sec * 1e3, *cpu ? "cpu" : "gpu", lam__now() - t->t0,
                  t->budget);
  }
  if (best_time < 0)
    return lam__fail(LAM_ERR_UNSUPPORTED, "lam_ctx_tune: no norm layout gives right results on %s",
                     ctx->info.name);
  return LAM_OK;
}

lam_status lam_ctx_tune(lam_ctx *ctx, const lam_tune_opts *opts, lam_tune_report *out) {
  lam_tune_report local;
  lam_tune_report *rep = out ? out : &local;
  memset(rep, 0, sizeof *rep);
  if (!ctx) return lam__fail(LAM_ERR_NULL, "lam_ctx_tune: ctx is NULL");
  lam_tune_opts o = opts ? *opts : lam_tune_defaults();
  if (!(o.budget_s >= 0))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "lam_ctx_tune: budget_s %g is negative", o.budget_s);
  const unsigned all = LAM_TUNE_GEMM | LAM_TUNE_NORM;
  if (o.kernels & ~all)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "lam_ctx_tune: kernels 0x%x has unknown bits",
                     o.kernels);
  const bool own_gemm = ctx->cpu_gemm_tuning && (ctx->info.type & LAM_DEVICE_CPU);
  /* 0: every kernel that runs here (CLBlast's GEMM is not lamina's to tune). */
  const unsigned kernels = o.kernels ? o.kernels : own_gemm ? all : LAM_TUNE_NORM;
  const bool gemm = kernels & LAM_TUNE_GEMM, norm = kernels & LAM_TUNE_NORM;
  if (gemm && !own_gemm)
    return lam__fail(LAM_ERR_UNSUPPORTED,
                     "lam_ctx_tune: lam_matmul on %s runs CLBlast, which has tuners of its own",
                     ctx->info.name);
  if (gemm && o.f64 && !ctx->info.fp64)
    return lam__fail(LAM_ERR_UNSUPPORTED, "lam_ctx_tune: f64 is not supported by %s",
                     ctx->info.name);
  lam__tuner t = {ctx, &o, lam__now(), o.budget_s > 0 ? o.budget_s : 120.0, rep};
  rep->complete = true;
  snprintf(rep->path, sizeof rep->path, "%s", ctx->tuning.store_path);
  lam__gemm_params best[2];
  bool norm_cpu = ctx->tuning.norm_cpu;
  lam_status st = LAM_OK;
  if (gemm) st = lam__tune_gemm(&t, LAM_F32, &best[0]);
  if (st == LAM_OK && gemm && o.f64) st = lam__tune_gemm(&t, LAM_F64, &best[1]);
  if (st == LAM_OK && norm) st = lam__tune_norm(&t, &norm_cpu);
  rep->seconds = lam__now() - t.t0;
  if (st != LAM_OK) return st;
  for (int d = 0; gemm && d < 1 + (int)o.f64; d++) {
    ctx->tuning.gemm[d] = best[d];
    ctx->tuning.gemm_tuned[d] = true;
  }
  if (gemm) lam__gemm_params_str(&best[0], rep->gemm_f32, sizeof rep->gemm_f32);
  if (gemm && o.f64) lam__gemm_params_str(&best[1], rep->gemm_f64, sizeof rep->gemm_f64);
  if (norm) {
    /* LAMINA_NORM_LAYOUT, set for this run, keeps its layout here (the
     * result is still stored for later contexts). */
    const char *e = getenv("LAMINA_NORM_LAYOUT");
    if (!(e && (strcmp(e, "cpu") == 0 || strcmp(e, "gpu") == 0))) ctx->tuning.norm_cpu = norm_cpu;
    ctx->tuning.norm_tuned = true;
    snprintf(rep->norm_layout, sizeof rep->norm_layout, "%s", norm_cpu ? "cpu" : "gpu");
  }
  if (!o.no_store && ctx->tuning.store_path[0]) {
    /* What was not tuned now keeps what the store had (the context loaded it). */
    lam__tuning_saved sv;
    memset(&sv, 0, sizeof sv);
    for (int d = 0; d < 2; d++)
      if (ctx->tuning.gemm_tuned[d]) sv.has_gemm[d] = true, sv.gemm[d] = ctx->tuning.gemm[d];
    sv.has_norm = ctx->tuning.norm_tuned;
    sv.norm_cpu = norm ? norm_cpu : ctx->tuning.norm_cpu;
    rep->stored = lam__tuning_save(ctx, &sv) == 0;
    if (!rep->stored) lam__tune_say(&t, "lam_ctx_tune: could not write %s", ctx->tuning.store_path);
  }
  char chosen[320] = "";
  if (gemm) snprintf(chosen, sizeof chosen, "f32 %s", rep->gemm_f32);
  if (gemm && o.f64)
    snprintf(chosen + strlen(chosen), sizeof chosen - strlen(chosen), "; f64 %s", rep->gemm_f64);
  if (norm)
    snprintf(chosen + strlen(chosen), sizeof chosen - strlen(chosen), "%snorm %s",
             gemm ? "; " : "", rep->norm_layout);
  lam__tune_say(&t, "lam_ctx_tune: %s (%.1f s, %d candidates, %d rejected)%s%s", chosen,
                rep->seconds, rep->candidates, rep->rejected, rep->stored ? ", stored in " : "",
                rep->stored ? rep->path : "");
  return LAM_OK;
}
