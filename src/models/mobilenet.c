/* models/mobilenet.c: torchvision's MobileNetV2 (lamina/models.h):
 * inverted residual blocks of 1x1 expansion, depthwise 3x3 (groups =
 * channels) and 1x1 projection convolutions with batch norm and ReLU6, in
 * named chains (models/chain.c) so the parameter paths are torchvision's
 * (features.N.conv.M..., classifier.1). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"
#include "lamina/blocks.h"
#include "lamina/conv.h"
#include "lamina/dense.h"
#include "lamina/elementwise.h"
#include "lamina/models.h"
#include "lamina/norm.h"
#include "lamina/regularize.h"
#include "models/models_internal.h"

lam_models_mobilenet_v2_opts lam_models_mobilenet_v2_defaults(void) {
  return (lam_models_mobilenet_v2_opts){.num_classes = 1000, .in_channels = 3, .width_mult = 1.0,
                                        .round_nearest = 8, .last_channel = 0, .dropout = 0.2,
                                        .no_head = false};
}

/* torchvision's _make_divisible: v rounded to the nearest multiple of divisor,
 * at least divisor, and not below 90% of v. */
static int64_t lam__make_divisible(double v, int64_t divisor) {
  int64_t r = (int64_t)(v + (double)divisor / 2) / divisor * divisor;
  if (r < divisor) r = divisor;
  if ((double)r < 0.9 * v) r += divisor;
  return r;
}

static lam_layer *lam__mconv(int64_t in, int64_t out, int k, int stride, int64_t groups) {
  int p = (k - 1) / 2;
  return lam_nn_conv2d(in, out, &(lam_conv_opts){
      .kernel = {k, k}, .stride = {stride, stride}, .padding = LAM_PADDING_EXPLICIT,
      .pad = {{p, p}, {p, p}}, .groups = (int)groups, .no_bias = true,
      .weight_init = lam_init_variance_scaling(2.0, LAM_FAN_OUT, LAM_DIST_NORMAL)});
}

/* torchvision's Conv2dNormActivation(in, out, k, stride, groups, ReLU6): children "0", "1", "2". */
static lam_layer *lam__cna(int64_t in, int64_t out, int k, int stride, int64_t groups) {
  return lam_nn_conv_norm(lam__mconv(in, out, k, stride, groups), lam_nn_batch_norm(out, NULL),
                          lam_nn_activation(LAM_RELU6, NULL), NULL);
}

/* torchvision's InvertedResidual: child "conv", a sequential of [expansion
 * CNA], depthwise CNA, projection conv, batch norm; the input is added when
 * stride is 1 and the channels agree. */
static lam_layer *lam__inverted_residual(int64_t inp, int64_t oup, int stride, int expand) {
  int64_t hidden = inp * expand;
  lam_layer *seq[4];
  int n = 0;
  if (expand != 1) seq[n++] = lam__cna(inp, hidden, 1, 1, 1);
  seq[n++] = lam__cna(hidden, hidden, 3, stride, hidden);
  seq[n++] = lam__mconv(hidden, oup, 1, 1, 1);
  seq[n++] = lam_nn_batch_norm(oup, NULL);
  bool ok = true;
  for (int i = 0; i < n; i++) ok = ok && seq[i];
  lam_layer *conv = NULL;
  if (ok) {
    conv = lam_nn_sequential(seq, n);
  } else {
    for (int i = 0; i < n; i++) lam_layer_free(seq[i]);
  }
  return lam__models_chain("inverted_residual", 1, (const char *const[]){"conv"}, (lam_layer *[]){conv},
                           stride == 1 && inp == oup, NULL, NULL, false);
}

