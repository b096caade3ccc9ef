/* lamina/io.h: safetensors files and training checkpoints.
 *
 * safetensors (https://github.com/huggingface/safetensors): an 8-byte
 * little-endian header length N, N bytes of JSON (padded with spaces to a
 * multiple of 8), then the raw little-endian tensor bytes. The JSON maps each
 * tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets
 * relative to the data section) and may hold "__metadata__", a string-to-
 * string map. lamina names tensors by their dotted ptree paths
 * ("encoder.0.q_proj.weight"), so PyTorch / Hugging Face state dicts load by
 * key. File dtypes F64, F32, F16, BF16, I32, U8 (and BOOL as U8, I64 as I32
 * when every value fits) are read; others are reported as unsupported.
 *
 * Files are validated in full before any tensor is created or written: a
 * short file, a bad header length, malformed JSON, non-integer or
 * non-finite numbers, unknown dtypes, offsets out of range, overlapping or
 * leaving gaps, or sizes disagreeing with dtype and shape give
 * LAM_ERR_FORMAT with a message naming the file and the tensor. A file that
 * cannot be opened gives LAM_ERR_IO naming the path. Writes go to a
 * temporary file in the same directory that is renamed over `path` only
 * once complete. */
#ifndef LAMINA_IO_H
#define LAMINA_IO_H

#include "lamina/export.h"

#include <stdbool.h>
#include <stdint.h>

#include "lamina/layer.h"
#include "lamina/optim.h"
#include "lamina/ptree.h"
#include "lamina/rng.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- metadata: an ordered string-to-string map ----------------------------- */

typedef struct lam_metadata lam_metadata;

/* Returns a new empty map, or NULL when out of host memory. */
LAM_API lam_metadata *lam_metadata_create(void);
/* Frees the map. NULL is a no-op. */
LAM_API void lam_metadata_free(lam_metadata *m);
/* Stores copies of key and value, replacing the value of an existing key. */
LAM_API lam_status lam_metadata_set(lam_metadata *m, const char *key, const char *value);
/* Returns the value stored under key (borrowed), or NULL (no error recorded). */
LAM_API const char *lam_metadata_get(const lam_metadata *m, const char *key);
/* Number of entries, and entry i in insertion order (borrowed strings). */
LAM_API int lam_metadata_count(const lam_metadata *m);
LAM_API lam_status lam_metadata_entry(const lam_metadata *m, int i, const char **key, const char **value);

/* ---- safetensors ------------------------------------------------------------ */

/* How float leaves are stored. KEEP writes each leaf's own dtype; the
 * others convert f32/f64/f16 leaves on the host (round to nearest even);
 * integer leaves are always stored as they are. */
typedef enum lam_file_dtype {
  LAM_FILE_KEEP = 0,
  LAM_FILE_F32 = 1,
  LAM_FILE_F16 = 2,
  LAM_FILE_BF16 = 3,
  LAM_FILE_F64 = 4
} lam_file_dtype;

/* Options of lam_safetensors_save (zero-safe: NULL, a zeroed struct and
 * lam_save_defaults() are the same). */
typedef struct lam_save_opts {
  const lam_metadata *metadata; /* written as "__metadata__"; NULL: none */
  lam_file_dtype float_dtype;   /* default LAM_FILE_KEEP */
} lam_save_opts;

/* Returns the default save options (no metadata, dtypes kept). */
LAM_API lam_save_opts lam_save_defaults(void);

/* Writes every leaf of `tree` under its dotted path (opts NULL: defaults).
 * The header lists tensors in the tree's leaf order; the data section
 * orders them by element size, largest first, so each tensor's bytes are
 * aligned to its element size. Returns LAM_OK, LAM_ERR_IO (with the path
 * and the system's reason), LAM_ERR_INVALID_ARGUMENT for a leaf named
 * "__metadata__", or a device read error. */
LAM_API lam_status lam_safetensors_save(const char *path, const lam_ptree *tree, const lam_save_opts *opts);

/* A rename rule of lam_load_opts: a file key starting with `from` has that
 * prefix replaced by `to` ("bert." -> "", "attention.self.query" ->
 * "attn.q_proj"); with `regex` set, `from` is a POSIX extended regular
 * expression and its first match in the key is replaced by `to`, in which
 * \0 .. \9 stand for the match and its groups. Regex rules need
 * <regex.h>: on Windows only prefix rules apply (a regex rule gives
 * LAM_ERR_UNSUPPORTED). */
typedef struct lam_rename_rule {
  const char *from;
  const char *to;
  bool regex;
} lam_rename_rule;

