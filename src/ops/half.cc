// SPDX-License-Identifier: Apache-2.0
#include "src/ops/half.h"

#include <cstring>

namespace bnorm {
namespace {

uint32_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}

float FromBits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

// Shifts `value` right by `shift` (1..31) rounding to nearest even.
uint32_t ShiftRightRoundEven(uint32_t value, uint32_t shift) {
  const uint32_t half = 1u << (shift - 1);
  const uint32_t rest = value & ((1u << shift) - 1);
  uint32_t result = value >> shift;
  if (rest > half || (rest == half && (result & 1u))) ++result;
  return result;
}

}  // namespace

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1Fu;
  const uint32_t mantissa = h & 0x3FFu;
  if (exponent == 0x1F) return FromBits(sign | 0x7F800000u | (mantissa << 13));
  if (exponent != 0) return FromBits(sign | ((exponent + 112) << 23) | (mantissa << 13));
  // Zero or subnormal: mantissa * 2^-24 is exact in float.
  const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
  return FromBits(sign | Bits(magnitude));
}

uint16_t FloatToHalf(float f) {
  const uint32_t u = Bits(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t abs = u & 0x7FFFFFFFu;
  if (abs > 0x7F800000u) {
    // NaN: keep the top payload bits and force the quiet bit.
    return static_cast<uint16_t>(sign | 0x7E00u | ((abs >> 13) & 0x3FFu));
  }
  if (abs >= 0x47800000u) return static_cast<uint16_t>(sign | 0x7C00u);  // >= 2^16: Inf
  const int32_t exponent = static_cast<int32_t>(abs >> 23) - 127;
  if (exponent >= -14) {
    // Normal range: drop 13 mantissa bits; a carry may bump the exponent,
    // up to Inf, which is the correctly rounded result.
    const uint32_t rebased = abs - (112u << 23);
    return static_cast<uint16_t>(sign | ShiftRightRoundEven(rebased, 13));
  }
  if (exponent < -25) return sign;  // below half the smallest subnormal: +-0
  // Subnormal: the significand with its implicit bit, scaled to units of 2^-24.
  const uint32_t significand = (abs & 0x7FFFFFu) | 0x800000u;
  const uint32_t shift = static_cast<uint32_t>(-exponent - 1);  // 14..24
  return static_cast<uint16_t>(sign | ShiftRightRoundEven(significand, shift));
}

float BFloat16ToFloat(uint16_t b) { return FromBits(static_cast<uint32_t>(b) << 16); }

uint16_t FloatToBFloat16(float f) {
  const uint32_t u = Bits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);
  return static_cast<uint16_t>(ShiftRightRoundEven(u, 16));
}

void WidenToFloat(const uint16_t* in, DType dtype, size_t count, float* out) {
  if (dtype == DType::kFloat16) {
    for (size_t i = 0; i < count; ++i) out[i] = HalfToFloat(in[i]);
  } else {
    for (size_t i = 0; i < count; ++i) out[i] = BFloat16ToFloat(in[i]);
  }
}

void NarrowFromFloat(const float* in, DType dtype, size_t count, uint16_t* out) {
  if (dtype == DType::kFloat16) {
    for (size_t i = 0; i < count; ++i) out[i] = FloatToHalf(in[i]);
  } else {
    for (size_t i = 0; i < count; ++i) out[i] = FloatToBFloat16(in[i]);
  }
}

}  // namespace bnorm
