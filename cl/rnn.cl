/* rnn.cl: the fused per-step gate kernels of the recurrent layers (Elman
 * RNN with tanh/relu, LSTM, GRU), forward and backward, and a state copy.
 *
 * The host runs one time step as one GEMM (h_prev @ W_hh^T, through
 * lam_matmul_t) plus one of these kernels; the input projection of every
 * step was done before the loop by one GEMM. Every kernel has one work-item
 * per (batch row b, hidden unit j), i = b * H + j, reads the G gate
 * pre-activations of that unit from rows laid out [B, G*H] in PyTorch's gate
 * order (LSTM i f g o, GRU r z n) and touches only element i of the state
 * rows, so no local memory, no barriers, and state rows may be updated in
 * place. The gate values, the cell states and the hidden states of every step
 * are kept in one work buffer for the backward pass; tensors are (buffer,
 * element offset) pairs and the host passes the offset of step t.
 *
 * Variable-length sequences come as an optional u8 step mask (row t: [B]);
 * a masked (0) step leaves the state unchanged, outputs 0, and in the
 * backward passes the state gradient straight through (PyTorch's packed
 * sequences when the mask is a prefix of each row). */

#define ONE ((ACC)1)

inline ACC lam_sigmoid(ACC x) { return ONE / (ONE + exp(-x)); }

/* dst[i] = src[i], or 0 when has_src is 0 (zero initial states). */
kernel void copy_state(global REAL *dst, int dst_off, global const REAL *src, int src_off,
                       int has_src, int n) {
  int i = get_global_id(0);
  if (i >= n) return;
  dst[dst_off + i] = has_src ? src[src_off + i] : (REAL)0;
}

/* ---- Elman RNN: h = act(xw + hw), act tanh (relu == 0) or relu ----------- */

/* hw is absent (has_hw 0) at a first step from a zero state. The output row y
 * is written too (0 at masked steps). Gates are not stored: the backward
 * derives act' from h itself. */
kernel void rnn_fwd(global const REAL *xw, int xw_off, global const REAL *hw, int hw_off,
                    int has_hw, global REAL *hs, int hp_off, int hn_off, global REAL *y, int y_off,
                    global const uchar *mask, int m_off, int has_mask, int B, int H, int relu) {
  int i = get_global_id(0);
  if (i >= B * H) return;
  int b = i / H;
  if (has_mask && !mask[m_off + b]) {
    hs[hn_off + i] = hs[hp_off + i];
    y[y_off + i] = (REAL)0;
    return;
  }
  ACC pre = LOAD(xw, xw_off + i) + (has_hw ? LOAD(hw, hw_off + i) : (ACC)0);
  ACC h = relu ? fmax(pre, (ACC)0) : tanh(pre);
  STORE(hs, hn_off + i, h);
  STORE(y, y_off + i, h);
}

/* dh = dy + dhg (the later step's GEMM dG @ W_hh, absent at the last step) +
 * dhp (the gradient carried past masked steps, in/out). Writes the
 * pre-activation gradient dg (0 at masked steps) and the new carry. */
kernel void rnn_bwd(global const REAL *hs, int hn_off, global const REAL *dz, int dy_off,
                    global const REAL *dhg, int dhg_off, int has_dhg, global REAL *dhp, int dhp_off,
                    global REAL *dg, int dg_off, global const uchar *mask, int m_off, int has_mask,
                    int B, int H, int relu) {
  int i = get_global_id(0);
  if (i >= B * H) return;
  int b = i / H;
  ACC dh = LOAD(dhp, dhp_off + i) + (has_dhg ? LOAD(dhg, dhg_off + i) : (ACC)0);
  if (has_mask && !mask[m_off + b]) {
    STORE(dhp, dhp_off + i, dh);
    dg[dg_off + i] = (REAL)0;
    return;
  }
  dh += LOAD(dz, dy_off + i);
  ACC h = LOAD(hs, hn_off + i);
  ACC d = relu ? (h > (ACC)0 ? dh : (ACC)0) : dh * (ONE - h * h);
  STORE(dg, dg_off + i, d);
  dhp[dhp_off + i] = (REAL)0;
}

