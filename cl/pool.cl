/* pool.cl: max and average pooling (fixed windows and adaptive windows)
 * with their backward rules, as direct kernels.
 *
 * Every geometry is 3-D (1-D and 2-D pools have leading spatial dims of size
 * 1); x is a stack of planes [N*C, ID, IH, IW]. One work-item per row along
 * the innermost dim (as in conv.cl: on PoCL a work-item per element with
 * its index divisions is many times slower): forward kernels own an output
 * row, backward kernels an input row, which they zero and then accumulate
 * into from every output whose window reaches the row, in a fixed order
 * (no float atomics in OpenCL 1.2; deterministic). Max pools record the
 * in-plane index of each window's maximum (first maximum; NaN wins, as in
 * PyTorch) when a gradient will be needed; the backward pass adds g[o] at
 * that index when it lies in the row. No barriers, no local memory.
 * Geometry vectors:
 *   gin  = (ID, IH, IW, -...)          gout = (OD, OH, OW, -...)
 *   gk   = (KD, KH, KW, SD, SH, SW)    gdp  = (DD, DH, DW, PD, PH, PW) */

/* The average pool's divisor for the window starting at (d0, h0, w0)
 * (padding included in the coordinates), as PyTorch: the window clipped to
 * the padded input, or to the input when exclude_pad (the kernels use the
 * divisor_override argument instead when it is > 0). */
inline int avg_divisor(int d0, int h0, int w0, int8 gin, int8 gk, int8 gdp, int exclude_pad) {
  int d1 = min(d0 + gk.s0, gin.s0 + gdp.s3), h1 = min(h0 + gk.s1, gin.s1 + gdp.s4);
  int w1 = min(w0 + gk.s2, gin.s2 + gdp.s5);
  if (!exclude_pad) return (d1 - d0) * (h1 - h0) * (w1 - w0);
  d0 = max(d0, 0), h0 = max(h0, 0), w0 = max(w0, 0);
  d1 = min(d1, gin.s0), h1 = min(h1, gin.s1), w1 = min(w1, gin.s2);
  return (d1 - d0) * (h1 - h0) * (w1 - w0);
}

inline void zero_row(global REAL *d, int n) {
  for (int i = 0; i < n; i++) d[i] = (REAL)0;
}

/* pool_fwd: output row r = (plane, od, oh); mode 0 max (idx written when
 * want_idx), 1 average. */
kernel void pool_fwd(global const REAL *x, int x_off, global REAL *y, int y_off,
                     global int *idx, int idx_off, int want_idx, int rows, int mode,
                     int exclude_pad, int divisor, int8 gin, int8 gout, int8 gk, int8 gdp) {
  const int r = get_global_id(0);
  if (r >= rows) return;
  const int ID = gin.s0, IH = gin.s1, IW = gin.s2, OD = gout.s0, OH = gout.s1, OW = gout.s2;
  int t = r;
  const int oh = t % OH; t /= OH;
  const int od = t % OD;
  const int plane = t / OD;
  const int d0 = od * gk.s3 - gdp.s3, h0 = oh * gk.s4 - gdp.s4;
  global const REAL *xp = x + x_off + plane * ID * IH * IW;
  global REAL *yr = y + y_off + r * OW;
  for (int ow = 0; ow < OW; ow++) {
    const int w0 = ow * gk.s5 - gdp.s5;
    if (mode == 0) {
      ACC best = -INFINITY;
      int bi = -1;
      for (int kd = 0; kd < gk.s0; kd++) {
        const int id = d0 + kd * gdp.s0;
        if (id < 0 || id >= ID) continue;
        for (int kh = 0; kh < gk.s1; kh++) {
          const int ih = h0 + kh * gdp.s1;
          if (ih < 0 || ih >= IH) continue;
          for (int kw = 0; kw < gk.s2; kw++) {
            const int iw = w0 + kw * gdp.s2;
            if (iw < 0 || iw >= IW) continue;
            const int e = (id * IH + ih) * IW + iw;
            const ACC v = LOAD(xp, e);
            if (bi < 0) bi = e; /* PyTorch starts from the first tap inside the input */
            if (v > best || isnan(v)) {
              best = v;
              bi = e;
            }
          }
        }
      }
      STORE(yr, ow, best);
      if (want_idx) idx[idx_off + r * OW + ow] = bi;
    } else {
      ACC acc = (ACC)0;
      const int id0 = max(d0, 0), id1 = min(d0 + gk.s0, ID);
      const int ih0 = max(h0, 0), ih1 = min(h0 + gk.s1, IH);
      const int iw0 = max(w0, 0), iw1 = min(w0 + gk.s2, IW);
      for (int id = id0; id < id1; id++)
        for (int ih = ih0; ih < ih1; ih++)
          for (int iw = iw0; iw < iw1; iw++) acc += LOAD(xp, (id * IH + ih) * IW + iw);
      const int dv = divisor > 0 ? divisor : avg_divisor(d0, h0, w0, gin, gk, gdp, exclude_pad);
      STORE(yr, ow, acc / (ACC)dv);
    }
  }
}

