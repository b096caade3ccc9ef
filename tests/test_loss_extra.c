/* test_loss_extra.c: the losses of issue 23 (src/train/loss.c's pos_weight
 * and poisson_nll, src/train/loss_margin.c, src/train/ctc.c with
 * cl/ctc.cl): every case and reduction against PyTorch values and input
 * gradients (tests/data/loss_extra_golden.safetensors from
 * tools/gen_loss_extra_golden.py) in f64 and f32, plain C references on
 * random odd shapes, f64 finite-difference checks, the options rule, and
 * bad input with nothing leaked. Not skipped under Oclgrind: the CTC
 * kernels run there on these small shapes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* ---- the golden cases ------------------------------------------------------------ */

typedef struct {
  const char *kind;
  lam_loss_opts o;
  lam_tensor *target, *il, *tl; /* i32 */
  bool log_softmax;             /* ctc: the input is logits */
} call_ctx;

static lam_tensor *call_loss(lam_tensor *const *xs, int n, void *user) {
  (void)n;
  call_ctx *c = user;
  const char *k = c->kind;
  if (!strcmp(k, "bce")) return lam_binary_cross_entropy(xs[0], xs[1], &c->o);
  if (!strcmp(k, "poisson_nll")) return lam_poisson_nll_loss(xs[0], xs[1], &c->o);
  if (!strcmp(k, "cosine_embedding")) return lam_cosine_embedding_loss(xs[0], xs[1], xs[2], &c->o);
  if (!strcmp(k, "hinge_embedding")) return lam_hinge_embedding_loss(xs[0], xs[1], &c->o);
  if (!strcmp(k, "soft_margin")) return lam_soft_margin_loss(xs[0], xs[1], &c->o);
  if (!strcmp(k, "multi_margin")) return lam_multi_margin_loss(xs[0], c->target, &c->o);
  if (!strcmp(k, "multilabel_margin")) return lam_multilabel_margin_loss(xs[0], c->target, &c->o);
  if (!strcmp(k, "multilabel_soft_margin")) return lam_multilabel_soft_margin_loss(xs[0], xs[1], &c->o);
  if (!strcmp(k, "ctc")) {
    lam_tensor *lp = c->log_softmax ? lam_log_softmax(xs[0], -1) : lam_tensor_retain(xs[0]);
    lam_tensor *y = lam_ctc_loss(lp, c->target, c->il, c->tl, &c->o);
    lam_tensor_free(lp);
    return y;
  }
  cr_assert_fail("unknown loss kind %s", k);
  return NULL;
}

static double meta_num(const tu_golden *g, const char *c, const char *key) {
  return tu_golden_num(g, "%s.%s", c, key);
}

static lam_tensor *golden_opt(lam_ctx *ctx, lam_dtype dt, const tu_golden *g, const char *c, const char *name) {
  return tu_golden_find(g, "%s.%s", c, name) ? tu_golden_tensor(ctx, dt, g, "%s.%s", c, name) : NULL;
}

