/* test_checkpoint.c: training checkpoints. Training resumed from a
 * checkpoint continues bit for bit like uninterrupted training, for every
 * optimizer (with a schedule, so the step count matters too); params,
 * model state, rng key and step come back exactly; mismatches, a wrong
 * optimizer, non-checkpoint files, truncations and bad input are errors
 * that change nothing and leak nothing. */
#include <lamina/io.h>
#include <lamina/optim.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

static char tmpdir[256];
static void make_tmpdir(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/lamina-ckpt-XXXXXX");
  cr_assert(mkdtemp(tmpdir));
}
static const char *tmp(const char *name) {
  static char buf[4][512];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
  return buf[k];
}
static void cleanup(const char *const *names, int n) {
  for (int i = 0; i < n; i++) remove(tmp(names[i]));
  rmdir(tmpdir);
}

static lam_tensor *filled(lam_ctx *ctx, lam_dtype dt, int ndim, const int64_t *shape, uint64_t seed) {
  tu_rng r = tu_rng_make(seed);
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  float *x = malloc((size_t)n * 4);
  tu_fill_uniform_f32(&r, x, n, -1, 1);
  lam_tensor *t;
  if (dt == LAM_I32) {
    int32_t *iv = malloc((size_t)n * 4);
    for (int64_t i = 0; i < n; i++) iv[i] = (int32_t)(x[i] * 1000);
    t = lam_tensor_from_host(ctx, dt, ndim, shape, iv);
    free(iv);
  } else {
    t = lam_tensor_from_host(ctx, LAM_F32, ndim, shape, x);
  }
  free(x);
  cr_assert(t, "%s", lam_last_error());
  return t;
}

/* A small model: params (one frozen) and state. */
static void make_model(lam_ctx *ctx, uint64_t seed, lam_ptree **params, lam_ptree **state) {
  *params = lam_ptree_dict();
  *state = lam_ptree_dict();
  struct { const char *path; int ndim; int64_t shape[2]; } leaves[] = {
      {"enc.w", 2, {5, 7}}, {"enc.b", 1, {33}}, {"head.0.weight", 2, {3, 5}}, {"emb", 2, {4, 2}}};
  for (int i = 0; i < 4; i++) {
    lam_tensor *t = filled(ctx, LAM_F32, leaves[i].ndim, leaves[i].shape, seed + (uint64_t)i);
    lam_ptree_set(*params, leaves[i].path, t);
    lam_tensor_free(t);
  }
  lam_ptree_freeze(*params, "emb");
  lam_tensor *rm = filled(ctx, LAM_F32, 1, (int64_t[]){5}, seed + 10);
  lam_tensor *nb = filled(ctx, LAM_I32, 0, NULL, seed + 11);
  lam_ptree_set(*state, "bn.running_mean", rm);
  lam_ptree_set(*state, "bn.num_batches", nb);
  lam_tensor_free(rm);
  lam_tensor_free(nb);
}

/* Synthetic gradients for step t: deterministic in t, for all leaves
 * (including "emb", which is frozen and must be skipped) except "enc.b"
 * every third step. */
static lam_ptree *grads_at(lam_ctx *ctx, const lam_ptree *params, int t) {
  lam_ptree *g = lam_ptree_dict();
  int n = lam_ptree_leaf_count(params);
  for (int i = 0; i < n; i++) {
    const char *path;
    lam_tensor *p;
    lam_ptree_leaf(params, i, &path, &p);
    if (t % 3 == 1 && strcmp(path, "enc.b") == 0) continue; /* its own step count lags */
    lam_tensor *gt = filled(ctx, LAM_F32, lam_tensor_ndim(p), lam_tensor_shape(p), 1000 + 31 * (uint64_t)t + (uint64_t)i);
    lam_ptree_set(g, path, gt);
    lam_tensor_free(gt);
  }
  return g;
}

