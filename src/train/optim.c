/* train/optim.c: optimizers on parameter trees (SGD, Adam, AdamW, RMSprop,
 * Adagrad, Lion), their per-parameter state, and state export/import for
 * checkpoints. Each update is one fused in-place kernel of cl/optim.cl per
 * parameter leaf; the host only computes step-dependent scalars (bias
 * corrections, decayed rates) in double, as PyTorch does in Python. State is
 * created lazily the first time a path gets a gradient and is found again by
 * path through a small open-addressing hash table. Schedules and gradient
 * clipping live in schedule.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "lamina/optim.h"
#include "lamina/ptree.h"

#define LAM__MAX_SLOTS 3

typedef struct {
  char *path;
  int64_t step; /* updates applied to this parameter (PyTorch's state["step"]) */
  lam_tensor *slot[LAM__MAX_SLOTS];
} lam__pstate;

/* Path -> index hash (open addressing, linear probing, power-of-two size). */
typedef struct {
  int *idx; /* -1 empty */
  int cap;
} lam__pindex;

struct lam_optimizer {
  lam_optim_kind kind;
  union {
    lam_sgd_opts sgd;
    lam_adam_opts adam;
    lam_rmsprop_opts rms;
    lam_adagrad_opts ada;
    lam_lion_opts lion;
  } o;
  bool has_schedule;
  lam_schedule schedule;
  int64_t step_count;
  lam__pstate *st;
  int n_st, cap_st;
  lam__pindex index;
};

/* ---- small helpers -------------------------------------------------------- */

static uint64_t lam__hash(const char *s) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

/* Returns the slot of key in the index (found or the empty slot to use). */
static int lam__pindex_probe(const lam__pindex *ix, const char *key, const char *const *keys_of,
                             const lam__pstate *st) {
  int mask = ix->cap - 1;
  int pos = (int)(lam__hash(key) & (uint64_t)mask);
  for (;;) {
    int e = ix->idx[pos];
    if (e < 0) return pos;
    const char *k = keys_of ? keys_of[e] : st[e].path;
    if (strcmp(k, key) == 0) return pos;
    pos = (pos + 1) & mask;
  }
}

/* Replaces the index by an empty one with room for n keys. */
static bool lam__pindex_reserve(lam__pindex *ix, int n) {
  int cap = 16;
  while (cap < 2 * n + 2) cap *= 2;
  int *idx = malloc((size_t)cap * sizeof *idx);
  if (!idx) return false;
  for (int i = 0; i < cap; i++) idx[i] = -1;
  free(ix->idx);
  ix->idx = idx;
  ix->cap = cap;
  return true;
}

/* Rebuilds the index for n keys (keys_of[i] or st[i].path). */
static bool lam__pindex_build(lam__pindex *ix, int n, const char *const *keys_of,
                              const lam__pstate *st) {
  if (!lam__pindex_reserve(ix, n)) return false;
  for (int i = 0; i < n; i++) {
    int pos = lam__pindex_probe(ix, keys_of ? keys_of[i] : st[i].path, keys_of, st);
    ix->idx[pos] = i;
  }
  return true;
}

static int lam__pindex_find(const lam__pindex *ix, const char *key, const char *const *keys_of,
                            const lam__pstate *st) {
  if (!ix->idx) return -1;
  return ix->idx[lam__pindex_probe(ix, key, keys_of, st)];
}

static bool lam__nonneg(double x) { return x >= 0 && isfinite(x); }

static const char *const lam__kind_names[] = {"sgd", "adam", "adamw", "rmsprop", "adagrad", "lion"};

/* Slot names per kind in kernel-argument order. */
static const char *const lam__slot_names[][LAM__MAX_SLOTS] = {
    [LAM_OPTIM_SGD] = {"momentum_buffer", NULL, NULL},
    [LAM_OPTIM_ADAM] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
    [LAM_OPTIM_ADAMW] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
    [LAM_OPTIM_RMSPROP] = {"square_avg", "grad_avg", "momentum_buffer"},
    [LAM_OPTIM_ADAGRAD] = {"sum", NULL, NULL},
    [LAM_OPTIM_LION] = {"exp_avg", NULL, NULL},
};

/* AdamW shares Adam's kernel. */
static const char *lam__kernel_name(const lam_optimizer *opt) {
  return lam__kind_names[opt->kind == LAM_OPTIM_ADAMW ? LAM_OPTIM_ADAM : opt->kind];
}

/* Whether slot s is used by this optimizer's configuration. */
static bool lam__slot_active(const lam_optimizer *opt, int s) {
  switch (opt->kind) {
    case LAM_OPTIM_SGD: return s == 0 && opt->o.sgd.momentum != 0;
    case LAM_OPTIM_ADAM:
    case LAM_OPTIM_ADAMW: return s < 2 || (s == 2 && opt->o.adam.amsgrad);
    case LAM_OPTIM_RMSPROP:
      return s == 0 || (s == 1 && opt->o.rms.centered) || (s == 2 && opt->o.rms.momentum > 0);
    case LAM_OPTIM_ADAGRAD:
    case LAM_OPTIM_LION: return s == 0;
  }
  return false;
}

