// SPDX-License-Identifier: Apache-2.0
// float16 / bfloat16 <-> float32 conversions, bit-exact and portable. Widening
// is exact; narrowing rounds to nearest even (never truncates), NaN stays a
// (quiet) NaN with its sign, and Inf stays Inf. Values beyond the 16-bit range
// round to Inf, as IEEE 754 demands.
#ifndef BNORM_SRC_HALF_H_
#define BNORM_SRC_HALF_H_

#include <cstddef>
#include <cstdint>

#include "bnorm/dtype.hpp"

namespace bnorm {

float HalfToFloat(uint16_t h);
uint16_t FloatToHalf(float f);
float BFloat16ToFloat(uint16_t b);
uint16_t FloatToBFloat16(float f);

// Whole arrays of `dtype` (kFloat16 or kBFloat16) values.
void WidenToFloat(const uint16_t* in, DType dtype, size_t count, float* out);
void NarrowFromFloat(const float* in, DType dtype, size_t count, uint16_t* out);

}  // namespace bnorm

#endif  // BNORM_SRC_HALF_H_
