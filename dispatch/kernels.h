// The dispatched kernels (one table entry per compiled target). Callers are the
// target-independent drivers in src/; each call works on one cache-sized block.
#ifndef BNORM_DISPATCH_KERNELS_H_
#define BNORM_DISPATCH_KERNELS_H_

#include <cstddef>
#include <cstdint>

#include "bnorm/dtype.hpp"

namespace bnorm {
namespace dispatch {

// x and y hold elements of `type`; strides count elements, not bytes.

// Channels-last moments: `rows` >= 1 rows of `channels` contiguous values, rows
// `stride` elements apart. Writes mean[c] and m2[c] (sum of squared deviations).
void MomentsRows(const void* x, DType type, size_t rows, size_t channels, size_t stride,
                 double* mean, double* m2);

// Channels-first moments of `channels` >= 1 channels `channel_stride` elements
// apart, each `runs` >= 1 runs of `len` >= 1 contiguous values, runs `stride`
// elements apart. Writes mean[c] and m2[c] for c < channels.
void MomentsRuns(const void* x, DType type, size_t channels, size_t channel_stride, size_t runs,
                 size_t len, size_t stride, double* mean, double* m2);

// Channels-last normalize:
// y[r][c] = act(((x[r][c] - hi[c]) - lo[c]) * scale[c] + shift[c]); lo may be
// null (all zero).
// With `stream`, whole vectors of y use non-temporal stores where aligned (for
// contiguous float32 rows whose channel count is a multiple of the vector
// width, the vectors are shifted to y's alignment).
void NormalizeRows(const void* x, void* y, DType type, Activation act, size_t rows, size_t channels,
                   size_t stride, const float* hi, const float* lo, const float* scale,
                   const float* shift, bool stream);

// Channels-first normalize of `channels` channels (laid out as for
// MomentsRuns), channel c with coefficients hi[c], lo[c] (lo may be null),
// scale[c], shift[c].
void NormalizeRuns(const void* x, void* y, DType type, Activation act, size_t channels,
                   size_t channel_stride, size_t runs, size_t len, size_t stride, const float* hi,
                   const float* lo, const float* scale, const float* shift, bool stream);

// The HWY_* bit of the target the dispatch table calls now.
int64_t DispatchedTarget();

}  // namespace dispatch
}  // namespace bnorm

#endif  // BNORM_DISPATCH_KERNELS_H_
