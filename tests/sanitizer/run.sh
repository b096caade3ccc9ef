#!/usr/bin/env bash
# tests/sanitizer/run.sh: runs one test program of a LAMINA_SANITIZE build so
# that any ASan, UBSan or LSan report fails it.
#
# Criterion forks a worker per test, and a worker's LeakSanitizer report comes
# at its exit, after the worker has told the runner that the test passed: the
# runner ignores the exit status (exitcode=... alone does not fail the suite).
# So every sanitizer writes its reports to files (log_path) in a fresh folder,
# and this script fails when one exists, printing them. ASan and UBSan errors
# also abort the worker (-fno-sanitize-recover=all), which Criterion reports
# as a crash. Suppressions (tests/sanitizer/lsan.supp) cover only frames
# inside PoCL, LLVM and the ICD loader.
# Usage: run.sh program [args...]
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
logs=$(mktemp -d "${TMPDIR:-/tmp}/lamina-san.XXXXXX")
trap 'rm -rf "$logs"' EXIT
# allocator_may_return_null: a failed huge malloc returns NULL as in a normal
# build (the library reports it) instead of aborting. use_sigaltstack=0: LLVM
# (PoCL's kernel compiler) replaces a thread's alternate signal stack with a
# malloc'ed one, which ASan would munmap at thread exit ("failed to
# deallocate", test_threads).
export ASAN_OPTIONS="detect_leaks=1:exitcode=86:log_path=$logs/asan:allocator_may_return_null=1:use_sigaltstack=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$here/lsan.supp:print_suppressions=0:exitcode=86${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$logs/ubsan:suppressions=$here/ubsan.supp${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
# LeakSanitizer's own tracer (the thread that stops the world to scan it) now
# and then crashes on PoCL's worker threads ("Tracer caught signal 11 ...
# LeakSanitizer has encountered a fatal error"): that is no finding about the
# program. A run whose only reports are such tracer failures is repeated once;
# when the repeat has them too it passes with a warning.
tracer_only() {
  local f
  for f in "$@"; do
    grep -q 'LeakSanitizer has encountered a fatal error' "$f" || return 1
    grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer: detected)|runtime error' "$f" && return 1
  done
  return 0
}
for attempt in 1 2; do
  rm -f "$logs"/*
  "$@"
  rc=$?
  mapfile -t reports < <(find "$logs" -type f | sort)
  if [ ${#reports[@]} -gt 0 ] && tracer_only "${reports[@]}"; then
    echo "sanitizer: LeakSanitizer's tracer failed in ${#reports[@]} process(es) of $(basename "$1") (not a finding)"
    [ $attempt -eq 1 ] && { echo "sanitizer: running $(basename "$1") again"; continue; }
    echo "sanitizer: WARNING: the tracer failed again; those processes went unchecked for leaks"
    reports=()
  fi
  break
done
if [ ${#reports[@]} -gt 0 ]; then
  echo "sanitizer: ${#reports[@]} report file(s) from $(basename "$1"):"
  for f in "${reports[@]}"; do echo "---- $(basename "$f")"; cat "$f"; done
  [ $rc -eq 0 ] && rc=86
fi
exit $rc
