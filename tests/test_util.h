// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the tests: seeded random tensors (the one generator of
// tools/common/random.h, so that a seed gives the same data with every
// compiler), guarded and deliberately misaligned buffers and the exactness
// metrics of issue 2. The SIMD target as a test parameter is tests/target_test.h.
#ifndef BNORM_TESTS_TEST_UTIL_H_
#define BNORM_TESTS_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <cstdlib>
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "bnorm/geometry.hpp"
#include "bnorm/kernels.hpp"
#include "src/ops/streaming.h"
#include "src/oracle/reference.h"
#include "tools/common/random.h"

namespace bnorm {
namespace test {

// Which tensors stream and which train channel by channel depends on the caches
// (src/plan/caches.h). The tests' shapes are chosen for one machine's, the one
// they were written on (512 KiB L2, a 32 MiB L3 shared by 2 CPUs), so every
// test binary decides as there, on any machine, unless BNORM_CACHES is set
// already. (Set before main: MachineCaches() reads it on first use.)
inline const bool kTestCachesSet =
    setenv("BNORM_CACHES", "l2=512K,llc=32M,llc_cpus=2", /*overwrite=*/0) == 0;

// Values in the one big channel of the heavy cases: 10^7 as issue 2 asks, or
// 10^6 in builds without heavy tests (sanitizers, emulators).
#ifdef BNORM_HEAVY_TESTS
constexpr size_t kHeavyValues = 10000000;
constexpr bool kHeavyTests = true;
#else
constexpr size_t kHeavyValues = 1000000;
// Cases that need tensors beyond the caches (tens of MB through the float64
// oracle) are skipped there.
constexpr bool kHeavyTests = false;
#endif

// The exactness thresholds of issue 2. The mean's error is relative to
// max(|mean|, std), since a mean near 0 has no meaningful relative error; the
// variance's is relative, or absolute when the exact variance is 0.
constexpr double kMeanTolerance = 1e-6;
constexpr double kVarianceTolerance = 1e-6;
constexpr double kZeroVarianceTolerance = 1e-12;
constexpr double kOutputTolerance = 1e-5;

// Smaller than Keras' default 1e-3 so that the normalized values of the
// tiny-std data are O(1) and any lost digit of the mean shows in the output.
constexpr double kEpsilon = 1e-5;

constexpr uint32_t kSeed = 20240611;

// The data distributions of issue 2: each value is N(mean, std) rounded to
// float.
struct Distribution {
  const char* name;
  double mean;
  double std;
};
constexpr Distribution kStandardNormal{"N(0, 1)", 0.0, 1.0};
constexpr Distribution kLargeMean{"N(1e4, 1)", 1e4, 1.0};
constexpr Distribution kLargeMeanTinyStd{"N(1e4, 1e-2)", 1e4, 1e-2};
constexpr Distribution kDistributions[] = {kStandardNormal, kLargeMean, kLargeMeanTinyStd};

// n values of N(mean, stddev), each rounded to float.
inline void FillNormal(float* data, size_t n, double mean, double stddev, uint64_t seed) {
  ::bnorm::testing::Random rng(seed);
  for (size_t i = 0; i < n; ++i) data[i] = static_cast<float>(rng.Normal(mean, stddev));
}

inline void FillNormal(float* data, size_t n, const Distribution& dist, uint64_t seed) {
  FillNormal(data, n, dist.mean, dist.std, seed);
}

inline std::vector<float> Normal(size_t n, double mean, double stddev, uint64_t seed) {
  std::vector<float> v(n);
  FillNormal(v.data(), n, mean, stddev, seed);
  return v;
}

inline std::vector<float> Normal(size_t n, const Distribution& dist, uint64_t seed) {
  return Normal(n, dist.mean, dist.std, seed);
}

// n values uniform in [low, high), each rounded to float.
inline std::vector<float> Uniform(size_t n, double low, double high, uint64_t seed) {
  ::bnorm::testing::Random rng(seed);
  std::vector<float> v(n);
  for (float& f : v) f = static_cast<float>(rng.Uniform(low, high));
  return v;
}

inline std::string Describe(const Geometry& g) {
  std::ostringstream s;
  s << "[" << g.outer << ", " << g.channels << ", " << g.inner << "] "
    << (g.channels_last() ? "channels-last" : "channels-first");
  if (g.group_rows != g.outer) {
    s << " (groups of " << g.group_rows << " rows, stride " << g.group_stride << ")";
  }
  return s.str();
}

// The size matrix of issue 2: 1, 2, 3, 17, 255, 4096 and 1000003 values per
// channel and 1, 3, 16, 17 and 1000 channels, every size and every channel
// count in both layouts, without the full (slow) cartesian product.
// Channels-first cannot hold 1 value per channel: it means inner > 1, so at
// least 2 values; [1, C, 1] is channels-last. Short channels-first runs
// over many rows ([85, 17, 3], [2048, 3, 2]) share one two-pass chunk.
inline std::vector<Geometry> SizeCases() {
  return {
      // Channels-last [n, C, 1].
      Geometry::Dense(1, 1000, 1),
      Geometry::Dense(1, 1, 1),
      Geometry::Dense(2, 17, 1),
      Geometry::Dense(3, 3, 1),
      Geometry::Dense(17, 16, 1),
      Geometry::Dense(17, 1000, 1),
      Geometry::Dense(255, 17, 1),
      Geometry::Dense(255, 1, 1),
      Geometry::Dense(4096, 3, 1),
      Geometry::Dense(4096, 1000, 1),
      Geometry::Dense(1000003, 1, 1),
      // Channels-first [outer, C, inner] with outer * inner = n.
      Geometry::Dense(1, 1000, 2),
      Geometry::Dense(1, 17, 3),
      Geometry::Dense(1, 3, 17),
      Geometry::Dense(15, 16, 17),
      Geometry::Dense(85, 17, 3),
      Geometry::Dense(3, 1, 85),
      Geometry::Dense(16, 17, 256),
      Geometry::Dense(2048, 3, 2),
      Geometry::Dense(64, 1000, 64),
      Geometry::Dense(1, 1, 1000003),
  };
}

// Calls f(offset) for every element of g (offsets from the base pointer), row
// by row, channel by channel.
template <class F>
void ForEachOffset(const Geometry& g, const F& f) {
  for (size_t o = 0; o < g.outer; ++o) {
    const size_t row = g.RowOffset(o);
    for (size_t c = 0; c < g.channels; ++c) {
      for (size_t i = 0; i < g.inner; ++i) f(row + c * g.ChannelStride() + i);
    }
  }
}

// Floats from the base pointer to one past the last element of g.
inline size_t Extent(const Geometry& g) {
  if (g.elements() == 0) return 0;
  return g.RowOffset(g.outer - 1) + (g.channels - 1) * g.ChannelStride() + g.inner;
}

// A quiet NaN with a payload no kernel produces: guard and untouched values.
inline float Sentinel() {
  const uint32_t bits = 0x7FC0BEEFu;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

inline bool IsSentinel(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  return bits == 0x7FC0BEEFu;
}

// `size` floats starting `offset` floats after a 64-byte boundary, between two
// guard zones of kGuard floats. Everything starts as Sentinel().
class GuardedBuffer {
 public:
  static constexpr size_t kGuard = 64;
  static constexpr size_t kAlignFloats = 16;  // 64 bytes

  explicit GuardedBuffer(size_t size, size_t offset = 0)
      : size_(size), storage_(size + offset + 2 * kGuard + kAlignFloats, Sentinel()) {
    // The first 64-byte boundary at least kGuard floats into the storage.
    const uintptr_t base = reinterpret_cast<uintptr_t>(storage_.data() + kGuard);
    const size_t skip = ((64 - base % 64) % 64) / sizeof(float);
    begin_ = kGuard + skip + offset;
  }

  float* data() { return storage_.data() + begin_; }
  const float* data() const { return storage_.data() + begin_; }
  size_t size() const { return size_; }
  float& operator[](size_t i) { return data()[i]; }

  // Copies `values` into the buffer (values.size() <= size()).
  void Assign(const std::vector<float>& values) { std::copy(values.begin(), values.end(), data()); }

  // Whether every float before data() and after data() + size() still holds
  // the sentinel.
  ::testing::AssertionResult GuardsIntact() const {
    for (size_t i = 0; i < storage_.size(); ++i) {
      if (i >= begin_ && i < begin_ + size_) continue;
      if (!IsSentinel(storage_[i])) {
        const long long at = static_cast<long long>(i) - static_cast<long long>(begin_);
        return ::testing::AssertionFailure() << "guard float at index " << at << " (buffer size "
                                             << size_ << ") was overwritten with " << storage_[i];
      }
    }
    return ::testing::AssertionSuccess();
  }

 private:
  size_t size_;
  std::vector<float> storage_;
  size_t begin_ = 0;
};

// Error of a mean relative to max(|ref_mean|, ref_std); NaN when got is NaN.
inline double MeanError(double got, double ref_mean, double ref_var) {
  const double scale = std::max(std::fabs(ref_mean), std::sqrt(ref_var));
  const double diff = std::fabs(got - ref_mean);
  return scale == 0.0 ? diff : diff / scale;
}

// Whether a variance is within the thresholds (false for NaN).
inline bool VarianceOk(double got, double ref_var) {
  if (ref_var == 0.0) return std::fabs(got) <= kZeroVarianceTolerance;
  return std::fabs(got - ref_var) / ref_var <= kVarianceTolerance;
}

// Compares per-channel statistics with the reference, ignoring channel
// `skip_channel` if given; the message names the first bad channel.
inline ::testing::AssertionResult MomentsNear(const std::vector<double>& mean,
                                              const std::vector<double>& variance,
                                              const std::vector<double>& ref_mean,
                                              const std::vector<double>& ref_var,
                                              size_t skip_channel = SIZE_MAX) {
  double worst_mean = 0.0, worst_var = 0.0;
  for (size_t c = 0; c < ref_mean.size(); ++c) {
    if (c == skip_channel) continue;
    const double em = MeanError(mean[c], ref_mean[c], ref_var[c]);
    if (!(em <= kMeanTolerance) || !VarianceOk(variance[c], ref_var[c])) {
      return ::testing::AssertionFailure()
             << "channel " << c << " of " << ref_mean.size() << ": mean " << mean[c]
             << " vs reference " << ref_mean[c] << " (error " << em << "), variance " << variance[c]
             << " vs reference " << ref_var[c];
    }
    worst_mean = std::max(worst_mean, em);
    if (ref_var[c] != 0.0) {
      worst_var = std::max(worst_var, std::fabs(variance[c] - ref_var[c]) / ref_var[c]);
    }
  }
  return ::testing::AssertionSuccess()
         << "worst mean error " << worst_mean << ", worst variance error " << worst_var;
}

// Compares y with the float64 reference at every element of g, except those
// for which skip(offset) is true. Fails on the first element off by more than
// kOutputTolerance (or NaN).
template <class Skip>
::testing::AssertionResult OutputNear(const float* y, const double* ref, const Geometry& g,
                                      const Skip& skip) {
  double worst = 0.0;
  size_t bad = SIZE_MAX;
  ForEachOffset(g, [&](size_t k) {
    if (bad != SIZE_MAX || skip(k)) return;
    const double err = std::fabs(static_cast<double>(y[k]) - ref[k]);
    if (!(err <= kOutputTolerance)) bad = k;
    worst = std::max(worst, err);
  });
  if (bad != SIZE_MAX) {
    return ::testing::AssertionFailure() << "element " << bad << " of " << Describe(g) << ": y "
                                         << y[bad] << " vs reference " << ref[bad];
  }
  return ::testing::AssertionSuccess() << "worst output error " << worst;
}

inline ::testing::AssertionResult OutputNear(const float* y, const double* ref, const Geometry& g) {
  return OutputNear(y, ref, g, [](size_t) { return false; });
}

// Normalize parameters built from exact statistics: scale = gamma /
// sqrt(var + eps), shift = beta, with random gamma (either sign) and beta
// that are floats, so that the reference sees the same values.
struct NormalizeSetup {
  std::vector<double> gamma, beta;
  std::vector<float> mean_hi, mean_lo, scale, shift;

  NormalizeParams params() const {
    NormalizeParams p;
    p.mean_hi = mean_hi.data();
    p.mean_lo = mean_lo.data();
    p.scale = scale.data();
    p.shift = shift.data();
    return p;
  }
};

inline NormalizeSetup MakeNormalizeSetup(const std::vector<double>& mean,
                                         const std::vector<double>& variance, uint32_t seed) {
  const size_t C = mean.size();
  ::bnorm::testing::Random rng(seed);
  NormalizeSetup s;
  s.gamma.resize(C);
  s.beta.resize(C);
  s.mean_hi.resize(C);
  s.mean_lo.resize(C);
  s.scale.resize(C);
  s.shift.resize(C);
  for (size_t c = 0; c < C; ++c) {
    const float magnitude = static_cast<float>(rng.Uniform(0.5, 2.0));
    const float gamma = (rng.Bits() & 1) ? magnitude : -magnitude;
    const float beta = static_cast<float>(rng.Uniform(-1.0, 1.0));
    s.gamma[c] = gamma;
    s.beta[c] = beta;
    SplitMean(mean[c], &s.mean_hi[c], &s.mean_lo[c]);
    s.scale[c] = static_cast<float>(gamma / std::sqrt(variance[c] + kEpsilon));
    s.shift[c] = beta;
  }
  return s;
}

// The reference output of Normalize for `setup` (sized Extent(g)).
inline std::vector<double> ReferenceOutput(const float* x, const Geometry& g,
                                           const std::vector<double>& mean,
                                           const std::vector<double>& variance,
                                           const NormalizeSetup& setup) {
  std::vector<double> y(Extent(g));
  reference::Normalize(x, g, mean.data(), variance.data(), setup.gamma.data(), setup.beta.data(),
                       kEpsilon, y.data());
  return y;
}

// Everything one Normalize comparison needs: parameters built from the exact
// statistics of x and the reference output.
struct Expected {
  std::vector<double> mean, variance;
  NormalizeSetup setup;
  std::vector<double> y;
};

inline Expected ReferenceFor(const float* x, const Geometry& g, uint32_t seed) {
  Expected e;
  e.mean.resize(g.channels);
  e.variance.resize(g.channels);
  reference::Moments(x, g, e.mean.data(), e.variance.data());
  e.setup = MakeNormalizeSetup(e.mean, e.variance, seed);
  e.y = ReferenceOutput(x, g, e.mean, e.variance, e.setup);
  return e;
}

// Shapes and bitwise comparison shared by the layer, concurrency and
// determinism tests.
using Shape = std::vector<int64_t>;

inline size_t Count(const Shape& shape) {
  size_t n = 1;
  for (int64_t s : shape) n *= static_cast<size_t>(s);
  return n;
}

template <class T>
bool SameBits(const std::vector<T>& a, const std::vector<T>& b) {
  // memcmp must not see the null data() of an empty vector.
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

// Rows of `row_bytes` for one of 8 slices: the 8 together exceed Normalize's
// streaming threshold (non-temporal stores), one slice alone does not.
inline size_t StreamingSliceRows(size_t row_bytes) {
  return StreamingThresholdBytes() * 9 / 64 / row_bytes + 1;
}

}  // namespace test
}  // namespace bnorm

#endif  // BNORM_TESTS_TEST_UTIL_H_
