/* test_shape.c: the shape ops of lamina/shape.h (views, permute, transpose,
 * contiguous, broadcast_to, concat, stack, split, slice, slice_axis, pad)
 * against plain C references on random shapes of ranks 1-5 with odd sizes
 * and every data-movement dtype, Python's own slice results and PyTorch's
 * F.pad (tests/data/shape_golden.safetensors from tools/gen_shape_golden.py), one
 * case above 2^22 elements, gradient checks of every differentiable op, and
 * bad input with leak checks. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* ---- helpers ----------------------------------------------------------- */

static const lam_dtype dts[] = {LAM_F32, LAM_F64, LAM_I32, LAM_U8};
#define N_DTS 4

/* want[i] = src[map[i]] (or *fill when map[i] < 0). */
static unsigned char *apply_map(const unsigned char *src, size_t es, const int64_t *map, int64_t n,
                                const void *fill) {
  unsigned char *w = malloc((size_t)n * es + 1);
  for (int64_t i = 0; i < n; i++)
    memcpy(w + i * es, map[i] >= 0 ? src + map[i] * es : (const unsigned char *)fill, es);
  return w;
}

static void encode(lam_dtype dt, double v, unsigned char *out) {
  if (dt == LAM_F32) {
    float f = (float)v;
    memcpy(out, &f, 4);
  } else if (dt == LAM_F64) {
    memcpy(out, &v, 8);
  } else if (dt == LAM_I32) {
    int32_t i = (int32_t)v;
    memcpy(out, &i, 4);
  } else {
    out[0] = (unsigned char)(int)v;
  }
}

/* CPython's PySlice_AdjustIndices (checked against Python in slice_golden). */
static int64_t py_slice(int64_t n, int64_t start, int64_t stop, int64_t step, int has_start,
                        int has_stop, int64_t *first) {
  int64_t s, e;
  if (!has_start) s = step < 0 ? n - 1 : 0;
  else if (start < 0) s = start + n < 0 ? (step < 0 ? -1 : 0) : start + n;
  else s = start >= n ? (step < 0 ? n - 1 : n) : start;
  if (!has_stop) e = step < 0 ? -1 : n;
  else if (stop < 0) e = stop + n < 0 ? (step < 0 ? -1 : 0) : stop + n;
  else e = stop >= n ? (step < 0 ? n - 1 : n) : stop;
  *first = s;
  int64_t len = 0;
  for (int64_t i = s; step > 0 ? i < e : i > e; i += step) len++;
  return len;
}

/* ---- views ------------------------------------------------------------- */

Test(shape, views_reshape_squeeze_flatten) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(1);
  tu_mark m = tu_mark_now(ctx);
  for (int di = 0; di < N_DTS; di++) {
    lam_dtype dt = dts[di];
    if (!tu_has_dtype(ctx, dt)) continue;
    unsigned char *h;
    int64_t s[4] = {3, 1, 7, 2};
    lam_tensor *x = tu_rand_tensor(ctx, &r, dt, 4, s, &h);
    lam_tensor *a = lam_reshape(x, 2, (int64_t[]){-1, 14});
    tu_assert_tensor_bytes(a, 2, (int64_t[]){3, 14}, h, "reshape");
    lam_tensor *b = lam_unsqueeze(x, -1);
    tu_assert_tensor_bytes(b, 5, (int64_t[]){3, 1, 7, 2, 1}, h, "unsqueeze(-1)");
    lam_tensor *c = lam_unsqueeze(x, 0);
    tu_assert_tensor_bytes(c, 5, (int64_t[]){1, 3, 1, 7, 2}, h, "unsqueeze(0)");
    lam_tensor *d = lam_squeeze(x, 1);
    tu_assert_tensor_bytes(d, 3, (int64_t[]){3, 7, 2}, h, "squeeze(1)");
    lam_tensor *e = lam_squeeze(x, -3);
    tu_assert_tensor_bytes(e, 3, (int64_t[]){3, 7, 2}, h, "squeeze(-3)");
    lam_tensor *f = lam_flatten(x, 1, -1);
    tu_assert_tensor_bytes(f, 2, (int64_t[]){3, 14}, h, "flatten(1,-1)");
    lam_tensor *g = lam_flatten(x, 0, 2);
    tu_assert_tensor_bytes(g, 2, (int64_t[]){21, 2}, h, "flatten(0,2)");
    lam_tensor *k = lam_flatten(x, 2, 2);
    tu_assert_tensor_bytes(k, 4, s, h, "flatten(2,2)");
    lam_tensor *c2 = lam_contiguous(x);
    tu_assert_tensor_bytes(c2, 4, s, h, "contiguous");
    lam_tensor *sc = lam_tensor_scalar(ctx, dt, 3);
    lam_tensor *fs = lam_flatten(sc, 0, -1);
    cr_assert(fs && lam_tensor_ndim(fs) == 1 && lam_tensor_numel(fs) == 1, "flatten of a scalar");
    lam_tensor *all[] = {x, a, b, c, d, e, f, g, k, c2, sc, fs};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) lam_tensor_free(all[i]);
    free(h);
  }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- permute / transpose ----------------------------------------------- */

static int64_t *permute_map(int nd, const int64_t *xs, const int *perm, int64_t *oshape) {
  int64_t st[8], c[8];
  tu_strides(nd, xs, st);
  for (int i = 0; i < nd; i++) oshape[i] = xs[perm[i] < 0 ? perm[i] + nd : perm[i]];
  int64_t n = tu_numel(nd, oshape);
  int64_t *map = malloc((size_t)n * sizeof *map);
  for (int64_t i = 0; i < n; i++) {
    tu_unravel(i, nd, oshape, c);
    int64_t o = 0;
    for (int d = 0; d < nd; d++) o += c[d] * st[perm[d] < 0 ? perm[d] + nd : perm[d]];
    map[i] = o;
  }
  return map;
}

