// SPDX-License-Identifier: Apache-2.0
// Scratch arrays of a call: the per-block partial results of a reduction (moments, backward
// sums), merged in block order afterwards, and a training call's per-channel coefficients. On
// the stack when they are few, so that a cache-resident tensor's call allocates nothing; on the
// heap otherwise. Left uninitialized: every user writes all of its values before reading them.
#ifndef BNORM_SRC_PARALLEL_PARTIALS_H_
#define BNORM_SRC_PARALLEL_PARTIALS_H_

#include <cstddef>
#include <memory>

namespace bnorm {

// Channels per task of a channels-last block merge: 64 doubles of each block's partials are
// whole cache lines. Up to 1024 channels of one block fit on the stack.
constexpr size_t kMergeChannels = 64;

// n values of T, the first kOnStack of any count on the stack.
template <class T, size_t kOnStack>
class Scratch {
 public:
  explicit Scratch(size_t n) : heap_(n > kOnStack ? new T[n] : nullptr) {}
  T* get() { return heap_ != nullptr ? heap_.get() : on_stack_; }

 private:
  T on_stack_[kOnStack];
  std::unique_ptr<T[]> heap_;
};

using Partials = Scratch<double, 2048>;  // 16 KiB

// A training call's per-channel float coefficients: 4 arrays of up to 1024 channels, 16 KiB.
using ChannelScratch = Scratch<float, 4096>;

}  // namespace bnorm

#endif  // BNORM_SRC_PARALLEL_PARTIALS_H_
