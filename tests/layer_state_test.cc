// SPDX-License-Identifier: Apache-2.0
// The layer's variables: their initial values from the initializers, and the
// constraints that the setters apply.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "bnorm/batch_norm.hpp"
#include "tests/layer_test_util.h"
#include "tests/test_util.h"

namespace bnorm {
namespace test {
namespace {

TEST(LayerState, InitialStateComesFromTheInitializers) {
  Options o;
  o.gamma_initializer = Initializer::Constant(2.0f);
  o.beta_initializer = Initializer::Constant(-1.0f);
  o.moving_mean_initializer = Initializer::Constant(0.5f);
  o.moving_variance_initializer = Initializer::Constant(4.0f);
  o.renorm = true;
  BatchNorm layer(o);
  EXPECT_FALSE(layer.built());
  layer.Build({2, 3});
  EXPECT_TRUE(layer.built());
  EXPECT_EQ(layer.parameter_shape(), Shape{3});
  EXPECT_EQ(layer.gamma(), std::vector<float>(3, 2.0f));
  EXPECT_EQ(layer.beta(), std::vector<float>(3, -1.0f));
  EXPECT_EQ(layer.moving_mean(), std::vector<float>(3, 0.5f));
  EXPECT_EQ(layer.moving_variance(), std::vector<float>(3, 4.0f));
  EXPECT_EQ(layer.moving_stddev(), std::vector<float>(3, 2.0f));  // sqrt(4)
  EXPECT_EQ(layer.renorm_mean(), std::vector<float>(3, 0.5f));
  EXPECT_EQ(layer.renorm_stddev(), std::vector<float>(3, 2.0f));
}

TEST(LayerState, ConstraintsApplyInSetters) {
  Options o;
  o.gamma_initializer = Initializer::Constant(5.0f);
  o.gamma_constraint = [](float* v, size_t n) {
    for (size_t i = 0; i < n; ++i) v[i] = std::clamp(v[i], 0.0f, 1.0f);
  };
  o.beta_constraint = [](float* v, size_t n) {
    for (size_t i = 0; i < n; ++i) v[i] = std::abs(v[i]);
  };
  BatchNorm layer(o);
  layer.Build({1, 2});
  EXPECT_EQ(layer.gamma(), std::vector<float>(2, 5.0f));  // Keras: not at build
  layer.set_gamma({2.0f, -1.0f});
  EXPECT_EQ(layer.gamma(), (std::vector<float>{1.0f, 0.0f}));
  layer.set_beta({-3.0f, 4.0f});
  EXPECT_EQ(layer.beta(), (std::vector<float>{3.0f, 4.0f}));
  // The new values take effect at once.
  const std::vector<float> x = {0.0f, 0.0f};
  std::vector<float> y(2);
  layer.Forward(x.data(), y.data(), {1, 2}, false);
  EXPECT_EQ(y, (std::vector<float>{3.0f, 4.0f}));
}

}  // namespace
}  // namespace test
}  // namespace bnorm