static double lam__init_value(const lam_optimizer *opt, int s) {
  return opt->kind == LAM_OPTIM_ADAGRAD && s == 0 ? opt->o.ada.initial_accumulator_value : 0.0;
}

static void lam__pstate_clear(lam__pstate *p) {
  free(p->path);
  for (int s = 0; s < LAM__MAX_SLOTS; s++) lam_tensor_free(p->slot[s]);
  memset(p, 0, sizeof *p);
}

/* ---- construction ----------------------------------------------------------- */

/* Resolves each struct under the options rule: a plain 0 takes PyTorch's
 * default, LAM_ZERO (and any -0.0) becomes +0 so descriptions read "0". */
#define F lam__opt_f64

static lam_sgd_opts lam__sgd_resolve(lam_sgd_opts o) {
  o.lr = F(o.lr, 1e-3);
  o.momentum = F(o.momentum, 0);
  o.dampening = F(o.dampening, 0);
  o.weight_decay = F(o.weight_decay, 0);
  return o;
}
static lam_adam_opts lam__adam_resolve(lam_adam_opts o, double wd) {
  o.lr = F(o.lr, 1e-3);
  o.beta1 = F(o.beta1, 0.9);
  o.beta2 = F(o.beta2, 0.999);
  o.eps = F(o.eps, 1e-8);
  o.weight_decay = F(o.weight_decay, wd);
  return o;
}
static lam_rmsprop_opts lam__rmsprop_resolve(lam_rmsprop_opts o) {
  o.lr = F(o.lr, 1e-2);
  o.alpha = F(o.alpha, 0.99);
  o.eps = F(o.eps, 1e-8);
  o.weight_decay = F(o.weight_decay, 0);
  o.momentum = F(o.momentum, 0);
  return o;
}
static lam_adagrad_opts lam__adagrad_resolve(lam_adagrad_opts o) {
  o.lr = F(o.lr, 1e-2);
  o.lr_decay = F(o.lr_decay, 0);
  o.weight_decay = F(o.weight_decay, 0);
  o.initial_accumulator_value = F(o.initial_accumulator_value, 0);
  o.eps = F(o.eps, 1e-10);
  return o;
}
static lam_lion_opts lam__lion_resolve(lam_lion_opts o) {
  o.lr = F(o.lr, 1e-4);
  o.beta1 = F(o.beta1, 0.9);
  o.beta2 = F(o.beta2, 0.99);
  o.weight_decay = F(o.weight_decay, 0);
  return o;
}
#undef F

/* AdamW's fields as the Adam struct the update shares. */
static lam_adam_opts lam__adamw_as_adam(const lam_adamw_opts *w) {
  return (lam_adam_opts){w->lr, w->beta1, w->beta2, w->eps, w->weight_decay, w->amsgrad, w->maximize};
}

lam_sgd_opts lam_sgd_defaults(void) { return lam__sgd_resolve((lam_sgd_opts){0}); }
lam_adam_opts lam_adam_defaults(void) { return lam__adam_resolve((lam_adam_opts){0}, 0); }
lam_adamw_opts lam_adamw_defaults(void) {
  lam_adam_opts a = lam__adam_resolve((lam_adam_opts){0}, 1e-2);
  return (lam_adamw_opts){a.lr, a.beta1, a.beta2, a.eps, a.weight_decay, a.amsgrad, a.maximize};
}
lam_rmsprop_opts lam_rmsprop_defaults(void) { return lam__rmsprop_resolve((lam_rmsprop_opts){0}); }
lam_adagrad_opts lam_adagrad_defaults(void) { return lam__adagrad_resolve((lam_adagrad_opts){0}); }
lam_lion_opts lam_lion_defaults(void) { return lam__lion_resolve((lam_lion_opts){0}); }

static lam_optimizer *lam__opt_new(lam_optim_kind kind, const char *fn) {
  lam_optimizer *opt = calloc(1, sizeof *opt);
  if (!opt) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn), NULL;
  opt->kind = kind;
  return opt;
}

/* Records "fn: name = value must be ..." and returns NULL. */
static lam_optimizer *lam__bad(const char *fn, const char *name, double v, const char *rule) {
  lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: %s = %g %s", fn, name, v, rule);
  return NULL;
}

#define LAM__REQ(cond, name, v, rule) \
  do {                                \
    if (!(cond)) return lam__bad(fn, name, v, rule); \
  } while (0)

