// SPDX-License-Identifier: Apache-2.0
// Keras' fused convention: when the fused kernel is chosen, Bessel's
// correction of the moving variance, the epsilon floor, and agreement with the
// non-fused path.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "bnorm/batch_norm.hpp"
#include "tests/layer_test_util.h"
#include "tests/test_util.h"

namespace bnorm {
namespace test {
namespace {

TEST(FusedConvention, AutoSelectsFusedForRank4And5WithAxis1OrLast) {
  // tf-keras test_v2_fused_attribute, plus the axis rule.
  const auto fused = [](Options o, const Shape& shape) {
    BatchNorm layer(o);
    layer.Build(shape);
    return layer.fused();
  };
  Options o;
  EXPECT_TRUE(fused(o, {2, 4, 4, 4}));
  EXPECT_FALSE(fused(o, {2, 4, 4}));
  EXPECT_TRUE(fused(o, {2, 4, 4, 4, 4}));
  Options ghost;
  ghost.virtual_batch_size = 2;
  EXPECT_FALSE(fused(ghost, {2, 4, 4, 4}));
  Options off;
  off.fused = Fused::kFalse;
  EXPECT_FALSE(fused(off, {2, 4, 4, 4}));
  Options on;
  on.fused = Fused::kTrue;
  on.axis = {3};
  EXPECT_TRUE(fused(on, {2, 4, 4, 4}));
  Options axis = o;
  axis.axis = {1};
  EXPECT_TRUE(fused(axis, {2, 4, 4, 4}));
  axis.axis = {-3};
  EXPECT_TRUE(fused(axis, {2, 4, 4, 4}));
  axis.axis = {2};
  EXPECT_FALSE(fused(axis, {2, 4, 4, 4}));
  EXPECT_FALSE(fused(axis, {2, 4, 4, 4, 4}));
  axis.axis = {1, 2};
  EXPECT_FALSE(fused(axis, {2, 4, 4, 4}));
  Options renorm;
  renorm.renorm = true;
  EXPECT_FALSE(fused(renorm, {2, 4, 4, 4}));
  Options adjusted;
  adjusted.adjustment = [](const Shape&, float*, float*) {};
  EXPECT_FALSE(fused(adjusted, {2, 4, 4, 4}));
  // Keras' synchronized layer resolves fused=None to the non-fused path.
  Options synchronized;
  synchronized.synchronized = true;
  EXPECT_FALSE(fused(synchronized, {2, 4, 4, 4}));
}

TEST(FusedConvention, FusedUpdatesWithBesselCorrection) {
  // tf-keras test_bessels_correction: the variance of [0, 2] is 2 with
  // Bessel's correction; with momentum 0.5 the moving variance is 1.
  for (const Shape& shape : {Shape{2, 1, 1, 1}, Shape{2, 1, 1, 1, 1}}) {
    Options o;
    o.momentum = 0.5f;
    o.moving_variance_initializer = Initializer::Zeros();
    BatchNorm layer(o);
    const std::vector<float> x = {0, 2};
    std::vector<float> y(2);
    layer.Forward(x.data(), y.data(), shape, true);
    EXPECT_TRUE(layer.fused());
    EXPECT_EQ(layer.moving_variance()[0], 1.0f);
    o.fused = Fused::kFalse;  // biased variance 1, times 0.5
    BatchNorm plain(o);
    plain.Forward(x.data(), y.data(), shape, true);
    EXPECT_EQ(plain.moving_variance()[0], 0.5f);
  }
  // n counts every reduced element of a channel (N*H*W), and n = 1 has no
  // correction.
  Options o;
  o.axis = {1};
  o.momentum = 0.0f;
  BatchNorm layer(o);
  const Shape shape = {2, 2, 3, 1};
  const std::vector<float> x = {0, 1, 2, 0, 0, 0, 3, 4, 5, 0, 0, 6};
  std::vector<float> y(x.size());
  layer.Forward(x.data(), y.data(), shape, true);
  // Channel 0: {0, 1, 2, 3, 4, 5}, mean 2.5, biased variance 35/12, n = 6.
  EXPECT_NEAR(layer.moving_variance()[0], 35.0 / 12 * 6 / 5, 1e-6);
  // Channel 1: {0, 0, 0, 0, 0, 6}, mean 1, biased variance 5.
  EXPECT_NEAR(layer.moving_variance()[1], 5.0 * 6 / 5, 1e-6);
  BatchNorm single(o);
  const std::vector<float> one = {3, 7};
  std::vector<float> out(2);
  single.Forward(one.data(), out.data(), {1, 2, 1, 1}, true);
  EXPECT_EQ(single.moving_variance(), std::vector<float>(2, 0.0f));
}

TEST(FusedConvention, FusedRaisesEpsilonToItsFloor) {
  const std::vector<float> x = {0.0f, 0.002f};  // variance 1e-6
  std::vector<float> y(2);
  Options o;
  o.epsilon = 1e-6f;
  BatchNorm fused(o);
  fused.Forward(x.data(), y.data(), {2, 1, 1, 1}, true);
  ASSERT_TRUE(fused.fused());
  EXPECT_NEAR(y[1], 0.001 / std::sqrt(1e-6 + 1.001e-5), 1e-5);
  o.fused = Fused::kFalse;
  BatchNorm plain(o);
  plain.Forward(x.data(), y.data(), {2, 1, 1, 1}, true);
  EXPECT_NEAR(y[1], 0.001 / std::sqrt(1e-6 + 1e-6), 1e-5);
  // Inference through the fused kernel raises epsilon too.
  fused.set_moving_mean({0.0f});
  fused.set_moving_variance({0.0f});
  const float one = 1.0f;
  fused.Forward(&one, y.data(), {1, 1, 1, 1}, false);
  EXPECT_NEAR(y[0], 1.0 / std::sqrt(1.001e-5), 1e-2);
}

TEST(FusedConvention, FusedMatchesNonFusedOutput) {
  const Shape shape = {4, 3, 5, 6};
  const std::vector<float> x = Normal(Count(shape), 1.0, 2.0, 8);
  Options o;
  o.axis = {1};
  Options plain_options = o;
  plain_options.fused = Fused::kFalse;
  BatchNorm fused(o), plain(plain_options);
  std::vector<float> yf(x.size()), yp(x.size());
  fused.Forward(x.data(), yf.data(), shape, true);
  plain.Forward(x.data(), yp.data(), shape, true);
  ExpectClose(yf, yp, 1e-6);
  const double n = 4 * 5 * 6;
  for (size_t c = 0; c < 3; ++c) {
    const double batch_fused = (fused.moving_variance()[c] - 0.99) / 0.01;
    const double batch_plain = (plain.moving_variance()[c] - 0.99) / 0.01;
    EXPECT_NEAR(batch_fused, batch_plain * n / (n - 1), 1e-3);
  }
}

TEST(FusedConvention, RepeatedTrainingCallsRenormalize) {
  // tf-keras test_can_be_used_in_multiple_graphs: three training calls, each
  // on the previous output, of [-1000, 1000] without gamma and beta.
  Options o;
  o.scale = false;
  o.center = false;
  o.fused = Fused::kTrue;
  BatchNorm layer(o);
  std::vector<float> x = {-1000.0f, 1000.0f};
  double expected = 1000.0;
  for (int i = 0; i < 3; ++i) {
    layer.Forward(x.data(), x.data(), {2, 1, 1, 1}, true);
    expected = expected / std::sqrt(expected * expected + 1e-3);
  }
  EXPECT_NEAR(x[1], expected, 1e-6);
  EXPECT_NEAR(x[1], 0.9995, 1e-6);
  EXPECT_NEAR(x[0], -0.9995, 1e-6);
}

}  // namespace
}  // namespace test
}  // namespace bnorm