/* Runs case c in dtype dt: values and gradients of every reduction (tolerances per dtype). */
static void run_case(lam_ctx *ctx, const tu_golden *g, const char *c, lam_dtype dt) {
  const double atol = dt == LAM_F64 ? 1e-10 : 2e-5, rtol = dt == LAM_F64 ? 1e-8 : 2e-4;
  call_ctx cc = {tu_golden_meta(g, "%s.kind", c), {0}, NULL, NULL, NULL, false};
  const int nin = (int)tu_golden_num(g, "%s.nin", c);
  int grads[4], ng = tu_golden_ints(g, grads, 4, "%s.grads", c);
  cc.o.margin = meta_num(g, c, "margin");
  cc.o.p = meta_num(g, c, "p");
  cc.o.eps = meta_num(g, c, "eps");
  cc.o.full = meta_num(g, c, "full") != 0;
  cc.o.no_log_input = meta_num(g, c, "no_log_input") != 0;
  cc.o.blank = (int)meta_num(g, c, "blank");
  cc.o.zero_infinity = meta_num(g, c, "zero_infinity") != 0;
  cc.log_softmax = meta_num(g, c, "log_softmax") != 0;
  cc.o.weight = golden_opt(ctx, dt, g, c, "weight");
  cc.o.pos_weight = golden_opt(ctx, dt, g, c, "pos_weight");
  cc.target = golden_opt(ctx, LAM_I32, g, c, "target");
  cc.il = golden_opt(ctx, LAM_I32, g, c, "il");
  cc.tl = golden_opt(ctx, LAM_I32, g, c, "tl");
  lam_tensor *xs[3] = {0};
  for (int i = 0; i < nin; i++) xs[i] = tu_golden_tensor(ctx, dt, g, "%s.in%d", c, i);
  static const char *const rn[3] = {"mean", "sum", "none"};
  const lam_reduction reds[3] = {LAM_REDUCTION_MEAN, LAM_REDUCTION_SUM, LAM_REDUCTION_NONE};
  for (int r = 0; r < 3; r++) {
    tu_mark m = tu_mark_now(ctx);
    cc.o.reduction = reds[r];
    char what[160];
    lam_tensor *y = call_loss(xs, nin, &cc);
    snprintf(what, sizeof what, "%s %s %s value", c, rn[r], lam_dtype_name(dt));
    const tu_array *gy = tu_golden_get(g, "%s.%s.y", c, rn[r]);
    cr_assert(y, "%s: %s", what, lam_last_error());
    cr_assert_eq(lam_tensor_ndim(y), gy->ndim, "%s: rank %d, want %d", what, lam_tensor_ndim(y), gy->ndim);
    tu_assert_tensor_close(y, gy->v, gy->n, atol, rtol, what);
    lam_tensor *w = tu_golden_tensor(ctx, dt, g, "%s.%s.w", c, rn[r]);
    lam_tensor *gr[3] = {0};
    cr_assert_eq(lam_vjp(ctx, call_loss, &cc, xs, nin, w, NULL, gr), LAM_OK, "%s: %s", what, lam_last_error());
    for (int k = 0; k < ng; k++) {
      snprintf(what, sizeof what, "%s %s %s grad of input %d", c, rn[r], lam_dtype_name(dt), grads[k]);
      const tu_array *ga = tu_golden_get(g, "%s.%s.g%d", c, rn[r], grads[k]);
      tu_assert_tensor_close(gr[grads[k]], ga->v, ga->n, atol, dt == LAM_F64 ? 1e-7 : 1e-3, what);
    }
    const tu_array *glp = tu_golden_find(g, "%s.%s.glp", c, rn[r]);
    if (glp) {
      /* The exact gradient with respect to log_probs as a leaf, plus g[n] exp(log_probs)
       * on t < input length (g the cotangent of sample n's loss) where the loss is
       * finite, is PyTorch's leaf gradient. */
      lam_tensor *lp = lam_log_softmax(xs[0], -1);
      call_ctx c2 = cc;
      c2.log_softmax = false;
      lam_tensor *gl = NULL;
      cr_assert_eq(lam_vjp(ctx, call_loss, &c2, &lp, 1, w, NULL, &gl), LAM_OK, "%s", lam_last_error());
      c2.o.reduction = LAM_REDUCTION_NONE;
      c2.o.zero_infinity = false;
      lam_tensor *raw = call_loss(&lp, 1, &c2);
      double *gv = tu_to_f64(gl), *lv = tu_to_f64(lp), *ilv = tu_to_f64(cc.il), *tlv = tu_to_f64(cc.tl);
      double *rv = tu_to_f64(raw), *wv = tu_to_f64(w);
      const int nd = lam_tensor_ndim(lp);
      const int64_t *sh = lam_tensor_shape(lp), N = nd == 3 ? sh[1] : 1, C = sh[nd - 1];
      for (int64_t n = 0; n < N; n++) {
        const double gn = r == 2 ? wv[n] : r == 1 ? wv[0] : wv[0] / (fmax(tlv[n], 1) * (double)N);
        if (isinf(rv[n])) continue;
        for (int64_t t = 0; t < (int64_t)ilv[n]; t++)
          for (int64_t k = 0; k < C; k++) gv[(t * N + n) * C + k] += gn * exp(lv[(t * N + n) * C + k]);
      }
      free(tlv), free(rv), free(wv);
      lam_tensor_free(raw);
      snprintf(what, sizeof what, "%s %s %s grad w.r.t. log_probs", c, rn[r], lam_dtype_name(dt));
      tu_assert_close_f64(gv, glp->v, glp->n, atol, dt == LAM_F64 ? 1e-7 : 1e-3, what);
      free(gv), free(lv), free(ilv);
      lam_tensor_free(gl);
      lam_tensor_free(lp);
    }
    for (int i = 0; i < nin; i++) lam_tensor_free(gr[i]);
    lam_tensor_free(w);
    lam_tensor_free(y);
    tu_assert_no_leak(ctx, m);
  }
  for (int i = 0; i < nin; i++) lam_tensor_free(xs[i]);
  lam_tensor *all[] = {cc.o.weight, cc.o.pos_weight, cc.target, cc.il, cc.tl};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) lam_tensor_free(all[i]);
}

static void run_golden(lam_dtype dt) {
  lam_ctx *ctx = tu_ctx();
  if (!tu_has_dtype(ctx, dt)) {
    lam_ctx_free(ctx);
    return;
  }
  tu_golden *g = tu_golden_load("loss_extra_golden.safetensors");
  const int n = tu_golden_count(g, "cases");
  cr_assert_gt(n, 20);
  for (int i = 0; i < n; i++) {
    char name[64];
    snprintf(name, sizeof name, "%s", tu_golden_word(g, "cases", i));
    run_case(ctx, g, name, dt);
  }
  tu_golden_free(g);
  lam_ctx_free(ctx);
}

Test(loss_extra, every_case_and_reduction_matches_pytorch_f64) { run_golden(LAM_F64); }
Test(loss_extra, every_case_and_reduction_matches_pytorch_f32) { run_golden(LAM_F32); }

/* ---- plain C references on random odd shapes ------------------------------------- */

static double lse(double a, double b) {
  const double m = fmax(a, b);
  return m == -INFINITY ? -INFINITY : m + log(exp(a - m) + exp(b - m));
}

