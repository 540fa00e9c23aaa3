// SPDX-License-Identifier: Apache-2.0
// Streamed channels-last rows whose output is not vector-aligned. Streaming
// (non-temporal) stores need aligned vectors, and a row of C channels (a
// multiple of the vector width) whose output starts `phase` lanes past a
// vector boundary has none of its own: the vectors are shifted by `phase`
// lanes instead. Each row's aligned vectors start at channel N - phase, and
// its last one wraps into the next row, with per-channel parameter vectors
// built once (the phase is the same for every row of a contiguous block).
// The normalize and the backward data pass share this walk; each gives the
// per-vector body, so the arithmetic per value is the unshifted loop's: the
// same bits. Compiled once per target: included through foreach_target.h.

#if defined(BNORM_DISPATCH_SHIFTED_ROWS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef BNORM_DISPATCH_SHIFTED_ROWS_INL_H_
#undef BNORM_DISPATCH_SHIFTED_ROWS_INL_H_
#else
#define BNORM_DISPATCH_SHIFTED_ROWS_INL_H_
#endif

#include <stddef.h>
#include <stdint.h>

#include "dispatch/partial_vectors-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace bnorm {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Whether ForEachShiftedVector applies: streamed, misaligned, and contiguous
// rows of whole vectors.
HWY_INLINE bool UseShiftedRows(bool stream, size_t phase, size_t channels, size_t stride) {
  const size_t N = hn::Lanes(hn::ScalableTag<float>());
  return stream && phase != 0 && stride == channels && channels % N == 0;
}

// Walks `rows` contiguous rows of `channels` values (a multiple of the full
// vector width) with the output `phase` lanes (1 .. N-1) past a vector
// boundary. Calls f(tag, row, c, params, stream) for the values at element
// row + c .. row + c + Lanes(tag) - 1, whose per-channel parameters are
// params[p] + c (params[p] may be null: its wrapped copy is then zeros, never
// to be read). Full vectors are aligned and streamed; the first row's head
// and the last row's tail go through partial vectors, not streamed.
template <size_t kParams, class F>
HWY_INLINE void ForEachShiftedVector(size_t rows, size_t channels, size_t phase,
                                     const float* const (&params)[kParams], const F& f) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  const size_t head = N - phase;  // channels before a row's first aligned vector
  // Parameters of the wrapping vector: channels C - phase .. C - 1, 0 .. head - 1.
  HWY_ALIGN float wrap[kParams][hn::MaxLanes(d)];
  const float* wrapped[kParams];
  for (size_t p = 0; p < kParams; ++p) {
    for (size_t i = 0; i < N; ++i) {
      wrap[p][i] = params[p] == nullptr ? 0.0f : params[p][(channels - phase + i) % channels];
    }
    wrapped[p] = wrap[p];
  }
  const auto partial = [&](size_t row, size_t first, size_t end) {
    ForEachPartialVector(N, &first, end, [&](auto dc, size_t c) { f(dc, row, c, params, false); });
  };
  partial(0, 0, head);
  for (size_t r = 0; r < rows; ++r) {
    const size_t row = r * channels;
    size_t c = head;
    for (; c + N <= channels; c += N) f(d, row, c, params, true);
    if (r + 1 == rows) {
      partial(row, c, channels);
    } else {
      f(d, row + c, size_t{0}, wrapped, true);
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace bnorm
HWY_AFTER_NAMESPACE();

#endif  // BNORM_DISPATCH_SHIFTED_ROWS_INL_H_
