// Tests of the unified geometry report: the structural metrics against brute-force double
// oracles written here (Kruskal MST, exhaustive four-point δ, entropy sums), bands and the health
// score against their definitions, the recommendation rules, the OT numerator against the
// translation closed form, the IB term against the Gaussian KL formula, and the report on
// synthetic data with known structure (tree → geometric, long smooth sequence → local_global,
// near-uniform attention → lower temperature, Gaussian data → standard with health ≥ 0.8).
#include "ruvector/attention/unified_report.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "ruvector/attention/io/json.hpp"

namespace ra = ruvector::attention;

namespace {

template <class T>
using mat = ra::row_matrix<T>;

template <class T>
mat<T> gaussian(std::size_t n, std::size_t d, std::uint64_t seed, double sd = 1.0,
                double shift = 0.0) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> g(0.0, sd);
  mat<T> x(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(d));
  for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<T>(g(gen) + shift);
  return x;
}

// A random tree embedded in ℝ^d: children at parent + step·u (u a random unit vector), the step
// halving per level — hierarchical structure over `levels` scales.
template <class T>
mat<T> tree_embedding(std::size_t branching, std::size_t levels, std::size_t d,
                      std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> g;
  std::vector<std::vector<double>> pts{std::vector<double>(d, 0.0)};
  std::vector<std::size_t> level{0};
  double step = 1.0;
  for (std::size_t l = 0; l < levels; ++l) {
    std::vector<std::size_t> next;
    for (const std::size_t parent : level)
      for (std::size_t c = 0; c < branching; ++c) {
        std::vector<double> u(d);
        double norm = 0;
        for (double& v : u) v = g(gen), norm += v * v;
        norm = std::sqrt(norm);
        std::vector<double> x = pts[parent];
        for (std::size_t i = 0; i < d; ++i) x[i] += step * u[i] / norm;
        pts.push_back(x);
        next.push_back(pts.size() - 1);
      }
    level = next;
    step *= 0.5;
  }
  mat<T> out(static_cast<Eigen::Index>(pts.size()), static_cast<Eigen::Index>(d));
  for (std::size_t i = 0; i < pts.size(); ++i)
    for (std::size_t c = 0; c < d; ++c)
      out(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(c)) = static_cast<T>(pts[i][c]);
  return out;
}

// A long smooth trajectory: x_t = sin(ω_c t + φ_c) with slow frequencies, plus tiny noise.
template <class T>
mat<T> smooth_sequence(std::size_t n, std::size_t d, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> g(0.0, 0.01);
  mat<T> x(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(d));
  for (std::size_t t = 0; t < n; ++t)
    for (std::size_t c = 0; c < d; ++c)
      x(static_cast<Eigen::Index>(t), static_cast<Eigen::Index>(c)) =
          static_cast<T>(std::sin(0.01 * static_cast<double>(t) * static_cast<double>(1 + c % 5) +
                                  static_cast<double>(c)) +
                         g(gen));
  return x;
}

// Oracle: Euclidean MST edge lengths by Kruskal over all pairs with a union–find (double).
template <class T>
std::vector<double> kruskal_deaths(const mat<T>& x) {
  const auto n = static_cast<std::size_t>(x.rows());
  struct edge {
    double w;
    std::size_t a, b;
  };
  std::vector<edge> edges;
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = i + 1; j < n; ++j) {
      double s = 0;
      for (Eigen::Index c = 0; c < x.cols(); ++c) {
        const double diff = static_cast<double>(x(static_cast<Eigen::Index>(i), c)) -
                            static_cast<double>(x(static_cast<Eigen::Index>(j), c));
        s += diff * diff;
      }
      edges.push_back({std::sqrt(s), i, j});
    }
  std::sort(edges.begin(), edges.end(), [](const edge& a, const edge& b) { return a.w < b.w; });
  std::vector<std::size_t> parent(n);
  std::iota(parent.begin(), parent.end(), std::size_t{0});
  const auto find = [&](std::size_t v) {
    while (parent[v] != v) v = parent[v] = parent[parent[v]];
    return v;
  };
  std::vector<double> deaths;
  for (const edge& e : edges) {
    const auto ra_ = find(e.a), rb = find(e.b);
    if (ra_ != rb) parent[ra_] = rb, deaths.push_back(e.w);
  }
  return deaths;
}

