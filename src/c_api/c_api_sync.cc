// SPDX-License-Identifier: Apache-2.0
// The C ABI's communicator: bnorm_communicator's callbacks behind the C++
// bnorm::Communicator, and bnorm_layer_set_communicator.
#include <memory>
#include <string>

#include "bnorm/bnorm.h"
#include "bnorm/communicator.hpp"
#include "bnorm/error.hpp"
#include "src/c_api/common.h"

namespace {

using bnorm::capi::Fail;
using bnorm::capi::Guard;

// A callback's status as the code of the Error the layer call fails with.
bnorm::ErrorCode CodeOf(bnorm_status status) {
  const int v = static_cast<int>(status);
  return v >= BNORM_STATUS_NULL_POINTER && v <= BNORM_STATUS_UNSUPPORTED
             ? static_cast<bnorm::ErrorCode>(v)
             : bnorm::ErrorCode::kInvalidArgument;
}

class CallbackCommunicator : public bnorm::Communicator {
 public:
  CallbackCommunicator(const bnorm_communicator& c, int rank, int size)
      : c_(c), rank_(rank), size_(size) {}
  ~CallbackCommunicator() override {
    if (c_.destroy != nullptr) c_.destroy(c_.user);
  }
  CallbackCommunicator(const CallbackCommunicator&) = delete;
  CallbackCommunicator& operator=(const CallbackCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void AllGather(const void* send, size_t bytes, void* receive) override {
    char message[256] = {};
    const bnorm_status status =
        c_.all_gather(c_.user, send, bytes, receive, message, sizeof(message));
    if (status == BNORM_STATUS_OK) return;
    message[sizeof(message) - 1] = '\0';
    throw bnorm::Error(CodeOf(status), std::string("the communicator's all_gather failed (") +
                                           bnorm_status_string(status) + "): " + message);
  }

 private:
  bnorm_communicator c_;
  int rank_, size_;
};

}  // namespace

extern "C" {

bnorm_status bnorm_layer_set_communicator(bnorm_layer* layer,
                                          const bnorm_communicator* communicator) {
  static constexpr char kFunction[] = "bnorm_layer_set_communicator";
  return Guard(kFunction, [&] {
    BNORM_REQUIRE(layer);
    if (communicator == nullptr) {
      layer->impl.set_communicator(nullptr);
      return BNORM_STATUS_OK;
    }
    BNORM_REQUIRE(communicator->rank);
    BNORM_REQUIRE(communicator->size);
    BNORM_REQUIRE(communicator->all_gather);
    if (!layer->impl.options().synchronized) {
      return Fail(BNORM_STATUS_INVALID_ARGUMENT, kFunction,
                  "the layer's options have synchronized=0; expected synchronized=1");
    }
    const int size = communicator->size(communicator->user);
    const int rank = communicator->rank(communicator->user);
    if (size < 1 || rank < 0 || rank >= size) {
      return Fail(BNORM_STATUS_INVALID_ARGUMENT, kFunction,
                  "the communicator has rank %d of size %d; expected a size >= 1 and a rank in "
                  "0..size-1",
                  rank, size);
    }
    // Built before the layer takes it: on failure the caller still owns `user`.
    auto adapter = std::make_shared<CallbackCommunicator>(*communicator, rank, size);
    layer->impl.set_communicator(std::move(adapter));
    return BNORM_STATUS_OK;
  });
}

}  // extern "C"
