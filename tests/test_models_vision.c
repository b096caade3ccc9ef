/* test_models_vision.c: the vision model zoo (lamina/models.h) against
 * torchvision. tools/gen_models_vision_golden.py builds torchvision's own
 * ResNet-18, ResNet-50 and MobileNetV2 classes at tiny widths with random
 * weights and writes their state_dicts, an input, the eval outputs, and the
 * loss, gradients and batch-norm statistics of one training step into
 * tests/data/models_vision_golden.safetensors; the lamina models load the
 * state_dict by torchvision's key names (params and state, every key used)
 * and match. The full-size models' parameter names and shapes are checked
 * against torchvision's lists; bad configurations, the options rule, the
 * Metalhead options (DropBlock, stochastic depth, pooling, no head) and the
 * summary walk are checked too. The ViT cases come from timm's own
 * VisionTransformer (outputs, gradients, a strict load of a timm-saved
 * state_dict, the drop_path schedule, dropouts, no head, vit_base names). */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define GOLDEN "models_vision_golden.safetensors"

/* The tiny ViT of the golden cases (timm's VisionTransformer(img_size=16, patch_size=4,
 * embed_dim=16, depth=2, num_heads=2, ...)). */
static lam_models_vit_opts tiny_vit(double mlp_ratio, int64_t num_classes, double init_values, int pool,
                                    bool qkv_bias) {
  return (lam_models_vit_opts){.img_size = 16, .patch_size = 4, .embed_dim = 16, .depth = 2, .num_heads = 2,
                               .mlp_ratio = mlp_ratio, .num_classes = num_classes, .init_values = init_values,
                               .global_pool = pool ? LAM_MODELS_VIT_POOL_AVG : LAM_MODELS_VIT_POOL_TOKEN,
                               .no_qkv_bias = !qkv_bias};
}

/* The lamina model of a golden case, configured as in the script. */
static lam_layer *case_model(const tu_golden *g, const char *c) {
  double cfg[8] = {0};
  int n = tu_golden_nums(g, cfg, 8, "%s.config", c);
  cr_assert(n >= 4, "%s.config", c);
  lam_layer *m = NULL;
  if (cfg[0] < 0) {
    lam_models_vit_opts o = tiny_vit(cfg[1], (int64_t)cfg[2], cfg[3], (int)cfg[4], cfg[5] != 0);
    m = lam_models_vit(&o);
  } else if (cfg[0] > 0) {
    m = lam_models_resnet((int)cfg[0], &(lam_models_resnet_opts){.width = (int64_t)cfg[1], .num_classes = (int64_t)cfg[2]});
  } else {
    m = lam_models_mobilenet_v2(&(lam_models_mobilenet_v2_opts){
        .width_mult = cfg[1], .num_classes = (int64_t)cfg[2], .last_channel = (int64_t)cfg[3],
        .round_nearest = (int64_t)cfg[4], .dropout = LAM_ZERO});
  }
  cr_assert(m, "%s: %s", c, lam_last_error());
  return m;
}

/* Loads the case's state_dict (file tensors "<case>.sd.<key>") into params and state: each
 * non-strict, as each tree holds only its own keys; then checks that together they used every
 * key of the file and that no leaf of either tree was missing from it. */
static void load_state_dict(lam_ctx *ctx, const char *c, lam_vars *v) {
  char prefix[64];
  snprintf(prefix, sizeof prefix, "%s.sd.", c);
  const char *path = tu_data_path(GOLDEN);
  lam_load_opts lo = {.non_strict = true, .prefix = prefix};
  cr_assert_eq(lam_ptree_load_into(lam_vars_params(v), path, &lo), LAM_OK, "%s", lam_last_error());
  cr_assert_eq(lam_ptree_load_into(lam_vars_state(v), path, &lo), LAM_OK, "%s", lam_last_error());
  lam_ptree *file = NULL;
  cr_assert_eq(lam_safetensors_load(ctx, path, &(lam_load_opts){.prefix = prefix}, &file, NULL), LAM_OK, "%s",
               lam_last_error());
  lam_ptree *trees[2] = {lam_vars_params(v), lam_vars_state(v)};
  int used = 0;
  for (int t = 0; t < 2; t++)
    for (int i = 0; i < lam_ptree_leaf_count(trees[t]); i++) {
      const char *k;
      lam_tensor *leaf;
      lam_ptree_leaf(trees[t], i, &k, &leaf);
      cr_assert(lam_ptree_get(file, k), "%s: %s %s is not in torchvision's state_dict", c, t ? "state" : "param", k);
      used++;
    }
  cr_assert_eq(used, lam_ptree_leaf_count(file), "%s: the state_dict has %d keys, the model %d", c,
               lam_ptree_leaf_count(file), used);
  lam_ptree_free(file);
  lam_error_clear();
}

/* The params' (state's) paths equal torchvision's named_parameters (named_buffers), in order. */
static void check_names(const tu_golden *g, const char *c, lam_ptree *tree, const char *what) {
  char key[64];
  snprintf(key, sizeof key, "%s.%s", c, what);
  int n = tu_golden_count(g, key);
  cr_assert_eq(lam_ptree_leaf_count(tree), n, "%s: %d %s, torchvision has %d", c, lam_ptree_leaf_count(tree), what, n);
  for (int i = 0; i < n; i++) {
    const char *path;
    lam_tensor *t;
    lam_ptree_leaf(tree, i, &path, &t);
    cr_assert_str_eq(path, tu_golden_word(g, key, i), "%s: %s %d", c, what, i);
  }
}

/* Compares t with the golden tensor: |got - want| <= atol * max(max|want|, floor) + rtol * |want|
 * (the absolute part scales with the tensor, as gradients through batch statistics of small
 * batches range over orders of magnitude; floor covers tensors whose true value is zero, such
 * as the bias gradient of a batch norm whose output feeds another batch norm, where only
 * rounding noise of the surrounding magnitudes is left). Returns the largest
 * |got - want| / max(max|want|, floor). */
