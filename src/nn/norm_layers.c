/* nn/norm_layers.c: the normalization layers (layer norm with an optional
 * activation (Metalhead's LayerNormV2), RMS, batch, group and instance norm,
 * ChannelLayerNorm and LayerScale) over the functional ops of
 * src/ops/norm.c. Each family's options struct is resolved once (zeros to
 * defaults, lamina/options.h) into one internal configuration. Params and state follow
 * PyTorch's state_dict; batch and instance norm replace their running
 * statistics in the state tree in training (new tensors from the forward
 * kernel, never recorded on the tape), and read them in evaluation. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/blocks.h"
#include "lamina/dense.h"
#include "lamina/elementwise.h"
#include "lamina/norm.h"
#include "nn/nn_internal.h"

typedef enum {
  LAM__LAYER_NORM,
  LAM__RMS_NORM,
  LAM__BATCH_NORM,
  LAM__GROUP_NORM,
  LAM__INSTANCE_NORM,
  LAM__CHANNEL_LAYER_NORM,
  LAM__LAYER_SCALE
} lam__norm_kind;

static const char *const lam__norm_names[] = {"layer_norm",    "rms_norm",      "batch_norm",
                                              "group_norm",    "instance_norm", "channel_layer_norm",
                                              "layer_scale"};

/* A family's options after resolution: every field holds its real value. */
typedef struct {
  double eps;          /* >= 0 */
  bool dtype_eps;      /* RMS norm: eps is the input dtype's machine epsilon */
  bool affine, bias;   /* learnable weight; and bias (not RMS norm) */
  double momentum;     /* in [0, 1] */
  bool cumulative;     /* momentum = 1 / batches seen */
  bool track;          /* running statistics in the state */
} lam__norm_cfg;

typedef struct {
  lam__norm_kind kind;
  int ndim;                    /* normalized shape (layer/RMS norm) */
  int64_t shape[LAM_MAX_DIMS];
  int64_t C, groups;           /* channels (or planes), groups */
  double lambda;               /* LayerScale's initial value */
  lam__norm_cfg o;
  lam_layer *act;              /* child "act" (layer norm's activation) or NULL */
} lam__norm;

lam_layer_norm_opts lam_layer_norm_defaults(void) {
  return (lam_layer_norm_opts){.eps = 1e-5, .no_affine = false, .no_bias = false, .activation = NULL};
}
lam_rms_norm_opts lam_rms_norm_defaults(void) {
  return (lam_rms_norm_opts){.eps = 0.0, .no_affine = false};
}
lam_batch_norm_opts lam_batch_norm_defaults(void) {
  return (lam_batch_norm_opts){.eps = 1e-5, .momentum = 0.1, .cumulative = false,
                               .no_affine = false, .no_running_stats = false};
}
lam_group_norm_opts lam_group_norm_defaults(void) {
  return (lam_group_norm_opts){.eps = 1e-5, .no_affine = false};
}
lam_instance_norm_opts lam_instance_norm_defaults(void) {
  return (lam_instance_norm_opts){.eps = 1e-5, .momentum = 0.1, .cumulative = false,
                                  .affine = false, .track_running_stats = false};
}

/* ---- resolution: one function per options struct (NULL: defaults) ---------- */

static lam__norm_cfg lam__layer_norm_resolve(const lam_layer_norm_opts *opts) {
  lam_layer_norm_opts def = lam_layer_norm_defaults(), o = opts ? *opts : def;
  return (lam__norm_cfg){.eps = lam__opt_f64(o.eps, def.eps), .affine = !o.no_affine,
                         .bias = !o.no_affine && !o.no_bias};
}

static lam__norm_cfg lam__rms_norm_resolve(const lam_rms_norm_opts *opts) {
  lam_rms_norm_opts o = opts ? *opts : lam_rms_norm_defaults();
  const bool dtype_eps = o.eps == 0 && !signbit(o.eps);
  return (lam__norm_cfg){.eps = dtype_eps ? 0.0 : o.eps, .dtype_eps = dtype_eps,
                         .affine = !o.no_affine};
}

