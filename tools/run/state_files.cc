// SPDX-License-Identifier: Apache-2.0
// bnorm-run's input files (see state_files.h).
#include "tools/run/state_files.h"

#include "bnorm/error.hpp"
#include "src/plan/checks.h"
#include "src/plan/format.h"
#include "tools/run/failure.h"

namespace bnorm {
namespace run {
namespace {

std::vector<int64_t> WithoutOnes(const std::vector<int64_t>& shape) {
  std::vector<int64_t> squeezed;
  for (int64_t d : shape) {
    if (d != 1) squeezed.push_back(d);
  }
  return squeezed;
}

}  // namespace

npy::Array ReadFile(const std::string& flag, const std::string& path) {
  try {
    return npy::Read(path);
  } catch (const Error& e) {
    IoError(flag + ": " + e.what());
  }
}

std::vector<float> ParameterFile::Values(const std::vector<int64_t>& parameter_shape) const {
  const size_t count =
      ShapeElements("parameter shape", parameter_shape.data(), parameter_shape.size());
  const bool fits =
      array.count() == count &&
      (array.shape.size() <= 1 || WithoutOnes(array.shape) == WithoutOnes(parameter_shape));
  if (!fits) {
    UsageError(flag + " " + path + " has shape " + FormatList(array.shape) +
               "; expected the parameter shape " + FormatList(parameter_shape) + " (" +
               std::to_string(count) + " values)");
  }
  return npy::ToFloats(array);
}

ParameterFile ReadParameterFile(const std::string& flag, const std::string& path) {
  return ParameterFile{flag, path, ReadFile(flag, path)};
}

}  // namespace run
}  // namespace bnorm
