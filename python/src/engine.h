// SPDX-License-Identifier: Apache-2.0
// The engine functions of the module (bnorm.moments, fold, normalize, training_normalize,
// training_backward, fold_into_weights, targets, force_target).
#ifndef BNORM_PYTHON_ENGINE_H_
#define BNORM_PYTHON_ENGINE_H_

#include <pybind11/pybind11.h>

#include <vector>

#include "arrays.h"
#include "bnorm/geometry.hpp"
#include "bnorm/kernels.hpp"

namespace bnorm {
namespace python {

// bnorm.normalize's x, mean, scale, shift and axis read into the kernel's arguments: params
// points into the vectors (a float64 mean split into hi and lo), which a move keeps.
struct NormalizeArguments {
  Tensor x;
  Geometry geometry;
  std::vector<float> mean_hi, mean_lo, scale, shift;
  NormalizeParams params;
  NormalizeArguments() = default;
  NormalizeArguments(NormalizeArguments&&) = default;
  NormalizeArguments(const NormalizeArguments&) = delete;
};
NormalizeArguments ReadNormalizeArguments(pybind11::handle x, pybind11::handle mean,
                                          pybind11::handle scale, pybind11::handle shift,
                                          pybind11::handle axis);

void RegisterEngine(pybind11::module_& m);

}  // namespace python
}  // namespace bnorm

#endif  // BNORM_PYTHON_ENGINE_H_
