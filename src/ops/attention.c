/* ops/attention.c: lam_scaled_dot_product_attention. Validates q/k/v and
 * the options, then runs the fused kernel of cl/attention.cl (tiled over
 * keys with an online softmax; memory linear in the sequence) or, for head
 * dims beyond the fused kernel or on request, the unfused composition of
 * lamina ops (matmul, softmax, matmul), which autodiff differentiates op by
 * op. The fused kernels come in two layouts (cl/attention.cl): the CPU one
 * (register tiles, no local memory) and the GPU one (a work-group per block
 * of query rows, K/V tiles in local memory), chosen per call from the device
 * or LAMINA_ATTENTION_LAYOUT=cpu|gpu, with tile sizes from its local memory
 * and work-group limits. The fused output shares its buffer with the
 * log-sum-exp, the key keep flags and (when recording) the additive mask, so
 * the backward rule (ops/attention_backward.c) finds them through the saved
 * output; those suit both layouts. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/elementwise.h"
#include "lamina/linalg.h"
#include "lamina/reduce.h"
#include "lamina/rng.h"
#include "lamina/shape.h"
#include "ops/attention_internal.h"

lam_attention_opts lam_attention_defaults(void) {
  lam_attention_opts o;
  memset(&o, 0, sizeof o);
  return o;
}

/* ---- small shared helpers --------------------------------------------------- */

lam__arg lam__att_arg_int16(const int64_t v[16]) {
  lam__arg a = {16 * sizeof(cl_int), false, {0}};
  for (int i = 0; i < 16; i++) {
    cl_int x = (cl_int)v[i];
    memcpy(a.value + i * sizeof x, &x, sizeof x);
  }
  return a;
}

lam__arg lam__att_arg_int4(const int64_t v[4]) {
  lam__arg a = {4 * sizeof(cl_int), false, {0}};
  for (int i = 0; i < 4; i++) {
    cl_int x = (cl_int)v[i];
    memcpy(a.value + i * sizeof x, &x, sizeof x);
  }
  return a;
}

lam_status lam__att_kernel(lam_ctx *ctx, const char *name, lam_dtype dtype, cl_kernel *k) {
  return lam__att_kernel_d(ctx, name, dtype, 0, k);
}

lam_status lam__att_kernel_d(lam_ctx *ctx, const char *name, lam_dtype dtype, int64_t max_d,
                             cl_kernel *k) {
  /* Private accumulators hold ATT_MAX_D columns: 128 unless a head needs more
   * (a second program, built only by models with such heads). The table's
   * rows per work-item go in as -DBM only where they differ from the
   * kernel's own 12, so the usual program keeps its cache key. */
  char opts[64] = "";
  if (max_d > 128) strcpy(opts, "-DATT_MAX_D=256");
  if (ctx->tuning.att_bm != 12)
    snprintf(opts + strlen(opts), sizeof opts - strlen(opts), " -DBM=%d", ctx->tuning.att_bm);
  return lam__kernel_dt(ctx, "attention", name, dtype, opts[0] ? opts : NULL, k);
}

lam_status lam__att_launch(lam_ctx *ctx, cl_kernel k, const char *fn, int nargs,
                           const lam__arg *args, int64_t n_items) {
  /* Each work-item is heavy (a block of rows against every key): aim for
   * several work-groups per compute unit and no more than 8 items each. */
  int64_t cu = ctx->info.compute_units ? ctx->info.compute_units : 1;
  int64_t local = n_items / (4 * cu);
  if (local > 8) local = 8;
  if (local < 1) local = 1;
  if (!ctx->tuning.spread_groups) local = n_items < 64 ? n_items : 64;
  if (local > (int64_t)ctx->info.max_work_group_size) local = (int64_t)ctx->info.max_work_group_size;
  size_t l = (size_t)local, g = (size_t)((n_items + local - 1) / local * local);
  return lam__launch(ctx, k, fn, nargs, args, 1, &g, &l);
}

/* ---- the two layouts of the fused kernels ------------------------------------- */

/* Largest power of two <= v (>= 1), at most cap. */
static int64_t lam__att_pow2_floor(int64_t v, int64_t cap) {
  int64_t p = 1;
  while (p * 2 <= v && p * 2 <= cap) p *= 2;
  return p;
}