Test(shape, permute_random_all_dtypes) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(2);
  tu_mark m = tu_mark_now(ctx);
  for (int it = 0; it < 40; it++) {
    lam_dtype dt = dts[it % N_DTS];
    if (!tu_has_dtype(ctx, dt)) continue;
    int nd = 1 + it % 5;
    int64_t s[8], os[8];
    tu_rand_shape(&r, nd, 20000, s);
    int perm[8];
    for (int i = 0; i < nd; i++) perm[i] = i;
    for (int i = nd - 1; i > 0; i--) {
      int j = (int)tu_randint(&r, 0, i + 1), t = perm[i];
      perm[i] = perm[j];
      perm[j] = t;
    }
    if (it % 3 == 0) perm[0] -= nd; /* negative entries are accepted */
    unsigned char *h;
    lam_tensor *x = tu_rand_tensor(ctx, &r, dt, nd, s, &h);
    int64_t *map = permute_map(nd, s, perm, os);
    unsigned char *want = apply_map(h, lam_dtype_size(dt), map, tu_numel(nd, s), NULL);
    lam_tensor *y = lam_permute(x, perm);
    tu_assert_tensor_bytes(y, nd, os, want, "permute");
    lam_tensor_free(y);
    /* transpose with negative axes */
    int a0 = (int)tu_randint(&r, -nd, nd), a1 = (int)tu_randint(&r, -nd, nd);
    int tp[8];
    for (int i = 0; i < nd; i++) tp[i] = i;
    tp[(a0 + nd) % nd] = (a1 + nd) % nd;
    tp[(a1 + nd) % nd] = (a0 + nd) % nd;
    free(map);
    free(want);
    map = permute_map(nd, s, tp, os);
    want = apply_map(h, lam_dtype_size(dt), map, tu_numel(nd, s), NULL);
    y = lam_transpose(x, a0, a1);
    tu_assert_tensor_bytes(y, nd, os, want, "transpose");
    lam_tensor_free(y);
    lam_tensor_free(x);
    free(map);
    free(want);
    free(h);
  }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* Head split / merge layouts ([b, s, h, d] <-> [b, h, s, d]) with rows of 16 to 40
 * elements: the strided_rows kernel (one work-item per contiguous row; odd row
 * lengths leave a scalar tail), and the same cases on the general kernel
 * (LAMINA_SHAPE_PATH=general). */
Test(shape, permute_contiguous_rows_both_paths) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(5);
  static const int64_t shapes[][4] = {{2, 17, 3, 16}, {3, 5, 7, 19}, {1, 33, 2, 40}, {2, 3, 4, 32}};
  for (int path = 0; path < 2; path++) {
    if (path) setenv("LAMINA_SHAPE_PATH", "general", 1);
    for (int it = 0; it < 8; it++) {
      lam_dtype dt = dts[it % N_DTS];
      if (!tu_has_dtype(ctx, dt)) continue;
      const int64_t *s = shapes[it % 4];
      int perm[4] = {0, 2, 1, 3};
      int64_t os[8];
      unsigned char *h;
      lam_tensor *x = tu_rand_tensor(ctx, &r, dt, 4, s, &h);
      int64_t *map = permute_map(4, s, perm, os);
      unsigned char *want = apply_map(h, lam_dtype_size(dt), map, tu_numel(4, s), NULL);
      lam_tensor *y = lam_permute(x, perm);
      tu_assert_tensor_bytes(y, 4, os, want, path ? "permute 0213 (general)" : "permute 0213 (rows)");
      lam_tensor_free(y);
      lam_tensor_free(x);
      free(map);
      free(want);
      free(h);
    }
  }
  unsetenv("LAMINA_SHAPE_PATH");
  lam_ctx_free(ctx);
}

/* Rank 8: boxes that keep 8 dims (6 outer dims in the kernels), through
 * both the strided and the tiled (two dims >= 8) copies. */
Test(shape, permute_rank8) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(12);
  int64_t s[8] = {2, 3, 2, 3, 2, 3, 9, 10}, os[8];
  int perms[3][8] = {{7, 6, 5, 4, 3, 2, 1, 0}, {1, 0, 3, 2, 5, 4, 7, 6}, {6, 0, 2, 4, 1, 3, 5, 7}};
  for (int di = 0; di < N_DTS; di++) {
    lam_dtype dt = dts[di];
    if (!tu_has_dtype(ctx, dt)) continue;
    unsigned char *h;
    lam_tensor *x = tu_rand_tensor(ctx, &r, dt, 8, s, &h);
    for (int p = 0; p < 3; p++) {
      int64_t *map = permute_map(8, s, perms[p], os);
      unsigned char *want = apply_map(h, lam_dtype_size(dt), map, tu_numel(8, s), NULL);
      lam_tensor *y = lam_permute(x, perms[p]);
      tu_assert_tensor_bytes(y, 8, os, want, "permute rank 8");
      lam_tensor_free(y);
      free(map);
      free(want);
    }
    lam_tensor_free(x);
    free(h);
  }
  lam_ctx_free(ctx);
}

/* The one case above 2^22 elements: a transpose of [2049, 2051] f32. */
Test(shape, transpose_large) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(3);
  int64_t s[2] = {tu_small() ? 65 : 2049, tu_small() ? 67 : 2051};
  unsigned char *h;
  lam_tensor *x = tu_rand_tensor(ctx, &r, LAM_F32, 2, s, &h);
  lam_tensor *y = lam_transpose(x, 0, 1);
  float *got = tu_read_f32(y), *xv = (float *)h;
  for (int64_t i = 0; i < s[1]; i++)
    for (int64_t j = 0; j < s[0]; j++)
      cr_assert(got[i * s[0] + j] == xv[j * s[1] + i], "element (%lld, %lld)", (long long)i,
                (long long)j);
  free(got);
  free(h);
  lam_tensor_free(y);
  lam_tensor_free(x);
  lam_ctx_free(ctx);
}

/* ---- broadcast_to ------------------------------------------------------ */

Test(shape, broadcast_to_corner_cases) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(4);
  tu_mark m = tu_mark_now(ctx);
  struct { int xnd; int64_t xs[5]; int ond; int64_t os[5]; } cases[] = {
      {2, {3, 1}, 3, {2, 3, 5}},      {0, {0}, 1, {7}},          {1, {1}, 3, {3, 7, 33}},
      {2, {3, 7}, 2, {3, 7}},         {3, {1, 7, 1}, 5, {2, 3, 5, 7, 3}},
      {2, {1, 7}, 3, {1, 1, 7}},      {1, {1023}, 2, {3, 1023}}, {3, {5, 1, 3}, 3, {5, 7, 3}},
  };
  for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
    for (int di = 0; di < N_DTS; di++) {
      lam_dtype dt = dts[di];
      if (!tu_has_dtype(ctx, dt)) continue;
      int xnd = cases[ci].xnd, ond = cases[ci].ond;
      unsigned char *h;
      lam_tensor *x = tu_rand_tensor(ctx, &r, dt, xnd, cases[ci].xs, &h);
      int64_t n = tu_numel(ond, cases[ci].os), xst[8], c[8];
      tu_strides(xnd, cases[ci].xs, xst);
      int64_t *map = malloc((size_t)n * sizeof *map);
      for (int64_t i = 0; i < n; i++) {
        tu_unravel(i, ond, cases[ci].os, c);
        map[i] = 0;
        for (int j = 0; j < xnd; j++)
          if (cases[ci].xs[j] != 1) map[i] += c[j + ond - xnd] * xst[j];
      }
      unsigned char *want = apply_map(h, lam_dtype_size(dt), map, n, NULL);
      lam_tensor *y = lam_broadcast_to(x, ond, cases[ci].os);
      tu_assert_tensor_bytes(y, ond, cases[ci].os, want, "broadcast_to");
      lam_tensor_free(y);
      lam_tensor_free(x);
      free(map);
      free(want);
      free(h);
    }
  }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- concat / stack / split -------------------------------------------- */

