/* test_data.c: datasets (arrays, tensors, CSV, NPY, callback, map, subset,
 * split), the loader (shuffling determinism per (key, epoch), each
 * last-batch policy, prefetch on and off), lam_fit_loader (batch and epoch
 * callbacks, validation loader, early stopping and restore_best, gradient
 * accumulation against one large batch, per-epoch schedules, the progress
 * reporter), children of composites and lam_layer_summary; bad input names
 * the public function; nothing leaks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#define N 10
#define F 3

static float xs[N * F];
static int32_t ys[N];

static void fill(void) {
  for (int i = 0; i < N; i++) {
    for (int j = 0; j < F; j++) xs[i * F + j] = (float)(i * 10 + j);
    ys[i] = i;
  }
}

static const lam_field fields[2] = {{LAM_F32, 1, {F}}, {LAM_I32, 0, {0}}};

static lam_dataset *arrays_ds(bool borrow) {
  fill();
  lam_dataset *d = NULL;
  lam_dataset_opts o = {.borrow = borrow};
  cr_assert_eq(lam_dataset_from_arrays(N, 2, fields, (const void *[]){xs, ys}, &o, &d), LAM_OK, "%s",
               lam_last_error());
  return d;
}

/* Reads a batch's label column into out (valid + padded rows). */
static void batch_labels(const lam_batch *b, int32_t *out) {
  cr_assert_eq(lam_tensor_to_host(b->fields[1], out, sizeof(int32_t) * (size_t)b->size), LAM_OK);
  float *x = tu_read_f32(b->fields[0]);
  for (int64_t r = 0; r < b->size; r++) cr_assert_eq(x[r * F + 1], (float)(out[r] * 10 + 1), "row %lld", (long long)r);
  free(x);
}

/* All labels of one epoch (concatenated, padding included); returns the count. */
static int64_t epoch_labels(lam_loader *l, int epoch, int32_t *out, int64_t *sizes, int64_t *valid) {
  cr_assert_eq(lam_loader_reset(l, epoch), LAM_OK, "%s", lam_last_error());
  int64_t n = 0, k = 0;
  for (;;) {
    lam_batch b;
    cr_assert_eq(lam_loader_next(l, &b), LAM_OK, "%s", lam_last_error());
    if (b.size == 0) break;
    cr_assert_eq(b.index, k);
    cr_assert_eq(b.n_fields, 2);
    cr_assert_eq(lam_tensor_dim(b.fields[0], 0), b.size);
    cr_assert_eq(lam_tensor_dim(b.fields[0], 1), F);
    cr_assert_eq(lam_tensor_ndim(b.fields[1]), 1);
    if (sizes) sizes[k] = b.size;
    if (valid) valid[k] = b.valid;
    batch_labels(&b, out + n);
    n += b.size;
    k++;
  }
  cr_assert_eq(k, lam_loader_batch_count(l));
  return n;
}

Test(data, arrays_in_order_keep_drop_pad) {
  lam_ctx *ctx = tu_ctx();
  tu_mark mark = tu_mark_now(ctx);
  for (int borrow = 0; borrow < 2; borrow++) {
    lam_dataset *d = arrays_ds(borrow);
    cr_assert_eq(lam_dataset_count(d), N);
    cr_assert_eq(lam_dataset_field_count(d), 2);
    cr_assert_eq(lam_dataset_field_bytes(d, 0), F * sizeof(float));
    float x[F];
    int32_t y;
    cr_assert_eq(lam_dataset_get(d, 7, (void *[]){x, &y}), LAM_OK);
    cr_assert(x[2] == 72.0f && y == 7);
    for (int prefetch = 0; prefetch < 2; prefetch++) {
      int32_t lab[32];
      int64_t sizes[8], valid[8];
      lam_loader *l = NULL;
      /* keep (the zero value) */
      cr_assert_eq(lam_loader_create(ctx, d, &(lam_loader_opts){.batch_size = 4, .no_prefetch = !prefetch}, &l), LAM_OK);
      cr_assert_eq(lam_loader_batch_count(l), 3);
      cr_assert_eq(epoch_labels(l, 0, lab, sizes, valid), N);
      cr_assert(sizes[0] == 4 && sizes[1] == 4 && sizes[2] == 2 && valid[2] == 2);
      for (int i = 0; i < N; i++) cr_assert_eq(lab[i], i);
      lam_loader_free(l);
      /* drop */
      cr_assert_eq(lam_loader_create(ctx, d, &(lam_loader_opts){4, false, {{0}}, LAM_LAST_BATCH_DROP, !prefetch}, &l),
                   LAM_OK);
      cr_assert_eq(lam_loader_batch_count(l), 2);
      cr_assert_eq(lam_loader_sample_count(l), 8);
      cr_assert_eq(epoch_labels(l, 0, lab, sizes, valid), 8);
      for (int i = 0; i < 8; i++) cr_assert_eq(lab[i], i);
      lam_loader_free(l);
      /* pad: the last batch is filled with the first samples of the order */
      cr_assert_eq(lam_loader_create(ctx, d, &(lam_loader_opts){4, false, {{0}}, LAM_LAST_BATCH_PAD, !prefetch}, &l),
                   LAM_OK);
      cr_assert_eq(lam_loader_batch_count(l), 3);
      cr_assert_eq(epoch_labels(l, 0, lab, sizes, valid), 12);
      cr_assert(sizes[2] == 4 && valid[2] == 2 && valid[0] == 4);
      cr_assert(lab[8] == 8 && lab[9] == 9 && lab[10] == 0 && lab[11] == 1);
      lam_loader_free(l);
    }
    lam_dataset_free(d);
  }
  tu_assert_no_leak(ctx, mark);
  lam_ctx_free(ctx);
}