/* pool_bwd: input row r = (plane, id, ih). An output row (od, oh) reaches
 * it through tap (kd, kh) when od = (id + PD - kd*DD) / SD divides evenly
 * (likewise h); each such output row's every output then adds g[o] at its
 * recorded maximum if that lies in this row (max), or g[o] / divisor(o) over
 * its window's part of this row (average). */
kernel void pool_bwd(global const REAL *g, int g_off, global const int *idx, int idx_off,
                     global REAL *dx, int dx_off, int rows, int mode, int exclude_pad,
                     int divisor, int8 gin, int8 gout, int8 gk, int8 gdp) {
  const int r = get_global_id(0);
  if (r >= rows) return;
  const int ID = gin.s0, IH = gin.s1, IW = gin.s2, OD = gout.s0, OH = gout.s1, OW = gout.s2;
  int t = r;
  const int ih = t % IH; t /= IH;
  const int id = t % ID;
  const int plane = t / ID;
  const int rowbase = (id * IH + ih) * IW;
  global REAL *d = dx + dx_off + r * IW;
  zero_row(d, IW);
  for (int kd = 0; kd < gk.s0; kd++) {
    const int td = id + gdp.s3 - kd * gdp.s0;
    if (td < 0) break;
    if (td % gk.s3) continue;
    const int od = td / gk.s3;
    if (od >= OD) continue;
    for (int kh = 0; kh < gk.s1; kh++) {
      const int th = ih + gdp.s4 - kh * gdp.s1;
      if (th < 0) break;
      if (th % gk.s4) continue;
      const int oh = th / gk.s4;
      if (oh >= OH) continue;
      const int ob = (plane * OD + od) * OH * OW + oh * OW;
      global const REAL *gr = g + g_off + ob;
      if (mode == 0) {
        global const int *ir = idx + idx_off + ob;
        for (int ow = 0; ow < OW; ow++) {
          const int e = ir[ow] - rowbase;
          if (e >= 0 && e < IW) d[e] += gr[ow];
        }
      } else {
        for (int ow = 0; ow < OW; ow++) {
          const int w0 = ow * gk.s5 - gdp.s5;
          const int dv = divisor > 0 ? divisor
                                     : avg_divisor(od * gk.s3 - gdp.s3, oh * gk.s4 - gdp.s4, w0,
                                                   gin, gk, gdp, exclude_pad);
          const ACC v = LOAD(gr, ow) / (ACC)dv;
          const int iw1 = min(w0 + gk.s2, IW);
          for (int iw = max(w0, 0); iw < iw1; iw++) d[iw] += (REAL)v;
        }
      }
    }
  }
}

