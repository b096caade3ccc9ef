#!/usr/bin/env bash
# tests/fuzz/run.sh: builds the libFuzzer targets with clang (build dir
# build-fuzz, or $FUZZ_BUILD_DIR), writes the seed corpus with lamina's own
# writers (make_seeds), and runs every target for SECONDS (default 60) each,
# one after the other, keeping the grown corpus in build-fuzz/corpus/<target>.
# Prints the executions per target; fails when a target finds a crash, a
# leak, a timeout or a sanitizer report (the reproducer is kept as
# build-fuzz/artifacts/<target>/crash-* and its report printed).
#
#   tests/fuzz/run.sh [SECONDS] [TARGET...]
#
# Long runs: see tests/fuzz/README.md.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(fuzz_safetensors fuzz_load_into fuzz_checkpoint fuzz_ptree_path fuzz_device_choose fuzz_data
  fuzz_shard_index fuzz_tokenizer)

CC=${FUZZ_CC:-clang} cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLAMINA_FUZZ=ON \
  -DLAMINA_BUILD_TESTS=OFF -DLAMINA_BUILD_EXAMPLES=OFF -DLAMINA_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target make_seeds "${targets[@]}" >/dev/null

# Kernel caches: the caller's (tools/build.sh fuzz passes the main build's), else build-fuzz's.
export LAMINA_CACHE_DIR=${LAMINA_CACHE_DIR:-$build/kernel-cache} POCL_CACHE_DIR=${POCL_CACHE_DIR:-$build/pocl-cache}
# use_sigaltstack=0: see tests/sanitizer/run.sh.
export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1:use_sigaltstack=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$root/tests/sanitizer/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

seeds=$build/seeds
rm -rf "$seeds"
# Full unwinding for the seed writer: with the fast unwinder a few driver
# allocations (operator new inside PoCL/LLVM) lose the frames that the
# suppressions match on.
ASAN_OPTIONS="$ASAN_OPTIONS:fast_unwind_on_malloc=0" "$build/tests/fuzz/make_seeds" "$seeds" >/dev/null
# Text seeds of the dataset and shard-index readers (a CSV with a header, an
# NPY file, an index naming the one shard the target writes beside it).
mkdir -p "$seeds/data" "$seeds/index"
printf '1.5,2,0\n-3,4.25,1\n0,0,2\n' >"$seeds/data/plain.csv"
printf 'label;a;b\n1;0.5;2\n0;1e3;-1\n' >"$seeds/data/header.csv"
{ printf '\x93NUMPY\x01\x00\x76\x00'
  printf "%-117s\n" "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
  printf '\x00\x00\x80\x3f%.0s' 1 2 3 4 5 6; } >"$seeds/data/f4.npy"
printf '{"metadata": {"total_size": 64}, "weight_map": {"enc.w": "model-00001-of-00001.safetensors", "enc.b": "model-00001-of-00001.safetensors", "layers.0.g": "model-00001-of-00001.safetensors", "ids": "model-00001-of-00001.safetensors", "mask": "model-00001-of-00001.safetensors"}}' >"$seeds/index/index.json"
# Tokenizer seeds: byte 0 odd = a tokenizer.json (the test's cased variant),
# even = texts (byte 1: max_length * 2 + no_special_tokens) for the built-in one.
mkdir -p "$seeds/tokenizer"
{ printf '\x01'; cat "$root/tests/data/tokenizer_variant.json"; } >"$seeds/tokenizer/variant.json"
printf '\x00\x40Hello, CAF\xc3\x89! \xe6\x88\x91\xe7\x88\xb1 <hi> <Hi> aaaa ##a e\xcc\x81\x00second \xc3\xa9' \
  >"$seeds/tokenizer/texts"
printf '\x00\x07%s' aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa >"$seeds/tokenizer/long_word"
# Regression: a text the normaliser empties (found by CI's 60 s run: pointer
# arithmetic on a NULL buffer in lam__piece).
base64 -d <<<'QGVIbABsbywgQ2FhICMjYSABAAABAAAAAAAAAQAAAAAZZXOBzGNlAG9uZCDDTQ==' >"$seeds/tokenizer/regress_empty_norm"
seed_dir() {
  case $1 in
    fuzz_safetensors|fuzz_load_into) echo "$seeds/safetensors $seeds/checkpoint" ;;
    fuzz_checkpoint) echo "$seeds/checkpoint $seeds/safetensors" ;;
    fuzz_ptree_path) echo "$seeds/path" ;;
    fuzz_device_choose) echo "$seeds/device" ;;
    fuzz_data) echo "$seeds/data" ;;
    fuzz_shard_index) echo "$seeds/index" ;;
    fuzz_tokenizer) echo "$seeds/tokenizer" ;;
  esac
}

status=0
summary=()
for t in "${targets[@]}"; do
  corpus=$build/corpus/$t artifacts=$build/artifacts/$t
  mkdir -p "$corpus" "$artifacts"
  log=$build/fuzz-$t.log
  # shellcheck disable=SC2046
  if "$build/tests/fuzz/$t" -max_total_time="$secs" -timeout=60 -rss_limit_mb=4096 -print_final_stats=1 \
       -artifact_prefix="$artifacts/" "$corpus" $(seed_dir "$t") >"$log" 2>&1; then
    result=ok
  else
    result=FAILED
    status=1
    tail -n 60 "$log"
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  summary+=("$(printf '%-20s %-6s %10s executions in %ss, corpus %s files' "$t" "$result" "${execs:-?}" \
    "$secs" "$(find "$corpus" -type f | wc -l)")")
done
printf 'fuzz: %s\n' "${summary[@]}"
exit $status
