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
// saves a third of the traffic. 16 MiB, or a sixteenth of the last-level cache
// when that is larger (a 480 MiB L3 keeps a 25 MB output faster in cache:
// measured 87% -> 94% of the copy roof; a 51 MB one is faster streamed).
size_t StreamingThresholdBytes();

// Whether a tensor of `type` laid out as `g` exceeds the threshold: its output
// streams, and a pass that reads it prefetches as from memory.
inline bool ExceedsCaches(DType type, const Geometry& g) {
  return g.Extent() * SizeOf(type) > StreamingThresholdBytes();
}

}  // namespace bnorm

#endif  // BNORM_SRC_STREAMING_H_