static lam__norm_cfg lam__batch_norm_resolve(const lam_batch_norm_opts *opts) {
  lam_batch_norm_opts def = lam_batch_norm_defaults(), o = opts ? *opts : def;
  return (lam__norm_cfg){.eps = lam__opt_f64(o.eps, def.eps), .affine = !o.no_affine,
                         .bias = !o.no_affine, .momentum = lam__opt_f64(o.momentum, def.momentum),
                         .cumulative = o.cumulative, .track = !o.no_running_stats};
}

static lam__norm_cfg lam__group_norm_resolve(const lam_group_norm_opts *opts) {
  lam_group_norm_opts def = lam_group_norm_defaults(), o = opts ? *opts : def;
  return (lam__norm_cfg){.eps = lam__opt_f64(o.eps, def.eps), .affine = !o.no_affine,
                         .bias = !o.no_affine};
}

static lam__norm_cfg lam__instance_norm_resolve(const lam_instance_norm_opts *opts) {
  lam_instance_norm_opts def = lam_instance_norm_defaults(), o = opts ? *opts : def;
  return (lam__norm_cfg){.eps = lam__opt_f64(o.eps, def.eps), .affine = o.affine, .bias = o.affine,
                         .momentum = lam__opt_f64(o.momentum, def.momentum),
                         .cumulative = o.cumulative, .track = o.track_running_stats};
}

static void lam__norm_free(lam_layer *self) {
  lam__norm *n = self->impl;
  lam_layer_free(n->act);
  free(n);
}

/* Shape of the per-channel params: the normalized shape or [C]. */
static int lam__norm_pshape(const lam__norm *n, int64_t *shape) {
  if (n->kind == LAM__LAYER_NORM || n->kind == LAM__RMS_NORM) {
    memcpy(shape, n->shape, (size_t)n->ndim * sizeof *shape);
    return n->ndim;
  }
  shape[0] = n->C;
  return 1;
}

static bool lam__norm_tracks(const lam__norm *n) {
  return (n->kind == LAM__BATCH_NORM || n->kind == LAM__INSTANCE_NORM) && n->o.track;
}

static lam_status lam__norm_init(lam_layer *self, lam_ctx *ctx, lam_rng_key key, lam_dtype dtype,
                                 lam_ptree *params, lam_ptree *state) {
  lam__norm *n = self->impl;
  int64_t shape[LAM_MAX_DIMS];
  int nd = lam__norm_pshape(n, shape);
  lam_status st = LAM_OK;
  if (n->kind == LAM__LAYER_SCALE) {
    lam_init g = lam_init_constant(n->lambda);
    return lam__param_make(params, "gamma", &g, ctx, key, dtype, 1, &n->C);
  }
  if (n->o.affine) {
    lam_init ones = lam_init_ones(), zeros = lam_init_zeros();
    st = lam__param_make(params, "weight", &ones, ctx, key, dtype, nd, shape);
    if (st == LAM_OK && n->o.bias)
      st = lam__param_make(params, "bias", &zeros, ctx, key, dtype, nd, shape);
  }
  if (st == LAM_OK && lam__norm_tracks(n)) {
    lam_tensor *rm = lam_tensor_zeros(ctx, dtype, 1, &n->C);
    lam_tensor *rv = lam_tensor_full(ctx, dtype, 1, &n->C, 1.0);
    lam_tensor *nbt = lam_tensor_zeros(ctx, LAM_I32, 0, NULL);
    if (!rm || !rv || !nbt) st = lam_last_status();
    if (st == LAM_OK) st = lam_ptree_set(state, "running_mean", rm);
    if (st == LAM_OK) st = lam_ptree_set(state, "running_var", rv);
    if (st == LAM_OK) st = lam_ptree_set(state, "num_batches_tracked", nbt);
    lam_tensor_free(rm);
    lam_tensor_free(rv);
    lam_tensor_free(nbt);
  }
  if (st == LAM_OK && n->act)
    st = lam_layer_init_child(n->act, "act", ctx, key, dtype, params, state);
  return st;
}

