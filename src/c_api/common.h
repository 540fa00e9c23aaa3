// SPDX-License-Identifier: Apache-2.0
// What the C ABI's source files share: Fail and Guard (a failed check or an
// exception becomes a status and the text of bnorm_last_error), the checks of
// enum, rank and channel arguments, the execution every call uses, and the
// layer handle.
#ifndef BNORM_SRC_C_API_COMMON_H_
#define BNORM_SRC_C_API_COMMON_H_

#include <oneapi/tbb/task_arena.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <new>
#include <utility>
#include <vector>

#include "bnorm/batch_norm.hpp"
#include "bnorm/bnorm.h"
#include "bnorm/error.hpp"
#include "bnorm/execution.hpp"
#include "bnorm/geometry.hpp"
#include "src/c_api/status.h"

namespace bnorm {
namespace capi {

// ---- Error reporting --------------------------------------------------------

// Writes "function: message" into this thread's fixed buffer (reporting an
// error must not itself fail or allocate) and returns `status`.
__attribute__((format(printf, 3, 4))) bnorm_status Fail(bnorm_status status, const char* function,
                                                        const char* format, ...);
// The message of this thread's last failed call.
const char* LastError();

// Runs body() and answers every exception with a status: Error is the
// C++ API's validation (its code is the status, its message names the
// argument), bad_alloc is memory, anything else is a bug.
template <class Body>
bnorm_status Guard(const char* function, const Body& body) noexcept {
  try {
    return body();
  } catch (const Error& e) {
    return Fail(StatusOf(e.code()), function, "%s", e.what());
  } catch (const std::bad_alloc&) {
    return Fail(BNORM_STATUS_OUT_OF_MEMORY, function, "out of memory");
  } catch (const std::exception& e) {
    return Fail(BNORM_STATUS_INTERNAL, function, "internal error: %s", e.what());
  } catch (...) {
    return Fail(BNORM_STATUS_INTERNAL, function, "internal error: an unknown exception");
  }
}

#define BNORM_REQUIRE(pointer)                                                                  \
  do {                                                                                          \
    if ((pointer) == nullptr) {                                                                 \
      return ::bnorm::capi::Fail(BNORM_STATUS_NULL_POINTER, kFunction, "%s is null", #pointer); \
    }                                                                                           \
  } while (false)

// ---- Arguments --------------------------------------------------------------

// Enum arguments come from C, where any int converts to them: read them as
// ints and accept only the listed values; anything else fails with
// INVALID_ARGUMENT naming the argument.
bnorm_status ReadDType(const char* function, bnorm_dtype dtype, DType* out);
bnorm_status ReadActivation(const char* function, bnorm_activation activation, Activation* out);

// The C ABI's own rule for a shape argument: non-null with a rank in
// [min_rank, BNORM_MAX_RANK]. Sizes and counts are the C++ API's checks.
bnorm_status CheckRank(const char* function, const char* name, const int64_t* shape, size_t rank,
                       size_t min_rank);
// The planned geometry of a low-level call's x and its byte size.
Geometry PlanTensor(const int64_t* shape, size_t rank, const int* axes, size_t num_axes,
                    DType type);
bnorm_status CheckChannels(const char* function, size_t channels, const Geometry& g,
                           const int64_t* shape, size_t rank);

// ---- Threads ----------------------------------------------------------------

// The execution every call uses (bnorm_set_max_threads).
struct Threads {
  std::unique_ptr<tbb::task_arena> arena;
  Execution exec;
};
extern Threads g_threads;

const Execution& Exec();

}  // namespace capi
}  // namespace bnorm

// ---- The layer handle -------------------------------------------------------

struct bnorm_layer {
  explicit bnorm_layer(bnorm::Options options) : impl(std::move(options)) {
    shape.reserve(BNORM_MAX_RANK);
  }

  bnorm::BatchNorm impl;
  // The shape of the current call for the C++ API. Its capacity holds any
  // rank, so filling it never allocates.
  std::vector<int64_t> shape;
};

#endif  // BNORM_SRC_C_API_COMMON_H_
