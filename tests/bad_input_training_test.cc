// SPDX-License-Identifier: Apache-2.0
// The bad-input matrix (tests/bad_input.h) of the one-call training
// operations, bnorm::TrainingNormalize and TrainingBackward, which the C ABI's
// bnorm_training_normalize and bnorm_training_backward relay: every rule once,
// each bad call a bnorm::Error naming the argument with the code the C ABI
// turns into its status, and every output byte for byte as it was.
#include <cstdint>
#include <limits>
#include <vector>

#include "bnorm/backward.hpp"
#include "bnorm/kernels.hpp"
#include "tests/bad_input.h"

namespace bnorm {
namespace bad_input {
namespace {

constexpr double kEpsilon = 1e-3;
constexpr double kDoubleNaN = std::numeric_limits<double>::quiet_NaN();

TEST_F(BadInput, TrainingNormalizeArguments) {
  const Geometry g = Geometry::Dense(4, 3, 5);
  std::vector<float> x = Ramp(60), y(120, 9.0f);
  std::vector<double> mean(3, 7.0), variance(3, 7.0);
  Snapshot s;
  s.Add(y, "y").Add(x, "x").Add(mean, "mean").Add(variance, "variance");
  const auto call = [&](const Geometry& geometry, const void* in, void* out, double epsilon,
                        double* m, double* v) {
    TrainingNormalize(in, out, DType::kFloat32, geometry, nullptr, nullptr, epsilon, m, v);
  };
  const ErrorCode invalid = ErrorCode::kInvalidArgument, null = ErrorCode::kNullPointer;
  EXPECT_REJECTED_AS(s, invalid, Names({"epsilon is 0"}),
                     call(g, x.data(), y.data(), 0.0, mean.data(), variance.data()));
  EXPECT_REJECTED_AS(s, invalid, Names({"epsilon", "finite"}),
                     call(g, x.data(), y.data(), kDoubleNaN, mean.data(), variance.data()));
  EXPECT_REJECTED_AS(
      s, invalid, Names({"0 values per channel", "training needs"}),
      call(Geometry::Dense(0, 3, 5), x.data(), y.data(), kEpsilon, mean.data(), variance.data()));
  EXPECT_REJECTED_AS(
      s, invalid, Names({"0 channels", "training needs"}),
      call(Geometry::Dense(4, 0, 5), x.data(), y.data(), kEpsilon, mean.data(), variance.data()));
  EXPECT_REJECTED_IN_CHILD(s, Names({"x", "null"}),
                           call(g, nullptr, y.data(), kEpsilon, mean.data(), variance.data()));
  EXPECT_REJECTED_AS(s, null, Names({"y", "null"}),
                     call(g, x.data(), nullptr, kEpsilon, mean.data(), variance.data()));
  EXPECT_REJECTED_AS(s, null, Names({"mean", "null"}),
                     call(g, x.data(), y.data(), kEpsilon, nullptr, variance.data()));
  EXPECT_REJECTED_AS(s, null, Names({"variance", "null"}),
                     call(g, x.data(), y.data(), kEpsilon, mean.data(), nullptr));
  const float* odd = reinterpret_cast<const float*>(reinterpret_cast<const char*>(x.data()) + 1);
  EXPECT_REJECTED_IN_CHILD(s, Names({"x", "aligned"}),
                           call(g, odd, y.data(), kEpsilon, mean.data(), variance.data()));
  // y over x without being x: y's room holds both.
  Snapshot shared;
  shared.Add(y, "the shared buffer").Add(mean, "mean").Add(variance, "variance");
  EXPECT_REJECTED_AS(shared, invalid, Names({"overlap"}),
                     call(g, y.data(), y.data() + 7, kEpsilon, mean.data(), variance.data()));
}

TEST_F(BadInput, TrainingBackwardArguments) {
  const Geometry g = Geometry::Dense(4, 3, 5);
  std::vector<float> x = Ramp(60), dy = Ramp(60, 0.5f), dx(120, 9.0f);
  const std::vector<float> hi(3, 1.0f), lo(3, 0.0f);
  std::vector<double> variance(3, 2.0), s1(3, 7.0), s2(3, 7.0);
  Snapshot s;
  s.Add(dx, "dx").Add(x, "x").Add(dy, "dy").Add(s1, "sum_dy").Add(s2, "sum_dy_xmu");
  struct Args {
    Geometry g;
    const void* x;
    const void* dy;
    void* dx;
    const float* hi;
    const float* lo;
    const double* variance;
    double epsilon;
    double* s1;
    double* s2;
  };
  const Args good{g,         x.data(),        dy.data(), dx.data(), hi.data(),
                  lo.data(), variance.data(), kEpsilon,  s1.data(), s2.data()};
  const auto with = [&](auto change) {
    Args a = good;
    change(a);
    TrainingBackward(a.x, a.dy, a.dx, DType::kFloat32, a.g, a.hi, a.lo, a.variance, nullptr,
                     a.epsilon, a.s1, a.s2);
  };
  const ErrorCode invalid = ErrorCode::kInvalidArgument, null = ErrorCode::kNullPointer;
  EXPECT_REJECTED_AS(s, invalid, Names({"epsilon is -"}), with([](Args& a) { a.epsilon = -1.0; }));
  EXPECT_REJECTED_AS(s, invalid, Names({"epsilon", "finite"}),
                     with([](Args& a) { a.epsilon = std::numeric_limits<double>::infinity(); }));
  EXPECT_REJECTED_AS(s, invalid, Names({"0 values per channel", "the backward needs"}),
                     with([](Args& a) { a.g = Geometry::Dense(4, 3, 0); }));
  EXPECT_REJECTED_IN_CHILD(s, Names({"x", "null"}), with([](Args& a) { a.x = nullptr; }));
  EXPECT_REJECTED_IN_CHILD(s, Names({"dy", "null"}), with([](Args& a) { a.dy = nullptr; }));
  EXPECT_REJECTED_AS(s, null, Names({"dx", "null"}), with([](Args& a) { a.dx = nullptr; }));
  EXPECT_REJECTED_IN_CHILD(s, Names({"mean_hi", "null"}), with([](Args& a) { a.hi = nullptr; }));
  EXPECT_REJECTED_IN_CHILD(s, Names({"mean_lo", "null"}), with([](Args& a) { a.lo = nullptr; }));
  EXPECT_REJECTED_IN_CHILD(s, Names({"variance", "null"}),
                           with([](Args& a) { a.variance = nullptr; }));
  EXPECT_REJECTED_AS(s, null, Names({"sum_dy", "null"}), with([](Args& a) { a.s1 = nullptr; }));
  EXPECT_REJECTED_AS(s, null, Names({"sum_dy_xmu", "null"}), with([](Args& a) { a.s2 = nullptr; }));
  std::vector<double> negative = variance;
  negative[1] = -0.5;
  EXPECT_REJECTED_AS(s, invalid, Names({"variance[1]", ">= 0"}),
                     with([&](Args& a) { a.variance = negative.data(); }));
  negative[1] = kDoubleNaN;
  EXPECT_REJECTED_AS(s, invalid, Names({"variance[1]", "nan"}),
                     with([&](Args& a) { a.variance = negative.data(); }));
  void* odd = reinterpret_cast<char*>(dx.data()) + 2;
  EXPECT_REJECTED_IN_CHILD(s, Names({"dx", "aligned"}), with([&](Args& a) { a.dx = odd; }));
  // dx over dy or x without being it: dx's room holds both.
  Snapshot shared;
  shared.Add(dx, "the shared buffer").Add(s1, "sum_dy").Add(s2, "sum_dy_xmu");
  EXPECT_REJECTED_AS(shared, invalid, Names({"dy", "dx", "overlap"}), with([&](Args& a) {
                       a.dy = dx.data();
                       a.dx = dx.data() + 5;
                     }));
  EXPECT_REJECTED_AS(shared, invalid, Names({"x", "dx", "overlap"}), with([&](Args& a) {
                       a.x = dx.data() + 5;
                       a.dx = dx.data();
                     }));
}

}  // namespace
}  // namespace bad_input
}  // namespace bnorm
