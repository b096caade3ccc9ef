/* rnn_common.h: test code shared by test_rnn.c and test_rnn_cells.c: a recurrent test case
 * (inputs drawn like tools/gen_rnn_golden.py draws them), a function running it for lam_vjp /
 * tu_gradcheck, comparisons with PyTorch's golden numbers (tests/data/rnn_golden.safetensors),
 * and a plain C reference of one layer. */
#ifndef LAMINA_TEST_RNN_COMMON_H
#define LAMINA_TEST_RNN_COMMON_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

enum { M_TANH = 0, M_RELU = 1, M_LSTM = 2, M_GRU = 3 };
#define RC_MAX 40

/* A golden case of tools/gen_rnn_golden.py: tensors rnn.<k>.*, the rest metadata. */
typedef struct {
  char name[96];
  int mode; /* 0 tanh, 1 relu, 2 lstm, 3 gru */
  int layers; /* 0: a cell */
  int bidir, T, B, I, H, has_h0;
  uint64_t seed;
  int len_buf[16];
  const int *lengths; /* len_buf, or NULL */
  const double *y, *hn, *cn, *gx, *gh0, *gc0, *gp; /* NULL: absent */
  int np;
} lam_rnn_golden;

/* Fills *g with the case at position i of the metadata list `list` (rnn.seq_cases or
 * rnn.cell_cases); the values stay gold's. */
static inline void rc_golden_case(const tu_golden *gold, const char *list, int i, lam_rnn_golden *g) {
  static const char *const modes[] = {"tanh", "relu", "lstm", "gru"};
  const int k = atoi(tu_golden_word(gold, list, i));
  memset(g, 0, sizeof *g);
  snprintf(g->name, sizeof g->name, "%s", tu_golden_meta(gold, "rnn.%d.name", k));
  const char *mode = tu_golden_meta(gold, "rnn.%d.mode", k);
  g->mode = -1;
  for (int m = 0; m < 4; m++)
    if (strcmp(mode, modes[m]) == 0) g->mode = m;
  cr_assert(g->mode >= 0, "rnn golden %d: mode %s", k, mode);
  g->layers = (int)tu_golden_num(gold, "rnn.%d.layers", k);
  g->bidir = (int)tu_golden_num(gold, "rnn.%d.bidir", k);
  g->T = (int)tu_golden_num(gold, "rnn.%d.T", k);
  g->B = (int)tu_golden_num(gold, "rnn.%d.B", k);
  g->I = (int)tu_golden_num(gold, "rnn.%d.I", k);
  g->H = (int)tu_golden_num(gold, "rnn.%d.H", k);
  g->has_h0 = (int)tu_golden_num(gold, "rnn.%d.has_h0", k);
  g->seed = (uint64_t)tu_golden_num(gold, "rnn.%d.seed", k);
  const tu_array *len = tu_golden_find(gold, "rnn.%d.lengths", k);
  if (len) {
    cr_assert_leq(len->n, 16);
    for (int64_t b = 0; b < len->n; b++) g->len_buf[b] = (int)len->v[b];
    g->lengths = g->len_buf;
  }
  const double **fields[] = {&g->y, &g->hn, &g->cn, &g->gx, &g->gh0, &g->gc0, &g->gp};
  static const char *const names[] = {"y", "hn", "cn", "gx", "gh0", "gc0", "gp"};
  for (int f = 0; f < 7; f++) {
    const tu_array *a = tu_golden_find(gold, "rnn.%d.%s", k, names[f]);
    *fields[f] = a ? a->v : NULL;
  }
  g->np = (int)tu_golden_get(gold, "rnn.%d.gp", k)->n;
}

static inline int rc_gates(int mode) { return mode == M_LSTM ? 4 : mode == M_GRU ? 3 : 1; }

/* One case: all[0] = x, then h0 (and c0) when has_h0, then the parameters. */
typedef struct {
  int mode, layers, bidir, T, B, I, H, has_h0, bf;
  lam_dtype dt;
  lam_layer *layer;
  lam_tensor *lengths; /* i32 lengths, a u8 mask, or NULL (borrowed) */
  int n_all, n_states;
  lam_tensor *all[RC_MAX];
  char names[RC_MAX][32];
  int n_sel, sel[8]; /* with n_sel > 0, xs[i] replaces all[sel[i]] (gradcheck subsets) */
  int use_apply;     /* through lam_layer_apply with aux and summaries */
  double *cot;       /* host cotangent of the flat output */
  int64_t n_out;
} rcase;

