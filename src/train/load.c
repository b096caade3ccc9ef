/* train/load.c: loading PyTorch state_dicts into a model's params and state
 * (lam_vars_load, lam_vars_load_tree, lam_ptree_load_into) and saving both
 * as one state_dict (lam_vars_save).
 *
 * A load gathers the source tensors (one safetensors file, the shards of a
 * model.safetensors.index.json, or the leaves of an in-memory tree), maps
 * each source key through the options (prefix, rename rules, rename
 * callback, transforms: transpose and split) to one or more target keys,
 * matches the targets against the model's leaves, and checks every key,
 * shape and dtype before anything is written. Then each source tensor is
 * read once, transformed on the host, converted to the leaf's dtype and
 * written into the leaf in place. */
#if LAMINA_HAVE_CJSON
#include <cjson/cJSON.h>
#endif
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/layer.h"
#include "runtime/platform_internal.h"
#include "train/io_internal.h"

#if !defined(_WIN32)
#include <regex.h>
#define LAM__HAVE_REGEX 1
#endif

/* ---- small helpers ------------------------------------------------------------ */

static char *lam__dup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

/* a + b[0..bn) + c as a new string. */
static char *lam__cat3(const char *a, size_t an, const char *b, size_t bn, const char *c) {
  size_t cn = strlen(c);
  char *d = malloc(an + bn + cn + 1);
  if (!d) return NULL;
  memcpy(d, a, an);
  memcpy(d + an, b, bn);
  memcpy(d + an + bn, c, cn + 1);
  return d;
}

/* ---- sources and targets ---------------------------------------------------------- */

typedef struct {
  const char *name;     /* full source name (borrowed from a file or the tree) */
  lam__st_dtype dtype;
  int ndim;
  int64_t shape[LAM_MAX_DIMS];
  int64_t numel;
  lam__st_file *sf;     /* file source */
  const lam__st_entry *e;
  lam_tensor *t;        /* tree source */
  const lam_load_transform *tr;
  bool oversized;       /* more dims than lamina holds */
} lam__src;

typedef struct {
  char *key;            /* model key */
  int src;
  int part;             /* split part, or -1 */
  int ndim;
  int64_t shape[LAM_MAX_DIMS];
  const char *why;      /* the transform cannot apply (static text), or NULL */
  bool used;
} lam__tgt;

typedef struct {
  lam_tensor *leaf;
  int tgt, src;
} lam__plan;

typedef struct {
  const char *fn, *what, *prefix;
  lam_load_opts o;
#ifdef LAM__HAVE_REGEX
  regex_t *re;          /* rename_count entries; compiled only for regex rules */
  bool *re_ok;
#endif
  lam__st_file *files;
  char **file_paths;
  int nfiles;
  lam__src *src;
  int nsrc;
  lam__tgt *tgt;
  int ntgt, tgt_cap;
  lam__plan *plan;
  int nplan;
} lam__loader;

static void lam__loader_free(lam__loader *L) {
#ifdef LAM__HAVE_REGEX
  for (int i = 0; L->re && i < L->o.rename_count; i++)
    if (L->re_ok[i]) regfree(&L->re[i]);
  free(L->re);
  free(L->re_ok);
#endif
  for (int i = 0; i < L->nfiles; i++) {
    lam__st_close(&L->files[i]);
    free(L->file_paths[i]);
  }
  free(L->files);
  free(L->file_paths);
  free(L->src);
  for (int i = 0; i < L->ntgt; i++) free(L->tgt[i].key);
  free(L->tgt);
  free(L->plan);
}

