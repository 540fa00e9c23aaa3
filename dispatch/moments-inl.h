// Per-channel moments (mean and M2, the sum of squared deviations), written once
// for every Highway target. Compiled once per target: included by kernels.cc
// through foreach_target.h, hence the toggling include guard.
//
// Exactness: a plain float Σx, Σx² loses every digit of the variance when
// |mean| >> std. Each sub-block is reduced in two passes while it sits in L1:
// first its float mean m, then Σ(x - m) and Σ(x - m)² over at most a few dozen
// terms per accumulator. The sub-block's moments become double and merge with
// Chan's formula, so the error stays near float epsilon whatever the mean.

#if defined(BNORM_DISPATCH_MOMENTS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef BNORM_DISPATCH_MOMENTS_INL_H_
#undef BNORM_DISPATCH_MOMENTS_INL_H_
#else
#define BNORM_DISPATCH_MOMENTS_INL_H_
#endif

#include <stddef.h>

#include "bnorm/dtype.hpp"
#include "dispatch/chan_merge.h"
#include "dispatch/convert-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace bnorm {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Rows per two-pass sub-block in the channels-last kernel: 16 rows of a few
// thousand channels stay in L1/L2 between the passes, and 16-term float sums
// keep the sub-block's moments within a few float epsilons.
constexpr size_t kSubRows = 16;
// Vectors per two-pass chunk of a channels-first run: 16 per each of the four
// accumulators, so every float sum has at most 16 terms (the same bound as
// kSubRows) on every target; 4 KiB on AVX-512, L1-resident.
constexpr size_t kRunChunkVectors = 64;

// Turns a sub-block's float shift m and deviation sums s1 = Σ(x - m),
// s2 = Σ(x - m)² over k values into double moments and merges them into
// (mean, m2), which already hold `done` values (done == 0: assign).
HWY_INLINE void MergeSubBlock(double done, double k, float m, float s1,
                              float s2, double* HWY_RESTRICT mean,
                              double* HWY_RESTRICT m2) {
  const double s1d = s1;
  const double block_mean = static_cast<double>(m) + s1d / k;
  const double block_m2 = static_cast<double>(s2) - s1d * s1d / k;
  if (done == 0.0) {
    *mean = block_mean;
    *m2 = block_m2;
  } else {
    ChanMerge(done, mean, m2, k, block_mean, block_m2);
  }
}

// Channels-last: moments of Lanes(d) adjacent channels over k <= kSubRows rows
// `stride` floats apart, merged into mean[0..N) and m2[0..N) holding `done`
// rows. Any alignment; reads exactly the k * Lanes(d) values.
template <class D, class T>
HWY_INLINE void SubBlockColumnMoments(D d, T t, const typename T::Raw* HWY_RESTRICT x,
                                      size_t k, size_t stride, double done,
                                      double* HWY_RESTRICT mean,
                                      double* HWY_RESTRICT m2) {
  using V = hn::Vec<D>;
  const size_t N = hn::Lanes(d);
  // Scaling each term by 1/k (instead of dividing the sum) cannot overflow.
  const V inv_k = hn::Set(d, 1.0f / static_cast<float>(k));
  V m = hn::Zero(d);
  for (size_t r = 0; r < k; ++r) {
    m = hn::MulAdd(LoadAs(d, t, x + r * stride), inv_k, m);
  }
  V s1 = hn::Zero(d);
  V s2 = hn::Zero(d);
  for (size_t r = 0; r < k; ++r) {
    const V dev = hn::Sub(LoadAs(d, t, x + r * stride), m);
    s1 = hn::Add(s1, dev);
    s2 = hn::MulAdd(dev, dev, s2);
  }
  HWY_ALIGN float lane_m[hn::MaxLanes(D())];
  HWY_ALIGN float lane_s1[hn::MaxLanes(D())];
  HWY_ALIGN float lane_s2[hn::MaxLanes(D())];
  hn::Store(m, d, lane_m);
  hn::Store(s1, d, lane_s1);
  hn::Store(s2, d, lane_s2);
  const double kd = static_cast<double>(k);
  for (size_t i = 0; i < N; ++i) {
    MergeSubBlock(done, kd, lane_m[i], lane_s1[i], lane_s2[i], mean + i,
                  m2 + i);
  }
}

