/* dist/dist.c: lamina_dist, data-parallel training over MPI (lamina/dist.h).
 * A layer above train, built as its own library over liblamina's public API
 * only (it never sees lam__ symbols). Every collective starts with a check:
 * one MPI_Iallreduce (MAX) of {lowest failing rank and its status, the
 * tree signature, its complement} and one (SUM) of {failures, weighted
 * loss, trees}, so that all processes agree on whether to go on and no one
 * is left waiting in a reduction the others skipped. Gradients then go in
 * buckets: leaves of one dtype, in tree order, up to bucket_bytes; bucket k
 * is read leaf by leaf into one host buffer (all local trees summed into
 * it), reduced in place with MPI_Iallreduce, and while it is in flight the
 * previous bucket is written back and the next one staged (two host
 * buffers), with MPI_Test between leaves to drive MPI's progress. Waits
 * poll with a timeout when one is set. */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lamina/dist.h"
#include "lamina/ptree.h"
#include "lamina/status.h"
#include "lamina/tensor.h"

#define LAM__DIST_DEFAULT_BUCKET ((int64_t)25 << 20)
#define LAM__DIST_MAX_BUCKET ((int64_t)1 << 30)

struct lam_dist {
  MPI_Comm comm;
  int rank, size;
  int64_t bucket_bytes;
  double timeout;
  bool overlap;
  bool broken; /* a timeout left a request pending: no further collective */
  unsigned char *buf[2];
  size_t cap[2];
  unsigned char *tmp; /* one leaf of tree i > 0 */
  size_t tmp_cap;
  lam_grad_hook hook;
  lam_dist_totals totals;
};

