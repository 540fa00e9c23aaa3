// SPDX-License-Identifier: Apache-2.0
// Inference folding: Fold gives the double formula rounded once, and
// FoldIntoWeights makes a dense or convolution layer compute bn(layer(x)) by
// itself, in both weight layouts. (Bad arguments are rules of the bad-input
// matrix, bad_input_test.cc.)
#include "bnorm/fold.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "tests/test_util.h"

namespace bnorm {
namespace {

constexpr float kEpsilon = 1e-3f;
// conv'(x) against bn(conv(x)), relative to the magnitude of the sum's terms
// (the float weights round each term by 2^-24; cancellation must not count).
constexpr double kTolerance = 1e-5;

// A frozen batch norm over `channels` channels.
struct FrozenBatchNorm {
  explicit FrozenBatchNorm(size_t channels)
      : gamma(test::Uniform(channels, 0.2, 3.0, 1)),
        beta(test::Uniform(channels, -2.0, 2.0, 2)),
        mean(test::Uniform(channels, -5.0, 5.0, 3)),
        variance(test::Uniform(channels, 0.0, 4.0, 4)) {}

  // bn(v) in double for channel c.
  double Apply(double v, size_t c) const {
    return (v - mean[c]) * gamma[c] / std::sqrt(static_cast<double>(variance[c]) + kEpsilon) +
           beta[c];
  }

