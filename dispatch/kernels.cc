// Compiles the kernels once per target and exports the dispatch tables.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "dispatch/kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "dispatch/convert-inl.h"
#include "dispatch/moments-inl.h"
#include "dispatch/normalize-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace bnorm {
namespace HWY_NAMESPACE {

// Lets the registry ask the dispatch table itself which target it calls.
HWY_NOINLINE int64_t DispatchedTargetImpl() { return HWY_TARGET; }

}  // namespace HWY_NAMESPACE
}  // namespace bnorm
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "dispatch/kernels.h"

namespace bnorm {
namespace dispatch {

HWY_EXPORT(MomentsRowsImpl);
HWY_EXPORT(MomentsRunsImpl);
HWY_EXPORT(NormalizeRowsImpl);
HWY_EXPORT(NormalizeRunsImpl);
HWY_EXPORT(DispatchedTargetImpl);

void MomentsRows(const void* x, DType type, size_t rows, size_t channels, size_t stride,
                 double* mean, double* m2) {
  HWY_DYNAMIC_DISPATCH(MomentsRowsImpl)(x, type, rows, channels, stride, mean, m2);
}

void MomentsRuns(const void* x, DType type, size_t channels, size_t channel_stride, size_t runs,
                 size_t len, size_t stride, double* mean, double* m2) {
  HWY_DYNAMIC_DISPATCH(MomentsRunsImpl)
  (x, type, channels, channel_stride, runs, len, stride, mean, m2);
}

void NormalizeRows(const void* x, void* y, DType type, Activation act, size_t rows,
                   size_t channels, size_t stride, const float* hi, const float* lo,
                   const float* scale, const float* shift, bool stream) {
  HWY_DYNAMIC_DISPATCH(NormalizeRowsImpl)
  (x, y, type, act, rows, channels, stride, hi, lo, scale, shift, stream);
}

void NormalizeRuns(const void* x, void* y, DType type, Activation act, size_t channels,
                   size_t channel_stride, size_t runs, size_t len, size_t stride, const float* hi,
                   const float* lo, const float* scale, const float* shift, bool stream) {
  HWY_DYNAMIC_DISPATCH(NormalizeRunsImpl)
  (x, y, type, act, channels, channel_stride, runs, len, stride, hi, lo, scale, shift, stream);
}

int64_t DispatchedTarget() {
  return HWY_DYNAMIC_DISPATCH(DispatchedTargetImpl)();
}

}  // namespace dispatch
}  // namespace bnorm
#endif  // HWY_ONCE
