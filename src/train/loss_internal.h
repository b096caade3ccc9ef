/* train/loss_internal.h: the helpers shared by the loss files (loss.c,
 * loss_margin.c, ctc.c): a scope of temporaries freed at the end of a
 * loss, the options resolution and the common argument checks.
 *
 * Because every op returns NULL on a NULL input, a loss keeps its
 * temporaries with K() and returns lam__loss_done(): a failure anywhere
 * falls through to a NULL result with the first error message kept. */
#ifndef LAMINA_LOSS_INTERNAL_H
#define LAMINA_LOSS_INTERNAL_H

#include "internal.h"
#include "lamina/loss.h"

#define LAM__SCOPE_MAX 64

typedef struct {
  lam_tensor *t[LAM__SCOPE_MAX];
  int n;
} lam__scope;

/* Keeps t in the scope (freed by lam__loss_done) and returns it. */
static inline lam_tensor *K(lam__scope *s, lam_tensor *t) {
  if (t && s->n < LAM__SCOPE_MAX) s->t[s->n++] = t;
  return t;
}

/* Returns a new reference to r after freeing every temporary. */
static inline lam_tensor *lam__loss_done(lam__scope *s, lam_tensor *r) {
  lam_tensor_retain(r);
  for (int i = 0; i < s->n; i++) lam_tensor_free(s->t[i]);
  s->n = 0;
  return r;
}
#define lam__done lam__loss_done

/* The options, resolved (NULL: the defaults). margin, eps and p stay 0
 * (each loss's own default); a negative zero becomes +0. */
lam_loss_opts lam__loss_opts(const lam_loss_opts *o);
/* Resolves eps (0: def, LAM_ZERO: 0) into *out; false (with a message) when negative or NaN. */
bool lam__loss_eps(const lam_loss_opts *o, double def, const char *fn, double *out);
/* Resolves margin (0: def, LAM_ZERO: 0) into *out; false (with a message) when not finite. */
bool lam__loss_margin(const lam_loss_opts *o, double def, const char *fn, double *out);
/* Applies the reduction to per-element losses l (kept in s). */
lam_tensor *lam__loss_reduce(lam__scope *s, lam_tensor *l, lam_reduction r, const char *fn);
/* LAM_OK when r is mean, sum, none (or batchmean where allowed), else a message. */
lam_status lam__loss_check_reduction(lam_reduction r, bool batchmean_ok, const char *fn);
/* Both non-NULL, the same float dtype and the same shape. */
lam_status lam__loss_check_pair(lam_tensor *a, lam_tensor *b, const char *an, const char *bn,
                                const char *fn);
/* w (weight, pos_weight) has x's dtype and broadcasts to x's shape without growing it. */
lam_status lam__loss_check_broadcast(lam_tensor *w, lam_tensor *x, const char *wn, const char *fn);

#endif
