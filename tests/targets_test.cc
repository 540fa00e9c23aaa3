// SPDX-License-Identifier: Apache-2.0
// The target registry: compiled and supported targets, forcing one by name,
// resetting, and the BNORM_TARGET environment variable (checked in child
// processes, since it applies once per process).
#include "bnorm/targets.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bnorm/error.hpp"
#include "bnorm/geometry.hpp"
#include "bnorm/kernels.hpp"
#include "tests/target_test.h"

namespace bnorm {
namespace {

// Highway's one-lane fallback: SCALAR with gcc, EMU128 with clang.
std::string Fallback() { return CompiledTargets().back().name; }

using ::testing::HasSubstr;
using ::testing::StartsWith;

// When the tests below re-execute this binary with kChildVariable set, the
// child does one thing before GoogleTest starts, prints the outcome on stdout
// and exits:
//   "kernel": calls BatchMoments, then Normalize, printing "active <target>"
//             after each success or "error <message>" after each failure;
//   "force-scalar": ForceTarget("scalar") first, then as "kernel".
constexpr char kChildVariable[] = "BNORM_TARGETS_TEST_CHILD";

void RunKernelsInChild() {
  const std::vector<float> x = {1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f};
  const Geometry g = Geometry::Dense(3, 2, 1);
  double mean[2], variance[2];
  const float hi[2] = {0, 0}, lo[2] = {0, 0}, scale[2] = {1, 1}, shift[2] = {0, 0};
  NormalizeParams p;
  p.mean_hi = hi;
  p.mean_lo = lo;
  p.scale = scale;
  p.shift = shift;
  float y[6];
  for (int call = 0; call < 2; ++call) {
    try {
      if (call == 0) {
        BatchMoments(x.data(), g, mean, variance);
      } else {
        Normalize(x.data(), y, g, p);
      }
      std::printf("active %s\n", ActiveTarget().c_str());
    } catch (const Error& e) {
      std::printf("error %s\n", e.what());
    }
  }
}

bool RunChildIfRequested() {
  const char* mode = std::getenv(kChildVariable);
  if (mode == nullptr) return false;
  const std::string m = mode;
  if (m == "force-scalar") ForceTarget(Fallback());
  RunKernelsInChild();
  std::fflush(stdout);
  std::_Exit(0);
}

[[maybe_unused]] const bool kIsChild = RunChildIfRequested();

std::string ShellQuote(const std::string& s) {
  std::string quoted = "'";
  for (char c : s) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

std::string SelfPath() {
  std::array<char, 4096> path{};
  const ssize_t n = readlink("/proc/self/exe", path.data(), path.size() - 1);
  return n > 0 ? std::string(path.data(), static_cast<size_t>(n)) : "";
}

// Runs this binary as a child in `mode` with BNORM_TARGET set to `target`
// (unset when null) and returns its stdout lines.
std::vector<std::string> RunChild(const char* mode, const char* target) {
  const std::string self = SelfPath();
  if (self.empty()) {
    ADD_FAILURE() << "cannot read /proc/self/exe";
    return {};
  }
  std::string command = "env -u BNORM_TARGET ";
  if (target != nullptr) {
    command += "BNORM_TARGET=" + ShellQuote(target) + " ";
  }
  command +=
      std::string(kChildVariable) + "=" + mode + " " + BNORM_TEST_LAUNCHER + ShellQuote(self);
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    ADD_FAILURE() << "popen failed: " << command;
    return {};
  }
  std::vector<std::string> lines;
  std::string line;
  std::array<char, 1024> buffer;
  while (std::fgets(buffer.data(), buffer.size(), pipe) != nullptr) {
    line += buffer.data();
    if (!line.empty() && line.back() == '\n') {
      line.pop_back();
      lines.push_back(line);
      line.clear();
    }
  }
  if (!line.empty()) lines.push_back(line);
  EXPECT_EQ(pclose(pipe), 0) << command;
  return lines;
}

std::vector<std::string> Names(const std::vector<TargetInfo>& targets) {
  std::vector<std::string> names;
  for (const TargetInfo& t : targets) names.push_back(t.name);
  return names;
}

std::string Upper(std::string s) {
  for (char& c : s) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return s;
}

std::string Lower(std::string s) {
  for (char& c : s) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return s;
}

TEST(Targets, CompiledTargetsIncludeTheFallbackAndAvx2) {
  const std::vector<std::string> names = Names(CompiledTargets());
  EXPECT_THAT(names, ::testing::Contains(Fallback()));
#if defined(__x86_64__) || defined(__i386__)
  EXPECT_THAT(names, ::testing::Contains("avx2"));
#endif
  // The fallback is compiled and always supported: it comes last.
  EXPECT_TRUE(names.back() == "scalar" || names.back() == "emu128") << names.back();
  EXPECT_TRUE(CompiledTargets().back().supported);
  for (const TargetInfo& t : CompiledTargets()) {
    EXPECT_EQ(t.name, Lower(t.name));
    EXPECT_NE(t.bit, 0);
  }
}

TEST(Targets, SupportedTargetsAreTheSupportedCompiledOnesInOrder) {
  const std::vector<TargetInfo> compiled = CompiledTargets();
  const std::vector<TargetInfo> supported = SupportedTargets();
  ASSERT_FALSE(supported.empty());
  std::vector<std::string> expected;
  for (const TargetInfo& t : compiled) {
    if (t.supported) expected.push_back(t.name);
  }
  EXPECT_EQ(Names(supported), expected);
  for (const TargetInfo& t : supported) EXPECT_TRUE(t.supported) << t.name;
}

TEST(Targets, ForceTargetSelectsEachSupportedTarget) {
  test::TargetResetter reset;
  for (const TargetInfo& t : SupportedTargets()) {
    ForceTarget(t.name);
    EXPECT_EQ(ActiveTarget(), t.name);
  }
}

// Asking for a target of another architecture or a typo fails loudly and
// names the target and every compiled one.
TEST(Targets, UnknownTargetIsAnErrorListingTheCompiledOnes) {
  test::TargetResetter reset;
  std::string message;
  try {
    ForceTarget("avx9");
    ADD_FAILURE() << "ForceTarget(\"avx9\") did not throw";
  } catch (const Error& e) {
    message = e.what();
  }
  EXPECT_THAT(message, HasSubstr("'avx9'"));
  EXPECT_THAT(message, HasSubstr("unknown"));
  for (const TargetInfo& t : CompiledTargets()) {
    EXPECT_THAT(message, HasSubstr(t.name));
  }
  EXPECT_THROW(ForceTarget(""), Error);
}

TEST(Targets, FailedForceTargetKeepsTheActiveTarget) {
  test::TargetResetter reset;
  ForceTarget(Fallback());
  EXPECT_THROW(ForceTarget("avx9"), Error);
  EXPECT_EQ(ActiveTarget(), Fallback());
}

TEST(Targets, NamesAreCaseInsensitive) {
  test::TargetResetter reset;
  for (const TargetInfo& t : SupportedTargets()) {
    ForceTarget(Upper(t.name));
    EXPECT_EQ(ActiveTarget(), t.name);
  }
  ForceTarget("Scalar");
  EXPECT_EQ(ActiveTarget(), Fallback());
}

// Listing the targets asks Highway what the CPU supports, which undoes any
// forcing for a moment; the forced target must be back afterwards.
TEST(Targets, ListingTargetsKeepsTheForcedTarget) {
  test::TargetResetter reset;
  const size_t supported = SupportedTargets().size();
  ForceTarget(Fallback());
  EXPECT_EQ(SupportedTargets().size(), supported);
  EXPECT_EQ(CompiledTargets().back().name, Fallback());
  EXPECT_EQ(ActiveTarget(), Fallback());
}

TEST(Targets, ResetTargetReturnsToTheBestSupported) {
  ForceTarget(Fallback());
  ResetTarget();
  EXPECT_EQ(ActiveTarget(), SupportedTargets().front().name);
}

TEST(TargetEnvironment, WithoutBnormTargetKernelsRunTheBestTarget) {
  const std::string best = SupportedTargets().front().name;
  EXPECT_THAT(RunChild("kernel", nullptr),
              ::testing::ElementsAre("active " + best, "active " + best));
}

TEST(TargetEnvironment, BnormTargetForcesEachSupportedTarget) {
  for (const TargetInfo& t : SupportedTargets()) {
    EXPECT_THAT(RunChild("kernel", t.name.c_str()),
                ::testing::ElementsAre("active " + t.name, "active " + t.name));
  }
}

TEST(TargetEnvironment, BnormTargetIsCaseInsensitive) {
  EXPECT_THAT(RunChild("kernel", "SCALAR"),
              ::testing::ElementsAre("active scalar", "active scalar"));
  // The best target with a capital first letter ("Avx3_dl", "Avx2", ...).
  const std::string best = SupportedTargets().front().name;
  const std::string mixed = Upper(best.substr(0, 1)) + best.substr(1);
  EXPECT_THAT(RunChild("kernel", mixed.c_str()),
              ::testing::ElementsAre("active " + best, "active " + best));
}

// An unknown BNORM_TARGET makes the first kernel call throw an Error naming
// the variable and the value, and every later call too.
TEST(TargetEnvironment, UnknownBnormTargetMakesKernelCallsThrow) {
  const std::vector<std::string> lines = RunChild("kernel", "avx9");
  ASSERT_EQ(lines.size(), 2u);
  for (const std::string& line : lines) {
    EXPECT_THAT(line, StartsWith("error "));
    EXPECT_THAT(line, HasSubstr("BNORM_TARGET"));
    EXPECT_THAT(line, HasSubstr("avx9"));
  }
}

// ForceTarget in code is an explicit choice: it wins over BNORM_TARGET.
TEST(TargetEnvironment, ForceTargetWinsOverBnormTarget) {
  EXPECT_THAT(RunChild("force-scalar", "avx9"),
              ::testing::ElementsAre("active scalar", "active scalar"));
  EXPECT_THAT(RunChild("force-scalar", "avx2"),
              ::testing::ElementsAre("active scalar", "active scalar"));
}

}  // namespace
}  // namespace bnorm