/* The golden values as a tensor of dtype dt (argument order of the cases). */
static inline lam_tensor *rc_tensor(lam_ctx *ctx, lam_dtype dt, const double *v, int ndim,
                                    const int64_t *shape) {
  return tu_from_f64(ctx, dt, ndim, shape, v);
}

/* Reads any float tensor into a new double array. */
static inline double *rc_read(const lam_tensor *t) {
  cr_assert(t, "%s", lam_last_error());
  if (lam_tensor_dtype(t) == LAM_F64) return tu_read_f64(t);
  float *f = tu_read_f32(t);
  int64_t n = lam_tensor_numel(t);
  double *d = malloc((size_t)n * sizeof *d);
  for (int64_t i = 0; i < n; i++) d[i] = f[i];
  free(f);
  return d;
}

/* [A, C, F] -> [C, A, F] on the host. */
static inline double *rc_swap01(const double *v, int64_t a, int64_t c, int64_t f) {
  double *o = malloc((size_t)(a * c * f) * sizeof *o);
  for (int64_t i = 0; i < a; i++)
    for (int64_t j = 0; j < c; j++)
      memcpy(o + (j * a + i) * f, v + (i * c + j) * f, (size_t)f * sizeof *o);
  return o;
}

/* Draws the case's tensors in the generator's order (layers 0: a cell). */
static inline void rc_setup(lam_ctx *ctx, rcase *c, uint64_t seed) {
  tu_rng r = tu_rng_make(seed);
  const int D = c->bidir ? 2 : 1, G = rc_gates(c->mode), H = c->H, T = c->T, B = c->B;
  const int cell = c->layers == 0;
  const int64_t GH = (int64_t)G * H;
  double *x = tu_rand_vec(&r, (int64_t)(cell ? 1 : T) * B * c->I, -1, 1);
  if (cell) {
    c->all[0] = rc_tensor(ctx, c->dt, x, 2, (int64_t[]){B, c->I});
  } else if (c->bf) {
    double *xt = rc_swap01(x, T, B, c->I);
    c->all[0] = rc_tensor(ctx, c->dt, xt, 3, (int64_t[]){B, T, c->I});
    free(xt);
  } else {
    c->all[0] = rc_tensor(ctx, c->dt, x, 3, (int64_t[]){T, B, c->I});
  }
  free(x);
  /* parameters first (drawn after x), placed after the states in all[] */
  lam_tensor *params[RC_MAX];
  int np = 0;
  const int L = cell ? 1 : c->layers;
  for (int l = 0; l < L; l++)
    for (int d = 0; d < (cell ? 1 : D); d++) {
      const int64_t in = l ? (int64_t)D * H : c->I;
      const char *kinds[4] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
      for (int k = 0; k < 4; k++) {
        int64_t shape[2] = {GH, k == 0 ? in : H};
        int nd = k < 2 ? 2 : 1;
        double *v = tu_rand_vec(&r, nd == 2 ? shape[0] * shape[1] : GH, -0.7, 0.7);
        params[np] = rc_tensor(ctx, c->dt, v, nd, shape);
        free(v);
        if (cell)
          snprintf(c->names[np], sizeof c->names[np], "%s", kinds[k]);
        else
          snprintf(c->names[np], sizeof c->names[np], "%s_l%d%s", kinds[k], l, d ? "_reverse" : "");
        np++;
      }
    }
  int ns = 0;
  if (c->has_h0) {
    const int nd = cell ? 2 : 3;
    const int64_t sshape[3] = {(int64_t)L * D, B, H};
    const int64_t *sp = cell ? sshape + 1 : sshape;
    const int64_t sn = (int64_t)(cell ? 1 : L * D) * B * H;
    for (int s = 0; s < (c->mode == M_LSTM ? 2 : 1); s++) {
      double *v = tu_rand_vec(&r, sn, -1, 1);
      c->all[1 + ns++] = rc_tensor(ctx, c->dt, v, nd, sp);
      free(v);
    }
  }
  c->n_states = ns;
  for (int i = 0; i < np; i++) c->all[1 + ns + i] = params[i]; /* names[] stay indexed by param */
  c->n_all = 1 + ns + np;
  /* cotangents: y, then h_n and (LSTM) c_n; a cell: h', then (LSTM) c' */
  const int64_t ny = cell ? (int64_t)B * H : (int64_t)T * B * D * H;
  const int64_t ns1 = cell ? 0 : (int64_t)L * D * B * H;
  const int64_t nc = c->mode == M_LSTM ? (cell ? (int64_t)B * H : ns1) : 0;
  c->n_out = ny + ns1 + nc;
  c->cot = tu_rand_vec(&r, c->n_out, -1, 1);
}

