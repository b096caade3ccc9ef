/* nn/rnn_cells.c: the single-step cells lam_nn_rnn_cell, lam_nn_lstm_cell and
 * lam_nn_gru_cell (PyTorch's nn.RNNCell / LSTMCell / GRUCell) for user-written
 * loops. A step is the sequence machinery of nn/rnn.c with T = 1: one GEMM
 * for the input projection, then the recurrent scan (one GEMM for h @
 * W_hh^T plus one fused gate kernel, one autodiff node with its own
 * backward). The new states are views of the scan's result. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/rnn.h"
#include "nn/nn_internal.h"

/* Mode numbers, as in ops/rnn_gates.c. */
enum { LAM__RNN_TANH = 0, LAM__RNN_RELU = 1, LAM__RNN_LSTM = 2, LAM__RNN_GRU = 3 };

/* nn/rnn.c */
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

typedef struct {
  int mode;
  int64_t in, hidden;
  lam_rnn_cell_opts o;
} lam__cell;

lam_rnn_cell_opts lam_rnn_cell_defaults(void) {
  lam_rnn_cell_opts o;
  memset(&o, 0, sizeof o);
  o.no_bias = false;
  o.nonlinearity = LAM_RNN_TANH;
  return o;
}

static const char *lam__cell_name(int mode) {
  return mode == LAM__RNN_LSTM ? "lstm_cell" : mode == LAM__RNN_GRU ? "gru_cell" : "rnn_cell";
}

static lam_status lam__cell_init(lam_layer *self, lam_ctx *ctx, lam_rng_key key, lam_dtype dtype,
                                 lam_ptree *params, lam_ptree *state) {
  lam__cell *c = self->impl;
  if (dtype != LAM_F32 && dtype != LAM_F64)
    return lam__fail(LAM_ERR_DTYPE, "lam_layer_init: %s supports f32 and f64 params, not %s",
                     lam__cell_name(c->mode), lam_dtype_name(dtype));
  const int64_t H = c->hidden, GH = lam__rnn_num_gates(c->mode) * H;
  lam_status st = lam__rnn_param_init(params, "weight_ih", &c->o.weight_init, ctx, key, dtype, 2,
                                      (int64_t[]){GH, c->in}, H);
  if (st == LAM_OK)
    st = lam__rnn_param_init(params, "weight_hh", &c->o.weight_init, ctx, key, dtype, 2,
                             (int64_t[]){GH, H}, H);
  if (st == LAM_OK && !c->o.no_bias)
    st = lam__rnn_param_init(params, "bias_ih", &c->o.bias_init, ctx, key, dtype, 1, &GH, H);
  if (st == LAM_OK && !c->o.no_bias)
    st = lam__rnn_param_init(params, "bias_hh", &c->o.bias_init, ctx, key, dtype, 1, &GH, H);
  return st;
}

/* Checks a state: [B, H] ([H] for an unbatched x) of dtype. */
static lam_status lam__cell_check_state(lam_tensor *s, const char *what, int64_t B, int64_t H,
                                        bool unbatched, lam_dtype dt, const char *fn,
                                        const char *name) {
  char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR];
  const int64_t want[2] = {B, H};
  const int nd = unbatched ? 1 : 2;
  const int64_t *w = unbatched ? want + 1 : want;
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

/* Row `row` of the scan result [T+1(+1), B, H] shaped as the state (B, H or H). */
static lam_tensor *lam__cell_row(lam_tensor *z, int64_t row, int nd, const int64_t *shape) {
  lam_tensor *s = lam_tensor_slice0(z, row, row + 1);
  lam_tensor *r = s ? lam_tensor_reshape(s, nd, shape) : NULL;
  lam_tensor_free(s);
  return r;
}

