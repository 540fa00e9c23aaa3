// SPDX-License-Identifier: Apache-2.0
// The backward reduction S1 = Σg, S2 = Σg·((x - hi) - lo) per channel,
// written once for every Highway target. Compiled once per target (toggling
// include guard).
//
// Exactness: the deviation is formed per value around the saved mean (never
// Σg·x - μΣg, which loses every digit when |mean| >> std), and the sums use
// the bounds of the moments kernels: every float accumulator collects at most
// 16 terms before it is added into double, in a fixed order, so the error
// stays near float epsilon of Σ|g| and Σ|g·(x - μ)| at any size. One pass
// suffices: the mean is known, so nothing needs a second read from L1.

#if defined(BNORM_DISPATCH_BACKWARD_REDUCE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef BNORM_DISPATCH_BACKWARD_REDUCE_INL_H_
#undef BNORM_DISPATCH_BACKWARD_REDUCE_INL_H_
#else
#define BNORM_DISPATCH_BACKWARD_REDUCE_INL_H_
#endif

#include <stddef.h>

#include "bnorm/dtype.hpp"
#include "dispatch/gradient-inl.h"
#include "dispatch/convert-inl.h"
#include "dispatch/partial_vectors-inl.h"
#include "dispatch/prefetch-inl.h"
#include "dispatch/run_chunks.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace bnorm {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Rows per channels-last sub-block: even and odd rows sum apart, so each float
// accumulator holds 16 terms (the moments kernel's kSubRows and bound).
constexpr size_t kReduceSubRows = 32;
// Vectors per channels-first chunk: 16 for each of four accumulators.
constexpr size_t kReduceChunkVectors = 64;
// Vectors per channels-last column group: 4 (16 accumulators) where the
// target has 32 vector registers, 2 on x86's 16, where 4 would spill.
#if HWY_ARCH_X86 && HWY_TARGET > HWY_AVX3
constexpr size_t kReduceGroupVectors = 2;
#else
constexpr size_t kReduceGroupVectors = 4;
#endif

// Adds the Lanes(d) values at offset i to s1 (g) and s2 (g times the deviation).
template <Activation kMask, class D, class T, class Raw = typename T::Raw, class V = hn::Vec<D>>
HWY_INLINE void AddSums(D d, T t, const Raw* x, const Raw* dy, const Raw* y, size_t i, V hi, V lo,
                        V& s1, V& s2) {
  const V g = Gradient<kMask>(d, t, dy, y, i);
  s1 = hn::Add(s1, g);
  s2 = hn::MulAdd(g, Deviation(d, t, x + i, hi, lo), s2);
}

