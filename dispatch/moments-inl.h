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
#include "dispatch/partial_vectors-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace bnorm {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Rows per two-pass sub-block in the channels-last kernel: 32 rows of a chunk
// of kShiftChunk channels (16 KiB) stay in L1 between the passes; even and odd
// rows sum apart, so 16-term float sums keep the sub-block's moments within a
// few float epsilons. (32 rather than 16 halves the double merges per value:
// 2 threads, 103 MB: 3.16 -> 2.76 ms.)
constexpr size_t kSubRows = 32;
// Vectors per two-pass chunk of a channels-first run: 16 per each of the four
// accumulators, so every float sum has at most 16 terms (the same bound as
// kSubRows / 2) on every target; 4 KiB on AVX-512, L1-resident.
constexpr size_t kRunChunkVectors = 64;

// Bytes per cache line, the unit of software prefetch (64 on current x86 and
// Arm server cores; a wrong guess costs only duplicate or missing prefetches).
constexpr size_t kCacheLine = 64;

// Prefetches the cache lines of `bytes` bytes from p (pass 2 of the moments
// kernels works from L1 and would otherwise leave memory idle).
HWY_INLINE void PrefetchLines(const void* p, size_t bytes) {
  const char* line = static_cast<const char*>(p);
  for (size_t offset = 0; offset < bytes; offset += kCacheLine) __builtin_prefetch(line + offset);
}

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

// Channels-last pass 1: shift[j] = Σ_r x[r][j] / k for the `width` channels
// starting at x (a multiple of Lanes(d)), over k <= kSubRows rows `stride`
// apart. Strips of four vectors keep their sums in registers, even and odd rows
// apart (independent chains, and at most kSubRows / 2 terms per float sum); the
// shifts stay in L1 for pass 2. Scaling each term by 1/k (instead of dividing
// the sum) cannot overflow.
template <class D, class T>
HWY_INLINE void ChunkShifts(D d, T t, const typename T::Raw* HWY_RESTRICT x, size_t k,
                            size_t stride, size_t width, float inv_k, float* HWY_RESTRICT shift) {
  using V = hn::Vec<D>;
  const size_t N = hn::Lanes(d);
  const V vinv_k = hn::Set(d, inv_k);
  size_t j = 0;
  for (; j + 4 * N <= width; j += 4 * N) {
    V e0 = hn::Zero(d), e1 = hn::Zero(d), e2 = hn::Zero(d), e3 = hn::Zero(d);
    V o0 = hn::Zero(d), o1 = hn::Zero(d), o2 = hn::Zero(d), o3 = hn::Zero(d);
    for (size_t r = 0; r < k; r += 2) {
      const typename T::Raw* HWY_RESTRICT p = x + r * stride + j;
      e0 = hn::MulAdd(LoadAs(d, t, p), vinv_k, e0);
      e1 = hn::MulAdd(LoadAs(d, t, p + N), vinv_k, e1);
      e2 = hn::MulAdd(LoadAs(d, t, p + 2 * N), vinv_k, e2);
      e3 = hn::MulAdd(LoadAs(d, t, p + 3 * N), vinv_k, e3);
      if (r + 1 == k) break;
      p += stride;
      o0 = hn::MulAdd(LoadAs(d, t, p), vinv_k, o0);
      o1 = hn::MulAdd(LoadAs(d, t, p + N), vinv_k, o1);
      o2 = hn::MulAdd(LoadAs(d, t, p + 2 * N), vinv_k, o2);
      o3 = hn::MulAdd(LoadAs(d, t, p + 3 * N), vinv_k, o3);
    }
    hn::Store(hn::Add(e0, o0), d, shift + j);
    hn::Store(hn::Add(e1, o1), d, shift + j + N);
    hn::Store(hn::Add(e2, o2), d, shift + j + 2 * N);
    hn::Store(hn::Add(e3, o3), d, shift + j + 3 * N);
  }
  for (; j < width; j += N) {
    V e = hn::Zero(d), o = hn::Zero(d);
    for (size_t r = 0; r < k; r += 2) {
      e = hn::MulAdd(LoadAs(d, t, x + r * stride + j), vinv_k, e);
      if (r + 1 < k) o = hn::MulAdd(LoadAs(d, t, x + (r + 1) * stride + j), vinv_k, o);
    }
    hn::Store(hn::Add(e, o), d, shift + j);
  }
}

