#!/usr/bin/env bash
# tests/check_sentence_embeddings.sh: examples/sentence_embeddings reproduces
# PyTorch's all-MiniLM-L6-v2 sentence embeddings (ctest
# "sentence_embeddings_minilm"). Reads the sentences and reference embeddings
# of tests/data/minilm_embeddings.txt (tools/gen_minilm_reference.py), runs
# the example with --print-embeddings on them, and requires a cosine of at
# least 0.9999 between each of its embeddings and the reference (printing
# every cosine and the largest absolute difference). Exits 77 (ctest's skip)
# when the model folder is absent: tools/fetch_minilm.sh fetches it.
# MIN_COSINE overrides the bound and EXTRA_ARGS adds arguments to the example
# (the quantized runs: EXTRA_ARGS="--quantize 8", MIN_COSINE=0.999).
# Usage: check_sentence_embeddings.sh path/to/sentence_embeddings reference.txt model-dir
set -euo pipefail
prog=$1; ref=$2; dir=${LAMINA_MINILM_DIR:-$3}
for f in config.json model.safetensors tokenizer.json; do
  if [ ! -f "$dir/$f" ]; then
    echo "check_sentence_embeddings: no $dir/$f: skipped (tools/fetch_minilm.sh fetches the model)"
    exit 77
  fi
done
mapfile -t sentences < <(sed -n 's/^S\t//p' "$ref")
[ ${#sentences[@]} -gt 0 ] || { echo "check_sentence_embeddings: no sentences in $ref"; exit 1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
read -r -a extra <<<"${EXTRA_ARGS:-}"
"$prog" --model "$dir" --print-embeddings "${extra[@]}" -- "${sentences[@]}" >"$out"
awk -v min="${MIN_COSINE:-0.9999}" -v n="${#sentences[@]}" '
  FNR == NR { if (sub(/^E\t/, "")) ref[++r] = $0; next }
  { got[++g] = $0 }
  END {
    if (r != n || g != n) { printf "check_sentence_embeddings: %d reference and %d computed embeddings for %d sentences\n", r, g, n; exit 1 }
    bad = 0
    for (i = 1; i <= n; i++) {
      na = split(ref[i], a, " "); nb = split(got[i], b, " ")
      if (na != nb) { printf "sentence %d: %d values, want %d\n", i - 1, nb, na; bad++; continue }
      dot = 0; ra = 0; rb = 0; md = 0
      for (k = 1; k <= na; k++) {
        dot += a[k] * b[k]; ra += a[k] * a[k]; rb += b[k] * b[k]
        d = a[k] - b[k]; if (d < 0) d = -d; if (d > md) md = d
      }
      c = dot / sqrt(ra * rb)
      printf "sentence %d: cosine %.10f (1 - cosine %.1e), max |diff| %.2e%s\n", i - 1, c, 1 - c, md, (c >= min ? "" : "  FAIL")
      if (!(c >= min)) bad++
    }
    if (bad) { printf "check_sentence_embeddings: %d of %d embeddings below cosine %s\n", bad, n, min; exit 1 }
    printf "check_sentence_embeddings: all %d embeddings match PyTorch (cosine >= %s%s)\n", n, min, extra
  }' extra="${EXTRA_ARGS:+, $EXTRA_ARGS}" "$ref" "$out"
