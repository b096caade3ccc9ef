/* lamina/data.h: datasets on the host and a loader that streams their
 * batches to the device (Kaun's Dataset, PyTorch's Dataset + DataLoader).
 *
 * A dataset is n samples of one or more fields (e.g. the image and the
 * label); field f of every sample has the same dtype and per-sample shape
 * (lam_field). Datasets live in host memory (or behind a callback), so they
 * may be larger than the device: a loader uploads one batch at a time, the
 * next one while the device still computes on the current one. Sources:
 * host arrays, device tensors (read back once), CSV and NPY files and a user
 * callback; per-sample map transforms, subsets and a train/validation split
 * build new datasets on top of others. Datasets are reference counted: a
 * derived dataset and a loader keep their source alive. */
#ifndef LAMINA_DATA_H
#define LAMINA_DATA_H

#include "lamina/export.h"

#include <stdbool.h>
#include <stdint.h>

#include "lamina/rng.h"
#include "lamina/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Most fields a dataset may have. */
#define LAM_DATASET_MAX_FIELDS 8

typedef struct lam_dataset lam_dataset;
typedef struct lam_loader lam_loader;

/* The dtype and per-sample shape of one field (ndim 0: a scalar per
 * sample, e.g. a class label; a batch of it is [B]). */
typedef struct lam_field {
  lam_dtype dtype;
  int ndim;
  int64_t shape[LAM_MAX_DIMS];
} lam_field;

/* Options of lam_dataset_from_arrays and lam_dataset_from_tensors (the
 * options rule, lamina/options.h: NULL, a zeroed struct and
 * lam_dataset_defaults() are the same). */
typedef struct lam_dataset_opts {
  bool borrow; /* keep pointers to the caller's arrays (they must outlive the
                * dataset) instead of copying them (default: copied) */
} lam_dataset_opts;
LAM_API lam_dataset_opts lam_dataset_defaults(void);

/* n samples whose field f is data[f], n * (size of a sample of fields[f])
 * bytes, row-major with the sample axis first. */
LAM_API lam_status lam_dataset_from_arrays(int64_t n, int n_fields, const lam_field *fields,
                                           const void *const *data, const lam_dataset_opts *opts,
                                           lam_dataset **out);
/* The samples of n_tensors device tensors sharing their first axis (Kaun's
 * Dataset.of_tensors). The dataset keeps references to the tensors: a
 * loader on their context gathers each batch on the device
 * (lam_index_select of the batch's rows, nothing crosses to the host);
 * host access (lam_dataset_get, map, subset, another context) reads them
 * back once. opts is unused (borrow makes no difference). */
LAM_API lam_status lam_dataset_from_tensors(int n_tensors, lam_tensor *const *tensors,
                                            const lam_dataset_opts *opts, lam_dataset **out);

/* Options of lam_dataset_from_csv. Numeric CSV: every row has the same
 * number of columns; features become one f32 field [columns - 1] (or
 * [columns] with no_label) and the label an i32 scalar field. */
typedef struct lam_csv_opts {
  int label_column; /* 1-based column of the label; 0: the last column */
  bool no_label;    /* every column is a feature (one field) */
  int skip_rows;    /* header lines to skip (default 0) */
  char delimiter;   /* 0: ',' */
} lam_csv_opts;
LAM_API lam_csv_opts lam_csv_defaults(void);
LAM_API lam_status lam_dataset_from_csv(const char *path, const lam_csv_opts *opts, lam_dataset **out);

/* One field per NumPy .npy file (format 1.0/2.0/3.0, C order, little-endian
 * f4, f8, f2, i4, u1, or i8 / i2 / i1 / u2 converted to i32); the files must
 * share their first axis (the samples). */
LAM_API lam_status lam_dataset_from_npy(int n_files, const char *const *paths, lam_dataset **out);

/* Writes sample i: field f into dst[f] (exactly the sample's bytes).
 * A non-OK return stops the loader with that status. */
typedef lam_status (*lam_dataset_get_fn)(int64_t i, void *const *dst, void *user);
/* n samples produced on demand by get (called from the thread that calls
 * lam_loader_next, in any order). user is not owned. */
LAM_API lam_status lam_dataset_from_fn(int64_t n, int n_fields, const lam_field *fields,
                                       lam_dataset_get_fn get, void *user, lam_dataset **out);

/* Maps one sample: src[f] holds field f of the source, dst[f] receives
 * field f of the result. */
typedef lam_status (*lam_dataset_map_fn)(const void *const *src, void *const *dst, void *user);
/* A dataset whose samples are fn applied to src's samples (lazily, per
 * batch). out_fields describe the result (NULL with n_fields 0: the same
 * fields as src). src gets a new reference. */
LAM_API lam_status lam_dataset_map(lam_dataset *src, int n_fields, const lam_field *out_fields,
                                   lam_dataset_map_fn fn, void *user, lam_dataset **out);
