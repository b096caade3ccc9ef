/* runtime/program.c: compiling kernel programs lazily, once per context and
 * option set, with an on-disk binary cache.
 *
 * A program is cl/common.clh followed by cl/<family>.cl, both embedded at
 * the build (or read from LAMINA_KERNEL_DIR when set, for kernel work). The
 * disk cache key hashes the source, the options, the platform, device and
 * driver and the library version, so any change builds afresh. Cache files
 * carry a magic, a length and a checksum; a file that fails any check, or a
 * binary the driver refuses, falls back to a source build that replaces it.
 * Files are written to a temporary name and renamed, so concurrent processes
 * (Criterion runs tests in parallel) never see a half-written entry.
 * Whether a new build is stored at all is the context's choice
 * (lam_cache_mode): on PoCL exporting a binary costs more than the build and
 * PoCL's own kernel cache keeps it, so nothing is stored there by default. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/kernels.h"
#include "runtime/platform_internal.h"
#include "runtime/runtime_internal.h"

#define LAM__MAX_KERNELS_PER_PROGRAM 48

typedef struct {
  char name[64];
  cl_kernel kernel;
} lam__kernel_entry;

struct lam__program {
  char family[64];
  char *options;
  cl_program program;
  lam__kernel_entry kernels[LAM__MAX_KERNELS_PER_PROGRAM];
  int n_kernels;
  lam__program *next;
};

static const char lam__cache_magic[8] = {'L', 'A', 'M', 'K', 'B', 'I', 'N', '1'};

static uint64_t lam__fnv1a(uint64_t h, const void *data, size_t n) {
  const unsigned char *p = data;
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 1099511628211ULL;
  }
  return h;
}

/* Returns a malloc'd copy of one kernel source: from LAMINA_KERNEL_DIR when
 * set, else the embedded bytes. */
static char *lam__source_text(const char *file, const char *fn) {
  const char *dir = getenv("LAMINA_KERNEL_DIR");
  if (dir && *dir) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    size_t n = 0;
    char *text = lam__read_all(path, 0, &n);
    if (!text)
      lam__fail(LAM_ERR_IO, "%s: cannot read kernel source %s (LAMINA_KERNEL_DIR)", fn, path);
    return text;
  }
  for (const lam__kernel_source *s = lam__kernel_sources; s->name; s++) {
    if (strcmp(s->name, file) == 0) {
      char *text = malloc(s->size + 1);
      if (!text) {
        lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
        return NULL;
      }
      memcpy(text, s->data, s->size);
      text[s->size] = '\0';
      return text;
    }
  }
  lam__fail(LAM_ERR_NOT_FOUND, "%s: no kernel source %s is embedded", fn, file);
  return NULL;
}

/* Returns common.clh + <family>.cl as one malloc'd string. */
static char *lam__program_source(const char *family) {
  char file[96];
  snprintf(file, sizeof file, "%s.cl", family);
  char *common = lam__source_text("common.clh", "lam__kernel_get");
  if (!common) return NULL;
  char *body = lam__source_text(file, "lam__kernel_get");
  if (!body) {
    free(common);
    return NULL;
  }
  size_t a = strlen(common), b = strlen(body);
  char *all = malloc(a + b + 2);
  if (all) {
    memcpy(all, common, a);
    all[a] = '\n';
    memcpy(all + a + 1, body, b + 1);
  } else {
    lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "lam__kernel_get: out of host memory");
  }
  free(common);
  free(body);
  return all;
}

static void lam__cache_path(lam_ctx *ctx, const char *source, const char *options, char *path,
                            size_t cap) {
  const char *parts[] = {source, options, ctx->info.platform_name, ctx->info.name,
                         ctx->info.driver_version, LAMINA_VERSION_STRING};
  uint64_t h1 = 14695981039346656037ULL, h2 = 0x9e3779b97f4a7c15ULL;
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
    size_t n = strlen(parts[i]) + 1; /* include NUL as a separator */
    h1 = lam__fnv1a(h1, parts[i], n);
    h2 = lam__fnv1a(h2 ^ (uint64_t)i, parts[i], n);
  }
  snprintf(path, cap, "%s/%016llx%016llx.bin", ctx->cache_dir, (unsigned long long)h1,
           (unsigned long long)h2);
}

