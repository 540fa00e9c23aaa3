// SPDX-License-Identifier: Apache-2.0
// Synchronized batch norm over in-process ranks (std::threads): R ranks on
// slices of a batch are one layer on the concatenated batch (the float64 Keras
// oracle), every rank holds bitwise the same statistics, and one rank is
// bitwise the unsynchronized layer. docs/semantics.md, "Synchronized".
#include <gtest/gtest.h>

#include <chrono>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "bnorm/batch_norm.hpp"
#include "bnorm/error.hpp"
#include "src/sync/in_process.h"
#include "tests/sync_util.h"

namespace bnorm {
namespace test {
namespace {

// Runs the case on its ranks and checks every oracle.
std::vector<RankResult> ExpectMatchesOneProcess(const SyncCase& c) {
  std::vector<RankResult> results(static_cast<size_t>(c.ranks()));
  const std::vector<std::exception_ptr> errors =
      RunRanks(c.ranks(), [&](int r, const std::shared_ptr<Communicator>& comm) {
        results[static_cast<size_t>(r)] = RunRank(c, r, comm);
      });
  for (size_t r = 0; r < errors.size(); ++r) {
    if (errors[r]) {
      try {
        std::rethrow_exception(errors[r]);
      } catch (const std::exception& e) {
        ADD_FAILURE() << "rank " << r << " threw: " << e.what();
      }
    }
  }
  if (::testing::Test::HasFailure()) return results;
  const SyncReference ref = ReferenceOf(c);
  for (int r = 0; r < c.ranks(); ++r) ExpectRankMatches(c, r, results[static_cast<size_t>(r)], ref);
  ExpectGradientsMatch(c, results, ref);
  for (size_t r = 1; r < results.size(); ++r) {
    ExpectSameStatistics(results[0], results[r], "rank " + std::to_string(r) + " vs rank 0");
  }
  return results;
}

SyncCase Case(std::vector<int64_t> batches, Shape sample = {3}) {
  SyncCase c;
  c.batches = std::move(batches);
  c.sample = std::move(sample);
  return c;
}

TEST(Synchronized, TwoRanksAreOneProcessOnTheConcatenatedBatch) {
  ExpectMatchesOneProcess(Case({6, 6}));
}

TEST(Synchronized, ThreeRanksChannelsFirst) {
  SyncCase c = Case({4, 4, 4}, {3, 5});
  c.options.axis = {1};
  ExpectMatchesOneProcess(c);
}

TEST(Synchronized, FourRanksImageChannelsLast) {
  ExpectMatchesOneProcess(Case({2, 3, 2, 1}, {3, 3, 4}));
}

TEST(Synchronized, NonAdjacentFeatureAxes) {
  SyncCase c = Case({3, 2}, {2, 3, 4});
  c.options.axis = {1, 3};
  ExpectMatchesOneProcess(c);
}

TEST(Synchronized, UnevenAndEmptySlices) {
  ExpectMatchesOneProcess(Case({5, 0, 3}));
  ExpectMatchesOneProcess(Case({0, 0, 1, 7}, {2, 3}));
}

TEST(Synchronized, GloballyEmptyBatchUpdatesNothing) {
  SyncCase c = Case({0, 0, 0});
  c.steps = 1;
  std::vector<RankResult> results(3);
  const std::vector<std::exception_ptr> errors =
      RunRanks(3, [&](int r, const std::shared_ptr<Communicator>& comm) {
        results[static_cast<size_t>(r)] = RunRank(c, r, comm);
      });
  for (size_t r = 0; r < 3; ++r) {
    EXPECT_FALSE(errors[r]) << "rank " << r;
    EXPECT_EQ(results[r].moving_mean, std::vector<float>(3, 0.0f));
    EXPECT_EQ(results[r].moving_variance, std::vector<float>(3, 1.0f));
    EXPECT_EQ(results[r].dgamma, std::vector<float>(3, 0.0f));
    EXPECT_EQ(results[r].dbeta, std::vector<float>(3, 0.0f));
  }
}

TEST(Synchronized, LargeMeanKeepsEveryDigit) {
  // Keras' E[x²] − E[x]² would lose the variance here; merged moments do not.
  SyncCase c = Case({7, 5, 4});
  c.mean = 1e4;
  c.stddev = 1.0;
  ExpectMatchesOneProcess(c);
}

TEST(Synchronized, GhostBatchesMergeGhostJOfEveryRank) {
  SyncCase c = Case({4, 4, 4}, {3});
  c.options.virtual_batch_size = 2;
  ExpectMatchesOneProcess(c);
  SyncCase images = Case({6, 6}, {2, 2, 3});
  images.options.virtual_batch_size = 3;
  ExpectMatchesOneProcess(images);
}

TEST(Synchronized, GhostBatchesWithAnEmptyRank) {
  SyncCase c = Case({4, 0, 4}, {3});
  c.options.virtual_batch_size = 2;
  // The oracle's ghosts are those of two equal slices: drop the empty one.
  std::vector<RankResult> results(3);
  const std::vector<std::exception_ptr> errors =
      RunRanks(3, [&](int r, const std::shared_ptr<Communicator>& comm) {
        results[static_cast<size_t>(r)] = RunRank(c, r, comm);
      });
  for (const std::exception_ptr& e : errors) EXPECT_FALSE(e);
  SyncCase two = Case({4, 4}, {3});
  two.options.virtual_batch_size = 2;
  const SyncReference ref = ReferenceOf(two);
  ExpectRankMatches(two, 0, results[0], ref);
  ExpectRankMatches(two, 1, results[2], ref);
  ExpectGradientsMatch(two, {results[0], results[2]}, ref);
  EXPECT_TRUE(results[1].dx.empty());
  ExpectSameStatistics(results[0], results[1], "empty rank");
  ExpectSameStatistics(results[0], results[2], "rank 2");
}

TEST(Synchronized, RenormUsesTheGlobalStatistics) {
  SyncCase c = Case({5, 3, 4});
  c.options.renorm = true;
  c.options.renorm_momentum = 0.5f;
  c.options.renorm_clipping.rmax = 1.5f;
  c.options.renorm_clipping.dmax = 0.5f;
  c.steps = 3;
  ExpectMatchesOneProcess(c);
}

TEST(Synchronized, AdjustmentAndNoCenterOrScale) {
  SyncCase c = Case({3, 4});
  c.options.adjustment = [](const std::vector<int64_t>&, float* scale, float* bias) {
    for (int k = 0; k < 3; ++k) {
      scale[k] = 0.5f + 0.25f * static_cast<float>(k);
      bias[k] = 0.1f * static_cast<float>(k);
    }
  };
  ExpectMatchesOneProcess(c);
  SyncCase plain = Case({3, 4});
  plain.options.center = false;
  plain.options.scale = false;
  ExpectMatchesOneProcess(plain);
}

TEST(Synchronized, BackwardFromOutput) {
  SyncCase c = Case({4, 6, 2});
  c.from_output = true;
  ExpectMatchesOneProcess(c);
}

TEST(Synchronized, SynchronizedGradientsAreTheSumsOnEveryRank) {
  SyncCase c = Case({5, 0, 3});
  c.options.synchronized_gradients = true;
  const std::vector<RankResult> results = ExpectMatchesOneProcess(c);
  for (size_t r = 1; r < results.size(); ++r) {
    EXPECT_TRUE(SameBits(results[0].dgamma, results[r].dgamma)) << "rank " << r;
    EXPECT_TRUE(SameBits(results[0].dbeta, results[r].dbeta)) << "rank " << r;
  }
}

void ExpectSameBits(const RankResult& a, const RankResult& b) {
  EXPECT_TRUE(SameBits(a.y, b.y));
  EXPECT_TRUE(SameBits(a.dx, b.dx));
  EXPECT_TRUE(SameBits(a.dgamma, b.dgamma));
  EXPECT_TRUE(SameBits(a.dbeta, b.dbeta));
  ExpectSameStatistics(a, b, "");
}

TEST(Synchronized, OneRankIsBitwiseTheUnsynchronizedLayer) {
  for (const bool renorm : {false, true}) {
    SyncCase c = Case({9}, {2, 3});
    c.options.renorm = renorm;
    c.options.virtual_batch_size = 3;
    const RankResult plain = RunRank(c, 0, nullptr, false);
    ExpectSameBits(RunRank(c, 0, nullptr, true), plain);
    ExpectSameBits(RunRank(c, 0, InProcessGroup(1).Rank(0), true), plain);
  }
}

TEST(Synchronized, ACommunicatorNeedsSynchronized) {
  BatchNorm layer{Options()};
  try {
    layer.set_communicator(InProcessGroup(2).Rank(0));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "a communicator is set on a layer with synchronized=false; expected "
                 "synchronized=true");
  }
}

TEST(Synchronized, InferenceStaysLocal) {
  // A rank alone in inference: no collective, no waiting for the others.
  Options o;
  o.synchronized = true;
  BatchNorm layer(o);
  layer.set_communicator(InProcessGroup(2, std::chrono::milliseconds(100)).Rank(0));
  const std::vector<float> x = Normal(12, 1.0, 2.0, 3);
  std::vector<float> y(12), dx(12);
  layer.Forward(x.data(), y.data(), {4, 3}, false);
  layer.Backward(x.data(), x.data(), dx.data(), {4, 3});
  EXPECT_EQ(layer.moving_mean(), std::vector<float>(3, 0.0f));
}

}  // namespace
}  // namespace test
}  // namespace bnorm
