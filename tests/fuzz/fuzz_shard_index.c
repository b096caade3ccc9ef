/* tests/fuzz/fuzz_shard_index.c: libFuzzer target for the sharded-checkpoint
 * index reader (model.safetensors.index.json: the "weight_map" JSON, shard
 * names, keys listed twice or missing) through lam_vars_load, with one real
 * shard beside it holding the fuzz model's tensors. Any input must give
 * LAM_OK or an error with a message, write nothing on error, and leak
 * nothing. */
#include "fuzz_common.h"

static char dir[64], index_path[128], shard_path[128];

static void setup(lam_ctx *ctx) {
  if (dir[0]) return;
  snprintf(dir, sizeof dir, "/tmp/lamina-fuzz-index-%ld", (long)getpid());
  if (mkdir(dir, 0700) != 0) abort();
  snprintf(index_path, sizeof index_path, "%s/model.safetensors.index.json", dir);
  snprintf(shard_path, sizeof shard_path, "%s/model-00001-of-00001.safetensors", dir);
  lam_ptree *m = fz_model(ctx);
  if (lam_safetensors_save(shard_path, m, NULL) != LAM_OK) abort();
  lam_ptree_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lam_ctx *ctx = fz_ctx();
  setup(ctx);
  FILE *f = fopen(index_path, "wb");
  if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) abort();
  lam_vars *vars = lam_vars_create(fz_model(ctx), NULL, LAM_F32);
  if (!vars) abort();
  for (int pass = 0; pass < 2; pass++) {
    lam_load_report report = {0};
    lam_load_opts o = {.non_strict = pass == 1};
    lam_status st = lam_vars_load(vars, index_path, &o, &report);
    if (st != LAM_OK && !lam_last_error()[0]) abort();
    lam_load_report_free(&report);
  }
  lam_vars_free(vars);
  lam_stats s;
  if (lam_ctx_stats(ctx, &s) != LAM_OK || s.live_tensors != 0) abort();
  return 0;
}
