// SPDX-License-Identifier: Apache-2.0
// The low-level operations over a canonical geometry: per-channel batch moments
// and the normalize pass. Both dispatch to the best SIMD target, split work into
// thread-count-independent blocks and never allocate on the normalize path.
#ifndef BNORM_KERNELS_HPP_
#define BNORM_KERNELS_HPP_

#include "bnorm/dtype.hpp"
#include "bnorm/execution.hpp"
#include "bnorm/export.h"
#include "bnorm/geometry.hpp"

namespace bnorm {

// Per-channel mean and biased (population) variance of x, in double.
// Exact to about 1e-7 relative even when |mean| >> std: blocks are reduced
// two-pass while cache-resident and merged with Chan's formula in double.
// Requires g.reduced() >= 1; `mean` and `variance` hold g.channels values.
BNORM_API void BatchMoments(const float* x, const Geometry& g, double* mean, double* variance,
                            const Execution& exec = Execution());
// The same for x of any element type (float16/bfloat16 as 16-bit patterns).
BNORM_API void BatchMoments(const void* x, DType type, const Geometry& g, double* mean,
                            double* variance, const Execution& exec = Execution());

// Per-channel coefficients of
// y = activation(((x - mean_hi) - mean_lo) * scale + shift + residual).
// The mean is split in two floats so that the subtraction stays exact when
// |mean| >> std (a folded x * a + b would lose those digits).
// mean_lo may be null (all zero), as for a float32 moving mean.
// residual, when not null, is a tensor z of x's type and geometry (the same
// strides) added before the activation, in float32: a network's
// "bn + add + relu" as one pass over memory. Null: nothing is added.
struct NormalizeParams {
  const float* mean_hi = nullptr;
  const float* mean_lo = nullptr;
  const float* scale = nullptr;
  const float* shift = nullptr;
  Activation activation = Activation::kNone;
  const void* residual = nullptr;
};

// y may equal x (in place), and the residual may equal y; any other overlap
// between y and x or the residual is an error (bnorm::Error, nothing written).
BNORM_API void Normalize(const float* x, float* y, const Geometry& g, const NormalizeParams& params,
                         const Execution& exec = Execution());
// The same for x and y of any element type (both of `type`).
BNORM_API void Normalize(const void* x, void* y, DType type, const Geometry& g,
                         const NormalizeParams& params, const Execution& exec = Execution());

// A training forward's two passes in one call: the per-channel batch mean and
// biased variance of x (bitwise BatchMoments'), then
// y = (x - mean) * gamma / sqrt(variance + epsilon) + beta (bitwise Normalize's
// with those coefficients, the mean split as SplitMean does). Channels-first
// tensors too large for the caches whose channels fit in what a core has
// cached are done channel by channel, so x is read from memory once (two
// volumes of traffic instead of three). gamma and beta hold g.channels values
// (null: 1 and 0); epsilon is finite and > 0.
// y may equal x. Requires g.reduced() >= 1. Throws bnorm::Error naming the
// argument, before writing anything.
BNORM_API void TrainingNormalize(const void* x, void* y, DType type, const Geometry& g,
                                 const float* gamma, const float* beta, double epsilon,
                                 double* mean, double* variance,
                                 const Execution& exec = Execution());

// Splits a double mean into float hi + lo with hi + lo == mean to ~2^-48.
inline void SplitMean(double mean, float* hi, float* lo) {
  *hi = static_cast<float>(mean);
  *lo = static_cast<float>(mean - static_cast<double>(*hi));
}

}  // namespace bnorm

#endif  // BNORM_KERNELS_HPP_