// Channels-last: the sums of G * Lanes(d) adjacent channels (G = 1, 2 or 4
// vectors) over k <= kReduceSubRows rows `stride` apart, added into s1[0..)
// and s2[0..) (assigned when `assign`). Even and odd rows go to separate
// accumulators: 4G independent chains, 16 terms each. With `ahead` (the next
// sub-block is whole and in this call), each row's lines there are prefetched:
// the column-group order visits each row's lines one group at a time, which
// the hardware prefetchers follow poorly across rows.
template <size_t G, Activation kMask, class D, class T, class Raw = typename T::Raw>
HWY_INLINE void ColumnGroupSums(D d, T t, const Raw* x, const Raw* dy, const Raw* y, size_t k,
                                size_t stride, const float* HWY_RESTRICT hi,
                                const float* HWY_RESTRICT lo, bool assign, bool ahead,
                                double* HWY_RESTRICT s1, double* HWY_RESTRICT s2) {
  static_assert(G == 1 || G == 2 || G == 4, "column groups of 1, 2 or 4 vectors");
  using V = hn::Vec<D>;
  const size_t N = hn::Lanes(d);
  const V hi_0 = hn::LoadU(d, hi), lo_0 = hn::LoadU(d, lo);
  const V hi_1 = G >= 2 ? hn::LoadU(d, hi + N) : hi_0, lo_1 = G >= 2 ? hn::LoadU(d, lo + N) : lo_0;
  const V hi_2 = G == 4 ? hn::LoadU(d, hi + 2 * N) : hi_0;
  const V lo_2 = G == 4 ? hn::LoadU(d, lo + 2 * N) : lo_0;
  const V hi_3 = G == 4 ? hn::LoadU(d, hi + 3 * N) : hi_0;
  const V lo_3 = G == 4 ? hn::LoadU(d, lo + 3 * N) : lo_0;
  V e1_0 = hn::Zero(d), e1_1 = hn::Zero(d), e1_2 = hn::Zero(d), e1_3 = hn::Zero(d);
  V e2_0 = hn::Zero(d), e2_1 = hn::Zero(d), e2_2 = hn::Zero(d), e2_3 = hn::Zero(d);
  V o1_0 = hn::Zero(d), o1_1 = hn::Zero(d), o1_2 = hn::Zero(d), o1_3 = hn::Zero(d);
  V o2_0 = hn::Zero(d), o2_1 = hn::Zero(d), o2_2 = hn::Zero(d), o2_3 = hn::Zero(d);
  const size_t group_bytes = G * N * sizeof(Raw);
  const size_t next = kReduceSubRows * stride;
  const auto add_row = [&](size_t r, V& s1_0, V& s1_1, V& s1_2, V& s1_3, V& s2_0, V& s2_1, V& s2_2,
                           V& s2_3) {
    const size_t i = r * stride;
    if (ahead) {
      PrefetchLines(x + next + i, group_bytes);
      PrefetchLines(dy + next + i, group_bytes);
      if (kMask != Activation::kNone) PrefetchLines(y + next + i, group_bytes);
    }
    AddSums<kMask>(d, t, x, dy, y, i, hi_0, lo_0, s1_0, s2_0);
    if constexpr (G >= 2) AddSums<kMask>(d, t, x, dy, y, i + N, hi_1, lo_1, s1_1, s2_1);
    if constexpr (G == 4) {
      AddSums<kMask>(d, t, x, dy, y, i + 2 * N, hi_2, lo_2, s1_2, s2_2);
      AddSums<kMask>(d, t, x, dy, y, i + 3 * N, hi_3, lo_3, s1_3, s2_3);
    }
  };
  for (size_t r = 0; r < k; r += 2) {
    add_row(r, e1_0, e1_1, e1_2, e1_3, e2_0, e2_1, e2_2, e2_3);
    if (r + 1 == k) break;
    add_row(r + 1, o1_0, o1_1, o1_2, o1_3, o2_0, o2_1, o2_2, o2_3);
  }
  AddLanes(d, hn::Add(e1_0, o1_0), assign, s1);
  AddLanes(d, hn::Add(e2_0, o2_0), assign, s2);
  if constexpr (G >= 2) {
    AddLanes(d, hn::Add(e1_1, o1_1), assign, s1 + N);
    AddLanes(d, hn::Add(e2_1, o2_1), assign, s2 + N);
  }
  if constexpr (G == 4) {
    AddLanes(d, hn::Add(e1_2, o1_2), assign, s1 + 2 * N);
    AddLanes(d, hn::Add(e2_2, o2_2), assign, s2 + 2 * N);
    AddLanes(d, hn::Add(e1_3, o1_3), assign, s1 + 3 * N);
    AddLanes(d, hn::Add(e2_3, o2_3), assign, s2 + 3 * N);
  }
}

// Channels-last sums of `rows` >= 1 rows of `channels` values: per sub-block
// of kReduceSubRows rows, the whole vectors of channels in column groups, then
// the channels left over in partial vectors (no masked loads, which could
// fault on SSE4 or read past the row). Sub-blocks add into s1, s2 in row
// order. y may be anything when kMask is kNone (it is never read).
template <Activation kMask, class T, class Raw = typename T::Raw>
HWY_INLINE void ReduceRowsT(T t, const Raw* x, const Raw* dy, const Raw* y, size_t rows,
                            size_t channels, size_t stride, const float* HWY_RESTRICT hi,
                            const float* HWY_RESTRICT lo, bool from_memory, double* HWY_RESTRICT s1,
                            double* HWY_RESTRICT s2) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  const size_t vector_channels = channels - channels % N;
  for (size_t r0 = 0; r0 < rows; r0 += kReduceSubRows) {
    const size_t k = HWY_MIN(kReduceSubRows, rows - r0);
    const size_t o = r0 * stride;
    const bool assign = r0 == 0;
    const bool ahead = from_memory && r0 + 2 * kReduceSubRows <= rows;
    size_t c = 0;
    for (; c + kReduceGroupVectors * N <= vector_channels; c += kReduceGroupVectors * N) {
      ColumnGroupSums<kReduceGroupVectors, kMask>(d, t, x + o + c, dy + o + c, y + o + c, k, stride,
                                                  hi + c, lo + c, assign, ahead, s1 + c, s2 + c);
    }
    // Two chains rather than one after the other (C = 32 on AVX-512).
    for (; c + 2 * N <= vector_channels; c += 2 * N) {
      ColumnGroupSums<2, kMask>(d, t, x + o + c, dy + o + c, y + o + c, k, stride, hi + c, lo + c,
                                assign, ahead, s1 + c, s2 + c);
    }
    for (; c < vector_channels; c += N) {
      ColumnGroupSums<1, kMask>(d, t, x + o + c, dy + o + c, y + o + c, k, stride, hi + c, lo + c,
                                assign, ahead, s1 + c, s2 + c);
    }
    ForEachPartialVector(N, &c, channels, [&](auto dc, size_t first) {
      ColumnGroupSums<1, kMask>(dc, t, x + o + first, dy + o + first, y + o + first, k, stride,
                                hi + first, lo + first, assign, false, s1 + first, s2 + first);
    });
  }
}

