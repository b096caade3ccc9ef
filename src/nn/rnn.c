/* nn/rnn.c: the recurrent sequence layers lam_nn_rnn, lam_nn_lstm and lam_nn_gru
 * (PyTorch's nn.RNN / LSTM / GRU) and their functional forms.
 *
 * A layer runs, per stacked layer and direction, one input-projection GEMM
 * over all T steps (x W_ih^T through lam_matmul_t, whose backward gives dx
 * and dW_ih) and then the recurrent scan of ops/rnn_gates.c (biases added in
 * its fused kernels), a single autodiff op returning the outputs and final
 * states in one tensor that is cut with lam_tensor_slice0 views. Directions
 * are joined with lam_concat, batch_first is a lam_transpose on the way in
 * and out, dropout between layers is lam_dropout. Everything is
 * validated (shapes, dtypes, parameters, lengths) before the first kernel
 * is enqueued. The helpers marked "shared" are also used by nn/rnn_cells.c.
 *
 * An LSTM with proj_size P (torch's LSTMP: h_t = W_hr (o * tanh c_t), h of
 * size P) does not fit the fused scan, whose recurrence is square in H; it
 * runs as a loop of lamina ops per step (h @ W_hh^T, the gate
 * nonlinearities, the projection, lam_where for masked steps), so its
 * gradient comes from the ops' backward rules. That is slower than the scan
 * (about ten kernels a step) but exact, and the input projection is still
 * one GEMM over all steps. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/elementwise.h"
#include "lamina/linalg.h"
#include "lamina/regularize.h"
#include "lamina/rnn.h"
#include "lamina/shape.h"
#include "nn/nn_internal.h"

/* Mode numbers, as in ops/rnn_gates.c. */
enum { LAM__RNN_TANH = 0, LAM__RNN_RELU = 1, LAM__RNN_LSTM = 2, LAM__RNN_GRU = 3 };

/* ops/rnn_gates.c */
lam_tensor *lam__rnn_scan(int mode, lam_tensor *xw, lam_tensor *w_hh, lam_tensor *bias,
                          lam_tensor *state, lam_tensor *mask, int reverse, const char *fn);

/* Shared with nn/rnn_cells.c (declared there too). */
lam_status lam__rnn_param_init(lam_ptree *params, const char *path, const lam_init *init,
                               lam_ctx *ctx, lam_rng_key key, lam_dtype dtype, int ndim,
                               const int64_t *shape, int64_t hidden);
lam_tensor *lam__rnn_param(lam_ptree *params, const char *fn, const char *layer, const char *path,
                           lam_dtype dtype, int ndim, const int64_t *shape);
lam_tensor *lam__rnn_direction(int mode, lam_tensor *x2d, int64_t T, int64_t B, lam_tensor *w_ih,
                               lam_tensor *w_hh, lam_tensor *b_ih, lam_tensor *b_hh, lam_tensor *h0,
                               lam_tensor *c0, lam_tensor *mask, int reverse, const char *fn);
int lam__rnn_num_gates(int mode);
lam_status lam__rnn_check_init(const lam_init *init, const char *fn, const char *what);

int lam__rnn_num_gates(int mode) {
  return mode == LAM__RNN_LSTM ? 4 : mode == LAM__RNN_GRU ? 3 : 1;
}

/* ---- shared helpers ------------------------------------------------------- */

/* A zeroed init means PyTorch's U(-1/sqrt(hidden), 1/sqrt(hidden)); other
 * inits go through lam_init_apply like every layer's. */
lam_status lam__rnn_param_init(lam_ptree *params, const char *path, const lam_init *init,
                               lam_ctx *ctx, lam_rng_key key, lam_dtype dtype, int ndim,
                               const int64_t *shape, int64_t hidden) {
  if (init && init->kind != LAM_INIT_DEFAULT)
    return lam__param_make(params, path, init, ctx, key, dtype, ndim, shape);
  const double k = 1.0 / sqrt((double)hidden);
  lam_tensor *t = lam_random_uniform(ctx, lam_init_key_for(key, path), dtype, ndim, shape, -k, k);
  if (!t) return lam_last_status();
  lam_status st = lam_ptree_set(params, path, t);
  lam_tensor_free(t);
  return st;
}

lam_status lam__rnn_check_init(const lam_init *init, const char *fn, const char *what) {
  if (init->kind == LAM_INIT_DEFAULT) return LAM_OK;
  lam_status st = lam_init_check(init);
  if (st != LAM_OK) return lam__fail(st, "%s: bad %s: %s", fn, what, lam_last_error());
  return LAM_OK;
}

/* Returns the parameter at path (borrowed) if it has dtype and shape, else
 * NULL with "fn: layer: ..." recorded. */
