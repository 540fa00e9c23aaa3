// SPDX-License-Identifier: Apache-2.0
// The C ABI of the backward pass: the layer's bnorm_layer_backward (and its
// in-place variant from the output) and its gradients, and the engine passes bnorm_backward_reduce
// and bnorm_backward_data over bnorm/backward.hpp, with common.h's checks and statuses. Nothing
// here allocates beyond what the C++ calls do.
#include <cstdint>
#include <cstring>
#include <vector>

#include "bnorm/backward.hpp"
#include "bnorm/batch_norm.hpp"
#include "bnorm/bnorm.h"
#include "src/c_api/common.h"

namespace {

using bnorm::capi::CheckChannels;
using bnorm::capi::CheckRank;
using bnorm::capi::Exec;
using bnorm::capi::Fail;
using bnorm::capi::Guard;
using bnorm::capi::PlanTensor;
using bnorm::capi::ReadActivation;
using bnorm::capi::ReadDType;

// The bnorm_gradient values.
bool ValidGradient(bnorm_gradient which) {
  const int v = static_cast<int>(which);
  return v == BNORM_GRADIENT_GAMMA || v == BNORM_GRADIENT_BETA;
}

// Both layer backwards: `x` is the forward's input, or with `from_output` its
// output y. (kFunction is the caller's name, as BNORM_REQUIRE expects.)
bnorm_status LayerBackward(const char* kFunction, bnorm_layer* layer, const void* x, const void* dy,
                           void* dx, bnorm_dtype dtype, const int64_t* shape, size_t rank,
                           bool from_output) {
  return Guard(kFunction, [&] {
    BNORM_REQUIRE(layer);
    if (x == nullptr) {
      return Fail(BNORM_STATUS_NULL_POINTER, kFunction, "%s is null", from_output ? "y" : "x");
    }
    BNORM_REQUIRE(dy);
    BNORM_REQUIRE(dx);
    bnorm::DType type;
    if (bnorm_status st = ReadDType(kFunction, dtype, &type)) return st;
    if (bnorm_status st = CheckRank(kFunction, "shape", shape, rank, 1)) return st;
    layer->shape.assign(shape, shape + rank);
    bnorm::BatchNorm& impl = layer->impl;
    if (type == bnorm::DType::kFloat32) {
      const float* in = static_cast<const float*>(x);
      const float* grad = static_cast<const float*>(dy);
      float* out = static_cast<float*>(dx);
      if (from_output) {
        impl.BackwardFromOutput(in, grad, out, layer->shape, Exec());
      } else {
        impl.Backward(in, grad, out, layer->shape, Exec());
      }
    } else {
      const uint16_t* in = static_cast<const uint16_t*>(x);
      const uint16_t* grad = static_cast<const uint16_t*>(dy);
      uint16_t* out = static_cast<uint16_t*>(dx);
      if (from_output) {
        impl.BackwardFromOutput(in, grad, out, type, layer->shape, Exec());
      } else {
        impl.Backward(in, grad, out, type, layer->shape, Exec());
      }
    }
    return BNORM_STATUS_OK;
  });
}

// What bnorm_backward_reduce and bnorm_backward_data both read besides their
// pointers: the element type, the activation (whose mask needs y), and the
// geometry of shape + axes with its channel count.
bnorm_status ReadBackwardTensors(const char* kFunction, bnorm_dtype dtype,
                                 bnorm_activation activation, const void* y, const int64_t* shape,
                                 size_t rank, const int* axes, size_t num_axes, size_t channels,
                                 bnorm::DType* type, bnorm::Activation* act, bnorm::Geometry* g) {
  if (bnorm_status st = ReadDType(kFunction, dtype, type)) return st;
  if (bnorm_status st = ReadActivation(kFunction, activation, act)) return st;
  if (*act != bnorm::Activation::kNone) BNORM_REQUIRE(y);
  if (bnorm_status st = CheckRank(kFunction, "shape", shape, rank, 1)) return st;
  BNORM_REQUIRE(axes);
  *g = PlanTensor(shape, rank, axes, num_axes, *type);
  return CheckChannels(kFunction, channels, *g, shape, rank);
}

}  // namespace

