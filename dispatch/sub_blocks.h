// SPDX-License-Identifier: Apache-2.0
// The sub-block size of the two-pass reductions, which the drivers in src/ must
// know too: channels-last blocks are cut in whole sub-blocks (src/parallel), so
// that block boundaries never split one and results do not depend on them.
#ifndef BNORM_DISPATCH_SUB_BLOCKS_H_
#define BNORM_DISPATCH_SUB_BLOCKS_H_

#include <cstddef>

namespace bnorm {
namespace dispatch {

// Rows per two-pass sub-block in the channels-last kernel: 32 rows of a chunk
// of kShiftChunk channels (16 KiB) stay in L1 between the passes; even and odd
// rows sum apart, so 16-term float sums keep the sub-block's moments within a
// few float epsilons. (32 rather than 16 halves the double merges per value:
// 2 threads, 103 MB: 3.16 -> 2.76 ms.)
constexpr size_t kSubRows = 32;

}  // namespace dispatch
}  // namespace bnorm

#endif  // BNORM_DISPATCH_SUB_BLOCKS_H_
