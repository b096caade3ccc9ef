/* runtime/error.c: status strings and the thread-local last-error message.
 * The message is per thread so that concurrent contexts on different threads
 * never overwrite each other's diagnostics. */
#include <stdio.h>
#include <string.h>

#include "runtime/runtime_internal.h"

static _Thread_local char lam__error_message[8192];
static _Thread_local lam_status lam__error_status = LAM_OK;

const char *lam_status_string(lam_status status) {
  switch (status) {
#define LAM__STATUS_CASE(name, value, text) \
  case name:                                \
    return text;
    LAM_STATUS_LIST(LAM__STATUS_CASE)
#undef LAM__STATUS_CASE
  }
  return "unknown status";
}

const char *lam_last_error(void) { return lam__error_message; }

lam_status lam_last_status(void) { return lam__error_status; }

void lam_error_clear(void) {
  lam__error_message[0] = '\0';
  lam__error_status = LAM_OK;
}

lam_status lam_error_set(lam_status status, const char *message) {
  if (!message) return lam__fail(LAM_ERR_NULL, "lam_error_set: message is NULL");
  if (status == LAM_OK) return lam__fail(LAM_ERR_INVALID_ARGUMENT, "lam_error_set: status LAM_OK is not a failure");
  return lam__fail(status, "%s", message);
}

lam_status lam__fail(lam_status status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(lam__error_message, sizeof lam__error_message, fmt, ap);
  va_end(ap);
  lam__error_status = status;
  return status;
}

void *lam__null_input(const char *fn, const char *what) {
  if (lam__error_status == LAM_OK)
    lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, what);
  return NULL;
}

const char *lam__cl_error_name(cl_int err) {
  switch (err) {
#define C(x) \
  case x:    \
    return #x;
    C(CL_SUCCESS) C(CL_DEVICE_NOT_FOUND) C(CL_DEVICE_NOT_AVAILABLE)
    C(CL_COMPILER_NOT_AVAILABLE) C(CL_MEM_OBJECT_ALLOCATION_FAILURE)
    C(CL_OUT_OF_RESOURCES) C(CL_OUT_OF_HOST_MEMORY) C(CL_BUILD_PROGRAM_FAILURE)
    C(CL_INVALID_VALUE) C(CL_INVALID_DEVICE) C(CL_INVALID_CONTEXT)
    C(CL_INVALID_COMMAND_QUEUE) C(CL_INVALID_MEM_OBJECT) C(CL_INVALID_BINARY)
    C(CL_INVALID_BUILD_OPTIONS) C(CL_INVALID_PROGRAM) C(CL_INVALID_KERNEL_NAME)
    C(CL_INVALID_KERNEL) C(CL_INVALID_ARG_INDEX) C(CL_INVALID_ARG_VALUE)
    C(CL_INVALID_ARG_SIZE) C(CL_INVALID_KERNEL_ARGS) C(CL_INVALID_WORK_DIMENSION)
    C(CL_INVALID_WORK_GROUP_SIZE) C(CL_INVALID_WORK_ITEM_SIZE)
    C(CL_INVALID_GLOBAL_OFFSET) C(CL_INVALID_EVENT_WAIT_LIST)
    C(CL_INVALID_BUFFER_SIZE) C(CL_INVALID_GLOBAL_WORK_SIZE)
    C(CL_INVALID_PLATFORM) C(CL_MISALIGNED_SUB_BUFFER_OFFSET)
#undef C
  }
  return "unknown OpenCL error";
}

lam_status lam__cl_fail(cl_int err, const char *fn, const char *what) {
  lam_status st;
  switch (err) {
    case CL_MEM_OBJECT_ALLOCATION_FAILURE:
    case CL_OUT_OF_RESOURCES:
    case CL_OUT_OF_HOST_MEMORY:
      st = LAM_ERR_OUT_OF_MEMORY;
      break;
    default: {
      /* Pass the code through when the enum mirrors it. */
      const char *s = lam_status_string((lam_status)err);
      st = strcmp(s, "unknown status") == 0 ? LAM_ERR_OPENCL : (lam_status)err;
    }
  }
  return lam__fail(st, "%s: %s failed: %s (%d)", fn, what, lam__cl_error_name(err), (int)err);
}

const char *lam__shape_str(int ndim, const int64_t *shape, char *buf) {
  size_t n = 0;
  buf[n++] = '[';
  for (int i = 0; i < ndim && n < LAM__SHAPE_STR - 24; i++)
    n += (size_t)snprintf(buf + n, LAM__SHAPE_STR - n, i ? ",%lld" : "%lld", (long long)shape[i]);
  buf[n++] = ']';
  buf[n] = '\0';
  return buf;
}