static lam_optimizer *make_opt(int kind) {
  switch (kind) {
    case 0: return lam_sgd(&(lam_sgd_opts){.lr = 0.05, .momentum = 0.9, .nesterov = true});
    case 1: {
      lam_adam_opts o = lam_adam_defaults();
      o.amsgrad = true;
      o.weight_decay = 0.01;
      return lam_adam(&o);
    }
    case 2: return lam_adamw(NULL);
    case 3:
      return lam_rmsprop(&(lam_rmsprop_opts){.lr = 0.01, .alpha = 0.9, .eps = 1e-8, .momentum = 0.3,
                                             .centered = true});
    case 4: {
      lam_adagrad_opts o = lam_adagrad_defaults();
      o.lr_decay = 0.1;
      return lam_adagrad(&o);
    }
    default: return lam_lion(NULL);
  }
}

static bool bits_equal(const lam_tensor *a, const lam_tensor *b) {
  size_t n = lam_tensor_nbytes(a);
  if (n != lam_tensor_nbytes(b) || lam_tensor_dtype(a) != lam_tensor_dtype(b)) return false;
  unsigned char *x = malloc(n), *y = malloc(n);
  cr_assert_eq(lam_tensor_to_host(a, x, n), LAM_OK);
  cr_assert_eq(lam_tensor_to_host(b, y, n), LAM_OK);
  bool eq = memcmp(x, y, n) == 0;
  free(x);
  free(y);
  return eq;
}

static bool trees_equal(const lam_ptree *a, const lam_ptree *b) {
  int n = lam_ptree_leaf_count(a);
  if (n != lam_ptree_leaf_count(b)) return false;
  for (int i = 0; i < n; i++) {
    const char *pa;
    lam_tensor *ta;
    lam_ptree_leaf(a, i, &pa, &ta);
    lam_tensor *tb = lam_ptree_get(b, pa);
    if (!tb || !bits_equal(ta, tb)) return false;
  }
  return true;
}

/* A new tree of copies of tree's leaves (a snapshot). */
static lam_ptree *snapshot(const lam_ptree *tree) {
  lam_ptree *out = lam_ptree_dict();
  for (int i = 0; i < lam_ptree_leaf_count(tree); i++) {
    const char *path;
    lam_tensor *t;
    lam_ptree_leaf(tree, i, &path, &t);
    lam_tensor *c = lam_tensor_copy(t);
    cr_assert_eq(lam_ptree_set(out, path, c), LAM_OK);
    lam_tensor_free(c);
  }
  return out;
}

static void train(lam_ctx *ctx, lam_optimizer *opt, lam_ptree *params, lam_ptree *state, int from, int to) {
  for (int t = from; t < to; t++) {
    lam_ptree *g = grads_at(ctx, params, t);
    cr_assert_eq(lam_grad_clip_norm(g, 3.0, NULL), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_optimizer_step(opt, params, g), LAM_OK, "%s", lam_last_error());
    lam_ptree_free(g);
    /* The model state changes too (like batch-norm statistics). */
    lam_tensor *rm = lam_ptree_get(state, "bn.running_mean");
    lam_tensor *nrm = filled(ctx, LAM_F32, 1, (int64_t[]){5}, 500 + (uint64_t)t);
    cr_assert(rm);
    lam_ptree_set(state, "bn.running_mean", nrm);
    lam_tensor_free(nrm);
  }
}

