/* quant.cl: group-wise affine dequantization (MLX's format, see
 * include/lamina/quant.h) fused into matrix products.
 *
 * Built per float dtype (REAL/ACC) and per bit width: -DQBITS=4 or 8, so
 * the PER = 32/QBITS values of a packed word are unpacked with constant
 * shifts (value t of a word sits at bits QBITS*t, little end first). The
 * group size is an argument: it is a multiple of 32, so a word never
 * straddles two groups and one (scale, bias) pair serves a whole word.
 * W is [N, K] (N = out features), packed row-major as K/PER words a row;
 * scales/biases are [N, K/gs]. x is [M, K] and y [M, N]; K is a multiple
 * of 32 (of the group size).
 *
 * q_mv (M <= QMV_MAXM rows, the decoding path) is memory-bound: it reads
 * each packed word once for all M rows. A work-group of QMV_ROWS *
 * QMV_LANES items owns QMV_ROWS output rows; the QMV_LANES lanes of a row
 * stride over its words (neighbouring lanes read neighbouring words), and
 * use sum_t x_t (s q_t + b) = s sum_t x_t q_t + b sum_t x_t, so the scale
 * and bias cost two multiplies a word, not a word's worth. The lanes'
 * partial sums are reduced in local memory (a fixed tree: deterministic).
 *
 * q_mm (more rows) is a 16 x 16 output tile per work-group with K in steps
 * of 32: the group stages the x tile and the dequantized W tile (16 rows x
 * 32, unpacked once per tile and shared by the 16 x rows) in local memory;
 * each item then owns one output. Simple rather than register-blocked: the
 * point is that W is read packed; the f32 GEMM (cl/gemm.cl) is faster per
 * flop at large batch.
 *
 * q_mtv computes dx = g @ dequant(W) (the backward rule; g [M, N], dx
 * [M, K]) with one item per output, looping over N in a fixed order.
 *
 * q_dequant writes the dense weight (lam_dequantize; tests, embeddings). */

#ifndef QBITS
#define QBITS 4
#endif
#define PER (32 / QBITS)
#define QMASK ((1u << QBITS) - 1u)
#define QV(v, t) ((ACC)(((v) >> (QBITS * (t))) & QMASK))

#define QMV_LANES 16
#define QMV_ROWS 4
#define QMV_WG (QMV_LANES * QMV_ROWS)
#define QMV_MAXM 8

#define QT 16
#define QTK 32

/* q_dequant: one item per packed word, writing its PER weights. */
kernel void q_dequant(global const uint *wq, int wq_off, global const REAL *sc, int sc_off,
                      global const REAL *bi, int bi_off, global REAL *w, int w_off, int nwords,
                      int K, int gs) {
  const int i = get_global_id(0);
  if (i >= nwords) return;
  const int wpr = K / PER, ng = K / gs;
  const int n = i / wpr, j = i % wpr;
  const int g = n * ng + (j * PER) / gs;
  const ACC s = LOAD(sc + sc_off, g), b = LOAD(bi + bi_off, g);
  const uint v = wq[wq_off + i];
  global REAL *o = w + w_off + i * PER;
  for (int t = 0; t < PER; t++) STORE(o, t, s * QV(v, t) + b);
}

/* q_mv: y[m, n] = sum_k x[m, k] W[n, k] for M <= QMV_MAXM; local size QMV_WG,
 * one group per QMV_ROWS output rows. */