static lam_status lam__cell_run(lam_layer *cell, lam_ptree *params, lam_tensor *x, lam_tensor *h,
                                lam_tensor *c, const char *fn, lam_tensor **h_out,
                                lam_tensor **c_out) {
  lam__cell *cc = cell->impl;
  const int mode = cc->mode;
  const char *name = lam__cell_name(mode);
  const int64_t H = cc->hidden, GH = lam__rnn_num_gates(mode) * H;
  if (!params) return lam__fail(LAM_ERR_NULL, "%s: params is NULL", fn);
  if (!x) {
    lam__null_input(fn, "x");
    return lam_last_status();
  }
  lam_tensor *w_ih = lam_ptree_get(params, "weight_ih");
  if (!w_ih) return lam__fail(LAM_ERR_NOT_FOUND, "%s: %s: missing param \"weight_ih\"", fn, name);
  const lam_dtype dt = w_ih->dtype;
  if (dt != LAM_F32 && dt != LAM_F64)
    return lam__fail(LAM_ERR_DTYPE, "%s: %s: params are %s; f32 or f64 only", fn, name,
                     lam_dtype_name(dt));
  w_ih = lam__rnn_param(params, fn, name, "weight_ih", dt, 2, (int64_t[]){GH, cc->in});
  lam_tensor *w_hh =
      w_ih ? lam__rnn_param(params, fn, name, "weight_hh", dt, 2, (int64_t[]){GH, H}) : NULL;
  lam_tensor *b_ih = NULL, *b_hh = NULL;
  if (w_hh && !cc->o.no_bias) {
    b_ih = lam__rnn_param(params, fn, name, "bias_ih", dt, 1, &GH);
    b_hh = b_ih ? lam__rnn_param(params, fn, name, "bias_hh", dt, 1, &GH) : NULL;
  }
  if (!w_hh || (!cc->o.no_bias && !b_hh)) return lam_last_status();
  char b1[LAM__SHAPE_STR];
  if (x->dtype != dt)
    return lam__fail(LAM_ERR_DTYPE, "%s: %s: x is %s, params are %s", fn, name,
                     lam_dtype_name(x->dtype), lam_dtype_name(dt));
  if ((x->ndim != 1 && x->ndim != 2) || x->shape[x->ndim - 1] != cc->in)
    return lam__fail(LAM_ERR_SHAPE, "%s: %s: x is %s, expected [B, %lld] or [%lld]", fn, name,
                     lam__shape_str(x->ndim, x->shape, b1), (long long)cc->in, (long long)cc->in);
  const bool unbatched = x->ndim == 1;
  const int64_t B = unbatched ? 1 : x->shape[0];
  lam_status st = LAM_OK;
  if (h) st = lam__cell_check_state(h, "h", B, H, unbatched, dt, fn, name);
  if (st == LAM_OK && c) st = lam__cell_check_state(c, "c", B, H, unbatched, dt, fn, name);
  if (st == LAM_OK && c && mode != LAM__RNN_LSTM)
    st = lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: %s: a cell state c is for LSTM cells only", fn,
                   name);
  if (st != LAM_OK) return st;
  const int64_t bh[2] = {B, H};
  lam_tensor *x2d = lam_tensor_reshape(x, 2, (int64_t[]){B, cc->in});
  lam_tensor *h2 = h ? lam_tensor_reshape(h, 2, bh) : NULL;
  lam_tensor *c2 = c ? lam_tensor_reshape(c, 2, bh) : NULL;
  lam_tensor *z =
      x2d && (!h || h2) && (!c || c2)
          ? lam__rnn_direction(mode, x2d, 1, B, w_ih, w_hh, b_ih, b_hh, h2, c2, NULL, 0, fn)
          : NULL;
  const int nd = unbatched ? 1 : 2;
  const int64_t *shape = unbatched ? bh + 1 : bh;
  lam_tensor *h1 = z ? lam__cell_row(z, 1, nd, shape) : NULL;
  lam_tensor *c1 = h1 && c_out && mode == LAM__RNN_LSTM ? lam__cell_row(z, 2, nd, shape) : NULL;
  if (!h1 || (c_out && mode == LAM__RNN_LSTM && !c1)) st = lam_last_status();
  lam_tensor_free(x2d);
  lam_tensor_free(h2);
  lam_tensor_free(c2);
  lam_tensor_free(z);
  if (st != LAM_OK) {
    lam_tensor_free(h1);
    lam_tensor_free(c1);
    return st;
  }
  *h_out = h1;
  if (c_out) *c_out = c1;
  return LAM_OK;
}

static lam_status lam__cell_apply(lam_layer *self, lam_ptree *params, lam_ptree *state,
                                  lam_tensor *x, const lam_apply_opts *opts, lam_tensor **out) {
  lam__cell *c = self->impl;
  const lam_aux *aux = opts ? opts->aux : NULL;
  lam_tensor *h0 = lam_aux_get(aux, "h0"), *c0 = lam_aux_get(aux, "c0");
  if (c0 && c->mode != LAM__RNN_LSTM)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                     "lam_layer_apply: %s: aux \"c0\" is for LSTM cells only",
                     lam__cell_name(c->mode));
  lam_tensor *c1 = NULL;
  const bool want_c = c->mode == LAM__RNN_LSTM && opts && opts->summaries;
  lam_status st =
      lam__cell_run(self, params, x, h0, c0, "lam_layer_apply", out, want_c ? &c1 : NULL);
  if (st == LAM_OK) st = lam_summaries_add(opts, "h_n", *out);
  if (st == LAM_OK && c1) st = lam_summaries_add(opts, "c_n", c1);
  lam_tensor_free(c1);
  if (st != LAM_OK) {
    lam_tensor_free(*out);
    *out = NULL;
  }
  return st;
}

static const lam_layer_vtable lam__rnn_cell_vt = {"rnn_cell", lam__cell_init, lam__cell_apply,
                                                  lam__free_impl};
static const lam_layer_vtable lam__lstm_cell_vt = {"lstm_cell", lam__cell_init, lam__cell_apply,
                                                   lam__free_impl};
