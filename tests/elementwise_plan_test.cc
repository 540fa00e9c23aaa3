// SPDX-License-Identifier: Apache-2.0
// The blocks of a channels-first pass that reduces nothing (src/parallel/
// blocks.h, ElementwisePlan): every element of the geometry in exactly one
// block, blocks in memory order, none larger than a block's worth of values
// (1 << 16) unless a single run is, none spanning two row groups.
#include <gtest/gtest.h>

#include <cstddef>
#include <vector>

#include "bnorm/geometry.hpp"
#include "src/parallel/blocks.h"
#include "tests/test_util.h"

namespace bnorm {
namespace {

constexpr size_t kBlockElements = size_t{1} << 16;

void ExpectCoversInMemoryOrder(const Geometry& g) {
  SCOPED_TRACE(test::Describe(g));
  const ElementwisePlan plan(g);
  std::vector<int> hits(g.Extent(), 0);
  size_t previous_start = 0;
  for (size_t i = 0; i < plan.size(); ++i) {
    const Block b = plan[i];
    ASSERT_GE(b.rows, 1u);
    ASSERT_GE(b.channels, 1u);
    ASSERT_GE(b.inner_count, 1u);
    ASSERT_LE(b.row + b.rows, g.outer);
    ASSERT_LE(b.channel + b.channels, g.channels);
    ASSERT_LE(b.inner_begin + b.inner_count, g.inner);
    // One row group: the rows of a block are one row stride apart.
    ASSERT_EQ(b.row / g.group_rows, (b.row + b.rows - 1) / g.group_rows) << "block " << i;
    ASSERT_LE(b.rows * b.channels * b.inner_count, kBlockElements) << "block " << i;
    const size_t start = g.RowOffset(b.row) + b.channel * g.ChannelStride() + b.inner_begin;
    if (i > 0) {
      ASSERT_GT(start, previous_start) << "block " << i << " goes back in memory";
    }
    previous_start = start;
    for (size_t r = b.row; r < b.row + b.rows; ++r) {
      for (size_t c = b.channel; c < b.channel + b.channels; ++c) {
        for (size_t k = b.inner_begin; k < b.inner_begin + b.inner_count; ++k) {
          ++hits[g.RowOffset(r) + c * g.ChannelStride() + k];
        }
      }
    }
  }
  size_t elements = 0;
  test::ForEachOffset(g, [&](size_t k) {
    ASSERT_EQ(hits[k], 1) << "element at " << k;
    hits[k] = 0;
    ++elements;
  });
  EXPECT_EQ(elements, g.elements());
  for (size_t k = 0; k < hits.size(); ++k) ASSERT_EQ(hits[k], 0) << "gap element " << k;
}

TEST(ElementwisePlan, SmallRowsGroupIntoBlocks) {
  ExpectCoversInMemoryOrder(Geometry::Dense(64, 256, 196));  // 64x256x14x14
  ExpectCoversInMemoryOrder(Geometry::Dense(1000, 3, 17));
  ExpectCoversInMemoryOrder(Geometry::Dense(1, 5, 3));
}

TEST(ElementwisePlan, WideRowsSplitIntoChannelRanges) {
  ExpectCoversInMemoryOrder(Geometry::Dense(2, 64, 3136));  // 2x64x56x56
  ExpectCoversInMemoryOrder(Geometry::Dense(3, 7, 40000));
}

TEST(ElementwisePlan, LongRunsSplitIntoPieces) {
  ExpectCoversInMemoryOrder(Geometry::Dense(2, 3, 200003));
}

TEST(ElementwisePlan, GhostGroupsAndStridedViews) {
  // Every other sample of [12, 16, 49] (a ghost batch's view).
  Geometry ghost = Geometry::Dense(6, 16, 49);
  ghost.row_stride = 2 * 16 * 49;
  ghost.group_rows = 6;
  ghost.group_stride = 6 * ghost.row_stride;
  ExpectCoversInMemoryOrder(ghost);
  // Groups of 3 rows, 5 groups (samples of several rows each).
  Geometry groups = Geometry::Dense(15, 4, 4000);
  groups.group_rows = 3;
  groups.group_stride = 2 * 3 * 4 * 4000;
  ExpectCoversInMemoryOrder(groups);
  // Channels 2..9 of a 16-channel buffer with padded rows.
  Geometry slice = Geometry::Dense(9, 8, 2000);
  slice.channel_stride = 2000;
  slice.row_stride = 16 * 2000 + 32;
  ExpectCoversInMemoryOrder(slice);
}

}  // namespace
}  // namespace bnorm