static double assert_close_golden(const lam_tensor *t, const tu_golden *g, const char *name, double atol, double rtol,
                                  double floor) {
  const tu_array *a = tu_golden_get(g, "%s", name);
  cr_assert(t, "%s: no tensor", name);
  cr_assert_eq(lam_tensor_numel(t), a->n, "%s: %lld elements, torch %lld", name, (long long)lam_tensor_numel(t),
               (long long)a->n);
  double scale = 0, err = 0;
  double *got = tu_to_f64(t);
  for (int64_t i = 0; i < a->n; i++) scale = fmax(scale, fabs(a->v[i]));
  for (int64_t i = 0; i < a->n; i++) err = fmax(err, fabs(got[i] - a->v[i]));
  free(got);
  scale = fmax(fmax(scale, floor), 1e-300);
  tu_assert_tensor_close(t, a->v, a->n, atol * scale, rtol, name);
  return err / scale;
}

typedef struct {
  lam_layer *model;
  lam_ptree *state;
  lam_tensor *x, *labels;
} step_ctx;

static lam_tensor *train_loss(lam_ptree *params, void *user) {
  step_ctx *s = user;
  lam_tensor *logits = NULL;
  if (lam_layer_apply_with(s->model, params, s->state, s->x, &(lam_apply_opts){.training = true}, &logits) != LAM_OK)
    return NULL;
  lam_tensor *loss = lam_cross_entropy(logits, s->labels, NULL);
  lam_tensor_free(logits);
  return loss;
}

/* A golden case in dtype dt: names, strict-by-hand load, eval outputs, one training step's
 * loss, gradients and batch-norm statistics. */
static void check_case(const char *c, lam_dtype dt, double atol, double rtol, double grad_atol, double grad_rtol) {
  lam_ctx *ctx = tu_ctx();
  if (!tu_has_dtype(ctx, dt)) {
    lam_ctx_free(ctx);
    cr_skip_test("no %s on this device", lam_dtype_name(dt));
  }
  tu_golden *g = tu_golden_load(GOLDEN);
  lam_layer *m = case_model(g, c);
  lam_vars *v = NULL;
  cr_assert_eq(lam_layer_init(m, ctx, lam_rng_key_make(1), dt, &v), LAM_OK, "%s", lam_last_error());
  check_names(g, c, lam_vars_params(v), "params");
  check_names(g, c, lam_vars_state(v), "buffers");
  load_state_dict(ctx, c, v);

  char name[128];
  lam_tensor *x = tu_golden_tensor(ctx, dt, g, "%s.x", c);
  lam_tensor *y = NULL;
  cr_assert_eq(lam_layer_apply(m, v, x, NULL, &y), LAM_OK, "%s", lam_last_error());
  snprintf(name, sizeof name, "%s.y", c);
  assert_close_golden(y, g, name, atol, rtol, 0);
  lam_tensor_free(y);
  const bool resnet = strcmp(lam_layer_name(m), "resnet") == 0;
  if (resnet) { /* batch norm folded (lam_models_resnet_fuse): the same outputs */
    cr_assert_eq(lam_models_resnet_fuse(m, v), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_layer_apply(m, v, x, NULL, &y), LAM_OK, "%s", lam_last_error());
    assert_close_golden(y, g, name, 4 * atol, 4 * rtol, 0);
    lam_tensor_free(y);
  }

  step_ctx s = {m, lam_vars_state(v), x, tu_golden_tensor(ctx, LAM_I32, g, "%s.labels", c)};
  lam_tensor *loss = NULL;
  lam_ptree *grads = NULL;
  cr_assert_eq(lam_value_and_grad(ctx, train_loss, &s, lam_vars_params(v), &loss, &grads), LAM_OK, "%s",
               lam_last_error());
  snprintf(name, sizeof name, "%s.loss", c);
  assert_close_golden(loss, g, name, atol, rtol, 0);
  cr_assert_eq(lam_ptree_leaf_count(grads), lam_ptree_leaf_count(lam_vars_params(v)));
  double worst = 0, largest = 0;
  for (int i = 0; i < lam_ptree_leaf_count(grads); i++) {
    const char *path;
    lam_tensor *t;
    lam_ptree_leaf(grads, i, &path, &t);
    const tu_array *a = tu_golden_get(g, "%s.grad.%s", c, path);
    for (int64_t j = 0; j < a->n; j++) largest = fmax(largest, fabs(a->v[j]));
  }
  for (int i = 0; i < lam_ptree_leaf_count(grads); i++) {
    const char *path;
    lam_tensor *t;
    lam_ptree_leaf(grads, i, &path, &t);
    snprintf(name, sizeof name, "%s.grad.%s", c, path);
    double e = assert_close_golden(t, g, name, grad_atol, grad_rtol, 1e-3 * largest);
    if (getenv("TU_VERBOSE_GRADS") && e > 1e-4) cr_log_info("%s: %.3g", name, e);
    worst = fmax(worst, e);
  }
  lam_ptree *st = lam_vars_state(v);
  for (int i = 0; i < lam_ptree_leaf_count(st); i++) {
    const char *path;
    lam_tensor *t;
    lam_ptree_leaf(st, i, &path, &t);
    snprintf(name, sizeof name, "%s.after.%s", c, path);
    assert_close_golden(t, g, name, grad_atol, grad_rtol, 0);
  }
  if (resnet) { /* the step replaced the running statistics: the folds are stale and the
                   general path runs (its output equals the unfused model's) */
    lam_tensor *yf = NULL, *yu = NULL;
    cr_assert_eq(lam_layer_apply(m, v, x, NULL, &yf), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_models_resnet_fuse(m, NULL), LAM_OK);
    cr_assert_eq(lam_layer_apply(m, v, x, NULL, &yu), LAM_OK, "%s", lam_last_error());
    double *u = tu_to_f64(yu);
    tu_assert_tensor_close(yf, u, lam_tensor_numel(yu), 0, 0, "stale folds run the general path");
    free(u);
    lam_tensor_free(yf), lam_tensor_free(yu);
  }
  cr_log_info("%s %s: worst gradient error %.3g of the tensor's largest value", c, lam_dtype_name(dt), worst);
  lam_tensor_free(loss);
  lam_ptree_free(grads);
  lam_tensor_free(s.labels);
  lam_tensor_free(x);
  lam_vars_free(v);
  lam_layer_free(m);
  tu_golden_free(g);
  lam_ctx_free(ctx);
}

