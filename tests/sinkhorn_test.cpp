// Entropic OT by Sinkhorn (transport/sinkhorn.hpp) and Sinkhorn attention / Sinkformers
// (transport/sinkhorn_attention.hpp), for float and double, against independent double-precision
// oracles written in this file (no library header is used by an oracle):
// - a naive (non-log-domain) Sinkhorn: u ← a / (K v), v ← b / (Kᵀ u), K = exp(−C/ε), run to a fixed
//   point for moderate ε;
// - exact OT by brute force over all n! permutations (Birkhoff: with uniform marginals an optimal
//   plan is a permutation matrix / n) for n ≤ 6;
// - the closed-form 2×2 entropic plan (one free entry x solving a quadratic, below);
// - separable costs C_ij = u_i + v_j, whose entropic plan is exactly a bᵀ for every ε;
// - softmax attention (support/oracle.hpp) for 0 Sinkformer iterations and a naive alternating
//   row/column normalisation of exp(S) for k iterations.
//
// Tolerances (each with its reason next to it): the library runs Sinkhorn in double whatever T is,
// so double results are compared to ~1e-9 (the stopping tolerance we request) and float ones to
// the float rounding of the returned plan (entries ≤ 1 rounded to 2^-24 relative; sums of ≤ 64
// entries ⇒ ≤ 64·6e-8 ≈ 4e-6).
#include "ruvector/attention/transport/sinkhorn.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/transport/sinkhorn_attention.hpp"
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

// Rounding of a returned plan entry / sum in T (see the file comment).
template <class T>
constexpr double kPlanTol = (std::is_same_v<T, float>) ? 4e-6 : 1e-9;

// ---- oracles (double, no library code) ----------------------------------------------------------

/// Uniform draws in [lo, hi) from mt19937_64(seed).
orc::dmat uniform_matrix(std::size_t r, std::size_t c, std::uint64_t seed, double lo = 0.0,
                         double hi = 1.0) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  orc::dmat m(r, c);
  for (auto& x : m.a) x = dist(gen);
  return m;
}

/// A random probability vector with entries bounded away from 0.
std::vector<double> random_simplex(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> dist(0.2, 1.0);
  std::vector<double> v(n);
  double s = 0;
  for (auto& x : v) s += (x = dist(gen));
  for (auto& x : v) x /= s;
  return v;
}

/// Naive Sinkhorn–Knopp scaling in the exp domain (Cuturi 2013, Algorithm 1).
orc::dmat naive_sinkhorn(const orc::dmat& c, const std::vector<double>& a,
                         const std::vector<double>& b, double eps, int iters) {
  const std::size_t n = c.rows, m = c.cols;
  orc::dmat k(n, m);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < m; ++j) k(i, j) = std::exp(-c(i, j) / eps);
  std::vector<double> u(n, 1.0), v(m, 1.0);
  for (int it = 0; it < iters; ++it) {
    for (std::size_t i = 0; i < n; ++i) {
      double s = 0;
      for (std::size_t j = 0; j < m; ++j) s += k(i, j) * v[j];
      u[i] = a[i] / s;
    }
    for (std::size_t j = 0; j < m; ++j) {
      double s = 0;
      for (std::size_t i = 0; i < n; ++i) s += k(i, j) * u[i];
      v[j] = b[j] / s;
    }
  }
  orc::dmat p(n, m);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < m; ++j) p(i, j) = u[i] * k(i, j) * v[j];
  return p;
}

/// min over permutations σ of (1/n) Σ_i C_{iσ(i)} — exact OT with uniform marginals.
double brute_force_ot(const orc::dmat& c) {
  std::vector<std::size_t> perm(c.rows);
  std::iota(perm.begin(), perm.end(), 0);
  double best = std::numeric_limits<double>::infinity();
  do {
    double s = 0;
    for (std::size_t i = 0; i < c.rows; ++i) s += c(i, perm[i]);
    best = std::min(best, s / static_cast<double>(c.rows));
  } while (std::next_permutation(perm.begin(), perm.end()));
  return best;
}

double frobenius_dot(const orc::dmat& p, const orc::dmat& c) {
  double s = 0;
  for (std::size_t k = 0; k < p.a.size(); ++k) s += p.a[k] * c.a[k];
  return s;
}

/// KL(P ‖ a bᵀ) = Σ P log(P/(a_i b_j)) − P + a_i b_j.
double kl_to_product(const orc::dmat& p, const std::vector<double>& a,
                     const std::vector<double>& b) {
  double s = 0;
  for (std::size_t i = 0; i < p.rows; ++i)
    for (std::size_t j = 0; j < p.cols; ++j) {
      const double q = a[i] * b[j];
      if (p(i, j) > 0) s += p(i, j) * std::log(p(i, j) / q);
      s += q - p(i, j);
    }
  return s;
}

