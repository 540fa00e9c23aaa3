// SPDX-License-Identifier: Apache-2.0
// The header exchange of a synchronized layer's call: build, gather, check.
// Every rank runs the same checks over the same gathered bytes, so every rank
// reaches the same verdict and the same message.
#include "src/sync/agreement.h"

#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

namespace bnorm {
namespace {

// "BNS" and the layout's version.
constexpr uint32_t kHeaderMagic = 0x424e5301;
// A disagreement names at most this many ranks besides rank 0.
constexpr size_t kNamedRanks = 8;

constexpr uint32_t kCenter = 1, kScale = 2, kRenorm = 4, kAdjustment = 8,
                   kSynchronizedGradients = 16;

uint32_t Bits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  return bits;
}

float FromBits(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

// FNV-1a: the ranks only compare it, so any fixed byte hash does.
void Hash(uint64_t* h, const void* data, size_t bytes) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < bytes; ++i) *h = (*h ^ p[i]) * 0x100000001b3ULL;
}

uint64_t AxesHash(const Options& o) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (int a : o.axis) Hash(&h, &a, sizeof(a));
  for (const std::optional<float>* f :
       {&o.renorm_clipping.rmax, &o.renorm_clipping.rmin, &o.renorm_clipping.dmax}) {
    const uint32_t present = f->has_value() ? 1 : 0, bits = f->has_value() ? Bits(**f) : 0;
    Hash(&h, &present, sizeof(present));
    Hash(&h, &bits, sizeof(bits));
  }
  return h;
}

std::string FloatText(uint32_t bits) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.9g", static_cast<double>(FromBits(bits)));
  return text;
}

std::string FlagsText(uint32_t flags) {
  std::string text;
  const std::pair<uint32_t, const char*> names[] = {
      {kCenter, "center"},
      {kScale, "scale"},
      {kRenorm, "renorm"},
      {kAdjustment, "adjustment"},
      {kSynchronizedGradients, "synchronized_gradients"}};
  for (const auto& [flag, name] : names) {
    if (flags & flag) text += text.empty() ? name : std::string("+") + name;
  }
  return text.empty() ? "none" : text;
}

std::string KindText(uint32_t kind) {
  return kind == static_cast<uint32_t>(CallKind::kForward)    ? "a training Forward"
         : kind == static_cast<uint32_t>(CallKind::kBackward) ? "a Backward"
                                                              : "kind " + std::to_string(kind);
}

[[noreturn]] void Fail(ErrorCode code, const std::string& message) {
  throw Error(code, "synchronized BatchNorm: " + message);
}

// Throws when some rank's value of a field differs from rank 0's, naming
// rank 0 and the ranks that differ with their values.
void Compare(const std::vector<CallHeader>& headers, const char* field, ErrorCode code,
             const std::function<std::string(const CallHeader&)>& value) {
  const std::string first = value(headers[0]);
  std::string differ;
  size_t named = 0, more = 0;
  for (size_t r = 1; r < headers.size(); ++r) {
    const std::string v = value(headers[r]);
    if (v == first) continue;
    if (named < kNamedRanks) {
      differ += ", rank " + std::to_string(r) + " has " + v;
      ++named;
    } else {
      ++more;
    }
  }
  if (named == 0) return;
  if (more != 0) differ += " and " + std::to_string(more) + " more ranks differ";
  Fail(code, std::string("the ranks disagree on ") + field + ": rank 0 has " + first + differ);
}

}  // namespace

CallHeader MakeHeader(CallKind kind, uint64_t sequence, const Options& o) {
  CallHeader h;
  h.magic = kHeaderMagic;
  h.kind = static_cast<uint32_t>(kind);
  h.sequence = sequence;
  h.momentum = Bits(o.momentum);
  h.epsilon = Bits(o.epsilon);
  h.renorm_momentum = Bits(o.renorm_momentum);
  h.flags = (o.center ? kCenter : 0u) | (o.scale ? kScale : 0u) | (o.renorm ? kRenorm : 0u) |
            (o.adjustment ? kAdjustment : 0u) |
            (o.synchronized_gradients ? kSynchronizedGradients : 0u);
  h.virtual_batch_size = o.virtual_batch_size.value_or(0);
  h.axes_hash = AxesHash(o);
  return h;
}

