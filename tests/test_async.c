/* test_async.c: asynchronous results (src/tensor_cl.c read handles,
 * lam_predict_async in src/train/fit.c): reads that complete later, with
 * callbacks and polling; 200 reads in flight whose tensors are freed at once
 * while later work reuses their pooled buffers; freeing a handle while its
 * read is held back by a user event; freeing from inside the callback; and
 * a worker thread that owns the context and predicts while the main thread
 * only polls. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lamina/opencl.h"
#include "testutil.h"

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* A user event on ctx's cl_context that holds back everything enqueued after it. */
static cl_event gate_open(lam_ctx *ctx) {
  lam_tensor *probe = lam_tensor_zeros(ctx, LAM_F32, 1, (int64_t[]){1});
  cl_mem m = NULL;
  size_t off = 0;
  cr_assert_eq(lam_tensor_cl_mem(probe, &m, &off), LAM_OK);
  cl_context c = NULL;
  clGetMemObjectInfo(m, CL_MEM_CONTEXT, sizeof c, &c, NULL);
  lam_tensor_free(probe);
  cl_int err = CL_SUCCESS;
  cl_event gate = clCreateUserEvent(c, &err);
  cr_assert_eq(err, CL_SUCCESS);
  cr_assert_eq(lam_ctx_wait_cl_events(ctx, 1, &gate), LAM_OK, "%s", lam_last_error());
  return gate;
}

Test(async, read_completes_and_polls) {
  lam_ctx *ctx = tu_ctx();
  enum { N = 1000 };
  lam_tensor *x = lam_tensor_arange(ctx, LAM_F32, 0, N, 1);
  lam_tensor *y = lam_mul_scalar(x, 0.5);
  float *dst = calloc(N, sizeof *dst);
  lam_read_handle *h = NULL;
  cr_assert_eq(lam_tensor_read_async(y, dst, N * sizeof *dst, NULL, NULL, &h), LAM_OK, "%s",
               lam_last_error());
  bool done = false;
  for (int spins = 0; !done && spins < 20000; spins++) {
    cr_assert_eq(lam_read_handle_poll(h, &done), LAM_OK);
    if (!done) sleep_ms(1);
  }
  cr_assert(done, "the read never completed");
  for (int i = 0; i < N; i++) cr_assert_float_eq(dst[i], 0.5f * (float)i, 0, "at %d", i);
  cr_assert_eq(lam_read_handle_wait(h), LAM_OK);
  lam_read_handle_free(h);
  /* Wrong size: nothing enqueued, no handle. */
  h = (lam_read_handle *)dst;
  tu_assert_status(lam_tensor_read_async(y, dst, 4, NULL, NULL, &h), LAM_ERR_INVALID_ARGUMENT,
                   "destination holds 4 bytes");
  cr_assert_null(h);
  lam_tensor_free(y);
  lam_tensor_free(x);
  free(dst);
  lam_ctx_free(ctx);
}

typedef struct {
  atomic_int calls;
  atomic_int failures;
} counter;

static void count_cb(lam_read_handle *h, lam_status st, void *user) {
  counter *c = user;
  (void)h;
  if (st != LAM_OK) atomic_fetch_add(&c->failures, 1);
  atomic_fetch_add(&c->calls, 1);
}

