/* tests/fuzz/fuzz_load_into.c: libFuzzer target for lam_ptree_load_into:
 * every key, dtype and shape check against an initialised model, strict and
 * non-strict, with and without a prefix, and the host conversions of the
 * float file dtypes. Errors must carry a message; nothing may leak. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lam_ctx *ctx = fz_ctx();
  static lam_ptree *model;
  static int64_t base;
  lam_stats s;
  if (!model) {
    model = fz_model(ctx);
    if (lam_ctx_stats(ctx, &s) != LAM_OK) abort();
    base = s.live_tensors;
  }
  const char *path = fz_file(data, size);
  for (int pass = 0; pass < 3; pass++) {
    lam_load_opts o = lam_load_defaults();
    o.non_strict = pass >= 1;
    if (pass == 2) o.prefix = "model.";
    lam_status st = lam_ptree_load_into(model, path, &o);
    if (st != LAM_OK && !lam_last_error()[0]) abort();
  }
  if (lam_ctx_stats(ctx, &s) != LAM_OK || s.live_tensors != base) abort();
  return 0;
}
