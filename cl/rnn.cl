/* rnn.cl: the fused per-step gate kernels of the recurrent layers (Elman
 * RNN with tanh/relu, LSTM, GRU), forward and backward, and a state copy.
 *
 * The host runs one time step as one GEMM (h_prev @ W_hh^T, through
 * lam_matmul_t) plus one of these kernels; the input projection of every
 * step was done before the loop by one GEMM. Kernels work on a (batch row
 * b, hidden unit j) basis: for its units a work-item reads the G gate
 * pre-activations from rows laid out [B, G*H] in PyTorch's gate order (LSTM
 * i f g o, GRU r z n) and touches only element (b, j) of the state rows, so
 * there is no local memory, no barrier, and state rows are updated in
 * place. The gate values, the cell states and the hidden states of every
 * step are kept in one work buffer for the backward pass; tensors are
 * (buffer, element offset) pairs and the host passes the offset of step t.
 *
 * Variable-length sequences come as an optional u8 step mask (row t: [B]);
 * a masked (0) step leaves the state unchanged, outputs 0, and in the
 * backward passes the state gradient straight through (PyTorch's packed
 * sequences when the mask is a prefix of each row). */

#define ONE ((ACC)1)

/* 1/(1+exp(-x)) with exp of a non-positive number only (no overflow). */
inline ACC lam_sigmoid(ACC x) {
  ACC e = exp(-fabs(x));
  return x >= (ACC)0 ? ONE / (ONE + e) : e / (ONE + e);
}

/* dst[i] = a[i] + b[i], an absent (has_ 0) operand counting as 0: initial
 * states (or zeros), final states, and the initial-state gradient. */
kernel void copy_add(global REAL *dst, int dst_off, global const REAL *a, int a_off, int has_a,
                     global const REAL *b, int b_off, int has_b, int n) {
  int i = get_global_id(0);
  if (i >= n) return;
  STORE(dst, dst_off + i,
        (has_a ? LOAD(a, a_off + i) : (ACC)0) + (has_b ? LOAD(b, b_off + i) : (ACC)0));
}

/* out[c] (and out[W + c] when dup) = sum over the B rows of acc[B, W]: the
 * bias gradient [2, G*H] from the per-row sums the backward kernels keep. */
kernel void colsum(global const REAL *acc, int acc_off, int B, int W, global REAL *out, int out_off,
                   int dup) {
  int c = get_global_id(0);
  if (c >= W) return;
  ACC s = (ACC)0;
  for (int b = 0; b < B; b++) s += LOAD(acc, acc_off + b * W + c);
  STORE(out, out_off + c, s);
  if (dup) STORE(out, out_off + W + c, s);
}

/* Each work-item runs `chunk` consecutive units j of one batch row b (the
 * host passes 64 on CPU devices, 1 elsewhere, as the elementwise family):
 * on PoCL a plain inner loop is what gets vectorised (with exp/tanh as
 * vector calls); one unit per work-item stays scalar there, as does a loop
 * with a conditional load or store (measured ~4x slower kernels). So the
 * loop body has no branches: the mask is per row and a masked step computes
 * and then selects the carried state; biases are always read (the host
 * passes zeros when there are none) and the bias-gradient sums always
 * written; an absent operand (hw at a first step from a zero state, dhg at
 * the last step of the backward) is a valid buffer of the same shape
 * multiplied by 0. The step kernels' pointers are `restrict` (with eight
 * or more pointers LLVM gives up on runtime alias checks and emits scalar
 * code): the host never passes one buffer region as two parameters where
 * either is written (gates and states are disjoint parts of one buffer).
 * On a GPU chunk 1 keeps accesses coalesced. */
