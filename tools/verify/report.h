// SPDX-License-Identifier: Apache-2.0
// bnorm-verify's results: one row per target x kernel x layout, the failed checks (counted, the
// first ones listed) and the PASS/FAIL table.
#ifndef BNORM_TOOLS_VERIFY_REPORT_H_
#define BNORM_TOOLS_VERIFY_REPORT_H_

#include <cstddef>
#include <string>
#include <vector>

#include "tools/verify/matrix.h"

namespace bnorm {
namespace verify {

struct Row {
  size_t cases = 0;
  double max_abs = 0.0;
  double max_rel = 0.0;
  bool bitwise_equal = true;
  bool pass = true;
};

class Report {
 public:
  explicit Report(const std::vector<std::string>& targets)
      : targets_(targets), rows_(targets.size() * kKernelCount * kLayoutCount) {}

  Row& At(size_t target, Kernel kernel, Layout layout) {
    return rows_[(target * kKernelCount + kernel) * kLayoutCount + layout];
  }

  void Fail(Row* row, const std::string& message);

  size_t failure_count() const { return failure_count_; }

  void Print(size_t cases, double seconds) const;

 private:
  std::vector<std::string> targets_;
  std::vector<Row> rows_;
  std::vector<std::string> failures_;
  size_t failure_count_ = 0;
};

}  // namespace verify
}  // namespace bnorm

#endif  // BNORM_TOOLS_VERIFY_REPORT_H_
