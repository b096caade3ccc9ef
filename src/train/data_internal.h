/* train/data_internal.h: what fit.c shares with data.c (never installed). */
#ifndef LAMINA_DATA_INTERNAL_H
#define LAMINA_DATA_INTERNAL_H

#include "lamina/rng.h"

/* p = a permutation of 0..n-1 from key (Fisher-Yates on Philox words). */
void lam__philox_permutation(lam_rng_key key, int64_t n, int64_t *p);

#endif
