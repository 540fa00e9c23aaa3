// SPDX-License-Identifier: Apache-2.0
// The moments kernels: per-channel mean and M2 (sum of squared deviations) of
// one block, dispatched to the best compiled target (moments.cc). The drivers
// in src/ops merge the blocks' moments in a fixed order.
#ifndef BNORM_DISPATCH_MOMENTS_H_
#define BNORM_DISPATCH_MOMENTS_H_

#include "dispatch/views.h"

namespace bnorm {
namespace dispatch {

// Channels-last: writes mean[c] and m2[c] for c < x.channels.
// x.rows >= 1, x.channels >= 1; mean and m2 hold x.channels values.
void MomentsRows(const RowsView& x, double* mean, double* m2);

// Channels-first: writes mean[c * out_stride] and m2[c * out_stride] for
// c < x.channels (out_stride: the layout of per-block partials). x.channels,
// x.runs and x.len >= 1. Each channel's results are the same however many
// channels a view holds. `from_memory` says x exceeds the caches, so the
// kernel prefetches ahead of its loads (results do not change).
void MomentsRuns(const RunsView& x, double* mean, double* m2, size_t out_stride,
                 bool from_memory);

}  // namespace dispatch
}  // namespace bnorm

#endif  // BNORM_DISPATCH_MOMENTS_H_