static lam_status lam__oom(const lam__loader *L) {
  return lam__fail(LAM_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", L->fn);
}

/* ---- options ------------------------------------------------------------------------ */

static lam_status lam__check_opts(lam__loader *L) {
  const char *fn = L->fn;
  const lam_load_opts *o = &L->o;
  if (o->rename_count < 0 || (o->rename_count > 0 && !o->renames))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: rename_count %d with renames %s", fn,
                     o->rename_count, o->renames ? "given" : "NULL");
  if (o->transform_count < 0 || (o->transform_count > 0 && !o->transforms))
    return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: transform_count %d with transforms %s", fn,
                     o->transform_count, o->transforms ? "given" : "NULL");
  for (int i = 0; i < o->rename_count; i++) {
    const lam_rename_rule *r = &o->renames[i];
    if (!r->from || !r->to)
      return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: renames[%d].%s is NULL", fn, i,
                       r->from ? "to" : "from");
    if (!*r->from)
      return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: renames[%d].from is empty", fn, i);
  }
  for (int i = 0; i < o->transform_count; i++) {
    const lam_load_transform *t = &o->transforms[i];
    if (!t->key || !*t->key)
      return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: transforms[%d].key is %s", fn, i,
                       t->key ? "empty" : "NULL");
    if (t->split_count < 0 || t->split_count == 1 || (t->split_count > 0 && !t->split_into))
      return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: transforms[%d] (\"%s\"): split_count %d "
                       "must be 0 (no split) or >= 2 with split_into given", fn, i, t->key,
                       t->split_count);
    if (t->split_axis < 0 || t->split_axis >= LAM_MAX_DIMS)
      return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: transforms[%d] (\"%s\"): split_axis %d "
                       "outside 0..%d", fn, i, t->key, t->split_axis, LAM_MAX_DIMS - 1);
    for (int k = 0; k < t->split_count; k++)
      if (!t->split_into[k] || !*t->split_into[k])
        return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: transforms[%d] (\"%s\"): split_into[%d] "
                         "is %s", fn, i, t->key, k, t->split_into[k] ? "empty" : "NULL");
    if (!t->transpose && t->split_count == 0)
      return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: transforms[%d] (\"%s\") neither transposes "
                       "nor splits", fn, i, t->key);
  }
  bool any_regex = false;
  for (int i = 0; i < o->rename_count; i++) any_regex |= o->renames[i].regex;
  if (!any_regex) return LAM_OK;
#ifdef LAM__HAVE_REGEX
  L->re = calloc((size_t)o->rename_count, sizeof *L->re);
  L->re_ok = calloc((size_t)o->rename_count, sizeof *L->re_ok);
  if (!L->re || !L->re_ok) return lam__oom(L);
  for (int i = 0; i < o->rename_count; i++) {
    if (!o->renames[i].regex) continue;
    int rc = regcomp(&L->re[i], o->renames[i].from, REG_EXTENDED);
    if (rc != 0) {
      char why[256];
      regerror(rc, &L->re[i], why, sizeof why);
      return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: renames[%d].from \"%s\" is not a valid "
                       "regular expression: %s", fn, i, o->renames[i].from, why);
    }
    L->re_ok[i] = true;
  }
  return LAM_OK;
#else
  return lam__fail(LAM_ERR_UNSUPPORTED, "%s: regex rename rules need <regex.h>, which this "
                   "platform lacks; use prefix rules or the rename callback", fn);
#endif
}

#ifdef LAM__HAVE_REGEX
/* key with its first match of re replaced by `to` (\0..\9 expanded); NULL
 * when out of memory; *matched tells whether re matched. */
static char *lam__regex_sub(const regex_t *re, const char *key, const char *to, bool *matched) {
  regmatch_t m[10];
  *matched = regexec(re, key, 10, m, 0) == 0;
  if (!*matched) return lam__dup(key);
  size_t cap = strlen(key) + 1, len = 0;
  for (const char *p = to; *p; p++) cap += p[0] == '\\' && p[1] >= '0' && p[1] <= '9' ? strlen(key) : 1;
  char *out = malloc(cap);
  if (!out) return NULL;
  memcpy(out, key, (size_t)m[0].rm_so);
  len = (size_t)m[0].rm_so;
  for (const char *p = to; *p; p++) {
    if (p[0] == '\\' && p[1] >= '0' && p[1] <= '9') {
      int g = p[1] - '0';
      if (m[g].rm_so >= 0) {
        size_t n = (size_t)(m[g].rm_eo - m[g].rm_so);
        memcpy(out + len, key + m[g].rm_so, n);
        len += n;
      }
      p++;
    } else {
      out[len++] = *p;
    }
  }
  strcpy(out + len, key + m[0].rm_eo);
  return out;
}
#endif

/* The model key of source key `key` (new string), or NULL with *skip set
 * (callback said skip) or an error recorded. */