// Oracle: exhaustive four-point δ over all quadruples (double).
template <class T>
double exhaustive_delta(const mat<T>& x) {
  const auto n = static_cast<std::size_t>(x.rows());
  std::vector<double> dm(n * n);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j)
      dm[i * n + j] = (x.row(static_cast<Eigen::Index>(i)).template cast<double>() -
                       x.row(static_cast<Eigen::Index>(j)).template cast<double>())
                          .norm();
  double delta = 0;
  for (std::size_t a = 0; a < n; ++a)
    for (std::size_t b = 0; b < n; ++b)
      for (std::size_t c = 0; c < n; ++c)
        for (std::size_t e = 0; e < n; ++e) {
          double s[3] = {dm[a * n + b] + dm[c * n + e], dm[a * n + c] + dm[b * n + e],
                         dm[a * n + e] + dm[b * n + c]};
          std::sort(s, s + 3);
          delta = std::max(delta, (s[2] - s[1]) / 2);
        }
  return delta;
}

template <class T>
struct tol;
template <>
struct tol<float> {
  static constexpr double rel = 1e-5;  // float distances/logs of O(1) values, a few ulps each
};
template <>
struct tol<double> {
  static constexpr double rel = 1e-12;
};

template <class T>
class UnifiedReportTest : public ::testing::Test {};
using Scalars = ::testing::Types<float, double>;
TYPED_TEST_SUITE(UnifiedReportTest, Scalars);

// ------------------------------------------------------------------------------------------------
// Structural metrics
// ------------------------------------------------------------------------------------------------

TYPED_TEST(UnifiedReportTest, EntropyMatchesItsDefinition) {
  using T = TypeParam;
  std::mt19937_64 gen(3);
  std::normal_distribution<double> g(0.0, 1.5);
  for (std::size_t n : {1, 2, 7, 64}) {
    std::vector<double> s(n);
    for (double& v : s) v = g(gen);
    const double m = *std::max_element(s.begin(), s.end());
    double z = 0;
    for (double v : s) z += std::exp(v - m);
    std::vector<T> w(n);
    std::vector<double> wd(n);
    for (std::size_t i = 0; i < n; ++i)
      wd[i] = std::exp(s[i] - m) / z, w[i] = static_cast<T>(wd[i]);
    double h = 0, mean = 0;
    for (double v : wd) h -= v * std::log(v);
    for (double v : s) mean += v / static_cast<double>(n);
    double var = 0;
    for (double v : s) var += (v - mean) * (v - mean) / static_cast<double>(n);
    const auto e = ra::attention_entropy<T>(w);
    EXPECT_NEAR(e.entropy, h, 1e-5 * (1 + h)) << "n=" << n;
    EXPECT_NEAR(e.normalized, n > 1 ? h / std::log(static_cast<double>(n)) : 0.0, 1e-5);
    // ln w = s − lse, so the spread of ln w is the spread of the scores.
    EXPECT_NEAR(e.logit_std, std::sqrt(var), 1e-4 * (1 + std::sqrt(var)));
  }
  // Uniform → normalised 1; one-hot → 0 (0·ln 0 = 0).
  const std::vector<T> uniform(10, T(0.1));
  EXPECT_NEAR(ra::attention_entropy<T>(uniform).normalized, 1.0, 1e-6);
  std::vector<T> onehot(10, T(0));
  onehot[3] = T(1);
  EXPECT_EQ(ra::attention_entropy<T>(onehot).entropy, 0.0);
  EXPECT_THROW((void)ra::attention_entropy<T>(std::vector<T>{T(0.5), T(0.2)}),
               ra::invalid_argument);
  EXPECT_THROW((void)ra::attention_entropy<T>(std::vector<T>{T(1.5), T(-0.5)}),
               ra::invalid_argument);
  EXPECT_THROW((void)ra::attention_entropy<T>(std::vector<T>{}), ra::invalid_argument);
  EXPECT_THROW((void)ra::attention_entropy<T>(std::vector<T>{std::numeric_limits<T>::quiet_NaN()}),
               ra::non_finite_input);
}

