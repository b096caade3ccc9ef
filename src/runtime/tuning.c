/* runtime/tuning.c: the tuning table (runtime/tuning_internal.h): one set
 * of defaults per device class filled from the device's capabilities, the
 * LAMINA_*_LAYOUT overrides (read once per context), the built-in GEMM
 * parameter sets, and the store of lam_ctx_tune results.
 *
 * The store is one small text file per device in the context's cache
 * directory, tuning-<16 hex>.txt, the hex a hash of the key (device name,
 * driver version, lamina version). The file repeats the key, so a hash
 * collision, a file copied from another machine or left by another lamina
 * version is recognised and ignored; the last line is a checksum of the
 * text before it, so a truncated or edited file is ignored too. Ignored
 * means the table's defaults apply: a store is an optimisation, never a
 * reason to fail.
 *
 *   lamina-tuning 1
 *   device <name>
 *   driver <driver version>
 *   lamina <version>
 *   gemm f32 mr=6 vw=16 nv=2 tm=4 tn=4 vk=16 ly=16 copy_min=128
 *   norm cpu
 *   checksum <16 hex>
 *
 * (each of the gemm f32, gemm f64 and norm lines optional). An unknown or
 * repeated line makes the file invalid.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/tune.h"
#include "lamina/version.h"
#include "runtime/platform_internal.h"
#include "runtime/runtime_internal.h"

/* ---- built-in GEMM sets (how they were found: ops/gemm_tuning.c) -------- */

typedef struct {
  const char *name;
  int min_width; /* smallest native vector width (elements) the set is for */
  lam__gemm_params p;
} lam__gemm_named;

/* Widest first: the first set whose min_width the device reaches is used. */
static const lam__gemm_named lam__gemm_f32_sets[] = {
    {"f32-w16", 16, {6, 16, 2, 4, 4, 16, 16, 128}},
    {"f32-w8", 8, {6, 8, 2, 4, 4, 8, 16, 128}},
    {"f32-w4", 1, {4, 4, 3, 4, 4, 4, 16, 128}},
};
static const lam__gemm_named lam__gemm_f64_sets[] = {
    {"f64-w8", 8, {6, 8, 2, 4, 4, 8, 16, 128}},
    {"f64-w4", 4, {6, 4, 2, 4, 4, 4, 16, 128}},
    {"f64-w2", 1, {4, 2, 3, 4, 4, 4, 16, 128}},
};

static const lam__gemm_named *lam__gemm_sets(lam_dtype dtype, int *count) {
  if (dtype == LAM_F64) {
    *count = (int)(sizeof lam__gemm_f64_sets / sizeof *lam__gemm_f64_sets);
    return lam__gemm_f64_sets;
  }
  *count = (int)(sizeof lam__gemm_f32_sets / sizeof *lam__gemm_f32_sets);
  return lam__gemm_f32_sets;
}

int lam__gemm_set_count(lam_dtype dtype) {
  int n;
  lam__gemm_sets(dtype, &n);
  return n;
}

const lam__gemm_params *lam__gemm_set(lam_dtype dtype, int index, const char **name) {
  int n;
  const lam__gemm_named *s = lam__gemm_sets(dtype, &n);
  if (index < 0 || index >= n) return NULL;
  if (name) *name = s[index].name;
  return &s[index].p;
}

int lam__gemm_set_for_width(lam_dtype dtype, int width) {
  int n;
  const lam__gemm_named *s = lam__gemm_sets(dtype, &n);
  for (int i = 0; i < n; i++)
    if (width >= s[i].min_width) return i;
  return n - 1;
}

static bool lam__vw_ok(int w) { return w == 2 || w == 4 || w == 8 || w == 16; }

bool lam__gemm_params_valid(const lam__gemm_params *p) {
  return p && p->mr >= 1 && p->mr <= 16 && lam__vw_ok(p->vw) && p->nv >= 1 && p->nv <= 8 &&
         p->mr * p->nv <= 64 && p->tm >= 1 && p->tm <= 16 && p->tn >= 1 && p->tn <= 16 &&
         p->tm * p->tn <= 64 && (p->vk == 4 || p->vk == 8 || p->vk == 16) && p->ly >= 1 &&
         p->ly <= 256 && p->copy_min >= 1 && p->copy_min <= (1 << 20);
}

