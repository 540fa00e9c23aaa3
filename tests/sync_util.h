// SPDX-License-Identifier: Apache-2.0
// What the synchronized-layer tests share (in-process ranks here, MPI ranks in
// contrib/mpi/tests): a case (options, each rank's batch, training steps), the
// calls one rank makes, the float64 Keras oracle on the concatenated batch,
// and the expectations: each rank's y and dx slices, its moving statistics and
// the summed dγ, dβ within 1e-6 of the oracle, statistics bitwise equal across
// ranks.
#ifndef BNORM_TESTS_SYNC_UTIL_H_
#define BNORM_TESTS_SYNC_UTIL_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "bnorm/batch_norm.hpp"
#include "bnorm/communicator.hpp"
#include "src/oracle/keras_reference.h"
#include "tests/test_util.h"

namespace bnorm {
namespace test {

struct SyncCase {
  Options options;               // synchronized is set by the runners
  Shape sample;                  // one sample's shape (without the batch axis)
  std::vector<int64_t> batches;  // each rank's batch size (its slice of the batch)
  int steps = 2;                 // training forwards; the last is differentiated
  double mean = 0.5, stddev = 2.0;
  bool from_output = false;  // the Backward from y (the forward in place)
  uint32_t seed = 7;

  int ranks() const { return static_cast<int>(batches.size()); }
  size_t sample_elements() const { return Count(sample); }
  Shape shape(int64_t batch) const {
    Shape s{batch};
    s.insert(s.end(), sample.begin(), sample.end());
    return s;
  }
  int64_t total_batch() const {
    return std::accumulate(batches.begin(), batches.end(), int64_t{0});
  }
  // Rank r's first sample in the concatenated batch.
  size_t first_sample(int r) const {
    return static_cast<size_t>(std::accumulate(batches.begin(), batches.begin() + r, int64_t{0}));
  }
};

// The concatenated batch of step `step` (dy for step -1); rank r's slice is
// its samples first_sample(r) ...
inline std::vector<float> GlobalData(const SyncCase& c, int step) {
  const size_t n = static_cast<size_t>(c.total_batch()) * c.sample_elements();
  if (step < 0) return Normal(n, 0.0, 1.0, c.seed + 1000);
  return Normal(n, c.mean + 0.25 * step, c.stddev * (1.0 + 0.1 * step), c.seed + step);
}

inline std::vector<float> Slice(const SyncCase& c, const std::vector<float>& global, int r) {
  const size_t begin = c.first_sample(r) * c.sample_elements();
  const size_t n = static_cast<size_t>(c.batches[static_cast<size_t>(r)]) * c.sample_elements();
  return std::vector<float>(global.begin() + begin, global.begin() + begin + n);
}

struct RankResult {
  std::vector<float> y, dx, dgamma, dbeta;
  std::vector<float> moving_mean, moving_variance, moving_stddev, renorm_mean, renorm_stddev;
};

// One rank's calls: `steps` training forwards of its slices, then the
// Backward of the last. comm may be null (the unsynchronized layer).
inline RankResult RunRank(const SyncCase& c, int r, const std::shared_ptr<Communicator>& comm,
                          bool synchronized = true) {
  Options options = c.options;
  options.synchronized = synchronized;
  BatchNorm layer(options);
  layer.set_communicator(comm);
  const Shape shape = c.shape(c.batches[static_cast<size_t>(r)]);
  const size_t n = Count(shape);
  RankResult out;
  std::vector<float> x;
  for (int step = 0; step < c.steps; ++step) {
    x = Slice(c, GlobalData(c, step), r);
    out.y.assign(n, 0.0f);
    if (c.from_output && step == c.steps - 1) {
      out.y = x;
      layer.Forward(out.y.data(), out.y.data(), shape, true);
    } else {
      layer.Forward(x.data(), out.y.data(), shape, true);
    }
  }
  const std::vector<float> dy = Slice(c, GlobalData(c, -1), r);
  out.dx.assign(n, 0.0f);
  if (c.from_output) {
    layer.BackwardFromOutput(out.y.data(), dy.data(), out.dx.data(), shape);
  } else {
    layer.Backward(x.data(), dy.data(), out.dx.data(), shape);
  }
  out.dgamma = layer.gradient_gamma();
  out.dbeta = layer.gradient_beta();
  out.moving_mean = layer.moving_mean();
  out.moving_variance = layer.moving_variance();
  if (options.renorm) {
    out.moving_stddev = layer.moving_stddev();
    out.renorm_mean = layer.renorm_mean();
    out.renorm_stddev = layer.renorm_stddev();
  }
  return out;
}

// The oracle on the concatenated batch: Keras' ghost j of a rank holds its
// samples j, j + G, ...; over the concatenation of R equal slices those are
// the global ghosts of virtual_batch_size R * V.
struct SyncReference {
  keras_reference::State state;
  std::vector<double> y;
  keras_reference::Gradients gradients;
  std::vector<double> abs_dy_sums;  // Σ|dy| per channel: the gradients' scale
};

inline SyncReference ReferenceOf(const SyncCase& c) {
  Options o = c.options;
  o.synchronized = false;
  o.synchronized_gradients = false;
  o.fused = Fused::kFalse;  // what fused=kAuto resolves to with synchronized
  if (o.virtual_batch_size) *o.virtual_batch_size *= c.ranks();
  const Shape shape = c.shape(c.total_batch());
  const size_t n = Count(shape);
  BatchNorm probe(o);
  probe.Build(shape);
  SyncReference ref;
  ref.state = keras_reference::Initial(o, probe.moving_mean().size());
  ref.y.resize(n);
  keras_reference::State before = ref.state;
  std::vector<float> x;
  for (int step = 0; step < c.steps; ++step) {
    x = GlobalData(c, step);
    before = ref.state;
    keras_reference::Forward(o, shape, x.data(), true, &ref.state, ref.y.data());
  }
  const std::vector<float> dy = GlobalData(c, -1);
  std::vector<double> dy64(dy.begin(), dy.end()), abs_dy(n);
  for (size_t i = 0; i < n; ++i) abs_dy[i] = std::abs(dy64[i]);
  ref.gradients = keras_reference::Backward(o, shape, x.data(), dy64.data(), true, before);
  Options sums = o;
  sums.center = true;
  ref.abs_dy_sums =
      keras_reference::Backward(sums, shape, x.data(), abs_dy.data(), true, before).dbeta;
  return ref;
}

// |got - want| <= tol * max(|want|, floor) elementwise.
inline void ExpectNear(const std::vector<float>& got, const std::vector<double>& want, double floor,
                       const std::string& what, double tol = 1e-6) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    const double bound = tol * std::max(std::abs(want[i]), floor);
    ASSERT_LE(std::abs(static_cast<double>(got[i]) - want[i]), bound)
        << what << "[" << i << "] = " << got[i] << ", expected " << want[i];
  }
}