/* Expected concat of parts (host data hs, shapes ss) along axis a. */
static unsigned char *concat_ref(int n, unsigned char **hs, int64_t (*ss)[8], int nd, int a,
                                 size_t es, int64_t *oshape) {
  memcpy(oshape, ss[0], 8 * sizeof(int64_t));
  oshape[a] = 0;
  for (int k = 0; k < n; k++) oshape[a] += ss[k][a];
  int64_t total = tu_numel(nd, oshape), c[8];
  unsigned char *w = malloc((size_t)total * es);
  for (int64_t i = 0; i < total; i++) {
    tu_unravel(i, nd, oshape, c);
    int k = 0;
    while (c[a] >= ss[k][a]) c[a] -= ss[k++][a];
    int64_t st[8], o = 0;
    tu_strides(nd, ss[k], st);
    for (int d = 0; d < nd; d++) o += c[d] * st[d];
    memcpy(w + i * es, hs[k] + o * es, es);
  }
  return w;
}

Test(shape, concat_stack_split_random) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(5);
  tu_mark m = tu_mark_now(ctx);
  for (int it = 0; it < 40; it++) {
    lam_dtype dt = dts[it % N_DTS];
    if (!tu_has_dtype(ctx, dt)) continue;
    size_t es = lam_dtype_size(dt);
    int nd = 1 + it % 5, n = 1 + (int)tu_randint(&r, 0, 7);
    int axis = (int)tu_randint(&r, -nd, nd), a = (axis + nd) % nd;
    int64_t base[8], ss[7][8], os[8];
    tu_rand_shape(&r, nd, 3000, base);
    lam_tensor *xs[7];
    unsigned char *hs[7];
    for (int k = 0; k < n; k++) {
      memcpy(ss[k], base, sizeof base);
      ss[k][a] = (int64_t[]){1, 3, 7, 2}[tu_randint(&r, 0, 4)];
      xs[k] = tu_rand_tensor(ctx, &r, dt, nd, ss[k], &hs[k]);
    }
    unsigned char *want = concat_ref(n, hs, ss, nd, a, es, os);
    lam_tensor *y = lam_concat(xs, n, axis);
    tu_assert_tensor_bytes(y, nd, os, want, "concat");
    /* split it back, by sizes and (when they are equal) into equal parts */
    int64_t sizes[7];
    for (int k = 0; k < n; k++) sizes[k] = ss[k][a];
    lam_tensor *parts[7];
    cr_assert_eq(lam_split(y, axis, n, sizes, parts), LAM_OK, "%s", lam_last_error());
    for (int k = 0; k < n; k++) {
      tu_assert_tensor_bytes(parts[k], nd, ss[k], hs[k], "split(sizes)");
      lam_tensor_free(parts[k]);
    }
    free(want);
    lam_tensor_free(y);
    /* stack: equal shapes, new axis */
    for (int k = 0; k < n; k++) {
      lam_tensor_free(xs[k]);
      free(hs[k]);
      xs[k] = tu_rand_tensor(ctx, &r, dt, nd, base, &hs[k]);
    }
    int sa = (int)tu_randint(&r, -(nd + 1), nd + 1), sp = (sa + nd + 1) % (nd + 1);
    int64_t us[7][8], sos[8];
    for (int k = 0; k < n; k++)
      for (int d = 0, j = 0; d <= nd; d++) us[k][d] = d == sp ? 1 : base[j++];
    want = concat_ref(n, hs, us, nd + 1, sp, es, sos);
    y = lam_stack(xs, n, sa);
    tu_assert_tensor_bytes(y, nd + 1, sos, want, "stack");
    cr_assert_eq(lam_split(y, sa, n, NULL, parts), LAM_OK, "%s", lam_last_error());
    for (int k = 0; k < n; k++) {
      tu_assert_tensor_bytes(parts[k], nd + 1, us[k], hs[k], "split(equal)");
      lam_tensor_free(parts[k]);
    }
    free(want);
    lam_tensor_free(y);
    for (int k = 0; k < n; k++) {
      lam_tensor_free(xs[k]);
      free(hs[k]);
    }
  }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

Test(shape, concat_leading_axis_and_split_views) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(6);
  unsigned char *h0, *h1;
  lam_tensor *x0 = tu_rand_tensor(ctx, &r, LAM_F32, 2, (int64_t[]){1023, 3}, &h0);
  lam_tensor *x1 = tu_rand_tensor(ctx, &r, LAM_F32, 2, (int64_t[]){33, 3}, &h1);
  lam_tensor *y = lam_concat((lam_tensor *[]){x0, x1}, 2, 0);
  unsigned char *want = malloc(1056 * 3 * 4);
  memcpy(want, h0, 1023 * 3 * 4);
  memcpy(want + 1023 * 3 * 4, h1, 33 * 3 * 4);
  tu_assert_tensor_bytes(y, 2, (int64_t[]){1056, 3}, want, "concat axis 0");
  /* split along axis 0 makes views: no new device bytes */
  lam_stats s0, s1;
  lam_ctx_stats(ctx, &s0);
  lam_tensor *p[2];
  cr_assert_eq(lam_split(y, 0, 2, (int64_t[]){1023, 33}, p), LAM_OK);
  lam_ctx_stats(ctx, &s1);
  cr_assert_eq(s1.live_bytes, s0.live_bytes, "split along axis 0 copied");
  tu_assert_tensor_bytes(p[0], 2, (int64_t[]){1023, 3}, h0, "part 0");
  tu_assert_tensor_bytes(p[1], 2, (int64_t[]){33, 3}, h1, "part 1");
  lam_tensor *all[] = {x0, x1, y, p[0], p[1]};
  for (int i = 0; i < 5; i++) lam_tensor_free(all[i]);
  free(want);
  free(h0);
  free(h1);
  lam_ctx_free(ctx);
}

