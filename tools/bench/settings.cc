// SPDX-License-Identifier: Apache-2.0
// bnorm-bench's command line: the flags and their help (CLI11, tools/common/cli.h), and the
// shapes file.
#include "tools/bench/settings.h"

#include <oneapi/tbb/task_arena.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "src/plan/caches.h"
#include "tools/bench/sweep.h"
#include "tools/common/cli.h"
#include "tools/common/parse.h"

namespace bnorm {
namespace bench {
namespace {

constexpr char kDescription[] =
    R"(Times bnorm's batch normalization on one case or a sweep and prints each
result as GB/s on the minimum traffic, as a percentage of the machine's copy
roof measured in the same run, and as a speedup over the float64 reference.)";

constexpr char kFooter[] =
    R"(Traffic: inference reads x and writes y (2 elements per value: 8 bytes in f32,
4 in bf16/f16; with --residual it reads z too: 3 elements, 12 or 6 bytes),
training reads x twice and writes y (3 elements: 12 or 6 bytes), backward
reads x and dy twice and writes dx (5 elements: 20 or 10 bytes). The roof is
the copy bandwidth of the same buffers with the same threads (x's bytes read,
as many written): the faster of a memcpy and a streaming-store copy. The
copies, bnorm and oneDNN are timed in turns, call after call, so that all see
the same machine. Times below 1 ms print in us.

The cache sweep and PyTorch on the same cases (tools/pytorch-bench.py takes
the list as its --shapes-file; tools/plot-cache-sweep.py draws % of roof
against working set from both JSON outputs):
  bnorm-bench --sweep cache --list-cases > sweep.txt
  bnorm-bench --sweep cache --compare onednn --json > sweep.json
  tools/pytorch-bench.py --shapes-file sweep.txt --json > sweep-torch.json
  tools/plot-cache-sweep.py sweep.json --pytorch sweep-torch.json -o sweep.png)";

Layout ParseLayout(const std::string& text) {
  return cli::ParseChoice<Layout>(
      text, "layout", {{"nhwc", Layout::kNhwc}, {"nchw", Layout::kNchw}}, "nhwc or nchw");
}

enum class Mode { kInference, kTraining, kBoth, kBackward, kAll };

Mode ParseMode(const std::string& text) {
  return cli::ParseChoice<Mode>(text, "mode",
                                {{"inference", Mode::kInference},
                                 {"training", Mode::kTraining},
                                 {"both", Mode::kBoth},
                                 {"backward", Mode::kBackward},
                                 {"all", Mode::kAll}},
                                "inference, training, both, backward or all");
}

// The only sweep is the cache sweep (tools/bench/sweep.h).
bool ParseSweep(const std::string& text) {
  return cli::ParseChoice<bool>(text, "sweep", {{"cache", true}}, "cache");
}

// A working-set bound of the sweep: bytes, or with a K, M or G suffix (KiB, MiB, GiB).
size_t ParseBytes(const std::string& text) {
  const size_t bytes = ParseCacheSize(text);
  if (bytes == 0) {
    throw std::invalid_argument("'" + text +
                                "' is not a size; expected bytes >= 1 (e.g. 1048576, 512K or 2M)");
  }
  return bytes;
}

// The only peer is oneDNN, and only when bnorm-bench was built with it.
bool ParsePeer(const std::string& text) {
  const bool onednn = cli::ParseChoice<bool>(text, "peer", {{"onednn", true}}, "onednn");
#if BNORM_HAVE_ONEDNN
  return onednn;
#else
  (void)onednn;
  throw std::invalid_argument(
      "onednn: oneDNN was not found when bnorm-bench was built "
      "(install libdnnl-dev and reconfigure)");
#endif
}