/* -log p(target | lp) for one sample: lp [T][C] with row stride rs. */
static double ref_ctc(const double *lp, int64_t rs, int T, const int *tg, int L, int blank) {
  const int Lp = 2 * L + 1;
  double *a = malloc(sizeof(double) * (size_t)Lp), *b = malloc(sizeof(double) * (size_t)Lp);
  int *l = malloc(sizeof(int) * (size_t)Lp);
  for (int s = 0; s < Lp; s++) l[s] = s % 2 ? tg[s / 2] : blank;
  for (int s = 0; s < Lp; s++) a[s] = s < 2 ? lp[l[s]] : -INFINITY;
  for (int t = 1; t < T; t++) {
    for (int s = 0; s < Lp; s++) {
      double v = a[s];
      if (s >= 1) v = lse(v, a[s - 1]);
      if (s >= 2 && l[s] != l[s - 2]) v = lse(v, a[s - 2]);
      b[s] = v + lp[t * rs + l[s]];
    }
    memcpy(a, b, sizeof(double) * (size_t)Lp);
  }
  double r = a[Lp - 1];
  if (Lp > 1) r = lse(r, a[Lp - 2]);
  free(a), free(b), free(l);
  return -r;
}

Test(loss_extra, ctc_matches_a_c_reference_on_random_shapes) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(99);
  const int trials = tu_small() ? 2 : 6;
  for (int trial = 0; trial < trials; trial++) {
    int T = (int)tu_randint(&r, 1, tu_small() ? 9 : 40), N = (int)tu_randint(&r, 1, 6);
    int C = (int)tu_randint(&r, 2, 9), S = (int)tu_randint(&r, 1, tu_small() ? 5 : 23);
    /* One long target: 2 S + 1 > 64 extended labels, more than a work-group's items. */
    if (trial == 0) T = 75, N = 2, C = 5, S = 35;
    const int blank = (int)tu_randint(&r, 0, C);
    const bool concat = trial % 2 == 1;
    double *lp = malloc(sizeof(double) * (size_t)(T * N * C));
    for (int i = 0; i < T * N; i++) {
      double z = 0, *row = lp + (int64_t)i * C;
      for (int k = 0; k < C; k++) z += exp(row[k] = tu_uniform(&r, -3, 3));
      for (int k = 0; k < C; k++) row[k] -= log(z);
    }
    int32_t *tg = malloc(sizeof(int32_t) * (size_t)(N * S)), il[8], tl[8];
    int64_t total = 0;
    for (int n = 0; n < N; n++) {
      il[n] = (int32_t)tu_randint(&r, 1, T + 1);
      tl[n] = (int32_t)tu_randint(&r, 0, S + 1);
      for (int k = 0; k < S; k++) {
        int v = (int)tu_randint(&r, 0, C - 1);
        tg[n * S + k] = v >= blank ? v + 1 : v; /* never the blank */
      }
    }
    int32_t *cat = malloc(sizeof(int32_t) * (size_t)(N * S));
    for (int n = 0; n < N; n++)
      for (int k = 0; k < tl[n]; k++) cat[total++] = tg[n * S + k];
    double want[8], wmean = 0, wsum = 0;
    for (int n = 0; n < N; n++) {
      want[n] = ref_ctc(lp + (int64_t)n * C, (int64_t)N * C, il[n], tg + n * S, tl[n], blank);
      wsum += want[n];
      wmean += want[n] / (tl[n] > 1 ? tl[n] : 1) / N;
    }
    lam_dtype dts[2] = {LAM_F64, LAM_F32};
    for (int d = 0; d < 2; d++) {
      if (!tu_has_dtype(ctx, dts[d])) continue;
      tu_mark m = tu_mark_now(ctx);
      lam_tensor *x = tu_from_f64(ctx, dts[d], 3, (int64_t[]){T, N, C}, lp);
      lam_tensor *tt = concat ? lam_tensor_from_host(ctx, LAM_I32, 1, (int64_t[]){total > 0 ? total : 1}, cat)
                              : lam_tensor_from_host(ctx, LAM_I32, 2, (int64_t[]){N, S}, tg);
      lam_tensor *ti = lam_tensor_from_host(ctx, LAM_I32, 1, (int64_t[]){N}, il);
      lam_tensor *tn = lam_tensor_from_host(ctx, LAM_I32, 1, (int64_t[]){N}, tl);
      const double tol = dts[d] == LAM_F64 ? 1e-9 : 1e-3;
      char what[128];
      snprintf(what, sizeof what, "ctc T %d N %d C %d S %d blank %d %s %s", T, N, C, S, blank,
               concat ? "concatenated" : "padded", lam_dtype_name(dts[d]));
      lam_loss_opts o = {.blank = blank, .reduction = LAM_REDUCTION_NONE};
      lam_tensor *y = lam_ctc_loss(x, tt, ti, tn, &o);
      cr_assert(y, "%s: %s", what, lam_last_error());
      tu_assert_tensor_close(y, want, N, tol, tol, what);
      o.reduction = LAM_REDUCTION_SUM;
      lam_tensor *ys = lam_ctc_loss(x, tt, ti, tn, &o);
      tu_assert_tensor_close(ys, &wsum, 1, tol, tol, what);
      o.reduction = LAM_REDUCTION_MEAN;
      lam_tensor *ym = lam_ctc_loss(x, tt, ti, tn, &o);
      tu_assert_tensor_close(ym, &wmean, 1, tol, tol, what);
      lam_tensor *all[] = {x, tt, ti, tn, y, ys, ym};
      for (size_t i = 0; i < 7; i++) lam_tensor_free(all[i]);
      tu_assert_no_leak(ctx, m);
    }
    free(lp), free(tg), free(cat);
  }
  lam_ctx_free(ctx);
}