/* ---- slice ------------------------------------------------------------- */

Test(shape, slice_python_golden) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  int32_t v[7] = {0, 1, 2, 3, 4, 5, 6};
  lam_tensor *xs[8] = {0};
  for (int n = 1; n <= 7; n++) xs[n] = lam_tensor_from_host(ctx, LAM_I32, 1, (int64_t[]){n}, v);
  /* rows n, start, stop, step, has_start, has_stop, len, first; f64, where INT64_MAX reads 2^63 */
  tu_golden *gold = tu_golden_load("shape_golden.safetensors");
  const tu_array *slices = tu_golden_get(gold, "slices");
  size_t ncases = (size_t)slices->shape[0];
  for (size_t i = 0; i < ncases; i++) {
    int64_t row[8];
    for (int k = 0; k < 8; k++) {
      double d = slices->v[i * 8 + (size_t)k];
      row[k] = d >= 0x1p63 ? INT64_MAX : (int64_t)d;
    }
    const int64_t *g = row;
    int64_t first, len = py_slice(g[0], g[1], g[2], g[3], (int)g[4], (int)g[5], &first);
    cr_assert_eq(len, g[6], "C reference length, case %zu", i);
    if (len) cr_assert_eq(first, g[7], "C reference first, case %zu", i);
    lam_tensor *y = lam_slice(xs[g[0]], g[4] ? &g[1] : NULL, g[5] ? &g[2] : NULL, &g[3]);
    if (g[6] == 0) {
      tu_assert_fails(y, LAM_ERR_SHAPE, "selects no elements");
      continue;
    }
    cr_assert(y, "case %zu (n %lld, %lld:%lld:%lld): %s", i, (long long)g[0], (long long)g[1],
              (long long)g[2], (long long)g[3], lam_last_error());
    cr_assert_eq(lam_tensor_numel(y), g[6], "case %zu length", i);
    int32_t got[7];
    lam_tensor_to_host(y, got, (size_t)g[6] * 4);
    for (int64_t k = 0; k < g[6]; k++)
      cr_assert_eq(got[k], g[7] + k * g[3], "case %zu (n %lld, %lld:%lld:%lld) element %lld", i,
                   (long long)g[0], (long long)g[1], (long long)g[2], (long long)g[3], (long long)k);
    lam_tensor_free(y);
  }
  for (int n = 1; n <= 7; n++) lam_tensor_free(xs[n]);
  tu_assert_no_leak(ctx, m);
  tu_golden_free(gold);
  lam_ctx_free(ctx);
}

Test(shape, slice_random_multi_axis) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(7);
  tu_mark m = tu_mark_now(ctx);
  int empties = 0, oks = 0;
  for (int it = 0; it < 120; it++) {
    lam_dtype dt = dts[it % N_DTS];
    if (!tu_has_dtype(ctx, dt)) continue;
    int nd = 1 + it % 5;
    int64_t s[8], st[8], os[8], beg[8], step[8], start[8], stop[8], c[8];
    tu_rand_shape(&r, nd, 20000, s);
    tu_strides(nd, s, st);
    bool empty = false;
    for (int d = 0; d < nd; d++) {
      static const int64_t steps[] = {1, 1, 2, 3, -1, -2, -3, 50, -50};
      step[d] = steps[tu_randint(&r, 0, 9)];
      start[d] = tu_randint(&r, -s[d] - 2, s[d] + 2);
      stop[d] = tu_randint(&r, -s[d] - 2, s[d] + 2);
      if ((step[d] > 0) == (start[d] > stop[d]) && tu_randint(&r, 0, 8) != 0) {
        int64_t t = start[d]; /* mostly non-empty ranges */
        start[d] = stop[d];
        stop[d] = t;
      }
      if (tu_randint(&r, 0, 3) == 0) { /* whole axis, either direction */
        start[d] = step[d] > 0 ? INT64_MIN : INT64_MAX;
        stop[d] = step[d] > 0 ? INT64_MAX : INT64_MIN;
      }
      os[d] = py_slice(s[d], start[d], stop[d], step[d], 1, 1, &beg[d]);
      if (os[d] == 0) empty = true;
    }
    unsigned char *h;
    lam_tensor *x = tu_rand_tensor(ctx, &r, dt, nd, s, &h);
    lam_tensor *y = it % 7 == 0 && nd > 1 ? NULL : lam_slice(x, start, stop, step);
    if (it % 7 == 0 && nd > 1) { /* slice_axis on one random axis instead */
      int ax = (int)tu_randint(&r, 0, nd);
      for (int d = 0; d < nd; d++)
        if (d != ax) {
          os[d] = s[d];
          beg[d] = 0;
          step[d] = 1;
        }
      empty = os[ax] == 0;
      y = lam_slice_axis(x, ax - (it % 2) * nd, start[ax], stop[ax], step[ax]);
    }
    if (empty) {
      tu_assert_fails(y, LAM_ERR_SHAPE, "selects no elements");
      empties++;
    } else {
      int64_t n = tu_numel(nd, os);
      int64_t *map = malloc((size_t)n * sizeof *map);
      for (int64_t i = 0; i < n; i++) {
        tu_unravel(i, nd, os, c);
        map[i] = 0;
        for (int d = 0; d < nd; d++) map[i] += (beg[d] + c[d] * step[d]) * st[d];
      }
      unsigned char *want = apply_map(h, lam_dtype_size(dt), map, n, NULL);
      tu_assert_tensor_bytes(y, nd, os, want, "slice");
      free(map);
      free(want);
      oks++;
    }
    lam_tensor_free(y);
    lam_tensor_free(x);
    free(h);
  }
  cr_assert(empties > 0 && oks > 40, "coverage: %d empty, %d sliced", empties, oks);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

