#pragma once
// Independent references for the sphere, Euclidean and product-space tests
// (tests/sphere_product_test.cpp).
//
// Written from the mathematics, not from the library: this header includes no library header and
// calls no library code. It works in long double (64-bit significand on x86-64) and uses formulas
// that differ from the library's:
//
//   x̂ = x/‖x‖ (the zero vector is the origin e_0), R = radius
//   angle(x, y)      = 2·asin(‖x̂ − ŷ‖/2)        if ‖x̂ − ŷ‖ ≤ √2   (chord formula)
//                    = π − 2·asin(‖x̂ + ŷ‖/2)     otherwise
//   distance         = R·angle
//   exp_x(v)         = R·cos(t)·x̂ + R·sin(t)·v/‖v‖,   t = ‖v‖/R   (R·x̂ for v = 0)
//   log_x(y)         = R·θ·u/‖u‖, u = ŷ − ⟨x̂, ŷ⟩·x̂  (0 when u = 0)
//   transport(x,y,v) = v + ⟨e, v⟩·(e' − e), e = u/‖u‖, e' = −sin θ·x̂ + cos θ·e
//                      (rotation of the plane span{x̂, e} by θ; the identity when u = 0)
//
// Poincaré ball of curvature −c (Ganea et al. 2018), used for the mixed-curvature space:
//   x ⊕ y     = ((1 + 2c⟨x,y⟩ + c‖y‖²)x + (1 − c‖x‖²)y) / (1 + 2c⟨x,y⟩ + c²‖x‖²‖y‖²)
//   d(x, y)   = (1/√c)·arcosh(1 + 2c‖x − y‖²/((1 − c‖x‖²)(1 − c‖y‖²)))
//   λ_x       = 2/(1 − c‖x‖²),  ⟨u, v⟩_x = λ_x²⟨u, v⟩
//   exp_x(v)  = x ⊕ (tanh(√c·λ_x‖v‖/2)·v/(√c‖v‖))
//   log_x(y)  = (2/(√c·λ_x))·artanh(√c‖z‖)·z/‖z‖,  z = (−x) ⊕ y

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numbers>
#include <random>
#include <vector>

namespace ruvector_test::sphere_oracle {

using vec = std::vector<double>;
using lvec = std::vector<long double>;

inline long double ldot(const lvec& a, const lvec& b) {
  long double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

inline lvec widen(const vec& a) { return lvec(a.begin(), a.end()); }

inline vec narrow(const lvec& a) {
  vec r(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) r[i] = static_cast<double>(a[i]);
  return r;
}

/// x/‖x‖, or e_0 for the zero vector.
inline lvec unit(const vec& x) {
  lvec v = widen(x);
  const long double n = std::sqrt(ldot(v, v));
  if (n == 0) {
    lvec e(x.size(), 0.0L);
    e[0] = 1;
    return e;
  }
  for (auto& a : v) a /= n;
  return v;
}

/// The angle between x and y (chord formula, long double).
inline long double angle_l(const vec& x, const vec& y) {
  const lvec a = unit(x), b = unit(y);
  long double dm = 0, dp = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    dm += (a[i] - b[i]) * (a[i] - b[i]);
    dp += (a[i] + b[i]) * (a[i] + b[i]);
  }
  const long double cm = std::sqrt(dm), cp = std::sqrt(dp);
  if (cm <= std::sqrt(2.0L)) return 2 * std::asin(cm / 2);
  return std::numbers::pi_v<long double> - 2 * std::asin(std::min(cp / 2, 1.0L));
}

inline double angle(const vec& x, const vec& y) { return static_cast<double>(angle_l(x, y)); }

inline double distance(const vec& x, const vec& y, double r) {
  return static_cast<double>(static_cast<long double>(r) * angle_l(x, y));
}

inline vec exp(const vec& x, const vec& v, double r) {
  const lvec xh = unit(x);
  const lvec vl = widen(v);
  const long double nv = std::sqrt(ldot(vl, vl));
  const long double R = r;
  lvec out(x.size());
  if (nv == 0) {
    for (std::size_t i = 0; i < x.size(); ++i) out[i] = R * xh[i];
    return narrow(out);
  }
  const long double t = nv / R;
  for (std::size_t i = 0; i < x.size(); ++i)
    out[i] = R * std::cos(t) * xh[i] + R * std::sin(t) * vl[i] / nv;
  return narrow(out);
}

/// u = ŷ − ⟨x̂, ŷ⟩ x̂ (long double).
inline lvec orth(const lvec& xh, const lvec& yh) {
  const long double p = ldot(xh, yh);
  lvec u(xh.size());
  for (std::size_t i = 0; i < xh.size(); ++i) u[i] = yh[i] - p * xh[i];
  return u;
}

inline vec log(const vec& x, const vec& y, double r) {
  const lvec xh = unit(x), yh = unit(y);
  const lvec u = orth(xh, yh);
  const long double nu = std::sqrt(ldot(u, u));
  lvec out(x.size(), 0.0L);
  if (nu == 0) return narrow(out);
  const long double k = static_cast<long double>(r) * angle_l(x, y) / nu;
  for (std::size_t i = 0; i < x.size(); ++i) out[i] = k * u[i];
  return narrow(out);
}

inline vec transport(const vec& x, const vec& y, const vec& v) {
  const lvec xh = unit(x), yh = unit(y);
  lvec e = orth(xh, yh);
  const long double ne = std::sqrt(ldot(e, e));
  if (ne == 0) return v;
  for (auto& a : e) a /= ne;
  const long double th = angle_l(x, y);
  const lvec vl = widen(v);
  const long double ev = ldot(e, vl);
  lvec out(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const long double ep = -std::sin(th) * xh[i] + std::cos(th) * e[i];
    out[i] = vl[i] + ev * (ep - e[i]);
  }
  return narrow(out);
}

inline double euclidean_distance(const vec& x, const vec& y) {
  long double s = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const long double d = static_cast<long double>(x[i]) - y[i];
    s += d * d;
  }
  return static_cast<double>(std::sqrt(s));
}

