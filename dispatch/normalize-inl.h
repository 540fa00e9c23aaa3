// SPDX-License-Identifier: Apache-2.0
// The normalize pass y = act(((x - hi) - lo) * scale + shift [+ z]), channels-
// last rows and channels-first runs, written once for every Highway target.
// z, when given, is a residual tensor of x's layout and type added before the
// activation (a block's "add + ReLU" in one pass instead of two).
// Compiled once per target: included by normalize.cc through foreach_target.h,
// hence the toggling include guard.
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
#include <stdint.h>

#include <type_traits>

#include "bnorm/dtype.hpp"
#include "dispatch/convert-inl.h"
#include "dispatch/partial_vectors-inl.h"
#include "dispatch/prefetch-inl.h"
#include "dispatch/shifted_rows-inl.h"
#include "dispatch/streaming-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace bnorm {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Compile-time activation, so the common no-activation loop has no extra ops.
template <Activation kAct, class D, class V = hn::Vec<D>>
HWY_INLINE V Activate(D d, V v) {
  if (kAct == Activation::kNone) return v;
  // Compare-and-select rather than Max/Min: x86 max/min return the second
  // operand for NaN, and NaN must stay NaN.
  v = hn::IfThenZeroElse(hn::Lt(v, hn::Zero(d)), v);
  if (kAct == Activation::kRelu6) {
    const V six = hn::Set(d, 6.0f);
    v = hn::IfThenElse(hn::Gt(v, six), six, v);
  }
  return v;
}

// What follows the affine part: the residual z (when kHasZ; z then points at
// the value matching v, else it is never read), then the activation.
template <Activation kAct, bool kHasZ, class D, class T, class V = hn::Vec<D>>
HWY_INLINE V Finish(D d, T t, V v, const typename T::Raw* z) {
  if constexpr (kHasZ) v = hn::Add(v, LoadAs(d, t, z));
  return Activate<kAct>(d, v);
}

template <class V>
HWY_INLINE V Affine(V x, V hi, V lo, V scale, V shift) {
  return hn::MulAdd(hn::Sub(hn::Sub(x, hi), lo), scale, shift);
}

// Without a low mean part (inference: the moving mean is a float already).
template <class V>
HWY_INLINE V Affine(V x, V hi, V scale, V shift) {
  return hn::MulAdd(hn::Sub(x, hi), scale, shift);
}

// Normalizes Lanes(d) channels starting at channel c of one row.
template <Activation kAct, bool kHasLo, bool kHasZ, class D, class T>
HWY_INLINE void NormalizeChannels(D d, T t, const typename T::Raw* xr, const typename T::Raw* zr,
                                  typename T::Raw* yr, size_t c, const float* HWY_RESTRICT hi,
                                  const float* HWY_RESTRICT lo, const float* HWY_RESTRICT scale,
                                  const float* HWY_RESTRICT shift, bool stream) {
  const auto v = LoadAs(d, t, xr + c);
  const auto vhi = hn::LoadU(d, hi + c);
  const auto vscale = hn::LoadU(d, scale + c);
  const auto vshift = hn::LoadU(d, shift + c);
  const auto affine = kHasLo ? Affine(v, vhi, hn::LoadU(d, lo + c), vscale, vshift)
                             : Affine(v, vhi, vscale, vshift);
  StoreOut(d, t, Finish<kAct, kHasZ>(d, t, affine, zr + c), yr + c, stream);
}

// Channels-last: `rows` rows of `channels` values, rows `stride` elements apart
// in x, z and y. x == y and z == y are allowed; any alignment.
template <Activation kAct, bool kHasLo, bool kHasZ, class T>
HWY_INLINE void NormalizeRowsT(T t, const typename T::Raw* x, const typename T::Raw* z,
                               typename T::Raw* y, size_t rows, size_t channels, size_t stride,
                               const float* HWY_RESTRICT hi, const float* HWY_RESTRICT lo,
                               const float* HWY_RESTRICT scale, const float* HWY_RESTRICT shift,
                               bool stream) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  if constexpr (std::is_same<T, F32>::value) {
    // A misaligned y of contiguous rows streams in vectors shifted to its alignment.
    const size_t phase = VectorPhase(y);
    if (UseShiftedRows(stream, phase, channels, stride)) {
      const float* const params[4] = {hi, lo, scale, shift};
      return ForEachShiftedVector(
          rows, channels, phase, params,
          [&](auto dc, size_t row, size_t c, const float* const* p, bool streamed) {
            if (streamed) {
              PrefetchAhead(x + row + c);
              if constexpr (kHasZ) PrefetchAhead(z + row + c);
            }
            NormalizeChannels<kAct, kHasLo, kHasZ>(dc, t, x + row, z + row, y + row, c, p[0], p[1],
                                                   p[2], p[3], streamed);
          });
    }
  }
  for (size_t r = 0; r < rows; ++r) {
    const typename T::Raw* xr = x + r * stride;
    const typename T::Raw* zr = z + r * stride;
    typename T::Raw* yr = y + r * stride;
    size_t c = 0;
    for (; c + N <= channels; c += N) {
      if (stream) {
        PrefetchAhead(xr + c);
        if constexpr (kHasZ) PrefetchAhead(zr + c);
      }
      NormalizeChannels<kAct, kHasLo, kHasZ>(d, t, xr, zr, yr, c, hi, lo, scale, shift, stream);
    }
    // Remaining channels in partial vectors (never streamed: a partial store
    // must not become a full-width one): nothing outside the row is touched.
    ForEachPartialVector(N, &c, channels, [&](auto dc, size_t first) {
      NormalizeChannels<kAct, kHasLo, kHasZ>(dc, t, xr, zr, yr, first, hi, lo, scale, shift,
                                             false);
    });
  }
}

