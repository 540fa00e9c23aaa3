// SPDX-License-Identifier: Apache-2.0
// The C ABI of synchronized batch norm: bnorm_communicator's callbacks over
// in-process ranks give the C++ layer's results bitwise, a failing all_gather
// becomes the call's status and message on that rank, a local error on one
// rank is the same status everywhere, and bnorm_layer_set_communicator's own
// checks write nothing on failure.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "bnorm/batch_norm.hpp"
#include "bnorm/bnorm.h"
#include "src/sync/in_process.h"
#include "tests/c_api_test_util.h"
#include "tests/test_util.h"

namespace bnorm {
namespace test {
namespace {

// A C++ communicator behind the C callbacks; `fail` makes all_gather fail.
struct Transport {
  std::shared_ptr<Communicator> comm;
  bool fail = false;
  int destroyed = 0;
};

bnorm_communicator Callbacks(Transport* t) {
  bnorm_communicator c{};
  c.user = t;
  c.rank = [](void* user) { return static_cast<Transport*>(user)->comm->rank(); };
  c.size = [](void* user) { return static_cast<Transport*>(user)->comm->size(); };
  c.all_gather = [](void* user, const void* send, size_t bytes, void* receive, char* message,
                    size_t message_size) {
    Transport* t = static_cast<Transport*>(user);
    if (t->fail) {
      std::snprintf(message, message_size, "link down");
      return BNORM_STATUS_UNSUPPORTED;
    }
    t->comm->AllGather(send, bytes, receive);
    return BNORM_STATUS_OK;
  };
  c.destroy = [](void* user) { ++static_cast<Transport*>(user)->destroyed; };
  return c;
}

bnorm_options SynchronizedOptions() {
  bnorm_options o;
  EXPECT_EQ(bnorm_options_init(&o), BNORM_STATUS_OK);
  o.synchronized = 1;
  return o;
}

TEST(CApiSync, OptionsInitIsNotSynchronized) {
  bnorm_options o;
  ASSERT_EQ(bnorm_options_init(&o), BNORM_STATUS_OK);
  EXPECT_EQ(o.synchronized, 0);
  EXPECT_EQ(o.synchronized_gradients, 0);
}

TEST(CApiSync, CallbacksGiveTheCppLayerBitwise) {
  const int64_t shape[] = {4, 3};
  const std::vector<float> global = Normal(2 * 12, 1.0, 2.0, 5);
  std::vector<std::vector<float>> c_y(2), cpp_y(2), c_dx(2), cpp_dx(2);
  std::vector<std::vector<float>> c_mean(2, std::vector<float>(3)), cpp_mean(2);
  std::vector<std::vector<float>> c_dgamma(2, std::vector<float>(3)), cpp_dgamma(2);
  const auto run_c = [&](int r, const std::shared_ptr<Communicator>& comm) {
    Transport t{comm};
    const bnorm_communicator callbacks = Callbacks(&t);
    const bnorm_options o = SynchronizedOptions();
    bnorm_layer* layer = nullptr;
    ASSERT_EQ(bnorm_layer_create(&o, &layer), BNORM_STATUS_OK);
    ASSERT_EQ(bnorm_layer_set_communicator(layer, &callbacks), BNORM_STATUS_OK);
    const float* x = global.data() + 12 * r;
    c_y[r].resize(12);
    c_dx[r].resize(12);
    ASSERT_EQ(bnorm_layer_forward(layer, x, c_y[r].data(), BNORM_DTYPE_F32, shape, 2, 1),
              BNORM_STATUS_OK)
        << bnorm_last_error();
    ASSERT_EQ(bnorm_layer_backward(layer, x, x, c_dx[r].data(), BNORM_DTYPE_F32, shape, 2),
              BNORM_STATUS_OK)
        << bnorm_last_error();
    ASSERT_EQ(bnorm_layer_get_state(layer, BNORM_STATE_MOVING_MEAN, c_mean[r].data(), 3),
              BNORM_STATUS_OK);
    ASSERT_EQ(bnorm_layer_get_gradient(layer, BNORM_GRADIENT_GAMMA, c_dgamma[r].data(), 3),
              BNORM_STATUS_OK);
    bnorm_layer_destroy(layer);
    EXPECT_EQ(t.destroyed, 1);
  };
  const auto run_cpp = [&](int r, const std::shared_ptr<Communicator>& comm) {
    Options o;
    o.synchronized = true;
    BatchNorm layer(o);
    layer.set_communicator(comm);
    const float* x = global.data() + 12 * r;
    cpp_y[r].resize(12);
    cpp_dx[r].resize(12);
    layer.Forward(x, cpp_y[r].data(), {4, 3}, true);
    layer.Backward(x, x, cpp_dx[r].data(), {4, 3});
    cpp_mean[r] = layer.moving_mean();
    cpp_dgamma[r] = layer.gradient_gamma();
  };
  for (const std::exception_ptr& e : RunRanks(2, run_c)) EXPECT_FALSE(e);
  for (const std::exception_ptr& e : RunRanks(2, run_cpp)) EXPECT_FALSE(e);
  for (int r = 0; r < 2; ++r) {
    EXPECT_TRUE(SameBits(c_y[r], cpp_y[r])) << r;
    EXPECT_TRUE(SameBits(c_dx[r], cpp_dx[r])) << r;
    EXPECT_TRUE(SameBits(c_mean[r], cpp_mean[r])) << r;
    EXPECT_TRUE(SameBits(c_dgamma[r], cpp_dgamma[r])) << r;
  }
  EXPECT_TRUE(SameBits(c_mean[0], c_mean[1]));
}

TEST(CApiSync, LocalErrorIsTheSameStatusOnEveryRank) {
  const int64_t shape[] = {2, 3};
  std::vector<std::string> messages(3);
  std::vector<bnorm_status> statuses(3);
  std::vector<std::vector<float>> y(3, std::vector<float>(6, -7.0f));
  const auto run = [&](int r, const std::shared_ptr<Communicator>& comm) {
    Transport t{comm};
    const bnorm_communicator callbacks = Callbacks(&t);
    const bnorm_options o = SynchronizedOptions();
    bnorm_layer* layer = nullptr;
    ASSERT_EQ(bnorm_layer_create(&o, &layer), BNORM_STATUS_OK);
    ASSERT_EQ(bnorm_layer_set_communicator(layer, &callbacks), BNORM_STATUS_OK);
    const std::vector<float> x = Normal(6, 0.0, 1.0, 3);
    // Rank 1's y overlaps its x partially.
    std::vector<float> both(12);
    const float* in = r == 1 ? both.data() : x.data();
    float* out = r == 1 ? both.data() + 1 : y[r].data();
    statuses[r] = bnorm_layer_forward(layer, in, out, BNORM_DTYPE_F32, shape, 2, 1);
    messages[r] = bnorm_last_error();
    bnorm_layer_destroy(layer);
  };
  for (const std::exception_ptr& e : RunRanks(3, run)) EXPECT_FALSE(e);
  for (int r = 0; r < 3; ++r) {
    EXPECT_EQ(statuses[r], BNORM_STATUS_INVALID_ARGUMENT) << r;
    EXPECT_EQ(messages[r], messages[0]) << r;
  }
  EXPECT_NE(messages[0].find("synchronized BatchNorm: rank 1 failed: "), std::string::npos)
      << messages[0];
  EXPECT_EQ(y[0], std::vector<float>(6, -7.0f));  // nothing written
}

TEST(CApiSync, AFailingAllGatherIsTheCallsStatus) {
  Transport t{InProcessGroup(2).Rank(0)};
  t.fail = true;
  const bnorm_communicator callbacks = Callbacks(&t);
  const bnorm_options o = SynchronizedOptions();
  bnorm_layer* layer = nullptr;
  ASSERT_EQ(bnorm_layer_create(&o, &layer), BNORM_STATUS_OK);
  ASSERT_EQ(bnorm_layer_set_communicator(layer, &callbacks), BNORM_STATUS_OK);
  const int64_t shape[] = {2, 3};
  const std::vector<float> x = Normal(6, 0.0, 1.0, 3);
  std::vector<float> y(6);
  EXPECT_STATUS(BNORM_STATUS_UNSUPPORTED,
                bnorm_layer_forward(layer, x.data(), y.data(), BNORM_DTYPE_F32, shape, 2, 1),
                "bnorm_layer_forward: the communicator's all_gather failed (unsupported): link "
                "down");
  size_t channels = 0;
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, bnorm_layer_channels(layer, &channels), "not built");
  bnorm_layer_destroy(layer);
}

TEST(CApiSync, SetCommunicatorChecksWriteNothing) {
  Transport t{InProcessGroup(2).Rank(1)};
  bnorm_communicator callbacks = Callbacks(&t);
  bnorm_options plain;
  ASSERT_EQ(bnorm_options_init(&plain), BNORM_STATUS_OK);
  bnorm_layer* layer = nullptr;
  ASSERT_EQ(bnorm_layer_create(&plain, &layer), BNORM_STATUS_OK);
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, bnorm_layer_set_communicator(layer, &callbacks),
                "synchronized=0; expected synchronized=1");
  bnorm_layer_destroy(layer);
  const bnorm_options o = SynchronizedOptions();
  ASSERT_EQ(bnorm_layer_create(&o, &layer), BNORM_STATUS_OK);
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, bnorm_layer_set_communicator(nullptr, &callbacks),
                "layer is null");
  bnorm_communicator missing = callbacks;
  missing.all_gather = nullptr;
  EXPECT_STATUS(BNORM_STATUS_NULL_POINTER, bnorm_layer_set_communicator(layer, &missing),
                "communicator->all_gather is null");
  bnorm_communicator bad = callbacks;
  bad.rank = [](void*) { return 2; };
  EXPECT_STATUS(BNORM_STATUS_INVALID_ARGUMENT, bnorm_layer_set_communicator(layer, &bad),
                "rank 2 of size 2");
  EXPECT_EQ(t.destroyed, 0);  // a rejected communicator stays the caller's
  ASSERT_EQ(bnorm_layer_set_communicator(layer, &callbacks), BNORM_STATUS_OK);
  ASSERT_EQ(bnorm_layer_set_communicator(layer, nullptr), BNORM_STATUS_OK);
  EXPECT_EQ(t.destroyed, 1);
  bnorm_layer_destroy(layer);
  EXPECT_EQ(t.destroyed, 1);
}

}  // namespace
}  // namespace test
}  // namespace bnorm
