/* tests/fuzz/fuzz_safetensors.c: libFuzzer target for the safetensors reader:
 * lam_safetensors_load (header JSON, dtypes, offsets, the data section and
 * __metadata__) with and without a prefix, and lam_safetensors_read_metadata.
 * Any input must give LAM_OK or an error with a message, and leak nothing
 * (the context's live-tensor count returns to zero). */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lam_ctx *ctx = fz_ctx();
  const char *path = fz_file(data, size);
  for (int pass = 0; pass < 2; pass++) {
    lam_load_opts o = lam_load_defaults();
    if (pass) o.prefix = "enc.";
    lam_ptree *tree = NULL;
    lam_metadata *meta = NULL;
    lam_status st = lam_safetensors_load(ctx, path, &o, &tree, pass ? NULL : &meta);
    if (st != LAM_OK && (tree || meta || !lam_last_error()[0])) abort();
    lam_ptree_free(tree);
    lam_metadata_free(meta);
  }
  lam_metadata *meta = NULL;
  lam_status st = lam_safetensors_read_metadata(path, &meta);
  if (st != LAM_OK && (meta || !lam_last_error()[0])) abort();
  lam_metadata_free(meta);
  lam_stats s;
  if (lam_ctx_stats(ctx, &s) != LAM_OK || s.live_tensors != 0) abort();
  return 0;
}
