/* train/checkpoint.c: training checkpoints as one safetensors file.
 * Parameters, model state and optimizer state are stored under the
 * prefixes "params.", "state." and "optim."; the step, the rng key and the
 * optimizer's kind, step count and hyperparameters go in the metadata.
 * Loading opens and validates the file once and checks every part (keys,
 * shapes, optimizer kind and state layout) before anything is written. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/optim.h"
#include "lamina/rng.h"
#include "train/io_internal.h"

#define LAM__CKPT_FORMAT "checkpoint-1"

/* Attaches sub (taken over; NULL: the failure recorded by its maker) at key
 * unless it has no leaves. */
static lam_status lam__attach(lam_ptree *root, const char *key, lam_ptree *sub, const char *fn) {
  if (!sub) return lam_last_status() != LAM_OK ? lam_last_status()
                                               : lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
  if (lam_ptree_leaf_count(sub) == 0) {
    lam_ptree_free(sub);
    return LAM_OK;
  }
  lam_status st = lam_ptree_set_subtree(root, key, sub);
  if (st != LAM_OK) lam_ptree_free(sub);
  return st;
}

lam_status lam_checkpoint_save(const char *path, const lam_ptree *params, const lam_ptree *state,
                               const lam_optimizer *opt, int64_t step, lam_rng_key key) {
  const char *fn = "lam_checkpoint_save";
  if (!path || !params)
    return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, path ? "params" : "path");
  if (step < 0)
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: step %lld is negative", fn, (long long)step);
  lam_ptree *root = lam_ptree_dict();
  lam_metadata *meta = lam_metadata_create();
  lam_status st = LAM_OK;
  if (!root || !meta) {
    st = lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
    goto done;
  }
  if ((st = lam__attach(root, "params", lam_ptree_copy(params), fn)) != LAM_OK) goto done;
  if (state && (st = lam__attach(root, "state", lam_ptree_copy(state), fn)) != LAM_OK) goto done;
  if (opt && (st = lam__attach(root, "optim", lam_optimizer_state(opt), fn)) != LAM_OK) goto done;
  char buf[1024];
  st = lam_metadata_set(meta, "lamina.format", LAM__CKPT_FORMAT);
  snprintf(buf, sizeof buf, "%" PRId64, step);
  if (st == LAM_OK) st = lam_metadata_set(meta, "lamina.step", buf);
  snprintf(buf, sizeof buf, "0x%08" PRIx32 ",0x%08" PRIx32, key.k[0], key.k[1]);
  if (st == LAM_OK) st = lam_metadata_set(meta, "lamina.rng_key", buf);
  if (st == LAM_OK) st = lam_metadata_set(meta, "lamina.optimizer", opt ? lam_optimizer_name(opt) : "none");
  if (opt) {
    snprintf(buf, sizeof buf, "%" PRId64, lam_optimizer_step_count(opt));
    if (st == LAM_OK) st = lam_metadata_set(meta, "lamina.optimizer_steps", buf);
    if (st == LAM_OK) st = lam_optimizer_describe(opt, buf, sizeof buf);
    if (st == LAM_OK) st = lam_metadata_set(meta, "lamina.optimizer_config", buf);
  }
  if (st != LAM_OK) goto done;
  lam_save_opts so = lam_save_defaults();
  so.metadata = meta;
  st = lam_safetensors_save(path, root, &so);
  if (st != LAM_OK) {
    char why[2048];
    snprintf(why, sizeof why, "%s", lam_last_error());
    st = lam__fail(st, "%s: %s", fn, why);
  }
done:
  lam_ptree_free(root);
  lam_metadata_free(meta);
  return st;
}

/* Parses a non-negative decimal int64 metadata value. */
static bool lam__parse_i64(const char *s, int64_t *out) {
  if (!s || !*s || *s == '-' || *s == '+') return false;
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || *end) return false;
  *out = v;
  return true;
}

static bool lam__parse_key(const char *s, lam_rng_key *key) {
  if (!s) return false;
  char *end;
  errno = 0;
  unsigned long long a = strtoull(s, &end, 16);
  if (errno || *end != ',' || a > 0xffffffffULL) return false;
  const char *b = end + 1;
  unsigned long long c = strtoull(b, &end, 16);
  if (errno || *end || end == b || c > 0xffffffffULL || *b == '-') return false;
  key->k[0] = (uint32_t)a;
  key->k[1] = (uint32_t)c;
  return true;
}

