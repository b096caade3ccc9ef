/* train/schedule.c: learning-rate schedules (plain values evaluated in
 * closed form on the host, matching PyTorch's schedulers and optax) and
 * global-norm gradient clipping on the device (cl/optim.cl: per-leaf
 * partial sums of squares, one single-work-group reduction, a scale kernel
 * per leaf that computes the coefficient itself; one host read of the
 * total at the end). */
#include <math.h>
#include <stdlib.h>

#include "internal.h"
#include "lamina/optim.h"

#define LAM__PI 3.14159265358979323846

lam_schedule lam_schedule_constant(double lr) {
  return (lam_schedule){.kind = LAM_SCHEDULE_CONSTANT, .lr = lr};
}

lam_schedule lam_schedule_step(double lr, int64_t step_size, double gamma) {
  return (lam_schedule){.kind = LAM_SCHEDULE_STEP, .lr = lr, .step_size = step_size, .gamma = gamma};
}

lam_schedule lam_schedule_exponential(double lr, double gamma) {
  return (lam_schedule){.kind = LAM_SCHEDULE_EXPONENTIAL, .lr = lr, .gamma = gamma};
}

lam_schedule lam_schedule_cosine(double lr, int64_t decay_steps, double min_lr) {
  return (lam_schedule){.kind = LAM_SCHEDULE_COSINE, .lr = lr, .decay_steps = decay_steps,
                        .min_lr = min_lr};
}

lam_schedule lam_schedule_warmup_cosine(double init_lr, double peak_lr, int64_t warmup_steps,
                                        int64_t decay_steps, double min_lr) {
  return (lam_schedule){.kind = LAM_SCHEDULE_WARMUP_COSINE, .lr = peak_lr, .init_lr = init_lr,
                        .warmup_steps = warmup_steps, .decay_steps = decay_steps,
                        .min_lr = min_lr};
}

lam_schedule lam_schedule_linear(double lr, double start_factor, double end_factor,
                                 int64_t total_steps) {
  return (lam_schedule){.kind = LAM_SCHEDULE_LINEAR, .lr = lr, .start_factor = start_factor,
                        .end_factor = end_factor, .decay_steps = total_steps};
}

static bool lam__rate_ok(double x) { return x >= 0 && isfinite(x); }

lam_status lam_schedule_check(const lam_schedule *s) {
  const char *fn = "lam_schedule_check";
  if (!s) return lam__fail(LAM_ERR_NULL, "%s: schedule is NULL", fn);
  if (!lam__rate_ok(s->lr))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: lr = %g must be >= 0 and finite", fn, s->lr);
  switch (s->kind) {
    case LAM_SCHEDULE_CONSTANT: return LAM_OK;
    case LAM_SCHEDULE_STEP:
      if (s->step_size < 1)
        return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: step_size = %lld must be >= 1", fn,
                         (long long)s->step_size);
      /* fall through */
    case LAM_SCHEDULE_EXPONENTIAL:
      if (!lam__rate_ok(s->gamma))
        return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: gamma = %g must be >= 0 and finite", fn,
                         s->gamma);
      return LAM_OK;
    case LAM_SCHEDULE_WARMUP_COSINE:
      if (!lam__rate_ok(s->init_lr))
        return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: init_lr = %g must be >= 0 and finite", fn,
                         s->init_lr);
      if (s->warmup_steps < 0 || s->decay_steps <= s->warmup_steps)
        return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: warmup_steps = %lld and decay_steps = %lld: "
                         "need 0 <= warmup_steps < decay_steps", fn, (long long)s->warmup_steps,
                         (long long)s->decay_steps);
      /* fall through */
    case LAM_SCHEDULE_COSINE:
      if (s->decay_steps < 1)
        return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: decay_steps = %lld must be >= 1", fn,
                         (long long)s->decay_steps);
      if (!lam__rate_ok(s->min_lr))
        return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: min_lr = %g must be >= 0 and finite", fn,
                         s->min_lr);
      return LAM_OK;
    case LAM_SCHEDULE_LINEAR:
      if (s->decay_steps < 1)
        return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: total_steps = %lld must be >= 1", fn,
                         (long long)s->decay_steps);
      if (!lam__rate_ok(s->start_factor) || !lam__rate_ok(s->end_factor))
        return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: start_factor = %g and end_factor = %g must "
                         "be >= 0 and finite", fn, s->start_factor, s->end_factor);
      return LAM_OK;
  }
  return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: unknown schedule kind %d", fn, (int)s->kind);
}

/* Cosine from hi to lo over T steps (t in [0, T]), then lo. */
static double lam__cosine(double hi, double lo, int64_t t, int64_t T) {
  if (t >= T) return lo;
  return lo + (hi - lo) * (1 + cos(LAM__PI * (double)t / (double)T)) / 2;
}

double lam_schedule_lr(const lam_schedule *s, int64_t step) {
  if (lam_schedule_check(s) != LAM_OK) return NAN;
  int64_t t = step < 0 ? 0 : step;
  switch (s->kind) {
    case LAM_SCHEDULE_CONSTANT: return s->lr;
    case LAM_SCHEDULE_STEP: return s->lr * pow(s->gamma, (double)(t / s->step_size));
    case LAM_SCHEDULE_EXPONENTIAL: return s->lr * pow(s->gamma, (double)t);
    case LAM_SCHEDULE_COSINE: return lam__cosine(s->lr, s->min_lr, t, s->decay_steps);
    case LAM_SCHEDULE_WARMUP_COSINE:
      if (t < s->warmup_steps)
        return s->init_lr + (s->lr - s->init_lr) * (double)t / (double)s->warmup_steps;
      return lam__cosine(s->lr, s->min_lr, t - s->warmup_steps, s->decay_steps - s->warmup_steps);
    case LAM_SCHEDULE_LINEAR: {
      int64_t c = t < s->decay_steps ? t : s->decay_steps;
      return s->lr * (s->start_factor +
                      (s->end_factor - s->start_factor) * (double)c / (double)s->decay_steps);
    }
  }
  return NAN;
}

