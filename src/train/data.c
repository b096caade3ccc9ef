/* train/data.c: host datasets (arrays, tensors, CSV, NPY, callbacks, map,
 * subset, split) and the loader that streams their batches to the device.
 *
 * A dataset is a reference-counted node: a source (arrays or a callback) or
 * a view of another dataset (map, subset). Samples are copied one by one
 * into a host staging buffer per field, which is then uploaded into a fresh
 * pooled tensor. With prefetch (the default) the loader keeps two slots:
 * while the caller's batch k sits in one, batch k+1 is gathered on the host
 * and written to the other with a non-blocking clEnqueueWriteBuffer on the
 * context's in-order queue, so the upload queues behind the device work the
 * caller has already enqueued and nothing waits for the device. A slot's
 * staging buffer is refilled only after its previous write's event has
 * completed. Without prefetch every batch is written with a blocking call,
 * which also waits for all earlier device work (the in-order queue).
 * A dataset of device tensors (lam_dataset_from_tensors) on the loader's
 * context skips the host: only the batch's row indices are uploaded and the
 * fields are gathered with lam_index_select (lam_fit trains this way). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "lamina/autodiff.h"
#include "lamina/data.h"
#include "lamina/shape.h"
#include "lamina/rng.h"
#include "train/data_internal.h"

typedef enum { LAM__DS_ARRAYS, LAM__DS_FN, LAM__DS_MAP, LAM__DS_SUBSET } lam__ds_kind;

struct lam_dataset {
  int refs;
  lam__ds_kind kind;
  int64_t n;
  int nf;
  lam_field fields[LAM_DATASET_MAX_FIELDS];
  size_t bytes[LAM_DATASET_MAX_FIELDS]; /* of one sample */
  /* arrays */
  const void *data[LAM_DATASET_MAX_FIELDS];
  void *owned[LAM_DATASET_MAX_FIELDS];
  /* from_tensors: the device tensors (host arrays made on first host access) */
  lam_tensor *dev[LAM_DATASET_MAX_FIELDS];
  /* callback */
  lam_dataset_get_fn get;
  void *user;
  /* map / subset */
  lam_dataset *src;
  lam_dataset_map_fn map;
  void *scratch[LAM_DATASET_MAX_FIELDS]; /* one sample of src */
  int64_t *idx;
};

/* ---- permutations ------------------------------------------------------- */

void lam__philox_permutation(lam_rng_key key, int64_t n, int64_t *p) {
  for (int64_t i = 0; i < n; i++) p[i] = i;
  uint32_t words[4];
  for (int64_t i = n - 1; i > 0; i--) {
    uint32_t ctr[4] = {(uint32_t)i, (uint32_t)((uint64_t)i >> 32), 0x5eed, 0};
    lam_philox4x32_10(ctr, key.k, words);
    uint64_t r = ((uint64_t)words[0] << 32 | words[1]) % (uint64_t)(i + 1);
    int64_t t = p[i];
    p[i] = p[r];
    p[r] = t;
  }
}

static lam_rng_key lam__key_or_default(lam_rng_key k) {
  return k.k[0] == 0 && k.k[1] == 0 ? lam_rng_key_make(0) : k;
}

/* ---- fields --------------------------------------------------------------- */

static lam_status lam__check_fields(const char *fn, int nf, const lam_field *fields, size_t *bytes) {
  if (nf < 1 || nf > LAM_DATASET_MAX_FIELDS)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: %d fields, need 1..%d", fn, nf, LAM_DATASET_MAX_FIELDS);
  if (!fields) return lam__fail(LAM_ERR_NULL, "%s: fields is NULL", fn);
  for (int f = 0; f < nf; f++) {
    const lam_field *fd = &fields[f];
    if (lam_dtype_size(fd->dtype) == 0)
      return lam__fail(LAM_ERR_DTYPE, "%s: field %d has an unknown dtype %d", fn, f, (int)fd->dtype);
    if (fd->ndim < 0 || fd->ndim > LAM_MAX_DIMS - 1)
      return lam__fail(LAM_ERR_SHAPE, "%s: field %d has ndim %d, need 0..%d (the batch adds an axis)", fn, f,
                       fd->ndim, LAM_MAX_DIMS - 1);
    int64_t numel = 1;
    for (int a = 0; a < fd->ndim; a++) {
      if (fd->shape[a] < 1 || fd->shape[a] > LAM__MAX_NUMEL)
        return lam__fail(LAM_ERR_SHAPE, "%s: field %d has dim %d of size %lld, need >= 1", fn, f, a,
                         (long long)fd->shape[a]);
      numel *= fd->shape[a];
      if (numel > LAM__MAX_NUMEL)
        return lam__fail(LAM_ERR_SHAPE, "%s: field %d has too many elements per sample", fn, f);
    }
    bytes[f] = (size_t)numel * lam_dtype_size(fd->dtype);
  }
  return LAM_OK;
}

static lam_dataset *lam__ds_new(const char *fn, lam__ds_kind kind, int64_t n, int nf, const lam_field *fields) {
  size_t bytes[LAM_DATASET_MAX_FIELDS];
  if (lam__check_fields(fn, nf, fields, bytes) != LAM_OK) return NULL;
  if (n < 1) return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: %lld samples, need >= 1", fn, (long long)n), NULL;
  lam_dataset *d = calloc(1, sizeof *d);
  if (!d) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn), NULL;
  d->refs = 1;
  d->kind = kind;
  d->n = n;
  d->nf = nf;
  for (int f = 0; f < nf; f++) {
    d->fields[f] = fields[f];
    for (int a = fields[f].ndim; a < LAM_MAX_DIMS; a++) d->fields[f].shape[a] = 0;
    d->bytes[f] = bytes[f];
  }
  return d;
}