// Channels-last moments of `rows` >= 1 rows of `channels` values.
template <class T>
HWY_INLINE void MomentsRowsT(T t, const typename T::Raw* HWY_RESTRICT x, size_t rows,
                                  size_t channels, size_t stride,
                                  double* HWY_RESTRICT mean,
                                  double* HWY_RESTRICT m2) {
  const hn::ScalableTag<float> d;
  const hn::CappedTag<float, 1> d1;
  const size_t N = hn::Lanes(d);
  for (size_t r0 = 0; r0 < rows; r0 += kSubRows) {
    const size_t k = HWY_MIN(kSubRows, rows - r0);
    const typename T::Raw* HWY_RESTRICT block = x + r0 * stride;
    const double done = static_cast<double>(r0);
    size_t c = 0;
    for (; c + N <= channels; c += N) {
      SubBlockColumnMoments(d, t, block + c, k, stride, done, mean + c, m2 + c);
    }
    // Remaining channels one lane at a time: no masked loads, which could
    // fault (SSE4) or read past the row.
    for (; c < channels; ++c) {
      SubBlockColumnMoments(d1, t, block + c, k, stride, done, mean + c, m2 + c);
    }
  }
}

// Σ x * scale over n floats: four accumulators hide the FMA latency; the tail
// goes lane by lane so nothing past x + n is touched.
template <class D, class T>
HWY_INLINE float ScaledSum(D d, T t, const typename T::Raw* HWY_RESTRICT x, size_t n,
                           float scale) {
  using V = hn::Vec<D>;
  const size_t N = hn::Lanes(d);
  const V vscale = hn::Set(d, scale);
  V a0 = hn::Zero(d), a1 = hn::Zero(d), a2 = hn::Zero(d), a3 = hn::Zero(d);
  size_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    a0 = hn::MulAdd(LoadAs(d, t, x + i), vscale, a0);
    a1 = hn::MulAdd(LoadAs(d, t, x + i + N), vscale, a1);
    a2 = hn::MulAdd(LoadAs(d, t, x + i + 2 * N), vscale, a2);
    a3 = hn::MulAdd(LoadAs(d, t, x + i + 3 * N), vscale, a3);
  }
  for (; i + N <= n; i += N) {
    a0 = hn::MulAdd(LoadAs(d, t, x + i), vscale, a0);
  }
  const V sum = hn::Add(hn::Add(a0, a1), hn::Add(a2, a3));
  const hn::CappedTag<float, 1> d1;
  const auto scale1 = hn::Set(d1, scale);
  auto tail = hn::Zero(d1);
  for (; i < n; ++i) tail = hn::MulAdd(LoadAs(d1, t, x + i), scale1, tail);
  return hn::GetLane(hn::SumOfLanes(d, sum)) + hn::GetLane(tail);
}

