// SPDX-License-Identifier: Apache-2.0
#include "src/ops/transpose.h"

#include <cstddef>

namespace bnorm {

void Transpose(const float* in, const std::vector<int64_t>& shape, const std::vector<int>& perm,
               float* out) {
  const size_t rank = shape.size();
  size_t total = 1;
  for (int64_t s : shape) total *= static_cast<size_t>(s);
  if (total == 0) return;
  std::vector<size_t> in_stride(rank);
  for (size_t k = rank, stride = 1; k-- > 0;) {
    in_stride[k] = stride;
    stride *= static_cast<size_t>(shape[k]);
  }
  // Output axis k walks input axis perm[k]; an odometer over the output index
  // keeps the input offset without divisions.
  std::vector<size_t> size(rank), stride(rank), index(rank, 0);
  for (size_t k = 0; k < rank; ++k) {
    size[k] = static_cast<size_t>(shape[static_cast<size_t>(perm[k])]);
    stride[k] = in_stride[static_cast<size_t>(perm[k])];
  }
  const size_t last = rank - 1;
  size_t offset = 0;
  for (size_t done = 0; done < total; done += size[last]) {
    for (size_t i = 0; i < size[last]; ++i) *out++ = in[offset + i * stride[last]];
    for (size_t k = last; k-- > 0;) {
      offset += stride[k];
      if (++index[k] < size[k]) break;
      offset -= index[k] * stride[k];
      index[k] = 0;
    }
  }
}

std::vector<int> InversePermutation(const std::vector<int>& perm) {
  std::vector<int> inverse(perm.size());
  for (size_t k = 0; k < perm.size(); ++k)
    inverse[static_cast<size_t>(perm[k])] = static_cast<int>(k);
  return inverse;
}

}  // namespace bnorm
