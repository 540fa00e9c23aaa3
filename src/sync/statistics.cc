// SPDX-License-Identifier: Apache-2.0
// MergeStatistics: the layer's statistics as moments records and back. Built
// with -ffp-contract=off like merge.cc (src/CMakeLists.txt): every rank must
// round the same way.
#include "src/sync/statistics.h"

#include <vector>

namespace bnorm {

double MergeStatistics(Communicator& comm, double count, double* mean, double* variance,
                       size_t groups) {
  if (groups == 0) return 0.0;
  std::vector<double> records(3 * groups);
  for (size_t q = 0; q < groups; ++q) {
    records[3 * q] = count;
    records[3 * q + 1] = count == 0.0 ? 0.0 : mean[q];
    records[3 * q + 2] = count == 0.0 ? 0.0 : variance[q] * count;
  }
  comm.AllMergeMoments(records.data(), groups);
  const double total = records[0];
  if (total == 0.0) return 0.0;
  for (size_t q = 0; q < groups; ++q) {
    mean[q] = records[3 * q + 1];
    const double v = records[3 * q + 2] / total;
    variance[q] = v < 0.0 ? 0.0 : v;
  }
  return total;
}

}  // namespace bnorm
