// Topology-gated attention (topology/{coherence,policy,gated_attention}.hpp), float and double.
//
// Oracles (namespace `topo_ref` below and support/oracle.hpp) are written from the definitions in
// the headers' comments, in double, with no library header: a brute-force kNN (all pairs sorted),
// the four metrics evaluated literally (the core S found by scanning every candidate threshold,
// not by the library's sorted prefix), the policy state machine as an explicit rule list, and
// brute-force stable / top-k / nearest-key-average attention. The oracle always sees exactly the
// (rounded-to-T) values the library sees.
//
// Tolerances (kTol<T>, absolute on quantities in [0, 1] or on O(1) outputs):
// - float 1e-5: the library forms dot products, cosines and scores in float (≤ d·2^-24 ≈ 5e-7
//   relative for d ≤ 8; ≈ 2e-6 for the d = 32 attention cases), then sums in double; the metrics
//   are ratios of sums of terms linear in those quantities, and the outputs convex combinations of
//   O(1) values, so their errors stay ≲ 2e-6 (observed ≤ 6e-7). Any real mistake (wrong edge,
//   wrong core, wrong weight) moves a value by ≥ 1e-3.
// - double 1e-12: the same argument with 2^-53 (observed ≤ 1e-15).
// Discrete choices (kNN sets, top-k sets, nearest keys) are only compared on inputs where the
// oracle's gap at the decision boundary is ≥ 1e-3, far above any rounding.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <optional>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/kernels/knn.hpp"
#include "ruvector/attention/topology/coherence.hpp"
#include "ruvector/attention/topology/gated_attention.hpp"
#include "ruvector/attention/topology/policy.hpp"
#include "support/helpers.hpp"
#include "support/oracle.hpp"

namespace ra = ruvector::attention;
namespace orc = ruvector_test::oracle;

// ================================================================================================
// Independent double-precision oracle (no library header, no library type).
// ================================================================================================
namespace topo_ref {

using orc::dmat;

struct knn_graph {
  std::size_t k = 0;
  std::vector<std::vector<std::size_t>> nbr;                 // nbr[i] = the k nearest j != i
  double min_gap = std::numeric_limits<double>::infinity();  // min over i of d_(k+1) − d_(k)
};

inline double sqdist(const dmat& x, std::size_t i, std::size_t j) {
  double s = 0;
  for (std::size_t c = 0; c < x.cols; ++c) s += (x(i, c) - x(j, c)) * (x(i, c) - x(j, c));
  return s;
}

// All pairs sorted by (distance, index); the first k.
inline knn_graph knn(const dmat& x, std::size_t k) {
  knn_graph g;
  g.k = k;
  g.nbr.resize(x.rows);
  for (std::size_t i = 0; i < x.rows; ++i) {
    std::vector<std::pair<double, std::size_t>> all;
    for (std::size_t j = 0; j < x.rows; ++j)
      if (j != i) all.emplace_back(sqdist(x, i, j), j);
    std::sort(all.begin(), all.end());
    for (std::size_t m = 0; m < k; ++m) g.nbr[i].push_back(all[m].second);
    if (k < all.size() && k > 0) g.min_gap = std::min(g.min_gap, all[k].first - all[k - 1].first);
  }
  return g;
}

inline double cosine(const dmat& x, std::size_t i, std::size_t j) {
  double dot = 0, ni = 0, nj = 0;
  for (std::size_t c = 0; c < x.cols; ++c) {
    dot += x(i, c) * x(j, c);
    ni += x(i, c) * x(i, c);
    nj += x(j, c) * x(j, c);
  }
  if (ni == 0 || nj == 0) return 0.0;
  return std::clamp(dot / std::sqrt(ni * nj), -1.0, 1.0);
}

struct metrics {
  double B = 0, C = 0, D = 0, V = 0, coherence = 1;
  std::size_t core = 0, edges = 0;
};

// w empty = uniform. mix = {w_B, w_C, w_D, w_V}.
inline metrics coherence(const dmat& x, const knn_graph& g, std::vector<double> w, double tau,
                         const std::array<double, 4>& mix = {0.35, 0.35, 0.20, 0.10}) {
  const std::size_t n = x.rows;
  if (w.empty()) w.assign(n, 1.0);
  double total = 0;
  for (double v : w) total += v;
  std::vector<double> a(n);
  for (std::size_t i = 0; i < n; ++i) a[i] = w[i] / total;

  // Core: scan the distinct weights from the largest; the first level set {a >= θ} with mass
  // >= τ − 1e-12.
  std::vector<double> levels = a;
  std::sort(levels.begin(), levels.end(), std::greater<>());
  double theta = levels.back();
  for (double t : levels) {
    double mass = 0;
    for (double v : a)
      if (v >= t) mass += v;
    if (mass >= tau - 1e-12) {
      theta = t;
      break;
    }
  }
  std::vector<bool> S(n);
  metrics m;
  for (std::size_t i = 0; i < n; ++i) {
    S[i] = a[i] >= theta;
    m.core += S[i] ? 1 : 0;
  }
  double bn = 0, bd = 0, cn = 0, cd = 0, dsum = 0;
  std::vector<double> cs;
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j : g.nbr[i]) {
      ++m.edges;
      if (S[i] || S[j]) {
        bd += a[i] + a[j];
        if (S[i] != S[j]) bn += std::abs(a[i] - a[j]);
      }
      const double c = cosine(x, i, j);
      cs.push_back(c);
      const double s = std::clamp(c, 0.0, 1.0);
      cn += s * std::abs(a[i] - a[j]);
      cd += s * (a[i] + a[j]);
      if (a[i] + a[j] > 0) dsum += std::abs(a[i] - a[j]) / (a[i] + a[j]);
    }
  m.B = bd > 0 ? bn / bd : 0;
  m.C = cd > 0 ? cn / cd : 0;
  m.D = m.edges ? dsum / static_cast<double>(m.edges) : 0;
  if (!cs.empty()) {
    double mean = 0;
    for (double c : cs) mean += c;
    mean /= static_cast<double>(cs.size());
    for (double c : cs) m.V += (c - mean) * (c - mean);
    m.V /= static_cast<double>(cs.size());
  }
  const double wt = mix[0] + mix[1] + mix[2] + mix[3];
  m.coherence = 1 - (mix[0] * m.B + mix[1] * m.C + mix[2] * m.D + mix[3] * m.V) / wt;
  return m;
}

enum class mode { stable, cautious, freeze };

// The documented rule list.
inline mode next(mode cur, double c, double c1, double c2, double h) {
  if (cur == mode::stable) return c < c2 ? mode::freeze : (c < c1 ? mode::cautious : mode::stable);
  if (cur == mode::cautious) {
    if (c < c2) return mode::freeze;
    return c > c1 + h ? mode::stable : mode::cautious;
  }
  return c > c2 + h ? mode::cautious : mode::freeze;
}

inline std::vector<double> scores(const std::vector<double>& q, const dmat& k, double scale) {
  std::vector<double> s(k.rows);
  for (std::size_t j = 0; j < k.rows; ++j) {
    double dot = 0;
    for (std::size_t c = 0; c < k.cols; ++c) dot += q[c] * k(j, c);
    s[j] = scale * dot;
  }
  return s;
}

