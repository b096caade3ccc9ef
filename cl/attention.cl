/* attention.cl: fused scaled-dot-product attention (forward and backward)
 * and its helpers.
 *
 * Designed for PoCL on CPUs first, where a barrier inside a loop costs ~30x
 * and vectorisation happens INSIDE a work-item through explicit vector types
 * (REAL16 is one AVX-512 register): no local memory, no barriers. Like a
 * BLAS micro-kernel, a work-item owns BM query rows and walks the keys in
 * tiles of BN = NV * VW; the score tile (BM x NV vectors) lives in
 * registers, the running max / sum of the online softmax in private scalars
 * and the output rows in a private array (head_dim up to MAX_D). The seq_q x
 * seq_k weights are never written to global memory.
 *
 *  - Score tiles vectorise over keys, so K is read transposed: the host
 *    makes K^T [batch, kv_heads, head_dim, Skp] (Skp = seq_k rounded up to
 *    BN, zero padded) with transpose_pad; that copy is O(seq * head_dim) and
 *    per KV head (grouped-query heads share it, K/V are never repeated).
 *  - P @ V vectorises over head_dim: V rows are read in place (any head and
 *    row stride, so a KV cache's storage is used without a copy).
 *  - Backward (FlashAttention-2 style, recomputing P = exp(s - lse) from the
 *    saved log-sum-exp): sdpa_bwd_dq owns BM query rows (dQ, and dS for a
 *    mask that needs a gradient); sdpa_bwd_dkv owns BM key rows and loops
 *    over the query heads of its group and the queries (dK, dV), reading
 *    Q^T and dO^T, so no atomics are needed and nothing is seq x seq.
 *  - Dropout uses the tensor stream of Philox-4x32-10 (rng.h): the weight of
 *    (b, h, i, j) is kept where W(m) < thr with m = ((b H + h) Sq + i) Sk + j,
 *    which is exactly lam_random_bernoulli(key, 1 - rate, [B, H, Sq, Sk]).
 *  - Masked scores are -inf; exponentials are taken relative to a finite
 *    reference, so a fully masked row has sum 0 and gives zeros, not NaN.
 *
 * That is the CPU layout. GPUs get a second layout of the same kernels
 * (sdpa_fwd_wg, sdpa_bwd_dq_wg, sdpa_bwd_dkv_wg; the ATT_GPU section below):
 * a work-group per block of query (key) rows with the K/V (Q/dO) tiles in
 * local memory. The host picks one per call (src/ops/attention.c). */

#ifdef LAM_F64
#define VW 8
#define IV long8
#define UV uint8
#define CONV_IV convert_long8
#define CONV_RV convert_double8
#define LANES ((IV)(0, 1, 2, 3, 4, 5, 6, 7))
#else
#define VW 16
#define IV int16
#define UV uint16
#define CONV_IV convert_int16
#define CONV_RV convert_float16
#define LANES ((IV)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15))
#endif

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define RV CAT(REAL, VW)
#define VLOAD CAT(vload, VW)
#define VSTORE CAT(vstore, VW)

#define NV 2           /* vectors per score-tile row */
#define BN (NV * VW)   /* keys (forward, dq) or queries (dkv) per tile */
#ifndef BM
#define BM 12           /* rows per work-item */
#endif
#ifndef ATT_MAX_D
#define ATT_MAX_D 128  /* the host asks for 256 (LAM_ATTENTION_FUSED_MAX_HEAD_DIM) when needed */
#endif
#define MAX_D ATT_MAX_D
#define MAX_C (MAX_D / VW)

/* flags (must match src/ops/attention_internal.h) */
#define F_CAUSAL 1
#define F_KEEP 2
#define F_BIAS 4
#define F_ALIBI 8
#define F_DROPOUT 16
#define F_DS 32

#ifdef LAM_F64
inline double hsum_v(double8 v) {
  double4 a = v.lo + v.hi;
  double2 b = a.lo + a.hi;
  return b.x + b.y;
}
inline double hmax_v(double8 v) {
  double4 a = fmax(v.lo, v.hi);
  double2 b = fmax(a.lo, a.hi);
  return fmax(b.x, b.y);
}
#else
inline float hsum_v(float16 v) {
  float8 a = v.lo + v.hi;
  float4 b = a.lo + a.hi;
  float2 c = b.lo + b.hi;
  return c.x + c.y;
}
inline float hmax_v(float16 v) {
  float8 a = fmax(v.lo, v.hi);
  float4 b = fmax(a.lo, a.hi);
  float2 c = fmax(b.lo, b.hi);
  return fmax(c.x, c.y);
}
#endif

/* Philox-4x32-10 as in random.cl (a separate program, so repeated here). */
#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u
inline uint4 att_philox(uint4 c, uint2 k) {
#pragma unroll
  for (int r = 0; r < 10; r++) {
    if (r > 0) {
      k.x += PHILOX_W0;
      k.y += PHILOX_W1;
    }
    ulong p0 = (ulong)PHILOX_M0 * c.x, p1 = (ulong)PHILOX_M1 * c.z;
    c = (uint4)((uint)(p1 >> 32) ^ c.y ^ k.x, (uint)p1, (uint)(p0 >> 32) ^ c.w ^ k.y, (uint)p0);
  }
  return c;
}
/* Word m of the tensor stream: block m >> 2 (64-bit block index in counter
 * words 0 and 1, tag 0), word m & 3. */
inline uint att_word(ulong m, uint k0, uint k1) {
  ulong blk = m >> 2;
  uint4 w = att_philox((uint4)((uint)blk, (uint)(blk >> 32), 0u, 0u), (uint2)(k0, k1));
  /* an array, not a chain of ?: on the components (Oclgrind 21.10 picks the
   * wrong component for that) */
  uint ws[4] = {w.x, w.y, w.z, w.w};
  return ws[m & 3];
}
/* Keep flags (1/0) of the BN consecutive words m0 .. m0 + BN - 1 into out. */
inline void att_keep_run(ulong m0, uint k0, uint k1, uint thr, uint *out) {
  ulong b0 = m0 >> 2;
  int skip = (int)(m0 & 3);
  for (int t = 0; t < (BN + 3 + 3) / 4; t++) {
    ulong blk = b0 + (ulong)t;
    uint4 w = att_philox((uint4)((uint)blk, (uint)(blk >> 32), 0u, 0u), (uint2)(k0, k1));
    uint ws[4] = {w.x, w.y, w.z, w.w};
    for (int e = 0; e < 4; e++) {
      int pos = t * 4 + e - skip;
      if (pos >= 0 && pos < BN) out[pos] = ws[e] < thr ? 1u : 0u;
    }
  }
}

/* Geometry shared by the fused kernels (int16 argument). */
#define GEO_UNPACK                                                                      \
  const int B = geo.s0, H = geo.s1, G = geo.s2, Sq = geo.s3, Sk = geo.s4, Skp = geo.s5, \
            Sqp = geo.s6, D = geo.s7, Dv = geo.s8, q_pos = geo.s9, flags = geo.sa,      \
            k_hs = geo.sb, k_rs = geo.sc, v_hs = geo.sd, v_rs = geo.se, Hkv = geo.sf;   \
  (void)B; (void)Sqp; (void)Skp; (void)Hkv

/* Bias for query row pointer bp (already offset to (b, h, i)) at keys j.. j+VW-1:
 * the key stride of a right-aligned broadcast mask is 1 or 0. */
