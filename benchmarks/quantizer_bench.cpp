/// \file benchmarks/quantizer_bench.cpp
/// \brief Component dots of one query against every key, on bit-packed keys
/// (curvature/component_quantizer.hpp) versus float keys. Linked into `bench_geometric` (which
/// supplies main via benchmark::benchmark_main).
///
/// Keys: d = 512 split [256 | 192 | 64], 8/5/5 bits (the default config), n ∈ {1000, 4096};
/// entries N(0, 1) from a fixed seed. Quantisation happens once, outside the timed loop.
///
/// Rows:
///   quantizer/packed_dots_all/n      packed_keys<float>::component_dots_all: 4 keys per step,
///                                    codes unpacked in registers (AVX-512BW / AVX2 builds) or
///                                    decoded into a stack buffer + xsimd dot (other builds)
///   quantizer/float_row_dots/n       three kernels::row_dots passes (one per component) over the
///                                    float key matrix (each pass reads its column range)
///   quantizer/float_dot_per_key/n    one pass: three kernels::dot calls per float key row
///   quantizer/packed_dots_one/n      packed_keys<float>::component_dots called once per key
///                                    (includes the per-call validation of the query)
///
/// Counters:
///   ns_per_key        CPU time per key (Google Benchmark prints it in seconds with an SI prefix,
///                     e.g. "41.6n" = 41.6 ns)
///   key_bytes_per_s   bytes of key storage scanned per second: storage_bytes()/n per packed key
///                     (codes + scales), 2048 per float key
///   compression       measured float_bytes() / storage_bytes() of the packed set (1 for float)

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/curvature/component_quantizer.hpp"
#include "ruvector/attention/curvature/components.hpp"
#include "ruvector/attention/kernels/gemv.hpp"
#include "ruvector/attention/kernels/reduce.hpp"
#include "ruvector/attention/kernels/simd.hpp"

namespace {

namespace ra = ruvector::attention;

constexpr ra::component_dims kDims{256, 192, 64};

struct fixture {
  ra::row_matrix<float> keys;
  std::vector<float> query;
  ra::packed_keys<float> packed;
};

const fixture& make_fixture(std::size_t n) {
  static std::vector<std::pair<std::size_t, fixture>> cache;
  for (const auto& [size, f] : cache)
    if (size == n) return f;
  fixture f;
  const std::size_t d = kDims.total();
  std::mt19937_64 gen(12345 + n);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  f.keys.resize(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(d));
  for (Eigen::Index i = 0; i < f.keys.size(); ++i) f.keys.data()[i] = dist(gen);
  f.query.resize(d);
  for (auto& x : f.query) x = dist(gen);
  const ra::component_quantizer<float> quantizer(kDims);  // 8/5/5 bits
  f.packed = quantizer.quantize(f.keys);
  cache.emplace_back(n, std::move(f));
  return cache.back().second;
}

void set_counters(benchmark::State& state, std::size_t n, double bytes_per_key,
                  double compression) {
  state.counters["ns_per_key"] =
      benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate |
                                                     benchmark::Counter::kInvert);
  state.counters["key_bytes_per_s"] = benchmark::Counter(
      static_cast<double>(n) * bytes_per_key, benchmark::Counter::kIsIterationInvariantRate,
      benchmark::Counter::kIs1024);
  state.counters["compression"] = compression;
  state.SetLabel(ra::kernels::simd_arch_name());
}

void packed_dots_all(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const fixture& f = make_fixture(n);
  std::vector<float> e(n), h(n), s(n);
  for (auto _ : state) {
    f.packed.component_dots_all(f.query, e, h, s);
    benchmark::DoNotOptimize(e.data());
    benchmark::DoNotOptimize(h.data());
    benchmark::DoNotOptimize(s.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, n, static_cast<double>(f.packed.storage_bytes()) / static_cast<double>(n),
               f.packed.compression_ratio());
}

void packed_dots_one(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const fixture& f = make_fixture(n);
  const std::span<const float> q(f.query);
  for (auto _ : state) {
    for (std::size_t i = 0; i < n; ++i) {
      auto r = f.packed.component_dots(q, i);
      benchmark::DoNotOptimize(r);
    }
  }
  set_counters(state, n, static_cast<double>(f.packed.storage_bytes()) / static_cast<double>(n),
               f.packed.compression_ratio());
}

void float_row_dots(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const fixture& f = make_fixture(n);
  const std::size_t d = kDims.total();
  std::vector<float> e(n), h(n), s(n);
  const float* k = f.keys.data();
  const float* q = f.query.data();
  for (auto _ : state) {
    ra::kernels::row_dots(k, n, kDims.euclidean, d, q, 1.0f, e.data());
    ra::kernels::row_dots(k + kDims.hyperbolic_offset(), n, kDims.hyperbolic, d,
                          q + kDims.hyperbolic_offset(), 1.0f, h.data());
    ra::kernels::row_dots(k + kDims.spherical_offset(), n, kDims.spherical, d,
                          q + kDims.spherical_offset(), 1.0f, s.data());
    benchmark::DoNotOptimize(e.data());
    benchmark::DoNotOptimize(h.data());
    benchmark::DoNotOptimize(s.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, n, static_cast<double>(d * sizeof(float)), 1.0);
}

void float_dot_per_key(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const fixture& f = make_fixture(n);
  const std::size_t d = kDims.total();
  std::vector<float> e(n), h(n), s(n);
  const float* q = f.query.data();
  for (auto _ : state) {
    for (std::size_t i = 0; i < n; ++i) {
      const float* row = f.keys.data() + i * d;
      e[i] = ra::kernels::dot(q, row, kDims.euclidean);
      h[i] = ra::kernels::dot(q + kDims.hyperbolic_offset(), row + kDims.hyperbolic_offset(),
                              kDims.hyperbolic);
      s[i] = ra::kernels::dot(q + kDims.spherical_offset(), row + kDims.spherical_offset(),
                              kDims.spherical);
    }
    benchmark::DoNotOptimize(e.data());
    benchmark::DoNotOptimize(h.data());
    benchmark::DoNotOptimize(s.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, n, static_cast<double>(d * sizeof(float)), 1.0);
}

}  // namespace

BENCHMARK(packed_dots_all)->Name("quantizer/packed_dots_all")->Arg(1000)->Arg(4096);
BENCHMARK(float_row_dots)->Name("quantizer/float_row_dots")->Arg(1000)->Arg(4096);
BENCHMARK(float_dot_per_key)->Name("quantizer/float_dot_per_key")->Arg(1000)->Arg(4096);
BENCHMARK(packed_dots_one)->Name("quantizer/packed_dots_one")->Arg(1000)->Arg(4096);