const char *lam__gemm_params_str(const lam__gemm_params *p, char *buf, size_t cap) {
  snprintf(buf, cap, "mr=%d vw=%d nv=%d tm=%d tn=%d vk=%d ly=%d copy_min=%d", p->mr, p->vw, p->nv,
           p->tm, p->tn, p->vk, p->ly, p->copy_min);
  return buf;
}

static bool lam__gemm_params_parse(const char *s, lam__gemm_params *p) {
  int used = 0;
  if (sscanf(s, "mr=%d vw=%d nv=%d tm=%d tn=%d vk=%d ly=%d copy_min=%d%n", &p->mr, &p->vw, &p->nv,
             &p->tm, &p->tn, &p->vk, &p->ly, &p->copy_min, &used) != 8)
    return false;
  return s[used] == '\0' && lam__gemm_params_valid(p);
}

/* ---- the store ------------------------------------------------------------ */

static uint64_t lam__fnv(uint64_t h, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
  return h;
}

uint64_t lam__tuning_checksum(const char *text, size_t n) {
  return lam__fnv(14695981039346656037ULL ^ 0x6c616d696e61ULL, text, n);
}

static const char *lam__version_str(void) { return lam_version(NULL, NULL, NULL); }

/* Lines of the key (device, driver, lamina version), each "\n"-terminated. */
static void lam__tuning_key(const lam_ctx *ctx, char *buf, size_t cap) {
  snprintf(buf, cap, "lamina-tuning 1\ndevice %s\ndriver %s\nlamina %s\n", ctx->info.name,
           ctx->info.driver_version, lam__version_str());
}

static void lam__tuning_path(const lam_ctx *ctx, char *out, size_t cap) {
  out[0] = '\0';
  if (!ctx->cache_dir[0]) return;
  char key[512];
  lam__tuning_key(ctx, key, sizeof key);
  unsigned long long h = (unsigned long long)lam__fnv(14695981039346656037ULL, key, strlen(key));
  snprintf(out, cap, "%s/tuning-%016llx.txt", ctx->cache_dir, h);
}

int lam__tuning_save(const lam_ctx *ctx, const lam__tuning_saved *s) {
  const char *path = ctx->tuning.store_path;
  if (!path[0]) return -1;
  char text[2048], p[160];
  lam__tuning_key(ctx, text, sizeof text);
  for (int d = 0; d < 2; d++)
    if (s->has_gemm[d]) {
      size_t n = strlen(text);
      snprintf(text + n, sizeof text - n, "gemm %s %s\n", d ? "f64" : "f32",
               lam__gemm_params_str(&s->gemm[d], p, sizeof p));
    }
  if (s->has_norm) {
    size_t n = strlen(text);
    snprintf(text + n, sizeof text - n, "norm %s\n", s->norm_cpu ? "cpu" : "gpu");
  }
  size_t n = strlen(text);
  snprintf(text + n, sizeof text - n, "checksum %016llx\n",
           (unsigned long long)lam__tuning_checksum(text, n));
  /* Written to a temporary name, then renamed: a reader never sees half a file. */
  char tmp[1200];
  snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, lam__process_id());
  FILE *f = fopen(tmp, "w");
  if (!f) return -1;
  bool ok = fputs(text, f) >= 0;
  ok = fclose(f) == 0 && ok;
  if (!ok || lam__file_replace(tmp, path) != 0) {
    remove(tmp);
    return -1;
  }
  return 0;
}

