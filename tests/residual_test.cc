// SPDX-License-Identifier: Apache-2.0
// Normalize with a residual (NormalizeParams::residual, a network's "batch
// norm, add, ReLU" in one pass) on every supported target (the test
// parameter): against the float64 reference; bitwise what Normalize followed by
// a float32 add and the activation gives, over every tail length; the residual
// in place (== y), misaligned buffers, outputs beyond the caches (streamed),
// strided views, 16-bit types over every bit pattern, and IEEE non-finite
// values.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "bnorm/dtype.hpp"
#include "bnorm/execution.hpp"
#include "bnorm/geometry.hpp"
#include "bnorm/kernels.hpp"
#include "src/ops/half.h"
#include "src/oracle/reference.h"
#include "tests/target_test.h"
#include "tests/test_util.h"

namespace bnorm {
namespace test {
namespace {

class Residual : public TargetTest {};
BNORM_INSTANTIATE_TARGET_TEST_SUITE_P(Residual);

// Whether this build runs g: emulators (heavy tests off) keep the cases of up
// to 10^5 values, which cover every tail and both layouts.
bool Runs(const Geometry& g) { return kHeavyTests || g.elements() <= 100000; }

float Activated(Activation act, float v) {
  // As the kernels: NaN stays NaN, -0 stays -0 (it is not < 0).
  if (act == Activation::kNone) return v;
  if (v < 0.0f) v = 0.0f;
  if (act == Activation::kRelu6 && v > 6.0f) v = 6.0f;
  return v;
}

// Shapes whose rows and runs end in every tail length of 1, 4, 8 and 16
// lanes, and large enough ones to run in parallel.
std::vector<Geometry> TailCases() {
  return {Geometry::Dense(3, 1, 1),   Geometry::Dense(5, 3, 1),    Geometry::Dense(4, 15, 1),
          Geometry::Dense(3, 16, 1),  Geometry::Dense(3, 17, 1),   Geometry::Dense(7, 47, 1),
          Geometry::Dense(2, 3, 2),   Geometry::Dense(3, 2, 15),   Geometry::Dense(2, 3, 17),
          Geometry::Dense(2, 1, 33),  Geometry::Dense(3, 2, 47),   Geometry::Dense(20000, 17, 1),
          Geometry::Dense(1, 64, 49), Geometry::Dense(2, 3, 65551)};
}

TEST_P(Residual, MatchesReference) {
  uint32_t seed = kSeed;
  for (const Distribution& dist : kDistributions) {
    // Emulators (heavy tests off): the hardest distribution alone.
    if (!kHeavyTests && &dist != &kDistributions[2]) continue;
    for (const Geometry& g : SizeCases()) {
      if (!Runs(g)) continue;
      SCOPED_TRACE(Describe(g) + ", " + dist.name);
      const std::vector<float> x = Normal(g.elements(), dist, ++seed);
      const std::vector<float> z = Normal(g.elements(), kStandardNormal, ++seed);
      Expected p = ReferenceFor(x.data(), g, seed);
      for (size_t k = 0; k < z.size(); ++k) p.y[k] += z[k];
      NormalizeParams params = p.setup.params();
      params.residual = z.data();
      std::vector<float> y(g.elements(), Sentinel());
      Normalize(x.data(), y.data(), g, params);
      EXPECT_TRUE(OutputNear(y.data(), p.y.data(), g));
    }
  }
}

// The fused pass is exactly the two passes it replaces: y0 = Normalize(x),
// then act(y0 + z) in float32.
TEST_P(Residual, IsBitwiseNormalizeThenAdd) {
  for (const Geometry& g : TailCases()) {
    if (!Runs(g)) continue;
    const size_t n = g.elements();
    std::vector<float> x = Normal(n, kLargeMean, kSeed);
    std::vector<float> z = Normal(n, 0.0, 3.0, kSeed + 1);
    const Expected p = ReferenceFor(x.data(), g, kSeed);
    x[n / 2] = std::numeric_limits<float>::quiet_NaN();
    z[n / 3] = -std::numeric_limits<float>::infinity();
    std::vector<float> y0(n);
    Normalize(x.data(), y0.data(), g, p.setup.params());
    for (Activation act : {Activation::kNone, Activation::kRelu, Activation::kRelu6}) {
      SCOPED_TRACE(Describe(g) + ", activation " + std::to_string(static_cast<int>(act)));
      std::vector<float> expected(n);
      for (size_t k = 0; k < n; ++k) expected[k] = Activated(act, y0[k] + z[k]);
      NormalizeParams params = p.setup.params();
      params.residual = z.data();
      params.activation = act;
      std::vector<float> y(n, Sentinel());
      Normalize(x.data(), y.data(), g, params);
      ASSERT_EQ(0, std::memcmp(y.data(), expected.data(), n * sizeof(float)));
    }
  }
}

// residual == y (y += bn(x)) and x == y == residual give the out-of-place bits.
TEST_P(Residual, InPlaceMatchesOutOfPlace) {
  for (const Geometry& g : TailCases()) {
    if (!Runs(g)) continue;
    SCOPED_TRACE(Describe(g));
    const size_t n = g.elements();
    const std::vector<float> x = Normal(n, kLargeMean, kSeed);
    const std::vector<float> z = Normal(n, kStandardNormal, kSeed + 1);
    const Expected p = ReferenceFor(x.data(), g, kSeed);
    NormalizeParams params = p.setup.params();
    params.activation = Activation::kRelu;
    params.residual = z.data();
    std::vector<float> out(n);
    Normalize(x.data(), out.data(), g, params);

    std::vector<float> accumulate = z;
    params.residual = accumulate.data();
    Normalize(x.data(), accumulate.data(), g, params);
    EXPECT_EQ(0, std::memcmp(accumulate.data(), out.data(), n * sizeof(float)));

    std::vector<float> all = x, twice(n);
    params.residual = x.data();
    Normalize(x.data(), twice.data(), g, params);
    params.residual = all.data();
    Normalize(all.data(), all.data(), g, params);
    EXPECT_EQ(0, std::memcmp(all.data(), twice.data(), n * sizeof(float)));
  }
}

// x, residual and y each 0 to 3 floats past a 64-byte boundary; nothing
// outside y is written.
TEST_P(Residual, UnalignedBuffersMatchAndWriteNothingOutside) {
  for (const Geometry& g :
       {Geometry::Dense(37, 19, 1), Geometry::Dense(5, 3, 37), Geometry::Dense(9, 16, 1)}) {
    const size_t n = g.elements();
    const std::vector<float> x0 = Normal(n, kLargeMean, kSeed);
    const std::vector<float> z0 = Normal(n, kStandardNormal, kSeed + 1);
    const Expected p = ReferenceFor(x0.data(), g, kSeed);
    std::vector<double> ref = p.y;
    for (size_t k = 0; k < n; ++k) ref[k] += z0[k];
    for (size_t xo : {0, 1, 3}) {
      for (size_t zo : {0, 2, 3}) {
        for (size_t yo : {0, 1, 2}) {
          SCOPED_TRACE(Describe(g) + ", offsets x " + std::to_string(xo) + " z " +
                       std::to_string(zo) + " y " + std::to_string(yo));
          GuardedBuffer x(n, xo), z(n, zo), y(n, yo);
          x.Assign(x0);
          z.Assign(z0);
          NormalizeParams params = p.setup.params();
          params.residual = z.data();
          Normalize(x.data(), y.data(), g, params);
          EXPECT_TRUE(OutputNear(y.data(), ref.data(), g));
          EXPECT_TRUE(y.GuardsIntact());
        }
      }
    }
  }
}

// Beyond the caches (x, z and y together above the streaming threshold) y is
// written with non-temporal stores, shifted to y's alignment for contiguous
// channels-last rows: the bits of 1/8 slices that stay cached.
void CheckStreamedMatchesCached(size_t channels, size_t inner) {
  constexpr size_t kOuter = 8;
  const size_t rows = StreamingSliceRows(channels * inner * sizeof(float));
  const Geometry whole = Geometry::Dense(kOuter * rows, channels, inner);
  const Geometry slice = Geometry::Dense(rows, channels, inner);
  const size_t n = whole.elements();
  const std::vector<float> x = Normal(n, 3.0, 2.0, 5);
  const std::vector<float> z = Normal(n, 0.0, 1.0, 6);
  std::vector<float> hi(channels), scale(channels), shift(channels);
  for (size_t c = 0; c < channels; ++c) {
    hi[c] = 3.0f + 0.01f * static_cast<float>(c);
    scale[c] = 0.5f + 0.001f * static_cast<float>(c);
    shift[c] = -1.0f;
  }
  NormalizeParams params{hi.data(),    nullptr,           scale.data(),
                         shift.data(), Activation::kRelu, z.data()};
  std::vector<float> cached(n);
  for (size_t o = 0; o < kOuter; ++o) {
    const size_t at = o * slice.elements();
    params.residual = z.data() + at;
    Normalize(x.data() + at, cached.data() + at, slice, params);
  }
  params.residual = z.data();
  for (size_t misalign : {0, 1, 3}) {
    SCOPED_TRACE(misalign);
    GuardedBuffer streamed(n, misalign);
    Normalize(x.data(), streamed.data(), whole, params);
    ASSERT_EQ(0, std::memcmp(streamed.data(), cached.data(), n * sizeof(float)));
    ASSERT_TRUE(streamed.GuardsIntact());
  }
}

// Tensors beyond the caches take minutes per target under qemu: heavy builds only.
TEST_P(Residual, StreamedChannelsLastMatchesCached) {
  if (!kHeavyTests) GTEST_SKIP() << "a tensor beyond the caches: heavy tests are off in this build";
  CheckStreamedMatchesCached(96, 1);
}

TEST_P(Residual, StreamedChannelsFirstMatchesCached) {
  if (!kHeavyTests) GTEST_SKIP() << "a tensor beyond the caches: heavy tests are off in this build";
  CheckStreamedMatchesCached(64, 1001);
  CheckStreamedMatchesCached(64, 49);  // 7x7 maps: one span per row of channels
}

// A channel slice of an NHWC buffer: the residual has the view's strides, and
// its elements outside the view (NaN here) are never read.
TEST_P(Residual, StridedViewReadsOnlyTheView) {
  const std::vector<int64_t> shape{2, 3, 5, 32}, strides{3 * 5 * 64, 5 * 64, 64, 1};
  const Geometry g = PlanStridedGeometry(shape, strides, {-1});
  constexpr size_t kBuffer = 2 * 3 * 5 * 64, kOffset = 16;
  const std::vector<float> xb = Normal(kBuffer, 100.0, 3.0, 7);
  std::vector<float> zb(kBuffer, std::numeric_limits<float>::quiet_NaN());
  const std::vector<float> zv = Normal(kBuffer, 0.0, 1.0, 8);
  ForEachOffset(g, [&](size_t k) { zb[kOffset + k] = zv[kOffset + k]; });
  const float* x = xb.data() + kOffset;
  const Expected p = ReferenceFor(x, g, kSeed);
  std::vector<double> ref = p.y;
  ForEachOffset(g, [&](size_t k) { ref[k] += zb[kOffset + k]; });
  NormalizeParams params = p.setup.params();
  params.residual = zb.data() + kOffset;
  std::vector<float> yb(kBuffer, Sentinel());
  Normalize(x, yb.data() + kOffset, g, params);
  EXPECT_TRUE(OutputNear(yb.data() + kOffset, ref.data(), g));
  std::vector<bool> in_view(kBuffer, false);
  ForEachOffset(g, [&](size_t k) { in_view[kOffset + k] = true; });
  for (size_t i = 0; i < kBuffer; ++i) {
    if (!in_view[i]) {
      ASSERT_TRUE(IsSentinel(yb[i])) << "element " << i << " outside the view";
    }
  }
}

// 16-bit x and residual: with scale 1, shift -0 and mean 0 the affine part is
// x itself, so y = narrow(widen(x) + widen(z)) exactly, for every bit pattern
// of x against a mix of residual patterns, in both layouts.
TEST_P(Residual, SixteenBitTypesRoundTheSum) {
  constexpr size_t kPatterns = 0x10000, kChannels = 16;
  for (DType dtype : {DType::kFloat16, DType::kBFloat16}) {
    const auto widen = [&](uint16_t b) {
      return dtype == DType::kFloat16 ? HalfToFloat(b) : BFloat16ToFloat(b);
    };
    const auto narrow = [&](float f) {
      return dtype == DType::kFloat16 ? FloatToHalf(f) : FloatToBFloat16(f);
    };
    const std::vector<float> hi(kChannels, 0.0f), scale(kChannels, 1.0f), shift(kChannels, -0.0f);
    std::vector<uint16_t> x(kPatterns), z(kPatterns);
    for (size_t i = 0; i < kPatterns; ++i) {
      x[i] = static_cast<uint16_t>(i);
      z[i] = static_cast<uint16_t>(i * 40503u);  // every pattern, in another order
    }
    for (const Geometry& g : {Geometry::Dense(kPatterns / kChannels, kChannels, 1),
                              Geometry::Dense(1, kChannels, kPatterns / kChannels)}) {
      SCOPED_TRACE(std::string(Name(dtype)) + ", " + Describe(g));
      const NormalizeParams params{hi.data(),    nullptr,           scale.data(),
                                   shift.data(), Activation::kNone, z.data()};
      std::vector<uint16_t> y(kPatterns);
      Normalize(x.data(), y.data(), dtype, g, params, Execution::Serial());
      for (size_t i = 0; i < kPatterns; ++i) {
        const float sum = widen(x[i]) + widen(z[i]);
        if (std::isnan(sum)) {
          ASSERT_TRUE(std::isnan(widen(y[i]))) << "x " << x[i] << " z " << z[i];
        } else {
          ASSERT_EQ(y[i], narrow(sum)) << "x " << x[i] << " z " << z[i];
        }
      }
    }
  }
}

// IEEE: an infinite residual gives an infinite y of its sign (ReLU maps -inf
// to 0), opposite infinities and NaN give NaN, in that element only.
TEST_P(Residual, NonFiniteResidualFollowsIEEE) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
  for (const Geometry& g : {Geometry::Dense(9, 17, 1), Geometry::Dense(2, 3, 41)}) {
    SCOPED_TRACE(Describe(g));
    const size_t n = g.elements();
    std::vector<float> x = Normal(n, kStandardNormal, kSeed);
    const Expected p = ReferenceFor(x.data(), g, kSeed);
    std::vector<float> z(n, 0.5f);
    z[1] = kInf;
    z[n / 2] = -kInf;
    z[n - 1] = kNaN;
    // +inf through this channel's scale, plus the opposite infinity.
    x[n - 2] = kInf;
    const size_t channel = (n - 2) / g.inner % g.channels;
    z[n - 2] = p.setup.scale[channel] > 0.0f ? -kInf : kInf;
    NormalizeParams params = p.setup.params();
    params.residual = z.data();
    for (Activation act : {Activation::kNone, Activation::kRelu}) {
      params.activation = act;
      std::vector<float> y(n);
      Normalize(x.data(), y.data(), g, params);
      EXPECT_EQ(y[1], kInf);
      EXPECT_EQ(y[n / 2], act == Activation::kRelu ? 0.0f : -kInf);
      EXPECT_TRUE(std::isnan(y[n - 1]));
      EXPECT_TRUE(std::isnan(y[n - 2]));
      EXPECT_TRUE(std::isfinite(y[0]) && std::isfinite(y[n / 3]));
    }
  }
}

}  // namespace
}  // namespace test
}  // namespace bnorm
