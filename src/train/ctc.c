/* train/ctc.c: lam_ctc_loss, connectionist temporal classification as
 * torch.nn.functional.ctc_loss, with its backward rule.
 *
 * The host checks the arguments, reads the lengths and the targets (small
 * i32 tensors: one synchronisation, as PyTorch's, which also reads the
 * lengths on the host) to validate them and to build each sample's extended
 * label sequence (blank, l1, blank, l2, ..., blank), and uploads that table.
 * The per-sample negative log-likelihoods come from the forward dynamic
 * program of cl/ctc.cl (one work-group per sample, a loop over time); this
 * op is recorded on the tape with alpha saved, and its backward rule runs
 * the backward program (beta) and the gradient kernel. The reductions are
 * public ops over the per-sample losses, so their gradients come for free. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autodiff/tape.h"
#include "internal.h"
#include "lamina/elementwise.h"
#include "lamina/loss.h"
#include "lamina/reduce.h"
#include "lamina/shape.h"
#include "train/loss_internal.h"

/* Work-group size of the alpha/beta programs: a power of two covering the
 * extended length, at most 64 on CPUs (PoCL runs a group's items as a loop)
 * and 256 elsewhere, and within the device's limit. */
static size_t lam__ctc_local(lam_ctx *ctx, cl_kernel k, int64_t L) {
  size_t cap = ctx->tuning.ctc_wg_cap, kmax = 0;
  if (ctx->info.max_work_group_size && ctx->info.max_work_group_size < cap) cap = ctx->info.max_work_group_size;
  if (clGetKernelWorkGroupInfo(k, ctx->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof kmax, &kmax, NULL) ==
          CL_SUCCESS && kmax && kmax < cap)
    cap = kmax;
  size_t l = 1;
  while (l < (size_t)L && l * 2 <= cap) l *= 2;
  return l;
}

/* node->i: T, N, C, L, zero_inf. saved: lp [T, N, C], alpha [N, T, L], nll [N], tab. */
static lam_status lam__ctc_backward(lam__node *node, lam_tensor *gy, lam_tensor **gin) {
  if (!lam__node_needs(node, 0)) return LAM_OK;
  lam_tensor *lp = node->saved[0], *alpha = node->saved[1], *nll = node->saved[2], *tab = node->saved[3];
  const int64_t T = node->i[0], N = node->i[1], C = node->i[2], L = node->i[3], zinf = node->i[4];
  lam_ctx *ctx = lp->ctx;
  const char *fn = node->op;
  cl_kernel kb, kg;
  lam_status st = lam__kernel_dt(ctx, "ctc", "ctc_beta", lp->dtype, NULL, &kb);
  if (st == LAM_OK) st = lam__kernel_dt(ctx, "ctc", "ctc_grad", lp->dtype, NULL, &kg);
  if (st != LAM_OK) return st;
  lam_tensor *beta = lam__tensor_new(ctx, lp->dtype, 3, alpha->shape, fn);
  lam_tensor *dx = beta ? lam__tensor_new(ctx, lp->dtype, 3, lp->shape, fn) : NULL;
  if (!dx) {
    lam_tensor_free(beta);
    return lam_last_status();
  }
  lam__arg ab[] = {LAM__ARG_T(lp), LAM__ARG_T(beta), LAM__ARG_T(tab), lam__arg_int(T), lam__arg_int(N),
                   lam__arg_int(C), lam__arg_int(L)};
  const size_t local = lam__ctc_local(ctx, kb, L), global = (size_t)N * local;
  st = lam__launch(ctx, kb, fn, (int)(sizeof ab / sizeof ab[0]), ab, 1, &global, &local);
  if (st == LAM_OK) {
    lam__arg ag[] = {LAM__ARG_T(lp),  LAM__ARG_T(alpha), LAM__ARG_T(beta), LAM__ARG_T(nll),
                     LAM__ARG_T(gy),  LAM__ARG_T(dx),    LAM__ARG_T(tab),  lam__arg_int(T),
                     lam__arg_int(N), lam__arg_int(C),   lam__arg_int(L),  lam__arg_int(zinf)};
    st = lam__launch_1d(ctx, kg, fn, (int)(sizeof ag / sizeof ag[0]), ag, (size_t)(T * N));
  }
  lam_tensor_free(beta);
  if (st != LAM_OK) {
    lam_tensor_free(dx);
    return st;
  }
  gin[0] = dx;
  return LAM_OK;
}

/* Reads a small i32 tensor into a new host array (NULL with a message on failure). */
static int32_t *lam__ctc_read(lam_tensor *t, const char *fn) {
  int32_t *v = malloc((size_t)t->numel * sizeof *v);
  if (!v) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn), NULL;
  if (lam_tensor_to_host(t, v, (size_t)t->numel * sizeof *v) != LAM_OK) {
    free(v);
    return NULL;
  }
  return v;
}

