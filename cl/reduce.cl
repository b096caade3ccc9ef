/* reduce.cl: reductions over any set of axes, arg-reductions, softmax and
 * log_softmax, and the broadcast kernels that backward rules (and the
 * long-row softmax path) use to go from a reduced shape back to the input.
 *
 * Design note. The host merges adjacent axes with the same role, so any axes
 * set becomes alternating groups of kept and reduced dims (at most 8 of
 * each, passed as int8 shape/stride vectors, innermost last). Work-item
 * (o, c) reduces chunk c of output o's reduced index space: with one chunk
 * per output ([N, D] rows, the softmax/layer-norm pattern) a work-item owns
 * a row; with few outputs (a full reduction of 2^22+ elements) the host cuts
 * the reduced space into chunks, writes one partial per (o, c) and reduces
 * the partials with the same kernels again (multi-pass: no local memory, no
 * barriers, which on PoCL cost ~30x inside loops, and nothing special about
 * partial work-groups). Two layouts: "o-fast" (neighbouring work-items take
 * neighbouring outputs, each chunk a contiguous range of the reduced space:
 * streams per work-item on CPUs, coalesces on GPUs when kept axes are
 * innermost) and "c-fast" (neighbouring work-items take neighbouring chunks
 * of one output, interleaved element by element: coalesces on GPUs when the
 * reduced axis is innermost).
 *
 * Vectors. PoCL vectorises across work-items only loop-free kernels, so a
 * work-item that loops must vectorise itself: unit-stride runs go through
 * 16-wide vloads with vector accumulators and a lane tree at the end, and
 * when the innermost axis is kept (reducing a leading axis: sum over the
 * batch, softmax over dim 0) reduce_cols/softmax_cols give each work-item 16
 * neighbouring outputs and walk the rows with one 16-wide load per row,
 * instead of one work-item per column striding through memory; the
 * broadcast kernels take 16 elements per work-item too. var accumulates
 * shifted data (OP_SUMSQ2: ((x - K) - dm)^2 with K the reduction's first
 * element and dm the mean of x - K, both per output), so a mean far larger
 * than the spread is never rounded to f32 as one number (src/ops/reduce.c,
 * lam_var). The op of `reduce` is a runtime argument
 * switched outside the loops (one program per dtype); float-only ops are
 * compiled out of the i32 program. */

#if defined(LAM_F32) || defined(LAM_F64) || defined(LAM_F16)
#define LAM_FLOAT 1
#define LOWEST (-INFINITY)
#define HIGHEST (INFINITY)
#else
#define LOWEST (INT_MIN)
#define HIGHEST (INT_MAX)
#endif

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define ACCV CAT(ACC, 16)
#define ACC8V CAT(ACC, 8)
#define ACC4V CAT(ACC, 4)
#define ACC2V CAT(ACC, 2)
/* REAL equals ACC for every dtype this file is built for (f32, f64, i32). */
#define VLOAD(p, i) VLOAD16(0, (p) + (i))
/* select() masks need the element width of ACC. */
#ifdef LAM_F64
#define TO_MASKV convert_long16
#else
#define TO_MASKV convert_int16
#endif

/* Op codes: keep in sync with lam__red_op in src/ops/reduce_internal.h. */
#define OP_SUM 0
#define OP_PROD 1
#define OP_MAX 2
#define OP_MIN 3
#define OP_FIRST 4      /* x at reduced index 0 (the shift for var) */
#define OP_SUMEXP 5     /* sum exp(x - sh[o]) (an infinite sh counts as 0) */
#define OP_SUMSQ 6      /* sum (x - sh[o])^2 */
#define OP_SUMSHIFT 7   /* sum (x - sh[o]) */
#define OP_DOT 8        /* sum x * x2 */
#define OP_COUNTEQ 9    /* count of x == sh[o] */
#define OP_PRODNZ 10    /* product of the non-zero x */
#define OP_COUNTZERO 11 /* count of x == 0 */
#define OP_SUMSQ2 12    /* sum ((x - sh[o]) - x2[o])^2 (var: pivot, shifted mean) */

#define POST_SCALE 0    /* y = acc * scale */
#define POST_SHIFT 1    /* y = sh[o] + acc * scale */
#define POST_LOGSHIFT 2 /* y = sh'[o] + log(acc), sh' = 0 where sh is infinite */

/* max/min of scalars (C_) and vectors of any width (CV_). Floats propagate
 * NaN (torch): once a is NaN no comparison replaces it. */
#ifdef LAM_FLOAT
#define ISNAN_S(v) isnan(v)
#define C_MAX(a, b) (((b) > (a) || isnan(b)) ? (b) : (a))
#define C_MIN(a, b) (((b) < (a) || isnan(b)) ? (b) : (a))
#define CV_MAX(a, b) select((a), (b), ((b) > (a)) | isnan(b))
#define CV_MIN(a, b) select((a), (b), ((b) < (a)) | isnan(b))
#else
#define ISNAN_S(v) 0
#define C_MAX(a, b) max((a), (b))
#define C_MIN(a, b) min((a), (b))
#define CV_MAX(a, b) max((a), (b))
#define CV_MIN(a, b) min((a), (b))
#endif
#define C_ADD(a, b) ((a) + (b))
#define C_MUL(a, b) ((a) * (b))

