// Information-bottleneck family (info_bottleneck/{kl_divergence,bottleneck,compression}.hpp), for
// float and double, against independent double-precision oracles written below from the
// mathematics (the `ib_oracle` namespace includes no library header):
// - Gaussian KL: the textbook closed forms with variances (not log-variance/expm1 forms), plus
//   hand-computed values; gradients by central finite differences of the oracle.
// - Categorical KL / JS: Σ p log(p/q) and JS = H(m) − ½H(p) − ½H(q) (entropy form), hand values.
// - VIB layer: a loop-based forward/loss L = Σ c ⊙ z + β·(1/B)Σ KL_b with ε held fixed; every
//   gradient (W_μ, b_μ, W_σ, b_σ, X) against central differences of that loss in double.
// - Reparameterisation: sample mean/variance of 200k draws vs μ, σ².
// - β schedules: the formulas evaluated by hand at chosen steps (incl. cycle boundaries).
// - Compression: p^{1/T}/Σ p^{1/T} computed directly; top-mass vs a brute-force minimal subset.
//
// Tolerances (kTol<T>, relative to max(|ref|, 1) unless stated):
// - float 2e-5: inputs are O(1) and sums have ≤ ~100 terms, so float rounding is ≲ 100·6e-8;
//   observed ≲ 2e-6; real mistakes (a missing ½, wrong sign, wrong clamp) are ≥ 1e-2.
// - double 1e-12: the same argument with 2^-53.
// Finite differences use h = 1e-6 in double (truncation O(h²) ≈ 1e-12·|f'''|, cancellation
// ≈ 1e-16/1e-6 = 1e-10), checked to 1e-6 for double results; float library gradients are checked
// to 2e-4 (GEMM rounding of ~20-term sums plus the float-rounded inputs, observed ≲ 5e-6).
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
#include "ruvector/attention/core/rng.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/info_bottleneck/bottleneck.hpp"
#include "ruvector/attention/info_bottleneck/compression.hpp"
#include "ruvector/attention/info_bottleneck/kl_divergence.hpp"
#include "support/helpers.hpp"

namespace ra = ruvector::attention;

// ================================================================================================
// Independent oracle (double, no library header)
// ================================================================================================
namespace ib_oracle {

// KL(N(μ, diag σ²) ‖ N(0, I)) with σ² = exp(lv): ½ Σ (μ² + σ² − ln σ² − 1).
inline double kl_unit(const std::vector<double>& mu, const std::vector<double>& lv) {
  double s = 0.0;
  for (std::size_t i = 0; i < mu.size(); ++i) {
    const double var = std::exp(lv[i]);
    s += mu[i] * mu[i] + var - std::log(var) - 1.0;
  }
  return 0.5 * s;
}

// KL(N1 ‖ N2) = ½ Σ [ln(σ2²/σ1²) + (σ1² + (μ1 − μ2)²)/σ2² − 1].
inline double kl_gauss(const std::vector<double>& m1, const std::vector<double>& lv1,
                       const std::vector<double>& m2, const std::vector<double>& lv2) {
  double s = 0.0;
  for (std::size_t i = 0; i < m1.size(); ++i) {
    const double v1 = std::exp(lv1[i]), v2 = std::exp(lv2[i]);
    s += std::log(v2 / v1) + (v1 + (m1[i] - m2[i]) * (m1[i] - m2[i])) / v2 - 1.0;
  }
  return 0.5 * s;
}

inline std::vector<double> normalised(std::vector<double> p) {
  double s = 0.0;
  for (double v : p) s += v;
  for (double& v : p) v /= s;
  return p;
}

inline double entropy(const std::vector<double>& p) {
  double h = 0.0;
  for (double v : p)
    if (v > 0.0) h -= v * std::log(v);
  return h;
}

inline double kl_cat(const std::vector<double>& p, const std::vector<double>& q) {
  double s = 0.0;
  for (std::size_t i = 0; i < p.size(); ++i)
    if (p[i] > 0.0) s += p[i] * std::log(p[i] / q[i]);
  return s;
}

// JS via entropies: H(½(p+q)) − ½H(p) − ½H(q).
inline double js(const std::vector<double>& p, const std::vector<double>& q) {
  std::vector<double> m(p.size());
  for (std::size_t i = 0; i < p.size(); ++i) m[i] = 0.5 * (p[i] + q[i]);
  return entropy(m) - 0.5 * entropy(p) - 0.5 * entropy(q);
}

// p^{1/T} / Σ p^{1/T}.
inline std::vector<double> temper(const std::vector<double>& p, double t) {
  std::vector<double> w(p.size());
  for (std::size_t i = 0; i < p.size(); ++i) w[i] = p[i] > 0.0 ? std::pow(p[i], 1.0 / t) : 0.0;
  return normalised(w);
}

// Smallest number of entries whose mass reaches m (brute force over all subsets).
inline std::size_t min_cover(const std::vector<double>& p, double m) {
  const std::size_t n = p.size();
  std::size_t best = n;
  for (std::uint32_t mask = 1; mask < (1u << n); ++mask) {
    double s = 0.0;
    std::size_t k = 0;
    for (std::size_t i = 0; i < n; ++i)
      if (mask & (1u << i)) s += p[i], ++k;
    if (s >= m - 1e-12 && k < best) best = k;
  }
  return best;
}

// The VIB layer, loops only. Weights row-major [dz][din].
struct vib {
  std::size_t din = 0, dz = 0;
  double lo = -10.0, hi = 10.0;
  std::vector<double> wmu, bmu, wlv, blv;
};

// L = Σ_bj c_bj z_bj + β (1/B) Σ_b ½ Σ_j (μ² + σ² − ln σ² − 1), z = μ + σ ε, ln σ² clamped.
inline double vib_loss(const vib& P, const std::vector<double>& x, std::size_t B,
                       const std::vector<double>& eps, const std::vector<double>& c, double beta) {
  double L = 0.0, kl = 0.0;
  for (std::size_t b = 0; b < B; ++b) {
    for (std::size_t j = 0; j < P.dz; ++j) {
      double mu = P.bmu[j], lv = P.blv[j];
      for (std::size_t i = 0; i < P.din; ++i) {
        mu += P.wmu[j * P.din + i] * x[b * P.din + i];
        lv += P.wlv[j * P.din + i] * x[b * P.din + i];
      }
      lv = std::min(std::max(lv, P.lo), P.hi);
      const double var = std::exp(lv);
      L += c[b * P.dz + j] * (mu + std::sqrt(var) * eps[b * P.dz + j]);
      kl += 0.5 * (mu * mu + var - lv - 1.0);
    }
  }
  return L + beta * kl / static_cast<double>(B);
}

// Central difference of f at v[k].
template <class F>
double central_diff(std::vector<double>& v, std::size_t k, F&& f, double h = 1e-6) {
  const double saved = v[k];
  v[k] = saved + h;
  const double fp = f();
  v[k] = saved - h;
  const double fm = f();
  v[k] = saved;
  return (fp - fm) / (2.0 * h);
}

}  // namespace ib_oracle

