// SPDX-License-Identifier: Apache-2.0
// The .npy reader and writer. The format: the magic "\x93NUMPY", a major and a
// minor version byte, the header length (uint16 in 1.0, uint32 in 2.0 and 3.0,
// little-endian), then the header: a Python dict literal with exactly the keys
// 'descr', 'fortran_order' and 'shape', padded with spaces and ended by '\n'.
// The payload follows, count() * ItemSize() bytes.
#include "src/io/npy.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

#include "bnorm/error.hpp"
#include "src/ops/half.h"
#include "src/plan/format.h"

// Payloads are copied byte for byte into and out of float / uint16_t memory.
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "bnorm's .npy support assumes a little-endian host"
#endif

namespace bnorm {
namespace npy {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;
// NumPy itself caps headers at 10000 bytes by default; anything past 1 MiB is
// a corrupt length field, not a header.
constexpr size_t kMaxHeaderSize = size_t{1} << 20;
// NumPy aligns the payload to 64 bytes.
constexpr size_t kAlignment = 64;

// A file or array that is not a valid .npy (the one kind of failure of this
// reader, apart from sizes that overflow).
[[noreturn]] void Fail(const std::string& name, const std::string& problem) {
  throw Error(ErrorCode::kInvalidArgument, name + ": " + problem);
}

// The shape as the header's Python tuple: "(3,)", "(2, 3)".
std::string PythonTuple(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    s += (i ? ", " : "") + std::to_string(shape[i]);
  }
  return s + (shape.size() == 1 ? ",)" : ")");
}

// The element count of a shape, or an error when a dimension is negative or
// the byte size does not fit in size_t.
size_t CheckedCount(const std::vector<int64_t>& shape, size_t item_size,
                    const std::string& name) {
  for (int64_t dim : shape) {
    if (dim < 0)
      Fail(name, "shape " + FormatList(shape) + " has a negative dimension");
  }
  // A zero dimension makes the array empty whatever the others are.
  for (int64_t dim : shape) {
    if (dim == 0) return 0;
  }
  size_t count = 1;
  for (int64_t dim : shape) {
    const size_t d = static_cast<size_t>(dim);
    if (d > std::numeric_limits<size_t>::max() / item_size / count) {
      throw Error(ErrorCode::kOverflow,
                  name + ": shape " + FormatList(shape) + " has more elements than fit in memory");
    }
    count *= d;
  }
  return count;
}

// A strict parser for the header dict: Python literal syntax restricted to what
// NumPy writes (quoted strings without escapes, True/False, a tuple of
// non-negative integers), whitespace between tokens, an optional trailing
// comma.
class HeaderParser {
 public:
  HeaderParser(const std::string& text, const std::string& name)
      : text_(text), name_(name) {}

  void Parse(std::string* descr, bool* fortran_order,
             std::vector<int64_t>* shape) {
    bool have_descr = false, have_fortran = false, have_shape = false;
    SkipSpace();
    Expect('{');
    SkipSpace();
    while (Peek() != '}') {
      const std::string key = ParseString("a dict key");
      SkipSpace();
      Expect(':');
      SkipSpace();
      if (key == "descr") {
        CheckUnique(&have_descr, key);
        if (Peek() == '[') {
          Fail(name_,
               "unsupported dtype: structured arrays are not supported "
               "(expected "
               "'<f4', '<f8', '<f2' or '<u2')");
        }
        *descr = ParseString("the 'descr' value");
      } else if (key == "fortran_order") {
        CheckUnique(&have_fortran, key);
        *fortran_order = ParseBool();
      } else if (key == "shape") {
        CheckUnique(&have_shape, key);
        *shape = ParseShape();
      } else {
        Malformed("unexpected key '" + key + "'");
      }
      SkipSpace();
      if (Peek() == ',') {
        ++pos_;
        SkipSpace();
      } else if (Peek() != '}') {
        Malformed("expected ',' or '}' after the value of '" + key + "'");
      }
    }
    ++pos_;
    SkipSpace();
    if (pos_ != text_.size())
      Malformed("unexpected text after the closing '}'");
    if (!have_descr) Malformed("missing key 'descr'");
    if (!have_fortran) Malformed("missing key 'fortran_order'");
    if (!have_shape) Malformed("missing key 'shape'");
  }