static lam_status lam__ctc_check_lengths(lam_tensor *t, const char *name, int64_t n, const char *fn) {
  if (!t) return lam__null_input(fn, name), lam_last_status();
  char b[LAM__SHAPE_STR];
  if (t->dtype != LAM_I32)
    return lam__fail(LAM_ERR_DTYPE, "%s: %s is %s, need i32", fn, name, lam_dtype_name(t->dtype));
  if (t->ndim > 1 || t->numel != n)
    return lam__fail(LAM_ERR_SHAPE, "%s: %s %s must hold one length per sample (%lld)", fn, name,
                     lam__shape_str(t->ndim, t->shape, b), (long long)n);
  return LAM_OK;
}

/* The per-sample losses [N] (zero_infinity applied), recorded on the tape. */
static lam_tensor *lam__ctc_nll(lam__scope *s, lam_tensor *lp3, const int32_t *il, const int32_t *tl,
                                const int32_t *tg, bool padded, int64_t S, const lam_loss_opts *o,
                                const char *fn) {
  lam_ctx *ctx = lp3->ctx;
  const int64_t T = lp3->shape[0], N = lp3->shape[1], C = lp3->shape[2];
  int64_t maxl = 0;
  for (int64_t n = 0; n < N; n++) maxl = tl[n] > maxl ? tl[n] : maxl;
  const int64_t L = 2 * maxl + 1, ntab = 2 * N + N * L;
  if ((double)N * (double)T * (double)L > (double)LAM__MAX_NUMEL || (double)ntab > (double)LAM__MAX_NUMEL)
    return lam__fail(LAM_ERR_SHAPE, "%s: the dynamic program [%lld, %lld, %lld] is too large", fn,
                     (long long)N, (long long)T, (long long)L), NULL;
  int32_t *h = malloc((size_t)ntab * sizeof *h);
  if (!h) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn), NULL;
  int64_t off = 0;
  for (int64_t n = 0; n < N; n++) {
    h[n] = il[n];
    h[N + n] = (int32_t)(2 * tl[n] + 1);
    int32_t *lab = h + 2 * N + n * L;
    const int32_t *tn = tg + (padded ? n * S : off);
    for (int64_t k = 0; k < L; k++) lab[k] = o->blank;
    for (int64_t k = 0; k < tl[n]; k++) lab[2 * k + 1] = tn[k];
    off += tl[n];
  }
  lam_tensor *tab = K(s, lam_tensor_from_host(ctx, LAM_I32, 1, &ntab, h));
  free(h);
  const int64_t ashape[3] = {N, T, L};
  lam_tensor *alpha = K(s, tab ? lam__tensor_new(ctx, lp3->dtype, 3, ashape, fn) : NULL);
  lam_tensor *nll = K(s, alpha ? lam__tensor_new(ctx, lp3->dtype, 1, &N, fn) : NULL);
  lam_tensor *out = nll ? lam__tensor_new(ctx, lp3->dtype, 1, &N, fn) : NULL;
  if (!out) return NULL;
  cl_kernel k;
  lam_status st = lam__kernel_dt(ctx, "ctc", "ctc_alpha", lp3->dtype, NULL, &k);
  if (st == LAM_OK) {
    lam__arg a[] = {LAM__ARG_T(lp3), LAM__ARG_T(alpha), LAM__ARG_T(nll), LAM__ARG_T(out), LAM__ARG_T(tab),
                    lam__arg_int(T), lam__arg_int(N), lam__arg_int(C), lam__arg_int(L),
                    lam__arg_int(o->zero_infinity ? 1 : 0)};
    const size_t local = lam__ctc_local(ctx, k, L), global = (size_t)N * local;
    st = lam__launch(ctx, k, fn, (int)(sizeof a / sizeof a[0]), a, 1, &global, &local);
  }
  if (st != LAM_OK) {
    lam_tensor_free(out);
    return NULL;
  }
  lam__node *node = lam__tape_record(out, fn, lam__ctc_backward, 1, &lp3);
  if (node) {
    lam__node_save(node, lp3);
    lam__node_save(node, alpha);
    lam__node_save(node, nll);
    lam__node_save(node, tab);
    node->i[0] = T, node->i[1] = N, node->i[2] = C, node->i[3] = L;
    node->i[4] = o->zero_infinity ? 1 : 0;
  }
  return K(s, out);
}