lam_tensor *lam__rnn_param(lam_ptree *params, const char *fn, const char *layer, const char *path,
                           lam_dtype dtype, int ndim, const int64_t *shape) {
  lam_tensor *t = lam_ptree_get(params, path);
  if (!t)
    return lam__fail(LAM_ERR_NOT_FOUND, "%s: %s: missing param \"%s\"", fn, layer, path), NULL;
  if (t->dtype != dtype)
    return lam__fail(LAM_ERR_DTYPE, "%s: %s: param \"%s\" is %s, expected %s", fn, layer, path,
                     lam_dtype_name(t->dtype), lam_dtype_name(dtype)),
           NULL;
  bool ok = t->ndim == ndim;
  for (int d = 0; ok && d < ndim; d++) ok = t->shape[d] == shape[d];
  if (!ok) {
    char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR];
    return lam__fail(LAM_ERR_SHAPE, "%s: %s: param \"%s\" is %s, expected %s", fn, layer, path,
                     lam__shape_str(t->ndim, t->shape, b1), lam__shape_str(ndim, shape, b2)),
           NULL;
  }
  return t;
}

/* One direction of one layer: xw = x2d W_ih^T (one GEMM over all steps),
 * then the scan with the biases packed [2, G*H] and the initial states
 * packed [S, B, H] (tiny lam_stack / reshape ops, differentiable, so the
 * scan node stays within four inputs). x2d is [T*B, in]; h0, c0 [B, H] or
 * NULL. */
lam_tensor *lam__rnn_direction(int mode, lam_tensor *x2d, int64_t T, int64_t B, lam_tensor *w_ih,
                               lam_tensor *w_hh, lam_tensor *b_ih, lam_tensor *b_hh, lam_tensor *h0,
                               lam_tensor *c0, lam_tensor *mask, int reverse, const char *fn) {
  const int64_t H = w_hh->shape[1];
  lam_tensor *xw = lam_matmul_t(x2d, w_ih, 0, 1);
  lam_tensor *xw3 = xw ? lam_tensor_reshape(xw, 3, (int64_t[]){T, B, w_ih->shape[0]}) : NULL;
  lam_tensor *bias = b_ih && b_hh ? lam_stack((lam_tensor *[]){b_ih, b_hh}, 2, 0) : NULL;
  lam_tensor *state = NULL;
  bool ok = xw3 && (bias || !b_ih || !b_hh);
  if (ok && mode == LAM__RNN_LSTM && (h0 || c0)) {
    lam_tensor *zeros =
        h0 && c0 ? NULL : lam_tensor_zeros(x2d->ctx, x2d->dtype, 2, (int64_t[]){B, H});
    state =
        h0 || zeros ? lam_stack((lam_tensor *[]){h0 ? h0 : zeros, c0 ? c0 : zeros}, 2, 0) : NULL;
    lam_tensor_free(zeros);
    ok = state != NULL;
  } else if (ok && h0) {
    state = lam_tensor_reshape(h0, 3, (int64_t[]){1, B, H});
    ok = state != NULL;
  }
  lam_tensor *z = ok ? lam__rnn_scan(mode, xw3, w_hh, bias, state, mask, reverse, fn) : NULL;
  lam_tensor_free(xw);
  lam_tensor_free(xw3);
  lam_tensor_free(bias);
  lam_tensor_free(state);
  return z;
}

/* One direction of a projected LSTM (see the top): xw = x2d W_ih^T + b_ih
 * over all steps, then per step g = xw_t + h W_hh^T + b_hh, c' = s(f) c +
 * s(i) tanh(g), h' = (s(o) tanh(c')) W_hr^T; a masked step keeps h and c
 * and outputs 0. h0 [B, P], c0 [B, H] or NULL (zeros). Returns the outputs
 * [T, B, P] in *ys and the final states in *hn [1, B, P], *cn [1, B, H]. */
