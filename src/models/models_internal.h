/* models/models_internal.h: the composite layer the zoo's models are made
 * of: a chain of children with names of their own (torchvision's module
 * names, so parameter paths are torchvision's), optionally a residual
 * block: y = [relu](chain(x) + shortcut(x)). */
#ifndef LAMINA_MODELS_INTERNAL_H
#define LAMINA_MODELS_INTERNAL_H

#include <stdbool.h>

#include "lamina/layer.h"

/* A named chain: applies layers[0..n) in order, each as child keys[i]
 * (copied). With residual, the chain's output is added to the input passed
 * through `shortcut` (child shortcut_key; both NULL: the identity) and, with
 * post_relu, a ReLU follows the sum. `name` (a string literal) is the
 * layer's vtable name. Takes ownership of every layer (also on failure); a
 * NULL among them (a failed constructor, whose message stands) gives NULL. */
lam_layer *lam__models_chain(const char *name, int n, const char *const *keys, lam_layer *const *layers,
                             bool residual, const char *shortcut_key, lam_layer *shortcut, bool post_relu);

/* lam_models_resnet_fuse's work: in every chain under layer (params / state its
 * trees), folds each 2-D conv (no bias) followed by a batch norm (affine,
 * running statistics) and the shortcut's conv-bn, keeping the folded copies in
 * the chain for evaluation-mode applies; drop (or NULL trees) removes them. */
lam_status lam__models_chain_fuse(lam_layer *layer, lam_ptree *params, lam_ptree *state, bool drop);

#endif