static inline void rc_free(rcase *c) {
  for (int i = 0; i < c->n_all; i++) lam_tensor_free(c->all[i]);
  c->n_all = 0;
  free(c->cot);
  c->cot = NULL;
}

static inline lam_tensor *rc_flat(lam_tensor *t) {
  return t ? lam_tensor_reshape(t, 1, (int64_t[]){lam_tensor_numel(t)}) : NULL;
}

/* The case's function: the flat concatenation of y (time-major), h_n and
 * (LSTM) c_n, or for a cell of h' and (LSTM) c'. */
static inline lam_tensor *rc_fn(lam_tensor *const *xs, int n, void *user) {
  rcase *c = user;
  lam_tensor *v[RC_MAX];
  memcpy(v, c->all, sizeof v);
  if (c->n_sel)
    for (int i = 0; i < n; i++) v[c->sel[i]] = xs[i];
  else
    for (int i = 0; i < n; i++) v[i] = xs[i];
  const int p0 = 1 + c->n_states;
  lam_ptree *p = lam_ptree_dict();
  for (int i = p0; i < c->n_all; i++) lam_ptree_set(p, c->names[i - p0], v[i]);
  lam_tensor *h0 = c->has_h0 ? v[1] : NULL, *c0 = c->has_h0 && c->mode == M_LSTM ? v[2] : NULL;
  lam_tensor *y = NULL, *hn = NULL, *cn = NULL;
  lam_status st;
  if (c->layers == 0) {
    st = c->mode == M_LSTM  ? lam_nn_lstm_cell_apply(c->layer, p, v[0], h0, c0, &y, &cn)
         : c->mode == M_GRU ? lam_nn_gru_cell_apply(c->layer, p, v[0], h0, &y)
                            : lam_nn_rnn_cell_apply(c->layer, p, v[0], h0, &y);
  } else if (c->use_apply) {
    lam_aux *aux = lam_aux_create();
    lam_summaries *sm = lam_summaries_create();
    if (h0) lam_aux_set(aux, "h0", h0);
    if (c0) lam_aux_set(aux, "c0", c0);
    if (c->lengths)
      lam_aux_set(aux, lam_tensor_dtype(c->lengths) == LAM_I32 ? "lengths" : "mask", c->lengths);
    lam_apply_opts o = {false, NULL, aux, sm};
    lam_ptree *state = lam_ptree_dict();
    st = lam_layer_apply_with(c->layer, p, state, v[0], &o, &y);
    hn = lam_tensor_retain(lam_summaries_find(sm, "h_n"));
    if (c->mode == M_LSTM) cn = lam_tensor_retain(lam_summaries_find(sm, "c_n"));
    lam_ptree_free(state);
    lam_aux_free(aux);
    lam_summaries_free(sm);
  } else {
    st = c->mode == M_LSTM
             ? lam_nn_lstm_apply(c->layer, p, v[0], h0, c0, c->lengths, NULL, &y, &hn, &cn)
         : c->mode == M_GRU ? lam_nn_gru_apply(c->layer, p, v[0], h0, c->lengths, NULL, &y, &hn)
                            : lam_nn_rnn_apply(c->layer, p, v[0], h0, c->lengths, NULL, &y, &hn);
  }
  lam_ptree_free(p);
  if (st != LAM_OK) return NULL;
  if (c->bf && c->layers) {
    lam_tensor *yt = lam_transpose(y, 0, 1);
    lam_tensor_free(y);
    y = yt;
  }
  lam_tensor *parts[3] = {rc_flat(y), rc_flat(hn), rc_flat(cn)};
  int k = 0;
  lam_tensor *list[3];
  for (int i = 0; i < 3; i++)
    if (parts[i]) list[k++] = parts[i];
  lam_tensor *out = lam_concat(list, k, 0);
  for (int i = 0; i < 3; i++) lam_tensor_free(parts[i]);
  lam_tensor_free(y);
  lam_tensor_free(hn);
  lam_tensor_free(cn);
  return out;
}

static inline lam_layer *rc_layer(const rcase *c) {
  if (c->layers == 0) {
    lam_rnn_cell_opts o = lam_rnn_cell_defaults();
    o.nonlinearity = c->mode == M_RELU ? LAM_RNN_RELU : LAM_RNN_TANH;
    return c->mode == M_LSTM  ? lam_nn_lstm_cell(c->I, c->H, &o)
           : c->mode == M_GRU ? lam_nn_gru_cell(c->I, c->H, &o)
                              : lam_nn_rnn_cell(c->I, c->H, &o);
  }
  lam_rnn_opts o = lam_rnn_defaults();
  o.num_layers = c->layers;
  o.bidirectional = c->bidir;
  o.batch_first = c->bf;
  o.nonlinearity = c->mode == M_RELU ? LAM_RNN_RELU : LAM_RNN_TANH;
  return c->mode == M_LSTM  ? lam_nn_lstm(c->I, c->H, &o)
         : c->mode == M_GRU ? lam_nn_gru(c->I, c->H, &o)
                            : lam_nn_rnn(c->I, c->H, &o);
}

