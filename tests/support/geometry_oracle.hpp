#pragma once
// Independent double-precision references for the hyperbolic geometry tests (manifolds_test.cpp).
//
// Written from the textbook formulas, not from the library: this header includes no library
// header and deliberately evaluates the definitions directly (e.g. the distance through a Möbius
// addition and artanh, the gyration through three Möbius additions, Lorentz parallel transport
// through logarithms), so a rewriting mistake in the library's stable forms cannot be mirrored.
//
// Poincaré ball of curvature −c (Ganea, Bécigneul & Hofmann 2018, "Hyperbolic Neural Networks"):
//   λ_x        = 2/(1 − c‖x‖²),   ⟨u, v⟩_x = λ_x² u·v
//   x ⊕ y      = ((1 + 2c x·y + c‖y‖²) x + (1 − c‖x‖²) y) / (1 + 2c x·y + c²‖x‖²‖y‖²)
//   r ⊗ x      = tanh(r artanh(√c‖x‖)) x/(√c‖x‖)
//   gyr[u,v]w  = −(u ⊕ v) ⊕ (u ⊕ (v ⊕ w))
//   d(x, y)    = (2/√c) artanh(√c‖(−x) ⊕ y‖)
//              = (1/√c) arcosh(1 + 2c‖x − y‖²/((1 − c‖x‖²)(1 − c‖y‖²)))
//   exp_x(v)   = x ⊕ (tanh(√c λ_x‖v‖/2) v/(√c‖v‖))
//   log_x(y)   = (2/(√c λ_x)) artanh(√c‖u‖) u/‖u‖,   u = (−x) ⊕ y
//   P_{x→y}(v) = (λ_x/λ_y) gyr[y, −x] v
// Hyperboloid ⟨x, x⟩_L = −1/c, x₀ > 0 (Nickel & Kiela 2018):
//   ⟨u, v⟩_L   = −u₀v₀ + Σ uᵢvᵢ
//   d(x, y)    = (1/√c) arcosh(−c⟨x, y⟩_L)
//   exp_x(v)   = cosh(√c‖v‖_L) x + sinh(√c‖v‖_L) v/(√c‖v‖_L)
//   log_x(y)   = d(x, y) u/‖u‖_L,   u = y + c⟨x, y⟩_L x
//   P_{x→y}(v) = v − (⟨log_x y, v⟩_L / d²)(log_x y + log_y x)    (the general form: transport
//                along the geodesic fixes its normal part and rotates the tangent direction)
// Model maps: Poincaré p ↔ Lorentz (x₀, x_s) = ((1 + c‖p‖²)/(√c(1 − c‖p‖²)), 2p/(1 − c‖p‖²)),
//   p = x_s/(1 + √c x₀); Klein k = 2p/(1 + c‖p‖²), p = k/(1 + √(1 − c‖k‖²)).
// Einstein midpoint (Ungar 2008) in the Klein model: m = Σ wᵢγᵢkᵢ / Σ wᵢγᵢ, γᵢ = 1/√(1 − c‖kᵢ‖²).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace ruvector_test::geo {

using vec = std::vector<double>;

// ---- Euclidean helpers ---------------------------------------------------------------------

inline double dot(const vec& a, const vec& b) {
  double s = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}
inline double norm(const vec& a) { return std::sqrt(dot(a, a)); }
inline vec add(const vec& a, const vec& b) {
  vec r(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) r[i] = a[i] + b[i];
  return r;
}
inline vec sub(const vec& a, const vec& b) {
  vec r(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) r[i] = a[i] - b[i];
  return r;
}
inline vec scale(double s, const vec& a) {
  vec r(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) r[i] = s * a[i];
  return r;
}
inline vec neg(const vec& a) { return scale(-1.0, a); }
/// ‖a − b‖₂.
inline double dist2(const vec& a, const vec& b) { return norm(sub(a, b)); }

// ---- Poincaré ball -------------------------------------------------------------------------

