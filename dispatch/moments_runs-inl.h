// SPDX-License-Identifier: Apache-2.0
// Channels-first moments (mean and M2 per channel of runs of contiguous values),
// written once for every Highway target. The whole vectors of each run are
// reduced per lane, each lane a sub-sample with its own float shift (like a
// channels-last column, so pass 2 never waits for a horizontal reduction): a
// channel's first chunk in two passes (sub_blocks-inl.h), later ones in one
// pass about the running mean unless it proves too far off (ShiftHeld); the
// lanes combine once per channel and block.
// Compiled once per target: included by moments.cc through foreach_target.h,
// hence the toggling include guard.

#if defined(BNORM_DISPATCH_MOMENTS_RUNS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef BNORM_DISPATCH_MOMENTS_RUNS_INL_H_
#undef BNORM_DISPATCH_MOMENTS_RUNS_INL_H_
#else
#define BNORM_DISPATCH_MOMENTS_RUNS_INL_H_
#endif

#include <stddef.h>

#include "dispatch/chan_merge.h"
#include "dispatch/convert-inl.h"
#include "dispatch/partial_vectors-inl.h"
#include "dispatch/prefetch-inl.h"
#include "dispatch/run_chunks.h"
#include "dispatch/sub_blocks-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace bnorm {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

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
      if (prefetch && i + N <= next_full) {
        PrefetchLines(next + run * stride + i, N * sizeof(typename T::Raw));
      }
      const V dv = hn::MulSub(LoadAs(d, t, p + i), scale, vm);
      const V sum1 = hn::Add(s1a, dv), sum2 = hn::MulAdd(dv, dv, s2a);
      s1a = s1b, s1b = s1c, s1c = s1d, s1d = sum1;
      s2a = s2b, s2b = s2c, s2c = s2d, s2d = sum2;
    }
  }
  *s1_out = hn::Add(hn::Add(s1a, s1b), hn::Add(s1c, s1d));
  *s2_out = hn::Add(hn::Add(s2a, s2b), hn::Add(s2c, s2d));
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

