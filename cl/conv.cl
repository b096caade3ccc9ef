/* conv.cl: the data-movement kernels around lamina's GEMM-based convolution
 * (src/ops/conv.c) and the direct kernels for convolutions whose groups are
 * too thin for a GEMM (depthwise and similar).
 *
 * Every geometry is 3-D (1-D and 2-D convolutions have leading spatial dims
 * of size 1). A chunk of nb images is lowered to a column matrix laid out
 * [C * KD*KH*KW, nb * L] (L = OD*OH*OW output positions): rows grouped by
 * channel, so group g's rows are one contiguous [Kg, nb*L] block and the
 * product W[g] @ cols[g] covers the whole chunk at once (wide GEMMs even
 * when L is small, as in the last stages of a CNN). The GEMM's result is
 * [O, nb, L]; chan_swap moves it to [nb, O, L] and adds the bias in the same
 * pass.
 *
 * Launch shape: 2-D, dim 0 runs along the innermost spatial dim (ow / iw)
 * and dim 1 over "rows" (everything else). Work-groups are (w, 1): PoCL
 * vectorises over dim 0, so the row decomposition (divisions) is uniform
 * within a group and the inner index is a plain lane offset; stores are
 * contiguous. No barriers, no local memory. Geometry arrives as int8
 * vectors:
 *   gin  = (C, ID, IH, IW, nb, -, -, -)   input channels and sizes, images
 *   gout = (OD, OH, OW, -, ...)           output sizes
 *   gk   = (KD, KH, KW, SD, SH, SW, -, -) kernel sizes and strides
 *   gdp  = (DD, DH, DW, PD, PH, PW, -, -) dilations and padding before */

/* im2col: cols[((c*KV + kk)*nb + n)*L + l] = x[n, c, od*SD - PD + kd*DD, ...]
 * or 0 where the tap falls into the padding. One work-item per element;
 * dim 1 indexes (c, kd, kh, kw, n, od, oh). */
kernel void im2col(global const REAL *x, int x_off, global REAL *cols, int cols_off, int rows,
                   int8 gin, int8 gout, int8 gk, int8 gdp) {
  const int ow = get_global_id(0), r = get_global_id(1);
  const int OW = gout.s2;
  if (ow >= OW || r >= rows) return;
  const int C = gin.s0, ID = gin.s1, IH = gin.s2, IW = gin.s3, nb = gin.s4;
  const int OD = gout.s0, OH = gout.s1;
  int t = r;
  const int oh = t % OH; t /= OH;
  const int od = t % OD; t /= OD;
  const int n = t % nb; t /= nb;
  const int kw = t % gk.s2; t /= gk.s2;
  const int kh = t % gk.s1; t /= gk.s1;
  const int kd = t % gk.s0;
  const int c = t / gk.s0;
  const int id = od * gk.s3 - gdp.s3 + kd * gdp.s0;
  const int ih = oh * gk.s4 - gdp.s4 + kh * gdp.s1;
  const int iw = ow * gk.s5 - gdp.s5 + kw * gdp.s2;
  REAL v = (REAL)0;
  if (id >= 0 && id < ID && ih >= 0 && ih < IH && iw >= 0 && iw < IW)
    v = x[x_off + (((n * C + c) * ID + id) * IH + ih) * IW + iw];
  cols[cols_off + r * OW + ow] = v;
}

/* col2im: the adjoint of im2col, gathered (no float atomics in OpenCL 1.2,
 * and a fixed summation order keeps results deterministic): every input
 * element sums the column entries that read it. Along a dim, tap k reads
 * input i from output o = (i + P - k*D) / S when that divides evenly and
 * 0 <= o < O; the loops stop once i + P - k*D goes negative (it only falls
 * with k). With has_bias, bias[c] is added (transposed convolution's
 * forward). dim 1 indexes (n, c, id, ih). */
kernel void col2im(global const REAL *cols, int cols_off, global REAL *dx, int dx_off,
                   global const REAL *bias, int bias_off, int has_bias, int rows, int8 gin,
                   int8 gout, int8 gk, int8 gdp) {
  const int iw = get_global_id(0), r = get_global_id(1);
  const int IW = gin.s3;
  if (iw >= IW || r >= rows) return;
  const int C = gin.s0, ID = gin.s1, IH = gin.s2, nb = gin.s4;
  const int OD = gout.s0, OH = gout.s1, OW = gout.s2;
  const int KD = gk.s0, KH = gk.s1, KW = gk.s2, SD = gk.s3, SH = gk.s4, SW = gk.s5;
  const int DD = gdp.s0, DH = gdp.s1, DW = gdp.s2;
  int t = r;
  const int ih = t % IH; t /= IH;
  const int id = t % ID; t /= ID;
  const int c = t % C;
  const int n = t / C;
  const int L = OD * OH * OW;
  ACC acc = has_bias ? LOAD(bias + bias_off, c) : (ACC)0;
  for (int kd = 0; kd < KD; kd++) {
    const int td = id + gdp.s3 - kd * DD;
    if (td < 0) break;
    if (td % SD) continue;
    const int od = td / SD;
    if (od >= OD) continue;
    for (int kh = 0; kh < KH; kh++) {
      const int th = ih + gdp.s4 - kh * DH;
      if (th < 0) break;
      if (th % SH) continue;
      const int oh = th / SH;
      if (oh >= OH) continue;
      const int base = (((c * KD + kd) * KH + kh) * KW) * nb + n;
      for (int kw = 0; kw < KW; kw++) {
        const int tw = iw + gdp.s5 - kw * DW;
        if (tw < 0) break;
        if (tw % SW) continue;
        const int ow = tw / SW;
        if (ow >= OW) continue;
        acc += LOAD(cols + cols_off, (base + kw * nb) * L + (od * OH + oh) * OW + ow);
      }
    }
  }
  STORE(dx + dx_off, ((n * C + c) * ID + id) * IH * IW + ih * IW + iw, acc);
}

