/* test_load.c: lam_vars_load / lam_vars_load_tree / lam_vars_save: a
 * state_dict with batch norm loads into params and state together (I64
 * num_batches_tracked into i32), strict failures name every key and the
 * report lists them, rename rules (prefix and regex) and the callback,
 * transpose and split transforms (GPT-2 Conv1D c_attn, nn.MultiheadAttention
 * in_proj_weight) with their numbers checked, loading from a tree, sharded
 * checkpoints (two shards and an index), saving a state_dict that loads
 * back, and bad input. */
#include <lamina/io.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* ---- a hand-written safetensors file (for I64 and arbitrary keys) ------------ */

typedef struct {
  const char *name, *dtype;
  int ndim;
  int64_t shape[4];
  const void *data;
  size_t nbytes;
} st_item;

static void write_st(const char *path, const st_item *it, int n) {
  char hdr[8192];
  size_t len = 0, off = 0;
  len += (size_t)snprintf(hdr + len, sizeof hdr - len, "{");
  for (int i = 0; i < n; i++) {
    len += (size_t)snprintf(hdr + len, sizeof hdr - len, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[",
                            i ? "," : "", it[i].name, it[i].dtype);
    for (int d = 0; d < it[i].ndim; d++)
      len += (size_t)snprintf(hdr + len, sizeof hdr - len, "%s%lld", d ? "," : "", (long long)it[i].shape[d]);
    len += (size_t)snprintf(hdr + len, sizeof hdr - len, "],\"data_offsets\":[%zu,%zu]}", off,
                            off + it[i].nbytes);
    off += it[i].nbytes;
  }
  len += (size_t)snprintf(hdr + len, sizeof hdr - len, "}");
  while (len % 8) hdr[len++] = ' ';
  FILE *f = fopen(path, "wb");
  cr_assert(f);
  unsigned char lb[8];
  for (int i = 0; i < 8; i++) lb[i] = (unsigned char)((uint64_t)len >> (8 * i));
  fwrite(lb, 1, 8, f);
  fwrite(hdr, 1, len, f);
  for (int i = 0; i < n; i++) fwrite(it[i].data, 1, it[i].nbytes, f);
  fclose(f);
}

/* linear(3, 4) + batch_norm(4): params 0.weight 0.bias 1.weight 1.bias,
 * state 1.running_mean 1.running_var 1.num_batches_tracked. */
static lam_layer *lin_bn(void) {
  return lam_nn_sequential((lam_layer *[]){lam_nn_linear(3, 4, NULL), lam_nn_batch_norm(4, NULL)}, 2);
}

static float W[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, B[4] = {.5f, -.5f, 1, -1};
static float G[4] = {2, 3, 4, 5}, BETA[4] = {.1f, .2f, .3f, .4f};
static float RM[4] = {1, 2, 3, 4}, RV[4] = {4, 9, 16, 25};
static int64_t NBT = 7;

/* The file of lin_bn's state_dict; `drop` names a key to leave out, `extra`
 * adds pooler.dense.weight. */
static void write_lin_bn(const char *path, const char *drop, bool extra) {
  st_item all[] = {
      {"0.weight", "F32", 2, {4, 3}, W, sizeof W},        {"0.bias", "F32", 1, {4}, B, sizeof B},
      {"1.weight", "F32", 1, {4}, G, sizeof G},           {"1.bias", "F32", 1, {4}, BETA, sizeof BETA},
      {"1.running_mean", "F32", 1, {4}, RM, sizeof RM},   {"1.running_var", "F32", 1, {4}, RV, sizeof RV},
      {"1.num_batches_tracked", "I64", 0, {0}, &NBT, 8},  {"pooler.dense.weight", "F32", 1, {4}, B, sizeof B}};
  st_item use[8];
  int n = 0;
  for (int i = 0; i < 8; i++) {
    if (drop && strcmp(all[i].name, drop) == 0) continue;
    if (i == 7 && !extra) continue;
    use[n++] = all[i];
  }
  write_st(path, use, n);
}

static void assert_f32(const lam_tensor *t, const float *want, int n) {
  cr_assert(t);
  float *got = tu_read_f32(t);
  for (int i = 0; i < n; i++) cr_assert_eq(got[i], want[i], "element %d: %g, want %g", i, got[i], want[i]);
  free(got);
}

static void check_lin_bn_loaded(lam_vars *v) {
  assert_f32(lam_ptree_get(lam_vars_params(v), "0.weight"), W, 12);
  assert_f32(lam_ptree_get(lam_vars_params(v), "1.bias"), BETA, 4);
  assert_f32(lam_ptree_get(lam_vars_state(v), "1.running_mean"), RM, 4);
  assert_f32(lam_ptree_get(lam_vars_state(v), "1.running_var"), RV, 4);
  int32_t nbt = -1;
  lam_tensor *tn = lam_ptree_get(lam_vars_state(v), "1.num_batches_tracked");
  cr_assert_eq(lam_tensor_to_host(tn, &nbt, 4), LAM_OK);
  cr_assert_eq(nbt, 7);
}

static bool has(char **arr, int n, const char *key) {
  for (int i = 0; i < n; i++)
    if (strcmp(arr[i], key) == 0) return true;
  return false;
}

Test(load, params_and_state_from_one_file) {
  tu_make_tmpdir("lamina-load");
  lam_ctx *ctx = tu_ctx();
  tu_mark mk = tu_mark_now(ctx);
  lam_layer *m = lin_bn();
  lam_vars *v = NULL;
  cr_assert_eq(lam_layer_init(m, ctx, lam_rng_key_make(1), LAM_F32, &v), LAM_OK);
  write_lin_bn(tu_tmp("m.st"), NULL, false);
  lam_load_report rep;
  cr_assert_eq(lam_vars_load(v, tu_tmp("m.st"), NULL, &rep), LAM_OK, "%s", lam_last_error());
  cr_assert(rep.missing_count == 0 && rep.unexpected_count == 0 && rep.mismatched_count == 0);
  lam_load_report_free(&rep);
  check_lin_bn_loaded(v);
  /* Evaluation uses the loaded running statistics. */
  float xv[3] = {1, -1, 2};
  lam_tensor *x = lam_tensor_from_host(ctx, LAM_F32, 2, (int64_t[]){1, 3}, xv);
  lam_tensor *y = tu_apply(m, v, x, false);
  float *got = tu_read_f32(y);
  for (int o = 0; o < 4; o++) {
    double h = B[o];
    for (int i = 0; i < 3; i++) h += W[o * 3 + i] * xv[i];
    double want = (h - RM[o]) / sqrt(RV[o] + 1e-5) * G[o] + BETA[o];
    cr_assert(fabs(got[o] - want) < 1e-4, "y[%d] = %g, want %g", o, got[o], want);
  }
  free(got);
  lam_tensor_free(x);
  lam_tensor_free(y);
  /* The options rule: a zeroed struct and the defaults mean the same as NULL. */
  lam_load_opts zero = {0}, def = lam_load_defaults();
  cr_assert_eq(lam_vars_load(v, tu_tmp("m.st"), &zero, NULL), LAM_OK, "%s", lam_last_error());
  cr_assert_eq(lam_vars_load(v, tu_tmp("m.st"), &def, NULL), LAM_OK, "%s", lam_last_error());
  lam_vars_free(v);
  lam_layer_free(m);
  tu_assert_no_leak(ctx, mk);
  lam_ctx_free(ctx);
  tu_remove_tmpdir();
}

Test(load, strict_names_keys_and_report_lists_them) {
  tu_make_tmpdir("lamina-load");
  lam_ctx *ctx = tu_ctx();
  tu_mark mk = tu_mark_now(ctx);
  lam_layer *m = lin_bn();
  lam_vars *v = NULL;
  cr_assert_eq(lam_layer_init(m, ctx, lam_rng_key_make(1), LAM_F32, &v), LAM_OK);
  float *before = tu_read_f32(lam_ptree_get(lam_vars_params(v), "0.weight"));
  write_lin_bn(tu_tmp("m.st"), "1.running_var", true);
  lam_load_report rep;
  tu_assert_status(lam_vars_load(v, tu_tmp("m.st"), NULL, &rep), LAM_ERR_NOT_FOUND, "1 missing key");
  const char *msg = lam_last_error();
  cr_assert(strstr(msg, "lam_vars_load") && strstr(msg, "1.running_var") &&
            strstr(msg, "1 unexpected key") && strstr(msg, "pooler.dense.weight"), "%s", msg);
  cr_assert_eq(rep.missing_count, 1);
  cr_assert_str_eq(rep.missing[0], "1.running_var");
  cr_assert_eq(rep.unexpected_count, 1);
  cr_assert_str_eq(rep.unexpected[0], "pooler.dense.weight");
  lam_load_report_free(&rep);
  cr_assert(rep.missing == NULL && rep.missing_count == 0);
  float *after = tu_read_f32(lam_ptree_get(lam_vars_params(v), "0.weight"));
  cr_assert(memcmp(before, after, sizeof W) == 0, "nothing written on a strict failure");
  free(after);
  /* Non-strict: loads what both have and reports the rest. */
  lam_load_opts lo = {.non_strict = true};
  cr_assert_eq(lam_vars_load(v, tu_tmp("m.st"), &lo, &rep), LAM_OK, "%s", lam_last_error());
  cr_assert(rep.missing_count == 1 && has(rep.missing, 1, "1.running_var"));
  cr_assert(rep.unexpected_count == 1 && has(rep.unexpected, 1, "pooler.dense.weight"));
  cr_assert_eq(rep.mismatched_count, 0);
  lam_load_report_free(&rep);
  assert_f32(lam_ptree_get(lam_vars_params(v), "0.weight"), W, 12);
  assert_f32(lam_ptree_get(lam_vars_state(v), "1.running_mean"), RM, 4);
  /* A mismatch fails non-strict too, and is reported. */
  st_item bad[] = {{"0.bias", "F32", 1, {3}, B, 12}, {"1.num_batches_tracked", "F32", 0, {0}, B, 4}};
  write_st(tu_tmp("bad.st"), bad, 2);
  tu_assert_status(lam_vars_load(v, tu_tmp("bad.st"), &lo, &rep), LAM_ERR_SHAPE,
                   "0.bias (file F32 [3], model f32 [4])");
  cr_assert(strstr(lam_last_error(), "1.num_batches_tracked (file F32 []"), "%s", lam_last_error());
  cr_assert_eq(rep.mismatched_count, 2);
  cr_assert(has(rep.mismatched, 2, "0.bias") && has(rep.mismatched, 2, "1.num_batches_tracked"));
  cr_assert_eq(rep.missing_count, 5);
  lam_load_report_free(&rep);
  lam_load_report_free(NULL);
  free(before);
  lam_vars_free(v);
  lam_layer_free(m);
  tu_assert_no_leak(ctx, mk);
  lam_ctx_free(ctx);
  tu_remove_tmpdir();
}

/* ---- renaming ------------------------------------------------------------------ */

static int calls;

static const char *rename_cb(const char *key, void *user) {
  static char buf[256];
  calls++;
  cr_assert_eq(user, &calls);
  if (strncmp(key, "pooler.", 7) == 0) return NULL; /* skipped, not unexpected */
  const char *q = strstr(key, "attn.query");
  if (!q) return key;
  snprintf(buf, sizeof buf, "%.*sattn.q%s", (int)(q - key), key, q + strlen("attn.query"));
  return buf;
}

static lam_vars *vars_of(lam_ctx *ctx, const char *const *keys, int n, int64_t len) {
  lam_ptree *p = lam_ptree_dict();
  for (int i = 0; i < n; i++) {
    lam_tensor *z = lam_tensor_zeros(ctx, LAM_F32, 1, &len);
    cr_assert_eq(lam_ptree_set(p, keys[i], z), LAM_OK);
    lam_tensor_free(z);
  }
  return lam_vars_create(p, NULL, LAM_F32);
}

Test(load, rename_rules_and_callback) {
  tu_make_tmpdir("lamina-load");
  lam_ctx *ctx = tu_ctx();
  tu_mark mk = tu_mark_now(ctx);
  float a[2] = {1, 2}, b[2] = {3, 4}, c[2] = {5, 6}, d[2] = {7, 8};
  st_item it[] = {{"bert.encoder.attention.self.query.weight", "F32", 1, {2}, a, 8},
                  {"bert.encoder.attention.self.key.weight", "F32", 1, {2}, b, 8},
                  {"bert.encoder.attention.output.dense.weight", "F32", 1, {2}, c, 8},
                  {"bert.pooler.dense.weight", "F32", 1, {2}, d, 8}};
  write_st(tu_tmp("b.st"), it, 4);
  const char *keys[] = {"encoder.attn.q.weight", "encoder.attn.key.weight", "encoder.attn.out_proj.weight"};
  lam_vars *v = vars_of(ctx, keys, 3, 2);
  lam_rename_rule rules[] = {{"bert.", "", false},
                             {"attention\\.self\\.(query|key)", "attn.\\1", true},
                             {"encoder.attention.output.dense", "encoder.attn.out_proj", false}};
  lam_load_opts lo = {.renames = rules, .rename_count = 3, .rename = rename_cb, .rename_user = &calls};
  calls = 0;
  lam_load_report rep;
  cr_assert_eq(lam_vars_load(v, tu_tmp("b.st"), &lo, &rep), LAM_OK, "%s", lam_last_error());
  cr_assert_eq(calls, 4);
  cr_assert_eq(rep.unexpected_count, 0, "a key the callback skips is not unexpected");
  lam_load_report_free(&rep);
  assert_f32(lam_ptree_get(lam_vars_params(v), "encoder.attn.q.weight"), a, 2);
  assert_f32(lam_ptree_get(lam_vars_params(v), "encoder.attn.key.weight"), b, 2);
  assert_f32(lam_ptree_get(lam_vars_params(v), "encoder.attn.out_proj.weight"), c, 2);
  /* Without the callback the renamed keys are named in the error. */
  lo.rename = NULL;
  tu_assert_status(lam_vars_load(v, tu_tmp("b.st"), &lo, NULL), LAM_ERR_NOT_FOUND,
                   "encoder.attn.query.weight (from bert.encoder.attention.self.query.weight)");
  cr_assert(strstr(lam_last_error(), "pooler.dense.weight"), "%s", lam_last_error());
  /* Two keys renamed onto one. */
  lam_rename_rule both[] = {{"bert.encoder.attention.self.(query|key)", "x", true}};
  lam_load_opts lo2 = {.renames = both, .rename_count = 1, .non_strict = true};
  tu_assert_status(lam_vars_load(v, tu_tmp("b.st"), &lo2, NULL), LAM_ERR_INVALID_ARGUMENT, "both become \"x.weight\"");
  lam_vars_free(v);
  tu_assert_no_leak(ctx, mk);
  lam_ctx_free(ctx);
  tu_remove_tmpdir();
}

/* ---- transforms ------------------------------------------------------------------ */

Test(load, gpt2_conv1d_transpose_and_split) {
  tu_make_tmpdir("lamina-load");
  lam_ctx *ctx = tu_ctx();
  tu_mark mk = tu_mark_now(ctx);
  /* Conv1D c_attn: weight [in = 2, out = 3 * 2], W[i][o] = 6 i + o; bias 0..5. */
  float w[12], b[6];
  for (int i = 0; i < 12; i++) w[i] = (float)i;
  for (int i = 0; i < 6; i++) b[i] = (float)i;
  float pw[4] = {9, 8, 7, 6};
  st_item it[] = {{"h.0.attn.c_attn.weight", "F32", 2, {2, 6}, w, sizeof w},
                  {"h.0.attn.c_attn.bias", "F32", 1, {6}, b, sizeof b},
                  {"h.0.attn.c_proj.weight", "F32", 2, {2, 2}, pw, sizeof pw}};
  write_st(tu_tmp("g.st"), it, 3);
  lam_ptree *p = lam_ptree_dict();
  const char *names[] = {"q_proj", "k_proj", "v_proj", "out_proj"};
  for (int i = 0; i < 4; i++) {
    char k[64];
    lam_tensor *z = lam_tensor_zeros(ctx, LAM_F32, 2, (int64_t[]){2, 2});
    snprintf(k, sizeof k, "h.0.attn.%s.weight", names[i]);
    lam_ptree_set(p, k, z);
    lam_tensor_free(z);
    if (i == 3) break;
    z = lam_tensor_zeros(ctx, LAM_F32, 1, (int64_t[]){2});
    snprintf(k, sizeof k, "h.0.attn.%s.bias", names[i]);
    lam_ptree_set(p, k, z);
    lam_tensor_free(z);
  }
  lam_vars *v = lam_vars_create(p, NULL, LAM_F32);
  const char *wi[] = {"q_proj.weight", "k_proj.weight", "v_proj.weight"};
  const char *bi[] = {"q_proj.bias", "k_proj.bias", "v_proj.bias"};
  lam_load_transform tr[] = {{.key = "c_attn.weight", .transpose = true, .split_axis = 0, .split_count = 3, .split_into = wi},
                             {.key = "c_attn.bias", .split_count = 3, .split_into = bi},
                             {.key = "out_proj.weight", .transpose = true}}; /* after renaming */
  lam_rename_rule rr[] = {{"h\\.([0-9]+)\\.attn\\.c_proj", "h.\\1.attn.out_proj", true}};
  lam_load_opts lo = {.transforms = tr, .transform_count = 3, .renames = rr, .rename_count = 1};
  cr_assert_eq(lam_vars_load(v, tu_tmp("g.st"), &lo, NULL), LAM_OK, "%s", lam_last_error());
  /* Transposed: T[o][i] = 6 i + o; q rows 0-1, k rows 2-3, v rows 4-5. */
  lam_ptree *pp = lam_vars_params(v);
  assert_f32(lam_ptree_get(pp, "h.0.attn.q_proj.weight"), (float[]){0, 6, 1, 7}, 4);
  assert_f32(lam_ptree_get(pp, "h.0.attn.k_proj.weight"), (float[]){2, 8, 3, 9}, 4);
  assert_f32(lam_ptree_get(pp, "h.0.attn.v_proj.weight"), (float[]){4, 10, 5, 11}, 4);
  assert_f32(lam_ptree_get(pp, "h.0.attn.q_proj.bias"), (float[]){0, 1}, 2);
  assert_f32(lam_ptree_get(pp, "h.0.attn.v_proj.bias"), (float[]){4, 5}, 2);
  assert_f32(lam_ptree_get(pp, "h.0.attn.out_proj.weight"), (float[]){9, 7, 8, 6}, 4);
  /* Transposing a 1-D tensor or an uneven split is a mismatch naming why. */
  lam_load_transform tb[] = {{.key = "c_attn.bias", .transpose = true}};
  lam_load_opts lb = {.transforms = tb, .transform_count = 1, .non_strict = true};
  tu_assert_status(lam_vars_load(v, tu_tmp("g.st"), &lb, NULL), LAM_ERR_SHAPE, "transpose needs a 2-D tensor");
  const char *four[] = {"a", "b", "c", "d"};
  lam_load_transform tu4[] = {{.key = "h.0.attn.c_attn.bias", .split_count = 4, .split_into = four}};
  lam_ptree *p4 = lam_ptree_dict();
  lam_tensor *z = lam_tensor_zeros(ctx, LAM_F32, 1, (int64_t[]){1});
  lam_ptree_set(p4, "h.0.attn.a", z);
  lam_tensor_free(z);
  lam_vars *v4 = lam_vars_create(p4, NULL, LAM_F32);
  lam_load_opts l4 = {.transforms = tu4, .transform_count = 1, .non_strict = true};
  tu_assert_status(lam_vars_load(v4, tu_tmp("g.st"), &l4, NULL), LAM_ERR_SHAPE, "does not divide evenly");
  lam_vars_free(v4);
  lam_vars_free(v);
  tu_assert_no_leak(ctx, mk);
  lam_ctx_free(ctx);
  tu_remove_tmpdir();
}

/* nn.MultiheadAttention stores q, k, v fused as in_proj_weight [3E, E] and
 * in_proj_bias [3E]; lamina's multi-head attention has q_proj/k_proj/v_proj. */
Test(load, multihead_attention_in_proj_split) {
  tu_make_tmpdir("lamina-load");
  lam_ctx *ctx = tu_ctx();
  tu_mark mk = tu_mark_now(ctx);
  enum { E = 4 };
  float w[3 * E * E], b[3 * E], ow[E * E], ob[E];
  for (int i = 0; i < 3 * E * E; i++) w[i] = (float)i / 8;
  for (int i = 0; i < 3 * E; i++) b[i] = (float)-i;
  for (int i = 0; i < E * E; i++) ow[i] = (float)i;
  for (int i = 0; i < E; i++) ob[i] = 1;
  st_item it[] = {{"attn.in_proj_weight", "F32", 2, {3 * E, E}, w, sizeof w},
                  {"attn.in_proj_bias", "F32", 1, {3 * E}, b, sizeof b},
                  {"attn.out_proj.weight", "F32", 2, {E, E}, ow, sizeof ow},
                  {"attn.out_proj.bias", "F32", 1, {E}, ob, sizeof ob}};
  write_st(tu_tmp("mha.st"), it, 4);
  lam_layer *attn = lam_nn_multi_head_attention(E, 2, NULL);
  lam_ptree *params = NULL;
  lam_vars *inner = NULL;
  cr_assert_eq(lam_layer_init(attn, ctx, lam_rng_key_make(2), LAM_F32, &inner), LAM_OK);
  params = lam_ptree_dict();
  lam_ptree_set_subtree(params, "attn", lam_ptree_copy(lam_vars_params(inner)));
  lam_vars *v = lam_vars_create(params, NULL, LAM_F32);
  const char *wi[] = {"q_proj.weight", "k_proj.weight", "v_proj.weight"};
  const char *bi[] = {"q_proj.bias", "k_proj.bias", "v_proj.bias"};
  lam_load_transform tr[] = {{.key = "in_proj_weight", .split_count = 3, .split_into = wi},
                             {.key = "in_proj_bias", .split_count = 3, .split_into = bi}};
  lam_load_opts lo = {.transforms = tr, .transform_count = 2};
  cr_assert_eq(lam_vars_load(v, tu_tmp("mha.st"), &lo, NULL), LAM_OK, "%s", lam_last_error());
  assert_f32(lam_ptree_get(lam_vars_params(v), "attn.q_proj.weight"), w, E * E);
  assert_f32(lam_ptree_get(lam_vars_params(v), "attn.k_proj.weight"), w + E * E, E * E);
  assert_f32(lam_ptree_get(lam_vars_params(v), "attn.v_proj.weight"), w + 2 * E * E, E * E);
  assert_f32(lam_ptree_get(lam_vars_params(v), "attn.v_proj.bias"), b + 2 * E, E);
  assert_f32(lam_ptree_get(lam_vars_params(v), "attn.out_proj.weight"), ow, E * E);
  /* Split along axis 1 too: [2, 6] into three [2, 2]. */
  float m6[12];
  for (int i = 0; i < 12; i++) m6[i] = (float)i;
  st_item s6[] = {{"m", "F32", 2, {2, 6}, m6, sizeof m6}};
  write_st(tu_tmp("m6.st"), s6, 1);
  const char *abc[] = {"a", "b", "c"};
  lam_ptree *p6 = lam_ptree_dict();
  for (int i = 0; i < 3; i++) {
    lam_tensor *z = lam_tensor_zeros(ctx, LAM_F32, 2, (int64_t[]){2, 2});
    lam_ptree_set(p6, abc[i], z);
    lam_tensor_free(z);
  }
  lam_vars *v6 = lam_vars_create(p6, NULL, LAM_F32);
  lam_load_transform t6[] = {{.key = "m", .split_axis = 1, .split_count = 3, .split_into = abc}};
  lam_load_opts l6 = {.transforms = t6, .transform_count = 1};
  cr_assert_eq(lam_vars_load(v6, tu_tmp("m6.st"), &l6, NULL), LAM_OK, "%s", lam_last_error());
  assert_f32(lam_ptree_get(p6, "b"), (float[]){2, 3, 8, 9}, 4);
  lam_vars_free(v6);
  lam_vars_free(v);
  lam_vars_free(inner);
  lam_layer_free(attn);
  tu_assert_no_leak(ctx, mk);
  lam_ctx_free(ctx);
  tu_remove_tmpdir();
}

/* ---- sources: a tree, shards ------------------------------------------------------------ */

Test(load, from_tree_and_sharded_index) {
  tu_make_tmpdir("lamina-load");
  lam_ctx *ctx = tu_ctx();
  tu_mark mk = tu_mark_now(ctx);
  lam_layer *m = lin_bn();
  lam_vars *v = NULL;
  cr_assert_eq(lam_layer_init(m, ctx, lam_rng_key_make(1), LAM_F32, &v), LAM_OK);
  write_lin_bn(tu_tmp("m.st"), NULL, false);
  lam_ptree *tree = NULL;
  lam_load_opts pre = {.prefix = "x."};
  cr_assert_eq(lam_safetensors_load(ctx, tu_tmp("m.st"), NULL, &tree, NULL), LAM_OK, "%s", lam_last_error());
  /* In memory: the tree (I64 read as i32) loads the same, and is not changed. */
  cr_assert_eq(lam_vars_load_tree(v, tree, NULL, NULL), LAM_OK, "%s", lam_last_error());
  check_lin_bn_loaded(v);
  cr_assert_eq(lam_ptree_leaf_count(tree), 7);
  lam_load_report rep;
  tu_assert_status(lam_vars_load_tree(v, tree, &pre, &rep), LAM_ERR_NOT_FOUND, "lam_vars_load_tree");
  cr_assert_eq(rep.missing_count, 7);
  lam_load_report_free(&rep);
  /* Two shards and an index. */
  lam_ptree *s1 = lam_ptree_dict(), *s2 = lam_ptree_dict();
  for (int i = 0; i < 7; i++) {
    const char *path;
    lam_tensor *t;
    lam_ptree_leaf(tree, i, &path, &t);
    lam_ptree_set(i < 3 ? s1 : s2, path, t);
  }
  cr_assert_eq(lam_safetensors_save(tu_tmp("model-00001-of-00002.safetensors"), s1, NULL), LAM_OK);
  cr_assert_eq(lam_safetensors_save(tu_tmp("model-00002-of-00002.safetensors"), s2, NULL), LAM_OK);
  FILE *f = fopen(tu_tmp("model.safetensors.index.json"), "w");
  fprintf(f, "{\"metadata\": {\"total_size\": 100}, \"weight_map\": {");
  for (int i = 0; i < 7; i++) {
    const char *path;
    lam_ptree_leaf(tree, i, &path, NULL);
    fprintf(f, "%s\"%s\": \"model-0000%d-of-00002.safetensors\"", i ? ", " : "", path, i < 3 ? 1 : 2);
  }
  fprintf(f, "}}\n");
  fclose(f);
  lam_vars *v2 = NULL;
  cr_assert_eq(lam_layer_init(m, ctx, lam_rng_key_make(3), LAM_F32, &v2), LAM_OK);
  cr_assert_eq(lam_vars_load(v2, tu_tmp("model.safetensors.index.json"), NULL, NULL), LAM_OK, "%s",
               lam_last_error());
  check_lin_bn_loaded(v2);
  /* An index that puts a key in the wrong shard, or names a missing shard. */
  f = fopen(tu_tmp("bad.index.json"), "w");
  fprintf(f, "{\"weight_map\": {\"0.weight\": \"model-00002-of-00002.safetensors\"}}");
  fclose(f);
  tu_assert_status(lam_vars_load(v2, tu_tmp("bad.index.json"), NULL, NULL), LAM_ERR_FORMAT, "does not hold it");
  f = fopen(tu_tmp("gone.index.json"), "w");
  fprintf(f, "{\"weight_map\": {\"0.weight\": \"nope.safetensors\"}}");
  fclose(f);
  tu_assert_status(lam_vars_load(v2, tu_tmp("gone.index.json"), NULL, NULL), LAM_ERR_IO, "nope.safetensors");
  f = fopen(tu_tmp("junk.index.json"), "w");
  fprintf(f, "[1, 2]");
  fclose(f);
  tu_assert_status(lam_vars_load(v2, tu_tmp("junk.index.json"), NULL, NULL), LAM_ERR_FORMAT, "weight_map");
  lam_ptree_free(s1);
  lam_ptree_free(s2);
  lam_ptree_free(tree);
  lam_vars_free(v);
  lam_vars_free(v2);
  lam_layer_free(m);
  tu_assert_no_leak(ctx, mk);
  lam_ctx_free(ctx);
  tu_remove_tmpdir();
}

/* ---- saving -------------------------------------------------------------------------- */

Test(load, save_writes_a_state_dict_that_loads_back) {
  tu_make_tmpdir("lamina-load");
  lam_ctx *ctx = tu_ctx();
  tu_mark mk = tu_mark_now(ctx);
  lam_layer *m = lin_bn();
  lam_vars *v = NULL, *v2 = NULL;
  cr_assert_eq(lam_layer_init(m, ctx, lam_rng_key_make(1), LAM_F32, &v), LAM_OK);
  write_lin_bn(tu_tmp("m.st"), NULL, false);
  cr_assert_eq(lam_vars_load(v, tu_tmp("m.st"), NULL, NULL), LAM_OK);
  cr_assert_eq(lam_vars_save(v, tu_tmp("out.st"), NULL), LAM_OK, "%s", lam_last_error());
  lam_ptree *t = NULL;
  cr_assert_eq(lam_safetensors_load(ctx, tu_tmp("out.st"), NULL, &t, NULL), LAM_OK);
  const char *want[] = {"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                        "1.num_batches_tracked"};
  cr_assert_eq(lam_ptree_leaf_count(t), 7);
  for (int i = 0; i < 7; i++) cr_assert(lam_ptree_get(t, want[i]), "%s", want[i]);
  lam_ptree_free(t);
  cr_assert_eq(lam_layer_init(m, ctx, lam_rng_key_make(9), LAM_F32, &v2), LAM_OK);
  cr_assert_eq(lam_vars_load(v2, tu_tmp("out.st"), NULL, NULL), LAM_OK, "%s", lam_last_error());
  check_lin_bn_loaded(v2);
  tu_assert_status(lam_vars_save(NULL, tu_tmp("x.st"), NULL), LAM_ERR_NULL, "lam_vars_save: vars");
  tu_assert_status(lam_vars_save(v, NULL, NULL), LAM_ERR_NULL, "lam_vars_save: path");
  lam_vars_free(v);
  lam_vars_free(v2);
  lam_layer_free(m);
  tu_assert_no_leak(ctx, mk);
  lam_ctx_free(ctx);
  tu_remove_tmpdir();
}

/* ---- bad input --------------------------------------------------------------------------- */

Test(load, bad_input) {
  tu_make_tmpdir("lamina-load");
  lam_ctx *ctx = tu_ctx();
  tu_mark mk = tu_mark_now(ctx);
  const char *keys[] = {"a"};
  lam_vars *v = vars_of(ctx, keys, 1, 2);
  float a[2] = {1, 2};
  st_item it[] = {{"a", "F32", 1, {2}, a, 8}};
  write_st(tu_tmp("a.st"), it, 1);
  lam_load_report rep = {.missing_count = 99};
  tu_assert_status(lam_vars_load(NULL, tu_tmp("a.st"), NULL, &rep), LAM_ERR_NULL, "lam_vars_load: vars is NULL");
  cr_assert(rep.missing_count == 0 && !rep.missing, "report zeroed on early failure");
  tu_assert_status(lam_vars_load(v, NULL, NULL, NULL), LAM_ERR_NULL, "lam_vars_load: path is NULL");
  tu_assert_status(lam_vars_load_tree(v, NULL, NULL, NULL), LAM_ERR_NULL, "lam_vars_load_tree: src is NULL");
  tu_assert_status(lam_vars_load_tree(NULL, NULL, NULL, NULL), LAM_ERR_NULL, "lam_vars_load_tree: vars is NULL");
  tu_assert_status(lam_vars_load(v, tu_tmp("none.st"), NULL, NULL), LAM_ERR_IO, "none.st");
  lam_load_opts o = {.rename_count = 1};
  tu_assert_status(lam_vars_load(v, tu_tmp("a.st"), &o, NULL), LAM_ERR_INVALID_ARGUMENT, "lam_vars_load: rename_count 1");
  o = (lam_load_opts){.rename_count = -1, .renames = (lam_rename_rule[]){{"a", "b", false}}};
  tu_assert_status(lam_vars_load(v, tu_tmp("a.st"), &o, NULL), LAM_ERR_INVALID_ARGUMENT, "rename_count -1");
  o = (lam_load_opts){.rename_count = 1, .renames = (lam_rename_rule[]){{"a", NULL, false}}};
  tu_assert_status(lam_vars_load(v, tu_tmp("a.st"), &o, NULL), LAM_ERR_INVALID_ARGUMENT, "renames[0].to is NULL");
  o = (lam_load_opts){.rename_count = 1, .renames = (lam_rename_rule[]){{"(a", "b", true}}};
  tu_assert_status(lam_vars_load(v, tu_tmp("a.st"), &o, NULL), LAM_ERR_INVALID_ARGUMENT,
                   "not a valid regular expression");
  o = (lam_load_opts){.transform_count = 1};
  tu_assert_status(lam_vars_load(v, tu_tmp("a.st"), &o, NULL), LAM_ERR_INVALID_ARGUMENT, "transform_count 1");
  o = (lam_load_opts){.transform_count = 1, .transforms = (lam_load_transform[]){{.key = "a", .split_count = 1}}};
  tu_assert_status(lam_vars_load(v, tu_tmp("a.st"), &o, NULL), LAM_ERR_INVALID_ARGUMENT, "split_count 1");
  o = (lam_load_opts){.transform_count = 1, .transforms = (lam_load_transform[]){{.key = "a"}}};
  tu_assert_status(lam_vars_load(v, tu_tmp("a.st"), &o, NULL), LAM_ERR_INVALID_ARGUMENT, "neither transposes");
  o = (lam_load_opts){.transform_count = 1,
                      .transforms = (lam_load_transform[]){{.key = "a", .split_count = 2, .split_axis = 9,
                                                            .split_into = (const char *[]){"x", "y"}}}};
  tu_assert_status(lam_vars_load(v, tu_tmp("a.st"), &o, NULL), LAM_ERR_INVALID_ARGUMENT, "split_axis 9");
  o = (lam_load_opts){.transform_count = 1,
                      .transforms = (lam_load_transform[]){{.key = "a", .split_count = 2,
                                                            .split_into = (const char *[]){"x", NULL}}}};
  tu_assert_status(lam_vars_load(v, tu_tmp("a.st"), &o, NULL), LAM_ERR_INVALID_ARGUMENT, "split_into[1] is NULL");
  /* A good load still works after all of these. */
  cr_assert_eq(lam_vars_load(v, tu_tmp("a.st"), NULL, NULL), LAM_OK, "%s", lam_last_error());
  assert_f32(lam_ptree_get(lam_vars_params(v), "a"), a, 2);
  lam_vars_free(v);
  tu_assert_no_leak(ctx, mk);
  lam_ctx_free(ctx);
  tu_remove_tmpdir();
}
