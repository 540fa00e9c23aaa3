// SPDX-License-Identifier: Apache-2.0
// The C ABI's low-level calls (bnorm.h): bnorm_moments, bnorm_normalize,
// bnorm_fold and bnorm_fold_into_weights equal the C++ calls they wrap bit for
// bit, for every dtype and layout; a rejected call is a status naming the
// argument and writes nothing.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "bnorm/bnorm.h"
#include "bnorm/fold.hpp"
#include "bnorm/geometry.hpp"
#include "bnorm/kernels.hpp"
#include "tests/c_api_test_util.h"
#include "tests/test_util.h"

namespace bnorm {
namespace test {
namespace {

struct Tensor {
  std::vector<int64_t> shape;
  std::vector<int> axes;
};

const Tensor kTensors[] = {
    {{3, 5, 7, 6}, {-1}},    // NHWC
    {{3, 6, 5, 7}, {1}},     // NCHW
    {{3, 4, 5, 7}, {1, 2}},  // two feature axes, channels-first
    {{1000, 3}, {1}},        // dense
    {{2, 3, 1031}, {0, 1}},  // long runs
};

TEST(CApi, MomentsEqualBatchMomentsBitwise) {
  for (const Tensor& t : kTensors) {
    for (bnorm_dtype dtype : {BNORM_DTYPE_F32, BNORM_DTYPE_F16, BNORM_DTYPE_BF16}) {
      const Geometry g = PlanGeometry(t.shape, t.axes);
      const std::vector<float> values = Uniform(Count(t.shape), 90.0, 110.0, 21);
      const std::vector<uint16_t> bits = ToBits(values, dtype);
      const void* x = dtype == BNORM_DTYPE_F32 ? static_cast<const void*>(values.data())
                                               : static_cast<const void*>(bits.data());
      std::vector<double> mean(g.channels), var(g.channels), cpp_mean(g.channels),
          cpp_var(g.channels);
      ASSERT_EQ(bnorm_moments(x, dtype, t.shape.data(), t.shape.size(), t.axes.data(),
                              t.axes.size(), mean.data(), var.data(), g.channels),
                BNORM_STATUS_OK)
          << bnorm_last_error();
      BatchMoments(x, ToCpp(dtype), g, cpp_mean.data(), cpp_var.data());
      EXPECT_TRUE(SameBits(mean, cpp_mean));
      EXPECT_TRUE(SameBits(var, cpp_var));
    }
  }
}

TEST(CApi, MomentsRejectBadArgumentsAndWriteNothing) {
  const int64_t shape[9] = {4, 3, 5, 1, 1, 1, 1, 1, 1};
  const int axis = 1, two_axes[] = {0, 2};
  const std::vector<float> x = Uniform(60, -3.0, 3.0, 8);
  std::vector<double> mean(8, 1.5), var(8, 2.5);
  const auto before_mean = mean, before_var = var;
  const auto f32 = BNORM_DTYPE_F32;
  const float* px = x.data();
  double *m = mean.data(), *v = var.data();

  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, bnorm_moments(nullptr, f32, shape, 3, &axis, 1, m, v, 3),
                "x is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, bnorm_moments(px, f32, nullptr, 3, &axis, 1, m, v, 3),
                "shape is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, bnorm_moments(px, f32, shape, 3, nullptr, 1, m, v, 3),
                "axes is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER,
                bnorm_moments(px, f32, shape, 3, &axis, 1, nullptr, v, 3), "mean is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER,
                bnorm_moments(px, f32, shape, 3, &axis, 1, m, nullptr, 3), "variance is null");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                bnorm_moments(px, static_cast<bnorm_dtype>(5), shape, 3, &axis, 1, m, v, 3),
                "dtype is 5");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, bnorm_moments(px, f32, shape, 0, &axis, 1, m, v, 3),
                "rank is 0");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, bnorm_moments(px, f32, shape, 9, &axis, 1, m, v, 3),
                "rank is 9");
  EXPECT_STATUS(BNORM_STATUS_SHAPE_MISMATCH, bnorm_moments(px, f32, shape, 3, &axis, 1, m, v, 4),
                "channels is 4");
  // The C++ planning and moments rules (the bad-input matrix), one per status.
  const int64_t huge[] = {kHuge, 3, kHuge};
  EXPECT_STATUS(BNORM_STATUS_OVERFLOW, bnorm_moments(px, f32, huge, 3, &axis, 1, m, v, 3),
                "size_t");
  EXPECT_STATUS(BNORM_STATUS_UNSUPPORTED, bnorm_moments(px, f32, shape, 3, two_axes, 2, m, v, 20),
                "not contiguous");
  const int out_of_range = 3;
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                bnorm_moments(px, f32, shape, 3, &out_of_range, 1, m, v, 3),
                "axis 3 is out of range");
  EXPECT_TRUE(SameBits(mean, before_mean));
  EXPECT_TRUE(SameBits(var, before_var));
}

