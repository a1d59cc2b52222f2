/// \file benchmarks/curvature_bench.cpp
/// \brief Fused mixed-curvature attention (curvature/fused_attention.hpp) against plain scaled
/// dot-product attention (standard/scaled_dot_product.hpp) on the same shape, in the same run.
///
/// Shape: one query, d = 512 split E/H/S = 256/192/64, n = 1000 keys, dv = 512, float.
///   curvature/fused/heads:H          compute(q, key_set, V); keys prepared outside the timed loop
///   curvature/fused_prepare/heads:H  prepare_keys(K) + compute(q, key_set, V) (a new key set,
///                                    i.e. a fresh n·d allocation, every call)
///   curvature/fused_per_call/heads:H compute(q, K, V): keys prepared every call into the
///                                    thread-local key set (storage reused)
///   curvature/plain_sdpa             scaled_dot_product_attention<float>(512).compute(q, K, V)
/// H = 1 and H = 8 (8 heads with distinct weights, so no head is shared).
///
/// Counter `ratio_vs_plain` = (CPU time per call of this benchmark) / (CPU time per call of plain
/// SDPA), where the plain time is measured once per process with the same inputs (median of 15
/// batches of 200 calls). CPU time (std::clock) rather than wall time, because the machines this
/// runs on are shared and wall time is inflated unevenly by other load; compare the `CPU` column.
/// The target for `fused` is ≤ 1.5. The label is the compiled SIMD architecture.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <random>
#include <span>
#include <vector>

#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/curvature/fused_attention.hpp"
#include "ruvector/attention/curvature/quantized_attention.hpp"
#include "ruvector/attention/kernels/simd.hpp"
#include "ruvector/attention/standard/scaled_dot_product.hpp"

namespace ra = ruvector::attention;

namespace {

constexpr std::size_t kE = 256, kH = 192, kS = 64, kD = kE + kH + kS, kN = 1000, kDv = 512;

struct curvature_inputs {
  ra::row_matrix<float> keys, values;
  std::vector<float> query;
};

// E and S parts N(0, 1); H parts inside the unit ball (radius uniform in [0, 0.9)).
std::vector<float> random_point(std::mt19937& gen) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> unit(0.0f, 0.9f);
  std::vector<float> x(kD);
  for (auto& v : x) v = normal(gen);
  float n2 = 0.0f;
  for (std::size_t i = kE; i < kE + kH; ++i) n2 += x[i] * x[i];
  const float f = unit(gen) / std::sqrt(n2);
  for (std::size_t i = kE; i < kE + kH; ++i) x[i] *= f;
  return x;
}

const curvature_inputs& inputs() {
  static const curvature_inputs in = [] {
    std::mt19937 gen(2024);
    curvature_inputs r;
    r.keys.resize(kN, kD);
    r.values.resize(kN, kDv);
    for (std::size_t j = 0; j < kN; ++j) {
      const auto k = random_point(gen);
      std::copy(k.begin(), k.end(), r.keys.row(static_cast<Eigen::Index>(j)).data());
    }
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (Eigen::Index i = 0; i < r.values.size(); ++i) r.values.data()[i] = normal(gen);
    r.query = random_point(gen);
    return r;
  }();
  return in;
}

ra::fused_curvature_config make_config(std::size_t heads) {
  ra::fused_curvature_config cfg;
  cfg.dims = {kE, kH, kS};
  cfg.num_heads = heads;
  for (std::size_t h = 0; h < heads; ++h) {
    const double t = static_cast<double>(h) / static_cast<double>(heads);
    cfg.head_weights.push_back({0.5 + 0.1 * t, 0.35 - 0.1 * t, 0.15 + 0.05 * t});
  }
  return cfg;
}