lam_optimizer *lam_sgd(const lam_sgd_opts *opts) {
  const char *fn = "lam_sgd";
  lam_sgd_opts o = lam__sgd_resolve(opts ? *opts : (lam_sgd_opts){0});
  LAM__REQ(lam__nonneg(o.lr), "lr", o.lr, "must be >= 0 and finite");
  LAM__REQ(lam__nonneg(o.momentum), "momentum", o.momentum, "must be >= 0 and finite");
  LAM__REQ(isfinite(o.dampening), "dampening", o.dampening, "must be finite");
  LAM__REQ(lam__nonneg(o.weight_decay), "weight_decay", o.weight_decay, "must be >= 0 and finite");
  if (o.nesterov && (o.momentum <= 0 || o.dampening != 0))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                     "%s: nesterov needs momentum > 0 and dampening 0 (momentum %g, dampening %g)",
                     fn, o.momentum, o.dampening), NULL;
  lam_optimizer *opt = lam__opt_new(LAM_OPTIM_SGD, fn);
  if (opt) opt->o.sgd = o;
  return opt;
}

/* o: the caller's fields (zero: default); w: AdamW (decoupled decay, 1e-2). */
static lam_optimizer *lam__adam_common(lam_adam_opts o, bool w, const char *fn) {
  o = lam__adam_resolve(o, w ? 1e-2 : 0);
  LAM__REQ(lam__nonneg(o.lr), "lr", o.lr, "must be >= 0 and finite");
  LAM__REQ(lam__nonneg(o.eps), "eps", o.eps, "must be >= 0 and finite");
  LAM__REQ(o.beta1 >= 0 && o.beta1 < 1, "beta1", o.beta1, "must be in [0, 1)");
  LAM__REQ(o.beta2 >= 0 && o.beta2 < 1, "beta2", o.beta2, "must be in [0, 1)");
  LAM__REQ(lam__nonneg(o.weight_decay), "weight_decay", o.weight_decay, "must be >= 0 and finite");
  lam_optimizer *opt = lam__opt_new(w ? LAM_OPTIM_ADAMW : LAM_OPTIM_ADAM, fn);
  if (opt) opt->o.adam = o;
  return opt;
}

lam_optimizer *lam_adam(const lam_adam_opts *opts) {
  return lam__adam_common(opts ? *opts : (lam_adam_opts){0}, false, "lam_adam");
}
lam_optimizer *lam_adamw(const lam_adamw_opts *opts) {
  return lam__adam_common(opts ? lam__adamw_as_adam(opts) : (lam_adam_opts){0}, true, "lam_adamw");
}

lam_optimizer *lam_rmsprop(const lam_rmsprop_opts *opts) {
  const char *fn = "lam_rmsprop";
  lam_rmsprop_opts o = lam__rmsprop_resolve(opts ? *opts : (lam_rmsprop_opts){0});
  LAM__REQ(lam__nonneg(o.lr), "lr", o.lr, "must be >= 0 and finite");
  LAM__REQ(lam__nonneg(o.eps), "eps", o.eps, "must be >= 0 and finite");
  LAM__REQ(lam__nonneg(o.momentum), "momentum", o.momentum, "must be >= 0 and finite");
  LAM__REQ(lam__nonneg(o.weight_decay), "weight_decay", o.weight_decay, "must be >= 0 and finite");
  LAM__REQ(lam__nonneg(o.alpha), "alpha", o.alpha, "must be >= 0 and finite");
  lam_optimizer *opt = lam__opt_new(LAM_OPTIM_RMSPROP, fn);
  if (opt) opt->o.rms = o;
  return opt;
}

lam_optimizer *lam_adagrad(const lam_adagrad_opts *opts) {
  const char *fn = "lam_adagrad";
  lam_adagrad_opts o = lam__adagrad_resolve(opts ? *opts : (lam_adagrad_opts){0});
  LAM__REQ(lam__nonneg(o.lr), "lr", o.lr, "must be >= 0 and finite");
  LAM__REQ(lam__nonneg(o.lr_decay), "lr_decay", o.lr_decay, "must be >= 0 and finite");
  LAM__REQ(lam__nonneg(o.weight_decay), "weight_decay", o.weight_decay, "must be >= 0 and finite");
  LAM__REQ(lam__nonneg(o.initial_accumulator_value), "initial_accumulator_value",
           o.initial_accumulator_value, "must be >= 0 and finite");
  LAM__REQ(lam__nonneg(o.eps), "eps", o.eps, "must be >= 0 and finite");
  lam_optimizer *opt = lam__opt_new(LAM_OPTIM_ADAGRAD, fn);
  if (opt) opt->o.ada = o;
  return opt;
}

lam_optimizer *lam_lion(const lam_lion_opts *opts) {
  const char *fn = "lam_lion";
  lam_lion_opts o = lam__lion_resolve(opts ? *opts : (lam_lion_opts){0});
  LAM__REQ(lam__nonneg(o.lr), "lr", o.lr, "must be >= 0 and finite");
  LAM__REQ(o.beta1 >= 0 && o.beta1 <= 1, "beta1", o.beta1, "must be in [0, 1]");
  LAM__REQ(o.beta2 >= 0 && o.beta2 <= 1, "beta2", o.beta2, "must be in [0, 1]");
  LAM__REQ(lam__nonneg(o.weight_decay), "weight_decay", o.weight_decay, "must be >= 0 and finite");
  lam_optimizer *opt = lam__opt_new(LAM_OPTIM_LION, fn);
  if (opt) opt->o.lion = o;
  return opt;
}