kernel void q_mv(global const REAL *x, int x_off, global const uint *wq, int wq_off,
                 global const REAL *sc, int sc_off, global const REAL *bi, int bi_off,
                 global REAL *y, int y_off, int M, int N, int K, int gs) {
  local ACC red[QMV_MAXM * QMV_WG];
  const int lid = get_local_id(0), lane = lid % QMV_LANES;
  const int n = get_group_id(0) * QMV_ROWS + lid / QMV_LANES;
  const int wpr = K / PER, ng = K / gs;
  ACC acc[QMV_MAXM];
  for (int m = 0; m < QMV_MAXM; m++) acc[m] = 0;
  if (n < N) {
    global const uint *wr = wq + wq_off + n * wpr;
    global const REAL *sr = sc + sc_off + n * ng;
    global const REAL *br = bi + bi_off + n * ng;
    for (int j = lane; j < wpr; j += QMV_LANES) {
      const int k0 = j * PER, g = k0 / gs;
      const ACC s = LOAD(sr, g), b = LOAD(br, g);
      const uint v = wr[j];
      ACC q[PER];
      for (int t = 0; t < PER; t++) q[t] = QV(v, t);
      for (int m = 0; m < M; m++) {
        global const REAL *xr = x + x_off + m * K + k0;
        ACC dq = 0, sx = 0;
        for (int t = 0; t < PER; t++) {
          const ACC xv = LOAD(xr, t);
          dq += xv * q[t];
          sx += xv;
        }
        acc[m] += s * dq + b * sx;
      }
    }
  }
  for (int m = 0; m < M; m++) red[m * QMV_WG + lid] = acc[m];
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int h = QMV_LANES / 2; h > 0; h >>= 1) {
    if (lane < h)
      for (int m = 0; m < M; m++) red[m * QMV_WG + lid] += red[m * QMV_WG + lid + h];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (lane == 0 && n < N)
    for (int m = 0; m < M; m++) STORE(y + y_off, m * N + n, red[m * QMV_WG + lid]);
}

/* q_rows1/4/8: the CPU kernels for any M. Item r = (chunk, n) owns MR
 * consecutive rows of column n of y: it streams row n of W once, unpacking
 * each word once for its MR rows of x (read from cache), and applies scale
 * and bias once per group. A word is unpacked as
 * one vector: the word splatted, shifted by (0, QBITS, 2 QBITS, ...) and
 * masked, against a PER-wide vector load of x (AVX's variable shifts), so
 * the decode costs a handful of vector ops per PER weights. No local memory
 * and no barriers: on a CPU device a work-item is a loop iteration. */
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#if QBITS == 4
#define PERN 8 /* PER as one token, for the vector type names */
#else
#define PERN 4
#endif
#define ACCV CAT(ACC, PERN)
#define UINTV CAT(uint, PERN)
#define CONVV CAT(convert_, ACCV)
#define VLOADV CAT(vload, PERN)
#if QBITS == 4
#define QSHIFT ((uint8)(0, 4, 8, 12, 16, 20, 24, 28))
#define VSUM(v) dot((v).lo + (v).hi, (CAT(ACC, 4))(1))
#else
#define QSHIFT ((uint4)(0, 8, 16, 24))
#define VSUM(v) dot((v), (CAT(ACC, 4))(1))
#endif
/* Q_ROWS(name, MR): item r = (chunk, n) owns MR rows of y (fixed trip
 * counts, so the MR x 2 accumulator vectors stay in registers; rows past M
 * re-read row M - 1 and are not stored). q_rows1 serves batch 1, q_rows4
 * up to 15 rows, q_rows8 more (a word unpacked once serves more rows; 8 rows
 * x 2 accumulator vectors still fit AVX-512's registers). */
#define Q_ROWS(NAME, MR)                                                                  \
  kernel void NAME(global const REAL *x, int x_off, global const uint *wq, int wq_off,    \
                   global const REAL *sc, int sc_off, global const REAL *bi, int bi_off,  \
                   global REAL *y, int y_off, int M, int N, int K, int gs, int rows) {    \
    const int r = get_global_id(0);                                                       \
    if (r >= rows) return;                                                                \
    const int n = r % N, m0 = (r / N) * MR;                                               \
    const int wpr = K / PER, ng = K / gs, wpg = gs / PER;                                 \
    global const uint *wr = wq + wq_off + n * wpr;                                        \
    int xo[MR];                                                                           \
    _Pragma("unroll") for (int m = 0; m < MR; m++) xo[m] = x_off + min(m0 + m, M - 1) * K;                  \
    ACC acc[MR];                                                                          \
    _Pragma("unroll") for (int m = 0; m < MR; m++) acc[m] = 0;                                              \
    for (int g = 0; g < ng; g++) {                                                        \
      ACCV dq[MR], sx[MR];                                                                \
      _Pragma("unroll") for (int m = 0; m < MR; m++) dq[m] = sx[m] = (ACCV)0;                               \
      for (int j = g * wpg; j < (g + 1) * wpg; j++) {                                     \
        const ACCV q = CONVV(((UINTV)wr[j] >> QSHIFT) & (UINTV)QMASK);                    \
        _Pragma("unroll") for (int m = 0; m < MR; m++) {                                                    \
          const ACCV xv = VLOADV(0, x + xo[m] + j * PER);                                 \
          dq[m] += xv * q;                                                                \
          sx[m] += xv;                                                                    \
        }                                                                                 \
      }                                                                                   \
      const ACC s = LOAD(sc + sc_off, n * ng + g), b = LOAD(bi + bi_off, n * ng + g);     \
      _Pragma("unroll") for (int m = 0; m < MR; m++) acc[m] += s * VSUM(dq[m]) + b * VSUM(sx[m]);           \
    }                                                                                     \
    _Pragma("unroll") for (int m = 0; m < MR; m++)                                                          \
      if (m0 + m < M) STORE(y + y_off, (m0 + m) * N + n, acc[m]);                         \
  }