lam_layer *lam_models_mobilenet_v2(const lam_models_mobilenet_v2_opts *opts) {
  const char *fn = "lam_models_mobilenet_v2";
  lam_models_mobilenet_v2_opts o = opts ? *opts : (lam_models_mobilenet_v2_opts){0};
  lam_models_mobilenet_v2_opts d = lam_models_mobilenet_v2_defaults();
  o.num_classes = lam__opt_i64(o.num_classes, d.num_classes);
  o.in_channels = lam__opt_i64(o.in_channels, d.in_channels);
  o.width_mult = lam__opt_f64(o.width_mult, d.width_mult);
  o.round_nearest = lam__opt_i64(o.round_nearest, d.round_nearest);
  o.dropout = lam__opt_f64(o.dropout, d.dropout);
  const char *bad = o.num_classes < 1                                  ? "num_classes must be >= 1"
                    : o.in_channels < 1                                ? "in_channels must be >= 1"
                    : !(o.width_mult > 0 && o.width_mult < 1e3)        ? "width_mult must be > 0"
                    : o.round_nearest < 1                              ? "round_nearest must be >= 1"
                    : o.last_channel < 0                               ? "last_channel must be >= 0"
                    : !(o.dropout >= 0 && o.dropout < 1)               ? "dropout must be in [0, 1)"
                                                                       : NULL;
  if (bad) {
    lam__fail(LAM_ERR_INVALID_ARGUMENT,
              "%s: %s (num_classes %lld, in_channels %lld, width_mult %g, round_nearest %lld, "
              "last_channel %lld, dropout %g)",
              fn, bad, (long long)o.num_classes, (long long)o.in_channels, o.width_mult,
              (long long)o.round_nearest, (long long)o.last_channel, o.dropout);
    return NULL;
  }
  int64_t last = o.last_channel > 0 ? o.last_channel
                                    : lam__make_divisible(1280 * fmax(1.0, o.width_mult), o.round_nearest);
  /* t (expansion), c (channels), n (repeats), s (stride of the first) */
  static const int setting[7][4] = {{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2},
                                    {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
  lam_layer *features[32];
  int nf = 0;
  int64_t input = lam__make_divisible(32 * o.width_mult, o.round_nearest);
  features[nf++] = lam__cna(o.in_channels, input, 3, 2, 1);
  for (int g = 0; g < 7; g++) {
    int64_t output = lam__make_divisible(setting[g][1] * o.width_mult, o.round_nearest);
    for (int i = 0; i < setting[g][2]; i++) {
      features[nf++] = lam__inverted_residual(input, output, i == 0 ? setting[g][3] : 1, setting[g][0]);
      input = output;
    }
  }
  features[nf++] = lam__cna(input, last, 1, 1, 1);
  bool ok = true;
  for (int i = 0; i < nf; i++) ok = ok && features[i];
  const char *keys[4];
  lam_layer *layers[4];
  int n = 0;
  keys[n] = "features";
  if (ok) {
    layers[n++] = lam_nn_sequential(features, nf);
  } else {
    for (int i = 0; i < nf; i++) lam_layer_free(features[i]);
    layers[n++] = NULL;
  }
  if (!o.no_head) {
    keys[n] = "avgpool", layers[n++] = lam_nn_adaptive_avg_pool2d(1, 1);
    keys[n] = "flatten", layers[n++] = lam_nn_flatten(1, -1);
    /* classifier.0 is the dropout (the identity at rate 0), so the linear layer is classifier.1. */
    lam_layer *drop = lam_nn_dropout(&(lam_dropout_opts){.rate = o.dropout > 0 ? o.dropout : LAM_ZERO});
    lam_layer *fc = lam_nn_linear(last, o.num_classes, &(lam_linear_opts){.weight_init = lam_init_normal(0.01)});
    keys[n] = "classifier";
    if (drop && fc) {
      layers[n++] = lam_nn_sequential((lam_layer *[]){drop, fc}, 2);
    } else {
      lam_layer_free(drop);
      lam_layer_free(fc);
      layers[n++] = NULL;
    }
  }
  return lam__models_chain("mobilenet_v2", n, keys, layers, false, NULL, NULL, false);
}
