// The layer's rules, one TEST per rule: hand-computed numbers for small cases,
// the float64 Keras reference (src/oracle/keras_reference.h) for random ones, and
// ports of the numerical cases of tf-keras' batch_normalization_test.py and
// TensorFlow's layers/normalization_test.py.
#include "bnorm/batch_norm.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "bnorm/error.hpp"
#include "src/oracle/keras_reference.h"
#include "src/ops/half.h"
#include "tests/test_util.h"

namespace bnorm {
namespace {

using test::Count;
using test::Normal;
using test::Shape;



std::vector<float> Uniform(size_t n, double low, double high, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> dist(low, high);
  std::vector<float> x(n);
  for (float& v : x) v = static_cast<float>(dist(rng));
  return x;
}

// The message of the bnorm::Error that f throws ("" if none).
std::string ErrorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_ERROR(statement, text) EXPECT_EQ(ErrorOf([&] { statement; }), std::string(text))
#define EXPECT_ERROR_HAS(statement, text)                              \
  EXPECT_NE(ErrorOf([&] { statement; }).find(text), std::string::npos) \
      << "message: " << ErrorOf([&] { statement; })

// |actual - expected| <= tol * max(1, |expected|), element by element.
template <class A, class E>
void ExpectClose(const std::vector<A>& actual, const std::vector<E>& expected, double tol,
                 const std::string& what = "") {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  for (size_t i = 0; i < actual.size(); ++i) {
    const double e = static_cast<double>(expected[i]);
    ASSERT_NEAR(static_cast<double>(actual[i]), e, tol * std::max(1.0, std::abs(e)))
        << what << " [" << i << "]";
  }
}

void ExpectStateClose(const BatchNorm& layer, const keras_reference::State& s, double tol) {
  const Options& o = layer.options();
  if (o.scale) ExpectClose(layer.gamma(), s.gamma, tol, "gamma");
  if (o.center) ExpectClose(layer.beta(), s.beta, tol, "beta");
  ExpectClose(layer.moving_mean(), s.moving_mean, tol, "moving_mean");
  ExpectClose(layer.moving_variance(), s.moving_variance, tol, "moving_variance");
  if (o.renorm) {
    ExpectClose(layer.moving_stddev(), s.moving_stddev, tol, "moving_stddev");
    ExpectClose(layer.renorm_mean(), s.renorm_mean, tol, "renorm_mean");
    ExpectClose(layer.renorm_stddev(), s.renorm_stddev, tol, "renorm_stddev");
  }
}

// Runs the layer and the reference side by side over `training` calls on
// seeded data, comparing outputs and state after every call.
void ExpectMatchesReference(const Options& options, const Shape& shape,
                            const std::vector<std::optional<bool>>& training, uint32_t seed,
                            double mean = 0.0, double stddev = 1.0, double tol = 1e-5) {
  BatchNorm layer(options);
  layer.Build(shape);
  size_t channels = 1;
  for (int64_t s : layer.parameter_shape()) channels *= static_cast<size_t>(s);
  keras_reference::State state = keras_reference::Initial(options, channels);
  EXPECT_EQ(layer.fused(), keras_reference::UsesFused(options, shape.size()));
  const size_t n = Count(shape);
  for (size_t step = 0; step < training.size(); ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    const std::vector<float> x = Normal(n, mean, stddev, seed + static_cast<uint32_t>(step));
    std::vector<float> y(n);
    std::vector<double> expected(n);
    layer.Forward(x.data(), y.data(), shape, training[step]);
    keras_reference::Forward(options, shape, x.data(), training[step], &state, expected.data());
    ExpectClose(y, expected, tol, "y");
    ExpectStateClose(layer, state, tol);
  }
}

const std::vector<std::optional<bool>> kSteps = {true, true, false, std::nullopt, true};

// ---------------------------------------------------------------------------
// Training, inference and the moving averages.

TEST(BatchNormTest, TrainingNormalizesWithBatchStatistics) {
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

TEST(BatchNormTest, InferenceUsesMovingStatistics) {
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

TEST(BatchNormTest, MomentumAccumulatesOverSteps) {
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

TEST(BatchNormTest, TrainingUsesBatchStatisticsNotMovingOnes) {
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

TEST(BatchNormTest, TrainingUnsetMeansInference) {
  BatchNorm layer(Options{});
  const std::vector<float> x = {1, 2, 3, 4};
  std::vector<float> y(4);
  layer.Forward(x.data(), y.data(), {4, 1});
  // (x - 0) / sqrt(1 + eps): the initial moving statistics, left unchanged.
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(y[i], x[i] / std::sqrt(1.001), 1e-6);
  EXPECT_EQ(layer.moving_mean()[0], 0.0f);
  EXPECT_EQ(layer.moving_variance()[0], 1.0f);
}

TEST(BatchNormTest, TrainableFalseMeansInference) {
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

TEST(BatchNormTest, CenterScaleOff) {
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
  EXPECT_ERROR(layer.gamma(), "gamma does not exist with scale=false");
  EXPECT_ERROR(layer.beta(), "beta does not exist with center=false");
  EXPECT_ERROR(layer.set_gamma({1.0f}), "gamma does not exist with scale=false");
  EXPECT_ERROR(layer.set_beta({1.0f}), "beta does not exist with center=false");
  ExpectMatchesReference(o, {4, 3, 5}, kSteps, 11);
}

TEST(BatchNormTest, InitialStateFromInitializers) {
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

TEST(BatchNormTest, EmptyBatchUpdatesNothing) {
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

TEST(BatchNormTest, InPlaceForward) {
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

TEST(BatchNormTest, MeanFarFromZeroStaysExact) {
  ExpectMatchesReference(Options{}, {256, 8}, {true, true, false}, 21, 1e4, 1.0, 1e-5);
  Options channels_first;
  channels_first.axis = {1};
  ExpectMatchesReference(channels_first, {8, 4, 16, 16}, {true, false}, 22, -3e4, 0.5, 1e-5);
}

TEST(BatchNormTest, SerialAndParallelAgreeBitwise) {
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

TEST(BatchNormTest, LearnsToNormalizeMean5Std10) {
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

// ---------------------------------------------------------------------------
// The fused convention.

TEST(BatchNormTest, FusedAutoSelection) {
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
}

TEST(BatchNormTest, FusedUpdatesWithBesselCorrection) {
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

TEST(BatchNormTest, FusedEpsilonFloor) {
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

TEST(BatchNormTest, FusedMatchesNonFusedOutput) {
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

TEST(BatchNormTest, RepeatedTrainingCallsRenormalize) {
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

// ---------------------------------------------------------------------------
// Ghost batches.

TEST(BatchNormTest, GhostBatchesAreStrided) {
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

TEST(BatchNormTest, GhostMovingStatsAverageGhosts) {
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

TEST(BatchNormTest, GhostBN2Dims) {
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

TEST(BatchNormTest, GhostBNMatchesReference) {
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

TEST(BatchNormTest, GhostBNVirtualBatchFull) {
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

TEST(BatchNormTest, GhostBatchesIgnoredInInference) {
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

TEST(BatchNormTest, GhostBatchMustDivideBatch) {
  Options o;
  o.virtual_batch_size = 4;
  BatchNorm layer(o);
  std::vector<float> x(12), y(12);
  EXPECT_ERROR(layer.Forward(x.data(), y.data(), {6, 2}, true),
               "virtual_batch_size 4 does not divide the batch size 6 (shape[0])");
  EXPECT_ERROR(layer.Forward(x.data(), y.data(), {2, 2}, true),
               "virtual_batch_size 4 is larger than the batch size 2 (shape[0])");
  EXPECT_EQ(layer.moving_mean(), std::vector<float>(2, 0.0f));
}

TEST(BatchNormTest, GhostBatchesRejectFeatureAxisZero) {
  Options o;
  o.virtual_batch_size = 2;
  o.axis = {0};
  BatchNorm layer(o);
  EXPECT_ERROR(layer.Build({4, 3}),
               "axis [0] includes the batch axis 0 while virtual_batch_size is 2; ghost "
               "batches split axis 0, so it must not be a feature axis");
  o.axis = {-2, 1};
  BatchNorm both(o);
  EXPECT_ERROR_HAS(both.Build({4, 3}), "includes the batch axis 0");
}

// ---------------------------------------------------------------------------
// Batch renormalization.

TEST(BatchNormTest, RenormClipsR) {
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

TEST(BatchNormTest, RenormClipsD) {
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

TEST(BatchNormTest, RenormUsesPreUpdateStatistics) {
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

TEST(BatchNormTest, RenormStddevIsFlooredAtSqrtEpsilon) {
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

TEST(BatchNormTest, RenormMatchesKerasTest) {
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

TEST(BatchNormTest, RenormNoClippingSameMomentumGivesSameTestTrain) {
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

TEST(BatchNormTest, RenormMatchesReference) {
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

// ---------------------------------------------------------------------------
// Adjustment.

TEST(BatchNormTest, AdjustmentAppliesInTrainingOnly) {
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

TEST(BatchNormTest, RenormWithAdjustment) {
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

// ---------------------------------------------------------------------------
// Axes.

TEST(BatchNormTest, NegativeAxesAreCountedFromTheEnd) {
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

TEST(BatchNormTest, AxisListAdjacent) {
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

TEST(BatchNormTest, AxisListNonAdjacent) {
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

TEST(BatchNormTest, MatchesReferenceAcrossLayouts) {
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

// ---------------------------------------------------------------------------
// float16 / bfloat16.

TEST(BatchNormTest, Float16RoundTrip) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const uint16_t bits = static_cast<uint16_t>(h);
    const float f = HalfToFloat(bits);
    if ((bits & 0x7C00) == 0x7C00 && (bits & 0x3FF) != 0) {
      ASSERT_TRUE(std::isnan(f)) << h;
      const uint16_t back = FloatToHalf(f);
      ASSERT_TRUE((back & 0x7C00) == 0x7C00 && (back & 0x3FF) != 0) << h;
      ASSERT_EQ(back & 0x8000, bits & 0x8000) << h;
    } else {
      ASSERT_EQ(FloatToHalf(f), bits) << h;
    }
  }
  EXPECT_EQ(HalfToFloat(0x3C00), 1.0f);
  EXPECT_EQ(HalfToFloat(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(HalfToFloat(0x7BFF), 65504.0f);
  EXPECT_EQ(HalfToFloat(0xFC00), -std::numeric_limits<float>::infinity());
}

TEST(BatchNormTest, Float16RoundsToNearestEven) {
  // Between consecutive float16 values a < b: the midpoint goes to the even
  // one, anything nearer to a side to that side.
  for (uint16_t a = 0; a < 0x7BFF; ++a) {
    const uint16_t b = static_cast<uint16_t>(a + 1);
    const float fa = HalfToFloat(a), fb = HalfToFloat(b);
    const float mid = (fa + fb) / 2;  // exact: float has 13 more bits
    ASSERT_EQ(FloatToHalf(mid), (a & 1) ? b : a) << a;
    ASSERT_EQ(FloatToHalf(std::nextafter(mid, 0.0f)), a) << a;
    ASSERT_EQ(FloatToHalf(std::nextafter(mid, 1e9f)), b) << a;
    ASSERT_EQ(FloatToHalf(-mid), ((a & 1) ? b : a) | 0x8000) << a;
  }
  EXPECT_EQ(FloatToHalf(65519.0f), 0x7BFF);  // below the midpoint to 2^16
  EXPECT_EQ(FloatToHalf(65520.0f), 0x7C00);  // the midpoint rounds to even: Inf
  EXPECT_EQ(FloatToHalf(1e10f), 0x7C00);
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -25)), 0x0000);                        // tie to 0
  EXPECT_EQ(FloatToHalf(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);  // above it
  EXPECT_EQ(FloatToHalf(1e-30f), 0x0000);
  EXPECT_EQ(FloatToHalf(-0.0f), 0x8000);
}

TEST(BatchNormTest, BFloat16RoundTrip) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const uint16_t bits = static_cast<uint16_t>(h);
    const float f = BFloat16ToFloat(bits);
    if ((bits & 0x7F80) == 0x7F80 && (bits & 0x7F) != 0) {
      ASSERT_TRUE(std::isnan(f)) << h;
      ASSERT_TRUE(std::isnan(BFloat16ToFloat(FloatToBFloat16(f)))) << h;
    } else {
      ASSERT_EQ(FloatToBFloat16(f), bits) << h;
    }
  }
  for (uint16_t a = 0; a < 0x7F7F; ++a) {
    const uint16_t b = static_cast<uint16_t>(a + 1);
    const float fa = BFloat16ToFloat(a);
    const float mid = fa + (BFloat16ToFloat(b) - fa) / 2;  // exact, and no overflow
    ASSERT_EQ(FloatToBFloat16(mid), (a & 1) ? b : a) << a;
    ASSERT_EQ(FloatToBFloat16(std::nextafter(mid, 0.0f)), a) << a;
    ASSERT_EQ(FloatToBFloat16(std::nextafter(mid, std::numeric_limits<float>::infinity())), b) << a;
  }
  EXPECT_EQ(FloatToBFloat16(std::numeric_limits<float>::max()), 0x7F80);  // rounds to Inf
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(std::isnan(BFloat16ToFloat(FloatToBFloat16(nan))));
  // A NaN whose payload sits only in the low bits stays NaN (truncation
  // would make it Inf).
  float low_nan;
  const uint32_t low_nan_bits = 0x7F800001u;
  std::memcpy(&low_nan, &low_nan_bits, 4);
  EXPECT_TRUE(std::isnan(BFloat16ToFloat(FloatToBFloat16(low_nan))));
}

// The 16-bit Forward is the float32 Forward on the widened input, rounded to
// nearest even: bit-exact against that.
void Expect16BitForwardMatchesFloat32(DType dtype, const Options& o, const Shape& shape) {
  const size_t n = Count(shape);
  const std::vector<float> data = Normal(n, 5.0, 10.0, 13);
  std::vector<uint16_t> x16(n);
  NarrowFromFloat(data.data(), dtype, n, x16.data());
  std::vector<float> x(n);
  WidenToFloat(x16.data(), dtype, n, x.data());
  BatchNorm layer16(o), layer32(o);
  for (std::optional<bool> training : kSteps) {
    std::vector<uint16_t> y16(n), expected(n);
    std::vector<float> y32(n);
    layer16.Forward(x16.data(), y16.data(), dtype, shape, training);
    layer32.Forward(x.data(), y32.data(), shape, training);
    NarrowFromFloat(y32.data(), dtype, n, expected.data());
    ASSERT_EQ(y16, expected);
    ASSERT_EQ(layer16.moving_variance(), layer32.moving_variance());
  }
}

TEST(BatchNormTest, Float16ForwardMatchesFloat32) {
  Options o;
  Expect16BitForwardMatchesFloat32(DType::kFloat16, o, {16, 4, 4, 3});
  o.axis = {1, 3};
  Expect16BitForwardMatchesFloat32(DType::kFloat16, o, {16, 4, 4, 3});
}

TEST(BatchNormTest, BFloat16ForwardMatchesFloat32) {
  Options o;
  o.axis = {1};
  Expect16BitForwardMatchesFloat32(DType::kBFloat16, o, {8, 3, 5, 5});
  o.virtual_batch_size = 4;
  Expect16BitForwardMatchesFloat32(DType::kBFloat16, o, {8, 3, 5, 5});
}

TEST(BatchNormTest, MixedPrecisionDoesNotOverflow) {
  // tf-keras test_batchnorm_mixed_precision_does_not_overflow: float16
  // [-1000, 1000] normalizes to [-1, 1] (the variance 1e6 overflows float16).
  for (Fused fused : {Fused::kTrue, Fused::kFalse}) {
    Options o;
    o.fused = fused;
    BatchNorm layer(o);
    const std::vector<uint16_t> x = {FloatToHalf(-1000.0f), FloatToHalf(1000.0f)};
    std::vector<uint16_t> y(2);
    layer.Forward(x.data(), y.data(), DType::kFloat16, {2, 1, 1, 1}, true);
    EXPECT_EQ(HalfToFloat(y[0]), -1.0f);
    EXPECT_EQ(HalfToFloat(y[1]), 1.0f);
  }
}

TEST(BatchNormTest, Float16PreservesNanAndInf) {
  BatchNorm layer(Options{});
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<uint16_t> x = {FloatToHalf(std::nanf("")), FloatToHalf(inf), FloatToHalf(-inf),
                                   FloatToHalf(2.0f)};
  std::vector<uint16_t> y(4);
  layer.Forward(x.data(), y.data(), DType::kFloat16, {4, 1}, false);
  EXPECT_TRUE(std::isnan(HalfToFloat(y[0])));
  EXPECT_EQ(HalfToFloat(y[1]), inf);
  EXPECT_EQ(HalfToFloat(y[2]), -inf);
  EXPECT_EQ(y[3], FloatToHalf(static_cast<float>(2.0 / std::sqrt(1.001))));
}

TEST(BatchNormTest, LearnsToNormalizeInFloat16) {
  // tf-keras test_batchnorm_float16: mean 5 std 10 data in float16.
  Options o;
  o.momentum = 0.8f;
  o.fused = Fused::kFalse;
  const Shape shape = {1000, 2, 2, 2};
  std::vector<uint16_t> x(Count(shape));
  const std::vector<float> data = Normal(x.size(), 5.0, 10.0, 44);
  NarrowFromFloat(data.data(), DType::kFloat16, x.size(), x.data());
  BatchNorm layer(o);
  std::vector<uint16_t> y(x.size());
  for (int epoch = 0; epoch < 4; ++epoch) {
    for (size_t start = 0; start < 1000; start += 40) {
      layer.Forward(x.data() + start * 8, y.data() + start * 8, DType::kFloat16, {40, 2, 2, 2},
                    true);
    }
  }
  layer.Forward(x.data(), y.data(), DType::kFloat16, shape, false);
  double sum = 0, squares = 0;
  for (uint16_t h : y) {
    sum += HalfToFloat(h);
    squares += std::pow(HalfToFloat(h), 2);
  }
  const double mean = sum / static_cast<double>(y.size());
  EXPECT_NEAR(mean, 0.0, 2e-1);
  EXPECT_NEAR(std::sqrt(squares / static_cast<double>(y.size()) - mean * mean), 1.0, 2e-1);
}

// ---------------------------------------------------------------------------
// State access and constraints.

TEST(BatchNormTest, ConstraintsApplyInSetters) {
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

TEST(BatchNormTest, SettersCheckSize) {
  Options o;
  o.renorm = true;
  BatchNorm layer(o);
  layer.Build({2, 4});
  EXPECT_ERROR(layer.set_gamma({1, 2, 3}),
               "gamma has 3 values; expected 4 (the parameter shape [4])");
  EXPECT_ERROR(layer.set_beta({}), "beta has 0 values; expected 4 (the parameter shape [4])");
  EXPECT_ERROR(layer.set_moving_mean({1}),
               "moving_mean has 1 values; expected 4 (the parameter shape [4])");
  EXPECT_ERROR_HAS(layer.set_moving_variance(std::vector<float>(5)),
                   "moving_variance has 5 values");
  EXPECT_ERROR_HAS(layer.set_moving_stddev(std::vector<float>(5)), "moving_stddev has 5 values");
  EXPECT_ERROR_HAS(layer.set_renorm_mean(std::vector<float>(5)), "renorm_mean has 5 values");
  EXPECT_ERROR_HAS(layer.set_renorm_stddev(std::vector<float>(5)), "renorm_stddev has 5 values");
  Options multi;
  multi.axis = {1, 2};
  BatchNorm grid(multi);
  grid.Build({2, 2, 3});
  EXPECT_ERROR(grid.set_gamma({1}), "gamma has 1 values; expected 6 (the parameter shape [2, 3])");
}

TEST(BatchNormTest, GettersAndSettersRequireBuilt) {
  BatchNorm layer(Options{});
  const std::string unbuilt =
      " does not exist yet: the layer is not built (call Build or Forward first)";
  EXPECT_ERROR(layer.gamma(), "gamma" + unbuilt);
  EXPECT_ERROR(layer.beta(), "beta" + unbuilt);
  EXPECT_ERROR(layer.moving_mean(), "moving_mean" + unbuilt);
  EXPECT_ERROR(layer.moving_variance(), "moving_variance" + unbuilt);
  EXPECT_ERROR(layer.set_gamma({1}), "gamma" + unbuilt);
  EXPECT_ERROR(layer.set_moving_variance({1}), "moving_variance" + unbuilt);
  EXPECT_ERROR(layer.parameter_shape(), "parameter_shape is not known yet: the layer is not built");
  EXPECT_ERROR(layer.fused(), "fused is resolved at build: the layer is not built");
}

TEST(BatchNormTest, RenormStateOnlyWithRenorm) {
  BatchNorm layer(Options{});
  layer.Build({2, 3});
  EXPECT_ERROR(layer.moving_stddev(), "moving_stddev exists only with renorm=true");
  EXPECT_ERROR(layer.renorm_mean(), "renorm_mean exists only with renorm=true");
  EXPECT_ERROR(layer.renorm_stddev(), "renorm_stddev exists only with renorm=true");
  EXPECT_ERROR(layer.set_moving_stddev({1, 1, 1}), "moving_stddev exists only with renorm=true");
  EXPECT_ERROR(layer.set_renorm_mean({1, 1, 1}), "renorm_mean exists only with renorm=true");
  EXPECT_ERROR(layer.set_renorm_stddev({1, 1, 1}), "renorm_stddev exists only with renorm=true");
}

// ---------------------------------------------------------------------------
// Validation errors.

TEST(BatchNormTest, MomentumMustBeInUnitInterval) {
  Options o;
  o.momentum = std::nanf("");
  EXPECT_ERROR(BatchNorm{o}, "momentum is nan; expected a value in [0, 1]");
  o.momentum = -0.1f;
  EXPECT_ERROR(BatchNorm{o}, "momentum is -0.1; expected a value in [0, 1]");
  o.momentum = 1.5f;
  EXPECT_ERROR(BatchNorm{o}, "momentum is 1.5; expected a value in [0, 1]");
  o.momentum = 0.0f;
  EXPECT_NO_THROW(BatchNorm{o});
  o.momentum = 1.0f;
  EXPECT_NO_THROW(BatchNorm{o});
}

TEST(BatchNormTest, RenormMomentumMustBeInUnitInterval) {
  Options o;
  o.renorm = true;
  o.renorm_momentum = 1.01f;
  EXPECT_ERROR(BatchNorm{o}, "renorm_momentum is 1.01; expected a value in [0, 1]");
  o.renorm_momentum = std::nanf("");
  EXPECT_ERROR(BatchNorm{o}, "renorm_momentum is nan; expected a value in [0, 1]");
}

TEST(BatchNormTest, EpsilonMustBeFinitePositive) {
  Options o;
  o.epsilon = 0.0f;
  EXPECT_ERROR(BatchNorm{o}, "epsilon is 0; expected a finite value > 0");
  o.epsilon = -1e-3f;
  EXPECT_ERROR(BatchNorm{o}, "epsilon is -0.001; expected a finite value > 0");
  o.epsilon = std::numeric_limits<float>::infinity();
  EXPECT_ERROR(BatchNorm{o}, "epsilon is inf; expected a finite value > 0");
  o.epsilon = std::nanf("");
  EXPECT_ERROR(BatchNorm{o}, "epsilon is nan; expected a finite value > 0");
}

TEST(BatchNormTest, VirtualBatchSizeMustBePositive) {
  // TensorFlow's testGhostBNNegativeVirtualBatch.
  Options o;
  o.virtual_batch_size = -1;
  EXPECT_ERROR(BatchNorm{o}, "virtual_batch_size is -1; expected a value > 0");
  o.virtual_batch_size = 0;
  EXPECT_ERROR(BatchNorm{o}, "virtual_batch_size is 0; expected a value > 0");
}

TEST(BatchNormTest, AdjustmentWithVirtualBatchIsAnError) {
  Options o;
  o.virtual_batch_size = 2;
  o.adjustment = [](const Shape&, float*, float*) {};
  EXPECT_ERROR(BatchNorm{o},
               "adjustment is set together with virtual_batch_size 2; Keras does not allow an "
               "adjustment with ghost batches");
}

TEST(BatchNormTest, FusedTrueRejectsWhatTheKernelLacks) {
  // tf-keras test_v2_fused_attribute's errors.
  Options o;
  o.fused = Fused::kTrue;
  Options renorm = o;
  renorm.renorm = true;
  EXPECT_ERROR(BatchNorm{renorm}, "fused is kTrue together with renorm; expected renorm=false");
  Options ghost = o;
  ghost.virtual_batch_size = 2;
  EXPECT_ERROR(BatchNorm{ghost},
               "fused is kTrue together with virtual_batch_size 2; expected no virtual_batch_size");
  Options adjusted = o;
  adjusted.adjustment = [](const Shape&, float*, float*) {};
  EXPECT_ERROR(BatchNorm{adjusted},
               "fused is kTrue together with an adjustment; expected no adjustment");
  Options multi = o;
  multi.axis = {1, 3};
  EXPECT_ERROR(
      BatchNorm{multi},
      "fused is kTrue with axis [1, 3]; the fused kernel needs a single axis, 1 or the last");
}

TEST(BatchNormTest, FusedTrueRejectsUnsupportedRankOrAxis) {
  Options o;
  o.fused = Fused::kTrue;
  BatchNorm rank3(o);
  EXPECT_ERROR(rank3.Build({2, 4, 4}),
               "fused is kTrue but the input has rank 3; the fused kernel needs rank 4 or 5");
  o.axis = {2};
  BatchNorm axis2(o);
  EXPECT_ERROR(
      axis2.Build({2, 4, 4, 4}),
      "fused is kTrue but axis is [2] for an input of rank 4; the fused kernel needs axis 1 or 3");
  EXPECT_FALSE(axis2.built());
}

TEST(BatchNormTest, RenormClippingRejectsUnknownKeys) {
  EXPECT_ERROR(RenormClipping::FromMap({{"rmax", 2.0f}, {"dmin", 0.0f}}),
               "renorm_clipping has the key 'dmin'; expected only 'rmax', 'rmin' and 'dmax'");
  const RenormClipping clip = RenormClipping::FromMap({{"rmin", 0.5f}});
  EXPECT_EQ(clip.rmin, 0.5f);
  EXPECT_FALSE(clip.rmax.has_value());
  EXPECT_FALSE(clip.dmax.has_value());
}

TEST(BatchNormTest, RenormClippingRejectsInvalidValues) {
  Options o;
  o.renorm = true;
  o.renorm_clipping = RenormClipping::FromMap({{"rmin", 2.0f}, {"rmax", 1.0f}});
  EXPECT_ERROR(BatchNorm{o}, "renorm_clipping['rmin'] is 2, above rmax 1; expected rmin <= rmax");
  o.renorm_clipping = RenormClipping::FromMap({{"dmax", -1.0f}});
  EXPECT_ERROR(
      BatchNorm{o},
      "renorm_clipping['dmax'] is -1; expected a value >= 0 (d is clipped to [-dmax, dmax])");
  o.renorm_clipping = RenormClipping::FromMap({{"rmax", std::nanf("")}});
  EXPECT_ERROR(BatchNorm{o}, "renorm_clipping['rmax'] is nan; expected a number");
}

TEST(BatchNormTest, AxisOutOfRangeIsAnError) {
  Options o;
  o.axis = {4};
  BatchNorm layer(o);
  EXPECT_ERROR(layer.Build({2, 3, 4, 5}),
               "axis 4 is out of range for an input of rank 4 (valid: -4..3)");
  o.axis = {-5};
  BatchNorm negative(o);
  EXPECT_ERROR_HAS(negative.Build({2, 3, 4, 5}), "axis -5 is out of range");
}

TEST(BatchNormTest, DuplicateAxisIsAnError) {
  Options o;
  o.axis = {1, -3};
  BatchNorm layer(o);
  EXPECT_ERROR_HAS(layer.Build({2, 3, 4, 5}), "axis -3 is duplicated");
}

TEST(BatchNormTest, EmptyAxisIsAnError) {
  Options o;
  o.axis = {};
  EXPECT_ERROR(BatchNorm{o}, "axis is an empty list; expected at least one axis");
}

TEST(BatchNormTest, LaterInputsMustMatchRankAndFeatures) {
  BatchNorm layer(Options{});
  layer.Build({2, 3});
  std::vector<float> x(24), y(24);
  EXPECT_ERROR(layer.Forward(x.data(), y.data(), {2, 3, 4}, true),
               "shape [2, 3, 4] has rank 3; the layer was built for rank 2");
  EXPECT_ERROR(layer.Forward(x.data(), y.data(), {2, 4}, true),
               "shape[1] is 4; the layer was built with size 3 on feature axis 1");
  EXPECT_ERROR(layer.Build({5, 4}),
               "shape[1] is 4; the layer was built with size 3 on feature axis 1");
  EXPECT_ERROR(layer.Forward(x.data(), y.data(), {-1, 3}, true),
               "shape[0] is -1; expected a size >= 0");
  EXPECT_ERROR(layer.Forward(x.data(), y.data(), {std::numeric_limits<int64_t>::max(), 3}, true),
               "shape [9223372036854775807, 3] has more elements than fit in size_t");
  layer.Forward(x.data(), y.data(), {8, 3}, true);  // another batch size is fine
  BatchNorm scalar(Options{});
  EXPECT_ERROR(scalar.Build({}), "input rank is 0; expected a tensor of rank >= 1");
}

TEST(BatchNormTest, NullPointersAreAnError) {
  BatchNorm layer(Options{});
  float y[3];
  EXPECT_ERROR(layer.Forward(nullptr, y, {1, 3}, true), "x is null for a shape of 3 elements");
}

TEST(BatchNormTest, Float16ForwardRejectsFloat32DType) {
  BatchNorm layer(Options{});
  uint16_t x[3] = {}, y[3];
  EXPECT_ERROR(layer.Forward(x, y, DType::kFloat32, {1, 3}, true),
               "dtype is float32 for 16-bit data; expected float16 or bfloat16");
}

}  // namespace
}  // namespace bnorm
