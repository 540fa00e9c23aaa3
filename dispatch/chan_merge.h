// SPDX-License-Identifier: Apache-2.0
// Chan, Golub and LeVeque's pairwise update: merges the moments (count, mean,
// M2) of a block b into a running a. Used by every target and by the driver, in
// double, in a fixed order, so results do not depend on threads.
#ifndef BNORM_DISPATCH_CHAN_MERGE_H_
#define BNORM_DISPATCH_CHAN_MERGE_H_

namespace bnorm {

inline void ChanMerge(double count_a, double* mean_a, double* m2_a,
                      double count_b, double mean_b, double m2_b) {
  const double count = count_a + count_b;
  const double delta = mean_b - *mean_a;
  *mean_a += delta * (count_b / count);
  *m2_a += m2_b + delta * delta * (count_a / count * count_b);
}

}  // namespace bnorm

#endif  // BNORM_DISPATCH_CHAN_MERGE_H_
