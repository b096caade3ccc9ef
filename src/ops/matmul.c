/* ops/matmul.c: lam_matmul and lam_matmul_t (batched, NumPy-broadcast batch
 * dims, transposes of the last two dims, rank-1 operands as vectors) and
 * their backward rule.
 *
 * Every call is reduced to one description: C[batch] = op(A[batch]) @
 * op(B[batch]) with M, N, K, the transposes and per-operand batch strides (0
 * where an operand broadcasts); C is always a new contiguous tensor. A batch
 * where only A varies and A is not transposed is folded into M (one GEMM).
 * Then, on CPU devices whose context asks for tuned CPU GEMM
 * (ctx->cpu_gemm_tuning, i.e. not lam_ctx_opts.clblast_on_cpu), lamina's register-tiled kernels in cl/gemm.cl run the
 * product in one launch for any batch (see gemm_tuning.c for why), after
 * copying an operand into the kernel's preferred layout when the copy is
 * cheap against the product; elsewhere
 * CLBlast does: Xgemm for one matrix, XgemmStridedBatched when the batch
 * offsets are uniform (stride 0 included), XgemmBatched with offset arrays
 * otherwise. CLBlast status codes pass through as lam_status where
 * status.h mirrors them, else LAM_ERR_CLBLAST, with a message. A build
 * without CLBlast (LAMINA_WITH_CLBLAST=OFF, or AUTO without the package, as
 * the MinGW cross build) runs lamina's kernels on every device. */
#if LAMINA_HAVE_CLBLAST
#include <clblast_c.h>
#endif
#include <stdlib.h>
#include <string.h>

#include "lamina/linalg.h"
#include "ops/gemm_internal.h"

/* Per-context state (ctx->blas): whether CLBlast ran here. */
typedef struct lam__blas {
  bool used_clblast;
} lam__blas;

#if LAMINA_HAVE_CLBLAST /* the per-context CLBlast state: used by the CLBlast path only */
/* Runs in lam_ctx_free before the OpenCL context is released. CLBlast keeps
 * every compiled program in a process-wide cache that retains its context
 * until exit; clearing it here frees them while the context is alive (and
 * avoids a use-after-free in Oclgrind, whose programs outlive their
 * context badly at exit). Other live contexts recompile on their next
 * CLBlast call (from the driver's cache: PoCL's in POCL_CACHE_DIR). */
static void lam__blas_free(void *p) {
  lam__blas *s = p;
  if (s && s->used_clblast) CLBlastClearCache();
  free(s);
}

static lam__blas *lam__blas_get(lam_ctx *ctx, const char *fn) {
  if (ctx->blas) return ctx->blas;
  lam__blas *s = calloc(1, sizeof *s);
  if (!s) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn), NULL;
  ctx->blas = s;
  ctx->blas_free = lam__blas_free;
  return s;
}
#endif

/* One product C[batch] = op(A[batch]) @ op(B[batch]). */
typedef struct lam__gemm {
  lam_tensor *a, *b, *c;
  int ta, tb;
  int64_t M, N, K;
  int nbd;                   /* batch dims */
  int64_t bshape[LAM_MAX_DIMS];
  int64_t sa[LAM_MAX_DIMS];  /* element strides of A and B per batch dim */
  int64_t sb[LAM_MAX_DIMS];
  int64_t nbatch;
} lam__gemm;

#if LAMINA_HAVE_CLBLAST
/* Element offsets of batch bi in A and B (the CLBlast batched calls). */
static void lam__gemm_offsets(const lam__gemm *g, int64_t bi, int64_t *oa, int64_t *ob) {
  int64_t a = 0, b = 0;
  for (int d = g->nbd - 1; d >= 0; d--) {
    int64_t idx = bi % g->bshape[d];
    bi /= g->bshape[d];
    a += idx * g->sa[d];
    b += idx * g->sb[d];
  }
  *oa = a;
  *ob = b;
}

/* ---- CLBlast ------------------------------------------------------------ */

