/// \file benchmarks/topology_bench.cpp
/// \brief Topology-gated attention (topology/*.hpp), float, d = dv = 64, kNN k = 16, keys N(0, 1).
///
///   topology/knn_build/n:N        `exact_knn` of the N keys (O(N²·d)) — the graph alone.
///   topology/prepare/n:N          `prepare_coherence_keys`: the kNN graph plus the N·k edge
///   cosines. topology/metrics/n:N          `compute_coherence` on prepared keys for one query's
///   softmax
///                                 weights: the metric time alone (O(N·k + N log N)).
///   topology/metrics_naive/n:N    a textbook evaluation written here: the same metrics with
///                                 every edge cosine recomputed in scalar double and the core S
///                                 found by scanning candidate thresholds (O(N²) for S).
///   topology/gated/<mode>/n:N     one `compute` call of `topology_gated_attention` in a forced
///                                 mode (stable / cautious top_k = 32 / freeze freeze_k = 8) on
///                                 prepared keys, update period 10⁹ so no call recomputes metrics.
///   topology/gated_update/n:N     stable mode with update period 1 on prepared keys: every call
///                                 recomputes the full softmax weights and the metrics.
///   topology/gated_update_raw/n:N the same on a raw key matrix: every call rebuilds the kNN graph.
///   topology/softmax/n:N          plain `scaled_dot_product_attention::compute` (the baseline).
///   topology/softmax_naive/n:N    a scalar textbook softmax attention written here.
/// Counter `keys/s` = keys processed per second. The label is the compiled SIMD architecture.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <vector>

#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/kernels/knn.hpp"
#include "ruvector/attention/kernels/simd.hpp"
#include "ruvector/attention/standard/scaled_dot_product.hpp"
#include "ruvector/attention/topology/coherence.hpp"
#include "ruvector/attention/topology/gated_attention.hpp"
#include "ruvector/attention/topology/policy.hpp"

namespace ra = ruvector::attention;

