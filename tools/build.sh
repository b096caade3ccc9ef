#!/usr/bin/env bash
# tools/build.sh: the one entry point for building lamina on Debian/Ubuntu.
#
#   tools/build.sh example   install missing packages, build, run the main example
#   tools/build.sh test      install missing packages, build, run every test suite
#   tools/build.sh deps      only install the missing Debian packages
#   tools/build.sh build     only configure and build (into ./build)
#   tools/build.sh sanitize  build with ASan+UBSan+LSan (LAMINA_SANITIZE, into ./build-asan)
#                            and run the unit suites under them (SANITIZE_TESTS: a ctest -R
#                            regex choosing a subset; default all of label unit)
#   tools/build.sh fuzz [S]  build the libFuzzer targets with clang (./build-fuzz) and run
#                            each for S seconds (default 60): tests/fuzz/run.sh
#   tools/build.sh windows   cross-build the library for Windows with MinGW-w64 (./build-mingw:
#                            lamina.dll, liblamina.dll.a, liblamina.a; no tests), installing
#                            gcc-mingw-w64-x86-64 when missing (cmake/toolchain-mingw64.cmake)
#
# Packages are installed with apt-get when missing (as root, or through sudo).
# Environment: BUILD_DIR (default build), BUILD_TYPE (default Release),
# CC (compiler), LAMINA_DEVICE (device choice for the example and tests).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${BUILD_DIR:-$root/build}
build_type=${BUILD_TYPE:-Release}

packages=(build-essential cmake pkg-config opencl-headers ocl-icd-opencl-dev pocl-opencl-icd
  libclblast-dev libcriterion-dev libcjson-dev oclgrind libopenblas-dev python3
  openmpi-bin libopenmpi-dev)

# The Windows cross build's extra packages (only `tools/build.sh windows` needs them).
windows_packages=(gcc-mingw-w64-x86-64 binutils-mingw-w64-x86-64)

deps() {
  local missing=()
  for p in "${packages[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "Installing missing packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

build() {
  cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE="$build_type" >/dev/null
  cmake --build "$build_dir" -j"$(nproc)"
}

case "${1:-example}" in
  deps) deps ;;
  build) deps; build ;;
  example)
    deps; build
    example=$build_dir/examples/digits
    [ -x "$example" ] || example=$build_dir/examples/devices
    (cd "$build_dir" && "$example")
    ;;
  test)
    deps; build
    ctest --test-dir "$build_dir" --output-on-failure -j2
    ;;
  sanitize)
    deps
    asan_dir=${SANITIZE_BUILD_DIR:-$root/build-asan}
    # Debug: -O0 keeps the reports' lines exact and builds fastest; the time
    # goes into the OpenCL kernels, which are not instrumented.
    # The suites share the main build's kernel caches (warm after
    # `tools/build.sh test`): compiling the kernels is most of a cold run, and
    # PoCL's compiler is not what is being checked.
    cmake -S "$root" -B "$asan_dir" -DCMAKE_BUILD_TYPE=Debug -DLAMINA_SANITIZE=ON \
      -DLAMINA_BUILD_EXAMPLES=OFF -DLAMINA_BUILD_BENCH=OFF -DLAMINA_TEST_CACHE_ROOT="$build_dir" >/dev/null
    cmake --build "$asan_dir" -j"$(nproc)"
    ctest --test-dir "$asan_dir" -L unit ${SANITIZE_TESTS:+-R "$SANITIZE_TESTS"} --output-on-failure -j2
    ;;
  fuzz)
    deps
    LAMINA_CACHE_DIR=$build_dir/kernel-cache POCL_CACHE_DIR=$build_dir/pocl-cache \
      "$root/tests/fuzz/run.sh" "${2:-60}"
    ;;
  windows)
    deps "${windows_packages[@]}"
    mingw_dir=${MINGW_BUILD_DIR:-$root/build-mingw}
    cmake -S "$root" -B "$mingw_dir" -DCMAKE_TOOLCHAIN_FILE="$root/cmake/toolchain-mingw64.cmake" \
      -DCMAKE_BUILD_TYPE="$build_type" -DLAMINA_BUILD_TESTS=OFF -DLAMINA_BUILD_EXAMPLES=OFF \
      -DLAMINA_BUILD_BENCH=OFF >/dev/null
    cmake --build "$mingw_dir" -j"$(nproc)"
    for f in lamina.dll liblamina.dll.a; do
      [ -f "$mingw_dir/$f" ] || { echo "windows: $mingw_dir/$f was not produced" >&2; exit 1; }
    done
    echo "windows: built $mingw_dir/lamina.dll and $mingw_dir/liblamina.dll.a"
    ;;
  *) echo "usage: tools/build.sh [example|test|deps|build|sanitize|fuzz [seconds]|windows]" >&2; exit 2 ;;
esac
