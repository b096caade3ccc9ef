/* runtime/platform.c: operating-system specifics behind platform_internal.h.
 *
 * Two branches: _WIN32 (Win32 API: CreateDirectoryA, MoveFileExA, _commit,
 * SRWLOCK, CreateThread, QueryPerformanceCounter; built with MinGW-w64) and
 * POSIX (Linux and macOS: mkdir, open(O_EXCL), fsync, rename, pthreads,
 * clock_gettime). Nothing else in lamina includes an OS header. */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include "runtime/platform_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#if defined(_WIN32)
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#include <fcntl.h>
#include <io.h>
#include <process.h>
#include <sys/stat.h>
#else
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#endif

/* ---- file system ---------------------------------------------------------- */

static int lam__is_sep(char c) {
#if defined(_WIN32)
  return c == '/' || c == '\\';
#else
  return c == '/';
#endif
}

static int lam__mkdir_one(const char *dir) {
#if defined(_WIN32)
  if (CreateDirectoryA(dir, NULL)) return 0;
  if (GetLastError() == ERROR_ALREADY_EXISTS) return 0;
  /* "C:" and similar drive prefixes cannot be created but exist. */
  DWORD attr = GetFileAttributesA(dir);
  return (attr != INVALID_FILE_ATTRIBUTES && (attr & FILE_ATTRIBUTE_DIRECTORY)) ? 0 : -1;
#else
  if (mkdir(dir, 0755) == 0 || errno == EEXIST) return 0;
  return -1;
#endif
}

int lam__mkdirs(const char *dir) {
  char tmp[1024];
  size_t n = dir ? strlen(dir) : 0;
  if (n == 0 || n >= sizeof tmp) return -1;
  memcpy(tmp, dir, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (lam__is_sep(tmp[i]) || tmp[i] == '\0') {
      char c = tmp[i];
      tmp[i] = '\0';
      if (lam__mkdir_one(tmp) != 0) return -1;
      tmp[i] = c;
    }
  }
  return 0;
}

long lam__process_id(void) {
#if defined(_WIN32)
  return (long)GetCurrentProcessId();
#else
  return (long)getpid();
#endif
}

FILE *lam__temp_open(const char *path, char *tmp, size_t cap) {
  for (int attempt = 0; attempt < 100; attempt++) {
    int len = snprintf(tmp, cap, "%s.tmp%ld-%d", path, lam__process_id(), attempt);
    if (len < 0 || (size_t)len >= cap) {
      errno = ENAMETOOLONG;
      return NULL;
    }
#if defined(_WIN32)
    int fd = _open(tmp, _O_WRONLY | _O_CREAT | _O_EXCL | _O_BINARY, _S_IREAD | _S_IWRITE);
#else
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
#endif
    if (fd >= 0) {
#if defined(_WIN32)
      FILE *f = _fdopen(fd, "wb");
      if (!f) _close(fd);
#else
      FILE *f = fdopen(fd, "wb");
      if (!f) close(fd);
#endif
      if (!f) remove(tmp);
      return f;
    }
    if (errno != EEXIST) return NULL;
  }
  return NULL;
}

int lam__file_sync(FILE *f) {
  if (fflush(f) != 0) return -1;
#if defined(_WIN32)
  return _commit(_fileno(f)) == 0 ? 0 : -1;
#else
  return fsync(fileno(f)) == 0 ? 0 : -1;
#endif
}

int lam__file_replace(const char *from, const char *to) {
#if defined(_WIN32)
  /* rename() on Windows fails when `to` exists; MoveFileEx replaces it. */
  if (MoveFileExA(from, to, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH)) return 0;
  errno = EACCES;
  return -1;
#else
  return rename(from, to) == 0 ? 0 : -1;
#endif
}

int lam__file_size(FILE *f, uint64_t *size) {
#if defined(_WIN32)
  struct _stat64 st;
  if (_fstat64(_fileno(f), &st) != 0 || !(st.st_mode & _S_IFREG)) return -1;
#else
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) return -1;
#endif
  *size = (uint64_t)st.st_size;
  return 0;
}

char *lam__read_all(const char *path, size_t max_bytes, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  uint64_t n = 0;
  char *buf = NULL;
  if (lam__file_size(f, &n) == 0 && (max_bytes == 0 || n <= max_bytes) && n < SIZE_MAX &&
      (buf = malloc((size_t)n + 1))) {
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
      free(buf);
      buf = NULL;
    } else {
      buf[n] = '\0';
      *size = (size_t)n;
    }
  }
  fclose(f);
  return buf;
}