static lam_status lam__clblast_fail(CLBlastStatusCode code, const char *fn, const char *routine) {
  const char *s = lam_status_string((lam_status)code);
  lam_status st = strcmp(s, "unknown status") == 0 ? LAM_ERR_CLBLAST : (lam_status)code;
  return lam__fail(st, "%s: %s failed with CLBlast status %d%s%s", fn, routine, (int)code,
                   st == LAM_ERR_CLBLAST ? "" : ": ", st == LAM_ERR_CLBLAST ? "" : s);
}

static lam_status lam__gemm_clblast(lam_ctx *ctx, const lam__gemm *g, const char *fn) {
  lam__blas *bs = lam__blas_get(ctx, fn);
  if (!bs) return lam_last_status();
  bs->used_clblast = true;
  const bool f64 = g->a->dtype == LAM_F64;
  const CLBlastLayout row = CLBlastLayoutRowMajor;
  const CLBlastTranspose ta = g->ta ? CLBlastTransposeYes : CLBlastTransposeNo;
  const CLBlastTranspose tb = g->tb ? CLBlastTransposeYes : CLBlastTransposeNo;
  const size_t M = (size_t)g->M, N = (size_t)g->N, K = (size_t)g->K;
  const size_t lda = g->ta ? M : K, ldb = g->tb ? K : N, ldc = N;
  cl_mem am = g->a->buf->mem, bm = g->b->buf->mem, cm = g->c->buf->mem;
  const size_t ao = g->a->offset, bo = g->b->offset, co = g->c->offset;
  CLBlastStatusCode s;
  if (g->nbatch == 1) {
    s = f64 ? CLBlastDgemm(row, ta, tb, M, N, K, 1.0, am, ao, lda, bm, bo, ldb, 0.0, cm, co, ldc,
                           &ctx->queue, NULL)
            : CLBlastSgemm(row, ta, tb, M, N, K, 1.0f, am, ao, lda, bm, bo, ldb, 0.0f, cm, co, ldc,
                           &ctx->queue, NULL);
    return s == CLBlastSuccess ? LAM_OK : lam__clblast_fail(s, fn, f64 ? "CLBlastDgemm" : "CLBlastSgemm");
  }
  const size_t nb = (size_t)g->nbatch;
  size_t *off = malloc(3 * nb * sizeof *off);
  if (!off) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
  size_t *aoff = off, *boff = off + nb, *coff = off + 2 * nb;
  bool strided = true;
  for (size_t i = 0; i < nb; i++) {
    int64_t oa, ob;
    lam__gemm_offsets(g, (int64_t)i, &oa, &ob);
    aoff[i] = ao + (size_t)oa;
    boff[i] = bo + (size_t)ob;
    coff[i] = co + i * M * N;
    if (i >= 2 && (aoff[i] - aoff[i - 1] != aoff[1] - aoff[0] || boff[i] - boff[i - 1] != boff[1] - boff[0]))
      strided = false;
  }
  /* Batch 0 has the smallest offsets (strides are >= 0), so equal steps
   * (compared modulo 2^64 above) are one non-negative stride. */
  if (strided) {
    const size_t sa = aoff[1] - aoff[0], sb = boff[1] - boff[0], sc = M * N;
    s = f64 ? CLBlastDgemmStridedBatched(row, ta, tb, M, N, K, 1.0, am, ao, lda, sa, bm, bo, ldb, sb,
                                         0.0, cm, co, ldc, sc, nb, &ctx->queue, NULL)
            : CLBlastSgemmStridedBatched(row, ta, tb, M, N, K, 1.0f, am, ao, lda, sa, bm, bo, ldb,
                                         sb, 0.0f, cm, co, ldc, sc, nb, &ctx->queue, NULL);
    free(off);
    return s == CLBlastSuccess ? LAM_OK
                               : lam__clblast_fail(s, fn, f64 ? "CLBlastDgemmStridedBatched"
                                                              : "CLBlastSgemmStridedBatched");
  }
  void *scal = malloc(2 * nb * (f64 ? sizeof(double) : sizeof(float)));
  if (!scal) {
    free(off);
    return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
  }
  if (f64) {
    double *al = scal, *be = al + nb;
    for (size_t i = 0; i < nb; i++) al[i] = 1.0, be[i] = 0.0;
    s = CLBlastDgemmBatched(row, ta, tb, M, N, K, al, am, aoff, lda, bm, boff, ldb, be, cm, coff,
                            ldc, nb, &ctx->queue, NULL);
  } else {
    float *al = scal, *be = al + nb;
    for (size_t i = 0; i < nb; i++) al[i] = 1.0f, be[i] = 0.0f;
    s = CLBlastSgemmBatched(row, ta, tb, M, N, K, al, am, aoff, lda, bm, boff, ldb, be, cm, coff,
                            ldc, nb, &ctx->queue, NULL);
  }
  free(scal);
  free(off);
  return s == CLBlastSuccess ? LAM_OK
                             : lam__clblast_fail(s, fn, f64 ? "CLBlastDgemmBatched" : "CLBlastSgemmBatched");
}

