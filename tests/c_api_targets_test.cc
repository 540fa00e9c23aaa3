// SPDX-License-Identifier: Apache-2.0
// The C ABI's process-wide settings (bnorm.h): listing, forcing and resetting
// the SIMD target (and a bad BNORM_TARGET), and bnorm_set_max_threads, which
// must not change any result.
#include <gtest/gtest.h>

#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bnorm/bnorm.h"
#include "bnorm/targets.hpp"
#include "tests/c_api_test_util.h"
#include "tests/test_util.h"

namespace bnorm {
namespace test {
namespace {

TEST(CApi, TargetsCanBeListedForcedAndReset) {
  const size_t count = bnorm_target_count();
  ASSERT_GE(count, 1u);
  std::vector<std::string> names;
  for (const TargetInfo& t : SupportedTargets()) names.push_back(t.name);
  ASSERT_EQ(names.size(), count);
  for (size_t i = 0; i < count; ++i) {
    ASSERT_NE(bnorm_target_name(i), nullptr);
    EXPECT_EQ(names[i], bnorm_target_name(i));
  }
  EXPECT_EQ(bnorm_target_name(count), nullptr);
  for (size_t i = 0; i < count; ++i) {
    ASSERT_EQ(bnorm_force_target(bnorm_target_name(i)), BNORM_STATUS_OK) << bnorm_last_error();
    EXPECT_STREQ(bnorm_active_target(), bnorm_target_name(i));
    EXPECT_EQ(ActiveTarget(), bnorm_target_name(i));
  }
  // Names are case-insensitive: the fallback ("scalar" or "emu128") in capitals.
  std::string upper = names.back();
  for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  ASSERT_EQ(bnorm_force_target(upper.c_str()), BNORM_STATUS_OK) << bnorm_last_error();
  EXPECT_EQ(bnorm_active_target(), names.back());
  ASSERT_EQ(bnorm_reset_target(), BNORM_STATUS_OK);
  EXPECT_STREQ(bnorm_active_target(), bnorm_target_name(0));
}

TEST(CApi, ForcingABadTargetIsAStatus) {
  const std::string active = bnorm_active_target();
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, bnorm_force_target(nullptr), "name is null");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, bnorm_force_target("no_such_cpu"),
                "'no_such_cpu' is unknown");
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, bnorm_force_target(""), "unknown");
  for (const TargetInfo& t : CompiledTargets()) {
    if (t.supported) continue;
    EXPECT_STATUS(BNORM_STATUS_UNSUPPORTED, bnorm_force_target(t.name.c_str()), t.name.c_str());
  }
  EXPECT_EQ(bnorm_active_target(), active);
}

// Sets a bad BNORM_TARGET, calls a kernel and exits with 0 if the call
// answered INVALID_ARGUMENT naming the variable.
void NormalizeWithBadEnvironmentTarget() {
  setenv("BNORM_TARGET", "no_such_cpu", 1);
  const int64_t shape[] = {4, 3};
  const int axis = -1;
  float x[12] = {}, y[12] = {}, c[3] = {};
  const bnorm_status status =
      bnorm_normalize(x, y, BNORM_DTYPE_F32, shape, 2, &axis, 1, c, c, c, 3, BNORM_ACTIVATION_NONE);
  const bool named = std::strstr(bnorm_last_error(), "BNORM_TARGET") != nullptr;
  std::exit(status == BNORM_STATUS_INVALID_ARGUMENT && named ? 0 : 1);
}

// A bad BNORM_TARGET surfaces at the first kernel call, as a status. It runs in
// a fresh process: the variable is read once per process.
TEST(CApiDeathTest, BadEnvironmentTargetIsAStatus) {
  // "threadsafe" re-executes this binary, which an emulated process cannot do
  // (no binfmt_misc); each ctest case is a fresh process anyway.
  GTEST_FLAG_SET(death_test_style, BNORM_TEST_LAUNCHER[0] != '\0' ? "fast" : "threadsafe");
  EXPECT_EXIT(NormalizeWithBadEnvironmentTarget(), ::testing::ExitedWithCode(0), "");
}

// Results are bitwise equal for every thread setting; large tensors take the
// parallel path.
TEST(CApi, MaxThreadsDoesNotChangeResults) {
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, bnorm_set_max_threads(-1), "n is -1");
  const int64_t shape[] = {64, 40, 40, 6};
  const int axes_last = -1, axes_first = 1;
  const size_t n = 64 * 40 * 40 * 6;
  const std::vector<float> x = Uniform(n, 50.0, 60.0, 77);
  const std::vector<float> coefficients = Uniform(40, -3.0, 3.0, 78);
  std::vector<std::vector<float>> outputs;
  std::vector<std::vector<double>> moments;
  for (int threads : {0, 1, 2, 3, 0}) {
    ASSERT_EQ(bnorm_set_max_threads(threads), BNORM_STATUS_OK) << bnorm_last_error();
    std::vector<float> y(n);
    ASSERT_EQ(bnorm_normalize(x.data(), y.data(), BNORM_DTYPE_F32, shape, 4, &axes_last, 1,
                              coefficients.data(), coefficients.data() + 6,
                              coefficients.data() + 12, 6, BNORM_ACTIVATION_RELU),
              BNORM_STATUS_OK);
    outputs.push_back(y);
    std::vector<double> m(92);
    ASSERT_EQ(bnorm_moments(x.data(), BNORM_DTYPE_F32, shape, 4, &axes_last, 1, m.data(),
                            m.data() + 6, 6),
              BNORM_STATUS_OK);
    ASSERT_EQ(bnorm_moments(x.data(), BNORM_DTYPE_F32, shape, 4, &axes_first, 1, m.data() + 12,
                            m.data() + 52, 40),
              BNORM_STATUS_OK);
    moments.push_back(m);
  }
  for (size_t i = 1; i < outputs.size(); ++i) {
    EXPECT_TRUE(SameBits(outputs[i], outputs[0])) << i;
    EXPECT_TRUE(SameBits(moments[i], moments[0])) << i;
  }
}

}  // namespace
}  // namespace test
}  // namespace bnorm
