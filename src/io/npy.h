// SPDX-License-Identifier: Apache-2.0
// NumPy .npy files (format versions 1.0, 2.0 and 3.0): the interchange format
// of bnorm-run and the Keras cross-checks. Only what the layer reads and writes
// is supported: little-endian float32, float64, float16 and bfloat16 (which
// NumPy has no dtype for, so it travels as its bit pattern in '<u2'), C order,
// any rank including 0-d.
#ifndef BNORM_SRC_IO_NPY_H_
#define BNORM_SRC_IO_NPY_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>


namespace bnorm {
namespace npy {

// The element types, with their .npy descr.
enum class ElementType {
  kFloat32,   // '<f4'
  kFloat64,   // '<f8'
  kFloat16,   // '<f2'
  kBFloat16,  // '<u2' (the raw bfloat16 bit pattern)
};

// "<f4", "<f8", "<f2" or "<u2".
const char* Descr(ElementType dtype);
// "float32", "float64", "float16" or "bfloat16".
const char* Name(ElementType dtype);
// Bytes per element: 4, 8, 2 or 2.
size_t ItemSize(ElementType dtype);

// A C-order tensor: `data` holds count() elements of `dtype`, little-endian.
struct Array {
  ElementType dtype = ElementType::kFloat32;
  std::vector<int64_t> shape;  // empty for a 0-d array (one element)
  std::vector<uint8_t> data;

  // Product of the shape (1 for a 0-d array). Assumes a valid shape.
  size_t count() const;
};

// Reads a .npy file. Throws bnorm::Error, whose message starts with the path
// and names the problem: missing or unreadable file, wrong magic, unsupported
// version, truncated header, header length beyond the file or above 1 MiB,
// malformed header dict, unsupported dtype, fortran_order True, a negative or
// overflowing shape, or a payload whose size disagrees with the shape.
Array Read(const std::string& path);

// Writes `array` as .npy (version 1.0, or 2.0 when the header needs it). The
// bytes go to a temporary file in the same directory that is then renamed over
// `path`, so readers never see a half-written file. Throws bnorm::Error naming
// the path on failure, or when data.size() disagrees with the shape.
void Write(const std::string& path, const Array& array);

// Every element converted to float32 (float64 rounds to nearest).
std::vector<float> ToFloats(const Array& array);
// An array of `dtype` holding `values` (float16 and bfloat16 round to nearest
// even, overflow gives infinity, NaN stays NaN; float64 widens exactly). Throws
// bnorm::Error if the count disagrees with the shape.
Array FromFloats(const std::vector<float>& values,
                           const std::vector<int64_t>& shape, ElementType dtype);

// The raw 16-bit patterns of a float16 or bfloat16 array, and back.
std::vector<uint16_t> ToBits16(const Array& array);
Array FromBits16(const std::vector<uint16_t>& bits,
                           const std::vector<int64_t>& shape, ElementType dtype);

}  // namespace npy
}  // namespace bnorm

#endif  // BNORM_SRC_IO_NPY_H_