/* Records a failure through liblamina's public lam_error_set. */
static lam_status lam__dfail(lam_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static lam_status lam__dfail(lam_status st, const char *fmt, ...) {
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return lam_error_set(st, msg);
}

static double lam__now(void) { return MPI_Wtime(); }

static lam_status lam__mpi_fail(int err, const char *fn, const char *what) {
  char s[MPI_MAX_ERROR_STRING];
  int n = 0;
  if (MPI_Error_string(err, s, &n) != MPI_SUCCESS) snprintf(s, sizeof s, "error %d", err);
  return lam__dfail(LAM_ERR_PEER, "%s: %s failed: %s", fn, what, s);
}

/* Waits for r, polling when a timeout is set. */
static lam_status lam__wait(lam_dist *d, MPI_Request *r, const char *fn, const char *what) {
  if (d->timeout <= 0) {
    int err = MPI_Wait(r, MPI_STATUS_IGNORE);
    return err == MPI_SUCCESS ? LAM_OK : lam__mpi_fail(err, fn, what);
  }
  double t0 = lam__now();
  for (;;) {
    int done = 0, err = MPI_Test(r, &done, MPI_STATUS_IGNORE);
    if (err != MPI_SUCCESS) return lam__mpi_fail(err, fn, what);
    if (done) return LAM_OK;
    if (lam__now() - t0 > d->timeout) {
      d->broken = true;
      return lam__dfail(LAM_ERR_PEER, "%s: %s waited %.3g s (the timeout) for the other processes: one of them "
                        "died or stopped calling collectives; this lam_dist cannot be used any more (end the job, "
                        "e.g. with MPI_Abort)", fn, what, d->timeout);
    }
    struct timespec ts = {0, 20000};
    nanosleep(&ts, NULL);
  }
}

/* Drives the progress of an in-flight request (MPI progresses mostly inside MPI calls). */
static void lam__poke(MPI_Request *r) {
  if (*r == MPI_REQUEST_NULL) return;
  int done = 0;
  MPI_Test(r, &done, MPI_STATUS_IGNORE);
}

static lam_status lam__usable(const lam_dist *d, const char *fn) {
  if (!d) return lam__dfail(LAM_ERR_NULL, "%s: d is NULL", fn);
  if (d->broken)
    return lam__dfail(LAM_ERR_STATE, "%s: this lam_dist timed out in an earlier collective and cannot be used", fn);
  return LAM_OK;
}

/* ---- the check before each collective ------------------------------------------ */

static uint64_t lam__fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

/* Signature of a tree: every leaf's path, dtype and shape, in order. */
static uint64_t lam__signature(const lam_ptree *t, uint64_t salt) {
  uint64_t h = lam__fnv(14695981039346656037ull, &salt, sizeof salt);
  int n = lam_ptree_leaf_count(t);
  for (int i = 0; i < n; i++) {
    const char *path = NULL;
    lam_tensor *v = NULL;
    if (lam_ptree_leaf(t, i, &path, &v) != LAM_OK) continue;
    h = lam__fnv(h, path, strlen(path) + 1);
    int32_t dt = (int32_t)lam_tensor_dtype(v), nd = lam_tensor_ndim(v);
    h = lam__fnv(h, &dt, sizeof dt);
    h = lam__fnv(h, &nd, sizeof nd);
    h = lam__fnv(h, lam_tensor_shape(v), (size_t)nd * sizeof(int64_t));
  }
  return h;
}

typedef struct {
  double loss; /* in: this process's weighted loss; out: the sum */
  double trees;/* in: this process's trees; out: all processes' */
} lam__sums;

/* Every process passes its status and signature; all return the same
 * verdict. *sums (may be NULL) is summed over the processes. */
static lam_status lam__agree(lam_dist *d, const char *fn, lam_status st, uint64_t sig, lam__sums *sums) {
  double t0 = lam__now();
  char mine[1024];
  snprintf(mine, sizeof mine, "%s", st != LAM_OK ? lam_last_error() : "");
  uint64_t mx[3] = {0, sig, ~sig};
  if (st != LAM_OK) mx[0] = ((uint64_t)(UINT32_MAX - (uint32_t)d->rank) << 32) | (uint32_t)(-(int32_t)st);
  double sm[3] = {st != LAM_OK ? 1.0 : 0.0, sums ? sums->loss : 0.0, sums ? sums->trees : 0.0};
  MPI_Request r[2];
  int e1 = MPI_Iallreduce(MPI_IN_PLACE, mx, 3, MPI_UINT64_T, MPI_MAX, d->comm, &r[0]);
  int e2 = e1 == MPI_SUCCESS ? MPI_Iallreduce(MPI_IN_PLACE, sm, 3, MPI_DOUBLE, MPI_SUM, d->comm, &r[1]) : e1;
  if (e1 != MPI_SUCCESS || e2 != MPI_SUCCESS) {
    d->broken = true; /* the processes may no longer agree on the sequence of collectives */
    return lam__mpi_fail(e1 != MPI_SUCCESS ? e1 : e2, fn, "MPI_Iallreduce (status check)");
  }
  lam_status w = lam__wait(d, &r[0], fn, "the status check");
  if (w == LAM_OK) w = lam__wait(d, &r[1], fn, "the status check");
  d->totals.check_seconds += lam__now() - t0;
  if (w != LAM_OK) return w;
  if (sums) {
    sums->loss = sm[1];
    sums->trees = sm[2];
  }
  if (mx[0] != 0) {
    int first = (int)(UINT32_MAX - (uint32_t)(mx[0] >> 32));
    lam_status fst = (lam_status)(-(int32_t)(uint32_t)(mx[0] & 0xffffffffu));
    int nfail = (int)sm[0];
    if (st != LAM_OK)
      return lam__dfail(st, "%s: this process (rank %d) failed, so all %d processes skipped the collective "
                        "(%d failed; lowest rank %d): %s", fn, d->rank, d->size, nfail, first, mine);
    return lam__dfail(LAM_ERR_PEER, "%s: %d of %d processes failed, so all skipped the collective; rank %d "
                      "(the lowest failing) reported %s (its own message says why)", fn, nfail, d->size, first,
                      lam_status_string(fst));
  }
  if (mx[1] != ~mx[2])
    return lam__dfail(LAM_ERR_SHAPE, "%s: the trees differ between the processes (paths, shapes, dtypes or the "
                      "collective's arguments: signatures from %016llx to %016llx; this process, rank %d: "
                      "%016llx); every process must pass a tree of the same structure", fn,
                      (unsigned long long)~mx[2], (unsigned long long)mx[1], d->rank, (unsigned long long)sig);
  return LAM_OK;
}

lam_status lam_dist_check(lam_dist *d, lam_status status) {
  const char *fn = "lam_dist_check";
  lam_status st = lam__usable(d, fn);
  if (st != LAM_OK) return st;
  return lam__agree(d, fn, status, 0, NULL);
}

/* ---- create, free, accessors --------------------------------------------------- */

lam_dist_opts lam_dist_defaults(void) {
  return (lam_dist_opts){.bucket_bytes = LAM__DIST_DEFAULT_BUCKET};
}

static void lam__hook_shard(void *user, int64_t rows, int64_t *lo, int64_t *hi);
static lam_status lam__hook_reduce(void *user, lam_status status, lam_ptree *grads, lam_tensor *loss, int64_t rows,
                                   int64_t total);

lam_status lam_dist_create(MPI_Comm comm, const lam_dist_opts *opts, lam_dist **out) {
  const char *fn = "lam_dist_create";
  if (!out) return lam__dfail(LAM_ERR_NULL, "%s: out is NULL", fn);
  *out = NULL;
  lam_dist_opts o = opts ? *opts : (lam_dist_opts){0};
  if (o.bucket_bytes == 0) o.bucket_bytes = LAM__DIST_DEFAULT_BUCKET;
  if (o.bucket_bytes < 0 || o.bucket_bytes > LAM__DIST_MAX_BUCKET)
    return lam__dfail(LAM_ERR_INVALID_ARGUMENT, "%s: bucket_bytes %lld must be in 1..%lld (0: 25 MiB)", fn,
                      (long long)o.bucket_bytes, (long long)LAM__DIST_MAX_BUCKET);
  if (!(o.timeout >= 0 && isfinite(o.timeout)))
    return lam__dfail(LAM_ERR_INVALID_ARGUMENT, "%s: timeout %g must be >= 0 and finite (0: none)", fn, o.timeout);
  int inited = 0, finalized = 0;
  MPI_Initialized(&inited);
  MPI_Finalized(&finalized);
  if (!inited || finalized)
    return lam__dfail(LAM_ERR_STATE, "%s: MPI is %s (the application calls MPI_Init before)", fn,
                      finalized ? "finalized" : "not initialised");
  if (comm == MPI_COMM_NULL) return lam__dfail(LAM_ERR_INVALID_ARGUMENT, "%s: comm is MPI_COMM_NULL", fn);
  lam_dist *d = calloc(1, sizeof *d);
  if (!d) return lam__dfail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
  int err = MPI_Comm_dup(comm, &d->comm);
  if (err != MPI_SUCCESS) {
    free(d);
    return lam__mpi_fail(err, fn, "MPI_Comm_dup");
  }
  /* Errors come back as codes on lamina's own communicator, never abort. */
  MPI_Comm_set_errhandler(d->comm, MPI_ERRORS_RETURN);
  MPI_Comm_rank(d->comm, &d->rank);
  MPI_Comm_size(d->comm, &d->size);
  d->bucket_bytes = o.bucket_bytes;
  d->timeout = o.timeout;
  d->overlap = !o.no_overlap;
  d->hook = (lam_grad_hook){lam__hook_shard, lam__hook_reduce, (uint32_t)d->rank + 1u, d};
  *out = d;
  return LAM_OK;
}

void lam_dist_free(lam_dist *d) {
  if (!d) return;
  if (!d->broken) MPI_Comm_free(&d->comm);
  free(d->buf[0]);
  free(d->buf[1]);
  free(d->tmp);
  free(d);
}

int lam_dist_rank(const lam_dist *d) { return d ? d->rank : -1; }
int lam_dist_size(const lam_dist *d) { return d ? d->size : -1; }

lam_status lam_dist_stats(const lam_dist *d, lam_dist_totals *out) {
  if (!d || !out) return lam__dfail(LAM_ERR_NULL, "lam_dist_stats: %s is NULL", !d ? "d" : "out");
  *out = d->totals;
  return LAM_OK;
}

/* ---- buckets ------------------------------------------------------------------- */

typedef struct {
  int first, count; /* leaves [first, first + count) */
  size_t bytes;
  lam_dtype dtype;
} lam__bucket;

/* Groups the leaves of t into buckets (one dtype each, in order). */
static lam_status lam__buckets(const lam_dist *d, const lam_ptree *t, bool any_dtype, lam__bucket **out, int *nout,
                               const char *fn) {
  int n = lam_ptree_leaf_count(t), nb = 0;
  lam__bucket *b = calloc((size_t)(n > 0 ? n : 1), sizeof *b);
  if (!b) return lam__dfail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
  for (int i = 0; i < n; i++) {
    const char *path = NULL;
    lam_tensor *v = NULL;
    lam_status st = lam_ptree_leaf(t, i, &path, &v);
    if (st == LAM_OK && !v) st = lam__dfail(LAM_ERR_NULL, "%s: leaf %s is NULL", fn, path);
    lam_dtype dt = v ? lam_tensor_dtype(v) : LAM_F32;
    if (st == LAM_OK && !any_dtype && dt != LAM_F32 && dt != LAM_F64)
      st = lam__dfail(LAM_ERR_DTYPE, "%s: leaf %s is %s; gradients are reduced in f32 or f64", fn, path,
                      lam_dtype_name(dt));
    if (st != LAM_OK) {
      free(b);
      return st;
    }
    size_t bytes = lam_tensor_nbytes(v);
    lam__bucket *c = nb ? &b[nb - 1] : NULL;
    if (c && (any_dtype || c->dtype == dt) && c->bytes + bytes <= (size_t)d->bucket_bytes) {
      c->count++;
      c->bytes += bytes;
    } else {
      b[nb++] = (lam__bucket){i, 1, bytes, dt};
    }
  }
  *out = b;
  *nout = nb;
  return LAM_OK;
}

static lam_status lam__reserve(unsigned char **p, size_t *cap, size_t n, const char *fn) {
  if (*cap >= n) return LAM_OK;
  unsigned char *q = realloc(*p, n);
  if (!q) return lam__dfail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory for a %zu-byte bucket", fn, n);
  *p = q;
  *cap = n;
  return LAM_OK;
}

static lam_tensor *lam__leaf(const lam_ptree *t, int i) {
  const char *path = NULL;
  lam_tensor *v = NULL;
  return lam_ptree_leaf(t, i, &path, &v) == LAM_OK ? v : NULL;
}

/* Reads bucket b of the n trees into buf: sum of weights[j] * tree j. */
static lam_status lam__stage(lam_dist *d, const lam__bucket *b, int n, lam_ptree *const *trees, const double *w,
                             unsigned char *buf, MPI_Request *inflight, const char *fn) {
  double t0 = lam__now();
  size_t off = 0, es = lam_dtype_size(b->dtype);
  lam_status st = LAM_OK;
  for (int i = b->first; i < b->first + b->count && st == LAM_OK; i++) {
    size_t bytes = lam_tensor_nbytes(lam__leaf(trees[0], i));
    size_t cnt = bytes / es;
    for (int j = 0; j < n && st == LAM_OK; j++) {
      double wj = w ? w[j] : 1.0;
      if (j > 0) st = lam__reserve(&d->tmp, &d->tmp_cap, bytes, fn);
      unsigned char *dst = j == 0 ? buf + off : d->tmp;
      if (st == LAM_OK) st = lam_tensor_to_host(lam__leaf(trees[j], i), dst, bytes);
      if (st != LAM_OK) break;
      if (b->dtype == LAM_F32) {
        float *acc = (float *)(buf + off), *src = (float *)dst;
        if (j == 0 && wj != 1.0)
          for (size_t k = 0; k < cnt; k++) acc[k] = (float)(wj * acc[k]);
        else if (j > 0)
          for (size_t k = 0; k < cnt; k++) acc[k] += (float)(wj * src[k]);
      } else {
        double *acc = (double *)(buf + off), *src = (double *)dst;
        if (j == 0 && wj != 1.0)
          for (size_t k = 0; k < cnt; k++) acc[k] = wj * acc[k];
        else if (j > 0)
          for (size_t k = 0; k < cnt; k++) acc[k] += wj * src[k];
      }
      lam__poke(inflight);
    }
    off += bytes;
  }
  d->totals.stage_seconds += lam__now() - t0;
  return st;
}

/* Writes buf (scaled by `scale`) back into bucket b of the n trees. */
static lam_status lam__unstage(lam_dist *d, const lam__bucket *b, int n, lam_ptree *const *trees, double scale,
                               unsigned char *buf, MPI_Request *inflight) {
  double t0 = lam__now();
  size_t es = lam_dtype_size(b->dtype), cnt = b->bytes / es;
  if (scale != 1.0) {
    if (b->dtype == LAM_F32)
      for (size_t k = 0; k < cnt; k++) ((float *)buf)[k] = (float)(((float *)buf)[k] * scale);
    else
      for (size_t k = 0; k < cnt; k++) ((double *)buf)[k] *= scale;
  }
  size_t off = 0;
  lam_status st = LAM_OK;
  for (int i = b->first; i < b->first + b->count && st == LAM_OK; i++) {
    size_t bytes = lam_tensor_nbytes(lam__leaf(trees[0], i));
    for (int j = 0; j < n && st == LAM_OK; j++) st = lam_tensor_write(lam__leaf(trees[j], i), buf + off, bytes);
    lam__poke(inflight);
    off += bytes;
  }
  d->totals.stage_seconds += lam__now() - t0;
  return st;
}

static MPI_Datatype lam__mpi_type(lam_dtype dt) { return dt == LAM_F64 ? MPI_DOUBLE : MPI_FLOAT; }

/* Groups the leaves into buckets and makes room for the largest in the
 * host buffers (`nbuf` of them), before the check, so that a failure here
 * is reported to the peers like any other. */
static lam_status lam__plan(lam_dist *d, const lam_ptree *t, bool any_dtype, int nbuf, lam__bucket **bk, int *nb,
                            const char *fn) {
  lam_status st = lam__buckets(d, t, any_dtype, bk, nb, fn);
  size_t most = 1;
  for (int k = 0; st == LAM_OK && k < *nb; k++) most = (*bk)[k].bytes > most ? (*bk)[k].bytes : most;
  for (int i = 0; i < nbuf && st == LAM_OK; i++) st = lam__reserve(&d->buf[i], &d->cap[i], most, fn);
  if (st != LAM_OK) {
    free(*bk);
    *bk = NULL;
    *nb = 0;
  }
  return st;
}

/* The reduction proper, after the check: every process runs the same
 * buckets (bk, from lam__plan), with both host buffers reserved. */
static lam_status lam__reduce_buckets(lam_dist *d, int n, lam_ptree *const *trees, const double *w, double scale,
                                      const lam__bucket *bk, int nb, const char *fn) {
  lam_status st = LAM_OK;
  MPI_Request req[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};
  /* A local failure while a bucket is in flight is not fatal to the others:
   * every process still starts every bucket's reduction (with whatever its
   * buffer holds) and the failure is reported after the last one; the
   * result is then not used by the failing process. */
  lam_status local = st;
  for (int k = 0; k <= nb; k++) {
    int cur = k & 1, prev = cur ^ 1;
    if (k < nb) {
      if (local == LAM_OK) local = lam__stage(d, &bk[k], n, trees, w, d->buf[cur], &req[prev], fn);
      int cnt = (int)(bk[k].bytes / lam_dtype_size(bk[k].dtype));
      int err = MPI_Iallreduce(MPI_IN_PLACE, d->buf[cur], cnt, lam__mpi_type(bk[k].dtype), MPI_SUM, d->comm,
                               &req[cur]);
      if (err != MPI_SUCCESS) {
        d->broken = true;
        st = lam__mpi_fail(err, fn, "MPI_Iallreduce");
        break;
      }
      d->totals.buckets++;
      d->totals.bytes_reduced += (int64_t)bk[k].bytes;
      if ((int64_t)bk[k].bytes > d->totals.largest_bucket) d->totals.largest_bucket = (int64_t)bk[k].bytes;
      if (!d->overlap) {
        double t0 = lam__now();
        st = lam__wait(d, &req[cur], fn, "a bucket's MPI_Iallreduce");
        d->totals.wait_seconds += lam__now() - t0;
        if (st != LAM_OK) break;
        if (local == LAM_OK) local = lam__unstage(d, &bk[k], n, trees, scale, d->buf[cur], &req[prev]);
        continue;
      }
    }
    if (k > 0 && d->overlap) { /* bucket k-1: done while bucket k is in flight */
      double t0 = lam__now();
      st = lam__wait(d, &req[prev], fn, "a bucket's MPI_Iallreduce");
      d->totals.wait_seconds += lam__now() - t0;
      if (st != LAM_OK) break;
      if (local == LAM_OK) local = lam__unstage(d, &bk[k - 1], n, trees, scale, d->buf[prev], &req[cur]);
    }
  }
  d->totals.reductions++;
  if (st != LAM_OK) return st;
  /* A process whose staging failed reduced garbage: all agree on the outcome. */
  return lam__agree(d, fn, local, 0, NULL);
}

/* Checks the arguments locally, agrees with the peers, then reduces. */
static lam_status lam__all_reduce(lam_dist *d, lam_status pre, int n, lam_ptree *const *trees, const double *w,
                                  lam_dist_op op, lam_tensor *loss, double loss_w, const char *fn) {
  lam_status st = pre;
  uint64_t sig = 0;
  if (st == LAM_OK && (n < 1 || !trees))
    st = lam__dfail(n < 1 ? LAM_ERR_INVALID_ARGUMENT : LAM_ERR_NULL, "%s: %s", fn,
                    n < 1 ? "n must be >= 1" : "trees is NULL");
  if (st == LAM_OK && op != LAM_DIST_MEAN && op != LAM_DIST_SUM)
    st = lam__dfail(LAM_ERR_INVALID_ARGUMENT, "%s: unknown op %d (LAM_DIST_MEAN or LAM_DIST_SUM)", fn, (int)op);
  for (int j = 0; st == LAM_OK && j < n; j++) {
    if (!trees[j]) st = lam__dfail(LAM_ERR_NULL, "%s: tree %d is NULL", fn, j);
    else if (w && !isfinite(w[j]))
      st = lam__dfail(LAM_ERR_INVALID_ARGUMENT, "%s: weights[%d] %g is not finite", fn, j, w[j]);
  }
  if (st == LAM_OK) {
    sig = lam__signature(trees[0], (uint64_t)op * 7919u + 1u);
    for (int j = 1; st == LAM_OK && j < n; j++)
      if (lam__signature(trees[j], (uint64_t)op * 7919u + 1u) != sig)
        st = lam__dfail(LAM_ERR_SHAPE, "%s: tree %d differs from tree 0 (paths, shapes or dtypes)", fn, j);
  }
  lam__bucket *bk = NULL; /* dtypes and buffers, before the peers are told all is well */
  int nb = 0;
  if (st == LAM_OK) st = lam__plan(d, trees[0], false, 2, &bk, &nb, fn);
  double lv = 0;
  if (st == LAM_OK && loss) st = lam_tensor_item(loss, &lv);
  lam__sums sums = {lv * loss_w, (double)n};
  st = lam__agree(d, fn, st, sig, &sums);
  if (st != LAM_OK) {
    free(bk);
    return st;
  }
  double scale = op == LAM_DIST_MEAN ? 1.0 / sums.trees : 1.0;
  st = lam__reduce_buckets(d, n, trees, w, scale, bk, nb, fn);
  free(bk);
  if (st == LAM_OK && loss) {
    double dv = sums.loss;
    float fv = (float)dv;
    st = lam_tensor_dtype(loss) == LAM_F64 ? lam_tensor_write(loss, &dv, sizeof dv)
         : lam_tensor_dtype(loss) == LAM_F32 ? lam_tensor_write(loss, &fv, sizeof fv)
                                             : LAM_OK;
  }
  return st;
}

lam_status lam_dist_all_reduce(lam_dist *d, lam_ptree *grads, lam_dist_op op) {
  const char *fn = "lam_dist_all_reduce";
  lam_status st = lam__usable(d, fn);
  if (st != LAM_OK) return st;
  if (!grads) st = lam__dfail(LAM_ERR_NULL, "%s: grads is NULL", fn);
  return lam__all_reduce(d, st, 1, &grads, NULL, op, NULL, 0, fn);
}

lam_status lam_dist_all_reduce_trees(lam_dist *d, int n, lam_ptree *const *trees, const double *weights,
                                     lam_dist_op op) {
  const char *fn = "lam_dist_all_reduce_trees";
  lam_status st = lam__usable(d, fn);
  if (st != LAM_OK) return st;
  return lam__all_reduce(d, LAM_OK, n, trees, weights, op, NULL, 0, fn);
}

/* ---- broadcast ----------------------------------------------------------------- */

lam_status lam_dist_broadcast(lam_dist *d, lam_ptree *tree, int root) {
  const char *fn = "lam_dist_broadcast";
  lam_status st = lam__usable(d, fn);
  if (st != LAM_OK) return st;
  if (!tree) st = lam__dfail(LAM_ERR_NULL, "%s: tree is NULL", fn);
  else if (root < 0 || root >= d->size)
    st = lam__dfail(LAM_ERR_INVALID_ARGUMENT, "%s: root %d is not a rank of 0..%d", fn, root, d->size - 1);
  uint64_t sig = st == LAM_OK ? lam__signature(tree, 0x62636173ull + (uint64_t)root) : 0;
  lam__bucket *bk = NULL;
  int nb = 0;
  if (st == LAM_OK) st = lam__plan(d, tree, true, 1, &bk, &nb, fn);
  st = lam__agree(d, fn, st, sig, NULL);
  if (st != LAM_OK) {
    free(bk);
    return st;
  }
  lam_status local = LAM_OK;
  for (int k = 0; k < nb && st == LAM_OK; k++) {
    size_t off = 0;
    if (d->rank == root)
      for (int i = bk[k].first; i < bk[k].first + bk[k].count; i++) {
        lam_tensor *v = lam__leaf(tree, i);
        if (local == LAM_OK) local = lam_tensor_to_host(v, d->buf[0] + off, lam_tensor_nbytes(v));
        off += lam_tensor_nbytes(v);
      }
    MPI_Request r;
    int err = MPI_Ibcast(d->buf[0], (int)bk[k].bytes, MPI_BYTE, root, d->comm, &r);
    if (err != MPI_SUCCESS) {
      d->broken = true;
      st = lam__mpi_fail(err, fn, "MPI_Ibcast");
      break;
    }
    st = lam__wait(d, &r, fn, "MPI_Ibcast");
    off = 0;
    if (st == LAM_OK && d->rank != root)
      for (int i = bk[k].first; i < bk[k].first + bk[k].count; i++) {
        lam_tensor *v = lam__leaf(tree, i);
        if (local == LAM_OK) local = lam_tensor_write(v, d->buf[0] + off, lam_tensor_nbytes(v));
        off += lam_tensor_nbytes(v);
      }
  }
  free(bk);
  if (st != LAM_OK) return st;
  /* The root's staging may have failed: all agree on the outcome. */
  return lam__agree(d, fn, local, 0, NULL);
}

/* ---- the data-parallel hook ---------------------------------------------------- */

static void lam__hook_shard(void *user, int64_t rows, int64_t *lo, int64_t *hi) {
  lam_dist *d = user;
  *lo = rows * d->rank / d->size;
  *hi = rows * (d->rank + 1) / d->size;
}

static lam_status lam__hook_reduce(void *user, lam_status status, lam_ptree *grads, lam_tensor *loss, int64_t rows,
                                   int64_t total) {
  const char *fn = "lam_dist_grad_hook";
  lam_dist *d = user;
  lam_status st = lam__usable(d, fn);
  if (st != LAM_OK) return status != LAM_OK ? status : st;
  if (status == LAM_OK && !grads) status = lam__dfail(LAM_ERR_NULL, "%s: grads is NULL", fn);
  if (status == LAM_OK && (rows < 1 || total < rows))
    status = lam__dfail(LAM_ERR_INVALID_ARGUMENT, "%s: %lld rows of a batch of %lld", fn, (long long)rows,
                        (long long)total);
  double w = status == LAM_OK ? (double)rows / (double)total : 0.0;
  return lam__all_reduce(d, status, 1, &grads, &w, LAM_DIST_SUM, loss, w, fn);
}

const lam_grad_hook *lam_dist_grad_hook(lam_dist *d) {
  if (!d) {
    lam__dfail(LAM_ERR_NULL, "lam_dist_grad_hook: d is NULL");
    return NULL;
  }
  return &d->hook;
}

/* ---- checkpoints --------------------------------------------------------------- */

lam_status lam_dist_save(lam_dist *d, const char *path, const lam_ptree *params, const lam_ptree *state,
                         const lam_optimizer *opt, int64_t step, lam_rng_key key) {
  const char *fn = "lam_dist_save";
  lam_status st = lam__usable(d, fn);
  if (st != LAM_OK) return st;
  if (!path || !params) st = lam__dfail(LAM_ERR_NULL, "%s: %s is NULL", fn, !path ? "path" : "params");
  /* Everyone agrees the call is well-formed before rank 0 writes. */
  st = lam__agree(d, fn, st, params ? lam__signature(params, 0x73617665ull) : 0, NULL);
  if (st != LAM_OK) return st;
  lam_status w = d->rank == 0 ? lam_checkpoint_save(path, params, state, opt, step, key) : LAM_OK;
  char msg[1024];
  snprintf(msg, sizeof msg, "%s", w != LAM_OK ? lam_last_error() : "");
  st = lam__agree(d, fn, w, 0, NULL);
  if (st != LAM_OK && d->rank == 0) return lam__dfail(w, "%s: rank 0 could not write %s: %s", fn, path, msg);
  return st;
}

lam_status lam_dist_load(lam_dist *d, const char *path, lam_ptree *params, lam_ptree *state, lam_optimizer *opt,
                         int64_t *step, lam_rng_key *key) {
  const char *fn = "lam_dist_load";
  lam_status st = lam__usable(d, fn);
  if (st != LAM_OK) return st;
  if (!path || !params) st = lam__dfail(LAM_ERR_NULL, "%s: %s is NULL", fn, !path ? "path" : "params");
  if (st == LAM_OK) st = lam_checkpoint_load(path, params, state, opt, step, key);
  return lam__agree(d, fn, st, 0, NULL);
}
