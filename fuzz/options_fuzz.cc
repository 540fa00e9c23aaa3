// SPDX-License-Identifier: Apache-2.0
// Fuzzes bnorm::BatchNorm with random Options (axes, momentum, epsilon,
// center/scale, initializers, renorm and its clipping, fused, trainable,
// virtual_batch_size, adjustment), shapes, training flags, setters and small
// random data taken from the fuzz input. Every call must either throw a clean
// bnorm::Error that leaves y and the layer's state byte for byte as they were,
// or succeed with a result that matches the float64 Keras reference
// (src/oracle/keras_reference.h) within tolerance. Anything else aborts: another
// exception type, a mismatch, a crash or a sanitizer report.
//
// The comparison with the reference runs only for "tame" inputs: finite data
// and options in the ranges where float32 rounding is bounded (epsilon >=
// 1e-5, moderate initializers). Wild inputs (NaN/Inf data, NaN/huge options,
// tiny epsilon) still have to be crash-free and either error cleanly or run.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "bnorm/batch_norm.hpp"
#include "bnorm/error.hpp"
#include "src/oracle/keras_reference.h"

namespace {

using bnorm::BatchNorm;
using bnorm::Options;
using Shape = std::vector<int64_t>;

// Largest tensor the fuzzer builds: keeps each input fast.
constexpr size_t kMaxElements = 4096;

// What the current input is doing, printed with a failure.
std::string g_trace;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "options_fuzz: %s\n%s", what.c_str(), g_trace.c_str());
  std::abort();
}

std::string Text(float v) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.9g", v);
  return buffer;
}

std::string Describe(const Options& o) {
  std::string t = "options: axis [";
  for (int a : o.axis) t += std::to_string(a) + " ";
  t += "] momentum " + Text(o.momentum) + " epsilon " + Text(o.epsilon) + " center " +
       std::to_string(o.center) + " scale " + std::to_string(o.scale) + " beta0 " +
       Text(o.beta_initializer.value) + " gamma0 " + Text(o.gamma_initializer.value) + " mean0 " +
       Text(o.moving_mean_initializer.value) + " var0 " +
       Text(o.moving_variance_initializer.value) + " renorm " + std::to_string(o.renorm);
  if (o.renorm) {
    t += " renorm_momentum " + Text(o.renorm_momentum);
    if (o.renorm_clipping.rmax) t += " rmax " + Text(*o.renorm_clipping.rmax);
    if (o.renorm_clipping.rmin) t += " rmin " + Text(*o.renorm_clipping.rmin);
    if (o.renorm_clipping.dmax) t += " dmax " + Text(*o.renorm_clipping.dmax);
  }
  t += " fused " + std::to_string(static_cast<int>(o.fused)) + " trainable " +
       std::to_string(o.trainable);
  if (o.virtual_batch_size) t += " virtual_batch_size " + std::to_string(*o.virtual_batch_size);
  if (o.adjustment) t += " adjustment";
  if (o.gamma_constraint) t += " constraints";
  return t + "\n";
}

void Check(bool condition, const std::string& what) {
  if (!condition) Fail(what);
}

// True once in n draws; false when the input is exhausted, so that the tail
// of an input makes plain, valid calls.
bool Rare(FuzzedDataProvider& in, int n) {
  return in.ConsumeIntegralInRange<int>(0, n - 1) == n - 1;
}

// A case in [0, n): the low cases are the rare, wild ones, and an exhausted
// input gives n - 1.
int PickCase(FuzzedDataProvider& in, int n) {
  return n - 1 - in.ConsumeIntegralInRange<int>(0, n - 1);
}

// A float that is usually tame (from [low, high]) and sometimes wild.
float PickFloat(FuzzedDataProvider& in, float low, float high, bool* wild) {
  switch (PickCase(in, 16)) {
    case 0:
      *wild = true;
      return std::numeric_limits<float>::quiet_NaN();
    case 1:
      *wild = true;
      return std::numeric_limits<float>::infinity();
    case 2:
      *wild = true;
      return -std::numeric_limits<float>::infinity();
    case 3:
      *wild = true;
      return in.ConsumeFloatingPoint<float>();
    default:
      return in.ConsumeFloatingPointInRange<float>(low, high);
  }
}

