/* tests/fuzz/fuzz_ptree_path.c: libFuzzer target for the dotted-path parser
 * of the parameter trees (lam_ptree_get / subtree / set / remove / freeze,
 * list indices such as "layers.0.g"): the input is split at the first NUL
 * into a path and a second path; every call must succeed or fail with a
 * message, and the tree must stay consistent (its leaves readable by path). */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lam_ctx *ctx = fz_ctx();
  static lam_tensor *leaf;
  static lam_ptree *model;
  if (!leaf) {
    leaf = fz_leaf(ctx, LAM_F32, 1, (int64_t[]){2}, 3.0);
    model = fz_model(ctx);
    lam_ptree *list = lam_ptree_list();
    if (lam_ptree_append(list, leaf) != LAM_OK || lam_ptree_set_subtree(model, "seq", list) != LAM_OK) abort();
  }
  char *a = fz_string(data, size);
  const char *b = a + strlen(a) + (strlen(a) < size ? 1 : 0);
  lam_ptree *t = lam_ptree_copy(model); /* the structure; leaves shared */
  if (!t) abort();
  (void)lam_ptree_get(t, a);
  (void)lam_ptree_subtree(t, a);
  (void)lam_ptree_is_frozen(t, a);
  if (lam_ptree_set(t, a, leaf) != LAM_OK && !lam_last_error()[0]) abort();
  if (lam_ptree_freeze(t, b) != LAM_OK && !lam_last_error()[0]) abort();
  if (lam_ptree_remove(t, b) != LAM_OK && !lam_last_error()[0]) abort();
  lam_ptree *sub = lam_ptree_dict();
  if (lam_ptree_set_subtree(t, b, sub) != LAM_OK) lam_ptree_free(sub);
  int n = lam_ptree_leaf_count(t);
  for (int i = 0; i < n; i++) {
    const char *p = NULL;
    lam_tensor *v = NULL;
    if (lam_ptree_leaf(t, i, &p, &v) != LAM_OK || !v) abort();
  }
  lam_ptree *c = lam_ptree_copy(t);
  lam_ptree_free(c);
  lam_ptree_free(t);
  free(a);
  return 0;
}
