/* digits.c: the main example. Trains a small MLP on the UCI 8x8 handwritten
 * digits shipped in examples/data (1,797 images), on the default device,
 * printing progress per epoch; then saves a checkpoint, reloads it into a
 * fresh model and predicts the first test images.
 *
 *   build/examples/digits [path/to/digits.csv]      (LAMINA_DEVICE picks the device) */
#include <lamina.h>
#include <stdio.h>
#include <stdlib.h>

#define N_PIXELS 64
#define N_CLASSES 10
#define MAX_ROWS 2000

/* Reads "p0,...,p63,label" rows; returns the row count (0 on failure). */
static int load_digits(const char *path, float *pixels, int32_t *labels) {
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  int rows = 0;
  while (rows < MAX_ROWS) {
    int v = 0, ok = 1;
    for (int j = 0; j < N_PIXELS && ok; j++) {
      ok = fscanf(f, "%d,", &v) == 1;
      pixels[rows * N_PIXELS + j] = (float)v / 16.0f; /* pixels are 0..16 */
    }
    if (!ok || fscanf(f, "%d", &v) != 1) break;
    labels[rows++] = v;
  }
  fclose(f);
  return rows;
}

/* Fisher-Yates shuffle of the rows with Philox words as the randomness. */
static void shuffle_rows(float *pixels, int32_t *labels, int n, lam_rng_key key) {
  for (int i = n - 1; i > 0; i--) {
    uint32_t ctr[4] = {(uint32_t)i, 0, 0, 0}, r[4];
    lam_philox4x32_10(ctr, key.k, r);
    int j = (int)(r[0] % (uint32_t)(i + 1));
    for (int p = 0; p < N_PIXELS; p++) {
      float t = pixels[i * N_PIXELS + p];
      pixels[i * N_PIXELS + p] = pixels[j * N_PIXELS + p];
      pixels[j * N_PIXELS + p] = t;
    }
    int32_t t = labels[i];
    labels[i] = labels[j];
    labels[j] = t;
  }
}

static lam_status report(const lam_epoch_report *r, void *user) {
  (void)user;
  printf("epoch %2d  loss %.4f  train acc %.3f  test acc %.3f  (%.2fs)\n", r->epoch, r->train_loss,
         r->train_accuracy, r->val_accuracy, r->seconds);
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
  static float pixels[MAX_ROWS * N_PIXELS];
  static int32_t labels[MAX_ROWS];
  int n = load_digits(path, pixels, labels);
  if (n < 100) {
    fprintf(stderr, "digits: cannot read %s\n", path);
    return 1;
  }
  lam_ctx *ctx = NULL;
  CHECK(lam_ctx_create(NULL, &ctx));
  printf("device: %s\n", lam_ctx_device(ctx)->name);

  /* A fixed shuffled split (as scikit-learn's train_test_split): 80% train,
   * 20% test. The permutation comes from Philox, so it is the same everywhere. */
  shuffle_rows(pixels, labels, n, lam_rng_key_make(2024));
  int n_test = n / 5, n_train = n - n_test;
  lam_tensor *x_train = lam_tensor_from_host(ctx, LAM_F32, 2, (int64_t[]){n_train, N_PIXELS}, pixels);
  lam_tensor *y_train = lam_tensor_from_host(ctx, LAM_I32, 1, (int64_t[]){n_train}, labels);
  lam_tensor *x_test = lam_tensor_from_host(ctx, LAM_F32, 2, (int64_t[]){n_test, N_PIXELS},
                                            pixels + (size_t)n_train * N_PIXELS);
  lam_tensor *y_test = lam_tensor_from_host(ctx, LAM_I32, 1, (int64_t[]){n_test}, labels + n_train);
  if (!x_train || !y_train || !x_test || !y_test) CHECK(lam_last_status());
  printf("%d training and %d test images\n", n_train, n_test);

  lam_layer *model = make_model();
  lam_vars *vars = NULL;
  CHECK(lam_layer_init(model, ctx, lam_rng_key_make(0), LAM_F32, &vars));
  lam_adam_opts adam = lam_adam_defaults();
  adam.lr = 2e-3;
  lam_optimizer *opt = lam_adam(&adam);

  lam_fit_opts fit = lam_fit_defaults();
  fit.epochs = 20;
  fit.batch_size = 32;
  fit.key = lam_rng_key_make(1);
  fit.val_x = x_test;
  fit.val_y = y_test;
  fit.on_epoch = report;
  CHECK(lam_fit(model, vars, opt, x_train, y_train, &fit));

  /* Save, reload into a freshly initialised model, and predict. */
  const char *ckpt = "digits.safetensors";
  CHECK(lam_checkpoint_save(ckpt, lam_vars_params(vars), lam_vars_state(vars), opt, 0, fit.key));
  lam_layer *model2 = make_model();
  lam_vars *vars2 = NULL;
  CHECK(lam_layer_init(model2, ctx, lam_rng_key_make(99), LAM_F32, &vars2));
  CHECK(lam_checkpoint_load(ckpt, lam_vars_params(vars2), lam_vars_state(vars2), NULL, NULL, NULL));
  lam_tensor *logits = NULL;
  double acc = 0;
  CHECK(lam_predict(model2, vars2, x_test, 0, &logits));
  CHECK(lam_accuracy(logits, y_test, &acc));
  printf("reloaded from %s: test accuracy %.3f\n", ckpt, acc);
  lam_tensor *pred = lam_argmax(logits, 1, 0);
  int32_t p[10];
  lam_tensor *first = lam_tensor_slice0(pred, 0, 10);
  CHECK(lam_tensor_to_host(first, p, sizeof p));
  printf("first test images: predicted");
  for (int i = 0; i < 10; i++) printf(" %d", p[i]);
  printf(", true");
  for (int i = 0; i < 10; i++) printf(" %d", labels[n_train + i]);
  printf("\n");

  lam_tensor *all[] = {x_train, y_train, x_test, y_test, logits, pred, first};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) lam_tensor_free(all[i]);
  lam_optimizer_free(opt);
  lam_vars_free(vars);
  lam_vars_free(vars2);
  lam_layer_free(model);
  lam_layer_free(model2);
  lam_ctx_free(ctx);
  return acc >= 0.95 ? 0 : 2;
}
