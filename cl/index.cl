/* index.cl: indexing ops: gather (serves torch.gather, numpy.take and
 * index_select), column-owned scatter-add (scatter_add and the backward
 * rules of the gathers), one_hot, and triangular masks (tril/triu).
 *
 * Indices are i32. An index t addresses a dim of size `dim` as t (0 <= t <
 * dim) or t + dim (-dim <= t < 0); anything else is out of range: gathers
 * read 0 there and scatters drop the entry. Nothing ever reads or writes
 * outside a tensor, no host read-back (and so no sync) is needed, and the
 * backward rules follow the same rule, so gradients match the function
 * actually computed.
 *
 * Scatter-add and float atomics: OpenCL 1.2 has no float atomics, and a
 * compare-and-swap loop (32-bit for f32, cl_khr_int64_base_atomics for f64)
 * would add in a random order, so float results would change from run to
 * run. Instead the host first writes the base (x, or zeros) with a plain
 * buffer copy/fill, then scatter_cols gives each work-item sole ownership of
 * one "column" of the destination (all coordinates but the axis fixed): it
 * walks that column's index entries in ascending order and adds each one.
 * No two work-items write the same element, so there are no atomics and no
 * races, the result is deterministic and the same code serves f32, f64, i32
 * and u8 (integers wrap). The trade-off: parallelism is the number of
 * columns and each work-item's work is the column's index length K, so a
 * scatter with few columns and a long index (a 1-D histogram, graph message
 * passing with few features) runs nearly serially, where atomics would
 * spread it. Embedding/index_select backward (columns = feature size) and
 * gather along a class axis (K small) are the cases it serves well. */

/* Launch shape and argument layout as in cl/shape.cl: a 3-D range with
 * the innermost dim as range dim 0, the next as dim 1, the outer dims folded
 * into dim 2; shapes and strides innermost-first in int8 vectors padded with
 * size-1 dims (0 strides), read through fixed components. */
#define COMP0(v) (v).s0
#define COMP1(v) (v).s1
#define COMP2(v) (v).s2
#define COMP3(v) (v).s3
#define COMP4(v) (v).s4
#define COMP5(v) (v).s5
#define COMP6(v) (v).s6
#define COMP7(v) (v).s7
#define COMP(v, k) COMP##k(v)

/* gather: y (contiguous, oshape) from x along axis `ax` (innermost-first
 * numbering): y[c] = x[c with c[ax] replaced by idx[c]]. x is addressed
 * through xstride (xsa: its stride along the axis), idx through istride
 * (numpy.take passes 0 strides for the dims idx does not have), and `dim` is
 * x's size along the axis. */
#define G_DIM(k, cexpr)                      \
  {                                          \
    int c = (cexpr);                         \
    io += c * COMP(istride, k);              \
    if (ax != k) xo += c * COMP(xstride, k); \
  }
#define G_OUTER(k)                \
  if (ndim > k) {                 \
    int co = r % COMP(oshape, k); \
    r /= COMP(oshape, k);         \
    G_DIM(k, co)                  \
  }

kernel void gather(global const REAL *x, int x_off, global const int *idx, int idx_off,
                   global REAL *y, int y_off, int ndim, int ax, int dim, int xsa, int8 oshape,
                   int8 xstride, int8 istride) {
  int i0 = get_global_id(0), i1 = get_global_id(1);
  if (i0 >= oshape.s0 || i1 >= oshape.s1) return;
  int r = get_global_id(2);
  int yo = (r * oshape.s1 + i1) * oshape.s0 + i0;
  int xo = 0, io = 0;
  G_DIM(0, i0) G_DIM(1, i1)
  G_OUTER(2) G_OUTER(3) G_OUTER(4) G_OUTER(5) G_OUTER(6) G_OUTER(7)
  int t = idx[idx_off + io];
  if (t < 0) t += dim;
  if (t >= 0 && t < dim) MOVE(y + y_off, yo, x + x_off, xo + t * xsa);
  else STORE(y + y_off, yo, 0);
}

