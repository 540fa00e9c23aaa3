// SPDX-License-Identifier: Apache-2.0
// The two-pass sub-block reduction, for any kernel that sums over a block: the
// accumulator bounds, the deviation scaling, and the merges that turn float
// sub-block moments into double moments. Compiled once per target: included
// through foreach_target.h by a module's .cc, hence the toggling include guard.
//
// Exactness: a plain float Σx, Σx² loses every digit of the variance when
// |mean| >> std. Each sub-block is reduced in two passes while it sits in L1:
// first its float mean m, then Σ(x - m) and Σ(x - m)² over at most a few dozen
// terms per accumulator. The sub-block's moments become double and merge with
// Chan's formula, so the error stays near float epsilon whatever the mean.

#if defined(BNORM_DISPATCH_SUB_BLOCKS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef BNORM_DISPATCH_SUB_BLOCKS_INL_H_
#undef BNORM_DISPATCH_SUB_BLOCKS_INL_H_
#else
#define BNORM_DISPATCH_SUB_BLOCKS_INL_H_
#endif

#include <stddef.h>

#include "dispatch/sub_blocks.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace bnorm {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Rows per channels-last sub-block (the drivers cut blocks in whole ones).
using dispatch::kSubRows;

// Vectors per two-pass chunk of a channels-first run: 16 per each of the four
// accumulators, so every float sum has at most 16 terms (the same bound as
// kSubRows / 2) on every target; 4 KiB on AVX-512, L1-resident.
constexpr size_t kRunChunkVectors = 64;

// Deviations are accumulated as (x - m) / 8, computed exactly as
// x * (1/8) - m * (1/8) in one FMA: a float sum of up to 64 squared deviations
// then cannot overflow unless a single deviation's square does (|x - m| above
// ~1.8e19), where Σ(x - m)² itself would overflow for variances near float's
// limit. Powers of two keep the scaling exact.
constexpr float kDevScale = 0.125f;
constexpr double kDevUnscale = 8.0;

// What merging one channels-last sub-block of k rows into moments holding
// `done` rows needs: the same for every column of the sub-block, so computed
// once per sub-block (three divisions that would otherwise run per column).
struct SubBlockMerge {
  SubBlockMerge(double done_rows, size_t k)
      : done(done_rows),
        rows(static_cast<double>(k)),
        inv_k(1.0 / rows),
        inv_k_f(1.0f / static_cast<float>(k)),
        weight_b(rows / (done + rows)),
        weight_ab(done * rows / (done + rows)) {}
  double done;       // rows already in (mean, m2); 0: assign
  double rows;       // k
  double inv_k;      // 1 / k
  float inv_k_f;     // 1 / k in float, for the shift pass
  double weight_b;   // Chan's k / (done + k)
  double weight_ab;  // Chan's done * k / (done + k)
};

// Turns the sub-block moments of Lanes(d) channels (float shift m and scaled
// deviation sums s1 = Σ(x - m)/8, s2 = Σ((x - m)/8)² over w.rows values) into
// double moments and merges them into mean[0..N) and m2[0..N) (Chan's
// formula; w.done == 0: assign). Vectorized in double:
// per sub-block this is a handful of double ops per lane, which
// one-lane-at-a-time code made the bottleneck.
template <class D, class V = hn::Vec<D>>
HWY_INLINE void MergeSubBlockLanes(D d, V m, V s1, V s2, const SubBlockMerge& w,
                                   double* HWY_RESTRICT mean, double* HWY_RESTRICT m2) {
  if constexpr (hn::MaxLanes(D()) == 1) {  // one lane: the same steps in scalar double
    (void)d;
    const double p1 = hn::GetLane(s1) * kDevUnscale;
    const double block_mean = p1 * w.inv_k + hn::GetLane(m);
    const double block_m2 = hn::GetLane(s2) * (kDevUnscale * kDevUnscale) - p1 * p1 * w.inv_k;
    if (w.done == 0.0) {
      *mean = block_mean;
      *m2 = block_m2;
      return;
    }
    const double delta = block_mean - *mean;
    *mean += delta * w.weight_b;
    *m2 += block_m2 + delta * delta * w.weight_ab;
  } else {
#if HWY_TARGET != HWY_SCALAR  // the scalar target has no vector halves
    const hn::Half<D> dh;
    const hn::Repartition<double, D> dd;
    const size_t half = hn::Lanes(dd);
    const auto inv_k = hn::Set(dd, w.inv_k);
    const auto unscale = hn::Set(dd, kDevUnscale);
    const auto unscale2 = hn::Set(dd, kDevUnscale * kDevUnscale);
    const auto weight_b = hn::Set(dd, w.weight_b);
    const auto weight_ab = hn::Set(dd, w.weight_ab);
    for (size_t part = 0; part < 2; ++part) {
      const auto pm = part == 0 ? hn::PromoteTo(dd, hn::LowerHalf(dh, m))
                                : hn::PromoteTo(dd, hn::UpperHalf(dh, m));
      const auto p1 = hn::Mul(unscale, part == 0 ? hn::PromoteTo(dd, hn::LowerHalf(dh, s1))
                                                 : hn::PromoteTo(dd, hn::UpperHalf(dh, s1)));
      const auto p2 = hn::Mul(unscale2, part == 0 ? hn::PromoteTo(dd, hn::LowerHalf(dh, s2))
                                                  : hn::PromoteTo(dd, hn::UpperHalf(dh, s2)));
      const auto block_mean = hn::MulAdd(p1, inv_k, pm);
      const auto block_m2 = hn::NegMulAdd(hn::Mul(p1, p1), inv_k, p2);
      double* HWY_RESTRICT mean_part = mean + part * half;
      double* HWY_RESTRICT m2_part = m2 + part * half;
      if (w.done == 0.0) {
        hn::StoreU(block_mean, dd, mean_part);
        hn::StoreU(block_m2, dd, m2_part);
        continue;
      }
      const auto mean_a = hn::LoadU(dd, mean_part);
      const auto delta = hn::Sub(block_mean, mean_a);
      hn::StoreU(hn::MulAdd(delta, weight_b, mean_a), dd, mean_part);
      const auto m2_a = hn::Add(hn::LoadU(dd, m2_part), block_m2);
      hn::StoreU(hn::MulAdd(hn::Mul(delta, delta), weight_ab, m2_a), dd, m2_part);
    }
#endif
  }
}

