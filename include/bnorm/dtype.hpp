// SPDX-License-Identifier: Apache-2.0
// Element types of tensors bnorm reads and writes, and the fused activations of
// the normalize pass. Statistics and arithmetic are float32 (or double) for
// every element type.
#ifndef BNORM_DTYPE_HPP_
#define BNORM_DTYPE_HPP_

#include <cstddef>

namespace bnorm {

// float16 and bfloat16 are passed as raw 16-bit patterns (uint16_t).
enum class DType { kFloat32, kFloat16, kBFloat16 };

inline size_t SizeOf(DType t) { return t == DType::kFloat32 ? 4 : 2; }
inline const char* Name(DType t) {
  return t == DType::kFloat32 ? "float32" : t == DType::kFloat16 ? "float16" : "bfloat16";
}

// Applied after the affine transform: ReLU is max(y, 0), ReLU6 min(max(y, 0), 6).
// NaN stays NaN.
enum class Activation { kNone, kRelu, kRelu6 };

}  // namespace bnorm

#endif  // BNORM_DTYPE_HPP_
