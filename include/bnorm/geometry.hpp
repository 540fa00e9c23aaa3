// SPDX-License-Identifier: Apache-2.0
// Canonical geometry: any tensor and set of adjacent feature axes reduce to
// [outer, channels, inner] in row-major order.
//   channels-last  (inner == 1): rows of `channels` contiguous values.
//   channels-first (inner > 1):  each channel is `outer` runs of `inner` values.
#ifndef BNORM_GEOMETRY_HPP_
#define BNORM_GEOMETRY_HPP_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "bnorm/export.h"

namespace bnorm {

struct BNORM_API Geometry {
  size_t outer = 1;
  size_t channels = 1;
  size_t inner = 1;
  // Outer rows come in groups of `group_rows` consecutive rows whose starts are
  // `group_stride` elements apart. A dense tensor is a single group
  // (group_rows == outer). Ghost batches view every G-th sample this way.
  size_t group_rows = 1;
  size_t group_stride = 0;
  // Strided views (a channel slice of a larger buffer, padded rows): elements
  // between consecutive outer rows of a group, and between channels. 0 means
  // dense (channels * inner, and inner). Inner values are always contiguous.
  size_t row_stride = 0;
  size_t channel_stride = 0;

  static Geometry Dense(size_t outer, size_t channels, size_t inner);

  // Rows of contiguous channels: SIMD across channels. A strided channel axis
  // with inner == 1 runs as channels-first runs of one value instead.
  bool channels_last() const { return inner == 1 && ChannelStride() == 1; }
  size_t row_elements() const { return channels * inner; }
  size_t RowStride() const { return row_stride != 0 ? row_stride : channels * inner; }
  size_t ChannelStride() const { return channel_stride != 0 ? channel_stride : inner; }
  // Whether values of a row are contiguous (the SIMD-across-channels path).
  bool channels_contiguous() const { return ChannelStride() == inner; }
  // Values reduced per channel.
  size_t reduced() const { return outer * inner; }
  size_t elements() const { return outer * channels * inner; }
  // Elements from the base pointer to one past the last element of the view.
  size_t Extent() const {
    if (elements() == 0) return 0;
    return RowOffset(outer - 1) + (channels - 1) * ChannelStride() + inner;
  }
  // Offset of outer row `o` from the base pointer.
  size_t RowOffset(size_t o) const {
    return (o / group_rows) * group_stride + (o % group_rows) * RowStride();
  }
};

// The geometry of the shape dims[0, rank) with feature axes axes[0, num_axes)
// (negative values count from the end). The feature axes must be adjacent;
// their sizes multiply into `channels`. Allocates nothing. Throws bnorm::Error:
// kInvalidArgument for rank 0, a negative size or an empty, out-of-range or
// duplicated axis list, kOverflow for sizes whose product does not fit in
// size_t, kUnsupported for feature axes that are not adjacent.
BNORM_API Geometry PlanGeometry(const int64_t* dims, size_t rank, const int* axes, size_t num_axes);
// The same over vectors.
BNORM_API Geometry PlanGeometry(const std::vector<int64_t>& shape, const std::vector<int>& axes);

// Feature axes normalized to ascending, non-negative indices. `axes` may hold
// negative values (counted from the end); duplicates, out-of-range values and an
// empty list are errors naming the axis and the rank.
BNORM_API std::vector<int> CanonicalAxes(const std::vector<int>& axes, size_t rank);

// The geometry of a strided view: `strides[i]` elements between neighbours
// along axis i. The axes after the feature axes must be dense (contiguous
// inner values), the feature axes must collapse into one channel stride and
// the axes before them into one row stride; anything else is an error that
// names the axis. Also checks that distinct elements do not overlap.
BNORM_API Geometry PlanStridedGeometry(const std::vector<int64_t>& shape,
                                       const std::vector<int64_t>& strides,
                                       const std::vector<int>& axes);

// The parameter shape (sizes of the feature axes, in order).
BNORM_API std::vector<int64_t> ParameterShape(const std::vector<int64_t>& shape,
                                              const std::vector<int>& axes);

}  // namespace bnorm

#endif  // BNORM_GEOMETRY_HPP_
