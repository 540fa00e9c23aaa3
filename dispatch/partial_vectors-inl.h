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
#include <stdint.h>

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace bnorm {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// The lanes (of Raw, a full float vector's worth) past a vector boundary at
// which p lies.
template <class Raw>
HWY_INLINE size_t VectorPhase(const Raw* p) {
  const size_t N = hn::Lanes(hn::ScalableTag<float>());
  return reinterpret_cast<uintptr_t>(p) % (N * sizeof(Raw)) / sizeof(Raw);
}

// Calls f(tag, i) for partial vectors of 1, 2, 4 ... lanes (each narrower
// than `full_lanes`, each aligned to its own width) that take *i from `phase`
// lanes past a vector boundary to the next boundary, as far as they fit
// before `end`; advances *i. A run that starts misaligned then stores whole
// aligned vectors: streaming needs them, and a store split over two cache
// lines costs about two.
template <size_t kWidth = 1, class F>
HWY_INLINE void ForEachAlignmentVector(size_t full_lanes, size_t phase, size_t* i, size_t end,
                                       const F& f) {
  if constexpr (kWidth < 64) {
    if (kWidth >= full_lanes) return;
    if ((phase & kWidth) != 0) {
      if (*i + kWidth > end) return;
      f(hn::CappedTag<float, kWidth>(), *i);
      *i += kWidth;
      phase += kWidth;
    }
    ForEachAlignmentVector<kWidth * 2>(full_lanes, phase, i, end, f);
  }
}

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