/* The samples indices[0..n-1] of src (each in 0..count-1), in that order. */
LAM_API lam_status lam_dataset_subset(lam_dataset *src, int64_t n, const int64_t *indices,
                                      lam_dataset **out);

/* Options of lam_dataset_split. */
typedef struct lam_split_opts {
  double val_fraction; /* share of the samples for validation, in (0, 1); 0: 0.2 */
  bool no_shuffle;     /* the last samples are the validation set (default:
                        * a Philox permutation from key first) */
  lam_rng_key key;     /* zero: lam_rng_key_make(0) */
} lam_split_opts;
LAM_API lam_split_opts lam_split_defaults(void);
/* Splits src into *train and *val (round(count * val_fraction) samples,
 * at least 1 in each). */
LAM_API lam_status lam_dataset_split(lam_dataset *src, const lam_split_opts *opts, lam_dataset **train,
                                     lam_dataset **val);

LAM_API int64_t lam_dataset_count(const lam_dataset *d);       /* samples; -1 for NULL */
LAM_API int lam_dataset_field_count(const lam_dataset *d);     /* -1 for NULL */
/* Field f's description (a zeroed one for a bad index). */
LAM_API lam_field lam_dataset_field(const lam_dataset *d, int f);
/* Bytes of one sample of field f (0 for a bad index). */
LAM_API size_t lam_dataset_field_bytes(const lam_dataset *d, int f);
/* Writes sample i of every field into dst[f]. */
LAM_API lam_status lam_dataset_get(lam_dataset *d, int64_t i, void *const *dst);
LAM_API lam_dataset *lam_dataset_retain(lam_dataset *d);
/* Drops a reference. NULL is a no-op. */
LAM_API void lam_dataset_free(lam_dataset *d);

/* ---- the loader ------------------------------------------------------------ */

/* What happens to a last batch smaller than batch_size. */
typedef enum lam_last_batch {
  LAM_LAST_BATCH_KEEP = 0, /* a smaller last batch (PyTorch drop_last=False) */
  LAM_LAST_BATCH_DROP = 1, /* dropped: every batch is full */
  LAM_LAST_BATCH_PAD = 2   /* filled up to batch_size with the first samples of
                            * the epoch's order; lam_batch.valid says how many are real */
} lam_last_batch;

/* Options of lam_loader_create (the options rule). */
typedef struct lam_loader_opts {
  int64_t batch_size;        /* 0: 32 */
  bool shuffle;              /* a new order every epoch (default: dataset order) */
  lam_rng_key key;           /* the order of epoch e is a function of (key, e); zero: seed 0 */
  lam_last_batch last_batch; /* default LAM_LAST_BATCH_KEEP */
  bool no_prefetch;          /* upload each batch when asked, blocking (default:
                              * the next batch is uploaded while the current one is used) */
} lam_loader_opts;
LAM_API lam_loader_opts lam_loader_defaults(void);

/* One batch: field f as a device tensor [size, shape of field f...]. The
 * tensors belong to the loader until the next lam_loader_next,
 * lam_loader_reset or lam_loader_free (lam_tensor_retain keeps one). */
typedef struct lam_batch {
  int n_fields;
  lam_tensor *fields[LAM_DATASET_MAX_FIELDS];
  int64_t size;  /* rows of the tensors; 0 after the last batch */
  int64_t valid; /* real samples (size, except in a padded last batch) */
  int64_t index; /* 0-based batch number in the epoch */
} lam_batch;

/* A loader over d (which gets a new reference) for ctx. The first epoch is
 * 0 until lam_loader_reset picks another. */
LAM_API lam_status lam_loader_create(lam_ctx *ctx, lam_dataset *d, const lam_loader_opts *opts,
                                     lam_loader **out);
/* Starts epoch `epoch` (>= 0): its order (the identity without shuffle)
 * and the first batch's upload. */
LAM_API lam_status lam_loader_reset(lam_loader *l, int epoch);
/* The next batch of the epoch in *batch; at the end batch->size is 0 (and
 * the status LAM_OK). With prefetch the following batch's upload is
 * enqueued before this returns. */
LAM_API lam_status lam_loader_next(lam_loader *l, lam_batch *batch);
LAM_API int64_t lam_loader_batch_count(const lam_loader *l);   /* batches per epoch; -1 for NULL */
LAM_API int64_t lam_loader_sample_count(const lam_loader *l);  /* samples per epoch incl. padding; -1 for NULL */
LAM_API int64_t lam_loader_batch_size(const lam_loader *l);    /* -1 for NULL */
LAM_API int lam_loader_epoch(const lam_loader *l);             /* -1 for NULL */
LAM_API lam_dataset *lam_loader_dataset(const lam_loader *l);  /* borrowed */
/* The order of epoch `epoch` (count entries) into perm: what the loader
 * visits (for tests and reproducibility). */
LAM_API lam_status lam_loader_order(const lam_loader *l, int epoch, int64_t *perm);
LAM_API void lam_loader_free(lam_loader *l);

#ifdef __cplusplus
}
#endif
#endif
