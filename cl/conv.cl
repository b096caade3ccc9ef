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
 * Work decomposition: ONE WORK-ITEM PER ROW along the innermost spatial dim
 * (a row of the column matrix, of the output or of the input), looping over
 * the row with explicit 16-wide vectors where the row is contiguous (stride
 * 1). On PoCL this is 20-50x faster than one work-item per element: the
 * row's index decomposition (divisions) is paid once, and the inner loop is
 * plain vector code, where the per-element form did not vectorise. Backward
 * kernels own whole rows of their result and accumulate shifted row
 * segments into it in a fixed order (no float atomics in OpenCL 1.2;
 * deterministic). No barriers, no local memory. Geometry arrives as int8:
 *   gin  = (C, ID, IH, IW, nb, -, -, -)   input channels and sizes, images
 *   gout = (OD, OH, OW, -, ...)           output sizes
 *   gk   = (KD, KH, KW, SD, SH, SW, -, -) kernel sizes and strides
 *   gdp  = (DD, DH, DW, PD, PH, PW, -, -) dilations and padding before */

#define CONV_CAT_(a, b) a##b
#define CONV_CAT(a, b) CONV_CAT_(a, b)
#define RV16 CONV_CAT(REAL, 16)

/* The output positions o in [*lo, *hi) of a row whose tap reads input
 * o*s + off inside [0, n). */
inline void tap_range(int off, int s, int n, int outn, int *lo, int *hi) {
  int a = off >= 0 ? 0 : (-off + s - 1) / s;
  int b = n - 1 - off < 0 ? 0 : (n - 1 - off) / s + 1;
  b = min(b, outn);
  *lo = min(a, b);
  *hi = b;
}

/* d[i] = v for i < n. */
inline void row_fill(global REAL *d, int n, REAL v) {
  int i = 0;
  for (; i + 16 <= n; i += 16) vstore16((RV16)v, 0, d + i);
  for (; i < n; i++) d[i] = v;
}

/* d[o*s + off] += a * src[o] over the tap's valid range (a == 1: plain add). */
inline void row_axpy(global REAL *d, global const REAL *src, int off, int s, int n, int outn,
                     REAL a) {
  int lo, hi;
  tap_range(off, s, n, outn, &lo, &hi);
  int o = lo;
  if (s == 1) {
    for (; o + 16 <= hi; o += 16)
      vstore16(vload16(0, d + o + off) + a * vload16(0, src + o), 0, d + o + off);
    for (; o < hi; o++) d[o + off] += a * src[o];
  } else {
    for (; o < hi; o++) d[o * s + off] += a * src[o];
  }
}

/* im2col: row r = (c, kd, kh, kw, n, od, oh) of the column matrix:
 * cols[r*OW + ow] = x[n, c, od*SD - PD + kd*DD, oh*SH - PH + kh*DH,
 * ow*SW - PW + kw*DW], 0 in the padding. One work-item per row. */
kernel void im2col(global const REAL *x, int x_off, global REAL *cols, int cols_off, int rows,
                   int8 gin, int8 gout, int8 gk, int8 gdp) {
  const int r = get_global_id(0);
  if (r >= rows) return;
  const int C = gin.s0, ID = gin.s1, IH = gin.s2, IW = gin.s3, nb = gin.s4;
  const int OD = gout.s0, OH = gout.s1, OW = gout.s2;
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
  global REAL *dst = cols + cols_off + r * OW;
  const int sw = gk.s5, off = kw * gdp.s2 - gdp.s5;
  int lo = 0, hi = 0;
  if (id >= 0 && id < ID && ih >= 0 && ih < IH) tap_range(off, sw, IW, OW, &lo, &hi);
  for (int ow = 0; ow < lo; ow++) dst[ow] = (REAL)0;
  global const REAL *src = x + x_off + (((n * C + c) * ID + id) * IH + ih) * IW + off;
  int ow = lo;
  if (sw == 1) {
    for (; ow + 16 <= hi; ow += 16) vstore16(vload16(0, src + ow), 0, dst + ow);
    for (; ow < hi; ow++) dst[ow] = src[ow];
  } else {
    for (; ow < hi; ow++) dst[ow] = src[ow * sw];
  }
  for (ow = hi; ow < OW; ow++) dst[ow] = (REAL)0;
}