/* ---- LSTM: gates i f g o; c = f c_prev + i g; h = o tanh(c) ------------- */

/* Stores the activated gates (i, f, g, o) of the step in gates[B, 4H]. */
kernel void lstm_fwd(global const REAL *xw, int xw_off, global const REAL *hw, int hw_off,
                     int has_hw, global REAL *gates, int g_off, global REAL *hs, int hp_off,
                     int hn_off, global REAL *cs, int cp_off, int cn_off, global REAL *y, int y_off,
                     global const uchar *mask, int m_off, int has_mask, int B, int H) {
  int i = get_global_id(0);
  if (i >= B * H) return;
  int b = i / H, j = i - b * H;
  if (has_mask && !mask[m_off + b]) {
    hs[hn_off + i] = hs[hp_off + i];
    cs[cn_off + i] = cs[cp_off + i];
    y[y_off + i] = (REAL)0;
    return;
  }
  int base = b * 4 * H + j;
  ACC p[4];
  for (int k = 0; k < 4; k++)
    p[k] = LOAD(xw, xw_off + base + k * H) + (has_hw ? LOAD(hw, hw_off + base + k * H) : (ACC)0);
  ACC gi = lam_sigmoid(p[0]), gf = lam_sigmoid(p[1]), gg = tanh(p[2]), go = lam_sigmoid(p[3]);
  ACC c = gf * LOAD(cs, cp_off + i) + gi * gg;
  ACC h = go * tanh(c);
  STORE(gates, g_off + base, gi);
  STORE(gates, g_off + base + H, gf);
  STORE(gates, g_off + base + 2 * H, gg);
  STORE(gates, g_off + base + 3 * H, go);
  STORE(cs, cn_off + i, c);
  STORE(hs, hn_off + i, h);
  STORE(y, y_off + i, h);
}

/* dh as in rnn_bwd; dc (in/out) is the cell-state gradient carried from the
 * later step. Writes dg[B, 4H] = d pre-activations. */
kernel void lstm_bwd(global const REAL *gates, int g_off, global const REAL *cs, int cp_off,
                     int cn_off, global const REAL *dz, int dy_off, global const REAL *dhg,
                     int dhg_off, int has_dhg, global REAL *dhp, int dhp_off, global REAL *dc,
                     int dc_off, global REAL *dg, int dg_off, global const uchar *mask, int m_off,
                     int has_mask, int B, int H) {
  int i = get_global_id(0);
  if (i >= B * H) return;
  int b = i / H, j = i - b * H;
  int base = b * 4 * H + j;
  ACC dh = LOAD(dhp, dhp_off + i) + (has_dhg ? LOAD(dhg, dhg_off + i) : (ACC)0);
  if (has_mask && !mask[m_off + b]) {
    STORE(dhp, dhp_off + i, dh);
    for (int k = 0; k < 4; k++) dg[dg_off + base + k * H] = (REAL)0;
    return;
  }
  dh += LOAD(dz, dy_off + i);
  ACC gi = LOAD(gates, g_off + base), gf = LOAD(gates, g_off + base + H);
  ACC gg = LOAD(gates, g_off + base + 2 * H), go = LOAD(gates, g_off + base + 3 * H);
  ACC tc = tanh(LOAD(cs, cn_off + i));
  ACC dcv = LOAD(dc, dc_off + i) + dh * go * (ONE - tc * tc);
  STORE(dg, dg_off + base, dcv * gg * gi * (ONE - gi));
  STORE(dg, dg_off + base + H, dcv * LOAD(cs, cp_off + i) * gf * (ONE - gf));
  STORE(dg, dg_off + base + 2 * H, dcv * gi * (ONE - gg * gg));
  STORE(dg, dg_off + base + 3 * H, dh * tc * go * (ONE - go));
  STORE(dc, dc_off + i, dcv * gf);
  dhp[dhp_off + i] = (REAL)0;
}

/* ---- GRU: r, z = sigmoid(x + W h + b); n = tanh(x_n + r (W_n h + b_hn));
 * h = (1 - z) n + z h_prev (PyTorch's formulation) --------------------------- */

