// SPDX-License-Identifier: Apache-2.0
// A generic strided transpose, for feature axes that are not adjacent: the
// layer permutes them to the end, works channels-last, and permutes back.
#ifndef BNORM_SRC_TRANSPOSE_H_
#define BNORM_SRC_TRANSPOSE_H_

#include <cstdint>
#include <vector>

namespace bnorm {

// `in` is a C-order tensor of `shape`; `out` receives the C-order tensor of
// shape {shape[perm[0]], ..., shape[perm[r-1]]} whose element (i0, ..., ir-1)
// is the input element with index ik on axis perm[k]. in and out must not
// overlap.
void Transpose(const float* in, const std::vector<int64_t>& shape, const std::vector<int>& perm,
               float* out);

// The permutation that undoes `perm`.
std::vector<int> InversePermutation(const std::vector<int>& perm);

}  // namespace bnorm

#endif  // BNORM_SRC_TRANSPOSE_H_
