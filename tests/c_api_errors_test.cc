// SPDX-License-Identifier: Apache-2.0
// The C ABI's statuses and messages (bnorm.h): the version, one name per
// status, the ErrorCode to status map, the thread-local last error, and
// OUT_OF_MEMORY. This binary replaces the global operator new to fail
// allocations on demand, which ThreadSanitizer's runtime cannot link against
// (tools/run-sanitizers leaves it out of its TSan phase).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "bnorm/bnorm.h"
#include "bnorm/error.hpp"
#include "src/c_api/status.h"
#include "tests/c_api_test_util.h"

// While g_fail_allocations is set, every operator new of this process throws
// std::bad_alloc: that is how the tests reach OUT_OF_MEMORY.
namespace {
std::atomic<bool> g_fail_allocations{false};
}  // namespace

// GCC pairs ::operator new with ::operator delete and warns when it sees the
// replacement's free() after inlining; the pair is malloc/free here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(size_t size) {
  if (g_fail_allocations) throw std::bad_alloc();
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace bnorm {
namespace test {
namespace {

TEST(CApi, VersionMatchesTheHeader) {
  EXPECT_STREQ(bnorm_version(), BNORM_VERSION_STRING);
  EXPECT_EQ(BNORM_VERSION_MAJOR, 0);
  EXPECT_EQ(BNORM_VERSION_MINOR, 1);
  EXPECT_EQ(BNORM_VERSION_PATCH, 0);
  EXPECT_STREQ(BNORM_VERSION_STRING, "0.1.0");
}

TEST(CApi, EveryStatusHasItsOwnName) {
  std::vector<std::string> names;
  for (int s = BNORM_STATUS_OK; s <= BNORM_STATUS_INTERNAL; ++s) {
    const std::string name = bnorm_status_string(static_cast<bnorm_status>(s));
    EXPECT_NE(name, "unknown status") << s;
    for (const std::string& other : names) EXPECT_NE(name, other);
    names.push_back(name);
  }
  EXPECT_STREQ(bnorm_status_string(BNORM_STATUS_OK), "ok");
  EXPECT_STREQ(bnorm_status_string(static_cast<bnorm_status>(99)), "unknown status");
  EXPECT_STREQ(bnorm_status_string(static_cast<bnorm_status>(-1)), "unknown status");
}

// Guard answers a bnorm::Error with the status its code names, never by
// reading the message.
TEST(CApi, EachErrorCodeMapsToItsStatus) {
  EXPECT_EQ(StatusOf(ErrorCode::kNullPointer), BNORM_STATUS_NULL_POINTER);
  EXPECT_EQ(StatusOf(ErrorCode::kInvalidArgument), BNORM_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(StatusOf(ErrorCode::kShapeMismatch), BNORM_STATUS_SHAPE_MISMATCH);
  EXPECT_EQ(StatusOf(ErrorCode::kOverflow), BNORM_STATUS_OVERFLOW);
  EXPECT_EQ(StatusOf(ErrorCode::kUnsupported), BNORM_STATUS_UNSUPPORTED);
  EXPECT_EQ(StatusOf(static_cast<ErrorCode>(99)), BNORM_STATUS_INTERNAL);
  // The codes are numbered as the statuses.
  for (ErrorCode code :
       {ErrorCode::kNullPointer, ErrorCode::kInvalidArgument, ErrorCode::kShapeMismatch,
        ErrorCode::kOverflow, ErrorCode::kUnsupported}) {
    EXPECT_EQ(static_cast<int>(StatusOf(code)), static_cast<int>(code));
  }
}

TEST(CApi, LastErrorBelongsToTheFailingThread) {
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, bnorm_options_init(nullptr), "bnorm_options_init");
  std::string other;
  std::thread([&] {
    other = bnorm_last_error();
    bnorm_set_max_threads(-5);
  }).join();
  EXPECT_EQ(other, "");
  EXPECT_NE(std::strstr(bnorm_last_error(), "options is null"), nullptr) << bnorm_last_error();
}

TEST(CApi, SuccessLeavesTheLastErrorAlone) {
  EXPECT_EQ(bnorm_set_max_threads(-1), BNORM_STATUS_INVALID_ARGUMENT);
  const std::string message = bnorm_last_error();
  bnorm_options options;
  EXPECT_EQ(bnorm_options_init(&options), BNORM_STATUS_OK);
  EXPECT_EQ(message, bnorm_last_error());
}

TEST(CApi, OutOfMemoryIsAStatus) {
  bnorm_options options;
  ASSERT_EQ(bnorm_options_init(&options), BNORM_STATUS_OK);
  bnorm_layer* layer = nullptr;
  g_fail_allocations = true;
  const bnorm_status status = bnorm_layer_create(&options, &layer);
  g_fail_allocations = false;
  EXPECT_EQ(status, BNORM_STATUS_OUT_OF_MEMORY);
  EXPECT_STREQ(bnorm_last_error(), "bnorm_layer_create: out of memory");
  EXPECT_EQ(layer, nullptr);
}

}  // namespace
}  // namespace test
}  // namespace bnorm
