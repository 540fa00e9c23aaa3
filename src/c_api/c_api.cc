// The C ABI over the C++ API. Each function checks its arguments (naming the
// bad one in a thread-local message), converts them to the C++ types and calls
// the C++ function inside Guard, which turns every exception into a status.
// Shapes are checked here, in fixed-size arrays, rather than by
// PlanGeometry: the normalize and inference paths must not allocate, and the
// checks that have their own status (null, overflow, mismatch) must run before
// the C++ code sees the values.
#include "bnorm/bnorm.h"

#include <oneapi/tbb/task_arena.h>

#include <algorithm>
#include <cctype>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bnorm/batch_norm.hpp"
#include "bnorm/error.hpp"
#include "bnorm/execution.hpp"
#include "bnorm/fold.hpp"
#include "bnorm/geometry.hpp"
#include "bnorm/kernels.hpp"
#include "bnorm/targets.hpp"

namespace {

// bnorm.h's version macros agree with each other and with project(VERSION),
// which src/CMakeLists.txt passes in as BNORM_PROJECT_VERSION.
constexpr bool Equal(const char* a, const char* b) {
  return *a == *b && (*a == '\0' || Equal(a + 1, b + 1));
}
#define BNORM_STRINGIFY_(x) #x
#define BNORM_STRINGIFY(x) BNORM_STRINGIFY_(x)
#define BNORM_VERSION_FROM_PARTS       \
  BNORM_STRINGIFY(BNORM_VERSION_MAJOR) \
  "." BNORM_STRINGIFY(BNORM_VERSION_MINOR) "." BNORM_STRINGIFY(BNORM_VERSION_PATCH)
static_assert(Equal(BNORM_VERSION_STRING, BNORM_VERSION_FROM_PARTS),
              "BNORM_VERSION_STRING disagrees with BNORM_VERSION_MAJOR/MINOR/PATCH");
static_assert(Equal(BNORM_VERSION_STRING, BNORM_PROJECT_VERSION),
              "bnorm.h's version differs from project(bnorm VERSION) in CMakeLists.txt");

// ---- Error reporting --------------------------------------------------------

// A fixed buffer, not a std::string: reporting an error must not itself fail
// or allocate.
constexpr size_t kMessageSize = 1024;
thread_local char t_message[kMessageSize] = "";

__attribute__((format(printf, 3, 4))) bnorm_status Fail(bnorm_status status, const char* function,
                                                        const char* format, ...) {
  const int prefix = std::snprintf(t_message, kMessageSize, "%s: ", function);
  va_list args;
  va_start(args, format);
  std::vsnprintf(t_message + prefix, kMessageSize - static_cast<size_t>(prefix), format, args);
  va_end(args);
  return status;
}

// Runs body() and answers every exception with a status: bnorm::Error is the
// C++ API's validation (the message names the argument), bad_alloc is memory,
// anything else is a bug.
template <class Body>
bnorm_status Guard(const char* function, const Body& body) noexcept {
  try {
    return body();
  } catch (const bnorm::Error& e) {
    return Fail(BNORM_STATUS_INVALID_ARGUMENT, function, "%s", e.what());
  } catch (const std::bad_alloc&) {
    return Fail(BNORM_STATUS_OUT_OF_MEMORY, function, "out of memory");
  } catch (const std::exception& e) {
    return Fail(BNORM_STATUS_INTERNAL, function, "internal error: %s", e.what());
  } catch (...) {
    return Fail(BNORM_STATUS_INTERNAL, function, "internal error: an unknown exception");
  }
}

#define BNORM_REQUIRE(pointer)                                                   \
  do {                                                                           \
    if ((pointer) == nullptr) {                                                  \
      return Fail(BNORM_STATUS_NULL_POINTER, kFunction, "%s is null", #pointer); \
    }                                                                            \
  } while (false)

// ---- Enumerations -----------------------------------------------------------

// Enum arguments come from C, where any int converts to them: read them as
// ints and accept only the listed values.
bool ToDType(bnorm_dtype dtype, bnorm::DType* out) {
  switch (static_cast<int>(dtype)) {
    case BNORM_DTYPE_F32:
      *out = bnorm::DType::kFloat32;
      return true;
    case BNORM_DTYPE_F16:
      *out = bnorm::DType::kFloat16;
      return true;
    case BNORM_DTYPE_BF16:
      *out = bnorm::DType::kBFloat16;
      return true;
  }
  return false;
}

bool ToActivation(bnorm_activation activation, bnorm::Activation* out) {
  switch (static_cast<int>(activation)) {
    case BNORM_ACTIVATION_NONE:
      *out = bnorm::Activation::kNone;
      return true;
    case BNORM_ACTIVATION_RELU:
      *out = bnorm::Activation::kRelu;
      return true;
    case BNORM_ACTIVATION_RELU6:
      *out = bnorm::Activation::kRelu6;
      return true;
  }
  return false;
}

bool ToFused(bnorm_fused fused, bnorm::Fused* out) {
  switch (static_cast<int>(fused)) {
    case BNORM_FUSED_AUTO:
      *out = bnorm::Fused::kAuto;
      return true;
    case BNORM_FUSED_TRUE:
      *out = bnorm::Fused::kTrue;
      return true;
    case BNORM_FUSED_FALSE:
      *out = bnorm::Fused::kFalse;
      return true;
  }
  return false;
}

bool ToLayout(bnorm_weight_layout layout, bnorm::WeightLayout* out) {
  switch (static_cast<int>(layout)) {
    case BNORM_LAYOUT_OUTPUT_FIRST:
      *out = bnorm::WeightLayout::kOutputFirst;
      return true;
    case BNORM_LAYOUT_OUTPUT_LAST:
      *out = bnorm::WeightLayout::kOutputLast;
      return true;
  }
  return false;
}

bool ValidState(bnorm_state which) {
  const int v = static_cast<int>(which);
  return v >= BNORM_STATE_GAMMA && v <= BNORM_STATE_RENORM_STDDEV;
}

// ---- Shapes -----------------------------------------------------------------

// A checked shape: rank in [min_rank, BNORM_MAX_RANK], sizes >= 0, and an
// element count that fits in size_t.
struct Shape {
  size_t rank = 0;
  int64_t dims[BNORM_MAX_RANK] = {};
  size_t elements = 1;
};

// "[2, 3, 4]" into `text`, for messages.
const char* Format(const int64_t* dims, size_t rank, char (&text)[256]) {
  size_t used = 0;
  text[0] = '\0';
  for (size_t i = 0; i < rank && used < sizeof(text); ++i) {
    used += static_cast<size_t>(std::snprintf(text + used, sizeof(text) - used, "%s%" PRId64,
                                              i == 0 ? "[" : ", ", dims[i]));
  }
  if (used < sizeof(text)) std::snprintf(text + used, sizeof(text) - used, "]");
  return text;
}

bnorm_status CheckShape(const char* function, const char* name, const int64_t* shape, size_t rank,
                        size_t min_rank, Shape* out) {
  if (shape == nullptr) return Fail(BNORM_STATUS_NULL_POINTER, function, "%s is null", name);
  if (rank < min_rank || rank > BNORM_MAX_RANK) {
    return Fail(BNORM_STATUS_INVALID_ARGUMENT, function, "rank is %zu; expected %zu..%d", rank,
                min_rank, BNORM_MAX_RANK);
  }
  out->rank = rank;
  bool overflow = false, empty = false;
  size_t elements = 1;
  for (size_t i = 0; i < rank; ++i) {
    if (shape[i] < 0) {
      return Fail(BNORM_STATUS_INVALID_ARGUMENT, function,
                  "%s[%zu] is %" PRId64 "; expected a size >= 0", name, i, shape[i]);
    }
    out->dims[i] = shape[i];
    empty |= shape[i] == 0;
    overflow |= __builtin_mul_overflow(elements, static_cast<size_t>(shape[i]), &elements);
  }
  // A zero anywhere makes the tensor empty however large the other sizes are
  // (and a wrapped product may be 0 without any zero size).
  if (overflow && !empty) {
    char text[256];
    return Fail(BNORM_STATUS_OVERFLOW, function, "%s %s has more elements than fit in size_t", name,
                Format(shape, rank, text));
  }
  out->elements = empty ? 0 : elements;
  return BNORM_STATUS_OK;
}

// The byte size of a tensor, and its alignment to the element size.
bnorm_status CheckData(const char* function, const char* name, const void* data, const Shape& shape,
                       bnorm::DType dtype, size_t* bytes) {
  const size_t size = bnorm::SizeOf(dtype);
  if (__builtin_mul_overflow(shape.elements, size, bytes)) {
    char text[256];
    return Fail(BNORM_STATUS_OVERFLOW, function, "%s of shape %s is more bytes than fit in size_t",
                name, Format(shape.dims, shape.rank, text));
  }
  if (reinterpret_cast<uintptr_t>(data) % size != 0) {
    return Fail(BNORM_STATUS_INVALID_ARGUMENT, function,
                "%s (%p) is not aligned to its element size %zu (%s)", name, data, size,
                bnorm::Name(dtype));
  }
  return BNORM_STATUS_OK;
}

// y may be x itself; any other overlap would read values already written.
bnorm_status CheckOverlap(const char* function, const void* x, const void* y, size_t bytes) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(x);
  const uintptr_t b = reinterpret_cast<uintptr_t>(y);
  const bool overlap = a != b && (a < b ? b - a < bytes : a - b < bytes);
  if (overlap) {
    return Fail(BNORM_STATUS_INVALID_ARGUMENT, function,
                "x (%p) and y (%p) overlap partially within %zu bytes; expected y == x (in "
                "place) or disjoint buffers",
                x, y, bytes);
  }
  return BNORM_STATUS_OK;
}

// The canonical geometry of `shape` with feature axes `axes`, as
// bnorm::PlanGeometry computes it but without allocating.
bnorm_status PlanAxes(const char* function, const Shape& shape, const int* axes, size_t num_axes,
                      bnorm::Geometry* g) {
  if (axes == nullptr) return Fail(BNORM_STATUS_NULL_POINTER, function, "axes is null");
  const long long r = static_cast<long long>(shape.rank);
  if (num_axes == 0 || num_axes > shape.rank) {
    return Fail(BNORM_STATUS_INVALID_ARGUMENT, function,
                "num_axes is %zu; expected 1..%zu (the rank)", num_axes, shape.rank);
  }
  int canonical[BNORM_MAX_RANK];
  for (size_t i = 0; i < num_axes; ++i) {
    if (axes[i] < -r || axes[i] >= r) {
      return Fail(BNORM_STATUS_INVALID_ARGUMENT, function,
                  "axis %d is out of range for an input of rank %zu (valid: %lld..%lld)", axes[i],
                  shape.rank, -r, r - 1);
    }
    const int a = axes[i] < 0 ? static_cast<int>(axes[i] + r) : axes[i];
    // Insertion keeps canonical[0..i] sorted.
    size_t k = i;
    for (; k > 0 && canonical[k - 1] >= a; --k) {
      if (canonical[k - 1] == a) {
        return Fail(BNORM_STATUS_INVALID_ARGUMENT, function,
                    "axis %d is duplicated in the axis list (rank %zu)", axes[i], shape.rank);
      }
      canonical[k] = canonical[k - 1];
    }
    canonical[k] = a;
  }
  for (size_t i = 1; i < num_axes; ++i) {
    if (canonical[i] != canonical[i - 1] + 1) {
      return Fail(BNORM_STATUS_UNSUPPORTED, function,
                  "axis list is not contiguous (axes %d and %d are separated); the low-level "
                  "calls need adjacent feature axes",
                  canonical[i - 1], canonical[i]);
    }
  }
  // The three products are parts of the element count, but when another size
  // is zero they can still overflow on their own.
  size_t parts[3] = {1, 1, 1};
  for (size_t i = 0; i < shape.rank; ++i) {
    const int axis = static_cast<int>(i);
    const size_t part = axis < canonical[0] ? 0 : axis <= canonical[num_axes - 1] ? 1 : 2;
    if (__builtin_mul_overflow(parts[part], static_cast<size_t>(shape.dims[i]), &parts[part])) {
      char text[256];
      return Fail(BNORM_STATUS_OVERFLOW, function, "shape %s has more elements than fit in size_t",
                  Format(shape.dims, shape.rank, text));
    }
  }
  *g = bnorm::Geometry::Dense(parts[0], parts[1], parts[2]);
  return BNORM_STATUS_OK;
}

bnorm_status CheckChannels(const char* function, size_t channels, const bnorm::Geometry& g,
                           const Shape& shape) {
  if (channels != g.channels) {
    char text[256];
    return Fail(BNORM_STATUS_SHAPE_MISMATCH, function,
                "channels is %zu; the feature axes of shape %s hold %zu", channels,
                Format(shape.dims, shape.rank, text), g.channels);
  }
  return BNORM_STATUS_OK;
}

// ---- Threads ----------------------------------------------------------------

// The execution every call uses (bnorm_set_max_threads). Constant-initialized.
struct Threads {
  std::unique_ptr<tbb::task_arena> arena;
  bnorm::Execution exec;
};
Threads g_threads;

const bnorm::Execution& Exec() { return g_threads.exec; }

// ---- Targets ----------------------------------------------------------------

struct TargetNames {
  std::vector<std::string> compiled, supported;
};

// Computed once: the names are handed out as static strings.
const TargetNames& Targets() {
  static const TargetNames names = [] {
    TargetNames n;
    for (const bnorm::TargetInfo& t : bnorm::CompiledTargets()) {
      n.compiled.push_back(t.name);
      if (t.supported) n.supported.push_back(t.name);
    }
    return n;
  }();
  return names;
}

bool IsCompiledTarget(const char* name) {
  for (const std::string& compiled : Targets().compiled) {
    if (compiled.size() == std::strlen(name) &&
        std::equal(compiled.begin(), compiled.end(), name, [](char a, char b) {
          return a == std::tolower(static_cast<unsigned char>(b));
        })) {
      return true;
    }
  }
  return false;
}

}  // namespace