lam_dataset_opts lam_dataset_defaults(void) { return (lam_dataset_opts){0}; }

lam_status lam_dataset_from_arrays(int64_t n, int n_fields, const lam_field *fields, const void *const *data,
                                   const lam_dataset_opts *opts, lam_dataset **out) {
  const char *fn = "lam_dataset_from_arrays";
  if (!out) return lam__fail(LAM_ERR_NULL, "%s: out is NULL", fn);
  *out = NULL;
  if (!data) return lam__fail(LAM_ERR_NULL, "%s: data is NULL", fn);
  lam_dataset_opts o = opts ? *opts : (lam_dataset_opts){0};
  lam_dataset *d = lam__ds_new(fn, LAM__DS_ARRAYS, n, n_fields, fields);
  if (!d) return lam_last_status();
  for (int f = 0; f < n_fields; f++) {
    if (!data[f]) {
      lam_dataset_free(d);
      return lam__fail(LAM_ERR_NULL, "%s: data[%d] is NULL", fn, f);
    }
    if (o.borrow) {
      d->data[f] = data[f];
      continue;
    }
    size_t total = d->bytes[f] * (size_t)n;
    d->owned[f] = malloc(total);
    if (!d->owned[f]) {
      lam_dataset_free(d);
      return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory (%zu bytes)", fn, total);
    }
    memcpy(d->owned[f], data[f], total);
    d->data[f] = d->owned[f];
  }
  *out = d;
  return LAM_OK;
}

/* Takes over the malloc'd arrays (freed on failure too). */
static lam_status lam__ds_take_arrays(const char *fn, int64_t n, int nf, const lam_field *fields, void **arrays,
                                      lam_dataset **out) {
  lam_dataset *d = lam__ds_new(fn, LAM__DS_ARRAYS, n, nf, fields);
  if (!d) {
    for (int f = 0; f < nf; f++) free(arrays[f]);
    return lam_last_status();
  }
  for (int f = 0; f < nf; f++) d->data[f] = d->owned[f] = arrays[f];
  *out = d;
  return LAM_OK;
}

lam_status lam_dataset_from_tensors(int n_tensors, lam_tensor *const *tensors, const lam_dataset_opts *opts,
                                    lam_dataset **out) {
  const char *fn = "lam_dataset_from_tensors";
  (void)opts;
  if (!out) return lam__fail(LAM_ERR_NULL, "%s: out is NULL", fn);
  *out = NULL;
  if (!tensors) return lam__fail(LAM_ERR_NULL, "%s: tensors is NULL", fn);
  if (n_tensors < 1 || n_tensors > LAM_DATASET_MAX_FIELDS)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: %d tensors, need 1..%d", fn, n_tensors, LAM_DATASET_MAX_FIELDS);
  lam_field fields[LAM_DATASET_MAX_FIELDS];
    int64_t n = -1;
  for (int f = 0; f < n_tensors; f++) {
    lam_tensor *t = tensors[f];
    if (!t) return lam__fail(LAM_ERR_NULL, "%s: tensors[%d] is NULL", fn, f);
    if (t->ndim < 1) return lam__fail(LAM_ERR_SHAPE, "%s: tensors[%d] is a scalar, needs a sample axis", fn, f);
    if (n >= 0 && t->shape[0] != n)
      return lam__fail(LAM_ERR_SHAPE, "%s: tensors[%d] has %lld samples, tensors[0] %lld", fn, f,
                       (long long)t->shape[0], (long long)n);
    n = t->shape[0];
    memset(&fields[f], 0, sizeof fields[f]);
    fields[f].dtype = t->dtype;
    fields[f].ndim = t->ndim - 1;
    for (int a = 1; a < t->ndim; a++) fields[f].shape[a - 1] = t->shape[a];
  }
  lam_dataset *d = lam__ds_new(fn, LAM__DS_ARRAYS, n, n_tensors, fields);
  if (!d) return lam_last_status();
  for (int f = 0; f < n_tensors; f++) d->dev[f] = lam_tensor_retain(tensors[f]);
  *out = d;
  return LAM_OK;
}

/* A from_tensors dataset's host arrays, read back on first host access. */
static lam_status lam__ds_host(lam_dataset *d) {
  for (int f = 0; f < d->nf; f++) {
    if (!d->dev[f] || d->data[f]) continue;
    size_t b = lam_tensor_nbytes(d->dev[f]);
    d->owned[f] = malloc(b);
    if (!d->owned[f]) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "lam_dataset_get: out of host memory (%zu bytes)", b);
    lam_status st = lam_tensor_to_host(d->dev[f], d->owned[f], b);
    if (st != LAM_OK) {
      free(d->owned[f]);
      d->owned[f] = NULL;
      return st;
    }
    d->data[f] = d->owned[f];
  }
  return LAM_OK;
}

lam_status lam_dataset_from_fn(int64_t n, int n_fields, const lam_field *fields, lam_dataset_get_fn get,
                               void *user, lam_dataset **out) {
  const char *fn = "lam_dataset_from_fn";
  if (!out) return lam__fail(LAM_ERR_NULL, "%s: out is NULL", fn);
  *out = NULL;
  if (!get) return lam__fail(LAM_ERR_NULL, "%s: get is NULL", fn);
  lam_dataset *d = lam__ds_new(fn, LAM__DS_FN, n, n_fields, fields);
  if (!d) return lam_last_status();
  d->get = get;
  d->user = user;
  *out = d;
  return LAM_OK;
}

