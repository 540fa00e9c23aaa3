// SPDX-License-Identifier: Apache-2.0
// The C ABI's one-call training operations: bnorm_training_normalize and
// bnorm_training_backward give bnorm::TrainingNormalize's and
// TrainingBackward's results bit for bit (both layouts, every dtype, with and
// without gamma/beta, in place, and on a tensor that takes the channel-resident
// path), and every bad argument is a status whose message names it, with
// nothing written.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "bnorm/backward.hpp"
#include "bnorm/bnorm.h"
#include "bnorm/geometry.hpp"
#include "bnorm/kernels.hpp"
#include "src/ops/resident_backward.h"
#include "src/ops/resident_training.h"
#include "tests/c_api_test_util.h"
#include "tests/test_util.h"

namespace bnorm {
namespace test {
namespace {

constexpr bnorm_dtype kDTypes[] = {BNORM_DTYPE_F32, BNORM_DTYPE_BF16, BNORM_DTYPE_F16};
constexpr double kEps = 1e-3;

// Seeded N(mean, std) values as the bytes of `dtype`. Beyond 2^16 + 1 values
// they repeat (a period no block or channel size shares), which keeps the
// tensors beyond the caches quick to make.
std::vector<uint8_t> Bytes(size_t n, double mean, double std, uint64_t seed, bnorm_dtype dtype) {
  constexpr size_t kPeriod = (size_t{1} << 16) + 1;
  const std::vector<float> period = Normal(std::min(n, kPeriod), mean, std, seed);
  std::vector<float> values(n);
  for (size_t i = 0; i < n; ++i) values[i] = period[i % kPeriod];
  if (dtype == BNORM_DTYPE_F32) {
    std::vector<uint8_t> bytes(n * sizeof(float));
    std::memcpy(bytes.data(), values.data(), bytes.size());
    return bytes;
  }
  const std::vector<uint16_t> bits = ToBits(values, dtype);
  std::vector<uint8_t> bytes(n * sizeof(uint16_t));
  std::memcpy(bytes.data(), bits.data(), bytes.size());
  return bytes;
}

// A tensor of `shape` with feature axes `axes`, and its geometry.
struct Case {
  Shape shape;
  std::vector<int> axes;
};

const Case kCases[] = {
    {{6, 5, 7}, {-1}},       // channels-last
    {{4, 6, 5, 7}, {1}},     // channels-first
    {{3, 4, 5, 6}, {1, 2}},  // two feature axes, channels-first
    {{9, 4}, {1}},           // dense
};

// Per-channel gamma and beta (or none, meaning 1 and 0).
struct Affine {
  std::vector<float> gamma, beta;
  explicit Affine(size_t channels)
      : gamma(Uniform(channels, 0.5, 2.0, 70)), beta(Uniform(channels, -1.0, 1.0, 71)) {}
};

// bnorm_training_normalize against TrainingNormalize, out of place and in place.
void ExpectForwardIsTheCppCall(const Case& c, bnorm_dtype dtype, bool affine) {
  SCOPED_TRACE(::testing::Message() << "dtype " << dtype << (affine ? ", gamma/beta" : ", none"));
  const Geometry g = PlanGeometry(c.shape, c.axes);
  const size_t C = g.channels;
  const Affine a(C);
  const float* gamma = affine ? a.gamma.data() : nullptr;
  const float* beta = affine ? a.beta.data() : nullptr;
  const std::vector<uint8_t> x = Bytes(g.elements(), 5.0, 2.0, 72, dtype);
  std::vector<uint8_t> y(x.size(), 0xA5), want_y(x.size(), 0x5A);
  std::vector<double> mean(C, -1.0), variance(C, -1.0), want_mean(C), want_variance(C);
  ASSERT_EQ(bnorm_training_normalize(x.data(), y.data(), dtype, c.shape.data(), c.shape.size(),
                                     c.axes.data(), c.axes.size(), gamma, beta, kEps, mean.data(),
                                     variance.data(), C),
            BNORM_STATUS_OK)
      << bnorm_last_error();
  TrainingNormalize(x.data(), want_y.data(), ToCpp(dtype), g, gamma, beta, kEps, want_mean.data(),
                    want_variance.data());
  EXPECT_TRUE(SameBits(mean, want_mean));
  EXPECT_TRUE(SameBits(variance, want_variance));
  EXPECT_TRUE(y == want_y);
  std::vector<uint8_t> in_place = x;
  ASSERT_EQ(bnorm_training_normalize(in_place.data(), in_place.data(), dtype, c.shape.data(),
                                     c.shape.size(), c.axes.data(), c.axes.size(), gamma, beta,
                                     kEps, mean.data(), variance.data(), C),
            BNORM_STATUS_OK)
      << bnorm_last_error();
  EXPECT_TRUE(in_place == want_y);
}

// bnorm_training_backward against TrainingBackward after a training forward,
// out of place and in place over dy and over x.
void ExpectBackwardIsTheCppCall(const Case& c, bnorm_dtype dtype, bool affine) {
  SCOPED_TRACE(::testing::Message() << "dtype " << dtype << (affine ? ", gamma" : ", none"));
  const Geometry g = PlanGeometry(c.shape, c.axes);
  const size_t C = g.channels;
  const Affine a(C);
  const float* gamma = affine ? a.gamma.data() : nullptr;
  const std::vector<uint8_t> x = Bytes(g.elements(), 5.0, 2.0, 73, dtype),
                             dy = Bytes(g.elements(), 0.0, 1.0, 74, dtype);
  std::vector<uint8_t> y(x.size());
  std::vector<double> mean(C), variance(C);
  TrainingNormalize(x.data(), y.data(), ToCpp(dtype), g, gamma, nullptr, kEps, mean.data(),
                    variance.data());
  std::vector<float> hi(C), lo(C);
  for (size_t ch = 0; ch < C; ++ch) SplitMean(mean[ch], &hi[ch], &lo[ch]);
  const auto call = [&](const void* in, const void* grad, void* out, double* s1, double* s2) {
    return bnorm_training_backward(in, grad, out, dtype, c.shape.data(), c.shape.size(),
                                   c.axes.data(), c.axes.size(), hi.data(), lo.data(),
                                   variance.data(), gamma, kEps, s1, s2, C);
  };
  std::vector<uint8_t> dx(x.size(), 0xA5), want_dx(x.size(), 0x5A);
  std::vector<double> s1(C, -1.0), s2(C, -1.0), want_s1(C), want_s2(C);
  ASSERT_EQ(call(x.data(), dy.data(), dx.data(), s1.data(), s2.data()), BNORM_STATUS_OK)
      << bnorm_last_error();
  TrainingBackward(x.data(), dy.data(), want_dx.data(), ToCpp(dtype), g, hi.data(), lo.data(),
                   variance.data(), gamma, kEps, want_s1.data(), want_s2.data());
  EXPECT_TRUE(SameBits(s1, want_s1));
  EXPECT_TRUE(SameBits(s2, want_s2));
  EXPECT_TRUE(dx == want_dx);
  std::vector<uint8_t> over_dy = dy, over_x = x;
  ASSERT_EQ(call(x.data(), over_dy.data(), over_dy.data(), s1.data(), s2.data()), BNORM_STATUS_OK)
      << bnorm_last_error();
  EXPECT_TRUE(over_dy == want_dx);
  ASSERT_EQ(call(over_x.data(), dy.data(), over_x.data(), s1.data(), s2.data()), BNORM_STATUS_OK)
      << bnorm_last_error();
  EXPECT_TRUE(over_x == want_dx);
}

TEST(CApiTraining, NormalizeIsTheCppCall) {
  for (const Case& c : kCases) {
    SCOPED_TRACE(Describe(PlanGeometry(c.shape, c.axes)));
    for (bnorm_dtype dtype : kDTypes) {
      for (bool affine : {true, false}) ExpectForwardIsTheCppCall(c, dtype, affine);
    }
  }
}

TEST(CApiTraining, BackwardIsTheCppCall) {
  for (const Case& c : kCases) {
    SCOPED_TRACE(Describe(PlanGeometry(c.shape, c.axes)));
    for (bnorm_dtype dtype : kDTypes) {
      for (bool affine : {true, false}) ExpectBackwardIsTheCppCall(c, dtype, affine);
    }
  }
}

// 96 channels of 200 KiB (NCHW-like [16, 96, inner]): 19.7 MB in all, beyond
// the caches, each channel (x and dy of it for the backward) cached.
TEST(CApiTraining, TheChannelResidentPathIsTheCppCall) {
  if (!kHeavyTests) GTEST_SKIP() << "a tensor beyond the caches: heavy tests are off";
  for (bnorm_dtype dtype : kDTypes) {
    const int64_t inner = dtype == BNORM_DTYPE_F32 ? 3200 : 6400;
    const Case c{{16, 96, inner}, {1}};
    const Geometry g = PlanGeometry(c.shape, c.axes);
    ASSERT_TRUE(ChannelResident(ToCpp(dtype), g));
    ASSERT_TRUE(ChannelResidentBackward(ToCpp(dtype), g));
    ExpectForwardIsTheCppCall(c, dtype, true);
    ExpectBackwardIsTheCppCall(c, dtype, true);
  }
}

// Every pointer the calls read or write, over a [4, 6] batch (6 channels),
// with sentinels in the outputs.
struct Buffers {
  Shape shape{4, 6};
  int axis = -1;
  std::vector<float> x = Normal(24, 1.0, 2.0, 75), dy = Normal(24, 0.0, 1.0, 76);
  std::vector<float> gamma = std::vector<float>(6, 1.5f), beta = std::vector<float>(6, 0.5f);
  std::vector<float> hi = std::vector<float>(6, 1.0f), lo = std::vector<float>(6, 0.0f);
  std::vector<double> variance = std::vector<double>(6, 4.0);
  // 48 values: a second tensor's room for partial overlaps.
  std::vector<float> out = std::vector<float>(48, Sentinel());
  std::vector<double> mean_out = std::vector<double>(6, 7.0), var_out = std::vector<double>(6, 7.0);