int lam__tuning_load(const lam_ctx *ctx, lam__tuning_saved *s) {
  memset(s, 0, sizeof *s);
  const char *path = ctx->tuning.store_path;
  if (!path[0]) return -1;
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  char text[4096];
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  char key[512];
  lam__tuning_key(ctx, key, sizeof key);
  size_t kn = strlen(key);
  if (n < kn || memcmp(text, key, kn) != 0) return -1;
  char *sum = strstr(text, "checksum ");
  if (!sum || (sum != text && sum[-1] != '\n')) return -1;
  unsigned long long want = 0;
  int used = 0;
  if (sscanf(sum, "checksum %16llx\n%n", &want, &used) != 1 || used == 0 || sum[used] != '\0')
    return -1;
  if (lam__tuning_checksum(text, (size_t)(sum - text)) != want) return -1;
  lam__tuning_saved got;
  memset(&got, 0, sizeof got);
  for (char *line = text + kn; line < sum;) {
    char *end = strchr(line, '\n');
    *end = '\0';
    int d = strncmp(line, "gemm f32 ", 9) == 0 ? 0 : strncmp(line, "gemm f64 ", 9) == 0 ? 1 : -1;
    if (d >= 0) {
      if (got.has_gemm[d] || !lam__gemm_params_parse(line + 9, &got.gemm[d])) return -1;
      got.has_gemm[d] = true;
    } else if (!got.has_norm && (strcmp(line, "norm cpu") == 0 || strcmp(line, "norm gpu") == 0)) {
      got.has_norm = true;
      got.norm_cpu = line[5] == 'c';
    } else {
      return -1;
    }
    line = end + 1;
  }
  *s = got;
  return 0;
}

/* ---- the table ---------------------------------------------------------- */

static int lam__dev_uint(const lam_ctx *ctx, cl_device_info what) {
  cl_uint w = 0;
  return clGetDeviceInfo(ctx->device, what, sizeof w, &w, NULL) == CL_SUCCESS ? (int)w : 0;
}

/* LAMINA_<name>=cpu|gpu: 1 for gpu, 0 for cpu, else dflt. */
static bool lam__layout_env(const char *name, bool gpu_default) {
  const char *e = getenv(name);
  if (e && strcmp(e, "gpu") == 0) return true;
  if (e && strcmp(e, "cpu") == 0) return false;
  return gpu_default;
}

void lam__tuning_init(lam_ctx *ctx) {
  lam__tuning *t = &ctx->tuning;
  const bool cpu = ctx->info.type == LAM_DEVICE_CPU;
  memset(t, 0, sizeof *t);
  t->device_class = cpu ? "cpu" : "gpu";
  t->width_f32 = lam__dev_uint(ctx, CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT);
  t->width_f64 = lam__dev_uint(ctx, CL_DEVICE_NATIVE_VECTOR_WIDTH_DOUBLE);
  t->pref_f32 = lam__dev_uint(ctx, CL_DEVICE_PREFERRED_VECTOR_WIDTH_FLOAT);
  t->pref_f64 = lam__dev_uint(ctx, CL_DEVICE_PREFERRED_VECTOR_WIDTH_DOUBLE);
  /* 256 work-items per group streams well on GPUs and on PoCL (which pays
   * per group; 8-item groups are ~6x slower there). */
  t->wg_1d = ctx->info.max_work_group_size < 256 ? ctx->info.max_work_group_size : 256;
  if (t->wg_1d == 0) t->wg_1d = 1;
  /* CPUs: long runs per work-item (a loop the compiler vectorises); GPUs:
   * one element per work-item, coalesced across the group. */
  t->ew_chunk = cpu ? 64 : 1;
  t->rnn_chunk = cpu ? 64 : 1;
  t->spread_groups = cpu;
  t->reduce_gpu = lam__layout_env("LAMINA_REDUCE_LAYOUT", !cpu);
  /* CPUs: a few dozen long work-items per core keep the cores busy and
   * balanced; GPUs want thousands of threads per compute unit. */
  t->reduce_par_per_cu = t->reduce_gpu ? 1024 : 64;
  t->reduce_min_chunk = t->reduce_gpu ? 64 : 2048;
  t->softmax_cols = cpu;
  t->norm_cpu = !lam__layout_env("LAMINA_NORM_LAYOUT", !cpu);
  t->norm_chan_per_cu = cpu ? 128 : 4096;
  t->norm_plane_target = cpu ? 256 : 65536;
  t->norm_plane_minrun = cpu ? 256 : 1;
  t->att_gpu = lam__layout_env("LAMINA_ATTENTION_LAYOUT", ctx->info.type == LAM_DEVICE_GPU);
  t->att_bm = 12;
  t->att_unroll = ctx->info.type == LAM_DEVICE_GPU;
  t->index_run = ctx->info.type == LAM_DEVICE_GPU ? 1 : 32;
  t->quant_rows = cpu;
  t->ctc_wg_cap = ctx->info.type == LAM_DEVICE_GPU ? 256 : 64;
  for (int d = 0; d < 2; d++) {
    lam_dtype dt = d ? LAM_F64 : LAM_F32;
    t->gemm_set[d] = lam__gemm_set_for_width(dt, d ? t->width_f64 : t->width_f32);
    t->gemm[d] = *lam__gemm_set(dt, t->gemm_set[d], NULL);
  }
  lam__tuning_path(ctx, t->store_path, sizeof t->store_path);
  lam__tuning_saved stored;
  if (lam__tuning_load(ctx, &stored) == 0) {
    for (int d = 0; d < 2; d++)
      if (stored.has_gemm[d]) t->gemm[d] = stored.gemm[d], t->gemm_tuned[d] = true;
    /* The variable, set for a run, outranks a stored choice. */
    const char *e = getenv("LAMINA_NORM_LAYOUT");
    if (stored.has_norm && !(e && (strcmp(e, "cpu") == 0 || strcmp(e, "gpu") == 0)))
      t->norm_cpu = stored.norm_cpu, t->norm_tuned = true;
  }
}