Test(shape, slice_null_arrays_and_views) {
  lam_ctx *ctx = tu_ctx();
  int32_t v[12];
  for (int i = 0; i < 12; i++) v[i] = i;
  lam_tensor *x = lam_tensor_from_host(ctx, LAM_I32, 2, (int64_t[]){3, 4}, v);
  /* NULL start/stop with negative steps: x[::-1, ::-2] */
  lam_tensor *y = lam_slice(x, NULL, NULL, (int64_t[]){-1, -2});
  int32_t got[12];
  cr_assert(y, "%s", lam_last_error());
  cr_assert(lam_tensor_shape(y)[0] == 3 && lam_tensor_shape(y)[1] == 2);
  lam_tensor_to_host(y, got, 6 * 4);
  int32_t want[6] = {11, 9, 7, 5, 3, 1};
  cr_assert(memcmp(got, want, sizeof want) == 0);
  lam_tensor_free(y);
  /* all NULL: the whole tensor */
  y = lam_slice(x, NULL, NULL, NULL);
  cr_assert_eq(lam_tensor_numel(y), 12);
  lam_tensor_free(y);
  /* x[1:2, :] is a contiguous run: a view (no new device bytes) */
  lam_stats s0, s1;
  lam_ctx_stats(ctx, &s0);
  y = lam_slice_axis(x, 0, 1, 2, 1);
  lam_ctx_stats(ctx, &s1);
  cr_assert_eq(s1.live_bytes, s0.live_bytes);
  lam_tensor_to_host(y, got, 4 * 4);
  cr_assert(got[0] == 4 && got[3] == 7);
  lam_tensor_free(y);
  lam_tensor_free(x);
  lam_ctx_free(ctx);
}

/* ---- pad --------------------------------------------------------------- */

static int64_t pad_src(int64_t o, int64_t b, int64_t dim, int mode) {
  int64_t c = o - b;
  if (c >= 0 && c < dim) return c;
  if (mode == 0) return -1;
  if (mode == 2) return c < 0 ? 0 : dim - 1;
  if (mode == 3) return c < 0 ? c + dim : c - dim;
  return c < 0 ? -c : 2 * (dim - 1) - c;
}

Test(shape, pad_random_all_modes_dtypes) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(8);
  tu_mark m = tu_mark_now(ctx);
  static const char *const mname[] = {"pad constant", "pad reflect", "pad replicate",
                                      "pad circular"};
  for (int it = 0; it < 88; it++) {
    lam_dtype dt = dts[it % N_DTS];
    if (!tu_has_dtype(ctx, dt)) continue;
    int nd = it < 80 ? 1 + (it / 4) % 5 : 8, mode = it % 4; /* the last few at rank 8 */
    int64_t s[8] = {2, 3, 2, 2, 3, 2, 2, 3}, st[8], os[8], pads[16], c[8];
    if (nd < 8) tu_rand_shape(&r, nd, 5000, s);
    tu_strides(nd, s, st);
    for (int d = 0; d < nd; d++) {
      int64_t lim = mode == 1 ? s[d] : mode == 3 ? s[d] + 1 : nd == 8 ? 2 : 5;
      pads[2 * d] = tu_randint(&r, 0, lim);
      pads[2 * d + 1] = tu_randint(&r, 0, lim);
      os[d] = s[d] + pads[2 * d] + pads[2 * d + 1];
    }
    unsigned char *h, fill[8];
    double value = dt == LAM_U8 ? 200 : -2.5;
    encode(dt, value, fill);
    lam_tensor *x = tu_rand_tensor(ctx, &r, dt, nd, s, &h);
    int64_t n = tu_numel(nd, os);
    int64_t *map = malloc((size_t)n * sizeof *map);
    for (int64_t i = 0; i < n; i++) {
      tu_unravel(i, nd, os, c);
      map[i] = 0;
      for (int d = 0; d < nd && map[i] >= 0; d++) {
        int64_t q = pad_src(c[d], pads[2 * d], s[d], mode);
        map[i] = q < 0 ? -1 : map[i] + q * st[d];
      }
    }
    unsigned char *want = apply_map(h, lam_dtype_size(dt), map, n, fill);
    lam_tensor *y = lam_pad(x, pads, (lam_pad_mode)mode, value);
    tu_assert_tensor_bytes(y, nd, os, want, mname[mode]);
    lam_tensor_free(y);
    lam_tensor_free(x);
    free(map);
    free(want);
    free(h);
  }
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* Case i of tools/gen_shape_golden.py: pad.<i>.want and the configuration. */
typedef struct golden_pad {
  int ndim;
  int64_t shape[4], pads[8];
  int mode;
  double value;
  int64_t oshape[4];
  int n;
  const double *want;
} golden_pad;

static golden_pad golden_pad_case(const tu_golden *gold, int i) {
  static const char *const modes[] = {"constant", "reflect", "replicate", "circular"};
  const tu_array *want = tu_golden_get(gold, "pad.%d.want", i);
  golden_pad c = {0};
  double v[8];
  c.ndim = tu_golden_nums(gold, v, 4, "pad.%d.shape", i);
  for (int d = 0; d < c.ndim; d++) c.shape[d] = (int64_t)v[d];
  cr_assert_eq(tu_golden_nums(gold, v, 8, "pad.%d.pads", i), 2 * c.ndim);
  for (int d = 0; d < 2 * c.ndim; d++) c.pads[d] = (int64_t)v[d];
  const char *mode = tu_golden_meta(gold, "pad.%d.mode", i);
  c.mode = -1;
  for (int k = 0; k < 4; k++)
    if (strcmp(mode, modes[k]) == 0) c.mode = k; /* the lam_pad_mode order */
  cr_assert(c.mode >= 0, "pad mode %s", mode);
  c.value = tu_golden_num(gold, "pad.%d.value", i);
  memcpy(c.oshape, want->shape, sizeof c.oshape);
  c.n = (int)want->n;
  c.want = want->v;
  return c;
}

Test(shape, pad_torch_golden) {
  lam_ctx *ctx = tu_ctx();
  tu_golden *gold = tu_golden_load("shape_golden.safetensors");
  for (size_t i = 0; i < (size_t)tu_golden_count(gold, "pad.cases"); i++) {
    const golden_pad gc = golden_pad_case(gold, (int)i), *g = &gc;
    int64_t n = tu_numel(g->ndim, g->shape);
    double *xv = malloc((size_t)n * sizeof *xv);
    for (int64_t k = 0; k < n; k++) xv[k] = (double)k;
    lam_tensor *x = lam_tensor_from_host(ctx, LAM_F64, g->ndim, g->shape, xv);
    lam_tensor *y = lam_pad(x, g->pads, (lam_pad_mode)g->mode, g->value);
    cr_assert(y, "golden pad %zu: %s", i, lam_last_error());
    for (int d = 0; d < g->ndim; d++) cr_assert_eq(lam_tensor_shape(y)[d], g->oshape[d]);
    double *got = tu_read_f64(y);
    char what[32];
    snprintf(what, sizeof what, "golden pad %zu", i);
    tu_assert_close_f64(got, g->want, g->n, 0, 0, what);
    free(got);
    free(xv);
    lam_tensor_free(y);
    lam_tensor_free(x);
  }
  tu_golden_free(gold);
  lam_ctx_free(ctx);
}

