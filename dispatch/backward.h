// SPDX-License-Identifier: Apache-2.0
// The backward kernels of batch normalization over one block, dispatched to the
// best compiled target (backward.cc): the reduction S1 = Σg, S2 = Σg·(x − μ)
// per channel, and the data pass dx = k·(g − a − (x − μ)·b). g is dy, masked
// to 0 where the forward's fused activation has a zero derivative. The drivers
// in src/ops merge the blocks' sums in a fixed order.
#ifndef BNORM_DISPATCH_BACKWARD_H_
#define BNORM_DISPATCH_BACKWARD_H_

#include <cstddef>

#include "bnorm/dtype.hpp"
#include "dispatch/views.h"

namespace bnorm {
namespace dispatch {

// What both passes read of one block besides x (whose view, views.h, gives the
// element type and layout): dy and, with a mask, the forward's output y, of x's
// type, aligned to their size and laid out as x (one shape, the same strides). The mean of
// each channel arrives split in two floats: x - hi is exact for x near the
// mean, so large-mean inputs keep their digits. Per-channel arrays are indexed
// by the block's channel c (for a channels-first block, counted from its first
// channel).
struct BackwardOperands {
  const void* dy = nullptr;
  // g = 0 where y <= 0 (kRelu), or y <= 0 or y >= 6 (kRelu6); y is unused and
  // may be null with kNone. NaN in y keeps g.
  const void* y = nullptr;
  Activation mask = Activation::kNone;
  const float* mean_hi = nullptr;
  const float* mean_lo = nullptr;
};

// Channel c's sums go to sum_dy[c * stride] and sum_dy_xmu[c * stride] (the
// channels-first layout of per-block partials; channels-last blocks: 1).
struct BackwardSums {
  double* sum_dy = nullptr;
  double* sum_dy_xmu = nullptr;
  size_t stride = 1;
};

// The data pass's per-channel coefficients (float32, `channels` of each).
struct BackwardCoefficients {
  const float* k = nullptr;
  const float* a = nullptr;
  const float* b = nullptr;
};

// Reductions: every shape count >= 1. `from_memory` says the tensors exceed
// the caches, so the channels-first kernel prefetches ahead of its loads.
void BackwardReduceRows(const RowsView& x, const BackwardOperands& in, const BackwardSums& out,
                        bool from_memory);
void BackwardReduceRuns(const RunsView& x, const BackwardOperands& in, const BackwardSums& out,
                        bool from_memory);

// Data passes: dx has the inputs' layout and type; dx may equal x, dy or y
// (each element is read before it is written), any other overlap is the
// caller's error; any alignment. With `stream`, whole aligned vectors of dx
// use non-temporal stores and x, dy (and y) are prefetched ahead.
void BackwardDataRows(const RowsView& x, const BackwardOperands& in, const BackwardCoefficients& k,
                      void* dx, bool stream);
void BackwardDataRuns(const RunsView& x, const BackwardOperands& in, const BackwardCoefficients& k,
                      void* dx, bool stream);

}  // namespace dispatch
}  // namespace bnorm

#endif  // BNORM_DISPATCH_BACKWARD_H_
