/* lamina/models.h: the model zoo, vision models (ResNet-18/34/50, MobileNetV2, ViT).
 *
 * Each constructor takes a config struct (the options rule, lamina/options.h:
 * NULL, a zeroed struct and the defaults function mean the same) and returns
 * a lam_layer built from lamina's layers, or NULL with a message naming the
 * constructor. Parameter paths are torchvision's own (timm's for ViT) ("conv1.weight",
 * "layer1.0.downsample.1.bias", "fc.weight", "features.3.conv.1.0.weight",
 * "classifier.1.weight"), and batch-norm running statistics sit in the state
 * tree under the same paths ("bn1.running_mean", "bn1.num_batches_tracked"),
 * so a torchvision state_dict saved as safetensors loads by key with no
 * renaming: lam_ptree_load_into the params and the state from the same file,
 * each non-strict (each tree holds only its own keys; together they use
 * every key of the file).
 *
 * The structure and numerics are torchvision's: explicit padding (1 for 3x3
 * convolutions, 3 for the 7x7 stem, 1 for the stem's max pool), convolutions
 * without bias, strides on the 3x3 convolution of the bottleneck (ResNet
 * v1.5), batch norm eps 1e-5 and momentum 0.1. Initialisation follows
 * torchvision for convolutions (kaiming normal, fan out) and batch norm
 * (ones, zeros); linear weights are PyTorch's default (ResNet) or N(0, 0.01)
 * (MobileNetV2), linear biases zeros (PyTorch draws them uniformly).
 *
 * Composite parts are custom layers with named children, so
 * lam_layer_child / lam_layer_summary walk the whole model. Layers without
 * parameters have children keys of their own ("relu", "maxpool", "avgpool",
 * "flatten", "drop_block", "drop_path") that never appear in a state_dict. */
#ifndef LAMINA_MODELS_H
#define LAMINA_MODELS_H

#include "lamina/export.h"

#include <stdbool.h>
#include <stdint.h>

#include "lamina/layer.h"
#include "lamina/options.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The pooling of a classifier head (Metalhead's pool_layer). */
typedef enum lam_models_pool {
  LAM_MODELS_POOL_AVG = 0,      /* adaptive average pool to 1x1 (torchvision's avgpool; default) */
  LAM_MODELS_POOL_MAX,          /* adaptive max pool to 1x1 */
  LAM_MODELS_POOL_MEAN_MAX,     /* 0.5 (mean + max) (Metalhead's AdaptiveMeanMaxPool) */
  LAM_MODELS_POOL_CAT_MEAN_MAX  /* mean and max concatenated: the head sees 2C features
                                   (Metalhead's AdaptiveCatMeanMaxPool) */
} lam_models_pool;

/* ---- ResNet ---------------------------------------------------------------- */

typedef struct lam_models_resnet_opts {
  int64_t num_classes;     /* outputs of "fc"; 0: 1000 */
  int64_t in_channels;     /* input channels of "conv1"; 0: 3 */
  int64_t width;           /* channels of the stem and of stage 1; stage i has width * 2^(i-1)
                              planes (x4 out of a bottleneck); 0: 64 (torchvision's ResNet).
                              Smaller widths keep torchvision's names (tiny test models). */
  double drop_block_rate;  /* DropBlock after bn1 (basic block) / bn2 (bottleneck), with
                              rates from lam_stochastic_depth_rates(rate, 0, blocks) over all
                              blocks (Metalhead's drop_block_rate); 0: none */
  int64_t drop_block_size; /* DropBlock's block size; 0: 7 */
  double drop_path_rate;   /* stochastic depth (row mode) at the end of each residual branch,
                              rates scheduled as drop_block_rate's (Metalhead's
                              drop_path_rate); 0: none */
  double dropout;          /* dropout before "fc" (Metalhead's dropout_prob), in [0, 1); 0: none */
  lam_models_pool pool;    /* the head's pooling; default average ("avgpool") */
  bool no_head;            /* no pool and no "fc": the model returns layer4's feature map
                              [N, C, h, w] (a backbone) */
} lam_models_resnet_opts;

/* Returns num_classes 1000, in_channels 3, width 64, drop_block_size 7, every rate 0,
 * average pooling, with the head. */
LAM_API lam_models_resnet_opts lam_models_resnet_defaults(void);

