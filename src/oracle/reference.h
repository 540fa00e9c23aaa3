// SPDX-License-Identifier: Apache-2.0
// The scalar float64 reference: docs/semantics.md written as plainly as possible, with no
// SIMD and no threads. It is the oracle every dispatched kernel is checked
// against (tests and bnorm-verify).
#ifndef BNORM_SRC_ORACLE_REFERENCE_H_
#define BNORM_SRC_ORACLE_REFERENCE_H_

#include <vector>

#include "bnorm/dtype.hpp"
#include "bnorm/geometry.hpp"

namespace bnorm {
namespace reference {

// Per-channel mean and biased variance, two passes in double.
void Moments(const float* x, const Geometry& g, double* mean, double* variance);

// y = (x - mean) / sqrt(variance + epsilon) * gamma + beta, in double.
void Normalize(const float* x, const Geometry& g, const double* mean, const double* variance,
               const double* gamma, const double* beta, double epsilon, double* y);

// The layer's per-channel state (float32 in the library, double here); the renorm
// statistics are empty unless the layer renormalizes. The Keras oracle uses it too.
struct State {
  std::vector<double> gamma, beta, moving_mean, moving_variance;
  std::vector<double> moving_stddev, renorm_mean, renorm_stddev;
  static State Initial(size_t channels);  // Keras' initial values: 1, 0, 0, 1
};

// Training forward: batch moments, normalize with them, then
// moving -= (moving - batch) * (1 - momentum). An empty batch updates nothing.
void TrainingForward(const float* x, const Geometry& g, double momentum, double epsilon,
                     State* state, double* y);

// Inference forward: normalize with the moving statistics; nothing changes.
void InferenceForward(const float* x, const Geometry& g, double epsilon, const State& state,
                      double* y);

// The backward pass (docs/semantics.md, "Backward (gradients)"), element by element in
// double. g = dy, taken as 0 where the mask's derivative is 0 (y <= 0; for
// kRelu6 also y >= 6); y is unused with kNone. mean is the forward's mean.
// sum_dy[c] = Σ g and sum_dy_xmu[c] = Σ g·(x − mean[c]).
void BackwardReduce(const float* x, const float* dy, const float* y, Activation mask,
                    const Geometry& g, const double* mean, double* sum_dy, double* sum_dy_xmu);

// dx = k·(g − a − (x − mean)·b) with per-channel k, a, b, at the offsets of g
// (dx holds Extent(g) values).
void BackwardData(const float* x, const float* dy, const float* y, Activation mask,
                  const Geometry& g, const double* mean, const double* k, const double* a,
                  const double* b, double* dx);

}  // namespace reference
}  // namespace bnorm

#endif  // BNORM_SRC_ORACLE_REFERENCE_H_
