// SPDX-License-Identifier: Apache-2.0
// The inference paths allocate nothing per call: bnorm::Normalize (every dtype,
// with and without activation, serial and parallel), BatchMoments of a
// cache-resident tensor, the C ABI's
// bnorm_normalize and bnorm_layer_forward, and BatchNorm::Forward in inference
// once the layer is built and has run once, nor BatchNorm::Forward in
// training on cache-resident tensors after its first call. Nor do the backward's engine calls
// (bnorm_backward_data always, bnorm_backward_reduce and BatchNorm::Backward
// on cache-resident tensors). The one-call training operations allocate only
// their per-channel coefficients on cache-resident tensors, as bnorm.h says.
// This binary replaces the global
// operator new with a counting one (every thread, oneTBB's workers included).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <optional>
#include <vector>

#include "bnorm/batch_norm.hpp"
#include "bnorm/bnorm.h"
#include "bnorm/execution.hpp"
#include "bnorm/geometry.hpp"
#include "bnorm/kernels.hpp"
#include "tests/test_util.h"

namespace {

std::atomic<size_t> g_allocations{0};

void* Allocate(size_t size) {
  ++g_allocations;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}

void* AllocateAligned(size_t size, std::align_val_t alignment) {
  ++g_allocations;
  const size_t a = static_cast<size_t>(alignment);
  if (void* p = std::aligned_alloc(a, (size + a - 1) / a * a)) return p;
  throw std::bad_alloc();
}

}  // namespace

