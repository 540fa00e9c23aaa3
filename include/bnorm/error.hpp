// SPDX-License-Identifier: Apache-2.0
// The one exception type bnorm throws. Its message names the argument, the
// value given and what was expected; its code says which kind of failure it
// is, so that the C ABI maps it to a status without guessing from the text.
#ifndef BNORM_ERROR_HPP_
#define BNORM_ERROR_HPP_

#include <stdexcept>
#include <string>

#include "bnorm/export.h"

namespace bnorm {

// The kinds of failure, numbered as bnorm.h's bnorm_status values (memory and
// internal errors are std::bad_alloc and other exceptions, not codes).
enum class ErrorCode : int {
  kNullPointer = 1,      // a required pointer is null
  kInvalidArgument = 2,  // a value is out of range or invalid
  kShapeMismatch = 3,    // sizes disagree with each other or with the layer
  kOverflow = 4,         // an element or byte count does not fit in memory
  kUnsupported = 5,      // valid, but not supported (CPU target, axis layout)
};

class BNORM_API Error : public std::invalid_argument {
 public:
  Error(ErrorCode code, const std::string& message) : std::invalid_argument(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace bnorm

#endif  // BNORM_ERROR_HPP_
