// bnorm-bench: how fast bnorm normalizes a batch, measured against the
// machine's own copy bandwidth in the same run (the roof of a memory-bound
// pass), the scalar float64 reference and, when built with it, oneDNN on the
// same buffers. DESIGN.md ("Memory traffic and the roof") says why these are
// the numbers that matter; --help lists the flags.
#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/info.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/task_arena.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <new>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bnorm/batch_norm.hpp"
#include "bnorm/dtype.hpp"
#include "bnorm/error.hpp"
#include "bnorm/execution.hpp"
#include "bnorm/fold.hpp"
#include "bnorm/geometry.hpp"
#include "src/oracle/keras_reference.h"
#include "bnorm/kernels.hpp"
#include "src/oracle/reference.h"
#include "bnorm/targets.hpp"
#include "src/ops/half.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BNORM_BENCH_X86 1
#else
#define BNORM_BENCH_X86 0
#endif

#if BNORM_HAVE_ONEDNN
#include <unordered_map>

#include "oneapi/dnnl/dnnl.hpp"
#if BNORM_HAVE_OPENMP
#include <omp.h>
#endif
#endif

namespace {

constexpr char kUsage[] = R"(usage: bnorm-bench [flags]

Times bnorm's batch normalization on one case or a sweep and prints each
result as GB/s on the minimum traffic, as a percentage of the machine's copy
roof measured in the same run, and as a speedup over the float64 reference.

Cases (default: 32,256,56,56 nhwc):
  --shape N,C,H,W        a shape; any rank; repeatable. With a layout it is the
                         logical N,C,... order; with --axis it is memory order
  --shapes-file F        one shape per line, optionally followed by a layout
                         (nhwc, nchw) or axis=A; '#' starts a comment
  --layout nhwc|nchw     nhwc: memory [N,H,W,C], axis -1 (default);
                         nchw: memory [N,C,H,W], axis 1; rank 2 is dense [N,C]
  --axis A               feature axis or axes ("1" or "1,2") of a memory-order
                         shape; cannot be combined with --layout

What runs:
  --mode inference|training|both   default both. inference: Normalize with
                         folded moving statistics; training: BatchMoments, fold,
                         Normalize and the moving-average update
  --dtype f32|bf16|f16   element type of x and y (default f32; float32,
                         bfloat16 and float16 also work); statistics and
                         coefficients stay float32
  --threads N[,N...]     default all cores; 1 is Execution::Serial(), more is a
                         tbb::task_arena(N)
  --target NAME|all      a SIMD target (default: the dispatched best); all runs
                         every target this CPU supports
  --virtual-batch-size V ghost batches of V samples (V >= 1 must divide the
                         batch, the first size in memory order)
  --renorm               batch renormalization (Keras' default clipping and
                         renorm momentum)
                         With either flag, training runs the whole layer,
                         bnorm::BatchNorm::Forward (the case's axes, other
                         options Keras' defaults), whose moving statistics
                         update on every call, and its reference is the float64
                         Keras oracle on whole leading samples (a multiple of
                         V). Inference is unchanged: Keras inference ignores
                         ghost batches and renorm
  --compare onednn       also time oneDNN's batch_normalization_forward on the
                         same buffers and threads (bf16/f16 data with f32
                         statistics), and check it agrees. Not compared: a
                         dtype this oneDNN has no kernel for, and training with
                         --virtual-batch-size or --renorm (oneDNN has neither)

Timing and output:
  --repeat R             timed calls, at least (default 20); median reported
  --min-time S           seconds of timed calls, at least (default 0.2)
  --json                 one JSON array on stdout, one object per case, mode,
                         thread count and target (with dtype, virtual_batch_size
                         and renorm)
  --help                 this text

Traffic: inference reads x and writes y (2 elements per value: 8 bytes in f32,
4 in bf16/f16), training reads x twice and writes y (3 elements: 12 or 6
bytes). The roof is the copy bandwidth of the same buffers with the same
threads (x's bytes read, as many written): the faster of a memcpy and a
streaming-store copy. The copies, bnorm and oneDNN are timed in turns, call
after call, so that all see the same machine.
)";

// A command-line mistake: printed as one line naming the flag, exit status 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] void Fail(const std::string& flag, const std::string& what) {
  throw UsageError(flag + ": " + what);
}

// ---------------------------------------------------------------------------
// Parsing.

std::vector<std::string> Split(const std::string& text, const char* separators) {
  std::vector<std::string> parts;
  std::string part;
  for (char ch : text) {
    if (std::strchr(separators, ch) != nullptr) {
      parts.push_back(part);
      part.clear();
    } else {
      part += ch;
    }
  }
  parts.push_back(part);
  return parts;
}

// A whole decimal integer >= min_value (no spaces, no trailing characters).
int64_t ParseInt(const std::string& flag, const std::string& text, int64_t min_value) {
  const bool digits_first = !text.empty() && (std::isdigit(static_cast<unsigned char>(text[0])) ||
                                              (text[0] == '-' && text.size() > 1));
  char* end = nullptr;
  errno = 0;
  const long long value = digits_first ? std::strtoll(text.c_str(), &end, 10) : 0;
  if (!digits_first || *end != '\0' || errno == ERANGE) {
    Fail(flag, "'" + text + "' is not an integer");
  }
  if (value < min_value) {
    Fail(flag, "'" + text + "' is too small; expected an integer >= " + std::to_string(min_value));
  }
  return value;
}

double ParseSeconds(const std::string& flag, const std::string& text) {
  char* end = nullptr;
  errno = 0;
  const double value = text.empty() ? 0.0 : std::strtod(text.c_str(), &end);
  if (text.empty() || std::isspace(static_cast<unsigned char>(text[0])) || *end != '\0' ||
      errno == ERANGE || !std::isfinite(value)) {
    Fail(flag, "'" + text + "' is not a number of seconds");
  }
  if (value < 0.0) Fail(flag, "'" + text + "' is negative; expected seconds >= 0");
  return value;
}

std::vector<int64_t> ParseShape(const std::string& flag, const std::string& text) {
  if (text.empty()) Fail(flag, "empty shape; expected sizes like 32,256,56,56");
  std::vector<int64_t> shape;
  for (const std::string& part : Split(text, ",x")) {
    if (part.empty())
      Fail(flag, "'" + text + "' has an empty size; expected sizes like 32,256,56,56");
    const bool integer = part.find_first_not_of("-0123456789") == std::string::npos;
    if (!integer) Fail(flag, "'" + text + "' has a size '" + part + "' that is not an integer");
    const int64_t size = ParseInt(flag, part, std::numeric_limits<int64_t>::min());
    if (size <= 0) {
      Fail(flag, "'" + text + "' has a size of " + part + "; every size must be >= 1");
    }
    shape.push_back(size);
  }
  return shape;
}

std::vector<int> ParseAxes(const std::string& flag, const std::string& text) {
  std::vector<int> axes;
  for (const std::string& part : Split(text, ",")) {
    const int64_t axis = ParseInt(flag, part, -1024);
    if (axis > 1024) Fail(flag, "axis '" + part + "' is out of any tensor's range");
    axes.push_back(static_cast<int>(axis));
  }
  return axes;
}

std::string JoinShape(const std::vector<int64_t>& shape, const char* separator) {
  std::string text;
  for (size_t i = 0; i < shape.size(); ++i) {
    text += (i == 0 ? "" : separator) + std::to_string(shape[i]);
  }
  return text;
}

// ---------------------------------------------------------------------------
// Cases: a shape and how its channels lie in memory.

enum class Layout { kNhwc, kNchw, kAxis };

struct CaseSpec {
  std::string origin;  // the flag or file line it came from, for errors
  std::vector<int64_t> shape;
  Layout layout = Layout::kNhwc;
  std::vector<int> axes;  // kAxis only
};

struct Case {
  std::vector<int64_t> shape;  // as given
  Layout layout = Layout::kNhwc;
  std::vector<int64_t> memory_shape;  // row-major order of the buffer
  std::vector<int> axes;              // feature axes of memory_shape
  std::string label;                  // nhwc, nchw, nc, axis=1,2
  bnorm::Geometry geometry;
};

Layout ParseLayout(const std::string& flag, const std::string& text) {
  if (text == "nhwc") return Layout::kNhwc;
  if (text == "nchw") return Layout::kNchw;
  Fail(flag, "unknown layout '" + text + "'; expected nhwc or nchw");
}

Case MakeCase(const CaseSpec& spec) {
  const std::string& flag = spec.origin;
  Case c;
  c.shape = spec.shape;
  c.layout = spec.layout;
  const size_t rank = spec.shape.size();
  if (spec.layout == Layout::kAxis) {
    c.memory_shape = spec.shape;
    c.axes = spec.axes;
    c.label = "axis=";
    for (size_t i = 0; i < spec.axes.size(); ++i) {
      c.label += (i == 0 ? "" : ",") + std::to_string(spec.axes[i]);
    }
  } else if (rank < 2) {
    Fail(flag, "shape " + JoinShape(spec.shape, ",") +
                   " has rank 1; a layout needs N,C,...; use --axis for other tensors");
  } else if (rank == 2) {
    c.memory_shape = spec.shape;
    c.axes = {-1};
    c.label = "nc";
  } else if (spec.layout == Layout::kNhwc) {
    c.memory_shape = {spec.shape[0]};
    for (size_t i = 2; i < rank; ++i) c.memory_shape.push_back(spec.shape[i]);
    c.memory_shape.push_back(spec.shape[1]);
    c.axes = {-1};
    c.label = "nhwc";
  } else {
    c.memory_shape = spec.shape;
    c.axes = {1};
    c.label = "nchw";
  }
  try {
    c.geometry = bnorm::PlanGeometry(c.memory_shape, c.axes);
  } catch (const bnorm::Error& e) {
    Fail(spec.layout == Layout::kAxis && flag == "--shape" ? "--axis" : flag, e.what());
  }
  // Three buffers of this size must be addressable in bytes.
  if (c.geometry.elements() > (size_t{1} << 40)) {
    Fail(flag, "shape " + JoinShape(spec.shape, ",") + " has too many values to benchmark");
  }
  return c;
}

// ---------------------------------------------------------------------------
// Options.

struct Options {
  std::vector<CaseSpec> cases;
  bool inference = true;
  bool training = true;
  bnorm::DType dtype = bnorm::DType::kFloat32;
  std::vector<int> threads;
  std::string target;  // empty: dispatched best
  std::optional<int64_t> virtual_batch_size;
  bool renorm = false;
  int repeat = 20;
  double min_time = 0.2;
  bool json = false;
  bool compare_onednn = false;
};

// The --dtype spelling, also the JSON "dtype" value.
const char* ShortName(bnorm::DType dtype) {
  return dtype == bnorm::DType::kFloat32    ? "f32"
         : dtype == bnorm::DType::kBFloat16 ? "bf16"
                                            : "f16";
}

std::vector<CaseSpec> ReadShapesFile(const std::string& path, std::optional<Layout> layout,
                                     const std::vector<int>& axes) {
  std::ifstream in(path);
  if (!in) Fail("--shapes-file", "cannot open '" + path + "'");
  std::vector<CaseSpec> cases;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    line = line.substr(0, line.find('#'));
    std::istringstream words(line);
    std::string shape_text, extra;
    if (!(words >> shape_text)) continue;
    const std::string where = "--shapes-file " + path + ":" + std::to_string(number);
    CaseSpec spec;
    spec.origin = where;
    spec.shape = ParseShape(where, shape_text);
    spec.layout = layout.value_or(Layout::kNhwc);
    spec.axes = axes;
    if (words >> extra) {
      if (extra.rfind("axis=", 0) == 0) {
        spec.layout = Layout::kAxis;
        spec.axes = ParseAxes(where, extra.substr(5));
      } else {
        spec.layout = ParseLayout(where, extra);
      }
      std::string more;
      if (words >> more) Fail(where, "unexpected '" + more + "' after the layout");
    }
    cases.push_back(spec);
  }
  if (cases.empty()) Fail("--shapes-file", "'" + path + "' holds no shapes");
  return cases;
}

