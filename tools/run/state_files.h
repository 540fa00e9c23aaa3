// SPDX-License-Identifier: Apache-2.0
// bnorm-run's input files: .npy reads whose errors name the flag, and the state and adjustment
// files, which Keras may store in several shapes of the same parameter.
#ifndef BNORM_TOOLS_RUN_STATE_FILES_H_
#define BNORM_TOOLS_RUN_STATE_FILES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "src/io/npy.h"

namespace bnorm {
namespace run {

// The array in `path`; an I/O failure naming `flag` otherwise.
npy::Array ReadFile(const std::string& flag, const std::string& path);

// A state or adjustment file read as float32 values of the parameter shape.
// Keras' own shapes fit too: a flat vector of the same count, or the full-rank
// shape it uses with ghost batches or several axes (1 in every other
// dimension).
struct ParameterFile {
  std::string flag, path;
  npy::Array array;

  // The values, or a usage failure when the file's shape does not fit `parameter_shape`.
  std::vector<float> Values(const std::vector<int64_t>& parameter_shape) const;
};

ParameterFile ReadParameterFile(const std::string& flag, const std::string& path);

}  // namespace run
}  // namespace bnorm

#endif  // BNORM_TOOLS_RUN_STATE_FILES_H_
