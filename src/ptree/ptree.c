/* ptree/ptree.c: parameter trees (nested dicts and lists of tensors) with
 * dotted paths, stable depth-first order, map, and frozen flags.
 *
 * Each node keeps a flat cache of its leaves (paths and tensors) for indexed
 * iteration; a version counter bumped on every change to the node or any
 * descendant (through parent links) tells when the cache is stale. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/ptree.h"
#include "tensor_internal.h"

typedef struct {
  char *key;
  lam_tensor *leaf;  /* exactly one of leaf and sub is set */
  lam_ptree *sub;
  bool frozen;
} lam__pentry;

struct lam_ptree {
  bool is_list;
  lam__pentry *items;
  int n, cap;
  lam_ptree *parent;
  uint64_t version;
  /* flat leaf cache */
  char **paths;
  lam_tensor **leaves;
  bool *frozen;
  int n_leaves;
  uint64_t cache_version;
  bool cache_valid;
};

static lam_ptree *lam__ptree_new(bool is_list) {
  lam_ptree *t = calloc(1, sizeof *t);
  if (t) t->is_list = is_list;
  return t;
}

lam_ptree *lam_ptree_dict(void) { return lam__ptree_new(false); }
lam_ptree *lam_ptree_list(void) { return lam__ptree_new(true); }
int lam_ptree_is_list(const lam_ptree *tree) { return tree && tree->is_list; }

static void lam__cache_clear(lam_ptree *t) {
  for (int i = 0; i < t->n_leaves; i++) free(t->paths[i]);
  free(t->paths);
  free(t->leaves);
  free(t->frozen);
  t->paths = NULL;
  t->leaves = NULL;
  t->frozen = NULL;
  t->n_leaves = 0;
  t->cache_valid = false;
}

static void lam__touch(lam_ptree *t) {
  for (; t; t = t->parent) t->version++;
}

void lam_ptree_free(lam_ptree *tree) {
  if (!tree) return;
  for (int i = 0; i < tree->n; i++) {
    free(tree->items[i].key);
    lam_tensor_free(tree->items[i].leaf);
    lam_ptree_free(tree->items[i].sub);
  }
  free(tree->items);
  lam__cache_clear(tree);
  free(tree);
}

static lam__pentry *lam__find(const lam_ptree *t, const char *seg, size_t len) {
  if (t->is_list) {
    char buf[24];
    if (len == 0 || len >= sizeof buf) return NULL;
    memcpy(buf, seg, len);
    buf[len] = '\0';
    char *end;
    long idx = strtol(buf, &end, 10);
    if (*end || idx < 0 || idx >= t->n) return NULL;
    return &t->items[idx];
  }
  for (int i = 0; i < t->n; i++)
    if (strlen(t->items[i].key) == len && memcmp(t->items[i].key, seg, len) == 0)
      return &t->items[i];
  return NULL;
}

/* Appends an entry with key seg (list: its index) and returns it. */
static lam__pentry *lam__add(lam_ptree *t, const char *seg, size_t len) {
  if (t->n == t->cap) {
    int cap = t->cap ? t->cap * 2 : 8;
    lam__pentry *items = realloc(t->items, (size_t)cap * sizeof *items);
    if (!items) return NULL;
    t->items = items;
    t->cap = cap;
  }
  char buf[24];
  if (t->is_list) {
    snprintf(buf, sizeof buf, "%d", t->n);
    seg = buf;
    len = strlen(buf);
  }
  char *key = malloc(len + 1);
  if (!key) return NULL;
  memcpy(key, seg, len);
  key[len] = '\0';
  lam__pentry *e = &t->items[t->n++];
  memset(e, 0, sizeof *e);
  e->key = key;
  lam__touch(t);
  return e;
}

/* A list segment that equals the list's length appends. */
static bool lam__is_append(const lam_ptree *t, const char *seg, size_t len) {
  char buf[24];
  if (!t->is_list || len == 0 || len >= sizeof buf) return false;
  memcpy(buf, seg, len);
  buf[len] = '\0';
  char *end;
  long idx = strtol(buf, &end, 10);
  return *end == '\0' && idx == t->n;
}

/* Walks to the parent node of the last segment, creating dicts when asked.
 * Returns the node and sets last and last_len to the final segment. */
