// SPDX-License-Identifier: Apache-2.0
// bnorm::Communicator: how a synchronized BatchNorm (Keras' synchronized=True)
// reaches the other ranks of a data-parallel job. It is an interface with no
// transport in it, so that any engine can plug in its own: contrib/mpi's
// MakeMpiCommunicator (bnorm/mpi.hpp), gloo, NCCL's host path or a training
// framework's process group; the C ABI takes the same as a struct of
// callbacks (bnorm_communicator in bnorm.h).
//
// The layer takes it with BatchNorm::set_communicator rather than through
// Execution: the ranks a layer spans belong to the layer (as a Keras layer
// belongs to its distribution strategy) and the layer counts its collective
// calls, which must line up with the same calls on every rank. Execution is
// per call and only says how this process uses its threads.
#ifndef BNORM_COMMUNICATOR_HPP_
#define BNORM_COMMUNICATOR_HPP_

#include <cstddef>

#include "bnorm/export.h"

namespace bnorm {

class BNORM_API Communicator {
 public:
  virtual ~Communicator();

  // This process's rank in 0..size()-1 and the number of ranks (>= 1).
  virtual int rank() const = 0;
  virtual int size() const = 0;

  // Collective: every rank passes `bytes` bytes in `send` (the same `bytes` on
  // every rank); `receive` (size() * bytes) gets rank r's bytes at r * bytes.
  // Throws bnorm::Error when the transport fails.
  virtual void AllGather(const void* send, size_t bytes, void* receive) = 0;

  // Collective: `groups` moments records (count, mean, M2), three doubles
  // each, become on every rank the merge over ranks 0, 1, ..., size()-1 in
  // that order (Chan's formula, MergeMoments below). Every rank must end with
  // bitwise the same result. This default all-gathers and merges on every
  // rank; a transport may override it with a reduction (contrib/mpi does
  // above a size, README "Synchronized batch norm").
  virtual void AllMergeMoments(double* records, size_t groups);

  // Collective: `count` doubles become on every rank their sum over ranks,
  // added in rank order ((v0 + v1) + v2) + ...; bitwise the same on every
  // rank. The default all-gathers and adds on every rank.
  virtual void AllSumInRankOrder(double* values, size_t count);
};

// The operators of the two collectives, for transports that reduce instead of
// gathering: `earlier` holds the records of lower ranks, `later` those of
// higher ranks and receives the result (an MPI user function's invec and
// inoutvec). Plain double arithmetic, compiled without FMA contraction and
// outside SIMD dispatch, so every CPU gives the same bits. A record with count
// 0 is the identity.
BNORM_API void MergeMoments(const double* earlier, double* later, size_t groups);
BNORM_API void AddInRankOrder(const double* earlier, double* later, size_t count);

}  // namespace bnorm

#endif  // BNORM_COMMUNICATOR_HPP_