// Deviations of one row's G vectors from their shifts (scaled by kDevScale)
// added to one set of accumulators.
template <size_t G, class D, class T, class V = hn::Vec<D>>
HWY_INLINE void AddDeviations(D d, T t, const typename T::Raw* HWY_RESTRICT row, V scale, V ms_0,
                              V ms_1, V ms_2, V ms_3, V& s1_0, V& s1_1, V& s1_2, V& s1_3, V& s2_0,
                              V& s2_1, V& s2_2, V& s2_3) {
  const size_t N = hn::Lanes(d);
  const V dev0 = hn::MulSub(LoadAs(d, t, row), scale, ms_0);
  s1_0 = hn::Add(s1_0, dev0);
  s2_0 = hn::MulAdd(dev0, dev0, s2_0);
  if constexpr (G >= 2) {
    const V dev1 = hn::MulSub(LoadAs(d, t, row + N), scale, ms_1);
    s1_1 = hn::Add(s1_1, dev1);
    s2_1 = hn::MulAdd(dev1, dev1, s2_1);
  }
  if constexpr (G == 4) {
    const V dev2 = hn::MulSub(LoadAs(d, t, row + 2 * N), scale, ms_2);
    const V dev3 = hn::MulSub(LoadAs(d, t, row + 3 * N), scale, ms_3);
    s1_2 = hn::Add(s1_2, dev2);
    s2_2 = hn::MulAdd(dev2, dev2, s2_2);
    s1_3 = hn::Add(s1_3, dev3);
    s2_3 = hn::MulAdd(dev3, dev3, s2_3);
  }
}

// Channels-last pass 2: deviations from the shifts m[0..G * Lanes(d)) of
// G * Lanes(d) adjacent channels (G = 1, 2 or 4 vectors) over k rows `stride`
// apart, merged into mean[0..) and m2[0..). Even and odd rows go to separate
// accumulators: 4G independent chains, and at most kSubRows / 2 terms per
// float sum. With `next` (the same columns of the next sub-block, which has k
// rows too), each row's lines there are prefetched: pass 2 works from L1 and
// would otherwise leave memory idle.
template <size_t G, class D, class T>
HWY_INLINE void ColumnGroupDeviations(D d, T t, const typename T::Raw* HWY_RESTRICT x, size_t k,
                                      size_t stride, const float* HWY_RESTRICT shift,
                                      const SubBlockMerge& w, double* HWY_RESTRICT mean,
                                      double* HWY_RESTRICT m2,
                                      const typename T::Raw* next = nullptr) {
  static_assert(G == 1 || G == 2 || G == 4, "column groups of 1, 2 or 4 vectors");
  using V = hn::Vec<D>;
  const size_t N = hn::Lanes(d);
  const V scale = hn::Set(d, kDevScale);
  const V m_0 = hn::LoadU(d, shift);
  const V m_1 = G >= 2 ? hn::LoadU(d, shift + N) : m_0;
  const V m_2 = G == 4 ? hn::LoadU(d, shift + 2 * N) : m_0;
  const V m_3 = G == 4 ? hn::LoadU(d, shift + 3 * N) : m_0;
  const V ms_0 = hn::Mul(m_0, scale), ms_1 = hn::Mul(m_1, scale);
  const V ms_2 = hn::Mul(m_2, scale), ms_3 = hn::Mul(m_3, scale);
  V e1_0 = hn::Zero(d), e1_1 = hn::Zero(d), e1_2 = hn::Zero(d), e1_3 = hn::Zero(d);
  V e2_0 = hn::Zero(d), e2_1 = hn::Zero(d), e2_2 = hn::Zero(d), e2_3 = hn::Zero(d);
  V o1_0 = hn::Zero(d), o1_1 = hn::Zero(d), o1_2 = hn::Zero(d), o1_3 = hn::Zero(d);
  V o2_0 = hn::Zero(d), o2_1 = hn::Zero(d), o2_2 = hn::Zero(d), o2_3 = hn::Zero(d);
  const size_t group_bytes = G * N * sizeof(typename T::Raw);
  for (size_t r = 0; r < k; r += 2) {
    if (next != nullptr) {
      PrefetchLines(next + r * stride, group_bytes);
      PrefetchLines(next + (r + 1) * stride, group_bytes);
    }
    AddDeviations<G>(d, t, x + r * stride, scale, ms_0, ms_1, ms_2, ms_3, e1_0, e1_1, e1_2, e1_3,
                     e2_0, e2_1, e2_2, e2_3);
    if (r + 1 == k) break;
    AddDeviations<G>(d, t, x + (r + 1) * stride, scale, ms_0, ms_1, ms_2, ms_3, o1_0, o1_1, o1_2,
                     o1_3, o2_0, o2_1, o2_2, o2_3);
  }
  MergeSubBlockLanes(d, m_0, hn::Add(e1_0, o1_0), hn::Add(e2_0, o2_0), w, mean, m2);
  if constexpr (G >= 2) {
    MergeSubBlockLanes(d, m_1, hn::Add(e1_1, o1_1), hn::Add(e2_1, o2_1), w, mean + N, m2 + N);
  }
  if constexpr (G == 4) {
    MergeSubBlockLanes(d, m_2, hn::Add(e1_2, o1_2), hn::Add(e2_2, o2_2), w, mean + 2 * N,
                       m2 + 2 * N);
    MergeSubBlockLanes(d, m_3, hn::Add(e1_3, o1_3), hn::Add(e2_3, o2_3), w, mean + 3 * N,
                       m2 + 3 * N);
  }
}