size_t Elements(const Shape& shape) {
  size_t n = 1;
  for (int64_t s : shape) n *= static_cast<size_t>(s);
  return n;
}

bool AllFinite(const std::vector<float>& v) {
  return std::all_of(v.begin(), v.end(), [](float f) { return std::isfinite(f); });
}

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

// Every variable the layer has, in a fixed order (empty when not built).
std::vector<std::vector<float>> Snapshot(const BatchNorm& layer) {
  std::vector<std::vector<float>> s;
  if (!layer.built()) return s;
  const Options& o = layer.options();
  s.push_back(layer.moving_mean());
  s.push_back(layer.moving_variance());
  if (o.scale) s.push_back(layer.gamma());
  if (o.center) s.push_back(layer.beta());
  if (o.renorm) {
    s.push_back(layer.moving_stddev());
    s.push_back(layer.renorm_mean());
    s.push_back(layer.renorm_stddev());
  }
  return s;
}

// The reference state from Snapshot()'s variables (same order).
void FromSnapshot(const Options& o, const std::vector<std::vector<float>>& snapshot,
                  bnorm::keras_reference::State* s) {
  size_t i = 0;
  const auto take = [&](std::vector<double>* to) {
    to->assign(snapshot[i].begin(), snapshot[i].end());
    ++i;
  };
  take(&s->moving_mean);
  take(&s->moving_variance);
  if (o.scale) take(&s->gamma);
  if (o.center) take(&s->beta);
  if (o.renorm) {
    take(&s->moving_stddev);
    take(&s->renorm_mean);
    take(&s->renorm_stddev);
  }
}

void CheckUntouched(const std::vector<std::vector<float>>& before, const BatchNorm& layer,
                    const std::string& what) {
  const std::vector<std::vector<float>> after = Snapshot(layer);
  Check(before.size() == after.size(), what + ": the set of variables changed");
  for (size_t i = 0; i < before.size(); ++i) {
    Check(SameBits(before[i], after[i]), what + ": a state variable changed after an error");
  }
}

// |got - want| <= tol * (1 + scale), NaN only where the reference is NaN.
void CheckClose(const std::vector<float>& got, const std::vector<double>& want, double tol,
                double scale, const std::string& what) {
  Check(got.size() == want.size(), what + ": size differs from the reference");
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(want[i]) && std::isnan(got[i])) continue;
    const double err = std::fabs(static_cast<double>(got[i]) - want[i]);
    if (!(err <= tol * (1.0 + scale))) {
      Fail(what + "[" + std::to_string(i) + "] is " + std::to_string(got[i]) +
           ", the Keras reference says " + std::to_string(want[i]));
    }
  }
}

double MaxAbs(const std::vector<double>& v) {
  double m = 0.0;
  for (double d : v) {
    if (std::isfinite(d)) m = std::max(m, std::fabs(d));
  }
  return m;
}

// The batch statistics are exact to about 1e-7 relative to the data's scale
// (max(|mean|, std), not |mean|), so a moving mean near 0 over data of
// magnitude `data_scale` may be off by ~1e-7 * data_scale, and a variance
// by ~1e-7 * data_scale^2: the tolerances grow with it.
void CheckState(const BatchNorm& layer, const bnorm::keras_reference::State& s, double data_scale) {
  const Options& o = layer.options();
  const double tol = 1e-5;
  auto check = [&](const std::vector<float>& got, const std::vector<double>& want, const char* name,
                   double scale) { CheckClose(got, want, tol, MaxAbs(want) + scale, name); };
  check(layer.moving_mean(), s.moving_mean, "moving_mean", data_scale);
  check(layer.moving_variance(), s.moving_variance, "moving_variance", data_scale * data_scale);
  if (o.scale) check(layer.gamma(), s.gamma, "gamma", 0.0);
  if (o.center) check(layer.beta(), s.beta, "beta", 0.0);
  if (o.renorm) {
    check(layer.moving_stddev(), s.moving_stddev, "moving_stddev", data_scale);
    check(layer.renorm_mean(), s.renorm_mean, "renorm_mean", data_scale);
    check(layer.renorm_stddev(), s.renorm_stddev, "renorm_stddev", data_scale);
  }
}