std::vector<CaseSpec> ReadShapesFile(const std::string& path, Layout layout,
                                     const std::vector<int>& axes) {
  std::ifstream in(path);
  if (!in) Fail("--shapes-file", "cannot open '" + path + "'");
  std::vector<CaseSpec> cases;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    line = line.substr(0, line.find('#'));
    std::istringstream words(line);
    std::string shape_text, extra;
    if (!(words >> shape_text)) continue;
    const std::string where = "--shapes-file " + path + ":" + std::to_string(number);
    CaseSpec spec;
    spec.origin = where;
    spec.layout = layout;
    spec.axes = axes;
    try {
      spec.shape = cli::ParseShape(shape_text);
      if (words >> extra) {
        if (extra.rfind("axis=", 0) == 0) {
          spec.layout = Layout::kAxis;
          spec.axes = cli::ParseAxes(extra.substr(5));
        } else {
          spec.layout = ParseLayout(extra);
        }
        std::string more;
        if (words >> more) Fail(where, "unexpected '" + more + "' after the layout");
      }
    } catch (const std::invalid_argument& e) {
      Fail(where, e.what());
    }
    cases.push_back(spec);
  }
  if (cases.empty()) Fail("--shapes-file", "'" + path + "' holds no shapes");
  return cases;
}

}  // namespace

void Fail(const std::string& flag, const std::string& what) {
  throw UsageError(flag + ": " + what);
}

