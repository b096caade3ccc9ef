/* app_worker.c: an application-style program. A UI-like main loop ticks
 * (prints progress, never blocks on the device) while a worker thread that
 * owns the lamina context runs inference through the asynchronous API:
 * lam_predict_async enqueues each request and returns a read handle, a
 * completion callback counts finished requests, and the main loop polls
 * the handles and shows each result as it arrives (docs/embedding.md). */
#include <lamina.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { REQUESTS = 8, ROWS = 16, IN = 8, CLASSES = 4 };

typedef struct {
  float x[ROWS * IN];            /* the request's input (written by the UI) */
  float y[ROWS * CLASSES];       /* its result (written by the read) */
  lam_read_handle *_Atomic handle; /* published by the worker */
  int shown;                     /* UI thread only */
} request;

typedef struct {
  request req[REQUESTS];
  atomic_int completed;          /* bumped by the read callbacks */
  atomic_int worker_done;        /* the worker has submitted everything (or failed) */
  atomic_int ui_done;            /* the UI has taken every result */
  lam_status status;
  char message[512];
} app;

static void sleep_ms(int ms) {
  struct timespec ts = {0, (long)ms * 1000000L};
  nanosleep(&ts, NULL);
}

/* Runs on an OpenCL driver thread: keep it short, no lamina calls. */
static void on_done(lam_read_handle *h, lam_status st, void *user) {
  app *a = user;
  (void)h;
  if (st == LAM_OK) atomic_fetch_add(&a->completed, 1);
}

/* The worker owns the context, the model and every tensor. */
static void *worker(void *p) {
  app *a = p;
  lam_ctx *ctx = NULL;
  lam_layer *net = NULL;
  lam_vars *vars = NULL;
  lam_status st = lam_ctx_create(NULL, &ctx);
  if (st == LAM_OK) {
    net = lam_nn_sequential((lam_layer *[]){lam_nn_linear(IN, 32, NULL), lam_nn_relu(),
                                            lam_nn_linear(32, CLASSES, NULL)},
                            3);
    st = lam_layer_init(net, ctx, lam_rng_key_make(42), LAM_F32, &vars);
  }
  for (int r = 0; r < REQUESTS && st == LAM_OK; r++) {
    request *q = &a->req[r];
    lam_tensor *x = lam_tensor_from_host(ctx, LAM_F32, 2, (int64_t[]){ROWS, IN}, q->x);
    lam_read_handle *h = NULL;
    st = x ? lam_predict_async(net, vars, x, 0, q->y, sizeof q->y, on_done, a, &h)
           : lam_last_status();
    lam_tensor_free(x); /* safe: the handle keeps what the read needs */
    if (st == LAM_OK) atomic_store(&q->handle, h);
  }
  if (st != LAM_OK) {
    a->status = st;
    snprintf(a->message, sizeof a->message, "%s", lam_last_error());
  }
  atomic_store(&a->worker_done, 1);
  while (st == LAM_OK && !atomic_load(&a->ui_done)) sleep_ms(5);
  lam_vars_free(vars);
  lam_layer_free(net);
  lam_ctx_free(ctx);
  return NULL;
}

int main(void) {
  app *a = calloc(1, sizeof *a);
  if (!a) return 1;
  for (int r = 0; r < REQUESTS; r++)
    for (int i = 0; i < ROWS * IN; i++)
      a->req[r].x[i] = (float)((r * 31 + i * 7) % 13) / 6.0f - 1.0f;
  pthread_t th;
  if (pthread_create(&th, NULL, worker, a) != 0) return 1;

  /* The "UI" loop: one tick every 10 ms, whatever the device is doing. */
  int shown = 0, ticks = 0, last = -1;
  while (shown < REQUESTS && ticks < 30000) {
    ticks++;
    if (atomic_load(&a->worker_done) && a->status != LAM_OK) break;
    for (int r = 0; r < REQUESTS; r++) {
      request *q = &a->req[r];
      lam_read_handle *h = atomic_load(&q->handle);
      bool done = false;
      if (!h || q->shown || lam_read_handle_poll(h, &done) != LAM_OK || !done) continue;
      int best = 0; /* class of the first row */
      for (int c = 1; c < CLASSES; c++)
        if (q->y[c] > q->y[best]) best = c;
      printf("tick %d: request %d done, row 0 -> class %d\n", ticks, r, best);
      q->shown = 1;
      shown++;
    }
    int done_now = atomic_load(&a->completed);
    if (done_now != last && ticks % 10 == 0) {
      printf("tick %d: %d/%d requests complete\n", ticks, done_now, REQUESTS);
      last = done_now;
    }
    sleep_ms(10);
  }
  for (int r = 0; r < REQUESTS; r++) lam_read_handle_free(atomic_load(&a->req[r].handle));
  atomic_store(&a->ui_done, 1);
  pthread_join(th, NULL);
  int ok = a->status == LAM_OK && shown == REQUESTS && atomic_load(&a->completed) == REQUESTS;
  if (a->status != LAM_OK) fprintf(stderr, "error: %s\n", a->message);
  printf("%s: %d results in %d ticks\n", ok ? "ok" : "failed", shown, ticks);
  free(a);
  return ok ? 0 : 1;
}
