// SPDX-License-Identifier: Apache-2.0
// How the channels-first reductions (moments, the backward's sums) cut one
// channel's whole vectors into chunks: a piece of one long run, or several
// short runs together, each at most a fixed number of vectors. The chunks and
// their order are fixed by the geometry, so the results do not depend on who
// walks them.
#ifndef BNORM_DISPATCH_RUN_CHUNKS_H_
#define BNORM_DISPATCH_RUN_CHUNKS_H_

#include <algorithm>
#include <cstddef>

namespace bnorm {
namespace dispatch {

// One chunk: `runs` runs of `vectors` whole vectors, starting `offset`
// elements into the channel (runs `stride` apart).
struct RunChunk {
  size_t offset = 0;
  size_t runs = 0;
  size_t vectors = 0;
};

// The chunks of `runs` runs whose first `full` values (a multiple of `lanes`)
// are whole vectors, runs `stride` elements apart, at most `max_vectors`
// vectors of `lanes` values per chunk.
class RunChunks {
 public:
  RunChunks(size_t runs, size_t full, size_t stride, size_t max_vectors, size_t lanes)
      : runs_(runs),
        full_(full),
        stride_(stride),
        chunk_(max_vectors * lanes),
        long_runs_(full >= chunk_),
        pieces_(long_runs_ ? (full + chunk_ - 1) / chunk_ : 1),
        runs_per_chunk_(long_runs_ || full == 0 ? 1 : chunk_ / full),
        count_(long_runs_ ? runs * pieces_ : (runs + runs_per_chunk_ - 1) / runs_per_chunk_),
        chunk_vectors_(max_vectors),
        full_vectors_(lanes == 0 ? 0 : full / lanes) {}

  // The chunks in groups that end where runs end: the pieces of one long run,
  // or one chunk of several short runs. Group `i` is chunks
  // [GroupBegin(i), GroupBegin(i + 1)); every group has as many.
  size_t groups() const { return full_ == 0 ? 0 : long_runs_ ? runs_ : count_; }
  size_t GroupBegin(size_t i) const { return long_runs_ ? i * pieces_ : i; }

  // Piece `piece` of group `group` (chunk GroupBegin(group) + piece), without
  // a division: the walk below builds one per chunk.
  RunChunk At(size_t group, size_t piece) const {
    if (long_runs_) {
      const size_t i0 = piece * chunk_;
      return RunChunk{group * stride_ + i0, 1,
                      std::min(chunk_vectors_, full_vectors_ - piece * chunk_vectors_)};
    }
    const size_t r0 = group * runs_per_chunk_;
    return RunChunk{r0 * stride_, std::min(runs_per_chunk_, runs_ - r0), full_vectors_};
  }

 private:
  size_t runs_, full_, stride_, chunk_;
  bool long_runs_;
  size_t pieces_, runs_per_chunk_, count_, chunk_vectors_, full_vectors_;
};

// The walk of the channels-first reductions over `channels` channels that
// share one chunk plan (a block's channels, whose runs in one row lie one
// after another): group by group, and within a group channel by channel, so
// memory is read forward along the rows where channel by channel it jumps a
// row stride per run (and a page per run, more than the TLB holds). Each
// channel still sees its own chunks in order: its results do not change.
// Calls f(channel, k, chunk, ahead_channel, ahead) for every chunk k; ahead
// is the chunk `ahead_steps` steps later in the walk, of channel
// ahead_channel, to prefetch, or ahead_channel == channels at the end and
// with ahead_steps == 0.
// From memory, four chunks (up to 16 KiB) ahead: one core's moments of
// 32x256x56x56 in turns, 2 chunks ahead 0.85x the time of a channel at a time,
// 4 ahead 0.58x, 8 ahead 0.66x.
constexpr size_t kChunksAhead = 4;

// Channels a channels-first reduction walks together: their per-lane state
// stays in L1 (the kernels), and the tiles of src/ops/runs_block.h hold as
// many.
constexpr size_t kInterleavedChannels = 16;

template <class F>
void ForEachInterleavedChunk(const RunChunks& chunks, size_t channels, size_t ahead_steps,
                             const F& f) {
  const size_t groups = chunks.groups();
  if (groups == 0) return;
  const size_t per_group = chunks.GroupBegin(1);  // chunks per group and channel
  // The walk's position ahead_steps on (group, channel, piece), moved along.
  size_t ahead_group = 0, ahead_channel = 0, ahead_piece = 0;
  const auto advance = [&] {
    if (++ahead_piece < per_group) return;
    ahead_piece = 0;
    if (++ahead_channel < channels) return;
    ahead_channel = 0;
    ++ahead_group;
  };
  for (size_t i = 0; i < ahead_steps && ahead_group < groups; ++i) advance();
  for (size_t g = 0; g < groups; ++g) {
    for (size_t c = 0; c < channels; ++c) {
      for (size_t piece = 0; piece < per_group; ++piece) {
        const bool ahead = ahead_steps > 0 && ahead_group < groups;
        f(c, g * per_group + piece, chunks.At(g, piece), ahead ? ahead_channel : channels,
          ahead ? chunks.At(ahead_group, ahead_piece) : RunChunk{});
        if (ahead) advance();
      }
    }
  }
}

}  // namespace dispatch
}  // namespace bnorm

#endif  // BNORM_DISPATCH_RUN_CHUNKS_H_