static char *lam__rename(lam__loader *L, const char *key, bool *skip, lam_status *st) {
  *skip = false;
  *st = LAM_OK;
  char *cur = lam__dup(key);
  for (int i = 0; cur && i < L->o.rename_count; i++) {
    const lam_rename_rule *r = &L->o.renames[i];
    char *next;
    if (r->regex) {
#ifdef LAM__HAVE_REGEX
      bool matched;
      next = lam__regex_sub(&L->re[i], cur, r->to, &matched);
#else
      next = NULL;
#endif
    } else if (lam__has_prefix(cur, r->from)) {
      size_t fl = strlen(r->from);
      next = lam__cat3(r->to, strlen(r->to), cur + fl, strlen(cur + fl), "");
    } else {
      continue;
    }
    free(cur);
    cur = next;
  }
  if (!cur) {
    *st = lam__oom(L);
    return NULL;
  }
  if (L->o.rename) {
    const char *r = L->o.rename(cur, L->o.rename_user);
    char *next = r ? lam__dup(r) : NULL; /* r may be cur itself */
    free(cur);
    if (!r) {
      *skip = true;
      return NULL;
    }
    if (!(cur = next)) *st = lam__oom(L);
  }
  return cur;
}

/* Length of the matched suffix when transform t applies to key, or 0. */
static size_t lam__tr_match(const lam_load_transform *t, const char *key) {
  size_t kl = strlen(key), tl = strlen(t->key);
  if (kl == tl && strcmp(key, t->key) == 0) return tl;
  if (kl > tl && key[kl - tl - 1] == '.' && strcmp(key + kl - tl, t->key) == 0) return tl;
  return 0;
}

static lam_status lam__add_tgt(lam__loader *L, char *key, int src, int part) {
  if (L->ntgt == L->tgt_cap) {
    int cap = L->tgt_cap ? 2 * L->tgt_cap : 64;
    lam__tgt *n = realloc(L->tgt, (size_t)cap * sizeof *n);
    if (!n) {
      free(key);
      return lam__oom(L);
    }
    L->tgt = n;
    L->tgt_cap = cap;
  }
  lam__tgt *g = &L->tgt[L->ntgt++];
  memset(g, 0, sizeof *g);
  g->key = key;
  g->src = src;
  g->part = part;
  const lam__src *s = &L->src[src];
  const lam_load_transform *t = s->tr;
  g->ndim = s->ndim < LAM_MAX_DIMS ? s->ndim : LAM_MAX_DIMS;
  memcpy(g->shape, s->shape, sizeof g->shape);
  if (s->oversized) g->why = "more than 8 dims";
  else if (t && t->transpose && s->ndim != 2) g->why = "transpose needs a 2-D tensor";
  else if (t && t->transpose) {
    g->shape[0] = s->shape[1];
    g->shape[1] = s->shape[0];
  }
  if (!g->why && t && t->split_count > 0) {
    if (t->split_axis >= g->ndim) g->why = "split_axis is not an axis of the tensor";
    else if (g->shape[t->split_axis] % t->split_count) g->why = "the split axis does not divide evenly";
    else g->shape[t->split_axis] /= t->split_count;
  }
  return LAM_OK;
}

/* Maps every source to its targets. */
static lam_status lam__map(lam__loader *L) {
  lam_status st = LAM_OK;
  size_t pl = L->prefix ? strlen(L->prefix) : 0;
  for (int i = 0; i < L->nsrc && st == LAM_OK; i++) {
    lam__src *s = &L->src[i];
    if (!lam__has_prefix(s->name, L->prefix)) continue;
    bool skip;
    char *key = lam__rename(L, s->name + pl, &skip, &st);
    if (!key) continue;
    s->tr = NULL;
    size_t ml = 0;
    for (int k = 0; k < L->o.transform_count && !s->tr; k++)
      if ((ml = lam__tr_match(&L->o.transforms[k], key))) s->tr = &L->o.transforms[k];
    if (!s->tr || s->tr->split_count == 0) {
      st = lam__add_tgt(L, key, i, -1);
      continue;
    }
    size_t base = strlen(key) - ml;
    for (int p = 0; p < s->tr->split_count && st == LAM_OK; p++) {
      const char *into = s->tr->split_into[p];
      char *k2 = lam__cat3(key, base, into, strlen(into), "");
      st = k2 ? lam__add_tgt(L, k2, i, p) : lam__oom(L);
    }
    free(key);
  }
  return st;
}

