// SPDX-License-Identifier: Apache-2.0
// Values to text in the spellings the tools print in their tables, JSON values and progress
// lines: a shape as "32x256x56x56" (what --shape accepts), lists joined by a separator, numbers
// to a number of significant digits. Error messages spell shapes and lists as the library does
// (bnorm::FormatList in src/plan/format.h: "[2, 3, 4]").
#ifndef BNORM_TOOLS_COMMON_FORMAT_H_
#define BNORM_TOOLS_COMMON_FORMAT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

namespace bnorm {
namespace cli {

// The values joined by `separator`: strings as they are, integers in decimal.
template <class T>
std::string Join(const std::vector<T>& values, const char* separator) {
  std::string text;
  for (size_t i = 0; i < values.size(); ++i) {
    if (i != 0) text += separator;
    if constexpr (std::is_integral_v<T>) {
      text += std::to_string(values[i]);
    } else {
      text += values[i];
    }
  }
  return text;
}

// The sizes joined by 'x': "32x256x56x56", one of the spellings cli::ParseShape reads.
std::string FormatShape(const std::vector<int64_t>& shape);

// `value` with `digits` significant digits (printf's %.*g).
std::string FormatNumber(double value, int digits = 6);

}  // namespace cli
}  // namespace bnorm

#endif  // BNORM_TOOLS_COMMON_FORMAT_H_
