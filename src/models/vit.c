/* models/vit.c: timm's VisionTransformer (lamina/models.h) with timm's own
 * parameter names (cls_token, pos_embed, patch_embed.proj, blocks.N.{norm1,
 * attn.qkv, attn.proj, ls1.gamma, norm2, mlp.fc1, mlp.fc2, ls2.gamma},
 * norm / fc_norm, head): a patch-embedding convolution, the class token and
 * learned position embedding as parameters of the model itself, pre-norm
 * blocks (fused qkv linear split into heads, lam_scaled_dot_product_attention,
 * exact GELU MLP), optional LayerScale, timm's dropouts and stochastic depth
 * with linearly scheduled rates (the rng keys folded from the model's key
 * with timm's module paths), and the token or average pooled head. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/attention.h"
#include "lamina/conv.h"
#include "lamina/dense.h"
#include "lamina/elementwise.h"
#include "lamina/init.h"
#include "lamina/models.h"
#include "lamina/norm.h"
#include "lamina/reduce.h"
#include "lamina/regularize.h"
#include "lamina/shape.h"
#include "models/text_internal.h"
#include "nn/nn_internal.h"

#define LAM__VIT_FN "lam_models_vit"

/* ---- LayerScale: x * gamma, gamma [dim] initialised to init_values --------------- */

typedef struct {
  int64_t dim;
  double init_values;
} lam__layer_scale;

static lam_status lam__ls_init(lam_layer *self, lam_ctx *ctx, lam_rng_key key, lam_dtype dtype, lam_ptree *params,
                               lam_ptree *state) {
  (void)state;
  lam__layer_scale *s = self->impl;
  lam_init c = lam_init_constant(s->init_values);
  return lam__param_make(params, "gamma", &c, ctx, key, dtype, 1, &s->dim);
}

static lam_status lam__ls_apply(lam_layer *self, lam_ptree *params, lam_ptree *state, lam_tensor *x,
                                const lam_apply_opts *opts, lam_tensor **out) {
  (void)state;
  (void)opts;
  lam__layer_scale *s = self->impl;
  lam_tensor *g = lam__param_get(params, "layer_scale", "gamma", 1, &s->dim);
  if (!g) return lam_last_status();
  lam_status st = lam__check_input("layer_scale", x, s->dim, g->dtype);
  if (st != LAM_OK) return st;
  *out = lam_mul(x, g);
  return *out ? LAM_OK : lam_last_status();
}

static const lam_layer_vtable lam__ls_vt = {"layer_scale", lam__ls_init, lam__ls_apply, lam__free_impl};

static lam_layer *lam__ls_make(int64_t dim, double init_values) {
  lam__layer_scale *s = malloc(sizeof *s);
  if (!s) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", LAM__VIT_FN), NULL;
  s->dim = dim;
  s->init_values = init_values;
  lam_layer *l = lam_nn_custom(&lam__ls_vt, s);
  if (!l) free(s);
  return l;
}

/* ---- the model ------------------------------------------------------------------- */

/* The child slots of a block (-1: absent). */
enum { VB_NORM1, VB_QKV, VB_PROJ, VB_LS1, VB_NORM2, VB_FC1, VB_FC2, VB_LS2, VB__N };

typedef struct {
  lam_models_vit_opts o;
  int64_t grid, tokens, hidden; /* patches per side, patches + 1, MLP width */
  lam__text_children c;
  int patch, norm, head;        /* child indices (norm: "norm" or "fc_norm"; head -1 without) */
  int (*block)[VB__N];
  double *dpr;                  /* per-block drop_path rates */
} lam__vit;

lam_models_vit_opts lam_models_vit_defaults(void) {
  return (lam_models_vit_opts){.img_size = 224, .patch_size = 16, .in_chans = 3, .num_classes = 1000,
                               .embed_dim = 768, .depth = 12, .num_heads = 12, .mlp_ratio = 4.0,
                               .layer_norm_eps = 1e-6, .global_pool = LAM_MODELS_VIT_POOL_TOKEN};
}

static void lam__vit_free(lam_layer *self) {
  lam__vit *v = self->impl;
  lam__text_children_clear(&v->c);
  free(v->block);
  free(v->dpr);
  free(v);
}

