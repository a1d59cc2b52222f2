// k-means (transport/kmeans.hpp) and centroid OT attention (transport/centroid_ot.hpp), against
// independent double-precision oracles written in this file (no library header in an oracle):
// - k-means: blob membership and blob means computed directly from how the data were generated;
//   inertia, cluster sizes and means recomputed from the returned assignment; nearest-centroid
//   check by brute force.
// - centroid OT: the single-query closed form w_m ∝ μ_m·exp(−C_m/(ε+ρ)); ρ = 0 → per-query
//   mass-weighted softmax; ρ = ∞ → a naive exp-domain balanced Sinkhorn with marginals (1/Lq, μ);
//   intermediate ρ → the optimality (KKT) conditions of the semi-unbalanced problem,
//   P_im = a_i μ_m exp((f_i + g_m − C_im)/ε) with g_m = −ρ·log(ν_m/μ_m), ν = Pᵀ1, i.e.
//   log(P_im/μ_m) + (C_im − g_m)/ε is constant in m for each row i.
//
// Tolerances: iterations run in double, so double results match the oracles to the stopping
// tolerance (1e-12 requested → 1e-9 checked); float results are limited by the float costs
// (‖q − c‖² of d = 8 values of O(1) rounded to ~1e-6 relative, divided by ετ ≈ 6 → ~1e-6 change
// in a log-weight) and the float rounding of weights/outputs: 2e-5 leaves ~10× headroom.
#include "ruvector/attention/transport/centroid_ot.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/parallel.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/transport/kmeans.hpp"
#include "support/helpers.hpp"
#include "support/oracle.hpp"

namespace ra = ruvector::attention;
namespace orc = ruvector_test::oracle;

namespace {

using ruvector_test::thrown_message;
using ruvector_test::to_eigen;
using ruvector_test::to_vec;

#define EXPECT_MESSAGE_HAS(msg, needle) \
  EXPECT_NE(std::string(msg).find(needle), std::string::npos) << "message: " << (msg)

template <class T>
constexpr double kTol = std::is_same_v<T, float> ? 2e-5 : 1e-9;

template <class T>
class KmeansTest : public ::testing::Test {};
using Scalars = ::testing::Types<float, double>;
TYPED_TEST_SUITE(KmeansTest, Scalars);

/// `blobs` Gaussian blobs of `per` points (sd 1) in d dims, centres 100 apart along distinct
/// axes; returns the points and the blob of each point.
std::pair<orc::dmat, std::vector<int>> make_blobs(int blobs, int per, std::size_t d,
                                                  std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> nd(0.0, 1.0);
  orc::dmat x(static_cast<std::size_t>(blobs * per), d);
  std::vector<int> label;
  // Interleave blobs so cluster order is not the input order.
  for (int p = 0; p < per; ++p)
    for (int b = 0; b < blobs; ++b) {
      const std::size_t i = label.size();
      for (std::size_t c = 0; c < d; ++c)
        x(i, c) = nd(gen) + (c == static_cast<std::size_t>(b) % d ? 100.0 * (1 + b / d) : 0.0);
      label.push_back(b);
    }
  return {x, label};
}

/// Σ_i ‖x_i − c_{a(i)}‖², sizes and means recomputed from an assignment.
template <class T>
void check_consistent(const orc::dmat& x, const ra::kmeans_result<T>& r, double tol) {
  const std::size_t n = x.rows, d = x.cols, M = static_cast<std::size_t>(r.centroids.rows());
  ASSERT_EQ(r.assignment.size(), n);
  ASSERT_EQ(r.sizes.size(), M);
  std::vector<std::size_t> sizes(M, 0);
  orc::dmat mean(M, d);
  for (std::size_t i = 0; i < n; ++i) {
    ASSERT_LT(r.assignment[i], M);
    ++sizes[r.assignment[i]];
    for (std::size_t c = 0; c < d; ++c) mean(r.assignment[i], c) += x(i, c);
  }
  double inertia = 0;
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t c = 0; c < d; ++c) {
      const double t = x(i, c) - static_cast<double>(r.centroids(r.assignment[i], c));
      inertia += t * t;
    }
  for (std::size_t m = 0; m < M; ++m) {
    EXPECT_EQ(r.sizes[m], sizes[m]) << "cluster " << m;
    EXPECT_GE(sizes[m], 1u) << "cluster " << m;
    for (std::size_t c = 0; c < d; ++c)
      EXPECT_NEAR(static_cast<double>(r.centroids(m, c)), mean(m, c) / double(sizes[m]),
                  tol * (1 + std::abs(mean(m, c) / double(sizes[m]))));
  }
  EXPECT_NEAR(r.inertia, inertia, tol * std::max(1.0, inertia));
}