static void lam__states_free(lam__pstate *st, int n) {
  for (int i = 0; i < n; i++) lam__pstate_clear(&st[i]);
  free(st);
}

void lam_optimizer_free(lam_optimizer *opt) {
  if (!opt) return;
  lam__states_free(opt->st, opt->n_st);
  free(opt->index.idx);
  free(opt);
}

lam_optim_kind lam_optimizer_kind(const lam_optimizer *opt) {
  return opt ? opt->kind : LAM_OPTIM_SGD;
}

const char *lam_optimizer_name(const lam_optimizer *opt) {
  return opt ? lam__kind_names[opt->kind] : "unknown";
}

int64_t lam_optimizer_step_count(const lam_optimizer *opt) { return opt ? opt->step_count : -1; }

static double *lam__lr_field(lam_optimizer *opt) {
  switch (opt->kind) {
    case LAM_OPTIM_SGD: return &opt->o.sgd.lr;
    case LAM_OPTIM_ADAM:
    case LAM_OPTIM_ADAMW: return &opt->o.adam.lr;
    case LAM_OPTIM_RMSPROP: return &opt->o.rms.lr;
    case LAM_OPTIM_ADAGRAD: return &opt->o.ada.lr;
    case LAM_OPTIM_LION: return &opt->o.lion.lr;
  }
  return &opt->o.sgd.lr;
}

double lam_optimizer_lr(const lam_optimizer *opt) {
  if (!opt) return NAN;
  if (opt->has_schedule) return lam_schedule_lr(&opt->schedule, opt->step_count);
  return *lam__lr_field((lam_optimizer *)opt);
}

lam_status lam_optimizer_set_lr(lam_optimizer *opt, double lr) {
  if (!opt) return lam__fail(LAM_ERR_NULL, "lam_optimizer_set_lr: opt is NULL");
  if (!lam__nonneg(lr))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "lam_optimizer_set_lr: lr = %g must be >= 0 and finite", lr);
  *lam__lr_field(opt) = lr;
  return LAM_OK;
}

lam_status lam_optimizer_set_schedule(lam_optimizer *opt, const lam_schedule *s) {
  if (!opt) return lam__fail(LAM_ERR_NULL, "lam_optimizer_set_schedule: opt is NULL");
  if (!s) {
    opt->has_schedule = false;
    return LAM_OK;
  }
  lam_status st = lam_schedule_check(s);
  if (st != LAM_OK) return st;
  opt->schedule = *s;
  opt->has_schedule = true;
  return LAM_OK;
}

lam_status lam_optimizer_describe(const lam_optimizer *opt, char *buf, size_t size) {
  if (!opt || !buf)
    return lam__fail(LAM_ERR_NULL, "lam_optimizer_describe: %s is NULL", opt ? "buf" : "opt");
  int n = 0;
  const char *k = lam__kind_names[opt->kind];
#define B(b) ((b) ? "true" : "false")
  switch (opt->kind) {
    case LAM_OPTIM_SGD: {
      const lam_sgd_opts *o = &opt->o.sgd;
      n = snprintf(buf, size,
                   "{\"kind\":\"%s\",\"lr\":%.17g,\"momentum\":%.17g,\"dampening\":%.17g,"
                   "\"weight_decay\":%.17g,\"nesterov\":%s,\"maximize\":%s}",
                   k, o->lr, o->momentum, o->dampening, o->weight_decay, B(o->nesterov),
                   B(o->maximize));
      break;
    }
    case LAM_OPTIM_ADAM:
    case LAM_OPTIM_ADAMW: {
      const lam_adam_opts *o = &opt->o.adam;
      n = snprintf(buf, size,
                   "{\"kind\":\"%s\",\"lr\":%.17g,\"beta1\":%.17g,\"beta2\":%.17g,\"eps\":%.17g,"
                   "\"weight_decay\":%.17g,\"amsgrad\":%s,\"maximize\":%s}",
                   k, o->lr, o->beta1, o->beta2, o->eps, o->weight_decay, B(o->amsgrad),
                   B(o->maximize));
      break;
    }
    case LAM_OPTIM_RMSPROP: {
      const lam_rmsprop_opts *o = &opt->o.rms;
      n = snprintf(buf, size,
                   "{\"kind\":\"%s\",\"lr\":%.17g,\"alpha\":%.17g,\"eps\":%.17g,"
                   "\"weight_decay\":%.17g,\"momentum\":%.17g,\"centered\":%s,\"maximize\":%s}",
                   k, o->lr, o->alpha, o->eps, o->weight_decay, o->momentum, B(o->centered),
                   B(o->maximize));
      break;
    }
    case LAM_OPTIM_ADAGRAD: {
      const lam_adagrad_opts *o = &opt->o.ada;
      n = snprintf(buf, size,
                   "{\"kind\":\"%s\",\"lr\":%.17g,\"lr_decay\":%.17g,\"weight_decay\":%.17g,"
                   "\"initial_accumulator_value\":%.17g,\"eps\":%.17g,\"maximize\":%s}",
                   k, o->lr, o->lr_decay, o->weight_decay, o->initial_accumulator_value, o->eps,
                   B(o->maximize));
      break;
    }
    case LAM_OPTIM_LION: {
      const lam_lion_opts *o = &opt->o.lion;
      n = snprintf(buf, size,
                   "{\"kind\":\"%s\",\"lr\":%.17g,\"beta1\":%.17g,\"beta2\":%.17g,"
                   "\"weight_decay\":%.17g,\"maximize\":%s}",
                   k, o->lr, o->beta1, o->beta2, o->weight_decay, B(o->maximize));
      break;
    }
  }
#undef B
  if (n < 0 || (size_t)n >= size)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "lam_optimizer_describe: buffer of %zu bytes is too "
                     "small (%d needed)", size, n + 1);
  return LAM_OK;
}

