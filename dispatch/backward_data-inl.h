// SPDX-License-Identifier: Apache-2.0
// The backward data pass dx = k·(g - a - ((x - hi) - lo)·b) per channel,
// written once for every Highway target. Compiled once per target (toggling
// include guard).
//
// dx may be the same buffer as dy, x or y: every lane's inputs are loaded
// before its output is stored, so no pointer here is HWY_RESTRICT. Stores of
// whole vectors stream past the caches when the caller asks (StoreOut), tails
// go through partial vectors that touch nothing outside the row or run.

#if defined(BNORM_DISPATCH_BACKWARD_DATA_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef BNORM_DISPATCH_BACKWARD_DATA_INL_H_
#undef BNORM_DISPATCH_BACKWARD_DATA_INL_H_
#else
#define BNORM_DISPATCH_BACKWARD_DATA_INL_H_
#endif

#include <stddef.h>
#include <stdint.h>

#include <type_traits>

#include "bnorm/dtype.hpp"
#include "dispatch/convert-inl.h"
#include "dispatch/gradient-inl.h"
#include "dispatch/partial_vectors-inl.h"
#include "dispatch/prefetch-inl.h"
#include "dispatch/shifted_rows-inl.h"
#include "dispatch/streaming-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace bnorm {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// dx of Lanes(d) values at offset i.
template <Activation kMask, class D, class T, class Raw = typename T::Raw, class V = hn::Vec<D>>
HWY_INLINE V DataVector(D d, T t, const Raw* x, const Raw* dy, const Raw* y, size_t i, V hi, V lo,
                        V k, V a, V b) {
  const V g = Gradient<kMask>(d, t, dy, y, i);
  const V dev = Deviation(d, t, x + i, hi, lo);
  return hn::Mul(hn::NegMulAdd(dev, b, hn::Sub(g, a)), k);
}

// Prefetches x, dy (and y) kPrefetchBytes past offset i: with streamed
// output, the inputs come from memory too, and one core reads faster so.
template <Activation kMask, class Raw>
HWY_INLINE void PrefetchInputs(const Raw* x, const Raw* dy, const Raw* y, size_t i) {
  PrefetchAhead(x + i);
  PrefetchAhead(dy + i);
  if (kMask != Activation::kNone) PrefetchAhead(y + i);
}

// dx of Lanes(d) channels starting at channel c of the row at offset r.
template <Activation kMask, class D, class T, class Raw = typename T::Raw>
HWY_INLINE void DataChannels(D d, T t, const Raw* x, const Raw* dy, const Raw* y, Raw* dx, size_t r,
                             size_t c, const float* HWY_RESTRICT hi, const float* HWY_RESTRICT lo,
                             const float* HWY_RESTRICT k, const float* HWY_RESTRICT a,
                             const float* HWY_RESTRICT b, bool stream) {
  const auto v =
      DataVector<kMask>(d, t, x, dy, y, r + c, hn::LoadU(d, hi + c), hn::LoadU(d, lo + c),
                        hn::LoadU(d, k + c), hn::LoadU(d, a + c), hn::LoadU(d, b + c));
  StoreOut(d, t, v, dx + r + c, stream);
}

// Channels-last: `rows` rows of `channels` values, rows `stride` elements
// apart in every tensor. y may be anything when kMask is kNone.
template <Activation kMask, class T, class Raw = typename T::Raw>
HWY_INLINE void DataRowsT(T t, const Raw* x, const Raw* dy, const Raw* y, Raw* dx, size_t rows,
                          size_t channels, size_t stride, const float* HWY_RESTRICT hi,
                          const float* HWY_RESTRICT lo, const float* HWY_RESTRICT k,
                          const float* HWY_RESTRICT a, const float* HWY_RESTRICT b, bool stream) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  if constexpr (std::is_same<T, F32>::value) {
    // A misaligned dx of contiguous rows streams in vectors shifted to its alignment.
    const size_t phase = VectorPhase(dx);
    if (UseShiftedRows(stream, phase, channels, stride)) {
      const float* const params[5] = {hi, lo, k, a, b};
      return ForEachShiftedVector(
          rows, channels, phase, params,
          [&](auto dc, size_t r, size_t c, const float* const* p, bool streamed) {
            if (streamed) PrefetchInputs<kMask>(x, dy, y, r + c);
            DataChannels<kMask>(dc, t, x, dy, y, dx, r, c, p[0], p[1], p[2], p[3], p[4], streamed);
          });
    }
  }
  for (size_t row = 0; row < rows; ++row) {
    const size_t r = row * stride;
    size_t c = 0;
    for (; c + N <= channels; c += N) {
      if (stream) PrefetchInputs<kMask>(x, dy, y, r + c);
      DataChannels<kMask>(d, t, x, dy, y, dx, r, c, hi, lo, k, a, b, stream);
    }
    // Remaining channels in partial vectors, never streamed (a partial store
    // must not become a full-width one).
    ForEachPartialVector(N, &c, channels, [&](auto dc, size_t first) {
      DataChannels<kMask>(dc, t, x, dy, y, dx, r, first, hi, lo, k, a, b, false);
    });
  }
}