/* References of the class-wise and elementwise losses, reduction none, one value per
 * element (elementwise) or per row. */
static void ref_rows(const char *k, const double *x, const double *x2, const double *t, const int32_t *ti,
                     const double *w, int64_t N, int64_t C, double margin, double p, double *out) {
  for (int64_t n = 0; n < N; n++) {
    const double *xr = x + n * C;
    double acc = 0;
    if (!strcmp(k, "multi_margin")) {
      const int y = ti[n];
      for (int64_t i = 0; i < C; i++) {
        if (i == y) continue;
        double z = margin - xr[y] + xr[i];
        if (z > 0) acc += (p == 2 ? z * z : z) * (w ? w[y] : 1);
      }
      out[n] = acc / (double)C;
    } else if (!strcmp(k, "multilabel_margin")) {
      const int32_t *tr = ti + n * C;
      bool is_t[64] = {0};
      int64_t len = 0;
      while (len < C && tr[len] >= 0) is_t[tr[len++]] = true;
      for (int64_t j = 0; j < len; j++)
        for (int64_t i = 0; i < C; i++)
          if (!is_t[i]) acc += fmax(0, 1 - (xr[tr[j]] - xr[i]));
      out[n] = acc / (double)C;
    } else if (!strcmp(k, "multilabel_soft_margin")) {
      for (int64_t i = 0; i < C; i++) {
        const double ls = -log1p(exp(-xr[i])), lns = -log1p(exp(xr[i]));
        acc -= (w ? w[i] : 1) * (t[n * C + i] * ls + (1 - t[n * C + i]) * lns);
      }
      out[n] = acc / (double)C;
    } else if (!strcmp(k, "cosine_embedding")) {
      double d = 0, a = 0, b = 0;
      for (int64_t i = 0; i < C; i++) d += xr[i] * x2[n * C + i], a += xr[i] * xr[i], b += x2[n * C + i] * x2[n * C + i];
      const double cs = d / sqrt((a + 1e-12) * (b + 1e-12));
      out[n] = t[n] == 1 ? 1 - cs : t[n] == -1 ? fmax(0, cs - margin) : 0;
    } else {
      for (int64_t i = 0; i < C; i++) {
        const double v = xr[i], y = t[n * C + i];
        double l = 0;
        if (!strcmp(k, "hinge_embedding")) l = (y != 1 ? fmax(0, margin - v) : 0) + (y != -1 ? v : 0);
        else if (!strcmp(k, "soft_margin")) l = log1p(exp(-y * v));
        else if (!strcmp(k, "poisson_nll")) l = exp(v) - y * v + (y > 1 ? y * log(y) - y + 0.5 * log(2 * 3.14159265358979323846 * y) : 0);
        else if (!strcmp(k, "bce_pw")) l = (1 - y) * v + (1 + (w[i] - 1) * y) * log1p(exp(-v));
        out[n * C + i] = l;
      }
    }
  }
}

