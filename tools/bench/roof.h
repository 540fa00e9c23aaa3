// SPDX-License-Identifier: Apache-2.0
// The copy roof: a STREAM-style copy of the same buffer with the same threads, the bandwidth a
// memory-bound pass cannot beat (DESIGN.md, "Memory traffic and the roof").
#ifndef BNORM_TOOLS_BENCH_ROOF_H_
#define BNORM_TOOLS_BENCH_ROOF_H_

#include <cstddef>
#include <string>
#include <vector>

#include "tools/bench/threads.h"

namespace bnorm {
namespace bench {

using CopyFn = void (*)(const float* src, float* dst, size_t n);

// The copies whose better median is the roof: memcpy and, where the CPU has
// them, streaming stores.
struct Copy {
  CopyFn fn;
  std::string name;
};
std::vector<Copy> RoofCopies();

// Copies n floats from src to dst in chunks that the threads take as they
// come, as bnorm's blocks are: a thread the OS keeps waiting then delays
// neither, where a static split would make the roof hostage to it. Like bnorm,
// a copy below 1 MiB stays on the calling thread.
void ParallelCopy(CopyFn fn, const float* src, float* dst, size_t n, const Threads& threads);

struct Roof {
  double gbps = 0.0;  // the better of the copies
  double memcpy_gbps = 0.0;
  double stream_gbps = 0.0;
  std::string copy;  // which copy that was
};

}  // namespace bench
}  // namespace bnorm

#endif  // BNORM_TOOLS_BENCH_ROOF_H_
