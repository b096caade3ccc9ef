/* nn/blocks.c: Metalhead's building blocks: prenorm (norm then block),
 * conv_norm (convolution, norm and activation in Metalhead's orders) and
 * create_classifier (pool, flatten, dropout, linear layers). They take the
 * layers they combine as arguments (the convolution and pooling layers come
 * from the conv family), so any layer can stand in. conv_norm and
 * create_classifier are sequentials (children "0", "1", ..., as Metalhead's
 * Chain and torchvision's Conv2dNormActivation), prenorm names its children
 * "norm" and "block". */
#include <stdlib.h>

#include "lamina/blocks.h"
#include "lamina/dense.h"
#include "lamina/reduce.h"
#include "lamina/regularize.h"
#include "nn/nn_internal.h"

/* ---- prenorm --------------------------------------------------------------- */

typedef struct {
  lam_layer *norm, *block;
} lam__prenorm;

static void lam__prenorm_free(lam_layer *self) {
  lam__prenorm *p = self->impl;
  lam_layer_free(p->norm);
  lam_layer_free(p->block);
  free(p);
}

static lam_status lam__prenorm_init(lam_layer *self, lam_ctx *ctx, lam_rng_key key, lam_dtype dtype,
                                    lam_ptree *params, lam_ptree *state) {
  lam__prenorm *p = self->impl;
  lam_status st = lam_layer_init_child(p->norm, "norm", ctx, key, dtype, params, state);
  return st == LAM_OK ? lam_layer_init_child(p->block, "block", ctx, key, dtype, params, state) : st;
}

static lam_status lam__prenorm_apply(lam_layer *self, lam_ptree *params, lam_ptree *state,
                                     lam_tensor *x, const lam_apply_opts *opts, lam_tensor **out) {
  lam__prenorm *p = self->impl;
  lam_tensor *h = NULL;
  lam_status st = lam_layer_apply_child(p->norm, "norm", params, state, x, opts, &h);
  if (st != LAM_OK) return st;
  st = lam_layer_apply_child(p->block, "block", params, state, h, opts, out);
  lam_tensor_free(h);
  return st;
}

static lam_layer *lam__prenorm_children(const lam_layer *self, int i, const char **key) {
  const lam__prenorm *p = self->impl;
  if (i < 0 || i > 1) return NULL;
  *key = i ? "block" : "norm";
  return i ? p->block : p->norm;
}

static const lam_layer_vtable lam__prenorm_vt = {"prenorm", lam__prenorm_init, lam__prenorm_apply,
                                                 lam__prenorm_free};

lam_layer *lam_nn_prenorm(lam_layer *norm, lam_layer *block) {
  const char *fn = "lam_nn_prenorm";
  lam__prenorm *p = NULL;
  lam_layer *l = NULL;
  if (!norm || !block) {
    lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, norm ? "block" : "norm");
  } else if (!(p = malloc(sizeof *p))) {
    lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
  } else {
    p->norm = norm;
    p->block = block;
    l = lam_nn_custom(&lam__prenorm_vt, p);
    if (l) l->children = lam__prenorm_children;
  }
  if (!l) {
    free(p);
    lam_layer_free(norm);
    lam_layer_free(block);
  }
  return l;
}

/* ---- conv_norm ---------------------------------------------------------------- */

lam_conv_norm_opts lam_conv_norm_defaults(void) {
  return (lam_conv_norm_opts){.preact = false, .revnorm = false};
}

lam_layer *lam_nn_conv_norm(lam_layer *conv, lam_layer *norm, lam_layer *activation,
                         const lam_conv_norm_opts *opts) {
  const char *fn = "lam_nn_conv_norm";
  /* Every default is zero: NULL is a zeroed struct. */
  lam_conv_norm_opts o = opts ? *opts : lam_conv_norm_defaults();
  const char *bad = !conv ? "conv is NULL"
                    : o.preact && o.revnorm ? "preact and revnorm cannot be set together"
                    : (o.preact || o.revnorm) && !norm ? "preact and revnorm need a norm layer"
                                                        : NULL;
  if (bad) {
    lam__fail(conv ? LAM_ERR_INVALID_ARGUMENT : LAM_ERR_NULL, "%s: %s", fn, bad);
    lam_layer_free(conv);
    lam_layer_free(norm);
    lam_layer_free(activation);
    return NULL;
  }
  lam_layer *seq[3];
  int n = 0;
  if (o.revnorm) { /* Metalhead: [norm(inplanes), conv + activation] */
    seq[n++] = norm;
    seq[n++] = conv;
    if (activation) seq[n++] = activation;
  } else if (o.preact) { /* activation on the conv's output, then the norm */
    seq[n++] = conv;
    if (activation) seq[n++] = activation;
    seq[n++] = norm;
  } else {
    seq[n++] = conv;
    if (norm) seq[n++] = norm;
    if (activation) seq[n++] = activation;
  }
  return lam_nn_sequential(seq, n); /* takes ownership, also on failure */
}

