// bnorm-run: one Keras BatchNormalization layer applied to .npy files, the
// interop CLI that cross-checks bnorm against Keras. kUsage is the contract.
//
// Everything is read, validated and computed before the first byte is written,
// so a failing run leaves the output directory untouched.
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "bnorm/batch_norm.hpp"
#include "bnorm/error.hpp"
#include "bnorm/execution.hpp"
#include "src/io/npy.h"
#include "bnorm/targets.hpp"

namespace {

constexpr int kExitIo = 1;
constexpr int kExitUsage = 2;

constexpr char kUsage[] = R"(usage: bnorm-run --x X.npy --out DIR [options]

Applies Keras' BatchNormalization (tf-keras 2.x semantics) to X.npy K times and
writes the last output and the final layer state as .npy files into DIR.

Input and state:
  --x X.npy                  input, C order, dtype '<f4', '<f8', '<f2', or
                             bfloat16 as '<u2'. float64 is computed via
                             float32 (Keras' float32 layer) and written back
                             as float64; float16/bfloat16 use float32 math.
  --gamma G.npy              initial gamma (default: ones)
  --beta B.npy               initial beta (default: zeros)
  --moving-mean M.npy        initial moving_mean (default: zeros)
  --moving-variance V.npy    initial moving_variance (default: ones)
  --moving-stddev MS.npy     initial moving_stddev (renorm; default: ones)
  --renorm-mean RM.npy       initial renorm_mean (renorm; default: zeros)
  --renorm-stddev RS.npy     initial renorm_stddev (renorm; default: ones)
  --adjustment-scale AS.npy  with --adjustment-bias: the per-channel output of
  --adjustment-bias AB.npy   Keras' adjustment callable (training only)
  State files may have any float dtype above and the parameter shape, a flat
  vector of the same count, or Keras' full-rank shape (e.g. (1, 1, 1, 1, C)
  with virtual_batch_size): the same count with 1 in every other dimension.

Layer arguments (Keras names; defaults as in Keras):
  --axis A                   feature axis or comma list, e.g. -1 or 1,2 (-1)
  --momentum F               (0.99)
  --epsilon F                (0.001)
  --center true|false        (true)
  --scale true|false         (true)
  --renorm true|false        (false)
  --rmax F, --rmin F, --dmax F
                             renorm_clipping keys (renorm only; unset: no clip)
  --renorm-momentum F        (0.99; renorm only)
  --fused true|false|auto    (auto)
  --trainable true|false     (true; false forces inference)
  --virtual-batch-size N     ghost batch size (unset: none)

Call:
  --training true|false      (unset: Keras' default, inference)
  --steps K                  forward calls on the same input, K >= 1 (1)
  --target NAME              force a SIMD target (avx3, avx2, sse4, scalar, ...)
  --threads N                1: serial; N > 1: a oneTBB arena of N threads
                             (unset: oneTBB's default arena)
  --out DIR                  output directory, created if missing
  --help                     this text

Output (overwritten in DIR):
  y.npy                      the last output, same dtype and shape as X
  moving_mean.npy, moving_variance.npy, gamma.npy (only with scale),
  beta.npy (only with center), and with renorm moving_stddev.npy,
  renorm_mean.npy, renorm_stddev.npy: float32 ('<f4') of the parameter shape.

Flags take their value as the next argument or after '=' (--axis=-1). Numbers
are parsed strictly. Renorm-only flags without --renorm true are errors.

Exit status: 0 success; 1 a file cannot be read or written or is not a valid
supported .npy file; 2 a usage or validation error (unknown or repeated flag,
missing or malformed value, option combination the layer rejects, file shape
that does not fit the layer). On failure one line goes to stderr and nothing
is written into DIR.
)";

// A failure with its exit status; the message is one line.
struct Failure {
  int exit_code;
  std::string message;
};

[[noreturn]] void UsageError(const std::string& message) {
  throw Failure{kExitUsage, message};
}
[[noreturn]] void IoError(const std::string& message) {
  throw Failure{kExitIo, message};
}

// Every flag; all but --help take a value.
const char* const kFlags[] = {
    "--x",
    "--gamma",
    "--beta",
    "--moving-mean",
    "--moving-variance",
    "--moving-stddev",
    "--renorm-mean",
    "--renorm-stddev",
    "--axis",
    "--momentum",
    "--epsilon",
    "--center",
    "--scale",
    "--renorm",
    "--rmax",
    "--rmin",
    "--dmax",
    "--renorm-momentum",
    "--fused",
    "--trainable",
    "--virtual-batch-size",
    "--adjustment-scale",
    "--adjustment-bias",
    "--training",
    "--steps",
    "--target",
    "--threads",
    "--out",
};

// The flags that only mean something with --renorm true.
const char* const kRenormFlags[] = {
    "--moving-stddev", "--renorm-mean", "--renorm-stddev",  "--rmax",
    "--rmin",          "--dmax",        "--renorm-momentum"};

class CommandLine {
 public:
  CommandLine(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
      std::string name = argv[i];
      std::optional<std::string> value;
      const size_t eq = name.find('=');
      if (name.rfind("--", 0) == 0 && eq != std::string::npos) {
        value = name.substr(eq + 1);
        name.resize(eq);
      }
      if (!IsFlag(name)) {
        UsageError(name.rfind("-", 0) == 0
                       ? "unknown flag " + name + " (see --help)"
                       : "unexpected argument '" + name + "' (see --help)");
      }
      if (!value) {
        // A value that starts with "--" is the next flag: this one lacks its
        // value (a path starting with "--" can be given as --flag=--path).
        if (i + 1 >= argc || std::strncmp(argv[i + 1], "--", 2) == 0) {
          UsageError(name + " needs a value (see --help)");
        }
        value = argv[++i];
      }
      if (!values_.emplace(name, *value).second)
        UsageError(name + " is given twice");
    }
  }

  bool Has(const std::string& flag) const { return values_.count(flag) != 0; }

  std::optional<std::string> Text(const std::string& flag) const {
    const auto it = values_.find(flag);
    if (it == values_.end()) return std::nullopt;
    return it->second;
  }

  std::optional<bool> Bool(const std::string& flag) const {
    const auto text = Text(flag);
    if (!text) return std::nullopt;
    if (*text == "true" || *text == "True") return true;
    if (*text == "false" || *text == "False") return false;
    UsageError(flag + " '" + *text +
               "' is not a boolean; expected true or false");
  }

  std::optional<float> Float(const std::string& flag) const {
    const auto text = Text(flag);
    if (!text) return std::nullopt;
    const char* begin = text->c_str();
    char* end = nullptr;
    errno = 0;
    const float value = std::strtof(begin, &end);
    if (text->empty() || std::isspace(static_cast<unsigned char>(*begin)) ||
        end != begin + text->size()) {
      UsageError(flag + " '" + *text + "' is not a number");
    }
    if (errno == ERANGE && (value > 1.0f || value < -1.0f)) {
      UsageError(flag + " '" + *text + "' is out of the float32 range");
    }
    return value;
  }

  std::optional<int64_t> Int(const std::string& flag) const {
    const auto text = Text(flag);
    if (!text) return std::nullopt;
    return ParseInt(flag, *text);
  }

  std::optional<std::vector<int>> IntList(const std::string& flag) const {
    const auto text = Text(flag);
    if (!text) return std::nullopt;
    std::vector<int> values;
    size_t start = 0;
    while (true) {
      const size_t comma = text->find(',', start);
      const std::string item = text->substr(start, comma - start);
      const int64_t value = ParseInt(flag, item);
      if (value < INT32_MIN || value > INT32_MAX) {
        UsageError(flag + " '" + item + "' is out of range");
      }
      values.push_back(static_cast<int>(value));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    return values;
  }

 private:
  static bool IsFlag(const std::string& name) {
    for (const char* flag : kFlags) {
      if (name == flag) return true;
    }
    return false;
  }

  static int64_t ParseInt(const std::string& flag, const std::string& text) {
    const char* begin = text.c_str();
    char* end = nullptr;
    errno = 0;
    const long long value = std::strtoll(begin, &end, 10);
    if (text.empty() || std::isspace(static_cast<unsigned char>(*begin)) ||
        end != begin + text.size()) {
      UsageError(flag + " '" + text + "' is not an integer");
    }
    if (errno == ERANGE) UsageError(flag + " '" + text + "' is out of range");
    return value;
  }

  std::map<std::string, std::string> values_;
};

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

std::vector<int64_t> WithoutOnes(const std::vector<int64_t>& shape) {
  std::vector<int64_t> squeezed;
  for (int64_t d : shape) {
    if (d != 1) squeezed.push_back(d);
  }
  return squeezed;
}

bnorm::npy::Array ReadFile(const std::string& flag, const std::string& path) {
  try {
    return bnorm::npy::Read(path);
  } catch (const bnorm::Error& e) {
    IoError(flag + ": " + e.what());
  }
}

// A state or adjustment file read as float32 values of the parameter shape.
// Keras' own shapes fit too: a flat vector of the same count, or the full-rank
// shape it uses with ghost batches or several axes (1 in every other
// dimension).
struct ParameterFile {
  std::string flag, path;
  bnorm::npy::Array array;

  std::vector<float> Values(const std::vector<int64_t>& parameter_shape) const {
    size_t count = 1;
    for (int64_t d : parameter_shape) count *= static_cast<size_t>(d);
    const bool fits =
        array.count() == count &&
        (array.shape.size() <= 1 ||
         WithoutOnes(array.shape) == WithoutOnes(parameter_shape));
    if (!fits) {
      UsageError(flag + " " + path + " has shape " + ShapeText(array.shape) +
                 "; expected the parameter shape " +
                 ShapeText(parameter_shape) + " (" + std::to_string(count) +
                 " values)");
    }
    return bnorm::npy::ToFloats(array);
  }
};

std::optional<ParameterFile> ReadParameterFile(const CommandLine& cl,
                                               const std::string& flag) {
  const auto path = cl.Text(flag);
  if (!path) return std::nullopt;
  return ParameterFile{flag, *path, ReadFile(flag, *path)};
}

bnorm::Options LayerOptions(const CommandLine& cl) {
  bnorm::Options o;
  if (auto axis = cl.IntList("--axis")) o.axis = *axis;
  if (auto v = cl.Float("--momentum")) o.momentum = *v;
  if (auto v = cl.Float("--epsilon")) o.epsilon = *v;
  if (auto v = cl.Bool("--center")) o.center = *v;
  if (auto v = cl.Bool("--scale")) o.scale = *v;
  if (auto v = cl.Bool("--renorm")) o.renorm = *v;
  o.renorm_clipping.rmax = cl.Float("--rmax");
  o.renorm_clipping.rmin = cl.Float("--rmin");
  o.renorm_clipping.dmax = cl.Float("--dmax");
  if (auto v = cl.Float("--renorm-momentum")) o.renorm_momentum = *v;
  if (auto fused = cl.Text("--fused")) {
    if (*fused == "auto") {
      o.fused = bnorm::Fused::kAuto;
    } else if (*fused == "true" || *fused == "True") {
      o.fused = bnorm::Fused::kTrue;
    } else if (*fused == "false" || *fused == "False") {
      o.fused = bnorm::Fused::kFalse;
    } else {
      UsageError("--fused '" + *fused + "' is not true, false or auto");
    }
  }
  if (auto v = cl.Bool("--trainable")) o.trainable = *v;
  o.virtual_batch_size = cl.Int("--virtual-batch-size");
  if (!o.renorm) {
    for (const char* flag : kRenormFlags) {
      if (cl.Has(flag)) UsageError(std::string(flag) + " needs --renorm true");
    }
  }
  return o;
}

struct Output {
  std::string name;
  bnorm::npy::Array array;
};

std::vector<Output> Run(const CommandLine& cl) {
  const auto x_path = cl.Text("--x");
  if (!x_path) UsageError("--x is required (see --help)");
  const auto out_dir = cl.Text("--out");
  if (!out_dir) UsageError("--out is required (see --help)");
  if (out_dir->empty()) UsageError("--out is empty");

  bnorm::Options options = LayerOptions(cl);
  const std::optional<bool> training = cl.Bool("--training");
  const int64_t steps = cl.Int("--steps").value_or(1);
  if (steps < 1)
    UsageError("--steps " + std::to_string(steps) + " must be >= 1");
  const auto threads = cl.Int("--threads");
  if (threads && (*threads < 1 || *threads > 65536)) {
    UsageError("--threads " + std::to_string(*threads) +
               " must be in 1..65536");
  }
  if (const auto target = cl.Text("--target")) {
    try {
      bnorm::ForceTarget(*target);
    } catch (const bnorm::Error& e) {
      UsageError(std::string("--target: ") + e.what());
    }
  }
  struct stat st;
  if (::stat(out_dir->c_str(), &st) == 0 && !S_ISDIR(st.st_mode)) {
    IoError("--out " + *out_dir + " exists and is not a directory");
  }

  // Every file is read before anything is computed.
  const bnorm::npy::Array x = ReadFile("--x", *x_path);
  std::vector<ParameterFile> state;
  for (const char* flag :
       {"--gamma", "--beta", "--moving-mean", "--moving-variance",
        "--moving-stddev", "--renorm-mean", "--renorm-stddev"}) {
    if (auto file = ReadParameterFile(cl, flag))
      state.push_back(std::move(*file));
  }
  const auto adjustment_scale = ReadParameterFile(cl, "--adjustment-scale");
  const auto adjustment_bias = ReadParameterFile(cl, "--adjustment-bias");
  if (adjustment_scale.has_value() != adjustment_bias.has_value()) {
    UsageError(std::string(adjustment_scale ? "--adjustment-scale"
                                            : "--adjustment-bias") +
               " needs " +
               (adjustment_scale ? "--adjustment-bias" : "--adjustment-scale") +
               " too");
  }

  // Shape-dependent checks need the parameter shape, known after Build; the
  // adjustment reads its values once they are checked.
  std::vector<float> adj_scale, adj_bias;
  if (adjustment_scale) {
    options.adjustment = [&adj_scale, &adj_bias](const std::vector<int64_t>&,
                                                 float* scale, float* bias) {
      std::copy(adj_scale.begin(), adj_scale.end(), scale);
      std::copy(adj_bias.begin(), adj_bias.end(), bias);
    };
  }
  bnorm::BatchNorm layer(options);
  layer.Build(x.shape);
  const std::vector<int64_t> parameter_shape = layer.parameter_shape();
  if (adjustment_scale) {
    adj_scale = adjustment_scale->Values(parameter_shape);
    adj_bias = adjustment_bias->Values(parameter_shape);
  }
  for (const ParameterFile& file : state) {
    const std::vector<float> values = file.Values(parameter_shape);
    try {
      if (file.flag == "--gamma") layer.set_gamma(values);
      if (file.flag == "--beta") layer.set_beta(values);
      if (file.flag == "--moving-mean") layer.set_moving_mean(values);
      if (file.flag == "--moving-variance") layer.set_moving_variance(values);
      if (file.flag == "--moving-stddev") layer.set_moving_stddev(values);
      if (file.flag == "--renorm-mean") layer.set_renorm_mean(values);
      if (file.flag == "--renorm-stddev") layer.set_renorm_stddev(values);
    } catch (const bnorm::Error& e) {
      UsageError(file.flag + " " + file.path + ": " + e.what());
    }
  }

  std::unique_ptr<tbb::task_arena> arena;
  bnorm::Execution exec;
  if (threads == 1) {
    exec = bnorm::Execution::Serial();
  } else if (threads) {
    arena = std::make_unique<tbb::task_arena>(static_cast<int>(*threads));
    exec = bnorm::Execution::Parallel(arena.get());
  }

  std::vector<Output> outputs;
  if (x.dtype == bnorm::npy::ElementType::kFloat16 ||
      x.dtype == bnorm::npy::ElementType::kBFloat16) {
    const bnorm::DType dtype = x.dtype == bnorm::npy::ElementType::kFloat16
                                   ? bnorm::DType::kFloat16
                                   : bnorm::DType::kBFloat16;
    const std::vector<uint16_t> in = bnorm::npy::ToBits16(x);
    std::vector<uint16_t> y(in.size());
    for (int64_t step = 0; step < steps; ++step) {
      layer.Forward(in.data(), y.data(), dtype, x.shape, training, exec);
    }
    outputs.push_back({"y", bnorm::npy::FromBits16(y, x.shape, x.dtype)});
  } else {
    const std::vector<float> in = bnorm::npy::ToFloats(x);
    std::vector<float> y(in.size());
    for (int64_t step = 0; step < steps; ++step) {
      layer.Forward(in.data(), y.data(), x.shape, training, exec);
    }
    outputs.push_back({"y", bnorm::npy::FromFloats(y, x.shape, x.dtype)});
  }

  const auto state_file = [&](const char* name,
                              const std::vector<float>& values) {
    outputs.push_back(
        {name, bnorm::npy::FromFloats(values, parameter_shape,
                                      bnorm::npy::ElementType::kFloat32)});
  };
  state_file("moving_mean", layer.moving_mean());
  state_file("moving_variance", layer.moving_variance());
  if (options.scale) state_file("gamma", layer.gamma());
  if (options.center) state_file("beta", layer.beta());
  if (options.renorm) {
    state_file("moving_stddev", layer.moving_stddev());
    state_file("renorm_mean", layer.renorm_mean());
    state_file("renorm_stddev", layer.renorm_stddev());
  }
  return outputs;
}

void WriteOutputs(const std::string& dir, const std::vector<Output>& outputs) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error)
    IoError("--out " + dir +
            ": cannot create the directory: " + error.message());
  for (const Output& output : outputs) {
    try {
      bnorm::npy::Write(dir + "/" + output.name + ".npy", output.array);
    } catch (const bnorm::Error& e) {
      IoError(std::string("--out: ") + e.what());
    }
  }
}

// One line, whatever the message holds.
std::string OneLine(std::string message) {
  for (char& c : message) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return message;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 ||
        std::strcmp(argv[i], "-h") == 0) {
      std::fputs(kUsage, stdout);
      return 0;
    }
  }
  try {
    const CommandLine cl(argc, argv);
    const std::vector<Output> outputs = Run(cl);
    WriteOutputs(*cl.Text("--out"), outputs);
    return 0;
  } catch (const Failure& failure) {
    std::fprintf(stderr, "bnorm-run: %s\n", OneLine(failure.message).c_str());
    return failure.exit_code;
  } catch (const bnorm::Error& e) {
    // The layer's own validation: the message names the Keras argument.
    std::fprintf(stderr, "bnorm-run: %s\n", OneLine(e.what()).c_str());
    return kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bnorm-run: %s\n", OneLine(e.what()).c_str());
    return kExitIo;
  }
}
