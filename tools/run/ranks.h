// SPDX-License-Identifier: Apache-2.0
// bnorm-run's ranks under --synchronized true: MPI's (when the build has MPI:
// under mpirun every process is a rank of MPI_COMM_WORLD), else one rank, and
// "{rank}" in the arguments (the paths of --x, --out, the parameter files and
// any other path flag) replaced by the process's rank, so that each rank reads
// its own slice and writes its own outputs.
#ifndef BNORM_TOOLS_RUN_RANKS_H_
#define BNORM_TOOLS_RUN_RANKS_H_

#include <memory>
#include <string>
#include <vector>

#include "bnorm/communicator.hpp"

namespace bnorm {
namespace run {

struct Ranks {
  int rank = 0;
  int size = 1;
  std::shared_ptr<Communicator> communicator;  // null for one rank
};

// Joins the job's ranks (MPI_Init with MPI; one rank without). Call once.
Ranks JoinRanks(int* argc, char*** argv);
// After a successful run: MPI_Finalize with MPI (the communicator released
// first). A failing rank returns without it, so that mpirun ends the job.
void LeaveRanks(Ranks* ranks);

// Every argument with each "{rank}" replaced by `rank`.
std::vector<std::string> WithRank(int argc, char** argv, int rank);

}  // namespace run
}  // namespace bnorm

#endif  // BNORM_TOOLS_RUN_RANKS_H_