 private:
  [[noreturn]] void Malformed(const std::string& problem) {
    Fail(name_, "malformed header: " + problem + " (at offset " +
                    std::to_string(pos_) + " of the header)");
  }

  char Peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }

  void SkipSpace() {
    while (pos_ < text_.size() &&
           (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' ||
            text_[pos_] == '\r')) {
      ++pos_;
    }
  }

  void Expect(char c) {
    if (Peek() != c) Malformed(std::string("expected '") + c + "'");
    ++pos_;
  }

  void CheckUnique(bool* seen, const std::string& key) {
    if (*seen) Malformed("duplicate key '" + key + "'");
    *seen = true;
  }

  std::string ParseString(const char* what) {
    const char quote = Peek();
    if (quote != '\'' && quote != '"')
      Malformed(std::string("expected a string for ") + what);
    const size_t start = ++pos_;
    while (pos_ < text_.size() && text_[pos_] != quote) {
      if (text_[pos_] == '\\' || text_[pos_] == '\n') {
        Malformed(std::string("unsupported character in ") + what);
      }
      ++pos_;
    }
    if (pos_ == text_.size())
      Malformed(std::string("unterminated string in ") + what);
    return text_.substr(start, pos_++ - start);
  }

  bool ParseBool() {
    if (text_.compare(pos_, 4, "True") == 0) {
      pos_ += 4;
      return true;
    }
    if (text_.compare(pos_, 5, "False") == 0) {
      pos_ += 5;
      return false;
    }
    Malformed("'fortran_order' must be True or False");
  }

  int64_t ParseInt() {
    const bool negative = Peek() == '-';
    if (negative) ++pos_;
    if (Peek() < '0' || Peek() > '9')
      Malformed("expected an integer in 'shape'");
    uint64_t value = 0;
    bool too_large = false;
    while (Peek() >= '0' && Peek() <= '9') {
      const uint64_t digit = static_cast<uint64_t>(Peek() - '0');
      if (value > (std::numeric_limits<uint64_t>::max() - digit) / 10)
        too_large = true;
      value = too_large ? value : value * 10 + digit;
      ++pos_;
    }
    if (too_large ||
        value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      Fail(name_, "shape has a dimension that overflows int64");
    }
    if (negative && value != 0) {
      Fail(name_,
           "shape has a negative dimension (-" + std::to_string(value) + ")");
    }
    return static_cast<int64_t>(value);
  }

  // "()", "(3,)", "(2, 3)" or "(2, 3,)"; "(3)" is an int in Python, not a
  // tuple.
  std::vector<int64_t> ParseShape() {
    Expect('(');
    SkipSpace();
    std::vector<int64_t> shape;
    bool trailing_comma = false;
    while (Peek() != ')') {
      shape.push_back(ParseInt());
      SkipSpace();
      trailing_comma = Peek() == ',';
      if (trailing_comma) {
        ++pos_;
        SkipSpace();
      } else if (Peek() != ')') {
        Malformed("expected ',' or ')' in 'shape'");
      }
    }
    ++pos_;
    if (shape.size() == 1 && !trailing_comma)
      Malformed("'shape' must be a tuple");
    return shape;
  }

  const std::string& text_;
  const std::string& name_;
  size_t pos_ = 0;
};

bool ElementTypeFromDescr(const std::string& descr, ElementType* dtype) {
  for (ElementType d :
       {ElementType::kFloat32, ElementType::kFloat64, ElementType::kFloat16, ElementType::kBFloat16}) {
    if (descr == Descr(d)) {
      *dtype = d;
      return true;
    }
  }
  return false;
}

