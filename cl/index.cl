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

/* gather: y (contiguous, shape oshape) from x along `axis`:
 * y[c] = x[c with c[axis] replaced by idx[c]]. x is addressed through
 * xstride (its dims other than `axis` must cover oshape), idx through
 * istride (numpy.take passes 0 strides for the dims idx does not have), and
 * `dim` is x's size along the axis. */
kernel void gather(global const REAL *x, int x_off, global const int *idx, int idx_off,
                   global REAL *y, int y_off, int n, int ndim, int axis, int dim, int8 oshape,
                   int8 xstride, int8 istride) {
  int i = get_global_id(0);
  if (i >= n) return;
  int os[8] = {oshape.s0, oshape.s1, oshape.s2, oshape.s3, oshape.s4, oshape.s5, oshape.s6, oshape.s7};
  int xs[8] = {xstride.s0, xstride.s1, xstride.s2, xstride.s3,
               xstride.s4, xstride.s5, xstride.s6, xstride.s7};
  int is[8] = {istride.s0, istride.s1, istride.s2, istride.s3,
               istride.s4, istride.s5, istride.s6, istride.s7};
  int rem = i, xo = 0, io = 0;
  for (int d = ndim - 1; d >= 0; d--) {
    int c = rem % os[d];
    rem /= os[d];
    io += c * is[d];
    if (d != axis) xo += c * xs[d];
  }
  int t = idx[idx_off + io];
  if (t < 0) t += dim;
  if (t >= 0 && t < dim) y[y_off + i] = x[x_off + xo + t * xs[axis]];
  else y[y_off + i] = (REAL)0;
}

/* scatter_cols: y (contiguous, shape dshape, already holding the base)
 * gets, for every index entry k of each column, s[k] added at
 * y[.., idx[k], ..] along `axis`. idx and s are addressed with istride /
 * sstride over the index's extent ishape (ishape[d] <= dshape[d] for
 * d != axis; columns beyond it get nothing). Work-item w owns column w
 * (consecutive work-items take neighbouring columns, which are neighbouring
 * addresses when the axis is not the last). */
kernel void scatter_cols(global REAL *y, int y_off, global const int *idx, int idx_off,
                         global const REAL *s, int s_off, int ncols, int ndim, int axis,
                         int8 dshape, int8 ishape, int8 istride, int8 sstride) {
  int w = get_global_id(0);
  if (w >= ncols) return;
  int ds[8] = {dshape.s0, dshape.s1, dshape.s2, dshape.s3, dshape.s4, dshape.s5, dshape.s6, dshape.s7};
  int ish[8] = {ishape.s0, ishape.s1, ishape.s2, ishape.s3, ishape.s4, ishape.s5, ishape.s6, ishape.s7};
  int ist[8] = {istride.s0, istride.s1, istride.s2, istride.s3,
                istride.s4, istride.s5, istride.s6, istride.s7};
  int sst[8] = {sstride.s0, sstride.s1, sstride.s2, sstride.s3,
                sstride.s4, sstride.s5, sstride.s6, sstride.s7};
  int rem = w, yo = y_off, io = idx_off, so = s_off, ystr = 1, ysa = 1;
  for (int d = ndim - 1; d >= 0; d--) {
    if (d == axis) {
      ysa = ystr;
    } else {
      int c = rem % ds[d];
      rem /= ds[d];
      if (c >= ish[d]) return;
      yo += c * ystr;
      io += c * ist[d];
      so += c * sst[d];
    }
    ystr *= ds[d];
  }
  int J = ds[axis], K = ish[axis], ika = ist[axis], ska = sst[axis];
  for (int k = 0; k < K; k++) {
    int t = idx[io + k * ika];
    if (t < 0) t += J;
    if (t >= 0 && t < J) {
      int p = yo + t * ysa;
      STORE(y, p, LOAD(y, p) + LOAD(s, so + k * ska));
    }
  }
}

/* one_hot: y[r, c] = (idx[r] == c) for r over the indices, c over `classes`
 * (an index outside [0, classes) gives a row of zeros). */
kernel void one_hot(global const int *idx, int idx_off, global REAL *y, int y_off, int n,
                    int classes) {
  int i = get_global_id(0);
  if (i >= n) return;
  int r = i / classes, c = i - r * classes;
  y[y_off + i] = (REAL)(idx[idx_off + r] == c ? 1 : 0);
}

/* tri: y = x where (col - row <= k) (lower) or (col - row >= k) (upper), else
 * 0, over the last two dims (rows x cols) of a contiguous tensor. */
kernel void tri(global const REAL *x, int x_off, global REAL *y, int y_off, int n, int rows,
                int cols, int k, int upper) {
  int i = get_global_id(0);
  if (i >= n) return;
  int c = i % cols, r = (i / cols) % rows;
  int keep = upper ? (c - r >= k) : (c - r <= k);
  y[y_off + i] = keep ? x[x_off + i] : (REAL)0;
}

/* tri_mask: the keep flag of `tri` as 1/0 for a rows x cols matrix. */
kernel void tri_mask(global REAL *y, int y_off, int n, int cols, int k, int upper) {
  int i = get_global_id(0);
  if (i >= n) return;
  int c = i % cols, r = i / cols;
  int keep = upper ? (c - r >= k) : (c - r <= k);
  y[y_off + i] = (REAL)(keep ? 1 : 0);
}