// Channels per pass-1 chunk: kSubRows rows of them (16 KiB in float) stay in
// L1 for pass 2.
constexpr size_t kShiftChunk = 128;

// Vectors per pass-2 column group: 4 (16 accumulators) where the target has 32
// vector registers (AVX-512, NEON, SVE), 2 on x86's 16, where 4 would spill.
#if HWY_ARCH_X86 && HWY_TARGET > HWY_AVX3
constexpr size_t kGroupVectors = 2;
#else
constexpr size_t kGroupVectors = 4;
#endif

// Channels-last moments of `rows` >= 1 rows of `channels` values: per
// sub-block of kSubRows rows, whole vectors of channels in chunks of at most
// kShiftChunk (pass 1 over the chunk, then pass 2 in column groups), then the
// channels left over in partial vectors (no masked loads, which could fault on SSE4 or
// read past the row). Pass 1 covers the whole chunk before any of pass 2, so
// the chunk's loads from memory go out back to back (103 MB, one thread: 11.7
// -> 8.6 ms against both passes per column group), and pass 2 then finds the
// chunk in L1.
template <class T>
HWY_INLINE void MomentsRowsT(T t, const typename T::Raw* HWY_RESTRICT x, size_t rows,
                             size_t channels, size_t stride, double* HWY_RESTRICT mean,
                             double* HWY_RESTRICT m2) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  const size_t vector_channels = channels - channels % N;
  HWY_ALIGN float shift[kShiftChunk];
  for (size_t r0 = 0; r0 < rows; r0 += kSubRows) {
    const size_t k = HWY_MIN(kSubRows, rows - r0);
    const typename T::Raw* HWY_RESTRICT block = x + r0 * stride;
    const SubBlockMerge w(static_cast<double>(r0), k);
    for (size_t c0 = 0; c0 < vector_channels; c0 += kShiftChunk) {
      const size_t width = HWY_MIN(kShiftChunk, vector_channels - c0);
      ChunkShifts(d, t, block + c0, k, stride, width, w.inv_k_f, shift);
      // The next chunk, prefetched during pass 2: the next columns of this
      // sub-block, else the first of the next sub-block if this call has a
      // whole one (past its rows lies another block, maybe another thread's).
      const typename T::Raw* next = nullptr;
      size_t next_width = 0;
      if (c0 + kShiftChunk < vector_channels) {
        next = block + c0 + kShiftChunk;
        next_width = HWY_MIN(kShiftChunk, vector_channels - c0 - kShiftChunk);
      } else if (r0 + 2 * kSubRows <= rows) {
        next = block + kSubRows * stride;
        next_width = HWY_MIN(kShiftChunk, vector_channels);
      }
      // The same columns of the next chunk, if it has them.
      const auto next_group = [&](size_t j, size_t vectors) {
        return next != nullptr && j + vectors * N <= next_width ? next + j : nullptr;
      };
      size_t j = 0;
      for (; j + kGroupVectors * N <= width; j += kGroupVectors * N) {
        const size_t c = c0 + j;
        ColumnGroupDeviations<kGroupVectors>(d, t, block + c, k, stride, shift + j, w, mean + c,
                                             m2 + c, next_group(j, kGroupVectors));
      }
      if (j + 2 * N <= width) {  // C = 32 on AVX-512: two chains, not one after another
        const size_t c = c0 + j;
        ColumnGroupDeviations<2>(d, t, block + c, k, stride, shift + j, w, mean + c, m2 + c,
                                 next_group(j, 2));
        j += 2 * N;
      }
      if (j < width) {
        const size_t c = c0 + j;
        ColumnGroupDeviations<1>(d, t, block + c, k, stride, shift + j, w, mean + c, m2 + c,
                                 next_group(j, 1));
      }
    }
    size_t c = vector_channels;
    ForEachPartialVector(N, &c, channels, [&](auto dc, size_t first) {
      ChunkShifts(dc, t, block + first, k, stride, hn::Lanes(dc), w.inv_k_f, shift);
      ColumnGroupDeviations<1>(dc, t, block + first, k, stride, shift, w, mean + first, m2 + first);
    });
  }
}