/* chan_swap: dst[q, p, l] = src[p, q, l] (+ bias[p] when has_bias), src
 * [P, Q, L] and dst [Q, P, L]. Moves GEMM results [O, nb, L] into the
 * output's [nb, O, L] (with the bias), and output gradients the other way.
 * With Q == 1 the layouts coincide and src may equal dst (in-place bias):
 * each work-item reads and writes only its own element. dim 1 indexes the
 * destination rows (q, p). */
kernel void chan_swap(global const REAL *src, int src_off, global REAL *dst, int dst_off,
                      global const REAL *bias, int bias_off, int has_bias, int P, int Q, int L) {
  const int l = get_global_id(0), r = get_global_id(1);
  if (l >= L || r >= P * Q) return;
  const int p = r % P, q = r / P;
  ACC v = LOAD(src + src_off, (p * Q + q) * L + l);
  if (has_bias) v += LOAD(bias + bias_off, p);
  STORE(dst + dst_off, r * L + l, v);
}

/* ---- direct kernels (thin groups: depthwise and friends) -------------------
 * Used when a group has few input and output channels (Cg * Og small), where
 * a GEMM per group would be a thin matrix-vector product and im2col would
 * multiply the memory traffic by the kernel volume. */

/* direct_fwd: y[n, o, od, oh, ow] = bias[o] + sum over the Cg channels of o's
 * group and the kernel taps. One work-item per output; dim 1 indexes
 * (n, o, od, oh). gw = (O, Cg, Og, has_bias, -, ...). */
kernel void direct_fwd(global const REAL *x, int x_off, global const REAL *w, int w_off,
                       global const REAL *bias, int bias_off, global REAL *y, int y_off, int rows,
                       int8 gin, int8 gout, int8 gk, int8 gdp, int8 gw) {
  const int ow = get_global_id(0), r = get_global_id(1);
  const int OW = gout.s2;
  if (ow >= OW || r >= rows) return;
  const int C = gin.s0, ID = gin.s1, IH = gin.s2, IW = gin.s3;
  const int OD = gout.s0, OH = gout.s1;
  const int KD = gk.s0, KH = gk.s1, KW = gk.s2;
  const int O = gw.s0, Cg = gw.s1, Og = gw.s2;
  int t = r;
  const int oh = t % OH; t /= OH;
  const int od = t % OD; t /= OD;
  const int o = t % O;
  const int n = t / O;
  const int c0 = (o / Og) * Cg;
  const int d0 = od * gk.s3 - gdp.s3, h0 = oh * gk.s4 - gdp.s4, w0 = ow * gk.s5 - gdp.s5;
  ACC acc = gw.s3 ? LOAD(bias + bias_off, o) : (ACC)0;
  for (int cg = 0; cg < Cg; cg++) {
    const int xb = x_off + (n * C + c0 + cg) * ID * IH * IW;
    const int wb = w_off + ((o * Cg + cg) * KD) * KH * KW;
    for (int kd = 0; kd < KD; kd++) {
      const int id = d0 + kd * gdp.s0;
      if (id < 0 || id >= ID) continue;
      for (int kh = 0; kh < KH; kh++) {
        const int ih = h0 + kh * gdp.s1;
        if (ih < 0 || ih >= IH) continue;
        for (int kw = 0; kw < KW; kw++) {
          const int iw = w0 + kw * gdp.s2;
          if (iw < 0 || iw >= IW) continue;
          acc += LOAD(x, xb + (id * IH + ih) * IW + iw) * LOAD(w, wb + (kd * KH + kh) * KW + kw);
        }
      }
    }
  }
  STORE(y + y_off, r * OW + ow, acc);
}

/* direct_bwd_data: dx[n, c, id, ih, iw] = sum over the Og outputs of c's
 * group and the taps that read (id, ih, iw) of dy * w (the col2im tap rule),
 * plus bias[c] when gw.s3 is set. dim 1 indexes (n, c, id, ih). */
