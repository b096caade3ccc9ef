/* runtime/device.c: enumerating OpenCL devices across all platforms and
 * choosing one from a selector ("2", "cpu", "gpu", or a name substring).
 * Capabilities are read from the device, never inferred from vendor names. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/platform_internal.h"
#include "runtime/runtime_internal.h"

#define LAM__MAX_PLATFORMS 16
#define LAM__MAX_DEVICES 64

/* Fills `info` from the device; extensions decide fp16/fp64/subgroups. */
static void lam__read_device(cl_platform_id platform, cl_device_id dev, int index,
                             lam_device_info *info) {
  memset(info, 0, sizeof *info);
  info->index = index;
  clGetPlatformInfo(platform, CL_PLATFORM_NAME, sizeof info->platform_name - 1,
                    info->platform_name, NULL);
  clGetDeviceInfo(dev, CL_DEVICE_NAME, sizeof info->name - 1, info->name, NULL);
  clGetDeviceInfo(dev, CL_DEVICE_VENDOR, sizeof info->vendor - 1, info->vendor, NULL);
  clGetDeviceInfo(dev, CL_DRIVER_VERSION, sizeof info->driver_version - 1, info->driver_version,
                  NULL);
  clGetDeviceInfo(dev, CL_DEVICE_OPENCL_C_VERSION, sizeof info->opencl_c_version - 1,
                  info->opencl_c_version, NULL);
  cl_device_type type = 0;
  clGetDeviceInfo(dev, CL_DEVICE_TYPE, sizeof type, &type, NULL);
  info->type = (type & CL_DEVICE_TYPE_GPU)           ? LAM_DEVICE_GPU
               : (type & CL_DEVICE_TYPE_CPU)         ? LAM_DEVICE_CPU
               : (type & CL_DEVICE_TYPE_ACCELERATOR) ? LAM_DEVICE_ACCELERATOR
                                                     : LAM_DEVICE_OTHER;
  cl_uint cu = 0;
  clGetDeviceInfo(dev, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL);
  info->compute_units = cu;
  cl_ulong v = 0;
  clGetDeviceInfo(dev, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof v, &v, NULL);
  info->global_mem_bytes = v;
  clGetDeviceInfo(dev, CL_DEVICE_LOCAL_MEM_SIZE, sizeof v, &v, NULL);
  info->local_mem_bytes = v;
  clGetDeviceInfo(dev, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof v, &v, NULL);
  info->max_alloc_bytes = v;
  size_t wg = 0;
  clGetDeviceInfo(dev, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof wg, &wg, NULL);
  info->max_work_group_size = wg;
  size_t ext_len = 0;
  clGetDeviceInfo(dev, CL_DEVICE_EXTENSIONS, 0, NULL, &ext_len);
  char *ext = calloc(ext_len + 1, 1);
  if (ext) {
    clGetDeviceInfo(dev, CL_DEVICE_EXTENSIONS, ext_len, ext, NULL);
    info->fp16 = strstr(ext, "cl_khr_fp16") != NULL;
    info->fp64 = strstr(ext, "cl_khr_fp64") != NULL;
    info->subgroups = strstr(ext, "cl_khr_subgroups") || strstr(ext, "cl_intel_subgroups");
    free(ext);
  }
}

/* The one piece of process-wide state in lamina: a lock that serialises
 * device listing and context creation/release. Drivers need it: with PoCL
 * 3.1, two threads making a process's first OpenCL calls at once crash inside
 * clGetDeviceInfo or see no device (plain OpenCL code does the same). The
 * lock is held only around those driver calls, never while kernels run. */
static lam__mutex lam__cl_serial = LAM__MUTEX_INIT;
void lam__cl_serial_begin(void) { lam__mutex_lock(&lam__cl_serial); }
void lam__cl_serial_end(void) { lam__mutex_unlock(&lam__cl_serial); }

/* Visits every device of every platform in a stable order. Returns the
 * count, calling visit (when non-NULL) with each. */
typedef void (*lam__device_visit)(cl_platform_id, cl_device_id, int index, void *user);

static int lam__for_each_device_locked(lam__device_visit visit, void *user) {
  cl_platform_id platforms[LAM__MAX_PLATFORMS];
  cl_uint np = 0;
  if (clGetPlatformIDs(LAM__MAX_PLATFORMS, platforms, &np) != CL_SUCCESS) return 0;
  int index = 0;
  for (cl_uint p = 0; p < np && p < LAM__MAX_PLATFORMS; p++) {
    cl_device_id devs[LAM__MAX_DEVICES];
    cl_uint nd = 0;
    if (clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, LAM__MAX_DEVICES, devs, &nd) !=
        CL_SUCCESS)
      continue;
    for (cl_uint d = 0; d < nd && d < LAM__MAX_DEVICES; d++, index++)
      if (visit) visit(platforms[p], devs[d], index, user);
  }
  return index;
}

static int lam__for_each_device(lam__device_visit visit, void *user) {
  lam__cl_serial_begin();
  int n = lam__for_each_device_locked(visit, user);
  lam__cl_serial_end();
  return n;
}

