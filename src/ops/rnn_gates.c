/* ops/rnn_gates.c: the recurrent scan of one RNN / LSTM / GRU direction as a
 * single autodiff op, and its backward pass through time.
 *
 * lam__rnn_scan takes the input projections of every step (xw = x W_ih^T,
 * [T, B, G*H], computed by the caller with one GEMM), W_hh, the biases
 * packed as [2, G*H] (b_ih; b_hh), the initial states packed as [S, B, H]
 * (h0; and c0 for the LSTM) and an optional step mask, and runs the
 * recurrence: each step is one GEMM (h_prev @ W_hh^T through lam_matmul_t)
 * plus one fused gate kernel of cl/rnn.cl that also adds the biases. It
 * returns one tensor Z = [T + 1 (+1 for LSTM), B, H]: rows 0..T-1 are the
 * outputs (0 at masked steps), row T is the final hidden state and row T+1
 * (LSTM) the final cell state; callers take views with lam_tensor_slice0, so
 * gradients of all three reach this op's single tape node. The whole
 * sequence is one node (not T nodes) so the tape stays small and the
 * backward is a tight loop of one fused kernel plus one GEMM per step; the
 * kernels also keep per-batch-row bias-gradient sums, so the bias gradients
 * need no reduction over T*B rows, and dW_hh is one GEMM over all steps.
 * (The packing keeps the node within LAM__NODE_MAX_INPUTS = 4 inputs.)
 *
 * The forward keeps, in one work buffer saved on the node: the activated
 * gates of every step, the T+1 hidden states and (LSTM) the T+1 cell states.
 * State slots are indexed by position: the step at time t reads slot
 * t + reverse and writes slot t + 1 - reverse, so the reverse direction
 * starts from slot T and both directions keep h_prev of all steps in one
 * contiguous run (for the dW_hh GEMM). */
#include <string.h>

#include "internal.h"
#include "lamina/linalg.h"

/* Mode numbers shared with nn/rnn.c and nn/rnn_cells.c. */
enum { LAM__RNN_TANH = 0, LAM__RNN_RELU = 1, LAM__RNN_LSTM = 2, LAM__RNN_GRU = 3 };

lam_tensor *lam__rnn_scan(int mode, lam_tensor *xw, lam_tensor *w_hh, lam_tensor *bias,
                          lam_tensor *state, lam_tensor *mask, int reverse, const char *fn);

static int lam__rnn_gates(int mode) {
  return mode == LAM__RNN_LSTM ? 4 : mode == LAM__RNN_GRU ? 3 : 1;
}

/* Layout of the work buffer (element offsets from its start). */
typedef struct {
  int64_t BH, g, h, c, total;
} lam__rnn_work;

static lam__rnn_work lam__rnn_layout(int mode, int64_t T, int64_t B, int64_t H) {
  lam__rnn_work w;
  w.BH = B * H;
  int64_t gs =
      (mode == LAM__RNN_LSTM || mode == LAM__RNN_GRU) ? 4 * H : 0; /* stored gates per row */
  w.g = 0;
  w.h = T * B * gs;
  w.c = w.h + (T + 1) * w.BH;
  w.total = w.c + (mode == LAM__RNN_LSTM ? (T + 1) * w.BH : 0);
  return w;
}

/* Units per work-item of the step kernels (see cl/rnn.cl): 64 on CPUs (the tuning table). */
static int lam__rnn_chunk(const lam_ctx *ctx) { return ctx->tuning.rnn_chunk; }

/* Work-items of a step kernel over B rows of H units. */
static size_t lam__rnn_items(int64_t B, int64_t H, int chunk) {
  return (size_t)(B * ((H + chunk - 1) / chunk));
}

/* A tensor's buffer at element `off` from its own offset (two kernel args). */
#define LAM__BUF(t, off) lam__arg_mem((t)->buf->mem), lam__arg_int((int64_t)(t)->offset + (off))

