// bnorm-verify: runs every kernel (BatchMoments, Normalize) on every SIMD
// target this CPU supports, on one thread and on all threads, against the
// float64 reference over a fixed matrix of shapes, layouts and value
// distributions. Prints one row per target x kernel x layout and exits non-zero
// on any failure; ctest runs it as `bnorm-verify --seed 1`.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "bnorm/error.hpp"
#include "bnorm/execution.hpp"
#include "bnorm/geometry.hpp"
#include "bnorm/kernels.hpp"
#include "src/oracle/reference.h"
#include "bnorm/targets.hpp"

namespace {

using bnorm::Execution;
using bnorm::Geometry;

// Tolerances against the float64 reference.
constexpr double kMeanTolerance = 1e-6;           // of max(|mean|, std)
constexpr double kVarianceTolerance = 1e-6;       // of the variance
constexpr double kZeroVarianceTolerance = 1e-12;  // absolute, when it is 0
constexpr double kOutputTolerance = 1e-5;         // absolute, normalized y
constexpr double kEpsilon = 1e-3;                 // Keras' default epsilon
constexpr uint64_t kDefaultSeed = 20240601;
// Floats on each side of y that the normalize kernel must leave untouched.
constexpr size_t kGuard = 64;
// Failures listed in full after the table (all of them are counted).
constexpr size_t kMaxListedFailures = 25;

const char* const kUsage =
    "usage: bnorm-verify [--target NAME] [--seed N] [--quick] [--help]\n"
    "\n"
    "Runs bnorm::BatchMoments and bnorm::Normalize on every supported SIMD\n"
    "target, serial and parallel, against the float64 reference over a fixed\n"
    "matrix of shapes, layouts and value distributions.\n"
    "\n"
    "  --target NAME  only this target (e.g. avx2; see the list printed "
    "first)\n"
    "  --seed N       seed of the random data (default 20240601)\n"
    "  --quick        a smaller matrix (no tensor above ~0.5M values)\n"
    "  --help         this text\n"
    "\n"
    "Exit status: 0 all pass, 1 a check failed, 2 bad arguments.\n";

// ---------------------------------------------------------------------------
// Command line.

struct Flags {
  std::string target;  // empty: every supported target
  uint64_t seed = kDefaultSeed;
  bool quick = false;
};

[[noreturn]] void UsageError(const std::string& message) {
  std::fprintf(stderr, "bnorm-verify: %s\n\n%s", message.c_str(), kUsage);
  std::exit(2);
}

// Accepts `--name value` and `--name=value`; returns false if argv[*i] is
// neither.
bool FlagValue(const std::string& name, int argc, char** argv, int* i,
               std::string* value) {
  const std::string arg = argv[*i];
  if (arg == name) {
    if (*i + 1 >= argc) UsageError("flag " + name + " needs a value");
    *value = argv[++*i];
    return true;
  }
  if (arg.compare(0, name.size() + 1, name + "=") == 0) {
    *value = arg.substr(name.size() + 1);
    return true;
  }
  return false;
}

Flags ParseFlags(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    std::string value;
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (arg == "--quick") {
      flags.quick = true;
    } else if (FlagValue("--target", argc, argv, &i, &value)) {
      if (value.empty()) UsageError("flag --target needs a target name");
      flags.target = value;
    } else if (FlagValue("--seed", argc, argv, &i, &value)) {
      char* end = nullptr;
      errno = 0;
      const unsigned long long seed = std::strtoull(value.c_str(), &end, 10);
      if (value.empty() || value[0] == '-' || *end != '\0' || errno != 0) {
        UsageError("flag --seed: '" + value +
                   "' is not an unsigned 64-bit integer");
      }
      flags.seed = seed;
    } else {
      UsageError("unknown flag '" + arg + "'");
    }
  }
  return flags;
}

// ---------------------------------------------------------------------------
// Test data.

// SplitMix64 with Box-Muller: the same data for a seed on every platform
// (std::normal_distribution is implementation-defined).
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}

  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1) with 53 random bits.
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  double Normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double u1 = 1.0 - Uniform();  // in (0, 1]: the log is finite
    const double u2 = Uniform();
    const double radius = std::sqrt(-2.0 * std::log(u1));
    const double angle = 2.0 * M_PI * u2;
    spare_ = radius * std::sin(angle);
    has_spare_ = true;
    return radius * std::cos(angle);
  }

 private:
  uint64_t state_;
  double spare_ = 0.0;
  bool has_spare_ = false;
};