lam_status lam_ctx_tuning(const lam_ctx *ctx, char *buf, size_t cap) {
  if (!ctx || !buf)
    return lam__fail(LAM_ERR_NULL, "lam_ctx_tuning: %s is NULL", ctx ? "buf" : "ctx");
  const lam__tuning *t = &ctx->tuning;
  char g[2][160];
  const char *set[2];
  for (int d = 0; d < 2; d++) {
    lam__gemm_params_str(&t->gemm[d], g[d], sizeof g[d]);
    lam__gemm_set(d ? LAM_F64 : LAM_F32, t->gemm_set[d], &set[d]);
  }
  int n = snprintf(
      buf, cap,
      "class %s\n"
      "vector_width f32 %d (preferred %d), f64 %d (preferred %d)\n"
      "wg_1d %zu\n"
      "ew_chunk %d\n"
      "rnn_chunk %d\n"
      "spread_groups %s\n"
      "reduce_layout %s (par %lld per CU, min chunk %lld)\n"
      "softmax_cols %s\n"
      "norm_layout %s%s (channel items %lld per CU, plane target %lld, min run %lld)\n"
      "attention_layout %s (bm %d%s)\n"
      "index_run %d\n"
      "quant_rows %s\n"
      "ctc_wg_cap %zu\n"
      "gemm f32 %s (%s)\n"
      "gemm f64 %s (%s)\n"
      "store %s\n",
      t->device_class, t->width_f32, t->pref_f32, t->width_f64, t->pref_f64, t->wg_1d, t->ew_chunk,
      t->rnn_chunk, t->spread_groups ? "yes" : "no", t->reduce_gpu ? "gpu" : "cpu",
      (long long)t->reduce_par_per_cu, (long long)t->reduce_min_chunk,
      t->softmax_cols ? "yes" : "no", t->norm_cpu ? "cpu" : "gpu",
      t->norm_tuned ? " tuned" : "", (long long)t->norm_chan_per_cu,
      (long long)t->norm_plane_target, (long long)t->norm_plane_minrun, t->att_gpu ? "gpu" : "cpu",
      t->att_bm, t->att_unroll ? ", unrolled" : "", t->index_run, t->quant_rows ? "yes" : "no",
      t->ctc_wg_cap, g[0], t->gemm_tuned[0] ? "tuned" : set[0], g[1], t->gemm_tuned[1] ? "tuned" : set[1],
      t->store_path[0] ? t->store_path : "(no cache directory)");
  if (n < 0 || (size_t)n >= cap) {
    if (cap) buf[0] = '\0';
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "lam_ctx_tuning: cap %zu is too small (%d needed)",
                     cap, n + 1);
  }
  return LAM_OK;
}