/* Steps: a accumulates element i; s is the shift (scalar or vector). */
#define S_SUM(a, i, s) a += LOAD(x, i)
#define S_PROD(a, i, s) a *= LOAD(x, i)
#define S_MAX(a, i, s) a = C_MAX(a, LOAD(x, i))
#define S_MIN(a, i, s) a = C_MIN(a, LOAD(x, i))
#define S_SUMEXP(a, i, s) a += exp(LOAD(x, i) - (s))
#define S_SUMSQ(a, i, s) { ACC d_ = LOAD(x, i) - (s); a += d_ * d_; }
#define S_SUMSHIFT(a, i, s) a += LOAD(x, i) - (s)
#define S_DOT(a, i, s) a += LOAD(x, i) * LOAD(x2, i)
#define S_COUNTEQ(a, i, s) a += (LOAD(x, i) == (s)) ? (ACC)1 : (ACC)0
#define S_PRODNZ(a, i, s) { ACC v_ = LOAD(x, i); a *= (v_ == (ACC)0) ? (ACC)1 : v_; }
#define S_COUNTZERO(a, i, s) a += (LOAD(x, i) == (ACC)0) ? (ACC)1 : (ACC)0
#define S_SUMSQ2(a, i, s) { ACC d_ = (LOAD(x, i) - (s)) - sh2; a += d_ * d_; }

/* The same steps on 16 consecutive elements. */
#define V_SUM(a, i, s) a += VLOAD(x, i)
#define V_PROD(a, i, s) a *= VLOAD(x, i)
#define V_MAX(a, i, s) a = CV_MAX(a, VLOAD(x, i))
#define V_MIN(a, i, s) a = CV_MIN(a, VLOAD(x, i))
#define V_SUMEXP(a, i, s) a += exp(VLOAD(x, i) - (s))
#define V_SUMSQ(a, i, s) { ACCV d_ = VLOAD(x, i) - (s); a += d_ * d_; }
#define V_SUMSHIFT(a, i, s) a += VLOAD(x, i) - (s)
#define V_DOT(a, i, s) a += VLOAD(x, i) * VLOAD(x2, i)
#define V_COUNTEQ(a, i, s) a += select((ACCV)0, (ACCV)1, VLOAD(x, i) == (s))
#define V_PRODNZ(a, i, s) { ACCV v_ = VLOAD(x, i); a *= select(v_, (ACCV)1, v_ == (ACCV)0); }
#define V_COUNTZERO(a, i, s) a += select((ACCV)0, (ACCV)1, VLOAD(x, i) == (ACCV)0)
#define V_SUMSQ2(a, i, s) { ACCV d_ = (VLOAD(x, i) - (s)) - sh2; a += d_ * d_; }

/* Lane trees of a 16-vector down to one value. */
#define HRED_FN(NAME, CV, CS)                                                   \
  inline ACC NAME(ACCV v) {                                                     \
    ACC8V h8 = CV(v.lo, v.hi);                                                  \
    ACC4V h4 = CV(h8.lo, h8.hi);                                                \
    ACC2V h2 = CV(h4.lo, h4.hi);                                                \
    return CS(h2.x, h2.y);                                                      \
  }
HRED_FN(hred_add, C_ADD, C_ADD)
HRED_FN(hred_mul, C_MUL, C_MUL)
HRED_FN(hred_max, CV_MAX, C_MAX)
HRED_FN(hred_min, CV_MIN, C_MIN)

/* Reduced-space offset of outer reduced index q (every group but the last). */
inline int red_qoff(int q, int nr, const int *rs, const int *rst) {
  int off = 0;
  for (int d = nr - 2; d >= 0; d--) {
    off += (q % rs[d]) * rst[d];
    q /= rs[d];
  }
  return off;
}

/* Walks one output's part of the reduced space from `base`, calling
 * STEP(acc, index, shift) (and VSTEP on unit-stride runs). c-fast: element t
 * of each innermost run belongs to chunk t % nchunk. o-fast: chunk c is the
 * range [c*clen, (c+1)*clen) of the flattened reduced space. Four scalar
 * accumulators break the dependency chain; the vector one is folded into a0
 * at the end. */
#define RED_SCALAR(INIT, STEP, VSTEP, COMB, HRED)                                     \
  {                                                                             \
    ACC a0 = INIT, a1 = INIT, a2 = INIT, a3 = INIT;                             \
    ACCV va = (ACCV)(INIT);                                                     \
    if (cfast) {                                                                \
      for (int q = 0; q < Q; q++) {                                             \
        int p = base + red_qoff(q, nr, rs, rst);                                \
        int t = c;                                                              \
        for (; t + 3 * nchunk < R0; t += 4 * nchunk) {                          \
          STEP(a0, p + t * s0, shv);                                            \
          STEP(a1, p + (t + nchunk) * s0, shv);                                 \
          STEP(a2, p + (t + 2 * nchunk) * s0, shv);                             \
          STEP(a3, p + (t + 3 * nchunk) * s0, shv);                             \
        }                                                                       \
        for (; t < R0; t += nchunk) STEP(a0, p + t * s0, shv);                  \
      }                                                                         \
    } else {                                                                    \
      int r = c * clen;                                                         \
      int rend = min(r + clen, Q * R0);                                         \
      int q = r / R0, t = r - q * R0;                                           \
      while (r < rend) {                                                        \
        int tend = min(R0, t + (rend - r));                                     \
        r += tend - t;                                                          \
        int p = base + red_qoff(q, nr, rs, rst) + t * s0;                       \
        if (s0 == 1)                                                            \
          for (; t + 16 <= tend; t += 16, p += 16) VSTEP(va, p, shv);           \
        for (; t + 4 <= tend; t += 4, p += 4 * s0) {                            \
          STEP(a0, p, shv);                                                     \
          STEP(a1, p + s0, shv);                                                \
          STEP(a2, p + 2 * s0, shv);                                            \
          STEP(a3, p + 3 * s0, shv);                                            \
        }                                                                       \
        for (; t < tend; t++, p += s0) STEP(a0, p, shv);                        \
        q++;                                                                    \
        t = 0;                                                                  \
      }                                                                         \
    }                                                                           \
    acc = COMB(COMB(COMB(a0, a1), COMB(a2, a3)), HRED(va));                     \
  }

