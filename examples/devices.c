/* devices.c: lists every OpenCL device lamina can see, with the capabilities
 * it uses, says which one a context would pick (LAMINA_DEVICE honoured) and
 * prints that context's tuning table. */
#include <lamina.h>
#include <stdio.h>
#include <string.h>

static const char *type_name(lam_device_type t) {
  return t == LAM_DEVICE_GPU ? "GPU" : t == LAM_DEVICE_CPU ? "CPU" : t == LAM_DEVICE_ACCELERATOR ? "accelerator" : "other";
}

int main(void) {
  lam_device_info devices[32];
  int count = 0;
  if (lam_devices_list(devices, 32, &count) != LAM_OK) {
    fprintf(stderr, "devices: %s\n", lam_last_error());
    return 1;
  }
  for (int i = 0; i < count && i < 32; i++) {
    const lam_device_info *d = &devices[i];
    printf("[%d] %s / %s (%s)\n", d->index, d->platform_name, d->name, type_name(d->type));
    printf("    %s, driver %s, %u compute units\n", d->opencl_c_version, d->driver_version,
           d->compute_units);
    printf("    global %.1f GiB, local %.0f KiB, max alloc %.1f GiB, max work-group %zu\n",
           d->global_mem_bytes / 1073741824.0, d->local_mem_bytes / 1024.0,
           d->max_alloc_bytes / 1073741824.0, d->max_work_group_size);
    printf("    fp16 %s, fp64 %s, subgroups %s\n", d->fp16 ? "yes" : "no", d->fp64 ? "yes" : "no",
           d->subgroups ? "yes" : "no");
  }
  int chosen = -1;
  if (lam_device_choose(NULL, &chosen) != LAM_OK) {
    fprintf(stderr, "devices: %s\n", lam_last_error());
    return 1;
  }
  printf("lamina picks [%d] %s\n", chosen, devices[chosen].name);
  /* The tuning table a context on that device uses (docs/devices.md). */
  lam_ctx *ctx = NULL;
  char table[2048];
  if (lam_ctx_create(NULL, &ctx) != LAM_OK || lam_ctx_tuning(ctx, table, sizeof table) != LAM_OK) {
    fprintf(stderr, "devices: %s\n", lam_last_error());
    lam_ctx_free(ctx);
    return 1;
  }
  printf("tuning table:\n");
  for (const char *line = table; *line;) {
    const char *end = strchr(line, '\n');
    printf("    %.*s\n", (int)(end - line), line);
    line = end + 1;
  }
  lam_ctx_free(ctx);
  return 0;
}