/* im2col_plane: im2col with one work-item per plane p = (c, kd, kh, kw, n, od),
 * i.e. OH consecutive rows of the column matrix (OH*OW contiguous elements).
 * The index decomposition and the tap's column range (the same for every row
 * of the plane) are paid once per plane instead of once per row: for the
 * small late-stage maps (OW = 7 or 14) im2col's per-row divisions cost more
 * than the copying (ResNet-18 layer4 at batch 1: 226k elements in ~0.3 ms).
 * Used when the rows are short (OW < 32) and there are at least 256 planes
 * (LAMINA_CONV_IM2COL=rows / plane force either). Same result as im2col. */
kernel void im2col_plane(global const REAL *x, int x_off, global REAL *cols, int cols_off, int planes,
                         int8 gin, int8 gout, int8 gk, int8 gdp) {
  const int p = get_global_id(0);
  if (p >= planes) return;
  const int C = gin.s0, ID = gin.s1, IH = gin.s2, IW = gin.s3, nb = gin.s4;
  const int OD = gout.s0, OH = gout.s1, OW = gout.s2;
  int t = p;
  const int od = t % OD; t /= OD;
  const int n = t % nb; t /= nb;
  const int kw = t % gk.s2; t /= gk.s2;
  const int kh = t % gk.s1; t /= gk.s1;
  const int kd = t % gk.s0;
  const int c = t / gk.s0;
  const int id = od * gk.s3 - gdp.s3 + kd * gdp.s0;
  const int sw = gk.s5, off = kw * gdp.s2 - gdp.s5;
  int lo0 = 0, hi0 = 0;
  tap_range(off, sw, IW, OW, &lo0, &hi0);
  const bool dok = id >= 0 && id < ID;
  global const REAL *plane = x + x_off + ((n * C + c) * ID + (dok ? id : 0)) * IH * IW + off;
  global REAL *dst = cols + cols_off + p * OH * OW;
  for (int oh = 0; oh < OH; oh++, dst += OW) {
    const int ih = oh * gk.s4 - gdp.s4 + kh * gdp.s1;
    const bool ok = dok && ih >= 0 && ih < IH;
    const int lo = ok ? lo0 : 0, hi = ok ? hi0 : 0;
    int ow = 0;
    for (; ow < lo; ow++) dst[ow] = (REAL)0;
    global const REAL *src = plane + (ok ? ih : 0) * IW;
    if (sw == 1) {
      for (; ow < hi; ow++) dst[ow] = src[ow];
    } else {
      for (; ow < hi; ow++) dst[ow] = src[ow * sw];
    }
    for (ow = hi; ow < OW; ow++) dst[ow] = (REAL)0;
  }
}

/* col2im: the adjoint of im2col for input row r = (n, c, id, ih): the row
 * starts at bias[c] (has_bias; the transposed convolution's forward) or 0,
 * then every tap (kd, kh, kw) whose output row (od, oh) exists adds its
 * column-matrix row segment: along a dim, tap k reads input i from output
 * o = (i + P - k*D) / S when that divides evenly and 0 <= o < O. */
kernel void col2im(global const REAL *cols, int cols_off, global REAL *dx, int dx_off,
                   global const REAL *bias, int bias_off, int has_bias, int rows, int8 gin,
                   int8 gout, int8 gk, int8 gdp) {
  const int r = get_global_id(0);
  if (r >= rows) return;
  const int C = gin.s0, ID = gin.s1, IH = gin.s2, IW = gin.s3, nb = gin.s4;
  const int OD = gout.s0, OH = gout.s1, OW = gout.s2;
  const int KD = gk.s0, KH = gk.s1, KW = gk.s2, SD = gk.s3, SH = gk.s4;
  int t = r;
  const int ih = t % IH; t /= IH;
  const int id = t % ID; t /= ID;
  const int c = t % C;
  const int n = t / C;
  const int L = OD * OH * OW;
  global REAL *d = dx + dx_off + r * IW;
  row_fill(d, IW, has_bias ? bias[bias_off + c] : (REAL)0);
  for (int kd = 0; kd < KD; kd++) {
    const int td = id + gdp.s3 - kd * gdp.s0;
    if (td < 0) break;
    if (td % SD) continue;
    const int od = td / SD;
    if (od >= OD) continue;
    for (int kh = 0; kh < KH; kh++) {
      const int th = ih + gdp.s4 - kh * gdp.s1;
      if (th < 0) break;
      if (th % SH) continue;
      const int oh = th / SH;
      if (oh >= OH) continue;
      for (int kw = 0; kw < KW; kw++) {
        global const REAL *src =
            cols + cols_off + ((((c * KD + kd) * KH + kh) * KW + kw) * nb + n) * L + (od * OH + oh) * OW;
        row_axpy(d, src, kw * gdp.s2 - gdp.s5, gk.s5, IW, OW, (REAL)1);
      }
    }
  }
}

