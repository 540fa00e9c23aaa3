// SPDX-License-Identifier: Apache-2.0
#include "src/parallel/blocks.h"

#include <algorithm>

#include "dispatch/sub_blocks.h"

namespace bnorm {
namespace {

// Values per block: 256 KiB of floats stays in L2 while a block is reduced, and
// keeps the per-block partials of channels-last moments a small fraction of
// the input's traffic.
constexpr size_t kBlockElements = size_t{1} << 16;
// Channels-last blocks are whole sub-blocks of the moments kernel.
constexpr size_t kRowQuantum = dispatch::kSubRows;
// Channels-last blocks also hold at least 256 rows: each block's partial
// moments (two doubles, 16 bytes per channel) then stay within 1/64 of its
// float32 input, which wide rows would otherwise not (4096x1024 moments,
// 2 threads: 430 -> 375 us with 256 rows per block instead of 64).
constexpr size_t kMinBlockRows = 256;

size_t CeilDiv(size_t a, size_t b) { return (a + b - 1) / b; }

}  // namespace

BlockPlan::BlockPlan(const Geometry& g) : g_(g) {
  if (g.elements() == 0) return;
  groups_ = g.outer / g.group_rows;
  if (g.channels_last()) {
    const size_t rows =
        CeilDiv(std::max<size_t>(kBlockElements / g.channels, kMinBlockRows), kRowQuantum);
    rows_per_block_ = rows * kRowQuantum;
    blocks_per_group_ = CeilDiv(g.group_rows, rows_per_block_);
    per_channel_ = 0;
    count_ = groups_ * blocks_per_group_;
    return;
  }
  if (g.inner >= kBlockElements) {
    rows_per_block_ = 1;
    pieces_per_row_ = CeilDiv(g.inner, kBlockElements);
  } else {
    rows_per_block_ = std::max<size_t>(kBlockElements / g.inner, 1);
  }
  blocks_per_group_ = CeilDiv(g.group_rows, rows_per_block_) * pieces_per_row_;
  per_channel_ = groups_ * blocks_per_group_;
  if (per_channel_ == 1) {
    // Whole channels fit in a block: several per block, so small feature maps
    // (e.g. 64 channels of 28x28) do not pay a kernel call per channel.
    channels_per_block_ = std::max<size_t>(kBlockElements / g.reduced(), 1);
    count_ = CeilDiv(g.channels, channels_per_block_);
    return;
  }
  count_ = g.channels * per_channel_;
}

Block BlockPlan::operator[](size_t index) const {
  Block b;
  size_t rest = index;
  if (channels_per_block_ > 1) {
    b.channel = index * channels_per_block_;
    b.channels = std::min(channels_per_block_, g_.channels - b.channel);
    b.rows = g_.outer;
    b.inner_count = g_.inner;
    return b;
  }
  if (!g_.channels_last()) {
    b.channel = rest / per_channel_;
    rest %= per_channel_;
  }
  const size_t group = rest / blocks_per_group_;
  rest %= blocks_per_group_;
  const size_t row_block = rest / pieces_per_row_;
  const size_t piece = rest % pieces_per_row_;
  const size_t first = row_block * rows_per_block_;
  b.row = group * g_.group_rows + first;
  b.rows = std::min(rows_per_block_, g_.group_rows - first);
  if (g_.channels_last()) {
    b.inner_count = 1;
  } else {
    b.inner_begin = piece * kBlockElements;
    b.inner_count = std::min(kBlockElements, g_.inner - b.inner_begin);
  }
  return b;
}

ElementwisePlan::ElementwisePlan(const Geometry& g) : g_(g) {
  if (g.elements() == 0) return;
  const size_t groups = g.outer / g.group_rows;
  const size_t row = g.row_elements();
  if (row <= kBlockElements) {
    rows_per_block_ = kBlockElements / row;
    channels_per_block_ = g.channels;
  } else if (g.inner <= kBlockElements) {
    channels_per_block_ = kBlockElements / g.inner;
    chunks_per_row_ = CeilDiv(g.channels, channels_per_block_);
  } else {
    chunks_per_row_ = g.channels;
    pieces_per_run_ = CeilDiv(g.inner, kBlockElements);
  }
  blocks_per_group_ = CeilDiv(g.group_rows, rows_per_block_);
  count_ = groups * blocks_per_group_ * chunks_per_row_ * pieces_per_run_;
}

Block ElementwisePlan::operator[](size_t index) const {
  Block b;
  const size_t piece = index % pieces_per_run_;
  size_t rest = index / pieces_per_run_;
  const size_t chunk = rest % chunks_per_row_;
  rest /= chunks_per_row_;
  const size_t group = rest / blocks_per_group_;
  const size_t first = rest % blocks_per_group_ * rows_per_block_;
  b.row = group * g_.group_rows + first;
  b.rows = std::min(rows_per_block_, g_.group_rows - first);
  b.channel = chunk * channels_per_block_;
  b.channels = std::min(channels_per_block_, g_.channels - b.channel);
  b.inner_begin = piece * kBlockElements;
  b.inner_count = std::min(kBlockElements, g_.inner - b.inner_begin);
  return b;
}

}  // namespace bnorm
