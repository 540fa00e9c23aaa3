// SPDX-License-Identifier: Apache-2.0
// The scalar float64 oracle of the whole layer: Keras' BatchNormalization as
// docs/semantics.md writes it, for every option (any axis list, fused convention, ghost
// batches, renorm, adjustment, trainable, center/scale), with no SIMD, no
// threads and no shortcuts: every element is visited by its coordinates. Tests
// and bnorm-verify check bnorm::BatchNorm against it. It assumes valid options
// (bnorm::BatchNorm does the validation).
#ifndef BNORM_SRC_ORACLE_KERAS_REFERENCE_H_
#define BNORM_SRC_ORACLE_KERAS_REFERENCE_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "bnorm/batch_norm.hpp"
#include "src/oracle/reference.h"

namespace bnorm {
namespace keras_reference {

// The layer's variables in double, flattened in the parameter shape's C order.
// gamma is all ones with scale=false and beta all zeros with center=false;
// the renorm variables are empty without renorm.
using State = reference::State;

// The variables right after Keras' build() for `channels` parameters.
State Initial(const Options& options, size_t channels);

// Whether Keras' build() picks the fused kernel for an input of rank `rank`.
bool UsesFused(const Options& options, size_t rank);

// One call of the layer on the C-order tensor x of `shape`: writes y (double,
// same shape) and, in training, updates `state`. An empty input changes
// nothing.
void Forward(const Options& options, const std::vector<int64_t>& shape, const float* x,
             std::optional<bool> training, State* state, double* y);

// The gradients of one call, in double: of sum(dy * y) with respect to x, gamma, beta and the
// adjustment's outputs (docs/semantics.md, "Backward (gradients)"). Renorm's r and d and the moving statistics are
// constants. dgamma is empty with scale=false, dbeta with center=false, the adjustment
// gradients unless the call trained with an adjustment.
struct Gradients {
  std::vector<double> dx, dgamma, dbeta, dadjustment_scale, dadjustment_bias;
};

// The gradients of Forward(options, shape, x, training, &state, y) called with `state` as given
// (the state before that call); dy has the shape of x. An empty input gives an empty dx and
// zero parameter gradients.
Gradients Backward(const Options& options, const std::vector<int64_t>& shape, const float* x,
                   const double* dy, std::optional<bool> training, const State& state);

}  // namespace keras_reference
}  // namespace bnorm

#endif  // BNORM_SRC_ORACLE_KERAS_REFERENCE_H_