struct attn {
  std::vector<double> out, w;
  double gap = std::numeric_limits<double>::infinity();  // decision-boundary gap
};

// Softmax over the kk largest scores (ties to the smaller index); gap = s_(kk) − s_(kk+1).
inline attn topk(const std::vector<double>& q, const dmat& k, const dmat& v, double scale,
                 std::size_t kk) {
  const auto s = scores(q, k, scale);
  std::vector<std::size_t> order(k.rows);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return s[a] > s[b] || (s[a] == s[b] && a < b); });
  kk = std::min(kk, k.rows);
  attn r{std::vector<double>(v.cols, 0.0), std::vector<double>(k.rows, 0.0)};
  if (kk < k.rows) r.gap = s[order[kk - 1]] - s[order[kk]];
  double l = 0;
  for (std::size_t t = 0; t < kk; ++t) l += std::exp(s[order[t]] - s[order[0]]);
  for (std::size_t t = 0; t < kk; ++t) {
    const std::size_t j = order[t];
    r.w[j] = std::exp(s[j] - s[order[0]]) / l;
    for (std::size_t c = 0; c < v.cols; ++c) r.out[c] += r.w[j] * v(j, c);
  }
  return r;
}

// Mean of the values of the kk keys nearest to q (ties to the smaller index).
inline attn nearest_average(const std::vector<double>& q, const dmat& k, const dmat& v,
                            std::size_t kk) {
  std::vector<std::pair<double, std::size_t>> d;
  for (std::size_t j = 0; j < k.rows; ++j) {
    double s = 0;
    for (std::size_t c = 0; c < k.cols; ++c) s += (q[c] - k(j, c)) * (q[c] - k(j, c));
    d.emplace_back(s, j);
  }
  std::sort(d.begin(), d.end());
  kk = std::min(kk, k.rows);
  attn r{std::vector<double>(v.cols, 0.0), std::vector<double>(k.rows, 0.0)};
  if (kk < k.rows) r.gap = d[kk].first - d[kk - 1].first;
  for (std::size_t t = 0; t < kk; ++t) {
    r.w[d[t].second] = 1.0 / static_cast<double>(kk);
    for (std::size_t c = 0; c < v.cols; ++c)
      r.out[c] += v(d[t].second, c) / static_cast<double>(kk);
  }
  return r;
}

}  // namespace topo_ref

namespace {

using ruvector_test::thrown_message;
using ruvector_test::to_eigen;
using ruvector_test::to_vec;

template <class T>
constexpr double kTol = std::is_same_v<T, float> ? 1e-5 : 1e-12;

#define EXPECT_MESSAGE_HAS(msg, needle) \
  EXPECT_NE(std::string(msg).find(needle), std::string::npos) << "message: " << (msg)

static_assert(ra::attention_mechanism<ra::topology_gated_attention<float>>);
static_assert(ra::attention_mechanism<ra::topology_gated_attention<double>>);

template <class T>
ra::knn_lists<T> to_knn(const topo_ref::knn_graph& g) {
  ra::knn_lists<T> l;
  l.n = g.nbr.size();
  l.k = g.k;
  for (const auto& row : g.nbr)
    for (std::size_t j : row) {
      l.indices.push_back(static_cast<std::uint32_t>(j));
      l.squared_distances.push_back(T(0));
    }
  return l;
}

// Random positive weights exp(2z), with every `zero_every`-th set to exactly 0 (0 = none), rounded
// to T.
template <class T>
std::vector<double> random_weights(std::size_t n, std::uint64_t seed, std::size_t zero_every = 0) {
  auto z = orc::random_vector(n, seed);
  std::vector<double> w(n);
  double total = 0;
  for (std::size_t i = 0; i < n; ++i) {
    w[i] = (zero_every && i % zero_every == 1) ? 0.0 : std::exp(2 * z[i]);
    total += w[i];
  }
  for (auto& x : w) x = static_cast<double>(static_cast<T>(x / total));
  return w;
}

void expect_metrics_near(const ra::coherence_metrics& got, const topo_ref::metrics& ref,
                         double tol) {
  EXPECT_NEAR(got.boundary_mass, ref.B, tol);
  EXPECT_NEAR(got.cut_proxy, ref.C, tol);
  EXPECT_NEAR(got.disagreement, ref.D, tol);
  EXPECT_NEAR(got.similarity_variance, ref.V, tol);
  EXPECT_NEAR(got.coherence, ref.coherence, tol);
  EXPECT_EQ(got.core_size, ref.core);
  EXPECT_EQ(got.edges, ref.edges);
}

void expect_in_unit(const ra::coherence_metrics& m) {
  for (double v :
       {m.boundary_mass, m.cut_proxy, m.disagreement, m.similarity_variance, m.coherence}) {
    EXPECT_GE(v, 0.0);
    EXPECT_LE(v, 1.0);
  }
}

template <class T>
class TopologyTest : public ::testing::Test {};
using Scalars = ::testing::Types<float, double>;
TYPED_TEST_SUITE(TopologyTest, Scalars);

// ================================================================================================
// Coherence metrics
// ================================================================================================

// Library (precomputed kNN from the oracle, so the graph is identical) vs the literal definitions.
TYPED_TEST(TopologyTest, MetricsMatchOracleWithGivenKnn) {
  using T = TypeParam;
  struct shape {
    std::size_t n, d, k;
    double tau;
    std::size_t zero_every;
  };
  std::uint64_t seed = 11;
  for (const shape s : {shape{2, 3, 1, 0.5, 0}, shape{3, 1, 2, 0.5, 0}, shape{7, 4, 3, 0.3, 3},
                        shape{20, 8, 5, 0.5, 0}, shape{40, 3, 4, 0.9, 4}, shape{25, 8, 1, 1.0, 5},
                        shape{33, 5, 8, 0.1, 0}}) {
    SCOPED_TRACE(::testing::Message() << "n=" << s.n << " d=" << s.d << " k=" << s.k);
    const auto x = orc::rounded<T>(orc::random_matrix(s.n, s.d, ++seed));
    const auto g = topo_ref::knn(x, s.k);
    const auto w = random_weights<T>(s.n, ++seed, s.zero_every);
    const auto ref = topo_ref::coherence(x, g, w, s.tau);
    ra::coherence_config cfg;
    cfg.mass_fraction = s.tau;
    const auto K = to_eigen<T>(x);
    const auto wt = to_vec<T>(w);
    const auto got = ra::compute_coherence<T>(K, to_knn<T>(g), wt, cfg);
    expect_metrics_near(got, ref, kTol<T>);
    expect_in_unit(got);
  }
}

// The keys-only path (exact_knn inside) and prepared keys give the oracle's values.
TYPED_TEST(TopologyTest, MetricsMatchOracleWithBuiltKnnAndPreparedKeys) {
  using T = TypeParam;
  int checked = 0;
  for (std::uint64_t seed = 100; checked < 6 && seed < 200; ++seed) {
    const std::size_t n = 10 + seed % 23, d = 2 + seed % 7, k = 1 + seed % 6;
    const auto x = orc::rounded<T>(orc::random_matrix(n, d, seed));
    const auto g = topo_ref::knn(x, k);
    if (g.min_gap < 1e-3) continue;  // kNN set decided by rounding: not comparable
    ++checked;
    SCOPED_TRACE(::testing::Message() << "seed=" << seed);
    const auto w = random_weights<T>(n, seed + 7, seed % 3);
    const auto ref = topo_ref::coherence(x, g, w, 0.5);
    ra::coherence_config cfg;
    cfg.k = k;
    const auto K = to_eigen<T>(x);
    const auto wt = to_vec<T>(w);
    expect_metrics_near(ra::compute_coherence<T>(K, wt, cfg), ref, kTol<T>);
    const auto prepared = ra::prepare_coherence_keys<T>(K, k);
    EXPECT_EQ(prepared.k(), k);
    EXPECT_EQ(prepared.size(), n);
    EXPECT_NEAR(prepared.similarity_variance(), ref.V, kTol<T>);
    expect_metrics_near(ra::compute_coherence(prepared, wt, cfg), ref, kTol<T>);
  }
  EXPECT_EQ(checked, 6);
}

// k ≥ n clamps to n − 1.
TYPED_TEST(TopologyTest, KnnSizeClampsToNMinusOne) {
  using T = TypeParam;
  const auto x = orc::rounded<T>(orc::random_matrix(6, 3, 5));
  const auto w = random_weights<T>(6, 6);
  const auto ref = topo_ref::coherence(x, topo_ref::knn(x, 5), w, 0.5);
  ra::coherence_config cfg;
  cfg.k = 50;
  const auto got = ra::compute_coherence<T>(to_eigen<T>(x), to_vec<T>(w), cfg);
  EXPECT_EQ(got.edges, 30u);
  expect_metrics_near(got, ref, kTol<T>);
  EXPECT_EQ(ra::prepare_coherence_keys<T>(to_eigen<T>(x), 6).k(), 5u);
}

// Without weights a is uniform: B = C = D = 0 exactly, V as the oracle.
TYPED_TEST(TopologyTest, UniformWeightsOnlyVarianceCounts) {
  using T = TypeParam;
  const auto x = orc::rounded<T>(orc::random_matrix(15, 4, 9));
  const auto g = topo_ref::knn(x, 4);
  const auto ref = topo_ref::coherence(x, g, {}, 0.5);
  const auto got = ra::compute_coherence<T>(to_eigen<T>(x), to_knn<T>(g), {});
  EXPECT_EQ(got.boundary_mass, 0.0);
  EXPECT_EQ(got.cut_proxy, 0.0);
  EXPECT_EQ(got.disagreement, 0.0);
  EXPECT_EQ(got.core_size, 15u);
  EXPECT_GT(ref.V, 0.01);
  EXPECT_NEAR(got.similarity_variance, ref.V, kTol<T>);
  EXPECT_NEAR(got.coherence, 1 - 0.1 * ref.V, kTol<T>);
}

// Two well separated clusters (A near 10·e0, B near 10·e1, 8 keys each, spread 0.3 along e2):
// attention on A only is coherent (every metric that needs a is 0); attention on alternate keys
// of both clusters is incoherent.
TYPED_TEST(TopologyTest, TwoClustersCoherentVersusScattered) {
  using T = TypeParam;
  const std::size_t n = 16, d = 3, k = 3;
  orc::dmat x(n, d);
  for (std::size_t i = 0; i < n; ++i) {
    x(i, i < 8 ? 0 : 1) = 10.0;
    x(i, 2) = 0.3 * static_cast<double>(i % 8);
  }
  x = orc::rounded<T>(x);
  const auto g = topo_ref::knn(x, k);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j : g.nbr[i]) ASSERT_EQ(i < 8, j < 8) << "graph must not cross clusters";
  const auto K = to_eigen<T>(x);
  ra::coherence_config cfg;
  cfg.k = k;