Test(data, shuffle_is_a_function_of_key_and_epoch) {
  lam_ctx *ctx = tu_ctx();
  tu_mark mark = tu_mark_now(ctx);
  lam_dataset *d = arrays_ds(false);
  lam_loader_opts o = {.batch_size = 3, .shuffle = true, .key = lam_rng_key_make(42)};
  lam_loader *a = NULL, *b = NULL, *c = NULL;
  cr_assert_eq(lam_loader_create(ctx, d, &o, &a), LAM_OK);
  o.no_prefetch = true;
  cr_assert_eq(lam_loader_create(ctx, d, &o, &b), LAM_OK);
  o.key = lam_rng_key_make(43);
  cr_assert_eq(lam_loader_create(ctx, d, &o, &c), LAM_OK);
  int32_t e1[N], e1b[N], e2[N], e1again[N], other[N];
  epoch_labels(a, 1, e1, NULL, NULL);
  epoch_labels(b, 1, e1b, NULL, NULL);
  epoch_labels(a, 2, e2, NULL, NULL);
  epoch_labels(a, 1, e1again, NULL, NULL);
  epoch_labels(c, 1, other, NULL, NULL);
  cr_assert_arr_eq(e1, e1b, sizeof e1, "same key and epoch, prefetch on and off: same order");
  cr_assert_arr_eq(e1, e1again, sizeof e1, "an epoch repeats exactly");
  cr_assert(memcmp(e1, e2, sizeof e1) != 0, "another epoch, another order");
  cr_assert(memcmp(e1, other, sizeof e1) != 0, "another key, another order");
  int seen[N] = {0};
  for (int i = 0; i < N; i++) seen[e1[i]]++;
  for (int i = 0; i < N; i++) cr_assert_eq(seen[i], 1, "a permutation");
  int64_t perm[N];
  cr_assert_eq(lam_loader_order(a, 2, perm), LAM_OK);
  for (int i = 0; i < N; i++) cr_assert_eq(perm[i], e2[i]);
  lam_loader_free(a);
  lam_loader_free(b);
  lam_loader_free(c);
  lam_dataset_free(d);
  tu_assert_no_leak(ctx, mark);
  lam_ctx_free(ctx);
}

Test(data, tensors_subset_split_and_map) {
  lam_ctx *ctx = tu_ctx();
  tu_mark mark = tu_mark_now(ctx);
  fill();
  lam_tensor *tx = lam_tensor_from_host(ctx, LAM_F32, 2, (int64_t[]){N, F}, xs);
  lam_tensor *ty = lam_tensor_from_host(ctx, LAM_I32, 1, (int64_t[]){N}, ys);
  lam_dataset *d = NULL;
  cr_assert_eq(lam_dataset_from_tensors(2, (lam_tensor *[]){tx, ty}, NULL, &d), LAM_OK);
  lam_field f0 = lam_dataset_field(d, 0);
  cr_assert(f0.dtype == LAM_F32 && f0.ndim == 1 && f0.shape[0] == F);
  float x[F];
  int32_t y;
  cr_assert_eq(lam_dataset_get(d, 4, (void *[]){x, &y}), LAM_OK);
  cr_assert(x[0] == 40.0f && y == 4);

  lam_dataset *tr = NULL, *va = NULL;
  cr_assert_eq(lam_dataset_split(d, &(lam_split_opts){.val_fraction = 0.3, .key = lam_rng_key_make(5)}, &tr, &va),
               LAM_OK);
  cr_assert(lam_dataset_count(tr) == 7 && lam_dataset_count(va) == 3);
  int seen[N] = {0};
  for (int i = 0; i < 7; i++) {
    cr_assert_eq(lam_dataset_get(tr, i, (void *[]){x, &y}), LAM_OK);
    seen[y]++;
  }
  for (int i = 0; i < 3; i++) {
    cr_assert_eq(lam_dataset_get(va, i, (void *[]){x, &y}), LAM_OK);
    seen[y]++;
  }
  for (int i = 0; i < N; i++) cr_assert_eq(seen[i], 1, "train and val partition the samples");
  lam_dataset_free(tr);
  lam_dataset_free(va);
  cr_assert_eq(lam_dataset_split(d, &(lam_split_opts){.no_shuffle = true}, &tr, &va), LAM_OK);
  cr_assert_eq(lam_dataset_get(va, 0, (void *[]){x, &y}), LAM_OK);
  cr_assert_eq(y, 8, "no_shuffle: the last 20%% validate");
  lam_dataset_free(tr);
  lam_dataset_free(va);

  /* The loader gathers a tensor dataset on the device; same batches as the host path. */
  lam_dataset *h = NULL;
  cr_assert_eq(lam_dataset_from_arrays(N, 2, fields, (const void *[]){xs, ys}, NULL, &h), LAM_OK);
  for (int policy = 0; policy < 3; policy++)
    for (int prefetch = 0; prefetch < 2; prefetch++) {
      lam_loader_opts lo = {4, true, lam_rng_key_make(9), (lam_last_batch)policy, !prefetch};
      lam_loader *ld = NULL, *lh = NULL;
      cr_assert_eq(lam_loader_create(ctx, d, &lo, &ld), LAM_OK);
      cr_assert_eq(lam_loader_create(ctx, h, &lo, &lh), LAM_OK);
      int32_t a[16], b[16];
      int64_t na = epoch_labels(ld, 2, a, NULL, NULL), nb = epoch_labels(lh, 2, b, NULL, NULL);
      cr_assert_eq(na, nb);
      cr_assert_arr_eq(a, b, sizeof(int32_t) * (size_t)na, "policy %d prefetch %d", policy, prefetch);
      lam_loader_free(ld);
      lam_loader_free(lh);
    }
  lam_dataset_free(h);

  lam_dataset *sub = NULL;
  cr_assert_eq(lam_dataset_subset(d, 3, (int64_t[]){9, 0, 9}, &sub), LAM_OK);
  cr_assert_eq(lam_dataset_get(sub, 1, (void *[]){x, &y}), LAM_OK);
  cr_assert_eq(y, 0);
  lam_dataset_free(sub);
  lam_tensor_free(tx);
  lam_tensor_free(ty);
  lam_dataset_free(d);
  tu_assert_no_leak(ctx, mark);
  lam_ctx_free(ctx);
}