/* Adaptive windows: output cell o of a dim with input size n and output
 * size m covers [floor(o n / m), ceil((o + 1) n / m)). */
inline int ad_start(int o, int n, int m) { return (o * n) / m; }
inline int ad_end(int o, int n, int m) { return ((o + 1) * n + m - 1) / m; }

/* adaptive_fwd: output row r = (plane, od, oh); mode 0 max (idx when
 * want_idx), 1 average. */
kernel void adaptive_fwd(global const REAL *x, int x_off, global REAL *y, int y_off,
                         global int *idx, int idx_off, int want_idx, int rows, int mode,
                         int8 gin, int8 gout) {
  const int r = get_global_id(0);
  if (r >= rows) return;
  const int ID = gin.s0, IH = gin.s1, IW = gin.s2, OD = gout.s0, OH = gout.s1, OW = gout.s2;
  int t = r;
  const int oh = t % OH; t /= OH;
  const int od = t % OD;
  const int plane = t / OD;
  const int d0 = ad_start(od, ID, OD), d1 = ad_end(od, ID, OD);
  const int h0 = ad_start(oh, IH, OH), h1 = ad_end(oh, IH, OH);
  global const REAL *xp = x + x_off + plane * ID * IH * IW;
  global REAL *yr = y + y_off + r * OW;
  for (int ow = 0; ow < OW; ow++) {
    const int w0 = ad_start(ow, IW, OW), w1 = ad_end(ow, IW, OW);
    if (mode == 0) {
      ACC best = -INFINITY;
      int bi = (d0 * IH + h0) * IW + w0;
      for (int id = d0; id < d1; id++)
        for (int ih = h0; ih < h1; ih++)
          for (int iw = w0; iw < w1; iw++) {
            const int e = (id * IH + ih) * IW + iw;
            const ACC v = LOAD(xp, e);
            if (v > best || isnan(v)) {
              best = v;
              bi = e;
            }
          }
      STORE(yr, ow, best);
      if (want_idx) idx[idx_off + r * OW + ow] = bi;
    } else {
      ACC acc = (ACC)0;
      for (int id = d0; id < d1; id++)
        for (int ih = h0; ih < h1; ih++)
          for (int iw = w0; iw < w1; iw++) acc += LOAD(xp, (id * IH + ih) * IW + iw);
      STORE(yr, ow, acc / (ACC)((d1 - d0) * (h1 - h0) * (w1 - w0)));
    }
  }
}

/* adaptive_bwd: input row r = (plane, id, ih); the output rows holding it
 * are od in [floor(id OD / ID), ceil((id + 1) OD / ID)) (each checked
 * again), likewise oh; their outputs add as in pool_bwd. */
kernel void adaptive_bwd(global const REAL *g, int g_off, global const int *idx, int idx_off,
                         global REAL *dx, int dx_off, int rows, int mode, int8 gin, int8 gout) {
  const int r = get_global_id(0);
  if (r >= rows) return;
  const int ID = gin.s0, IH = gin.s1, IW = gin.s2, OD = gout.s0, OH = gout.s1, OW = gout.s2;
  int t = r;
  const int ih = t % IH; t /= IH;
  const int id = t % ID;
  const int plane = t / ID;
  const int rowbase = (id * IH + ih) * IW;
  global REAL *d = dx + dx_off + r * IW;
  zero_row(d, IW);
  const int od1 = min(((id + 1) * OD + ID - 1) / ID, OD);
  const int oh1 = min(((ih + 1) * OH + IH - 1) / IH, OH);
  for (int od = (id * OD) / ID; od < od1; od++) {
    const int d0 = ad_start(od, ID, OD), d1 = ad_end(od, ID, OD);
    if (id < d0 || id >= d1) continue;
    for (int oh = (ih * OH) / IH; oh < oh1; oh++) {
      const int h0 = ad_start(oh, IH, OH), h1 = ad_end(oh, IH, OH);
      if (ih < h0 || ih >= h1) continue;
      const int ob = (plane * OD + od) * OH * OW + oh * OW;
      global const REAL *gr = g + g_off + ob;
      if (mode == 0) {
        global const int *ir = idx + idx_off + ob;
        for (int ow = 0; ow < OW; ow++) {
          const int e = ir[ow] - rowbase;
          if (e >= 0 && e < IW) d[e] += gr[ow];
        }
      } else {
        for (int ow = 0; ow < OW; ow++) {
          const int w0 = ad_start(ow, IW, OW), w1 = ad_end(ow, IW, OW);
          const ACC v = LOAD(gr, ow) / (ACC)((d1 - d0) * (h1 - h0) * (w1 - w0));
          for (int iw = w0; iw < w1; iw++) d[iw] += (REAL)v;
        }
      }
    }
  }
}

