// SPDX-License-Identifier: Apache-2.0
// The engine-level operations of the batch-normalization backward pass over a
// canonical geometry: the per-channel reduction S1 = Σg, S2 = Σg·(x − μ) and
// the data pass dx = k·(g − a − (x − μ)·b), where g is dy (masked where a fused
// ReLU/ReLU6 had a zero derivative). A training backward is BackwardReduce,
// then per-channel constants from its sums (docs/semantics.md, "Backward (gradients)":
// k = γ·r·a_s·ρ, a = S1/n, b = ρ²·S2/n), then BackwardData. Both dispatch to
// the best SIMD target and split work into thread-count-independent blocks.
#ifndef BNORM_BACKWARD_HPP_
#define BNORM_BACKWARD_HPP_

#include "bnorm/dtype.hpp"
#include "bnorm/execution.hpp"
#include "bnorm/export.h"
#include "bnorm/geometry.hpp"

namespace bnorm {

// The forward's saved batch mean per channel, split in two floats (see
// SplitMean in bnorm/kernels.hpp) so that x − μ stays exact when
// |mean| >> std, and its fused activation. With kRelu, g = 0 where y <= 0;
// with kRelu6 also where y >= 6 (a select: a NaN in dy there gives 0; a NaN in
// y keeps dy). y is the forward's output, of x's type and geometry; it is
// unused (and may be null) with kNone.
struct BackwardReduceParams {
  const float* mean_hi = nullptr;
  const float* mean_lo = nullptr;
  Activation activation = Activation::kNone;
  const void* y = nullptr;
};

// Per channel c: sum_dy[c] = Σg and sum_dy_xmu[c] = Σg·(x − μ) in double, each
// sum formed around the mean (never Σg·x − μΣg) from float sums of at most 16
// terms, merged in a fixed block order: well within 1e-6 of Σ|g| and Σ|g·(x − μ)|,
// and bitwise the same for every thread count. x and dy are of `type`
// (float16/bfloat16 as 16-bit patterns) and share the geometry g. With no
// values per channel the sums are 0. Allocates nothing unless the blocks'
// partial sums exceed 16 KiB (beyond cache-resident tensors). Throws
// bnorm::Error naming the argument, before writing anything.
BNORM_API void BackwardReduce(const void* x, const void* dy, DType type, const Geometry& g,
                              const BackwardReduceParams& params, double* sum_dy,
                              double* sum_dy_xmu, const Execution& exec = Execution());

// The data pass's per-channel float coefficients, besides the split mean and
// the activation mask of BackwardReduceParams.
struct BackwardDataParams {
  const float* mean_hi = nullptr;
  const float* mean_lo = nullptr;
  const float* k = nullptr;
  const float* a = nullptr;
  const float* b = nullptr;
  Activation activation = Activation::kNone;
  const void* y = nullptr;
};

// dx = k·(g − a − ((x − mean_hi) − mean_lo)·b) per element, in float32 math
// for every `type`. dx may be the same buffer as dy (in place), x or y; any
// partial overlap is an error. Large outputs are written with streaming
// stores. Allocates nothing. Throws bnorm::Error naming the argument, before
// writing anything.
BNORM_API void BackwardData(const void* x, const void* dy, void* dx, DType type, const Geometry& g,
                            const BackwardDataParams& params, const Execution& exec = Execution());

// A plain training forward's backward in one call (no renorm, no adjustment,
// no mask): with ρ = 1/sqrt(variance + epsilon) per channel, the sums S1, S2
// (bitwise BackwardReduce's, written to sum_dy and sum_dy_xmu), then
// dx = γ·ρ·(dy − S1/n − (x − μ)·ρ²·S2/n) (bitwise BackwardData's with those
// constants rounded to float). dγ = ρ·S2 and dβ = S1 follow from the sums.
// `variance` is the forward's biased batch variance, `mean_hi`/`mean_lo` its
// split mean; gamma may be null (1). Channels-first tensors beyond the caches
// whose channels' x and dy fit in a core's cache are done channel by channel,
// which reads x and dy from memory once (3 volumes of traffic, not 5). dx may
// be dy. Throws bnorm::Error naming the argument, before writing anything.
BNORM_API void TrainingBackward(const void* x, const void* dy, void* dx, DType type,
                                const Geometry& g, const float* mean_hi, const float* mean_lo,
                                const double* variance, const float* gamma, double epsilon,
                                double* sum_dy, double* sum_dy_xmu,
                                const Execution& exec = Execution());

}  // namespace bnorm

#endif  // BNORM_BACKWARD_HPP_
