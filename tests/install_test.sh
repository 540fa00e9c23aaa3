#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs a bnorm build into a temporary prefix with `cmake --install`, checks
# what was installed and what libbnorm.so exports, then builds examples/c
# (pkg-config) and examples/cpp (find_package), each against the shared and the
# static library, with warnings as errors, and runs them.
#
# Usage: install_test.sh <build-dir> <source-dir> [cmake] [cc] [c++]
set -euo pipefail

build=$1
source=$2
cmake=${3:-cmake}
cc=${4:-cc}
cxx=${5:-c++}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

fail() {
  echo "install_test: $*" >&2
  exit 1
}

for tool in pkg-config make nm readelf c++filt; do
  command -v "$tool" > /dev/null ||
    fail "$tool is not installed (Debian: pkg-config, make, binutils)"
done

echo "== cmake --install $build --prefix $prefix"
"$cmake" --install "$build" --prefix "$prefix" > "$work/install.log" ||
  { cat "$work/install.log"; fail "cmake --install failed"; }

so=$(find "$prefix" -name 'libbnorm.so.0' -print -quit)
[[ -n $so ]] || fail "libbnorm.so.0 was not installed"
libdir=$(dirname "$so")
for file in "$libdir/libbnorm.so" "$libdir/libbnorm.a" "$libdir/pkgconfig/bnorm.pc" \
            "$libdir/cmake/bnorm/bnorm-config.cmake" \
            "$libdir/cmake/bnorm/bnorm-config-version.cmake" \
            "$libdir/cmake/bnorm/bnorm-targets.cmake" \
            "$libdir/cmake/bnorm/bnorm-static-targets.cmake"; do
  [[ -e $file ]] || fail "$file was not installed"
