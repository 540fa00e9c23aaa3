// SPDX-License-Identifier: Apache-2.0
// Ghost batches (virtual_batch_size): strided ghosts, moving statistics
// averaged over them, TensorFlow's ghost-batch cases and the float64 reference.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "bnorm/batch_norm.hpp"
#include "tests/layer_test_util.h"
#include "tests/test_util.h"

namespace bnorm {
namespace test {
namespace {

TEST(GhostBatch, GhostBatchesAreStrided) {
  // B = 4, V = 2: ghost 0 = samples {0, 2}, ghost 1 = samples {1, 3}.
  Options o;
  o.virtual_batch_size = 2;
  BatchNorm layer(o);
  const std::vector<float> x = {0, 10, 2, 14};
  std::vector<float> y(4);
  layer.Forward(x.data(), y.data(), {4, 1}, true);
  const double g0 = std::sqrt(1.0 + 1e-3);  // {0, 2}: mean 1, variance 1
  const double g1 = std::sqrt(4.0 + 1e-3);  // {10, 14}: mean 12, variance 4
  ExpectClose(y, std::vector<double>{-1 / g0, -2 / g1, 1 / g0, 2 / g1}, 1e-6);
}

TEST(GhostBatch, MovingStatisticsAverageTheGhosts) {
  Options o;
  o.virtual_batch_size = 2;
  o.momentum = 0.5f;
  BatchNorm layer(o);
  const std::vector<float> x = {0, 10, 2, 14};
  std::vector<float> y(4);
  layer.Forward(x.data(), y.data(), {4, 1}, true);
  EXPECT_NEAR(layer.moving_mean()[0], 0.5 * (1 + 12) / 2, 1e-6);
  EXPECT_NEAR(layer.moving_variance()[0], 0.5 * 1 + 0.5 * (1 + 4) / 2.0, 1e-6);
}

TEST(GhostBatch, MatchesTensorFlowGhostBN2Dims) {
  // TensorFlow's testGhostBN2Dims: shape [6, 2], V = 3, five steps, Keras'
  // reshape to [V, B/V, C] written out here.
  const size_t B = 6, C = 2, V = 3, G = B / V;
  Options o;
  o.virtual_batch_size = V;
  o.momentum = 0.8f;
  o.beta_initializer = Initializer::Constant(2.0f);
  o.gamma_initializer = Initializer::Constant(3.0f);
  BatchNorm layer(o);
  std::vector<double> moving_mean(C, 0.0), moving_var(C, 1.0);
  for (uint32_t step = 0; step < 5; ++step) {
    const std::vector<float> x = Uniform(B * C, 0.0, 1.0, 100 + step);
    std::vector<double> train(B * C), test(B * C);
    std::vector<double> avg_mean(C, 0.0), avg_var(C, 0.0);
    for (size_t g = 0; g < G; ++g) {
      for (size_t c = 0; c < C; ++c) {
        double mean = 0.0, var = 0.0;
        for (size_t v = 0; v < V; ++v) mean += x[(v * G + g) * C + c] / V;
        for (size_t v = 0; v < V; ++v) var += std::pow(x[(v * G + g) * C + c] - mean, 2) / V;
        for (size_t v = 0; v < V; ++v) {
          const size_t i = (v * G + g) * C + c;
          train[i] = (x[i] - mean) / std::sqrt(var + 1e-3) * 3 + 2;
        }
        avg_mean[c] += mean / G;
        avg_var[c] += var / G;
      }
    }
    for (size_t c = 0; c < C; ++c) {
      moving_mean[c] = moving_mean[c] * 0.8 + avg_mean[c] * 0.2;
      moving_var[c] = moving_var[c] * 0.8 + avg_var[c] * 0.2;
    }
    for (size_t i = 0; i < B * C; ++i) {
      test[i] = (x[i] - moving_mean[i % C]) / std::sqrt(moving_var[i % C] + 1e-3) * 3 + 2;
    }
    std::vector<float> y(B * C);
    layer.Forward(x.data(), y.data(), {6, 2}, true);
    ExpectClose(y, train, 1e-5, "train");
    layer.Forward(x.data(), y.data(), {6, 2}, false);
    ExpectClose(y, test, 1e-5, "test");
  }
}

TEST(GhostBatch, MatchesReference) {
  // TensorFlow's testGhostBN4DimsAxis3 / Axis1, plus more ghosts.
  Options o;
  o.virtual_batch_size = 2;
  o.momentum = 0.8f;
  o.beta_initializer = Initializer::Constant(2.0f);
  o.gamma_initializer = Initializer::Constant(3.0f);
  o.axis = {3};
  ExpectMatchesReference(o, {6, 10, 10, 3}, kSteps, 31);
  o.axis = {1};
  ExpectMatchesReference(o, {6, 3, 10, 10}, kSteps, 32);
  o.axis = {-1};
  o.virtual_batch_size = 4;
  ExpectMatchesReference(o, {32, 7}, kSteps, 33);
  // Ghosts spanning several kernel blocks, one row per sample.
  o.virtual_batch_size = 32768;
  ExpectMatchesReference(o, {65536, 4}, {true, false}, 34);
  o.axis = {1};
  o.virtual_batch_size = 128;
  ExpectMatchesReference(o, {256, 2, 32, 32}, {true, false}, 35);
}

TEST(GhostBatch, VirtualBatchOfTheWholeBatchIsPlainBatchNorm) {
  // V = B is plain batch normalization.
  const Shape shape = {6, 5, 4, 3};
  const std::vector<float> x = Uniform(Count(shape), 0.0, 1.0, 9);
  Options o;
  o.fused = Fused::kFalse;  // ghosts are never fused; compare like with like
  BatchNorm plain(o);
  o.virtual_batch_size = 6;
  BatchNorm ghost(o);
  std::vector<float> y1(x.size()), y2(x.size());
  plain.Forward(x.data(), y1.data(), shape, true);
  ghost.Forward(x.data(), y2.data(), shape, true);
  ExpectClose(y1, y2, 1e-6);
  ExpectClose(ghost.moving_variance(), plain.moving_variance(), 1e-6);
}

TEST(GhostBatch, GhostBatchesAreIgnoredInInference) {
  Options o;
  o.virtual_batch_size = 4;
  BatchNorm ghost(o);
  BatchNorm plain(Options{});
  const std::vector<float> x = Normal(3 * 5, 0.0, 1.0, 4);  // batch 3: no ghost fits
  std::vector<float> y1(x.size()), y2(x.size());
  ghost.Forward(x.data(), y1.data(), {3, 5}, false);
  plain.Forward(x.data(), y2.data(), {3, 5}, false);
  EXPECT_EQ(y1, y2);
}

}  // namespace
}  // namespace test
}  // namespace bnorm
