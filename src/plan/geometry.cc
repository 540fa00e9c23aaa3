// Shape + feature axes -> canonical [outer, channels, inner] geometry.
#include "bnorm/geometry.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

#include "bnorm/error.hpp"

namespace bnorm {
namespace {

std::string AxisRange(size_t rank) {
  const long long r = static_cast<long long>(rank);
  return "(valid: " + std::to_string(-r) + ".." + std::to_string(r - 1) + ")";
}

// a * b, or an error naming the shape when it does not fit in size_t.
size_t CheckedMul(size_t a, size_t b, const std::vector<int64_t>& shape) {
  if (a != 0 && b > std::numeric_limits<size_t>::max() / a) {
    std::string dims;
    for (int64_t s : shape) dims += (dims.empty() ? "" : ",") + std::to_string(s);
    throw Error("shape [" + dims + "] has more elements than fit in size_t");
  }
  return a * b;
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
  if (axes.empty()) throw Error("axis is an empty list; expected at least one axis");
  const long long r = static_cast<long long>(rank);
  std::vector<int> canonical;
  for (int axis : axes) {
    if (axis < -r || axis >= r) {
      throw Error("axis " + std::to_string(axis) + " is out of range for an input of rank " +
                  std::to_string(rank) + " " + AxisRange(rank));
    }
    const int a = axis < 0 ? static_cast<int>(axis + r) : axis;
    if (std::find(canonical.begin(), canonical.end(), a) != canonical.end()) {
      throw Error("axis " + std::to_string(axis) + " is duplicated in the axis list (rank " +
                  std::to_string(rank) + ")");
    }
    canonical.push_back(a);
  }
  std::sort(canonical.begin(), canonical.end());
  return canonical;
}

Geometry PlanGeometry(const std::vector<int64_t>& shape, const std::vector<int>& axes) {
  if (shape.empty()) throw Error("input rank is 0; expected a tensor of rank >= 1");
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0) {
      throw Error("shape[" + std::to_string(i) + "] is " + std::to_string(shape[i]) +
                  "; expected a size >= 0");
    }
  }
  const std::vector<int> canonical = CanonicalAxes(axes, shape.size());
  for (size_t i = 1; i < canonical.size(); ++i) {
    if (canonical[i] != canonical[i - 1] + 1) {
      throw Error("axis list is not contiguous (axes " + std::to_string(canonical[i - 1]) +
                  " and " + std::to_string(canonical[i]) +
                  " are separated); bnorm needs adjacent feature axes");
    }
  }
  const size_t first = static_cast<size_t>(canonical.front());
  const size_t last = static_cast<size_t>(canonical.back());
  size_t outer = 1, channels = 1, inner = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    const size_t s = static_cast<size_t>(shape[i]);
    if (i < first) {
      outer = CheckedMul(outer, s, shape);
    } else if (i <= last) {
      channels = CheckedMul(channels, s, shape);
    } else {
      inner = CheckedMul(inner, s, shape);
    }
  }
  // No buffer of 4-byte elements can be larger than PTRDIFF_MAX bytes; a shape
  // beyond that (or with a single axis group beyond it, even when another axis
  // is 0) describes memory that cannot exist.
  const size_t limit = static_cast<size_t>(PTRDIFF_MAX) / sizeof(float);
  const size_t elements = CheckedMul(CheckedMul(outer, channels, shape), inner, shape);
  if (elements > limit || outer > limit || channels > limit || inner > limit) {
    std::string dims;
    for (int64_t s : shape) dims += (dims.empty() ? "" : ",") + std::to_string(s);
    throw Error("shape [" + dims + "] is larger than any buffer can be (at most " +
                std::to_string(limit) + " elements)");
  }
  return Geometry::Dense(outer, channels, inner);
}

Geometry PlanStridedGeometry(const std::vector<int64_t>& shape,
                             const std::vector<int64_t>& strides, const std::vector<int>& axes) {
  Geometry g = PlanGeometry(shape, axes);
  if (strides.size() != shape.size()) {
    throw Error("strides has " + std::to_string(strides.size()) + " values; expected " +
                std::to_string(shape.size()) + " (one per axis)");
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
        throw Error("strides[" + std::to_string(i) + "] is " + std::to_string(strides[i]) +
                    "; expected a stride >= 0");
      }
      if (shape[i] == 1) continue;
      if (span_stride < 0) {
        span_stride = strides[i];
        if (innermost >= 0 && strides[i] != innermost) {
          throw Error("strides[" + std::to_string(i) + "] is " + std::to_string(strides[i]) +
                      "; the " + what + " axes must be contiguous (expected " +
                      std::to_string(innermost) + ")");
        }
      } else if (strides[i] != expected) {
        throw Error("strides[" + std::to_string(i) + "] is " + std::to_string(strides[i]) +
                    "; the " + what + " axes must collapse into one stride (expected " +
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
    throw Error("the feature axes' stride " + std::to_string(g.channel_stride) +
                " makes channels overlap; expected >= " + std::to_string(g.inner));
  }
  const size_t row_extent = (g.channels - 1) * g.channel_stride + g.inner;
  if (g.outer > 1 && g.row_stride < row_extent) {
    throw Error("the outer axes' stride " + std::to_string(g.row_stride) +
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
