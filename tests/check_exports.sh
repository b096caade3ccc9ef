#!/usr/bin/env bash
# tests/check_exports.sh: the shared library exports exactly the public API.
# Fails when liblamina.so exports an internal (lam__) symbol, or when a
# function declared with LAM_API under include/ is not exported.
# Usage: check_exports.sh path/to/liblamina.so path/to/include
#        check_exports.sh path/to/liblamina_dist.so path/to/include/lamina/dist.h
# Given the include folder, lamina/dist.h is skipped: its functions are in
# the optional library lamina_dist, checked against that header alone
# (ctest "exports_dist").
set -euo pipefail
lib=$1; inc=$2
skip=(! -name export.h)
[ -d "$inc" ] && skip+=(! -path '*/lamina/dist.h')

exported=$(nm -D --defined-only "$lib" | awk '{ print $NF }' | sort -u)

# Every "LAM_API ... name(" in the public headers (export.h defines the macro
# itself); declarations may span lines, so each header is read as one line.
declared=$(find "$inc" -name '*.h' "${skip[@]}" -print0 | sort -z |
  xargs -0 -I{} sh -c 'tr "\n" " " < "$1"; echo' _ {} |
  grep -oE 'LAM_API[^;(]*\(' |
  sed -E 's/[[:space:]]*\($//; s/.*[^A-Za-z0-9_]//' | sort -u)

status=0
internal=$(grep -E '^lam__' <<<"$exported" || true)
if [ -n "$internal" ]; then
  echo "check_exports: $(wc -l <<<"$internal") internal lam__ symbol(s) exported from $lib:"
  sed 's/^/  /' <<<"$internal"
  status=1
fi
missing=$(comm -23 <(printf '%s\n' "$declared") <(printf '%s\n' "$exported"))
if [ -n "$missing" ]; then
  echo "check_exports: $(wc -l <<<"$missing") LAM_API function(s) in $inc not exported:"
  sed 's/^/  /' <<<"$missing"
  status=1
fi
if [ $status -eq 0 ]; then
  echo "check_exports: $(wc -l <<<"$declared") LAM_API functions exported, no lam__ symbol"
fi
exit $status
