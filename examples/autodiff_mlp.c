/* autodiff_mlp.c: reverse-mode autodiff on raw ops (docs/autodiff.md).
 * A two-layer MLP written with lamina ops, its gradients from
 * lam_value_and_grad, and plain gradient descent written with ops too. */
#include <lamina.h>
#include <stdio.h>

typedef struct {
  lam_tensor *x, *y; /* inputs [32, 4] and targets [32, 1] */
} batch;

/* loss = mean((relu(x W1^T + b1) W2^T + b2 - y)^2) */
static lam_tensor *mlp_loss(lam_ptree *p, void *user) {
  batch *b = user;
  lam_tensor *h = lam_matmul_t(b->x, lam_ptree_get(p, "w1"), 0, 1);
  lam_tensor *hb = lam_add(h, lam_ptree_get(p, "b1"));
  lam_tensor *a = lam_relu(hb);
  lam_tensor *o = lam_matmul_t(a, lam_ptree_get(p, "w2"), 0, 1);
  lam_tensor *ob = lam_add(o, lam_ptree_get(p, "b2"));
  lam_tensor *loss = lam_mse_loss(ob, b->y, NULL); /* NULL-safe: any failure gives NULL */
  lam_tensor *tmp[] = {h, hb, a, o, ob};
  for (int i = 0; i < 5; i++) lam_tensor_free(tmp[i]);
  return loss;
}

/* params <- params - lr * grads, leaf by leaf. */
static lam_tensor *sgd_leaf(const char *path, lam_tensor *w, void *user) {
  lam_ptree *grads = user;
  lam_tensor *step = lam_mul_scalar(lam_ptree_get(grads, path), 0.1);
  lam_tensor *updated = lam_sub(w, step);
  lam_tensor_free(step);
  return updated;
}

int main(void) {
  lam_ctx *ctx = NULL;
  if (lam_ctx_create(NULL, &ctx) != LAM_OK) {
    fprintf(stderr, "%s\n", lam_last_error());
    return 1;
  }
  lam_rng_key key = lam_rng_key_make(42);
  lam_rng_key k[6];
  lam_rng_split(key, 6, k);
  batch b;
  b.x = lam_random_normal(ctx, k[0], LAM_F32, 2, (int64_t[]){32, 4}, 0, 1);
  b.y = lam_sum(b.x, 1, (int[]){1}, 1); /* learn y = sum of the inputs */

  lam_ptree *params = lam_ptree_dict();
  lam_tensor *w1 = lam_random_normal(ctx, k[1], LAM_F32, 2, (int64_t[]){16, 4}, 0, 0.5);
  lam_tensor *b1 = lam_tensor_zeros(ctx, LAM_F32, 1, (int64_t[]){16});
  lam_tensor *w2 = lam_random_normal(ctx, k[2], LAM_F32, 2, (int64_t[]){1, 16}, 0, 0.5);
  lam_tensor *b2 = lam_tensor_zeros(ctx, LAM_F32, 1, (int64_t[]){1});
  lam_ptree_set(params, "w1", w1);
  lam_ptree_set(params, "b1", b1);
  lam_ptree_set(params, "w2", w2);
  lam_ptree_set(params, "b2", b2);
  lam_tensor *init[] = {w1, b1, w2, b2};
  for (int i = 0; i < 4; i++) lam_tensor_free(init[i]); /* the tree holds them now */

  double first = 0, last = 0;
  for (int step = 0; step < 100; step++) {
    lam_tensor *loss = NULL;
    lam_ptree *grads = NULL;
    if (lam_value_and_grad(ctx, mlp_loss, &b, params, &loss, &grads) != LAM_OK) {
      fprintf(stderr, "%s\n", lam_last_error());
      return 1;
    }
    lam_tensor_item(loss, &last);
    if (step == 0) first = last;
    if (step % 20 == 0) printf("step %3d  loss %.4f\n", step, last);
    lam_ptree *next = lam_ptree_map(params, sgd_leaf, grads);
    lam_ptree_free(params);
    params = next;
    lam_ptree_free(grads);
    lam_tensor_free(loss);
  }
  printf("loss %.4f -> %.4f\n", first, last);
  lam_ptree_free(params);
  lam_tensor_free(b.x);
  lam_tensor_free(b.y);
  lam_ctx_free(ctx);
  return last < first ? 0 : 1;
}