TYPED_TEST(UnifiedReportTest, H0DeathsAreTheMinimumSpanningTreeEdges) {
  using T = TypeParam;
  for (std::size_t n : {2, 3, 17, 60})
    for (std::size_t d : {1, 3, 16}) {
      const auto x = gaussian<T>(n, d, 100 + n + d);
      const auto h0 = ra::h0_persistence<T>(x);
      const auto want = kruskal_deaths(x);
      ASSERT_EQ(h0.deaths.size(), n - 1);
      EXPECT_EQ(h0.points_used, n);
      double total = 0;
      for (std::size_t i = 0; i < want.size(); ++i) {
        // Squared distances from differences: relative error ~ d·u, halved by the sqrt.
        EXPECT_NEAR(h0.deaths[i], want[i], 1e2 * tol<T>::rel * (1 + want[i])) << i;
        total += want[i];
      }
      EXPECT_NEAR(h0.total, total, 1e2 * tol<T>::rel * (1 + total));
      EXPECT_NEAR(h0.max_death, want.back(), 1e2 * tol<T>::rel * (1 + want.back()));
      // Scale spread = population std of log2(deaths).
      double mean = 0, var = 0;
      for (double v : want) mean += std::log2(v) / static_cast<double>(want.size());
      for (double v : want)
        var += std::pow(std::log2(v) - mean, 2) / static_cast<double>(want.size());
      EXPECT_NEAR(h0.scale_spread, std::sqrt(var), 1e-3);
    }
  // One point: no finite death. Duplicates: deaths of 0 are excluded from the spread.
  EXPECT_TRUE(ra::h0_persistence<T>(gaussian<T>(1, 4, 1)).deaths.empty());
  mat<T> dup(3, 2);
  dup << T(0), T(0), T(0), T(0), T(1), T(0);
  const auto h = ra::h0_persistence<T>(dup);
  EXPECT_EQ(h.deaths[0], 0.0);
  EXPECT_NEAR(h.deaths[1], 1.0, 1e-6);
  EXPECT_EQ(h.scale_spread, 0.0);
  // A subsample is used beyond max_points.
  EXPECT_EQ(ra::h0_persistence<T>(gaussian<T>(50, 3, 2), 20).points_used, 20u);
}

TYPED_TEST(UnifiedReportTest, GromovDeltaMatchesExhaustiveSearchAndClosedForms) {
  using T = TypeParam;
  // Six points: 6⁴ = 1296 ordered quadruples, 20000 samples miss one with probability ~1e-7.
  for (std::uint64_t seed : {1, 2, 3}) {
    const auto x = gaussian<T>(6, 3, seed);
    const auto got = ra::gromov_delta<T>(x);
    EXPECT_NEAR(got.delta, exhaustive_delta(x), 1e-4) << seed;
  }
  // Points on a line form a metric tree: δ = 0.
  mat<T> line(8, 2);
  for (Eigen::Index i = 0; i < 8; ++i) line(i, 0) = static_cast<T>(i * i), line(i, 1) = T(0);
  EXPECT_NEAR(ra::gromov_delta<T>(line).delta, 0.0, 1e-4);
  // Unit square: sums 2, 2, 2√2 → δ = √2 − 1, diam √2 → 2δ/diam = 2 − √2.
  mat<T> square(4, 2);
  square << T(0), T(0), T(1), T(0), T(1), T(1), T(0), T(1);
  const auto sq = ra::gromov_delta<T>(square);
  EXPECT_NEAR(sq.delta, std::sqrt(2.0) - 1, 1e-5);
  EXPECT_NEAR(sq.relative, 2 - std::sqrt(2.0), 1e-5);
}

TYPED_TEST(UnifiedReportTest, SequenceSmoothnessSeparatesOrderedFromShuffledRows) {
  using T = TypeParam;
  // Equally spaced points on a line: consecutive distance 1; the median |i − j| of uniform
  // random pairs is n(1 − 1/√2) ≈ 0.293 n, so smoothness ≈ 1/(0.293 n).
  const std::size_t n = 1000;
  mat<T> line(static_cast<Eigen::Index>(n), 1);
  for (std::size_t i = 0; i < n; ++i) line(static_cast<Eigen::Index>(i), 0) = static_cast<T>(i);
  EXPECT_NEAR(ra::sequence_smoothness<T>(line), 1.0 / ((1 - 1 / std::sqrt(2.0)) * n),
              0.1 / ((1 - 1 / std::sqrt(2.0)) * n));
  // Shuffled rows: consecutive pairs are random pairs → ≈ 1.
  std::vector<std::size_t> perm(n);
  std::iota(perm.begin(), perm.end(), std::size_t{0});
  std::shuffle(perm.begin(), perm.end(), std::mt19937_64(9));
  mat<T> shuffled(static_cast<Eigen::Index>(n), 1);
  for (std::size_t i = 0; i < n; ++i)
    shuffled(static_cast<Eigen::Index>(i), 0) = static_cast<T>(perm[i]);
  EXPECT_NEAR(ra::sequence_smoothness<T>(shuffled), 1.0, 0.15);
  EXPECT_EQ(ra::sequence_smoothness<T>(gaussian<T>(1, 3, 1)), 0.0);
}

