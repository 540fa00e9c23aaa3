// SPDX-License-Identifier: Apache-2.0
// Fuzzes the C ABI (bnorm/bnorm.h): a sequence of calls chosen by the input,
// with random options, ranks, shapes, axes, channel counts, enum values out of
// range, null / misaligned / partially overlapping pointers and layers used
// across calls. Every call must return a status from the enum (INTERNAL means
// a bug in bnorm and aborts here); a failed call must leave a message in
// bnorm_last_error() and every output buffer byte for byte as it was.
//
// The harness never lies about buffer sizes: every pointer it passes holds at
// least what the shape (or channel count) it passes with it describes, except
// when that count overflows size_t or its byte size does, which bnorm must
// reject before touching memory. Shapes that are valid but larger than the
// harness's limit are not passed at all.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "bnorm/bnorm.h"

namespace {

constexpr size_t kMaxElements = 4096;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "c_api_fuzz: %s (last error: %s)\n", what.c_str(), bnorm_last_error());
  std::abort();
}

void Check(bool condition, const std::string& what) {
  if (!condition) Fail(what);
}

// Checks a returned status; true when it is OK.
bool Ok(bnorm_status status, const char* call) {
  const int s = static_cast<int>(status);
  Check(s >= BNORM_STATUS_OK && s <= BNORM_STATUS_INTERNAL,
        std::string(call) + " returned a status outside the enum");
  Check(status != BNORM_STATUS_INTERNAL, std::string(call) + " returned INTERNAL (a bnorm bug)");
  if (status != BNORM_STATUS_OK) {
    Check(std::strlen(bnorm_last_error()) > 0, std::string(call) + " failed without a message");
    Check(std::strcmp(bnorm_status_string(status), "unknown status") != 0,
          std::string(call) + ": status has no name");
  }
  return status == BNORM_STATUS_OK;
}

// A byte buffer with 64-byte aligned storage, the region the harness promises
// to bnorm, and a snapshot to compare after a failed call.
class Buffer {
 public:
  Buffer(size_t bytes, FuzzedDataProvider& in) : storage_(bytes + 128) {
    for (size_t i = 0; i < storage_.size(); ++i) storage_[i] = static_cast<uint8_t>(i * 131 + 7);
    // Some real values so that successful calls compute something.
    const size_t fill = std::min<size_t>(bytes, 64);
    const std::vector<uint8_t> head = in.ConsumeBytes<uint8_t>(fill);
    std::copy(head.begin(), head.end(), Base());
  }
  uint8_t* Base() {
    const uintptr_t p = reinterpret_cast<uintptr_t>(storage_.data());
    return storage_.data() + ((64 - p % 64) % 64);
  }
  std::vector<uint8_t> Snapshot() const { return storage_; }
  bool Same(const std::vector<uint8_t>& snapshot) const { return snapshot == storage_; }

 private:
  std::vector<uint8_t> storage_;
};

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

// An enum argument as a C caller passes it: usually one of the `count` listed
// values, sometimes any int (C converts any int to an enum type; bnorm.h's
// functions must answer it with INVALID_ARGUMENT). Built with memcpy so that
// this file has no undefined behaviour of its own; it is compiled with
// -fno-sanitize=enum (fuzz/CMakeLists.txt), so that UBSan's enum check fires
// only where the library loads such a value.
template <class E>
E PickEnum(FuzzedDataProvider& in, int count) {
  static_assert(sizeof(E) == sizeof(int), "C enums are int-sized here");
  int v = in.ConsumeIntegralInRange<int>(0, count - 1);
  if (Rare(in, 8)) v = in.ConsumeIntegral<int>();
  E e;
  std::memcpy(&e, &v, sizeof(v));
  return e;
}

struct ShapeCase {
  std::vector<int64_t> dims;  // holds BNORM_MAX_RANK + 2 so larger ranks read valid memory
  size_t rank = 0;
  bool null = false;
  bool elements_overflow = false;  // the element count overflows size_t
  size_t elements = 0;             // when not overflowing
};

