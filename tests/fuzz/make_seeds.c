/* tests/fuzz/make_seeds.c: writes the seed corpus of the fuzz targets with
 * lamina's own writers: safetensors files of the fuzz model in every stored
 * dtype, with metadata and with a prefix (targets fuzz_safetensors and
 * fuzz_load_into), checkpoints with and without state and optimizer
 * (fuzz_checkpoint), and path and selector strings (fuzz_ptree_path,
 * fuzz_device_choose).
 * Usage: make_seeds OUTDIR   (creates OUTDIR/{safetensors,checkpoint,path,device}) */
#include <errno.h>
#include <sys/stat.h>

#include "fuzz_common.h"

static void check(lam_status st, const char *what) {
  if (st != LAM_OK) {
    fprintf(stderr, "make_seeds: %s: %s\n", what, lam_last_error());
    exit(1);
  }
}

static void dir(const char *path) {
  if (mkdir(path, 0777) != 0 && errno != EEXIST) {
    perror(path);
    exit(1);
  }
}

static void text(const char *out, const char *sub, const char *name, const char *s, size_t n) {
  char p[4096];
  snprintf(p, sizeof p, "%s/%s/%s", out, sub, name);
  FILE *f = fopen(p, "wb");
  if (!f || fwrite(s, 1, n, f) != n || fclose(f) != 0) {
    perror(p);
    exit(1);
  }
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: make_seeds OUTDIR\n");
    return 2;
  }
  const char *out = argv[1];
  const char *subs[] = {"safetensors", "checkpoint", "path", "device"};
  dir(out);
  char p[4096];
  for (int i = 0; i < 4; i++) {
    snprintf(p, sizeof p, "%s/%s", out, subs[i]);
    dir(p);
  }
  lam_ctx *ctx = fz_ctx();
  lam_ptree *model = fz_model(ctx);

  static const struct { const char *name; lam_file_dtype dt; } kinds[] = {
      {"model_keep", LAM_FILE_KEEP}, {"model_f32", LAM_FILE_F32}, {"model_f16", LAM_FILE_F16},
      {"model_bf16", LAM_FILE_BF16}, {"model_f64", LAM_FILE_F64}};
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
    lam_save_opts o = lam_save_defaults();
    o.float_dtype = kinds[i].dt;
    snprintf(p, sizeof p, "%s/safetensors/%s.safetensors", out, kinds[i].name);
    check(lam_safetensors_save(p, model, &o), p);
  }
  lam_metadata *meta = lam_metadata_create();
  check(lam_metadata_set(meta, "format", "pt"), "metadata");
  check(lam_metadata_set(meta, "note", "a \"quoted\" value\n"), "metadata");
  lam_save_opts mo = lam_save_defaults();
  mo.metadata = meta;
  snprintf(p, sizeof p, "%s/safetensors/model_meta.safetensors", out);
  check(lam_safetensors_save(p, model, &mo), p);
  lam_ptree *wrapped = lam_ptree_dict();
  check(lam_ptree_set_subtree(wrapped, "model", lam_ptree_copy(model)), "wrap");
  snprintf(p, sizeof p, "%s/safetensors/prefixed.safetensors", out);
  check(lam_safetensors_save(p, wrapped, NULL), p);
  lam_ptree *part = lam_ptree_dict();
  check(lam_ptree_set(part, "enc.w", lam_ptree_get(model, "enc.w")), "part");
  snprintf(p, sizeof p, "%s/safetensors/partial.safetensors", out);
  check(lam_safetensors_save(p, part, NULL), p);

  lam_ptree *state = fz_state(ctx);
  lam_optimizer *opt = lam_adamw(NULL);
  lam_ptree *grads = lam_ptree_copy(model);
  check(lam_ptree_remove(grads, "ids"), "grads");
  check(lam_ptree_remove(grads, "mask"), "grads");
  lam_ptree *fparams = lam_ptree_copy(model);
  check(lam_ptree_remove(fparams, "ids"), "params");
  check(lam_ptree_remove(fparams, "mask"), "params");
  check(lam_optimizer_step(opt, fparams, grads), "optimizer step");
  lam_rng_key key = lam_rng_key_make(1234);
  snprintf(p, sizeof p, "%s/checkpoint/full.ckpt", out);
  check(lam_checkpoint_save(p, model, state, opt, 42, key), p);
  snprintf(p, sizeof p, "%s/checkpoint/params_only.ckpt", out);
  check(lam_checkpoint_save(p, model, NULL, NULL, 0, key), p);
  snprintf(p, sizeof p, "%s/checkpoint/no_state.ckpt", out);
  check(lam_checkpoint_save(p, model, NULL, opt, 7, key), p);

  static const char *paths[] = {"enc.w", "layers.0.g", "seq.0", "seq.1", "enc", "", "a..b",
                                "layers.-1", "layers.999999999999999999999", ".", "enc.w.x"};
  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
    char name[32], buf[256];
    snprintf(name, sizeof name, "p%02zu", i);
    size_t n = (size_t)snprintf(buf, sizeof buf, "%s", paths[i]);
    buf[n++] = '\0';
    n += (size_t)snprintf(buf + n, sizeof buf - n, "%s", paths[(i + 3) % (sizeof paths / sizeof paths[0])]);
    text(out, "path", name, buf, n);
  }
  static const char *sel[] = {"0", "1", "cpu", "GPU", "pocl", "Portable", "99", "-1", "0x1", " 0"};
  for (size_t i = 0; i < sizeof sel / sizeof sel[0]; i++) {
    char name[32];
    snprintf(name, sizeof name, "d%02zu", i);
    text(out, "device", name, sel[i], strlen(sel[i]));
  }
  lam_optimizer_free(opt);
  lam_ptree_free(grads);
  lam_ptree_free(fparams);
  lam_ptree_free(state);
  lam_ptree_free(part);
  lam_ptree_free(wrapped);
  lam_metadata_free(meta);
  lam_ptree_free(model);
  lam_ctx_free(ctx);
  printf("make_seeds: corpus in %s\n", out);
  return 0;
}