static lam_status lam__lstm_proj_direction(lam_tensor *x2d, int64_t T, int64_t B, lam_tensor *w_ih,
                                           lam_tensor *w_hh, lam_tensor *b_ih, lam_tensor *b_hh,
                                           lam_tensor *w_hr, lam_tensor *h0, lam_tensor *c0,
                                           lam_tensor *mask, int reverse, lam_tensor **ys,
                                           lam_tensor **hn, lam_tensor **cn) {
  const int64_t H = w_hr->shape[1], P = w_hr->shape[0], G = 4 * H;
  lam_ctx *ctx = x2d->ctx;
  lam_tensor *xw = lam_matmul_t(x2d, w_ih, 0, 1);
  if (xw && b_ih) {
    lam_tensor *t = lam_add(xw, b_ih);
    lam_tensor_free(xw);
    xw = t;
  }
  lam_tensor *xw3 = xw ? lam_tensor_reshape(xw, 3, (int64_t[]){T, B, G}) : NULL;
  lam_tensor_free(xw);
  lam_tensor *h = h0 ? lam_tensor_retain(h0) : lam_tensor_zeros(ctx, x2d->dtype, 2, (int64_t[]){B, P});
  lam_tensor *c = c0 ? lam_tensor_retain(c0) : lam_tensor_zeros(ctx, x2d->dtype, 2, (int64_t[]){B, H});
  lam_tensor *zero = lam_tensor_scalar(ctx, x2d->dtype, 0.0);
  lam_tensor *mf = mask ? lam_tensor_reshape(mask, 3, (int64_t[]){T, B, 1}) : NULL;
  lam_tensor **out = calloc((size_t)T, sizeof *out);
  bool ok = xw3 && h && c && zero && out && (!mask || mf);
  for (int64_t s = 0; s < T && ok; s++) {
    const int64_t t = reverse ? T - 1 - s : s;
    lam_tensor *xt = lam_tensor_slice0(xw3, t, t + 1);
    lam_tensor *x2 = xt ? lam_tensor_reshape(xt, 2, (int64_t[]){B, G}) : NULL;
    lam_tensor *hw = lam_matmul_t(h, w_hh, 0, 1);
    lam_tensor *g0 = x2 && hw ? lam_add(x2, hw) : NULL;
    lam_tensor *g = g0 && b_hh ? lam_add(g0, b_hh) : lam_tensor_retain(g0);
    lam_tensor *q[4] = {0};
    if (g && lam_split(g, 1, 4, (int64_t[]){H, H, H, H}, q) != LAM_OK) ok = false;
    lam_tensor *si = q[0] ? lam_sigmoid(q[0]) : NULL, *sf = q[1] ? lam_sigmoid(q[1]) : NULL;
    lam_tensor *tg = q[2] ? lam_tanh(q[2]) : NULL, *so = q[3] ? lam_sigmoid(q[3]) : NULL;
    lam_tensor *fc = sf ? lam_mul(sf, c) : NULL, *ig = si && tg ? lam_mul(si, tg) : NULL;
    lam_tensor *c1 = fc && ig ? lam_add(fc, ig) : NULL;
    lam_tensor *tc = c1 ? lam_tanh(c1) : NULL;
    lam_tensor *hh = tc && so ? lam_mul(so, tc) : NULL;
    lam_tensor *h1 = hh ? lam_matmul_t(hh, w_hr, 0, 1) : NULL;
    lam_tensor *mt = NULL, *mt2 = NULL, *hnew = NULL, *cnew = NULL, *y = NULL;
    if (h1 && c1 && mf) {
      mt = lam_tensor_slice0(mf, t, t + 1);
      mt2 = mt ? lam_tensor_reshape(mt, 2, (int64_t[]){B, 1}) : NULL;
      hnew = mt2 ? lam_where(mt2, h1, h) : NULL;
      cnew = mt2 ? lam_where(mt2, c1, c) : NULL;
      y = mt2 ? lam_where(mt2, h1, zero) : NULL;
    } else if (h1 && c1) {
      hnew = lam_tensor_retain(h1);
      cnew = lam_tensor_retain(c1);
      y = lam_tensor_retain(h1);
    }
    lam_tensor *yt = y ? lam_tensor_reshape(y, 3, (int64_t[]){1, B, P}) : NULL;
    out[t] = yt;
    ok = ok && yt && hnew && cnew;
    lam_tensor *tmp[] = {xt, x2, hw, g0, g, q[0], q[1], q[2], q[3], si, sf, tg, so, fc, ig, c1, tc, hh, h1,
                         mt, mt2, y, h, c};
    for (size_t i = 0; i < sizeof tmp / sizeof *tmp; i++) lam_tensor_free(tmp[i]);
    h = hnew;
    c = cnew;
  }
  lam_status st = ok ? LAM_OK : lam_last_status();
  if (ok) {
    *ys = T == 1 ? lam_tensor_retain(out[0]) : lam_concat(out, (int)T, 0);
    *hn = lam_tensor_reshape(h, 3, (int64_t[]){1, B, P});
    *cn = lam_tensor_reshape(c, 3, (int64_t[]){1, B, H});
    if (!*ys || !*hn || !*cn) {
      st = lam_last_status();
      lam_tensor_free(*ys);
      lam_tensor_free(*hn);
      lam_tensor_free(*cn);
      *ys = *hn = *cn = NULL;
    }
  }
  for (int64_t t = 0; out && t < T; t++) lam_tensor_free(out[t]);
  free(out);
  lam_tensor_free(xw3);
  lam_tensor_free(h);
  lam_tensor_free(c);
  lam_tensor_free(zero);
  lam_tensor_free(mf);
  return st;
}

/* ---- the sequence layers ------------------------------------------------------ */

typedef struct {
  int mode;
  int64_t in, hidden;
  int64_t proj; /* LSTM proj_size, or 0 */
  lam_rnn_opts o;
} lam__rnn;

lam_rnn_opts lam_rnn_defaults(void) {
  lam_rnn_opts o;
  memset(&o, 0, sizeof o);
  o.num_layers = 1;
  o.no_bias = false;
  o.nonlinearity = LAM_RNN_TANH;
  return o;
}

/* The options with zeros resolved (NULL: defaults). The inits stay zeroed
 * when so: their default, U(-1/sqrt(H), 1/sqrt(H)), depends on H. */
static lam_rnn_opts lam__rnn_resolve(const lam_rnn_opts *opts) {
  lam_rnn_opts def = lam_rnn_defaults(), o = opts ? *opts : def;
  o.num_layers = (int)lam__opt_i64(o.num_layers, def.num_layers);
  return o;
}

static const char *lam__rnn_name(int mode) {
  return mode == LAM__RNN_LSTM ? "lstm" : mode == LAM__RNN_GRU ? "gru" : "rnn";
}

