// SPDX-License-Identifier: Apache-2.0
// Batch renormalization: r and d clipped, computed from the statistics before
// the update, renorm_stddev floored, TensorFlow's renorm cases and the float64
// reference.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "bnorm/batch_norm.hpp"
#include "tests/layer_test_util.h"
#include "tests/test_util.h"

namespace bnorm {
namespace test {
namespace {

TEST(Renorm, ClipsR) {
  Options o;
  o.renorm = true;
  o.renorm_clipping = RenormClipping::FromMap({{"rmax", 2.0f}, {"rmin", 0.5f}});
  BatchNorm wide(o);
  // {-10, 10}: variance 100, r = sqrt(100.001) / 1 clipped to 2; d = 0.
  std::vector<float> x = {-10, 10}, y(2);
  wide.Forward(x.data(), y.data(), {2, 1}, true);
  EXPECT_NEAR(y[1], 10 / std::sqrt(100.001) * 2, 1e-6);
  BatchNorm narrow(o);
  // {-0.01, 0.01}: stddev sqrt(1e-4 + 1e-3) ~ 0.033, r clipped to 0.5.
  x = {-0.01f, 0.01f};
  narrow.Forward(x.data(), y.data(), {2, 1}, true);
  EXPECT_NEAR(y[1], 0.01f / std::sqrt(0.01 * 0.01 + 1e-3) * 0.5, 1e-6);
}

TEST(Renorm, ClipsD) {
  Options o;
  o.renorm = true;
  o.renorm_clipping = RenormClipping::FromMap({{"dmax", 0.5f}});
  BatchNorm layer(o);
  // {4, 6}: mean 5, variance 1; d = 5 / 1 clipped to 0.5, r = sqrt(1.001).
  const std::vector<float> x = {4, 6};
  std::vector<float> y(2);
  layer.Forward(x.data(), y.data(), {2, 1}, true);
  const double r = std::sqrt(1.001);
  EXPECT_NEAR(y[0], -1 / r * r + 0.5, 1e-6);
  EXPECT_NEAR(y[1], 1 / r * r + 0.5, 1e-6);
  o.renorm_clipping = RenormClipping::FromMap({{"dmax", 0.0f}});
  BatchNorm zero(o);
  zero.Forward(x.data(), y.data(), {2, 1}, true);
  EXPECT_NEAR(y[1], 1.0, 1e-6);
}

TEST(Renorm, UsesPreUpdateStatistics) {
  Options o;
  o.renorm = true;
  o.renorm_momentum = 0.5f;
  o.momentum = 0.5f;
  BatchNorm layer(o);
  const std::vector<float> x = {4, 6};  // mean 5, variance 1
  const double stddev = std::sqrt(1.001);
  std::vector<float> y(2);
  layer.Forward(x.data(), y.data(), {2, 1}, true);
  // r and d from the initial renorm_mean 0 and renorm_stddev 1.
  EXPECT_NEAR(y[1], 1 / stddev * stddev + 5, 1e-5);
  EXPECT_NEAR(layer.renorm_mean()[0], 2.5, 1e-6);
  const double rs = 0.5 * 1 + 0.5 * stddev;
  EXPECT_NEAR(layer.renorm_stddev()[0], rs, 1e-6);
  EXPECT_NEAR(layer.moving_mean()[0], 2.5, 1e-6);
  EXPECT_NEAR(layer.moving_stddev()[0], rs, 1e-6);
  EXPECT_NEAR(layer.moving_variance()[0], rs * rs - 1e-3, 1e-6);
  layer.Forward(x.data(), y.data(), {2, 1}, true);
  // r and d from the statistics after the first call, not the second.
  EXPECT_NEAR(y[1], 1 / stddev * (stddev / rs) + (5 - 2.5) / rs, 1e-5);
}

TEST(Renorm, StddevIsFlooredAtSqrtEpsilon) {
  // Keras avoids dividing by a tiny renorm_stddev early in training.
  Options o;
  o.renorm = true;
  BatchNorm layer(o);
  layer.Build({2, 1});
  layer.set_renorm_stddev({0.0f});
  const std::vector<float> x = {4, 6};  // mean 5, variance 1
  std::vector<float> y(2);
  layer.Forward(x.data(), y.data(), {2, 1}, true);
  // r = sqrt(1.001) / sqrt(1e-3), d = 5 / sqrt(1e-3).
  EXPECT_NEAR(y[1], (1 + 5) / std::sqrt(1e-3), 1e-4);
  EXPECT_NEAR(y[0], (-1 + 5) / std::sqrt(1e-3), 1e-4);
}

TEST(Renorm, MatchesTensorFlowTestRenorm) {
  // TensorFlow's testRenorm: shape (4, 3), axis 1, five steps.
  const double momentum = 0.99, renorm_momentum = 0.8, gamma = 2, beta = 3, eps = 1e-3;
  Options o;
  o.axis = {1};
  o.momentum = static_cast<float>(momentum);
  o.renorm_momentum = static_cast<float>(renorm_momentum);
  o.gamma_initializer = Initializer::Constant(2.0f);
  o.beta_initializer = Initializer::Constant(3.0f);
  o.renorm = true;
  o.renorm_clipping = RenormClipping::FromMap({{"rmax", 1.1f}, {"rmin", 0.9f}, {"dmax", 0.1f}});
  BatchNorm layer(o);
  std::vector<double> moving_mean(3, 0.0), moving_stddev(3, 1.0), renorm_mean(3, 0.0),
      renorm_stddev(3, 1.0);
  for (uint32_t step = 0; step < 5; ++step) {
    const std::vector<float> x = Uniform(12, 0.0, 1.0, 200 + step);
    std::vector<double> train(12), test(12);
    for (size_t c = 0; c < 3; ++c) {
      double mean = 0, var = 0;
      for (size_t b = 0; b < 4; ++b) mean += x[b * 3 + c] / 4.0;
      for (size_t b = 0; b < 4; ++b) var += std::pow(x[b * 3 + c] - mean, 2) / 4.0;
      const double stddev = std::sqrt(var + eps);
      const double r = std::clamp(stddev / renorm_stddev[c], 0.9, 1.1);
      const double d = std::clamp((mean - renorm_mean[c]) / renorm_stddev[c], -0.1, 0.1);
      for (size_t b = 0; b < 4; ++b) {
        train[b * 3 + c] = ((x[b * 3 + c] - mean) / stddev * r + d) * gamma + beta;
      }
      renorm_mean[c] += (mean - renorm_mean[c]) * (1 - renorm_momentum);
      renorm_stddev[c] += (stddev - renorm_stddev[c]) * (1 - renorm_momentum);
      moving_mean[c] += (mean - moving_mean[c]) * (1 - momentum);
      moving_stddev[c] += (stddev - moving_stddev[c]) * (1 - momentum);
      for (size_t b = 0; b < 4; ++b) {
        test[b * 3 + c] = (x[b * 3 + c] - moving_mean[c]) / moving_stddev[c] * gamma + beta;
      }
    }
    std::vector<float> y(12);
    layer.Forward(x.data(), y.data(), {4, 3}, true);
    ExpectClose(y, train, 1e-5, "train");
    layer.Forward(x.data(), y.data(), {4, 3}, false);
    ExpectClose(y, test, 1e-5, "test");
  }
}

TEST(Renorm, NoClippingSameMomentumGivesSameTestTrain) {
  // TensorFlow's test of the same name: renorm_mean/stddev then track the
  // moving statistics, so after the first step training equals inference.
  Options o;
  o.axis = {1};
  o.momentum = 0.9f;
  o.renorm_momentum = 0.9f;
  o.gamma_initializer = Initializer::Constant(2.0f);
  o.beta_initializer = Initializer::Constant(3.0f);
  o.renorm = true;
  BatchNorm layer(o);
  for (uint32_t step = 0; step < 6; ++step) {
    const std::vector<float> x = Uniform(12, 0.0, 1.0, 300 + step);
    std::vector<float> test(12), train(12);
    layer.Forward(x.data(), test.data(), {4, 3}, false);
    layer.Forward(x.data(), train.data(), {4, 3}, true);
    ExpectClose(train, test, step == 0 ? 1.5e-3 : 1e-5);
  }
}

TEST(Renorm, MatchesReference) {
  Options o;
  o.renorm = true;
  o.momentum = 0.9f;
  o.renorm_momentum = 0.7f;
  o.renorm_clipping = RenormClipping::FromMap({{"rmax", 1.5f}, {"rmin", 0.7f}, {"dmax", 0.3f}});
  ExpectMatchesReference(o, {16, 4}, kSteps, 41, 0.5, 2.0);
  o.virtual_batch_size = 4;
  ExpectMatchesReference(o, {8, 5, 3}, kSteps, 42, -1.0, 0.5);
  o.virtual_batch_size.reset();
  o.axis = {1};
  ExpectMatchesReference(o, {4, 3, 6, 6}, kSteps, 43);
}

// RenormClipping::FromMap sets exactly the keys it is given (its rejected
// keys are in the bad-input matrix).
TEST(Renorm, ClippingFromMapSetsOnlyTheGivenKeys) {
  const RenormClipping clip = RenormClipping::FromMap({{"rmin", 0.5f}});
  EXPECT_EQ(clip.rmin, 0.5f);
  EXPECT_FALSE(clip.rmax.has_value());
  EXPECT_FALSE(clip.dmax.has_value());
}

}  // namespace
}  // namespace test
}  // namespace bnorm
