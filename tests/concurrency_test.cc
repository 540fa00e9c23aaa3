// SPDX-License-Identifier: Apache-2.0
// bnorm used from many application threads at once (std::thread), each also
// using oneTBB inside bnorm: every result must be bitwise equal to a serial
// run of the same calls. tools/run-sanitizers runs this under ThreadSanitizer.
//
// What is thread-safe (the contract these tests check):
// - BatchMoments, Normalize and Fold (and FoldIntoWeights on distinct
//   outputs) are reentrant: any number of threads may call them at once,
//   also on the same read-only inputs (x, the folded scale/shift, the moving
//   mean), as long as each writes its own outputs.
// - Distinct BatchNorm objects are independent: one thread per layer, all at
//   once, is fine. The first kernel call of the process (which applies
//   BNORM_TARGET and initializes Highway's dispatch and oneTBB) may also
//   happen on many threads at once.
// - One BatchNorm object is NOT safe for concurrent Forward calls: the first
//   call builds it, training calls update its state and the setters refresh
//   its inference coefficients. (Inference calls on a built layer happen to
//   only read today; that is not promised.) Callers serialize the calls on
//   one layer, which may move between threads (last test). Its const getters
//   may run concurrently with each other, not with a Forward or a setter.
// - The C ABI follows the same rules: one bnorm_layer per thread at a time,
//   the low-level calls reentrant, bnorm_last_error() per thread;
//   bnorm_set_max_threads, bnorm_force_target and bnorm_reset_target are not
//   thread-safe.
// - ForceTarget, ResetTarget (and CompiledTargets / SupportedTargets, which
//   briefly reset Highway's target mask while they list the targets) are
//   not thread-safe: call them before starting parallel work.
#include <gtest/gtest.h>
#include <oneapi/tbb/task_arena.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "bnorm/batch_norm.hpp"
#include "bnorm/bnorm.h"
#include "bnorm/execution.hpp"
#include "bnorm/fold.hpp"
#include "bnorm/geometry.hpp"
#include "bnorm/kernels.hpp"
#include "tests/test_util.h"

namespace bnorm {
namespace {

using test::Count;
using test::Normal;
using test::SameBits;
using test::Shape;

constexpr int kThreads = 8;

// Runs body(t) on kThreads threads that start together.
template <class Body>
void RunTogether(const Body& body) {
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ++ready;
      while (ready.load() < kThreads) std::this_thread::yield();
      body(t);
    });
  }
  for (std::thread& thread : threads) thread.join();
}

// One layer configuration and what a fixed sequence of calls produces.
struct LayerCase {
  std::string name;
  Options options;
  Shape shape;
};

// Every thread gets a different kind of layer; each input is at least 2^18
// elements, so bnorm also goes parallel inside each call.
std::vector<LayerCase> LayerCases() {
  std::vector<LayerCase> cases;
  cases.push_back({"NHWC default", Options(), {16, 16, 16, 64}});
  Options nchw;
  nchw.axis = {1};
  cases.push_back({"NCHW fused", nchw, {16, 64, 16, 16}});
  Options ghost;
  ghost.virtual_batch_size = 4;
  cases.push_back({"ghost batches", ghost, {16, 16, 16, 64}});
  Options renorm;
  renorm.renorm = true;
  renorm.renorm_clipping.rmax = 3.0f;
  renorm.renorm_clipping.dmax = 5.0f;
  cases.push_back({"renorm", renorm, {4096, 64}});
  Options apart;
  apart.axis = {1, 3};
  cases.push_back({"non-adjacent axes", apart, {16, 8, 64, 32}});
  Options dense;
  dense.momentum = 0.5f;
  dense.center = false;
  cases.push_back({"dense, no center", dense, {2048, 128}});
  Options ghost_renorm;
  ghost_renorm.virtual_batch_size = 8;
  ghost_renorm.renorm = true;
  cases.push_back({"ghost batches with renorm", ghost_renorm, {32, 16, 16, 32}});
  Options nchw_nonfused;
  nchw_nonfused.axis = {1};
  nchw_nonfused.fused = Fused::kFalse;
  cases.push_back({"NCHW non-fused", nchw_nonfused, {16, 64, 16, 16}});
  return cases;
}

struct LayerRun {
  std::vector<std::vector<float>> outputs;
  std::vector<std::vector<float>> state;
};

