/* test_tuning.c: the tuning table and lam_ctx_tune (lamina/tune.h).
 *  - the table: this device's values as the ops had them before the table
 *    (the ternaries it replaced), and the layout variables read once, when
 *    the context is made;
 *  - the store: a written result is loaded by a later context; a corrupt
 *    file, another device's or driver's key, another lamina version and
 *    invalid parameters all give the table's defaults; no_store writes
 *    nothing;
 *  - every candidate the tuner can emit (each stage's grid, f32 and f64)
 *    multiplies correctly: small odd-sized products in all four
 *    transposition cases, with copy_min 1 (operands copied: gemm_nn and the
 *    transpose kernel) and as emitted (gemm_nt for A @ B^T), against a host
 *    GEMM in double;
 *  - a tiny-budget lam_ctx_tune end to end, and its bad input.
 * Every context here keeps its cache directory in a fresh /tmp folder, so
 * no stored result leaks into other suites (or other users of the cache). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "lamina/tune.h"
#include "ops/gemm_internal.h"

static lam_ctx *ctx_in(const char *dir) {
  lam_ctx_opts o = lam_ctx_defaults();
  o.cache_dir = dir;
  lam_ctx *ctx = NULL;
  cr_assert_eq(lam_ctx_create(&o, &ctx), LAM_OK, "%s", lam_last_error());
  return ctx;
}

static bool params_eq(const lam__gemm_params *a, const lam__gemm_params *b) {
  return memcmp(a, b, sizeof *a) == 0;
}

static const lam__gemm_params *builtin(const lam_ctx *ctx, int d) {
  return lam__gemm_set(d ? LAM_F64 : LAM_F32, ctx->tuning.gemm_set[d], NULL);
}

static char *read_text(const char *path) {
  FILE *f = fopen(path, "r");
  cr_assert(f, "cannot open %s", path);
  static char buf[4096];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  return buf;
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  cr_assert(f, "cannot write %s", path);
  fputs(text, f);
  fclose(f);
}

/* Replaces the line starting with `prefix` by `line` and fixes the checksum. */
static void rewrite_line(const char *path, const char *prefix, const char *line) {
  char text[2048], out[4096] = "";
  snprintf(text, sizeof text, "%s", read_text(path));
  for (char *l = text; *l;) {
    char *end = strchr(l, '\n');
    *end = '\0';
    if (strncmp(l, "checksum ", 9) == 0) break;
    size_t n = strlen(out);
    snprintf(out + n, sizeof out - n, "%s\n", strncmp(l, prefix, strlen(prefix)) == 0 ? line : l);
    l = end + 1;
  }
  size_t n = strlen(out);
  snprintf(out + n, sizeof out - n, "checksum %016llx\n",
           (unsigned long long)lam__tuning_checksum(out, n));
  write_text(path, out);
}

static const lam__gemm_params custom = {4, 8, 1, 2, 4, 8, 8, 64};

/* A store holding `custom` for f32, written through a first context. */
static void write_store(const char *dir) {
  lam_ctx *ctx = ctx_in(dir);
  cr_assert(ctx->tuning.store_path[0], "no store path with cache dir %s", dir);
  lam__tuning_saved s;
  memset(&s, 0, sizeof s);
  s.has_gemm[0] = true;
  s.gemm[0] = custom;
  s.has_norm = true;
  s.norm_cpu = !ctx->tuning.norm_cpu; /* the other layout than the device's */
  cr_assert_eq(lam__tuning_save(ctx, &s), 0);
  lam_ctx_free(ctx);
}

/* A later context: `custom` for f32 and the other norm layout when
 * want_loaded, else the defaults. */
