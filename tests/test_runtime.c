/* test_runtime.c: device listing and choice (options and LAMINA_DEVICE), the
 * program cache (memory, disk hit/miss, corrupt entries, LAMINA_KERNEL_DIR,
 * build failures), the buffer pool and statistics, status strings and
 * lam_version (src/runtime/version.c). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "runtime/kernels.h"
#include "testutil.h"

Test(runtime, list_devices_with_capabilities) {
  int count = 0;
  cr_assert_eq(lam_devices_list(NULL, 0, &count), LAM_OK, "%s", lam_last_error());
  cr_assert_gt(count, 0);
  lam_device_info *d = calloc((size_t)count, sizeof *d);
  cr_assert_eq(lam_devices_list(d, count, &count), LAM_OK);
  for (int i = 0; i < count; i++) {
    cr_assert_eq(d[i].index, i);
    cr_assert(strlen(d[i].name) > 0);
    cr_assert(strlen(d[i].platform_name) > 0);
    cr_assert(strncmp(d[i].opencl_c_version, "OpenCL C", 8) == 0, "%s", d[i].opencl_c_version);
    cr_assert_gt(d[i].compute_units, 0);
    cr_assert_gt(d[i].global_mem_bytes, 0);
    cr_assert_gt(d[i].local_mem_bytes, 0);
    cr_assert(d[i].max_alloc_bytes > 0 && d[i].max_alloc_bytes <= d[i].global_mem_bytes);
    cr_assert_gt(d[i].max_work_group_size, 0);
  }
  tu_assert_status(lam_devices_list(d, count, NULL), LAM_ERR_NULL, "count");
  free(d);
}

Test(runtime, choose_device_by_selector) {
  lam_device_info d[16];
  int count = 0;
  lam_devices_list(d, 16, &count);
  int idx = -1;
  cr_assert_eq(lam_device_choose("0", &idx), LAM_OK);
  cr_assert_eq(idx, 0);
  int want_cpu = -1;
  for (int i = 0; i < count && want_cpu < 0; i++)
    if (d[i].type == LAM_DEVICE_CPU) want_cpu = i;
  if (want_cpu >= 0) {
    cr_assert_eq(lam_device_choose("cpu", &idx), LAM_OK);
    cr_assert_eq(idx, want_cpu);
    cr_assert_eq(lam_device_choose("CPU", &idx), LAM_OK);
  }
  /* A case-insensitive substring of the device name. */
  char sub[8] = {0};
  for (int i = 0; i < 4 && d[0].name[i + 2]; i++) sub[i] = (char)(d[0].name[i + 2] ^ 0x20 * ((d[0].name[i + 2] >= 'a' && d[0].name[i + 2] <= 'z') || (d[0].name[i + 2] >= 'A' && d[0].name[i + 2] <= 'Z')));
  cr_assert_eq(lam_device_choose(sub, &idx), LAM_OK, "selector %s: %s", sub, lam_last_error());
  tu_assert_status(lam_device_choose("no-such-device-xyz", &idx), LAM_ERR_DEVICE_NOT_FOUND, "no-such-device-xyz");
  tu_assert_status(lam_device_choose("99", &idx), LAM_ERR_DEVICE_NOT_FOUND, "\"99\"");
  tu_assert_status(lam_device_choose("0", NULL), LAM_ERR_NULL, "index");
  /* Default rule: first GPU, else first CPU. */
  unsetenv("LAMINA_DEVICE");
  cr_assert_eq(lam_device_choose(NULL, &idx), LAM_OK);
  int want = -1;
  for (int i = 0; i < count && want < 0; i++)
    if (d[i].type == LAM_DEVICE_GPU) want = i;
  if (want < 0) want = want_cpu;
  cr_assert_eq(idx, want);
}

