/* nn/layer.c: the layer core: vars, aux context, summaries, custom layers,
 * and the composition layers sequential and compose.
 *
 * Children get their own subtrees of params and state under their key and
 * their own rng keys folded from the parent's key with that child key, so a
 * model's randomness depends only on the key and the layer's path.
 * lam_layer_apply_child also keeps the path of the child being applied and,
 * when a hook is set (lam_layer_summary), reports each child's output. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "lamina/layer.h"
#include "nn/layer_internal.h"
#include "lamina/ptree.h"
#include "lamina/rng.h"

/* ---- aux -------------------------------------------------------------- */

typedef struct {
  char *name;
  lam_tensor *t;
} lam__named;

struct lam_aux {
  lam__named *items;
  int n, cap;
};

struct lam_summaries {
  lam__named *items;
  int n, cap;
};

static lam_status lam__named_put(lam__named **items, int *n, int *cap, const char *name,
                                 lam_tensor *t, bool replace, const char *fn) {
  if (!name || !t) return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, name ? "tensor" : "name");
  if (replace)
    for (int i = 0; i < *n; i++)
      if (strcmp((*items)[i].name, name) == 0) {
        lam_tensor_retain(t);
        lam_tensor_free((*items)[i].t);
        (*items)[i].t = t;
        return LAM_OK;
      }
  if (*n == *cap) {
    int c = *cap ? *cap * 2 : 8;
    lam__named *p = realloc(*items, (size_t)c * sizeof *p);
    if (!p) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
    *items = p;
    *cap = c;
  }
  char *copy = malloc(strlen(name) + 1);
  if (!copy) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
  strcpy(copy, name);
  (*items)[*n].name = copy;
  (*items)[(*n)++].t = lam_tensor_retain(t);
  return LAM_OK;
}

static void lam__named_clear(lam__named *items, int *n) {
  for (int i = 0; i < *n; i++) {
    free(items[i].name);
    lam_tensor_free(items[i].t);
  }
  *n = 0;
}

lam_aux *lam_aux_create(void) { return calloc(1, sizeof(lam_aux)); }

lam_status lam_aux_set(lam_aux *aux, const char *name, lam_tensor *t) {
  if (!aux) return lam__fail(LAM_ERR_NULL, "lam_aux_set: aux is NULL");
  return lam__named_put(&aux->items, &aux->n, &aux->cap, name, t, true, "lam_aux_set");
}

lam_tensor *lam_aux_get(const lam_aux *aux, const char *name) {
  if (!aux || !name) return NULL;
  for (int i = 0; i < aux->n; i++)
    if (strcmp(aux->items[i].name, name) == 0) return aux->items[i].t;
  return NULL;
}

void lam_aux_free(lam_aux *aux) {
  if (!aux) return;
  lam__named_clear(aux->items, &aux->n);
  free(aux->items);
  free(aux);
}

lam_summaries *lam_summaries_create(void) { return calloc(1, sizeof(lam_summaries)); }

int lam_summaries_count(const lam_summaries *s) { return s ? s->n : 0; }

lam_status lam_summaries_get(const lam_summaries *s, int i, const char **name, lam_tensor **value) {
  if (!s) return lam__fail(LAM_ERR_NULL, "lam_summaries_get: summaries is NULL");
  if (i < 0 || i >= s->n)
    return lam__fail(LAM_ERR_NOT_FOUND, "lam_summaries_get: index %d outside 0..%d", i, s->n - 1);
  if (name) *name = s->items[i].name;
  if (value) *value = s->items[i].t;
  return LAM_OK;
}

lam_tensor *lam_summaries_find(const lam_summaries *s, const char *name) {
  if (!s || !name) return NULL;
  for (int i = s->n - 1; i >= 0; i--)
    if (strcmp(s->items[i].name, name) == 0) return s->items[i].t;
  return NULL;
}

void lam_summaries_clear(lam_summaries *s) {
  if (s) lam__named_clear(s->items, &s->n);
}

void lam_summaries_free(lam_summaries *s) {
  if (!s) return;
  lam_summaries_clear(s);
  free(s->items);
  free(s);
}

lam_status lam_summaries_add(const lam_apply_opts *opts, const char *name, lam_tensor *value) {
  if (!opts || !opts->summaries) return LAM_OK;
  lam_summaries *s = opts->summaries;
  return lam__named_put(&s->items, &s->n, &s->cap, name, value, false, "lam_summaries_add");
}

/* ---- layers and vars --------------------------------------------------- */

