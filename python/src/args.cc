// SPDX-License-Identifier: Apache-2.0
// Argument conversion with messages naming the argument (see args.h).
#include "args.h"

#include <climits>

#include "errors.h"

namespace bnorm {
namespace python {
namespace {

bool IsBool(py::handle value) {
  return py::isinstance<py::bool_>(value) || TypeName(value) == "bool_";  // numpy.bool_
}

bool IsInt(py::handle value) { return !IsBool(value) && PyIndex_Check(value.ptr()); }

int64_t ReadInt(py::handle value, const std::string& name) {
  if (!IsInt(value)) ThrowType(name + " is a " + TypeName(value) + "; expected an int");
  const py::int_ number = py::reinterpret_steal<py::int_>(PyNumber_Index(value.ptr()));
  int overflow = 0;
  const long long v = PyLong_AsLongLongAndOverflow(number.ptr(), &overflow);
  if (overflow != 0) ThrowValue(name + " is " + py::str(value).cast<std::string>() + "; too large");
  return v;
}

}  // namespace

std::string TypeName(py::handle value) {
  return py::str(value.get_type().attr("__name__")).cast<std::string>();
}

std::vector<int> ReadAxes(py::handle value, const char* name) {
  std::vector<int64_t> axes;
  if (py::isinstance<py::list>(value) || py::isinstance<py::tuple>(value)) {
    size_t i = 0;
    for (py::handle item : value) {
      axes.push_back(ReadInt(item, std::string(name) + "[" + std::to_string(i++) + "]"));
    }
  } else if (IsInt(value)) {
    axes.push_back(ReadInt(value, name));
  } else {
    ThrowType(std::string(name) + " is a " + TypeName(value) +
              "; expected an int or a list of ints");
  }
  std::vector<int> result;
  for (int64_t a : axes) {
    if (a < INT_MIN || a > INT_MAX) {
      ThrowValue(std::string(name) + " holds " + std::to_string(a) + "; out of range");
    }
    result.push_back(static_cast<int>(a));
  }
  return result;
}

double ReadNumber(py::handle value, const char* name) {
  if (IsBool(value) || !PyNumber_Check(value.ptr()) || PyComplex_Check(value.ptr())) {
    ThrowType(std::string(name) + " is a " + TypeName(value) + "; expected a number");
  }
  const double v = PyFloat_AsDouble(value.ptr());
  if (v == -1.0 && PyErr_Occurred()) throw py::error_already_set();
  return v;
}

bool ReadBool(py::handle value, const char* name) {
  if (!IsBool(value)) {
    ThrowType(std::string(name) + " is a " + TypeName(value) + "; expected True or False");
  }
  return py::cast<bool>(value);
}

std::optional<int64_t> ReadOptionalInt(py::handle value, const char* name) {
  if (value.is_none()) return std::nullopt;
  if (!IsInt(value))
    ThrowType(std::string(name) + " is a " + TypeName(value) + "; expected None or an int");
  return ReadInt(value, name);
}

}  // namespace python
}  // namespace bnorm
