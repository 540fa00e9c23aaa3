// SPDX-License-Identifier: Apache-2.0
// The problems of backward_test.cc: tensors of any element type placed at a
// chosen offset (widened copies for the reference), a case's data and
// coefficients as a training step forms them, the float64 reference's sums
// and dx, and the comparisons with their tolerances.
#ifndef BNORM_TESTS_BACKWARD_PROBLEM_H_
#define BNORM_TESTS_BACKWARD_PROBLEM_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "bnorm/backward.hpp"
#include "bnorm/dtype.hpp"
#include "bnorm/execution.hpp"
#include "bnorm/geometry.hpp"
#include "bnorm/kernels.hpp"
#include "src/ops/half.h"
#include "src/oracle/reference.h"
#include "tests/test_util.h"
#include "tools/common/random.h"
#include "tools/common/tolerances.h"

namespace bnorm {
namespace test {

constexpr double kSumTolerance = testing::kGradientSumTolerance;
constexpr double kDxTolerance = testing::kGradientTolerance;
constexpr uint8_t kUntouched = 0xA5;  // every byte of a buffer before a call

// Calls f(channel, offset) for every element of g.
template <class F>
void ForEachElement(const Geometry& g, const F& f) {
  for (size_t o = 0; o < g.outer; ++o) {
    for (size_t c = 0; c < g.channels; ++c) {
      for (size_t i = 0; i < g.inner; ++i) f(c, g.RowOffset(o) + c * g.ChannelStride() + i);
    }
  }
}

inline float Narrowed(DType type, float v) {
  switch (type) {
    case DType::kFloat32:
      return v;
    case DType::kFloat16:
      return HalfToFloat(FloatToHalf(v));
    case DType::kBFloat16:
      return BFloat16ToFloat(FloatToBFloat16(v));
  }
  return v;
}

// Half a unit in the last place of `type` at magnitude v (0 for float32,
// whose rounding the tolerance covers).
inline double HalfUlp(DType type, double v) {
  if (type == DType::kFloat32) return 0.0;
  const int mantissa_bits = type == DType::kFloat16 ? 10 : 7;
  const int min_exponent = type == DType::kFloat16 ? -14 : -126;
  int exponent = 0;
  std::frexp(v, &exponent);  // v = m * 2^exponent, m in [0.5, 1)
  return std::ldexp(0.5, std::max(exponent - 1, min_exponent) - mantissa_bits);
}

// Extent(g) elements of `type`, `offset` elements past a 64-byte boundary,
// every byte kUntouched at first; values() holds the elements set so far,
// widened to float, for the reference.
class Tensor {
 public:
  Tensor(DType type, const Geometry& g, size_t offset)
      : type_(type),
        extent_(g.Extent()),
        storage_((extent_ + offset) * SizeOf(type) + 128, kUntouched),
        values_(extent_, 0.0f) {
    const uintptr_t base = reinterpret_cast<uintptr_t>(storage_.data());
    begin_ = (64 - base % 64) % 64 + offset * SizeOf(type);
  }

  void* data() { return storage_.data() + begin_; }
  const float* values() const { return values_.data(); }
  const std::vector<uint8_t>& bytes() const { return storage_; }

  // Stores v rounded to the element type.
  void Set(size_t i, float v) {
    values_[i] = Narrowed(type_, v);
    if (type_ == DType::kFloat32) {
      std::memcpy(storage_.data() + begin_ + 4 * i, &v, 4);
      return;
    }
    const uint16_t bits = type_ == DType::kFloat16 ? FloatToHalf(v) : FloatToBFloat16(v);
    std::memcpy(storage_.data() + begin_ + 2 * i, &bits, 2);
  }

  // The element's bits (16 of them for float16/bfloat16).
  uint32_t Bits(size_t i) const {
    uint32_t bits = 0;
    std::memcpy(&bits, storage_.data() + begin_ + SizeOf(type_) * i, SizeOf(type_));
    return bits;
  }

  float Get(size_t i) const {
    if (type_ == DType::kFloat32) {
      float v;
      std::memcpy(&v, storage_.data() + begin_ + 4 * i, 4);
      return v;
    }
    uint16_t bits;
    std::memcpy(&bits, storage_.data() + begin_ + 2 * i, 2);
    return type_ == DType::kFloat16 ? HalfToFloat(bits) : BFloat16ToFloat(bits);
  }

