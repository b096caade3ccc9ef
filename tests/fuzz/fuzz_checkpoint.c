/* tests/fuzz/fuzz_checkpoint.c: libFuzzer target for lam_checkpoint_load:
 * the safetensors container plus the checkpoint metadata (format, step, rng
 * key, optimizer kind and step count) and the optimizer state layout, into
 * a model, its state and an AdamW optimizer. Errors must carry a message;
 * nothing may leak. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lam_ctx *ctx = fz_ctx();
  static lam_ptree *params, *state;
  static int64_t base;
  lam_stats s;
  if (!params) {
    params = fz_model(ctx);
    state = fz_state(ctx);
    if (lam_ctx_stats(ctx, &s) != LAM_OK) abort();
    base = s.live_tensors;
  }
  /* A fresh optimizer per input, freed after, so that any tensor still
   * alive at the end is a leak (loads replace leaves in place). */
  lam_optimizer *opt = lam_adamw(NULL);
  if (!opt) abort();
  const char *path = fz_file(data, size);
  int64_t step = 0;
  lam_rng_key key;
  for (int pass = 0; pass < 2; pass++) {
    lam_status st = pass ? lam_checkpoint_load(path, params, NULL, NULL, NULL, NULL)
                         : lam_checkpoint_load(path, params, state, opt, &step, &key);
    if (st != LAM_OK && !lam_last_error()[0]) abort();
  }
  lam_optimizer_free(opt);
  if (lam_ctx_stats(ctx, &s) != LAM_OK || s.live_tensors != base) abort();
  return 0;
}
