/* ops/rope.c: positional encodings as ops: rotary position embedding
 * (lam_rope, a kernel in cl/attention.cl with a cos/sin table made on the
 * host in double precision; its backward rotates by the opposite angle),
 * MLX's sinusoidal encoding (composed from lamina ops, so differentiable in
 * the positions) and ALiBi's slopes and bias (host-computed constants). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/elementwise.h"
#include "lamina/shape.h"
#include "ops/attention_internal.h"

lam_rope_opts lam_rope_defaults(void) {
  lam_rope_opts o;
  memset(&o, 0, sizeof o);
  o.theta = 10000.0;
  o.seq_axis = -2;
  o.scale = 1.0;
  return o;
}

/* The options with zeros resolved (NULL: defaults). */
static lam_rope_opts lam__rope_resolve(const lam_rope_opts *opts) {
  lam_rope_opts def = lam_rope_defaults(), o = opts ? *opts : def;
  o.theta = lam__opt_f64(o.theta, def.theta);
  o.scale = lam__opt_f64(o.scale, def.scale);
  o.seq_axis = (int)lam__opt_i64(o.seq_axis, def.seq_axis);
  return o;
}

/* Geometry of x for lam_rope. */
typedef struct {
  int64_t S, inner, F, dims;
  int traditional;
} lam__rope_geo;

static lam_status lam__rope_run(const char *fn, lam_tensor *x, lam_tensor *tab, const lam__rope_geo *g,
                                double sign, lam_tensor **out) {
  cl_kernel k;
  lam_status st = lam__att_kernel(x->ctx, "rope", x->dtype, &k);
  if (st != LAM_OK) return st;
  lam_tensor *y = lam__tensor_new(x->ctx, x->dtype, x->ndim, x->shape, fn);
  if (!y) return lam_last_status();
  lam__arg a[] = {LAM__ARG_T(x),          LAM__ARG_T(y),           LAM__ARG_T(tab),
                  lam__arg_int(g->S),     lam__arg_int(g->inner),  lam__arg_int(g->F),
                  lam__arg_int(g->dims),  lam__arg_int(g->traditional), lam__arg_real(x->dtype, sign),
                  lam__arg_int(x->numel)};
  st = lam__launch_1d(x->ctx, k, fn, LAM__NARGS(a), a, (size_t)x->numel);
  if (st != LAM_OK) {
    lam_tensor_free(y);
    return st;
  }
  *out = y;
  return LAM_OK;
}

static lam_status lam__rope_backward(lam__node *node, lam_tensor *g, lam_tensor **gin) {
  lam__rope_geo geo = {node->i[0], node->i[1], node->i[2], node->i[3], (int)node->i[4]};
  return lam__rope_run(node->op, g, node->saved[0], &geo, -1.0, &gin[0]);
}

