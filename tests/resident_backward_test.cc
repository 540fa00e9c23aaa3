// SPDX-License-Identifier: Apache-2.0
// The channel-resident training backward (src/ops/resident_backward.h) against
// the two passes it replaces: BackwardReduce, the same constants, BackwardData.
// Sums, constants and dx must be bitwise equal on every target, for any thread
// count, on channels split into several blocks, blocks of several small
// channels, 16-bit types, with a ReLU mask and in place; and the layer that
// takes it must match the float64 Keras oracle's gradients.
#include "src/ops/resident_backward.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "bnorm/backward.hpp"
#include "bnorm/batch_norm.hpp"
#include "bnorm/error.hpp"
#include "bnorm/kernels.hpp"
#include "src/ops/half.h"
#include "src/oracle/keras_reference.h"
#include "tests/target_test.h"
#include "tests/test_util.h"

namespace bnorm {
namespace {

// k = γρ, a = S1/n, b = ρ²·S2/n with a fixed ρ and γ per channel.
class TestConstants : public ChannelConstants {
 public:
  explicit TestConstants(const Geometry& g) : n_(static_cast<double>(g.reduced())) {}
  void operator()(size_t c, double s1, double s2, float* k, float* a, float* b) const override {
    const double rho = 0.5 + 0.01 * static_cast<double>(c % 7);
    *k = static_cast<float>((1.0 + 0.1 * static_cast<double>(c % 3)) * rho);
    *a = static_cast<float>(s1 / n_);
    *b = static_cast<float>(rho * rho * s2 / n_);
  }

