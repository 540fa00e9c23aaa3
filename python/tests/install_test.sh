#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `cmake --install` puts the module where the system python3 finds it: installs the python
# component under a staging root (DESTDIR, so nothing on the machine changes), checks that the
# directory it went to is on that python3's sys.path for the real prefix, and imports the
# staged module from there and runs a layer with it.
#
# Usage: install_test.sh <build-dir> <cmake> <python3> <install-dir (relative)> <prefix>
set -euo pipefail

build=$1
cmake=$2
python=$3
reldir=$4
prefix=$5

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

DESTDIR=$stage "$cmake" --install "$build" --component python > "$stage/install.log"
site=$prefix/$reldir
module=$(find "$stage$site" -maxdepth 1 -name 'bnorm*.so' -print -quit)
[[ -n $module ]] || { cat "$stage/install.log"; echo "install_test: no module in $stage$site" >&2; exit 1; }
echo "installed $(basename "$module") into $site"

# Run outside the build tree, so that only the staged copy can be imported.
cd "$stage"
env -u PYTHONPATH "$python" - "$site" <<'PY'
import os, sys
site = os.path.realpath(sys.argv[1])
if site not in [os.path.realpath(p) for p in sys.path if p]:
    sys.exit(f"install_test: {site} is not on {sys.executable}'s sys.path: {sys.path}")
PY
PYTHONPATH=$stage$site "$python" -c "
import numpy as np, bnorm, sys
assert bnorm.__file__.startswith('$stage'), bnorm.__file__
y = bnorm.BatchNormalization()(np.ones((4, 3), np.float32), training=True)
assert y.shape == (4, 3)
print('install_test: the installed module imports and runs:', bnorm.__file__)
"