uint32_t LoadLE(const uint8_t* p, size_t bytes) {
  uint32_t v = 0;
  for (size_t i = 0; i < bytes; ++i)
    v |= static_cast<uint32_t>(p[i]) << (8 * i);
  return v;
}

// Validates the bytes of a .npy file and turns them into an Array (moving the
// payload, not copying it).
Array Parse(std::vector<uint8_t> bytes, const std::string& name) {
  // A file cut inside the preamble is truncated; anything else without the
  // magic is not a .npy file.
  const size_t magic_bytes = std::min(bytes.size(), kMagicSize);
  if (magic_bytes > 0 && std::memcmp(bytes.data(), kMagic, magic_bytes) != 0) {
    Fail(name, "not a .npy file (wrong magic string; expected \\x93NUMPY)");
  }
  if (bytes.size() < kMagicSize + 2) {
    Fail(name, "truncated file (" + std::to_string(bytes.size()) +
                   " bytes, shorter than the .npy preamble)");
  }
  const int major = bytes[kMagicSize], minor = bytes[kMagicSize + 1];
  if ((major != 1 && major != 2 && major != 3) || minor != 0) {
    Fail(name, "unsupported .npy format version " + std::to_string(major) +
                   "." + std::to_string(minor) + " (supported: 1.0, 2.0, 3.0)");
  }
  const size_t length_bytes = major == 1 ? 2 : 4;
  const size_t prefix = kMagicSize + 2 + length_bytes;
  if (bytes.size() < prefix) {
    Fail(name, "truncated file (" + std::to_string(bytes.size()) +
                   " bytes, shorter than the .npy preamble)");
  }
  const size_t header_size =
      LoadLE(bytes.data() + kMagicSize + 2, length_bytes);
  if (header_size > kMaxHeaderSize) {
    Fail(name, "header length " + std::to_string(header_size) +
                   " is absurd (more than 1 MiB); the file is corrupt");
  }
  if (header_size > bytes.size() - prefix) {
    Fail(name, "truncated file: header length " + std::to_string(header_size) +
                   " runs past the end of the file (" +
                   std::to_string(bytes.size()) + " bytes)");
  }
  const std::string header(reinterpret_cast<const char*>(bytes.data() + prefix),
                           header_size);

  std::string descr;
  bool fortran_order = false;
  Array array;
  HeaderParser(header, name).Parse(&descr, &fortran_order, &array.shape);
  if (!ElementTypeFromDescr(descr, &array.dtype)) {
    Fail(name, "unsupported dtype '" + descr +
                   "' (expected '<f4', '<f8', '<f2', or '<u2' for bfloat16)");
  }
  if (fortran_order) {
    Fail(name, "fortran_order is True; only C-order arrays are supported");
  }
  const size_t item = ItemSize(array.dtype);
  const size_t count = CheckedCount(array.shape, item, name);
  const size_t payload = bytes.size() - prefix - header_size;
  if (payload != count * item) {
    Fail(name, std::string(payload < count * item ? "truncated payload"
                                                  : "trailing data") +
                   ": shape " + FormatList(array.shape) + " of " +
                   Name(array.dtype) + " needs " +
                   std::to_string(count * item) + " bytes, the file has " +
                   std::to_string(payload));
  }
  bytes.erase(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(
                                                 prefix + header_size));
  array.data = std::move(bytes);
  return array;
}