inline RV att_bias_keys(global const REAL *bp, int jst, int j, int Sk) {
  if (jst == 0) return (RV)(bp[0]);
  if (j + VW <= Sk) return VLOAD(0, bp + j);
  REAL t[VW];
  for (int e = 0; e < VW; e++) t[e] = j + e < Sk ? bp[j + e] : (REAL)0;
  return VLOAD(0, t);
}
/* Bias for key column pointer bp (offset to (b, h, j)) at queries i.. i+VW-1. */
inline RV att_bias_queries(global const REAL *bp, int ist, int i, int Sq) {
  if (ist == 0) return (RV)(bp[0]);
  REAL t[VW];
  for (int e = 0; e < VW; e++) t[e] = i + e < Sq ? bp[(i + e) * ist] : (REAL)0;
  return VLOAD(0, t);
}

/* ---- helpers ------------------------------------------------------------- */

/* x [N, S, Dd] with head stride hs and row stride rs -> y [N, Dd, Sp], zero
 * for s >= S. One work-item per (n, block of VW positions, d), d fastest, so
 * neighbouring work-items read the same rows of x and each writes one
 * vector of y. */
kernel void transpose_pad(global const REAL *x, int x_off, global REAL *y, int y_off, int S,
                          int Dd, int hs, int rs, int Sp, int n) {
  int id = get_global_id(0);
  if (id >= n) return;
  int d = id % Dd, t = id / Dd;
  int nsb = Sp / VW;
  int s0 = (t % nsb) * VW, nn = t / nsb;
  global const REAL *xp = x + x_off + nn * hs + d;
  REAL v[VW];
  for (int e = 0; e < VW; e++) v[e] = s0 + e < S ? xp[(s0 + e) * rs] : (REAL)0;
  VSTORE(VLOAD(0, v), 0, y + y_off + (nn * Dd + d) * Sp + s0);
}

/* Key-padding mask [B, Sk] -> keep flags [B, Skp] (1 / 0, padding 0). */
kernel void keep_u8(global const uchar *m, int m_off, global uchar *y, int y_off, int Sk, int Skp,
                    int n) {
  int id = get_global_id(0);
  if (id >= n) return;
  int j = id % Skp, b = id / Skp;
  y[y_off + id] = j < Sk && m[m_off + b * Sk + j] != 0 ? 1 : 0;
}
kernel void keep_i32(global const int *m, int m_off, global uchar *y, int y_off, int Sk, int Skp,
                     int n) {
  int id = get_global_id(0);
  if (id >= n) return;
  int j = id % Skp, b = id / Skp;
  y[y_off + id] = j < Sk && m[m_off + b * Sk + j] != 0 ? 1 : 0;
}

/* Bool mask -> additive (0 where kept, -inf where not), same shape. */
kernel void mask_to_bias(global const uchar *m, int m_off, global REAL *y, int y_off, int n) {
  int id = get_global_id(0);
  if (id >= n) return;
  y[y_off + id] = m[m_off + id] ? (REAL)0 : (REAL)(-INFINITY);
}

/* Backward preparation over [BH, Sqp]: dl = rowsum(dO * O) and the log-sum-
 * exp with -inf (fully masked rows) replaced by 0; padding rows get 0. */
kernel void sdpa_bwd_prep(global const REAL *o, int o_off, global const REAL *g, int g_off,
                          global const REAL *lse, int lse_off, global REAL *lu, int lu_off,
                          global REAL *dl, int dl_off, int Sq, int Sqp, int Dv, int n) {
  int id = get_global_id(0);
  if (id >= n) return;
  int i = id % Sqp, bh = id / Sqp;
  ACC acc = 0, l = 0;
  if (i < Sq) {
    int row = (bh * Sq + i) * Dv;
    for (int d = 0; d < Dv; d++) acc += LOAD(o + o_off, row + d) * LOAD(g + g_off, row + d);
    l = LOAD(lse + lse_off, bh * Sq + i);
    if (isinf(l)) l = 0;
  }
  STORE(dl + dl_off, id, acc);
  STORE(lu + lu_off, id, l);
}

#ifndef ATT_GPU /* the CPU layout of the fused kernels */

/* ---- score tile (shared by forward and dq) --------------------------------- */

/* s[r][n] = sum_d a[row r][d] * bt[d][j0 + n*VW ..] for BM rows of a (row
 * offsets arow[r], contiguous rows) and a transposed, padded operand. */
#define SCORE_TILE(s, a, arow, bt, ld, Dd)                                        \
  do {                                                                            \
    _Pragma("unroll") for (int r_ = 0; r_ < BM; r_++)                             \
      _Pragma("unroll") for (int n_ = 0; n_ < NV; n_++) s[r_][n_] = (RV)0;        \
    global const REAL *bt_ = (bt);                                                \
    for (int d_ = 0; d_ < (Dd); d_++, bt_ += (ld)) {                              \
      RV kv_[NV];                                                                 \
      _Pragma("unroll") for (int n_ = 0; n_ < NV; n_++) kv_[n_] = VLOAD(n_, bt_); \
      _Pragma("unroll") for (int r_ = 0; r_ < BM; r_++) {                         \
        RV av_ = (RV)((a)[(arow)[r_] + d_]);                                      \
        _Pragma("unroll") for (int n_ = 0; n_ < NV; n_++)                         \
          s[r_][n_] = fma(av_, kv_[n_], s[r_][n_]);                               \
      }                                                                           \
    }                                                                             \
  } while (0)

/* Applies scale, bias, alibi and the masks to score tile s of query rows
 * i0 .. i0+BM-1 and keys j0 ..: masked entries become -inf. */
inline void att_mask_rows(RV s[BM][NV], int i0, int j0, int b, int h, int Sq, int Sk, int Skp,
                          int H, int q_pos, int flags, ACC scale, global const uchar *keep,
                          global const REAL *bias, int4 bst) {
  const ACC slope = (flags & F_ALIBI) ? exp2(-(ACC)8 * (ACC)(h + 1) / (ACC)H) : (ACC)0;
#pragma unroll
  for (int r = 0; r < BM; r++) {
    const int i = i0 + r, ic = min(i, Sq - 1);
    global const REAL *bp = bias + b * bst.x + h * bst.y + ic * bst.z;
#pragma unroll
    for (int n = 0; n < NV; n++) {
      const int j = j0 + n * VW;
      RV x = s[r][n] * scale;
      IV jv = LANES + (IV)j;
      if (flags & F_BIAS) x += att_bias_keys(bp, bst.w, j, Sk);
      if (flags & F_ALIBI) x -= (RV)slope * fabs(CONV_RV(jv - (IV)(q_pos + i)));
      IV dead = jv >= (IV)Sk;
      if (flags & F_CAUSAL) dead |= jv > (IV)(q_pos + i);
      if (flags & F_KEEP) dead |= CONV_IV(CAT(vload, VW)(0, keep + b * Skp + j)) == (IV)0;
      s[r][n] = select(x, (RV)(-INFINITY), dead);
    }
  }
}

/* ---- forward ------------------------------------------------------------------ */

/* One work-item per (b, h, block of BM query rows): out rows and their
 * log-sum-exp. kt: K^T [B, Hkv, D, Skp]; v read in place (head/row strides). */
