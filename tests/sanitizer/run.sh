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
# build (the library reports it) instead of aborting.
export ASAN_OPTIONS="detect_leaks=1:exitcode=86:log_path=$logs/asan:allocator_may_return_null=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$here/lsan.supp:print_suppressions=0:exitcode=86${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$logs/ubsan:suppressions=$here/ubsan.supp${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
"$@"
rc=$?
reports=$(find "$logs" -type f | sort)
if [ -n "$reports" ]; then
  n=$(wc -l <<<"$reports")
  echo "sanitizer: $n report file(s) from $(basename "$1"):"
  while read -r f; do echo "---- $(basename "$f")"; cat "$f"; done <<<"$reports"
  [ $rc -eq 0 ] && rc=86
fi
exit $rc