std::vector<uint8_t> Serialize(const Array& array, const std::string& name) {
  const size_t count = CheckedCount(array.shape, ItemSize(array.dtype), name);
  if (array.data.size() != count * ItemSize(array.dtype)) {
    Fail(name, "array data has " + std::to_string(array.data.size()) +
                   " bytes; shape " + FormatList(array.shape) + " of " +
                   Name(array.dtype) + " needs " +
                   std::to_string(count * ItemSize(array.dtype)));
  }
  std::string header =
      std::string("{'descr': '") + Descr(array.dtype) +
      "', 'fortran_order': False, 'shape': " + PythonTuple(array.shape) + ", }";
  // Pad with spaces and end with '\n' so that the payload starts aligned; the
  // 2.0 format (a 4-byte length) only when the header outgrows 65535 bytes.
  const auto padded = [&](size_t prefix) {
    return (prefix + header.size() + 1 + kAlignment - 1) / kAlignment *
               kAlignment -
           prefix;
  };
  const bool v2 = padded(kMagicSize + 4) > 0xFFFF;
  const size_t length_bytes = v2 ? 4 : 2;
  const size_t header_size = padded(kMagicSize + 2 + length_bytes);
  header.append(header_size - header.size() - 1, ' ');
  header += '\n';

  std::vector<uint8_t> bytes(kMagic, kMagic + kMagicSize);
  bytes.push_back(v2 ? 2 : 1);
  bytes.push_back(0);
  for (size_t i = 0; i < length_bytes; ++i) {
    bytes.push_back(static_cast<uint8_t>(header_size >> (8 * i)));
  }
  bytes.insert(bytes.end(), header.begin(), header.end());
  bytes.insert(bytes.end(), array.data.begin(), array.data.end());
  return bytes;
}

std::string ErrnoText() { return std::strerror(errno); }

}  // namespace

const char* Descr(ElementType dtype) {
  switch (dtype) {
    case ElementType::kFloat32:
      return "<f4";
    case ElementType::kFloat64:
      return "<f8";
    case ElementType::kFloat16:
      return "<f2";
    case ElementType::kBFloat16:
      return "<u2";
  }
  return "?";
}

const char* Name(ElementType dtype) {
  switch (dtype) {
    case ElementType::kFloat32:
      return "float32";
    case ElementType::kFloat64:
      return "float64";
    case ElementType::kFloat16:
      return "float16";
    case ElementType::kBFloat16:
      return "bfloat16";
  }
  return "?";
}

size_t ItemSize(ElementType dtype) {
  switch (dtype) {
    case ElementType::kFloat32:
      return 4;
    case ElementType::kFloat64:
      return 8;
    case ElementType::kFloat16:
    case ElementType::kBFloat16:
      return 2;
  }
  return 0;
}

size_t Array::count() const {
  size_t n = 1;
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  return n;
}

Array Read(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) Fail(path, "cannot open: " + ErrnoText());
  std::vector<uint8_t> bytes;
  uint8_t buffer[1 << 16];
  size_t got;
  while ((got = std::fread(buffer, 1, sizeof(buffer), file)) > 0) {
    bytes.insert(bytes.end(), buffer, buffer + got);
  }
  const bool failed = std::ferror(file) != 0;
  const std::string reason = failed ? ErrnoText() : "";
  std::fclose(file);
  if (failed) Fail(path, "cannot read: " + reason);
  return Parse(std::move(bytes), path);
}

void Write(const std::string& path, const Array& array) {
  const std::vector<uint8_t> bytes = Serialize(array, path);
  const size_t slash = path.rfind('/');
  const std::string dir =
      slash == std::string::npos ? "" : path.substr(0, slash + 1);
  const std::string base =
      slash == std::string::npos ? path : path.substr(slash + 1);
  // O_EXCL with a name unique to this process and call; 0666 lets the umask
  // give the file the permissions a plain fopen would (mkstemp would force
  // 0600).
  static std::atomic<unsigned> counter{0};
  std::string temp;
  int fd = -1;
  for (int attempt = 0; fd < 0 && attempt < 100; ++attempt) {
    temp = dir + "." + base + ".tmp." + std::to_string(::getpid()) + "." +
           std::to_string(counter.fetch_add(1));
    fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0)
    Fail(path,
         "cannot create a temporary file in its directory: " + ErrnoText());
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string reason = n < 0 ? ErrnoText() : "no progress";
      ::close(fd);
      ::unlink(temp.c_str());
      Fail(path, "cannot write: " + reason);
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0 || std::rename(temp.c_str(), path.c_str()) != 0) {
    const std::string reason = ErrnoText();
    ::unlink(temp.c_str());
    Fail(path, "cannot write: " + reason);
  }
}