// The normal distributions shift each channel's mean by up to +-std and widen
// its std by up to 3/8, so a kernel that mixes up channels cannot pass. The
// uniform distribution is exactly [0, 1) in every channel.
struct Distribution {
  const char* name;
  bool uniform;
  double mean;
  double std;
};

const Distribution kDistributions[] = {
    {"normal(0,1)", false, 0.0, 1.0},
    {"normal(1e4,1)", false, 1e4, 1.0},
    {"normal(1e4,1e-2)", false, 1e4, 1e-2},
    {"normal(-3,1e3)", false, -3.0, 1e3},
    {"uniform[0,1)", true, 0.0, 0.0},
};

float Sample(const Distribution& dist, size_t channel, Random* rng) {
  if (dist.uniform) return static_cast<float>(rng->Uniform());
  const double shift = 0.25 * (static_cast<double>(channel % 9) - 4.0);
  const double widen = 1.0 + 0.125 * static_cast<double>(channel % 4);
  return static_cast<float>(dist.mean + dist.std * shift +
                            dist.std * widen * rng->Normal());
}

// A float buffer aligned to 64 bytes, so that an offset of 1 float gives a
// pointer misaligned for every vector width.
class Buffer {
 public:
  explicit Buffer(size_t count)
      : data_(static_cast<float*>(std::aligned_alloc(64, Bytes(count)))) {
    if (data_ == nullptr) {
      std::fprintf(stderr, "bnorm-verify: out of memory (%zu floats)\n", count);
      std::exit(1);
    }
  }
  float* get() const { return data_.get(); }

 private:
  // aligned_alloc wants a multiple of the alignment.
  static size_t Bytes(size_t count) {
    return std::max<size_t>(1, (count * sizeof(float) + 63) / 64) * 64;
  }
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float, Free> data_;
};

// ---------------------------------------------------------------------------
// The matrix.

enum Layout { kChannelsLast = 0, kChannelsFirst = 1 };
const char* const kLayoutNames[] = {"channels-last", "channels-first"};
enum Kernel { kMoments = 0, kNormalize = 1 };
const char* const kKernelNames[] = {"moments", "normalize"};

struct Shape {
  Layout layout;
  size_t outer, channels, inner;
  bool quick;  // part of the --quick matrix
};

// Sizes chosen for the kernels' edges: 1, 3 and 17 values per channel;
// channel counts that leave tails on every vector width (3, 5, 17, 130,
// 1000); channels-first runs shorter than a vector, strided runs, and runs
// longer than a work block (2^16 values) that split into pieces; 1000003
// values per channel; and tensors of 2^18 values and more, where the kernels
// go parallel, so that thread-count independence is really exercised.
const Shape kShapes[] = {
    {kChannelsLast, 1, 5, 1, true},          // 1 value per channel
    {kChannelsLast, 3, 17, 1, true},         // 3 per channel
    {kChannelsLast, 17, 3, 1, true},         // 17 per channel
    {kChannelsLast, 64, 64, 1, true},        // NHWC 1x8x8x64
    {kChannelsLast, 1000, 130, 1, true},     // channel tails
    {kChannelsLast, 4096, 64, 1, true},      // 2^18 values: parallel
    {kChannelsLast, 100003, 1, 1, true},     // one channel
    {kChannelsLast, 777, 1000, 1, false},    // many channels, parallel
    {kChannelsLast, 25088, 64, 1, false},    // NHWC 8x56x56x64
    {kChannelsLast, 1000003, 3, 1, false},   // 1000003 per channel
    {kChannelsFirst, 1, 5, 3, true},         // 3 per channel
    {kChannelsFirst, 1, 7, 17, true},        // 17 per channel
    {kChannelsFirst, 3, 4, 17, true},        // strided runs
    {kChannelsFirst, 2, 64, 49, true},       // NCHW 2x64x7x7
    {kChannelsFirst, 100003, 2, 2, true},    // many 2-value runs, parallel
    {kChannelsFirst, 32, 64, 196, true},     // NCHW 32x64x14x14, parallel
    {kChannelsFirst, 8, 64, 3136, false},    // NCHW 8x64x56x56
    {kChannelsFirst, 5, 3, 70001, false},    // runs split into pieces
    {kChannelsFirst, 1, 2, 1000003, false},  // 1000003 per channel
};