// for_layer: a layer allocates its variables for the feature sizes even when
// the batch is empty, so next to a zero size, sizes in [2^20, 2^61) (valid
// requests for gigabytes) become small; sizes >= 2^61 stay, since no buffer
// of that many floats can exist and bnorm must say so.
ShapeCase PickShape(FuzzedDataProvider& in, size_t max_rank, bool for_layer = false) {
  ShapeCase s;
  s.dims.assign(BNORM_MAX_RANK + 2, 1);
  s.rank = in.ConsumeIntegralInRange<size_t>(0, max_rank);
  if (Rare(in, 32)) s.rank = in.ConsumeIntegral<size_t>();
  s.null = Rare(in, 32);
  for (int64_t& d : s.dims) {
    switch (PickCase(in, 32)) {
      case 0:
        d = 0;
        break;
      case 1:
        d = in.ConsumeIntegralInRange<int64_t>(std::numeric_limits<int64_t>::min(), -1);
        break;
      case 2:
        d = int64_t{1} << in.ConsumeIntegralInRange<int>(30, 62);
        break;
      case 3:
        d = std::numeric_limits<int64_t>::max();
        break;
      default:
        d = in.ConsumeIntegralInRange<int64_t>(1, 6);
    }
  }
  if (for_layer && std::find(s.dims.begin(), s.dims.end(), 0) != s.dims.end()) {
    for (int64_t& d : s.dims) {
      if (d >= (int64_t{1} << 20) && d < (int64_t{1} << 61)) d = 6;
    }
  }
  size_t n = 1;
  bool overflow = false;
  const size_t counted = std::min<size_t>(s.rank, s.dims.size());
  for (size_t i = 0; i < counted; ++i) {
    if (s.dims[i] < 0) continue;  // rejected anyway
    overflow |= __builtin_mul_overflow(n, static_cast<size_t>(s.dims[i]), &n);
  }
  s.elements_overflow = overflow && n != 0;
  s.elements = overflow ? 0 : n;
  return s;
}

// Whether the element count or the byte count at `item` bytes per element
// overflows size_t: bnorm must reject the shape.
bool Overflows(const ShapeCase& s, size_t item) {
  size_t bytes = 0;
  return s.elements_overflow || __builtin_mul_overflow(s.elements, item, &bytes);
}

// Whether the harness can back the shape with real memory (or need not,
// because bnorm must reject it before reading).
bool Passable(const ShapeCase& s, size_t item) {
  if (s.null || s.rank == 0 || s.rank > BNORM_MAX_RANK || Overflows(s, item)) return true;
  for (size_t i = 0; i < s.rank; ++i) {
    if (s.dims[i] < 0) return true;
  }
  return s.elements <= kMaxElements;
}

// Elements to allocate for the shape.
size_t Backing(const ShapeCase& s, size_t item) {
  return Overflows(s, item) || s.elements > kMaxElements ? 1 : std::max<size_t>(s.elements, 1);
}

// Bytes per element; an invalid dtype (which bnorm must reject) counts 4.
size_t ItemSize(bnorm_dtype dtype) {
  int v;
  std::memcpy(&v, &dtype, sizeof(v));
  return v == BNORM_DTYPE_F16 || v == BNORM_DTYPE_BF16 ? 2 : 4;
}

std::vector<int> PickAxes(FuzzedDataProvider& in, size_t* num_axes) {
  std::vector<int> axes(BNORM_MAX_RANK + 2);
  for (int& a : axes) {
    a = Rare(in, 16) ? in.ConsumeIntegral<int>() : in.ConsumeIntegralInRange<int>(-6, 5);
  }
  *num_axes = in.ConsumeIntegralInRange<size_t>(0, 4);
  if (Rare(in, 32)) *num_axes = in.ConsumeIntegral<size_t>();
  return axes;
}

float PickFloat(FuzzedDataProvider& in, float low, float high) {
  switch (PickCase(in, 12)) {
    case 0:
      return std::numeric_limits<float>::quiet_NaN();
    case 1:
      return std::numeric_limits<float>::infinity();
    case 2:
      return in.ConsumeFloatingPoint<float>();
    default:
      return in.ConsumeFloatingPointInRange<float>(low, high);
  }
}

// Element pointers into `buffer`: the base, null, one byte off, or a partial
// overlap with `other`.
void* PickPointer(FuzzedDataProvider& in, Buffer& buffer) {
  switch (PickCase(in, 16)) {
    case 0:
      return nullptr;
    case 1:
      return buffer.Base() + 1;  // misaligned (the buffer has slack for it)
    default:
      return buffer.Base();
  }
}

struct Layer {
  bnorm_layer* handle = nullptr;
  size_t channels = 0;  // 0 until built
};

