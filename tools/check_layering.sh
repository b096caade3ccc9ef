#!/usr/bin/env bash
# tools/check_layering.sh: enforces the library's dependency order. Each
# object file of lamina_objects belongs to the layer of its src/ folder; an
# undefined symbol in an object that another object of a HIGHER layer defines
# is a reference that runs back up, and fails the check.
#
# Usage: check_layering.sh OBJ...        (object files; ';'-separated lists,
#                                         as $<TARGET_OBJECTS> gives, work too)
#        check_layering.sh BUILD_DIR     (every object of lamina_objects there,
#                                         stale ones of moved files included)
# ctest runs it as "layering" (tests/CMakeLists.txt).
set -euo pipefail

# ---- the layers, lowest first: the one place they are defined ---------------
# "folder:layer"; entries of one layer are adjacent. A layer may use its own
# symbols and those of any layer before it, never one after it.
#   runtime   src/runtime/: context, devices, errors, buffer pool, program
#             cache, kernel launching; "generated" is the embedded kernels
#             (build/generated/lamina_kernels.c) that the program cache reads
#   tensor    the files directly in src/ ("."): src/tensor.c (creation,
#             host copies, dtypes); views that record on the tape are ops
#             (src/ops/tensor_views.c)
#   ptree     src/ptree/: parameter trees of tensors
#   autodiff  src/autodiff/: the tape, grad / value_and_grad over ptrees
#   ops       src/ops/: the differentiable ops (host code of cl/*.cl)
#   nn        src/nn/: layers, initialisers, params over the ops
#   train     src/train/: losses, optimisers, schedules, fit, files
#   models    src/models/: the model zoo (ResNet, MobileNetV2, BERT, GPT-2) over nn and train
#   dist      src/dist/: lamina_dist, data parallelism over MPI, a library of its
#             own over liblamina's public API (objects of lamina_dist_objects;
#             nothing in lamina_objects can reference it: ctest "layering_dist"
#             checks both sets together)
LAYERS=(
  "runtime:runtime"
  "generated:runtime"
  ".:tensor"
  "ptree:ptree"
  "autodiff:autodiff"
  "ops:ops"
  "nn:nn"
  "train:train"
  "models:models"
  "dist:dist"
)

objs=()
for a in "$@"; do
  IFS=';' read -r -a parts <<<"$a"
  for p in "${parts[@]}"; do
    [ -n "$p" ] || continue
    if [ -d "$p" ]; then
      while IFS= read -r o; do objs+=("$o"); done \
        < <(find "$p" \( -path '*/lamina_objects.dir/*' -o -path '*/lamina_dist_objects.dir/*' \) -name '*.o' | sort)
    else
      objs+=("$p")
    fi
  done
done
if [ ${#objs[@]} -eq 0 ]; then
  echo "check_layering: no object files given (pass the build dir or the objects)" >&2
  exit 2
fi

# Writes "rank<TAB>layer<TAB>name" for an object: name is its path from the
# src/ (or generated/) folder, e.g. ops/conv.c.o.
classify() {
  local o=$1 rel folder i
  case "$o" in
    */src/*) rel=${o##*/src/} ;;
    */generated/*) rel=generated/${o##*/generated/} ;;
    *) echo "check_layering: $o is neither under src/ nor generated/" >&2; return 1 ;;
  esac
  if [[ "$rel" == */* ]]; then folder=${rel%%/*}; else folder=.; fi
  local entry layer rank=-1 prev=
  for entry in "${LAYERS[@]}"; do
    layer=${entry#*:}
    [ "$layer" = "$prev" ] || rank=$((rank + 1))
    prev=$layer
    if [ "${entry%%:*}" = "$folder" ]; then
      printf '%s\t%s\t%s\n' "$rank" "$layer" "$rel"
      return 0
    fi
  done
  echo "check_layering: src/$folder/ ($o) has no layer; add it to LAYERS in $0" >&2
  return 1
}

table=$(mktemp)
trap 'rm -f "$table"' EXIT
# One line per symbol: "D|U<TAB>symbol<TAB>rank<TAB>layer<TAB>object".
for o in "${objs[@]}"; do
  info=$(classify "$o")
  nm --defined-only --extern-only "$o" | awk -v info="$info" 'NF >= 3 { print "D\t" $3 "\t" info }'
  nm --undefined-only "$o" | awk -v info="$info" '{ print "U\t" $NF "\t" info }'
done >"$table"

awk -F'\t' '
  $1 == "D" { rank[$2] = $3; layer[$2] = $4; where[$2] = $5; next }
  $1 == "U" { use[++n] = $0 }
  END {
    bad = 0
    for (i = 1; i <= n; i++) {
      split(use[i], f, "\t"); s = f[2]
      if (!(s in rank) || rank[s] <= f[3]) continue
      printf "layering: %s (%s) uses %s from %s (%s), a higher layer\n", \
             f[5], f[4], s, where[s], layer[s]
      bad++
    }
    if (bad) { printf "layering: %d reference(s) run back up the order\n", bad; exit 1 }
  }
' "$table"
order=$(printf '%s\n' "${LAYERS[@]}" | awk -F: '!seen[$2]++ { printf "%s%s", sep, $2; sep = " -> " }')
echo "layering: ${#objs[@]} objects, no reference runs back up ($order)"
