// SPDX-License-Identifier: Apache-2.0
// A synchronized layer's statistics over every rank: the per-group mean and
// biased variance of this rank's `count` values per group become those of
// every rank's values, bitwise the same on every rank.
#ifndef BNORM_SRC_SYNC_STATISTICS_H_
#define BNORM_SRC_SYNC_STATISTICS_H_

#include <cstddef>

#include "bnorm/communicator.hpp"

namespace bnorm {

// Collective: (count, mean, variance * count) per group, merged in rank order
// by comm.AllMergeMoments; writes back the merged mean and variance and returns
// the count over every rank (0: every rank's batch is empty, and mean and
// variance are left as they are). An empty rank passes count 0.
double MergeStatistics(Communicator& comm, double count, double* mean, double* variance,
                       size_t groups);

}  // namespace bnorm

#endif  // BNORM_SRC_SYNC_STATISTICS_H_