std::vector<float> ToFloats(const Array& array) {
  const size_t n = array.count();
  std::vector<float> values(n);
  switch (array.dtype) {
    case ElementType::kFloat32:
      if (n) std::memcpy(values.data(), array.data.data(), n * sizeof(float));
      break;
    case ElementType::kFloat64:
      for (size_t i = 0; i < n; ++i) {
        double v;
        std::memcpy(&v, array.data.data() + i * sizeof(double), sizeof(double));
        values[i] = static_cast<float>(v);
      }
      break;
    case ElementType::kFloat16:
    case ElementType::kBFloat16: {
      const std::vector<uint16_t> bits = ToBits16(array);
      for (size_t i = 0; i < n; ++i) {
        values[i] = array.dtype == ElementType::kFloat16
                        ? bnorm::HalfToFloat(bits[i])
                        : bnorm::BFloat16ToFloat(bits[i]);
      }
      break;
    }
  }
  return values;
}

Array FromFloats(const std::vector<float>& values,
                 const std::vector<int64_t>& shape, ElementType dtype) {
  const size_t n = CheckedCount(shape, ItemSize(dtype), "FromFloats");
  if (values.size() != n) {
    throw Error(ErrorCode::kShapeMismatch, "FromFloats: " + std::to_string(values.size()) +
                " values do not fill shape " + FormatList(shape));
  }
  if (dtype == ElementType::kFloat16 || dtype == ElementType::kBFloat16) {
    std::vector<uint16_t> bits(n);
    for (size_t i = 0; i < n; ++i) {
      bits[i] = dtype == ElementType::kFloat16 ? bnorm::FloatToHalf(values[i])
                                         : bnorm::FloatToBFloat16(values[i]);
    }
    return FromBits16(bits, shape, dtype);
  }
  Array array{dtype, shape, std::vector<uint8_t>(n * ItemSize(dtype))};
  if (dtype == ElementType::kFloat32) {
    if (n) std::memcpy(array.data.data(), values.data(), n * sizeof(float));
  } else {
    for (size_t i = 0; i < n; ++i) {
      const double v = values[i];
      std::memcpy(array.data.data() + i * sizeof(double), &v, sizeof(double));
    }
  }
  return array;
}

std::vector<uint16_t> ToBits16(const Array& array) {
  if (ItemSize(array.dtype) != 2) {
    throw Error(ErrorCode::kInvalidArgument, std::string("ToBits16: array is ") + Name(array.dtype) +
                "; expected float16 or bfloat16");
  }
  std::vector<uint16_t> bits(array.data.size() / 2);
  if (!bits.empty())
    std::memcpy(bits.data(), array.data.data(), bits.size() * 2);
  return bits;
}

Array FromBits16(const std::vector<uint16_t>& bits,
                 const std::vector<int64_t>& shape, ElementType dtype) {
  if (ItemSize(dtype) != 2) {
    throw Error(ErrorCode::kInvalidArgument, std::string("FromBits16: dtype is ") + Name(dtype) +
                "; expected float16 or bfloat16");
  }
  const size_t n = CheckedCount(shape, 2, "FromBits16");
  if (bits.size() != n) {
    throw Error(ErrorCode::kShapeMismatch, "FromBits16: " + std::to_string(bits.size()) +
                " values do not fill shape " + FormatList(shape));
  }
  Array array{dtype, shape, std::vector<uint8_t>(n * 2)};
  if (n) std::memcpy(array.data.data(), bits.data(), n * 2);
  return array;
}

}  // namespace npy
}  // namespace bnorm
