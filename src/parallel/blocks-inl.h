// SPDX-License-Identifier: Apache-2.0
// Template body of ForEachBlock (kept out of blocks.h so the plan reads first).
#ifndef BNORM_SRC_BLOCKS_INL_H_
#define BNORM_SRC_BLOCKS_INL_H_

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/task_arena.h>

namespace bnorm {

// Below this many elements (1 MiB of floats) a call stays on the calling thread.
constexpr size_t kSerialElements = size_t{1} << 18;

template <class Body>
void ForEachBlock(size_t count, size_t elements, const Execution& exec, const Body& body) {
  if (exec.mode == Execution::Mode::kSerial || elements < kSerialElements || count < 2) {
    for (size_t i = 0; i < count; ++i) body(i);
    return;
  }
  auto run = [&] {
    tbb::parallel_for(tbb::blocked_range<size_t>(0, count),
                      [&](const tbb::blocked_range<size_t>& range) {
                        for (size_t i = range.begin(); i != range.end(); ++i) body(i);
                      });
  };
  if (exec.arena != nullptr) {
    exec.arena->execute(run);
  } else {
    run();
  }
}

}  // namespace bnorm

#endif  // BNORM_SRC_BLOCKS_INL_H_