std::optional<Options> ParseOptions(int argc, char** argv, int* exit_status) {
  Options o;
  std::vector<std::vector<int64_t>> shapes;
  std::vector<std::string> shape_files;
  std::optional<Layout> layout;
  std::optional<std::vector<int>> axes;
  Mode mode = Mode::kBoth;
  bool sweep_cache = false;
  std::optional<size_t> sweep_max;

  CLI::App app(kDescription, "bnorm-bench");
  cli::Configure(&app, "usage: bnorm-bench [flags]", 25);
  app.footer(kFooter);
  // As in most tools, a flag given twice takes its last value.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);

  const std::string cases = "Cases (default: 32,256,56,56 nhwc)";
  cli::AddParsedEach(&app, "--shape", &shapes, cli::ParseShape,
                     "a shape; any rank; repeatable. With a layout it is the\n"
                     "logical N,C,... order; with --axis it is memory order")
      ->option_text("N,C,H,W")
      ->group(cases);
  app.add_option("--shapes-file", shape_files,
                 "one shape per line, optionally followed by a layout\n"
                 "(nhwc, nchw) or axis=A; '#' starts a comment")
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->option_text("F")
      ->group(cases);
  CLI::Option* layout_flag = cli::AddParsed(&app, "--layout", &layout, ParseLayout,
                                            "nhwc: memory [N,H,W,C], axis -1 (default);\n"
                                            "nchw: memory [N,C,H,W], axis 1; rank 2 is dense [N,C]")
                                 ->option_text("nhwc|nchw")
                                 ->group(cases);
  cli::AddParsed(&app, "--axis", &axes, cli::ParseAxes,
                 "feature axis or axes (\"1\" or \"1,2\") of a memory-order\n"
                 "shape; cannot be combined with --layout")
      ->excludes(layout_flag)
      ->option_text("A")
      ->group(cases);
  CLI::Option* sweep_flag = cli::AddParsed(&app, "--sweep", &sweep_cache, ParseSweep,
                                           "cache: working sets (x and y; the backward's dy\n"
                                           "and dx come on top) of 1/4, 1/2, 1, 2 x the core's\n"
                                           "L2 and 1/4, 1/2, 1, 2, 4, 8 x its last-level cache\n"
                                           "(sysfs; coinciding sizes once), each for C = 64, 256,\n"
                                           "2048 in nhwc and nchw, the --dtype's bytes. Shape\n"
                                           "N,C,H,W: N = ceil(values per channel / 56x56), each\n"
                                           "sample's values a near-square H x W (H <= W), within\n"
                                           "10 % of the target. Added after the cases of --shape\n"
                                           "and --shapes-file (--layout and --axis apply to\n"
                                           "those only); JSON rows gain sweep, size_label,\n"
                                           "working_set_bytes, target_working_set_bytes,\n"
                                           "l2_bytes and llc_bytes")
                                ->option_text("cache")
                                ->group(cases);
  cli::AddParsed(&app, "--sweep-max", &sweep_max, ParseBytes,
                 "only the sweep's sizes up to B bytes of working set\n"
                 "(K, M, G: KiB, MiB, GiB), for a quick look")
      ->needs(sweep_flag)
      ->option_text("B")
      ->group(cases);
  app.add_flag("--list-cases", o.list_cases,
               "print the cases as a shapes file (one line each, a\n"
               "sweep's size in a comment) and time nothing: the\n"
               "--shapes-file of bnorm-bench and tools/pytorch-bench.py")
      ->group(cases);

  const std::string what = "What runs";
  cli::AddParsed(&app, "--mode", &mode, ParseMode,
                 "default both. inference: Normalize with\n"
                 "folded moving statistics; training: TrainingNormalize\n"
                 "(statistics and normalize; channels-first tensors\n"
                 "beyond the caches whose channels fit in a core's cache\n"
                 "read x from memory once) and the moving-average\n"
                 "update; backward:\n"
                 "the gradients of one training forward done at set-up\n"
                 "(BackwardReduce around its batch mean, the per-channel\n"
                 "constants, dgamma and dbeta, then BackwardData into its\n"
                 "own dx), dy seeded random data; both: inference and\n"
                 "training; all: inference, training and backward")
      ->option_text("MODE")
      ->group(what);
  cli::AddParsed(&app, "--dtype", &o.dtype, cli::ParseDType,
                 "element type of x, y, dy and dx (default f32;\n"
                 "float32, bfloat16 and float16 also work); statistics\n"
                 "and coefficients stay float32")
      ->option_text("f32|bf16|f16")
      ->group(what);
  cli::AddParsed(
      &app, "--threads", &o.threads,
      [](const std::string& text) {
        const std::vector<int64_t> counts = cli::ParseIntegers(text, 1, 4096);
        return std::vector<int>(counts.begin(), counts.end());
      },
      "default all cores; 1 is Execution::Serial(), more is a\n"
      "tbb::task_arena(N)")
      ->option_text("N[,N...]")
      ->group(what);
  app.add_option("--target", o.target,
                 "a SIMD target (default: the dispatched best); all runs\n"
                 "every target this CPU supports")
      ->check(cli::IsTarget(/*allow_all=*/true))
      ->option_text("NAME|all")
      ->group(what);
  cli::AddParsed(&app, "--virtual-batch-size", &o.virtual_batch_size, cli::ParsePositive,
                 "ghost batches of V samples (V >= 1 must divide the\n"
                 "batch, the first size in memory order)")
      ->option_text("V")
      ->group(what);
  app.add_flag("--renorm", o.renorm,
               "batch renormalization (Keras' default clipping and\n"
               "renorm momentum)\n"
               "With either flag, training runs the whole layer,\n"
               "bnorm::BatchNorm::Forward (the case's axes, other\n"
               "options Keras' defaults), whose moving statistics\n"
               "update on every call, and backward its Backward after\n"
               "one Forward at set-up; their reference is the float64\n"
               "Keras oracle on whole leading samples (a multiple of\n"
               "V). Inference is unchanged: Keras inference ignores\n"
               "ghost batches and renorm")
      ->group(what);
  app.add_flag("--residual", o.residual,
               "inference adds a residual in the same pass:\n"
               "y = relu(bn(x) + z) (NormalizeParams::residual; ReLU\n"
               "is fixed, the bench has no activation flag), z a seeded\n"
               "tensor of x's shape and dtype in its own buffer. Its\n"
               "traffic is 3 elements per value (x and z read, y\n"
               "written); JSON rows gain residual (true on inference\n"
               "rows) and count 3 traffic_volumes there; the reference\n"
               "check adds z too. Training and backward rows are\n"
               "unchanged. oneDNN 2.6 has no fused norm + add: with\n"
               "--compare onednn its column is what an unfused engine\n"
               "runs, batch_normalization inference into y, then a\n"
               "binary add of z with a ReLU post-op in place on y,\n"
               "timed as one call. Needs an inference pass (--mode\n"
               "inference, both or all); not with --synchronized")
      ->group(what);
  app.add_flag("--synchronized", o.synchronized,
               "under mpirun (a build with MPI): per case, a synchronized\n"
               "training step (Forward, Backward; one thread per rank)\n"
               "on this rank's local batch against the same step\n"
               "unsynchronized, then the collectives' latency for\n"
               "C = 64 .. 2048; --repeat calls each, float32 only")
      ->group(what);
  cli::AddParsed(&app, "--compare", &o.compare_onednn, ParsePeer,
                 "also time oneDNN's batch_normalization_forward (backward:\n"
                 "batch_normalization_backward, prop_kind backward, of its\n"
                 "own training forward) on the same buffers and threads\n"
                 "(bf16/f16 data with f32 statistics), and check it\n"
                 "agrees. Not compared: a dtype this oneDNN has no kernel\n"
                 "for, and training or backward with --virtual-batch-size\n"
                 "or --renorm (oneDNN has neither)")
      ->option_text("onednn")
      ->group(what);

  const std::string output = "Timing and output";
  cli::AddParsed(
      &app, "--repeat", &o.repeat,
      [](const std::string& text) { return static_cast<int>(cli::ParseInteger(text, 1, 1000000)); },
      "timed calls, at least (default 20); median reported")
      ->option_text("R")
      ->group(output);
  cli::AddParsed(
      &app, "--min-time", &o.min_time,
      // An hour per case is surely a typo.
      [](const std::string& text) { return cli::ParseReal(text, 0.0, 3600.0); },
      "seconds of timed calls, at least (default 0.2)")
      ->option_text("S")
      ->group(output);
  app.add_flag("--json", o.json,
               "one JSON array on stdout, one object per case, mode,\n"
               "thread count and target (with dtype, virtual_batch_size\n"
               "and renorm)")
      ->group(output);
  cli::AddHelpFlag(&app, output);

  if (const std::optional<int> status = cli::Parse(&app, argc, argv)) {
    *exit_status = *status;
    return std::nullopt;
  }

  o.inference = mode == Mode::kInference || mode == Mode::kBoth || mode == Mode::kAll;
  o.training = mode == Mode::kTraining || mode == Mode::kBoth || mode == Mode::kAll;
  o.backward = mode == Mode::kBackward || mode == Mode::kAll;
  // z is an input of the inference pass only: without one the flag would time nothing it names.
  if (o.residual && !o.inference) {
    Fail("--residual", std::string("adds z to the inference pass, which --mode ") +
                           (mode == Mode::kTraining ? "training" : "backward") +
                           " does not run; expected --mode inference, both or all");
  }
  if (o.residual && o.synchronized) {
    Fail("--residual", "adds z to the inference pass; --synchronized times a training step only");
  }
  const Layout case_layout = axes ? Layout::kAxis : layout.value_or(Layout::kNhwc);
  const std::vector<int> case_axes = axes.value_or(std::vector<int>{});
  for (const std::vector<int64_t>& shape : shapes) {
    o.cases.push_back(CaseSpec{"--shape", shape, case_layout, case_axes, std::nullopt});
  }
  for (const std::string& path : shape_files) {
    for (CaseSpec& spec : ReadShapesFile(path, case_layout, case_axes)) o.cases.push_back(spec);
  }
  if (sweep_cache) {
    const std::vector<CaseSpec> sweep = CacheSweep(MachineCaches(), o.dtype, sweep_max.value_or(0));
    if (sweep.empty()) {
      Fail("--sweep-max",
           std::to_string(*sweep_max) + " B keeps none of the sweep's sizes (the smallest is " +
               std::to_string(CacheSweep(MachineCaches(), o.dtype, 0).front().sweep->target_bytes) +
               " B)");
    }
    o.cases.insert(o.cases.end(), sweep.begin(), sweep.end());
  }
  if (o.cases.empty())
    o.cases.push_back(CaseSpec{"--shape", {32, 256, 56, 56}, case_layout, case_axes, std::nullopt});
  if (o.threads.empty()) o.threads.push_back(std::max(1, tbb::this_task_arena::max_concurrency()));
  return o;
}

}  // namespace bench
}  // namespace bnorm
