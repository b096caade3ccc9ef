/* upsample.cl: nearest and (bi)linear upsampling of [planes, H, W] and its
 * backward rule, as direct kernels driven by per-axis tables.
 *
 * The host (src/ops/upsample.c) works out, per axis and with PyTorch's
 * arithmetic, each output's two source indices i0/i1 and weights l0/l1
 * (nearest: i1 = i0, l0 = 1, l1 = 0) and, per input index, the range of
 * outputs that read it [olo, ohi) (contiguous: i0 and i1 never decrease).
 * Forward is one work-item per output reading up to four inputs; backward
 * is one work-item per input GATHERING from its output ranges (no float
 * atomics in OpenCL 1.2; deterministic). Terms with weight exactly 0 are
 * skipped, so an infinity next to a sample does not turn it into NaN.
 * Tables: ti (int) holds, per axis (H, then W) at offsets offs.s0 / offs.s1:
 * i0[O], i1[O], olo[I], ohi[I]; tr (REAL) at offs.s2 / offs.s3: l0[O],
 * l1[O]. gs = (IH, IW, OH, OW).
 * Launch: dim 0 along W, dim 1 over (plane, row); no barriers. */

/* upsample_fwd: dim 1 indexes (plane, oh). */
kernel void upsample_fwd(global const REAL *x, int x_off, global REAL *y, int y_off,
                         global const int *ti, int ti_off, global const REAL *tr, int tr_off,
                         int rows, int8 gs, int8 offs) {
  const int ow = get_global_id(0), r = get_global_id(1);
  const int IH = gs.s0, IW = gs.s1, OH = gs.s2, OW = gs.s3;
  if (ow >= OW || r >= rows) return;
  const int oh = r % OH, plane = r / OH;
  global const int *th = ti + ti_off + offs.s0;
  global const int *tw = ti + ti_off + offs.s1;
  global const REAL *lh = tr + tr_off + offs.s2;
  global const REAL *lw = tr + tr_off + offs.s3;
  const int h0 = th[oh], h1 = th[OH + oh], w0 = tw[ow], w1 = tw[OW + ow];
  const ACC a0 = LOAD(lh, oh), a1 = LOAD(lh, OH + oh), b0 = LOAD(lw, ow), b1 = LOAD(lw, OW + ow);
  global const REAL *xp = x + x_off + plane * IH * IW;
  ACC row0 = b0 * LOAD(xp, h0 * IW + w0);
  if (b1 != (ACC)0) row0 += b1 * LOAD(xp, h0 * IW + w1);
  ACC v = a0 * row0;
  if (a1 != (ACC)0) {
    ACC row1 = b0 * LOAD(xp, h1 * IW + w0);
    if (b1 != (ACC)0) row1 += b1 * LOAD(xp, h1 * IW + w1);
    v += a1 * row1;
  }
  STORE(y + y_off, r * OW + ow, v);
}

/* upsample_bwd: dx[plane, ih, iw] = sum over oh in [olo_h, ohi_h), ow in
 * [olo_w, ohi_w) of g * wh(oh) * ww(ow), with wh(oh) = l0 where i0 == ih
 * plus l1 where i1 == ih. dim 1 indexes (plane, ih). */
kernel void upsample_bwd(global const REAL *g, int g_off, global REAL *dx, int dx_off,
                         global const int *ti, int ti_off, global const REAL *tr, int tr_off,
                         int rows, int8 gs, int8 offs) {
  const int iw = get_global_id(0), r = get_global_id(1);
  const int IH = gs.s0, IW = gs.s1, OH = gs.s2, OW = gs.s3;
  if (iw >= IW || r >= rows) return;
  const int ih = r % IH, plane = r / IH;
  global const int *th = ti + ti_off + offs.s0;
  global const int *tw = ti + ti_off + offs.s1;
  global const REAL *lh = tr + tr_off + offs.s2;
  global const REAL *lw = tr + tr_off + offs.s3;
  const int oh0 = th[2 * OH + ih], oh1 = th[2 * OH + IH + ih];
  const int ow0 = tw[2 * OW + iw], ow1 = tw[2 * OW + IW + iw];
  global const REAL *gp = g + g_off + plane * OH * OW;
  ACC acc = (ACC)0;
  for (int oh = oh0; oh < oh1; oh++) {
    const ACC wh = (th[oh] == ih ? LOAD(lh, oh) : (ACC)0) +
                   (th[OH + oh] == ih ? LOAD(lh, OH + oh) : (ACC)0);
    if (wh == (ACC)0) continue;
    ACC row = (ACC)0;
    for (int ow = ow0; ow < ow1; ow++) {
      const ACC ww = (tw[ow] == iw ? LOAD(lw, ow) : (ACC)0) +
                     (tw[OW + ow] == iw ? LOAD(lw, OW + ow) : (ACC)0);
      if (ww != (ACC)0) row += ww * LOAD(gp, oh * OW + ow);
    }
    acc += wh * row;
  }
  STORE(dx + dx_off, r * IW + iw, acc);
}
