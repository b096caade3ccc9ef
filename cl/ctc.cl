/* ctc.cl: the dynamic programs of the CTC loss (src/train/ctc.c) in log
 * space: forward variables alpha (and the negative log-likelihood), backward
 * variables beta, and the gradient with respect to the log-probabilities.
 *
 * Layout: log_probs lp [T, N, C] row-major; alpha and beta [N, T, L] with
 * L = 2 * max target length + 1 (the extended label sequence, blanks
 * between and around the labels); tab (int) holds, for each sample n,
 * tab[n] = its input length Tn, tab[N + n] = its extended length Ln and, at
 * tab[2N + n * L + s], its extended labels l'(s).
 *
 * Work split and trade-offs: alpha and beta run one work-group per sample,
 * its work-items striding over the extended positions s; time is a loop
 * with one barrier per step (the recursion at t needs the whole row t - 1),
 * so the work is O(T * L) per sample with L-wide parallelism. The rows live
 * in global memory (they are kept for the backward pass anyway, and a row
 * of local memory would cap L); the barrier's global fence makes row t - 1
 * visible to the group. Samples differ in length, so a group stops at its
 * own Tn (rows from Tn on are never written nor read). The gradient runs
 * one work-item per (t, n) row of C classes: it zeroes the row, then adds
 * every extended position's occupancy into its label's entry in a fixed
 * order (deterministic, no atomics). */

#define NEG_INF (-(ACC)INFINITY)

/* log(exp(a) + exp(b)), exact for -inf. */
inline ACC lse2(ACC a, ACC b) {
  const ACC m = fmax(a, b);
  if (m == NEG_INF) return NEG_INF;
  return m + log1p(exp(fmin(a, b) - m));
}

/* ctc_alpha: group n. alpha_0(0) = lp(0, blank), alpha_0(1) = lp(0, l1);
 * alpha_t(s) = lp(t, l'(s)) + lse(alpha_{t-1}(s), alpha_{t-1}(s-1),
 * alpha_{t-1}(s-2) where l'(s) != l'(s-2)). nll[n] = -lse of the last two
 * entries at Tn - 1; out[n] is nll[n], or 0 where it is infinite and
 * zero_inf is set. */
kernel void ctc_alpha(global const REAL *lp, int lp_off, global REAL *alpha, int a_off,
                      global REAL *nll, int nll_off, global REAL *out, int out_off,
                      global const int *tab, int tab_off, int T, int N, int C, int L, int zero_inf) {
  const int n = get_group_id(0), lid = get_local_id(0), lsz = get_local_size(0);
  const int Tn = tab[tab_off + n], Ln = tab[tab_off + N + n];
  global const int *lab = tab + tab_off + 2 * N + n * L;
  global const REAL *x = lp + lp_off;
  global REAL *a = alpha + a_off + n * T * L;
  for (int s = lid; s < Ln; s += lsz)
    a[s] = (s < 2) ? x[n * C + lab[s]] : (REAL)NEG_INF;
  barrier(CLK_GLOBAL_MEM_FENCE);
  for (int t = 1; t < Tn; t++) {
    global const REAL *prev = a + (t - 1) * L;
    global REAL *cur = a + t * L;
    global const REAL *xt = x + (t * N + n) * C;
    for (int s = lid; s < Ln; s += lsz) {
      ACC v = prev[s];
      if (s >= 1) v = lse2(v, prev[s - 1]);
      if (s >= 2 && lab[s] != lab[s - 2]) v = lse2(v, prev[s - 2]);
      cur[s] = (REAL)(v + xt[lab[s]]);
    }
    barrier(CLK_GLOBAL_MEM_FENCE);
  }
  if (lid == 0) {
    global const REAL *last = a + (Tn - 1) * L;
    ACC r = last[Ln - 1];
    if (Ln > 1) r = lse2(r, last[Ln - 2]);
    const ACC v = -r;
    nll[nll_off + n] = (REAL)v;
    out[out_off + n] = (REAL)((zero_inf && isinf(v)) ? (ACC)0 : v);
  }
}

