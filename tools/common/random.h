// SPDX-License-Identifier: Apache-2.0
// The one seeded generator of the tools and the tests. SplitMix64 for the bits, and the uniform
// and normal draws computed here rather than by <random>'s distributions (whose output is
// implementation-defined), so that a seed gives the same data with every compiler and standard
// library. Fast enough to fill hundreds of MB for the benchmarks.
#ifndef BNORM_TOOLS_COMMON_RANDOM_H_
#define BNORM_TOOLS_COMMON_RANDOM_H_

#include <cmath>
#include <cstddef>
#include <cstdint>

namespace bnorm {
namespace testing {

class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}

  // 64 random bits (SplitMix64, Steele, Lea and Flood 2014).
  uint64_t Bits() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

  // Uniform in [0, 1), 53 random bits.
  double Uniform() { return static_cast<double>(Bits() >> 11) * 0x1.0p-53; }
  // Uniform in [lo, hi).
  double Uniform(double lo, double hi) { return lo + (hi - lo) * Uniform(); }
  // Uniform integer in [0, n), n >= 1 (the modulo bias is below 2^-40 for n < 2^24).
  size_t Index(size_t n) { return static_cast<size_t>(Bits() % n); }

  // Standard normal (Box-Muller; the second value of each pair is kept for the next call).
  double Normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    // 1 - Uniform() is in (0, 1], so the logarithm is finite.
    const double radius = std::sqrt(-2.0 * std::log(1.0 - Uniform()));
    const double angle = 2.0 * 3.14159265358979323846 * Uniform();
    spare_ = radius * std::sin(angle);
    has_spare_ = true;
    return radius * std::cos(angle);
  }
  double Normal(double mean, double stddev) { return mean + stddev * Normal(); }

 private:
  uint64_t state_;
  double spare_ = 0.0;
  bool has_spare_ = false;
};

}  // namespace testing
}  // namespace bnorm

#endif  // BNORM_TOOLS_COMMON_RANDOM_H_
