// SPDX-License-Identifier: Apache-2.0
// Channels-last moments (mean and M2, the sum of squared deviations, per
// channel of rows of contiguous channels), written once for every Highway
// target: vectorized across channels, reduced across rows in sub-blocks of
// kSubRows rows, the first in two passes (sub_blocks-inl.h), later ones in one
// pass about the running means unless those prove too far off (ShiftHeld).
// Compiled once per target: included by moments.cc through foreach_target.h,
// hence the toggling include guard.

#if defined(BNORM_DISPATCH_MOMENTS_ROWS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef BNORM_DISPATCH_MOMENTS_ROWS_INL_H_
#undef BNORM_DISPATCH_MOMENTS_ROWS_INL_H_
#else
#define BNORM_DISPATCH_MOMENTS_ROWS_INL_H_
#endif

#include <stddef.h>

#include "dispatch/convert-inl.h"
#include "dispatch/partial_vectors-inl.h"
#include "dispatch/prefetch-inl.h"
#include "dispatch/sub_blocks-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace bnorm {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

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
// would otherwise leave memory idle. With `check_shift`, shifts that are not
// close to the sub-block's means (ShiftHeld) merge nothing and return false.
template <size_t G, class D, class T>
HWY_INLINE bool ColumnGroupDeviations(D d, T t, const typename T::Raw* HWY_RESTRICT x, size_t k,
                                      size_t stride, const float* HWY_RESTRICT shift,
                                      const SubBlockMerge& w, double* HWY_RESTRICT mean,
                                      double* HWY_RESTRICT m2,
                                      const typename T::Raw* next = nullptr,
                                      bool check_shift = false) {
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
  const V s1_0 = hn::Add(e1_0, o1_0), s2_0 = hn::Add(e2_0, o2_0);
  const V s1_1 = hn::Add(e1_1, o1_1), s2_1 = hn::Add(e2_1, o2_1);
  const V s1_2 = hn::Add(e1_2, o1_2), s2_2 = hn::Add(e2_2, o2_2);
  const V s1_3 = hn::Add(e1_3, o1_3), s2_3 = hn::Add(e2_3, o2_3);
  if (check_shift) {
    bool held = ShiftHeld(d, s1_0, s2_0, w.rows);
    if constexpr (G >= 2) held = held && ShiftHeld(d, s1_1, s2_1, w.rows);
    if constexpr (G == 4) {
      held = held && ShiftHeld(d, s1_2, s2_2, w.rows) && ShiftHeld(d, s1_3, s2_3, w.rows);
    }
    if (!held) return false;
  }
  MergeSubBlockLanes(d, m_0, s1_0, s2_0, w, mean, m2);
  if constexpr (G >= 2) MergeSubBlockLanes(d, m_1, s1_1, s2_1, w, mean + N, m2 + N);
  if constexpr (G == 4) {
    MergeSubBlockLanes(d, m_2, s1_2, s2_2, w, mean + 2 * N, m2 + 2 * N);
    MergeSubBlockLanes(d, m_3, s1_3, s2_3, w, mean + 3 * N, m2 + 3 * N);
  }
  return true;
}

// One column group of G vectors of a sub-block: with `running` (a later
// sub-block), one pass about the running means the shifts hold, redone in two
// passes from L1 if they are off (ShiftHeld); otherwise two passes.
template <size_t G, class D, class T>
HWY_INLINE void ColumnGroupMoments(D d, T t, const typename T::Raw* HWY_RESTRICT x, size_t k,
                                   size_t stride, float* HWY_RESTRICT shift,
                                   const SubBlockMerge& w, double* HWY_RESTRICT mean,
                                   double* HWY_RESTRICT m2, const typename T::Raw* next,
                                   bool running) {
  if (ColumnGroupDeviations<G>(d, t, x, k, stride, shift, w, mean, m2, next, running)) return;
  ChunkShifts(d, t, x, k, stride, G * hn::Lanes(d), w.inv_k_f, shift);
  ColumnGroupDeviations<G>(d, t, x, k, stride, shift, w, mean, m2);
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
// read past the row). In the first sub-block pass 1 covers the whole chunk
// before any of pass 2, so the chunk's loads from memory go out back to back
// (103 MB, one thread: 11.7 -> 8.6 ms against both passes per column group),
// and pass 2 then finds the chunk in L1.
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
    // The first sub-block takes two passes; later ones shift by the running
    // means, which stationary rows keep near each sub-block's own.
    const bool running = r0 > 0;
    for (size_t c0 = 0; c0 < vector_channels; c0 += kShiftChunk) {
      const size_t width = HWY_MIN(kShiftChunk, vector_channels - c0);
      if (running) {
        for (size_t j = 0; j < width; ++j) shift[j] = static_cast<float>(mean[c0 + j]);
      } else {
        ChunkShifts(d, t, block + c0, k, stride, width, w.inv_k_f, shift);
      }
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
        ColumnGroupMoments<kGroupVectors>(d, t, block + c, k, stride, shift + j, w, mean + c,
                                          m2 + c, next_group(j, kGroupVectors), running);
      }
      if (j + 2 * N <= width) {  // C = 32 on AVX-512: two chains, not one after another
        const size_t c = c0 + j;
        ColumnGroupMoments<2>(d, t, block + c, k, stride, shift + j, w, mean + c, m2 + c,
                              next_group(j, 2), running);
        j += 2 * N;
      }
      if (j < width) {
        const size_t c = c0 + j;
        ColumnGroupMoments<1>(d, t, block + c, k, stride, shift + j, w, mean + c, m2 + c,
                              next_group(j, 1), running);
      }
    }
    size_t c = vector_channels;
    ForEachPartialVector(N, &c, channels, [&](auto dc, size_t first) {
      ChunkShifts(dc, t, block + first, k, stride, hn::Lanes(dc), w.inv_k_f, shift);
      ColumnGroupDeviations<1>(dc, t, block + first, k, stride, shift, w, mean + first, m2 + first);
    });
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace bnorm
HWY_AFTER_NAMESPACE();

#endif  // BNORM_DISPATCH_MOMENTS_ROWS_INL_H_
