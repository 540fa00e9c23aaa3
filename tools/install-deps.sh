#!/usr/bin/env bash
# Installs the Debian 12 packages bnorm needs, only those missing, and says which.
# Required: the compiler toolchain, Highway, oneTBB, GoogleTest, Google Benchmark.
# Optional peers for benchmarks: oneDNN (libdnnl-dev).
set -euo pipefail

required=(g++ cmake make pkg-config libhwy-dev libtbb-dev libgtest-dev libbenchmark-dev)
optional=(libdnnl-dev)

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