  std::vector<double> on_a(n, 0.0), scattered(n, 0.0);
  for (std::size_t i = 0; i < 8; ++i) on_a[i] = 1.0 / 8;
  for (std::size_t i = 0; i < n; i += 2) scattered[i] = 1.0 / 8;

  const auto coherent = ra::compute_coherence<T>(K, to_vec<T>(on_a), cfg);
  const auto ref_c = topo_ref::coherence(x, g, on_a, 0.5);
  expect_metrics_near(coherent, ref_c, kTol<T>);
  EXPECT_EQ(coherent.boundary_mass, 0.0);
  EXPECT_EQ(coherent.cut_proxy, 0.0);
  EXPECT_EQ(coherent.disagreement, 0.0);
  EXPECT_GT(coherent.coherence, 0.99);

  const auto spread = ra::compute_coherence<T>(K, to_vec<T>(scattered), cfg);
  expect_metrics_near(spread, topo_ref::coherence(x, g, scattered, 0.5), kTol<T>);
  EXPECT_GT(spread.boundary_mass, 0.5);
  EXPECT_GT(spread.cut_proxy, 0.5);
  EXPECT_GT(spread.disagreement, 0.5);
  EXPECT_LT(spread.coherence, 0.6);

  // Attention on A that decays smoothly along the chain stays far more coherent than scattered.
  std::vector<double> smooth(n, 0.0);
  for (std::size_t i = 0; i < 8; ++i)
    smooth[i] = static_cast<double>(static_cast<T>(1.0 + 0.05 * static_cast<double>(i)));
  const auto sm = ra::compute_coherence<T>(K, to_vec<T>(smooth), cfg);
  expect_metrics_near(sm, topo_ref::coherence(x, g, smooth, 0.5), kTol<T>);
  EXPECT_LT(sm.boundary_mass, 0.1);
  EXPECT_LT(sm.cut_proxy, 0.1);
  EXPECT_GT(sm.coherence, spread.coherence + 0.3);
}

// Every metric and the score stay in [0, 1] on adversarial inputs: duplicates, zero vectors,
// anti-correlated keys, weights with many exact zeros or one spike.
TYPED_TEST(TopologyTest, MetricsBoundedOnAdversarialInputs) {
  using T = TypeParam;
  std::mt19937_64 gen(77);
  for (std::uint64_t seed = 0; seed < 30; ++seed) {
    const std::size_t n = 2 + seed % 19, d = 1 + seed % 4;
    auto x = orc::rounded<T>(orc::random_matrix(n, d, 500 + seed));
    for (std::size_t i = 0; i < n; i += 3)
      for (std::size_t c = 0; c < d; ++c) x(i, c) = (seed % 2) ? 0.0 : -x((i + 1) % n, c);
    if (n > 3)
      for (std::size_t c = 0; c < d; ++c) x(2, c) = x(1, c);  // duplicate
    std::vector<double> w(n, 0.0);
    if (seed % 3 == 0) {
      w[seed % n] = 1.0;  // one spike
    } else {
      w = random_weights<T>(n, 900 + seed, 2);
      if (std::accumulate(w.begin(), w.end(), 0.0) == 0) w[0] = 1;
    }
    ra::coherence_config cfg;
    cfg.k = 1 + seed % 5;
    cfg.mass_fraction = 0.2 + 0.1 * static_cast<double>(seed % 9);
    const auto m = ra::compute_coherence<T>(to_eigen<T>(x), to_vec<T>(w), cfg);
    expect_in_unit(m);
    EXPECT_GE(m.core_size, 1u);
  }
}

