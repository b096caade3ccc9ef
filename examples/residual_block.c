/* residual_block.c: a custom layer (docs/layers.md). The residual block of
 * Kaun's "Layers and Models" guide, y = x + fc2(relu(fc1(x))), written as a
 * user vtable around two built-in linear layers, composed in a sequential
 * model and trained with gradients it gets for free. */
#include <lamina.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
  lam_layer *fc1, *fc2;
} residual;

static lam_status residual_init(lam_layer *self, lam_ctx *ctx, lam_rng_key key, lam_dtype dtype,
                                lam_ptree *params, lam_ptree *state) {
  residual *r = self->impl;
  lam_status st = lam_layer_init_child(r->fc1, "fc1", ctx, key, dtype, params, state);
  return st == LAM_OK ? lam_layer_init_child(r->fc2, "fc2", ctx, key, dtype, params, state) : st;
}

static lam_status residual_apply(lam_layer *self, lam_ptree *params, lam_ptree *state, lam_tensor *x,
                                 const lam_apply_opts *opts, lam_tensor **out) {
  residual *r = self->impl;
  lam_tensor *h = NULL, *f = NULL;
  lam_status st = lam_layer_apply_child(r->fc1, "fc1", params, state, x, opts, &h);
  lam_tensor *a = st == LAM_OK ? lam_relu(h) : NULL;
  if (st == LAM_OK) st = lam_layer_apply_child(r->fc2, "fc2", params, state, a, opts, &f);
  if (st == LAM_OK) {
    *out = lam_add(x, f); /* the skip connection */
    if (!*out) st = lam_last_status();
  }
  lam_tensor_free(h);
  lam_tensor_free(a);
  lam_tensor_free(f);
  return st;
}

static void residual_free(lam_layer *self) {
  residual *r = self->impl;
  lam_layer_free(r->fc1);
  lam_layer_free(r->fc2);
  free(r);
}

static const lam_layer_vtable residual_vt = {"residual", residual_init, residual_apply, residual_free};

/* Optional: names the children, so lam_layer_child and lam_layer_summary see them. */
static lam_layer *residual_children(const lam_layer *self, int i, const char **key) {
  const residual *r = self->impl;
  if (i < 0 || i > 1) return NULL;
  *key = i ? "fc2" : "fc1";
  return i ? r->fc2 : r->fc1;
}

static lam_layer *residual_block(int64_t dim, int64_t hidden) {
  residual *r = malloc(sizeof *r);
  r->fc1 = lam_nn_linear(dim, hidden, NULL);
  r->fc2 = lam_nn_linear(hidden, dim, NULL);
  lam_layer *l = lam_nn_custom(&residual_vt, r);
  lam_layer_set_children(l, residual_children);
  return l;
}

int main(void) {
  lam_ctx *ctx = NULL;
  if (lam_ctx_create(NULL, &ctx) != LAM_OK) {
    fprintf(stderr, "%s\n", lam_last_error());
    return 1;
  }
  lam_layer *model = lam_nn_sequential((lam_layer *[]){lam_nn_linear(8, 16, NULL), residual_block(16, 32),
                                                    lam_nn_relu(), lam_nn_linear(16, 3, NULL)}, 4);
  lam_vars *vars = NULL;
  if (!model || lam_layer_init(model, ctx, lam_rng_key_make(0), LAM_F32, &vars) != LAM_OK) {
    fprintf(stderr, "%s\n", lam_last_error());
    return 1;
  }
  /* Parameter paths follow the structure: "1.fc1.weight" is [32, 16]. */
  printf("%d parameter tensors, %lld values; 1.fc1.weight is [%lld, %lld]\n",
         lam_ptree_leaf_count(lam_vars_params(vars)), (long long)lam_ptree_param_count(lam_vars_params(vars)),
         (long long)lam_tensor_dim(lam_ptree_get(lam_vars_params(vars), "1.fc1.weight"), 0),
         (long long)lam_tensor_dim(lam_ptree_get(lam_vars_params(vars), "1.fc1.weight"), 1));
  /* A table of every layer (the block's children included) for a batch of 4. */
  lam_layer_summary(model, vars, 2, (int64_t[]){4, 8}, NULL, stdout);

  /* A toy task: the class is the index of the largest of the first 3 inputs. */
  lam_rng_key key = lam_rng_key_make(1);
  lam_tensor *x = lam_random_normal(ctx, key, LAM_F32, 2, (int64_t[]){256, 8}, 0, 1);
  lam_tensor *first3 = lam_slice_axis(x, 1, 0, 3, 1);
  lam_tensor *y = lam_argmax(first3, 1, 0);
  lam_adam_opts adam = lam_adam_defaults();
  adam.lr = 1e-2;
  lam_optimizer *opt = lam_adam(&adam);
  double loss = 0, acc = 0;
  for (int step = 0; step < 60; step++)
    if (lam_train_step(model, vars, opt, x, y, NULL, &loss) != LAM_OK) {
      fprintf(stderr, "%s\n", lam_last_error());
      return 1;
    }
  lam_tensor *logits = NULL;
  lam_predict(model, vars, x, 0, &logits);
  lam_accuracy(logits, y, &acc);
  printf("final loss %.3f, training accuracy %.2f\n", loss, acc);
  lam_tensor_free(logits);
  lam_tensor_free(first3);
  lam_tensor_free(x);
  lam_tensor_free(y);
  lam_optimizer_free(opt);
  lam_vars_free(vars);
  lam_layer_free(model);
  lam_ctx_free(ctx);
  return acc > 0.8 ? 0 : 1;
}