/* cls_token and pos_embed first (timm's state_dict order), then the children. */
static lam_status lam__vit_init(lam_layer *self, lam_ctx *ctx, lam_rng_key key, lam_dtype dtype, lam_ptree *params,
                                lam_ptree *state) {
  lam__vit *v = self->impl;
  int64_t E = v->o.embed_dim;
  lam_init cls = lam_init_normal(1e-6), pos = lam_init_normal(0.02);
  lam_status st = lam__param_make(params, "cls_token", &cls, ctx, lam_rng_fold_in_str(key, "cls_token"), dtype, 3,
                                  (int64_t[]){1, 1, E});
  if (st == LAM_OK)
    st = lam__param_make(params, "pos_embed", &pos, ctx, lam_rng_fold_in_str(key, "pos_embed"), dtype, 3,
                         (int64_t[]){1, v->tokens, E});
  return st == LAM_OK ? lam__text_children_init(&v->c, ctx, key, dtype, params, state) : st;
}

static lam_layer *lam__vit_children(const lam_layer *self, int i, const char **key) {
  const lam__vit *v = self->impl;
  return lam__text_children_get(&v->c, i, key);
}

/* Child slot s of block b applied to x (x is kept; NULL in, NULL out). */
static lam_tensor *lam__vit_child(const lam__vit *v, int b, int s, lam_ptree *params, lam_ptree *state, lam_tensor *x,
                                  const lam_apply_opts *opts) {
  return lam__text_children_apply(&v->c, v->block[b][s], params, state, x, opts);
}

/* x + drop_path(ls(branch)): takes branch over, keeps x. */
static lam_tensor *lam__vit_residual(const lam__vit *v, int b, int ls, lam_tensor *x, lam_tensor *branch,
                                     lam_ptree *params, lam_ptree *state, const lam_apply_opts *opts, int which) {
  if (branch && v->block[b][ls] >= 0) {
    lam_tensor *s = lam__vit_child(v, b, ls, params, state, branch, opts);
    lam_tensor_free(branch);
    branch = s;
  }
  branch = lam__models_dropout(branch, v->dpr[b], true, opts, "blocks.%d.drop_path%d", b, which);
  lam_tensor *y = branch ? lam_add(x, branch) : NULL;
  lam_tensor_free(branch);
  return y;
}

static lam_tensor *lam__vit_block(const lam__vit *v, int b, lam_ptree *params, lam_ptree *state, lam_tensor *h,
                                  const lam_apply_opts *opts) {
  const lam_models_vit_opts *o = &v->o;
  int64_t E = o->embed_dim;
  /* Attention: qkv [B, T, 3E] is (3, heads, head_dim) along its last axis, as timm's reshape. */
  lam_tensor *n1 = lam__vit_child(v, b, VB_NORM1, params, state, h, opts);
  lam_tensor *qkv = lam__vit_child(v, b, VB_QKV, params, state, n1, opts);
  lam_tensor_free(n1);
  lam_tensor *parts[3] = {NULL, NULL, NULL};
  if (qkv) lam_split(qkv, -1, 3, (int64_t[]){E, E, E}, parts); /* on failure NULLs carry the status */
  lam_tensor_free(qkv);
  lam_tensor *q = lam__text_heads_split(parts[0], o->num_heads), *k = lam__text_heads_split(parts[1], o->num_heads),
             *vv = lam__text_heads_split(parts[2], o->num_heads);
  for (int i = 0; i < 3; i++) lam_tensor_free(parts[i]);
  lam_attention_opts ao = lam_attention_defaults();
  lam__models_attention_dropout(&ao, o->attn_drop_rate, opts, "blocks.%d.attn.attn_drop", b);
  lam_tensor *a = q && k && vv ? lam_scaled_dot_product_attention(q, k, vv, &ao) : NULL;
  lam_tensor_free(q);
  lam_tensor_free(k);
  lam_tensor_free(vv);
  lam_tensor *am = lam__text_heads_merge(a);
  lam_tensor_free(a);
  lam_tensor *p = lam__vit_child(v, b, VB_PROJ, params, state, am, opts);
  lam_tensor_free(am);
  p = lam__models_dropout(p, o->proj_drop_rate, false, opts, "blocks.%d.attn.proj_drop", b);
  lam_tensor *h1 = lam__vit_residual(v, b, VB_LS1, h, p, params, state, opts, 1);
  /* MLP: fc1, GELU (erf), drop1, fc2, drop2. */
  lam_tensor *n2 = lam__vit_child(v, b, VB_NORM2, params, state, h1, opts);
  lam_tensor *f1 = lam__vit_child(v, b, VB_FC1, params, state, n2, opts);
  lam_tensor_free(n2);
  lam_tensor *g = f1 ? lam_gelu(f1) : NULL;
  lam_tensor_free(f1);
  g = lam__models_dropout(g, o->proj_drop_rate, false, opts, "blocks.%d.mlp.drop1", b);
  lam_tensor *f2 = lam__vit_child(v, b, VB_FC2, params, state, g, opts);
  lam_tensor_free(g);
  f2 = lam__models_dropout(f2, o->proj_drop_rate, false, opts, "blocks.%d.mlp.drop2", b);
  lam_tensor *h2 = h1 ? lam__vit_residual(v, b, VB_LS2, h1, f2, params, state, opts, 2) : NULL;
  if (!h1) lam_tensor_free(f2);
  lam_tensor_free(h1);
  return h2;
}