Options ParseOptions(int argc, char** argv) {
  Options o;
  std::vector<std::string> shapes;
  std::vector<std::string> shape_files;
  std::optional<Layout> layout;
  std::optional<std::vector<int>> axes;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Fail(flag, "missing value");
      return argv[++i];
    };
    if (flag == "--help" || flag == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (flag == "--shape") {
      shapes.push_back(value());
    } else if (flag == "--shapes-file") {
      shape_files.push_back(value());
    } else if (flag == "--layout") {
      layout = ParseLayout(flag, value());
    } else if (flag == "--axis") {
      axes = ParseAxes(flag, value());
    } else if (flag == "--mode") {
      const std::string mode = value();
      if (mode == "inference" || mode == "training" || mode == "both") {
        o.inference = mode != "training";
        o.training = mode != "inference";
      } else {
        Fail(flag, "unknown mode '" + mode + "'; expected inference, training or both");
      }
    } else if (flag == "--dtype") {
      const std::string dtype = value();
      if (dtype == "f32" || dtype == "float32") {
        o.dtype = bnorm::DType::kFloat32;
      } else if (dtype == "bf16" || dtype == "bfloat16") {
        o.dtype = bnorm::DType::kBFloat16;
      } else if (dtype == "f16" || dtype == "float16") {
        o.dtype = bnorm::DType::kFloat16;
      } else {
        Fail(flag, "unknown dtype '" + dtype + "'; expected f32, bf16 or f16");
      }
    } else if (flag == "--threads") {
      o.threads.clear();
      for (const std::string& part : Split(value(), ",")) {
        const int64_t n = ParseInt(flag, part, 1);
        if (n > 4096) Fail(flag, "'" + part + "' threads is more than 4096");
        o.threads.push_back(static_cast<int>(n));
      }
    } else if (flag == "--target") {
      o.target = value();
      if (o.target.empty()) Fail(flag, "empty target name");
    } else if (flag == "--virtual-batch-size") {
      o.virtual_batch_size = ParseInt(flag, value(), 1);
    } else if (flag == "--renorm") {
      o.renorm = true;
    } else if (flag == "--repeat") {
      const int64_t repeat = ParseInt(flag, value(), 1);
      if (repeat > 1000000) Fail(flag, "more than 1000000 repetitions");
      o.repeat = static_cast<int>(repeat);
    } else if (flag == "--min-time") {
      o.min_time = ParseSeconds(flag, value());
      if (o.min_time > 3600.0) Fail(flag, "more than an hour per case");
    } else if (flag == "--json") {
      o.json = true;
    } else if (flag == "--compare") {
      const std::string peer = value();
      if (peer != "onednn") Fail(flag, "unknown peer '" + peer + "'; expected onednn");
#if BNORM_HAVE_ONEDNN
      o.compare_onednn = true;
#else
      Fail(flag,
           "onednn: oneDNN was not found when bnorm-bench was built "
           "(install libdnnl-dev and reconfigure)");
#endif
    } else {
      Fail(flag, "unknown flag (see --help)");
    }
  }

  if (layout && axes) Fail("--axis", "cannot be combined with --layout (a layout sets the axis)");
  for (const std::string& text : shapes) {
    CaseSpec spec;
    spec.origin = "--shape";
    spec.shape = ParseShape("--shape", text);
    spec.layout = axes ? Layout::kAxis : layout.value_or(Layout::kNhwc);
    spec.axes = axes.value_or(std::vector<int>{});
    o.cases.push_back(spec);
  }
  for (const std::string& path : shape_files) {
    const Layout file_layout = axes ? Layout::kAxis : layout.value_or(Layout::kNhwc);
    for (CaseSpec& spec : ReadShapesFile(path, file_layout, axes.value_or(std::vector<int>{}))) {
      o.cases.push_back(spec);
    }
  }
  if (o.cases.empty()) {
    CaseSpec spec;
    spec.origin = "--shape";
    spec.shape = {32, 256, 56, 56};
    spec.layout = axes ? Layout::kAxis : layout.value_or(Layout::kNhwc);
    spec.axes = axes.value_or(std::vector<int>{});
    o.cases.push_back(spec);
  }
  if (o.threads.empty()) {
    o.threads.push_back(std::max(1, tbb::this_task_arena::max_concurrency()));
  }
  return o;
}