bool lam__att_gpu_layout(lam_ctx *ctx, lam_dtype dtype, int64_t max_d, lam__att_gpu *L) {
  if (!ctx->tuning.att_gpu) return false; /* the table: device type or LAMINA_ATTENTION_LAYOUT */
  /* Padded head dim (compile-time loop bound of the private rows): 8, 16,
   * then steps of 32 and 64, so a handful of programs cover every head dim. */
  int64_t dk = max_d <= 8    ? 8
               : max_d <= 16  ? 16
               : max_d <= 128 ? (max_d + 31) / 32 * 32
                              : (max_d + 63) / 64 * 64;
  /* Rows per work-group: 64 (two warps / one wavefront), fewer where the
   * device allows less. */
  size_t mwg = ctx->info.max_work_group_size ? ctx->info.max_work_group_size : 64;
  int64_t rows = lam__att_pow2_floor((int64_t)mwg, 64);
  /* Keys (queries) per tile: the K and V (Q and dO) tiles, plus the dK/dV
   * kernel's two statistics per query, in the local memory less 1 KiB for
   * the implementation; a power of two <= 32. */
  int64_t es = (int64_t)lam_dtype_size(dtype);
  int64_t budget = (int64_t)ctx->info.local_mem_bytes - 1024;
  int64_t fit = budget > 0 ? budget / (2 * (dk + 1) * es) : 0;
  if (fit < 4) return false; /* too little local memory: the CPU layout */
  int64_t tile = lam__att_pow2_floor(fit, 32);
  L->rows = (int)rows;
  L->tile = (int)tile;
  L->dk = (int)dk;
  snprintf(L->opts, sizeof L->opts, "-DATT_GPU -DATT_BQ=%d -DATT_BT=%d -DATT_DK=%d%s", L->rows,
           L->tile, L->dk, ctx->tuning.att_unroll ? " -DATT_UNROLL" : "");
  return true;
}

lam_status lam__att_gpu_launch(lam_ctx *ctx, cl_kernel k, const char *fn, int nargs,
                               const lam__arg *args, int64_t heads, int64_t rows,
                               const lam__att_gpu *L) {
  size_t l = (size_t)L->rows;
  size_t g = (size_t)(heads * ((rows + L->rows - 1) / L->rows)) * l;
  return lam__launch(ctx, k, fn, nargs, args, 1, &g, &l);
}

lam_tensor *lam__att_transpose_pad(const char *fn, lam_ctx *ctx, lam_dtype dtype, cl_mem x,
                                   int64_t x_off, int64_t N, int64_t S, int64_t Dd, int64_t hs,
                                   int64_t rs, int64_t Sp) {
  cl_kernel k;
  if (lam__att_kernel(ctx, "transpose_pad", dtype, &k) != LAM_OK) return NULL;
  lam_tensor *y = lam__tensor_new(ctx, dtype, 3, (int64_t[]){N, Dd, Sp}, fn);
  if (!y) return NULL;
  int64_t n = y->numel / lam__att_bn(dtype) * 2; /* Sp is a multiple of BN = 2 vectors */
  lam__arg args[] = {lam__arg_mem(x),     lam__arg_int(x_off), LAM__ARG_T(y),      lam__arg_int(S),
                     lam__arg_int(Dd),    lam__arg_int(hs),    lam__arg_int(rs),   lam__arg_int(Sp),
                     lam__arg_int(n)};
  if (lam__launch_1d(ctx, k, fn, LAM__NARGS(args), args, (size_t)n) != LAM_OK) {
    lam_tensor_free(y);
    return NULL;
  }
  return y;
}