/* xw holds x W_ih^T + b_ih; b_hh (optional) is added here because b_hn sits
 * inside r * (.). Stores r, z, n and hn = W_n h + b_hn in gates[B, 4H]. */
kernel void gru_fwd(global const REAL *xw, int xw_off, global const REAL *hw, int hw_off,
                    int has_hw, global const REAL *bhh, int bhh_off, int has_bhh,
                    global REAL *gates, int g_off, global REAL *hs, int hp_off, int hn_off,
                    global REAL *y, int y_off, global const uchar *mask, int m_off, int has_mask,
                    int B, int H) {
  int i = get_global_id(0);
  if (i >= B * H) return;
  int b = i / H, j = i - b * H;
  if (has_mask && !mask[m_off + b]) {
    hs[hn_off + i] = hs[hp_off + i];
    y[y_off + i] = (REAL)0;
    return;
  }
  int base = b * 3 * H + j;
  ACC q[3];
  for (int k = 0; k < 3; k++)
    q[k] = (has_hw ? LOAD(hw, hw_off + base + k * H) : (ACC)0) +
           (has_bhh ? LOAD(bhh, bhh_off + k * H + j) : (ACC)0);
  ACC r = lam_sigmoid(LOAD(xw, xw_off + base) + q[0]);
  ACC z = lam_sigmoid(LOAD(xw, xw_off + base + H) + q[1]);
  ACC n = tanh(LOAD(xw, xw_off + base + 2 * H) + r * q[2]);
  ACC h = (ONE - z) * n + z * LOAD(hs, hp_off + i);
  int gb = b * 4 * H + j;
  STORE(gates, g_off + gb, r);
  STORE(gates, g_off + gb + H, z);
  STORE(gates, g_off + gb + 2 * H, n);
  STORE(gates, g_off + gb + 3 * H, q[2]);
  STORE(hs, hn_off + i, h);
  STORE(y, y_off + i, h);
}

/* Writes dg[B, 3H] (gradient of xw's pre-activations) and dhw[B, 3H]
 * (gradient of h W_hh^T + b_hh, which differs from dg in the n block by the
 * factor r); the carry dhp becomes dh z, the direct path to h_prev. */
kernel void gru_bwd(global const REAL *gates, int g_off, global const REAL *hs, int hp_off,
                    global const REAL *dz, int dy_off, global const REAL *dhg, int dhg_off,
                    int has_dhg, global REAL *dhp, int dhp_off, global REAL *dg, int dg_off,
                    global REAL *dhw, int dhw_off, global const uchar *mask, int m_off,
                    int has_mask, int B, int H) {
  int i = get_global_id(0);
  if (i >= B * H) return;
  int b = i / H, j = i - b * H;
  int base = b * 3 * H + j;
  ACC dh = LOAD(dhp, dhp_off + i) + (has_dhg ? LOAD(dhg, dhg_off + i) : (ACC)0);
  if (has_mask && !mask[m_off + b]) {
    STORE(dhp, dhp_off + i, dh);
    for (int k = 0; k < 3; k++) {
      dg[dg_off + base + k * H] = (REAL)0;
      dhw[dhw_off + base + k * H] = (REAL)0;
    }
    return;
  }
  dh += LOAD(dz, dy_off + i);
  int gb = b * 4 * H + j;
  ACC r = LOAD(gates, g_off + gb), z = LOAD(gates, g_off + gb + H);
  ACC n = LOAD(gates, g_off + gb + 2 * H), hn = LOAD(gates, g_off + gb + 3 * H);
  ACC dnp = dh * (ONE - z) * (ONE - n * n);
  ACC drp = dnp * hn * r * (ONE - r);
  ACC dzp = dh * (LOAD(hs, hp_off + i) - n) * z * (ONE - z);
  STORE(dg, dg_off + base, drp);
  STORE(dg, dg_off + base + H, dzp);
  STORE(dg, dg_off + base + 2 * H, dnp);
  STORE(dhw, dhw_off + base, drp);
  STORE(dhw, dhw_off + base + H, dzp);
  STORE(dhw, dhw_off + base + 2 * H, dnp * r);
  STORE(dhp, dhp_off + i, dh * z);
}