// Σ(x - m) and Σ(x - m)² over n floats, four accumulator pairs.
template <class D, class T>
HWY_INLINE void DeviationSums(D d, T t, const typename T::Raw* HWY_RESTRICT x, size_t n,
                              float m, float* s1_out, float* s2_out) {
  using V = hn::Vec<D>;
  const size_t N = hn::Lanes(d);
  const V vm = hn::Set(d, m);
  V s1a = hn::Zero(d), s1b = hn::Zero(d), s1c = hn::Zero(d), s1d = hn::Zero(d);
  V s2a = hn::Zero(d), s2b = hn::Zero(d), s2c = hn::Zero(d), s2d = hn::Zero(d);
  size_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    const V d0 = hn::Sub(LoadAs(d, t, x + i), vm);
    const V d1 = hn::Sub(LoadAs(d, t, x + i + N), vm);
    const V d2 = hn::Sub(LoadAs(d, t, x + i + 2 * N), vm);
    const V d3 = hn::Sub(LoadAs(d, t, x + i + 3 * N), vm);
    s1a = hn::Add(s1a, d0);
    s1b = hn::Add(s1b, d1);
    s1c = hn::Add(s1c, d2);
    s1d = hn::Add(s1d, d3);
    s2a = hn::MulAdd(d0, d0, s2a);
    s2b = hn::MulAdd(d1, d1, s2b);
    s2c = hn::MulAdd(d2, d2, s2c);
    s2d = hn::MulAdd(d3, d3, s2d);
  }
  for (; i + N <= n; i += N) {
    const V d0 = hn::Sub(LoadAs(d, t, x + i), vm);
    s1a = hn::Add(s1a, d0);
    s2a = hn::MulAdd(d0, d0, s2a);
  }
  const V s1 = hn::Add(hn::Add(s1a, s1b), hn::Add(s1c, s1d));
  const V s2 = hn::Add(hn::Add(s2a, s2b), hn::Add(s2c, s2d));
  const hn::CappedTag<float, 1> d1;
  const auto m1 = hn::Set(d1, m);
  auto t1 = hn::Zero(d1), t2 = hn::Zero(d1);
  for (; i < n; ++i) {
    const auto dev = hn::Sub(LoadAs(d1, t, x + i), m1);
    t1 = hn::Add(t1, dev);
    t2 = hn::MulAdd(dev, dev, t2);
  }
  *s1_out = hn::GetLane(hn::SumOfLanes(d, s1)) + hn::GetLane(t1);
  *s2_out = hn::GetLane(hn::SumOfLanes(d, s2)) + hn::GetLane(t2);
}

// Channels-first moments of one channel: `runs` runs of `len` values.
template <class T>
HWY_INLINE void MomentsRunsT(T t, const typename T::Raw* HWY_RESTRICT x, size_t runs,
                                  size_t len, size_t stride,
                                  double* HWY_RESTRICT mean,
                                  double* HWY_RESTRICT m2) {
  const hn::ScalableTag<float> d;
  const size_t chunk = kRunChunkVectors * hn::Lanes(d);
  double done = 0.0;
  for (size_t run = 0; run < runs; ++run) {
    const typename T::Raw* HWY_RESTRICT p = x + run * stride;
    for (size_t i0 = 0; i0 < len; i0 += chunk) {
      const size_t k = HWY_MIN(chunk, len - i0);
      const float m = ScaledSum(d, t, p + i0, k, 1.0f / static_cast<float>(k));
      float s1, s2;
      DeviationSums(d, t, p + i0, k, m, &s1, &s2);
      MergeSubBlock(done, static_cast<double>(k), m, s1, s2, mean, m2);
      done += static_cast<double>(k);
    }
  }
}

// Entry points: the element type is chosen once per block, not per vector.
HWY_NOINLINE void MomentsRowsImpl(const void* x, DType type, size_t rows, size_t channels,
                                  size_t stride, double* mean, double* m2) {
  switch (type) {
    case DType::kFloat32:
      return MomentsRowsT(F32(), static_cast<const float*>(x), rows, channels, stride, mean, m2);
    case DType::kBFloat16:
      return MomentsRowsT(BF16(), static_cast<const uint16_t*>(x), rows, channels, stride, mean,
                          m2);
    case DType::kFloat16:
      return MomentsRowsT(F16(), static_cast<const uint16_t*>(x), rows, channels, stride, mean,
                          m2);
  }
}

HWY_NOINLINE void MomentsRunsImpl(const void* x, DType type, size_t runs, size_t len,
                                  size_t stride, double* mean, double* m2) {
  switch (type) {
    case DType::kFloat32:
      return MomentsRunsT(F32(), static_cast<const float*>(x), runs, len, stride, mean, m2);
    case DType::kBFloat16:
      return MomentsRunsT(BF16(), static_cast<const uint16_t*>(x), runs, len, stride, mean, m2);
    case DType::kFloat16:
      return MomentsRunsT(F16(), static_cast<const uint16_t*>(x), runs, len, stride, mean, m2);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace bnorm
HWY_AFTER_NAMESPACE();

#endif  // BNORM_DISPATCH_MOMENTS_INL_H_
