/* runtime/kernels.h: the table of embedded OpenCL sources generated at build
 * time by cmake/embed_kernels.cmake from every file under cl/. */
#ifndef LAMINA_RUNTIME_KERNELS_H
#define LAMINA_RUNTIME_KERNELS_H

#include <stddef.h>

typedef struct lam__kernel_source {
  const char *name;          /* file name, e.g. "elementwise.cl" */
  const unsigned char *data; /* bytes, followed by a NUL */
  size_t size;               /* byte count without the NUL */
} lam__kernel_source;

/* Terminated by an entry with name NULL. */
extern const lam__kernel_source lam__kernel_sources[];

#endif