/* map: features [3] -> [1, 3] scaled by 0.5, label + 100. */
static lam_status halve(const void *const *src, void *const *dst, void *user) {
  const float *x = src[0];
  float *o = dst[0];
  for (int j = 0; j < F; j++) o[j] = x[j] * 0.5f;
  *(int32_t *)dst[1] = *(const int32_t *)src[1] + 100;
  (*(int *)user)++;
  return LAM_OK;
}

static lam_status synth(int64_t i, void *const *dst, void *user) {
  if (user && i == 5) return LAM_ERR_STATE;
  float *x = dst[0];
  for (int j = 0; j < F; j++) x[j] = (float)(i * 10 + j);
  *(int32_t *)dst[1] = (int32_t)i;
  return LAM_OK;
}

Test(data, callback_and_map) {
  lam_ctx *ctx = tu_ctx();
  tu_mark mark = tu_mark_now(ctx);
  lam_dataset *d = NULL, *m = NULL;
  cr_assert_eq(lam_dataset_from_fn(N, 2, fields, synth, NULL, &d), LAM_OK);
  lam_loader *l = NULL;
  cr_assert_eq(lam_loader_create(ctx, d, &(lam_loader_opts){.batch_size = 4}, &l), LAM_OK);
  int32_t lab[N];
  cr_assert_eq(epoch_labels(l, 0, lab, NULL, NULL), N);
  for (int i = 0; i < N; i++) cr_assert_eq(lab[i], i);
  lam_loader_free(l);

  int calls = 0;
  lam_field mf[2] = {{LAM_F32, 2, {1, F}}, {LAM_I32, 0, {0}}};
  cr_assert_eq(lam_dataset_map(d, 2, mf, halve, &calls, &m), LAM_OK);
  lam_dataset_free(d); /* m keeps its source alive */
  cr_assert_eq(lam_loader_create(ctx, m, &(lam_loader_opts){.batch_size = 8}, &l), LAM_OK);
  lam_batch b;
  cr_assert_eq(lam_loader_next(l, &b), LAM_OK);
  cr_assert(lam_tensor_ndim(b.fields[0]) == 3 && lam_tensor_dim(b.fields[0], 1) == 1 && lam_tensor_dim(b.fields[0], 2) == F);
  float *x = tu_read_f32(b.fields[0]);
  int32_t y[8];
  cr_assert_eq(lam_tensor_to_host(b.fields[1], y, sizeof y), LAM_OK);
  cr_assert(x[3 * F + 2] == 16.0f && y[3] == 103);
  free(x);
  cr_assert_geq(calls, 8);
  lam_loader_free(l);
  lam_dataset_free(m);

  /* A failing callback stops the loader with its status and a message. */
  cr_assert_eq(lam_dataset_from_fn(N, 2, fields, synth, &calls, &d), LAM_OK);
  cr_assert_eq(lam_loader_create(ctx, d, &(lam_loader_opts){.batch_size = 4, .no_prefetch = true}, &l), LAM_OK);
  cr_assert_eq(lam_loader_next(l, &b), LAM_OK);
  tu_assert_status(lam_loader_next(l, &b), LAM_ERR_STATE, "get callback failed on sample 5");
  lam_loader_free(l);
  lam_dataset_free(d);
  tu_assert_no_leak(ctx, mark);
  lam_ctx_free(ctx);
}

static char *tmp_path(const char *name) {
  static char buf[4][256];
  static int k;
  char *p = buf[k++ % 4];
  snprintf(p, 256, "/tmp/lamina_test_data_%d_%s", (int)getpid(), name);
  return p;
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  cr_assert(f);
  fputs(text, f);
  fclose(f);
}

