// SPDX-License-Identifier: Apache-2.0
// bnorm-run's failures: each carries its exit status (1 input/output, 2 usage) and a one-line
// message, printed by main as "bnorm-run: <message>".
#ifndef BNORM_TOOLS_RUN_FAILURE_H_
#define BNORM_TOOLS_RUN_FAILURE_H_

#include <string>

#include "tools/common/cli.h"

namespace bnorm {
namespace run {

constexpr int kExitIo = 1;

struct Failure {
  int exit_code;
  std::string message;
};

[[noreturn]] inline void UsageError(const std::string& message) {
  throw Failure{cli::kExitUsage, message};
}
[[noreturn]] inline void IoError(const std::string& message) { throw Failure{kExitIo, message}; }

}  // namespace run
}  // namespace bnorm

#endif  // BNORM_TOOLS_RUN_FAILURE_H_
