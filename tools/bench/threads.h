// SPDX-License-Identifier: Apache-2.0
// One thread count of a bnorm-bench run: the Execution bnorm gets and the oneTBB arena the copy
// roof uses, so that both run on the same threads.
#ifndef BNORM_TOOLS_BENCH_THREADS_H_
#define BNORM_TOOLS_BENCH_THREADS_H_

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/task_arena.h>

#include <cstddef>
#include <memory>

#include "bnorm/execution.hpp"

namespace bnorm {
namespace bench {

class Threads {
 public:
  explicit Threads(int count) : count_(count) {
    if (count > 1) arena_ = std::make_unique<tbb::task_arena>(count);
  }
  int count() const { return count_; }
  Execution execution() const {
    return count_ == 1 ? Execution::Serial() : Execution::Parallel(arena_.get());
  }
  // Runs body(i) for i in [0, chunks), on the arena's threads when there are
  // several chunks.
  template <class Body>
  void ForEachChunk(size_t chunks, const Body& body) const {
    if (count_ == 1 || chunks < 2) {
      for (size_t i = 0; i < chunks; ++i) body(i);
      return;
    }
    arena_->execute([&] {
      tbb::parallel_for(tbb::blocked_range<size_t>(0, chunks),
                        [&](const tbb::blocked_range<size_t>& range) {
                          for (size_t i = range.begin(); i != range.end(); ++i) body(i);
                        });
    });
  }

 private:
  int count_;
  std::unique_ptr<tbb::task_arena> arena_;
};

}  // namespace bench
}  // namespace bnorm

#endif  // BNORM_TOOLS_BENCH_THREADS_H_