lam_status lam_dataset_map(lam_dataset *src, int n_fields, const lam_field *out_fields, lam_dataset_map_fn fn_map,
                           void *user, lam_dataset **out) {
  const char *fn = "lam_dataset_map";
  if (!out) return lam__fail(LAM_ERR_NULL, "%s: out is NULL", fn);
  *out = NULL;
  if (!src || !fn_map) return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, !src ? "src" : "fn");
  if (!out_fields && n_fields == 0) {
    n_fields = src->nf;
    out_fields = src->fields;
  }
  lam_dataset *d = lam__ds_new(fn, LAM__DS_MAP, src->n, n_fields, out_fields);
  if (!d) return lam_last_status();
  d->map = fn_map;
  d->user = user;
  d->src = lam_dataset_retain(src);
  for (int f = 0; f < src->nf; f++)
    if (!(d->scratch[f] = malloc(src->bytes[f]))) {
      lam_dataset_free(d);
      return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
    }
  *out = d;
  return LAM_OK;
}

lam_status lam_dataset_subset(lam_dataset *src, int64_t n, const int64_t *indices, lam_dataset **out) {
  const char *fn = "lam_dataset_subset";
  if (!out) return lam__fail(LAM_ERR_NULL, "%s: out is NULL", fn);
  *out = NULL;
  if (!src || !indices) return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, !src ? "src" : "indices");
  for (int64_t i = 0; i < n; i++)
    if (indices[i] < 0 || indices[i] >= src->n)
      return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: indices[%lld] = %lld is outside 0..%lld", fn, (long long)i,
                       (long long)indices[i], (long long)src->n - 1);
  lam_dataset *d = lam__ds_new(fn, LAM__DS_SUBSET, n, src->nf, src->fields);
  if (!d) return lam_last_status();
  d->idx = malloc((size_t)n * sizeof *d->idx);
  if (!d->idx) {
    lam_dataset_free(d);
    return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
  }
  memcpy(d->idx, indices, (size_t)n * sizeof *d->idx);
  d->src = lam_dataset_retain(src);
  *out = d;
  return LAM_OK;
}

lam_split_opts lam_split_defaults(void) {
  return (lam_split_opts){.val_fraction = 0.2, .key = lam_rng_key_make(0)};
}

lam_status lam_dataset_split(lam_dataset *src, const lam_split_opts *opts, lam_dataset **train, lam_dataset **val) {
  const char *fn = "lam_dataset_split";
  if (!train || !val) return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, !train ? "train" : "val");
  *train = *val = NULL;
  if (!src) return lam__fail(LAM_ERR_NULL, "%s: src is NULL", fn);
  lam_split_opts o = opts ? *opts : (lam_split_opts){0};
  double frac = lam__opt_f64(o.val_fraction, 0.2);
  if (!(frac > 0 && frac < 1))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: val_fraction %g must be in (0, 1) (0: 0.2)", fn, frac);
  if (src->n < 2) return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: %lld sample cannot be split", fn, (long long)src->n);
  int64_t nv = (int64_t)llround((double)src->n * frac);
  if (nv < 1) nv = 1;
  if (nv > src->n - 1) nv = src->n - 1;
  int64_t *p = malloc((size_t)src->n * sizeof *p);
  if (!p) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
  if (o.no_shuffle)
    for (int64_t i = 0; i < src->n; i++) p[i] = i;
  else
    lam__philox_permutation(lam__key_or_default(o.key), src->n, p);
  lam_status st = lam_dataset_subset(src, src->n - nv, p, train);
  if (st == LAM_OK) st = lam_dataset_subset(src, nv, p + (src->n - nv), val);
  free(p);
  if (st != LAM_OK) {
    lam_dataset_free(*train);
    *train = NULL;
  }
  return st;
}

int64_t lam_dataset_count(const lam_dataset *d) { return d ? d->n : -1; }
int lam_dataset_field_count(const lam_dataset *d) { return d ? d->nf : -1; }
lam_field lam_dataset_field(const lam_dataset *d, int f) {
  if (!d || f < 0 || f >= d->nf) return (lam_field){0};
  return d->fields[f];
}
size_t lam_dataset_field_bytes(const lam_dataset *d, int f) {
  return d && f >= 0 && f < d->nf ? d->bytes[f] : 0;
}

/* Sample i into dst (no argument checks). */
static lam_status lam__ds_get(lam_dataset *d, int64_t i, void *const *dst) {
  switch (d->kind) {
    case LAM__DS_ARRAYS:
      if (d->dev[0] && !d->data[0]) {
        lam_status st = lam__ds_host(d);
        if (st != LAM_OK) return st;
      }
      for (int f = 0; f < d->nf; f++)
        memcpy(dst[f], (const unsigned char *)d->data[f] + (size_t)i * d->bytes[f], d->bytes[f]);
      return LAM_OK;
    case LAM__DS_FN: {
      lam_status st = d->get(i, dst, d->user);
      if (st != LAM_OK && lam_last_status() != st)
        lam__fail(st, "lam_dataset_get: the get callback failed on sample %lld (%s)", (long long)i,
                  lam_status_string(st));
      return st;
    }
    case LAM__DS_MAP: {
      lam_status st = lam__ds_get(d->src, i, d->scratch);
      if (st != LAM_OK) return st;
      st = d->map((const void *const *)d->scratch, dst, d->user);
      if (st != LAM_OK && lam_last_status() != st)
        lam__fail(st, "lam_dataset_get: the map function failed on sample %lld (%s)", (long long)i,
                  lam_status_string(st));
      return st;
    }
    case LAM__DS_SUBSET: return lam__ds_get(d->src, d->idx[i], dst);
  }
  return LAM_OK;
}

