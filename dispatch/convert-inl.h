// SPDX-License-Identifier: Apache-2.0
// Loading float16/bfloat16/float32 into float32 vectors and storing them back,
// written once for every target with integer ops. Highway 1.0.3's own f32->bf16
// DemoteTo truncates and its emulated f16 conversions (SSSE3/SSE4) flush
// NaN/Inf, so both directions are done here: exact widening, round to nearest
// even on narrowing, NaN stays NaN and Inf stays Inf. Where the CPU converts
// f16 itself with those semantics (F16C on the AVX2 and AVX-512 targets:
// exact widening, round to nearest even), the hardware instruction is used.

#if defined(BNORM_DISPATCH_CONVERT_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef BNORM_DISPATCH_CONVERT_INL_H_
#undef BNORM_DISPATCH_CONVERT_INL_H_
#else
#define BNORM_DISPATCH_CONVERT_INL_H_
#endif

#include <stdint.h>

#include "bnorm/dtype.hpp"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace bnorm {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Element type tags: the memory holds float, or uint16_t bit patterns.
struct F32 {
  using Raw = float;
};
struct BF16 {
  using Raw = uint16_t;
};
struct F16 {
  using Raw = uint16_t;
};

// Calls f(tag) with the tag of the runtime element type: entry points choose it
// once per block, not per vector.
template <class F>
HWY_INLINE void WithType(DType type, const F& f) {
  switch (type) {
    case DType::kFloat32:
      return f(F32());
    case DType::kBFloat16:
      return f(BF16());
    case DType::kFloat16:
      return f(F16());
  }
}

template <class D>
HWY_INLINE hn::Vec<D> LoadAs(D d, F32, const float* HWY_RESTRICT p) {
  return hn::LoadU(d, p);
}

template <class D>
HWY_INLINE hn::Vec<D> LoadAs(D d, BF16, const uint16_t* HWY_RESTRICT p) {
  const hn::Rebind<uint32_t, D> du;
  const hn::Rebind<uint16_t, D> du16;
  return hn::BitCast(d, hn::ShiftLeft<16>(hn::PromoteTo(du, hn::LoadU(du16, p))));
}

#undef BNORM_HARDWARE_F16  // per target: this file is compiled once per target
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
#define BNORM_HARDWARE_F16 1
#else
#define BNORM_HARDWARE_F16 0
#endif

template <class D>
HWY_INLINE hn::Vec<D> LoadAs(D d, F16, const uint16_t* HWY_RESTRICT p) {
#if BNORM_HARDWARE_F16
  const hn::Rebind<hwy::float16_t, D> df16;
  return hn::PromoteTo(d, hn::LoadU(df16, reinterpret_cast<const hwy::float16_t*>(p)));
#else
  const hn::Rebind<uint32_t, D> du;
  const hn::Rebind<uint16_t, D> du16;
  const auto h = hn::PromoteTo(du, hn::LoadU(du16, p));
  const auto sign = hn::ShiftLeft<16>(hn::And(h, hn::Set(du, 0x8000u)));
  // Move exponent and mantissa into place and rebias the exponent by 127 - 15.
  const auto shifted = hn::ShiftLeft<13>(hn::And(h, hn::Set(du, 0x7FFFu)));
  const auto exponent = hn::And(shifted, hn::Set(du, 0x0F800000u));
  auto bits = hn::Add(shifted, hn::Set(du, 0x38000000u));
  // Inf/NaN: push the exponent all the way up.
  bits = hn::IfThenElse(hn::Eq(exponent, hn::Set(du, 0x0F800000u)),
                        hn::Add(bits, hn::Set(du, 0x38000000u)), bits);
  // Zero/subnormal: renormalize through a float subtraction (exact).
  const auto sub_bits = hn::Add(bits, hn::Set(du, 0x00800000u));
  const auto sub = hn::Sub(hn::BitCast(d, sub_bits), hn::BitCast(d, hn::Set(du, 0x38800000u)));
  const auto is_sub = hn::RebindMask(d, hn::Eq(exponent, hn::Zero(du)));
  const auto magnitude = hn::IfThenElse(is_sub, sub, hn::BitCast(d, bits));
  return hn::Or(magnitude, hn::BitCast(d, sign));
#endif
}

