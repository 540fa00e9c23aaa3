// SPDX-License-Identifier: Apache-2.0
// bnorm.set_max_threads and the setting every call reads (see threads.h).
#include "threads.h"

#include <mutex>
#include <string>
#include <utility>

#include "errors.h"

namespace bnorm {
namespace python {
namespace {

std::mutex g_mutex;
std::shared_ptr<const Threads>& Current() {
  static std::shared_ptr<const Threads> current = std::make_shared<Threads>();
  return current;
}

void SetMaxThreads(int n) {
  if (n < 0) {
    ThrowValue("n is " + std::to_string(n) +
               "; expected 0 (all cores), 1 (serial) or a thread count");
  }
  auto threads = std::make_shared<Threads>();
  if (n == 1) {
    threads->exec = Execution::Serial();
  } else if (n > 1) {
    threads->arena = std::make_unique<tbb::task_arena>(n);
    threads->arena->initialize();
    threads->exec = Execution::Parallel(threads->arena.get());
  }
  std::lock_guard<std::mutex> lock(g_mutex);
  Current() = std::move(threads);
}

}  // namespace

std::shared_ptr<const Threads> CurrentThreads() {
  std::lock_guard<std::mutex> lock(g_mutex);
  return Current();
}

void RegisterThreads(pybind11::module_& m) {
  m.def("set_max_threads", &SetMaxThreads, pybind11::arg("n"),
        R"doc(Threads for every later call: 0 = all cores (oneTBB's global arena, the default),
1 = the calling thread only, N = an arena of N threads. Results are bitwise the same for every
choice: work is split into blocks that do not depend on the thread count.)doc");
}

}  // namespace python
}  // namespace bnorm