/* torchvision's resnet18 / resnet34 (BasicBlock, [2, 2, 2, 2] / [3, 4, 6, 3]) and
 * resnet50 (Bottleneck, [3, 4, 6, 3]) for depth 18, 34 or 50: children conv1, bn1,
 * relu, maxpool, layer1..layer4 (sequentials of blocks "0", "1", ...; a block has
 * conv1, bn1, conv2, bn2 [, conv3, bn3] and, where the shape changes, downsample
 * (a sequential of a 1x1 conv "0" and a batch norm "1")), then avgpool (or pool),
 * flatten, [dropout] and fc. Input [N, in_channels, H, W]; output [N, num_classes]
 * logits. NULL with a message naming lam_models_resnet for another depth or bad
 * options. */
LAM_API lam_layer *lam_models_resnet(int depth, const lam_models_resnet_opts *opts);

/* Folds every batch norm of a ResNet built by lam_models_resnet into the
 * convolution before it, for evaluation: the folded weights W * g / sqrt(v + eps)
 * and biases b - m * g / sqrt(v + eps) (g, b the batch norm's weight and bias,
 * m, v its running statistics) are computed now from vars and kept by the
 * model, which then runs each conv-bn[-relu] of an evaluation-mode apply as one
 * convolution whose output pass also adds the bias, the residual and the ReLU.
 * The folded copies are used only while the model is applied in evaluation
 * mode, with no gradient tape recording, to params and state whose leaves are
 * the very tensors folded (the same handles); anything else (training, other
 * vars, lam_vjp through the model) runs the general path. Call it again after
 * changing those tensors in place. Calling it with vars NULL drops the folded
 * copies; until then (or lam_layer_free) the model holds them and a reference
 * to each tensor folded. LAM_ERR_NULL for a NULL model, LAM_ERR_INVALID_ARGUMENT
 * for a layer that is not a lam_models_resnet, LAM_ERR_DTYPE for non-float vars. */
LAM_API lam_status lam_models_resnet_fuse(lam_layer *model, lam_vars *vars);

/* ---- MobileNetV2 ------------------------------------------------------------- */

typedef struct lam_models_mobilenet_v2_opts {
  int64_t num_classes;   /* outputs of "classifier.1"; 0: 1000 */
  int64_t in_channels;   /* input channels of features.0; 0: 3 */
  double width_mult;     /* channel multiplier (> 0); 0: 1 */
  int64_t round_nearest; /* channel counts are rounded to multiples of it (torchvision's
                            _make_divisible); 0: 8 */
  int64_t last_channel;  /* channels of the last 1x1 conv (features.18); 0: torchvision's
                            _make_divisible(1280 * max(1, width_mult), round_nearest) */
  double dropout;        /* rate of classifier.0, in [0, 1); 0: 0.2 (torchvision);
                            LAM_ZERO: none (classifier.0 stays, as the identity) */
  bool no_head;          /* no pool and classifier: returns the features' map */
} lam_models_mobilenet_v2_opts;

/* Returns num_classes 1000, in_channels 3, width_mult 1, round_nearest 8, last_channel 0
 * (derived from width_mult: 1280 at width 1), dropout 0.2, with the head. */
LAM_API lam_models_mobilenet_v2_opts lam_models_mobilenet_v2_defaults(void);

/* torchvision's mobilenet_v2: children features (a sequential: "0" conv-bn-ReLU6
 * stem, "1".."17" inverted residual blocks whose child "conv" is a sequential of
 * [a 1x1 expansion conv-bn-ReLU6], the depthwise 3x3 conv-bn-ReLU6 (groups = its
 * channels), the 1x1 projection conv and its batch norm, "18" the last 1x1
 * conv-bn-ReLU6), avgpool, flatten and classifier (dropout "0", linear "1").
 * Blocks with stride 1 and equal channels add their input. Input
 * [N, in_channels, H, W]; output [N, num_classes]. */
LAM_API lam_layer *lam_models_mobilenet_v2(const lam_models_mobilenet_v2_opts *opts);

/* ---- Vision Transformer ------------------------------------------------------ */

/* The pooling of ViT's head (timm's global_pool). */
typedef enum lam_models_vit_pool {
  LAM_MODELS_VIT_POOL_TOKEN = 0, /* the class token after "norm" (timm's 'token'; default) */
  LAM_MODELS_VIT_POOL_AVG        /* the mean of the patch tokens (class token excluded), then
                                    "fc_norm" (timm's 'avg': the final norm is named fc_norm) */
} lam_models_vit_pool;

