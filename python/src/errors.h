// SPDX-License-Identifier: Apache-2.0
// Python exceptions for bnorm's failures: bnorm::Error becomes ValueError (OverflowError for
// sizes that do not fit in memory), with its message, which names the argument; the module's
// own checks raise TypeError for a wrong type and ValueError for a wrong value.
#ifndef BNORM_PYTHON_ERRORS_H_
#define BNORM_PYTHON_ERRORS_H_

#include <pybind11/pybind11.h>

#include <string>

namespace bnorm {
namespace python {

// Translates bnorm::Error as it leaves any function of the module.
void RegisterErrors(pybind11::module_& m);

[[noreturn]] void ThrowType(const std::string& message);
[[noreturn]] void ThrowValue(const std::string& message);

}  // namespace python
}  // namespace bnorm

#endif  // BNORM_PYTHON_ERRORS_H_