lam_status lam__att_copy_rows(const char *fn, lam_tensor *dst, int64_t dst_hs, int64_t dst_start,
                              cl_mem src, int64_t src_off, int64_t src_hs, int64_t N, int64_t n,
                              int64_t Dd) {
  cl_kernel k;
  lam_status st = lam__att_kernel(dst->ctx, "copy_rows", dst->dtype, &k);
  if (st != LAM_OK) return st;
  int64_t total = N * n * Dd;
  lam__arg args[] = {lam__arg_mem(src),     lam__arg_int(src_off), LAM__ARG_T(dst),
                     lam__arg_int(n),       lam__arg_int(Dd),      lam__arg_int(src_hs),
                     lam__arg_int(dst_hs),  lam__arg_int(dst_start), lam__arg_int(total)};
  return lam__launch_1d(dst->ctx, k, fn, LAM__NARGS(args), args, (size_t)total);
}

/* ---- validation ----------------------------------------------------------------- */

typedef struct {
  lam_tensor *q, *k, *v; /* 4-D views (new references) */
  int squeeze;           /* inputs were rank 3 */
  int64_t cap;           /* rows along k's axis 2 */
} lam__sdpa_in;

static void lam__sdpa_in_free(lam__sdpa_in *in) {
  lam_tensor_free(in->q);
  lam_tensor_free(in->k);
  lam_tensor_free(in->v);
}