static lam_ptree *lam__walk(lam_ptree *tree, const char *path, bool create, const char *fn,
                            const char **last, size_t *last_len) {
  lam_ptree *t = tree;
  const char *seg = path;
  for (;;) {
    const char *dot = strchr(seg, '.');
    size_t len = dot ? (size_t)(dot - seg) : strlen(seg);
    if (len == 0) {
      lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: path \"%s\" has an empty segment", fn, path);
      return NULL;
    }
    if (!dot) {
      *last = seg;
      *last_len = len;
      return t;
    }
    lam__pentry *e = lam__find(t, seg, len);
    if (!e && create && (!t->is_list || lam__is_append(t, seg, len))) {
      e = lam__add(t, seg, len);
      if (!e || !(e->sub = lam_ptree_dict())) {
        lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
        return NULL;
      }
      e->sub->parent = t;
    }
    if (!e) {
      lam__fail(LAM_ERR_NOT_FOUND, "%s: path \"%s\": no entry \"%.*s\"", fn, path, (int)len, seg);
      return NULL;
    }
    if (!e->sub) {
      lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: path \"%s\": \"%.*s\" is a leaf, not a subtree", fn,
                path, (int)len, seg);
      return NULL;
    }
    t = e->sub;
    seg = dot + 1;
  }
}

lam_tensor *lam_ptree_get(const lam_ptree *tree, const char *path) {
  const char *fn = "lam_ptree_get";
  if (!tree || !path) return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, tree ? "path" : "tree"), NULL;
  const char *last;
  size_t len;
  lam_ptree *t = lam__walk((lam_ptree *)tree, path, false, fn, &last, &len);
  if (!t) return NULL;
  lam__pentry *e = lam__find(t, last, len);
  if (!e || !e->leaf)
    return lam__fail(LAM_ERR_NOT_FOUND, "%s: no leaf at \"%s\"", fn, path), NULL;
  return e->leaf;
}

lam_ptree *lam_ptree_subtree(const lam_ptree *tree, const char *path) {
  const char *fn = "lam_ptree_subtree";
  if (!tree || !path) return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, tree ? "path" : "tree"), NULL;
  if (!*path) return (lam_ptree *)tree;
  const char *last;
  size_t len;
  lam_ptree *t = lam__walk((lam_ptree *)tree, path, false, fn, &last, &len);
  if (!t) return NULL;
  lam__pentry *e = lam__find(t, last, len);
  if (!e || !e->sub)
    return lam__fail(LAM_ERR_NOT_FOUND, "%s: no subtree at \"%s\"", fn, path), NULL;
  return e->sub;
}

/* Stores a leaf or a subtree at path (exactly one is non-NULL). */
static lam_status lam__put(lam_ptree *tree, const char *path, lam_tensor *leaf, lam_ptree *sub,
                           const char *fn) {
  if (!tree || !path || (!leaf && !sub))
    return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn,
                     !tree ? "tree" : !path ? "path" : "value");
  const char *last;
  size_t len;
  lam_ptree *t = lam__walk(tree, path, true, fn, &last, &len);
  if (!t) return lam_last_status();
  lam__pentry *e = lam__find(t, last, len);
  if (sub && !(e && e->sub == sub)) {
    if (sub->parent)
      return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: path \"%s\": the child is already part of a tree", fn, path);
    for (const lam_ptree *p = t; p; p = p->parent)
      if (p == sub)
        return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: path \"%s\": the child contains the tree (a cycle)", fn, path);
  }
  if (!e) {
    if (t->is_list && !lam__is_append(t, last, len))
      return lam__fail(LAM_ERR_NOT_FOUND, "%s: path \"%s\": list index \"%.*s\" out of range 0..%d",
                       fn, path, (int)len, last, t->n);
    e = lam__add(t, last, len);
    if (!e) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
  } else if ((e->sub && leaf) || (e->leaf && sub)) {
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: path \"%s\" holds a %s; remove it first", fn,
                     path, e->sub ? "subtree" : "leaf");
  }
  if (leaf) {
    lam_tensor_retain(leaf);
    lam_tensor_free(e->leaf);
    e->leaf = leaf;
  } else {
    if (e->sub != sub) lam_ptree_free(e->sub);
    e->sub = sub;
    sub->parent = t;
  }
  lam__touch(t);
  return LAM_OK;
}

lam_status lam_ptree_set(lam_ptree *tree, const char *path, lam_tensor *value) {
  return lam__put(tree, path, value, NULL, "lam_ptree_set");
}

lam_status lam_ptree_set_subtree(lam_ptree *tree, const char *path, lam_ptree *child) {
  return lam__put(tree, path, NULL, child, "lam_ptree_set_subtree");
}

static lam_status lam__append(lam_ptree *list, lam_tensor *leaf, lam_ptree *sub, const char *fn) {
  if (!list || (!leaf && !sub)) return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, list ? "value" : "list");
  if (!list->is_list) return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: the node is a dict", fn);
  if (sub) {
    if (sub->parent) return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: the child is already part of a tree", fn);
    for (const lam_ptree *p = list; p; p = p->parent)
      if (p == sub) return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: the child contains the list (a cycle)", fn);
  }
  lam__pentry *e = lam__add(list, NULL, 0);
  if (!e) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", fn);
  e->leaf = lam_tensor_retain(leaf);
  e->sub = sub;
  if (sub) sub->parent = list;
  return LAM_OK;
}