/* Reduces one output (before the post transform): see RED_SCALAR. sh2:
 * OP_SUMSQ2's second shift. */
inline ACC red_one(global const REAL *x, global const REAL *x2, int op, int base, ACC shv, ACC sh2,
                   int c, int nchunk, int clen, int cfast, int nr, const int *rs, const int *rst) {
  int R0 = rs[nr - 1], s0 = rst[nr - 1];
  int Q = 1;
  for (int d = 0; d < nr - 1; d++) Q *= rs[d];
  ACC acc = 0;
  switch (op) {
    case OP_SUM: RED_SCALAR((ACC)0, S_SUM, V_SUM, C_ADD, hred_add) break;
    case OP_MAX: RED_SCALAR((ACC)LOWEST, S_MAX, V_MAX, C_MAX, hred_max) break;
    case OP_MIN: RED_SCALAR((ACC)HIGHEST, S_MIN, V_MIN, C_MIN, hred_min) break;
    case OP_FIRST: acc = LOAD(x, base); break;
#ifdef LAM_FLOAT
    case OP_PROD: RED_SCALAR((ACC)1, S_PROD, V_PROD, C_MUL, hred_mul) break;
    case OP_SUMEXP: RED_SCALAR((ACC)0, S_SUMEXP, V_SUMEXP, C_ADD, hred_add) break;
    case OP_SUMSQ: RED_SCALAR((ACC)0, S_SUMSQ, V_SUMSQ, C_ADD, hred_add) break;
    case OP_SUMSHIFT: RED_SCALAR((ACC)0, S_SUMSHIFT, V_SUMSHIFT, C_ADD, hred_add) break;
    case OP_DOT: RED_SCALAR((ACC)0, S_DOT, V_DOT, C_ADD, hred_add) break;
    case OP_COUNTEQ: RED_SCALAR((ACC)0, S_COUNTEQ, V_COUNTEQ, C_ADD, hred_add) break;
    case OP_PRODNZ: RED_SCALAR((ACC)1, S_PRODNZ, V_PRODNZ, C_MUL, hred_mul) break;
    case OP_COUNTZERO: RED_SCALAR((ACC)0, S_COUNTZERO, V_COUNTZERO, C_ADD, hred_add) break;
    case OP_SUMSQ2: RED_SCALAR((ACC)0, S_SUMSQ2, V_SUMSQ2, C_ADD, hred_add) break;
#endif
    default: break;
  }
  return acc;
}

/* Whether op reads the per-output shift in its step. */
#define OP_SHIFTED(op) \
  ((op) == OP_SUMEXP || (op) == OP_SUMSQ || (op) == OP_SUMSHIFT || (op) == OP_COUNTEQ || (op) == OP_SUMSQ2)

/* The shift as the step uses it: an infinite max shifts by 0 (torch's
 * logsumexp), so exp(x - shift) is never inf - inf. */
inline ACC step_shift(int op, ACC s) {
#ifdef LAM_FLOAT
  if (op == OP_SUMEXP && isinf(s)) return 0;
#endif
  return s;
}

inline ACC post_one(ACC acc, ACC shv, int post, ACC scale) {
  if (post == POST_SCALE) return acc * scale;
  if (post == POST_SHIFT) return shv + acc * scale;
#ifdef LAM_FLOAT
  return (isinf(shv) ? (ACC)0 : shv) + log(acc);
#else
  return acc;
#endif
}

/* Unpacks the int8 geometry arguments into arrays. */
#define UNPACK8(name, v) int name[8] = {v.s0, v.s1, v.s2, v.s3, v.s4, v.s5, v.s6, v.s7}

/* One work-item per (output, chunk), y[i] for i in [0, nout*nchunk) (the
 * partials, or the result with one chunk). sh: per-output tensor (shift for
 * the step and/or the post transform; any buffer when unused); x2: OP_DOT's
 * second operand (else x). */
kernel void reduce(global const REAL *x, int x_off, global const REAL *x2, int x2_off,
                   global const REAL *sh, int sh_off, global REAL *y, int y_off, int op,
                   int nout, int nchunk, int clen, int cfast, int nk, int8 kshape, int8 kstride,
                   int nr, int8 rshape, int8 rstride, int post, ACC scale) {
  int i = get_global_id(0);
  if (i >= nout * nchunk) return;
  int o = cfast ? i / nchunk : i % nout;
  int c = cfast ? i % nchunk : i / nout;
  UNPACK8(ks, kshape);
  UNPACK8(kst, kstride);
  UNPACK8(rs, rshape);
  UNPACK8(rst, rstride);
  int base = 0, rem = o;
  for (int d = nk - 1; d >= 0; d--) {
    base += (rem % ks[d]) * kst[d];
    rem /= ks[d];
  }
  ACC shv = (OP_SHIFTED(op) || post != POST_SCALE) ? LOAD(sh + sh_off, o) : (ACC)0;
  ACC sh2 = op == OP_SUMSQ2 ? LOAD(x2 + x2_off, o) : (ACC)0;
  ACC acc = red_one(x + x_off, x2 + x2_off, op, base, step_shift(op, shv), sh2, c, nchunk, clen,
                    cfast, nr, rs, rst);
  STORE(y + y_off, i, post_one(acc, shv, post, scale));
}

