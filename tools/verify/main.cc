// SPDX-License-Identifier: Apache-2.0
// bnorm-verify: runs every kernel (BatchMoments, Normalize without and with a residual,
// BackwardReduce, BackwardData) on every SIMD
// target this CPU supports, on one thread and on all threads, against the
// float64 reference over a fixed matrix of shapes, layouts and value
// distributions (matrix.h). Prints one row per target x kernel x layout and exits non-zero
// on any failure; ctest runs it as `bnorm-verify --seed 1`.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>
#include <vector>

#include "bnorm/error.hpp"
#include "bnorm/geometry.hpp"
#include "bnorm/targets.hpp"
#include "tools/common/cli.h"
#include "tools/common/format.h"
#include "tools/common/parse.h"
#include "tools/verify/check.h"
#include "tools/verify/matrix.h"
#include "tools/verify/report.h"

namespace bnorm {
namespace verify {
namespace {

constexpr uint64_t kDefaultSeed = 20240601;

struct Flags {
  std::string target;  // empty: every supported target
  uint64_t seed = kDefaultSeed;
  bool quick = false;
};

std::optional<Flags> ParseFlags(int argc, char** argv, int* exit_status) {
  Flags flags;
  CLI::App app(
      "Runs bnorm::BatchMoments, bnorm::Normalize (without and with a residual),\n"
      "bnorm::BackwardReduce and bnorm::BackwardData on every supported SIMD target,\n"
      "serial and parallel,\n"
      "against the float64 reference over a fixed\n"
      "matrix of shapes, layouts and value distributions.",
      "bnorm-verify");
  cli::Configure(&app, "usage: bnorm-verify [--target NAME] [--seed N] [--quick] [--help]", 17);
  app.footer("Exit status: 0 all pass, 1 a check failed, 2 bad arguments.");
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  const std::string group = "Flags";
  app.add_option("--target", flags.target,
                 "only this target (e.g. avx2; see the list printed first)")
      ->check(cli::IsTarget(/*allow_all=*/false))
      ->option_text("NAME")
      ->group(group);
  cli::AddParsed(&app, "--seed", &flags.seed, cli::ParseUnsigned,
                 "seed of the random data (default " + std::to_string(kDefaultSeed) + ")")
      ->option_text("N")
      ->group(group);
  app.add_flag("--quick", flags.quick, "a smaller matrix (no tensor above ~0.5M values)")
      ->group(group);
  cli::AddHelpFlag(&app, group);
  if (const std::optional<int> status = cli::Parse(&app, argc, argv, /*help_on_error=*/true)) {
    *exit_status = *status;
    return std::nullopt;
  }
  return flags;
}

std::vector<std::string> Names(const std::vector<TargetInfo>& targets) {
  std::vector<std::string> names;
  for (const TargetInfo& t : targets) names.push_back(t.name);
  return names;
}

int Run(const Flags& flags) {
  const auto start = std::chrono::steady_clock::now();
  const auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };

  std::vector<std::string> targets;
  try {
    std::printf("compiled targets:  %s\n", cli::Join(Names(CompiledTargets()), " ").c_str());
    std::printf("supported targets: %s\n", cli::Join(Names(SupportedTargets()), " ").c_str());
    if (flags.target.empty()) {
      targets = Names(SupportedTargets());
    } else {
      // The registry's spelling of the name (it is case-insensitive).
      ForceTarget(flags.target);
      targets.push_back(ActiveTarget());
      ResetTarget();
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "bnorm-verify: --target %s: %s\n", flags.target.c_str(), e.what());
    return cli::kExitUsage;
  }
  std::printf("verifying:         %s (seed %llu, %s matrix)\n", cli::Join(targets, " ").c_str(),
              static_cast<unsigned long long>(flags.seed), flags.quick ? "quick" : "full");
  std::fflush(stdout);

  Report report(targets);
  size_t cases = 0;
  try {
    for (size_t s = 0; s < sizeof(kShapes) / sizeof(kShapes[0]); ++s) {
      const Shape& shape = kShapes[s];
      if (flags.quick && !shape.quick) continue;
      const std::string shape_name =
          cli::FormatShape({static_cast<int64_t>(shape.outer), static_cast<int64_t>(shape.channels),
                            static_cast<int64_t>(shape.inner)});
      for (size_t d = 0; d < sizeof(kDistributions) / sizeof(kDistributions[0]); ++d) {
        Case c;
        c.shape = shape;
        c.g = Geometry::Dense(shape.outer, shape.channels, shape.inner);
        c.dist = &kDistributions[d];
        // Alternates aligned and misaligned bases so every shape sees both.
        c.offset = (s + d) % 2;
        c.name = std::string(kLayoutNames[shape.layout]) + " " + shape_name + " " + c.dist->name +
                 " offset " + std::to_string(c.offset);
        CaseRunner runner(c, CaseSeed(flags.seed, s, d), &report);
        for (size_t t = 0; t < targets.size(); ++t) runner.Run(t, targets[t]);
        ++cases;
      }
      // Progress only when the run is slow enough for someone to wonder.
      if (elapsed() > 10.0) {
        std::fprintf(stderr, "bnorm-verify: %5.1f s: %s %s done\n", elapsed(),
                     kLayoutNames[shape.layout], shape_name.c_str());
      }
    }
  } catch (const std::exception& e) {
    ResetTarget();
    std::fprintf(stderr, "bnorm-verify: FAIL: %s\n", e.what());
    return 1;
  }
  ResetTarget();

  report.Print(cases, elapsed());
  return report.failure_count() == 0 ? 0 : 1;
}

}  // namespace
}  // namespace verify
}  // namespace bnorm

int main(int argc, char** argv) {
  int exit_status = 0;
  const std::optional<bnorm::verify::Flags> flags =
      bnorm::verify::ParseFlags(argc, argv, &exit_status);
  return flags ? bnorm::verify::Run(*flags) : exit_status;
}
