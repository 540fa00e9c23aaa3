// SPDX-License-Identifier: Apache-2.0
// What the layer tests share: element-wise closeness, and running a BatchNorm
// and the float64 Keras reference (src/oracle/keras_reference.h) side by side on
// seeded data, comparing outputs and state after every call.
#ifndef BNORM_TESTS_LAYER_TEST_UTIL_H_
#define BNORM_TESTS_LAYER_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bnorm/batch_norm.hpp"
#include "src/oracle/keras_reference.h"
#include "tests/test_util.h"

namespace bnorm {
namespace test {

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

inline void ExpectStateClose(const BatchNorm& layer, const keras_reference::State& s, double tol) {
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
// seeded N(mean, stddev) data, comparing outputs and state after every call.
inline void ExpectMatchesReference(const Options& options, const Shape& shape,
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

// Training, training, inference, unset (inference), training.
inline const std::vector<std::optional<bool>> kSteps = {true, true, false, std::nullopt, true};

}  // namespace test
}  // namespace bnorm

#endif  // BNORM_TESTS_LAYER_TEST_UTIL_H_