kernel void sdpa_fwd(global const REAL *q, int q_off, global const REAL *kt, int kt_off,
                     global const REAL *v, int v_off, global REAL *o, int o_off,
                     global REAL *lse, int lse_off, global const uchar *keep, int keep_off,
                     global const REAL *bias, int bias_off, int16 geo, int4 bst, ACC scale,
                     uint k0, uint k1, uint thr, ACC dscale, int n_items) {
  const int gid = get_global_id(0);
  if (gid >= n_items) return;
  GEO_UNPACK;
  const int nblk = (Sq + BM - 1) / BM;
  const int bh = gid / nblk, i0 = (gid % nblk) * BM;
  const int b = bh / H, h = bh % H, hk = h / G;
  const int nr = min(BM, Sq - i0);
  global const REAL *qp = q + q_off + bh * Sq * D;
  global const REAL *ktp = kt + kt_off + (b * Hkv + hk) * D * Skp;
  global const REAL *vp = v + v_off + (b * Hkv + hk) * v_hs;
  keep += keep_off;
  bias += bias_off;
  int qrow[BM];
  ACC m[BM], l[BM], alpha[BM];
#pragma unroll
  for (int r = 0; r < BM; r++) {
    qrow[r] = min(i0 + r, Sq - 1) * D;
    m[r] = -INFINITY;
    l[r] = 0;
  }
  const int ncf = Dv / VW, nc = (Dv + VW - 1) / VW;
  RV oacc[BM][MAX_C];
  for (int c = 0; c < nc; c++)
#pragma unroll
    for (int r = 0; r < BM; r++) oacc[r][c] = (RV)0;
  REAL pbuf[BM * BN];
  uint kbuf[BN];

  int jend = Sk;
  if (flags & F_CAUSAL) jend = min(Sk, q_pos + i0 + nr);
  for (int j0 = 0; j0 < jend; j0 += BN) {
    RV s[BM][NV];
    SCORE_TILE(s, qp, qrow, ktp + j0, Skp, D);
    att_mask_rows(s, i0, j0, b, h, Sq, Sk, Skp, H, q_pos, flags, scale, keep, bias, bst);
#pragma unroll
    for (int r = 0; r < BM; r++) {
      ACC mx = hmax_v(fmax(s[r][0], s[r][1]));
      ACC mnew = fmax(m[r], mx);
      ACC muse = isinf(mnew) ? (ACC)0 : mnew;
      alpha[r] = exp(m[r] - muse);
      RV p0 = exp(s[r][0] - (RV)muse), p1 = exp(s[r][1] - (RV)muse);
      l[r] = l[r] * alpha[r] + hsum_v(p0 + p1);
      m[r] = mnew;
      if (flags & F_DROPOUT) {
        const int ic = min(i0 + r, Sq - 1);
        att_keep_run(((ulong)(bh * Sq + ic)) * (ulong)Sk + (ulong)j0, k0, k1, thr, kbuf);
        p0 = select((RV)0, p0 * dscale, CONV_IV(VLOAD(0, kbuf)) != (IV)0);
        p1 = select((RV)0, p1 * dscale, CONV_IV(VLOAD(1, kbuf)) != (IV)0);
      }
      VSTORE(p0, 0, pbuf + r * BN);
      VSTORE(p1, 1, pbuf + r * BN);
    }
    const int nj = min(BN, Sk - j0);
    global const REAL *vt = vp + j0 * v_rs;
    for (int c = 0; c < ncf; c++) {
      RV acc[BM];
#pragma unroll
      for (int r = 0; r < BM; r++) acc[r] = oacc[r][c] * alpha[r];
      global const REAL *vr = vt + c * VW;
      for (int jj = 0; jj < nj; jj++, vr += v_rs) {
        RV vv = VLOAD(0, vr);
#pragma unroll
        for (int r = 0; r < BM; r++) acc[r] = fma((RV)pbuf[r * BN + jj], vv, acc[r]);
      }
#pragma unroll
      for (int r = 0; r < BM; r++) oacc[r][c] = acc[r];
    }
    if (ncf < nc) { /* head_dim not a multiple of VW: guarded loads */
      RV acc[BM];
#pragma unroll
      for (int r = 0; r < BM; r++) acc[r] = oacc[r][ncf] * alpha[r];
      for (int jj = 0; jj < nj; jj++) {
        REAL t[VW];
        for (int e = 0; e < VW; e++) t[e] = ncf * VW + e < Dv ? vt[jj * v_rs + ncf * VW + e] : (REAL)0;
        RV vv = VLOAD(0, t);
#pragma unroll
        for (int r = 0; r < BM; r++) acc[r] = fma((RV)pbuf[r * BN + jj], vv, acc[r]);
      }
#pragma unroll
      for (int r = 0; r < BM; r++) oacc[r][ncf] = acc[r];
    }
  }
  for (int r = 0; r < nr; r++) {
    const int i = i0 + r;
    /* jend can stop before the tiles that would rescale by alpha = 1 */
    ACC inv = l[r] > 0 ? (ACC)1 / l[r] : (ACC)0;
    global REAL *orow = o + o_off + (bh * Sq + i) * Dv;
    for (int c = 0; c < ncf; c++) VSTORE(oacc[r][c] * inv, 0, orow + c * VW);
    if (ncf < nc) {
      REAL t[VW];
      VSTORE(oacc[r][ncf] * inv, 0, t);
      for (int e = 0; ncf * VW + e < Dv; e++) orow[ncf * VW + e] = t[e];
    }
    lse[lse_off + bh * Sq + i] = l[r] > 0 ? (isinf(m[r]) ? (ACC)0 : m[r]) + log(l[r]) : (ACC)(-INFINITY);
  }
}

/* ---- backward: dQ (and dS for a mask gradient) -------------------------------- */

/* One work-item per (b, h, block of BM query rows). vt: V^T [B, Hkv, Dv, Skp];
 * k read in place; lu/dl padded [BH, Sqp] from sdpa_bwd_prep. */