/* ---- fractional max pooling, max unpooling ----------------------------------------
 *
 * Fractional windows differ per plane (each plane has its own random
 * samples), so the forward is one work-item per output row that derives its
 * window starts from the plane's samples (as torch's generate_intervals, in
 * REAL: start(i) = (int)((i + u) * alpha) - (int)(u * alpha) for i < out -
 * 1, in - k for the last; alpha is computed on the host, where the division
 * is correctly rounded). Its backward and the unpool's forward scatter by
 * index: one work-item per plane walks the plane's sources in order, so
 * duplicate indices resolve deterministically (the later source wins when
 * overwriting, as torch on the CPU; sums in a fixed order when
 * accumulating) without atomics; the parallelism is the N*C planes, the
 * trade-off for determinism. The unpool's backward gathers, one work-item
 * per element. */

/* Samples in [0, 1) keep the start in [0, n - k]; the clamp only guards
 * against other values (NaN, out of range) reading outside the plane. */
inline int frac_start(int o, int n, int m, int k, REAL u, REAL alpha) {
  if (o == m - 1) return n - k;
  return clamp((int)(((REAL)o + u) * alpha) - (int)(u * alpha), 0, n - k);
}

/* fractional_fwd: output row r = (plane, od, oh). samples [planes, ns];
 * smap.s0/s1/s2: the sample entry of dims D/H/W (-1: none, start 0 as the
 * dim has size 1). alpha.s0/s1/s2 per dim (0 where out is 1). */
kernel void fractional_fwd(global const REAL *x, int x_off, global REAL *y, int y_off,
                           global int *idx, int idx_off, int want_idx,
                           global const REAL *smp, int smp_off, int ns, int rows, int8 gin,
                           int8 gout, int8 gk, int8 smap, REAL alpha_d, REAL alpha_h,
                           REAL alpha_w) {
  const int r = get_global_id(0);
  if (r >= rows) return;
  const int ID = gin.s0, IH = gin.s1, IW = gin.s2, OD = gout.s0, OH = gout.s1, OW = gout.s2;
  int t = r;
  const int oh = t % OH; t /= OH;
  const int od = t % OD;
  const int plane = t / OD;
  global const REAL *sp = smp + smp_off + plane * ns;
  const REAL ud = smap.s0 >= 0 ? sp[smap.s0] : (REAL)0;
  const REAL uh = smap.s1 >= 0 ? sp[smap.s1] : (REAL)0;
  const REAL uw = smap.s2 >= 0 ? sp[smap.s2] : (REAL)0;
  const int d0 = frac_start(od, ID, OD, gk.s0, ud, alpha_d);
  const int h0 = frac_start(oh, IH, OH, gk.s1, uh, alpha_h);
  global const REAL *xp = x + x_off + plane * ID * IH * IW;
  global REAL *yr = y + y_off + r * OW;
  for (int ow = 0; ow < OW; ow++) {
    const int w0 = frac_start(ow, IW, OW, gk.s2, uw, alpha_w);
    ACC best = -INFINITY;
    int bi = (d0 * IH + h0) * IW + w0;
    for (int id = d0; id < d0 + gk.s0; id++)
      for (int ih = h0; ih < h0 + gk.s1; ih++)
        for (int iw = w0; iw < w0 + gk.s2; iw++) {
          const int e = (id * IH + ih) * IW + iw;
          const ACC v = LOAD(xp, e);
          if (v > best || isnan(v)) {
            best = v;
            bi = e;
          }
        }
    STORE(yr, ow, best);
    if (want_idx) idx[idx_off + r * OW + ow] = bi;
  }
}