// ---------------------------------------------------------------------------
// Buffers and threads.

struct FreeDeleter {
  void operator()(uint8_t* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<uint8_t[], FreeDeleter>;

// 64-byte aligned, like a framework's tensor allocation.
Buffer AllocateBytes(size_t count) {
  const size_t bytes = std::max<size_t>((count + 63) / 64 * 64, 64);
  void* p = std::aligned_alloc(64, bytes);
  if (p == nullptr) throw std::bad_alloc();
  return Buffer(static_cast<uint8_t*>(p));
}

// Stores `count` floats as `dtype` values (16-bit ones rounded to nearest even).
void StoreAs(bnorm::DType dtype, const float* in, size_t count, uint8_t* out) {
  if (dtype == bnorm::DType::kFloat32) {
    std::memcpy(out, in, count * sizeof(float));
  } else {
    bnorm::NarrowFromFloat(in, dtype, count, reinterpret_cast<uint16_t*>(out));
  }
}

// The first `count` values of a `dtype` buffer, as floats (exact).
std::vector<float> WidenPrefix(bnorm::DType dtype, const uint8_t* in, size_t count) {
  std::vector<float> out(count);
  if (dtype == bnorm::DType::kFloat32) {
    std::memcpy(out.data(), in, count * sizeof(float));
  } else {
    bnorm::WidenToFloat(reinterpret_cast<const uint16_t*>(in), dtype, count, out.data());
  }
  return out;
}

// Value k of a `dtype` buffer, as a float (exact).
float ElementAt(bnorm::DType dtype, const uint8_t* data, size_t k) {
  if (dtype == bnorm::DType::kFloat32) return reinterpret_cast<const float*>(data)[k];
  const uint16_t bits = reinterpret_cast<const uint16_t*>(data)[k];
  return dtype == bnorm::DType::kFloat16 ? bnorm::HalfToFloat(bits) : bnorm::BFloat16ToFloat(bits);
}

// One thread count: the Execution bnorm gets and the arena the copy roof uses.
class Threads {
 public:
  explicit Threads(int count) : count_(count) {
    if (count > 1) arena_ = std::make_unique<tbb::task_arena>(count);
  }
  int count() const { return count_; }
  bnorm::Execution execution() const {
    return count_ == 1 ? bnorm::Execution::Serial() : bnorm::Execution::Parallel(arena_.get());
  }
  // Runs body(i) for i in [0, chunks), on the arena's threads when there are
  // several chunks.
  template <class Body>
  void ForEachChunk(size_t chunks, const Body& body) const {
    if (count_ == 1 || chunks < 2) {
      for (size_t i = 0; i < chunks; ++i) body(i);
      return;
    }
    arena_->execute([&] {
      tbb::parallel_for(tbb::blocked_range<size_t>(0, chunks),
                        [&](const tbb::blocked_range<size_t>& range) {
                          for (size_t i = range.begin(); i != range.end(); ++i) body(i);
                        });
    });
  }

 private:
  int count_;
  std::unique_ptr<tbb::task_arena> arena_;
};

// ---------------------------------------------------------------------------
// Timing.

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

struct Stats {
  double median = 0.0, p10 = 0.0, p90 = 0.0, min = 0.0, max = 0.0;
  size_t calls = 0;
};

struct Policy {
  int repeat = 20;
  double min_time = 0.2;
};

Stats Summarize(std::vector<double> times) {
  std::sort(times.begin(), times.end());
  const size_t n = times.size();
  Stats s;
  s.calls = n;
  s.median = n % 2 == 1 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
  s.p10 = times[static_cast<size_t>(0.1 * static_cast<double>(n - 1))];
  s.p90 = times[static_cast<size_t>(std::ceil(0.9 * static_cast<double>(n - 1)))];
  s.min = times.front();
  s.max = times.back();
  return s;
}

// Times single calls of each of `calls` in turns until every call has
// `repeat` timings and the calls took `min_time` seconds each on average. Taking turns puts every
// call under the same conditions: on a shared machine the memory bandwidth
// drifts from one second to the next, and ratios of medians taken at
// different moments would measure that drift.
//
// A turn is a burst of calls of one function. Its first calls, for 20 ms and
// two calls at least, are not counted: they run on the cache as the previous
// function left it (a streaming copy evicts the output, and refilling a cache
// of tens of megabytes takes several passes), whereas an engine calling a
// layer finds the cache as a steady stream of such calls leaves it. Then
// three calls at least, for a quarter of `min_time` (10 ms at least), count.
std::vector<Stats> MeasureInTurns(const Policy& policy,
                                  const std::vector<std::function<void()>>& calls) {
  const double counted_time = std::max(10e-3, policy.min_time / 4.0);
  std::vector<std::vector<double>> times(calls.size());
  const double min_time = policy.min_time * static_cast<double>(calls.size());
  const Clock::time_point start = Clock::now();
  auto done = [&] {
    for (const std::vector<double>& t : times) {
      if (static_cast<int>(t.size()) < policy.repeat) return false;
    }
    return SecondsSince(start) >= min_time || times[0].size() >= 10000000;
  };
  while (!done()) {
    for (size_t k = 0; k < calls.size(); ++k) {
      const Clock::time_point warm_start = Clock::now();
      for (int i = 0; i < 2 || SecondsSince(warm_start) < 20e-3; ++i) calls[k]();
      const Clock::time_point counted_start = Clock::now();
      for (int i = 0; i < 3 || SecondsSince(counted_start) < counted_time; ++i) {
        const Clock::time_point t0 = Clock::now();
        calls[k]();
        times[k].push_back(SecondsSince(t0));
      }
    }
  }
  std::vector<Stats> stats;
  for (std::vector<double>& t : times) stats.push_back(Summarize(std::move(t)));
  return stats;
}

// ---------------------------------------------------------------------------
// The copy roof: a STREAM-style copy of the same buffer with the same threads.

using CopyFn = void (*)(const float* src, float* dst, size_t n);

void MemcpyCopy(const float* src, float* dst, size_t n) {
  std::memcpy(dst, src, n * sizeof(float));
}

#if BNORM_BENCH_X86
// Streaming stores need an aligned destination: scalar head to the alignment,
// four vectors (one cache line each on AVX-512) per trip, scalar tail.
#define BNORM_STREAM_COPY(NAME, TARGET, LANES, LOAD, STREAM)                          \
  __attribute__((target(TARGET))) void NAME(const float* src, float* dst, size_t n) { \
    size_t i = 0;                                                                     \
    while (i < n && reinterpret_cast<uintptr_t>(dst + i) % (LANES * 4) != 0) {        \
      dst[i] = src[i];                                                                \
      ++i;                                                                            \
    }                                                                                 \
    for (; i + 4 * LANES <= n; i += 4 * LANES) {                                      \
      STREAM(dst + i, LOAD(src + i));                                                 \
      STREAM(dst + i + LANES, LOAD(src + i + LANES));                                 \
      STREAM(dst + i + 2 * LANES, LOAD(src + i + 2 * LANES));                         \
      STREAM(dst + i + 3 * LANES, LOAD(src + i + 3 * LANES));                         \
    }                                                                                 \
    for (; i < n; ++i) dst[i] = src[i];                                               \
    _mm_sfence();                                                                     \
  }
BNORM_STREAM_COPY(StreamCopyAvx512, "avx512f", 16, _mm512_loadu_ps, _mm512_stream_ps)
BNORM_STREAM_COPY(StreamCopyAvx, "avx", 8, _mm256_loadu_ps, _mm256_stream_ps)
BNORM_STREAM_COPY(StreamCopySse, "sse2", 4, _mm_loadu_ps, _mm_stream_ps)
#undef BNORM_STREAM_COPY
#endif

// The widest streaming-store copy this CPU runs, or nullptr (not x86).
CopyFn StreamCopyForCpu(const char** name) {
#if BNORM_BENCH_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) {
    *name = "avx512 stream";
    return StreamCopyAvx512;
  }
  if (__builtin_cpu_supports("avx")) {
    *name = "avx stream";
    return StreamCopyAvx;
  }
  *name = "sse stream";
  return StreamCopySse;
#else
  *name = "none";
  return nullptr;
#endif
}

// Copies n floats from src to dst in chunks that the threads take as they
// come, as bnorm's blocks are: a thread the OS keeps waiting then delays
// neither, where a static split would make the roof hostage to it. Like bnorm,
// a copy below 1 MiB stays on the calling thread.
void ParallelCopy(CopyFn fn, const float* src, float* dst, size_t n, const Threads& threads) {
  constexpr size_t kChunk = size_t{1} << 16;  // floats; a multiple of 64 bytes
  constexpr size_t kSerialCopy = size_t{1} << 18;
  const size_t chunks = (n + kChunk - 1) / kChunk;
  const auto body = [&](size_t chunk) {
    const size_t begin = chunk * kChunk;
    fn(src + begin, dst + begin, std::min(kChunk, n - begin));
  };
  if (n < kSerialCopy) {
    for (size_t i = 0; i < chunks; ++i) body(i);
    return;
  }
  threads.ForEachChunk(chunks, body);
}

// The copies whose better median is the roof: memcpy and, where the CPU has
// them, streaming stores.
struct Copy {
  CopyFn fn;
  std::string name;
};

std::vector<Copy> RoofCopies() {
  std::vector<Copy> copies = {{MemcpyCopy, "memcpy"}};
  const char* stream_name = "";
  if (CopyFn stream = StreamCopyForCpu(&stream_name)) copies.push_back({stream, stream_name});
  return copies;
}

struct Roof {
  double gbps = 0.0;  // the better of the copies
  double memcpy_gbps = 0.0;
  double stream_gbps = 0.0;
  std::string copy;  // which copy that was
};

// ---------------------------------------------------------------------------
// The problem: data, layer state, folded coefficients.

constexpr float kEpsilon = 1e-3f;
constexpr float kMomentum = 0.99f;

// xorshift64*: fast enough to fill hundreds of MB in well under a second.
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed * 0x9E3779B97F4A7C15ull + 1) {}
  // Uniform in [-1, 1).
  float Symmetric() {
    state_ ^= state_ >> 12;
    state_ ^= state_ << 25;
    state_ ^= state_ >> 27;
    const uint64_t r = state_ * 0x2545F4914F6CDD1Dull;
    return static_cast<float>(static_cast<double>(r >> 40) * (2.0 / 16777216.0) - 1.0);
  }

 private:
  uint64_t state_;
};