  // Whether every byte outside the elements of g is still kUntouched.
  ::testing::AssertionResult OnlyViewWritten(const Geometry& g) const {
    std::vector<bool> inside(storage_.size(), false);
    ForEachElement(g, [&](size_t, size_t k) {
      for (size_t b = 0; b < SizeOf(type_); ++b) inside[begin_ + k * SizeOf(type_) + b] = true;
    });
    for (size_t i = 0; i < storage_.size(); ++i) {
      if (!inside[i] && storage_[i] != kUntouched) {
        return ::testing::AssertionFailure()
               << "byte " << static_cast<long long>(i - begin_) << " outside the view was written";
      }
    }
    return ::testing::AssertionSuccess();
  }

 private:
  DType type_;
  size_t extent_;
  std::vector<uint8_t> storage_;
  std::vector<float> values_;
  size_t begin_ = 0;
};

// One problem: the shape, element type, mask, data and buffer placement.
struct Case {
  Geometry g;
  DType type = DType::kFloat32;
  Activation mask = Activation::kNone;
  double x_mean = 3.0, x_std = 2.0;
  size_t x_offset = 0, dy_offset = 0, dx_offset = 0;  // elements past 64 bytes
  bool in_place = false;                              // dx == dy
  uint64_t seed = kSeed;
};

inline std::string Describe(const Case& c) {
  return bnorm::test::Describe(c.g) + " " + Name(c.type) + " mask " +
         std::to_string(static_cast<int>(c.mask)) + " offsets " + std::to_string(c.x_offset) + "/" +
         std::to_string(c.dy_offset) + "/" + std::to_string(c.dx_offset) +
         (c.in_place ? " in place" : "");
}

// The tensors of a case and everything the reference says about them.
struct Problem {
  explicit Problem(const Case& c)
      : x(c.type, c.g, c.x_offset), dy(c.type, c.g, c.dy_offset), y(c.type, c.g, 0) {
    const size_t C = c.g.channels;
    testing::Random rng(c.seed);
    ForEachElement(c.g, [&](size_t, size_t k) {
      x.Set(k, static_cast<float>(rng.Normal(c.x_mean, c.x_std)));
      dy.Set(k, static_cast<float>(rng.Normal(0.3, 1.0)));
      // The forward's output: the mask's boundaries 0 and 6 exactly, often.
      if (c.mask == Activation::kNone) return;
      const size_t pick = rng.Index(8);
      y.Set(k, pick == 0 ? 0.0f : pick == 1 ? 6.0f : static_cast<float>(rng.Uniform(-3.0, 9.0)));
    });
    std::vector<double> mean(C), variance(C);
    reference::Moments(x.values(), c.g, mean.data(), variance.data());
    hi.resize(C);
    lo.resize(C);
    mu.resize(C);
    for (size_t ch = 0; ch < C; ++ch) {
      SplitMean(mean[ch], &hi[ch], &lo[ch]);
      mu[ch] = static_cast<double>(hi[ch]) + static_cast<double>(lo[ch]);
    }
    SetCoefficients(c, variance, &rng);
  }

  // k = γ·ρ, a = S1/n, b = ρ²·S2/n from the reference sums, as the layer forms them.
  void SetCoefficients(const Case& c, const std::vector<double>& variance, testing::Random* rng) {
    const size_t C = c.g.channels;
    const float* mask_y = c.mask == Activation::kNone ? nullptr : y.values();
    s1.resize(C);
    s2.resize(C);
    abs1.assign(C, 0.0);
    abs2.assign(C, 0.0);
    reference::BackwardReduce(x.values(), dy.values(), mask_y, c.mask, c.g, mu.data(), s1.data(),
                              s2.data());
    ForEachElement(c.g, [&](size_t ch, size_t k) {
      const double g =
          (c.mask == Activation::kNone ||
           (y.values()[k] > 0.0f && (c.mask == Activation::kRelu || y.values()[k] < 6.0f)))
              ? dy.values()[k]
              : 0.0;
      abs1[ch] += std::fabs(g);
      abs2[ch] += std::fabs(g * (x.values()[k] - mu[ch]));
    });
    const double n = static_cast<double>(c.g.reduced());
    k.resize(C);
    a.resize(C);
    b.resize(C);
    for (size_t ch = 0; ch < C; ++ch) {
      const double rho = 1.0 / std::sqrt(variance[ch] + kEpsilon);
      const double gamma = (rng->Bits() & 1 ? 1.0 : -1.0) * rng->Uniform(0.5, 2.0);
      k[ch] = static_cast<float>(gamma * rho);
      a[ch] = static_cast<float>(s1[ch] / n);
      b[ch] = static_cast<float>(rho * rho * s2[ch] / n);
    }
    std::vector<double> kd(k.begin(), k.end()), ad(a.begin(), a.end()), bd(b.begin(), b.end());
    dx.assign(c.g.Extent(), 0.0);
    reference::BackwardData(x.values(), dy.values(), mask_y, c.mask, c.g, mu.data(), kd.data(),
                            ad.data(), bd.data(), dx.data());
    scale.assign(C, 0.0);
    ForEachElement(c.g,
                   [&](size_t ch, size_t i) { scale[ch] = std::max(scale[ch], std::fabs(dx[i])); });
  }

