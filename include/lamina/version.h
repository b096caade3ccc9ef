/* lamina/version.h: the library's version.
 *
 * LAMINA_VERSION_* are the version of the headers a program was compiled
 * with; lam_version() is the version of the library it runs with (they
 * differ when a program runs against another build of liblamina). The
 * numbers follow semantic versioning; while MAJOR is 0 any minor release
 * may break the API. CMake reads its project version from this file. */
#ifndef LAMINA_VERSION_H
#define LAMINA_VERSION_H

#include "lamina/export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LAMINA_VERSION_MAJOR 0
#define LAMINA_VERSION_MINOR 2
#define LAMINA_VERSION_PATCH 0
/* One number that compares in order: 10000 * major + 100 * minor + patch. */
#define LAMINA_VERSION (LAMINA_VERSION_MAJOR * 10000 + LAMINA_VERSION_MINOR * 100 + LAMINA_VERSION_PATCH)

/* Returns the running library's version as "MAJOR.MINOR.PATCH" (static
 * storage) and, for each pointer that is not NULL, its parts. */
LAM_API const char *lam_version(int *major, int *minor, int *patch);

#ifdef __cplusplus
}
#endif
#endif
