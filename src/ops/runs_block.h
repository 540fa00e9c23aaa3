// SPDX-License-Identifier: Apache-2.0
// Where a channels-first block of a BlockPlan starts, and the kernels' view of
// it: every channels-first driver (moments, normalize, the backward passes and
// their channel-resident forms) describes its blocks this one way.
#ifndef BNORM_SRC_OPS_RUNS_BLOCK_H_
#define BNORM_SRC_OPS_RUNS_BLOCK_H_

#include <algorithm>
#include <cstddef>

#include "bnorm/dtype.hpp"
#include "bnorm/geometry.hpp"
#include "dispatch/run_chunks.h"
#include "dispatch/views.h"
#include "src/parallel/blocks.h"

namespace bnorm {

// Bytes from the tensor's start to the block's first element (of `type`).
inline size_t RunsBlockOffset(const Geometry& g, const Block& b, DType type) {
  return (g.RowOffset(b.row) + b.channel * g.ChannelStride() + b.inner_begin) * SizeOf(type);
}

// The block of the tensor at `base` as the channels-first kernels read it.
inline dispatch::RunsView RunsBlockView(const void* base, DType type, const Geometry& g,
                                        const Block& b) {
  return dispatch::RunsView{static_cast<const char*>(base) + RunsBlockOffset(g, b, type),
                            type,
                            b.channels,
                            g.ChannelStride(),
                            b.rows,
                            b.inner_count,
                            g.RowStride()};
}

// The channels-first reductions (moments, the backward's sums) hand the
// kernels several channels' blocks of the same rows at once, which the
// kernels walk along the rows (ForEachInterleavedChunk): a channel alone
// jumps a row stride per run. A tile is BlockPlan block k of as many
// adjacent channels as the kernels walk together (blocks of whole channels
// hold several already); its channels' partials lie at slot(i) + j *
// out_stride(), the BlockPlan layout of c * per_channel + k. Each partial is
// what its block alone gives.
class ReductionTiles {
 public:
  // Tiles only `from_memory` (tensors beyond the caches): in cache the walk
  // along the rows measured slower than a channel at a time (8x32x112x112,
  // 12.8 MB: 1.1-1.2x the time of the training forward and the backward).
  ReductionTiles(const BlockPlan& plan, const Geometry& g, bool from_memory)
      : plan_(plan),
        per_channel_(plan.per_channel()),
        // Blocks that split a channel's runs into pieces stay as they are.
        width_(from_memory && plan.channels_per_block() == 1 && plan.size() > 0 &&
                       plan[0].inner_count == g.inner
                   ? dispatch::kInterleavedChannels
                   : 1),
        channels_(g.channels),
        count_(width_ == 1 ? plan.size()
                           : (g.channels + width_ - 1) / width_ * per_channel_) {}

  size_t size() const { return count_; }
  size_t out_stride() const { return per_channel_; }

  Block operator[](size_t i) const {
    if (width_ == 1) return plan_[i];
    const size_t first = i / per_channel_ * width_;
    Block b = plan_[first * per_channel_ + i % per_channel_];
    b.channels = std::min(width_, channels_ - first);
    return b;
  }
  size_t slot(size_t i) const { return (*this)[i].channel * per_channel_ + i % per_channel_; }

 private:
  const BlockPlan& plan_;
  size_t per_channel_, width_, channels_, count_;
};

}  // namespace bnorm

#endif  // BNORM_SRC_OPS_RUNS_BLOCK_H_