template <class D>
HWY_INLINE void StoreAs(D d, F32, hn::Vec<D> v, float* HWY_RESTRICT p) {
  hn::StoreU(v, d, p);
}

// 32-bit lanes holding values <= 0xFFFF as a vector of 16-bit lanes.
template <class D, class VU>
HWY_INLINE hn::Vec<hn::Rebind<uint16_t, D>> Low16(D, VU bits) {
  const hn::Rebind<int32_t, D> di;
  const hn::Rebind<uint16_t, D> du16;
  return hn::DemoteTo(du16, hn::BitCast(di, bits));
}

// float32 lanes as bfloat16 bit patterns.
template <class D>
HWY_INLINE hn::Vec<hn::Rebind<uint16_t, D>> NarrowBits(D d, BF16, hn::Vec<D> v) {
  const hn::Rebind<uint32_t, D> du;
  const auto bits = hn::BitCast(du, v);
  // Round to nearest even: add 0x7FFF plus the lowest kept bit.
  const auto odd = hn::And(hn::ShiftRight<16>(bits), hn::Set(du, 1u));
  const auto rounded = hn::Add(bits, hn::Add(hn::Set(du, 0x7FFFu), odd));
  // NaN: keep sign and payload top bits, force quiet (rounding could make Inf).
  const auto quiet = hn::Or(bits, hn::Set(du, 0x00400000u));
  const auto is_nan = hn::RebindMask(du, hn::Ne(v, v));
  return Low16(d, hn::ShiftRight<16>(hn::IfThenElse(is_nan, quiet, rounded)));
}

// float32 lanes as float16 bit patterns.
template <class D>
HWY_INLINE hn::Vec<hn::Rebind<uint16_t, D>> NarrowBits(D d, F16, hn::Vec<D> v) {
#if BNORM_HARDWARE_F16
  const hn::Rebind<hwy::float16_t, D> df16;
  return hn::BitCast(hn::Rebind<uint16_t, D>(), hn::DemoteTo(df16, v));
#else
  const hn::Rebind<uint32_t, D> du;
  const auto bits = hn::BitCast(du, v);
  const auto sign = hn::And(bits, hn::Set(du, 0x80000000u));
  const auto a = hn::Xor(bits, sign);  // |v|
  // Normal range: rebias the exponent and round to nearest even at bit 13.
  const auto odd = hn::And(hn::ShiftRight<13>(a), hn::Set(du, 1u));
  const auto normal = hn::ShiftRight<13>(hn::Add(hn::Add(a, hn::Set(du, 0xC8000FFFu)), odd));
  // Below the smallest normal: a float add with 0.5 aligns the mantissa and
  // rounds to nearest even in hardware.
  const auto magic = hn::Set(du, 0x3F000000u);
  const auto sub =
      hn::Sub(hn::BitCast(du, hn::Add(hn::BitCast(d, a), hn::BitCast(d, magic))), magic);
  // Overflow rounds to Inf; NaN becomes a quiet NaN.
  // |v| has its sign bit clear, so signed compares order it correctly.
  const hn::Rebind<int32_t, D> di;
  const auto ai = hn::BitCast(di, a);
  const auto is_nan = hn::RebindMask(du, hn::Gt(ai, hn::Set(di, 0x7F800000)));
  const auto is_small = hn::RebindMask(du, hn::Lt(ai, hn::Set(di, 0x38800000)));
  const auto is_big = hn::RebindMask(du, hn::Gt(ai, hn::Set(di, 0x477FFFFF)));
  const auto big = hn::IfThenElse(is_nan, hn::Set(du, 0x7E00u), hn::Set(du, 0x7C00u));
  const auto h = hn::IfThenElse(is_big, big, hn::IfThenElse(is_small, sub, normal));
  return Low16(d, hn::Or(h, hn::ShiftRight<16>(sign)));
#endif
}

template <class D, class T>
HWY_INLINE void StoreAs(D d, T t, hn::Vec<D> v, uint16_t* HWY_RESTRICT p) {
  hn::StoreU(NarrowBits(d, t, v), hn::Rebind<uint16_t, D>(), p);
}

}  // namespace HWY_NAMESPACE
}  // namespace bnorm
HWY_AFTER_NAMESPACE();

#endif  // BNORM_DISPATCH_CONVERT_INL_H_