// Well-separated blobs are recovered exactly (same partition as the generating labels) and the
// centroids are the blob means.
TYPED_TEST(KmeansTest, RecoversSeparatedBlobs) {
  using T = TypeParam;
  for (std::uint64_t seed : {1, 2, 3}) {
    const auto [x0, label] = make_blobs(5, 40, 6, seed);
    const auto x = orc::rounded<T>(x0);
    ra::kmeans_options opt;
    opt.clusters = 5;
    opt.seed = seed;
    const auto r = ra::kmeans<T>(to_eigen<T>(x), opt);
    EXPECT_TRUE(r.converged);
    std::map<int, std::uint32_t> blob_to_cluster;
    std::set<std::uint32_t> used;
    for (std::size_t i = 0; i < x.rows; ++i) {
      auto [it, inserted] = blob_to_cluster.emplace(label[i], r.assignment[i]);
      if (inserted) used.insert(r.assignment[i]);
      EXPECT_EQ(it->second, r.assignment[i]) << "point " << i;
    }
    EXPECT_EQ(used.size(), 5u);
    // float: means of 40 values of ~100 rounded to float: ~1e-5 absolute.
    check_consistent(x, r, std::is_same_v<T, float> ? 1e-5 : 1e-12);
  }
}

// Same seed → identical result, also with a different thread count; another seed may differ.
TYPED_TEST(KmeansTest, DeterministicUnderSeed) {
  using T = TypeParam;
  // Large enough (n·M·d ≈ 8e5 flops per step, 3 chunks) for the assignment step to run in parallel
  // chunks.
  const auto x = to_eigen<T>(orc::random_matrix(1500, 8, 9));
  ra::kmeans_options opt;
  opt.clusters = 64;
  opt.max_iterations = 20;
  opt.seed = 77;
  const auto a = ra::kmeans<T>(x, opt);
  ra::set_num_threads(1);
  const auto b = ra::kmeans<T>(x, opt);
  ra::set_num_threads(0);
  EXPECT_EQ(a.assignment, b.assignment);
  EXPECT_TRUE(a.centroids == b.centroids);
  EXPECT_EQ(a.inertia, b.inertia);
  EXPECT_EQ(a.iterations, b.iterations);
}

// Inertia never increases over the iterations; the result is self-consistent and, when
// converged by stability, every point sits at its nearest centroid.
TYPED_TEST(KmeansTest, InertiaNonIncreasingAndConsistent) {
  using T = TypeParam;
  for (std::uint64_t seed : {4, 5}) {
    const auto x = orc::rounded<T>(orc::random_matrix(800, 4, seed));
    ra::kmeans_options opt;
    opt.clusters = 10;
    opt.tolerance = 0;
    opt.max_iterations = 300;
    opt.seed = seed;
    const auto r = ra::kmeans<T>(to_eigen<T>(x), opt);
    ASSERT_GE(r.inertia_history.size(), 2u);
    // float: each inertia value is a double sum of float-rounded distances (relative ~1e-6).
    const double slack = std::is_same_v<T, float> ? 1e-5 : 1e-12;
    for (std::size_t k = 1; k < r.inertia_history.size(); ++k)
      EXPECT_LE(r.inertia_history[k], r.inertia_history[k - 1] * (1 + slack)) << "step " << k;
    check_consistent(x, r, std::is_same_v<T, float> ? 1e-5 : 1e-12);
    ASSERT_TRUE(r.converged);
    for (std::size_t i = 0; i < x.rows; ++i) {
      double best = std::numeric_limits<double>::infinity();
      for (Eigen::Index m = 0; m < r.centroids.rows(); ++m) {
        double s = 0;
        for (std::size_t c = 0; c < x.cols; ++c) {
          const double t = x(i, c) - static_cast<double>(r.centroids(m, c));
          s += t * t;
        }
        best = std::min(best, s);
      }
      double own = 0;
      for (std::size_t c = 0; c < x.cols; ++c) {
        const double t = x(i, c) - static_cast<double>(r.centroids(r.assignment[i], c));
        own += t * t;
      }
      EXPECT_LE(own, best * (1 + slack) + slack) << "point " << i;
    }
  }
}