struct Coefficients {
  std::vector<float> hi, lo, scale, shift;
  explicit Coefficients(size_t channels)
      : hi(channels), lo(channels), scale(channels), shift(channels) {}
  bnorm::NormalizeParams params() const {
    return bnorm::NormalizeParams{hi.data(), lo.data(), scale.data(), shift.data()};
  }
};

struct Problem {
  Case c;
  bnorm::DType dtype;
  size_t elements = 0;
  Buffer x, y;
  // The whole Keras layer that training runs with ghost batches or renorm; null
  // otherwise (training is then the kernels an engine calls).
  bnorm::BatchNorm* layer;
  std::vector<float> gamma, beta, moving_mean, moving_variance;
  Coefficients inference;  // folded once from the moving statistics
  // Training scratch: batch moments, their coefficients, the updated state.
  std::vector<double> batch_mean, batch_variance;
  Coefficients training;
  std::vector<float> train_moving_mean, train_moving_variance;

  Problem(const Case& cs, bnorm::DType type, bnorm::BatchNorm* training_layer)
      : c(cs),
        dtype(type),
        elements(cs.geometry.elements()),
        x(AllocateBytes(bytes())),
        y(AllocateBytes(bytes())),
        layer(training_layer),
        inference(cs.geometry.channels),
        batch_mean(cs.geometry.channels),
        batch_variance(cs.geometry.channels),
        training(cs.geometry.channels) {
    const bnorm::Geometry& g = c.geometry;
    const size_t C = g.channels;
    Random random(C * 1000003 + elements);
    // Channels with their own mean and spread, like activations after a conv.
    std::vector<float> center(C), spread(C);
    for (size_t ch = 0; ch < C; ++ch) {
      center[ch] = 2.0f * random.Symmetric();
      spread[ch] = 1.25f + 0.75f * random.Symmetric();
      gamma.push_back(1.0f + 0.5f * random.Symmetric());
      beta.push_back(0.5f * random.Symmetric());
      moving_mean.push_back(center[ch] + 0.1f * random.Symmetric());
      moving_variance.push_back(spread[ch] * spread[ch] / 3.0f *
                                (1.0f + 0.2f * random.Symmetric()));
    }
    // Generated in chunks, so that a 16-bit x needs no float copy of the whole.
    constexpr size_t kChunk = size_t{1} << 16;
    std::vector<float> chunk;
    chunk.reserve(kChunk);
    uint8_t* out = x.get();
    const auto store = [&] {
      StoreAs(dtype, chunk.data(), chunk.size(), out);
      out += chunk.size() * bnorm::SizeOf(dtype);
      chunk.clear();
    };
    for (size_t o = 0; o < g.outer; ++o) {
      for (size_t ch = 0; ch < C; ++ch) {
        for (size_t i = 0; i < g.inner; ++i) {
          chunk.push_back(center[ch] + spread[ch] * random.Symmetric());
          if (chunk.size() == kChunk) store();
        }
      }
    }
    store();
    std::memset(y.get(), 0, bytes());
    // An engine folds once at load time; the float moving mean needs no low part.
    bnorm::Fold(gamma.data(), beta.data(), moving_mean.data(), moving_variance.data(), C, kEpsilon,
                inference.scale.data(), inference.shift.data());
    train_moving_mean = moving_mean;
    train_moving_variance = moving_variance;
  }

  // Bytes of x (and of y).
  size_t bytes() const { return elements * bnorm::SizeOf(dtype); }