lam_status lam_dataset_get(lam_dataset *d, int64_t i, void *const *dst) {
  const char *fn = "lam_dataset_get";
  if (!d || !dst) return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, !d ? "d" : "dst");
  if (i < 0 || i >= d->n)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: sample %lld is outside 0..%lld", fn, (long long)i,
                     (long long)d->n - 1);
  for (int f = 0; f < d->nf; f++)
    if (!dst[f]) return lam__fail(LAM_ERR_NULL, "%s: dst[%d] is NULL", fn, f);
  return lam__ds_get(d, i, dst);
}

lam_dataset *lam_dataset_retain(lam_dataset *d) {
  if (d) d->refs++;
  return d;
}

void lam_dataset_free(lam_dataset *d) {
  if (!d || --d->refs > 0) return;
  for (int f = 0; f < LAM_DATASET_MAX_FIELDS; f++) {
    free(d->owned[f]);
    free(d->scratch[f]);
    lam_tensor_free(d->dev[f]);
  }
  free(d->idx);
  lam_dataset_free(d->src);
  free(d);
}

/* ---- CSV ------------------------------------------------------------------ */

lam_csv_opts lam_csv_defaults(void) { return (lam_csv_opts){.delimiter = ','}; }

static char *lam__read_file(const char *path, size_t *len, const char *fn) {
  FILE *f = fopen(path, "rb");
  if (!f) return lam__fail(LAM_ERR_IO, "%s: cannot open %s: %s", fn, path, strerror(errno)), NULL;
  char *buf = NULL;
  size_t cap = 0, n = 0;
  for (;;) {
    if (n + 65536 + 1 > cap) {
      size_t c = cap ? cap * 2 : 1 << 20;
      char *p = realloc(buf, c);
      if (!p) {
        free(buf);
        fclose(f);
        return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory reading %s", fn, path), NULL;
      }
      buf = p;
      cap = c;
    }
    size_t r = fread(buf + n, 1, cap - n - 1, f);
    n += r;
    if (r == 0) break;
  }
  bool err = ferror(f);
  fclose(f);
  if (err) {
    free(buf);
    return lam__fail(LAM_ERR_IO, "%s: cannot read %s", fn, path), NULL;
  }
  buf[n] = 0;
  *len = n;
  return buf;
}

/* Parses the numbers of one line into row (up to cap); returns the count or -1. */
static int lam__csv_line(char *line, char delim, double *row, int cap) {
  int c = 0;
  char *p = line;
  for (;;) {
    while (*p == ' ' || *p == '\t') p++;
    char *end = NULL;
    errno = 0;
    double v = strtod(p, &end);
    if (end == p || errno == ERANGE) return -1;
    if (c < cap) row[c] = v;
    c++;
    p = end;
    while (*p == ' ' || *p == '\t' || *p == '\r') p++;
    if (*p == 0) return c;
    if (*p != delim) return -1;
    p++;
  }
}

lam_status lam_dataset_from_csv(const char *path, const lam_csv_opts *opts, lam_dataset **out) {
  const char *fn = "lam_dataset_from_csv";
  if (!out) return lam__fail(LAM_ERR_NULL, "%s: out is NULL", fn);
  *out = NULL;
  if (!path) return lam__fail(LAM_ERR_NULL, "%s: path is NULL", fn);
  lam_csv_opts o = opts ? *opts : (lam_csv_opts){0};
  if (!o.delimiter) o.delimiter = ',';
  if (o.skip_rows < 0 || o.label_column < 0)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: skip_rows %d and label_column %d must be >= 0", fn, o.skip_rows,
                     o.label_column);
  size_t len = 0;
  char *text = lam__read_file(path, &len, fn);
  if (!text) return lam_last_status();
  int cols = -1, label = -1;
  int64_t rows = 0, cap_rows = 0;
  float *x = NULL;
  int32_t *y = NULL;
  double *row = NULL;
  lam_status st = LAM_OK;
  int64_t line_no = 0;
  char *save = text;
  while (st == LAM_OK && save && *save) {
    char *line = save;
    char *nl = strchr(line, '\n');
    if (nl) {
      *nl = 0;
      save = nl + 1;
    } else {
      save = NULL;
    }
    line_no++;
    if (line_no <= o.skip_rows) continue;
    char *q = line;
    while (*q == ' ' || *q == '\t' || *q == '\r') q++;
    if (!*q) continue;
    if (cols < 0) {
      /* The first data row fixes the column count. */
      int c = 0;
      for (char *p = line; *p; p++) c += *p == o.delimiter;
      cols = c + 1;
      if (!o.no_label) {
        if (cols < 2) {
          st = lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: %s:%lld: one column: no features besides the label", fn,
                         path, (long long)line_no);
          break;
        }
        label = o.label_column ? o.label_column - 1 : cols - 1;
        if (label >= cols) {
          st = lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: label_column %d but %s has %d columns", fn, o.label_column,
                         path, cols);
          break;
        }
      }
      row = malloc((size_t)cols * sizeof *row);
      if (!row) {
        st = lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
        break;
      }
    }
    int got = lam__csv_line(line, o.delimiter, row, cols);
    if (got != cols) {
      st = lam__fail(LAM_ERR_INVALID_ARGUMENT, got < 0 ? "%s: %s:%lld: not a number list" : "%s: %s:%lld: %d "
                     "columns, the first row has %d", fn, path, (long long)line_no, got, cols);
      break;
    }
    if (rows == cap_rows) {
      int64_t c = cap_rows ? cap_rows * 2 : 1024;
      int nfeat = label >= 0 ? cols - 1 : cols;
      float *nx = realloc(x, (size_t)c * (size_t)nfeat * sizeof *nx);
      if (nx) x = nx;
      int32_t *ny = label >= 0 ? realloc(y, (size_t)c * sizeof *ny) : NULL;
      if (ny) y = ny;
      if (!nx || (label >= 0 && !ny)) {
        st = lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
        break;
      }
      cap_rows = c;
    }
    int nfeat = label >= 0 ? cols - 1 : cols, k = 0;
    for (int c = 0; c < cols; c++) {
      if (c == label) {
        double v = row[c];
        if (v != floor(v) || v < -2147483648.0 || v > 2147483647.0) {
          st = lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: %s:%lld: label %g is not an integer", fn, path,
                         (long long)line_no, v);
          break;
        }
        y[rows] = (int32_t)v;
      } else {
        x[rows * nfeat + k++] = (float)row[c];
      }
    }
    rows++;
  }
  free(text);
  free(row);
  if (st == LAM_OK && rows == 0) st = lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: %s has no data rows", fn, path);
  if (st != LAM_OK) {
    free(x);
    free(y);
    return st;
  }
  lam_field fields[2] = {{LAM_F32, 1, {label >= 0 ? cols - 1 : cols}}, {LAM_I32, 0, {0}}};
  void *arrays[2] = {x, y};
  return lam__ds_take_arrays(fn, rows, label >= 0 ? 2 : 1, fields, arrays, out);
}