#if defined(LAM_F32) || defined(LAM_F64)
Q_ROWS(q_rows1, 1)
Q_ROWS(q_rows4, 4)
Q_ROWS(q_rows8, 8)
#endif

/* q_mm: y = x @ W^T, local size (QT, QT): item (tx, ty) owns y[m0 + ty, n0 + tx]. */
kernel void q_mm(global const REAL *x, int x_off, global const uint *wq, int wq_off,
                 global const REAL *sc, int sc_off, global const REAL *bi, int bi_off,
                 global REAL *y, int y_off, int M, int N, int K, int gs) {
  local ACC xs[QT][QTK + 1];
  local ACC ws[QT][QTK + 1];
  const int tx = get_local_id(0), ty = get_local_id(1), lid = ty * QT + tx;
  const int n0 = get_group_id(0) * QT, m0 = get_group_id(1) * QT;
  const int wpr = K / PER, ng = K / gs;
  ACC acc = 0;
  for (int k0 = 0; k0 < K; k0 += QTK) {
    for (int e = lid; e < QT * QTK; e += QT * QT) {
      const int r = e / QTK, c = e % QTK, m = m0 + r;
      xs[r][c] = m < M ? LOAD(x + x_off, m * K + k0 + c) : (ACC)0;
    }
    for (int e = lid; e < QT * (QTK / PER); e += QT * QT) {
      const int r = e / (QTK / PER), wj = e % (QTK / PER), n = n0 + r;
      if (n < N) {
        const int g = n * ng + (k0 + wj * PER) / gs;
        const ACC s = LOAD(sc + sc_off, g), b = LOAD(bi + bi_off, g);
        const uint v = wq[wq_off + n * wpr + k0 / PER + wj];
        for (int t = 0; t < PER; t++) ws[r][wj * PER + t] = s * QV(v, t) + b;
      } else {
        for (int t = 0; t < PER; t++) ws[r][wj * PER + t] = 0;
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int c = 0; c < QTK; c++) acc += xs[ty][c] * ws[tx][c];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  const int m = m0 + ty, n = n0 + tx;
  if (m < M && n < N) STORE(y + y_off, m * N + n, acc);
}

/* q_mtv: dx[m, k] = sum_n g[m, n] W[n, k]; one item per (m, k). */
kernel void q_mtv(global const REAL *gy, int g_off, global const uint *wq, int wq_off,
                  global const REAL *sc, int sc_off, global const REAL *bi, int bi_off,
                  global REAL *dx, int dx_off, int M, int N, int K, int gs) {
  const int i = get_global_id(0);
  if (i >= M * K) return;
  const int m = i / K, k = i % K;
  const int wpr = K / PER, ng = K / gs, j = k / PER, t = k % PER, gk = k / gs;
  global const REAL *gr = gy + g_off + m * N;
  ACC acc = 0;
  for (int n = 0; n < N; n++) {
    const uint v = wq[wq_off + n * wpr + j];
    const ACC w = LOAD(sc + sc_off, n * ng + gk) * QV(v, t) + LOAD(bi + bi_off, n * ng + gk);
    acc += LOAD(gr, n) * w;
  }
  STORE(dx + dx_off, i, acc);
}
