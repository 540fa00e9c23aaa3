// SPDX-License-Identifier: Apache-2.0
// The SIMD target as a test parameter, after Highway's TestWithParamTarget
// (hwy/tests/hwy_gtest.h): a TEST_P of a TargetTest suite runs once per target
// this CPU supports, named after it (`Target/Normalize.InPlaceMatchesOutOfPlace/avx2`),
// so that --gtest_filter='*/avx2' runs one target.
#ifndef BNORM_TESTS_TARGET_TEST_H_
#define BNORM_TESTS_TARGET_TEST_H_

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "bnorm/targets.hpp"

namespace bnorm {
namespace test {

// Resets the target when a test body leaves early (fatal failure or throw).
class TargetResetter {
 public:
  TargetResetter() = default;
  TargetResetter(const TargetResetter&) = delete;
  TargetResetter& operator=(const TargetResetter&) = delete;
  ~TargetResetter() { ResetTarget(); }
};

// The targets this CPU supports, best first, by their lower-case names. The
// environment variable BNORM_TEST_TARGETS (comma-separated names) keeps only
// those: an emulated CPU that runs targets another run already covered (qemu's
// SVE "max" CPU also runs neon and scalar) tests only its own.
inline std::vector<std::string> SupportedTargetNames() {
  const char* only = std::getenv("BNORM_TEST_TARGETS");
  const std::string wanted = only == nullptr ? "" : "," + std::string(only) + ",";
  std::vector<std::string> names;
  for (const TargetInfo& t : SupportedTargets()) {
    if (wanted.empty() || wanted.find("," + t.name + ",") != std::string::npos) {
      names.push_back(t.name);
    }
  }
  return names;
}

// The best target and the 1-lane fallback (scalar with gcc, emu128 with clang):
// the heavy cases run on these two only, which covers the widest vectors and
// the fallback without 6x the time.
inline std::vector<std::string> BestAndFallbackTargetNames() {
  const std::vector<std::string> supported = SupportedTargetNames();
  std::vector<std::string> names;
  if (!supported.empty()) names.push_back(supported.front());
  const std::string fallback = CompiledTargets().back().name;
  if (names.empty() || names.front() != fallback) names.push_back(fallback);
  return names;
}

// Forces the target named by the parameter before the test and checks that
// the dispatch table really calls it; returns to the best target afterwards.
class TargetTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ForceTarget(GetParam());
    ASSERT_EQ(ActiveTarget(), GetParam());
  }
  void TearDown() override { ResetTarget(); }
};

inline std::string TargetParamName(const ::testing::TestParamInfo<std::string>& info) {
  return info.param;
}

}  // namespace test
}  // namespace bnorm

// Runs every TEST_P of `suite` (a TargetTest) on each supported target.
#define BNORM_INSTANTIATE_TARGET_TEST_SUITE_P(suite)                                   \
  INSTANTIATE_TEST_SUITE_P(Target, suite,                                              \
                           ::testing::ValuesIn(::bnorm::test::SupportedTargetNames()), \
                           ::bnorm::test::TargetParamName)

// Runs every TEST_P of `suite` on the best target and the fallback only.
#define BNORM_INSTANTIATE_BEST_AND_FALLBACK_TARGET_TEST_SUITE_P(suite)                       \
  INSTANTIATE_TEST_SUITE_P(Target, suite,                                                    \
                           ::testing::ValuesIn(::bnorm::test::BestAndFallbackTargetNames()), \
                           ::bnorm::test::TargetParamName)

#endif  // BNORM_TESTS_TARGET_TEST_H_