Test(data, csv) {
  const char *p = tmp_path("a.csv");
  write_text(p, "a,b,label\n1,2,0\n3.5, 4 ,1\r\n\n5,6,2\n");
  lam_dataset *d = NULL;
  cr_assert_eq(lam_dataset_from_csv(p, &(lam_csv_opts){.skip_rows = 1}, &d), LAM_OK, "%s", lam_last_error());
  cr_assert_eq(lam_dataset_count(d), 3);
  lam_field f0 = lam_dataset_field(d, 0), f1 = lam_dataset_field(d, 1);
  cr_assert(f0.dtype == LAM_F32 && f0.ndim == 1 && f0.shape[0] == 2 && f1.dtype == LAM_I32 && f1.ndim == 0);
  float x[2];
  int32_t y;
  cr_assert_eq(lam_dataset_get(d, 1, (void *[]){x, &y}), LAM_OK);
  cr_assert(x[0] == 3.5f && x[1] == 4.0f && y == 1);
  lam_dataset_free(d);
  /* label in column 1, ';' separated */
  write_text(p, "7;1;2\n8;3;4\n");
  cr_assert_eq(lam_dataset_from_csv(p, &(lam_csv_opts){.label_column = 1, .delimiter = ';'}, &d), LAM_OK);
  cr_assert_eq(lam_dataset_get(d, 1, (void *[]){x, &y}), LAM_OK);
  cr_assert(y == 8 && x[0] == 3.0f && x[1] == 4.0f);
  lam_dataset_free(d);
  cr_assert_eq(lam_dataset_from_csv(p, &(lam_csv_opts){.no_label = true, .delimiter = ';'}, &d), LAM_OK);
  cr_assert_eq(lam_dataset_field_count(d), 1);
  cr_assert_eq(lam_dataset_field(d, 0).shape[0], 3);
  lam_dataset_free(d);
  /* bad input */
  write_text(p, "1,2,0\n3,4\n");
  tu_assert_status(lam_dataset_from_csv(p, NULL, &d), LAM_ERR_INVALID_ARGUMENT, "lam_dataset_from_csv");
  cr_assert_null(d);
  write_text(p, "1,x,0\n");
  tu_assert_status(lam_dataset_from_csv(p, NULL, &d), LAM_ERR_INVALID_ARGUMENT, ":1: not a number list");
  write_text(p, "1,2,0.5\n");
  tu_assert_status(lam_dataset_from_csv(p, NULL, &d), LAM_ERR_INVALID_ARGUMENT, "not an integer");
  tu_assert_status(lam_dataset_from_csv("/nonexistent/x.csv", NULL, &d), LAM_ERR_IO, "lam_dataset_from_csv: cannot open");
  unlink(p);
}

/* Writes a version 1.0 .npy file. */
static void write_npy(const char *path, const char *descr, const char *shape, const void *data, size_t bytes) {
  char header[256];
  int n = snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape);
  int total = 10 + n + 1, pad = (64 - total % 64) % 64;
  FILE *f = fopen(path, "wb");
  cr_assert(f);
  unsigned short hl = (unsigned short)(n + pad + 1);
  fwrite("\x93NUMPY\x01\x00", 1, 8, f);
  fputc(hl & 0xff, f);
  fputc(hl >> 8, f);
  fwrite(header, 1, (size_t)n, f);
  for (int i = 0; i < pad; i++) fputc(' ', f);
  fputc('\n', f);
  fwrite(data, 1, bytes, f);
  fclose(f);
}

Test(data, npy) {
  lam_ctx *ctx = tu_ctx();
  float x[5 * 2] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  int64_t y[5] = {4, 3, 2, 1, 0};
  const char *px = tmp_path("x.npy"), *py = tmp_path("y.npy");
  write_npy(px, "<f4", "(5, 2)", x, sizeof x);
  write_npy(py, "<i8", "(5,)", y, sizeof y);
  lam_dataset *d = NULL;
  cr_assert_eq(lam_dataset_from_npy(2, (const char *[]){px, py}, &d), LAM_OK, "%s", lam_last_error());
  cr_assert_eq(lam_dataset_count(d), 5);
  cr_assert_eq(lam_dataset_field(d, 1).dtype, LAM_I32, "i8 labels become i32");
  lam_loader *l = NULL;
  cr_assert_eq(lam_loader_create(ctx, d, &(lam_loader_opts){.batch_size = 5}, &l), LAM_OK);
  lam_batch b;
  cr_assert_eq(lam_loader_next(l, &b), LAM_OK);
  float *gx = tu_read_f32(b.fields[0]);
  int32_t gy[5];
  cr_assert_eq(lam_tensor_to_host(b.fields[1], gy, sizeof gy), LAM_OK);
  cr_assert(gx[7] == 7.0f && gy[1] == 3);
  free(gx);
  lam_loader_free(l);
  lam_dataset_free(d);
  /* mismatched sample counts, bad magic, unsupported dtype */
  write_npy(py, "<i4", "(4,)", y, 16);
  tu_assert_status(lam_dataset_from_npy(2, (const char *[]){px, py}, &d), LAM_ERR_SHAPE, "has 4 samples");
  write_text(py, "not numpy at all");
  tu_assert_status(lam_dataset_from_npy(1, (const char *[]){py}, &d), LAM_ERR_FORMAT, "lam_dataset_from_npy");
  write_npy(py, "<c8", "(1,)", y, 8);
  tu_assert_status(lam_dataset_from_npy(1, (const char *[]){py}, &d), LAM_ERR_DTYPE, "not supported");
  unlink(px);
  unlink(py);
  lam_ctx_free(ctx);
}

