/* lamina/blocks.h: Metalhead's building blocks: prenorm, conv_norm,
 * LayerScale and the classifier head. Each returns a new layer or NULL with a
 * message; layers passed in are owned by the result (also on failure).
 * Options follow lamina/options.h: NULL, a zeroed struct and the defaults
 * function mean the same. */
#ifndef LAMINA_BLOCKS_H
#define LAMINA_BLOCKS_H

#include "lamina/export.h"

#include <stdbool.h>

#include "lamina/layer.h"
#include "lamina/options.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lam_layer_scale_opts {
  double lambda; /* initial value of gamma; 0: 1e-5 (Metalhead's default);
                    LAM_ZERO or negative: the identity layer (Metalhead's
                    LayerScale with lambda <= 0) */
} lam_layer_scale_opts;
/* Returns lambda 1e-5. */
LAM_API lam_layer_scale_opts lam_layer_scale_defaults(void);

/* Metalhead's LayerScale(planes, lambda): y = x * gamma over the last axis
 * ([..., planes]); param "gamma" [planes] filled with lambda. */
LAM_API lam_layer *lam_nn_layer_scale(int64_t planes, const lam_layer_scale_opts *opts);

/* ---- building blocks ------------------------------------------------------------ */

/* Metalhead's prenorm: block(norm(x)) (a Chain, no residual; wrap it in a
 * residual yourself). Children "norm" and "block"; takes ownership. */
LAM_API lam_layer *lam_nn_prenorm(lam_layer *norm, lam_layer *block);

typedef struct lam_conv_norm_opts {
  bool preact;  /* conv -> activation -> norm (Metalhead's preact); default false */
  bool revnorm; /* norm -> conv -> activation (norm over the conv's input); default false */
} lam_conv_norm_opts;
/* Returns conv -> norm -> activation (both flags false). */
LAM_API lam_conv_norm_opts lam_conv_norm_defaults(void);

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
  int64_t hidden_planes;        /* > 0: a hidden linear layer; 0 (default): none */
  double dropout;               /* > 0: dropout with this rate (after the pool, or
                                   after the hidden layer); 0 (default): none */
  lam_layer *hidden_activation; /* owned; NULL: relu (Metalhead's default) */
  lam_layer *activation;        /* owned; NULL: identity */
} lam_classifier_opts;
/* Returns every field zero / NULL (no hidden layer, no dropout). */
LAM_API lam_classifier_opts lam_classifier_defaults(void);

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