/* ctc_beta: group n, the mirror of ctc_alpha from t = Tn - 1 down:
 * beta_{Tn-1}(s) = lp(Tn-1, l'(s)) for s in {Ln-1, Ln-2};
 * beta_t(s) = lp(t, l'(s)) + lse(beta_{t+1}(s), beta_{t+1}(s+1),
 * beta_{t+1}(s+2) where l'(s+2) != l'(s)). Both alpha and beta include
 * lp(t, l'(s)), as PyTorch's. */
kernel void ctc_beta(global const REAL *lp, int lp_off, global REAL *beta, int b_off,
                     global const int *tab, int tab_off, int T, int N, int C, int L) {
  const int n = get_group_id(0), lid = get_local_id(0), lsz = get_local_size(0);
  const int Tn = tab[tab_off + n], Ln = tab[tab_off + N + n];
  global const int *lab = tab + tab_off + 2 * N + n * L;
  global const REAL *x = lp + lp_off;
  global REAL *b = beta + b_off + n * T * L;
  {
    global REAL *cur = b + (Tn - 1) * L;
    global const REAL *xt = x + ((Tn - 1) * N + n) * C;
    for (int s = lid; s < Ln; s += lsz) cur[s] = (s >= Ln - 2) ? xt[lab[s]] : (REAL)NEG_INF;
  }
  barrier(CLK_GLOBAL_MEM_FENCE);
  for (int t = Tn - 2; t >= 0; t--) {
    global const REAL *next = b + (t + 1) * L;
    global REAL *cur = b + t * L;
    global const REAL *xt = x + (t * N + n) * C;
    for (int s = lid; s < Ln; s += lsz) {
      ACC v = next[s];
      if (s + 1 < Ln) v = lse2(v, next[s + 1]);
      if (s + 2 < Ln && lab[s + 2] != lab[s]) v = lse2(v, next[s + 2]);
      cur[s] = (REAL)(v + xt[lab[s]]);
    }
    barrier(CLK_GLOBAL_MEM_FENCE);
  }
}

/* ctc_grad: work-item i = t * N + n owns grad row (t, n):
 * d nll / d lp(t, c) = -sum over s with l'(s) = c of
 * exp(alpha_t(s) + beta_t(s) - lp(t, c) + nll), the posterior occupancy,
 * times the cotangent g[n]. Rows t >= Tn are 0. Where nll is infinite the
 * row is 0 with zero_inf and NaN without (PyTorch's values). */
kernel void ctc_grad(global const REAL *lp, int lp_off, global const REAL *alpha, int a_off,
                     global const REAL *beta, int b_off, global const REAL *nll, int nll_off,
                     global const REAL *g, int g_off, global REAL *dx, int dx_off,
                     global const int *tab, int tab_off, int T, int N, int C, int L, int zero_inf) {
  const int i = get_global_id(0);
  if (i >= T * N) return;
  const int t = i / N, n = i % N;
  const int Tn = tab[tab_off + n], Ln = tab[tab_off + N + n];
  global const int *lab = tab + tab_off + 2 * N + n * L;
  global REAL *d = dx + dx_off + i * C;
  for (int c = 0; c < C; c++) d[c] = (REAL)0;
  if (t >= Tn) return;
  const ACC nl = nll[nll_off + n];
  if (isinf(nl)) {
    if (!zero_inf)
      for (int c = 0; c < C; c++) d[c] = (REAL)NAN;
    return;
  }
  const ACC gn = g[g_off + n];
  global const REAL *xt = lp + lp_off + i * C;
  global const REAL *a = alpha + a_off + (n * T + t) * L;
  global const REAL *b = beta + b_off + (n * T + t) * L;
  for (int s = 0; s < Ln; s++) {
    const int c = lab[s];
    const ACC occ = exp((ACC)a[s] + (ACC)b[s] - (ACC)xt[c] + nl);
    d[c] = (REAL)((ACC)d[c] - gn * occ);
  }
}