/* Outputs and the loss to 1e-4 relative (f32) / 1e-6 (f64; the golden values are stored in
 * f32). Gradients and the running statistics after the step to a fraction of each tensor's
 * largest value (assert_close_golden). Measured worst gradient errors: f64 ~6e-8 (the f32
 * storage of the golden values) for all three; f32 r18 1e-5, mv2 7e-5 (torch's own f32: 8e-6,
 * 1e-4), r50 2e-2: 16 bottlenecks of 2- to 16-channel batch norms in training amplify f32
 * rounding, lamina's f32 backward more than torch's (8e-4), while its f32 forward stays within
 * 3e-4 (torch 1e-4) and f64 matches; hence the looser f32 bound for r50.
 * Investigated (issue 16) and found to be precision, not a bug: the f64 run matches torch to
 * 6e-8 in every gradient and running statistic, which rules out a structural difference
 * (stride on the 3x3 conv, downsample placement, train-mode batch statistics, the momentum
 * update); the per-tensor errors grow steadily from ~3e-4 in layer4 to ~2e-2 in layer1/2
 * (backward through 16 train-mode batch norms of 2 to 32 channels), with no tensor standing
 * out; torch's own f32 errors grow the same way, from 1.5e-4 to 8e-4. A train-mode batch
 * norm's input gradient is what is left of dy after projecting out its mean and its
 * xhat-correlated part, so it amplifies the relative noise of dy, block after block. Torch's
 * CPU batch norm accumulates its float sums in double (at::acc_type<float, CPU> is double)
 * while lamina's kernels accumulate f32 in f32 (-DACC=float), so each block adds more noise:
 * one train-mode batch norm of [2, 2, 12, 12] with an ill-conditioned upstream gradient
 * (dy ~ 2 xhat + 0.5 + 1e-3 noise) gives dx errors of 8.6e-4 (lamina f32) and 2.9e-4 (torch
 * f32) against f64. Accumulating the f32 norm sums in double where the device has fp64
 * would narrow the gap; the bound stays until the norm kernels do. */
Test(models_vision, resnet18_matches_torchvision_f32) { check_case("r18", LAM_F32, 1e-5, 1e-4, 1e-4, 1e-4); }
Test(models_vision, resnet50_matches_torchvision_f32) { check_case("r50", LAM_F32, 1e-5, 1e-4, 5e-2, 1e-3); }
Test(models_vision, mobilenet_v2_matches_torchvision_f32) { check_case("mv2", LAM_F32, 1e-5, 1e-4, 1e-3, 1e-4); }
Test(models_vision, resnet18_matches_torchvision_f64) { check_case("r18", LAM_F64, 1e-6, 1e-6, 1e-6, 1e-6); }
Test(models_vision, resnet50_matches_torchvision_f64) { check_case("r50", LAM_F64, 1e-6, 1e-6, 1e-6, 1e-6); }
Test(models_vision, mobilenet_v2_matches_torchvision_f64) { check_case("mv2", LAM_F64, 1e-6, 1e-6, 1e-6, 1e-6); }

/* ViT against timm (fp32 forward within 1e-5 of the largest output; gradients of the
 * step within 1e-4 of each tensor's largest value; f64 to the f32 storage of the goldens). */
Test(models_vision, vit_matches_timm_f32) { check_case("vit", LAM_F32, 1e-5, 1e-4, 1e-4, 1e-4); }
Test(models_vision, vit_avg_pool_matches_timm_f32) { check_case("vit_avg", LAM_F32, 1e-5, 1e-4, 1e-4, 1e-4); }
Test(models_vision, vit_matches_timm_f64) { check_case("vit", LAM_F64, 1e-6, 1e-6, 1e-6, 1e-6); }
Test(models_vision, vit_avg_pool_matches_timm_f64) { check_case("vit_avg", LAM_F64, 1e-6, 1e-6, 1e-6, 1e-6); }

/* The vit case's state_dict as timm saves it (safetensors.torch.save_file of
 * model.state_dict(), no prefix, no extra keys) loads strictly and gives timm's outputs. */
Test(models_vision, vit_loads_a_timm_state_dict_strictly) {
  lam_ctx *ctx = tu_ctx();
  tu_golden *g = tu_golden_load(GOLDEN);
  lam_layer *m = case_model(g, "vit");
  lam_vars *v = NULL;
  cr_assert_eq(lam_layer_init(m, ctx, lam_rng_key_make(2), LAM_F32, &v), LAM_OK, "%s", lam_last_error());
  cr_assert_eq(lam_ptree_load_into(lam_vars_params(v), tu_data_path("vit_tiny_timm.safetensors"), NULL), LAM_OK,
               "%s", lam_last_error());
  cr_assert_eq(lam_ptree_leaf_count(lam_vars_state(v)), 0);
  lam_tensor *x = tu_golden_tensor(ctx, LAM_F32, g, "vit.x"), *y = NULL;
  tu_mark mk = tu_mark_now(ctx);
  cr_assert_eq(lam_layer_apply(m, v, x, NULL, &y), LAM_OK, "%s", lam_last_error());
  tu_assert_tensor_close(y, tu_golden_values(g, "vit.y"), 10, 1e-5, 1e-4, "vit from the timm file");
  lam_tensor_free(y);
  /* Another image size than the config's: a shape error naming the layer, nothing leaked. */
  lam_tensor *x20 = lam_tensor_zeros(ctx, LAM_F32, 4, (int64_t[]){2, 3, 20, 20});
  tu_assert_status(lam_layer_apply(m, v, x20, NULL, &y), LAM_ERR_SHAPE, "vit: expects [N, 3, 16, 16]");
  lam_tensor_free(x20);
  tu_assert_no_leak(ctx, mk);
  FILE *null = fopen("/dev/null", "w");
  cr_assert_eq(lam_layer_summary(m, v, 4, (int64_t[]){2, 3, 16, 16}, NULL, null), LAM_OK, "%s", lam_last_error());
  fclose(null);
  /* The children have timm's dotted module paths as keys. */
  lam_layer *ls2 = NULL;
  for (int i = 0; i < lam_layer_child_count(m); i++)
    if (strcmp(lam_layer_child_key(m, i), "blocks.1.ls2") == 0) ls2 = lam_layer_child(m, i);
  cr_assert(ls2, "no child blocks.1.ls2");
  cr_assert_str_eq(lam_layer_name(ls2), "layer_scale");
  /* A model without LayerScale has no ls*.gamma: the strict load names the unexpected key. */
  lam_layer *m2 = lam_models_vit(&(lam_models_vit_opts){.img_size = 16, .patch_size = 4, .embed_dim = 16,
                                                       .depth = 2, .num_heads = 2, .mlp_ratio = 2, .num_classes = 5});
  lam_vars *v2 = NULL;
  cr_assert_eq(lam_layer_init(m2, ctx, lam_rng_key_make(2), LAM_F32, &v2), LAM_OK, "%s", lam_last_error());
  cr_assert_neq(lam_ptree_load_into(lam_vars_params(v2), tu_data_path("vit_tiny_timm.safetensors"), NULL), LAM_OK);
  cr_assert(strstr(lam_last_error(), "gamma"), "%s", lam_last_error());
  lam_error_clear();
  lam_vars_free(v2);
  lam_layer_free(m2);
  lam_tensor_free(x);
  lam_vars_free(v);
  lam_layer_free(m);
  tu_golden_free(g);
  lam_ctx_free(ctx);
}

