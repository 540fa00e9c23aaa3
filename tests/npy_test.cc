// SPDX-License-Identifier: Apache-2.0
// The .npy reader and writer: round trips for every dtype and rank and the exact
// bytes NumPy expects; then, in the bad-input matrix (BadNpy), one test per
// malformed-file rule (the bad bytes are written here, by hand).
#include "src/io/npy.h"

#include <dirent.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "bnorm/error.hpp"
#include "gtest/gtest.h"
#include "tests/bad_input.h"
#include "tools/common/random.h"

namespace bnorm {
namespace npy {
namespace {

constexpr ElementType kAllDTypes[] = {ElementType::kFloat32, ElementType::kFloat64,
                                      ElementType::kFloat16, ElementType::kBFloat16};

class NpyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "/npy_test.XXXXXX";
    ASSERT_NE(mkdtemp(&pattern[0]), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    for (const std::string& name : ListDir()) std::remove((dir_ + "/" + name).c_str());
    rmdir(dir_.c_str());
  }

  std::string PathOf(const std::string& name) const { return dir_ + "/" + name; }

  std::vector<std::string> ListDir() const {
    std::vector<std::string> names;
    if (DIR* d = opendir(dir_.c_str())) {
      while (dirent* e = readdir(d)) {
        const std::string name = e->d_name;
        if (name != "." && name != "..") names.push_back(name);
      }
      closedir(d);
    }
    return names;
  }

  // Writes raw bytes to `name` and returns the path.
  std::string WriteBytes(const std::string& name, const std::string& bytes) const {
    const std::string path = PathOf(name);
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }

  // A .npy file of format `major`.0 with this header dict (padded to 64 bytes
  // and ended with '\n', as NumPy does) and payload.
  static std::string Npy(const std::string& dict, const std::string& payload, int major = 1) {
    const size_t prefix = major == 1 ? 10 : 12;
    std::string header = dict;
    while ((prefix + header.size() + 1) % 64 != 0) header += ' ';
    header += '\n';
    std::string bytes = std::string("\x93NUMPY", 6) + static_cast<char>(major) + '\0';
    for (size_t i = 0; i < prefix - 8; ++i) {
      bytes += static_cast<char>((header.size() >> (8 * i)) & 0xFF);
    }
    return bytes + header + payload;
  }

