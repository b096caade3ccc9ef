/* models/resnet.c: torchvision's ResNet-18/34/50 (lamina/models.h) with
 * Metalhead's options (DropBlock and stochastic depth with linearly
 * scheduled rates, the head's pooling and dropout), built from conv, batch
 * norm, pool, regularization and dense layers in named chains
 * (models/chain.c) so the parameter paths are torchvision's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "lamina/conv.h"
#include "lamina/dense.h"
#include "lamina/models.h"
#include "lamina/norm.h"
#include "lamina/regularize.h"
#include "models/models_internal.h"

#define LAM__RESNET_FN "lam_models_resnet"

lam_models_resnet_opts lam_models_resnet_defaults(void) {
  return (lam_models_resnet_opts){.num_classes = 1000, .in_channels = 3, .width = 64,
                                  .drop_block_rate = 0, .drop_block_size = 7, .drop_path_rate = 0,
                                  .dropout = 0, .pool = LAM_MODELS_POOL_AVG, .no_head = false};
}

/* torchvision's conv3x3 / conv1x1 / stem conv: no bias, padding (k - 1) / 2 on
 * every side, kaiming normal (fan out, relu gain) init. */
static lam_layer *lam__conv(int64_t in, int64_t out, int k, int stride) {
  int p = (k - 1) / 2;
  return lam_nn_conv2d(in, out, &(lam_conv_opts){
      .kernel = {k, k}, .stride = {stride, stride}, .padding = LAM_PADDING_EXPLICIT,
      .pad = {{p, p}, {p, p}}, .no_bias = true,
      .weight_init = lam_init_variance_scaling(2.0, LAM_FAN_OUT, LAM_DIST_NORMAL)});
}

static lam_layer *lam__bn(int64_t c) { return lam_nn_batch_norm(c, NULL); }

/* The regularizers of block b (NULL where its rate is 0). */
typedef struct {
  double block_rate, path_rate;
  int64_t block_size;
} lam__resnet_reg;

static lam_layer *lam__drop_block(lam__resnet_reg r) {
  return lam_nn_dropblock(&(lam_dropblock_opts){.rate = r.block_rate, .block_size = r.block_size});
}
static lam_layer *lam__drop_path(lam__resnet_reg r) {
  return lam_nn_stochastic_depth(&(lam_stochastic_depth_opts){.rate = r.path_rate});
}

/* torchvision's BasicBlock (expansion 1) or Bottleneck (expansion 4, stride on
 * the 3x3 conv); Metalhead's drop_block after bn1 / bn2, drop_path last. */
static lam_layer *lam__resnet_block(bool bottleneck, int64_t inplanes, int64_t planes, int stride,
                                    lam__resnet_reg reg) {
  const char *keys[12];
  lam_layer *layers[12];
  int n = 0;
  int64_t outplanes = bottleneck ? planes * 4 : planes;
#define LAM__ADD(k, l) (keys[n] = (k), layers[n++] = (l))
  if (!bottleneck) {
    LAM__ADD("conv1", lam__conv(inplanes, planes, 3, stride));
    LAM__ADD("bn1", lam__bn(planes));
    if (reg.block_rate > 0) LAM__ADD("drop_block", lam__drop_block(reg));
    LAM__ADD("relu", lam_nn_relu());
    LAM__ADD("conv2", lam__conv(planes, planes, 3, 1));
    LAM__ADD("bn2", lam__bn(planes));
  } else {
    LAM__ADD("conv1", lam__conv(inplanes, planes, 1, 1));
    LAM__ADD("bn1", lam__bn(planes));
    LAM__ADD("relu1", lam_nn_relu());
    LAM__ADD("conv2", lam__conv(planes, planes, 3, stride));
    LAM__ADD("bn2", lam__bn(planes));
    if (reg.block_rate > 0) LAM__ADD("drop_block", lam__drop_block(reg));
    LAM__ADD("relu2", lam_nn_relu());
    LAM__ADD("conv3", lam__conv(planes, outplanes, 1, 1));
    LAM__ADD("bn3", lam__bn(outplanes));
  }
  if (reg.path_rate > 0) LAM__ADD("drop_path", lam__drop_path(reg));
#undef LAM__ADD
  lam_layer *down = NULL;
  bool want_down = stride != 1 || inplanes != outplanes;
  if (want_down)
    down = lam_nn_sequential((lam_layer *[]){lam__conv(inplanes, outplanes, 1, stride), lam__bn(outplanes)}, 2);
  return lam__models_chain(bottleneck ? "bottleneck" : "basic_block", n, keys, layers, true,
                           want_down ? "downsample" : NULL, down, true);
}

