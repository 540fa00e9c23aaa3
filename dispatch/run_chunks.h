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
        lanes_(lanes),
        chunk_(max_vectors * lanes),
        long_runs_(full >= chunk_),
        pieces_(long_runs_ ? (full + chunk_ - 1) / chunk_ : 1),
        runs_per_chunk_(long_runs_ || full == 0 ? 1 : chunk_ / full),
        count_(long_runs_ ? runs * pieces_ : (runs + runs_per_chunk_ - 1) / runs_per_chunk_) {}

  size_t count() const { return full_ == 0 ? 0 : count_; }

  RunChunk operator[](size_t k) const {
    if (long_runs_) {
      const size_t i0 = k % pieces_ * chunk_;
      return RunChunk{k / pieces_ * stride_ + i0, 1, std::min(chunk_, full_ - i0) / lanes_};
    }
    const size_t r0 = k * runs_per_chunk_;
    return RunChunk{r0 * stride_, std::min(runs_per_chunk_, runs_ - r0), full_ / lanes_};
  }

 private:
  size_t runs_, full_, stride_, lanes_, chunk_;
  bool long_runs_;
  size_t pieces_, runs_per_chunk_, count_;
};

}  // namespace dispatch
}  // namespace bnorm

#endif  // BNORM_DISPATCH_RUN_CHUNKS_H_