/* chan_swap: dst[q, p, :] = src[p, q, :] (+ bias[p] when has_bias), src
 * [P, Q, L] and dst [Q, P, L]. Moves GEMM results [O, nb, L] into the
 * output's [nb, O, L] (with the bias), and output gradients the other way.
 * With Q == 1 the layouts coincide and src may equal dst (in-place bias):
 * each work-item reads and writes only its own row. One work-item per
 * destination row r = (q, p). The evaluation epilogue (lam__conv2d_fused:
 * batch norm folded into the weights) rides on the same pass: has_res adds
 * res[q, p, :] (dst's layout; a residual) and relu clamps at 0, so bias,
 * residual and ReLU cost no pass of their own. */
kernel void chan_swap(global const REAL *src, int src_off, global REAL *dst, int dst_off,
                      global const REAL *bias, int bias_off, int has_bias, int P, int Q, int L,
                      global const REAL *res, int res_off, int has_res, int relu) {
  const int r = get_global_id(0);
  if (r >= P * Q) return;
  const int p = r % P, q = r / P;
  global const REAL *s = src + src_off + (p * Q + q) * L;
  global REAL *d = dst + dst_off + r * L;
  global const REAL *e = res + res_off + r * L;
  const REAL b = has_bias ? bias[bias_off + p] : (REAL)0;
  int l = 0;
  if (!has_res && !relu) {
    for (; l + 16 <= L; l += 16) vstore16(vload16(0, s + l) + b, 0, d + l);
    for (; l < L; l++) d[l] = s[l] + b;
    return;
  }
  /* ReLU as a select (NaN stays NaN, as torch.relu; fmax would give 0 and is
   * an out-of-line call on PoCL) */
  for (; l + 16 <= L; l += 16) {
    RV16 v = vload16(0, s + l) + b;
    if (has_res) v += vload16(0, e + l);
    if (relu) v = select(v, (RV16)0, v < (RV16)0);
    vstore16(v, 0, d + l);
  }
  for (; l < L; l++) {
    REAL v = s[l] + b + (has_res ? e[l] : (REAL)0);
    d[l] = relu && v < (REAL)0 ? (REAL)0 : v;
  }
}

/* ---- direct kernels (thin groups: depthwise and friends) -------------------
 * Used when a group has few input and output channels (Cg * Og small), where
 * a GEMM per group would be a thin matrix-vector product and im2col would
 * multiply the memory traffic by the kernel volume. gw = (O, Cg, Og,
 * has_bias, ...). */

/* direct_fwd: output row r = (n, o, od, oh) starts at bias[o] and adds, for
 * every input channel of o's group and every tap inside the input, the
 * weight times the shifted input row segment. */