/* ---- NPY ------------------------------------------------------------------ */

/* Reads one .npy file into a new array of the field's dtype. */
static lam_status lam__npy_read(const char *path, lam_field *field, int64_t *n, void **data) {
  const char *fn = "lam_dataset_from_npy";
  size_t len = 0;
  char *buf = lam__read_file(path, &len, fn);
  if (!buf) return lam_last_status();
  lam_status st = LAM_OK;
  size_t hlen = 0, off = 0;
  if (len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0) {
    st = lam__fail(LAM_ERR_FORMAT, "%s: %s is not a .npy file (no \\x93NUMPY magic)", fn, path);
  } else if (buf[6] == 1) {
    hlen = (unsigned char)buf[8] | (size_t)(unsigned char)buf[9] << 8;
    off = 10;
  } else if ((buf[6] == 2 || buf[6] == 3) && len >= 12) {
    hlen = (unsigned char)buf[8] | (size_t)(unsigned char)buf[9] << 8 | (size_t)(unsigned char)buf[10] << 16 |
           (size_t)(unsigned char)buf[11] << 24;
    off = 12;
  } else {
    st = lam__fail(LAM_ERR_FORMAT, "%s: %s: unknown .npy version %d", fn, path, buf[6]);
  }
  if (st == LAM_OK && off + hlen > len) st = lam__fail(LAM_ERR_FORMAT, "%s: %s: header runs past the end", fn, path);
  char header[4096] = {0};
  if (st == LAM_OK) {
    size_t h = hlen < sizeof header - 1 ? hlen : sizeof header - 1;
    memcpy(header, buf + off, h);
  }
  char descr[16] = {0};
  const char *d = st == LAM_OK ? strstr(header, "'descr'") : NULL;
  if (st == LAM_OK && (!d || sscanf(d, "'descr': '%15[^']'", descr) != 1))
    st = lam__fail(LAM_ERR_FORMAT, "%s: %s: no descr in the header", fn, path);
  if (st == LAM_OK && strstr(header, "'fortran_order': True"))
    st = lam__fail(LAM_ERR_FORMAT, "%s: %s: Fortran order is not supported (save a C-ordered array)", fn, path);
  int ndim = 0;
  int64_t shape[LAM_MAX_DIMS + 1] = {0};
  if (st == LAM_OK) {
    const char *s = strstr(header, "'shape'");
    const char *p = s ? strchr(s, '(') : NULL;
    if (!p) st = lam__fail(LAM_ERR_FORMAT, "%s: %s: no shape in the header", fn, path);
    else {
      p++;
      while (st == LAM_OK) {
        while (*p == ' ' || *p == ',') p++;
        if (*p == ')') break;
        char *end = NULL;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 1 || ndim == LAM_MAX_DIMS)
          st = lam__fail(LAM_ERR_FORMAT, "%s: %s: bad shape in the header (dims must be >= 1, at most %d)", fn, path,
                         LAM_MAX_DIMS);
        else shape[ndim++] = v;
        p = end;
      }
    }
  }
  if (st == LAM_OK && ndim < 1)
    st = lam__fail(LAM_ERR_SHAPE, "%s: %s holds a scalar; need a leading sample axis", fn, path);
  /* dtype: (numpy code, element size, lamina dtype, converted to i32) */
  size_t esize = 0;
  lam_dtype dt = LAM_F32;
  int conv = 0; /* 0 copy, else signed source size in bytes (negative: unsigned) */
  if (st == LAM_OK) {
    const char *c = descr + 1;
    char order = descr[0];
    if (order == '>' && strcmp(c, "u1") && strcmp(c, "i1") && strcmp(c, "b1"))
      st = lam__fail(LAM_ERR_FORMAT, "%s: %s: big-endian %s is not supported", fn, path, descr);
    else if (!strcmp(c, "f4")) esize = 4, dt = LAM_F32;
    else if (!strcmp(c, "f8")) esize = 8, dt = LAM_F64;
    else if (!strcmp(c, "f2")) esize = 2, dt = LAM_F16;
    else if (!strcmp(c, "i4")) esize = 4, dt = LAM_I32;
    else if (!strcmp(c, "u1") || !strcmp(c, "b1")) esize = 1, dt = LAM_U8;
    else if (!strcmp(c, "i8")) esize = 8, dt = LAM_I32, conv = 8;
    else if (!strcmp(c, "i2")) esize = 2, dt = LAM_I32, conv = 2;
    else if (!strcmp(c, "i1")) esize = 1, dt = LAM_I32, conv = 1;
    else if (!strcmp(c, "u2")) esize = 2, dt = LAM_I32, conv = -2;
    else st = lam__fail(LAM_ERR_DTYPE, "%s: %s: dtype %s is not supported", fn, path, descr);
  }
  int64_t numel = 1; /* checked as it grows: lamina tensors hold < 2^31 elements */
  for (int a = 0; a < ndim && st == LAM_OK; a++) {
    if (shape[a] < 0 || (shape[a] > 0 && numel > ((int64_t)1 << 31) / shape[a]))
      st = lam__fail(LAM_ERR_FORMAT, "%s: %s: shape too large (2^31 elements at most)", fn, path);
    else numel *= shape[a];
  }
  if (st == LAM_OK && len - off - hlen < (size_t)numel * esize)
    st = lam__fail(LAM_ERR_FORMAT, "%s: %s: %zu data bytes, the header says %lld", fn, path, len - off - hlen,
                   (long long)((size_t)numel * esize));
  if (st == LAM_OK) {
    const unsigned char *src = (const unsigned char *)buf + off + hlen;
    size_t out_bytes = (size_t)numel * lam_dtype_size(dt);
    void *a = malloc(out_bytes ? out_bytes : 1);
    if (!a) st = lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
    else if (!conv) memcpy(a, src, out_bytes);
    else {
      int32_t *o = a;
      for (int64_t i = 0; i < numel && st == LAM_OK; i++) {
        int64_t v = 0;
        if (conv == 8) { int64_t t; memcpy(&t, src + 8 * i, 8); v = t; }
        else if (conv == 2) { int16_t t; memcpy(&t, src + 2 * i, 2); v = t; }
        else if (conv == 1) v = (int8_t)src[i];
        else { uint16_t t; memcpy(&t, src + 2 * i, 2); v = t; }
        if (v < INT32_MIN || v > INT32_MAX)
          st = lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: %s: element %lld = %lld does not fit i32", fn, path,
                         (long long)i, (long long)v);
        o[i] = (int32_t)v;
      }
    }
    if (st == LAM_OK) {
      *data = a;
      *n = shape[0];
      memset(field, 0, sizeof *field);
      field->dtype = dt;
      field->ndim = ndim - 1;
      for (int k = 1; k < ndim; k++) field->shape[k - 1] = shape[k];
    } else {
      free(a);
    }
  }
  free(buf);
  return st;
}