static int lam__cmp_tgt(const void *a, const void *b) {
  const lam__tgt *x = a, *y = b;
  int c = strcmp(x->key, y->key);
  return c ? c : (x->src > y->src) - (x->src < y->src);
}

static int lam__cmp_plan(const void *a, const void *b) {
  const lam__plan *x = a, *y = b;
  if (x->src != y->src) return x->src < y->src ? -1 : 1;
  return (x->tgt > y->tgt) - (x->tgt < y->tgt);
}

static int lam__find_tgt(const lam__loader *L, const char *key) {
  int lo = 0, hi = L->ntgt - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2;
    int c = strcmp(L->tgt[mid].key, key);
    if (c == 0) return mid;
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

/* ---- the report -------------------------------------------------------------------- */

void lam_load_report_free(lam_load_report *r) {
  if (!r) return;
  for (int i = 0; i < r->missing_count; i++) free(r->missing[i]);
  for (int i = 0; i < r->unexpected_count; i++) free(r->unexpected[i]);
  for (int i = 0; i < r->mismatched_count; i++) free(r->mismatched[i]);
  free(r->missing);
  free(r->unexpected);
  free(r->mismatched);
  memset(r, 0, sizeof *r);
}

static bool lam__rep_add(char ***arr, int *n, const char *key) {
  char **a = realloc(*arr, ((size_t)*n + 1) * sizeof *a);
  if (!a) return false;
  *arr = a;
  if (!(a[*n] = lam__dup(key))) return false;
  (*n)++;
  return true;
}

/* ---- checking ---------------------------------------------------------------------- */

static lam_status lam__check(lam__loader *L, lam_ptree *const *trees, int ntrees,
                             lam_load_report *rep) {
  const char *fn = L->fn;
  if (L->ntgt > 1) qsort(L->tgt, (size_t)L->ntgt, sizeof *L->tgt, lam__cmp_tgt); /* tgt is NULL when empty */
  for (int i = 1; i < L->ntgt; i++)
    if (strcmp(L->tgt[i].key, L->tgt[i - 1].key) == 0)
      return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: \"%s\": source keys \"%s\" and \"%s\" both "
                       "become \"%s\"", fn, L->what, L->src[L->tgt[i - 1].src].name,
                       L->src[L->tgt[i].src].name, L->tgt[i].key);
  int nleaves = 0;
  for (int k = 0; k < ntrees; k++) nleaves += trees[k] ? lam_ptree_leaf_count(trees[k]) : 0;
  L->plan = calloc((size_t)nleaves + 1, sizeof *L->plan);
  lam__list *miss = calloc(1, sizeof *miss), *unexp = calloc(1, sizeof *unexp),
            *bad = calloc(1, sizeof *bad);
  lam_status st = LAM_OK;
  bool rep_ok = true, shape_bad = false;
  if (!L->plan || !miss || !unexp || !bad) {
    st = lam__oom(L);
    goto done;
  }
  miss->limit = unexp->limit = bad->limit = 2400;
  for (int k = 0; k < ntrees; k++) {
    int n = trees[k] ? lam_ptree_leaf_count(trees[k]) : 0;
    for (int i = 0; i < n; i++) {
      const char *path;
      lam_tensor *t;
      lam_ptree_leaf(trees[k], i, &path, &t);
      int j = lam__find_tgt(L, path);
      if (j < 0) {
        lam__list_add(miss, "%s", path);
        if (rep) rep_ok = rep_ok && lam__rep_add(&rep->missing, &rep->missing_count, path);
        continue;
      }
      lam__tgt *g = &L->tgt[j];
      if (g->used) continue; /* the same key in params and state: loaded once, into the first */
      g->used = true;
      const lam__src *s = &L->src[g->src];
      bool same = !g->why && g->ndim == t->ndim;
      for (int d = 0; same && d < t->ndim; d++) same = g->shape[d] == t->shape[d];
      bool compat = lam__st_compatible(s->dtype, t->dtype);
      if (!same || !compat) {
        char b1[LAM__SHAPE_STR], b2[LAM__SHAPE_STR];
        shape_bad |= !same;
        if (g->why)
          lam__list_add(bad, "%s (file %s %s: %s)", path, lam__st_names[s->dtype],
                        s->e ? lam__st_shape(s->e, b1) : lam__shape_str(g->ndim, s->shape, b1), g->why);
        else
          lam__list_add(bad, "%s (file %s %s, model %s %s)", path, lam__st_names[s->dtype],
                        lam__shape_str(g->ndim, g->shape, b1), lam_dtype_name(t->dtype),
                        lam__shape_str(t->ndim, t->shape, b2));
        if (rep) rep_ok = rep_ok && lam__rep_add(&rep->mismatched, &rep->mismatched_count, path);
        continue;
      }
      L->plan[L->nplan++] = (lam__plan){t, j, g->src};
    }
  }
  for (int j = 0; j < L->ntgt; j++) {
    const lam__tgt *g = &L->tgt[j];
    if (g->used) continue;
    const char *name = L->src[g->src].name;
    if (g->why && L->src[g->src].tr) { /* a transform that cannot apply is an error even for a key the model lacks */
      if (g->part > 0) continue;
      char b1[LAM__SHAPE_STR];
      shape_bad = true;
      lam__list_add(bad, "%s (file %s %s: %s)", name, lam__st_names[L->src[g->src].dtype],
                    lam__shape_str(g->ndim, L->src[g->src].shape, b1), g->why);
      if (rep) rep_ok = rep_ok && lam__rep_add(&rep->mismatched, &rep->mismatched_count, name);
      continue;
    }
    size_t pl = L->prefix ? strlen(L->prefix) : 0;
    if (strcmp(name + pl, g->key) == 0) lam__list_add(unexp, "%s", name);
    else lam__list_add(unexp, "%s (from %s)", g->key, name);
    if (rep) rep_ok = rep_ok && lam__rep_add(&rep->unexpected, &rep->unexpected_count, g->key);
  }
  if (!rep_ok) {
    st = lam__oom(L);
    goto done;
  }
  bool strict = !L->o.non_strict;
  bool keys_bad = strict && (miss->count || unexp->count);
  if (keys_bad || bad->count) {
    const char *prefix = L->prefix;
    char m1[64] = "", m2[64] = "", m3[64] = "";
    if (strict && miss->count)
      snprintf(m1, sizeof m1, "%d missing key%s (in the model, not in the file): ", miss->count,
               miss->count == 1 ? "" : "s");
    if (strict && unexp->count)
      snprintf(m2, sizeof m2, "%d unexpected key%s (in the file, not in the model): ", unexp->count,
               unexp->count == 1 ? "" : "s");
    if (bad->count)
      snprintf(m3, sizeof m3, "%d mismatch%s: ", bad->count, bad->count == 1 ? "" : "es");
    st = lam__fail(keys_bad ? LAM_ERR_NOT_FOUND : shape_bad ? LAM_ERR_SHAPE : LAM_ERR_DTYPE,
                   "%s: \"%s\"%s%s%s does not match the model: %s%s%s%s%s%s%s%s", fn, L->what,
                   prefix ? " (prefix \"" : "", prefix ? prefix : "", prefix ? "\")" : "", m1,
                   *m1 ? lam__list_end(miss) : "", *m1 && (*m2 || *m3) ? "; " : "", m2,
                   *m2 ? lam__list_end(unexp) : "", *m2 && *m3 ? "; " : "", m3,
                   *m3 ? lam__list_end(bad) : "");
  }
done:
  free(miss);
  free(unexp);
  free(bad);
  return st;
}

