// SPDX-License-Identifier: Apache-2.0
// bnorm-bench's timing (see timing.h).
#include "tools/bench/timing.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace bnorm {
namespace bench {
namespace {

Stats Summarize(std::vector<double> times) {
  std::sort(times.begin(), times.end());
  const size_t n = times.size();
  Stats s;
  s.calls = n;
  s.median = n % 2 == 1 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
  s.p10 = times[static_cast<size_t>(0.1 * static_cast<double>(n - 1))];
  s.p90 = times[static_cast<size_t>(std::ceil(0.9 * static_cast<double>(n - 1)))];
  s.min = times.front();
  s.max = times.back();
  return s;
}

}  // namespace

std::vector<Stats> MeasureInTurns(const Policy& policy,
                                  const std::vector<std::function<void()>>& calls) {
  const double counted_time = std::max(10e-3, policy.min_time / 4.0);
  std::vector<std::vector<double>> times(calls.size());
  const double min_time = policy.min_time * static_cast<double>(calls.size());
  const Clock::time_point start = Clock::now();
  auto done = [&] {
    for (const std::vector<double>& t : times) {
      if (static_cast<int>(t.size()) < policy.repeat) return false;
    }
    return SecondsSince(start) >= min_time || times[0].size() >= 10000000;
  };
  while (!done()) {
    for (size_t k = 0; k < calls.size(); ++k) {
      const Clock::time_point warm_start = Clock::now();
      for (int i = 0; i < 2 || SecondsSince(warm_start) < 20e-3; ++i) calls[k]();
      const Clock::time_point counted_start = Clock::now();
      for (int i = 0; i < 3 || SecondsSince(counted_start) < counted_time; ++i) {
        const Clock::time_point t0 = Clock::now();
        calls[k]();
        times[k].push_back(SecondsSince(t0));
      }
    }
  }
  std::vector<Stats> stats;
  for (std::vector<double>& t : times) stats.push_back(Summarize(std::move(t)));
  return stats;
}

double BestOf(const std::function<void()>& call) {
  double best = 1e300, total = 0.0;
  for (int i = 0; i < 3 && total < 0.3; ++i) {
    const Clock::time_point t0 = Clock::now();
    call();
    const double t = SecondsSince(t0);
    best = std::min(best, t);
    total += t;
  }
  return best;
}

}  // namespace bench
}  // namespace bnorm