// ================================================================================================
// sinkhorn
// ================================================================================================

template <class T>
class SinkhornTest : public ::testing::Test {};
using Scalars = ::testing::Types<float, double>;
TYPED_TEST_SUITE(SinkhornTest, Scalars);

// Marginals of the returned plan match a and b (double: 1e-6 as required, we ask for 1e-10).
TYPED_TEST(SinkhornTest, MarginalsMatch) {
  using T = TypeParam;
  const std::size_t shapes[][2] = {{1, 1}, {1, 7}, {7, 1}, {5, 5}, {17, 9}, {40, 64}};
  std::uint64_t seed = 11;
  for (const auto& [n, m] : shapes) {
    SCOPED_TRACE(::testing::Message() << "n=" << n << " m=" << m);
    const auto c = orc::rounded<T>(uniform_matrix(n, m, ++seed, 0.0, 2.0));
    const auto a = to_vec<T>(random_simplex(n, ++seed));
    const auto b = to_vec<T>(random_simplex(m, ++seed));
    ra::sinkhorn_options<T> opt;
    opt.epsilon = T(0.1);
    opt.tolerance = T(1e-10);
    opt.max_iterations = 100000;
    const auto r = ra::sinkhorn<T>(to_eigen<T>(c), a, b, opt);
    ASSERT_TRUE(r.converged);
    // a, b as the library received them (rounded to T; b rescaled to a's mass, ≤ 1e-7 relative).
    double sa = 0, sb = 0;
    for (T x : a) sa += static_cast<double>(x);
    for (T x : b) sb += static_cast<double>(x);
    for (std::size_t i = 0; i < n; ++i) {
      double s = 0;
      for (std::size_t j = 0; j < m; ++j) {
        EXPECT_GE(r.plan(i, j), T(0));
        s += static_cast<double>(r.plan(i, j));
      }
      EXPECT_NEAR(s, static_cast<double>(a[i]), (std::is_same_v<T, double>) ? 1e-6 : kPlanTol<T>);
    }
    for (std::size_t j = 0; j < m; ++j) {
      double s = 0;
      for (std::size_t i = 0; i < n; ++i) s += static_cast<double>(r.plan(i, j));
      EXPECT_NEAR(s, static_cast<double>(b[j]) * sa / sb,
                  (std::is_same_v<T, double>) ? 1e-6 : kPlanTol<T>);
    }
    EXPECT_LE(static_cast<double>(r.marginal_error), (std::is_same_v<T, double>) ? 1e-9 : 1e-5);
    EXPECT_EQ(r.f.size(), n);
    EXPECT_EQ(r.g.size(), m);
  }
}

// Plan, cost, objective and potentials against the naive exp-domain Sinkhorn for moderate ε
// (C ∈ [0, 1], ε ∈ {0.05, 0.2, 1}: exp(−C/ε) ≥ e^-20, no underflow in the oracle).
TYPED_TEST(SinkhornTest, MatchesNaiveSinkhorn) {
  using T = TypeParam;
  std::uint64_t seed = 100;
  for (double eps : {0.05, 0.2, 1.0}) {
    for (auto [n, m] : {std::pair<std::size_t, std::size_t>{6, 4}, {12, 12}, {3, 20}}) {
      SCOPED_TRACE(::testing::Message() << "eps=" << eps << " n=" << n << " m=" << m);
      const auto c = orc::rounded<T>(uniform_matrix(n, m, ++seed));
      const auto a64 = orc::to_dvec(to_vec<T>(random_simplex(n, ++seed)));
      auto b64 = orc::to_dvec(to_vec<T>(random_simplex(m, ++seed)));
      const double sa = std::accumulate(a64.begin(), a64.end(), 0.0);
      const double sb = std::accumulate(b64.begin(), b64.end(), 0.0);
      for (auto& x : b64) x *= sa / sb;  // the library's documented rescaling of b
      const auto ref = naive_sinkhorn(c, a64, b64, eps, 20000);

      ra::sinkhorn_options<T> opt;
      opt.epsilon = static_cast<T>(eps);
      opt.tolerance = T(1e-13);
      opt.max_iterations = 20000;
      const auto r = ra::sinkhorn<T>(to_eigen<T>(c), to_vec<T>(a64), to_vec<T>(b64), opt);
      const double e_used = static_cast<double>(static_cast<T>(eps));
      EXPECT_LE(orc::max_abs_error(orc::to_dmat(r.plan).a, ref.a), kPlanTol<T>);
      const double ref_cost = frobenius_dot(ref, c);
      const double ref_obj = ref_cost + e_used * kl_to_product(ref, a64, b64);
      // float: the cost/objective are rounded once to T (relative 6e-8 of values ≤ ~5).
      const double tol = (std::is_same_v<T, float>) ? 1e-6 : 1e-9;
      EXPECT_NEAR(static_cast<double>(r.cost), ref_cost, tol);
      EXPECT_NEAR(static_cast<double>(r.objective), ref_obj, tol);
      // Strong duality at the optimum: OT_ε = ⟨a, f⟩ + ⟨b, g⟩; and P_ij = a_i b_j e^{(f+g−C)/ε}.
      if constexpr (std::is_same_v<T, double>) {
        double dual = 0;
        for (std::size_t i = 0; i < n; ++i) dual += a64[i] * r.f[i];
        for (std::size_t j = 0; j < m; ++j) dual += b64[j] * r.g[j];
        EXPECT_NEAR(dual, ref_obj, 1e-9);
        for (std::size_t i = 0; i < n; ++i)
          for (std::size_t j = 0; j < m; ++j)
            EXPECT_NEAR(r.plan(i, j),
                        a64[i] * b64[j] * std::exp((r.f[i] + r.g[j] - c(i, j)) / e_used), 1e-12);
      }
    }
  }
}

