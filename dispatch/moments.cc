// SPDX-License-Identifier: Apache-2.0
// The moments module: compiles the kernels of moments_rows-inl.h and
// moments_runs-inl.h once per target (foreach_target.h includes this file again
// for each), checks the entry points' preconditions, and exports the dispatch
// tables behind moments.h.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "dispatch/moments.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "dispatch/moments.h"

#include <stddef.h>
#include <stdint.h>

#include "bnorm/dtype.hpp"
#include "dispatch/convert-inl.h"
#include "dispatch/moments_rows-inl.h"
#include "dispatch/moments_runs-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace bnorm {
namespace HWY_NAMESPACE {

// Entry points, one per target: the element type is chosen once per block, not
// per vector.
HWY_NOINLINE void MomentsRows(const dispatch::RowsView& x, double* mean, double* m2) {
  HWY_DASSERT(x.x != nullptr && mean != nullptr && m2 != nullptr);
  HWY_DASSERT(reinterpret_cast<uintptr_t>(x.x) % SizeOf(x.type) == 0);
  HWY_DASSERT(x.rows >= 1 && x.channels >= 1);
  WithType(x.type, [&](auto tag) {
    using Raw = typename decltype(tag)::Raw;
    MomentsRowsT(tag, static_cast<const Raw*>(x.x), x.rows, x.channels, x.stride, mean, m2);
  });
}

HWY_NOINLINE void MomentsRuns(const dispatch::RunsView& x, double* mean, double* m2,
                              size_t out_stride, bool from_memory) {
  HWY_DASSERT(x.x != nullptr && mean != nullptr && m2 != nullptr);
  HWY_DASSERT(reinterpret_cast<uintptr_t>(x.x) % SizeOf(x.type) == 0);
  HWY_DASSERT(x.channels >= 1 && x.runs >= 1 && x.len >= 1 && out_stride >= 1);
  WithType(x.type, [&](auto tag) {
    MomentsRunsT(tag, static_cast<const typename decltype(tag)::Raw*>(x.x), x.channels,
                 x.channel_stride, x.runs, x.len, x.stride, out_stride, from_memory, mean, m2);
  });
}

}  // namespace HWY_NAMESPACE
}  // namespace bnorm
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace bnorm {
namespace dispatch {

HWY_EXPORT(MomentsRows);
HWY_EXPORT(MomentsRuns);

void MomentsRows(const RowsView& x, double* mean, double* m2) {
  HWY_DYNAMIC_DISPATCH(MomentsRows)(x, mean, m2);
}

void MomentsRuns(const RunsView& x, double* mean, double* m2, size_t out_stride,
                 bool from_memory) {
  HWY_DYNAMIC_DISPATCH(MomentsRuns)(x, mean, m2, out_stride, from_memory);
}

}  // namespace dispatch
}  // namespace bnorm
#endif  // HWY_ONCE