  std::vector<float> gamma, beta, mean, variance;
};

// One output of a layer in double: its terms' products and the bias.
struct Output {
  double value = 0.0;
  double magnitude = 0.0;  // sum of |terms| + |bias|
  void Add(double w, double x) {
    value += w * x;
    magnitude += std::fabs(w * x);
  }
  void AddBias(double b) {
    value += b;
    magnitude += std::fabs(b);
  }
};

void ExpectFolded(const Output& folded, double expected, double magnitude, const char* what) {
  EXPECT_NEAR(folded.value, expected, kTolerance * std::max(magnitude, folded.magnitude)) << what;
}

// ---- Fold ----------------------------------------------------------------------

TEST(Fold, IsTheDoubleFormulaRoundedOnce) {
  const size_t C = 67;
  const FrozenBatchNorm bn(C);
  std::vector<float> scale(C), shift(C);
  Fold(bn.gamma.data(), bn.beta.data(), bn.mean.data(), bn.variance.data(), C, kEpsilon,
       scale.data(), shift.data());
  for (size_t c = 0; c < C; ++c) {
    const double expected = static_cast<double>(bn.gamma[c]) /
                            std::sqrt(static_cast<double>(bn.variance[c]) + kEpsilon);
    EXPECT_EQ(scale[c], static_cast<float>(expected)) << c;
    EXPECT_EQ(shift[c], bn.beta[c]) << c;
  }
}

TEST(Fold, NullGammaAndBetaMeanScaleAndCenterOff) {
  const size_t C = 5;
  const FrozenBatchNorm bn(C);
  std::vector<float> scale(C), shift(C, 9.0f);
  Fold(nullptr, nullptr, bn.mean.data(), bn.variance.data(), C, kEpsilon, scale.data(),
       shift.data());
  for (size_t c = 0; c < C; ++c) {
    EXPECT_EQ(scale[c],
              static_cast<float>(1.0 / std::sqrt(static_cast<double>(bn.variance[c]) + kEpsilon)));
    EXPECT_EQ(shift[c], 0.0f);
  }
}

TEST(Fold, ZeroVarianceScalesByOneOverSqrtEpsilon) {
  const float gamma = 2.0f, beta = 1.0f, mean = 3.0f, variance = 0.0f;
  float scale = 0.0f, shift = 0.0f;
  Fold(&gamma, &beta, &mean, &variance, 1, kEpsilon, &scale, &shift);
  EXPECT_EQ(scale, static_cast<float>(2.0 / std::sqrt(static_cast<double>(kEpsilon))));
}

// ---- FoldIntoWeights: dense layers ----------------------------------------------

// y[b][o] = sum_i W[o][i] x[b][i] + bias[o], with W [out, in] or [in, out].
Output Dense(const std::vector<float>& w, const std::vector<float>& bias, WeightLayout layout,
             size_t in, size_t out, const float* x, size_t o) {
  Output y;
  for (size_t i = 0; i < in; ++i) {
    y.Add(w[layout == WeightLayout::kOutputFirst ? o * in + i : i * out + o], x[i]);
  }
  y.AddBias(bias[o]);
  return y;
}

void CheckDense(WeightLayout layout, bool affine) {
  const size_t in = 19, out = 7, batch = 5;
  const FrozenBatchNorm bn(out);
  const std::vector<float> w = test::Uniform(in * out, -1.0, 1.0, 5),
                           bias = test::Uniform(out, -1.0, 1.0, 6);
  const std::vector<float> x = test::Uniform(batch * in, -3.0, 3.0, 7);
  std::vector<float> folded_w = w, folded_bias = bias;
  const std::vector<int64_t> shape = layout == WeightLayout::kOutputFirst
                                         ? std::vector<int64_t>{7, 19}
                                         : std::vector<int64_t>{19, 7};
  FrozenBatchNorm used = bn;
  if (!affine) {
    used.gamma.assign(out, 1.0f);
    used.beta.assign(out, 0.0f);
  }
  FoldIntoWeights(folded_w.data(), shape, layout, folded_bias.data(),
                  affine ? bn.gamma.data() : nullptr, affine ? bn.beta.data() : nullptr,
                  bn.mean.data(), bn.variance.data(), out, kEpsilon);
  for (size_t b = 0; b < batch; ++b) {
    for (size_t o = 0; o < out; ++o) {
      const Output y = Dense(w, bias, layout, in, out, &x[b * in], o);
      const double s = std::fabs(used.Apply(1.0, o) - used.Apply(0.0, o));
      ExpectFolded(Dense(folded_w, folded_bias, layout, in, out, &x[b * in], o),
                   used.Apply(y.value, o), y.magnitude * s, "dense");
    }
  }
}

TEST(FoldIntoWeights, DenseOutputFirst) { CheckDense(WeightLayout::kOutputFirst, true); }
TEST(FoldIntoWeights, DenseOutputLast) { CheckDense(WeightLayout::kOutputLast, true); }
TEST(FoldIntoWeights, DenseWithoutScaleAndCenter) { CheckDense(WeightLayout::kOutputFirst, false); }

// ---- FoldIntoWeights: convolutions ------------------------------------------------

constexpr size_t kIn = 3, kOut = 4, kKh = 3, kKw = 2, kH = 6, kW = 7;
constexpr size_t kOh = kH - kKh + 1, kOw = kW - kKw + 1;  // "valid", stride 1

// OIHW weights over an NCHW image (one sample).
Output ConvOihw(const std::vector<float>& w, const std::vector<float>& bias,
                const std::vector<float>& x, size_t o, size_t oh, size_t ow) {
  Output y;
  for (size_t i = 0; i < kIn; ++i) {
    for (size_t kh = 0; kh < kKh; ++kh) {
      for (size_t kw = 0; kw < kKw; ++kw) {
        y.Add(w[((o * kIn + i) * kKh + kh) * kKw + kw], x[(i * kH + oh + kh) * kW + ow + kw]);
      }
    }
  }
  y.AddBias(bias[o]);
  return y;
}

// HWIO weights over an NHWC image (one sample).
Output ConvHwio(const std::vector<float>& w, const std::vector<float>& bias,
                const std::vector<float>& x, size_t o, size_t oh, size_t ow) {
  Output y;
  for (size_t kh = 0; kh < kKh; ++kh) {
    for (size_t kw = 0; kw < kKw; ++kw) {
      for (size_t i = 0; i < kIn; ++i) {
        y.Add(w[((kh * kKw + kw) * kIn + i) * kOut + o], x[((oh + kh) * kW + ow + kw) * kIn + i]);
      }
    }
  }
  y.AddBias(bias[o]);
  return y;
}

void CheckConv(WeightLayout layout) {
  const FrozenBatchNorm bn(kOut);
  const std::vector<float> w = test::Uniform(kOut * kIn * kKh * kKw, -1.0, 1.0, 8);
  const std::vector<float> bias = test::Uniform(kOut, -1.0, 1.0, 9);
  const std::vector<float> x = test::Uniform(kIn * kH * kW, -2.0, 2.0, 10);
  std::vector<float> folded_w = w, folded_bias = bias;
  const bool oihw = layout == WeightLayout::kOutputFirst;
  const std::vector<int64_t> shape =
      oihw ? std::vector<int64_t>{kOut, kIn, kKh, kKw} : std::vector<int64_t>{kKh, kKw, kIn, kOut};
  FoldIntoWeights(folded_w.data(), shape, layout, folded_bias.data(), bn.gamma.data(),
                  bn.beta.data(), bn.mean.data(), bn.variance.data(), kOut, kEpsilon);
  const auto conv = oihw ? ConvOihw : ConvHwio;
  for (size_t o = 0; o < kOut; ++o) {
    const double s = std::fabs(bn.Apply(1.0, o) - bn.Apply(0.0, o));
    for (size_t oh = 0; oh < kOh; ++oh) {
      for (size_t ow = 0; ow < kOw; ++ow) {
        const Output y = conv(w, bias, x, o, oh, ow);
        ExpectFolded(conv(folded_w, folded_bias, x, o, oh, ow), bn.Apply(y.value, o),
                     y.magnitude * s, oihw ? "OIHW" : "HWIO");
      }
    }
  }
}

TEST(FoldIntoWeights, ConvolutionOihw) { CheckConv(WeightLayout::kOutputFirst); }
TEST(FoldIntoWeights, ConvolutionHwio) { CheckConv(WeightLayout::kOutputLast); }

}  // namespace
}  // namespace bnorm