  ::testing::AssertionResult Untouched() const {
    for (float v : out) {
      if (!IsSentinel(v)) return ::testing::AssertionFailure() << "a tensor output was written";
    }
    if (mean_out != std::vector<double>(6, 7.0) || var_out != std::vector<double>(6, 7.0)) {
      return ::testing::AssertionFailure() << "a per-channel output was written";
    }
    return ::testing::AssertionSuccess();
  }
};

TEST(CApiTraining, NormalizeRejectsBadArgumentsAndWritesNothing) {
  Buffers b;
  const auto f32 = BNORM_DTYPE_F32;
  const float *x = b.x.data(), *gamma = b.gamma.data(), *beta = b.beta.data();
  float* y = b.out.data();
  double *m = b.mean_out.data(), *v = b.var_out.data();
  const int64_t* shape = b.shape.data();
  const int* axis = &b.axis;
  const auto call = [&](const void* in, void* out, bnorm_dtype dtype, const int64_t* s, size_t rank,
                        const int* axes, size_t num_axes, double epsilon, double* mean,
                        double* variance, size_t channels) {
    return bnorm_training_normalize(in, out, dtype, s, rank, axes, num_axes, gamma, beta, epsilon,
                                    mean, variance, channels);
  };
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, call(nullptr, y, f32, shape, 2, axis, 1, kEps, m, v, 6),
                "x is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, call(x, nullptr, f32, shape, 2, axis, 1, kEps, m, v, 6),
                "y is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, call(x, y, f32, shape, 2, axis, 1, kEps, nullptr, v, 6),
                "mean is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, call(x, y, f32, shape, 2, axis, 1, kEps, m, nullptr, 6),
                "variance is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, call(x, y, f32, nullptr, 2, axis, 1, kEps, m, v, 6),
                "shape is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, call(x, y, f32, shape, 2, nullptr, 1, kEps, m, v, 6),
                "axes is null");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                call(x, y, static_cast<bnorm_dtype>(3), shape, 2, axis, 1, kEps, m, v, 6),
                "dtype is 3");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, call(x, y, f32, shape, 0, axis, 1, kEps, m, v, 6),
                "rank is 0");
  EXPECT_STATUS(BNORM_STATUS_SHAPE_MISMATCH, call(x, y, f32, shape, 2, axis, 1, kEps, m, v, 5),
                "channels is 5");
  const int out_of_range = 2, apart[] = {0, 2};
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                call(x, y, f32, shape, 2, &out_of_range, 1, kEps, m, v, 6),
                "axis 2 is out of range");
  const int64_t rank3[] = {2, 3, 4};
  EXPECT_STATUS(BNORM_STATUS_UNSUPPORTED, call(x, y, f32, rank3, 3, apart, 2, kEps, m, v, 8),
                "not contiguous");
  const int64_t huge[] = {kHuge, kHuge, 6};
  EXPECT_STATUS(BNORM_STATUS_OVERFLOW, call(x, y, f32, huge, 3, axis, 1, kEps, m, v, 6), "size_t");
  const int64_t negative[] = {-4, 6};
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, call(x, y, f32, negative, 2, axis, 1, kEps, m, v, 6),
                "shape[0]");
  for (double epsilon : {0.0, -1e-3, std::numeric_limits<double>::quiet_NaN(),
                         std::numeric_limits<double>::infinity()}) {
    EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                  call(x, y, f32, shape, 2, axis, 1, epsilon, m, v, 6), "epsilon");
  }
  const int64_t empty[] = {0, 6};
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, call(x, y, f32, empty, 2, axis, 1, kEps, m, v, 6),
                "0 values per channel");
  // y over x but not on it (the room of `out` holds both).
  std::copy(b.x.begin(), b.x.end(), b.out.begin());
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                call(b.out.data(), b.out.data() + 1, f32, shape, 2, axis, 1, kEps, m, v, 6),
                "overlap");
  EXPECT_TRUE(std::equal(b.x.begin(), b.x.end(), b.out.begin()));
  std::fill(b.out.begin(), b.out.end(), Sentinel());
  const float* odd = reinterpret_cast<const float*>(reinterpret_cast<const char*>(x) + 2);
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, call(odd, y, f32, shape, 2, axis, 1, kEps, m, v, 6),
                "aligned");
  EXPECT_TRUE(b.Untouched());
}