Test(async, many_reads_in_flight_with_tensors_freed_at_once) {
  lam_ctx *ctx = tu_ctx();
  enum { READS = 200, N = 333 };
  float *dst = calloc((size_t)READS * N, sizeof *dst);
  lam_read_handle *h[READS];
  counter c;
  atomic_init(&c.calls, 0);
  atomic_init(&c.failures, 0);
  /* Hold the queue back so that every read is still pending when its
   * tensor is freed and its buffer reused. */
  cl_event gate = gate_open(ctx);
  tu_mark mark = tu_mark_now(ctx);
  for (int r = 0; r < READS; r++) {
    lam_tensor *t = lam_tensor_full(ctx, LAM_F32, 1, (int64_t[]){N}, (double)r);
    lam_tensor *u = lam_add_scalar(t, 0.25);
    lam_tensor_free(t);
    cr_assert_eq(lam_tensor_read_async(u, dst + (size_t)r * N, N * sizeof *dst,
                                       r % 2 ? count_cb : NULL, &c, &h[r]),
                 LAM_OK, "%s", lam_last_error());
    lam_tensor_free(u); /* pending read: the handle holds the buffer */
    /* Later work that reuses the freed (pooled) buffers with other values. */
    lam_tensor *junk = lam_tensor_full(ctx, LAM_F32, 1, (int64_t[]){N}, -1000.0);
    lam_tensor_free(junk);
  }
  bool done = true;
  cr_assert_eq(lam_read_handle_poll(h[READS - 1], &done), LAM_OK);
  cr_assert(!done, "the gate did not hold the reads back");
  cr_assert_eq(atomic_load(&c.calls), 0);
  tu_assert_no_leak(ctx, mark);
  cr_assert_eq(clSetUserEventStatus(gate, CL_COMPLETE), CL_SUCCESS);
  for (int r = READS - 1; r >= 0; r--) {
    cr_assert_eq(lam_read_handle_wait(h[r]), LAM_OK, "read %d: %s", r, lam_last_error());
    lam_read_handle_free(h[r]);
  }
  cr_assert_eq(atomic_load(&c.calls), READS / 2);
  cr_assert_eq(atomic_load(&c.failures), 0);
  for (int r = 0; r < READS; r++)
    for (int i = 0; i < N; i += 37)
      cr_assert_float_eq(dst[(size_t)r * N + i], (float)r + 0.25f, 0, "read %d at %d", r, i);
  clReleaseEvent(gate);
  free(dst);
  lam_ctx_free(ctx);
}

typedef struct {
  int *opened;
  cl_event gate;
} opener;

static void *open_later(void *p) {
  opener *o = p;
  sleep_ms(50);
  *o->opened = 1;
  clSetUserEventStatus(o->gate, CL_COMPLETE);
  return NULL;
}

Test(async, free_while_pending_waits_for_the_read_and_callback) {
  lam_ctx *ctx = tu_ctx();
  enum { N = 64 };
  cl_event gate = gate_open(ctx);
  lam_tensor *t = lam_tensor_full(ctx, LAM_F32, 1, (int64_t[]){N}, 3.0);
  float dst[N] = {0};
  counter c;
  atomic_init(&c.calls, 0);
  atomic_init(&c.failures, 0);
  lam_read_handle *h = NULL;
  cr_assert_eq(lam_tensor_read_async(t, dst, sizeof dst, count_cb, &c, &h), LAM_OK);
  lam_tensor_free(t);
  cr_assert_eq(lam_ctx_trim(ctx), LAM_OK); /* even the pool lets go of the buffer */
  int opened = 0;
  opener o = {&opened, gate};
  pthread_t th;
  pthread_create(&th, NULL, open_later, &o);
  lam_read_handle_free(h); /* blocks until the gate opens and the read is done */
  cr_assert_eq(opened, 1);
  cr_assert_eq(atomic_load(&c.calls), 1, "the callback ran before free returned");
  for (int i = 0; i < N; i++) cr_assert_float_eq(dst[i], 3.0f, 0);
  pthread_join(th, NULL);
  clReleaseEvent(gate);
  lam_ctx_free(ctx);
}

static void free_in_cb(lam_read_handle *h, lam_status st, void *user) {
  atomic_int *flag = user;
  lam_read_handle_free(h); /* allowed: the handle goes when the callback returns */
  atomic_store(flag, st == LAM_OK ? 1 : -1);
}

