// SPDX-License-Identifier: Apache-2.0
// Training mode of the layer, one TEST per Keras rule: batch statistics,
// the moving averages, center/scale, empty batches, in-place calls, exactness
// far from zero, thread independence, and learning to normalize over epochs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "bnorm/batch_norm.hpp"
#include "bnorm/execution.hpp"
#include "src/ops/half.h"
#include "tests/layer_test_util.h"
#include "tests/test_util.h"

namespace bnorm {
namespace test {
namespace {

TEST(LayerTraining, TrainingNormalizesWithBatchStatistics) {
  Options o;
  o.gamma_initializer = Initializer::Constant(3.0f);
  o.beta_initializer = Initializer::Constant(1.0f);
  BatchNorm layer(o);
  const std::vector<float> x = {1, 2, 3, 4};  // mean 2.5, biased variance 1.25
  std::vector<float> y(4);
  layer.Forward(x.data(), y.data(), {4, 1}, true);
  const double inv = 1.0 / std::sqrt(1.25 + 1e-3);
  ExpectClose(y,
              std::vector<double>{-1.5 * inv * 3 + 1, -0.5 * inv * 3 + 1, 0.5 * inv * 3 + 1,
                                  1.5 * inv * 3 + 1},
              1e-6);
}

TEST(LayerTraining, MomentumAccumulatesOverSteps) {
  Options o;
  o.momentum = 0.9f;
  BatchNorm layer(o);
  std::vector<float> y(2);
  const std::vector<float> x1 = {0, 2};  // mean 1, variance 1
  layer.Forward(x1.data(), y.data(), {2, 1}, true);
  EXPECT_NEAR(layer.moving_mean()[0], 0.9 * 0 + 0.1 * 1, 1e-7);
  EXPECT_NEAR(layer.moving_variance()[0], 0.9 * 1 + 0.1 * 1, 1e-7);
  const std::vector<float> x2 = {4, 8};  // mean 6, variance 4
  layer.Forward(x2.data(), y.data(), {2, 1}, true);
  EXPECT_NEAR(layer.moving_mean()[0], 0.9 * 0.1 + 0.1 * 6, 1e-6);
  EXPECT_NEAR(layer.moving_variance()[0], 0.9 * 1.0 + 0.1 * 4, 1e-6);

  // tf-keras test_eager_batchnorm_in_custom_model_call_with_tf_function:
  // ten calls on 0.5 with the default momentum 0.99.
  BatchNorm keras(Options{});
  for (int i = 0; i < 10; ++i) {
    const float half = 0.5f;
    float out;
    keras.Forward(&half, &out, {1, 1}, true);
    EXPECT_EQ(out, 0.0f);
  }
  EXPECT_NEAR(keras.moving_mean()[0], 0.5 * (1 - std::pow(0.99, 10)), 1e-6);  // 0.0478
  EXPECT_NEAR(keras.moving_variance()[0], std::pow(0.99, 10), 1e-6);          // 0.904
}

TEST(LayerTraining, TrainingUsesBatchStatisticsNotMovingOnes) {
  // tf-keras test_batchnorm_trainable: moving statistics far from the data's
  // do not matter in training.
  BatchNorm layer(Options{});
  layer.Build({10, 1});
  layer.set_moving_mean({0.5f});
  layer.set_moving_variance({100.0f});
  std::vector<float> x(10), y(10);
  for (int i = 0; i < 10; ++i) x[static_cast<size_t>(i)] = static_cast<float>(i);
  layer.Forward(x.data(), y.data(), {10, 1}, true);
  for (size_t i = 0; i < 10; ++i) EXPECT_NEAR(y[i], (x[i] - 4.5) / std::sqrt(8.25), 1e-3);
}

TEST(LayerTraining, CenterAndScaleOffMeanNoBetaAndNoGamma) {
  Options o;
  o.center = false;
  o.scale = false;
  o.gamma_initializer = Initializer::Constant(5.0f);  // unused without scale
  o.beta_initializer = Initializer::Constant(3.0f);   // unused without center
  BatchNorm layer(o);
  const std::vector<float> x = {0, 2};
  std::vector<float> y(2);
  layer.Forward(x.data(), y.data(), {2, 1}, true);
  EXPECT_NEAR(y[0], -1 / std::sqrt(1.001), 1e-6);
  EXPECT_NEAR(y[1], 1 / std::sqrt(1.001), 1e-6);
  ExpectMatchesReference(o, {4, 3, 5}, kSteps, 11);
}

TEST(LayerTraining, EmptyBatchUpdatesNothing) {
  for (const Shape& shape : {Shape{0, 3}, Shape{0, 2, 2, 3}, Shape{4, 0, 3}}) {
    Options o;
    o.renorm = shape.size() == 3;
    BatchNorm layer(o);
    layer.Forward(nullptr, nullptr, shape, true);
    EXPECT_EQ(layer.moving_mean(), std::vector<float>(3, 0.0f));
    EXPECT_EQ(layer.moving_variance(), std::vector<float>(3, 1.0f));
  }
  Options ghost;
  ghost.virtual_batch_size = 2;
  BatchNorm layer(ghost);
  layer.Forward(nullptr, nullptr, {0, 3}, true);
  EXPECT_EQ(layer.moving_mean(), std::vector<float>(3, 0.0f));
}

TEST(LayerTraining, InPlaceForwardMatchesOutOfPlace) {
  const Shape shape = {6, 4, 3};
  for (bool ghost : {false, true}) {
    Options o;
    if (ghost) o.virtual_batch_size = 3;
    BatchNorm a(o), b(o);
    std::vector<float> x = Normal(Count(shape), 2.0, 3.0, 5), y(x.size());
    a.Forward(x.data(), y.data(), shape, true);
    b.Forward(x.data(), x.data(), shape, true);
    EXPECT_EQ(x, y);
    EXPECT_EQ(a.moving_variance(), b.moving_variance());
    std::vector<uint16_t> h(x.size()), h_out(x.size());
    NarrowFromFloat(y.data(), DType::kBFloat16, h.size(), h.data());
    BatchNorm c(o), d(o);
    c.Forward(h.data(), h_out.data(), DType::kBFloat16, shape, true);
    d.Forward(h.data(), h.data(), DType::kBFloat16, shape, true);
    EXPECT_EQ(h, h_out);
  }
}

TEST(LayerTraining, MeanFarFromZeroStaysExact) {
  ExpectMatchesReference(Options{}, {256, 8}, {true, true, false}, 21, 1e4, 1.0, 1e-5);
  Options channels_first;
  channels_first.axis = {1};
  ExpectMatchesReference(channels_first, {8, 4, 16, 16}, {true, false}, 22, -3e4, 0.5, 1e-5);
}

TEST(LayerTraining, SerialAndParallelAgreeBitwise) {
  const Shape shape = {32, 64, 32, 16};  // 1M values: large enough for threads
  const std::vector<float> x = Normal(Count(shape), 1.0, 2.0, 3);
  for (bool ghost : {false, true}) {
    Options o;
    if (ghost) o.virtual_batch_size = 8;
    BatchNorm serial(o), parallel(o), arena_layer(o);
    std::vector<float> ys(x.size()), yp(x.size()), ya(x.size());
    tbb::task_arena arena(2);
    serial.Forward(x.data(), ys.data(), shape, true, Execution::Serial());
    parallel.Forward(x.data(), yp.data(), shape, true, Execution::Parallel());
    arena_layer.Forward(x.data(), ya.data(), shape, true, Execution::Parallel(&arena));
    EXPECT_EQ(0, std::memcmp(ys.data(), yp.data(), ys.size() * sizeof(float)));
    EXPECT_EQ(0, std::memcmp(ys.data(), ya.data(), ys.size() * sizeof(float)));
    EXPECT_EQ(serial.moving_variance(), parallel.moving_variance());
    EXPECT_EQ(serial.moving_mean(), arena_layer.moving_mean());
  }
}

// Keras' _run_batchnorm_correctness_test and test_batchnorm_convnet(_channel_last):
// data centred on 5 with standard deviation 10, trained in batches of 32 for
// four epochs with momentum 0.8; inference then gives mean ~0 and std ~1.
void ExpectLearnsToNormalize(const Options& o, const Shape& sample, bool per_channel, double atol) {
  Shape shape = sample;
  shape.insert(shape.begin(), 1000);
  const std::vector<float> x = Normal(Count(shape), 5.0, 10.0, 42);
  BatchNorm layer(o);
  const size_t per_sample = Count(sample);
  std::vector<float> y(x.size());
  for (int epoch = 0; epoch < 4; ++epoch) {
    for (int64_t start = 0; start < 1000; start += 32) {
      Shape batch = shape;
      batch[0] = std::min<int64_t>(32, 1000 - start);
      const size_t offset = static_cast<size_t>(start) * per_sample;
      layer.Forward(x.data() + offset, y.data() + offset, batch, true);
    }
  }
  layer.Forward(x.data(), y.data(), shape, false);
  const std::vector<int64_t> params = layer.parameter_shape();
  const size_t C = params.size() == 1 ? static_cast<size_t>(params[0]) : 1;
  const size_t axis = o.axis[0] < 0 ? shape.size() - 1 : static_cast<size_t>(o.axis[0]);
  size_t inner = 1;
  for (size_t k = axis + 1; k < shape.size(); ++k) inner *= static_cast<size_t>(shape[k]);
  std::vector<double> sum(C, 0.0), squares(C, 0.0), count(C, 0.0);
  for (size_t i = 0; i < y.size(); ++i) {
    const size_t c = per_channel ? (i / inner) % C : 0;
    sum[c] += y[i];
    squares[c] += static_cast<double>(y[i]) * y[i];
    count[c] += 1;
  }
  for (size_t c = 0; c < (per_channel ? C : 1); ++c) {
    const double mean = sum[c] / count[c];
    EXPECT_NEAR(mean, 0.0, atol) << "channel " << c;
    EXPECT_NEAR(std::sqrt(squares[c] / count[c] - mean * mean), 1.0, atol) << "channel " << c;
  }
}

TEST(LayerTraining, LearnsToNormalizeMean5Std10) {
  Options o;
  o.momentum = 0.8f;
  ExpectLearnsToNormalize(o, {2, 2, 2}, false, 2e-1);  // fused (rank 4, last axis)
  o.fused = Fused::kFalse;
  ExpectLearnsToNormalize(o, {2, 2, 2}, false, 2e-1);
  Options channels_first = o;
  channels_first.fused = Fused::kAuto;
  channels_first.axis = {1};
  ExpectLearnsToNormalize(channels_first, {3, 4, 4}, true, 1e-1);
  Options channels_last = o;
  channels_last.fused = Fused::kAuto;
  ExpectLearnsToNormalize(channels_last, {4, 4, 3}, true, 1e-1);
}

}  // namespace
}  // namespace test
}  // namespace bnorm
