#!/usr/bin/env bash
# tests/check_bad_input.sh: every public function has a bad-input row.
# Reads the LAM_API function names of include/lamina/*.h (as check_exports.sh
# does) and the names in test_bad_input's table (the program writes them with
# LAMINA_BAD_INPUT_LIST set), and fails listing each function without a row
# (and each row naming no public function).
# Usage: check_bad_input.sh path/to/test_bad_input path/to/include
#        check_bad_input.sh path/to/test_dist_bad_input path/to/include/lamina/dist.h
# Given the include folder, lamina/dist.h is skipped: it belongs to the
# optional MPI library lamina_dist, whose rows live in
# tests/mpi/test_dist_bad_input.c (ctest "dist_bad_input_coverage" passes
# that program and the header itself).
set -euo pipefail
prog=$1; inc=$2
skip=(! -name export.h)
[ -d "$inc" ] && skip+=(! -path '*/lamina/dist.h')
declared=$(find "$inc" -name '*.h' "${skip[@]}" -print0 | sort -z |
  xargs -0 -I{} sh -c 'tr "\n" " " < "$1"; echo' _ {} |
  grep -oE 'LAM_API[^;(]*\(' |
  sed -E 's/[[:space:]]*\($//; s/.*[^A-Za-z0-9_]//' | sort -u)
list=$(mktemp)
trap 'rm -f "$list"' EXIT
LAMINA_BAD_INPUT_LIST=$list "$prog" --filter "bad_input/list" >/dev/null 2>&1
covered=$(sort -u "$list")
status=0
missing=$(comm -23 <(printf '%s\n' "$declared") <(printf '%s\n' "$covered"))
if [ -n "$missing" ]; then
  echo "check_bad_input: $(wc -l <<<"$missing") public function(s) without a row in tests/test_bad_input.c:"
  sed 's/^/  /' <<<"$missing"
  status=1
fi
extra=$(comm -13 <(printf '%s\n' "$declared") <(printf '%s\n' "$covered"))
if [ -n "$extra" ]; then
  echo "check_bad_input: $(wc -l <<<"$extra") row(s) of tests/test_bad_input.c name no LAM_API function:"
  sed 's/^/  /' <<<"$extra"
  status=1
fi
[ $status -eq 0 ] && echo "check_bad_input: all $(wc -l <<<"$declared") LAM_API functions have a bad-input row"
exit $status