kernel void direct_bwd_data(global const REAL *dy, int dy_off, global const REAL *w, int w_off,
                            global const REAL *bias, int bias_off, global REAL *dx, int dx_off,
                            int rows, int8 gin, int8 gout, int8 gk, int8 gdp, int8 gw) {
  const int iw = get_global_id(0), r = get_global_id(1);
  const int IW = gin.s3;
  if (iw >= IW || r >= rows) return;
  const int C = gin.s0, ID = gin.s1, IH = gin.s2;
  const int OD = gout.s0, OH = gout.s1, OW = gout.s2;
  const int KD = gk.s0, KH = gk.s1, KW = gk.s2, SD = gk.s3, SH = gk.s4, SW = gk.s5;
  const int DD = gdp.s0, DH = gdp.s1, DW = gdp.s2;
  const int O = gw.s0, Cg = gw.s1, Og = gw.s2;
  int t = r;
  const int ih = t % IH; t /= IH;
  const int id = t % ID; t /= ID;
  const int c = t % C;
  const int n = t / C;
  const int g = c / Cg, cg = c % Cg;
  ACC acc = gw.s3 ? LOAD(bias + bias_off, c) : (ACC)0;
  for (int og = 0; og < Og; og++) {
    const int o = g * Og + og;
    const int yb = dy_off + (n * O + o) * OD * OH * OW;
    const int wb = w_off + ((o * Cg + cg) * KD) * KH * KW;
    for (int kd = 0; kd < KD; kd++) {
      const int td = id + gdp.s3 - kd * DD;
      if (td < 0) break;
      if (td % SD) continue;
      const int od = td / SD;
      if (od >= OD) continue;
      for (int kh = 0; kh < KH; kh++) {
        const int th = ih + gdp.s4 - kh * DH;
        if (th < 0) break;
        if (th % SH) continue;
        const int oh = th / SH;
        if (oh >= OH) continue;
        for (int kw = 0; kw < KW; kw++) {
          const int tw = iw + gdp.s5 - kw * DW;
          if (tw < 0) break;
          if (tw % SW) continue;
          const int ow = tw / SW;
          if (ow >= OW) continue;
          acc += LOAD(dy, yb + (od * OH + oh) * OW + ow) * LOAD(w, wb + (kd * KH + kh) * KW + kw);
        }
      }
    }
  }
  STORE(dx + dx_off, r * IW + iw, acc);
}

/* direct_bwd_weight: dw[o, cg, kd, kh, kw] = sum over images n0..n0+nb and
 * output positions of dy[n, o, pos] * x[n, c, pos*S - P + k*D]; accumulates
 * into dw when accumulate is set (later batch chunks). One work-item per
 * weight element (dim 0: kw, dim 1: (o, cg, kd, kh)); each sums nb*L
 * products, which is fine while O*Cg*KV keeps the cores busy. */
kernel void direct_bwd_weight(global const REAL *dy, int dy_off, global const REAL *x, int x_off,
                              global REAL *dw, int dw_off, int rows, int accumulate, int8 gin,
                              int8 gout, int8 gk, int8 gdp, int8 gw) {
  const int kw = get_global_id(0), r = get_global_id(1);
  const int KW = gk.s2;
  if (kw >= KW || r >= rows) return;
  const int C = gin.s0, ID = gin.s1, IH = gin.s2, IW = gin.s3, nb = gin.s4;
  const int OD = gout.s0, OH = gout.s1, OW = gout.s2;
  const int KD = gk.s0, KH = gk.s1;
  const int O = gw.s0, Cg = gw.s1, Og = gw.s2;
  int t = r;
  const int kh = t % KH; t /= KH;
  const int kd = t % KD; t /= KD;
  const int cg = t % Cg;
  const int o = t / Cg;
  const int c = (o / Og) * Cg + cg;
  ACC acc = accumulate ? LOAD(dw + dw_off, r * KW + kw) : (ACC)0;
  for (int n = 0; n < nb; n++) {
    const int xb = x_off + (n * C + c) * ID * IH * IW;
    const int yb = dy_off + (n * O + o) * OD * OH * OW;
    for (int od = 0; od < OD; od++) {
      const int id = od * gk.s3 - gdp.s3 + kd * gdp.s0;
      if (id < 0 || id >= ID) continue;
      for (int oh = 0; oh < OH; oh++) {
        const int ih = oh * gk.s4 - gdp.s4 + kh * gdp.s1;
        if (ih < 0 || ih >= IH) continue;
        for (int ow = 0; ow < OW; ow++) {
          const int iw = ow * gk.s5 - gdp.s5 + kw * gdp.s2;
          if (iw < 0 || iw >= IW) continue;
          acc += LOAD(dy, yb + (od * OH + oh) * OW + ow) * LOAD(x, xb + (id * IH + ih) * IW + iw);
        }
      }
    }
  }
  STORE(dw + dw_off, r * KW + kw, acc);
}
