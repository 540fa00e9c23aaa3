# SPDX-License-Identifier: Apache-2.0
# CMake toolchain file: cross-compile bnorm for aarch64 Linux on a Debian 12 x86-64 host,
# and run the test binaries under qemu-user.
#
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
#
# No sysroot: Debian multiarch. The compiler is Debian's cross gcc (g++-aarch64-linux-gnu);
# the arm64 libraries come from `dpkg --add-architecture arm64` packages (libhwy-dev:arm64,
# libtbb-dev:arm64, libgtest-dev:arm64), which install libraries and CMake configs into
# /usr/lib/aarch64-linux-gnu and share the arch-independent headers in /usr/include with
# the amd64 packages. Debian's cross gcc already searches /usr/include (last, after its
# own /usr/aarch64-linux-gnu/include) and /usr/lib/aarch64-linux-gnu, so no flags are added.
# tools/run-aarch64-tests installs all of it.

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

# find_package/find_library look in <prefix>/lib/aarch64-linux-gnu (and
# <prefix>/lib/aarch64-linux-gnu/cmake/<pkg>) instead of the host's x86_64-linux-gnu:
# hwy, TBB and GTest resolve to /usr/lib/aarch64-linux-gnu/cmake/{hwy,TBB,GTest}.
# The amd64 configs live only under /usr/lib/x86_64-linux-gnu, which is never searched.
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

# The cross libc/libstdc++ (libc6-dev-arm64-cross) live under /usr/aarch64-linux-gnu;
# searched first, then the host prefixes (/usr), where only the aarch64-linux-gnu
# multiarch directories hold arm64 files. Programs (cmake helpers, qemu) are host ones.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)

# pkg-config, should anything use it: the arm64 .pc files only.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)

# ctest (and gtest_discover_tests at build time) run the aarch64 binaries through this.
# The CPU model comes from the environment: QEMU_CPU=cortex-a72 (NEON only), QEMU_CPU=max
# (SVE/SVE2, 512-bit vectors), QEMU_CPU=max,sve-default-vector-length=32 (SVE_256) or =16
# (SVE2_128); unset means max.
#
# No `-L /usr/aarch64-linux-gnu`: the arm64 libc6 package (a dependency of libhwy1:arm64)
# provides /lib/ld-linux-aarch64.so.1 and libc.so.6 natively in multiarch directories. With
# -L, qemu would load the loader from libc6-arm64-cross (2.36-8cross1) but libc.so.6 from
# libc6:arm64 (2.36-9+deb12u*): two different glibc builds, which must not be mixed.
# Override with -DBNORM_AARCH64_EMULATOR="qemu-aarch64;-L;/some/prefix" if needed.
set(BNORM_AARCH64_EMULATOR qemu-aarch64 CACHE STRING
    "Command (a CMake list) that runs aarch64 binaries on this host")
set(CMAKE_CROSSCOMPILING_EMULATOR ${BNORM_AARCH64_EMULATOR})