Test(loss_extra, losses_match_c_references_on_random_shapes) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(5);
  static const char *const kinds[] = {"multi_margin", "multilabel_margin", "multilabel_soft_margin",
                                      "cosine_embedding", "hinge_embedding", "soft_margin", "poisson_nll",
                                      "bce_pw"};
  for (size_t ki = 0; ki < sizeof kinds / sizeof kinds[0]; ki++) {
    for (int trial = 0; trial < 2; trial++) {
      const char *k = kinds[ki];
      tu_mark m = tu_mark_now(ctx);
      const int64_t N = tu_randint(&r, 1, 8), C = tu_randint(&r, 1, tu_small() ? 6 : 17);
      const bool rows = !strcmp(k, "multi_margin") || !strcmp(k, "multilabel_margin") ||
                        !strcmp(k, "multilabel_soft_margin") || !strcmp(k, "cosine_embedding");
      double *x = tu_rand_vec(&r, N * C, -2, 2), *x2 = tu_rand_vec(&r, N * C, -2, 2);
      double *t = tu_rand_vec(&r, N * C, 0, 1), *w = tu_rand_vec(&r, C, 0.3, 2);
      int32_t *ti = malloc(sizeof(int32_t) * (size_t)(N * C));
      const bool sign = !strcmp(k, "cosine_embedding") || !strcmp(k, "hinge_embedding") || !strcmp(k, "soft_margin");
      for (int64_t i = 0; i < N * C; i++) {
        if (sign) t[i] = t[i] < 0.5 ? -1 : 1;
        if (!strcmp(k, "poisson_nll")) t[i] = floor(t[i] * 5);
      }
      if (!strcmp(k, "multi_margin"))
        for (int64_t n = 0; n < N; n++) ti[n] = (int32_t)tu_randint(&r, 0, C);
      if (!strcmp(k, "multilabel_margin"))
        for (int64_t n = 0; n < N; n++) {
          const int64_t len = tu_randint(&r, 0, C + 1);
          for (int64_t j = 0; j < C; j++) ti[n * C + j] = j < len ? (int32_t)tu_randint(&r, 0, C) : (j == len ? -1 : (int32_t)tu_randint(&r, -1, C));
        }
      const double margin = tu_uniform(&r, 0.2, 1.5), p = trial ? 2 : 1;
      const bool use_w = trial == 1 && (!strcmp(k, "multi_margin") || !strcmp(k, "multilabel_soft_margin"));
      const int64_t nout = rows ? N : N * C;
      double *want = malloc(sizeof(double) * (size_t)(N * C));
      ref_rows(k, x, x2, t, ti, (use_w || !strcmp(k, "bce_pw")) ? w : NULL, N, C, margin, p, want);
      lam_tensor *tx = tu_from_f64(ctx, LAM_F64, 2, (int64_t[]){N, C}, x);
      lam_tensor *tx2 = tu_from_f64(ctx, LAM_F64, 2, (int64_t[]){N, C}, x2);
      lam_tensor *tt = !strcmp(k, "cosine_embedding") ? tu_from_f64(ctx, LAM_F64, 1, (int64_t[]){N}, t)
                                                      : tu_from_f64(ctx, LAM_F64, 2, (int64_t[]){N, C}, t);
      lam_tensor *tw = tu_from_f64(ctx, LAM_F64, 1, (int64_t[]){C}, w);
      lam_tensor *tti = !strcmp(k, "multi_margin") ? lam_tensor_from_host(ctx, LAM_I32, 1, (int64_t[]){N}, ti)
                                                   : lam_tensor_from_host(ctx, LAM_I32, 2, (int64_t[]){N, C}, ti);
      lam_loss_opts o = {.reduction = LAM_REDUCTION_NONE, .margin = margin, .p = p, .full = true,
                         .weight = use_w ? tw : NULL};
      lam_tensor *y = NULL;
      if (!strcmp(k, "multi_margin")) y = lam_multi_margin_loss(tx, tti, &o);
      else if (!strcmp(k, "multilabel_margin")) y = lam_multilabel_margin_loss(tx, tti, &o);
      else if (!strcmp(k, "multilabel_soft_margin")) y = lam_multilabel_soft_margin_loss(tx, tt, &o);
      else if (!strcmp(k, "cosine_embedding")) y = lam_cosine_embedding_loss(tx, tx2, tt, &o);
      else if (!strcmp(k, "hinge_embedding")) y = lam_hinge_embedding_loss(tx, tt, &o);
      else if (!strcmp(k, "soft_margin")) y = lam_soft_margin_loss(tx, tt, &o);
      else if (!strcmp(k, "poisson_nll")) y = lam_poisson_nll_loss(tx, tt, &o);
      else {
        o.pos_weight = tw;
        y = lam_binary_cross_entropy(tx, tt, &o);
      }
      char what[96];
      snprintf(what, sizeof what, "%s [%lld, %lld] trial %d", k, (long long)N, (long long)C, trial);
      cr_assert(y, "%s: %s", what, lam_last_error());
      cr_assert_eq(lam_tensor_numel(y), nout, "%s", what);
      tu_assert_tensor_close(y, want, nout, 1e-10, 1e-9, what);
      lam_tensor *all[] = {tx, tx2, tt, tw, tti, y};
      for (size_t i = 0; i < 6; i++) lam_tensor_free(all[i]);
      free(x), free(x2), free(t), free(w), free(ti), free(want);
      tu_assert_no_leak(ctx, m);
    }
  }
  lam_ctx_free(ctx);
}

/* ---- finite-difference gradient checks (f64) ------------------------------------- */

/* fn of the first nvar inputs, the others fixed. */
typedef struct {
  call_ctx c;
  lam_tensor *all[3];
  int n, nvar;
} gc_ctx;

static lam_tensor *gc_call(lam_tensor *const *xs, int n, void *user) {
  gc_ctx *g = user;
  lam_tensor *full[3] = {g->all[0], g->all[1], g->all[2]};
  for (int i = 0; i < n; i++) full[i] = xs[i];
  return call_loss(full, g->n, &g->c);
}