namespace {

using ruvector_test::thrown_message;

#define EXPECT_MESSAGE_HAS(msg, needle) \
  EXPECT_NE(std::string(msg).find(needle), std::string::npos) << "message: " << (msg)

template <class T>
constexpr double kTol = std::is_same_v<T, float> ? 2e-5 : 1e-12;
template <class T>
constexpr double kGradTol = std::is_same_v<T, float> ? 2e-4 : 1e-6;

template <class T>
class InfoBottleneckTest : public ::testing::Test {};
using Scalars = ::testing::Types<float, double>;
TYPED_TEST_SUITE(InfoBottleneckTest, Scalars);

// Random values rounded to T (returned as double so the oracle sees exactly what T sees).
template <class T>
std::vector<double> random_vec(std::mt19937& gen, std::size_t n, double lo, double hi) {
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<double> v(n);
  for (auto& x : v) x = static_cast<double>(static_cast<T>(u(gen)));
  return v;
}

template <class T>
std::vector<T> as(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}

template <class T>
ra::row_matrix<T> as_mat(const std::vector<double>& v, std::size_t r, std::size_t c) {
  ra::row_matrix<T> m(static_cast<Eigen::Index>(r), static_cast<Eigen::Index>(c));
  for (std::size_t i = 0; i < r * c; ++i) m.data()[i] = static_cast<T>(v[i]);
  return m;
}

template <class T>
typename ra::vib_parameters<T>::vector_type as_col(const std::vector<double>& v) {
  typename ra::vib_parameters<T>::vector_type m(static_cast<Eigen::Index>(v.size()));
  for (std::size_t i = 0; i < v.size(); ++i) m(static_cast<Eigen::Index>(i)) = static_cast<T>(v[i]);
  return m;
}

double rel_err(double got, double ref) {
  return std::abs(got - ref) / std::max(std::abs(ref), 1.0);
}

// ================================================================================================
// Gaussian KL
// ================================================================================================

TYPED_TEST(InfoBottleneckTest, UnitGaussianKlKnownValues) {
  using T = TypeParam;
  // μ = 1, σ² = 1: ½·1.  μ = 0, σ² = 4: ½(4 − ln 4 − 1).
  const std::vector<T> mu{T(1), T(0)}, lv{T(0), static_cast<T>(std::log(4.0))};
  const double ref = 0.5 + 0.5 * (4.0 - std::log(4.0) - 1.0);
  EXPECT_LE(rel_err(ra::kl_to_standard_normal<T>(mu, lv), ref), kTol<T>);
  const std::vector<T> zero(17, T(0));
  EXPECT_EQ(ra::kl_to_standard_normal<T>(zero, zero), T(0));  // equality iff q = N(0, I)
}

TYPED_TEST(InfoBottleneckTest, UnitGaussianKlMatchesOracle) {
  using T = TypeParam;
  std::mt19937 gen(11);
  for (std::size_t n : {1u, 3u, 8u, 17u, 64u, 101u}) {
    const auto mu = random_vec<T>(gen, n, -2.0, 2.0);
    const auto lv = random_vec<T>(gen, n, -3.0, 3.0);
    const double got = ra::kl_to_standard_normal<T>(as<T>(mu), as<T>(lv));
    const double ref = ib_oracle::kl_unit(mu, lv);
    EXPECT_LE(rel_err(got, ref), kTol<T>) << "n=" << n;
    EXPECT_GT(got, 0.0);
  }
}

TYPED_TEST(InfoBottleneckTest, UnitGaussianKlGradientMatchesFiniteDifferences) {
  using T = TypeParam;
  std::mt19937 gen(12);
  const std::size_t n = 9;
  auto mu = random_vec<T>(gen, n, -2.0, 2.0);
  auto lv = random_vec<T>(gen, n, -2.0, 2.0);
  std::vector<T> gmu(n), glv(n);
  ra::kl_to_standard_normal_grad<T>(as<T>(mu), as<T>(lv), gmu, glv);
  const auto f = [&] { return ib_oracle::kl_unit(mu, lv); };
  for (std::size_t i = 0; i < n; ++i) {
    EXPECT_LE(rel_err(gmu[i], ib_oracle::central_diff(mu, i, f)), kGradTol<T>) << i;
    EXPECT_LE(rel_err(glv[i], ib_oracle::central_diff(lv, i, f)), kGradTol<T>) << i;
  }
}

TYPED_TEST(InfoBottleneckTest, GaussianToGaussianKl) {
  using T = TypeParam;
  std::mt19937 gen(13);
  for (int trial = 0; trial < 20; ++trial) {
    const std::size_t n = 1 + static_cast<std::size_t>(trial) * 3;
    const auto m1 = random_vec<T>(gen, n, -2.0, 2.0), l1 = random_vec<T>(gen, n, -2.0, 2.0);
    const auto m2 = random_vec<T>(gen, n, -2.0, 2.0), l2 = random_vec<T>(gen, n, -2.0, 2.0);
    const double got = ra::kl_diag_gaussians<T>(as<T>(m1), as<T>(l1), as<T>(m2), as<T>(l2));
    EXPECT_LE(rel_err(got, ib_oracle::kl_gauss(m1, l1, m2, l2)), kTol<T>);
    EXPECT_GT(got, 0.0);  // KL ≥ 0, > 0 for distinct distributions
    // KL(N1 ‖ N1) = 0 exactly; KL(N1 ‖ N(0, I)) = the unit-Gaussian form.
    EXPECT_EQ(ra::kl_diag_gaussians<T>(as<T>(m1), as<T>(l1), as<T>(m1), as<T>(l1)), T(0));
    const std::vector<T> zero(n, T(0));
    EXPECT_LE(rel_err(ra::kl_diag_gaussians<T>(as<T>(m1), as<T>(l1), zero, zero),
                      ib_oracle::kl_unit(m1, l1)),
              kTol<T>);
  }
  // Symmetric case: equal variances → KL(1‖2) = KL(2‖1) = ½ Σ Δμ² / σ².
  const std::vector<T> a{T(0.5), T(-1)}, b{T(-0.5), T(1)}, lv{T(0), static_cast<T>(std::log(2.0))};
  const double ref = 0.5 * (1.0 / 1.0 + 4.0 / 2.0);
  EXPECT_LE(rel_err(ra::kl_diag_gaussians<T>(a, lv, b, lv), ref), kTol<T>);
  EXPECT_LE(rel_err(ra::kl_diag_gaussians<T>(b, lv, a, lv), ref), kTol<T>);
  // Asymmetric in the variances: KL(N(0,1) ‖ N(0,4)) ≠ KL(N(0,4) ‖ N(0,1)).
  const std::vector<T> z{T(0)}, l0{T(0)}, l4{static_cast<T>(std::log(4.0))};
  EXPECT_LE(rel_err(ra::kl_diag_gaussians<T>(z, l0, z, l4), 0.5 * (std::log(4.0) + 0.25 - 1.0)),
            kTol<T>);
  EXPECT_LE(rel_err(ra::kl_diag_gaussians<T>(z, l4, z, l0), 0.5 * (-std::log(4.0) + 4.0 - 1.0)),
            kTol<T>);
}

// ================================================================================================
// Categorical KL and Jensen–Shannon
// ================================================================================================

TYPED_TEST(InfoBottleneckTest, CategoricalKlClosedForms) {
  using T = TypeParam;
  const std::vector<T> p{T(0.5), T(0.5)}, q{T(0.25), T(0.75)};
  const double ref = 0.5 * std::log(2.0) + 0.5 * std::log(0.5 / 0.75);
  EXPECT_LE(rel_err(ra::kl_categorical<T>(p, q), ref), kTol<T>);
  EXPECT_EQ(ra::kl_categorical<T>(q, q), T(0));
  // 0·log 0 = 0: p's zero entry contributes nothing, even where q is 0 too.
  const std::vector<T> p0{T(0), T(1), T(0)}, q0{T(0), T(0.5), T(0.5)};
  EXPECT_LE(rel_err(ra::kl_categorical<T>(p0, q0), std::log(2.0)), kTol<T>);
  // Unnormalised inputs are normalised by their sums.
  const std::vector<T> p2{T(2), T(2)}, q2{T(1), T(3)};
  EXPECT_LE(rel_err(ra::kl_categorical<T>(p2, q2), ref), kTol<T>);
  // q_i = 0 where p_i > 0: clamped to eps → p_i log(p_i / eps); eps = 0 → +inf.
  const std::vector<T> pa{T(0.5), T(0.5)}, qa{T(1), T(0)};
  const double eps = 1e-6;
  const double ref_eps = 0.5 * std::log(0.5 / 1.0) + 0.5 * std::log(0.5 / eps);
  EXPECT_LE(rel_err(ra::kl_categorical<T>(pa, qa, static_cast<T>(eps)), ref_eps), kTol<T>);
  EXPECT_TRUE(std::isinf(ra::kl_categorical<T>(pa, qa, T(0))));
  // Random pairs against the oracle; KL ≥ 0.
  std::mt19937 gen(21);
  for (int t = 0; t < 20; ++t) {
    const std::size_t n = 1 + static_cast<std::size_t>(t);
    const auto a = random_vec<T>(gen, n, 0.01, 1.0), b = random_vec<T>(gen, n, 0.01, 1.0);
    const double got = ra::kl_categorical<T>(as<T>(a), as<T>(b));
    EXPECT_LE(rel_err(got, ib_oracle::kl_cat(ib_oracle::normalised(a), ib_oracle::normalised(b))),
              kTol<T>);
    EXPECT_GE(got, 0.0);
  }
}

TYPED_TEST(InfoBottleneckTest, JensenShannon) {
  using T = TypeParam;
  const double ln2 = std::numbers::ln2;
  // Disjoint supports reach ln 2; identical distributions give 0.
  const std::vector<T> a{T(0.3), T(0.7), T(0), T(0)}, b{T(0), T(0), T(0.1), T(0.9)};
  EXPECT_LE(std::abs(ra::js_divergence<T>(a, b) - ln2), kTol<T>);
  EXPECT_EQ(ra::js_divergence<T>(a, a), T(0));
  EXPECT_LE(std::abs(ra::js_distance<T>(a, b) - std::sqrt(ln2)), kTol<T>);
  // Closed form: p = (1, 0), q = (½, ½): m = (¾, ¼); JS = H(m) − ½ H(q) = H(m) − ½ ln 2.
  const std::vector<T> p{T(1), T(0)}, q{T(0.5), T(0.5)};
  const double hm = -(0.75 * std::log(0.75) + 0.25 * std::log(0.25));
  EXPECT_LE(std::abs(ra::js_divergence<T>(p, q) - (hm - 0.5 * ln2)), kTol<T>);
  std::mt19937 gen(22);
  for (int t = 0; t < 25; ++t) {
    const std::size_t n = 1 + static_cast<std::size_t>(t % 9);
    const auto x = random_vec<T>(gen, n, 0.0, 1.0), y = random_vec<T>(gen, n, 0.0, 1.0);
    const double pq = ra::js_divergence<T>(as<T>(x), as<T>(y));
    const double qp = ra::js_divergence<T>(as<T>(y), as<T>(x));
    EXPECT_LE(std::abs(pq - ib_oracle::js(ib_oracle::normalised(x), ib_oracle::normalised(y))),
              kTol<T>);
    EXPECT_LE(std::abs(pq - qp), kTol<T>);  // symmetric
    EXPECT_GE(pq, 0.0);
    EXPECT_LE(pq, ln2);
  }
}

TYPED_TEST(InfoBottleneckTest, DivergenceErrors) {
  using T = TypeParam;
  const std::vector<T> two{T(0.5), T(0.5)}, three{T(0.2), T(0.3), T(0.5)}, empty;
  const T nan = std::numeric_limits<T>::quiet_NaN();
  EXPECT_THROW((void)ra::kl_to_standard_normal<T>(two, three), ra::dimension_mismatch);
  EXPECT_THROW((void)ra::kl_to_standard_normal<T>(empty, empty), ra::invalid_argument);
  EXPECT_THROW((void)ra::kl_to_standard_normal<T>(two, std::vector<T>{T(0), nan}),
               ra::non_finite_input);
  EXPECT_THROW((void)ra::kl_diag_gaussians<T>(two, two, two, three), ra::dimension_mismatch);
  std::vector<T> g2(2), g3(3);
  EXPECT_THROW(ra::kl_to_standard_normal_grad<T>(two, two, g2, g3), ra::dimension_mismatch);
  EXPECT_THROW((void)ra::kl_categorical<T>(two, three), ra::dimension_mismatch);
  const auto msg = thrown_message<ra::invalid_argument>([&] {
    (void)ra::kl_categorical<T>(std::vector<T>{T(0.5), T(-0.1)}, two);
  });
  EXPECT_MESSAGE_HAS(msg, "p[1]");
  EXPECT_THROW((void)ra::kl_categorical<T>(two, std::vector<T>{T(0), T(0)}), ra::invalid_argument);
  EXPECT_THROW((void)ra::kl_categorical<T>(two, two, T(-1)), ra::invalid_argument);
  const auto nmsg = thrown_message<ra::non_finite_input>([&] {
    (void)ra::js_divergence<T>(two, std::vector<T>{nan, T(1)});
  });
  EXPECT_MESSAGE_HAS(nmsg, "q[0]");
  EXPECT_THROW((void)ra::js_divergence<T>(empty, empty), ra::invalid_argument);
  EXPECT_THROW((void)ra::categorical_entropy<T>(std::vector<T>{T(-1)}), ra::invalid_argument);
}

// ================================================================================================
// β schedules
// ================================================================================================

TEST(BetaSchedule, LinearAndCosine) {
  const auto lin = ra::beta_schedule::linear(0.0, 2.0, 10);
  EXPECT_DOUBLE_EQ(lin.beta(0), 0.0);
  EXPECT_DOUBLE_EQ(lin.beta(3), 0.6);
  EXPECT_DOUBLE_EQ(lin.beta(5), 1.0);
  EXPECT_DOUBLE_EQ(lin.beta(10), 2.0);
  EXPECT_DOUBLE_EQ(lin.beta(1000), 2.0);
  const auto down = ra::beta_schedule::linear(1.0, 0.5, 4);  // decreasing is allowed
  EXPECT_DOUBLE_EQ(down.beta(1), 0.875);
  const auto cos = ra::beta_schedule::cosine(0.0, 1.0, 8);
  EXPECT_DOUBLE_EQ(cos.beta(0), 0.0);
  EXPECT_NEAR(cos.beta(2), 0.5 * (1.0 - std::cos(std::numbers::pi / 4)), 1e-15);
  EXPECT_NEAR(cos.beta(4), 0.5, 1e-15);
  EXPECT_NEAR(cos.beta(6), 0.5 * (1.0 + std::sqrt(0.5)), 1e-15);
  EXPECT_DOUBLE_EQ(cos.beta(8), 1.0);
  EXPECT_DOUBLE_EQ(cos.beta(9), 1.0);
  EXPECT_DOUBLE_EQ(ra::beta_schedule::constant(0.25).beta(12345), 0.25);
}

TEST(BetaSchedule, CyclicalFu2019) {
  // T = 100 steps, R = 4 cycles (period 25), ratio 0.5: rise over 12.5 steps, then flat.
  const auto s = ra::beta_schedule::cyclical(0.0, 1.0, 100, 4, 0.5);
  EXPECT_DOUBLE_EQ(s.beta(0), 0.0);
  EXPECT_DOUBLE_EQ(s.beta(5), 0.4);    // τ = 0.2 → 0.2/0.5
  EXPECT_DOUBLE_EQ(s.beta(12), 0.96);  // τ = 0.48
  EXPECT_DOUBLE_EQ(s.beta(13), 1.0);   // τ = 0.52 ≥ ratio
  EXPECT_DOUBLE_EQ(s.beta(24), 1.0);
  EXPECT_DOUBLE_EQ(s.beta(25), 0.0);  // cycle boundary: back to β0
  EXPECT_DOUBLE_EQ(s.beta(30), 0.4);
  EXPECT_DOUBLE_EQ(s.beta(75), 0.0);
  EXPECT_DOUBLE_EQ(s.beta(99), 1.0);
  EXPECT_DOUBLE_EQ(s.beta(100), 1.0);  // after the last cycle: β1
  EXPECT_DOUBLE_EQ(s.beta(1000), 1.0);
  // Non-integer period: T = 10, R = 3 → P = 10/3, ratio 1 (rise over the whole cycle).
  const auto u = ra::beta_schedule::cyclical(0.1, 0.5, 10, 3, 1.0);
  EXPECT_NEAR(u.beta(3), 0.1 + 0.4 * 0.9, 1e-14);  // τ = 3/(10/3) = 0.9
  EXPECT_NEAR(u.beta(4), 0.1 + 0.4 * 0.2, 1e-14);  // τ = (4 − 10/3)/(10/3) = 0.2
  EXPECT_NEAR(u.beta(7), 0.1 + 0.4 * 0.1, 1e-14);  // τ = (7 − 20/3)/(10/3) = 0.1
}

TEST(BetaSchedule, InvalidConfigs) {
  EXPECT_THROW((void)ra::beta_schedule::linear(-0.1, 1.0, 10), ra::invalid_config);
  EXPECT_THROW((void)ra::beta_schedule::linear(0.0, std::nan(""), 10), ra::invalid_config);
  EXPECT_THROW((void)ra::beta_schedule::linear(0.0, 1.0, 0), ra::invalid_config);
  EXPECT_THROW((void)ra::beta_schedule::cosine(0.0, 1.0, 0), ra::invalid_config);
  EXPECT_THROW((void)ra::beta_schedule::constant(-1.0), ra::invalid_config);
  EXPECT_THROW((void)ra::beta_schedule::cyclical(0.0, 1.0, 100, 0, 0.5), ra::invalid_config);
  EXPECT_THROW((void)ra::beta_schedule::cyclical(0.0, 1.0, 3, 4, 0.5), ra::invalid_config);
  EXPECT_THROW((void)ra::beta_schedule::cyclical(0.0, 1.0, 100, 4, 0.0), ra::invalid_config);
  EXPECT_THROW((void)ra::beta_schedule::cyclical(0.0, 1.0, 100, 4, 1.5), ra::invalid_config);
}

// ================================================================================================
// The VIB layer
// ================================================================================================

// Random oracle parameters (rounded to T).
template <class T>
ib_oracle::vib random_vib(std::mt19937& gen, std::size_t din, std::size_t dz, double scale = 0.5) {
  ib_oracle::vib P;
  P.din = din;
  P.dz = dz;
  P.wmu = random_vec<T>(gen, dz * din, -scale, scale);
  P.bmu = random_vec<T>(gen, dz, -0.5, 0.5);
  P.wlv = random_vec<T>(gen, dz * din, -scale, scale);
  P.blv = random_vec<T>(gen, dz, -0.5, 0.5);
  return P;
}

template <class T>
ra::vib_parameters<T> to_params(const ib_oracle::vib& P) {
  ra::vib_parameters<T> p;
  p.w_mu = as_mat<T>(P.wmu, P.dz, P.din);
  p.b_mu = as_col<T>(P.bmu);
  p.w_logvar = as_mat<T>(P.wlv, P.dz, P.din);
  p.b_logvar = as_col<T>(P.blv);
  return p;
}

TYPED_TEST(InfoBottleneckTest, VibInitialisationIsSeededXavier) {
  using T = TypeParam;
  const ra::variational_bottleneck<T> a({12, 5, 42}), b({12, 5, 42}), c({12, 5, 43});
  const double bound = std::sqrt(6.0 / 17.0);
  const auto& pa = a.parameters();
  EXPECT_EQ(pa.w_mu, b.parameters().w_mu);
  EXPECT_EQ(pa.w_logvar, b.parameters().w_logvar);
  EXPECT_NE(pa.w_mu, c.parameters().w_mu);
  EXPECT_NE(pa.w_mu, pa.w_logvar);
  EXPECT_EQ(pa.w_mu.rows(), 5);
  EXPECT_EQ(pa.w_mu.cols(), 12);
  EXPECT_LE(static_cast<double>(pa.w_mu.cwiseAbs().maxCoeff()), bound);
  EXPECT_LE(static_cast<double>(pa.w_logvar.cwiseAbs().maxCoeff()), bound);
  EXPECT_GT(static_cast<double>(pa.w_mu.cwiseAbs().maxCoeff()), 0.5 * bound);  // spread out
  EXPECT_TRUE(pa.b_mu.isZero(0));
  EXPECT_TRUE(pa.b_logvar.isZero(0));
}

TYPED_TEST(InfoBottleneckTest, VibForwardMatchesOracle) {
  using T = TypeParam;
  std::mt19937 gen(31);
  const std::size_t B = 6, din = 7, dz = 4;
  const auto P = random_vib<T>(gen, din, dz);
  ra::variational_bottleneck<T> layer({din, dz, 0});
  layer.set_parameters(to_params<T>(P));
  const auto x = random_vec<T>(gen, B * din, -1.0, 1.0);
  const auto eps = random_vec<T>(gen, B * dz, -2.0, 2.0);
  const auto X = as_mat<T>(x, B, din);
  const auto r = layer.forward(X, as_mat<T>(eps, B, dz));
  const auto d = layer.forward(X);  // deterministic: z = μ
  double kl_sum = 0.0;
  for (std::size_t b = 0; b < B; ++b) {
    std::vector<double> mu(dz), lv(dz);
    for (std::size_t j = 0; j < dz; ++j) {
      mu[j] = P.bmu[j];
      lv[j] = P.blv[j];
      for (std::size_t i = 0; i < din; ++i) {
        mu[j] += P.wmu[j * din + i] * x[b * din + i];
        lv[j] += P.wlv[j * din + i] * x[b * din + i];
      }
      const auto bi = static_cast<Eigen::Index>(b), ji = static_cast<Eigen::Index>(j);
      EXPECT_LE(rel_err(r.mu(bi, ji), mu[j]), kTol<T>);
      EXPECT_LE(rel_err(r.logvar(bi, ji), lv[j]), kTol<T>);
      EXPECT_LE(rel_err(r.z(bi, ji), mu[j] + std::sqrt(std::exp(lv[j])) * eps[b * dz + j]),
                kTol<T>);
      EXPECT_EQ(d.z(bi, ji), d.mu(bi, ji));
      EXPECT_EQ(d.eps(bi, ji), T(0));
    }
    const double kl = ib_oracle::kl_unit(mu, lv);
    EXPECT_LE(rel_err(r.kl(static_cast<Eigen::Index>(b)), kl), kTol<T>);
    kl_sum += kl;
  }
  EXPECT_LE(rel_err(r.kl_mean, kl_sum / B), kTol<T>);
  EXPECT_LE(rel_err(r.kl_loss(T(0.3)), 0.3 * kl_sum / B), kTol<T>);
  EXPECT_LE(rel_err(d.kl_mean, kl_sum / B), kTol<T>);  // the KL does not depend on ε
  // encode(span) = the deterministic μ of one row.
  const auto e = layer.encode(std::span<const T>(X.row(2).data(), din));
  // encode(span) is a GEMV, the batch path a GEMM: equal up to summation order (kTol).
  for (std::size_t j = 0; j < dz; ++j)
    EXPECT_LE(rel_err(e[j], static_cast<double>(d.mu(2, static_cast<Eigen::Index>(j)))), kTol<T>);
}

TYPED_TEST(InfoBottleneckTest, VibSamplingIsSeededAndDeterministic) {
  using T = TypeParam;
  const ra::variational_bottleneck<T> layer({3, 5, 7});
  const ra::row_matrix<T> x = ra::row_matrix<T>::Constant(4, 3, T(0.25));
  ra::rng g1(99), g2(99), g3(100);
  const auto a = layer.forward(x, g1), b = layer.forward(x, g2), c = layer.forward(x, g3);
  EXPECT_EQ(a.z, b.z);
  EXPECT_EQ(a.eps, b.eps);
  EXPECT_NE(a.z, c.z);
  // Documented draw order: ε_bj = rng.normal<T>() row by row.
  ra::rng ref(99);
  for (Eigen::Index b2 = 0; b2 < 4; ++b2)
    for (Eigen::Index j = 0; j < 5; ++j) EXPECT_EQ(a.eps(b2, j), ref.normal<T>());
  // A second call continues the stream: different noise.
  const auto a2 = layer.forward(x, g1);
  EXPECT_NE(a2.eps, a.eps);
}

TYPED_TEST(InfoBottleneckTest, ReparameterisationMoments) {
  using T = TypeParam;
  // One input repeated N times: each latent coordinate j is N i.i.d. draws of N(μ_j, σ_j²).
  const std::size_t N = 200000, din = 2, dz = 3;
  ib_oracle::vib P;
  P.din = din;
  P.dz = dz;
  P.wmu = {0.5, -0.25, 1.0, 0.0, -0.5, 0.5};
  P.bmu = {0.25, -1.0, 2.0};
  P.wlv = {0.0, 0.0, 0.5, 0.0, 0.0, 0.0};
  P.blv = {0.0, -1.5, 1.0};
  ra::variational_bottleneck<T> layer({din, dz, 0});
  layer.set_parameters(to_params<T>(P));
  ra::row_matrix<T> X(static_cast<Eigen::Index>(N), static_cast<Eigen::Index>(din));
  X.col(0).setConstant(T(1));
  X.col(1).setConstant(T(2));
  ra::rng gen(2024);
  const auto r = layer.forward(X, gen);
  for (std::size_t j = 0; j < dz; ++j) {
    const double mu = P.bmu[j] + P.wmu[j * din] * 1.0 + P.wmu[j * din + 1] * 2.0;
    const double var = std::exp(P.blv[j] + P.wlv[j * din] * 1.0 + P.wlv[j * din + 1] * 2.0);
    double s = 0.0;
    for (std::size_t b = 0; b < N; ++b)
      s += static_cast<double>(r.z(static_cast<Eigen::Index>(b), static_cast<Eigen::Index>(j)));
    const double mean = s / N;
    double ss = 0.0;
    for (std::size_t b = 0; b < N; ++b) {
      const double d =
          static_cast<double>(r.z(static_cast<Eigen::Index>(b), static_cast<Eigen::Index>(j))) -
          mean;
      ss += d * d;
    }
    const double sample_var = ss / (N - 1);
    // Mean: 4 standard errors σ/√N. Variance: for normal data Var(s²) = 2σ⁴/(N − 1), so 5
    // standard errors is 5σ²√(2/(N−1)) ≈ 1.6 % of σ² (float rounding of z is ≲ 1e-7 relative).
    EXPECT_LE(std::abs(mean - mu), 4.0 * std::sqrt(var / N)) << "j=" << j;
    EXPECT_LE(std::abs(sample_var - var), 5.0 * var * std::sqrt(2.0 / (N - 1))) << "j=" << j;
  }
}

// Library gradients vs central differences of the oracle loss L = Σ c ⊙ z + β KL (ε fixed).
template <class T>
void check_vib_gradients(std::mt19937& gen, std::size_t B, std::size_t din, std::size_t dz,
                         double beta, ib_oracle::vib P) {
  auto x = random_vec<T>(gen, B * din, -1.0, 1.0);
  const auto eps = random_vec<T>(gen, B * dz, -2.0, 2.0);
  const auto c = random_vec<T>(gen, B * dz, -1.0, 1.0);
  ra::vib_config cfg{din, dz, 0};
  cfg.logvar_min = P.lo;
  cfg.logvar_max = P.hi;
  ra::variational_bottleneck<T> layer(cfg);
  layer.set_parameters(to_params<T>(P));
  const auto X = as_mat<T>(x, B, din);
  const auto fwd = layer.forward(X, as_mat<T>(eps, B, dz));
  const auto g = layer.backward(X, fwd, as_mat<T>(c, B, dz), static_cast<T>(beta));
  const auto f = [&] { return ib_oracle::vib_loss(P, x, B, eps, c, beta); };
  const auto check = [&](const char* name, std::vector<double>& v, const T* got) {
    for (std::size_t k = 0; k < v.size(); ++k) {
      const double fd = ib_oracle::central_diff(v, k, f);
      EXPECT_LE(rel_err(static_cast<double>(got[k]), fd), kGradTol<T>)
          << name << "[" << k << "] got " << got[k] << " fd " << fd;
    }
  };
  check("w_mu", P.wmu, g.params.w_mu.data());
  check("b_mu", P.bmu, g.params.b_mu.data());
  check("w_logvar", P.wlv, g.params.w_logvar.data());
  check("b_logvar", P.blv, g.params.b_logvar.data());
  check("x", x, g.x.data());
}

TYPED_TEST(InfoBottleneckTest, VibGradientsMatchFiniteDifferences) {
  using T = TypeParam;
  std::mt19937 gen(41);
  check_vib_gradients<T>(gen, 3, 5, 4, 0.7, random_vib<T>(gen, 5, 4));
  check_vib_gradients<T>(gen, 1, 1, 1, 2.0, random_vib<T>(gen, 1, 1));  // n = 1 everywhere
  check_vib_gradients<T>(gen, 5, 3, 2, 0.0, random_vib<T>(gen, 3, 2));  // no KL term
}

TYPED_TEST(InfoBottleneckTest, VibClampStopsGradient) {
  using T = TypeParam;
  std::mt19937 gen(42);
  auto P = random_vib<T>(gen, 4, 3, 0.1);
  P.lo = -2.0;
  P.hi = 2.0;
  P.blv = {5.0, -5.0, 0.0};  // coordinates 0 and 1 clamped for every input, 2 free
  ra::vib_config cfg{4, 3, 0};
  cfg.logvar_min = P.lo;
  cfg.logvar_max = P.hi;
  ra::variational_bottleneck<T> layer(cfg);
  layer.set_parameters(to_params<T>(P));
  const auto x = as_mat<T>(random_vec<T>(gen, 8, -1.0, 1.0), 2, 4);
  const auto fwd = layer.forward(x, as_mat<T>(random_vec<T>(gen, 6, -1.0, 1.0), 2, 3));
  EXPECT_EQ(fwd.logvar(0, 0), T(2));
  EXPECT_EQ(fwd.logvar(1, 1), T(-2));
  const auto g = layer.backward(x, fwd, ra::row_matrix<T>::Ones(2, 3), T(1));
  EXPECT_EQ(g.params.b_logvar(0), T(0));
  EXPECT_EQ(g.params.b_logvar(1), T(0));
  EXPECT_NE(g.params.b_logvar(2), T(0));
  EXPECT_TRUE(g.params.w_logvar.row(0).isZero(0));
  // ...and the finite differences of the oracle (with the same clamp) agree everywhere.
  check_vib_gradients<T>(gen, 2, 4, 3, 1.0, P);
}

TYPED_TEST(InfoBottleneckTest, VibSgdStepDecreasesTheLoss) {
  using T = TypeParam;
  std::mt19937 gen(43);
  const std::size_t B = 8, din = 6, dz = 3;
  ra::variational_bottleneck<T> layer({din, dz, 5});
  const auto x = random_vec<T>(gen, B * din, -1.0, 1.0);
  const auto eps = random_vec<T>(gen, B * dz, -1.0, 1.0);
  const auto c = random_vec<T>(gen, B * dz, -1.0, 1.0);
  const auto X = as_mat<T>(x, B, din), E = as_mat<T>(eps, B, dz), C = as_mat<T>(c, B, dz);
  const auto loss = [&] {
    const auto& p = layer.parameters();
    ib_oracle::vib P;
    P.din = din;
    P.dz = dz;
    P.wmu.assign(p.w_mu.data(), p.w_mu.data() + p.w_mu.size());
    P.bmu.assign(p.b_mu.data(), p.b_mu.data() + p.b_mu.size());
    P.wlv.assign(p.w_logvar.data(), p.w_logvar.data() + p.w_logvar.size());
    P.blv.assign(p.b_logvar.data(), p.b_logvar.data() + p.b_logvar.size());
    return ib_oracle::vib_loss(P, x, B, eps, c, 0.5);
  };
  const double before = loss();
  const auto w0 = layer.parameters().w_mu;
  const auto g = layer.backward(X, layer.forward(X, E), C, T(0.5));
  layer.apply_gradients(g, T(0.01));
  EXPECT_LE(rel_err(layer.parameters().w_mu(1, 2), w0(1, 2) - 0.01 * g.params.w_mu(1, 2)), kTol<T>);
  const double after = loss();
  EXPECT_LT(after, before);
  EXPECT_THROW(layer.apply_gradients(g, T(-1)), ra::invalid_argument);
}

TYPED_TEST(InfoBottleneckTest, VibErrors) {
  using T = TypeParam;
  EXPECT_THROW((ra::variational_bottleneck<T>({0, 3, 0})), ra::invalid_config);
  EXPECT_THROW((ra::variational_bottleneck<T>({3, 0, 0})), ra::invalid_config);
  ra::vib_config bad{3, 2, 0};
  bad.logvar_min = 1.0;
  bad.logvar_max = 1.0;
  EXPECT_THROW((ra::variational_bottleneck<T>(bad)), ra::invalid_config);
  ra::variational_bottleneck<T> layer({3, 2, 0});
  const ra::row_matrix<T> x = ra::row_matrix<T>::Ones(4, 3);
  const auto msg = thrown_message<ra::dimension_mismatch>(
      [&] { (void)layer.forward(ra::row_matrix<T>::Ones(4, 5)); });
  EXPECT_MESSAGE_HAS(msg, "x.cols()");
  EXPECT_THROW((void)layer.forward(ra::row_matrix<T>(0, 3)), ra::invalid_argument);
  ra::row_matrix<T> xn = x;
  xn(2, 1) = std::numeric_limits<T>::quiet_NaN();
  const auto nmsg = thrown_message<ra::non_finite_input>([&] { (void)layer.forward(xn); });
  EXPECT_MESSAGE_HAS(nmsg, "x[2][1]");
  EXPECT_THROW((void)layer.forward(x, ra::row_matrix<T>::Ones(3, 2)), ra::dimension_mismatch);
  const auto fwd = layer.forward(x);
  EXPECT_THROW((void)layer.backward(x, fwd, ra::row_matrix<T>::Ones(4, 3), T(1)),
               ra::dimension_mismatch);
  EXPECT_THROW((void)layer.backward(x, fwd, ra::row_matrix<T>::Ones(4, 2), T(-0.5)),
               ra::invalid_argument);
  EXPECT_THROW((void)fwd.kl_loss(std::numeric_limits<T>::quiet_NaN()), ra::invalid_argument);
  EXPECT_THROW((void)layer.encode(std::vector<T>(2)), ra::dimension_mismatch);
  auto p = layer.parameters();
  p.b_mu.resize(3);
  EXPECT_THROW(layer.set_parameters(p), ra::dimension_mismatch);
  p = layer.parameters();
  p.w_logvar(0, 0) = std::numeric_limits<T>::infinity();
  EXPECT_THROW(layer.set_parameters(p), ra::non_finite_input);
}

// ================================================================================================
// Attention-weight compression
// ================================================================================================

TYPED_TEST(InfoBottleneckTest, TemperatureOneIsIdentity) {
  using T = TypeParam;
  std::mt19937 gen(51);
  const auto w = ib_oracle::normalised(random_vec<T>(gen, 10, 0.0, 1.0));
  const auto r = ra::temper_weights<T>(as<T>(w), T(1));
  for (std::size_t i = 0; i < w.size(); ++i) EXPECT_LE(std::abs(r.weights[i] - w[i]), kTol<T>);
  EXPECT_LE(std::abs(r.entropy - ib_oracle::entropy(w)), kTol<T>);
  EXPECT_LE(std::abs(r.entropy_in - ib_oracle::entropy(w)), kTol<T>);
  EXPECT_LE(std::abs(r.kl_to_uniform - (std::log(10.0) - ib_oracle::entropy(w))), kTol<T>);
  EXPECT_EQ(r.kept, 10u);
}

TYPED_TEST(InfoBottleneckTest, TemperatureMatchesPowerForm) {
  using T = TypeParam;
  std::mt19937 gen(52);
  for (double t : {0.25, 0.5, 2.0, 3.7}) {
    auto w = random_vec<T>(gen, 12, 0.0, 1.0);
    w[3] = 0.0;  // a zero weight stays zero
    const auto ref = ib_oracle::temper(ib_oracle::normalised(w), t);
    const auto r = ra::temper_weights<T>(as<T>(w), static_cast<T>(t));
    for (std::size_t i = 0; i < w.size(); ++i)
      EXPECT_LE(std::abs(r.weights[i] - ref[i]), kTol<T>) << "T=" << t << " i=" << i;
    EXPECT_EQ(r.weights[3], T(0));
    EXPECT_EQ(r.kept, 11u);
    EXPECT_LE(std::abs(r.entropy - ib_oracle::entropy(ref)), kTol<T>);
  }
}

TYPED_TEST(InfoBottleneckTest, TemperatureLimits) {
  using T = TypeParam;
  const std::vector<T> w{T(0.1), T(0.5), T(0.15), T(0.25)};
  const auto flat = ra::temper_weights<T>(w, T(1e7));  // T → ∞: uniform
  for (const T v : flat.weights) EXPECT_NEAR(v, 0.25, 1e-5);
  EXPECT_NEAR(flat.kl_to_uniform, 0.0, 1e-5);
  // Uniform over the support when some weights are zero.
  const auto flat0 = ra::temper_weights<T>(std::vector<T>{T(0.2), T(0), T(0.8)}, T(1e7));
  EXPECT_NEAR(flat0.weights[0], 0.5, 1e-5);
  EXPECT_EQ(flat0.weights[1], T(0));
  // T → 0: one-hot at the arg-max — exactly once (p_i/p_max)^{1/T} underflows (T ≤ 1e-5 here:
  // 0.5^{1e5}), to within (0.5)^{1/T} before that.
  EXPECT_NEAR(ra::temper_weights<T>(w, T(0.02)).weights[1], 1.0, 1e-14);
  for (const T t : {T(1e-5), T(1e-30)}) {
    const auto sharp = ra::temper_weights<T>(w, t);
    EXPECT_EQ(sharp.weights[1], T(1));
    EXPECT_EQ(sharp.weights[0] + sharp.weights[2] + sharp.weights[3], T(0));
    EXPECT_EQ(sharp.kept, 1u);
    EXPECT_NEAR(sharp.kl_to_uniform, std::log(4.0), kTol<T>);
  }
  const auto tie = ra::temper_weights<T>(std::vector<T>{T(0.4), T(0.2), T(0.4)}, T(1e-6));
  EXPECT_NEAR(tie.weights[0], 0.5, kTol<T>);
  EXPECT_NEAR(tie.weights[2], 0.5, kTol<T>);
}

TYPED_TEST(InfoBottleneckTest, EntropyIsMonotoneInTemperature) {
  using T = TypeParam;
  std::mt19937 gen(53);
  const auto w = as<T>(random_vec<T>(gen, 20, 0.0, 1.0));
  double prev = -1.0;
  for (double t = 0.05; t < 50.0; t *= 1.3) {
    const double h = ra::temper_weights<T>(w, static_cast<T>(t)).entropy;
    EXPECT_GE(h, prev - 1e-6) << "T=" << t;
    prev = h;
  }
  EXPECT_LE(prev, std::log(20.0) + 1e-6);
}

TYPED_TEST(InfoBottleneckTest, TopMassTruncation) {
  using T = TypeParam;
  const std::vector<T> w{T(0.1), T(0.4), T(0.2), T(0.3)};
  const auto r = ra::top_mass_truncate<T>(w, T(0.65));  // {0.4, 0.3}: 0.7 ≥ 0.65
  EXPECT_EQ(r.kept, 2u);
  EXPECT_NEAR(r.weights[1], 4.0 / 7.0, kTol<T>);
  EXPECT_NEAR(r.weights[3], 3.0 / 7.0, kTol<T>);
  EXPECT_EQ(r.weights[0], T(0));
  EXPECT_EQ(r.weights[2], T(0));
  EXPECT_NEAR(r.retained_mass, 0.7, kTol<T>);
  EXPECT_NEAR(r.entropy, -(4.0 / 7 * std::log(4.0 / 7) + 3.0 / 7 * std::log(3.0 / 7)), kTol<T>);
  EXPECT_EQ(ra::top_mass_truncate<T>(w, T(1)).kept, 4u);
  EXPECT_EQ(ra::top_mass_truncate<T>(w, T(0.01)).kept, 1u);
  // Ties: lower index first.
  const auto tie = ra::top_mass_truncate<T>(std::vector<T>{T(1), T(2), T(2), T(1)}, T(0.3));
  EXPECT_EQ(tie.kept, 1u);
  EXPECT_EQ(tie.weights[1], T(1));
  // Brute-force minimal cover on random vectors (masses away from the rounding boundary).
  std::mt19937 gen(54);
  for (int t = 0; t < 30; ++t) {
    const std::size_t n = 1 + static_cast<std::size_t>(t % 8);
    const auto p = ib_oracle::normalised(random_vec<T>(gen, n, 0.05, 1.0));
    const double m = 0.1 + 0.8 * (t % 7) / 6.0 + 1e-4;
    const auto got = ra::top_mass_truncate<T>(as<T>(p), static_cast<T>(m));
    EXPECT_EQ(got.kept, ib_oracle::min_cover(p, m)) << "t=" << t;
    EXPECT_GE(got.retained_mass, m - 1e-6);
    double s = 0.0;
    for (const T v : got.weights) s += v;
    EXPECT_NEAR(s, 1.0, kTol<T> * 10);
  }
}

TYPED_TEST(InfoBottleneckTest, CompressRowsAndCombinedOptions) {
  using T = TypeParam;
  const ra::row_matrix<T> w =
      (ra::row_matrix<T>(2, 4) << T(0.1), T(0.4), T(0.2), T(0.3), T(1), T(1), T(1), T(1))
          .finished();
  ra::row_matrix<T> out(2, 4);
  const T kl = ra::compress_rows<T>(w, out, {T(0.5), T(0.9)});
  // Row 0 at T = 0.5: p² normalised = (1, 16, 4, 9)/30; top 0.9 keeps {16, 9, 4} (29/30).
  EXPECT_NEAR(out(0, 0), 0.0, 0.0);
  EXPECT_NEAR(out(0, 1), 16.0 / 29, kTol<T>);
  EXPECT_NEAR(out(0, 2), 4.0 / 29, kTol<T>);
  // Row 1 is uniform at every temperature: keeps 4 × ¼ (0.75 < 0.9).
  for (Eigen::Index j = 0; j < 4; ++j) EXPECT_NEAR(out(1, j), 0.25, kTol<T>);
  const double h0 = -(16.0 / 29 * std::log(16.0 / 29) + 4.0 / 29 * std::log(4.0 / 29) +
                      9.0 / 29 * std::log(9.0 / 29));
  EXPECT_NEAR(kl, 0.5 * (std::log(4.0) - h0), kTol<T>);
  ra::row_matrix<T> small(1, 4);
  EXPECT_THROW((void)ra::compress_rows<T>(w, small, {}), ra::dimension_mismatch);
}

TYPED_TEST(InfoBottleneckTest, CompressionErrors) {
  using T = TypeParam;
  const std::vector<T> w{T(0.5), T(0.5)};
  EXPECT_THROW((void)ra::temper_weights<T>(w, T(0)), ra::invalid_argument);
  EXPECT_THROW((void)ra::temper_weights<T>(w, T(-1)), ra::invalid_argument);
  EXPECT_THROW((void)ra::temper_weights<T>(w, std::numeric_limits<T>::infinity()),
               ra::invalid_argument);
  EXPECT_THROW((void)ra::top_mass_truncate<T>(w, T(0)), ra::invalid_argument);
  EXPECT_THROW((void)ra::top_mass_truncate<T>(w, T(1.5)), ra::invalid_argument);
  EXPECT_THROW((void)ra::temper_weights<T>(std::vector<T>{}, T(1)), ra::invalid_argument);
  EXPECT_THROW((void)ra::temper_weights<T>(std::vector<T>{T(0), T(0)}, T(1)), ra::invalid_argument);
  EXPECT_THROW((void)ra::temper_weights<T>(std::vector<T>{T(0.5), T(-0.5)}, T(1)),
               ra::invalid_argument);
  EXPECT_THROW(
      (void)ra::temper_weights<T>(std::vector<T>{std::numeric_limits<T>::quiet_NaN()}, T(1)),
      ra::non_finite_input);
}

}  // namespace
