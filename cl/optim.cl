/* optim.cl: fused optimizer updates and global-norm gradient clipping.
 *
 * Each optimizer update is one kernel, one work-item per element, updating
 * the parameter and its state in place: a parameter and its state are read
 * and written exactly once per step, which is the memory-bound minimum (an
 * op-by-op formulation reads and writes them 5-10 times). The arithmetic
 * follows PyTorch's single-tensor code path operation by operation (same
 * order, coefficients such as 1 - beta computed on the host in double and
 * passed in ACC), so f32 results agree with PyTorch to rounding. Unused
 * state pointers are passed as the parameter buffer and never touched.
 * `gsign` is -1 for maximize, else 1. */

/* SGD: buf is the momentum buffer (used when momentum != 0); first != 0 on a
 * parameter's first update, where PyTorch sets buf = d_p instead of the
 * momentum recursion. */
kernel void sgd(global REAL *p, int p_off, global const REAL *g, int g_off, global REAL *buf,
                int buf_off, int n, ACC lr, ACC momentum, ACC one_minus_damp, ACC wd,
                int nesterov, int first, ACC gsign) {
  int i = get_global_id(0);
  if (i >= n) return;
  ACC x = LOAD(p + p_off, i);
  ACC d = gsign * LOAD(g + g_off, i);
  if (wd != 0) d = d + wd * x;
  if (momentum != 0) {
    ACC b = first ? d : LOAD(buf + buf_off, i) * momentum + one_minus_damp * d;
    STORE(buf + buf_off, i, b);
    b = LOAD(buf + buf_off, i); /* round to storage as PyTorch's state does */
    d = nesterov ? d + momentum * b : b;
  }
  STORE(p + p_off, i, x + (-lr) * d);
}

/* Adam and AdamW. decoupled != 0: AdamW (p *= 1 - lr*wd first), else L2
 * (g += wd*p). step_size = lr / (1 - beta1^t) and bc2_sqrt =
 * sqrt(1 - beta2^t) come from the host in double, as in PyTorch. */
kernel void adam(global REAL *p, int p_off, global const REAL *g, int g_off, global REAL *m,
                 int m_off, global REAL *v, int v_off, global REAL *vmax, int vmax_off, int n,
                 ACC beta1, ACC one_minus_beta1, ACC beta2, ACC one_minus_beta2, ACC eps, ACC wd,
                 ACC decay_factor, ACC step_size, ACC bc2_sqrt, int decoupled, int amsgrad,
                 ACC gsign) {
  int i = get_global_id(0);
  if (i >= n) return;
  ACC x = LOAD(p + p_off, i);
  ACC d = gsign * LOAD(g + g_off, i);
  if (decoupled) {
    x = x * decay_factor;
    STORE(p + p_off, i, x);
    x = LOAD(p + p_off, i);
  } else if (wd != 0) {
    d = d + wd * x;
  }
  STORE(m + m_off, i, LOAD(m + m_off, i) * beta1 + one_minus_beta1 * d);
  STORE(v + v_off, i, LOAD(v + v_off, i) * beta2 + one_minus_beta2 * d * d);
  ACC sq = LOAD(v + v_off, i);
  if (amsgrad) {
    ACC mx = fmax(LOAD(vmax + vmax_off, i), sq);
    STORE(vmax + vmax_off, i, mx);
    sq = LOAD(vmax + vmax_off, i);
  }
  ACC denom = sqrt(sq) / bc2_sqrt + eps;
  STORE(p + p_off, i, x + (-step_size) * (LOAD(m + m_off, i) / denom));
}

/* RMSprop: sq = square_avg, ga = grad_avg (centered), buf = momentum buffer
 * (momentum > 0, starts at zero). */
kernel void rmsprop(global REAL *p, int p_off, global const REAL *g, int g_off, global REAL *sq,
                    int sq_off, global REAL *ga, int ga_off, global REAL *buf, int buf_off, int n,
                    ACC lr, ACC alpha, ACC one_minus_alpha, ACC eps, ACC wd, ACC momentum,
                    int centered, ACC gsign) {
  int i = get_global_id(0);
  if (i >= n) return;
  ACC x = LOAD(p + p_off, i);
  ACC d = gsign * LOAD(g + g_off, i);
  if (wd != 0) d = d + wd * x;
  STORE(sq + sq_off, i, LOAD(sq + sq_off, i) * alpha + one_minus_alpha * d * d);
  ACC s = LOAD(sq + sq_off, i);
  ACC avg;
  if (centered) {
    STORE(ga + ga_off, i, LOAD(ga + ga_off, i) * alpha + one_minus_alpha * d);
    ACC a = LOAD(ga + ga_off, i);
    avg = sqrt((ACC)(REAL)(s + (-1) * a * a));
  } else {
    avg = sqrt(s);
  }
  avg = (ACC)(REAL)avg + eps;
  if (momentum > 0) {
    STORE(buf + buf_off, i, LOAD(buf + buf_off, i) * momentum + d / avg);
    STORE(p + p_off, i, x + (-lr) * LOAD(buf + buf_off, i));
  } else {
    STORE(p + p_off, i, x + (-lr) * (d / avg));
  }
}