// Channels-first: `runs` runs of `len` values of one channel, runs `stride`
// elements apart in x, z and y. x == y and z == y are allowed; any alignment.
// With `ahead`, one cache line of the next block is prefetched per two vectors;
// otherwise, when streaming, x (and z) ahead of the loads.
template <Activation kAct, bool kHasZ, class T>
HWY_INLINE void NormalizeRunsT(T t, const typename T::Raw* x, const typename T::Raw* z,
                               typename T::Raw* y, size_t runs, size_t len, size_t stride, float hi,
                               float lo, float scale, float shift, bool stream,
                               LineCursor* ahead) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  const auto vhi = hn::Set(d, hi), vlo = hn::Set(d, lo);
  const auto vscale = hn::Set(d, scale), vshift = hn::Set(d, shift);
  for (size_t run = 0; run < runs; ++run) {
    const typename T::Raw* xr = x + run * stride;
    const typename T::Raw* zr = z + run * stride;
    typename T::Raw* yr = y + run * stride;
    // Lanes before and after the whole vectors, in partial vectors.
    const auto partial = [&](auto dc, size_t first) {
      const auto v = Affine(LoadAs(dc, t, xr + first), hn::Set(dc, hi), hn::Set(dc, lo),
                            hn::Set(dc, scale), hn::Set(dc, shift));
      StoreAs(dc, t, Finish<kAct, kHasZ>(dc, t, v, zr + first), yr + first);
    };
    const auto vector = [&](size_t i, bool streamed) {
      const auto v = Affine(LoadAs(d, t, xr + i), vhi, vlo, vscale, vshift);
      StoreOut(d, t, Finish<kAct, kHasZ>(d, t, v, zr + i), yr + i, streamed);
    };
    size_t i = 0;
    // Runs of 14x14 or 7x7 values start off the vector boundary: reach y's.
    ForEachAlignmentVector(N, VectorPhase(yr), &i, len, partial);
    const size_t whole = i + (len - i) / N * N;
    size_t first = i, last = whole;  // the vectors that stream, if any
    if (stream) StreamedLines(yr, i, whole, &first, &last);
    for (; i < first; i += N) vector(i, false);
    // Two vectors per iteration: two independent chains per loop trip.
    for (; i + 2 * N <= last; i += 2 * N) {
      if (ahead != nullptr) {
        ahead->Next();
      } else if (stream) {
        // From memory: software prefetch, as the rows do (one core reads
        // faster so than with the hardware prefetchers alone).
        PrefetchAhead(xr + i);
        if constexpr (kHasZ) PrefetchAhead(zr + i);
      }
      vector(i, stream);
      vector(i + N, stream);
    }
    for (; i < last; i += N) vector(i, stream);
    for (; i < whole; i += N) vector(i, false);
    // The run's tail in partial vectors.
    ForEachPartialVector(N, &i, len, partial);
  }
}