std::string ShapeName(const Shape& s) {
  return std::to_string(s.outer) + "x" + std::to_string(s.channels) + "x" +
         std::to_string(s.inner);
}

std::string Join(const std::vector<std::string>& names) {
  std::string joined;
  for (const std::string& name : names) {
    joined += (joined.empty() ? "" : " ") + name;
  }
  return joined;
}

std::vector<std::string> Names(const std::vector<bnorm::TargetInfo>& targets) {
  std::vector<std::string> names;
  for (const bnorm::TargetInfo& t : targets) names.push_back(t.name);
  return names;
}

std::string Format(double v) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.9g", v);
  return text;
}

// |got - want|, with NaN as infinitely wrong (a comparison with NaN would
// otherwise hide it).
double AbsError(double got, double want) {
  const double e = std::fabs(got - want);
  return std::isnan(e) ? std::numeric_limits<double>::infinity() : e;
}

// ---------------------------------------------------------------------------
// Results: one row per target x kernel x layout, plus the failed checks.

struct Row {
  size_t cases = 0;
  double max_abs = 0.0;
  double max_rel = 0.0;
  bool bitwise_equal = true;
  bool pass = true;
};

class Report {
 public:
  explicit Report(const std::vector<std::string>& targets)
      : targets_(targets), rows_(targets.size() * 4) {}

  Row& At(size_t target, Kernel kernel, Layout layout) {
    return rows_[target * 4 + kernel * 2 + layout];
  }

  void Fail(Row* row, const std::string& message) {
    row->pass = false;
    if (failures_.size() < kMaxListedFailures) failures_.push_back(message);
    ++failure_count_;
  }

  size_t failure_count() const { return failure_count_; }

  void Print(size_t cases, double seconds) const {
    std::printf("\n%-8s  %-9s  %-14s  %5s  %11s  %11s  %7s  %s\n", "target",
                "kernel", "layout", "cases", "max abs err", "max rel err",
                "bitwise", "result");
    size_t rows = 0, failed_rows = 0;
    for (size_t t = 0; t < targets_.size(); ++t) {
      for (int k = 0; k < 2; ++k) {
        for (int l = 0; l < 2; ++l) {
          const Row& r = rows_[t * 4 + k * 2 + l];
          if (r.cases == 0) continue;
          ++rows;
          failed_rows += !r.pass;
          std::printf("%-8s  %-9s  %-14s  %5zu  %11.3e  %11.3e  %7s  %s\n",
                      targets_[t].c_str(), kKernelNames[k], kLayoutNames[l],
                      r.cases, r.max_abs, r.max_rel,
                      r.bitwise_equal ? "yes" : "NO", r.pass ? "PASS" : "FAIL");
        }
      }
    }
    std::printf(
        "\nmoments:   abs = max |mean - ref| and |var - ref|; rel = max of\n"
        "           |mean - ref| / max(|ref mean|, ref std) (limit %.0e) and\n"
        "           |var - ref| / ref var (limit %.0e; absolute %.0e where "
        "ref var = 0)\n"
        "normalize: abs = max |y - ref| (limit %.0e); rel = max |y - ref| / "
        "max(|ref|, 1)\n"
        "bitwise:   1 thread and all threads give identical bits (required)\n",
        kMeanTolerance, kVarianceTolerance, kZeroVarianceTolerance,
        kOutputTolerance);
    if (!failures_.empty()) {
      std::printf("\nfailed checks (%zu%s; shapes are outer x C x inner):\n",
                  failure_count_,
                  failure_count_ > failures_.size() ? ", first listed" : "");
      for (const std::string& f : failures_) std::printf("  %s\n", f.c_str());
    }
    std::printf(
        "\nbnorm-verify: %s: %zu of %zu rows failed, %zu failed checks; "
        "%zu cases x %zu targets x {1 thread, all threads}; %.1f s\n",
        failure_count_ == 0 ? "PASS" : "FAIL", failed_rows, rows,
        failure_count_, cases, targets_.size(), seconds);
  }

 private:
  std::vector<std::string> targets_;
  std::vector<Row> rows_;
  std::vector<std::string> failures_;
  size_t failure_count_ = 0;
};

