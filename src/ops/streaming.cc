// SPDX-License-Identifier: Apache-2.0
#include "src/ops/streaming.h"

#include <unistd.h>

#include <algorithm>

namespace bnorm {

size_t StreamingThresholdBytes() {
  static const size_t threshold = [] {
    constexpr size_t kFloor = size_t{16} << 20;
#ifdef _SC_LEVEL3_CACHE_SIZE
    const long llc = sysconf(_SC_LEVEL3_CACHE_SIZE);  // 0 or -1 where unknown
    if (llc > 0) return std::max(kFloor, static_cast<size_t>(llc) / 16);
#endif
    return kFloor;
  }();
  return threshold;
}

}  // namespace bnorm