  std::string dir_;
};

std::string Floats(const std::vector<float>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * 4);
}

// Values of `dtype` from a seeded generator, exactly representable in it.
Array RandomArray(ElementType dtype, const std::vector<int64_t>& shape,
                  bnorm::testing::Random* rng) {
  size_t count = 1;
  for (int64_t d : shape) count *= static_cast<size_t>(d);
  std::vector<float> values(count);
  for (float& v : values) v = static_cast<float>(rng->Uniform(-100.0, 100.0));
  return FromFloats(values, shape, dtype);
}

TEST_F(NpyTest, RoundTripsEveryDTypeAndRankZeroToFive) {
  bnorm::testing::Random rng(42);
  const std::vector<std::vector<int64_t>> shapes = {
      {}, {5}, {2, 3}, {2, 1, 3}, {1, 2, 3, 2}, {2, 1, 2, 1, 3}, {0, 3}, {4, 0, 1}};
  for (ElementType dtype : kAllDTypes) {
    for (const auto& shape : shapes) {
      const Array written = RandomArray(dtype, shape, &rng);
      const std::string path = PathOf("a.npy");
      Write(path, written);
      const Array read = Read(path);
      EXPECT_EQ(read.dtype, dtype) << Name(dtype);
      EXPECT_EQ(read.shape, shape) << Name(dtype);
      EXPECT_EQ(read.data, written.data) << Name(dtype) << " rank " << shape.size();
      EXPECT_EQ(read.count(), written.count());
    }
  }
}

TEST_F(NpyTest, ZeroDimensionalArrayHoldsOneElement) {
  const Array a = FromFloats({3.5f}, {}, ElementType::kFloat64);
  EXPECT_EQ(a.count(), 1u);
  Write(PathOf("s.npy"), a);
  const Array b = Read(PathOf("s.npy"));
  EXPECT_TRUE(b.shape.empty());
  EXPECT_EQ(ToFloats(b), std::vector<float>{3.5f});
}

TEST_F(NpyTest, WritesTheHeaderNumPyWrites) {
  Write(PathOf("h.npy"), FromFloats({1, 2, 3, 4, 5, 6}, {2, 3}, ElementType::kFloat32));
  std::ifstream in(PathOf("h.npy"), std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  // NumPy's own file for this array: a 118-byte header, the payload at 128.
  ASSERT_EQ(bytes.size(), 128u + 24u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  EXPECT_EQ(bytes.substr(8, 2), std::string("\x76\x00", 2));
  EXPECT_EQ(bytes.substr(10, 118), dict + std::string(118 - dict.size() - 1, ' ') + "\n");
  EXPECT_EQ(bytes.substr(128), Floats({1, 2, 3, 4, 5, 6}));
}

TEST_F(NpyTest, OneDimensionalShapeIsWrittenAsOneTuple) {
  Write(PathOf("v.npy"), FromFloats({1, 2, 3}, {3}, ElementType::kFloat16));
  std::ifstream in(PathOf("v.npy"), std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(bytes.find("{'descr': '<f2', 'fortran_order': False, 'shape': (3,), }"),
            std::string::npos);
}

TEST_F(NpyTest, ReadsFormatVersionsTwoAndThree) {
  for (int major : {2, 3}) {
    const std::string path =
        WriteBytes("v.npy", Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
                                Floats({1.5f, -2.0f}), major));
    const Array a = Read(path);
    EXPECT_EQ(a.shape, std::vector<int64_t>{2});
    EXPECT_EQ(ToFloats(a), (std::vector<float>{1.5f, -2.0f}));
  }
}

TEST_F(NpyTest, HeadersBeyond64KiBUseFormatVersionTwo) {
  // 25000 dimensions of size 1 spell a 75000-byte shape tuple.
  const std::vector<int64_t> shape(25000, 1);
  Write(PathOf("wide.npy"), FromFloats({2.5f}, shape, ElementType::kFloat32));
  std::ifstream in(PathOf("wide.npy"), std::ios::binary);
  char preamble[8];
  in.read(preamble, 8);
  EXPECT_EQ(preamble[6], 2);
  const Array a = Read(PathOf("wide.npy"));
  EXPECT_EQ(a.shape, shape);
  EXPECT_EQ(ToFloats(a), std::vector<float>{2.5f});
}

TEST_F(NpyTest, AcceptsAnyValidDictSpelling) {
  const std::vector<std::string> dicts = {
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)}",
      "{\"shape\": (2,), \"descr\": \"<f4\", \"fortran_order\": False}",
      "{ 'fortran_order' :False ,'shape':( 2 , ) ,'descr':'<f4' , }",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2,), }",
  };
  for (const std::string& dict : dicts) {
    const Array a = Read(WriteBytes("d.npy", Npy(dict, Floats({7, 8}))));
    EXPECT_EQ(ToFloats(a), (std::vector<float>{7, 8})) << dict;
  }
}

TEST_F(NpyTest, WriteReplacesAtomicallyAndLeavesNoTemporaryFiles) {
  const std::string path = PathOf("out.npy");
  Write(path, FromFloats({1, 2}, {2}, ElementType::kFloat32));
  Write(path, FromFloats({3, 4, 5}, {3}, ElementType::kFloat64));
  EXPECT_EQ(ToFloats(Read(path)), (std::vector<float>{3, 4, 5}));
  EXPECT_EQ(ListDir(), std::vector<std::string>{"out.npy"});
}

TEST_F(NpyTest, WriteErrorsNameThePath) {
  const std::string missing_dir = PathOf("no/such/dir/x.npy");
  try {
    Write(missing_dir, FromFloats({1}, {1}, ElementType::kFloat32));
    ADD_FAILURE() << "writing into a missing directory did not fail";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(missing_dir), std::string::npos) << e.what();
  }
  Array inconsistent = FromFloats({1, 2}, {2}, ElementType::kFloat32);
  inconsistent.shape = {3};
  EXPECT_THROW(Write(PathOf("bad.npy"), inconsistent), Error);
  EXPECT_TRUE(ListDir().empty());
}

TEST_F(NpyTest, FromFloatsChecksTheCount) {
  EXPECT_THROW(FromFloats({1, 2, 3}, {2, 2}, ElementType::kFloat32), Error);
  EXPECT_THROW(FromBits16({1, 2}, {3}, ElementType::kFloat16), Error);
  EXPECT_THROW(FromBits16({1}, {1}, ElementType::kFloat32), Error);
  EXPECT_THROW(ToBits16(FromFloats({1}, {1}, ElementType::kFloat64)), Error);
}

