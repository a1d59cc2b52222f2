// Benchmarks of the pde family at n = 4096 keys, d = 64, k = 16 (float):
// - graph build: exact kNN + CSR Laplacian vs the dense n × n Gaussian Laplacian;
// - one heat diffusion exp(−tL)x (t = 1, L_sym): Chebyshev and Euler, on the sparse kNN Laplacian
//   vs the same methods with the dense n × n matrix–vector product (the naive reference);
// - diffusion attention per query on a prepared key graph (one time, and three times
//   multiscale), next to plain softmax attention over the same keys.
// Fixtures are built once, outside the timed loops.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstddef>
#include <span>
#include <vector>

#include "ruvector/attention/core/rng.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/kernels/gemv.hpp"
#include "ruvector/attention/kernels/softmax.hpp"
#include "ruvector/attention/pde/diffusion.hpp"
#include "ruvector/attention/pde/diffusion_attention.hpp"
#include "ruvector/attention/pde/laplacian.hpp"

namespace ra = ruvector::attention;

namespace {

constexpr std::size_t kN = 4096, kD = 64, kK = 16;

const ra::row_matrix<float>& keys() {
  static const ra::row_matrix<float> k = [] {
    ra::rng g(7);
    ra::row_matrix<float> m(kN, kD);
    for (Eigen::Index i = 0; i < m.rows(); ++i)
      for (Eigen::Index c = 0; c < m.cols(); ++c) m(i, c) = g.normal<float>();
    return m;
  }();
  return k;
}

const std::vector<float>& signal() {
  static const std::vector<float> x = [] {
    ra::rng g(8);
    std::vector<float> v(kN);
    for (auto& e : v) e = g.normal<float>();
    return v;
  }();
  return x;
}

ra::laplacian_options<float> sym_options() {
  ra::laplacian_options<float> o;
  o.type = ra::laplacian_type::symmetric_normalized;
  return o;
}

const ra::sparse_laplacian<float>& sparse() {
  static const auto l = ra::sparse_laplacian<float>::from_keys(keys(), kK, sym_options());
  return l;
}

const ra::dense_laplacian<float>& dense() {
  static const auto l = ra::dense_laplacian<float>::from_keys(keys(), sym_options());
  return l;
}

void BM_BuildSparseKnn(benchmark::State& state) {
  for (auto _ : state) {
    auto l = ra::sparse_laplacian<float>::from_keys(keys(), kK, sym_options());
    benchmark::DoNotOptimize(l.nnz());
  }
  state.counters["nnz"] = static_cast<double>(sparse().nnz());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_BuildSparseKnn)->Unit(benchmark::kMillisecond)->Iterations(3);

void BM_BuildDense(benchmark::State& state) {
  for (auto _ : state) {
    auto l = ra::dense_laplacian<float>::from_keys(keys(), sym_options());
    benchmark::DoNotOptimize(l.matrix().data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_BuildDense)->Unit(benchmark::kMillisecond)->Iterations(2);

template <class Op>
void diffusion(benchmark::State& state, const Op& op, ra::diffusion_method method) {
  ra::diffusion_options o;
  o.method = method;
  o.dt = 0.1;
  std::vector<float> out(kN);
  ra::diffusion_report rep;
  for (auto _ : state) {
    rep = ra::heat_diffuse(op, std::span<const float>(signal()), 1.0, std::span<float>(out), o);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["matvecs"] = static_cast<double>(rep.matvecs);
  state.counters["flops/s"] = benchmark::Counter(static_cast<double>(rep.matvecs) * 2.0 *
                                                     static_cast<double>(op.nnz() + kN) *
                                                     static_cast<double>(state.iterations()),
                                                 benchmark::Counter::kIsRate);
  state.SetItemsProcessed(state.iterations());  // diffusions per second
}

void BM_DiffuseChebyshevSparse(benchmark::State& s) {
  diffusion(s, sparse(), ra::diffusion_method::chebyshev);
}
void BM_DiffuseEulerSparse(benchmark::State& s) {
  diffusion(s, sparse(), ra::diffusion_method::euler);
}
void BM_DiffuseChebyshevDense(benchmark::State& s) {
  diffusion(s, dense(), ra::diffusion_method::chebyshev);
}
void BM_DiffuseEulerDense(benchmark::State& s) {
  diffusion(s, dense(), ra::diffusion_method::euler);
}
BENCHMARK(BM_DiffuseChebyshevSparse)->Unit(benchmark::kMicrosecond)->MinTime(0.5);
BENCHMARK(BM_DiffuseEulerSparse)->Unit(benchmark::kMicrosecond)->MinTime(0.5);
BENCHMARK(BM_DiffuseChebyshevDense)->Unit(benchmark::kMicrosecond)->MinTime(0.5);
BENCHMARK(BM_DiffuseEulerDense)->Unit(benchmark::kMicrosecond)->MinTime(0.5);

void attention(benchmark::State& state, std::vector<double> times) {
  ra::diffusion_attention_config<float> c;
  c.k = kK;
  c.times = std::move(times);
  const ra::diffusion_attention<float> att(kD, c);
  static const auto graph = ra::diffusion_attention<float>(kD).prepare_keys(keys());
  std::vector<float> out(kD);
  const std::span<const float> q(keys().row(5).data(), kD);
  for (auto _ : state) {
    att.compute_into(q, graph, keys(), out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());  // queries per second
}
void BM_DiffusionAttentionPerQuery(benchmark::State& s) { attention(s, {1.0}); }
void BM_DiffusionAttentionMultiscale3(benchmark::State& s) { attention(s, {0.25, 1.0, 4.0}); }
BENCHMARK(BM_DiffusionAttentionPerQuery)->Unit(benchmark::kMicrosecond)->MinTime(0.5);
BENCHMARK(BM_DiffusionAttentionMultiscale3)->Unit(benchmark::kMicrosecond)->MinTime(0.5);

// Reference: plain softmax attention over the same keys (no diffusion).
void BM_SoftmaxAttentionPerQuery(benchmark::State& state) {
  // Sizes read from the matrix, not the constants: with compile-time n and d GCC 12 emits a
  // spurious -Waggressive-loop-optimizations for the kernels' tail loops.
  const auto n = static_cast<std::size_t>(keys().rows());
  const auto d = static_cast<std::size_t>(keys().cols());
  std::vector<float> s(n), out(d);
  const float* q = keys().row(5).data();
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  for (auto _ : state) {
    ra::kernels::row_dots(keys().data(), n, d, d, q, scale, s.data());
    ra::kernels::softmax(s.data(), n);
    ra::kernels::weighted_row_sum(s.data(), n, keys().data(), d, d, 0.0f, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SoftmaxAttentionPerQuery)->Unit(benchmark::kMicrosecond)->MinTime(0.5);

}  // namespace
