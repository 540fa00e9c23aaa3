// SPDX-License-Identifier: Apache-2.0
// Google Benchmark suite for the kernels, BatchMoments, Normalize and the
// backward pass's BackwardReduce and BackwardData, on
// every SIMD target this CPU supports, on one thread and on all threads.
// Benchmark names read target/kernel/layout/shape/threads, e.g.
//   avx3/normalize/nchw/32x64x56x56/threads:1
// so --benchmark_filter can pick any slice (e.g. 'avx2/moments/' or
// '/nhwc/.*threads:1$'). Throughput is reported as bytes per second of the
// minimum memory traffic: read (the roof: a plain pass over x) and moments
// read x once (4 bytes per element),
// normalize reads x and writes y (8 bytes per element), backward-reduce reads x
// and dy (8 bytes) and backward-data reads x and dy and writes dx (12 bytes).
#include <benchmark/benchmark.h>
#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_reduce.h>
#include <oneapi/tbb/task_arena.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "bnorm/backward.hpp"
#include "bnorm/error.hpp"
#include "bnorm/execution.hpp"
#include "bnorm/geometry.hpp"
#include "bnorm/kernels.hpp"
#include "bnorm/targets.hpp"

namespace {

struct Shape {
  const char* layout;  // nhwc, nchw or dense (channels-last [N, C])
  const char* name;    // in the layout's own axis order
  size_t outer, channels, inner;
};

// ResNet-sized activations (25.7 and 103 MB, beyond the caches), a dense layer's [N, C], and one
// cache-resident activation in both layouts, where the fixed cost per call dominates.
const Shape kShapes[] = {
    {"nhwc", "32x56x56x64", 32 * 56 * 56, 64, 1}, {"nhwc", "32x56x56x256", 32 * 56 * 56, 256, 1},
    {"nchw", "32x64x56x56", 32, 64, 56 * 56},     {"nchw", "32x256x56x56", 32, 256, 56 * 56},
    {"dense", "4096x1024", 4096, 1024, 1},        {"nhwc", "1x28x28x64", 28 * 28, 64, 1},
    {"nchw", "1x64x28x28", 1, 64, 28 * 28},       {"nchw", "64x256x14x14", 64, 256, 14 * 14},
};
constexpr size_t kNumShapes = sizeof(kShapes) / sizeof(kShapes[0]);

// kRead is the roof for moments: XOR of every 64-bit word of x, which the
// compiler vectorizes, so it runs at the read bandwidth of the memory system.
enum class Kernel { kRead, kMoments, kNormalize, kBackwardReduce, kBackwardData };

const char* KernelName(Kernel kernel) {
  switch (kernel) {
    case Kernel::kRead:
      return "read";
    case Kernel::kMoments:
      return "moments";
    case Kernel::kNormalize:
      return "normalize";
    case Kernel::kBackwardReduce:
      return "backward-reduce";
    case Kernel::kBackwardData:
      return "backward-data";
  }
  return "?";
}

uint64_t XorWords(const float* x, size_t begin, size_t end) {
  uint64_t acc = 0;
  for (size_t i = begin; i + 2 <= end; i += 2) {
    uint64_t word;
    std::memcpy(&word, x + i, sizeof(word));
    acc ^= word;
  }
  return acc;
}

// 64-byte aligned, as inference engines allocate activations (Normalize's
// streaming stores need aligned rows; a plain std::vector is 16-byte aligned).
struct AlignedFloats {
  explicit AlignedFloats(size_t n)
      : count(n),
        data_(static_cast<float*>(std::aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64))) {
    if (data_ == nullptr) throw std::bad_alloc();
    std::fill(data_.get(), data_.get() + n, 0.0f);  // pages mapped before any timing
  }
  float* data() const { return data_.get(); }
  size_t size() const { return count; }
  float* begin() const { return data_.get(); }
  float* end() const { return data_.get() + count; }

 private:
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  size_t count;
  std::unique_ptr<float[], Free> data_;
};