/* plane_scatter: work-item p owns dst plane p (n_dst elements): zeroes it,
 * then for each source i of the plane in order stores (accumulate 0) or adds
 * (1) src[p, i] at dst[p, idx[p, i]]; indices outside [0, n_dst) are
 * skipped. */
kernel void plane_scatter(global const REAL *src, int src_off, global const int *idx, int idx_off,
                          global REAL *dst, int dst_off, int planes, int n_src, int n_dst,
                          int accumulate) {
  const int p = get_global_id(0);
  if (p >= planes) return;
  global REAL *d = dst + dst_off + p * n_dst;
  global const REAL *s = src + src_off + p * n_src;
  global const int *ip = idx + idx_off + p * n_src;
  zero_row(d, n_dst);
  for (int i = 0; i < n_src; i++) {
    const int e = ip[i];
    if (e < 0 || e >= n_dst) continue;
    if (accumulate)
      d[e] += s[i];
    else
      d[e] = s[i];
  }
}

/* plane_gather: element i of dst (n_src per plane, total elements) is
 * src[plane, idx[i]] (0 where the index is outside [0, n_plane)). */
kernel void plane_gather(global const REAL *src, int src_off, global const int *idx, int idx_off,
                         global REAL *dst, int dst_off, int total, int n_idx_plane, int n_plane) {
  const int i = get_global_id(0);
  if (i >= total) return;
  const int e = idx[idx_off + i];
  dst[dst_off + i] =
      e >= 0 && e < n_plane ? src[src_off + (i / n_idx_plane) * n_plane + e] : (REAL)0;
}

/* max_pool2d_rows: the 2-D max pool with dilation 1 (ResNet's 3x3/2 stem
 * pool), chosen on the host for those (LAMINA_POOL_PATH=general forces
 * pool_fwd). One work-item per output row (plane, oh), as pool_fwd, but the
 * window's clipping is computed once per row (kh) and per output (kw) as
 * loop bounds instead of a test per tap, and the depth loop is gone: the
 * inner loop is straight-line compare-and-select code. Same results as
 * pool_fwd (first maximum, NaN wins, index of the first tap inside the
 * input when every tap is -inf); idx written when want_idx. */
kernel void max_pool2d_rows(global const REAL *x, int x_off, global REAL *y, int y_off,
                            global int *idx, int idx_off, int want_idx, int rows, int IH, int IW,
                            int OH, int OW, int KH, int KW, int SH, int SW, int PH, int PW) {
  const int r = get_global_id(0);
  if (r >= rows) return;
  const int oh = r % OH, plane = r / OH;
  const int h0 = oh * SH - PH;
  const int kh0 = max(0, -h0), kh1 = min(KH, IH - h0);
  global const REAL *xp = x + x_off + plane * IH * IW;
  for (int ow = 0; ow < OW; ow++) {
    const int w0 = ow * SW - PW;
    const int kw0 = max(0, -w0), kw1 = min(KW, IW - w0);
    ACC best = -INFINITY;
    int bi = -1;
    for (int kh = kh0; kh < kh1; kh++) {
      const int e0 = (h0 + kh) * IW + w0;
      for (int kw = kw0; kw < kw1; kw++) {
        const ACC v = LOAD(xp, e0 + kw);
        const int take = bi < 0 || v > best || isnan(v);
        best = take ? v : best;
        bi = take ? e0 + kw : bi;
      }
    }
    STORE(y + y_off + r * OW, ow, best);
    if (want_idx) idx[idx_off + r * OW + ow] = bi;
  }
}