// Exact OT by brute force over permutations (n ≤ 6, uniform marginals): for small ε,
// W ≤ ⟨P_ε, C⟩ ≤ OT_ε ≤ W + ε·log n (KL(P‖abᵀ) is a mutual information ≤ log n), so the cost
// converges to W as ε → 0. ε = 1e-3 relative to costs in [0, 1].
TEST(Sinkhorn, CostApproachesExactOtAsEpsilonShrinks) {
  for (std::size_t n = 1; n <= 6; ++n) {
    for (std::uint64_t seed = 1; seed <= 2; ++seed) {
      SCOPED_TRACE(::testing::Message() << "n=" << n << " seed=" << seed);
      const auto c = uniform_matrix(n, n, 1000 * n + seed);
      const double w = brute_force_ot(c);
      const std::vector<double> u(n, 1.0 / static_cast<double>(n));
      for (double eps : {1e-1, 1e-2, 1e-3}) {
        ra::sinkhorn_options<double> opt;
        opt.epsilon = eps;
        // Near-permutation plans make Sinkhorn crawl at small ε: the local rate is 1 − O(mass of
        // the weakest link between near-disconnected blocks of the plan), e.g. 1 − 1e-7 here. So we
        // do not demand convergence; the bounds get a slack proportional to the achieved marginal
        // error δ (≤ 1e-4 after the default ε-scaling, usually far less): correcting P to a
        // feasible plan moves ⟨P, C⟩ by ≤ δ·max C (C ≤ 1) and ε·KL by ≤ ε·δ·(|log δ| + 2 log n) <
        // 3δ (ε ≤ 0.1).
        opt.tolerance = 1e-9;
        opt.max_iterations = 3000;
        const auto r = ra::sinkhorn<double>(to_eigen<double>(c), u, u, opt);
        EXPECT_LE(r.marginal_error, 1e-4) << "eps=" << eps << " iterations=" << r.iterations;
        const double slack = 5 * r.marginal_error + 1e-12;
        EXPECT_GE(r.cost, w - slack) << "eps=" << eps;
        EXPECT_LE(r.cost, r.objective + slack) << "eps=" << eps;
        EXPECT_LE(r.objective, w + eps * std::log(static_cast<double>(n)) + slack) << "eps=" << eps;
      }
    }
  }
}

// ε-scaling changes the path, not the fixed point: same plan with θ ∈ {0, 0.5, 0.9}, and far
// fewer sweeps than plain Sinkhorn on a near-permutation problem (ε = 1e-3 of the cost range).
TEST(Sinkhorn, EpsilonScalingSameFixedPointFewerSweeps) {
  const auto c = uniform_matrix(5, 5, 31);
  const std::vector<double> u(5, 0.2);
  ra::sinkhorn_options<double> opt;
  opt.epsilon = 0.05;
  opt.tolerance = 1e-12;
  opt.max_iterations = 100000;
  opt.epsilon_scaling = 0.0;
  const auto plain = ra::sinkhorn<double>(to_eigen<double>(c), u, u, opt);
  ASSERT_TRUE(plain.converged);
  for (double theta : {0.5, 0.9}) {
    opt.epsilon_scaling = theta;
    const auto r = ra::sinkhorn<double>(to_eigen<double>(c), u, u, opt);
    EXPECT_LE(orc::max_abs_error(orc::to_dmat(r.plan).a, orc::to_dmat(plain.plan).a), 1e-10);
  }
  opt.epsilon = 1e-3;
  opt.tolerance = 1e-6;
  opt.max_iterations = 2000;
  opt.epsilon_scaling = 0.0;
  EXPECT_FALSE(ra::sinkhorn<double>(to_eigen<double>(c), u, u, opt).converged);
  opt.epsilon_scaling = 0.5;
  EXPECT_TRUE(ra::sinkhorn<double>(to_eigen<double>(c), u, u, opt).converged);
}