kernel void sdpa_bwd_dq(global const REAL *q, int q_off, global const REAL *kt, int kt_off,
                        global const REAL *vt, int vt_off, global const REAL *k, int k_off,
                        global const REAL *g, int g_off, global const REAL *lu, int lu_off,
                        global const REAL *dl, int dl_off, global const uchar *keep, int keep_off,
                        global const REAL *bias, int bias_off, global REAL *dq, int dq_off,
                        global REAL *ds, int ds_off, int16 geo, int4 bst, ACC scale, uint k0,
                        uint k1, uint thr, ACC dscale, int n_items) {
  const int gid = get_global_id(0);
  if (gid >= n_items) return;
  GEO_UNPACK;
  const int nblk = (Sq + BM - 1) / BM;
  const int bh = gid / nblk, i0 = (gid % nblk) * BM;
  const int b = bh / H, h = bh % H, hk = h / G;
  const int nr = min(BM, Sq - i0);
  global const REAL *qp = q + q_off + bh * Sq * D;
  global const REAL *gp = g + g_off + bh * Sq * Dv;
  global const REAL *ktp = kt + kt_off + (b * Hkv + hk) * D * Skp;
  global const REAL *vtp = vt + vt_off + (b * Hkv + hk) * Dv * Skp;
  global const REAL *kp = k + k_off + (b * Hkv + hk) * k_hs;
  keep += keep_off;
  bias += bias_off;
  int qrow[BM], grow[BM];
  ACC lr[BM], dr[BM];
#pragma unroll
  for (int r = 0; r < BM; r++) {
    const int ic = min(i0 + r, Sq - 1);
    qrow[r] = ic * D;
    grow[r] = ic * Dv;
    lr[r] = LOAD(lu + lu_off, bh * Sqp + ic);
    dr[r] = LOAD(dl + dl_off, bh * Sqp + ic);
  }
  const int ncf = D / VW, nc = (D + VW - 1) / VW;
  RV acc_q[BM][MAX_C];
  for (int c = 0; c < nc; c++)
#pragma unroll
    for (int r = 0; r < BM; r++) acc_q[r][c] = (RV)0;
  REAL pbuf[BM * BN];
  uint kbuf[BN];

  int jend = Sk;
  if (flags & F_CAUSAL) jend = min(Sk, q_pos + i0 + nr);
  for (int j0 = 0; j0 < jend; j0 += BN) {
    RV s[BM][NV];
    SCORE_TILE(s, qp, qrow, ktp + j0, Skp, D);
    att_mask_rows(s, i0, j0, b, h, Sq, Sk, Skp, H, q_pos, flags, scale, keep, bias, bst);
#pragma unroll
    for (int r = 0; r < BM; r++) {
      VSTORE(exp(s[r][0] - (RV)lr[r]), 0, pbuf + r * BN);
      VSTORE(exp(s[r][1] - (RV)lr[r]), 1, pbuf + r * BN);
    }
    RV dp[BM][NV];
    SCORE_TILE(dp, gp, grow, vtp + j0, Skp, Dv);
#pragma unroll
    for (int r = 0; r < BM; r++) {
      if (flags & F_DROPOUT) {
        const int ic = min(i0 + r, Sq - 1);
        att_keep_run(((ulong)(bh * Sq + ic)) * (ulong)Sk + (ulong)j0, k0, k1, thr, kbuf);
        dp[r][0] = select((RV)0, dp[r][0] * dscale, CONV_IV(VLOAD(0, kbuf)) != (IV)0);
        dp[r][1] = select((RV)0, dp[r][1] * dscale, CONV_IV(VLOAD(1, kbuf)) != (IV)0);
      }
      RV p0 = VLOAD(0, pbuf + r * BN), p1 = VLOAD(1, pbuf + r * BN);
      RV ds0 = p0 * (dp[r][0] - (RV)dr[r]), ds1 = p1 * (dp[r][1] - (RV)dr[r]);
      VSTORE(ds0, 0, pbuf + r * BN);
      VSTORE(ds1, 1, pbuf + r * BN);
    }
    const int nj = min(BN, Sk - j0);
    if (flags & F_DS) { /* dS rows for the mask gradient ([BH, Sq, Sk], zero past jend) */
      for (int r = 0; r < nr; r++) {
        global REAL *dsr = ds + ds_off + (bh * Sq + i0 + r) * Sk + j0;
        for (int jj = 0; jj < nj; jj++) dsr[jj] = pbuf[r * BN + jj];
      }
    }
    global const REAL *kt0 = kp + j0 * k_rs;
    for (int c = 0; c < ncf; c++) {
      RV acc[BM];
#pragma unroll
      for (int r = 0; r < BM; r++) acc[r] = acc_q[r][c];
      global const REAL *kr = kt0 + c * VW;
      for (int jj = 0; jj < nj; jj++, kr += k_rs) {
        RV kv = VLOAD(0, kr);
#pragma unroll
        for (int r = 0; r < BM; r++) acc[r] = fma((RV)pbuf[r * BN + jj], kv, acc[r]);
      }
#pragma unroll
      for (int r = 0; r < BM; r++) acc_q[r][c] = acc[r];
    }
    if (ncf < nc) {
      RV acc[BM];
#pragma unroll
      for (int r = 0; r < BM; r++) acc[r] = acc_q[r][ncf];
      for (int jj = 0; jj < nj; jj++) {
        REAL t[VW];
        for (int e = 0; e < VW; e++) t[e] = ncf * VW + e < D ? kt0[jj * k_rs + ncf * VW + e] : (REAL)0;
        RV kv = VLOAD(0, t);
#pragma unroll
        for (int r = 0; r < BM; r++) acc[r] = fma((RV)pbuf[r * BN + jj], kv, acc[r]);
      }
#pragma unroll
      for (int r = 0; r < BM; r++) acc_q[r][ncf] = acc[r];
    }
  }
  if ((flags & F_DS) && jend < Sk) { /* causal: the rest of the dS rows is zero */
    for (int r = 0; r < nr; r++) {
      global REAL *dsr = ds + ds_off + (bh * Sq + i0 + r) * Sk;
      for (int j = max(jend, 0); j < Sk; j++) dsr[j] = 0;
    }
  }
  for (int r = 0; r < nr; r++) {
    global REAL *dqr = dq + dq_off + (bh * Sq + i0 + r) * D;
    for (int c = 0; c < ncf; c++) VSTORE(acc_q[r][c] * scale, 0, dqr + c * VW);
    if (ncf < nc) {
      REAL t[VW];
      VSTORE(acc_q[r][ncf] * scale, 0, t);
      for (int e = 0; ncf * VW + e < D; e++) dqr[ncf * VW + e] = t[e];
    }
  }
}

/* ---- backward: dK, dV ----------------------------------------------------------- */

/* acc[r][c] += sum_ii w[r][ii] * x[row ii][c] over ni rows (row stride rs) for
 * the chunks of a Dd-wide operand (guarded last chunk). */
#define ROWS_UPDATE(acc, w, x, rs, ni, Dd)                                             \
  do {                                                                                 \
    const int ncf_ = (Dd) / VW, nc_ = ((Dd) + VW - 1) / VW;                            \
    for (int c_ = 0; c_ < ncf_; c_++) {                                                \
      RV a_[BM];                                                                       \
      _Pragma("unroll") for (int r_ = 0; r_ < BM; r_++) a_[r_] = acc[r_][c_];          \
      global const REAL *xr_ = (x) + c_ * VW;                                          \
      for (int ii_ = 0; ii_ < (ni); ii_++, xr_ += (rs)) {                              \
        RV xv_ = VLOAD(0, xr_);                                                        \
        _Pragma("unroll") for (int r_ = 0; r_ < BM; r_++)                              \
          a_[r_] = fma((RV)((w)[r_ * BN + ii_]), xv_, a_[r_]);                         \
      }                                                                                \
      _Pragma("unroll") for (int r_ = 0; r_ < BM; r_++) acc[r_][c_] = a_[r_];          \
    }                                                                                  \
    if (ncf_ < nc_) {                                                                  \
      RV a_[BM];                                                                       \
      _Pragma("unroll") for (int r_ = 0; r_ < BM; r_++) a_[r_] = acc[r_][ncf_];        \
      for (int ii_ = 0; ii_ < (ni); ii_++) {                                           \
        REAL t_[VW];                                                                   \
        for (int e_ = 0; e_ < VW; e_++)                                                \
          t_[e_] = ncf_ * VW + e_ < (Dd) ? (x)[ii_ * (rs) + ncf_ * VW + e_] : (REAL)0; \
        RV xv_ = VLOAD(0, t_);                                                         \
        _Pragma("unroll") for (int r_ = 0; r_ < BM; r_++)                              \
          a_[r_] = fma((RV)((w)[r_ * BN + ii_]), xv_, a_[r_]);                         \
      }                                                                                \
      _Pragma("unroll") for (int r_ = 0; r_ < BM; r_++) acc[r_][ncf_] = a_[r_];        \
    }                                                                                  \
  } while (0)

/* One work-item per (b, kv head, block of BM key rows); loops over the G
 * query heads of the group and the query tiles. qt: Q^T [B, H, D, Sqp],
 * gt: dO^T [B, H, Dv, Sqp]; k, v read in place; q and g row-major. */