// Every finite float16 / bfloat16 value survives float32 and back unchanged,
// and NaNs stay NaN.
TEST_F(NpyTest, SixteenBitConversionsAreExactForRepresentableValues) {
  for (ElementType dtype : {ElementType::kFloat16, ElementType::kBFloat16}) {
    std::vector<uint16_t> bits(65536);
    for (size_t i = 0; i < bits.size(); ++i) bits[i] = static_cast<uint16_t>(i);
    const Array a = FromBits16(bits, {65536}, dtype);
    const std::vector<float> values = ToFloats(a);
    const std::vector<uint16_t> back = ToBits16(FromFloats(values, {65536}, dtype));
    for (size_t i = 0; i < bits.size(); ++i) {
      if (std::isnan(values[i])) {
        const Array nan = FromBits16({back[i]}, {}, dtype);
        EXPECT_TRUE(std::isnan(ToFloats(nan)[0])) << Name(dtype) << " bits " << i;
      } else {
        ASSERT_EQ(back[i], bits[i]) << Name(dtype) << " value " << values[i];
      }
    }
  }
}

TEST_F(NpyTest, SixteenBitConversionsMatchKnownPatterns) {
  const auto half = [](float v) { return ToBits16(FromFloats({v}, {}, ElementType::kFloat16))[0]; };
  const auto bf16 = [](float v) {
    return ToBits16(FromFloats({v}, {}, ElementType::kBFloat16))[0];
  };
  EXPECT_EQ(half(1.0f), 0x3C00);
  EXPECT_EQ(half(-2.0f), 0xC000);
  EXPECT_EQ(half(65504.0f), 0x7BFF);
  EXPECT_EQ(half(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(half(65520.0f), 0x7C00);                      // rounds up to infinity
  EXPECT_EQ(half(1.0f + std::ldexp(1.0f, -11)), 0x3C00);  // tie to even
  EXPECT_EQ(half(1.0f + 3 * std::ldexp(1.0f, -11)),
            0x3C02);  // tie to even, upward
  EXPECT_EQ(bf16(1.0f), 0x3F80);
  EXPECT_EQ(bf16(-3.0f), 0xC040);
  EXPECT_EQ(bf16(1.0f + std::ldexp(1.0f, -8)), 0x3F80);  // tie to even
  EXPECT_EQ(bf16(std::numeric_limits<float>::infinity()), 0x7F80);
}

TEST_F(NpyTest, Float64WidensExactlyAndNarrowsToNearest) {
  const Array a = FromFloats({0.1f, -1e30f}, {2}, ElementType::kFloat64);
  double first;
  std::memcpy(&first, a.data.data(), 8);
  EXPECT_EQ(first, static_cast<double>(0.1f));
  EXPECT_EQ(ToFloats(a), (std::vector<float>{0.1f, -1e30f}));
}

}  // namespace
}  // namespace npy
}  // namespace bnorm

// Unreadable and unwritable .npy files, in the bad-input matrix: each fails
// with a bnorm::Error naming the path and the problem, and leaves the output
// array (or the file on disk) as it was.
namespace bnorm {
namespace bad_input {
namespace {

class BadNpy : public BadInput {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "bnorm_bad_npy_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }
  void TearDown() override {
    for (const std::string& p : written_) std::remove(p.c_str());
  }

  std::string Write(const std::string& name, const std::string& bytes) {
    const std::string path = dir_ + "_" + name;
    std::ofstream(path, std::ios::binary)
        .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    written_.push_back(path);
    return path;
  }

  // A .npy file: magic, version, header length, the header padded to 64
  // bytes, then the payload.
  static std::string Npy(const std::string& dict, const std::string& payload, int major = 1) {
    const size_t length_bytes = major == 1 ? 2 : 4;
    const size_t prefix = 8 + length_bytes;
    std::string header = dict;
    const size_t total = (prefix + header.size() + 1 + 63) / 64 * 64;
    header.append(total - prefix - header.size() - 1, ' ');
    header += '\n';
    std::string out = std::string("\x93NUMPY", 6);
    out += static_cast<char>(major);
    out += '\0';
    for (size_t i = 0; i < length_bytes; ++i)
      out += static_cast<char>((header.size() >> (8 * i)) & 0xFF);
    return out + header + payload;
  }

