/// \file benchmarks/hyperbolic_bench.cpp
/// \brief Hyperbolic attention (hyperbolic/hyperbolic_attention.hpp), one query, one thread, for
/// each aggregation, beside a naive scalar implementation of the same maths and plain scaled
/// dot-product attention on the same shape.
///
/// Rows (d = dim of queries, keys and values; n keys; agg 0 = tangent_origin, 1 =
/// einstein_midpoint, 2 = frechet_mean):
///   hyperbolic/d/n/agg                  `compute(q, K, V)`: key terms computed inside the call
///   hyperbolic_keyset/d/n/agg           `compute(q, key_set, V)` with the key set prepared once
///   hyperbolic_naive/tangent/d/n          scalar loops: per key ‖q−k‖², norms, std::acosh;
///   std::exp
///                                         softmax; per value std::atanh; exp₀ (float throughout)
///   sdpa/d/n                              scaled_dot_product_attention<float>::compute, same shape
/// Counters: "bytes/s" = bytes of K and V read per second (the memory-bound measure for one query).
/// Target (issue 5): tangent aggregation d128 n1000 ≤ 100 µs per call on one thread.

#include <benchmark/benchmark.h>

#include <cmath>
#include <cstddef>
#include <random>
#include <vector>

#include "ruvector/attention/core/parallel.hpp"
#include "ruvector/attention/hyperbolic.hpp"
#include "ruvector/attention/standard/scaled_dot_product.hpp"

namespace ra = ruvector::attention;

