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

namespace bnorm {
namespace dispatch {

// What both passes read of one block: x, dy and (with a mask) the forward's
// output y, all of `type` (float16/bfloat16 as 16-bit patterns), aligned to
// their size and laid out alike (one shape, the same strides). The mean of
// each channel arrives split in two floats: x - hi is exact for x near the
// mean, so large-mean inputs keep their digits. Per-channel arrays are indexed
// by the block's channel c (for a channels-first block, counted from its first
// channel).
struct BackwardInputs {
  const void* x = nullptr;
  const void* dy = nullptr;
  // g = 0 where y <= 0 (kRelu), or y <= 0 or y >= 6 (kRelu6); y is unused and
  // may be null with kNone. NaN in y keeps g.
  const void* y = nullptr;
  DType type = DType::kFloat32;
  Activation mask = Activation::kNone;
  const float* mean_hi = nullptr;
  const float* mean_lo = nullptr;
};

// Channels-last: `rows` rows of `channels` contiguous values, row starts
// `stride` elements apart. Vectorized across channels.
struct BackwardRows {
  size_t rows = 0;
  size_t channels = 0;
  size_t stride = 0;
};

// Channels-first: `channels` channels `channel_stride` elements apart, each
// `runs` runs of `len` contiguous values, run starts `stride` elements apart.
// Vectorized along the runs.
struct BackwardRuns {
  size_t channels = 0;
  size_t channel_stride = 0;
  size_t runs = 0;
  size_t len = 0;
  size_t stride = 0;
};

// The block's sums per channel, in double: sum_dy[c] = Σg and
// sum_dy_xmu[c] = Σg·((x - hi) - lo), each holding `channels` values.
struct BackwardSums {
  double* sum_dy = nullptr;
  double* sum_dy_xmu = nullptr;
};

// The data pass's per-channel coefficients (float32, `channels` of each).
struct BackwardCoefficients {
  const float* k = nullptr;
  const float* a = nullptr;
  const float* b = nullptr;
};

// Reductions: every shape count >= 1. `from_memory` says the tensors exceed
// the caches, so the channels-first kernel prefetches ahead of its loads.
void BackwardReduceRows(const BackwardInputs& in, const BackwardRows& shape,
                        const BackwardSums& out, bool from_memory);
void BackwardReduceRuns(const BackwardInputs& in, const BackwardRuns& shape,
                        const BackwardSums& out, bool from_memory);

// Data passes: dx has the inputs' layout and type; dx may equal x, dy or y
// (each element is read before it is written), any other overlap is the
// caller's error; any alignment. With `stream`, whole aligned vectors of dx
// use non-temporal stores and x, dy (and y) are prefetched ahead.
void BackwardDataRows(const BackwardInputs& in, const BackwardRows& shape,
                      const BackwardCoefficients& k, void* dx, bool stream);
void BackwardDataRuns(const BackwardInputs& in, const BackwardRuns& shape,
                      const BackwardCoefficients& k, void* dx, bool stream);

}  // namespace dispatch
}  // namespace bnorm

#endif  // BNORM_DISPATCH_BACKWARD_H_
