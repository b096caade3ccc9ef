/* test_safetensors.c: safetensors reading and writing: bit-exact round
 * trips for every dtype, f16/bf16 conversion, a file written by a Python
 * writer (tests/data/st_python.safetensors), loading by key into a model
 * with complete error lists, prefixes, hand-made corrupt headers with their
 * messages, a fuzz of byte flips and truncations, and bad input. */
#include <lamina/io.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include "testutil.h"

static int count_files(void) {
  int n = 0;
  DIR *d = opendir(tu_tmp("."));
  struct dirent *e;
  while (d && (e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
  if (d) closedir(d);
  return n;
}

static unsigned char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  cr_assert(f, "open %s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc((size_t)n + 1);
  cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  *len = (size_t)n;
  return b;
}

static void write_file(const char *path, const void *b, size_t n) {
  FILE *f = fopen(path, "wb");
  cr_assert(f);
  cr_assert_eq(fwrite(b, 1, n, f), n);
  fclose(f);
}

/* Writes 8-byte length + header + data. */
static void write_raw(const char *path, const char *header, const void *data, size_t dlen) {
  size_t hl = strlen(header);
  unsigned char *b = malloc(8 + hl + dlen + 1);
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)hl >> (8 * i));
  memcpy(b + 8, header, hl);
  if (dlen) memcpy(b + 8 + hl, data, dlen);
  write_file(path, b, 8 + hl + dlen);
  free(b);
}

static lam_tensor *rand_bits(lam_ctx *ctx, tu_rng *r, lam_dtype dt, int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  size_t bytes = (size_t)n * lam_dtype_size(dt);
  unsigned char *b = malloc(bytes);
  for (size_t i = 0; i < bytes; i++) b[i] = (unsigned char)tu_next(r);
  lam_tensor *t = lam_tensor_from_host(ctx, dt, ndim, shape, b);
  free(b);
  cr_assert(t, "%s", lam_last_error());
  return t;
}

/* ---- round trips ------------------------------------------------------------ */

Test(safetensors, roundtrip_bit_exact_every_dtype) {
  tu_make_tmpdir("lamina-st");
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(5);
  tu_mark m = tu_mark_now(ctx);
  lam_ptree *tree = lam_ptree_dict();
  lam_dtype dts[] = {LAM_F32, LAM_F64, LAM_F16, LAM_I32, LAM_U8};
  const char *names[] = {"f32", "f64", "f16", "i32", "u8"};
  const int64_t shapes[][3] = {{1, 1, 1}, {3, 1, 7}, {33, 1, 1}, {1023, 1, 1}, {2, 3, 5}};
  int nt = 0;
  for (int d = 0; d < 5; d++) {
    if (dts[d] == LAM_F64 && !lam_ctx_device(ctx)->fp64) continue;
    for (int s = 0; s < 5; s++) {
      char path[64];
      snprintf(path, sizeof path, "%s.layer%d.weight", names[d], s);
      lam_tensor *t = rand_bits(ctx, &r, dts[d], s == 4 ? 3 : s == 1 ? 3 : 1, shapes[s]);
      cr_assert_eq(lam_ptree_set(tree, path, t), LAM_OK);
      lam_tensor_free(t);
      nt++;
    }
  }
  /* A 0-dim scalar and a list subtree. */
  lam_tensor *sc = lam_tensor_scalar(ctx, LAM_F32, -1.25);
  lam_ptree_set(tree, "scalar", sc);
  lam_ptree *list = lam_ptree_list();
  lam_ptree_append(list, sc);
  lam_ptree_append(list, sc);
  lam_ptree_set_subtree(tree, "blocks", list);
  lam_tensor_free(sc);
  nt += 3;
  lam_metadata *meta = lam_metadata_create();
  lam_metadata_set(meta, "format", "pt");
  lam_metadata_set(meta, "quote\"key", "line\nbreak \\ and \"quotes\" \xc3\xa9");
  lam_save_opts so = lam_save_defaults();
  so.metadata = meta;
  cr_assert_eq(lam_safetensors_save(tu_tmp("a.safetensors"), tree, &so), LAM_OK, "%s", lam_last_error());
  cr_assert_eq(count_files(), 1, "no temporary file left behind");
  lam_ptree *back = NULL;
  lam_metadata *mback = NULL;
  cr_assert_eq(lam_safetensors_load(ctx, tu_tmp("a.safetensors"), NULL, &back, &mback), LAM_OK, "%s",
               lam_last_error());
  cr_assert_eq(lam_ptree_leaf_count(back), nt);
  for (int i = 0; i < nt; i++) {
    const char *p1, *p2;
    lam_tensor *a, *b;
    lam_ptree_leaf(tree, i, &p1, &a);
    lam_ptree_leaf(back, i, &p2, &b);
    cr_assert_str_eq(p1, p2, "leaf order is kept");
    cr_assert(tu_bits_equal(a, b), "%s differs after the round trip", p1);
  }
  cr_assert_eq(lam_tensor_ndim(lam_ptree_get(back, "scalar")), 0);
  cr_assert_eq(lam_metadata_count(mback), 2);
  cr_assert_str_eq(lam_metadata_get(mback, "format"), "pt");
  cr_assert_str_eq(lam_metadata_get(mback, "quote\"key"), "line\nbreak \\ and \"quotes\" \xc3\xa9");
  /* The header length is a multiple of 8 and each tensor is aligned. */
  size_t len;
  unsigned char *raw = read_file(tu_tmp("a.safetensors"), &len);
  uint64_t hl = 0;
  for (int i = 7; i >= 0; i--) hl = (hl << 8) | raw[i];
  cr_assert_eq(hl % 8, 0);
  cr_assert_eq(raw[8], '{');
  free(raw);
  /* Saving again over the same path replaces it. */
  cr_assert_eq(lam_safetensors_save(tu_tmp("a.safetensors"), back, &so), LAM_OK, "%s", lam_last_error());
  cr_assert_eq(count_files(), 1);
  lam_metadata_free(mback);
  lam_metadata_free(meta);
  lam_ptree_free(back);
  lam_ptree_free(tree);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
  tu_remove_tmpdir();
}

