#!/usr/bin/env bash
# tools/gpu/run.sh: the one prepared GPU run. On a bare x86-64 Linux machine
# with an NVIDIA driver (no OpenCL ICD loader, no CLBlast installed) it
#   1. unpacks the Debian packages carried in .gpu/debs (tools/gpu/fetch_debs.sh
#      fetches them) into a private prefix, linking only the runtime libraries
#      the machine lacks;
#   2. finds the driver's libnvidia-opencl.so.1 and writes an ICD file for it
#      (OCL_ICD_VENDORS points at a private vendors folder);
#   3. builds lamina there against the prefix (Release);
#   4. lists the devices, runs every ctest suite but the Oclgrind label with
#      LAMINA_DEVICE=gpu, then bench_gemm, bench_attention, bench_conv,
#      bench_norm (and bench_models when it exists);
#   5. writes logs and summary.txt under $OUT (at most 8 files);
# all within a deadline (default 480 s; GPU_RUN_DEADLINE overrides).
#
# Testing it without a GPU (what CI-less checking here does): point it at
# PoCL's ICD library and the CPU device through the same path:
#   GPU_RUN_ICD_LIB=$(ls /usr/lib/x86_64-linux-gnu/pocl/../libpocl.so.2*) \
#   GPU_RUN_DEVICE=cpu OUT=/tmp/gpu-out tools/gpu/run.sh
# GPU_RUN_CTEST_ARGS adds ctest arguments (e.g. "-R test_tensor" for a quick check).
# Device tool call (carry .gpu): `bash tools/gpu/run.sh`.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${OUT:-$root/gpu-out}
mkdir -p "$OUT"
start=$(date +%s)
deadline=$((start + ${GPU_RUN_DEADLINE:-480}))
device=${GPU_RUN_DEVICE:-gpu}
work=${GPU_RUN_WORK:-/tmp/lamina-gpu}
stage=$work/root
summary=$OUT/summary.txt
: >"$summary"
log() { echo "[$(($(date +%s) - start))s] $*" | tee -a "$summary"; }
left() { echo $((deadline - $(date +%s))); }

# ---- 1. unpack the carried packages ----------------------------------------
debs=$root/.gpu/debs
if [ ! -d "$debs" ]; then
  log "FAIL: $debs missing (run tools/gpu/fetch_debs.sh here and carry .gpu)"
  exit 1
