// SPDX-License-Identifier: Apache-2.0
// The machinery of the bad-input matrix (bad_options_test.cc, bad_input_test.cc
// and the .npy cases of npy_test.cc): every bad call must throw bnorm::Error (not
// another exception type, not a crash) whose message names the argument, or is
// exactly the message a test gives (and, where a case states one, carries the
// ErrorCode the C ABI turns into its status), and must leave every output buffer and every
// state variable byte for byte as it was (snapshotted before the call, compared
// after). Calls that would read or write out of bounds if their check were
// missing run in a child process (a gtest death test), so that a crash shows as
// that case's failure with the sanitizer's report instead of ending the binary.
// Each case adds to a count printed at the end ("bad inputs tried").
// Included by one source file per test binary.
#ifndef BNORM_TESTS_BAD_INPUT_H_
#define BNORM_TESTS_BAD_INPUT_H_

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

#include "bnorm/batch_norm.hpp"
#include "bnorm/error.hpp"

namespace bnorm {
namespace bad_input {

// The bad inputs this binary tried.
inline int g_cases = 0;

using Shape = std::vector<int64_t>;

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// Copies of memory regions, compared byte for byte later.
class Snapshot {
 public:
  Snapshot& Add(const void* data, size_t bytes, std::string name) {
    const auto* p = static_cast<const uint8_t*>(data);
    regions_.push_back({data, std::vector<uint8_t>(p, p + bytes), std::move(name)});
    return *this;
  }
  template <class T>
  Snapshot& Add(const std::vector<T>& v, std::string name) {
    return Add(v.data(), v.size() * sizeof(T), std::move(name));
  }
  // Every variable the layer has (none before it is built).
  Snapshot& AddLayer(const BatchNorm& layer) {
    layer_ = &layer;
    layer_bytes_ = LayerBytes(layer);
    return *this;
  }

  ::testing::AssertionResult Unchanged() const {
    for (const Region& r : regions_) {
      // An empty region has nothing to compare (and memcmp must not see its null data).
      if (!r.bytes.empty() && std::memcmp(r.data, r.bytes.data(), r.bytes.size()) != 0) {
        return ::testing::AssertionFailure() << r.name << " changed after the failed call";
      }
    }
    if (layer_ != nullptr && LayerBytes(*layer_) != layer_bytes_) {
      return ::testing::AssertionFailure() << "the layer's state changed after the failed call";
    }
    return ::testing::AssertionSuccess();
  }

  static std::vector<std::vector<uint8_t>> LayerBytes(const BatchNorm& layer) {
    std::vector<std::vector<uint8_t>> state;
    if (!layer.built()) return state;
    const Options& o = layer.options();
    const auto add = [&](const std::vector<float>& v) {
      const auto* p = reinterpret_cast<const uint8_t*>(v.data());
      state.emplace_back(p, p + v.size() * sizeof(float));
    };
    add(layer.moving_mean());
    add(layer.moving_variance());
    if (o.scale) add(layer.gamma());
    if (o.center) add(layer.beta());
    if (o.renorm) {
      add(layer.moving_stddev());
      add(layer.renorm_mean());
      add(layer.renorm_stddev());
    }
    return state;
  }