// Channels-first: the whole vectors of each run are reduced per lane (each
// lane a sub-sample with its own float shift, like a channels-last column, so
// pass 2 never waits for a horizontal reduction).

// Pass 1 of the vector part: per lane, Σ x * scale over the whole vectors of
// `runs` runs of `len` values (`stride` apart). Four accumulators hide the FMA
// latency and each collects at most a quarter of the chunk's vectors (16).
template <class D, class T>
HWY_INLINE hn::Vec<D> LaneShifts(D d, T t, const typename T::Raw* HWY_RESTRICT x, size_t runs,
                                 size_t full, size_t stride, float scale) {
  using V = hn::Vec<D>;
  const size_t N = hn::Lanes(d);
  const V vscale = hn::Set(d, scale);
  V a0 = hn::Zero(d), a1 = hn::Zero(d), a2 = hn::Zero(d), a3 = hn::Zero(d);
  for (size_t run = 0; run < runs; ++run) {
    const typename T::Raw* HWY_RESTRICT p = x + run * stride;
    size_t i = 0;
    for (; i + 4 * N <= full; i += 4 * N) {
      a0 = hn::MulAdd(LoadAs(d, t, p + i), vscale, a0);
      a1 = hn::MulAdd(LoadAs(d, t, p + i + N), vscale, a1);
      a2 = hn::MulAdd(LoadAs(d, t, p + i + 2 * N), vscale, a2);
      a3 = hn::MulAdd(LoadAs(d, t, p + i + 3 * N), vscale, a3);
    }
    // A run's last vectors go round robin, continuing across runs (short runs
    // of one vector each must not all land in one accumulator).
    for (; i < full; i += N) {
      const V sum = hn::MulAdd(LoadAs(d, t, p + i), vscale, a0);
      a0 = a1, a1 = a2, a2 = a3, a3 = sum;
    }
  }
  return hn::Add(hn::Add(a0, a1), hn::Add(a2, a3));
}