Test(checkpoint, resume_is_bit_exact_for_every_optimizer) {
  make_tmpdir();
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  lam_schedule sched = lam_schedule_warmup_cosine(0.0005, 0.005, 3, 12, 1e-4);
  for (int kind = 0; kind < 6; kind++) {
    /* Uninterrupted: 8 steps, checkpoint after 4. */
    lam_ptree *p1, *s1;
    make_model(ctx, 1, &p1, &s1);
    lam_optimizer *o1 = make_opt(kind);
    cr_assert_eq(lam_optimizer_set_schedule(o1, &sched), LAM_OK);
    train(ctx, o1, p1, s1, 0, 4);
    lam_rng_key key = {{0xdeadbeefu, 0x01234567u}};
    cr_assert_eq(lam_checkpoint_save(tmp("ck.safetensors"), p1, s1, o1, 4, key), LAM_OK, "%s",
                 lam_last_error());
    lam_ptree *snap = snapshot(p1);
    train(ctx, o1, p1, s1, 4, 8);

    /* Resumed: a different model and a fresh optimizer, loaded. */
    lam_ptree *p2, *s2;
    make_model(ctx, 77, &p2, &s2);
    lam_optimizer *o2 = make_opt(kind);
    cr_assert_eq(lam_optimizer_set_schedule(o2, &sched), LAM_OK);
    int64_t step = -1;
    lam_rng_key k2 = {{0, 0}};
    cr_assert_eq(lam_checkpoint_load(tmp("ck.safetensors"), p2, s2, o2, &step, &k2), LAM_OK, "%s: %s",
                 lam_optimizer_name(o2), lam_last_error());
    cr_assert_eq(step, 4);
    cr_assert(k2.k[0] == key.k[0] && k2.k[1] == key.k[1]);
    cr_assert_eq(lam_optimizer_step_count(o2), 4);
    cr_assert(trees_equal(snap, p2), "%s: params differ after loading", lam_optimizer_name(o2));
    train(ctx, o2, p2, s2, 4, 8);
    cr_assert(trees_equal(p1, p2), "%s: resumed training differs", lam_optimizer_name(o2));
    cr_assert(trees_equal(s1, s2));
    lam_ptree *st1 = lam_optimizer_state(o1), *st2 = lam_optimizer_state(o2);
    cr_assert(trees_equal(st1, st2), "%s: optimizer state differs", lam_optimizer_name(o2));
    lam_ptree_free(st1);
    lam_ptree_free(st2);
    lam_optimizer_free(o1);
    lam_optimizer_free(o2);
    lam_ptree_free(p1);
    lam_ptree_free(s1);
    lam_ptree_free(p2);
    lam_ptree_free(s2);
    lam_ptree_free(snap);
  }
  /* The model state came back too: checked directly after a load. */
  lam_ptree *p, *s, *p3, *s3;
  make_model(ctx, 5, &p, &s);
  make_model(ctx, 6, &p3, &s3);
  cr_assert_eq(lam_checkpoint_save(tmp("ck.safetensors"), p, s, NULL, 0, (lam_rng_key){{1, 2}}), LAM_OK);
  cr_assert(!trees_equal(s, s3));
  cr_assert_eq(lam_checkpoint_load(tmp("ck.safetensors"), p3, s3, NULL, NULL, NULL), LAM_OK, "%s",
               lam_last_error());
  cr_assert(trees_equal(s, s3) && trees_equal(p, p3));
  cr_assert(lam_ptree_is_frozen(p3, "emb"), "freezing is the model's, not the file's");
  lam_ptree_free(p);
  lam_ptree_free(s);
  lam_ptree_free(p3);
  lam_ptree_free(s3);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
  const char *files[] = {"ck.safetensors"};
  cleanup(files, 1);
}

