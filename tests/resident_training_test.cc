// SPDX-License-Identifier: Apache-2.0
// The channel-resident training forward (src/ops/resident_training.h) against
// the two-pass path it replaces: BatchMoments, the same fold, then Normalize.
// Statistics, coefficients and y must be bitwise equal on every target, for any
// thread count, on channels split into several blocks, blocks of several small
// channels, strided (ghost-like) views, 16-bit types and in place; and the
// layer that takes it must match the float64 Keras oracle.
#include "src/ops/resident_training.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "bnorm/batch_norm.hpp"
#include "bnorm/error.hpp"
#include "bnorm/kernels.hpp"
#include "src/ops/half.h"
#include "src/ops/streaming.h"
#include "src/oracle/keras_reference.h"
#include "tests/target_test.h"
#include "tests/test_util.h"

namespace bnorm {
namespace {

// gamma/sqrt(var + eps) and beta per channel, as a simple layer folds them.
class TestFold : public ChannelFold {
 public:
  explicit TestFold(size_t channels) {
    for (size_t c = 0; c < channels; ++c) {
      gamma_.push_back(0.5f + 0.01f * static_cast<float>(c % 50));
      beta_.push_back(-1.0f + 0.02f * static_cast<float>(c % 30));
    }
  }
  void operator()(size_t c, double mean, double variance, float* hi, float* lo, float* scale,
                  float* shift) const override {
    SplitMean(mean, hi, lo);
    *scale = static_cast<float>(gamma_[c] / std::sqrt(variance + 1e-3));
    *shift = beta_[c];
  }