/* ---- writing ------------------------------------------------------------------------ */

/* Reads source s's bytes (source dtype) into buf. */
static lam_status lam__read_src(lam__loader *L, const lam__src *s, unsigned char *buf) {
  if (s->sf) return lam__st_read(s->sf, s->e, buf, L->fn);
  return lam_tensor_to_host(s->t, buf, lam_tensor_nbytes(s->t));
}

static lam_status lam__write(lam__loader *L) {
  if (L->nplan > 1) qsort(L->plan, (size_t)L->nplan, sizeof *L->plan, lam__cmp_plan);
  lam_status st = LAM_OK;
  for (int p = 0; p < L->nplan && st == LAM_OK;) {
    const lam__src *s = &L->src[L->tgt[L->plan[p].tgt].src];
    size_t es = (size_t)lam__st_sizes[s->dtype], nb = (size_t)s->numel * es;
    unsigned char *raw = malloc(nb + 1), *tr = malloc(nb + 1), *part = malloc(nb + 1),
                  *conv = malloc((size_t)s->numel * 8 + 1);
    if (!raw || !tr || !part || !conv) st = lam__oom(L);
    if (st == LAM_OK) st = lam__read_src(L, s, raw);
    const lam_load_transform *t = s->tr;
    int64_t shape[LAM_MAX_DIMS];
    memcpy(shape, s->shape, sizeof shape);
    unsigned char *cur = raw;
    if (st == LAM_OK && t && t->transpose) {
      int64_t R = s->shape[0], C = s->shape[1];
      for (int64_t r = 0; r < R; r++)
        for (int64_t c = 0; c < C; c++) memcpy(tr + (size_t)(c * R + r) * es, raw + (size_t)(r * C + c) * es, es);
      shape[0] = C;
      shape[1] = R;
      cur = tr;
    }
    for (; p < L->nplan && &L->src[L->tgt[L->plan[p].tgt].src] == s; p++) {
      if (st != LAM_OK) continue;
      const lam__tgt *g = &L->tgt[L->plan[p].tgt];
      lam_tensor *leaf = L->plan[p].leaf;
      const unsigned char *data = cur;
      if (g->part >= 0) {
        int a = t->split_axis, nd = s->ndim;
        int64_t outer = 1, inner = 1, chunk = shape[a] / t->split_count;
        for (int d = 0; d < a; d++) outer *= shape[d];
        for (int d = a + 1; d < nd; d++) inner *= shape[d];
        size_t row = (size_t)(chunk * inner) * es;
        for (int64_t o = 0; o < outer; o++)
          memcpy(part + (size_t)o * row,
                 cur + ((size_t)(o * shape[a] + g->part * chunk) * (size_t)inner) * es, row);
        data = part;
      }
      int64_t badi = lam__convert(data, s->dtype, conv, lam__st_of(leaf->dtype), leaf->numel);
      if (badi >= 0)
        st = lam__fail(LAM_ERR_DTYPE, "%s: \"%s\": tensor \"%s\" element %lld does not fit %s",
                       L->fn, L->what, s->name, (long long)badi, lam_dtype_name(leaf->dtype));
      else
        st = lam_tensor_write(leaf, conv, lam_tensor_nbytes(leaf));
    }
    free(raw);
    free(tr);
    free(part);
    free(conv);
  }
  return st;
}

