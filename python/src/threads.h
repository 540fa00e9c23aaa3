// SPDX-License-Identifier: Apache-2.0
// The threads every call of the module runs on, chosen by bnorm.set_max_threads as the C ABI's
// bnorm_set_max_threads does: 0 = oneTBB's global arena (all cores), 1 = the calling thread,
// N = a module-owned arena of N threads.
#ifndef BNORM_PYTHON_THREADS_H_
#define BNORM_PYTHON_THREADS_H_

#include <oneapi/tbb/task_arena.h>
#include <pybind11/pybind11.h>

#include <memory>

#include "bnorm/execution.hpp"

namespace bnorm {
namespace python {

// One setting: the Execution and the arena it may point to. A call holds its own reference,
// so set_max_threads from another Python thread never frees an arena a kernel still runs on.
struct Threads {
  Execution exec;
  std::unique_ptr<tbb::task_arena> arena;
};

std::shared_ptr<const Threads> CurrentThreads();

void RegisterThreads(pybind11::module_& m);

}  // namespace python
}  // namespace bnorm

#endif  // BNORM_PYTHON_THREADS_H_