/* f32 leaves stored as F16 / BF16: round to nearest even, and a file of
 * halves survives load (to f32) and save (to halves) bit for bit. */
Test(safetensors, half_and_bfloat16_conversion) {
  tu_make_tmpdir("lamina-st");
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  float v[] = {1.0f, 0.1f, -2.5f, 65504.0f, 65520.0f, 6e-8f, 1e-10f, -0.0f, INFINITY, 3.14159265f,
               1e30f, 0.0078125f};
  const float want_h[] = {1.0f, 0.0999755859375f, -2.5f, 65504.0f, INFINITY, 5.9604644775390625e-8f,
                          0.0f, -0.0f, INFINITY, 3.140625f, INFINITY, 0.0078125f};
  const float want_b[] = {1.0f, 0.10009765625f, -2.5f, 65536.0f, 65536.0f, 6.0070306e-8f, 1.0004442e-10f,
                          -0.0f, INFINITY, 3.140625f, 1.00025555e30f, 0.0078125f};
  int64_t n = sizeof v / sizeof v[0];
  lam_tensor *t = lam_tensor_from_host(ctx, LAM_F32, 1, &n, v);
  lam_ptree *tree = lam_ptree_dict();
  lam_ptree_set(tree, "x", t);
  lam_file_dtype fds[] = {LAM_FILE_F16, LAM_FILE_BF16};
  for (int k = 0; k < 2; k++) {
    lam_save_opts so = lam_save_defaults();
    so.float_dtype = fds[k];
    cr_assert_eq(lam_safetensors_save(tu_tmp("h.st"), tree, &so), LAM_OK, "%s", lam_last_error());
    lam_ptree *back;
    cr_assert_eq(lam_safetensors_load(ctx, tu_tmp("h.st"), NULL, &back, NULL), LAM_OK, "%s", lam_last_error());
    lam_tensor *b = lam_ptree_get(back, "x");
    if (lam_tensor_dtype(b) == LAM_F16) {
      lam_tensor *c = lam_tensor_cast(b, LAM_F32);
      lam_ptree_set(back, "x", c);
      lam_tensor_free(c);
      b = lam_ptree_get(back, "x");
    }
    float *got = tu_read_f32(b);
    for (int64_t i = 0; i < n; i++) {
      float w = k == 0 ? want_h[i] : want_b[i];
      cr_assert(got[i] == w || fabsf(got[i] - w) <= 1e-6f * fabsf(w) || (isnan(w) && isnan(got[i])),
                "%s element %lld: %.9g -> %.9g, want %.9g", k ? "bf16" : "f16", (long long)i, v[i],
                got[i], w);
      if (w == 0) cr_assert_eq(signbit(got[i]), signbit(w));
    }
    free(got);
    /* Bytes of halves -> f32 -> halves are identical. */
    size_t l1, l2;
    unsigned char *a1 = read_file(tu_tmp("h.st"), &l1);
    cr_assert_eq(lam_safetensors_save(tu_tmp("h2.st"), back, &so), LAM_OK, "%s", lam_last_error());
    unsigned char *a2 = read_file(tu_tmp("h2.st"), &l2);
    cr_assert(l1 == l2 && memcmp(a1, a2, l1) == 0, "half file not reproduced bit for bit");
    free(a1);
    free(a2);
    lam_ptree_free(back);
  }
  /* f64 on the way out and back. */
  if (lam_ctx_device(ctx)->fp64) {
    lam_save_opts so = lam_save_defaults();
    so.float_dtype = LAM_FILE_F64;
    cr_assert_eq(lam_safetensors_save(tu_tmp("d.st"), tree, &so), LAM_OK);
    lam_ptree *back;
    cr_assert_eq(lam_safetensors_load(ctx, tu_tmp("d.st"), NULL, &back, NULL), LAM_OK);
    cr_assert_eq(lam_tensor_dtype(lam_ptree_get(back, "x")), LAM_F64);
    cr_assert_eq(lam_ptree_load_into(tree, tu_tmp("d.st"), NULL), LAM_OK, "%s", lam_last_error());
    cr_assert(tu_bits_equal(t, lam_ptree_get(tree, "x")));
    lam_ptree_free(back);
  }
  lam_ptree_free(tree);
  lam_tensor_free(t);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
  tu_remove_tmpdir();
}

