/* upsample.cl: separable upsampling of [planes, D, H, W] (nearest,
 * nearest-exact, linear / bilinear / trilinear, bicubic) and its backward
 * rule, as direct kernels driven by per-axis tables.
 *
 * The host (src/ops/upsample.c) works out, per axis and with PyTorch's
 * arithmetic, each output's T source indices idx[t][o] and weights w[t][o]
 * (T = 1 nearest, 2 linear, 4 cubic; unused axes have size 1 and weight 1 on
 * tap 0) and, per input index, the range of outputs that read it
 * [olo, ohi) (a superset where taps skip an input; every tap is checked).
 * One work-item per row (see conv.cl for why): forward owns an output row
 * (plane, od, oh), each output summing T^3 taps in PyTorch's order (the
 * outermost axis outermost: sum_d wd * (sum_h wh * (sum_w ww * x))); backward
 * owns an input row (plane, id, ih) and accumulates into it from the output
 * rows in its D and H ranges, in a fixed order (no float atomics in OpenCL
 * 1.2; deterministic). Tap 0 is always summed and later taps with weight
 * exactly 0 are skipped, so an infinity next to a sample does not turn it
 * into NaN and nearest copies keep -0.
 * Trade-off: one fused pass reads T^nsp inputs per output (16 for bicubic)
 * where separate per-axis passes would read T * nsp, but those need an
 * intermediate tensor per axis (more memory traffic than the tap reads,
 * which hit cache: neighbouring outputs share their taps), and nearest and
 * linear, the common modes, do 1-8 reads either way.
 * Tables: ti (int) holds, per axis (D, H, W) at offsets offs.s0/s1/s2:
 * idx[T * O], olo[I], ohi[I]; tr (REAL) at offs.s3/s4/s5: w[T * O].
 * gs = (ID, IH, IW, OD, OH, OW, T). No barriers, no local memory. */

/* upsample_fwd: output row r = (plane, od, oh). */
kernel void upsample_fwd(global const REAL *x, int x_off, global REAL *y, int y_off,
                         global const int *ti, int ti_off, global const REAL *tr, int tr_off,
                         int rows, int8 gs, int8 offs) {
  const int r = get_global_id(0);
  const int ID = gs.s0, IH = gs.s1, IW = gs.s2, OD = gs.s3, OH = gs.s4, OW = gs.s5, T = gs.s6;
  if (r >= rows) return;
  const int oh = r % OH, od = (r / OH) % OD, plane = r / OH / OD;
  global const int *td = ti + ti_off + offs.s0;
  global const int *th = ti + ti_off + offs.s1;
  global const int *tw = ti + ti_off + offs.s2;
  global const REAL *ld = tr + tr_off + offs.s3;
  global const REAL *lh = tr + tr_off + offs.s4;
  global const REAL *lw = tr + tr_off + offs.s5;
  global const REAL *xp = x + x_off + plane * ID * IH * IW;
  global REAL *yr = y + y_off + r * OW;
  for (int ow = 0; ow < OW; ow++) {
    ACC v = 0;
    for (int a = 0; a < T; a++) {
      const ACC wd = LOAD(ld, a * OD + od);
      if (a > 0 && wd == (ACC)0) continue;
      global const REAL *xd = xp + td[a * OD + od] * IH * IW;
      ACC vd = 0;
      for (int b = 0; b < T; b++) {
        const ACC wh = LOAD(lh, b * OH + oh);
        if (b > 0 && wh == (ACC)0) continue;
        global const REAL *xr = xd + th[b * OH + oh] * IW;
        ACC vh = LOAD(lw, ow) * LOAD(xr, tw[ow]);
        for (int c = 1; c < T; c++) {
          const ACC ww = LOAD(lw, c * OW + ow);
          if (ww != (ACC)0) vh += ww * LOAD(xr, tw[c * OW + ow]);
        }
        vd = b == 0 ? wh * vh : vd + wh * vh;
      }
      v = a == 0 ? wd * vd : v + wd * vd;
    }
    STORE(yr, ow, v);
  }
}

/* upsample_bwd: input row r = (plane, id, ih), zeroed, then every output row
 * (od, oh) in its ranges with weight wd(od) * wh(oh) (wd = the sum of the D
 * weights of the taps of od that read id, wh likewise) adds
 * wd * wh * ww(ow) * g at each W tap, in a fixed order. */
kernel void upsample_bwd(global const REAL *g, int g_off, global REAL *dx, int dx_off,
                         global const int *ti, int ti_off, global const REAL *tr, int tr_off,
                         int rows, int8 gs, int8 offs) {
  const int r = get_global_id(0);
  const int ID = gs.s0, IH = gs.s1, IW = gs.s2, OD = gs.s3, OH = gs.s4, OW = gs.s5, T = gs.s6;
  if (r >= rows) return;
  const int ih = r % IH, id = (r / IH) % ID, plane = r / IH / ID;
  global const int *td = ti + ti_off + offs.s0;
  global const int *th = ti + ti_off + offs.s1;
  global const int *tw = ti + ti_off + offs.s2;
  global const REAL *ld = tr + tr_off + offs.s3;
  global const REAL *lh = tr + tr_off + offs.s4;
  global const REAL *lw = tr + tr_off + offs.s5;
  const int od0 = td[T * OD + id], od1 = td[T * OD + ID + id];
  const int oh0 = th[T * OH + ih], oh1 = th[T * OH + IH + ih];
  global REAL *d = dx + dx_off + r * IW;
  for (int iw = 0; iw < IW; iw++) d[iw] = (REAL)0;
  for (int od = od0; od < od1; od++) {
    ACC wd = 0;
    for (int a = 0; a < T; a++)
      if (td[a * OD + od] == id) wd += LOAD(ld, a * OD + od);
    if (wd == (ACC)0) continue;
    for (int oh = oh0; oh < oh1; oh++) {
      ACC wh = 0;
      for (int b = 0; b < T; b++)
        if (th[b * OH + oh] == ih) wh += LOAD(lh, b * OH + oh);
      if (wh == (ACC)0) continue;
      const ACC wdh = wd * wh;
      global const REAL *gr = g + g_off + ((plane * OD + od) * OH + oh) * OW;
      for (int ow = 0; ow < OW; ow++) {
        const ACC v = wdh * LOAD(gr, ow);
        for (int c = 0; c < T; c++) {
          const ACC ww = LOAD(lw, c * OW + ow);
          if (c == 0 || ww != (ACC)0) d[tw[c * OW + ow]] += (REAL)(v * ww);
        }
      }
    }
  }
}
