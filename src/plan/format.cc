// SPDX-License-Identifier: Apache-2.0
// Shapes and lists as text for error messages.
#include "src/plan/format.h"

namespace bnorm {
namespace {

template <class T>
std::string Format(const T* values, size_t count) {
  std::string text = "[";
  for (size_t i = 0; i < count; ++i) text += (i ? ", " : "") + std::to_string(values[i]);
  return text + "]";
}

}  // namespace

std::string FormatList(const int64_t* values, size_t count) { return Format(values, count); }
std::string FormatList(const int* values, size_t count) { return Format(values, count); }
std::string FormatList(const std::vector<int64_t>& values) {
  return Format(values.data(), values.size());
}
std::string FormatList(const std::vector<int>& values) {
  return Format(values.data(), values.size());
}

}  // namespace bnorm