/* ---- sources ------------------------------------------------------------------------ */

static lam_status lam__add_file_sources(lam__loader *L) {
  int total = 0;
  for (int f = 0; f < L->nfiles; f++) total += L->files[f].n;
  L->src = calloc((size_t)total + 1, sizeof *L->src);
  if (!L->src) return lam__oom(L);
  for (int f = 0; f < L->nfiles; f++)
    for (int i = 0; i < L->files[f].n; i++) {
      const lam__st_entry *e = &L->files[f].e[i];
      lam__src *s = &L->src[L->nsrc++];
      s->name = e->name;
      s->dtype = e->dtype;
      s->ndim = e->ndim;
      s->oversized = e->ndim > LAM_MAX_DIMS;
      memcpy(s->shape, e->shape, sizeof s->shape);
      s->numel = e->numel;
      s->sf = &L->files[f];
      s->e = e;
    }
  return LAM_OK;
}

static bool lam__ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Opens a sharded checkpoint's index and every shard it names (once). */
#if LAMINA_HAVE_CJSON
static lam_status lam__open_index(lam__loader *L, const char *path) {
  const char *fn = L->fn;
  FILE *f = fopen(path, "rb");
  if (!f) return lam__fail(LAM_ERR_IO, "%s: cannot open \"%s\": %s", fn, path, strerror(errno));
  uint64_t fsize = 0;
  if (lam__file_size(f, &fsize) != 0 || fsize > 100000000) {
    fclose(f);
    return lam__fail(LAM_ERR_IO, "%s: \"%s\" is not a regular file of at most 100 MB", fn, path);
  }
  size_t len = (size_t)fsize;
  char *text = malloc(len + 1);
  if (!text || fread(text, 1, len, f) != len) {
    fclose(f);
    free(text);
    return text ? lam__fail(LAM_ERR_IO, "%s: cannot read \"%s\"", fn, path) : lam__oom(L);
  }
  fclose(f);
  text[len] = '\0';
  cJSON *root = cJSON_ParseWithLength(text, len);
  free(text);
  const cJSON *wm = root ? cJSON_GetObjectItemCaseSensitive(root, "weight_map") : NULL;
  lam_status st = LAM_OK;
  if (!cJSON_IsObject(wm)) {
    st = lam__fail(LAM_ERR_FORMAT, "%s: \"%s\" is not a sharded checkpoint index (a JSON object "
                   "with a \"weight_map\" object)", fn, path);
    goto done;
  }
  int n = cJSON_GetArraySize(wm);
  L->files = calloc((size_t)n + 1, sizeof *L->files);
  L->file_paths = calloc((size_t)n + 1, sizeof *L->file_paths);
  if (!L->files || !L->file_paths) {
    st = lam__oom(L);
    goto done;
  }
  const char *slash = strrchr(path, '/');
  size_t dl = slash ? (size_t)(slash - path + 1) : 0;
  for (const cJSON *c = wm->child; c && st == LAM_OK; c = c->next) {
    if (!cJSON_IsString(c) || !*c->valuestring || c->valuestring[0] == '/') {
      st = lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": weight_map entry \"%s\" is not a relative file "
                     "name", fn, path, c->string ? c->string : "");
      break;
    }
    char *sp = lam__cat3(path, dl, c->valuestring, strlen(c->valuestring), "");
    if (!sp) {
      st = lam__oom(L);
      break;
    }
    int k = 0;
    while (k < L->nfiles && strcmp(L->file_paths[k], sp) != 0) k++;
    if (k == L->nfiles) {
      L->file_paths[k] = sp;
      if ((st = lam__st_open(sp, fn, &L->files[k])) != LAM_OK) {
        free(sp);
        L->file_paths[k] = NULL;
        break;
      }
      L->nfiles++;
    } else {
      free(sp);
    }
    if (lam__st_find(&L->files[k], NULL, c->string) < 0)
      st = lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": weight_map puts \"%s\" in \"%s\", which does not "
                     "hold it", fn, path, c->string, L->file_paths[k]);
  }
  int total = 0;
  for (int k = 0; k < L->nfiles; k++) total += L->files[k].n;
  if (st == LAM_OK && total != n)
    st = lam__fail(LAM_ERR_FORMAT, "%s: \"%s\": the shards hold %d tensors but weight_map lists %d",
                   fn, path, total, n);