inline double lambda(const vec& x, double c) { return 2.0 / (1.0 - c * dot(x, x)); }

inline vec mobius_add(const vec& x, const vec& y, double c) {
  const double xy = dot(x, y), xx = dot(x, x), yy = dot(y, y);
  const double a = 1.0 + 2.0 * c * xy + c * yy;
  const double b = 1.0 - c * xx;
  const double den = 1.0 + 2.0 * c * xy + c * c * xx * yy;
  vec r(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) r[i] = (a * x[i] + b * y[i]) / den;
  return r;
}

inline vec mobius_scalar(double r, const vec& x, double c) {
  const double nx = norm(x);
  if (nx == 0.0) return vec(x.size(), 0.0);
  const double sc = std::sqrt(c);
  return scale(std::tanh(r * std::atanh(sc * nx)) / (sc * nx), x);
}

inline vec gyr(const vec& u, const vec& v, const vec& w, double c) {
  return mobius_add(neg(mobius_add(u, v, c)), mobius_add(u, mobius_add(v, w, c), c), c);
}

inline double poincare_dist(const vec& x, const vec& y, double c) {
  const double sc = std::sqrt(c);
  return 2.0 / sc * std::atanh(sc * norm(mobius_add(neg(x), y, c)));
}

/// The same distance by the second textbook form (Nickel & Kiela 2017, eq. 1, with curvature),
/// (1/√c) arcosh(1 + 2c‖x − y‖²/((1 − c‖x‖²)(1 − c‖y‖²))), better conditioned near the boundary
/// (no artanh of a value within 1e-8 of 1); used to measure distances between nearby results, so
/// arcosh(1 + δ) is evaluated as log1p(δ + √(δ² + 2δ)), which resolves δ below 1e-16.
inline double poincare_dist_arcosh(const vec& x, const vec& y, double c) {
  const double dd = dot(sub(x, y), sub(x, y));
  const double delta = 2.0 * c * dd / ((1.0 - c * dot(x, x)) * (1.0 - c * dot(y, y)));
  return std::log1p(delta + std::sqrt(delta * delta + 2.0 * delta)) / std::sqrt(c);
}

inline double poincare_dist0(const vec& x, double c) {
  const double sc = std::sqrt(c);
  return 2.0 / sc * std::atanh(sc * norm(x));
}

inline vec poincare_exp(const vec& x, const vec& v, double c) {
  const double nv = norm(v);
  if (nv == 0.0) return x;
  const double sc = std::sqrt(c);
  const vec u = scale(std::tanh(sc * lambda(x, c) * nv / 2.0) / (sc * nv), v);
  return mobius_add(x, u, c);
}

inline vec poincare_log(const vec& x, const vec& y, double c) {
  const vec u = mobius_add(neg(x), y, c);
  const double nu = norm(u);
  if (nu == 0.0) return vec(x.size(), 0.0);
  const double sc = std::sqrt(c);
  return scale(2.0 / (sc * lambda(x, c)) * std::atanh(sc * nu) / nu, u);
}

inline vec poincare_exp0(const vec& v, double c) { return poincare_exp(vec(v.size(), 0.0), v, c); }
inline vec poincare_log0(const vec& y, double c) { return poincare_log(vec(y.size(), 0.0), y, c); }

inline vec poincare_transport(const vec& x, const vec& y, const vec& v, double c) {
  return scale(lambda(x, c) / lambda(y, c), gyr(y, neg(x), v, c));
}

inline double poincare_inner(const vec& x, const vec& u, const vec& v, double c) {
  const double l = lambda(x, c);
  return l * l * dot(u, v);
}

// ---- hyperboloid ---------------------------------------------------------------------------

inline double minkowski(const vec& u, const vec& v) {
  double s = -u[0] * v[0];
  for (std::size_t i = 1; i < u.size(); ++i) s += u[i] * v[i];
  return s;
}