// 2×2 closed form. With a = (p, 1−p), b = (q, 1−q) the plan is [[x, p−x], [q−x, 1−p−q+x]] and the
// entropic optimality condition P11·P22 / (P12·P21) = κ = exp(−(C11 + C22 − C12 − C21)/ε) (the
// quadratic (1 − κ)x² + (1 − p − q + κ(p + q))x − κpq = 0) has one root x in
// (max(0, p+q−1), min(p, q)); found below by bisection, which stays exact when κ ≈ 1e35.
TYPED_TEST(SinkhornTest, TwoByTwoClosedForm) {
  using T = TypeParam;
  struct tc {
    double p, q, c11, c12, c21, c22, eps;
  };
  const tc cases[] = {{0.5, 0.5, 0.0, 1.0, 1.0, 0.0, 0.5},  {0.3, 0.6, 0.2, 0.9, 0.4, 0.1, 0.1},
                      {0.7, 0.2, 1.0, 0.0, 0.3, 0.5, 1.0},  {0.25, 0.75, 0.0, 2.0, 2.0, 0.0, 0.05},
                      {0.5, 0.5, 0.3, 0.3, 0.3, 0.3, 0.01}, {0.9, 0.1, 0.0, 0.5, 0.5, 1.0, 0.3}};
  for (const auto& t : cases) {
    SCOPED_TRACE(::testing::Message() << "p=" << t.p << " q=" << t.q << " eps=" << t.eps);
    // Solve log x + log(1−p−q+x) − log(p−x) − log(q−x) = log κ by bisection: the left side
    // increases from −∞ to +∞ on (lo, hi), and log κ is used directly (κ itself may overflow).
    const double log_kappa = -(t.c11 + t.c22 - t.c12 - t.c21) / t.eps;
    double lo = std::max(0.0, t.p + t.q - 1), hi = std::min(t.p, t.q);
    for (int it = 0; it < 200; ++it) {
      const double mid = 0.5 * (lo + hi);
      const double h =
          std::log(mid) + std::log(1 - t.p - t.q + mid) - std::log(t.p - mid) - std::log(t.q - mid);
      (h < log_kappa ? lo : hi) = mid;
    }
    const double x = 0.5 * (lo + hi);
    const std::vector<double> ref = {x, t.p - x, t.q - x, 1 - t.p - t.q + x};
    orc::dmat c(2, 2);
    c.a = {t.c11, t.c12, t.c21, t.c22};
    ra::sinkhorn_options<T> opt;
    opt.epsilon = static_cast<T>(t.eps);
    opt.tolerance = T(1e-13);
    opt.max_iterations = 100000;
    // Inputs exactly representable in float except p, q, costs: compare at kPlanTol plus the
    // input rounding effect (≤ 1e-7 relative of p, q) for float.
    const auto r = ra::sinkhorn<T>(
        to_eigen<T>(c), std::vector<T>{static_cast<T>(t.p), static_cast<T>(1 - t.p)},
        std::vector<T>{static_cast<T>(t.q), static_cast<T>(1 - t.q)}, opt);
    const double tol = (std::is_same_v<T, float>) ? 2e-5 : 1e-10;
    EXPECT_LE(orc::max_abs_error(orc::to_dmat(r.plan).a, ref), tol);
  }
}