static inline void rc_expect(const double *got, const double *want, int64_t n, double atol,
                             double rtol, const char *what, const char *name) {
  char buf[256];
  snprintf(buf, sizeof buf, "%s: %s", name, what);
  tu_assert_close_f64(got, want, n, atol, rtol, buf);
}

/* Runs a golden case in dtype dt, time-major or batch_first, through the
 * functional form or lam_layer_apply; lengths as i32 or as a u8 mask. */
static inline void rc_golden(lam_ctx *ctx, const lam_rnn_golden *g, lam_dtype dt, int bf,
                             int use_apply, int lengths_as_mask, double atol, double rtol) {
  tu_mark m = tu_mark_now(ctx);
  rcase c;
  memset(&c, 0, sizeof c);
  c.mode = g->mode, c.layers = g->layers, c.bidir = g->bidir, c.T = g->T, c.B = g->B, c.I = g->I;
  c.H = g->H, c.has_h0 = g->has_h0, c.bf = bf, c.dt = dt, c.use_apply = use_apply;
  c.layer = rc_layer(&c);
  cr_assert(c.layer, "%s", lam_last_error());
  rc_setup(ctx, &c, g->seed);
  const int D = g->bidir ? 2 : 1, T = g->T, B = g->B, H = g->H;
  lam_tensor *len = NULL;
  if (g->lengths && !lengths_as_mask) {
    len = lam_tensor_from_host(ctx, LAM_I32, 1, (int64_t[]){B}, g->lengths);
  } else if (g->lengths) {
    uint8_t *mk = malloc((size_t)(T * B));
    for (int t = 0; t < T; t++)
      for (int b = 0; b < B; b++) mk[bf ? b * T + t : t * B + b] = t < g->lengths[b];
    len = lam_tensor_from_host(ctx, LAM_U8, 2, bf ? (int64_t[]){B, T} : (int64_t[]){T, B}, mk);
    free(mk);
  }
  c.lengths = len;
  char name[160];
  snprintf(name, sizeof name, "%s [%s%s%s%s]", g->name, lam_dtype_name(dt),
           bf ? ", batch_first" : "", use_apply ? ", apply" : "", lengths_as_mask ? ", mask" : "");
  /* outputs */
  lam_tensor *out = rc_fn(c.all, c.n_all, &c);
  cr_assert(out, "%s: %s", name, lam_last_error());
  cr_assert_eq(lam_tensor_numel(out), c.n_out, "%s: %lld outputs, want %lld", name,
               (long long)lam_tensor_numel(out), (long long)c.n_out);
  double *o = rc_read(out);
  const int cell = g->layers == 0;
  const int64_t ny = cell ? (int64_t)B * H : (int64_t)T * B * D * H;
  const int64_t nh = cell ? 0 : (int64_t)g->layers * D * B * H;
  rc_expect(o, g->y, ny, atol, rtol, "y", name);
  if (nh) rc_expect(o + ny, g->hn, nh, atol, rtol, "h_n", name);
  if (g->cn) rc_expect(o + ny + nh, g->cn, cell ? ny : nh, atol, rtol, "c_n", name);
  free(o);
  /* gradients of <cot, outputs> */
  lam_tensor *w = rc_tensor(ctx, dt, c.cot, 1, (int64_t[]){c.n_out});
  lam_tensor *gr[RC_MAX] = {0};
  cr_assert_eq(lam_vjp(ctx, rc_fn, &c, c.all, c.n_all, w, NULL, gr), LAM_OK, "%s: %s", name,
               lam_last_error());
  double *gx = rc_read(gr[0]);
  if (bf && !cell) {
    double *t = rc_swap01(gx, B, T, g->I);
    free(gx);
    gx = t;
  }
  rc_expect(gx, g->gx, lam_tensor_numel(c.all[0]), atol, rtol, "grad x", name);
  free(gx);
  if (g->has_h0) {
    double *gh = rc_read(gr[1]);
    rc_expect(gh, g->gh0, lam_tensor_numel(c.all[1]), atol, rtol, "grad h0", name);
    free(gh);
    if (g->mode == M_LSTM) {
      double *gc = rc_read(gr[2]);
      rc_expect(gc, g->gc0, lam_tensor_numel(c.all[2]), atol, rtol, "grad c0", name);
      free(gc);
    }
  }
  int64_t off = 0;
  for (int i = 1 + c.n_states; i < c.n_all; i++) {
    double *gp = rc_read(gr[i]);
    const int64_t n = lam_tensor_numel(c.all[i]);
    cr_assert_leq(off + n, g->np);
    rc_expect(gp, g->gp + off, n, atol, rtol, c.names[i - 1 - c.n_states], name);
    off += n;
    free(gp);
  }
  cr_assert_eq(off, g->np, "%s: %lld parameter elements, golden has %d", name, (long long)off,
               g->np);
  for (int i = 0; i < c.n_all; i++) lam_tensor_free(gr[i]);
  lam_tensor_free(w);
  lam_tensor_free(out);
  lam_tensor_free(len);
  rc_free(&c);
  lam_layer_free(c.layer);
  tu_assert_no_leak(ctx, m);
}