 private:
  struct Region {
    const void* data;
    std::vector<uint8_t> bytes;
    std::string name;
  };
  std::vector<Region> regions_;
  const BatchNorm* layer_ = nullptr;
  std::vector<std::vector<uint8_t>> layer_bytes_;
};

// Whether `call` throws a bnorm::Error; its message goes to *message and, when
// `code` is given, the error must carry that code.
inline ::testing::AssertionResult ThrowsError(const std::function<void()>& call,
                                              std::string* message,
                                              std::optional<ErrorCode> code = std::nullopt) {
  try {
    call();
  } catch (const Error& e) {
    *message = e.what();
    if (code && e.code() != *code) {
      return ::testing::AssertionFailure()
             << "\"" << e.what() << "\" has code " << static_cast<int>(e.code()) << "; expected "
             << static_cast<int>(*code);
    }
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure()
           << "threw " << typeid(e).name() << " (\"" << e.what() << "\") instead of bnorm::Error";
  }
  return ::testing::AssertionFailure() << "the call was accepted";
}

// Whether `call` throws a bnorm::Error whose message contains every one of
// `names` (the argument, and where useful the value), with `code` if given.
inline ::testing::AssertionResult Rejects(const std::function<void()>& call,
                                          const std::vector<std::string>& names,
                                          std::optional<ErrorCode> code = std::nullopt) {
  std::string message;
  ::testing::AssertionResult thrown = ThrowsError(call, &message, code);
  if (!thrown) return thrown;
  for (const std::string& name : names) {
    if (message.find(name) == std::string::npos) {
      return ::testing::AssertionFailure()
             << "the message \"" << message << "\" does not name \"" << name << "\"";
    }
  }
  return ::testing::AssertionSuccess() << message;
}

// Whether `call` throws a bnorm::Error whose message is exactly `expected`.
inline ::testing::AssertionResult RejectsWithMessage(const std::function<void()>& call,
                                                     const std::string& expected) {
  std::string message;
  ::testing::AssertionResult thrown = ThrowsError(call, &message);
  if (!thrown) return thrown;
  if (message != expected) {
    return ::testing::AssertionFailure()
           << "the message is \"" << message << "\"; expected \"" << expected << "\"";
  }
  return ::testing::AssertionSuccess() << message;
}

// One bad call in this process: rejected with a message naming `names`, and
// `snapshot` unchanged.
#define EXPECT_REJECTED(snapshot, names, ...)          \
  do {                                                 \
    ++g_cases;                                         \
    EXPECT_TRUE(Rejects([&] { __VA_ARGS__; }, names)); \
    EXPECT_TRUE((snapshot).Unchanged());               \
  } while (false)

// EXPECT_REJECTED whose error must also carry `code` (an ErrorCode).
#define EXPECT_REJECTED_AS(snapshot, code, names, ...)       \
  do {                                                       \
    ++g_cases;                                               \
    EXPECT_TRUE(Rejects([&] { __VA_ARGS__; }, names, code)); \
    EXPECT_TRUE((snapshot).Unchanged());                     \
  } while (false)

// One bad call in this process: rejected with exactly `message`, and
// `snapshot` unchanged.
#define EXPECT_REJECTED_WITH_MESSAGE(snapshot, message, ...)        \
  do {                                                              \
    ++g_cases;                                                      \
    EXPECT_TRUE(RejectsWithMessage([&] { __VA_ARGS__; }, message)); \
    EXPECT_TRUE((snapshot).Unchanged());                            \
  } while (false)

// The same as EXPECT_REJECTED in a child process, for calls that would read or write out of
// bounds if the check were missing.
#define EXPECT_REJECTED_IN_CHILD(snapshot, names, ...)                               \
  do {                                                                               \
    ++g_cases;                                                                       \
    EXPECT_EXIT(                                                                     \
        {                                                                            \
          const ::testing::AssertionResult r = Rejects([&] { __VA_ARGS__; }, names); \
          const ::testing::AssertionResult u = (snapshot).Unchanged();               \
          if (!r) std::fprintf(stderr, "%s\n", r.message());                         \
          if (!u) std::fprintf(stderr, "%s\n", u.message());                         \
          std::fflush(stderr);                                                       \
          const bool passed = r && u;                                                \
          _exit(passed ? 0 : 1);                                                     \
        },                                                                           \
        ::testing::ExitedWithCode(0), "");                                           \
  } while (false)

using Names = std::vector<std::string>;

inline std::vector<float> Ramp(size_t n, float scale = 0.25f) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<float>(i % 7) * scale - 0.5f;
  return v;
}

inline size_t Count(const Shape& shape) {
  size_t n = 1;
  for (int64_t s : shape) n *= static_cast<size_t>(s);
  return n;
}

// A layer built for `shape` that has taken one training step, so that its
// state differs from the initial values.
inline BatchNorm TrainedLayer(const Options& options, const Shape& shape) {
  BatchNorm layer(options);
  const std::vector<float> x = Ramp(Count(shape));
  std::vector<float> y(x.size());
  layer.Forward(x.data(), y.data(), shape, true);
  return layer;
}

class BadInput : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // "threadsafe" re-executes this binary, which an emulated process cannot do.
    GTEST_FLAG_SET(death_test_style, BNORM_TEST_LAUNCHER[0] != '\0' ? "fast" : "threadsafe");
  }
};

// Prints the number of bad inputs this run tried.
class CountReporter : public ::testing::Environment {
 public:
  void TearDown() override { std::printf("%d bad inputs tried\n", g_cases); }
};
namespace {
[[maybe_unused]] const auto* const kReporter =
    ::testing::AddGlobalTestEnvironment(new CountReporter);
}  // namespace

}  // namespace bad_input
}  // namespace bnorm

#endif  // BNORM_TESTS_BAD_INPUT_H_
