// Hyperbolic attention (hyperbolic/hyperbolic_attention.hpp) against an independent
// double-precision oracle written below from the formulas of Ganea et al. 2018 and Law et al. 2019:
// Poincaré distance through arcosh, the Lorentz map of the ball, log₀/exp₀, the Einstein midpoint
// through explicit Klein coordinates, and a Karcher iteration with Möbius addition for the Fréchet
// mean. None of it calls the library.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <span>
#include <vector>

#include "ruvector/attention/hyperbolic.hpp"
#include "support/helpers.hpp"
#include "support/oracle.hpp"

namespace ra = ruvector::attention;
using ruvector_test::thrown_message;
using ruvector_test::oracle::dmat;

namespace {

// ---- oracle (double) -------------------------------------------------------------------------
namespace hyp {

using vec = std::vector<double>;

double dot(const vec& a, const vec& b) {
  double s = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}
double norm(const vec& a) { return std::sqrt(dot(a, a)); }
vec scaled(const vec& a, double s) {
  vec r(a);
  for (auto& x : r) x *= s;
  return r;
}
vec row(const dmat& m, std::size_t i) {
  return vec(m.a.begin() + static_cast<std::ptrdiff_t>(i * m.cols),
             m.a.begin() + static_cast<std::ptrdiff_t>((i + 1) * m.cols));
}

/// Radial projection onto the ball of radius (1 − eps)/√c when outside it.
vec project(const vec& x, double c, double eps) {
  const double max_norm = (1.0 - eps) / std::sqrt(c);
  const double n = norm(x);
  return n > max_norm ? scaled(x, max_norm / n) : x;
}

/// d_c(x, y) = (1/√c) arcosh(1 + 2c‖x − y‖² / ((1 − c‖x‖²)(1 − c‖y‖²))).
double distance(const vec& x, const vec& y, double c) {
  double diff = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) diff += (x[i] - y[i]) * (x[i] - y[i]);
  const double arg = 1.0 + 2.0 * c * diff / ((1.0 - c * dot(x, x)) * (1.0 - c * dot(y, y)));
  return std::acosh(arg) / std::sqrt(c);
}

/// Ball → hyperboloid ⟨x, x⟩_L = −1/c: x_L = (1/√c)·((1 + c‖x‖²), 2√c·x) / (1 − c‖x‖²).
vec to_lorentz(const vec& x, double c) {
  const double sq = c * dot(x, x);
  vec r(x.size() + 1);
  r[0] = (1.0 + sq) / ((1.0 - sq) * std::sqrt(c));
  for (std::size_t i = 0; i < x.size(); ++i) r[i + 1] = 2.0 * x[i] / (1.0 - sq);
  return r;
}
double lorentz_inner(const vec& a, const vec& b) {
  double s = -a[0] * b[0];
  for (std::size_t i = 1; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}
/// Squared Lorentzian distance −2/c − 2⟨x, y⟩_L (Law et al. 2019).
double lorentz_sq_distance(const vec& x, const vec& y, double c) {
  return -2.0 / c - 2.0 * lorentz_inner(to_lorentz(x, c), to_lorentz(y, c));
}

vec softmax(const vec& s, const std::vector<bool>& mask) {
  double m = -std::numeric_limits<double>::infinity();
  for (std::size_t j = 0; j < s.size(); ++j)
    if (mask.empty() || mask[j]) m = std::max(m, s[j]);
  vec w(s.size(), 0.0);
  if (m == -std::numeric_limits<double>::infinity()) return w;
  double z = 0.0;
  for (std::size_t j = 0; j < s.size(); ++j)
    if (mask.empty() || mask[j]) z += (w[j] = std::exp(s[j] - m));
  for (auto& x : w) x /= z;
  return w;
}

vec log0(const vec& v, double c) {
  const double n = norm(v);
  if (n == 0.0) return v;
  return scaled(v, std::atanh(std::sqrt(c) * n) / (std::sqrt(c) * n));
}
vec exp0(const vec& u, double c) {
  const double n = norm(u);
  if (n == 0.0) return u;
  return scaled(u, std::tanh(std::sqrt(c) * n) / (std::sqrt(c) * n));
}

/// Möbius addition x ⊕_c y (Ganea et al. 2018, eq. 2).
vec mobius_add(const vec& x, const vec& y, double c) {
  const double xy = dot(x, y), xx = dot(x, x), yy = dot(y, y);
  const double den = 1.0 + 2.0 * c * xy + c * c * xx * yy;
  vec r(x.size());
  for (std::size_t i = 0; i < x.size(); ++i)
    r[i] = ((1.0 + 2.0 * c * xy + c * yy) * x[i] + (1.0 - c * xx) * y[i]) / den;
  return r;
}
/// log_x(y) = (2/(√c λ_x)) artanh(√c‖−x ⊕ y‖)·(−x ⊕ y)/‖−x ⊕ y‖, λ_x = 2/(1 − c‖x‖²).
vec log_at(const vec& x, const vec& y, double c) {
  const vec u = mobius_add(scaled(x, -1.0), y, c);
  const double n = norm(u);
  if (n == 0.0) return u;
  const double lambda = 2.0 / (1.0 - c * dot(x, x));
  return scaled(u, 2.0 / (std::sqrt(c) * lambda) * std::atanh(std::sqrt(c) * n) / n);
}
/// exp_x(v) = x ⊕ tanh(√c λ_x ‖v‖/2)·v/(√c‖v‖).
vec exp_at(const vec& x, const vec& v, double c) {
  const double n = norm(v);
  if (n == 0.0) return x;
  const double lambda = 2.0 / (1.0 - c * dot(x, x));
  return mobius_add(x, scaled(v, std::tanh(std::sqrt(c) * lambda * n / 2.0) / (std::sqrt(c) * n)),
                    c);
}

/// Σ_j w_j log_m(v_j): the (Euclidean-coordinate) Karcher gradient direction at m.
vec karcher_field(const vec& m, const dmat& values, const vec& w, double c) {
  vec g(m.size(), 0.0);
  for (std::size_t j = 0; j < values.rows; ++j) {
    if (w[j] == 0.0) continue;
    const vec l = log_at(m, row(values, j), c);
    for (std::size_t i = 0; i < m.size(); ++i) g[i] += w[j] * l[i];
  }
  return g;
}

enum class agg { tangent, einstein, frechet };
enum class score { distance, lorentz };

struct result {
  vec weights;
  vec output;
};

result attention(const vec& q_in, const dmat& keys_in, const dmat& values_in, double c, double tau,
                 score sc, agg ag, double eps, const std::vector<bool>& mask = {}) {
  const vec q = project(q_in, c, eps);
  dmat values = values_in;
  for (std::size_t j = 0; j < values.rows; ++j) {
    const vec v = project(row(values_in, j), c, eps);
    std::copy(v.begin(), v.end(), values.a.begin() + static_cast<std::ptrdiff_t>(j * values.cols));
  }
  vec s(keys_in.rows);
  for (std::size_t j = 0; j < keys_in.rows; ++j) {
    const vec k = project(row(keys_in, j), c, eps);
    s[j] = sc == score::distance ? -distance(q, k, c) / tau : -lorentz_sq_distance(q, k, c) / tau;
  }
  result r{softmax(s, mask), vec(q.size(), 0.0)};
  double total = 0.0;
  for (double x : r.weights) total += x;
  if (total == 0.0) return r;  // every key masked: the origin
  if (ag == agg::einstein) {
    vec num(q.size(), 0.0);
    double den = 0.0;
    for (std::size_t j = 0; j < values.rows; ++j) {
      const vec v = row(values, j);
      const vec k = scaled(v, 2.0 / (1.0 + c * dot(v, v)));  // Klein coordinates
      // γ = 1/√(1 − c‖k‖²); 1 − c‖k‖² = ((1 − c‖v‖²)/(1 + c‖v‖²))² exactly, which keeps its digits
      // for points at the projection eps (1 − c‖k‖² would round to 0 there).
      const double ratio = (1.0 - c * dot(v, v)) / (1.0 + c * dot(v, v));
      const double gamma = 1.0 / std::sqrt(ratio * ratio);
      for (std::size_t i = 0; i < k.size(); ++i) num[i] += r.weights[j] * gamma * k[i];
      den += r.weights[j] * gamma;
    }
    const vec mk = scaled(num, 1.0 / den);
    r.output = scaled(mk, 1.0 / (1.0 + std::sqrt(std::max(0.0, 1.0 - c * dot(mk, mk)))));
    return r;
  }
  vec u(q.size(), 0.0);
  for (std::size_t j = 0; j < values.rows; ++j) {
    const vec l = log0(row(values, j), c);
    for (std::size_t i = 0; i < l.size(); ++i) u[i] += r.weights[j] * l[i];
  }
  r.output = exp0(u, c);
  if (ag == agg::frechet) {
    // Minimise f(m) = ½ Σ w d(m, v)² by Riemannian gradient descent with an Armijo backtracking
    // line search on f itself (a different step rule from the library's), run far past
    // convergence in double.
    const auto f = [&](const vec& m) {
      double acc = 0.0;
      for (std::size_t j = 0; j < values.rows; ++j)
        if (r.weights[j] > 0.0)
          acc += 0.5 * r.weights[j] * std::pow(distance(m, row(values, j), c), 2);
      return acc;
    };
    double t = 1.0;
    for (int it = 0; it < 1000; ++it) {
      const vec g = karcher_field(r.output, values, r.weights, c);
      const double lambda = 2.0 / (1.0 - c * dot(r.output, r.output));
      const double g2 = lambda * lambda * dot(g, g);  // Riemannian ‖grad‖²
      if (std::sqrt(g2) < 1e-13) break;
      const double f0 = f(r.output);
      t = std::min(1.0, 2.0 * t);
      vec next = exp_at(r.output, scaled(g, t), c);
      // Sufficient decrease, with slack for the rounding of f near the minimum.
      while (f(next) > f0 - 1e-4 * t * g2 + 1e-15 * f0 && t > 1e-12) {
        t /= 2.0;
        next = exp_at(r.output, scaled(g, t), c);
      }
      r.output = next;
    }
  }
  return r;
}

/// A point uniformly distributed in direction with norm `radius_fraction`·(1/√c).
vec ball_point(std::size_t d, double c, double radius_fraction, std::mt19937_64& gen) {
  std::normal_distribution<double> normal;
  vec x(d);
  for (auto& v : x) v = normal(gen);
  return scaled(x, radius_fraction / (std::sqrt(c) * norm(x)));
}

dmat ball_points(std::size_t n, std::size_t d, double c, std::mt19937_64& gen,
                 double max_fraction = 0.9) {
  std::uniform_real_distribution<double> u(0.0, max_fraction);
  dmat m(n, d);
  for (std::size_t j = 0; j < n; ++j) {
    const vec x = ball_point(d, c, u(gen), gen);
    std::copy(x.begin(), x.end(), m.a.begin() + static_cast<std::ptrdiff_t>(j * d));
  }
  return m;
}

}  // namespace hyp

template <class T>
struct tol;
// float: scores are O(10) and formed from float sums of O(d) terms; the weights and outputs carry a
// relative error of a few hundred ulps (more within 1e-3 of the boundary, where 1 − c‖x‖² loses
// three digits: see BoundaryPoints).
template <>
struct tol<float> {
  static constexpr double weights = 2e-4;
  static constexpr double output = 2e-4;
};
// double: same analysis with u = 1.1e-16.
template <>
struct tol<double> {
  static constexpr double weights = 1e-10;
  static constexpr double output = 1e-10;
};

template <class T>
class HyperbolicAttentionTest : public ::testing::Test {};
using Scalars = ::testing::Types<float, double>;
TYPED_TEST_SUITE(HyperbolicAttentionTest, Scalars);

static_assert(ra::attention_mechanism<ra::hyperbolic_attention<float>>);
static_assert(ra::masked_attention_mechanism<ra::hyperbolic_attention<double>>);

template <class T>
std::vector<T> as(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}

hyp::agg to_oracle(ra::hyperbolic_aggregation a) {
  switch (a) {
    case ra::hyperbolic_aggregation::tangent_origin:
      return hyp::agg::tangent;
    case ra::hyperbolic_aggregation::einstein_midpoint:
      return hyp::agg::einstein;
    case ra::hyperbolic_aggregation::frechet_mean:
      return hyp::agg::frechet;
  }
  return hyp::agg::tangent;
}

constexpr ra::hyperbolic_aggregation kAggregations[] = {
    ra::hyperbolic_aggregation::tangent_origin, ra::hyperbolic_aggregation::einstein_midpoint,
    ra::hyperbolic_aggregation::frechet_mean};

/// Runs the library and the oracle on the same (T-rounded) inputs and compares weights and output.
template <class T>
void expect_matches_oracle(const ra::hyperbolic_attention_config& cfg, const dmat& q_row,
                           const dmat& keys, const dmat& values, double weight_tol,
                           double output_tol, const std::vector<bool>& mask = {}) {
  using ruvector_test::oracle::rounded;
  const dmat qr = rounded<T>(q_row), kr = rounded<T>(keys), vr = rounded<T>(values);
  const double c = -cfg.curvature;
  const auto expected = hyp::attention(
      hyp::row(qr, 0), kr, vr, c, cfg.temperature,
      cfg.score == ra::hyperbolic_score::distance ? hyp::score::distance : hyp::score::lorentz,
      to_oracle(cfg.aggregation), static_cast<double>(ra::poincare_ball<T>::default_eps), mask);
  const ra::hyperbolic_attention<T> attn(cfg);
  const auto q = as<T>(hyp::row(qr, 0));
  const auto K = ruvector_test::to_eigen<T>(kr);
  const auto V = ruvector_test::to_eigen<T>(vr);
  std::unique_ptr<bool[]> m;
  std::span<const bool> mask_span;
  if (!mask.empty()) {
    m.reset(new bool[mask.size()]);
    std::copy(mask.begin(), mask.end(), m.get());
    mask_span = std::span<const bool>(m.get(), mask.size());
  }
  const auto r = attn.compute_detailed(q, K, V, mask_span);
  EXPECT_LE(ruvector_test::oracle::max_abs_error(r.weights, expected.weights), weight_tol)
      << "n=" << keys.rows << " d=" << keys.cols << " c=" << c;
  EXPECT_LE(ruvector_test::oracle::max_mixed_error(r.output, expected.output), output_tol)
      << "n=" << keys.rows << " d=" << keys.cols << " c=" << c
      << " aggregation=" << static_cast<int>(cfg.aggregation);
  if (cfg.aggregation == ra::hyperbolic_aggregation::frechet_mean && !r.weights.empty() &&
      std::any_of(r.weights.begin(), r.weights.end(), [](T w) { return w > T(0); })) {
    EXPECT_TRUE(r.frechet.converged)
        << "iterations=" << r.frechet.iterations << " gradient_norm=" << r.frechet.gradient_norm;
  }
}

TYPED_TEST(HyperbolicAttentionTest, MatchesOracleOverShapesCurvaturesScoresAndAggregations) {
  using T = TypeParam;
  std::mt19937_64 gen(7);
  for (double c : {0.1, 1.0, 10.0}) {
    for (std::size_t d : {1, 2, 5, 16, 33}) {
      for (std::size_t n : {1, 7, 40}) {
        const dmat keys = hyp::ball_points(n, d, c, gen);
        const dmat values = hyp::ball_points(n, d, c, gen);
        const dmat q = hyp::ball_points(1, d, c, gen);
        for (auto score :
             {ra::hyperbolic_score::distance, ra::hyperbolic_score::lorentz_squared_distance}) {
          for (auto aggregation : kAggregations) {
            ra::hyperbolic_attention_config cfg;
            cfg.dim = d;
            cfg.curvature = -c;
            cfg.temperature = 0.7;
            cfg.score = score;
            cfg.aggregation = aggregation;
            cfg.frechet_max_iterations = 200;
            cfg.frechet_tolerance = std::is_same_v<T, float> ? 1e-5 : 1e-12;
            // The Fréchet mean is the solution of an optimisation stopped at the tolerance; its
            // error is the tolerance over the Hessian's smallest eigenvalue (≥ 1 for curvature
            // ≤ 0), so allow it on top of the rounding error.
            const double extra =
                aggregation == ra::hyperbolic_aggregation::frechet_mean ? cfg.frechet_tolerance : 0;
            expect_matches_oracle<T>(cfg, q, keys, values, tol<T>::weights,
                                     tol<T>::output + 10 * extra);
          }
        }
      }
    }
  }
}

TYPED_TEST(HyperbolicAttentionTest, PointsWithinOneThousandthOfTheBoundary) {
  using T = TypeParam;
  std::mt19937_64 gen(11);
  for (double c : {0.1, 1.0, 10.0}) {
    const std::size_t d = 8, n = 12;
    dmat keys(n, d), values(n, d);
    for (std::size_t j = 0; j < n; ++j) {
      // 1/√c − ‖x‖ ∈ (0, 1e-3]: the distance to the boundary, in the ball's own units.
      const double gap = 1e-3 * (0.2 + 0.8 * static_cast<double>(j) / n);
      const auto k = hyp::ball_point(d, c, 1.0 - gap * std::sqrt(c), gen);
      const auto v = hyp::ball_point(d, c, 1.0 - gap * std::sqrt(c), gen);
      std::copy(k.begin(), k.end(), keys.a.begin() + static_cast<std::ptrdiff_t>(j * d));
      std::copy(v.begin(), v.end(), values.a.begin() + static_cast<std::ptrdiff_t>(j * d));
    }
    const dmat q = hyp::ball_points(1, d, c, gen, 0.99);
    for (auto aggregation : {ra::hyperbolic_aggregation::tangent_origin,
                             ra::hyperbolic_aggregation::einstein_midpoint}) {
      ra::hyperbolic_attention_config cfg;
      cfg.dim = d;
      cfg.curvature = -c;
      cfg.aggregation = aggregation;
      // Values 15 units apart: step 1 oscillates and the step control needs a few hundred
      // iterations. The log map between points this close to the boundary carries a relative
      // error of about u·λ² (λ ≈ 10³), so the gradient is resolved only to ~1e-7 in double and
      // ~1e-2 in float: the tolerances sit above that floor.
      cfg.frechet_max_iterations = 2000;
      cfg.frechet_tolerance = std::is_same_v<T, float> ? 5e-2 : 1e-6;
      // 1 − c‖x‖² ≈ 2·gap·√c: float keeps ~4 digits of it, double ~13; the distances (and so the
      // scores) inherit that relative error. A Fréchet mean stopped at gradient norm g is within
      // g (geodesic distance, the Hessian is ≥ 1) of the minimiser, so within g in coordinates.
      const double w_tol = std::is_same_v<T, float> ? 5e-3 : 1e-9;
      const double o_tol =
          (std::is_same_v<T, float> ? 5e-3 : 1e-8) +
          (aggregation == ra::hyperbolic_aggregation::frechet_mean ? cfg.frechet_tolerance : 0.0);
      expect_matches_oracle<T>(cfg, q, keys, values, w_tol, o_tol);
    }
  }
}

TYPED_TEST(HyperbolicAttentionTest, FrechetNearTheBoundaryReportsAndStaysInTheBall) {
  // Known limit (documented): for values within 1e-3 of the boundary, spread over the ball, the
  // Fréchet iteration can stall before the tolerance. It must then say so, and still return a
  // finite point of the ball no farther from the minimiser than the tangent aggregate's start.
  using T = TypeParam;
  std::mt19937_64 gen(29);
  const double c = 1.0;
  const std::size_t d = 8, n = 12;
  const dmat keys = hyp::ball_points(n, d, c, gen, 0.999);
  const dmat values = hyp::ball_points(n, d, c, gen, 0.999);
  ra::hyperbolic_attention_config cfg;
  cfg.dim = d;
  cfg.aggregation = ra::hyperbolic_aggregation::frechet_mean;
  cfg.frechet_max_iterations = 50;
  cfg.frechet_tolerance = 1e-30;  // unreachable: the report must say "not converged"
  const ra::hyperbolic_attention<T> attn(cfg);
  const auto r =
      attn.compute_detailed(as<T>(hyp::row(hyp::ball_points(1, d, c, gen), 0)),
                            ruvector_test::to_eigen<T>(keys), ruvector_test::to_eigen<T>(values));
  EXPECT_FALSE(r.frechet.converged);
  EXPECT_EQ(r.frechet.iterations, 50u);
  double sq = 0;
  for (T x : r.output) {
    ASSERT_TRUE(std::isfinite(x));
    sq += static_cast<double>(x) * x;
  }
  EXPECT_LT(sq, 1.0 / c);
}

TYPED_TEST(HyperbolicAttentionTest, InputsOutsideTheBallAreProjected) {
  using T = TypeParam;
  std::mt19937_64 gen(13);
  const double c = 1.0;
  const std::size_t d = 6, n = 9;
  dmat keys = ruvector_test::oracle::random_matrix(n, d, 3, 2.0);  // norms ≈ 5: outside
  dmat values = ruvector_test::oracle::random_matrix(n, d, 4, 2.0);
  const dmat q = ruvector_test::oracle::random_matrix(1, d, 5, 2.0);
  for (auto aggregation : {ra::hyperbolic_aggregation::tangent_origin,
                           ra::hyperbolic_aggregation::einstein_midpoint}) {
    ra::hyperbolic_attention_config cfg;
    cfg.dim = d;
    cfg.curvature = -c;
    cfg.aggregation = aggregation;
    cfg.frechet_max_iterations = 2000;
    // Projected points sit at the boundary eps: the gradient floor is as in the boundary test.
    cfg.frechet_tolerance = std::is_same_v<T, float> ? 5e-2 : 1e-4;
    // Every projected point sits at the boundary eps (1e-5 float, 1e-10 double), where
    // 1 − c‖x‖² ≈ 2·eps keeps only −log10(u/2eps) digits: ~2.5 in float, ~6 in double.
    const double t =
        (std::is_same_v<T, float> ? 2e-2 : 1e-5) +
        (aggregation == ra::hyperbolic_aggregation::frechet_mean ? cfg.frechet_tolerance : 0.0);
    expect_matches_oracle<T>(cfg, q, keys, values, t, t);
  }
  (void)gen;
}

TYPED_TEST(HyperbolicAttentionTest, OneKeyReturnsItsValueForEveryAggregation) {
  using T = TypeParam;
  for (auto aggregation : kAggregations) {
    ra::hyperbolic_attention_config cfg;
    cfg.dim = 3;
    cfg.aggregation = aggregation;
    const ra::hyperbolic_attention<T> attn(cfg);
    const std::vector<T> q{T(0.1), T(-0.2), T(0.3)};
    ra::row_matrix<T> K(1, 3), V(1, 3);
    K << T(0.5), T(0.1), T(0.0);
    V << T(-0.4), T(0.25), T(0.6);
    const auto out = attn.compute(q, K, V);
    for (std::size_t i = 0; i < 3; ++i)
      EXPECT_NEAR(out[i], V(0, static_cast<Eigen::Index>(i)),
                  (std::is_same_v<T, float> ? 1e-6 : 1e-14));
  }
}

TYPED_TEST(HyperbolicAttentionTest, ClosedFormWeightsFromTheOriginDistance) {
  // q = 0: d(0, k) = (2/√c)·artanh(√c‖k‖), so w_j ∝ exp(−(2/√c)·artanh(√c‖k_j‖)/τ).
  using T = TypeParam;
  const double c = 2.0, tau = 0.5;
  ra::hyperbolic_attention_config cfg;
  cfg.dim = 2;
  cfg.curvature = -c;
  cfg.temperature = tau;
  const ra::hyperbolic_attention<T> attn(cfg);
  ra::row_matrix<T> K(3, 2);
  K << T(0.1), T(0), T(0), T(0.4), T(-0.3), T(0.3);
  std::vector<double> s(3);
  double z = 0;
  for (int j = 0; j < 3; ++j) {
    const double r = std::hypot(static_cast<double>(K(j, 0)), static_cast<double>(K(j, 1)));
    s[static_cast<std::size_t>(j)] =
        std::exp(-(2 / std::sqrt(c)) * std::atanh(std::sqrt(c) * r) / tau);
    z += s[static_cast<std::size_t>(j)];
  }
  const auto w = attn.compute_weights(std::vector<T>{T(0), T(0)}, K);
  for (std::size_t j = 0; j < 3; ++j)
    EXPECT_NEAR(w[j], s[j] / z, (std::is_same_v<T, float> ? 1e-6 : 1e-14));
}

TYPED_TEST(HyperbolicAttentionTest, SymmetricValuesAverageToTheOrigin) {
  // Two values ±v with equal weights: every aggregation gives the origin (closed form).
  using T = TypeParam;
  for (auto aggregation : kAggregations) {
    ra::hyperbolic_attention_config cfg;
    cfg.dim = 2;
    cfg.aggregation = aggregation;
    const ra::hyperbolic_attention<T> attn(cfg);
    ra::row_matrix<T> K(2, 2), V(2, 2);
    K << T(0.3), T(0.1), T(0.3), T(0.1);  // identical keys → equal weights
    V << T(0.6), T(-0.5), T(-0.6), T(0.5);
    const auto out = attn.compute(std::vector<T>{T(0), T(0.2)}, K, V);
    EXPECT_NEAR(out[0], 0.0, 1e-6);
    EXPECT_NEAR(out[1], 0.0, 1e-6);
  }
}

TYPED_TEST(HyperbolicAttentionTest, MaskedKeysGetZeroWeightAndAllMaskedGivesTheOrigin) {
  using T = TypeParam;
  std::mt19937_64 gen(17);
  const double c = 1.0;
  const std::size_t d = 4, n = 10;
  const dmat keys = hyp::ball_points(n, d, c, gen), values = hyp::ball_points(n, d, c, gen);
  const dmat q = hyp::ball_points(1, d, c, gen);
  std::vector<bool> mask(n);
  for (std::size_t j = 0; j < n; ++j) mask[j] = j % 3 != 1;
  for (auto aggregation : kAggregations) {
    ra::hyperbolic_attention_config cfg;
    cfg.dim = d;
    cfg.aggregation = aggregation;
    cfg.frechet_tolerance = std::is_same_v<T, float> ? 1e-5 : 1e-12;
    cfg.frechet_max_iterations = 200;
    expect_matches_oracle<T>(cfg, q, keys, values, tol<T>::weights, tol<T>::output * 50, mask);

    const ra::hyperbolic_attention<T> attn(cfg);
    const auto K = ruvector_test::to_eigen<T>(keys);
    const auto V = ruvector_test::to_eigen<T>(values);
    const std::unique_ptr<bool[]> none(new bool[n]());
    const auto r =
        attn.compute_detailed(as<T>(hyp::row(q, 0)), K, V, std::span<const bool>(none.get(), n));
    for (T x : r.output) EXPECT_EQ(x, T(0));
    for (T x : r.weights) EXPECT_EQ(x, T(0));
  }
}

TYPED_TEST(HyperbolicAttentionTest, TinyTemperatureSelectsTheNearestKeyWithoutNaN) {
  using T = TypeParam;
  ra::hyperbolic_attention_config cfg;
  cfg.dim = 2;
  cfg.temperature = 1e-6;  // scores of order 1e6
  const ra::hyperbolic_attention<T> attn(cfg);
  ra::row_matrix<T> K(3, 2), V(3, 2);
  K << T(0.5), T(0.5), T(0.1), T(0.0), T(-0.6), T(0.2);
  V << T(0.1), T(0.1), T(0.2), T(-0.3), T(0.0), T(0.5);
  const auto w = attn.compute_weights(std::vector<T>{T(0.12), T(0.01)}, K);
  EXPECT_EQ(w[1], T(1));
  EXPECT_EQ(w[0], T(0));
  EXPECT_EQ(w[2], T(0));
  const auto out = attn.compute(std::vector<T>{T(0.12), T(0.01)}, K, V);
  EXPECT_NEAR(out[0], V(1, 0), 1e-6);
  EXPECT_NEAR(out[1], V(1, 1), 1e-6);
}

TYPED_TEST(HyperbolicAttentionTest, KeySetReuseAndBatchEqualPerQueryCalls) {
  using T = TypeParam;
  std::mt19937_64 gen(19);
  const double c = 0.5;
  const std::size_t d = 12, n = 30, m = 5;
  const auto K = ruvector_test::to_eigen<T>(hyp::ball_points(n, d, c, gen));
  const auto V = ruvector_test::to_eigen<T>(hyp::ball_points(n, d, c, gen));
  const auto Q = ruvector_test::to_eigen<T>(hyp::ball_points(m, d, c, gen));
  for (auto aggregation : kAggregations) {
    ra::hyperbolic_attention_config cfg;
    cfg.dim = d;
    cfg.curvature = -c;
    cfg.aggregation = aggregation;
    const ra::hyperbolic_attention<T> attn(cfg);
    const auto set = attn.prepare_keys(K);
    const auto batch = attn.compute_batch(Q, K, V);
    for (std::size_t i = 0; i < m; ++i) {
      const auto row = static_cast<Eigen::Index>(i);
      const std::span<const T> q(Q.row(row).data(), d);
      const auto a = attn.compute(q, K, V);
      const auto b = attn.compute(q, set, V);
      for (std::size_t c2 = 0; c2 < d; ++c2) {
        EXPECT_EQ(a[c2], b[c2]);
        EXPECT_EQ(a[c2], batch(row, static_cast<Eigen::Index>(c2)));
      }
    }
  }
}

TYPED_TEST(HyperbolicAttentionTest, FrechetMeanSatisfiesTheFirstOrderCondition) {
  // At the Karcher mean Σ w_j log_m(v_j) = 0; checked in double with the oracle's log map.
  using T = TypeParam;
  std::mt19937_64 gen(23);
  const double c = 1.0;
  const std::size_t d = 5, n = 16;
  const dmat keys = ruvector_test::oracle::rounded<T>(hyp::ball_points(n, d, c, gen, 0.95));
  const dmat values = ruvector_test::oracle::rounded<T>(hyp::ball_points(n, d, c, gen, 0.95));
  ra::hyperbolic_attention_config cfg;
  cfg.dim = d;
  cfg.aggregation = ra::hyperbolic_aggregation::frechet_mean;
  cfg.frechet_max_iterations = 100;
  cfg.frechet_tolerance = std::is_same_v<T, float> ? 1e-5 : 1e-12;
  const ra::hyperbolic_attention<T> attn(cfg);
  const auto r =
      attn.compute_detailed(as<T>(hyp::row(hyp::ball_points(1, d, c, gen), 0)),
                            ruvector_test::to_eigen<T>(keys), ruvector_test::to_eigen<T>(values));
  ASSERT_TRUE(r.frechet.converged);
  EXPECT_LE(r.frechet.gradient_norm, cfg.frechet_tolerance);
  const hyp::vec m(r.output.begin(), r.output.end());
  const hyp::vec w(r.weights.begin(), r.weights.end());
  const auto g = hyp::karcher_field(m, values, w, c);
  // ‖grad‖ in the Riemannian metric is λ_m·‖g‖; float rounding of the output adds ~1e-6.
  const double lambda = 2.0 / (1.0 - c * hyp::dot(m, m));
  EXPECT_LE(lambda * hyp::norm(g), (std::is_same_v<T, float> ? 1e-4 : 1e-10));

  // With a cap of one iteration the report says it did not converge (and did one step).
  cfg.frechet_max_iterations = 1;
  cfg.frechet_tolerance = 1e-30;
  const auto capped = ra::hyperbolic_attention<T>(cfg).compute_detailed(
      as<T>(hyp::row(hyp::ball_points(1, d, c, gen), 0)), ruvector_test::to_eigen<T>(keys),
      ruvector_test::to_eigen<T>(values));
  EXPECT_FALSE(capped.frechet.converged);
  EXPECT_EQ(capped.frechet.iterations, 1u);
}

TYPED_TEST(HyperbolicAttentionTest, SeedsShapedAdapterAndTwoArgumentConstructor) {
  using T = TypeParam;
  const ra::hyperbolic_attention<T> attn(2, -1.0);
  EXPECT_EQ(attn.dim(), 2u);
  EXPECT_EQ(attn.curvature(), T(-1));
  const std::vector<std::vector<T>> keys{{T(0.1), T(0.2)}, {T(-0.3), T(0.1)}};
  const std::vector<std::vector<T>> values{{T(0.5), T(0.0)}, {T(0.0), T(0.5)}};
  const std::vector<T> q{T(0.05), T(0.1)};
  ra::row_matrix<T> K(2, 2), V(2, 2);
  K << keys[0][0], keys[0][1], keys[1][0], keys[1][1];
  V << values[0][0], values[0][1], values[1][0], values[1][1];
  EXPECT_EQ(attn.compute(q, keys, values), attn.compute(std::span<const T>(q), K, V));
}

TYPED_TEST(HyperbolicAttentionTest, InvalidConfigurationsAndArgumentsThrowNamedErrors) {
  using T = TypeParam;
  auto make = [](double curvature, double tau, std::size_t dim) {
    ra::hyperbolic_attention_config cfg;
    cfg.dim = dim;
    cfg.curvature = curvature;
    cfg.temperature = tau;
    return ra::hyperbolic_attention<T>(cfg);
  };
  EXPECT_THROW(make(0.0, 1.0, 2), ra::invalid_config);
  EXPECT_THROW(make(1.0, 1.0, 2), ra::invalid_config);
  EXPECT_THROW(make(std::nan(""), 1.0, 2), ra::invalid_config);
  EXPECT_THROW(make(-1.0, 0.0, 2), ra::invalid_config);
  EXPECT_THROW(make(-1.0, 1.0, 0), ra::invalid_config);

  const auto attn = make(-1.0, 1.0, 3);
  ra::row_matrix<T> K = ra::row_matrix<T>::Constant(4, 3, T(0.1));
  ra::row_matrix<T> V = ra::row_matrix<T>::Constant(4, 3, T(0.2));
  const std::vector<T> q(3, T(0.1));
  EXPECT_THROW((void)attn.compute(std::vector<T>(2, T(0)), K, V), ra::dimension_mismatch);
  EXPECT_THROW((void)attn.compute(q, ra::row_matrix<T>(4, 2), V), ra::dimension_mismatch);
  EXPECT_THROW((void)attn.compute(q, K, ra::row_matrix<T>(3, 3)), ra::dimension_mismatch);
  EXPECT_THROW((void)attn.compute(q, K, ra::row_matrix<T>(4, 2)), ra::dimension_mismatch);
  EXPECT_THROW((void)attn.compute(q, ra::row_matrix<T>(0, 3), ra::row_matrix<T>(0, 3)),
               ra::invalid_argument);

  auto bad_q = q;
  bad_q[1] = std::numeric_limits<T>::quiet_NaN();
  const auto msg = thrown_message<ra::non_finite_input>([&] { (void)attn.compute(bad_q, K, V); });
  EXPECT_NE(msg.find("query"), std::string::npos) << msg;
  auto bad_k = K;
  bad_k(2, 1) = std::numeric_limits<T>::infinity();
  const auto kmsg = thrown_message<ra::non_finite_input>([&] { (void)attn.compute(q, bad_k, V); });
  EXPECT_NE(kmsg.find("keys"), std::string::npos) << kmsg;
  auto bad_v = V;
  bad_v(3, 0) = std::numeric_limits<T>::quiet_NaN();
  EXPECT_THROW((void)attn.compute(q, K, bad_v), ra::non_finite_input);
}

}  // namespace