/* [N, C, H, W] -> patch tokens with the class token and positions [N, 1 + L, E]. */
static lam_tensor *lam__vit_embed(const lam__vit *v, lam_ptree *params, lam_ptree *state, lam_tensor *x,
                                  const lam_apply_opts *opts) {
  int64_t E = v->o.embed_dim, N = x->shape[0];
  lam_tensor *cls = lam__param_get(params, "vit", "cls_token", 3, (int64_t[]){1, 1, E});
  lam_tensor *pos = cls ? lam__param_get(params, "vit", "pos_embed", 3, (int64_t[]){1, v->tokens, E}) : NULL;
  if (!pos) return NULL;
  lam_tensor *p = lam__text_children_apply(&v->c, v->patch, params, state, x, opts); /* [N, E, g, g] */
  lam_tensor *f = p ? lam_flatten(p, 2, 3) : NULL;
  lam_tensor_free(p);
  lam_tensor *t = f ? lam_transpose(f, 1, 2) : NULL; /* [N, L, E] */
  lam_tensor_free(f);
  lam_tensor *c = t ? lam_broadcast_to(cls, 3, (int64_t[]){N, 1, E}) : NULL;
  lam_tensor *cat = c ? lam_concat((lam_tensor *[]){c, t}, 2, 1) : NULL;
  lam_tensor_free(c);
  lam_tensor_free(t);
  lam_tensor *h = cat ? lam_add(cat, pos) : NULL;
  lam_tensor_free(cat);
  return lam__models_dropout(h, v->o.pos_drop_rate, false, opts, "pos_drop");
}

static lam_status lam__vit_apply(lam_layer *self, lam_ptree *params, lam_ptree *state, lam_tensor *x,
                                 const lam_apply_opts *opts, lam_tensor **out) {
  const char *fn = "lam_layer_apply: vit";
  lam__vit *v = self->impl;
  const lam_models_vit_opts *o = &v->o;
  lam_apply_opts def = lam_apply_defaults();
  if (!opts) opts = &def;
  if (!x) return lam__fail(LAM_ERR_NULL, "%s: x is NULL", fn);
  if (x->ndim != 4 || x->shape[1] != o->in_chans || x->shape[2] != o->img_size || x->shape[3] != o->img_size)
    return lam__fail(LAM_ERR_SHAPE, "%s: expects [N, %lld, %lld, %lld] images", fn, (long long)o->in_chans,
                     (long long)o->img_size, (long long)o->img_size);
  bool drops = o->drop_rate > 0 || o->pos_drop_rate > 0 || o->proj_drop_rate > 0 || o->attn_drop_rate > 0 ||
               o->drop_path_rate > 0;
  lam_status st = lam__models_check_rng(opts, drops, fn);
  if (st != LAM_OK) return st;
  lam_tensor *h = lam__vit_embed(v, params, state, x, opts);
  for (int b = 0; h && b < o->depth; b++) {
    lam_tensor *n = lam__vit_block(v, b, params, state, h, opts);
    lam_tensor_free(h);
    h = n;
  }
  lam_tensor *pooled = NULL;
  if (h && o->global_pool == LAM_MODELS_VIT_POOL_AVG) { /* fc_norm(mean of the patch tokens) */
    lam_tensor *pt = lam_slice_axis(h, 1, 1, v->tokens, 1);
    lam_tensor *m = pt ? lam_mean(pt, 1, (int[]){1}, 0) : NULL;
    lam_tensor_free(pt);
    pooled = lam__text_children_apply(&v->c, v->norm, params, state, m, opts);
    lam_tensor_free(m);
  } else if (h) { /* norm(tokens)[:, 0] */
    lam_tensor *n = lam__text_children_apply(&v->c, v->norm, params, state, h, opts);
    lam_tensor *first = n ? lam_slice_axis(n, 1, 0, 1, 1) : NULL;
    lam_tensor_free(n);
    pooled = first ? lam_squeeze(first, 1) : NULL;
    lam_tensor_free(first);
  }
  lam_tensor_free(h);
  pooled = lam__models_dropout(pooled, o->drop_rate, false, opts, "head_drop"); /* also without a head, as timm */
  if (pooled && v->head >= 0) {
    lam_tensor *y = lam__text_children_apply(&v->c, v->head, params, state, pooled, opts);
    lam_tensor_free(pooled);
    pooled = y;
  }
  if (!pooled) return lam_last_status();
  *out = pooled;
  return LAM_OK;
}

