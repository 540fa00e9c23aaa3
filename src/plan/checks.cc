// SPDX-License-Identifier: Apache-2.0
// The tensor checks: element counts, byte sizes, alignment and overlap.
#include "src/plan/checks.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>

#include "bnorm/error.hpp"
#include "src/plan/format.h"

namespace bnorm {

size_t ShapeElements(const char* name, const int64_t* dims, size_t rank) {
  for (size_t i = 0; i < rank; ++i) {
    if (dims[i] < 0) {
      throw Error(ErrorCode::kInvalidArgument, std::string(name) + "[" + std::to_string(i) +
                                                   "] is " + std::to_string(dims[i]) +
                                                   "; expected a size >= 0");
    }
  }
  return ShapeProduct(name, dims, rank, 0, rank);
}

size_t ShapeProduct(const char* name, const int64_t* dims, size_t rank, size_t begin, size_t end) {
  size_t product = 1;
  bool overflow = false, empty = false;
  for (size_t i = begin; i < end; ++i) {
    empty |= dims[i] == 0;
    overflow |= __builtin_mul_overflow(product, static_cast<size_t>(dims[i]), &product);
  }
  // A wrapped product may be 0 without any zero size, and a zero size makes
  // the product 0 however large the others are.
  if (empty) return 0;
  if (overflow) {
    throw Error(ErrorCode::kOverflow, std::string(name) + " " + FormatList(dims, rank) +
                                          " has more elements than fit in size_t");
  }
  return product;
}

size_t TensorBytes(const char* name, const int64_t* dims, size_t rank, size_t elements,
                   DType type) {
  size_t bytes = 0;
  const auto tensor = [&] {
    return std::string(name) + " " + FormatList(dims, rank) + " of " + Name(type);
  };
  if (__builtin_mul_overflow(elements, SizeOf(type), &bytes)) {
    throw Error(ErrorCode::kOverflow, tensor() + " is more bytes than fit in size_t");
  }
  if (bytes > static_cast<size_t>(PTRDIFF_MAX)) {
    throw Error(ErrorCode::kOverflow, tensor() + " is " + std::to_string(bytes) +
                                          " bytes, more than any buffer can hold (at most " +
                                          std::to_string(PTRDIFF_MAX) + ")");
  }
  return bytes;
}

namespace {

void CheckPresent(const char* name, const void* data, size_t count, const char* what) {
  if (data != nullptr) return;
  char text[160];
  std::snprintf(text, sizeof(text), "%s is null; expected %zu %s", name, count, what);
  throw Error(ErrorCode::kNullPointer, text);
}

}  // namespace

void CheckTensorPresent(const char* name, const void* data, size_t count) {
  CheckPresent(name, data, count, "values");
}

void CheckPerChannelPresent(const char* name, const void* data, size_t channels) {
  CheckPresent(name, data, channels, "per-channel values");
}

void CheckAligned(const char* name, const void* data, DType type) {
  if (reinterpret_cast<uintptr_t>(data) % SizeOf(type) == 0) return;
  char text[160];
  std::snprintf(text, sizeof(text), "%s (%p) is not aligned to its element size (%zu bytes for %s)",
                name, data, SizeOf(type), Name(type));
  throw Error(ErrorCode::kInvalidArgument, text);
}

void CheckInPlaceOrDisjoint(const char* in_name, const void* in, const char* out_name,
                            const void* out, size_t bytes) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(in);
  const uintptr_t b = reinterpret_cast<uintptr_t>(out);
  if (a == b || (a < b ? b - a >= bytes : a - b >= bytes)) return;
  char text[240];
  std::snprintf(text, sizeof(text),
                "%s (%p) and %s (%p) overlap without being the same buffer (within %zu bytes); "
                "expected %s == %s (in place) or disjoint buffers",
                in_name, in, out_name, out, bytes, out_name, in_name);
  throw Error(ErrorCode::kInvalidArgument, text);
}

void CheckEpsilon(double epsilon) {
  if (!(std::isfinite(epsilon) && epsilon > 0.0)) {
    throw Error(ErrorCode::kInvalidArgument,
                "epsilon is " + std::to_string(epsilon) + "; expected a finite value > 0");
  }
}

void CheckHasValues(const Geometry& g, const char* who_needs) {
  if (g.reduced() == 0 || g.channels == 0) {
    throw Error(ErrorCode::kInvalidArgument, "x has " + std::to_string(g.reduced()) +
                                                 " values per channel and " +
                                                 std::to_string(g.channels) + " channels; " +
                                                 who_needs + " at least one of each");
  }
}

}  // namespace bnorm