/* ---- gradient checks --------------------------------------------------- */

typedef struct gargs {
  int perm[8];
  int axis, n, mode, which;
  int64_t shape[8], start[8], stop[8], step[8], pads[16], sizes[8];
  int ndim;
} gargs;

static lam_tensor *f_permute(lam_tensor *const *xs, int n, void *u) {
  (void)n;
  return lam_permute(xs[0], ((gargs *)u)->perm);
}
static lam_tensor *f_transpose(lam_tensor *const *xs, int n, void *u) {
  (void)n;
  (void)u;
  return lam_transpose(xs[0], -1, 0);
}
static lam_tensor *f_broadcast(lam_tensor *const *xs, int n, void *u) {
  (void)n;
  gargs *a = u;
  return lam_broadcast_to(xs[0], a->ndim, a->shape);
}
static lam_tensor *f_concat(lam_tensor *const *xs, int n, void *u) {
  return lam_concat(xs, n, ((gargs *)u)->axis);
}
static lam_tensor *f_stack(lam_tensor *const *xs, int n, void *u) {
  return lam_stack(xs, n, ((gargs *)u)->axis);
}
/* split into parts; return concat(part[n-1], part[0]) (middle parts unused)
 * or, with which >= 0, that part alone. */
static lam_tensor *f_split(lam_tensor *const *xs, int n, void *u) {
  (void)n;
  gargs *a = u;
  lam_tensor *p[8];
  if (lam_split(xs[0], a->axis, a->n, a->sizes[0] ? a->sizes : NULL, p) != LAM_OK) return NULL;
  lam_tensor *y = a->which >= 0 ? lam_tensor_retain(p[a->which])
                                : lam_concat((lam_tensor *[]){p[a->n - 1], p[0]}, 2, a->axis);
  for (int k = 0; k < a->n; k++) lam_tensor_free(p[k]);
  return y;
}
static lam_tensor *f_slice(lam_tensor *const *xs, int n, void *u) {
  (void)n;
  gargs *a = u;
  return lam_slice(xs[0], a->start, a->stop, a->step);
}
static lam_tensor *f_slice_axis(lam_tensor *const *xs, int n, void *u) {
  (void)n;
  gargs *a = u;
  return lam_slice_axis(xs[0], a->axis, a->start[0], a->stop[0], a->step[0]);
}
static lam_tensor *f_pad(lam_tensor *const *xs, int n, void *u) {
  (void)n;
  gargs *a = u;
  return lam_pad(xs[0], a->pads, (lam_pad_mode)a->mode, 0.25);
}
/* contiguous(flatten(unsqueeze(squeeze(x)))) then reshape */
static lam_tensor *f_views(lam_tensor *const *xs, int n, void *u) {
  (void)n;
  (void)u;
  lam_tensor *a = lam_squeeze(xs[0], 1);
  lam_tensor *b = lam_unsqueeze(a, -1);
  lam_tensor *c = lam_flatten(b, 0, 1);
  lam_tensor *d = lam_contiguous(c);
  lam_tensor *e = lam_reshape(d, 1, (int64_t[]){-1});
  lam_tensor_free(a);
  lam_tensor_free(b);
  lam_tensor_free(c);
  lam_tensor_free(d);
  return e;
}

Test(shape, gradcheck_layout_ops) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(9);
  tu_mark m = tu_mark_now(ctx);
  lam_tensor *x = tu_rand_f64(ctx, &r, 3, (int64_t[]){2, 3, 4}, -1, 1);
  gargs a = {.perm = {2, 0, 1}};
  tu_gradcheck(ctx, f_permute, &a, &x, 1, 1e-6, 1e-6, 1, 1e-3, "permute");
  tu_gradcheck(ctx, f_transpose, &a, &x, 1, 1e-6, 1e-6, 1, 1e-3, "transpose");
  lam_tensor *b = tu_rand_f64(ctx, &r, 2, (int64_t[]){3, 1}, -1, 1);
  gargs ab = {.ndim = 3, .shape = {2, 3, 4}};
  tu_gradcheck(ctx, f_broadcast, &ab, &b, 1, 1e-6, 1e-6, 1, 1e-3, "broadcast_to");
  lam_tensor *v = tu_rand_f64(ctx, &r, 3, (int64_t[]){2, 1, 3}, -1, 1);
  tu_gradcheck(ctx, f_views, NULL, &v, 1, 1e-6, 1e-6, 1, 1e-3, "squeeze/unsqueeze/flatten/contiguous");
  lam_tensor_free(v);
  lam_tensor_free(b);
  lam_tensor_free(x);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

Test(shape, gradcheck_concat_stack_split) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(10);
  tu_mark m = tu_mark_now(ctx);
  /* six inputs: more than one tape node holds (chained nodes) */
  lam_tensor *xs[6];
  for (int k = 0; k < 6; k++) xs[k] = tu_rand_f64(ctx, &r, 2, (int64_t[]){2, 1 + k % 3}, -1, 1);
  gargs a = {.axis = -1};
  tu_gradcheck(ctx, f_concat, &a, xs, 6, 1e-6, 1e-6, 1, 1e-3, "concat(6)");
  tu_gradcheck(ctx, f_concat, &a, xs + 2, 2, 1e-6, 1e-6, 1, 1e-3, "concat(2)");
  lam_tensor *ys[5];
  for (int k = 0; k < 5; k++) ys[k] = tu_rand_f64(ctx, &r, 2, (int64_t[]){2, 3}, -1, 1);
  a.axis = 1;
  tu_gradcheck(ctx, f_stack, &a, ys, 5, 1e-6, 1e-6, 1, 1e-3, "stack(5)");
  lam_tensor *x = tu_rand_f64(ctx, &r, 3, (int64_t[]){2, 6, 2}, -1, 1);
  gargs s = {.axis = 1, .n = 3, .which = -1};
  tu_gradcheck(ctx, f_split, &s, &x, 1, 1e-6, 1e-6, 1, 1e-3, "split equal, concat(last, first)");
  gargs s2 = {.axis = -2, .n = 3, .which = 1, .sizes = {1, 4, 1}};
  tu_gradcheck(ctx, f_split, &s2, &x, 1, 1e-6, 1e-6, 1, 1e-3, "split sizes, middle part");
  gargs s3 = {.axis = 0, .n = 2, .which = 1};
  tu_gradcheck(ctx, f_split, &s3, &x, 1, 1e-6, 1e-6, 1, 1e-3, "split axis 0 (views)");
  for (int k = 0; k < 6; k++) lam_tensor_free(xs[k]);
  for (int k = 0; k < 5; k++) lam_tensor_free(ys[k]);
  lam_tensor_free(x);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