Test(checkpoint, metadata_and_layout) {
  make_tmpdir();
  lam_ctx *ctx = tu_ctx();
  lam_ptree *p, *s;
  make_model(ctx, 1, &p, &s);
  lam_optimizer *o = make_opt(1);
  train(ctx, o, p, s, 0, 2);
  cr_assert_eq(lam_checkpoint_save(tmp("ck.st"), p, s, o, 1234567890123LL, (lam_rng_key){{7, 0xffffffffu}}),
               LAM_OK, "%s", lam_last_error());
  lam_metadata *meta;
  cr_assert_eq(lam_safetensors_read_metadata(tmp("ck.st"), &meta), LAM_OK);
  cr_assert_str_eq(lam_metadata_get(meta, "lamina.format"), "checkpoint-1");
  cr_assert_str_eq(lam_metadata_get(meta, "lamina.step"), "1234567890123");
  cr_assert_str_eq(lam_metadata_get(meta, "lamina.rng_key"), "0x00000007,0xffffffff");
  cr_assert_str_eq(lam_metadata_get(meta, "lamina.optimizer"), "adam");
  cr_assert_str_eq(lam_metadata_get(meta, "lamina.optimizer_steps"), "2");
  cr_assert(strstr(lam_metadata_get(meta, "lamina.optimizer_config"), "\"amsgrad\":true"));
  lam_metadata_free(meta);
  lam_ptree *all;
  cr_assert_eq(lam_safetensors_load(ctx, tmp("ck.st"), NULL, &all, NULL), LAM_OK, "%s", lam_last_error());
  cr_assert(lam_ptree_get(all, "params.enc.w") && lam_ptree_get(all, "params.emb"));
  cr_assert(lam_ptree_get(all, "state.bn.num_batches"));
  cr_assert(lam_ptree_get(all, "optim.exp_avg.enc.w") && lam_ptree_get(all, "optim.max_exp_avg_sq.head.0.weight"));
  cr_assert(lam_ptree_get(all, "optim.step.enc.b"));
  lam_error_clear();
  cr_assert(lam_ptree_get(all, "optim.exp_avg.emb") == NULL, "frozen leaves have no state");
  int64_t step;
  lam_rng_key key;
  cr_assert_eq(lam_checkpoint_load(tmp("ck.st"), p, NULL, NULL, &step, &key), LAM_OK, "%s", lam_last_error());
  cr_assert(step == 1234567890123LL && key.k[0] == 7 && key.k[1] == 0xffffffffu);
  lam_ptree_free(all);
  lam_optimizer_free(o);
  lam_ptree_free(p);
  lam_ptree_free(s);
  lam_ctx_free(ctx);
  const char *files[] = {"ck.st"};
  cleanup(files, 1);
}