namespace {

constexpr std::size_t kD = 64, kK = 16;

struct data {
  ra::row_matrix<float> keys, values;
  std::vector<float> q, weights;
};

data make_data(std::size_t n) {
  std::mt19937 gen(static_cast<std::uint32_t>(n));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  data d;
  d.keys.resize(static_cast<Eigen::Index>(n), kD);
  d.values.resize(static_cast<Eigen::Index>(n), kD);
  for (Eigen::Index i = 0; i < d.keys.size(); ++i) d.keys.data()[i] = normal(gen);
  for (Eigen::Index i = 0; i < d.values.size(); ++i) d.values.data()[i] = normal(gen);
  d.q.resize(kD);
  for (auto& x : d.q) x = normal(gen);
  const ra::scaled_dot_product_attention<float> att(kD);
  d.weights = att.compute_with_weights(d.q, d.keys, d.values).weights;
  return d;
}

const data& get(std::size_t n) {
  static const data d1 = make_data(1024), d4 = make_data(4096);
  return n == 1024 ? d1 : d4;
}

const ra::coherence_keys<float>& prepared(std::size_t n) {
  static const auto p1 = ra::prepare_coherence_keys<float>(get(1024).keys, kK);
  static const auto p4 = ra::prepare_coherence_keys<float>(get(4096).keys, kK);
  return n == 1024 ? p1 : p4;
}

void finish(benchmark::State& state, std::size_t n) {
  state.counters["keys/s"] =
      benchmark::Counter(static_cast<double>(n) * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
  state.SetLabel(ra::kernels::simd_arch_name());
}

void BM_knn_build(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto& d = get(n);
  for (auto _ : state) {
    auto knn = ra::exact_knn<float>(d.keys, kK);
    benchmark::DoNotOptimize(knn.indices.data());
  }
  finish(state, n);
}

void BM_prepare(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto& d = get(n);
  for (auto _ : state) {
    auto p = ra::prepare_coherence_keys<float>(d.keys, kK);
    benchmark::DoNotOptimize(p.edge_cosines().data());
  }
  finish(state, n);
}

void BM_metrics(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto& p = prepared(n);
  const auto& w = get(n).weights;
  for (auto _ : state) {
    auto m = ra::compute_coherence(p, w);
    benchmark::DoNotOptimize(m.coherence);
  }
  finish(state, n);
}

// Textbook metrics: scalar double cosines per edge, the core by scanning thresholds.
double naive_metrics(const ra::row_matrix<float>& k, const ra::knn_lists<float>& g,
                     const std::vector<float>& w) {
  const std::size_t n = g.n;
  double total = 0;
  for (float x : w) total += x;
  std::vector<double> a(n);
  for (std::size_t i = 0; i < n; ++i) a[i] = w[i] / total;
  double theta = 0;
  for (std::size_t t = 0; t < n; ++t) {  // candidate thresholds, largest first found by scanning
    double mass = 0;
    for (std::size_t i = 0; i < n; ++i)
      if (a[i] >= a[t]) mass += a[i];
    if (mass >= 0.5 - 1e-12) theta = std::max(theta, a[t]);
  }
  double bn = 0, bd = 0, cn = 0, cd = 0, ds = 0, cs = 0, cs2 = 0;
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t m = 0; m < g.k; ++m) {
      const std::size_t j = g.indices[i * g.k + m];
      double dot = 0, ni = 0, nj = 0;
      for (std::size_t c = 0; c < kD; ++c) {
        dot += double(k(Eigen::Index(i), Eigen::Index(c))) * k(Eigen::Index(j), Eigen::Index(c));
        ni += double(k(Eigen::Index(i), Eigen::Index(c))) * k(Eigen::Index(i), Eigen::Index(c));
        nj += double(k(Eigen::Index(j), Eigen::Index(c))) * k(Eigen::Index(j), Eigen::Index(c));
      }
      const double cosv = dot / std::sqrt(ni * nj), s = std::max(0.0, cosv);
      const bool si = a[i] >= theta, sj = a[j] >= theta;
      const double sum = a[i] + a[j], diff = std::abs(a[i] - a[j]);
      if (si || sj) bd += sum;
      if (si != sj) bn += diff;
      cn += s * diff;
      cd += s * sum;
      ds += diff / sum;
      cs += cosv;
      cs2 += cosv * cosv;
    }
  const double e = double(n * g.k), mean = cs / e;
  return 1 - (0.35 * bn / bd + 0.35 * cn / cd + 0.2 * ds / e + 0.1 * (cs2 / e - mean * mean));
}

void BM_metrics_naive(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto& p = prepared(n);
  const auto& w = get(n).weights;
  for (auto _ : state) benchmark::DoNotOptimize(naive_metrics(p.keys(), p.knn(), w));
  finish(state, n);
}

ra::topology_gated_config<float> forced(ra::topology_mode mode, std::size_t period) {
  ra::topology_gated_config<float> c;
  c.top_k = 32;
  c.freeze_k = 8;
  c.coherence.k = kK;
  c.policy.update_period = period;
  c.policy.hysteresis = 0;
  if (mode == ra::topology_mode::stable) {
    c.policy.cautious_threshold = 1e-9;
    c.policy.freeze_threshold = 0;
  } else if (mode == ra::topology_mode::cautious) {
    c.policy.cautious_threshold = 1;
    c.policy.freeze_threshold = 0;
  } else {
    c.policy.cautious_threshold = 1;
    c.policy.freeze_threshold = 0.9999;
  }
  return c;
}

void bm_gated(benchmark::State& state, ra::topology_mode mode) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto& d = get(n);
  const auto& p = prepared(n);
  const ra::topology_gated_attention<float> att(kD, forced(mode, 1'000'000'000));
  (void)att.compute(d.q, p, d.values);  // call 0: the update that sets the mode
  if (att.mode() != mode) state.SkipWithError("mode not forced");
  for (auto _ : state) {
    auto out = att.compute(d.q, p, d.values);
    benchmark::DoNotOptimize(out.data());
  }
  finish(state, n);
}

void BM_gated_stable(benchmark::State& s) { bm_gated(s, ra::topology_mode::stable); }
void BM_gated_cautious(benchmark::State& s) { bm_gated(s, ra::topology_mode::cautious); }
void BM_gated_freeze(benchmark::State& s) { bm_gated(s, ra::topology_mode::freeze); }

void BM_gated_update(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto& d = get(n);
  const auto& p = prepared(n);
  const ra::topology_gated_attention<float> att(kD, forced(ra::topology_mode::stable, 1));
  for (auto _ : state) {
    auto out = att.compute(d.q, p, d.values);
    benchmark::DoNotOptimize(out.data());
  }
  finish(state, n);
}

void BM_gated_update_raw(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto& d = get(n);
  const ra::topology_gated_attention<float> att(kD, forced(ra::topology_mode::stable, 1));
  for (auto _ : state) {
    auto out = att.compute(d.q, d.keys, d.values);
    benchmark::DoNotOptimize(out.data());
  }
  finish(state, n);
}

void BM_softmax(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto& d = get(n);
  const ra::scaled_dot_product_attention<float> att(kD);
  for (auto _ : state) {
    auto out = att.compute(d.q, d.keys, d.values);
    benchmark::DoNotOptimize(out.data());
  }
  finish(state, n);
}

void BM_softmax_naive(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto& d = get(n);
  std::vector<float> s(n), out(kD);
  const float scale = 1.0f / std::sqrt(float(kD));
  for (auto _ : state) {
    float m = -std::numeric_limits<float>::infinity();
    for (std::size_t j = 0; j < n; ++j) {
      float dot = 0;
      for (std::size_t c = 0; c < kD; ++c) dot += d.q[c] * d.keys(Eigen::Index(j), Eigen::Index(c));
      s[j] = scale * dot;
      m = std::max(m, s[j]);
    }
    float l = 0;
    for (auto& x : s) l += (x = std::exp(x - m));
    std::fill(out.begin(), out.end(), 0.0f);
    for (std::size_t j = 0; j < n; ++j)
      for (std::size_t c = 0; c < kD; ++c)
        out[c] += s[j] / l * d.values(Eigen::Index(j), Eigen::Index(c));
    benchmark::DoNotOptimize(out.data());
  }
  finish(state, n);
}

#define RA_SIZES ->Arg(1024)->Arg(4096)->ArgName("n")->Unit(benchmark::kMicrosecond)

BENCHMARK(BM_knn_build) RA_SIZES->Iterations(3)->Name("topology/knn_build");
BENCHMARK(BM_prepare) RA_SIZES->Iterations(3)->Name("topology/prepare");
BENCHMARK(BM_metrics) RA_SIZES->MinTime(0.2)->Name("topology/metrics");
BENCHMARK(BM_metrics_naive) RA_SIZES->Iterations(2)->Name("topology/metrics_naive");
BENCHMARK(BM_gated_stable) RA_SIZES->MinTime(0.2)->Name("topology/gated/stable");
BENCHMARK(BM_gated_cautious) RA_SIZES->MinTime(0.2)->Name("topology/gated/cautious");
BENCHMARK(BM_gated_freeze) RA_SIZES->MinTime(0.2)->Name("topology/gated/freeze");
BENCHMARK(BM_gated_update) RA_SIZES->MinTime(0.2)->Name("topology/gated_update");
BENCHMARK(BM_gated_update_raw)
    ->Arg(1024)
    ->ArgName("n")
    ->Unit(benchmark::kMicrosecond)
    ->Iterations(5)
    ->Name("topology/gated_update_raw");
BENCHMARK(BM_softmax) RA_SIZES->MinTime(0.2)->Name("topology/softmax");
BENCHMARK(BM_softmax_naive) RA_SIZES->MinTime(0.2)->Name("topology/softmax_naive");

}  // namespace