// ---------------------------------------------------------------------------
// One case: a shape, a distribution and a base-pointer offset, with its data
// and reference results, checked on every target.

struct Case {
  Shape shape;
  Geometry g;
  const Distribution* dist;
  size_t offset;  // floats between a 64-byte boundary and x (and y)
  std::string name;
};

class CaseRunner {
 public:
  CaseRunner(const Case& c, uint64_t seed, Report* report)
      : c_(c),
        report_(report),
        n_(c.g.elements()),
        C_(c.g.channels),
        x_buffer_(n_ + c.offset),
        x_(x_buffer_.get() + c.offset),
        ref_mean_(C_),
        ref_var_(C_),
        ref_y_(n_),
        hi_(C_),
        lo_(C_),
        scale_(C_),
        shift_(C_) {
    Random rng(seed);
    for (size_t i = 0; i < n_; ++i) {
      x_[i] = Sample(*c.dist, (i / c.g.inner) % C_, &rng);
    }
    bnorm::reference::Moments(x_, c.g, ref_mean_.data(), ref_var_.data());

    // Normalize's coefficients from the reference statistics and random
    // gamma in [0.5, 2], beta in [-1, 1]. The reference gets the same float
    // gamma and beta, so only the kernel's arithmetic differs.
    std::vector<double> gamma(C_), beta(C_);
    for (size_t ch = 0; ch < C_; ++ch) {
      const float g = static_cast<float>(0.5 + 1.5 * rng.Uniform());
      const float b = static_cast<float>(-1.0 + 2.0 * rng.Uniform());
      gamma[ch] = g;
      beta[ch] = b;
      bnorm::SplitMean(ref_mean_[ch], &hi_[ch], &lo_[ch]);
      scale_[ch] = static_cast<float>(g / std::sqrt(ref_var_[ch] + kEpsilon));
      shift_[ch] = b;
    }
    bnorm::reference::Normalize(x_, c.g, ref_mean_.data(), ref_var_.data(),
                                gamma.data(), beta.data(), kEpsilon,
                                ref_y_.data());
  }

  void Run(size_t target_index, const std::string& target) {
    bnorm::ForceTarget(target);
    const std::string active = bnorm::ActiveTarget();
    if (active != target) {
      report_->Fail(&report_->At(target_index, kMoments, c_.shape.layout),
                    target + ": forced, but the kernels dispatch to " + active);
    }
    CheckMoments(target_index, target);
    CheckNormalize(target_index, target);
  }

 private:
  void CheckMoments(size_t t, const std::string& target) {
    Row& row = report_->At(t, kMoments, c_.shape.layout);
    ++row.cases;
    std::vector<double> mean(C_), var(C_), mean_p(C_), var_p(C_);
    bnorm::BatchMoments(x_, c_.g, mean.data(), var.data(), Execution::Serial());
    bnorm::BatchMoments(x_, c_.g, mean_p.data(), var_p.data(),
                        Execution::Parallel());
    if (std::memcmp(mean.data(), mean_p.data(), C_ * sizeof(double)) != 0 ||
        std::memcmp(var.data(), var_p.data(), C_ * sizeof(double)) != 0) {
      row.bitwise_equal = false;
      size_t ch = 0;
      while (ch + 1 < C_ && mean[ch] == mean_p[ch] && var[ch] == var_p[ch]) {
        ++ch;
      }
      report_->Fail(&row, target + " moments " + c_.name +
                              ": 1 thread and all threads differ (channel " +
                              std::to_string(ch) + ": mean " +
                              Format(mean[ch]) + " vs " + Format(mean_p[ch]) +
                              ", var " + Format(var[ch]) + " vs " +
                              Format(var_p[ch]) + ")");
    }
    // One failure per case: the worst channel and how many channels fail.
    size_t failing = 0, worst = 0;
    double worst_rel = -1.0;
    for (size_t ch = 0; ch < C_; ++ch) {
      const double std = std::sqrt(ref_var_[ch]);
      const double mean_abs = AbsError(mean[ch], ref_mean_[ch]);
      const double mean_rel = Relative(
          mean_abs, std::max(std::fabs(ref_mean_[ch]), std), kMeanTolerance);
      const double var_abs = AbsError(var[ch], ref_var_[ch]);
      const double var_rel =
          Relative(var_abs, ref_var_[ch], kVarianceTolerance);
      row.max_abs = std::max({row.max_abs, mean_abs, var_abs});
      row.max_rel = std::max({row.max_rel, mean_rel, var_rel});
      if (!(mean_rel <= kMeanTolerance) || !(var_rel <= kVarianceTolerance)) {
        ++failing;
        const double rel = std::max(mean_rel, var_rel);
        if (!(rel <= worst_rel)) {
          worst_rel = rel;
          worst = ch;
        }
      }
    }
    if (failing != 0) {
      const size_t ch = worst;
      const double std = std::sqrt(ref_var_[ch]);
      report_->Fail(&row,
                    target + " moments " + c_.name + ": " +
                        std::to_string(failing) + " of " + std::to_string(C_) +
                        " channels out of tolerance; " + "worst, channel " +
                        std::to_string(ch) + ": mean " + Format(mean[ch]) +
                        " (ref " + Format(ref_mean_[ch]) + ", rel err " +
                        Format(Relative(AbsError(mean[ch], ref_mean_[ch]),
                                        std::max(std::fabs(ref_mean_[ch]), std),
                                        kMeanTolerance)) +
                        "), var " + Format(var[ch]) + " (ref " +
                        Format(ref_var_[ch]) + ", rel err " +
                        Format(Relative(AbsError(var[ch], ref_var_[ch]),
                                        ref_var_[ch], kVarianceTolerance)) +
                        ")");
    }
  }