/* Fetches weight/bias (NULL when the layer has none). */
static lam_status lam__norm_params(const lam__norm *n, lam_ptree *params, lam_tensor **w,
                                   lam_tensor **b) {
  const char *name = lam__norm_names[n->kind];
  int64_t shape[LAM_MAX_DIMS];
  int nd = lam__norm_pshape(n, shape);
  *w = *b = NULL;
  if (!n->o.affine) return LAM_OK;
  if (!(*w = lam__param_get(params, name, "weight", nd, shape))) return lam_last_status();
  if (n->o.bias && !(*b = lam__param_get(params, name, "bias", nd, shape)))
    return lam_last_status();
  return LAM_OK;
}

/* x must be [N, C, ...] (rank >= min_rank) with C channels. */
static lam_status lam__norm_check_channels(const lam__norm *n, lam_tensor *x, int min_rank) {
  if (x->ndim < min_rank || x->shape[1] != n->C) {
    char b[LAM__SHAPE_STR];
    return lam__fail(LAM_ERR_SHAPE, "lam_layer_apply: %s(%lld) expects [N, %lld, ...] of rank >= %d, got %s",
                     lam__norm_names[n->kind], (long long)n->C, (long long)n->C, min_rank,
                     lam__shape_str(x->ndim, x->shape, b));
  }
  return LAM_OK;
}

/* Batch/instance norm: the functional op with the state's running stats,
 * and in training the state's leaves replaced by the updated ones. */
static lam_status lam__running_apply(lam__norm *n, lam_ptree *state, lam_tensor *x, lam_tensor *w,
                                     lam_tensor *b, const lam_apply_opts *opts, lam_tensor **out) {
  const char *name = lam__norm_names[n->kind];
  bool track = n->o.track;
  lam_tensor *rm = NULL, *rv = NULL, *nbt = NULL;
  if (track) {
    rm = lam__param_get(state, name, "running_mean", 1, &n->C);
    rv = rm ? lam__param_get(state, name, "running_var", 1, &n->C) : NULL;
    nbt = rv ? lam_ptree_get(state, "num_batches_tracked") : NULL;
    if (!nbt) return lam_last_status();
  }
  bool batch_stats = opts->training || !track;
  bool update = opts->training && track;
  double momentum = n->o.momentum;
  lam_tensor *nbt1 = NULL;
  if (update) {
    nbt1 = lam_add_scalar(nbt, 1.0);
    if (!nbt1) return lam_last_status();
    if (n->o.cumulative) { /* cumulative moving average: 1 / batches seen */
      double v = 0;
      lam_status st = lam_tensor_item(nbt1, &v);
      if (st != LAM_OK) {
        lam_tensor_free(nbt1);
        return st;
      }
      momentum = 1.0 / v;
    }
  }
  lam_tensor *nm = NULL, *nv = NULL;
  lam_tensor *y = n->kind == LAM__BATCH_NORM
                      ? lam_batch_norm(x, rm, rv, w, b, batch_stats, update ? momentum : 0.0,
                                               n->o.eps, update ? &nm : NULL, update ? &nv : NULL)
                      : lam_instance_norm(x, rm, rv, w, b, batch_stats,
                                                  update ? momentum : 0.0, n->o.eps,
                                                  update ? &nm : NULL, update ? &nv : NULL);
  lam_status st = y ? LAM_OK : lam_last_status();
  if (st == LAM_OK && update) {
    st = lam_ptree_set(state, "running_mean", nm);
    if (st == LAM_OK) st = lam_ptree_set(state, "running_var", nv);
    if (st == LAM_OK) st = lam_ptree_set(state, "num_batches_tracked", nbt1);
  }
  lam_tensor_free(nm);
  lam_tensor_free(nv);
  lam_tensor_free(nbt1);
  if (st != LAM_OK) {
    lam_tensor_free(y);
    return st;
  }
  *out = y;
  return LAM_OK;
}

