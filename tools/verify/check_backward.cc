// SPDX-License-Identifier: Apache-2.0
// bnorm-verify's checks of the backward kernels (see check.h): BackwardReduce's S1 = Σdy and
// S2 = Σdy·(x − μ) and BackwardData's dx = k·(dy − a − (x − μ)·b), against the float64
// reference, one thread against all threads bit for bit, and no write outside dx.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "bnorm/backward.hpp"
#include "bnorm/execution.hpp"
#include "src/oracle/reference.h"
#include "tools/common/random.h"
#include "tools/common/tolerances.h"
#include "tools/verify/check.h"
#include "tools/verify/compare.h"

namespace bnorm {
namespace verify {

using testing::kGradientSumTolerance;
using testing::kGradientTolerance;

// dy is normal with a per-channel offset and spread, so that S1 is not ~0 and a kernel that
// mixes up channels cannot pass; k, a and b come from the reference sums as a training
// backward forms them (k = γ·ρ, a = S1/n, b = ρ²·S2/n), rounded to float as the layer does.
void CaseRunner::PrepareBackward(uint64_t seed) {
  testing::Random rng(seed);
  const size_t inner = c_.g.inner;
  for (size_t i = 0; i < n_; ++i) {
    const size_t ch = (i / inner) % C_;
    dy_[i] = static_cast<float>(0.1 * static_cast<double>(ch % 5) +
                                (1.0 + static_cast<double>(ch % 3)) * rng.Normal());
  }
  ref_s1_.assign(C_, 0.0);
  ref_s2_.assign(C_, 0.0);
  reference::BackwardReduce(x_, dy_, nullptr, Activation::kNone, c_.g, ref_mean_.data(),
                            ref_s1_.data(), ref_s2_.data());
  abs1_.assign(C_, 0.0);
  abs2_.assign(C_, 0.0);
  for (size_t i = 0; i < n_; ++i) {
    const size_t ch = (i / inner) % C_;
    abs1_[ch] += std::fabs(static_cast<double>(dy_[i]));
    abs2_[ch] +=
        std::fabs(static_cast<double>(dy_[i]) * (static_cast<double>(x_[i]) - ref_mean_[ch]));
  }
  const double n = static_cast<double>(c_.g.reduced());
  k_.resize(C_);
  a_.resize(C_);
  b_.resize(C_);
  for (size_t ch = 0; ch < C_; ++ch) {
    const double rho = 1.0 / std::sqrt(ref_var_[ch] + kEpsilon);
    const double gamma = 0.5 + 1.5 * rng.Uniform();
    k_[ch] = static_cast<float>(gamma * rho);
    a_[ch] = static_cast<float>(ref_s1_[ch] / n);
    b_[ch] = static_cast<float>(rho * rho * ref_s2_[ch] / n);
  }
  const std::vector<double> k(k_.begin(), k_.end()), a(a_.begin(), a_.end()),
      b(b_.begin(), b_.end());
  ref_dx_.assign(n_, 0.0);
  reference::BackwardData(x_, dy_, nullptr, Activation::kNone, c_.g, ref_mean_.data(), k.data(),
                          a.data(), b.data(), ref_dx_.data());
  dx_scale_.assign(C_, 0.0);
  for (size_t i = 0; i < n_; ++i) {
    const size_t ch = (i / inner) % C_;
    dx_scale_[ch] = std::max(dx_scale_[ch], std::fabs(ref_dx_[i]));
  }
}

void CaseRunner::CheckBackwardReduce(size_t t, const std::string& target) {
  Row& row = report_->At(t, kBackwardReduce, c_.shape.layout);
  ++row.cases;
  const BackwardReduceParams params{hi_.data(), lo_.data()};
  std::vector<double> s1(C_), s2(C_), s1_p(C_), s2_p(C_);
  BackwardReduce(x_, dy_, DType::kFloat32, c_.g, params, s1.data(), s2.data(), Execution::Serial());
  BackwardReduce(x_, dy_, DType::kFloat32, c_.g, params, s1_p.data(), s2_p.data(),
                 Execution::Parallel());
  if (std::memcmp(s1.data(), s1_p.data(), C_ * sizeof(double)) != 0 ||
      std::memcmp(s2.data(), s2_p.data(), C_ * sizeof(double)) != 0) {
    row.bitwise_equal = false;
    size_t ch = 0;
    while (ch + 1 < C_ && s1[ch] == s1_p[ch] && s2[ch] == s2_p[ch]) ++ch;
    report_->Fail(&row, target + " bwd-reduce " + c_.name +
                            ": 1 thread and all threads differ (channel " + std::to_string(ch) +
                            ": S1 " + Format(s1[ch]) + " vs " + Format(s1_p[ch]) + ", S2 " +
                            Format(s2[ch]) + " vs " + Format(s2_p[ch]) + ")");
  }
  size_t failing = 0, worst = 0;
  double worst_rel = -1.0;
  for (size_t ch = 0; ch < C_; ++ch) {
    const double abs1 = AbsError(s1[ch], ref_s1_[ch]);
    const double abs2 = AbsError(s2[ch], ref_s2_[ch]);
    const double rel = std::max(Relative(abs1, abs1_[ch], kGradientSumTolerance),
                                Relative(abs2, abs2_[ch], kGradientSumTolerance));
    row.max_abs = std::max({row.max_abs, abs1, abs2});
    row.max_rel = std::max(row.max_rel, rel);
    if (!(rel <= kGradientSumTolerance)) {
      ++failing;
      if (!(rel <= worst_rel)) {
        worst_rel = rel;
        worst = ch;
      }
    }
  }
  if (failing != 0) {
    const size_t ch = worst;
    report_->Fail(&row, target + " bwd-reduce " + c_.name + ": " + std::to_string(failing) +
                            " of " + std::to_string(C_) +
                            " channels out of tolerance; worst, channel " + std::to_string(ch) +
                            ": S1 " + Format(s1[ch]) + " (ref " + Format(ref_s1_[ch]) + "), S2 " +
                            Format(s2[ch]) + " (ref " + Format(ref_s2_[ch]) + "), rel err " +
                            Format(worst_rel));
  }
}

void CaseRunner::CheckBackwardData(size_t t, const std::string& target) {
  Row& row = report_->At(t, kBackwardData, c_.shape.layout);
  ++row.cases;
  const BackwardDataParams params{hi_.data(), lo_.data(), k_.data(), a_.data(), b_.data()};
  const Buffer serial(GuardedSize());
  const Buffer parallel(GuardedSize());
  float* dx = FillGuarded(serial);
  float* dx_p = FillGuarded(parallel);
  BackwardData(x_, dy_, dx, DType::kFloat32, c_.g, params, Execution::Serial());
  BackwardData(x_, dy_, dx_p, DType::kFloat32, c_.g, params, Execution::Parallel());

  CheckGuards(serial, &row, target, "bwd-data", "1 thread");
  CheckGuards(parallel, &row, target, "bwd-data", "all threads");
  if (std::memcmp(dx, dx_p, n_ * sizeof(float)) != 0) {
    row.bitwise_equal = false;
    size_t i = 0;
    while (i + 1 < n_ && std::memcmp(&dx[i], &dx_p[i], sizeof(float)) == 0) ++i;
    report_->Fail(&row, target + " bwd-data " + c_.name +
                            ": 1 thread and all threads differ (element " + std::to_string(i) +
                            ": " + Format(dx[i]) + " vs " + Format(dx_p[i]) + ")");
  }
  double worst_rel = -1.0;
  size_t worst = 0;
  for (size_t i = 0; i < n_; ++i) {
    const size_t ch = (i / c_.g.inner) % C_;
    const double abs = AbsError(dx[i], ref_dx_[i]);
    const double rel = Relative(abs, dx_scale_[ch], kGradientTolerance);
    row.max_abs = std::max(row.max_abs, abs);
    row.max_rel = std::max(row.max_rel, rel);
    if (!(rel <= worst_rel)) {
      worst_rel = rel;
      worst = i;
    }
  }
  if (!(worst_rel <= kGradientTolerance)) {
    const size_t i = worst;
    const size_t ch = (i / c_.g.inner) % C_;
    report_->Fail(&row, target + " bwd-data " + c_.name + ": element " + std::to_string(i) +
                            " (channel " + std::to_string(ch) + "): dx " + Format(dx[i]) +
                            ", ref " + Format(ref_dx_[i]) + ", channel max |dx| " +
                            Format(dx_scale_[ch]) + ", rel err " + Format(worst_rel));
  }
}

}  // namespace verify
}  // namespace bnorm
