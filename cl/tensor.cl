/* tensor.cl: fill, arange, dtype casts and contiguous copies.
 * One work-item per element; no local memory or barriers (streaming). */

kernel void fill(global REAL *y, int y_off, int n, ACC value) {
  int i = get_global_id(0);
  if (i >= n) return;
  STORE(y + y_off, i, value);
}

kernel void arange(global REAL *y, int y_off, int n, ACC start, ACC step) {
  int i = get_global_id(0);
  if (i >= n) return;
  STORE(y + y_off, i, start + step * (ACC)i);
}

/* SRC is the source storage type, given as -DSRC=... at build time. */
#ifdef SRC
kernel void cast(global const SRC *x, int x_off, global REAL *y, int y_off, int n) {
  int i = get_global_id(0);
  if (i >= n) return;
#ifdef LAM_SRC_F16_STORAGE
  STORE(y + y_off, i, vload_half(x_off + i, x)); /* f16 storage source */
#elif defined(LAM_F16_STORAGE) && defined(LAM_SRC_F64)
  vstore_half_rte(x[x_off + i], i, y + y_off); /* from double directly: no double rounding */
#elif defined(LAM_F16_STORAGE)
  vstore_half_rte((float)x[x_off + i], i, y + y_off); /* round to nearest even */
#else
  y[y_off + i] = (REAL)x[x_off + i];
#endif
}
#endif

kernel void copy(global const REAL *x, int x_off, global REAL *y, int y_off, int n) {
  int i = get_global_id(0);
  if (i >= n) return;
  MOVE(y + y_off, i, x + x_off, i);
}
