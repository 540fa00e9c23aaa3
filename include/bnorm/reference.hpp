// The scalar float64 reference: SPEC.md written as plainly as possible, with no
// SIMD and no threads. It is the oracle every dispatched kernel is checked
// against (tests and bnorm-verify).
#ifndef BNORM_REFERENCE_HPP_
#define BNORM_REFERENCE_HPP_

#include <vector>

#include "bnorm/export.h"
#include "bnorm/geometry.hpp"

namespace bnorm {
namespace reference {

// Per-channel mean and biased variance, two passes in double.
BNORM_API void Moments(const float* x, const Geometry& g, double* mean, double* variance);

// y = (x - mean) / sqrt(variance + epsilon) * gamma + beta, in double.
BNORM_API void Normalize(const float* x, const Geometry& g, const double* mean, const double* variance,
                         const double* gamma, const double* beta, double epsilon, double* y);

// The layer's per-channel state (float32 in the library, double here).
struct BNORM_API State {
  std::vector<double> gamma, beta, moving_mean, moving_variance;
  static State Initial(size_t channels);  // Keras' initial values: 1, 0, 0, 1
};

// Training forward: batch moments, normalize with them, then
// moving -= (moving - batch) * (1 - momentum). An empty batch updates nothing.
BNORM_API void TrainingForward(const float* x, const Geometry& g, double momentum, double epsilon,
                               State* state, double* y);

// Inference forward: normalize with the moving statistics; nothing changes.
BNORM_API void InferenceForward(const float* x, const Geometry& g, double epsilon, const State& state,
                                double* y);

}  // namespace reference
}  // namespace bnorm

#endif  // BNORM_REFERENCE_HPP_
