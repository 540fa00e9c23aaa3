// SPDX-License-Identifier: Apache-2.0
// The C ABI's shared machinery (common.h): the error text, the enum and shape
// checks every entry point makes, and the execution bnorm_set_max_threads chose.
#include "src/c_api/common.h"

#include <cstdarg>
#include <cstdio>

#include "src/plan/checks.h"
#include "src/plan/format.h"

namespace bnorm {
namespace capi {

// ---- Error reporting --------------------------------------------------------

namespace {
// A fixed buffer, not a std::string: reporting an error must not itself fail
// or allocate.
constexpr size_t kMessageSize = 1024;
thread_local char t_message[kMessageSize] = "";
}  // namespace

bnorm_status Fail(bnorm_status status, const char* function, const char* format, ...) {
  const int prefix = std::snprintf(t_message, kMessageSize, "%s: ", function);
  va_list args;
  va_start(args, format);
  std::vsnprintf(t_message + prefix, kMessageSize - static_cast<size_t>(prefix), format, args);
  va_end(args);
  return status;
}

const char* LastError() { return t_message; }

// ---- Enumerations -----------------------------------------------------------

// Enum arguments come from C, where any int converts to them: read them as
// ints and accept only the listed values.
bnorm_status ReadDType(const char* function, bnorm_dtype dtype, bnorm::DType* out) {
  switch (static_cast<int>(dtype)) {
    case BNORM_DTYPE_F32:
      *out = bnorm::DType::kFloat32;
      return BNORM_STATUS_OK;
    case BNORM_DTYPE_F16:
      *out = bnorm::DType::kFloat16;
      return BNORM_STATUS_OK;
    case BNORM_DTYPE_BF16:
      *out = bnorm::DType::kBFloat16;
      return BNORM_STATUS_OK;
  }
  return Fail(BNORM_STATUS_INVALID_ARGUMENT, function,
              "dtype is %d; expected BNORM_DTYPE_F32, _F16 or _BF16", static_cast<int>(dtype));
}

bnorm_status ReadActivation(const char* function, bnorm_activation activation,
                            bnorm::Activation* out) {
  switch (static_cast<int>(activation)) {
    case BNORM_ACTIVATION_NONE:
      *out = bnorm::Activation::kNone;
      return BNORM_STATUS_OK;
    case BNORM_ACTIVATION_RELU:
      *out = bnorm::Activation::kRelu;
      return BNORM_STATUS_OK;
    case BNORM_ACTIVATION_RELU6:
      *out = bnorm::Activation::kRelu6;
      return BNORM_STATUS_OK;
  }
  return Fail(BNORM_STATUS_INVALID_ARGUMENT, function,
              "activation is %d; expected BNORM_ACTIVATION_NONE, _RELU or _RELU6",
              static_cast<int>(activation));
}

// ---- Shapes -----------------------------------------------------------------

// The C ABI's own rule for a shape argument: non-null with a rank in
// [min_rank, BNORM_MAX_RANK]. Sizes and counts are the C++ API's checks.
bnorm_status CheckRank(const char* function, const char* name, const int64_t* shape, size_t rank,
                       size_t min_rank) {
  if (shape == nullptr) return Fail(BNORM_STATUS_NULL_POINTER, function, "%s is null", name);
  if (rank < min_rank || rank > BNORM_MAX_RANK) {
    return Fail(BNORM_STATUS_INVALID_ARGUMENT, function, "rank is %zu; expected %zu..%d", rank,
                min_rank, BNORM_MAX_RANK);
  }
  return BNORM_STATUS_OK;
}

// The planned geometry of a low-level call's x and its byte size.
bnorm::Geometry PlanTensor(const int64_t* shape, size_t rank, const int* axes, size_t num_axes,
                           bnorm::DType type) {
  const bnorm::Geometry g = bnorm::PlanGeometry(shape, rank, axes, num_axes);
  bnorm::TensorBytes("shape", shape, rank, g.elements(), type);
  return g;
}

bnorm_status CheckChannels(const char* function, size_t channels, const bnorm::Geometry& g,
                           const int64_t* shape, size_t rank) {
  if (channels != g.channels) {
    return Fail(BNORM_STATUS_SHAPE_MISMATCH, function,
                "channels is %zu; the feature axes of shape %s hold %zu", channels,
                bnorm::FormatList(shape, rank).c_str(), g.channels);
  }
  return BNORM_STATUS_OK;
}

// ---- Threads ----------------------------------------------------------------

// Constant-initialized.
Threads g_threads;

const bnorm::Execution& Exec() { return g_threads.exec; }

}  // namespace capi
}  // namespace bnorm