/* dst = a + b over n elements (a or b NULL: 0). */
static lam_status lam__rnn_copy_add(lam_ctx *ctx, cl_kernel k, lam_tensor *dst, int64_t dst_off,
                                    lam_tensor *a, int64_t a_off, lam_tensor *b, int64_t b_off,
                                    int64_t n, const char *fn) {
  lam_tensor *pa = a ? a : dst, *pb = b ? b : dst;
  lam__arg args[] = {LAM__BUF(dst, dst_off),  LAM__BUF(pa, a ? a_off : 0),
                     lam__arg_int(a != NULL), LAM__BUF(pb, b ? b_off : 0),
                     lam__arg_int(b != NULL), lam__arg_int(n)};
  return lam__launch_1d(ctx, k, fn, 9, args, (size_t)n);
}

/* ---- backward through time ----------------------------------------------- */

static lam_status lam__rnn_scan_backward(lam__node *node, lam_tensor *dz, lam_tensor **gin) {
  const char *fn = "lam_nn_rnn backward";
  const int mode = (int)node->i[0], reverse = (int)node->i[4], has_mask = (int)node->i[5];
  const int64_t T = node->i[1], B = node->i[2], H = node->i[3];
  const bool gru = mode == LAM__RNN_GRU, lstm = mode == LAM__RNN_LSTM;
  const bool want_b = lam__node_needs(node, 2), want_s = lam__node_needs(node, 3);
  const int64_t GH = lam__rnn_gates(mode) * H;
  lam_tensor *work = node->saved[0], *w_hh = node->saved[1];
  lam_tensor *mask = has_mask ? node->saved[2] : work; /* any buffer when unused */
  lam_ctx *ctx = dz->ctx;
  const lam__rnn_work L = lam__rnn_layout(mode, T, B, H);
  const int64_t BH = L.BH;
  const lam_dtype dt = dz->dtype;
  const int chunk = lam__rnn_chunk(ctx);
  const int64_t DW = gru ? 2 * GH : GH; /* width of the per-row bias sums */

  lam_tensor *dg = lam__tensor_new(ctx, dt, 3, (int64_t[]){T, B, GH}, fn);
  lam_tensor *dhw =
      gru ? lam__tensor_new(ctx, dt, 3, (int64_t[]){T, B, GH}, fn) : lam_tensor_retain(dg);
  lam_tensor *dhp = lam__tensor_new(ctx, dt, 2, (int64_t[]){B, H}, fn);
  lam_tensor *dc = lstm ? lam__tensor_new(ctx, dt, 2, (int64_t[]){B, H}, fn) : NULL;
  /* Per-row bias-gradient sums, kept even when not wanted (see cl/rnn.cl). */
  lam_tensor *db = lam_tensor_zeros(ctx, dt, 2, (int64_t[]){B, DW});
  lam_tensor *dhg = NULL;
  lam_status st = dg && dhw && dhp && (dc || !lstm) && db ? LAM_OK : lam_last_status();
  static const char *names[] = {"rnn_bwd", "rnn_bwd", "lstm_bwd", "gru_bwd"};
  cl_kernel kc = NULL, ks = NULL;
  if (st == LAM_OK) st = lam__kernel_dt(ctx, "rnn", "copy_add", dt, NULL, &kc);
  if (st == LAM_OK) st = lam__kernel_dt(ctx, "rnn", names[mode], dt, NULL, &ks);
  /* The carries start from the final-state cotangents (rows T and T+1 of dz). */
  if (st == LAM_OK) st = lam__rnn_copy_add(ctx, kc, dhp, 0, dz, T * BH, NULL, 0, BH, fn);
  if (st == LAM_OK && dc) st = lam__rnn_copy_add(ctx, kc, dc, 0, dz, (T + 1) * BH, NULL, 0, BH, fn);
  for (int64_t k = T - 1; k >= 0 && st == LAM_OK; k--) {
    const int64_t t = reverse ? T - 1 - k : k;
    const int64_t prev = t + reverse, next = t + 1 - reverse;
    /* without dhg, this step's rows of dz stand in (multiplied by 0; not dhp,
     * which the kernel writes: its pointers are restrict) */
    lam_tensor *g = dhg ? dhg : dz;
    const int64_t go = dhg ? 0 : t * BH;
    lam__arg a[32];
    int n = 0;
    if (mode == LAM__RNN_LSTM) {
      lam__arg args[] = {LAM__BUF(work, L.g + t * B * 4 * H),
                         LAM__BUF(work, L.c + prev * BH),
                         lam__arg_int((int64_t)work->offset + L.c + next * BH),
                         LAM__BUF(dz, t * BH),
                         LAM__BUF(g, go),
                         lam__arg_int(dhg != NULL),
                         LAM__BUF(dhp, 0),
                         LAM__BUF(dc, 0),
                         LAM__BUF(dg, t * B * GH),
                         LAM__BUF(db, 0),
                         LAM__BUF(mask, t * B),
                         lam__arg_int(has_mask),
                         lam__arg_int(B),
                         lam__arg_int(H),
                         lam__arg_int(chunk)};
      n = (int)(sizeof args / sizeof *args);
      memcpy(a, args, sizeof args);
    } else if (gru) {
      lam__arg args[] = {LAM__BUF(work, L.g + t * B * 4 * H),
                         LAM__BUF(work, L.h + prev * BH),
                         LAM__BUF(dz, t * BH),
                         LAM__BUF(g, go),
                         lam__arg_int(dhg != NULL),
                         LAM__BUF(dhp, 0),
                         LAM__BUF(dg, t * B * GH),
                         LAM__BUF(dhw, t * B * GH),
                         LAM__BUF(db, 0),
                         LAM__BUF(mask, t * B),
                         lam__arg_int(has_mask),
                         lam__arg_int(B),
                         lam__arg_int(H),
                         lam__arg_int(chunk)};
      n = (int)(sizeof args / sizeof *args);
      memcpy(a, args, sizeof args);
    } else {
      lam__arg args[] = {LAM__BUF(work, L.h + next * BH),
                         LAM__BUF(dz, t * BH),
                         LAM__BUF(g, go),
                         lam__arg_int(dhg != NULL),
                         LAM__BUF(dhp, 0),
                         LAM__BUF(dg, t * B * GH),
                         LAM__BUF(db, 0),
                         LAM__BUF(mask, t * B),
                         lam__arg_int(has_mask),
                         lam__arg_int(B),
                         lam__arg_int(H),
                         lam__arg_int(mode == LAM__RNN_RELU),
                         lam__arg_int(chunk)};
      n = (int)(sizeof args / sizeof *args);
      memcpy(a, args, sizeof args);
    }
    st = lam__launch_1d(ctx, ks, fn, n, a, lam__rnn_items(B, H, chunk));
    lam_tensor_free(dhg);
    dhg = NULL;
    /* dh_prev = dHW_t @ W_hh; at the first step only for the initial states' gradient. */
    if (st == LAM_OK && (k > 0 || want_s)) {
      lam_tensor *v =
          lam__tensor_view(dhw, dhw->offset + (size_t)(t * B * GH), 2, (int64_t[]){B, GH});
      dhg = v ? lam_matmul_t(v, w_hh, 0, 0) : NULL;
      lam_tensor_free(v);
      if (!dhg) st = lam_last_status();
    }
  }
  if (st == LAM_OK && want_s) { /* [S, B, H]: dh0 = dhg + dhp, then dc0 */
    gin[3] = lam__tensor_new(ctx, dt, 3, (int64_t[]){lstm ? 2 : 1, B, H}, fn);
    st = gin[3] ? lam__rnn_copy_add(ctx, kc, gin[3], 0, dhg, 0, dhp, 0, BH, fn) : lam_last_status();
    if (st == LAM_OK && lstm) st = lam__rnn_copy_add(ctx, kc, gin[3], BH, dc, 0, NULL, 0, BH, fn);
  }
  if (st == LAM_OK && want_b) { /* [2, GH] from the per-row sums */
    cl_kernel kb;
    gin[2] = lam__tensor_new(ctx, dt, 2, (int64_t[]){2, GH}, fn);
    st = gin[2] ? lam__kernel_dt(ctx, "rnn", "colsum", dt, NULL, &kb) : lam_last_status();
    if (st == LAM_OK) {
      lam__arg args[] = {LAM__BUF(db, 0), lam__arg_int(B), lam__arg_int(DW), LAM__BUF(gin[2], 0),
                         lam__arg_int(!gru)};
      st = lam__launch_1d(ctx, kb, fn, 7, args, (size_t)DW);
    }
  }
  if (st == LAM_OK && lam__node_needs(node, 1)) {
    /* dW_hh = sum_t dHW_t^T @ h_prev(t): one GEMM over the T*B rows. */
    lam_tensor *hp = lam__tensor_view(work, work->offset + (size_t)(L.h + reverse * BH), 2,
                                      (int64_t[]){T * B, H});
    lam_tensor *d2 = lam_tensor_reshape(dhw, 2, (int64_t[]){T * B, GH});
    gin[1] = hp && d2 ? lam_matmul_t(d2, hp, 1, 0) : NULL;
    lam_tensor_free(hp);
    lam_tensor_free(d2);
    if (!gin[1]) st = lam_last_status();
  }
  if (st == LAM_OK && lam__node_needs(node, 0)) gin[0] = lam_tensor_retain(dg);
  lam_tensor_free(dhg);
  lam_tensor_free(dg);
  lam_tensor_free(dhw);
  lam_tensor_free(dhp);
  lam_tensor_free(dc);
  lam_tensor_free(db);
  return st;
}

