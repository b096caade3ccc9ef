/* train/grad_scaler.c: dynamic loss scaling for mixed-precision training
 * (torch.cuda.amp.GradScaler's rule): scale the loss, unscale the gradients
 * into the master weights' dtype, skip the step and back off on inf/nan,
 * grow the scale after a run of finite steps. The inf/nan check is one
 * device scalar: the sum over every leaf of g * 0 (0 when all are finite,
 * nan otherwise), read back once per step. */
#include <math.h>
#include <stdlib.h>

#include "internal.h"
#include "lamina/elementwise.h"
#include "lamina/optim.h"
#include "lamina/reduce.h"

struct lam_grad_scaler {
  double scale, growth, backoff;
  int64_t interval, good_steps;
  bool no_growth;
};

lam_grad_scaler_opts lam_grad_scaler_defaults(void) { return (lam_grad_scaler_opts){0}; }

lam_grad_scaler *lam_grad_scaler_create(const lam_grad_scaler_opts *opts) {
  const char *fn = "lam_grad_scaler_create";
  lam_grad_scaler_opts o = opts ? *opts : (lam_grad_scaler_opts){0};
  double scale = o.init_scale ? o.init_scale : 65536.0;
  double growth = o.growth_factor ? o.growth_factor : 2.0;
  double backoff = o.backoff_factor ? o.backoff_factor : 0.5;
  int64_t interval = o.growth_interval ? o.growth_interval : 2000;
  if (!(scale > 0 && isfinite(scale)))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: init_scale %g must be positive and finite", fn,
                     scale), NULL;
  if (!(growth > 1 && isfinite(growth)))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: growth_factor %g must be > 1 and finite", fn,
                     growth), NULL;
  if (!(backoff > 0 && backoff < 1))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: backoff_factor %g must be in (0, 1)", fn,
                     backoff), NULL;
  if (interval < 1)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: growth_interval %lld must be >= 1", fn,
                     (long long)interval), NULL;
  lam_grad_scaler *s = calloc(1, sizeof *s);
  if (!s) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn), NULL;
  *s = (lam_grad_scaler){scale, growth, backoff, interval, 0, o.no_growth};
  return s;
}

void lam_grad_scaler_free(lam_grad_scaler *scaler) { free(scaler); }

double lam_grad_scaler_scale(const lam_grad_scaler *scaler) { return scaler ? scaler->scale : 0; }

lam_tensor *lam_grad_scaler_scale_loss(const lam_grad_scaler *scaler, lam_tensor *loss) {
  const char *fn = "lam_grad_scaler_scale_loss";
  if (!scaler) return lam__fail(LAM_ERR_NULL, "%s: scaler is NULL", fn), NULL;
  if (!loss) return lam__null_input(fn, "loss");
  return lam_mul_scalar(loss, scaler->scale);
}

typedef struct lam__unscale {
  const lam_ptree *params;
  double inv;
  lam_tensor *bad; /* running sum of g * 0 */
  const char *fn;
} lam__unscale;

static lam_tensor *lam__unscale_leaf(const char *path, lam_tensor *g, void *user) {
  lam__unscale *u = user;
  lam_tensor *p = lam_ptree_get(u->params, path);
  if (!p || !lam_tensor_same_shape(p, g))
    return lam__fail(LAM_ERR_SHAPE, "%s: gradient %s has no parameter of its shape", u->fn, path),
           NULL;
  lam_tensor *c = lam_tensor_cast(g, p->dtype);
  lam_tensor *r = c ? lam_mul_scalar(c, u->inv) : NULL;
  lam_tensor *z = r ? lam_mul_scalar(r, 0.0) : NULL;
  lam_tensor *s = z ? lam_sum(z, 0, NULL, 0) : NULL;
  lam_tensor *f = s && s->dtype != LAM_F32 ? lam_tensor_cast(s, LAM_F32) : lam_tensor_retain(s);
  lam_tensor *acc = f ? (u->bad ? lam_add(u->bad, f) : lam_tensor_retain(f)) : NULL;
  lam_tensor_free(c);
  lam_tensor_free(z);
  lam_tensor_free(s);
  lam_tensor_free(f);
  if (!acc) {
    lam_tensor_free(r);
    return NULL;
  }
  lam_tensor_free(u->bad);
  u->bad = acc;
  return r;
}

lam_status lam_grad_scaler_step(lam_grad_scaler *scaler, lam_optimizer *opt, lam_ptree *params,
                                const lam_ptree *grads, bool *stepped) {
  const char *fn = "lam_grad_scaler_step";
  if (stepped) *stepped = false;
  if (!scaler || !opt || !params || !grads)
    return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn,
                     !scaler ? "scaler" : !opt ? "opt" : !params ? "params" : "grads");
  lam__unscale u = {params, 1.0 / scaler->scale, NULL, fn};
  lam_ptree *g32 = lam_ptree_map(grads, lam__unscale_leaf, &u);
  lam_status st = g32 ? LAM_OK : lam_last_status();
  double bad = 0;
  if (st == LAM_OK && u.bad) st = lam_tensor_item(u.bad, &bad);
  lam_tensor_free(u.bad);
  if (st == LAM_OK) {
    if (!isfinite(bad)) { /* inf or nan somewhere: skip, back off */
      scaler->scale *= scaler->backoff;
      scaler->good_steps = 0;
    } else {
      st = lam_optimizer_step(opt, params, g32);
      if (st == LAM_OK) {
        if (stepped) *stepped = true;
        if (!scaler->no_growth && ++scaler->good_steps >= scaler->interval) {
          scaler->scale *= scaler->growth;
          scaler->good_steps = 0;
        }
      }
    }
  }
  lam_ptree_free(g32);
  return st;
}