bool lam__is_tty(FILE *f) {
#if defined(_WIN32)
  return _isatty(_fileno(f)) != 0;
#else
  return isatty(fileno(f)) == 1;
#endif
}

int lam__user_cache_dir(char *out, size_t cap) {
  int len = -1;
#if defined(_WIN32)
  const char *base = getenv("LOCALAPPDATA");
  if (base && *base) len = snprintf(out, cap, "%s\\lamina", base);
#elif defined(__APPLE__)
  const char *home = getenv("HOME");
  if (home && *home) len = snprintf(out, cap, "%s/Library/Caches/lamina", home);
#else
  const char *xdg = getenv("XDG_CACHE_HOME");
  const char *home = getenv("HOME");
  if (xdg && *xdg)
    len = snprintf(out, cap, "%s/lamina", xdg);
  else if (home && *home)
    len = snprintf(out, cap, "%s/.cache/lamina", home);
#endif
  if (len < 0 || (size_t)len >= cap) {
    if (cap) out[0] = '\0';
    return -1;
  }
  return 0;
}

/* ---- threads -------------------------------------------------------------- */

#if defined(_WIN32)
void lam__mutex_lock(lam__mutex *m) { AcquireSRWLockExclusive((PSRWLOCK)&m->srw); }
void lam__mutex_unlock(lam__mutex *m) { ReleaseSRWLockExclusive((PSRWLOCK)&m->srw); }
#else
void lam__mutex_lock(lam__mutex *m) { pthread_mutex_lock(&m->m); }
void lam__mutex_unlock(lam__mutex *m) { pthread_mutex_unlock(&m->m); }
#endif

/* One global lock for every once flag: fn runs while it is held, so a fn
 * must not itself call lam__call_once (none does). */
static lam__mutex lam__once_lock = LAM__MUTEX_INIT;

void lam__call_once(lam__once *once, void (*fn)(void)) {
  lam__mutex_lock(&lam__once_lock);
  if (once->state == 0) {
    once->state = 1;
    fn();
    once->state = 2;
  }
  lam__mutex_unlock(&lam__once_lock);
}

typedef struct {
  void (*fn)(void *);
  void *arg;
} lam__thread_start_args;

#if defined(_WIN32)
static DWORD WINAPI lam__thread_main(LPVOID p) {
#else
static void *lam__thread_main(void *p) {
#endif
  lam__thread_start_args a = *(lam__thread_start_args *)p;
  free(p);
  a.fn(a.arg);
#if defined(_WIN32)
  return 0;
#else
  return NULL;
#endif
}

int lam__thread_start(lam__thread *t, void (*fn)(void *), void *arg) {
  lam__thread_start_args *a = malloc(sizeof *a);
  if (!a) return -1;
  a->fn = fn;
  a->arg = arg;
#if defined(_WIN32)
  HANDLE h = CreateThread(NULL, 0, lam__thread_main, a, 0, NULL);
  if (!h) {
    free(a);
    return -1;
  }
  t->handle = h;
#else
  pthread_t *th = malloc(sizeof *th);
  if (!th || pthread_create(th, NULL, lam__thread_main, a) != 0) {
    free(th);
    free(a);
    return -1;
  }
  t->handle = th;
#endif
  return 0;
}

void lam__thread_join(lam__thread *t) {
  if (!t->handle) return;
#if defined(_WIN32)
  WaitForSingleObject((HANDLE)t->handle, INFINITE);
  CloseHandle((HANDLE)t->handle);
#else
  pthread_join(*(pthread_t *)t->handle, NULL);
  free(t->handle);
#endif
  t->handle = NULL;
}

void lam__thread_yield(void) {
#if defined(_WIN32)
  SwitchToThread();
#else
  sched_yield();
#endif
}

/* ---- time ----------------------------------------------------------------- */

double lam__now_seconds(void) {
#if defined(_WIN32)
  LARGE_INTEGER f, c;
  QueryPerformanceFrequency(&f);
  QueryPerformanceCounter(&c);
  return (double)c.QuadPart / (double)f.QuadPart;
#else
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
#endif
}