/* ---- state storage ----------------------------------------------------------- */

/* Appends states (taking them over) and reindexes. */
static lam_status lam__states_add(lam_optimizer *opt, lam__pstate *add, int n, const char *fn) {
  if (opt->n_st + n > opt->cap_st) {
    int cap = opt->cap_st ? opt->cap_st : 16;
    while (cap < opt->n_st + n) cap *= 2;
    lam__pstate *st = realloc(opt->st, (size_t)cap * sizeof *st);
    if (!st) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
    opt->st = st;
    opt->cap_st = cap;
  }
  memcpy(opt->st + opt->n_st, add, (size_t)n * sizeof *add);
  opt->n_st += n;
  if (!lam__pindex_build(&opt->index, opt->n_st, NULL, opt->st)) {
    opt->n_st -= n; /* the caller still owns add */
    return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
  }
  return LAM_OK;
}

/* ---- the step --------------------------------------------------------------- */

typedef struct {
  const char *path;
  lam_tensor *p, *g;
  int state; /* index into opt->st, or -(1 + index into the pending array) */
} lam__job;

static lam_status lam__launch_update(lam_optimizer *opt, lam__job *job, lam__pstate *ps, double lr,
                                     cl_kernel k) {
  const char *fn = "lam_optimizer_step";
  lam_tensor *p = job->p, *g = job->g;
  lam_ctx *ctx = p->ctx;
  lam_dtype dt = p->dtype;
  int n = (int)p->numel;
  lam_tensor *s0 = ps->slot[0] ? ps->slot[0] : p, *s1 = ps->slot[1] ? ps->slot[1] : p,
             *s2 = ps->slot[2] ? ps->slot[2] : p;
  int64_t t = ps->step + 1;
#define R(v) lam__arg_real(dt, (v))
  switch (opt->kind) {
    case LAM_OPTIM_SGD: {
      const lam_sgd_opts *o = &opt->o.sgd;
      lam__arg a[] = {LAM__ARG_T(p), LAM__ARG_T(g), LAM__ARG_T(s0), lam__arg_int(n), R(lr),
                      R(o->momentum), R(1 - o->dampening), R(o->weight_decay),
                      lam__arg_int(o->nesterov), lam__arg_int(ps->step == 0),
                      R(o->maximize ? -1 : 1)};
      return lam__launch_1d(ctx, k, fn, (int)(sizeof a / sizeof a[0]), a, (size_t)n);
    }
    case LAM_OPTIM_ADAM:
    case LAM_OPTIM_ADAMW: {
      const lam_adam_opts *o = &opt->o.adam;
      double bc1 = 1 - pow(o->beta1, (double)t), bc2 = 1 - pow(o->beta2, (double)t);
      bool w = opt->kind == LAM_OPTIM_ADAMW;
      lam__arg a[] = {LAM__ARG_T(p), LAM__ARG_T(g), LAM__ARG_T(s0), LAM__ARG_T(s1), LAM__ARG_T(s2),
                      lam__arg_int(n), R(o->beta1), R(1 - o->beta1), R(o->beta2), R(1 - o->beta2),
                      R(o->eps), R(o->weight_decay), R(1 - lr * o->weight_decay), R(lr / bc1),
                      R(sqrt(bc2)), lam__arg_int(w), lam__arg_int(o->amsgrad),
                      R(o->maximize ? -1 : 1)};
      return lam__launch_1d(ctx, k, fn, (int)(sizeof a / sizeof a[0]), a, (size_t)n);
    }
    case LAM_OPTIM_RMSPROP: {
      const lam_rmsprop_opts *o = &opt->o.rms;
      lam__arg a[] = {LAM__ARG_T(p), LAM__ARG_T(g), LAM__ARG_T(s0), LAM__ARG_T(s1), LAM__ARG_T(s2),
                      lam__arg_int(n), R(lr), R(o->alpha), R(1 - o->alpha), R(o->eps),
                      R(o->weight_decay), R(o->momentum), lam__arg_int(o->centered),
                      R(o->maximize ? -1 : 1)};
      return lam__launch_1d(ctx, k, fn, (int)(sizeof a / sizeof a[0]), a, (size_t)n);
    }
    case LAM_OPTIM_ADAGRAD: {
      const lam_adagrad_opts *o = &opt->o.ada;
      double clr = lr / (1 + (double)(t - 1) * o->lr_decay);
      lam__arg a[] = {LAM__ARG_T(p), LAM__ARG_T(g), LAM__ARG_T(s0), lam__arg_int(n), R(clr),
                      R(o->eps), R(o->weight_decay), R(o->maximize ? -1 : 1)};
      return lam__launch_1d(ctx, k, fn, (int)(sizeof a / sizeof a[0]), a, (size_t)n);
    }
    case LAM_OPTIM_LION: {
      const lam_lion_opts *o = &opt->o.lion;
      lam__arg a[] = {LAM__ARG_T(p), LAM__ARG_T(g), LAM__ARG_T(s0), lam__arg_int(n), R(lr),
                      R(o->beta1), R(1 - o->beta1), R(o->beta2), R(1 - o->beta2),
                      R(1 - lr * o->weight_decay), lam__arg_int(o->weight_decay != 0),
                      R(o->maximize ? -1 : 1)};
      return lam__launch_1d(ctx, k, fn, (int)(sizeof a / sizeof a[0]), a, (size_t)n);
    }
  }
#undef R
  return lam__fail(LAM_ERR_STATE, "%s: unknown optimizer kind %d", fn, (int)opt->kind);
}