lam_status lam_ptree_append(lam_ptree *list, lam_tensor *value) {
  return lam__append(list, value, NULL, "lam_ptree_append");
}

lam_status lam_ptree_append_subtree(lam_ptree *list, lam_ptree *child) {
  return lam__append(list, NULL, child, "lam_ptree_append_subtree");
}

lam_status lam_ptree_remove(lam_ptree *tree, const char *path) {
  const char *fn = "lam_ptree_remove";
  if (!tree || !path) return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, tree ? "path" : "tree");
  const char *last;
  size_t len;
  lam_ptree *t = lam__walk(tree, path, false, fn, &last, &len);
  if (!t) return lam_last_status();
  lam__pentry *e = lam__find(t, last, len);
  if (!e) return lam__fail(LAM_ERR_NOT_FOUND, "%s: nothing at \"%s\"", fn, path);
  int idx = (int)(e - t->items);
  free(e->key);
  lam_tensor_free(e->leaf);
  lam_ptree_free(e->sub);
  memmove(&t->items[idx], &t->items[idx + 1], (size_t)(t->n - idx - 1) * sizeof *e);
  t->n--;
  if (t->is_list) /* renumber */
    for (int i = idx; i < t->n; i++) snprintf(t->items[i].key, strlen(t->items[i].key) + 1, "%d", i);
  lam__touch(t);
  return LAM_OK;
}

/* Depth-first collection of leaves into the cache. */
static bool lam__collect(const lam_ptree *t, const char *prefix, lam_ptree *root) {
  for (int i = 0; i < t->n; i++) {
    const lam__pentry *e = &t->items[i];
    size_t plen = strlen(prefix), klen = strlen(e->key);
    char *path = malloc(plen + klen + 2);
    if (!path) return false;
    if (plen) {
      memcpy(path, prefix, plen);
      path[plen] = '.';
      memcpy(path + plen + 1, e->key, klen + 1);
    } else {
      memcpy(path, e->key, klen + 1);
    }
    if (e->leaf) {
      if (root->n_leaves % 64 == 0) {
        size_t cap = (size_t)root->n_leaves + 64;
        char **p = realloc(root->paths, cap * sizeof *p);
        if (p) root->paths = p;
        lam_tensor **l = realloc(root->leaves, cap * sizeof *l);
        if (l) root->leaves = l;
        bool *f = realloc(root->frozen, cap * sizeof *f);
        if (f) root->frozen = f;
        if (!p || !l || !f) {
          free(path);
          return false;
        }
      }
      root->paths[root->n_leaves] = path;
      root->leaves[root->n_leaves] = e->leaf;
      root->frozen[root->n_leaves++] = e->frozen;
    } else {
      bool ok = lam__collect(e->sub, path, root);
      free(path);
      if (!ok) return false;
    }
  }
  return true;
}

static bool lam__refresh(const lam_ptree *tree) {
  lam_ptree *t = (lam_ptree *)tree; /* the cache is logically const */
  if (t->cache_valid && t->cache_version == t->version) return true;
  lam__cache_clear(t);
  if (!lam__collect(t, "", t)) {
    lam__cache_clear(t);
    return false;
  }
  t->cache_valid = true;
  t->cache_version = t->version;
  return true;
}

int lam_ptree_leaf_count(const lam_ptree *tree) {
  if (!tree || !lam__refresh(tree)) return 0;
  return tree->n_leaves;
}

int64_t lam_ptree_param_count(const lam_ptree *tree) {
  int n = lam_ptree_leaf_count(tree);
  int64_t total = 0;
  for (int i = 0; i < n; i++) total += lam_tensor_numel(tree->leaves[i]);
  return total;
}

int lam_ptree_child_count(const lam_ptree *tree) { return tree ? tree->n : 0; }

const char *lam_ptree_child_key(const lam_ptree *tree, int i) {
  return tree && i >= 0 && i < tree->n ? tree->items[i].key : NULL;
}

lam_status lam_ptree_leaf(const lam_ptree *tree, int i, const char **path, lam_tensor **value) {
  if (!tree) return lam__fail(LAM_ERR_NULL, "lam_ptree_leaf: tree is NULL");
  if (!lam__refresh(tree)) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "lam_ptree_leaf: out of host memory");
  if (i < 0 || i >= tree->n_leaves)
    return lam__fail(LAM_ERR_NOT_FOUND, "lam_ptree_leaf: index %d outside 0..%d", i, tree->n_leaves - 1);
  if (path) *path = tree->paths[i];
  if (value) *value = tree->leaves[i];
  return LAM_OK;
}