static const lam_layer_vtable lam__vit_vt = {"vit", lam__vit_init, lam__vit_apply, lam__vit_free};

static bool lam__rate_ok(double r) { return r >= 0 && r < 1; }

lam_layer *lam_models_vit(const lam_models_vit_opts *opts) {
  const char *fn = LAM__VIT_FN;
  lam_models_vit_opts d = lam_models_vit_defaults(), o = opts ? *opts : d;
  o.img_size = lam__opt_i64(o.img_size, d.img_size);
  o.patch_size = lam__opt_i64(o.patch_size, d.patch_size);
  o.in_chans = lam__opt_i64(o.in_chans, d.in_chans);
  o.num_classes = lam__opt_i64(o.num_classes, d.num_classes);
  o.embed_dim = lam__opt_i64(o.embed_dim, d.embed_dim);
  o.depth = lam__opt_i64(o.depth, d.depth);
  o.num_heads = lam__opt_i64(o.num_heads, d.num_heads);
  o.mlp_ratio = lam__opt_f64(o.mlp_ratio, d.mlp_ratio);
  o.layer_norm_eps = lam__opt_f64(o.layer_norm_eps, d.layer_norm_eps);
  const char *bad =
      o.img_size < 1 || o.patch_size < 1 || o.in_chans < 1 || o.num_classes < 1 || o.embed_dim < 1 || o.depth < 1 ||
              o.num_heads < 1                        ? "every size of the config must be >= 1"
      : o.depth > 10000                              ? "depth is too large"
      : o.img_size % o.patch_size != 0               ? "img_size must be a multiple of patch_size"
      : o.embed_dim % o.num_heads != 0               ? "embed_dim must be divisible by num_heads"
      : !(o.mlp_ratio > 0) || o.mlp_ratio * (double)o.embed_dim < 1 ? "mlp_ratio must give an MLP width >= 1"
      : !(o.layer_norm_eps >= 0)                     ? "layer_norm_eps must be >= 0"
      : !(o.init_values >= 0)                        ? "init_values must be >= 0"
      : !lam__rate_ok(o.drop_rate) || !lam__rate_ok(o.pos_drop_rate) || !lam__rate_ok(o.proj_drop_rate) ||
              !lam__rate_ok(o.attn_drop_rate)        ? "dropout rates must be in [0, 1)"
      : !(o.drop_path_rate >= 0 && o.drop_path_rate <= 1) ? "drop_path_rate must be in [0, 1]"
      : (int)o.global_pool < 0 || o.global_pool > LAM_MODELS_VIT_POOL_AVG ? "global_pool is not a lam_models_vit_pool"
                                                     : NULL;
  if (bad) {
    lam__fail(LAM_ERR_INVALID_ARGUMENT,
              "%s: %s (img_size %lld, patch_size %lld, in_chans %lld, num_classes %lld, embed_dim %lld, depth %lld, "
              "num_heads %lld, mlp_ratio %g, init_values %g, drop_path_rate %g, global_pool %d)",
              fn, bad, (long long)o.img_size, (long long)o.patch_size, (long long)o.in_chans,
              (long long)o.num_classes, (long long)o.embed_dim, (long long)o.depth, (long long)o.num_heads,
              o.mlp_ratio, o.init_values, o.drop_path_rate, (int)o.global_pool);
    return NULL;
  }
  lam__vit *v = calloc(1, sizeof *v);
  int depth = (int)o.depth;
  if (v) {
    v->block = calloc((size_t)depth, sizeof *v->block);
    v->dpr = calloc((size_t)depth, sizeof *v->dpr);
  }
  if (!v || !v->block || !v->dpr) {
    if (v) free(v->block), free(v->dpr);
    free(v);
    return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn), NULL;
  }
  v->o = o;
  v->grid = o.img_size / o.patch_size;
  v->tokens = v->grid * v->grid + 1;
  v->hidden = (int64_t)(o.mlp_ratio * (double)o.embed_dim); /* timm's int(embed_dim * mlp_ratio) */
  v->head = -1;
  lam_status rst = lam_stochastic_depth_rates(o.drop_path_rate, 0, depth, v->dpr);
  int64_t E = o.embed_dim, P = o.patch_size;
  /* timm's init: trunc_normal(std 0.02) linear weights (lamina: normal(0.02); timm's
   * truncation at +-2 is 100 standard deviations out), zero biases; the patch conv keeps
   * PyTorch's default weight init. */
  lam_linear_opts lo = lam_linear_defaults();
  lo.weight_init = lam_init_normal(0.02);
  lam_linear_opts lo_nb = lo;
  lo_nb.no_bias = true;
  lam_layer_norm_opts no = lam_layer_norm_defaults();
  no.eps = o.layer_norm_eps == 0 ? LAM_ZERO : o.layer_norm_eps;
  lam__text_children *c = &v->c;
  v->patch = rst != LAM_OK ? -1
                           : lam__text_children_add(
                                 c,
                                 lam_nn_conv2d(o.in_chans, E,
                                               &(lam_conv_opts){.kernel = {(int)P, (int)P},
                                                                .stride = {(int)P, (int)P},
                                                                .padding = LAM_PADDING_VALID,
                                                                .weight_init = lam_init_variance_scaling(
                                                                    1.0 / 3, LAM_FAN_IN, LAM_DIST_UNIFORM)}),
                                 "patch_embed.proj");
  bool ok = v->patch >= 0;
  for (int b = 0; ok && b < depth; b++) {
    int *s = v->block[b];
    for (int i = 0; i < VB__N; i++) s[i] = -1;
    bool ls = o.init_values > 0;
    ok = (s[VB_NORM1] = lam__text_children_add(c, lam_nn_layer_norm(1, &E, &no), "blocks.%d.norm1", b)) >= 0 &&
         (s[VB_QKV] = lam__text_children_add(c, lam_nn_linear(E, 3 * E, o.no_qkv_bias ? &lo_nb : &lo),
                                             "blocks.%d.attn.qkv", b)) >= 0 &&
         (s[VB_PROJ] = lam__text_children_add(c, lam_nn_linear(E, E, &lo), "blocks.%d.attn.proj", b)) >= 0 &&
         (!ls || (s[VB_LS1] = lam__text_children_add(c, lam__ls_make(E, o.init_values), "blocks.%d.ls1", b)) >= 0) &&
         (s[VB_NORM2] = lam__text_children_add(c, lam_nn_layer_norm(1, &E, &no), "blocks.%d.norm2", b)) >= 0 &&
         (s[VB_FC1] = lam__text_children_add(c, lam_nn_linear(E, v->hidden, &lo), "blocks.%d.mlp.fc1", b)) >= 0 &&
         (s[VB_FC2] = lam__text_children_add(c, lam_nn_linear(v->hidden, E, &lo), "blocks.%d.mlp.fc2", b)) >= 0 &&
         (!ls || (s[VB_LS2] = lam__text_children_add(c, lam__ls_make(E, o.init_values), "blocks.%d.ls2", b)) >= 0);
  }
  /* timm: "norm" on the tokens for the token pool, "fc_norm" after the average pool. */
  if (ok)
    ok = (v->norm = lam__text_children_add(c, lam_nn_layer_norm(1, &E, &no),
                                           o.global_pool == LAM_MODELS_VIT_POOL_AVG ? "fc_norm" : "norm")) >= 0;
  if (ok && !o.no_head) {
    v->head = lam__text_children_add(c, lam_nn_linear(E, o.num_classes, &lo), "head");
    ok = v->head >= 0;
  }
  lam_layer *layer = ok ? lam_nn_custom(&lam__vit_vt, v) : NULL;
  if (!layer) {
    lam__text_children_clear(c);
    free(v->block);
    free(v->dpr);
    free(v);
    return NULL;
  }
  layer->children = lam__vit_children;
  return layer;
}