// ------------------------------------------------------------------------------------------------
// Bands, health, recommendation
// ------------------------------------------------------------------------------------------------

TEST(UnifiedReportBands, ClassifyFollowsTheNestedIntervals) {
  const auto up = ra::higher_is_worse(1.0, 2.0);
  EXPECT_EQ(up.classify(0.5), ra::metric_status::healthy);
  EXPECT_EQ(up.classify(1.0), ra::metric_status::healthy);
  EXPECT_EQ(up.classify(1.5), ra::metric_status::warning);
  EXPECT_EQ(up.classify(2.5), ra::metric_status::critical);
  const auto down = ra::lower_is_worse(0.5, 0.3);
  EXPECT_EQ(down.classify(0.9), ra::metric_status::healthy);
  EXPECT_EQ(down.classify(0.4), ra::metric_status::warning);
  EXPECT_EQ(down.classify(0.1), ra::metric_status::critical);
  const ra::metric_band two{0.1, 0.9, 0.05, 0.95};
  EXPECT_EQ(two.classify(0.5), ra::metric_status::healthy);
  EXPECT_EQ(two.classify(0.07), ra::metric_status::warning);
  EXPECT_EQ(two.classify(0.93), ra::metric_status::warning);
  EXPECT_EQ(two.classify(0.99), ra::metric_status::critical);
  EXPECT_EQ(two.classify(std::nan("")), ra::metric_status::critical);
  EXPECT_THROW((ra::metric_band{0.5, 0.4, 0.0, 1.0}.validate()), ra::invalid_config);
  EXPECT_THROW((ra::metric_band{0.1, 0.9, 0.2, 1.0}.validate()), ra::invalid_config);
}

TEST(UnifiedReportBuilder, HealthIsTheMeanScoreOfBandedMetrics) {
  // The seeds' example values: coherence 0.82 (high = good, unlike the original's bands),
  // entropy 2.1 nats over 64 keys (r = 0.505), OT shift 0.15, IB KL 0.05, energy 0.3.
  const auto r = ra::report_builder()
                     .with_ot_distance(0.15)
                     .with_topology_coherence(0.82)
                     .with_ib_kl(0.05)
                     .with_diffusion_energy(0.3)
                     .with_attention_entropy(2.1, 64)
                     .build();
  ASSERT_EQ(r.metrics.size(), 5u);
  for (const auto& m : r.metrics) EXPECT_EQ(m.status, ra::metric_status::healthy) << m.value;
  EXPECT_EQ(r.health_score, 1.0);
  EXPECT_EQ(r.advice.mechanism, ra::recommended_mechanism::standard);
  EXPECT_EQ(r.advice.temperature_factor, 1.0);
  EXPECT_NEAR(r.find(ra::metric_kind::attention_entropy)->value, 2.1 / std::log(64.0), 1e-15);

  // One warning and one critical out of four: (1 + 1 + ½ + 0)/4.
  const auto bad = ra::report_builder()
                       .with_ot_distance(3.0)            // warning (2, 4]
                       .with_topology_coherence(0.1)     // critical < 0.3
                       .with_diffusion_energy(0.2)       // healthy
                       .with_attention_entropy(2.0, 64)  // healthy
                       .build();
  EXPECT_EQ(bad.find(ra::metric_kind::ot_shift)->status, ra::metric_status::warning);
  EXPECT_EQ(bad.find(ra::metric_kind::topology_coherence)->status, ra::metric_status::critical);
  EXPECT_DOUBLE_EQ(bad.health_score, 2.5 / 4);
  // Informational metrics do not count.
  const auto info = ra::report_builder().with_h0_scale_spread(0.2).with_gromov_delta(0.3).build();
  EXPECT_EQ(info.health_score, 1.0);
  EXPECT_EQ(info.metrics[0].status, ra::metric_status::info);
  EXPECT_THROW((void)ra::report_builder().with_ib_kl(std::nan("")), ra::invalid_argument);
  EXPECT_THROW((void)ra::report_builder().with_attention_entropy(1.0, 0), ra::invalid_argument);
}