Test(checkpoint, mismatches_change_nothing) {
  make_tmpdir();
  lam_ctx *ctx = tu_ctx();
  lam_ptree *p, *s;
  make_model(ctx, 1, &p, &s);
  lam_optimizer *adam = make_opt(1);
  train(ctx, adam, p, s, 0, 2);
  cr_assert_eq(lam_checkpoint_save(tmp("ck.st"), p, s, adam, 2, (lam_rng_key){{1, 2}}), LAM_OK);
  cr_assert_eq(lam_checkpoint_save(tmp("noopt.st"), p, s, NULL, 2, (lam_rng_key){{1, 2}}), LAM_OK);
  cr_assert_eq(lam_safetensors_save(tmp("plain.st"), p, NULL), LAM_OK);
  lam_ptree *p2, *s2;
  make_model(ctx, 9, &p2, &s2);
  lam_optimizer *sgd = make_opt(0), *adam2 = make_opt(1);
  train(ctx, adam2, p2, s2, 0, 1);
  lam_ptree *p2_before = snapshot(p2), *s2_before = snapshot(s2);
  lam_ptree *st_now = lam_optimizer_state(adam2);
  lam_ptree *st_before = snapshot(st_now);
  lam_ptree_free(st_now);
  tu_mark m = tu_mark_now(ctx);
  /* Wrong optimizer kind; no optimizer state in the file. */
  tu_assert_status(lam_checkpoint_load(tmp("ck.st"), p2, s2, sgd, NULL, NULL), LAM_ERR_INVALID_ARGUMENT,
                   "\"adam\"");
  tu_assert_status(lam_checkpoint_load(tmp("noopt.st"), p2, s2, adam2, NULL, NULL),
                   LAM_ERR_INVALID_ARGUMENT, "no optimizer state");
  /* A model whose keys differ. */
  lam_tensor *extra = lam_tensor_zeros(ctx, LAM_F32, 1, (int64_t[]){2});
  lam_ptree_set(p2, "new.layer", extra);
  tu_assert_status(lam_checkpoint_load(tmp("ck.st"), p2, s2, adam2, NULL, NULL), LAM_ERR_NOT_FOUND,
                   "new.layer");
  lam_ptree_remove(p2, "new");
  /* A model state that differs. */
  lam_ptree_set(s2, "bn.running_var", extra);
  tu_assert_status(lam_checkpoint_load(tmp("ck.st"), p2, s2, adam2, NULL, NULL), LAM_ERR_NOT_FOUND,
                   "bn.running_var");
  lam_ptree_remove(s2, "bn.running_var");
  lam_tensor_free(extra);
  /* Not a checkpoint. */
  tu_assert_status(lam_checkpoint_load(tmp("plain.st"), p2, s2, adam2, NULL, NULL), LAM_ERR_FORMAT,
                   "not a lamina checkpoint");
  cr_assert(trees_equal(p2, p2_before), "params changed on a failed load");
  cr_assert(trees_equal(s2, s2_before), "state changed on a failed load");
  lam_ptree *st_after = lam_optimizer_state(adam2);
  cr_assert(trees_equal(st_before, st_after), "optimizer state changed on a failed load");
  cr_assert_eq(lam_optimizer_step_count(adam2), 1);
  lam_ptree_free(st_after);
  tu_assert_no_leak(ctx, m);
  /* And a successful load after all that. */
  cr_assert_eq(lam_checkpoint_load(tmp("ck.st"), p2, s2, adam2, NULL, NULL), LAM_OK, "%s", lam_last_error());
  cr_assert(trees_equal(p, p2));
  cr_assert_eq(lam_optimizer_step_count(adam2), 2);
  lam_ptree_free(st_before);
  lam_ptree_free(p2_before);
  lam_ptree_free(s2_before);
  lam_optimizer_free(sgd);
  lam_optimizer_free(adam);
  lam_optimizer_free(adam2);
  lam_ptree_free(p);
  lam_ptree_free(s);
  lam_ptree_free(p2);
  lam_ptree_free(s2);
  lam_ctx_free(ctx);
  const char *files[] = {"ck.st", "noopt.st", "plain.st"};
  cleanup(files, 3);
}

/* Every truncation of a checkpoint (in steps) fails cleanly and leaves the
 * model untouched: validation comes before writing. */
Test(checkpoint, truncated_files) {
  make_tmpdir();
  lam_ctx *ctx = tu_ctx();
  lam_ptree *p, *s;
  make_model(ctx, 1, &p, &s);
  lam_optimizer *o = make_opt(5);
  train(ctx, o, p, s, 0, 1);
  cr_assert_eq(lam_checkpoint_save(tmp("ck.st"), p, s, o, 1, (lam_rng_key){{1, 2}}), LAM_OK);
  FILE *f = fopen(tmp("ck.st"), "rb");
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc((size_t)len);
  cr_assert_eq(fread(b, 1, (size_t)len, f), (size_t)len);
  fclose(f);
  lam_ptree *p2, *s2;
  make_model(ctx, 3, &p2, &s2);
  lam_tensor *w = lam_ptree_get(p2, "enc.w");
  lam_tensor *w_before = lam_tensor_copy(w);
  lam_optimizer *o2 = make_opt(5);
  tu_mark m = tu_mark_now(ctx);
  int step = tu_small() ? 97 : 13;
  for (long n = 0; n < len; n += step) {
    f = fopen(tmp("t.st"), "wb");
    fwrite(b, 1, (size_t)n, f);
    fclose(f);
    lam_status st = lam_checkpoint_load(tmp("t.st"), p2, s2, o2, NULL, NULL);
    cr_assert_eq(st, LAM_ERR_FORMAT, "length %ld: %s", n, lam_last_error());
    cr_assert(bits_equal(w, w_before));
    cr_assert_eq(lam_optimizer_step_count(o2), 0);
  }
  tu_assert_no_leak(ctx, m);
  free(b);
  lam_tensor_free(w_before);
  lam_optimizer_free(o);
  lam_optimizer_free(o2);
  lam_ptree_free(p);
  lam_ptree_free(s);
  lam_ptree_free(p2);
  lam_ptree_free(s2);
  lam_ctx_free(ctx);
  const char *files[] = {"ck.st", "t.st"};
  cleanup(files, 2);
}

