// SPDX-License-Identifier: Apache-2.0
// The tools' text parsers (see parse.h).
#include "tools/common/parse.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "tools/common/format.h"

namespace bnorm {
namespace cli {
namespace {

[[noreturn]] void Bad(const std::string& message) { throw std::invalid_argument(message); }

std::string Quoted(const std::string& text) { return "'" + text + "'"; }

// Digits with an optional sign, nothing else: strtoll alone would skip leading spaces and stop
// at the first non-digit.
bool IsDecimal(const std::string& text, bool allow_sign) {
  size_t i = allow_sign && !text.empty() && (text[0] == '-' || text[0] == '+') ? 1 : 0;
  if (i == text.size()) return false;
  for (; i < text.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) return false;
  }
  return true;
}

// Whether `convert` (strtod or strtof) reads all of `text` into *value, errno as it leaves it:
// alone it would skip leading spaces and stop at the first character it cannot read.
template <class T>
bool ReadWhole(const std::string& text, T (*convert)(const char*, char**), T* value) {
  if (text.empty() || std::isspace(static_cast<unsigned char>(text[0]))) return false;
  char* end = nullptr;
  errno = 0;
  *value = convert(text.c_str(), &end);
  return *end == '\0';
}

std::vector<std::string> Split(const std::string& text, const char* separators) {
  std::vector<std::string> parts(1);
  for (char ch : text) {
    if (std::string(separators).find(ch) != std::string::npos) {
      parts.emplace_back();
    } else {
      parts.back() += ch;
    }
  }
  return parts;
}

}  // namespace

int64_t ParseInteger(const std::string& text, int64_t min, int64_t max) {
  if (!IsDecimal(text, /*allow_sign=*/true)) Bad(Quoted(text) + " is not an integer");
  errno = 0;
  const long long value = std::strtoll(text.c_str(), nullptr, 10);
  const bool overflow = errno == ERANGE;
  if (value < min || (overflow && value < 0)) {
    Bad(Quoted(text) + " is too small; expected an integer >= " + std::to_string(min));
  }
  if (value > max || overflow) {
    Bad(Quoted(text) + " is too large; expected an integer <= " + std::to_string(max));
  }
  return value;
}

int64_t ParsePositive(const std::string& text) {
  return ParseInteger(text, 1, std::numeric_limits<int64_t>::max());
}

uint64_t ParseUnsigned(const std::string& text) {
  const bool decimal = IsDecimal(text, /*allow_sign=*/false);
  errno = 0;
  const unsigned long long value = decimal ? std::strtoull(text.c_str(), nullptr, 10) : 0;
  if (!decimal || errno == ERANGE) {
    Bad(Quoted(text) + " is not an unsigned 64-bit integer");
  }
  return value;
}

std::vector<int64_t> ParseIntegers(const std::string& text, int64_t min, int64_t max) {
  std::vector<int64_t> values;
  for (const std::string& part : Split(text, ",")) values.push_back(ParseInteger(part, min, max));
  return values;
}

std::vector<int64_t> ParseShape(const std::string& text) {
  const std::string example = "; expected sizes like 32,256,56,56";
  if (text.empty()) Bad("empty shape" + example);
  std::vector<int64_t> shape;
  for (const std::string& part : Split(text, ",x")) {
    if (part.empty()) Bad(Quoted(text) + " has an empty size" + example);
    if (!IsDecimal(part, /*allow_sign=*/true)) {
      Bad(Quoted(text) + " has a size " + Quoted(part) + " that is not an integer");
    }
    errno = 0;
    const long long size = std::strtoll(part.c_str(), nullptr, 10);
    if (errno == ERANGE && size > 0)
      Bad(Quoted(text) + " has a size " + part + " that is too large");
    if (size <= 0) Bad(Quoted(text) + " has a size of " + part + "; every size must be >= 1");
    shape.push_back(size);
  }
  return shape;
}

std::vector<int> ParseAxes(const std::string& text) {
  // No tensor has 1024 dimensions; the bound keeps an axis in an int.
  std::vector<int> axes;
  for (int64_t axis : ParseIntegers(text, -1024, 1024)) axes.push_back(static_cast<int>(axis));
  return axes;
}

double ParseReal(const std::string& text, double min, double max) {
  double value = 0.0;
  if (!ReadWhole(text, std::strtod, &value) || errno == ERANGE || !std::isfinite(value)) {
    Bad(Quoted(text) + " is not a number");
  }
  if (value < min) Bad(Quoted(text) + " is too small; expected a number >= " + FormatNumber(min));
  if (value > max) Bad(Quoted(text) + " is too large; expected a number <= " + FormatNumber(max));
  return value;
}

float ParseFloat(const std::string& text) {
  float value = 0.0f;
  if (!ReadWhole(text, std::strtof, &value)) Bad(Quoted(text) + " is not a number");
  // ERANGE also flags underflow to a denormal or zero, which is a fine float32.
  if (errno == ERANGE && std::fabs(value) > 1.0f) {
    Bad(Quoted(text) + " is out of the float32 range");
  }
  return value;
}

bool ParseBool(const std::string& text) {
  if (text == "true" || text == "True") return true;
  if (text == "false" || text == "False") return false;
  Bad(Quoted(text) + " is not a boolean; expected true or false");
}

DType ParseDType(const std::string& text) {
  return ParseChoice<DType>(text, "dtype",
                            {{"f32", DType::kFloat32},
                             {"float32", DType::kFloat32},
                             {"bf16", DType::kBFloat16},
                             {"bfloat16", DType::kBFloat16},
                             {"f16", DType::kFloat16},
                             {"float16", DType::kFloat16}},
                            "f32, bf16 or f16");
}

const char* ShortName(DType dtype) {
  return dtype == DType::kFloat32 ? "f32" : dtype == DType::kBFloat16 ? "bf16" : "f16";
}

}  // namespace cli
}  // namespace bnorm
