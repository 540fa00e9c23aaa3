// SPDX-License-Identifier: Apache-2.0
// bnorm-bench --synchronized. Every rank makes the same fixed number of collective calls
// (--repeat after a warm-up, no adaptive timing): a rank that stopped timing earlier than the
// others would leave them waiting in a collective. Synchronized and local steps alternate, so
// that both see the same machine.
#include "tools/bench/synchronized.h"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "bnorm/batch_norm.hpp"
#include "bnorm/communicator.hpp"
#include "src/plan/format.h"
#include "src/sync/agreement.h"
#include "tools/bench/problem.h"
#include "tools/bench/timing.h"
#include "tools/common/random.h"

#ifdef BNORM_BENCH_MPI
#include "bnorm/mpi.hpp"
#endif

namespace bnorm {
namespace bench {
namespace {

constexpr int kWarmup = 3;

std::vector<float> Normal(size_t n, double mean, double stddev, uint64_t seed) {
  testing::Random random(seed);
  std::vector<float> v(n);
  for (float& f : v) f = static_cast<float>(mean + stddev * random.Normal());
  return v;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// One training step of `layer` on the case's buffers, on the calling thread.
struct Step {
  std::vector<int64_t> shape;
  std::vector<float> x, dy, y, dx;
  void Run(BatchNorm* layer) {
    layer->Forward(x.data(), y.data(), shape, true, Execution::Serial());
    layer->Backward(x.data(), dy.data(), dx.data(), shape, Execution::Serial());
  }
};

// The header exchange and the merge of C channels' records, as a training forward makes them.
double CollectiveSeconds(Communicator& comm, size_t channels, int repeat) {
  std::vector<double> records(3 * channels, 1.0);
  std::vector<double> times;
  uint64_t sequence = 0;
  for (int i = 0; i < kWarmup + repeat; ++i) {
    CallHeader header = MakeHeader(CallKind::kForward, sequence++, bnorm::Options());
    header.channels = channels;
    header.groups = 1;
    header.count = 1;
    const Clock::time_point start = Clock::now();
    Agree(comm, header);
    comm.AllMergeMoments(records.data(), channels);
    if (i >= kWarmup) times.push_back(SecondsSince(start));
    std::fill(records.begin(), records.end(), 1.0);
  }
  return Median(times);
}

}  // namespace

int RunSynchronized(const Options& o, int* argc, char*** argv) {
  std::shared_ptr<Communicator> comm;
  int rank = 0, ranks = 1;
#ifdef BNORM_BENCH_MPI
  MPI_Init(argc, argv);
  comm = MakeMpiCommunicator(MPI_COMM_WORLD);
  rank = comm->rank();
  ranks = comm->size();
#else
  (void)argc;
  (void)argv;
#endif
  const bool print = rank == 0;
  if (print) {
    std::printf("synchronized training step (Forward + Backward, 1 thread per rank), %d rank%s%s\n",
                ranks, ranks == 1 ? "" : "s",
                comm ? "" : " (this bnorm-bench has no MPI: the local step twice)");
    std::printf("%-24s %-8s %14s %14s %9s\n", "local shape", "layout", "synchronized ms",
                "local ms", "overhead");
  }
  for (const CaseSpec& spec : o.cases) {
    const Case c = MakeCase(spec);
    bnorm::Options options;
    options.axis = c.axes;
    options.synchronized = true;
    BatchNorm synchronized(options), local(options);
    synchronized.set_communicator(comm);
    const size_t n = c.geometry.elements();
    Step step{c.memory_shape, Normal(n, 1.0, 2.0, 1 + rank), Normal(n, 0.0, 1.0, 100 + rank),
              std::vector<float>(n), std::vector<float>(n)};
    std::vector<double> sync_times, local_times;
    for (int i = 0; i < kWarmup + o.repeat; ++i) {
      Clock::time_point start = Clock::now();
      step.Run(&synchronized);
      if (i >= kWarmup) sync_times.push_back(SecondsSince(start));
      start = Clock::now();
      step.Run(&local);
      if (i >= kWarmup) local_times.push_back(SecondsSince(start));
    }
    const double s = Median(sync_times), l = Median(local_times);
    if (print) {
      std::printf("%-24s %-8s %14.3f %14.3f %8.1f%%\n", FormatList(c.memory_shape).c_str(),
                  c.label.c_str(), s * 1e3, l * 1e3, (s / l - 1.0) * 100.0);
    }
  }
  if (comm) {
    if (print)
      std::printf("\ncollective latency (header exchange + merge)\n%-8s %12s\n", "C", "us");
    for (size_t channels = 64; channels <= 2048; channels *= 2) {
      const double t = CollectiveSeconds(*comm, channels, o.repeat);
      if (print) std::printf("%-8zu %12.1f\n", channels, t * 1e6);
    }
  }
  std::fflush(stdout);
  comm.reset();
#ifdef BNORM_BENCH_MPI
  MPI_Finalize();
#endif
  return 0;
}

}  // namespace bench
}  // namespace bnorm
