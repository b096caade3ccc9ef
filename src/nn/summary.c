/* nn/summary.c: lam_layer_summary, a Keras summary() / torchinfo table.
 *
 * One forward pass in evaluation mode on zeros of the given shape, with the
 * apply hook of nn/layer.c recording each child's output shape by path; the
 * rows then walk the layer tree through the children entries (depth first)
 * and count each row's parameters in the params subtree of its path. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "lamina/autodiff.h"
#include "lamina/layer.h"
#include "lamina/ptree.h"
#include "nn/layer_internal.h"

typedef struct {
  char path[256];
  int ndim;
  int64_t shape[LAM_MAX_DIMS];
} lam__shape_rec;

typedef struct {
  lam__shape_rec *r;
  int n, cap;
  bool oom;
} lam__shape_recs;

static void lam__record(const char *path, const lam_layer *layer, const lam_tensor *out, void *user) {
  (void)layer;
  lam__shape_recs *s = user;
  for (int i = 0; i < s->n; i++)
    if (strcmp(s->r[i].path, path) == 0) return; /* applied again (shared or looped): keep the first */
  if (s->n == s->cap) {
    int c = s->cap ? s->cap * 2 : 32;
    lam__shape_rec *p = realloc(s->r, (size_t)c * sizeof *p);
    if (!p) {
      s->oom = true;
      return;
    }
    s->r = p;
    s->cap = c;
  }
  lam__shape_rec *r = &s->r[s->n++];
  snprintf(r->path, sizeof r->path, "%s", path);
  r->ndim = out->ndim;
  memcpy(r->shape, out->shape, sizeof r->shape);
}

typedef struct {
  FILE *f;
  lam_ptree *params;
  lam__shape_recs *recs;
  lam__shape_rec root;
  int max_depth;
} lam__summary;

/* Parameters under path ("" = all): total, frozen, bytes. */
static void lam__count(const lam_ptree *params, const char *path, int64_t *total, int64_t *frozen, int64_t *bytes) {
  *total = *frozen = *bytes = 0;
  size_t len = strlen(path);
  int n = lam_ptree_leaf_count(params);
  for (int i = 0; i < n; i++) {
    const char *p = NULL;
    lam_tensor *t = NULL;
    if (lam_ptree_leaf(params, i, &p, &t) != LAM_OK) continue;
    if (len && !(strncmp(p, path, len) == 0 && (p[len] == '.' || p[len] == 0))) continue;
    *total += t->numel;
    *bytes += t->numel * (int64_t)lam_dtype_size(t->dtype);
    if (lam_ptree_leaf_frozen(params, i)) *frozen += t->numel;
  }
}

static void lam__thousands(int64_t v, char *buf, size_t size) {
  char raw[32];
  snprintf(raw, sizeof raw, "%lld", (long long)v);
  int len = (int)strlen(raw), k = 0;
  for (int i = 0; i < len && (size_t)k + 2 < size; i++) {
    if (i > 0 && (len - i) % 3 == 0 && raw[0] != '-') buf[k++] = ',';
    buf[k++] = raw[i];
  }
  buf[k] = 0;
}

static void lam__row(lam__summary *s, const lam_layer *layer, const char *path, const char *key, int depth) {
  const lam__shape_rec *rec = depth == 0 ? &s->root : NULL;
  for (int i = 0; !rec && i < s->recs->n; i++)
    if (strcmp(s->recs->r[i].path, path) == 0) rec = &s->recs->r[i];
  char shape[LAM__SHAPE_STR] = "?";
  if (rec) lam__shape_str(rec->ndim, rec->shape, shape);
  int64_t total, frozen, bytes;
  lam__count(s->params, path, &total, &frozen, &bytes);
  char name[96], num[32];
  snprintf(name, sizeof name, "%*s%s", 2 * depth, "", depth ? key : "(model)");
  lam__thousands(total, num, sizeof num);
  const char *train = total == 0 ? "-" : frozen == 0 ? "yes" : frozen == total ? "frozen" : "mixed";
  fprintf(s->f, "%-28s %-22s %-20s %12s  %s\n", name, lam_layer_name(layer), shape, num, train);
  if (s->max_depth > 0 && depth >= s->max_depth) return;
  int n = lam_layer_child_count(layer);
  for (int i = 0; i < n; i++) {
    const char *ck = lam_layer_child_key(layer, i);
    char cp[512];
    size_t pl = strlen(path), kl = strlen(ck ? ck : "?");
    if (pl + kl + 2 > sizeof cp) continue; /* deeper than any real model */
    memcpy(cp, path, pl);
    size_t k = pl;
    if (pl) cp[k++] = '.';
    memcpy(cp + k, ck ? ck : "?", kl + 1);
    lam__row(s, lam_layer_child(layer, i), cp, ck ? ck : "?", depth + 1);
  }
}

