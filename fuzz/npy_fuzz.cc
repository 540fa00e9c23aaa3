// SPDX-License-Identifier: Apache-2.0
// Fuzzes the .npy reader: arbitrary bytes must give either a bnorm::Error or a
// valid array (a known dtype, a non-negative shape whose element count times
// the item size is exactly the payload), and a valid array must survive a
// write / read round trip byte for byte. Any other exception, crash, leak or
// sanitizer report is a finding.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bnorm/error.hpp"
#include "src/io/npy.h"

namespace {

// A file name unique to this process, on tmpfs when there is one (removed
// after each input: libFuzzer may leave without running atexit handlers).
std::string TempPath(const char* tag) {
  const char* dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  return std::string(dir) + "/bnorm_npy_fuzz." + std::to_string(getpid()) + "." + tag + ".npy";
}

const std::string& InPath() {
  static const std::string path = TempPath("in");
  return path;
}

const std::string& OutPath() {
  static const std::string path = TempPath("out");
  return path;
}

void Check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "npy_fuzz: invariant violated: %s\n", what);
    std::abort();
  }
}

void WriteBytes(const std::string& path, const uint8_t* data, size_t size) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  Check(f != nullptr, "cannot create the temporary input file");
  Check(size == 0 || std::fwrite(data, 1, size, f) == size, "cannot write the input file");
  std::fclose(f);
}

void CheckValid(const bnorm::npy::Array& array) {
  using bnorm::npy::ElementType;
  Check(array.dtype == ElementType::kFloat32 || array.dtype == ElementType::kFloat64 ||
            array.dtype == ElementType::kFloat16 || array.dtype == ElementType::kBFloat16,
        "unknown dtype");
  for (int64_t d : array.shape) Check(d >= 0, "negative dimension accepted");
  Check(array.count() * bnorm::npy::ItemSize(array.dtype) == array.data.size(),
        "payload size disagrees with the shape");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& in_path = InPath();
  const std::string& out_path = OutPath();
  WriteBytes(in_path, data, size);
  bnorm::npy::Array array;
  try {
    array = bnorm::npy::Read(in_path);
    std::remove(in_path.c_str());
  } catch (const bnorm::Error& e) {
    std::remove(in_path.c_str());
    // A clean rejection must say which file it was.
    Check(std::string(e.what()).rfind(in_path, 0) == 0,
          "error message does not start with the path");
    return 0;
  }
  CheckValid(array);
  // Conversions of a valid array never fail.
  const std::vector<float> values = bnorm::npy::ToFloats(array);
  Check(values.size() == array.count(), "ToFloats count");
  if (bnorm::npy::ItemSize(array.dtype) == 2) {
    Check(bnorm::npy::ToBits16(array).size() == array.count(), "ToBits16 count");
  }
  // Round trip: what we write reads back identical.
  bnorm::npy::Write(out_path, array);
  const bnorm::npy::Array again = bnorm::npy::Read(out_path);
  std::remove(out_path.c_str());
  Check(again.dtype == array.dtype, "round trip changed the dtype");
  Check(again.shape == array.shape, "round trip changed the shape");
  Check(again.data == array.data, "round trip changed the payload");
  return 0;
}