  // The error relative to `scale`. A zero scale (a channel of one value)
  // divides by kZeroVarianceTolerance / limit instead, which turns the
  // relative limit into the absolute bound kZeroVarianceTolerance.
  static double Relative(double abs, double scale, double limit) {
    return abs / (scale > 0.0 ? scale : kZeroVarianceTolerance / limit);
  }

  void CheckNormalize(size_t t, const std::string& target) {
    Row& row = report_->At(t, kNormalize, c_.shape.layout);
    ++row.cases;
    const bnorm::NormalizeParams params{hi_.data(), lo_.data(), scale_.data(),
                                        shift_.data()};
    const Buffer serial(GuardedSize());
    const Buffer parallel(GuardedSize());
    float* y = FillGuarded(serial);
    float* y_p = FillGuarded(parallel);
    bnorm::Normalize(x_, y, c_.g, params, Execution::Serial());
    bnorm::Normalize(x_, y_p, c_.g, params, Execution::Parallel());

    CheckGuards(serial, &row, target, "1 thread");
    CheckGuards(parallel, &row, target, "all threads");
    if (std::memcmp(y, y_p, n_ * sizeof(float)) != 0) {
      row.bitwise_equal = false;
      size_t i = 0;
      while (i + 1 < n_ && std::memcmp(&y[i], &y_p[i], sizeof(float)) == 0) {
        ++i;
      }
      report_->Fail(&row, target + " normalize " + c_.name +
                              ": 1 thread and all threads differ (element " +
                              std::to_string(i) + ": " + Format(y[i]) + " vs " +
                              Format(y_p[i]) + ")");
    }
    double worst = -1.0;
    size_t worst_index = 0;
    for (size_t i = 0; i < n_; ++i) {
      const double abs = AbsError(y[i], ref_y_[i]);
      row.max_rel =
          std::max(row.max_rel, abs / std::max(std::fabs(ref_y_[i]), 1.0));
      if (abs > worst) {
        worst = abs;
        worst_index = i;
      }
    }
    row.max_abs = std::max(row.max_abs, worst);
    if (!(worst <= kOutputTolerance)) {
      const size_t i = worst_index;
      report_->Fail(&row, target + " normalize " + c_.name + ": element " +
                              std::to_string(i) + " (channel " +
                              std::to_string((i / c_.g.inner) % C_) + "): y " +
                              Format(y[i]) + ", ref " + Format(ref_y_[i]) +
                              ", abs err " + Format(worst));
    }
  }

  // y sits kGuard + offset floats into a buffer of GuardedSize() floats that
  // all start as a signalling-NaN pattern; the kernel must only touch y.
  size_t GuardedSize() const { return kGuard + c_.offset + n_ + kGuard; }

  float* FillGuarded(const Buffer& buffer) const {
    std::fill(buffer.get(), buffer.get() + GuardedSize(), GuardValue());
    return buffer.get() + kGuard + c_.offset;
  }