// Three training steps and one inference call on seeded data.
LayerRun RunLayer(const LayerCase& c, uint32_t seed, const Execution& exec) {
  BatchNorm layer(c.options);
  LayerRun run;
  const size_t n = Count(c.shape);
  const std::optional<bool> steps[] = {true, true, true, false};
  for (size_t step = 0; step < 4; ++step) {
    const std::vector<float> x =
        Normal(n, 3.0 + static_cast<double>(step), 2.0, seed + static_cast<uint32_t>(step));
    std::vector<float> y(n);
    layer.Forward(x.data(), y.data(), c.shape, steps[step], exec);
    run.outputs.push_back(std::move(y));
  }
  run.state = {layer.moving_mean(), layer.moving_variance()};
  if (c.options.renorm) {
    run.state.push_back(layer.moving_stddev());
    run.state.push_back(layer.renorm_mean());
    run.state.push_back(layer.renorm_stddev());
  }
  return run;
}

bool SameRun(const LayerRun& a, const LayerRun& b) {
  if (a.outputs.size() != b.outputs.size() || a.state.size() != b.state.size()) return false;
  for (size_t i = 0; i < a.outputs.size(); ++i) {
    if (!SameBits(a.outputs[i], b.outputs[i])) return false;
  }
  for (size_t i = 0; i < a.state.size(); ++i) {
    if (!SameBits(a.state[i], b.state[i])) return false;
  }
  return true;
}

// The very first bnorm calls of the process come from all threads at once:
// the lazy initialization (BNORM_TARGET, Highway's dispatch tables, oneTBB's
// global arena) must be race-free. (ctest runs every TEST in its own process,
// so nothing has been initialized when this test starts.)
TEST(Concurrency, FirstCallsFromManyThreadsAtOnce) {
  const Geometry g = PlanGeometry({64, 64, 64}, {-1});
  const std::vector<float> x = Normal(g.elements(), 1.0, 1.0, 1);
  std::vector<std::vector<double>> means(kThreads, std::vector<double>(g.channels));
  std::vector<std::vector<double>> variances(kThreads, std::vector<double>(g.channels));
  RunTogether([&](int t) {
    BatchMoments(x.data(), g, means[static_cast<size_t>(t)].data(),
                 variances[static_cast<size_t>(t)].data());
  });
  std::vector<double> mean(g.channels), variance(g.channels);
  BatchMoments(x.data(), g, mean.data(), variance.data(), Execution::Serial());
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_TRUE(SameBits(means[static_cast<size_t>(t)], mean)) << "thread " << t;
    EXPECT_TRUE(SameBits(variances[static_cast<size_t>(t)], variance)) << "thread " << t;
  }
}

// One layer per thread, all at once, each of a different kind: the same
// outputs and state as running each alone and serially.
TEST(Concurrency, SeparateLayersOnManyThreadsMatchSerialRuns) {
  const std::vector<LayerCase> cases = LayerCases();
  ASSERT_EQ(cases.size(), static_cast<size_t>(kThreads));
  std::vector<LayerRun> serial;
  for (size_t i = 0; i < cases.size(); ++i) {
    serial.push_back(RunLayer(cases[i], 100 + static_cast<uint32_t>(i), Execution::Serial()));
  }
  std::vector<LayerRun> parallel(cases.size());
  RunTogether([&](int t) {
    const size_t i = static_cast<size_t>(t);
    parallel[i] = RunLayer(cases[i], 100 + static_cast<uint32_t>(i), Execution());
  });
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_TRUE(SameRun(parallel[i], serial[i])) << cases[i].name;
  }
}

// The same kind of layer on every thread, with the same data: all equal.
TEST(Concurrency, IdenticalLayersOnManyThreadsAgree) {
  const LayerCase c = LayerCases()[2];  // ghost batches
  const LayerRun serial = RunLayer(c, 7, Execution::Serial());
  std::vector<LayerRun> runs(kThreads);
  tbb::task_arena arena(2);
  RunTogether([&](int t) {
    // Half the threads share one caller-provided arena, half use the global one.
    const Execution exec = t % 2 == 0 ? Execution::Parallel(&arena) : Execution::Parallel();
    runs[static_cast<size_t>(t)] = RunLayer(c, 7, exec);
  });
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_TRUE(SameRun(runs[static_cast<size_t>(t)], serial)) << "thread " << t;
  }
}