// Random options; *tame is cleared when a value makes float32 rounding
// unbounded relative to the reference.
Options PickOptions(FuzzedDataProvider& in, size_t rank, bool* tame) {
  Options o;
  bool wild = false;
  const int r = static_cast<int>(rank);
  o.axis.clear();
  const int axes = in.ConsumeIntegralInRange<int>(0, 3);
  for (int i = 0; i < std::max(axes, 1); ++i) {
    // Mostly in range, sometimes just outside or far outside.
    if (Rare(in, 16)) {
      o.axis.push_back(in.ConsumeIntegral<int>());
    } else {
      o.axis.push_back(in.ConsumeIntegralInRange<int>(-r - 1, r));
    }
  }
  if (axes == 0 && in.ConsumeBool()) o.axis.clear();
  o.momentum = PickFloat(in, 0.0f, 1.0f, &wild);
  o.epsilon = PickFloat(in, 1e-5f, 1.0f, &wild);
  o.center = in.ConsumeBool();
  o.scale = in.ConsumeBool();
  o.beta_initializer.value = PickFloat(in, -2.0f, 2.0f, &wild);
  o.gamma_initializer.value = PickFloat(in, -2.0f, 2.0f, &wild);
  o.moving_mean_initializer.value = PickFloat(in, -2.0f, 2.0f, &wild);
  o.moving_variance_initializer.value = PickFloat(in, 0.0f, 4.0f, &wild);
  o.renorm = in.ConsumeBool();
  if (o.renorm) {
    o.renorm_momentum = PickFloat(in, 0.0f, 1.0f, &wild);
    if (in.ConsumeBool()) o.renorm_clipping.rmax = PickFloat(in, 1.0f, 4.0f, &wild);
    if (in.ConsumeBool()) o.renorm_clipping.rmin = PickFloat(in, 0.0f, 1.0f, &wild);
    if (in.ConsumeBool()) o.renorm_clipping.dmax = PickFloat(in, 0.0f, 4.0f, &wild);
  }
  o.fused = static_cast<bnorm::Fused>(in.ConsumeIntegralInRange<int>(0, 2));
  o.trainable = !Rare(in, 4);
  if (in.ConsumeBool()) {
    o.virtual_batch_size =
        Rare(in, 16) ? in.ConsumeIntegral<int64_t>() : in.ConsumeIntegralInRange<int64_t>(-1, 8);
  }
  if (Rare(in, 4)) {
    // Per-channel (scale, bias) from the input, repeated over the channels.
    std::vector<float> scale(1 + in.ConsumeIntegralInRange<size_t>(0, 3));
    std::vector<float> bias(scale.size());
    for (size_t i = 0; i < scale.size(); ++i) {
      scale[i] = PickFloat(in, 0.25f, 2.0f, &wild);
      bias[i] = PickFloat(in, -1.0f, 1.0f, &wild);
    }
    const std::vector<int> axis = o.axis;
    o.adjustment = [scale, bias, axis](const Shape& shape, float* s, float* b) {
      const int64_t rank = static_cast<int64_t>(shape.size());
      size_t channels = 1;
      for (int a : axis)
        channels *= static_cast<size_t>(shape[static_cast<size_t>(a < 0 ? a + rank : a)]);
      for (size_t c = 0; c < channels; ++c) {
        s[c] = scale[c % scale.size()];
        b[c] = bias[c % bias.size()];
      }
    };
  }
  if (Rare(in, 4)) {
    // Keras' NonNeg / MinMaxNorm-like constraints, applied by the setters.
    o.gamma_constraint = [](float* v, size_t n) {
      for (size_t i = 0; i < n; ++i) v[i] = std::max(v[i], 0.0f);
    };
    o.beta_constraint = [](float* v, size_t n) {
      for (size_t i = 0; i < n; ++i) v[i] = std::min(std::max(v[i], -1.0f), 1.0f);
    };
  }
  *tame = !wild;
  return o;
}

