/* tests/fuzz/fuzz_data.c: libFuzzer target for the dataset file readers:
 * lam_dataset_from_csv (default options, a header row and ';' with the first
 * column as label, no label) and lam_dataset_from_npy (the .npy header
 * dictionary, dtypes, shapes and the data size). Any input must give LAM_OK
 * or an error with a message, and leak nothing. */
#include "fuzz_common.h"

static void check(lam_status st, lam_dataset *ds) {
  if (st != LAM_OK && (ds || !lam_last_error()[0])) abort();
  lam_dataset_free(ds);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lam_ctx *ctx = fz_ctx();
  const char *path = fz_file(data, size);
  const lam_csv_opts csv[3] = {{0}, {.label_column = 1, .skip_rows = 1, .delimiter = ';'}, {.no_label = true}};
  for (int i = 0; i < 3; i++) {
    lam_dataset *ds = NULL;
    check(lam_dataset_from_csv(path, &csv[i], &ds), ds);
  }
  lam_dataset *ds = NULL;
  check(lam_dataset_from_npy(1, (const char *const[]){path}, &ds), ds);
  lam_stats s;
  if (lam_ctx_stats(ctx, &s) != LAM_OK || s.live_tensors != 0) abort();
  return 0;
}
