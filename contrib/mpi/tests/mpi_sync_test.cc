// SPDX-License-Identifier: Apache-2.0
// Synchronized batch norm over real MPI ranks (run under mpirun with 1, 2 and
// 4 ranks): each rank's slice against the float64 Keras oracle on the
// concatenated batch, the summed dγ and dβ, bitwise equal statistics across
// ranks (all-gathered), the reduction path above the gather limit, and a
// local error on one rank as the same bnorm::Error on every rank.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bnorm/batch_norm.hpp"
#include "bnorm/error.hpp"
#include "bnorm/mpi.hpp"
#include "tests/sync_util.h"

namespace bnorm {
namespace test {
namespace {

int WorldSize() {
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
}

int WorldRank() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

// Uneven slices with an empty one (rank 1) from 2 ranks on; equal ones for ghosts.
SyncCase Case(bool equal, Shape sample = {3}) {
  SyncCase c;
  c.sample = std::move(sample);
  for (int r = 0; r < WorldSize(); ++r) {
    c.batches.push_back(equal ? 4 : r == 1 ? 0 : 5 + 3 * r);
  }
  return c;
}

// Every rank's copy of `mine` (channels floats each), via the communicator.
std::vector<std::vector<float>> Gather(Communicator& comm, const std::vector<float>& mine) {
  std::vector<float> all(mine.size() * static_cast<size_t>(comm.size()));
  comm.AllGather(mine.data(), mine.size() * sizeof(float), all.data());
  std::vector<std::vector<float>> out;
  for (int r = 0; r < comm.size(); ++r) {
    out.emplace_back(all.begin() + r * mine.size(), all.begin() + (r + 1) * mine.size());
  }
  return out;
}

void ExpectMatchesOneProcess(const SyncCase& c, size_t gather_limit = kMpiGatherLimitBytes) {
  const std::shared_ptr<Communicator> comm = MakeMpiCommunicator(MPI_COMM_WORLD, gather_limit);
  const int rank = comm->rank();
  const RankResult mine = RunRank(c, rank, comm);
  const SyncReference ref = ReferenceOf(c);
  ExpectRankMatches(c, rank, mine, ref);
  // The other ranks' gradients and statistics, to sum and to compare bits.
  std::vector<RankResult> all(static_cast<size_t>(comm->size()));
  const auto dgamma = Gather(*comm, mine.dgamma), dbeta = Gather(*comm, mine.dbeta);
  const auto mean = Gather(*comm, mine.moving_mean), var = Gather(*comm, mine.moving_variance);
  for (size_t r = 0; r < all.size(); ++r) {
    all[r].dgamma = dgamma[r];
    all[r].dbeta = dbeta[r];
    all[r].moving_mean = mean[r];
    all[r].moving_variance = var[r];
  }
  ExpectGradientsMatch(c, all, ref);
  for (size_t r = 0; r < all.size(); ++r) {
    ExpectSameStatistics(all[0], all[r], "rank " + std::to_string(r) + " vs rank 0");
  }
}

TEST(MpiSynchronized, UnevenSlicesAreOneProcess) { ExpectMatchesOneProcess(Case(false)); }

TEST(MpiSynchronized, ChannelsFirst) {
  SyncCase c = Case(false, {3, 5});
  c.options.axis = {1};
  ExpectMatchesOneProcess(c);
}

TEST(MpiSynchronized, GhostBatchesAndRenorm) {
  SyncCase c = Case(true);
  c.options.virtual_batch_size = 2;
  c.options.renorm = true;
  c.options.renorm_clipping.rmax = 1.5f;
  c.steps = 3;
  ExpectMatchesOneProcess(c);
}

TEST(MpiSynchronized, ReductionAboveTheGatherLimit) {
  SyncCase c = Case(false);
  c.mean = 1e4;
  c.stddev = 1.0;
  ExpectMatchesOneProcess(c, 0);
  c.options.synchronized_gradients = true;
  ExpectMatchesOneProcess(c, 0);
}

TEST(MpiSynchronized, LocalErrorIsTheSameOnEveryRank) {
  const std::shared_ptr<Communicator> comm = MakeMpiCommunicator(MPI_COMM_WORLD);
  Options o;
  o.synchronized = true;
  BatchNorm layer(o);
  layer.set_communicator(comm);
  const int last = comm->size() - 1;
  const std::vector<float> x = Normal(8, 0.0, 1.0, 1);
  std::vector<float> y(8);
  try {
    layer.Forward(comm->rank() == last ? nullptr : x.data(), y.data(), {4, 2}, true);
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string prefix =
        comm->size() > 1 ? "synchronized BatchNorm: rank " + std::to_string(last) + " failed: "
                         : "";
    EXPECT_EQ(std::string(e.what()), prefix + "x is null for a shape of 8 elements");
    EXPECT_EQ(e.code(), ErrorCode::kNullPointer);
  }
}

}  // namespace
}  // namespace test
}  // namespace bnorm

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  // One rank prints: the others' output would interleave with it.
  if (bnorm::test::WorldRank() != 0) {
    ::testing::TestEventListeners& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int failed = RUN_ALL_TESTS();
  // Every rank's verdict: the job fails when any rank failed.
  MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  return failed;
}
