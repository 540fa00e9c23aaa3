// SPDX-License-Identifier: Apache-2.0
// A rank that dies is the launcher's to report: rank 1 exits at once (no
// MPI_Finalize) while rank 0 enters a synchronized training call and waits in
// its header exchange. mpirun must then end the job with a non-zero status
// (the ctest case checks it does so well inside its timeout), not hang.

#include <cstdlib>
#include <vector>

#include "bnorm/batch_norm.hpp"
#include "bnorm/mpi.hpp"

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  bnorm::Options o;
  o.synchronized = true;
  bnorm::BatchNorm layer(o);
  layer.set_communicator(bnorm::MakeMpiCommunicator(MPI_COMM_WORLD));
  if (rank == 1) std::exit(3);
  const std::vector<float> x(8, 1.0f);
  std::vector<float> y(8);
  layer.Forward(x.data(), y.data(), {4, 2}, true);
  MPI_Finalize();
  return 0;
}
