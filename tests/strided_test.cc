// SPDX-License-Identifier: Apache-2.0
// Strided views: a channel slice of a larger buffer and padded rows run through
// the same kernels as dense tensors, touch only the viewed elements, and match
// the reference on the same view.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "bnorm/error.hpp"
#include "bnorm/kernels.hpp"
#include "src/oracle/reference.h"
#include "tests/test_util.h"

namespace bnorm {
namespace {

struct StridedCase {
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;
  std::vector<int> axes;
  size_t buffer;  // elements of the underlying buffer
  size_t offset;  // of the view's first element
};

void CheckView(const StridedCase& v) {
  const Geometry g = PlanStridedGeometry(v.shape, v.strides, v.axes);
  const std::vector<float> x = test::Normal(v.buffer, 100.0, 3.0, 7);
  const float* xv = x.data() + v.offset;

  std::vector<double> mean(g.channels), var(g.channels), rmean(g.channels), rvar(g.channels);
  BatchMoments(xv, g, mean.data(), var.data());
  reference::Moments(xv, g, rmean.data(), rvar.data());
  for (size_t c = 0; c < g.channels; ++c) {
    EXPECT_NEAR(mean[c], rmean[c], 1e-6 * std::sqrt(rvar[c]) + 1e-9) << "channel " << c;
    EXPECT_NEAR(var[c], rvar[c], 1e-6 * rvar[c]) << "channel " << c;
  }

  std::vector<float> hi(g.channels), lo(g.channels), scale(g.channels), shift(g.channels);
  std::vector<double> gamma(g.channels), beta(g.channels);
  for (size_t c = 0; c < g.channels; ++c) {
    SplitMean(rmean[c], &hi[c], &lo[c]);
    gamma[c] = 0.5 + 0.1 * static_cast<double>(c);
    beta[c] = -0.25 * static_cast<double>(c);
    scale[c] = static_cast<float>(gamma[c] / std::sqrt(rvar[c] + 1e-3));
    shift[c] = static_cast<float>(beta[c]);
  }
  // y shares the view's layout in its own buffer; everything outside the view
  // must keep its sentinel.
  const float kSentinel = -12345.0f;
  std::vector<float> y(v.buffer, kSentinel);
  float* yv = y.data() + v.offset;
  Normalize(xv, yv, g, {hi.data(), lo.data(), scale.data(), shift.data()});
  std::vector<double> ry(v.buffer, static_cast<double>(kSentinel));
  reference::Normalize(xv, g, rmean.data(), rvar.data(), gamma.data(), beta.data(), 1e-3,
                       ry.data() + v.offset);
  for (size_t i = 0; i < v.buffer; ++i) {
    ASSERT_NEAR(y[i], ry[i], 1e-5) << "element " << i;
  }
}

TEST(StridedViews, ChannelSliceOfNhwc) {
  // Channels 16..47 of an N=2, H=3, W=5, C=64 NHWC buffer.
  CheckView({{2, 3, 5, 32}, {3 * 5 * 64, 5 * 64, 64, 1}, {-1}, 2 * 3 * 5 * 64, 16});
}

TEST(StridedViews, ChannelSliceOfNchw) {
  // Channels 3..9 of an N=4, C=16, H=7, W=9 NCHW buffer.
  CheckView({{4, 7, 7, 9}, {16 * 63, 63, 9, 1}, {1}, 4 * 16 * 63, 3 * 63});
}

TEST(StridedViews, PaddedRows) {
  // A [100, 40] matrix whose rows are padded to 48 floats.
  CheckView({{100, 40}, {48, 1}, {-1}, 100 * 48, 0});
}

TEST(StridedViews, StridedChannelsRunAsRunsOfOne) {
  // Every second float of each row is a channel (interleaved with another tensor).
  CheckView({{50, 24}, {48, 2}, {-1}, 50 * 48, 1});
}

TEST(StridedViews, LargeChannelSliceGoesParallel) {
  // Large enough for several blocks and threads: channels 8..71 of C=128 NHWC.
  CheckView({{16, 32, 32, 64}, {32 * 32 * 128, 32 * 128, 128, 1}, {3}, 16 * 32 * 32 * 128, 8});
}

TEST(StridedViews, NonContiguousInnerAxesAreRejected) {
  EXPECT_THROW(PlanStridedGeometry({2, 4, 6}, {48, 12, 2}, {1}), Error);
}

TEST(StridedViews, FeatureAxesThatDoNotCollapseAreRejected) {
  EXPECT_THROW(PlanStridedGeometry({2, 3, 4}, {100, 5, 1}, {1, 2}), Error);
}

TEST(StridedViews, OverlappingRowsAreRejected) {
  try {
    PlanStridedGeometry({10, 8}, {4, 1}, {-1});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("overlap"), std::string::npos) << e.what();
  }
}

TEST(StridedViews, StrideCountMustMatchRank) {
  EXPECT_THROW(PlanStridedGeometry({2, 3}, {3}, {-1}), Error);
}

}  // namespace
}  // namespace bnorm
