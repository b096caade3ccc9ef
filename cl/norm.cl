/* norm.cl: the normalization layers' kernels: row norms (layer, RMS, group,
 * instance and channel layer norm) forward and backward, channel statistics
 * (batch norm forward and backward, and the weight/bias gradients of every
 * norm), and DropBlock's block mask.
 *
 * Teams. A statistic (one row of a layer norm, one channel of a batch norm)
 * is owned by a team of T work-items (T a power of two dividing the
 * work-group size L; L/T teams per group). Each lane accumulates a strided
 * part of its statistic in registers (Welford for mean/variance, plain sums
 * elsewhere), writes it to local memory, and after ONE barrier lane 0 merges
 * the T partials (Chan's formula) and publishes the result in local memory;
 * after a second barrier every lane finishes its elements (normalize, or the
 * input gradient). So a kernel has two or three barriers and none inside a
 * loop (PoCL runs the code between barriers as one loop over the group's
 * work-items: a barrier inside a loop costs ~30x). T = 1 gives one
 * work-item per statistic (short rows: neighbouring work-items take
 * neighbouring rows, coalesced for channel layer norm, and the weight
 * gradients' column sums); large T gives neighbouring lanes neighbouring
 * elements (long rows: contiguous vector loads on CPUs, coalesced on GPUs).
 * Teams past the last statistic still reach every barrier (no early return),
 * so partial work-groups are correct. The DRAM traffic of the row forward is
 * one read and one write: the second read of a row for the normalization hits
 * the cache (a row of a team is at most a few hundred KB only for huge D).
 *
 * Two layouts, picked on the host (src/ops/norm.c) by device type: the team
 * kernels above for GPUs (coalesced lanes, reductions in local memory), and
 * the "_wi" kernels of the CPU section below (one work-item per statistic,
 * explicit vectors, no barriers), which measured 10-40x faster on PoCL.
 *
 * Accumulation: shifted data. Every mean/variance statistic is accumulated
 * on d = x - K, K the statistic's first element (the pivot), and its mean is
 * kept as the pair (K, dm = mean(d)) in the saved "mean" tensor [2, stats]
 * (pivots, then shifted means). In f32 x - K is exact when |mean| >> std
 * (Sterbenz), so dm and the variance carry ulp(std) errors instead of
 * ulp(mean) ones, and every later use forms (x - K) - dm rather than x - M
 * with M rounded to f32: a rounded mean of 1e3 is 3e-5 off, which a rstd of
 * 10 turns into 3e-4 in y, xhat and the backward's sums of dy * xhat. The
 * pivot costs one subtraction per element (free in these memory-bound
 * loops); per-statistic constants absorb dm where they can. It was chosen
 * over two passes (a second read of x) and compensated sums (four flops per
 * element). RMS norm needs none: sum(x^2) has no cancellation. */

#if defined(LAM_F32) || defined(LAM_F16) || defined(LAM_F64)
#define LAM_FLOAT 1
#endif

#ifdef LAM_FLOAT

/* Elements lane k of a team of T walks in a stride-T loop over n elements. */
inline int lane_count(int k, int n, int T) { return k < n ? (n - 1 - k) / T + 1 : 0; }

/* Merges Welford partials (mean, M2, count) of lanes 1..T-1 of a team into
 * lane 0's (Chan et al.); returns the merged M2 in *q and count in *cnt. */
inline ACC welford_merge(local const ACC *lm, local const ACC *lq, local const ACC *lc, int T,
                         ACC *q, ACC *cnt) {
  ACC m = lm[0], Q = lq[0], n = lc[0];
  for (int k = 1; k < T; k++) {
    ACC nb = lc[k];
    if (nb == (ACC)0) continue;
    ACC nn = n + nb;
    ACC d = lm[k] - m;
    m += d * (nb / nn);
    Q += lq[k] + d * d * (n * nb / nn);
    n = nn;
  }
  *q = Q;
  *cnt = n;
  return m;
}

/* ---- row norms ---------------------------------------------------------- */

/* Row r of `rows` (n = r / Sx, s = r % Sx) holds D elements at
 * n*D*Sx + s + j*Sx (Sx = 1: contiguous rows; Sx = spatial size: channel
 * layer norm over axis 1 of [N, C, S]). Affine index of element j of row r:
 * (r % G) * Cg + j / Sw (layer norm G = 1, Sw = 1: j; group norm: channel
 * of the group; instance norm: Cg = 1, Sw = D: the row's channel). rms != 0:
 * no centring, rstd = 1 / sqrt(mean(x^2) + eps). Writes y, and mean/rstd
 * per row (mean [2, rows]: pivots and shifted means, see the banner; only
 * when !rms). Local arrays: 3 * L ACCs. */
