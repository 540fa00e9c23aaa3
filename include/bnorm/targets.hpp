// SPDX-License-Identifier: Apache-2.0
// The target registry: which SIMD targets were compiled, which this CPU runs,
// and forcing one by name (tests, the CLIs and users who want to pin a target).
// The environment variable BNORM_TARGET forces a target at the first kernel call.
#ifndef BNORM_TARGETS_HPP_
#define BNORM_TARGETS_HPP_

#include <cstdint>
#include <string>
#include <vector>

#include "bnorm/export.h"

namespace bnorm {

struct TargetInfo {
  std::string name;  // lower case: "avx3_dl", "avx3", "avx2", "sse4", "scalar", ...
  int64_t bit = 0;   // Highway's HWY_* bit
  bool supported = false;  // this CPU can run it
};

// Every compiled target, best first. Like ForceTarget, not thread-safe: asking
// the CPU resets Highway's dispatch for a moment, so list targets before
// starting parallel work.
BNORM_API std::vector<TargetInfo> CompiledTargets();
// The compiled targets this CPU supports, best first.
BNORM_API std::vector<TargetInfo> SupportedTargets();

// Forces the kernels onto one target by name (case-insensitive). Throws
// bnorm::Error naming the target if it is unknown, not compiled or not supported.
// Not thread-safe: call it before starting parallel work.
BNORM_API void ForceTarget(const std::string& name);
// Back to the best supported target.
BNORM_API void ResetTarget();
// The name of the target the kernels dispatch to now (asked of the dispatch
// table itself, so it proves which code runs).
BNORM_API std::string ActiveTarget();

// Applies BNORM_TARGET if set (once per process; kernels call it lazily).
// Throws bnorm::Error for an unknown or unsupported name.
BNORM_API void ApplyTargetFromEnvironment();

}  // namespace bnorm

#endif  // BNORM_TARGETS_HPP_
