// SPDX-License-Identifier: Apache-2.0
// How a call may use threads. Results never depend on this choice: work is
// split into blocks that do not depend on the thread count, and partial
// statistics merge in block order, so every mode gives bitwise equal results.
#ifndef BNORM_EXECUTION_HPP_
#define BNORM_EXECUTION_HPP_

#include <oneapi/tbb/task_arena.h>

namespace bnorm {

struct Execution {
  enum class Mode {
    kSerial,    // everything on the calling thread
    kParallel,  // oneTBB: the caller's arena if given, else the global one
  };
  Mode mode = Mode::kParallel;
  tbb::task_arena* arena = nullptr;  // not owned; used with kParallel

  static Execution Serial() { return Execution{Mode::kSerial, nullptr}; }
  static Execution Parallel(tbb::task_arena* arena = nullptr) {
    return Execution{Mode::kParallel, arena};
  }
};

}  // namespace bnorm

#endif  // BNORM_EXECUTION_HPP_