kernel void sdpa_bwd_dkv(global const REAL *k, int k_off, global const REAL *v, int v_off,
                         global const REAL *qt, int qt_off, global const REAL *gt, int gt_off,
                         global const REAL *q, int q_off, global const REAL *g, int g_off,
                         global const REAL *lu, int lu_off, global const REAL *dl, int dl_off,
                         global const uchar *keep, int keep_off, global const REAL *bias,
                         int bias_off, global REAL *dk, int dk_off, global REAL *dv, int dv_off,
                         int16 geo, int4 bst, ACC scale, uint k0, uint k1, uint thr, ACC dscale,
                         int n_items) {
  const int gid = get_global_id(0);
  if (gid >= n_items) return;
  GEO_UNPACK;
  const int nblk = (Sk + BM - 1) / BM;
  const int bhk = gid / nblk, j0 = (gid % nblk) * BM;
  const int b = bhk / Hkv, hk = bhk % Hkv;
  const int nr = min(BM, Sk - j0);
  global const REAL *kp = k + k_off + bhk * k_hs;
  global const REAL *vp = v + v_off + bhk * v_hs;
  keep += keep_off;
  bias += bias_off;
  int krow[BM], vrow[BM];
  bool live = false;
#pragma unroll
  for (int r = 0; r < BM; r++) {
    const int jc = min(j0 + r, Sk - 1);
    krow[r] = jc * k_rs;
    vrow[r] = jc * v_rs;
    live |= r < nr && (!(flags & F_KEEP) || keep[b * Skp + jc] != 0);
  }
  const int ncq = (D + VW - 1) / VW, ncv = (Dv + VW - 1) / VW;
  RV acc_k[BM][MAX_C], acc_v[BM][MAX_C];
  for (int c = 0; c < ncq; c++)
#pragma unroll
    for (int r = 0; r < BM; r++) acc_k[r][c] = (RV)0;
  for (int c = 0; c < ncv; c++)
#pragma unroll
    for (int r = 0; r < BM; r++) acc_v[r][c] = (RV)0;
  REAL pbuf[BM * BN], wbuf[BM * BN];
  uint kbuf[BM * BN]; /* dropout keep flags of the tile */

  /* causal: query i sees key j when j <= q_pos + i, so start at i >= j0 - q_pos */
  int istart = (flags & F_CAUSAL) ? max(0, j0 - q_pos) / BN * BN : 0;
  for (int gh = 0; live && gh < G; gh++) {
    const int h = hk * G + gh, bh = b * H + h;
    const ACC sl = (flags & F_ALIBI) ? exp2(-(ACC)8 * (ACC)(h + 1) / (ACC)H) : (ACC)0;
    global const REAL *qtp = qt + qt_off + bh * D * Sqp;
    global const REAL *gtp = gt + gt_off + bh * Dv * Sqp;
    global const REAL *qp = q + q_off + bh * Sq * D;
    global const REAL *gp = g + g_off + bh * Sq * Dv;
    global const REAL *lup = lu + lu_off + bh * Sqp;
    global const REAL *dlp = dl + dl_off + bh * Sqp;
    for (int i0 = istart; i0 < Sq; i0 += BN) {
      RV s[BM][NV];
      SCORE_TILE(s, kp, krow, qtp + i0, Sqp, D);
#pragma unroll
      for (int r = 0; r < BM; r++) {
        const int j = j0 + r, jc = min(j, Sk - 1);
        const bool kdead = j >= Sk || ((flags & F_KEEP) && keep[b * Skp + jc] == 0);
        global const REAL *bp = bias + b * bst.x + h * bst.y + jc * bst.w;
#pragma unroll
        for (int n = 0; n < NV; n++) {
          const int i = i0 + n * VW;
          RV x = s[r][n] * scale;
          IV iv = LANES + (IV)i;
          if (flags & F_BIAS) x += att_bias_queries(bp, bst.z, i, Sq);
          if (flags & F_ALIBI) x -= (RV)sl * fabs(CONV_RV(iv + (IV)(q_pos - j)));
          IV dead = (iv >= (IV)Sq) | (IV)(kdead ? -1 : 0);
          if (flags & F_CAUSAL) dead |= (IV)j > iv + (IV)q_pos;
          x = select(x, (RV)(-INFINITY), dead);
          RV p = exp(x - VLOAD(0, lup + i));
          VSTORE(p, n, pbuf + r * BN);
          if (flags & F_DROPOUT) {
            for (int e = 0; e < VW; e++) {
              const int ie = min(i + e, Sq - 1);
              kbuf[r * BN + n * VW + e] =
                  att_word(((ulong)(bh * Sq + ie)) * (ulong)Sk + (ulong)jc, k0, k1) < thr;
            }
            p = select((RV)0, p * dscale, CONV_IV(VLOAD(n, kbuf + r * BN)) != (IV)0);
          }
          VSTORE(p, n, wbuf + r * BN);
        }
      }
      const int ni = min(BN, Sq - i0);
      ROWS_UPDATE(acc_v, wbuf, gp + i0 * Dv, Dv, ni, Dv);
      RV dp[BM][NV];
      SCORE_TILE(dp, vp, vrow, gtp + i0, Sqp, Dv);
#pragma unroll
      for (int r = 0; r < BM; r++) {
#pragma unroll
        for (int n = 0; n < NV; n++) {
          RV x = dp[r][n];
          if (flags & F_DROPOUT)
            x = select((RV)0, x * dscale, CONV_IV(VLOAD(n, kbuf + r * BN)) != (IV)0);
          RV p = VLOAD(n, pbuf + r * BN);
          VSTORE(p * (x - VLOAD(n, dlp + i0)), n, wbuf + r * BN);
        }
      }
      ROWS_UPDATE(acc_k, wbuf, qp + i0 * D, D, ni, D);
    }
  }
  const int ncfq = D / VW, ncfv = Dv / VW;
  for (int r = 0; r < nr; r++) {
    const int j = j0 + r;
    global REAL *dkr = dk + dk_off + (bhk * Sk + j) * D;
    global REAL *dvr = dv + dv_off + (bhk * Sk + j) * Dv;
    for (int c = 0; c < ncfq; c++) VSTORE(acc_k[r][c] * scale, 0, dkr + c * VW);
    if (ncfq < ncq) {
      REAL t[VW];
      VSTORE(acc_k[r][ncfq] * scale, 0, t);
      for (int e = 0; ncfq * VW + e < D; e++) dkr[ncfq * VW + e] = t[e];
    }
    for (int c = 0; c < ncfv; c++) VSTORE(acc_v[r][c], 0, dvr + c * VW);
    if (ncfv < ncv) {
      REAL t[VW];
      VSTORE(acc_v[r][ncfv], 0, t);
      for (int e = 0; ncfv * VW + e < Dv; e++) dvr[ncfv * VW + e] = t[e];
    }
  }
}

#endif /* !ATT_GPU: the CPU layout */

