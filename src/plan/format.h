// SPDX-License-Identifier: Apache-2.0
// Shapes and lists as text for error messages, in one spelling: "[2, 3, 4]".
#ifndef BNORM_SRC_PLAN_FORMAT_H_
#define BNORM_SRC_PLAN_FORMAT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace bnorm {

std::string FormatList(const int64_t* values, size_t count);
std::string FormatList(const int* values, size_t count);
std::string FormatList(const std::vector<int64_t>& values);
std::string FormatList(const std::vector<int>& values);

}  // namespace bnorm

#endif  // BNORM_SRC_PLAN_FORMAT_H_