static lam_status lam__sdpa_check(const char *fn, lam_tensor *q, lam_tensor *k, lam_tensor *v,
                                  int64_t kv_len, const lam_attention_opts *o, lam__sdpa_geo *g,
                                  lam__sdpa_in *in) {
  char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR], b3[LAM__SHAPE_STR];
  if (q->dtype != LAM_F32 && q->dtype != LAM_F64)
    return lam__fail(LAM_ERR_DTYPE, "%s: q is %s, need f32 or f64", fn, lam_dtype_name(q->dtype));
  if (k->dtype != q->dtype || v->dtype != q->dtype)
    return lam__fail(LAM_ERR_DTYPE, "%s: q, k, v must share a dtype, got %s, %s, %s", fn,
                     lam_dtype_name(q->dtype), lam_dtype_name(k->dtype), lam_dtype_name(v->dtype));
  if ((q->ndim != 3 && q->ndim != 4) || k->ndim != q->ndim || v->ndim != q->ndim)
    return lam__fail(LAM_ERR_SHAPE,
                     "%s: q, k, v must all be [batch, heads, seq, head_dim] (or rank 3 "
                     "[heads, seq, head_dim]), got q %s, k %s, v %s",
                     fn, lam__shape_str(q->ndim, q->shape, b1), lam__shape_str(k->ndim, k->shape, b2),
                     lam__shape_str(v->ndim, v->shape, b3));
  lam_status st = lam__check_dtype_supported(q->ctx, q->dtype, fn);
  if (st != LAM_OK) return st;
  int off = q->ndim == 3 ? 1 : 0;
  int64_t qs[4], ks[4], vs[4];
  qs[0] = ks[0] = vs[0] = 1;
  for (int d = 0; d < q->ndim; d++) {
    qs[d + off] = q->shape[d];
    ks[d + off] = k->shape[d];
    vs[d + off] = v->shape[d];
  }
  if (ks[0] != qs[0] || vs[0] != qs[0] || vs[1] != ks[1] || vs[2] != ks[2] || ks[3] != qs[3])
    return lam__fail(LAM_ERR_SHAPE,
                     "%s: shapes do not fit: q %s, k %s, v %s (need q [B, H, Sq, D], k [B, Hkv, "
                     "Sk, D], v [B, Hkv, Sk, Dv])",
                     fn, lam__shape_str(q->ndim, q->shape, b1), lam__shape_str(k->ndim, k->shape, b2),
                     lam__shape_str(v->ndim, v->shape, b3));
  if (qs[1] % ks[1] != 0)
    return lam__fail(LAM_ERR_SHAPE, "%s: kv heads %lld do not divide query heads %lld (q %s, k %s)",
                     fn, (long long)ks[1], (long long)qs[1], lam__shape_str(q->ndim, q->shape, b1),
                     lam__shape_str(k->ndim, k->shape, b2));
  memset(g, 0, sizeof *g);
  g->B = qs[0];
  g->H = qs[1];
  g->Sq = qs[2];
  g->D = qs[3];
  g->Hkv = ks[1];
  g->G = g->H / g->Hkv;
  g->Dv = vs[3];
  in->cap = ks[2];
  g->Sk = kv_len < 0 ? ks[2] : kv_len;
  if (g->Sk < 1 || g->Sk > ks[2])
    return lam__fail(LAM_ERR_SHAPE, "%s: %lld keys requested of %lld", fn, (long long)g->Sk,
                     (long long)ks[2]);
  g->scale = o->scale == 0 ? 1.0 / sqrt((double)g->D) : o->scale;
  if (!isfinite(g->scale))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: scale %g is not finite", fn, o->scale);
  if (!(o->dropout >= 0 && o->dropout < 1))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: dropout %g must be in [0, 1)", fn, o->dropout);
  if (o->q_offset < -((int64_t)1 << 30) || o->q_offset > ((int64_t)1 << 30))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: q_offset %lld is out of range", fn,
                     (long long)o->q_offset);
  if (o->impl != LAM_ATTENTION_AUTO && o->impl != LAM_ATTENTION_FUSED && o->impl != LAM_ATTENTION_UNFUSED)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: unknown impl %d", fn, (int)o->impl);
  g->q_pos = o->q_offset;
  lam_tensor *kpm = o->key_padding_mask;
  if (kpm) {
    if (kpm->dtype != LAM_U8 && kpm->dtype != LAM_I32)
      return lam__fail(LAM_ERR_DTYPE, "%s: key_padding_mask is %s, need u8 or i32", fn,
                       lam_dtype_name(kpm->dtype));
    if (kpm->ndim != 2 || kpm->shape[0] != g->B || kpm->shape[1] != g->Sk)
      return lam__fail(LAM_ERR_SHAPE, "%s: key_padding_mask is %s, expected [batch, seq_k] = [%lld,%lld]",
                       fn, lam__shape_str(kpm->ndim, kpm->shape, b1), (long long)g->B,
                       (long long)g->Sk);
    if (kpm->ctx != q->ctx)
      return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: key_padding_mask is on another context", fn);
  }
  lam_tensor *m = o->mask;
  if (m) {
    if (m->dtype != LAM_U8 && m->dtype != q->dtype)
      return lam__fail(LAM_ERR_DTYPE, "%s: mask is %s, need u8 (keep where nonzero) or %s (added)",
                       fn, lam_dtype_name(m->dtype), lam_dtype_name(q->dtype));
    int64_t full[4] = {g->B, g->H, g->Sq, g->Sk};
    bool okm = m->ndim <= 4;
    for (int d = 0; okm && d < m->ndim; d++) {
      int64_t want = full[4 - m->ndim + d];
      okm = m->shape[d] == 1 || m->shape[d] == want;
    }
    if (!okm)
      return lam__fail(LAM_ERR_SHAPE, "%s: mask %s does not broadcast to [batch, heads, seq_q, seq_k] = %s",
                       fn, lam__shape_str(m->ndim, m->shape, b1), lam__shape_str(4, full, b2));
    if (m->ctx != q->ctx)
      return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: mask is on another context", fn);
    /* strides over (b, h, i, j) of the right-aligned, broadcast mask */
    int64_t ms[4] = {1, 1, 1, 1}, st4[4];
    for (int d = 0; d < m->ndim; d++) ms[4 - m->ndim + d] = m->shape[d];
    lam__strides(4, ms, st4);
    for (int d = 0; d < 4; d++) g->bst[d] = ms[d] == 1 ? 0 : st4[d];
  }
  if (k->ctx != q->ctx || v->ctx != q->ctx)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: q, k, v are on different contexts", fn);
  /* 4-D views */
  in->squeeze = off;
  in->q = off ? lam_tensor_reshape(q, 4, qs) : lam_tensor_retain(q);
  in->k = off ? lam_tensor_reshape(k, 4, ks) : lam_tensor_retain(k);
  in->v = off ? lam_tensor_reshape(v, 4, vs) : lam_tensor_retain(v);
  if (!in->q || !in->k || !in->v) {
    lam__sdpa_in_free(in);
    return lam_last_status();
  }
  g->k_hs = in->cap * g->D;
  g->k_rs = g->D;
  g->v_hs = in->cap * g->Dv;
  g->v_rs = g->Dv;
  g->Skp = (g->Sk + lam__att_bn(q->dtype) - 1) / lam__att_bn(q->dtype) * lam__att_bn(q->dtype);
  g->Sqp = (g->Sq + lam__att_bn(q->dtype) - 1) / lam__att_bn(q->dtype) * lam__att_bn(q->dtype);
  g->flags = (o->causal ? LAM__ATT_CAUSAL : 0) | (kpm ? LAM__ATT_KEEP : 0) |
             (m ? LAM__ATT_BIAS : 0) | (o->alibi ? LAM__ATT_ALIBI : 0);
  if (o->dropout > 0) {
    double t = ldexp(1.0 - o->dropout, 32);
    uint64_t thr = (uint64_t)llround(t);
    g->dscale = 1.0 / (1.0 - o->dropout);
    if (thr < ((uint64_t)1 << 32)) { /* else every weight is kept (rate below 2^-33) */
      g->flags |= LAM__ATT_DROPOUT;
      g->thr = (uint32_t)thr;
      g->k0 = o->dropout_key.k[0];
      g->k1 = o->dropout_key.k[1];
    }
  }
  return LAM_OK;
}

