#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# calls-ab.sh ROUNDS BEFORE AFTER ARGS...: runs two calls-ab builds in turns ROUNDS times and
# prints the median per-call times ("old", "new") and the median of the pairwise ratios.
R=$1; A=$2; B=$3; shift 3
ra=(); rb=()
for i in $(seq $R); do ra+=($($A "$@" | awk '{print $1}')); rb+=($($B "$@" | awk '{print $1}')); done
/usr/bin/python3 -c "
import statistics,sys
a=[float(v) for v in '${ra[*]}'.split()]; b=[float(v) for v in '${rb[*]}'.split()]
print('$*', 'old %.3f new %.3f ms  new/old %.3f' % (statistics.median(a), statistics.median(b), statistics.median([y/x for x,y in zip(a,b)])))"