/* ---- clip_grad_norm ------------------------------------------------------------ */

/* Partials per leaf: enough work-items to fill a device, each summing at
 * least ~256 elements so the reduction stays small. */
static int lam__parts(int64_t n) {
  int64_t p = (n + 255) / 256;
  return (int)(p < 1 ? 1 : p > 4096 ? 4096 : p);
}

lam_status lam_grad_clip_norm(lam_ptree *grads, double max_norm, double *total_norm_out) {
  const char *fn = "lam_grad_clip_norm";
  if (!grads) return lam__fail(LAM_ERR_NULL, "%s: grads is NULL", fn);
  if (!(max_norm >= 0) || !isfinite(max_norm))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: max_norm = %g must be >= 0 and finite", fn,
                     max_norm);
  int n = lam_ptree_leaf_count(grads);
  if (n == 0) {
    if (total_norm_out) *total_norm_out = 0;
    return LAM_OK;
  }
  const char *path0;
  lam_tensor *g0;
  lam_ptree_leaf(grads, 0, &path0, &g0);
  lam_ctx *ctx = g0->ctx;
  lam_dtype dt = g0->dtype;
  int64_t total_parts = 0;
  for (int i = 0; i < n; i++) {
    const char *path;
    lam_tensor *g;
    lam_ptree_leaf(grads, i, &path, &g);
    if (!lam_dtype_is_float(g->dtype) || g->dtype != dt)
      return lam__fail(LAM_ERR_DTYPE, "%s: gradient \"%s\" is %s; leaves must share one float "
                       "dtype (\"%s\" is %s)", fn, path, lam_dtype_name(g->dtype), path0,
                       lam_dtype_name(dt));
    if (g->ctx != ctx)
      return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: gradient \"%s\" is on another context than "
                       "\"%s\"", fn, path, path0);
    total_parts += lam__parts(g->numel);
  }
  if (total_parts > LAM__MAX_NUMEL)
    return lam__fail(LAM_ERR_OUT_OF_MEMORY, "%s: %d leaves are too many", fn, n);
  cl_kernel kp, kf, ks;
  lam_status st = lam__kernel_dt(ctx, "optim", "sumsq_partial", dt, NULL, &kp);
  if (st == LAM_OK) st = lam__kernel_dt(ctx, "optim", "sumsq_final", dt, NULL, &kf);
  if (st == LAM_OK) st = lam__kernel_dt(ctx, "optim", "clip_scale", dt, NULL, &ks);
  if (st != LAM_OK) return st;
  /* Partial sums and the total are kept in ACC (f32 for f16 and f32, f64 for f64). */
  lam_dtype acc = dt == LAM_F64 ? LAM_F64 : LAM_F32;
  lam_tensor *partial = lam__tensor_new(ctx, acc, 1, &total_parts, fn);
  lam_tensor *total = lam__tensor_new(ctx, acc, 1, (int64_t[]){1}, fn);
  if (!partial || !total) {
    st = lam_last_status();
    goto done;
  }
  int64_t off = 0;
  for (int i = 0; i < n && st == LAM_OK; i++) {
    lam_tensor *g;
    lam_ptree_leaf(grads, i, NULL, &g);
    int parts = lam__parts(g->numel);
    lam__arg a[] = {LAM__ARG_T(g), lam__arg_int(g->numel), lam__arg_mem(partial->buf->mem),
                    lam__arg_int((int64_t)partial->offset + off), lam__arg_int(parts)};
    st = lam__launch_1d(ctx, kp, fn, 6, a, (size_t)parts);
    off += parts;
  }
  if (st == LAM_OK) {
    size_t w = ctx->info.max_work_group_size < 256 ? ctx->info.max_work_group_size : 256;
    lam__arg a[] = {lam__arg_mem(partial->buf->mem), lam__arg_int(total_parts),
                    lam__arg_mem(total->buf->mem), lam__arg_local(w * lam_dtype_size(acc))};
    /* partial and total come fresh from lam__tensor_new: their offsets are 0. */
    st = lam__launch(ctx, kf, fn, 4, a, 1, &w, &w);
  }
  for (int i = 0; i < n && st == LAM_OK; i++) {
    lam_tensor *g;
    lam_ptree_leaf(grads, i, NULL, &g);
    lam__arg a[] = {LAM__ARG_T(g), lam__arg_int(g->numel), lam__arg_mem(total->buf->mem),
                    lam__arg_real(dt, max_norm)};
    st = lam__launch_1d(ctx, ks, fn, 5, a, (size_t)g->numel);
  }
  if (st == LAM_OK) {
    double sumsq;
    st = lam_tensor_item(total, &sumsq);
    if (st == LAM_OK && total_norm_out) *total_norm_out = sqrt(sumsq);
  }
done:
  lam_tensor_free(partial);
  lam_tensor_free(total);
  return st;
}
