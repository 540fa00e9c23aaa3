// The normalize pass y = ((x - hi) - lo) * scale + shift, written once for
// every Highway target. Compiled once per target (toggling include guard).
//
// The mean arrives split in two floats (hi + lo): x - hi is exact for x near
// the mean, so large-mean inputs keep their digits, which a folded
// x * a + (b - mean * a) would lose.

#if defined(BNORM_DISPATCH_NORMALIZE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef BNORM_DISPATCH_NORMALIZE_INL_H_
#undef BNORM_DISPATCH_NORMALIZE_INL_H_
#else
#define BNORM_DISPATCH_NORMALIZE_INL_H_
#endif

#include <stddef.h>

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace bnorm {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

template <class D, class V = hn::Vec<D>>
HWY_INLINE V NormalizeVector(V x, V hi, V lo, V scale, V shift) {
  return hn::MulAdd(hn::Sub(hn::Sub(x, hi), lo), scale, shift);
}

// Channels-last: `rows` rows of `channels` values, rows `stride` floats apart
// in both x and y. x == y is allowed; any alignment.
HWY_NOINLINE void NormalizeRowsImpl(const float* x, float* y, size_t rows,
                                    size_t channels, size_t stride,
                                    const float* HWY_RESTRICT hi,
                                    const float* HWY_RESTRICT lo,
                                    const float* HWY_RESTRICT scale,
                                    const float* HWY_RESTRICT shift) {
  const hn::ScalableTag<float> d;
  const hn::CappedTag<float, 1> d1;
  const size_t N = hn::Lanes(d);
  for (size_t r = 0; r < rows; ++r) {
    const float* xr = x + r * stride;
    float* yr = y + r * stride;
    size_t c = 0;
    for (; c + N <= channels; c += N) {
      hn::StoreU(NormalizeVector<decltype(d)>(
                     hn::LoadU(d, xr + c), hn::LoadU(d, hi + c),
                     hn::LoadU(d, lo + c), hn::LoadU(d, scale + c),
                     hn::LoadU(d, shift + c)),
                 d, yr + c);
    }
    // Remaining channels lane by lane: nothing outside the row is touched.
    for (; c < channels; ++c) {
      hn::StoreU(NormalizeVector<decltype(d1)>(
                     hn::LoadU(d1, xr + c), hn::LoadU(d1, hi + c),
                     hn::LoadU(d1, lo + c), hn::LoadU(d1, scale + c),
                     hn::LoadU(d1, shift + c)),
                 d1, yr + c);
    }
  }
}

// Channels-first: `runs` runs of `len` values of one channel, runs `stride`
// floats apart. x == y is allowed; any alignment.
HWY_NOINLINE void NormalizeRunsImpl(const float* x, float* y, size_t runs,
                                    size_t len, size_t stride, float hi,
                                    float lo, float scale, float shift) {
  const hn::ScalableTag<float> d;
  const hn::CappedTag<float, 1> d1;
  const size_t N = hn::Lanes(d);
  const auto vhi = hn::Set(d, hi), vlo = hn::Set(d, lo);
  const auto vscale = hn::Set(d, scale), vshift = hn::Set(d, shift);
  const auto hi1 = hn::Set(d1, hi), lo1 = hn::Set(d1, lo);
  const auto scale1 = hn::Set(d1, scale), shift1 = hn::Set(d1, shift);
  for (size_t run = 0; run < runs; ++run) {
    const float* xr = x + run * stride;
    float* yr = y + run * stride;
    size_t i = 0;
    // Two vectors per iteration: two independent FMA chains per loop trip.
    for (; i + 2 * N <= len; i += 2 * N) {
      const auto v0 = hn::LoadU(d, xr + i);
      const auto v1 = hn::LoadU(d, xr + i + N);
      hn::StoreU(NormalizeVector<decltype(d)>(v0, vhi, vlo, vscale, vshift), d,
                 yr + i);
      hn::StoreU(NormalizeVector<decltype(d)>(v1, vhi, vlo, vscale, vshift), d,
                 yr + i + N);
    }
    for (; i + N <= len; i += N) {
      hn::StoreU(NormalizeVector<decltype(d)>(hn::LoadU(d, xr + i), vhi, vlo,
                                              vscale, vshift),
                 d, yr + i);
    }
    for (; i < len; ++i) {
      hn::StoreU(NormalizeVector<decltype(d1)>(hn::LoadU(d1, xr + i), hi1, lo1,
                                               scale1, shift1),
                 d1, yr + i);
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace bnorm
HWY_AFTER_NAMESPACE();

#endif  // BNORM_DISPATCH_NORMALIZE_INL_H_