// One set of folded inference parameters (read-only), many threads
// normalizing at once with it, some on the same input: each output equals
// the serial one.
TEST(Concurrency, SharedFoldedParametersFromManyThreads) {
  const Shape shape = {32, 32, 16, 32};  // NHWC, 2^19 elements
  const Geometry nhwc = PlanGeometry(shape, {-1});
  const Geometry nchw = PlanGeometry({32, 32, 32, 16}, {1});
  ASSERT_EQ(nhwc.channels, nchw.channels);
  const size_t C = nhwc.channels;
  const std::vector<float> gamma = Normal(C, 1.0, 0.2, 1), beta = Normal(C, 0.0, 0.5, 2);
  const std::vector<float> moving_mean = Normal(C, 5.0, 1.0, 3);
  std::vector<float> moving_variance = Normal(C, 4.0, 0.5, 4);
  std::vector<float> scale(C), shift(C);
  Fold(gamma.data(), beta.data(), moving_mean.data(), moving_variance.data(), C, 1e-3f,
       scale.data(), shift.data());
  NormalizeParams params;
  params.mean_hi = moving_mean.data();
  params.scale = scale.data();
  params.shift = shift.data();

  // Inputs: threads 0-3 share input 0, the others have their own.
  std::vector<std::vector<float>> inputs;
  for (int i = 0; i < kThreads; ++i) inputs.push_back(Normal(nhwc.elements(), 5.0, 2.0, 50 + i));
  const auto input_of = [](int t) { return static_cast<size_t>(t < 4 ? 0 : t); };
  const auto geometry_of = [&](int t) { return t % 3 == 2 ? nchw : nhwc; };
  std::vector<std::vector<float>> expected;
  for (int t = 0; t < kThreads; ++t) {
    std::vector<float> y(nhwc.elements());
    Normalize(inputs[input_of(t)].data(), y.data(), geometry_of(t), params, Execution::Serial());
    expected.push_back(std::move(y));
  }
  std::vector<std::vector<float>> got(kThreads, std::vector<float>(nhwc.elements()));
  // Each thread also refolds into its own buffers from the shared state.
  std::vector<std::vector<float>> refolded(kThreads, std::vector<float>(2 * C));
  RunTogether([&](int t) {
    const size_t i = static_cast<size_t>(t);
    for (int repeat = 0; repeat < 3; ++repeat) {
      Normalize(inputs[input_of(t)].data(), got[i].data(), geometry_of(t), params);
      Fold(gamma.data(), beta.data(), moving_mean.data(), moving_variance.data(), C, 1e-3f,
           refolded[i].data(), refolded[i].data() + C);
    }
  });
  for (int t = 0; t < kThreads; ++t) {
    const size_t i = static_cast<size_t>(t);
    EXPECT_TRUE(SameBits(got[i], expected[i])) << "thread " << t;
    EXPECT_EQ(0, std::memcmp(refolded[i].data(), scale.data(), C * sizeof(float))) << t;
    EXPECT_EQ(0, std::memcmp(refolded[i].data() + C, shift.data(), C * sizeof(float))) << t;
  }
}

// BatchMoments on one shared input from many threads, each into its own
// outputs, in both layouts and with 16-bit data.
TEST(Concurrency, SharedInputMomentsFromManyThreads) {
  const std::vector<float> x = Normal(size_t{1} << 19, 1e3, 3.0, 9);
  std::vector<uint16_t> x16(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    uint32_t bits;
    std::memcpy(&bits, &x[i], sizeof(bits));
    x16[i] = static_cast<uint16_t>(bits >> 16);  // bfloat16 by truncation
  }
  const Geometry layouts[] = {PlanGeometry({512, 1024}, {-1}), PlanGeometry({8, 64, 1024}, {1})};
  for (const Geometry& g : layouts) {
    std::vector<double> mean(g.channels), variance(g.channels);
    std::vector<double> mean16(g.channels), variance16(g.channels);
    BatchMoments(x.data(), g, mean.data(), variance.data(), Execution::Serial());
    BatchMoments(x16.data(), DType::kBFloat16, g, mean16.data(), variance16.data(),
                 Execution::Serial());
    std::vector<std::vector<double>> m(kThreads), v(kThreads);
    RunTogether([&](int t) {
      const size_t i = static_cast<size_t>(t);
      m[i].resize(g.channels);
      v[i].resize(g.channels);
      if (t % 2 == 0) {
        BatchMoments(x.data(), g, m[i].data(), v[i].data());
      } else {
        BatchMoments(x16.data(), DType::kBFloat16, g, m[i].data(), v[i].data());
      }
    });
    for (int t = 0; t < kThreads; ++t) {
      const size_t i = static_cast<size_t>(t);
      EXPECT_TRUE(SameBits(m[i], t % 2 == 0 ? mean : mean16)) << "thread " << t;
      EXPECT_TRUE(SameBits(v[i], t % 2 == 0 ? variance : variance16)) << "thread " << t;
    }
  }
}

