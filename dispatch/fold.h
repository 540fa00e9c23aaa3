// SPDX-License-Identifier: Apache-2.0
// The per-channel fold of a training forward, vectorized across channels
// (fold.cc): from the batch mean and variance in double to the normalize
// coefficients. Per channel it is a double add, square root and division,
// which cost more than the normalize of a small tensor with many channels
// (2048 channels of 16 values: the scalar fold took half the call).
#ifndef BNORM_DISPATCH_FOLD_H_
#define BNORM_DISPATCH_FOLD_H_

#include <cstddef>

namespace bnorm {
namespace dispatch {

// For c < channels: hi + lo = mean split as SplitMean does (hi = (float)mean,
// lo = (float)(mean - hi)), scale = (float)(gamma / sqrt(variance + epsilon))
// in double, shift = beta; gamma and beta may be null (1 and 0). Bitwise the
// scalar formulas on every target: every step is one correctly rounded IEEE
// operation in the same order.
void FoldTraining(const double* mean, const double* variance, const float* gamma, const float* beta,
                  double epsilon, size_t channels, float* hi, float* lo, float* scale,
                  float* shift);

}  // namespace dispatch
}  // namespace bnorm

#endif  // BNORM_DISPATCH_FOLD_H_
