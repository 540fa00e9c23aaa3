#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the Debian 12 (bookworm) packages bnorm needs, only those missing, and says which.
# Required: the compiler toolchain (g++, cmake, make, pkg-config), Highway (libhwy-dev), oneTBB
# (libtbb-dev), GoogleTest and GoogleMock (libgtest-dev, libgmock-dev: gmock is a separate
# package), Google Benchmark (libbenchmark-dev), CLI11 (libcli11-dev) and nlohmann-json
# (nlohmann-json3-dev) for the command-line tools; Open MPI (openmpi-bin, libopenmpi-dev) for
# contrib/mpi and its mpirun tests; for the Python module bnorm (python/), pybind11
# (pybind11-dev), Python's headers (python3-dev), NumPy (python3-numpy) and pytest
# (python3-pytest), all for the system /usr/bin/python3.
# Optional benchmark peer: oneDNN (libdnnl-dev) with ocl-icd-opencl-dev, which Debian's
# dnnl-config.cmake requires (find_package(OpenCL REQUIRED)) but lists only as a Recommends.
# Optional peer of the Python tests and tools/python-bench.py: PyTorch (python3-torch).
# Optional plotter of tools/plot-cache-sweep.py (and its test): matplotlib (python3-matplotlib).
# BNORM_EXTRA_PACKAGES adds more names (space-separated).
set -euo pipefail

required=(g++ cmake make pkg-config libhwy-dev libtbb-dev libgtest-dev libgmock-dev
          libbenchmark-dev libcli11-dev nlohmann-json3-dev openmpi-bin libopenmpi-dev
          pybind11-dev python3-dev python3-numpy python3-pytest)
optional=(libdnnl-dev ocl-icd-opencl-dev python3-torch python3-matplotlib)

missing=()
for p in "${required[@]}" "${optional[@]}" ${BNORM_EXTRA_PACKAGES:-}; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi

echo "install-deps: installing missing packages: ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
