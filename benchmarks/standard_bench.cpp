/// \file benchmarks/standard_bench.cpp
/// \brief Scaled dot-product attention (standard/scaled_dot_product.hpp) against, in the same run,
/// a naive scalar implementation and an Eigen implementation of the same FLOP count.
///
/// Single query (vector API), shapes (d, n) with dv = d:
///   single_library   scaled_dot_product_attention<float>::compute_into
///   single_naive     plain loops, std::exp, max-subtracted softmax
///   single_eigen     Eigen GEMV scores = K·q, softmax with Eigen array ops, out = Vᵀ·w
/// Batched (tensor API), shapes [B, H, L, dh], non-causal, Lq = Lk = L, dv = dh:
///   batched_sdpa       sdpa<float> with default options (check_finite on), 1 and 2 threads
///   batched_naive      one query row at a time, plain loops (1 iteration: it is slow)
///   batched_eigen_gemm per (b, h) S = Q·Kᵀ and O = S·V with Eigen GEMM, no softmax — the
///                      roofline-ish reference; 1 and 2 threads (parallel over b·h)
///
/// FLOPs: single query 4·n·d (2·n·d for the scores, 2·n·d for the weighted value sum); batched
/// 4·B·H·L²·d. exp, max, sum and the scaling are counted as 0 FLOP, so GFLOP/s is comparable with
/// the GEMM reference, which does no softmax at all. The "GFLOP/s" counter is per wall-clock
/// second (every benchmark uses real time, so multi-threaded rows are measured correctly).
///
/// Every benchmark runs single-threaded (Eigen and parallel_for) unless its `threads` argument
/// says otherwise; the label is the compiled SIMD architecture (kernels::simd_arch_name()).
/// Inputs are N(0, 1) from fixed seeds.

#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <span>
#include <vector>

#include "ruvector/attention/config.hpp"
#include "ruvector/attention/core/parallel.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/kernels/simd.hpp"
#include "ruvector/attention/standard/scaled_dot_product.hpp"

#if RUVECTOR_ATTENTION_HAS_OPENMP
#include <omp.h>
#endif

namespace ra = ruvector::attention;

namespace {

using idx_t = Eigen::Index;

constexpr int default_threads = 1;

std::vector<float> random_normal(std::size_t n, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(n);
  for (auto& e : x) e = dist(gen);
  return x;
}

ra::row_matrix<float> random_matrix(std::size_t rows, std::size_t cols, std::uint32_t seed) {
  const std::vector<float> x = random_normal(rows * cols, seed);
  ra::row_matrix<float> m(static_cast<idx_t>(rows), static_cast<idx_t>(cols));
  std::copy(x.begin(), x.end(), m.data());
  return m;
}

void finish(benchmark::State& state, double flops_per_iteration) {
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops_per_iteration / 1e9, benchmark::Counter::kIsIterationInvariantRate,
                         benchmark::Counter::OneK::kIs1000);
  state.SetLabel(ra::kernels::simd_arch_name());
}

// ---------------------------------------------------------------------------------------------
// Single query
// ---------------------------------------------------------------------------------------------

struct single_query_data {
  std::size_t d, n;
  ra::row_matrix<float> keys, values;  // n × d each (dv = d)
  std::vector<float> query, out, scores;
  float scale;

  single_query_data(std::size_t d_, std::size_t n_)
      : d(d_),
        n(n_),
        keys(random_matrix(n_, d_, 1)),
        values(random_matrix(n_, d_, 2)),
        query(random_normal(d_, 3)),
        out(d_, 0.0f),
        scores(n_, 0.0f),
        scale(1.0f / std::sqrt(static_cast<float>(d_))) {}

  [[nodiscard]] double flops() const {
    return 4.0 * static_cast<double>(n) * static_cast<double>(d);
  }
};

// The naive reference: plain loops, std::exp, max-subtracted softmax. Returns log-sum-exp.
float naive_single(const float* q, const float* k, const float* v, std::size_t n, std::size_t d,
                   std::size_t dv, float scale, float* scores, float* out) {
  float m = -std::numeric_limits<float>::infinity();
  for (std::size_t j = 0; j < n; ++j) {
    float s = 0.0f;
    for (std::size_t c = 0; c < d; ++c) s += q[c] * k[j * d + c];
    scores[j] = s * scale;
    m = std::max(m, scores[j]);
  }
  float l = 0.0f;
  for (std::size_t j = 0; j < n; ++j) {
    scores[j] = std::exp(scores[j] - m);
    l += scores[j];
  }
  const float inv = 1.0f / l;
  for (std::size_t c = 0; c < dv; ++c) out[c] = 0.0f;
  for (std::size_t j = 0; j < n; ++j) {
    const float w = scores[j] * inv;
    for (std::size_t c = 0; c < dv; ++c) out[c] += w * v[j * dv + c];
  }
  return m + std::log(l);
}