lam_tensor *lam_ctc_loss(lam_tensor *log_probs, lam_tensor *targets, lam_tensor *input_lengths,
                         lam_tensor *target_lengths, const lam_loss_opts *opts) {
  const char *fn = "lam_ctc_loss";
  lam_loss_opts o = lam__loss_opts(opts);
  if (!log_probs) return lam__null_input(fn, "log_probs");
  if (!targets) return lam__null_input(fn, "targets");
  char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR];
  if (log_probs->dtype != LAM_F32 && log_probs->dtype != LAM_F64)
    return lam__fail(LAM_ERR_DTYPE, "%s: log_probs is %s, need f32 or f64", fn,
                     lam_dtype_name(log_probs->dtype)), NULL;
  if (log_probs->ndim != 2 && log_probs->ndim != 3)
    return lam__fail(LAM_ERR_SHAPE, "%s: log_probs must be [T, N, C] or [T, C], got %s", fn,
                     lam__shape_str(log_probs->ndim, log_probs->shape, b1)), NULL;
  const bool batched = log_probs->ndim == 3;
  const int64_t T = log_probs->shape[0], N = batched ? log_probs->shape[1] : 1,
                C = log_probs->shape[log_probs->ndim - 1];
  if (targets->dtype != LAM_I32)
    return lam__fail(LAM_ERR_DTYPE, "%s: targets is %s, need i32 labels", fn,
                     lam_dtype_name(targets->dtype)), NULL;
  const bool padded = targets->ndim == 2 || !batched;
  if (targets->ndim > 2 || (!batched && targets->ndim != 1) || (targets->ndim == 2 && targets->shape[0] != N))
    return lam__fail(LAM_ERR_SHAPE, "%s: targets %s must be [N, S] or 1-D (concatenated) for log_probs %s", fn,
                     lam__shape_str(targets->ndim, targets->shape, b1),
                     lam__shape_str(log_probs->ndim, log_probs->shape, b2)), NULL;
  if (lam__ctc_check_lengths(input_lengths, "input_lengths", N, fn) != LAM_OK ||
      lam__ctc_check_lengths(target_lengths, "target_lengths", N, fn) != LAM_OK ||
      lam__loss_check_reduction(o.reduction, false, fn) != LAM_OK)
    return NULL;
  if (o.blank < 0 || o.blank >= C)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: blank %d is not a class of [0, %lld)", fn, o.blank,
                     (long long)C), NULL;
  if (input_lengths->ctx != log_probs->ctx || target_lengths->ctx != log_probs->ctx || targets->ctx != log_probs->ctx)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: the tensors belong to different contexts", fn), NULL;
  const int64_t S = targets->ndim == 2 ? targets->shape[1] : targets->numel;
  int32_t *il = lam__ctc_read(input_lengths, fn);
  int32_t *tl = il ? lam__ctc_read(target_lengths, fn) : NULL;
  int32_t *tg = tl ? lam__ctc_read(targets, fn) : NULL;
  lam_tensor *r = NULL;
  if (!tg) goto done;
  int64_t total = 0;
  for (int64_t n = 0; n < N; n++) {
    if (il[n] < 1 || il[n] > T) {
      lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: input_lengths[%lld] = %d is not in [1, %lld]", fn, (long long)n,
                il[n], (long long)T);
      goto done;
    }
    if (tl[n] < 0 || (padded && tl[n] > S)) {
      lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: target_lengths[%lld] = %d is not in [0, %lld]", fn, (long long)n,
                tl[n], (long long)S);
      goto done;
    }
    const int64_t start = padded ? n * S : total;
    total += tl[n];
    if (!padded && total > S) {
      lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: target_lengths add up to %lld, more than the %lld targets", fn,
                (long long)total, (long long)S);
      goto done;
    }
    for (int64_t k = 0; k < tl[n]; k++) {
      const int32_t v = tg[start + k];
      if (v < 0 || v >= C || v == o.blank) {
        lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: target %d of sample %lld is not a label of [0, %lld) other than "
                  "the blank %d", fn, v, (long long)n, (long long)C, o.blank);
        goto done;
      }
    }
  }
  lam__scope s = {{0}, 0};
  lam_tensor *lp3 = batched ? log_probs : K(&s, lam_reshape(log_probs, 3, (int64_t[]){T, 1, C}));
  lam_tensor *per = lp3 ? lam__ctc_nll(&s, lp3, il, tl, tg, padded, S, &o, fn) : NULL;
  if (per && o.reduction == LAM_REDUCTION_MEAN) {
    /* Each loss over its target length (at least 1), then the batch mean, as PyTorch. */
    double *d = malloc((size_t)N * sizeof *d);
    if (!d) {
      lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
      r = lam__done(&s, NULL);
      goto done;
    }
    float *f = (float *)d;
    for (int64_t n = 0; n < N; n++) {
      const double v = tl[n] > 1 ? (double)tl[n] : 1.0;
      if (log_probs->dtype == LAM_F64) d[n] = v;
      else f[n] = (float)v;
    }
    lam_tensor *len = K(&s, lam_tensor_from_host(log_probs->ctx, log_probs->dtype, 1, &N, d));
    free(d);
    per = K(&s, lam_div(per, len));
  }
  if (per && !batched && o.reduction == LAM_REDUCTION_NONE) per = K(&s, lam_reshape(per, 0, NULL));
  r = lam__done(&s, per ? lam__loss_reduce(&s, per, o.reduction, fn) : NULL);
done:
  free(il), free(tl), free(tg);
  return r;
}