TEST(CApi, FoldEqualsTheCppFoldBitwise) {
  const size_t C = 37;
  const std::vector<float> gamma = Uniform(C, 0.1, 2.0, 1), beta = Uniform(C, -3.0, 3.0, 2),
                           mean = Uniform(C, -3.0, 3.0, 3), var = Uniform(C, 0.0, 5.0, 4);
  for (bool with_affine : {true, false}) {
    const float* g = with_affine ? gamma.data() : nullptr;
    const float* b = with_affine ? beta.data() : nullptr;
    std::vector<float> scale(C), shift(C), cpp_scale(C), cpp_shift(C);
    ASSERT_EQ(bnorm_fold(g, b, mean.data(), var.data(), C, 1e-3f, scale.data(), shift.data()),
              BNORM_STATUS_OK);
    Fold(g, b, mean.data(), var.data(), C, 1e-3f, cpp_scale.data(), cpp_shift.data());
    EXPECT_TRUE(SameBits(scale, cpp_scale));
    EXPECT_TRUE(SameBits(shift, cpp_shift));
  }
}

TEST(CApi, FoldRejectsBadArgumentsAndWritesNothing) {
  const std::vector<float> gamma(4, 1.0f), beta(4, 0.0f), mean(4, 0.5f), var(4, 2.0f);
  std::vector<float> scale(4, 9.0f), shift(4, 9.0f);
  const float *g = gamma.data(), *b = beta.data(), *m = mean.data(), *v = var.data();
  float *s = scale.data(), *t = shift.data();
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, bnorm_fold(g, b, nullptr, v, 4, 1e-3f, s, t),
                "moving_mean is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, bnorm_fold(g, b, m, nullptr, 4, 1e-3f, s, t),
                "moving_variance is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, bnorm_fold(g, b, m, v, 4, 1e-3f, nullptr, t),
                "scale is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, bnorm_fold(g, b, m, v, 4, 1e-3f, s, nullptr),
                "shift is null");
  // A rule of Fold (the bad-input matrix has them all) comes back as its status.
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, bnorm_fold(g, b, m, v, 0, 1e-3f, s, t),
                "channels is 0");
  EXPECT_TRUE(SameBits(scale, std::vector<float>(4, 9.0f)));
  EXPECT_TRUE(SameBits(shift, std::vector<float>(4, 9.0f)));
}