done
for header in "$source"/include/bnorm/*; do
  [[ -e $prefix/include/bnorm/$(basename "$header") ]] || fail "$header was not installed"
done

echo "== exported symbols of $so"
nm -D --defined-only "$so" | awk '{print $3}' > "$work/symbols"
# Only the C ABI and namespace bnorm (functions, and Error's type information).
if grep -Ev '^(bnorm_|_ZNK?5bnorm|_ZT[ISV]N5bnorm)' "$work/symbols" > "$work/foreign"; then
  c++filt < "$work/foreign" >&2
  fail "libbnorm.so exports symbols outside bnorm (above)"
fi
# The test oracles and .npy I/O live in the static bnorm_testing library, never in the product.
if c++filt < "$work/symbols" | grep -E '^bnorm::(npy|reference|keras_reference)::' > "$work/testing"; then
  cat "$work/testing" >&2
  fail "libbnorm.so exports bnorm_testing code (above)"
fi
for header in npy reference keras_reference; do
  [[ ! -e $prefix/include/bnorm/$header.hpp ]] || fail "bnorm_testing's $header.hpp was installed"
done
# Every function bnorm.h declares.
grep -oE 'BNORM_API [^(]*\bbnorm_[a-z0-9_]+\(' "$prefix/include/bnorm/bnorm.h" |
  sed -E 's/.*[^a-z0-9_](bnorm_[a-z0-9_]+)\($/\1/' | sort -u > "$work/declared"
[[ $(wc -l < "$work/declared") -ge 20 ]] || fail "could not read the declarations of bnorm.h"
if missing=$(grep -vxFf "$work/symbols" "$work/declared"); then
  fail "libbnorm.so does not export: $missing"
fi
echo "$(wc -l < "$work/symbols") symbols, $(grep -c '^bnorm_' "$work/symbols") of them C;" \
     "all $(wc -l < "$work/declared") functions of bnorm.h exported"

export PKG_CONFIG_PATH=$libdir/pkgconfig
[[ $(pkg-config --modversion bnorm) == "$(sed -n 's/^#define BNORM_VERSION_STRING "\(.*\)"/\1/p' \
    "$prefix/include/bnorm/bnorm.h")" ]] || fail "bnorm.pc's version differs from bnorm.h's"

echo "== examples/c with pkg-config"
cp -r "$source/examples/c" "$work/c"
make -s -C "$work/c" CC="$cc" CFLAGS="-O2 -Werror" bnorm_example bnorm_example_static
readelf -d "$work/c/bnorm_example" | grep -q 'libbnorm\.so\.0' ||
  fail "examples/c did not link libbnorm.so.0"
if readelf -d "$work/c/bnorm_example_static" | grep -q 'libbnorm\.so'; then
  fail "examples/c static build links libbnorm.so"
fi
LD_LIBRARY_PATH=$libdir "$work/c/bnorm_example"
"$work/c/bnorm_example_static" > /dev/null

echo "== examples/cpp with find_package(bnorm)"
for variant in shared static; do
  flag=OFF
  [[ $variant == static ]] && flag=ON
  "$cmake" -S "$source/examples/cpp" -B "$work/cpp-$variant" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_CXX_FLAGS=-Werror \
    -DBNORM_EXAMPLE_STATIC=$flag > "$work/cpp-$variant.log" ||
    { cat "$work/cpp-$variant.log"; fail "examples/cpp ($variant) did not configure"; }
  "$cmake" --build "$work/cpp-$variant" > "$work/cpp-$variant-build.log" ||
    { cat "$work/cpp-$variant-build.log"; fail "examples/cpp ($variant) did not build"; }
done
readelf -d "$work/cpp-shared/bnorm_example" | grep -q 'libbnorm\.so\.0' ||
  fail "examples/cpp did not link libbnorm.so.0"
"$work/cpp-shared/bnorm_example"
"$work/cpp-static/bnorm_example" > /dev/null

# contrib/mpi, when this build has MPI: find_package(bnorm COMPONENTS mpi) in a C++-only project
# and bnorm-mpi.pc, each running a synchronized layer as a one-rank (singleton) MPI job.
if [[ -e $libdir/libbnorm_mpi.so.0 ]]; then
  echo "== bnorm_mpi with find_package(bnorm COMPONENTS mpi) and pkg-config bnorm-mpi"
  mkdir -p "$work/mpi"
  cat > "$work/mpi/main.cc" <<'CC'
#include <vector>

#include "bnorm/batch_norm.hpp"
#include "bnorm/mpi.hpp"

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  {
    bnorm::Options o;
    o.synchronized = true;
    bnorm::BatchNorm layer(o);
    layer.set_communicator(bnorm::MakeMpiCommunicator(MPI_COMM_WORLD));
    const std::vector<float> x = {1, 2, 3, 4};
    std::vector<float> y(4);
    layer.Forward(x.data(), y.data(), {4, 1}, true);
  }
  MPI_Finalize();
  return 0;
}
CC
  cat > "$work/mpi/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.16)
project(bnorm_mpi_consumer LANGUAGES CXX)
set(CMAKE_CXX_STANDARD 17)
find_package(bnorm 0.1 REQUIRED COMPONENTS mpi)
add_executable(consumer main.cc)
target_link_libraries(consumer PRIVATE bnorm::bnorm_mpi)
CM
  "$cmake" -S "$work/mpi" -B "$work/mpi-build" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_CXX_COMPILER="$cxx" > "$work/mpi.log" 2>&1 &&
    "$cmake" --build "$work/mpi-build" >> "$work/mpi.log" 2>&1 ||
    { cat "$work/mpi.log"; fail "the find_package(bnorm COMPONENTS mpi) consumer did not build"; }
  "$work/mpi-build/consumer" || fail "the find_package(bnorm COMPONENTS mpi) consumer failed"
  # shellcheck disable=SC2046
  "$cxx" -std=c++17 "$work/mpi/main.cc" -o "$work/mpi/pc-consumer" \
    $(pkg-config --cflags --libs bnorm-mpi) -Wl,-rpath,"$libdir" ||
    fail "the pkg-config bnorm-mpi consumer did not build"
  "$work/mpi/pc-consumer" || fail "the pkg-config bnorm-mpi consumer failed"
fi
echo "install_test: OK"