static lam_status lam__rnn_init(lam_layer *self, lam_ctx *ctx, lam_rng_key key, lam_dtype dtype,
                                lam_ptree *params, lam_ptree *state) {
  lam__rnn *r = self->impl;
  if (dtype != LAM_F32 && dtype != LAM_F64)
    return lam__fail(LAM_ERR_DTYPE, "lam_layer_init: %s supports f32 and f64 params, not %s",
                     lam__rnn_name(r->mode), lam_dtype_name(dtype));
  const int D = r->o.bidirectional ? 2 : 1;
  const int64_t H = r->hidden, GH = lam__rnn_num_gates(r->mode) * H;
  const int64_t HO = r->proj ? r->proj : H; /* the hidden state's size */
  lam_status st = LAM_OK;
  for (int l = 0; l < r->o.num_layers && st == LAM_OK; l++)
    for (int d = 0; d < D && st == LAM_OK; d++) {
      const char *sfx = d ? "_reverse" : "";
      const int64_t in = l ? D * HO : r->in;
      char p[64];
      snprintf(p, sizeof p, "weight_ih_l%d%s", l, sfx);
      st = lam__rnn_param_init(params, p, &r->o.weight_init, ctx, key, dtype, 2,
                               (int64_t[]){GH, in}, H);
      snprintf(p, sizeof p, "weight_hh_l%d%s", l, sfx);
      if (st == LAM_OK)
        st = lam__rnn_param_init(params, p, &r->o.weight_init, ctx, key, dtype, 2,
                                 (int64_t[]){GH, HO}, H);
      snprintf(p, sizeof p, "weight_hr_l%d%s", l, sfx);
      if (st == LAM_OK && r->proj)
        st = lam__rnn_param_init(params, p, &r->o.weight_init, ctx, key, dtype, 2,
                                 (int64_t[]){r->proj, H}, H);
      if (r->o.no_bias) continue;
      snprintf(p, sizeof p, "bias_ih_l%d%s", l, sfx);
      if (st == LAM_OK)
        st = lam__rnn_param_init(params, p, &r->o.bias_init, ctx, key, dtype, 1, &GH, H);
      snprintf(p, sizeof p, "bias_hh_l%d%s", l, sfx);
      if (st == LAM_OK)
        st = lam__rnn_param_init(params, p, &r->o.bias_init, ctx, key, dtype, 1, &GH, H);
    }
  return st;
}

/* Turns `lengths` (i32 [B]) or a u8 mask ([T, B], [B, T] when batch_first)
 * into a u8 [T, B] step mask in *mask; NULL when every step is valid. */
static lam_status lam__rnn_mask(lam_tensor *lengths, int64_t T, int64_t B, bool batch_first,
                                const char *fn, const char *name, lam_tensor **mask) {
  *mask = NULL;
  char b1[LAM__SHAPE_STR];
  if (lengths->dtype == LAM_I32) {
    if (lengths->ndim != 1 || lengths->shape[0] != B)
      return lam__fail(LAM_ERR_SHAPE, "%s: %s: lengths is %s, expected [%lld] (one per batch row)",
                       fn, name, lam__shape_str(lengths->ndim, lengths->shape, b1), (long long)B);
    int32_t *len = malloc((size_t)B * sizeof *len);
    uint8_t *m = malloc((size_t)(T * B));
    if (!len || !m) {
      free(len);
      free(m);
      return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
    }
    lam_status st = lam_tensor_to_host(lengths, len, (size_t)B * sizeof *len);
    bool full = true;
    for (int64_t b = 0; b < B && st == LAM_OK; b++) {
      if (len[b] < 1 || len[b] > T)
        st = lam__fail(LAM_ERR_INVALID_ARGUMENT,
                       "%s: %s: lengths[%lld] = %d is outside 1..%lld (the sequence length)", fn,
                       name, (long long)b, (int)len[b], (long long)T);
      full = full && len[b] == T;
    }
    if (st == LAM_OK && !full) {
      for (int64_t t = 0; t < T; t++)
        for (int64_t b = 0; b < B; b++) m[t * B + b] = t < len[b];
      *mask = lam_tensor_from_host(lengths->ctx, LAM_U8, 2, (int64_t[]){T, B}, m);
      if (!*mask) st = lam_last_status();
    }
    free(len);
    free(m);
    return st;
  }
  if (lengths->dtype == LAM_U8) {
    const int64_t want[2] = {batch_first ? B : T, batch_first ? T : B};
    if (lengths->ndim != 2 || lengths->shape[0] != want[0] || lengths->shape[1] != want[1]) {
      char b2[LAM__SHAPE_STR];
      return lam__fail(LAM_ERR_SHAPE, "%s: %s: mask is %s, expected %s (x's %s axes)", fn, name,
                       lam__shape_str(lengths->ndim, lengths->shape, b1),
                       lam__shape_str(2, want, b2),
                       batch_first ? "batch and time" : "time and batch");
    }
    *mask = batch_first ? lam_transpose(lengths, 0, 1) : lam_tensor_retain(lengths);
    return *mask ? LAM_OK : lam_last_status();
  }
  return lam__fail(LAM_ERR_DTYPE, "%s: %s: lengths is %s; expected i32 lengths [B] or a u8 mask",
                   fn, name, lam_dtype_name(lengths->dtype));
}