kernel void direct_fwd(global const REAL *x, int x_off, global const REAL *w, int w_off,
                       global const REAL *bias, int bias_off, global REAL *y, int y_off, int rows,
                       int8 gin, int8 gout, int8 gk, int8 gdp, int8 gw) {
  const int r = get_global_id(0);
  if (r >= rows) return;
  const int C = gin.s0, ID = gin.s1, IH = gin.s2, IW = gin.s3;
  const int OD = gout.s0, OH = gout.s1, OW = gout.s2;
  const int KD = gk.s0, KH = gk.s1, KW = gk.s2;
  const int O = gw.s0, Cg = gw.s1, Og = gw.s2;
  int t = r;
  const int oh = t % OH; t /= OH;
  const int od = t % OD; t /= OD;
  const int o = t % O;
  const int n = t / O;
  const int c0 = (o / Og) * Cg;
  global REAL *yr = y + y_off + r * OW;
  row_fill(yr, OW, gw.s3 ? bias[bias_off + o] : (REAL)0);
  for (int cg = 0; cg < Cg; cg++) {
    global const REAL *xc = x + x_off + (n * C + c0 + cg) * ID * IH * IW;
    global const REAL *wc = w + w_off + (o * Cg + cg) * KD * KH * KW;
    for (int kd = 0; kd < KD; kd++) {
      const int id = od * gk.s3 - gdp.s3 + kd * gdp.s0;
      if (id < 0 || id >= ID) continue;
      for (int kh = 0; kh < KH; kh++) {
        const int ih = oh * gk.s4 - gdp.s4 + kh * gdp.s1;
        if (ih < 0 || ih >= IH) continue;
        global const REAL *xr = xc + (id * IH + ih) * IW;
        for (int kw = 0; kw < KW; kw++) {
          const REAL wv = wc[(kd * KH + kh) * KW + kw];
          const int off = kw * gdp.s2 - gdp.s5, s = gk.s5;
          int lo, hi;
          tap_range(off, s, IW, OW, &lo, &hi);
          int ow = lo;
          if (s == 1) {
            for (; ow + 16 <= hi; ow += 16)
              vstore16(vload16(0, yr + ow) + wv * vload16(0, xr + ow + off), 0, yr + ow);
            for (; ow < hi; ow++) yr[ow] += wv * xr[ow + off];
          } else {
            for (; ow < hi; ow++) yr[ow] += wv * xr[ow * s + off];
          }
        }
      }
    }
  }
}

/* direct_bwd_data: input row r = (n, c, id, ih) starts at bias[c] (gw.s3;
 * transposed convolution) or 0 and adds, for every output channel of c's
 * group and every tap reaching this row, the weight times the output
 * gradient row segment (the col2im tap rule). */
kernel void direct_bwd_data(global const REAL *dy, int dy_off, global const REAL *w, int w_off,
                            global const REAL *bias, int bias_off, global REAL *dx, int dx_off,
                            int rows, int8 gin, int8 gout, int8 gk, int8 gdp, int8 gw) {
  const int r = get_global_id(0);
  if (r >= rows) return;
  const int C = gin.s0, ID = gin.s1, IH = gin.s2, IW = gin.s3;
  const int OD = gout.s0, OH = gout.s1, OW = gout.s2;
  const int KD = gk.s0, KH = gk.s1, KW = gk.s2, SD = gk.s3, SH = gk.s4;
  const int O = gw.s0, Cg = gw.s1, Og = gw.s2;
  int t = r;
  const int ih = t % IH; t /= IH;
  const int id = t % ID; t /= ID;
  const int c = t % C;
  const int n = t / C;
  const int g = c / Cg, cg = c % Cg;
  global REAL *d = dx + dx_off + r * IW;
  row_fill(d, IW, gw.s3 ? bias[bias_off + c] : (REAL)0);
  for (int og = 0; og < Og; og++) {
    const int o = g * Og + og;
    global const REAL *yo = dy + dy_off + (n * O + o) * OD * OH * OW;
    global const REAL *wc = w + w_off + (o * Cg + cg) * KD * KH * KW;
    for (int kd = 0; kd < KD; kd++) {
      const int td = id + gdp.s3 - kd * gdp.s0;
      if (td < 0) break;
      if (td % SD) continue;
      const int od = td / SD;
      if (od >= OD) continue;
      for (int kh = 0; kh < KH; kh++) {
        const int th = ih + gdp.s4 - kh * gdp.s1;
        if (th < 0) break;
        if (th % SH) continue;
        const int oh = th / SH;
        if (oh >= OH) continue;
        global const REAL *yr = yo + (od * OH + oh) * OW;
        for (int kw = 0; kw < KW; kw++)
          row_axpy(d, yr, kw * gdp.s2 - gdp.s5, gk.s5, IW, OW, wc[(kd * KH + kh) * KW + kw]);
      }
    }
  }
}

/* direct_bwd_weight: dw[o, cg, kd, kh, kw] = sum over the images and output
 * rows of dot(dy row, shifted x row). One work-item per weight element
 * (r = (o, cg, kd, kh, kw)); stride-1 rows use 16-wide partial sums. */