Test(checkpoint, bad_input) {
  make_tmpdir();
  lam_ctx *ctx = tu_ctx();
  lam_ptree *p, *s;
  make_model(ctx, 1, &p, &s);
  tu_mark m = tu_mark_now(ctx);
  lam_rng_key k = {{0, 0}};
  tu_assert_status(lam_checkpoint_save(NULL, p, s, NULL, 0, k), LAM_ERR_NULL, "path");
  tu_assert_status(lam_checkpoint_save(tmp("a"), NULL, s, NULL, 0, k), LAM_ERR_NULL, "params");
  tu_assert_status(lam_checkpoint_save(tmp("a"), p, s, NULL, -1, k), LAM_ERR_INVALID_ARGUMENT, "negative");
  tu_assert_status(lam_checkpoint_save("/no/such/dir/ck.st", p, s, NULL, 0, k), LAM_ERR_IO,
                   "/no/such/dir/ck.st");
  tu_assert_status(lam_checkpoint_load(NULL, p, s, NULL, NULL, NULL), LAM_ERR_NULL, "path");
  tu_assert_status(lam_checkpoint_load(tmp("a"), NULL, s, NULL, NULL, NULL), LAM_ERR_NULL, "params");
  tu_assert_status(lam_checkpoint_load("/no/such/ck.st", p, s, NULL, NULL, NULL), LAM_ERR_IO,
                   "/no/such/ck.st");
  /* Malformed lamina metadata. */
  lam_metadata *meta = lam_metadata_create();
  lam_metadata_set(meta, "lamina.format", "checkpoint-1");
  lam_metadata_set(meta, "lamina.step", "-3");
  lam_metadata_set(meta, "lamina.rng_key", "0x1,0x2");
  lam_metadata_set(meta, "lamina.optimizer", "none");
  lam_save_opts so = lam_save_defaults();
  so.metadata = meta;
  lam_ptree *empty = lam_ptree_dict();
  cr_assert_eq(lam_safetensors_save(tmp("a"), empty, &so), LAM_OK);
  tu_assert_status(lam_checkpoint_load(tmp("a"), empty, NULL, NULL, NULL, NULL), LAM_ERR_FORMAT,
                   "lamina.step");
  lam_metadata_set(meta, "lamina.step", "3");
  lam_metadata_set(meta, "lamina.rng_key", "0x1;0x2");
  cr_assert_eq(lam_safetensors_save(tmp("a"), empty, &so), LAM_OK);
  tu_assert_status(lam_checkpoint_load(tmp("a"), empty, NULL, NULL, NULL, NULL), LAM_ERR_FORMAT,
                   "rng_key");
  lam_metadata_set(meta, "lamina.rng_key", "0x1,0x2");
  cr_assert_eq(lam_safetensors_save(tmp("a"), empty, &so), LAM_OK);
  int64_t step;
  cr_assert_eq(lam_checkpoint_load(tmp("a"), empty, NULL, NULL, &step, &k), LAM_OK, "%s", lam_last_error());
  cr_assert(step == 3 && k.k[0] == 1 && k.k[1] == 2);
  lam_metadata_free(meta);
  lam_ptree_free(empty);
  tu_assert_no_leak(ctx, m);
  lam_ptree_free(p);
  lam_ptree_free(s);
  lam_ctx_free(ctx);
  const char *files[] = {"a"};
  cleanup(files, 1);
}
