// Information geometry (info_geometry/fisher.hpp, info_geometry/natural_gradient.hpp): the
// categorical and empirical Fisher operators, damped conjugate gradient, natural-gradient steps
// and the Fisher–Rao distance, for float and double.
//
// Oracles (namespace `ig_oracle` below; they call no library function): dense double matrices
// built element by element from the definitions (F_ij = p_i δ_ij − p_i p_j, (1/N) Σ_s G_si G_sj),
// solved with Eigen's LLT / LDLT, pseudo-inverses from Eigen's CompleteOrthogonalDecomposition,
// softmax and the Fisher–Rao formula 2·acos(Σ√(p_i q_i)) written out in double, plus closed forms
// (identical → 0, disjoint → π, two-point distributions, iteration bounds of CG in exact
// arithmetic). Every oracle sees exactly the (rounded-to-T) inputs the library sees.
//
// Tolerances (max-abs error divided by a stated scale, so they are relative):
// - O(n) products (Fisher–vector, diagonal, quadratic form), scale max(‖ref‖∞, p_max‖v‖∞):
//   float 1e-6 — each output is p_i(v_i − pᵀv) with pᵀv a length-n dot product whose rounding is
//   ≲ √n·ε·‖v‖∞ (n ≤ 64: ≈ 1e-6; observed 5.7e-8) — double 1e-14 (same with 2^-53; observed
//   1.7e-16).
// - Solves, scale ‖ref‖∞: the error is ≲ κ · (relative residual + n·ε); the systems below have
//   κ ≤ ~10² (float) / 10³ (double) and CG runs to a relative residual of 1e-6 / 1e-13 (looser
//   where noted); each tolerance is at least 10× the largest observed error (noted at each
//   test), while any wrong formula (sign, missing damping, wrong rank-one term) gives O(1).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numbers>
#include <random>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/info_geometry/fisher.hpp"
#include "ruvector/attention/info_geometry/natural_gradient.hpp"
#include "support/helpers.hpp"

// The oracle's dense decompositions, inside the library's guard for GCC 12's false-positive
// -Wuninitialized in its AVX-512 intrinsics (see detail/eigen.hpp).
#include "ruvector/attention/config.hpp"
RUVECTOR_ATTENTION_KERNEL_WARNINGS_BEGIN
#include <Eigen/Cholesky>
#include <Eigen/QR>
RUVECTOR_ATTENTION_KERNEL_WARNINGS_END

namespace ra = ruvector::attention;

// ================================================================================================
// Oracle (double precision, Eigen dense linear algebra, no library code)
// ================================================================================================
namespace ig_oracle {

using dvec = std::vector<double>;
using Eigen::MatrixXd;
using Eigen::VectorXd;

inline VectorXd to_eig(const dvec& v) {
  VectorXd e(static_cast<Eigen::Index>(v.size()));
  for (std::size_t i = 0; i < v.size(); ++i) e(static_cast<Eigen::Index>(i)) = v[i];
  return e;
}
inline dvec from_eig(const VectorXd& e) {
  dvec v(static_cast<std::size_t>(e.size()));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = e(static_cast<Eigen::Index>(i));
  return v;
}

/// softmax(θ)_i = exp(θ_i − max θ) / Σ_j exp(θ_j − max θ); −inf entries get 0.
inline dvec softmax(const dvec& theta) {
  double m = -std::numeric_limits<double>::infinity();
  for (double t : theta) m = std::max(m, t);
  dvec p(theta.size());
  double s = 0.0;
  for (std::size_t i = 0; i < theta.size(); ++i) s += (p[i] = std::exp(theta[i] - m));
  for (double& x : p) x /= s;
  return p;
}

/// F_ij = p_i δ_ij − p_i p_j, element by element.
inline MatrixXd fisher(const dvec& p) {
  const auto n = static_cast<Eigen::Index>(p.size());
  MatrixXd f(n, n);
  for (Eigen::Index i = 0; i < n; ++i)
    for (Eigen::Index j = 0; j < n; ++j)
      f(i, j) = (i == j ? p[std::size_t(i)] : 0.0) - p[std::size_t(i)] * p[std::size_t(j)];
  return f;
}

/// (1/N) Σ_s G_si G_sj for G given as N rows of P values.
inline MatrixXd empirical_fisher(const std::vector<dvec>& g) {
  const std::size_t n = g.size(), p = g[0].size();
  MatrixXd f = MatrixXd::Zero(Eigen::Index(p), Eigen::Index(p));
  for (std::size_t s = 0; s < n; ++s)
    for (std::size_t i = 0; i < p; ++i)
      for (std::size_t j = 0; j < p; ++j) f(Eigen::Index(i), Eigen::Index(j)) += g[s][i] * g[s][j];
  return f / static_cast<double>(n);
}

inline dvec mat_vec(const MatrixXd& a, const dvec& v) { return from_eig(a * to_eig(v)); }

/// (A + λI)⁻¹ b by Cholesky (A + λI must be SPD).
inline dvec solve_spd(const MatrixXd& a, double lambda, const dvec& b) {
  const MatrixXd m = a + lambda * MatrixXd::Identity(a.rows(), a.cols());
  Eigen::LLT<MatrixXd> llt(m);
  if (llt.info() != Eigen::Success) throw std::logic_error("oracle: not SPD");
  return from_eig(llt.solve(to_eig(b)));
}

/// A⁺ b (Moore–Penrose, via complete orthogonal decomposition).
inline dvec pinv_apply(const MatrixXd& a, const dvec& b) {
  Eigen::CompleteOrthogonalDecomposition<MatrixXd> cod(a);
  cod.setThreshold(1e-10);
  return from_eig(cod.pseudoInverse() * to_eig(b));
}

/// ‖b − (A + λI)x‖₂.
inline double residual(const MatrixXd& a, double lambda, const dvec& b, const dvec& x) {
  const VectorXd xe = to_eig(x);
  return (to_eig(b) - a * xe - lambda * xe).norm();
}

/// d_FR(p, q) = 2·acos(clamp(Σ√(p_i q_i), 0, 1)).
inline double fisher_rao(const dvec& p, const dvec& q) {
  double bc = 0.0;
  for (std::size_t i = 0; i < p.size(); ++i) bc += std::sqrt(p[i] * q[i]);
  return 2.0 * std::acos(std::clamp(bc, 0.0, 1.0));
}

/// A random SPD matrix Q diag(λ) Qᵀ with eigenvalues spread log-uniformly over [1, cond].
inline MatrixXd random_spd(std::size_t n, double cond, std::mt19937& gen) {
  std::normal_distribution<double> nd;
  MatrixXd g(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(n));
  for (Eigen::Index i = 0; i < g.rows(); ++i)
    for (Eigen::Index j = 0; j < g.cols(); ++j) g(i, j) = nd(gen);
  Eigen::HouseholderQR<MatrixXd> qr(g);
  const MatrixXd q = qr.householderQ();
  VectorXd ev(static_cast<Eigen::Index>(n));
  for (Eigen::Index i = 0; i < ev.size(); ++i)
    ev(i) = n == 1 ? 1.0 : std::pow(cond, double(i) / double(n - 1));
  return q * ev.asDiagonal() * q.transpose();
}

}  // namespace ig_oracle

