// SPDX-License-Identifier: Apache-2.0
// The layer on float16 and bfloat16 tensors: the float32 computation on the
// widened input rounded to nearest even, no overflow of the statistics, NaN
// and Inf kept, and learning to normalize in float16.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

#include "bnorm/batch_norm.hpp"
#include "src/ops/half.h"
#include "tests/layer_test_util.h"
#include "tests/test_util.h"

namespace bnorm {
namespace test {
namespace {

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

TEST(Layer16Bit, Float16ForwardMatchesFloat32) {
  Options o;
  Expect16BitForwardMatchesFloat32(DType::kFloat16, o, {16, 4, 4, 3});
  o.axis = {1, 3};
  Expect16BitForwardMatchesFloat32(DType::kFloat16, o, {16, 4, 4, 3});
}

TEST(Layer16Bit, BFloat16ForwardMatchesFloat32) {
  Options o;
  o.axis = {1};
  Expect16BitForwardMatchesFloat32(DType::kBFloat16, o, {8, 3, 5, 5});
  o.virtual_batch_size = 4;
  Expect16BitForwardMatchesFloat32(DType::kBFloat16, o, {8, 3, 5, 5});
}

TEST(Layer16Bit, MixedPrecisionDoesNotOverflow) {
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

TEST(Layer16Bit, Float16PreservesNanAndInf) {
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

TEST(Layer16Bit, LearnsToNormalizeInFloat16) {
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

}  // namespace
}  // namespace test
}  // namespace bnorm