// Custom score weights: only D counts → coherence = 1 − D; only B → 1 − B.
TYPED_TEST(TopologyTest, CombinedScoreWeights) {
  using T = TypeParam;
  const auto x = orc::rounded<T>(orc::random_matrix(12, 3, 3));
  const auto g = topo_ref::knn(x, 3);
  const auto w = random_weights<T>(12, 4);
  ra::coherence_config cfg;
  cfg.weights = {0, 0, 1, 0};
  const auto m = ra::compute_coherence<T>(to_eigen<T>(x), to_knn<T>(g), to_vec<T>(w), cfg);
  const auto ref = topo_ref::coherence(x, g, w, 0.5, {0, 0, 1, 0});
  EXPECT_NEAR(m.coherence, 1 - ref.D, kTol<T>);
  cfg.weights = {2, 0, 0, 0};
  const auto mb = ra::compute_coherence<T>(to_eigen<T>(x), to_knn<T>(g), to_vec<T>(w), cfg);
  EXPECT_NEAR(mb.coherence, 1 - ref.B, kTol<T>);
  // Weights need not be normalised: a scaled a gives the same metrics.
  auto w3 = w;
  for (auto& v : w3) v *= 3;
  const auto m3 = ra::compute_coherence<T>(to_eigen<T>(x), to_knn<T>(g), to_vec<T>(w3), cfg);
  EXPECT_NEAR(m3.coherence, mb.coherence, kTol<T>);
}

// n = 1: the empty graph, every metric 0, coherence 1.
TYPED_TEST(TopologyTest, SingleKeyHasEmptyGraph) {
  using T = TypeParam;
  const auto K = to_eigen<T>(orc::random_matrix(1, 4, 1));
  const std::vector<T> w{T(1)};
  const auto m = ra::compute_coherence<T>(K, w);
  EXPECT_EQ(m.edges, 0u);
  EXPECT_EQ(m.core_size, 1u);
  EXPECT_EQ(m.coherence, 1.0);
  EXPECT_EQ(m.boundary_mass + m.cut_proxy + m.disagreement + m.similarity_variance, 0.0);
  EXPECT_EQ(ra::prepare_coherence_keys<T>(K, 16).k(), 0u);
}

TYPED_TEST(TopologyTest, CoherenceErrors) {
  using T = TypeParam;
  const auto K = to_eigen<T>(orc::random_matrix(5, 3, 1));
  const std::vector<T> w(5, T(0.2));
  ra::coherence_config bad;
  bad.k = 0;
  EXPECT_MESSAGE_HAS(
      thrown_message<ra::invalid_config>([&] { (void)ra::compute_coherence<T>(K, w, bad); }),
      "k must be");
  for (double tau : {0.0, -0.1, 1.5, std::nan("")}) {
    ra::coherence_config c;
    c.mass_fraction = tau;
    EXPECT_THROW((void)ra::compute_coherence<T>(K, w, c), ra::invalid_config) << tau;
  }
  ra::coherence_config cw;
  cw.weights = {0, 0, 0, 0};
  EXPECT_THROW((void)ra::compute_coherence<T>(K, w, cw), ra::invalid_config);
  cw.weights = {1, -1, 0, 0};
  EXPECT_THROW((void)ra::compute_coherence<T>(K, w, cw), ra::invalid_config);

  EXPECT_THROW((void)ra::compute_coherence<T>(K, std::vector<T>(4, T(0.25))),
               ra::dimension_mismatch);
  auto neg = w;
  neg[2] = T(-0.1);
  EXPECT_MESSAGE_HAS(
      thrown_message<ra::invalid_argument>([&] { (void)ra::compute_coherence<T>(K, neg); }),
      "attention[2]");
  EXPECT_THROW((void)ra::compute_coherence<T>(K, std::vector<T>(5, T(0))), ra::invalid_argument);
  auto nan = w;
  nan[4] = std::numeric_limits<T>::quiet_NaN();
  EXPECT_MESSAGE_HAS(
      thrown_message<ra::non_finite_input>([&] { (void)ra::compute_coherence<T>(K, nan); }),
      "attention[4]");
  auto Kn = K;
  Kn(3, 1) = std::numeric_limits<T>::infinity();
  EXPECT_THROW((void)ra::compute_coherence<T>(Kn, w), ra::non_finite_input);
  EXPECT_THROW((void)ra::compute_coherence<T>(ra::row_matrix<T>(0, 3), std::vector<T>{}),
               ra::invalid_argument);

  // Precomputed kNN validation.
  const auto good = to_knn<T>(topo_ref::knn(orc::to_dmat(K), 2));
  auto self = good;
  self.indices[7] = 3;  // key 3's second neighbour = itself
  EXPECT_MESSAGE_HAS(
      thrown_message<ra::invalid_argument>([&] { (void)ra::compute_coherence<T>(K, self, w); }),
      "neighbour 1 of key 3");
  auto range = good;
  range.indices[0] = 5;
  EXPECT_THROW((void)ra::compute_coherence<T>(K, range, w), ra::invalid_argument);
  auto wrong_n = good;
  wrong_n.n = 4;
  EXPECT_THROW((void)ra::compute_coherence<T>(K, wrong_n, w), ra::dimension_mismatch);
  auto short_list = good;
  short_list.indices.pop_back();
  EXPECT_THROW((void)ra::compute_coherence<T>(K, short_list, w), ra::dimension_mismatch);
}

// ================================================================================================
// Policy
// ================================================================================================

ra::policy_config policy(double c1, double c2, double h, std::size_t period = 1,
                         std::size_t dwell = 0) {
  ra::policy_config p;
  p.cautious_threshold = c1;
  p.freeze_threshold = c2;
  p.hysteresis = h;
  p.update_period = period;
  p.min_dwell = dwell;
  return p;
}

ra::topology_mode lib(topo_ref::mode m) {
  return m == topo_ref::mode::stable     ? ra::topology_mode::stable
         : m == topo_ref::mode::cautious ? ra::topology_mode::cautious
                                         : ra::topology_mode::freeze;
}

std::vector<ra::topology_mode> run_policy(ra::topology_policy& p, const std::vector<double>& cs) {
  std::vector<ra::topology_mode> modes;
  for (double c : cs) modes.push_back(p.observe(c).mode);
  return modes;
}

using M = ra::topology_mode;