/* Reduction when the innermost axis (size I, stride 1) is kept, o-fast
 * chunks. Work-item (block, c) takes outputs [o0, o0 + 16) of one outer
 * kept index and walks its rows with one 16-wide load per row (a full cache
 * line in f32), so memory streams instead of striding column by column. A
 * block that runs past I handles its columns one at a time. kshape/kstride
 * describe the kept groups without the innermost; nblk = ceil(I / 16).
 * Rows go round four accumulators (combined by VCOMB at the end): shorter
 * dependency chains, and sums of n rows round like four sums of n/4. */
#define RED_COLS(INIT, VSTEP, VCOMB)                                            \
  {                                                                             \
    ACCV va = (ACCV)(INIT), vb = va, vc = va, vd = va;                          \
    int r = c * clen;                                                           \
    int rend = min(r + clen, Q * R0);                                           \
    int q = r / R0, t = r - q * R0;                                             \
    while (r < rend) {                                                          \
      int tend = min(R0, t + (rend - r));                                       \
      r += tend - t;                                                            \
      int p = base + red_qoff(q, nr, rs, rst) + t * s0;                         \
      for (; t + 4 <= tend; t += 4, p += 4 * s0) {                              \
        VSTEP(va, p, shv);                                                      \
        VSTEP(vb, p + s0, shv);                                                 \
        VSTEP(vc, p + 2 * s0, shv);                                             \
        VSTEP(vd, p + 3 * s0, shv);                                             \
      }                                                                         \
      for (; t < tend; t++, p += s0) VSTEP(va, p, shv);                         \
      q++;                                                                      \
      t = 0;                                                                    \
    }                                                                           \
    acc = VCOMB(VCOMB(va, vb), VCOMB(vc, vd));                                  \
  }

kernel void reduce_cols(global const REAL *x, int x_off, global const REAL *x2, int x2_off,
                        global const REAL *sh, int sh_off, global REAL *y, int y_off, int op,
                        int nout, int I, int nblk, int nchunk, int clen, int nk, int8 kshape,
                        int8 kstride, int nr, int8 rshape, int8 rstride, int post, ACC scale) {
  int nwork = (nout / I) * nblk;
  int i = get_global_id(0);
  if (i >= nwork * nchunk) return;
  int w = i % nwork, c = i / nwork;
  int b = w % nblk, ob = w / nblk;
  UNPACK8(ks, kshape);
  UNPACK8(kst, kstride);
  UNPACK8(rs, rshape);
  UNPACK8(rst, rstride);
  int base = b * 16, rem = ob;
  for (int d = nk - 1; d >= 0; d--) {
    base += (rem % ks[d]) * kst[d];
    rem /= ks[d];
  }
  int o0 = ob * I + b * 16;
  x += x_off;
  x2 += x2_off;
  sh += sh_off;
  y += y_off + c * nout;
  int use_sh = OP_SHIFTED(op) || post != POST_SCALE;
  if (b * 16 + 16 > I) { /* tail block: one column at a time */
    for (int j = 0; j < I - b * 16; j++) {
      ACC s = use_sh ? LOAD(sh, o0 + j) : (ACC)0;
      ACC s2 = op == OP_SUMSQ2 ? LOAD(x2, o0 + j) : (ACC)0;
      ACC a = red_one(x, x2, op, base + j, step_shift(op, s), s2, c, nchunk, clen, 0, nr, rs, rst);
      STORE(y, o0 + j, post_one(a, s, post, scale));
    }
    return;
  }
  int R0 = rs[nr - 1], s0 = rst[nr - 1];
  int Q = 1;
  for (int d = 0; d < nr - 1; d++) Q *= rs[d];
  ACCV shraw = use_sh ? VLOAD(sh, o0) : (ACCV)0, shv = shraw;
  ACCV sh2 = op == OP_SUMSQ2 ? VLOAD(x2, o0) : (ACCV)0;
  ACCV acc = 0;
  switch (op) {
    case OP_SUM: RED_COLS((ACC)0, V_SUM, C_ADD) break;
    case OP_MAX: RED_COLS((ACC)LOWEST, V_MAX, CV_MAX) break;
    case OP_MIN: RED_COLS((ACC)HIGHEST, V_MIN, CV_MIN) break;
#ifdef LAM_FLOAT
    case OP_PROD: RED_COLS((ACC)1, V_PROD, C_MUL) break;
    case OP_SUMEXP:
      shv = select(shraw, (ACCV)0, isinf(shraw));
      RED_COLS((ACC)0, V_SUMEXP, C_ADD)
      break;
    case OP_SUMSQ: RED_COLS((ACC)0, V_SUMSQ, C_ADD) break;
    case OP_SUMSHIFT: RED_COLS((ACC)0, V_SUMSHIFT, C_ADD) break;
    case OP_DOT: RED_COLS((ACC)0, V_DOT, C_ADD) break;
    case OP_COUNTEQ: RED_COLS((ACC)0, V_COUNTEQ, C_ADD) break;
    case OP_PRODNZ: RED_COLS((ACC)1, V_PRODNZ, C_MUL) break;
    case OP_COUNTZERO: RED_COLS((ACC)0, V_COUNTZERO, C_ADD) break;
    case OP_SUMSQ2: RED_COLS((ACC)0, V_SUMSQ2, C_ADD) break;
#endif
    default: break;
  }
  if (post == POST_SCALE) acc = acc * scale;
  else if (post == POST_SHIFT) acc = shraw + acc * scale;
#ifdef LAM_FLOAT
  else acc = select(shraw, (ACCV)0, isinf(shraw)) + log(acc);
#endif
  VSTORE16(acc, 0, y + o0);
}

