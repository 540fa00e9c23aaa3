// SPDX-License-Identifier: Apache-2.0
// The same input gives bitwise the same output and state whatever the
// threads: Execution::Serial(), oneTBB's global arena and caller arenas of 1,
// 2 and 7 threads (7 > the cores of a CI machine, so workers are
// oversubscribed and blocks land on threads in ever different orders), and
// repeated calls. For the kernels (BatchMoments, Normalize, float32 and
// 16-bit) and for the layer in training: plain, fused, ghost batches, renorm,
// non-adjacent feature axes. Every tensor has at least 2^18 elements, the
// size from which bnorm goes parallel. tools/run-sanitizers also runs this
// under ThreadSanitizer.
#include <gtest/gtest.h>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bnorm/batch_norm.hpp"
#include "bnorm/execution.hpp"
#include "bnorm/geometry.hpp"
#include "bnorm/kernels.hpp"
#include "tests/test_util.h"

namespace bnorm {
namespace {

using test::Count;
using test::Normal;
using test::SameBits;
using test::Shape;

constexpr size_t kParallelElements = size_t{1} << 18;
constexpr int kRepeats = 3;

// The executions to compare; the first (serial) is the baseline. The arenas
// live as long as the object.
class Executions {
 public:
  // oneTBB caps its workers at the core count by default, which would make
  // the 7-thread arena run on 2 threads on CI: lift the cap while testing.
  Executions() : control_(tbb::global_control::max_allowed_parallelism, 8) {
    for (int threads : {1, 2, 7}) {
      arenas_.push_back(std::make_unique<tbb::task_arena>(threads));
      list_.push_back({"arena of " + std::to_string(threads) + " thread(s)",
                       Execution::Parallel(arenas_.back().get())});
    }
  }
  struct Named {
    std::string name;
    Execution exec;
  };
  const std::vector<Named>& list() const { return list_; }