// Process CPU seconds (the machine is shared: CPU time is far less noisy than wall time).
double cpu_seconds() { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

// CPU seconds per plain SDPA call on the shared inputs (median of 15 batches of 200 calls).
double plain_seconds_per_call() {
  static const double seconds = [] {
    const auto& in = inputs();
    const ra::scaled_dot_product_attention<float> plain(kD);
    const std::span<const float> q(in.query);
    std::array<double, 15> batches{};
    for (auto& b : batches) {
      const double t0 = cpu_seconds();
      for (int i = 0; i < 200; ++i) benchmark::DoNotOptimize(plain.compute(q, in.keys, in.values));
      b = (cpu_seconds() - t0) / 200.0;
    }
    std::sort(batches.begin(), batches.end());
    return batches[batches.size() / 2];
  }();
  return seconds;
}

template <class F>
void run_timed(benchmark::State& state, F&& call) {
  const double plain = plain_seconds_per_call();  // measured before the timed loop
  const double t0 = cpu_seconds();
  for (auto _ : state) call();
  const double per_call =
      (cpu_seconds() - t0) /
      static_cast<double>(std::max<benchmark::IterationCount>(state.iterations(), 1));
  state.counters["ratio_vs_plain"] = per_call / plain;
  state.counters["plain_us"] = plain * 1e6;
  state.SetLabel(ra::kernels::simd_arch_name());
}

void bm_fused(benchmark::State& state) {
  const auto& in = inputs();
  const ra::mixed_curvature_fused_attention<float> attn(
      make_config(static_cast<std::size_t>(state.range(0))));
  const auto key_set = attn.prepare_keys(in.keys);
  const std::span<const float> q(in.query);
  run_timed(state, [&] { benchmark::DoNotOptimize(attn.compute(q, key_set, in.values)); });
}

// The same query scored on bit-packed keys (8/5/5 bits): curvature/quantized_attention.hpp.
void bm_fused_packed(benchmark::State& state) {
  const auto& in = inputs();
  const ra::mixed_curvature_fused_attention<float> attn(
      make_config(static_cast<std::size_t>(state.range(0))));
  const ra::quantized_mixed_curvature_keys<float> packed(attn, in.keys);
  const std::span<const float> q(in.query);
  run_timed(state,
            [&] { benchmark::DoNotOptimize(ra::compute_quantized(attn, q, packed, in.values)); });
  state.counters["key_bytes"] = static_cast<double>(packed.storage_bytes());
}

void bm_fused_prepare(benchmark::State& state) {
  const auto& in = inputs();
  const ra::mixed_curvature_fused_attention<float> attn(
      make_config(static_cast<std::size_t>(state.range(0))));
  const std::span<const float> q(in.query);
  run_timed(state, [&] {
    const auto key_set = attn.prepare_keys(in.keys);
    benchmark::DoNotOptimize(attn.compute(q, key_set, in.values));
  });
}

void bm_fused_per_call(benchmark::State& state) {
  const auto& in = inputs();
  const ra::mixed_curvature_fused_attention<float> attn(
      make_config(static_cast<std::size_t>(state.range(0))));
  const std::span<const float> q(in.query);
  run_timed(state, [&] { benchmark::DoNotOptimize(attn.compute(q, in.keys, in.values)); });
}

void bm_plain(benchmark::State& state) {
  const auto& in = inputs();
  const ra::scaled_dot_product_attention<float> plain(kD);
  const std::span<const float> q(in.query);
  run_timed(state, [&] { benchmark::DoNotOptimize(plain.compute(q, in.keys, in.values)); });
}

BENCHMARK(bm_fused)->Name("curvature/fused")->ArgName("heads")->Arg(1)->Arg(8);
BENCHMARK(bm_fused_packed)->Name("curvature/fused_packed")->ArgName("heads")->Arg(1)->Arg(8);
BENCHMARK(bm_fused_prepare)->Name("curvature/fused_prepare")->ArgName("heads")->Arg(1)->Arg(8);
BENCHMARK(bm_fused_per_call)->Name("curvature/fused_per_call")->ArgName("heads")->Arg(1)->Arg(8);
BENCHMARK(bm_plain)->Name("curvature/plain_sdpa");

}  // namespace