  // What an inference engine calls per layer.
  void Inference(const bnorm::Execution& exec) {
    const bnorm::NormalizeParams params{moving_mean.data(), nullptr, inference.scale.data(),
                                        inference.shift.data()};
    bnorm::Normalize(x.get(), y.get(), dtype, c.geometry, params, exec);
  }

  void Training(const bnorm::Execution& exec) {
    layer != nullptr ? LayerTraining(exec) : KernelTraining(exec);
  }

  // The training forward: batch moments, fold (double -> float), normalize,
  // and the moving-average update (Keras: moving -= (moving - batch) * (1 - momentum)).
  void KernelTraining(const bnorm::Execution& exec) {
    bnorm::BatchMoments(x.get(), dtype, c.geometry, batch_mean.data(), batch_variance.data(), exec);
    for (size_t ch = 0; ch < batch_mean.size(); ++ch) {
      bnorm::SplitMean(batch_mean[ch], &training.hi[ch], &training.lo[ch]);
      training.scale[ch] = static_cast<float>(gamma[ch] / std::sqrt(batch_variance[ch] + kEpsilon));
      training.shift[ch] = beta[ch];
      train_moving_mean[ch] -=
          (train_moving_mean[ch] - static_cast<float>(batch_mean[ch])) * (1.0f - kMomentum);
      train_moving_variance[ch] -=
          (train_moving_variance[ch] - static_cast<float>(batch_variance[ch])) * (1.0f - kMomentum);
    }
    bnorm::Normalize(x.get(), y.get(), dtype, c.geometry, training.params(), exec);
  }

  // One training call of the layer; its moving statistics update every time.
  void LayerTraining(const bnorm::Execution& exec) {
    if (dtype == bnorm::DType::kFloat32) {
      layer->Forward(reinterpret_cast<const float*>(x.get()), reinterpret_cast<float*>(y.get()),
                     c.memory_shape, /*training=*/true, exec);
    } else {
      layer->Forward(reinterpret_cast<const uint16_t*>(x.get()),
                     reinterpret_cast<uint16_t*>(y.get()), dtype, c.memory_shape,
                     /*training=*/true, exec);
    }
  }
};

// The layer that training runs under --virtual-batch-size or --renorm, or null:
// Keras' options with the case's axes (fused auto resolves to non-fused with
// these). Built up front, so that a case it cannot run fails before any timing.
std::unique_ptr<bnorm::BatchNorm> MakeLayer(const Case& c, const Options& o) {
  if (!o.virtual_batch_size && !o.renorm) return nullptr;
  const char* flag = o.virtual_batch_size ? "--virtual-batch-size" : "--renorm";
  const int64_t batch = c.memory_shape[0];
  // The layer would say so only at its first call.
  if (o.virtual_batch_size && batch % *o.virtual_batch_size != 0) {
    Fail(flag, std::to_string(*o.virtual_batch_size) + " does not divide the batch size " +
                   std::to_string(batch) + " of shape " + JoinShape(c.shape, ",") +
                   "; expected a divisor of " + std::to_string(batch));
  }
  bnorm::Options options;
  options.axis = c.axes;
  options.virtual_batch_size = o.virtual_batch_size;
  options.renorm = o.renorm;
  try {
    auto layer = std::make_unique<bnorm::BatchNorm>(options);
    layer->Build(c.memory_shape);
    return layer;
  } catch (const bnorm::Error& e) {
    Fail(flag, e.what());
  }
}

// ---------------------------------------------------------------------------
// The float64 references, timed on a prefix of x for large tensors and scaled
// to the whole tensor (their cost is linear in the values). They read floats:
// the prefix of x is widened first, untimed.

constexpr size_t kReferenceSliceElements = size_t{1} << 22;
constexpr size_t kReferenceMaxSliceElements = 100000000;

struct ReferenceTiming {
  std::vector<std::string> notes;  // how it was timed, or why not
  // Unset when skipped.
  std::optional<double> inference_seconds, training_seconds;
  std::vector<double> inference_y;  // the slice's inference output
};

// The best of up to three runs; one when a run takes long.
double BestOf(const std::function<void()>& call) {
  double best = 1e300, total = 0.0;
  for (int i = 0; i < 3 && total < 0.3; ++i) {
    const Clock::time_point t0 = Clock::now();
    call();
    const double t = SecondsSince(t0);
    best = std::min(best, t);
    total += t;
  }
  return best;
}

std::string ScaledNote(const char* what, size_t part, size_t whole, const char* unit) {
  char note[200];
  std::snprintf(note, sizeof(note), "%s timed on the first %zu of %zu %s, scaled x%.1f", what, part,
                whole, unit, static_cast<double>(whole) / static_cast<double>(part));
  return note;
}

// The kernels' reference (moments, normalize) on a prefix of memory: leading
// outer rows, or when one row is too long, the leading channels of the first row.
void TimeKernelReference(const Problem& p, bool inference, bool training, ReferenceTiming* r) {
  const bnorm::Geometry& g = p.c.geometry;
  if (g.inner > kReferenceMaxSliceElements) {
    r->notes.push_back("reference skipped: one channel's run holds more than 1e8 values");
    return;
  }
  bnorm::Geometry slice = g;
  const size_t row = g.row_elements();
  if (row <= kReferenceSliceElements) {
    slice.outer = std::min(g.outer, kReferenceSliceElements / row);
  } else {
    slice.outer = 1;
    slice.channels = std::max<size_t>(1, kReferenceSliceElements / g.inner);
  }
  slice = bnorm::Geometry::Dense(slice.outer, slice.channels, slice.inner);
  const size_t n = slice.elements();
  const double scale_up = static_cast<double>(p.elements) / static_cast<double>(n);
  if (n < p.elements) r->notes.push_back(ScaledNote("reference", n, p.elements, "values"));
  const std::vector<float> x = WidenPrefix(p.dtype, p.x.get(), n);
  const size_t C = g.channels;
  const std::vector<double> gamma(p.gamma.begin(), p.gamma.end());
  const std::vector<double> beta(p.beta.begin(), p.beta.end());
  const std::vector<double> mean(p.moving_mean.begin(), p.moving_mean.end());
  const std::vector<double> variance(p.moving_variance.begin(), p.moving_variance.end());
  std::vector<double> y(n);
  if (training) {
    std::vector<double> batch_mean(C), batch_variance(C);
    r->training_seconds =
        scale_up * BestOf([&] {
          bnorm::reference::Moments(x.data(), slice, batch_mean.data(), batch_variance.data());
          bnorm::reference::Normalize(x.data(), slice, batch_mean.data(), batch_variance.data(),
                                      gamma.data(), beta.data(), kEpsilon, y.data());
        });
  }
  if (inference) {
    r->inference_seconds =
        scale_up * BestOf([&] {
          bnorm::reference::Normalize(x.data(), slice, mean.data(), variance.data(), gamma.data(),
                                      beta.data(), kEpsilon, y.data());
        });
    r->inference_y = std::move(y);
  }
}

// The layer's training reference (ghost batches, renorm): the float64 Keras
// oracle with the layer's options on whole leading samples, a multiple of the
// virtual batch size.
void TimeLayerReference(const Problem& p, ReferenceTiming* r) {
  const bnorm::Options& options = p.layer->options();
  const size_t batch = static_cast<size_t>(p.c.memory_shape[0]);
  const size_t sample = p.elements / batch;
  const size_t group = static_cast<size_t>(options.virtual_batch_size.value_or(1));
  const size_t samples =
      std::max(group, std::min(batch, kReferenceSliceElements / sample) / group * group);
  const size_t n = samples * sample;
  if (n > kReferenceMaxSliceElements) {
    r->notes.push_back("training reference skipped: one virtual batch holds more than 1e8 values");
    return;
  }
  if (samples < batch) {
    r->notes.push_back(ScaledNote("training reference (Keras oracle)", samples, batch, "samples"));
  }
  std::vector<int64_t> shape = p.c.memory_shape;
  shape[0] = static_cast<int64_t>(samples);
  const std::vector<float> x = WidenPrefix(p.dtype, p.x.get(), n);
  std::vector<double> y(n);
  bnorm::keras_reference::State state =
      bnorm::keras_reference::Initial(options, p.c.geometry.channels);
  r->training_seconds = static_cast<double>(batch) / static_cast<double>(samples) * BestOf([&] {
                          bnorm::keras_reference::Forward(options, shape, x.data(),
                                                          /*training=*/true, &state, y.data());
                        });
}

