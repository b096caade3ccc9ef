#!/usr/bin/env bash
# Runs one test suite under Oclgrind (an OpenCL simulator that checks every
# memory access, data races and API misuse) on small shapes, and fails if
# Oclgrind reports anything or the suite fails.
set -uo pipefail
bin=$1
log=$(mktemp)
LAMINA_TEST_SMALL=1 oclgrind --data-races --check-api "$bin" --jobs=1 --timeout=1200 >"$log" 2>&1
rc=$?
pattern='Invalid (read|write)|data race|Oclgrind - OpenCL runtime error|Work-group divergence|Uninitiali[sz]ed value|Barrier divergence'
if grep -Eq "$pattern" "$log"; then
  echo "Oclgrind reported problems in $bin:"
  grep -E -A6 "$pattern" "$log" | head -80
  rm -f "$log"
  exit 1
fi
tail -3 "$log"
rm -f "$log"
exit $rc