// Channels-first: `runs` runs of `len` values of one channel, runs `stride`
// elements apart, with that channel's coefficients.
template <Activation kMask, class T, class Raw = typename T::Raw>
HWY_INLINE void DataRunsT(T t, const Raw* x, const Raw* dy, const Raw* y, Raw* dx, size_t runs,
                          size_t len, size_t stride, float hi, float lo, float k, float a, float b,
                          bool stream) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  const auto vhi = hn::Set(d, hi), vlo = hn::Set(d, lo);
  const auto vk = hn::Set(d, k), va = hn::Set(d, a), vb = hn::Set(d, b);
  // Lanes before and after the whole vectors of a run, in partial vectors.
  const auto partial = [&](auto dc, size_t at) {
    StoreAs(dc, t,
            DataVector<kMask>(dc, t, x, dy, y, at, hn::Set(dc, hi), hn::Set(dc, lo),
                              hn::Set(dc, k), hn::Set(dc, a), hn::Set(dc, b)),
            dx + at);
  };
  for (size_t run = 0; run < runs; ++run) {
    size_t i = run * stride;
    const size_t end = i + len;
    // Runs of 14x14 or 7x7 values start off the vector boundary: reach dx's.
    ForEachAlignmentVector(N, VectorPhase(dx + i), &i, end, partial);
    const size_t whole = i + (end - i) / N * N;
    size_t first = i, last = whole;  // the vectors that stream, if any
    if (stream) StreamedLines(dx, i, whole, &first, &last);
    const auto vector = [&](size_t at, bool streamed) {
      StoreOut(d, t, DataVector<kMask>(d, t, x, dy, y, at, vhi, vlo, vk, va, vb), dx + at, streamed);
    };
    for (; i < first; i += N) vector(i, false);
    // Two vectors per iteration: two independent chains per loop trip.
    for (; i + 2 * N <= last; i += 2 * N) {
      if (stream) PrefetchInputs<kMask>(x, dy, y, i);
      vector(i, stream);
      vector(i + N, stream);
    }
    for (; i < last; i += N) vector(i, stream);
    for (; i < whole; i += N) vector(i, false);
    // The run's tail in partial vectors.
    ForEachPartialVector(N, &i, end, partial);
  }
}

// Channels-first: one row's `channels` runs of `len` values lying back to
// back (len >= Lanes), walked as one span in vectors aligned to dx across the
// channel boundaries, as NormalizeSpanT does: a vector that straddles two
// channels blends their coefficients lane by lane, so each value gets its
// channel's in the same operations as in DataRunsT (the same bits), and with
// `stream` every cache line but the span's ends is written whole by
// non-temporal stores. The span's ends go through one-lane vectors.
template <Activation kMask, class T, class Raw = typename T::Raw>
HWY_INLINE void DataSpanT(T t, const Raw* x, const Raw* dy, const Raw* y, Raw* dx, size_t channels,
                          size_t len, const float* HWY_RESTRICT hi, const float* HWY_RESTRICT lo,
                          const float* HWY_RESTRICT k, const float* HWY_RESTRICT a,
                          const float* HWY_RESTRICT b, bool stream) {
  const hn::ScalableTag<float> d;
  using V = hn::Vec<decltype(d)>;
  const size_t N = hn::Lanes(d);
  const size_t n = channels * len;
  const auto single = [&](size_t i) {
    const hn::CappedTag<float, 1> d1;
    const size_t c = i / len;
    StoreAs(d1, t,
            DataVector<kMask>(d1, t, x, dy, y, i, hn::Set(d1, hi[c]), hn::Set(d1, lo[c]),
                              hn::Set(d1, k[c]), hn::Set(d1, a[c]), hn::Set(d1, b[c])),
            dx + i);
  };
  size_t head, whole, first, last;
  SpanParts(dx, n, stream, &head, &whole, &first, &last);
  size_t i = 0;
  for (; i < head; ++i) single(i);
  // The coefficients of channel c (suffix a) and c + 1 (b), moved along the
  // span (separate variables: SVE vectors cannot be members of a struct).
  const auto load = [&](size_t ch, V* vhi, V* vlo, V* vk, V* va, V* vb) {
    const size_t at = HWY_MIN(ch, channels - 1);  // past the last channel: never selected
    *vhi = hn::Set(d, hi[at]);
    *vlo = hn::Set(d, lo[at]);
    *vk = hn::Set(d, k[at]);
    *va = hn::Set(d, a[at]);
    *vb = hn::Set(d, b[at]);
  };
  size_t c = i / len;
  size_t boundary = (c + 1) * len;  // where channel c ends
  V hia, loa, ka, aa, ba, hib, lob, kb, ab, bb;
  load(c, &hia, &loa, &ka, &aa, &ba);
  load(c + 1, &hib, &lob, &kb, &ab, &bb);
  bool prefetch = true;
  for (; i < whole; i += N) {
    const bool streamed = i >= first && i < last;
    if (prefetch && streamed) PrefetchInputs<kMask>(x, dy, y, i);  // every other vector
    prefetch = !prefetch;
    V v;
    if (i + N <= boundary) {
      v = DataVector<kMask>(d, t, x, dy, y, i, hia, loa, ka, aa, ba);
    } else {  // lanes [0, boundary - i) are channel c's, the rest c + 1's
      const auto mine = hn::FirstN(d, boundary - i);
      v = DataVector<kMask>(d, t, x, dy, y, i, hn::IfThenElse(mine, hia, hib),
                            hn::IfThenElse(mine, loa, lob), hn::IfThenElse(mine, ka, kb),
                            hn::IfThenElse(mine, aa, ab), hn::IfThenElse(mine, ba, bb));
    }
    StoreOut(d, t, v, dx + i, streamed);
    if (i + N >= boundary) {  // the next vector starts in channel c + 1
      ++c;
      boundary += len;
      hia = hib, loa = lob, ka = kb, aa = ab, ba = bb;
      load(c + 1, &hib, &lob, &kb, &ab, &bb);
    }
  }
  for (; i < n; ++i) single(i);
}

}  // namespace HWY_NAMESPACE
}  // namespace bnorm
HWY_AFTER_NAMESPACE();

#endif  // BNORM_DISPATCH_BACKWARD_DATA_INL_H_