/* Checks a state's slots against its parameter. */
static lam_status lam__check_state(const lam_optimizer *opt, const lam__pstate *ps, const lam_tensor *p,
                                   const char *fn) {
  for (int s = 0; s < LAM__MAX_SLOTS; s++) {
    const lam_tensor *t = ps->slot[s];
    if (!lam__slot_active(opt, s)) continue;
    if (!t || !lam_tensor_same_shape(t, p) || t->dtype != p->dtype || t->ctx != p->ctx) {
      char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR];
      return lam__fail(LAM_ERR_SHAPE,
                       "%s: state %s of \"%s\" is %s %s but the parameter is %s %s", fn,
                       lam__slot_names[opt->kind][s], ps->path,
                       t ? lam_dtype_name(t->dtype) : "missing",
                       t ? lam__shape_str(t->ndim, t->shape, b1) : "", lam_dtype_name(p->dtype),
                       lam__shape_str(p->ndim, p->shape, b2));
    }
  }
  return LAM_OK;
}

lam_status lam_optimizer_step(lam_optimizer *opt, lam_ptree *params, const lam_ptree *grads) {
  const char *fn = "lam_optimizer_step";
  if (!opt || !params || !grads)
    return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, !opt ? "opt" : !params ? "params" : "grads");
  double lr = lam_optimizer_lr(opt);
  if (!lam__nonneg(lr))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: learning rate %g at step %lld is not >= 0 and "
                     "finite", fn, lr, (long long)opt->step_count);
  int np = lam_ptree_leaf_count(params), ng = lam_ptree_leaf_count(grads);
  lam_status st = LAM_OK;
  const char **ppaths = malloc((size_t)(np + 1) * sizeof *ppaths);
  lam_tensor **pleaves = malloc((size_t)(np + 1) * sizeof *pleaves);
  lam__job *jobs = malloc((size_t)(ng + 1) * sizeof *jobs);
  lam__pstate *pending = calloc((size_t)(ng + 1), sizeof *pending);
  lam__pindex pix = {NULL, 0};
  int njobs = 0, npending = 0;
  if (!ppaths || !pleaves || !jobs || !pending) {
    st = lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
    goto done;
  }
  for (int i = 0; i < np; i++) lam_ptree_leaf(params, i, &ppaths[i], &pleaves[i]);
  if (!lam__pindex_build(&pix, np, ppaths, NULL)) {
    st = lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
    goto done;
  }
  /* 1. Validate every gradient against its parameter and state. */
  for (int i = 0; i < ng; i++) {
    const char *path;
    lam_tensor *g;
    lam_ptree_leaf(grads, i, &path, &g);
    int j = lam__pindex_find(&pix, path, ppaths, NULL);
    if (j < 0) {
      st = lam__fail(LAM_ERR_NOT_FOUND, "%s: gradient \"%s\" has no parameter at that path", fn, path);
      goto done;
    }
    lam_tensor *p = pleaves[j];
    if (!lam_dtype_is_float(p->dtype)) {
      st = lam__fail(LAM_ERR_DTYPE, "%s: parameter \"%s\" is %s; optimizers update float leaves",
                     fn, path, lam_dtype_name(p->dtype));
      goto done;
    }
    if (g->dtype != p->dtype || !lam_tensor_same_shape(g, p) || g->ctx != p->ctx) {
      char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR];
      st = lam__fail(g->dtype != p->dtype ? LAM_ERR_DTYPE : g->ctx != p->ctx ? LAM_ERR_INVALID_ARGUMENT
                                                                             : LAM_ERR_SHAPE,
                     "%s: gradient \"%s\" is %s %s but the parameter is %s %s%s", fn, path,
                     lam_dtype_name(g->dtype), lam__shape_str(g->ndim, g->shape, b1),
                     lam_dtype_name(p->dtype), lam__shape_str(p->ndim, p->shape, b2),
                     g->ctx != p->ctx ? " (on another context)" : "");
      goto done;
    }
    if (lam_ptree_is_frozen(params, path)) continue;
    int s = lam__pindex_find(&opt->index, path, NULL, opt->st);
    if (s >= 0) {
      st = lam__check_state(opt, &opt->st[s], p, fn);
      if (st != LAM_OK) goto done;
    }
    jobs[njobs++] = (lam__job){path, p, g, s};
  }
  /* 2. Kernels, then lazily created state (nothing enqueued on failure but fills). */
  for (int i = 0; i < njobs; i++) {
    cl_kernel k;
    st = lam__kernel_dt(jobs[i].p->ctx, "optim", lam__kernel_name(opt), jobs[i].p->dtype, NULL, &k);
    if (st != LAM_OK) goto done;
    if (jobs[i].state >= 0) continue;
    lam__pstate *ps = &pending[npending];
    ps->path = malloc(strlen(jobs[i].path) + 1);
    if (!ps->path) {
      st = lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
      goto done;
    }
    strcpy(ps->path, jobs[i].path);
    npending++;
    for (int s = 0; s < LAM__MAX_SLOTS; s++) {
      if (!lam__slot_active(opt, s)) continue;
      lam_tensor *p = jobs[i].p;
      ps->slot[s] = lam_tensor_full(p->ctx, p->dtype, p->ndim, p->shape, lam__init_value(opt, s));
      if (!ps->slot[s]) {
        st = lam_last_status();
        goto done;
      }
    }
    jobs[i].state = -npending;
  }
  if (npending) {
    int base = opt->n_st;
    st = lam__states_add(opt, pending, npending, fn);
    if (st != LAM_OK) goto done;
    npending = 0; /* taken over */
    for (int i = 0; i < njobs; i++)
      if (jobs[i].state < 0) jobs[i].state = base + (-jobs[i].state - 1);
  }
  /* 3. Enqueue the updates. */
  for (int i = 0; i < njobs; i++) {
    cl_kernel k;
    st = lam__kernel_dt(jobs[i].p->ctx, "optim", lam__kernel_name(opt), jobs[i].p->dtype, NULL, &k);
    if (st == LAM_OK) st = lam__launch_update(opt, &jobs[i], &opt->st[jobs[i].state], lr, k);
    if (st != LAM_OK) goto done;
    opt->st[jobs[i].state].step++;
  }
  opt->step_count++;