  static std::string Dict(const std::string& descr, const std::string& shape,
                          bool fortran = false) {
    return "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") +
           ", 'shape': " + shape + ", }";
  }

  // Read must fail naming the path and `what`; `out` keeps its old contents.
  void ExpectUnreadable(const std::string& path, const Names& what) {
    npy::Array out = npy::FromFloats({1.0f, 2.0f}, {2}, npy::ElementType::kFloat32);
    const npy::Array before = out;
    Names names = what;
    names.push_back(path);
    Snapshot none;
    EXPECT_REJECTED(none, names, out = npy::Read(path));
    EXPECT_EQ(out.data, before.data);
    EXPECT_EQ(out.shape, before.shape);
  }

  std::string dir_;
  std::vector<std::string> written_;
};

TEST_F(BadNpy, Truncated) {
  const std::string good = Npy(Dict("<f4", "(2, 3)"), std::string(24, '\0'));
  ExpectUnreadable(Write("empty.npy", ""), {"truncated"});
  ExpectUnreadable(Write("preamble.npy", good.substr(0, 7)), {"truncated"});
  ExpectUnreadable(Write("length.npy", good.substr(0, 9)), {"truncated"});
  // Version 2.0 needs a 4-byte length; only 2 are there.
  ExpectUnreadable(Write("length2.npy", std::string("\x93NUMPY\x02\x00\x10\x00", 10)),
                   {"truncated"});
  ExpectUnreadable(Write("header.npy", good.substr(0, 40)), {"truncated"});
  ExpectUnreadable(Write("payload.npy", good.substr(0, good.size() - 1)), {"truncated payload"});
  ExpectUnreadable(Write("nopayload.npy", good.substr(0, good.size() - 24)), {"truncated payload"});
  ExpectUnreadable(dir_ + "_missing.npy", {"cannot open"});
}

TEST_F(BadNpy, WrongMagic) {
  std::string bytes = Npy(Dict("<f4", "(1,)"), std::string(4, '\0'));
  bytes[1] = 'M';
  ExpectUnreadable(Write("magic.npy", bytes), {"wrong magic"});
  ExpectUnreadable(Write("text.npy", "hello, world, this is not numpy"), {"wrong magic"});
}

TEST_F(BadNpy, UnsupportedVersion) {
  const std::string good = Npy(Dict("<f4", "(1,)"), std::string(4, '\0'));
  std::string v9 = good, v4 = good, v11 = good;
  v9[6] = 9;
  v4[6] = 4;
  v11[7] = 1;
  ExpectUnreadable(Write("v9.npy", v9), {"version"});
  ExpectUnreadable(Write("v4.npy", v4), {"unsupported .npy format version 4.0"});
  ExpectUnreadable(Write("v11.npy", v11), {"unsupported .npy format version 1.1"});
}

TEST_F(BadNpy, HugeHeaderLength) {
  std::string v2 = std::string("\x93NUMPY\x02\x00", 8) + std::string("\xF0\xFF\xFF\xFF", 4) +
                   Dict("<f4", "(1,)");
  ExpectUnreadable(Write("v2.npy", v2), {"header length", "absurd"});
  std::string v1 =
      std::string("\x93NUMPY\x01\x00", 8) + std::string("\xFF\xFF", 2) + Dict("<f4", "(1,)");
  ExpectUnreadable(Write("v1.npy", v1), {"header length", "runs past the end of the file"});
}

TEST_F(BadNpy, UnsupportedDtype) {
  for (const char* descr :
       {"<i4", ">f4", "|b1", "<c8", "<f16", "|u1", "|u2", "|O", "f4", ">f8", ""}) {
    SCOPED_TRACE(descr);
    ExpectUnreadable(Write("dtype.npy", Npy(Dict(descr, "(2,)"), std::string(8, '\0'))),
                     {"unsupported dtype"});
  }
  ExpectUnreadable(Write("structured.npy",
                         Npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }",
                             std::string(8, '\0'))),
                   {"unsupported dtype"});
}

TEST_F(BadNpy, FortranOrder) {
  ExpectUnreadable(Write("fortran.npy", Npy(Dict("<f4", "(2, 3)", true), std::string(24, '\0'))),
                   {"fortran_order is True"});
}