static void expect_store(const char *dir, bool want_loaded, const char *what) {
  lam_ctx *ctx = ctx_in(dir);
  const lam__tuning *t = &ctx->tuning;
  const bool device_norm_cpu = ctx->info.type == LAM_DEVICE_CPU;
  cr_assert_eq(t->gemm_tuned[0], want_loaded, "%s: f32 tuned flag", what);
  cr_assert_eq(t->norm_tuned, want_loaded, "%s: norm tuned flag", what);
  cr_assert_eq(t->norm_cpu, want_loaded ? !device_norm_cpu : device_norm_cpu, "%s: norm layout", what);
  cr_assert(params_eq(&t->gemm[0], want_loaded ? &custom : builtin(ctx, 0)), "%s: f32 params", what);
  cr_assert(!t->gemm_tuned[1] && params_eq(&t->gemm[1], builtin(ctx, 1)), "%s: f64 params", what);
  lam_ctx_free(ctx);
}

/* ---- the table ---------------------------------------------------------------- */

Test(tuning, table_matches_the_device_class) {
  lam_ctx *ctx = ctx_in(tu_make_tmpdir("lamina-tune"));
  const lam__tuning *t = &ctx->tuning;
  const bool cpu = ctx->info.type == LAM_DEVICE_CPU;
  cr_assert_str_eq(t->device_class, cpu ? "cpu" : "gpu");
  size_t wg = ctx->info.max_work_group_size < 256 ? ctx->info.max_work_group_size : 256;
  cr_assert_eq(t->wg_1d, wg ? wg : 1);
  cr_assert_eq(ctx->wg_1d, t->wg_1d);
  cr_assert_eq(t->ew_chunk, cpu ? 64 : 1);
  cr_assert_eq(t->rnn_chunk, cpu ? 64 : 1);
  cr_assert_eq(t->norm_chan_per_cu, cpu ? 128 : 4096);
  cr_assert_eq(t->norm_plane_target, cpu ? 256 : 65536);
  cr_assert_eq(t->norm_plane_minrun, cpu ? 256 : 1);
  cr_assert_eq(t->att_bm, 12);
  for (int d = 0; d < 2; d++) {
    cr_assert(lam__gemm_params_valid(&t->gemm[d]));
    cr_assert(!t->gemm_tuned[d]);
  }
  char table[2048];
  cr_assert_eq(lam_ctx_tuning(ctx, table, sizeof table), LAM_OK, "%s", lam_last_error());
  cr_assert(strstr(table, "gemm f32 mr="), "%s", table);
  cr_assert(strstr(table, t->store_path), "%s", table);
  tu_assert_status(lam_ctx_tuning(ctx, table, 16), LAM_ERR_INVALID_ARGUMENT, "too small");
  lam_ctx_free(ctx);
  tu_remove_tmpdir();
}

/* The layout variables are read when a context is made, not per call. */
Test(tuning, layout_variables_read_at_creation) {
  const char *dir = tu_make_tmpdir("lamina-tune");
  setenv("LAMINA_NORM_LAYOUT", "gpu", 1);
  setenv("LAMINA_REDUCE_LAYOUT", "gpu", 1);
  setenv("LAMINA_ATTENTION_LAYOUT", "gpu", 1);
  lam_ctx *a = ctx_in(dir);
  setenv("LAMINA_NORM_LAYOUT", "cpu", 1);
  setenv("LAMINA_REDUCE_LAYOUT", "cpu", 1);
  setenv("LAMINA_ATTENTION_LAYOUT", "cpu", 1);
  cr_assert(!a->tuning.norm_cpu && a->tuning.reduce_gpu && a->tuning.att_gpu);
  lam_ctx *b = ctx_in(dir);
  cr_assert(b->tuning.norm_cpu && !b->tuning.reduce_gpu && !b->tuning.att_gpu);
  cr_assert(!a->tuning.norm_cpu, "a context's table changed with the environment");
  lam_ctx_free(a);
  lam_ctx_free(b);
  tu_remove_tmpdir();
}

/* ---- the store ------------------------------------------------------------------ */

Test(tuning, store_round_trip) {
  const char *dir = tu_make_tmpdir("lamina-tune");
  expect_store(dir, false, "no file");
  write_store(dir);
  expect_store(dir, true, "written");
  tu_remove_tmpdir();
}

