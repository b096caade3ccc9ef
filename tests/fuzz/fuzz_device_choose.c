/* tests/fuzz/fuzz_device_choose.c: libFuzzer target for the device selector
 * parser (lam_device_choose: an index, "cpu", "gpu" or part of a device or
 * platform name; the same string lam_ctx_opts.device and LAMINA_DEVICE
 * take). Either a valid index comes back or an error with a message. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int count = -1;
  if (count < 0 && lam_devices_list(NULL, 0, &count) != LAM_OK) abort();
  char *s = fz_string(data, size);
  int index = -1;
  lam_status st = lam_device_choose(s, &index);
  if (st == LAM_OK ? (index < 0 || index >= count) : !lam_last_error()[0]) abort();
  free(s);
  return 0;
}