done:
  lam__states_free(pending, npending);
  free(pix.idx);
  free(ppaths);
  free(pleaves);
  free(jobs);
  return st;
}

/* ---- state export and import ------------------------------------------------ */

/* Returns malloc'd "a.b". */
static char *lam__join(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  char *s = malloc(la + lb + 2);
  if (!s) return NULL;
  memcpy(s, a, la);
  s[la] = '.';
  memcpy(s + la + 1, b, lb + 1);
  return s;
}

lam_ptree *lam_optimizer_state(const lam_optimizer *opt) {
  const char *fn = "lam_optimizer_state";
  if (!opt) return lam__fail(LAM_ERR_NULL, "%s: opt is NULL", fn), NULL;
  lam_ptree *tree = lam_ptree_dict();
  if (!tree) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn), NULL;
  for (int i = 0; i < opt->n_st; i++) {
    const lam__pstate *ps = &opt->st[i];
    lam_ctx *ctx = NULL;
    for (int s = 0; s < LAM__MAX_SLOTS; s++) {
      if (!lam__slot_active(opt, s) || !ps->slot[s]) continue;
      char *key = lam__join(lam__slot_names[opt->kind][s], ps->path);
      lam_status st = key ? lam_ptree_set(tree, key, ps->slot[s])
                          : lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
      free(key);
      if (st != LAM_OK) goto fail;
      ctx = ps->slot[s]->ctx;
    }
    if (!ctx) continue; /* no slots (plain SGD): nothing to restore */
    if (ps->step > INT32_MAX) {
      lam__fail(LAM_ERR_STATE, "%s: step %lld of \"%s\" does not fit an i32", fn,
                (long long)ps->step, ps->path);
      goto fail;
    }
    lam_tensor *t = lam_tensor_full(ctx, LAM_I32, 0, NULL, (double)ps->step);
    char *key = lam__join("step", ps->path);
    lam_status st = t && key ? lam_ptree_set(tree, key, t)
                             : t ? lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn)
                                 : lam_last_status();
    free(key);
    lam_tensor_free(t);
    if (st != LAM_OK) goto fail;
  }
  return tree;
fail:
  lam_ptree_free(tree);
  return NULL;
}