/* ==== the GPU layout (built with -DATT_GPU) ==================================
 *
 * The flash-attention shape of ggml's flash_attn_f32.cl. A work-group of
 * ATT_BQ work-items owns ATT_BQ consecutive query rows of one (b, h); each
 * work-item owns ONE row and keeps its q row, running max / sum and output
 * accumulator in private memory (registers). Keys are walked in tiles of
 * ATT_BT rows: the whole work-group copies the K and V tile into __local
 * memory (consecutive work-items read consecutive elements of a row, so the
 * global loads coalesce), a barrier, then every work-item scores its row
 * against the tile and folds it into its online softmax; a second barrier
 * before the next tile overwrites local memory. A K/V element is read from
 * global memory once per ATT_BQ query rows instead of once per row, and
 * inside a tile all work-items read the same local address at the same time
 * (a broadcast: no bank conflicts). Rows are padded to ATT_DK (8, 16, a
 * multiple of 32 or of 64) columns with zeros, so every loop over the head
 * dim has a compile-time bound and the private arrays can stay in
 * registers; full tiles loop over a compile-time ATT_BT keys (unrolled on
 * GPUs, the scores in registers), the last partial tile over what is
 * left. K and V are read in place (any head / row stride, no transposed
 * copy).
 *
 * Why not the CPU layout on GPUs: that one gives a work-item 12 rows x 32
 * keys of scores in vector registers and no local memory or barriers (PoCL
 * runs a work-group on one core, where a barrier costs a loop fission and
 * vectorisation happens inside the work-item). On a GPU those 12 rows are
 * one SIMT lane with hundreds of spilled registers, every lane streams K
 * and V from global memory on its own, and there are 12x fewer work-items.
 * Here the vector width is 4 (one 128-bit local load) and parallelism comes
 * from the work-items.
 *
 * Trade-offs: one row per work-item means a q row, an output row (and in
 * the backward up to four rows) of ATT_DK private values: at head dim 128
 * and beyond part of it spills (ggml's kernel has the same limit; a few
 * lanes per row with a sub-group reduction would be the next step). Decode
 * (seq_q = 1) uses one work-item of each group; a split-K kernel (ggml's
 * flash_attn_f32_q1) would spread the keys instead. Masks, key flags and
 * outputs are read / written per row (bias reads coalesce along keys in the
 * dK/dV kernel only).
 *
 * The host (lam__att_gpu_layout) picks ATT_BQ = 64 (fewer where the
 * device's work-group limit is lower), ATT_DK from the head dims, and
 * ATT_BT, a power of two in [4, 32], from the local memory size: the tiles
 * take 2 * ATT_BT * ATT_DK elements per work-group (the dK/dV kernel 2 *
 * ATT_BT more), e.g. 32 KiB at f32, ATT_DK = 128, ATT_BT = 32.
 *
 * Backward: sdpa_bwd_dq_wg owns query rows (stages K and V tiles; dQ and the
 * optional dS); sdpa_bwd_dkv_wg owns key rows (stages Q and dO tiles with
 * their log-sum-exp and rowsum(dO * O) and loops over the query heads of the
 * group), as the CPU kernels split the work. Dropout, masks and fully
 * masked rows follow the CPU layout exactly. */
#ifdef ATT_GPU
#ifndef ATT_BQ
#define ATT_BQ 64
#endif
#ifndef ATT_BT
#define ATT_BT 32
#endif
#ifndef ATT_DK
#define ATT_DK 64
#endif
/* Full tiles are unrolled on GPUs (the host passes ATT_UNROLL there) so
 * that the tile's scores stay in registers; on PoCL that gains nothing and
 * multiplies the build time by eight. */
#ifdef ATT_UNROLL
#define G_UNROLL _Pragma("unroll")
#else
#define G_UNROLL
#endif
#define GQ ATT_BQ
#define GT ATT_BT
#define GD ATT_DK
#define GC (GD / 4) /* 4-wide chunks of a padded row */
#define R4 CAT(REAL, 4)

/* Dot product of a private padded row and a local one. */
inline ACC g_dot(const R4 *a, local const REAL *b) {
  R4 acc = (R4)0;
  for (int c = 0; c < GC; c++) acc = fma(a[c], vload4(c, b), acc);
  return (acc.x + acc.y) + (acc.z + acc.w);
}
/* y += a * x (private padded row y, local row x). */
inline void g_axpy(R4 *y, ACC a, local const REAL *x) {
  const R4 av = (R4)(a);
  for (int c = 0; c < GC; c++) y[c] = fma(av, vload4(c, x), y[c]);
}
/* Private padded row from global row p of width Dd (zeros past Dd). */
inline void g_row(R4 *y, global const REAL *p, int Dd) {
  for (int c = 0; c < GC; c++) {
    REAL t[4];
    for (int e = 0; e < 4; e++) t[e] = 4 * c + e < Dd ? p[4 * c + e] : (REAL)0;
    y[c] = vload4(0, t);
  }
}
/* First Dd values of a private padded row times s into global row p. */
inline void g_store(global REAL *p, const R4 *y, ACC s, int Dd) {
  for (int c = 0; c < GC; c++) {
    REAL t[4];
    vstore4(y[c] * (REAL)s, 0, t);
    for (int e = 0; e < 4; e++)
      if (4 * c + e < Dd) p[4 * c + e] = t[e];
  }
}
/* The work-group copies nvalid rows (row stride rs, width Dd) of x into the
 * local tile t [GT][GD], zero padded: consecutive work-items take
 * consecutive elements, so the global reads coalesce. */
inline void g_stage(local REAL *t, global const REAL *x, int rs, int Dd, int nvalid) {
  for (int e = get_local_id(0); e < GT * GD; e += GQ) {
    const int r = e / GD, d = e % GD;
    t[e] = r < nvalid && d < Dd ? x[r * rs + d] : (REAL)0;
  }
}
/* Scaled score x of query i against key j with the bias, ALiBi and masks of
 * the CPU layout (att_mask_rows): -inf where masked or out of range. */
inline ACC g_mask(ACC x, int i, int j, int b, int h, int Sq, int Sk, int Skp, int q_pos, int flags,
                  ACC slope, global const uchar *keep, global const REAL *bias, int4 bst) {
  const int ic = min(i, Sq - 1), jc = min(j, Sk - 1);
  if (flags & F_BIAS) x += LOAD(bias, b * bst.x + h * bst.y + ic * bst.z + jc * bst.w);
  if (flags & F_ALIBI) x -= slope * fabs((ACC)(j - (q_pos + i)));
  bool dead = j >= Sk || i >= Sq;
  if (flags & F_CAUSAL) dead |= j > q_pos + i;
  if (flags & F_KEEP) dead |= keep[b * Skp + jc] == 0;
  return dead ? (ACC)(-INFINITY) : x;
}
/* Dropout keep bits of the GT consecutive words m0 .. m0 + GT - 1 (bit n for
 * word m0 + n), as att_keep_run. */
inline ulong g_keep_bits(ulong m0, uint k0, uint k1, uint thr) {
  const ulong b0 = m0 >> 2;
  const int skip = (int)(m0 & 3);
  ulong bits = 0;
  for (int t = 0; t < (GT + 3 + 3) / 4; t++) {
    const ulong blk = b0 + (ulong)t;
    uint4 w = att_philox((uint4)((uint)blk, (uint)(blk >> 32), 0u, 0u), (uint2)(k0, k1));
    uint ws[4] = {w.x, w.y, w.z, w.w};
    for (int e = 0; e < 4; e++) {
      const int pos = t * 4 + e - skip;
      if (pos >= 0 && pos < GT && ws[e] < thr) bits |= (ulong)1 << pos;
    }
  }
  return bits;
}

/* Folds keys j0 .. j0 + N - 1 of the staged tile into row i's online
 * softmax: N = GT (a compile-time bound, unrolled so the scores stay in
 * registers) for full tiles, the rest for the last one. */
