// SPDX-License-Identifier: Apache-2.0
// The target registry over Highway's runtime dispatch. It asks a dispatch table
// of its own which target the tables call, so this file is compiled once per
// target too (foreach_target.h); the registry itself is compiled once.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "dispatch/targets.cc"
#include <stdint.h>

#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace bnorm {
namespace HWY_NAMESPACE {

HWY_NOINLINE int64_t DispatchedTarget() { return HWY_TARGET; }

}  // namespace HWY_NAMESPACE
}  // namespace bnorm
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <mutex>

#include "bnorm/error.hpp"
#include "bnorm/targets.hpp"
#include "hwy/targets.h"

namespace bnorm {
namespace {

HWY_EXPORT(DispatchedTarget);

// The HWY_* bit of the target the dispatch tables call now (all tables share
// Highway's chosen target, so this one answers for the kernels' too).
int64_t DispatchedTarget() { return HWY_DYNAMIC_DISPATCH(DispatchedTarget)(); }

std::string Lower(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

// All targets compiled into the kernels, best (lowest bit) first.
std::vector<int64_t> CompiledBits() {
  std::vector<int64_t> bits;
  for (int64_t t = HWY_TARGETS; t != 0; t &= t - 1) bits.push_back(t & ~(t - 1));
  return bits;
}

// What this CPU runs, ignoring any forcing done through this registry.
int64_t CpuTargets() {
  hwy::DisableTargets(0);
  const int64_t cpu = hwy::SupportedTargets();
  // Highway 1.0.3's SupportedTargets() leaves the dispatch tables Update()d with
  // the targets it saw before adding SVE_256/SVE2_128 (which depend on the vector
  // length), so the next call would dispatch to SVE/SVE2 on those CPUs. Reset them
  // so that the next dispatch detects again (through FunctionCache -> Update).
  hwy::DisableTargets(0);
  return cpu;
}

std::string Names(const std::vector<TargetInfo>& targets) {
  std::string names;
  for (const TargetInfo& t : targets) names += (names.empty() ? "" : ", ") + t.name;
  return names;
}

int64_t g_forced = 0;  // the bit ForceTarget chose, 0 when not forced
// Set once BNORM_TARGET was applied or an explicit ForceTarget/ResetTarget
// made it moot: an explicit choice in code wins over the environment.
std::atomic<bool> g_target_chosen{false};
std::mutex g_env_mutex;

void ForceTargetImpl(const std::string& name);

}  // namespace

std::vector<TargetInfo> CompiledTargets() {
  const int64_t cpu = CpuTargets();
  std::vector<TargetInfo> targets;
  for (int64_t bit : CompiledBits()) {
    targets.push_back(
        TargetInfo{Lower(hwy::TargetName(bit)), bit, (cpu & bit) != 0 || bit == HWY_SCALAR});
  }
  // CpuTargets() cleared any forcing; put it back.
  if (g_forced != 0) hwy::DisableTargets(HWY_TARGETS & ~g_forced);
  return targets;
}

std::vector<TargetInfo> SupportedTargets() {
  std::vector<TargetInfo> supported;
  for (const TargetInfo& t : CompiledTargets()) {
    if (t.supported) supported.push_back(t);
  }
  return supported;
}

void ForceTarget(const std::string& name) {
  g_target_chosen = true;
  ForceTargetImpl(name);
}

void ResetTarget() {
  g_target_chosen = true;
  g_forced = 0;
  hwy::DisableTargets(0);
}

namespace {

void ForceTargetImpl(const std::string& name) {
  const std::string wanted = Lower(name);
  const std::vector<TargetInfo> compiled = CompiledTargets();
  for (const TargetInfo& t : compiled) {
    if (t.name != wanted) continue;
    if (!t.supported) {
      throw Error(ErrorCode::kUnsupported,
                  "target '" + name +
                      "' is compiled but this CPU does not support it (supported: " +
                      Names(SupportedTargets()) + ")");
    }
    g_forced = t.bit;
    hwy::DisableTargets(HWY_TARGETS & ~t.bit);
    if (DispatchedTarget() != t.bit) {
      g_forced = 0;
      hwy::DisableTargets(0);
      throw Error(ErrorCode::kUnsupported, "target '" + name +
                                               "' could not be forced: dispatch still chose '" +
                                               ActiveTarget() + "'");
    }
    return;
  }
  throw Error(ErrorCode::kInvalidArgument,
              "target '" + name + "' is unknown (compiled: " + Names(compiled) + ")");
}

}  // namespace

std::string ActiveTarget() { return Lower(hwy::TargetName(DispatchedTarget())); }

void ApplyTargetFromEnvironment() {
  if (g_target_chosen) return;
  std::lock_guard<std::mutex> lock(g_env_mutex);
  if (g_target_chosen) return;
  const char* name = std::getenv("BNORM_TARGET");
  if (name != nullptr && *name != '\0') {
    try {
      ForceTargetImpl(name);
    } catch (const Error& e) {
      // Not marked chosen: every later call reports the bad name again.
      throw Error(e.code(), std::string("BNORM_TARGET: ") + e.what());
    }
  }
  g_target_chosen = true;
}

}  // namespace bnorm
#endif  // HWY_ONCE