// Duplicates leave k-means++ with coinciding seeds, so clusters go empty: they are re-seeded and
// every cluster ends non-empty with inertia 0. M = n gives singletons.
TEST(Kmeans, EmptyClustersAndDuplicates) {
  orc::dmat x(11, 2);
  for (std::size_t i = 0; i < 10; ++i) x(i, 0) = x(i, 1) = 3.0;  // ten copies of (3, 3)
  x(10, 0) = -1.0;
  for (std::uint64_t seed = 0; seed < 8; ++seed) {
    ra::kmeans_options opt;
    opt.clusters = 4;
    opt.seed = seed;
    const auto r = ra::kmeans<double>(to_eigen<double>(x), opt);
    check_consistent(x, r, 1e-12);
    EXPECT_EQ(r.inertia, 0.0);
    EXPECT_GE(r.reseeded, 1u);  // 2 distinct points, 4 clusters
  }
  // All points identical.
  const orc::dmat same(6, 3, 1.5);
  ra::kmeans_options opt;
  opt.clusters = 3;
  const auto r = ra::kmeans<double>(to_eigen<double>(same), opt);
  check_consistent(same, r, 1e-12);
  EXPECT_EQ(r.inertia, 0.0);
  // M = n: one point per cluster.
  const auto y = orc::random_matrix(7, 3, 1);
  opt.clusters = 7;
  const auto s = ra::kmeans<double>(to_eigen<double>(y), opt);
  check_consistent(y, s, 1e-12);
  EXPECT_EQ(s.inertia, 0.0);
}

TEST(Kmeans, ValidatesInputs) {
  const auto x = to_eigen<double>(orc::random_matrix(5, 2, 1));
  ra::kmeans_options opt;
  opt.clusters = 6;
  EXPECT_MESSAGE_HAS(
      thrown_message<ra::invalid_argument>([&] { (void)ra::kmeans<double>(x, opt); }),
      "clusters is 6");
  opt.clusters = 0;
  EXPECT_THROW((void)ra::kmeans<double>(x, opt), ra::invalid_config);
  opt.clusters = 2;
  opt.max_iterations = 0;
  EXPECT_THROW((void)ra::kmeans<double>(x, opt), ra::invalid_config);
  opt.max_iterations = 10;
  auto bad = x;
  bad(3, 1) = std::numeric_limits<double>::quiet_NaN();
  EXPECT_MESSAGE_HAS(
      thrown_message<ra::non_finite_input>([&] { (void)ra::kmeans<double>(bad, opt); }),
      "points[3][1]");
  EXPECT_THROW((void)ra::kmeans<double>(x.topRows(0), opt), ra::invalid_argument);
}

// ================================================================================================
// centroid OT attention
// ================================================================================================

/// An explicit clustering: M centroids, a fixed assignment (cluster `empty` left without keys if
/// ≥ 0), n keys' values. Oracle quantities: masses and value means.
struct ot_case {
  orc::dmat centroids, values, queries;
  std::vector<std::uint32_t> assignment;
  std::vector<double> mu;
  orc::dmat vmean;
};