#endif /* LAMINA_HAVE_CLBLAST */

/* ---- lamina's CPU kernels (cl/gemm.cl) ----------------------------------- */

/* Work-group rows: the tuned count, halved (powers of two only, so PoCL
 * specialises few group sizes) until the grid has work for every core. */
static size_t lam__gemm_group_rows(lam_ctx *ctx, int ly, int64_t rows, int64_t groups_per_row) {
  size_t l = (size_t)ly;
  const int64_t want = 4 * (int64_t)(ctx->info.compute_units ? ctx->info.compute_units : 1);
  while (l > 1 && (l / 2 >= (size_t)rows ||
                   groups_per_row * ((rows + (int64_t)l - 1) / (int64_t)l) < want))
    l /= 2;
  return l;
}

/* Row length for a copy of `rows` rows (all matrices) of `cols` elements
 * read by rows: cols, or 64 bytes more when cols would put rows a multiple
 * of 4 KiB apart (every row in the same cache sets: -30% at 1024, -50% at
 * 2048), unless the copy would outgrow a tensor's element limit. */
static int64_t lam__gemm_ld(int64_t rows, int64_t cols, int64_t es) {
  const int64_t ld = cols + 64 / es;
  return (cols * es) % 4096 == 0 && rows <= LAM__MAX_NUMEL / ld ? ld : cols;
}

/* Enqueues the transpose of every [rows, cols] matrix of t (contiguous, at
 * its offset) into a new tensor *out as [cols, ld] matrices, and rescales
 * the nbd batch strides in bs to *out's layout in obs. */
static lam_status lam__gemm_transpose(lam_ctx *ctx, lam_tensor *t, int64_t rows, int64_t cols,
                                      int64_t ld, int nbd, const int64_t *bs, const char *opts,
                                      const char *fn, lam_tensor **out, int64_t *obs) {
  const int64_t nmat = t->numel / (rows * cols);
  int64_t shape[1] = {nmat * cols * ld};
  *out = lam__tensor_new(ctx, t->dtype, 1, shape, fn);
  if (!*out) return lam_last_status();
  cl_kernel k;
  lam_status st = lam__kernel_dt(ctx, "gemm", "transpose", t->dtype, opts, &k);
  if (st == LAM_OK) {
    lam__arg args[] = {LAM__ARG_T(t), LAM__ARG_T(*out), lam__arg_int(rows), lam__arg_int(cols),
                       lam__arg_int(ld)};
    size_t global[3] = {(size_t)((cols + 15) / 16), (size_t)((rows + 15) / 16), (size_t)nmat};
    st = lam__launch(ctx, k, fn, 7, args, 3, global, NULL);
  }
  if (st != LAM_OK) {
    lam_tensor_free(*out);
    *out = NULL;
    return st;
  }
  for (int d = 0; d < nbd; d++) obs[d] = bs[d] / (rows * cols) * (cols * ld);
  return LAM_OK;
}