Test(tuning, corrupt_store_gives_defaults) {
  const char *dir = tu_make_tmpdir("lamina-tune");
  write_store(dir);
  lam_ctx *ctx = ctx_in(dir);
  char path[1100], good[4096];
  snprintf(path, sizeof path, "%s", ctx->tuning.store_path);
  lam_ctx_free(ctx);
  snprintf(good, sizeof good, "%s", read_text(path));
  /* An edited value (checksum no longer matches). */
  char bad[4096];
  snprintf(bad, sizeof bad, "%s", good);
  char *mr = strstr(bad, "mr=4");
  cr_assert(mr);
  mr[3] = '6';
  write_text(path, bad);
  expect_store(dir, false, "edited value");
  /* Truncated (no checksum line), empty, garbage. */
  snprintf(bad, sizeof bad, "%s", good);
  *strstr(bad, "checksum") = '\0';
  write_text(path, bad);
  expect_store(dir, false, "truncated");
  write_text(path, "");
  expect_store(dir, false, "empty");
  write_text(path, "\x01\x02garbage\nchecksum zz\n");
  expect_store(dir, false, "garbage");
  /* Invalid parameters with a good checksum (no vector width 3). */
  write_text(path, good);
  rewrite_line(path, "gemm f32", "gemm f32 mr=4 vw=3 nv=1 tm=2 tn=4 vk=8 ly=8 copy_min=64");
  expect_store(dir, false, "invalid vector width");
  rewrite_line(path, "gemm f32", "gemm f32 mr=4 vw=8 nv=1 tm=2 tn=4 vk=8 ly=8");
  expect_store(dir, false, "missing field");
  write_text(path, good);
  rewrite_line(path, "norm ", "norm fastest");
  expect_store(dir, false, "unknown norm layout");
  /* A good rewrite is loaded again (the helper itself is right). */
  write_text(path, good);
  rewrite_line(path, "gemm f32", "gemm f32 mr=4 vw=8 nv=1 tm=2 tn=4 vk=8 ly=8 copy_min=64");
  expect_store(dir, true, "rewritten intact");
  tu_remove_tmpdir();
}

/* Files whose key is another device's, driver's or lamina version's: each
 * at this device's path (as if copied), with a valid checksum. */
Test(tuning, other_device_driver_or_version_gives_defaults) {
  const char *dir = tu_make_tmpdir("lamina-tune");
  static const char *const fields[3][2] = {
      {"device ", "device Some Other GPU"}, {"driver ", "driver 0.0-other"}, {"lamina ", "lamina 0.1.9"}};
  for (int i = 0; i < 3; i++) {
    write_store(dir);
    lam_ctx *ctx = ctx_in(dir);
    char path[1100];
    snprintf(path, sizeof path, "%s", ctx->tuning.store_path);
    lam_ctx_free(ctx);
    rewrite_line(path, fields[i][0], fields[i][1]);
    expect_store(dir, false, fields[i][1]);
  }
  tu_remove_tmpdir();
}

/* ---- the candidates --------------------------------------------------------------- */

/* op(A) @ op(B) with p against a host GEMM in double, random inputs. */
static void check_product(lam_ctx *ctx, lam_dtype dt, const lam__gemm_params *p, int64_t M,
                          int64_t N, int64_t K, int ta, int tb, tu_rng *r, const char *what) {
  double *a = tu_rand_vec(r, M * K, -1, 1), *b = tu_rand_vec(r, K * N, -1, 1);
  lam_tensor *A = tu_from_f64(ctx, dt, 2, (int64_t[]){ta ? K : M, ta ? M : K}, a);
  lam_tensor *B = tu_from_f64(ctx, dt, 2, (int64_t[]){tb ? N : K, tb ? K : N}, b);
  lam_tensor *C = lam__matmul_with_params(A, B, ta, tb, p);
  cr_assert(C, "%s: %s", what, lam_last_error());
  double *want = malloc(sizeof(double) * (size_t)(M * N));
  for (int64_t i = 0; i < M; i++)
    for (int64_t j = 0; j < N; j++) {
      double s = 0;
      for (int64_t k = 0; k < K; k++) s += a[ta ? k * M + i : i * K + k] * b[tb ? j * K + k : k * N + j];
      want[i * N + j] = s;
    }
  char msg[256];
  snprintf(msg, sizeof msg, "%s M=%lld N=%lld K=%lld ta=%d tb=%d", what, (long long)M, (long long)N,
           (long long)K, ta, tb);
  tu_assert_tensor_close(C, want, M * N, dt == LAM_F64 ? 1e-12 : 2e-5, dt == LAM_F64 ? 1e-12 : 1e-5,
                         msg);
  free(want);
  free(a);
  free(b);
  lam_tensor *ts[] = {A, B, C};
  for (int i = 0; i < 3; i++) lam_tensor_free(ts[i]);
}

