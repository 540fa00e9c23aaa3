// SPDX-License-Identifier: Apache-2.0
// MpiCommunicator: bnorm::Communicator over MPI. AllGather is MPI_Allgather.
// The statistics' merge and the backward sums all-gather (every rank then
// merges the same bytes in rank order: bitwise the same everywhere) up to
// gather_limit_bytes received; above it they run MPI_Reduce to rank 0 with a
// user-defined non-commutative MPI_Op (bnorm::MergeMoments / AddInRankOrder:
// MPI keeps the operands in rank order) and MPI_Bcast the result, so every
// rank still holds rank 0's bits. Not MPI_Allreduce: MPI does not promise
// every rank the same bits from it.
#include <climits>
#include <string>

#include "bnorm/error.hpp"
#include "bnorm/mpi.hpp"

namespace bnorm {
namespace {

void Check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(rc, text, &length) != MPI_SUCCESS) length = 0;
  throw Error(ErrorCode::kInvalidArgument,
              std::string(call) + " failed: " +
                  (length > 0 ? std::string(text, static_cast<size_t>(length))
                              : "error " + std::to_string(rc)));
}

int CountOf(size_t n, const char* what) {
  if (n > static_cast<size_t>(INT_MAX)) {
    throw Error(ErrorCode::kOverflow, std::string(what) + " is " + std::to_string(n) +
                                          "; MPI counts are at most " + std::to_string(INT_MAX));
  }
  return static_cast<int>(n);
}

// MPI user functions: inout = in (lower ranks) then inout (higher ranks).
void MergeOp(void* in, void* inout, int* len, MPI_Datatype*) {
  MergeMoments(static_cast<const double*>(in), static_cast<double*>(inout),
               static_cast<size_t>(*len));
}

void AddOp(void* in, void* inout, int* len, MPI_Datatype*) {
  AddInRankOrder(static_cast<const double*>(in), static_cast<double*>(inout),
                 static_cast<size_t>(*len));
}

class MpiCommunicator : public Communicator {
 public:
  MpiCommunicator(MPI_Comm comm, size_t gather_limit_bytes) : limit_(gather_limit_bytes) {
    Check(MPI_Comm_dup(comm, &comm_), "MPI_Comm_dup");
    Check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    Check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
    Check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
    Check(MPI_Type_contiguous(3, MPI_DOUBLE, &record_), "MPI_Type_contiguous");
    Check(MPI_Type_commit(&record_), "MPI_Type_commit");
    Check(MPI_Op_create(&MergeOp, 0, &merge_), "MPI_Op_create");
    Check(MPI_Op_create(&AddOp, 0, &add_), "MPI_Op_create");
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) return;  // MPI has released everything itself
    MPI_Op_free(&merge_);
    MPI_Op_free(&add_);
    MPI_Type_free(&record_);
    MPI_Comm_free(&comm_);
  }
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void AllGather(const void* send, size_t bytes, void* receive) override {
    const int count = CountOf(bytes, "the all-gather's bytes per rank");
    CountOf(bytes * static_cast<size_t>(size_), "the all-gather's bytes");
    Check(MPI_Allgather(send, count, MPI_BYTE, receive, count, MPI_BYTE, comm_), "MPI_Allgather");
  }

  void AllMergeMoments(double* records, size_t groups) override {
    if (Gathers(groups * 3 * sizeof(double))) return Communicator::AllMergeMoments(records, groups);
    ReduceAndBroadcast(records, groups, record_, merge_);
  }

  void AllSumInRankOrder(double* values, size_t count) override {
    if (Gathers(count * sizeof(double))) return Communicator::AllSumInRankOrder(values, count);
    ReduceAndBroadcast(values, count, MPI_DOUBLE, add_);
  }

 private:
  bool Gathers(size_t bytes_per_rank) const {
    return bytes_per_rank * static_cast<size_t>(size_) <= limit_;
  }

  void ReduceAndBroadcast(double* values, size_t count, MPI_Datatype type, MPI_Op op) {
    const int n = CountOf(count, "the reduction's values");
    if (rank_ == 0) {
      Check(MPI_Reduce(MPI_IN_PLACE, values, n, type, op, 0, comm_), "MPI_Reduce");
    } else {
      Check(MPI_Reduce(values, nullptr, n, type, op, 0, comm_), "MPI_Reduce");
    }
    Check(MPI_Bcast(values, n, type, 0, comm_), "MPI_Bcast");
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  MPI_Datatype record_ = MPI_DATATYPE_NULL;
  MPI_Op merge_ = MPI_OP_NULL, add_ = MPI_OP_NULL;
  int rank_ = 0, size_ = 1;
  size_t limit_;
};

}  // namespace

std::shared_ptr<Communicator> MakeMpiCommunicator(MPI_Comm comm, size_t gather_limit_bytes) {
  return std::make_shared<MpiCommunicator>(comm, gather_limit_bytes);
}

}  // namespace bnorm