// Channels-first moments of `channels` channels `channel_stride` apart, each
// `runs` runs of `len` values `stride` apart, into mean[c * out_stride] and
// m2[c * out_stride]. Per channel, the whole vectors of the runs are reduced
// per lane, in chunks of at most kRunChunkVectors vectors (a piece of one long
// run, or several short runs together); each chunk's float lane moments merge
// into per-lane double moments (as a channels-last sub-block does), and the
// lanes combine once at the end, so short runs (e.g. 14x14 feature maps) pay
// no horizontal reduction per chunk. The run tails (len % Lanes values per
// run) are packed and reduced apart (PackedTailMoments, or FewTailMoments
// when they are few), then merged. Up to kInterleavedChannels channels are
// walked together in memory order (ForEachInterleavedChunk), their per-lane
// state in L1: the same bits as one channel at a time. `from_memory`: x
// exceeds the caches, so chunks are prefetched ahead of the walk.
template <class T>
HWY_INLINE void MomentsRunsT(T t, const typename T::Raw* HWY_RESTRICT x, size_t channels,
                             size_t channel_stride, size_t runs, size_t len, size_t stride,
                             size_t out_stride, bool from_memory, double* HWY_RESTRICT mean,
                             double* HWY_RESTRICT m2) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  const size_t full = len - len % N;
  constexpr size_t kMaxLanes = hn::MaxLanes(d);
  const dispatch::RunChunks plan(runs, full, stride, kRunChunkVectors, N);
  // Per channel: the shift of its next chunk, its per-lane moments and the
  // values per lane merged so far.
  HWY_ALIGN float pending[dispatch::kInterleavedChannels * kMaxLanes];
  HWY_ALIGN double lane_mean[dispatch::kInterleavedChannels * kMaxLanes];
  HWY_ALIGN double lane_m2[dispatch::kInterleavedChannels * kMaxLanes];
  double per_lane[dispatch::kInterleavedChannels];
  for (size_t c0 = 0; c0 < channels; c0 += dispatch::kInterleavedChannels) {
    const size_t width = HWY_MIN(dispatch::kInterleavedChannels, channels - c0);
    const typename T::Raw* HWY_RESTRICT xc = x + c0 * channel_stride;
    for (size_t i = 0; i < width * N; ++i) lane_mean[i] = lane_m2[i] = 0.0;
    for (size_t j = 0; j < width; ++j) per_lane[j] = 0.0;
    // Chunk 0 is reduced in two passes about its own lane means. Every later
    // chunk takes one pass about the running lane means as they stood a chunk
    // earlier (so the shift is ready while the previous merge still runs),
    // which stationary data keeps within a fraction of a standard deviation
    // of the chunk's means; a chunk whose offset from that shift is not small
    // against its spread (ShiftHeld) is redone in two passes from L1, so the
    // float sums never hold more than a chunk's own spread. The choice
    // depends on the data only: results stay independent of who walks the
    // chunks.
    // In cache, two chunks ahead where several channels' short runs
    // interleave (which the hardware prefetchers do not follow: 64x256x14x14,
    // 12.8 MB, one thread, 0.75x the time without), none for one channel
    // (8x32x112x112, 12.8 MB: two ahead took 1.12x the time).
    const size_t ahead_steps = from_memory ? dispatch::kChunksAhead : width > 1 ? 2 : 0;
    ForEachInterleavedChunk(plan, width, ahead_steps, [&](size_t j, size_t k,
                                                          const dispatch::RunChunk& c, size_t aj,
                                                          const dispatch::RunChunk& a) {
      const typename T::Raw* HWY_RESTRICT chunk = xc + j * channel_stride + c.offset;
      const size_t values = c.vectors * N;
      const SubBlockMerge w(per_lane[j], c.runs * c.vectors);
      float* HWY_RESTRICT shift = pending + j * N;
      double* HWY_RESTRICT lm = lane_mean + j * N;
      double* HWY_RESTRICT lm2 = lane_m2 + j * N;
      hn::Vec<decltype(d)> m;
      if (k == 0) {
        // Chunk 1 takes chunk 0's own means too.
        m = LaneShifts(d, t, chunk, c.runs, values, stride,
                       1.0f / static_cast<float>(c.runs * c.vectors));
        hn::Store(m, d, shift);
      } else {
        m = hn::Load(d, shift);
        for (size_t i = 0; i < N; ++i) shift[i] = static_cast<float>(lm[i]);
      }
      const typename T::Raw* ahead = aj < width ? xc + aj * channel_stride + a.offset : nullptr;
      hn::Vec<decltype(d)> s1, s2;
      LaneDeviations(d, t, chunk, c.runs, values, stride, m, &s1, &s2, ahead, a.runs,
                     a.vectors * N);
      if (k > 0 && !ShiftHeld(d, s1, s2, w.rows)) {
        m = LaneShifts(d, t, chunk, c.runs, values, stride, w.inv_k_f);
        LaneDeviations(d, t, chunk, c.runs, values, stride, m, &s1, &s2);
      }
      MergeSubBlockLanes(d, m, s1, s2, w, lm, lm2);
      per_lane[j] += w.rows;
    });
    for (size_t j = 0; j < width; ++j) {
      const typename T::Raw* HWY_RESTRICT xj = xc + j * channel_stride;
      double* HWY_RESTRICT out_mean = mean + (c0 + j) * out_stride;
      double* HWY_RESTRICT out_m2 = m2 + (c0 + j) * out_stride;
      double count = 0.0;
      if (full > 0) {
        CombineLanes(d, lane_mean + j * N, lane_m2 + j * N, per_lane[j], out_mean, out_m2);
        count = per_lane[j] * static_cast<double>(N);
      }
      if (full < len) {
        const size_t tail = len - full;
        double tail_mean, tail_m2;
        if (runs * tail <= kFewTailValues) {
          FewTailMoments(t, xj + full, runs, tail, stride, &tail_mean, &tail_m2);
        } else {
          PackedTailMoments(d, t, xj + full, runs, tail, stride, &tail_mean, &tail_m2);
        }
        const double n = static_cast<double>(runs);
        if (count == 0.0) {
          *out_mean = tail_mean;
          *out_m2 = tail_m2;
        } else {
          ChanMerge(count, out_mean, out_m2, n * static_cast<double>(tail), tail_mean, tail_m2);
        }
      }
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace bnorm
HWY_AFTER_NAMESPACE();

#endif  // BNORM_DISPATCH_MOMENTS_RUNS_INL_H_
