// SPDX-License-Identifier: Apache-2.0
// The C ABI of the one-call training operations: bnorm_training_normalize
// over bnorm::TrainingNormalize (bnorm/kernels.hpp) and bnorm_training_backward
// over bnorm::TrainingBackward (bnorm/backward.hpp). The C side checks what is
// its own (null pointers, the dtype, the rank, the channel count against the
// shape); the C++ calls check the rest before writing anything. Nothing here
// allocates beyond what the C++ calls do.
#include <cstdint>

#include "bnorm/backward.hpp"
#include "bnorm/bnorm.h"
#include "bnorm/kernels.hpp"
#include "src/c_api/common.h"

namespace {

using bnorm::capi::CheckChannels;
using bnorm::capi::CheckRank;
using bnorm::capi::Exec;
using bnorm::capi::Guard;
using bnorm::capi::PlanTensor;
using bnorm::capi::ReadDType;

// What both calls read besides their pointers: the element type and the
// geometry of shape + axes with its channel count. (kFunction is the caller's
// name, as BNORM_REQUIRE expects.)
bnorm_status ReadTrainingTensors(const char* kFunction, bnorm_dtype dtype, const int64_t* shape,
                                 size_t rank, const int* axes, size_t num_axes, size_t channels,
                                 bnorm::DType* type, bnorm::Geometry* g) {
  if (bnorm_status st = ReadDType(kFunction, dtype, type)) return st;
  if (bnorm_status st = CheckRank(kFunction, "shape", shape, rank, 1)) return st;
  BNORM_REQUIRE(axes);
  *g = PlanTensor(shape, rank, axes, num_axes, *type);
  return CheckChannels(kFunction, channels, *g, shape, rank);
}

}  // namespace

extern "C" {

bnorm_status bnorm_training_normalize(const void* x, void* y, bnorm_dtype dtype,
                                      const int64_t* shape, size_t rank, const int* axes,
                                      size_t num_axes, const float* gamma, const float* beta,
                                      double epsilon, double* mean, double* variance,
                                      size_t channels) {
  static constexpr char kFunction[] = "bnorm_training_normalize";
  return Guard(kFunction, [&] {
    BNORM_REQUIRE(x);
    BNORM_REQUIRE(y);
    BNORM_REQUIRE(mean);
    BNORM_REQUIRE(variance);
    bnorm::DType type;
    bnorm::Geometry g;
    if (bnorm_status st = ReadTrainingTensors(kFunction, dtype, shape, rank, axes, num_axes,
                                              channels, &type, &g)) {
      return st;
    }
    bnorm::TrainingNormalize(x, y, type, g, gamma, beta, epsilon, mean, variance, Exec());
    return BNORM_STATUS_OK;
  });
}

bnorm_status bnorm_training_backward(const void* x, const void* dy, void* dx, bnorm_dtype dtype,
                                     const int64_t* shape, size_t rank, const int* axes,
                                     size_t num_axes, const float* mean_hi, const float* mean_lo,
                                     const double* variance, const float* gamma, double epsilon,
                                     double* sum_dy, double* sum_dy_xmu, size_t channels) {
  static constexpr char kFunction[] = "bnorm_training_backward";
  return Guard(kFunction, [&] {
    BNORM_REQUIRE(x);
    BNORM_REQUIRE(dy);
    BNORM_REQUIRE(dx);
    BNORM_REQUIRE(mean_hi);
    BNORM_REQUIRE(mean_lo);
    BNORM_REQUIRE(variance);
    BNORM_REQUIRE(sum_dy);
    BNORM_REQUIRE(sum_dy_xmu);
    bnorm::DType type;
    bnorm::Geometry g;
    if (bnorm_status st = ReadTrainingTensors(kFunction, dtype, shape, rank, axes, num_axes,
                                              channels, &type, &g)) {
      return st;
    }
    bnorm::TrainingBackward(x, dy, dx, type, g, mean_hi, mean_lo, variance, gamma, epsilon, sum_dy,
                            sum_dy_xmu, Exec());
    return BNORM_STATUS_OK;
  });
}

}  // extern "C"
