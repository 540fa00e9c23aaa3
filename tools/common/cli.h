// SPDX-License-Identifier: Apache-2.0
// CLI11 glue shared by bnorm-bench, bnorm-verify and bnorm-run. Flags are bound to values
// through the parsers of parse.h: CLI11 first runs the parser as the flag's validator, so a bad
// value is a usage error "--flag: <the text and what was expected>", then the same parser
// converts the checked text (CLI11's own conversions would read "010" as octal and "yes" as
// true). The help starts with the tool's usage line, then its description, the option groups and
// the footer. Every usage error exits with kExitUsage after one line on stderr.
#ifndef BNORM_TOOLS_COMMON_CLI_H_
#define BNORM_TOOLS_COMMON_CLI_H_

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"

namespace bnorm {
namespace cli {

// The exit status of every command-line mistake, in all three tools.
constexpr int kExitUsage = 2;

// Accepts the texts `parse` accepts (a function of one std::string that throws
// std::invalid_argument); the error is parse's message.
template <class Parse>
CLI::Validator ParsedBy(Parse parse) {
  return CLI::Validator(
      [parse](std::string& text) -> std::string {
        try {
          parse(text);
          return std::string();
        } catch (const std::invalid_argument& e) {
          return e.what();
        }
      },
      std::string());
}

// A SIMD target name bnorm::ForceTarget takes (known, compiled, run by this CPU), or "all" when
// `allow_all`. It checks by forcing the target and resetting it: the registry is the one place
// that knows the names, and its message lists the valid ones.
CLI::Validator IsTarget(bool allow_all);

// Flag `name` takes one value, checked and converted by `parse` into *value (a T or an
// std::optional<T>).
template <class T, class Parse>
CLI::Option* AddParsed(CLI::App* app, const std::string& name, T* value, Parse parse,
                       const std::string& help) {
  return app
      ->add_option_function<std::string>(
          name, [value, parse](const std::string& text) { *value = parse(text); }, help)
      ->check(ParsedBy(parse));
}

// Flag `name` may be repeated, one value each time; each is checked and converted by `parse` and
// appended to *values in command-line order.
template <class T, class Parse>
CLI::Option* AddParsedEach(CLI::App* app, const std::string& name, std::vector<T>* values,
                           Parse parse, const std::string& help) {
  return app
      ->add_option_function<std::vector<std::string>>(
          name,
          [values, parse](const std::vector<std::string>& texts) {
            for (const std::string& text : texts) values->push_back(parse(text));
          },
          help)
      ->check(ParsedBy(parse))
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
}

// Sets bnorm's help layout on `app`: `usage` is its first line, option names and their value
// placeholders (Option::option_text) fill a column `column` characters wide. Removes CLI11's
// --help; AddHelpFlag puts it back, last, in the group of the caller's choice.
void Configure(CLI::App* app, const std::string& usage, size_t column);
CLI::Option* AddHelpFlag(CLI::App* app, const std::string& group);

// `message` on one line (line breaks become spaces): each error is one line of stderr.
std::string OneLine(std::string message);

// Parses the command line into `app`'s bindings. Returns the exit status when the tool should
// stop instead of running: 0 after printing the help (--help, -h) on stdout, kExitUsage after a
// usage error, printed on stderr as one line "<tool>: <message>" (then, with `help_on_error`,
// a blank line and the help).
std::optional<int> Parse(CLI::App* app, int argc, char** argv, bool help_on_error = false);

}  // namespace cli
}  // namespace bnorm

#endif  // BNORM_TOOLS_COMMON_CLI_H_
