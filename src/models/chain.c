/* models/chain.c: the named chain and residual block of models_internal.h,
 * a custom layer whose children entry lists its children (so
 * lam_layer_summary walks the models) and whose children apply through
 * lam_layer_apply_child (params subtrees under their keys). */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "lamina/elementwise.h"
#include "models/models_internal.h"

typedef struct {
  lam_layer_vtable vt; /* per instance: the name differs */
  int n;
  char **keys;
  lam_layer **layers;
  bool residual, post_relu;
  char *shortcut_key;
  lam_layer *shortcut;
} lam__chain;

static void lam__chain_free(lam_layer *self) {
  lam__chain *c = self->impl;
  if (!c) return;
  for (int i = 0; i < c->n; i++) {
    lam_layer_free(c->layers[i]);
    free(c->keys[i]);
  }
  free(c->layers);
  free(c->keys);
  lam_layer_free(c->shortcut);
  free(c->shortcut_key);
  free(c);
}

static lam_status lam__chain_init(lam_layer *self, lam_ctx *ctx, lam_rng_key key, lam_dtype dtype,
                                  lam_ptree *params, lam_ptree *state) {
  lam__chain *c = self->impl;
  lam_status st = LAM_OK;
  for (int i = 0; i < c->n && st == LAM_OK; i++)
    st = lam_layer_init_child(c->layers[i], c->keys[i], ctx, key, dtype, params, state);
  if (st == LAM_OK && c->shortcut)
    st = lam_layer_init_child(c->shortcut, c->shortcut_key, ctx, key, dtype, params, state);
  return st;
}

static lam_status lam__chain_apply(lam_layer *self, lam_ptree *params, lam_ptree *state, lam_tensor *x,
                                   const lam_apply_opts *opts, lam_tensor **out) {
  lam__chain *c = self->impl;
  lam_tensor *h = lam_tensor_retain(x);
  lam_status st = LAM_OK;
  for (int i = 0; i < c->n && st == LAM_OK; i++) {
    lam_tensor *y = NULL;
    st = lam_layer_apply_child(c->layers[i], c->keys[i], params, state, h, opts, &y);
    lam_tensor_free(h);
    h = y;
  }
  if (st != LAM_OK) {
    lam_tensor_free(h);
    return st;
  }
  if (c->residual) {
    lam_tensor *s = NULL;
    if (c->shortcut) {
      st = lam_layer_apply_child(c->shortcut, c->shortcut_key, params, state, x, opts, &s);
    } else {
      s = lam_tensor_retain(x);
    }
    lam_tensor *sum = st == LAM_OK ? lam_add(h, s) : NULL;
    lam_tensor_free(h);
    lam_tensor_free(s);
    if (st != LAM_OK) return st;
    if (!sum) return lam_last_status();
    h = sum;
    if (c->post_relu) {
      h = lam_relu(sum);
      lam_tensor_free(sum);
      if (!h) return lam_last_status();
    }
  }
  *out = h;
  return LAM_OK;
}

static lam_layer *lam__chain_children(const lam_layer *self, int i, const char **key) {
  const lam__chain *c = self->impl;
  if (i >= 0 && i < c->n) {
    *key = c->keys[i];
    return c->layers[i];
  }
  if (c->shortcut && i == c->n) {
    *key = c->shortcut_key;
    return c->shortcut;
  }
  return NULL;
}

static char *lam__dup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

lam_layer *lam__models_chain(const char *name, int n, const char *const *keys, lam_layer *const *layers,
                             bool residual, const char *shortcut_key, lam_layer *shortcut, bool post_relu) {
  bool ok = true;
  for (int i = 0; i < n; i++) ok = ok && layers[i];
  ok = ok && (!shortcut_key || shortcut); /* a shortcut was asked for and its constructor failed */
  lam__chain *c = ok ? calloc(1, sizeof *c) : NULL;
  if (ok && !c) lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", name);
  if (c) {
    c->vt = (lam_layer_vtable){name, lam__chain_init, lam__chain_apply, lam__chain_free};
    c->keys = calloc((size_t)(n > 0 ? n : 1), sizeof *c->keys);
    c->layers = calloc((size_t)(n > 0 ? n : 1), sizeof *c->layers);
    c->residual = residual;
    c->post_relu = post_relu;
    bool mem = c->keys && c->layers;
    if (mem && shortcut) {
      c->shortcut = shortcut;
      shortcut = NULL;
      mem = (c->shortcut_key = lam__dup(shortcut_key)) != NULL;
    }
    for (int i = 0; mem && i < n; i++) {
      c->layers[i] = layers[i];
      c->n = i + 1;
      mem = (c->keys[i] = lam__dup(keys[i])) != NULL;
    }
    if (!mem) {
      lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", name);
      for (int i = c->n; i < n; i++) lam_layer_free(layers[i]);
      lam_layer_free(shortcut);
      lam__chain_free(&(lam_layer){.impl = c});
      return NULL;
    }
    lam_layer *l = lam_nn_custom(&c->vt, c);
    if (!l) {
      lam__chain_free(&(lam_layer){.impl = c});
      return NULL;
    }
    lam_layer_set_children(l, lam__chain_children);
    return l;
  }
  for (int i = 0; i < n; i++) lam_layer_free(layers[i]);
  lam_layer_free(shortcut);
  return NULL;
}
