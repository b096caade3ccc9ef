/* shape.cl: data movement for the shape ops (permute, broadcast_to, slice,
 * concat/stack/split, contiguous copies) and pad with its backward rule.
 *
 * One general strided copy serves every layout change: the host describes a
 * box of up to 8 dims, a source and a destination stride per dim (negative
 * for reversed slices, 0 for broadcast) and element offsets, collapses
 * mergeable dims and drops size-1 dims first, and uses clEnqueueCopyBuffer
 * instead when the box is one contiguous run.
 *
 * Launch shape: every kernel here runs on a 3-D range over its box with the
 * innermost dim as range dim 0, the next as dim 1 and all outer dims folded
 * into dim 2 (local size (l0, l1, 1), dims 0 and 1 rounded up and guarded).
 * Dims 0 and 1 then need no division, and the outer coordinates are
 * uniform across a work-group. Shapes and strides arrive innermost-first in
 * int8 vectors, padded with size-1 dims, and are read through fixed vector
 * components (macros unrolled over 8 dims): dynamically indexed private
 * arrays would live on the stack and stop PoCL vectorising across
 * work-items. No local memory, no barriers. */

#define COMP0(v) (v).s0
#define COMP1(v) (v).s1
#define COMP2(v) (v).s2
#define COMP3(v) (v).s3
#define COMP4(v) (v).s4
#define COMP5(v) (v).s5
#define COMP6(v) (v).s6
#define COMP7(v) (v).s7
#define COMP(v, k) COMP##k(v)

/* strided_copy: for each point c of the box (n0 x n1 x outer dims oshape,
 * innermost first), y[y_off + sum c*ys] = x[x_off + sum c*xs]. Destination
 * points never overlap (the host only writes boxes of distinct elements). */
#define OUTER_STEP(k)                              \
  if (nouter > k) {                                \
    int c = r % COMP(oshape, k);                   \
    r /= COMP(oshape, k);                          \
    xo += c * COMP(oxs, k);                        \
    yo += c * COMP(oys, k);                        \
  }

kernel void strided_copy(global const REAL *x, int x_off, global REAL *y, int y_off, int n0,
                         int n1, int xs0, int ys0, int xs1, int ys1, int nouter, int8 oshape,
                         int8 oxs, int8 oys) {
  int i0 = get_global_id(0), i1 = get_global_id(1);
  if (i0 >= n0 || i1 >= n1) return;
  int r = get_global_id(2);
  int xo = x_off + i0 * xs0 + i1 * xs1, yo = y_off + i0 * ys0 + i1 * ys1;
  OUTER_STEP(0) OUTER_STEP(1) OUTER_STEP(2) OUTER_STEP(3) OUTER_STEP(4) OUTER_STEP(5)
  MOVE(y, yo, x, xo);
}

/* transpose_tile: the strided copy for boxes whose destination is
 * contiguous along range dim 0 (y stride 1, x stride xs0) while the source
 * is contiguous along range dim 1 (x stride 1, y stride ys1): a transpose in
 * the last two dims, NCHW <-> NHWC. Reading the source through xs0 would
 * touch a new cache line (or memory transaction) per element, so a 16x16
 * work-group loads a tile along the source's contiguous dim into local
 * memory, waits at one barrier (outside any loop, so cheap on PoCL too) and
 * writes it along the destination's contiguous dim. Tiles are 32x32 moved
 * by 32x8 work-items (4 rows each), so there are few, large work-groups:
 * PoCL pays a fixed cost per group. The range is rounded up to whole tiles
 * and every work-item reaches the barrier (loads and stores are guarded
 * instead), so partial tiles are safe. Needs 256 work-items per group; the
 * host falls back to strided_copy otherwise. */