/* Each stage's grid around the table's defaults is every candidate the
 * tuner can build: the gemm_nn shapes come only from the NN stage and the
 * gemm_nt shapes only from the NT stage, both around the defaults' vector
 * widths, and ly / copy_min change launches and paths, not programs. */
static void every_candidate(lam_dtype dt) {
  lam_ctx *ctx = ctx_in(tu_make_tmpdir("lamina-tune"));
  if (!tu_has_dtype(ctx, dt)) {
    lam_ctx_free(ctx);
    tu_remove_tmpdir();
    return;
  }
  tu_mark m = tu_mark_now(ctx);
  tu_rng r = tu_rng_make(77 + (uint64_t)dt);
  const lam__gemm_params base = ctx->tuning.gemm[dt == LAM_F64];
  int total = 0;
  for (int s = 0; s < LAM__GEMM_STAGES; s++) {
    lam__gemm_params cand[32];
    int n = lam__gemm_grid(&base, (lam__gemm_stage)s, cand, 32);
    cr_assert(n >= 2 && n <= 32, "stage %d has %d candidates", s, n);
    cr_assert(params_eq(&cand[0], &base), "stage %d does not start at the base", s);
    /* Under Oclgrind (small shapes, a build is minutes) the base and one
     * other per stage; every candidate on the real device. */
    const int run = tu_small() && n > 2 ? 2 : n;
    for (int i = 0; i < run; i++) {
      char what[160];
      lam__gemm_params_str(&cand[i], what, sizeof what);
      cr_assert(lam__gemm_params_valid(&cand[i]), "%s", what);
      for (int j = 0; j < i; j++) cr_assert(!params_eq(&cand[i], &cand[j]), "duplicate %s", what);
      lam__gemm_params all_copy = cand[i];
      all_copy.copy_min = 1;
      for (int c = 0; c < 4; c++) {
        /* Odd sizes, N above every gemm_nn tile (so gemm_nn runs where the
         * path allows) and M below the emitted copy_min. */
        check_product(ctx, dt, &cand[i], 37, 45, 29, c & 1, c >> 1, &r, what);
        check_product(ctx, dt, &all_copy, 37, 45, 29, c & 1, c >> 1, &r, what);
      }
      check_product(ctx, dt, &cand[i], 19, 7, 33, 0, 0, &r, what); /* narrower than a tile */
      check_product(ctx, dt, &cand[i], 23, 1, 41, 0, 0, &r, what); /* matrix @ vector */
      cr_assert_eq(lam__tune_gemm_check(ctx, dt, &cand[i]), LAM_OK, "%s: %s", what, lam_last_error());
      total++;
    }
  }
  cr_assert(tu_small() || total >= 20, "only %d candidates", total);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
  tu_remove_tmpdir();
}

Test(tuning, every_candidate_f32, .timeout = 1200) { every_candidate(LAM_F32); }
Test(tuning, every_candidate_f64, .timeout = 1200) { every_candidate(LAM_F64); }

/* The tuner's own check rejects wrong parameters: a vector width gemm.cl
 * has no type for never reaches a kernel. */