 private:
  double n_;
};

struct Result {
  std::vector<double> s1, s2;
  std::vector<float> k, a, b;
  std::vector<uint8_t> dx;
  Result(size_t channels, size_t bytes)
      : s1(channels), s2(channels), k(channels), a(channels), b(channels), dx(bytes, 0xA5) {}
};

std::vector<uint8_t> Values(DType type, size_t n, double mean, double std, uint64_t seed) {
  const std::vector<float> v = test::Normal(n, mean, std, seed);
  std::vector<uint8_t> bytes(n * SizeOf(type));
  for (size_t i = 0; i < n; ++i) {
    if (type == DType::kFloat32) {
      std::memcpy(&bytes[i * 4], &v[i], 4);
    } else {
      const uint16_t bits = type == DType::kFloat16 ? FloatToHalf(v[i]) : FloatToBFloat16(v[i]);
      std::memcpy(&bytes[i * 2], &bits, 2);
    }
  }
  return bytes;
}

struct Problem {
  Geometry g;
  DType type;
  std::vector<uint8_t> x, dy;
  std::vector<float> hi, lo;
  Problem(const Geometry& geometry, DType t) : g(geometry), type(t) {
    x = Values(t, g.Extent(), 3.0, 2.0, g.Extent());
    dy = Values(t, g.Extent(), 0.1, 1.0, g.Extent() + 1);
    for (size_t c = 0; c < g.channels; ++c) {
      SplitMean(3.0 + 0.001 * static_cast<double>(c), &hi.emplace_back(), &lo.emplace_back());
    }
  }
  BackwardReduceParams params(Activation mask) const {
    BackwardReduceParams p;
    p.mean_hi = hi.data();
    p.mean_lo = lo.data();
    p.activation = mask;
    p.y = mask == Activation::kNone ? nullptr : x.data();  // x doubles as the forward's y
    return p;
  }
};

Result TwoPass(const Problem& p, Activation mask, const Execution& exec) {
  Result r(p.g.channels, p.x.size());
  BackwardReduce(p.x.data(), p.dy.data(), p.type, p.g, p.params(mask), r.s1.data(), r.s2.data(),
                 exec);
  const TestConstants constants(p.g);
  for (size_t c = 0; c < p.g.channels; ++c)
    constants(c, r.s1[c], r.s2[c], &r.k[c], &r.a[c], &r.b[c]);
  BackwardDataParams d;
  d.mean_hi = p.hi.data();
  d.mean_lo = p.lo.data();
  d.k = r.k.data();
  d.a = r.a.data();
  d.b = r.b.data();
  d.activation = mask;
  d.y = p.params(mask).y;
  BackwardData(p.x.data(), p.dy.data(), r.dx.data(), p.type, p.g, d, exec);
  return r;
}

Result Resident(const Problem& p, Activation mask, const Execution& exec) {
  Result r(p.g.channels, p.x.size());
  ResidentBackward(p.x.data(), p.dy.data(), r.dx.data(), p.type, p.g, p.params(mask),
                   TestConstants(p.g), r.s1.data(), r.s2.data(), r.k.data(), r.a.data(), r.b.data(),
                   exec);
  return r;
}

void ExpectSameBits(const Result& got, const Result& want) {
  EXPECT_EQ(0, std::memcmp(got.s1.data(), want.s1.data(), got.s1.size() * sizeof(double)));
  EXPECT_EQ(0, std::memcmp(got.s2.data(), want.s2.data(), got.s2.size() * sizeof(double)));
  EXPECT_EQ(got.k, want.k);
  EXPECT_EQ(got.a, want.a);
  EXPECT_EQ(got.b, want.b);
  EXPECT_TRUE(got.dx == want.dx);
}

class ResidentBackwardTest : public test::TargetTest {};

TEST_P(ResidentBackwardTest, BitwiseTheTwoPasses) {
  // One block per channel, runs longer than a block (several per channel),
  // short runs (several channels per block), many short runs; smaller where
  // heavy tests are off (emulators).
  const std::vector<Geometry> cases =
      test::kHeavyTests
          ? std::vector<Geometry>{Geometry::Dense(4, 6, 3136), Geometry::Dense(3, 4, 70001),
                                  Geometry::Dense(2, 300, 17), Geometry::Dense(100003, 2, 2)}
          : std::vector<Geometry>{Geometry::Dense(2, 3, 3136), Geometry::Dense(1, 2, 70001),
                                  Geometry::Dense(2, 40, 17), Geometry::Dense(1003, 2, 2)};
  for (const Geometry& g : cases) {
    for (DType type : {DType::kFloat32, DType::kFloat16, DType::kBFloat16}) {
      for (Activation mask : {Activation::kNone, Activation::kRelu}) {
        SCOPED_TRACE(test::Describe(g) + " " + Name(type) +
                     (mask == Activation::kNone ? "" : " relu"));
        const Problem p(g, type);
        const Result want = TwoPass(p, mask, Execution::Serial());
        ExpectSameBits(Resident(p, mask, Execution::Serial()), want);
        ExpectSameBits(Resident(p, mask, Execution::Parallel()), want);
      }
    }
  }
}

TEST_P(ResidentBackwardTest, InPlaceOnDy) {
  Problem p(Geometry::Dense(1, 2, 70001), DType::kFloat32);
  const Result want = TwoPass(p, Activation::kNone, Execution::Parallel());
  Result r(p.g.channels, p.x.size());
  ResidentBackward(p.x.data(), p.dy.data(), p.dy.data(), p.type, p.g, p.params(Activation::kNone),
                   TestConstants(p.g), r.s1.data(), r.s2.data(), r.k.data(), r.a.data(), r.b.data(),
                   Execution::Parallel());
  r.dx = p.dy;
  ExpectSameBits(r, want);
}

BNORM_INSTANTIATE_TARGET_TEST_SUITE_P(ResidentBackwardTest);

// The engine call on a tensor that takes the resident path and on ones that do
// not: bitwise BackwardReduce, the constants and BackwardData.
TEST(TrainingBackward, BitwiseTheTwoPassesWithPlainConstants) {
  if (!test::kHeavyTests) GTEST_SKIP() << "a tensor beyond the caches: heavy tests are off";
  for (const Geometry& g : {Geometry::Dense(16, 16, 128 * 144), Geometry::Dense(4, 6, 3136),
                            Geometry::Dense(64, 32, 1)}) {
    SCOPED_TRACE(test::Describe(g));
    const Problem p(g, DType::kFloat32);
    std::vector<double> variance(g.channels);
    std::vector<float> gamma(g.channels);
    for (size_t c = 0; c < g.channels; ++c) {
      variance[c] = 4.0 + 0.01 * static_cast<double>(c);
      gamma[c] = 0.5f + 0.1f * static_cast<float>(c % 5);
    }
    // The two passes with TrainingBackward's constants.
    Result want(g.channels, p.x.size());
    BackwardReduce(p.x.data(), p.dy.data(), p.type, g, p.params(Activation::kNone), want.s1.data(),
                   want.s2.data());
    const double n = static_cast<double>(g.reduced());
    for (size_t c = 0; c < g.channels; ++c) {
      const double rho = 1.0 / std::sqrt(variance[c] + 1e-3);
      want.k[c] = static_cast<float>(gamma[c] * rho);
      want.a[c] = static_cast<float>(want.s1[c] / n);
      want.b[c] = static_cast<float>(rho * rho * want.s2[c] / n);
    }
    BackwardDataParams d;
    d.mean_hi = p.hi.data();
    d.mean_lo = p.lo.data();
    d.k = want.k.data();
    d.a = want.a.data();
    d.b = want.b.data();
    BackwardData(p.x.data(), p.dy.data(), want.dx.data(), p.type, g, d);
    Result got(g.channels, p.x.size());
    TrainingBackward(p.x.data(), p.dy.data(), got.dx.data(), p.type, g, p.hi.data(), p.lo.data(),
                     variance.data(), gamma.data(), 1e-3, got.s1.data(), got.s2.data());
    EXPECT_EQ(0, std::memcmp(got.s1.data(), want.s1.data(), g.channels * sizeof(double)));
    EXPECT_EQ(0, std::memcmp(got.s2.data(), want.s2.data(), g.channels * sizeof(double)));
    EXPECT_TRUE(got.dx == want.dx);
  }
  EXPECT_TRUE(ChannelResidentBackward(DType::kFloat32, Geometry::Dense(16, 16, 128 * 144)));
}

TEST(TrainingBackward, RejectsBadArgumentsBeforeWriting) {
  const Geometry g = Geometry::Dense(4, 3, 5);
  const Problem p(g, DType::kFloat32);
  std::vector<uint8_t> dx(p.x.size(), 0x5A);
  std::vector<double> variance(3, 1.0), s1(3, 9.0), s2(3, 9.0);
  const auto call = [&](const void* out, double epsilon, double v0) {
    variance[0] = v0;
    TrainingBackward(p.x.data(), p.dy.data(), const_cast<void*>(out), p.type, g, p.hi.data(),
                     p.lo.data(), variance.data(), nullptr, epsilon, s1.data(), s2.data());
  };
  EXPECT_THROW(call(dx.data(), 0.0, 1.0), Error);
  EXPECT_THROW(call(dx.data(), 1e-3, -1.0), Error);
  EXPECT_THROW(call(dx.data(), 1e-3, std::nan("")), Error);
  EXPECT_THROW(call(nullptr, 1e-3, 1.0), Error);
  EXPECT_THROW(call(p.dy.data() + 4, 1e-3, 1.0), Error);  // dx partly over dy
  EXPECT_EQ(dx, std::vector<uint8_t>(p.x.size(), 0x5A));
  EXPECT_EQ(s1, std::vector<double>(3, 9.0));
}

TEST(ChannelResidentBackward, OnlyChannelsFirstWorkingSetsBeyondTheCaches) {
  EXPECT_TRUE(ChannelResidentBackward(DType::kFloat32, Geometry::Dense(32, 16, 128 * 144)));
  EXPECT_FALSE(ChannelResidentBackward(DType::kFloat32, Geometry::Dense(32 * 128 * 144, 16, 1)));
  EXPECT_FALSE(ChannelResidentBackward(DType::kFloat32, Geometry::Dense(2, 16, 49)));
  EXPECT_FALSE(ChannelResidentBackward(DType::kFloat32, Geometry::Dense(1, 1, size_t{1} << 28)));
}

// The layer's Backward on a tensor that takes the resident path, against the
// float64 Keras oracle, after a training forward (with renorm and an
// adjustment) and after an inference one; bitwise the same for 1 thread and all.
TEST(ResidentBackwardLayer, MatchesTheKerasOracle) {
  if (!test::kHeavyTests)
    GTEST_SKIP() << "a tensor beyond the caches: heavy tests are off in this build";
  const std::vector<int64_t> shape = {32, 16, 128, 144};  // NCHW, 37.7 MB per tensor
  const Geometry g = Geometry::Dense(32, 16, 128 * 144);
  ASSERT_TRUE(ChannelResidentBackward(DType::kFloat32, g));
  const std::vector<float> x = test::Normal(g.elements(), 5.0, 2.0, 21);
  const std::vector<float> dy = test::Normal(g.elements(), 0.1, 1.0, 22);
  Options o;
  o.axis = {1};
  o.renorm = true;
  o.renorm_clipping.rmax = 1.5f;
  o.adjustment = [](const std::vector<int64_t>&, float* scale, float* bias) {
    for (int c = 0; c < 16; ++c) {
      scale[c] = 1.0f + 0.05f * static_cast<float>(c);
      bias[c] = 0.25f;
    }
  };
  for (bool training : {true, false}) {
    SCOPED_TRACE(training ? "training" : "inference");
    BatchNorm serial(o), parallel(o);
    const keras_reference::State state = keras_reference::Initial(o, 16);
    std::vector<float> y(g.elements()), dx(g.elements()), dx_p(g.elements());
    serial.Forward(x.data(), y.data(), shape, training, Execution::Serial());
    parallel.Forward(x.data(), y.data(), shape, training, Execution::Parallel());
    serial.Backward(x.data(), dy.data(), dx.data(), shape, Execution::Serial());
    parallel.Backward(x.data(), dy.data(), dx_p.data(), shape, Execution::Parallel());
    ASSERT_TRUE(dx == dx_p);
    EXPECT_EQ(serial.gradient_gamma(), parallel.gradient_gamma());

    const std::vector<double> dy64(dy.begin(), dy.end());
    const keras_reference::Gradients want =
        keras_reference::Backward(o, shape, x.data(), dy64.data(), training, state);
    double scale = 0.0, worst = 0.0;
    for (double v : want.dx) scale = std::max(scale, std::fabs(v));
    for (size_t i = 0; i < dx.size(); ++i) worst = std::max(worst, std::fabs(dx[i] - want.dx[i]));
    EXPECT_LT(worst, 1e-5 * scale);
    for (size_t c = 0; c < 16; ++c) {
      EXPECT_NEAR(serial.gradient_gamma()[c], want.dgamma[c],
                  1e-6 * std::fabs(want.dgamma[c]) + 1e-3)
          << c;
      EXPECT_NEAR(serial.gradient_beta()[c], want.dbeta[c], 1e-6 * std::fabs(want.dbeta[c]) + 1e-3)
          << c;
    }
  }
}

}  // namespace
}  // namespace bnorm
