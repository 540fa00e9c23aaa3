// SPDX-License-Identifier: Apache-2.0
// The checks every entry point makes on a tensor before reading or writing it:
// its shape's element count, its byte size, its alignment and the overlap of
// input and output. Each throws bnorm::Error with the code of the failure and
// allocates nothing when the tensor passes.
#ifndef BNORM_SRC_PLAN_CHECKS_H_
#define BNORM_SRC_PLAN_CHECKS_H_

#include <cstddef>
#include <cstdint>

#include "bnorm/dtype.hpp"
#include "bnorm/geometry.hpp"

namespace bnorm {

// The element count of the shape `name` = dims[0, rank): every size >= 0
// (kInvalidArgument, naming name[i]) and a count that fits in size_t
// (kOverflow). A zero size makes the count 0 however large the others are.
size_t ShapeElements(const char* name, const int64_t* dims, size_t rank);

// The product of dims[begin, end) of a shape ShapeElements accepted: one part
// of its geometry (outer rows, channels, inner values), which must fit in
// size_t on its own even when another part is 0 (kOverflow, naming the shape).
size_t ShapeProduct(const char* name, const int64_t* dims, size_t rank, size_t begin, size_t end);

// The byte size of `elements` values of `type` in the shape `name`: kOverflow
// when it does not fit in size_t or exceeds PTRDIFF_MAX, the largest object
// there can be.
size_t TensorBytes(const char* name, const int64_t* dims, size_t rank, size_t elements, DType type);

// A required pointer: null is kNullPointer, "name is null; expected <count> values" for a tensor
// of `count` elements, or "... <count> per-channel values" for a per-channel array.
void CheckTensorPresent(const char* name, const void* data, size_t count);
// epsilon finite and > 0 (the engine calls' own epsilon arguments).
void CheckEpsilon(double epsilon);
// At least one value per channel and one channel, which `who_needs` ("moments
// need", "training needs", ...) says in the message.
void CheckHasValues(const Geometry& g, const char* who_needs);
void CheckPerChannelPresent(const char* name, const void* data, size_t channels);

// Data of `type` must sit at a multiple of its element size (kInvalidArgument).
void CheckAligned(const char* name, const void* data, DType type);

// The output `out_name` may be the input `in_name` itself (every element is read
// before it is written) or a disjoint buffer; any other overlap within `bytes`
// would read values already overwritten (kInvalidArgument).
void CheckInPlaceOrDisjoint(const char* in_name, const void* in, const char* out_name,
                            const void* out, size_t bytes);
// The forward's spelling: input x, output y.
inline void CheckInPlaceOrDisjoint(const void* x, const void* y, size_t bytes) {
  CheckInPlaceOrDisjoint("x", x, "y", y, bytes);
}

}  // namespace bnorm

#endif  // BNORM_SRC_PLAN_CHECKS_H_