/* ---- arg-reductions ------------------------------------------------------ */

/* Whether (v, iv) beats (b, ib): the extreme wins, NaN counts as the extreme
 * (torch), ties go to the smaller index. */
inline bool arg_better(ACC v, int iv, ACC b, int ib, int is_max) {
  if (ISNAN_S(b)) return ISNAN_S(v) && iv < ib;
  if (ISNAN_S(v)) return true;
  if (v == b) return iv < ib;
  return is_max ? v > b : v < b;
}

/* Arg-reduction of one axis: kept dims [outer, inner] (strides R*inner, 1),
 * reduced dim R (stride inner). Work-item (o, c) (o-fast) scans rows
 * [c*clen, (c+1)*clen). With inner == 1 the scan is 16 lanes wide (lane k
 * keeps the first extreme of its elements; the lanes are merged by value,
 * then index). With one chunk the index goes straight to `pi` (the i32
 * result); else value and index partials go to pv/pi[c*nout + o] and
 * argcombine picks among them. */
kernel void argreduce(global const REAL *x, int x_off, global REAL *pv, int pv_off,
                      global int *pi, int pi_off, int is_max, int nout, int nchunk, int clen,
                      int inner, int R) {
  int i = get_global_id(0);
  if (i >= nout * nchunk) return;
  int o = i % nout, c = i / nout;
  x += x_off + (o / inner) * R * inner + o % inner;
  int r = c * clen, rend = min(r + clen, R);
  ACC best = LOAD(x, r * inner);
  int bi = r;
  r++;
  if (inner == 1 && rend - r >= 32) {
    ACCV bv = VLOAD(x, r);
    int16 iv = (int16)(r) + (int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    int16 ci = iv;
    for (r += 16; r + 16 <= rend; r += 16) {
      ACCV v = VLOAD(x, r);
      ci += 16;
      /* strict compare per lane: the earlier index stays on ties */
#ifdef LAM_FLOAT
      int16 m = convert_int16(~isnan(bv) & (isnan(v) | (is_max ? (v > bv) : (v < bv))));
#else
      int16 m = is_max ? (v > bv) : (v < bv);
#endif
      bv = select(bv, v, TO_MASKV(m));
      iv = select(iv, ci, m);
    }
    for (int k = 0; k < 16; k++) {
      ACC lv = ((ACC *)&bv)[k];
      int li = ((int *)&iv)[k];
      if (arg_better(lv, li, best, bi, is_max)) {
        best = lv;
        bi = li;
      }
    }
  }
  for (; r < rend; r++) {
    ACC v = LOAD(x, r * inner);
    if (arg_better(v, r, best, bi, is_max)) {
      best = v;
      bi = r;
    }
  }
  pi[pi_off + i] = bi;
  if (nchunk > 1) STORE(pv + pv_off, i, best);
}

/* Picks, per output, the best of nchunk partials. */
kernel void argcombine(global const REAL *pv, int pv_off, global const int *pi, int pi_off,
                       global int *idx, int idx_off, int is_max, int nout, int nchunk) {
  int o = get_global_id(0);
  if (o >= nout) return;
  pv += pv_off;
  pi += pi_off;
  ACC best = LOAD(pv, o);
  int bi = pi[o];
  for (int c = 1; c < nchunk; c++) {
    ACC v = LOAD(pv, c * nout + o);
    int vi = pi[c * nout + o];
    if (arg_better(v, vi, best, bi, is_max)) {
      best = v;
      bi = vi;
    }
  }
  idx[idx_off + o] = bi;
}

#ifdef LAM_FLOAT
/* ---- broadcast from the reduced shape ------------------------------------- */

/* One kernel per mode; a, b are full-shaped, r, s, t reduced-shaped
 * (unused ones may be any buffer), `ri` the reduced index of full index `i`:
 *   bc_grad          r * scale                         (sum, mean)
 *   bc_extreme       a == s ? r / t : 0                (max/min; t = tie count)
 *   bc_prod          t == 0 ? r * s / a : t == 1 && a == 0 ? r * s : 0
 *                    (prod; s = product of the non-zeros, t = zero count)
 *   bc_var           r * scale * ((a - s) - t)         (var; s = pivot, t = shifted mean)
 *   bc_lse           r * exp(a - s)                    (logsumexp; s = result)
 *   bc_softmax       exp(a - s) / t                    (s = max, t = sum exp(a - s))
 *   bc_logsoftmax    (a - s) - log(t)                  (as softmax)
 *   bc_softmax_bw    a * (b - r)                       (a = y, b = g, r = sum g*y)
 *   bc_logsoftmax_bw b - exp(a) * r                    (a = y, b = g, r = sum g)
 * Subtracting the max rather than the logsumexp keeps f32 exact for |x| ~
 * 1e4 (where an ulp is 1e-3); an infinite max shifts by 0 as OP_SUMEXP.
 * `<name>3` takes up to 3 merged groups as a 3-D range, innermost first, 16
 * elements of the innermost group per work-item: one 16-wide expression
 * (PoCL does not vectorise exp across work-items on its own), and no index
 * arithmetic beyond multiply-adds; the innermost group's stride in the
 * reduced tensors (os0) is 0 or 1, so those operands are a broadcast scalar
 * or a 16-wide load. `<name>` takes any number of groups (1-D, one division
 * per group, scalar). */
#define SHIFT0(m) (isinf(m) ? (ACC)0 : (m))
#define VSHIFT0(m) select((m), (ACCV)0, isinf(m))
#define E_GRAD LOAD(r, ri) * scale
#define E_EXTREME (LOAD(a, i) == LOAD(s, ri) ? LOAD(r, ri) / LOAD(t, ri) : (ACC)0)
#define E_PROD (LOAD(t, ri) == (ACC)0 ? LOAD(r, ri) * (LOAD(s, ri) / LOAD(a, i)) \
                : (LOAD(t, ri) == (ACC)1 && LOAD(a, i) == (ACC)0) ? LOAD(r, ri) * LOAD(s, ri) : (ACC)0)