TEST(TopologyPolicy, NextModeMatchesRuleTableIncludingBoundaries) {
  const double c1 = 0.5, c2 = 0.2, h = 0.1;
  const auto cfg = policy(c1, c2, h);
  std::vector<double> grid;
  for (int i = 0; i <= 100; ++i) grid.push_back(i / 100.0);
  for (double b : {c1, c2, c1 + h, c2 + h, std::nextafter(c1, 0.0), std::nextafter(c1 + h, 1.0),
                   std::nextafter(c2 + h, 1.0), std::nextafter(c2, 0.0), -0.5, 1.5})
    grid.push_back(b);
  for (auto cur : {topo_ref::mode::stable, topo_ref::mode::cautious, topo_ref::mode::freeze})
    for (double c : grid)
      EXPECT_EQ(ra::next_mode(lib(cur), c, cfg), lib(topo_ref::next(cur, c, c1, c2, h)))
          << ra::to_string(lib(cur)) << " c=" << c;
  // Boundaries spelled out: entering uses strict <, leaving strict > threshold + h.
  EXPECT_EQ(ra::next_mode(M::stable, 0.5, cfg), M::stable);
  EXPECT_EQ(ra::next_mode(M::stable, 0.2, cfg), M::cautious);
  EXPECT_EQ(ra::next_mode(M::cautious, 0.6, cfg), M::cautious);
  EXPECT_EQ(ra::next_mode(M::freeze, 0.3, cfg), M::freeze);
  EXPECT_EQ(ra::next_mode(M::freeze, 0.99, cfg), M::cautious);  // never freeze → stable
  EXPECT_EQ(ra::next_mode(M::stable, 0.1, cfg), M::freeze);     // stable → freeze directly
  EXPECT_STREQ(ra::to_string(M::cautious), "cautious");
}

TEST(TopologyPolicy, HysteresisSequence) {
  ra::topology_policy p(policy(0.5, 0.2, 0.1));
  EXPECT_EQ(run_policy(p, {0.7, 0.45, 0.5, 0.52, 0.61}),
            (std::vector<M>{M::stable, M::cautious, M::cautious, M::cautious, M::stable}));
  // Oscillating around c1 by less than h never flaps back.
  ra::topology_policy q(policy(0.5, 0.2, 0.1));
  EXPECT_EQ(run_policy(q, {0.49, 0.55, 0.45, 0.59, 0.41, 0.6}), std::vector<M>(6, M::cautious));
}

TEST(TopologyPolicy, FreezeEntryAndStepwiseExit) {
  ra::topology_policy p(policy(0.5, 0.2, 0.1));
  EXPECT_EQ(run_policy(p, {0.9, 0.1, 0.25, 0.3, 0.31, 0.65, 0.19, 0.95, 0.95}),
            (std::vector<M>{M::stable, M::freeze, M::freeze, M::freeze, M::cautious, M::stable,
                            M::freeze, M::cautious, M::stable}));
  EXPECT_EQ(p.last_coherence(), 0.95);
}

// Random sequences: the stateful policy (period 1, no dwell) equals iterating the rule list.
TEST(TopologyPolicy, RandomSequencesFollowRules) {
  std::mt19937_64 gen(3);
  std::uniform_real_distribution<double> u(0, 1);
  ra::topology_policy p(policy(0.6, 0.3, 0.07));
  auto ref = topo_ref::mode::stable;
  for (int t = 0; t < 500; ++t) {
    const double c = u(gen);
    ref = topo_ref::next(ref, c, 0.6, 0.3, 0.07);
    EXPECT_EQ(p.observe(c).mode, lib(ref)) << t;
  }
}

// Period N = 3: the coherence is computed (the callback invoked) only on calls 0, 3, 6, …, and the
// mode changes only there.
TEST(TopologyPolicy, UpdatePeriodHonoured) {
  ra::topology_policy p(policy(0.5, 0.2, 0.1, 3));
  const std::vector<double> cs{0.9, 0.1, 0.1, 0.4, 0.1, 0.1, 0.1, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9};
  std::vector<std::size_t> invoked;
  std::vector<M> modes;
  for (std::size_t t = 0; t < cs.size(); ++t) {
    EXPECT_EQ(p.update_due(), t % 3 == 0);
    const auto r = p.step([&] {
      invoked.push_back(t);
      return cs[t];
    });
    EXPECT_EQ(r.updated, t % 3 == 0);
    EXPECT_EQ(r.call_index, t);
    modes.push_back(r.mode);
  }
  EXPECT_EQ(invoked, (std::vector<std::size_t>{0, 3, 6, 9, 12}));
  // Updates see 0.9, 0.4, 0.1, 0.9, 0.9 → S, C, F, C, S; held in between.
  EXPECT_EQ(modes, (std::vector<M>{M::stable, M::stable, M::stable, M::cautious, M::cautious,
                                   M::cautious, M::freeze, M::freeze, M::freeze, M::cautious,
                                   M::cautious, M::cautious, M::stable}));
  for (std::size_t t = 1; t < modes.size(); ++t) {
    if (modes[t] != modes[t - 1]) {
      EXPECT_EQ(t % 3, 0u) << t;
    }
  }
  EXPECT_EQ(p.calls(), cs.size());
}

TEST(TopologyPolicy, MinimumDwellDelaysOnlyRelaxing) {
  ra::topology_policy p(policy(0.5, 0.2, 0.1, 1, 2));
  // S→C at once; relaxing blocked for 2 updates after entering; then C→S.
  EXPECT_EQ(run_policy(p, {0.4, 0.9, 0.9, 0.9}),
            (std::vector<M>{M::cautious, M::cautious, M::cautious, M::stable}));
  // Tightening is immediate even with dwell 0: S→F, and C→F right after entering C.
  ra::topology_policy q(policy(0.5, 0.2, 0.1, 1, 5));
  EXPECT_EQ(run_policy(q, {0.1}), std::vector<M>{M::freeze});
  ra::topology_policy r(policy(0.5, 0.2, 0.1, 1, 5));
  EXPECT_EQ(run_policy(r, {0.4, 0.1}), (std::vector<M>{M::cautious, M::freeze}));
  EXPECT_EQ(r.dwell(), 0u);
  // Dwell counts updates, not calls: with period 2, dwell 1 means one more update (2 calls).
  ra::topology_policy s(policy(0.5, 0.2, 0.1, 2, 1));
  EXPECT_EQ(
      run_policy(s, {0.4, 0.9, 0.9, 0.9, 0.9, 0.9}),
      (std::vector<M>{M::cautious, M::cautious, M::cautious, M::cautious, M::stable, M::stable}));
}

TEST(TopologyPolicy, ResetAndErrorsLeaveConsistentState) {
  ra::topology_policy p(policy(0.5, 0.2, 0.1, 2));
  (void)run_policy(p, {0.1, 0.9, 0.9});
  EXPECT_EQ(p.mode(), M::cautious);
  EXPECT_EQ(p.calls(), 3u);
  // A NaN coherence on an update call throws and changes nothing.
  (void)p.observe(0.9);  // call 3, not an update
  EXPECT_THROW((void)p.observe(std::nan("")), ra::invalid_argument);
  EXPECT_EQ(p.calls(), 4u);
  EXPECT_EQ(p.mode(), M::cautious);
  EXPECT_THROW((void)p.step([]() -> double { throw std::runtime_error("boom"); }),
               std::runtime_error);
  EXPECT_EQ(p.calls(), 4u);
  p.reset();
  EXPECT_EQ(p.mode(), M::stable);
  EXPECT_EQ(p.calls(), 0u);
  EXPECT_FALSE(p.last_coherence().has_value());
  EXPECT_TRUE(p.update_due());
  EXPECT_EQ(p.observe(0.3).mode, M::cautious);
}