lam_tensor *lam_rope(lam_tensor *x, const lam_rope_opts *opts) {
  const char *fn = "lam_rope";
  if (!x) return lam__null_input(fn, "x");
  lam_rope_opts o = lam__rope_resolve(opts);
  char b[LAM__SHAPE_STR];
  if (x->dtype != LAM_F32 && x->dtype != LAM_F64)
    return lam__fail(LAM_ERR_DTYPE, "%s: x is %s, need f32 or f64", fn, lam_dtype_name(x->dtype)), NULL;
  if (x->ndim < 2)
    return lam__fail(LAM_ERR_SHAPE, "%s: x must have rank >= 2 (positions and features), got %s", fn,
                     lam__shape_str(x->ndim, x->shape, b)), NULL;
  int a = lam__axis(o.seq_axis, x->ndim);
  if (a < 0 || a == x->ndim - 1)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                     "%s: seq_axis %d must name an axis other than the last (features) of %s", fn,
                     o.seq_axis, lam__shape_str(x->ndim, x->shape, b)), NULL;
  lam__rope_geo g;
  g.F = x->shape[x->ndim - 1];
  g.dims = o.dims == 0 ? g.F : o.dims;
  if (g.dims < 2 || g.dims > g.F || g.dims % 2 != 0)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                     "%s: rotated dims %lld must be even and in [2, %lld] (the last axis of %s)", fn,
                     (long long)g.dims, (long long)g.F, lam__shape_str(x->ndim, x->shape, b)), NULL;
  if (!(o.theta > 0) || !isfinite(o.theta) || !isfinite(o.scale))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: theta %g must be positive and scale %g finite", fn,
                     o.theta, o.scale), NULL;
  if (llabs(o.offset) > ((int64_t)1 << 40))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: offset %lld is out of range", fn,
                     (long long)o.offset), NULL;
  g.S = x->shape[a];
  g.inner = 1;
  for (int d = a + 1; d < x->ndim - 1; d++) g.inner *= x->shape[d];
  g.traditional = o.traditional ? 1 : 0;
  /* cos/sin table [2, S, half] in double, converted to x's dtype */
  int64_t half = g.dims / 2, tn = 2 * g.S * half;
  double *t = malloc((size_t)tn * sizeof *t);
  if (!t) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn), NULL;
  for (int64_t s = 0; s < g.S; s++)
    for (int64_t k = 0; k < half; k++) {
      double inv = pow(o.theta, -2.0 * (double)k / (double)g.dims);
      double ang = (double)(o.offset + s) * o.scale * inv;
      t[s * half + k] = cos(ang);
      t[(g.S + s) * half + k] = sin(ang);
    }
  lam_tensor *tab = NULL;
  if (x->dtype == LAM_F64) {
    tab = lam_tensor_from_host(x->ctx, LAM_F64, 1, &tn, t);
  } else {
    float *f = malloc((size_t)tn * sizeof *f);
    if (f) {
      for (int64_t i = 0; i < tn; i++) f[i] = (float)t[i];
      tab = lam_tensor_from_host(x->ctx, LAM_F32, 1, &tn, f);
      free(f);
    } else {
      lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
    }
  }
  free(t);
  if (!tab) return NULL;
  lam_tensor *y = NULL;
  if (lam__rope_run(fn, x, tab, &g, 1.0, &y) != LAM_OK) {
    lam_tensor_free(tab);
    return NULL;
  }
  lam__node *node = lam__tape_record(y, fn, lam__rope_backward, 1, &x);
  if (node) {
    node->i[0] = g.S;
    node->i[1] = g.inner;
    node->i[2] = g.F;
    node->i[3] = g.dims;
    node->i[4] = g.traditional;
    lam__node_save(node, tab);
  }
  lam_tensor_free(tab);
  return y;
}

/* ---- sinusoidal ------------------------------------------------------------------- */

lam_sinusoidal_opts lam_sinusoidal_defaults(void) {
  lam_sinusoidal_opts o;
  memset(&o, 0, sizeof o);
  o.min_freq = 0.0001;
  o.max_freq = 1.0;
  return o;
}

/* The options with zeros resolved (NULL: defaults); scale 0 stays (sqrt(2 / dims)). */
static lam_sinusoidal_opts lam__sinusoidal_resolve(const lam_sinusoidal_opts *opts) {
  lam_sinusoidal_opts def = lam_sinusoidal_defaults(), o = opts ? *opts : def;
  if (o.min_freq == 0) o.min_freq = def.min_freq;
  if (o.max_freq == 0) o.max_freq = def.max_freq;
  return o;
}

lam_tensor *lam_sinusoidal_encoding(lam_tensor *x, int64_t dims, const lam_sinusoidal_opts *opts) {
  const char *fn = "lam_sinusoidal_encoding";
  if (!x) return lam__null_input(fn, "x");
  lam_sinusoidal_opts o = lam__sinusoidal_resolve(opts);
  if (x->dtype != LAM_F32 && x->dtype != LAM_F64)
    return lam__fail(LAM_ERR_DTYPE, "%s: positions are %s, need f32 or f64", fn,
                     lam_dtype_name(x->dtype)), NULL;
  if (dims < 4 || dims % 2 != 0 || dims > (1 << 24))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: dims %lld must be even and >= 4", fn,
                     (long long)dims), NULL;
  if (!(o.min_freq > 0) || !(o.max_freq > 0) || !isfinite(o.min_freq) || !isfinite(o.max_freq) ||
      !isfinite(o.scale))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: min_freq %g and max_freq %g must be positive", fn,
                     o.min_freq, o.max_freq), NULL;
  if (x->ndim >= LAM_MAX_DIMS)
    return lam__fail(LAM_ERR_SHAPE, "%s: positions have %d dims, at most %d", fn, x->ndim,
                     LAM_MAX_DIMS - 1), NULL;
  int64_t half = dims / 2;
  double *sig = malloc((size_t)half * sizeof *sig);
  if (!sig) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn), NULL;
  double lmin = log(o.min_freq), lmax = log(o.max_freq);
  for (int64_t k = 0; k < half; k++) {
    double one_zero = 1.0 - (double)k / (double)(half - 1);
    sig[k] = exp(one_zero * (lmax - lmin) + lmin);
    if (o.full_turns) sig[k] *= 6.283185307179586476925;
  }
  lam_tensor *sg = NULL;
  if (x->dtype == LAM_F64) {
    sg = lam_tensor_from_host(x->ctx, LAM_F64, 1, &half, sig);
  } else {
    float *f = malloc((size_t)half * sizeof *f);
    if (f) {
      for (int64_t k = 0; k < half; k++) f[k] = (float)sig[k];
      sg = lam_tensor_from_host(x->ctx, LAM_F32, 1, &half, f);
      free(f);
    } else {
      lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
    }
  }
  free(sig);
  double scale = o.scale == 0 ? sqrt(2.0 / (double)dims) : o.scale;
  lam_tensor *xu = sg ? lam_unsqueeze(x, -1) : NULL;
  lam_tensor *y = xu ? lam_mul(xu, sg) : NULL;
  lam_tensor *sn = y ? lam_sin(y) : NULL;
  lam_tensor *cs = sn ? lam_cos(y) : NULL;
  lam_tensor *parts[2] = {o.cos_first ? cs : sn, o.cos_first ? sn : cs};
  lam_tensor *cat = cs ? lam_concat(parts, 2, -1) : NULL;
  lam_tensor *out = cat && scale != 1.0 ? lam_mul_scalar(cat, scale) : lam_tensor_retain(cat);
  lam_tensor *tmp[] = {sg, xu, y, sn, cs, cat};
  for (int i = 0; i < 6; i++) lam_tensor_free(tmp[i]);
  return out;
}

