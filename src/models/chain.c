/* models/chain.c: the named chain and residual block of models_internal.h,
 * a custom layer whose children entry lists its children (so
 * lam_layer_summary walks the models) and whose children apply through
 * lam_layer_apply_child (params subtrees under their keys). */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "lamina/autodiff.h"
#include "lamina/conv.h"
#include "lamina/elementwise.h"
#include "lamina/shape.h"
#include "models/models_internal.h"
#include "nn/nn_internal.h"
#include "ops/conv_internal.h"

/* A convolution with the batch norm after it folded in (lam__models_chain_fuse):
 * w = W * g / sqrt(v + eps), b = beta - m * g / sqrt(v + eps), and the five
 * tensors it was computed from (retained: their handles identify them). */
typedef struct {
  lam_tensor *w, *b;
  lam_tensor *src[5]; /* conv weight, bn weight, bn bias, running mean, running var */
  lam_conv_opts o;
} lam__fold;

typedef struct {
  lam_layer_vtable vt; /* per instance: the name differs */
  int n;
  char **keys;
  lam_layer **layers;
  bool residual, post_relu;
  char *shortcut_key;
  lam_layer *shortcut;
  lam__fold *fold; /* NULL, or n + 1 entries (child i a folded conv; [n] the shortcut's) */
} lam__chain;

static void lam__fold_clear(lam__chain *c) {
  if (!c->fold) return;
  for (int i = 0; i <= c->n; i++) {
    lam_tensor_free(c->fold[i].w);
    lam_tensor_free(c->fold[i].b);
    for (int j = 0; j < 5; j++) lam_tensor_free(c->fold[i].src[j]);
  }
  free(c->fold);
  c->fold = NULL;
}

