// SPDX-License-Identifier: Apache-2.0
// The training fold (fold.h), compiled once per target through
// foreach_target.h, which includes this file again for each.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "dispatch/fold.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "dispatch/fold.h"

#include <stddef.h>

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace bnorm {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Lanes(d64) channels from c: double vectors, demoted to floats at the end.
template <class D64>
HWY_INLINE void FoldVector(D64 d64, const double* HWY_RESTRICT mean,
                           const double* HWY_RESTRICT variance, const float* HWY_RESTRICT gamma,
                           const float* HWY_RESTRICT beta, double epsilon, size_t c,
                           float* HWY_RESTRICT hi, float* HWY_RESTRICT lo,
                           float* HWY_RESTRICT scale, float* HWY_RESTRICT shift) {
  const hn::Rebind<float, D64> d32;
  const auto m = hn::LoadU(d64, mean + c);
  const auto h = hn::DemoteTo(d32, m);
  hn::StoreU(h, d32, hi + c);
  hn::StoreU(hn::DemoteTo(d32, hn::Sub(m, hn::PromoteTo(d64, h))), d32, lo + c);
  const auto g = gamma == nullptr ? hn::Set(d64, 1.0) : hn::PromoteTo(d64, hn::LoadU(d32, gamma + c));
  const auto rstd = hn::Sqrt(hn::Add(hn::LoadU(d64, variance + c), hn::Set(d64, epsilon)));
  hn::StoreU(hn::DemoteTo(d32, hn::Div(g, rstd)), d32, scale + c);
  hn::StoreU(beta == nullptr ? hn::Zero(d32) : hn::LoadU(d32, beta + c), d32, shift + c);
}

HWY_NOINLINE void FoldTraining(const double* mean, const double* variance, const float* gamma,
                               const float* beta, double epsilon, size_t channels, float* hi,
                               float* lo, float* scale, float* shift) {
  const hn::ScalableTag<double> d64;
  const hn::CappedTag<double, 1> d1;
  const size_t N = hn::Lanes(d64);
  size_t c = 0;
  for (; c + N <= channels; c += N) {
    FoldVector(d64, mean, variance, gamma, beta, epsilon, c, hi, lo, scale, shift);
  }
  for (; c < channels; ++c) {
    FoldVector(d1, mean, variance, gamma, beta, epsilon, c, hi, lo, scale, shift);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace bnorm
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace bnorm {
namespace dispatch {

HWY_EXPORT(FoldTraining);

void FoldTraining(const double* mean, const double* variance, const float* gamma,
                  const float* beta, double epsilon, size_t channels, float* hi, float* lo,
                  float* scale, float* shift) {
  HWY_DYNAMIC_DISPATCH(FoldTraining)(mean, variance, gamma, beta, epsilon, channels, hi, lo,
                                     scale, shift);
}

}  // namespace dispatch
}  // namespace bnorm
#endif  // HWY_ONCE