static lam_status lam__norm_apply(lam_layer *self, lam_ptree *params, lam_ptree *state,
                                  lam_tensor *x, const lam_apply_opts *opts, lam_tensor **out) {
  lam__norm *n = self->impl;
  const char *name = lam__norm_names[n->kind];
  if (n->kind == LAM__LAYER_SCALE) {
    lam_tensor *g = lam__param_get(params, name, "gamma", 1, &n->C);
    if (!g) return lam_last_status();
    lam_status st = lam__check_input(name, x, n->C, g->dtype);
    if (st != LAM_OK) return st;
    *out = lam_mul(x, g);
    return *out ? LAM_OK : lam_last_status();
  }
  lam_tensor *w, *b;
  lam_status st = lam__norm_params(n, params, &w, &b);
  if (st != LAM_OK) return st;
  double eps = n->o.eps;
  if (n->o.dtype_eps) eps = x->dtype == LAM_F64 ? DBL_EPSILON : FLT_EPSILON;
  lam_tensor *y = NULL;
  switch (n->kind) {
    case LAM__LAYER_NORM:
    case LAM__RMS_NORM: {
      bool ok = x->ndim >= n->ndim;
      for (int i = 0; ok && i < n->ndim; i++) ok = x->shape[x->ndim - n->ndim + i] == n->shape[i];
      if (!ok) {
        char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR];
        return lam__fail(LAM_ERR_SHAPE, "lam_layer_apply: %s over %s expects [..., %s], got %s", name,
                         lam__shape_str(n->ndim, n->shape, b1), lam__shape_str(n->ndim, n->shape, b1),
                         lam__shape_str(x->ndim, x->shape, b2));
      }
      y = n->kind == LAM__RMS_NORM ? lam_rms_norm(x, n->ndim, w, eps)
                                   : lam_layer_norm(x, n->ndim, w, b, eps);
      break;
    }
    case LAM__GROUP_NORM:
      if ((st = lam__norm_check_channels(n, x, 2)) != LAM_OK) return st;
      y = lam_group_norm(x, n->groups, w, b, eps);
      break;
    case LAM__CHANNEL_LAYER_NORM:
      if ((st = lam__norm_check_channels(n, x, 2)) != LAM_OK) return st;
      y = lam_channel_layer_norm(x, w, b, eps);
      break;
    case LAM__BATCH_NORM:
    case LAM__INSTANCE_NORM:
      if ((st = lam__norm_check_channels(n, x, n->kind == LAM__BATCH_NORM ? 2 : 3)) != LAM_OK)
        return st;
      if ((st = lam__running_apply(n, state, x, w, b, opts, &y)) != LAM_OK) return st;
      break;
    default:
      break;
  }
  if (!y) return lam_last_status();
  if (n->act) {
    lam_tensor *z = NULL;
    st = lam_layer_apply_child(n->act, "act", params, state, y, opts, &z);
    lam_tensor_free(y);
    if (st != LAM_OK) return st;
    y = z;
  }
  *out = y;
  return LAM_OK;
}

static const lam_layer_vtable lam__norm_vt[] = {
    {"layer_norm", lam__norm_init, lam__norm_apply, lam__norm_free},
    {"rms_norm", lam__norm_init, lam__norm_apply, lam__norm_free},
    {"batch_norm", lam__norm_init, lam__norm_apply, lam__norm_free},
    {"group_norm", lam__norm_init, lam__norm_apply, lam__norm_free},
    {"instance_norm", lam__norm_init, lam__norm_apply, lam__norm_free},
    {"channel_layer_norm", lam__norm_init, lam__norm_apply, lam__norm_free},
    {"layer_scale", lam__norm_init, lam__norm_apply, lam__norm_free},
};