inline vec poincare_to_lorentz(const vec& p, double c) {
  const double pp = dot(p, p);
  vec x(p.size() + 1);
  x[0] = (1.0 + c * pp) / (std::sqrt(c) * (1.0 - c * pp));
  for (std::size_t i = 0; i < p.size(); ++i) x[i + 1] = 2.0 * p[i] / (1.0 - c * pp);
  return x;
}

inline vec lorentz_to_poincare(const vec& x, double c) {
  vec p(x.size() - 1);
  for (std::size_t i = 0; i < p.size(); ++i) p[i] = x[i + 1] / (1.0 + std::sqrt(c) * x[0]);
  return p;
}

inline double lorentz_dist(const vec& x, const vec& y, double c) {
  return std::acosh(std::max(1.0, -c * minkowski(x, y))) / std::sqrt(c);
}

inline vec lorentz_exp(const vec& x, const vec& v, double c) {
  const double nv = std::sqrt(std::max(0.0, minkowski(v, v)));
  if (nv == 0.0) return x;
  const double t = std::sqrt(c) * nv;
  return add(scale(std::cosh(t), x), scale(std::sinh(t) / t, v));
}

inline vec lorentz_log(const vec& x, const vec& y, double c) {
  const vec u = add(y, scale(c * minkowski(x, y), x));
  const double nu = std::sqrt(std::max(0.0, minkowski(u, u)));
  if (nu == 0.0) return vec(x.size(), 0.0);
  return scale(lorentz_dist(x, y, c) / nu, u);
}

inline vec lorentz_transport(const vec& x, const vec& y, const vec& v, double c) {
  const double d = lorentz_dist(x, y, c);
  if (d == 0.0) return v;
  const vec lxy = lorentz_log(x, y, c);
  const vec lyx = lorentz_log(y, x, c);
  return sub(v, scale(minkowski(lxy, v) / (d * d), add(lxy, lyx)));
}

// ---- Klein ---------------------------------------------------------------------------------

inline vec poincare_to_klein(const vec& p, double c) {
  return scale(2.0 / (1.0 + c * dot(p, p)), p);
}

inline vec klein_to_poincare(const vec& k, double c) {
  return scale(1.0 / (1.0 + std::sqrt(1.0 - c * dot(k, k))), k);
}

/// The weighted Einstein midpoint of Klein points (in Klein coordinates).
inline vec einstein_klein(const std::vector<vec>& ks, const vec& w, double c) {
  vec num(ks.front().size(), 0.0);
  double den = 0.0;
  for (std::size_t i = 0; i < ks.size(); ++i) {
    const double g = 1.0 / std::sqrt(1.0 - c * dot(ks[i], ks[i]));
    den += w[i] * g;
    for (std::size_t j = 0; j < num.size(); ++j) num[j] += w[i] * g * ks[i][j];
  }
  return scale(1.0 / den, num);
}

// ---- random points -------------------------------------------------------------------------

/// A uniformly random direction in Rⁿ scaled to norm r/√c (so √c‖x‖ = r).
inline vec ball_point(std::size_t n, double c, double r, std::mt19937_64& gen) {
  std::normal_distribution<double> normal(0.0, 1.0);
  vec x(n);
  double nn = 0.0;
  while (nn == 0.0) {
    for (auto& v : x) v = normal(gen);
    nn = norm(x);
  }
  return scale(r / (std::sqrt(c) * nn), x);
}

/// A random ball point with √c‖x‖ uniform in [r_lo, r_hi].
inline vec ball_point(std::size_t n, double c, double r_lo, double r_hi, std::mt19937_64& gen) {
  std::uniform_real_distribution<double> u(r_lo, r_hi);
  return ball_point(n, c, u(gen), gen);
}

/// N(0, s²) entries.
inline vec gaussian(std::size_t n, double s, std::mt19937_64& gen) {
  std::normal_distribution<double> normal(0.0, s);
  vec v(n);
  for (auto& x : v) x = normal(gen);
  return v;
}

}  // namespace ruvector_test::geo
