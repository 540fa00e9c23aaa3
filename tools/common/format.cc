// SPDX-License-Identifier: Apache-2.0
// The tools' text spellings of shapes and numbers (see format.h).
#include "tools/common/format.h"

#include <cstdio>

namespace bnorm {
namespace cli {

std::string FormatShape(const std::vector<int64_t>& shape) { return Join(shape, "x"); }

std::string FormatNumber(double value, int digits) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.*g", digits, value);
  return text;
}

}  // namespace cli
}  // namespace bnorm
