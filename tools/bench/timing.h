// SPDX-License-Identifier: Apache-2.0
// bnorm-bench's timing: calls timed in turns under one policy, summarized as median and
// percentiles, and the best-of-three timing of the slow references.
#ifndef BNORM_TOOLS_BENCH_TIMING_H_
#define BNORM_TOOLS_BENCH_TIMING_H_

#include <chrono>
#include <cstddef>
#include <functional>
#include <vector>

namespace bnorm {
namespace bench {

using Clock = std::chrono::steady_clock;

inline double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

struct Stats {
  double median = 0.0, p10 = 0.0, p90 = 0.0, min = 0.0, max = 0.0;
  size_t calls = 0;
};

struct Policy {
  int repeat = 20;
  double min_time = 0.2;
};

// Times single calls of each of `calls` in turns until every call has
// `repeat` timings and the calls took `min_time` seconds each on average. Taking turns puts every
// call under the same conditions: on a shared machine the memory bandwidth
// drifts from one second to the next, and ratios of medians taken at
// different moments would measure that drift.
//
// A turn is a burst of calls of one function. Its first calls, for 20 ms and
// two calls at least, are not counted: they run on the cache as the previous
// function left it (a streaming copy evicts the output, and refilling a cache
// of tens of megabytes takes several passes), whereas an engine calling a
// layer finds the cache as a steady stream of such calls leaves it. Then
// three calls at least, for a quarter of `min_time` (10 ms at least), count.
std::vector<Stats> MeasureInTurns(const Policy& policy,
                                  const std::vector<std::function<void()>>& calls);

// The best of up to three runs; one when a run takes long.
double BestOf(const std::function<void()>& call);

}  // namespace bench
}  // namespace bnorm

#endif  // BNORM_TOOLS_BENCH_TIMING_H_
