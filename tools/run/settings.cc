// SPDX-License-Identifier: Apache-2.0
// bnorm-run's command line: the flags, named after Keras' arguments, and the help, which is the
// tool's contract (CLI11, tools/common/cli.h).
#include "tools/run/settings.h"

#include <limits>
#include <optional>
#include <utility>

#include "tools/common/cli.h"
#include "tools/common/parse.h"
#include "tools/run/failure.h"

namespace bnorm {
namespace run {
namespace {

constexpr char kDescription[] =
    R"(Applies Keras' BatchNormalization (tf-keras 2.x semantics) to X.npy K times and
writes the last output and the final layer state as .npy files into DIR. With
--dy, also runs the layer's backward for the last call and writes the gradients.)";

constexpr char kFooter[] =
    R"(State files may have any float dtype above and the parameter shape, a flat
vector of the same count, or Keras' full-rank shape (e.g. (1, 1, 1, 1, C)
with virtual_batch_size): the same count with 1 in every other dimension.

Output (overwritten in DIR):
  y.npy                      the last output, same dtype and shape as X
  moving_mean.npy, moving_variance.npy, gamma.npy (only with scale),
  beta.npy (only with center), and with renorm moving_stddev.npy,
  renorm_mean.npy, renorm_stddev.npy: float32 ('<f4') of the parameter shape.
With --dy (the gradients of the last call; docs/semantics.md, "Backward"):
  dx.npy                     same dtype and shape as X
  dgamma.npy (only with scale), dbeta.npy (only with center), and after a
  training call with an adjustment d_adjustment_scale.npy and
  d_adjustment_bias.npy: float32 of the parameter shape. A training call gives
  Keras' training gradient, any other call the inference one.

Flags take their value as the next argument or after '=' (--axis=-1). Numbers
are parsed strictly. Renorm-only flags without --renorm true are errors.

Synchronized (--synchronized true, Keras' synchronized=True): under
mpirun -n R each rank reads its own slice of the batch and writes its own
outputs, e.g. --x x_{rank}.npy --out out_{rank}; the statistics and every
rank's moving statistics are those of the whole batch. A rank that fails
exits without MPI_Finalize, so that mpirun ends the job.

Exit status: 0 success; 1 a file cannot be read or written or is not a valid
supported .npy file; 2 a usage or validation error (unknown or repeated flag,
missing or malformed value, option combination the layer rejects, file shape
that does not fit the layer). On failure one line goes to stderr and nothing
is written into DIR.)";

// The state files, in the order they are read, with their placeholders and help.
struct StateFlag {
  const char* name;
  const char* placeholder;
  const char* help;
};
const StateFlag kStateFlags[] = {
    {"--gamma", "G.npy", "initial gamma (default: ones)"},
    {"--beta", "B.npy", "initial beta (default: zeros)"},
    {"--moving-mean", "M.npy", "initial moving_mean (default: zeros)"},
    {"--moving-variance", "V.npy", "initial moving_variance (default: ones)"},
    {"--moving-stddev", "MS.npy", "initial moving_stddev (renorm; default: ones)"},
    {"--renorm-mean", "RM.npy", "initial renorm_mean (renorm; default: zeros)"},
    {"--renorm-stddev", "RS.npy", "initial renorm_stddev (renorm; default: ones)"},
};

// The flags that only mean something with --renorm true.
const char* const kRenormFlags[] = {"--moving-stddev",  "--renorm-mean", "--renorm-stddev",
                                    "--rmax",           "--rmin",        "--dmax",
                                    "--renorm-momentum"};

Fused ParseFused(const std::string& text) {
  return cli::ParseChoice<Fused>(text, "fused setting",
                                 {{"auto", Fused::kAuto},
                                  {"true", Fused::kTrue},
                                  {"True", Fused::kTrue},
                                  {"false", Fused::kFalse},
                                  {"False", Fused::kFalse}},
                                 "true, false or auto");
}

// A file or target name, as given.
std::string Text(const std::string& text) { return text; }

int64_t ParseAnyInteger(const std::string& text) {
  return cli::ParseInteger(text, std::numeric_limits<int64_t>::min(),
                           std::numeric_limits<int64_t>::max());
}

}  // namespace

std::optional<Settings> ParseSettings(int argc, char** argv, int* exit_status) {
  Settings s;
  bnorm::Options& o = s.options;
  std::optional<std::string> state_paths[std::size(kStateFlags)];

  CLI::App app(kDescription, "bnorm-run");
  cli::Configure(&app, "usage: bnorm-run --x X.npy --out DIR [options]", 29);
  app.footer(kFooter);

  const std::string input = "Input and state";
  app.add_option("--x", s.x,
                 "input, C order, dtype '<f4', '<f8', '<f2', or\n"
                 "bfloat16 as '<u2'. float64 is computed via\n"
                 "float32 (Keras' float32 layer) and written back\n"
                 "as float64; float16/bfloat16 use float32 math.")
      ->required()
      ->option_text("X.npy")
      ->group(input);
  cli::AddParsed(&app, "--dy", &s.dy, Text,
                 "loss gradient for the last call's output: same\n"
                 "shape and dtype as X; writes dx and the\n"
                 "parameter gradients (see Output)")
      ->option_text("DY.npy")
      ->group(input);
  for (size_t i = 0; i < std::size(kStateFlags); ++i) {
    cli::AddParsed(&app, kStateFlags[i].name, &state_paths[i], Text, kStateFlags[i].help)
        ->option_text(kStateFlags[i].placeholder)
        ->group(input);
  }
  CLI::Option* scale_file = cli::AddParsed(&app, "--adjustment-scale", &s.adjustment_scale, Text,
                                           "with --adjustment-bias: the per-channel output of\n"
                                           "Keras' adjustment callable (training only)")
                                ->option_text("AS.npy")
                                ->group(input);
  CLI::Option* bias_file = cli::AddParsed(&app, "--adjustment-bias", &s.adjustment_bias, Text,
                                          "with --adjustment-scale (see there)")
                               ->option_text("AB.npy")
                               ->group(input);
  scale_file->needs(bias_file);
  bias_file->needs(scale_file);

  const std::string layer = "Layer arguments (Keras names; defaults as in Keras)";
  cli::AddParsed(&app, "--axis", &o.axis, cli::ParseAxes,
                 "feature axis or comma list, e.g. -1 or 1,2 (-1)")
      ->option_text("A")
      ->group(layer);
  cli::AddParsed(&app, "--momentum", &o.momentum, cli::ParseFloat, "(0.99)")
      ->option_text("F")
      ->group(layer);
  cli::AddParsed(&app, "--epsilon", &o.epsilon, cli::ParseFloat, "(0.001)")
      ->option_text("F")
      ->group(layer);
  cli::AddParsed(&app, "--center", &o.center, cli::ParseBool, "(true)")
      ->option_text("true|false")
      ->group(layer);
  cli::AddParsed(&app, "--scale", &o.scale, cli::ParseBool, "(true)")
      ->option_text("true|false")
      ->group(layer);
  cli::AddParsed(&app, "--renorm", &o.renorm, cli::ParseBool, "(false)")
      ->option_text("true|false")
      ->group(layer);
  const std::pair<const char*, std::optional<float>*> clipping_keys[] = {
      {"--rmax", &o.renorm_clipping.rmax},
      {"--rmin", &o.renorm_clipping.rmin},
      {"--dmax", &o.renorm_clipping.dmax}};
  for (const auto& [name, key] : clipping_keys) {
    cli::AddParsed(&app, name, key, cli::ParseFloat,
                   "renorm_clipping key (renorm only; unset: no clip)")
        ->option_text("F")
        ->group(layer);
  }
  cli::AddParsed(&app, "--renorm-momentum", &o.renorm_momentum, cli::ParseFloat,
                 "(0.99; renorm only)")
      ->option_text("F")
      ->group(layer);
  cli::AddParsed(&app, "--fused", &o.fused, ParseFused, "(auto)")
      ->option_text("true|false|auto")
      ->group(layer);
  cli::AddParsed(&app, "--trainable", &o.trainable, cli::ParseBool,
                 "(true; false forces inference)")
      ->option_text("true|false")
      ->group(layer);
  cli::AddParsed(&app, "--synchronized", &o.synchronized, cli::ParseBool,
                 "(false) statistics over every rank: under\n"
                 "mpirun (a build with MPI) each process is a\n"
                 "rank and {rank} in any path becomes its rank;\n"
                 "without MPI in the build, one rank")
      ->option_text("true|false")
      ->group(layer);
  // The layer checks the value against the batch.
  cli::AddParsed(&app, "--virtual-batch-size", &o.virtual_batch_size, ParseAnyInteger,
                 "ghost batch size (unset: none)")
      ->option_text("N")
      ->group(layer);

  const std::string call = "Call";
  cli::AddParsed(&app, "--training", &s.training, cli::ParseBool,
                 "(unset: Keras' default, inference)")
      ->option_text("true|false")
      ->group(call);
  cli::AddParsed(&app, "--steps", &s.steps, cli::ParsePositive,
                 "forward calls on the same input, K >= 1 (1)")
      ->option_text("K")
      ->group(call);
  cli::AddParsed(&app, "--target", &s.target, Text,
                 "force a SIMD target (avx3, avx2, sse4, scalar, ...)")
      ->check(cli::IsTarget(/*allow_all=*/false))
      ->option_text("NAME")
      ->group(call);
  cli::AddParsed(
      &app, "--threads", &s.threads,
      [](const std::string& text) { return cli::ParseInteger(text, 1, 65536); },
      "1: serial; N > 1: a oneTBB arena of N threads\n"
      "(unset: oneTBB's default arena)")
      ->option_text("N")
      ->group(call);
  app.add_option("--out", s.out, "output directory, created if missing")
      ->required()
      ->check(CLI::Validator(
          [](std::string& dir) { return dir.empty() ? std::string("empty directory name") : ""; },
          std::string()))
      ->option_text("DIR")
      ->group(call);
  cli::AddHelpFlag(&app, call);

  if (const std::optional<int> status = cli::Parse(&app, argc, argv)) {
    *exit_status = *status;
    return std::nullopt;
  }
  if (!o.renorm) {
    for (const char* flag : kRenormFlags) {
      if (app.count(flag) != 0) UsageError(std::string(flag) + " needs --renorm true");
    }
  }
  for (size_t i = 0; i < std::size(kStateFlags); ++i) {
    if (state_paths[i]) s.state_files.emplace_back(kStateFlags[i].name, *state_paths[i]);
  }
  return s;
}

}  // namespace run
}  // namespace bnorm
