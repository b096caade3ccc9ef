/* ops/kv_cache.c: the KV cache for incremental decoding (lamina/attention.h):
 * keys and values appended along the sequence axis into buffers that grow
 * by doubling, and attention of new queries against the cached rows with
 * the fused kernel (lam__sdpa reads the first len rows of the capacity).
 * The multi-head attention layer (nn/attention_layers.c) uses it through
 * this public API only. */
#include <stdlib.h>

#include "lamina/attention.h"
#include "ops/attention_internal.h"

struct lam_kv_cache {
  lam_tensor *k, *v; /* [B, Hkv, cap, D] and [B, Hkv, cap, Dv]; NULL before the first append */
  int64_t len, cap, B, Hkv, D, Dv;
};

lam_kv_cache *lam_kv_cache_create(void) {
  lam_kv_cache *c = calloc(1, sizeof *c);
  if (!c) lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "lam_kv_cache_create: out of host memory");
  return c;
}

void lam_kv_cache_free(lam_kv_cache *c) {
  if (!c) return;
  lam_tensor_free(c->k);
  lam_tensor_free(c->v);
  free(c);
}

void lam_kv_cache_reset(lam_kv_cache *c) {
  if (c) c->len = 0;
}

int64_t lam_kv_cache_length(const lam_kv_cache *c) { return c ? c->len : 0; }

lam_status lam_kv_cache_append(lam_kv_cache *c, lam_tensor *k, lam_tensor *v) {
  const char *fn = "lam_kv_cache_append";
  if (!c) return lam__fail(LAM_ERR_NULL, "%s: cache is NULL", fn);
  if (!k) return lam__null_input(fn, "k"), lam_last_status();
  if (!v) return lam__null_input(fn, "v"), lam_last_status();
  char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR];
  if (k->ndim != 4 || v->ndim != 4 || k->shape[0] != v->shape[0] || k->shape[1] != v->shape[1] ||
      k->shape[2] != v->shape[2])
    return lam__fail(LAM_ERR_SHAPE, "%s: need k [batch, kv_heads, n, head_dim] and v [batch, kv_heads, n, v_dim], got %s and %s",
                     fn, lam__shape_str(k->ndim, k->shape, b1), lam__shape_str(v->ndim, v->shape, b2));
  if (!lam_dtype_is_float(k->dtype) || v->dtype != k->dtype || v->ctx != k->ctx)
    return lam__fail(LAM_ERR_DTYPE, "%s: k and v must share a float dtype and context, got %s and %s", fn,
                     lam_dtype_name(k->dtype), lam_dtype_name(v->dtype));
  if (c->k && c->len == 0 &&
      (c->k->dtype != k->dtype || c->k->ctx != k->ctx || c->B != k->shape[0] || c->Hkv != k->shape[1] ||
       c->D != k->shape[3] || c->Dv != v->shape[3])) { /* reset, then a new geometry */
    lam_tensor_free(c->k);
    lam_tensor_free(c->v);
    c->k = c->v = NULL;
    c->cap = 0;
  }
  if (c->k && (c->k->dtype != k->dtype || c->k->ctx != k->ctx || c->B != k->shape[0] ||
               c->Hkv != k->shape[1] || c->D != k->shape[3] || c->Dv != v->shape[3]))
    return lam__fail(LAM_ERR_SHAPE, "%s: k %s / v %s (%s) do not match the cached [%lld,%lld,*,%lld] / [%lld,%lld,*,%lld] (%s)",
                     fn, lam__shape_str(4, k->shape, b1), lam__shape_str(4, v->shape, b2),
                     lam_dtype_name(k->dtype), (long long)c->B, (long long)c->Hkv, (long long)c->D,
                     (long long)c->B, (long long)c->Hkv, (long long)c->Dv, lam_dtype_name(c->k->dtype));
  int64_t n = k->shape[2], need = c->len + n;
  int64_t B = k->shape[0], Hkv = k->shape[1], D = k->shape[3], Dv = v->shape[3];
  if (need > c->cap) {
    int64_t cap = c->cap * 2 > need ? c->cap * 2 : need;
    if (cap < 16) cap = 16;
    lam_tensor *nk = lam__tensor_new(k->ctx, k->dtype, 4, (int64_t[]){B, Hkv, cap, D}, fn);
    lam_tensor *nv = nk ? lam__tensor_new(k->ctx, k->dtype, 4, (int64_t[]){B, Hkv, cap, Dv}, fn) : NULL;
    lam_status st = nv ? LAM_OK : lam_last_status();
    if (st == LAM_OK && c->len > 0) {
      st = lam__att_copy_rows(fn, nk, cap * D, 0, c->k->buf->mem, (int64_t)c->k->offset, c->cap * D,
                              B * Hkv, c->len, D);
      if (st == LAM_OK)
        st = lam__att_copy_rows(fn, nv, cap * Dv, 0, c->v->buf->mem, (int64_t)c->v->offset,
                                c->cap * Dv, B * Hkv, c->len, Dv);
    }
    if (st != LAM_OK) {
      lam_tensor_free(nk);
      lam_tensor_free(nv);
      return st;
    }
    lam_tensor_free(c->k);
    lam_tensor_free(c->v);
    c->k = nk;
    c->v = nv;
    c->cap = cap;
    c->B = B;
    c->Hkv = Hkv;
    c->D = D;
    c->Dv = Dv;
  }
  lam_status st = lam__att_copy_rows(fn, c->k, c->cap * D, c->len, k->buf->mem, (int64_t)k->offset,
                                     n * D, B * Hkv, n, D);
  if (st == LAM_OK)
    st = lam__att_copy_rows(fn, c->v, c->cap * Dv, c->len, v->buf->mem, (int64_t)v->offset, n * Dv,
                            B * Hkv, n, Dv);
  if (st == LAM_OK) c->len = need;
  return st;
}

static lam_tensor *lam__kv_cache_read(const lam_kv_cache *c, bool values, const char *fn) {
  if (!c) return lam__fail(LAM_ERR_NULL, "%s: cache is NULL", fn), NULL;
  if (c->len == 0) return lam__fail(LAM_ERR_STATE, "%s: the cache is empty", fn), NULL;
  lam_tensor *src = values ? c->v : c->k;
  int64_t Dd = values ? c->Dv : c->D;
  lam_tensor *y = lam__tensor_new(src->ctx, src->dtype, 4, (int64_t[]){c->B, c->Hkv, c->len, Dd}, fn);
  if (!y) return NULL;
  if (lam__att_copy_rows(fn, y, c->len * Dd, 0, src->buf->mem, (int64_t)src->offset, c->cap * Dd,
                         c->B * c->Hkv, c->len, Dd) != LAM_OK) {
    lam_tensor_free(y);
    return NULL;
  }
  return y;
}

lam_tensor *lam_kv_cache_keys(const lam_kv_cache *c) {
  return lam__kv_cache_read(c, false, "lam_kv_cache_keys");
}

lam_tensor *lam_kv_cache_values(const lam_kv_cache *c) {
  return lam__kv_cache_read(c, true, "lam_kv_cache_values");
}

lam_tensor *lam_kv_cache_attention(const lam_kv_cache *c, lam_tensor *q, const lam_attention_opts *opts) {
  const char *fn = "lam_kv_cache_attention";
  if (!c) return lam__fail(LAM_ERR_NULL, "%s: cache is NULL", fn), NULL;
  if (!q) return lam__null_input(fn, "q");
  if (c->len == 0) return lam__fail(LAM_ERR_STATE, "%s: the cache is empty", fn), NULL;
  return lam__sdpa(fn, q, c->k, c->v, c->len, opts);
}