#define G_FWD_TILE(N, UNROLL)                                                            \
  do {                                                                                   \
    ACC s[GT], mx = -INFINITY;                                                           \
    UNROLL for (int jj = 0; jj < (N); jj++) {                                            \
      s[jj] = g_mask(g_dot(qv, lk + jj * GD) * scale, i, j0 + jj, b, h, Sq, Sk, Skp, q_pos, \
                     flags, slope, keep, bias, bst);                                     \
      mx = fmax(mx, s[jj]);                                                              \
    }                                                                                    \
    const ACC mnew = fmax(m, mx), muse = isinf(mnew) ? (ACC)0 : mnew;                    \
    const ACC alpha = exp(m - muse);                                                     \
    for (int c = 0; c < GC; c++) ov[c] *= (REAL)alpha;                                   \
    ACC ls = 0;                                                                          \
    UNROLL for (int jj = 0; jj < (N); jj++) {                                            \
      ACC p = exp(s[jj] - muse);                                                         \
      ls += p;                                                                           \
      if (flags & F_DROPOUT) p = (kb >> jj) & 1 ? p * dscale : (ACC)0;                   \
      g_axpy(ov, p, lv + jj * GD);                                                       \
    }                                                                                    \
    l = l * alpha + ls;                                                                  \
    m = mnew;                                                                            \
  } while (0)

/* Forward: a work-group per (b, h, block of GQ query rows), a work-item per
 * row. Same arguments as sdpa_fwd except k (read in place, not K^T). */