TEST(CApiTraining, BackwardRejectsBadArgumentsAndWritesNothing) {
  Buffers b;
  const auto f32 = BNORM_DTYPE_F32;
  const float *x = b.x.data(), *dy = b.dy.data(), *hi = b.hi.data(), *lo = b.lo.data();
  float* dx = b.out.data();
  double *s1 = b.mean_out.data(), *s2 = b.var_out.data();
  const int64_t* shape = b.shape.data();
  const int* axis = &b.axis;
  // The arguments that vary; the others are good.
  struct Args {
    const void* x;
    const void* dy;
    void* dx;
    bnorm_dtype dtype;
    const int64_t* shape;
    size_t rank;
    const int* axes;
    const float* hi;
    const float* lo;
    const double* variance;
    double epsilon;
    double* s1;
    double* s2;
    size_t channels;
  };
  const Args good{x, dy, dx, f32, shape, 2, axis, hi, lo, b.variance.data(), kEps, s1, s2, 6};
  const auto call = [&](Args a) {
    return bnorm_training_backward(a.x, a.dy, a.dx, a.dtype, a.shape, a.rank, a.axes, 1, a.hi, a.lo,
                                   a.variance, b.gamma.data(), a.epsilon, a.s1, a.s2, a.channels);
  };
  const auto with = [&](auto change) {
    Args a = good;
    change(a);
    return call(a);
  };
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, with([](Args& a) { a.x = nullptr; }), "x is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, with([](Args& a) { a.dy = nullptr; }), "dy is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, with([](Args& a) { a.dx = nullptr; }), "dx is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, with([](Args& a) { a.hi = nullptr; }),
                "mean_hi is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, with([](Args& a) { a.lo = nullptr; }),
                "mean_lo is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, with([](Args& a) { a.variance = nullptr; }),
                "variance is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, with([](Args& a) { a.s1 = nullptr; }), "sum_dy is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, with([](Args& a) { a.s2 = nullptr; }),
                "sum_dy_xmu is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, with([](Args& a) { a.shape = nullptr; }),
                "shape is null");
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, with([](Args& a) { a.axes = nullptr; }), "axes is null");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT,
                with([](Args& a) { a.dtype = static_cast<bnorm_dtype>(-1); }), "dtype is -1");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, with([](Args& a) { a.rank = 9; }), "rank is 9");
  EXPECT_STATUS(BNORM_STATUS_SHAPE_MISMATCH, with([](Args& a) { a.channels = 4; }),
                "channels is 4");
  static const int kOutOfRange = -3;
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, with([](Args& a) { a.axes = &kOutOfRange; }),
                "axis -3 is out of range");
  static const int64_t kHugeShape[] = {kHuge, kHuge, 6};
  EXPECT_STATUS(BNORM_STATUS_OVERFLOW, with([](Args& a) {
                  a.shape = kHugeShape;
                  a.rank = 3;
                }),
                "size_t");
  for (double epsilon : {0.0, std::numeric_limits<double>::quiet_NaN()}) {
    EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, with([&](Args& a) { a.epsilon = epsilon; }),
                  "epsilon");
  }
  static const int64_t kEmpty[] = {0, 6};
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, with([](Args& a) { a.shape = kEmpty; }),
                "0 values per channel");
  std::vector<double> negative = b.variance;
  negative[2] = -1.0;
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, with([&](Args& a) { a.variance = negative.data(); }),
                "variance[2]");
  EXPECT_TRUE(b.Untouched());
  // dx over dy, or over x, but not on it (the room of `out` holds both).
  for (bool over_dy : {true, false}) {
    const std::vector<float>& input = over_dy ? b.dy : b.x;
    std::copy(input.begin(), input.end(), b.out.begin());
    EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, with([&](Args& a) {
                    (over_dy ? a.dy : a.x) = b.out.data();
                    a.dx = b.out.data() + 3;
                  }),
                  (over_dy ? "dy (" : "x ("));
    EXPECT_TRUE(std::equal(input.begin(), input.end(), b.out.begin()));
    EXPECT_TRUE(std::all_of(b.out.begin() + 24, b.out.end(), IsSentinel));
  }
  EXPECT_EQ(b.mean_out, std::vector<double>(6, 7.0));
  EXPECT_EQ(b.var_out, std::vector<double>(6, 7.0));
}

}  // namespace
}  // namespace test
}  // namespace bnorm