/* ---- the unfused path ----------------------------------------------------------- */

/* Finite stand-in for -inf in the unfused scores (so softmax of a fully
 * masked row stays finite and can be zeroed). */
#define LAM__MASKED (-1e30)

static lam_tensor *lam__swap(lam_tensor **slot, lam_tensor *next) {
  lam_tensor_free(*slot);
  *slot = next;
  return next;
}

static lam_tensor *lam__sdpa_unfused(const char *fn, const lam__sdpa_in *in, const lam__sdpa_geo *g,
                                     const lam_attention_opts *o) {
  lam_ctx *ctx = in->q->ctx;
  lam_dtype dt = in->q->dtype;
  lam_tensor *k = in->cap > g->Sk ? lam_slice_axis(in->k, 2, 0, g->Sk, 1) : lam_tensor_retain(in->k);
  lam_tensor *v = in->cap > g->Sk ? lam_slice_axis(in->v, 2, 0, g->Sk, 1) : lam_tensor_retain(in->v);
  if (g->G > 1 && k && v) { /* repeat each kv head G times */
    int64_t k5[5] = {g->B, g->Hkv, 1, g->Sk, g->D}, kb[5] = {g->B, g->Hkv, g->G, g->Sk, g->D};
    int64_t v5[5] = {g->B, g->Hkv, 1, g->Sk, g->Dv}, vb[5] = {g->B, g->Hkv, g->G, g->Sk, g->Dv};
    lam_tensor *t = lam_reshape(k, 5, k5);
    lam_tensor *tb = lam_broadcast_to(t, 5, kb);
    lam_tensor_free(t);
    lam__swap(&k, tb ? lam_reshape(tb, 4, (int64_t[]){g->B, g->H, g->Sk, g->D}) : NULL);
    lam_tensor_free(tb);
    t = k ? lam_reshape(v, 5, v5) : NULL;
    tb = lam_broadcast_to(t, 5, vb);
    lam_tensor_free(t);
    lam__swap(&v, tb ? lam_reshape(tb, 4, (int64_t[]){g->B, g->H, g->Sk, g->Dv}) : NULL);
    lam_tensor_free(tb);
  }
  lam_tensor *s = k && v ? lam_matmul_t(in->q, k, 0, 1) : NULL;
  if (s) lam__swap(&s, lam_mul_scalar(s, g->scale));
  bool any_mask = false;
  if (s && o->mask && o->mask->dtype != LAM_U8) {
    lam__swap(&s, lam_add(s, o->mask));
    lam_tensor *lo = s ? lam_tensor_scalar(ctx, dt, LAM__MASKED) : NULL;
    if (s) lam__swap(&s, lo ? lam_maximum(s, lo) : NULL);
    lam_tensor_free(lo);
    any_mask = true;
  }
  if (s && o->alibi) {
    lam_tensor *ab = lam_alibi_bias(ctx, dt, g->H, g->Sq, g->Sk, g->q_pos);
    lam__swap(&s, ab ? lam_add(s, ab) : NULL);
    lam_tensor_free(ab);
  }
  lam_tensor *neg = s ? lam_tensor_scalar(ctx, dt, LAM__MASKED) : NULL;
  if (s && o->causal) {
    lam_tensor *keep = lam_tril_mask(ctx, g->Sq, g->Sk, (int)g->q_pos);
    lam__swap(&s, keep ? lam_where(keep, s, neg) : NULL);
    lam_tensor_free(keep);
    if (g->q_pos < 0) any_mask = true;
  }
  if (s && o->key_padding_mask) {
    lam_tensor *nz = lam_compare_scalar(LAM_NE, o->key_padding_mask, 0);
    lam_tensor *nz4 = nz ? lam_reshape(nz, 4, (int64_t[]){g->B, 1, 1, g->Sk}) : NULL;
    lam__swap(&s, nz4 ? lam_where(nz4, s, neg) : NULL);
    lam_tensor_free(nz);
    lam_tensor_free(nz4);
    any_mask = true;
  }
  if (s && o->mask && o->mask->dtype == LAM_U8) {
    lam__swap(&s, lam_where(o->mask, s, neg));
    any_mask = true;
  }
  lam_tensor_free(neg);
  lam_tensor *p = s ? lam_softmax(s, -1) : NULL;
  if (p && any_mask) { /* rows with no key left give zeros */
    lam_tensor *live = lam_compare_scalar(LAM_GT, s, LAM__MASKED / 2);
    lam_tensor *livef = live ? lam_tensor_cast(live, dt) : NULL;
    lam_tensor *rowlive = livef ? lam_max(livef, 1, (int[]){-1}, 1) : NULL;
    lam__swap(&p, rowlive ? lam_mul(p, rowlive) : NULL);
    lam_tensor_free(live);
    lam_tensor_free(livef);
    lam_tensor_free(rowlive);
  }
  if (p && (g->flags & LAM__ATT_DROPOUT)) {
    lam_tensor *keep = lam_random_bernoulli(ctx, o->dropout_key, 1.0 - o->dropout, 4,
                                            (int64_t[]){g->B, g->H, g->Sq, g->Sk});
    lam_tensor *kf = keep ? lam_tensor_cast(keep, dt) : NULL;
    lam_tensor *ks = kf ? lam_mul_scalar(kf, g->dscale) : NULL;
    lam__swap(&p, ks ? lam_mul(p, ks) : NULL);
    lam_tensor_free(keep);
    lam_tensor_free(kf);
    lam_tensor_free(ks);
  } else if (p && o->dropout > 0) {
    lam__swap(&p, lam_mul_scalar(p, g->dscale));
  }
  lam_tensor *out = p ? lam_matmul(p, v) : NULL;
  lam_tensor_free(s);
  lam_tensor_free(p);
  lam_tensor_free(k);
  lam_tensor_free(v);
  (void)fn;
  return out;
}

