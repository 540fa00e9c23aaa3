// SPDX-License-Identifier: Apache-2.0
// bnorm-verify's checks of one case against the float64 reference (see check.h).
#include "tools/verify/check.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>

#include "bnorm/execution.hpp"
#include "bnorm/kernels.hpp"
#include "bnorm/targets.hpp"
#include "src/oracle/reference.h"
#include "tools/common/format.h"
#include "tools/common/random.h"
#include "tools/common/tolerances.h"
#include "tools/verify/compare.h"

namespace bnorm {
namespace verify {
namespace {

using testing::kMeanTolerance;
using testing::kOutputTolerance;
using testing::kVarianceTolerance;
using testing::kZeroVarianceTolerance;

// Floats on each side of an output that the kernels must leave untouched.
constexpr size_t kGuard = 64;

float GuardValue() {
  const uint32_t bits = 0x7FA5A5A5u;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

}  // namespace

Buffer::Buffer(size_t count) {
  try {
    bytes_ = testing::AllocateAligned(count * sizeof(float));
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "bnorm-verify: out of memory (%zu floats)\n", count);
    std::exit(1);
  }
}

CaseRunner::CaseRunner(const Case& c, uint64_t seed, Report* report)
    : c_(c),
      report_(report),
      n_(c.g.elements()),
      C_(c.g.channels),
      x_buffer_(n_ + c.offset),
      x_(x_buffer_.get() + c.offset),
      ref_mean_(C_),
      ref_var_(C_),
      ref_y_(n_),
      hi_(C_),
      lo_(C_),
      scale_(C_),
      shift_(C_),
      dy_buffer_(n_ + c.offset),
      dy_(dy_buffer_.get() + c.offset) {
  testing::Random rng(seed);
  for (size_t i = 0; i < n_; ++i) {
    x_[i] = Sample(*c.dist, (i / c.g.inner) % C_, &rng);
  }
  reference::Moments(x_, c.g, ref_mean_.data(), ref_var_.data());

  // Normalize's coefficients from the reference statistics and random
  // gamma in [0.5, 2], beta in [-1, 1]. The reference gets the same float
  // gamma and beta, so only the kernel's arithmetic differs.
  std::vector<double> gamma(C_), beta(C_);
  for (size_t ch = 0; ch < C_; ++ch) {
    const float g = static_cast<float>(0.5 + 1.5 * rng.Uniform());
    const float b = static_cast<float>(-1.0 + 2.0 * rng.Uniform());
    gamma[ch] = g;
    beta[ch] = b;
    SplitMean(ref_mean_[ch], &hi_[ch], &lo_[ch]);
    scale_[ch] = static_cast<float>(g / std::sqrt(ref_var_[ch] + kEpsilon));
    shift_[ch] = b;
  }
  reference::Normalize(x_, c.g, ref_mean_.data(), ref_var_.data(), gamma.data(), beta.data(),
                       kEpsilon, ref_y_.data());
  PrepareBackward(rng.Bits());
}

void CaseRunner::Run(size_t target_index, const std::string& target) {
  ForceTarget(target);
  const std::string active = ActiveTarget();
  if (active != target) {
    report_->Fail(&report_->At(target_index, kMoments, c_.shape.layout),
                  target + ": forced, but the kernels dispatch to " + active);
  }
  CheckMoments(target_index, target);
  CheckNormalize(target_index, target, kNormalize);
  CheckNormalize(target_index, target, kNormalizeAdd);
  CheckBackwardReduce(target_index, target);
  CheckBackwardData(target_index, target);
}

void CaseRunner::CheckMoments(size_t t, const std::string& target) {
  Row& row = report_->At(t, kMoments, c_.shape.layout);
  ++row.cases;
  std::vector<double> mean(C_), var(C_), mean_p(C_), var_p(C_);
  BatchMoments(x_, c_.g, mean.data(), var.data(), Execution::Serial());
  BatchMoments(x_, c_.g, mean_p.data(), var_p.data(), Execution::Parallel());
  if (std::memcmp(mean.data(), mean_p.data(), C_ * sizeof(double)) != 0 ||
      std::memcmp(var.data(), var_p.data(), C_ * sizeof(double)) != 0) {
    row.bitwise_equal = false;
    size_t ch = 0;
    while (ch + 1 < C_ && mean[ch] == mean_p[ch] && var[ch] == var_p[ch]) {
      ++ch;
    }
    report_->Fail(&row, target + " moments " + c_.name +
                            ": 1 thread and all threads differ (channel " + std::to_string(ch) +
                            ": mean " + Format(mean[ch]) + " vs " + Format(mean_p[ch]) + ", var " +
                            Format(var[ch]) + " vs " + Format(var_p[ch]) + ")");
  }
  // One failure per case: the worst channel and how many channels fail.
  size_t failing = 0, worst = 0;
  double worst_rel = -1.0;
  for (size_t ch = 0; ch < C_; ++ch) {
    const double std = std::sqrt(ref_var_[ch]);
    const double mean_abs = AbsError(mean[ch], ref_mean_[ch]);
    const double mean_rel =
        Relative(mean_abs, std::max(std::fabs(ref_mean_[ch]), std), kMeanTolerance);
    const double var_abs = AbsError(var[ch], ref_var_[ch]);
    const double var_rel = Relative(var_abs, ref_var_[ch], kVarianceTolerance);
    row.max_abs = std::max({row.max_abs, mean_abs, var_abs});
    row.max_rel = std::max({row.max_rel, mean_rel, var_rel});
    if (!(mean_rel <= kMeanTolerance) || !(var_rel <= kVarianceTolerance)) {
      ++failing;
      const double rel = std::max(mean_rel, var_rel);
      if (!(rel <= worst_rel)) {
        worst_rel = rel;
        worst = ch;
      }
    }
  }
  if (failing != 0) {
    const size_t ch = worst;
    const double std = std::sqrt(ref_var_[ch]);
    report_->Fail(
        &row,
        target + " moments " + c_.name + ": " + std::to_string(failing) + " of " +
            std::to_string(C_) + " channels out of tolerance; " + "worst, channel " +
            std::to_string(ch) + ": mean " + Format(mean[ch]) + " (ref " + Format(ref_mean_[ch]) +
            ", rel err " +
            Format(Relative(AbsError(mean[ch], ref_mean_[ch]),
                            std::max(std::fabs(ref_mean_[ch]), std), kMeanTolerance)) +
            "), var " + Format(var[ch]) + " (ref " + Format(ref_var_[ch]) + ", rel err " +
            Format(Relative(AbsError(var[ch], ref_var_[ch]), ref_var_[ch], kVarianceTolerance)) +
            ")");
  }
}

void CaseRunner::CheckNormalize(size_t t, const std::string& target, Kernel kernel) {
  Row& row = report_->At(t, kernel, c_.shape.layout);
  ++row.cases;
  // The residual is the backward's random dy: a tensor of x's shape at x's offset.
  const bool add = kernel == kNormalizeAdd;
  const NormalizeParams params{hi_.data(),    lo_.data(),        scale_.data(),
                               shift_.data(), Activation::kNone, add ? dy_ : nullptr};
  const auto ref = [&](size_t i) { return add ? ref_y_[i] + dy_[i] : ref_y_[i]; };
  const std::string what = kKernelNames[kernel];
  const Buffer serial(GuardedSize());
  const Buffer parallel(GuardedSize());
  float* y = FillGuarded(serial);
  float* y_p = FillGuarded(parallel);
  Normalize(x_, y, c_.g, params, Execution::Serial());
  Normalize(x_, y_p, c_.g, params, Execution::Parallel());

  CheckGuards(serial, &row, target, what.c_str(), "1 thread");
  CheckGuards(parallel, &row, target, what.c_str(), "all threads");
  if (std::memcmp(y, y_p, n_ * sizeof(float)) != 0) {
    row.bitwise_equal = false;
    size_t i = 0;
    while (i + 1 < n_ && std::memcmp(&y[i], &y_p[i], sizeof(float)) == 0) {
      ++i;
    }
    report_->Fail(&row, target + " " + what + " " + c_.name +
                            ": 1 thread and all threads differ (element " + std::to_string(i) +
                            ": " + Format(y[i]) + " vs " + Format(y_p[i]) + ")");
  }
  double worst = -1.0;
  size_t worst_index = 0;
  for (size_t i = 0; i < n_; ++i) {
    const double abs = AbsError(y[i], ref(i));
    row.max_rel = std::max(row.max_rel, abs / std::max(std::fabs(ref(i)), 1.0));
    if (abs > worst) {
      worst = abs;
      worst_index = i;
    }
  }
  row.max_abs = std::max(row.max_abs, worst);
  if (!(worst <= kOutputTolerance)) {
    const size_t i = worst_index;
    report_->Fail(&row, target + " " + what + " " + c_.name + ": element " + std::to_string(i) +
                            " (channel " + std::to_string((i / c_.g.inner) % C_) + "): y " +
                            Format(y[i]) + ", ref " + Format(ref(i)) + ", abs err " +
                            Format(worst));
  }
}

size_t CaseRunner::GuardedSize() const { return kGuard + c_.offset + n_ + kGuard; }

float* CaseRunner::FillGuarded(const Buffer& buffer) const {
  std::fill(buffer.get(), buffer.get() + GuardedSize(), GuardValue());
  return buffer.get() + kGuard + c_.offset;
}

void CaseRunner::CheckGuards(const Buffer& buffer, Row* row, const std::string& target,
                             const char* what, const char* mode) {
  const float* base = buffer.get();
  const size_t y_begin = kGuard + c_.offset;
  const float guard = GuardValue();
  for (size_t i = 0; i < GuardedSize(); ++i) {
    if (i == y_begin) i += n_;
    if (i < GuardedSize() && std::memcmp(base + i, &guard, sizeof(float)) != 0) {
      const long long at = static_cast<long long>(i) - static_cast<long long>(y_begin);
      report_->Fail(row, target + " " + what + " " + c_.name + " (" + mode +
                             "): wrote outside its output, at [" + std::to_string(at) + "]");
      return;
    }
  }
}

uint64_t CaseSeed(uint64_t seed, size_t shape, size_t dist) {
  testing::Random mix(seed ^ (0xD1B54A32D192ED03ull * (shape * 64 + dist + 1)));
  return mix.Bits();
}

}  // namespace verify
}  // namespace bnorm