// A built layer in inference mode, used by one thread at a time but handed
// between threads (as a server's worker pool does): results do not depend on
// which thread ran the call.
TEST(Concurrency, OneLayerHandedBetweenThreadsSerially) {
  const LayerCase c = LayerCases()[0];
  BatchNorm layer(c.options);
  const size_t n = Count(c.shape);
  const std::vector<float> train = Normal(n, 2.0, 1.0, 11);
  std::vector<float> sink(n);
  layer.Forward(train.data(), sink.data(), c.shape, true);
  const std::vector<float> x = Normal(n, 2.0, 1.0, 12);
  std::vector<float> expected(n);
  layer.Forward(x.data(), expected.data(), c.shape, false, Execution::Serial());
  for (int t = 0; t < kThreads; ++t) {
    std::vector<float> y(n);
    std::thread([&] { layer.Forward(x.data(), y.data(), c.shape, false); }).join();
    EXPECT_TRUE(SameBits(y, expected)) << "thread " << t;
  }
}

// The C ABI from many threads: a layer handle per thread (training, then
// inference), bnorm_normalize and bnorm_moments on shared read-only inputs,
// and failing calls whose message stays with the thread that failed.
TEST(Concurrency, CApiFromManyThreads) {
  const int64_t shape[4] = {16, 16, 16, 64};
  const size_t n = 16 * 16 * 16 * 64;
  const int axis = -1;
  const std::vector<float> x = Normal(n, 4.0, 2.0, 31);
  const std::vector<float> mean(64, 4.0f), scale(64, 0.5f), shift(64, 1.0f);

  // Serial baselines.
  bnorm_options options;
  ASSERT_EQ(bnorm_options_init(&options), BNORM_STATUS_OK);
  const auto run_layer = [&](std::vector<float>* train_y, std::vector<float>* infer_y,
                             std::vector<float>* moving_mean) {
    bnorm_layer* layer = nullptr;
    if (bnorm_layer_create(&options, &layer) != BNORM_STATUS_OK) return false;
    bool ok = bnorm_layer_forward(layer, x.data(), train_y->data(), BNORM_DTYPE_F32, shape, 4, 1) ==
                  BNORM_STATUS_OK &&
              bnorm_layer_forward(layer, x.data(), infer_y->data(), BNORM_DTYPE_F32, shape, 4, 0) ==
                  BNORM_STATUS_OK &&
              bnorm_layer_get_state(layer, BNORM_STATE_MOVING_MEAN, moving_mean->data(), 64) ==
                  BNORM_STATUS_OK;
    bnorm_layer_destroy(layer);
    return ok;
  };
  std::vector<float> train0(n), infer0(n), mm0(64), norm0(n);
  std::vector<double> m0(64), v0(64);
  ASSERT_TRUE(run_layer(&train0, &infer0, &mm0)) << bnorm_last_error();
  ASSERT_EQ(bnorm_normalize(x.data(), norm0.data(), BNORM_DTYPE_F32, shape, 4, &axis, 1,
                            mean.data(), scale.data(), shift.data(), 64, BNORM_ACTIVATION_RELU),
            BNORM_STATUS_OK);
  ASSERT_EQ(bnorm_moments(x.data(), BNORM_DTYPE_F32, shape, 4, &axis, 1, m0.data(), v0.data(), 64),
            BNORM_STATUS_OK);

  std::vector<int> ok(kThreads, 0);
  std::vector<std::string> messages(kThreads);
  RunTogether([&](int t) {
    const size_t i = static_cast<size_t>(t);
    std::vector<float> train(n), infer(n), mm(64), norm(n);
    std::vector<double> m(64), v(64);
    bool good = run_layer(&train, &infer, &mm) && SameBits(train, train0) &&
                SameBits(infer, infer0) && SameBits(mm, mm0);
    good =
        good &&
        bnorm_normalize(x.data(), norm.data(), BNORM_DTYPE_F32, shape, 4, &axis, 1, mean.data(),
                        scale.data(), shift.data(), 64, BNORM_ACTIVATION_RELU) == BNORM_STATUS_OK &&
        SameBits(norm, norm0);
    good = good &&
           bnorm_moments(x.data(), BNORM_DTYPE_F32, shape, 4, &axis, 1, m.data(), v.data(), 64) ==
               BNORM_STATUS_OK &&
           SameBits(m, m0) && SameBits(v, v0);
    // A failure of this thread's own: channels off by the thread number.
    const size_t wrong = 65 + i;
    good = good && bnorm_moments(x.data(), BNORM_DTYPE_F32, shape, 4, &axis, 1, m.data(), v.data(),
                                 wrong) == BNORM_STATUS_SHAPE_MISMATCH;
    messages[i] = bnorm_last_error();
    ok[i] = good;
  });
  for (int t = 0; t < kThreads; ++t) {
    const size_t i = static_cast<size_t>(t);
    EXPECT_TRUE(ok[i]) << "thread " << t;
    EXPECT_NE(messages[i].find("channels is " + std::to_string(65 + i)), std::string::npos)
        << "thread " << t << ": " << messages[i];
  }
}

}  // namespace
}  // namespace bnorm