/* scatter_cols: y (contiguous, shape dshape, already holding the base)
 * gets, for every index entry k of each column, s[k] added at
 * y[.., idx[k], ..] along axis `ax` (innermost-first numbering). idx and s
 * are addressed with istride / sstride (isa / ssa along the axis) over the
 * index's extent ishape (ishape <= dshape off the axis; columns beyond it
 * get nothing), K = ishape along the axis. 1-D launch.
 *
 * Work-item w owns `cpw` neighbouring columns along the innermost dim (when
 * the axis is not the innermost; else cpw is 1): chunk w % nchunks of that
 * dim, and the other coordinates from w / nchunks. On GPUs cpw is 1, so
 * consecutive work-items take neighbouring columns (coalesced). On CPUs a
 * work-item runs its k loop to the end before the next one starts, so with
 * one column each every k would touch a fresh cache line; a run of cpw
 * columns makes each k a short contiguous row update instead (the
 * embedding backward case). */
#define SC_DIM(k)                       \
  if (ndim > k) {                       \
    if (ax == k) {                      \
      ysa = ystr;                       \
    } else if (k > 0 || ax == 0) {      \
      int c = rem % COMP(dshape, k);    \
      rem /= COMP(dshape, k);           \
      if (c >= COMP(ishape, k)) return; \
      yo += c * ystr;                   \
      io += c * COMP(istride, k);       \
      so += c * COMP(sstride, k);       \
    }                                   \
    ystr *= COMP(dshape, k);            \
  }

kernel void scatter_cols(global REAL *y, int y_off, global const int *idx, int idx_off,
                         global const REAL *s, int s_off, int nitems, int nchunks, int cpw,
                         int ndim, int ax, int J, int K, int isa, int ssa, int8 dshape,
                         int8 ishape, int8 istride, int8 sstride) {
  int w = get_global_id(0);
  if (w >= nitems) return;
  /* columns [c0, c1) of the innermost dim (just one column when ax == 0) */
  int c0 = 0, c1 = 1, rem = w;
  if (ax != 0) {
    c0 = (w % nchunks) * cpw;
    c1 = min(c0 + cpw, ishape.s0);
    rem = w / nchunks;
  }
  int yo = y_off, io = idx_off, so = s_off, ystr = 1, ysa = 1;
  SC_DIM(0) SC_DIM(1) SC_DIM(2) SC_DIM(3) SC_DIM(4) SC_DIM(5) SC_DIM(6) SC_DIM(7)
  int is0 = ax != 0 ? istride.s0 : 0, ss0 = ax != 0 ? sstride.s0 : 0;
  if (is0 == 0) { /* one index per k for the whole run (take/index_select) */
    for (int k = 0; k < K; k++) {
      int t = idx[io + k * isa];
      if (t < 0) t += J;
      if (t < 0 || t >= J) continue;
      global REAL *yr = y + yo + t * ysa;
      global const REAL *sr = s + so + k * ssa;
      for (int c = c0; c < c1; c++) STORE(yr, c, LOAD(yr, c) + LOAD(sr, c * ss0));
    }
    return;
  }
  for (int k = 0; k < K; k++) {
    for (int c = c0; c < c1; c++) {
      int t = idx[io + c * is0 + k * isa];
      if (t < 0) t += J;
      if (t >= 0 && t < J) {
        int p = yo + c + t * ysa;
        STORE(y, p, LOAD(y, p) + LOAD(s, so + c * ss0 + k * ssa));
      }
    }
  }
}

/* one_hot: y[r, c] = (idx[r] == c) over rows r (range dim 1) and classes c
 * (range dim 0); an index outside [0, classes) gives a row of zeros. */
kernel void one_hot(global const int *idx, int idx_off, global REAL *y, int y_off, int rows,
                    int classes) {
  int c = get_global_id(0), r = get_global_id(1);
  if (c >= classes || r >= rows) return;
  STORE(y + y_off, r * classes + c, idx[idx_off + r] == c ? 1 : 0);
}

/* tri: y = x where (col - row <= k) (lower) or (col - row >= k) (upper), else
 * 0, over the last two dims (rows x cols; range dims 0 = col, 1 = row,
 * 2 = matrix) of a contiguous tensor. With has_x 0, x is not read and the
 * kernel writes the keep flag as 1/0 (tril_mask / triu_mask, built as u8). */
kernel void tri(global const REAL *x, int x_off, int has_x, global REAL *y, int y_off, int rows,
                int cols, int k, int upper) {
  int c = get_global_id(0), r = get_global_id(1);
  if (c >= cols || r >= rows) return;
  int i = (get_global_id(2) * rows + r) * cols + c;
  int keep = upper ? (c - r >= k) : (c - r <= k);
  if (has_x && keep) MOVE(y + y_off, i, x + x_off, i);
  else STORE(y + y_off, i, has_x ? 0 : keep ? 1 : 0);
}