lam_status lam_ptree_foreach(const lam_ptree *tree, lam_ptree_visit_fn fn, void *user) {
  if (!tree || !fn) return lam__fail(LAM_ERR_NULL, "lam_ptree_foreach: %s is NULL", tree ? "fn" : "tree");
  int n = lam_ptree_leaf_count(tree);
  for (int i = 0; i < n; i++) {
    lam_status st = fn(tree->paths[i], tree->leaves[i], user);
    if (st != LAM_OK) return st;
  }
  return LAM_OK;
}

static lam_ptree *lam__map(const lam_ptree *t, const char *prefix, lam_ptree_map_fn fn, void *user) {
  lam_ptree *out = lam__ptree_new(t->is_list);
  if (!out) return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "lam_ptree_map: out of host memory"), NULL;
  for (int i = 0; i < t->n; i++) {
    const lam__pentry *e = &t->items[i];
    char path[1024];
    snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", e->key);
    lam__pentry *d = lam__add(out, e->key, strlen(e->key));
    if (!d) {
      lam_ptree_free(out);
      return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "lam_ptree_map: out of host memory"), NULL;
    }
    d->frozen = e->frozen;
    if (e->leaf) {
      d->leaf = fn ? fn(path, e->leaf, user) : lam_tensor_retain(e->leaf);
      if (!d->leaf) {
        lam_ptree_free(out);
        if (lam_last_status() == LAM_OK)
          lam__fail(LAM_ERR_STATE, "lam_ptree_map: fn returned NULL at \"%s\"", path);
        return NULL;
      }
    } else {
      d->sub = lam__map(e->sub, path, fn, user);
      if (!d->sub) {
        lam_ptree_free(out);
        return NULL;
      }
      d->sub->parent = out;
    }
  }
  return out;
}

lam_ptree *lam_ptree_map(const lam_ptree *tree, lam_ptree_map_fn fn, void *user) {
  if (!tree || !fn) return lam__fail(LAM_ERR_NULL, "lam_ptree_map: %s is NULL", tree ? "fn" : "tree"), NULL;
  return lam__map(tree, "", fn, user);
}

lam_ptree *lam_ptree_copy(const lam_ptree *tree) {
  if (!tree) return lam__null_input("lam_ptree_copy", "tree");
  return lam__map(tree, "", NULL, NULL);
}

/* Sets the frozen flag of leaves under prefix; returns how many matched. */
static int lam__set_frozen(lam_ptree *t, const char *path_so_far, const char *prefix, bool frozen) {
  int hits = 0;
  size_t plen = strlen(prefix);
  for (int i = 0; i < t->n; i++) {
    lam__pentry *e = &t->items[i];
    char path[1024];
    snprintf(path, sizeof path, "%s%s%s", path_so_far, *path_so_far ? "." : "", e->key);
    if (e->leaf) {
      if (plen == 0 || strcmp(path, prefix) == 0 ||
          (strncmp(path, prefix, plen) == 0 && path[plen] == '.')) {
        e->frozen = frozen;
        hits++;
      }
    } else {
      hits += lam__set_frozen(e->sub, path, prefix, frozen);
    }
  }
  if (hits) lam__touch(t);
  return hits;
}

static lam_status lam__freeze(lam_ptree *tree, const char *prefix, bool frozen, const char *fn) {
  if (!tree || !prefix) return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, tree ? "prefix" : "tree");
  if (lam__set_frozen(tree, "", prefix, frozen) == 0)
    return lam__fail(LAM_ERR_NOT_FOUND, "%s: no leaf under \"%s\"", fn, prefix);
  return LAM_OK;
}

lam_status lam_ptree_freeze(lam_ptree *tree, const char *prefix) {
  return lam__freeze(tree, prefix, true, "lam_ptree_freeze");
}

lam_status lam_ptree_unfreeze(lam_ptree *tree, const char *prefix) {
  return lam__freeze(tree, prefix, false, "lam_ptree_unfreeze");
}

int lam_ptree_is_frozen(const lam_ptree *tree, const char *path) {
  if (!tree || !path || !lam__refresh(tree)) return 0;
  for (int i = 0; i < tree->n_leaves; i++)
    if (strcmp(tree->paths[i], path) == 0) return tree->frozen[i];
  return 0;
}

int lam_ptree_leaf_frozen(const lam_ptree *tree, int i) {
  if (!tree || !lam__refresh(tree) || i < 0 || i >= tree->n_leaves) return 0;
  return tree->frozen[i];
}
