// SPDX-License-Identifier: Apache-2.0
// bnorm-bench's settings: what the command line asks for (cases, modes, dtype, threads, target,
// layer options, timing policy, output), read with CLI11 (settings.cc has the flags and --help).
#ifndef BNORM_TOOLS_BENCH_SETTINGS_H_
#define BNORM_TOOLS_BENCH_SETTINGS_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "bnorm/dtype.hpp"

namespace bnorm {
namespace bench {

// A command-line mistake found after parsing (a shapes file, a case the layer cannot run):
// printed as one line naming the flag, exit status 2 like CLI11's own usage errors.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] void Fail(const std::string& flag, const std::string& what);

// How a case's channels lie in memory: a layout of a logical N,C,... shape, or feature axes of
// a memory-order shape.
enum class Layout { kNhwc, kNchw, kAxis };

// Where a case of a sweep (--sweep, tools/bench/sweep.h) sits: the working set it was shaped
// for, as a fraction or multiple of one of this machine's caches.
struct SweepPoint {
  std::string sweep;        // "cache"
  std::string label;        // "1/4 L2", "8 LLC"; "1 L2 = 1/4 LLC" where two coincide
  size_t target_bytes = 0;  // the working set aimed at
  size_t l2_bytes = 0;
  size_t llc_bytes = 0;
};

// One case as given.
struct CaseSpec {
  std::string origin;  // the flag or file line it came from, for errors
  std::vector<int64_t> shape;
  Layout layout = Layout::kNhwc;
  std::vector<int> axes;            // kAxis only
  std::optional<SweepPoint> sweep;  // cases of --sweep only
};

struct Options {
  std::vector<CaseSpec> cases;
  bool inference = true;
  bool training = true;   // the forward
  bool backward = false;  // the gradients of a training forward
  DType dtype = DType::kFloat32;
  std::vector<int> threads;
  std::string target;  // empty: dispatched best
  std::optional<int64_t> virtual_batch_size;
  bool renorm = false;
  // Inference adds a seeded residual z and applies ReLU: y = relu(bn(x) + z), one pass
  // (NormalizeParams::residual); training and backward are unchanged.
  bool residual = false;
  int repeat = 20;
  double min_time = 0.2;
  bool json = false;
  bool compare_onednn = false;
  bool synchronized = false;  // the synchronized training step (tools/bench/synchronized.h)
  bool list_cases = false;    // print the cases as a shapes file instead of timing them
};

// The options of the command line, or the exit status when there is nothing to run (0 after
// --help, 2 after a usage error, already reported). Throws UsageError for a bad shapes file.
std::optional<Options> ParseOptions(int argc, char** argv, int* exit_status);

}  // namespace bench
}  // namespace bnorm

#endif  // BNORM_TOOLS_BENCH_SETTINGS_H_