ReferenceTiming TimeReference(const Problem& p, bool inference, bool training) {
  ReferenceTiming r;
  const bool kernel_training = training && p.layer == nullptr;
  if (inference || kernel_training) TimeKernelReference(p, inference, kernel_training, &r);
  if (training && p.layer != nullptr) TimeLayerReference(p, &r);
  return r;
}

// What InferenceError and the oneDNN check may find relative to 1 + max |y|:
// float32 arithmetic, plus the rounding of a 16-bit y (at most 2^-11 of |y| for
// f16 and 2^-8 for bf16), with room to spare.
double Tolerance(bnorm::DType dtype) {
  return dtype == bnorm::DType::kFloat32 ? 1e-4 : dtype == bnorm::DType::kFloat16 ? 2e-3 : 1.6e-2;
}

// Max |y - reference| over the slice, relative to 1 + max |reference|.
double InferenceError(const Problem& p, const ReferenceTiming& r, double* max_abs_diff) {
  double diff = 0.0, magnitude = 0.0;
  for (size_t k = 0; k < r.inference_y.size(); ++k) {
    const double y = ElementAt(p.dtype, p.y.get(), k);
    diff = std::max(diff, std::fabs(y - r.inference_y[k]));
    magnitude = std::max(magnitude, std::fabs(r.inference_y[k]));
  }
  *max_abs_diff = diff;
  return diff / (1.0 + magnitude);
}

// ---------------------------------------------------------------------------
// oneDNN on the same buffers.

#if BNORM_HAVE_ONEDNN
// Evenly spread positions of y, to compare two implementations' outputs
// without a third full-size buffer.
struct Sample {
  std::vector<size_t> positions;
  std::vector<float> values;
};

Sample TakeSample(bnorm::DType dtype, const uint8_t* y, size_t elements) {
  Sample s;
  const size_t step = std::max<size_t>(1, elements / 65536);
  for (size_t k = 0; k < elements; k += step) s.positions.push_back(k);
  if (s.positions.back() != elements - 1) s.positions.push_back(elements - 1);
  for (size_t k : s.positions) s.values.push_back(ElementAt(dtype, y, k));
  return s;
}

// Max |y - sample| and the largest |sample| (for a relative tolerance).
double SampleDiff(const Sample& s, bnorm::DType dtype, const uint8_t* y, double* magnitude) {
  double diff = 0.0;
  *magnitude = 0.0;
  for (size_t i = 0; i < s.positions.size(); ++i) {
    const double value = ElementAt(dtype, y, s.positions[i]);
    diff = std::max(diff, std::fabs(value - s.values[i]));
    *magnitude = std::max(*magnitude, std::fabs(static_cast<double>(s.values[i])));
  }
  return diff;
}

// The same memory described to oneDNN: the natural tag for rank 3..5 layouts,
// otherwise the canonical geometry as nc ([outer, C]) or ncw ([outer, C, inner]).
// x and y are `dtype`; scale, shift and the statistics stay f32.
dnnl::memory::desc OneDnnDataDesc(const Case& c, bnorm::DType dtype) {
  using tag = dnnl::memory::format_tag;
  using type = dnnl::memory::data_type;
  const type data_type = dtype == bnorm::DType::kFloat32    ? type::f32
                         : dtype == bnorm::DType::kBFloat16 ? type::bf16
                                                            : type::f16;
  const dnnl::memory::dims dims(c.shape.begin(), c.shape.end());
  const bool nhwc = c.layout == Layout::kNhwc;
  if (c.layout != Layout::kAxis) {
    switch (c.shape.size()) {
      case 3:
        return dnnl::memory::desc(dims, data_type, nhwc ? tag::nwc : tag::ncw);
      case 4:
        return dnnl::memory::desc(dims, data_type, nhwc ? tag::nhwc : tag::nchw);
      case 5:
        return dnnl::memory::desc(dims, data_type, nhwc ? tag::ndhwc : tag::ncdhw);
      default:
        break;
    }
  }
  const bnorm::Geometry& g = c.geometry;
  const auto outer = static_cast<dnnl::memory::dim>(g.outer);
  const auto channels = static_cast<dnnl::memory::dim>(g.channels);
  if (g.inner == 1) return dnnl::memory::desc({outer, channels}, data_type, tag::nc);
  return dnnl::memory::desc({outer, channels, static_cast<dnnl::memory::dim>(g.inner)}, data_type,
                            tag::ncw);
}

// oneDNN's forward batch normalization of the problem's buffers with
// `threads` threads: created once, then each call runs it once. Throws
// dnnl::error when this oneDNN has no implementation for the case.
class OneDnnBatchNorm {
 public:
  OneDnnBatchNorm(Problem& p, bool training, int threads)
      : engine_(dnnl::engine::kind::cpu, 0), stream_(engine_) {
#if BNORM_HAVE_OPENMP && DNNL_CPU_RUNTIME == DNNL_RUNTIME_OMP
    // oneDNN reads the thread count when it creates the primitive and runs.
    omp_set_num_threads(threads);
#else
    (void)threads;
#endif
    using flags = dnnl::normalization_flags;
    const dnnl::memory::desc data = OneDnnDataDesc(p.c, p.dtype);
    const flags use = training ? (flags::use_scale | flags::use_shift)
                               : (flags::use_global_stats | flags::use_scale | flags::use_shift);
    const dnnl::batch_normalization_forward::desc desc(
        training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference, data,
        kEpsilon, use);
    const dnnl::batch_normalization_forward::primitive_desc pd(desc, engine_);
    primitive_ = dnnl::batch_normalization_forward(pd);
    // Inference reads the moving statistics; training writes the batch's.
    mean_ = p.moving_mean;
    variance_ = p.moving_variance;
    gamma_ = p.gamma;
    beta_ = p.beta;
    args_ = {
        {DNNL_ARG_SRC, dnnl::memory(data, engine_, p.x.get())},
        {DNNL_ARG_DST, dnnl::memory(data, engine_, p.y.get())},
        {DNNL_ARG_SCALE, dnnl::memory(pd.weights_desc(), engine_, gamma_.data())},
        {DNNL_ARG_SHIFT, dnnl::memory(pd.weights_desc(), engine_, beta_.data())},
        {DNNL_ARG_MEAN, dnnl::memory(pd.mean_desc(), engine_, mean_.data())},
        {DNNL_ARG_VARIANCE, dnnl::memory(pd.variance_desc(), engine_, variance_.data())},
    };
    workspace_.resize(pd.workspace_desc().get_size());
    if (!workspace_.empty()) {
      args_.emplace(DNNL_ARG_WORKSPACE,
                    dnnl::memory(pd.workspace_desc(), engine_, workspace_.data()));
    }
  }

  void operator()() {
    primitive_.execute(stream_, args_);
    stream_.wait();
  }