/* ---- the fused path ----------------------------------------------------------- */

static bool lam__any_tracked(lam_tensor *const *ts, int n) {
  for (int i = 0; i < n; i++)
    if (ts[i] && lam__tracked(ts[i])) return true;
  return false;
}

static lam_tensor *lam__sdpa_fused(const char *fn, const lam__sdpa_in *in, lam__sdpa_geo *g,
                                   const lam_attention_opts *o) {
  lam_ctx *ctx = in->q->ctx;
  lam_dtype dt = in->q->dtype;
  size_t es = lam_dtype_size(dt);
  lam_tensor *umask = o->mask; /* user's mask (float: an input of the node) */
  lam_tensor *inputs[4] = {in->q, in->k, in->v, umask && umask->dtype != LAM_U8 ? umask : NULL};
  const bool recording = lam__any_tracked(inputs, 4);
  const int64_t max_d = g->D > g->Dv ? g->D : g->Dv;
  lam__att_gpu L;
  const bool gpu = lam__att_gpu_layout(ctx, dt, max_d, &L);
  cl_kernel kf;
  if ((gpu ? lam__kernel_dt(ctx, "attention", "sdpa_fwd_wg", dt, L.opts, &kf)
           : lam__att_kernel_d(ctx, "sdpa_fwd", dt, max_d, &kf)) != LAM_OK)
    return NULL;

  /* Pack: [out | lse | bias (u8 mask converted, or a float mask kept for the
   * backward) | keep flags (bytes)]. */
  g->n_out = g->B * g->H * g->Sq * g->Dv;
  g->lse_off = g->n_out;
  int64_t total = g->n_out + g->B * g->H * g->Sq;
  int64_t n_bias = umask ? umask->numel : 0;
  g->bias_in_pack = umask && (umask->dtype == LAM_U8 || recording);
  g->bias_off = total;
  if (g->bias_in_pack) total += n_bias;
  int64_t keep_bytes = o->key_padding_mask ? g->B * g->Skp : 0;
  int64_t keep_elems = (keep_bytes + (int64_t)es - 1) / (int64_t)es;
  int64_t keep_elem_off = total;
  total += keep_elems;
  if (total > LAM__MAX_NUMEL)
    return lam__fail(LAM_ERR_SHAPE, "%s: output and its statistics exceed 2^31 elements", fn), NULL;
  lam_tensor *pack = lam__tensor_new(ctx, dt, 1, &total, fn);
  if (!pack) return NULL;
  g->keep_off = (int64_t)((pack->offset + (size_t)keep_elem_off) * es);
  cl_mem pm = pack->buf->mem;
  lam_status st = LAM_OK;
  cl_kernel kk;
  /* keep flags */
  if (o->key_padding_mask) {
    lam_tensor *kpm = o->key_padding_mask;
    st = lam__att_kernel(ctx, kpm->dtype == LAM_U8 ? "keep_u8" : "keep_i32", dt, &kk);
    if (st == LAM_OK) {
      lam__arg a[] = {LAM__ARG_T(kpm), lam__arg_mem(pm), lam__arg_int(g->keep_off),
                      lam__arg_int(g->Sk), lam__arg_int(g->Skp), lam__arg_int(keep_bytes)};
      st = lam__launch_1d(ctx, kk, fn, LAM__NARGS(a), a, (size_t)keep_bytes);
    }
  }
  /* bias */
  cl_mem bm = pm;
  int64_t b_off = (int64_t)pack->offset;
  if (st == LAM_OK && umask) {
    if (umask->dtype == LAM_U8) {
      st = lam__att_kernel(ctx, "mask_to_bias", dt, &kk);
      if (st == LAM_OK) {
        lam__arg a[] = {LAM__ARG_T(umask), lam__arg_mem(pm),
                        lam__arg_int((int64_t)pack->offset + g->bias_off), lam__arg_int(n_bias)};
        st = lam__launch_1d(ctx, kk, fn, LAM__NARGS(a), a, (size_t)n_bias);
      }
      b_off = (int64_t)pack->offset + g->bias_off;
    } else if (g->bias_in_pack) {
      st = lam__att_copy_rows(fn, pack, 0, g->bias_off, umask->buf->mem, (int64_t)umask->offset, 0, 1,
                              n_bias, 1);
      b_off = (int64_t)pack->offset + g->bias_off;
    } else {
      bm = umask->buf->mem;
      b_off = (int64_t)umask->offset;
    }
  }
  /* the CPU layout reads K^T; the GPU layout reads K in place */
  lam_tensor *kt = st != LAM_OK ? NULL
                   : gpu        ? lam_tensor_retain(in->k)
                                : lam__att_transpose_pad(fn, ctx, dt, in->k->buf->mem,
                                                         (int64_t)in->k->offset, g->B * g->Hkv,
                                                         g->Sk, g->D, g->k_hs, g->k_rs, g->Skp);
  if (!kt) {
    lam_tensor_free(pack);
    return NULL;
  }
  int64_t geo[16] = {g->B,  g->H,   g->G,    g->Sq,   g->Sk,   g->Skp,   g->Sqp,   g->D,
                     g->Dv, g->q_pos, g->flags, g->k_hs, g->k_rs, g->v_hs, g->v_rs, g->Hkv};
  int64_t n_items = g->B * g->H * ((g->Sq + ctx->tuning.att_bm - 1) / ctx->tuning.att_bm);
  lam__arg a[] = {LAM__ARG_T(in->q),
                  LAM__ARG_T(kt),
                  LAM__ARG_T(in->v),
                  lam__arg_mem(pm),
                  lam__arg_int((int64_t)pack->offset),
                  lam__arg_mem(pm),
                  lam__arg_int((int64_t)pack->offset + g->lse_off),
                  lam__arg_mem(pm),
                  lam__arg_int(keep_bytes ? g->keep_off : 0),
                  lam__arg_mem(bm),
                  lam__arg_int(b_off),
                  lam__att_arg_int16(geo),
                  lam__att_arg_int4(g->bst),
                  lam__arg_real(dt, g->scale),
                  lam__arg_uint(g->k0),
                  lam__arg_uint(g->k1),
                  lam__arg_uint(g->thr),
                  lam__arg_real(dt, g->dscale),
                  lam__arg_int(n_items)};
  /* the GPU kernel takes the same arguments but n_items (its grid is exact) */
  st = gpu ? lam__att_gpu_launch(ctx, kf, fn, LAM__NARGS(a) - 1, a, g->B * g->H, g->Sq, &L)
           : lam__att_launch(ctx, kf, fn, LAM__NARGS(a), a, n_items);
  lam_tensor_free(kt);
  if (st != LAM_OK) {
    lam_tensor_free(pack);
    return NULL;
  }
  lam_tensor *out = lam__tensor_view(pack, pack->offset, 4, (int64_t[]){g->B, g->H, g->Sq, g->Dv});
  lam_tensor_free(pack);
  if (!out) return NULL;
  if (recording) {
    lam__node *node = lam__tape_record(out, fn, lam__sdpa_backward, 4, inputs);
    if (node) {
      lam__sdpa_geo *saved = malloc(sizeof *saved);
      if (!saved) {
        lam_tensor_free(out);
        return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn), NULL;
      }
      *saved = *g;
      node->extra = saved;
      lam__node_save(node, in->q);
      lam__node_save(node, in->k);
      lam__node_save(node, in->v);
      lam__node_save(node, out);
    }
  }
  return out;
}