kernel void rownorm_fwd(global const REAL *x, int x_off, global const REAL *w, int w_off,
                        global const REAL *b, int b_off, global REAL *y, int y_off,
                        global REAL *mean, int mean_off, global REAL *rstd, int rstd_off,
                        int rows, int D, int Sx, int T, int rms, int has_w, int has_b, int G,
                        int Cg, int Sw, ACC eps, local ACC *lm, local ACC *lq, local ACC *lc) {
  const int lid = get_local_id(0);
  const int team = lid / T, lane = lid - team * T;
  const int r = get_group_id(0) * (get_local_size(0) / T) + team;
  const bool active = r < rows;
  const int n = active ? r / Sx : 0;
  const int base = active ? n * D * Sx + (r - n * Sx) : 0;
  x += x_off + base;
  y += y_off + base;
  w += w_off;
  b += b_off;
  ACC m = 0, q = 0, c = 0;
  const ACC K = active && !rms ? LOAD(x, 0) : (ACC)0; /* the row's pivot */
  if (active) {
    if (rms) {
      ACC q0 = 0, q1 = 0;
      int j = lane;
      for (; j + T < D; j += 2 * T) {
        ACC v0 = LOAD(x, j * Sx), v1 = LOAD(x, (j + T) * Sx);
        q0 += v0 * v0;
        q1 += v1 * v1;
      }
      if (j < D) {
        ACC v = LOAD(x, j * Sx);
        q0 += v * v;
      }
      q = q0 + q1;
    } else {
      /* Welford on x - K (constant rows give exactly 0). */
      for (int j = lane; j < D; j += T) {
        ACC v = LOAD(x, j * Sx) - K;
        c += (ACC)1;
        ACC d = v - m;
        m += d / c;
        q += d * (v - m);
      }
    }
  }
  lm[lid] = m;
  lq[lid] = q;
  lc[lid] = c;
  barrier(CLK_LOCAL_MEM_FENCE);
  if (active && lane == 0) {
    ACC M = 0, Q = 0, cnt = 0;
    if (rms) {
      Q = 0;
      for (int k = 0; k < T; k++) Q += lq[lid + k];
    } else {
      M = welford_merge(lm + lid, lq + lid, lc + lid, T, &Q, &cnt);
    }
    ACC rs = rsqrt(Q / (ACC)D + eps);
    if (!rms) {
      STORE(mean, mean_off + r, K);
      STORE(mean, mean_off + rows + r, M);
    }
    STORE(rstd, rstd_off + r, rs);
    lm[lid] = M;
    lq[lid] = rs;
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  if (!active) return; /* no barrier below */
  const ACC M = lm[team * T], rs = lq[team * T];
  const int goff = (r % G) * Cg;
  if (Sx == 1 && Sw == 1 && has_w && has_b) {
    /* layer norm with weight and bias: the benchmarked path */
    w += goff;
    b += goff;
    for (int j = lane; j < D; j += T)
      STORE(y, j, ((LOAD(x, j) - K) - M) * rs * LOAD(w, j) + LOAD(b, j));
  } else {
    for (int j = lane; j < D; j += T) {
      ACC v = ((LOAD(x, j * Sx) - K) - M) * rs;
      int wi = goff + (Sw == 1 ? j : j / Sw);
      if (has_w) v *= LOAD(w, wi);
      if (has_b) v += LOAD(b, wi);
      STORE(y, j * Sx, v);
    }
  }
}

/* Input gradient of a row norm, geometry as rownorm_fwd. With g = dy * w
 * (w = 1 without weight) and xhat = (x - mean) * rstd (rms: x * rstd):
 * dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) (rms: no mean(g) term),
 * xhat from the pivot and shifted mean. Local arrays: 2 * L ACCs. */
kernel void rownorm_bwd(global const REAL *x, int x_off, global const REAL *dy, int dy_off,
                        global const REAL *w, int w_off, global const REAL *mean, int mean_off,
                        global const REAL *rstd, int rstd_off, global REAL *dx, int dx_off,
                        int rows, int D, int Sx, int T, int rms, int has_w, int G, int Cg, int Sw,
                        local ACC *la, local ACC *lb) {
  const int lid = get_local_id(0);
  const int team = lid / T, lane = lid - team * T;
  const int r = get_group_id(0) * (get_local_size(0) / T) + team;
  const bool active = r < rows;
  const int n = active ? r / Sx : 0;
  const int base = active ? n * D * Sx + (r - n * Sx) : 0;
  x += x_off + base;
  dy += dy_off + base;
  dx += dx_off + base;
  w += w_off + (active ? (r % G) * Cg : 0);
  ACC K = 0, M = 0, rs = 0;
  if (active) {
    K = rms ? (ACC)0 : LOAD(mean, mean_off + r);
    M = rms ? (ACC)0 : LOAD(mean, mean_off + rows + r);
    rs = LOAD(rstd, rstd_off + r);
  }
  ACC sa = 0, sb = 0;
  if (active) {
    for (int j = lane; j < D; j += T) {
      ACC g = LOAD(dy, j * Sx);
      if (has_w) g *= LOAD(w, Sw == 1 ? j : j / Sw);
      ACC xh = ((LOAD(x, j * Sx) - K) - M) * rs;
      sa += g;
      sb += g * xh;
    }
  }
  la[lid] = sa;
  lb[lid] = sb;
  barrier(CLK_LOCAL_MEM_FENCE);
  if (active && lane == 0) {
    ACC A = 0, B = 0;
    for (int k = 0; k < T; k++) {
      A += la[lid + k];
      B += lb[lid + k];
    }
    la[lid] = rms ? (ACC)0 : A / (ACC)D;
    lb[lid] = B / (ACC)D;
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  if (!active) return;
  const ACC A = la[team * T], B = lb[team * T];
  for (int j = lane; j < D; j += T) {
    ACC g = LOAD(dy, j * Sx);
    if (has_w) g *= LOAD(w, Sw == 1 ? j : j / Sw);
    ACC xh = ((LOAD(x, j * Sx) - K) - M) * rs;
    STORE(dx, j * Sx, rs * (g - A - xh * B));
  }
}

/* ---- channel statistics ---------------------------------------------------- */

/* Walks the elements of channel c of x viewed as [N, C, S] for one lane of a
 * team (stride T over the N*S elements), with BODY seeing the element offset
 * `o` and its (nn, s). S == 1: rows of a matrix; S >= T: a run over s per n
 * (contiguous lanes, no division); else the flat index is divided. */
#define CHAN_LOOP(BODY)                                                         \
  if (S == 1) {                                                                 \
    for (int nn = lane; nn < N; nn += T) {                                      \
      const int s = 0, o = nn * C + c;                                          \
      BODY                                                                      \
    }                                                                           \
  } else if (S >= T) {                                                          \
    for (int nn = 0; nn < N; nn++)                                              \
      for (int s = lane; s < S; s += T) {                                       \
        const int o = (nn * C + c) * S + s;                                     \
        BODY                                                                    \
      }                                                                         \
  } else {                                                                      \
    for (int t = lane; t < N * S; t += T) {                                     \
      const int nn = t / S, s = t - nn * S, o = (nn * C + c) * S + s;           \
      BODY                                                                      \
    }                                                                           \
  }

/* Batch norm in training: team per channel c of x [N, C, S]. Mean and biased
 * variance by Welford on x - K (K = x[0, c, 0]); writes mean [2, C] (K and
 * the shifted mean) and rstd per channel (saved for backward),
 * y = (x - mean) * rstd * w + b, and with upd the new running statistics
 * (1 - mom) * old + mom * stat with the unbiased variance (PyTorch).
 * Local arrays: 3 * L ACCs. */
kernel void chan_fwd(global const REAL *x, int x_off, global const REAL *w, int w_off,
                     global const REAL *b, int b_off, global REAL *y, int y_off,
                     global REAL *mean, int mean_off, global REAL *rstd, int rstd_off,
                     global const REAL *rm, int rm_off, global const REAL *rv, int rv_off,
                     global REAL *nrm, int nrm_off, global REAL *nrv, int nrv_off, int N, int C,
                     int S, int T, int has_w, int has_b, int upd, ACC mom, ACC eps,
                     local ACC *lm, local ACC *lq, local ACC *lc) {
  const int lid = get_local_id(0);
  const int team = lid / T, lane = lid - team * T;
  const int c = get_group_id(0) * (get_local_size(0) / T) + team;
  const bool active = c < C;
  x += x_off;
  y += y_off;
  ACC m = 0, q = 0, cnt = 0;
  const ACC K = active ? LOAD(x, c * S) : (ACC)0; /* the channel's pivot */
  if (active) {
    CHAN_LOOP({
      ACC v = LOAD(x, o) - K;
      cnt += (ACC)1;
      ACC d = v - m;
      m += d / cnt;
      q += d * (v - m);
    })
  }
  lm[lid] = m;
  lq[lid] = q;
  lc[lid] = cnt;
  barrier(CLK_LOCAL_MEM_FENCE);
  if (active && lane == 0) {
    ACC Q, n;
    ACC M = welford_merge(lm + lid, lq + lid, lc + lid, T, &Q, &n);
    ACC var = Q / n;
    ACC rs = rsqrt(var + eps);
    STORE(mean, mean_off + c, K);
    STORE(mean, mean_off + C + c, M);
    STORE(rstd, rstd_off + c, rs);
    if (upd) {
      STORE(nrm, nrm_off + c, (((ACC)1 - mom) * LOAD(rm, rm_off + c) + mom * (K + M)));
      STORE(nrv, nrv_off + c, (((ACC)1 - mom) * LOAD(rv, rv_off + c) + mom * (Q / (n - (ACC)1))));
    }
    ACC a = has_w ? rs * LOAD(w, w_off + c) : rs;
    lq[lid] = a;
    lc[lid] = (has_b ? LOAD(b, b_off + c) : (ACC)0) - M * a; /* ((x - K) - M) a + b */
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  if (!active) return;
  const ACC a = lq[team * T], bb = lc[team * T];
  CHAN_LOOP({ STORE(y, o, (LOAD(x, o) - K) * a + bb); })
}

/* Channel sums of a norm's backward: team per channel c of x/dy [N, C, S].
 * The statistic of element (nn, c, s) is si = nn*Gn + (c/Cg)*Gc + s*Gs
 * (batch norm: c; group norm [N, C, S]: nn*G + c/Cg; layer norm as
 * [rows, D, 1]: nn; channel layer norm: nn*S + s); xhat = ((x - mean[si]) -
 * mean[si + mlo]) * rstd[si] (pivot and shifted mean; mlo 0: no shifted
 * mean; has_mean 0: x * rstd[si], RMS). Writes db[c] = sum dy and
 * dw[c] = sum dy * xhat where requested. With want_dx (batch norm in
 * training, si = c) also dx = w*rstd*(dy - mean(dy) - xhat*mean(dy*xhat)).
 * Local arrays: 2 * L ACCs. */
kernel void chan_bwd(global const REAL *x, int x_off, global const REAL *dy, int dy_off,
                     global const REAL *mean, int mean_off, global const REAL *rstd, int rstd_off,
                     global const REAL *w, int w_off, global REAL *dx, int dx_off,
                     global REAL *dw, int dw_off, global REAL *db, int db_off, int N, int C, int S,
                     int T, int Gn, int Cg, int Gc, int Gs, int has_mean, int mlo, int has_w,
                     int want_dx, int want_dw, int want_db, local ACC *la, local ACC *lb) {
  const int lid = get_local_id(0);
  const int team = lid / T, lane = lid - team * T;
  const int c = get_group_id(0) * (get_local_size(0) / T) + team;
  const bool active = c < C;
  x += x_off;
  dy += dy_off;
  mean += mean_off;
  rstd += rstd_off;
  const int cpart = active ? (c / Cg) * Gc : 0;
  ACC sa = 0, sb = 0;
  if (active) {
    if (Gn == 0 && Gs == 0) { /* one statistic per channel (batch norm) */
      const ACC K = has_mean ? LOAD(mean, cpart) : (ACC)0, rs = LOAD(rstd, cpart);
      const ACC M = has_mean && mlo ? LOAD(mean, cpart + mlo) : (ACC)0;
      CHAN_LOOP({
        ACC g = LOAD(dy, o);
        sa += g;
        sb += g * (((LOAD(x, o) - K) - M) * rs);
      })
    } else {
      CHAN_LOOP({
        const int si = nn * Gn + cpart + s * Gs;
        ACC g = LOAD(dy, o);
        ACC K = has_mean ? LOAD(mean, si) : (ACC)0;
        ACC M = has_mean && mlo ? LOAD(mean, si + mlo) : (ACC)0;
        sa += g;
        sb += g * (((LOAD(x, o) - K) - M) * LOAD(rstd, si));
      })
    }
  }
  la[lid] = sa;
  lb[lid] = sb;
  barrier(CLK_LOCAL_MEM_FENCE);
  if (active && lane == 0) {
    ACC A = 0, B = 0;
    for (int k = 0; k < T; k++) {
      A += la[lid + k];
      B += lb[lid + k];
    }
    if (want_db) STORE(db, db_off + c, A);
    if (want_dw) STORE(dw, dw_off + c, B);
    la[lid] = A / (ACC)(N * S);
    lb[lid] = B / (ACC)(N * S);
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  if (!active || !want_dx) return;
  const ACC B = lb[team * T];
  const ACC K = has_mean ? LOAD(mean, cpart) : (ACC)0, rs = LOAD(rstd, cpart);
  const ACC M = has_mean && mlo ? LOAD(mean, cpart + mlo) : (ACC)0;
  const ACC k = has_w ? rs * LOAD(w, w_off + c) : rs;
  const ACC A = la[team * T] - M * rs * B; /* xhat = (x - K) rs - M rs */
  dx += dx_off;
  CHAN_LOOP({
    ACC xh = (LOAD(x, o) - K) * rs;
    STORE(dx, o, k * (LOAD(dy, o) - A - xh * B));
  })
}

/* y = (x - m[c]) * a[c] + b[c] on x [N, C, S] (evaluation-mode batch and
 * instance norm: m the running mean, a = weight / sqrt(running_var + eps);
 * also the input gradient dy * a). m and b are optional (has_m, has_b);
 * with mlo a batch norm's saved [2, C] mean: m[c] the pivot, m[mlo + c] the
 * shifted mean, folded into b.
 * Work-item i takes `chunk`-th part of one (n, c) plane: a contiguous run
 * per work-item (vectorised by PoCL across the run's neighbours), the
 * channel constants loaded once. */
kernel void chan_affine(global const REAL *x, int x_off, global const REAL *m, int m_off,
                        global const REAL *a, int a_off, global const REAL *b, int b_off,
                        global REAL *y, int y_off, int planes, int C, int S, int chunks,
                        int has_m, int mlo, int has_b) {
  const int i = get_global_id(0);
  if (i >= planes * chunks) return;
  const int p = i / chunks, k = i - p * chunks;
  const int len = (S + chunks - 1) / chunks;
  const int s0 = k * len, s1 = min(S, s0 + len);
  const int c = p % C;
  const ACC mv = has_m ? LOAD(m, m_off + c) : (ACC)0;
  const ACC av = LOAD(a, a_off + c);
  const ACC bv = (has_b ? LOAD(b, b_off + c) : (ACC)0) - (mlo ? LOAD(m, m_off + mlo + c) * av : (ACC)0);
  x += x_off + p * S;
  y += y_off + p * S;
  for (int s = s0; s < s1; s++) STORE(y, s, (LOAD(x, s) - mv) * av + bv);
}

/* ---- CPU variants: one work-item per statistic, explicit vectors ------------
 *
 * On PoCL the team kernels above measured 20-40x off the bytes-moved limit:
 * the per-element division of Welford stays scalar and the strided lanes
 * do not vectorise. These variants give a whole statistic to one work-item
 * and walk contiguous runs with explicit VW-wide vectors (float16 / double8:
 * one AVX-512 register), with Welford per vector lane (the lanes share the
 * count, so the division is one scalar reciprocal per VW elements) merged by
 * Chan's formula; no local memory and no barriers. Channel statistics are
 * split into chunks (partials per (channel, chunk), then a merge kernel),
 * and the per-element work of batch norm is a separate streaming kernel.
 * Storage is ACC here (f32, f64), so vloads give ACC vectors directly. */

#ifdef LAM_F64
#define VW 8
#define VACC double8
#define VLOAD(p) VLOAD8(0, p)
#define VSTORE(v, p) VSTORE8(v, 0, p)
#define VSUM(v) ((((v).s0 + (v).s1) + ((v).s2 + (v).s3)) + (((v).s4 + (v).s5) + ((v).s6 + (v).s7)))
#else
#define VW 16
#define VACC float16
#define VLOAD(p) VLOAD16(0, p)
#define VSTORE(v, p) VSTORE16(v, 0, p)
#define VSUM(v)                                                                          \
  (((((v).s0 + (v).s1) + ((v).s2 + (v).s3)) + (((v).s4 + (v).s5) + ((v).s6 + (v).s7))) + \
   ((((v).s8 + (v).s9) + ((v).sa + (v).sb)) + (((v).sc + (v).sd) + ((v).se + (v).sf))))
#endif

/* Merges a Welford partial (nb, mb, qb) into (n, m, q). */
inline void chan_merge1(ACC *n, ACC *m, ACC *q, ACC nb, ACC mb, ACC qb) {
  if (nb == (ACC)0) return;
  ACC nn = *n + nb, d = mb - *m;
  *m += d * (nb / nn);
  *q += qb + d * d * (*n * nb / nn);
  *n = nn;
}

/* Welford over p[0..len) - K (the pivot) merged into (n, m, q). */
inline void welford_run(global const REAL *p, int len, ACC K, ACC *n, ACC *m, ACC *q) {
  VACC vm = 0, vq = 0;
  ACC c = 0;
  int j = 0;
  for (; j + VW <= len; j += VW) {
    VACC v = VLOAD(p + j) - K;
    c += (ACC)1;
    VACC d = v - vm;
    vm += d * ((ACC)1 / c);
    vq += d * (v - vm);
  }
  if (c > (ACC)0) {
    ACC bm = VSUM(vm) / (ACC)VW;
    VACC dm = vm - bm;
    chan_merge1(n, m, q, c * (ACC)VW, bm, VSUM(vq) + c * VSUM(dm * dm));
  }
  for (; j < len; j++) {
    ACC v = LOAD(p, j) - K;
    *n += (ACC)1;
    ACC d = v - *m;
    *m += d / *n;
    *q += d * (v - *m);
  }
}

/* Sum of squares of p[0..len). */
inline ACC sumsq_run(global const REAL *p, int len) {
  VACC a = 0;
  int j = 0;
  for (; j + VW <= len; j += VW) {
    VACC v = VLOAD(p + j);
    a += v * v;
  }
  ACC t = VSUM(a);
  for (; j < len; j++) t += LOAD(p, j) * LOAD(p, j);
  return t;
}

/* y[j] = ((x[j] - K) - M) * rs * w[j] + b[j] for j < len (w/b optional). */
inline void norm_run(global const REAL *x, global REAL *y, global const REAL *w,
                     global const REAL *b, int len, int has_w, int has_b, ACC K, ACC M, ACC rs) {
  int j = 0;
  if (has_w && has_b) {
    for (; j + VW <= len; j += VW)
      VSTORE(((VLOAD(x + j) - K) - M) * rs * VLOAD(w + j) + VLOAD(b + j), y + j);
  } else if (has_w) {
    for (; j + VW <= len; j += VW) VSTORE(((VLOAD(x + j) - K) - M) * rs * VLOAD(w + j), y + j);
  } else if (has_b) {
    for (; j + VW <= len; j += VW) VSTORE(((VLOAD(x + j) - K) - M) * rs + VLOAD(b + j), y + j);
  } else {
    for (; j + VW <= len; j += VW) VSTORE(((VLOAD(x + j) - K) - M) * rs, y + j);
  }
  for (; j < len; j++) {
    ACC v = ((LOAD(x, j) - K) - M) * rs;
    if (has_w) v *= LOAD(w, j);
    if (has_b) v += LOAD(b, j);
    STORE(y, j, v);
  }
}

/* Row norm forward, one work-item per row; geometry as rownorm_fwd. */
kernel void rownorm_fwd_wi(global const REAL *x, int x_off, global const REAL *w, int w_off,
                           global const REAL *b, int b_off, global REAL *y, int y_off,
                           global REAL *mean, int mean_off, global REAL *rstd, int rstd_off,
                           int rows, int D, int Sx, int rms, int has_w, int has_b, int G, int Cg,
                           int Sw, ACC eps) {
  const int r = get_global_id(0);
  if (r >= rows) return;
  const int n = r / Sx;
  const int base = n * D * Sx + (r - n * Sx);
  x += x_off + base;
  y += y_off + base;
  const int goff = (r % G) * Cg;
  w += w_off + goff;
  b += b_off + goff;
  ACC cnt = 0, M = 0, Q = 0;
  const ACC K = rms ? (ACC)0 : LOAD(x, 0); /* the row's pivot */
  if (Sx == 1) {
    if (rms) Q = sumsq_run(x, D);
    else welford_run(x, D, K, &cnt, &M, &Q);
  } else { /* strided (channel layer norm): neighbouring work-items are neighbours in memory */
    for (int j = 0; j < D; j++) {
      ACC v = LOAD(x, j * Sx) - K;
      if (rms) {
        Q += v * v;
      } else {
        cnt += (ACC)1;
        ACC d = v - M;
        M += d / cnt;
        Q += d * (v - M);
      }
    }
  }
  const ACC rs = rsqrt(Q / (ACC)D + eps);
  if (!rms) {
    STORE(mean, mean_off + r, K);
    STORE(mean, mean_off + rows + r, M);
  }
  STORE(rstd, rstd_off + r, rs);
  if (Sx != 1) {
    for (int j = 0; j < D; j++) {
      ACC v = ((LOAD(x, j * Sx) - K) - M) * rs;
      if (has_w) v *= LOAD(w, j);
      if (has_b) v += LOAD(b, j);
      STORE(y, j * Sx, v);
    }
  } else if (Sw == 1) {
    norm_run(x, y, w, b, D, has_w, has_b, K, M, rs);
  } else { /* one affine value per run of Sw elements (group / instance norm) */
    for (int cc = 0; cc < D / Sw; cc++) {
      const ACC a = has_w ? rs * LOAD(w, cc) : rs;
      const ACC bb = (has_b ? LOAD(b, cc) : (ACC)0) - M * a; /* ((x - K) - M) a + b */
      global const REAL *xc = x + cc * Sw;
      global REAL *yc = y + cc * Sw;
      int j = 0;
      for (; j + VW <= Sw; j += VW) VSTORE((VLOAD(xc + j) - K) * a + bb, yc + j);
      for (; j < Sw; j++) STORE(yc, j, (LOAD(xc, j) - K) * a + bb);
    }
  }
}

/* Row norm input gradient, one work-item per row; as rownorm_bwd. */
kernel void rownorm_bwd_wi(global const REAL *x, int x_off, global const REAL *dy, int dy_off,
                           global const REAL *w, int w_off, global const REAL *mean, int mean_off,
                           global const REAL *rstd, int rstd_off, global REAL *dx, int dx_off,
                           int rows, int D, int Sx, int rms, int has_w, int G, int Cg, int Sw) {
  const int r = get_global_id(0);
  if (r >= rows) return;
  const int n = r / Sx;
  const int base = n * D * Sx + (r - n * Sx);
  x += x_off + base;
  dy += dy_off + base;
  dx += dx_off + base;
  w += w_off + (r % G) * Cg;
  const ACC K = rms ? (ACC)0 : LOAD(mean, mean_off + r), rs = LOAD(rstd, rstd_off + r);
  const ACC M = rms ? (ACC)0 : LOAD(mean, mean_off + rows + r);
  ACC A = 0, B = 0;
  if (Sx != 1) {
    for (int j = 0; j < D; j++) {
      ACC g = LOAD(dy, j * Sx) * (has_w ? LOAD(w, j) : (ACC)1);
      A += g;
      B += g * ((LOAD(x, j * Sx) - K) - M);
    }
  } else {
    /* runs of Sw elements sharing one weight (Sw = D: none or per element) */
    const int run = Sw == 1 ? D : Sw;
    for (int cc = 0; cc < D / run; cc++) {
      global const REAL *xc = x + cc * run, *gc = dy + cc * run;
      const bool pw = has_w && Sw == 1;
      const ACC wc = has_w && Sw != 1 ? LOAD(w, cc) : (ACC)1;
      VACC va = 0, vb = 0;
      int j = 0;
      for (; j + VW <= run; j += VW) {
        VACC g = VLOAD(gc + j);
        if (pw) g *= VLOAD(w + j);
        va += g;
        vb += g * ((VLOAD(xc + j) - K) - M);
      }
      ACC ta = VSUM(va), tb = VSUM(vb);
      for (; j < run; j++) {
        ACC g = LOAD(gc, j) * (pw ? LOAD(w, j) : (ACC)1);
        ta += g;
        tb += g * ((LOAD(xc, j) - K) - M);
      }
      A += ta * wc;
      B += tb * wc;
    }
  }
  /* dx = rs * (g - A/D - xhat * B'/D) with xhat = ((x - K) - M) rs, B' = B rs;
   * the M term goes into a */
  const ACC bq = B * rs * rs / (ACC)D, a = (rms ? (ACC)0 : A / (ACC)D) - M * bq;
  if (Sx != 1) {
    for (int j = 0; j < D; j++) {
      ACC g = LOAD(dy, j * Sx) * (has_w ? LOAD(w, j) : (ACC)1);
      STORE(dx, j * Sx, rs * (g - a - (LOAD(x, j * Sx) - K) * bq));
    }
    return;
  }
  const int run = Sw == 1 ? D : Sw;
  for (int cc = 0; cc < D / run; cc++) {
    global const REAL *xc = x + cc * run, *gc = dy + cc * run;
    global REAL *dc = dx + cc * run;
    const bool pw = has_w && Sw == 1;
    const ACC wc = has_w && Sw != 1 ? LOAD(w, cc) : (ACC)1;
    int j = 0;
    for (; j + VW <= run; j += VW) {
      VACC g = VLOAD(gc + j) * wc;
      if (pw) g *= VLOAD(w + j);
      VSTORE(rs * (g - a - (VLOAD(xc + j) - K) * bq), dc + j);
    }
    for (; j < run; j++) {
      ACC g = LOAD(gc, j) * wc * (pw ? LOAD(w, j) : (ACC)1);
      STORE(dc, j, rs * (g - a - (LOAD(xc, j) - K) * bq));
    }
  }
}

/* Partial channel statistics of x [N, C, S] (and dy): work-item i takes
 * channel c = i % C and chunk p = i / C of the channel's N*S elements (flat
 * index t = n*S + s, chunk [p*len, (p+1)*len)), walking each plane's run
 * with vectors; for S == 1 see below (VW channels per work-item). mode 0: Welford
 * partials (count, mean, M2) of x - K (K = x[0, c, 0], the channel's pivot:
 * every chunk shifts by the same K) into part [3, P, C]; mode 1: sums of dy
 * and dy*((x - mean[si]) - mean[si + mlo])*rstd[si] (statistic index as
 * chan_bwd; mlo 0: no shifted mean) into part [2, P, C]. */
kernel void chan_part_wi(global const REAL *x, int x_off, global const REAL *dy, int dy_off,
                         global const REAL *mean, int mean_off, global const REAL *rstd,
                         int rstd_off, global REAL *part, int part_off, int N, int C, int S,
                         int P, int len, int mode, int Gn, int Cg, int Gc, int Gs, int has_mean,
                         int mlo) {
  const int i = get_global_id(0);
  x += x_off;
  dy += dy_off;
  mean += mean_off;
  rstd += rstd_off;
  part += part_off;
  if (S == 1) {
    /* [N, C] rows: work-item p takes rows [p*len, (p+1)*len) whole
     * (contiguous vector loads) and accumulates every channel's partial in
     * its row of `part` (C values per quantity: stays in the L1 cache). The
     * statistic is per row (Gc == 0), per channel (batch norm) or per group
     * of channels (group norm of [N, C]: the scalar path). */
    if (i >= P) return;
    const int p = i, t0 = p * len, t1 = min(N, t0 + len);
    global REAL *p0 = part + p * C, *p1 = part + (P + p) * C, *p2 = part + (2 * P + p) * C;
    for (int c = 0; c < C; c++) {
      STORE(p0, c, (ACC)0);
      STORE(p1, c, (ACC)0);
      if (mode == 0) STORE(p2, c, (ACC)0);
    }
    const bool per_row = Gc == 0, per_chan = Gn == 0 && Cg == 1;
    const bool hm = mode == 1 && has_mean, hlo = hm && mlo;
    for (int t = t0; t < t1; t++) {
      global const REAL *xr = x + t * C, *gr = dy + t * C;
      const ACC inv = (ACC)1 / (ACC)(t - t0 + 1);
      const ACC Kr = per_row && hm ? LOAD(mean, t * Gn) : (ACC)0;
      const ACC Mr = per_row && hlo ? LOAD(mean, t * Gn + mlo) : (ACC)0;
      const ACC Rr = per_row && mode == 1 ? LOAD(rstd, t * Gn) : (ACC)0;
      int c = 0;
      if (mode == 0) { /* Welford per channel on x - x[0]; every channel has the same count */
        for (; c + VW <= C; c += VW) {
          VACC v = VLOAD(xr + c) - VLOAD(x + c), m = VLOAD(p1 + c), d = v - m;
          m += d * inv;
          VSTORE(m, p1 + c);
          VSTORE(VLOAD(p2 + c) + d * (v - m), p2 + c);
        }
        for (; c < C; c++) {
          ACC v = LOAD(xr, c) - LOAD(x, c), m = LOAD(p1, c), d = v - m;
          m += d * inv;
          STORE(p1, c, m);
          STORE(p2, c, LOAD(p2, c) + d * (v - m));
        }
      } else if (per_row || per_chan) {
        for (; c + VW <= C; c += VW) {
          VACC g = VLOAD(gr + c), xh;
          if (per_row) {
            xh = ((VLOAD(xr + c) - Kr) - Mr) * Rr;
          } else {
            VACC K = hm ? VLOAD(mean + c) : (VACC)0, M = hlo ? VLOAD(mean + mlo + c) : (VACC)0;
            xh = ((VLOAD(xr + c) - K) - M) * VLOAD(rstd + c);
          }
          VSTORE(VLOAD(p0 + c) + g, p0 + c);
          VSTORE(VLOAD(p1 + c) + g * xh, p1 + c);
        }
      }
      for (; c < C && mode == 1; c++) {
        const int si = t * Gn + (c / Cg) * Gc;
        ACC g = LOAD(gr, c);
        ACC K = hm ? LOAD(mean, si) : (ACC)0, M = hlo ? LOAD(mean, si + mlo) : (ACC)0;
        STORE(p0, c, LOAD(p0, c) + g);
        STORE(p1, c, LOAD(p1, c) + g * ((LOAD(xr, c) - K) - M) * LOAD(rstd, si));
      }
    }
    if (mode == 0)
      for (int c = 0; c < C; c++) STORE(p0, c, (ACC)(t1 - t0));
    return;
  }
  if (i >= C * P) return;
  const int c = i % C, p = i / C;
  const int t0 = p * len, t1 = min(N * S, t0 + len);
  const int cpart = (c / Cg) * Gc;
  const ACC K0 = mode == 0 ? LOAD(x, c * S) : (ACC)0; /* the channel's pivot */
  ACC n = 0, m = 0, q = 0, A = 0, B = 0;
  int t = t0;
  while (t < t1) {
    const int nn = t / S, s = t - nn * S;
    const int run = min(S - s, t1 - t);
    const int o = (nn * C + c) * S + s;
    if (mode == 0) {
      welford_run(x + o, run, K0, &n, &m, &q);
    } else {
      global const REAL *xp = x + o, *gp = dy + o;
      const int si = nn * Gn + cpart + s * Gs;
      VACC va = 0, vb = 0;
      int j = 0;
      const bool hlo = has_mean && mlo;
      if (Gs == 0) { /* one statistic for the run */
        const ACC K = has_mean ? LOAD(mean, si) : (ACC)0, M = hlo ? LOAD(mean, si + mlo) : (ACC)0;
        for (; j + VW <= run; j += VW) {
          VACC g = VLOAD(gp + j);
          va += g;
          vb += g * ((VLOAD(xp + j) - K) - M);
        }
        ACC tb = VSUM(vb);
        for (; j < run; j++) tb += LOAD(gp, j) * ((LOAD(xp, j) - K) - M);
        B += tb * LOAD(rstd, si);
      } else { /* a statistic per position (channel layer norm: Gs = 1) */
        for (; j + VW <= run; j += VW) {
          VACC g = VLOAD(gp + j);
          VACC K = has_mean ? VLOAD(mean + si + j) : (VACC)0;
          VACC M = hlo ? VLOAD(mean + si + mlo + j) : (VACC)0;
          va += g;
          vb += g * ((VLOAD(xp + j) - K) - M) * VLOAD(rstd + si + j);
        }
        ACC tb = VSUM(vb);
        for (; j < run; j++) {
          ACC K = has_mean ? LOAD(mean, si + j) : (ACC)0, M = hlo ? LOAD(mean, si + mlo + j) : (ACC)0;
          tb += LOAD(gp, j) * ((LOAD(xp, j) - K) - M) * LOAD(rstd, si + j);
        }
        B += tb;
      }
      ACC ta = VSUM(va);
      for (j = run - run % VW; j < run; j++) ta += LOAD(gp, j);
      A += ta;
    }
    t += run;
  }
  if (mode == 0) {
    STORE(part, p * C + c, n);
    STORE(part, (P + p) * C + c, m);
    STORE(part, (2 * P + p) * C + c, q);
  } else {
    STORE(part, p * C + c, A);
    STORE(part, (P + p) * C + c, B);
  }
}

/* Merges the P partials of each channel (one work-item per channel).
 * mode 0 (batch norm forward): mean [2, C] (the pivot x[0, c, 0] and the
 * shifted mean), rstd (saved), a = rstd * w for the normalization, and with
 * upd the running statistics as chan_fwd. mode 1: db = sum dy, dw = sum dy
 * * xhat where wanted, and with want_dx batch norm's dx coefficients coef
 * [3, C]: dx = dy*k + (x - mean[c])*k2 + k0 (k0 takes the shifted mean). */
kernel void chan_merge_wi(global const REAL *part, int part_off, global const REAL *x, int x_off,
                          int S, global const REAL *w, int w_off,
                          global REAL *mean, int mean_off, global REAL *rstd, int rstd_off,
                          global REAL *a, int a_off, global const REAL *rm, int rm_off,
                          global const REAL *rv, int rv_off, global REAL *nrm, int nrm_off,
                          global REAL *nrv, int nrv_off, global REAL *dw, int dw_off,
                          global REAL *db, int db_off, int C, int P, int mode, int has_w, int upd,
                          int want_dw, int want_db, int want_dx, ACC mom, ACC eps, ACC cnt) {
  const int c = get_global_id(0);
  if (c >= C) return;
  part += part_off;
  if (mode == 0) {
    ACC n = 0, m = 0, q = 0;
    for (int p = 0; p < P; p++)
      chan_merge1(&n, &m, &q, LOAD(part, p * C + c), LOAD(part, (P + p) * C + c),
                  LOAD(part, (2 * P + p) * C + c));
    const ACC rs = rsqrt(q / n + eps), K = LOAD(x, x_off + c * S);
    STORE(mean, mean_off + c, K);
    STORE(mean, mean_off + C + c, m);
    STORE(rstd, rstd_off + c, rs);
    STORE(a, a_off + c, (has_w ? rs * LOAD(w, w_off + c) : rs));
    if (upd) {
      STORE(nrm, nrm_off + c, (((ACC)1 - mom) * LOAD(rm, rm_off + c) + mom * (K + m)));
      STORE(nrv, nrv_off + c, (((ACC)1 - mom) * LOAD(rv, rv_off + c) + mom * (q / (n - (ACC)1))));
    }
    return;
  }
  ACC A = 0, B = 0;
  for (int p = 0; p < P; p++) {
    A += LOAD(part, p * C + c);
    B += LOAD(part, (P + p) * C + c);
  }
  if (want_db) STORE(db, db_off + c, A);
  if (want_dw) STORE(dw, dw_off + c, B);
  if (want_dx) { /* mean/rstd are inputs here; `a` receives the coefficients */
    const ACC rs = LOAD(rstd, rstd_off + c), M = LOAD(mean, mean_off + C + c);
    const ACC k = has_w ? rs * LOAD(w, w_off + c) : rs, k2 = -k * rs * B / cnt;
    STORE(a, a_off + c, k);
    STORE(a, a_off + C + c, k2);
    STORE(a, a_off + 2 * C + c, (-k * A / cnt - M * k2)); /* (x - K) k2 - M k2 */
  }
}

/* Batch norm input gradient from the coefficients of chan_merge_wi:
 * dx = dy * k[c] + (x - mean[c]) * k2[c] + k0[c]; work split as chan_affine. */
kernel void chan_bwd_dx(global const REAL *x, int x_off, global const REAL *dy, int dy_off,
                        global const REAL *mean, int mean_off, global const REAL *coef,
                        int coef_off, global REAL *dx, int dx_off, int planes, int C, int S,
                        int chunks) {
  const int i = get_global_id(0);
  if (i >= planes * chunks) return;
  const int p = i / chunks, k = i - p * chunks;
  const int len = (S + chunks - 1) / chunks;
  const int s0 = k * len, s1 = min(S, s0 + len);
  const int c = p % C;
  const ACC M = LOAD(mean, mean_off + c), k1 = LOAD(coef, coef_off + c);
  const ACC k2 = LOAD(coef, coef_off + C + c), k0 = LOAD(coef, coef_off + 2 * C + c);
  x += x_off + p * S;
  dy += dy_off + p * S;
  dx += dx_off + p * S;
  for (int s = s0; s < s1; s++) STORE(dx, s, LOAD(dy, s) * k1 + (LOAD(x, s) - M) * k2 + k0);
}

/* ---- DropBlock ------------------------------------------------------------- */

/* mask = 1 - maxpool(seed, k x k, stride 1, pad k/2) on seed [P, H, W] (u8,
 * 1 = block centre), window rows h - k/2 .. h - k/2 + k - 1 clipped to the
 * plane (Metalhead's dropblock mask; for even k the last output row and
 * column of the padded pool are cut so the mask keeps x's shape). */
kernel void dropblock_mask(global const uchar *seed, int seed_off, global REAL *mask, int mask_off,
                           int n, int H, int W, int k) {
  const int i = get_global_id(0);
  if (i >= n) return;
  const int plane = i / (H * W), rem = i - plane * H * W;
  const int h = rem / W, wc = rem - h * W;
  const int p = k / 2;
  const int h0 = max(h - p, 0), h1 = min(h - p + k, H);
  const int w0 = max(wc - p, 0), w1 = min(wc - p + k, W);
  seed += seed_off + plane * H * W;
  int hit = 0;
  for (int hh = h0; hh < h1; hh++)
    for (int ww = w0; ww < w1; ww++) hit |= seed[hh * W + ww];
  STORE(mask + mask_off, i, hit ? (ACC)0 : (ACC)1);
}

#endif
