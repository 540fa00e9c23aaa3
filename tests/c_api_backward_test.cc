// SPDX-License-Identifier: Apache-2.0
// The C ABI's backward: bnorm_layer_backward and bnorm_layer_get_gradient give
// the C++ layer's results bit for bit, bnorm_backward_reduce and
// bnorm_backward_data the engine operations', and every bad argument is a
// status with nothing written.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "bnorm/backward.hpp"
#include "bnorm/batch_norm.hpp"
#include "bnorm/bnorm.h"
#include "bnorm/geometry.hpp"
#include "bnorm/kernels.hpp"
#include "src/ops/half.h"
#include "tests/test_util.h"

namespace bnorm {
namespace test {
namespace {

// A C layer with the default options but `axis`, freed at scope exit.
class CLayer {
 public:
  explicit CLayer(int axis, int scale = 1) {
    bnorm_options o;
    EXPECT_EQ(bnorm_options_init(&o), BNORM_STATUS_OK);
    o.axes[0] = axis;
    o.scale = scale;
    EXPECT_EQ(bnorm_layer_create(&o, &layer_), BNORM_STATUS_OK);
  }
  ~CLayer() { bnorm_layer_destroy(layer_); }
  CLayer(const CLayer&) = delete;
  CLayer& operator=(const CLayer&) = delete;
  bnorm_layer* get() { return layer_; }