struct lam_vars {
  lam_ptree *params;
  lam_ptree *state;
  lam_dtype dtype;
};

lam_layer *lam_nn_custom(const lam_layer_vtable *vt, void *impl) {
  if (!vt || !vt->init || !vt->apply)
    return lam__fail(LAM_ERR_NULL, "lam_nn_custom: %s is NULL",
                     !vt ? "vt" : !vt->init ? "vt->init" : "vt->apply"), NULL;
  lam_layer *l = calloc(1, sizeof *l);
  if (!l) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "lam_nn_custom: out of host memory"), NULL;
  l->vt = vt;
  l->impl = impl;
  return l;
}

lam_status lam_layer_set_children(lam_layer *layer, lam_layer_children_fn children) {
  if (!layer) return lam__fail(LAM_ERR_NULL, "lam_layer_set_children: layer is NULL");
  layer->children = children;
  return LAM_OK;
}

void lam_layer_free(lam_layer *layer) {
  if (!layer) return;
  if (layer->vt && layer->vt->free) layer->vt->free(layer);
  free(layer);
}

const char *lam_layer_name(const lam_layer *layer) {
  return layer && layer->vt && layer->vt->name ? layer->vt->name : "layer";
}

lam_vars *lam_vars_create(lam_ptree *params, lam_ptree *state, lam_dtype dtype) {
  if (!params) return lam__fail(LAM_ERR_NULL, "lam_vars_create: params is NULL"), NULL;
  if (!state && !(state = lam_ptree_dict()))
    return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "lam_vars_create: out of host memory"), NULL;
  lam_vars *v = calloc(1, sizeof *v);
  if (!v) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "lam_vars_create: out of host memory"), NULL;
  v->params = params;
  v->state = state;
  v->dtype = dtype;
  return v;
}

void lam_vars_free(lam_vars *vars) {
  if (!vars) return;
  lam_ptree_free(vars->params);
  lam_ptree_free(vars->state);
  free(vars);
}

lam_ptree *lam_vars_params(lam_vars *vars) { return vars ? vars->params : NULL; }
lam_ptree *lam_vars_state(lam_vars *vars) { return vars ? vars->state : NULL; }
lam_dtype lam_vars_dtype(const lam_vars *vars) { return vars ? vars->dtype : LAM_F32; }

static lam_vars *lam__vars_from(const lam_vars *vars, const lam_ptree *params,
                                const lam_ptree *state, const char *fn) {
  if (!vars) return lam__null_input(fn, "vars");
  lam_ptree *p = lam_ptree_copy(params ? params : vars->params);
  lam_ptree *s = lam_ptree_copy(state ? state : vars->state);
  if (!p || !s) {
    lam_ptree_free(p);
    lam_ptree_free(s);
    return NULL;
  }
  lam_vars *v = lam_vars_create(p, s, vars->dtype);
  if (!v) {
    lam_ptree_free(p);
    lam_ptree_free(s);
  }
  return v;
}

lam_vars *lam_vars_with_params(const lam_vars *vars, const lam_ptree *params) {
  if (!params) return lam__null_input("lam_vars_with_params", "params");
  return lam__vars_from(vars, params, NULL, "lam_vars_with_params");
}

lam_vars *lam_vars_with_state(const lam_vars *vars, const lam_ptree *state) {
  if (!state) return lam__null_input("lam_vars_with_state", "state");
  return lam__vars_from(vars, NULL, state, "lam_vars_with_state");
}

lam_status lam_vars_set_params(lam_vars *vars, lam_ptree *params) {
  if (!vars || !params)
    return lam__fail(LAM_ERR_NULL, "lam_vars_set_params: %s is NULL", vars ? "params" : "vars");
  if (params != vars->params) lam_ptree_free(vars->params);
  vars->params = params;
  return LAM_OK;
}

lam_status lam_vars_set_state(lam_vars *vars, lam_ptree *state) {
  if (!vars || !state)
    return lam__fail(LAM_ERR_NULL, "lam_vars_set_state: %s is NULL", vars ? "state" : "vars");
  if (state != vars->state) lam_ptree_free(vars->state);
  vars->state = state;
  return LAM_OK;
}

