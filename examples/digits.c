/* digits.c: the main example. Trains a small MLP on the UCI 8x8 handwritten
 * digits shipped in examples/data (1,797 images) with the dataset API: the
 * CSV is read into a dataset, mapped (pixels 0..16 scaled to 0..1), split
 * 80/20 with a fixed Philox key, and fed by loaders to lam_fit_loader, which
 * prints a progress line per epoch. Then it prints the model summary and
 * test metrics, saves a checkpoint, reloads it into a fresh model and
 * predicts the first test images.
 *
 *   build/examples/digits [path/to/digits.csv]      (LAMINA_DEVICE picks the device)
 * Exits 0 when the test accuracy reaches 95%. */
#include <lamina.h>
#include <stdio.h>
#include <stdlib.h>

#define N_PIXELS 64
#define N_CLASSES 10

/* The map transform: pixels / 16, label unchanged. */
static lam_status scale(const void *const *src, void *const *dst, void *user) {
  (void)user;
  const float *x = src[0];
  float *y = dst[0];
  for (int i = 0; i < N_PIXELS; i++) y[i] = x[i] / 16.0f;
  *(int32_t *)dst[1] = *(const int32_t *)src[1];
  return LAM_OK;
}

static lam_layer *make_model(void) {
  return lam_nn_sequential((lam_layer *[]){lam_nn_linear(N_PIXELS, 128, NULL), lam_nn_relu(),
                                            lam_nn_dropout(&(lam_dropout_opts){.rate = 0.1}),
                                            lam_nn_linear(128, N_CLASSES, NULL)},
                           4);
}

#define CHECK(call)                                              \
  do {                                                           \
    if ((call) != LAM_OK) {                                      \
      fprintf(stderr, "digits: %s\n", lam_last_error());         \
      return 1;                                                  \
    }                                                            \
  } while (0)

int main(int argc, char **argv) {
  const char *path = argc > 1 ? argv[1] : LAMINA_EXAMPLES_DIR "/data/digits.csv";
  lam_ctx *ctx = NULL;
  CHECK(lam_ctx_create(NULL, &ctx));
  printf("device: %s\n", lam_ctx_device(ctx)->name);

  /* "p0,...,p63,label" rows -> features [64] f32 and an i32 label. */
  lam_dataset *raw = NULL, *all = NULL, *train = NULL, *test = NULL;
  CHECK(lam_dataset_from_csv(path, NULL, &raw));
  CHECK(lam_dataset_map(raw, 0, NULL, scale, NULL, &all));
  /* A fixed shuffled split (as scikit-learn's train_test_split): 80% train, 20% test. */
  lam_split_opts split = {.val_fraction = 0.2, .key = lam_rng_key_make(2024)};
  CHECK(lam_dataset_split(all, &split, &train, &test));
  printf("%lld training and %lld test images\n", (long long)lam_dataset_count(train),
         (long long)lam_dataset_count(test));

  lam_loader *train_loader = NULL, *test_loader = NULL;
  lam_loader_opts lo = {.batch_size = 32, .shuffle = true, .key = lam_rng_key_make(1)};
  CHECK(lam_loader_create(ctx, train, &lo, &train_loader));
  CHECK(lam_loader_create(ctx, test, &(lam_loader_opts){.batch_size = 512}, &test_loader));

  lam_layer *model = make_model();
  lam_vars *vars = NULL;
  CHECK(lam_layer_init(model, ctx, lam_rng_key_make(0), LAM_F32, &vars));
  CHECK(lam_layer_summary(model, vars, 2, (int64_t[]){32, N_PIXELS}, NULL, stdout));
  lam_adam_opts adam = lam_adam_defaults();
  adam.lr = 2e-3;
  lam_optimizer *opt = lam_adam(&adam);

  lam_fit_opts fit = lam_fit_defaults();
  fit.epochs = 20;
  fit.key = lam_rng_key_make(1); /* dropout */
  fit.val_loader = test_loader;
  CHECK(lam_fit_loader(model, vars, opt, train_loader, &fit));

  /* Test metrics with trackers: one device read each at the end. */
  lam_metric *acc = lam_metric_create(LAM_METRIC_ACCURACY, NULL);
  lam_metric *f1 = lam_metric_create(LAM_METRIC_F1, &(lam_metric_opts){.average = LAM_AVERAGE_MACRO});
  CHECK(lam_loader_reset(test_loader, 0));
  for (;;) {
    lam_batch b;
    CHECK(lam_loader_next(test_loader, &b));
    if (b.size == 0) break;
    lam_tensor *logits = NULL;
    CHECK(lam_layer_apply(model, vars, b.fields[0], NULL, &logits));
    CHECK(lam_metric_update(acc, logits, b.fields[1]));
    CHECK(lam_metric_update(f1, logits, b.fields[1]));
    lam_tensor_free(logits);
  }
  double test_acc = 0, test_f1 = 0;
  CHECK(lam_metric_value(acc, &test_acc));
  CHECK(lam_metric_value(f1, &test_f1));
  printf("test accuracy %.3f, macro F1 %.3f\n", test_acc, test_f1);

  /* Save, reload into a freshly initialised model, and predict. */
  const char *ckpt = "digits.safetensors";
  CHECK(lam_checkpoint_save(ckpt, lam_vars_params(vars), lam_vars_state(vars), opt, 0, fit.key));
  lam_layer *model2 = make_model();
  lam_vars *vars2 = NULL;
  CHECK(lam_layer_init(model2, ctx, lam_rng_key_make(99), LAM_F32, &vars2));
  CHECK(lam_checkpoint_load(ckpt, lam_vars_params(vars2), lam_vars_state(vars2), NULL, NULL, NULL));
  double loss2 = 0, acc2 = 0;
  CHECK(lam_evaluate_loader(model2, vars2, test_loader, NULL, &loss2, &acc2));
  printf("reloaded from %s: test accuracy %.3f\n", ckpt, acc2);
  lam_batch first;
  CHECK(lam_loader_reset(test_loader, 0));
  CHECK(lam_loader_next(test_loader, &first));
  lam_tensor *logits = NULL;
  CHECK(lam_layer_apply(model2, vars2, first.fields[0], NULL, &logits));
  lam_tensor *pred = lam_argmax(logits, 1, 0);
  int32_t p[512], truth[512];
  CHECK(lam_tensor_to_host(pred, p, sizeof(int32_t) * (size_t)first.size));
  CHECK(lam_tensor_to_host(first.fields[1], truth, sizeof(int32_t) * (size_t)first.size));
  printf("first test images: predicted");
  for (int i = 0; i < 10; i++) printf(" %d", p[i]);
  printf(", true");
  for (int i = 0; i < 10; i++) printf(" %d", truth[i]);
  printf("\n");

  lam_tensor_free(logits);
  lam_tensor_free(pred);
  lam_metric_free(acc);
  lam_metric_free(f1);
  lam_loader_free(train_loader);
  lam_loader_free(test_loader);
  lam_dataset_free(raw);
  lam_dataset_free(all);
  lam_dataset_free(train);
  lam_dataset_free(test);
  lam_optimizer_free(opt);
  lam_vars_free(vars);
  lam_vars_free(vars2);
  lam_layer_free(model);
  lam_layer_free(model2);
  lam_ctx_free(ctx);
  return test_acc >= 0.95 ? 0 : 2;
}