ot_case make_case(std::size_t M, std::size_t n, std::size_t d, std::size_t dv, std::size_t lq,
                  std::uint64_t seed, int empty = -1) {
  ot_case c;
  c.centroids = orc::random_matrix(M, d, seed);
  c.values = orc::random_matrix(n, dv, seed + 1);
  c.queries = orc::random_matrix(lq, d, seed + 2);
  std::mt19937_64 gen(seed + 3);
  c.mu.assign(M, 0.0);
  c.vmean = orc::dmat(M, dv);
  for (std::size_t j = 0; j < n; ++j) {
    std::uint32_t m;
    do {
      m = static_cast<std::uint32_t>(gen() % M);
    } while (static_cast<int>(m) == empty);
    c.assignment.push_back(m);
    c.mu[m] += 1.0;
    for (std::size_t k = 0; k < dv; ++k) c.vmean(m, k) += c.values(j, k);
  }
  for (std::size_t m = 0; m < M; ++m) {
    for (std::size_t k = 0; k < dv; ++k)
      if (c.mu[m] > 0) c.vmean(m, k) /= c.mu[m];
    c.mu[m] /= static_cast<double>(n);
  }
  return c;
}

/// C_im / ε with C = ‖q − c‖²/τ.
orc::dmat scaled_cost(const orc::dmat& q, const orc::dmat& c, double tau, double eps) {
  orc::dmat k(q.rows, c.rows);
  for (std::size_t i = 0; i < q.rows; ++i)
    for (std::size_t m = 0; m < c.rows; ++m) {
      double s = 0;
      for (std::size_t t = 0; t < q.cols; ++t) s += (q(i, t) - c(m, t)) * (q(i, t) - c(m, t));
      k(i, m) = s / tau / eps;
    }
  return k;
}

/// Row-wise w_im ∝ μ_m exp(−ce_im·factor) (empty clusters 0).
orc::dmat mass_softmax(const orc::dmat& ce, const std::vector<double>& mu, double factor) {
  orc::dmat w(ce.rows, ce.cols);
  for (std::size_t i = 0; i < ce.rows; ++i) {
    double mx = -std::numeric_limits<double>::infinity();
    for (std::size_t m = 0; m < ce.cols; ++m)
      if (mu[m] > 0) mx = std::max(mx, std::log(mu[m]) - factor * ce(i, m));
    double s = 0;
    for (std::size_t m = 0; m < ce.cols; ++m) {
      w(i, m) = mu[m] > 0 ? std::exp(std::log(mu[m]) - factor * ce(i, m) - mx) : 0.0;
      s += w(i, m);
    }
    for (std::size_t m = 0; m < ce.cols; ++m) w(i, m) /= s;
  }
  return w;
}

/// Balanced Sinkhorn (exp domain) with marginals (1/Lq, μ) on K = exp(−ce); returns Lq·P.
orc::dmat balanced_weights(const orc::dmat& ce, const std::vector<double>& mu, int iters) {
  const std::size_t lq = ce.rows, M = ce.cols;
  std::vector<double> u(lq, 1.0), v(M, 1.0);
  orc::dmat k(lq, M);
  for (std::size_t t = 0; t < k.a.size(); ++t) k.a[t] = std::exp(-ce.a[t]);
  for (int it = 0; it < iters; ++it) {
    for (std::size_t i = 0; i < lq; ++i) {
      double s = 0;
      for (std::size_t m = 0; m < M; ++m) s += k(i, m) * v[m];
      u[i] = (1.0 / double(lq)) / s;
    }
    for (std::size_t m = 0; m < M; ++m) {
      double s = 0;
      for (std::size_t i = 0; i < lq; ++i) s += k(i, m) * u[i];
      v[m] = mu[m] / s;
    }
  }
  orc::dmat w(lq, M);
  for (std::size_t i = 0; i < lq; ++i)
    for (std::size_t m = 0; m < M; ++m) w(i, m) = double(lq) * u[i] * std::exp(-ce(i, m)) * v[m];
  return w;
}