 private:
  dnnl::engine engine_;
  dnnl::stream stream_;
  dnnl::batch_normalization_forward primitive_;
  std::vector<float> mean_, variance_, gamma_, beta_;
  std::vector<uint8_t> workspace_;
  std::unordered_map<int, dnnl::memory> args_;
};
#endif

// ---------------------------------------------------------------------------
// Results.

struct Row {
  const Case* c = nullptr;
  std::string mode;
  int threads = 1;
  std::string target;
  Stats stats;
  double bytes = 0.0;  // minimum traffic of one call
  Roof roof;
  std::optional<double> reference_seconds;
  std::optional<double> reference_max_abs_diff;
  std::optional<double> onednn_seconds;
  std::optional<double> onednn_max_abs_diff;

  double gbps() const { return bytes / stats.median * 1e-9; }
  double gelems() const {
    return static_cast<double>(c->geometry.elements()) / stats.median * 1e-9;
  }
  double pct_roof() const { return 100.0 * gbps() / roof.gbps; }
};

std::string JsonNumber(double v) {
  if (!std::isfinite(v)) return "null";
  char text[32];
  std::snprintf(text, sizeof(text), "%.6g", v);
  return text;
}

std::string JsonOptional(const std::optional<double>& v) { return v ? JsonNumber(*v) : "null"; }

void PrintJson(const std::vector<Row>& rows, const Options& o) {
  std::printf("[");
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    std::printf("%s\n  {\"shape\": [%s], \"layout\": \"%s\", \"memory_shape\": [%s], ",
                i == 0 ? "" : ",", JoinShape(r.c->shape, ", ").c_str(), r.c->label.c_str(),
                JoinShape(r.c->memory_shape, ", ").c_str());
    std::printf("\"mode\": \"%s\", \"dtype\": \"%s\", \"virtual_batch_size\": %s, ", r.mode.c_str(),
                ShortName(o.dtype),
                o.virtual_batch_size ? std::to_string(*o.virtual_batch_size).c_str() : "null");
    std::printf("\"renorm\": %s, \"threads\": %d, \"target\": \"%s\", ",
                o.renorm ? "true" : "false", r.threads, r.target.c_str());
    std::printf("\"elements\": %zu, \"seconds\": %s, \"p10_seconds\": %s, \"p90_seconds\": %s, ",
                r.c->geometry.elements(), JsonNumber(r.stats.median).c_str(),
                JsonNumber(r.stats.p10).c_str(), JsonNumber(r.stats.p90).c_str());
    std::printf("\"min_seconds\": %s, ", JsonNumber(r.stats.min).c_str());
    std::printf("\"calls\": %zu, \"gelem_per_s\": %s, \"gbps\": %s, \"roof_gbps\": %s, ",
                r.stats.calls, JsonNumber(r.gelems()).c_str(), JsonNumber(r.gbps()).c_str(),
                JsonNumber(r.roof.gbps).c_str());
    std::printf(
        "\"roof_memcpy_gbps\": %s, \"roof_stream_gbps\": %s, \"roof_copy\": \"%s\", "
        "\"pct_roof\": %s, ",
        JsonNumber(r.roof.memcpy_gbps).c_str(), JsonNumber(r.roof.stream_gbps).c_str(),
        r.roof.copy.c_str(), JsonNumber(r.pct_roof()).c_str());
    std::printf(
        "\"reference_seconds\": %s, \"speedup_vs_reference\": %s, "
        "\"max_abs_diff_vs_reference\": %s",
        JsonOptional(r.reference_seconds).c_str(),
        r.reference_seconds ? JsonNumber(*r.reference_seconds / r.stats.median).c_str() : "null",
        JsonOptional(r.reference_max_abs_diff).c_str());
    if (o.compare_onednn) {
      std::printf(
          ", \"onednn_seconds\": %s, \"speedup_vs_onednn\": %s, "
          "\"onednn_max_abs_diff\": %s",
          JsonOptional(r.onednn_seconds).c_str(),
          r.onednn_seconds ? JsonNumber(*r.onednn_seconds / r.stats.median).c_str() : "null",
          JsonOptional(r.onednn_max_abs_diff).c_str());
    }
    std::printf("}");
  }
  std::printf("\n]\n");
}

void PrintTableHeader(bool compare) {
  std::printf("%-18s %-8s %-9s %3s %-8s %10s %21s %8s %7s %7s %6s %8s", "shape", "layout", "mode",
              "thr", "target", "median ms", "p10..p90 ms", "Gelem/s", "GB/s", "roof", "%roof",
              "x ref");
  if (compare) std::printf(" %10s %8s", "oneDNN ms", "oneDNN/bn");
  std::printf("\n");
}

void PrintTableRow(const Row& r, bool compare) {
  char spread[48];
  std::snprintf(spread, sizeof(spread), "%.4g..%.4g", r.stats.p10 * 1e3, r.stats.p90 * 1e3);
  char speedup[24] = "-";
  if (r.reference_seconds) {
    std::snprintf(speedup, sizeof(speedup), "%.1fx", *r.reference_seconds / r.stats.median);
  }
  std::printf("%-18s %-8s %-9s %3d %-8s %10.4g %21s %8.3f %7.2f %7.2f %5.1f%% %8s",
              JoinShape(r.c->shape, "x").c_str(), r.c->label.c_str(), r.mode.c_str(), r.threads,
              r.target.c_str(), r.stats.median * 1e3, spread, r.gelems(), r.gbps(), r.roof.gbps,
              r.pct_roof(), speedup);
  if (compare && r.onednn_seconds) {
    std::printf(" %10.4g %8.2f", *r.onednn_seconds * 1e3, *r.onednn_seconds / r.stats.median);
  }
  std::printf("\n");
  std::fflush(stdout);
}

// ---------------------------------------------------------------------------

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(colon + 2);
    }
  }
  return "unknown CPU";
}