/* The vit golden model with extra options (same weights; a depth-1 model takes block 0). */
static lam_layer *vit_with(lam_ctx *ctx, lam_models_vit_opts o, lam_vars **v) {
  lam_layer *m = lam_models_vit(&o);
  cr_assert(m, "%s", lam_last_error());
  cr_assert_eq(lam_layer_init(m, ctx, lam_rng_key_make(3), LAM_F32, v), LAM_OK, "%s", lam_last_error());
  lam_load_opts lo = {.non_strict = o.depth != 2 || o.no_head};
  cr_assert_eq(lam_ptree_load_into(lam_vars_params(*v), tu_data_path("vit_tiny_timm.safetensors"), &lo), LAM_OK,
               "%s", lam_last_error());
  lam_error_clear();
  return m;
}

/* The output's values on the host (the caller frees them). */
static double *vit_run(lam_layer *m, lam_vars *v, lam_tensor *x, bool training, const lam_rng_key *key) {
  lam_tensor *y = NULL;
  cr_assert_eq(lam_layer_apply(m, v, x, &(lam_apply_opts){.training = training, .rng = key}, &y), LAM_OK, "%s",
               lam_last_error());
  double *out = tu_to_f64(y);
  lam_tensor_free(y);
  return out;
}

static double max_diff(const double *a, const double *b, int n) {
  double d = 0;
  for (int i = 0; i < n; i++) d = fmax(d, fabs(a[i] - b[i]));
  return d;
}

/* Stochastic depth follows timm's linspace(0, rate, depth): with rate 1 over two blocks,
 * block 0 keeps both branches and block 1 drops both in training, so the model equals the
 * depth-1 model (block 0 only) with the same norm and head. Dropouts are active only in
 * training, reproducible for a key, and need one. */
Test(models_vision, vit_drop_path_schedule_and_dropout) {
  lam_ctx *ctx = tu_ctx();
  tu_golden *g = tu_golden_load(GOLDEN);
  lam_tensor *x = tu_golden_tensor(ctx, LAM_F32, g, "vit.x");
  lam_models_vit_opts o = tiny_vit(2, 5, 0.1, 0, true);
  lam_rng_key k1 = lam_rng_key_make(11), k2 = lam_rng_key_make(12);
  lam_vars *v = NULL;
  o.drop_path_rate = 1;
  lam_layer *m = vit_with(ctx, o, &v);
  o.drop_path_rate = 0;
  o.depth = 1;
  lam_vars *v1 = NULL;
  lam_layer *m1 = vit_with(ctx, o, &v1);
  double *eval = vit_run(m, v, x, false, NULL), *train = vit_run(m, v, x, true, &k1),
         *one = vit_run(m1, v1, x, false, NULL);
  tu_assert_close_f64(eval, tu_golden_values(g, "vit.y"), 10, 1e-5, 1e-4, "eval: drop_path is the identity");
  tu_assert_close_f64(train, one, 10, 1e-5, 1e-4, "training with drop_path_rate 1: block 1 dropped");
  cr_assert_gt(max_diff(train, eval, 10), 1e-3, "block 1 matters");
  lam_tensor *y = NULL;
  cr_assert_neq(lam_layer_apply(m, v, x, &(lam_apply_opts){.training = true}, &y), LAM_OK);
  cr_assert(strstr(lam_last_error(), "rng"), "%s", lam_last_error());
  lam_error_clear();
  free(eval);
  free(train);
  free(one);
  lam_vars_free(v);
  lam_layer_free(m);
  lam_vars_free(v1);
  lam_layer_free(m1);
  /* Each dropout alone: training differs from eval, is the same for the same key, differs
   * for another key; LAM_ZERO rates (0) leave training equal to eval. */
  for (int which = 0; which < 5; which++) {
    o = tiny_vit(2, 5, 0.1, 0, true);
    double r = which == 4 ? LAM_ZERO : 0.3;
    if (which == 0 || which == 4) o.drop_rate = r;
    if (which == 1 || which == 4) o.pos_drop_rate = r;
    if (which == 2 || which == 4) o.proj_drop_rate = r;
    if (which == 3 || which == 4) o.attn_drop_rate = r;
    m = vit_with(ctx, o, &v);
    tu_mark mk = tu_mark_now(ctx);
    double *e = vit_run(m, v, x, false, NULL), *t1 = vit_run(m, v, x, true, &k1),
           *t1b = vit_run(m, v, x, true, &k1), *t2 = vit_run(m, v, x, true, &k2);
    tu_assert_close_f64(e, tu_golden_values(g, "vit.y"), 10, 1e-5, 1e-4, "eval with dropout");
    cr_assert_eq(max_diff(t1, t1b, 10), 0, "dropout %d: same key, same output", which);
    if (which < 4) {
      cr_assert_gt(max_diff(t1, e, 10), 1e-4, "dropout %d active in training", which);
      cr_assert_gt(max_diff(t1, t2, 10), 1e-4, "dropout %d: another key", which);
    } else {
      cr_assert_lt(max_diff(t1, e, 10), 1e-6, "LAM_ZERO rates: training equals eval");
    }
    free(e);
    free(t1);
    free(t1b);
    free(t2);
    tu_assert_no_leak(ctx, mk);
    lam_vars_free(v);
    lam_layer_free(m);
  }
  /* no_head: the pooled, normalised class token [N, 16]; head(features) is timm's output. */
  o = tiny_vit(2, 5, 0.1, 0, true);
  o.no_head = true;
  m = vit_with(ctx, o, &v);
  cr_assert_null(lam_ptree_subtree(lam_vars_params(v), "head"));
  lam_error_clear();
  cr_assert_eq(lam_layer_apply(m, v, x, NULL, &y), LAM_OK, "%s", lam_last_error());
  cr_assert(lam_tensor_ndim(y) == 2 && lam_tensor_dim(y, 0) == 2 && lam_tensor_dim(y, 1) == 16);
  double *f = tu_to_f64(y), want[10];
  const double *w = tu_golden_values(g, "vit.sd.head.weight"), *b = tu_golden_values(g, "vit.sd.head.bias");
  for (int n = 0; n < 2; n++)
    for (int c = 0; c < 5; c++) {
      double acc = b[c];
      for (int i = 0; i < 16; i++) acc += w[c * 16 + i] * f[n * 16 + i];
      want[n * 5 + c] = acc;
    }
  tu_assert_close_f64(want, tu_golden_values(g, "vit.y"), 10, 1e-5, 1e-4, "features + head");
  free(f);
  lam_tensor_free(y);
  lam_vars_free(v);
  lam_layer_free(m);
  lam_tensor_free(x);
  tu_golden_free(g);
  lam_ctx_free(ctx);
}

