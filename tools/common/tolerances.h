// SPDX-License-Identifier: Apache-2.0
// How far bnorm's float32 kernels may be from the float64 references, for bnorm-verify (every
// kernel on every target) and bnorm-bench (its check of each timed output, and of oneDNN's).
#ifndef BNORM_TOOLS_COMMON_TOLERANCES_H_
#define BNORM_TOOLS_COMMON_TOLERANCES_H_

#include "bnorm/dtype.hpp"

namespace bnorm {
namespace testing {

// Batch moments: the mean relative to max(|mean|, std), the variance relative to itself, and an
// absolute bound where the reference variance is 0 (one value per channel).
constexpr double kMeanTolerance = 1e-6;
constexpr double kVarianceTolerance = 1e-6;
constexpr double kZeroVarianceTolerance = 1e-12;
// Normalize with float32 x and y: the absolute error of y.
constexpr double kOutputTolerance = 1e-5;
// The backward: S1 = Σdy and S2 = Σdy·(x − μ) within this fraction of Σ|dy| and
// Σ|dy·(x − μ)|; dx within kGradientTolerance of its channel's largest |dx|.
constexpr double kGradientSumTolerance = 1e-6;
constexpr double kGradientTolerance = 1e-5;

// A whole forward pass in `dtype`, relative to 1 + max |y|: float32 arithmetic, plus the
// rounding of a 16-bit y (at most 2^-11 of |y| for f16 and 2^-8 for bf16), with room to spare.
inline double ForwardTolerance(DType dtype) {
  return dtype == DType::kFloat32 ? 1e-4 : dtype == DType::kFloat16 ? 2e-3 : 1.6e-2;
}

}  // namespace testing
}  // namespace bnorm

#endif  // BNORM_TOOLS_COMMON_TOLERANCES_H_