typedef struct {
  lam_device_info *out;
  int capacity;
} lam__list_state;

static void lam__list_visit(cl_platform_id p, cl_device_id d, int index, void *user) {
  lam__list_state *s = user;
  if (s->out && index < s->capacity) lam__read_device(p, d, index, &s->out[index]);
}

lam_status lam_devices_list(lam_device_info *out, int capacity, int *count) {
  if (!count) return lam__fail(LAM_ERR_NULL, "lam_devices_list: count is NULL");
  if (out && capacity < 0)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "lam_devices_list: capacity %d is negative",
                     capacity);
  lam__list_state s = {out, capacity};
  *count = lam__for_each_device(lam__list_visit, &s);
  if (*count == 0)
    return lam__fail(LAM_ERR_DEVICE_NOT_FOUND,
                     "lam_devices_list: no OpenCL device found (is an ICD such as "
                     "pocl-opencl-icd installed?)");
  return LAM_OK;
}

typedef struct {
  int wanted;
  cl_platform_id platform;
  cl_device_id device;
} lam__find_state;

static void lam__find_visit(cl_platform_id p, cl_device_id d, int index, void *user) {
  lam__find_state *s = user;
  if (index == s->wanted) {
    s->platform = p;
    s->device = d;
  }
}

/* Looks up the platform/device pair of a device index (internal to runtime). */
lam_status lam__device_ids(int index, cl_platform_id *platform, cl_device_id *device,
                           lam_device_info *info) {
  lam__find_state s = {index, NULL, NULL};
  lam__for_each_device(lam__find_visit, &s);
  if (!s.device) return LAM_ERR_DEVICE_NOT_FOUND;
  *platform = s.platform;
  *device = s.device;
  lam__read_device(s.platform, s.device, index, info);
  return LAM_OK;
}

typedef struct {
  cl_device_id device;
  int index;
} lam__index_state;

static void lam__index_visit(cl_platform_id p, cl_device_id d, int index, void *user) {
  lam__index_state *s = user;
  if (d == s->device && s->index < 0) s->index = index;
}

/* Describes an application's device (lam_ctx_create_from_cl); its index is
 * its place in lam_devices_list order, -1 when not listed there. */
void lam__device_describe(cl_platform_id platform, cl_device_id device, lam_device_info *info) {
  lam__index_state s = {device, -1};
  lam__for_each_device(lam__index_visit, &s);
  lam__read_device(platform, device, s.index, info);
}

static int lam__contains_nocase(const char *hay, const char *needle) {
  size_t n = strlen(needle);
  for (const char *h = hay; *h; h++) {
    size_t i = 0;
    while (i < n && h[i] && tolower((unsigned char)h[i]) == tolower((unsigned char)needle[i])) i++;
    if (i == n) return 1;
  }
  return n == 0;
}

lam_status lam_device_choose(const char *selector, int *index) {
  if (!index) return lam__fail(LAM_ERR_NULL, "lam_device_choose: index is NULL");
  if (!selector || !*selector) selector = getenv("LAMINA_DEVICE");
  int count = 0;
  lam_status st = lam_devices_list(NULL, 0, &count);
  if (st != LAM_OK) return st;
  lam_device_info *all = calloc((size_t)count, sizeof *all);
  if (!all) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "lam_device_choose: out of host memory");
  lam_devices_list(all, count, &count);
  int chosen = -1;
  if (!selector || !*selector) {
    for (int i = 0; i < count && chosen < 0; i++)
      if (all[i].type == LAM_DEVICE_GPU) chosen = i;
    for (int i = 0; i < count && chosen < 0; i++)
      if (all[i].type == LAM_DEVICE_CPU) chosen = i;
    if (chosen < 0) chosen = 0;
  } else {
    char *end = NULL;
    long v = strtol(selector, &end, 10);
    if (end != selector && *end == '\0') {
      if (v >= 0 && v < count) chosen = (int)v;
    } else if (lam__contains_nocase("cpu", selector) && strlen(selector) == 3) {
      for (int i = 0; i < count && chosen < 0; i++)
        if (all[i].type == LAM_DEVICE_CPU) chosen = i;
    } else if (lam__contains_nocase("gpu", selector) && strlen(selector) == 3) {
      for (int i = 0; i < count && chosen < 0; i++)
        if (all[i].type == LAM_DEVICE_GPU) chosen = i;
    } else {
      for (int i = 0; i < count && chosen < 0; i++)
        if (lam__contains_nocase(all[i].name, selector) ||
            lam__contains_nocase(all[i].platform_name, selector))
          chosen = i;
    }
  }
  free(all);
  if (chosen < 0)
    return lam__fail(LAM_ERR_DEVICE_NOT_FOUND,
                     "lam_device_choose: no device matches \"%s\" (%d device%s found; "
                     "use an index, \"cpu\", \"gpu\" or part of a name)",
                     selector, count, count == 1 ? "" : "s");
  *index = chosen;
  return LAM_OK;
}