bnorm_options PickOptions(FuzzedDataProvider& in) {
  bnorm_options o;
  Check(bnorm_options_init(&o) == BNORM_STATUS_OK, "bnorm_options_init failed");
  size_t num_axes = 0;
  const std::vector<int> axes = PickAxes(in, &num_axes);
  std::copy(axes.begin(), axes.begin() + BNORM_MAX_RANK, o.axes);
  if (in.ConsumeBool()) o.num_axes = num_axes;
  if (in.ConsumeBool()) o.momentum = PickFloat(in, 0.0f, 1.0f);
  if (in.ConsumeBool()) o.epsilon = PickFloat(in, 1e-5f, 1.0f);
  o.center = in.ConsumeIntegral<int>() % 3;
  o.scale = in.ConsumeIntegral<int>() % 3;
  o.gamma_initializer = PickFloat(in, -2.0f, 2.0f);
  o.moving_variance_initializer = PickFloat(in, 0.0f, 2.0f);
  o.renorm = in.ConsumeBool();
  o.has_rmax = in.ConsumeBool();
  o.rmax = PickFloat(in, 1.0f, 3.0f);
  o.has_rmin = in.ConsumeBool();
  o.rmin = PickFloat(in, 0.0f, 1.0f);
  o.has_dmax = in.ConsumeBool();
  o.dmax = PickFloat(in, -1.0f, 3.0f);
  o.renorm_momentum = PickFloat(in, 0.0f, 1.0f);
  o.fused = PickEnum<bnorm_fused>(in, 3);
  o.trainable = in.ConsumeIntegralInRange<int>(0, 3) != 0;
  o.virtual_batch_size =
      in.ConsumeIntegralInRange<int>(0, 3) != 0 ? 0 : in.ConsumeIntegralInRange<int64_t>(-2, 6);
  return o;
}

// The layer's variables (those it has) as bytes, for the
// untouched-after-failure check (bytes, so that NaN compares equal to itself).
std::vector<std::vector<uint8_t>> LayerState(const Layer& layer) {
  std::vector<std::vector<uint8_t>> state;
  if (layer.handle == nullptr || layer.channels == 0 || layer.channels > kMaxElements) return state;
  for (int which = BNORM_STATE_GAMMA; which <= BNORM_STATE_RENORM_STDDEV; ++which) {
    std::vector<float> values(layer.channels);
    std::vector<uint8_t> bytes(values.size() * sizeof(float));
    if (bnorm_layer_get_state(layer.handle, static_cast<bnorm_state>(which), values.data(),
                              values.size()) == BNORM_STATUS_OK) {
      std::memcpy(bytes.data(), values.data(), bytes.size());
    } else {
      bytes.clear();
    }
    state.push_back(bytes);
  }
  return state;
}

void Forward(FuzzedDataProvider& in, Layer& layer) {
  const ShapeCase s = PickShape(in, 5, true);
  const bnorm_dtype dtype = PickEnum<bnorm_dtype>(in, 3);
  const size_t item = ItemSize(dtype);
  if (!Passable(s, item)) return;
  Buffer bx(Backing(s, item) * item, in);
  Buffer by(Backing(s, item) * item, in);
  void* x = PickPointer(in, bx);
  void* y = nullptr;
  size_t shift = 0;  // y - x in bytes when y points into x's buffer
  switch (in.ConsumeIntegralInRange<int>(0, 7)) {
    case 0:
      y = x;  // in place
      break;
    case 1:
      // y a few elements into x (x's buffer has slack): a partial overlap
      // unless x holds at most that many elements.
      shift = item * in.ConsumeIntegralInRange<size_t>(1, 8);
      y = x == nullptr ? nullptr : static_cast<uint8_t*>(x) + shift;
      break;
    default:
      y = PickPointer(in, by);
  }
  const int training = in.ConsumeIntegralInRange<int>(-2, 2);
  bnorm_layer* handle = Rare(in, 32) ? nullptr : layer.handle;
  const auto state = LayerState(layer);
  const auto x_before = bx.Snapshot();
  const auto y_before = by.Snapshot();
  const bnorm_status status =
      bnorm_layer_forward(handle, x, y, dtype, s.null ? nullptr : s.dims.data(), s.rank, training);
  if (Ok(status, "bnorm_layer_forward")) {
    Check(!Overflows(s, item), "bnorm_layer_forward accepted an overflowing shape");
    Check(x != nullptr && y != nullptr && handle != nullptr, "accepted a null pointer");
    if (shift != 0) {
      Check(s.elements * item <= shift, "bnorm_layer_forward accepted a partial overlap");
    } else if (y != x) {
      Check(bx.Same(x_before), "bnorm_layer_forward wrote into x");
    }
    size_t channels = 0;
    Check(Ok(bnorm_layer_channels(layer.handle, &channels), "bnorm_layer_channels"),
          "a layer that ran is not built");
    layer.channels = channels;
    return;
  }
  Check(bx.Same(x_before), "a failed bnorm_layer_forward changed x");
  Check(by.Same(y_before), "a failed bnorm_layer_forward changed y");
  if (handle != nullptr) {
    const auto after = LayerState(layer);
    if (!state.empty()) Check(after == state, "a failed bnorm_layer_forward changed the state");
  }
  // The layer may have been built by a call that failed later.
  size_t channels = 0;
  if (layer.handle != nullptr && bnorm_layer_channels(layer.handle, &channels) == BNORM_STATUS_OK) {
    layer.channels = channels;
  }
}

