/* test_threads.c: the threading contract of lamina/runtime.h: contexts are
 * created, used and freed from several threads at once (each thread owns its
 * context), including as the process's very first OpenCL calls, which some
 * drivers (PoCL 3.1) do not survive without lamina's serialisation.
 * Covers src/runtime/device.c and context.c. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

typedef struct {
  int id;
  lam_status status;
  char message[256];
  double sum;
} worker;

/* Creates a context, runs one small op, reads it back, frees everything. */
static void *work(void *arg) {
  worker *w = arg;
  lam_ctx *ctx = NULL;
  w->status = lam_ctx_create(NULL, &ctx);
  if (w->status != LAM_OK) {
    snprintf(w->message, sizeof w->message, "%s", lam_last_error());
    return NULL;
  }
  lam_tensor *a = lam_tensor_full(ctx, LAM_F32, 1, (int64_t[]){257}, 1.0 + w->id);
  lam_tensor *b = lam_mul_scalar(a, 2.0);
  lam_tensor *s = lam_sum(b, 0, NULL, 0);
  w->status = s ? lam_tensor_item(s, &w->sum) : lam_last_status();
  if (w->status != LAM_OK) snprintf(w->message, sizeof w->message, "%s", lam_last_error());
  lam_tensor_free(s);
  lam_tensor_free(b);
  lam_tensor_free(a);
  lam_ctx_free(ctx);
  return NULL;
}

static void run_threads(int n, int rounds) {
  for (int r = 0; r < rounds; r++) {
    pthread_t th[4];
    worker w[4];
    memset(w, 0, sizeof w);
    for (int i = 0; i < n; i++) {
      w[i].id = i;
      cr_assert_eq(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < n; i++) {
      cr_assert_eq(w[i].status, LAM_OK, "thread %d round %d: %s", i, r, w[i].message);
      cr_assert_float_eq(w[i].sum, 257.0 * 2.0 * (1.0 + i), 1e-3, "thread %d", i);
    }
  }
}

/* Each Criterion test runs in a fresh process, so the first round is the
 * process's first OpenCL use. */
Test(threads, two_contexts_at_once_from_cold) { run_threads(2, 3); }
Test(threads, four_contexts_at_once_from_cold) { run_threads(4, 3); }

/* The error side: a bad selector fails in every thread with its own message
 * (lam_last_error is thread-local). */
static void *bad_work(void *arg) {
  worker *w = arg;
  lam_ctx *ctx = NULL;
  w->status = lam_ctx_create(&(lam_ctx_opts){.device = "no-such-device-xyz"}, &ctx);
  snprintf(w->message, sizeof w->message, "%s", lam_last_error());
  return NULL;
}

Test(threads, errors_are_per_thread) {
  pthread_t th[4];
  worker w[4];
  memset(w, 0, sizeof w);
  for (int i = 0; i < 4; i++) cr_assert_eq(pthread_create(&th[i], NULL, bad_work, &w[i]), 0);
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < 4; i++) {
    cr_assert_neq(w[i].status, LAM_OK);
    cr_assert(strstr(w[i].message, "no-such-device-xyz") != NULL, "%s", w[i].message);
  }
}
