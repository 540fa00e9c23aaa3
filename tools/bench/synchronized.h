// SPDX-License-Identifier: Apache-2.0
// bnorm-bench --synchronized: the cost of synchronizing a training step across ranks.
#ifndef BNORM_TOOLS_BENCH_SYNCHRONIZED_H_
#define BNORM_TOOLS_BENCH_SYNCHRONIZED_H_

#include "tools/bench/settings.h"

namespace bnorm {
namespace bench {

// Under mpirun (a build with MPI; one rank without): per case, the median time of a
// synchronized training step (Forward in training mode, then Backward) on this rank's local
// batch against the same step unsynchronized, each rank on one thread, and the latency of the
// collectives alone (header exchange and merge) for C = 64 .. 2048. Rank 0 prints. Returns the
// exit status.
int RunSynchronized(const Options& o, int* argc, char*** argv);

}  // namespace bench
}  // namespace bnorm

#endif  // BNORM_TOOLS_BENCH_SYNCHRONIZED_H_