/* ---- create_classifier ------------------------------------------------------------ */

/* Global average over axes 2.. of [N, C, ...] keeping them (AdaptiveMeanPool((1, 1))). */
static lam_status lam__gap_apply(lam_layer *self, lam_ptree *params, lam_ptree *state,
                                 lam_tensor *x, const lam_apply_opts *opts, lam_tensor **out) {
  if (x->ndim < 2) {
    char b[LAM__SHAPE_STR];
    return lam__fail(LAM_ERR_SHAPE, "lam_layer_apply: global_avg_pool expects [N, C, ...], got %s",
                     lam__shape_str(x->ndim, x->shape, b));
  }
  if (x->ndim == 2) {
    *out = lam_tensor_retain(x);
    return LAM_OK;
  }
  int axes[LAM_MAX_DIMS];
  for (int i = 2; i < x->ndim; i++) axes[i - 2] = i;
  *out = lam_mean(x, x->ndim - 2, axes, 1);
  return *out ? LAM_OK : lam_last_status();
}

static const lam_layer_vtable lam__gap_vt = {"global_avg_pool", lam__no_params_init, lam__gap_apply,
                                             NULL};

lam_classifier_opts lam_classifier_defaults(void) {
  return (lam_classifier_opts){.pool = NULL, .hidden_planes = 0, .dropout = 0.0,
                               .hidden_activation = NULL, .activation = NULL};
}

lam_layer *lam_nn_classifier(int64_t inplanes, int64_t nclasses,
                                 const lam_classifier_opts *opts) {
  const char *fn = "lam_nn_classifier";
  /* Every default is zero: NULL is a zeroed struct. */
  lam_classifier_opts o = opts ? *opts : lam_classifier_defaults();
  lam_layer *seq[8] = {0};
  int n = 0;
  const char *bad = inplanes < 1 || nclasses < 1 ? "inplanes and nclasses must be >= 1"
                    : o.hidden_planes < 0         ? "hidden_planes must be >= 0"
                    : !(o.dropout >= 0 && o.dropout < 1) ? "dropout must be in [0, 1)"
                                                         : NULL;
  if (bad) {
    lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: %s (inplanes %lld, nclasses %lld, hidden_planes %lld, dropout %g)",
              fn, bad, (long long)inplanes, (long long)nclasses, (long long)o.hidden_planes, o.dropout);
    goto fail;
  }
  seq[n++] = o.pool ? o.pool : lam_nn_custom(&lam__gap_vt, NULL);
  o.pool = NULL;
  seq[n++] = lam_nn_flatten(1, -1);
  if (o.hidden_planes > 0) {
    seq[n++] = lam_nn_linear(inplanes, o.hidden_planes, NULL);
    seq[n++] = o.hidden_activation ? o.hidden_activation : lam_nn_relu();
    o.hidden_activation = NULL;
  }
  if (o.dropout > 0) seq[n++] = lam_nn_dropout(&(lam_dropout_opts){.rate = o.dropout});
  seq[n++] = lam_nn_linear(o.hidden_planes > 0 ? o.hidden_planes : inplanes, nclasses, NULL);
  if (o.activation) seq[n++] = o.activation;
  o.activation = NULL;
  lam_layer_free(o.hidden_activation); /* owned but unused without a hidden layer */
  o.hidden_activation = NULL;
  for (int i = 0; i < n; i++)
    if (!seq[i]) goto fail; /* a constructor failed: its message stands */
  return lam_nn_sequential(seq, n);
fail:
  for (int i = 0; i < n; i++) lam_layer_free(seq[i]);
  lam_layer_free(o.pool);
  lam_layer_free(o.hidden_activation);
  lam_layer_free(o.activation);
  return NULL;
}
