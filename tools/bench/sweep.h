// SPDX-License-Identifier: Apache-2.0
// bnorm-bench's sweeps: cases shaped from this machine's caches rather than listed, so that a
// table means the same on every machine (--sweep cache), and the shapes file that lists any
// cases back (--list-cases) for --shapes-file and tools/pytorch-bench.py.
#ifndef BNORM_TOOLS_BENCH_SWEEP_H_
#define BNORM_TOOLS_BENCH_SWEEP_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "bnorm/dtype.hpp"
#include "src/plan/caches.h"
#include "tools/bench/settings.h"

namespace bnorm {
namespace bench {

// The bytes a case keeps in flight: x and y, 2 values of `dtype` per value of the shape, in
// every mode (the backward's dy and dx double it; the sweep sizes by x and y all the same, so
// that one list of cases serves every mode).
size_t WorkingSetBytes(const std::vector<int64_t>& shape, DType dtype);

// The shape N,C,H,W of `channels` channels whose working set is nearest `target_bytes` by this
// rule: P = target / (2 * value bytes * C) values per channel; N = ceil(P / 56²) samples (one
// up to a 56x56 image, more beyond, as a batch grows); each sample's P / N values an H x W
// image, H <= W, the squarest (H from floor(sqrt(P / N)) down) whose H * W is within 2 % of
// P / N, else the nearest. H = W = 1 at least. The realised working set is within 10 % of the
// target once P >= 5 (the product's error is at most half a value per channel).
std::vector<int64_t> CacheSweepShape(size_t target_bytes, int64_t channels, DType dtype);

// --sweep cache: working sets of 1/4, 1/2, 1 and 2 x the core's L2 and 1/4, 1/2, 1, 2, 4 and
// 8 x the last-level cache it shares (sizes that coincide once, their labels joined), by
// increasing size; for each, C = 64, 256 and 2048, each in nhwc and nchw. Sizes above
// `max_bytes` (0: none) are left out.
std::vector<CaseSpec> CacheSweep(const CacheSizes& caches, DType dtype, size_t max_bytes);

// The cases as a shapes file on stdout (one "N,C,... layout" line each, a sweep's label,
// target and working set in a comment), which --shapes-file and pytorch-bench.py read.
void PrintShapesFile(const std::vector<CaseSpec>& cases, DType dtype, const CacheSizes& caches);

}  // namespace bench
}  // namespace bnorm

#endif  // BNORM_TOOLS_BENCH_SWEEP_H_
