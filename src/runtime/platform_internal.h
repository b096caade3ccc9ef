/* runtime/platform_internal.h: the one place where lamina meets the
 * operating system (POSIX, Windows, macOS): file system operations, the user
 * cache directory, a mutex, a once flag, threads and a monotonic clock.
 * Every other source file uses these lam__ functions instead of unistd.h,
 * sys/stat.h, fcntl.h, pthread.h or windows.h (never installed). The
 * implementation is src/runtime/platform.c, with a _WIN32 branch and a POSIX
 * branch (Linux, macOS). */
#ifndef LAMINA_PLATFORM_INTERNAL_H
#define LAMINA_PLATFORM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- file system ---------------------------------------------------------- */

/* Creates dir and its parents (mkdir -p; '/' and, on Windows, '\\' separate).
 * Returns 0 on success (also when it exists), -1 otherwise. */
int lam__mkdirs(const char *dir);

/* Creates a new file beside `path` (exclusive create, name `path.tmp<pid>-<n>`)
 * opened "wb", storing its name in tmp (cap bytes). NULL with errno set when
 * none could be made. */
FILE *lam__temp_open(const char *path, char *tmp, size_t cap);

/* Flushes f and forces its data to the disk (fsync / _commit). Returns 0 on success. */
int lam__file_sync(FILE *f);

/* Renames from to `to`, replacing an existing `to` atomically where the OS
 * can (rename on POSIX, MoveFileEx with MOVEFILE_REPLACE_EXISTING on Windows).
 * Returns 0 on success. */
int lam__file_replace(const char *from, const char *to);

/* Stores the size of the open file f in *size when it is a regular file.
 * Returns 0 on success, -1 when f is not a regular file or cannot be examined. */
int lam__file_size(FILE *f, uint64_t *size);

/* Reads a whole regular file into a malloc'd NUL-terminated buffer, its
 * length (without the NUL) in *size. NULL when unreadable or larger than
 * max_bytes (0: no limit). */
char *lam__read_all(const char *path, size_t max_bytes, size_t *size);

/* Whether f is a terminal (progress lines redraw in place only there). */
bool lam__is_tty(FILE *f);

/* The process id, for unique temporary names. */
long lam__process_id(void);

/* Writes the default kernel cache directory into out (cap bytes): on Linux
 * $XDG_CACHE_HOME/lamina, else ~/.cache/lamina; on macOS
 * ~/Library/Caches/lamina; on Windows %LOCALAPPDATA%\lamina. Returns 0, or
 * -1 when no base directory is known (the disk cache is then off). */
int lam__user_cache_dir(char *out, size_t cap);

/* ---- threads -------------------------------------------------------------- */

/* A mutex that may be defined statically with LAM__MUTEX_INIT (no init call,
 * never destroyed): pthread_mutex_t on POSIX, SRWLOCK on Windows. */
#if defined(_WIN32)
typedef struct lam__mutex {
  void *srw; /* an SRWLOCK (a pointer-sized word, SRWLOCK_INIT is zero) */
} lam__mutex;
#define LAM__MUTEX_INIT {0}
#else
#include <pthread.h>
typedef struct lam__mutex {
  pthread_mutex_t m;
} lam__mutex;
#define LAM__MUTEX_INIT {PTHREAD_MUTEX_INITIALIZER}
#endif
void lam__mutex_lock(lam__mutex *m);
void lam__mutex_unlock(lam__mutex *m);

/* Runs fn exactly once per flag across threads (statically zeroed flag);
 * callers that lose the race wait until fn has returned. */
typedef struct lam__once {
  volatile int state; /* 0 not run, 1 running, 2 done (guarded by a global mutex) */
} lam__once;
#define LAM__ONCE_INIT {0}
void lam__call_once(lam__once *once, void (*fn)(void));

/* A joinable thread running fn(arg). Returns 0 on success. */
typedef struct lam__thread {
  void *handle;
} lam__thread;
int lam__thread_start(lam__thread *t, void (*fn)(void *), void *arg);
void lam__thread_join(lam__thread *t);
/* Gives the processor to another thread (short waits on a flag). */
void lam__thread_yield(void);

/* ---- time ----------------------------------------------------------------- */

/* Seconds on a monotonic clock (only differences mean anything). */
double lam__now_seconds(void);

#endif