Test(data, bad_input_names_the_function) {
  lam_ctx *ctx = tu_ctx();
  tu_mark mark = tu_mark_now(ctx);
  lam_dataset *d = NULL;
  lam_loader *l = NULL;
  fill();
  tu_assert_status(lam_dataset_from_arrays(N, 0, fields, (const void *[]){xs}, NULL, &d), LAM_ERR_INVALID_ARGUMENT,
                   "lam_dataset_from_arrays: 0 fields");
  tu_assert_status(lam_dataset_from_arrays(0, 2, fields, (const void *[]){xs, ys}, NULL, &d), LAM_ERR_INVALID_ARGUMENT,
                   "lam_dataset_from_arrays: 0 samples");
  tu_assert_status(lam_dataset_from_arrays(N, 2, fields, (const void *[]){xs, NULL}, NULL, &d), LAM_ERR_NULL,
                   "data[1] is NULL");
  lam_field bad = {LAM_F32, 1, {0}};
  tu_assert_status(lam_dataset_from_arrays(N, 1, &bad, (const void *[]){xs}, NULL, &d), LAM_ERR_SHAPE, "field 0");
  tu_assert_status(lam_dataset_from_fn(N, 2, fields, NULL, NULL, &d), LAM_ERR_NULL, "lam_dataset_from_fn: get");
  d = arrays_ds(false);
  lam_dataset *s = NULL, *v = NULL;
  tu_assert_status(lam_dataset_subset(d, 1, (int64_t[]){N}, &s), LAM_ERR_INVALID_ARGUMENT, "lam_dataset_subset");
  tu_assert_status(lam_dataset_split(d, &(lam_split_opts){.val_fraction = 1.5}, &s, &v), LAM_ERR_INVALID_ARGUMENT,
                   "lam_dataset_split: val_fraction");
  tu_assert_status(lam_dataset_get(d, N, (void *[]){xs, ys}), LAM_ERR_INVALID_ARGUMENT, "lam_dataset_get: sample 10");
  tu_assert_status(lam_loader_create(ctx, d, &(lam_loader_opts){.batch_size = -1}, &l), LAM_ERR_INVALID_ARGUMENT,
                   "lam_loader_create: batch_size");
  tu_assert_status(lam_loader_create(ctx, d, &(lam_loader_opts){.batch_size = 11, .last_batch = LAM_LAST_BATCH_DROP},
                                     &l), LAM_ERR_INVALID_ARGUMENT, "no full batch");
  tu_assert_status(lam_loader_create(NULL, d, NULL, &l), LAM_ERR_NULL, "lam_loader_create: ctx");
  cr_assert_null(l);
  cr_assert_eq(lam_loader_create(ctx, d, NULL, &l), LAM_OK);
  cr_assert_eq(lam_loader_batch_size(l), 32, "NULL options: batch_size 32");
  tu_assert_status(lam_loader_reset(l, -1), LAM_ERR_INVALID_ARGUMENT, "lam_loader_reset");
  tu_assert_status(lam_loader_next(l, NULL), LAM_ERR_NULL, "lam_loader_next");
  lam_loader_free(l);
  lam_dataset_free(d);
  lam_dataset_free(NULL);
  lam_loader_free(NULL);
  cr_assert_eq(lam_dataset_count(NULL), -1);
  lam_loader_opts lo = lam_loader_defaults();
  cr_assert(lo.batch_size == 32 && !lo.shuffle && lo.last_batch == LAM_LAST_BATCH_KEEP && !lo.no_prefetch);
  lam_split_opts so = lam_split_defaults();
  cr_assert(so.val_fraction == 0.2 && !so.no_shuffle);
  cr_assert_eq(lam_csv_defaults().delimiter, ',');
  tu_assert_no_leak(ctx, mark);
  lam_ctx_free(ctx);
}

/* ---- fit over loaders ------------------------------------------------------------- */

#define M 48

static lam_dataset *toy(int n, uint64_t seed) {
  tu_rng r = tu_rng_make(seed);
  float *x = malloc(sizeof(float) * 4 * (size_t)n);
  int32_t *y = malloc(sizeof(int32_t) * (size_t)n);
  tu_fill_uniform_f32(&r, x, n * 4, -1, 1);
  for (int i = 0; i < n; i++) y[i] = x[i * 4] > x[i * 4 + 1] ? 0 : x[i * 4 + 2] > 0 ? 1 : 2;
  lam_field f[2] = {{LAM_F32, 1, {4}}, {LAM_I32, 0, {0}}};
  lam_dataset *d = NULL;
  cr_assert_eq(lam_dataset_from_arrays(n, 2, f, (const void *[]){x, y}, NULL, &d), LAM_OK);
  free(x);
  free(y);
  return d;
}

static lam_layer *toy_model(void) {
  return lam_nn_sequential((lam_layer *[]){lam_nn_linear(4, 8, NULL), lam_nn_tanh(), lam_nn_linear(8, 3, NULL)}, 3);
}

typedef struct {
  int epochs, batches;
  bool stopped;
  int best;
  double lr[16];
  float p1[64], plast[64];
  lam_vars *vars;
} trace;

static void read_weight(lam_vars *v, float *out) {
  lam_tensor *w = lam_ptree_get(lam_vars_params(v), "0.weight");
  cr_assert_eq(lam_tensor_to_host(w, out, sizeof(float) * 32), LAM_OK);
}

static lam_status on_epoch(const lam_epoch_report *r, void *user) {
  trace *t = user;
  t->epochs++;
  cr_assert_eq(r->epoch, t->epochs);
  cr_assert(isfinite(r->train_loss) && isfinite(r->val_loss) && r->val_accuracy >= 0);
  t->lr[r->epoch - 1] = r->lr;
  t->stopped = r->stop;
  t->best = r->best_epoch;
  if (r->epoch == 1) read_weight(t->vars, t->p1);
  read_weight(t->vars, t->plast);
  return LAM_OK;
}

static lam_status on_batch(const lam_batch_report *r, void *user) {
  trace *t = user;
  t->batches++;
  cr_assert(r->batch >= 1 && r->batch <= r->batches && r->loss && r->size > 0);
  return LAM_OK;
}

static void fit_setup(lam_ctx *ctx, lam_dataset **d, lam_dataset **v, lam_loader **tl, lam_loader **vl,
                      lam_layer **m, lam_vars **vars, int64_t bs) {
  *d = toy(M, 1);
  *v = toy(24, 2);
  cr_assert_eq(lam_loader_create(ctx, *d, &(lam_loader_opts){.batch_size = bs, .shuffle = true}, tl), LAM_OK);
  cr_assert_eq(lam_loader_create(ctx, *v, &(lam_loader_opts){.batch_size = 10}, vl), LAM_OK);
  *m = toy_model();
  cr_assert_eq(lam_layer_init(*m, ctx, lam_rng_key_make(3), LAM_F32, vars), LAM_OK);
}

