// SPDX-License-Identifier: Apache-2.0
// Results do not depend on threads, on every supported target (the test
// parameter): serial, the global oneTBB arena and
// caller-provided arenas of 1 and 2 threads give bitwise equal statistics and
// outputs. Also the ghost-batch group views of a Geometry (group_rows,
// group_stride), which the kernels must read and write exactly.
#include <gtest/gtest.h>
#include <oneapi/tbb/task_arena.h>

#include <cstring>
#include <string>
#include <vector>

#include "bnorm/execution.hpp"
#include "bnorm/geometry.hpp"
#include "bnorm/kernels.hpp"
#include "src/oracle/reference.h"
#include "tests/target_test.h"
#include "tests/test_util.h"

namespace bnorm {
namespace test {
namespace {

struct NamedExecution {
  std::string name;
  Execution exec;
};

// Serial first: the others are compared with it.
std::vector<NamedExecution> Executions(tbb::task_arena* one, tbb::task_arena* two) {
  return {{"serial", Execution::Serial()},
          {"parallel (global arena)", Execution::Parallel()},
          {"parallel (arena of 1 thread)", Execution::Parallel(one)},
          {"parallel (arena of 2 threads)", Execution::Parallel(two)}};
}

// Tensors of at least 2^18 elements, the size from which bnorm goes parallel.
std::vector<Geometry> ParallelCases() {
  return {PlanGeometry({64, 64, 64}, {-1}), PlanGeometry({64, 64, 64}, {1}),
          PlanGeometry({8, 32, 32, 64}, {-1}),
          // Several blocks per channel, merged across threads.
          PlanGeometry({32, 4, 64, 64}, {1})};
}

bool BitwiseEqual(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

// BatchMoments over `x` viewed as `g` under every execution:
// bitwise equal to the serial result.
void ExpectMomentsIndependentOfThreads(const float* x, const Geometry& g) {
  tbb::task_arena one(1), two(2);
  const std::vector<NamedExecution> executions = Executions(&one, &two);
  std::vector<double> mean0(g.channels), var0(g.channels);
  BatchMoments(x, g, mean0.data(), var0.data(), executions[0].exec);
  for (const NamedExecution& e : executions) {
    SCOPED_TRACE(e.name);
    std::vector<double> mean(g.channels), var(g.channels);
    BatchMoments(x, g, mean.data(), var.data(), e.exec);
    EXPECT_TRUE(BitwiseEqual(mean, mean0));
    EXPECT_TRUE(BitwiseEqual(var, var0));
  }
}

// Normalize of the view `g` of x into y (both Extent(g) floats) under every
// execution: bitwise equal to the serial result.
void ExpectNormalizeIndependentOfThreads(const float* x, const Geometry& g) {
  std::vector<double> mean(g.channels), variance(g.channels);
  reference::Moments(x, g, mean.data(), variance.data());
  const NormalizeSetup setup = MakeNormalizeSetup(mean, variance, kSeed);
  const size_t extent = Extent(g);
  tbb::task_arena one(1), two(2);
  const std::vector<NamedExecution> executions = Executions(&one, &two);
  std::vector<float> y0(extent, Sentinel());
  Normalize(x, y0.data(), g, setup.params(), executions[0].exec);
  for (const NamedExecution& e : executions) {
    SCOPED_TRACE(e.name);
    std::vector<float> y(extent, Sentinel());
    Normalize(x, y.data(), g, setup.params(), e.exec);
    EXPECT_EQ(0, std::memcmp(y.data(), y0.data(), extent * sizeof(float)));
  }
}

class Determinism : public TargetTest {};
BNORM_INSTANTIATE_TARGET_TEST_SUITE_P(Determinism);

TEST_P(Determinism, MomentsAreBitwiseEqualForEveryThreadCount) {
  for (const Geometry& g : ParallelCases()) {
    SCOPED_TRACE(Describe(g));
    const std::vector<float> x = Normal(g.elements(), kLargeMean, kSeed);
    ExpectMomentsIndependentOfThreads(x.data(), g);
  }
}

TEST_P(Determinism, NormalizeIsBitwiseEqualForEveryThreadCount) {
  for (const Geometry& g : ParallelCases()) {
    SCOPED_TRACE(Describe(g));
    const std::vector<float> x = Normal(g.elements(), kLargeMean, kSeed);
    ExpectNormalizeIndependentOfThreads(x.data(), g);
  }
}

// A ghost batch of a tensor: with G ghosts, ghost `ghost` holds samples
// ghost, ghost + G, ghost + 2G, ... (docs/semantics.md: sample b belongs to ghost
// b mod G). `base` is the offset of its first sample.
struct GhostView {
  Geometry g;
  size_t base = 0;
};

GhostView Ghost(const std::vector<int64_t>& shape, int axis, size_t ghosts, size_t ghost) {
  const Geometry dense = PlanGeometry(shape, {axis});
  const size_t batch = static_cast<size_t>(shape[0]);
  const size_t sample = dense.elements() / batch;
  GhostView v;
  v.g = dense;
  v.g.outer = dense.outer / ghosts;
  v.g.group_rows = dense.outer / batch;  // the rows of one sample
  v.g.group_stride = ghosts * sample;
  v.base = ghost * sample;
  return v;
}

struct GhostCase {
  std::vector<int64_t> shape;
  int axis;
  size_t ghosts;
};

// NHWC and NCHW with 2 ghosts (every 2nd sample; each view 2^18 elements, so
// parallel) and a small case with 3 ghosts.
std::vector<GhostCase> GhostCases() {
  return {{{16, 32, 32, 32}, -1, 2},
          {{16, 32, 32, 32}, 1, 2},
          {{6, 3, 5, 7}, -1, 3},
          {{6, 3, 5, 7}, 1, 3}};
}

std::string DescribeGhost(const GhostCase& c, size_t ghost) {
  std::string s = "shape [";
  for (size_t i = 0; i < c.shape.size(); ++i) {
    s += (i ? ", " : "") + std::to_string(c.shape[i]);
  }
  return s + "], axis " + std::to_string(c.axis) + ", ghost " + std::to_string(ghost) + " of " +
         std::to_string(c.ghosts);
}

size_t Elements(const std::vector<int64_t>& shape) {
  size_t n = 1;
  for (int64_t s : shape) n *= static_cast<size_t>(s);
  return n;
}

class GroupView : public TargetTest {};
BNORM_INSTANTIATE_TARGET_TEST_SUITE_P(GroupView);

// The view computes the statistics of exactly the ghost's samples: the
// reference over a dense copy of samples ghost, ghost + G, ... agrees.
TEST_P(GroupView, MomentsAreThoseOfTheGhostsSamples) {
  for (const GhostCase& c : GhostCases()) {
    const std::vector<float> x = Normal(Elements(c.shape), kLargeMean, kSeed);
    const size_t batch = static_cast<size_t>(c.shape[0]);
    const size_t sample = x.size() / batch;
    for (size_t ghost = 0; ghost < c.ghosts; ++ghost) {
      SCOPED_TRACE(DescribeGhost(c, ghost));
      const GhostView v = Ghost(c.shape, c.axis, c.ghosts, ghost);
      std::vector<float> samples;
      for (size_t b = ghost; b < batch; b += c.ghosts) {
        samples.insert(samples.end(), x.begin() + b * sample, x.begin() + (b + 1) * sample);
      }
      std::vector<int64_t> ghost_shape = c.shape;
      ghost_shape[0] = static_cast<int64_t>(batch / c.ghosts);
      const Geometry dense = PlanGeometry(ghost_shape, {c.axis});
      std::vector<double> ref_mean(dense.channels), ref_var(dense.channels);
      reference::Moments(samples.data(), dense, ref_mean.data(), ref_var.data());
      std::vector<double> mean(v.g.channels), var(v.g.channels);
      BatchMoments(x.data() + v.base, v.g, mean.data(), var.data());
      EXPECT_TRUE(MomentsNear(mean, var, ref_mean, ref_var));
    }
  }
}

// Normalize of a view writes exactly the view's elements (matching the
// reference run on the same Geometry) and leaves every other sample alone.
TEST_P(GroupView, NormalizeWritesExactlyTheView) {
  for (const GhostCase& c : GhostCases()) {
    const size_t n = Elements(c.shape);
    const std::vector<float> x = Normal(n, kStandardNormal, kSeed);
    for (size_t ghost = 0; ghost < c.ghosts; ++ghost) {
      SCOPED_TRACE(DescribeGhost(c, ghost));
      const GhostView v = Ghost(c.shape, c.axis, c.ghosts, ghost);
      const float* xv = x.data() + v.base;
      std::vector<double> mean(v.g.channels), variance(v.g.channels);
      reference::Moments(xv, v.g, mean.data(), variance.data());
      const NormalizeSetup setup = MakeNormalizeSetup(mean, variance, kSeed);
      const std::vector<double> ref = ReferenceOutput(xv, v.g, mean, variance, setup);
      std::vector<bool> in_view(n, false);
      ForEachOffset(v.g, [&](size_t k) { in_view[v.base + k] = true; });
      GuardedBuffer y(n, 1);
      Normalize(xv, y.data() + v.base, v.g, setup.params());
      EXPECT_TRUE(OutputNear(y.data() + v.base, ref.data(), v.g));
      size_t touched = 0;
      for (size_t k = 0; k < n; ++k) {
        if (!in_view[k] && !IsSentinel(y[k])) ++touched;
      }
      EXPECT_EQ(touched, 0u) << "elements outside the view were written";
      EXPECT_TRUE(y.GuardsIntact());
    }
  }
}

TEST_P(GroupView, ResultsAreBitwiseEqualForEveryThreadCount) {
  for (const GhostCase& c : GhostCases()) {
    const std::vector<float> x = Normal(Elements(c.shape), kLargeMean, kSeed);
    for (size_t ghost = 0; ghost < c.ghosts; ++ghost) {
      SCOPED_TRACE(DescribeGhost(c, ghost));
      const GhostView v = Ghost(c.shape, c.axis, c.ghosts, ghost);
      ExpectMomentsIndependentOfThreads(x.data() + v.base, v.g);
      ExpectNormalizeIndependentOfThreads(x.data() + v.base, v.g);
    }
  }
}

}  // namespace
}  // namespace test
}  // namespace bnorm
