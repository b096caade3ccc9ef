/* upsample.cl: nearest and (bi)linear upsampling of [planes, H, W] and its
 * backward rule, as direct kernels driven by per-axis tables.
 *
 * The host (src/ops/upsample.c) works out, per axis and with PyTorch's
 * arithmetic, each output's two source indices i0/i1 and weights l0/l1
 * (nearest: i1 = i0, l0 = 1, l1 = 0) and, per input index, the range of
 * outputs that read it [olo, ohi) (contiguous: i0 and i1 never decrease).
 * One work-item per row (see conv.cl for why): forward owns an output row,
 * each output reading up to four inputs; backward owns an input row and
 * accumulates into it from the output rows in its H range, in a fixed order
 * (no float atomics in OpenCL 1.2; deterministic). Terms with weight
 * exactly 0 are skipped, so an infinity next to a sample does not turn it
 * into NaN.
 * Tables: ti (int) holds, per axis (H, then W) at offsets offs.s0 / offs.s1:
 * i0[O], i1[O], olo[I], ohi[I]; tr (REAL) at offs.s2 / offs.s3: l0[O],
 * l1[O]. gs = (IH, IW, OH, OW).
 * No barriers, no local memory. */

/* upsample_fwd: output row r = (plane, oh). */
kernel void upsample_fwd(global const REAL *x, int x_off, global REAL *y, int y_off,
                         global const int *ti, int ti_off, global const REAL *tr, int tr_off,
                         int rows, int8 gs, int8 offs) {
  const int r = get_global_id(0);
  const int IH = gs.s0, IW = gs.s1, OH = gs.s2, OW = gs.s3;
  if (r >= rows) return;
  const int oh = r % OH, plane = r / OH;
  global const int *th = ti + ti_off + offs.s0;
  global const int *tw = ti + ti_off + offs.s1;
  global const REAL *lh = tr + tr_off + offs.s2;
  global const REAL *lw = tr + tr_off + offs.s3;
  const int h0 = th[oh], h1 = th[OH + oh];
  const ACC a0 = LOAD(lh, oh), a1 = LOAD(lh, OH + oh);
  global const REAL *x0 = x + x_off + (plane * IH + h0) * IW;
  global const REAL *x1 = x + x_off + (plane * IH + h1) * IW;
  global REAL *yr = y + y_off + r * OW;
  for (int ow = 0; ow < OW; ow++) {
    const int w0 = tw[ow], w1 = tw[OW + ow];
    const ACC b0 = LOAD(lw, ow), b1 = LOAD(lw, OW + ow);
    ACC row0 = b0 * LOAD(x0, w0);
    if (b1 != (ACC)0) row0 += b1 * LOAD(x0, w1);
    ACC v = a0 * row0;
    if (a1 != (ACC)0) {
      ACC row1 = b0 * LOAD(x1, w0);
      if (b1 != (ACC)0) row1 += b1 * LOAD(x1, w1);
      v += a1 * row1;
    }
    STORE(yr, ow, v);
  }
}

/* upsample_bwd: input row r = (plane, ih), zeroed, then every output row oh
 * in [olo_h, ohi_h) with weight wh(oh) = l0 where i0 == ih plus l1 where
 * i1 == ih adds wh * l0/l1(ow) * g at its two W taps, in a fixed order. */
kernel void upsample_bwd(global const REAL *g, int g_off, global REAL *dx, int dx_off,
                         global const int *ti, int ti_off, global const REAL *tr, int tr_off,
                         int rows, int8 gs, int8 offs) {
  const int r = get_global_id(0);
  const int IH = gs.s0, IW = gs.s1, OH = gs.s2, OW = gs.s3;
  if (r >= rows) return;
  const int ih = r % IH, plane = r / IH;
  global const int *th = ti + ti_off + offs.s0;
  global const int *tw = ti + ti_off + offs.s1;
  global const REAL *lh = tr + tr_off + offs.s2;
  global const REAL *lw = tr + tr_off + offs.s3;
  const int oh0 = th[2 * OH + ih], oh1 = th[2 * OH + IH + ih];
  global REAL *d = dx + dx_off + r * IW;
  for (int iw = 0; iw < IW; iw++) d[iw] = (REAL)0;
  for (int oh = oh0; oh < oh1; oh++) {
    const ACC wh = (th[oh] == ih ? LOAD(lh, oh) : (ACC)0) +
                   (th[OH + oh] == ih ? LOAD(lh, OH + oh) : (ACC)0);
    if (wh == (ACC)0) continue;
    global const REAL *gr = g + g_off + (plane * OH + oh) * OW;
    for (int ow = 0; ow < OW; ow++) {
      const ACC v = wh * LOAD(gr, ow);
      const ACC b0 = LOAD(lw, ow), b1 = LOAD(lw, OW + ow);
      d[tw[ow]] += (REAL)(v * b0);
      if (b1 != (ACC)0) d[tw[OW + ow]] += (REAL)(v * b1);
    }
  }
}
