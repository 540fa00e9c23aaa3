// SPDX-License-Identifier: Apache-2.0
// NumPy conversion for bnorm's tensors and parameters (see arrays.h).
#include "arrays.h"

#include <algorithm>
#include <string>

#include "errors.h"

namespace bnorm {
namespace python {
namespace {

// numpy's functions, looked up once (the module keeps numpy imported for the process).
struct NumPy {
  py::object asarray, ascontiguousarray, float32, float16, uint16, float64;
};

const NumPy& Np() {
  static const NumPy* np = [] {
    py::module_ numpy = py::module_::import("numpy");
    return new NumPy{numpy.attr("asarray"), numpy.attr("ascontiguousarray"),
                     numpy.attr("float32"), numpy.attr("float16"),
                     numpy.attr("uint16"),  numpy.attr("float64")};
  }();
  return *np;
}

bool IsNdarray(py::handle value) { return py::detail::npy_api::get().PyArray_Check_(value.ptr()); }

// The value as an ndarray without copying an ndarray; other objects through numpy.asarray.
py::array AsArray(py::handle value, const char* name) {
  if (IsNdarray(value)) return py::reinterpret_borrow<py::array>(value);
  try {
    return Np().asarray(value);
  } catch (py::error_already_set& e) {
    ThrowType(std::string(name) + " is a " +
              py::str(value.get_type().attr("__name__")).cast<std::string>() +
              " that numpy.asarray cannot turn into an array (" + e.what() + ")");
  }
}

std::string DTypeText(const py::array& a) {
  const py::dtype dtype = a.dtype();
  return py::str(static_cast<const py::handle&>(dtype)).cast<std::string>();
}

bool NativeOrder(char byteorder) {
  const uint16_t one = 1;
  const bool little = *reinterpret_cast<const unsigned char*>(&one) == 1;
  return byteorder == '=' || byteorder == '|' || (byteorder == '<') == little;
}

// Whether bnorm can read the array's memory as it is.
bool Readable(const py::array& a) {
  const auto* proxy = py::detail::array_proxy(a.ptr());
  const int needed =
      py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_ | py::detail::npy_api::NPY_ARRAY_ALIGNED_;
  return (proxy->flags & needed) == needed &&
         NativeOrder(py::detail::array_descriptor_proxy(proxy->descr)->byteorder);
}

std::vector<int64_t> ShapeOf(const py::array& a) {
  return std::vector<int64_t>(a.shape(), a.shape() + a.ndim());
}

// Shapes equal once dimensions of size 1 are dropped.
bool SameUpToOnes(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  std::vector<int64_t> x, y;
  std::copy_if(a.begin(), a.end(), std::back_inserter(x), [](int64_t s) { return s != 1; });
  std::copy_if(b.begin(), b.end(), std::back_inserter(y), [](int64_t s) { return s != 1; });
  return x == y;
}

template <class T>
std::vector<T> ReadValues(py::handle value, const char* name, const std::vector<int64_t>& shape,
                          const py::object& dtype) {
  py::array a = AsArray(value, name);
  const py::dtype type = a.dtype();
  if (type.kind() == 'f' && type.itemsize() == static_cast<ssize_t>(sizeof(T)) && Readable(a) &&
      SameUpToOnes(ShapeOf(a), shape)) {
    // Already T, contiguous and in native order: no numpy call.
    const T* data = static_cast<const T*>(a.data());
    return std::vector<T>(data, data + a.size());
  }
  const char kind = type.kind();
  if (kind != 'f' && kind != 'i' && kind != 'u') {
    ThrowType(std::string(name) + " has dtype " + DTypeText(a) + "; expected real numbers");
  }
  if (!SameUpToOnes(ShapeOf(a), shape)) {
    ThrowValue(std::string(name) + " has shape " + ShapeText(ShapeOf(a)) +
               "; expected the parameter shape " + ShapeText(shape));
  }
  py::array c = Np().ascontiguousarray(a, dtype);
  const T* data = static_cast<const T*>(c.data());
  return std::vector<T>(data, data + c.size());
}

}  // namespace

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string text = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i != 0) text += ", ";
    text += std::to_string(shape[i]);
  }
  return text + (shape.size() == 1 ? ",)" : ")");
}

std::optional<Element> ElementOf(const py::dtype& dtype) {
  const char kind = dtype.kind();
  const ssize_t size = dtype.itemsize();
  if (kind == 'f' && size == 4) return Element::kFloat32;
  if (kind == 'f' && size == 2) return Element::kFloat16;
  if (kind == 'u' && size == 2) return Element::kBFloat16Bits;
  if (kind == 'V' && size == 2 && py::str(dtype.attr("name")).cast<std::string>() == "bfloat16") {
    return Element::kBFloat16;
  }
  return std::nullopt;
}