orc::dmat matmul(const orc::dmat& a, const orc::dmat& b) {
  orc::dmat c(a.rows, b.cols);
  for (std::size_t i = 0; i < a.rows; ++i)
    for (std::size_t k = 0; k < a.cols; ++k)
      for (std::size_t j = 0; j < b.cols; ++j) c(i, j) += a(i, k) * b(k, j);
  return c;
}

template <class T>
class CentroidOtTest : public ::testing::Test {};
TYPED_TEST_SUITE(CentroidOtTest, Scalars);

template <class T>
ra::centroid_key_set<T> key_set_of(const ot_case& c) {
  return ra::centroid_key_set<T>(to_eigen<T>(c.centroids),
                                 std::span<const std::uint32_t>(c.assignment),
                                 to_eigen<T>(c.values));
}

constexpr double kInf = std::numeric_limits<double>::infinity();

// The key set's masses, members and value means match the oracle's.
TYPED_TEST(CentroidOtTest, KeySetSummaries) {
  using T = TypeParam;
  const auto ref = make_case(5, 60, 4, 3, 1, 10);
  const auto ks = key_set_of<T>(ref);
  ASSERT_EQ(ks.num_clusters(), 5u);
  ASSERT_EQ(ks.num_keys(), 60u);
  std::size_t total = 0;
  for (std::size_t m = 0; m < 5; ++m) {
    EXPECT_NEAR(static_cast<double>(ks.masses()[m]), ref.mu[m], 1e-7);
    total += ks.cluster_size(m);
    for (std::uint32_t j : ks.members(m)) EXPECT_EQ(ref.assignment[j], m);
    for (std::size_t k = 0; k < 3; ++k)
      EXPECT_NEAR(static_cast<double>(ks.value_means()(m, k)), ref.vmean(m, k), kTol<T>);
  }
  EXPECT_EQ(total, 60u);
}

// One query: compute() (closed form) and compute_batch() on a one-row batch (iterations) both
// match w_m ∝ μ_m exp(−C_m/(ε+ρ)), for ρ ∈ {0, 0.3, 2, ∞}, and out = Σ w_m v̄_m.
TYPED_TEST(CentroidOtTest, SingleQueryClosedForm) {
  using T = TypeParam;
  const auto c = make_case(6, 50, 8, 4, 1, 20);
  const auto ks = key_set_of<T>(c);
  const double eps = 0.5, tau = 3.0;
  const auto q = orc::rounded<T>(c.queries);
  for (double rho : {0.0, 0.3, 2.0, kInf}) {
    SCOPED_TRACE(::testing::Message() << "rho=" << rho);
    ra::centroid_ot_config<T> cfg;
    cfg.epsilon = T(eps);
    cfg.rho = static_cast<T>(rho);
    cfg.temperature = T(tau);
    cfg.tolerance = T(1e-13);
    cfg.max_iterations = 5000;
    const ra::centroid_ot_attention<T> att(cfg);
    const auto ce = scaled_cost(q, orc::rounded<T>(c.centroids), tau, eps);
    const auto w = mass_softmax(ce, c.mu, std::isinf(rho) ? 0.0 : eps / (eps + rho));
    const auto out = matmul(w, c.vmean);
    const auto qv = to_vec<T>(q.a);
    const auto single = att.compute_with_weights(std::span<const T>(qv), ks);
    EXPECT_LE(orc::max_abs_error(orc::to_dmat(single.centroid_weights).a, w.a), kTol<T>);
    EXPECT_LE(orc::max_abs_error(att.compute(std::span<const T>(qv), ks), out.a), kTol<T>);
    const auto batch = att.compute_batch(to_eigen<T>(q), ks);
    EXPECT_TRUE(batch.converged);
    EXPECT_LE(orc::max_abs_error(orc::to_dmat(batch.centroid_weights).a, w.a), kTol<T>);
    EXPECT_LE(orc::max_abs_error(orc::to_dmat(batch.output).a, out.a), kTol<T>);
  }
}