  void CheckGuards(const Buffer& buffer, Row* row, const std::string& target,
                   const char* mode) {
    const float* base = buffer.get();
    const size_t y_begin = kGuard + c_.offset;
    const float guard = GuardValue();
    for (size_t i = 0; i < GuardedSize(); ++i) {
      if (i == y_begin) i += n_;
      if (i < GuardedSize() &&
          std::memcmp(base + i, &guard, sizeof(float)) != 0) {
        const long long at =
            static_cast<long long>(i) - static_cast<long long>(y_begin);
        report_->Fail(row, target + " normalize " + c_.name + " (" + mode +
                               "): wrote outside y, at y[" +
                               std::to_string(at) + "]");
        return;
      }
    }
  }

  static float GuardValue() {
    const uint32_t bits = 0x7FA5A5A5u;
    float f;
    std::memcpy(&f, &bits, sizeof(f));
    return f;
  }

  const Case& c_;
  Report* report_;
  const size_t n_;
  const size_t C_;
  const Buffer x_buffer_;
  float* const x_;
  std::vector<double> ref_mean_, ref_var_, ref_y_;
  std::vector<float> hi_, lo_, scale_, shift_;
};

// A per-case seed, so a case's data does not depend on which cases ran
// before it (--quick and the full matrix share their common cases).
uint64_t CaseSeed(uint64_t seed, size_t shape, size_t dist) {
  Random mix(seed ^ (0xD1B54A32D192ED03ull * (shape * 64 + dist + 1)));
  return mix.Next();
}

}  // namespace

int main(int argc, char** argv) {
  const Flags flags = ParseFlags(argc, argv);
  const auto start = std::chrono::steady_clock::now();
  const auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                         start)
        .count();
  };

  std::vector<std::string> targets;
  try {
    std::printf("compiled targets:  %s\n",
                Join(Names(bnorm::CompiledTargets())).c_str());
    std::printf("supported targets: %s\n",
                Join(Names(bnorm::SupportedTargets())).c_str());
    if (flags.target.empty()) {
      targets = Names(bnorm::SupportedTargets());
    } else {
      // ForceTarget's message names the target and lists the valid ones.
      bnorm::ForceTarget(flags.target);
      targets.push_back(bnorm::ActiveTarget());
      bnorm::ResetTarget();
    }
  } catch (const bnorm::Error& e) {
    std::fprintf(stderr, "bnorm-verify: --target %s: %s\n",
                 flags.target.c_str(), e.what());
    return 2;
  }
  std::printf("verifying:         %s (seed %llu, %s matrix)\n",
              Join(targets).c_str(),
              static_cast<unsigned long long>(flags.seed),
              flags.quick ? "quick" : "full");
  std::fflush(stdout);

  Report report(targets);
  size_t cases = 0;
  try {
    for (size_t s = 0; s < sizeof(kShapes) / sizeof(kShapes[0]); ++s) {
      const Shape& shape = kShapes[s];
      if (flags.quick && !shape.quick) continue;
      for (size_t d = 0; d < sizeof(kDistributions) / sizeof(kDistributions[0]);
           ++d) {
        Case c;
        c.shape = shape;
        c.g = Geometry::Dense(shape.outer, shape.channels, shape.inner);
        c.dist = &kDistributions[d];
        // Alternates aligned and misaligned bases so every shape sees both.
        c.offset = (s + d) % 2;
        c.name = std::string(kLayoutNames[shape.layout]) + " " +
                 ShapeName(shape) + " " + c.dist->name + " offset " +
                 std::to_string(c.offset);
        CaseRunner runner(c, CaseSeed(flags.seed, s, d), &report);
        for (size_t t = 0; t < targets.size(); ++t) runner.Run(t, targets[t]);
        ++cases;
      }
      // Progress only when the run is slow enough for someone to wonder.
      if (elapsed() > 10.0) {
        std::fprintf(stderr, "bnorm-verify: %5.1f s: %s %s done\n", elapsed(),
                     kLayoutNames[shape.layout], ShapeName(shape).c_str());
      }
    }
  } catch (const std::exception& e) {
    bnorm::ResetTarget();
    std::fprintf(stderr, "bnorm-verify: FAIL: %s\n", e.what());
    return 1;
  }
  bnorm::ResetTarget();

  report.Print(cases, elapsed());
  return report.failure_count() == 0 ? 0 : 1;
}
