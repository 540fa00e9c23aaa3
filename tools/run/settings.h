// SPDX-License-Identifier: Apache-2.0
// bnorm-run's settings: the files, the layer's Keras arguments and the call, read from the
// command line with CLI11 (settings.cc has the flags and --help, the contract).
#ifndef BNORM_TOOLS_RUN_SETTINGS_H_
#define BNORM_TOOLS_RUN_SETTINGS_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bnorm/batch_norm.hpp"
#include "bnorm/communicator.hpp"

namespace bnorm {
namespace run {

struct Settings {
  std::string x;    // input .npy
  // The loss gradient (same shape and dtype as x): runs the backward of the last forward step.
  std::optional<std::string> dy;
  std::string out;  // output directory
  // The initial state files given, (flag, path), in the order they are read: --gamma, --beta,
  // --moving-mean, --moving-variance, --moving-stddev, --renorm-mean, --renorm-stddev.
  std::vector<std::pair<std::string, std::string>> state_files;
  // Both or neither (the flags need each other).
  std::optional<std::string> adjustment_scale, adjustment_bias;
  bnorm::Options options;
  std::optional<bool> training;
  int64_t steps = 1;
  std::optional<int64_t> threads;
  std::optional<std::string> target;
  // With --synchronized true, the ranks the layer spans (tools/run/ranks.h).
  std::shared_ptr<Communicator> communicator;
};

// The settings of the command line, or the exit status when there is nothing to run (0 after
// --help, 2 after a usage error, already reported). Throws Failure for a renorm-only flag
// without --renorm true.
std::optional<Settings> ParseSettings(int argc, char** argv, int* exit_status);

}  // namespace run
}  // namespace bnorm

#endif  // BNORM_TOOLS_RUN_SETTINGS_H_
