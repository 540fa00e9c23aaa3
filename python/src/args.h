// SPDX-License-Identifier: Apache-2.0
// Python arguments to C++ values, each failure a TypeError or ValueError naming the argument:
// Python's own conversions would reject a wrong type without saying which argument it was.
#ifndef BNORM_PYTHON_ARGS_H_
#define BNORM_PYTHON_ARGS_H_

#include <pybind11/pybind11.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace bnorm {
namespace python {

namespace py = pybind11;

// The name of a value's type, for messages ("list", "NoneType").
std::string TypeName(py::handle value);

// An int or a list/tuple of ints (Keras' axis).
std::vector<int> ReadAxes(py::handle value, const char* name);
// A real number (Python or NumPy); bool is not one.
double ReadNumber(py::handle value, const char* name);
// True or False (or a NumPy bool).
bool ReadBool(py::handle value, const char* name);
// None or an int; bool is not one.
std::optional<int64_t> ReadOptionalInt(py::handle value, const char* name);

}  // namespace python
}  // namespace bnorm

#endif  // BNORM_PYTHON_ARGS_H_
