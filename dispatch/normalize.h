// SPDX-License-Identifier: Apache-2.0
// The normalize kernels: y = act(((x - hi) - lo) * scale + shift [+ z]) per
// channel over one block, dispatched to the best compiled target (normalize.cc).
#ifndef BNORM_DISPATCH_NORMALIZE_H_
#define BNORM_DISPATCH_NORMALIZE_H_

#include "bnorm/dtype.hpp"
#include "dispatch/views.h"

namespace bnorm {
namespace dispatch {

// Per-channel coefficients, indexed by the view's channel c (for a channels-
// first view, c counts from the view's first channel). The mean is split in
// two floats: x - hi is exact for x near the mean, so large-mean inputs keep
// their digits. lo may be null (all zero); the others are not.
struct NormalizeCoefficients {
  const float* hi = nullptr;
  const float* lo = nullptr;
  const float* scale = nullptr;
  const float* shift = nullptr;
  Activation act = Activation::kNone;
};

// y has x's layout and element type; y == x is allowed, any alignment. z, when
// not null, is a residual of x's layout and type (the block's start, same
// strides as x), added before the activation; z == y is allowed.
// With `stream`, whole vectors of y use non-temporal stores where aligned (for
// contiguous float32 rows whose channel count is a multiple of the vector
// width, the vectors are shifted to y's alignment).

// Channels-last: x.rows >= 1, x.channels >= 1.
void NormalizeRows(const RowsView& x, const void* z, void* y, const NormalizeCoefficients& k,
                   bool stream);

// Channels-first: x.channels, x.runs and x.len >= 1. With `next`, the block
// processed after this one is prefetched into L2 meanwhile (for a pass whose
// x is already cached: the channel-resident training).
void NormalizeRuns(const RunsView& x, const void* z, void* y, const NormalizeCoefficients& k,
                   bool stream, const RunsView* next = nullptr);

}  // namespace dispatch
}  // namespace bnorm

#endif  // BNORM_DISPATCH_NORMALIZE_H_