uint64_t ReadAll(const AlignedFloats& x, bool parallel) {
  if (!parallel) return XorWords(x.data(), 0, x.size());
  return tbb::parallel_reduce(
      tbb::blocked_range<size_t>(0, x.size() / 2, size_t{1} << 15), uint64_t{0},
      [&](const tbb::blocked_range<size_t>& r, uint64_t acc) {
        return acc ^ XorWords(x.data(), 2 * r.begin(), 2 * r.end());
      },
      [](uint64_t a, uint64_t b) { return a ^ b; });
}

// The input, output, normalize coefficients and backward inputs of one shape
// (dy and dx are allocated at the first backward benchmark of the shape).
struct Tensor {
  explicit Tensor(const Shape& s)
      : g(bnorm::Geometry::Dense(s.outer, s.channels, s.inner)),
        x(g.elements()),
        y(g.elements()),
        mean(s.channels),
        variance(s.channels),
        hi(s.channels),
        lo(s.channels),
        scale(s.channels),
        shift(s.channels, 0.0f) {
    std::mt19937 rng(42);
    std::normal_distribution<float> normal(1.0f, 2.0f);
    for (float& v : x) v = normal(rng);
    bnorm::BatchMoments(x.data(), g, mean.data(), variance.data());
    for (size_t c = 0; c < s.channels; ++c) {
      bnorm::SplitMean(mean[c], &hi[c], &lo[c]);
      scale[c] = static_cast<float>(1.0 / std::sqrt(variance[c] + 1e-3));
    }
  }

  // dy from N(0, 1) and the data pass's coefficients, as a training step forms them.
  void PrepareBackward() {
    if (dy != nullptr) return;
    dy = std::make_unique<AlignedFloats>(g.elements());
    dx = std::make_unique<AlignedFloats>(g.elements());
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (float& v : *dy) v = normal(rng);
    const size_t C = g.channels;
    std::vector<double> s1(C), s2(C);
    bnorm::BackwardReduce(x.data(), dy->data(), bnorm::DType::kFloat32, g,
                          bnorm::BackwardReduceParams{hi.data(), lo.data()}, s1.data(), s2.data());
    const double n = static_cast<double>(g.reduced());
    k.resize(C);
    a.resize(C);
    b.resize(C);
    for (size_t c = 0; c < C; ++c) {
      k[c] = scale[c];
      a[c] = static_cast<float>(s1[c] / n);
      b[c] = static_cast<float>(static_cast<double>(scale[c]) * scale[c] * s2[c] / n);
    }
  }

  bnorm::Geometry g;
  AlignedFloats x, y;
  std::vector<double> mean, variance;
  std::vector<float> hi, lo, scale, shift;
  std::unique_ptr<AlignedFloats> dy, dx;
  std::vector<float> k, a, b;
};

// One tensor at a time: benchmarks run in registration order, shape by shape,
// so keeping only the current shape's data bounds the memory to ~52 MB (~103 MB
// once the backward benchmarks add dy and dx).
Tensor& TensorFor(size_t shape) {
  static size_t current = kNumShapes;
  static std::unique_ptr<Tensor> tensor;
  if (current != shape) {
    tensor.reset();
    tensor = std::make_unique<Tensor>(kShapes[shape]);
    current = shape;
  }
  return *tensor;
}