inline std::vector<double> SliceOf(const SyncCase& c, const std::vector<double>& global, int r) {
  const size_t begin = c.first_sample(r) * c.sample_elements();
  const size_t n = static_cast<size_t>(c.batches[static_cast<size_t>(r)]) * c.sample_elements();
  return std::vector<double>(global.begin() + begin, global.begin() + begin + n);
}

inline double MaxAbs(const std::vector<double>& v) {
  double m = 0.0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

// Rank r's own outputs: its slices of y and dx (within 1e-6 of the largest
// |y| and |dx|: float32 outputs) and the moving statistics.
inline void ExpectRankMatches(const SyncCase& c, int r, const RankResult& got,
                              const SyncReference& ref) {
  const std::string rank = "rank " + std::to_string(r) + " ";
  ExpectNear(got.y, SliceOf(c, ref.y, r), MaxAbs(ref.y), rank + "y");
  ExpectNear(got.dx, SliceOf(c, ref.gradients.dx, r), MaxAbs(ref.gradients.dx), rank + "dx");
  ExpectNear(got.moving_mean, ref.state.moving_mean, 1.0, rank + "moving_mean");
  ExpectNear(got.moving_variance, ref.state.moving_variance, 1.0, rank + "moving_variance");
  if (c.options.renorm) {
    ExpectNear(got.moving_stddev, ref.state.moving_stddev, 1.0, rank + "moving_stddev");
    ExpectNear(got.renorm_mean, ref.state.renorm_mean, 1.0, rank + "renorm_mean");
    ExpectNear(got.renorm_stddev, ref.state.renorm_stddev, 1.0, rank + "renorm_stddev");
  }
}

// The parameter gradients: summed over ranks (each rank's local share), or
// every rank's own with synchronized_gradients.
inline void ExpectGradientsMatch(const SyncCase& c, const std::vector<RankResult>& ranks,
                                 const SyncReference& ref) {
  const size_t C = ref.abs_dy_sums.size();
  std::vector<double> gamma_scale(C);
  for (size_t k = 0; k < C; ++k) {
    const double g = c.options.scale ? std::abs(ref.state.gamma[k]) : 1.0;
    gamma_scale[k] = ref.abs_dy_sums[k] * std::max(g, 1.0);
  }
  const auto check = [&](const std::vector<float>& got, const std::vector<double>& want,
                         const std::vector<double>& scale, const std::string& what) {
    ASSERT_EQ(got.size(), want.size()) << what;
    for (size_t k = 0; k < got.size(); ++k) {
      ASSERT_LE(std::abs(got[k] - want[k]), 1e-6 * std::max(std::abs(want[k]), scale[k]))
          << what << "[" << k << "] = " << got[k] << ", expected " << want[k];
    }
  };
  if (c.options.synchronized_gradients) {
    for (size_t r = 0; r < ranks.size(); ++r) {
      check(ranks[r].dgamma, ref.gradients.dgamma, gamma_scale,
            "dgamma of rank " + std::to_string(r));
      check(ranks[r].dbeta, ref.gradients.dbeta, ref.abs_dy_sums,
            "dbeta of rank " + std::to_string(r));
    }
    return;
  }
  std::vector<float> dgamma(ref.gradients.dgamma.size()), dbeta(ref.gradients.dbeta.size());
  for (const RankResult& r : ranks) {
    for (size_t k = 0; k < dgamma.size(); ++k) dgamma[k] += r.dgamma[k];
    for (size_t k = 0; k < dbeta.size(); ++k) dbeta[k] += r.dbeta[k];
  }
  check(dgamma, ref.gradients.dgamma, gamma_scale, "summed dgamma");
  check(dbeta, ref.gradients.dbeta, ref.abs_dy_sums, "summed dbeta");
}

inline bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * 4) == 0);
}

// Every rank holds bitwise the same moving (and renorm) statistics.
inline void ExpectSameStatistics(const RankResult& a, const RankResult& b,
                                 const std::string& what) {
  EXPECT_TRUE(SameBits(a.moving_mean, b.moving_mean)) << what;
  EXPECT_TRUE(SameBits(a.moving_variance, b.moving_variance)) << what;
  EXPECT_TRUE(SameBits(a.moving_stddev, b.moving_stddev)) << what;
  EXPECT_TRUE(SameBits(a.renorm_mean, b.renorm_mean)) << what;
  EXPECT_TRUE(SameBits(a.renorm_stddev, b.renorm_stddev)) << what;
}

}  // namespace test
}  // namespace bnorm

#endif  // BNORM_TESTS_SYNC_UTIL_H_