TEST(UnifiedReportBuilder, RecommendationRulesInOrder) {
  using ra::recommended_mechanism;
  const auto mech = [](const ra::report_builder& b) { return b.build().advice.mechanism; };
  // 1. hierarchy wins over everything.
  EXPECT_EQ(mech(ra::report_builder()
                     .with_h0_scale_spread(0.8)
                     .with_num_keys(5000)
                     .with_sequence_smoothness(0.01)),
            recommended_mechanism::geometric);
  // 2. long and smooth → local_global; short and smooth → not.
  EXPECT_EQ(mech(ra::report_builder()
                     .with_h0_scale_spread(0.2)
                     .with_num_keys(600)
                     .with_sequence_smoothness(0.05)),
            recommended_mechanism::local_global);
  EXPECT_EQ(mech(ra::report_builder().with_num_keys(100).with_sequence_smoothness(0.05)),
            recommended_mechanism::standard);
  // 3. long and concentrated → flash_sparse (entropy 1.0 nat over 1000 keys: r = 0.145).
  EXPECT_EQ(mech(ra::report_builder().with_attention_entropy(1.0, 1000)),
            recommended_mechanism::flash_sparse);
  // 4. rough logits over a coherent graph → diffusion; over an incoherent one → standard.
  EXPECT_EQ(mech(ra::report_builder().with_diffusion_energy(1.0).with_topology_coherence(0.9)),
            recommended_mechanism::diffusion);
  EXPECT_EQ(mech(ra::report_builder().with_diffusion_energy(1.0).with_topology_coherence(0.2)),
            recommended_mechanism::standard);
  // 5. very long and spread → linear.
  EXPECT_EQ(mech(ra::report_builder().with_attention_entropy(0.9 * std::log(20000.0), 20000)),
            recommended_mechanism::linear);
}

TEST(UnifiedReportBuilder, TemperatureFactorFollowsTheGaussianScoreRule) {
  // r = 0.99 over n = 256 with score spread σ = 0.2: σ* = √(2 ln n (1 − 0.8)), f = σ/σ*.
  const double n = 256, sigma = 0.2;
  const auto r =
      ra::report_builder().with_attention_entropy(0.99 * std::log(n), 256, sigma).build();
  EXPECT_NEAR(r.advice.temperature_factor, sigma / std::sqrt(2 * std::log(n) * 0.2), 1e-12);
  EXPECT_LT(r.advice.temperature_factor, 1.0);
  // Near one-hot with a large spread: f > 1 (soften), clamped to 20.
  const auto peaked = ra::report_builder().with_attention_entropy(0.01, 256, 8.0).build();
  EXPECT_NEAR(peaked.advice.temperature_factor, 8.0 / std::sqrt(2 * std::log(n) * 0.2), 1e-12);
  EXPECT_GT(peaked.advice.temperature_factor, 1.0);
  EXPECT_EQ(
      ra::report_builder().with_attention_entropy(0.01, 256, 1e6).build().advice.temperature_factor,
      20.0);
  // Inside the band: unchanged.
  EXPECT_EQ(ra::report_builder()
                .with_attention_entropy(0.5 * std::log(n), 256, 1.0)
                .build()
                .advice.temperature_factor,
            1.0);
}

// ------------------------------------------------------------------------------------------------
// analyze
// ------------------------------------------------------------------------------------------------

TYPED_TEST(UnifiedReportTest, OtDistanceOfATranslatedKeySetIsTheProjectedShift) {
  using T = TypeParam;
  // Q = K + t: every projection of Q is the sorted projection of K shifted by ⟨t, θ⟩, so
  // SW₂² = mean_l ⟨t, θ_l⟩² exactly (directions as the report draws them).
  const std::size_t n = 40, d = 6;
  const auto k = gaussian<T>(n, d, 5);
  mat<T> q = k;
  std::vector<double> t{0.5, -1.0, 0.25, 2.0, 0.0, -0.75};
  for (Eigen::Index i = 0; i < q.rows(); ++i)
    for (std::size_t c = 0; c < d; ++c) q(i, static_cast<Eigen::Index>(c)) += static_cast<T>(t[c]);
  ra::report_config cfg;
  const auto r = ra::analyze<T>(q, k, cfg);
  const auto dirs = ra::random_directions<T>(d, cfg.ot_projections, cfg.seed);
  double want = 0;
  for (Eigen::Index l = 0; l < dirs.rows(); ++l) {
    double p = 0;
    for (std::size_t c = 0; c < d; ++c)
      p += t[c] * static_cast<double>(dirs(l, static_cast<Eigen::Index>(c)));
    want += p * p / static_cast<double>(dirs.rows());
  }
  EXPECT_NEAR(r.ot_distance * r.ot_distance, want, 1e3 * tol<T>::rel * (1 + want));
  // Queries equal to the keys: no transport at all.
  const auto same = ra::analyze<T>(k, k, cfg);
  EXPECT_NEAR(same.ot_distance, 0.0, 1e-3);
  EXPECT_EQ(same.find(ra::metric_kind::ot_shift)->status, ra::metric_status::healthy);
  // Queries far outside the key cloud: critical shift.
  const auto far = ra::analyze<T>(gaussian<T>(4, d, 6, 1.0, 8.0), k, cfg);
  EXPECT_EQ(far.find(ra::metric_kind::ot_shift)->status, ra::metric_status::critical);
}

