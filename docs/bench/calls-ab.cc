// SPDX-License-Identifier: Apache-2.0
// A per-call timer for before/after comparisons of one bnorm operation on a dense
// [outer, C, inner] float32 tensor on one thread (THREADS set in the environment: all cores):
//   calls-ab OP outer C inner calls, OP = infer | moments | train | reduce | backward
// prints the median per-call time of the last three quarters of the calls. Built against
// two libbnorm.a (before, after) and run alternately by calls-ab.sh, as in BENCHMARKS.md:
//   g++ -O3 -march=native -std=c++17 -Iinclude docs/bench/calls-ab.cc -o /tmp/calls-new \
//       build/src/libbnorm.a -lhwy -ltbb -lpthread
#include <bnorm/backward.hpp>
#include <bnorm/kernels.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include <chrono>
#include <algorithm>
int main(int argc, char** argv) {
  const char* op = argv[1];
  size_t outer = atol(argv[2]), C = atol(argv[3]), inner = atol(argv[4]); int calls = atoi(argv[5]);
  size_t n = outer * C * inner;
  float* x = (float*)aligned_alloc(64, n * 4); float* dy = (float*)aligned_alloc(64, n * 4); float* dx = (float*)aligned_alloc(64, n * 4);
  for (size_t i = 0; i < n; ++i) { x[i] = (i * 7919 % 1000) * 1e-3f; dy[i] = (i * 104729 % 997) * 1e-3f; dx[i] = 0; }
  std::vector<float> hi(C, 0.5f), lo(C, 0.f), k(C, 1.f), a(C, 0.1f), b(C, 0.2f), g(C, 1.f), be(C, 0.f);
  std::vector<double> s1(C), s2(C), m(C), v(C);
  bnorm::Geometry geo = bnorm::Geometry::Dense(outer, C, inner);
  bnorm::Execution e = getenv("THREADS") ? bnorm::Execution() : bnorm::Execution::Serial();
  bnorm::BackwardReduceParams rp; rp.mean_hi = hi.data(); rp.mean_lo = lo.data();
  double var = 1.0;
  std::vector<double> vars(C, 1.0);
  std::vector<double> ts;
  for (int i = 0; i < calls; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    if (!strcmp(op, "moments")) bnorm::BatchMoments(x, geo, m.data(), v.data(), e);
    else if (!strcmp(op, "infer")) { bnorm::NormalizeParams p; p.mean_hi = hi.data(); p.scale = k.data(); p.shift = a.data(); bnorm::Normalize(x, dx, geo, p, e); }
    else if (!strcmp(op, "reduce")) bnorm::BackwardReduce(x, dy, bnorm::DType::kFloat32, geo, rp, s1.data(), s2.data(), e);
    else if (!strcmp(op, "train")) bnorm::TrainingNormalize(x, dx, bnorm::DType::kFloat32, geo, g.data(), be.data(), 1e-3, m.data(), v.data(), e);
    else if (!strcmp(op, "backward")) bnorm::TrainingBackward(x, dy, dx, bnorm::DType::kFloat32, geo, hi.data(), lo.data(), vars.data(), g.data(), 1e-3, s1.data(), s2.data(), e);
    ts.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ts.begin() + calls / 4, ts.end());
  printf("%.4f ms  ", ts[calls / 4 + (calls - calls / 4) / 2] * 1e3);
  printf("%g %g\n", m[0] + s1[0], dx[1]);
  (void)var;
}