// ---- The layer handle -------------------------------------------------------

struct bnorm_layer {
  explicit bnorm_layer(bnorm::Options options) : impl(std::move(options)) {
    shape.reserve(BNORM_MAX_RANK);
  }

  bnorm::BatchNorm impl;
  // Set at build: the rank (0 before), the canonical feature axes and their
  // sizes, so that a mismatching input is a SHAPE_MISMATCH found here.
  size_t rank = 0;
  size_t num_axes = 0;
  int axes[BNORM_MAX_RANK] = {};
  int64_t sizes[BNORM_MAX_RANK] = {};
  size_t channels = 0;
  // The shape of the current call for the C++ API. Its capacity holds any
  // rank, so filling it never allocates.
  std::vector<int64_t> shape;
};

namespace {

bnorm_status CheckAgainstBuilt(const char* function, const bnorm_layer& layer, const Shape& s) {
  char text[256];
  if (s.rank != layer.rank) {
    return Fail(BNORM_STATUS_SHAPE_MISMATCH, function,
                "shape %s has rank %zu; the layer was built for rank %zu",
                Format(s.dims, s.rank, text), s.rank, layer.rank);
  }
  for (size_t i = 0; i < layer.num_axes; ++i) {
    const size_t a = static_cast<size_t>(layer.axes[i]);
    if (s.dims[a] != layer.sizes[i]) {
      return Fail(BNORM_STATUS_SHAPE_MISMATCH, function,
                  "shape %s has size %" PRId64
                  " on feature axis %zu; the layer was built with %" PRId64,
                  Format(s.dims, s.rank, text), s.dims[a], a, layer.sizes[i]);
    }
  }
  return BNORM_STATUS_OK;
}

// Builds the layer for `s`, or checks `s` against the built shape.
bnorm_status BuildLayer(const char* function, bnorm_layer* layer, const Shape& s) {
  if (layer->rank != 0) return CheckAgainstBuilt(function, *layer, s);
  // Both may throw; nothing is cached until both succeeded.
  const std::vector<int> axes = bnorm::CanonicalAxes(layer->impl.options().axis, s.rank);
  layer->shape.assign(s.dims, s.dims + s.rank);
  layer->impl.Build(layer->shape);
  layer->num_axes = axes.size();
  layer->channels = 1;
  for (size_t i = 0; i < axes.size(); ++i) {
    layer->axes[i] = axes[i];
    layer->sizes[i] = s.dims[axes[i]];
    layer->channels *= static_cast<size_t>(s.dims[axes[i]]);
  }
  layer->rank = s.rank;
  return BNORM_STATUS_OK;
}

bnorm_status RequireBuilt(const char* function, const bnorm_layer& layer) {
  if (layer.rank == 0) {
    return Fail(BNORM_STATUS_INVALID_ARGUMENT, function,
                "the layer is not built; call bnorm_layer_build or bnorm_layer_forward first");
  }
  return BNORM_STATUS_OK;
}

// The variable's values; throws bnorm::Error when the options leave it out.
const std::vector<float>& Variable(const bnorm::BatchNorm& layer, bnorm_state which) {
  switch (which) {
    case BNORM_STATE_GAMMA:
      return layer.gamma();
    case BNORM_STATE_BETA:
      return layer.beta();
    case BNORM_STATE_MOVING_MEAN:
      return layer.moving_mean();
    case BNORM_STATE_MOVING_VARIANCE:
      return layer.moving_variance();
    case BNORM_STATE_MOVING_STDDEV:
      return layer.moving_stddev();
    case BNORM_STATE_RENORM_MEAN:
      return layer.renorm_mean();
    case BNORM_STATE_RENORM_STDDEV:
      break;
  }
  return layer.renorm_stddev();
}

void SetVariable(bnorm::BatchNorm* layer, bnorm_state which, const std::vector<float>& values) {
  switch (which) {
    case BNORM_STATE_GAMMA:
      return layer->set_gamma(values);
    case BNORM_STATE_BETA:
      return layer->set_beta(values);
    case BNORM_STATE_MOVING_MEAN:
      return layer->set_moving_mean(values);
    case BNORM_STATE_MOVING_VARIANCE:
      return layer->set_moving_variance(values);
    case BNORM_STATE_MOVING_STDDEV:
      return layer->set_moving_stddev(values);
    case BNORM_STATE_RENORM_MEAN:
      return layer->set_renorm_mean(values);
    case BNORM_STATE_RENORM_STDDEV:
      break;
  }
  layer->set_renorm_stddev(values);
}

}  // namespace