/* The full-size models: torchvision's parameter names (in order), shapes and buffer names. */
static void check_full(lam_layer *m, const char *name) {
  cr_assert(m, "%s: %s", name, lam_last_error());
  lam_ctx *ctx = tu_ctx();
  tu_golden *g = tu_golden_load(GOLDEN);
  lam_vars *v = NULL;
  cr_assert_eq(lam_layer_init(m, ctx, lam_rng_key_make(0), LAM_F32, &v), LAM_OK, "%s", lam_last_error());
  check_names(g, name, lam_vars_params(v), "params");
  check_names(g, name, lam_vars_state(v), "buffers");
  char key[64];
  snprintf(key, sizeof key, "%s.shapes", name);
  lam_ptree *p = lam_vars_params(v);
  for (int i = 0; i < lam_ptree_leaf_count(p); i++) {
    const char *path;
    lam_tensor *t;
    lam_ptree_leaf(p, i, &path, &t);
    char got[64] = "";
    for (int d = 0; d < lam_tensor_ndim(t); d++)
      snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? "," : "", (long long)lam_tensor_dim(t, d));
    cr_assert_str_eq(got, tu_golden_word(g, key, i), "%s: shape of %s", name, path);
  }
  lam_vars_free(v);
  lam_layer_free(m);
  tu_golden_free(g);
  lam_ctx_free(ctx);
}

/* lam_models_resnet_fuse at odd sizes: batch 1 (in-place epilogue) and 3 (the
 * chan_swap epilogue, also one image per chunk), against the unfused model with random
 * running statistics (so the fold is not the identity); and the error rows. */
static void fuse_case(int depth, int64_t batch, int64_t hw, const char *chunk) {
  lam_ctx *ctx = tu_ctx();
  lam_layer *m = lam_models_resnet(depth, &(lam_models_resnet_opts){.width = 4, .num_classes = 7});
  cr_assert(m);
  lam_vars *v = NULL;
  cr_assert_eq(lam_layer_init(m, ctx, lam_rng_key_make(3), LAM_F32, &v), LAM_OK, "%s", lam_last_error());
  tu_rng r = tu_rng_make(11);
  lam_ptree *st = lam_vars_state(v), *pa = lam_vars_params(v);
  for (int t = 0; t < 2; t++) { /* random statistics and affine parameters */
    lam_ptree *tree = t ? st : pa;
    for (int i = 0; i < lam_ptree_leaf_count(tree); i++) {
      const char *path;
      lam_tensor *leaf;
      lam_ptree_leaf(tree, i, &path, &leaf);
      const bool var = strstr(path, "running_var") != NULL, mean = strstr(path, "running_mean") != NULL;
      const bool bn = strstr(path, "bn") || strstr(path, "downsample.1");
      if (!(var || mean || (bn && t == 0))) continue;
      lam_tensor *nv = tu_rand_f32(ctx, &r, lam_tensor_ndim(leaf), lam_tensor_shape(leaf), var ? 0.5 : -0.5,
                                   var ? 2.0 : 0.5);
      cr_assert_eq(lam_ptree_set(tree, path, nv), LAM_OK);
      lam_tensor_free(nv);
    }
  }
  lam_tensor *x = tu_rand_f32(ctx, &r, 4, (int64_t[]){batch, 3, hw, hw + 2}, -1, 1);
  lam_tensor *yu = NULL, *yf = NULL;
  cr_assert_eq(lam_layer_apply(m, v, x, NULL, &yu), LAM_OK, "%s", lam_last_error());
  cr_assert_eq(lam_models_resnet_fuse(m, v), LAM_OK, "%s", lam_last_error());
  if (chunk) setenv("LAMINA_CONV_CHUNK", chunk, 1);
  cr_assert_eq(lam_layer_apply(m, v, x, NULL, &yf), LAM_OK, "%s", lam_last_error());
  unsetenv("LAMINA_CONV_CHUNK");
  double *u = tu_to_f64(yu), scale = 0;
  for (int64_t i = 0; i < lam_tensor_numel(yu); i++) scale = fmax(scale, fabs(u[i]));
  tu_assert_tensor_close(yf, u, lam_tensor_numel(yu), 1e-5 * scale, 1e-4, "fused resnet");
  free(u);
  lam_tensor_free(yu), lam_tensor_free(yf), lam_tensor_free(x);
  lam_vars_free(v);
  lam_layer_free(m);
  lam_ctx_free(ctx);
}

Test(models_vision, resnet_fuse_matches_unfused) {
  fuse_case(18, 1, 17, NULL);
  fuse_case(18, 3, 19, NULL);
  fuse_case(18, 3, 19, "1");
  fuse_case(50, 2, 21, NULL);
}

Test(models_vision, resnet_fuse_bad_input) {
  tu_assert_status(lam_models_resnet_fuse(NULL, NULL), LAM_ERR_NULL, "lam_models_resnet_fuse");
  lam_layer *l = lam_nn_relu();
  tu_assert_status(lam_models_resnet_fuse(l, NULL), LAM_ERR_INVALID_ARGUMENT, "not a lam_models_resnet");
  lam_layer_free(l);
}