// A chunk to prefetch while another is summed: `delta` elements past the
// summed chunk's start, `runs` runs of `full` values at the same stride.
struct ChunkAhead {
  ptrdiff_t delta = 0;
  size_t runs = 0;
  size_t full = 0;
};

// Channels-first, per lane: the sums of the whole vectors of `runs` runs of
// `full` values (`stride` apart) into *s1 and *s2. Four accumulators hide the
// FMA latency, each collecting at most a quarter of a chunk (16 vectors). With
// `ahead` (tensors from memory), the lines of that chunk at the same places
// are prefetched: two chunks ahead is 8 KiB of a long run, or the same
// vectors several short runs (14x14 maps) on, where a fixed distance within
// the run would land in another channel.
template <Activation kMask, class D, class T, class Raw = typename T::Raw, class V = hn::Vec<D>>
HWY_INLINE void RunChunkSums(D d, T t, const Raw* x, const Raw* dy, const Raw* y, size_t runs,
                             size_t full, size_t stride, V hi, V lo, const ChunkAhead* ahead,
                             V* s1_out, V* s2_out) {
  const size_t N = hn::Lanes(d);
  const size_t step_bytes = 4 * N * sizeof(Raw);
  V s1a = hn::Zero(d), s1b = hn::Zero(d), s1c = hn::Zero(d), s1d = hn::Zero(d);
  V s2a = hn::Zero(d), s2b = hn::Zero(d), s2c = hn::Zero(d), s2d = hn::Zero(d);
  for (size_t run = 0; run < runs; ++run) {
    size_t i = run * stride;
    const size_t end = i + full;
    const bool prefetch = ahead != nullptr && run < ahead->runs;
    for (; i + 4 * N <= end; i += 4 * N) {
      if (prefetch && i - run * stride + 4 * N <= ahead->full) {
        PrefetchLines(x + i + ahead->delta, step_bytes);
        PrefetchLines(dy + i + ahead->delta, step_bytes);
        if (kMask != Activation::kNone) PrefetchLines(y + i + ahead->delta, step_bytes);
      }
      AddSums<kMask>(d, t, x, dy, y, i, hi, lo, s1a, s2a);
      AddSums<kMask>(d, t, x, dy, y, i + N, hi, lo, s1b, s2b);
      AddSums<kMask>(d, t, x, dy, y, i + 2 * N, hi, lo, s1c, s2c);
      AddSums<kMask>(d, t, x, dy, y, i + 3 * N, hi, lo, s1d, s2d);
    }
    // A run's last vectors go round robin, continuing across runs (short runs
    // of one vector each must not all land in one accumulator).
    for (; i < end; i += N) {
      if (prefetch && i - run * stride + N <= ahead->full) {
        PrefetchLines(x + i + ahead->delta, N * sizeof(Raw));
        PrefetchLines(dy + i + ahead->delta, N * sizeof(Raw));
        if (kMask != Activation::kNone) PrefetchLines(y + i + ahead->delta, N * sizeof(Raw));
      }
      V sum1 = s1a, sum2 = s2a;
      AddSums<kMask>(d, t, x, dy, y, i, hi, lo, sum1, sum2);
      s1a = s1b, s1b = s1c, s1c = s1d, s1d = sum1;
      s2a = s2b, s2b = s2c, s2c = s2d, s2d = sum2;
    }
  }
  *s1_out = hn::Add(hn::Add(s1a, s1b), hn::Add(s1c, s1d));
  *s2_out = hn::Add(hn::Add(s2a, s2b), hn::Add(s2c, s2d));
}