/* Checks an initial state: [LD, B, H] ([LD, H] unbatched) of dtype. */
static lam_status lam__rnn_check_state(lam_tensor *s, const char *what, int64_t LD, int64_t B,
                                       int64_t H, bool unbatched, lam_dtype dt, const char *fn,
                                       const char *name) {
  char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR];
  const int64_t want[3] = {LD, B, H}, want_u[2] = {LD, H};
  const int nd = unbatched ? 2 : 3;
  const int64_t *w = unbatched ? want_u : want;
  bool ok = s->ndim == nd;
  for (int d = 0; ok && d < nd; d++) ok = s->shape[d] == w[d];
  if (!ok)
    return lam__fail(LAM_ERR_SHAPE, "%s: %s: %s is %s, expected %s", fn, name, what,
                     lam__shape_str(s->ndim, s->shape, b1), lam__shape_str(nd, w, b2));
  if (s->dtype != dt)
    return lam__fail(LAM_ERR_DTYPE, "%s: %s: %s is %s, params are %s", fn, name, what,
                     lam_dtype_name(s->dtype), lam_dtype_name(dt));
  return LAM_OK;
}

/* Row k of a state [LD, B, H] as [B, H] (a view, differentiable). */
static lam_tensor *lam__rnn_state_row(lam_tensor *s, int64_t k, int64_t B, int64_t H) {
  if (!s) return NULL;
  lam_tensor *row = lam_tensor_slice0(s, k, k + 1);
  lam_tensor *r2 = row ? lam_tensor_reshape(row, 2, (int64_t[]){B, H}) : NULL;
  lam_tensor_free(row);
  return r2;
}

/* Joins the final-state rows [1, B, H] into [LD, B, H] (or [LD, H]). */
static lam_tensor *lam__rnn_join(lam_tensor **rows, int64_t LD, int64_t H, bool unbatched) {
  lam_tensor *s = LD == 1 ? lam_tensor_retain(rows[0]) : lam_concat(rows, (int)LD, 0);
  if (s && unbatched) {
    lam_tensor *u = lam_tensor_reshape(s, 2, (int64_t[]){LD, H});
    lam_tensor_free(s);
    s = u;
  }
  return s;
}