void Build(FuzzedDataProvider& in, Layer& layer) {
  const ShapeCase s = PickShape(in, 5, true);
  // Build sees no data, so only an overflowing element count must be
  // rejected; a valid shape of more elements than the harness allows could
  // have a feature size too large to allocate variables for (an
  // OUT_OF_MEMORY in production, a fatal report under ASan).
  if (!Passable(s, 1)) return;
  bnorm_layer* handle = Rare(in, 32) ? nullptr : layer.handle;
  if (Ok(bnorm_layer_build(handle, s.null ? nullptr : s.dims.data(), s.rank),
         "bnorm_layer_build")) {
    // Build touches no tensor, so only the element count must fit.
    Check(!s.elements_overflow, "bnorm_layer_build accepted an overflowing shape");
    size_t channels = 0;
    Check(Ok(bnorm_layer_channels(layer.handle, &channels), "bnorm_layer_channels"),
          "a built layer has no channel count");
    layer.channels = channels;
  }
}

void State(FuzzedDataProvider& in, Layer& layer) {
  const bnorm_state which = PickEnum<bnorm_state>(in, 7);
  size_t count = in.ConsumeBool() ? layer.channels : in.ConsumeIntegralInRange<size_t>(0, 9);
  if (Rare(in, 32)) count = in.ConsumeIntegral<size_t>();
  // The buffer holds `count` floats whenever count could be accepted.
  const bool backed = count <= kMaxElements;
  Buffer values((backed ? std::max<size_t>(count, 1) : 1) * sizeof(float), in);
  float* p = Rare(in, 16) ? nullptr : reinterpret_cast<float*>(values.Base());
  if (!backed && count == layer.channels) return;  // cannot back a valid huge count
  const auto before = values.Snapshot();
  const auto state = LayerState(layer);
  if (in.ConsumeBool()) {
    if (!Ok(bnorm_layer_get_state(layer.handle, which, p, count), "bnorm_layer_get_state")) {
      Check(values.Same(before), "a failed bnorm_layer_get_state wrote values");
    }
  } else {
    if (!Ok(bnorm_layer_set_state(layer.handle, which, p, count), "bnorm_layer_set_state")) {
      Check(LayerState(layer) == state, "a failed bnorm_layer_set_state changed the state");
    }
  }
}

void Moments(FuzzedDataProvider& in) {
  const ShapeCase s = PickShape(in, 5);
  const bnorm_dtype dtype = PickEnum<bnorm_dtype>(in, 3);
  const size_t item = ItemSize(dtype);
  if (!Passable(s, item)) return;
  Buffer bx(Backing(s, item) * item, in);
  size_t num_axes = 0;
  const std::vector<int> axes = PickAxes(in, &num_axes);
  size_t channels = in.ConsumeIntegralInRange<size_t>(0, 8);
  if (in.ConsumeBool() && s.rank >= 1 && s.rank <= BNORM_MAX_RANK && !s.null && num_axes == 1 &&
      axes[0] >= -static_cast<int>(s.rank) && axes[0] < static_cast<int>(s.rank)) {
    // The right channel count for a single axis, so that the call can run.
    const int64_t d =
        s.dims[static_cast<size_t>(axes[0] < 0 ? axes[0] + static_cast<int>(s.rank) : axes[0])];
    channels = d < 0 ? 0 : static_cast<size_t>(d);
  }
  const size_t backing = std::min(std::max<size_t>(channels, 1), kMaxElements);
  Buffer mean(backing * sizeof(double), in), variance(backing * sizeof(double), in);
  const auto m0 = mean.Snapshot(), v0 = variance.Snapshot();
  const void* x = PickPointer(in, bx);
  double* mp = Rare(in, 32) ? nullptr : reinterpret_cast<double*>(mean.Base());
  double* vp = Rare(in, 32) ? nullptr : reinterpret_cast<double*>(variance.Base());
  if (!Ok(bnorm_moments(x, dtype, s.null ? nullptr : s.dims.data(), s.rank,
                        Rare(in, 32) ? nullptr : axes.data(), num_axes, mp, vp, channels),
          "bnorm_moments")) {
    Check(mean.Same(m0) && variance.Same(v0), "a failed bnorm_moments wrote its outputs");
  } else {
    Check(!Overflows(s, item), "bnorm_moments accepted an overflowing shape");
  }
}