TEST(TopologyPolicy, InvalidConfigs) {
  for (const auto& cfg : {policy(0.5, 0.5, 0.1), policy(0.3, 0.5, 0.1), policy(0.5, 0.2, -0.01),
                          policy(0.5, 0.2, 0.1, 0), policy(std::nan(""), 0.2, 0.1),
                          policy(0.5, 0.2, std::numeric_limits<double>::infinity()),
                          policy(1.5, 0.2, 0.1), policy(0.5, -0.1, 0.1)}) {
    EXPECT_THROW(ra::topology_policy{cfg}, ra::invalid_config);
    EXPECT_THROW((void)ra::next_mode(M::stable, 0.5, cfg), ra::invalid_config);
  }
  EXPECT_NO_THROW(ra::topology_policy{policy(0.5, 0.0, 0.0)});
  EXPECT_THROW((void)ra::next_mode(M::stable, std::nan(""), policy(0.5, 0.2, 0.1)),
               ra::invalid_argument);
}

// ================================================================================================
// Gated attention
// ================================================================================================

template <class T>
ra::topology_gated_config<T> forced(M mode, std::size_t top_k = 8, std::size_t freeze_k = 4) {
  ra::topology_gated_config<T> c;
  c.top_k = top_k;
  c.freeze_k = freeze_k;
  c.coherence.k = 4;
  // stable: coherence ≥ 1e-6 (always on these inputs); cautious: coherence < 1; freeze: < 0.9999.
  c.policy = mode == M::stable     ? policy(1e-6, 0.0, 0.0)
             : mode == M::cautious ? policy(1.0, 0.0, 0.0)
                                   : policy(1.0, 0.9999, 0.0);
  return c;
}

struct problem {
  orc::dmat q, k, v;
};

template <class T>
problem random_problem(std::size_t n, std::size_t d, std::size_t dv, std::uint64_t seed) {
  return {orc::rounded<T>(orc::random_matrix(1, d, seed, 1.5)),
          orc::rounded<T>(orc::random_matrix(n, d, seed + 1)),
          orc::rounded<T>(orc::random_matrix(n, dv, seed + 2))};
}

TYPED_TEST(TopologyTest, StableEqualsSoftmaxAttention) {
  using T = TypeParam;
  for (const auto& [n, d, dv] : {std::tuple{2ul, 4ul, 3ul}, std::tuple{5ul, 4ul, 8ul},
                                 std::tuple{33ul, 16ul, 5ul}, std::tuple{70ul, 9ul, 17ul}}) {
    SCOPED_TRACE(::testing::Message() << "n=" << n << " d=" << d);
    const auto p = random_problem<T>(n, d, dv, 40 + n);
    const auto ref = orc::reference_attention(p.q, p.k, p.v, 1 / std::sqrt(double(d)));
    const ra::topology_gated_attention<T> att(d, forced<T>(M::stable));
    const auto qv = to_vec<T>(p.q.a);
    const auto K = to_eigen<T>(p.k), V = to_eigen<T>(p.v);
    const auto r = att.compute_detailed(qv, K, V);
    EXPECT_EQ(r.mode, M::stable);
    ASSERT_TRUE(r.metrics.has_value());
    EXPECT_LE(orc::max_mixed_error(r.output, ref.out.a), kTol<T>);
    EXPECT_LE(orc::max_mixed_error(r.weights, ref.weights.a), kTol<T>);
    EXPECT_LE(orc::max_mixed_error(att.compute(qv, K, V), ref.out.a), kTol<T>);
    // The gate's metrics are those of (keys, the full softmax weights of this query).
    const auto g = topo_ref::knn(p.k, std::min<std::size_t>(4, n - 1));
    if (g.min_gap > 1e-3) {
      expect_metrics_near(*r.metrics, topo_ref::coherence(p.k, g, ref.weights.a, 0.5), 1e-5);
    }
  }
}

// Strided (non-contiguous) key/value views give the same result.
TYPED_TEST(TopologyTest, StridedViews) {
  using T = TypeParam;
  const auto p = random_problem<T>(12, 6, 4, 8);
  const auto ref = orc::reference_attention(p.q, p.k, p.v, 1 / std::sqrt(6.0));
  ra::row_matrix<T> big_k = ra::row_matrix<T>::Zero(12, 10), big_v = ra::row_matrix<T>::Zero(12, 9);
  big_k.leftCols(6) = to_eigen<T>(p.k);
  big_v.leftCols(4) = to_eigen<T>(p.v);
  const ra::matrix_cref<T> K = big_k.leftCols(6), V = big_v.leftCols(4);
  ASSERT_EQ(K.outerStride(), 10);
  const ra::topology_gated_attention<T> att(6, forced<T>(M::stable));
  EXPECT_LE(orc::max_mixed_error(att.compute(to_vec<T>(p.q.a), K, V), ref.out.a), kTol<T>);
}

TYPED_TEST(TopologyTest, CautiousEqualsTopKReference) {
  using T = TypeParam;
  int checked = 0;
  for (std::uint64_t seed = 1; checked < 8 && seed < 100; ++seed) {
    const std::size_t n = 6 + seed % 30, d = 3 + seed % 11, dv = 1 + seed % 7;
    const std::size_t top_k = 1 + seed % 9;  // sometimes ≥ n? no: n ≥ 6, top_k ≤ 9
    const auto p = random_problem<T>(n, d, dv, 300 + seed);
    const auto ref = topo_ref::topk(p.q.a, p.k, p.v, 1 / std::sqrt(double(d)), top_k);
    if (ref.gap < 1e-3) continue;
    ++checked;
    SCOPED_TRACE(::testing::Message() << "seed=" << seed << " n=" << n << " top_k=" << top_k);
    const ra::topology_gated_attention<T> att(d, forced<T>(M::cautious, top_k));
    const auto r = att.compute_detailed(to_vec<T>(p.q.a), to_eigen<T>(p.k), to_eigen<T>(p.v));
    ASSERT_EQ(r.mode, M::cautious);
    EXPECT_LE(orc::max_mixed_error(r.output, ref.out), kTol<T>);
    EXPECT_LE(orc::max_mixed_error(r.weights, ref.w), kTol<T>);
    std::size_t nonzero = 0;
    for (T w : r.weights) nonzero += w > T(0) ? 1 : 0;
    EXPECT_EQ(nonzero, std::min(top_k, n));
  }
  EXPECT_EQ(checked, 8);
}

TYPED_TEST(TopologyTest, FreezeEqualsNearestKeyAverage) {
  using T = TypeParam;
  int checked = 0;
  for (std::uint64_t seed = 1; checked < 8 && seed < 100; ++seed) {
    const std::size_t n = 5 + seed % 30, d = 2 + seed % 9, dv = 1 + seed % 6;
    const std::size_t fk = 1 + seed % 6;
    const auto p = random_problem<T>(n, d, dv, 700 + seed);
    const auto ref = topo_ref::nearest_average(p.q.a, p.k, p.v, fk);
    if (ref.gap < 1e-3) continue;
    ++checked;
    SCOPED_TRACE(::testing::Message() << "seed=" << seed << " n=" << n << " freeze_k=" << fk);
    const ra::topology_gated_attention<T> att(d, forced<T>(M::freeze, 8, fk));
    const auto r = att.compute_detailed(to_vec<T>(p.q.a), to_eigen<T>(p.k), to_eigen<T>(p.v));
    ASSERT_EQ(r.mode, M::freeze);
    EXPECT_LE(orc::max_mixed_error(r.output, ref.out), kTol<T>);
    EXPECT_LE(orc::max_mixed_error(r.weights, ref.w), kTol<T>);
  }
  EXPECT_EQ(checked, 8);
}

