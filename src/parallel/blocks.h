// SPDX-License-Identifier: Apache-2.0
// Fixed work blocks: a geometry splits into blocks that depend only on the
// geometry, never on the thread count, so per-block partial statistics merged
// in block order give bitwise equal results for any number of threads.
#ifndef BNORM_SRC_BLOCKS_H_
#define BNORM_SRC_BLOCKS_H_

#include <cstddef>

#include "bnorm/execution.hpp"
#include "bnorm/geometry.hpp"

namespace bnorm {

// One block. Channels-last: rows [row, row + rows) and every channel.
// Channels-first: channels [channel, channel + channels), rows [row, row +
// rows), inner values [inner_begin, inner_begin + inner_count) of each row.
// Several channels share a block only when each fits in one block whole.
struct Block {
  size_t channel = 0;
  size_t channels = 1;
  size_t row = 0;
  size_t rows = 0;
  size_t inner_begin = 0;
  size_t inner_count = 0;
};

class BlockPlan {
 public:
  explicit BlockPlan(const Geometry& g);

  size_t size() const { return count_; }
  Block operator[](size_t index) const;
  // Channels-first: blocks of channel c are [c * per_channel(), (c+1) * ...)
  // when channels_per_block() == 1; otherwise per_channel() == 1 and block i
  // holds channels [i * channels_per_block(), ...).
  size_t per_channel() const { return per_channel_; }
  size_t channels_per_block() const { return channels_per_block_; }

 private:
  Geometry g_;
  size_t rows_per_block_ = 1;  // rows of one block (the last of a group may be short)
  size_t blocks_per_group_ = 1;
  size_t pieces_per_row_ = 1;  // channels-first runs longer than a block split
  size_t groups_ = 1;
  size_t per_channel_ = 1;
  size_t channels_per_block_ = 1;
  size_t count_ = 0;
};

// Blocks for a channels-first pass that reduces nothing (normalize, the
// backward's data pass), in memory order: rows [row, row + rows) x channels
// [channel, channel + channels) x inner values, about as many values as a
// BlockPlan block. A BlockPlan takes a channel across every row, which for
// an [N, C, H, W] tensor means N runs a row stride apart over the whole
// tensor: a 4 KiB page and a prefetch stream per run, more pages than the
// TLB holds, 1.7x the time of the same pass in memory order (64x256x14x14
// normalize, one core). Rows wider than a block split into channel ranges,
// channels wider than a block into inner pieces; a block never spans two
// row groups (the kernels' runs are one row stride apart).
class ElementwisePlan {
 public:
  explicit ElementwisePlan(const Geometry& g);

  size_t size() const { return count_; }
  Block operator[](size_t index) const;

 private:
  Geometry g_;
  size_t rows_per_block_ = 1;
  size_t blocks_per_group_ = 1;
  size_t channels_per_block_ = 1;
  size_t chunks_per_row_ = 1;  // channel ranges of a row
  size_t pieces_per_run_ = 1;  // inner pieces of a channel
  size_t count_ = 0;
};

// Runs body(block_index) for every index in [0, count): on the calling thread
// for kSerial or when the work is small (`elements` below the threshold where
// waking threads costs more than it saves), otherwise with oneTBB.
template <class Body>
void ForEachBlock(size_t count, size_t elements, const Execution& exec, const Body& body);

}  // namespace bnorm

#include "src/parallel/blocks-inl.h"

#endif  // BNORM_SRC_BLOCKS_H_
