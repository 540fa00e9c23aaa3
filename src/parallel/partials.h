// SPDX-License-Identifier: Apache-2.0
// The per-block partial results of a reduction (moments, backward sums), merged in block order
// afterwards. On the stack when they are few, so that reducing a cache-resident tensor allocates
// nothing; on the heap otherwise. Left uninitialized: every kernel call writes all of its
// block's values.
#ifndef BNORM_SRC_PARALLEL_PARTIALS_H_
#define BNORM_SRC_PARALLEL_PARTIALS_H_

#include <cstddef>
#include <memory>

namespace bnorm {

// Channels per task of a channels-last block merge: 64 doubles of each block's partials are
// whole cache lines. Up to 1024 channels of one block fit on the stack.
constexpr size_t kMergeChannels = 64;

class Partials {
 public:
  explicit Partials(size_t n) : heap_(n > kOnStack ? new double[n] : nullptr) {}
  double* get() { return heap_ != nullptr ? heap_.get() : on_stack_; }

 private:
  static constexpr size_t kOnStack = 2048;  // 16 KiB
  double on_stack_[kOnStack];
  std::unique_ptr<double[]> heap_;
};

}  // namespace bnorm

#endif  // BNORM_SRC_PARALLEL_PARTIALS_H_
