/* gemm.cl: lamina's own GEMM kernels for CPU devices (PoCL), used by
 * lam_matmul in place of CLBlast where the context asks for tuned CPU GEMM.
 *
 * PoCL runs the work-items of a group one after another on one core and
 * vectorizes across them only for simple straight-line code; a barrier costs
 * about 30x. So these kernels are barrier-free and vectorize INSIDE a
 * work-item with explicit vector types (REAL16 maps to one AVX-512
 * register), holding a register tile of C like a BLAS micro-kernel:
 *
 *  gemm_nn  C[i,j] = sum_k op(A)[i,k] * B[k,j], B rows contiguous. Each
 *           work-item owns GEMM_MR rows x GEMM_VW*GEMM_NV columns; per k it
 *           loads GEMM_NV vectors of B and broadcasts GEMM_MR scalars of A
 *           (op(A) is addressed through two strides, so A^T costs nothing).
 *  gemm_nt  C[i,j] = sum_k A[i,k] * B[j,k], both contiguous along k (A @ B^T,
 *           matrix @ vector). Each work-item owns GEMM_TM x GEMM_TN outputs
 *           as GEMM_VK-wide partial sums along k, reduced once at the end.
 *  transpose  [batch, rows, cols] -> [batch, cols, rows (+ padding)], so
 *           large products with a transposed operand can run gemm_nn.
 *
 * Tiles at the bottom/right edge are shifted back inside the matrix so the
 * k loops never need bounds checks; a shifted tile stores only the rows and
 * columns that the previous tile does not own (no two work-items write the
 * same element). Matrices narrower than one tile clamp their row reads and
 * read missing columns as zero. Batches: get_global_id(2) is the flattened
 * broadcast batch index, decomposed over bshape with per-operand strides
 * (0 on broadcast axes); C is contiguous. The tuning macros come from
 * src/ops/gemm_tuning.c. */

#ifndef GEMM_MR
#define GEMM_MR 6
#endif
#ifndef GEMM_VW
#define GEMM_VW 16
#endif
#ifndef GEMM_NV
#define GEMM_NV 2
#endif
#ifndef GEMM_TM
#define GEMM_TM 4
#endif
#ifndef GEMM_TN
#define GEMM_TN 4
#endif
#ifndef GEMM_VK
#define GEMM_VK 16
#endif

#define GEMM_CAT_(a, b) a##b
#define GEMM_CAT(a, b) GEMM_CAT_(a, b)
#define NR (GEMM_VW * GEMM_NV)
#define VW_T GEMM_CAT(REAL, GEMM_VW)
#define VW_LOAD GEMM_CAT(vload, GEMM_VW)
#define VW_STORE GEMM_CAT(vstore, GEMM_VW)
#define VK_T GEMM_CAT(REAL, GEMM_VK)
#define VK_LOAD GEMM_CAT(vload, GEMM_VK)

/* Element offsets of batch bi in A and B (bi decomposed row-major over the
 * nbd dims of bshape; sa/sb are 0 on axes where the operand broadcasts). */
inline void gemm_batch_offsets(int bi, int nbd, int8 bshape, int8 sa, int8 sb, int *oa, int *ob) {
  int shp[8] = {bshape.s0, bshape.s1, bshape.s2, bshape.s3, bshape.s4, bshape.s5, bshape.s6, bshape.s7};
  int tsa[8] = {sa.s0, sa.s1, sa.s2, sa.s3, sa.s4, sa.s5, sa.s6, sa.s7};
  int tsb[8] = {sb.s0, sb.s1, sb.s2, sb.s3, sb.s4, sb.s5, sb.s6, sb.s7};
  int a = 0, b = 0;
  for (int d = nbd - 1; d >= 0; d--) {
    int idx = bi % shp[d];
    bi /= shp[d];
    a += idx * tsa[d];
    b += idx * tsb[d];
  }
  *oa = a;
  *ob = b;
}