/* A per-key transform of lam_load_opts, applied to each key (after
 * renaming) equal to `key` or ending in "." followed by `key` (so
 * "c_attn.weight" matches "h.0.attn.c_attn.weight"). First, when
 * `transpose` is set, a 2-D tensor is transposed (GPT-2's Conv1D stores
 * [in, out]; lamina's linear wants [out, in]). Then, when split_count > 0,
 * the tensor is cut along split_axis into split_count equal parts, part i
 * going to the key with the matched `key` replaced by split_into[i] (a
 * fused "in_proj_weight" [3E, E] into "q_proj.weight", "k_proj.weight",
 * "v_proj.weight"). The first matching transform applies. A transform that
 * cannot apply (transposing a tensor that is not 2-D, an axis that is not
 * there or does not divide evenly) is a shape mismatch, also for a key the
 * model does not have. */
typedef struct lam_load_transform {
  const char *key;
  bool transpose;
  int split_axis;
  int split_count;
  const char *const *split_into;
} lam_load_transform;

/* Options of the loaders (the options rule, lamina/options.h: NULL, a
 * zeroed struct and lam_load_defaults() are the same). A file key goes
 * through: the prefix (keys without it are ignored), then every rename rule
 * in order (each to the result of the one before), then the rename
 * callback, then the first matching transform; the result is looked up in
 * the model. */
typedef struct lam_load_opts {
  /* load_into: by default (false) keys of the model missing from the file
   * and keys of the file the model lacks are errors, as PyTorch's
   * load_state_dict(strict=True); true (strict=False) loads the keys both
   * have and skips the rest (listed in the report of lam_vars_load). Shape
   * and dtype mismatches are errors either way. */
  bool non_strict;
  /* Only file tensors whose names start with prefix take part, with the
   * prefix removed (e.g. "model." or "params."); NULL or "": all. */
  const char *prefix;
  /* rename_count rules (renames may be NULL when the count is 0). */
  const lam_rename_rule *renames;
  int rename_count;
  /* Called with each key as renamed by the rules; returns the model key
   * (copied at once; it may point into a buffer of user's) or NULL to skip
   * the key (it is then not "unexpected"). NULL: no callback. */
  const char *(*rename)(const char *file_key, void *user);
  void *rename_user;
  /* transform_count transforms (transforms may be NULL when it is 0). */
  const lam_load_transform *transforms;
  int transform_count;
} lam_load_opts;

/* Returns the default load options (strict, no prefix). */
LAM_API lam_load_opts lam_load_defaults(void);

/* Reads a whole file into a new tree in `*out` on ctx (dicts created from
 * the dotted names, in header order). F32, F64, I32 and U8 keep their
 * dtype; U32 becomes i32 by bit pattern (MLX's packed quantized weights);
 * F16 stays f16 (a storage dtype on every device: cast to f32 for the ops
 * that compute on f16 only with cl_khr_fp16); BF16 becomes f32 (exact); F64 becomes f32 on devices without
 * cl_khr_fp64; BOOL becomes u8 and I64 i32. Returns LAM_OK, LAM_ERR_IO,
 * LAM_ERR_FORMAT, LAM_ERR_UNSUPPORTED (a dtype or a zero-sized or 9+-dim
 * tensor lamina cannot hold), or a device error; *out is NULL on error. */
/* opts may be NULL (only prefix is used: tensors whose names start with
 * it, prefix removed). When `metadata` is not NULL it receives the file's
 * __metadata__ in a new map (empty when the file has none). */
LAM_API lam_status lam_safetensors_load(lam_ctx *ctx, const char *path, const lam_load_opts *opts,
                                        lam_ptree **out, lam_metadata **metadata);
/* Reads only the header's __metadata__ into a new map in `*out`. */
LAM_API lam_status lam_safetensors_read_metadata(const char *path, lam_metadata **out);

/* Loads a file by key into the existing leaves of an initialised model
 * (opts NULL: defaults; renames and transforms apply as for lam_vars_load,
 * which loads params and state together and returns a report), writing
 * each leaf's buffer in place. Every key is
 * checked first: the error message names ALL missing keys, ALL unexpected
 * keys and ALL shape/dtype mismatches (file dtype and shape against the
 * model's), and nothing is written. Any float file dtype (F64, F32, F16,
 * BF16) loads into any float leaf, converted on the host; integer leaves
 * need the same kind (I32 from I32, I64 in range or U32 by bit pattern, U8 from U8 or BOOL).
 * Returns LAM_OK, LAM_ERR_NOT_FOUND (missing or unexpected keys),
 * LAM_ERR_SHAPE (shape mismatch), LAM_ERR_DTYPE (incompatible dtype),
 * LAM_ERR_IO, LAM_ERR_FORMAT. */
LAM_API lam_status lam_ptree_load_into(lam_ptree *tree, const char *path, const lam_load_opts *opts);