// Separable costs C_ij = u_i + v_j: the row/column offsets are absorbed by the potentials, so the
// plan is a bᵀ exactly for every ε (including a constant cost), and ⟨P, C⟩ = ⟨a, u⟩ + ⟨b, v⟩.
TYPED_TEST(SinkhornTest, SeparableCostGivesProductPlan) {
  using T = TypeParam;
  const std::size_t n = 7, m = 5;
  const auto u = orc::random_vector(n, 5);
  const auto v = orc::random_vector(m, 6);
  const auto a = orc::to_dvec(to_vec<T>(random_simplex(n, 7)));
  auto b = orc::to_dvec(to_vec<T>(random_simplex(m, 8)));
  const double sa = std::accumulate(a.begin(), a.end(), 0.0);
  const double sb = std::accumulate(b.begin(), b.end(), 0.0);
  for (auto& x : b) x *= sa / sb;
  orc::dmat c(n, m);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < m; ++j) c(i, j) = u[i] + v[j];
  c = orc::rounded<T>(c);
  for (double eps : {1e-3, 0.1, 10.0}) {
    ra::sinkhorn_options<T> opt;
    opt.epsilon = static_cast<T>(eps);
    opt.tolerance = T(1e-12);
    const auto r = ra::sinkhorn<T>(to_eigen<T>(c), to_vec<T>(a), to_vec<T>(b), opt);
    std::vector<double> ref(n * m);
    double ref_cost = 0;
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < m; ++j) {
        ref[i * m + j] = a[i] * b[j];
        ref_cost += a[i] * b[j] * c(i, j);
      }
    // float: C rounded to T is only separable up to 1e-7·|C|/ε, which moves P by that relative
    // amount at ε = 1e-3 (≈ 3e-4·P ≤ 1e-4).
    const double tol = (std::is_same_v<T, float>) ? (eps < 0.01 ? 1e-4 : 1e-5) : 1e-9;
    EXPECT_LE(orc::max_abs_error(orc::to_dmat(r.plan).a, ref), tol) << "eps=" << eps;
    EXPECT_NEAR(static_cast<double>(r.cost), ref_cost, (std::is_same_v<T, float>) ? 1e-4 : 1e-9);
  }
}

// Tiny ε relative to large costs (C/ε up to 1e5: exp(−C/ε) underflows to 0 and the naive
// algorithm divides 0/0). The log-domain form stays finite and reaches the marginals.
TYPED_TEST(SinkhornTest, TinyEpsilonDoesNotOverflow) {
  using T = TypeParam;
  const std::size_t n = 12, m = 8;
  const auto c = orc::rounded<T>(uniform_matrix(n, m, 77, 0.0, 100.0));
  const auto a = to_vec<T>(random_simplex(n, 78));
  const auto b = to_vec<T>(random_simplex(m, 79));
  for (double eps : {10.0, 0.1, 0.01}) {  // 0.1 = 1e-3 and 0.01 = 1e-4 of max C
    ra::sinkhorn_options<T> opt;
    opt.epsilon = static_cast<T>(eps);
    opt.tolerance = T(1e-9);
    opt.max_iterations = 2000;
    const auto r = ra::sinkhorn<T>(to_eigen<T>(c), a, b, opt);
    EXPECT_TRUE(std::isfinite(r.cost) && std::isfinite(r.objective));
    for (std::size_t k = 0; k < n * m; ++k) EXPECT_TRUE(std::isfinite(r.plan.data()[k]));
    for (T f : r.f) EXPECT_TRUE(std::isfinite(f));
    for (T g : r.g) EXPECT_TRUE(std::isfinite(g));
    // At ε ≤ 1e-3·max C the plan is near-permutation and convergence is slow (see the brute-force
    // test below): only require progress there; ε = 10 must converge.
    if (eps > 1.0) {
      EXPECT_TRUE(r.converged);
      EXPECT_LE(static_cast<double>(r.marginal_error), 1e-8);
    } else {
      EXPECT_LE(static_cast<double>(r.marginal_error), 0.1) << "eps=" << eps;
    }
  }
}

// A single iteration with a tolerance it cannot reach: not converged, error reported, plan's
// columns exact, rows normalised after the next f-update.
TEST(Sinkhorn, IterationCapReportsNotConverged) {
  const auto c = uniform_matrix(10, 10, 3);
  const auto a = random_simplex(10, 4), b = random_simplex(10, 5);
  ra::sinkhorn_options<double> opt;
  opt.epsilon = 0.01;
  opt.max_iterations = 1;
  opt.tolerance = 1e-12;
  opt.epsilon_scaling = 0;
  const auto r = ra::sinkhorn<double>(to_eigen<double>(c), a, b, opt);
  EXPECT_FALSE(r.converged);
  EXPECT_EQ(r.iterations, 1u);
  EXPECT_GT(r.marginal_error, 1e-6);
  for (int i = 0; i < 10; ++i) EXPECT_NEAR(r.plan.row(i).sum(), a[i], 1e-12);
}

// Any equal total mass is accepted (not only 1); tiny mismatches within the tolerance are
// absorbed by rescaling b.
TEST(Sinkhorn, GeneralMassAndRescaling) {
  const auto c = uniform_matrix(3, 4, 9);
  const std::vector<double> a = {1.0, 0.5, 0.5};
  const std::vector<double> b = {0.5, 0.5, 0.5, 0.5 * (1 + 1e-8)};
  const auto r = ra::sinkhorn<double>(to_eigen<double>(c), a, b);
  EXPECT_NEAR(r.plan.sum(), 2.0, 1e-6);
  EXPECT_TRUE(r.converged);
}