// ρ = 0: each query is a mass-weighted softmax, independent of the rest of the batch.
TYPED_TEST(CentroidOtTest, RhoZeroIsMassWeightedSoftmax) {
  using T = TypeParam;
  const auto c = make_case(7, 80, 8, 3, 9, 30);
  const auto ks = key_set_of<T>(c);
  ra::centroid_ot_config<T> cfg;
  cfg.epsilon = T(0.7);
  cfg.rho = T(0);
  const ra::centroid_ot_attention<T> att(cfg);
  const auto q = orc::rounded<T>(c.queries);
  const double tau = 2.0 * std::sqrt(8.0);  // documented default
  const auto w = mass_softmax(
      scaled_cost(q, orc::rounded<T>(c.centroids), tau, static_cast<double>(T(0.7))), c.mu, 1.0);
  const auto r = att.compute_batch(to_eigen<T>(q), ks);
  EXPECT_LE(orc::max_abs_error(orc::to_dmat(r.centroid_weights).a, w.a), kTol<T>);
  EXPECT_LE(orc::max_abs_error(orc::to_dmat(r.output).a, matmul(w, c.vmean).a), kTol<T>);
  // A tiny positive ρ is continuous with ρ = 0 (weights move by O(ρ/ε)).
  cfg.rho = T(1e-7);
  const auto r2 = ra::centroid_ot_attention<T>(cfg).compute_batch(to_eigen<T>(q), ks);
  EXPECT_LE(orc::max_abs_error(orc::to_dmat(r2.centroid_weights).a, w.a), 1e-5);
}

// ρ = ∞: balanced OT with marginals (1/Lq, μ) — naive Sinkhorn oracle; cluster loads equal μ.
TYPED_TEST(CentroidOtTest, RhoInfinityIsBalancedSinkhorn) {
  using T = TypeParam;
  for (std::size_t lq : {3, 16}) {
    const auto c = make_case(5, 40, 8, 3, lq, 40 + lq);
    const auto ks = key_set_of<T>(c);
    ra::centroid_ot_config<T> cfg;
    cfg.epsilon = T(0.5);
    cfg.rho = std::numeric_limits<T>::infinity();
    cfg.temperature = T(4);
    cfg.tolerance = T(1e-12);
    cfg.max_iterations = 5000;
    const auto q = orc::rounded<T>(c.queries);
    const auto ce = scaled_cost(q, orc::rounded<T>(c.centroids), 4.0, 0.5);
    const auto w = balanced_weights(ce, c.mu, 5000);
    const auto r = ra::centroid_ot_attention<T>(cfg).compute_batch(to_eigen<T>(q), ks);
    EXPECT_TRUE(r.converged) << "lq=" << lq << " err=" << r.marginal_error;
    EXPECT_LE(orc::max_abs_error(orc::to_dmat(r.centroid_weights).a, w.a), kTol<T>);
    for (std::size_t m = 0; m < 5; ++m)
      EXPECT_NEAR(static_cast<double>(r.cluster_load[m]), c.mu[m], kTol<T>);
    // A large finite ρ approaches the balanced plan.
    cfg.rho = T(1e4);
    const auto r2 = ra::centroid_ot_attention<T>(cfg).compute_batch(to_eigen<T>(q), ks);
    EXPECT_LE(orc::max_abs_error(orc::to_dmat(r2.centroid_weights).a, w.a), 1e-2);
  }
}