lam_status lam_checkpoint_load(const char *path, lam_ptree *params, lam_ptree *state,
                               lam_optimizer *opt, int64_t *step, lam_rng_key *key) {
  const char *fn = "lam_checkpoint_load";
  if (!path || !params)
    return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, path ? "params" : "path");
  lam__st_file sf;
  lam_status st = lam__st_open(path, fn, &sf);
  if (st != LAM_OK) return st;
  lam_ptree *ostate = NULL;
  const char *format = lam_metadata_get(sf.meta, "lamina.format");
  const char *okind = lam_metadata_get(sf.meta, "lamina.optimizer");
  int64_t s = 0, osteps = 0;
  lam_rng_key k = {{0, 0}};
  if (!format || strcmp(format, LAM__CKPT_FORMAT) != 0) {
    st = lam__fail(LAM_ERR_FORMAT, "%s: \"%s\" is not a lamina checkpoint (metadata lamina.format "
                   "is %s%s%s, expected \"" LAM__CKPT_FORMAT "\")", fn, path, format ? "\"" : "",
                   format ? format : "missing", format ? "\"" : "");
    goto done;
  }
  if (!lam__parse_i64(lam_metadata_get(sf.meta, "lamina.step"), &s) ||
      !lam__parse_key(lam_metadata_get(sf.meta, "lamina.rng_key"), &k) || !okind) {
    st = lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": metadata lamina.step, lamina.rng_key or "
                   "lamina.optimizer is missing or malformed", fn, path);
    goto done;
  }
  if ((st = lam__st_check_into(&sf, params, "params.", true, fn)) != LAM_OK) goto done;
  if (state && (st = lam__st_check_into(&sf, state, "state.", true, fn)) != LAM_OK) goto done;
  if (opt) {
    if (strcmp(okind, lam_optimizer_name(opt)) != 0) {
      st = lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: \"%s\" holds %s%s%s optimizer state, but the "
                     "optimizer given is %s", fn, path, strcmp(okind, "none") ? "\"" : "",
                     strcmp(okind, "none") ? okind : "no", strcmp(okind, "none") ? "\"" : "",
                     lam_optimizer_name(opt));
      goto done;
    }
    if (!lam__parse_i64(lam_metadata_get(sf.meta, "lamina.optimizer_steps"), &osteps)) {
      st = lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": metadata lamina.optimizer_steps is missing or "
                     "malformed", fn, path);
      goto done;
    }
    lam_ctx *ctx = NULL;
    if (lam_ptree_leaf_count(params) > 0) {
      lam_tensor *t;
      lam_ptree_leaf(params, 0, NULL, &t);
      ctx = lam_tensor_ctx(t);
    }
    bool has_optim = false;
    for (int i = 0; i < sf.n; i++) has_optim |= strncmp(sf.e[i].name, "optim.", 6) == 0;
    if (has_optim && !ctx) {
      st = lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: params has no leaves, so there is no context "
                     "to restore the optimizer state on", fn);
      goto done;
    }
    if (has_optim) {
      if ((st = lam__st_read_tree(&sf, ctx, "optim.", &ostate, fn)) != LAM_OK) goto done;
    } else if (!(ostate = lam_ptree_dict())) {
      st = lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
      goto done;
    }
    if ((st = lam_optimizer_load_state(opt, ostate, osteps)) != LAM_OK) {
      char why[2048];
      snprintf(why, sizeof why, "%s", lam_last_error());
      st = lam__fail(st, "%s: \"%s\": %s", fn, path, why);
      goto done;
    }
  }
  if ((st = lam__st_read_into(&sf, params, "params.", fn)) != LAM_OK) goto done;
  if (state && (st = lam__st_read_into(&sf, state, "state.", fn)) != LAM_OK) goto done;
  if (step) *step = s;
  if (key) *key = k;
done:
  lam_ptree_free(ostate);
  lam__st_close(&sf);
  return st;
}
