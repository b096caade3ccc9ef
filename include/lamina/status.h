/* lamina/status.h: status codes and error messages.
 *
 * Every fallible function returns a lam_status (or NULL for functions that
 * return an object) and leaves a thread-local message naming the function and
 * the offending values, readable with lam_last_error(). Codes that mirror
 * OpenCL errors equal the OpenCL codes; CLBlast's own codes pass through
 * unchanged; lamina's own codes live from -3000 down. */
#ifndef LAMINA_STATUS_H
#define LAMINA_STATUS_H

#include "lamina/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, value, description) */
#define LAM_STATUS_LIST(X)                                                      \
  X(LAM_OK, 0, "success")                                                      \
  X(LAM_ERR_DEVICE_NOT_FOUND, -1, "OpenCL device not found")                   \
  X(LAM_ERR_DEVICE_NOT_AVAILABLE, -2, "OpenCL device not available")           \
  X(LAM_ERR_COMPILER_NOT_AVAILABLE, -3, "OpenCL compiler not available")       \
  X(LAM_ERR_MEM_OBJECT_ALLOCATION_FAILURE, -4, "OpenCL buffer allocation failed") \
  X(LAM_ERR_OUT_OF_RESOURCES, -5, "OpenCL device out of resources")            \
  X(LAM_ERR_OUT_OF_HOST_MEMORY, -6, "OpenCL host out of memory")               \
  X(LAM_ERR_BUILD, -11, "kernel build failed")                                 \
  X(LAM_ERR_INVALID_VALUE, -30, "OpenCL invalid value")                        \
  X(LAM_ERR_INVALID_BINARY, -42, "OpenCL invalid program binary")              \
  X(LAM_ERR_INVALID_KERNEL_NAME, -46, "OpenCL invalid kernel name")            \
  X(LAM_ERR_INVALID_KERNEL_ARGS, -52, "OpenCL invalid kernel arguments")       \
  X(LAM_ERR_INVALID_WORK_GROUP_SIZE, -54, "OpenCL invalid work-group size")    \
  X(LAM_ERR_INVALID_BUFFER_SIZE, -61, "OpenCL invalid buffer size")            \
  X(LAM_ERR_CLBLAST_NOT_IMPLEMENTED, -1024, "CLBlast: routine not implemented") \
  X(LAM_ERR_CLBLAST_INVALID_BATCH_COUNT, -2049, "CLBlast: invalid batch count") \
  X(LAM_ERR_CLBLAST_INVALID_OVERRIDE, -2048, "CLBlast: invalid override kernel") \
  X(LAM_ERR_CLBLAST_MISSING_OVERRIDE, -2047, "CLBlast: missing override parameter") \
  X(LAM_ERR_CLBLAST_INVALID_LOCAL_MEM, -2046, "CLBlast: invalid local memory usage") \
  X(LAM_ERR_CLBLAST_NO_HALF, -2045, "CLBlast: no half precision")              \
  X(LAM_ERR_CLBLAST_NO_DOUBLE, -2044, "CLBlast: no double precision")          \
  X(LAM_ERR_CLBLAST_DATABASE, -2041, "CLBlast: database error")                \
  X(LAM_ERR_CLBLAST_UNKNOWN, -2040, "CLBlast: unknown error")                  \
  X(LAM_ERR_CLBLAST_UNEXPECTED, -2039, "CLBlast: unexpected error")            \
  X(LAM_ERR_INVALID_ARGUMENT, -3001, "invalid argument")                       \
  X(LAM_ERR_NULL, -3002, "NULL argument")                                      \
  X(LAM_ERR_SHAPE, -3003, "invalid or mismatched shape")                       \
  X(LAM_ERR_DTYPE, -3004, "unsupported or mismatched dtype")                   \
  X(LAM_ERR_OUT_OF_MEMORY, -3005, "out of memory")                             \
  X(LAM_ERR_UNSUPPORTED, -3006, "not supported by this device")                \
  X(LAM_ERR_IO, -3007, "file input/output failed")                             \
  X(LAM_ERR_FORMAT, -3008, "malformed file or data")                           \
  X(LAM_ERR_NOT_FOUND, -3009, "not found")                                     \
  X(LAM_ERR_STATE, -3010, "invalid state for this call")                       \
  X(LAM_ERR_OPENCL, -3011, "other OpenCL error")                               \
  X(LAM_ERR_CLBLAST, -3012, "other CLBlast error")                            \
  X(LAM_ERR_PEER, -3013, "another process failed or timed out (lamina/dist.h)")

typedef enum lam_status {
#define LAM__STATUS_ENUM(name, value, text) name = value,
  LAM_STATUS_LIST(LAM__STATUS_ENUM)
#undef LAM__STATUS_ENUM
} lam_status;

/* Returns a static description of `status` ("unknown status" if not one). */
LAM_API const char *lam_status_string(lam_status status);

/* Returns the message of the last failure on this thread, e.g.
 * "lam_matmul: inner dims differ: a is [4,5], b is [6,3]", or "" if none. */
LAM_API const char *lam_last_error(void);

/* Returns the status of the last failure on this thread (LAM_OK if none). */
LAM_API lam_status lam_last_status(void);

/* Forgets the last failure on this thread. */
LAM_API void lam_error_clear(void);

/* Records a failure as lamina's own functions do, for code built on lamina
 * that reports through lam_last_error() (custom layers, lamina_dist): the
 * message should start with the public function's name. Returns status;
 * a NULL message is LAM_ERR_NULL and LAM_OK is LAM_ERR_INVALID_ARGUMENT
 * (with a message naming lam_error_set). */
LAM_API lam_status lam_error_set(lam_status status, const char *message);

#ifdef __cplusplus
}
#endif
#endif