lam_status lam_layer_init(lam_layer *layer, lam_ctx *ctx, lam_rng_key key, lam_dtype dtype,
                          lam_vars **out) {
  if (!layer || !ctx || !out)
    return lam__fail(LAM_ERR_NULL, "lam_layer_init: %s is NULL",
                     !layer ? "layer" : !ctx ? "ctx" : "out");
  *out = NULL;
  if (!lam_dtype_is_float(dtype))
    return lam__fail(LAM_ERR_DTYPE, "lam_layer_init: %s: params dtype must be a float, got %s",
                     lam_layer_name(layer), lam_dtype_name(dtype));
  lam_status st = lam__check_dtype_supported(ctx, dtype, "lam_layer_init");
  if (st != LAM_OK) return st;
  lam_ptree *params = lam_ptree_dict(), *state = lam_ptree_dict();
  if (!params || !state) {
    lam_ptree_free(params);
    lam_ptree_free(state);
    return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "lam_layer_init: out of host memory");
  }
  st = layer->vt->init(layer, ctx, key, dtype, params, state);
  if (st != LAM_OK) {
    lam_ptree_free(params);
    lam_ptree_free(state);
    return st;
  }
  *out = lam_vars_create(params, state, dtype);
  return *out ? LAM_OK : lam_last_status();
}

lam_apply_opts lam_apply_defaults(void) { return (lam_apply_opts){0}; }

static lam_status lam__layer_apply(lam_layer *layer, lam_ptree *params, lam_ptree *state, lam_tensor *x,
                                   const lam_apply_opts *opts, lam_tensor **out, const char *fn) {
  if (!out) return lam__fail(LAM_ERR_NULL, "%s: out is NULL", fn);
  *out = NULL;
  if (!layer || !params || !state || !x) {
    if (!x && lam_last_status() != LAM_OK) return lam_last_status(); /* failed upstream op */
    return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn,
                     !layer ? "layer" : !params ? "params" : !state ? "state" : "x");
  }
  static const lam_apply_opts defaults = {false, NULL, NULL, NULL};
  return layer->vt->apply(layer, params, state, x, opts ? opts : &defaults, out);
}

lam_status lam_layer_apply_with(lam_layer *layer, lam_ptree *params, lam_ptree *state,
                                lam_tensor *x, const lam_apply_opts *opts, lam_tensor **out) {
  return lam__layer_apply(layer, params, state, x, opts, out, "lam_layer_apply_with");
}

lam_status lam_layer_apply(lam_layer *layer, lam_vars *vars, lam_tensor *x,
                           const lam_apply_opts *opts, lam_tensor **out) {
  if (!vars) {
    if (out) *out = NULL;
    return lam__fail(LAM_ERR_NULL, "lam_layer_apply: vars is NULL");
  }
  return lam__layer_apply(layer, vars->params, vars->state, x, opts, out, "lam_layer_apply");
}

/* ---- children ---------------------------------------------------------- */

/* The summary hook: per thread, with the path of the child being applied. */
static _Thread_local lam__apply_hook_fn lam__hook;
static _Thread_local void *lam__hook_user;
static _Thread_local char lam__hook_path[1024];

void lam__apply_hook_set(lam__apply_hook_fn fn, void *user) {
  lam__hook = fn;
  lam__hook_user = user;
  lam__hook_path[0] = 0;
}

lam_status lam_layer_init_child(lam_layer *child, const char *key, lam_ctx *ctx, lam_rng_key key_rng,
                                lam_dtype dtype, lam_ptree *params, lam_ptree *state) {
  const char *fn = "lam_layer_init_child";
  if (!child || !key || !ctx || !params || !state)
    return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn,
                     !child ? "child" : !key ? "key" : !ctx ? "ctx" : !params ? "params" : "state");
  lam_ptree *p = lam_ptree_dict(), *s = lam_ptree_dict();
  if (!p || !s) {
    lam_ptree_free(p);
    lam_ptree_free(s);
    return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "lam_layer_init: out of host memory");
  }
  lam_status st = child->vt->init(child, ctx, lam_rng_fold_in_str(key_rng, key), dtype, p, s);
  if (st == LAM_OK) {
    st = lam_ptree_is_list(params) ? lam_ptree_append_subtree(params, p)
                                   : lam_ptree_set_subtree(params, key, p);
    if (st != LAM_OK) lam_ptree_free(p);
    p = NULL;
  }
  if (st == LAM_OK) {
    st = lam_ptree_is_list(state) ? lam_ptree_append_subtree(state, s)
                                  : lam_ptree_set_subtree(state, key, s);
    if (st != LAM_OK) lam_ptree_free(s);
    s = NULL;
  }
  lam_ptree_free(p);
  lam_ptree_free(s);
  return st;
}