Test(models_vision, resnet18_names_and_shapes_are_torchvisions) { check_full(lam_models_resnet(18, NULL), "resnet18"); }
Test(models_vision, resnet34_names_and_shapes_are_torchvisions) { check_full(lam_models_resnet(34, NULL), "resnet34"); }
Test(models_vision, resnet50_names_and_shapes_are_torchvisions) { check_full(lam_models_resnet(50, NULL), "resnet50"); }
Test(models_vision, mobilenet_v2_names_and_shapes_are_torchvisions) {
  check_full(lam_models_mobilenet_v2(NULL), "mobilenet_v2");
}
/* lam_models_vit(NULL) is timm's vit_base_patch16_224 (86M parameters). */
Test(models_vision, vit_base_names_and_shapes_are_timms, .timeout = 600) {
  check_full(lam_models_vit(NULL), "vit_base_patch16_224");
}

Test(models_vision, bad_configurations_name_the_constructor) {
  tu_assert_fails(lam_models_resnet(19, NULL), LAM_ERR_INVALID_ARGUMENT, "lam_models_resnet: depth must be 18, 34 or 50");
  tu_assert_fails(lam_models_resnet(0, NULL), LAM_ERR_INVALID_ARGUMENT, "depth 0");
  tu_assert_fails(lam_models_resnet(18, &(lam_models_resnet_opts){.num_classes = -1}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_models_resnet: num_classes");
  tu_assert_fails(lam_models_resnet(50, &(lam_models_resnet_opts){.drop_path_rate = 1.5}), LAM_ERR_INVALID_ARGUMENT,
                  "drop_path_rate");
  tu_assert_fails(lam_models_resnet(50, &(lam_models_resnet_opts){.dropout = 1}), LAM_ERR_INVALID_ARGUMENT, "dropout");
  tu_assert_fails(lam_models_resnet(18, &(lam_models_resnet_opts){.pool = (lam_models_pool)7}),
                  LAM_ERR_INVALID_ARGUMENT, "pool");
  tu_assert_fails(lam_models_mobilenet_v2(&(lam_models_mobilenet_v2_opts){.width_mult = -1}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_models_mobilenet_v2: width_mult");
  tu_assert_fails(lam_models_mobilenet_v2(&(lam_models_mobilenet_v2_opts){.dropout = 1}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_models_mobilenet_v2: dropout");
  tu_assert_fails(lam_models_vit(&(lam_models_vit_opts){.img_size = 20}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_models_vit: img_size must be a multiple of patch_size");
  tu_assert_fails(lam_models_vit(&(lam_models_vit_opts){.embed_dim = 10}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_models_vit: embed_dim must be divisible by num_heads");
  tu_assert_fails(lam_models_vit(&(lam_models_vit_opts){.depth = -2}), LAM_ERR_INVALID_ARGUMENT,
                  "lam_models_vit: every size");
  tu_assert_fails(lam_models_vit(&(lam_models_vit_opts){.mlp_ratio = -1}), LAM_ERR_INVALID_ARGUMENT,
                  "mlp_ratio");
  tu_assert_fails(lam_models_vit(&(lam_models_vit_opts){.init_values = -1}), LAM_ERR_INVALID_ARGUMENT,
                  "init_values");
  tu_assert_fails(lam_models_vit(&(lam_models_vit_opts){.attn_drop_rate = 1}), LAM_ERR_INVALID_ARGUMENT,
                  "dropout rates");
  tu_assert_fails(lam_models_vit(&(lam_models_vit_opts){.drop_path_rate = 2}), LAM_ERR_INVALID_ARGUMENT,
                  "drop_path_rate");
  tu_assert_fails(lam_models_vit(&(lam_models_vit_opts){.global_pool = (lam_models_vit_pool)5}),
                  LAM_ERR_INVALID_ARGUMENT, "global_pool");
}

/* Leaf paths and shapes of a model initialised in f32, as one string. */
static char *layout(lam_ctx *ctx, lam_layer *m) {
  cr_assert(m, "%s", lam_last_error());
  lam_vars *v = NULL;
  cr_assert_eq(lam_layer_init(m, ctx, lam_rng_key_make(0), LAM_F32, &v), LAM_OK, "%s", lam_last_error());
  size_t cap = 1 << 16, len = 0;
  char *s = calloc(cap, 1);
  lam_ptree *trees[2] = {lam_vars_params(v), lam_vars_state(v)};
  for (int t = 0; t < 2; t++)
    for (int i = 0; i < lam_ptree_leaf_count(trees[t]); i++) {
      const char *path;
      lam_tensor *x;
      lam_ptree_leaf(trees[t], i, &path, &x);
      len += (size_t)snprintf(s + len, cap - len, "%s:%lld;", path, (long long)lam_tensor_numel(x));
      cr_assert(len < cap);
    }
  lam_vars_free(v);
  lam_layer_free(m);
  return s;
}

Test(models_vision, options_rule_null_zero_and_defaults_agree) {
  lam_ctx *ctx = tu_ctx();
  lam_models_resnet_opts d = lam_models_resnet_defaults();
  cr_assert_eq(d.num_classes, 1000);
  cr_assert_eq(d.in_channels, 3);
  cr_assert_eq(d.width, 64);
  cr_assert_eq(d.drop_block_size, 7);
  d.width = 4;
  char *a = layout(ctx, lam_models_resnet(34, &d));
  char *b = layout(ctx, lam_models_resnet(34, &(lam_models_resnet_opts){.width = 4}));
  cr_assert_str_eq(a, b);
  free(a);
  free(b);
  lam_models_mobilenet_v2_opts md = lam_models_mobilenet_v2_defaults();
  cr_assert_eq(md.num_classes, 1000);
  cr_assert_float_eq(md.width_mult, 1.0, 0);
  cr_assert_eq(md.round_nearest, 8);
  cr_assert_float_eq(md.dropout, 0.2, 0);
  a = layout(ctx, lam_models_mobilenet_v2(NULL));
  b = layout(ctx, lam_models_mobilenet_v2(&(lam_models_mobilenet_v2_opts){0}));
  char *c = layout(ctx, lam_models_mobilenet_v2(&md));
  cr_assert_str_eq(a, b);
  cr_assert_str_eq(a, c);
  cr_assert(strstr(a, "features.18.0.weight:409600;"), "last_channel 1280 x 320"); /* 1280 * 320 */
  free(a);
  free(b);
  free(c);
  lam_models_vit_opts vd = lam_models_vit_defaults();
  cr_assert(vd.img_size == 224 && vd.patch_size == 16 && vd.in_chans == 3 && vd.num_classes == 1000 &&
            vd.embed_dim == 768 && vd.depth == 12 && vd.num_heads == 12);
  cr_assert_float_eq(vd.mlp_ratio, 4.0, 0);
  cr_assert_float_eq(vd.layer_norm_eps, 1e-6, 0);
  cr_assert(!vd.no_qkv_bias && vd.init_values == 0 && vd.drop_path_rate == 0 && !vd.no_head &&
            vd.global_pool == LAM_MODELS_VIT_POOL_TOKEN);
  vd.img_size = 32;
  vd.embed_dim = 24;
  vd.depth = 2;
  a = layout(ctx, lam_models_vit(&vd));
  b = layout(ctx, lam_models_vit(&(lam_models_vit_opts){.img_size = 32, .embed_dim = 24, .depth = 2}));
  cr_assert_str_eq(a, b);
  cr_assert(strstr(a, "cls_token:24;pos_embed:120;patch_embed.proj.weight:"), "%s", a); /* (1 + 2 * 2) * 24 */
  free(a);
  free(b);
  lam_ctx_free(ctx);
}

/* The r18 golden model with extra options, its weights loaded; eval output in *y. */
static lam_layer *r18_with(lam_ctx *ctx, const tu_golden *g, lam_models_resnet_opts o, lam_vars **v, lam_tensor **y) {
  o.width = 4;
  o.num_classes = 5;
  lam_layer *m = lam_models_resnet(18, &o);
  cr_assert(m, "%s", lam_last_error());
  cr_assert_eq(lam_layer_init(m, ctx, lam_rng_key_make(3), LAM_F32, v), LAM_OK, "%s", lam_last_error());
  lam_load_opts lo = {.non_strict = true, .prefix = "r18.sd."};
  const char *path = tu_data_path(GOLDEN);
  lam_ptree *fc = lam_ptree_subtree(lam_vars_params(*v), "fc");
  if (o.pool == LAM_MODELS_POOL_CAT_MEAN_MAX || o.no_head) { /* another fc shape, or none */
    lam_ptree *keep = fc ? lam_ptree_copy(fc) : NULL;
    if (fc) lam_ptree_remove(lam_vars_params(*v), "fc");
    cr_assert_eq(lam_ptree_load_into(lam_vars_params(*v), path, &lo), LAM_OK, "%s", lam_last_error());
    if (keep) lam_ptree_set_subtree(lam_vars_params(*v), "fc", keep);
  } else {
    cr_assert_eq(lam_ptree_load_into(lam_vars_params(*v), path, &lo), LAM_OK, "%s", lam_last_error());
  }
  cr_assert_eq(lam_ptree_load_into(lam_vars_state(*v), path, &lo), LAM_OK, "%s", lam_last_error());
  lam_tensor *x = tu_golden_tensor(ctx, LAM_F32, g, "r18.x");
  cr_assert_eq(lam_layer_apply(m, *v, x, NULL, y), LAM_OK, "%s", lam_last_error());
  lam_tensor_free(x);
  return m;
}

Test(models_vision, drop_block_and_stochastic_depth_follow_metalheads_schedule) {
  lam_ctx *ctx = tu_ctx();
  tu_golden *g = tu_golden_load(GOLDEN);
  lam_vars *v = NULL;
  lam_tensor *y = NULL;
  lam_layer *m = r18_with(ctx, g, (lam_models_resnet_opts){.drop_block_rate = 0.1, .drop_path_rate = 0.3,
                                                            .drop_block_size = 3}, &v, &y);
  /* Evaluation: the regularizers are the identity, so torchvision's outputs. */
  tu_assert_tensor_close(y, tu_golden_values(g, "r18.y"), 10, 1e-5, 1e-4, "eval with regularizers");
  lam_tensor_free(y);
  /* Rates rise linearly from 0 over the 8 blocks: block 0 has neither layer, the last both. */
  lam_layer *layer1 = NULL, *layer4 = NULL;
  for (int i = 0; i < lam_layer_child_count(m); i++) {
    if (strcmp(lam_layer_child_key(m, i), "layer1") == 0) layer1 = lam_layer_child(m, i);
    if (strcmp(lam_layer_child_key(m, i), "layer4") == 0) layer4 = lam_layer_child(m, i);
  }
  cr_assert(layer1 && layer4);
  lam_layer *first = lam_layer_child(layer1, 0), *last = lam_layer_child(layer4, 1);
  bool first_has = false, last_block = false, last_path = false;
  for (int i = 0; i < lam_layer_child_count(first); i++)
    first_has = first_has || strncmp(lam_layer_child_key(first, i), "drop_", 5) == 0;
  for (int i = 0; i < lam_layer_child_count(last); i++) {
    last_block = last_block || strcmp(lam_layer_child_key(last, i), "drop_block") == 0;
    last_path = last_path || strcmp(lam_layer_child_key(last, i), "drop_path") == 0;
  }
  cr_assert(!first_has && last_block && last_path);
  cr_assert_str_eq(lam_layer_name(lam_layer_child(last, lam_layer_child_count(last) - 1)), "stochastic_depth");
  /* Training needs an rng and runs with one. */
  lam_tensor *x = tu_golden_tensor(ctx, LAM_F32, g, "r18.x");
  lam_tensor *t = NULL;
  cr_assert_neq(lam_layer_apply(m, v, x, &(lam_apply_opts){.training = true}, &t), LAM_OK);
  lam_error_clear();
  lam_rng_key key = lam_rng_key_make(5);
  cr_assert_eq(lam_layer_apply(m, v, x, &(lam_apply_opts){.training = true, .rng = &key}, &t), LAM_OK, "%s",
               lam_last_error());
  double *tv = tu_to_f64(t);
  for (int i = 0; i < 10; i++) cr_assert(isfinite(tv[i]));
  free(tv);
  lam_tensor_free(t);
  lam_tensor_free(x);
  lam_vars_free(v);
  lam_layer_free(m);
  tu_golden_free(g);
  lam_ctx_free(ctx);
}

/* fc(pool(feat)) on the host for feat [2, 32, 2, 2]: mode 0 average, 1 max, 2 mean and max
 * concatenated (fc weight [5, 64]). */
static void host_head(const double *feat, int mode, const double *w, const double *bias, double *y) {
  int64_t in = mode == 2 ? 64 : 32;
  for (int n = 0; n < 2; n++) {
    double pooled[64];
    for (int c = 0; c < 32; c++) {
      const double *f = feat + (n * 32 + c) * 4;
      double mean = (f[0] + f[1] + f[2] + f[3]) / 4, mx = fmax(fmax(f[0], f[1]), fmax(f[2], f[3]));
      pooled[c] = mode == 1 ? mx : mean;
      if (mode == 2) pooled[32 + c] = mx;
    }
    for (int o = 0; o < 5; o++) {
      double acc = bias[o];
      for (int64_t i = 0; i < in; i++) acc += w[o * in + i] * pooled[i];
      y[n * 5 + o] = acc;
    }
  }
}

Test(models_vision, head_pooling_choices_and_no_head) {
  lam_ctx *ctx = tu_ctx();
  tu_golden *g = tu_golden_load(GOLDEN);
  lam_vars *v = NULL;
  lam_tensor *y = NULL;
  /* A backbone: layer4's map [2, 32, 2, 2] for the 48x48 input, no fc. */
  lam_layer *m = r18_with(ctx, g, (lam_models_resnet_opts){.no_head = true}, &v, &y);
  cr_assert_eq(lam_tensor_ndim(y), 4);
  cr_assert(lam_tensor_dim(y, 0) == 2 && lam_tensor_dim(y, 1) == 32 && lam_tensor_dim(y, 2) == 2 &&
            lam_tensor_dim(y, 3) == 2);
  cr_assert_null(lam_ptree_subtree(lam_vars_params(v), "fc"));
  lam_error_clear();
  double *feat = tu_to_f64(y);
  lam_tensor_free(y);
  lam_vars_free(v);
  lam_layer_free(m);
  double want[10];
  /* The default average head on the backbone's map gives torchvision's outputs. */
  host_head(feat, 0, tu_golden_values(g, "r18.sd.fc.weight"), tu_golden_values(g, "r18.sd.fc.bias"), want);
  tu_assert_close_f64(want, tu_golden_values(g, "r18.y"), 10, 1e-5, 1e-4, "backbone + average head");
  const lam_models_pool pools[2] = {LAM_MODELS_POOL_MAX, LAM_MODELS_POOL_CAT_MEAN_MAX};
  for (int k = 0; k < 2; k++) {
    m = r18_with(ctx, g, (lam_models_resnet_opts){.pool = pools[k]}, &v, &y);
    lam_tensor *w = lam_ptree_get(lam_vars_params(v), "fc.weight");
    cr_assert(w && lam_tensor_dim(w, 0) == 5 && lam_tensor_dim(w, 1) == (k ? 64 : 32));
    double *wv = tu_to_f64(w), *bv = tu_to_f64(lam_ptree_get(lam_vars_params(v), "fc.bias"));
    host_head(feat, k + 1, wv, bv, want);
    tu_assert_tensor_close(y, want, 10, 1e-5, 1e-4, k ? "cat mean-max head" : "max head");
    free(wv);
    free(bv);
    lam_tensor_free(y);
    lam_vars_free(v);
    lam_layer_free(m);
  }
  free(feat);
  tu_golden_free(g);
  lam_ctx_free(ctx);
}

/* The child at a dotted path of keys ("layer1.0.downsample.1"), or NULL. */
static lam_layer *child_at(lam_layer *l, const char *path) {
  char buf[128];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *seg = strtok(buf, "."); seg && l; seg = strtok(NULL, ".")) {
    lam_layer *next = NULL;
    for (int i = 0; i < lam_layer_child_count(l) && !next; i++)
      if (strcmp(lam_layer_child_key(l, i), seg) == 0) next = lam_layer_child(l, i);
    l = next;
  }
  return l;
}

/* lam_layer_summary walks the blocks through their named children. */
Test(models_vision, summary_walks_every_block) {
  lam_ctx *ctx = tu_ctx();
  lam_layer *models[2] = {lam_models_resnet(50, &(lam_models_resnet_opts){.width = 2, .num_classes = 5}),
                          lam_models_mobilenet_v2(&(lam_models_mobilenet_v2_opts){
                              .width_mult = 0.1, .round_nearest = 4, .last_channel = 32, .num_classes = 5})};
  /* Rows are indented keys; the child paths are checked by walking lam_layer_child. */
  const char *want[2][4] = {{"layer4", "downsample", "conv3", "avgpool"},
                            {"features", "conv", "classifier", "flatten"}};
  const char *paths[2][2] = {{"layer1.0.downsample.1", "layer4.2.bn3"},
                             {"features.17.conv.1.0", "classifier.1"}};
  const char *types[2][2] = {{"batch_norm", "batch_norm"}, {"conv2d", "linear"}};
  for (int k = 0; k < 2; k++) {
    cr_assert(models[k], "%s", lam_last_error());
    lam_vars *v = NULL;
    cr_assert_eq(lam_layer_init(models[k], ctx, lam_rng_key_make(0), LAM_F32, &v), LAM_OK);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_eq(lam_layer_summary(models[k], v, 4, (int64_t[]){1, 3, 32, 32}, NULL, f), LAM_OK, "%s",
                 lam_last_error());
    fclose(f);
    for (int i = 0; i < 4; i++) cr_assert(strstr(buf, want[k][i]), "summary lacks %s:\n%s", want[k][i], buf);
    cr_assert(strstr(buf, k ? "inverted_residual" : "bottleneck"), "%s", buf);
    for (int i = 0; i < 2; i++) {
      lam_layer *l = child_at(models[k], paths[k][i]);
      cr_assert(l, "no child %s", paths[k][i]);
      cr_assert_str_eq(lam_layer_name(l), types[k][i], "%s", paths[k][i]);
    }
    free(buf);
    lam_vars_free(v);
    lam_layer_free(models[k]);
  }
  lam_ctx_free(ctx);
}


