// SPDX-License-Identifier: Apache-2.0
// The ranks of a synchronized bnorm-run: MPI when bnorm-run is built with
// bnorm_mpi (BNORM_RUN_MPI), one rank otherwise.
#include "tools/run/ranks.h"

#include <string>
#include <vector>

#ifdef BNORM_RUN_MPI
#include "bnorm/mpi.hpp"
#endif

namespace bnorm {
namespace run {

Ranks JoinRanks(int* argc, char*** argv) {
  Ranks ranks;
#ifdef BNORM_RUN_MPI
  MPI_Init(argc, argv);
  ranks.communicator = MakeMpiCommunicator(MPI_COMM_WORLD);
  ranks.rank = ranks.communicator->rank();
  ranks.size = ranks.communicator->size();
#else
  (void)argc;
  (void)argv;
#endif
  return ranks;
}

void LeaveRanks(Ranks* ranks) {
  ranks->communicator.reset();
#ifdef BNORM_RUN_MPI
  MPI_Finalize();
#endif
}

std::vector<std::string> WithRank(int argc, char** argv, int rank) {
  static const std::string kPlaceholder = "{rank}";
  const std::string value = std::to_string(rank);
  std::vector<std::string> args;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    for (size_t at = arg.find(kPlaceholder); at != std::string::npos;
         at = arg.find(kPlaceholder, at + value.size())) {
      arg.replace(at, kPlaceholder.size(), value);
    }
    args.push_back(arg);
  }
  return args;
}

}  // namespace run
}  // namespace bnorm