inline double dot(const vec& a, const vec& b) {
  return static_cast<double>(ldot(widen(a), widen(b)));
}

inline double norm(const vec& a) { return std::sqrt(dot(a, a)); }

inline vec random_point(std::size_t n, double r, std::mt19937_64& rng);

// ---- Poincaré ball (curvature −c) --------------------------------------------------------------

inline lvec mobius_add(const lvec& x, const lvec& y, long double c) {
  const long double xy = ldot(x, y), xx = ldot(x, x), yy = ldot(y, y);
  const long double den = 1 + 2 * c * xy + c * c * xx * yy;
  lvec out(x.size());
  for (std::size_t i = 0; i < x.size(); ++i)
    out[i] = ((1 + 2 * c * xy + c * yy) * x[i] + (1 - c * xx) * y[i]) / den;
  return out;
}

inline double poincare_distance(const vec& x, const vec& y, double c) {
  const lvec a = widen(x), b = widen(y);
  long double dd = 0;
  for (std::size_t i = 0; i < a.size(); ++i) dd += (a[i] - b[i]) * (a[i] - b[i]);
  const long double cl = c;
  const long double arg = 1 + 2 * cl * dd / ((1 - cl * ldot(a, a)) * (1 - cl * ldot(b, b)));
  return static_cast<double>(std::acosh(arg) / std::sqrt(cl));
}

inline double poincare_lambda(const vec& x, double c) {
  const lvec a = widen(x);
  return static_cast<double>(2 / (1 - static_cast<long double>(c) * ldot(a, a)));
}

inline vec poincare_exp(const vec& x, const vec& v, double c) {
  const lvec a = widen(x), vl = widen(v);
  const long double cl = c, sc = std::sqrt(cl);
  const long double nv = std::sqrt(ldot(vl, vl));
  if (nv == 0) return x;
  const long double lam = 2 / (1 - cl * ldot(a, a));
  const long double k = std::tanh(sc * lam * nv / 2) / (sc * nv);
  lvec w(vl.size());
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = k * vl[i];
  return narrow(mobius_add(a, w, cl));
}

inline vec poincare_log(const vec& x, const vec& y, double c) {
  const lvec a = widen(x), b = widen(y);
  lvec na(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) na[i] = -a[i];
  const long double cl = c, sc = std::sqrt(cl);
  const lvec z = mobius_add(na, b, cl);
  const long double nz = std::sqrt(ldot(z, z));
  lvec out(a.size(), 0.0L);
  if (nz == 0) return narrow(out);
  const long double lam = 2 / (1 - cl * ldot(a, a));
  const long double k = 2 / (sc * lam) * std::atanh(sc * nz) / nz;
  for (std::size_t i = 0; i < a.size(); ++i) out[i] = k * z[i];
  return narrow(out);
}

/// A random point of the Poincaré ball of curvature −c with √c‖x‖ uniform in [0, rmax).
inline vec random_ball_point(std::size_t n, double c, double rmax, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(0.0, rmax);
  vec d = random_point(n, 1.0, rng);
  const double r = u(rng) / std::sqrt(c);
  for (auto& a : d) a *= r;
  return d;
}

// ---- random inputs ------------------------------------------------------------------------------

inline vec gaussian(std::size_t n, std::mt19937_64& rng) {
  std::normal_distribution<double> nd(0.0, 1.0);
  vec g(n);
  for (auto& a : g) a = nd(rng);
  return g;
}

/// A uniformly random point of the sphere of radius r in R^n.
inline vec random_point(std::size_t n, double r, std::mt19937_64& rng) {
  for (;;) {
    vec g = gaussian(n, rng);
    const double ng = norm(g);
    if (ng < 1e-3) continue;
    for (auto& a : g) a *= r / ng;
    return g;
  }
}

/// A random vector of length len tangent at x (orthogonal to x).
inline vec random_tangent(const vec& x, double len, std::mt19937_64& rng) {
  const lvec xh = unit(x);
  for (;;) {
    const vec g = gaussian(x.size(), rng);
    lvec t = widen(g);
    const long double p = ldot(t, xh);
    for (std::size_t i = 0; i < t.size(); ++i) t[i] -= p * xh[i];
    const long double nt = std::sqrt(ldot(t, t));
    if (nt < 1e-3L) continue;
    for (auto& a : t) a *= static_cast<long double>(len) / nt;
    return narrow(t);
  }
}

/// R·x/‖x‖ (the projection onto the sphere of radius r).
inline vec to_sphere(const vec& x, double r) {
  const lvec xh = unit(x);
  vec out(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) out[i] = static_cast<double>(r * xh[i]);
  return out;
}

}  // namespace ruvector_test::sphere_oracle
