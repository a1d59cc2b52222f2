/// \file benchmarks/info_geometry_bench.cpp
/// \brief Matrix-free Fisher operators and damped conjugate gradient (info_geometry/) against
/// dense Eigen references of the same systems, in the same run.
///
/// Categorical (softmax) Fisher, n = 4096 logits:
///   fisher_product_library   categorical_fisher<T>::apply, y = p⊙v − p(pᵀv), O(n)
///   fisher_product_dense     the explicit n × n F times v (Eigen GEMV), O(n²) — what the
///                            matrix-free form avoids
///   fisher_solve_cg          conjugate_gradient on (F + λI), λ = 1e-3, relative tolerance 1e-5
///                            (float) / 1e-10 (double)
///   fisher_solve_closed      categorical_fisher<T>::solve (Sherman–Morrison), O(n)
///   fisher_solve_dense_llt   Eigen LLT of the explicit F + λI, then the solve (O(n³/3); the
///                            matrix is built outside the timed loop, the factorisation is timed)
/// Empirical Fisher, N = 256 samples × P = 4096 parameters:
///   empirical_product_library  empirical_fisher<T>::apply, (1/N)Gᵀ(Gv), 4·N·P FLOP
///   empirical_solve_cg         conjugate_gradient on (GᵀG/N + λI), λ = 1
///   empirical_solve_dense      Eigen: form GᵀG/N + λI (2·N·P² FLOP), LLT (P³/3), solve
///
/// Counters: "GB/s" for the O(n) Fisher product counts the minimum traffic 3·n·sizeof(T) (read p
/// and v, write y) per call; "GFLOP/s" counts 2 FLOP per multiply-add of the operation performed
/// (for a CG solve: iterations × the operator's FLOP, vector updates not counted; for the dense
/// solve: the GEMM/LLT FLOP). "iters" is the CG iteration count. Everything runs single-threaded
/// (Eigen::setNbThreads(1)); the label is the compiled SIMD architecture. The machine is shared,
/// so figures are indicative. Inputs are N(0, 1) (logits scaled by 2) from fixed seeds.

#include <benchmark/benchmark.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "ruvector/attention/config.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/info_geometry/fisher.hpp"
#include "ruvector/attention/info_geometry/natural_gradient.hpp"
#include "ruvector/attention/kernels/simd.hpp"

RUVECTOR_ATTENTION_KERNEL_WARNINGS_BEGIN
#include <Eigen/Cholesky>
RUVECTOR_ATTENTION_KERNEL_WARNINGS_END

namespace ra = ruvector::attention;

namespace {

using idx_t = Eigen::Index;
template <class T>
using vec_t = Eigen::Matrix<T, Eigen::Dynamic, 1>;

template <class T>
std::vector<T> random_normal(std::size_t n, std::uint32_t seed, double sd = 1.0) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> nd(0.0, sd);
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(nd(gen));
  return v;
}

template <class T>
ra::categorical_fisher<T> make_fisher(std::size_t n) {
  return ra::categorical_fisher<T>::from_logits(random_normal<T>(n, 1, 2.0));
}

template <class T>
ra::row_matrix<T> dense_fisher(const ra::categorical_fisher<T>& f, T lambda) {
  ra::row_matrix<T> a = f.matrix();
  a.diagonal().array() += lambda;
  return a;
}

template <class T>
constexpr T cg_tolerance = std::is_same_v<T, float> ? T(1e-5) : T(1e-10);

void setup(benchmark::State& state) {
  Eigen::setNbThreads(1);
  state.SetLabel(ra::kernels::simd_arch_name());
}

// ---- categorical Fisher ------------------------------------------------------------------------