Test(runtime, env_and_options_choose_device) {
  setenv("LAMINA_DEVICE", "definitely-missing", 1);
  lam_ctx *ctx = NULL;
  tu_assert_status(lam_ctx_create(NULL, &ctx), LAM_ERR_DEVICE_NOT_FOUND, "definitely-missing");
  cr_assert_null(ctx);
  lam_ctx_opts o = lam_ctx_defaults();
  o.device = "0"; /* options win over the environment */
  cr_assert_eq(lam_ctx_create(&o, &ctx), LAM_OK, "%s", lam_last_error());
  cr_assert_eq(lam_ctx_device(ctx)->index, 0);
  lam_ctx_free(ctx);
  setenv("LAMINA_DEVICE", "0", 1);
  cr_assert_eq(lam_ctx_create(NULL, &ctx), LAM_OK);
  lam_ctx_free(ctx);
  unsetenv("LAMINA_DEVICE");
  tu_assert_status(lam_ctx_create(NULL, NULL), LAM_ERR_NULL, "out");
  lam_ctx_free(NULL);
}

static char *make_temp_dir(void) {
  char *tmpl = strdup("/tmp/lamina-cache-XXXXXX");
  cr_assert(mkdtemp(tmpl));
  return tmpl;
}

static int count_files(const char *dir, const char *suffix) {
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir(d))) {
    size_t l = strlen(e->d_name), s = strlen(suffix);
    if (l > s && strcmp(e->d_name + l - s, suffix) == 0) n++;
  }
  if (d) closedir(d);
  return n;
}

/* Builds the "tensor" program (arange) in a fresh context; returns stats. */
static lam_stats run_arange_mode(const char *cache_dir, lam_cache_mode mode) {
  lam_ctx_opts o = lam_ctx_defaults();
  o.cache_dir = cache_dir;
  o.cache_mode = mode;
  lam_ctx *ctx = NULL;
  cr_assert_eq(lam_ctx_create(&o, &ctx), LAM_OK, "%s", lam_last_error());
  lam_tensor *a = lam_tensor_arange(ctx, LAM_F32, 0, 5, 1);
  cr_assert(a, "%s", lam_last_error());
  lam_tensor *b = lam_tensor_arange(ctx, LAM_F32, 0, 7, 1); /* same program: memory cache */
  float v[7];
  cr_assert_eq(lam_tensor_to_host(b, v, sizeof v), LAM_OK);
  cr_assert_eq(v[6], 6.0f);
  lam_tensor_free(a);
  lam_tensor_free(b);
  lam_stats s;
  lam_ctx_stats(ctx, &s);
  lam_ctx_free(ctx);
  return s;
}

/* disable: the cache off; else every build stored (the default AUTO stores
 * nothing on PoCL: tested below). */
static lam_stats run_arange(const char *cache_dir, int disable) {
  return run_arange_mode(cache_dir, disable ? LAM_CACHE_OFF : LAM_CACHE_ALWAYS);
}