TEST_F(BadNpy, ShapeDisagreesWithThePayload) {
  ExpectUnreadable(Write("short.npy", Npy(Dict("<f4", "(2, 3)"), std::string(20, '\0'))),
                   {"truncated payload: shape [2, 3] of float32 needs 24 bytes, the file has 20"});
  ExpectUnreadable(Write("long.npy", Npy(Dict("<f4", "(2, 3)"), std::string(28, '\0'))),
                   {"trailing data", "[2, 3]"});
  ExpectUnreadable(Write("scalar.npy", Npy(Dict("<f8", "()"), std::string(9, '\0'))),
                   {"trailing data: shape [] of float64 needs 8 bytes, the file has 9"});
  ExpectUnreadable(Write("f8.npy", Npy(Dict("<f8", "(3,)"), std::string(12, '\0'))),
                   {"truncated payload"});
  ExpectUnreadable(Write("negative.npy", Npy(Dict("<f4", "(-1, 3)"), "")), {"negative dimension"});
  ExpectUnreadable(Write("overflow.npy", Npy(Dict("<f4", "(4611686018427387904, 8)"), "")),
                   {"shape"});
  ExpectUnreadable(Write("elements.npy", Npy(Dict("<f4", "(4294967296, 4294967296)"), "")),
                   {"more elements than fit"});
  ExpectUnreadable(Write("int64.npy", Npy(Dict("<f4", "(99999999999999999999,)"), "")),
                   {"overflows int64"});
  ExpectUnreadable(Write("notuple.npy", Npy(Dict("<f4", "(3)"), std::string(12, '\0'))), {"tuple"});
}

TEST_F(BadNpy, MalformedHeaderDict) {
  ExpectUnreadable(Write("dup.npy", Npy("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, "
                                        "'shape': (1,), }",
                                        std::string(4, '\0'))),
                   {"duplicate"});
  ExpectUnreadable(
      Write("missing.npy", Npy("{'descr': '<f4', 'shape': (1,), }", std::string(4, '\0'))),
      {"fortran_order"});
  ExpectUnreadable(Write("garbage.npy", Npy("[1, 2, 3]", std::string(4, '\0'))), {"malformed"});
  const std::vector<std::string> dicts = {
      "",
      "not a dict",
      "{'descr': '<f4', 'fortran_order': False}",
      "{'descr': '<f4', 'shape': (1,)}",
      "{'fortran_order': False, 'shape': (1,)}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}",
      "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}",
      "{'descr': '<f4', 'fortran_order': false, 'shape': (1,)}",
      "{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (1)}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': [1]}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (1.0,)}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (1,,)}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} junk",
      "{'descr': '<f4' 'fortran_order': False, 'shape': (1,)}",
      "{'descr: '<f4', 'fortran_order': False, 'shape': (1,)}",
      "{descr: '<f4', 'fortran_order': False, 'shape': (1,)}",
      "{'descr': <f4, 'fortran_order': False, 'shape': (1,)}",
  };
  for (const std::string& dict : dicts) {
    SCOPED_TRACE(dict);
    ExpectUnreadable(Write("bad.npy", Npy(dict, std::string(4, '\0'))), {"malformed header"});
  }
}

// A failed Write leaves an existing file exactly as it was.
TEST_F(BadNpy, FailedWriteLeavesTheOldFile) {
  const std::string path = Write("keep.npy", Npy(Dict("<f4", "(1,)"), std::string(4, '\x11')));
  std::ifstream in(path, std::ios::binary);
  const std::string before((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  npy::Array bad{npy::ElementType::kFloat32, {3}, std::vector<uint8_t>(8)};
  Snapshot none;
  EXPECT_REJECTED(none, Names({path, "bytes"}), npy::Write(path, bad));
  EXPECT_REJECTED(none, Names({"nonexistent"}),
                  npy::Write(dir_ + "_nonexistent/dir/x.npy",
                             npy::FromFloats({1.0f}, {1}, npy::ElementType::kFloat32)));
  std::ifstream again(path, std::ios::binary);
  const std::string after((std::istreambuf_iterator<char>(again)),
                          std::istreambuf_iterator<char>());
  EXPECT_EQ(before, after);
}

}  // namespace
}  // namespace bad_input
}  // namespace bnorm
