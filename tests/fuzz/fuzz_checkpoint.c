/* tests/fuzz/fuzz_checkpoint.c: libFuzzer target for lam_checkpoint_load:
 * the safetensors container plus the checkpoint metadata (format, step, rng
 * key, optimizer kind and step count) and the optimizer state layout, into
 * a model, its state and an AdamW optimizer. Errors must carry a message;
 * nothing may leak. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lam_ctx *ctx = fz_ctx();
  static lam_ptree *params, *state;
  static lam_optimizer *opt;
  static int64_t base;
  lam_stats s;
  if (!params) {
    params = fz_model(ctx);
    state = fz_state(ctx);
    opt = lam_adamw(NULL);
    if (!opt || lam_ctx_stats(ctx, &s) != LAM_OK) abort();
  }
  const char *path = fz_file(data, size);
  int64_t step = 0;
  lam_rng_key key;
  for (int pass = 0; pass < 2; pass++) {
    lam_status st = pass ? lam_checkpoint_load(path, params, NULL, NULL, NULL, NULL)
                         : lam_checkpoint_load(path, params, state, opt, &step, &key);
    if (st != LAM_OK && !lam_last_error()[0]) abort();
  }
  /* The optimizer's state may have been replaced by a loaded one; measure
   * leaks against the count after the first input. */
  if (lam_ctx_stats(ctx, &s) != LAM_OK) abort();
  lam_ptree *ost = lam_optimizer_state(opt);
  int64_t held = ost ? lam_ptree_leaf_count(ost) : 0;
  lam_ptree_free(ost);
  if (!base) base = s.live_tensors - held;
  if (s.live_tensors - held != base) abort();
  return 0;
}