lam_status lam_dataset_from_npy(int n_files, const char *const *paths, lam_dataset **out) {
  const char *fn = "lam_dataset_from_npy";
  if (!out) return lam__fail(LAM_ERR_NULL, "%s: out is NULL", fn);
  *out = NULL;
  if (!paths) return lam__fail(LAM_ERR_NULL, "%s: paths is NULL", fn);
  if (n_files < 1 || n_files > LAM_DATASET_MAX_FIELDS)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: %d files, need 1..%d", fn, n_files, LAM_DATASET_MAX_FIELDS);
  lam_field fields[LAM_DATASET_MAX_FIELDS];
  void *arrays[LAM_DATASET_MAX_FIELDS] = {0};
  int64_t n = -1;
  lam_status st = LAM_OK;
  for (int f = 0; f < n_files && st == LAM_OK; f++) {
    int64_t nf = 0;
    if (!paths[f]) st = lam__fail(LAM_ERR_NULL, "%s: paths[%d] is NULL", fn, f);
    else st = lam__npy_read(paths[f], &fields[f], &nf, &arrays[f]);
    if (st == LAM_OK && n >= 0 && nf != n)
      st = lam__fail(LAM_ERR_SHAPE, "%s: %s has %lld samples, %s has %lld", fn, paths[f], (long long)nf, paths[0],
                     (long long)n);
    n = nf;
  }
  if (st != LAM_OK) {
    for (int f = 0; f < n_files; f++) free(arrays[f]);
    return st;
  }
  return lam__ds_take_arrays(fn, n, n_files, fields, arrays, out);
}

/* ---- the loader ------------------------------------------------------------ */

typedef struct {
  unsigned char *host[LAM_DATASET_MAX_FIELDS]; /* staging, batch_size samples */
  int32_t *rows;                               /* device path: the batch's row indices */
  cl_event rows_ev;
  cl_event ev[LAM_DATASET_MAX_FIELDS];
  lam_tensor *t[LAM_DATASET_MAX_FIELDS];
  int64_t size, valid, index;
} lam__slot;

struct lam_loader {
  lam_ctx *ctx;
  lam_dataset *d;
  lam_loader_opts o;
  int64_t nb;     /* batches per epoch */
  int epoch;
  int64_t *perm;  /* the epoch's order */
  int64_t next;   /* batch to hand out next */
  bool device;    /* the dataset holds device tensors of ctx: gather on the device */
  lam__slot slot[2];
};

lam_loader_opts lam_loader_defaults(void) {
  return (lam_loader_opts){.batch_size = 32, .key = lam_rng_key_make(0)};
}