Test(loss_extra, gradient_checks) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(17);
  const int64_t s35[2] = {3, 5};
  lam_tensor *a = tu_rand_f64(ctx, &r, 2, s35, -2, 2), *b = tu_rand_f64(ctx, &r, 2, s35, -2, 2);
  lam_tensor *pr = tu_rand_f64(ctx, &r, 2, s35, 0.1, 3), *t01 = tu_rand_f64(ctx, &r, 2, s35, 0, 1);
  lam_tensor *pw = tu_rand_f64(ctx, &r, 1, (int64_t[]){5}, 0.3, 2);
  double sg[15], cnt[15], ys[3] = {1, -1, 1};
  for (int i = 0; i < 15; i++) sg[i] = tu_uniform(&r, 0, 1) < 0.5 ? -1 : 1, cnt[i] = (double)(i % 5);
  lam_tensor *sign = tu_from_f64(ctx, LAM_F64, 2, s35, sg), *counts = tu_from_f64(ctx, LAM_F64, 2, s35, cnt);
  lam_tensor *y3 = tu_from_f64(ctx, LAM_F64, 1, (int64_t[]){3}, ys);
  lam_tensor *ti = lam_tensor_from_host(ctx, LAM_I32, 1, (int64_t[]){3}, (int32_t[]){4, 0, 2});
  lam_tensor *tml = lam_tensor_from_host(ctx, LAM_I32, 2, s35, (int32_t[]){3, 1, -1, 0, 0, 4, -1, 2, 2, 2, 0, 1, 2, 3, -1});
  struct {
    const char *kind;
    lam_loss_opts o;
    int n;
    lam_tensor *xs[3];
    lam_tensor *target;
  } rows[] = {
    {"bce", {.pos_weight = pw, .reduction = LAM_REDUCTION_SUM}, 2, {a, t01}, NULL},
    {"poisson_nll", {.full = true}, 2, {a, counts}, NULL},
    {"poisson_nll", {.no_log_input = true, .reduction = LAM_REDUCTION_SUM}, 2, {pr, counts}, NULL},
    {"cosine_embedding", {.margin = -0.3}, 3, {a, b, y3}, NULL},
    {"hinge_embedding", {.margin = 0.5}, 2, {a, sign}, NULL},
    {"soft_margin", {0}, 2, {a, sign}, NULL},
    {"multi_margin", {.p = 2, .weight = pw, .margin = 0.8}, 1, {a}, ti},
    {"multi_margin", {.reduction = LAM_REDUCTION_SUM}, 1, {a}, ti},
    {"multilabel_margin", {0}, 1, {a}, tml},
    {"multilabel_soft_margin", {.weight = pw}, 2, {a, t01}, NULL},
  };
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    /* The inputs torch differentiates smoothly: the first (and x2 of cosine_embedding);
     * the +-1 and count targets stay fixed. */
    gc_ctx g = {{rows[i].kind, rows[i].o, rows[i].target, NULL, NULL, false}, {0}, rows[i].n, 1};
    if (!strcmp(rows[i].kind, "cosine_embedding")) g.nvar = 2;
    for (int k = 0; k < rows[i].n; k++) g.all[k] = rows[i].xs[k];
    char what[64];
    snprintf(what, sizeof what, "%s row %zu", rows[i].kind, i);
    /* f32 is covered by the golden cases (the fixed inputs here are f64). */
    tu_gradcheck(ctx, gc_call, &g, rows[i].xs, g.nvar, 1e-6, 1e-6, 0, 0, what);
  }
  /* CTC on unnormalised log-probabilities: the exact derivative. */
  const int64_t T = 6, N = 3, C = 4;
  lam_tensor *lp = tu_rand_f64(ctx, &r, 3, (int64_t[]){T, N, C}, -3, 0);
  lam_tensor *tg = lam_tensor_from_host(ctx, LAM_I32, 2, (int64_t[]){N, 3}, (int32_t[]){1, 1, 2, 3, 2, 0, 2, 0, 0});
  lam_tensor *il = lam_tensor_from_host(ctx, LAM_I32, 1, (int64_t[]){N}, (int32_t[]){6, 5, 3});
  lam_tensor *tl = lam_tensor_from_host(ctx, LAM_I32, 1, (int64_t[]){N}, (int32_t[]){3, 2, 1});
  call_ctx cc = {"ctc", {0}, tg, il, tl, false};
  tu_gradcheck(ctx, call_loss, &cc, &lp, 1, 1e-6, 1e-6, 1, 2e-3, "ctc mean");
  cc.o.reduction = LAM_REDUCTION_NONE;
  cc.o.blank = 3;
  lam_tensor *tg3 = lam_tensor_from_host(ctx, LAM_I32, 1, (int64_t[]){6}, (int32_t[]){1, 1, 2, 0, 2, 2});
  cc.target = tg3;
  tu_gradcheck(ctx, call_loss, &cc, &lp, 1, 1e-6, 1e-6, 1, 2e-3, "ctc none, blank 3, concatenated");
  cc.log_softmax = true;
  cc.o.reduction = LAM_REDUCTION_SUM;
  tu_gradcheck(ctx, call_loss, &cc, &lp, 1, 1e-6, 1e-6, 1, 2e-3, "ctc sum through log_softmax");
  lam_tensor *all[] = {a, b, pr, t01, pw, sign, counts, y3, ti, tml, lp, tg, il, tl, tg3};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) lam_tensor_free(all[i]);
  lam_ctx_free(ctx);
}

/* ---- options ---------------------------------------------------------------------- */

static bool same(lam_tensor *x, lam_tensor *y) {
  cr_assert(x && y, "%s", lam_last_error());
  bool s = tu_bits_equal(x, y);
  lam_tensor_free(x);
  lam_tensor_free(y);
  return s;
}