// A shape of `rank` small sizes (0 now and then); rarely a negative size or a
// pair of sizes whose product overflows size_t (then without zero sizes, so
// the overflow is real).
Shape PickShape(FuzzedDataProvider& in, size_t rank) {
  Shape shape(rank);
  for (size_t k = 0; k < rank; ++k) {
    shape[k] = Rare(in, 16) ? 0 : in.ConsumeIntegralInRange<int64_t>(1, 6);
  }
  switch (PickCase(in, 32)) {
    case 0:
      shape[in.ConsumeIntegralInRange<size_t>(0, rank - 1)] =
          in.ConsumeIntegralInRange<int64_t>(std::numeric_limits<int64_t>::min(), -1);
      break;
    case 1:
      if (rank >= 2) {
        for (int64_t& s : shape) s = std::max<int64_t>(s, 1);
        shape[0] = int64_t{1} << 33;
        shape[rank - 1] = (int64_t{1} << 31) + in.ConsumeIntegralInRange<int64_t>(0, 3);
      }
      break;
    default:
      break;
  }
  return shape;
}

// Whether shape[0] may change between calls without changing the feature
// sizes (axis 0 is not a feature axis).
bool BatchAxisIsFree(const Options& o, size_t rank) {
  for (int a : o.axis) {
    if (a == 0 || a == -static_cast<int>(rank)) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const size_t rank = in.ConsumeIntegralInRange<size_t>(1, 5);
  bool tame = true;
  Options options;
  try {
    options = PickOptions(in, rank, &tame);
  } catch (const bnorm::Error&) {
    Fail("choosing options threw");
  }
  g_trace = Describe(options);
  std::optional<BatchNorm> layer;
  try {
    layer.emplace(options);
  } catch (const bnorm::Error& e) {
    Check(std::strlen(e.what()) > 0, "empty error message");
    return 0;
  }
  Shape shape = PickShape(in, rank);
  const int calls = in.ConsumeIntegralInRange<int>(1, 3);
  for (int call = 0; call < calls && in.remaining_bytes() > 0; ++call) {
    if (call > 0 && BatchAxisIsFree(options, rank) && in.ConsumeBool() && shape[0] >= 0 &&
        shape[0] < (int64_t{1} << 32)) {
      shape[0] = in.ConsumeIntegralInRange<int64_t>(0, 6);
    }
    const bool valid_shape =
        std::all_of(shape.begin(), shape.end(), [](int64_t s) { return s >= 0 && s <= 64; });
    const size_t n = valid_shape ? Elements(shape) : 0;
    if (n > kMaxElements) return 0;

    // Data: small multiples of 1/64 (tame) or arbitrary floats.
    std::vector<float> x(n);
    const bool raw = Rare(in, 8);
    for (float& v : x) {
      v = raw ? in.ConsumeFloatingPoint<float>()
              : static_cast<float>(in.ConsumeIntegral<int16_t>()) / 64.0f;
    }
    std::vector<float> y(n, -12345.0f);
    const bool in_place = in.ConsumeBool();
    const int t = in.ConsumeIntegralInRange<int>(0, 2);
    const std::optional<bool> training = t == 2 ? std::nullopt : std::optional<bool>(t == 1);
    const bnorm::Execution exec =
        in.ConsumeBool() ? bnorm::Execution::Serial() : bnorm::Execution::Parallel();
    const bool sixteen = Rare(in, 8);
    const bool null_x = valid_shape && Rare(in, 32);

    g_trace += "call " + std::to_string(call) + ": shape [";
    for (int64_t d : shape) g_trace += std::to_string(d) + " ";
    g_trace += "] training " + std::string(training ? (*training ? "true" : "false") : "unset") +
               (in_place ? " in place" : "") + (sixteen ? " 16-bit" : "") +
               (null_x ? " null x" : "") + (raw ? " raw data" : "") + "\n";
    const bool was_built = layer->built();
    const auto before = Snapshot(*layer);
    const std::vector<float> x_before = x;
    const std::vector<float> y_before = in_place ? x : y;
    float* out = in_place ? x.data() : y.data();
    // A tiny stand-in buffer for invalid shapes, which must fail before any
    // element is touched.
    float guard[4] = {1.0f, 2.0f, 3.0f, 4.0f};
    const float* x_ptr = null_x ? nullptr : (valid_shape ? x.data() : guard);
    float* y_ptr = valid_shape ? out : guard + 2;
    try {
      if (sixteen) {
        const bnorm::DType type =
            in.ConsumeBool() ? bnorm::DType::kFloat16 : bnorm::DType::kBFloat16;
        std::vector<uint16_t> x16(n), y16(n, 0xABCD);
        for (uint16_t& v : x16) v = in.ConsumeIntegral<uint16_t>();
        layer->Forward(null_x ? nullptr : x16.data(), valid_shape ? y16.data() : nullptr, type,
                       shape, training, exec);
        // 16-bit I/O is checked for safety only (the float32 path carries
        // the numerics); arbitrary bit patterns make the state wild.
        tame = false;
        continue;
      }
      layer->Forward(x_ptr, y_ptr, shape, training, exec);
    } catch (const bnorm::Error& e) {
      Check(std::strlen(e.what()) > 0, "empty error message");
      if (was_built) CheckUntouched(before, *layer, "Forward");
      Check(SameBits(x, x_before), "x changed after an error");
      if (!in_place) Check(SameBits(y, y_before), "y changed after an error");
      Check(guard[0] == 1.0f && guard[1] == 2.0f && guard[2] == 3.0f && guard[3] == 4.0f,
            "a guard buffer was written after an error");
      continue;
    }
    Check(valid_shape, "Forward accepted a negative or overflowing shape");
    Check(!null_x || n == 0, "Forward accepted a null x for a non-empty tensor");
    if (!in_place) Check(SameBits(x, x_before), "Forward wrote into its input");

    // Compare with the reference, started from the state the layer had
    // before this call (exact: float widens to double), so that each call is
    // checked on its own.
    size_t channels = 1;
    for (int64_t s : layer->parameter_shape()) channels *= static_cast<size_t>(s);
    bnorm::keras_reference::State reference = bnorm::keras_reference::Initial(options, channels);
    if (was_built) FromSnapshot(options, before, &reference);
    std::vector<double> expected(n);
    bnorm::keras_reference::Forward(options, shape, x_before.data(), training, &reference,
                                    expected.data());
    if (tame && !raw && AllFinite(x_before) && n > 0) {
      CheckClose(in_place ? x : y, expected, 1e-4, MaxAbs(expected), "y");
      double data_scale = 0.0;
      for (float v : x_before) data_scale = std::max(data_scale, std::fabs(static_cast<double>(v)));
      CheckState(*layer, reference, data_scale);
    }
    // Arbitrary floats may leave huge or non-finite state behind, where
    // float32 and float64 legitimately part ways.
    if (raw) tame = false;

    // Setters now and then: a wrong length must fail and change nothing.
    if (Rare(in, 4)) {
      const size_t count = in.ConsumeBool() ? channels : in.ConsumeIntegralInRange<size_t>(0, 9);
      std::vector<float> values(count);
      for (float& v : values) v = in.ConsumeFloatingPointInRange<float>(-2.0f, 2.0f);
      const int which = in.ConsumeIntegralInRange<int>(0, 3);
      const auto state_before = Snapshot(*layer);
      try {
        if (which == 0) layer->set_gamma(values);
        if (which == 1) layer->set_beta(values);
        if (which == 2) layer->set_moving_mean(values);
        if (which == 3) layer->set_renorm_mean(values);
      } catch (const bnorm::Error&) {
        CheckUntouched(state_before, *layer, "setter");
        continue;
      }
      Check(count == channels, "a setter accepted the wrong number of values");
      if (which == 0 && options.gamma_constraint) {
        for (float v : layer->gamma()) Check(v >= 0.0f, "gamma_constraint not applied");
      }
    }
  }
  return 0;
}