namespace {

struct problem {
  std::vector<float> q;
  ra::row_matrix<float> K;
  ra::row_matrix<float> V;
};

/// Points of the unit ball (c = 1) with norms uniform in [0, 0.9).
problem make_problem(std::size_t d, std::size_t n) {
  std::mt19937_64 gen(42);
  std::normal_distribution<float> normal;
  std::uniform_real_distribution<float> radius(0.0f, 0.9f);
  auto fill = [&](float* x) {
    float sq = 0;
    for (std::size_t i = 0; i < d; ++i) {
      x[i] = normal(gen);
      sq += x[i] * x[i];
    }
    const float r = radius(gen) / std::sqrt(sq);
    for (std::size_t i = 0; i < d; ++i) x[i] *= r;
  };
  problem p{std::vector<float>(d), ra::row_matrix<float>(n, d), ra::row_matrix<float>(n, d)};
  fill(p.q.data());
  for (std::size_t j = 0; j < n; ++j) {
    fill(p.K.row(static_cast<Eigen::Index>(j)).data());
    fill(p.V.row(static_cast<Eigen::Index>(j)).data());
  }
  return p;
}

ra::hyperbolic_aggregation aggregation_of(int a) {
  return a == 0   ? ra::hyperbolic_aggregation::tangent_origin
         : a == 1 ? ra::hyperbolic_aggregation::einstein_midpoint
                  : ra::hyperbolic_aggregation::frechet_mean;
}

void set_counters(benchmark::State& state, std::size_t d, std::size_t n) {
  state.counters["bytes/s"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * 2.0 * static_cast<double>(n * d * sizeof(float)),
      benchmark::Counter::kIsRate);
}

void BM_hyperbolic(benchmark::State& state) {
  ra::set_num_threads(1);
  const auto d = static_cast<std::size_t>(state.range(0));
  const auto n = static_cast<std::size_t>(state.range(1));
  const auto p = make_problem(d, n);
  ra::hyperbolic_attention_config cfg;
  cfg.dim = d;
  cfg.aggregation = aggregation_of(static_cast<int>(state.range(2)));
  const ra::hyperbolic_attention<float> attn(cfg);
  std::size_t iterations = 0;
  for (auto _ : state) {
    auto r = attn.compute_detailed(p.q, p.K, p.V);
    iterations = r.frechet.iterations;
    benchmark::DoNotOptimize(r.output.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, d, n);
  state.counters["frechet_iters"] = static_cast<double>(iterations);
}

void BM_hyperbolic_keyset(benchmark::State& state) {
  ra::set_num_threads(1);
  const auto d = static_cast<std::size_t>(state.range(0));
  const auto n = static_cast<std::size_t>(state.range(1));
  const auto p = make_problem(d, n);
  ra::hyperbolic_attention_config cfg;
  cfg.dim = d;
  cfg.aggregation = aggregation_of(static_cast<int>(state.range(2)));
  const ra::hyperbolic_attention<float> attn(cfg);
  const auto set = attn.prepare_keys(p.K);
  std::vector<float> out(d);
  for (auto _ : state) {
    attn.compute_into(p.q, set, p.V, out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, d, n);
}

/// The same maths as the tangent aggregation, written as plain scalar loops.
void BM_hyperbolic_naive(benchmark::State& state) {
  const auto d = static_cast<std::size_t>(state.range(0));
  const auto n = static_cast<std::size_t>(state.range(1));
  const auto p = make_problem(d, n);
  std::vector<float> s(n), out(d);
  for (auto _ : state) {
    float qq = 0;
    for (std::size_t i = 0; i < d; ++i) qq += p.q[i] * p.q[i];
    for (std::size_t j = 0; j < n; ++j) {
      const float* k = p.K.row(static_cast<Eigen::Index>(j)).data();
      float diff = 0, kk = 0;
      for (std::size_t i = 0; i < d; ++i) {
        diff += (p.q[i] - k[i]) * (p.q[i] - k[i]);
        kk += k[i] * k[i];
      }
      s[j] = -std::acosh(1 + 2 * diff / ((1 - qq) * (1 - kk)));
    }
    float m = s[0];
    for (float x : s) m = std::max(m, x);
    float z = 0;
    for (auto& x : s) z += (x = std::exp(x - m));
    for (auto& x : s) x /= z;
    std::fill(out.begin(), out.end(), 0.0f);
    for (std::size_t j = 0; j < n; ++j) {
      const float* v = p.V.row(static_cast<Eigen::Index>(j)).data();
      float vv = 0;
      for (std::size_t i = 0; i < d; ++i) vv += v[i] * v[i];
      const float r = std::sqrt(vv);
      const float coef = r > 0 ? s[j] * std::atanh(r) / r : s[j];
      for (std::size_t i = 0; i < d; ++i) out[i] += coef * v[i];
    }
    float uu = 0;
    for (float x : out) uu += x * x;
    const float u = std::sqrt(uu);
    if (u > 0)
      for (auto& x : out) x *= std::tanh(u) / u;
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, d, n);
}

void BM_sdpa(benchmark::State& state) {
  ra::set_num_threads(1);
  const auto d = static_cast<std::size_t>(state.range(0));
  const auto n = static_cast<std::size_t>(state.range(1));
  const auto p = make_problem(d, n);
  const ra::scaled_dot_product_attention<float> attn(d);
  for (auto _ : state) {
    auto out = attn.compute(p.q, p.K, p.V);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, d, n);
}

void shapes_with_aggregation(benchmark::internal::Benchmark* b) {
  b->ArgNames({"d", "n", "agg"});
  for (auto [d, n] : {std::pair{128, 1000}, std::pair{64, 4096}})
    for (int a = 0; a < 3; ++a) b->Args({d, n, a});
  b->Unit(benchmark::kMicrosecond);
}

void shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"d", "n"});
  b->Args({128, 1000})->Args({64, 4096});
  b->Unit(benchmark::kMicrosecond);
}

}  // namespace

BENCHMARK(BM_hyperbolic)->Apply(shapes_with_aggregation);
BENCHMARK(BM_hyperbolic_keyset)->Apply(shapes_with_aggregation);
BENCHMARK(BM_hyperbolic_naive)->Apply(shapes);
BENCHMARK(BM_sdpa)->Apply(shapes);