Test(runtime, cache_mode_auto_stores_only_where_the_driver_keeps_no_cache) {
  char *dir = make_temp_dir();
  lam_ctx *ctx = NULL;
  cr_assert_eq(lam_ctx_create(NULL, &ctx), LAM_OK, "%s", lam_last_error());
  bool pocl = strstr(lam_ctx_device(ctx)->platform_name, "Portable Computing Language") != NULL;
  lam_ctx_free(ctx);
  const char *env = getenv("LAMINA_BINARY_CACHE");
  char *saved = env ? strdup(env) : NULL;
  unsetenv("LAMINA_BINARY_CACHE");
  lam_stats s = run_arange_mode(dir, LAM_CACHE_AUTO);
  cr_assert_eq(s.programs_built, 1);
  cr_assert_eq(s.programs_stored, pocl ? 0 : 1, "AUTO on %s", pocl ? "PoCL" : "this driver");
  cr_assert_eq(count_files(dir, ".bin"), pocl ? 0 : 1);
  cr_assert(s.build_seconds > 0.0, "build time is counted");
  /* The environment turns AUTO into ALWAYS (or OFF); explicit modes win. */
  setenv("LAMINA_BINARY_CACHE", "always", 1);
  s = run_arange_mode(dir, LAM_CACHE_AUTO);
  cr_assert_eq(s.programs_built + s.programs_loaded, 1);
  cr_assert_eq(count_files(dir, ".bin"), 1, "LAMINA_BINARY_CACHE=always stores");
  s = run_arange_mode(dir, LAM_CACHE_AUTO);
  cr_assert_eq(s.programs_loaded, 1, "and the entry is loaded again");
  setenv("LAMINA_BINARY_CACHE", "off", 1);
  s = run_arange_mode(dir, LAM_CACHE_ALWAYS);
  cr_assert_eq(s.programs_loaded, 1, "an explicit mode ignores the environment");
  if (saved) setenv("LAMINA_BINARY_CACHE", saved, 1); else unsetenv("LAMINA_BINARY_CACHE");
  free(saved);
  lam_ctx_opts o = lam_ctx_defaults();
  o.cache_mode = (lam_cache_mode)7;
  cr_assert_eq(lam_ctx_create(&o, &ctx), LAM_ERR_INVALID_ARGUMENT);
  cr_assert(strstr(lam_last_error(), "lam_ctx_create") && strstr(lam_last_error(), "cache_mode"),
            "%s", lam_last_error());
  char cmd[1300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  cr_assert_eq(system(cmd), 0);
  free(dir);
}

Test(runtime, disk_cache_miss_hit_and_corruption) {
  char *dir = make_temp_dir();
  lam_stats s = run_arange(dir, 0);
  cr_assert_eq(s.programs_built, 1, "first run builds from source");
  cr_assert_eq(s.programs_loaded, 0);
  cr_assert_eq(count_files(dir, ".bin"), 1);
  s = run_arange(dir, 0);
  cr_assert_eq(s.programs_built, 0, "second run loads the binary");
  cr_assert_eq(s.programs_loaded, 1);
  /* Corrupt every entry: truncate one byte off the end and flip a byte. */
  DIR *d = opendir(dir);
  struct dirent *e;
  char path[1200];
  while ((e = readdir(d))) {
    if (!strstr(e->d_name, ".bin")) continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    FILE *f = fopen(path, "r+b");
    fseek(f, 40, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 40, SEEK_SET);
    fputc(c ^ 0xff, f);
    fclose(f);
  }
  closedir(d);
  s = run_arange(dir, 0);
  cr_assert_eq(s.programs_built, 1, "a corrupt entry falls back to a source build");
  s = run_arange(dir, 0);
  cr_assert_eq(s.programs_loaded, 1, "and is replaced by a good one");
  /* Garbage file of the right name: also recovered. */
  d = opendir(dir);
  while ((e = readdir(d))) {
    if (!strstr(e->d_name, ".bin")) continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    FILE *f = fopen(path, "wb");
    fputs("LAMKBIN1 not a binary", f);
    fclose(f);
  }
  closedir(d);
  s = run_arange(dir, 0);
  cr_assert_eq(s.programs_built, 1);
  s = run_arange(dir, 1);
  cr_assert_eq(s.programs_built, 1, "disabled disk cache always builds");
  cr_assert_eq(s.programs_loaded, 0);
  char cmd[1300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  cr_assert_eq(system(cmd), 0);
  free(dir);
}

Test(runtime, kernel_dir_override_and_build_failure) {
  char *dir = make_temp_dir();
  char path[1200];
  /* A broken kernel source for the "tensor" family must fail with the log. */
  snprintf(path, sizeof path, "%s/common.clh", dir);
  FILE *f = fopen(path, "w");
  fputs("/* empty */\n", f);
  fclose(f);
  snprintf(path, sizeof path, "%s/tensor.cl", dir);
  f = fopen(path, "w");
  fputs("kernel void arange(global float *y) { this is not C; }\n", f);
  fclose(f);
  setenv("LAMINA_KERNEL_DIR", dir, 1);
  lam_ctx_opts o = lam_ctx_defaults();
  o.cache_mode = LAM_CACHE_OFF;
  lam_ctx *ctx = NULL;
  cr_assert_eq(lam_ctx_create(&o, &ctx), LAM_OK);
  tu_mark m = tu_mark_now(ctx);
  tu_assert_fails(lam_tensor_arange(ctx, LAM_F32, 0, 4, 1), LAM_ERR_BUILD, "tensor.cl");
  cr_assert(strstr(lam_last_error(), "error") != NULL, "build log in message: %s", lam_last_error());
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
  /* A missing file in the kernel dir is an I/O error naming the path. */
  remove(path);
  cr_assert_eq(lam_ctx_create(&o, &ctx), LAM_OK);
  tu_assert_fails(lam_tensor_arange(ctx, LAM_F32, 0, 4, 1), LAM_ERR_IO, "tensor.cl");
  lam_ctx_free(ctx);
  unsetenv("LAMINA_KERNEL_DIR");
  snprintf(path, sizeof path, "rm -rf %s", dir);
  cr_assert_eq(system(path), 0);
  free(dir);
}

/* Builds common.clh + one cl/ file with -Werror straight through OpenCL (a
 * PoCL cache entry would skip the compiler and its diagnostics: the options
 * differ from lamina's own, so these builds are always fresh). */
static void assert_builds_clean(lam_ctx *ctx, const char *common, const lam__kernel_source *k,
                                const char *dtype_opts) {
  size_t n = strlen(common) + k->size + 2;
  char *all = malloc(n);
  snprintf(all, n, "%s\n%s", common, (const char *)k->data);
  const char *src = all;
  cl_int err = CL_SUCCESS;
  cl_program p = clCreateProgramWithSource(ctx->context, 1, &src, NULL, &err);
  cr_assert_eq(err, CL_SUCCESS);
  char opts[256];
  snprintf(opts, sizeof opts, "%s -Werror -DLAM_WERROR_CHECK", dtype_opts);
  err = clBuildProgram(p, 1, &ctx->device, opts, NULL, NULL);
  size_t len = 0;
  clGetProgramBuildInfo(p, ctx->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &len);
  char *log = calloc(len + 1, 1);
  clGetProgramBuildInfo(p, ctx->device, CL_PROGRAM_BUILD_LOG, len, log, NULL);
  cr_expect_eq(err, CL_SUCCESS, "cl/%s with %s: %s\n%s", k->name, opts, lam__cl_error_name(err), log);
  free(log);
  clReleaseProgram(p);
  free(all);
}

/* Every kernel program compiles without a warning for f32 and f64 (and the
 * families with integer programs for i32), so no driver has anything to say
 * on a user's terminal (lamina also builds with -w). */
Test(runtime, every_kernel_program_builds_without_warnings, .timeout = 900) {
  lam_ctx *ctx = NULL;
  cr_assert_eq(lam_ctx_create(NULL, &ctx), LAM_OK, "%s", lam_last_error());
  const char *common = NULL;
  for (const lam__kernel_source *k = lam__kernel_sources; k->name; k++)
    if (strcmp(k->name, "common.clh") == 0) common = (const char *)k->data;
  cr_assert(common);
  static const char *const int_families[] = {"elementwise.cl", "tensor.cl", "index.cl", "shape.cl",
                                             "reduce.cl"};
  int programs = 0;
  for (const lam__kernel_source *k = lam__kernel_sources; k->name; k++) {
    size_t len = strlen(k->name);
    if (len < 3 || strcmp(k->name + len - 3, ".cl") != 0) continue;
    assert_builds_clean(ctx, common, k, "-DREAL=float -DACC=float -DLAM_F32");
    if (lam_ctx_device(ctx)->fp64) assert_builds_clean(ctx, common, k, "-DREAL=double -DACC=double -DLAM_F64");
    for (size_t i = 0; i < sizeof int_families / sizeof int_families[0]; i++)
      if (strcmp(k->name, int_families[i]) == 0)
        assert_builds_clean(ctx, common, k, "-DREAL=int -DACC=int -DLAM_I32");
    programs++;
  }
  cr_assert_geq(programs, 10, "the embedded table lists the cl/ files");
  lam_ctx_free(ctx);
}

Test(runtime, pool_reuses_buffers_and_stats) {
  lam_ctx *ctx = tu_ctx();
  lam_stats s0, s1, s2;
  lam_ctx_stats(ctx, &s0);
  cr_assert_eq(s0.live_tensors, 0);
  cr_assert_eq(s0.live_bytes, 0);
  int64_t shape[1] = {1000};
  lam_tensor *a = lam_tensor_zeros(ctx, LAM_F32, 1, shape);
  lam_ctx_stats(ctx, &s1);
  cr_assert_eq(s1.live_tensors, 1);
  cr_assert_geq(s1.live_bytes, 4000);
  cr_assert_leq(s1.live_bytes, 5000, "size classes waste at most 25%%");
  lam_tensor_free(a);
  lam_ctx_stats(ctx, &s2);
  cr_assert_eq(s2.live_bytes, 0);
  cr_assert_eq(s2.pool_bytes, s1.live_bytes, "released buffer is cached");
  lam_tensor *b = lam_tensor_zeros(ctx, LAM_F32, 1, (int64_t[]){990}); /* same class */
  lam_ctx_stats(ctx, &s2);
  cr_assert_eq(s2.pool_bytes, 0, "and reused");
  cr_assert_eq(s2.peak_bytes, s1.live_bytes);
  lam_tensor_free(b);
  cr_assert_eq(lam_ctx_trim(ctx), LAM_OK);
  lam_ctx_stats(ctx, &s2);
  cr_assert_eq(s2.pool_bytes, 0);
  tu_assert_status(lam_ctx_stats(NULL, &s2), LAM_ERR_NULL, "ctx");
  tu_assert_status(lam_ctx_stats(ctx, NULL), LAM_ERR_NULL, "out");
  tu_assert_status(lam_ctx_finish(NULL), LAM_ERR_NULL, "ctx");
  cr_assert_eq(lam_ctx_finish(ctx), LAM_OK);
  lam_ctx_free(ctx);
}

Test(runtime, status_strings_mirror_opencl) {
  cr_assert_eq((int)LAM_ERR_BUILD, CL_BUILD_PROGRAM_FAILURE);
  cr_assert_eq((int)LAM_ERR_INVALID_VALUE, CL_INVALID_VALUE);
  cr_assert_eq((int)LAM_ERR_DEVICE_NOT_FOUND, CL_DEVICE_NOT_FOUND);
  cr_assert_str_eq(lam_status_string(LAM_OK), "success");
  cr_assert_str_eq(lam_status_string(LAM_ERR_OUT_OF_MEMORY), "out of memory");
  cr_assert_str_eq(lam_status_string((lam_status)12345), "unknown status");
  lam_error_clear();
  cr_assert_str_eq(lam_last_error(), "");
  cr_assert_eq(lam_last_status(), LAM_OK);
}

Test(runtime, version_matches_the_headers) {
  int major = -1, minor = -1, patch = -1;
  const char *s = lam_version(&major, &minor, &patch);
  cr_assert_eq(major, LAMINA_VERSION_MAJOR);
  cr_assert_eq(minor, LAMINA_VERSION_MINOR);
  cr_assert_eq(patch, LAMINA_VERSION_PATCH);
  char want[32];
  snprintf(want, sizeof want, "%d.%d.%d", LAMINA_VERSION_MAJOR, LAMINA_VERSION_MINOR,
           LAMINA_VERSION_PATCH);
  cr_assert_str_eq(s, want);
  cr_assert_eq(LAMINA_VERSION,
               LAMINA_VERSION_MAJOR * 10000 + LAMINA_VERSION_MINOR * 100 + LAMINA_VERSION_PATCH);
  cr_assert_str_eq(lam_version(NULL, NULL, NULL), want); /* every part is optional */
}