/* Validates the resolved options and makes the layer; frees act on failure. */
/* The activation child "act" (layer norm / channel layer norm with .activation). */
static lam_layer *lam__norm_children(const lam_layer *self, int i, const char **key) {
  const lam__norm *n = self->impl;
  if (i != 0 || !n->act) return NULL;
  *key = "act";
  return n->act;
}

static lam_layer *lam__norm_new(const char *fn, lam__norm_kind kind, const lam__norm_cfg *o, int ndim,
                                const int64_t *shape, int64_t C, int64_t groups, lam_layer *act) {
  lam_status st = LAM_OK;
  if (kind != LAM__LAYER_SCALE) {
    if (!(o->eps >= 0) || !isfinite(o->eps))
      st = lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: eps %g must be finite and >= 0 (0: default, LAM_ZERO: 0)",
                     fn, o->eps);
    else if ((kind == LAM__BATCH_NORM || kind == LAM__INSTANCE_NORM) && !o->cumulative &&
             !(o->momentum >= 0 && o->momentum <= 1))
      st = lam__fail(LAM_ERR_INVALID_ARGUMENT,
                     "%s: momentum %g must be in [0, 1] (0: 0.1, LAM_ZERO: 0; cumulative for an average)",
                     fn, o->momentum);
  }
  lam__norm *n = st == LAM_OK ? calloc(1, sizeof *n) : NULL;
  if (st == LAM_OK && !n) lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
  lam_layer *l = NULL;
  if (n) {
    n->kind = kind;
    n->o = *o;
    n->ndim = ndim;
    if (ndim) memcpy(n->shape, shape, (size_t)ndim * sizeof *shape);
    n->C = C;
    n->groups = groups;
    n->act = act;
    l = lam_nn_custom(&lam__norm_vt[kind], n);
    if (!l) free(n);
    else if (act) l->children = lam__norm_children;
  }
  if (!l) lam_layer_free(act);
  return l;
}

/* Checks a normalized shape (1..8 dims, each >= 1). */
static lam_status lam__check_nshape(const char *fn, int ndim, const int64_t *shape) {
  if (ndim < 1 || ndim > LAM_MAX_DIMS)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: ndim %d is outside 1..%d", fn, ndim, LAM_MAX_DIMS);
  if (!shape) return lam__fail(LAM_ERR_NULL, "%s: shape is NULL", fn);
  int64_t n;
  return lam__check_shape(fn, ndim, shape, &n);
}

lam_layer *lam_nn_layer_norm(int ndim, const int64_t *shape, const lam_layer_norm_opts *opts) {
  const char *fn = "lam_nn_layer_norm";
  lam_layer *act = opts ? opts->activation : NULL;
  if (lam__check_nshape(fn, ndim, shape) != LAM_OK) {
    lam_layer_free(act);
    return NULL;
  }
  lam__norm_cfg o = lam__layer_norm_resolve(opts);
  return lam__norm_new(fn, LAM__LAYER_NORM, &o, ndim, shape, 0, 0, act);
}

lam_layer *lam_nn_rms_norm(int ndim, const int64_t *shape, const lam_rms_norm_opts *opts) {
  const char *fn = "lam_nn_rms_norm";
  if (lam__check_nshape(fn, ndim, shape) != LAM_OK) return NULL;
  lam__norm_cfg o = lam__rms_norm_resolve(opts);
  return lam__norm_new(fn, LAM__RMS_NORM, &o, ndim, shape, 0, 0, NULL);
}

static lam_status lam__check_features(const char *fn, const char *what, int64_t v) {
  if (v < 1 || v > LAM__MAX_NUMEL)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: %s %lld must be >= 1", fn, what, (long long)v);
  return LAM_OK;
}