#define E_VAR LOAD(r, ri) * scale * ((LOAD(a, i) - LOAD(s, ri)) - LOAD(t, ri))
#define E_LSE LOAD(r, ri) * exp(LOAD(a, i) - LOAD(s, ri))
#define E_SOFTMAX exp(LOAD(a, i) - SHIFT0(LOAD(s, ri))) / LOAD(t, ri)
#define E_LOGSOFTMAX (LOAD(a, i) - SHIFT0(LOAD(s, ri))) - log(LOAD(t, ri))
#define E_SOFTMAX_BW LOAD(a, i) * (LOAD(b, i) - LOAD(r, ri))
#define E_LOGSOFTMAX_BW LOAD(b, i) - exp(LOAD(a, i)) * LOAD(r, ri)

/* 16-wide forms: VA/VB full operands, VR(p) a reduced operand. */
#define VA VLOAD(a, i)
#define VB VLOAD(b, i)
#define VR(p) (os0 ? VLOAD(p, ri) : (ACCV)LOAD(p, ri))
#define V_GRAD VR(r) * scale
#define V_EXTREME select((ACCV)0, VR(r) / VR(t), VA == VR(s))
#define V_PRODG select(select((ACCV)0, VR(r) * VR(s), (VR(t) == (ACCV)1) & (VA == (ACCV)0)), \
                       VR(r) * (VR(s) / VA), VR(t) == (ACCV)0)
#define V_VAR VR(r) * scale * ((VA - VR(s)) - VR(t))
#define V_LSE VR(r) * exp(VA - VR(s))
#define V_SOFTMAX exp(VA - VSHIFT0(VR(s))) / VR(t)
#define V_LOGSOFTMAX (VA - VSHIFT0(VR(s))) - log(VR(t))
#define V_SOFTMAX_BW VA * (VB - VR(r))
#define V_LOGSOFTMAX_BW VB - exp(VA) * VR(r)

#define BC_ARGS                                                                  \
  global REAL *y, int y_off, global const REAL *a, int a_off, global const REAL *b, \
      int b_off, global const REAL *r, int r_off, global const REAL *s, int s_off,   \
      global const REAL *t, int t_off, ACC scale
#define BC_OFFSETS \
  y += y_off;      \
  a += a_off;      \
  b += b_off;      \
  r += r_off;      \
  s += s_off;      \
  t += t_off;

#define BCAST_KERNELS(NAME, EXPR, VEXPR)                                         \
  kernel void NAME(BC_ARGS, int n, int nd, int8 shape, int8 ostride) {           \
    int i = get_global_id(0);                                                    \
    if (i >= n) return;                                                          \
    UNPACK8(sh_, shape);                                                         \
    UNPACK8(os_, ostride);                                                       \
    int ri = 0, rem = i;                                                         \
    for (int d = nd - 1; d >= 0; d--) {                                          \
      ri += (rem % sh_[d]) * os_[d];                                             \
      rem /= sh_[d];                                                             \
    }                                                                            \
    BC_OFFSETS                                                                   \
    STORE(y, i, EXPR);                                                           \
  }                                                                              \
  kernel void NAME##3(BC_ARGS, int m0, int m1, int os0, int os1, int os2) {      \
    int j0 = get_global_id(0) * 16;                                              \
    if (j0 >= m0) return;                                                        \
    int q1 = get_global_id(1), q2 = get_global_id(2);                            \
    int i0 = (q2 * m1 + q1) * m0 + j0;                                           \
    int r0 = q2 * os2 + q1 * os1 + j0 * os0;                                     \
    BC_OFFSETS                                                                   \
    if (j0 + 16 <= m0) {                                                         \
      int i = i0, ri = r0;                                                       \
      VSTORE16(VEXPR, 0, y + i);                                                 \
    } else {                                                                     \
      for (int j = 0; j < m0 - j0; j++) {                                        \
        int i = i0 + j, ri = r0 + j * os0;                                       \
        STORE(y, i, EXPR);                                                       \
      }                                                                          \
    }                                                                            \
  }