lam_layer_summary_opts lam_layer_summary_defaults(void) { return (lam_layer_summary_opts){.input_dtype = LAM_F32}; }

/* The context of the first leaf of params or state. */
static lam_ctx *lam__vars_ctx(lam_vars *vars) {
  lam_ptree *trees[2] = {lam_vars_params(vars), lam_vars_state(vars)};
  for (int k = 0; k < 2; k++) {
    lam_tensor *t = NULL;
    if (lam_ptree_leaf_count(trees[k]) > 0 && lam_ptree_leaf(trees[k], 0, NULL, &t) == LAM_OK && t) return t->ctx;
  }
  return NULL;
}

/* A failure of the input or of the forward pass, under the summary's name
 * (the inner message follows). */
static lam_status lam__summary_fail(const char *fn, lam_status st) {
  if (strncmp(lam_last_error(), fn, strlen(fn)) == 0) return st;
  char why[2048];
  snprintf(why, sizeof why, "%s", lam_last_error());
  return lam__fail(st, "%s: %s", fn, why);
}

lam_status lam_layer_summary(lam_layer *layer, lam_vars *vars, int ndim, const int64_t *shape,
                             const lam_layer_summary_opts *opts, FILE *f) {
  const char *fn = "lam_layer_summary";
  if (!layer || !vars || !shape)
    return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, !layer ? "layer" : !vars ? "vars" : "shape");
  lam_layer_summary_opts o = opts ? *opts : (lam_layer_summary_opts){0};
  if (o.max_depth < 0) return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: max_depth %d must be >= 0 (0: all)", fn, o.max_depth);
  if (!f) f = stdout;
  lam_ctx *ctx = lam__vars_ctx(vars);
  if (!ctx) return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: vars hold no tensor to find the context from", fn);
  lam_tensor *x = lam_tensor_zeros(ctx, o.input_dtype, ndim, shape);
  if (!x) return lam__summary_fail(fn, lam_last_status());
  lam__shape_recs recs = {0};
  bool was = lam_grad_set_enabled(ctx, false);
  lam__apply_hook_set(lam__record, &recs);
  lam_tensor *out = NULL;
  lam_status st = lam_layer_apply(layer, vars, x, NULL, &out);
  lam__apply_hook_set(NULL, NULL);
  lam_grad_set_enabled(ctx, was);
  lam_tensor_free(x);
  if (st == LAM_OK && recs.oom) st = lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
  if (st != LAM_OK) {
    lam_tensor_free(out);
    free(recs.r);
    return lam__summary_fail(fn, st);
  }
  lam__summary s = {f, lam_vars_params(vars), &recs, {"", out->ndim, {0}}, o.max_depth};
  memcpy(s.root.shape, out->shape, sizeof s.root.shape);
  lam_tensor_free(out);
  char in[LAM__SHAPE_STR];
  fprintf(f, "Model: %s, input %s %s\n", lam_layer_name(layer), lam__shape_str(ndim, shape, in),
          lam_dtype_name(o.input_dtype));
  fprintf(f, "%-28s %-22s %-20s %12s  %s\n", "Layer (path)", "Type", "Output shape", "Params", "Trainable");
  for (int i = 0; i < 94; i++) fputc('-', f);
  fputc('\n', f);
  lam__row(&s, layer, "", "", 0);
  for (int i = 0; i < 94; i++) fputc('-', f);
  fputc('\n', f);
  int64_t total, frozen, bytes;
  lam__count(s.params, "", &total, &frozen, &bytes);
  char a[32], b[32], c[32];
  lam__thousands(total, a, sizeof a);
  lam__thousands(total - frozen, b, sizeof b);
  lam__thousands(frozen, c, sizeof c);
  fprintf(f, "Total params: %s (%.1f KiB)\nTrainable params: %s\nFrozen params: %s\n", a, (double)bytes / 1024.0, b, c);
  free(recs.r);
  return LAM_OK;
}
