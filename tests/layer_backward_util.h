// SPDX-License-Identifier: Apache-2.0
// What the layer backward tests share: a Forward and Backward of bnorm::BatchNorm
// beside keras_reference::Backward with the state before the forward, on
// seeded data, with issue 14's bounds: dγ, dβ and the adjustment gradients
// within 1e-6 of max(|reference|, Σ|dy| of the channel), dx within 1e-5 of the
// reference's scale (its largest |dx|).
#ifndef BNORM_TESTS_LAYER_BACKWARD_UTIL_H_
#define BNORM_TESTS_LAYER_BACKWARD_UTIL_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "bnorm/batch_norm.hpp"
#include "src/oracle/keras_reference.h"
#include "tests/test_util.h"

namespace bnorm {
namespace test {

// The data of one case: x ~ N(mean, stddev), dy ~ N(0, 1), and `warmup`
// training forwards on other data before the one differentiated, so that the
// moving and renorm statistics are not their initial values. With
// `from_output` the forward runs in place (y over x) and the gradients come
// from BackwardFromOutput(y).
struct BackwardData {
  uint32_t seed = 1;
  double mean = 0.0;
  double stddev = 1.0;
  int warmup = 1;
  bool from_output = false;
};

// The largest differences seen, relative to the bounds' scales.
struct BackwardErrors {
  double dx = 0.0, parameters = 0.0;
};

// |actual - expected| <= tol * max(|expected|, scale[c]) for every channel c.
inline double ExpectParameterGradient(const std::vector<float>& actual,
                                      const std::vector<double>& expected,
                                      const std::vector<double>& scale, double tol,
                                      const std::string& what) {
  EXPECT_EQ(actual.size(), expected.size()) << what;
  if (actual.size() != expected.size()) return 0.0;
  double worst = 0.0;
  for (size_t c = 0; c < actual.size(); ++c) {
    const double bound = std::max(std::abs(expected[c]), scale[c]);
    const double error = std::abs(static_cast<double>(actual[c]) - expected[c]) / bound;
    worst = std::max(worst, error);
    EXPECT_LE(error, tol) << what << "[" << c << "] = " << actual[c] << ", expected "
                          << expected[c];
  }
  return worst;
}

// Runs the case and compares dx and every gradient the reference defines;
// `dx_tol` is 1e-5 for float32 (the 16-bit tests pass their dtype's rounding).
inline BackwardErrors ExpectBackwardMatchesReference(const Options& options, const Shape& shape,
                                                     std::optional<bool> training,
                                                     const BackwardData& data,
                                                     double dx_tol = 1e-5) {
  BatchNorm layer(options);
  layer.Build(shape);
  const size_t channels = layer.moving_mean().size();
  keras_reference::State state = keras_reference::Initial(options, channels);
  const size_t n = Count(shape);
  std::vector<float> y(n);
  std::vector<double> ref_y(n);
  for (int step = 0; step < data.warmup; ++step) {
    const std::vector<float> warm =
        Normal(n, data.mean + 0.5 * data.stddev, 1.5 * data.stddev, data.seed + 100 + step);
    layer.Forward(warm.data(), y.data(), shape, true);
    keras_reference::Forward(options, shape, warm.data(), true, &state, ref_y.data());
  }
  const std::vector<float> x = Normal(n, data.mean, data.stddev, data.seed);
  const std::vector<float> dy = Normal(n, 0.0, 1.0, data.seed + 1);
  const std::vector<double> dy64(dy.begin(), dy.end());
  const keras_reference::State before = state;
  std::vector<float> dx(n, Sentinel());
  if (data.from_output) {
    y = x;
    layer.Forward(y.data(), y.data(), shape, training);
    layer.BackwardFromOutput(y.data(), dy.data(), dx.data(), shape);
  } else {
    layer.Forward(x.data(), y.data(), shape, training);
    layer.Backward(x.data(), dy.data(), dx.data(), shape);
  }
  const keras_reference::Gradients ref =
      keras_reference::Backward(options, shape, x.data(), dy64.data(), training, before);

  BackwardErrors errors;
  double dx_scale = 0.0;
  for (double v : ref.dx) dx_scale = std::max(dx_scale, std::abs(v));
  for (size_t i = 0; i < n; ++i) {
    const double error = std::abs(dx[i] - ref.dx[i]) / std::max(dx_scale, 1e-30);
    errors.dx = std::max(errors.dx, error);
    EXPECT_LE(error, dx_tol) << "dx[" << i << "] = " << dx[i] << ", expected " << ref.dx[i];
    if (error > dx_tol) break;
  }
  // Σ|dy| per channel: the reference's dβ of |dy| (center on).
  Options sums = options;
  sums.center = true;
  std::vector<double> abs_dy(n);
  for (size_t i = 0; i < n; ++i) abs_dy[i] = std::abs(dy64[i]);
  const std::vector<double> scale =
      keras_reference::Backward(sums, shape, x.data(), abs_dy.data(), training, before).dbeta;
  std::vector<double> gamma_scale(channels);
  for (size_t c = 0; c < channels; ++c) gamma_scale[c] = scale[c] * std::abs(before.gamma[c]);
  const double tol = 1e-6;
  errors.parameters =
      std::max({ExpectParameterGradient(layer.gradient_gamma(), ref.dgamma, scale, tol, "dgamma"),
                ExpectParameterGradient(layer.gradient_beta(), ref.dbeta, scale, tol, "dbeta"),
                ExpectParameterGradient(layer.gradient_adjustment_scale(), ref.dadjustment_scale,
                                        gamma_scale, tol, "d_adjustment_scale"),
                ExpectParameterGradient(layer.gradient_adjustment_bias(), ref.dadjustment_bias,
                                        gamma_scale, tol, "d_adjustment_bias")});
  // The largest errors, for the record (relative to the bounds' scales).
  std::printf("[  errors  ] dx %.3g, parameter gradients %.3g\n", errors.dx, errors.parameters);
  return errors;
}

}  // namespace test
}  // namespace bnorm

#endif  // BNORM_TESTS_LAYER_BACKWARD_UTIL_H_
