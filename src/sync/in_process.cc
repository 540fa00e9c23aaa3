// SPDX-License-Identifier: Apache-2.0
// InProcessGroup: AllGather as two generation-counted barriers around a
// shared table of per-rank slots (write your slot, wait for everyone, read
// every slot, wait again before anyone may write the next call's slot).
#include "src/sync/in_process.h"

#include <condition_variable>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>

#include "bnorm/error.hpp"

namespace bnorm {

struct InProcessGroup::Shared {
  int size = 0;
  std::chrono::milliseconds timeout;
  std::mutex mutex;
  std::condition_variable cv;
  int arrived = 0;
  uint64_t generation = 0;
  bool broken = false;
  std::vector<std::vector<char>> slots;

  // Waits for every rank; throws on a timeout or a broken group.
  void Barrier(std::unique_lock<std::mutex>& lock, int rank) {
    if (broken) throw Error(ErrorCode::kInvalidArgument, "in-process group is broken");
    const uint64_t mine = generation;
    if (++arrived == size) {
      arrived = 0;
      ++generation;
      cv.notify_all();
      return;
    }
    const bool met = cv.wait_for(lock, timeout, [&] { return generation != mine || broken; });
    if (!met || broken) {
      broken = true;
      cv.notify_all();
      throw Error(ErrorCode::kInvalidArgument,
                  "in-process rank " + std::to_string(rank) + " waited " +
                      std::to_string(timeout.count()) +
                      " ms in a collective that another rank did not join");
    }
  }
};

namespace {

class InProcessCommunicator : public Communicator {
 public:
  InProcessCommunicator(std::shared_ptr<InProcessGroup::Shared> shared, int rank)
      : shared_(std::move(shared)), rank_(rank) {}

  int rank() const override { return rank_; }
  int size() const override { return shared_->size; }

  void AllGather(const void* send, size_t bytes, void* receive) override {
    InProcessGroup::Shared& s = *shared_;
    std::unique_lock<std::mutex> lock(s.mutex);
    s.slots[static_cast<size_t>(rank_)].assign(static_cast<const char*>(send),
                                               static_cast<const char*>(send) + bytes);
    s.Barrier(lock, rank_);
    bool same = true;
    for (const std::vector<char>& slot : s.slots) same = same && slot.size() == bytes;
    if (same) {
      char* out = static_cast<char*>(receive);
      for (size_t r = 0; r < s.slots.size(); ++r) {
        if (bytes != 0) std::memcpy(out + r * bytes, s.slots[r].data(), bytes);
      }
    }
    s.Barrier(lock, rank_);
    if (!same) {
      throw Error(ErrorCode::kInvalidArgument,
                  "in-process AllGather: the ranks passed different byte counts");
    }
  }

 private:
  std::shared_ptr<InProcessGroup::Shared> shared_;
  int rank_;
};

}  // namespace

InProcessGroup::InProcessGroup(int size, std::chrono::milliseconds timeout)
    : shared_(std::make_shared<Shared>()) {
  if (size < 1) {
    throw Error(ErrorCode::kInvalidArgument,
                "in-process group size is " + std::to_string(size) + "; expected >= 1");
  }
  shared_->size = size;
  shared_->timeout = timeout;
  shared_->slots.resize(static_cast<size_t>(size));
}

std::shared_ptr<Communicator> InProcessGroup::Rank(int r) const {
  if (r < 0 || r >= shared_->size) {
    throw Error(ErrorCode::kInvalidArgument, "in-process rank " + std::to_string(r) +
                                                 " is outside 0.." +
                                                 std::to_string(shared_->size - 1));
  }
  return std::make_shared<InProcessCommunicator>(shared_, r);
}

std::vector<std::exception_ptr> RunRanks(
    int size, const std::function<void(int, const std::shared_ptr<Communicator>&)>& body) {
  const InProcessGroup group(size);
  std::vector<std::exception_ptr> errors(static_cast<size_t>(size));
  std::vector<std::thread> threads;
  for (int r = 0; r < size; ++r) {
    threads.emplace_back([&, r] {
      try {
        body(r, group.Rank(r));
      } catch (...) {
        errors[static_cast<size_t>(r)] = std::current_exception();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  return errors;
}

}  // namespace bnorm