Test(shape, gradcheck_slice_pad) {
  lam_ctx *ctx = tu_ctx();
  tu_rng r = tu_rng_make(11);
  tu_mark m = tu_mark_now(ctx);
  lam_tensor *x = tu_rand_f64(ctx, &r, 3, (int64_t[]){3, 5, 4}, -1, 1);
  gargs a = {.start = {-1, 4, 0}, .stop = {INT64_MIN, 0, 99}, .step = {-2, -1, 3}};
  tu_gradcheck(ctx, f_slice, &a, &x, 1, 1e-6, 1e-6, 1, 1e-3, "slice negative steps");
  gargs b = {.start = {1, 0, 0}, .stop = {2, 5, 4}, .step = {1, 1, 1}};
  tu_gradcheck(ctx, f_slice, &b, &x, 1, 1e-6, 1e-6, 1, 1e-3, "slice view");
  gargs c = {.axis = -1, .start = {1}, .stop = {-1}, .step = {1}};
  tu_gradcheck(ctx, f_slice_axis, &c, &x, 1, 1e-6, 1e-6, 1, 1e-3, "slice_axis");
  lam_tensor *p = tu_rand_f64(ctx, &r, 3, (int64_t[]){2, 3, 4}, -1, 1);
  static const char *const mname[] = {"pad constant", "pad reflect", "pad replicate",
                                      "pad circular"};
  for (int mode = 0; mode < 4; mode++) {
    gargs d = {.mode = mode, .pads = {1, 0, 2, 1, 3, 2}};
    if (mode == 2) d.pads[4] = 6; /* replicate: pads wider than the axis */
    if (mode == 3) d.pads[4] = 4; /* circular: a whole period (pad == dim) */
    tu_gradcheck(ctx, f_pad, &d, &p, 1, 1e-6, 1e-6, 1, 1e-3, mname[mode]);
  }
  lam_tensor *p8 = tu_rand_f64(ctx, &r, 8, (int64_t[]){2, 1, 1, 2, 1, 1, 1, 2}, -1, 1);
  for (int mode = 0; mode < 4; mode++) {
    gargs d = {.mode = mode, .pads = {1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 1}};
    tu_gradcheck(ctx, f_pad, &d, &p8, 1, 1e-6, 1e-6, 1, 1e-3, "pad rank 8");
  }
  lam_tensor_free(p8);
  lam_tensor *q = tu_rand_f64(ctx, &r, 2, (int64_t[]){1, 3}, -1, 1);
  gargs e = {.mode = 2, .pads = {2, 1, 0, 3}};
  tu_gradcheck(ctx, f_pad, &e, &q, 1, 1e-6, 1e-6, 1, 1e-3, "pad replicate on a size-1 axis");
  lam_tensor_free(q);
  lam_tensor_free(p);
  lam_tensor_free(x);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}

/* ---- bad input --------------------------------------------------------- */