// Whether deviation sums s1 = Σ(x - m)/8 and s2 = Σ((x - m)/8)² over `k`
// values per lane, taken about a shift m that is not the values' own mean (a
// running mean), are as good as two passes would give: in every lane s2 is
// finite (deviations from a far shift can overflow where those from the
// chunk's own mean would not; non-finite data fails too and is redone to the
// same NaN or Inf) and the squared offset (s1/k)² is at most half the mean
// square s2/k, so M2 = s2 - s1²/k is at least half of s2 and inherits its
// rounding error at most doubled.
template <class D, class V = hn::Vec<D>>
HWY_INLINE bool ShiftHeld(D d, V s1, V s2, double k) {
  const V half_k = hn::Set(d, static_cast<float>(0.5 * k));
  const auto off = hn::Or(hn::Gt(hn::Mul(s1, s1), hn::Mul(half_k, s2)), hn::Not(hn::IsFinite(s2)));
  return hn::AllFalse(d, off);
}

// The moments of Lanes(d) lanes of n values each (double means and M2s)
// combined into one mean and M2: the mean of the lane means refined by its own
// residual, and M2 the lanes' M2s plus n * Σ(lane mean - mean)² (Chan's
// formula for equal counts). Once per channel and block, in double vectors.
template <class D>
HWY_INLINE void CombineLanes(D d, const double* HWY_RESTRICT lane_mean,
                             const double* HWY_RESTRICT lane_m2, double n,
                             double* HWY_RESTRICT mean, double* HWY_RESTRICT m2) {
  if constexpr (hn::MaxLanes(D()) == 1) {
    (void)d;
    (void)n;
    *mean = lane_mean[0];
    *m2 = lane_m2[0];
  } else {
#if HWY_TARGET != HWY_SCALAR  // the scalar target has no double vectors of two lanes
    const hn::Repartition<double, D> dd;
    const size_t half = hn::Lanes(dd);
    const double lanes = static_cast<double>(hn::Lanes(d));
    const auto mean_lo = hn::LoadU(dd, lane_mean);
    const auto mean_hi = hn::LoadU(dd, lane_mean + half);
    const double mu = hn::GetLane(hn::SumOfLanes(dd, hn::Add(mean_lo, mean_hi))) / lanes;
    const auto vmu = hn::Set(dd, mu);
    const auto dev_lo = hn::Sub(mean_lo, vmu);
    const auto dev_hi = hn::Sub(mean_hi, vmu);
    const double residual = hn::GetLane(hn::SumOfLanes(dd, hn::Add(dev_lo, dev_hi)));
    const double between =
        hn::GetLane(hn::SumOfLanes(dd, hn::MulAdd(dev_lo, dev_lo, hn::Mul(dev_hi, dev_hi))));
    const double within = hn::GetLane(
        hn::SumOfLanes(dd, hn::Add(hn::LoadU(dd, lane_m2), hn::LoadU(dd, lane_m2 + half))));
    *mean = mu + residual / lanes;
    *m2 = within + n * (between - residual * residual / lanes);
#endif
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace bnorm
HWY_AFTER_NAMESPACE();

#endif  // BNORM_DISPATCH_SUB_BLOCKS_INL_H_
