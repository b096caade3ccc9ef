/* ops/attention_backward.c: the backward rule of the fused attention.
 * FlashAttention-2's scheme on the kernels of cl/attention.cl: a prep pass
 * computes dl_i = rowsum(dO_i * O_i) and the saved log-sum-exp with fully
 * masked rows made finite; sdpa_bwd_dq recomputes the weights tile by tile
 * for blocks of query rows (dQ, and dS when a float mask needs a gradient);
 * sdpa_bwd_dkv does the same for blocks of key rows over every query head of
 * their group (dK, dV). Only the optional mask gradient is seq_q x seq_k
 * (dS, then summed to the mask's shape). The GPU layout (sdpa_bwd_dq_wg,
 * sdpa_bwd_dkv_wg) splits the work the same way but stages K/V (Q/dO) tiles
 * in local memory and reads every operand in place (no transposed copies). */
#include <stdlib.h>

#include "ops/attention_internal.h"

static void lam__free_all(lam_tensor **ts, int n) {
  for (int i = 0; i < n; i++) lam_tensor_free(ts[i]);
}

lam_status lam__sdpa_backward(lam__node *node, lam_tensor *gout, lam_tensor **gin) {
  const lam__sdpa_geo *g = node->extra;
  lam_tensor *q = node->saved[0], *k = node->saved[1], *v = node->saved[2], *out = node->saved[3];
  lam_ctx *ctx = q->ctx;
  lam_dtype dt = q->dtype;
  const char *fn = node->op;
  const bool need_q = lam__node_needs(node, 0);
  const bool need_kv = (lam__node_needs(node, 1) && node->in_shape[1][2] == g->Sk) ||
                       (lam__node_needs(node, 2) && node->in_shape[2][2] == g->Sk);
  const bool need_b = node->n_inputs > 3 && lam__node_needs(node, 3);
  cl_mem pm = out->buf->mem;
  const int64_t po = (int64_t)out->offset;
  const int64_t bias_off = (g->flags & LAM__ATT_BIAS) ? po + g->bias_off : po;
  const int64_t keep_off = (g->flags & LAM__ATT_KEEP) ? g->keep_off : 0;
  int flags = g->flags | (need_b ? LAM__ATT_DS : 0);
  int64_t geo[16] = {g->B,  g->H,     g->G,  g->Sq,   g->Sk,   g->Skp,   g->Sqp,   g->D,
                     g->Dv, g->q_pos, flags, g->k_hs, g->k_rs, g->v_hs, g->v_rs, g->Hkv};
  lam_status st;
  cl_kernel kp, kq, kkv;
  if ((st = lam__att_kernel(ctx, "sdpa_bwd_prep", dt, &kp)) != LAM_OK) return st;
  const int64_t max_d = g->D > g->Dv ? g->D : g->Dv;
  /* The layout is chosen again (the forward's saved statistics suit both). */
  lam__att_gpu L;
  const bool gpu = lam__att_gpu_layout(ctx, dt, max_d, &L);
  if (gpu) {
    if ((st = lam__kernel_dt(ctx, "attention", "sdpa_bwd_dq_wg", dt, L.opts, &kq)) != LAM_OK) return st;
    if ((st = lam__kernel_dt(ctx, "attention", "sdpa_bwd_dkv_wg", dt, L.opts, &kkv)) != LAM_OK) return st;
  } else {
    if ((st = lam__att_kernel_d(ctx, "sdpa_bwd_dq", dt, max_d, &kq)) != LAM_OK) return st;
    if ((st = lam__att_kernel_d(ctx, "sdpa_bwd_dkv", dt, max_d, &kkv)) != LAM_OK) return st;
  }

  /* tmp: lu, dl, kt, vt, qt, gt, ds */
  lam_tensor *tmp[7] = {0};
  int64_t nrows = g->B * g->H * g->Sqp;
  tmp[0] = lam__tensor_new(ctx, dt, 1, &nrows, fn);
  tmp[1] = lam__tensor_new(ctx, dt, 1, &nrows, fn);
  if (!tmp[0] || !tmp[1]) {
    lam__free_all(tmp, 7);
    return lam_last_status();
  }
  {
    lam__arg a[] = {LAM__ARG_T(out),       LAM__ARG_T(gout),      lam__arg_mem(pm),
                    lam__arg_int(po + g->lse_off), LAM__ARG_T(tmp[0]), LAM__ARG_T(tmp[1]),
                    lam__arg_int(g->Sq),   lam__arg_int(g->Sqp),  lam__arg_int(g->Dv),
                    lam__arg_int(nrows)};
    st = lam__launch_1d(ctx, kp, fn, LAM__NARGS(a), a, (size_t)nrows);
  }
  lam_tensor *dq = NULL, *dk = NULL, *dv = NULL;
  if (st == LAM_OK && (need_q || need_b)) {
    if (!gpu) { /* the CPU layout reads K^T and V^T */
      tmp[2] = lam__att_transpose_pad(fn, ctx, dt, k->buf->mem, (int64_t)k->offset, g->B * g->Hkv,
                                      g->Sk, g->D, g->k_hs, g->k_rs, g->Skp);
      tmp[3] = tmp[2] ? lam__att_transpose_pad(fn, ctx, dt, v->buf->mem, (int64_t)v->offset,
                                               g->B * g->Hkv, g->Sk, g->Dv, g->v_hs, g->v_rs, g->Skp)
                      : NULL;
    }
    dq = gpu || tmp[3] ? lam__tensor_new(ctx, dt, 4, (int64_t[]){g->B, g->H, g->Sq, g->D}, fn) : NULL;
    if (dq && need_b)
      tmp[6] = lam__tensor_new(ctx, dt, 4, (int64_t[]){g->B, g->H, g->Sq, g->Sk}, fn);
    if (!dq || (need_b && !tmp[6])) st = lam_last_status();
    if (st == LAM_OK) {
      lam_tensor *ds = need_b ? tmp[6] : dq;
      int64_t n_items = g->B * g->H * ((g->Sq + ctx->tuning.att_bm - 1) / ctx->tuning.att_bm);
      if (gpu) {
        lam__arg a[] = {LAM__ARG_T(q),         LAM__ARG_T(k),          LAM__ARG_T(v),
                        LAM__ARG_T(gout),      LAM__ARG_T(tmp[0]),     LAM__ARG_T(tmp[1]),
                        lam__arg_mem(pm),      lam__arg_int(keep_off), lam__arg_mem(pm),
                        lam__arg_int(bias_off), LAM__ARG_T(dq),        LAM__ARG_T(ds),
                        lam__att_arg_int16(geo), lam__att_arg_int4(g->bst), lam__arg_real(dt, g->scale),
                        lam__arg_uint(g->k0),  lam__arg_uint(g->k1),   lam__arg_uint(g->thr),
                        lam__arg_real(dt, g->dscale)};
        st = lam__att_gpu_launch(ctx, kq, fn, LAM__NARGS(a), a, g->B * g->H, g->Sq, &L);
      } else {
        lam__arg a[] = {LAM__ARG_T(q),         LAM__ARG_T(tmp[2]),    LAM__ARG_T(tmp[3]),
                        LAM__ARG_T(k),         LAM__ARG_T(gout),      LAM__ARG_T(tmp[0]),
                        LAM__ARG_T(tmp[1]),    lam__arg_mem(pm),      lam__arg_int(keep_off),
                        lam__arg_mem(pm),      lam__arg_int(bias_off), LAM__ARG_T(dq),
                        LAM__ARG_T(ds),        lam__att_arg_int16(geo), lam__att_arg_int4(g->bst),
                        lam__arg_real(dt, g->scale), lam__arg_uint(g->k0), lam__arg_uint(g->k1),
                        lam__arg_uint(g->thr), lam__arg_real(dt, g->dscale), lam__arg_int(n_items)};
        st = lam__att_launch(ctx, kq, fn, LAM__NARGS(a), a, n_items);
      }
    }
  }
  if (st == LAM_OK && need_kv) {
    if (!gpu) { /* the CPU layout reads Q^T and dO^T */
      tmp[4] = lam__att_transpose_pad(fn, ctx, dt, q->buf->mem, (int64_t)q->offset, g->B * g->H,
                                      g->Sq, g->D, g->Sq * g->D, g->D, g->Sqp);
      tmp[5] = tmp[4] ? lam__att_transpose_pad(fn, ctx, dt, gout->buf->mem, (int64_t)gout->offset,
                                               g->B * g->H, g->Sq, g->Dv, g->Sq * g->Dv, g->Dv, g->Sqp)
                      : NULL;
    }
    dk = gpu || tmp[5] ? lam__tensor_new(ctx, dt, 4, (int64_t[]){g->B, g->Hkv, g->Sk, g->D}, fn) : NULL;
    dv = dk ? lam__tensor_new(ctx, dt, 4, (int64_t[]){g->B, g->Hkv, g->Sk, g->Dv}, fn) : NULL;
    if (!dv) st = lam_last_status();
    if (st == LAM_OK && gpu) {
      lam__arg a[] = {LAM__ARG_T(k),         LAM__ARG_T(v),          LAM__ARG_T(q),
                      LAM__ARG_T(gout),      LAM__ARG_T(tmp[0]),     LAM__ARG_T(tmp[1]),
                      lam__arg_mem(pm),      lam__arg_int(keep_off), lam__arg_mem(pm),
                      lam__arg_int(bias_off), LAM__ARG_T(dk),        LAM__ARG_T(dv),
                      lam__att_arg_int16(geo), lam__att_arg_int4(g->bst), lam__arg_real(dt, g->scale),
                      lam__arg_uint(g->k0),  lam__arg_uint(g->k1),   lam__arg_uint(g->thr),
                      lam__arg_real(dt, g->dscale)};
      st = lam__att_gpu_launch(ctx, kkv, fn, LAM__NARGS(a), a, g->B * g->Hkv, g->Sk, &L);
    } else if (st == LAM_OK) {
      int64_t n_items = g->B * g->Hkv * ((g->Sk + ctx->tuning.att_bm - 1) / ctx->tuning.att_bm);
      lam__arg a[] = {LAM__ARG_T(k),         LAM__ARG_T(v),          LAM__ARG_T(tmp[4]),
                      LAM__ARG_T(tmp[5]),    LAM__ARG_T(q),          LAM__ARG_T(gout),
                      LAM__ARG_T(tmp[0]),    LAM__ARG_T(tmp[1]),     lam__arg_mem(pm),
                      lam__arg_int(keep_off), lam__arg_mem(pm),      lam__arg_int(bias_off),
                      LAM__ARG_T(dk),        LAM__ARG_T(dv),         lam__att_arg_int16(geo),
                      lam__att_arg_int4(g->bst), lam__arg_real(dt, g->scale), lam__arg_uint(g->k0),
                      lam__arg_uint(g->k1),  lam__arg_uint(g->thr),  lam__arg_real(dt, g->dscale),
                      lam__arg_int(n_items)};
      st = lam__att_launch(ctx, kkv, fn, LAM__NARGS(a), a, n_items);
    }
  }
  if (st == LAM_OK && need_b) {
    gin[3] = lam__sum_to_shape(tmp[6], node->in_ndim[3], node->in_shape[3]);
    if (!gin[3]) st = lam_last_status();
  }
  lam__free_all(tmp, 7);
  if (st != LAM_OK) {
    lam_tensor_free(dq);
    lam_tensor_free(dk);
    lam_tensor_free(dv);
    lam_tensor_free(gin[3]);
    gin[3] = NULL;
    return st;
  }
  if (need_q) gin[0] = dq;
  else lam_tensor_free(dq);
  if (lam__node_needs(node, 1) && dk) gin[1] = dk;
  else lam_tensor_free(dk);
  if (lam__node_needs(node, 2) && dv) gin[2] = dv;
  else lam_tensor_free(dv);
  return LAM_OK;
}
