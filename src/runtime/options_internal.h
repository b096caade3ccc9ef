/* runtime/options_internal.h: resolving options fields under the options
 * rule (lamina/options.h): zero means the default, LAM_ZERO a real zero. */
#ifndef LAMINA_OPTIONS_INTERNAL_H
#define LAMINA_OPTIONS_INTERNAL_H

#include <math.h>
#include <stdint.h>

/* v, or def when v is a plain (positive) zero; LAM_ZERO gives 0. */
static inline double lam__opt_f64(double v, double def) {
  if (v == 0.0) return signbit(v) ? 0.0 : def;
  return v;
}
/* v, or def when v is 0 (for integer fields whose zero is never meaningful). */
static inline int64_t lam__opt_i64(int64_t v, int64_t def) { return v == 0 ? def : v; }

#endif