/* What a load found: the model keys the source lacks (missing), the source
 * keys -- after prefix, renaming and splitting -- the model lacks
 * (unexpected), and the keys whose shape or dtype do not fit (mismatched),
 * each an array of `*_count` strings owned by the report. */
typedef struct lam_load_report {
  int missing_count, unexpected_count, mismatched_count;
  char **missing, **unexpected, **mismatched;
} lam_load_report;

/* Frees the report's arrays and zeroes it. NULL or a zeroed report: no-op. */
LAM_API void lam_load_report_free(lam_load_report *report);

/* Loads a PyTorch state_dict into a model's params and state together:
 * every leaf of lam_vars_params(vars) and of lam_vars_state(vars) (batch
 * norm's running_mean, running_var, num_batches_tracked; I64 becomes i32)
 * is looked up by its dotted path, after the keys of the source went
 * through lam_load_opts (prefix, renames, callback, transforms). `path` is
 * a safetensors file or a sharded checkpoint's index
 * ("model.safetensors.index.json": a JSON object whose "weight_map" maps
 * each key to a shard file in the index's folder; each shard is opened and
 * read once). Everything is checked before any leaf is written, in place:
 * strict (the default) fails with LAM_ERR_NOT_FOUND naming all missing and
 * unexpected keys; mismatches fail either way (LAM_ERR_SHAPE /
 * LAM_ERR_DTYPE, all named). Dtypes are converted as by lam_ptree_load_into.
 * When `report` is not NULL it is filled whenever the keys were compared
 * (on success, and on a failure found by the comparison); otherwise it is
 * left zeroed. Free it with lam_load_report_free in both cases. Other
 * errors: LAM_ERR_NULL, LAM_ERR_INVALID_ARGUMENT (bad options, two source
 * keys renamed to one), LAM_ERR_UNSUPPORTED (a regex rule on Windows),
 * LAM_ERR_IO, LAM_ERR_FORMAT. */
LAM_API lam_status lam_vars_load(lam_vars *vars, const char *path, const lam_load_opts *opts,
                                 lam_load_report *report);
/* As lam_vars_load from an in-memory tree (its leaves' dotted paths are the
 * keys; e.g. from lam_safetensors_load). The tree is not changed. */
LAM_API lam_status lam_vars_load_tree(lam_vars *vars, const lam_ptree *src, const lam_load_opts *opts,
                                      lam_load_report *report);
/* Saves params and state as one state_dict (the keys of both trees at the
 * top level, as PyTorch's model.state_dict() has them), so a PyTorch model
 * of the same structure loads it with load_state_dict(strict=True) after
 * safetensors.torch.load_file. num_batches_tracked is written as I32
 * (PyTorch's copy_ converts it). A key present in both trees gives
 * LAM_ERR_INVALID_ARGUMENT; otherwise as lam_safetensors_save. */
LAM_API lam_status lam_vars_save(lam_vars *vars, const char *path, const lam_save_opts *opts);

/* ---- checkpoints ---------------------------------------------------------------- */

/* Saves a training checkpoint as one safetensors file: the leaves of params
 * under "params.", of state (may be NULL) under "state.", of the optimizer
 * state (opt may be NULL; see lam_optimizer_state) under "optim.", and
 * metadata "lamina.format" = "checkpoint-1", "lamina.step", "lamina.rng_key"
 * (two 32-bit words in hex), "lamina.optimizer" (kind name or "none"),
 * "lamina.optimizer_steps" and "lamina.optimizer_config" (JSON of the
 * hyperparameters, for reference). Dtypes are kept, so a reload is
 * bit-exact. Returns LAM_OK or the error. */
LAM_API lam_status lam_checkpoint_save(const char *path, const lam_ptree *params, const lam_ptree *state,
                               const lam_optimizer *opt, int64_t step, lam_rng_key key);

/* Restores a checkpoint written by lam_checkpoint_save: params (strictly,
 * by key, into the existing leaves), state when not NULL (strictly, the
 * "state." entries), the optimizer when not NULL (it must be of the same
 * kind as saved; its state and step count are replaced), and *step and
 * *key when not NULL. The file, every key, shape and the optimizer kind are
 * checked before anything is changed. Returns LAM_OK, LAM_ERR_IO,
 * LAM_ERR_FORMAT (not a lamina checkpoint, bad metadata), the
 * lam_ptree_load_into errors, or LAM_ERR_INVALID_ARGUMENT (optimizer kind
 * differs, or the file holds no optimizer state for a given opt). */
LAM_API lam_status lam_checkpoint_load(const char *path, lam_ptree *params, lam_ptree *state,
                               lam_optimizer *opt, int64_t *step, lam_rng_key *key);

#ifdef __cplusplus
}
#endif
#endif
