// SPDX-License-Identifier: Apache-2.0
// bnorm::MakeMpiCommunicator: a synchronized BatchNorm's ranks over MPI
// (library bnorm_mpi, find_package(bnorm COMPONENTS mpi) or bnorm-mpi.pc).
// The core never includes mpi.h; this adapter does.
#ifndef BNORM_MPI_HPP_
#define BNORM_MPI_HPP_

// The C bindings only: MPI's deprecated C++ bindings would need their own
// library (libmpi_cxx) at link time.
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include <cstddef>
#include <memory>

#include "bnorm/communicator.hpp"

namespace bnorm {

// Up to this many bytes received per collective (R · 3 · groups · 8 for the
// statistics), the collectives all-gather and every rank merges in rank order;
// above it they reduce with a user-defined non-commutative MPI_Op to rank 0
// and broadcast the result (README, "Synchronized batch norm").
constexpr size_t kMpiGatherLimitBytes = size_t{1} << 20;

// A Communicator over a duplicate of `comm` (MPI_Comm_dup: bnorm's messages
// never mix with the caller's) with MPI_ERRORS_RETURN, so that an MPI failure
// is a bnorm::Error with MPI_Error_string's text rather than an abort. MPI
// must be initialized; release every holder (layers included) before
// MPI_Finalize. `gather_limit_bytes` is kMpiGatherLimitBytes unless a test
// wants the reduction path at small sizes. Collective over `comm`.
std::shared_ptr<Communicator> MakeMpiCommunicator(MPI_Comm comm,
                                                  size_t gather_limit_bytes = kMpiGatherLimitBytes);

}  // namespace bnorm

#endif  // BNORM_MPI_HPP_