// Pass 2 of the vector part: per lane, Σ(x - m)/8 and Σ((x - m)/8)² about the
// lane shifts m, in the same accumulator pattern as LaneShifts.
// With `next` (a chunk of next_runs runs of next_full values, `stride` apart),
// the lines of that chunk at the same places are prefetched: pass 2 works from
// L1 and would otherwise leave memory idle.
template <class D, class T, class V = hn::Vec<D>>
HWY_INLINE void LaneDeviations(D d, T t, const typename T::Raw* HWY_RESTRICT x, size_t runs,
                               size_t full, size_t stride, V m, V* s1_out, V* s2_out,
                               const typename T::Raw* next = nullptr, size_t next_runs = 0,
                               size_t next_full = 0) {
  const size_t N = hn::Lanes(d);
  const size_t step_bytes = 4 * N * sizeof(typename T::Raw);
  const V scale = hn::Set(d, kDevScale);
  const V vm = hn::Mul(m, scale);
  V s1a = hn::Zero(d), s1b = hn::Zero(d), s1c = hn::Zero(d), s1d = hn::Zero(d);
  V s2a = hn::Zero(d), s2b = hn::Zero(d), s2c = hn::Zero(d), s2d = hn::Zero(d);
  for (size_t run = 0; run < runs; ++run) {
    const typename T::Raw* HWY_RESTRICT p = x + run * stride;
    size_t i = 0;
    const bool prefetch = next != nullptr && run < next_runs;
    for (; i + 4 * N <= full; i += 4 * N) {
      if (prefetch && i + 4 * N <= next_full) PrefetchLines(next + run * stride + i, step_bytes);
      const V d0 = hn::MulSub(LoadAs(d, t, p + i), scale, vm);
      const V d1 = hn::MulSub(LoadAs(d, t, p + i + N), scale, vm);
      const V d2 = hn::MulSub(LoadAs(d, t, p + i + 2 * N), scale, vm);
      const V d3 = hn::MulSub(LoadAs(d, t, p + i + 3 * N), scale, vm);
      s1a = hn::Add(s1a, d0);
      s1b = hn::Add(s1b, d1);
      s1c = hn::Add(s1c, d2);
      s1d = hn::Add(s1d, d3);
      s2a = hn::MulAdd(d0, d0, s2a);
      s2b = hn::MulAdd(d1, d1, s2b);
      s2c = hn::MulAdd(d2, d2, s2c);
      s2d = hn::MulAdd(d3, d3, s2d);
    }
    for (; i < full; i += N) {  // round robin, as in LaneShifts
      const V dv = hn::MulSub(LoadAs(d, t, p + i), scale, vm);
      const V sum1 = hn::Add(s1a, dv), sum2 = hn::MulAdd(dv, dv, s2a);
      s1a = s1b, s1b = s1c, s1c = s1d, s1d = sum1;
      s2a = s2b, s2b = s2c, s2c = s2d, s2d = sum2;
    }
  }
  *s1_out = hn::Add(hn::Add(s1a, s1b), hn::Add(s1c, s1d));
  *s2_out = hn::Add(hn::Add(s2a, s2b), hn::Add(s2c, s2d));
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

// Run tails of at most this many values in all are reduced by FewTailMoments:
// below it, packing them and a lane reduction cost more than a plain loop (a
// batch of one 14x14 map has 4 tail values).
constexpr size_t kFewTailValues = 16;

// Mean and M2 of `runs` runs of `tail` values (`stride` apart) in double, two
// passes.
template <class T>
HWY_INLINE void FewTailMoments(T t, const typename T::Raw* HWY_RESTRICT x, size_t runs, size_t tail,
                               size_t stride, double* mean, double* m2) {
  const hn::CappedTag<float, 1> d1;
  double sum = 0.0;
  for (size_t run = 0; run < runs; ++run) {
    for (size_t i = 0; i < tail; ++i) sum += hn::GetLane(LoadAs(d1, t, x + run * stride + i));
  }
  const double count = static_cast<double>(runs * tail);
  const double shift = sum / count;
  double s1 = 0.0, s2 = 0.0;
  for (size_t run = 0; run < runs; ++run) {
    for (size_t i = 0; i < tail; ++i) {
      const double dev = hn::GetLane(LoadAs(d1, t, x + run * stride + i)) - shift;
      s1 += dev;
      s2 += dev * dev;
    }
  }
  *mean = shift + s1 / count;
  *m2 = s2 - s1 * s1 / count;
}

// Moments of the run tails (`tail` < Lanes(d) values at the end of each of
// `runs` runs, `stride` apart): packed run after run into a float buffer, which
// is then reduced in whole vectors per lane like the runs themselves (the
// tails alone would make narrow vectors with short dependency chains: 14x14
// maps spent a quarter of their time on 2 % of their values). The few packed
// values after the last whole vector go through FewTailMoments.
template <class D, class T>
HWY_INLINE void PackedTailMoments(D d, T t, const typename T::Raw* HWY_RESTRICT x, size_t runs,
                                  size_t tail, size_t stride, double* HWY_RESTRICT mean,
                                  double* HWY_RESTRICT m2) {
  const size_t N = hn::Lanes(d);
  constexpr size_t kMaxLanes = hn::MaxLanes(d);
  HWY_ALIGN float packed[kRunChunkVectors * kMaxLanes];
  HWY_ALIGN double lane_mean[kMaxLanes] = {};
  HWY_ALIGN double lane_m2[kMaxLanes] = {};
  // Runs per buffer: a multiple of N, so that only the last buffer can end in
  // a partial vector.
  const size_t runs_per_buffer = kRunChunkVectors * N / tail / N * N;
  double per_lane = 0.0;
  size_t packed_values = 0;  // in the last buffer
  size_t leftover = 0;       // packed values after its last whole vector
  for (size_t r0 = 0; r0 < runs; r0 += runs_per_buffer) {
    const size_t q = HWY_MIN(runs_per_buffer, runs - r0);
    for (size_t run = 0; run < q; ++run) {
      const typename T::Raw* HWY_RESTRICT src = x + (r0 + run) * stride;
      float* HWY_RESTRICT dst = packed + run * tail;
      size_t c = 0;
      ForEachPartialVector(N, &c, tail, [&](auto dc, size_t first) {
        hn::StoreU(LoadAs(dc, t, src + first), dc, dst + first);
      });
    }
    packed_values = q * tail;
    const size_t vectors = packed_values / N;
    leftover = packed_values - vectors * N;
    if (vectors == 0) break;
    const SubBlockMerge w(per_lane, vectors);
    const auto m = LaneShifts(d, F32(), packed, 1, vectors * N, 0, w.inv_k_f);
    hn::Vec<D> s1, s2;
    LaneDeviations(d, F32(), packed, 1, vectors * N, 0, m, &s1, &s2);
    MergeSubBlockLanes(d, m, s1, s2, w, lane_mean, lane_m2);
    per_lane += w.rows;
  }
  const float* HWY_RESTRICT rest = packed + (packed_values - leftover);
  if (per_lane == 0.0) {
    FewTailMoments(F32(), rest, 1, leftover, 0, mean, m2);
    return;
  }
  CombineLanes(d, lane_mean, lane_m2, per_lane, mean, m2);
  if (leftover > 0) {
    double rest_mean, rest_m2;
    FewTailMoments(F32(), rest, 1, leftover, 0, &rest_mean, &rest_m2);
    ChanMerge(per_lane * static_cast<double>(N), mean, m2, static_cast<double>(leftover), rest_mean,
              rest_m2);
  }
}

// A chunk of channels-first values: `runs` runs of `vectors` whole vectors.
template <class T>
struct RunChunk {
  const typename T::Raw* x = nullptr;
  size_t runs = 0;
  size_t vectors = 0;
};

// Channels-first moments of one channel: `runs` runs of `len` values, `stride`
// apart. The whole vectors of the runs are reduced per lane, in chunks of at
// most kRunChunkVectors vectors (a piece of one long run, or several short
// runs together); each chunk's float lane moments merge into per-lane double
// moments (as a channels-last sub-block does), and the lanes combine once at
// the end, so short runs (e.g. 14x14 feature maps) pay no horizontal
// reduction per chunk. The run tails (len % Lanes values per run) are packed
// and reduced apart (PackedTailMoments, or FewTailMoments when they are few),
// then merged.
template <class T>
HWY_INLINE void MomentsRunsT(T t, const typename T::Raw* HWY_RESTRICT x, size_t runs, size_t len,
                             size_t stride, double* HWY_RESTRICT mean, double* HWY_RESTRICT m2) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  const size_t full = len - len % N;
  constexpr size_t kMaxLanes = hn::MaxLanes(d);
  HWY_ALIGN double lane_mean[kMaxLanes] = {};
  HWY_ALIGN double lane_m2[kMaxLanes] = {};
  double count = 0.0;
  if (full > 0) {
    // Chunk k: a piece of one long run, or several short runs together.
    const size_t chunk = kRunChunkVectors * N;
    const bool long_runs = full >= chunk;
    const size_t pieces = long_runs ? (full + chunk - 1) / chunk : 1;  // per run
    const size_t runs_per_chunk = long_runs ? 1 : chunk / full;
    const size_t chunks = long_runs ? runs * pieces : (runs + runs_per_chunk - 1) / runs_per_chunk;
    const auto chunk_at = [&](size_t k) {
      if (long_runs) {
        const size_t i0 = k % pieces * chunk;
        return RunChunk<T>{x + k / pieces * stride + i0, 1, HWY_MIN(chunk, full - i0) / N};
      }
      const size_t r0 = k * runs_per_chunk;
      return RunChunk<T>{x + r0 * stride, HWY_MIN(runs_per_chunk, runs - r0), full / N};
    };
    // A software pipeline: pass 1 of chunk k + 1 runs before pass 2 of chunk
    // k, which prefetches chunk k + 2. Pass 2 waits for its shifts; in the
    // other order the next chunk's loads would queue behind that wait and
    // memory would idle while pass 2 works from L1. Each chunk's operations
    // and the merge order stay the same, so the results do too.
    HWY_ALIGN float shifts[2][kMaxLanes] = {};
    const auto chunk_shifts = [&](const RunChunk<T>& c, float* out) {
      const float inv_k = 1.0f / static_cast<float>(c.runs * c.vectors);  // SubBlockMerge's
      hn::Store(LaneShifts(d, t, c.x, c.runs, c.vectors * N, stride, inv_k), d, out);
    };
    double per_lane = 0.0;  // values per lane merged so far
    RunChunk<T> current = chunk_at(0);
    chunk_shifts(current, shifts[0]);
    for (size_t k = 0; k < chunks; ++k) {
      const RunChunk<T> next = k + 1 < chunks ? chunk_at(k + 1) : RunChunk<T>{};
      if (next.x != nullptr) chunk_shifts(next, shifts[(k + 1) & 1]);
      const RunChunk<T> ahead = k + 2 < chunks ? chunk_at(k + 2) : RunChunk<T>{};
      const SubBlockMerge w(per_lane, current.runs * current.vectors);
      const auto m = hn::Load(d, shifts[k & 1]);
      hn::Vec<decltype(d)> s1, s2;
      LaneDeviations(d, t, current.x, current.runs, current.vectors * N, stride, m, &s1, &s2,
                     ahead.x, ahead.runs, ahead.vectors * N);
      MergeSubBlockLanes(d, m, s1, s2, w, lane_mean, lane_m2);
      per_lane += w.rows;
      current = next;
    }
    CombineLanes(d, lane_mean, lane_m2, per_lane, mean, m2);
    count = per_lane * static_cast<double>(N);
  }
  if (full < len) {
    const size_t tail = len - full;
    double tail_mean, tail_m2;
    if (runs * tail <= kFewTailValues) {
      FewTailMoments(t, x + full, runs, tail, stride, &tail_mean, &tail_m2);
    } else {
      PackedTailMoments(d, t, x + full, runs, tail, stride, &tail_mean, &tail_m2);
    }
    const double n = static_cast<double>(runs);
    if (count == 0.0) {
      *mean = tail_mean;
      *m2 = tail_m2;
    } else {
      ChanMerge(count, mean, m2, n * static_cast<double>(tail), tail_mean, tail_m2);
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
      return MomentsRowsT(F16(), static_cast<const uint16_t*>(x), rows, channels, stride, mean, m2);
  }
}

HWY_NOINLINE void MomentsRunsImpl(const void* x, DType type, size_t channels, size_t channel_stride,
                                  size_t runs, size_t len, size_t stride, double* mean,
                                  double* m2) {
  auto each_channel = [&](auto tag, const auto* data) {
    for (size_t c = 0; c < channels; ++c) {
      MomentsRunsT(tag, data + c * channel_stride, runs, len, stride, mean + c, m2 + c);
    }
  };
  switch (type) {
    case DType::kFloat32:
      return each_channel(F32(), static_cast<const float*>(x));
    case DType::kBFloat16:
      return each_channel(BF16(), static_cast<const uint16_t*>(x));
    case DType::kFloat16:
      return each_channel(F16(), static_cast<const uint16_t*>(x));
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace bnorm
HWY_AFTER_NAMESPACE();

#endif  // BNORM_DISPATCH_MOMENTS_INL_H_