Test(loss_extra, options_rule_and_defaults) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(8);
  const int64_t s[2] = {4, 3};
  lam_tensor *a = tu_rand_f32(ctx, &r, 2, s, -1, 1), *b = tu_rand_f32(ctx, &r, 2, s, -1, 1);
  lam_tensor *cnt = tu_rand_f32(ctx, &r, 2, s, 0, 4), *y = tu_rand_f32(ctx, &r, 1, (int64_t[]){4}, -1, 1);
  lam_tensor *t = lam_tensor_from_host(ctx, LAM_I32, 1, (int64_t[]){4}, (int32_t[]){0, 2, 1, 1});
  lam_loss_opts d = lam_loss_defaults(), z = {0};
  cr_assert(d.p == 0 && d.blank == 0 && !d.zero_infinity && !d.no_log_input && !d.pos_weight);
  const lam_loss_opts *forms[3] = {NULL, &z, &d};
  for (int f = 1; f < 3; f++) {
    cr_assert(same(lam_poisson_nll_loss(a, cnt, NULL), lam_poisson_nll_loss(a, cnt, forms[f])));
    cr_assert(same(lam_cosine_embedding_loss(a, b, y, NULL), lam_cosine_embedding_loss(a, b, y, forms[f])));
    cr_assert(same(lam_hinge_embedding_loss(a, b, NULL), lam_hinge_embedding_loss(a, b, forms[f])));
    cr_assert(same(lam_soft_margin_loss(a, b, NULL), lam_soft_margin_loss(a, b, forms[f])));
    cr_assert(same(lam_multi_margin_loss(a, t, NULL), lam_multi_margin_loss(a, t, forms[f])));
    cr_assert(same(lam_multilabel_soft_margin_loss(a, cnt, NULL), lam_multilabel_soft_margin_loss(a, cnt, forms[f])));
  }
  /* The documented defaults spelled out. */
  cr_assert(same(lam_multi_margin_loss(a, t, NULL), lam_multi_margin_loss(a, t, &(lam_loss_opts){.p = 1, .margin = 1})));
  cr_assert(same(lam_hinge_embedding_loss(a, b, NULL), lam_hinge_embedding_loss(a, b, &(lam_loss_opts){.margin = 1})));
  cr_assert(same(lam_cosine_embedding_loss(a, b, y, NULL),
                 lam_cosine_embedding_loss(a, b, y, &(lam_loss_opts){.margin = LAM_ZERO})));
  cr_assert(!same(lam_hinge_embedding_loss(a, b, NULL), lam_hinge_embedding_loss(a, b, &(lam_loss_opts){.margin = LAM_ZERO})),
            "LAM_ZERO is a real zero margin");
  cr_assert(same(lam_poisson_nll_loss(a, cnt, &(lam_loss_opts){.no_log_input = true}),
                 lam_poisson_nll_loss(a, cnt, &(lam_loss_opts){.no_log_input = true, .eps = 1e-8})));
  cr_assert(!same(lam_multi_margin_loss(a, t, NULL), lam_multi_margin_loss(a, t, &(lam_loss_opts){.p = 2})));
  /* The triplet loss still defaults to p 2 with p resolved per loss. */
  cr_assert(same(lam_triplet_margin_loss(a, b, cnt, NULL), lam_triplet_margin_loss(a, b, cnt, &(lam_loss_opts){.p = 2})));
  lam_tensor *all[] = {a, b, cnt, y, t};
  for (size_t i = 0; i < 5; i++) lam_tensor_free(all[i]);
  lam_ctx_free(ctx);
}

/* ---- bad input -------------------------------------------------------------------- */