TYPED_TEST(UnifiedReportTest, DiffusionEnergyIsZeroForLogitsConstantAlongTheGraph) {
  using T = TypeParam;
  // Keys vary in coordinate 0 only; a query along coordinate 1 gives equal logits everywhere.
  mat<T> k = mat<T>::Zero(30, 3);
  for (Eigen::Index i = 0; i < 30; ++i)
    k(i, 0) = static_cast<T>(0.1 * static_cast<double>(i)), k(i, 2) = T(1);
  mat<T> q = mat<T>::Zero(1, 3);
  q(0, 1) = T(1);
  const auto r = ra::analyze<T>(q, k);
  EXPECT_NEAR(r.find(ra::metric_kind::diffusion_energy)->value, 0.0, 1e-6);
  // Any query: the Rayleigh quotient of L_rw lies in [0, 2].
  const auto g = ra::analyze<T>(gaussian<T>(3, 8, 2), gaussian<T>(50, 8, 3));
  const double e = g.find(ra::metric_kind::diffusion_energy)->value;
  EXPECT_GE(e, 0.0);
  EXPECT_LE(e, 2.0);
}

TYPED_TEST(UnifiedReportTest, IbKlIsTheGaussianKlOfTheLayersPosterior) {
  using T = TypeParam;
  const std::size_t d = 6, dz = 3;
  const ra::variational_bottleneck<T> ib(
      ra::vib_config{.input_dim = d, .latent_dim = dz, .seed = 4});
  const auto q = gaussian<T>(5, d, 8);
  const auto k = gaussian<T>(20, d, 9);
  const auto r = ra::analyze<T>(q, k, ra::report_config{}, &ib);
  // Oracle: μ = W_μ x + b_μ, Λ = clamp(W_σ x + b_σ), KL = ½ Σ (μ² + e^Λ − Λ − 1), mean over
  // queries and latent dimensions.
  const auto& p = ib.parameters();
  double kl = 0;
  for (Eigen::Index i = 0; i < q.rows(); ++i)
    for (std::size_t z = 0; z < dz; ++z) {
      double mu = static_cast<double>(p.b_mu(static_cast<Eigen::Index>(z)));
      double lv = static_cast<double>(p.b_logvar(static_cast<Eigen::Index>(z)));
      for (std::size_t c = 0; c < d; ++c) {
        mu += static_cast<double>(
                  p.w_mu(static_cast<Eigen::Index>(z), static_cast<Eigen::Index>(c))) *
              static_cast<double>(q(i, static_cast<Eigen::Index>(c)));
        lv += static_cast<double>(
                  p.w_logvar(static_cast<Eigen::Index>(z), static_cast<Eigen::Index>(c))) *
              static_cast<double>(q(i, static_cast<Eigen::Index>(c)));
      }
      lv = std::clamp(lv, -10.0, 10.0);
      kl += 0.5 * (mu * mu + std::exp(lv) - lv - 1);
    }
  kl /= static_cast<double>(q.rows() * dz);
  ASSERT_NE(r.find(ra::metric_kind::ib_kl), nullptr);
  EXPECT_NEAR(r.find(ra::metric_kind::ib_kl)->value, kl, 1e2 * tol<T>::rel * (1 + kl));
  EXPECT_EQ(ra::analyze<T>(q, k).find(ra::metric_kind::ib_kl), nullptr);
  const ra::variational_bottleneck<T> wrong(ra::vib_config{.input_dim = d + 1, .latent_dim = dz});
  EXPECT_THROW((void)ra::analyze<T>(q, k, ra::report_config{}, &wrong), ra::dimension_mismatch);
}

