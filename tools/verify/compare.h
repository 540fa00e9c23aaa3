// SPDX-License-Identifier: Apache-2.0
// How bnorm-verify measures and prints a kernel's error against the float64 reference, shared
// by the forward checks (check.cc) and the backward ones (check_backward.cc).
#ifndef BNORM_TOOLS_VERIFY_COMPARE_H_
#define BNORM_TOOLS_VERIFY_COMPARE_H_

#include <cmath>
#include <limits>
#include <string>

#include "tools/common/format.h"
#include "tools/common/tolerances.h"

namespace bnorm {
namespace verify {

constexpr double kEpsilon = 1e-3;  // Keras' default epsilon

// Nine significant digits: as many as a float32 value needs to be read back exactly.
inline std::string Format(double v) { return cli::FormatNumber(v, 9); }

// |got - want|, with NaN as infinitely wrong (a comparison with NaN would
// otherwise hide it).
inline double AbsError(double got, double want) {
  const double e = std::fabs(got - want);
  return std::isnan(e) ? std::numeric_limits<double>::infinity() : e;
}

// The error relative to `scale`. A zero scale (a channel of one value, or a sum
// of zero terms) divides by kZeroVarianceTolerance / limit instead, which turns
// the relative limit into the absolute bound kZeroVarianceTolerance.
inline double Relative(double abs, double scale, double limit) {
  return abs / (scale > 0.0 ? scale : testing::kZeroVarianceTolerance / limit);
}

}  // namespace verify
}  // namespace bnorm

#endif  // BNORM_TOOLS_VERIFY_COMPARE_H_