/* Copies every [rows, cols] matrix of t (contiguous, at its offset) into a
 * new tensor *out with rows lam__gemm_ld long (a row copy, no kernel), and
 * rescales the nbd batch strides in bs to *out's layout in obs. */
static lam_status lam__gemm_pad(lam_ctx *ctx, lam_tensor *t, int64_t rows, int64_t cols, int nbd,
                                const int64_t *bs, const char *fn, lam_tensor **out, int64_t *obs) {
  const int64_t es = (int64_t)lam_dtype_size(t->dtype), nmat = t->numel / (rows * cols);
  const int64_t ld = lam__gemm_ld(nmat * rows, cols, es);
  int64_t shape[1] = {nmat * rows * ld};
  *out = lam__tensor_new(ctx, t->dtype, 1, shape, fn);
  if (!*out) return lam_last_status();
  size_t src[3] = {t->offset * (size_t)es, 0, 0}, dst[3] = {0, 0, 0};
  size_t region[3] = {(size_t)(cols * es), (size_t)rows, (size_t)nmat};
  cl_int err = clEnqueueCopyBufferRect(ctx->queue, t->buf->mem, (*out)->buf->mem, src, dst, region,
                                       (size_t)(cols * es), (size_t)(rows * cols * es),
                                       (size_t)(ld * es), (size_t)(rows * ld * es), 0, NULL, NULL);
  if (err != CL_SUCCESS) {
    lam_tensor_free(*out);
    *out = NULL;
    return lam__cl_fail(err, fn, "clEnqueueCopyBufferRect");
  }
  for (int d = 0; d < nbd; d++) obs[d] = bs[d] / cols * ld;
  return LAM_OK;
}

