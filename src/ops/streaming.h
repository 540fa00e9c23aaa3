// SPDX-License-Identifier: Apache-2.0
// When Normalize and BackwardData write their output with non-temporal stores.
#ifndef BNORM_SRC_STREAMING_H_
#define BNORM_SRC_STREAMING_H_

#include <cstddef>

#include "bnorm/dtype.hpp"
#include "bnorm/geometry.hpp"

namespace bnorm {

// Outputs of more bytes than this go around the caches: they would not stay
// cached for the next layer anyway, and skipping the read-for-ownership of y
// saves a third of the traffic. Half the last-level cache the core shares
// (src/plan/caches.h: sysfs, not sysconf, which reports a whole socket's L3 on
// some VMs): 16 MiB with a 32 MiB L3.
size_t StreamingThresholdBytes();

// Whether a pass over `tensors` tensors of `type` laid out as `g` (x and y:
// 2; the backward's x, dy and dx: 3) exceeds what the caches keep: its output
// streams, and a pass that reads it prefetches as from memory.
inline bool ExceedsCaches(DType type, const Geometry& g, size_t tensors = 2) {
  return g.Extent() * SizeOf(type) * tensors > 2 * StreamingThresholdBytes();
}

}  // namespace bnorm

#endif  // BNORM_SRC_STREAMING_H_