/* timm's VisionTransformer keyword arguments. Zeros are timm's defaults, those of
 * vit_base_patch16_224: 224x224 images, 16x16 patches, 3 channels, 1000 classes, embed_dim
 * 768, depth 12, 12 heads, mlp_ratio 4, LayerNorm eps 1e-6, qkv bias, no LayerScale, every
 * dropout and drop_path rate 0, the class-token pool, with the head. */
typedef struct lam_models_vit_opts {
  int64_t img_size;      /* input height = width (a multiple of patch_size); 0: 224 */
  int64_t patch_size;    /* 0: 16 */
  int64_t in_chans;      /* 0: 3 */
  int64_t num_classes;   /* outputs of "head"; 0: 1000 (no_head for features) */
  int64_t embed_dim;     /* 0: 768 */
  int64_t depth;         /* number of blocks; 0: 12 */
  int64_t num_heads;     /* must divide embed_dim; 0: 12 */
  double mlp_ratio;      /* MLP width int(embed_dim * mlp_ratio); 0: 4 */
  double layer_norm_eps; /* 0: 1e-6 (timm's partial(nn.LayerNorm, eps=1e-6)); LAM_ZERO: 0 */
  bool no_qkv_bias;      /* attn.qkv without bias (qkv_bias=False) */
  double init_values;    /* LayerScale: > 0 adds blocks.N.ls1.gamma / ls2.gamma [embed_dim]
                            initialised to it (timm's init_values, e.g. 1e-5 for DeiT-III);
                            0: none (timm's None) */
  double drop_rate;      /* dropout of the pooled features, before the head (timm's drop_rate,
                            head_drop; also with no_head); 0: none */
  double pos_drop_rate;  /* dropout after the position embedding; 0: none */
  double proj_drop_rate; /* dropout after attn.proj, after the GELU and after mlp.fc2; 0: none */
  double attn_drop_rate; /* dropout of the attention weights; 0: none */
  double drop_path_rate; /* stochastic depth (row mode) of both residual branches of block i at
                            rate drop_path_rate * i / (depth - 1) (timm's linspace); 0: none */
  lam_models_vit_pool global_pool; /* default the class token */
  bool no_head;          /* no "head": the model returns the pooled, normalised features
                            [N, embed_dim] (timm's num_classes=0) */
} lam_models_vit_opts;

/* Returns the timm defaults listed above. */
LAM_API lam_models_vit_opts lam_models_vit_defaults(void);

/* timm's VisionTransformer (pre-norm blocks, no distillation token, no register tokens):
 * patch_embed.proj (a conv with kernel = stride = patch_size, bias) makes [N, L, E] tokens,
 * the class token cls_token [1, 1, E] goes first and pos_embed [1, 1 + L, E] is added (the
 * class token's position included); block N is
 *   x = x + drop_path(ls1(attn.proj(attention(attn.qkv(norm1(x))))))
 *   x = x + drop_path(ls2(mlp.fc2(gelu(mlp.fc1(norm2(x))))))
 * with attn.qkv one [3E, E] linear whose outputs are (q, k, v) x heads x head_dim (timm's
 * reshape), exact erf GELU; then norm (or fc_norm after the average pool) and head.
 * Parameters, in timm's state_dict order: cls_token, pos_embed, patch_embed.proj.{weight,
 * bias}, blocks.N.{norm1, attn.qkv, attn.proj, ls1.gamma, norm2, mlp.fc1, mlp.fc2,
 * ls2.gamma}.*, norm.* (fc_norm.*), head.{weight, bias}; no state. A timm state_dict saved
 * as safetensors loads strictly with lam_ptree_load_into. Input [N, in_chans, img_size,
 * img_size]; output [N, num_classes] logits (or [N, embed_dim] with no_head). Init as
 * timm's: normal(0.02) linears and pos_embed, normal(1e-6) cls_token, zero biases; the
 * patch conv has PyTorch's default weight init and a zero bias. NULL with a message naming
 * lam_models_vit for a bad config. */
LAM_API lam_layer *lam_models_vit(const lam_models_vit_opts *opts);

#ifdef __cplusplus
}
#endif
#endif
