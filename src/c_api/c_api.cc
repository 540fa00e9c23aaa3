// SPDX-License-Identifier: Apache-2.0
// The C ABI over the C++ API. Each function checks what only the C ABI has
// (null pointers, enum values given as ints, ranks up to BNORM_MAX_RANK, the
// `channels` and `count` arguments), converts the arguments to the C++ types
// and calls the C++ function inside Guard, which turns bnorm::Error's code
// into the status and every other exception into OUT_OF_MEMORY or INTERNAL.
// The C++ checks allocate nothing on success, so neither do the normalize and
// inference paths. Guard and the shared checks are common.h; the backward's
// entry points are c_api_backward.cc.
#include <oneapi/tbb/task_arena.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bnorm/backward.hpp"
#include "bnorm/batch_norm.hpp"
#include "bnorm/bnorm.h"
#include "bnorm/error.hpp"
#include "bnorm/execution.hpp"
#include "bnorm/fold.hpp"
#include "bnorm/geometry.hpp"
#include "bnorm/kernels.hpp"
#include "bnorm/targets.hpp"
#include "src/c_api/common.h"
#include "src/plan/checks.h"
#include "src/plan/format.h"

namespace {

using bnorm::capi::CheckChannels;
using bnorm::capi::CheckRank;
using bnorm::capi::Exec;
using bnorm::capi::Fail;
using bnorm::capi::g_threads;
using bnorm::capi::Guard;
using bnorm::capi::PlanTensor;
using bnorm::capi::ReadActivation;
using bnorm::capi::ReadDType;

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

// ---- Enumerations -----------------------------------------------------------

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

bnorm_status RequireBuilt(const char* function, const bnorm_layer& layer) {
  if (!layer.impl.built()) {
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

// What bnorm_layer_get_state and _set_state check before touching a variable:
// a bnorm_state value, a built layer, and `count` equal to the variable's size.
bnorm_status CheckStateAccess(const char* function, const bnorm_layer& layer, bnorm_state which,
                              size_t count) {
  if (!ValidState(which)) {
    return Fail(BNORM_STATUS_INVALID_ARGUMENT, function,
                "which is %d; expected a bnorm_state value", static_cast<int>(which));
  }
  if (bnorm_status st = RequireBuilt(function, layer)) return st;
  const size_t size = Variable(layer.impl, which).size();
  if (count != size) {
    return Fail(BNORM_STATUS_SHAPE_MISMATCH, function,
                "count is %zu; the variable has %zu values (the channel count)", count, size);
  }
  return BNORM_STATUS_OK;
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

const char* bnorm_last_error(void) { return bnorm::capi::LastError(); }

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
    o.synchronized = d.synchronized;
    o.synchronized_gradients = d.synchronized_gradients;
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
    o.synchronized = c.synchronized != 0;
    o.synchronized_gradients = c.synchronized_gradients != 0;
    *layer = new bnorm_layer(std::move(o));
    return BNORM_STATUS_OK;
  });
}

void bnorm_layer_destroy(bnorm_layer* layer) { delete layer; }

bnorm_status bnorm_layer_build(bnorm_layer* layer, const int64_t* shape, size_t rank) {
  static constexpr char kFunction[] = "bnorm_layer_build";
  return Guard(kFunction, [&] {
    BNORM_REQUIRE(layer);
    if (bnorm_status st = CheckRank(kFunction, "shape", shape, rank, 1)) return st;
    layer->shape.assign(shape, shape + rank);
    layer->impl.Build(layer->shape);
    return BNORM_STATUS_OK;
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
    if (bnorm_status st = ReadDType(kFunction, dtype, &type)) return st;
    if (training < -1 || training > 1) {
      return Fail(BNORM_STATUS_INVALID_ARGUMENT, kFunction,
                  "training is %d; expected -1 (unset), 0 or 1", training);
    }
    if (bnorm_status st = CheckRank(kFunction, "shape", shape, rank, 1)) return st;
    layer->shape.assign(shape, shape + rank);
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
    size_t count = 1;
    for (int64_t size : layer->impl.parameter_shape()) count *= static_cast<size_t>(size);
    *channels = count;
    return BNORM_STATUS_OK;
  });
}

bnorm_status bnorm_layer_get_state(const bnorm_layer* layer, bnorm_state which, float* values,
                                   size_t count) {
  static constexpr char kFunction[] = "bnorm_layer_get_state";
  return Guard(kFunction, [&] {
    BNORM_REQUIRE(layer);
    BNORM_REQUIRE(values);
    if (bnorm_status st = CheckStateAccess(kFunction, *layer, which, count)) return st;
    const std::vector<float>& variable = Variable(layer->impl, which);
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
    if (bnorm_status st = CheckStateAccess(kFunction, *layer, which, count)) return st;
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
    if (bnorm_status st = ReadDType(kFunction, dtype, &type)) return st;
    if (bnorm_status st = CheckRank(kFunction, "shape", shape, rank, 1)) return st;
    BNORM_REQUIRE(axes);
    const bnorm::Geometry g = PlanTensor(shape, rank, axes, num_axes, type);
    if (bnorm_status st = CheckChannels(kFunction, channels, g, shape, rank)) return st;
    // No channels: nothing to compute, nothing to write.
    if (channels == 0) return BNORM_STATUS_OK;
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

namespace {

// bnorm_normalize and bnorm_normalize_add: one call, without or with the residual.
bnorm_status NormalizeCall(const char* function, bool with_residual, const void* x,
                           const void* residual, void* y, bnorm_dtype dtype, const int64_t* shape,
                           size_t rank, const int* axes, size_t num_axes, const float* mean,
                           const float* scale, const float* shift, size_t channels,
                           bnorm_activation activation) {
  return Guard(function, [&] {
    const char* kFunction = function;
    BNORM_REQUIRE(x);
    if (with_residual) BNORM_REQUIRE(residual);
    BNORM_REQUIRE(y);
    BNORM_REQUIRE(mean);
    BNORM_REQUIRE(scale);
    BNORM_REQUIRE(shift);
    bnorm::DType type;
    if (bnorm_status st = ReadDType(kFunction, dtype, &type)) return st;
    bnorm::NormalizeParams params;
    if (bnorm_status st = ReadActivation(kFunction, activation, &params.activation)) return st;
    if (bnorm_status st = CheckRank(kFunction, "shape", shape, rank, 1)) return st;
    BNORM_REQUIRE(axes);
    const bnorm::Geometry g = PlanTensor(shape, rank, axes, num_axes, type);
    if (bnorm_status st = CheckChannels(kFunction, channels, g, shape, rank)) return st;
    params.mean_hi = mean;
    params.scale = scale;
    params.shift = shift;
    params.residual = residual;
    bnorm::Normalize(x, y, type, g, params, Exec());
    return BNORM_STATUS_OK;
  });
}

}  // namespace

bnorm_status bnorm_normalize(const void* x, void* y, bnorm_dtype dtype, const int64_t* shape,
                             size_t rank, const int* axes, size_t num_axes, const float* mean,
                             const float* scale, const float* shift, size_t channels,
                             bnorm_activation activation) {
  return NormalizeCall("bnorm_normalize", false, x, nullptr, y, dtype, shape, rank, axes, num_axes,
                       mean, scale, shift, channels, activation);
}

bnorm_status bnorm_normalize_add(const void* x, const void* residual, void* y, bnorm_dtype dtype,
                                 const int64_t* shape, size_t rank, const int* axes,
                                 size_t num_axes, const float* mean, const float* scale,
                                 const float* shift, size_t channels, bnorm_activation activation) {
  return NormalizeCall("bnorm_normalize_add", true, x, residual, y, dtype, shape, rank, axes,
                       num_axes, mean, scale, shift, channels, activation);
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
    if (bnorm_status st = CheckRank(kFunction, "weight_shape", weight_shape, rank, 2)) return st;
    bnorm::FoldIntoWeights(weights, std::vector<int64_t>(weight_shape, weight_shape + rank),
                           cpp_layout, bias, gamma, beta, moving_mean, moving_variance, channels,
                           epsilon);
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
    bnorm::ForceTarget(name);
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
