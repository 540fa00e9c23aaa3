// SPDX-License-Identifier: Apache-2.0
// Text to values for the command-line tools, the one place where a flag's value or a line of a
// shapes file is read: integers, numbers, booleans, dtypes, shapes ("32x256x56x56" or
// "32,256,56,56"), axis lists ("1,2") and named choices. Strict: base 10, no spaces, nothing
// trailing. Each parser throws std::invalid_argument whose message quotes the text and says what
// was expected; cli.h prefixes the flag ("--shape: ...").
#ifndef BNORM_TOOLS_COMMON_PARSE_H_
#define BNORM_TOOLS_COMMON_PARSE_H_

#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "bnorm/dtype.hpp"

namespace bnorm {
namespace cli {

// A whole decimal integer (optional sign) in [min, max].
int64_t ParseInteger(const std::string& text, int64_t min, int64_t max);
// A whole decimal integer >= 1: a count or size.
int64_t ParsePositive(const std::string& text);
// A whole decimal integer in [0, 2^64).
uint64_t ParseUnsigned(const std::string& text);
// Comma-separated integers, each in [min, max]: "1", "1,2,4".
std::vector<int64_t> ParseIntegers(const std::string& text, int64_t min, int64_t max);
// Sizes separated by ',' or 'x', each >= 1: "32,256,56,56", "32x256x56x56".
std::vector<int64_t> ParseShape(const std::string& text);
// Comma-separated feature axes of a tensor: "-1", "1,2". Bounded by any tensor's rank; the layer
// checks them against the actual one.
std::vector<int> ParseAxes(const std::string& text);
// A finite number in [min, max] (strtod's syntax).
double ParseReal(const std::string& text, double min, double max);
// A float32 (strtof's syntax, so nan and inf too: the layer says which values it takes).
float ParseFloat(const std::string& text);
// true or false (Python's True and False too).
bool ParseBool(const std::string& text);
// f32, bf16, f16, or the long names float32, bfloat16, float16.
DType ParseDType(const std::string& text);
// The short spelling ParseDType accepts first: f32, bf16, f16.
const char* ShortName(DType dtype);

// The value named `text` among `choices`; otherwise "unknown <what> '<text>'; expected
// <expected>" (`expected` lists the spellings to offer, which may be fewer than accepted).
template <class T>
T ParseChoice(const std::string& text, const std::string& what,
              std::initializer_list<std::pair<const char*, T>> choices,
              const std::string& expected) {
  for (const std::pair<const char*, T>& choice : choices) {
    if (text == choice.first) return choice.second;
  }
  throw std::invalid_argument("unknown " + what + " '" + text + "'; expected " + expected);
}

}  // namespace cli
}  // namespace bnorm

#endif  // BNORM_TOOLS_COMMON_PARSE_H_