/* Tries to build a program from a cache file; returns NULL on any mismatch. */
static cl_program lam__cache_load(lam_ctx *ctx, const char *path, const char *options) {
  size_t n = 0;
  unsigned char *file = (unsigned char *)lam__read_all(path, 0, &n);
  if (!file) return NULL;
  cl_program prog = NULL;
  uint64_t len = 0, sum = 0;
  if (n >= 24 && memcmp(file, lam__cache_magic, 8) == 0) {
    memcpy(&len, file + 8, 8);
    memcpy(&sum, file + 16, 8);
    if (len == n - 24 && len > 0 && lam__fnv1a(14695981039346656037ULL, file + 24, len) == sum) {
      const unsigned char *bin = file + 24;
      size_t bin_len = (size_t)len;
      cl_int status = CL_SUCCESS, err = CL_SUCCESS;
      prog = clCreateProgramWithBinary(ctx->context, 1, &ctx->device, &bin_len, &bin, &status,
                                       &err);
      if (err != CL_SUCCESS || status != CL_SUCCESS) {
        if (prog) clReleaseProgram(prog);
        prog = NULL;
      } else if (clBuildProgram(prog, 1, &ctx->device, options, NULL, NULL) != CL_SUCCESS) {
        clReleaseProgram(prog);
        prog = NULL;
      }
    }
  }
  free(file);
  return prog;
}

/* Writes the program binary to the cache; failures only cost a rebuild
 * later. Returns whether the entry was written. */
static bool lam__cache_store(lam_ctx *ctx, cl_program prog, const char *path) {
  size_t bin_len = 0;
  if (clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof bin_len, &bin_len, NULL) !=
          CL_SUCCESS ||
      bin_len == 0)
    return false;
  unsigned char *bin = malloc(bin_len);
  if (!bin) return false;
  bool stored = false;
  if (clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof bin, &bin, NULL) == CL_SUCCESS) {
    /* path is at most 1200 bytes (see lam__program_build); a name that would
     * not fit is never truncated into another file's name: the store is skipped. */
    char tmp[1240];
    int len_tmp = snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, lam__process_id());
    FILE *f = len_tmp > 0 && (size_t)len_tmp < sizeof tmp ? fopen(tmp, "wb") : NULL;
    if (f) {
      uint64_t len = bin_len, sum = lam__fnv1a(14695981039346656037ULL, bin, bin_len);
      int ok = fwrite(lam__cache_magic, 1, 8, f) == 8 && fwrite(&len, 8, 1, f) == 1 &&
               fwrite(&sum, 8, 1, f) == 1 && fwrite(bin, 1, bin_len, f) == bin_len;
      ok = (fclose(f) == 0) && ok;
      if (!ok || lam__file_replace(tmp, path) != 0)
        remove(tmp);
      else
        stored = true;
    }
  }
  free(bin);
  (void)ctx;
  return stored;
}

static lam_status lam__build_from_source(lam_ctx *ctx, const char *family, const char *source,
                                         const char *options, cl_program *out) {
  cl_int err = CL_SUCCESS;
  const char *src = source;
  cl_program prog = clCreateProgramWithSource(ctx->context, 1, &src, NULL, &err);
  if (err != CL_SUCCESS) return lam__cl_fail(err, "lam__kernel_get", "clCreateProgramWithSource");
  err = clBuildProgram(prog, 1, &ctx->device, options, NULL, NULL);
  if (err != CL_SUCCESS) {
    size_t log_len = 0;
    clGetProgramBuildInfo(prog, ctx->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &log_len);
    char *log = malloc(log_len + 1);
    if (log) {
      clGetProgramBuildInfo(prog, ctx->device, CL_PROGRAM_BUILD_LOG, log_len, log, NULL);
      log[log_len] = '\0';
    }
    clReleaseProgram(prog);
    lam__fail(LAM_ERR_BUILD, "lam__kernel_get: building cl/%s.cl with \"%s\" failed on %s: %s\n%s",
              family, options, ctx->info.name, lam__cl_error_name(err), log ? log : "");
    free(log);
    return LAM_ERR_BUILD;
  }
  ctx->stats.programs_built++;
  *out = prog;
  return LAM_OK;
}

