// SPDX-License-Identifier: Apache-2.0
// The engine functions of the module (bnorm.moments, fold, normalize, training_normalize,
// training_backward, fold_into_weights, targets, force_target).
#ifndef BNORM_PYTHON_ENGINE_H_
#define BNORM_PYTHON_ENGINE_H_

#include <pybind11/pybind11.h>

namespace bnorm {
namespace python {

void RegisterEngine(pybind11::module_& m);

}  // namespace python
}  // namespace bnorm

#endif  // BNORM_PYTHON_ENGINE_H_