Tensor ReadTensor(py::handle x, const char* name) {
  Tensor t;
  py::array a = AsArray(x, name);
  const py::dtype dtype = a.dtype();
  const char kind = dtype.kind();
  const ssize_t size = dtype.itemsize();
  py::object target;
  if (kind == 'f' && size == 4) {
    target = Np().float32;
  } else if (kind == 'f' && size == 2) {
    t.type = DType::kFloat16;
    t.element = Element::kFloat16;
    target = Np().float16;
  } else if (kind == 'u' && size == 2) {
    t.type = DType::kBFloat16;
    t.element = Element::kBFloat16Bits;
    target = Np().uint16;
  } else if (kind == 'V' && size == 2 &&
             py::str(dtype.attr("name")).cast<std::string>() == "bfloat16") {
    t.type = DType::kBFloat16;
    t.element = Element::kBFloat16;
    target = dtype;
  } else if (kind == 'f' || kind == 'i' || kind == 'u') {
    // Keras casts other real inputs to the layer's float32 compute dtype.
    target = Np().float32;
    a = Np().ascontiguousarray(a, target);
  } else {
    ThrowType(std::string(name) + " has dtype " + DTypeText(a) +
              "; expected float32, float16, bfloat16 (uint16 bit patterns or ml_dtypes) or "
              "another real dtype (cast to float32)");
  }
  if (!Readable(a)) a = Np().ascontiguousarray(a, target);
  t.array = a;
  t.shape = ShapeOf(a);
  t.elements = static_cast<size_t>(a.size());
  return t;
}

py::array NewArray(Element element, const std::vector<int64_t>& shape) {
  const std::vector<ssize_t> dims(shape.begin(), shape.end());
  switch (element) {
    case Element::kFloat32:
      return py::array_t<float>(dims);
    case Element::kFloat16:
      return py::array(py::dtype::from_args(Np().float16), dims);
    case Element::kBFloat16Bits:
      return py::array_t<uint16_t>(dims);
    case Element::kBFloat16:
      break;
  }
  // ml_dtypes is importable: the input was one of its arrays.
  return py::array(py::dtype::from_args(py::module_::import("ml_dtypes").attr("bfloat16")), dims);
}

void CheckOutput(py::handle out, const char* name, Element element,
                 const std::vector<int64_t>& shape) {
  if (!IsNdarray(out)) {
    ThrowType(std::string(name) + " is a " +
              py::str(out.get_type().attr("__name__")).cast<std::string>() +
              "; expected a numpy.ndarray to write into");
  }
  py::array a = py::reinterpret_borrow<py::array>(out);
  if (ElementOf(a.dtype()) != element) {
    const py::dtype expected = NewArray(element, {0}).dtype();
    ThrowType(std::string(name) + " has dtype " + DTypeText(a) + "; expected " +
              py::str(static_cast<const py::handle&>(expected)).cast<std::string>() +
              ", the dtype of the result");
  }
  if (ShapeOf(a) != shape) {
    ThrowValue(std::string(name) + " has shape " + ShapeText(ShapeOf(a)) + "; expected " +
               ShapeText(shape));
  }
  if (!Readable(a)) {
    ThrowValue(std::string(name) +
               " is not C-contiguous, aligned and in native byte order; the result is written "
               "into it directly");
  }
  if (!a.writeable()) ThrowValue(std::string(name) + " is read-only");
}

std::vector<float> ReadParameter(py::handle value, const char* name,
                                 const std::vector<int64_t>& shape) {
  return ReadValues<float>(value, name, shape, Np().float32);
}

std::vector<double> ReadParameterDouble(py::handle value, const char* name,
                                        const std::vector<int64_t>& shape) {
  return ReadValues<double>(value, name, shape, Np().float64);
}

std::vector<float> ReadAnyParameter(py::handle value, const char* name,
                                    std::vector<int64_t>* shape) {
  *shape = ShapeOf(AsArray(value, name));
  return ReadParameter(value, name, *shape);
}

py::array WritableFloat32(py::handle value, const char* name) {
  CheckOutput(value, name, Element::kFloat32,
              IsNdarray(value) ? ShapeOf(py::reinterpret_borrow<py::array>(value))
                               : std::vector<int64_t>{});
  return py::reinterpret_borrow<py::array>(value);
}

py::array ToArray(const std::vector<float>& values, const std::vector<int64_t>& shape) {
  py::array_t<float> a(std::vector<ssize_t>(shape.begin(), shape.end()));
  std::copy(values.begin(), values.end(), a.mutable_data());
  return a;
}

py::array ToArray(const std::vector<double>& values, const std::vector<int64_t>& shape) {
  py::array_t<double> a(std::vector<ssize_t>(shape.begin(), shape.end()));
  std::copy(values.begin(), values.end(), a.mutable_data());
  return a;
}

}  // namespace python
}  // namespace bnorm