Test(async, callback_may_free_its_handle) {
  lam_ctx *ctx = tu_ctx();
  lam_tensor *t = lam_tensor_full(ctx, LAM_F64, 2, (int64_t[]){5, 3}, -2.0);
  double dst[15];
  atomic_int flag;
  atomic_init(&flag, 0);
  lam_read_handle *h = NULL;
  cr_assert_eq(lam_tensor_read_async(t, dst, sizeof dst, free_in_cb, &flag, &h), LAM_OK);
  lam_tensor_free(t);
  for (int spins = 0; atomic_load(&flag) == 0 && spins < 20000; spins++) sleep_ms(1);
  cr_assert_eq(atomic_load(&flag), 1);
  for (int i = 0; i < 15; i++) cr_assert_float_eq(dst[i], -2.0, 0);
  lam_ctx_free(ctx);
}

/* ---- a worker thread owns the context; the main thread only polls -------- */

typedef struct {
  float out[6 * 3];
  lam_read_handle *_Atomic handle;
  atomic_int ready;
  lam_status status;
  char message[512];
  float x[6 * 4];
} job;

static void *predict_worker(void *p) {
  job *j = p;
  lam_ctx *ctx = NULL;
  j->status = lam_ctx_create(NULL, &ctx);
  lam_layer *net = NULL;
  lam_vars *vars = NULL;
  lam_tensor *x = NULL, *sync = NULL;
  if (j->status == LAM_OK) {
    lam_layer *parts[] = {lam_nn_linear(4, 5, NULL), lam_nn_relu(), lam_nn_linear(5, 3, NULL)};
    net = lam_nn_sequential(parts, 3);
    j->status = lam_layer_init(net, ctx, lam_rng_key_make(7), LAM_F32, &vars);
  }
  if (j->status == LAM_OK) {
    x = lam_tensor_from_host(ctx, LAM_F32, 2, (int64_t[]){6, 4}, j->x);
    lam_read_handle *h = NULL;
    j->status = lam_predict_async(net, vars, x, 4, j->out, sizeof j->out, NULL, NULL, &h);
    if (j->status == LAM_OK) atomic_store(&j->handle, h);
    /* The synchronous answer to compare with, after the async one is enqueued. */
    if (j->status == LAM_OK) j->status = lam_predict(net, vars, x, 0, &sync);
    float want[18];
    if (j->status == LAM_OK) j->status = lam_tensor_to_host(sync, want, sizeof want);
    if (j->status == LAM_OK) {
      /* The async result must be there by the time the later sync read is. */
      j->status = lam_read_handle_wait(h);
      for (int i = 0; i < 18; i++)
        if (j->status == LAM_OK && want[i] != j->out[i]) j->status = LAM_ERR_INVALID_VALUE;
    }
    float small[2];
    lam_read_handle *bad = NULL;
    if (j->status == LAM_OK &&
        lam_predict_async(net, vars, x, 0, small, sizeof small, NULL, NULL, &bad) !=
            LAM_ERR_INVALID_ARGUMENT)
      j->status = LAM_ERR_INVALID_ARGUMENT;
  }
  if (j->status != LAM_OK) snprintf(j->message, sizeof j->message, "%s", lam_last_error());
  atomic_store(&j->ready, 1);
  /* Wait until the main thread let go of the handle before freeing the context. */
  while (atomic_load(&j->handle) != NULL) sleep_ms(1);
  lam_tensor_free(sync);
  lam_tensor_free(x);
  lam_vars_free(vars);
  lam_layer_free(net);
  lam_ctx_free(ctx);
  return NULL;
}

