/* lamina/ptree.h: parameter trees.
 * A ptree is a nested dict (ordered by insertion) or list of tensors,
 * addressed by dotted paths such as "2.weight" or "encoder.0.q_proj.bias".
 * Leaves are tensors; a tree holds one reference to each leaf. Leaves may be
 * frozen (not trainable): lam_value_and_grad then gives them no gradient. */
#ifndef LAMINA_PTREE_H
#define LAMINA_PTREE_H

#include "lamina/export.h"

#include <stdbool.h>

#include "lamina/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lam_ptree lam_ptree;

/* Returns a new empty dict / list node, or NULL when out of host memory. */
LAM_API lam_ptree *lam_ptree_dict(void);
LAM_API lam_ptree *lam_ptree_list(void);
/* Frees the tree and drops its leaf references. NULL is a no-op. */
LAM_API void lam_ptree_free(lam_ptree *tree);
/* Returns 1 for a list node, 0 for a dict. */
LAM_API int lam_ptree_is_list(const lam_ptree *tree);

/* Returns the leaf at `path` (borrowed), or NULL with LAM_ERR_NOT_FOUND. */
LAM_API lam_tensor *lam_ptree_get(const lam_ptree *tree, const char *path);
/* Returns the subtree at `path` (borrowed; "" is the tree itself), or NULL. */
LAM_API lam_ptree *lam_ptree_subtree(const lam_ptree *tree, const char *path);
/* Stores `value` at `path`, taking a new reference (the caller keeps its
 * own) and replacing any leaf there; creates missing dict nodes. On a list
 * node a segment must be an index below its length, or equal to it (append). */
LAM_API lam_status lam_ptree_set(lam_ptree *tree, const char *path, lam_tensor *value);
/* Attaches `child` at `path` (the tree takes ownership of child). On
 * failure the caller keeps child and must free it; a child that is already
 * part of a tree, or that contains `tree`, is rejected
 * (LAM_ERR_INVALID_ARGUMENT). */
LAM_API lam_status lam_ptree_set_subtree(lam_ptree *tree, const char *path, lam_ptree *child);
/* Appends to a list node: a leaf (new reference) or a subtree (owned; on
 * failure the caller keeps it, as for lam_ptree_set_subtree). */
LAM_API lam_status lam_ptree_append(lam_ptree *list, lam_tensor *value);
LAM_API lam_status lam_ptree_append_subtree(lam_ptree *list, lam_ptree *child);
/* Removes the leaf or subtree at `path`. */
LAM_API lam_status lam_ptree_remove(lam_ptree *tree, const char *path);

/* Number of leaves, and total elements over all leaves. */
LAM_API int lam_ptree_leaf_count(const lam_ptree *tree);
LAM_API int64_t lam_ptree_param_count(const lam_ptree *tree);
/* Number of direct children; the key of child i ("3" in a list). */
LAM_API int lam_ptree_child_count(const lam_ptree *tree);
LAM_API const char *lam_ptree_child_key(const lam_ptree *tree, int i);

/* Leaf i in stable (depth-first, insertion) order: its full dotted path
 * (borrowed until the tree changes) and tensor (borrowed). */
LAM_API lam_status lam_ptree_leaf(const lam_ptree *tree, int i, const char **path, lam_tensor **value);

typedef lam_status (*lam_ptree_visit_fn)(const char *path, lam_tensor *value, void *user);
/* Calls fn for each leaf in stable order; stops at the first non-OK status. */
LAM_API lam_status lam_ptree_foreach(const lam_ptree *tree, lam_ptree_visit_fn fn, void *user);

typedef lam_tensor *(*lam_ptree_map_fn)(const char *path, lam_tensor *value, void *user);
/* Returns a tree of the same structure whose leaves are fn's results (new
 * references that the new tree takes over), or NULL on the first failure. */
LAM_API lam_ptree *lam_ptree_map(const lam_ptree *tree, lam_ptree_map_fn fn, void *user);
/* Returns a structural copy sharing the leaf tensors (and frozen flags). */
LAM_API lam_ptree *lam_ptree_copy(const lam_ptree *tree);

/* Marks every leaf whose path equals `prefix` or starts with "prefix." as
 * frozen (or trainable); "" means all. Returns LAM_ERR_NOT_FOUND if none matched. */
LAM_API lam_status lam_ptree_freeze(lam_ptree *tree, const char *prefix);
LAM_API lam_status lam_ptree_unfreeze(lam_ptree *tree, const char *prefix);
/* Returns 1 if the leaf at path is frozen. */
LAM_API int lam_ptree_is_frozen(const lam_ptree *tree, const char *path);
/* Returns 1 if leaf i (in lam_ptree_leaf order) is frozen; O(1) for iteration. */
LAM_API int lam_ptree_leaf_frozen(const lam_ptree *tree, int i);

#ifdef __cplusplus
}
#endif
#endif
