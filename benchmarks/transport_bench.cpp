// Benchmarks of the transport family: centroid OT attention over 100 000 keys (d = 64, M = 32,
// a batch of 64 queries; clustering done once outside the timed loop and timed separately) vs
// plain softmax attention over all 100 000 keys (naive loop, the reference), and Sinkhorn on a
// 256 × 256 cost matrix (sweeps per second).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <vector>

#include "ruvector/attention/core/rng.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/transport/centroid_ot.hpp"
#include "ruvector/attention/transport/kmeans.hpp"
#include "ruvector/attention/transport/sinkhorn.hpp"

namespace ra = ruvector::attention;

namespace {

constexpr std::size_t kKeys = 100000, kDim = 64, kClusters = 32, kBatch = 64;

ra::row_matrix<float> random_matrix(std::size_t r, std::size_t c, std::uint64_t seed) {
  ra::rng g(seed);
  ra::row_matrix<float> m(static_cast<Eigen::Index>(r), static_cast<Eigen::Index>(c));
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = g.normal<float>();
  return m;
}

struct fixture {
  ra::row_matrix<float> keys = random_matrix(kKeys, kDim, 1);
  ra::row_matrix<float> values = random_matrix(kKeys, kDim, 2);
  ra::row_matrix<float> queries = random_matrix(kBatch, kDim, 3);
};

const fixture& data() {
  static const fixture f;
  return f;
}

const ra::centroid_key_set<float>& key_set() {
  static const ra::centroid_key_set<float> ks = [] {
    ra::kmeans_options opt;
    opt.clusters = kClusters;
    opt.max_iterations = 20;
    return ra::centroid_key_set<float>(data().keys, data().values, opt);
  }();
  return ks;
}

// k-means clustering of the 100k keys (20 Lloyd iterations cap): one-off cost, timed alone.
void BM_KmeansClustering(benchmark::State& state) {
  const auto& f = data();
  ra::kmeans_options opt;
  opt.clusters = kClusters;
  opt.max_iterations = 20;
  std::size_t iters = 0;
  for (auto _ : state) {
    auto r = ra::kmeans<float>(f.keys, opt);
    iters = r.iterations;
    benchmark::DoNotOptimize(r.inertia);
  }
  state.counters["lloyd_iterations"] = static_cast<double>(iters);
}
BENCHMARK(BM_KmeansClustering)->Unit(benchmark::kMillisecond)->Iterations(2);

// Centroid OT attention for a batch of 64 queries (ρ = 1, ε = 1, default τ).
void BM_CentroidOtBatch(benchmark::State& state) {
  const auto& f = data();
  const auto& ks = key_set();
  ra::centroid_ot_config<float> cfg;
  const ra::centroid_ot_attention<float> att(cfg);
  for (auto _ : state) {
    auto r = att.compute_batch(f.queries, ks);
    benchmark::DoNotOptimize(r.output.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kBatch));
  state.counters["us_per_query"] = benchmark::Counter(
      static_cast<double>(kBatch),
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_CentroidOtBatch)->Unit(benchmark::kMicrosecond);

// Single-query closed form.
void BM_CentroidOtSingle(benchmark::State& state) {
  const auto& f = data();
  const auto& ks = key_set();
  const ra::centroid_ot_attention<float> att;
  const std::span<const float> q(f.queries.row(0).data(), kDim);
  for (auto _ : state) benchmark::DoNotOptimize(att.compute(q, ks));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_CentroidOtSingle)->Unit(benchmark::kMicrosecond);

// Reference: plain softmax attention over all 100k keys, naive loops (64 queries).
void BM_NaiveSoftmaxFullKeys(benchmark::State& state) {
  const auto& f = data();
  std::vector<float> s(kKeys), out(kDim);
  const float scale = 1.0f / std::sqrt(static_cast<float>(kDim));
  for (auto _ : state) {
    for (std::size_t i = 0; i < kBatch; ++i) {
      const float* q = f.queries.row(static_cast<Eigen::Index>(i)).data();
      float mx = -INFINITY;
      for (std::size_t j = 0; j < kKeys; ++j) {
        const float* k = f.keys.row(static_cast<Eigen::Index>(j)).data();
        float d = 0;
        for (std::size_t c = 0; c < kDim; ++c) d += q[c] * k[c];
        s[j] = d * scale;
        mx = std::max(mx, s[j]);
      }
      double sum = 0;
      for (std::size_t j = 0; j < kKeys; ++j) sum += (s[j] = std::exp(s[j] - mx));
      std::fill(out.begin(), out.end(), 0.0f);
      for (std::size_t j = 0; j < kKeys; ++j) {
        const float w = static_cast<float>(s[j] / sum);
        const float* v = f.values.row(static_cast<Eigen::Index>(j)).data();
        for (std::size_t c = 0; c < kDim; ++c) out[c] += w * v[c];
      }
      benchmark::DoNotOptimize(out.data());
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kBatch));
}
BENCHMARK(BM_NaiveSoftmaxFullKeys)->Unit(benchmark::kMillisecond)->Iterations(3);

// Sinkhorn on 256 × 256 (fixed 200 sweeps, no ε-scaling): sweeps per second.
void BM_Sinkhorn256(benchmark::State& state) {
  const std::size_t n = 256;
  ra::row_matrix<double> c(n, n);
  ra::rng g(7);
  for (Eigen::Index i = 0; i < c.size(); ++i) c.data()[i] = g.uniform01();
  const std::vector<double> a(n, 1.0 / n);
  ra::sinkhorn_options<double> opt;
  opt.epsilon = 0.01;
  opt.tolerance = 0;
  opt.max_iterations = 200;
  opt.epsilon_scaling = 0;
  std::size_t sweeps = 0;
  for (auto _ : state) {
    auto r = ra::sinkhorn<double>(c, a, a, opt);
    sweeps += r.iterations;
    benchmark::DoNotOptimize(r.cost);
  }
  state.counters["sweeps_per_second"] =
      benchmark::Counter(static_cast<double>(sweeps), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Sinkhorn256)->Unit(benchmark::kMillisecond);

}  // namespace