 private:
  bnorm_layer* layer_ = nullptr;
};

std::vector<float> Gradient(bnorm_layer* layer, bnorm_gradient which, size_t count) {
  std::vector<float> values(count);
  EXPECT_EQ(bnorm_layer_get_gradient(layer, which, values.data(), count), BNORM_STATUS_OK)
      << bnorm_last_error();
  return values;
}

TEST(CApiBackward, LayerBackwardIsTheCppLayers) {
  for (int axis : {-1, 1}) {
    const Shape shape{4, 6, 5, 7};
    const size_t n = Count(shape), C = axis == 1 ? 6 : 7;
    const std::vector<float> x = Normal(n, 2.0, 3.0, 50), dy = Normal(n, 0.0, 1.0, 51);
    std::vector<float> y(n), dx(n), expected_dx(n);
    CLayer c(axis);
    ASSERT_EQ(bnorm_layer_forward(c.get(), x.data(), y.data(), BNORM_DTYPE_F32, shape.data(),
                                  shape.size(), 1),
              BNORM_STATUS_OK);
    ASSERT_EQ(bnorm_layer_backward(c.get(), x.data(), dy.data(), dx.data(), BNORM_DTYPE_F32,
                                   shape.data(), shape.size()),
              BNORM_STATUS_OK)
        << bnorm_last_error();
    Options o;
    o.axis = {axis};
    BatchNorm cpp(o);
    cpp.Forward(x.data(), y.data(), shape, true);
    cpp.Backward(x.data(), dy.data(), expected_dx.data(), shape);
    EXPECT_TRUE(SameBits(dx, expected_dx));
    EXPECT_TRUE(SameBits(Gradient(c.get(), BNORM_GRADIENT_GAMMA, C), cpp.gradient_gamma()));
    EXPECT_TRUE(SameBits(Gradient(c.get(), BNORM_GRADIENT_BETA, C), cpp.gradient_beta()));
  }
}

TEST(CApiBackward, LayerBackwardFromOutputIsTheCppLayers) {
  const Shape shape{9, 5};
  const std::vector<float> x = Normal(45, 1.0, 2.0, 64), dy = Normal(45, 0.0, 1.0, 65);
  std::vector<float> y = x, expected_y = x, dx(45), expected_dx(45);
  CLayer c(-1);
  ASSERT_EQ(bnorm_layer_forward(c.get(), y.data(), y.data(), BNORM_DTYPE_F32, shape.data(), 2, 1),
            BNORM_STATUS_OK);
  ASSERT_EQ(bnorm_layer_backward_from_output(c.get(), y.data(), dy.data(), dx.data(),
                                             BNORM_DTYPE_F32, shape.data(), 2),
            BNORM_STATUS_OK)
      << bnorm_last_error();
  BatchNorm cpp{Options()};
  cpp.Forward(expected_y.data(), expected_y.data(), shape, true);
  cpp.BackwardFromOutput(expected_y.data(), dy.data(), expected_dx.data(), shape);
  EXPECT_TRUE(SameBits(dx, expected_dx));
  EXPECT_TRUE(SameBits(Gradient(c.get(), BNORM_GRADIENT_GAMMA, 5), cpp.gradient_gamma()));
  // gamma 0 on a channel: y cannot give x back.
  const std::vector<float> gamma = {1.0f, 0.0f, 1.0f, 1.0f, 1.0f};
  ASSERT_EQ(bnorm_layer_set_state(c.get(), BNORM_STATE_GAMMA, gamma.data(), 5), BNORM_STATUS_OK);
  ASSERT_EQ(bnorm_layer_forward(c.get(), y.data(), y.data(), BNORM_DTYPE_F32, shape.data(), 2, 1),
            BNORM_STATUS_OK);
  std::vector<float> untouched(45, Sentinel());
  EXPECT_EQ(bnorm_layer_backward_from_output(c.get(), y.data(), dy.data(), untouched.data(),
                                             BNORM_DTYPE_F32, shape.data(), 2),
            BNORM_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(bnorm_last_error()).find("channel 1"), std::string::npos);
  EXPECT_EQ(bnorm_layer_backward_from_output(c.get(), nullptr, dy.data(), untouched.data(),
                                             BNORM_DTYPE_F32, shape.data(), 2),
            BNORM_STATUS_NULL_POINTER);
  EXPECT_NE(std::string(bnorm_last_error()).find("y is null"), std::string::npos);
  for (float v : untouched) ASSERT_TRUE(IsSentinel(v));
}

TEST(CApiBackward, LayerBackwardOf16BitData) {
  const Shape shape{8, 5};
  const std::vector<float> wide_x = Normal(40, 1.0, 2.0, 52), wide_dy = Normal(40, 0.0, 1.0, 63);
  std::vector<uint16_t> x(40), dy(40), y(40), dx(40), expected_dx(40);
  NarrowFromFloat(wide_x.data(), DType::kBFloat16, 40, x.data());
  NarrowFromFloat(wide_dy.data(), DType::kBFloat16, 40, dy.data());
  CLayer c(-1);
  ASSERT_EQ(bnorm_layer_forward(c.get(), x.data(), y.data(), BNORM_DTYPE_BF16, shape.data(), 2, 1),
            BNORM_STATUS_OK);
  ASSERT_EQ(bnorm_layer_backward(c.get(), x.data(), dy.data(), dx.data(), BNORM_DTYPE_BF16,
                                 shape.data(), 2),
            BNORM_STATUS_OK)
      << bnorm_last_error();
  BatchNorm cpp{Options()};
  cpp.Forward(x.data(), y.data(), DType::kBFloat16, shape, true);
  cpp.Backward(x.data(), dy.data(), expected_dx.data(), DType::kBFloat16, shape);
  EXPECT_TRUE(SameBits(dx, expected_dx));
  EXPECT_TRUE(SameBits(Gradient(c.get(), BNORM_GRADIENT_BETA, 5), cpp.gradient_beta()));
}

TEST(CApiBackward, LayerBackwardRejectsBadArguments) {
  const Shape shape{6, 4}, other{3, 4};
  const std::vector<float> x = Normal(24, 0.0, 1.0, 53), dy = Normal(24, 0.0, 1.0, 54);
  std::vector<float> y(24), dx(48, Sentinel());
  CLayer c(-1);
  const auto backward = [&](const void* in, const void* grad, void* out, bnorm_dtype dtype,
                            const Shape& s) {
    return bnorm_layer_backward(c.get(), in, grad, out, dtype, s.data(), s.size());
  };
  EXPECT_EQ(backward(x.data(), dy.data(), dx.data(), BNORM_DTYPE_F32, shape),
            BNORM_STATUS_INVALID_ARGUMENT);  // no forward yet
  EXPECT_NE(std::string(bnorm_last_error()).find("Forward"), std::string::npos);
  ASSERT_EQ(bnorm_layer_forward(c.get(), x.data(), y.data(), BNORM_DTYPE_F32, shape.data(), 2, 1),
            BNORM_STATUS_OK);
  EXPECT_EQ(backward(x.data(), nullptr, dx.data(), BNORM_DTYPE_F32, shape),
            BNORM_STATUS_NULL_POINTER);
  EXPECT_EQ(backward(x.data(), dy.data(), dx.data(), static_cast<bnorm_dtype>(7), shape),
            BNORM_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(backward(x.data(), dy.data(), dx.data(), BNORM_DTYPE_F32, other),
            BNORM_STATUS_SHAPE_MISMATCH);
  EXPECT_EQ(bnorm_layer_backward(c.get(), x.data(), dy.data(), dx.data(), BNORM_DTYPE_F32,
                                 shape.data(), 0),
            BNORM_STATUS_INVALID_ARGUMENT);
  std::vector<float> both(48);
  EXPECT_EQ(backward(x.data(), both.data(), both.data() + 2, BNORM_DTYPE_F32, shape),
            BNORM_STATUS_INVALID_ARGUMENT);
  for (float v : dx) ASSERT_TRUE(IsSentinel(v));
  std::vector<float> gradient(4, Sentinel());
  EXPECT_EQ(bnorm_layer_get_gradient(c.get(), BNORM_GRADIENT_BETA, gradient.data(), 4),
            BNORM_STATUS_INVALID_ARGUMENT);  // no backward succeeded yet
  for (float v : gradient) ASSERT_TRUE(IsSentinel(v));
}

TEST(CApiBackward, GetGradientChecksItsArguments) {
  const Shape shape{6, 4};
  const std::vector<float> x = Normal(24, 0.0, 1.0, 55);
  std::vector<float> y(24), dx(24), values(4, Sentinel());
  CLayer c(-1, /*scale=*/0);
  ASSERT_EQ(bnorm_layer_forward(c.get(), x.data(), y.data(), BNORM_DTYPE_F32, shape.data(), 2, 1),
            BNORM_STATUS_OK);
  ASSERT_EQ(bnorm_layer_backward(c.get(), x.data(), x.data(), dx.data(), BNORM_DTYPE_F32,
                                 shape.data(), 2),
            BNORM_STATUS_OK);
  EXPECT_EQ(bnorm_layer_get_gradient(c.get(), BNORM_GRADIENT_GAMMA, values.data(), 4),
            BNORM_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(bnorm_last_error()).find("scale=0"), std::string::npos);
  EXPECT_EQ(bnorm_layer_get_gradient(c.get(), BNORM_GRADIENT_BETA, values.data(), 3),
            BNORM_STATUS_SHAPE_MISMATCH);
  EXPECT_EQ(bnorm_layer_get_gradient(c.get(), static_cast<bnorm_gradient>(9), values.data(), 4),
            BNORM_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(bnorm_layer_get_gradient(c.get(), BNORM_GRADIENT_BETA, nullptr, 4),
            BNORM_STATUS_NULL_POINTER);
  for (float v : values) ASSERT_TRUE(IsSentinel(v));
  EXPECT_EQ(bnorm_layer_get_gradient(nullptr, BNORM_GRADIENT_BETA, values.data(), 4),
            BNORM_STATUS_NULL_POINTER);
}

// The engine passes on a tensor of `shape` with one feature axis, beside
// bnorm::BackwardReduce / BackwardData on its geometry.
struct EngineCase {
  Shape shape;
  int axis;
  bnorm_activation activation;
};

TEST(CApiBackward, EnginePassesAreTheCppOperations) {
  const EngineCase cases[] = {{{5, 9, 3}, -1, BNORM_ACTIVATION_NONE},
                              {{3, 7, 11}, 1, BNORM_ACTIVATION_RELU},
                              {{4, 6}, -1, BNORM_ACTIVATION_RELU6},
                              {{0, 6}, -1, BNORM_ACTIVATION_NONE}};
  for (const EngineCase& c : cases) {
    const Geometry g = PlanGeometry(c.shape, {c.axis});
    // Pointers are required even with no elements: the empty case gets one value.
    const size_t n = g.elements(), C = g.channels, values = std::max<size_t>(n, 1);
    const std::vector<float> x = Normal(values, 1e3, 1.0, 56), dy = Normal(values, 0.0, 1.0, 57),
                             y = Normal(values, 1.0, 4.0, 58);
    std::vector<float> hi(C), lo(C);
    for (size_t ch = 0; ch < C; ++ch) SplitMean(1e3 + 0.1 * ch + 1e-5, &hi[ch], &lo[ch]);
    const std::vector<float> k = Uniform(C, 0.5, 2.0, 59), a = Uniform(C, -1.0, 1.0, 60),
                             b = Uniform(C, -1.0, 1.0, 61);
    const Activation act = static_cast<Activation>(static_cast<int>(c.activation));
    std::vector<double> s1(C, -1.0), s2(C, -1.0), e1(C), e2(C);
    ASSERT_EQ(bnorm_backward_reduce(x.data(), dy.data(), y.data(), BNORM_DTYPE_F32, c.shape.data(),
                                    c.shape.size(), &c.axis, 1, hi.data(), lo.data(), s1.data(),
                                    s2.data(), C, c.activation),
              BNORM_STATUS_OK)
        << bnorm_last_error();
    BackwardReduce(x.data(), dy.data(), DType::kFloat32, g, {hi.data(), lo.data(), act, y.data()},
                   e1.data(), e2.data());
    EXPECT_TRUE(SameBits(s1, e1));
    EXPECT_TRUE(SameBits(s2, e2));
    std::vector<float> dx(values), expected(values);
    ASSERT_EQ(bnorm_backward_data(x.data(), dy.data(), y.data(), dx.data(), BNORM_DTYPE_F32,
                                  c.shape.data(), c.shape.size(), &c.axis, 1, hi.data(), lo.data(),
                                  k.data(), a.data(), b.data(), C, c.activation),
              BNORM_STATUS_OK)
        << bnorm_last_error();
    BackwardData(x.data(), dy.data(), expected.data(), DType::kFloat32, g,
                 {hi.data(), lo.data(), k.data(), a.data(), b.data(), act, y.data()});
    EXPECT_TRUE(SameBits(dx, expected));
  }
}

TEST(CApiBackward, EnginePassesRejectBadArguments) {
  const Shape shape{4, 6};
  const int axis = -1, apart[] = {0, 2};
  const Shape rank3{2, 3, 4};
  const std::vector<float> x = Normal(24, 0.0, 1.0, 62), coefficients(6, 1.0f);
  const float* p = coefficients.data();
  std::vector<double> s1(6, 7.0), s2(6, 7.0);
  const auto reduce = [&](const Shape& s, const int* axes, size_t num_axes, const void* y,
                          size_t channels, bnorm_activation activation) {
    return bnorm_backward_reduce(x.data(), x.data(), y, BNORM_DTYPE_F32, s.data(), s.size(), axes,
                                 num_axes, p, p, s1.data(), s2.data(), channels, activation);
  };
  EXPECT_EQ(reduce(shape, &axis, 1, nullptr, 5, BNORM_ACTIVATION_NONE),
            BNORM_STATUS_SHAPE_MISMATCH);
  EXPECT_EQ(reduce(shape, &axis, 1, nullptr, 6, BNORM_ACTIVATION_RELU), BNORM_STATUS_NULL_POINTER);
  EXPECT_EQ(reduce(shape, &axis, 1, nullptr, 6, static_cast<bnorm_activation>(5)),
            BNORM_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(reduce(rank3, apart, 2, nullptr, 8, BNORM_ACTIVATION_NONE), BNORM_STATUS_UNSUPPORTED);
  EXPECT_EQ(
      bnorm_backward_reduce(x.data(), x.data(), nullptr, BNORM_DTYPE_F32, shape.data(), 2, &axis, 1,
                            p, nullptr, s1.data(), s2.data(), 6, BNORM_ACTIVATION_NONE),
      BNORM_STATUS_NULL_POINTER);
  EXPECT_EQ(s1, std::vector<double>(6, 7.0));
  EXPECT_EQ(s2, std::vector<double>(6, 7.0));

  std::vector<float> dx(48, Sentinel());
  const auto data = [&](const void* dy, void* out, size_t channels) {
    return bnorm_backward_data(x.data(), dy, nullptr, out, BNORM_DTYPE_F32, shape.data(), 2, &axis,
                               1, p, p, p, p, p, channels, BNORM_ACTIVATION_NONE);
  };
  EXPECT_EQ(data(x.data(), dx.data(), 4), BNORM_STATUS_SHAPE_MISMATCH);
  EXPECT_EQ(data(dx.data(), dx.data() + 1, 6), BNORM_STATUS_INVALID_ARGUMENT);  // partial overlap
  EXPECT_EQ(data(nullptr, dx.data(), 6), BNORM_STATUS_NULL_POINTER);
  EXPECT_EQ(
      bnorm_backward_data(x.data(), x.data(), nullptr, dx.data(), BNORM_DTYPE_F32, shape.data(), 2,
                          &axis, 1, p, p, nullptr, p, p, 6, BNORM_ACTIVATION_NONE),
      BNORM_STATUS_NULL_POINTER);
  for (float v : dx) ASSERT_TRUE(IsSentinel(v));
}

}  // namespace
}  // namespace test
}  // namespace bnorm