Test(tuning, invalid_parameters_are_refused) {
  lam_ctx *ctx = ctx_in(tu_make_tmpdir("lamina-tune"));
  lam__gemm_params p = ctx->tuning.gemm[0];
  p.vw = 3;
  cr_assert(!lam__gemm_params_valid(&p));
  lam_tensor *a = lam_tensor_zeros(ctx, LAM_F32, 2, (int64_t[]){3, 3});
  tu_assert_fails(lam__matmul_with_params(a, a, 0, 0, &p), LAM_ERR_INVALID_ARGUMENT, "invalid");
  lam_tensor_free(a);
  lam_ctx_free(ctx);
  tu_remove_tmpdir();
}

/* ---- lam_ctx_tune end to end --------------------------------------------------------- */

static int g_lines;
static void count_line(const char *line, void *user) {
  (void)user;
  cr_assert(strncmp(line, "lam_ctx_tune: ", 14) == 0, "%s", line);
  g_lines++;
}

Test(tuning, tiny_budget_end_to_end, .timeout = 1200) {
  const char *dir = tu_make_tmpdir("lamina-tune");
  lam_ctx *ctx = ctx_in(dir);
  if (!(ctx->info.type & LAM_DEVICE_CPU)) { /* CLBlast devices: nothing to tune */
    lam_tune_opts g = lam_tune_defaults();
    g.kernels = LAM_TUNE_GEMM;
    tu_assert_status(lam_ctx_tune(ctx, &g, NULL), LAM_ERR_UNSUPPORTED, "CLBlast");
    lam_ctx_free(ctx);
    tu_remove_tmpdir();
    return;
  }
  lam_tune_opts o = lam_tune_defaults();
  o.budget_s = 0.001; /* every stage runs its base only */
  o.progress = count_line;
  lam_tune_report rep;
  cr_assert_eq(lam_ctx_tune(ctx, &o, &rep), LAM_OK, "%s", lam_last_error());
  cr_assert(g_lines >= LAM__GEMM_STAGES, "%d progress lines", g_lines);
  cr_assert_eq(rep.candidates, LAM__GEMM_STAGES + 1, "candidates %d", rep.candidates);
  cr_assert_eq(rep.rejected, 0);
  cr_assert(!rep.complete);
  cr_assert(rep.stored, "not stored in %s", rep.path);
  cr_assert(rep.gflops_default > 0 && rep.gflops_tuned > 0);
  char want[160];
  lam__gemm_params_str(builtin(ctx, 0), want, sizeof want);
  cr_assert_str_eq(rep.gemm_f32, want); /* only the bases ran: the defaults won */
  cr_assert_str_eq(rep.gemm_f64, "");
  cr_assert_str_eq(rep.norm_layout, ctx->tuning.norm_cpu ? "cpu" : "gpu");
  cr_assert(ctx->tuning.gemm_tuned[0] && ctx->tuning.norm_tuned);
  lam_ctx_free(ctx);
  /* A later context loads it, and multiplies correctly with it. */
  ctx = ctx_in(dir);
  cr_assert(ctx->tuning.gemm_tuned[0] && !ctx->tuning.gemm_tuned[1] && ctx->tuning.norm_tuned);
  cr_assert(params_eq(&ctx->tuning.gemm[0], builtin(ctx, 0)));
  tu_rng r = tu_rng_make(5);
  check_product(ctx, LAM_F32, &ctx->tuning.gemm[0], 37, 45, 29, 0, 1, &r, "stored");
  lam_ctx_free(ctx);
  tu_remove_tmpdir();
}

/* A stored norm layout yields to LAMINA_NORM_LAYOUT, set for a run. */
Test(tuning, layout_variable_outranks_the_store) {
  const char *dir = tu_make_tmpdir("lamina-tune");
  write_store(dir); /* the other norm layout than the device's */
  lam_ctx *ctx = ctx_in(dir);
  const bool stored = ctx->tuning.norm_cpu;
  cr_assert(ctx->tuning.norm_tuned);
  lam_ctx_free(ctx);
  setenv("LAMINA_NORM_LAYOUT", stored ? "gpu" : "cpu", 1);
  ctx = ctx_in(dir);
  cr_assert_eq(ctx->tuning.norm_cpu, !stored);
  cr_assert(!ctx->tuning.norm_tuned);
  cr_assert(ctx->tuning.gemm_tuned[0], "the GEMM part of the store still applies");
  lam_ctx_free(ctx);
  tu_remove_tmpdir();
}