// Channels-first: one row's `channels` runs of `len` values lying
// back to back (len >= Lanes), walked as one span in aligned whole vectors
// across the channel boundaries; a vector that straddles one blends the two
// channels' coefficients lane by lane. Every cache line but the span's first
// and last is then written whole by non-temporal stores, where run by run
// (NormalizeRunsT) the lines two runs share take plain stores (7x7 maps: 196
// bytes, half their lines). Each value gets its channel's coefficients in the
// same operations as in NormalizeRunsT: the same bits. The span's ends go
// through one-lane vectors, not streamed; without `stream` nothing is. With
// `ahead`, one cache line of the next block is prefetched per two vectors, as
// in NormalizeRunsT.
template <Activation kAct, bool kHasZ, class T>
HWY_INLINE void NormalizeSpanT(T t, const typename T::Raw* x, const typename T::Raw* z,
                               typename T::Raw* y, size_t channels, size_t len,
                               const float* HWY_RESTRICT hi, const float* HWY_RESTRICT lo,
                               const float* HWY_RESTRICT scale, const float* HWY_RESTRICT shift,
                               bool stream, LineCursor* ahead) {
  const hn::ScalableTag<float> d;
  using V = hn::Vec<decltype(d)>;
  const size_t N = hn::Lanes(d);
  const size_t n = channels * len;
  const auto lo_of = [lo](size_t c) { return lo == nullptr ? 0.0f : lo[c]; };
  // One value at a time, for the span's ends.
  const auto single = [&](size_t i) {
    const hn::CappedTag<float, 1> d1;
    const size_t c = i / len;
    const auto v = Affine(LoadAs(d1, t, x + i), hn::Set(d1, hi[c]), hn::Set(d1, lo_of(c)),
                          hn::Set(d1, scale[c]), hn::Set(d1, shift[c]));
    StoreAs(d1, t, Finish<kAct, kHasZ>(d1, t, v, z + i), y + i);
  };
  size_t head, whole, first, last;
  SpanParts(y, n, stream, &head, &whole, &first, &last);
  size_t i = 0;
  for (; i < head; ++i) single(i);
  // Coefficients of channel c (a) and c + 1 (b), moved along the span.
  size_t c = i / len;
  size_t boundary = (c + 1) * len;  // where channel c ends
  const auto coefficients = [&](size_t ch, V* h, V* l, V* sc, V* sh) {
    const size_t at = HWY_MIN(ch, channels - 1);  // past the last channel: never selected
    *h = hn::Set(d, hi[at]);
    *l = hn::Set(d, lo_of(at));
    *sc = hn::Set(d, scale[at]);
    *sh = hn::Set(d, shift[at]);
  };
  V ha, la, sa, fa, hb, lb, sb, fb;
  coefficients(c, &ha, &la, &sa, &fa);
  coefficients(c + 1, &hb, &lb, &sb, &fb);
  bool prefetch = true;
  for (; i < whole; i += N) {
    const bool streamed = i >= first && i < last;
    if (prefetch) {  // every other vector, as NormalizeRunsT does
      if (ahead != nullptr) {
        ahead->Next();
      } else if (streamed) {
        PrefetchAhead(x + i);
        if constexpr (kHasZ) PrefetchAhead(z + i);
      }
    }
    prefetch = !prefetch;
    V v;
    if (i + N <= boundary) {
      v = Affine(LoadAs(d, t, x + i), ha, la, sa, fa);
    } else {  // lanes [0, boundary - i) are channel c's, the rest c + 1's
      const auto mine = hn::FirstN(d, boundary - i);
      v = Affine(LoadAs(d, t, x + i), hn::IfThenElse(mine, ha, hb), hn::IfThenElse(mine, la, lb),
                 hn::IfThenElse(mine, sa, sb), hn::IfThenElse(mine, fa, fb));
    }
    StoreOut(d, t, Finish<kAct, kHasZ>(d, t, v, z + i), y + i, streamed);
    if (i + N >= boundary) {  // the next vector starts in channel c + 1
      ++c;
      boundary += len;
      ha = hb, la = lb, sa = sb, fa = fb;
      coefficients(c + 1, &hb, &lb, &sb, &fb);
    }
  }
  for (; i < n; ++i) single(i);
}

// Calls f(tag, activation constant) for the runtime element type/activation.
template <class F>
HWY_INLINE void WithTypeAndActivation(DType type, Activation act, const F& f) {
  WithType(type, [&](auto tag) {
    switch (act) {
      case Activation::kNone:
        return f(tag, hwy::SizeTag<0>());
      case Activation::kRelu:
        return f(tag, hwy::SizeTag<1>());
      case Activation::kRelu6:
        return f(tag, hwy::SizeTag<2>());
    }
  });
}

template <size_t kIndex>
constexpr Activation ActivationOf(hwy::SizeTag<kIndex>) {
  return static_cast<Activation>(kIndex);
}

// Calls f(std::bool_constant) for a runtime flag, so a loop is compiled with
// and without an optional operand.
template <class F>
HWY_INLINE void WithFlag(bool flag, const F& f) {
  if (flag) {
    f(std::true_type());
  } else {
    f(std::false_type());
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace bnorm
HWY_AFTER_NAMESPACE();

#endif  // BNORM_DISPATCH_NORMALIZE_INL_H_
