// SPDX-License-Identifier: Apache-2.0
// The memory one dispatched kernel call reads: a block of a tensor in one of the
// two canonical layouts (docs of the geometry: bnorm/geometry.hpp). Every kernel
// module (moments, normalize) takes these, so a block is described once by the
// drivers in src/ops and the same way for every kernel family.
#ifndef BNORM_DISPATCH_VIEWS_H_
#define BNORM_DISPATCH_VIEWS_H_

#include <cstddef>

#include "bnorm/dtype.hpp"

namespace bnorm {
namespace dispatch {

// Elements of `type` (float16/bfloat16 as 16-bit patterns), aligned to their
// size; strides count elements, not bytes.

// Channels-last: `rows` rows of `channels` contiguous values, row starts
// `stride` elements apart. Vectorized across channels, reduced across rows.
struct RowsView {
  const void* x = nullptr;
  DType type = DType::kFloat32;
  size_t rows = 0;
  size_t channels = 0;
  size_t stride = 0;
};

// Channels-first: `channels` channels `channel_stride` elements apart, each
// `runs` runs of `len` contiguous values, run starts `stride` elements apart.
// Vectorized along the runs.
struct RunsView {
  const void* x = nullptr;
  DType type = DType::kFloat32;
  size_t channels = 0;
  size_t channel_stride = 0;
  size_t runs = 0;
  size_t len = 0;
  size_t stride = 0;
};

}  // namespace dispatch
}  // namespace bnorm

#endif  // BNORM_DISPATCH_VIEWS_H_
