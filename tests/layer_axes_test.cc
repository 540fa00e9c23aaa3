// SPDX-License-Identifier: Apache-2.0
// The layer's feature axes: negative axes, adjacent and non-adjacent axis
// lists, and every layout against the float64 reference.
#include <gtest/gtest.h>

#include <vector>

#include "bnorm/batch_norm.hpp"
#include "tests/layer_test_util.h"
#include "tests/test_util.h"

namespace bnorm {
namespace test {
namespace {

TEST(LayerAxes, NegativeAxesAreCountedFromTheEnd) {
  const Shape shape = {4, 3, 5, 6};
  const std::vector<float> x = Normal(Count(shape), 0.0, 1.0, 12);
  Options a, b;
  a.axis = {1};
  b.axis = {-3};
  BatchNorm la(a), lb(b);
  std::vector<float> ya(x.size()), yb(x.size());
  la.Forward(x.data(), ya.data(), shape, true);
  lb.Forward(x.data(), yb.data(), shape, true);
  EXPECT_EQ(ya, yb);
  EXPECT_EQ(lb.parameter_shape(), Shape{3});
}

TEST(LayerAxes, AdjacentAxisListsMatchReference) {
  Options o;
  o.axis = {1, 2};
  BatchNorm layer(o);
  layer.Build({3, 4, 5, 6});
  EXPECT_EQ(layer.parameter_shape(), (Shape{4, 5}));
  EXPECT_EQ(layer.moving_mean().size(), 20u);
  ExpectMatchesReference(o, {3, 4, 5, 6}, kSteps, 61);
  o.axis = {-1, -2};
  ExpectMatchesReference(o, {3, 4, 5, 6}, kSteps, 62);
  o.axis = {0, 1};
  ExpectMatchesReference(o, {3, 4, 5}, kSteps, 63);
}

TEST(LayerAxes, NonAdjacentAxisListsMatchReference) {
  Options o;
  o.axis = {3, 1};
  BatchNorm layer(o);
  layer.Build({3, 4, 5, 6});
  EXPECT_EQ(layer.parameter_shape(), (Shape{4, 6}));
  ExpectMatchesReference(o, {3, 4, 5, 6}, kSteps, 71);
  o.axis = {0, 2};
  ExpectMatchesReference(o, {3, 4, 5}, kSteps, 72);
  o.axis = {0, -1};
  ExpectMatchesReference(o, {2, 3, 4, 5, 3}, kSteps, 73);
  o.axis = {1, 3};
  o.virtual_batch_size = 2;
  ExpectMatchesReference(o, {4, 3, 2, 5}, kSteps, 74);
  o.renorm = true;
  ExpectMatchesReference(o, {4, 3, 2, 5}, kSteps, 75);
}

TEST(LayerAxes, MatchesReferenceAcrossLayouts) {
  Options last;
  ExpectMatchesReference(last, {8, 5}, kSteps, 81);
  ExpectMatchesReference(last, {4, 5, 6, 3}, kSteps, 82, 3.0, 2.0);  // fused NHWC
  ExpectMatchesReference(last, {2, 3, 4, 5, 6}, kSteps, 83);         // fused NDHWC
  Options first;
  first.axis = {1};
  ExpectMatchesReference(first, {4, 3, 5, 6}, kSteps, 84, -2.0, 3.0);  // fused NCHW
  ExpectMatchesReference(first, {4, 6, 5}, kSteps, 85);                // not fused
  ExpectMatchesReference(first, {2, 3, 300, 300}, {true, false}, 86);  // many blocks
  first.fused = Fused::kFalse;
  ExpectMatchesReference(first, {4, 3, 5, 6}, kSteps, 87);
  Options middle;
  middle.axis = {2};
  ExpectMatchesReference(middle, {3, 4, 5, 6}, kSteps, 88);
  Options initialized;
  initialized.moving_mean_initializer = Initializer::Constant(1.0f);
  initialized.moving_variance_initializer = Initializer::Constant(2.0f);
  initialized.gamma_initializer = Initializer::Constant(0.5f);
  initialized.beta_initializer = Initializer::Constant(-1.0f);
  initialized.epsilon = 1e-7f;  // fused: raised to 1.001e-5
  initialized.momentum = 0.0f;
  ExpectMatchesReference(initialized, {4, 4, 4, 2}, kSteps, 89);
  initialized.momentum = 1.0f;
  initialized.trainable = false;
  ExpectMatchesReference(initialized, {4, 4, 4, 2}, kSteps, 90);
}

}  // namespace
}  // namespace test
}  // namespace bnorm
