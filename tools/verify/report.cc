// SPDX-License-Identifier: Apache-2.0
// bnorm-verify's table (see report.h).
#include "tools/verify/report.h"

#include <cstdio>

#include "tools/common/tolerances.h"

namespace bnorm {
namespace verify {
namespace {

// Failures listed in full after the table (all of them are counted).
constexpr size_t kMaxListedFailures = 25;

}  // namespace

void Report::Fail(Row* row, const std::string& message) {
  row->pass = false;
  if (failures_.size() < kMaxListedFailures) failures_.push_back(message);
  ++failure_count_;
}

void Report::Print(size_t cases, double seconds) const {
  std::printf("\n%-8s  %-10s  %-14s  %5s  %11s  %11s  %7s  %s\n", "target", "kernel", "layout",
              "cases", "max abs err", "max rel err", "bitwise", "result");
  size_t rows = 0, failed_rows = 0;
  for (size_t t = 0; t < targets_.size(); ++t) {
    for (int k = 0; k < kKernelCount; ++k) {
      for (int l = 0; l < kLayoutCount; ++l) {
        const Row& r = rows_[(t * kKernelCount + k) * kLayoutCount + l];
        if (r.cases == 0) continue;
        ++rows;
        failed_rows += !r.pass;
        std::printf("%-8s  %-10s  %-14s  %5zu  %11.3e  %11.3e  %7s  %s\n", targets_[t].c_str(),
                    kKernelNames[k], kLayoutNames[l], r.cases, r.max_abs, r.max_rel,
                    r.bitwise_equal ? "yes" : "NO", r.pass ? "PASS" : "FAIL");
      }
    }
  }
  std::printf(
      "\nmoments:   abs = max |mean - ref| and |var - ref|; rel = max of\n"
      "           |mean - ref| / max(|ref mean|, ref std) (limit %.0e) and\n"
      "           |var - ref| / ref var (limit %.0e; absolute %.0e where "
      "ref var = 0)\n"
      "normalize: abs = max |y - ref| (limit %.0e); rel = max |y - ref| / "
      "max(|ref|, 1)\n"
      "norm-add:  the same, for y = normalize + z with a residual z\n"
      "bwd-reduce: abs = max |S - ref| of S1 = sum dy, S2 = sum dy (x - mean);\n"
      "           rel = |S - ref| / sum |term| (limit %.0e)\n"
      "bwd-data:  abs = max |dx - ref|; rel = |dx - ref| / the channel's max |ref dx|\n"
      "           (limit %.0e)\n"
      "bitwise:   1 thread and all threads give identical bits (required)\n",
      testing::kMeanTolerance, testing::kVarianceTolerance, testing::kZeroVarianceTolerance,
      testing::kOutputTolerance, testing::kGradientSumTolerance, testing::kGradientTolerance);
  if (!failures_.empty()) {
    std::printf("\nfailed checks (%zu%s; shapes are outer x C x inner):\n", failure_count_,
                failure_count_ > failures_.size() ? ", first listed" : "");
    for (const std::string& f : failures_) std::printf("  %s\n", f.c_str());
  }
  std::printf(
      "\nbnorm-verify: %s: %zu of %zu rows failed, %zu failed checks; "
      "%zu cases x %zu targets x {1 thread, all threads}; %.1f s\n",
      failure_count_ == 0 ? "PASS" : "FAIL", failed_rows, rows, failure_count_, cases,
      targets_.size(), seconds);
}

}  // namespace verify
}  // namespace bnorm