Test(data, fit_loader_callbacks_early_stop_restore_best) {
  lam_ctx *ctx = tu_ctx();
  tu_mark mark = tu_mark_now(ctx);
  lam_dataset *d, *v;
  lam_loader *tl, *vl;
  lam_layer *m;
  lam_vars *vars;
  fit_setup(ctx, &d, &v, &tl, &vl, &m, &vars, 16);
  lam_optimizer *opt = lam_sgd(&(lam_sgd_opts){.lr = 0.5});
  trace t = {.vars = vars};
  /* An impossible min_delta: only epoch 1 counts as an improvement, so
   * patience 2 stops after epoch 3 and restore_best puts epoch 1 back. */
  lam_fit_opts o = {.epochs = 10, .val_loader = vl, .on_epoch = on_epoch, .on_batch = on_batch, .user = &t,
                    .patience = 2, .min_delta = 1e9, .restore_best = true, .no_progress = true};
  cr_assert_eq(lam_fit_loader(m, vars, opt, tl, &o), LAM_OK, "%s", lam_last_error());
  cr_assert_eq(t.epochs, 3);
  cr_assert(t.stopped);
  cr_assert_eq(t.best, 1);
  cr_assert_eq(t.batches, 3 * 3);
  float now[32];
  read_weight(vars, now);
  cr_assert_arr_eq(now, t.p1, sizeof now, "restore_best: the params of epoch 1");
  cr_assert(memcmp(now, t.plast, sizeof now) != 0, "epoch 3 had moved on");
  /* Without restore_best and patience: all epochs, the last params stay. */
  trace t2 = {.vars = vars};
  o = (lam_fit_opts){.epochs = 2, .val_loader = vl, .on_epoch = on_epoch, .user = &t2, .no_progress = true};
  cr_assert_eq(lam_fit_loader(m, vars, opt, tl, &o), LAM_OK);
  cr_assert_eq(t2.epochs, 2);
  read_weight(vars, now);
  cr_assert_arr_eq(now, t2.plast, sizeof now);
  /* Bad options name lam_fit_loader. */
  tu_assert_status(lam_fit_loader(m, vars, opt, tl, &(lam_fit_opts){.patience = -1}), LAM_ERR_INVALID_ARGUMENT,
                   "lam_fit_loader: patience");
  tu_assert_status(lam_fit_loader(m, vars, opt, tl, &(lam_fit_opts){.monitor = LAM_MONITOR_VAL_LOSS}),
                   LAM_ERR_INVALID_ARGUMENT, "without validation data");
  tu_assert_status(lam_fit_loader(m, vars, opt, NULL, NULL), LAM_ERR_NULL, "lam_fit_loader: train is NULL");
  lam_optimizer_free(opt);
  lam_loader_free(tl);
  lam_loader_free(vl);
  lam_dataset_free(d);
  lam_dataset_free(v);
  lam_vars_free(vars);
  lam_layer_free(m);
  tu_assert_no_leak(ctx, mark);
  lam_ctx_free(ctx);
}

/* One epoch with batch bs and accumulate k; returns the first weight. */
static void run_accum(lam_ctx *ctx, int64_t bs, int k, double clip, float *w, double *lin_w) {
  lam_dataset *d = toy(32, 7);
  lam_loader *l = NULL;
  cr_assert_eq(lam_loader_create(ctx, d, &(lam_loader_opts){.batch_size = bs}, &l), LAM_OK);
  lam_layer *m = toy_model();
  lam_vars *vars = NULL;
  cr_assert_eq(lam_layer_init(m, ctx, lam_rng_key_make(3), LAM_F32, &vars), LAM_OK);
  lam_optimizer *opt = lam_sgd(&(lam_sgd_opts){.lr = 0.3});
  lam_fit_opts o = {.epochs = 1, .accumulate = k, .clip_norm = clip, .no_progress = true};
  cr_assert_eq(lam_fit_loader(m, vars, opt, l, &o), LAM_OK, "%s", lam_last_error());
  cr_assert_eq(lam_optimizer_step_count(opt), 1);
  read_weight(vars, w);
  lam_tensor *w2 = lam_ptree_get(lam_vars_params(vars), "2.weight");
  float tmp[24];
  cr_assert_eq(lam_tensor_to_host(w2, tmp, sizeof tmp), LAM_OK);
  for (int i = 0; i < 24; i++) lin_w[i] = tmp[i];
  lam_optimizer_free(opt);
  lam_loader_free(l);
  lam_dataset_free(d);
  lam_vars_free(vars);
  lam_layer_free(m);
}

Test(data, accumulation_equals_one_large_batch) {
  lam_ctx *ctx = tu_ctx();
  float big[32], acc4[32], uneven[32];
  double b2[24], a2[24], u2[24];
  run_accum(ctx, 32, 1, 0, big, b2);
  run_accum(ctx, 8, 4, 0, acc4, a2);
  run_accum(ctx, 10, 4, 0, uneven, u2); /* 10 + 10 + 10 + 2 rows, weighted by rows */
  for (int i = 0; i < 32; i++) {
    cr_assert(fabsf(big[i] - acc4[i]) <= 1e-6f, "accumulate 4 x 8 vs 32: %d: %g %g", i, big[i], acc4[i]);
    cr_assert(fabsf(big[i] - uneven[i]) <= 1e-6f, "accumulate 10,10,10,2 vs 32: %d: %g %g", i, big[i], uneven[i]);
  }
  for (int i = 0; i < 24; i++) cr_assert(fabs(b2[i] - a2[i]) <= 1e-6);
  /* Clipping applies to the accumulated gradient: same as the large batch clipped. */
  run_accum(ctx, 32, 1, 0.05, big, b2);
  run_accum(ctx, 8, 4, 0.05, acc4, a2);
  for (int i = 0; i < 32; i++) cr_assert(fabsf(big[i] - acc4[i]) <= 1e-6f, "clipped: %d", i);
  lam_ctx_free(ctx);
}