/* ---- a file from Python --------------------------------------------------------- */

Test(safetensors, python_written_file_loads) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  lam_ptree *t = NULL;
  lam_metadata *meta = NULL;
  cr_assert_eq(lam_safetensors_load(ctx, tu_data_path("st_python.safetensors"), NULL, &t, &meta), LAM_OK,
               "%s", lam_last_error());
  cr_assert_str_eq(lam_metadata_get(meta, "format"), "pt");
  cr_assert_str_eq(lam_metadata_get(meta, "note"), "hello \"world\" \xc3\xa9");
  float *f = tu_read_f32(lam_ptree_get(t, "f32"));
  cr_assert_eq(lam_tensor_dim(lam_ptree_get(t, "f32"), 0), 2);
  for (int i = 0; i < 6; i++) cr_assert_eq(f[i], i * 0.25f - 0.5f);
  free(f);
  lam_tensor *f64 = lam_ptree_get(t, "f64");
  if (lam_ctx_device(ctx)->fp64) {
    double *d = tu_read_f64(f64);
    cr_assert(d[0] == 1.0 / 3.0 && d[1] == -1e300 && d[2] == 2.5);
    free(d);
  }
  /* f16 and bf16 as f32 (or f16 where the device has it) against f64 copies. */
  const char *halves[] = {"f16", "bf16"};
  for (int k = 0; k < 2; k++) {
    lam_tensor *h = lam_ptree_get(t, halves[k]);
    cr_assert(h);
    lam_tensor *h32 = lam_tensor_cast(h, LAM_F32);
    float *hv = tu_read_f32(h32);
    char e[32];
    snprintf(e, sizeof e, "expect.%s", halves[k]);
    lam_tensor *et = lam_ptree_get(t, e);
    int64_t n = lam_tensor_numel(et);
    cr_assert_eq(n, lam_tensor_numel(h));
    if (lam_ctx_device(ctx)->fp64) {
      double *ev = tu_read_f64(et);
      for (int64_t i = 0; i < n; i++)
        cr_assert_eq((double)hv[i], ev[i], "%s[%lld]: %.9g vs %.9g", halves[k], (long long)i, hv[i], ev[i]);
      free(ev);
    }
    free(hv);
    lam_tensor_free(h32);
  }
  int32_t iv[5];
  cr_assert_eq(lam_tensor_to_host(lam_ptree_get(t, "i32"), iv, sizeof iv), LAM_OK);
  cr_assert(iv[0] == INT32_MIN && iv[1] == -1 && iv[2] == 0 && iv[3] == 7 && iv[4] == INT32_MAX);
  unsigned char u[3], bl[2];
  cr_assert_eq(lam_tensor_to_host(lam_ptree_get(t, "u8"), u, 3), LAM_OK);
  cr_assert(u[0] == 0 && u[1] == 128 && u[2] == 255);
  cr_assert_eq(lam_tensor_dtype(lam_ptree_get(t, "bool")), LAM_U8);
  cr_assert_eq(lam_tensor_to_host(lam_ptree_get(t, "bool"), bl, 2), LAM_OK);
  cr_assert(bl[0] == 1 && bl[1] == 0);
  double s;
  cr_assert_eq(lam_tensor_ndim(lam_ptree_get(t, "scalar")), 0);
  cr_assert_eq(lam_tensor_item(lam_ptree_get(t, "scalar"), &s), LAM_OK);
  cr_assert_eq(s, 3.5);
  cr_assert(lam_ptree_subtree(t, "nested.layer.0"), "dicts from dotted names");
  f = tu_read_f32(lam_ptree_get(t, "nested.layer.0.weight"));
  cr_assert(f[0] == 1 && f[3] == 4);
  free(f);
  lam_metadata_free(meta);
  lam_ptree_free(t);
  /* Metadata alone, and a prefix. */
  cr_assert_eq(lam_safetensors_read_metadata(tu_data_path("st_python.safetensors"), &meta), LAM_OK);
  cr_assert_eq(lam_metadata_count(meta), 2);
  lam_metadata_free(meta);
  lam_load_opts lo = lam_load_defaults();
  lo.prefix = "nested.";
  cr_assert_eq(lam_safetensors_load(ctx, tu_data_path("st_python.safetensors"), &lo, &t, NULL), LAM_OK);
  cr_assert_eq(lam_ptree_leaf_count(t), 1);
  cr_assert(lam_ptree_get(t, "layer.0.weight"));
  lam_ptree_free(t);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- load_into --------------------------------------------------------------------- */