  BackwardReduceParams reduce_params(Activation mask) {
    return BackwardReduceParams{hi.data(), lo.data(), mask, y.data()};
  }
  BackwardDataParams data_params(Activation mask) {
    return BackwardDataParams{hi.data(), lo.data(), k.data(), a.data(), b.data(), mask, y.data()};
  }

  Tensor x, dy, y;
  std::vector<float> hi, lo, k, a, b;
  std::vector<double> mu, s1, s2, abs1, abs2, dx, scale;
};

inline ::testing::AssertionResult SumsNear(const Problem& p, const std::vector<double>& s1,
                                           const std::vector<double>& s2) {
  for (size_t c = 0; c < p.s1.size(); ++c) {
    const double e1 = std::fabs(s1[c] - p.s1[c]), e2 = std::fabs(s2[c] - p.s2[c]);
    if (!(e1 <= kSumTolerance * p.abs1[c]) || !(e2 <= kSumTolerance * p.abs2[c])) {
      return ::testing::AssertionFailure()
             << "channel " << c << ": sum_dy " << s1[c] << " vs " << p.s1[c] << " (Σ|g| "
             << p.abs1[c] << "), sum_dy_xmu " << s2[c] << " vs " << p.s2[c] << " (Σ|g·(x−μ)| "
             << p.abs2[c] << ")";
    }
  }
  return ::testing::AssertionSuccess();
}

inline ::testing::AssertionResult DxNear(const Problem& p, const Tensor& dx, const Case& c) {
  size_t bad = SIZE_MAX, bad_channel = 0;
  ForEachElement(c.g, [&](size_t ch, size_t i) {
    if (bad != SIZE_MAX) return;
    const double tol = kDxTolerance * p.scale[ch];
    const double bound = tol + HalfUlp(c.type, std::fabs(p.dx[i]) + tol);
    if (!(std::fabs(dx.Get(i) - p.dx[i]) <= bound)) bad = i, bad_channel = ch;
  });
  if (bad == SIZE_MAX) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "element " << bad << " (channel " << bad_channel << "): dx " << dx.Get(bad)
         << " vs reference " << p.dx[bad] << " (channel scale " << p.scale[bad_channel] << ")";
}

// Runs both passes for a case and compares them with the reference; dx must
// be written only inside the view.
inline void ExpectMatchesReference(const Case& c, const Execution& exec = Execution()) {
  SCOPED_TRACE(Describe(c));
  Problem p(c);
  std::vector<double> s1(c.g.channels, -1.0), s2(c.g.channels, -1.0);
  BackwardReduce(p.x.data(), p.dy.data(), c.type, c.g, p.reduce_params(c.mask), s1.data(),
                 s2.data(), exec);
  EXPECT_TRUE(SumsNear(p, s1, s2));
  Tensor separate(c.type, c.g, c.dx_offset);
  Tensor& dx = c.in_place ? p.dy : separate;
  BackwardData(p.x.data(), p.dy.data(), dx.data(), c.type, c.g, p.data_params(c.mask), exec);
  EXPECT_TRUE(DxNear(p, dx, c));
  if (!c.in_place) {
    EXPECT_TRUE(dx.OnlyViewWritten(c.g));
  }
}

}  // namespace test
}  // namespace bnorm

#endif  // BNORM_TESTS_BACKWARD_PROBLEM_H_
