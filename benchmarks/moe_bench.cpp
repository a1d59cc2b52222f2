/// \file benchmarks/moe_bench.cpp
/// \brief Token-routed mixture of experts (moe/moe_attention.hpp) beside a dense feed-forward
/// baseline in the same run. Linked into `bench_graph` (benchmark::benchmark_main, no main here).
///
/// Shape: N = 4096 tokens, d = 256, E = 8 feed-forward experts of hidden width h = 4·d = 1024
/// (GELU, biases), top-2 routing with renormalised gates, capacity factor 1.25 (so
/// C = ⌈1.25·4096·2/8⌉ = 1280), seeded router and experts, inference mode (no jitter).
///
///   moe/top2_of_8/threads:T   moe_attention<float>::forward_into (router, gather, experts,
///                             combine) into a result reused across iterations
///   moe/router/threads:T      top_k_router<float>::route_into alone (logits, softmax, top-k,
///                             capacity)
///   moe/dense_eigen/threads:T every token through ONE expert of the same size: H = X·W_1ᵀ and
///                             Y = H·W_2ᵀ as two whole-batch Eigen GEMMs (Eigen's own threads),
///                             bias + GELU with the same vectorised kernel — the GEMM-throughput
///                             reference, with half the expert FLOPs of top-2 routing.
///
/// FLOPs actually executed per iteration (exp, softmax, top-k, activation, gather and the gated
/// sum counted as 0): router 2·N·d·E; experts 4·d·h per *kept* assignment (dropped assignments do
/// no work); dense 4·d·h·N. "GFLOP/s" and "tokens/s" are per wall-clock second (UseRealTime).
/// Counters also report the kept fraction of the N·k assignments and the balance loss.

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "ruvector/attention/config.hpp"
#include "ruvector/attention/core/parallel.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/detail/eigen.hpp"
#include "ruvector/attention/kernels/simd.hpp"
#include "ruvector/attention/moe/expert.hpp"
#include "ruvector/attention/moe/moe_attention.hpp"
#include "ruvector/attention/moe/router.hpp"

namespace {

namespace ra = ruvector::attention;

constexpr std::size_t moe_tokens = 4096, moe_dim = 256, moe_experts = 8, moe_top_k = 2,
                      moe_hidden = 4 * moe_dim;

struct moe_bench_data {
  ra::row_matrix<float> x;
  ra::moe_attention<float> layer;

  moe_bench_data()
      : x(moe_tokens, moe_dim),
        layer(ra::moe_config{.dim = moe_dim,
                             .num_experts = moe_experts,
                             .top_k = moe_top_k,
                             .hidden_dim = moe_hidden,
                             .activation = ra::expert_activation::gelu,
                             .capacity_factor = 1.25,
                             .seed = 1}) {
    std::mt19937 gen(7);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = dist(gen);
  }
};

moe_bench_data& moe_data() {
  static moe_bench_data data;
  return data;
}

class moe_threads_guard {
 public:
  explicit moe_threads_guard(int n) : eigen_before_(Eigen::nbThreads()) {
    ra::set_num_threads(n);
    Eigen::setNbThreads(n);
  }
  ~moe_threads_guard() {
    ra::set_num_threads(0);
    Eigen::setNbThreads(eigen_before_);
  }
  moe_threads_guard(const moe_threads_guard&) = delete;
  moe_threads_guard& operator=(const moe_threads_guard&) = delete;

 private:
  int eigen_before_;
};

double router_flops() { return 2.0 * static_cast<double>(moe_tokens * moe_dim * moe_experts); }
double expert_flops_per_token() { return 4.0 * static_cast<double>(moe_dim * moe_hidden); }

void moe_counters(benchmark::State& state, double flops, double tokens) {
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops / 1e9, benchmark::Counter::kIsIterationInvariantRate,
                         benchmark::Counter::OneK::kIs1000);
  state.counters["tokens/s"] = benchmark::Counter(
      tokens, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::OneK::kIs1000);
  state.counters["threads"] = static_cast<double>(ra::num_threads());
  state.SetLabel(ra::kernels::simd_arch_name());
}

void BM_moe_top2_of_8(benchmark::State& state) {
  moe_bench_data& data = moe_data();
  const moe_threads_guard guard(static_cast<int>(state.range(0)));
  ra::moe_result<float> r;  // reused across iterations (forward_into)
  for (auto _ : state) {
    data.layer.forward_into(data.x, r);
    benchmark::DoNotOptimize(r.output.data());
  }
  const std::size_t kept = r.routing.dispatch.size();
  const auto balance = static_cast<double>(r.stats.load_balance_loss);
  moe_counters(state, router_flops() + static_cast<double>(kept) * expert_flops_per_token(),
               static_cast<double>(moe_tokens));
  state.counters["kept_frac"] =
      static_cast<double>(kept) / static_cast<double>(moe_tokens * moe_top_k);
  state.counters["L_aux"] = balance;
}

void BM_moe_router(benchmark::State& state) {
  moe_bench_data& data = moe_data();
  const moe_threads_guard guard(static_cast<int>(state.range(0)));
  ra::router_output<float> r;  // reused across iterations (route_into)
  for (auto _ : state) {
    data.layer.router().route_into(data.x, r);
    benchmark::DoNotOptimize(r.gates.data());
  }
  moe_counters(state, router_flops(), static_cast<double>(moe_tokens));
}

void BM_moe_dense_eigen(benchmark::State& state) {
  moe_bench_data& data = moe_data();
  const moe_threads_guard guard(static_cast<int>(state.range(0)));
  const auto* expert = data.layer.experts()[0].template target<ra::feed_forward_expert<float>>();
  const auto& w = expert->weights();
  ra::row_matrix<float> hid(moe_tokens, moe_hidden), y(moe_tokens, moe_dim);
  constexpr std::size_t block = 256;
  for (auto _ : state) {
    hid.noalias() = data.x * w.w1.transpose();
    ra::parallel_for(0, moe_tokens / block, [&](std::size_t b) {
      for (std::size_t r = b * block; r < (b + 1) * block; ++r)
        ra::detail::bias_activation(hid.data() + r * moe_hidden, w.b1.data(), moe_hidden,
                                    ra::expert_activation::gelu);
    });
    y.noalias() = hid * w.w2.transpose();
    y.rowwise() += w.b2.transpose();
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  moe_counters(state, static_cast<double>(moe_tokens) * expert_flops_per_token(),
               static_cast<double>(moe_tokens));
}

void moe_threads(benchmark::internal::Benchmark* b) {
  b->ArgName("threads")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
}

BENCHMARK(BM_moe_top2_of_8)->Name("moe/top2_of_8")->Apply(moe_threads)->MinTime(2.0);
BENCHMARK(BM_moe_dense_eigen)->Name("moe/dense_eigen")->Apply(moe_threads)->MinTime(2.0);
BENCHMARK(BM_moe_router)->Name("moe/router")->Apply(moe_threads);

}  // namespace