static lam_ptree *model(lam_ctx *ctx) {
  lam_ptree *t = lam_ptree_dict();
  lam_tensor *a = lam_tensor_zeros(ctx, LAM_F32, 2, (int64_t[]){2, 3});
  lam_tensor *b = lam_tensor_zeros(ctx, LAM_F32, 1, (int64_t[]){4});
  lam_tensor *c = lam_tensor_zeros(ctx, LAM_F32, 1, (int64_t[]){2});
  lam_tensor *d = lam_tensor_zeros(ctx, LAM_I32, 1, (int64_t[]){2});
  lam_ptree_set(t, "a", a);
  lam_ptree_set(t, "b", b);
  lam_ptree_set(t, "c.d", c);
  lam_ptree_set(t, "c.n", d);
  lam_tensor_free(a);
  lam_tensor_free(b);
  lam_tensor_free(c);
  lam_tensor_free(d);
  return t;
}

Test(safetensors, load_into_lists_every_problem) {
  tu_make_tmpdir("lamina-st");
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  lam_ptree *mod = model(ctx);
  /* A file with a (right), b (wrong shape), c.n (float: wrong kind), e and
   * f.g (unexpected); c.d is missing. */
  lam_ptree *file = lam_ptree_dict();
  float av[6] = {1, 2, 3, 4, 5, 6};
  lam_tensor *a = lam_tensor_from_host(ctx, LAM_F32, 2, (int64_t[]){2, 3}, av);
  lam_tensor *b5 = lam_tensor_zeros(ctx, LAM_F32, 1, (int64_t[]){5});
  lam_tensor *nf = lam_tensor_zeros(ctx, LAM_F32, 1, (int64_t[]){2});
  lam_ptree_set(file, "a", a);
  lam_ptree_set(file, "b", b5);
  lam_ptree_set(file, "c.n", nf);
  lam_ptree_set(file, "e", a);
  lam_ptree_set(file, "f.g", a);
  cr_assert_eq(lam_safetensors_save(tu_tmp("m.st"), file, NULL), LAM_OK, "%s", lam_last_error());
  lam_status st = lam_ptree_load_into(mod, tu_tmp("m.st"), NULL);
  tu_assert_status(st, LAM_ERR_NOT_FOUND, "1 missing key");
  const char *msg = lam_last_error();
  cr_assert(strstr(msg, "lam_ptree_load_into") && strstr(msg, tu_tmp("m.st")), "%s", msg);
  cr_assert(strstr(msg, "c.d"), "%s", msg);
  cr_assert(strstr(msg, "2 unexpected keys") && strstr(msg, "e") && strstr(msg, "f.g"), "%s", msg);
  cr_assert(strstr(msg, "2 mismatches") && strstr(msg, "b (file F32 [5], model f32 [4])"), "%s", msg);
  cr_assert(strstr(msg, "c.n (file F32 [2], model i32 [2])"), "%s", msg);
  float z[6];
  lam_tensor_to_host(lam_ptree_get(mod, "a"), z, sizeof z);
  cr_assert_eq(z[0], 0, "nothing is written on error");
  /* Non-strict: the shape mismatch is still an error. */
  lam_load_opts lo = lam_load_defaults();
  lo.non_strict = true;
  tu_assert_status(lam_ptree_load_into(mod, tu_tmp("m.st"), &lo), LAM_ERR_SHAPE, "b (file F32 [5]");
  cr_assert(!strstr(lam_last_error(), "missing"), "%s", lam_last_error());
  /* Fix b and c.n: non-strict loads what matches. */
  lam_tensor *b4 = lam_tensor_full(ctx, LAM_F32, 1, (int64_t[]){4}, 7);
  lam_ptree_set(file, "b", b4);
  lam_ptree_remove(file, "c");
  cr_assert_eq(lam_safetensors_save(tu_tmp("m.st"), file, NULL), LAM_OK);
  cr_assert_eq(lam_ptree_load_into(mod, tu_tmp("m.st"), &lo), LAM_OK, "%s", lam_last_error());
  lam_tensor_to_host(lam_ptree_get(mod, "a"), z, sizeof z);
  cr_assert(z[0] == 1 && z[5] == 6);
  tu_assert_status(lam_ptree_load_into(mod, tu_tmp("m.st"), NULL), LAM_ERR_NOT_FOUND, "c.d");
  /* The leaves keep their identity (loaded in place). */
  lam_tensor *held = lam_ptree_get(mod, "b");
  float bv[4];
  lam_tensor_to_host(held, bv, sizeof bv);
  cr_assert_eq(bv[3], 7);
  lam_ptree_free(file);
  lam_tensor *all[] = {a, b5, nf, b4};
  for (int i = 0; i < 4; i++) lam_tensor_free(all[i]);
  lam_ptree_free(mod);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
  tu_remove_tmpdir();
}