Test(async, worker_thread_predicts_while_main_thread_polls) {
  job *j = calloc(1, sizeof *j);
  for (int i = 0; i < 24; i++) j->x[i] = (float)((i * 7) % 11) / 5.0f - 1.0f;
  atomic_init(&j->ready, 0);
  atomic_init(&j->handle, NULL);
  pthread_t th;
  cr_assert_eq(pthread_create(&th, NULL, predict_worker, j), 0);
  int ticks = 0;
  bool done = false;
  while (!done && ticks < 60000) {
    lam_read_handle *h = atomic_load(&j->handle);
    if (h) cr_assert_eq(lam_read_handle_poll(h, &done), LAM_OK, "%s", lam_last_error());
    if (!h && atomic_load(&j->ready)) break; /* the worker failed */
    ticks++;
    sleep_ms(1);
  }
  while (!atomic_load(&j->ready)) sleep_ms(1);
  cr_assert_eq(j->status, LAM_OK, "%s", j->message);
  cr_assert(done);
  lam_read_handle *h = atomic_load(&j->handle);
  lam_read_handle_free(h);
  atomic_store(&j->handle, NULL);
  pthread_join(th, NULL);
  bool any = false;
  for (int i = 0; i < 18; i++) any = any || j->out[i] != 0.0f;
  cr_assert(any, "the prediction is all zeros");
  free(j);
}

/* lam_predict_async only enqueues: with the queue held back by a user event
 * it returns (a host read inside would wait for the gate), and the result
 * arrives once the gate opens. A watchdog opens the gate after 60 s so that
 * a blocking predict fails the test instead of hanging it. */
typedef struct {
  cl_event gate;
  atomic_int released; /* 1: by the test, 2: by the watchdog */
} watchdog;

static void *watch(void *p) {
  watchdog *w = p;
  for (int i = 0; i < 6000 && atomic_load(&w->released) == 0; i++) sleep_ms(10);
  int expected = 0;
  if (atomic_compare_exchange_strong(&w->released, &expected, 2))
    clSetUserEventStatus(w->gate, CL_COMPLETE);
  return NULL;
}

Test(async, predict_async_does_not_wait_for_the_device) {
  lam_ctx *ctx = tu_ctx();
  lam_layer *parts[] = {lam_nn_linear(6, 7, NULL), lam_nn_relu(), lam_nn_linear(7, 2, NULL)};
  lam_layer *net = lam_nn_sequential(parts, 3);
  lam_vars *vars = NULL;
  cr_assert_eq(lam_layer_init(net, ctx, lam_rng_key_make(3), LAM_F32, &vars), LAM_OK);
  float xs[5 * 6];
  for (int i = 0; i < 30; i++) xs[i] = (float)(i % 7) - 3.0f;
  lam_tensor *x = lam_tensor_from_host(ctx, LAM_F32, 2, (int64_t[]){5, 6}, xs);
  float want[10], got[10];
  lam_tensor *ref = NULL;
  cr_assert_eq(lam_predict(net, vars, x, 0, &ref), LAM_OK); /* builds the kernels */
  cr_assert_eq(lam_tensor_to_host(ref, want, sizeof want), LAM_OK);
  watchdog w;
  w.gate = gate_open(ctx);
  atomic_init(&w.released, 0);
  pthread_t th;
  pthread_create(&th, NULL, watch, &w);
  lam_read_handle *h = NULL;
  cr_assert_eq(lam_predict_async(net, vars, x, 2, got, sizeof got, NULL, NULL, &h), LAM_OK, "%s",
               lam_last_error());
  int expected = 0;
  bool by_test = atomic_compare_exchange_strong(&w.released, &expected, 1);
  bool done = true;
  cr_assert_eq(lam_read_handle_poll(h, &done), LAM_OK);
  cr_assert(by_test && !done, "lam_predict_async waited for the device");
  clSetUserEventStatus(w.gate, CL_COMPLETE);
  cr_assert_eq(lam_read_handle_wait(h), LAM_OK, "%s", lam_last_error());
  for (int i = 0; i < 10; i++) cr_assert_float_eq(got[i], want[i], 1e-5, "at %d", i);
  lam_read_handle_free(h);
  pthread_join(th, NULL);
  clReleaseEvent(w.gate);
  lam_tensor_free(ref);
  lam_tensor_free(x);
  lam_vars_free(vars);
  lam_layer_free(net);
  lam_ctx_free(ctx);
}
