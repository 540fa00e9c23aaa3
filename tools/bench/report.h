// SPDX-License-Identifier: Apache-2.0
// bnorm-bench's results: one row per case, mode, thread count and target, printed as the table
// or as the JSON array that tools/bench-table.py and the tests read.
#ifndef BNORM_TOOLS_BENCH_REPORT_H_
#define BNORM_TOOLS_BENCH_REPORT_H_

#include <optional>
#include <string>
#include <vector>

#include "tools/bench/problem.h"
#include "tools/bench/roof.h"
#include "tools/bench/settings.h"
#include "tools/bench/timing.h"

namespace bnorm {
namespace bench {

struct Row {
  const Case* c = nullptr;
  std::string mode;
  int threads = 1;
  std::string target;
  Stats stats;
  bool residual = false;  // an inference that added z (--residual)
  int volumes = 0;        // elements of traffic per value (Problem::Volumes)
  double bytes = 0.0;     // minimum traffic of one call
  Roof roof;
  std::optional<double> reference_seconds;
  std::optional<double> reference_max_abs_diff;
  std::optional<double> onednn_seconds;
  std::optional<double> onednn_max_abs_diff;

  double gbps() const { return bytes / stats.median * 1e-9; }
  double gelems() const {
    return static_cast<double>(c->geometry.elements()) / stats.median * 1e-9;
  }
  double pct_roof() const { return 100.0 * gbps() / roof.gbps; }
};

// The first lines of the table: machine, run settings, what the numbers mean.
void PrintTableIntro(const Options& o, bool layer_training);
void PrintTableHeader(bool compare);
void PrintTableRow(const Row& r, bool compare);

// One JSON array on stdout, one object per row.
void PrintJson(const std::vector<Row>& rows, const Options& o);

}  // namespace bench
}  // namespace bnorm

#endif  // BNORM_TOOLS_BENCH_REPORT_H_