template <class T>
void fisher_product_library(benchmark::State& state) {
  setup(state);
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto f = make_fisher<T>(n);
  const auto v = random_normal<T>(n, 2);
  std::vector<T> y(n);
  for (auto _ : state) {
    f.apply(v, y);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const double calls = static_cast<double>(state.iterations());
  state.counters["GB/s"] =
      benchmark::Counter(calls * 3.0 * double(n) * sizeof(T) / 1e9, benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] =
      benchmark::Counter(calls * 4.0 * double(n) / 1e9, benchmark::Counter::kIsRate);
}

template <class T>
void fisher_product_dense(benchmark::State& state) {
  setup(state);
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto f = make_fisher<T>(n);
  const ra::row_matrix<T> a = f.matrix();
  const auto v = random_normal<T>(n, 2);
  const Eigen::Map<const vec_t<T>> vm(v.data(), idx_t(n));
  vec_t<T> y(static_cast<idx_t>(n));
  for (auto _ : state) {
    y.noalias() = a * vm;
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const double calls = static_cast<double>(state.iterations());
  state.counters["GB/s"] = benchmark::Counter(calls * double(n) * double(n) * sizeof(T) / 1e9,
                                              benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] =
      benchmark::Counter(calls * 2.0 * double(n) * double(n) / 1e9, benchmark::Counter::kIsRate);
}

template <class T>
void fisher_solve_cg(benchmark::State& state) {
  setup(state);
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto f = make_fisher<T>(n);
  const auto g = random_normal<T>(n, 3);
  std::vector<T> x(n);
  ra::cg_options<T> opt;
  opt.tolerance = cg_tolerance<T>;
  ra::cg_result<T> res;
  for (auto _ : state) {
    res = ra::conjugate_gradient<T>(f, g, x, T(1e-3), opt);
    benchmark::DoNotOptimize(x.data());
  }
  if (!res.converged) state.SkipWithError("CG did not converge");
  state.counters["iters"] = double(res.iterations);
  state.counters["GFLOP/s"] = benchmark::Counter(
      double(state.iterations()) * double(res.applications) * 4.0 * double(n) / 1e9,
      benchmark::Counter::kIsRate);
}

template <class T>
void fisher_solve_closed(benchmark::State& state) {
  setup(state);
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto f = make_fisher<T>(n);
  const auto g = random_normal<T>(n, 3);
  std::vector<T> x(n);
  for (auto _ : state) {
    f.solve(g, T(1e-3), x);
    benchmark::DoNotOptimize(x.data());
    benchmark::ClobberMemory();
  }
}

template <class T>
void fisher_solve_dense_llt(benchmark::State& state) {
  setup(state);
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto f = make_fisher<T>(n);
  const ra::row_matrix<T> a = dense_fisher(f, T(1e-3));
  const auto g = random_normal<T>(n, 3);
  const Eigen::Map<const vec_t<T>> gm(g.data(), idx_t(n));
  vec_t<T> x(static_cast<idx_t>(n));
  for (auto _ : state) {
    Eigen::LLT<Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>> llt(a);
    x = llt.solve(gm);
    benchmark::DoNotOptimize(x.data());
  }
  const double nn = double(n);
  state.counters["GFLOP/s"] =
      benchmark::Counter(double(state.iterations()) * (nn * nn * nn / 3.0 + 2.0 * nn * nn) / 1e9,
                         benchmark::Counter::kIsRate);
}

// ---- empirical Fisher
// ----------------------------------------------------------------------------

template <class T>
ra::row_matrix<T> per_sample_gradients(std::size_t ns, std::size_t np) {
  const auto v = random_normal<T>(ns * np, 4);
  return Eigen::Map<const ra::row_matrix<T>>(v.data(), idx_t(ns), idx_t(np));
}

constexpr double kEmpiricalDamping = 1.0;

template <class T>
void empirical_product_library(benchmark::State& state) {
  setup(state);
  const auto ns = static_cast<std::size_t>(state.range(0));
  const auto np = static_cast<std::size_t>(state.range(1));
  const auto gm = per_sample_gradients<T>(ns, np);
  const ra::empirical_fisher<T> f(gm);
  const auto v = random_normal<T>(np, 5);
  std::vector<T> y(np);
  for (auto _ : state) {
    f.apply(v, y);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const double calls = static_cast<double>(state.iterations());
  state.counters["GFLOP/s"] =
      benchmark::Counter(calls * 4.0 * double(ns) * double(np) / 1e9, benchmark::Counter::kIsRate);
  state.counters["GB/s"] = benchmark::Counter(
      calls * 2.0 * double(ns) * double(np) * sizeof(T) / 1e9, benchmark::Counter::kIsRate);
}

template <class T>
void empirical_solve_cg(benchmark::State& state) {
  setup(state);
  const auto ns = static_cast<std::size_t>(state.range(0));
  const auto np = static_cast<std::size_t>(state.range(1));
  const auto gm = per_sample_gradients<T>(ns, np);
  const ra::empirical_fisher<T> f(gm);
  const auto g = random_normal<T>(np, 6);
  std::vector<T> x(np);
  ra::cg_options<T> opt;
  opt.tolerance = cg_tolerance<T>;
  ra::cg_result<T> res;
  for (auto _ : state) {
    res = ra::conjugate_gradient<T>(f, g, x, T(kEmpiricalDamping), opt);
    benchmark::DoNotOptimize(x.data());
  }
  if (!res.converged) state.SkipWithError("CG did not converge");
  state.counters["iters"] = double(res.iterations);
  state.counters["GFLOP/s"] = benchmark::Counter(
      double(state.iterations()) * double(res.applications) * 4.0 * double(ns) * double(np) / 1e9,
      benchmark::Counter::kIsRate);
}

template <class T>
void empirical_solve_dense(benchmark::State& state) {
  setup(state);
  const auto ns = static_cast<std::size_t>(state.range(0));
  const auto np = static_cast<std::size_t>(state.range(1));
  const auto gm = per_sample_gradients<T>(ns, np);
  const auto g = random_normal<T>(np, 6);
  const Eigen::Map<const vec_t<T>> gv(g.data(), idx_t(np));
  using dense = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
  dense a(static_cast<idx_t>(np), static_cast<idx_t>(np));
  vec_t<T> x(static_cast<idx_t>(np));
  for (auto _ : state) {
    a.noalias() = (gm.transpose() * gm) / T(ns);
    a.diagonal().array() += T(kEmpiricalDamping);
    Eigen::LLT<dense> llt(a);
    x = llt.solve(gv);
    benchmark::DoNotOptimize(x.data());
  }
  const double p = double(np);
  state.counters["GFLOP/s"] = benchmark::Counter(
      double(state.iterations()) * (2.0 * double(ns) * p * p + p * p * p / 3.0 + 2.0 * p * p) / 1e9,
      benchmark::Counter::kIsRate);
}

constexpr int kN = 4096;

#define RA_FISHER_BENCH(fn, unit)                                    \
  BENCHMARK_TEMPLATE(fn, float)->Arg(kN)->Unit(unit)->UseRealTime(); \
  BENCHMARK_TEMPLATE(fn, double)->Arg(kN)->Unit(unit)->UseRealTime();

RA_FISHER_BENCH(fisher_product_library, benchmark::kMicrosecond)
RA_FISHER_BENCH(fisher_product_dense, benchmark::kMicrosecond)
RA_FISHER_BENCH(fisher_solve_closed, benchmark::kMicrosecond)
RA_FISHER_BENCH(fisher_solve_cg, benchmark::kMicrosecond)
BENCHMARK_TEMPLATE(fisher_solve_dense_llt, float)
    ->Arg(kN)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(2);
BENCHMARK_TEMPLATE(fisher_solve_dense_llt, double)
    ->Arg(kN)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(2);

#define RA_EMPIRICAL_BENCH(fn, unit)                                         \
  BENCHMARK_TEMPLATE(fn, float)->Args({256, kN})->Unit(unit)->UseRealTime(); \
  BENCHMARK_TEMPLATE(fn, double)->Args({256, kN})->Unit(unit)->UseRealTime();

RA_EMPIRICAL_BENCH(empirical_product_library, benchmark::kMicrosecond)
RA_EMPIRICAL_BENCH(empirical_solve_cg, benchmark::kMillisecond)
BENCHMARK_TEMPLATE(empirical_solve_dense, float)
    ->Args({256, kN})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(1);
BENCHMARK_TEMPLATE(empirical_solve_dense, double)
    ->Args({256, kN})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(1);

}  // namespace