void RecordError(const Error& error, CallHeader* header) {
  header->error_code = static_cast<int32_t>(error.code());
  std::snprintf(header->message, sizeof(header->message), "%s", error.what());
}

Agreement Agree(Communicator& comm, const CallHeader& mine) {
  const size_t ranks = static_cast<size_t>(comm.size());
  std::vector<CallHeader> headers(ranks);
  comm.AllGather(&mine, sizeof(CallHeader), headers.data());
  const auto u64 = [](uint64_t v) { return std::to_string(v); };
  Compare(headers, "the header layout (the same bnorm build on every rank)",
          ErrorCode::kInvalidArgument, [&](const CallHeader& h) { return u64(h.magic); });

  std::string failures;
  ErrorCode code = ErrorCode::kInvalidArgument;
  for (size_t r = 0; r < ranks; ++r) {
    const CallHeader& h = headers[r];
    if (h.error_code == 0) continue;
    if (failures.empty()) code = static_cast<ErrorCode>(h.error_code);
    const std::string text(h.message, strnlen(h.message, sizeof(h.message)));
    failures += (failures.empty() ? "rank " : "; rank ") + std::to_string(r) + " failed: " + text;
  }
  if (!failures.empty()) Fail(code, failures);

  Compare(headers, "the call", ErrorCode::kInvalidArgument,
          [&](const CallHeader& h) { return KindText(h.kind); });
  Compare(headers, "the call sequence number", ErrorCode::kInvalidArgument,
          [&](const CallHeader& h) { return u64(h.sequence); });
  Compare(headers, "the channel count", ErrorCode::kShapeMismatch,
          [&](const CallHeader& h) { return u64(h.channels); });
  Compare(headers, "momentum", ErrorCode::kInvalidArgument,
          [&](const CallHeader& h) { return FloatText(h.momentum); });
  Compare(headers, "epsilon", ErrorCode::kInvalidArgument,
          [&](const CallHeader& h) { return FloatText(h.epsilon); });
  Compare(headers, "renorm_momentum", ErrorCode::kInvalidArgument,
          [&](const CallHeader& h) { return FloatText(h.renorm_momentum); });
  Compare(headers, "the options center, scale, renorm, adjustment, synchronized_gradients",
          ErrorCode::kInvalidArgument, [&](const CallHeader& h) { return FlagsText(h.flags); });
  Compare(headers, "virtual_batch_size", ErrorCode::kInvalidArgument,
          [&](const CallHeader& h) { return u64(static_cast<uint64_t>(h.virtual_batch_size)); });
  Compare(headers, "the axis list and renorm_clipping (hash)", ErrorCode::kInvalidArgument,
          [&](const CallHeader& h) { return u64(h.axes_hash); });

  // The ghost batches of the non-empty ranks, compared with the first of them.
  Agreement agreed;
  std::vector<CallHeader> nonempty;
  std::vector<size_t> which;
  for (size_t r = 0; r < ranks; ++r) {
    agreed.count += headers[r].count;
    if (headers[r].groups == 0) continue;
    nonempty.push_back(headers[r]);
    which.push_back(r);
  }
  if (nonempty.empty()) return agreed;
  for (size_t i = 1; i < nonempty.size(); ++i) {
    if (nonempty[i].groups != nonempty[0].groups) {
      Fail(ErrorCode::kShapeMismatch,
           "the ranks disagree on the number of ghost batches (batch / virtual_batch_size): rank " +
               std::to_string(which[0]) + " has " + u64(nonempty[0].groups) + ", rank " +
               std::to_string(which[i]) + " has " + u64(nonempty[i].groups));
    }
  }
  agreed.groups = static_cast<size_t>(nonempty[0].groups);
  return agreed;
}

}  // namespace bnorm
