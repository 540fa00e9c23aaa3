// SPDX-License-Identifier: Apache-2.0
// Stores of whole output vectors that stream past the caches when asked to and
// aligned, for the passes that write a tensor (normalize). Compiled once per
// target (toggling include guard).

#if defined(BNORM_DISPATCH_STREAMING_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef BNORM_DISPATCH_STREAMING_INL_H_
#undef BNORM_DISPATCH_STREAMING_INL_H_
#else
#define BNORM_DISPATCH_STREAMING_INL_H_
#endif

#include <stddef.h>
#include <stdint.h>

#include <type_traits>

#include "dispatch/convert-inl.h"
#include "dispatch/partial_vectors-inl.h"
#include "dispatch/prefetch-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace bnorm {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Stores a full vector of y. With `stream`, vectors at aligned addresses
// bypass the cache (non-temporal stores): an output larger than the caches is
// then not read for ownership first, a third less traffic.
template <class D, class T>
HWY_INLINE void StoreOut(D d, T t, hn::Vec<D> v, typename T::Raw* HWY_RESTRICT p, bool stream) {
  using Raw = typename T::Raw;
  using D16 = hn::Rebind<uint16_t, D>;
  // 16-bit outputs stream only as whole vectors: x86's non-temporal store of a
  // partial one (SSE4's 4 x 16 bits) would write a full 16 bytes.
  constexpr bool kCanStream =
      std::is_same<T, F32>::value || hn::MaxLanes(D16()) * sizeof(uint16_t) >= 16;
  if constexpr (kCanStream) {
    if (stream && reinterpret_cast<uintptr_t>(p) % (hn::Lanes(d) * sizeof(Raw)) == 0) {
      if constexpr (std::is_same<T, F32>::value) {
        hn::Stream(v, d, p);
      } else {
        hn::Stream(NarrowBits(d, t, v), D16(), p);
      }
      return;
    }
  }
  StoreAs(d, t, v, p);
}

// Of the whole vectors [i, end) of a channels-first run (i at a vector
// boundary of p), the ones [*first, *last) that may stream: those in the cache
// lines (or whole vectors, if wider) the run fills alone. The lines it shares
// with the neighbouring runs take ordinary stores, as the run's partial
// vectors there do: a line written partly by non-temporal and partly by
// ordinary stores goes to memory as partial writes (64x2048x7x7 nchw, runs of
// 196 bytes: 13x slower than with this split). No whole line: *first = *last = end.
template <class Raw>
HWY_INLINE void StreamedLines(const Raw* p, size_t i, size_t end, size_t* first, size_t* last) {
  const size_t N = hn::Lanes(hn::ScalableTag<float>());
  const uintptr_t granule = HWY_MAX(kCacheLine, N * sizeof(Raw));
  const uintptr_t begin = reinterpret_cast<uintptr_t>(p + i);
  const uintptr_t stop = reinterpret_cast<uintptr_t>(p + end);
  const uintptr_t a = (begin + granule - 1) / granule * granule;
  const uintptr_t b = stop / granule * granule;
  if (b <= a) {
    *first = *last = end;
    return;
  }
  *first = i + (a - begin) / sizeof(Raw);
  *last = i + (b - begin) / sizeof(Raw);
}

// Whether a channels-first block of short runs is walked as spans (one row's
// runs as one run: NormalizeSpanT, DataSpanT): its channels' runs lie back
// to back in a row (channel stride == len), runs of at least a vector whose
// bytes do not fill whole cache lines, and short enough (at most 4 KiB) that
// the lines they share (streamed), or the partial vectors at their ends (in
// cache), are a large part of them.
HWY_INLINE bool UseSpans(size_t channels, size_t channel_stride, size_t len, size_t size) {
  const size_t N = hn::Lanes(hn::ScalableTag<float>());
  const size_t bytes = len * size;
  return channels > 1 && channel_stride == len && len >= N && bytes % kCacheLine != 0 &&
         bytes <= 4096;
}

// How a span of n values written at `out` splits (NormalizeSpanT,
// DataSpanT): values [0, *head) and [*whole, n) one at a time, the vectors
// aligned to out in between, of which [*first, *last) stream (with `stream`).
template <class Raw>
HWY_INLINE void SpanParts(const Raw* out, size_t n, bool stream, size_t* head, size_t* whole,
                          size_t* first, size_t* last) {
  const size_t N = hn::Lanes(hn::ScalableTag<float>());
  const size_t phase = VectorPhase(out);
  *head = HWY_MIN(n, phase == 0 ? 0 : N - phase);
  *whole = *head + (n - *head) / N * N;
  *first = *last = *head;
  if (stream) StreamedLines(out, *head, *whole, first, last);
}

}  // namespace HWY_NAMESPACE
}  // namespace bnorm
HWY_AFTER_NAMESPACE();

#endif  // BNORM_DISPATCH_STREAMING_INL_H_