TEST(Sinkhorn, ValidatesInputs) {
  const auto c = to_eigen<double>(uniform_matrix(3, 2, 1));
  const std::vector<double> a = {0.2, 0.3, 0.5}, b = {0.5, 0.5};
  EXPECT_MESSAGE_HAS(thrown_message<ra::dimension_mismatch>([&] {
                       (void)ra::sinkhorn<double>(c, std::vector<double>{0.5, 0.5}, b);
                     }),
                     "a.size()");
  EXPECT_MESSAGE_HAS(thrown_message<ra::dimension_mismatch>(
                         [&] { (void)ra::sinkhorn<double>(c, a, std::vector<double>{1.0}); }),
                     "b.size()");
  auto bad = c;
  bad(1, 1) = std::numeric_limits<double>::quiet_NaN();
  EXPECT_MESSAGE_HAS(
      thrown_message<ra::non_finite_input>([&] { (void)ra::sinkhorn<double>(bad, a, b); }),
      "cost[1][1]");
  bad(1, 1) = std::numeric_limits<double>::infinity();
  EXPECT_THROW((void)ra::sinkhorn<double>(bad, a, b), ra::non_finite_input);
  EXPECT_MESSAGE_HAS(
      thrown_message<ra::non_finite_input>([&] {
        (void)ra::sinkhorn<double>(c, std::vector<double>{0.2, std::nan(""), 0.5}, b);
      }),
      "a[1]");
  EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_argument>([&] {
                       (void)ra::sinkhorn<double>(c, std::vector<double>{0.5, 0.0, 0.5}, b);
                     }),
                     "a[1]");
  EXPECT_THROW((void)ra::sinkhorn<double>(c, std::vector<double>{0.6, -0.1, 0.5}, b),
               ra::invalid_argument);
  EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_argument>([&] {
                       (void)ra::sinkhorn<double>(c, a, std::vector<double>{0.5, 0.6});
                     }),
                     "total mass");
  for (double eps : {0.0, -1.0, std::numeric_limits<double>::infinity(), std::nan("")}) {
    ra::sinkhorn_options<double> opt;
    opt.epsilon = eps;
    EXPECT_THROW((void)ra::sinkhorn<double>(c, a, b, opt), ra::invalid_config) << eps;
  }
  ra::sinkhorn_options<double> opt;
  opt.max_iterations = 0;
  EXPECT_THROW((void)ra::sinkhorn<double>(c, a, b, opt), ra::invalid_config);
  opt = {};
  opt.tolerance = -1;
  EXPECT_THROW((void)ra::sinkhorn<double>(c, a, b, opt), ra::invalid_config);
  const ra::row_matrix<double> empty(0, 2);
  EXPECT_THROW((void)ra::sinkhorn<double>(empty, std::vector<double>{}, b), ra::invalid_argument);
}

// ================================================================================================
// sinkhorn_attention (Sinkformers)
// ================================================================================================

/// exp(S) normalised row-wise, then `iters` × (columns to Lq/Lv, rows to 1), over visible keys.
orc::dmat naive_sinkformer_weights(const orc::dmat& q, const orc::dmat& k, double scale, int iters,
                                   const std::vector<bool>& visible) {
  const std::size_t lq = q.rows, lk = k.rows;
  std::size_t lv = 0;
  for (bool v : visible) lv += v ? 1 : 0;
  orc::dmat p(lq, lk);
  if (lv == 0) return p;
  std::vector<double> rowmax(lq, -std::numeric_limits<double>::infinity());
  for (std::size_t i = 0; i < lq; ++i)
    for (std::size_t j = 0; j < lk; ++j) {
      double s = 0;
      for (std::size_t c = 0; c < q.cols; ++c) s += q(i, c) * k(j, c);
      p(i, j) = scale * s;
      if (visible[j]) rowmax[i] = std::max(rowmax[i], p(i, j));
    }
  for (std::size_t i = 0; i < lq; ++i)
    for (std::size_t j = 0; j < lk; ++j) p(i, j) = visible[j] ? std::exp(p(i, j) - rowmax[i]) : 0.0;
  const auto rows = [&] {
    for (std::size_t i = 0; i < lq; ++i) {
      double s = 0;
      for (std::size_t j = 0; j < lk; ++j) s += p(i, j);
      for (std::size_t j = 0; j < lk; ++j) p(i, j) /= s;
    }
  };
  const auto cols = [&] {
    for (std::size_t j = 0; j < lk; ++j) {
      if (!visible[j]) continue;
      double s = 0;
      for (std::size_t i = 0; i < lq; ++i) s += p(i, j);
      for (std::size_t i = 0; i < lq; ++i)
        p(i, j) *= static_cast<double>(lq) / static_cast<double>(lv) / s;
    }
  };
  rows();
  for (int it = 0; it < iters; ++it) {
    cols();
    rows();
  }
  return p;
}