static lam_status lam__gemm_cpu(lam_ctx *ctx, const lam__gemm *g, const lam__gemm_params *p,
                                const char *fn) {
  const lam_dtype dt = g->a->dtype;
  if (!p) p = &ctx->tuning.gemm[dt == LAM_F64];
  char opts[256];
  lam__gemm_opts(p, opts, sizeof opts);
  const int nn[2] = {p->mr, p->vw * p->nv}, nt[2] = {p->tm, p->tn};
  const int ly = p->ly, copy_min = p->copy_min;
  const int64_t M = g->M, N = g->N, K = g->K;
  const int64_t es = (int64_t)lam_dtype_size(dt);
  /* op(A)[i,k] = a[i*sam + k*sak], op(B)[k,j] = b[k*sbk + j*sbn] */
  int64_t sam = g->ta ? 1 : K, sak = g->ta ? M : 1;
  int64_t sbk = g->tb ? 1 : N, sbn = g->tb ? K : 1;
  const bool a_k_unit = sak == 1 || K == 1, b_k_unit = sbk == 1 || K == 1;
  lam_tensor *a = g->a, *b = g->b, *ta = NULL, *tb = NULL;
  const int64_t *bsa = g->sa, *bsb = g->sb;
  int64_t tas[LAM_MAX_DIMS], tbs[LAM_MAX_DIMS];
  int64_t m = M, n = N;
  enum { NN, NT } kind;
  lam_status st = LAM_OK;
  /* gemm_nn (outer products, B rows along j) is the fastest kernel for
   * large products; gemm_nt (dot products along k) wins for narrow C and
   * small M. Operands in the wrong layout are transposed first when the
   * O(MK) or O(KN) copy is small against the O(MNK) product. */
  if (N == 1 && a_k_unit) {
    kind = NT; /* matrix @ vector: dot products along k (B is one column) */
  } else if (N == 1) {
    /* A^T @ v: C^T = v^T @ A, the same memory for a vector result. */
    kind = NN;
    a = g->b, b = g->a, bsa = g->sb, bsb = g->sa;
    m = 1, n = M;
    sam = 0, sak = 1;
    sbk = M; /* row stride of A as stored ([K, M]) */
    sbn = 1;
  } else if (N < nn[1] || (sbn != 1 && M < copy_min)) {
    kind = NT; /* narrower than a gemm_nn tile, or few rows */
    if (!a_k_unit) st = lam__gemm_transpose(ctx, a, K, M, K, g->nbd, g->sa, opts, fn, &ta, tas);
    if (st == LAM_OK && !b_k_unit)
      st = lam__gemm_transpose(ctx, b, K, N, K, g->nbd, g->sb, opts, fn, &tb, tbs);
    if (ta) a = ta, bsa = tas, sam = K;
    if (tb) b = tb, bsb = tbs, sbn = K;
  } else {
    kind = NN;
    /* A^T would be read as GEMM_MR scalars per k from rows M apart, a cache
     * line each (A^T@B at 2048: 190 GFLOP/s, 300 transposed). */
    if (!a_k_unit && (N >= copy_min || sbn != 1)) {
      st = lam__gemm_transpose(ctx, a, K, M, K, g->nbd, g->sa, opts, fn, &ta, tas);
      if (ta) a = ta, bsa = tas, sam = K, sak = 1;
    }
    const int64_t ld = lam__gemm_ld(b->numel / N, N, es);
    if (st == LAM_OK && sbn != 1) {
      st = lam__gemm_transpose(ctx, b, N, K, ld, g->nbd, g->sb, opts, fn, &tb, tbs);
      if (tb) b = tb, bsb = tbs, sbk = ld, sbn = 1;
    } else if (st == LAM_OK && M >= copy_min && ld != N) {
      st = lam__gemm_pad(ctx, b, K, N, g->nbd, g->sb, fn, &tb, tbs);
      if (tb) b = tb, bsb = tbs, sbk = ld;
    }
  }
  cl_kernel k;
  if (st == LAM_OK)
    st = lam__kernel_dt(ctx, "gemm", kind == NN ? "gemm_nn" : "gemm_nt", dt, opts, &k);
  if (st == LAM_OK) {
    const int *tile = kind == NN ? nn : nt;
    const int64_t tj = (n + tile[1] - 1) / tile[1], ti = (m + tile[0] - 1) / tile[0];
    size_t l = lam__gemm_group_rows(ctx, ly, ti, tj * g->nbatch);
    size_t local[3] = {1, l, 1};
    size_t global[3] = {(size_t)tj, ((size_t)ti + l - 1) / l * l, (size_t)g->nbatch};
    lam__arg args[16] = {LAM__ARG_T(a), LAM__ARG_T(b), LAM__ARG_T(g->c), lam__arg_int(m),
                         lam__arg_int(n), lam__arg_int(K)};
    int na = 9;
    if (kind == NN) {
      args[na++] = lam__arg_int(sam);
      args[na++] = lam__arg_int(sak);
      args[na++] = lam__arg_int(sbk);
    } else {
      args[na++] = lam__arg_int(sam);
      args[na++] = lam__arg_int(sbn);
    }
    args[na++] = lam__arg_int(g->nbd);
    args[na++] = lam__arg_int8(g->nbd, g->bshape);
    args[na++] = lam__arg_int8(g->nbd, bsa);
    args[na++] = lam__arg_int8(g->nbd, bsb);
    st = lam__launch(ctx, k, fn, na, args, 3, global, local);
  }
  /* The in-order queue runs the launch before the pool hands these out again. */
  lam_tensor_free(ta);
  lam_tensor_free(tb);
  return st;
}

/* ---- the op ------------------------------------------------------------- */

static lam_status lam__matmul_backward(lam__node *node, lam_tensor *g, lam_tensor **gin);

/* The matrix view of an operand as (rows, cols) of its stored layout: a
 * vector is a row [1, K] on the left and a column [K, 1] on the right. */