TEST(CApi, NormalizeEqualsTheCppNormalizeBitwise) {
  for (const Tensor& t : kTensors) {
    const Geometry g = PlanGeometry(t.shape, t.axes);
    const size_t n = Count(t.shape);
    const std::vector<float> mean = Uniform(g.channels, -3.0, 3.0, 31),
                             scale = Uniform(g.channels, -3.0, 3.0, 32),
                             shift = Uniform(g.channels, -3.0, 3.0, 33);
    for (bnorm_dtype dtype : {BNORM_DTYPE_F32, BNORM_DTYPE_F16, BNORM_DTYPE_BF16}) {
      for (bnorm_activation act :
           {BNORM_ACTIVATION_NONE, BNORM_ACTIVATION_RELU, BNORM_ACTIVATION_RELU6}) {
        const size_t size = dtype == BNORM_DTYPE_F32 ? 4 : 2;
        const std::vector<float> values = Uniform(n, -10.0, 10.0, 34);
        std::vector<uint8_t> x(n * size), y(n * size), cpp_y(n * size);
        if (dtype == BNORM_DTYPE_F32) {
          std::memcpy(x.data(), values.data(), x.size());
        } else {
          std::memcpy(x.data(), ToBits(values, dtype).data(), x.size());
        }
        ASSERT_EQ(bnorm_normalize(x.data(), y.data(), dtype, t.shape.data(), t.shape.size(),
                                  t.axes.data(), t.axes.size(), mean.data(), scale.data(),
                                  shift.data(), g.channels, act),
                  BNORM_STATUS_OK)
            << bnorm_last_error();
        NormalizeParams p;
        p.mean_hi = mean.data();
        p.scale = scale.data();
        p.shift = shift.data();
        p.activation = static_cast<Activation>(act);
        Normalize(x.data(), cpp_y.data(), ToCpp(dtype), g, p);
        EXPECT_TRUE(SameBits(y, cpp_y)) << dtype << " " << act;
        // In place gives the same bytes.
        ASSERT_EQ(bnorm_normalize(x.data(), x.data(), dtype, t.shape.data(), t.shape.size(),
                                  t.axes.data(), t.axes.size(), mean.data(), scale.data(),
                                  shift.data(), g.channels, act),
                  BNORM_STATUS_OK);
        EXPECT_TRUE(SameBits(x, cpp_y));
      }
    }
  }
}

// bnorm_normalize_add is the C++ Normalize with NormalizeParams::residual,
// and with the residual in y (y += bn(x)) the same bytes.
TEST(CApi, NormalizeAddEqualsTheCppNormalizeWithResidualBitwise) {
  for (const Tensor& t : kTensors) {
    const Geometry g = PlanGeometry(t.shape, t.axes);
    const size_t n = Count(t.shape);
    const std::vector<float> mean = Uniform(g.channels, -3.0, 3.0, 41),
                             scale = Uniform(g.channels, -3.0, 3.0, 42),
                             shift = Uniform(g.channels, -3.0, 3.0, 43);
    for (bnorm_dtype dtype : {BNORM_DTYPE_F32, BNORM_DTYPE_F16, BNORM_DTYPE_BF16}) {
      const size_t size = dtype == BNORM_DTYPE_F32 ? 4 : 2;
      const auto bytes_of = [&](const std::vector<float>& values) {
        std::vector<uint8_t> b(n * size);
        if (dtype == BNORM_DTYPE_F32) {
          std::memcpy(b.data(), values.data(), b.size());
        } else {
          std::memcpy(b.data(), ToBits(values, dtype).data(), b.size());
        }
        return b;
      };
      const std::vector<uint8_t> x = bytes_of(Uniform(n, -10.0, 10.0, 44));
      const std::vector<uint8_t> z = bytes_of(Uniform(n, -4.0, 4.0, 45));
      std::vector<uint8_t> y(n * size), cpp_y(n * size);
      ASSERT_EQ(bnorm_normalize_add(x.data(), z.data(), y.data(), dtype, t.shape.data(),
                                    t.shape.size(), t.axes.data(), t.axes.size(), mean.data(),
                                    scale.data(), shift.data(), g.channels, BNORM_ACTIVATION_RELU),
                BNORM_STATUS_OK)
          << bnorm_last_error();
      NormalizeParams p;
      p.mean_hi = mean.data();
      p.scale = scale.data();
      p.shift = shift.data();
      p.activation = Activation::kRelu;
      p.residual = z.data();
      Normalize(x.data(), cpp_y.data(), ToCpp(dtype), g, p);
      EXPECT_TRUE(SameBits(y, cpp_y)) << dtype;
      std::vector<uint8_t> accumulate = z;
      ASSERT_EQ(
          bnorm_normalize_add(x.data(), accumulate.data(), accumulate.data(), dtype, t.shape.data(),
                              t.shape.size(), t.axes.data(), t.axes.size(), mean.data(),
                              scale.data(), shift.data(), g.channels, BNORM_ACTIVATION_RELU),
          BNORM_STATUS_OK);
      EXPECT_TRUE(SameBits(accumulate, cpp_y)) << dtype;
    }
  }
}