BCAST_KERNELS(bc_grad, E_GRAD, V_GRAD)
BCAST_KERNELS(bc_extreme, E_EXTREME, V_EXTREME)
BCAST_KERNELS(bc_prod, E_PROD, V_PRODG)
BCAST_KERNELS(bc_var, E_VAR, V_VAR)
BCAST_KERNELS(bc_lse, E_LSE, V_LSE)
BCAST_KERNELS(bc_softmax, E_SOFTMAX, V_SOFTMAX)
BCAST_KERNELS(bc_logsoftmax, E_LOGSOFTMAX, V_LOGSOFTMAX)
BCAST_KERNELS(bc_softmax_bw, E_SOFTMAX_BW, V_SOFTMAX_BW)
BCAST_KERNELS(bc_logsoftmax_bw, E_LOGSOFTMAX_BW, V_LOGSOFTMAX_BW)

/* ---- softmax ---------------------------------------------------------------- */

/* Softmax / log_softmax of rows of length D with stride `inner` (x viewed
 * as [outer, D, inner]). softmax_rows: one work-item per row, three passes
 * (max; exp(x - max) summed, and stored for softmax; scale or (x - max) -
 * log(sum)) so the row stays in cache and nothing needs a barrier. With
 * inner == 1 the passes are 16 wide; otherwise neighbouring work-items take
 * neighbouring inner positions (coalesced on GPUs). softmax_cols (CPUs,
 * inner >= 16): a work-item takes 16 neighbouring inner positions of one
 * outer index and loads 16 at a time per row. The host sends few long rows
 * through the chunked reduce + bcast path instead. NaN in a row makes the
 * row NaN (fmax drops it but the sum sees it); a row of -inf gives NaN;
 * -inf entries (masks) give 0 / -inf. */
inline void sm_row_strided(global const REAL *x, global REAL *y, int D, int st, int logmode) {
  ACC m0 = -INFINITY, m1 = -INFINITY;
  int j = 0;
  for (; j + 2 <= D; j += 2) {
    m0 = fmax(m0, LOAD(x, j * st));
    m1 = fmax(m1, LOAD(x, (j + 1) * st));
  }
  if (j < D) m0 = fmax(m0, LOAD(x, j * st));
  ACC m = fmax(m0, m1);
  if (isinf(m) && m < 0) m = 0;
  ACC s0 = 0, s1 = 0;
  for (j = 0; j + 2 <= D; j += 2) {
    ACC e0 = exp(LOAD(x, j * st) - m), e1 = exp(LOAD(x, (j + 1) * st) - m);
    s0 += e0;
    s1 += e1;
    if (!logmode) {
      STORE(y, j * st, e0);
      STORE(y, (j + 1) * st, e1);
    }
  }
  if (j < D) {
    ACC e0 = exp(LOAD(x, j * st) - m);
    s0 += e0;
    if (!logmode) STORE(y, j * st, e0);
  }
  ACC s = s0 + s1;
  if (logmode) {
    /* (x - max) - log(sum), not x - logsumexp: exact in f32 for |x| ~ 1e4 */
    ACC l = log(s);
    for (j = 0; j < D; j++) STORE(y, j * st, (LOAD(x, j * st) - m) - l);
  } else {
    ACC inv = (ACC)1 / s;
    for (j = 0; j < D; j++) STORE(y, j * st, LOAD(y, j * st) * inv);
  }
}

inline void sm_row_unit(global const REAL *x, global REAL *y, int D, int logmode) {
  ACCV vm = (ACCV)(-INFINITY);
  ACC m = -INFINITY;
  int j = 0;
  for (; j + 16 <= D; j += 16) vm = fmax(vm, VLOAD(x, j));
  for (; j < D; j++) m = fmax(m, LOAD(x, j));
  m = fmax(m, hred_max(vm));
  if (isinf(m) && m < 0) m = 0;
  ACCV vs = 0;
  ACC s = 0;
  for (j = 0; j + 16 <= D; j += 16) {
    ACCV e = exp(VLOAD(x, j) - m);
    vs += e;
    if (!logmode) VSTORE16(e, 0, y + j);
  }
  for (; j < D; j++) {
    ACC e = exp(LOAD(x, j) - m);
    s += e;
    if (!logmode) STORE(y, j, e);
  }
  s += hred_add(vs);
  if (logmode) {
    ACC l = log(s);
    for (j = 0; j + 16 <= D; j += 16) VSTORE16((VLOAD(x, j) - m) - l, 0, y + j);
    for (; j < D; j++) STORE(y, j, (LOAD(x, j) - m) - l);
  } else {
    ACC inv = (ACC)1 / s;
    for (j = 0; j + 16 <= D; j += 16) VSTORE16(VLOAD(y, j) * inv, 0, y + j);
    for (; j < D; j++) STORE(y, j, LOAD(y, j) * inv);
  }
}

/* 16 neighbouring rows (columns of stride 1), each of length D with stride st. */
inline void sm_cols16(global const REAL *x, global REAL *y, int D, int st, int logmode) {
  ACCV m = (ACCV)(-INFINITY);
  for (int j = 0; j < D; j++) m = fmax(m, VLOAD(x, j * st));
  m = select(m, (ACCV)0, isinf(m) & (m < 0));
  ACCV s = 0;
  for (int j = 0; j < D; j++) {
    ACCV e = exp(VLOAD(x, j * st) - m);
    s += e;
    if (!logmode) VSTORE16(e, 0, y + j * st);
  }
  if (logmode) {
    ACCV l = log(s);
    for (int j = 0; j < D; j++) VSTORE16((VLOAD(x, j * st) - m) - l, 0, y + j * st);
  } else {
    ACCV inv = (ACCV)1 / s;
    for (int j = 0; j < D; j++) VSTORE16(VLOAD(y, j * st) * inv, 0, y + j * st);
  }
}

