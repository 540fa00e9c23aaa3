// SPDX-License-Identifier: Apache-2.0
// The normalize module: compiles the kernels of normalize-inl.h once per target
// (foreach_target.h includes this file again for each), checks the entry
// points' preconditions, and exports the dispatch tables behind normalize.h.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "dispatch/normalize.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "dispatch/normalize.h"

#include <stddef.h>
#include <stdint.h>

#include "bnorm/dtype.hpp"
#include "dispatch/normalize-inl.h"
#include "hwy/cache_control.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace bnorm {
namespace HWY_NAMESPACE {

// Entry points, one per target: element type and activation are chosen once
// per block, not per vector. Streamed stores are flushed before returning, so
// the block is visible to whoever reads it next.
HWY_NOINLINE void NormalizeRows(const dispatch::RowsView& x, const void* z, void* y,
                                const dispatch::NormalizeCoefficients& k, bool stream) {
  HWY_DASSERT(x.x != nullptr && y != nullptr);
  HWY_DASSERT(reinterpret_cast<uintptr_t>(x.x) % SizeOf(x.type) == 0);
  HWY_DASSERT(reinterpret_cast<uintptr_t>(y) % SizeOf(x.type) == 0);
  HWY_DASSERT(reinterpret_cast<uintptr_t>(z) % SizeOf(x.type) == 0);
  HWY_DASSERT(k.hi != nullptr && k.scale != nullptr && k.shift != nullptr);
  HWY_DASSERT(x.rows >= 1 && x.channels >= 1);
  WithTypeAndActivation(x.type, k.act, [&](auto tag, auto act_tag) {
    using Raw = typename decltype(tag)::Raw;
    constexpr Activation kAct = ActivationOf(decltype(act_tag)());
    const Raw* in = static_cast<const Raw*>(x.x);
    Raw* out = static_cast<Raw*>(y);
    WithFlag(k.lo != nullptr, [&](auto has_lo) {
      WithFlag(z != nullptr, [&](auto has_z) {
        // Without a residual z is never read: x stands in for it.
        const Raw* add = has_z ? static_cast<const Raw*>(z) : in;
        NormalizeRowsT<kAct, decltype(has_lo)::value, decltype(has_z)::value>(
            tag, in, add, out, x.rows, x.channels, x.stride, k.hi, k.lo, k.scale, k.shift, stream);
      });
    });
  });
  if (stream) hwy::FlushStream();
}

HWY_NOINLINE void NormalizeRuns(const dispatch::RunsView& x, const void* z, void* y,
                                const dispatch::NormalizeCoefficients& k, bool stream,
                                const dispatch::RunsView* next) {
  HWY_DASSERT(x.x != nullptr && y != nullptr);
  HWY_DASSERT(reinterpret_cast<uintptr_t>(x.x) % SizeOf(x.type) == 0);
  HWY_DASSERT(reinterpret_cast<uintptr_t>(y) % SizeOf(x.type) == 0);
  HWY_DASSERT(reinterpret_cast<uintptr_t>(z) % SizeOf(x.type) == 0);
  HWY_DASSERT(k.hi != nullptr && k.scale != nullptr && k.shift != nullptr);
  HWY_DASSERT(x.channels >= 1 && x.runs >= 1 && x.len >= 1);
  const size_t size = SizeOf(x.type);
  LineCursor ahead = next == nullptr ? LineCursor(nullptr, 0, 0, 0, 0, 0)
                                     : LineCursor(next->x, next->channels,
                                                  next->channel_stride * size, next->runs,
                                                  next->len * size, next->stride * size);
  LineCursor* cursor = next == nullptr ? nullptr : &ahead;
  WithTypeAndActivation(x.type, k.act, [&](auto tag, auto act_tag) {
    using Raw = typename decltype(tag)::Raw;
    const Raw* in = static_cast<const Raw*>(x.x);
    Raw* out = static_cast<Raw*>(y);
    WithFlag(z != nullptr, [&](auto has_z) {
      // Without a residual z is never read: x stands in for it.
      const Raw* add = has_z ? static_cast<const Raw*>(z) : in;
      constexpr Activation kAct = ActivationOf(decltype(act_tag)());
      if (UseSpans(x.channels, x.channel_stride, x.len, size)) {
        for (size_t r = 0; r < x.runs; ++r) {
          const size_t offset = r * x.stride;
          NormalizeSpanT<kAct, decltype(has_z)::value>(tag, in + offset, add + offset,
                                                       out + offset, x.channels, x.len, k.hi,
                                                       k.lo, k.scale, k.shift, stream, cursor);
        }
        return;
      }
      for (size_t c = 0; c < x.channels; ++c) {
        const size_t offset = c * x.channel_stride;
        NormalizeRunsT<kAct, decltype(has_z)::value>(
            tag, in + offset, add + offset, out + offset, x.runs, x.len, x.stride, k.hi[c],
            k.lo == nullptr ? 0.0f : k.lo[c], k.scale[c], k.shift[c], stream, cursor);
      }
    });
  });
  if (stream) hwy::FlushStream();
}

}  // namespace HWY_NAMESPACE
}  // namespace bnorm
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace bnorm {
namespace dispatch {

HWY_EXPORT(NormalizeRows);
HWY_EXPORT(NormalizeRuns);

void NormalizeRows(const RowsView& x, const void* z, void* y, const NormalizeCoefficients& k,
                   bool stream) {
  HWY_DYNAMIC_DISPATCH(NormalizeRows)(x, z, y, k, stream);
}

void NormalizeRuns(const RunsView& x, const void* z, void* y, const NormalizeCoefficients& k,
                   bool stream, const RunsView* next) {
  HWY_DYNAMIC_DISPATCH(NormalizeRuns)(x, z, y, k, stream, next);
}

}  // namespace dispatch
}  // namespace bnorm
#endif  // HWY_ONCE