Test(loss_extra, bad_input) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  lam_tensor *a = lam_tensor_zeros(ctx, LAM_F32, 2, (int64_t[]){3, 4});
  lam_tensor *a3 = lam_tensor_zeros(ctx, LAM_F32, 3, (int64_t[]){2, 3, 4});
  lam_tensor *d = lam_tensor_zeros(ctx, LAM_F64, 2, (int64_t[]){3, 4});
  lam_tensor *v3 = lam_tensor_zeros(ctx, LAM_F32, 1, (int64_t[]){3});
  lam_tensor *v2 = lam_tensor_zeros(ctx, LAM_F32, 1, (int64_t[]){2});
  lam_tensor *i3 = lam_tensor_zeros(ctx, LAM_I32, 1, (int64_t[]){3});
  lam_tensor *i34 = lam_tensor_zeros(ctx, LAM_I32, 2, (int64_t[]){3, 4});
  lam_error_clear();
  /* pos_weight */
  tu_assert_fails(lam_binary_cross_entropy(a, a, &(lam_loss_opts){.pos_weight = v3}), LAM_ERR_SHAPE,
                  "lam_binary_cross_entropy: pos_weight (f32 [3]) must be a f32 tensor that broadcasts to the input [3,4]");
  tu_assert_fails(lam_binary_cross_entropy(a, a, &(lam_loss_opts){.pos_weight = a, .from_probabilities = true}),
                  LAM_ERR_INVALID_ARGUMENT, "pos_weight is only taken with logits");
  tu_assert_fails(lam_binary_cross_entropy(a, a, &(lam_loss_opts){.pos_weight = d}), LAM_ERR_SHAPE, "f64");
  /* poisson */
  tu_assert_fails(lam_poisson_nll_loss(a, d, NULL), LAM_ERR_DTYPE, "lam_poisson_nll_loss");
  tu_assert_fails(lam_poisson_nll_loss(a, a, &(lam_loss_opts){.eps = -1}), LAM_ERR_INVALID_ARGUMENT, "eps");
  /* embeddings and margins */
  lam_error_clear();
  tu_assert_fails(lam_cosine_embedding_loss(a, a, NULL, NULL), LAM_ERR_NULL, "y");
  tu_assert_fails(lam_cosine_embedding_loss(a, a, v2, NULL), LAM_ERR_SHAPE, "one value per row");
  tu_assert_fails(lam_cosine_embedding_loss(a3, a3, v2, NULL), LAM_ERR_SHAPE, "[N, D] or [D]");
  tu_assert_fails(lam_hinge_embedding_loss(a, a, &(lam_loss_opts){.margin = INFINITY}), LAM_ERR_INVALID_ARGUMENT,
                  "margin");
  tu_assert_fails(lam_soft_margin_loss(a, v3, NULL), LAM_ERR_SHAPE, "lam_soft_margin_loss");
  tu_assert_fails(lam_multi_margin_loss(a, v3, NULL), LAM_ERR_DTYPE, "i32");
  tu_assert_fails(lam_multi_margin_loss(a, i34, NULL), LAM_ERR_SHAPE, "one class per row");
  tu_assert_fails(lam_multi_margin_loss(a, i3, &(lam_loss_opts){.p = 3}), LAM_ERR_INVALID_ARGUMENT, "p 3 must be 1 or 2");
  tu_assert_fails(lam_multi_margin_loss(a, i3, &(lam_loss_opts){.weight = v3}), LAM_ERR_SHAPE, "4 class weights");
  tu_assert_fails(lam_multilabel_margin_loss(a, i3, NULL), LAM_ERR_SHAPE, "must have input's shape");
  tu_assert_fails(lam_multilabel_margin_loss(a3, a3, NULL), LAM_ERR_SHAPE, "[N, C] or [C]");
  tu_assert_fails(lam_multilabel_soft_margin_loss(a, d, NULL), LAM_ERR_DTYPE, "lam_multilabel_soft_margin_loss");
  tu_assert_fails(lam_multilabel_soft_margin_loss(a, a, &(lam_loss_opts){.reduction = (lam_reduction)7}),
                  LAM_ERR_INVALID_ARGUMENT, "reduction 7");
  /* ctc: log_probs [2, 3, 4] = T 2, N 3, C 4 */
  lam_tensor *il = lam_tensor_from_host(ctx, LAM_I32, 1, (int64_t[]){3}, (int32_t[]){2, 2, 1});
  lam_tensor *tl = lam_tensor_from_host(ctx, LAM_I32, 1, (int64_t[]){3}, (int32_t[]){1, 2, 0});
  lam_tensor *tg = lam_tensor_from_host(ctx, LAM_I32, 2, (int64_t[]){3, 2}, (int32_t[]){1, 0, 2, 3, 0, 0});
  lam_tensor *il_bad = lam_tensor_from_host(ctx, LAM_I32, 1, (int64_t[]){3}, (int32_t[]){2, 3, 1});
  lam_tensor *tl_bad = lam_tensor_from_host(ctx, LAM_I32, 1, (int64_t[]){3}, (int32_t[]){1, 3, 0});
  lam_tensor *tg_bad = lam_tensor_from_host(ctx, LAM_I32, 2, (int64_t[]){3, 2}, (int32_t[]){1, 0, 4, 3, 0, 0});
  lam_tensor *tg_cat = lam_tensor_from_host(ctx, LAM_I32, 1, (int64_t[]){2}, (int32_t[]){1, 2});
  lam_error_clear();
  lam_tensor *ok = lam_ctc_loss(a3, tg, il, tl, NULL);
  cr_assert(ok, "%s", lam_last_error());
  lam_tensor_free(ok);
  tu_assert_fails(lam_ctc_loss(NULL, tg, il, tl, NULL), LAM_ERR_NULL, "log_probs");
  lam_error_clear();
  tu_assert_fails(lam_ctc_loss(a3, tg, NULL, tl, NULL), LAM_ERR_NULL, "input_lengths");
  tu_assert_fails(lam_ctc_loss(a, tg, il, tl, NULL), LAM_ERR_SHAPE, "targets [3,2] must be [N, S] or 1-D");
  tu_assert_fails(lam_ctc_loss(a3, v3, il, tl, NULL), LAM_ERR_DTYPE, "targets is f32");
  tu_assert_fails(lam_ctc_loss(a3, tg, i34, tl, NULL), LAM_ERR_SHAPE, "input_lengths [3,4]");
  tu_assert_fails(lam_ctc_loss(a3, tg, il_bad, tl, NULL), LAM_ERR_INVALID_ARGUMENT, "input_lengths[1] = 3 is not in [1, 2]");
  tu_assert_fails(lam_ctc_loss(a3, tg, il, tl_bad, NULL), LAM_ERR_INVALID_ARGUMENT, "target_lengths[1] = 3");
  tu_assert_fails(lam_ctc_loss(a3, tg_bad, il, tl, NULL), LAM_ERR_INVALID_ARGUMENT, "target 4 of sample 1");
  tu_assert_fails(lam_ctc_loss(a3, tg, il, tl, &(lam_loss_opts){.blank = 1}), LAM_ERR_INVALID_ARGUMENT,
                  "other than the blank 1");
  tu_assert_fails(lam_ctc_loss(a3, tg, il, tl, &(lam_loss_opts){.blank = 4}), LAM_ERR_INVALID_ARGUMENT, "blank 4");
  tu_assert_fails(lam_ctc_loss(a3, tg_cat, il, tl, NULL), LAM_ERR_INVALID_ARGUMENT, "add up to 3, more than the 2");
  lam_tensor *h3 = lam_tensor_zeros(ctx, LAM_I32, 3, (int64_t[]){2, 3, 4});
  tu_assert_fails(lam_ctc_loss(h3, tg, il, tl, NULL), LAM_ERR_DTYPE, "need f32 or f64");
  tu_assert_fails(lam_ctc_loss(a3, tg, il, tl, &(lam_loss_opts){.reduction = LAM_REDUCTION_BATCHMEAN}),
                  LAM_ERR_INVALID_ARGUMENT, "reduction 3");
  lam_tensor *all[] = {a, a3, d, v3, v2, i3, i34, il, tl, tg, il_bad, tl_bad, tg_bad, tg_cat, h3};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) lam_tensor_free(all[i]);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}
