// SPDX-License-Identifier: Apache-2.0
// Shape + feature axes -> canonical [outer, channels, inner] geometry, written
// once over plain arrays (no allocation: the C ABI's inference calls plan on
// every call); the std::vector overloads call the same code.
#include "bnorm/geometry.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "bnorm/error.hpp"
#include "src/plan/checks.h"

namespace bnorm {
namespace {

// The smallest and largest canonical feature axis.
struct AxisSpan {
  int first;
  int last;
};

int Canonical(int axis, size_t rank) {
  return axis < 0 ? static_cast<int>(axis + static_cast<long long>(rank)) : axis;
}

bool Contains(const int* axes, size_t num_axes, size_t rank, int canonical) {
  for (size_t i = 0; i < num_axes; ++i) {
    if (Canonical(axes[i], rank) == canonical) return true;
  }
  return false;
}

// Checks axes[0, num_axes) in list order, so that the first bad axis is the one
// named. Duplicates are found by comparing with the axes before (quadratic in
// at most `rank` axes, and no scratch array).
AxisSpan ValidateAxes(const int* axes, size_t num_axes, size_t rank) {
  if (num_axes == 0) {
    throw Error(ErrorCode::kInvalidArgument, "axis is an empty list; expected at least one axis");
  }
  const long long r = static_cast<long long>(rank);
  AxisSpan span{static_cast<int>(rank), -1};
  for (size_t i = 0; i < num_axes; ++i) {
    const int axis = axes[i];
    if (axis < -r || axis >= r) {
      throw Error(ErrorCode::kInvalidArgument,
                  "axis " + std::to_string(axis) + " is out of range for an input of rank " +
                      std::to_string(rank) + " (valid: " + std::to_string(-r) + ".." +
                      std::to_string(r - 1) + ")");
    }
    const int a = Canonical(axis, rank);
    if (Contains(axes, i, rank, a)) {
      throw Error(ErrorCode::kInvalidArgument, "axis " + std::to_string(axis) +
                                                   " is duplicated in the axis list (rank " +
                                                   std::to_string(rank) + ")");
    }
    span.first = std::min(span.first, a);
    span.last = std::max(span.last, a);
  }
  return span;
}

// The span of a valid axis list whose axes are adjacent; other lists are
// valid Keras axes the kernels cannot read in place (BatchNorm transposes
// them), named by their first gap.
AxisSpan AdjacentAxes(const int* axes, size_t num_axes, size_t rank) {
  const AxisSpan span = ValidateAxes(axes, num_axes, rank);
  if (static_cast<size_t>(span.last - span.first) + 1 == num_axes) return span;
  int below = span.first;
  while (Contains(axes, num_axes, rank, below + 1)) ++below;
  int above = below + 2;
  while (!Contains(axes, num_axes, rank, above)) ++above;
  throw Error(ErrorCode::kUnsupported,
              "axis list is not contiguous (axes " + std::to_string(below) + " and " +
                  std::to_string(above) +
                  " are separated); the low-level calls need adjacent feature axes");
}

}  // namespace

Geometry Geometry::Dense(size_t outer, size_t channels, size_t inner) {
  Geometry g;
  g.outer = outer;
  g.channels = channels;
  g.inner = inner;
  g.group_rows = outer == 0 ? 1 : outer;
  g.group_stride = outer * channels * inner;
  return g;
}

std::vector<int> CanonicalAxes(const std::vector<int>& axes, size_t rank) {
  ValidateAxes(axes.data(), axes.size(), rank);
  std::vector<int> canonical;
  for (int axis : axes) canonical.push_back(Canonical(axis, rank));
  std::sort(canonical.begin(), canonical.end());
  return canonical;
}

Geometry PlanGeometry(const int64_t* dims, size_t rank, const int* axes, size_t num_axes) {
  if (rank == 0) {
    throw Error(ErrorCode::kInvalidArgument, "input rank is 0; expected a tensor of rank >= 1");
  }
  ShapeElements("shape", dims, rank);
  const AxisSpan span = AdjacentAxes(axes, num_axes, rank);
  const size_t first = static_cast<size_t>(span.first);
  const size_t end = static_cast<size_t>(span.last) + 1;
  // Each part must fit on its own: the channels size the parameters even when
  // the batch is empty.
  return Geometry::Dense(ShapeProduct("shape", dims, rank, 0, first),
                         ShapeProduct("shape", dims, rank, first, end),
                         ShapeProduct("shape", dims, rank, end, rank));
}

Geometry PlanGeometry(const std::vector<int64_t>& shape, const std::vector<int>& axes) {
  return PlanGeometry(shape.data(), shape.size(), axes.data(), axes.size());
}

Geometry PlanStridedGeometry(const std::vector<int64_t>& shape, const std::vector<int64_t>& strides,
                             const std::vector<int>& axes) {
  Geometry g = PlanGeometry(shape, axes);
  if (strides.size() != shape.size()) {
    throw Error(ErrorCode::kShapeMismatch, "strides has " + std::to_string(strides.size()) +
                                               " values; expected " + std::to_string(shape.size()) +
                                               " (one per axis)");
  }
  const std::vector<int> canonical = CanonicalAxes(axes, shape.size());
  const size_t first = static_cast<size_t>(canonical.front());
  const size_t last = static_cast<size_t>(canonical.back());
  // Within each span of axes, the stride of axis i must be the stride of the
  // next non-trivial axis times its size (axes of size 1 have no say).
  auto collapse = [&](size_t begin, size_t end, int64_t innermost, const char* what) {
    int64_t expected = innermost;
    int64_t span_stride = -1;
    for (size_t i = end; i-- > begin;) {
      if (strides[i] < 0) {
        throw Error(ErrorCode::kInvalidArgument, "strides[" + std::to_string(i) + "] is " +
                                                     std::to_string(strides[i]) +
                                                     "; expected a stride >= 0");
      }
      if (shape[i] == 1) continue;
      if (span_stride < 0) {
        span_stride = strides[i];
        if (innermost >= 0 && strides[i] != innermost) {
          throw Error(ErrorCode::kUnsupported, "strides[" + std::to_string(i) + "] is " +
                                                   std::to_string(strides[i]) + "; the " + what +
                                                   " axes must be contiguous (expected " +
                                                   std::to_string(innermost) + ")");
        }
      } else if (strides[i] != expected) {
        throw Error(ErrorCode::kUnsupported, "strides[" + std::to_string(i) + "] is " +
                                                 std::to_string(strides[i]) + "; the " + what +
                                                 " axes must collapse into one stride (expected " +
                                                 std::to_string(expected) + ")");
      }
      expected = strides[i] * shape[i];
    }
    return span_stride;
  };
  collapse(last + 1, shape.size(), 1, "inner");
  const int64_t channel_stride = collapse(first, last + 1, -1, "feature");
  const int64_t row_stride = collapse(0, first, -1, "outer");
  g.channel_stride = channel_stride < 0 ? g.inner : static_cast<size_t>(channel_stride);
  g.row_stride = row_stride < 0 ? g.row_elements() : static_cast<size_t>(row_stride);
  // Distinct elements must not share memory (y is written through the view).
  if (g.channels > 1 && g.channel_stride < g.inner) {
    throw Error(ErrorCode::kInvalidArgument,
                "the feature axes' stride " + std::to_string(g.channel_stride) +
                    " makes channels overlap; expected >= " + std::to_string(g.inner));
  }
  const size_t row_extent = (g.channels - 1) * g.channel_stride + g.inner;
  if (g.outer > 1 && g.row_stride < row_extent) {
    throw Error(ErrorCode::kInvalidArgument,
                "the outer axes' stride " + std::to_string(g.row_stride) +
                    " makes rows overlap; expected >= " + std::to_string(row_extent));
  }
  g.group_stride = g.outer * g.row_stride;
  return g;
}

std::vector<int64_t> ParameterShape(const std::vector<int64_t>& shape,
                                    const std::vector<int>& axes) {
  std::vector<int64_t> params;
  for (int a : CanonicalAxes(axes, shape.size())) params.push_back(shape[static_cast<size_t>(a)]);
  return params;
}

}  // namespace bnorm