static lam_status lam__rnn_run(lam_layer *layer, lam_ptree *params, lam_tensor *x, lam_tensor *h0,
                               lam_tensor *c0, lam_tensor *lengths, const lam_apply_opts *opts,
                               const char *fn, lam_tensor **out, lam_tensor **h_n,
                               lam_tensor **c_n) {
  lam__rnn *r = layer->impl;
  const int mode = r->mode;
  const char *name = lam__rnn_name(mode);
  const int L = r->o.num_layers, D = r->o.bidirectional ? 2 : 1;
  const int64_t LD = (int64_t)L * D, HC = r->hidden, GH = lam__rnn_num_gates(mode) * HC;
  const int64_t H = r->proj ? r->proj : HC; /* h's size: proj_size when projecting */
  const bool lstm = mode == LAM__RNN_LSTM, bf = r->o.batch_first;
  static const lam_apply_opts no_opts = {false, NULL, NULL, NULL};
  if (!opts) opts = &no_opts;
  if (!params) return lam__fail(LAM_ERR_NULL, "%s: params is NULL", fn);
  if (!x) {
    lam__null_input(fn, "x");
    return lam_last_status();
  }
  /* ---- validate everything first ---- */
  lam_tensor *w0 = lam_ptree_get(params, "weight_ih_l0");
  if (!w0) return lam__fail(LAM_ERR_NOT_FOUND, "%s: %s: missing param \"weight_ih_l0\"", fn, name);
  const lam_dtype dt = w0->dtype;
  if (dt != LAM_F32 && dt != LAM_F64)
    return lam__fail(LAM_ERR_DTYPE, "%s: %s: params are %s; f32 or f64 only", fn, name,
                     lam_dtype_name(dt));
  lam_tensor **w = calloc((size_t)LD * 5, sizeof *w); /* per (layer, dir): w_ih, w_hh, b_ih, b_hh, w_hr */
  lam_tensor **hrow = calloc((size_t)LD * 2, sizeof *hrow); /* final h rows, then c rows */
  if (!w || !hrow) {
    free(w);
    free(hrow);
    return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
  }
  lam_status st = LAM_OK;
  for (int l = 0; l < L && st == LAM_OK; l++)
    for (int d = 0; d < D && st == LAM_OK; d++) {
      const char *sfx = d ? "_reverse" : "";
      const int64_t in = l ? D * H : r->in;
      lam_tensor **wk = w + 5 * (l * D + d);
      char p[64];
      snprintf(p, sizeof p, "weight_ih_l%d%s", l, sfx);
      wk[0] = lam__rnn_param(params, fn, name, p, dt, 2, (int64_t[]){GH, in});
      snprintf(p, sizeof p, "weight_hh_l%d%s", l, sfx);
      if (wk[0]) wk[1] = lam__rnn_param(params, fn, name, p, dt, 2, (int64_t[]){GH, H});
      if (wk[1] && !r->o.no_bias) {
        snprintf(p, sizeof p, "bias_ih_l%d%s", l, sfx);
        wk[2] = lam__rnn_param(params, fn, name, p, dt, 1, &GH);
        snprintf(p, sizeof p, "bias_hh_l%d%s", l, sfx);
        if (wk[2]) wk[3] = lam__rnn_param(params, fn, name, p, dt, 1, &GH);
      }
      if (wk[1] && (r->o.no_bias || wk[3]) && r->proj) {
        snprintf(p, sizeof p, "weight_hr_l%d%s", l, sfx);
        wk[4] = lam__rnn_param(params, fn, name, p, dt, 2, (int64_t[]){r->proj, HC});
      }
      if (!wk[1] || (!r->o.no_bias && !wk[3]) || (r->proj && !wk[4])) st = lam_last_status();
    }
  char b1[LAM__SHAPE_STR];
  if (st == LAM_OK && x->dtype != dt)
    st = lam__fail(LAM_ERR_DTYPE, "%s: %s: x is %s, params are %s", fn, name,
                   lam_dtype_name(x->dtype), lam_dtype_name(dt));
  if (st == LAM_OK && ((x->ndim != 2 && x->ndim != 3) || x->shape[x->ndim - 1] != r->in))
    st = lam__fail(LAM_ERR_SHAPE, "%s: %s: x is %s, expected [%s, %lld]%s", fn, name,
                   lam__shape_str(x->ndim, x->shape, b1), bf ? "B, T" : "T, B", (long long)r->in,
                   " or unbatched [T, input_size]");
  if (st != LAM_OK) {
    free(w);
    free(hrow);
    return st;
  }
  const bool unbatched = x->ndim == 2;
  const int64_t T = unbatched || !bf ? x->shape[0] : x->shape[1];
  const int64_t B = unbatched ? 1 : bf ? x->shape[0] : x->shape[1];
  if (h0) st = lam__rnn_check_state(h0, "h0", LD, B, H, unbatched, dt, fn, name);
  if (st == LAM_OK && c0) st = lam__rnn_check_state(c0, "c0", LD, B, HC, unbatched, dt, fn, name);
  if (st == LAM_OK && c0 && !lstm)
    st = lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: %s: a cell state c0 is for LSTMs only", fn, name);
  if (st == LAM_OK && lengths && unbatched)
    st = lam__fail(LAM_ERR_INVALID_ARGUMENT,
                   "%s: %s: lengths need a batched input [T, B, F], x is %s", fn, name,
                   lam__shape_str(x->ndim, x->shape, b1));
  const bool drop = opts->training && r->o.dropout > 0 && L > 1;
  if (st == LAM_OK && drop && !opts->rng)
    st = lam__fail(
        LAM_ERR_INVALID_ARGUMENT,
        "%s: %s: dropout %g between layers in training needs an rng key (lam_apply_opts.rng)", fn,
        name, r->o.dropout);
  lam_tensor *mask = NULL;
  if (st == LAM_OK && lengths) st = lam__rnn_mask(lengths, T, B, bf, fn, name, &mask);
  if (st != LAM_OK) {
    free(w);
    free(hrow);
    return st;
  }
  /* ---- compute: time-major [T, B, F] throughout ---- */
  lam_tensor *inp = unbatched ? lam_tensor_reshape(x, 3, (int64_t[]){T, 1, r->in})
                    : bf      ? lam_transpose(x, 0, 1)
                              : lam_tensor_retain(x);
  lam_tensor *h0r = h0 && unbatched ? lam_tensor_reshape(h0, 3, (int64_t[]){LD, 1, H})
                    : h0            ? lam_tensor_retain(h0)
                                    : NULL;
  lam_tensor *c0r = c0 && unbatched ? lam_tensor_reshape(c0, 3, (int64_t[]){LD, 1, HC})
                    : c0            ? lam_tensor_retain(c0)
                                    : NULL;
  if (!inp || (h0 && !h0r) || (c0 && !c0r)) st = lam_last_status();
  for (int l = 0; l < L && st == LAM_OK; l++) {
    const int64_t in = l ? D * H : r->in;
    lam_tensor *x2d = lam_tensor_reshape(inp, 2, (int64_t[]){T * B, in});
    lam_tensor *ys[2] = {NULL, NULL};
    if (!x2d) st = lam_last_status();
    for (int d = 0; d < D && st == LAM_OK; d++) {
      const int64_t k = (int64_t)l * D + d;
      lam_tensor **wk = w + 5 * k;
      lam_tensor *hk = lam__rnn_state_row(h0r, k, B, H), *ck = lam__rnn_state_row(c0r, k, B, HC);
      if (r->proj) {
        if ((!h0r || hk) && (!c0r || ck))
          st = lam__lstm_proj_direction(x2d, T, B, wk[0], wk[1], wk[2], wk[3], wk[4], hk, ck, mask,
                                        d, &ys[d], &hrow[k], &hrow[LD + k]);
        else
          st = lam_last_status();
        lam_tensor_free(hk);
        lam_tensor_free(ck);
        continue;
      }
      lam_tensor *z = (h0r && !hk) || (c0r && !ck)
                          ? NULL
                          : lam__rnn_direction(mode, x2d, T, B, wk[0], wk[1], wk[2], wk[3], hk, ck,
                                               mask, d, fn);
      if (z) {
        ys[d] = lam_tensor_slice0(z, 0, T);
        hrow[k] = lam_tensor_slice0(z, T, T + 1);
        if (lstm) hrow[LD + k] = lam_tensor_slice0(z, T + 1, T + 2);
      }
      if (!z || !ys[d] || !hrow[k] || (lstm && !hrow[LD + k])) st = lam_last_status();
      lam_tensor_free(z);
      lam_tensor_free(hk);
      lam_tensor_free(ck);
    }
    lam_tensor *y = NULL;
    if (st == LAM_OK) {
      y = D == 2 ? lam_concat(ys, 2, 2) : lam_tensor_retain(ys[0]);
      if (y && drop && l < L - 1) {
        lam_tensor *yd =
            lam_dropout(y, r->o.dropout, lam_rng_fold_in(*opts->rng, (uint32_t)l), false);
        lam_tensor_free(y);
        y = yd;
      }
      if (!y) st = lam_last_status();
    }
    lam_tensor_free(ys[0]);
    lam_tensor_free(ys[1]);
    lam_tensor_free(x2d);
    lam_tensor_free(inp);
    inp = y;
  }
  lam_tensor *o = NULL, *hn = NULL, *cn = NULL;
  if (st == LAM_OK && out) {
    o = unbatched ? lam_tensor_reshape(inp, 2, (int64_t[]){T, D * H})
        : bf      ? lam_transpose(inp, 0, 1)
                  : lam_tensor_retain(inp);
    if (!o) st = lam_last_status();
  }
  if (st == LAM_OK && h_n && !(hn = lam__rnn_join(hrow, LD, H, unbatched))) st = lam_last_status();
  if (st == LAM_OK && c_n && lstm && !(cn = lam__rnn_join(hrow + LD, LD, HC, unbatched)))
    st = lam_last_status();
  lam_tensor_free(inp);
  lam_tensor_free(h0r);
  lam_tensor_free(c0r);
  lam_tensor_free(mask);
  for (int64_t k = 0; k < 2 * LD; k++) lam_tensor_free(hrow[k]);
  free(hrow);
  free(w);
  if (st != LAM_OK) {
    lam_tensor_free(o);
    lam_tensor_free(hn);
    lam_tensor_free(cn);
    return st;
  }
  if (out) *out = o;
  if (h_n) *h_n = hn;
  if (c_n) *c_n = cn;
  return LAM_OK;
}

