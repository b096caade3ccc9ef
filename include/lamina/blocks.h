/* lamina/blocks.h: Metalhead's building blocks: prenorm, conv_norm,
 * LayerScale and the classifier head. Each returns a new layer or NULL with a
 * message; layers passed in are owned by the result (also on failure). */
#ifndef LAMINA_BLOCKS_H
#define LAMINA_BLOCKS_H

#include "lamina/export.h"

#include <stdbool.h>

#include "lamina/layer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Metalhead's LayerScale(planes, lambda): y = x * gamma over the last axis
 * ([..., planes]); param "gamma" [planes] filled with lambda. lambda <= 0
 * gives the identity layer, as in Metalhead. */
LAM_API lam_layer *lam_nn_layer_scale(int64_t planes, double lambda);

/* ---- building blocks ------------------------------------------------------------ */

/* Metalhead's prenorm: block(norm(x)) (a Chain, no residual; wrap it in a
 * residual yourself). Children "norm" and "block"; takes ownership. */
LAM_API lam_layer *lam_nn_prenorm(lam_layer *norm, lam_layer *block);

typedef struct lam_conv_norm_opts {
  bool preact;  /* conv -> activation -> norm (Metalhead's preact) */
  bool revnorm; /* norm -> conv -> activation (norm over the conv's input) */
} lam_conv_norm_opts;

/* Metalhead's conv_norm with the layers given: a sequential of conv (any
 * layer), the norm layer (NULL: none) and the activation (NULL: none), in
 * the order conv, norm, act (default; children "0", "1", "2" as
 * torchvision's Conv2dNormActivation), conv, act, norm (preact) or norm,
 * conv, act (revnorm; not with preact). Takes ownership of the layers (also
 * on failure). */
LAM_API lam_layer *lam_nn_conv_norm(lam_layer *conv, lam_layer *norm, lam_layer *activation,
                         const lam_conv_norm_opts *opts);

typedef struct lam_classifier_opts {
  lam_layer *pool;              /* owned; NULL: global average over axes 2.. */
  int64_t hidden_planes;        /* > 0: a hidden linear layer */
  double dropout;               /* > 0: dropout (after the pool, or after the hidden layer) */
  lam_layer *hidden_activation; /* owned; NULL: relu (Metalhead's default) */
  lam_layer *activation;        /* owned; NULL: identity */
} lam_classifier_opts;

/* Metalhead's create_classifier: pool, flatten (to [N, features]),
 * [dropout], linear(inplanes, nclasses), [activation]; with hidden_planes:
 * pool, flatten, linear(inplanes, hidden), hidden_activation, [dropout],
 * linear(hidden, nclasses), [activation]. A sequential (children "0",
 * "1", ...). Takes ownership of the layers in opts (also on failure). */
LAM_API lam_layer *lam_nn_classifier(int64_t inplanes, int64_t nclasses,
                                 const lam_classifier_opts *opts);


#ifdef __cplusplus
}
#endif
#endif