static void lam__matrix_dims(const lam_tensor *t, int left, int64_t *rows, int64_t *cols) {
  if (t->ndim == 1) {
    *rows = left ? 1 : t->shape[0];
    *cols = left ? t->shape[0] : 1;
  } else {
    *rows = t->shape[t->ndim - 2];
    *cols = t->shape[t->ndim - 1];
  }
}

/* forced: NULL for the context's own choice, else CPU GEMM parameters (tests, tuner). */
static lam_tensor *lam__matmul(lam_tensor *a, lam_tensor *b, int ta, int tb, const char *fn,
                               const lam__gemm_params *forced) {
  if (!a) return lam__null_input(fn, "a");
  if (!b) return lam__null_input(fn, "b");
  lam_ctx *ctx = a->ctx;
  if (b->ctx != ctx)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: a and b belong to different contexts", fn), NULL;
  for (int i = 0; i < 2; i++) {
    const lam_tensor *t = i ? b : a;
    if (t->dtype != LAM_F32 && t->dtype != LAM_F64 && t->dtype != LAM_F16)
      return lam__fail(LAM_ERR_DTYPE, "%s: %s has dtype %s; matmul takes f32, f64 or f16", fn,
                       i ? "b" : "a", lam_dtype_name(t->dtype)), NULL;
    if (t->ndim < 1)
      return lam__fail(LAM_ERR_SHAPE, "%s: %s is 0-dim; operands need at least 1 dim", fn,
                       i ? "b" : "a"), NULL;
  }
  if (a->dtype != b->dtype)
    return lam__fail(LAM_ERR_DTYPE, "%s: dtypes differ: a is %s, b is %s", fn,
                     lam_dtype_name(a->dtype), lam_dtype_name(b->dtype)), NULL;
  if (lam__check_dtype_supported(ctx, a->dtype, fn) != LAM_OK) return NULL;
  /* Transposing a vector changes nothing (as numpy.matmul has no flags). */
  ta = a->ndim > 1 && ta;
  tb = b->ndim > 1 && tb;
  int64_t ar, ac, br, bc;
  lam__matrix_dims(a, 1, &ar, &ac);
  lam__matrix_dims(b, 0, &br, &bc);
  const int64_t M = ta ? ac : ar, Ka = ta ? ar : ac, Kb = tb ? bc : br, N = tb ? br : bc;
  if (Ka != Kb) {
    char s1[LAM__SHAPE_STR], s2[LAM__SHAPE_STR];
    return lam__fail(LAM_ERR_SHAPE, "%s: inner dims differ: a is %s%s, b is %s%s", fn,
                     lam__shape_str(a->ndim, a->shape, s1), ta ? " (transposed)" : "",
                     lam__shape_str(b->ndim, b->shape, s2), tb ? " (transposed)" : ""), NULL;
  }
  /* Batch dims broadcast right-aligned; strides are 0 where an operand has 1. */
  lam__gemm g;
  memset(&g, 0, sizeof g);
  const int nba = a->ndim > 2 ? a->ndim - 2 : 0, nbb = b->ndim > 2 ? b->ndim - 2 : 0;
  g.nbd = nba > nbb ? nba : nbb;
  int64_t stra = ar * ac, strb = br * bc;
  for (int d = g.nbd - 1; d >= 0; d--) {
    const int ia = d - (g.nbd - nba), ib = d - (g.nbd - nbb);
    const int64_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
    if (da != db && da != 1 && db != 1) {
      char s1[LAM__SHAPE_STR], s2[LAM__SHAPE_STR];
      return lam__fail(LAM_ERR_SHAPE,
                       "%s: batch dims do not broadcast: a is %s, b is %s (%lld vs %lld)", fn,
                       lam__shape_str(a->ndim, a->shape, s1), lam__shape_str(b->ndim, b->shape, s2),
                       (long long)da, (long long)db), NULL;
    }
    g.bshape[d] = da > db ? da : db;
    g.sa[d] = da == 1 ? 0 : stra;
    g.sb[d] = db == 1 ? 0 : strb;
    stra *= da;
    strb *= db;
  }
  /* Output: batch + [M] (unless a is a vector) + [N] (unless b is a vector). */
  int64_t full[LAM_MAX_DIMS + 2], oshape[LAM_MAX_DIMS + 2];
  int fnd = 0, ond = 0;
  g.nbatch = 1;
  for (int d = 0; d < g.nbd; d++) {
    full[fnd++] = oshape[ond++] = g.bshape[d];
    g.nbatch *= g.bshape[d];
  }
  full[fnd++] = M;
  full[fnd++] = N;
  if (a->ndim > 1) oshape[ond++] = M;
  if (b->ndim > 1) oshape[ond++] = N;
  /* f16 (storage on every device): the operands are converted to f32 and
   * the f32 GEMM runs (f32 products and accumulation, like torch's f16
   * matmul on GPUs), then the result is rounded to f16 once. This costs two
   * casts and f32 temporaries but keeps one tuned GEMM per device; the
   * backward pass goes through this same path on the f16 tensors. */
  const bool half = a->dtype == LAM_F16;
  lam_tensor *a32 = half ? lam_tensor_cast(a, LAM_F32) : NULL;
  lam_tensor *b32 = half ? lam_tensor_cast(b, LAM_F32) : NULL;
  lam_tensor *out = (!half || (a32 && b32))
                        ? lam__tensor_new(ctx, half ? LAM_F32 : a->dtype, ond, oshape, fn)
                        : NULL;
  if (!out) {
    lam_tensor_free(a32);
    lam_tensor_free(b32);
    return NULL;
  }
  g.a = half ? a32 : a, g.b = half ? b32 : b, g.c = out;
  g.ta = ta, g.tb = tb;
  g.M = M, g.N = N, g.K = Ka;
  /* B shared by the whole batch and A not transposed: the batch is more rows of A. */
  bool b_shared = true;
  for (int d = 0; d < g.nbd; d++) b_shared = b_shared && g.sb[d] == 0;
  if (g.nbatch > 1 && b_shared && !ta) {
    g.M *= g.nbatch;
    g.nbatch = 1;
    g.nbd = 0;
  }
#if LAMINA_HAVE_CLBLAST
  lam_status st = (forced || (ctx->cpu_gemm_tuning && (ctx->info.type & LAM_DEVICE_CPU)))
                      ? lam__gemm_cpu(ctx, &g, forced, fn)
                      : lam__gemm_clblast(ctx, &g, fn);
#else
  /* Built without CLBlast (LAMINA_WITH_CLBLAST): lamina's kernels on every device. */
  lam_status st = lam__gemm_cpu(ctx, &g, forced, fn);
#endif
  lam_tensor_free(a32);
  lam_tensor_free(b32);
  if (st == LAM_OK && half) {
    lam_tensor *o16 = lam_tensor_cast(out, LAM_F16);
    lam_tensor_free(out);
    out = o16;
    if (!out) return NULL;
  }
  if (st != LAM_OK) {
    lam_tensor_free(out);
    return NULL;
  }
  lam__node *node = lam__tape_record(out, fn, lam__matmul_backward, 2, (lam_tensor *[]){a, b});
  if (node) {
    lam__node_save(node, a);
    lam__node_save(node, b);
    node->i[0] = ta;
    node->i[1] = tb;
    node->i[2] = fnd;
    for (int d = 0; d < fnd; d++) node->i[3 + d] = full[d];
  }
  return out;
}