done:
  cJSON_Delete(root);
  return st;
}
#else /* !LAMINA_HAVE_CJSON */
static lam_status lam__open_index(lam__loader *L, const char *path) {
  return lam__fail(LAM_ERR_UNSUPPORTED,
                   "%s: \"%s\": this lamina was built without cJSON (LAMINA_WITH_CJSON); sharded "
                   "checkpoint indexes cannot be read", L->fn, path);
}
#endif /* LAMINA_HAVE_CJSON */

static lam_status lam__open_path(lam__loader *L, const char *path) {
  if (lam__ends_with(path, ".json")) return lam__open_index(L, path);
  L->files = calloc(1, sizeof *L->files);
  L->file_paths = calloc(1, sizeof *L->file_paths);
  if (!L->files || !L->file_paths) return lam__oom(L);
  lam_status st = lam__st_open(path, L->fn, &L->files[0]);
  if (st == LAM_OK) L->nfiles = 1;
  return st;
}

static lam_status lam__tree_sources(lam__loader *L, const lam_ptree *tree) {
  int n = lam_ptree_leaf_count(tree);
  L->src = calloc((size_t)n + 1, sizeof *L->src);
  if (!L->src) return lam__oom(L);
  for (int i = 0; i < n; i++) {
    lam__src *s = &L->src[L->nsrc++];
    lam_ptree_leaf(tree, i, &s->name, &s->t);
    s->dtype = lam__st_of(s->t->dtype);
    s->ndim = s->t->ndim;
    memcpy(s->shape, s->t->shape, sizeof s->shape);
    s->numel = s->t->numel;
  }
  return LAM_OK;
}

