#!/bin/sh
# run.sh SOURCE_DIR BUILD_DIR - install the built mainstack into a scratch
# prefix, then build and run a tiny outside program against it twice: with
# pkg-config and with CMake's find_package (shared and static).
set -eu
src=$1
work=$2
build=$(dirname "$work")
rm -rf "$work"
mkdir -p "$work"
prefix="$work/prefix"

cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(ls -d "$prefix"/lib*/pkgconfig | head -n 1)
libdir=$(dirname "$libdir")

echo "== pkg-config"
PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --modversion mainstack
# shellcheck disable=SC2046
cc -std=c17 -Wall -Werror -o "$work/hello_pc" "$src/tests/install/outside/hello.c" \
    $(PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --cflags --libs mainstack)
LD_LIBRARY_PATH="$libdir" "$work/hello_pc"

echo "== find_package"
cmake -S "$src/tests/install/outside" -B "$work/outside-build" \
    -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/outside-build" >/dev/null
"$work/outside-build/hello_cmake"
"$work/outside-build/hello_cmake_static"
echo "install test: ok"
