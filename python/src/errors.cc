// SPDX-License-Identifier: Apache-2.0
// bnorm::Error's code chooses the Python exception; the message stays as bnorm wrote it.
#include "errors.h"

#include <exception>

#include "bnorm/error.hpp"

namespace bnorm {
namespace python {

void RegisterErrors(pybind11::module_&) {
  pybind11::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Error& e) {
      // A null pointer cannot come from Python (every array has data); the other codes are
      // about the values given. An element count beyond memory is Python's OverflowError.
      PyObject* type = e.code() == ErrorCode::kOverflow ? PyExc_OverflowError : PyExc_ValueError;
      PyErr_SetString(type, e.what());
    }
  });
}

void ThrowType(const std::string& message) { throw pybind11::type_error(message); }
void ThrowValue(const std::string& message) { throw pybind11::value_error(message); }

}  // namespace python
}  // namespace bnorm