kernel void softmax_rows(global const REAL *x, int x_off, global REAL *y, int y_off, int rows,
                         int D, int inner, int logmode) {
  int i = get_global_id(0);
  if (i >= rows) return;
  int base = (i / inner) * D * inner + i % inner;
  if (inner == 1) sm_row_unit(x + x_off + base, y + y_off + base, D, logmode);
  else sm_row_strided(x + x_off + base, y + y_off + base, D, inner, logmode);
}

/* Work-item per (outer index, block of 16 inner positions); nblk = ceil(inner/16). */
kernel void softmax_cols(global const REAL *x, int x_off, global REAL *y, int y_off, int outer,
                         int D, int inner, int nblk, int logmode) {
  int i = get_global_id(0);
  if (i >= outer * nblk) return;
  int b = i % nblk, o = i / nblk;
  int base = o * D * inner + b * 16;
  x += x_off + base;
  y += y_off + base;
  if (b * 16 + 16 <= inner) {
    sm_cols16(x, y, D, inner, logmode);
  } else {
    for (int j = 0; j < inner - b * 16; j++) sm_row_strided(x + j, y + j, D, inner, logmode);
  }
}

/* Backward, same layouts: softmax dx = y * (g - sum(g*y)); log_softmax
 * dx = g - exp(y) * sum(g). Two passes per row. */
inline void smb_row_strided(global const REAL *y, global const REAL *g, global REAL *dx, int D,
                            int st, int logmode) {
  ACC s0 = 0, s1 = 0;
  int j = 0;
  for (; j + 2 <= D; j += 2) {
    s0 += logmode ? LOAD(g, j * st) : LOAD(g, j * st) * LOAD(y, j * st);
    s1 += logmode ? LOAD(g, (j + 1) * st) : LOAD(g, (j + 1) * st) * LOAD(y, (j + 1) * st);
  }
  if (j < D) s0 += logmode ? LOAD(g, j * st) : LOAD(g, j * st) * LOAD(y, j * st);
  ACC s = s0 + s1;
  for (j = 0; j < D; j++) {
    ACC yv = LOAD(y, j * st), gv = LOAD(g, j * st);
    STORE(dx, j * st, logmode ? gv - exp(yv) * s : yv * (gv - s));
  }
}

inline void smb_row_unit(global const REAL *y, global const REAL *g, global REAL *dx, int D,
                         int logmode) {
  ACCV vs = 0;
  ACC s = 0;
  int j = 0;
  if (logmode) {
    for (; j + 16 <= D; j += 16) vs += VLOAD(g, j);
    for (; j < D; j++) s += LOAD(g, j);
  } else {
    for (; j + 16 <= D; j += 16) vs += VLOAD(g, j) * VLOAD(y, j);
    for (; j < D; j++) s += LOAD(g, j) * LOAD(y, j);
  }
  s += hred_add(vs);
  if (logmode) {
    for (j = 0; j + 16 <= D; j += 16) VSTORE16(VLOAD(g, j) - exp(VLOAD(y, j)) * s, 0, dx + j);
    for (; j < D; j++) STORE(dx, j, LOAD(g, j) - exp(LOAD(y, j)) * s);
  } else {
    for (j = 0; j + 16 <= D; j += 16) VSTORE16(VLOAD(y, j) * (VLOAD(g, j) - s), 0, dx + j);
    for (; j < D; j++) STORE(dx, j, LOAD(y, j) * (LOAD(g, j) - s));
  }
}

inline void smb_cols16(global const REAL *y, global const REAL *g, global REAL *dx, int D, int st,
                       int logmode) {
  ACCV s = 0;
  for (int j = 0; j < D; j++) s += logmode ? VLOAD(g, j * st) : VLOAD(g, j * st) * VLOAD(y, j * st);
  for (int j = 0; j < D; j++) {
    ACCV yv = VLOAD(y, j * st), gv = VLOAD(g, j * st);
    VSTORE16(logmode ? gv - exp(yv) * s : yv * (gv - s), 0, dx + j * st);
  }
}

kernel void softmax_rows_bw(global const REAL *y, int y_off, global const REAL *g, int g_off,
                            global REAL *dx, int dx_off, int rows, int D, int inner,
                            int logmode) {
  int i = get_global_id(0);
  if (i >= rows) return;
  int base = (i / inner) * D * inner + i % inner;
  y += y_off + base;
  g += g_off + base;
  dx += dx_off + base;
  if (inner == 1) smb_row_unit(y, g, dx, D, logmode);
  else smb_row_strided(y, g, dx, D, inner, logmode);
}

kernel void softmax_cols_bw(global const REAL *y, int y_off, global const REAL *g, int g_off,
                            global REAL *dx, int dx_off, int outer, int D, int inner, int nblk,
                            int logmode) {
  int i = get_global_id(0);
  if (i >= outer * nblk) return;
  int b = i % nblk, o = i / nblk;
  int base = o * D * inner + b * 16;
  y += y_off + base;
  g += g_off + base;
  dx += dx_off + base;
  if (b * 16 + 16 <= inner) {
    smb_cols16(y, g, dx, D, inner, logmode);
  } else {
    for (int j = 0; j < inner - b * 16; j++) smb_row_strided(y + j, g + j, dx + j, D, inner, logmode);
  }
}
#endif
