// SPDX-License-Identifier: Apache-2.0
// How a channels-first channel's block results merge: moments in block order
// with Chan's formula in double, the backward's sums in block order. The
// two-pass operations and the channel-resident ones (resident_training.h,
// resident_backward.h) share these, so their results are bitwise equal.
#ifndef BNORM_SRC_OPS_RUNS_MERGE_H_
#define BNORM_SRC_OPS_RUNS_MERGE_H_

#include <cstddef>

#include "dispatch/chan_merge.h"

namespace bnorm {

// Channel c's `per_channel` block moments sit at part_mean[c * per_channel + k]
// and part_m2[...], block k holding counts[k] values. Writes the channel's
// mean and biased variance.
inline void MergeChannelBlocks(const double* part_mean, const double* part_m2, const double* counts,
                               size_t per_channel, size_t c, double* mean, double* variance) {
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

// The backward's: channel c's block sums at part_s1[c * per_channel + k] and
// part_s2[...], added in block order.
inline void SumChannelBlocks(const double* part_s1, const double* part_s2, size_t per_channel,
                             size_t c, double* sum_dy, double* sum_dy_xmu) {
  double s1 = 0.0, s2 = 0.0;
  for (size_t k = 0; k < per_channel; ++k) {
    s1 += part_s1[c * per_channel + k];
    s2 += part_s2[c * per_channel + k];
  }
  *sum_dy = s1;
  *sum_dy_xmu = s2;
}

}  // namespace bnorm

#endif  // BNORM_SRC_OPS_RUNS_MERGE_H_