Test(safetensors, load_into_names_all_missing_keys_and_converts) {
  tu_make_tmpdir("lamina-st");
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  lam_ptree *mod = lam_ptree_dict();
  lam_tensor *z = lam_tensor_zeros(ctx, LAM_F32, 1, (int64_t[]){1});
  for (int i = 0; i < 40; i++) {
    char p[32];
    snprintf(p, sizeof p, "layers.%d.weight", i);
    lam_ptree_set(mod, p, z);
  }
  lam_ptree *empty = lam_ptree_dict();
  cr_assert_eq(lam_safetensors_save(tu_tmp("e.st"), empty, NULL), LAM_OK);
  tu_assert_status(lam_ptree_load_into(mod, tu_tmp("e.st"), NULL), LAM_ERR_NOT_FOUND, "40 missing keys");
  for (int i = 0; i < 40; i++) {
    char p[32];
    snprintf(p, sizeof p, "layers.%d.weight", i);
    cr_assert(strstr(lam_last_error(), p), "%s not named", p);
  }
  lam_ptree_free(mod);
  lam_ptree_free(empty);
  lam_tensor_free(z);
  /* f16, bf16 and f64 file tensors into f32 leaves, by key with a prefix. */
  mod = lam_ptree_dict();
  lam_tensor *h = lam_tensor_zeros(ctx, LAM_F32, 1, (int64_t[]){6});
  lam_tensor *bf = lam_tensor_zeros(ctx, LAM_F32, 2, (int64_t[]){2, 2});
  lam_tensor *d = lam_tensor_zeros(ctx, LAM_F32, 1, (int64_t[]){3});
  lam_ptree_set(mod, "f16", h);
  lam_ptree_set(mod, "bf16", bf);
  lam_ptree_set(mod, "f64", d);
  lam_load_opts lo = lam_load_defaults();
  lo.non_strict = true;
  cr_assert_eq(lam_ptree_load_into(mod, tu_data_path("st_python.safetensors"), &lo), LAM_OK, "%s",
               lam_last_error());
  float hv[6], bv[4], dv[3];
  lam_tensor_to_host(h, hv, sizeof hv);
  lam_tensor_to_host(bf, bv, sizeof bv);
  lam_tensor_to_host(d, dv, sizeof dv);
  cr_assert(hv[0] == 1 && hv[1] == -2.5f && hv[2] == 0.0999755859375f && hv[3] == 65504 &&
            signbit(hv[5]));
  cr_assert(bv[0] == 1 && bv[1] == -3.140625f && bv[3] == 0.0078125f);
  cr_assert(dv[0] == (float)(1.0 / 3.0) && isinf(dv[1]) && dv[2] == 2.5f);
  /* Prefixed file keys. */
  lam_ptree *file = lam_ptree_dict();
  lam_ptree_set_subtree(file, "model", lam_ptree_copy(mod));
  cr_assert_eq(lam_safetensors_save(tu_tmp("p.st"), file, NULL), LAM_OK);
  lo = lam_load_defaults();
  lo.prefix = "model.";
  cr_assert_eq(lam_ptree_load_into(mod, tu_tmp("p.st"), &lo), LAM_OK, "%s", lam_last_error());
  tu_assert_status(lam_ptree_load_into(mod, tu_tmp("p.st"), NULL), LAM_ERR_NOT_FOUND, "model.f16");
  lam_ptree_free(file);
  lam_ptree_free(mod);
  lam_tensor_free(h);
  lam_tensor_free(bf);
  lam_tensor_free(d);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
  tu_remove_tmpdir();
}

/* ---- corrupt files ------------------------------------------------------------------------ */

