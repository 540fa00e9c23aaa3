// SPDX-License-Identifier: Apache-2.0
// How a channels-first channel's block moments merge: in block order, with
// Chan's formula in double. BatchMoments and the channel-resident training
// pass (resident_training.h) share it, so their statistics are bitwise equal.
#ifndef BNORM_SRC_OPS_RUNS_MERGE_H_
#define BNORM_SRC_OPS_RUNS_MERGE_H_

#include <cstddef>

#include "dispatch/chan_merge.h"

namespace bnorm {

// Channel c's `per_channel` block moments sit at part_mean[c * per_channel + k]
// and part_m2[...], block k holding counts[k] values. Writes the channel's
// mean and biased variance.
inline void MergeChannelBlocks(const double* part_mean, const double* part_m2,
                               const double* counts, size_t per_channel, size_t c, double* mean,
                               double* variance) {
  double count = 0.0, m = 0.0, m2 = 0.0;
  for (size_t k = 0; k < per_channel; ++k) {
    const size_t i = c * per_channel + k;
    const double n = counts[k];
    if (count == 0.0) {
      m = part_mean[i];
      m2 = part_m2[i];
    } else {
      ChanMerge(count, &m, &m2, n, part_mean[i], part_m2[i]);
    }
    count += n;
  }
  *mean = m;
  const double v = m2 / count;
  *variance = v < 0.0 ? 0.0 : v;
}

}  // namespace bnorm

#endif  // BNORM_SRC_OPS_RUNS_MERGE_H_