// GCC pairs ::operator new with ::operator delete and warns when it sees the
// replacement's free() after inlining; the pair is malloc/free here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(size_t size) { return Allocate(size); }
void* operator new[](size_t size) { return Allocate(size); }
void* operator new(size_t size, const std::nothrow_t&) noexcept {
  try {
    return Allocate(size);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](size_t size, const std::nothrow_t&) noexcept {
  try {
    return Allocate(size);
  } catch (...) {
    return nullptr;
  }
}
void* operator new(size_t size, std::align_val_t a) { return AllocateAligned(size, a); }
void* operator new[](size_t size, std::align_val_t a) { return AllocateAligned(size, a); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t, std::align_val_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace bnorm {
namespace {

// Allocations made by `calls` calls of body() (after a warm-up call, which
// may initialize oneTBB, the target registry and the like).
template <class Body>
size_t AllocationsPerCalls(const Body& body, int calls = 3) {
  body();
  const size_t before = g_allocations.load();
  for (int i = 0; i < calls; ++i) body();
  return g_allocations.load() - before;
}

// Small shapes run on the calling thread; the large ones (over 2^18 values)
// take the oneTBB path when the execution allows it.
struct Case {
  std::vector<int64_t> shape;
  int axis;
};
const Case kCases[] = {
    {{2, 5, 5, 8}, -1},      // small NHWC
    {{2, 8, 5, 5}, 1},       // small NCHW
    {{16, 32, 32, 32}, -1},  // large NHWC
    {{16, 32, 32, 32}, 1},   // large NCHW
};

size_t Count(const std::vector<int64_t>& shape) {
  size_t n = 1;
  for (int64_t s : shape) n *= static_cast<size_t>(s);
  return n;
}

TEST(Allocations, TheCounterSeesAllocations) {
  const size_t before = g_allocations.load();
  std::vector<float>* v = new std::vector<float>(100);
  delete v;
  EXPECT_EQ(g_allocations.load() - before, 2u);
  // The library's own allocations count too (feature axes apart work on a
  // transposed copy, allocated per call).
  Options options;
  options.axis = {0, 2};
  BatchNorm layer{options};
  const std::vector<int64_t> shape{2, 4, 3};
  std::vector<float> x = test::Uniform(24, -4.0, 4.0, 1);
  EXPECT_GT(AllocationsPerCalls([&] { layer.Forward(x.data(), x.data(), shape, true); }), 0u);
}

TEST(Allocations, NormalizeAllocatesNothing) {
  for (const Case& c : kCases) {
    const Geometry g = PlanGeometry(c.shape, {c.axis});
    const size_t n = Count(c.shape);
    const std::vector<float> mean = test::Uniform(g.channels, -4.0, 4.0, 2),
                             scale = test::Uniform(g.channels, -4.0, 4.0, 3),
                             shift = test::Uniform(g.channels, -4.0, 4.0, 4);
    std::vector<uint8_t> x(n * 4), y(n * 4);
    const std::vector<float> values = test::Uniform(n, -4.0, 4.0, 5);
    std::memcpy(x.data(), values.data(), x.size());
    for (DType dtype : {DType::kFloat32, DType::kFloat16, DType::kBFloat16}) {
      for (Activation act : {Activation::kNone, Activation::kRelu, Activation::kRelu6}) {
        for (const Execution& exec : {Execution::Serial(), Execution::Parallel()}) {
          NormalizeParams p;
          p.mean_hi = mean.data();
          p.scale = scale.data();
          p.shift = shift.data();
          p.activation = act;
          EXPECT_EQ(AllocationsPerCalls([&] { Normalize(x.data(), y.data(), dtype, g, p, exec); }),
                    0u)
              << Name(dtype) << " " << static_cast<int>(act) << " " << n << " values, axis "
              << c.axis << (exec.mode == Execution::Mode::kSerial ? " serial" : " parallel");
        }
      }
    }
    // The float32 overload, with a low mean part.
    NormalizeParams p;
    p.mean_hi = mean.data();
    p.mean_lo = shift.data();
    p.scale = scale.data();
    p.shift = shift.data();
    const float* xf = values.data();
    float* yf = reinterpret_cast<float*>(y.data());
    EXPECT_EQ(AllocationsPerCalls([&] { Normalize(xf, yf, g, p); }), 0u);
  }
}

// Training's statistics pass on a cache-resident tensor (the per-block partial
// moments fit on the stack): no allocation either.
TEST(Allocations, BatchMomentsOfSmallTensorsAllocatesNothing) {
  for (const Geometry& g : {Geometry::Dense(28 * 28, 64, 1), Geometry::Dense(1, 64, 28 * 28),
                            Geometry::Dense(2, 1024, 1), Geometry::Dense(50, 8, 25)}) {
    std::vector<uint8_t> x(g.elements() * 4);
    const std::vector<float> values = test::Uniform(g.elements(), -4.0, 4.0, 9);
    std::memcpy(x.data(), values.data(), x.size());
    std::vector<double> mean(g.channels), variance(g.channels);
    for (DType dtype : {DType::kFloat32, DType::kFloat16, DType::kBFloat16}) {
      for (const Execution& exec : {Execution::Serial(), Execution::Parallel()}) {
        EXPECT_EQ(AllocationsPerCalls([&] {
                    BatchMoments(x.data(), dtype, g, mean.data(), variance.data(), exec);
                  }),
                  0u)
            << Name(dtype) << " " << g.outer << "x" << g.channels << "x" << g.inner;
      }
    }
  }
}

TEST(Allocations, CApiNormalizeAllocatesNothing) {
  for (int threads : {0, 1, 2}) {
    ASSERT_EQ(bnorm_set_max_threads(threads), BNORM_STATUS_OK);
    for (const Case& c : kCases) {
      const int64_t channels = c.shape[c.axis < 0 ? c.shape.size() - 1 : 1];
      const std::vector<float> coefficients =
          test::Uniform(3 * static_cast<size_t>(channels), -4.0, 4.0, 6);
      const std::vector<float> x = test::Uniform(Count(c.shape), -4.0, 4.0, 7);
      const std::vector<float> residual = test::Uniform(Count(c.shape), -4.0, 4.0, 8);
      std::vector<float> y(x.size());
      const float* mean = coefficients.data();
      const float* scale = mean + channels;
      const float* shift = scale + channels;
      const size_t C = static_cast<size_t>(channels);
      for (bnorm_dtype dtype : {BNORM_DTYPE_F32, BNORM_DTYPE_F16}) {
        bnorm_status status = BNORM_STATUS_OK, add_status = BNORM_STATUS_OK;
        const size_t allocations = AllocationsPerCalls([&] {
          status = bnorm_normalize(x.data(), y.data(), dtype, c.shape.data(), c.shape.size(),
                                   &c.axis, 1, mean, scale, shift, C, BNORM_ACTIVATION_RELU);
        });
        const size_t add_allocations = AllocationsPerCalls([&] {
          add_status = bnorm_normalize_add(x.data(), residual.data(), y.data(), dtype,
                                           c.shape.data(), c.shape.size(), &c.axis, 1, mean, scale,
                                           shift, C, BNORM_ACTIVATION_RELU);
        });
        EXPECT_EQ(status, BNORM_STATUS_OK) << bnorm_last_error();
        EXPECT_EQ(add_status, BNORM_STATUS_OK) << bnorm_last_error();
        EXPECT_EQ(allocations, 0u) << "threads " << threads << ", axis " << c.axis;
        EXPECT_EQ(add_allocations, 0u) << "residual, threads " << threads << ", axis " << c.axis;
      }
    }
  }
  ASSERT_EQ(bnorm_set_max_threads(0), BNORM_STATUS_OK);
}

// Inference after the first call reads the state and runs the kernel; it must
// not allocate in an engine's hot path.
TEST(Allocations, LayerInferenceForwardAllocatesNothing) {
  for (const Case& c : kCases) {
    Options options;
    options.axis = {c.axis};
    BatchNorm layer(options);
    const std::vector<float> x = test::Uniform(Count(c.shape), -4.0, 4.0, 8);
    std::vector<float> y(x.size());
    layer.Forward(x.data(), y.data(), c.shape, true);  // builds and trains once
    for (const Execution& exec : {Execution::Serial(), Execution::Parallel()}) {
      EXPECT_EQ(AllocationsPerCalls([&] {
                  layer.Forward(x.data(), y.data(), c.shape, false, exec);
                  layer.Forward(x.data(), y.data(), c.shape, std::nullopt, exec);
                }),
                0u)
          << Count(c.shape) << " values, axis " << c.axis;
    }
  }
}

// A training call keeps its working values in the layer: after the first call,
// cache-resident training allocates nothing, in every mode whose feature axes
// are adjacent (plain, ghost batches, renorm, adjustment, fused).
TEST(Allocations, LayerTrainingForwardAllocatesNothingOnceItHasRun) {
  const auto adjustment = [](const std::vector<int64_t>&, float* scale, float* bias) {
    scale[0] = 2.0f;
    bias[0] = 0.5f;
  };
  for (const Case& c : {kCases[0], kCases[1]}) {
    for (int mode = 0; mode < 5; ++mode) {
      Options options;
      options.axis = {c.axis};
      if (mode == 1) options.virtual_batch_size = 1;
      if (mode == 2) options.renorm = true;
      if (mode == 3) options.adjustment = adjustment;
      if (mode == 4) options.fused = Fused::kTrue;
      BatchNorm layer(options);
      const std::vector<float> x = test::Uniform(Count(c.shape), -4.0, 4.0, 8);
      std::vector<float> y(x.size());
      for (const Execution& exec : {Execution::Serial(), Execution::Parallel()}) {
        EXPECT_EQ(AllocationsPerCalls([&] {
                    layer.Forward(x.data(), y.data(), c.shape, true, exec);
                    layer.Forward(x.data(), y.data(), c.shape, false, exec);
                  }),
                  0u)
            << Count(c.shape) << " values, axis " << c.axis << ", mode " << mode;
      }
    }
  }
}

TEST(Allocations, LayerInferenceForwardAllocatesNothingFor16BitData) {
  for (const Case& c : kCases) {
    Options options;
    options.axis = {c.axis};
    BatchNorm layer(options);
    const std::vector<uint16_t> x(Count(c.shape), 0x3c00);  // 1.0 in float16 and ~1.0 in bfloat16
    std::vector<uint16_t> y(x.size());
    for (DType dtype : {DType::kFloat16, DType::kBFloat16}) {
      layer.Forward(x.data(), y.data(), dtype, c.shape, true);
      EXPECT_EQ(
          AllocationsPerCalls([&] { layer.Forward(x.data(), y.data(), dtype, c.shape, false); }),
          0u)
          << Name(dtype) << ", " << Count(c.shape) << " values, axis " << c.axis;
    }
  }
}

TEST(Allocations, CApiLayerInferenceAllocatesNothing) {
  for (const Case& c : kCases) {
    bnorm_options options;
    ASSERT_EQ(bnorm_options_init(&options), BNORM_STATUS_OK);
    options.axes[0] = c.axis;
    bnorm_layer* layer = nullptr;
    ASSERT_EQ(bnorm_layer_create(&options, &layer), BNORM_STATUS_OK);
    const std::vector<float> x = test::Uniform(Count(c.shape), -4.0, 4.0, 9);
    std::vector<float> y(x.size());
    ASSERT_EQ(bnorm_layer_forward(layer, x.data(), y.data(), BNORM_DTYPE_F32, c.shape.data(),
                                  c.shape.size(), 1),
              BNORM_STATUS_OK);
    bnorm_status status = BNORM_STATUS_OK;
    EXPECT_EQ(AllocationsPerCalls([&] {
                status = bnorm_layer_forward(layer, x.data(), y.data(), BNORM_DTYPE_F32,
                                             c.shape.data(), c.shape.size(), 0);
              }),
              0u)
        << Count(c.shape) << " values, axis " << c.axis;
    EXPECT_EQ(status, BNORM_STATUS_OK) << bnorm_last_error();
    bnorm_layer_destroy(layer);
  }
}

TEST(Allocations, CApiBackwardPassesAllocateNothing) {
  for (int threads : {0, 1, 2}) {
    ASSERT_EQ(bnorm_set_max_threads(threads), BNORM_STATUS_OK);
    for (const Case& c : kCases) {
      const size_t channels = static_cast<size_t>(c.shape[c.axis < 0 ? c.shape.size() - 1 : 1]);
      const std::vector<float> p = test::Uniform(5 * channels, 0.5, 2.0, 10);
      const float *hi = p.data(), *lo = hi + channels, *k = lo + channels, *a = k + channels,
                  *b = a + channels;
      const std::vector<float> x = test::Uniform(Count(c.shape), -4.0, 4.0, 11);
      std::vector<float> dx(x.size());
      std::vector<double> s1(channels), s2(channels);
      bnorm_status status = BNORM_STATUS_OK;
      EXPECT_EQ(AllocationsPerCalls([&] {
                  status = bnorm_backward_data(
                      x.data(), x.data(), nullptr, dx.data(), BNORM_DTYPE_F32, c.shape.data(),
                      c.shape.size(), &c.axis, 1, hi, lo, k, a, b, channels, BNORM_ACTIVATION_NONE);
                }),
                0u)
          << "threads " << threads << ", " << Count(c.shape) << " values, axis " << c.axis;
      EXPECT_EQ(status, BNORM_STATUS_OK) << bnorm_last_error();
      // The reduction's per-block partial sums fit its 16 KiB buffer here.
      if (Count(c.shape) > 1000) continue;
      EXPECT_EQ(AllocationsPerCalls([&] {
                  status = bnorm_backward_reduce(
                      x.data(), x.data(), nullptr, BNORM_DTYPE_F32, c.shape.data(), c.shape.size(),
                      &c.axis, 1, hi, lo, s1.data(), s2.data(), channels, BNORM_ACTIVATION_NONE);
                }),
                0u)
          << "threads " << threads << ", axis " << c.axis;
      EXPECT_EQ(status, BNORM_STATUS_OK) << bnorm_last_error();
    }
  }
  ASSERT_EQ(bnorm_set_max_threads(0), BNORM_STATUS_OK);
}

// bnorm_training_normalize and bnorm_training_backward keep their per-channel
// coefficients (4 and 3 arrays) on the stack up to 1024 channels: on tensors
// the caches hold they allocate nothing, for any thread count.
TEST(Allocations, CApiTrainingCallsAllocateNothing) {
  for (int threads : {0, 1, 2}) {
    ASSERT_EQ(bnorm_set_max_threads(threads), BNORM_STATUS_OK);
    for (const Case& c : kCases) {
      const size_t channels = static_cast<size_t>(c.shape[c.axis < 0 ? c.shape.size() - 1 : 1]);
      const std::vector<float> x = test::Uniform(Count(c.shape), -4.0, 4.0, 13),
                               gamma = test::Uniform(channels, 0.5, 2.0, 14);
      std::vector<float> y(x.size()), hi(channels), lo(channels);
      std::vector<double> mean(channels), variance(channels), s1(channels), s2(channels);
      bnorm_status status = BNORM_STATUS_OK;
      const auto forward = [&] {
        status = bnorm_training_normalize(x.data(), y.data(), BNORM_DTYPE_F32, c.shape.data(),
                                          c.shape.size(), &c.axis, 1, gamma.data(), nullptr, 1e-3,
                                          mean.data(), variance.data(), channels);
      };
      EXPECT_EQ(AllocationsPerCalls(forward, 1), 0u)
          << "threads " << threads << ", " << Count(c.shape) << " values, axis " << c.axis;
      EXPECT_EQ(status, BNORM_STATUS_OK) << bnorm_last_error();
      for (size_t ch = 0; ch < channels; ++ch) SplitMean(mean[ch], &hi[ch], &lo[ch]);
      EXPECT_LE(AllocationsPerCalls(
                    [&] {
                      status = bnorm_training_backward(
                          x.data(), x.data(), y.data(), BNORM_DTYPE_F32, c.shape.data(),
                          c.shape.size(), &c.axis, 1, hi.data(), lo.data(), variance.data(),
                          gamma.data(), 1e-3, s1.data(), s2.data(), channels);
                    },
                    1),
                0u)
          << "threads " << threads << ", " << Count(c.shape) << " values, axis " << c.axis;
      EXPECT_EQ(status, BNORM_STATUS_OK) << bnorm_last_error();
    }
  }
  ASSERT_EQ(bnorm_set_max_threads(0), BNORM_STATUS_OK);
}

// The layer keeps what Backward needs in arrays sized at build (and by the
// first training call with ghost batches): a Backward allocates nothing.
TEST(Allocations, LayerBackwardAllocatesNothing) {
  Options ghosts;
  ghosts.virtual_batch_size = 1;  // two ghosts of the batch of 2
  for (const Options& options : {Options(), ghosts}) {
    for (const Case& c : {kCases[0], kCases[1]}) {
      Options o = options;
      o.axis = {c.axis};
      BatchNorm layer(o);
      const std::vector<float> x = test::Uniform(Count(c.shape), -4.0, 4.0, 12);
      std::vector<float> y(x.size()), dx(x.size());
      for (bool training : {true, false}) {
        layer.Forward(x.data(), y.data(), c.shape, training);
        EXPECT_EQ(AllocationsPerCalls([&] {
                    layer.Backward(x.data(), x.data(), dx.data(), c.shape);
                    layer.Backward(x.data(), dx.data(), dx.data(), c.shape);
                  }),
                  0u)
            << "training " << training << ", axis " << c.axis;
      }
    }
  }
}

}  // namespace
}  // namespace bnorm