Test(data, schedule_per_epoch_and_per_step) {
  lam_ctx *ctx = tu_ctx();
  lam_dataset *d, *v;
  lam_loader *tl, *vl;
  lam_layer *m;
  lam_vars *vars;
  fit_setup(ctx, &d, &v, &tl, &vl, &m, &vars, 16);
  lam_optimizer *opt = lam_sgd(&(lam_sgd_opts){.lr = 0.1});
  lam_schedule s = lam_schedule_step(0.1, 1, 0.5);
  trace t = {.vars = vars};
  lam_fit_opts o = {.epochs = 3, .val_loader = vl, .on_epoch = on_epoch, .user = &t, .schedule = &s,
                    .schedule_per_epoch = true, .no_progress = true};
  cr_assert_eq(lam_fit_loader(m, vars, opt, tl, &o), LAM_OK);
  cr_assert(fabs(t.lr[0] - 0.1) < 1e-12 && fabs(t.lr[1] - 0.05) < 1e-12 && fabs(t.lr[2] - 0.025) < 1e-12);
  /* per step: 3 steps an epoch, the last step of epoch 1 is t = 2 */
  trace t2 = {.vars = vars};
  o.user = &t2;
  o.schedule_per_epoch = false;
  cr_assert_eq(lam_fit_loader(m, vars, opt, tl, &o), LAM_OK);
  cr_assert(fabs(t2.lr[0] - 0.025) < 1e-12 && fabs(t2.lr[1] - 0.1 * pow(0.5, 5)) < 1e-12);
  lam_optimizer_free(opt);
  lam_loader_free(tl);
  lam_loader_free(vl);
  lam_dataset_free(d);
  lam_dataset_free(v);
  lam_vars_free(vars);
  lam_layer_free(m);
  lam_ctx_free(ctx);
}

Test(data, progress_one_line_per_epoch_off_a_terminal) {
  lam_ctx *ctx = tu_ctx();
  lam_dataset *d, *v;
  lam_loader *tl, *vl;
  lam_layer *m;
  lam_vars *vars;
  fit_setup(ctx, &d, &v, &tl, &vl, &m, &vars, 16);
  lam_optimizer *opt = lam_adam(NULL);
  FILE *f = tmpfile();
  cr_assert(f);
  lam_metric *f1 = lam_metric_create(LAM_METRIC_F1, NULL), *vacc = lam_metric_create(LAM_METRIC_ACCURACY, NULL);
  lam_fit_opts o = {.epochs = 3, .val_loader = vl, .progress = f, .metrics = &f1, .n_metrics = 1,
                    .val_metrics = &vacc, .n_val_metrics = 1};
  cr_assert_eq(lam_fit_loader(m, vars, opt, tl, &o), LAM_OK);
  rewind(f);
  char line[512];
  int lines = 0;
  while (fgets(line, sizeof line, f)) {
    lines++;
    cr_assert(strstr(line, "3/3") && strstr(line, "loss") && strstr(line, "val_acc") && strstr(line, "samples/s") &&
              strstr(line, "  f1 ") && strstr(line, "val_accuracy "), "%s", line);
    char want[32];
    snprintf(want, sizeof want, "epoch %d/3", lines);
    cr_assert(strstr(line, want), "%s", line);
  }
  cr_assert_eq(lines, 3);
  fclose(f);
  /* The trackers hold the last epoch: F1 over its 48 training rows, accuracy over the 24 validation rows. */
  cr_assert_eq(lam_metric_count(f1), M);
  cr_assert_eq(lam_metric_count(vacc), 24);
  double va = 0, vl_loss = 0, vl_acc = 0;
  cr_assert_eq(lam_metric_value(vacc, &va), LAM_OK);
  cr_assert_eq(lam_evaluate_loader(m, vars, vl, NULL, &vl_loss, &vl_acc), LAM_OK);
  cr_assert(fabs(va - vl_acc) < 1e-9, "val tracker %g, evaluate %g", va, vl_acc);
  lam_metric_free(f1);
  lam_metric_free(vacc);
  double loss = 0, acc = 0;
  cr_assert_eq(lam_evaluate_loader(m, vars, vl, NULL, &loss, &acc), LAM_OK);
  cr_assert(isfinite(loss) && acc >= 0 && acc <= 1);
  lam_optimizer_free(opt);
  lam_loader_free(tl);
  lam_loader_free(vl);
  lam_dataset_free(d);
  lam_dataset_free(v);
  lam_vars_free(vars);
  lam_layer_free(m);
  lam_ctx_free(ctx);
}

/* ---- children and the summary ---------------------------------------------------- */

