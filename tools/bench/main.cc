// SPDX-License-Identifier: Apache-2.0
// bnorm-bench: how fast bnorm normalizes a batch and differentiates it,
// measured against the machine's own copy bandwidth in the same run (the roof
// of a memory-bound pass), the scalar float64 reference and, when built with
// it, oneDNN on the same buffers. DESIGN.md ("Memory traffic and the roof")
// says why these are the numbers that matter; --help lists the flags. This file is the run: the
// cases, thread counts, targets and modes in order, each timed in turns with
// the roof's copies (and oneDNN), then checked.
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "bnorm/error.hpp"
#include "bnorm/targets.hpp"
#include "src/plan/format.h"
#include "tools/bench/problem.h"
#include "tools/bench/reference.h"
#include "tools/bench/report.h"
#include "tools/bench/roof.h"
#include "tools/bench/settings.h"
#include "tools/bench/sweep.h"
#include "tools/bench/synchronized.h"
#include "tools/bench/threads.h"
#include "tools/bench/timing.h"
#include "tools/common/cli.h"
#include "tools/common/format.h"
#include "tools/common/parse.h"
#include "tools/common/tolerances.h"

#if BNORM_HAVE_ONEDNN
#include "tools/bench/onednn.h"
#endif

namespace bnorm {
namespace bench {
namespace {

// Targets to run: the dispatched best, the one forced, or every supported one.
std::vector<std::string> Targets(const Options& o) {
  ApplyTargetFromEnvironment();
  std::vector<std::string> targets;
  if (o.target == "all") {
    for (const TargetInfo& t : SupportedTargets()) targets.push_back(t.name);
    return targets;
  }
  if (!o.target.empty()) ForceTarget(o.target);
  targets.push_back(ActiveTarget());
  return targets;
}

int Run(const Options& o) {
  const std::vector<std::string> targets = Targets(o);
  std::vector<Case> cases;
  std::vector<std::unique_ptr<BatchNorm>> layers;  // per case, or null
  const double memory_bytes =
      static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGESIZE));
  const size_t value_bytes = SizeOf(o.dtype);
  // x and y, with the backward dy and dx, with a residual z.
  const size_t volumes = (o.backward ? 4 : 2) + (o.residual ? 1 : 0);
  const char* buffers = o.residual ? (o.backward ? "x, y, z, dy and dx" : "x, y and z")
                                   : (o.backward ? "x, y, dy and dx" : "x and y");
  for (const CaseSpec& spec : o.cases) {
    cases.push_back(MakeCase(spec));
    // The buffers must fit in memory with room to spare, or the timings measure paging.
    const double bytes =
        static_cast<double>(volumes * value_bytes * cases.back().geometry.elements());
    if (memory_bytes > 0.0 && bytes > 0.8 * memory_bytes) {
      Fail(spec.origin, "shape " + FormatList(spec.shape) + " needs " +
                            cli::FormatNumber(bytes * 1e-9) + " GB for " + buffers +
                            "; this machine has " + cli::FormatNumber(memory_bytes * 1e-9) + " GB");
    }
    layers.push_back(MakeLayer(cases.back(), o));
  }

