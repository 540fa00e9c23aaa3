// SPDX-License-Identifier: Apache-2.0
// bnorm::Error's code as a bnorm_status: the one place the C ABI maps a
// failure of the C++ API to a status.
#ifndef BNORM_SRC_C_API_STATUS_H_
#define BNORM_SRC_C_API_STATUS_H_

#include "bnorm/bnorm.h"
#include "bnorm/error.hpp"

namespace bnorm {

constexpr bnorm_status StatusOf(ErrorCode code) {
  switch (code) {
    case ErrorCode::kNullPointer:
      return BNORM_STATUS_NULL_POINTER;
    case ErrorCode::kInvalidArgument:
      return BNORM_STATUS_INVALID_ARGUMENT;
    case ErrorCode::kShapeMismatch:
      return BNORM_STATUS_SHAPE_MISMATCH;
    case ErrorCode::kOverflow:
      return BNORM_STATUS_OVERFLOW;
    case ErrorCode::kUnsupported:
      return BNORM_STATUS_UNSUPPORTED;
  }
  // A code outside the enum can only come from a bug.
  return BNORM_STATUS_INTERNAL;
}

}  // namespace bnorm

#endif  // BNORM_SRC_C_API_STATUS_H_