lam_tensor *lam_matmul(lam_tensor *a, lam_tensor *b) {
  return lam__matmul(a, b, 0, 0, "lam_matmul", NULL);
}

lam_tensor *lam_matmul_t(lam_tensor *a, lam_tensor *b, int transpose_a, int transpose_b) {
  return lam__matmul(a, b, transpose_a, transpose_b, "lam_matmul_t", NULL);
}

/* For tests: as lam_matmul_t with CPU GEMM tuning set `set` forced, on any
 * device. Returns NULL with a message when set is out of range. */
lam_tensor *lam__matmul_with_set(lam_tensor *a, lam_tensor *b, int ta, int tb, int set) {
  const lam__gemm_params *p = a ? lam__gemm_set(a->dtype, set, NULL) : NULL;
  if (a && !p)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "lam__matmul_with_set: no tuning set %d", set), NULL;
  return lam__matmul(a, b, ta, tb, "lam_matmul_t", p);
}

lam_tensor *lam__matmul_with_params(lam_tensor *a, lam_tensor *b, int ta, int tb,
                                    const lam__gemm_params *p) {
  if (!lam__gemm_params_valid(p))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "lam__matmul_with_params: invalid parameters"), NULL;
  return lam__matmul(a, b, ta, tb, "lam_matmul_t", p);
}