lam_status lam_optimizer_load_state(lam_optimizer *opt, const lam_ptree *state, int64_t step) {
  const char *fn = "lam_optimizer_load_state";
  if (!opt || !state) return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, opt ? "state" : "opt");
  if (step < 0) return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: step %lld is negative", fn, (long long)step);
  int n = lam_ptree_leaf_count(state);
  lam__pstate *pend = calloc((size_t)n + 1, sizeof *pend);
  bool *has_step = calloc((size_t)n + 1, sizeof *has_step);
  lam__pindex ix = {NULL, 0};
  int np = 0;
  lam_status st = LAM_OK;
  if (!pend || !has_step || !lam__pindex_reserve(&ix, n)) {
    st = lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
    goto done;
  }
  for (int i = 0; i < n; i++) {
    const char *path;
    lam_tensor *t;
    lam_ptree_leaf(state, i, &path, &t);
    const char *dot = strchr(path, '.');
    size_t slen = dot ? (size_t)(dot - path) : strlen(path);
    int slot = -2; /* -1: step */
    if (dot && slen == 4 && strncmp(path, "step", 4) == 0) slot = -1;
    for (int s = 0; dot && slot == -2 && s < LAM__MAX_SLOTS; s++) {
      const char *name = lam__slot_names[opt->kind][s];
      if (name && lam__slot_active(opt, s) && strlen(name) == slen && strncmp(path, name, slen) == 0)
        slot = s;
    }
    if (slot == -2) {
      char names[256] = "";
      for (int s = 0; s < LAM__MAX_SLOTS; s++)
        if (lam__slot_active(opt, s)) {
          strcat(names, lam__slot_names[opt->kind][s]);
          strcat(names, ", ");
        }
      st = lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: unexpected state entry \"%s\": %s as "
                     "configured keeps %sstep", fn, path, lam__kind_names[opt->kind], names);
      goto done;
    }
    const char *ppath = dot + 1;
    int pos = lam__pindex_probe(&ix, ppath, NULL, pend);
    int e = ix.idx[pos];
    if (e < 0) {
      e = np++;
      pend[e].path = malloc(strlen(ppath) + 1);
      if (!pend[e].path) {
        np--;
        st = lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
        goto done;
      }
      strcpy(pend[e].path, ppath);
      ix.idx[pos] = e;
    }
    lam__pstate *ps = &pend[e];
    if (slot == -1) {
      double v;
      if (t->numel != 1 || (st = lam_tensor_item(t, &v)) != LAM_OK || !(v >= 0) || v > 9007199254740992.0 ||
          v != floor(v)) {
        if (st == LAM_OK)
          st = lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: \"%s\" must be one non-negative integer",
                         fn, path);
        goto done;
      }
      ps->step = (int64_t)v;
      has_step[e] = true;
      continue;
    }
    if (!lam_dtype_is_float(t->dtype)) {
      st = lam__fail(LAM_ERR_DTYPE, "%s: \"%s\" is %s; state slots are float", fn, path,
                     lam_dtype_name(t->dtype));
      goto done;
    }
    for (int s = 0; s < LAM__MAX_SLOTS; s++) {
      const lam_tensor *o = ps->slot[s];
      if (o && (!lam_tensor_same_shape(o, t) || o->dtype != t->dtype)) {
        char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR];
        st = lam__fail(LAM_ERR_SHAPE, "%s: \"%s\" is %s %s but %s of the same parameter is %s %s",
                       fn, path, lam_dtype_name(t->dtype), lam__shape_str(t->ndim, t->shape, b1),
                       lam__slot_names[opt->kind][s], lam_dtype_name(o->dtype),
                       lam__shape_str(o->ndim, o->shape, b2));
        goto done;
      }
    }
    lam_tensor_free(ps->slot[slot]);
    ps->slot[slot] = lam_tensor_copy(t);
    if (!ps->slot[slot]) {
      st = lam_last_status();
      goto done;
    }
  }
  for (int e = 0; e < np; e++) {
    bool any = false;
    for (int s = 0; s < LAM__MAX_SLOTS; s++) any |= lam__slot_active(opt, s);
    for (int s = 0; any && s < LAM__MAX_SLOTS; s++)
      if (lam__slot_active(opt, s) && !pend[e].slot[s]) {
        st = lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: state of \"%s\" lacks \"%s.%s\"", fn,
                       pend[e].path, lam__slot_names[opt->kind][s], pend[e].path);
        goto done;
      }
    if (!has_step[e]) pend[e].step = step;
  }
  /* Swap in the new state. */
  lam__pindex nix = {NULL, 0};
  if (!lam__pindex_build(&nix, np, NULL, pend)) {
    st = lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
    goto done;
  }
  lam__states_free(opt->st, opt->n_st);
  free(opt->index.idx);
  opt->st = pend;
  opt->n_st = np;
  opt->cap_st = n + 1;
  opt->index = nix;
  opt->step_count = step;
  pend = NULL;
  np = 0;
done:
  lam__states_free(pend, np);
  free(has_step);
  free(ix.idx);
  return st;
}