/* ---- entry points -------------------------------------------------------------------- */

static lam_status lam__load(const char *fn, lam_ptree *params, lam_ptree *state, const char *path,
                            const lam_ptree *src, const lam_load_opts *opts, lam_load_report *rep) {
  lam__loader L;
  memset(&L, 0, sizeof L);
  L.fn = fn;
  L.o = opts ? *opts : lam_load_defaults();
  L.prefix = L.o.prefix && *L.o.prefix ? L.o.prefix : NULL;
  L.what = path ? path : "(tree)";
  lam_status st = lam__check_opts(&L);
  if (st == LAM_OK) st = path ? lam__open_path(&L, path) : lam__tree_sources(&L, src);
  if (st == LAM_OK && path) st = lam__add_file_sources(&L);
  if (st == LAM_OK) st = lam__map(&L);
  if (st == LAM_OK) {
    lam_ptree *trees[2] = {params, state};
    st = lam__check(&L, trees, 2, rep);
    if (st == LAM_OK) st = lam__write(&L);
  }
  lam__loader_free(&L);
  return st;
}

lam_status lam_vars_load(lam_vars *vars, const char *path, const lam_load_opts *opts,
                         lam_load_report *report) {
  const char *fn = "lam_vars_load";
  if (report) memset(report, 0, sizeof *report);
  if (!vars || !path) return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, vars ? "path" : "vars");
  return lam__load(fn, lam_vars_params(vars), lam_vars_state(vars), path, NULL, opts, report);
}

lam_status lam_vars_load_tree(lam_vars *vars, const lam_ptree *src, const lam_load_opts *opts,
                              lam_load_report *report) {
  const char *fn = "lam_vars_load_tree";
  if (report) memset(report, 0, sizeof *report);
  if (!vars || !src) return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, vars ? "src" : "vars");
  return lam__load(fn, lam_vars_params(vars), lam_vars_state(vars), NULL, src, opts, report);
}

lam_status lam_ptree_load_into(lam_ptree *tree, const char *path, const lam_load_opts *opts) {
  const char *fn = "lam_ptree_load_into";
  if (!tree || !path) return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, tree ? "path" : "tree");
  return lam__load(fn, tree, NULL, path, NULL, opts, NULL);
}

lam_status lam_vars_save(lam_vars *vars, const char *path, const lam_save_opts *opts) {
  const char *fn = "lam_vars_save";
  if (!vars || !path) return lam__fail(LAM_ERR_NULL, "%s: %s is NULL", fn, vars ? "path" : "vars");
  lam_ptree *params = lam_vars_params(vars), *state = lam_vars_state(vars);
  int np = lam_ptree_leaf_count(params), ns = state ? lam_ptree_leaf_count(state) : 0;
  for (int i = 0; i < ns; i++) {
    const char *sp;
    lam_ptree_leaf(state, i, &sp, NULL);
    for (int j = 0; j < np; j++) {
      const char *pp;
      lam_ptree_leaf(params, j, &pp, NULL);
      if (strcmp(sp, pp) == 0)
        return lam__fail(LAM_ERR_INVALID_ARGUMENT, "%s: \"%s\" is both a parameter and a state "
                         "entry", fn, sp);
    }
  }
  lam_ptree *all = lam_ptree_copy(params);
  if (!all) return lam__oom(&(lam__loader){.fn = fn});
  lam_status st = LAM_OK;
  for (int i = 0; i < ns && st == LAM_OK; i++) {
    const char *sp;
    lam_tensor *t;
    lam_ptree_leaf(state, i, &sp, &t);
    st = lam_ptree_set(all, sp, t);
  }
  if (st == LAM_OK) st = lam_safetensors_save(path, all, opts);
  if (st != LAM_OK) {
    char why[2048];
    snprintf(why, sizeof why, "%s", lam_last_error());
    st = lam__fail(st, "%s: %s", fn, why);
  }
  lam_ptree_free(all);
  return st;
}
