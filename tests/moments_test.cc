// SPDX-License-Identifier: Apache-2.0
// bnorm::BatchMoments on every supported target (the test parameter) and both
// layouts against the float64 reference: the exactness thresholds of issue 2,
// misaligned inputs and non-finite values.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "bnorm/geometry.hpp"
#include "bnorm/kernels.hpp"
#include "src/oracle/reference.h"
#include "tests/target_test.h"
#include "tests/test_util.h"

namespace bnorm {
namespace test {
namespace {

struct Stats {
  std::vector<double> mean, variance;
  explicit Stats(size_t channels)
      : mean(channels, std::numeric_limits<double>::quiet_NaN()),
        variance(channels, std::numeric_limits<double>::quiet_NaN()) {}
};

Stats ReferenceMoments(const float* x, const Geometry& g) {
  Stats s(g.channels);
  reference::Moments(x, g, s.mean.data(), s.variance.data());
  return s;
}

Stats KernelMoments(const float* x, const Geometry& g) {
  Stats s(g.channels);
  BatchMoments(x, g, s.mean.data(), s.variance.data());
  return s;
}

// BatchMoments on the target of the test parameter.
class MomentsKernel : public TargetTest {};
BNORM_INSTANTIATE_TARGET_TEST_SUITE_P(MomentsKernel);

// The heavy cases, on the best target and the fallback only.
class MomentsKernelHeavy : public TargetTest {};
BNORM_INSTANTIATE_BEST_AND_FALLBACK_TARGET_TEST_SUITE_P(MomentsKernelHeavy);

// Every size case with data from `dist`.
void ExpectSizeCasesMatchReference(const Distribution& dist) {
  uint32_t seed = kSeed;
  for (const Geometry& g : SizeCases()) {
    SCOPED_TRACE(Describe(g));
    const std::vector<float> x = Normal(g.elements(), dist, ++seed);
    const Stats ref = ReferenceMoments(x.data(), g);
    const Stats got = KernelMoments(x.data(), g);
    EXPECT_TRUE(MomentsNear(got.mean, got.variance, ref.mean, ref.variance));
  }
}

// One channel of kHeavyValues values from each distribution.
void ExpectHeavyChannelMatchesReference(const Geometry& g) {
  SCOPED_TRACE(Describe(g));
  uint32_t seed = kSeed;
  for (const Distribution& dist : kDistributions) {
    SCOPED_TRACE(dist.name);
    const std::vector<float> x = Normal(g.elements(), dist, ++seed);
    const Stats ref = ReferenceMoments(x.data(), g);
    const Stats got = KernelMoments(x.data(), g);
    EXPECT_TRUE(MomentsNear(got.mean, got.variance, ref.mean, ref.variance));
  }
}

TEST_P(MomentsKernel, MatchesReferenceOnStandardNormalData) {
  ExpectSizeCasesMatchReference(kStandardNormal);
}

TEST_P(MomentsKernel, MatchesReferenceWhenTheMeanIsLarge) {
  ExpectSizeCasesMatchReference(kLargeMean);
}

TEST_P(MomentsKernel, MatchesReferenceWhenTheMeanIsLargeAndTheStdTiny) {
  ExpectSizeCasesMatchReference(kLargeMeanTinyStd);
}

TEST_P(MomentsKernelHeavy, ChannelsLastChannelMatchesReference) {
  ExpectHeavyChannelMatchesReference(Geometry::Dense(kHeavyValues, 1, 1));
}

// Runs of 10^4 values: several runs per block and many blocks per channel.
TEST_P(MomentsKernelHeavy, ChannelsFirstChannelMatchesReference) {
  ExpectHeavyChannelMatchesReference(Geometry::Dense(kHeavyValues / 10000, 1, 10000));
}

// A channels-first channel's later chunks are reduced about the running mean,
// and chunks that stray from it redo two passes: data whose mean jumps between
// samples (by 2e4, about 1e-2 noise), steps inside a run or ramps must match
// as stationary data does, on every target and with run tails.
TEST_P(MomentsKernel, ChannelsFirstMatchesReferenceWhenTheMeanJumps) {
  const Geometry g = Geometry::Dense(6, 3, 3141);
  std::vector<float> x = Normal(g.elements(), 0.0, 1e-2, kSeed);
  for (size_t n = 0; n < g.outer; ++n) {
    for (size_t i = 0; i < g.inner; ++i) {
      float* v = &x[(n * g.channels) * g.inner + i];
      v[0] += static_cast<float>((n % 2 == 1 ? 1e4 : -1e4) + 1e3 * static_cast<double>(n));
      v[g.inner] += i < 1500 ? 1e4f : 1e4f + 1.0f;
      v[2 * g.inner] += 1e-3f * static_cast<float>(i);
    }
  }
  const Stats ref = ReferenceMoments(x.data(), g);
  const Stats got = KernelMoments(x.data(), g);
  EXPECT_TRUE(MomentsNear(got.mean, got.variance, ref.mean, ref.variance));
}

// Channels-first reductions walk up to 16 channels of a block (or tile)
// together along the rows; every channel must come out bitwise as when it is
// reduced alone (its strided slice, the same block rows): short runs with
// tails (7x7, 14x14), runs of 5 and 1, long runs split into blocks (56x56),
// more channels than one walk takes, and a mean that jumps between samples
// (some chunks redo two passes).
TEST_P(MomentsKernel, ChannelsWalkedTogetherMatchEachChannelAlone) {
  const std::vector<std::pair<size_t, size_t>> cases = {{64, 49}, {9, 196}, {40, 5}, {7, 1},
                                                        {24, 3136}, {3, 1043}};
  uint32_t seed = kSeed;
  for (const auto& [n, inner] : cases) {
    const size_t channels = 19;
    const Geometry g = Geometry::Dense(n, channels, inner);
    SCOPED_TRACE(Describe(g));
    std::vector<float> x = Normal(g.elements(), 3.0, 2.0, ++seed);
    for (size_t s = 0; s < n; ++s) {  // channel 1 jumps by 1e4 every other sample
      for (size_t i = 0; i < inner; ++i) x[(s * channels + 1) * inner + i] += s % 2 ? 1e4f : 0.0f;
    }
    const Stats together = KernelMoments(x.data(), g);
    for (size_t c = 0; c < channels; ++c) {
      const Geometry alone = PlanStridedGeometry(
          {static_cast<int64_t>(n), 1, static_cast<int64_t>(inner)},
          {static_cast<int64_t>(channels * inner), static_cast<int64_t>(inner), 1}, {1});
      Stats one(1);
      BatchMoments(x.data() + c * inner, alone, one.mean.data(), one.variance.data());
      EXPECT_TRUE(SameBits(std::vector<double>{together.mean[c], together.variance[c]},
                           std::vector<double>{one.mean[0], one.variance[0]}))
          << "channel " << c;
    }
  }
}

// The same for channels-last rows: later sub-blocks are reduced about the
// running means, and rows whose means jump, step or ramp take the fallback.
TEST_P(MomentsKernel, ChannelsLastMatchesReferenceWhenTheMeanJumps) {
  const Geometry g = Geometry::Dense(300, 40, 1);
  std::vector<float> x = Normal(g.elements(), 0.0, 1e-2, kSeed + 1);
  for (size_t r = 0; r < g.outer; ++r) {
    for (size_t c = 0; c < g.channels; ++c) {
      const double offsets[3] = {(r / 40 % 2 == 1 ? 1e4 : -1e4) + 1e3 * static_cast<double>(r / 40),
                                 r < 150 ? 1e4 : 1e4 + 1.0, 1e-3 * static_cast<double>(r)};
      x[r * g.channels + c] += static_cast<float>(offsets[c % 3]);
    }
  }
  const Stats ref = ReferenceMoments(x.data(), g);
  const Stats got = KernelMoments(x.data(), g);
  EXPECT_TRUE(MomentsNear(got.mean, got.variance, ref.mean, ref.variance));
}

// Deviations from a running mean can be far larger than from a chunk's own
// mean: samples (or rows) at 0, then the last tenth at 5e19 (variance 2.25e38,
// within float's range) would overflow float squares about the running mean,
// so those chunks take two passes and the variance stays finite and exact.
TEST_P(MomentsKernel, AJumpOf5e19DoesNotOverflow) {
  for (const Geometry& g : {Geometry::Dense(10, 2, 3000), Geometry::Dense(320, 24, 1)}) {
    SCOPED_TRACE(Describe(g));
    std::vector<float> x = Normal(g.elements(), 0.0, 1.0, kSeed + 2);
    const size_t row = g.channels * g.inner;
    for (size_t k = g.outer * 9 / 10 * row; k < x.size(); ++k) x[k] += 5e19f;
    const Stats ref = ReferenceMoments(x.data(), g);
    const Stats got = KernelMoments(x.data(), g);
    EXPECT_TRUE(MomentsNear(got.mean, got.variance, ref.mean, ref.variance));
  }
}

// One value per channel: the mean is that value and the variance 0. Only
// channels-last can hold it (channels-first has inner > 1, so at least two
// values per channel).
TEST_P(MomentsKernel, OneValuePerChannelHasZeroVariance) {
  for (size_t channels : {1, 17, 1000}) {
    const Geometry g = Geometry::Dense(1, channels, 1);
    SCOPED_TRACE(Describe(g));
    const std::vector<float> x = Normal(g.elements(), kLargeMean, kSeed + channels);
    const Stats got = KernelMoments(x.data(), g);
    for (size_t c = 0; c < channels; ++c) {
      EXPECT_EQ(got.mean[c], static_cast<double>(x[c])) << "channel " << c;
      EXPECT_EQ(got.variance[c], 0.0) << "channel " << c;
    }
  }
}

// A channel holding one value many times has that mean and a variance of 0
// (to 1e-12), never a negative one, for small and large magnitudes.
TEST_P(MomentsKernel, ConstantChannelsHaveZeroVariance) {
  const float values[] = {0.0f, 1.0f, -3.3f, 1e4f + 0.37f, 7.1e-20f, -2.5e6f};
  const size_t kValues = sizeof(values) / sizeof(values[0]);
  for (const Geometry& g :
       {Geometry::Dense(1000, 17, 1), Geometry::Dense(7, 5, 333), Geometry::Dense(2, 6, 70001)}) {
    SCOPED_TRACE(Describe(g));
    std::vector<float> x(g.elements());
    ForEachOffset(g, [&](size_t k) { x[k] = values[(k / g.inner % g.channels) % kValues]; });
    const Stats ref = ReferenceMoments(x.data(), g);
    const Stats got = KernelMoments(x.data(), g);
    EXPECT_TRUE(MomentsNear(got.mean, got.variance, ref.mean, ref.variance));
    for (size_t c = 0; c < g.channels; ++c) {
      EXPECT_GE(got.variance[c], 0.0) << "channel " << c;
    }
  }
}

// The input may start anywhere: 1, 2 or 3 floats past a 64-byte boundary,
// with odd channel counts and run lengths so that every tail path runs.
TEST_P(MomentsKernel, UnalignedInputMatchesReference) {
  for (const Geometry& g : {Geometry::Dense(37, 19, 1), Geometry::Dense(5, 3, 37),
                            Geometry::Dense(70, 35, 1), Geometry::Dense(3, 2, 1031)}) {
    for (size_t offset : {1, 2, 3}) {
      SCOPED_TRACE(Describe(g) + ", offset " + std::to_string(offset));
      GuardedBuffer x(g.elements(), offset);
      FillNormal(x.data(), g.elements(), kLargeMean, kSeed + offset);
      const Stats ref = ReferenceMoments(x.data(), g);
      const Stats got = KernelMoments(x.data(), g);
      EXPECT_TRUE(MomentsNear(got.mean, got.variance, ref.mean, ref.variance));
    }
  }
}

// Channels-first run tails (len % lanes values per run) of many samples are
// packed and reduced in several buffers, the last one ending in a partial
// vector, on every target: tails of 1, 2, 3 and 6 or 14 values, large mean
// with tiny std and standard normal data.
TEST_P(MomentsKernel, RunTailsOfManySamplesMatchReference) {
  uint32_t seed = kSeed;
  for (const Geometry& g : {Geometry::Dense(1001, 2, 3), Geometry::Dense(700, 3, 17),
                            Geometry::Dense(301, 2, 14), Geometry::Dense(2500, 1, 2)}) {
    for (const Distribution& dist : {kLargeMeanTinyStd, kStandardNormal}) {
      SCOPED_TRACE(Describe(g) + ", " + dist.name);
      const std::vector<float> x = Normal(g.elements(), dist, ++seed);
      const Stats ref = ReferenceMoments(x.data(), g);
      const Stats got = KernelMoments(x.data(), g);
      EXPECT_TRUE(MomentsNear(got.mean, got.variance, ref.mean, ref.variance));
    }
  }
}

// Channels and element positions to poison in the non-finite tests: the first
// and the last channel (vector body and scalar tail of channels-last), in the
// middle and at the very end of the data, and short channels-first runs that
// share a two-pass chunk.
struct Poison {
  Geometry g;
  size_t channel;
  size_t row;
  size_t inner;
};

std::vector<Poison> PoisonCases() {
  const Geometry cl = Geometry::Dense(40, 17, 1);
  const Geometry cf = Geometry::Dense(3, 5, 37);
  const Geometry short_runs = Geometry::Dense(300, 3, 3);
  return {{cl, 0, 20, 0}, {cl, 16, 39, 0}, {cl, 5, 0, 0},          {cf, 0, 1, 10},
          {cf, 4, 2, 36}, {cf, 2, 0, 0},   {short_runs, 1, 150, 2}};
}

std::string DescribePoison(const Poison& p) {
  return Describe(p.g) + ", channel " + std::to_string(p.channel) + ", row " +
         std::to_string(p.row) + ", inner " + std::to_string(p.inner);
}

size_t PoisonOffset(const Poison& p) {
  return p.g.RowOffset(p.row) + p.channel * p.g.inner + p.inner;
}

// A NaN makes its channel's mean and variance NaN; every other channel keeps
// its exact statistics.
TEST_P(MomentsKernel, NaNPoisonsOnlyItsChannel) {
  for (const Poison& p : PoisonCases()) {
    SCOPED_TRACE(DescribePoison(p));
    std::vector<float> x = Normal(p.g.elements(), kLargeMean, kSeed);
    x[PoisonOffset(p)] = std::numeric_limits<float>::quiet_NaN();
    const Stats ref = ReferenceMoments(x.data(), p.g);
    const Stats got = KernelMoments(x.data(), p.g);
    EXPECT_TRUE(std::isnan(got.mean[p.channel])) << got.mean[p.channel];
    EXPECT_TRUE(std::isnan(got.variance[p.channel])) << got.variance[p.channel];
    EXPECT_TRUE(MomentsNear(got.mean, got.variance, ref.mean, ref.variance, p.channel));
  }
}

// An infinity in a channel: mathematically its mean is that infinity and its
// variance NaN (Inf - Inf). bnorm's kernels subtract a per-block shift (the
// block's approximate mean, itself infinite) before summing, so the mean comes
// out NaN rather than Inf; the contract is only "not finite". The variance is
// NaN and every other channel keeps its exact statistics.
TEST_P(MomentsKernel, InfinityMakesItsChannelNonFiniteAndLeavesOthersExact) {
  for (const float inf :
       {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()}) {
    for (const Poison& p : PoisonCases()) {
      SCOPED_TRACE(DescribePoison(p) + (inf > 0 ? ", +Inf" : ", -Inf"));
      std::vector<float> x = Normal(p.g.elements(), kLargeMean, kSeed);
      x[PoisonOffset(p)] = inf;
      const Stats ref = ReferenceMoments(x.data(), p.g);
      const Stats got = KernelMoments(x.data(), p.g);
      EXPECT_FALSE(std::isfinite(got.mean[p.channel])) << got.mean[p.channel];
      EXPECT_TRUE(std::isnan(got.variance[p.channel])) << got.variance[p.channel];
      EXPECT_TRUE(MomentsNear(got.mean, got.variance, ref.mean, ref.variance, p.channel));
    }
  }
}

// Float sums of squared deviations must not overflow while the variance itself
// is representable: std 1e18 gives a variance of 1e36 (float max ~3.4e38).
class MomentsExtremes : public TargetTest {};
BNORM_INSTANTIATE_TARGET_TEST_SUITE_P(MomentsExtremes);

TEST_P(MomentsExtremes, HugeSpreadDoesNotOverflow) {
  for (const Geometry& g :
       {Geometry::Dense(1, 1, 4096), Geometry::Dense(1000, 16, 1), Geometry::Dense(3, 5, 4099)}) {
    const std::vector<float> x = Normal(g.elements(), 0.0, 1e18, 11);
    std::vector<double> mean(g.channels), var(g.channels), rmean(g.channels), rvar(g.channels);
    reference::Moments(x.data(), g, rmean.data(), rvar.data());
    BatchMoments(x.data(), g, mean.data(), var.data());
    for (size_t c = 0; c < g.channels; ++c) {
      ASSERT_TRUE(std::isfinite(var[c])) << "channel " << c;
      EXPECT_NEAR(var[c] / rvar[c], 1.0, 1e-6) << "channel " << c;
      EXPECT_NEAR(mean[c], rmean[c], 1e-6 * std::sqrt(rvar[c])) << "channel " << c;
    }
  }
}

}  // namespace
}  // namespace test
}  // namespace bnorm