/* The norm layout alone, on any device (GPUs included: no GEMM tuning). */
Test(tuning, norm_layout_end_to_end, .timeout = 1200) {
  const char *dir = tu_make_tmpdir("lamina-tune");
  lam_ctx *ctx = ctx_in(dir);
  lam_tune_opts o = lam_tune_defaults();
  o.kernels = LAM_TUNE_NORM;
  o.budget_s = tu_small() ? 0.001 : 600; /* both layouts on the real device */
  lam_tune_report rep;
  cr_assert_eq(lam_ctx_tune(ctx, &o, &rep), LAM_OK, "%s", lam_last_error());
  cr_assert_eq(rep.candidates, tu_small() ? 1 : 2);
  cr_assert_eq(rep.rejected, 0, "a norm layout gave wrong results");
  cr_assert_str_eq(rep.gemm_f32, "");
  cr_assert(strcmp(rep.norm_layout, "cpu") == 0 || strcmp(rep.norm_layout, "gpu") == 0);
  cr_assert(rep.stored);
  const bool chosen = ctx->tuning.norm_cpu;
  cr_assert_str_eq(rep.norm_layout, chosen ? "cpu" : "gpu");
  lam_ctx_free(ctx);
  ctx = ctx_in(dir);
  cr_assert(ctx->tuning.norm_tuned && ctx->tuning.norm_cpu == chosen);
  cr_assert(!ctx->tuning.gemm_tuned[0]);
  lam_ctx_free(ctx);
  tu_remove_tmpdir();
}

Test(tuning, no_store_writes_nothing, .timeout = 1200) {
  const char *dir = tu_make_tmpdir("lamina-tune");
  lam_ctx *ctx = ctx_in(dir);
  if (!(ctx->info.type & LAM_DEVICE_CPU)) {
    lam_ctx_free(ctx);
    tu_remove_tmpdir();
    return;
  }
  lam_tune_opts o = lam_tune_defaults();
  o.budget_s = 0.001;
  o.no_store = true;
  lam_tune_report rep;
  cr_assert_eq(lam_ctx_tune(ctx, &o, &rep), LAM_OK, "%s", lam_last_error());
  cr_assert(!rep.stored);
  cr_assert(ctx->tuning.gemm_tuned[0], "the result is not used by the context itself");
  FILE *f = fopen(ctx->tuning.store_path, "r");
  cr_assert(!f, "no_store wrote %s", ctx->tuning.store_path);
  lam_ctx_free(ctx);
  expect_store(dir, false, "after no_store");
  tu_remove_tmpdir();
}

Test(tuning, bad_input) {
  lam_ctx *ctx = ctx_in(tu_make_tmpdir("lamina-tune"));
  lam_tune_opts o = lam_tune_defaults();
  o.budget_s = -1;
  tu_assert_status(lam_ctx_tune(ctx, &o, NULL), LAM_ERR_INVALID_ARGUMENT, "budget_s");
  o = lam_tune_defaults();
  o.kernels = 0x80;
  tu_assert_status(lam_ctx_tune(ctx, &o, NULL), LAM_ERR_INVALID_ARGUMENT, "unknown bits");
  tu_assert_status(lam_ctx_tune(NULL, NULL, NULL), LAM_ERR_NULL, "lam_ctx_tune: ctx");
  char buf[64];
  tu_assert_status(lam_ctx_tuning(NULL, buf, sizeof buf), LAM_ERR_NULL, "lam_ctx_tuning: ctx");
  tu_assert_status(lam_ctx_tuning(ctx, NULL, 0), LAM_ERR_NULL, "lam_ctx_tuning: buf");
  lam_ctx_free(ctx);
  tu_remove_tmpdir();
}
