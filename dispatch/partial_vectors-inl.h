// SPDX-License-Identifier: Apache-2.0
// Channels left over after the full vectors of a channels-last row (fewer than
// Lanes(d)) go through vectors of halving width, at most one of each (8, 4, 2,
// 1 lanes after AVX-512's 16), instead of one lane at a time: C = 24 or 40
// (MobileNet, EfficientNet) would otherwise run a third of their values
// lane by lane. Capped tags load and store exactly their lanes.
// Compiled once per target: included through foreach_target.h.

#if defined(BNORM_DISPATCH_PARTIAL_VECTORS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef BNORM_DISPATCH_PARTIAL_VECTORS_INL_H_
#undef BNORM_DISPATCH_PARTIAL_VECTORS_INL_H_
#else
#define BNORM_DISPATCH_PARTIAL_VECTORS_INL_H_
#endif

#include <stddef.h>

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace bnorm {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Calls f(tag, c) for partial vectors covering channels [*c, channels), all
// narrower than `full_lanes`, advancing *c. kCap 32 covers 2048-bit SVE.
template <size_t kCap = 32, class F>
HWY_INLINE void ForEachPartialVector(size_t full_lanes, size_t* c, size_t channels, const F& f) {
  const hn::CappedTag<float, kCap> dc;
  const size_t lanes = hn::Lanes(dc);
  if (lanes < full_lanes && *c + lanes <= channels) {
    f(dc, *c);
    *c += lanes;
  }
  if constexpr (kCap > 1) ForEachPartialVector<kCap / 2>(full_lanes, c, channels, f);
}

}  // namespace HWY_NAMESPACE
}  // namespace bnorm
HWY_AFTER_NAMESPACE();

#endif  // BNORM_DISPATCH_PARTIAL_VECTORS_INL_H_