static lam_status lam__program_get(lam_ctx *ctx, const char *family, const char *options,
                                   lam__program **out) {
  for (lam__program *p = ctx->programs; p; p = p->next)
    if (strcmp(p->family, family) == 0 && strcmp(p->options, options) == 0) {
      *out = p;
      return LAM_OK;
    }
  if (strlen(family) >= sizeof ((lam__program *)0)->family)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "lam__kernel_get: family name too long");
  char *source = lam__program_source(family);
  if (!source) return lam_last_status();
  double t0 = lam__now_seconds();
  /* -w: a kernel compiler's warnings never reach the user's terminal (PoCL's
   * clang prints "N warnings generated." to stderr). The kernels themselves
   * build warning-free with -Werror (tests/test_runtime.c checks every
   * program); errors still come back in the build log. */
  char build_options[1100];
  int n_opts = snprintf(build_options, sizeof build_options, "%s%s-w", options, *options ? " " : "");
  if (n_opts < 0 || (size_t)n_opts >= sizeof build_options) {
    free(source);
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "lam__kernel_get: build options too long");
  }
  cl_program prog = NULL;
  char path[1200] = "";
  if (ctx->cache_dir[0]) {
    lam__cache_path(ctx, source, options, path, sizeof path);
    prog = lam__cache_load(ctx, path, build_options);
    if (prog) ctx->stats.programs_loaded++;
  }
  if (!prog) {
    lam_status st = lam__build_from_source(ctx, family, source, build_options, &prog);
    if (st != LAM_OK) {
      free(source);
      return st;
    }
    if (path[0] && ctx->store_binaries && lam__cache_store(ctx, prog, path))
      ctx->stats.programs_stored++;
  }
  free(source);
  ctx->stats.build_seconds += lam__now_seconds() - t0;
  lam__program *p = calloc(1, sizeof *p);
  char *opts = p ? malloc(strlen(options) + 1) : NULL;
  if (!p || !opts) {
    free(p);
    clReleaseProgram(prog);
    return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "lam__kernel_get: out of host memory");
  }
  strcpy(opts, options);
  snprintf(p->family, sizeof p->family, "%s", family);
  p->options = opts;
  p->program = prog;
  p->next = ctx->programs;
  ctx->programs = p;
  *out = p;
  return LAM_OK;
}

lam_status lam__kernel_get(lam_ctx *ctx, const char *family, const char *options,
                           const char *name, cl_kernel *out) {
  lam__program *p = NULL;
  lam_status st = lam__program_get(ctx, family, options ? options : "", &p);
  if (st != LAM_OK) return st;
  for (int i = 0; i < p->n_kernels; i++)
    if (strcmp(p->kernels[i].name, name) == 0) {
      *out = p->kernels[i].kernel;
      return LAM_OK;
    }
  if (p->n_kernels == LAM__MAX_KERNELS_PER_PROGRAM || strlen(name) >= 64)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "lam__kernel_get: too many kernels in %s", family);
  cl_int err = CL_SUCCESS;
  cl_kernel k = clCreateKernel(p->program, name, &err);
  if (err != CL_SUCCESS) {
    return lam__fail(err == CL_INVALID_KERNEL_NAME ? LAM_ERR_INVALID_KERNEL_NAME : LAM_ERR_OPENCL,
                     "lam__kernel_get: kernel %s not in cl/%s.cl: %s", name, family,
                     lam__cl_error_name(err));
  }
  snprintf(p->kernels[p->n_kernels].name, 64, "%s", name);
  p->kernels[p->n_kernels++].kernel = k;
  *out = k;
  return LAM_OK;
}

void lam__programs_free(lam_ctx *ctx) {
  lam__program *p = ctx->programs;
  while (p) {
    lam__program *next = p->next;
    for (int i = 0; i < p->n_kernels; i++) clReleaseKernel(p->kernels[i].kernel);
    clReleaseProgram(p->program);
    free(p->options);
    free(p);
    p = next;
  }
  ctx->programs = NULL;
}
