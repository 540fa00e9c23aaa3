// SPDX-License-Identifier: Apache-2.0
// The backward module: compiles the kernels of backward_reduce-inl.h and
// backward_data-inl.h once per target (foreach_target.h includes this file
// again for each), checks the entry points' preconditions, and exports the
// dispatch tables behind backward.h.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "dispatch/backward.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "dispatch/backward.h"

#include <stddef.h>
#include <stdint.h>

#include "bnorm/dtype.hpp"
#include "dispatch/gradient-inl.h"
#include "dispatch/backward_data-inl.h"
#include "dispatch/backward_reduce-inl.h"
#include "hwy/cache_control.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace bnorm {
namespace HWY_NAMESPACE {

// Preconditions shared by every entry point (compiled out of release builds,
// hence the cast to void).
HWY_INLINE void AssertInputs(const void* x, DType type, const dispatch::BackwardOperands& in) {
  (void)x;
  (void)type;
  (void)in;
  HWY_DASSERT(x != nullptr && in.dy != nullptr);
  HWY_DASSERT(in.mask == Activation::kNone || in.y != nullptr);
  HWY_DASSERT(reinterpret_cast<uintptr_t>(x) % SizeOf(type) == 0);
  HWY_DASSERT(reinterpret_cast<uintptr_t>(in.dy) % SizeOf(type) == 0);
  HWY_DASSERT(reinterpret_cast<uintptr_t>(in.y) % SizeOf(type) == 0);
  HWY_DASSERT(in.mean_hi != nullptr && in.mean_lo != nullptr);
}

// Calls f(tag, mask constant, x, dy, y) with the inputs as typed pointers; y
// is dy when there is no mask (never read, but offsets from it stay valid).
template <class F>
HWY_INLINE void WithTypedInputs(const void* x, DType type, const dispatch::BackwardOperands& in,
                                const F& f) {
  AssertInputs(x, type, in);
  WithTypeAndMask(type, in.mask, [&](auto tag, auto mask) {
    using Raw = typename decltype(tag)::Raw;
    const Raw* dy = static_cast<const Raw*>(in.dy);
    const Raw* y = decltype(mask)::value == Activation::kNone ? dy : static_cast<const Raw*>(in.y);
    f(tag, mask, static_cast<const Raw*>(x), dy, y);
  });
}

// Entry points, one per target: element type and mask are chosen once per
// block, not per vector.
HWY_NOINLINE void BackwardReduceRows(const dispatch::RowsView& s,
                                     const dispatch::BackwardOperands& in,
                                     const dispatch::BackwardSums& out, bool from_memory) {
  HWY_DASSERT(s.rows >= 1 && s.channels >= 1 && s.stride >= s.channels);
  HWY_DASSERT(out.sum_dy != nullptr && out.sum_dy_xmu != nullptr && out.stride == 1);
  WithTypedInputs(
      s.x, s.type, in, [&](auto tag, auto mask, const auto* x, const auto* dy, const auto* y) {
        ReduceRowsT<decltype(mask)::value>(tag, x, dy, y, s.rows, s.channels, s.stride, in.mean_hi,
                                           in.mean_lo, from_memory, out.sum_dy, out.sum_dy_xmu);
      });
}

HWY_NOINLINE void BackwardReduceRuns(const dispatch::RunsView& s,
                                     const dispatch::BackwardOperands& in,
                                     const dispatch::BackwardSums& out, bool from_memory) {
  HWY_DASSERT(s.channels >= 1 && s.runs >= 1 && s.len >= 1);
  HWY_DASSERT(out.sum_dy != nullptr && out.sum_dy_xmu != nullptr);
  WithTypedInputs(
      s.x, s.type, in, [&](auto tag, auto mask, const auto* x, const auto* dy, const auto* y) {
        ReduceRunsT<decltype(mask)::value>(tag, x, dy, y, s.channels, s.channel_stride, s.runs,
                                           s.len, s.stride, in.mean_hi, in.mean_lo, from_memory,
                                           out.stride, out.sum_dy, out.sum_dy_xmu);
      });
}

// Streamed stores are flushed before returning, so the block is visible to
// whoever reads it next.
HWY_NOINLINE void BackwardDataRows(const dispatch::RowsView& s,
                                   const dispatch::BackwardOperands& in,
                                   const dispatch::BackwardCoefficients& k, void* dx, bool stream) {
  HWY_DASSERT(s.rows >= 1 && s.channels >= 1 && s.stride >= s.channels);
  HWY_DASSERT(k.k != nullptr && k.a != nullptr && k.b != nullptr);
  HWY_DASSERT(dx != nullptr && reinterpret_cast<uintptr_t>(dx) % SizeOf(s.type) == 0);
  WithTypedInputs(
      s.x, s.type, in, [&](auto tag, auto mask, const auto* x, const auto* dy, const auto* y) {
        using Raw = typename decltype(tag)::Raw;
        DataRowsT<decltype(mask)::value>(tag, x, dy, y, static_cast<Raw*>(dx), s.rows, s.channels,
                                         s.stride, in.mean_hi, in.mean_lo, k.k, k.a, k.b, stream);
      });
  if (stream) hwy::FlushStream();
}

HWY_NOINLINE void BackwardDataRuns(const dispatch::RunsView& s,
                                   const dispatch::BackwardOperands& in,
                                   const dispatch::BackwardCoefficients& k, void* dx, bool stream) {
  HWY_DASSERT(s.channels >= 1 && s.runs >= 1 && s.len >= 1);
  HWY_DASSERT(k.k != nullptr && k.a != nullptr && k.b != nullptr);
  HWY_DASSERT(dx != nullptr && reinterpret_cast<uintptr_t>(dx) % SizeOf(s.type) == 0);
  const size_t size = SizeOf(s.type);
  WithTypedInputs(
      s.x, s.type, in, [&](auto tag, auto mask, const auto* x, const auto* dy, const auto* y) {
        using Raw = typename decltype(tag)::Raw;
        // Spans (DataSpanT), but streamed only for runs of at most 256 bytes:
        // in the channel-resident backward (one thread, Zen 5) 64x256x14x14
        // (784-byte runs) took 1.17x the time as spans, 64x2048x7x7 (196)
        // 0.85x; in cache both gain.
        if (UseSpans(s.channels, s.channel_stride, s.len, size) &&
            (!stream || s.len * size <= 256)) {
          for (size_t r = 0; r < s.runs; ++r) {
            const size_t o = r * s.stride;
            DataSpanT<decltype(mask)::value>(tag, x + o, dy + o, y + o, static_cast<Raw*>(dx) + o,
                                             s.channels, s.len, in.mean_hi, in.mean_lo, k.k, k.a,
                                             k.b, stream);
          }
          return;
        }
        for (size_t c = 0; c < s.channels; ++c) {
          const size_t o = c * s.channel_stride;
          DataRunsT<decltype(mask)::value>(tag, x + o, dy + o, y + o, static_cast<Raw*>(dx) + o,
                                           s.runs, s.len, s.stride, in.mean_hi[c], in.mean_lo[c],
                                           k.k[c], k.a[c], k.b[c], stream);
        }
      });
  if (stream) hwy::FlushStream();
}

}  // namespace HWY_NAMESPACE
}  // namespace bnorm
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace bnorm {
namespace dispatch {

HWY_EXPORT(BackwardReduceRows);
HWY_EXPORT(BackwardReduceRuns);
HWY_EXPORT(BackwardDataRows);
HWY_EXPORT(BackwardDataRuns);

void BackwardReduceRows(const RowsView& x, const BackwardOperands& in, const BackwardSums& out,
                        bool from_memory) {
  HWY_DYNAMIC_DISPATCH(BackwardReduceRows)(x, in, out, from_memory);
}

void BackwardReduceRuns(const RunsView& x, const BackwardOperands& in, const BackwardSums& out,
                        bool from_memory) {
  HWY_DYNAMIC_DISPATCH(BackwardReduceRuns)(x, in, out, from_memory);
}

void BackwardDataRows(const RowsView& x, const BackwardOperands& in, const BackwardCoefficients& k,
                      void* dx, bool stream) {
  HWY_DYNAMIC_DISPATCH(BackwardDataRows)(x, in, k, dx, stream);
}

void BackwardDataRuns(const RunsView& x, const BackwardOperands& in, const BackwardCoefficients& k,
                      void* dx, bool stream) {
  HWY_DYNAMIC_DISPATCH(BackwardDataRuns)(x, in, k, dx, stream);
}

}  // namespace dispatch
}  // namespace bnorm
#endif  // HWY_ONCE