// Intermediate ρ: the returned plan satisfies the semi-unbalanced optimality conditions.
TEST(CentroidOt, IntermediateRhoSatisfiesKkt) {
  const auto c = make_case(6, 90, 8, 2, 10, 50);
  const auto ks = key_set_of<double>(c);
  for (double rho : {0.1, 1.0, 10.0}) {
    ra::centroid_ot_config<double> cfg;
    cfg.epsilon = 0.4;
    cfg.rho = rho;
    cfg.tolerance = 1e-14;
    cfg.max_iterations = 10000;
    const auto r =
        ra::centroid_ot_attention<double>(cfg).compute_batch(to_eigen<double>(c.queries), ks);
    ASSERT_TRUE(r.converged);
    const auto ce = scaled_cost(c.queries, c.centroids, 2.0 * std::sqrt(8.0), 0.4);
    std::vector<double> nu(6, 0.0);
    for (std::size_t i = 0; i < 10; ++i)
      for (std::size_t m = 0; m < 6; ++m) nu[m] += r.centroid_weights(i, m) / 10.0;
    for (std::size_t i = 0; i < 10; ++i) {
      double first = 0;
      for (std::size_t m = 0; m < 6; ++m) {
        const double g_over_eps = -rho * std::log(nu[m] / c.mu[m]) / 0.4;
        const double k = std::log(r.centroid_weights(i, m) / c.mu[m]) + ce(i, m) - g_over_eps;
        if (m == 0) first = k;
        EXPECT_NEAR(k, first, 1e-8) << "rho=" << rho << " i=" << i << " m=" << m;
      }
    }
  }
}

// Weights: rows sum to 1; per-key weights are w_im/|m|, sum to 1, and Σ_j kw_ij v_j = output.
TYPED_TEST(CentroidOtTest, KeyWeightsAndOutput) {
  using T = TypeParam;
  const auto c = make_case(4, 30, 8, 3, 5, 60);
  const auto ks = key_set_of<T>(c);
  ra::centroid_ot_config<T> cfg;
  const auto q = orc::rounded<T>(c.queries);
  const auto r = ra::centroid_ot_attention<T>(cfg).compute_batch(to_eigen<T>(q), ks, true);
  ASSERT_EQ(r.key_weights.rows(), 5);
  ASSERT_EQ(r.key_weights.cols(), 30);
  const auto v = orc::rounded<T>(c.values);
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_NEAR(r.centroid_weights.row(i).template cast<double>().sum(), 1.0, kTol<T>);
    EXPECT_NEAR(r.key_weights.row(i).template cast<double>().sum(), 1.0, kTol<T>);
    std::vector<double> out(3, 0.0);
    for (std::size_t j = 0; j < 30; ++j) {
      const std::uint32_t m = c.assignment[j];
      EXPECT_NEAR(static_cast<double>(r.key_weights(i, j)),
                  static_cast<double>(r.centroid_weights(i, m)) / (c.mu[m] * 30.0), kTol<T>);
      for (std::size_t k = 0; k < 3; ++k)
        out[k] += static_cast<double>(r.key_weights(i, j)) * v(j, k);
    }
    for (std::size_t k = 0; k < 3; ++k)
      EXPECT_NEAR(static_cast<double>(r.output(i, k)), out[k], kTol<T>);
  }
}

// Empty clusters (explicit clustering) get weight exactly 0, never NaN, for every ρ.
TYPED_TEST(CentroidOtTest, EmptyClusterGetsZeroWeight) {
  using T = TypeParam;
  const auto c = make_case(4, 20, 8, 2, 6, 70, /*empty=*/2);
  const auto ks = key_set_of<T>(c);
  EXPECT_EQ(ks.cluster_size(2), 0u);
  EXPECT_EQ(ks.masses()[2], T(0));
  for (double rho : {0.0, 1.0, kInf}) {
    ra::centroid_ot_config<T> cfg;
    cfg.rho = static_cast<T>(rho);
    const ra::centroid_ot_attention<T> att(cfg);
    const auto r = att.compute_batch(to_eigen<T>(c.queries), ks, true);
    for (std::size_t i = 0; i < 6; ++i) {
      EXPECT_EQ(r.centroid_weights(i, 2), T(0));
      for (Eigen::Index m = 0; m < 4; ++m) EXPECT_TRUE(std::isfinite(r.centroid_weights(i, m)));
      for (Eigen::Index k = 0; k < 2; ++k) EXPECT_TRUE(std::isfinite(r.output(i, k)));
      EXPECT_NEAR(r.centroid_weights.row(i).template cast<double>().sum(), 1.0, kTol<T>);
    }
    const auto qv = to_vec<T>(c.queries.row(0));
    const auto s = att.compute_with_weights(std::span<const T>(qv), ks);
    EXPECT_EQ(s.centroid_weights(0, 2), T(0));
    for (T x : att.compute(std::span<const T>(qv), ks)) EXPECT_TRUE(std::isfinite(x));
  }
}

