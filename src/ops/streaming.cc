// SPDX-License-Identifier: Apache-2.0
#include "src/ops/streaming.h"

#include "src/plan/caches.h"

namespace bnorm {

size_t StreamingThresholdBytes() {
  // Half the last-level cache this core shares: beyond it x and y together
  // cannot stay cached for the next layer.
  static const size_t threshold = MachineCaches().llc_bytes / 2;
  return threshold;
}

}  // namespace bnorm