/* Sum of the lanes of a vector (used once per output by gemm_nt). */
#if GEMM_VK == 16
#define HSUM(v) hsum8((v).lo + (v).hi)
#elif GEMM_VK == 8
#define HSUM(v) hsum8(v)
#elif GEMM_VK == 4
#define HSUM(v) hsum4(v)
#else
#error "GEMM_VK must be 4, 8 or 16"
#endif
inline REAL hsum4(GEMM_CAT(REAL, 4) v) { return (v.x + v.y) + (v.z + v.w); }
inline REAL hsum8(GEMM_CAT(REAL, 8) v) { return hsum4(v.lo + v.hi); }

/* op(A)[i,k] = a[i*sam + k*sak]; B[k,j] = b[k*ldb + j]; C [M,N] contiguous.
 * Global size: (column tiles, row tiles, batch), any local size. */
kernel void gemm_nn(global const REAL *a, int a_off, global const REAL *b, int b_off,
                    global REAL *c, int c_off, int M, int N, int K, int sam, int sak, int ldb,
                    int nbd, int8 bshape, int8 bsa, int8 bsb) {
  const int jt = get_global_id(0), it = get_global_id(1), bi = get_global_id(2);
  const int i0n = it * GEMM_MR, j0n = jt * NR;
  if (i0n >= M || j0n >= N) return;
  int oa, ob;
  gemm_batch_offsets(bi, nbd, bshape, bsa, bsb, &oa, &ob);
  const int i0 = min(i0n, max(M - GEMM_MR, 0));
  const int j0 = min(j0n, max(N - NR, 0));
  global const REAL *ap = a + a_off + oa;
  global const REAL *bp = b + b_off + ob + j0;
  int ro[GEMM_MR];
#pragma unroll
  for (int r = 0; r < GEMM_MR; r++) ro[r] = min(i0 + r, M - 1) * sam;
  VW_T acc[GEMM_MR][GEMM_NV];
#pragma unroll
  for (int r = 0; r < GEMM_MR; r++)
#pragma unroll
    for (int v = 0; v < GEMM_NV; v++) acc[r][v] = (VW_T)0;

  if (N >= NR) {
    for (int k = 0; k < K; k++, ap += sak, bp += ldb) {
      VW_T bv[GEMM_NV];
#pragma unroll
      for (int v = 0; v < GEMM_NV; v++) bv[v] = VW_LOAD(v, bp);
#pragma unroll
      for (int r = 0; r < GEMM_MR; r++) {
        VW_T av = (VW_T)(ap[ro[r]]);
#pragma unroll
        for (int v = 0; v < GEMM_NV; v++) acc[r][v] = fma(av, bv[v], acc[r][v]);
      }
    }
  } else {
    /* Narrower than one tile: columns at and past N read as zero. */
    for (int k = 0; k < K; k++, ap += sak, bp += ldb) {
      REAL t[NR];
      for (int q = 0; q < NR; q++) t[q] = q < N ? bp[q] : (REAL)0;
      VW_T bv[GEMM_NV];
#pragma unroll
      for (int v = 0; v < GEMM_NV; v++) bv[v] = VW_LOAD(v, t);
#pragma unroll
      for (int r = 0; r < GEMM_MR; r++) {
        VW_T av = (VW_T)(ap[ro[r]]);
#pragma unroll
        for (int v = 0; v < GEMM_NV; v++) acc[r][v] = fma(av, bv[v], acc[r][v]);
      }
    }
  }

  global REAL *cp = c + c_off + bi * M * N;
  const bool full_row = j0 == j0n && j0 + NR <= N;
#pragma unroll
  for (int r = 0; r < GEMM_MR; r++) {
    const int i = i0 + r;
    if (i < i0n || i >= M) continue;
    if (full_row) {
#pragma unroll
      for (int v = 0; v < GEMM_NV; v++) VW_STORE(acc[r][v], v, cp + i * N + j0);
    } else {
      REAL t[NR];
#pragma unroll
      for (int v = 0; v < GEMM_NV; v++) VW_STORE(acc[r][v], v, t);
      for (int q = 0; q < NR; q++) {
        const int j = j0 + q;
        if (j >= j0n && j < N) cp[i * N + j] = t[q];
      }
    }
  }
}

/* A[i,k] = a[i*lda + k]; op(B)[k,j] = b[j*ldb + k]; C [M,N] contiguous.
 * Global size: (column tiles, row tiles, batch), any local size. */