kernel __attribute__((reqd_work_group_size(GQ, 1, 1))) void sdpa_fwd_wg(
    global const REAL *q, int q_off, global const REAL *k, int k_off, global const REAL *v,
    int v_off, global REAL *o, int o_off, global REAL *lse, int lse_off, global const uchar *keep,
    int keep_off, global const REAL *bias, int bias_off, int16 geo, int4 bst, ACC scale, uint k0,
    uint k1, uint thr, ACC dscale) {
  GEO_UNPACK;
  local REAL lk[GT * GD], lv[GT * GD];
  const int nblk = (Sq + GQ - 1) / GQ, grp = get_group_id(0);
  const int bh = grp / nblk, i0 = (grp % nblk) * GQ, i = i0 + (int)get_local_id(0);
  const int b = bh / H, h = bh % H, hk = h / G;
  const bool row = i < Sq;
  global const REAL *kp = k + k_off + (b * Hkv + hk) * k_hs;
  global const REAL *vp = v + v_off + (b * Hkv + hk) * v_hs;
  keep += keep_off;
  bias += bias_off;
  const ACC slope = (flags & F_ALIBI) ? exp2(-(ACC)8 * (ACC)(h + 1) / (ACC)H) : (ACC)0;
  R4 qv[GC], ov[GC];
  g_row(qv, q + q_off + (bh * Sq + min(i, Sq - 1)) * D, D);
  for (int c = 0; c < GC; c++) ov[c] = (R4)0;
  ACC m = -INFINITY, l = 0;
  int jend = Sk;
  if (flags & F_CAUSAL) jend = min(Sk, q_pos + i0 + min(GQ, Sq - i0));
  for (int j0 = 0; j0 < jend; j0 += GT) { /* uniform over the work-group */
    const int nj = min(GT, Sk - j0);
    g_stage(lk, kp + j0 * k_rs, k_rs, D, nj);
    g_stage(lv, vp + j0 * v_rs, v_rs, Dv, nj);
    barrier(CLK_LOCAL_MEM_FENCE);
    if (row) {
      const ulong kb = (flags & F_DROPOUT)
                           ? g_keep_bits(((ulong)(bh * Sq + i)) * (ulong)Sk + (ulong)j0, k0, k1, thr)
                           : 0;
      if (nj == GT) G_FWD_TILE(GT, G_UNROLL);
      else G_FWD_TILE(nj, );
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (row) {
    g_store(o + o_off + (bh * Sq + i) * Dv, ov, l > 0 ? (ACC)1 / l : (ACC)0, Dv);
    lse[lse_off + bh * Sq + i] = l > 0 ? (isinf(m) ? (ACC)0 : m) + log(l) : (ACC)(-INFINITY);
  }
}

/* dQ of row i from keys j0 .. j0 + N - 1 of the staged tiles (N as in
 * G_FWD_TILE), and the row's dS there when a mask needs a gradient. */
#define G_DQ_TILE(N, UNROLL)                                                              \
  do {                                                                                    \
    UNROLL for (int jj = 0; jj < (N); jj++) {                                             \
      const ACC x = g_mask(g_dot(qv, lk + jj * GD) * scale, i, j0 + jj, b, h, Sq, Sk, Skp, \
                           q_pos, flags, slope, keep, bias, bst);                         \
      const ACC p = exp(x - lr);                                                          \
      ACC dp = g_dot(gv, lv + jj * GD);                                                   \
      if (flags & F_DROPOUT) dp = (kb >> jj) & 1 ? dp * dscale : (ACC)0;                  \
      const ACC dsv = p * (dp - dr);                                                      \
      if (flags & F_DS) STORE(dsr, j0 + jj, dsv);                                         \
      g_axpy(dqv, dsv, lk + jj * GD);                                                     \
    }                                                                                     \
  } while (0)

/* dQ (and dS rows for a mask gradient): a work-group per (b, h, block of GQ
 * query rows); K and V read in place and staged; lu / dl from sdpa_bwd_prep. */
kernel __attribute__((reqd_work_group_size(GQ, 1, 1))) void sdpa_bwd_dq_wg(
    global const REAL *q, int q_off, global const REAL *k, int k_off, global const REAL *v,
    int v_off, global const REAL *g, int g_off, global const REAL *lu, int lu_off,
    global const REAL *dl, int dl_off, global const uchar *keep, int keep_off,
    global const REAL *bias, int bias_off, global REAL *dq, int dq_off, global REAL *ds, int ds_off,
    int16 geo, int4 bst, ACC scale, uint k0, uint k1, uint thr, ACC dscale) {
  GEO_UNPACK;
  local REAL lk[GT * GD], lv[GT * GD];
  const int nblk = (Sq + GQ - 1) / GQ, grp = get_group_id(0);
  const int bh = grp / nblk, i0 = (grp % nblk) * GQ, i = i0 + (int)get_local_id(0);
  const int b = bh / H, h = bh % H, hk = h / G, ic = min(i, Sq - 1);
  const bool row = i < Sq;
  global const REAL *kp = k + k_off + (b * Hkv + hk) * k_hs;
  global const REAL *vp = v + v_off + (b * Hkv + hk) * v_hs;
  keep += keep_off;
  bias += bias_off;
  const ACC slope = (flags & F_ALIBI) ? exp2(-(ACC)8 * (ACC)(h + 1) / (ACC)H) : (ACC)0;
  R4 qv[GC], gv[GC], dqv[GC];
  g_row(qv, q + q_off + (bh * Sq + ic) * D, D);
  g_row(gv, g + g_off + (bh * Sq + ic) * Dv, Dv);
  for (int c = 0; c < GC; c++) dqv[c] = (R4)0;
  const ACC lr = LOAD(lu + lu_off, bh * Sqp + ic), dr = LOAD(dl + dl_off, bh * Sqp + ic);
  global REAL *dsr = ds + ds_off + (bh * Sq + ic) * Sk;
  int jend = Sk;
  if (flags & F_CAUSAL) jend = min(Sk, q_pos + i0 + min(GQ, Sq - i0));
  for (int j0 = 0; j0 < jend; j0 += GT) {
    const int nj = min(GT, Sk - j0);
    g_stage(lk, kp + j0 * k_rs, k_rs, D, nj);
    g_stage(lv, vp + j0 * v_rs, v_rs, Dv, nj);
    barrier(CLK_LOCAL_MEM_FENCE);
    if (row) {
      const ulong kb = (flags & F_DROPOUT)
                           ? g_keep_bits(((ulong)(bh * Sq + i)) * (ulong)Sk + (ulong)j0, k0, k1, thr)
                           : 0;
      if (nj == GT) G_DQ_TILE(GT, G_UNROLL);
      else G_DQ_TILE(nj, );
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (row) {
    if (flags & F_DS) /* causal: the rest of the dS row is zero */
      for (int j = max(jend, 0); j < Sk; j++) dsr[j] = 0;
    g_store(dq + dq_off + (bh * Sq + i) * D, dqv, scale, D);
  }
}

/* dK, dV of key row j from queries i0 .. i0 + N - 1 of the staged tiles (N
 * as in G_FWD_TILE). */
#define G_DKV_TILE(N, UNROLL)                                                                \
  do {                                                                                       \
    UNROLL for (int ii = 0; ii < (N); ii++) {                                                \
      const int i = i0 + ii;                                                                 \
      const ACC x = g_mask(g_dot(kv, lq + ii * GD) * scale, i, j, b, h, Sq, Sk, Skp, q_pos,   \
                           flags, slope, keep, bias, bst);                                   \
      const ACC p = exp(x - (ACC)ll[ii]);                                                    \
      ACC pw = p, dp = g_dot(vv, lg + ii * GD);                                              \
      if (flags & F_DROPOUT) {                                                               \
        const bool kept = att_word(((ulong)(bh * Sq + i)) * (ulong)Sk + (ulong)jc, k0, k1) < thr; \
        pw = kept ? p * dscale : (ACC)0;                                                     \
        dp = kept ? dp * dscale : (ACC)0;                                                    \
      }                                                                                      \
      g_axpy(dvv, pw, lg + ii * GD);                                                         \
      g_axpy(dkv, p * (dp - (ACC)ld[ii]), lq + ii * GD);                                     \
    }                                                                                        \
  } while (0)

/* dK, dV: a work-group per (b, kv head, block of GQ key rows), a work-item per
 * key row, looping over the G query heads of the group and tiles of GT
 * queries (Q and dO rows staged with their lu / dl); q, g row-major. */
kernel __attribute__((reqd_work_group_size(GQ, 1, 1))) void sdpa_bwd_dkv_wg(
    global const REAL *k, int k_off, global const REAL *v, int v_off, global const REAL *q,
    int q_off, global const REAL *g, int g_off, global const REAL *lu, int lu_off,
    global const REAL *dl, int dl_off, global const uchar *keep, int keep_off,
    global const REAL *bias, int bias_off, global REAL *dk, int dk_off, global REAL *dv, int dv_off,
    int16 geo, int4 bst, ACC scale, uint k0, uint k1, uint thr, ACC dscale) {
  GEO_UNPACK;
  local REAL lq[GT * GD], lg[GT * GD], ll[GT], ld[GT];
  const int nblk = (Sk + GQ - 1) / GQ, grp = get_group_id(0), t = get_local_id(0);
  const int bhk = grp / nblk, j0 = (grp % nblk) * GQ, j = j0 + t;
  const int b = bhk / Hkv, hk = bhk % Hkv, jc = min(j, Sk - 1);
  keep += keep_off;
  bias += bias_off;
  const bool live = j < Sk && (!(flags & F_KEEP) || keep[b * Skp + jc] != 0);
  R4 kv[GC], vv[GC], dkv[GC], dvv[GC];
  g_row(kv, k + k_off + bhk * k_hs + jc * k_rs, D);
  g_row(vv, v + v_off + bhk * v_hs + jc * v_rs, Dv);
  for (int c = 0; c < GC; c++) dkv[c] = dvv[c] = (R4)0;
  /* causal: query i sees key j when j <= q_pos + i */
  const int istart = (flags & F_CAUSAL) ? max(0, j0 - q_pos) : 0;
  for (int gh = 0; gh < G; gh++) {
    const int h = hk * G + gh, bh = b * H + h;
    const ACC slope = (flags & F_ALIBI) ? exp2(-(ACC)8 * (ACC)(h + 1) / (ACC)H) : (ACC)0;
    global const REAL *qp = q + q_off + bh * Sq * D;
    global const REAL *gp = g + g_off + bh * Sq * Dv;
    for (int i0 = istart; i0 < Sq; i0 += GT) { /* uniform over the work-group */
      const int ni = min(GT, Sq - i0);
      g_stage(lq, qp + i0 * D, D, D, ni);
      g_stage(lg, gp + i0 * Dv, Dv, Dv, ni);
      for (int e = t; e < GT; e += GQ) {
        ll[e] = e < ni ? lu[lu_off + bh * Sqp + i0 + e] : (REAL)0;
        ld[e] = e < ni ? dl[dl_off + bh * Sqp + i0 + e] : (REAL)0;
      }
      barrier(CLK_LOCAL_MEM_FENCE);
      if (live) {
        if (ni == GT) G_DKV_TILE(GT, G_UNROLL);
        else G_DKV_TILE(ni, );
      }
      barrier(CLK_LOCAL_MEM_FENCE);
    }
  }
  if (j < Sk) {
    g_store(dk + dk_off + (bhk * Sk + j) * D, dkv, scale, D);
    g_store(dv + dv_off + (bhk * Sk + j) * Dv, dvv, 1, Dv);
  }
}
#endif /* ATT_GPU */

/* ---- KV cache rows ------------------------------------------------------------ */

/* y[nn, dst_start + s, :] = x[nn, s, :] (rows of Dd, head strides src_hs /
 * dst_hs): appends to a KV cache, grows it, or reads it back contiguously. */
kernel void copy_rows(global const REAL *x, int x_off, global REAL *y, int y_off, int n_rows,
                      int Dd, int src_hs, int dst_hs, int dst_start, int n) {
  int id = get_global_id(0);
  if (id >= n) return;
  int d = id % Dd, t = id / Dd;
  int s = t % n_rows, nn = t / n_rows;
  y[y_off + nn * dst_hs + (dst_start + s) * Dd + d] = x[x_off + nn * src_hs + s * Dd + d];
}

/* ---- rotary position embedding ------------------------------------------------ */

/* x viewed as [outer, S, inner, F]; tab [2, S, dims/2] holds cos then sin of
 * the angles (made on the host in double). Features e < dims rotate with
 * their partner (e ^ 1 when traditional, e +- dims/2 otherwise); the rest is
 * copied. sign = -1 rotates back (the backward pass). One work-item per
 * element: a streaming kernel, vectorised across work-items by PoCL. */
kernel void rope(global const REAL *x, int x_off, global REAL *y, int y_off, global const REAL *tab,
                 int t_off, int S, int inner, int F, int dims, int traditional, ACC sign, int n) {
  int id = get_global_id(0);
  if (id >= n) return;
  int e = id % F, t = id / F;
  int s = (t / inner) % S;
  x += x_off;
  if (e >= dims) {
    STORE(y + y_off, id, LOAD(x, id));
    return;
  }
  int hd = dims / 2;
  int kk, partner;
  bool first;
  if (traditional) {
    kk = e >> 1;
    first = (e & 1) == 0;
    partner = first ? id + 1 : id - 1;
  } else {
    first = e < hd;
    kk = first ? e : e - hd;
    partner = first ? id + hd : id - hd;
  }
  ACC c = LOAD(tab + t_off, s * hd + kk);
  ACC sn = sign * LOAD(tab + t_off, (S + s) * hd + kk);
  ACC a = LOAD(x, id), b = LOAD(x, partner);
  STORE(y + y_off, id, first ? a * c - b * sn : a * c + b * sn);
}