// top_k ≥ n: cautious = full softmax; freeze_k ≥ n: the mean of all values; n = 1: v_0 always.
TYPED_TEST(TopologyTest, ClampsAndSingleKey) {
  using T = TypeParam;
  const auto p = random_problem<T>(5, 4, 3, 17);
  const auto qv = to_vec<T>(p.q.a);
  const auto K = to_eigen<T>(p.k), V = to_eigen<T>(p.v);
  const auto ref = orc::reference_attention(p.q, p.k, p.v, 0.5);
  const ra::topology_gated_attention<T> cautious(4, forced<T>(M::cautious, 100));
  const auto rc = cautious.compute_detailed(qv, K, V);
  ASSERT_EQ(rc.mode, M::cautious);
  EXPECT_LE(orc::max_mixed_error(rc.output, ref.out.a), kTol<T>);
  const ra::topology_gated_attention<T> freeze(4, forced<T>(M::freeze, 8, 100));
  const auto rf = freeze.compute_detailed(qv, K, V);
  ASSERT_EQ(rf.mode, M::freeze);
  std::vector<double> mean(3, 0.0);
  for (std::size_t j = 0; j < 5; ++j)
    for (std::size_t c = 0; c < 3; ++c) mean[c] += p.v(j, c) / 5;
  EXPECT_LE(orc::max_mixed_error(rf.output, mean), kTol<T>);

  // n = 1: empty graph → coherence 1 → stable even under the "cautious"/"freeze" configs; every
  // mode would return v_0 anyway.
  const auto p1 = random_problem<T>(1, 4, 3, 5);
  for (M m : {M::stable, M::cautious, M::freeze}) {
    const ra::topology_gated_attention<T> att(4, forced<T>(m));
    const auto r = att.compute_detailed(to_vec<T>(p1.q.a), to_eigen<T>(p1.k), to_eigen<T>(p1.v));
    EXPECT_EQ(r.metrics->coherence, 1.0);
    EXPECT_EQ(r.metrics->edges, 0u);
    EXPECT_LE(orc::max_mixed_error(r.output, p1.v.row(0)), kTol<T>);
    EXPECT_EQ(r.weights, std::vector<T>{T(1)});
  }
}

// Coherent input: keys in two tight clusters (A near 10·e0, B near 10·e1), q = e0, so attention
// sits on A. Incoherent input: keys spread by 3·N(0, 1) in dims 0-6 (which decide the kNN graph)
// and q = 10·e7 reading only dim 7, where every 8th key holds +0.6 and the others −U(0, 1): the
// attention sits on 4 keys scattered among the others, and varies by e^{±3.5} between neighbours.
template <class T>
struct gate_inputs {
  ra::row_matrix<T> kc, ki, v;
  std::vector<T> qc, qi;
};

template <class T>
gate_inputs<T> make_gate_inputs() {
  const std::size_t n = 32, d = 8;
  std::mt19937_64 gen(4);
  std::normal_distribution<double> nd(0, 1);
  std::uniform_real_distribution<double> u(0, 1);
  orc::dmat kc(n, d), ki(n, d);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t c = 0; c < d; ++c) {
      kc(i, c) = (c == i / 16 ? 10.0 : 0.0) + 0.1 * nd(gen);
      ki(i, c) = c < 7 ? 3 * nd(gen) : (i % 8 == 3 ? 0.6 : -u(gen));
    }
  gate_inputs<T> g{to_eigen<T>(kc), to_eigen<T>(ki), to_eigen<T>(orc::random_matrix(n, 4, 9)),
                   std::vector<T>(d, T(0)), std::vector<T>(d, T(0))};
  g.qc[0] = T(1);
  g.qi[7] = T(10);
  return g;
}

TYPED_TEST(TopologyTest, ModePersistsAcrossCallsWithPeriod) {
  using T = TypeParam;
  const auto in = make_gate_inputs<T>();
  ra::topology_gated_config<T> cfg;
  cfg.coherence.k = 4;
  cfg.policy = policy(0.6, 0.4, 0.05, 2);
  // Preconditions from the (separately tested) metrics: coherent > c1 + h, incoherent < c2.
  {
    const ra::topology_gated_attention<T> probe(8, cfg);
    const double cc = probe.compute_detailed(in.qc, in.kc, in.v).metrics->coherence;
    probe.reset();
    const double ci = probe.compute_detailed(in.qi, in.ki, in.v).metrics->coherence;
    ASSERT_GT(cc, 0.65);
    ASSERT_LT(ci, 0.4);
  }
  const ra::topology_gated_attention<T> att(8, cfg);
  // Calls: c i i c c i c; updates at 0, 2, 4, 6 → S (S) F (F) C (C) S.
  const std::vector<bool> coherent{true, false, false, true, true, false, true};
  const std::vector<M> expected{M::stable,   M::stable,   M::freeze, M::freeze,
                                M::cautious, M::cautious, M::stable};
  for (std::size_t t = 0; t < coherent.size(); ++t) {
    SCOPED_TRACE(t);
    const auto& K = coherent[t] ? in.kc : in.ki;
    const auto& q = coherent[t] ? in.qc : in.qi;
    const auto r = att.compute_detailed(q, K, in.v);
    EXPECT_EQ(r.mode, expected[t]);
    EXPECT_EQ(r.updated, t % 2 == 0);
    EXPECT_EQ(r.metrics.has_value(), t % 2 == 0);
    EXPECT_EQ(r.call_index, t);
    EXPECT_EQ(att.mode(), expected[t]);
    // The output is the one of the mode used (reference by mode).
    const auto qd = orc::to_dvec(q);
    const auto kd = orc::to_dmat(K), vd = orc::to_dmat(in.v);
    std::vector<double> ref;
    if (r.mode == M::stable) {
      orc::dmat qm(1, 8);
      qm.a = qd;
      ref = orc::reference_attention(qm, kd, vd, 1 / std::sqrt(8.0)).out.a;
    } else if (r.mode == M::cautious) {
      ref = topo_ref::topk(qd, kd, vd, 1 / std::sqrt(8.0), 8).out;
    } else {
      ref = topo_ref::nearest_average(qd, kd, vd, 4).out;
    }
    EXPECT_LE(orc::max_mixed_error(r.output, ref), kTol<T>);
  }
  EXPECT_EQ(att.calls(), 7u);
  ASSERT_TRUE(att.last_metrics().has_value());

  // Copies share the gate; fork() does not; reset() restarts it.
  const auto copy = att;  // NOLINT(performance-unnecessary-copy-initialization)
  const auto forked = att.fork();
  (void)copy.compute(in.qi, in.ki, in.v);  // call 7: not an update
  (void)copy.compute(in.qi, in.ki, in.v);  // call 8: update → freeze
  EXPECT_EQ(att.mode(), M::freeze);
  EXPECT_EQ(att.calls(), 9u);
  EXPECT_EQ(forked.mode(), M::stable);
  EXPECT_EQ(forked.calls(), 7u);
  att.reset();
  EXPECT_EQ(copy.mode(), M::stable);
  EXPECT_EQ(copy.calls(), 0u);
  EXPECT_FALSE(att.last_metrics().has_value());
  EXPECT_EQ(att.compute_detailed(in.qi, in.ki, in.v).mode, M::freeze);  // call 0 is an update
}