Test(safetensors, corrupt_headers_are_format_errors) {
  tu_make_tmpdir("lamina-st");
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  unsigned char data[64] = {0};
  struct { const char *header; size_t dlen; const char *needle; } cases[] = {
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8, "malformed"},
      {"[1,2]", 0, "not a JSON object"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}} xx", 8, "junk"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,16]}}", 8, "outside the 8 data bytes"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "F32 [3] needs"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
       "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlap"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
       "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12, "gap"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 12, "cover 4 of the 12"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1e999],\"data_offsets\":[0,4]}}", 4, "shape entry 0"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "shape entry 0"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, "shape entry 0"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4e999]}}", 4, "data_offsets"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[NaN],\"data_offsets\":[0,4]}}", 4, "malformed"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, "data_offsets"},
      {"{\"a\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "unknown dtype"},
      {"{\"a\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "string \"dtype\""},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
       "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "appears twice"},
      {"{\"__metadata__\":{\"k\":1}}", 0, "not a string"},
      {"{\"__metadata__\":[]}", 0, "__metadata__"},
      {"{\"a\":[1]}", 0, "not an object"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 4,
       "more than the file's"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
       "\"a.b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "does not fit in a tree"},
      {"{\"a..b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "does not fit in a tree"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    write_raw(tu_tmp("c.st"), cases[i].header, data, cases[i].dlen);
    lam_ptree *t = (lam_ptree *)0x1;
    lam_status st = lam_safetensors_load(ctx, tu_tmp("c.st"), NULL, &t, NULL);
    cr_assert(t == NULL, "case %zu: out is NULL on error", i);
    cr_assert_eq(st, LAM_ERR_FORMAT, "case %zu (%s): status %s: %s", i, cases[i].header,
                 lam_status_string(st), lam_last_error());
    cr_assert(strstr(lam_last_error(), cases[i].needle), "case %zu: \"%s\" lacks \"%s\"", i,
              lam_last_error(), cases[i].needle);
    cr_assert(strstr(lam_last_error(), tu_tmp("c.st")), "case %zu: path not named", i);
  }
  /* Bad lengths and short files. */
  write_file(tu_tmp("c.st"), "abc", 3);
  lam_ptree *t;
  tu_assert_status(lam_safetensors_load(ctx, tu_tmp("c.st"), NULL, &t, NULL), LAM_ERR_FORMAT, "too short");
  write_file(tu_tmp("c.st"), "", 0);
  tu_assert_status(lam_safetensors_load(ctx, tu_tmp("c.st"), NULL, &t, NULL), LAM_ERR_FORMAT, "too short");
  unsigned char big[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}'};
  write_file(tu_tmp("c.st"), big, 10);
  tu_assert_status(lam_safetensors_load(ctx, tu_tmp("c.st"), NULL, &t, NULL), LAM_ERR_FORMAT, "header length");
  unsigned char zero[10] = {0, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
  write_file(tu_tmp("c.st"), zero, 10);
  tu_assert_status(lam_safetensors_load(ctx, tu_tmp("c.st"), NULL, &t, NULL), LAM_ERR_FORMAT, "header length 0");
  unsigned char nul[12] = {4, 0, 0, 0, 0, 0, 0, 0, '{', 0, '}', ' '};
  write_file(tu_tmp("c.st"), nul, 12);
  tu_assert_status(lam_safetensors_load(ctx, tu_tmp("c.st"), NULL, &t, NULL), LAM_ERR_FORMAT, "not a JSON object");
  /* The smallest valid file: "{}" padded. */
  write_raw(tu_tmp("c.st"), "{}      ", NULL, 0);
  cr_assert_eq(lam_safetensors_load(ctx, tu_tmp("c.st"), NULL, &t, NULL), LAM_OK, "%s", lam_last_error());
  cr_assert_eq(lam_ptree_leaf_count(t), 0);
  lam_ptree_free(t);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
  tu_remove_tmpdir();
}

Test(safetensors, unsupported_dtypes_and_shapes) {
  tu_make_tmpdir("lamina-st");
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  int64_t i64[2] = {-5, 1LL << 40};
  write_raw(tu_tmp("u.st"), "{\"x\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", i64, 8);
  lam_ptree *t;
  cr_assert_eq(lam_safetensors_load(ctx, tu_tmp("u.st"), NULL, &t, NULL), LAM_OK, "%s", lam_last_error());
  double v;
  cr_assert_eq(lam_tensor_dtype(lam_ptree_get(t, "x")), LAM_I32);
  lam_tensor_item(lam_ptree_get(t, "x"), &v);
  cr_assert_eq(v, -5);
  lam_ptree_free(t);
  write_raw(tu_tmp("u.st"), "{\"x\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}}", i64, 16);
  tu_assert_status(lam_safetensors_load(ctx, tu_tmp("u.st"), NULL, &t, NULL), LAM_ERR_UNSUPPORTED, "does not fit i32");
  write_raw(tu_tmp("u.st"), "{\"x\":{\"dtype\":\"I16\",\"shape\":[2],\"data_offsets\":[0,4]}}", i64, 4);
  tu_assert_status(lam_safetensors_load(ctx, tu_tmp("u.st"), NULL, &t, NULL), LAM_ERR_UNSUPPORTED, "I16");
  write_raw(tu_tmp("u.st"), "{\"x\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[0,0]}}", NULL, 0);
  tu_assert_status(lam_safetensors_load(ctx, tu_tmp("u.st"), NULL, &t, NULL), LAM_ERR_UNSUPPORTED, "[0,3]");
  write_raw(tu_tmp("u.st"), "{\"x\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}",
            i64, 1);
  tu_assert_status(lam_safetensors_load(ctx, tu_tmp("u.st"), NULL, &t, NULL), LAM_ERR_UNSUPPORTED, "9 dims");
  /* Non-strict load_into ignores such extra entries. */
  lam_ptree *mod = lam_ptree_dict();
  lam_tensor *y = lam_tensor_zeros(ctx, LAM_F32, 1, (int64_t[]){1});
  lam_ptree_set(mod, "y", y);
  lam_load_opts lo = lam_load_defaults();
  lo.non_strict = true;
  cr_assert_eq(lam_ptree_load_into(mod, tu_tmp("u.st"), &lo), LAM_OK, "%s", lam_last_error());
  lam_ptree_free(mod);
  lam_tensor_free(y);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
  tu_remove_tmpdir();
}

/* Hundreds of random byte flips and truncations of a small valid file:
 * every call returns a status, never crashes; nothing leaks. */
Test(safetensors, fuzz_flips_and_truncations) {
  tu_make_tmpdir("lamina-st");
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  lam_ptree *tree = lam_ptree_dict();
  lam_tensor *a = lam_tensor_full(ctx, LAM_F32, 2, (int64_t[]){2, 3}, 1.5);
  lam_tensor *b = lam_tensor_full(ctx, LAM_I32, 1, (int64_t[]){3}, -2);
  lam_tensor *c = lam_tensor_full(ctx, LAM_U8, 1, (int64_t[]){5}, 9);
  lam_ptree_set(tree, "enc.a", a);
  lam_ptree_set(tree, "enc.b", b);
  lam_ptree_set(tree, "c", c);
  lam_metadata *meta = lam_metadata_create();
  lam_metadata_set(meta, "k", "v");
  lam_save_opts so = lam_save_defaults();
  so.metadata = meta;
  cr_assert_eq(lam_safetensors_save(tu_tmp("v.st"), tree, &so), LAM_OK);
  size_t len;
  unsigned char *orig = read_file(tu_tmp("v.st"), &len);
  unsigned char *buf = malloc(len + 1);
  tu_rng r = tu_rng_make(2024);
  int iters = tu_small() ? 60 : 400, ok = 0, failed = 0;
  for (int it = 0; it < iters; it++) {
    memcpy(buf, orig, len);
    size_t n = len;
    int mode = (int)tu_randint(&r, 0, 4);
    if (mode == 0) {
      n = (size_t)tu_randint(&r, 0, (int64_t)len);
    } else if (mode == 1) { /* flips anywhere in the length or header */
      int flips = (int)tu_randint(&r, 1, 4);
      for (int k = 0; k < flips; k++) buf[tu_randint(&r, 0, (int64_t)(len - 30))] ^= (unsigned char)tu_randint(&r, 1, 256);
    } else if (mode == 2) { /* a random printable character in the JSON */
      buf[tu_randint(&r, 8, (int64_t)(len - 30))] = (unsigned char)tu_randint(&r, 32, 127);
    } else { /* a digit changed (offsets, shapes) */
      size_t pos = (size_t)tu_randint(&r, 8, (int64_t)(len - 30));
      while (pos < len && (buf[pos] < '0' || buf[pos] > '9')) pos++;
      if (pos < len) buf[pos] = (unsigned char)('0' + tu_randint(&r, 0, 10));
      if (tu_randint(&r, 0, 2)) n = len - (size_t)tu_randint(&r, 1, 8);
    }
    write_file(tu_tmp("f.st"), buf, n);
    lam_ptree *t = NULL;
    lam_status st = lam_safetensors_load(ctx, tu_tmp("f.st"), NULL, &t, NULL);
    if (st == LAM_OK) {
      cr_assert(t);
      ok++;
      lam_ptree_free(t);
    } else {
      cr_assert(t == NULL);
      cr_assert(st == LAM_ERR_FORMAT || st == LAM_ERR_UNSUPPORTED, "iteration %d: %s: %s", it,
                lam_status_string(st), lam_last_error());
      cr_assert(strlen(lam_last_error()) > 0);
      failed++;
    }
    lam_load_opts lo = lam_load_defaults();
    lo.non_strict = !(it % 2);
    st = lam_ptree_load_into(tree, tu_tmp("f.st"), &lo);
    cr_assert(st == LAM_OK || st == LAM_ERR_FORMAT || st == LAM_ERR_NOT_FOUND || st == LAM_ERR_SHAPE ||
              st == LAM_ERR_DTYPE, "iteration %d: %s: %s", it, lam_status_string(st), lam_last_error());
    lam_metadata *mm = NULL;
    st = lam_safetensors_read_metadata(tu_tmp("f.st"), &mm);
    cr_assert((st == LAM_OK) == (mm != NULL));
    lam_metadata_free(mm);
  }
  cr_assert(failed > iters / 4, "the fuzz should mostly hit errors (%d ok, %d failed)", ok, failed);
  free(orig);
  free(buf);
  lam_metadata_free(meta);
  lam_ptree_free(tree);
  lam_tensor_free(a);
  lam_tensor_free(b);
  lam_tensor_free(c);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
  tu_remove_tmpdir();
}

/* ---- bad input ------------------------------------------------------------------------ */

Test(safetensors, bad_input) {
  tu_make_tmpdir("lamina-st");
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  lam_ptree *t = lam_ptree_dict(), *out;
  lam_tensor *x = lam_tensor_zeros(ctx, LAM_F32, 1, (int64_t[]){2});
  lam_ptree_set(t, "x", x);
  tu_assert_status(lam_safetensors_save(NULL, t, NULL), LAM_ERR_NULL, "path");
  tu_assert_status(lam_safetensors_save(tu_tmp("x"), NULL, NULL), LAM_ERR_NULL, "tree");
  lam_save_opts so = lam_save_defaults();
  so.float_dtype = (lam_file_dtype)42;
  tu_assert_status(lam_safetensors_save(tu_tmp("x"), t, &so), LAM_ERR_INVALID_ARGUMENT, "float_dtype");
  tu_assert_status(lam_safetensors_save("/nonexistent-dir/a.st", t, NULL), LAM_ERR_IO,
                   "/nonexistent-dir/a.st");
  /* Saving over a directory: the rename fails and the temporary file goes. */
  mkdir(tu_tmp("adir"), 0700);
  tu_assert_status(lam_safetensors_save(tu_tmp("adir"), t, NULL), LAM_ERR_IO, "rename");
  cr_assert_eq(count_files(), 1, "temporary file removed");
  lam_ptree *meta_leaf = lam_ptree_dict();
  lam_ptree_set(meta_leaf, "__metadata__", x);
  tu_assert_status(lam_safetensors_save(tu_tmp("m"), meta_leaf, NULL), LAM_ERR_INVALID_ARGUMENT, "__metadata__");
  lam_ptree_free(meta_leaf);
  tu_assert_status(lam_safetensors_load(NULL, tu_tmp("x"), NULL, &out, NULL), LAM_ERR_NULL, "ctx");
  tu_assert_status(lam_safetensors_load(ctx, NULL, NULL, &out, NULL), LAM_ERR_NULL, "path");
  tu_assert_status(lam_safetensors_load(ctx, tu_tmp("x"), NULL, NULL, NULL), LAM_ERR_NULL, "out");
  tu_assert_status(lam_safetensors_load(ctx, "/no/such/file.safetensors", NULL, &out, NULL), LAM_ERR_IO,
                   "/no/such/file.safetensors");
  cr_assert(strstr(lam_last_error(), "No such file"), "%s", lam_last_error());
  tu_assert_status(lam_safetensors_load(ctx, tu_tmp("adir"), NULL, &out, NULL), LAM_ERR_IO, "not a regular file");
  tu_assert_status(lam_ptree_load_into(NULL, tu_tmp("x"), NULL), LAM_ERR_NULL, "tree");
  tu_assert_status(lam_ptree_load_into(t, NULL, NULL), LAM_ERR_NULL, "path");
  tu_assert_status(lam_ptree_load_into(t, "/no/such/file", NULL), LAM_ERR_IO, "/no/such/file");
  lam_metadata *mm;
  tu_assert_status(lam_safetensors_read_metadata(NULL, &mm), LAM_ERR_NULL, "path");
  tu_assert_status(lam_safetensors_read_metadata("/no/such/file", &mm), LAM_ERR_IO, "/no/such/file");
  cr_assert(mm == NULL);
  /* Metadata maps. */
  lam_metadata *md = lam_metadata_create();
  tu_assert_status(lam_metadata_set(NULL, "a", "b"), LAM_ERR_NULL, "m");
  tu_assert_status(lam_metadata_set(md, NULL, "b"), LAM_ERR_NULL, "key");
  tu_assert_status(lam_metadata_set(md, "a", NULL), LAM_ERR_NULL, "value");
  cr_assert_eq(lam_metadata_set(md, "a", "1"), LAM_OK);
  cr_assert_eq(lam_metadata_set(md, "a", "2"), LAM_OK);
  cr_assert_eq(lam_metadata_count(md), 1);
  cr_assert_str_eq(lam_metadata_get(md, "a"), "2");
  cr_assert(lam_metadata_get(md, "b") == NULL && lam_metadata_get(NULL, "a") == NULL);
  const char *k, *v;
  cr_assert_eq(lam_metadata_entry(md, 0, &k, &v), LAM_OK);
  cr_assert(!strcmp(k, "a") && !strcmp(v, "2"));
  tu_assert_status(lam_metadata_entry(md, 1, &k, &v), LAM_ERR_NOT_FOUND, "index 1");
  tu_assert_status(lam_metadata_entry(NULL, 0, &k, &v), LAM_ERR_NULL, "m");
  lam_metadata_free(md);
  lam_metadata_free(NULL);
  lam_ptree_free(t);
  lam_tensor_free(x);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
  tu_remove_tmpdir();
}