/* ---- forward ----------------------------------------------------------------- */

static lam_status lam__rnn_check(const char *fn, const char *what, lam_tensor *t, lam_dtype dt,
                                 int ndim, const int64_t *shape) {
  char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR];
  if (t->dtype != dt)
    return lam__fail(LAM_ERR_DTYPE, "%s: %s is %s, expected %s", fn, what, lam_dtype_name(t->dtype),
                     lam_dtype_name(dt));
  bool ok = t->ndim == ndim;
  for (int d = 0; ok && d < ndim; d++) ok = t->shape[d] == shape[d];
  if (!ok)
    return lam__fail(LAM_ERR_SHAPE, "%s: %s is %s, expected %s", fn, what,
                     lam__shape_str(t->ndim, t->shape, b1), lam__shape_str(ndim, shape, b2));
  return LAM_OK;
}

/* mode: LAM__RNN_*; xw [T, B, G*H] = x W_ih^T (no biases); w_hh [G*H, H];
 * bias [2, G*H] (b_ih; b_hh) or NULL; state [S, B, H] (h0; c0 for LSTM, S =
 * 2) or NULL for zeros; mask u8 [T, B] or NULL. Returns Z (see the banner) or
 * NULL with a message named after fn. */
lam_tensor *lam__rnn_scan(int mode, lam_tensor *xw, lam_tensor *w_hh, lam_tensor *bias,
                          lam_tensor *state, lam_tensor *mask, int reverse, const char *fn) {
  if (!xw) return lam__null_input(fn, "xw");
  if (!w_hh) return lam__null_input(fn, "w_hh");
  if (mode < LAM__RNN_TANH || mode > LAM__RNN_GRU)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: unknown recurrent mode %d", fn, mode), NULL;
  lam_ctx *ctx = xw->ctx;
  const lam_dtype dt = xw->dtype;
  if (dt != LAM_F32 && dt != LAM_F64)
    return lam__fail(LAM_ERR_DTYPE, "%s: dtype %s is not supported (f32 or f64)", fn,
                     lam_dtype_name(dt)),
           NULL;
  const int G = lam__rnn_gates(mode);
  const bool lstm = mode == LAM__RNN_LSTM;
  if (xw->ndim != 3 || w_hh->ndim != 2 || w_hh->shape[0] != G * w_hh->shape[1] ||
      xw->shape[2] != w_hh->shape[0]) {
    char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR];
    return lam__fail(LAM_ERR_SHAPE, "%s: input projection %s does not fit W_hh %s (%d gates)", fn,
                     lam__shape_str(xw->ndim, xw->shape, b1),
                     lam__shape_str(w_hh->ndim, w_hh->shape, b2), G),
           NULL;
  }
  const int64_t T = xw->shape[0], B = xw->shape[1], H = w_hh->shape[1], GH = G * H;
  if (lam__rnn_check(fn, "W_hh", w_hh, dt, 2, (int64_t[]){GH, H}) != LAM_OK) return NULL;
  if (bias && lam__rnn_check(fn, "biases", bias, dt, 2, (int64_t[]){2, GH}) != LAM_OK) return NULL;
  if (state &&
      lam__rnn_check(fn, "initial states", state, dt, 3, (int64_t[]){lstm ? 2 : 1, B, H}) != LAM_OK)
    return NULL;
  if (mask && lam__rnn_check(fn, "mask", mask, LAM_U8, 2, (int64_t[]){T, B}) != LAM_OK) return NULL;
  const lam__rnn_work L = lam__rnn_layout(mode, T, B, H);
  if (L.total > LAM__MAX_NUMEL)
    return lam__fail(LAM_ERR_SHAPE,
                     "%s: %lld steps of [%lld, %lld] states need %lld elements (max %lld)", fn,
                     (long long)T, (long long)B, (long long)H, (long long)L.total,
                     (long long)LAM__MAX_NUMEL),
           NULL;
  const int64_t BH = L.BH;
  const int chunk = lam__rnn_chunk(ctx);
  lam_tensor *work = lam__tensor_new(ctx, dt, 1, &L.total, fn);
  lam_tensor *z =
      work ? lam__tensor_new(ctx, dt, 3, (int64_t[]){T + (lstm ? 2 : 1), B, H}, fn) : NULL;
  if (!z) {
    lam_tensor_free(work);
    return NULL;
  }
  static const char *names[] = {"rnn_fwd", "rnn_fwd", "lstm_fwd", "gru_fwd"};
  cl_kernel kc, ks;
  lam_status st = lam__kernel_dt(ctx, "rnn", "copy_add", dt, NULL, &kc);
  if (st == LAM_OK) st = lam__kernel_dt(ctx, "rnn", names[mode], dt, NULL, &ks);
  const bool was = lam_grad_set_enabled(ctx, false); /* the scan is one node */
  const int64_t first = reverse ? T : 0, last = reverse ? 0 : T;
  if (st == LAM_OK)
    st = lam__rnn_copy_add(ctx, kc, work, L.h + first * BH, state, 0, NULL, 0, BH, fn);
  if (st == LAM_OK && lstm)
    st = lam__rnn_copy_add(ctx, kc, work, L.c + first * BH, state, BH, NULL, 0, BH, fn);
  lam_tensor *mk = mask ? mask : work; /* any buffer when unused */
  /* The kernels always add biases: zeros when there are none (see cl/rnn.cl). */
  lam_tensor *bb =
      bias ? lam_tensor_retain(bias) : lam_tensor_zeros(ctx, dt, 2, (int64_t[]){2, GH});
  if (!bb) st = lam_last_status();
  for (int64_t k = 0; k < T && st == LAM_OK; k++) {
    const int64_t t = reverse ? T - 1 - k : k;
    const int64_t prev = t + reverse, next = t + 1 - reverse;
    lam_tensor *hw = NULL;
    if (k > 0 || state) { /* from a zero state the first GEMM is skipped */
      lam_tensor *hp =
          lam__tensor_view(work, work->offset + (size_t)(L.h + prev * BH), 2, (int64_t[]){B, H});
      hw = hp ? lam_matmul_t(hp, w_hh, 0, 1) : NULL;
      lam_tensor_free(hp);
      if (!hw) {
        st = lam_last_status();
        break;
      }
    }
    /* without hw, this step's rows of xw stand in (multiplied by 0) */
    lam_tensor *hwa = hw ? hw : xw;
    const int64_t hwo = hw ? 0 : t * B * GH;
    lam__arg a[32];
    int n;
    if (lstm) {
      lam__arg args[] = {LAM__BUF(xw, t * B * GH),
                         LAM__BUF(hwa, hwo),
                         lam__arg_int(hw != NULL),
                         LAM__BUF(bb, 0),
                         LAM__BUF(work, L.g + t * B * 4 * H),
                         LAM__BUF(work, L.h + prev * BH),
                         lam__arg_int((int64_t)work->offset + L.h + next * BH),
                         LAM__BUF(work, L.c + prev * BH),
                         lam__arg_int((int64_t)work->offset + L.c + next * BH),
                         LAM__BUF(z, t * BH),
                         LAM__BUF(mk, t * B),
                         lam__arg_int(mask != NULL),
                         lam__arg_int(B),
                         lam__arg_int(H),
                         lam__arg_int(chunk)};
      n = (int)(sizeof args / sizeof *args);
      memcpy(a, args, sizeof args);
    } else if (mode == LAM__RNN_GRU) {
      lam__arg args[] = {LAM__BUF(xw, t * B * GH),
                         LAM__BUF(hwa, hwo),
                         lam__arg_int(hw != NULL),
                         LAM__BUF(bb, 0),
                         LAM__BUF(work, L.g + t * B * 4 * H),
                         LAM__BUF(work, L.h + prev * BH),
                         lam__arg_int((int64_t)work->offset + L.h + next * BH),
                         LAM__BUF(z, t * BH),
                         LAM__BUF(mk, t * B),
                         lam__arg_int(mask != NULL),
                         lam__arg_int(B),
                         lam__arg_int(H),
                         lam__arg_int(chunk)};
      n = (int)(sizeof args / sizeof *args);
      memcpy(a, args, sizeof args);
    } else {
      lam__arg args[] = {LAM__BUF(xw, t * B * GH),
                         LAM__BUF(hwa, hwo),
                         lam__arg_int(hw != NULL),
                         LAM__BUF(bb, 0),
                         LAM__BUF(work, L.h + prev * BH),
                         lam__arg_int((int64_t)work->offset + L.h + next * BH),
                         LAM__BUF(z, t * BH),
                         LAM__BUF(mk, t * B),
                         lam__arg_int(mask != NULL),
                         lam__arg_int(B),
                         lam__arg_int(H),
                         lam__arg_int(mode == LAM__RNN_RELU),
                         lam__arg_int(chunk)};
      n = (int)(sizeof args / sizeof *args);
      memcpy(a, args, sizeof args);
    }
    st = lam__launch_1d(ctx, ks, fn, n, a, lam__rnn_items(B, H, chunk));
    lam_tensor_free(hw); /* the in-order queue runs the kernel before any reuse */
  }
  /* Final states into rows T (h) and T+1 (c): the last slot in processing order. */
  if (st == LAM_OK)
    st = lam__rnn_copy_add(ctx, kc, z, T * BH, work, L.h + last * BH, NULL, 0, BH, fn);
  if (st == LAM_OK && lstm)
    st = lam__rnn_copy_add(ctx, kc, z, (T + 1) * BH, work, L.c + last * BH, NULL, 0, BH, fn);
  lam_grad_set_enabled(ctx, was);
  lam_tensor_free(bb);
  if (st != LAM_OK) {
    lam_tensor_free(work);
    lam_tensor_free(z);
    return NULL;
  }
  lam_tensor *in[4] = {xw, w_hh, bias, state};
  lam__node *node = lam__tape_record(z, fn, lam__rnn_scan_backward, 4, in);
  if (node) {
    node->i[0] = mode;
    node->i[1] = T;
    node->i[2] = B;
    node->i[3] = H;
    node->i[4] = reverse;
    node->i[5] = mask != NULL;
    lam__node_save(node, work);
    lam__node_save(node, w_hh);
    if (mask) lam__node_save(node, mask);
  }
  lam_tensor_free(work);
  return z;
}