// Prepared keys: same metrics, mode and output as the raw-matrix path.
TYPED_TEST(TopologyTest, PreparedKeysMatchRawPath) {
  using T = TypeParam;
  const auto in = make_gate_inputs<T>();
  ra::topology_gated_config<T> cfg;
  cfg.coherence.k = 4;
  const ra::topology_gated_attention<T> a(8, cfg), b(8, cfg);
  const auto pk = ra::prepare_coherence_keys<T>(in.ki, 4);
  const auto pc = ra::prepare_coherence_keys<T>(in.kc, 4);
  for (int t = 0; t < 4; ++t) {
    const bool inc = t % 3 != 2;
    const auto ra_ = a.compute_detailed(inc ? in.qi : in.qc, inc ? in.ki : in.kc, in.v);
    const auto rb = b.compute_detailed(inc ? in.qi : in.qc, inc ? pk : pc, in.v);
    EXPECT_EQ(ra_.mode, rb.mode);
    EXPECT_EQ(ra_.output, rb.output);
    ASSERT_TRUE(ra_.metrics && rb.metrics);
    EXPECT_EQ(ra_.metrics->coherence, rb.metrics->coherence);
    EXPECT_EQ(ra_.metrics->boundary_mass, rb.metrics->boundary_mass);
  }
}

// Concurrent calls on one shared gate: every call is counted once and exactly the calls at
// multiples of the period recompute the metrics.
TEST(TopologyGated, ConcurrentCallsShareOneSequence) {
  const auto in = make_gate_inputs<float>();
  ra::topology_gated_config<float> cfg;
  cfg.coherence.k = 4;
  cfg.policy = policy(0.5, 0.3, 0.05, 4);
  const ra::topology_gated_attention<float> att(8, cfg);
  const auto pk = ra::prepare_coherence_keys<float>(in.ki, 4);
  const auto pc = ra::prepare_coherence_keys<float>(in.kc, 4);
  std::atomic<int> updates{0};
  std::vector<std::thread> threads;
  std::vector<std::vector<std::size_t>> seen(4);
  for (int th = 0; th < 4; ++th)
    threads.emplace_back([&, th] {
      for (int i = 0; i < 25; ++i) {
        const bool inc = (i + th) % 2 == 0;
        const auto r = att.compute_detailed(inc ? in.qi : in.qc, inc ? pk : pc, in.v);
        if (r.updated) ++updates;
        seen[static_cast<std::size_t>(th)].push_back(r.call_index);
        EXPECT_EQ(r.updated, r.call_index % 4 == 0);
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(att.calls(), 100u);
  EXPECT_EQ(updates.load(), 25);
  std::vector<std::size_t> all;
  for (const auto& s : seen) all.insert(all.end(), s.begin(), s.end());
  std::sort(all.begin(), all.end());
  std::vector<std::size_t> expect(100);
  std::iota(expect.begin(), expect.end(), 0u);
  EXPECT_EQ(all, expect);
}

TYPED_TEST(TopologyTest, GatedErrorsLeaveGateUntouched) {
  using T = TypeParam;
  const auto p = random_problem<T>(6, 4, 3, 2);
  const auto qv = to_vec<T>(p.q.a);
  const auto K = to_eigen<T>(p.k), V = to_eigen<T>(p.v);
  const ra::topology_gated_attention<T> att(4);
  EXPECT_MESSAGE_HAS(thrown_message<ra::dimension_mismatch>(
                         [&] { (void)att.compute(std::vector<T>(3, T(0)), K, V); }),
                     "query.size()");
  EXPECT_THROW((void)att.compute(qv, to_eigen<T>(orc::random_matrix(6, 5, 1)), V),
               ra::dimension_mismatch);
  EXPECT_THROW((void)att.compute(qv, K, to_eigen<T>(orc::random_matrix(5, 3, 1))),
               ra::dimension_mismatch);
  EXPECT_THROW((void)att.compute(qv, ra::row_matrix<T>(0, 4), ra::row_matrix<T>(0, 3)),
               ra::invalid_argument);
  auto qn = qv;
  qn[1] = std::numeric_limits<T>::quiet_NaN();
  EXPECT_MESSAGE_HAS(thrown_message<ra::non_finite_input>([&] { (void)att.compute(qn, K, V); }),
                     "query[1]");
  auto Kn = K;
  Kn(2, 3) = std::numeric_limits<T>::infinity();
  EXPECT_MESSAGE_HAS(thrown_message<ra::non_finite_input>([&] { (void)att.compute(qv, Kn, V); }),
                     "keys[2][3]");
  auto Vn = V;
  Vn(4, 0) = std::numeric_limits<T>::quiet_NaN();
  for (M m : {M::stable, M::cautious, M::freeze}) {
    const ra::topology_gated_attention<T> g(4, forced<T>(m, 1, 1));
    EXPECT_MESSAGE_HAS(thrown_message<ra::non_finite_input>([&] { (void)g.compute(qv, K, Vn); }),
                       "values[4][0]");
    EXPECT_EQ(g.calls(), 0u);
  }
  EXPECT_EQ(att.calls(), 0u);
  EXPECT_EQ(att.mode(), M::stable);

  auto bad = [](auto mutate) {
    ra::topology_gated_config<T> c;
    mutate(c);
    return c;
  };
  EXPECT_THROW(ra::topology_gated_attention<T>(0), ra::invalid_config);
  EXPECT_THROW(ra::topology_gated_attention<T>(4, bad([](auto& c) { c.top_k = 0; })),
               ra::invalid_config);
  EXPECT_THROW(ra::topology_gated_attention<T>(4, bad([](auto& c) { c.freeze_k = 0; })),
               ra::invalid_config);
  EXPECT_THROW(ra::topology_gated_attention<T>(4, bad([](auto& c) { c.scale = T(0); })),
               ra::invalid_config);
  EXPECT_THROW(ra::topology_gated_attention<T>(
                   4, bad([](auto& c) { c.scale = std::numeric_limits<T>::quiet_NaN(); })),
               ra::invalid_config);
  EXPECT_THROW(ra::topology_gated_attention<T>(4, bad([](auto& c) { c.coherence.k = 0; })),
               ra::invalid_config);
  EXPECT_THROW(
      ra::topology_gated_attention<T>(
          4, bad([](auto& c) { c.policy.freeze_threshold = c.policy.cautious_threshold; })),
      ra::invalid_config);
  EXPECT_THROW(ra::topology_gated_attention<T>(4, bad([](auto& c) { c.policy.update_period = 0; })),
               ra::invalid_config);
}

}  // namespace
