// SPDX-License-Identifier: Apache-2.0
// The adjustment callback: it scales and shifts the normalized values in
// training only, and composes with the renorm correction.
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

TEST(Adjustment, AppliesInTrainingOnly) {
  // TensorFlow's testAdjustment: shape (4, 3), axis 1, five steps.
  const std::vector<float> adj_scale = Uniform(3, 0.5, 1.5, 7), adj_bias = Uniform(3, -0.2, 0.2, 8);
  int calls = 0;
  Options o;
  o.axis = {1};
  o.gamma_initializer = Initializer::Constant(2.0f);
  o.beta_initializer = Initializer::Constant(3.0f);
  o.adjustment = [&](const Shape& shape, float* scale, float* bias) {
    EXPECT_EQ(shape, (Shape{4, 3}));
    ++calls;
    std::copy(adj_scale.begin(), adj_scale.end(), scale);
    std::copy(adj_bias.begin(), adj_bias.end(), bias);
  };
  BatchNorm layer(o);
  std::vector<double> moving_mean(3, 0.0), moving_var(3, 1.0);
  for (uint32_t step = 0; step < 5; ++step) {
    const std::vector<float> x = Uniform(12, 0.0, 1.0, 400 + step);
    std::vector<double> train(12), test(12);
    for (size_t c = 0; c < 3; ++c) {
      double mean = 0, var = 0;
      for (size_t b = 0; b < 4; ++b) mean += x[b * 3 + c] / 4.0;
      for (size_t b = 0; b < 4; ++b) var += std::pow(x[b * 3 + c] - mean, 2) / 4.0;
      for (size_t b = 0; b < 4; ++b) {
        const double normalized = (x[b * 3 + c] - mean) / std::sqrt(var + 1e-3);
        train[b * 3 + c] = (normalized * adj_scale[c] + adj_bias[c]) * 2 + 3;
      }
      moving_mean[c] += (mean - moving_mean[c]) * (1 - 0.99);
      moving_var[c] += (var - moving_var[c]) * (1 - 0.99);
      for (size_t b = 0; b < 4; ++b) {
        test[b * 3 + c] = (x[b * 3 + c] - moving_mean[c]) / std::sqrt(moving_var[c] + 1e-3) * 2 + 3;
      }
    }
    std::vector<float> y(12);
    layer.Forward(x.data(), y.data(), {4, 3}, true);
    ExpectClose(y, train, 1e-5, "train");
    layer.Forward(x.data(), y.data(), {4, 3}, false);
    ExpectClose(y, test, 1e-5, "test");
  }
  EXPECT_EQ(calls, 5);
}

TEST(Adjustment, ComposesWithTheRenormCorrection) {
  // TensorFlow's testRenormWithAdjustment, against the reference: the renorm
  // correction composes inside the adjustment.
  Options o;
  o.axis = {1};
  o.momentum = 0.99f;
  o.renorm_momentum = 0.8f;
  o.gamma_initializer = Initializer::Constant(2.0f);
  o.beta_initializer = Initializer::Constant(3.0f);
  o.renorm = true;
  o.renorm_clipping = RenormClipping::FromMap({{"rmax", 1.1f}, {"rmin", 0.9f}, {"dmax", 0.1f}});
  o.adjustment = [](const Shape&, float* scale, float* bias) {
    for (int c = 0; c < 3; ++c) {
      scale[c] = 0.6f + 0.3f * static_cast<float>(c);
      bias[c] = -0.2f + 0.15f * static_cast<float>(c);
    }
  };
  ExpectMatchesReference(o, {4, 3}, kSteps, 51, 0.5, 0.3);
  // Hand-checked first step: y = ((x^ * r + d) * a + b) * gamma + beta.
  BatchNorm layer(o);
  const std::vector<float> x = {0, 1, 2, 4, 3, 4, 0, 7, 6, 4, 1, 3};
  std::vector<float> y(12);
  layer.Forward(x.data(), y.data(), {4, 3}, true);
  // Channel 0 = {0, 4, 0, 4}: mean 2, variance 4; r = 2.00025 -> 1.1, d = 2 -> 0.1.
  const double normalized = (0 - 2) / std::sqrt(4.001);
  EXPECT_NEAR(y[0], ((normalized * 1.1 + 0.1) * 0.6f + -0.2f) * 2 + 3, 1e-5);
}

}  // namespace
}  // namespace test
}  // namespace bnorm