void RunKernel(benchmark::State& state, const std::string& target, size_t shape, Kernel kernel,
               bool parallel) {
  // Forcing is not thread-safe: done here, before any parallel work.
  try {
    bnorm::ForceTarget(target);
  } catch (const bnorm::Error& e) {
    state.SkipWithError(e.what());
    return;
  }
  if (bnorm::ActiveTarget() != target) {
    state.SkipWithError(("dispatch chose " + bnorm::ActiveTarget()).c_str());
    return;
  }
  Tensor& t = TensorFor(shape);
  const bnorm::Execution exec =
      parallel ? bnorm::Execution::Parallel() : bnorm::Execution::Serial();
  const int64_t elements = static_cast<int64_t>(t.g.elements());
  if (kernel == Kernel::kRead) {
    for (auto _ : state) benchmark::DoNotOptimize(ReadAll(t.x, parallel));
    state.SetBytesProcessed(state.iterations() * elements * 4);
  } else if (kernel == Kernel::kMoments) {
    for (auto _ : state) {
      bnorm::BatchMoments(t.x.data(), t.g, t.mean.data(), t.variance.data(), exec);
      benchmark::DoNotOptimize(t.mean.data());
      benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * elements * 4);
  } else if (kernel == Kernel::kBackwardReduce) {
    t.PrepareBackward();
    std::vector<double> s1(t.g.channels), s2(t.g.channels);
    const bnorm::BackwardReduceParams params{t.hi.data(), t.lo.data()};
    for (auto _ : state) {
      bnorm::BackwardReduce(t.x.data(), t.dy->data(), bnorm::DType::kFloat32, t.g, params,
                            s1.data(), s2.data(), exec);
      benchmark::DoNotOptimize(s1.data());
      benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * elements * 8);
  } else if (kernel == Kernel::kBackwardData) {
    t.PrepareBackward();
    const bnorm::BackwardDataParams params{t.hi.data(), t.lo.data(), t.k.data(), t.a.data(),
                                           t.b.data()};
    for (auto _ : state) {
      bnorm::BackwardData(t.x.data(), t.dy->data(), t.dx->data(), bnorm::DType::kFloat32, t.g,
                          params, exec);
      benchmark::DoNotOptimize(t.dx->data());
      benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * elements * 12);
  } else {
    const bnorm::NormalizeParams params{t.hi.data(), t.lo.data(), t.scale.data(), t.shift.data()};
    for (auto _ : state) {
      bnorm::Normalize(t.x.data(), t.y.data(), t.g, params, exec);
      benchmark::DoNotOptimize(t.y.data());
      benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * elements * 8);
  }
  state.SetItemsProcessed(state.iterations() * elements);
}

std::string Join(const std::vector<bnorm::TargetInfo>& targets) {
  std::string names;
  for (const bnorm::TargetInfo& t : targets) {
    names += (names.empty() ? "" : " ") + t.name;
  }
  return names;
}

// Shape-major order (see TensorFor); within a shape, the targets of one
// kernel and thread mode sit next to each other for comparison.
void RegisterAll() {
  const std::vector<bnorm::TargetInfo> targets = bnorm::SupportedTargets();
  const std::string all_threads =
      "threads:" + std::to_string(tbb::this_task_arena::max_concurrency());
  for (size_t s = 0; s < kNumShapes; ++s) {
    for (Kernel kernel : {Kernel::kRead, Kernel::kMoments, Kernel::kNormalize,
                          Kernel::kBackwardReduce, Kernel::kBackwardData}) {
      for (bool parallel : {false, true}) {
        for (const bnorm::TargetInfo& target : targets) {
          // The read roof does not depend on the target: once, under the best.
          if (kernel == Kernel::kRead && &target != &targets.front()) continue;
          const std::string name = target.name + "/" + KernelName(kernel) + "/" +
                                   kShapes[s].layout + "/" + kShapes[s].name + "/" +
                                   (parallel ? all_threads : std::string("threads:1"));
          benchmark::RegisterBenchmark(
              name.c_str(),
              [target = target.name, s, kernel, parallel](benchmark::State& state) {
                RunKernel(state, target, s, kernel, parallel);
              })
              // Wall time: with threads, the main thread's CPU time says
              // nothing about the throughput.
              ->UseRealTime()
              ->Unit(benchmark::kMicrosecond);
        }
      }
    }
  }
  benchmark::AddCustomContext("bnorm_compiled_targets", Join(bnorm::CompiledTargets()));
  benchmark::AddCustomContext("bnorm_supported_targets", Join(targets));
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  RegisterAll();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  bnorm::ResetTarget();
  return 0;
}