static lam_status lam__rnn_apply(lam_layer *self, lam_ptree *params, lam_ptree *state,
                                 lam_tensor *x, const lam_apply_opts *opts, lam_tensor **out) {
  lam__rnn *r = self->impl;
  const char *fn = "lam_layer_apply", *name = lam__rnn_name(r->mode);
  const lam_aux *aux = opts ? opts->aux : NULL;
  lam_tensor *h0 = lam_aux_get(aux, "h0"), *c0 = lam_aux_get(aux, "c0");
  lam_tensor *lengths = lam_aux_get(aux, "lengths"), *mask = lam_aux_get(aux, "mask");
  if (lengths && mask)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: %s: aux has both \"lengths\" and \"mask\"", fn,
                     name);
  if (c0 && r->mode != LAM__RNN_LSTM)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: %s: aux \"c0\" is for LSTMs only", fn, name);
  if (lengths && lengths->dtype != LAM_I32)
    return lam__fail(LAM_ERR_DTYPE, "%s: %s: aux \"lengths\" is %s, expected i32", fn, name,
                     lam_dtype_name(lengths->dtype));
  if (mask && mask->dtype != LAM_U8)
    return lam__fail(LAM_ERR_DTYPE, "%s: %s: aux \"mask\" is %s, expected u8", fn, name,
                     lam_dtype_name(mask->dtype));
  const bool want_c = r->mode == LAM__RNN_LSTM && opts && opts->summaries;
  lam_tensor *hn = NULL, *cn = NULL;
  lam_status st = lam__rnn_run(self, params, x, h0, c0, lengths ? lengths : mask, opts, fn, out,
                               opts && opts->summaries ? &hn : NULL, want_c ? &cn : NULL);
  if (st == LAM_OK && hn) st = lam_summaries_add(opts, "h_n", hn);
  if (st == LAM_OK && cn) st = lam_summaries_add(opts, "c_n", cn);
  lam_tensor_free(hn);
  lam_tensor_free(cn);
  if (st != LAM_OK) {
    lam_tensor_free(*out);
    *out = NULL;
  }
  return st;
}

static const lam_layer_vtable lam__rnn_vt = {"rnn", lam__rnn_init, lam__rnn_apply, lam__free_impl};
static const lam_layer_vtable lam__lstm_vt = {"lstm", lam__rnn_init, lam__rnn_apply,
                                              lam__free_impl};
static const lam_layer_vtable lam__gru_vt = {"gru", lam__rnn_init, lam__rnn_apply, lam__free_impl};