lam_status lam_layer_apply_child(lam_layer *child, const char *key, lam_ptree *params,
                                 lam_ptree *state, lam_tensor *x, const lam_apply_opts *opts,
                                 lam_tensor **out) {
  if (out) *out = NULL;
  if (!child || !key || !params || !state || !out)
    return lam__fail(LAM_ERR_NULL, "lam_layer_apply_child: %s is NULL",
                     !child ? "child" : !key ? "key" : !params ? "params" : !state ? "state"
                                                                                  : "out");
  if (!x) { /* keeps the message of a failed op up the chain */
    lam__null_input("lam_layer_apply_child", "x");
    return lam_last_status();
  }
  lam_ptree *p = lam_ptree_subtree(params, key);
  lam_ptree *s = lam_ptree_subtree(state, key);
  if (!p)
    return lam__fail(LAM_ERR_NOT_FOUND, "lam_layer_apply: %s child \"%s\" has no params subtree",
                     lam_layer_name(child), key);
  if (!s) return lam__fail(LAM_ERR_NOT_FOUND, "lam_layer_apply: %s child \"%s\" has no state subtree",
                           lam_layer_name(child), key);
  lam_apply_opts child_opts = opts ? *opts : (lam_apply_opts){false, NULL, NULL, NULL};
  lam_rng_key child_key;
  if (child_opts.rng) {
    child_key = lam_rng_fold_in_str(*child_opts.rng, key);
    child_opts.rng = &child_key;
  }
  if (!lam__hook) return lam_layer_apply_with(child, p, s, x, &child_opts, out);
  size_t len = strlen(lam__hook_path);
  snprintf(lam__hook_path + len, sizeof lam__hook_path - len, "%s%s", len ? "." : "", key);
  lam_status st = lam_layer_apply_with(child, p, s, x, &child_opts, out);
  if (st == LAM_OK) lam__hook(lam__hook_path, child, *out, lam__hook_user);
  lam__hook_path[len] = 0;
  return st;
}

/* ---- sequential and compose ----------------------------------------------- */

typedef struct {
  lam_layer **children;
  int n;
  char (*keys)[16];
} lam__seq;

static void lam__seq_free(lam_layer *self) {
  lam__seq *q = self->impl;
  for (int i = 0; i < q->n; i++) lam_layer_free(q->children[i]);
  free(q->children);
  free(q->keys);
  free(q);
}

/* Children's subtrees sit under "0", "1", ... so paths read "0.weight". */
static lam_status lam__seq_init(lam_layer *self, lam_ctx *ctx, lam_rng_key key, lam_dtype dtype,
                                lam_ptree *params, lam_ptree *state) {
  lam__seq *q = self->impl;
  lam_status st = LAM_OK;
  for (int i = 0; i < q->n && st == LAM_OK; i++)
    st = lam_layer_init_child(q->children[i], q->keys[i], ctx, key, dtype, params, state);
  return st;
}

static lam_status lam__seq_apply(lam_layer *self, lam_ptree *params, lam_ptree *state,
                                 lam_tensor *x, const lam_apply_opts *opts, lam_tensor **out) {
  lam__seq *q = self->impl;
  lam_tensor *h = lam_tensor_retain(x);
  for (int i = 0; i < q->n; i++) {
    lam_tensor *next = NULL;
    lam_status st = lam_layer_apply_child(q->children[i], q->keys[i], params, state, h, opts, &next);
    lam_tensor_free(h);
    if (st != LAM_OK) return st;
    h = next;
  }
  *out = h;
  return LAM_OK;
}

static const lam_layer_vtable lam__seq_vt = {"sequential", lam__seq_init, lam__seq_apply, lam__seq_free};

static lam_layer *lam__seq_children(const lam_layer *self, int i, const char **key) {
  const lam__seq *q = self->impl;
  if (i < 0 || i >= q->n) return NULL;
  *key = q->keys[i];
  return q->children[i];
}