TYPED_TEST(UnifiedReportTest, GivenWeightsAreUsedForEntropyAndCoherence) {
  using T = TypeParam;
  // Two clusters; weights on cluster A only (coherent) vs alternating across both (incoherent).
  const std::size_t n = 40, d = 4;
  mat<T> k = gaussian<T>(n, d, 11, 0.1);
  for (std::size_t i = 0; i < n; ++i)
    k(static_cast<Eigen::Index>(i), 0) += static_cast<T>(i < n / 2 ? 5 : -5);
  const mat<T> q = gaussian<T>(1, d, 12);
  mat<T> on_a = mat<T>::Zero(1, static_cast<Eigen::Index>(n));
  mat<T> alternating = mat<T>::Zero(1, static_cast<Eigen::Index>(n));
  for (std::size_t i = 0; i < n; ++i) {
    if (i < n / 2) on_a(0, static_cast<Eigen::Index>(i)) = static_cast<T>(2.0 / n);
    if (i % 2 == 0) alternating(0, static_cast<Eigen::Index>(i)) = static_cast<T>(2.0 / n);
  }
  const auto coherent = ra::analyze<T>(q, k, on_a);
  const auto incoherent = ra::analyze<T>(q, k, alternating);
  // Both spread mass evenly over n/2 keys: entropy ln(n/2) exactly.
  EXPECT_NEAR(coherent.entropy_nats, std::log(n / 2.0), 1e-5);
  EXPECT_NEAR(incoherent.entropy_nats, std::log(n / 2.0), 1e-5);
  EXPECT_GT(coherent.find(ra::metric_kind::topology_coherence)->value, 0.9);
  EXPECT_LT(incoherent.find(ra::metric_kind::topology_coherence)->value, 0.6);
}

// The four synthetic cases of the issue.

TYPED_TEST(UnifiedReportTest, TreeLikeEmbeddingsRecommendGeometricAttention) {
  using T = TypeParam;
  for (std::uint64_t seed : {1, 2, 3})
    for (std::size_t d : {8, 16, 32}) {
      const auto keys = tree_embedding<T>(3, 5, d, seed);  // 364 nodes over 5 scales
      const auto queries = gaussian<T>(2, d, seed + 50, 0.5);
      const auto r = ra::analyze<T>(queries, keys);
      EXPECT_EQ(r.advice.mechanism, ra::recommended_mechanism::geometric)
          << "seed " << seed << " d " << d << " spread "
          << r.find(ra::metric_kind::h0_scale_spread)->value;
    }
}

TYPED_TEST(UnifiedReportTest, LongSmoothSequencesRecommendLocalGlobal) {
  using T = TypeParam;
  for (std::uint64_t seed : {1, 2})
    for (std::size_t d : {16, 32}) {
      const auto keys = smooth_sequence<T>(1024, d, seed);
      const mat<T> queries = keys.middleRows(500, 4);
      const auto r = ra::analyze<T>(queries, keys);
      EXPECT_EQ(r.advice.mechanism, ra::recommended_mechanism::local_global)
          << "seed " << seed << " d " << d;
    }
  // The same rows shuffled are not a smooth sequence any more.
  auto keys = smooth_sequence<T>(1024, 16, 1);
  std::vector<Eigen::Index> perm(1024);
  std::iota(perm.begin(), perm.end(), Eigen::Index{0});
  std::shuffle(perm.begin(), perm.end(), std::mt19937_64(3));
  mat<T> shuffled(keys.rows(), keys.cols());
  for (Eigen::Index i = 0; i < keys.rows(); ++i)
    shuffled.row(i) = keys.row(perm[static_cast<std::size_t>(i)]);
  EXPECT_NE(ra::analyze<T>(keys.middleRows(500, 4), shuffled).advice.mechanism,
            ra::recommended_mechanism::local_global);
}

TYPED_TEST(UnifiedReportTest, NearUniformAttentionAsksForALowerTemperature) {
  using T = TypeParam;
  for (std::uint64_t seed : {1, 2, 3}) {
    const auto keys = gaussian<T>(256, 32, seed);
    const auto queries = gaussian<T>(2, 32, seed + 10, 0.02);  // tiny queries: flat logits
    const auto r = ra::analyze<T>(queries, keys);
    EXPECT_NE(r.find(ra::metric_kind::attention_entropy)->status, ra::metric_status::healthy);
    EXPECT_LT(r.advice.temperature_factor, 1.0);
    // The factor brings the score spread to σ* = √(2 ln n · 0.2) (clamped at 1/20).
    const double target = std::sqrt(2 * std::log(256.0) * 0.2);
    EXPECT_NEAR(r.advice.temperature_factor, std::max(r.logit_std / target, 0.05), 1e-9);
  }
}