// End to end with k-means: the key set built from keys clusters them and attention runs.
TEST(CentroidOt, KeySetFromKmeans) {
  const auto [x, label] = make_blobs(3, 20, 4, 5);
  const auto v = orc::random_matrix(60, 2, 6);
  ra::kmeans_options opt;
  opt.clusters = 3;
  const ra::centroid_key_set<double> ks(to_eigen<double>(x), to_eigen<double>(v), opt);
  for (std::size_t m = 0; m < 3; ++m) EXPECT_NEAR(ks.masses()[m], 1.0 / 3.0, 1e-15);
  EXPECT_GE(ks.clustering_iterations(), 1u);
  // A query at blob b's centre puts almost all weight on that cluster (ρ = 0: plain softmax).
  ra::centroid_ot_config<double> cfg;
  cfg.rho = 0;
  const ra::centroid_ot_attention<double> att(cfg);
  const std::vector<double> q = {100.0, 0.0, 0.0, 0.0};  // blob 0
  const auto r = att.compute_with_weights(std::span<const double>(q), ks);
  const std::uint32_t m0 = ks.assignment()[0];  // point 0 is in blob 0
  EXPECT_GT(r.centroid_weights(0, m0), 0.999);
}

TEST(CentroidOt, ValidatesInputs) {
  const auto c = make_case(3, 10, 4, 2, 2, 80);
  const auto ks = key_set_of<double>(c);
  const ra::centroid_ot_attention<double> att;
  const auto q = to_eigen<double>(c.queries);
  EXPECT_MESSAGE_HAS(
      thrown_message<ra::dimension_mismatch>([&] { (void)att.compute_batch(q.leftCols(3), ks); }),
      "queries.cols()");
  const std::vector<double> q3 = {1, 2, 3};
  EXPECT_THROW((void)att.compute(std::span<const double>(q3), ks), ra::dimension_mismatch);
  auto bad = q;
  bad(1, 2) = std::numeric_limits<double>::quiet_NaN();
  EXPECT_MESSAGE_HAS(
      thrown_message<ra::non_finite_input>([&] { (void)att.compute_batch(bad, ks); }),
      "queries[1][2]");
  for (double eps : {0.0, -1.0, kInf}) {
    ra::centroid_ot_config<double> cfg;
    cfg.epsilon = eps;
    EXPECT_THROW(ra::centroid_ot_attention<double>{cfg}, ra::invalid_config) << eps;
  }
  ra::centroid_ot_config<double> cfg;
  cfg.rho = -0.5;
  EXPECT_THROW(ra::centroid_ot_attention<double>{cfg}, ra::invalid_config);
  cfg.rho = std::nan("");
  EXPECT_THROW(ra::centroid_ot_attention<double>{cfg}, ra::invalid_config);
  cfg = {};
  cfg.temperature = 0.0;
  EXPECT_THROW(ra::centroid_ot_attention<double>{cfg}, ra::invalid_config);
  std::vector<std::uint32_t> a = c.assignment;
  a[4] = 3;
  EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_argument>([&] {
                       ra::centroid_key_set<double>(to_eigen<double>(c.centroids),
                                                    std::span<const std::uint32_t>(a),
                                                    to_eigen<double>(c.values));
                     }),
                     "assignment[4]");
  EXPECT_THROW(ra::centroid_key_set<double>(to_eigen<double>(c.centroids),
                                            std::span<const std::uint32_t>(a).first(9),
                                            to_eigen<double>(c.values)),
               ra::dimension_mismatch);
  ra::kmeans_options opt;
  opt.clusters = 2;
  EXPECT_THROW(ra::centroid_key_set<double>(to_eigen<double>(c.values),
                                            to_eigen<double>(c.values).topRows(5), opt),
               ra::dimension_mismatch);
}

}  // namespace