Test(shape, bad_input) {
  lam_ctx *ctx = tu_ctx();
  tu_mark m = tu_mark_now(ctx);
  lam_tensor *x = lam_tensor_zeros(ctx, LAM_F32, 3, (int64_t[]){2, 3, 4});
  lam_tensor *y = lam_tensor_zeros(ctx, LAM_F32, 3, (int64_t[]){2, 5, 4});
  lam_tensor *xd = lam_tensor_zeros(ctx, LAM_F64, 3, (int64_t[]){2, 3, 4});
  lam_tensor *s = lam_tensor_scalar(ctx, LAM_F32, 1);
  tu_mark m2 = tu_mark_now(ctx);

  lam_error_clear();
  tu_assert_fails(lam_reshape(NULL, 1, (int64_t[]){4}), LAM_ERR_NULL, "lam_reshape");
  tu_assert_fails(lam_reshape(x, 1, (int64_t[]){5}), LAM_ERR_SHAPE, "lam_reshape: cannot reshape");
  tu_assert_fails(lam_unsqueeze(x, 4), LAM_ERR_INVALID_ARGUMENT, "lam_unsqueeze: axis 4");
  tu_assert_fails(lam_squeeze(x, 1), LAM_ERR_SHAPE, "has size 3, not 1");
  tu_assert_fails(lam_flatten(x, 2, 1), LAM_ERR_INVALID_ARGUMENT, "comes after");
  tu_assert_fails(lam_flatten(x, 0, 3), LAM_ERR_INVALID_ARGUMENT, "axis 3");

  tu_assert_fails(lam_permute(x, (int[]){0, 1, 1}), LAM_ERR_INVALID_ARGUMENT, "perm [0,1,1]");
  tu_assert_fails(lam_permute(x, (int[]){0, 1, 3}), LAM_ERR_INVALID_ARGUMENT, "not a permutation");
  tu_assert_fails(lam_permute(x, NULL), LAM_ERR_NULL, "perm is NULL");
  tu_assert_fails(lam_transpose(x, 0, -4), LAM_ERR_INVALID_ARGUMENT, "lam_transpose: axis -4");
  lam_error_clear();
  tu_assert_fails(lam_contiguous(NULL), LAM_ERR_NULL, "lam_contiguous");

  tu_assert_fails(lam_broadcast_to(x, 3, (int64_t[]){2, 6, 4}), LAM_ERR_SHAPE, "cannot broadcast");
  tu_assert_fails(lam_broadcast_to(x, 2, (int64_t[]){3, 4}), LAM_ERR_SHAPE, "cannot broadcast");
  tu_assert_fails(lam_broadcast_to(x, 3, (int64_t[]){2, 0, 4}), LAM_ERR_SHAPE, "lam_broadcast_to");

  tu_assert_fails(lam_concat((lam_tensor *[]){x, x, y, x}, 4, 2), LAM_ERR_SHAPE,
                  "xs[2] has shape [2,5,4] but xs[0] has [2,3,4]");
  lam_tensor *ok = lam_concat((lam_tensor *[]){x, y}, 2, -2);
  cr_assert(ok, "%s", lam_last_error());
  lam_tensor_free(ok);
  tu_assert_fails(lam_concat((lam_tensor *[]){x, xd}, 2, 0), LAM_ERR_DTYPE, "xs[1] is f64");
  tu_assert_fails(lam_concat((lam_tensor *[]){x, x}, 2, 3), LAM_ERR_INVALID_ARGUMENT, "axis 3");
  tu_assert_fails(lam_concat((lam_tensor *[]){x}, 0, 0), LAM_ERR_INVALID_ARGUMENT, "n is 0");
  tu_assert_fails(lam_concat(NULL, 2, 0), LAM_ERR_NULL, "xs is NULL");
  tu_assert_fails(lam_concat((lam_tensor *[]){s, s}, 2, 0), LAM_ERR_SHAPE, "0-dim");
  lam_error_clear();
  tu_assert_fails(lam_concat((lam_tensor *[]){x, NULL}, 2, 0), LAM_ERR_NULL, "xs[1]");
  tu_assert_fails(lam_stack((lam_tensor *[]){x, y}, 2, 0), LAM_ERR_SHAPE, "xs[1] has shape [2,5,4]");
  tu_assert_fails(lam_stack((lam_tensor *[]){x, x}, 2, 4), LAM_ERR_INVALID_ARGUMENT, "axis 4");

  lam_tensor *parts[4] = {x, x, x, x};
  tu_assert_status(lam_split(x, 1, 2, (int64_t[]){1, 1}, parts), LAM_ERR_SHAPE, "do not sum to 3");
  for (int k = 0; k < 2; k++) cr_assert_null(parts[k]);
  tu_assert_status(lam_split(x, 1, 2, (int64_t[]){4, -1}, parts), LAM_ERR_SHAPE, "sizes[1] is -1");
  tu_assert_status(lam_split(x, 1, 2, (int64_t[]){3, 0}, parts), LAM_ERR_SHAPE, "sizes[1] is 0");
  tu_assert_status(lam_split(x, 1, 2, NULL, parts), LAM_ERR_SHAPE, "2 equal parts");
  tu_assert_status(lam_split(x, 5, 2, NULL, parts), LAM_ERR_INVALID_ARGUMENT, "axis 5");
  tu_assert_status(lam_split(x, 0, 0, NULL, parts), LAM_ERR_INVALID_ARGUMENT, "n is 0");
  tu_assert_status(lam_split(x, 0, 2, NULL, NULL), LAM_ERR_NULL, "out is NULL");
  tu_assert_status(lam_split(s, 0, 1, NULL, parts), LAM_ERR_SHAPE, "0-dim");

  tu_assert_fails(lam_slice(x, (int64_t[]){0, 2, 0}, (int64_t[]){2, 2, 4}, NULL), LAM_ERR_SHAPE,
                  "axis 1 of [2,3,4]: slice 2:2:1 selects no elements");
  tu_assert_fails(lam_slice(x, NULL, NULL, (int64_t[]){1, 0, 1}), LAM_ERR_INVALID_ARGUMENT,
                  "step of axis 1 is 0");
  tu_assert_fails(lam_slice_axis(x, 3, 0, 1, 1), LAM_ERR_INVALID_ARGUMENT, "lam_slice_axis: axis 3");
  tu_assert_fails(lam_slice_axis(x, -1, 5, 9, 1), LAM_ERR_SHAPE, "selects no elements");
  tu_assert_fails(lam_slice_axis(x, -1, 0, 9, -1), LAM_ERR_SHAPE, "selects no elements");

  int64_t pads[6] = {0, 0, 3, 0, 0, 0};
  tu_assert_fails(lam_pad(x, pads, LAM_PAD_REFLECT, 0), LAM_ERR_INVALID_ARGUMENT,
                  "reflect pads (3, 0) of axis 1 must be less than its size 3");
  lam_tensor *rp = lam_pad(x, pads, LAM_PAD_REPLICATE, 0); /* replicate allows it */
  lam_tensor *cp = lam_pad(x, pads, LAM_PAD_CIRCULAR, 0); /* circular: pad == dim is one wrap */
  cr_assert(cp, "%s", lam_last_error());
  lam_tensor_free(cp);
  pads[2] = 4;
  tu_assert_fails(lam_pad(x, pads, LAM_PAD_CIRCULAR, 0), LAM_ERR_INVALID_ARGUMENT,
                  "circular pads (4, 0) of axis 1 must be at most its size 3");
  pads[2] = 3;
  cr_assert(rp, "%s", lam_last_error());
  lam_tensor_free(rp);
  pads[2] = -1;
  tu_assert_fails(lam_pad(x, pads, LAM_PAD_CONSTANT, 0), LAM_ERR_INVALID_ARGUMENT, "pads[2] is -1");
  tu_assert_fails(lam_pad(x, pads, (lam_pad_mode)7, 0), LAM_ERR_INVALID_ARGUMENT, "mode 7");
  tu_assert_fails(lam_pad(x, NULL, LAM_PAD_CONSTANT, 0), LAM_ERR_NULL, "pads is NULL");
  lam_tensor *xu = lam_tensor_zeros(ctx, LAM_U8, 1, (int64_t[]){3});
  tu_assert_fails(lam_pad(xu, (int64_t[]){1, 1}, LAM_PAD_CONSTANT, 256), LAM_ERR_INVALID_ARGUMENT,
                  "value 256 does not fit dtype u8");
  tu_assert_fails(lam_pad(xu, (int64_t[]){1, 1}, LAM_PAD_CONSTANT, NAN), LAM_ERR_INVALID_ARGUMENT,
                  "does not fit");
  lam_tensor_free(xu);
  lam_error_clear();
  tu_assert_fails(lam_pad(NULL, pads, LAM_PAD_CONSTANT, 0), LAM_ERR_NULL, "lam_pad: x is NULL");
  tu_assert_no_leak(ctx, m2);

  lam_tensor *all[] = {x, y, xd, s};
  for (int i = 0; i < 4; i++) lam_tensor_free(all[i]);
  tu_assert_no_leak(ctx, m);
  lam_ctx_free(ctx);
}