Test(data, children_and_summary) {
  lam_ctx *ctx = tu_ctx();
  lam_layer *m = lam_nn_sequential(
      (lam_layer *[]){lam_nn_compose(lam_nn_linear(4, 16, NULL), lam_nn_relu()), lam_nn_dropout(&(lam_dropout_opts){.rate = 0.1}),
                      lam_nn_linear(16, 3, NULL)},
      3);
  cr_assert_eq(lam_layer_child_count(m), 3);
  lam_layer *c = lam_layer_child(m, 0);
  cr_assert_str_eq(lam_layer_name(c), "compose");
  cr_assert_eq(lam_layer_child_count(c), 2);
  cr_assert_str_eq(lam_layer_child_key(c, 1), "right");
  cr_assert_str_eq(lam_layer_child_key(m, 2), "2");
  cr_assert_null(lam_layer_child_key(m, 3));
  cr_assert_null(lam_layer_child(c, 2));
  lam_vars *vars = NULL;
  cr_assert_eq(lam_layer_init(m, ctx, lam_rng_key_make(0), LAM_F32, &vars), LAM_OK);
  cr_assert_eq(lam_ptree_freeze(lam_vars_params(vars), "2"), LAM_OK);
  FILE *f = tmpfile();
  cr_assert_eq(lam_layer_summary(m, vars, 2, (int64_t[]){5, 4}, NULL, f), LAM_OK, "%s", lam_last_error());
  rewind(f);
  char text[4096] = {0};
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  cr_assert_gt(n, 0);
  cr_assert(strstr(text, "(model)") && strstr(text, "sequential") && strstr(text, "[5,3]"), "%s", text);
  cr_assert(strstr(text, "0.left") == NULL, "rows show keys indented, not whole paths:\n%s", text);
  cr_assert(strstr(text, "    left") && strstr(text, "[5,16]") && strstr(text, "linear"), "%s", text);
  cr_assert(strstr(text, "Total params: 131"), "4*16+16 + 16*3+3 = 131:\n%s", text);
  cr_assert(strstr(text, "Trainable params: 80") && strstr(text, "Frozen params: 51") && strstr(text, "frozen"), "%s",
            text);
  cr_assert(strstr(text, "mixed"), "the model row mixes trainable and frozen:\n%s", text);
  /* max_depth 1 hides the compose's children */
  f = tmpfile();
  cr_assert_eq(lam_layer_summary(m, vars, 2, (int64_t[]){5, 4}, &(lam_layer_summary_opts){.max_depth = 1}, f), LAM_OK);
  rewind(f);
  memset(text, 0, sizeof text);
  n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  cr_assert(strstr(text, "left") == NULL, "%s", text);
  tu_assert_status(lam_layer_summary(m, vars, 2, (int64_t[]){5, 7}, NULL, NULL), LAM_ERR_SHAPE, "");
  tu_assert_status(lam_layer_summary(m, NULL, 2, (int64_t[]){5, 4}, NULL, NULL), LAM_ERR_NULL,
                   "lam_layer_summary: vars");
  lam_vars_free(vars);
  lam_layer_free(m);
  lam_ctx_free(ctx);
}

/* The options rule: NULL, {0} and the defaults agree. */
Test(data, options_null_zero_defaults_agree) {
  lam_ctx *ctx = tu_ctx();
  lam_dataset *d = arrays_ds(false);
  lam_loader *a = NULL, *b = NULL, *c = NULL;
  lam_loader_opts def = lam_loader_defaults();
  cr_assert_eq(lam_loader_create(ctx, d, NULL, &a), LAM_OK);
  cr_assert_eq(lam_loader_create(ctx, d, &(lam_loader_opts){0}, &b), LAM_OK);
  cr_assert_eq(lam_loader_create(ctx, d, &def, &c), LAM_OK);
  int64_t pa[N], pb[N], pc[N];
  lam_loader_order(a, 3, pa);
  lam_loader_order(b, 3, pb);
  lam_loader_order(c, 3, pc);
  cr_assert(!memcmp(pa, pb, sizeof pa) && !memcmp(pa, pc, sizeof pa));
  cr_assert(lam_loader_batch_count(a) == lam_loader_batch_count(b) && lam_loader_batch_count(a) == lam_loader_batch_count(c));
  lam_loader_free(a);
  lam_loader_free(b);
  lam_loader_free(c);
  lam_dataset *t[3], *v[3];
  lam_split_opts sd = lam_split_defaults();
  cr_assert_eq(lam_dataset_split(d, NULL, &t[0], &v[0]), LAM_OK);
  cr_assert_eq(lam_dataset_split(d, &(lam_split_opts){0}, &t[1], &v[1]), LAM_OK);
  cr_assert_eq(lam_dataset_split(d, &sd, &t[2], &v[2]), LAM_OK);
  float x[F];
  int32_t y0, y;
  cr_assert_eq(lam_dataset_get(v[0], 0, (void *[]){x, &y0}), LAM_OK);
  for (int k = 0; k < 3; k++) {
    cr_assert_eq(lam_dataset_count(v[k]), 2);
    cr_assert_eq(lam_dataset_get(v[k], 0, (void *[]){x, &y}), LAM_OK);
    cr_assert_eq(y, y0);
  }
  for (int k = 0; k < 3; k++) {
    lam_dataset_free(t[k]);
    lam_dataset_free(v[k]);
  }
  lam_fit_opts fd = lam_fit_defaults();
  cr_assert(fd.epochs == 10 && fd.batch_size == 32 && fd.accumulate == 1 && fd.patience == 0 && !fd.no_progress &&
            fd.min_delta == 0 && fd.monitor == LAM_MONITOR_AUTO);
  lam_layer_summary_opts so = lam_layer_summary_defaults();
  cr_assert(so.input_dtype == LAM_F32 && so.max_depth == 0);
  cr_assert_eq(lam_dataset_defaults().borrow, false);
  lam_dataset_free(d);
  lam_ctx_free(ctx);
}