static void lam__slot_wait(lam__slot *s) {
  if (s->rows_ev) {
    clWaitForEvents(1, &s->rows_ev);
    clReleaseEvent(s->rows_ev);
    s->rows_ev = NULL;
  }
  for (int f = 0; f < LAM_DATASET_MAX_FIELDS; f++)
    if (s->ev[f]) {
      clWaitForEvents(1, &s->ev[f]);
      clReleaseEvent(s->ev[f]);
      s->ev[f] = NULL;
    }
}

static void lam__slot_drop(lam__slot *s) {
  for (int f = 0; f < LAM_DATASET_MAX_FIELDS; f++) {
    lam_tensor_free(s->t[f]);
    s->t[f] = NULL;
  }
  s->size = 0;
}

/* The device path (a dataset of device tensors on the loader's context):
 * the batch's row indices are uploaded (non-blocking with prefetch) and
 * each field is lam_index_select of its tensor: no data crosses to the host. */
static lam_status lam__slot_gather(lam_loader *l, lam__slot *s, int64_t b, int64_t lo, int64_t valid, int64_t size) {
  const char *fn = "lam_loader_next";
  lam_dataset *d = l->d;
  for (int64_t r = 0; r < size; r++)
    s->rows[r] = (int32_t)(r < valid ? l->perm[lo + r] : l->perm[(r - valid) % d->n]);
  bool blocking = l->o.no_prefetch;
  lam_tensor *idx = lam__tensor_new(l->ctx, LAM_I32, 1, &size, fn);
  if (!idx) return lam_last_status();
  cl_int err = clEnqueueWriteBuffer(l->ctx->queue, idx->buf->mem, blocking ? CL_TRUE : CL_FALSE,
                                    idx->offset * sizeof(int32_t), (size_t)size * sizeof(int32_t), s->rows, 0, NULL,
                                    blocking ? NULL : &s->rows_ev);
  if (err != CL_SUCCESS) {
    lam_tensor_free(idx);
    return lam__cl_fail(err, fn, "clEnqueueWriteBuffer");
  }
  bool was = lam_grad_set_enabled(l->ctx, false);
  lam_status st = LAM_OK;
  for (int f = 0; f < d->nf && st == LAM_OK; f++)
    if (!(s->t[f] = lam_index_select(d->dev[f], 0, idx))) st = lam_last_status();
  lam_grad_set_enabled(l->ctx, was);
  lam_tensor_free(idx);
  if (st != LAM_OK) return st;
  if (!blocking) clFlush(l->ctx->queue);
  s->size = size;
  s->valid = valid;
  s->index = b;
  return LAM_OK;
}

/* Gathers batch b of the epoch into slot s and enqueues its upload. */
static lam_status lam__slot_fill(lam_loader *l, lam__slot *s, int64_t b) {
  const char *fn = "lam_loader_next";
  lam_dataset *d = l->d;
  int64_t bs = l->o.batch_size, n = d->n;
  int64_t lo = b * bs, hi = lo + bs < n ? lo + bs : n;
  int64_t valid = hi - lo, size = l->o.last_batch == LAM_LAST_BATCH_PAD ? bs : valid;
  lam__slot_wait(s); /* its staging buffer may still be read by the last write */
  lam__slot_drop(s);
  if (l->device) return lam__slot_gather(l, s, b, lo, valid, size);
  void *dst[LAM_DATASET_MAX_FIELDS];
  for (int64_t r = 0; r < size; r++) {
    int64_t idx = r < valid ? l->perm[lo + r] : l->perm[(r - valid) % n];
    for (int f = 0; f < d->nf; f++) dst[f] = s->host[f] + (size_t)r * d->bytes[f];
    lam_status st = lam__ds_get(d, idx, dst);
    if (st != LAM_OK) return st;
  }
  bool blocking = l->o.no_prefetch;
  for (int f = 0; f < d->nf; f++) {
    int64_t shape[LAM_MAX_DIMS];
    shape[0] = size;
    for (int a = 0; a < d->fields[f].ndim; a++) shape[a + 1] = d->fields[f].shape[a];
    lam_tensor *t = lam__tensor_new(l->ctx, d->fields[f].dtype, d->fields[f].ndim + 1, shape, fn);
    if (!t) return lam_last_status();
    s->t[f] = t;
    size_t bytes = (size_t)size * d->bytes[f];
    cl_int err = clEnqueueWriteBuffer(l->ctx->queue, t->buf->mem, blocking ? CL_TRUE : CL_FALSE,
                                      t->offset * lam_dtype_size(t->dtype), bytes, s->host[f], 0, NULL,
                                      blocking ? NULL : &s->ev[f]);
    if (err != CL_SUCCESS) return lam__cl_fail(err, fn, "clEnqueueWriteBuffer");
  }
  if (!blocking) clFlush(l->ctx->queue);
  s->size = size;
  s->valid = valid;
  s->index = b;
  return LAM_OK;
}