 private:
  tbb::global_control control_;
  std::vector<std::unique_ptr<tbb::task_arena>> arenas_;
  std::vector<Named> list_ = {{"serial", Execution::Serial()},
                              {"global arena", Execution::Parallel()}};
};

// Kernel geometries of >= 2^18 elements: channels-last with many and with
// few channels, channels-first with short and long runs, and a ghost-batch
// view (every 2nd sample).
std::vector<Geometry> KernelCases() {
  Geometry ghost = PlanGeometry({16, 32, 32, 32}, {-1});
  ghost.outer /= 2;
  ghost.group_rows = 32 * 32;
  ghost.group_stride = 2 * 32 * 32 * 32;
  return {PlanGeometry({8, 32, 32, 128}, {-1}), PlanGeometry({262147, 3}, {-1}),
          PlanGeometry({64, 64, 8, 8}, {1}), PlanGeometry({2, 3, 300007}, {1}), ghost};
}

size_t Extent(const Geometry& g) { return g.RowOffset(g.outer - 1) + g.channels * g.inner; }

TEST(DeterminismThreads, MomentsAreBitwiseEqualAcrossExecutionsAndRepeats) {
  const Executions executions;
  for (const Geometry& g : KernelCases()) {
    SCOPED_TRACE("[" + std::to_string(g.outer) + ", " + std::to_string(g.channels) + ", " +
                 std::to_string(g.inner) + "]");
    ASSERT_GE(g.elements(), kParallelElements);
    const std::vector<float> x = Normal(Extent(g), 1e4, 1.0, 3);
    std::vector<uint16_t> x16(x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      uint32_t bits;
      std::memcpy(&bits, &x[i], sizeof(bits));
      x16[i] = static_cast<uint16_t>(bits >> 16);
    }
    std::vector<double> mean0(g.channels), var0(g.channels), mean16(g.channels), var16(g.channels);
    BatchMoments(x.data(), g, mean0.data(), var0.data(), Execution::Serial());
    BatchMoments(x16.data(), DType::kBFloat16, g, mean16.data(), var16.data(), Execution::Serial());
    for (const auto& e : executions.list()) {
      SCOPED_TRACE(e.name);
      for (int repeat = 0; repeat < kRepeats; ++repeat) {
        std::vector<double> mean(g.channels), var(g.channels);
        BatchMoments(x.data(), g, mean.data(), var.data(), e.exec);
        EXPECT_TRUE(SameBits(mean, mean0) && SameBits(var, var0)) << "repeat " << repeat;
        BatchMoments(x16.data(), DType::kBFloat16, g, mean.data(), var.data(), e.exec);
        EXPECT_TRUE(SameBits(mean, mean16) && SameBits(var, var16)) << "16-bit, repeat " << repeat;
      }
    }
  }
}

TEST(DeterminismThreads, NormalizeIsBitwiseEqualAcrossExecutionsAndRepeats) {
  const Executions executions;
  for (const Geometry& g : KernelCases()) {
    SCOPED_TRACE("[" + std::to_string(g.outer) + ", " + std::to_string(g.channels) + ", " +
                 std::to_string(g.inner) + "]");
    const size_t extent = Extent(g);
    const std::vector<float> x = Normal(extent, 1e4, 1.0, 4);
    std::vector<double> mean(g.channels), var(g.channels);
    BatchMoments(x.data(), g, mean.data(), var.data(), Execution::Serial());
    std::vector<float> hi(g.channels), lo(g.channels), scale(g.channels), shift(g.channels);
    for (size_t c = 0; c < g.channels; ++c) {
      SplitMean(mean[c], &hi[c], &lo[c]);
      scale[c] = static_cast<float>(1.0 / std::sqrt(var[c] + 1e-3));
      shift[c] = 0.25f * static_cast<float>(c % 5);
    }
    NormalizeParams p;
    p.mean_hi = hi.data();
    p.mean_lo = lo.data();
    p.scale = scale.data();
    p.shift = shift.data();
    p.activation = Activation::kRelu6;
    std::vector<float> y0(extent, -7.0f), z0 = x;
    Normalize(x.data(), y0.data(), g, p, Execution::Serial());
    Normalize(z0.data(), z0.data(), g, p, Execution::Serial());
    for (const auto& e : executions.list()) {
      SCOPED_TRACE(e.name);
      for (int repeat = 0; repeat < kRepeats; ++repeat) {
        std::vector<float> y(extent, -7.0f);
        Normalize(x.data(), y.data(), g, p, e.exec);
        EXPECT_TRUE(SameBits(y, y0)) << "repeat " << repeat;
        // In place.
        std::vector<float> z = x;
        Normalize(z.data(), z.data(), g, p, e.exec);
        EXPECT_TRUE(SameBits(z, z0)) << "in place, repeat " << repeat;
      }
    }
  }
}

struct LayerCase {
  std::string name;
  Options options;
  Shape shape;
};

std::vector<LayerCase> LayerCases() {
  std::vector<LayerCase> cases;
  cases.push_back({"NHWC", Options(), {8, 32, 32, 64}});
  Options nchw;
  nchw.axis = {1};
  cases.push_back({"NCHW fused (Bessel)", nchw, {8, 64, 32, 32}});
  Options ghost;
  ghost.virtual_batch_size = 2;
  cases.push_back({"ghost batches NHWC", ghost, {16, 32, 32, 32}});
  Options ghost_nchw;
  ghost_nchw.axis = {1};
  ghost_nchw.virtual_batch_size = 4;
  cases.push_back({"ghost batches NCHW", ghost_nchw, {16, 32, 32, 32}});
  Options renorm;
  renorm.renorm = true;
  renorm.renorm_clipping.rmax = 2.0f;
  renorm.renorm_clipping.rmin = 0.5f;
  renorm.renorm_clipping.dmax = 1.0f;
  cases.push_back({"renorm", renorm, {8, 32, 32, 64}});
  Options ghost_renorm = renorm;
  ghost_renorm.virtual_batch_size = 4;
  cases.push_back({"renorm with ghost batches", ghost_renorm, {16, 16, 32, 64}});
  Options apart;
  apart.axis = {1, 3};
  cases.push_back({"non-adjacent axes", apart, {16, 8, 64, 32}});
  Options dense;
  dense.momentum = 0.9f;
  cases.push_back({"dense", dense, {65536, 5}});
  return cases;
}

struct LayerRun {
  std::vector<std::vector<float>> outputs;
  std::vector<std::vector<uint16_t>> outputs16;
  std::vector<std::vector<float>> state;
};

// The inputs of RunLayer, made once per case (generating them dominates).
struct LayerInputs {
  std::vector<std::vector<float>> x;       // 4 float32 steps
  std::vector<std::vector<uint16_t>> x16;  // 2 bfloat16 steps
};

LayerInputs MakeInputs(const LayerCase& c) {
  const size_t n = Count(c.shape);
  LayerInputs in;
  for (uint32_t step = 0; step < 4; ++step) {
    in.x.push_back(Normal(n, 5.0 * step, 3.0, 20 + step));
  }
  for (size_t step = 0; step < 2; ++step) {
    std::vector<uint16_t> x(n);
    for (size_t i = 0; i < n; ++i) {
      uint32_t bits;
      std::memcpy(&bits, &in.x[step][i], sizeof(bits));
      x[i] = static_cast<uint16_t>(bits >> 16);  // bfloat16 by truncation
    }
    in.x16.push_back(std::move(x));
  }
  return in;
}

// A fresh layer, three training steps and an inference step; then two steps
// (training, inference) in bfloat16 on a second fresh layer.
LayerRun RunLayer(const LayerCase& c, const LayerInputs& in, const Execution& exec) {
  const size_t n = Count(c.shape);
  const std::optional<bool> steps[] = {true, true, true, false};
  LayerRun run;
  BatchNorm layer(c.options);
  for (size_t step = 0; step < 4; ++step) {
    std::vector<float> y(n);
    layer.Forward(in.x[step].data(), y.data(), c.shape, steps[step], exec);
    run.outputs.push_back(std::move(y));
  }
  run.state = {layer.gamma(), layer.beta(), layer.moving_mean(), layer.moving_variance()};
  if (c.options.renorm) {
    run.state.push_back(layer.moving_stddev());
    run.state.push_back(layer.renorm_mean());
    run.state.push_back(layer.renorm_stddev());
  }
  BatchNorm layer16(c.options);
  for (size_t step = 0; step < 2; ++step) {
    std::vector<uint16_t> y(n);
    layer16.Forward(in.x16[step].data(), y.data(), DType::kBFloat16, c.shape, step == 0, exec);
    run.outputs16.push_back(std::move(y));
  }
  run.state.push_back(layer16.moving_mean());
  run.state.push_back(layer16.moving_variance());
  return run;
}

// Where two runs first differ ("" if bitwise equal).
std::string FirstDifference(const LayerRun& a, const LayerRun& b) {
  for (size_t i = 0; i < a.outputs.size(); ++i) {
    if (!SameBits(a.outputs[i], b.outputs[i])) return "output of step " + std::to_string(i);
  }
  for (size_t i = 0; i < a.outputs16.size(); ++i) {
    if (!SameBits(a.outputs16[i], b.outputs16[i]))
      return "bfloat16 output of step " + std::to_string(i);
  }
  if (a.state.size() != b.state.size()) return "the number of state variables";
  for (size_t i = 0; i < a.state.size(); ++i) {
    if (!SameBits(a.state[i], b.state[i])) return "state variable " + std::to_string(i);
  }
  return "";
}

TEST(DeterminismThreads, LayerTrainingIsBitwiseEqualAcrossExecutionsAndRepeats) {
  const Executions executions;
  for (const LayerCase& c : LayerCases()) {
    SCOPED_TRACE(c.name);
    ASSERT_GE(Count(c.shape), kParallelElements);
    const LayerInputs inputs = MakeInputs(c);
    const LayerRun baseline = RunLayer(c, inputs, Execution::Serial());
    for (const auto& e : executions.list()) {
      SCOPED_TRACE(e.name);
      for (int repeat = 0; repeat < 2; ++repeat) {
        EXPECT_EQ(FirstDifference(RunLayer(c, inputs, e.exec), baseline), "")
            << "repeat " << repeat;
      }
    }
  }
}

// The same layer called repeatedly with the same batch: each training call
// moves the state the same way whatever the execution, so after k calls the
// states agree bitwise across executions.
TEST(DeterminismThreads, RepeatedTrainingCallsOnOneLayerAgree) {
  const Executions executions;
  const LayerCase c = LayerCases()[5];  // renorm with ghost batches
  const size_t n = Count(c.shape);
  const std::vector<float> x = Normal(n, 1.0, 1.0, 77);
  std::vector<std::vector<float>> baseline;
  for (const auto& e : executions.list()) {
    SCOPED_TRACE(e.name);
    BatchNorm layer(c.options);
    std::vector<float> y(n);
    for (int k = 0; k < 5; ++k) layer.Forward(x.data(), y.data(), c.shape, true, e.exec);
    const std::vector<std::vector<float>> got = {y, layer.moving_mean(), layer.moving_variance(),
                                                 layer.renorm_mean(), layer.renorm_stddev()};
    if (baseline.empty()) {
      baseline = got;
      continue;
    }
    for (size_t i = 0; i < got.size(); ++i) EXPECT_TRUE(SameBits(got[i], baseline[i])) << i;
  }
}

}  // namespace
}  // namespace bnorm