/* max_pool2d_k3s2: the 3x3, stride-2 max pool without indices (ResNet's stem
 * pool in evaluation), vectorised along the output row: 8 outputs read 17
 * consecutive inputs per window row (one vload16 and a scalar), and the
 * three taps are the even lanes, the odd lanes and the even lanes shifted
 * by one. Blocks that would read outside the row (the first output with
 * left padding, the tail) take the scalar loop of max_pool2d_rows. Measured
 * on PoCL (2 cores, [16, 64, 112, 112]): ~70 ms for max_pool2d_rows /
 * pool_fwd, whose per-output loops do not vectorise. One work-item per
 * output row (plane, oh). */
#define MP_CAT_(a, b) a##b
#define MP_CAT(a, b) MP_CAT_(a, b)
#define MP_TAKE(m, v) m = select(m, v, (v > m) || isnan(v))
kernel void max_pool2d_k3s2(global const REAL *x, int x_off, global REAL *y, int y_off, int rows,
                            int IH, int IW, int OH, int OW, int PH, int PW) {
  const int r = get_global_id(0);
  if (r >= rows) return;
  const int oh = r % OH, plane = r / OH;
  const int h0 = oh * 2 - PH;
  const int kh0 = max(0, -h0), kh1 = min(3, IH - h0);
  global const REAL *xp = x + x_off + plane * IH * IW;
  global REAL *yr = y + y_off + r * OW;
  /* vector blocks need 2*ow0 - PW >= 0 and 2*ow0 - PW + 16 < IW */
  int ow = 0;
  for (; ow < OW; ow++) { /* scalar head until the first vector block can start */
    const int w0 = ow * 2 - PW;
    if (w0 >= 0) break;
    const int kw0 = max(0, -w0), kw1 = min(3, IW - w0);
    ACC best = -INFINITY;
    int any = 0;
    for (int kh = kh0; kh < kh1; kh++)
      for (int kw = kw0; kw < kw1; kw++) {
        const ACC v = LOAD(xp, (h0 + kh) * IW + w0 + kw);
        best = (!any || v > best || isnan(v)) ? v : best;
        any = 1;
      }
    STORE(yr, ow, best);
  }
  for (; ow + 8 <= OW && ow * 2 - PW + 16 < IW; ow += 8) {
    const int w0 = ow * 2 - PW;
    MP_CAT(REAL, 8) m = (MP_CAT(REAL, 8))(-INFINITY);
    for (int kh = kh0; kh < kh1; kh++) {
      global const REAL *row = xp + (h0 + kh) * IW + w0;
      const MP_CAT(REAL, 16) a = vload16(0, row);
      const REAL b = row[16];
      const MP_CAT(REAL, 8) t0 = a.even, t1 = a.odd;
      const MP_CAT(REAL, 8) t2 = (MP_CAT(REAL, 8))(a.s2, a.s4, a.s6, a.s8, a.sa, a.sc, a.se, b);
      MP_TAKE(m, t0);
      MP_TAKE(m, t1);
      MP_TAKE(m, t2);
    }
    vstore8(m, 0, yr + ow);
  }
  for (; ow < OW; ow++) { /* scalar tail */
    const int w0 = ow * 2 - PW;
    const int kw0 = max(0, -w0), kw1 = min(3, IW - w0);
    ACC best = -INFINITY;
    int any = 0;
    for (int kh = kh0; kh < kh1; kh++)
      for (int kw = kw0; kw < kw1; kw++) {
        const ACC v = LOAD(xp, (h0 + kh) * IW + w0 + kw);
        best = (!any || v > best || isnan(v)) ? v : best;
        any = 1;
      }
    STORE(yr, ow, best);
  }
}
