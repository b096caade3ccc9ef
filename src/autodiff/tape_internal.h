/* autodiff/tape_internal.h: the tape itself, private to src/autodiff. */
#ifndef LAMINA_AUTODIFF_TAPE_INTERNAL_H
#define LAMINA_AUTODIFF_TAPE_INTERNAL_H

#include "internal.h"

struct lam__tape {
  uint64_t id;
  lam_ctx *ctx;
  lam__node **nodes;
  int n_nodes, cap_nodes;
  int n_slots;
  bool failed;          /* host memory ran out while recording */
  lam_tensor **grads;   /* per slot, during/after backward */
};

/* Starts recording on ctx; returns the tape or NULL (out of host memory). */
lam__tape *lam__tape_begin(lam_ctx *ctx);
/* Marks t as a leaf to differentiate; returns its slot. */
int lam__tape_watch(lam__tape *tape, lam_tensor *t);
/* Runs every backward rule from `out`, seeded with `seed` (NULL: ones shaped
 * like out); fills tape->grads. */
lam_status lam__tape_backward(lam__tape *tape, lam_tensor *out, const lam_tensor *seed);
/* Stops recording and frees nodes, saved tensors and gradients. */
void lam__tape_free(lam__tape *tape);

#endif