orc::dmat matmul(const orc::dmat& a, const orc::dmat& b) {
  orc::dmat c(a.rows, b.cols);
  for (std::size_t i = 0; i < a.rows; ++i)
    for (std::size_t k = 0; k < a.cols; ++k)
      for (std::size_t j = 0; j < b.cols; ++j) c(i, j) += a(i, k) * b(k, j);
  return c;
}

template <class T>
class SinkformerTest : public ::testing::Test {};
TYPED_TEST_SUITE(SinkformerTest, Scalars);

// Float: scores are formed in float (d ≤ 32 ⇒ ≤ ~2e-6 absolute on a score of O(3)), which moves
// each weight by that relative amount; outputs are convex combinations of O(1) values.
template <class T>
constexpr double kAttnTol = (std::is_same_v<T, float>) ? 2e-5 : 1e-11;

// Zero iterations = softmax attention (oracle.hpp's reference_attention).
TYPED_TEST(SinkformerTest, ZeroIterationsIsSoftmaxAttention) {
  using T = TypeParam;
  const auto q = orc::rounded<T>(orc::random_matrix(5, 8, 1));
  const auto k = orc::rounded<T>(orc::random_matrix(9, 8, 2));
  const auto v = orc::rounded<T>(orc::random_matrix(9, 3, 3));
  const auto ref = orc::reference_attention(q, k, v, 1.0 / std::sqrt(8.0));
  const ra::sinkhorn_attention<T> att(8, 0);
  const auto r = att.forward(to_eigen<T>(q), to_eigen<T>(k), to_eigen<T>(v), {}, true);
  EXPECT_LE(orc::max_abs_error(orc::to_dmat(r.output).a, ref.out.a), kAttnTol<T>);
  EXPECT_LE(orc::max_abs_error(orc::to_dmat(r.weights).a, ref.weights.a), kAttnTol<T>);
  EXPECT_EQ(r.iterations, 0u);
}

// k iterations against the naive alternating normalisation, square and rectangular, with a mask.
TYPED_TEST(SinkformerTest, MatchesNaiveAlternatingNormalisation) {
  using T = TypeParam;
  std::uint64_t seed = 40;
  for (auto [lq, lk] : {std::pair<std::size_t, std::size_t>{6, 6}, {4, 10}, {12, 5}, {1, 4}}) {
    for (int iters : {1, 3, 10}) {
      for (bool masked : {false, true}) {
        SCOPED_TRACE(::testing::Message()
                     << "lq=" << lq << " lk=" << lk << " iters=" << iters << " mask=" << masked);
        const std::size_t d = 16, dv = 5;
        const auto q = orc::rounded<T>(orc::random_matrix(lq, d, ++seed));
        const auto k = orc::rounded<T>(orc::random_matrix(lk, d, ++seed));
        const auto v = orc::rounded<T>(orc::random_matrix(lk, dv, ++seed));
        std::vector<bool> vis(lk, true);
        bool mask[16];
        for (std::size_t j = 0; j < lk; ++j) mask[j] = vis[j] = !masked || (j % 3 != 1);
        const auto w = naive_sinkformer_weights(q, k, 0.25, iters, vis);
        const auto out = matmul(w, v);
        const ra::sinkhorn_attention<T> att(d, static_cast<std::size_t>(iters));
        const auto r =
            att.forward(to_eigen<T>(q), to_eigen<T>(k), to_eigen<T>(v),
                        masked ? std::span<const bool>(mask, lk) : std::span<const bool>{}, true);
        EXPECT_LE(orc::max_abs_error(orc::to_dmat(r.weights).a, w.a), kAttnTol<T>);
        EXPECT_LE(orc::max_abs_error(orc::to_dmat(r.output).a, out.a), kAttnTol<T>);
        for (std::size_t j = 0; j < lk; ++j) {
          if (vis[j]) continue;
          for (std::size_t i = 0; i < lq; ++i) EXPECT_EQ(r.weights(i, j), T(0));
        }
        // compute_batch returns the same output.
        const auto o2 =
            att.compute_batch(to_eigen<T>(q), to_eigen<T>(k), to_eigen<T>(v),
                              masked ? std::span<const bool>(mask, lk) : std::span<const bool>{});
        EXPECT_EQ(orc::max_abs_error(orc::to_dmat(o2).a, orc::to_dmat(r.output).a), 0.0);
      }
    }
  }
}