TYPED_TEST(UnifiedReportTest, WellBehavedGaussianDataIsStandardAndHealthy) {
  using T = TypeParam;
  for (std::uint64_t seed : {1, 2, 3, 4})
    for (std::size_t d : {16, 32, 64})
      for (std::size_t n : {128, 256}) {
        const auto keys = gaussian<T>(n, d, seed);
        const auto queries = gaussian<T>(4, d, seed + 100);
        const auto r = ra::analyze<T>(queries, keys);
        EXPECT_EQ(r.advice.mechanism, ra::recommended_mechanism::standard)
            << "seed " << seed << " d " << d << " n " << n;
        EXPECT_GE(r.health_score, 0.8) << "seed " << seed << " d " << d << " n " << n;
        EXPECT_EQ(r.advice.temperature_factor, 1.0);
      }
}

TYPED_TEST(UnifiedReportTest, ValidatesItsInputs) {
  using T = TypeParam;
  const auto k = gaussian<T>(10, 4, 1);
  EXPECT_THROW((void)ra::analyze<T>(gaussian<T>(2, 3, 2), k), ra::dimension_mismatch);
  auto bad = k;
  bad(3, 2) = std::numeric_limits<T>::infinity();
  EXPECT_THROW((void)ra::analyze<T>(gaussian<T>(2, 4, 2), bad), ra::non_finite_input);
  EXPECT_THROW((void)ra::analyze<T>(gaussian<T>(2, 4, 2), mat<T>(0, 4)), ra::invalid_argument);
  const mat<T> w = mat<T>::Constant(3, 10, T(0.1));  // 3 rows for 2 queries
  EXPECT_THROW((void)ra::analyze<T>(gaussian<T>(2, 4, 2), k, w), ra::dimension_mismatch);
  const mat<T> unnormalised = mat<T>::Constant(2, 10, T(0.2));
  EXPECT_THROW((void)ra::analyze<T>(gaussian<T>(2, 4, 2), k, unnormalised), ra::invalid_argument);
  ra::report_config cfg;
  cfg.ot_projections = 0;
  EXPECT_THROW((void)ra::analyze<T>(gaussian<T>(2, 4, 2), k, cfg), ra::invalid_config);
  cfg = {};
  cfg.policy.entropy_low = 0.9;
  EXPECT_THROW((void)ra::analyze<T>(gaussian<T>(2, 4, 2), k, cfg), ra::invalid_config);
  // One key: no graph metrics, still a report.
  const auto one = ra::analyze<T>(gaussian<T>(1, 4, 2), gaussian<T>(1, 4, 3));
  EXPECT_EQ(one.find(ra::metric_kind::topology_coherence), nullptr);
  EXPECT_EQ(one.num_keys, 1u);
}

TYPED_TEST(UnifiedReportTest, JsonCarriesEveryField) {
  using T = TypeParam;
  const ra::geometry_report r = ra::analyze<T>(gaussian<T>(2, 8, 1), gaussian<T>(40, 8, 2));
  const nlohmann::json j = nlohmann::json::parse(ra::to_json_string(r));
  EXPECT_EQ(j.at("num_keys").get<std::size_t>(), 40u);
  EXPECT_EQ(j.at("num_queries").get<std::size_t>(), 2u);
  EXPECT_DOUBLE_EQ(j.at("health_score").get<double>(), r.health_score);
  ASSERT_EQ(j.at("metrics").size(), r.metrics.size());
  for (std::size_t i = 0; i < r.metrics.size(); ++i) {
    EXPECT_EQ(j["metrics"][i]["name"].get<std::string>(), ra::metric_name(r.metrics[i].kind));
    EXPECT_DOUBLE_EQ(j["metrics"][i]["value"].get<double>(), r.metrics[i].value);
    EXPECT_EQ(j["metrics"][i]["status"].get<std::string>(), ra::status_name(r.metrics[i].status));
  }
  EXPECT_EQ(j["recommendation"]["mechanism"].get<std::string>(),
            ra::mechanism_name(r.advice.mechanism));
  EXPECT_EQ(j["recommendation"]["reasons"].size(), r.advice.reasons.size());
  // Values not measured serialise as null.
  const auto partial = nlohmann::json::parse(
      ra::to_json_string(ra::report_builder().with_topology_coherence(0.7).build(), -1));
  EXPECT_TRUE(partial["raw"]["ot_distance"].is_null());
}

}  // namespace
