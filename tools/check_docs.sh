#!/usr/bin/env bash
# tools/check_docs.sh: keeps the code in docs/ and README.md honest. A fenced
# C block preceded by a line "<!-- example: examples/NAME.c -->" must equal
# that file, which CI compiles and runs (ctest "docs" + the examples' tests).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
status=0
for md in "$root"/README.md "$root"/docs/*.md; do
  [ -f "$md" ] || continue
  awk -v md="$md" -v root="$root" '
    /^<!-- example: / { file = $3; want = 1; next }
    want && /^```c/ { inblock = 1; want = 0; out = ""; next }
    inblock && /^```/ { inblock = 0; print file "\t" md > "/dev/stderr";
      path = root "/" file; tmp = path ".docblock";
      printf "%s", out > tmp; close(tmp);
      if (system("cmp -s \"" tmp "\" \"" path "\"") != 0) { print "MISMATCH " md " vs " file; bad = 1 }
      system("rm -f \"" tmp "\""); next }
    inblock { out = out $0 "\n" }
    END { exit bad }
  ' "$md" 2>/dev/null || status=1
done
[ $status -eq 0 ] && echo "docs: every example block matches its file"
exit $status