static void lam__chain_free(lam_layer *self) {
  lam__chain *c = self->impl;
  if (!c) return;
  lam__fold_clear(c);
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

static const char *const lam__fold_paths[5] = {"weight", "weight", "bias", "running_mean", "running_var"};

/* Whether fold f (conv child key ck, batch norm bk) was made from these trees' leaves. */
static bool lam__fold_valid(const lam__fold *f, lam_ptree *params, lam_ptree *state, const char *ck,
                            const char *bk) {
  char b[256];
  for (int j = 0; j < 5; j++) {
    snprintf(b, sizeof b, "%s.%s", j == 0 ? ck : bk, lam__fold_paths[j]);
    lam_ptree *t = j < 3 ? params : state;
    if (!t || lam_ptree_get(t, b) != f->src[j]) return false;
  }
  return true;
}

/* The folded evaluation pass: each folded conv-bn[-relu] as one lam__conv2d_fused,
 * the residual add and the post ReLU in the last one's output pass when the
 * chain ends with it. Returns 1 with *out set, 0 when the folds do not apply
 * (stale leaves: the general path runs), -1 on error. */
static int lam__chain_apply_fused(lam__chain *c, lam_ptree *params, lam_ptree *state, lam_tensor *x,
                                  const lam_apply_opts *opts, lam_tensor **out) {
  for (int i = 0; i < c->n; i++)
    if (c->fold[i].w && !lam__fold_valid(&c->fold[i], params, state, c->keys[i], c->keys[i + 1]))
      return 0;
  if (c->fold[c->n].w) {
    lam_ptree *ps = lam_ptree_subtree(params, c->shortcut_key);
    lam_ptree *ss = lam_ptree_subtree(state, c->shortcut_key);
    if (!ps || !ss ||
        !lam__fold_valid(&c->fold[c->n], ps, ss, lam_layer_child_key(c->shortcut, 0),
                         lam_layer_child_key(c->shortcut, 1)))
      return 0;
  }
  lam_tensor *sc = NULL;
  lam_status st = LAM_OK;
  if (c->residual) {
    if (c->fold[c->n].w)
      sc = lam__conv2d_fused(x, c->fold[c->n].w, c->fold[c->n].b, NULL, false, &c->fold[c->n].o);
    else if (c->shortcut)
      st = lam_layer_apply_child(c->shortcut, c->shortcut_key, params, state, x, opts, &sc);
    else
      sc = lam_tensor_retain(x);
    if (st == LAM_OK && !sc) st = lam_last_status();
  }
  lam_tensor *h = lam_tensor_retain(x);
  bool res_done = !c->residual;
  for (int i = 0; i < c->n && st == LAM_OK; i++) {
    lam_tensor *y = NULL;
    if (c->fold[i].w) {
      int next = i + 2; /* past the batch norm */
      const bool relu = next < c->n && lam__nn_is_relu(c->layers[next]);
      if (relu) next++;
      const bool last = next == c->n && c->residual && !relu;
      y = lam__conv2d_fused(h, c->fold[i].w, c->fold[i].b, last ? sc : NULL, relu || (last && c->post_relu),
                            &c->fold[i].o);
      if (last) res_done = true;
      i = next - 1;
      if (!y) st = lam_last_status();
    } else {
      st = lam_layer_apply_child(c->layers[i], c->keys[i], params, state, h, opts, &y);
    }
    lam_tensor_free(h);
    h = y;
  }
  if (st == LAM_OK && !res_done) {
    lam_tensor *sum = lam_add(h, sc);
    lam_tensor_free(h);
    h = sum && c->post_relu ? lam_relu(sum) : sum;
    if (sum && c->post_relu) lam_tensor_free(sum);
    if (!h) st = lam_last_status();
  }
  lam_tensor_free(sc);
  if (st != LAM_OK) {
    lam_tensor_free(h);
    return -1;
  }
  *out = h;
  return 1;
}

static lam_status lam__chain_apply(lam_layer *self, lam_ptree *params, lam_ptree *state, lam_tensor *x,
                                   const lam_apply_opts *opts, lam_tensor **out) {
  lam__chain *c = self->impl;
  if (c->fold && x && !(opts && opts->training) && !lam_grad_is_recording(x->ctx)) {
    int r = lam__chain_apply_fused(c, params, state, x, opts, out);
    if (r != 0) return r > 0 ? LAM_OK : lam_last_status();
  }
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

/* ---- folding batch norms (lam_models_resnet_fuse) ------------------------------ */

/* Folds conv (params subtree cp) and batch norm bnl (params bp, state bs) into f. */
static lam_status lam__fold_make(lam__fold *f, lam_layer *conv, lam_layer *bnl, lam_ptree *cp,
                                 lam_ptree *bp, lam_ptree *bs) {
  const lam_conv_opts *co = lam__nn_conv2d_opts(conv);
  double eps;
  if (!co || !co->no_bias || !lam__nn_batch_norm_eps(bnl, &eps)) return LAM_OK; /* not foldable */
  lam_tensor *src[5];
  for (int j = 0; j < 5; j++) {
    src[j] = lam_ptree_get(j == 0 ? cp : j < 3 ? bp : bs, lam__fold_paths[j]);
    if (!src[j]) return lam_last_status();
  }
  const int64_t O = lam_tensor_shape(src[0])[0];
  lam_tensor *ve = lam_add_scalar(src[4], eps);
  lam_tensor *inv = ve ? lam_rsqrt(ve) : NULL;
  lam_tensor *scale = inv ? lam_mul(src[1], inv) : NULL;
  lam_tensor *s4 = scale ? lam_reshape(scale, 4, (int64_t[]){O, 1, 1, 1}) : NULL;
  lam_tensor *w = s4 ? lam_mul(src[0], s4) : NULL;
  lam_tensor *ms = scale ? lam_mul(src[3], scale) : NULL;
  lam_tensor *b = ms ? lam_sub(src[2], ms) : NULL;
  lam_tensor_free(ve), lam_tensor_free(inv), lam_tensor_free(scale), lam_tensor_free(s4);
  lam_tensor_free(ms);
  if (!w || !b) {
    lam_tensor_free(w), lam_tensor_free(b);
    return lam_last_status();
  }
  f->w = w, f->b = b, f->o = *co;
  for (int j = 0; j < 5; j++) f->src[j] = lam_tensor_retain(src[j]);
  return LAM_OK;
}

lam_status lam__models_chain_fuse(lam_layer *layer, lam_ptree *params, lam_ptree *state, bool drop) {
  lam_status st = LAM_OK;
  if (layer->vt && layer->vt->apply == lam__chain_apply) {
    lam__chain *c = layer->impl;
    lam__fold_clear(c);
    if (!drop && params && state) {
      c->fold = calloc((size_t)c->n + 1, sizeof *c->fold);
      if (!c->fold) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "lam_models_resnet_fuse: out of host memory");
      bool any = false;
      for (int i = 0; i + 1 < c->n && st == LAM_OK; i++) {
        lam_ptree *cp = lam_ptree_subtree(params, c->keys[i]), *bp = lam_ptree_subtree(params, c->keys[i + 1]);
        lam_ptree *bs = lam_ptree_subtree(state, c->keys[i + 1]);
        if (!cp || !bp || !bs || !lam__nn_conv2d_opts(c->layers[i])) continue;
        st = lam__fold_make(&c->fold[i], c->layers[i], c->layers[i + 1], cp, bp, bs);
        if (c->fold[i].w) any = true, i++;
      }
      if (st == LAM_OK && c->shortcut && lam_layer_child_count(c->shortcut) == 2) {
        lam_ptree *ps = lam_ptree_subtree(params, c->shortcut_key), *ss = lam_ptree_subtree(state, c->shortcut_key);
        const char *k0 = lam_layer_child_key(c->shortcut, 0), *k1 = lam_layer_child_key(c->shortcut, 1);
        lam_ptree *cp = ps ? lam_ptree_subtree(ps, k0) : NULL, *bp = ps ? lam_ptree_subtree(ps, k1) : NULL;
        lam_ptree *bs = ss ? lam_ptree_subtree(ss, k1) : NULL;
        if (cp && bp && bs)
          st = lam__fold_make(&c->fold[c->n], lam_layer_child(c->shortcut, 0), lam_layer_child(c->shortcut, 1),
                              cp, bp, bs);
        if (c->fold[c->n].w) any = true;
      }
      if (st != LAM_OK || !any) lam__fold_clear(c);
    }
  }
  /* Recurse into composite children (stages are sequentials of blocks). */
  const int n = lam_layer_child_count(layer);
  for (int i = 0; i < n && st == LAM_OK; i++) {
    lam_layer *ch = lam_layer_child(layer, i);
    const char *k = lam_layer_child_key(layer, i);
    if (lam_layer_child_count(ch) == 0) continue;
    st = lam__models_chain_fuse(ch, params ? lam_ptree_subtree(params, k) : NULL,
                                state ? lam_ptree_subtree(state, k) : NULL, drop);
  }
  return st;
}