int Run(const Options& o) {
  // Targets to run: the dispatched best, one forced, or every supported one.
  bnorm::ApplyTargetFromEnvironment();
  std::vector<std::string> targets;
  if (o.target == "all") {
    for (const bnorm::TargetInfo& t : bnorm::SupportedTargets()) targets.push_back(t.name);
  } else if (!o.target.empty()) {
    try {
      bnorm::ForceTarget(o.target);
    } catch (const bnorm::Error& e) {
      Fail("--target", e.what());
    }
    targets.push_back(bnorm::ActiveTarget());
  } else {
    targets.push_back(bnorm::ActiveTarget());
  }
  std::vector<Case> cases;
  std::vector<std::unique_ptr<bnorm::BatchNorm>> layers;  // per case, or null
  const double memory_bytes =
      static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGESIZE));
  const size_t value_bytes = bnorm::SizeOf(o.dtype);
  for (const CaseSpec& spec : o.cases) {
    cases.push_back(MakeCase(spec));
    // x and y must fit in memory with room to spare, or the timings measure paging.
    const double bytes = 2.0 * static_cast<double>(value_bytes * cases.back().geometry.elements());
    if (memory_bytes > 0.0 && bytes > 0.8 * memory_bytes) {
      Fail(spec.origin, "shape " + JoinShape(spec.shape, ",") + " needs " +
                            JsonNumber(bytes * 1e-9) + " GB for x and y; this machine has " +
                            JsonNumber(memory_bytes * 1e-9) + " GB");
    }
    layers.push_back(MakeLayer(cases.back(), o));
  }

  const Policy policy{o.repeat, o.min_time};
  const Clock::time_point start = Clock::now();
  const size_t total = cases.size() * o.threads.size();
  size_t done = 0;
  std::vector<Row> rows;
  std::vector<std::string> notes;
  const bool layer_training = o.training && (o.virtual_batch_size || o.renorm);
  if (o.compare_onednn && layer_training) {
    notes.push_back(
        "oneDNN has no ghost batches or batch renormalization: training rows not compared");
  }
  if (!o.json) {
    std::string supported;
    for (const bnorm::TargetInfo& t : bnorm::SupportedTargets()) {
      supported += (supported.empty() ? "" : ", ") + t.name;
    }
    std::printf("bnorm-bench: %s, %u hardware threads; targets supported: %s\n", CpuModel().c_str(),
                std::thread::hardware_concurrency(), supported.c_str());
    std::printf("dtype %s, virtual_batch_size %s, renorm %s%s\n", ShortName(o.dtype),
                o.virtual_batch_size ? std::to_string(*o.virtual_batch_size).c_str() : "none",
                o.renorm ? "on" : "off",
                layer_training ? "; training rows run the bnorm::BatchNorm layer" : "");
    std::printf(
        "GB/s on minimum traffic (inference %zu B/value, training %zu B/value); roof: copy GB/s "
        "of the same buffers (best of memcpy and streaming stores), timed in turns with bnorm\n\n",
        2 * value_bytes, 3 * value_bytes);
    PrintTableHeader(o.compare_onednn);
  }
  for (size_t case_index = 0; case_index < cases.size(); ++case_index) {
    const Case& c = cases[case_index];
    const std::string case_name = JoinShape(c.shape, "x") + " " + c.label;
    std::unique_ptr<Problem> problem;
    try {
      problem = std::make_unique<Problem>(c, o.dtype, layers[case_index].get());
    } catch (const std::bad_alloc&) {
      throw std::runtime_error(
          "cannot allocate the buffers of shape " + JoinShape(c.shape, ",") + " (" +
          std::to_string(2 * value_bytes * c.geometry.elements() / 1000000) + " MB)");
    }
    Problem& p = *problem;
    const ReferenceTiming ref = TimeReference(p, o.inference, o.training);
    for (const std::string& note : ref.notes) notes.push_back(case_name + ": " + note);
    // Modes oneDNN cannot run for this case (inference, training): no layer
    // features, and maybe no kernel for the dtype.
    bool onednn_lacks[2] = {false, p.layer != nullptr};

    for (int thread_count : o.threads) {
      if (SecondsSince(start) > 2.0) {
        std::fprintf(stderr, "bnorm-bench: [%zu/%zu] %s, %d thread(s)\n", done + 1, total,
                     case_name.c_str(), thread_count);
      }
      ++done;
      const Threads threads(thread_count);
      const std::vector<Copy> copies = RoofCopies();
      // The copies take float counts: the same bytes as x, as floats.
      const size_t copy_floats = p.bytes() / sizeof(float);
      const double copy_bytes = 2.0 * sizeof(float) * static_cast<double>(copy_floats);
      bool onednn_done[2] = {false, false};
      for (const std::string& target : targets) {
        if (o.target == "all") bnorm::ForceTarget(target);
        for (int m = 0; m < 2; ++m) {
          const bool training = m == 1;
          if (training ? !o.training : !o.inference) continue;
          Row r;
          r.c = &c;
          r.mode = training ? "training" : "inference";
          r.threads = thread_count;
          r.target = bnorm::ActiveTarget();
          r.bytes = static_cast<double>((training ? 3 : 2) * p.bytes());
          const bnorm::Execution exec = threads.execution();
          const std::function<void()> kernel = [&p, exec, training] {
            training ? p.Training(exec) : p.Inference(exec);
          };
          // bnorm, the roof's copies and oneDNN take turns (see MeasureInTurns).
          std::vector<std::function<void()>> calls = {kernel};
          for (const Copy& copy : copies) {
            calls.push_back([&] {
              ParallelCopy(copy.fn, reinterpret_cast<const float*>(p.x.get()),
                           reinterpret_cast<float*>(p.y.get()), copy_floats, threads);
            });
          }
#if BNORM_HAVE_ONEDNN
          std::unique_ptr<OneDnnBatchNorm> onednn;
          if (o.compare_onednn && !onednn_done[m] && !onednn_lacks[m]) {
            onednn_done[m] = true;
            try {
              onednn = std::make_unique<OneDnnBatchNorm>(p, training, thread_count);
              calls.push_back([&] { (*onednn)(); });
            } catch (const dnnl::error&) {
              onednn_lacks[m] = true;
              notes.push_back(case_name + ": oneDNN " + std::to_string(DNNL_VERSION_MAJOR) + "." +
                              std::to_string(DNNL_VERSION_MINOR) + "." +
                              std::to_string(DNNL_VERSION_PATCH) + " has no " + ShortName(o.dtype) +
                              " " + r.mode + " batch_normalization on this CPU: not compared");
            }
          }
#else
          (void)onednn_done;
          (void)onednn_lacks;
#endif
          const std::vector<Stats> stats = MeasureInTurns(policy, calls);
          r.stats = stats[0];
          for (size_t k = 0; k < copies.size(); ++k) {
            const double gbps = copy_bytes / stats[1 + k].median * 1e-9;
            (k == 0 ? r.roof.memcpy_gbps : r.roof.stream_gbps) = gbps;
            if (gbps > r.roof.gbps) {
              r.roof.gbps = gbps;
              r.roof.copy = copies[k].name;
            }
          }
          kernel();  // y holds bnorm's output for the checks below
          r.reference_seconds = training ? ref.training_seconds : ref.inference_seconds;
          if (!training && ref.inference_seconds) {
            double diff = 0.0;
            if (InferenceError(p, ref, &diff) > Tolerance(p.dtype)) {
              notes.push_back("WARNING: " + case_name + " " + r.target +
                              ": bnorm inference differs from the reference by " +
                              JsonNumber(diff));
            }
            r.reference_max_abs_diff = diff;
          }
#if BNORM_HAVE_ONEDNN
          if (onednn) {
            r.onednn_seconds = stats.back().median;
            const Sample bnorm_y = TakeSample(p.dtype, p.y.get(), p.elements);
            (*onednn)();
            double magnitude = 0.0;
            const double diff = SampleDiff(bnorm_y, p.dtype, p.y.get(), &magnitude);
            r.onednn_max_abs_diff = diff;
            if (diff > Tolerance(p.dtype) * (1.0 + magnitude)) {
              notes.push_back("WARNING: " + case_name + " " + r.mode +
                              ": oneDNN and bnorm outputs differ by up to " + JsonNumber(diff) +
                              " (not the same computation?)");
            }
          }
#endif
          if (!o.json) PrintTableRow(r, o.compare_onednn);
          rows.push_back(r);
        }
      }
      if (o.target == "all") bnorm::ResetTarget();
    }
  }
  if (o.json) {
    PrintJson(rows, o);
  } else {
#if BNORM_HAVE_ONEDNN
    if (o.compare_onednn) {
      std::printf(
          "\noneDNN/bn: oneDNN seconds / bnorm seconds (> 1: bnorm is faster); "
          "oneDNN %d.%d.%d on the same buffers and thread count\n",
          DNNL_VERSION_MAJOR, DNNL_VERSION_MINOR, DNNL_VERSION_PATCH);
    }
#endif
    if (!notes.empty()) std::printf("\n");
  }
  for (const std::string& note : notes)
    std::fprintf(o.json ? stderr : stdout, "%s\n", note.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Run(ParseOptions(argc, argv));
  } catch (const UsageError& e) {
    std::fprintf(stderr, "bnorm-bench: %s\n", e.what());
    return 2;
  } catch (const bnorm::Error& e) {
    std::fprintf(stderr, "bnorm-bench: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bnorm-bench: error: %s\n", e.what());
    return 1;
  }
}
