/* autodiff.cl: gradient plumbing for the tape.
 * accumulate: y += x in place (same shape), one work-item per element.
 * sum_to_shape: reduces a broadcast gradient back to an operand's shape; one
 * work-item per output element loops over the broadcast positions. This
 * avoids a general reduction dependency and needs no barriers (cheap on
 * PoCL); on GPUs it under-uses the device when the output is tiny (a bias of
 * a few elements), which is acceptable for gradient-sized tensors. */

kernel void accumulate(global REAL *y, int y_off, global const REAL *x, int x_off, int n) {
  int i = get_global_id(0);
  if (i >= n) return;
  STORE(y + y_off, i, LOAD(y + y_off, i) + LOAD(x + x_off, i));
}

/* g has shape gshape (ndim dims); out has the operand's shape right-aligned
 * to ndim dims in oshape (1 where broadcast). gstride: g's strides. */
kernel void sum_to_shape(global const REAL *g, int g_off, global REAL *y, int y_off, int n_out,
                         int ndim, int8 gshape, int8 oshape, int8 gstride) {
  int o = get_global_id(0);
  if (o >= n_out) return;
  int gs[8] = {gshape.s0, gshape.s1, gshape.s2, gshape.s3, gshape.s4, gshape.s5, gshape.s6, gshape.s7};
  int os[8] = {oshape.s0, oshape.s1, oshape.s2, oshape.s3, oshape.s4, oshape.s5, oshape.s6, oshape.s7};
  int st[8] = {gstride.s0, gstride.s1, gstride.s2, gstride.s3, gstride.s4, gstride.s5, gstride.s6, gstride.s7};
  /* base offset in g of this output element, and the count of reduced positions */
  int rem = o, base = 0, count = 1;
  for (int d = ndim - 1; d >= 0; d--) {
    int idx = rem % os[d];
    rem /= os[d];
    base += idx * st[d];
    if (os[d] == 1 && gs[d] != 1) count *= gs[d];
  }
  ACC acc = 0;
  for (int r = 0; r < count; r++) {
    int q = r, off = base;
    for (int d = ndim - 1; d >= 0; d--) {
      if (os[d] == 1 && gs[d] != 1) {
        off += (q % gs[d]) * st[d];
        q /= gs[d];
      }
    }
    acc += LOAD(g + g_off, off);
  }
  STORE(y + y_off, o, acc);
}
