// SPDX-License-Identifier: Apache-2.0
// Inference folding for engines: the per-channel coefficients of a frozen
// batch norm, and folding it into the preceding convolution or dense layer.
#ifndef BNORM_FOLD_HPP_
#define BNORM_FOLD_HPP_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "bnorm/export.h"

namespace bnorm {

// scale[c] = gamma[c] / sqrt(moving_variance[c] + epsilon) and shift[c] = beta[c],
// computed in double, so that y = (x - moving_mean) * scale + shift: pass
// moving_mean as NormalizeParams::mean_hi and these as scale/shift. gamma or
// beta may be null (scale=False / center=False). Throws bnorm::Error on a null
// required pointer, epsilon not finite and > 0, or a negative variance.
BNORM_API void Fold(const float* gamma, const float* beta, const float* moving_mean,
                    const float* moving_variance, size_t channels, float epsilon, float* scale,
                    float* shift);

// Where the output channel sits in a weight tensor.
enum class WeightLayout {
  kOutputFirst,  // OIHW convolutions, [out, in] dense weights (PyTorch, ONNX)
  kOutputLast,   // HWIO convolutions, [in, out] dense kernels (Keras, TensorFlow)
};

// Folds a frozen batch norm into the layer that feeds it: afterwards
// conv'(x) == bn(conv(x)) up to rounding. weights has `weight_shape` in
// `layout` (its output-channel dimension must equal `channels`); bias holds
// `channels` values and is rewritten (pass the layer's bias, zeros if it had
// none). Computed in double. gamma or beta may be null. Throws bnorm::Error.
BNORM_API void FoldIntoWeights(float* weights, const std::vector<int64_t>& weight_shape,
                               WeightLayout layout, float* bias, const float* gamma, const float* beta,
                               const float* moving_mean, const float* moving_variance, size_t channels,
                               float epsilon);

}  // namespace bnorm

#endif  // BNORM_FOLD_HPP_
