#!/usr/bin/env bash
# Installs the built lamina into a scratch prefix, then builds and runs the
# consumer (main.c) four ways:
#   1. shared, find_package(lamina), with CLBlast's and cJSON's CMake
#      packages hidden (their prefixes ignored; OpenCL given by path);
#   2. shared, pkg-config, with PKG_CONFIG_LIBDIR holding only lamina.pc and
#      OpenCL.pc (no clblast.pc, no libcjson.pc; no cjson include dir leaks);
#   3. static, find_package(lamina COMPONENTS static);
#   4. static, pkg-config --static, from a copy of the prefix without the .so.
# System packages stay installed: they are hidden from the search only.
set -euo pipefail
build=$1; src=$2
prefix=$build/consumer-prefix; work=$build/consumer-build
rm -rf "$prefix" "$prefix-static" "$work"
mkdir -p "$work"
cmake --install "$build" --prefix "$prefix" >/dev/null
libpath="$prefix/lib:$prefix/lib64:${LD_LIBRARY_PATH:-}"
pcdir=$(ls -d "$prefix"/lib*/pkgconfig)
fail() { echo "consumer: $*" >&2; exit 1; }
cache() { sed -n "s|^$1:[A-Z]*=||p" "$build/CMakeCache.txt"; }

# ---- 1. shared library via CMake, dependencies' dev files hidden ------------
ignore_dirs=() ignore_prefixes=()
for pkg in CLBlast cJSON; do
  dir=$(cache ${pkg}_DIR)
  [ -n "$dir" ] || fail "no ${pkg}_DIR in $build/CMakeCache.txt"
  ignore_dirs+=("$dir")
  p=${dir%%/lib/*}; p=${p%%/lib64/*}; p=${p%%/share/*}
  ignore_prefixes+=("$p")
  # With a merged /usr, /lib/... is /usr/lib/..., found through prefix /.
  [ "$p" = /usr ] && ignore_prefixes+=(/)
done
join() { local IFS=';'; echo "$*"; }
cmake -S "$src" -B "$work/shared" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_IGNORE_PATH="$(join "${ignore_dirs[@]}")" \
  -DCMAKE_IGNORE_PREFIX_PATH="$(join "${ignore_prefixes[@]}")" \
  -DOpenCL_INCLUDE_DIR="$(cache OpenCL_INCLUDE_DIR)" -DOpenCL_LIBRARY="$(cache OpenCL_LIBRARY)" \
  -DLAMINA_CONSUMER_NO_DEV_DEPS=ON >"$work/shared.log" 2>&1 ||
  { cat "$work/shared.log"; fail "find_package(lamina) failed without CLBlast/cJSON dev files"; }
cmake --build "$work/shared" >/dev/null
LD_LIBRARY_PATH="$libpath" "$work/shared/consumer"

# ---- 2. shared library via pkg-config, only lamina.pc and OpenCL.pc ---------
opencl_pc=$(pkg-config --variable=pcfiledir OpenCL)/OpenCL.pc
mkdir -p "$work/pc-opencl"
cp "$opencl_pc" "$work/pc-opencl/"
pc() { env -u PKG_CONFIG_PATH PKG_CONFIG_LIBDIR="$pcdir:$work/pc-opencl" pkg-config "$@"; }
if pc --exists clblast || pc --exists libcjson; then fail "clblast.pc or libcjson.pc still visible"; fi
flags=$(pc --cflags --libs lamina) || fail "pkg-config --cflags --libs lamina needs more than OpenCL.pc"
case " $flags " in
  *cjson* | *clblast*) fail "pkg-config flags leak a private dependency: $flags" ;;
esac
cc -std=c11 -Wall -Werror "$src/main.c" -o "$work/consumer_pc" $flags
LD_LIBRARY_PATH="$libpath" "$work/consumer_pc"

# ---- 3. static library via CMake (dev files visible) -------------------------
cmake -S "$src" -B "$work/static" -DCMAKE_PREFIX_PATH="$prefix" -DLAMINA_CONSUMER_STATIC=ON >/dev/null
cmake --build "$work/static" >/dev/null
"$work/static/consumer_static"

# ---- 4. static library via pkg-config --static --------------------------------
cp -a "$prefix" "$prefix-static"
rm -f "$prefix-static"/lib*/liblamina.so*
flags=$(PKG_CONFIG_PATH="$(ls -d "$prefix-static"/lib*/pkgconfig)" pkg-config --static --cflags --libs lamina)
cc -std=c11 -Wall -Werror "$src/main.c" -o "$work/consumer_pc_static" $flags
if readelf -d "$work/consumer_pc_static" | grep -q 'liblamina\.so'; then fail "consumer_pc_static needs liblamina.so"; fi
"$work/consumer_pc_static"
echo "consumer: shared (CMake, pkg-config) without CLBlast/cJSON dev files, static (CMake, pkg-config): ok"