fi
rm -rf "$work" && mkdir -p "$stage" "$work/lib" "$work/icd"
for d in "$debs"/*.deb; do
  if command -v dpkg >/dev/null; then
    dpkg -x "$d" "$stage"
  else # no dpkg: a .deb is an ar archive holding data.tar.*
    (cd "$work" && ar x "$d" && tar -xf data.tar.* -C "$stage" && rm -f data.tar.* control.tar.* debian-binary)
  fi
done
multi=$stage/usr/lib/x86_64-linux-gnu
# Link each carried runtime library the machine does not already provide, so
# the machine's own libc-adjacent libraries always win.
have=$(ldconfig -p 2>/dev/null | awk '{print $1}')
linked=0
for so in "$multi"/*.so.* "$multi"/openblas-pthread/*.so.*; do
  [ -e "$so" ] || continue
  name=$(basename "$so")
  if ! grep -qx "$name" <<<"$have"; then ln -sf "$so" "$work/lib/$name"; linked=$((linked + 1)); fi
done
# The ICD loader is always ours (the machine's libOpenCL, if any, may be a
# vendor stub that ignores OCL_ICD_VENDORS).
for so in "$multi"/libOpenCL.so*; do ln -sf "$so" "$work/lib/$(basename "$so")"; done
export LD_LIBRARY_PATH=$work/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
log "unpacked $(ls "$debs"/*.deb | wc -l) packages; linked $linked libraries the machine lacks"

# ---- 2. the ICD file ----------------------------------------------------------
icd_lib=${GPU_RUN_ICD_LIB:-}
if [ -z "$icd_lib" ]; then
  for cand in $(ldconfig -p 2>/dev/null | awk '/libnvidia-opencl.so.1/{print $NF}') \
      /usr/lib/x86_64-linux-gnu/libnvidia-opencl.so.1 /usr/lib64/libnvidia-opencl.so.1 \
      /usr/local/nvidia/lib64/libnvidia-opencl.so.1 /usr/local/nvidia/lib/libnvidia-opencl.so.1 \
      /usr/lib/nvidia/libnvidia-opencl.so.1 /usr/local/cuda/compat/libnvidia-opencl.so.1; do
    [ -e "$cand" ] && { icd_lib=$cand; break; }
  done
fi
if [ -z "$icd_lib" ]; then
  icd_lib=$(find / -xdev -name 'libnvidia-opencl.so.1' 2>/dev/null | head -1)
fi
if [ -z "$icd_lib" ]; then
  log "FAIL: no libnvidia-opencl.so.1 found (searched ldconfig, the usual paths and /)"
  exit 1
fi
echo "$icd_lib" >"$work/icd/lamina-run.icd"
export OCL_ICD_VENDORS=$work/icd
log "ICD: $icd_lib"

# ---- 3. build -------------------------------------------------------------------
build=$work/build
jobs=$(nproc)
export PKG_CONFIG_SYSROOT_DIR=$stage
# criterion.pc's Requires.private names .pc files of libraries we carry only as
# runtime libraries; without that line it is enough to compile and link.
sed -i '/^Requires.private/d' "$multi/pkgconfig/criterion.pc"
export PKG_CONFIG_LIBDIR=$multi/pkgconfig:$stage/usr/share/pkgconfig
export CPATH=$stage/usr/include${CPATH:+:$CPATH}
export LIBRARY_PATH=$multi${LIBRARY_PATH:+:$LIBRARY_PATH}
if ! cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$stage/usr" -DOpenCL_INCLUDE_DIR="$stage/usr/include" \
    -DOpenCL_LIBRARY="$multi/libOpenCL.so" >"$OUT/build.log" 2>&1 ||
   ! timeout "$(left)" cmake --build "$build" -j"$jobs" >>"$OUT/build.log" 2>&1; then
  log "FAIL: build (tail of build.log follows)"
  tail -20 "$OUT/build.log" | tee -a "$summary"
  exit 1
fi
log "built in $build"

# ---- 4. devices, tests, benches -------------------------------------------------------
export LAMINA_DEVICE=$device
export LAMINA_CACHE_DIR=$work/kernel-cache
"$build/examples/devices" >"$OUT/devices.txt" 2>&1
log "devices: $(grep -i 'chosen\|picks\|using' "$OUT/devices.txt" | head -1)"

tests_budget=$(( $(left) * 55 / 100 ))
(cd "$build" && timeout "$tests_budget" ctest -LE oclgrind -j"$((jobs < 8 ? jobs : 8))" \
    --timeout 300 --output-on-failure ${GPU_RUN_CTEST_ARGS:-}) >"$OUT/ctest.log" 2>&1
rc=$?
log "ctest (LAMINA_DEVICE=$device, budget ${tests_budget}s, rc $rc): $(grep -E 'tests passed|tests failed' "$OUT/ctest.log" | tail -1)"
grep -E '^\s+[0-9]+ - ' "$OUT/ctest.log" | sed 's/^/  failed: /' | tee -a "$summary"

bench() { # name args...: runs while time is left, appends to bench.log
  local name=$1; shift
  local exe=$build/bench/$name
  [ -x "$exe" ] || { log "$name: not built, skipped"; return; }
  local t=$(( $(left) - 10 ))
  [ "$t" -gt 15 ] || { log "$name: skipped (deadline)"; return; }
  echo "==== $name $*" >>"$OUT/bench.log"
  timeout "$t" "$exe" "$@" >>"$OUT/bench.log" 2>&1
  log "$name $*: rc $?"
}
bench bench_gemm --reps 5 --sizes 1024,2048,4096,8192 --no-openblas
bench bench_attention --reps 5 --seqs 2048,4096,8192,16384 --no-torch
bench bench_conv --reps 5
bench bench_norm
bench bench_models --reps 5
log "done in $(($(date +%s) - start)) s; logs: $(cd "$OUT" && ls | tr '\n' ' ')"