extern "C" {

const char* bnorm_version(void) { return BNORM_VERSION_STRING; }

const char* bnorm_status_string(bnorm_status status) {
  switch (static_cast<int>(status)) {
    case BNORM_STATUS_OK:
      return "ok";
    case BNORM_STATUS_NULL_POINTER:
      return "null pointer";
    case BNORM_STATUS_INVALID_ARGUMENT:
      return "invalid argument";
    case BNORM_STATUS_SHAPE_MISMATCH:
      return "shape mismatch";
    case BNORM_STATUS_OVERFLOW:
      return "overflow";
    case BNORM_STATUS_UNSUPPORTED:
      return "unsupported";
    case BNORM_STATUS_OUT_OF_MEMORY:
      return "out of memory";
    case BNORM_STATUS_INTERNAL:
      return "internal error";
  }
  return "unknown status";
}

const char* bnorm_last_error(void) { return t_message; }

bnorm_status bnorm_options_init(bnorm_options* options) {
  static constexpr char kFunction[] = "bnorm_options_init";
  return Guard(kFunction, [&] {
    BNORM_REQUIRE(options);
    const bnorm::Options d;
    bnorm_options o{};
    o.num_axes = d.axis.size();
    std::copy(d.axis.begin(), d.axis.end(), o.axes);
    o.momentum = d.momentum;
    o.epsilon = d.epsilon;
    o.center = d.center;
    o.scale = d.scale;
    o.beta_initializer = d.beta_initializer.value;
    o.gamma_initializer = d.gamma_initializer.value;
    o.moving_mean_initializer = d.moving_mean_initializer.value;
    o.moving_variance_initializer = d.moving_variance_initializer.value;
    o.renorm = d.renorm;
    o.has_rmax = d.renorm_clipping.rmax.has_value();
    o.rmax = d.renorm_clipping.rmax.value_or(0.0f);
    o.has_rmin = d.renorm_clipping.rmin.has_value();
    o.rmin = d.renorm_clipping.rmin.value_or(0.0f);
    o.has_dmax = d.renorm_clipping.dmax.has_value();
    o.dmax = d.renorm_clipping.dmax.value_or(0.0f);
    o.renorm_momentum = d.renorm_momentum;
    o.fused = BNORM_FUSED_AUTO;
    o.trainable = d.trainable;
    o.virtual_batch_size = d.virtual_batch_size.value_or(0);
    *options = o;
    return BNORM_STATUS_OK;
  });
}

bnorm_status bnorm_layer_create(const bnorm_options* options, bnorm_layer** layer) {
  static constexpr char kFunction[] = "bnorm_layer_create";
  return Guard(kFunction, [&] {
    BNORM_REQUIRE(options);
    BNORM_REQUIRE(layer);
    const bnorm_options& c = *options;
    if (c.num_axes > BNORM_MAX_RANK) {
      return Fail(BNORM_STATUS_INVALID_ARGUMENT, kFunction,
                  "options->num_axes is %zu; expected 1..%d", c.num_axes, BNORM_MAX_RANK);
    }
    bnorm::Options o;
    if (!ToFused(c.fused, &o.fused)) {
      return Fail(BNORM_STATUS_INVALID_ARGUMENT, kFunction,
                  "options->fused is %d; expected BNORM_FUSED_AUTO, _TRUE or _FALSE",
                  static_cast<int>(c.fused));
    }
    o.axis.assign(c.axes, c.axes + c.num_axes);
    o.momentum = c.momentum;
    o.epsilon = c.epsilon;
    o.center = c.center != 0;
    o.scale = c.scale != 0;
    o.beta_initializer = bnorm::Initializer::Constant(c.beta_initializer);
    o.gamma_initializer = bnorm::Initializer::Constant(c.gamma_initializer);
    o.moving_mean_initializer = bnorm::Initializer::Constant(c.moving_mean_initializer);
    o.moving_variance_initializer = bnorm::Initializer::Constant(c.moving_variance_initializer);
    o.renorm = c.renorm != 0;
    if (c.has_rmax) o.renorm_clipping.rmax = c.rmax;
    if (c.has_rmin) o.renorm_clipping.rmin = c.rmin;
    if (c.has_dmax) o.renorm_clipping.dmax = c.dmax;
    o.renorm_momentum = c.renorm_momentum;
    o.trainable = c.trainable != 0;
    if (c.virtual_batch_size != 0) o.virtual_batch_size = c.virtual_batch_size;
    *layer = new bnorm_layer(std::move(o));
    return BNORM_STATUS_OK;
  });
}

void bnorm_layer_destroy(bnorm_layer* layer) { delete layer; }

bnorm_status bnorm_layer_build(bnorm_layer* layer, const int64_t* shape, size_t rank) {
  static constexpr char kFunction[] = "bnorm_layer_build";
  return Guard(kFunction, [&] {
    BNORM_REQUIRE(layer);
    Shape s;
    if (bnorm_status st = CheckShape(kFunction, "shape", shape, rank, 1, &s)) return st;
    return BuildLayer(kFunction, layer, s);
  });
}

bnorm_status bnorm_layer_forward(bnorm_layer* layer, const void* x, void* y, bnorm_dtype dtype,
                                 const int64_t* shape, size_t rank, int training) {
  static constexpr char kFunction[] = "bnorm_layer_forward";
  return Guard(kFunction, [&] {
    BNORM_REQUIRE(layer);
    BNORM_REQUIRE(x);
    BNORM_REQUIRE(y);
    bnorm::DType type;
    if (!ToDType(dtype, &type)) {
      return Fail(BNORM_STATUS_INVALID_ARGUMENT, kFunction,
                  "dtype is %d; expected BNORM_DTYPE_F32, _F16 or _BF16", static_cast<int>(dtype));
    }
    if (training < -1 || training > 1) {
      return Fail(BNORM_STATUS_INVALID_ARGUMENT, kFunction,
                  "training is %d; expected -1 (unset), 0 or 1", training);
    }
    Shape s;
    size_t bytes = 0;
    if (bnorm_status st = CheckShape(kFunction, "shape", shape, rank, 1, &s)) return st;
    if (bnorm_status st = CheckData(kFunction, "x", x, s, type, &bytes)) return st;
    if (bnorm_status st = CheckData(kFunction, "y", y, s, type, &bytes)) return st;
    if (bnorm_status st = CheckOverlap(kFunction, x, y, bytes)) return st;
    if (bnorm_status st = BuildLayer(kFunction, layer, s)) return st;
    layer->shape.assign(s.dims, s.dims + s.rank);
    const std::optional<bool> train =
        training < 0 ? std::nullopt : std::optional<bool>(training == 1);
    if (type == bnorm::DType::kFloat32) {
      layer->impl.Forward(static_cast<const float*>(x), static_cast<float*>(y), layer->shape, train,
                          Exec());
    } else {
      layer->impl.Forward(static_cast<const uint16_t*>(x), static_cast<uint16_t*>(y), type,
                          layer->shape, train, Exec());
    }
    return BNORM_STATUS_OK;
  });
}

bnorm_status bnorm_layer_channels(const bnorm_layer* layer, size_t* channels) {
  static constexpr char kFunction[] = "bnorm_layer_channels";
  return Guard(kFunction, [&] {
    BNORM_REQUIRE(layer);
    BNORM_REQUIRE(channels);
    if (bnorm_status st = RequireBuilt(kFunction, *layer)) return st;
    *channels = layer->channels;
    return BNORM_STATUS_OK;
  });
}

bnorm_status bnorm_layer_get_state(const bnorm_layer* layer, bnorm_state which, float* values,
                                   size_t count) {
  static constexpr char kFunction[] = "bnorm_layer_get_state";
  return Guard(kFunction, [&] {
    BNORM_REQUIRE(layer);
    BNORM_REQUIRE(values);
    if (!ValidState(which)) {
      return Fail(BNORM_STATUS_INVALID_ARGUMENT, kFunction,
                  "which is %d; expected a bnorm_state value", static_cast<int>(which));
    }
    if (bnorm_status st = RequireBuilt(kFunction, *layer)) return st;
    const std::vector<float>& variable = Variable(layer->impl, which);
    if (count != variable.size()) {
      return Fail(BNORM_STATUS_SHAPE_MISMATCH, kFunction,
                  "count is %zu; the variable has %zu values (the channel count)", count,
                  variable.size());
    }
    if (count != 0) std::memcpy(values, variable.data(), count * sizeof(float));
    return BNORM_STATUS_OK;
  });
}

bnorm_status bnorm_layer_set_state(bnorm_layer* layer, bnorm_state which, const float* values,
                                   size_t count) {
  static constexpr char kFunction[] = "bnorm_layer_set_state";
  return Guard(kFunction, [&] {
    BNORM_REQUIRE(layer);
    BNORM_REQUIRE(values);
    if (!ValidState(which)) {
      return Fail(BNORM_STATUS_INVALID_ARGUMENT, kFunction,
                  "which is %d; expected a bnorm_state value", static_cast<int>(which));
    }
    if (bnorm_status st = RequireBuilt(kFunction, *layer)) return st;
    const size_t size = Variable(layer->impl, which).size();
    if (count != size) {
      return Fail(BNORM_STATUS_SHAPE_MISMATCH, kFunction,
                  "count is %zu; the variable has %zu values (the channel count)", count, size);
    }
    SetVariable(&layer->impl, which, std::vector<float>(values, values + count));
    return BNORM_STATUS_OK;
  });
}

bnorm_status bnorm_moments(const void* x, bnorm_dtype dtype, const int64_t* shape, size_t rank,
                           const int* axes, size_t num_axes, double* mean, double* variance,
                           size_t channels) {
  static constexpr char kFunction[] = "bnorm_moments";
  return Guard(kFunction, [&] {
    BNORM_REQUIRE(x);
    BNORM_REQUIRE(mean);
    BNORM_REQUIRE(variance);
    bnorm::DType type;
    if (!ToDType(dtype, &type)) {
      return Fail(BNORM_STATUS_INVALID_ARGUMENT, kFunction,
                  "dtype is %d; expected BNORM_DTYPE_F32, _F16 or _BF16", static_cast<int>(dtype));
    }
    Shape s;
    bnorm::Geometry g;
    size_t bytes = 0;
    if (bnorm_status st = CheckShape(kFunction, "shape", shape, rank, 1, &s)) return st;
    if (bnorm_status st = CheckData(kFunction, "x", x, s, type, &bytes)) return st;
    if (bnorm_status st = PlanAxes(kFunction, s, axes, num_axes, &g)) return st;
    if (bnorm_status st = CheckChannels(kFunction, channels, g, s)) return st;
    if (channels == 0) return BNORM_STATUS_OK;
    if (g.reduced() == 0) {
      char text[256];
      return Fail(BNORM_STATUS_INVALID_ARGUMENT, kFunction,
                  "shape %s has no values per channel; moments need at least one",
                  Format(s.dims, s.rank, text));
    }
    bnorm::BatchMoments(x, type, g, mean, variance, Exec());
    return BNORM_STATUS_OK;
  });
}

bnorm_status bnorm_fold(const float* gamma, const float* beta, const float* moving_mean,
                        const float* moving_variance, size_t channels, float epsilon, float* scale,
                        float* shift) {
  static constexpr char kFunction[] = "bnorm_fold";
  return Guard(kFunction, [&] {
    BNORM_REQUIRE(moving_mean);
    BNORM_REQUIRE(moving_variance);
    BNORM_REQUIRE(scale);
    BNORM_REQUIRE(shift);
    bnorm::Fold(gamma, beta, moving_mean, moving_variance, channels, epsilon, scale, shift);
    return BNORM_STATUS_OK;
  });
}

bnorm_status bnorm_normalize(const void* x, void* y, bnorm_dtype dtype, const int64_t* shape,
                             size_t rank, const int* axes, size_t num_axes, const float* mean,
                             const float* scale, const float* shift, size_t channels,
                             bnorm_activation activation) {
  static constexpr char kFunction[] = "bnorm_normalize";
  return Guard(kFunction, [&] {
    BNORM_REQUIRE(x);
    BNORM_REQUIRE(y);
    BNORM_REQUIRE(mean);
    BNORM_REQUIRE(scale);
    BNORM_REQUIRE(shift);
    bnorm::DType type;
    if (!ToDType(dtype, &type)) {
      return Fail(BNORM_STATUS_INVALID_ARGUMENT, kFunction,
                  "dtype is %d; expected BNORM_DTYPE_F32, _F16 or _BF16", static_cast<int>(dtype));
    }
    bnorm::NormalizeParams params;
    if (!ToActivation(activation, &params.activation)) {
      return Fail(BNORM_STATUS_INVALID_ARGUMENT, kFunction,
                  "activation is %d; expected BNORM_ACTIVATION_NONE, _RELU or _RELU6",
                  static_cast<int>(activation));
    }
    Shape s;
    bnorm::Geometry g;
    size_t bytes = 0;
    if (bnorm_status st = CheckShape(kFunction, "shape", shape, rank, 1, &s)) return st;
    if (bnorm_status st = CheckData(kFunction, "x", x, s, type, &bytes)) return st;
    if (bnorm_status st = CheckData(kFunction, "y", y, s, type, &bytes)) return st;
    if (bnorm_status st = CheckOverlap(kFunction, x, y, bytes)) return st;
    if (bnorm_status st = PlanAxes(kFunction, s, axes, num_axes, &g)) return st;
    if (bnorm_status st = CheckChannels(kFunction, channels, g, s)) return st;
    if (s.elements == 0) return BNORM_STATUS_OK;
    params.mean_hi = mean;
    params.scale = scale;
    params.shift = shift;
    bnorm::Normalize(x, y, type, g, params, Exec());
    return BNORM_STATUS_OK;
  });
}

bnorm_status bnorm_fold_into_weights(float* weights, const int64_t* weight_shape, size_t rank,
                                     bnorm_weight_layout layout, float* bias, const float* gamma,
                                     const float* beta, const float* moving_mean,
                                     const float* moving_variance, size_t channels, float epsilon) {
  static constexpr char kFunction[] = "bnorm_fold_into_weights";
  return Guard(kFunction, [&] {
    BNORM_REQUIRE(weights);
    BNORM_REQUIRE(bias);
    BNORM_REQUIRE(moving_mean);
    BNORM_REQUIRE(moving_variance);
    bnorm::WeightLayout cpp_layout;
    if (!ToLayout(layout, &cpp_layout)) {
      return Fail(BNORM_STATUS_INVALID_ARGUMENT, kFunction,
                  "layout is %d; expected BNORM_LAYOUT_OUTPUT_FIRST or _OUTPUT_LAST",
                  static_cast<int>(layout));
    }
    Shape s;
    if (bnorm_status st = CheckShape(kFunction, "weight_shape", weight_shape, rank, 2, &s)) {
      return st;
    }
    const size_t out_axis = cpp_layout == bnorm::WeightLayout::kOutputFirst ? 0 : rank - 1;
    if (static_cast<uint64_t>(s.dims[out_axis]) != channels) {
      char text[256];
      return Fail(BNORM_STATUS_SHAPE_MISMATCH, kFunction,
                  "weight_shape %s has %" PRId64
                  " output channels (axis %zu); expected %zu "
                  "(channels)",
                  Format(s.dims, s.rank, text), s.dims[out_axis], out_axis, channels);
    }
    bnorm::FoldIntoWeights(weights, std::vector<int64_t>(s.dims, s.dims + s.rank), cpp_layout, bias,
                           gamma, beta, moving_mean, moving_variance, channels, epsilon);
    return BNORM_STATUS_OK;
  });
}

size_t bnorm_target_count(void) {
  try {
    return Targets().supported.size();
  } catch (...) {
    Fail(BNORM_STATUS_INTERNAL, "bnorm_target_count", "could not list the targets");
    return 0;
  }
}

const char* bnorm_target_name(size_t index) {
  try {
    const std::vector<std::string>& names = Targets().supported;
    return index < names.size() ? names[index].c_str() : nullptr;
  } catch (...) {
    Fail(BNORM_STATUS_INTERNAL, "bnorm_target_name", "could not list the targets");
    return nullptr;
  }
}

bnorm_status bnorm_force_target(const char* name) {
  static constexpr char kFunction[] = "bnorm_force_target";
  return Guard(kFunction, [&] {
    BNORM_REQUIRE(name);
    try {
      bnorm::ForceTarget(name);
    } catch (const bnorm::Error& e) {
      return Fail(IsCompiledTarget(name) ? BNORM_STATUS_UNSUPPORTED : BNORM_STATUS_INVALID_ARGUMENT,
                  kFunction, "%s", e.what());
    }
    return BNORM_STATUS_OK;
  });
}

bnorm_status bnorm_reset_target(void) {
  return Guard("bnorm_reset_target", [] {
    bnorm::ResetTarget();
    return BNORM_STATUS_OK;
  });
}

const char* bnorm_active_target(void) {
  try {
    const std::string active = bnorm::ActiveTarget();
    for (const std::string& name : Targets().compiled) {
      if (name == active) return name.c_str();
    }
  } catch (...) {
    Fail(BNORM_STATUS_INTERNAL, "bnorm_active_target", "could not ask the dispatch table");
  }
  return "unknown";
}

bnorm_status bnorm_set_max_threads(int n) {
  static constexpr char kFunction[] = "bnorm_set_max_threads";
  return Guard(kFunction, [&] {
    if (n < 0) {
      return Fail(BNORM_STATUS_INVALID_ARGUMENT, kFunction,
                  "n is %d; expected 0 (all cores), 1 (serial) or a thread count", n);
    }
    std::unique_ptr<tbb::task_arena> arena;
    bnorm::Execution exec = bnorm::Execution::Parallel();
    if (n == 1) {
      exec = bnorm::Execution::Serial();
    } else if (n > 1) {
      arena = std::make_unique<tbb::task_arena>(n);
      arena->initialize();
      exec = bnorm::Execution::Parallel(arena.get());
    }
    g_threads.exec = exec;
    g_threads.arena = std::move(arena);
    return BNORM_STATUS_OK;
  });
}

}  // extern "C"
