// SPDX-License-Identifier: Apache-2.0
// Inference mode of the layer: the moving statistics normalize, and an unset
// `training` or trainable=false mean inference (no state update).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "bnorm/batch_norm.hpp"
#include "tests/layer_test_util.h"
#include "tests/test_util.h"

namespace bnorm {
namespace test {
namespace {

TEST(LayerInference, InferenceUsesMovingStatistics) {
  BatchNorm layer(Options{});
  layer.Build({1, 1});
  layer.set_moving_mean({2.0f});
  layer.set_moving_variance({4.0f});
  layer.set_gamma({3.0f});
  layer.set_beta({1.0f});
  const float x = 5.0f;
  float y = 0.0f;
  layer.Forward(&x, &y, {1, 1}, false);
  EXPECT_NEAR(y, (5.0 - 2.0) / std::sqrt(4.0 + 1e-3) * 3.0 + 1.0, 1e-6);
  EXPECT_EQ(layer.moving_mean()[0], 2.0f);
  EXPECT_EQ(layer.moving_variance()[0], 4.0f);
}

TEST(LayerInference, TrainingUnsetMeansInference) {
  BatchNorm layer(Options{});
  const std::vector<float> x = {1, 2, 3, 4};
  std::vector<float> y(4);
  layer.Forward(x.data(), y.data(), {4, 1});
  // (x - 0) / sqrt(1 + eps): the initial moving statistics, left unchanged.
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(y[i], x[i] / std::sqrt(1.001), 1e-6);
  EXPECT_EQ(layer.moving_mean()[0], 0.0f);
  EXPECT_EQ(layer.moving_variance()[0], 1.0f);
}

TEST(LayerInference, TrainableFalseMeansInference) {
  Options o;
  o.trainable = false;
  BatchNorm frozen(o);
  const std::vector<float> x = {1, 2, 3, 4};
  std::vector<float> y(4);
  frozen.Forward(x.data(), y.data(), {4, 1}, true);
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(y[i], x[i] / std::sqrt(1.001), 1e-6);
  EXPECT_EQ(frozen.moving_mean()[0], 0.0f);
  EXPECT_EQ(frozen.moving_variance()[0], 1.0f);

  // Freezing after training (tf-keras test_that_trainable_disables_updates).
  BatchNorm layer(Options{});
  layer.Forward(x.data(), y.data(), {4, 1}, true);
  layer.set_trainable(false);
  const float mean = layer.moving_mean()[0];
  std::vector<float> inference(4), frozen_training(4);
  layer.Forward(x.data(), inference.data(), {4, 1}, false);
  layer.Forward(x.data(), frozen_training.data(), {4, 1}, true);
  EXPECT_EQ(inference, frozen_training);
  EXPECT_EQ(layer.moving_mean()[0], mean);
}

}  // namespace
}  // namespace test
}  // namespace bnorm