// Run tails of at most this many values in all are summed lane by lane in
// double: below it, packing them costs more than it saves (moments' bound).
constexpr size_t kFewTailSums = 16;

// Adds the sums of `runs` runs of `tail` values (`stride` apart) to *s1, *s2,
// one value at a time in double.
template <Activation kMask, class T, class Raw = typename T::Raw>
HWY_INLINE void FewTailSums(T t, const Raw* x, const Raw* dy, const Raw* y, size_t runs,
                            size_t tail, size_t stride, float hi, float lo, double* s1,
                            double* s2) {
  const hn::CappedTag<float, 1> d1;
  const auto vhi = hn::Set(d1, hi), vlo = hn::Set(d1, lo);
  for (size_t run = 0; run < runs; ++run) {
    for (size_t i = run * stride; i < run * stride + tail; ++i) {
      const double g = hn::GetLane(Gradient<kMask>(d1, t, dy, y, i));
      *s1 += g;
      *s2 += g * hn::GetLane(Deviation(d1, t, x + i, vhi, vlo));
    }
  }
}

// The run tails (`tail` < Lanes(d) values at the end of each of `runs` runs):
// g and the deviation are packed run after run into two float buffers, which
// are then summed in whole vectors per lane like the runs themselves (one
// narrow vector per run would make short dependency chains: moments measured
// a quarter of the time on 2 % of the values of 14x14 maps). The lane sums go
// into lane_s1, lane_s2; the few packed values after the last whole vector
// into *s1, *s2.
template <Activation kMask, class D, class T, class Raw = typename T::Raw>
HWY_INLINE void PackedTailSums(D d, T t, const Raw* x, const Raw* dy, const Raw* y, size_t runs,
                               size_t tail, size_t stride, float hi, float lo,
                               double* HWY_RESTRICT lane_s1, double* HWY_RESTRICT lane_s2,
                               double* s1, double* s2) {
  const size_t N = hn::Lanes(d);
  constexpr size_t kMaxLanes = hn::MaxLanes(d);
  HWY_ALIGN float packed_g[kReduceChunkVectors * kMaxLanes];
  HWY_ALIGN float packed_dev[kReduceChunkVectors * kMaxLanes];
  // Runs per buffer: a multiple of N, so only the last buffer can end in a
  // partial vector.
  const size_t runs_per_buffer = kReduceChunkVectors * N / tail / N * N;
  for (size_t r0 = 0; r0 < runs; r0 += runs_per_buffer) {
    const size_t q = HWY_MIN(runs_per_buffer, runs - r0);
    for (size_t run = 0; run < q; ++run) {
      const size_t src = (r0 + run) * stride;
      float* HWY_RESTRICT g_out = packed_g + run * tail;
      float* HWY_RESTRICT dev_out = packed_dev + run * tail;
      size_t c = 0;
      ForEachPartialVector(N, &c, tail, [&](auto dc, size_t first) {
        hn::StoreU(Gradient<kMask>(dc, t, dy, y, src + first), dc, g_out + first);
        hn::StoreU(Deviation(dc, t, x + src + first, hn::Set(dc, hi), hn::Set(dc, lo)), dc,
                   dev_out + first);
      });
    }
    const size_t values = q * tail;
    const size_t whole = values - values % N;
    if (whole > 0) {
      // The packed deviations stand in for x around a zero mean (exact).
      hn::Vec<D> v1, v2;
      RunChunkSums<Activation::kNone>(d, F32(), packed_dev, packed_g, packed_g, 1, whole, 0,
                                      hn::Zero(d), hn::Zero(d), nullptr, &v1, &v2);
      AddLanes(d, v1, false, lane_s1);
      AddLanes(d, v2, false, lane_s2);
    }
    for (size_t i = whole; i < values; ++i) {
      *s1 += packed_g[i];
      *s2 += static_cast<double>(packed_g[i]) * packed_dev[i];
    }
  }
}

