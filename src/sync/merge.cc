// SPDX-License-Identifier: Apache-2.0
// The arithmetic of the collectives across ranks: Chan's merge of (count,
// mean, M2) records and the rank-ordered sum, and the Communicator's default
// collectives built on AllGather. Plain scalar double code, compiled with
// -ffp-contract=off (src/CMakeLists.txt) and outside SIMD dispatch: an FMA
// rounds differently from a multiply and an add, so a contracted build on one
// rank and an uncontracted one on another would disagree in the last bit, and
// every rank must hold the same statistics.
#include <cstddef>
#include <vector>

#include "bnorm/communicator.hpp"

namespace bnorm {
namespace {

constexpr size_t kRecord = 3;  // count, mean, M2

// a, then b (a of lower ranks): Chan, Golub and LeVeque's pairwise update. An
// empty side is the identity, exactly (a merge with count 0 would recompute
// the mean as a + (b - a) and could change its last bit).
void MergeRecord(const double* a, const double* b, double* out) {
  if (b[0] == 0.0) {
    out[0] = a[0];
    out[1] = a[1];
    out[2] = a[2];
    return;
  }
  if (a[0] == 0.0) {
    out[0] = b[0];
    out[1] = b[1];
    out[2] = b[2];
    return;
  }
  const double count = a[0] + b[0];
  const double delta = b[1] - a[1];
  const double mean = a[1] + delta * (b[0] / count);
  const double m2 = a[2] + b[2] + delta * delta * (a[0] / count * b[0]);
  out[0] = count;
  out[1] = mean;
  out[2] = m2;
}

}  // namespace

Communicator::~Communicator() = default;

void MergeMoments(const double* earlier, double* later, size_t groups) {
  for (size_t q = 0; q < groups; ++q) {
    MergeRecord(earlier + q * kRecord, later + q * kRecord, later + q * kRecord);
  }
}

void AddInRankOrder(const double* earlier, double* later, size_t count) {
  for (size_t i = 0; i < count; ++i) later[i] = earlier[i] + later[i];
}

// Every rank folds the same gathered records left to right: rank 0, then 1, ...
void Communicator::AllMergeMoments(double* records, size_t groups) {
  const size_t ranks = static_cast<size_t>(size());
  const size_t values = groups * kRecord;
  std::vector<double> gathered(ranks * values);
  AllGather(records, values * sizeof(double), gathered.data());
  for (size_t q = 0; q < groups; ++q) {
    double* acc = records + q * kRecord;
    const double* first = &gathered[q * kRecord];
    acc[0] = first[0];
    acc[1] = first[1];
    acc[2] = first[2];
    for (size_t r = 1; r < ranks; ++r) MergeRecord(acc, &gathered[r * values + q * kRecord], acc);
  }
}

void Communicator::AllSumInRankOrder(double* values, size_t count) {
  const size_t ranks = static_cast<size_t>(size());
  std::vector<double> gathered(ranks * count);
  AllGather(values, count * sizeof(double), gathered.data());
  for (size_t i = 0; i < count; ++i) {
    double sum = gathered[i];
    for (size_t r = 1; r < ranks; ++r) sum += gathered[r * count + i];
    values[i] = sum;
  }
}

}  // namespace bnorm