/* ---- entry points --------------------------------------------------------------- */

lam_tensor *lam__sdpa(const char *fn, lam_tensor *q, lam_tensor *k, lam_tensor *v, int64_t kv_len,
                      const lam_attention_opts *opts) {
  if (!q) return lam__null_input(fn, "q");
  if (!k) return lam__null_input(fn, "k");
  if (!v) return lam__null_input(fn, "v");
  lam_attention_opts o = opts ? *opts : lam_attention_defaults();
  lam__sdpa_geo g;
  lam__sdpa_in in = {0};
  if (lam__sdpa_check(fn, q, k, v, kv_len, &o, &g, &in) != LAM_OK) return NULL;
  bool fits = g.D <= LAM_ATTENTION_FUSED_MAX_HEAD_DIM && g.Dv <= LAM_ATTENTION_FUSED_MAX_HEAD_DIM;
  if (o.impl == LAM_ATTENTION_FUSED && !fits) {
    lam__sdpa_in_free(&in);
    return lam__fail(LAM_ERR_UNSUPPORTED, "%s: the fused kernel takes head dims up to %d, got %lld and %lld",
                     fn, LAM_ATTENTION_FUSED_MAX_HEAD_DIM, (long long)g.D, (long long)g.Dv), NULL;
  }
  lam_tensor *out = (o.impl == LAM_ATTENTION_UNFUSED || !fits) ? lam__sdpa_unfused(fn, &in, &g, &o)
                                                          : lam__sdpa_fused(fn, &in, &g, &o);
  if (out && in.squeeze) lam__swap(&out, lam_tensor_reshape(out, 3, (int64_t[]){g.H, g.Sq, g.Dv}));
  lam__sdpa_in_free(&in);
  return out;
}

lam_tensor *lam_scaled_dot_product_attention(lam_tensor *q, lam_tensor *k, lam_tensor *v,
                                             const lam_attention_opts *opts) {
  return lam__sdpa("lam_scaled_dot_product_attention", q, k, v, -1, opts);
}