// Channels-first sums of `channels` channels `channel_stride` apart, each
// `runs` runs of `len` values `stride` apart, written to s1[c * out_stride]
// and s2[c * out_stride]. Per channel the whole vectors are summed per lane
// in chunks of at most kReduceChunkVectors vectors (a piece of one long run,
// or several short runs together), each chunk's float lane sums added into
// double lane sums, and the lanes added up once at the end, so short runs
// (14x14 maps) pay no horizontal reduction per chunk. The run tails follow
// (packed, or value by value when few). Up to kInterleavedChannels channels
// are walked together in memory order (ForEachInterleavedChunk), their lane
// sums in L1: the same bits as one channel at a time.
template <Activation kMask, class T, class Raw = typename T::Raw>
HWY_INLINE void ReduceRunsT(T t, const Raw* x, const Raw* dy, const Raw* y, size_t channels,
                            size_t channel_stride, size_t runs, size_t len, size_t stride,
                            const float* HWY_RESTRICT hi, const float* HWY_RESTRICT lo,
                            bool from_memory, size_t out_stride, double* HWY_RESTRICT s1,
                            double* HWY_RESTRICT s2) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  const size_t full = len - len % N;
  constexpr size_t kMaxLanes = hn::MaxLanes(d);
  const dispatch::RunChunks chunks(runs, full, stride, kReduceChunkVectors, N);
  HWY_ALIGN double lane_s1[dispatch::kInterleavedChannels * kMaxLanes];
  HWY_ALIGN double lane_s2[dispatch::kInterleavedChannels * kMaxLanes];
  for (size_t c0 = 0; c0 < channels; c0 += dispatch::kInterleavedChannels) {
    const size_t width = HWY_MIN(dispatch::kInterleavedChannels, channels - c0);
    for (size_t i = 0; i < width * N; ++i) lane_s1[i] = lane_s2[i] = 0.0;
    const size_t ahead_steps = from_memory ? dispatch::kChunksAhead : 0;
    ForEachInterleavedChunk(chunks, width, ahead_steps, [&](size_t j, size_t,
                                                            const dispatch::RunChunk& c, size_t aj,
                                                            const dispatch::RunChunk& a) {
      const size_t ch = c0 + j;
      ChunkAhead ahead;
      if (aj < width) {
        ahead = ChunkAhead{static_cast<ptrdiff_t>(aj * channel_stride + a.offset) -
                               static_cast<ptrdiff_t>(j * channel_stride + c.offset),
                           a.runs, a.vectors * N};
      }
      const size_t o = ch * channel_stride + c.offset;
      hn::Vec<decltype(d)> v1, v2;
      RunChunkSums<kMask>(d, t, x + o, dy + o, y + o, c.runs, c.vectors * N, stride,
                          hn::Set(d, hi[ch]), hn::Set(d, lo[ch]),
                          ahead.runs > 0 ? &ahead : nullptr, &v1, &v2);
      AddLanes(d, v1, false, lane_s1 + j * N);
      AddLanes(d, v2, false, lane_s2 + j * N);
    });
    for (size_t j = 0; j < width; ++j) {
      const size_t ch = c0 + j;
      const size_t o = ch * channel_stride;
      double* HWY_RESTRICT l1 = lane_s1 + j * N;
      double* HWY_RESTRICT l2 = lane_s2 + j * N;
      double rest1 = 0.0, rest2 = 0.0;
      if (full < len) {
        const size_t tail = len - full;
        if (runs * tail <= kFewTailSums) {
          FewTailSums<kMask>(t, x + o + full, dy + o + full, y + o + full, runs, tail, stride,
                             hi[ch], lo[ch], &rest1, &rest2);
        } else {
          PackedTailSums<kMask>(d, t, x + o + full, dy + o + full, y + o + full, runs, tail,
                                stride, hi[ch], lo[ch], l1, l2, &rest1, &rest2);
        }
      }
      double sum1 = 0.0, sum2 = 0.0;
      for (size_t lane = 0; lane < N; ++lane) {
        sum1 += l1[lane];
        sum2 += l2[lane];
      }
      s1[ch * out_stride] = sum1 + rest1;
      s2[ch * out_stride] = sum2 + rest2;
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace bnorm
HWY_AFTER_NAMESPACE();

#endif  // BNORM_DISPATCH_BACKWARD_REDUCE_INL_H_