// With a tolerance the weights become doubly stochastic (rows 1, columns Lq/Lk) to that level;
// row sums are 1 after any number of iterations.
TYPED_TEST(SinkformerTest, RowAndColumnSums) {
  using T = TypeParam;
  for (auto [lq, lk] : {std::pair<std::size_t, std::size_t>{8, 8}, {6, 15}, {20, 4}}) {
    SCOPED_TRACE(::testing::Message() << "lq=" << lq << " lk=" << lk);
    const auto q = to_eigen<T>(orc::random_matrix(lq, 8, 7 + lq));
    const auto k = to_eigen<T>(orc::random_matrix(lk, 8, 8 + lk));
    const auto v = to_eigen<T>(orc::random_matrix(lk, 2, 9));
    const ra::sinkhorn_attention<T> att(8, 10000, std::nullopt, T(1e-9));
    const auto r = att.forward(q, k, v, {}, true);
    EXPECT_LT(r.iterations, 10000u);
    // float: sums of ≤ 20 weights ≤ 1 rounded to float.
    const double tol = (std::is_same_v<T, float>) ? 2e-6 : 1e-8;
    for (std::size_t i = 0; i < lq; ++i) EXPECT_NEAR(r.weights.row(i).sum(), 1.0, tol);
    for (std::size_t j = 0; j < lk; ++j)
      EXPECT_NEAR(r.weights.col(j).sum(), double(lq) / double(lk), tol);
    EXPECT_LE(static_cast<double>(r.column_error), 1e-9);
    EXPECT_LE(static_cast<double>(r.row_error), 1e-12);
    // Few iterations: rows exact, columns only approximately balanced (error reported).
    const ra::sinkhorn_attention<T> few(8, 1);
    const auto r1 = few.forward(q, k, v, {}, true);
    double col_err = 0;
    for (std::size_t j = 0; j < lk; ++j)
      col_err += std::abs(static_cast<double>(r1.weights.col(j).sum()) - double(lq) / double(lk));
    EXPECT_NEAR(static_cast<double>(r1.column_error), col_err, 1e-5);
  }
}

TYPED_TEST(SinkformerTest, AllKeysMaskedGivesZeros) {
  using T = TypeParam;
  const auto q = to_eigen<T>(orc::random_matrix(3, 4, 1));
  const auto k = to_eigen<T>(orc::random_matrix(5, 4, 2));
  const auto v = to_eigen<T>(orc::random_matrix(5, 2, 3));
  const bool mask[5] = {false, false, false, false, false};
  const ra::sinkhorn_attention<T> att(4);
  const auto r = att.forward(q, k, v, std::span<const bool>(mask, 5), true);
  EXPECT_EQ(r.output.rows(), 3);
  EXPECT_EQ(r.output.cols(), 2);
  EXPECT_TRUE((r.output.array() == T(0)).all());
  EXPECT_TRUE((r.weights.array() == T(0)).all());
}

TEST(Sinkformer, ValidatesInputs) {
  const auto q = to_eigen<double>(orc::random_matrix(3, 4, 1));
  const auto k = to_eigen<double>(orc::random_matrix(5, 4, 2));
  const auto v = to_eigen<double>(orc::random_matrix(5, 2, 3));
  const ra::sinkhorn_attention<double> att(4);
  EXPECT_MESSAGE_HAS(
      thrown_message<ra::dimension_mismatch>([&] { (void)att.forward(q.leftCols(3), k, v); }),
      "queries.cols()");
  EXPECT_THROW((void)att.forward(q, k.leftCols(3), v), ra::dimension_mismatch);
  EXPECT_THROW((void)att.forward(q, k, v.topRows(4)), ra::dimension_mismatch);
  const bool mask[4] = {true, true, true, true};
  EXPECT_THROW((void)att.forward(q, k, v, std::span<const bool>(mask, 4)), ra::dimension_mismatch);
  auto bad = k;
  bad(2, 3) = std::numeric_limits<double>::quiet_NaN();
  EXPECT_MESSAGE_HAS(thrown_message<ra::non_finite_input>([&] { (void)att.forward(q, bad, v); }),
                     "keys[2][3]");
  auto badv = v;
  badv(4, 1) = std::numeric_limits<double>::infinity();
  EXPECT_THROW((void)att.forward(q, k, badv), ra::non_finite_input);
  EXPECT_THROW((void)att.forward(q.topRows(0), k, v), ra::invalid_argument);
  EXPECT_THROW(ra::sinkhorn_attention<double>(0), ra::invalid_config);
  EXPECT_THROW(ra::sinkhorn_attention<double>(4, 3, std::nullopt, -1.0), ra::invalid_config);
}

}  // namespace