kernel void gemm_nt(global const REAL *a, int a_off, global const REAL *b, int b_off,
                    global REAL *c, int c_off, int M, int N, int K, int lda, int ldb, int nbd,
                    int8 bshape, int8 bsa, int8 bsb) {
  const int jt = get_global_id(0), it = get_global_id(1), bi = get_global_id(2);
  const int i0n = it * GEMM_TM, j0n = jt * GEMM_TN;
  if (i0n >= M || j0n >= N) return;
  int oa, ob;
  gemm_batch_offsets(bi, nbd, bshape, bsa, bsb, &oa, &ob);
  const int i0 = min(i0n, max(M - GEMM_TM, 0));
  const int j0 = min(j0n, max(N - GEMM_TN, 0));
  global const REAL *ar[GEMM_TM];
  global const REAL *br[GEMM_TN];
#pragma unroll
  for (int r = 0; r < GEMM_TM; r++) ar[r] = a + a_off + oa + min(i0 + r, M - 1) * lda;
#pragma unroll
  for (int q = 0; q < GEMM_TN; q++) br[q] = b + b_off + ob + min(j0 + q, N - 1) * ldb;
  VK_T acc[GEMM_TM][GEMM_TN];
#pragma unroll
  for (int r = 0; r < GEMM_TM; r++)
#pragma unroll
    for (int q = 0; q < GEMM_TN; q++) acc[r][q] = (VK_T)0;
  int k = 0;
  for (; k + GEMM_VK <= K; k += GEMM_VK) {
    VK_T av[GEMM_TM], bv[GEMM_TN];
#pragma unroll
    for (int r = 0; r < GEMM_TM; r++) av[r] = VK_LOAD(0, ar[r] + k);
#pragma unroll
    for (int q = 0; q < GEMM_TN; q++) bv[q] = VK_LOAD(0, br[q] + k);
#pragma unroll
    for (int r = 0; r < GEMM_TM; r++)
#pragma unroll
      for (int q = 0; q < GEMM_TN; q++) acc[r][q] = fma(av[r], bv[q], acc[r][q]);
  }
  REAL s[GEMM_TM][GEMM_TN];
#pragma unroll
  for (int r = 0; r < GEMM_TM; r++)
#pragma unroll
    for (int q = 0; q < GEMM_TN; q++) s[r][q] = HSUM(acc[r][q]);
  for (; k < K; k++) {
#pragma unroll
    for (int r = 0; r < GEMM_TM; r++)
#pragma unroll
      for (int q = 0; q < GEMM_TN; q++) s[r][q] = fma(ar[r][k], br[q][k], s[r][q]);
  }
  global REAL *cp = c + c_off + bi * M * N;
#pragma unroll
  for (int r = 0; r < GEMM_TM; r++) {
    const int i = i0 + r;
    if (i < i0n || i >= M) continue;
#pragma unroll
    for (int q = 0; q < GEMM_TN; q++) {
      const int j = j0 + q;
      if (j >= j0n && j < N) cp[i * N + j] = s[r][q];
    }
  }
}

/* dst[bt][c][r] = src[bt][r][c] for a contiguous [batch, rows, cols] source;
 * dst rows are ld >= rows apart (longer rows keep gemm_nn off 4 KiB
 * strides). One work-item per GEMM_TB x GEMM_TB block (global: col blocks,
 * row blocks, batch): reads rows and writes columns of a block in L1. */
#define GEMM_TB 16
kernel void transpose(global const REAL *src, int s_off, global REAL *dst, int d_off, int rows,
                      int cols, int ld) {
  const int cb = get_global_id(0), rb = get_global_id(1), bt = get_global_id(2);
  const int r0 = rb * GEMM_TB, c0 = cb * GEMM_TB;
  if (r0 >= rows || c0 >= cols) return;
  const int r1 = min(r0 + GEMM_TB, rows), c1 = min(c0 + GEMM_TB, cols);
  global const REAL *s = src + s_off + bt * rows * cols;
  global REAL *d = dst + d_off + bt * cols * ld;
  for (int cc = c0; cc < c1; cc++)
    for (int r = r0; r < r1; r++) d[cc * ld + r] = s[r * cols + cc];
}
