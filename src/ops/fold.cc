// SPDX-License-Identifier: Apache-2.0
// Folding a frozen batch norm into coefficients or into the weights before it.
#include "bnorm/fold.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "bnorm/error.hpp"
#include "src/plan/checks.h"

namespace bnorm {
namespace {

void CheckInputs(const float* moving_mean, const float* moving_variance, size_t channels,
                 float epsilon) {
  if (moving_mean == nullptr) {
    throw Error(ErrorCode::kNullPointer, "moving_mean is null; expected channels values");
  }
  if (moving_variance == nullptr) {
    throw Error(ErrorCode::kNullPointer, "moving_variance is null; expected channels values");
  }
  if (channels == 0) throw Error(ErrorCode::kInvalidArgument, "channels is 0; expected at least 1");
  CheckEpsilon(epsilon);
}

// Reads the `channels` variances: only after every size check, so that a wrong
// channel count is reported rather than read past the caller's arrays.
void CheckVariances(const float* moving_variance, size_t channels) {
  for (size_t c = 0; c < channels; ++c) {
    if (moving_variance[c] < 0.0f) {
      throw Error(ErrorCode::kInvalidArgument, "moving_variance[" + std::to_string(c) + "] is " +
                                                   std::to_string(moving_variance[c]) +
                                                   "; expected a value >= 0");
    }
  }
}

// gamma / sqrt(variance + epsilon) in double.
double InvStd(const float* gamma, const float* moving_variance, size_t c, float epsilon) {
  const double g = gamma == nullptr ? 1.0 : gamma[c];
  return g / std::sqrt(static_cast<double>(moving_variance[c]) + epsilon);
}

}  // namespace

void Fold(const float* gamma, const float* beta, const float* moving_mean,
          const float* moving_variance, size_t channels, float epsilon, float* scale,
          float* shift) {
  CheckInputs(moving_mean, moving_variance, channels, epsilon);
  if (scale == nullptr || shift == nullptr) {
    throw Error(ErrorCode::kNullPointer, "scale/shift output is null");
  }
  CheckVariances(moving_variance, channels);
  for (size_t c = 0; c < channels; ++c) {
    scale[c] = static_cast<float>(InvStd(gamma, moving_variance, c, epsilon));
    shift[c] = beta == nullptr ? 0.0f : beta[c];
  }
}

void FoldIntoWeights(float* weights, const std::vector<int64_t>& weight_shape, WeightLayout layout,
                     float* bias, const float* gamma, const float* beta, const float* moving_mean,
                     const float* moving_variance, size_t channels, float epsilon) {
  CheckInputs(moving_mean, moving_variance, channels, epsilon);
  if (weights == nullptr) throw Error(ErrorCode::kNullPointer, "weights is null");
  if (bias == nullptr) {
    throw Error(ErrorCode::kNullPointer, "bias is null; pass zeros when the layer had no bias");
  }
  const size_t rank = weight_shape.size();
  if (rank < 2) {
    throw Error(ErrorCode::kInvalidArgument,
                "weight_shape has rank " + std::to_string(rank) +
                    "; expected rank >= 2 (dense [out,in]/[in,out] or a convolution)");
  }
  const size_t total = ShapeElements("weight_shape", weight_shape.data(), rank);
  TensorBytes("weight_shape", weight_shape.data(), rank, total, DType::kFloat32);
  for (size_t i = 0; i < rank; ++i) {
    if (weight_shape[i] == 0) {
      throw Error(ErrorCode::kInvalidArgument,
                  "weight_shape[" + std::to_string(i) + "] is 0; expected a size > 0");
    }
  }
  const size_t out_axis = layout == WeightLayout::kOutputFirst ? 0 : rank - 1;
  if (static_cast<size_t>(weight_shape[out_axis]) != channels) {
    throw Error(ErrorCode::kShapeMismatch,
                "weight_shape[" + std::to_string(out_axis) + "] is " +
                    std::to_string(weight_shape[out_axis]) + " output channels; expected " +
                    std::to_string(channels) + " (the batch norm's channels)");
  }
  CheckVariances(moving_variance, channels);
  for (size_t c = 0; c < channels; ++c) {
    const double s = InvStd(gamma, moving_variance, c, epsilon);
    const double b = beta == nullptr ? 0.0 : beta[c];
    bias[c] = static_cast<float>((static_cast<double>(bias[c]) - moving_mean[c]) * s + b);
  }
  // kOutputFirst: each output channel owns a contiguous slab; kOutputLast:
  // the output channel is the fastest-moving index.
  const size_t slab = total / channels;
  for (size_t i = 0; i < total; ++i) {
    const size_t c = layout == WeightLayout::kOutputFirst ? i / slab : i % channels;
    weights[i] = static_cast<float>(weights[i] * InvStd(gamma, moving_variance, c, epsilon));
  }
}

}  // namespace bnorm
