// SPDX-License-Identifier: Apache-2.0
// bnorm::Normalize on every supported target (the test parameter) and both
// layouts against the float64 reference: the output threshold of issue 2, misaligned and in-place
// buffers, writes outside the output and non-finite values.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "bnorm/dtype.hpp"
#include "bnorm/execution.hpp"
#include "bnorm/geometry.hpp"
#include "bnorm/kernels.hpp"
#include "src/oracle/reference.h"
#include "tests/target_test.h"
#include "tests/test_util.h"

namespace bnorm {
namespace test {
namespace {

// Normalize on the target of the test parameter.
class NormalizeKernel : public TargetTest {};
BNORM_INSTANTIATE_TARGET_TEST_SUITE_P(NormalizeKernel);

// The heavy cases, on the best target and the fallback only.
class NormalizeKernelHeavy : public TargetTest {};
BNORM_INSTANTIATE_BEST_AND_FALLBACK_TARGET_TEST_SUITE_P(NormalizeKernelHeavy);

// Every size case with data from `dist`.
void ExpectSizeCasesMatchReference(const Distribution& dist) {
  uint32_t seed = kSeed;
  for (const Geometry& g : SizeCases()) {
    SCOPED_TRACE(Describe(g));
    const std::vector<float> x = Normal(g.elements(), dist, ++seed);
    const Expected e = ReferenceFor(x.data(), g, seed);
    std::vector<float> y(g.elements(), Sentinel());
    Normalize(x.data(), y.data(), g, e.setup.params());
    EXPECT_TRUE(OutputNear(y.data(), e.y.data(), g));
  }
}

// One channel of kHeavyValues values from each distribution.
void ExpectHeavyChannelMatchesReference(const Geometry& g) {
  SCOPED_TRACE(Describe(g));
  uint32_t seed = kSeed;
  for (const Distribution& dist : kDistributions) {
    SCOPED_TRACE(dist.name);
    const std::vector<float> x = Normal(g.elements(), dist, ++seed);
    const Expected e = ReferenceFor(x.data(), g, seed);
    std::vector<float> y(g.elements(), Sentinel());
    Normalize(x.data(), y.data(), g, e.setup.params());
    EXPECT_TRUE(OutputNear(y.data(), e.y.data(), g));
  }
}

TEST_P(NormalizeKernel, MatchesReferenceOnStandardNormalData) {
  ExpectSizeCasesMatchReference(kStandardNormal);
}

TEST_P(NormalizeKernel, MatchesReferenceWhenTheMeanIsLarge) {
  ExpectSizeCasesMatchReference(kLargeMean);
}

TEST_P(NormalizeKernel, MatchesReferenceWhenTheMeanIsLargeAndTheStdTiny) {
  ExpectSizeCasesMatchReference(kLargeMeanTinyStd);
}

TEST_P(NormalizeKernelHeavy, ChannelsLastChannelMatchesReference) {
  ExpectHeavyChannelMatchesReference(Geometry::Dense(kHeavyValues, 1, 1));
}

TEST_P(NormalizeKernelHeavy, ChannelsFirstChannelMatchesReference) {
  ExpectHeavyChannelMatchesReference(Geometry::Dense(kHeavyValues / 10000, 1, 10000));
}

// Shapes whose rows and runs end in every tail length of every vector width
// (1, 4, 8 and 16 lanes), small and large enough to run in parallel.
std::vector<Geometry> TailCases() {
  return {Geometry::Dense(3, 1, 1),    Geometry::Dense(5, 3, 1),  Geometry::Dense(4, 15, 1),
          Geometry::Dense(3, 16, 1),   Geometry::Dense(3, 17, 1), Geometry::Dense(2, 33, 1),
          Geometry::Dense(7, 47, 1),   Geometry::Dense(2, 3, 2),  Geometry::Dense(3, 2, 15),
          Geometry::Dense(2, 2, 16),   Geometry::Dense(2, 3, 17), Geometry::Dense(1, 2, 31),
          Geometry::Dense(2, 1, 33),   Geometry::Dense(3, 2, 47), Geometry::Dense(20000, 17, 1),
          Geometry::Dense(2, 3, 65551)};
}

// x and y may each start 0 to 3 floats past a 64-byte boundary,
// independently of each other.
TEST_P(NormalizeKernel, UnalignedInputAndOutputMatchReference) {
  for (const Geometry& g :
       {Geometry::Dense(37, 19, 1), Geometry::Dense(5, 3, 37), Geometry::Dense(3, 2, 1031)}) {
    for (size_t x_offset : {0, 1, 2, 3}) {
      GuardedBuffer x(g.elements(), x_offset);
      FillNormal(x.data(), g.elements(), kLargeMean, kSeed + x_offset);
      const Expected e = ReferenceFor(x.data(), g, kSeed);
      for (size_t y_offset : {0, 1, 2, 3}) {
        if (x_offset == 0 && y_offset == 0) continue;
        SCOPED_TRACE(Describe(g) + ", x offset " + std::to_string(x_offset) + ", y offset " +
                     std::to_string(y_offset));
        GuardedBuffer y(g.elements(), y_offset);
        Normalize(x.data(), y.data(), g, e.setup.params());
        EXPECT_TRUE(OutputNear(y.data(), e.y.data(), g));
      }
    }
  }
}

// Short channels-first runs lying back to back (7x7, 14x14 maps, 17, 37 and
// 1000 values) are walked as one span per row, blending two channels'
// coefficients in the vector that straddles them: every channel must come out
// bitwise as when its strided slice is normalized alone (run by run), at
// every alignment of y.
TEST_P(NormalizeKernel, SpansMatchEachChannelAlone) {
  const std::vector<std::pair<size_t, size_t>> cases = {{7, 49}, {5, 196}, {9, 17}, {3, 1000},
                                                        {4, 37}};
  for (const auto& [n, inner] : cases) {
    const size_t C = 19;
    const Geometry g = Geometry::Dense(n, C, inner);
    const std::vector<float> x = Normal(g.elements(), kLargeMean, kSeed);
    const Expected e = ReferenceFor(x.data(), g, kSeed);
    const Geometry alone =
        PlanStridedGeometry({static_cast<int64_t>(n), 1, static_cast<int64_t>(inner)},
                            {static_cast<int64_t>(C * inner), static_cast<int64_t>(inner), 1}, {1});
    for (size_t y_offset : {0, 1, 3}) {
      SCOPED_TRACE(Describe(g) + ", y offset " + std::to_string(y_offset));
      GuardedBuffer together(g.elements(), y_offset), apart(g.elements(), y_offset);
      Normalize(x.data(), together.data(), g, e.setup.params());
      for (size_t c = 0; c < C; ++c) {
        NormalizeParams p = e.setup.params();
        p.mean_hi += c;
        if (p.mean_lo != nullptr) p.mean_lo += c;
        p.scale += c;
        p.shift += c;
        Normalize(x.data() + c * inner, apart.data() + c * inner, alone, p);
      }
      EXPECT_EQ(0, std::memcmp(together.data(), apart.data(), g.elements() * sizeof(float)));
      EXPECT_TRUE(together.GuardsIntact());
    }
  }
}

// Normalize writes every element of y and not one float before or after it.
TEST_P(NormalizeKernel, WritesNothingOutsideTheOutput) {
  for (const Geometry& g : TailCases()) {
    const std::vector<float> x = Normal(g.elements(), kStandardNormal, kSeed);
    const Expected e = ReferenceFor(x.data(), g, kSeed);
    for (size_t y_offset : {0, 1, 3}) {
      SCOPED_TRACE(Describe(g) + ", y offset " + std::to_string(y_offset));
      GuardedBuffer y(g.elements(), y_offset);
      Normalize(x.data(), y.data(), g, e.setup.params());
      EXPECT_TRUE(y.GuardsIntact());
      EXPECT_TRUE(OutputNear(y.data(), e.y.data(), g));
    }
  }
}

// y == x is allowed and gives bit for bit the out-of-place result.
TEST_P(NormalizeKernel, InPlaceMatchesOutOfPlace) {
  for (const Geometry& g : TailCases()) {
    SCOPED_TRACE(Describe(g));
    GuardedBuffer x(g.elements(), 1);
    FillNormal(x.data(), g.elements(), kLargeMean, kSeed);
    const Expected e = ReferenceFor(x.data(), g, kSeed);
    std::vector<float> out_of_place(g.elements());
    Normalize(x.data(), out_of_place.data(), g, e.setup.params());
    GuardedBuffer in_place(g.elements(), 1);
    std::memcpy(in_place.data(), x.data(), g.elements() * sizeof(float));
    Normalize(in_place.data(), in_place.data(), g, e.setup.params());
    EXPECT_EQ(0, std::memcmp(in_place.data(), out_of_place.data(), g.elements() * sizeof(float)));
    EXPECT_TRUE(in_place.GuardsIntact());
  }
}

// An empty tensor (no rows, or no channels) leaves y untouched.
TEST_P(NormalizeKernel, EmptyTensorWritesNothing) {
  for (const Geometry& g : {Geometry::Dense(0, 3, 1), Geometry::Dense(0, 3, 5),
                            Geometry::Dense(4, 0, 1), Geometry::Dense(4, 0, 5)}) {
    SCOPED_TRACE(Describe(g));
    const std::vector<float> params(3, 1.0f);
    NormalizeParams p;
    p.mean_hi = p.mean_lo = p.scale = p.shift = params.data();
    const std::vector<float> x(8, 1.0f);
    GuardedBuffer y(0);
    Normalize(x.data(), y.data(), g, p);
    EXPECT_TRUE(y.GuardsIntact());
  }
}

// Statistics that are NaN (from a NaN in the data) make that channel's output
// NaN; every other channel is normalized exactly.
TEST_P(NormalizeKernel, NaNStatisticsGiveNaNOutputOnlyInTheirChannel) {
  for (const Geometry& g : {Geometry::Dense(40, 17, 1), Geometry::Dense(3, 5, 37)}) {
    for (size_t poisoned : {size_t{0}, g.channels - 1}) {
      SCOPED_TRACE(Describe(g) + ", channel " + std::to_string(poisoned));
      std::vector<float> x = Normal(g.elements(), kLargeMean, kSeed);
      x[g.RowOffset(1) + poisoned * g.inner] = std::numeric_limits<float>::quiet_NaN();
      const Expected e = ReferenceFor(x.data(), g, kSeed);
      const auto in_poisoned = [&](size_t k) { return k / g.inner % g.channels == poisoned; };
      std::vector<double> mean(g.channels), variance(g.channels);
      BatchMoments(x.data(), g, mean.data(), variance.data());
      const NormalizeSetup setup = MakeNormalizeSetup(mean, variance, kSeed);
      std::vector<float> y(g.elements());
      Normalize(x.data(), y.data(), g, setup.params());
      size_t not_nan = 0;
      ForEachOffset(g, [&](size_t k) {
        if (in_poisoned(k) && !std::isnan(y[k])) ++not_nan;
      });
      EXPECT_EQ(not_nan, 0u);
      EXPECT_TRUE(OutputNear(y.data(), e.y.data(), g, in_poisoned));
    }
  }
}

// With finite parameters, an infinite input gives an infinity whose sign is
// the input's times the scale's (IEEE arithmetic); the rest is exact.
TEST_P(NormalizeKernel, InfiniteInputGivesSignedInfinity) {
  const float inf = std::numeric_limits<float>::infinity();
  for (const Geometry& g : {Geometry::Dense(40, 17, 1), Geometry::Dense(3, 5, 37)}) {
    SCOPED_TRACE(Describe(g));
    const std::vector<float> x = Normal(g.elements(), kStandardNormal, kSeed);
    const Expected e = ReferenceFor(x.data(), g, kSeed);
    // Every channel gets a +Inf and a -Inf at two positions.
    std::vector<float> x_inf = x;
    std::vector<size_t> plus, minus;
    for (size_t c = 0; c < g.channels; ++c) {
      plus.push_back(g.RowOffset(0) + c * g.inner + g.inner - 1);
      minus.push_back(g.RowOffset(g.outer - 1) + c * g.inner);
      x_inf[plus.back()] = inf;
      x_inf[minus.back()] = -inf;
    }
    const auto is_inf = [&](size_t k) { return std::isinf(x_inf[k]); };
    std::vector<float> y(g.elements());
    Normalize(x_inf.data(), y.data(), g, e.setup.params());
    for (size_t c = 0; c < g.channels; ++c) {
      const float sign = e.setup.scale[c] > 0 ? 1.0f : -1.0f;
      EXPECT_EQ(y[plus[c]], sign * inf) << "channel " << c;
      EXPECT_EQ(y[minus[c]], -sign * inf) << "channel " << c;
    }
    EXPECT_TRUE(OutputNear(y.data(), e.y.data(), g, is_inf));
  }
}

// mean_lo == nullptr means a low mean part of zero (a float moving mean): the
// output is bit for bit that of explicit zeros.
TEST_P(NormalizeKernel, NullLowMeanActsAsZero) {
  for (const Geometry& g : TailCases()) {
    SCOPED_TRACE(Describe(g));
    const std::vector<float> x = Normal(g.elements(), kLargeMean, kSeed);
    const Expected e = ReferenceFor(x.data(), g, kSeed);
    const std::vector<float> zeros(g.channels, 0.0f);
    NormalizeParams with_zeros = e.setup.params();
    with_zeros.mean_lo = zeros.data();
    NormalizeParams without_lo = e.setup.params();
    without_lo.mean_lo = nullptr;
    std::vector<float> y_zeros(g.elements()), y_null(g.elements());
    Normalize(x.data(), y_zeros.data(), g, with_zeros);
    Normalize(x.data(), y_null.data(), g, without_lo);
    EXPECT_EQ(0, std::memcmp(y_null.data(), y_zeros.data(), g.elements() * sizeof(float)));
  }
}

// The fused activations clamp the affine result: ReLU to [0, inf), ReLU6 to
// [0, 6]; a NaN stays NaN (it is neither clamped to 0 nor to 6).
TEST_P(NormalizeKernel, ActivationsClampTheNormalizedOutput) {
  struct Clamp {
    Activation activation;
    const char* name;
    double low, high;
  };
  const Clamp clamps[] = {{Activation::kRelu, "ReLU", 0.0, std::numeric_limits<double>::infinity()},
                          {Activation::kRelu6, "ReLU6", 0.0, 6.0}};
  for (const Geometry& g : TailCases()) {
    // Parameters doubled below: y = 2 * (gamma * x-hat + beta) with |gamma| in
    // [0.5, 2) and beta in [-1, 1) has values below 0 and above 6. A NaN sits
    // in the middle of the data.
    std::vector<float> x = Normal(g.elements(), kStandardNormal, kSeed);
    const Expected e = ReferenceFor(x.data(), g, kSeed);
    const size_t nan_at = g.elements() / 2;
    x[nan_at] = std::numeric_limits<float>::quiet_NaN();
    for (const Clamp& clamp : clamps) {
      SCOPED_TRACE(Describe(g) + ", " + clamp.name);
      std::vector<double> ref(e.y.size());
      for (size_t k = 0; k < ref.size(); ++k) {
        ref[k] = std::min(std::max(e.y[k] * 2.0, clamp.low), clamp.high);
      }
      // Doubling gamma and beta doubles the reference output.
      std::vector<float> scale2(g.channels), shift2(g.channels);
      for (size_t c = 0; c < g.channels; ++c) {
        scale2[c] = 2.0f * e.setup.scale[c];
        shift2[c] = 2.0f * e.setup.shift[c];
      }
      NormalizeParams p = e.setup.params();
      p.scale = scale2.data();
      p.shift = shift2.data();
      p.activation = clamp.activation;
      std::vector<float> y(g.elements());
      Normalize(x.data(), y.data(), g, p);
      EXPECT_TRUE(std::isnan(y[nan_at])) << y[nan_at];
      EXPECT_TRUE(OutputNear(y.data(), ref.data(), g, [&](size_t k) { return k == nan_at; }));
    }
  }
}

}  // namespace
}  // namespace test
}  // namespace bnorm