// Eigen GEMV formulation of the same computation.
void eigen_single(const Eigen::Map<const Eigen::VectorXf>& q, const ra::row_matrix<float>& keys,
                  const ra::row_matrix<float>& values, float scale, Eigen::VectorXf& scores,
                  Eigen::VectorXf& out) {
  scores.noalias() = scale * (keys * q);
  const float m = scores.maxCoeff();
  scores = (scores.array() - m).exp();
  scores /= scores.sum();
  out.noalias() = values.transpose() * scores;
}

void BM_single_library(benchmark::State& state) {
  single_query_data data(static_cast<std::size_t>(state.range(0)),
                         static_cast<std::size_t>(state.range(1)));
  const ra::scaled_dot_product_attention<float> attention(data.d);
  const ra::matrix_cref<float> keys(data.keys);
  const ra::matrix_cref<float> values(data.values);
  const std::span<const float> query(data.query);
  const std::span<float> out(data.out);
  for (auto _ : state) {
    float lse = attention.compute_into(query, keys, values, out);
    benchmark::DoNotOptimize(lse);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  finish(state, data.flops());
}

void BM_single_naive(benchmark::State& state) {
  single_query_data data(static_cast<std::size_t>(state.range(0)),
                         static_cast<std::size_t>(state.range(1)));
  for (auto _ : state) {
    float lse = naive_single(data.query.data(), data.keys.data(), data.values.data(), data.n,
                             data.d, data.d, data.scale, data.scores.data(), data.out.data());
    benchmark::DoNotOptimize(lse);
    benchmark::DoNotOptimize(data.out.data());
    benchmark::ClobberMemory();
  }
  finish(state, data.flops());
}

void BM_single_eigen(benchmark::State& state) {
  single_query_data data(static_cast<std::size_t>(state.range(0)),
                         static_cast<std::size_t>(state.range(1)));
  const Eigen::Map<const Eigen::VectorXf> query(data.query.data(), static_cast<idx_t>(data.d));
  Eigen::VectorXf scores(static_cast<idx_t>(data.n));
  Eigen::VectorXf out(static_cast<idx_t>(data.d));
  for (auto _ : state) {
    eigen_single(query, data.keys, data.values, data.scale, scores, out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  finish(state, data.flops());
}

// ---------------------------------------------------------------------------------------------
// Batched
// ---------------------------------------------------------------------------------------------

struct batched_data {
  std::size_t B, H, L, d;
  std::vector<float> q, k, v, out;

  batched_data(std::size_t b, std::size_t h, std::size_t l, std::size_t dh)
      : B(b),
        H(h),
        L(l),
        d(dh),
        q(random_normal(b * h * l * dh, 11)),
        k(random_normal(b * h * l * dh, 12)),
        v(random_normal(b * h * l * dh, 13)),
        out(b * h * l * dh, 0.0f) {}

  [[nodiscard]] ra::tensor_view<const float, 4> view(const std::vector<float>& x) const {
    return ra::make_tensor_view(x.data(), B, H, L, d);
  }
  [[nodiscard]] ra::tensor_view<float, 4> out_view() {
    return ra::make_tensor_view(out.data(), B, H, L, d);
  }
  [[nodiscard]] std::size_t head_offset(std::size_t bh) const { return bh * L * d; }
  [[nodiscard]] double flops() const {
    return 4.0 * static_cast<double>(B) * static_cast<double>(H) * static_cast<double>(L) *
           static_cast<double>(L) * static_cast<double>(d);
  }
};

// The inputs of a batched shape [range(0), range(1), range(2), range(3)], generated once per shape
// and shared by every benchmark of that shape (generation takes about a second for the big
// shapes). Benchmarks run one at a time, so sharing the output buffer is fine.
batched_data& batched_inputs(const benchmark::State& state) {
  static std::map<std::array<std::int64_t, 4>, std::unique_ptr<batched_data>> cache;
  const std::array<std::int64_t, 4> key{state.range(0), state.range(1), state.range(2),
                                        state.range(3)};
  auto& slot = cache[key];
  if (!slot) {
    slot = std::make_unique<batched_data>(
        static_cast<std::size_t>(key[0]), static_cast<std::size_t>(key[1]),
        static_cast<std::size_t>(key[2]), static_cast<std::size_t>(key[3]));
  }
  return *slot;
}

// Naive batched attention: one query row at a time, plain loops (Lq = Lk = L, dv = d).
void naive_batched(batched_data& x, std::vector<float>& scores) {
  const std::size_t L = x.L, d = x.d;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  for (std::size_t bh = 0; bh < x.B * x.H; ++bh) {
    const std::size_t off = x.head_offset(bh);
    const float* q = x.q.data() + off;
    const float* k = x.k.data() + off;
    const float* v = x.v.data() + off;
    float* o = x.out.data() + off;
    for (std::size_t i = 0; i < L; ++i) {
      naive_single(q + i * d, k, v, L, d, d, scale, scores.data(), o + i * d);
    }
  }
}

class threads_guard {
 public:
  explicit threads_guard(int n) { ra::set_num_threads(n); }
  ~threads_guard() { ra::set_num_threads(default_threads); }
  threads_guard(const threads_guard&) = delete;
  threads_guard& operator=(const threads_guard&) = delete;
};

void BM_batched_sdpa(benchmark::State& state) {
  batched_data& data = batched_inputs(state);
  const int threads = static_cast<int>(state.range(4));
  const threads_guard guard(threads);
  const auto q = data.view(data.q);
  const auto k = data.view(data.k);
  const auto v = data.view(data.v);
  const auto out = data.out_view();
  const ra::sdpa_options<float> options{};
  for (auto _ : state) {
    ra::sdpa<float>(q, k, v, out, options);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.counters["threads"] = static_cast<double>(ra::num_threads());
  finish(state, data.flops());
}

void BM_batched_naive(benchmark::State& state) {
  batched_data& data = batched_inputs(state);
  std::vector<float> scores(data.L);
  for (auto _ : state) {
    naive_batched(data, scores);
    benchmark::DoNotOptimize(data.out.data());
    benchmark::ClobberMemory();
  }
  finish(state, data.flops());
}

// Per (b, h): S = Q·Kᵀ (L×d · d×L) and O = S·V with Eigen GEMM, no softmax. Parallel over b·h
// with parallel_for (Eigen itself stays single-threaded).
void BM_batched_eigen_gemm(benchmark::State& state) {
  batched_data& data = batched_inputs(state);
  const int threads = static_cast<int>(state.range(4));
  const threads_guard guard(threads);
  using CMap = Eigen::Map<const ra::row_matrix<float>>;
  using MMap = Eigen::Map<ra::row_matrix<float>>;
  const auto L = static_cast<idx_t>(data.L);
  const auto d = static_cast<idx_t>(data.d);
  // One score matrix per thread, allocated before the timed loop.
  std::vector<ra::row_matrix<float>> s(static_cast<std::size_t>(std::max(threads, 1)),
                                       ra::row_matrix<float>(L, L));
  for (auto _ : state) {
    ra::parallel_for(0, data.B * data.H, [&](std::size_t bh) {
      int slot = 0;
#if RUVECTOR_ATTENTION_HAS_OPENMP
      slot = omp_in_parallel() ? omp_get_thread_num() : 0;
#endif
      ra::row_matrix<float>& S = s[static_cast<std::size_t>(slot)];
      const std::size_t off = data.head_offset(bh);
      const CMap Q(data.q.data() + off, L, d);
      const CMap K(data.k.data() + off, L, d);
      const CMap V(data.v.data() + off, L, d);
      MMap O(data.out.data() + off, L, d);
      S.noalias() = Q * K.transpose();
      O.noalias() = S * V;
    });
    benchmark::DoNotOptimize(data.out.data());
    benchmark::ClobberMemory();
  }
  state.counters["threads"] = static_cast<double>(ra::num_threads());
  finish(state, data.flops());
}

// ---------------------------------------------------------------------------------------------
// Registration
// ---------------------------------------------------------------------------------------------

void single_shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"d", "n"});
  b->Args({128, 1000});
  b->Args({64, 4096});
  b->Args({512, 1000});
  b->Unit(benchmark::kMicrosecond)->UseRealTime();
}

constexpr std::int64_t big_b = 32, big_h = 12, big_l = 512;    // B32 H12 L512 dh64
constexpr std::int64_t long_b = 4, long_h = 8, long_l = 2048;  // B4 H8 L2048 dh64
constexpr std::int64_t dh = 64;

void batched_shapes(benchmark::internal::Benchmark* b, bool with_two_threads) {
  b->ArgNames({"B", "H", "L", "dh", "threads"});
  b->Args({big_b, big_h, big_l, dh, 1});
  if (with_two_threads) b->Args({big_b, big_h, big_l, dh, 2});
  b->Args({long_b, long_h, long_l, dh, 1});
  if (with_two_threads) b->Args({long_b, long_h, long_l, dh, 2});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

void batched_fast(benchmark::internal::Benchmark* b) {
  batched_shapes(b, true);
  b->MinTime(2.0);  // a few hundred ms per iteration: get several iterations
}

BENCHMARK(BM_single_library)->Apply(single_shapes);
BENCHMARK(BM_single_naive)->Apply(single_shapes);
BENCHMARK(BM_single_eigen)->Apply(single_shapes);
BENCHMARK(BM_batched_sdpa)->Apply(batched_fast);
BENCHMARK(BM_batched_eigen_gemm)->Apply(batched_fast);
// Tens of seconds per iteration: one iteration is enough for a baseline.
BENCHMARK(BM_batched_naive)->Apply([](benchmark::internal::Benchmark* b) {
  batched_shapes(b, false);
  b->Iterations(1);
});

// ---------------------------------------------------------------------------------------------
// Self-check (not timed): the three single-query variants and sdpa vs naive agree.
// ---------------------------------------------------------------------------------------------

float max_abs_diff(const float* a, const float* b, std::size_t n) {
  float m = 0.0f;
  for (std::size_t i = 0; i < n; ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

bool self_check() {
  constexpr float tol = 1e-4f;
  bool ok = true;
  {
    single_query_data x(128, 1000);
    std::vector<float> lib(x.d), naive(x.d);
    const ra::scaled_dot_product_attention<float> attention(x.d);
    attention.compute_into(std::span<const float>(x.query), x.keys, x.values,
                           std::span<float>(lib));
    naive_single(x.query.data(), x.keys.data(), x.values.data(), x.n, x.d, x.d, x.scale,
                 x.scores.data(), naive.data());
    const Eigen::Map<const Eigen::VectorXf> q(x.query.data(), static_cast<idx_t>(x.d));
    Eigen::VectorXf scores(static_cast<idx_t>(x.n)), eig(static_cast<idx_t>(x.d));
    eigen_single(q, x.keys, x.values, x.scale, scores, eig);
    const float e1 = max_abs_diff(lib.data(), naive.data(), x.d);
    const float e2 = max_abs_diff(eig.data(), naive.data(), x.d);
    if (!(e1 < tol && e2 < tol)) {
      std::fprintf(stderr, "self-check FAILED (single query): |lib-naive| %g, |eigen-naive| %g\n",
                   static_cast<double>(e1), static_cast<double>(e2));
      ok = false;
    }
  }
  {
    batched_data x(2, 3, 100, 64);
    std::vector<float> scores(x.L);
    naive_batched(x, scores);
    const std::vector<float> naive = x.out;
    for (int threads : {1, 2}) {
      const threads_guard guard(threads);
      std::fill(x.out.begin(), x.out.end(), 0.0f);
      ra::sdpa<float>(x.view(x.q), x.view(x.k), x.view(x.v), x.out_view());
      const float e = max_abs_diff(x.out.data(), naive.data(), x.out.size());
      if (!(e < tol)) {
        std::fprintf(stderr, "self-check FAILED (sdpa, %d threads): |sdpa-naive| %g\n", threads,
                     static_cast<double>(e));
        ok = false;
      }
    }
  }
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  Eigen::setNbThreads(1);
  ra::set_num_threads(default_threads);
  benchmark::AddCustomContext("simd_arch", ra::kernels::simd_arch_name());
  benchmark::AddCustomContext("openmp", RUVECTOR_ATTENTION_HAS_OPENMP ? "yes" : "no");
  benchmark::AddCustomContext(
      "flops", "single query 4*n*d, batched 4*B*H*L^2*d; exp/max/sum counted as 0 FLOP");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  if (!self_check()) return EXIT_FAILURE;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
