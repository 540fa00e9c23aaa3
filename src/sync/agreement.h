// SPDX-License-Identifier: Apache-2.0
// The header exchange that precedes every data collective of a synchronized
// layer: each rank all-gathers a fixed-size CallHeader (what call this is,
// its shape, the options that change the math, and whether the rank already
// failed locally), and every rank checks the same gathered headers the same
// way. Any local error or disagreement becomes the same bnorm::Error on every
// rank, before anyone enters a data collective whose size or meaning would
// differ: no rank is left waiting.
#ifndef BNORM_SRC_SYNC_AGREEMENT_H_
#define BNORM_SRC_SYNC_AGREEMENT_H_

#include <cstddef>
#include <cstdint>

#include "bnorm/batch_norm.hpp"
#include "bnorm/communicator.hpp"
#include "bnorm/error.hpp"

namespace bnorm {

enum class CallKind : uint32_t { kForward = 1, kBackward = 2 };

// 256 bytes, the same layout on every rank (the ranks run the same bnorm
// build: kHeaderMagic carries the layout's version). Plain data: it travels
// as bytes.
struct CallHeader {
  uint32_t magic = 0;
  uint32_t kind = 0;
  uint64_t sequence = 0;  // the layer's collective calls before this one
  uint64_t channels = 0;
  uint64_t groups = 0;  // ghost batches (0: this rank's batch is empty)
  uint64_t count = 0;   // this rank's values per group
  // The options that change the collective math, as bits (floats) and flags.
  uint32_t momentum = 0, epsilon = 0, renorm_momentum = 0, flags = 0;
  int64_t virtual_batch_size = 0;  // 0: none
  uint64_t axes_hash = 0;          // the axis list and renorm_clipping
  int32_t error_code = 0;          // 0: no local error, else its ErrorCode
  char message[180] = {};          // the local error's text (truncated)
};
static_assert(sizeof(CallHeader) == 256, "CallHeader is a fixed 256 bytes on every rank");

// What the ranks agreed on: the groups of every non-empty rank and the
// values per group over all ranks.
struct Agreement {
  size_t groups = 0;
  uint64_t count = 0;
};

// This rank's header for call `sequence` of `kind` with these options (shape
// fields left for the caller).
CallHeader MakeHeader(CallKind kind, uint64_t sequence, const Options& options);

// Records a local error (its code and text) in the header.
void RecordError(const Error& error, CallHeader* header);

// All-gathers the headers and checks them. Throws on every rank the same
// bnorm::Error: the local errors of the ranks that failed (with the lowest
// failing rank's code), or the first field on which ranks disagree with
// rank 0, naming the ranks and their values. Non-empty ranks must agree on the
// groups; empty ones (groups 0) take theirs.
Agreement Agree(Communicator& comm, const CallHeader& mine);

}  // namespace bnorm

#endif  // BNORM_SRC_SYNC_AGREEMENT_H_