void Normalize(FuzzedDataProvider& in) {
  const ShapeCase s = PickShape(in, 5);
  const bnorm_dtype dtype = PickEnum<bnorm_dtype>(in, 3);
  const size_t item = ItemSize(dtype);
  if (!Passable(s, item)) return;
  Buffer bx(Backing(s, item) * item, in), by(Backing(s, item) * item, in);
  size_t num_axes = 0;
  const std::vector<int> axes = PickAxes(in, &num_axes);
  size_t channels = in.ConsumeIntegralInRange<size_t>(0, 8);
  if (in.ConsumeBool() && s.rank >= 1 && s.rank <= BNORM_MAX_RANK && !s.null && num_axes == 1 &&
      axes[0] >= -static_cast<int>(s.rank) && axes[0] < static_cast<int>(s.rank)) {
    const int64_t d =
        s.dims[static_cast<size_t>(axes[0] < 0 ? axes[0] + static_cast<int>(s.rank) : axes[0])];
    channels = d < 0 ? 0 : static_cast<size_t>(d);
  }
  const size_t backing = std::min(std::max<size_t>(channels, 1), kMaxElements);
  Buffer params(3 * backing * sizeof(float), in);
  float* base = reinterpret_cast<float*>(params.Base());
  void* x = PickPointer(in, bx);
  void* y = Rare(in, 8) ? x : PickPointer(in, by);
  if (x != nullptr && Rare(in, 16)) {
    y = static_cast<uint8_t*>(x) + item;  // partial overlap
  }
  const auto x0 = bx.Snapshot(), y0 = by.Snapshot();
  const bnorm_activation activation = PickEnum<bnorm_activation>(in, 3);
  const bnorm_status status =
      bnorm_normalize(x, y, dtype, s.null ? nullptr : s.dims.data(), s.rank,
                      Rare(in, 32) ? nullptr : axes.data(), num_axes, Rare(in, 32) ? nullptr : base,
                      base + backing, base + 2 * backing, channels, activation);
  if (!Ok(status, "bnorm_normalize")) {
    Check(bx.Same(x0) && by.Same(y0), "a failed bnorm_normalize wrote x or y");
  } else {
    Check(!Overflows(s, item), "bnorm_normalize accepted an overflowing shape");
    Check(y == x || static_cast<uint8_t*>(y) != static_cast<uint8_t*>(x) + item || s.elements <= 1,
          "bnorm_normalize accepted a partial overlap");
  }
}

void Fold(FuzzedDataProvider& in) {
  const size_t channels = in.ConsumeIntegralInRange<size_t>(0, 16);
  Buffer inputs(4 * std::max<size_t>(channels, 1) * sizeof(float), in);
  Buffer outputs(2 * std::max<size_t>(channels, 1) * sizeof(float), in);
  float* i = reinterpret_cast<float*>(inputs.Base());
  float* o = reinterpret_cast<float*>(outputs.Base());
  const size_t c = std::max<size_t>(channels, 1);
  auto maybe = [&](float* p) { return Rare(in, 16) ? nullptr : p; };
  const auto before = outputs.Snapshot();
  if (!Ok(bnorm_fold(maybe(i), maybe(i + c), maybe(i + 2 * c), maybe(i + 3 * c), channels,
                     PickFloat(in, 1e-5f, 1.0f), maybe(o), maybe(o + c)),
          "bnorm_fold")) {
    Check(outputs.Same(before), "a failed bnorm_fold wrote its outputs");
  }
}

