// SPDX-License-Identifier: Apache-2.0
// BatchNorm::Backward in every mode of docs/semantics.md, "Backward (gradients)",
// against the float64 Keras oracle (keras_reference::Backward with the state
// before the forward): plain and fused, ghost batches, renorm, adjustment,
// inference and trainable=false, center/scale off, empty batches, feature
// axes apart, both layouts, odd sizes, |mean| 1e4 with std 1e-2 and 16-bit data.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "bnorm/batch_norm.hpp"
#include "src/ops/half.h"
#include "tests/layer_backward_util.h"
#include "tests/layer_test_util.h"

namespace bnorm {
namespace test {
namespace {

Options Axis(std::vector<int> axis) {
  Options o;
  o.axis = std::move(axis);
  return o;
}

TEST(LayerBackward, TrainingChannelsLast) {
  ExpectBackwardMatchesReference(Axis({-1}), {7, 13}, true, {1});
  ExpectBackwardMatchesReference(Axis({-1}), {3, 5, 4, 6}, true, {2});
}

TEST(LayerBackward, TrainingChannelsFirst) {
  Options o = Axis({1});
  o.fused = Fused::kFalse;
  ExpectBackwardMatchesReference(o, {3, 5, 4, 6}, true, {3});
  ExpectBackwardMatchesReference(o, {4, 3, 7}, true, {4});
}

TEST(LayerBackward, OddSizes) {
  ExpectBackwardMatchesReference(Axis({-1}), {37, 19}, true, {5});
  ExpectBackwardMatchesReference(Axis({1}), {5, 17, 9}, true, {6});
  ExpectBackwardMatchesReference(Axis({-1}), {1, 1}, true, {7});
}

TEST(LayerBackward, LargeMeanTinyStd) {
  const BackwardData data{8, 1e4, 1e-2};
  ExpectBackwardMatchesReference(Axis({-1}), {33, 11}, true, data);
  ExpectBackwardMatchesReference(Axis({1}), {6, 5, 21}, true, data);
  Options small_epsilon = Axis({-1});
  small_epsilon.epsilon = 1e-7f;  // rho follows the batch's own 1e-2
  ExpectBackwardMatchesReference(small_epsilon, {33, 11}, true, data);
}

TEST(LayerBackward, FusedFloorsEpsilon) {
  for (int axis : {1, -1}) {
    Options o = Axis({axis});
    o.fused = Fused::kTrue;
    o.epsilon = 1e-6f;  // below the fused floor
    ExpectBackwardMatchesReference(o, {3, 4, 5, 6}, true, {9, 0.0, 1e-3});
    ExpectBackwardMatchesReference(o, {3, 4, 5, 6}, false, {10, 0.0, 1e-3});
  }
}

TEST(LayerBackward, GhostBatchesAreStrided) {
  Options o = Axis({-1});
  o.virtual_batch_size = 2;
  ExpectBackwardMatchesReference(o, {6, 5, 3}, true, {11});  // rows per sample
  ExpectBackwardMatchesReference(o, {8, 7}, true, {12});     // one row per sample
  o.virtual_batch_size = 3;
  o.axis = {1};
  ExpectBackwardMatchesReference(o, {6, 3, 5}, true, {13});  // channels-first
  ExpectBackwardMatchesReference(o, {6, 3, 2, 4}, true, {14, 1e4, 1e-2});
}

TEST(LayerBackward, RenormKeepsRAndDConstant) {
  Options o = Axis({-1});
  o.renorm = true;
  o.renorm_momentum = 0.5f;
  ExpectBackwardMatchesReference(o, {9, 6}, true, {15, 0.3, 2.0, 2});
  o.renorm_clipping = RenormClipping{1.5f, 0.7f, 0.2f};
  ExpectBackwardMatchesReference(o, {9, 6}, true, {16, 0.3, 2.0, 2});
  o.axis = {1};
  o.virtual_batch_size = 3;
  ExpectBackwardMatchesReference(o, {6, 4, 5}, true, {17, 0.3, 2.0, 2});
}

TEST(LayerBackward, AdjustmentGradients) {
  Options o = Axis({-1});
  o.adjustment = [](const Shape&, float* scale, float* bias) {
    for (size_t c = 0; c < 5; ++c) {
      scale[c] = 0.5f + 0.25f * static_cast<float>(c);
      bias[c] = 0.1f * static_cast<float>(c) - 0.2f;
    }
  };
  o.gamma_initializer = Initializer::Constant(1.5f);
  ExpectBackwardMatchesReference(o, {11, 5}, true, {18});
  o.renorm = true;
  o.renorm_clipping = RenormClipping{2.0f, 0.5f, 0.5f};
  ExpectBackwardMatchesReference(o, {11, 5}, true, {19, 0.5, 1.5, 2});
  // Inference applies no adjustment: its gradients are not defined.
  BatchNorm layer(o);
  const std::vector<float> x = Normal(55, 0.0, 1.0, 20);
  std::vector<float> y(55), dx(55);
  layer.Forward(x.data(), y.data(), {11, 5}, false);
  layer.Backward(x.data(), x.data(), dx.data(), {11, 5});
  EXPECT_TRUE(layer.gradient_adjustment_scale().empty());
  EXPECT_TRUE(layer.gradient_adjustment_bias().empty());
  EXPECT_EQ(layer.gradient_gamma().size(), 5u);
}

TEST(LayerBackward, InferenceIsAffine) {
  for (std::optional<bool> training : {std::optional<bool>(false), std::optional<bool>()}) {
    ExpectBackwardMatchesReference(Axis({-1}), {9, 7}, training, {21, 1.0, 2.0, 2});
    ExpectBackwardMatchesReference(Axis({1}), {3, 4, 10}, training, {22, 1e4, 1e-2, 2});
  }
  Options renorm = Axis({-1});
  renorm.renorm = true;
  ExpectBackwardMatchesReference(renorm, {9, 7}, false, {23, 1.0, 2.0, 2});
}

// The inference coefficients and what an inference Backward keeps are
// recomputed only when a variable changed: after a training call or new
// weights, a layer gives bitwise what a fresh layer with those weights gives.
TEST(LayerBackward, InferenceFollowsEveryChangeOfTheVariables) {
  const std::vector<int64_t> shape{6, 5};
  const std::vector<float> x = Uniform(30, -3.0, 2.0, 31), dy = Uniform(30, -1.0, 1.0, 32);
  const auto infer = [&](BatchNorm* layer, std::vector<float>* y, std::vector<float>* dx) {
    layer->Forward(x.data(), y->data(), shape, false);
    layer->Backward(x.data(), dy.data(), dx->data(), shape);
  };
  BatchNorm layer(Axis({-1}));
  std::vector<float> y(30), dx(30), fresh_y(30), fresh_dx(30);
  infer(&layer, &y, &dx);
  for (int step = 0; step < 3; ++step) {
    if (step == 0) layer.Forward(x.data(), y.data(), shape, true);  // moves the moving statistics
    if (step == 1) layer.set_gamma(Uniform(5, 0.5, 2.0, 33));
    if (step == 2) layer.set_moving_variance(Uniform(5, 0.5, 2.0, 34));
    infer(&layer, &y, &dx);
    BatchNorm fresh(Axis({-1}));
    fresh.Build(shape);
    fresh.set_gamma(layer.gamma());
    fresh.set_moving_mean(layer.moving_mean());
    fresh.set_moving_variance(layer.moving_variance());
    infer(&fresh, &fresh_y, &fresh_dx);
    EXPECT_EQ(y, fresh_y) << "step " << step;
    EXPECT_EQ(dx, fresh_dx) << "step " << step;
    EXPECT_EQ(layer.gradient_gamma(), fresh.gradient_gamma()) << "step " << step;
  }
}

TEST(LayerBackward, TrainableFalseGivesTheInferenceGradient) {
  Options o = Axis({-1});
  o.trainable = false;
  o.moving_mean_initializer = Initializer::Constant(0.5f);
  o.moving_variance_initializer = Initializer::Constant(2.0f);
  o.gamma_initializer = Initializer::Constant(0.75f);
  ExpectBackwardMatchesReference(o, {9, 7}, true, {24, 0.0, 1.0, 0});
}

TEST(LayerBackward, CenterAndScaleOff) {
  for (bool center : {false, true}) {
    for (bool scale : {false, true}) {
      Options o = Axis({-1});
      o.center = center;
      o.scale = scale;
      ExpectBackwardMatchesReference(o, {8, 3}, true, {25});
      ExpectBackwardMatchesReference(o, {8, 3}, false, {26});
      BatchNorm layer(o);
      const std::vector<float> x = Normal(24, 0.0, 1.0, 27);
      std::vector<float> y(24), dx(24);
      layer.Forward(x.data(), y.data(), {8, 3}, true);
      layer.Backward(x.data(), x.data(), dx.data(), {8, 3});
      EXPECT_EQ(layer.gradient_gamma().size(), scale ? 3u : 0u);
      EXPECT_EQ(layer.gradient_beta().size(), center ? 3u : 0u);
    }
  }
}

TEST(LayerBackward, EmptyBatchHasZeroGradients) {
  Options o = Axis({-1});
  o.adjustment = [](const Shape&, float* scale, float* bias) {
    for (size_t c = 0; c < 4; ++c) scale[c] = 2.0f, bias[c] = 1.0f;
  };
  BatchNorm layer(o);
  const std::vector<float> x = Normal(12, 0.0, 1.0, 28);
  std::vector<float> y(12), dx(12);
  layer.Forward(x.data(), y.data(), {3, 4}, true);
  layer.Backward(x.data(), x.data(), dx.data(), {3, 4});
  layer.Forward(nullptr, nullptr, {0, 4}, true);
  layer.Backward(nullptr, nullptr, nullptr, {0, 4});
  const std::vector<float> zeros(4, 0.0f);
  EXPECT_EQ(layer.gradient_gamma(), zeros);
  EXPECT_EQ(layer.gradient_beta(), zeros);
  EXPECT_EQ(layer.gradient_adjustment_scale(), zeros);
  EXPECT_EQ(layer.gradient_adjustment_bias(), zeros);
}

TEST(LayerBackward, FeatureAxesApartAreTransposed) {
  ExpectBackwardMatchesReference(Axis({1, 3}), {3, 4, 5, 2}, true, {29});
  ExpectBackwardMatchesReference(Axis({0, 2}), {3, 4, 5}, true, {30});
  ExpectBackwardMatchesReference(Axis({1, 3}), {3, 4, 5, 2}, false, {31, 1e4, 1e-2});
  Options ghosts = Axis({1, 3});
  ghosts.virtual_batch_size = 2;
  ExpectBackwardMatchesReference(ghosts, {4, 3, 5, 2}, true, {32});
}

TEST(LayerBackward, SeveralAdjacentFeatureAxes) {
  ExpectBackwardMatchesReference(Axis({1, 2}), {3, 4, 5, 6}, true, {33});
}

// In-place training: the forward overwrites x with y, and the gradients come
// from y through the forward's own coefficients.
TEST(LayerBackward, InPlaceTrainingRecoversXFromY) {
  const auto from_y = [](uint32_t seed, double mean = 0.0, double stddev = 1.0) {
    return BackwardData{seed, mean, stddev, 1, true};
  };
  ExpectBackwardMatchesReference(Axis({-1}), {9, 7}, true, from_y(40));
  ExpectBackwardMatchesReference(Axis({1}), {3, 5, 11}, true, from_y(41, 1e4, 1e-2));
  ExpectBackwardMatchesReference(Axis({1, 3}), {3, 4, 5, 2}, true, from_y(42));
  ExpectBackwardMatchesReference(Axis({-1}), {9, 7}, false, from_y(43));
  Options o = Axis({-1});
  o.virtual_batch_size = 3;
  o.beta_initializer = Initializer::Constant(0.5f);
  o.gamma_initializer = Initializer::Constant(-1.5f);
  ExpectBackwardMatchesReference(o, {9, 4, 3}, true, from_y(44));
  Options renorm = Axis({-1});
  renorm.renorm = true;
  renorm.renorm_clipping = RenormClipping{1.5f, 0.7f, 0.2f};
  ExpectBackwardMatchesReference(renorm, {9, 6}, true, from_y(45, 0.3, 2.0));
}

// 16-bit data: the same gradients of the widened x and dy, with dx rounded to
// the dtype (within 2^-8 of the scale for bfloat16, 2^-11 for float16).
TEST(LayerBackward, SixteenBitData) {
  for (DType dtype : {DType::kFloat16, DType::kBFloat16}) {
    for (const std::vector<int>& axis : {std::vector<int>{-1}, {1}, {1, 3}}) {
      const Shape shape{4, 3, 5, 6};
      const size_t n = Count(shape);
      const std::vector<float> x0 = Normal(n, 1.0, 2.0, 34), dy0 = Normal(n, 0.0, 1.0, 35);
      std::vector<uint16_t> x16(n), dy16(n), y16(n), dx16(n);
      NarrowFromFloat(x0.data(), dtype, n, x16.data());
      NarrowFromFloat(dy0.data(), dtype, n, dy16.data());
      std::vector<float> x(n), dy(n), y(n), dx(n), dx_wide(n);
      WidenToFloat(x16.data(), dtype, n, x.data());
      WidenToFloat(dy16.data(), dtype, n, dy.data());
      BatchNorm narrow(Axis(axis)), wide(Axis(axis));
      narrow.Forward(x16.data(), y16.data(), dtype, shape, true);
      narrow.Backward(x16.data(), dy16.data(), dx16.data(), dtype, shape);
      wide.Forward(x.data(), y.data(), shape, true);
      wide.Backward(x.data(), dy.data(), dx.data(), shape);
      WidenToFloat(dx16.data(), dtype, n, dx_wide.data());
      double scale = 0.0;
      for (float v : dx) scale = std::max(scale, static_cast<double>(std::abs(v)));
      const double tol = dtype == DType::kFloat16 ? 0x1p-11 : 0x1p-8;
      for (size_t i = 0; i < n; ++i) ASSERT_NEAR(dx_wide[i], dx[i], tol * scale) << i;
      ExpectClose(narrow.gradient_gamma(), wide.gradient_gamma(), 1e-6, "dgamma");
      ExpectClose(narrow.gradient_beta(), wide.gradient_beta(), 1e-6, "dbeta");
    }
  }
}

}  // namespace
}  // namespace test
}  // namespace bnorm