namespace {

namespace orc = ig_oracle;
using orc::dvec;
using ruvector_test::thrown_message;

#define EXPECT_MESSAGE_HAS(msg, needle) \
  EXPECT_NE(std::string(msg).find(needle), std::string::npos) << "message: " << (msg)

// The float or the double tolerance.
template <class T>
constexpr double tol(double f, double d) {
  return std::is_same_v<T, float> ? f : d;
}

template <class T>
constexpr double kProdTol = tol<T>(1e-6, 1e-14);
template <class T>
constexpr double kSolveTol = tol<T>(1e-4, 1e-10);
template <class T>
constexpr T kCgTol = std::is_same_v<T, float> ? T(1e-6) : T(1e-13);

// Rounds a double vector to T and back, so the oracle sees what the library sees.
template <class T>
std::vector<T> to_t(const dvec& v) {
  return std::vector<T>(v.begin(), v.end());
}
template <class T>
dvec to_d(const std::vector<T>& v) {
  return dvec(v.begin(), v.end());
}

dvec normal_vec(std::size_t n, std::mt19937& gen, double sd = 1.0) {
  std::normal_distribution<double> nd(0.0, sd);
  dvec v(n);
  for (double& x : v) x = nd(gen);
  return v;
}

// A random probability vector (softmax of N(0, sd²) logits) rounded to T, as double.
template <class T>
dvec random_probs(std::size_t n, std::mt19937& gen, double sd = 1.5) {
  return to_d(to_t<T>(orc::softmax(normal_vec(n, gen, sd))));
}

// max_i |a_i − b_i| / scale.
double max_err(const dvec& a, const dvec& b, double scale) {
  double e = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) e = std::max(e, std::abs(a[i] - b[i]));
  return e / scale;
}
double inf_norm(const dvec& v) {
  double m = 0.0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

template <class T>
class InfoGeometryTest : public ::testing::Test {};
using Scalars = ::testing::Types<float, double>;
TYPED_TEST_SUITE(InfoGeometryTest, Scalars);

static_assert(ra::linear_operator<ra::categorical_fisher<float>, float>);
static_assert(ra::linear_operator<ra::categorical_fisher<double>, double>);
static_assert(ra::linear_operator<ra::empirical_fisher<float>, float>);
static_assert(ra::linear_operator<ra::empirical_fisher<double>, double>);
static_assert(!ra::linear_operator<ra::categorical_fisher<float>, double>);
static_assert(!ra::linear_operator<int, float>);

// ================================================================================================
// Categorical Fisher
// ================================================================================================

// F v, the explicit matrix, the diagonal and vᵀFv against the element-wise oracle matrix, over
// random sizes and seeds (n = 1 included: F = p − p² = 0).
TYPED_TEST(InfoGeometryTest, CategoricalFisherMatchesExplicitMatrix) {
  using T = TypeParam;
  std::mt19937 gen(11);
  for (std::size_t n : {1u, 2u, 3u, 7u, 16u, 33u, 64u}) {
    for (int rep = 0; rep < 3; ++rep) {
      const dvec p = random_probs<T>(n, gen);
      const dvec v = to_d(to_t<T>(normal_vec(n, gen)));
      const auto pt = to_t<T>(p);
      const ra::categorical_fisher<T> f(pt);
      ASSERT_EQ(f.size(), n);
      const orc::MatrixXd ref = orc::fisher(p);
      const dvec ref_fv = orc::mat_vec(ref, v);
      std::vector<T> y(n);
      f.apply(to_t<T>(v), y);
      const double pmax = inf_norm(p);
      const double scale = std::max(inf_norm(ref_fv), pmax * inf_norm(v));
      EXPECT_LE(max_err(to_d(y), ref_fv, scale), kProdTol<T>) << "n=" << n;

      const auto m = f.matrix();
      double merr = 0.0;
      for (Eigen::Index i = 0; i < ref.rows(); ++i)
        for (Eigen::Index j = 0; j < ref.cols(); ++j)
          merr = std::max(merr, std::abs(double(m(i, j)) - ref(i, j)));
      EXPECT_LE(merr / pmax, kProdTol<T>);

      const auto d = f.diagonal();
      dvec ref_d(n);
      for (std::size_t i = 0; i < n; ++i) ref_d[i] = ref(Eigen::Index(i), Eigen::Index(i));
      EXPECT_LE(max_err(to_d(d), ref_d, pmax), kProdTol<T>);

      const double ref_q = orc::to_eig(v).dot(ref * orc::to_eig(v));
      EXPECT_NEAR(double(f.quadratic_form(to_t<T>(v))), ref_q,
                  kProdTol<T> * 4 * pmax * inf_norm(v) * inf_norm(v));
      EXPECT_GE(f.quadratic_form(to_t<T>(v)), T(0));
    }
  }
}

// F·1 = 0 (a constant logit shift does not move p) and F is symmetric: uᵀ(Fv) = vᵀ(Fu).
TYPED_TEST(InfoGeometryTest, CategoricalFisherNullSpaceAndSymmetry) {
  using T = TypeParam;
  std::mt19937 gen(12);
  const std::size_t n = 40;
  const dvec p = random_probs<T>(n, gen);
  const ra::categorical_fisher<T> f(to_t<T>(p));
  std::vector<T> ones(n, T(1)), y(n);
  f.apply(ones, y);
  // F·1 = p(1 − Σp): zero up to the rounding of Σp (≤ n·ε).
  EXPECT_LE(inf_norm(to_d(y)), 4.0 * n * std::numeric_limits<T>::epsilon());
  const auto u = to_t<T>(normal_vec(n, gen)), v = to_t<T>(normal_vec(n, gen));
  std::vector<T> fu(n), fv(n);
  f.apply(u, fu);
  f.apply(v, fv);
  const double a = orc::to_eig(to_d(u)).dot(orc::to_eig(to_d(fv)));
  const double b = orc::to_eig(to_d(v)).dot(orc::to_eig(to_d(fu)));
  EXPECT_NEAR(a, b, 10 * kProdTol<T> * n);
}

// from_logits: p = softmax(θ) against the oracle softmax, −inf logits are masked classes (p = 0).
TYPED_TEST(InfoGeometryTest, FromLogitsAndMaskedClasses) {
  using T = TypeParam;
  std::mt19937 gen(13);
  for (std::size_t n : {1u, 5u, 50u}) {
    const dvec theta = to_d(to_t<T>(normal_vec(n, gen, 3.0)));
    const auto f = ra::categorical_fisher<T>::from_logits(to_t<T>(theta));
    const dvec ref = orc::softmax(theta);
    // float: exp and the normalising sum round at ~ a few ε relative.
    EXPECT_LE(max_err(to_d(std::vector<T>(f.probabilities().begin(), f.probabilities().end())), ref,
                      inf_norm(ref)),
              tol<T>(1e-6, 1e-14));
  }
  const T inf = std::numeric_limits<T>::infinity();
  const std::vector<T> masked = {T(1), -inf, T(0.5), -inf};
  const auto f = ra::categorical_fisher<T>::from_logits(masked);
  EXPECT_EQ(f.probabilities()[1], T(0));
  EXPECT_EQ(f.probabilities()[3], T(0));
  const dvec ref = orc::softmax({1.0, 0.5});
  EXPECT_NEAR(double(f.probabilities()[0]), ref[0], 1e-6);
  EXPECT_NEAR(double(f.probabilities()[2]), ref[1], 1e-6);
}

// The closed-form damped solve (Sherman–Morrison) against a dense Cholesky solve, several λ.
TYPED_TEST(InfoGeometryTest, ClosedFormSolveMatchesDenseSolve) {
  using T = TypeParam;
  std::mt19937 gen(14);
  for (std::size_t n : {1u, 2u, 9u, 32u, 64u}) {
    for (double lambda : {1e-2, 0.1, 1.0, 10.0}) {
      const dvec p = random_probs<T>(n, gen);
      const dvec g = to_d(to_t<T>(normal_vec(n, gen)));
      const ra::categorical_fisher<T> f(to_t<T>(p));
      std::vector<T> x(n);
      f.solve(to_t<T>(g), T(lambda), x);
      const dvec ref = orc::solve_spd(orc::fisher(p), double(T(lambda)), g);
      // κ ≤ (p_max + λ)/λ ≤ 101, error ≲ κ·n·ε; observed max: float 1.9e-7, double 1.3e-15.
      EXPECT_LE(max_err(to_d(x), ref, inf_norm(ref)), tol<T>(1e-5, 1e-13))
          << "n=" << n << " lambda=" << lambda;
    }
  }
}

// λ = 0: the pseudo-inverse F⁺g (any g, also with 1ᵀg ≠ 0 and with zero-probability classes)
// against Eigen's complete orthogonal decomposition of the explicit F of the normalised p.
TYPED_TEST(InfoGeometryTest, PseudoInverseAtZeroDamping) {
  using T = TypeParam;
  std::mt19937 gen(15);
  for (std::size_t n : {1u, 2u, 6u, 24u}) {
    for (int zeros : {0, 1, 2}) {
      if (std::size_t(zeros) + 1 > n) continue;
      dvec p = random_probs<T>(n, gen, 0.7);
      for (int z = 0; z < zeros; ++z) p[std::size_t(z) * 2 % n] = 0.0;
      double s = 0.0;
      for (double x : p) s += x;
      for (double& x : p) x /= s;
      p = to_d(to_t<T>(p));
      double sn = 0.0;
      for (double x : p) sn += x;
      dvec pn = p;
      for (double& x : pn) x /= sn;
      const dvec g = to_d(to_t<T>(normal_vec(n, gen)));
      const ra::categorical_fisher<T> f(to_t<T>(p));
      std::vector<T> x(n);
      f.solve(to_t<T>(g), T(0), x);
      const dvec ref = orc::pinv_apply(orc::fisher(pn), g);
      const double scale = std::max(inf_norm(ref), 1.0);
      // κ on the range ≈ p_max/p_min ≲ 40 here; observed: float 5e-8, double 2.6e-15.
      EXPECT_LE(max_err(to_d(x), ref, scale), tol<T>(1e-5, 1e-13))
          << "n=" << n << " zeros=" << zeros;
    }
  }
}

// λ → 0: for g ⊥ 1 (any gradient of a loss of p) the damped solution tends to F⁺g.
TEST(InfoGeometry, DampedSolveTendsToPseudoInverse) {
  std::mt19937 gen(16);
  const std::size_t n = 20;
  const dvec p = orc::softmax(normal_vec(n, gen));
  dvec g = normal_vec(n, gen);
  double mean = 0.0;
  for (double x : g) mean += x / double(n);
  for (double& x : g) x -= mean;  // tangent to the simplex: 1ᵀg = 0
  const dvec ref = orc::pinv_apply(orc::fisher(p), g);
  const ra::categorical_fisher<double> f(p);
  std::vector<double> x(n);
  double prev = 1e300;
  for (double lambda : {1e-2, 1e-4, 1e-6, 1e-8}) {
    f.solve(g, lambda, x);
    const double e = max_err(x, ref, inf_norm(ref));
    // (F + λI)⁻¹g − F⁺g = −λ F⁺²g + O(λ²) on the range: the error shrinks linearly with λ.
    EXPECT_LT(e, prev);
    prev = e;
  }
  EXPECT_LE(prev, 1e-6);
}

// ================================================================================================
// Conjugate gradient
// ================================================================================================

template <class T>
auto dense_op(const ra::row_matrix<T>& a) {
  return ra::make_operator<T>(
      static_cast<std::size_t>(a.rows()), [&a](std::span<const T> x, std::span<T> y) {
        const Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>> xm(x.data(),
                                                                       Eigen::Index(x.size()));
        Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, 1>> ym(y.data(), Eigen::Index(y.size()));
        ym.noalias() = a * xm;
      });
}

template <class T>
ra::row_matrix<T> to_row_matrix(const orc::MatrixXd& m) {
  return m.cast<T>();
}

// Random SPD systems (κ = 10² in float, 10³ in double) with and without damping: CG vs
// Cholesky; the reported residual equals the oracle's ‖b − (A + λI)x‖ of the returned x. The
// float CG tolerance is 3e-5: the true residual of a float iterate cannot go below ~κ·ε ≈ 1e-5.
TYPED_TEST(InfoGeometryTest, ConjugateGradientMatchesDenseSolve) {
  using T = TypeParam;
  std::mt19937 gen(21);
  for (std::size_t n : {1u, 2u, 5u, 17u, 40u}) {
    for (double lambda : {0.0, 0.5}) {
      const orc::MatrixXd a_d = orc::random_spd(n, tol<T>(1e2, 1e3), gen);
      const auto a = to_row_matrix<T>(a_d);
      const orc::MatrixXd a_r = a.template cast<double>();  // what the library sees
      const dvec b = to_d(to_t<T>(normal_vec(n, gen)));
      std::vector<T> x(n);
      ra::cg_options<T> opt;
      opt.tolerance = T(tol<T>(3e-5, 1e-13));
      opt.max_iterations = 10 * n;
      const auto res = ra::conjugate_gradient<T>(dense_op(a), to_t<T>(b), x, T(lambda), opt);
      const dvec ref = orc::solve_spd(a_r, double(T(lambda)), b);
      EXPECT_TRUE(res.converged) << "n=" << n;
      EXPECT_FALSE(res.breakdown);
      // error ≲ κ · relative residual: 3e-3 (float) / 1e-10 (double); observed float 6.7e-5,
      // double 2e-14.
      EXPECT_LE(max_err(to_d(x), ref, inf_norm(ref)), tol<T>(2e-3, 1e-10)) << "n=" << n;
      const double r = orc::residual(a_r, double(T(lambda)), b, to_d(x));
      const double bn = orc::to_eig(b).norm();
      // The reported residual is the library's own true residual, rounded in T: equal to the
      // oracle's up to the rounding of one product, ≲ n·ε·‖A‖‖x‖.
      EXPECT_NEAR(
          double(res.residual_norm), r,
          50.0 * n * std::numeric_limits<T>::epsilon() * a_r.norm() * orc::to_eig(to_d(x)).norm());
      EXPECT_NEAR(double(res.relative_residual), double(res.residual_norm) / bn, 1e-6 * r / bn);
      EXPECT_LE(res.relative_residual, opt.tolerance);
    }
  }
}

// Exact-arithmetic behaviour: for A = I + UUᵀ (rank r) CG needs at most r + 1 iterations (the
// number of distinct eigenvalues), and never more than n for a well-conditioned SPD matrix.
TEST(InfoGeometry, ConjugateGradientIterationBounds) {
  std::mt19937 gen(22);
  for (std::size_t n : {6u, 12u, 30u}) {
    for (std::size_t r : {1u, 2u, 4u}) {
      orc::MatrixXd u(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(r));
      for (Eigen::Index i = 0; i < u.rows(); ++i)
        for (Eigen::Index j = 0; j < u.cols(); ++j) u(i, j) = std::normal_distribution<>()(gen);
      const orc::MatrixXd a_d = orc::MatrixXd::Identity(u.rows(), u.rows()) + u * u.transpose();
      const ra::row_matrix<double> a = a_d;
      const dvec b = normal_vec(n, gen);
      std::vector<double> x(n);
      ra::cg_options<double> opt;
      opt.tolerance = 1e-10;
      const auto res = ra::conjugate_gradient<double>(dense_op(a), b, x, 0.0, opt);
      EXPECT_TRUE(res.converged);
      EXPECT_LE(res.iterations, r + 1) << "n=" << n << " r=" << r;
    }
    const orc::MatrixXd a_d = orc::random_spd(n, 10.0, gen);
    const ra::row_matrix<double> a = a_d;
    const dvec b = normal_vec(n, gen);
    std::vector<double> x(n);
    const auto res = ra::conjugate_gradient<double>(dense_op(a), b, x, 0.0);
    EXPECT_TRUE(res.converged);
    EXPECT_LE(res.iterations, n);
    EXPECT_GE(res.applications, res.iterations);
  }
}

// A cap that is too small: converged = false, iterations = cap, and the reported residual is
// still the true one (and above the tolerance).
TYPED_TEST(InfoGeometryTest, ConjugateGradientReportsNonConvergence) {
  using T = TypeParam;
  std::mt19937 gen(23);
  const std::size_t n = 50;
  const orc::MatrixXd a_d = orc::random_spd(n, 1e4, gen);
  const auto a = to_row_matrix<T>(a_d);
  const orc::MatrixXd a_r = a.template cast<double>();
  const dvec b = to_d(to_t<T>(normal_vec(n, gen)));
  std::vector<T> x(n);
  ra::cg_options<T> opt;
  opt.max_iterations = 3;
  const auto res = ra::conjugate_gradient<T>(dense_op(a), to_t<T>(b), x, T(0), opt);
  EXPECT_FALSE(res.converged);
  EXPECT_FALSE(res.breakdown);
  EXPECT_EQ(res.iterations, 3u);
  const double r = orc::residual(a_r, 0.0, b, to_d(x));
  EXPECT_NEAR(double(res.residual_norm), r, 1e-4 * r);
  EXPECT_GT(double(res.relative_residual), double(opt.tolerance));
  // Each CG iterate minimises the A-norm error over its Krylov space, so that error went down
  // (the residual itself need not).
  const orc::VectorXd xs = orc::to_eig(orc::solve_spd(a_r, 0.0, b)), e = orc::to_eig(to_d(x)) - xs;
  EXPECT_LT(e.dot(a_r * e), xs.dot(a_r * xs));
}

// Zero right-hand side, warm start at the solution, breakdown on an indefinite operator and on a
// right-hand side in the null space of an undamped Fisher.
TYPED_TEST(InfoGeometryTest, ConjugateGradientEdgeCases) {
  using T = TypeParam;
  const std::size_t n = 8;
  ra::row_matrix<T> a = ra::row_matrix<T>::Identity(n, n) * T(2);
  std::vector<T> x(n, T(7)), zero(n, T(0));
  auto res = ra::conjugate_gradient<T>(dense_op(a), zero, x, T(0));
  EXPECT_TRUE(res.converged);
  EXPECT_EQ(res.iterations, 0u);
  EXPECT_EQ(res.residual_norm, T(0));
  for (T v : x) EXPECT_EQ(v, T(0));

  std::vector<T> b(n, T(4));
  std::fill(x.begin(), x.end(), T(2));  // the exact solution of 2x = 4
  ra::cg_options<T> warm;
  warm.warm_start = true;
  res = ra::conjugate_gradient<T>(dense_op(a), b, x, T(0), warm);
  EXPECT_TRUE(res.converged);
  EXPECT_EQ(res.iterations, 0u);
  EXPECT_EQ(res.applications, 1u);
  for (T v : x) EXPECT_EQ(v, T(2));

  const ra::row_matrix<T> neg = -a;
  res = ra::conjugate_gradient<T>(dense_op(neg), b, x, T(0));
  EXPECT_TRUE(res.breakdown);
  EXPECT_FALSE(res.converged);

  // (F + 0·I) x = 1: 1 spans the null space of F, so p₀ᵀFp₀ = 0 (up to rounding of Σp).
  const std::vector<T> p = {T(0.5), T(0.25), T(0.25)};
  const ra::categorical_fisher<T> f(p);
  std::vector<T> ones(3, T(1)), y(3);
  res = ra::conjugate_gradient<T>(f, ones, y, T(0));
  EXPECT_TRUE(res.breakdown);
  EXPECT_FALSE(res.converged);

  // With damping the same system is solvable: (F + λI)1 = λ1, so x = 1/λ.
  res = ra::conjugate_gradient<T>(f, ones, y, T(0.5));
  EXPECT_TRUE(res.converged);
  for (T v : y) EXPECT_NEAR(double(v), 2.0, 1e-5);
}

// CG on the damped categorical Fisher agrees with the closed form; at λ = 0 with g ⊥ 1, CG from
// x₀ = 0 stays in the range of F and returns the minimum-norm solution F⁺g (oracle: COD).
TYPED_TEST(InfoGeometryTest, ConjugateGradientOnFisherMatchesClosedForm) {
  using T = TypeParam;
  std::mt19937 gen(24);
  for (std::size_t n : {3u, 17u, 64u}) {
    const dvec p = random_probs<T>(n, gen, 1.0);
    const ra::categorical_fisher<T> f(to_t<T>(p));
    const dvec g = to_d(to_t<T>(normal_vec(n, gen)));
    ra::cg_options<T> opt;
    opt.tolerance = kCgTol<T>;
    opt.max_iterations = 4 * n;
    for (double lambda : {1e-2, 1.0}) {
      std::vector<T> x_cg(n), x_cf(n);
      const auto res = ra::conjugate_gradient<T>(f, to_t<T>(g), x_cg, T(lambda), opt);
      f.solve(to_t<T>(g), T(lambda), x_cf);
      EXPECT_TRUE(res.converged);
      // κ ≤ 1 + p_max/λ ≤ ~50, tolerance 1e-6 / 1e-13; observed float 9e-7, double 7.5e-14.
      EXPECT_LE(max_err(to_d(x_cg), to_d(x_cf), inf_norm(to_d(x_cf))), kSolveTol<T>)
          << "n=" << n << " lambda=" << lambda;
    }
    // λ = 0, g centred (in double, then rounded: 1ᵀg = 0 up to n·ε).
    dvec gc = normal_vec(n, gen);
    double mean = 0.0;
    for (double v : gc) mean += v / double(n);
    for (double& v : gc) v -= mean;
    gc = to_d(to_t<T>(gc));
    double sp = 0.0;
    for (double v : p) sp += v;
    dvec pn = p;
    for (double& v : pn) v /= sp;
    const dvec ref = orc::pinv_apply(orc::fisher(pn), gc);
    std::vector<T> x0(n);
    opt.tolerance = std::is_same_v<T, float> ? T(1e-4) : T(1e-10);
    const auto res0 = ra::conjugate_gradient<T>(f, to_t<T>(gc), x0, T(0), opt);
    EXPECT_TRUE(res0.converged) << "n=" << n;
    // κ on the range ≈ p_max/p_min ≲ 10² for sd 1, n ≤ 64, tolerance 1e-4 / 1e-10; observed
    // float 8.9e-5, double 3.3e-11.
    EXPECT_LE(max_err(to_d(x0), ref, inf_norm(ref)), tol<T>(2e-3, 1e-9)) << "n=" << n;
  }
}

// ================================================================================================
// Natural-gradient steps
// ================================================================================================

// θ ← θ − η (F + λI)⁻¹ g for logits: closed form and CG against the dense oracle step.
TYPED_TEST(InfoGeometryTest, LogitStepMatchesOracle) {
  using T = TypeParam;
  std::mt19937 gen(31);
  for (std::size_t n : {2u, 10u, 48u}) {
    const dvec theta = to_d(to_t<T>(normal_vec(n, gen)));
    const dvec g = to_d(to_t<T>(normal_vec(n, gen)));
    const double eta = 0.3, lambda = 0.05;
    // The oracle's p is the softmax of the same logits (in double); the library rounds p to T,
    // which moves F by ~ε relative: covered by kSolveTol (κ ≲ 20).
    const dvec dir = orc::solve_spd(orc::fisher(orc::softmax(theta)), double(T(lambda)), g);
    dvec ref(n);
    for (std::size_t i = 0; i < n; ++i) ref[i] = theta[i] - double(T(eta)) * dir[i];
    for (auto solver : {ra::natural_gradient_solver::closed_form,
                        ra::natural_gradient_solver::conjugate_gradient}) {
      auto th = to_t<T>(theta);
      ra::cg_options<T> opt;
      opt.tolerance = kCgTol<T>;
      const auto res =
          ra::natural_gradient_step_logits<T>(th, to_t<T>(g), T(eta), T(lambda), solver, opt);
      EXPECT_TRUE(res.converged);
      EXPECT_LE(max_err(to_d(th), ref, inf_norm(ref)), kSolveTol<T>) << "n=" << n;
    }
  }
}

// Adding a constant c to the gradient (a direction along 1, which does not move p) shifts the
// natural-gradient step by the constant c/λ and so leaves softmax(θ_new) unchanged.
TYPED_TEST(InfoGeometryTest, LogitStepInvariantToConstantGradientShift) {
  using T = TypeParam;
  std::mt19937 gen(32);
  const std::size_t n = 24;
  const dvec theta = to_d(to_t<T>(normal_vec(n, gen)));
  const dvec g = to_d(to_t<T>(normal_vec(n, gen)));
  dvec g_shift = g;
  for (double& v : g_shift) v += 0.75;
  g_shift = to_d(to_t<T>(g_shift));
  for (auto solver : {ra::natural_gradient_solver::closed_form,
                      ra::natural_gradient_solver::conjugate_gradient}) {
    auto a = to_t<T>(theta), b = to_t<T>(theta);
    ra::cg_options<T> opt;
    opt.tolerance = kCgTol<T>;
    ra::natural_gradient_step_logits<T>(a, to_t<T>(g), T(0.5), T(0.25), solver, opt);
    ra::natural_gradient_step_logits<T>(b, to_t<T>(g_shift), T(0.5), T(0.25), solver, opt);
    const dvec pa = orc::softmax(to_d(a)), pb = orc::softmax(to_d(b));
    // The logits themselves differ by the constant 0.5·0.75/0.25 = 1.5 ...
    double shift = 0.0;
    for (std::size_t i = 0; i < n; ++i) shift += (double(a[i]) - double(b[i])) / double(n);
    EXPECT_NEAR(shift, 1.5, tol<T>(1e-4, 1e-10));
    // ... which the softmax removes. float: the shifted logits carry an extra rounding of ~1.5·ε.
    EXPECT_LE(max_err(pa, pb, inf_norm(pa)), tol<T>(1e-5, 1e-12));
  }
}

// With the closed form at λ = 0, a logit step with a centred gradient is F⁺g (oracle: COD); and a
// small natural-gradient step on the cross-entropy −Σ q log p decreases it.
TYPED_TEST(InfoGeometryTest, LogitStepDecreasesCrossEntropy) {
  using T = TypeParam;
  std::mt19937 gen(33);
  const std::size_t n = 12;
  const dvec q = orc::softmax(normal_vec(n, gen));
  auto theta = to_t<T>(normal_vec(n, gen));
  auto loss = [&](const std::vector<T>& th) {
    const dvec p = orc::softmax(to_d(th));
    double l = 0.0;
    for (std::size_t i = 0; i < n; ++i) l -= q[i] * std::log(p[i]);
    return l;
  };
  const ra::natural_gradient_optimizer<T> opt({.learning_rate = T(0.5), .damping = T(0)});
  double prev = loss(theta);
  for (int step = 0; step < 5; ++step) {
    const dvec p = orc::softmax(to_d(theta));
    dvec g(n);
    for (std::size_t i = 0; i < n; ++i) g[i] = p[i] - q[i];  // ∂/∂θ of −Σ q log softmax(θ)
    opt.step_logits(theta, to_t<T>(g));
    const double l = loss(theta);
    EXPECT_LT(l, prev) << "step " << step;
    prev = l;
  }
}

// Empirical Fisher: F v, the explicit matrix and the diagonal against (1/N) Σ_s g_s g_sᵀ; a
// strided view (a block of a wider matrix) gives the same operator.
TYPED_TEST(InfoGeometryTest, EmpiricalFisherMatchesExplicitMatrix) {
  using T = TypeParam;
  std::mt19937 gen(41);
  for (auto [ns, np] :
       {std::pair<std::size_t, std::size_t>{1, 1}, {1, 9}, {5, 3}, {8, 33}, {20, 17}}) {
    std::vector<dvec> g(ns);
    ra::row_matrix<T> wide(Eigen::Index(ns), Eigen::Index(np + 5));
    for (std::size_t s = 0; s < ns; ++s) {
      g[s] = to_d(to_t<T>(normal_vec(np, gen)));
      for (std::size_t j = 0; j < np + 5; ++j)
        wide(Eigen::Index(s), Eigen::Index(j)) = j < np ? T(g[s][j]) : T(1e30);  // poison
    }
    const auto view = wide.leftCols(Eigen::Index(np));
    const ra::empirical_fisher<T> f(view);
    EXPECT_EQ(f.size(), np);
    EXPECT_EQ(f.samples(), ns);
    const orc::MatrixXd ref = orc::empirical_fisher(g);
    const dvec v = to_d(to_t<T>(normal_vec(np, gen)));
    std::vector<T> y(np);
    f.apply(to_t<T>(v), y);
    const dvec ref_y = orc::mat_vec(ref, v);
    // Two length-(N or P) dot products per output: error ≲ (√N + √P)·ε·|G|²|v| relative.
    const double scale = std::max(inf_norm(ref_y), 1.0);
    // Observed float 9e-8, double 3.8e-16.
    EXPECT_LE(max_err(to_d(y), ref_y, scale), tol<T>(1e-6, 1e-14)) << ns << "x" << np;
    const auto m = f.matrix();
    double merr = 0.0;
    for (Eigen::Index i = 0; i < ref.rows(); ++i)
      for (Eigen::Index j = 0; j < ref.cols(); ++j)
        merr = std::max(merr, std::abs(double(m(i, j)) - ref(i, j)));
    EXPECT_LE(merr / std::max(ref.cwiseAbs().maxCoeff(), 1.0), tol<T>(1e-5, 1e-13));
    dvec ref_d(np);
    for (std::size_t i = 0; i < np; ++i) ref_d[i] = ref(Eigen::Index(i), Eigen::Index(i));
    EXPECT_LE(max_err(to_d(f.diagonal()), ref_d, std::max(inf_norm(ref_d), 1.0)),
              tol<T>(1e-6, 1e-14));
  }
}

// The optimizer with the empirical Fisher: one step equals θ − η (GᵀG/N + λI)⁻¹ g (Cholesky),
// including the rank-deficient case N < P where only the damping makes the system solvable.
TYPED_TEST(InfoGeometryTest, OptimizerStepWithEmpiricalFisher) {
  using T = TypeParam;
  std::mt19937 gen(42);
  for (auto [ns, np] : {std::pair<std::size_t, std::size_t>{4, 30}, {40, 12}}) {
    ra::row_matrix<T> gm(static_cast<Eigen::Index>(ns), static_cast<Eigen::Index>(np));
    std::vector<dvec> g(ns);
    for (std::size_t s = 0; s < ns; ++s) {
      g[s] = to_d(to_t<T>(normal_vec(np, gen)));
      for (std::size_t j = 0; j < np; ++j) gm(Eigen::Index(s), Eigen::Index(j)) = T(g[s][j]);
    }
    const ra::empirical_fisher<T> f(gm);
    const dvec theta = to_d(to_t<T>(normal_vec(np, gen)));
    const dvec grad = to_d(to_t<T>(normal_vec(np, gen)));
    const double eta = 0.2, lambda = 0.3;
    ra::natural_gradient_config<T> cfg;
    cfg.learning_rate = T(eta);
    cfg.damping = T(lambda);
    cfg.cg.tolerance = kCgTol<T>;
    const ra::natural_gradient_optimizer<T> opt(cfg);
    auto th = to_t<T>(theta);
    const auto res = opt.step(th, to_t<T>(grad), f);
    EXPECT_TRUE(res.converged);
    // Rank ≤ N: at most min(N, P) + 1 distinct eigenvalues (+ a few for rounding).
    EXPECT_LE(res.iterations, std::min(ns, np) + 4);
    const dvec dir = orc::solve_spd(orc::empirical_fisher(g), double(T(lambda)), grad);
    dvec ref(np);
    for (std::size_t i = 0; i < np; ++i) ref[i] = theta[i] - double(T(eta)) * dir[i];
    // κ ≤ (‖G‖²/N + λ)/λ ≈ 10², tolerance 1e-6 / 1e-13; observed float 9e-8, double 1.6e-15.
    EXPECT_LE(max_err(to_d(th), ref, inf_norm(ref)), kSolveTol<T>) << ns << "x" << np;
  }
}

// ================================================================================================
// Fisher–Rao distance
// ================================================================================================

TYPED_TEST(InfoGeometryTest, FisherRaoClosedForms) {
  using T = TypeParam;
  const double pi = std::numbers::pi;
  const std::vector<T> p = {T(0.2), T(0.3), T(0.5)};
  EXPECT_EQ(ra::fisher_rao_distance<T>(p, p), T(0));
  // Built element by element: GCC 12 at -O3 -march=native (AVX-512) miscompiled the brace
  // initialiser {0.5, 0.5, 0, 0} of std::vector<double> into {0.5, 0.5, 0.5, 0.5} here.
  std::vector<T> a(4, T(0)), b(4, T(0));
  a[0] = a[1] = T(0.5);
  b[2] = T(0.25);
  b[3] = T(0.75);
  // Disjoint supports: BC = 0 → 2·acos(0) = π.
  EXPECT_NEAR(double(ra::fisher_rao_distance<T>(a, b)), pi, 4e-7);
  EXPECT_LE(ra::fisher_rao_distance<T>(a, b), std::numbers::pi_v<T>);
  EXPECT_EQ(ra::bhattacharyya_coefficient<T>(a, b), T(0));
  // Vertices of the simplex are at distance π; n = 1 has a single point.
  const std::vector<T> one = {T(1)};
  EXPECT_EQ(ra::fisher_rao_distance<T>(one, one), T(0));
  // Two-point distributions: d = 2·acos(√(p₁q₁) + √(p₂q₂)).
  for (double p1 : {0.05, 0.3, 0.5, 0.9}) {
    for (double q1 : {0.01, 0.4, 0.77, 0.999}) {
      const std::vector<T> pp = {T(p1), T(1 - p1)}, qq = {T(q1), T(1 - q1)};
      const double pd1 = double(pp[0]), pd2 = double(pp[1]), qd1 = double(qq[0]),
                   qd2 = double(qq[1]);
      const double ref =
          2.0 * std::acos(std::min(1.0, std::sqrt(pd1 * qd1) + std::sqrt(pd2 * qd2)));
      // Far from 0 the formula is well conditioned: a few ε relative.
      EXPECT_NEAR(double(ra::fisher_rao_distance<T>(pp, qq)), ref, tol<T>(2e-6, 1e-14))
          << p1 << " " << q1;
      EXPECT_NEAR(double(ra::bhattacharyya_coefficient<T>(pp, qq)),
                  std::sqrt(pd1 * qd1) + std::sqrt(pd2 * qd2), 1e-6);
    }
  }
}

// Random distributions: oracle formula, symmetry, the triangle inequality and the range [0, π].
TYPED_TEST(InfoGeometryTest, FisherRaoMetricProperties) {
  using T = TypeParam;
  std::mt19937 gen(51);
  std::uniform_int_distribution<std::size_t> size(2, 40);
  for (int rep = 0; rep < 60; ++rep) {
    const std::size_t n = size(gen);
    const auto p = to_t<T>(random_probs<T>(n, gen, 2.0));
    const auto q = to_t<T>(random_probs<T>(n, gen, 2.0));
    const auto r = to_t<T>(random_probs<T>(n, gen, 2.0));
    const T pq = ra::fisher_rao_distance<T>(p, q);
    const T qp = ra::fisher_rao_distance<T>(q, p);
    const T qr = ra::fisher_rao_distance<T>(q, r);
    const T pr = ra::fisher_rao_distance<T>(p, r);
    EXPECT_EQ(pq, qp);
    EXPECT_GE(pq, T(0));
    EXPECT_LE(pq, std::numbers::pi_v<T>);
    // Triangle inequality, with the rounding of three distances as slack.
    EXPECT_LE(double(pr), double(pq) + double(qr) + 1e-5);
    // Oracle: random pairs are far apart (d ≳ 0.3), where acos is well conditioned.
    const double ref = orc::fisher_rao(to_d(p), to_d(q));
    EXPECT_NEAR(double(pq), ref, tol<T>(1e-5, 1e-12)) << "n=" << n;
  }
}

// Locally d_FR is the Fisher norm of the logit displacement: d(softmax θ, softmax(θ + εv))² =
// ε² vᵀFv + O(ε³) (this fixes the factor-2 convention), and the chord formula keeps full
// relative accuracy at tiny distances where 2·acos(BC) would lose half the digits.
TEST(InfoGeometry, FisherRaoMatchesFisherMetricLocally) {
  std::mt19937 gen(52);
  const std::size_t n = 16;
  const dvec theta = normal_vec(n, gen), v = normal_vec(n, gen);
  const dvec p = orc::softmax(theta);
  const double vfv = orc::to_eig(v).dot(orc::fisher(p) * orc::to_eig(v));
  for (double eps : {1e-2, 1e-4, 1e-6}) {
    dvec th2 = theta;
    for (std::size_t i = 0; i < n; ++i) th2[i] += eps * v[i];
    const dvec q = orc::softmax(th2);
    const double d = ra::fisher_rao_distance<double>(p, q);
    // Relative O(ε) from the third-order term (observed 3e-3·ε/1e-2).
    EXPECT_NEAR(d / (eps * std::sqrt(vfv)), 1.0, std::max(0.5 * eps, 1e-9)) << "eps=" << eps;
  }
}

// ================================================================================================
// Validation
// ================================================================================================

TYPED_TEST(InfoGeometryTest, ValidationErrors) {
  using T = TypeParam;
  const T nan = std::numeric_limits<T>::quiet_NaN(), inf = std::numeric_limits<T>::infinity();
  const std::vector<T> p = {T(0.25), T(0.75)};
  const std::vector<T> empty;
  // Probability vectors.
  EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_argument>([&] {
                       ra::categorical_fisher<T>(std::vector<T>{T(-0.1), T(1.1)});
                     }),
                     "probabilities[0]");
  EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_argument>([&] {
                       ra::categorical_fisher<T>(std::vector<T>{T(0.5), T(0.6)});
                     }),
                     "sums to");
  EXPECT_MESSAGE_HAS(thrown_message<ra::non_finite_input>([&] {
                       ra::categorical_fisher<T>(std::vector<T>{nan, T(1)});
                     }),
                     "probabilities[0]");
  EXPECT_MESSAGE_HAS(
      thrown_message<ra::invalid_argument>([&] { ra::categorical_fisher<T>{std::span(empty)}; }),
      "empty");
  // Logits.
  EXPECT_MESSAGE_HAS(thrown_message<ra::non_finite_input>([&] {
                       (void)ra::categorical_fisher<T>::from_logits(std::vector<T>{T(0), nan});
                     }),
                     "logits[1]");
  EXPECT_MESSAGE_HAS(thrown_message<ra::non_finite_input>([&] {
                       (void)ra::categorical_fisher<T>::from_logits(std::vector<T>{inf, T(0)});
                     }),
                     "logits[0]");
  EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_argument>([&] {
                       (void)ra::categorical_fisher<T>::from_logits(std::vector<T>{-inf, -inf});
                     }),
                     "all -inf");
  // Operator sizes and damping.
  const ra::categorical_fisher<T> f(p);
  std::vector<T> x3(3), x2(2), g2 = {T(1), T(-1)};
  EXPECT_MESSAGE_HAS(thrown_message<ra::dimension_mismatch>([&] { f.apply(x3, x2); }),
                     "x.size() is 3, expected 2");
  EXPECT_MESSAGE_HAS(thrown_message<ra::dimension_mismatch>([&] { f.apply(x2, x3); }), "y.size()");
  EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_argument>([&] { f.solve(g2, T(-1), x2); }),
                     "damping = -1");
  EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_argument>([&] { f.solve(g2, nan, x2); }),
                     "damping");
  EXPECT_MESSAGE_HAS(thrown_message<ra::non_finite_input>([&] {
                       f.solve(std::vector<T>{T(1), inf}, T(1), x2);
                     }),
                     "g[1]");
  // Conjugate gradient.
  EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_argument>(
                         [&] { (void)ra::conjugate_gradient<T>(f, g2, x2, T(-0.5)); }),
                     "damping");
  EXPECT_MESSAGE_HAS(thrown_message<ra::dimension_mismatch>(
                         [&] { (void)ra::conjugate_gradient<T>(f, g2, x3, T(1)); }),
                     "x.size()");
  EXPECT_MESSAGE_HAS(thrown_message<ra::dimension_mismatch>(
                         [&] { (void)ra::conjugate_gradient<T>(f, x3, x2, T(1)); }),
                     "b.size()");
  EXPECT_MESSAGE_HAS(thrown_message<ra::non_finite_input>([&] {
                       (void)ra::conjugate_gradient<T>(f, std::vector<T>{nan, T(0)}, x2, T(1));
                     }),
                     "b[0]");
  ra::cg_options<T> bad;
  bad.tolerance = T(-1);
  EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_config>(
                         [&] { (void)ra::conjugate_gradient<T>(f, g2, x2, T(1), bad); }),
                     "tolerance");
  ra::cg_options<T> warm;
  warm.warm_start = true;
  std::vector<T> xn = {nan, T(0)};
  EXPECT_MESSAGE_HAS(thrown_message<ra::non_finite_input>(
                         [&] { (void)ra::conjugate_gradient<T>(f, g2, xn, T(1), warm); }),
                     "warm start");
  // Optimizer configuration and step.
  EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_config>(
                         [&] { ra::natural_gradient_optimizer<T>({.learning_rate = T(0)}); }),
                     "learning_rate");
  EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_config>(
                         [&] { ra::natural_gradient_optimizer<T>({.learning_rate = nan}); }),
                     "learning_rate");
  EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_config>(
                         [&] { ra::natural_gradient_optimizer<T>({.damping = T(-1e-3)}); }),
                     "damping");
  EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_config>(
                         [&] { ra::natural_gradient_optimizer<T>({.cg = {.tolerance = nan}}); }),
                     "cg.tolerance");
  const ra::natural_gradient_optimizer<T> opt;
  std::vector<T> params = {T(1), T(2)};
  EXPECT_THROW((void)opt.step(std::span<T>(x3), g2, f), ra::dimension_mismatch);
  EXPECT_THROW((void)opt.step(params, std::vector<T>{T(1)}, f), ra::dimension_mismatch);
  std::vector<T> bad_params = {T(1), inf};
  EXPECT_MESSAGE_HAS(
      thrown_message<ra::non_finite_input>([&] { (void)opt.step(bad_params, g2, f); }),
      "params[1]");
  EXPECT_MESSAGE_HAS(
      thrown_message<ra::non_finite_input>([&] { (void)opt.step(params, bad_params, f); }),
      "grad[1]");
  EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_argument>([&] {
                       std::vector<T> th = {T(0), T(0)};
                       (void)ra::natural_gradient_step_logits<T>(th, g2, T(-1), T(0.1));
                     }),
                     "learning_rate");
  // Empirical Fisher.
  ra::row_matrix<T> gm(2, 3);
  gm << T(1), T(2), T(3), T(4), nan, T(6);
  EXPECT_MESSAGE_HAS(thrown_message<ra::non_finite_input>([&] { ra::empirical_fisher<T> e(gm); }),
                     "per_sample_gradients[1][1]");
  const ra::row_matrix<T> none(0, 3);
  EXPECT_THROW(ra::empirical_fisher<T>{none}, ra::invalid_argument);
  // Fisher–Rao.
  const std::vector<T> q3 = {T(0.2), T(0.3), T(0.5)};
  EXPECT_MESSAGE_HAS(
      thrown_message<ra::dimension_mismatch>([&] { (void)ra::fisher_rao_distance<T>(p, q3); }),
      "q.size() is 3, expected 2");
  EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_argument>([&] {
                       (void)ra::fisher_rao_distance<T>(std::vector<T>{T(1.5), T(-0.5)}, p);
                     }),
                     "p[1]");
  EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_argument>([&] {
                       (void)ra::fisher_rao_distance<T>(p, std::vector<T>{T(0.3), T(0.3)});
                     }),
                     "q sums to");
  EXPECT_MESSAGE_HAS(thrown_message<ra::non_finite_input>([&] {
                       (void)ra::fisher_rao_distance<T>(p, std::vector<T>{nan, T(1)});
                     }),
                     "q[0]");
  EXPECT_THROW((void)ra::fisher_rao_distance<T>(empty, empty), ra::invalid_argument);
  // Within the simplex tolerance is accepted (a float softmax never sums to exactly 1).
  const T tiny = ra::simplex_tolerance<T>(2) / T(4);
  EXPECT_NO_THROW((void)ra::fisher_rao_distance<T>(std::vector<T>{T(0.5) + tiny, T(0.5)}, p));
}

}  // namespace
