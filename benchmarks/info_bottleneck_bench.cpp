/// \file benchmarks/info_bottleneck_bench.cpp
/// \brief Variational information bottleneck (info_bottleneck/bottleneck.hpp) and the Gaussian KL
/// reduction (info_bottleneck/kl_divergence.hpp), each against a reference in the same run.
///
///   info_bottleneck/vib_fwd_bwd/<T>      forward(x, rng) + backward(x, fwd, grad_z, β) of
///                                        `variational_bottleneck<T>`, B = 256, d_in = 512,
///                                        d_z = 64 (includes sampling, validation, allocation)
///   info_bottleneck/eigen_gemms/<T>      the same six GEMMs (2 forward, 4 backward) as plain
///                                        Eigen products on preallocated matrices
///   info_bottleneck/kl_unit/<T>          kl_to_standard_normal over n = 2^20 (xsimd, expm1)
///   info_bottleneck/kl_unit_naive/<T>    a scalar loop ½Σ(μ² + e^lv − lv − 1) with std::exp
///
/// Counters: `GFLOP/s` counts only the GEMM flops, 6 · 2·B·d_in·d_z ≈ 100.7 MFLOP per step, for
/// both the layer and the reference, so the ratio is the overhead of everything else. `GB/s`
/// counts the 2·n·sizeof(T) bytes read by the KL reduction. The machine is shared; compare
/// within one run.

#include <benchmark/benchmark.h>

#include <cmath>
#include <cstddef>
#include <random>
#include <vector>

#include "ruvector/attention/core/rng.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/info_bottleneck/bottleneck.hpp"
#include "ruvector/attention/info_bottleneck/kl_divergence.hpp"

namespace ra = ruvector::attention;

namespace {

constexpr Eigen::Index kB = 256, kIn = 512, kZ = 64;
constexpr double kGemmFlops = 6.0 * 2.0 * kB * kIn * kZ;
constexpr std::size_t kKlN = std::size_t{1} << 20;

template <class T>
ra::row_matrix<T> random_matrix(Eigen::Index r, Eigen::Index c, unsigned seed, double sd = 1.0) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> n(0.0, sd);
  ra::row_matrix<T> m(r, c);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<T>(n(gen));
  return m;
}

template <class T>
void vib_fwd_bwd(benchmark::State& state) {
  const ra::variational_bottleneck<T> layer({kIn, kZ, 1});
  const auto x = random_matrix<T>(kB, kIn, 2);
  const auto gz = random_matrix<T>(kB, kZ, 3);
  ra::rng gen(4);
  for (auto _ : state) {
    const auto fwd = layer.forward(x, gen);
    const auto g = layer.backward(x, fwd, gz, T(0.01));
    benchmark::DoNotOptimize(g.x.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(kGemmFlops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

template <class T>
void eigen_gemms(benchmark::State& state) {
  const auto x = random_matrix<T>(kB, kIn, 2);
  const auto gz = random_matrix<T>(kB, kZ, 3);
  const auto w_mu = random_matrix<T>(kZ, kIn, 5, 0.05), w_lv = random_matrix<T>(kZ, kIn, 6, 0.05);
  ra::row_matrix<T> mu(kB, kZ), lv(kB, kZ), dw_mu(kZ, kIn), dw_lv(kZ, kIn), dx(kB, kIn);
  for (auto _ : state) {
    mu.noalias() = x * w_mu.transpose();
    lv.noalias() = x * w_lv.transpose();
    dw_mu.noalias() = gz.transpose() * x;
    dw_lv.noalias() = lv.transpose() * x;
    dx.noalias() = gz * w_mu;
    dx.noalias() += lv * w_lv;
    benchmark::DoNotOptimize(dx.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(kGemmFlops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

template <class T>
std::vector<T> random_vector(std::size_t n, unsigned seed, double sd) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> d(0.0, sd);
  std::vector<T> v(n);
  for (auto& e : v) e = static_cast<T>(d(gen));
  return v;
}

template <class T>
void kl_unit(benchmark::State& state) {
  const auto mu = random_vector<T>(kKlN, 7, 1.0), lv = random_vector<T>(kKlN, 8, 0.5);
  for (auto _ : state) {
    T kl = ra::kl_to_standard_normal<T>(mu, lv);
    benchmark::DoNotOptimize(kl);
  }
  state.counters["GB/s"] = benchmark::Counter(2.0 * kKlN * sizeof(T) * 1e-9,
                                              benchmark::Counter::kIsIterationInvariantRate);
}

template <class T>
void kl_unit_naive(benchmark::State& state) {
  const auto mu = random_vector<T>(kKlN, 7, 1.0), lv = random_vector<T>(kKlN, 8, 0.5);
  for (auto _ : state) {
    T s = T(0);
    for (std::size_t i = 0; i < kKlN; ++i) s += mu[i] * mu[i] + std::exp(lv[i]) - lv[i] - T(1);
    T kl = T(0.5) * s;
    benchmark::DoNotOptimize(kl);
  }
  state.counters["GB/s"] = benchmark::Counter(2.0 * kKlN * sizeof(T) * 1e-9,
                                              benchmark::Counter::kIsIterationInvariantRate);
}

BENCHMARK_TEMPLATE(vib_fwd_bwd, float)->Name("info_bottleneck/vib_fwd_bwd/float")->MinTime(1.0);
BENCHMARK_TEMPLATE(eigen_gemms, float)->Name("info_bottleneck/eigen_gemms/float")->MinTime(1.0);
BENCHMARK_TEMPLATE(vib_fwd_bwd, double)->Name("info_bottleneck/vib_fwd_bwd/double")->MinTime(1.0);
BENCHMARK_TEMPLATE(eigen_gemms, double)->Name("info_bottleneck/eigen_gemms/double")->MinTime(1.0);
BENCHMARK_TEMPLATE(kl_unit, float)->Name("info_bottleneck/kl_unit/float")->MinTime(1.0);
BENCHMARK_TEMPLATE(kl_unit_naive, float)->Name("info_bottleneck/kl_unit_naive/float")->MinTime(1.0);
BENCHMARK_TEMPLATE(kl_unit, double)->Name("info_bottleneck/kl_unit/double")->MinTime(1.0);
BENCHMARK_TEMPLATE(kl_unit_naive, double)
    ->Name("info_bottleneck/kl_unit_naive/double")
    ->MinTime(1.0);

}  // namespace