void FoldIntoWeights(FuzzedDataProvider& in) {
  const ShapeCase s = PickShape(in, 5);
  if (!Passable(s, sizeof(float))) return;
  const size_t channels = in.ConsumeBool() && s.rank >= 1 && s.rank <= BNORM_MAX_RANK &&
                                  s.dims[0] > 0 && s.dims[0] <= static_cast<int64_t>(kMaxElements)
                              ? static_cast<size_t>(s.dims[0])
                              : in.ConsumeIntegralInRange<size_t>(0, 8);
  const size_t c = std::max<size_t>(channels, 1);
  Buffer weights(Backing(s, sizeof(float)) * sizeof(float), in);
  Buffer bias(c * sizeof(float), in);
  Buffer stats(4 * c * sizeof(float), in);
  float* st = reinterpret_cast<float*>(stats.Base());
  auto maybe = [&](float* p) { return Rare(in, 16) ? nullptr : p; };
  const auto w0 = weights.Snapshot(), b0 = bias.Snapshot();
  if (!Ok(bnorm_fold_into_weights(
              maybe(reinterpret_cast<float*>(weights.Base())), s.null ? nullptr : s.dims.data(),
              s.rank, PickEnum<bnorm_weight_layout>(in, 2),
              maybe(reinterpret_cast<float*>(bias.Base())), maybe(st), maybe(st + c),
              maybe(st + 2 * c), maybe(st + 3 * c), channels, PickFloat(in, 1e-5f, 1.0f)),
          "bnorm_fold_into_weights")) {
    Check(weights.Same(w0) && bias.Same(b0), "a failed bnorm_fold_into_weights wrote its outputs");
  } else {
    Check(!Overflows(s, sizeof(float)), "bnorm_fold_into_weights accepted an overflowing shape");
  }
}

void Targets(FuzzedDataProvider& in) {
  const size_t count = bnorm_target_count();
  Check(count >= 1, "no supported target");
  for (size_t i = 0; i < count; ++i) Check(bnorm_target_name(i) != nullptr, "null target name");
  Check(bnorm_target_name(count + in.ConsumeIntegral<uint8_t>()) == nullptr,
        "a target name past the end");
  std::string name;
  switch (in.ConsumeIntegralInRange<int>(0, 3)) {
    case 0:
      name = bnorm_target_name(in.ConsumeIntegralInRange<size_t>(0, count - 1));
      break;
    case 1:
      name = "AVX2";
      break;
    default:
      name = in.ConsumeRandomLengthString(16);
  }
  if (Ok(bnorm_force_target(Rare(in, 16) ? nullptr : name.c_str()), "bnorm_force_target")) {
    Check(std::strlen(bnorm_active_target()) > 0, "no active target");
  }
  Check(Ok(bnorm_reset_target(), "bnorm_reset_target"), "bnorm_reset_target failed");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  Check(std::strcmp(bnorm_version(), BNORM_VERSION_STRING) == 0, "version mismatch");
  Check(std::strlen(bnorm_status_string(PickEnum<bnorm_status>(in, 8))) > 0, "empty status string");
  Check(bnorm_options_init(nullptr) == BNORM_STATUS_NULL_POINTER, "options_init(null)");

  Layer layer;
  const bnorm_options options = PickOptions(in);
  const bool null_out = Rare(in, 32);
  bnorm_layer* handle = reinterpret_cast<bnorm_layer*>(0x1);  // must stay untouched on failure
  const bnorm_status created =
      bnorm_layer_create(Rare(in, 32) ? nullptr : &options, null_out ? nullptr : &handle);
  if (Ok(created, "bnorm_layer_create")) {
    layer.handle = handle;
  } else {
    Check(handle == reinterpret_cast<bnorm_layer*>(0x1),
          "a failed bnorm_layer_create wrote *layer");
  }

  // Threads: serial or small arenas (the setting is global and persists).
  if (Rare(in, 16)) {
    Ok(bnorm_set_max_threads(in.ConsumeIntegralInRange<int>(-2, 3)), "bnorm_set_max_threads");
  }

  for (int step = 0; step < 8 && in.remaining_bytes() > 0; ++step) {
    switch (in.ConsumeIntegralInRange<int>(0, 8)) {
      case 0:
        Build(in, layer);
        break;
      case 1:
      case 2:
        Forward(in, layer);
        break;
      case 3:
        State(in, layer);
        break;
      case 4:
        Moments(in);
        break;
      case 5:
        Normalize(in);
        break;
      case 6:
        Fold(in);
        break;
      case 7:
        FoldIntoWeights(in);
        break;
      case 8:
        Targets(in);
        break;
    }
  }
  size_t channels = 0;
  Check(bnorm_layer_channels(nullptr, &channels) == BNORM_STATUS_NULL_POINTER,
        "bnorm_layer_channels(null)");
  bnorm_layer_destroy(layer.handle);
  bnorm_layer_destroy(nullptr);
  return 0;
}