static lam_layer *lam__rnn_new(int mode, int64_t input_size, int64_t hidden_size,
                               const lam_rnn_opts *opts, const char *fn) {
  lam_rnn_opts o = lam__rnn_resolve(opts);
  if (input_size < 1 || hidden_size < 1)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                     "%s: input_size %lld and hidden_size %lld must be >= 1", fn,
                     (long long)input_size, (long long)hidden_size),
           NULL;
  if (o.num_layers < 1)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: num_layers %d must be >= 1 (0: 1)", fn, o.num_layers),
           NULL;
  if (!(o.dropout >= 0 && o.dropout < 1))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: dropout %g must be in [0, 1)", fn, o.dropout),
           NULL;
  if (o.nonlinearity != LAM_RNN_TANH && o.nonlinearity != LAM_RNN_RELU)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                     "%s: unknown nonlinearity %d (LAM_RNN_TANH or LAM_RNN_RELU)", fn,
                     (int)o.nonlinearity),
           NULL;
  if (o.proj_size != 0 && mode != LAM__RNN_LSTM)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: proj_size is for LSTMs only (torch.nn.LSTM)", fn),
           NULL;
  if (o.proj_size < 0 || o.proj_size >= hidden_size)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                     "%s: proj_size %lld must be in [0, hidden_size %lld) (0: no projection)", fn,
                     (long long)o.proj_size, (long long)hidden_size),
           NULL;
  if (lam__rnn_check_init(&o.weight_init, fn, "weight_init") != LAM_OK ||
      lam__rnn_check_init(&o.bias_init, fn, "bias_init") != LAM_OK)
    return NULL;
  const int64_t GH = lam__rnn_num_gates(mode) * hidden_size;
  const int64_t widest = input_size > 2 * hidden_size ? input_size : 2 * hidden_size;
  if (GH > LAM__MAX_NUMEL / widest)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                     "%s: input_size %lld / hidden_size %lld are too large", fn,
                     (long long)input_size, (long long)hidden_size),
           NULL;
  lam__rnn *r = calloc(1, sizeof *r);
  if (!r) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn), NULL;
  r->mode = mode == LAM__RNN_TANH && o.nonlinearity == LAM_RNN_RELU ? LAM__RNN_RELU : mode;
  r->in = input_size;
  r->hidden = hidden_size;
  r->proj = o.proj_size;
  r->o = o;
  const lam_layer_vtable *vt = mode == LAM__RNN_LSTM  ? &lam__lstm_vt
                               : mode == LAM__RNN_GRU ? &lam__gru_vt
                                                      : &lam__rnn_vt;
  lam_layer *layer = lam_nn_custom(vt, r);
  if (!layer) free(r);
  return layer;
}

lam_layer *lam_nn_rnn(int64_t input_size, int64_t hidden_size, const lam_rnn_opts *opts) {
  return lam__rnn_new(LAM__RNN_TANH, input_size, hidden_size, opts, "lam_nn_rnn");
}
lam_layer *lam_nn_lstm(int64_t input_size, int64_t hidden_size, const lam_rnn_opts *opts) {
  return lam__rnn_new(LAM__RNN_LSTM, input_size, hidden_size, opts, "lam_nn_lstm");
}
lam_layer *lam_nn_gru(int64_t input_size, int64_t hidden_size, const lam_rnn_opts *opts) {
  return lam__rnn_new(LAM__RNN_GRU, input_size, hidden_size, opts, "lam_nn_gru");
}

/* ---- functional forms ------------------------------------------------------ */

static lam_status lam__rnn_forward(const lam_layer_vtable *vt, const char *fn, lam_layer *layer,
                                   lam_ptree *params, lam_tensor *x, lam_tensor *h0, lam_tensor *c0,
                                   lam_tensor *lengths, const lam_apply_opts *opts,
                                   lam_tensor **out, lam_tensor **h_n, lam_tensor **c_n) {
  if (out) *out = NULL;
  if (h_n) *h_n = NULL;
  if (c_n) *c_n = NULL;
  if (!layer) return lam__fail(LAM_ERR_NULL, "%s: layer is NULL", fn);
  if (layer->vt != vt)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: layer is a \"%s\", expected a \"%s\" layer", fn,
                     lam_layer_name(layer), vt->name);
  return lam__rnn_run(layer, params, x, h0, c0, lengths, opts, fn, out, h_n, c_n);
}

lam_status lam_nn_rnn_apply(lam_layer *layer, lam_ptree *params, lam_tensor *x, lam_tensor *h0,
                           lam_tensor *lengths, const lam_apply_opts *opts, lam_tensor **out,
                           lam_tensor **h_n) {
  return lam__rnn_forward(&lam__rnn_vt, "lam_nn_rnn_apply", layer, params, x, h0, NULL, lengths,
                          opts, out, h_n, NULL);
}

lam_status lam_nn_lstm_apply(lam_layer *layer, lam_ptree *params, lam_tensor *x, lam_tensor *h0,
                            lam_tensor *c0, lam_tensor *lengths, const lam_apply_opts *opts,
                            lam_tensor **out, lam_tensor **h_n, lam_tensor **c_n) {
  return lam__rnn_forward(&lam__lstm_vt, "lam_nn_lstm_apply", layer, params, x, h0, c0, lengths,
                          opts, out, h_n, c_n);
}

lam_status lam_nn_gru_apply(lam_layer *layer, lam_ptree *params, lam_tensor *x, lam_tensor *h0,
                           lam_tensor *lengths, const lam_apply_opts *opts, lam_tensor **out,
                           lam_tensor **h_n) {
  return lam__rnn_forward(&lam__gru_vt, "lam_nn_gru_apply", layer, params, x, h0, NULL, lengths,
                          opts, out, h_n, NULL);
}
