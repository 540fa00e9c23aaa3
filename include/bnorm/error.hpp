// The one exception type bnorm throws. Its message names the argument, the
// value given and what was expected.
#ifndef BNORM_ERROR_HPP_
#define BNORM_ERROR_HPP_

#include <stdexcept>
#include <string>

#include "bnorm/export.h"

namespace bnorm {

class BNORM_API Error : public std::invalid_argument {
 public:
  explicit Error(const std::string& message) : std::invalid_argument(message) {}
};

}  // namespace bnorm

#endif  // BNORM_ERROR_HPP_