 private:
  std::vector<float> gamma_, beta_;
};

struct Outputs {
  std::vector<double> mean, variance;
  std::vector<float> hi, lo, scale, shift;
  std::vector<uint8_t> y;
  explicit Outputs(size_t channels, size_t bytes)
      : mean(channels),
        variance(channels),
        hi(channels),
        lo(channels),
        scale(channels),
        shift(channels),
        y(bytes, 0xA5) {}
};

// The geometry's values as `type`, with a large mean so the split mean matters.
std::vector<uint8_t> Input(DType type, const Geometry& g, uint64_t seed) {
  const std::vector<float> values = test::Normal(g.Extent(), 1e3, 2.0, seed);
  std::vector<uint8_t> bytes(g.Extent() * SizeOf(type));
  for (size_t i = 0; i < values.size(); ++i) {
    if (type == DType::kFloat32) {
      std::memcpy(&bytes[i * 4], &values[i], 4);
    } else {
      const uint16_t bits =
          type == DType::kFloat16 ? FloatToHalf(values[i] * 1e-3f) : FloatToBFloat16(values[i]);
      std::memcpy(&bytes[i * 2], &bits, 2);
    }
  }
  return bytes;
}

Outputs TwoPass(const std::vector<uint8_t>& x, DType type, const Geometry& g, const TestFold& fold,
                const Execution& exec) {
  Outputs o(g.channels, x.size());
  BatchMoments(x.data(), type, g, o.mean.data(), o.variance.data(), exec);
  for (size_t c = 0; c < g.channels; ++c) {
    fold(c, o.mean[c], o.variance[c], &o.hi[c], &o.lo[c], &o.scale[c], &o.shift[c]);
  }
  // Rows a strided view skips keep the untouched pattern in both paths.
  const NormalizeParams params{o.hi.data(), o.lo.data(), o.scale.data(), o.shift.data()};
  Normalize(x.data(), o.y.data(), type, g, params, exec);
  return o;
}

Outputs Resident(const std::vector<uint8_t>& x, DType type, const Geometry& g, const TestFold& fold,
                 const Execution& exec) {
  Outputs o(g.channels, x.size());
  ResidentTraining(x.data(), o.y.data(), type, g, fold, o.mean.data(), o.variance.data(),
                   o.hi.data(), o.lo.data(), o.scale.data(), o.shift.data(), exec);
  return o;
}

void ExpectSameBits(const Outputs& a, const Outputs& b) {
  EXPECT_EQ(0, std::memcmp(a.mean.data(), b.mean.data(), a.mean.size() * sizeof(double)));
  EXPECT_EQ(0, std::memcmp(a.variance.data(), b.variance.data(), a.mean.size() * sizeof(double)));
  EXPECT_EQ(a.hi, b.hi);
  EXPECT_EQ(a.lo, b.lo);
  EXPECT_EQ(a.scale, b.scale);
  EXPECT_EQ(a.shift, b.shift);
  EXPECT_TRUE(a.y == b.y);
}

Geometry Strided(size_t rows, size_t channels) {
  // Every other sample (a ghost view): `rows` rows of `channels` channels x 70001 values.
  Geometry g = Geometry::Dense(rows, channels, 70001);
  g.row_stride = 2 * channels * 70001;
  g.group_rows = rows;
  g.group_stride = rows * g.row_stride;
  return g;
}

// The edges the resident path must keep: one block per channel, channels split
// into several blocks (runs longer than 2^16 values), blocks of several small
// channels, many short runs. Smaller where heavy tests are off (emulators).
std::vector<Geometry> Cases(bool strided) {
  std::vector<Geometry> cases;
  if (test::kHeavyTests) {
    cases = {Geometry::Dense(4, 6, 3136), Geometry::Dense(3, 4, 70001), Geometry::Dense(2, 300, 17),
             Geometry::Dense(100003, 2, 2)};
    if (strided) cases.push_back(Strided(3, 5));
  } else {
    cases = {Geometry::Dense(2, 3, 3136), Geometry::Dense(1, 2, 70001), Geometry::Dense(2, 40, 17),
             Geometry::Dense(1003, 2, 2)};
    if (strided) cases.push_back(Strided(2, 1));
  }
  return cases;
}

class ResidentTrainingTest : public test::TargetTest {};

TEST_P(ResidentTrainingTest, BitwiseTheTwoPassPath) {
  for (const Geometry& g : Cases(/*strided=*/true)) {
    for (DType type : {DType::kFloat32, DType::kFloat16, DType::kBFloat16}) {
      SCOPED_TRACE(test::Describe(g) + " " + Name(type));
      const std::vector<uint8_t> x = Input(type, g, g.Extent());
      const TestFold fold(g.channels);
      const Outputs expected = TwoPass(x, type, g, fold, Execution::Serial());
      ExpectSameBits(Resident(x, type, g, fold, Execution::Serial()), expected);
      ExpectSameBits(Resident(x, type, g, fold, Execution::Parallel()), expected);
    }
  }
}

TEST_P(ResidentTrainingTest, InPlace) {
  const Geometry g = Geometry::Dense(1, 2, 70001);
  const std::vector<uint8_t> x = Input(DType::kFloat32, g, 7);
  const TestFold fold(g.channels);
  const Outputs expected = TwoPass(x, DType::kFloat32, g, fold, Execution::Parallel());
  Outputs o(g.channels, x.size());
  o.y = x;
  ResidentTraining(o.y.data(), o.y.data(), DType::kFloat32, g, fold, o.mean.data(),
                   o.variance.data(), o.hi.data(), o.lo.data(), o.scale.data(), o.shift.data(),
                   Execution::Parallel());
  ExpectSameBits(o, expected);
}

BNORM_INSTANTIATE_TARGET_TEST_SUITE_P(ResidentTrainingTest);

// The engine call, on a tensor that takes the resident path and on one that
// does not: bitwise BatchMoments, the fold and Normalize.
TEST(TrainingNormalize, BitwiseMomentsFoldAndNormalize) {
  if (!test::kHeavyTests)
    GTEST_SKIP() << "a tensor beyond the caches: heavy tests are off in this build";
  const Geometry resident = Geometry::Dense(16, 8, 64 * 544);  // 17.8 MB, 139 KB per channel
  ASSERT_TRUE(ChannelResident(DType::kFloat32, resident));
  for (const Geometry& g : {resident, Geometry::Dense(4, 6, 3136), Geometry::Dense(64, 32, 1)}) {
    SCOPED_TRACE(test::Describe(g));
    const std::vector<uint8_t> x = Input(DType::kFloat32, g, 3);
    std::vector<float> gamma(g.channels), beta(g.channels);
    for (size_t c = 0; c < g.channels; ++c) {
      gamma[c] = 0.5f + 0.01f * static_cast<float>(c % 50);
      beta[c] = -1.0f + 0.02f * static_cast<float>(c % 30);
    }
    const Outputs expected =
        TwoPass(x, DType::kFloat32, g, TestFold(g.channels), Execution::Parallel());
    Outputs o(g.channels, x.size());
    TrainingNormalize(x.data(), o.y.data(), DType::kFloat32, g, gamma.data(), beta.data(), 1e-3,
                      o.mean.data(), o.variance.data(), Execution::Parallel());
    EXPECT_EQ(0, std::memcmp(o.mean.data(), expected.mean.data(), g.channels * sizeof(double)));
    EXPECT_EQ(
        0, std::memcmp(o.variance.data(), expected.variance.data(), g.channels * sizeof(double)));
    EXPECT_TRUE(o.y == expected.y);
  }
}

TEST(TrainingNormalize, RejectsBadArgumentsBeforeWriting) {
  const Geometry g = Geometry::Dense(4, 3, 5);
  std::vector<float> x(g.elements(), 1.0f), y(g.elements(), 7.0f);
  std::vector<double> mean(3, 9.0), variance(3, 9.0);
  const auto call = [&](const float* in, float* out, double epsilon) {
    TrainingNormalize(in, out, DType::kFloat32, g, nullptr, nullptr, epsilon, mean.data(),
                      variance.data());
  };
  EXPECT_THROW(call(x.data(), y.data(), 0.0), Error);
  EXPECT_THROW(call(x.data(), y.data(), std::nan("")), Error);
  EXPECT_THROW(call(x.data(), nullptr, 1e-3), Error);
  EXPECT_THROW(call(x.data(), x.data() + 1, 1e-3), Error);  // partial overlap
  EXPECT_EQ(y, std::vector<float>(g.elements(), 7.0f));
  EXPECT_EQ(mean, std::vector<double>(3, 9.0));
  // gamma and beta null mean 1 and 0: each channel holds 0..4 four times (mean 2, variance 2).
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 5);
  call(x.data(), y.data(), 1e-3);
  EXPECT_NEAR(y[0], -2.0 / std::sqrt(2.0 + 1e-3), 1e-6);
}

TEST(ChannelResident, OnlyChannelsFirstTensorsBeyondTheCachesWithCachedChannels) {
  // 64 channels of 32x64x64 floats: 32 MiB in all, 512 KiB per channel.
  const Geometry big = Geometry::Dense(32, 64, 64 * 64);
  ASSERT_GT(big.Extent() * sizeof(float), StreamingThresholdBytes());
  EXPECT_TRUE(ChannelResident(DType::kFloat32, big));
  EXPECT_FALSE(ChannelResident(DType::kFloat32, Geometry::Dense(32 * 64 * 64, 64, 1)));
  EXPECT_FALSE(ChannelResident(DType::kFloat32, Geometry::Dense(2, 64, 49)));
  // One channel of 2^28 values cannot stay cached.
  EXPECT_FALSE(ChannelResident(DType::kFloat32, Geometry::Dense(1, 1, size_t{1} << 28)));
}

// The layer on a tensor that takes the resident path, against the float64
// Keras oracle, with renorm (per-channel r and d inside the fold) and an
// adjustment; bitwise the same for 1 thread and all.
TEST(ResidentTrainingLayer, MatchesTheKerasOracle) {
  if (!test::kHeavyTests)
    GTEST_SKIP() << "a tensor beyond the caches: heavy tests are off in this build";
  const std::vector<int64_t> shape = {16, 8, 256, 288};  // NCHW, 37.7 MB
  const Geometry g = Geometry::Dense(16, 8, 256 * 288);
  ASSERT_TRUE(ChannelResident(DType::kFloat32, g));
  const std::vector<float> x = test::Normal(g.elements(), 1e4, 1e-2, 11);
  for (bool renorm : {false, true}) {
    SCOPED_TRACE(renorm ? "renorm" : "plain");
    Options o;
    o.axis = {1};
    o.renorm = renorm;
    o.renorm_clipping.rmax = 1.5f;
    o.adjustment = [](const std::vector<int64_t>&, float* scale, float* bias) {
      for (int c = 0; c < 8; ++c) {
        scale[c] = 1.0f + 0.1f * static_cast<float>(c);
        bias[c] = -0.5f;
      }
    };
    BatchNorm serial(o), parallel(o);
    std::vector<float> y(g.elements()), y_p(g.elements());
    serial.Forward(x.data(), y.data(), shape, true, Execution::Serial());
    parallel.Forward(x.data(), y_p.data(), shape, true, Execution::Parallel());
    ASSERT_TRUE(y == y_p);
    EXPECT_EQ(serial.moving_mean(), parallel.moving_mean());
    EXPECT_EQ(serial.moving_variance(), parallel.moving_variance());

    keras_reference::State state = keras_reference::Initial(o, 8);
    std::vector<double> expected(g.elements());
    keras_reference::Forward(o, shape, x.data(), /*training=*/true, &state, expected.data());
    double worst = 0.0;
    for (size_t i = 0; i < expected.size(); ++i) {
      // Relative to 1 + |y|: renorm's d shifts y by up to 1e4 here.
      worst = std::max(worst, std::fabs(y[i] - expected[i]) / (1.0 + std::fabs(expected[i])));
    }
    EXPECT_LT(worst, 1e-5);
    for (size_t c = 0; c < 8; ++c) {
      EXPECT_NEAR(serial.moving_mean()[c], state.moving_mean[c], 1e-3) << c;
      EXPECT_NEAR(serial.moving_variance()[c], state.moving_variance[c], 1e-6) << c;
    }
  }
}

// Ghost batches take the resident path ghost by ghost (without renorm):
// ghost i of a batch split by virtual_batch_size is normalized with its own
// statistics, so its samples come out bitwise as a layer without ghost
// batches gives them for those samples alone; the moving statistics follow
// the Keras oracle; 1 thread and all give the same bits.
TEST(ResidentTrainingLayer, EachGhostBatchIsNormalizedAsItsOwnBatch) {
  if (!test::kHeavyTests)
    GTEST_SKIP() << "a tensor beyond the caches: heavy tests are off in this build";
  constexpr int64_t kBatch = 8, kChannels = 8, kH = 256, kW = 288, kVirtual = 2;
  constexpr size_t kGhosts = kBatch / kVirtual, kSample = kChannels * kH * kW;
  const std::vector<int64_t> shape = {kBatch, kChannels, kH, kW};  // NCHW, 18.9 MB
  const Geometry g = Geometry::Dense(kBatch, kChannels, kH * kW);
  // One ghost: samples i, i + 4 (GhostView's strided rows).
  Geometry view = g;
  view.outer = kVirtual;
  view.row_stride = kGhosts * kSample;
  view.group_rows = kVirtual;
  view.group_stride = kVirtual * view.row_stride;
  ASSERT_TRUE(ChannelResident(DType::kFloat32, g, view));
  const std::vector<float> x = test::Normal(g.elements(), 1e4, 1e-2, 12);
  Options o;
  o.axis = {1};
  o.virtual_batch_size = kVirtual;
  BatchNorm serial(o), parallel(o);
  std::vector<float> y(g.elements()), y_p(g.elements());
  serial.Forward(x.data(), y.data(), shape, true, Execution::Serial());
  parallel.Forward(x.data(), y_p.data(), shape, true, Execution::Parallel());
  ASSERT_TRUE(y == y_p);
  EXPECT_EQ(serial.moving_mean(), parallel.moving_mean());
  EXPECT_EQ(serial.moving_variance(), parallel.moving_variance());

  Options plain;
  plain.axis = {1};
  for (size_t i = 0; i < kGhosts; ++i) {
    SCOPED_TRACE("ghost " + std::to_string(i));
    std::vector<float> xi(kVirtual * kSample), yi(xi.size());
    for (size_t s = 0; s < kVirtual; ++s) {
      std::copy_n(x.begin() + (i + s * kGhosts) * kSample, kSample, xi.begin() + s * kSample);
    }
    BatchNorm alone(plain);
    alone.Forward(xi.data(), yi.data(), {kVirtual, kChannels, kH, kW}, true);
    for (size_t s = 0; s < kVirtual; ++s) {
      ASSERT_EQ(0, std::memcmp(yi.data() + s * kSample, y.data() + (i + s * kGhosts) * kSample,
                               kSample * sizeof(float)))
          << "sample " << i + s * kGhosts;
    }
  }
  keras_reference::State state = keras_reference::Initial(o, kChannels);
  std::vector<double> expected(g.elements());
  keras_reference::Forward(o, shape, x.data(), /*training=*/true, &state, expected.data());
  for (size_t c = 0; c < kChannels; ++c) {
    EXPECT_NEAR(serial.moving_mean()[c], state.moving_mean[c], 1e-3) << c;
    EXPECT_NEAR(serial.moving_variance()[c], state.moving_variance[c], 1e-6) << c;
  }
}

}  // namespace
}  // namespace bnorm