#define ROWS_BEGIN                                                      \
  int i = get_global_id(0);                                             \
  int nch = (H + chunk - 1) / chunk;                                    \
  if (i >= B * nch) return;                                             \
  int b = i / nch, j0 = (i - b * nch) * chunk, j1 = min(j0 + chunk, H); \
  int valid = !has_mask || mask[m_off + b];                             \
  for (int j = j0; j < j1; j++) {                                       \
    int e = b * H + j;
#define ROWS_END }
#define HW(k) ((ACC)has_hw * LOAD(hw, hw_off + (k)))
#define DHG(k) ((ACC)has_dhg * LOAD(dhg, dhg_off + (k)))

/* ---- Elman RNN: h = act(xw + hw), act tanh (relu == 0) or relu ----------- */

/* hw is absent (has_hw 0) at a first step from a zero state. The output row y
 * is written too (0 at masked steps). Gates are not stored: the backward
 * derives act' from h itself. */
kernel void rnn_fwd(global const REAL *restrict xw, int xw_off, global const REAL *restrict hw,
                    int hw_off, int has_hw, global const REAL *restrict bias, int b_off,
                    global REAL *restrict hs, int hp_off, int hn_off, global REAL *restrict y,
                    int y_off, global const uchar *restrict mask, int m_off, int has_mask, int B,
                    int H, int relu, int chunk) {
  ROWS_BEGIN
  ACC pre = LOAD(xw, xw_off + e) + HW(e) + LOAD(bias, b_off + j) + LOAD(bias, b_off + H + j);
  ACC h = relu ? fmax(pre, (ACC)0) : tanh(pre);
  STORE(hs, hn_off + e, valid ? h : LOAD(hs, hp_off + e));
  STORE(y, y_off + e, valid ? h : (ACC)0);
  ROWS_END
}

/* dh = dy + dhg (the later step's GEMM dG @ W_hh, absent at the last step) +
 * dhp (the gradient carried past masked steps, in/out). Writes the
 * pre-activation gradient dg (0 at masked steps) and the new carry. */
kernel void rnn_bwd(global const REAL *restrict hs, int hn_off, global const REAL *restrict dz,
                    int dy_off, global const REAL *restrict dhg, int dhg_off, int has_dhg,
                    global REAL *restrict dhp, int dhp_off, global REAL *restrict dg, int dg_off,
                    global REAL *restrict db, int db_off, global const uchar *restrict mask,
                    int m_off, int has_mask, int B, int H, int relu, int chunk) {
  ROWS_BEGIN
  ACC dh = LOAD(dhp, dhp_off + e) + DHG(e);
  ACC dt = dh + LOAD(dz, dy_off + e);
  ACC h = LOAD(hs, hn_off + e);
  ACC d = relu ? (h > (ACC)0 ? dt : (ACC)0) : dt * (ONE - h * h);
  d = valid ? d : (ACC)0;
  STORE(dg, dg_off + e, d);
  STORE(db, db_off + e, LOAD(db, db_off + e) + d);
  STORE(dhp, dhp_off + e, valid ? (ACC)0 : dh);
  ROWS_END
}

/* ---- LSTM: gates i f g o; c = f c_prev + i g; h = o tanh(c) ------------- */

/* Stores the activated gates (i, f, g, o) of the step in gates[B, 4H]. */
kernel void lstm_fwd(global const REAL *restrict xw, int xw_off, global const REAL *restrict hw,
                     int hw_off, int has_hw, global const REAL *restrict bias, int b_off,
                     global REAL *restrict gates, int g_off, global REAL *restrict hs, int hp_off,
                     int hn_off, global REAL *restrict cs, int cp_off, int cn_off,
                     global REAL *restrict y, int y_off, global const uchar *restrict mask,
                     int m_off, int has_mask, int B, int H, int chunk) {
  ROWS_BEGIN
  int g = b * 4 * H + j;
#define LSTM_PRE(k)                                                               \
  (LOAD(xw, xw_off + g + (k)*H) + HW(g + (k)*H) + LOAD(bias, b_off + (k)*H + j) + \
   LOAD(bias, b_off + (4 + (k)) * H + j))
  ACC pi = LSTM_PRE(0), pf = LSTM_PRE(1), pg = LSTM_PRE(2), po = LSTM_PRE(3);
#undef LSTM_PRE
  ACC gi = lam_sigmoid(pi), gf = lam_sigmoid(pf), gg = tanh(pg), go = lam_sigmoid(po);
  ACC cp = LOAD(cs, cp_off + e);
  ACC c = gf * cp + gi * gg;
  ACC h = go * tanh(c);
  STORE(gates, g_off + g, gi);
  STORE(gates, g_off + g + H, gf);
  STORE(gates, g_off + g + 2 * H, gg);
  STORE(gates, g_off + g + 3 * H, go);
  STORE(cs, cn_off + e, valid ? c : cp);
  STORE(hs, hn_off + e, valid ? h : LOAD(hs, hp_off + e));
  STORE(y, y_off + e, valid ? h : (ACC)0);
  ROWS_END
}

/* dh as in rnn_bwd; dc (in/out) is the cell-state gradient carried from the
 * later step. Writes dg[B, 4H] = d pre-activations. */
kernel void lstm_bwd(global const REAL *restrict gates, int g_off, global const REAL *restrict cs,
                     int cp_off, int cn_off, global const REAL *restrict dz, int dy_off,
                     global const REAL *restrict dhg, int dhg_off, int has_dhg,
                     global REAL *restrict dhp, int dhp_off, global REAL *restrict dc, int dc_off,
                     global REAL *restrict dg, int dg_off, global REAL *restrict db, int db_off,
                     global const uchar *restrict mask, int m_off, int has_mask, int B, int H,
                     int chunk) {
  ROWS_BEGIN
  int g = b * 4 * H + j;
  ACC dh = LOAD(dhp, dhp_off + e) + DHG(e);
  ACC dt = dh + LOAD(dz, dy_off + e);
  ACC gi = LOAD(gates, g_off + g), gf = LOAD(gates, g_off + g + H);
  ACC gg = LOAD(gates, g_off + g + 2 * H), go = LOAD(gates, g_off + g + 3 * H);
  ACC tc = tanh(LOAD(cs, cn_off + e));
  ACC dc0 = LOAD(dc, dc_off + e);
  ACC dcv = dc0 + dt * go * (ONE - tc * tc);
  ACC d0 = valid ? dcv * gg * gi * (ONE - gi) : (ACC)0;
  ACC d1 = valid ? dcv * LOAD(cs, cp_off + e) * gf * (ONE - gf) : (ACC)0;
  ACC d2 = valid ? dcv * gi * (ONE - gg * gg) : (ACC)0;
  ACC d3 = valid ? dt * tc * go * (ONE - go) : (ACC)0;
  STORE(dg, dg_off + g, d0);
  STORE(dg, dg_off + g + H, d1);
  STORE(dg, dg_off + g + 2 * H, d2);
  STORE(dg, dg_off + g + 3 * H, d3);
  STORE(db, db_off + g, LOAD(db, db_off + g) + d0);
  STORE(db, db_off + g + H, LOAD(db, db_off + g + H) + d1);
  STORE(db, db_off + g + 2 * H, LOAD(db, db_off + g + 2 * H) + d2);
  STORE(db, db_off + g + 3 * H, LOAD(db, db_off + g + 3 * H) + d3);
  STORE(dc, dc_off + e, valid ? dcv * gf : dc0);
  STORE(dhp, dhp_off + e, valid ? (ACC)0 : dh);
  ROWS_END
}

/* ---- GRU: r, z = sigmoid(x + W h + b); n = tanh(x_n + r (W_n h + b_hn));
 * h = (1 - z) n + z h_prev (PyTorch's formulation) --------------------------- */

/* b_hn sits inside r * (.), so the biases are added here rather than
 * folded into xw. Stores r, z, n and hn = W_n h + b_hn in gates[B, 4H]. */
kernel void gru_fwd(global const REAL *restrict xw, int xw_off, global const REAL *restrict hw,
                    int hw_off, int has_hw, global const REAL *restrict bias, int b_off,
                    global REAL *restrict gates, int g_off, global REAL *restrict hs, int hp_off,
                    int hn_off, global REAL *restrict y, int y_off,
                    global const uchar *restrict mask, int m_off, int has_mask, int B, int H,
                    int chunk) {
  ROWS_BEGIN
  int g = b * 3 * H + j;
#define GRU_X(k) (LOAD(xw, xw_off + g + (k)*H) + LOAD(bias, b_off + (k)*H + j))
#define GRU_H(k) (HW(g + (k)*H) + LOAD(bias, b_off + (3 + (k)) * H + j))
  ACC q2 = GRU_H(2);
  ACC r = lam_sigmoid(GRU_X(0) + GRU_H(0));
  ACC z = lam_sigmoid(GRU_X(1) + GRU_H(1));
  ACC n = tanh(GRU_X(2) + r * q2);
#undef GRU_X
#undef GRU_H
  ACC hp = LOAD(hs, hp_off + e);
  ACC h = (ONE - z) * n + z * hp;
  int s = b * 4 * H + j;
  STORE(gates, g_off + s, r);
  STORE(gates, g_off + s + H, z);
  STORE(gates, g_off + s + 2 * H, n);
  STORE(gates, g_off + s + 3 * H, q2);
  STORE(hs, hn_off + e, valid ? h : hp);
  STORE(y, y_off + e, valid ? h : (ACC)0);
  ROWS_END
}

/* Writes dg[B, 3H] (gradient of xw's pre-activations) and dhw[B, 3H]
 * (gradient of h W_hh^T + b_hh, which differs from dg in the n block by the
 * factor r); the carry dhp becomes dh z, the direct path to h_prev. */
kernel void gru_bwd(global const REAL *restrict gates, int g_off, global const REAL *restrict hs,
                    int hp_off, global const REAL *restrict dz, int dy_off,
                    global const REAL *restrict dhg, int dhg_off, int has_dhg,
                    global REAL *restrict dhp, int dhp_off, global REAL *restrict dg, int dg_off,
                    global REAL *restrict dhw, int dhw_off, global REAL *restrict db, int db_off,
                    global const uchar *restrict mask, int m_off, int has_mask, int B, int H,
                    int chunk) {
  ROWS_BEGIN
  int g = b * 3 * H + j, s = b * 4 * H + j;
  ACC dh = LOAD(dhp, dhp_off + e) + DHG(e);
  ACC dt = dh + LOAD(dz, dy_off + e);
  ACC r = LOAD(gates, g_off + s), z = LOAD(gates, g_off + s + H);
  ACC n = LOAD(gates, g_off + s + 2 * H), hn = LOAD(gates, g_off + s + 3 * H);
  ACC dnp = valid ? dt * (ONE - z) * (ONE - n * n) : (ACC)0;
  ACC drp = dnp * hn * r * (ONE - r);
  ACC dzp = valid ? dt * (LOAD(hs, hp_off + e) - n) * z * (ONE - z) : (ACC)0;
  STORE(dg, dg_off + g, drp);
  STORE(dg, dg_off + g + H, dzp);
  STORE(dg, dg_off + g + 2 * H, dnp);
  STORE(dhw, dhw_off + g, drp);
  STORE(dhw, dhw_off + g + H, dzp);
  STORE(dhw, dhw_off + g + 2 * H, dnp * r);
  int a = db_off + b * 6 * H + j; /* rows [b_ih | b_hh] of width 3H per batch row */
  STORE(db, a, LOAD(db, a) + drp);
  STORE(db, a + H, LOAD(db, a + H) + dzp);
  STORE(db, a + 2 * H, LOAD(db, a + 2 * H) + dnp);
  STORE(db, a + 3 * H, LOAD(db, a + 3 * H) + drp);
  STORE(db, a + 4 * H, LOAD(db, a + 4 * H) + dzp);
  STORE(db, a + 5 * H, LOAD(db, a + 5 * H) + dnp * r);
  STORE(dhp, dhp_off + e, valid ? dt * z : dh);
  ROWS_END
}
