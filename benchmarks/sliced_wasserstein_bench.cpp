/// \file benchmarks/sliced_wasserstein_bench.cpp
/// \brief Sliced-Wasserstein attention (transport/sliced_wasserstein.hpp): per-query latency with
/// prepared keys, with and without the two-stage filter, against a naive implementation that
/// projects and sorts every key set for every query.
///
/// Shape: N = 4096 key sets of 8 vectors each, d = 64, P = 16 directions, p = 2, query sets of 8
/// vectors, dv = 64, float, one thread.
///   prepare_keys        sliced_wasserstein_attention::prepare_keys (reported separately)
///   query_filtered      compute_into with C = 64 (top-64 by mean·mean, SW on those only)
///   query_all           compute_into with C = 0 (SW against all 4096 sets)
///   query_naive         per query: project + sort every key set, SW on all, softmax, value sum
///                       (plain loops, std::sort) — what one gets without prepared keys
/// Counters: queries_per_second; ns_per_candidate = time per query / SW-scored key sets (for
/// query_filtered this includes the 4096 mean·mean filter dots, which dominate). The machine is
/// shared: compare CPU time, not wall time, when the load is high.
/// Inputs are N(0, 1) from fixed seeds.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "ruvector/attention/core/parallel.hpp"
#include "ruvector/attention/kernels/simd.hpp"
#include "ruvector/attention/transport/sliced_wasserstein.hpp"

namespace ra = ruvector::attention;

namespace {

constexpr std::size_t kSets = 4096, kSetSize = 8, kDim = 64, kP = 16, kDv = 64, kQueries = 64;

ra::row_matrix<float> random_matrix(std::size_t rows, std::size_t cols, std::uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  ra::row_matrix<float> m(static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(cols));
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = nd(g);
  return m;
}

struct fixture {
  ra::vector_sets<float> keys;
  ra::row_matrix<float> values;
  ra::vector_sets<float> queries;
  fixture() {
    const std::vector<std::size_t> ks(kSets, kSetSize), qs(kQueries, kSetSize);
    keys = ra::vector_sets<float>::from_sizes(random_matrix(kSets * kSetSize, kDim, 1), ks);
    values = random_matrix(kSets, kDv, 2);
    queries = ra::vector_sets<float>::from_sizes(random_matrix(kQueries * kSetSize, kDim, 3), qs);
  }
};

const fixture& data() {
  static const fixture f;
  return f;
}

ra::sliced_wasserstein_attention<float> make(std::size_t candidates) {
  return ra::sliced_wasserstein_attention<float>({.dim = kDim,
                                                  .num_projections = kP,
                                                  .p = 2.0,
                                                  .temperature = 1.0,
                                                  .candidates = candidates,
                                                  .seed = 7});
}

void label(benchmark::State& state) { state.SetLabel(ra::kernels::simd_arch_name()); }

void BM_prepare_keys(benchmark::State& state) {
  ra::set_num_threads(1);
  const auto att = make(0);
  for (auto _ : state) benchmark::DoNotOptimize(att.prepare_keys(data().keys));
  state.counters["sets_per_second"] =
      benchmark::Counter(double(kSets), benchmark::Counter::kIsIterationInvariantRate);
  label(state);
}

void run_queries(benchmark::State& state, std::size_t candidates) {
  ra::set_num_threads(1);
  const auto att = make(candidates);
  const auto pk = att.prepare_keys(data().keys);
  std::vector<float> out(kDv);
  std::size_t q = 0;
  for (auto _ : state) {
    att.compute_into(data().queries.set(q), pk, data().values, out);
    benchmark::DoNotOptimize(out.data());
    q = (q + 1) % kQueries;
  }
  const double scored = double(candidates == 0 ? kSets : candidates);
  state.counters["queries_per_second"] =
      benchmark::Counter(1.0, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["ns_per_candidate"] = benchmark::Counter(
      scored * 1e-9, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  label(state);
}

void BM_query_filtered(benchmark::State& state) { run_queries(state, 64); }
void BM_query_all(benchmark::State& state) { run_queries(state, 0); }

// Naive: for every key set, project each vector on each direction (plain dot loops), sort per
// direction, SW_2^2 by sorted matching, then softmax and the value sum — no precomputation.
void BM_query_naive(benchmark::State& state) {
  const auto att = make(0);
  const auto& dirs = att.directions();
  const auto& keys = data().keys;
  const auto& values = data().values;
  std::vector<float> qp(kP * kSetSize), kp(kP * kSetSize), s(kSets), out(kDv);
  const auto project = [&](const float* x, std::vector<float>& dst) {
    for (std::size_t l = 0; l < kP; ++l) {
      for (std::size_t i = 0; i < kSetSize; ++i) {
        float acc = 0;
        for (std::size_t c = 0; c < kDim; ++c)
          acc += x[i * kDim + c] * dirs(Eigen::Index(l), Eigen::Index(c));
        dst[l * kSetSize + i] = acc;
      }
      std::sort(dst.begin() + std::ptrdiff_t(l * kSetSize),
                dst.begin() + std::ptrdiff_t((l + 1) * kSetSize));
    }
  };
  std::size_t q = 0;
  for (auto _ : state) {
    project(data().queries.rows().data() + q * kSetSize * kDim, qp);
    float mx = -INFINITY;
    for (std::size_t j = 0; j < kSets; ++j) {
      project(keys.rows().data() + j * kSetSize * kDim, kp);
      float acc = 0;
      for (std::size_t k = 0; k < kP * kSetSize; ++k) acc += (qp[k] - kp[k]) * (qp[k] - kp[k]);
      s[j] = -acc / float(kP * kSetSize);
      mx = std::max(mx, s[j]);
    }
    float z = 0;
    for (auto& v : s) z += (v = std::exp(v - mx));
    std::fill(out.begin(), out.end(), 0.0f);
    for (std::size_t j = 0; j < kSets; ++j)
      for (std::size_t c = 0; c < kDv; ++c)
        out[c] += s[j] / z * values(Eigen::Index(j), Eigen::Index(c));
    benchmark::DoNotOptimize(out.data());
    q = (q + 1) % kQueries;
  }
  state.counters["queries_per_second"] =
      benchmark::Counter(1.0, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["ns_per_candidate"] =
      benchmark::Counter(double(kSets) * 1e-9, benchmark::Counter::kIsIterationInvariantRate |
                                                   benchmark::Counter::kInvert);
  label(state);
}

// Batched queries (compute_batch over 64 query sets), 1 and 2 threads, C = 64.
void BM_batch_filtered(benchmark::State& state) {
  ra::set_num_threads(static_cast<int>(state.range(0)));
  const auto att = make(64);
  const auto pk = att.prepare_keys(data().keys);
  for (auto _ : state)
    benchmark::DoNotOptimize(att.compute_batch(data().queries, pk, data().values));
  state.counters["queries_per_second"] =
      benchmark::Counter(double(kQueries), benchmark::Counter::kIsIterationInvariantRate);
  ra::set_num_threads(1);
  label(state);
}

}  // namespace

BENCHMARK(BM_prepare_keys)->Unit(benchmark::kMillisecond)->MinTime(0.5);
BENCHMARK(BM_query_filtered)->Unit(benchmark::kMicrosecond)->MinTime(0.5);
BENCHMARK(BM_query_all)->Unit(benchmark::kMicrosecond)->MinTime(0.5);
BENCHMARK(BM_query_naive)->Unit(benchmark::kMillisecond)->MinTime(0.5);
BENCHMARK(BM_batch_filtered)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMicrosecond)
    ->MinTime(0.5)
    ->UseRealTime();
