// SPDX-License-Identifier: Apache-2.0
// BatchNorm's state: what Keras' build() creates (the canonical feature axes,
// the parameter shape, the fused convention and the variables) and the
// inference coefficients kept in step with the variables.
#ifndef BNORM_SRC_LAYER_STATE_H_
#define BNORM_SRC_LAYER_STATE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "bnorm/batch_norm.hpp"
#include "bnorm/geometry.hpp"
#include "bnorm/kernels.hpp"

namespace bnorm {

// The layer's variables, in bnorm_state order.
enum class Var {
  kGamma,
  kBeta,
  kMovingMean,
  kMovingVariance,
  kMovingStddev,
  kRenormMean,
  kRenormStddev
};

// Keras' variable names ("gamma", "moving_mean", ...).
const char* Name(Var v);

struct BatchNorm::State {
  size_t rank = 0;
  std::vector<int> axes;  // canonical feature axes
  std::vector<int64_t> parameter_shape;
  size_t channels = 0;
  bool fused = false;
  double epsilon = 0.0;  // after the fused floor
  // Non-adjacent feature axes: the permutation that moves them last (empty
  // when they are adjacent and the kernels read the input directly).
  std::vector<int> permutation;

  std::vector<float> gamma, beta, moving_mean, moving_variance;
  std::vector<float> moving_stddev, renorm_mean, renorm_stddev;

  // Inference coefficients, refreshed whenever a variable changes, so that an
  // inference call only reads the state and allocates nothing.
  std::vector<float> inference_scale, inference_shift;

  // Keras' build() for inputs of `shape`: checks the shape against the
  // options and creates the variables. The caller installs the result, so a
  // rejected shape leaves a layer unbuilt.
  static std::shared_ptr<State> Create(const Options& options, const std::vector<int64_t>& shape);

  std::vector<float>& Get(Var v);
  // The variable `v` of a built layer that has it, else an error naming it.
  static std::vector<float>& Require(const BatchNorm& layer, Var v);
  // Sets a variable (size checked, constraint applied, inference refreshed).
  static void Assign(BatchNorm* layer, Var v, const std::vector<float>& values);

  // y = (x - moving_mean) * (gamma / sqrt(moving_variance + eps)) + beta.
  void RefreshInference();
  NormalizeParams InferenceParams() const;

  // Checks a later input against the built rank and feature sizes; returns
  // its element count.
  size_t CheckInput(const std::vector<int64_t>& shape) const;

  // Both Forwards: checks, training resolution, and the transpose for
  // non-adjacent feature axes around Run.
  static void Call(BatchNorm* layer, const void* x, void* y, DType type,
                   const std::vector<int64_t>& shape, std::optional<bool> training,
                   const Execution& exec);

  // One call on x and y of `type` and geometry g (channels-last after a
  // transpose); `shape` is the caller's, for the batch size and the adjustment.
  void Run(const Options& options, const void* x, void* y, DType type,
           const std::vector<int64_t>& shape, const Geometry& g, bool training,
           const Execution& exec);

  // Keras' training call (training.cc): batch or ghost statistics, renorm,
  // adjustment, normalize, and the moving-average updates.
  void Train(const Options& options, const void* x, void* y, DType type,
             const std::vector<int64_t>& shape, const Geometry& g, const Execution& exec);
};

}  // namespace bnorm

#endif  // BNORM_SRC_LAYER_STATE_H_