kernel void direct_bwd_weight(global const REAL *dy, int dy_off, global const REAL *x, int x_off,
                              global REAL *dw, int dw_off, int rows, int8 gin, int8 gout, int8 gk,
                              int8 gdp, int8 gw) {
  const int r = get_global_id(0);
  if (r >= rows) return;
  const int C = gin.s0, ID = gin.s1, IH = gin.s2, IW = gin.s3, nb = gin.s4;
  const int OD = gout.s0, OH = gout.s1, OW = gout.s2;
  const int KD = gk.s0, KH = gk.s1, KW = gk.s2;
  const int O = gw.s0, Cg = gw.s1, Og = gw.s2;
  int t = r;
  const int kw = t % KW; t /= KW;
  const int kh = t % KH; t /= KH;
  const int kd = t % KD; t /= KD;
  const int cg = t % Cg;
  const int o = t / Cg;
  const int c = (o / Og) * Cg + cg;
  const int off = kw * gdp.s2 - gdp.s5, s = gk.s5;
  int lo, hi;
  tap_range(off, s, IW, OW, &lo, &hi);
  RV16 vacc = (RV16)0;
  ACC acc = (ACC)0;
  for (int n = 0; n < nb; n++) {
    global const REAL *xc = x + x_off + (n * C + c) * ID * IH * IW;
    global const REAL *yo = dy + dy_off + (n * O + o) * OD * OH * OW;
    for (int od = 0; od < OD; od++) {
      const int id = od * gk.s3 - gdp.s3 + kd * gdp.s0;
      if (id < 0 || id >= ID) continue;
      for (int oh = 0; oh < OH; oh++) {
        const int ih = oh * gk.s4 - gdp.s4 + kh * gdp.s1;
        if (ih < 0 || ih >= IH) continue;
        global const REAL *xr = xc + (id * IH + ih) * IW + off;
        global const REAL *yr = yo + (od * OH + oh) * OW;
        int ow = lo;
        if (s == 1)
          for (; ow + 16 <= hi; ow += 16) vacc += vload16(0, yr + ow) * vload16(0, xr + ow);
        for (; ow < hi; ow++) acc += yr[ow] * xr[ow * s];
      }
    }
  }
  const CONV_CAT(REAL, 8) h8 = vacc.lo + vacc.hi;
  const CONV_CAT(REAL, 4) h4 = h8.lo + h8.hi;
  dw[dw_off + r] = acc + ((h4.x + h4.y) + (h4.z + h4.w));
}

/* transpose_tiles: batched 2-D transpose in 16x16 tiles. Source matrix b
 * (b = n*G + g over nb images and G groups) is [R, Cc] at src_off + b*R*Cc;
 * it lands as [Cc, R] at dst_off + (g*nb + n)*R*Cc, i.e. the batch order
 * moves from (image, group) to (group, image). Lays the output gradient
 * [nb, G*Og, L] out as [G, nb*L, Og] for the weight gradient's GEMM (an NN
 * product, faster than the NT product on the CPU GEMM kernels), and that
 * GEMM's [G, Kg, Og] result back as the weight layout [G, Og, Kg]. One
 * work-item per tile: 16 vector loads into private memory, 16 vector stores
 * of its columns; edge tiles go element by element. */
kernel void transpose_tiles(global const REAL *src, int src_off, global REAL *dst, int dst_off,
                            int R, int Cc, int nb, int G, int ntiles) {
  const int i = get_global_id(0);
  if (i >= ntiles) return;
  const int ntr = (R + 15) / 16, ntc = (Cc + 15) / 16;
  int t = i;
  const int tc = t % ntc; t /= ntc;
  const int tr = t % ntr;
  const int b = t / ntr;
  const int n = b / G, g = b % G;
  global const REAL *s = src + src_off + b * R * Cc;
  global REAL *d = dst + dst_off + (g * nb + n) * R * Cc;
  const int r0 = tr * 16, c0 = tc * 16;
  if (r0 + 16 <= R && c0 + 16 <= Cc) {
    REAL tile[16][17];
    for (int r = 0; r < 16; r++) {
      const RV16 v = vload16(0, s + (r0 + r) * Cc + c0);
      vstore16(v, 0, &tile[r][0]);
    }
    for (int c = 0; c < 16; c++) {
      REAL col[16];
      for (int r = 0; r < 16; r++) col[r] = tile[r][c];
      vstore16(vload16(0, col), 0, d + (c0 + c) * R + r0);
    }
  } else {
    const int rn = min(16, R - r0), cn = min(16, Cc - c0);
    for (int r = 0; r < rn; r++)
      for (int c = 0; c < cn; c++) d[(c0 + c) * R + r0 + r] = s[(r0 + r) * Cc + c0 + c];
  }
}
