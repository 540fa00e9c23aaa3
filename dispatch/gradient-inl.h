// SPDX-License-Identifier: Apache-2.0
// What the two backward passes share, written once for every Highway target:
// the gradient g (dy masked by the fused activation's derivative), the
// deviation (x - hi) - lo, float lanes added into double sums, and the choice
// of element type and mask once per block. Compiled once per target (toggling
// include guard): the reduction is in backward_reduce-inl.h, the data pass in
// backward_data-inl.h.

#if defined(BNORM_DISPATCH_GRADIENT_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef BNORM_DISPATCH_GRADIENT_INL_H_
#undef BNORM_DISPATCH_GRADIENT_INL_H_
#else
#define BNORM_DISPATCH_GRADIENT_INL_H_
#endif

#include <stddef.h>

#include <type_traits>

#include "bnorm/dtype.hpp"
#include "dispatch/convert-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace bnorm {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// The gradient of Lanes(d) values at p in dy: 0 where the activation's
// derivative is 0, computed from the forward's output y (same offsets as dy).
// A select, not a multiplication: a masked-out NaN or Inf in dy gives 0, and a
// NaN in y keeps dy (no comparison with NaN is true). kMask is a compile-time
// constant, so the unmasked loop loads neither y nor compares.
template <Activation kMask, class D, class T, class Raw = typename T::Raw>
HWY_INLINE hn::Vec<D> Gradient(D d, T t, const Raw* dy, const Raw* y, size_t i) {
  const hn::Vec<D> g = LoadAs(d, t, dy + i);
  if constexpr (kMask == Activation::kNone) {
    (void)y;
    return g;
  } else {
    const hn::Vec<D> vy = LoadAs(d, t, y + i);
    auto zero = hn::Le(vy, hn::Zero(d));
    if constexpr (kMask == Activation::kRelu6) zero = hn::Or(zero, hn::Ge(vy, hn::Set(d, 6.0f)));
    return hn::IfThenZeroElse(zero, g);
  }
}

// (x - hi) - lo for Lanes(d) values at p: exact for x near the mean.
template <class D, class T, class V = hn::Vec<D>>
HWY_INLINE V Deviation(D d, T t, const typename T::Raw* p, V hi, V lo) {
  return hn::Sub(hn::Sub(LoadAs(d, t, p), hi), lo);
}

// Adds the Lanes(d) float lanes of v to out[0..Lanes(d)) in double (assigns
// when `assign`): each float sum of at most 16 terms is rounded once more,
// into a double that holds the rest. Vectorized in double (Repartition halves
// the lane count), lane by lane only for one-lane vectors.
template <class D, class V = hn::Vec<D>>
HWY_INLINE void AddLanes(D d, V v, bool assign, double* HWY_RESTRICT out) {
  if constexpr (hn::MaxLanes(D()) == 1) {
    (void)d;
    const double s = hn::GetLane(v);
    *out = assign ? s : *out + s;
  } else {
#if HWY_TARGET != HWY_SCALAR  // the scalar target has no vector halves
    const hn::Half<D> dh;
    const hn::Repartition<double, D> dd;
    const size_t half = hn::Lanes(dd);
    const auto lower = hn::PromoteTo(dd, hn::LowerHalf(dh, v));
    const auto upper = hn::PromoteTo(dd, hn::UpperHalf(dh, v));
    if (assign) {
      hn::StoreU(lower, dd, out);
      hn::StoreU(upper, dd, out + half);
    } else {
      hn::StoreU(hn::Add(hn::LoadU(dd, out), lower), dd, out);
      hn::StoreU(hn::Add(hn::LoadU(dd, out + half), upper), dd, out + half);
    }
#endif
  }
}

// Calls f(type tag, mask constant) for the runtime element type and mask, so
// each combination is its own loop.
template <class F>
HWY_INLINE void WithTypeAndMask(DType type, Activation mask, const F& f) {
  const auto with_mask = [&](auto tag) {
    switch (mask) {
      case Activation::kNone:
        return f(tag, std::integral_constant<Activation, Activation::kNone>());
      case Activation::kRelu:
        return f(tag, std::integral_constant<Activation, Activation::kRelu>());
      case Activation::kRelu6:
        return f(tag, std::integral_constant<Activation, Activation::kRelu6>());
    }
  };
  switch (type) {
    case DType::kFloat32:
      return with_mask(F32());
    case DType::kBFloat16:
      return with_mask(BF16());
    case DType::kFloat16:
      return with_mask(F16());
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace bnorm
HWY_AFTER_NAMESPACE();

#endif  // BNORM_DISPATCH_GRADIENT_INL_H_