/* ---- ALiBi ---------------------------------------------------------------------------- */

static lam_tensor *lam__host_tensor(const char *fn, lam_ctx *ctx, lam_dtype dtype, int ndim,
                                    const int64_t *shape, const double *v, int64_t n) {
  if (dtype == LAM_F64) return lam_tensor_from_host(ctx, dtype, ndim, shape, v);
  float *f = malloc((size_t)n * sizeof *f);
  if (!f) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn), NULL;
  for (int64_t i = 0; i < n; i++) f[i] = (float)v[i];
  lam_tensor *t = lam_tensor_from_host(ctx, dtype, ndim, shape, f);
  free(f);
  return t;
}

static lam_status lam__alibi_check(const char *fn, lam_ctx *ctx, lam_dtype dtype, int64_t num_heads) {
  if (!ctx) return lam__fail(LAM_ERR_NULL, "%s: ctx is NULL", fn);
  if (dtype != LAM_F32 && dtype != LAM_F64)
    return lam__fail(LAM_ERR_DTYPE, "%s: dtype %s, need f32 or f64", fn, lam_dtype_name(dtype));
  if (num_heads < 1 || num_heads > (1 << 20))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: num_heads %lld must be >= 1", fn,
                     (long long)num_heads);
  return LAM_OK;
}

lam_tensor *lam_alibi_slopes(lam_ctx *ctx, lam_dtype dtype, int64_t num_heads) {
  const char *fn = "lam_alibi_slopes";
  if (lam__alibi_check(fn, ctx, dtype, num_heads) != LAM_OK) return NULL;
  double *s = malloc((size_t)num_heads * sizeof *s);
  if (!s) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn), NULL;
  for (int64_t h = 0; h < num_heads; h++) s[h] = exp2(-8.0 * (double)(h + 1) / (double)num_heads);
  lam_tensor *t = lam__host_tensor(fn, ctx, dtype, 1, &num_heads, s, num_heads);
  free(s);
  return t;
}

lam_tensor *lam_alibi_bias(lam_ctx *ctx, lam_dtype dtype, int64_t num_heads, int64_t seq_q,
                           int64_t seq_k, int64_t offset) {
  const char *fn = "lam_alibi_bias";
  if (lam__alibi_check(fn, ctx, dtype, num_heads) != LAM_OK) return NULL;
  int64_t shape[4] = {1, num_heads, seq_q, seq_k}, n;
  if (lam__check_shape(fn, 4, shape, &n) != LAM_OK) return NULL;
  double *v = malloc((size_t)n * sizeof *v);
  if (!v) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn), NULL;
  for (int64_t h = 0; h < num_heads; h++) {
    double slope = exp2(-8.0 * (double)(h + 1) / (double)num_heads);
    for (int64_t i = 0; i < seq_q; i++)
      for (int64_t j = 0; j < seq_k; j++)
        v[(h * seq_q + i) * seq_k + j] = -slope * fabs((double)(i + offset - j));
  }
  lam_tensor *t = lam__host_tensor(fn, ctx, dtype, 4, shape, v, n);
  free(v);
  return t;
}