extern "C" {

bnorm_status bnorm_layer_backward(bnorm_layer* layer, const void* x, const void* dy, void* dx,
                                  bnorm_dtype dtype, const int64_t* shape, size_t rank) {
  return LayerBackward("bnorm_layer_backward", layer, x, dy, dx, dtype, shape, rank, false);
}

bnorm_status bnorm_layer_backward_from_output(bnorm_layer* layer, const void* y, const void* dy,
                                              void* dx, bnorm_dtype dtype, const int64_t* shape,
                                              size_t rank) {
  return LayerBackward("bnorm_layer_backward_from_output", layer, y, dy, dx, dtype, shape, rank,
                       true);
}

bnorm_status bnorm_layer_get_gradient(const bnorm_layer* layer, bnorm_gradient which, float* values,
                                      size_t count) {
  static constexpr char kFunction[] = "bnorm_layer_get_gradient";
  return Guard(kFunction, [&] {
    BNORM_REQUIRE(layer);
    BNORM_REQUIRE(values);
    if (!ValidGradient(which)) {
      return Fail(BNORM_STATUS_INVALID_ARGUMENT, kFunction,
                  "which is %d; expected BNORM_GRADIENT_GAMMA or _BETA", static_cast<int>(which));
    }
    const bool gamma = which == BNORM_GRADIENT_GAMMA;
    const std::vector<float>& gradient =
        gamma ? layer->impl.gradient_gamma() : layer->impl.gradient_beta();
    if (gradient.empty()) {
      const bnorm::Options& o = layer->impl.options();
      if (gamma ? !o.scale : !o.center) {
        return Fail(BNORM_STATUS_INVALID_ARGUMENT, kFunction, "%s",
                    gamma ? "the gamma gradient does not exist with scale=0"
                          : "the beta gradient does not exist with center=0");
      }
      return Fail(BNORM_STATUS_INVALID_ARGUMENT, kFunction,
                  "no gradient yet: call bnorm_layer_backward first");
    }
    if (count != gradient.size()) {
      return Fail(BNORM_STATUS_SHAPE_MISMATCH, kFunction,
                  "count is %zu; the gradient has %zu values (the channel count)", count,
                  gradient.size());
    }
    std::memcpy(values, gradient.data(), count * sizeof(float));
    return BNORM_STATUS_OK;
  });
}

bnorm_status bnorm_backward_reduce(const void* x, const void* dy, const void* y, bnorm_dtype dtype,
                                   const int64_t* shape, size_t rank, const int* axes,
                                   size_t num_axes, const float* mean_hi, const float* mean_lo,
                                   double* sum_dy, double* sum_dy_xmu, size_t channels,
                                   bnorm_activation activation) {
  static constexpr char kFunction[] = "bnorm_backward_reduce";
  return Guard(kFunction, [&] {
    BNORM_REQUIRE(x);
    BNORM_REQUIRE(dy);
    BNORM_REQUIRE(mean_hi);
    BNORM_REQUIRE(mean_lo);
    BNORM_REQUIRE(sum_dy);
    BNORM_REQUIRE(sum_dy_xmu);
    bnorm::DType type;
    bnorm::BackwardReduceParams params;
    bnorm::Geometry g;
    if (bnorm_status st = ReadBackwardTensors(kFunction, dtype, activation, y, shape, rank, axes,
                                              num_axes, channels, &type, &params.activation, &g)) {
      return st;
    }
    params.mean_hi = mean_hi;
    params.mean_lo = mean_lo;
    params.y = y;
    bnorm::BackwardReduce(x, dy, type, g, params, sum_dy, sum_dy_xmu, Exec());
    return BNORM_STATUS_OK;
  });
}

bnorm_status bnorm_backward_data(const void* x, const void* dy, const void* y, void* dx,
                                 bnorm_dtype dtype, const int64_t* shape, size_t rank,
                                 const int* axes, size_t num_axes, const float* mean_hi,
                                 const float* mean_lo, const float* k, const float* a,
                                 const float* b, size_t channels, bnorm_activation activation) {
  static constexpr char kFunction[] = "bnorm_backward_data";
  return Guard(kFunction, [&] {
    BNORM_REQUIRE(x);
    BNORM_REQUIRE(dy);
    BNORM_REQUIRE(dx);
    BNORM_REQUIRE(mean_hi);
    BNORM_REQUIRE(mean_lo);
    BNORM_REQUIRE(k);
    BNORM_REQUIRE(a);
    BNORM_REQUIRE(b);
    bnorm::DType type;
    bnorm::BackwardDataParams params;
    bnorm::Geometry g;
    if (bnorm_status st = ReadBackwardTensors(kFunction, dtype, activation, y, shape, rank, axes,
                                              num_axes, channels, &type, &params.activation, &g)) {
      return st;
    }
    params.mean_hi = mean_hi;
    params.mean_lo = mean_lo;
    params.k = k;
    params.a = a;
    params.b = b;
    params.y = y;
    bnorm::BackwardData(x, dy, dx, type, g, params, Exec());
    return BNORM_STATUS_OK;
  });
}

}  // extern "C"