static const lam_layer_vtable lam__gru_cell_vt = {"gru_cell", lam__cell_init, lam__cell_apply,
                                                  lam__free_impl};

static lam_layer *lam__cell_new(int mode, int64_t input_size, int64_t hidden_size,
                                const lam_rnn_cell_opts *opts, const char *fn) {
  /* Every default is zero (the inits' depend on H and stay zeroed): NULL is a
   * zeroed struct, nothing to resolve. */
  lam_rnn_cell_opts o = opts ? *opts : lam_rnn_cell_defaults();
  if (input_size < 1 || hidden_size < 1)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                     "%s: input_size %lld and hidden_size %lld must be >= 1", fn,
                     (long long)input_size, (long long)hidden_size),
           NULL;
  if (o.nonlinearity != LAM_RNN_TANH && o.nonlinearity != LAM_RNN_RELU)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                     "%s: unknown nonlinearity %d (LAM_RNN_TANH or LAM_RNN_RELU)", fn,
                     (int)o.nonlinearity),
           NULL;
  if (lam__rnn_check_init(&o.weight_init, fn, "weight_init") != LAM_OK ||
      lam__rnn_check_init(&o.bias_init, fn, "bias_init") != LAM_OK)
    return NULL;
  const int64_t GH = lam__rnn_num_gates(mode) * hidden_size;
  const int64_t widest = input_size > hidden_size ? input_size : hidden_size;
  if (GH > LAM__MAX_NUMEL / widest)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                     "%s: input_size %lld / hidden_size %lld are too large", fn,
                     (long long)input_size, (long long)hidden_size),
           NULL;
  lam__cell *c = calloc(1, sizeof *c);
  if (!c) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn), NULL;
  c->mode = mode == LAM__RNN_TANH && o.nonlinearity == LAM_RNN_RELU ? LAM__RNN_RELU : mode;
  c->in = input_size;
  c->hidden = hidden_size;
  c->o = o;
  const lam_layer_vtable *vt = mode == LAM__RNN_LSTM  ? &lam__lstm_cell_vt
                               : mode == LAM__RNN_GRU ? &lam__gru_cell_vt
                                                      : &lam__rnn_cell_vt;
  lam_layer *layer = lam_nn_custom(vt, c);
  if (!layer) free(c);
  return layer;
}

lam_layer *lam_nn_rnn_cell(int64_t input_size, int64_t hidden_size, const lam_rnn_cell_opts *opts) {
  return lam__cell_new(LAM__RNN_TANH, input_size, hidden_size, opts, "lam_nn_rnn_cell");
}
lam_layer *lam_nn_lstm_cell(int64_t input_size, int64_t hidden_size, const lam_rnn_cell_opts *opts) {
  return lam__cell_new(LAM__RNN_LSTM, input_size, hidden_size, opts, "lam_nn_lstm_cell");
}
lam_layer *lam_nn_gru_cell(int64_t input_size, int64_t hidden_size, const lam_rnn_cell_opts *opts) {
  return lam__cell_new(LAM__RNN_GRU, input_size, hidden_size, opts, "lam_nn_gru_cell");
}

static lam_status lam__cell_forward(const lam_layer_vtable *vt, const char *fn, lam_layer *cell,
                                    lam_ptree *params, lam_tensor *x, lam_tensor *h, lam_tensor *c,
                                    lam_tensor **h_out, lam_tensor **c_out) {
  if (h_out) *h_out = NULL;
  if (c_out) *c_out = NULL;
  if (!cell) return lam__fail(LAM_ERR_NULL, "%s: cell is NULL", fn);
  if (!h_out) return lam__fail(LAM_ERR_NULL, "%s: h_out is NULL", fn);
  if (cell->vt != vt)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: cell is a \"%s\", expected a \"%s\" layer", fn,
                     lam_layer_name(cell), vt->name);
  return lam__cell_run(cell, params, x, h, c, fn, h_out, c_out);
}

lam_status lam_nn_rnn_cell_apply(lam_layer *cell, lam_ptree *params, lam_tensor *x, lam_tensor *h,
                                lam_tensor **h_out) {
  return lam__cell_forward(&lam__rnn_cell_vt, "lam_nn_rnn_cell_apply", cell, params, x, h, NULL,
                           h_out, NULL);
}

lam_status lam_nn_lstm_cell_apply(lam_layer *cell, lam_ptree *params, lam_tensor *x, lam_tensor *h,
                                 lam_tensor *c, lam_tensor **h_out, lam_tensor **c_out) {
  return lam__cell_forward(&lam__lstm_cell_vt, "lam_nn_lstm_cell_apply", cell, params, x, h, c,
                           h_out, c_out);
}

lam_status lam_nn_gru_cell_apply(lam_layer *cell, lam_ptree *params, lam_tensor *x, lam_tensor *h,
                                lam_tensor **h_out) {
  return lam__cell_forward(&lam__gru_cell_vt, "lam_nn_gru_cell_apply", cell, params, x, h, NULL,
                           h_out, NULL);
}