lam_layer *lam_nn_sequential(lam_layer *const *layers, int n) {
  const char *fn = "lam_nn_sequential";
  if (!layers || n < 1) {
    if (layers)
      for (int i = 0; i < n; i++) lam_layer_free(layers[i]);
    return lam__fail(layers ? LAM_ERR_INVALID_ARGUMENT : LAM_ERR_NULL, "%s: %s", fn,
                     layers ? "needs at least one layer" : "layers is NULL"), NULL;
  }
  int bad = -1;
  for (int i = 0; i < n && bad < 0; i++)
    if (!layers[i]) bad = i;
  lam__seq *q = calloc(1, sizeof *q);
  lam_layer **children = calloc((size_t)n, sizeof *children);
  char (*keys)[16] = calloc((size_t)n, sizeof *keys);
  lam_layer *l = NULL;
  if (bad < 0 && q && children && keys) {
    q->children = children;
    q->keys = keys;
    q->n = n;
    for (int i = 0; i < n; i++) {
      children[i] = layers[i];
      snprintf(keys[i], sizeof keys[i], "%d", i);
    }
    l = lam_nn_custom(&lam__seq_vt, q);
    if (l) l->children = lam__seq_children;
  }
  if (!l) {
    if (bad >= 0) lam__fail(LAM_ERR_NULL, "%s: layer %d is NULL", fn, bad);
    else if (lam_last_status() == LAM_OK) lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
    for (int i = 0; i < n; i++) lam_layer_free(layers[i]);
    free(q);
    free(children);
    free(keys);
  }
  return l;
}

int lam_layer_child_count(const lam_layer *layer) {
  if (!layer || !layer->children) return 0;
  const char *key = NULL;
  int n = 0;
  while (layer->children(layer, n, &key)) n++;
  return n;
}

lam_layer *lam_layer_child(const lam_layer *layer, int i) {
  if (!layer) return lam__fail(LAM_ERR_NULL, "lam_layer_child: layer is NULL"), NULL;
  const char *key = NULL;
  lam_layer *child = layer->children && i >= 0 ? layer->children(layer, i, &key) : NULL;
  if (!child) {
    int n = lam_layer_child_count(layer);
    return lam__fail(LAM_ERR_INVALID_ARGUMENT,
                     "lam_layer_child: index %d outside 0..%d (%s layer with %d child%s)", i, n - 1,
                     lam_layer_name(layer), n, n == 1 ? "" : "ren"), NULL;
  }
  return child;
}

const char *lam_layer_child_key(const lam_layer *layer, int i) {
  const char *key = NULL;
  return layer && layer->children && i >= 0 && layer->children(layer, i, &key) ? key : NULL;
}

typedef struct {
  lam_layer *left, *right;
} lam__compose;

static void lam__compose_free(lam_layer *self) {
  lam__compose *c = self->impl;
  lam_layer_free(c->left);
  lam_layer_free(c->right);
  free(c);
}

static lam_status lam__compose_init(lam_layer *self, lam_ctx *ctx, lam_rng_key key, lam_dtype dtype,
                                    lam_ptree *params, lam_ptree *state) {
  lam__compose *c = self->impl;
  lam_status st = lam_layer_init_child(c->left, "left", ctx, key, dtype, params, state);
  return st == LAM_OK ? lam_layer_init_child(c->right, "right", ctx, key, dtype, params, state) : st;
}

static lam_status lam__compose_apply(lam_layer *self, lam_ptree *params, lam_ptree *state,
                                     lam_tensor *x, const lam_apply_opts *opts, lam_tensor **out) {
  lam__compose *c = self->impl;
  lam_tensor *h = NULL;
  lam_status st = lam_layer_apply_child(c->left, "left", params, state, x, opts, &h);
  if (st != LAM_OK) return st;
  st = lam_layer_apply_child(c->right, "right", params, state, h, opts, out);
  lam_tensor_free(h);
  return st;
}

static const lam_layer_vtable lam__compose_vt = {"compose", lam__compose_init, lam__compose_apply,
                                                 lam__compose_free};

static lam_layer *lam__compose_children(const lam_layer *self, int i, const char **key) {
  const lam__compose *c = self->impl;
  if (i == 0) *key = "left";
  if (i == 1) *key = "right";
  return i == 0 ? c->left : i == 1 ? c->right : NULL;
}

lam_layer *lam_nn_compose(lam_layer *left, lam_layer *right) {
  if (!left || !right) {
    lam_layer_free(left);
    lam_layer_free(right);
    return lam__fail(LAM_ERR_NULL, "lam_nn_compose: %s is NULL", left ? "right" : "left"), NULL;
  }
  lam__compose *c = calloc(1, sizeof *c);
  lam_layer *l = c ? lam_nn_custom(&lam__compose_vt, c) : NULL;
  if (!l) {
    free(c);
    lam_layer_free(left);
    lam_layer_free(right);
    return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "lam_nn_compose: out of host memory"), NULL;
  }
  c->left = left;
  c->right = right;
  l->children = lam__compose_children;
  return l;
}