TEST(CApi, NormalizeAddRejectsABadResidualAndWritesNothing) {
  const int64_t shape[] = {4, 3};
  const int axis = -1;
  const std::vector<float> x = Uniform(12, -3.0, 3.0, 46);
  const std::vector<float> mean(3, 0.5f), scale(3, 2.0f), shift(3, 1.0f);
  std::vector<float> buffer(24, -7.0f);
  const auto before = buffer;
  const float *m = mean.data(), *s = scale.data(), *t = shift.data();
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER,
                bnorm_normalize_add(x.data(), nullptr, buffer.data(), BNORM_DTYPE_F32, shape, 2,
                                    &axis, 1, m, s, t, 3, BNORM_ACTIVATION_NONE),
                "residual is null");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                bnorm_normalize_add(x.data(), buffer.data() + 2, buffer.data(), BNORM_DTYPE_F32,
                                    shape, 2, &axis, 1, m, s, t, 3, BNORM_ACTIVATION_NONE),
                "residual");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER,
                bnorm_normalize_add(x.data(), buffer.data() + 12, nullptr, BNORM_DTYPE_F32, shape,
                                    2, &axis, 1, m, s, t, 3, BNORM_ACTIVATION_NONE),
                "y is null");
  EXPECT_TRUE(SameBits(buffer, before));
}

TEST(CApi, NormalizeOfAnEmptyTensorWritesNothing) {
  const int64_t shape[] = {0, kHuge, kHuge};  // empty, however large the rest
  const int axis = -1;
  float x = 1.0f, y = 2.0f, coefficient = 0.0f;
  EXPECT_EQ(bnorm_normalize(&x, &y, BNORM_DTYPE_F32, shape, 3, &axis, 1, &coefficient, &coefficient,
                            &coefficient, static_cast<size_t>(kHuge), BNORM_ACTIVATION_NONE),
            BNORM_STATUS_OK)
      << bnorm_last_error();
  EXPECT_EQ(y, 2.0f);
  // The feature axes alone overflow.
  const int axes[] = {1, 2};
  EXPECT_STATUS(BNORM_STATUS_OVERFLOW,
                bnorm_normalize(&x, &y, BNORM_DTYPE_F32, shape, 3, axes, 2, &coefficient,
                                &coefficient, &coefficient, 1, BNORM_ACTIVATION_NONE),
                "size_t");
}

