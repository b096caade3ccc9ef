/* nn/layer_internal.h: the apply hook lam_layer_summary uses (never installed). */
#ifndef LAMINA_LAYER_INTERNAL_H
#define LAMINA_LAYER_INTERNAL_H

#include "lamina/layer.h"

/* Called by lam_layer_apply_child after a child's forward pass, with the
 * child's dotted params path ("1", "0.left", ...) and its output. */
typedef void (*lam__apply_hook_fn)(const char *path, const lam_layer *layer, const lam_tensor *out, void *user);
/* Sets this thread's hook (NULL: none) and clears the path. */
void lam__apply_hook_set(lam__apply_hook_fn fn, void *user);

#endif