lam_status lam_loader_create(lam_ctx *ctx, lam_dataset *d, const lam_loader_opts *opts, lam_loader **out) {
  const char *fn = "lam_loader_create";
  if (!out) return lam__fail(LAM_ERR_NULL, "%s: out is NULL", fn);
  *out = NULL;
  if (!ctx || !d) return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, !ctx ? "ctx" : "d");
  lam_loader_opts o = opts ? *opts : (lam_loader_opts){0};
  o.batch_size = lam__opt_i64(o.batch_size, 32);
  o.key = lam__key_or_default(o.key);
  if (o.batch_size < 1)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: batch_size %lld must be >= 1 (0: 32)", fn, (long long)o.batch_size);
  if ((int)o.last_batch < 0 || o.last_batch > LAM_LAST_BATCH_PAD)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: unknown last_batch policy %d", fn, (int)o.last_batch);
  if (o.last_batch == LAM_LAST_BATCH_DROP && d->n < o.batch_size)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: %lld samples make no full batch of %lld (last_batch DROP)", fn,
                     (long long)d->n, (long long)o.batch_size);
  lam_loader *l = calloc(1, sizeof *l);
  if (!l) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
  l->ctx = ctx;
  l->d = lam_dataset_retain(d);
  l->o = o;
  l->nb = o.last_batch == LAM_LAST_BATCH_DROP ? d->n / o.batch_size : (d->n + o.batch_size - 1) / o.batch_size;
  l->perm = malloc((size_t)d->n * sizeof *l->perm);
  bool ok = l->perm != NULL;
  l->device = d->kind == LAM__DS_ARRAYS && d->dev[0] && d->n <= INT32_MAX;
  for (int f = 0; f < d->nf && l->device; f++) l->device = d->dev[f]->ctx == ctx;
  for (int s = 0; s < 2 && ok; s++) {
    if (l->device) ok = (l->slot[s].rows = malloc((size_t)o.batch_size * sizeof(int32_t))) != NULL;
    for (int f = 0; f < d->nf && ok && !l->device; f++)
      ok = (l->slot[s].host[f] = malloc((size_t)o.batch_size * d->bytes[f])) != NULL;
  }
  if (!ok) {
    lam_loader_free(l);
    return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
  }
  l->epoch = -1;
  lam_status st = lam_loader_reset(l, 0);
  if (st != LAM_OK) {
    lam_loader_free(l);
    return st;
  }
  *out = l;
  return LAM_OK;
}

lam_status lam_loader_order(const lam_loader *l, int epoch, int64_t *perm) {
  if (!l || !perm) return lam__fail(LAM_ERR_NULL, "lam_loader_order: %s is NULL", !l ? "l" : "perm");
  if (epoch < 0) return lam__fail(LAM_ERR_INVALID_ARGUMENT, "lam_loader_order: epoch %d must be >= 0", epoch);
  if (!l->o.shuffle)
    for (int64_t i = 0; i < l->d->n; i++) perm[i] = i;
  else
    lam__philox_permutation(lam_rng_fold_in(l->o.key, (uint32_t)epoch), l->d->n, perm);
  return LAM_OK;
}

lam_status lam_loader_reset(lam_loader *l, int epoch) {
  const char *fn = "lam_loader_reset";
  if (!l) return lam__fail(LAM_ERR_NULL, "%s: l is NULL", fn);
  if (epoch < 0) return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: epoch %d must be >= 0", fn, epoch);
  for (int s = 0; s < 2; s++) {
    lam__slot_wait(&l->slot[s]);
    lam__slot_drop(&l->slot[s]);
  }
  if (epoch != l->epoch || l->o.shuffle) lam_loader_order(l, epoch, l->perm);
  l->epoch = epoch;
  l->next = 0;
  if (!l->o.no_prefetch && l->nb > 0) return lam__slot_fill(l, &l->slot[0], 0);
  return LAM_OK;
}

lam_status lam_loader_next(lam_loader *l, lam_batch *batch) {
  const char *fn = "lam_loader_next";
  if (!l || !batch) return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, !l ? "l" : "batch");
  memset(batch, 0, sizeof *batch);
  batch->n_fields = l->d->nf;
  int64_t b = l->next;
  lam__slot *s;
  lam_status st = LAM_OK;
  if (b >= l->nb) {
    for (int k = 0; k < 2; k++) lam__slot_drop(&l->slot[k]);
    batch->index = b;
    return LAM_OK;
  }
  if (l->o.no_prefetch) {
    s = &l->slot[0];
    st = lam__slot_fill(l, s, b);
  } else {
    s = &l->slot[b % 2];
    if (s->size == 0 || s->index != b) st = lam__slot_fill(l, s, b); /* not prefetched (after an error) */
    /* Batch b+1 goes into the other slot, dropping batch b-1's tensors. */
    if (st == LAM_OK && b + 1 < l->nb) st = lam__slot_fill(l, &l->slot[(b + 1) % 2], b + 1);
    else if (st == LAM_OK) lam__slot_drop(&l->slot[(b + 1) % 2]);
  }
  if (st != LAM_OK) return st;
  l->next = b + 1;
  for (int f = 0; f < l->d->nf; f++) batch->fields[f] = s->t[f];
  batch->size = s->size;
  batch->valid = s->valid;
  batch->index = b;
  return LAM_OK;
}

int64_t lam_loader_batch_count(const lam_loader *l) { return l ? l->nb : -1; }
int64_t lam_loader_sample_count(const lam_loader *l) {
  if (!l) return -1;
  if (l->o.last_batch == LAM_LAST_BATCH_DROP) return l->nb * l->o.batch_size;
  if (l->o.last_batch == LAM_LAST_BATCH_PAD) return l->nb * l->o.batch_size;
  return l->d->n;
}
int64_t lam_loader_batch_size(const lam_loader *l) { return l ? l->o.batch_size : -1; }
int lam_loader_epoch(const lam_loader *l) { return l ? l->epoch : -1; }
lam_dataset *lam_loader_dataset(const lam_loader *l) { return l ? l->d : NULL; }

void lam_loader_free(lam_loader *l) {
  if (!l) return;
  for (int s = 0; s < 2; s++) {
    lam__slot_wait(&l->slot[s]);
    lam__slot_drop(&l->slot[s]);
    for (int f = 0; f < LAM_DATASET_MAX_FIELDS; f++) free(l->slot[s].host[f]);
    free(l->slot[s].rows);
  }
  free(l->perm);
  lam_dataset_free(l->d);
  free(l);
}