/* ---- backward ----------------------------------------------------------- */

/* dop(A) = G @ op(B)^T and dop(B) = op(A)^T @ G on the matrix views (vectors
 * as [1,K] / [K,1], G with the dims the vectors dropped), transposed back
 * through the flags, then summed over the batch dims an operand broadcast. */
static lam_status lam__matmul_backward(lam__node *node, lam_tensor *g, lam_tensor **gin) {
  lam_tensor *a = node->saved[0], *b = node->saved[1];
  const int ta = (int)node->i[0], tb = (int)node->i[1], fnd = (int)node->i[2];
  const int64_t *full = &node->i[3];
  const int64_t M = full[fnd - 2], N = full[fnd - 1];
  int64_t ar, ac, br, bc;
  lam__matrix_dims(a, 1, &ar, &ac);
  lam__matrix_dims(b, 0, &br, &bc);
  const int64_t K = ta ? ar : ac;
  lam_tensor *A = a->ndim == 1 ? lam_tensor_reshape(a, 2, (int64_t[]){1, K}) : lam_tensor_retain(a);
  lam_tensor *B = b->ndim == 1 ? lam_tensor_reshape(b, 2, (int64_t[]){K, 1}) : lam_tensor_retain(b);
  lam_tensor *G = lam_tensor_reshape(g, fnd, full);
  lam_status st = (A && B && G) ? LAM_OK : lam_last_status();
  for (int i = 0; i < 2 && st == LAM_OK; i++) {
    if (!lam__node_needs(node, i)) continue;
    const lam_tensor *x = i ? B : A;
    const int64_t nbatch = G->numel / (M * N);
    lam_tensor *d;
    if (i == 0) {
      d = ta ? lam_matmul_t(B, G, tb, 1) : lam_matmul_t(G, B, 0, !tb);
    } else if (B->ndim == 2 && !ta && nbatch > 1 && A->numel == nbatch * M * K) {
      /* B shared by a full batch of A: one GEMM over the stacked rows. */
      lam_tensor *Af = lam_tensor_reshape(A, 2, (int64_t[]){nbatch * M, K});
      lam_tensor *Gf = lam_tensor_reshape(G, 2, (int64_t[]){nbatch * M, N});
      d = tb ? lam_matmul_t(Gf, Af, 1, 0) : lam_matmul_t(Af, Gf, 1, 0);
      lam_tensor_free(Af);
      lam_tensor_free(Gf);
    } else {
      d = tb ? lam_matmul_t(G, A, 1, ta) : lam_matmul_t(A, G, !ta, 0);
    }
    lam_tensor *r = lam__sum_to_shape(d, x->ndim, x->shape);
    lam_tensor_free(d);
    lam_tensor *orig = i ? b : a;
    if (r && orig->ndim == 1) {
      lam_tensor *v = lam_tensor_reshape(r, 1, orig->shape);
      lam_tensor_free(r);
      r = v;
    }
    if (!r) st = lam_last_status();
    gin[i] = r;
  }
  lam_tensor_free(A);
  lam_tensor_free(B);
  lam_tensor_free(G);
  return st;
}