TEST(CApi, NormalizeRejectsBadArgumentsAndWritesNothing) {
  const int64_t shape[9] = {4, 3, 5, 1, 1, 1, 1, 1, 1};
  const int axis = 1, two_axes[] = {0, 2};
  std::vector<float> buffer = Uniform(120, -3.0, 3.0, 9);
  const std::vector<float> mean(3, 0.5f), scale(3, 2.0f), shift(3, 1.0f);
  std::vector<float> y(80, -7.0f);
  const auto buffer_before = buffer, y_before = y;
  const float* x = buffer.data();
  const float *m = mean.data(), *s = scale.data(), *t = shift.data();
  float* py = y.data();
  const auto f32 = BNORM_DTYPE_F32;
  const auto none = BNORM_ACTIVATION_NONE;

  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER,
                bnorm_normalize(nullptr, py, f32, shape, 3, &axis, 1, m, s, t, 3, none),
                "x is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER,
                bnorm_normalize(x, nullptr, f32, shape, 3, &axis, 1, m, s, t, 3, none),
                "y is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER,
                bnorm_normalize(x, py, f32, nullptr, 3, &axis, 1, m, s, t, 3, none),
                "shape is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER,
                bnorm_normalize(x, py, f32, shape, 3, nullptr, 1, m, s, t, 3, none),
                "axes is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER,
                bnorm_normalize(x, py, f32, shape, 3, &axis, 1, nullptr, s, t, 3, none),
                "mean is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER,
                bnorm_normalize(x, py, f32, shape, 3, &axis, 1, m, nullptr, t, 3, none),
                "scale is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER,
                bnorm_normalize(x, py, f32, shape, 3, &axis, 1, m, s, nullptr, 3, none),
                "shift is null");
  EXPECT_STATUS(
      BNORM_STATUS_INVALID_ARGUMENT,
      bnorm_normalize(x, py, static_cast<bnorm_dtype>(3), shape, 3, &axis, 1, m, s, t, 3, none),
      "dtype is 3");
  EXPECT_STATUS(
      BNORM_STATUS_INVALID_ARGUMENT,
      bnorm_normalize(x, py, f32, shape, 3, &axis, 1, m, s, t, 3, static_cast<bnorm_activation>(9)),
      "activation is 9");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                bnorm_normalize(x, py, f32, shape, 0, &axis, 1, m, s, t, 3, none), "rank is 0");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                bnorm_normalize(x, py, f32, shape, 9, &axis, 1, m, s, t, 3, none), "rank is 9");
  // The byte size is the C ABI's check of a low-level call (the elements fit,
  // the bytes not).
  const int64_t huge_bytes[] = {int64_t{1} << 61, 3, 1};
  EXPECT_STATUS(BNORM_STATUS_OVERFLOW,
                bnorm_normalize(x, py, f32, huge_bytes, 3, &axis, 1, m, s, t, 3, none), "bytes");
  EXPECT_STATUS(BNORM_STATUS_SHAPE_MISMATCH,
                bnorm_normalize(x, py, f32, shape, 3, &axis, 1, m, s, t, 2, none), "channels is 2");
  // The C++ planning and normalize rules (the bad-input matrix), one per status.
  const int64_t huge[] = {kHuge, 3, kHuge};
  EXPECT_STATUS(BNORM_STATUS_OVERFLOW,
                bnorm_normalize(x, py, f32, huge, 3, &axis, 1, m, s, t, 3, none), "size_t");
  EXPECT_STATUS(BNORM_STATUS_UNSUPPORTED,
                bnorm_normalize(x, py, f32, shape, 3, two_axes, 2, m, s, t, 20, none),
                "not contiguous");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                bnorm_normalize(x, buffer.data() + 59, f32, shape, 3, &axis, 1, m, s, t, 3, none),
                "overlap");
  EXPECT_TRUE(SameBits(buffer, buffer_before));
  EXPECT_TRUE(SameBits(y, y_before));
}

