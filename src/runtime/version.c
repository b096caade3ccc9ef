/* version.c: lam_version, the running library's version (lamina/version.h). */
#include "lamina/version.h"

#define LAM_STR2(x) #x
#define LAM_STR(x) LAM_STR2(x)

const char *lam_version(int *major, int *minor, int *patch) {
  if (major) *major = LAMINA_VERSION_MAJOR;
  if (minor) *minor = LAMINA_VERSION_MINOR;
  if (patch) *patch = LAMINA_VERSION_PATCH;
  return LAM_STR(LAMINA_VERSION_MAJOR) "." LAM_STR(LAMINA_VERSION_MINOR) "." LAM_STR(
      LAMINA_VERSION_PATCH);
}
