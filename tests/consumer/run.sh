#!/usr/bin/env bash
# Installs the built lamina into a scratch prefix, then builds and runs the
# consumer twice: through find_package(lamina) and through pkg-config.
set -euo pipefail
build=$1; src=$2
prefix=$build/consumer-prefix; work=$build/consumer-build
rm -rf "$prefix" "$work"
cmake --install "$build" --prefix "$prefix" >/dev/null
cmake -S "$src" -B "$work" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work" >/dev/null
LD_LIBRARY_PATH="$prefix/lib:$prefix/lib64:${LD_LIBRARY_PATH:-}" "$work/consumer"
"$work/consumer_static"
PKG_CONFIG_PATH="$prefix/lib/pkgconfig:$prefix/lib64/pkgconfig" \
  cc -std=c11 -Wall -Werror "$src/main.c" -o "$work/consumer_pc" $(PKG_CONFIG_PATH="$prefix/lib/pkgconfig:$prefix/lib64/pkgconfig" pkg-config --cflags --libs lamina)
LD_LIBRARY_PATH="$prefix/lib:$prefix/lib64:${LD_LIBRARY_PATH:-}" "$work/consumer_pc"