/* Adagrad: sum accumulates squared gradients; clr = lr / (1 + (t-1)*lr_decay)
 * comes from the host. */
kernel void adagrad(global REAL *p, int p_off, global const REAL *g, int g_off, global REAL *sum,
                    int sum_off, int n, ACC clr, ACC eps, ACC wd, ACC gsign) {
  int i = get_global_id(0);
  if (i >= n) return;
  ACC x = LOAD(p + p_off, i);
  ACC d = gsign * LOAD(g + g_off, i);
  if (wd != 0) d = d + wd * x;
  STORE(sum + sum_off, i, LOAD(sum + sum_off, i) + d * d);
  ACC std = sqrt(LOAD(sum + sum_off, i)) + eps;
  STORE(p + p_off, i, x + (-clr) * (d / std));
}

/* Lion: decoupled decay, signed interpolation, then the momentum update. */
kernel void lion(global REAL *p, int p_off, global const REAL *g, int g_off, global REAL *m,
                 int m_off, int n, ACC lr, ACC beta1, ACC one_minus_beta1, ACC beta2,
                 ACC one_minus_beta2, ACC decay_factor, int decay, ACC gsign) {
  int i = get_global_id(0);
  if (i >= n) return;
  ACC x = LOAD(p + p_off, i);
  ACC d = gsign * LOAD(g + g_off, i);
  if (decay) x = (ACC)(REAL)(x * decay_factor);
  ACC mm = LOAD(m + m_off, i);
  ACC c = (ACC)(REAL)(mm * beta1 + one_minus_beta1 * d);
  ACC u = c > 0 ? (ACC)1 : c < 0 ? (ACC)-1 : (ACC)0;
  STORE(p + p_off, i, x + (-lr) * u);
  STORE(m + m_off, i, mm * beta2 + one_minus_beta2 * d);
}

/* ---- clip_grad_norm ---------------------------------------------------------
 * sumsq_partial: work-item j of `parts` sums x[j], x[j+parts], ... (strided,
 * so neighbouring work-items read neighbouring elements on GPUs) and writes
 * its partial into partial[part_off + j]; one launch per leaf, all leaves
 * writing disjoint ranges of one partials buffer. sumsq_final: one
 * work-group; each work-item sums a strided share of the partials, then
 * work-item 0 adds the work-group's values in a fixed order after a single
 * barrier (no barrier in a loop, deterministic). clip_scale computes the
 * clip coefficient from the total on the device, so no host round trip is
 * needed before scaling. */
kernel void sumsq_partial(global const REAL *x, int x_off, int n, global ACC *partial, int part_off,
                          int parts) {
  int j = get_global_id(0);
  if (j >= parts) return;
  ACC acc = 0, comp = 0; /* Kahan: a work-item sums up to ~n/parts squares */
  for (int i = j; i < n; i += parts) {
    ACC v = LOAD(x + x_off, i);
    ACC y = v * v - comp;
    ACC t = acc + y;
    comp = (t - acc) - y;
    acc = t;
  }
  partial[part_off + j] = acc;
}

kernel void sumsq_final(global const ACC *partial, int n, global ACC *total, local ACC *scratch) {
  int l = get_local_id(0), w = get_local_size(0);
  ACC acc = 0;
  for (int i = l; i < n; i += w) acc += partial[i];
  scratch[l] = acc;
  barrier(CLK_LOCAL_MEM_FENCE);
  if (l == 0) {
    ACC s = 0;
    for (int i = 0; i < w; i++) s += scratch[i];
    total[0] = s;
  }
}

/* Scales g by max_norm / (sqrt(total) + 1e-6) when that is below 1 (or NaN,
 * which PyTorch's clamp keeps). */
kernel void clip_scale(global REAL *g, int g_off, int n, global const ACC *total, ACC max_norm) {
  int i = get_global_id(0);
  if (i >= n) return;
  ACC c = max_norm / (sqrt(total[0]) + (ACC)1e-6);
  if (c < 1 || isnan(c)) STORE(g + g_off, i, LOAD(g + g_off, i) * c);
}