/* ---- plain C reference of one layer (D directions), time-major ------------ */

static inline double rc_sig(double x) { return 1.0 / (1.0 + exp(-x)); }

/* x [T, B, I]; w[4 d + k]: w_ih [GH, I], w_hh [GH, H], b_ih, b_hh (NULL: no
 * bias); h0, c0 [D, B, H] or NULL; mask [T * B] or NULL. Writes y [T, B,
 * D*H], hn and cn [D, B, H]. */
static inline void rc_ref_layer(int mode, int D, int T, int B, int I, int H, const double *x,
                                const double *const *w, const double *h0, const double *c0,
                                const uint8_t *mask, double *y, double *hn, double *cn) {
  const int G = rc_gates(mode), GH = G * H;
  double *h = malloc(sizeof(double) * (size_t)(B * H)),
         *c = malloc(sizeof(double) * (size_t)(B * H));
  double *gx = malloc(sizeof(double) * (size_t)GH), *gh = malloc(sizeof(double) * (size_t)GH);
  for (int d = 0; d < D; d++) {
    const double *wih = w[4 * d], *whh = w[4 * d + 1], *bih = w[4 * d + 2], *bhh = w[4 * d + 3];
    for (int i = 0; i < B * H; i++) {
      h[i] = h0 ? h0[d * B * H + i] : 0;
      c[i] = c0 ? c0[d * B * H + i] : 0;
    }
    for (int k = 0; k < T; k++) {
      const int t = d ? T - 1 - k : k;
      for (int b = 0; b < B; b++) {
        double *yr = y + ((int64_t)t * B + b) * D * H + d * H;
        if (mask && !mask[t * B + b]) {
          for (int j = 0; j < H; j++) yr[j] = 0;
          continue;
        }
        for (int g = 0; g < GH; g++) {
          double s = bih ? bih[g] : 0, u = bhh ? bhh[g] : 0;
          for (int i = 0; i < I; i++) s += wih[g * I + i] * x[((int64_t)t * B + b) * I + i];
          for (int j = 0; j < H; j++) u += whh[g * H + j] * h[b * H + j];
          gx[g] = s, gh[g] = u;
        }
        for (int j = 0; j < H; j++) {
          double *hp = h + b * H + j, *cp = c + b * H + j;
          if (mode == M_TANH)
            *hp = tanh(gx[j] + gh[j]);
          else if (mode == M_RELU)
            *hp = fmax(gx[j] + gh[j], 0);
          else if (mode == M_LSTM) {
            double ig = rc_sig(gx[j] + gh[j]), fg = rc_sig(gx[H + j] + gh[H + j]);
            double gg = tanh(gx[2 * H + j] + gh[2 * H + j]),
                   og = rc_sig(gx[3 * H + j] + gh[3 * H + j]);
            *cp = fg * *cp + ig * gg;
            *hp = og * tanh(*cp);
          } else {
            double r = rc_sig(gx[j] + gh[j]), z = rc_sig(gx[H + j] + gh[H + j]);
            double nn = tanh(gx[2 * H + j] + r * gh[2 * H + j]);
            *hp = (1 - z) * nn + z * *hp;
          }
          yr[j] = *hp;
        }
      }
    }
    memcpy(hn + d * B * H, h, sizeof(double) * (size_t)(B * H));
    if (cn) memcpy(cn + d * B * H, c, sizeof(double) * (size_t)(B * H));
  }
  free(h);
  free(c);
  free(gx);
  free(gh);
}

#endif