lam_layer *lam_nn_batch_norm(int64_t num_features, const lam_batch_norm_opts *opts) {
  const char *fn = "lam_nn_batch_norm";
  if (lam__check_features(fn, "num_features", num_features) != LAM_OK) return NULL;
  lam__norm_cfg o = lam__batch_norm_resolve(opts);
  return lam__norm_new(fn, LAM__BATCH_NORM, &o, 0, NULL, num_features, 0, NULL);
}

lam_layer *lam_nn_group_norm(int64_t num_groups, int64_t num_channels, const lam_group_norm_opts *opts) {
  const char *fn = "lam_nn_group_norm";
  if (lam__check_features(fn, "num_groups", num_groups) != LAM_OK ||
      lam__check_features(fn, "num_channels", num_channels) != LAM_OK)
    return NULL;
  if (num_channels % num_groups != 0)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: num_groups %lld does not divide num_channels %lld",
                     fn, (long long)num_groups, (long long)num_channels), NULL;
  lam__norm_cfg o = lam__group_norm_resolve(opts);
  return lam__norm_new(fn, LAM__GROUP_NORM, &o, 0, NULL, num_channels, num_groups, NULL);
}

lam_layer *lam_nn_instance_norm(int64_t num_features, const lam_instance_norm_opts *opts) {
  const char *fn = "lam_nn_instance_norm";
  if (lam__check_features(fn, "num_features", num_features) != LAM_OK) return NULL;
  lam__norm_cfg o = lam__instance_norm_resolve(opts);
  return lam__norm_new(fn, LAM__INSTANCE_NORM, &o, 0, NULL, num_features, 0, NULL);
}

lam_layer *lam_nn_channel_layer_norm(int64_t channels, const lam_layer_norm_opts *opts) {
  const char *fn = "lam_nn_channel_layer_norm";
  lam_layer *act = opts ? opts->activation : NULL;
  if (lam__check_features(fn, "channels", channels) != LAM_OK) {
    lam_layer_free(act);
    return NULL;
  }
  lam__norm_cfg o = lam__layer_norm_resolve(opts);
  return lam__norm_new(fn, LAM__CHANNEL_LAYER_NORM, &o, 0, NULL, channels, 0, act);
}

/* ---- LayerScale ------------------------------------------------------------------ */

lam_layer_scale_opts lam_layer_scale_defaults(void) { return (lam_layer_scale_opts){.lambda = 1e-5}; }

static lam_layer_scale_opts lam__layer_scale_resolve(const lam_layer_scale_opts *opts) {
  lam_layer_scale_opts def = lam_layer_scale_defaults(), o = opts ? *opts : def;
  o.lambda = lam__opt_f64(o.lambda, def.lambda);
  return o;
}

lam_layer *lam_nn_layer_scale(int64_t planes, const lam_layer_scale_opts *opts) {
  const char *fn = "lam_nn_layer_scale";
  if (lam__check_features(fn, "planes", planes) != LAM_OK) return NULL;
  const double lambda = lam__layer_scale_resolve(opts).lambda;
  if (!isfinite(lambda))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: lambda %g must be finite", fn, lambda), NULL;
  if (lambda <= 0) return lam_nn_identity(); /* Metalhead: LayerScale with lambda <= 0 is identity */
  lam__norm_cfg o = {0};
  lam_layer *l = lam__norm_new(fn, LAM__LAYER_SCALE, &o, 0, NULL, planes, 0, NULL);
  if (l) ((lam__norm *)l->impl)->lambda = lambda;
  return l;
}

bool lam__nn_batch_norm_eps(const lam_layer *l, double *eps) {
  if (!l || l->vt != &lam__norm_vt[LAM__BATCH_NORM]) return false;
  const lam__norm *n = l->impl;
  if (!n->o.affine || !n->o.bias || !n->o.track) return false;
  *eps = n->o.eps;
  return true;
}
