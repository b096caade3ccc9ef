/* test_platform.c: the operating-system layer (src/runtime/platform.c):
 * mkdir -p, exclusive temporary files, atomic replace of an existing file,
 * file sizes (regular files only), read-all with a limit, the user cache
 * directory rule, once, mutex + threads, the monotonic clock. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/platform_internal.h"
#include "testutil.h"

static void scratch(char *out, size_t cap, const char *name) {
  const char *base = getenv("TMPDIR");
  snprintf(out, cap, "%s/lamina-platform-%ld-%s", base && *base ? base : "/tmp", lam__process_id(),
           name);
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f, "%s", path);
  fputs(text, f);
  fclose(f);
}

Test(platform, mkdirs_temp_replace_size_read) {
  char root[512], dir[700], path[800], tmp[900];
  scratch(root, sizeof root, "fs");
  snprintf(dir, sizeof dir, "%s/a/b/c", root);
  cr_assert_eq(lam__mkdirs(dir), 0);
  cr_assert_eq(lam__mkdirs(dir), 0, "an existing folder is fine");
  snprintf(path, sizeof path, "%s/file.bin", dir);
  write_text(path, "old contents");
  /* Two temporaries beside the same path get different names. */
  char tmp2[900];
  FILE *f = lam__temp_open(path, tmp, sizeof tmp);
  FILE *g = lam__temp_open(path, tmp2, sizeof tmp2);
  cr_assert(f && g);
  cr_assert_str_neq(tmp, tmp2);
  fputs("new", f);
  cr_assert_eq(lam__file_sync(f), 0);
  fclose(f);
  fclose(g);
  remove(tmp2);
  cr_assert_eq(lam__file_replace(tmp, path), 0, "replaces an existing file");
  size_t n = 0;
  char *text = lam__read_all(path, 0, &n);
  cr_assert_not_null(text);
  cr_assert_eq(n, 3);
  cr_assert_str_eq(text, "new");
  free(text);
  cr_assert_null(lam__read_all(path, 2, &n), "larger than the limit");
  cr_assert_null(lam__read_all(dir, 0, &n), "a folder is not a regular file");
  FILE *r = fopen(path, "rb");
  uint64_t size = 0;
  cr_assert_eq(lam__file_size(r, &size), 0);
  cr_assert_eq(size, 3);
  fclose(r);
  /* A name too long for the buffer is refused, not truncated. */
  char small[8];
  cr_assert_null(lam__temp_open(path, small, sizeof small));
  remove(path);
  cr_assert_neq(lam__mkdirs(""), 0);
}

Test(platform, user_cache_dir_rule) {
  char out[1024];
  setenv("XDG_CACHE_HOME", "/x/cache", 1);
  setenv("HOME", "/home/u", 1);
  cr_assert_eq(lam__user_cache_dir(out, sizeof out), 0);
#if defined(__APPLE__)
  cr_assert_str_eq(out, "/home/u/Library/Caches/lamina");
#else
  cr_assert_str_eq(out, "/x/cache/lamina");
  unsetenv("XDG_CACHE_HOME");
  cr_assert_eq(lam__user_cache_dir(out, sizeof out), 0);
  cr_assert_str_eq(out, "/home/u/.cache/lamina");
#endif
  cr_assert_neq(lam__user_cache_dir(out, 5), 0, "does not fit");
  cr_assert_str_eq(out, "");
  unsetenv("XDG_CACHE_HOME");
  unsetenv("HOME");
  cr_assert_neq(lam__user_cache_dir(out, sizeof out), 0, "no base folder");
}

static atomic_int once_runs;
static void once_fn(void) { atomic_fetch_add(&once_runs, 1); }
static lam__once once_flag = LAM__ONCE_INIT;
static lam__mutex counter_lock = LAM__MUTEX_INIT;
static long counter;

static void bump(void *arg) {
  int n = *(int *)arg;
  lam__call_once(&once_flag, once_fn);
  for (int i = 0; i < n; i++) {
    lam__mutex_lock(&counter_lock);
    counter++;
    lam__mutex_unlock(&counter_lock);
    if (i % 1000 == 0) lam__thread_yield();
  }
}

Test(platform, threads_mutex_once_clock) {
  double t0 = lam__now_seconds();
  enum { THREADS = 4 };
  int n = 20000;
  lam__thread th[THREADS];
  for (int i = 0; i < THREADS; i++) cr_assert_eq(lam__thread_start(&th[i], bump, &n), 0);
  for (int i = 0; i < THREADS; i++) lam__thread_join(&th[i]);
  cr_assert_eq(counter, (long)THREADS * n);
  cr_assert_eq(atomic_load(&once_runs), 1);
  double t1 = lam__now_seconds();
  cr_assert_geq(t1, t0);
  cr_assert_lt(t1 - t0, 600.0);
}