#define TILE 32
#define ROWS 8
kernel void transpose_tile(global const REAL *x, int x_off, global REAL *y, int y_off, int n0,
                           int n1, int xs0, int ys1, int nouter, int8 oshape, int8 oxs,
                           int8 oys) {
  local RAW_T tile[TILE][TILE + 1];
  int lx = get_local_id(0), ly = get_local_id(1);
  int b0 = get_group_id(0) * TILE, b1 = get_group_id(1) * TILE;
  int r = get_global_id(2);
  int xo = x_off, yo = y_off;
  OUTER_STEP(0) OUTER_STEP(1) OUTER_STEP(2) OUTER_STEP(3) OUTER_STEP(4) OUTER_STEP(5)
  int i1 = b1 + lx; /* load: consecutive lx read consecutive x */
  for (int j = ly; j < TILE; j += ROWS) {
    int i0 = b0 + j;
    if (i0 < n0 && i1 < n1) tile[j][lx] = RAW_LD(x, xo + i0 * xs0 + i1);
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  int i0 = b0 + lx; /* store: consecutive lx write consecutive y */
  for (int j = ly; j < TILE; j += ROWS) {
    i1 = b1 + j;
    if (i0 < n0 && i1 < n1) ((global RAW_T *)y)[yo + i0 + i1 * ys1] = tile[lx][j];
  }
}

/* Maps output coordinate c of a dim (already minus its `before` pad) to the
 * input coordinate: mode 0 constant (-1 outside), 1 reflect (mirror without
 * repeating the edge; the host checks pad < dim so one reflection is
 * enough), 2 replicate (clamp to the edge), 3 circular (wrap; the host
 * checks pad <= dim, so one wrap is enough). */
inline int pad_map(int c, int dim, int mode) {
  if (c >= 0 && c < dim) return c;
  if (mode == 0) return -1;
  if (mode == 1) return c < 0 ? -c : 2 * (dim - 1) - c;
  if (mode == 3) return c < 0 ? c + dim : c - dim;
  return c < 0 ? 0 : dim - 1;
}

/* pad: y (contiguous, yshape) from x (contiguous, xshape) with `before`
 * elements in front of each dim; shapes innermost first, padded with 1s.
 * Launched over y as (yshape.s0, yshape.s1, rest). */
#define PAD_DIM(k, cexpr)                                  \
  {                                                        \
    int q = pad_map((cexpr) - COMP(before, k), COMP(xshape, k), mode); \
    if (q < 0) inside = 0;                                 \
    xo += q * xst;                                         \
    xst *= COMP(xshape, k);                                \
  }
#define PAD_OUTER(k)                                       \
  if (ndim > k) {                                          \
    int co = r % COMP(yshape, k);                          \
    r /= COMP(yshape, k);                                  \
    PAD_DIM(k, co)                                         \
  }

kernel void pad(global const REAL *x, int x_off, global REAL *y, int y_off, int ndim,
                int8 yshape, int8 xshape, int8 before, int mode, ACC value) {
  int i0 = get_global_id(0), i1 = get_global_id(1);
  if (i0 >= yshape.s0 || i1 >= yshape.s1) return;
  int r = get_global_id(2);
  int yo = (r * yshape.s1 + i1) * yshape.s0 + i0;
  int xo = 0, xst = 1, inside = 1;
  PAD_DIM(0, i0)
  PAD_DIM(1, i1)
  PAD_OUTER(2) PAD_OUTER(3) PAD_OUTER(4) PAD_OUTER(5) PAD_OUTER(6) PAD_OUTER(7)
  if (inside) MOVE(y + y_off, yo, x + x_off, xo);
  else STORE(y + y_off, yo, value);
}

/* pad_backward: gx[c] = sum of g over every padded position that read x[c].
 * One work-item per input element gathers its contributions instead of
 * scattering (no float atomics in OpenCL 1.2, and the order of the sum is
 * fixed, so results are deterministic). Per dim the positions reading
 * coordinate c form at most 3 runs: the copy itself (constant), plus the
 * mirrored points (reflect), or the whole edge run (replicate), or the
 * wrapped copies one period before and after (circular). The
 * work-item walks the product of those runs, so its cost is its number of
 * contributions (1 for constant, a crop). Launched over x as
 * (xshape.s0, xshape.s1, rest); shapes innermost first, padded with 1s. */
#define BW_DIM(k, cexpr)                                                          \
  int lo0_##k, len0_##k = 1, lo1_##k = 0, len1_##k = 0, lo2_##k = 0, len2_##k = 0, \
      gst_##k = gstr;                                                             \
  {                                                                               \
    int c = (cexpr), dim = COMP(xshape, k), b = COMP(before, k);                  \
    int after = COMP(gshape, k) - dim - b;                                        \
    lo0_##k = c + b;                                                              \
    if (mode == 1) {                                                              \
      if (c > 0 && c <= b) { lo1_##k = b - c; len1_##k = 1; }                     \
      if (c < dim - 1 && c >= dim - 1 - after) { lo2_##k = b + 2 * (dim - 1) - c; len2_##k = 1; } \
    } else if (mode == 2) {                                                       \
      if (c == 0) { lo0_##k = 0; len0_##k = b + 1; }                              \
      if (c == dim - 1) len0_##k = COMP(gshape, k) - lo0_##k;                     \
    } else if (mode == 3) {                                                       \
      if (c >= dim - b) { lo1_##k = c + b - dim; len1_##k = 1; }                  \
      if (c < after) { lo2_##k = c + b + dim; len2_##k = 1; }                     \
    }                                                                             \
    gstr *= COMP(gshape, k);                                                      \
    total *= len0_##k + len1_##k + len2_##k;                                      \
  }
#define BW_OUTER_C(k) (ndim > k ? (rem % COMP(xshape, k)) : 0)
#define BW_NEXT(k) if (ndim > k) rem /= COMP(xshape, k);
#define BW_PICK(k)                                                \
  {                                                               \
    int cnt = len0_##k + len1_##k + len2_##k;                     \
    int j = q % cnt;                                              \
    q /= cnt;                                                     \
    int p = j < len0_##k ? lo0_##k + j                            \
          : j < len0_##k + len1_##k ? lo1_##k + j - len0_##k      \
          : lo2_##k + j - len0_##k - len1_##k;                    \
    off += p * gst_##k;                                           \
  }

kernel void pad_backward(global const REAL *g, int g_off, global REAL *gx, int gx_off, int ndim,
                         int8 gshape, int8 xshape, int8 before, int mode) {
  int i0 = get_global_id(0), i1 = get_global_id(1);
  if (i0 >= xshape.s0 || i1 >= xshape.s1) return;
  int r = get_global_id(2), rem = r;
  int xo = (r * xshape.s1 + i1) * xshape.s0 + i0;
  int gstr = 1, total = 1;
  BW_DIM(0, i0)
  BW_DIM(1, i1)
  BW_DIM(2, BW_OUTER_C(2)) BW_NEXT(2)
  BW_DIM(3, BW_OUTER_C(3)) BW_NEXT(3)
  BW_DIM(4, BW_OUTER_C(4)) BW_NEXT(4)
  BW_DIM(5, BW_OUTER_C(5)) BW_NEXT(5)
  BW_DIM(6, BW_OUTER_C(6)) BW_NEXT(6)
  BW_DIM(7, BW_OUTER_C(7))
  ACC acc = 0;
  for (int t = 0; t < total; t++) {
    int q = t, off = 0;
    BW_PICK(0) BW_PICK(1) BW_PICK(2) BW_PICK(3) BW_PICK(4) BW_PICK(5) BW_PICK(6) BW_PICK(7)
    acc += LOAD(g + g_off, off);
  }
  STORE(gx + gx_off, xo, acc);
}

/* strided_rows: the box copy when the innermost dim is contiguous on both
 * sides and at least 16 long (attention's head split and merge, [b, s, h, d]
 * <-> [b, h, s, d]): one work-item per row of n0 elements, which it copies
 * with 16-wide vector loads and stores. strided_copy's work-item per element
 * pays the outer coordinates' divisions per element; here they are paid once
 * per row (measured on PoCL, 2 cores: a [32, 128, 12, 32] head split 6.6 ms
 * with strided_copy, a streaming add of that size 0.3 ms). Rows: n1 x the
 * outer dims, i1 fastest. */
kernel void strided_rows(global const REAL *x, int x_off, global REAL *y, int y_off, int n0,
                         int n1, int xs1, int ys1, int nouter, int8 oshape, int8 oxs, int8 oys,
                         int rows) {
  int g = get_global_id(0);
  if (g >= rows) return;
  int i1 = g % n1, r = g / n1;
  int xo = x_off + i1 * xs1, yo = y_off + i1 * ys1;
  OUTER_STEP(0) OUTER_STEP(1) OUTER_STEP(2) OUTER_STEP(3) OUTER_STEP(4) OUTER_STEP(5)
  /* raw bits (RAW_T): the same copy for every dtype, f16 storage included */
  global const RAW_T *s = (global const RAW_T *)(x + xo);
  global RAW_T *d = (global RAW_T *)(y + yo);
  int c = 0;
  for (; c + 16 <= n0; c += 16) vstore16(vload16(0, s + c), 0, d + c);
  for (; c < n0; c++) d[c] = s[c];
}
