// SPDX-License-Identifier: Apache-2.0
// NumPy arrays in and out of bnorm: which dtypes travel as they are (float32, float16, bfloat16
// as uint16 bit patterns or ml_dtypes.bfloat16), which are cast to float32 (Keras' autocast:
// float64, integers), and when a copy is made (only for data that is not C-contiguous, aligned
// and in native byte order, or that is cast). Everything here runs with the GIL held.
#ifndef BNORM_PYTHON_ARRAYS_H_
#define BNORM_PYTHON_ARRAYS_H_

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "bnorm/dtype.hpp"

namespace bnorm {
namespace python {

namespace py = pybind11;

// How a tensor's element type reaches Python again: float32 and float16 as themselves,
// bfloat16 as uint16 bit patterns or as ml_dtypes.bfloat16 (whichever came in).
enum class Element { kFloat32, kFloat16, kBFloat16Bits, kBFloat16 };

// A tensor bnorm can read: C-contiguous, aligned, native-endian `array` of `type`.
struct Tensor {
  py::array array;  // x itself, or its one copy
  DType type = DType::kFloat32;
  Element element = Element::kFloat32;
  std::vector<int64_t> shape;
  size_t elements = 0;
  const void* data() const { return array.data(); }
};

// x as bnorm reads it: an ndarray (or anything numpy.asarray turns into a real-number
// array) of float32, float16, bfloat16 (uint16 bits or ml_dtypes) as is; other real dtypes
// cast to float32. A TypeError naming `name` for bool, complex, strings and objects.
Tensor ReadTensor(py::handle x, const char* name);

// A new C-order array of `shape` with the element type of `like`.
py::array NewArray(Element element, const std::vector<int64_t>& shape);
// The element type of an array of this dtype as bnorm keeps it, or none (a dtype to cast).
std::optional<Element> ElementOf(const py::dtype& dtype);

// An output the caller gave (`out=`): must already be a C-contiguous, aligned, writable
// ndarray of `element` and `shape`: nothing is copied back, so nothing is converted. Throws
// TypeError / ValueError naming `name`.
void CheckOutput(py::handle out, const char* name, Element element,
                 const std::vector<int64_t>& shape);

// A per-channel float32 parameter: numpy.asarray(value) cast to float32, whose shape is
// `shape` up to dimensions of size 1 (so Keras' broadcast shapes (1, 1, 1, C) fit too).
// A ValueError naming `name` otherwise.
std::vector<float> ReadParameter(py::handle value, const char* name,
                                 const std::vector<int64_t>& shape);
// The same in float64 (the engine's double mean).
std::vector<double> ReadParameterDouble(py::handle value, const char* name,
                                        const std::vector<int64_t>& shape);
// A parameter whose shape defines the others' (a 1-D or N-D array of any real dtype).
std::vector<float> ReadAnyParameter(py::handle value, const char* name,
                                    std::vector<int64_t>* shape);

// A writable float32 array the engine rewrites in place: C-contiguous, aligned, float32.
py::array WritableFloat32(py::handle value, const char* name);

// A NumPy array of `shape` holding the values.
py::array ToArray(const std::vector<float>& values, const std::vector<int64_t>& shape);
py::array ToArray(const std::vector<double>& values, const std::vector<int64_t>& shape);

// Python's repr of a shape: (2, 3).
std::string ShapeText(const std::vector<int64_t>& shape);

}  // namespace python
}  // namespace bnorm

#endif  // BNORM_PYTHON_ARRAYS_H_