static lam_layer *lam__resnet_head_pool(lam_models_pool pool) {
  switch (pool) {
    case LAM_MODELS_POOL_MAX: return lam_nn_adaptive_max_pool2d(1, 1);
    case LAM_MODELS_POOL_MEAN_MAX: return lam_nn_adaptive_mean_max_pool2d(1, 1, false);
    case LAM_MODELS_POOL_CAT_MEAN_MAX: return lam_nn_adaptive_mean_max_pool2d(1, 1, true);
    default: return lam_nn_adaptive_avg_pool2d(1, 1);
  }
}

lam_layer *lam_models_resnet(int depth, const lam_models_resnet_opts *opts) {
  const char *fn = LAM__RESNET_FN;
  lam_models_resnet_opts o = opts ? *opts : (lam_models_resnet_opts){0};
  lam_models_resnet_opts d = lam_models_resnet_defaults();
  o.num_classes = lam__opt_i64(o.num_classes, d.num_classes);
  o.in_channels = lam__opt_i64(o.in_channels, d.in_channels);
  o.width = lam__opt_i64(o.width, d.width);
  o.drop_block_size = lam__opt_i64(o.drop_block_size, d.drop_block_size);
  static const int repeats18[4] = {2, 2, 2, 2}, repeats34[4] = {3, 4, 6, 3};
  const int *repeats = depth == 18 ? repeats18 : depth == 34 || depth == 50 ? repeats34 : NULL;
  const char *bad = !repeats                                         ? "depth must be 18, 34 or 50"
                    : o.num_classes < 1                              ? "num_classes must be >= 1"
                    : o.in_channels < 1                              ? "in_channels must be >= 1"
                    : o.width < 1                                    ? "width must be >= 1"
                    : !(o.drop_block_rate >= 0 && o.drop_block_rate <= 1) ? "drop_block_rate must be in [0, 1]"
                    : o.drop_block_size < 1                          ? "drop_block_size must be >= 1"
                    : !(o.drop_path_rate >= 0 && o.drop_path_rate <= 1) ? "drop_path_rate must be in [0, 1]"
                    : !(o.dropout >= 0 && o.dropout < 1)             ? "dropout must be in [0, 1)"
                    : (int)o.pool < 0 || o.pool > LAM_MODELS_POOL_CAT_MEAN_MAX ? "pool is not a lam_models_pool"
                                                                     : NULL;
  if (bad) {
    lam__fail(LAM_ERR_INVALID_ARGUMENT,
              "%s: %s (depth %d, num_classes %lld, in_channels %lld, width %lld, drop_block_rate %g, "
              "drop_block_size %lld, drop_path_rate %g, dropout %g, pool %d)",
              fn, bad, depth, (long long)o.num_classes, (long long)o.in_channels, (long long)o.width,
              o.drop_block_rate, (long long)o.drop_block_size, o.drop_path_rate, o.dropout, (int)o.pool);
    return NULL;
  }
  bool bottleneck = depth == 50;
  int nblocks = 0;
  for (int s = 0; s < 4; s++) nblocks += repeats[s];
  double block_rates[16], path_rates[16];
  if (lam_stochastic_depth_rates(o.drop_block_rate, 0, nblocks, block_rates) != LAM_OK ||
      lam_stochastic_depth_rates(o.drop_path_rate, 0, nblocks, path_rates) != LAM_OK)
    return NULL;

  const char *keys[12];
  lam_layer *layers[12];
  int n = 0;
  keys[n] = "conv1", layers[n++] = lam__conv(o.in_channels, o.width, 7, 2);
  keys[n] = "bn1", layers[n++] = lam__bn(o.width);
  keys[n] = "relu", layers[n++] = lam_nn_relu();
  keys[n] = "maxpool", layers[n++] = lam_nn_max_pool2d(
      &(lam_pool_opts){.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}});
  static const char *const stage_keys[4] = {"layer1", "layer2", "layer3", "layer4"};
  int64_t inplanes = o.width;
  int b = 0;
  for (int s = 0; s < 4; s++) {
    int64_t planes = o.width << s;
    lam_layer *blocks[6];
    for (int i = 0; i < repeats[s]; i++, b++) {
      lam__resnet_reg reg = {block_rates[b], path_rates[b], o.drop_block_size};
      blocks[i] = lam__resnet_block(bottleneck, inplanes, planes, s > 0 && i == 0 ? 2 : 1, reg);
      inplanes = bottleneck ? planes * 4 : planes;
    }
    bool ok = true;
    for (int i = 0; i < repeats[s]; i++) ok = ok && blocks[i];
    keys[n] = stage_keys[s];
    if (ok) {
      layers[n++] = lam_nn_sequential(blocks, repeats[s]);
    } else {
      for (int i = 0; i < repeats[s]; i++) lam_layer_free(blocks[i]);
      layers[n++] = NULL;
    }
  }
  if (!o.no_head) {
    keys[n] = o.pool == LAM_MODELS_POOL_AVG ? "avgpool" : "pool", layers[n++] = lam__resnet_head_pool(o.pool);
    keys[n] = "flatten", layers[n++] = lam_nn_flatten(1, -1);
    if (o.dropout > 0) keys[n] = "dropout", layers[n++] = lam_nn_dropout(&(lam_dropout_opts){.rate = o.dropout});
    int64_t features = inplanes * (o.pool == LAM_MODELS_POOL_CAT_MEAN_MAX ? 2 : 1);
    /* PyTorch's nn.Linear weight init (kaiming uniform, a = sqrt(5)). */
    keys[n] = "fc", layers[n++] = lam_nn_linear(features, o.num_classes, &(lam_linear_opts){
        .weight_init = lam_init_variance_scaling(1.0 / 3, LAM_FAN_IN, LAM_DIST_UNIFORM)});
  }
  /* NULL when a part failed: its constructor's message stands. */
  return lam__models_chain("resnet", n, keys, layers, false, NULL, NULL, false);
}

lam_status lam_models_resnet_fuse(lam_layer *model, lam_vars *vars) {
  const char *fn = "lam_models_resnet_fuse";
  if (!model) return lam__fail(LAM_ERR_NULL, "%s: model is NULL", fn);
  if (strcmp(lam_layer_name(model), "resnet") != 0)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: the layer is a %s, not a lam_models_resnet", fn,
                     lam_layer_name(model));
  if (!vars) return lam__models_chain_fuse(model, NULL, NULL, true);
  if (lam_vars_dtype(vars) != LAM_F32 && lam_vars_dtype(vars) != LAM_F64)
    return lam__fail(LAM_ERR_DTYPE, "%s: vars are %s; f32 or f64 expected", fn,
                     lam_dtype_name(lam_vars_dtype(vars)));
  lam_status st = lam__models_chain_fuse(model, lam_vars_params(vars), lam_vars_state(vars), false);
  if (st != LAM_OK) lam__models_chain_fuse(model, NULL, NULL, true);
  return st;
}
