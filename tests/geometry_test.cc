// SPDX-License-Identifier: Apache-2.0
// Geometry planning: shapes and Keras feature axes to the canonical
// [outer, channels, inner] and the parameter shape. The planning errors are
// rules of the bad-input matrix (bad_options_test.cc).
#include "bnorm/geometry.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace bnorm {
namespace {

using ::testing::ElementsAre;

void ExpectGeometry(const Geometry& g, size_t outer, size_t channels, size_t inner) {
  EXPECT_EQ(g.outer, outer);
  EXPECT_EQ(g.channels, channels);
  EXPECT_EQ(g.inner, inner);
  // Planned geometries are dense: one group of all rows.
  EXPECT_EQ(g.group_rows, outer == 0 ? 1u : outer);
  EXPECT_EQ(g.group_stride, outer * channels * inner);
}

TEST(PlanGeometry, NhwcWithTheLastAxisIsChannelsLast) {
  const Geometry g = PlanGeometry({8, 32, 32, 64}, {-1});
  ExpectGeometry(g, 8 * 32 * 32, 64, 1);
  EXPECT_TRUE(g.channels_last());
  EXPECT_EQ(g.reduced(), 8u * 32 * 32);
  EXPECT_EQ(g.elements(), 8u * 32 * 32 * 64);
}

TEST(PlanGeometry, NchwWithAxisOneIsChannelsFirst) {
  const Geometry g = PlanGeometry({8, 64, 32, 16}, {1});
  ExpectGeometry(g, 8, 64, 32 * 16);
  EXPECT_FALSE(g.channels_last());
  EXPECT_EQ(g.reduced(), 8u * 32 * 16);
  EXPECT_EQ(g.row_elements(), 64u * 32 * 16);
}

TEST(PlanGeometry, NegativeAxesCountFromTheEnd) {
  ExpectGeometry(PlanGeometry({2, 3, 4, 5}, {-3}), 2, 3, 20);
  ExpectGeometry(PlanGeometry({2, 3, 4, 5}, {-4}), 1, 2, 60);
  ExpectGeometry(PlanGeometry({2, 3, 4, 5}, {3}), 24, 5, 1);
}

TEST(PlanGeometry, AxisListsMultiplyIntoTheChannels) {
  ExpectGeometry(PlanGeometry({2, 3, 4, 5}, {1, 2}), 2, 12, 5);
  ExpectGeometry(PlanGeometry({2, 3, 4, 5}, {-2, -1}), 6, 20, 1);
  ExpectGeometry(PlanGeometry({2, 3, 4, 5}, {0, 1, 2, 3}), 1, 120, 1);
}

TEST(PlanGeometry, AxisListOrderAndSignDoNotMatter) {
  ExpectGeometry(PlanGeometry({2, 3, 4, 5}, {2, 1}), 2, 12, 5);
  ExpectGeometry(PlanGeometry({2, 3, 4, 5}, {-1, 2}), 6, 20, 1);
}

TEST(PlanGeometry, RankOneHasOnlyChannels) {
  ExpectGeometry(PlanGeometry({7}, {0}), 1, 7, 1);
  ExpectGeometry(PlanGeometry({7}, {-1}), 1, 7, 1);
}

TEST(PlanGeometry, RankFiveReducesEveryOtherAxis) {
  ExpectGeometry(PlanGeometry({2, 3, 4, 5, 6}, {-1}), 120, 6, 1);
  ExpectGeometry(PlanGeometry({2, 3, 4, 5, 6}, {1}), 2, 3, 120);
  ExpectGeometry(PlanGeometry({2, 3, 4, 5, 6}, {2, 3}), 6, 20, 6);
}

TEST(PlanGeometry, ZeroSizedDimensionsGiveAnEmptyGeometry) {
  const Geometry batchless = PlanGeometry({0, 3}, {-1});
  ExpectGeometry(batchless, 0, 3, 1);
  EXPECT_EQ(batchless.elements(), 0u);
  ExpectGeometry(PlanGeometry({2, 0, 5}, {1}), 2, 0, 5);
}

// The array overload is the one planner: the vector overload gives the same
// geometry. (Every planning error, with its code, is in the bad-input matrix,
// bad_options_test.cc.)
TEST(PlanGeometry, PlainArraysPlanAsVectorsDo) {
  const int64_t dims[] = {2, 3, 4, 5};
  const int axes[] = {-2, 1};
  ExpectGeometry(PlanGeometry(dims, 4, axes, 2), 2, 12, 5);
  ExpectGeometry(PlanGeometry({2, 3, 4, 5}, {-2, 1}), 2, 12, 5);
}

TEST(CanonicalAxes, AreSortedAndNonNegative) {
  EXPECT_THAT(CanonicalAxes({-1, 0}, 3), ElementsAre(0, 2));
  EXPECT_THAT(CanonicalAxes({3, -3, 2}, 4), ElementsAre(1, 2, 3));
}

TEST(ParameterShape, IsTheSizesOfTheFeatureAxesInOrder) {
  EXPECT_THAT(ParameterShape({8, 32, 32, 64}, {-1}), ElementsAre(64));
  EXPECT_THAT(ParameterShape({8, 64, 32, 32}, {1}), ElementsAre(64));
  EXPECT_THAT(ParameterShape({2, 3, 4, 5}, {1, 2}), ElementsAre(3, 4));
  EXPECT_THAT(ParameterShape({2, 3, 4, 5}, {-1, -2}), ElementsAre(4, 5));
  EXPECT_THAT(ParameterShape({7}, {0}), ElementsAre(7));
}

// Ghost views: rows come in groups of group_rows consecutive rows whose starts
// are group_stride elements apart.
TEST(Geometry, RowOffsetFollowsTheGroups) {
  // Samples 1, 3, 5 of a [6, 2, 2, 3] NHWC tensor (every 2nd sample, from 1).
  Geometry g = Geometry::Dense(3 * 4, 3, 1);
  g.group_rows = 4;
  g.group_stride = 2 * 12;
  EXPECT_EQ(g.RowOffset(0), 0u);
  EXPECT_EQ(g.RowOffset(3), 9u);
  EXPECT_EQ(g.RowOffset(4), 24u);
  EXPECT_EQ(g.RowOffset(11), 2 * 24u + 9);
  EXPECT_EQ(g.elements(), 36u);
  EXPECT_EQ(g.reduced(), 12u);
}

TEST(Geometry, DenseRowsAreContiguous) {
  const Geometry g = Geometry::Dense(5, 3, 7);
  for (size_t o = 0; o < g.outer; ++o) EXPECT_EQ(g.RowOffset(o), o * 21);
  EXPECT_EQ(Geometry::Dense(0, 3, 1).group_rows, 1u);
}

}  // namespace
}  // namespace bnorm
