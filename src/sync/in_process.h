// SPDX-License-Identifier: Apache-2.0
// An in-process Communicator whose ranks are std::threads of one process: the
// tests of every build (and tools that want several ranks without MPI) run a
// synchronized layer over 2, 3 or 4 ranks with it. It lives in bnorm_testing,
// not in the installed library: an engine has its own transport (contrib/mpi,
// or the C ABI's callbacks), and threads of one process sharing a batch are
// better served by one layer over the whole batch.
#ifndef BNORM_SRC_SYNC_IN_PROCESS_H_
#define BNORM_SRC_SYNC_IN_PROCESS_H_

#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <vector>

#include "bnorm/communicator.hpp"

namespace bnorm {

// `size` ranks sharing one rendezvous. A collective that waits longer than
// `timeout` for the other ranks throws bnorm::Error on the waiting rank and
// marks the group broken (every later collective throws): a test of a hang
// fails instead of hanging.
class InProcessGroup {
 public:
  explicit InProcessGroup(int size,
                          std::chrono::milliseconds timeout = std::chrono::milliseconds(60000));
  // The communicator of rank r (0..size-1): used by one thread at a time.
  std::shared_ptr<Communicator> Rank(int r) const;

  // The rendezvous the ranks' communicators share (in_process.cc).
  struct Shared;

 private:
  std::shared_ptr<Shared> shared_;
};

// Runs body(rank, communicator) for every rank of a new group, each on its own
// std::thread, and returns when all have returned: each rank's exception (null
// when it returned normally).
std::vector<std::exception_ptr> RunRanks(
    int size, const std::function<void(int rank, const std::shared_ptr<Communicator>&)>& body);

}  // namespace bnorm

#endif  // BNORM_SRC_SYNC_IN_PROCESS_H_