  const Policy policy{o.repeat, o.min_time};
  const Clock::time_point start = Clock::now();
  const size_t total = cases.size() * o.threads.size();
  size_t done = 0;
  std::vector<Row> rows;
  std::vector<std::string> notes;
  const bool layer_training = (o.training || o.backward) && (o.virtual_batch_size || o.renorm);
  if (o.compare_onednn && layer_training) {
    notes.push_back(std::string("oneDNN has no ghost batches or batch renormalization: ") +
                    (!o.backward   ? "training"
                     : !o.training ? "backward"
                                   : "training and backward") +
                    " rows not compared");
  }
  if (!o.json) {
    PrintTableIntro(o, layer_training);
    PrintTableHeader(o.compare_onednn);
  }
  for (size_t case_index = 0; case_index < cases.size(); ++case_index) {
    const Case& c = cases[case_index];
    const std::string case_name = cli::FormatShape(c.shape) + " " + c.label;
    std::unique_ptr<Problem> problem;
    try {
      problem =
          std::make_unique<Problem>(c, o.dtype, layers[case_index].get(), o.backward, o.residual);
    } catch (const std::bad_alloc&) {
      throw std::runtime_error(
          "cannot allocate the buffers of shape " + FormatList(c.shape) + " (" +
          std::to_string(volumes * value_bytes * c.geometry.elements() / 1000000) + " MB)");
    }
    Problem& p = *problem;
    const ReferenceTiming ref = TimeReference(p, o.inference, o.training, o.backward);
    for (const std::string& note : ref.notes) notes.push_back(case_name + ": " + note);
    if (o.backward && p.layer != nullptr && ref.backward_seconds && ref.backward_dx.empty()) {
      notes.push_back(case_name +
                      ": backward dx not checked: with renorm it depends on the moving "
                      "statistics, which every training call updates");
    }
    // Passes oneDNN cannot run for this case (inference, training, backward): no
    // layer features, and maybe no kernel for the dtype.
    bool onednn_lacks[3] = {false, p.layer != nullptr, p.layer != nullptr};

    for (int thread_count : o.threads) {
      if (SecondsSince(start) > 2.0) {
        std::fprintf(stderr, "bnorm-bench: [%zu/%zu] %s, %d thread(s)\n", done + 1, total,
                     case_name.c_str(), thread_count);
      }
      ++done;
      const Threads threads(thread_count);
      const std::vector<Copy> copies = RoofCopies();
      // The copies take float counts: the same bytes as x, as floats.
      const size_t copy_floats = p.bytes() / sizeof(float);
      const double copy_bytes = 2.0 * sizeof(float) * static_cast<double>(copy_floats);
      bool onednn_done[3] = {false, false, false};
      for (const std::string& target : targets) {
        if (o.target == "all") ForceTarget(target);
        for (const Pass pass : kPasses) {
          const bool wanted[3] = {o.inference, o.training, o.backward};
          const int m = static_cast<int>(pass);
          if (!wanted[m]) continue;
          Row r;
          r.c = &c;
          r.mode = PassName(pass);
          r.threads = thread_count;
          r.target = ActiveTarget();
          r.volumes = p.Volumes(pass);
          r.bytes = static_cast<double>(r.volumes) * static_cast<double>(p.bytes());
          r.residual = pass == Pass::kInference && p.z != nullptr;
          // The residual's third volume is the pass's own, not a saving to note.
          if (!r.residual && r.volumes != PassVolumes(pass) && target == targets.front() &&
              thread_count == o.threads.front()) {
            notes.push_back(case_name + ": " + r.mode + " reads " +
                            (pass == Pass::kTraining ? "x" : "x and dy") +
                            " from memory once (channel by channel while cached): its traffic is "
                            "counted as " +
                            std::to_string(r.volumes) + " volumes, not " +
                            std::to_string(PassVolumes(pass)));
          }
          const Execution exec = threads.execution();
          const std::function<void()> kernel = [&p, exec, pass] {
            switch (pass) {
              case Pass::kInference:
                return p.Inference(exec);
              case Pass::kTraining:
                return p.Training(exec);
              case Pass::kBackward:
                return p.Backward(exec);
            }
          };
          // bnorm, the roof's copies and oneDNN take turns (see MeasureInTurns).
          std::vector<std::function<void()>> calls = {kernel};
          for (const Copy& copy : copies) {
            calls.push_back([&] {
              ParallelCopy(copy.fn, reinterpret_cast<const float*>(p.x.get()),
                           reinterpret_cast<float*>(p.y.get()), copy_floats, threads);
            });
          }
#if BNORM_HAVE_ONEDNN
          std::unique_ptr<OneDnnBatchNorm> onednn;
          if (o.compare_onednn && !onednn_done[m] && !onednn_lacks[m]) {
            onednn_done[m] = true;
            try {
              onednn = std::make_unique<OneDnnBatchNorm>(p, pass, thread_count);
              calls.push_back([&] { (*onednn)(); });
            } catch (const dnnl::error&) {
              onednn_lacks[m] = true;
              notes.push_back(
                  case_name + ": oneDNN " + std::to_string(DNNL_VERSION_MAJOR) + "." +
                  std::to_string(DNNL_VERSION_MINOR) + "." + std::to_string(DNNL_VERSION_PATCH) +
                  " has no " + cli::ShortName(o.dtype) + " " + r.mode +
                  (r.residual ? " batch_normalization and binary add" : " batch_normalization") +
                  " on this CPU: not compared");
            }
          }
#else
          (void)onednn_done;
          (void)onednn_lacks;
#endif
          const std::vector<Stats> stats = MeasureInTurns(policy, calls);
          r.stats = stats[0];
          for (size_t k = 0; k < copies.size(); ++k) {
            const double gbps = copy_bytes / stats[1 + k].median * 1e-9;
            (k == 0 ? r.roof.memcpy_gbps : r.roof.stream_gbps) = gbps;
            if (gbps > r.roof.gbps) {
              r.roof.gbps = gbps;
              r.roof.copy = copies[k].name;
            }
          }
          kernel();  // y (dx) holds bnorm's output for the checks below
          const std::optional<double> reference_seconds[3] = {
              ref.inference_seconds, ref.training_seconds, ref.backward_seconds};
          r.reference_seconds = reference_seconds[m];
          if (pass == Pass::kInference && ref.inference_seconds) {
            double diff = 0.0;
            if (InferenceError(p, ref, &diff) > testing::ForwardTolerance(p.dtype)) {
              notes.push_back("WARNING: " + case_name + " " + r.target +
                              ": bnorm inference differs from the reference by " +
                              cli::FormatNumber(diff));
            }
            r.reference_max_abs_diff = diff;
          }
          double dx_diff = 0.0;
          if (pass == Pass::kBackward) {
            if (const std::optional<double> error = BackwardError(p, ref, &dx_diff)) {
              if (!(*error <= BackwardTolerance(p.dtype))) {
                notes.push_back("WARNING: " + case_name + " " + r.target +
                                ": bnorm backward dx differs from the reference by " +
                                cli::FormatNumber(dx_diff) + " (" + cli::FormatNumber(*error) +
                                " of its max |dx|)");
              }
              r.reference_max_abs_diff = dx_diff;
            }
          }
#if BNORM_HAVE_ONEDNN
          if (onednn) {
            r.onednn_seconds = stats.back().median;
            // Both write y, or in the backward dx.
            uint8_t* out = pass == Pass::kBackward ? p.dx.get() : p.y.get();
            const Sample bnorm_out = TakeSample(p.dtype, out, p.elements);
            (*onednn)();
            double magnitude = 0.0;
            const double diff = SampleDiff(bnorm_out, p.dtype, out, &magnitude);
            r.onednn_max_abs_diff = diff;
            if (diff > testing::ForwardTolerance(p.dtype) * (1.0 + magnitude)) {
              notes.push_back("WARNING: " + case_name + " " + r.mode +
                              ": oneDNN and bnorm outputs differ by up to " +
                              cli::FormatNumber(diff) + " (not the same computation?)");
            }
          }
#endif
          if (!o.json) PrintTableRow(r, o.compare_onednn);
          rows.push_back(r);
        }
      }
      if (o.target == "all") ResetTarget();
    }
  }
  if (o.json) {
    PrintJson(rows, o);
  } else {
#if BNORM_HAVE_ONEDNN
    if (o.compare_onednn) {
      std::printf(
          "\noneDNN/bn: oneDNN seconds / bnorm seconds (> 1: bnorm is faster); "
          "oneDNN %d.%d.%d on the same buffers and thread count\n",
          DNNL_VERSION_MAJOR, DNNL_VERSION_MINOR, DNNL_VERSION_PATCH);
      if (o.residual) {
        std::printf(
            "oneDNN inference rows: batch_normalization, then a binary add of z with a ReLU "
            "post-op in place on y (no fused norm + add in this oneDNN)\n");
      }
    }
#endif
    if (!notes.empty()) std::printf("\n");
  }
  for (const std::string& note : notes) {
    std::fprintf(o.json ? stderr : stdout, "%s\n", note.c_str());
  }
  return 0;
}

}  // namespace
}  // namespace bench
}  // namespace bnorm

int main(int argc, char** argv) {
  try {
    int exit_status = 0;
    const std::optional<bnorm::bench::Options> options =
        bnorm::bench::ParseOptions(argc, argv, &exit_status);
    if (!options) return exit_status;
    if (options->list_cases) {
      bnorm::bench::PrintShapesFile(options->cases, options->dtype, bnorm::MachineCaches());
      return 0;
    }
    if (options->synchronized) return bnorm::bench::RunSynchronized(*options, &argc, &argv);
    return bnorm::bench::Run(*options);
  } catch (const bnorm::bench::UsageError& e) {
    std::fprintf(stderr, "bnorm-bench: %s\n", e.what());
    return bnorm::cli::kExitUsage;
  } catch (const bnorm::Error& e) {
    std::fprintf(stderr, "bnorm-bench: %s\n", e.what());
    return bnorm::cli::kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bnorm-bench: error: %s\n", e.what());
    return 1;
  }
}
