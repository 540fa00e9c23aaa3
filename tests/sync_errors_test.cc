// SPDX-License-Identifier: Apache-2.0
// The agreement of a synchronized layer's ranks (src/sync/agreement.h): a
// local error on one rank, or ranks that disagree on the channel count, the
// options, the ghost batches or the call sequence, give every rank the same
// bnorm::Error (code and message), and every rank returns: no rank is left
// waiting in a collective.
#include <gtest/gtest.h>

#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "bnorm/batch_norm.hpp"
#include "bnorm/error.hpp"
#include "src/sync/in_process.h"
#include "tests/test_util.h"

namespace bnorm {
namespace test {
namespace {

Options Synchronized() {
  Options o;
  o.synchronized = true;
  return o;
}

// Runs body on `ranks` ranks and expects every one to throw the same Error
// with `code` and `message`.
void ExpectSameErrorEverywhere(
    int ranks, const std::function<void(int, const std::shared_ptr<Communicator>&)>& body,
    ErrorCode code, const std::string& message) {
  const std::vector<std::exception_ptr> errors = RunRanks(ranks, body);
  for (int r = 0; r < ranks; ++r) {
    const std::exception_ptr& e = errors[static_cast<size_t>(r)];
    ASSERT_TRUE(e) << "rank " << r << " did not throw";
    try {
      std::rethrow_exception(e);
    } catch (const Error& error) {
      EXPECT_EQ(error.code(), code) << "rank " << r;
      EXPECT_EQ(std::string(error.what()), message) << "rank " << r;
    } catch (const std::exception& other) {
      ADD_FAILURE() << "rank " << r << " threw another exception: " << other.what();
    }
  }
}

// One training forward of a [batch, channels] slice.
void Train(BatchNorm* layer, int64_t batch, int64_t channels, uint64_t seed) {
  const std::vector<float> x = Normal(static_cast<size_t>(batch * channels), 1.0, 2.0, seed);
  std::vector<float> y(x.size());
  layer->Forward(x.data(), y.data(), {batch, channels}, true);
}

TEST(SynchronizedAgreement, MismatchedChannelCount) {
  ExpectSameErrorEverywhere(
      3,
      [](int r, const std::shared_ptr<Communicator>& comm) {
        BatchNorm layer(Synchronized());
        layer.set_communicator(comm);
        Train(&layer, 4, r == 1 ? 3 : 4, 1);
      },
      ErrorCode::kShapeMismatch,
      "synchronized BatchNorm: the ranks disagree on the channel count: rank 0 has 4, rank 1 "
      "has 3");
}

TEST(SynchronizedAgreement, MismatchedOptions) {
  ExpectSameErrorEverywhere(
      4,
      [](int r, const std::shared_ptr<Communicator>& comm) {
        Options o = Synchronized();
        if (r >= 2) o.momentum = 0.9f;
        BatchNorm layer(o);
        layer.set_communicator(comm);
        Train(&layer, 2, 3, 1);
      },
      ErrorCode::kInvalidArgument,
      "synchronized BatchNorm: the ranks disagree on momentum: rank 0 has 0.99000001, rank 2 "
      "has 0.899999976, rank 3 has 0.899999976");
  ExpectSameErrorEverywhere(
      2,
      [](int r, const std::shared_ptr<Communicator>& comm) {
        Options o = Synchronized();
        o.renorm = r == 1;
        BatchNorm layer(o);
        layer.set_communicator(comm);
        Train(&layer, 2, 3, 1);
      },
      ErrorCode::kInvalidArgument,
      "synchronized BatchNorm: the ranks disagree on the options center, scale, renorm, "
      "adjustment, synchronized_gradients: rank 0 has center+scale, rank 1 has "
      "center+scale+renorm");
}

TEST(SynchronizedAgreement, MismatchedGhostBatches) {
  ExpectSameErrorEverywhere(
      3,
      [](int r, const std::shared_ptr<Communicator>& comm) {
        Options o = Synchronized();
        o.virtual_batch_size = 2;
        BatchNorm layer(o);
        layer.set_communicator(comm);
        Train(&layer, r == 2 ? 6 : 4, 3, 1);
      },
      ErrorCode::kShapeMismatch,
      "synchronized BatchNorm: the ranks disagree on the number of ghost batches (batch / "
      "virtual_batch_size): rank 0 has 2, rank 2 has 3");
}

TEST(SynchronizedAgreement, MismatchedCallSequence) {
  // Rank 1 trains a second layer over the same ranks that the others have
  // already trained once.
  ExpectSameErrorEverywhere(
      3,
      [](int r, const std::shared_ptr<Communicator>& comm) {
        BatchNorm layer(Synchronized()), other(Synchronized());
        layer.set_communicator(comm);
        other.set_communicator(comm);
        Train(&layer, 2, 3, 1);
        Train(r == 1 ? &other : &layer, 2, 3, 2);
      },
      ErrorCode::kInvalidArgument,
      "synchronized BatchNorm: the ranks disagree on the call sequence number: rank 0 has 1, "
      "rank 1 has 0");
}

TEST(SynchronizedAgreement, ForwardAgainstBackward) {
  ExpectSameErrorEverywhere(
      2,
      [](int r, const std::shared_ptr<Communicator>& comm) {
        BatchNorm layer(Synchronized());
        layer.set_communicator(comm);
        Train(&layer, 2, 3, 1);
        if (r == 0) {
          Train(&layer, 2, 3, 2);
        } else {
          const std::vector<float> x = Normal(6, 1.0, 2.0, 1);
          std::vector<float> dx(6);
          layer.Backward(x.data(), x.data(), dx.data(), {2, 3});
        }
      },
      ErrorCode::kInvalidArgument,
      "synchronized BatchNorm: the ranks disagree on the call: rank 0 has a training Forward, "
      "rank 1 has a Backward");
}

TEST(SynchronizedAgreement, LocalForwardErrorOnOneRank) {
  ExpectSameErrorEverywhere(
      3,
      [](int r, const std::shared_ptr<Communicator>& comm) {
        BatchNorm layer(Synchronized());
        layer.set_communicator(comm);
        std::vector<float> y(8);
        const std::vector<float> x = Normal(8, 1.0, 2.0, 1);
        layer.Forward(r == 2 ? nullptr : x.data(), y.data(), {4, 2}, true);
      },
      ErrorCode::kNullPointer,
      "synchronized BatchNorm: rank 2 failed: x is null for a shape of 8 elements");
}

// The adjustment is a user callback: asked for before the ranks agree, so
// one that throws (any exception) on one rank fails every rank alike.
TEST(SynchronizedAgreement, AnAdjustmentThatThrowsOnOneRank) {
  ExpectSameErrorEverywhere(
      3,
      [](int r, const std::shared_ptr<Communicator>& comm) {
        Options o = Synchronized();
        o.adjustment = [r](const std::vector<int64_t>&, float*, float*) {
          if (r == 1) throw std::runtime_error("no adjustment for this shape");
        };
        BatchNorm layer(o);
        layer.set_communicator(comm);
        Train(&layer, 2, 3, 1);
      },
      ErrorCode::kInvalidArgument,
      "synchronized BatchNorm: rank 1 failed: the adjustment threw: no adjustment for this "
      "shape");
  ExpectSameErrorEverywhere(
      2,
      [](int r, const std::shared_ptr<Communicator>& comm) {
        Options o = Synchronized();
        o.adjustment = [r](const std::vector<int64_t>&, float*, float*) {
          if (r == 0) throw Error(ErrorCode::kShapeMismatch, "adjustment: rank 0 refuses");
        };
        BatchNorm layer(o);
        layer.set_communicator(comm);
        Train(&layer, 2, 3, 1);
      },
      ErrorCode::kShapeMismatch,
      "synchronized BatchNorm: rank 0 failed: adjustment: rank 0 refuses");
}

TEST(SynchronizedAgreement, LocalErrorsOfSeveralRanks) {
  ExpectSameErrorEverywhere(
      3,
      [](int r, const std::shared_ptr<Communicator>& comm) {
        Options o = Synchronized();
        o.virtual_batch_size = 3;
        BatchNorm layer(o);
        layer.set_communicator(comm);
        Train(&layer, r == 0 ? 3 : 3 + 2 * r, 2, 1);
      },
      ErrorCode::kInvalidArgument,
      "synchronized BatchNorm: rank 1 failed: virtual_batch_size 3 does not divide the batch "
      "size 5 (shape[0]); rank 2 failed: virtual_batch_size 3 does not divide the batch size 7 "
      "(shape[0])");
}

TEST(SynchronizedAgreement, LocalBackwardErrorOnOneRank) {
  ExpectSameErrorEverywhere(
      2,
      [](int r, const std::shared_ptr<Communicator>& comm) {
        BatchNorm layer(Synchronized());
        layer.set_communicator(comm);
        Train(&layer, 2, 3, 1);
        const std::vector<float> x = Normal(6, 1.0, 2.0, 1);
        std::vector<float> dx(6);
        layer.Backward(x.data(), x.data(), dx.data(), r == 0 ? Shape{2, 3} : Shape{3, 2});
      },
      ErrorCode::kShapeMismatch,
      "synchronized BatchNorm: rank 1 failed: dy has shape [3, 2]; expected the last Forward's "
      "shape [2, 3]");
}

TEST(SynchronizedAgreement, AFailedCallLeavesTheLayerUnbuiltAndInStep) {
  // After a common error every rank's next call agrees again.
  const std::vector<std::exception_ptr> errors =
      RunRanks(2, [](int r, const std::shared_ptr<Communicator>& comm) {
        BatchNorm layer(Synchronized());
        layer.set_communicator(comm);
        try {
          Train(&layer, r == 0 ? 2 : 0, r == 0 ? 3 : 4, 1);
        } catch (const Error&) {
          if (layer.built()) throw;
        }
        Train(&layer, 2, 3, 2);
        if (layer.moving_mean()[0] == 0.0f) throw Error(ErrorCode::kInvalidArgument, "no update");
      });
  for (const std::exception_ptr& e : errors) EXPECT_FALSE(e);
}

}  // namespace
}  // namespace test
}  // namespace bnorm