TEST(CApi, FoldIntoWeightsEqualsTheCppCallBitwise) {
  const std::vector<int64_t> shape{4, 3, 3, 2};
  const std::vector<float> gamma = Uniform(4, 0.5, 2.0, 1), beta = Uniform(4, -3.0, 3.0, 2),
                           mean = Uniform(4, -3.0, 3.0, 3), var = Uniform(4, 0.1, 3.0, 4);
  for (bnorm_weight_layout layout : {BNORM_LAYOUT_OUTPUT_FIRST, BNORM_LAYOUT_OUTPUT_LAST}) {
    const std::vector<int64_t> s =
        layout == BNORM_LAYOUT_OUTPUT_FIRST ? shape : std::vector<int64_t>{2, 3, 3, 4};
    std::vector<float> w = Uniform(72, -3.0, 3.0, 5), bias = Uniform(4, -3.0, 3.0, 6);
    std::vector<float> cpp_w = w, cpp_bias = bias;
    ASSERT_EQ(bnorm_fold_into_weights(w.data(), s.data(), s.size(), layout, bias.data(),
                                      gamma.data(), beta.data(), mean.data(), var.data(), 4, 1e-3f),
              BNORM_STATUS_OK)
        << bnorm_last_error();
    FoldIntoWeights(cpp_w.data(), s, static_cast<WeightLayout>(layout), cpp_bias.data(),
                    gamma.data(), beta.data(), mean.data(), var.data(), 4, 1e-3f);
    EXPECT_TRUE(SameBits(w, cpp_w));
    EXPECT_TRUE(SameBits(bias, cpp_bias));
  }
}

TEST(CApi, FoldIntoWeightsRejectsBadArgumentsAndWritesNothing) {
  const int64_t shape[9] = {4, 6, 1, 1, 1, 1, 1, 1, 1};
  const std::vector<float> gamma(4, 1.5f), beta(4, 0.5f), mean(4, 0.25f), var(4, 2.0f);
  std::vector<float> w = Uniform(24, -3.0, 3.0, 1), bias = Uniform(4, -3.0, 3.0, 2);
  const auto w_before = w, bias_before = bias;
  float *pw = w.data(), *pb = bias.data();
  const float *g = gamma.data(), *b = beta.data(), *m = mean.data(), *v = var.data();
  const auto first = BNORM_LAYOUT_OUTPUT_FIRST;

  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER,
                bnorm_fold_into_weights(nullptr, shape, 2, first, pb, g, b, m, v, 4, 1e-3f),
                "weights is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER,
                bnorm_fold_into_weights(pw, nullptr, 2, first, pb, g, b, m, v, 4, 1e-3f),
                "weight_shape is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER,
                bnorm_fold_into_weights(pw, shape, 2, first, nullptr, g, b, m, v, 4, 1e-3f),
                "bias is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER,
                bnorm_fold_into_weights(pw, shape, 2, first, pb, g, b, nullptr, v, 4, 1e-3f),
                "moving_mean is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER,
                bnorm_fold_into_weights(pw, shape, 2, first, pb, g, b, m, nullptr, 4, 1e-3f),
                "moving_variance is null");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                bnorm_fold_into_weights(pw, shape, 2, static_cast<bnorm_weight_layout>(2), pb, g, b,
                                        m, v, 4, 1e-3f),
                "layout is 2");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                bnorm_fold_into_weights(pw, shape, 1, first, pb, g, b, m, v, 4, 1e-3f),
                "rank is 1");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                bnorm_fold_into_weights(pw, shape, 9, first, pb, g, b, m, v, 4, 1e-3f),
                "rank is 9");
  // The C++ rules of FoldIntoWeights (the bad-input matrix), one per status.
  const int64_t huge[] = {4, kHuge, 4};
  EXPECT_STATUS(BNORM_STATUS_OVERFLOW,
                bnorm_fold_into_weights(pw, huge, 3, first, pb, g, b, m, v, 4, 1e-3f), "size_t");
  EXPECT_STATUS(BNORM_STATUS_SHAPE_MISMATCH,
                bnorm_fold_into_weights(pw, shape, 2, first, pb, g, b, m, v, 6, 1e-3f),
                "output channels");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                bnorm_fold_into_weights(pw, shape, 2, first, pb, g, b, m, v, 4, -1.0f), "epsilon");
  EXPECT_TRUE(SameBits(w, w_before));
  EXPECT_TRUE(SameBits(bias, bias_before));
}

}  // namespace
}  // namespace test
}  // namespace bnorm
