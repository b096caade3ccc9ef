/* shape.cl: data movement for the shape ops (permute, broadcast_to, slice,
 * concat/stack/split, contiguous copies) and pad with its backward rule.
 *
 * One general strided copy serves every layout change: the host describes a
 * box of up to 8 dims, a source and a destination stride per dim (negative
 * for reversed slices, 0 for broadcast) and element offsets, collapses
 * mergeable dims and drops size-1 dims first, and uses clEnqueueCopyBuffer
 * instead when the box is one contiguous run. All kernels are one work-item
 * per written element, with no local memory and no barriers (streaming; on
 * PoCL this vectorises across work-items). Index math is int: every tensor
 * holds fewer than 2^31 elements. */

/* strided_copy: for each point c of the box `shape` (ndim dims, row-major
 * order of work-items), y[y_off + sum c[d]*ys[d]] = x[x_off + sum c[d]*xs[d]].
 * Work-item i walks dims from the innermost, so consecutive work-items touch
 * consecutive innermost elements (coalesced when the inner strides are 1).
 * The destination regions of different points never overlap (the host only
 * writes boxes of distinct elements), so no ordering is needed. */
kernel void strided_copy(global const REAL *x, int x_off, global REAL *y, int y_off, int n,
                         int ndim, int8 shape, int8 xstride, int8 ystride) {
  int i = get_global_id(0);
  if (i >= n) return;
  int sh[8] = {shape.s0, shape.s1, shape.s2, shape.s3, shape.s4, shape.s5, shape.s6, shape.s7};
  int xs[8] = {xstride.s0, xstride.s1, xstride.s2, xstride.s3,
               xstride.s4, xstride.s5, xstride.s6, xstride.s7};
  int ys[8] = {ystride.s0, ystride.s1, ystride.s2, ystride.s3,
               ystride.s4, ystride.s5, ystride.s6, ystride.s7};
  int rem = i, xo = x_off, yo = y_off;
  for (int d = ndim - 1; d >= 0; d--) {
    int c = rem % sh[d];
    rem /= sh[d];
    xo += c * xs[d];
    yo += c * ys[d];
  }
  y[yo] = x[xo];
}

/* pad: y (contiguous, yshape) from x (contiguous, xshape) with `before`
 * elements added in front of each dim. mode 0 constant (`value`), 1 reflect
 * (mirror without repeating the edge; the host checks pad < dim so one
 * reflection suffices), 2 replicate (clamp to the edge). */
kernel void pad(global const REAL *x, int x_off, global REAL *y, int y_off, int n, int ndim,
                int8 yshape, int8 xshape, int8 before, int mode, ACC value) {
  int i = get_global_id(0);
  if (i >= n) return;
  int ys[8] = {yshape.s0, yshape.s1, yshape.s2, yshape.s3, yshape.s4, yshape.s5, yshape.s6, yshape.s7};
  int xs[8] = {xshape.s0, xshape.s1, xshape.s2, xshape.s3, xshape.s4, xshape.s5, xshape.s6, xshape.s7};
  int bf[8] = {before.s0, before.s1, before.s2, before.s3, before.s4, before.s5, before.s6, before.s7};
  int rem = i, xo = 0, stride = 1, inside = 1;
  for (int d = ndim - 1; d >= 0; d--) {
    int c = rem % ys[d] - bf[d];
    rem /= ys[d];
    int dim = xs[d];
    if (c < 0 || c >= dim) {
      if (mode == 0) inside = 0;
      else if (mode == 1) c = c < 0 ? -c : 2 * (dim - 1) - c;
      else c = c < 0 ? 0 : dim - 1;
    }
    xo += c * stride;
    stride *= dim;
  }
  if (inside) y[y_off + i] = x[x_off + xo];
  else STORE(y + y_off, i, value);
}

/* pad_backward: gx[c] = sum of g over every padded position that read x[c].
 * One work-item per input element gathers its contributions instead of
 * scattering (no float atomics in OpenCL 1.2, and the order of the sum is
 * fixed, so results are deterministic). Per dim the positions reading
 * coordinate c form at most 3 runs: the copy itself (constant), plus the
 * mirrored points (reflect), or the whole edge run (replicate). The work-item
 * walks the product of those runs; its cost is its number of contributions. */
kernel void pad_backward(global const REAL *g, int g_off, global REAL *gx, int gx_off, int n,
                         int ndim, int8 gshape, int8 xshape, int8 before, int mode) {
  int i = get_global_id(0);
  if (i >= n) return;
  int gs[8] = {gshape.s0, gshape.s1, gshape.s2, gshape.s3, gshape.s4, gshape.s5, gshape.s6, gshape.s7};
  int xs[8] = {xshape.s0, xshape.s1, xshape.s2, xshape.s3, xshape.s4, xshape.s5, xshape.s6, xshape.s7};
  int bf[8] = {before.s0, before.s1, before.s2, before.s3, before.s4, before.s5, before.s6, before.s7};
  int lo[8][3], len[8][3], cnt[8], gst[8];
  int rem = i, stride = 1, total = 1;
  for (int d = ndim - 1; d >= 0; d--) {
    int dim = xs[d], b = bf[d], after = gs[d] - dim - b;
    int c = rem % dim;
    rem /= dim;
    gst[d] = stride;
    stride *= gs[d];
    lo[d][0] = c + b;
    len[d][0] = 1;
    len[d][1] = 0;
    len[d][2] = 0;
    if (mode == 1) {
      if (c > 0 && c <= b) { lo[d][1] = b - c; len[d][1] = 1; }
      if (c < dim - 1 && c >= dim - 1 - after) { lo[d][2] = b + 2 * (dim - 1) - c; len[d][2] = 1; }
    } else if (mode == 2) {
      if (c == 0) { lo[d][0] = 0; len[d][0] = b + 1; }
      if (c == dim - 1) len[d][0] = gs[d] - lo[d][0];
    }
    cnt[d] = len[d][0] + len[d][1] + len[d][2];
    total *= cnt[d];
  }
  ACC acc = 0;
  for (int r = 0; r < total; r++) {
    int q = r, off = 0;
    for (int d = ndim - 1; d >= 0; d--) {
      int j = q % cnt[d];
      q /= cnt[d];
      int k = 0;
      while (j >= len[d][k]) { j -= len[d][k]; k++; }
      off += (lo[d][k] + j) * gst[d];
    }
    acc += LOAD(g + g_off, off);
  }
  STORE(gx + gx_off, i, acc);
}
