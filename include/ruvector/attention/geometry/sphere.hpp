#pragma once
/// \file geometry/sphere.hpp
/// \brief The sphere S^{n−1}_c of constant curvature +c (c > 0) embedded in R^n, as a
/// `constant_curvature_manifold`.
///
/// The positively curved factor of product spaces E^e × H^h × S^s (Gu et al. 2019, "Learning
/// Mixed-Curvature Representations in Product Spaces"; Skopek et al. 2020, "Mixed-curvature
/// Variational Autoencoders"). Points are stored in ambient coordinates x ∈ R^n with ‖x‖ = R,
/// R = 1/√c; tangent vectors at x are the v ∈ R^n with ⟨x, v⟩ = 0; the metric is the Euclidean one
/// restricted to T_x. With θ(x, y) ∈ [0, π] the angle between x and y:
///
///     d(x, y)    = R·θ,   θ = 2·atan2(‖x − y‖, ‖x + y‖)   (‖x‖ = ‖y‖; see below otherwise)
///              u = (y − x) − (⟨x, y − x⟩/‖x‖²)·x  (the part of y orthogonal to x)
///     ⟨u, v⟩_x   = Σ u_i v_i
///     exp_x(v)   = cos(‖v‖/R)·x + R·sin(‖v‖/R)·v/‖v‖            (exp_x(0) = x)
///     log_x(y)   = R·θ·u/‖u‖                                       (log_x(x) = 0)
///     Γ_{x→y}(v) = v + ⟨e, v⟩·(e' − e),  e = u/‖u‖,  e' = −sin θ·x/R + cos θ·e        (θ < π)
///                = v − (⟨x + y, v⟩/(R² + ⟨x, y⟩))·(x + y)     on T_x (the same map)
///     origin     = (R, 0, …, 0)
///
/// Numerical conventions:
/// - Angles are never taken from a bare acos(⟨x, y⟩/R²), which loses half the digits near θ = 0
///   and θ = π. `distance` uses Kahan's half-angle form on the squared chords ‖x ∓ y‖², each
///   formed from the element-wise difference/sum in one fused SIMD pass, corrected for unequal
///   norms (δ = ‖x‖ − ‖y‖: θ = 2·atan2(√(‖x − y‖² − δ²), √(‖x + y‖² − δ²))). log and transport
///   form u from the difference y − x and take θ = atan2(‖x‖·‖u‖, ⟨x, y⟩). Both keep relative
///   accuracy for close points and absolute accuracy near π.
/// - Points are read by direction: every operation uses R·x/‖x‖ for a point argument x (so points
///   that drifted off the sphere by rounding are harmless), and a vector whose squared norm is 0
///   (including one that underflows) is read as the origin — the same rule as `project`.
/// - exp rescales its result to norm R, removing the O(ε) radial drift of repeated updates; v is
///   assumed tangent at x (use `project_tangent` otherwise).
/// - log at (numerically) antipodal points: every great circle through x reaches −x, so log is
///   not unique. When u vanishes (or is so small that R·π/‖u‖ is not finite) and
///   ⟨x, y⟩ < 0, log returns the vector of length R·π pointing toward the coordinate axis e_k with
///   the smallest |x_k| (lowest k on ties): R·π·w/‖w‖ with w = e_k − (x_k/‖x‖²)·x. When u vanishes
///   and ⟨x, y⟩ > 0 (y = x) it returns 0. Never NaN for finite non-degenerate input.
/// - transport rotates the plane span{x, e} by θ and fixes its orthogonal complement (parallel
///   transport along the geodesic from x to y). It is evaluated from the twice-orthogonalised u
///   rather than from x + y, which near −x is pure rounding noise, so Γ(v) stays tangent at y.
///   At antipodal points it follows the same geodesic as log, i.e. Γ(v) = v − 2⟨ê, v⟩·ê with
///   ê = w/‖w‖ (the limit along that great circle), so Γ_{x→−x}(log_x(−x)) = −log_{−x}(x).
///   y = x gives the identity.
/// - n = 1 (S^0 = {−R, R}) is degenerate: T_x = {0}, log and transport of tangent vectors give 0.
///   n = 0 is rejected (`invalid_argument`): no point has norm R in R^0.
/// - Values are not checked for finiteness; NaN/Inf propagate. Squared norms must be
///   representable in T (‖x‖² ≈ R² = 1/c, which the constructor checks).
///
/// The object stores only c (and R); the dimension comes from the spans, which must agree
/// (`dimension_mismatch`). No operation allocates.

#include <cmath>
#include <cstddef>
#include <limits>
#include <numbers>
#include <span>
#include <sstream>
#include <string_view>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/kernels/reduce.hpp"

namespace ruvector::attention {

namespace detail {

/// A point read as stored.
template <class T>
struct sphere_stored_point {
  const T* p;
  T operator()(std::size_t i) const noexcept { return p[i]; }
};

/// The origin (r, 0, …, 0), substituted for a zero vector.
template <class T>
struct sphere_axis_point {
  T r;
  T operator()(std::size_t i) const noexcept { return i == 0 ? r : T(0); }
};

/// Calls f with an accessor for the point x: the origin if ‖x‖² == 0, x itself otherwise.
template <class T, class F>
decltype(auto) sphere_with_point(std::span<const T> x, T r, F&& f) {
  if (kernels::dot(x.data(), x.data(), x.size()) == T(0)) return f(sphere_axis_point<T>{r});
  return f(sphere_stored_point<T>{x.data()});
}

/// True for the stored-point accessor (the SIMD fast paths apply).
template <class X>
inline constexpr bool sphere_is_stored = false;
template <class T>
inline constexpr bool sphere_is_stored<sphere_stored_point<T>> = true;

// ---- SIMD passes over stored points (noexcept, no validation) ---------------------------------

/// q = ‖x‖², a = ⟨x, y − x⟩, p = ⟨x, y⟩ in one pass.
template <class T, class Arch = kernels::default_arch>
void sphere_pair_sums_simd(const T* x, const T* y, std::size_t n, T& q, T& a, T& p) noexcept {
  using B = kernels::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  std::size_t i = 0;
  q = a = p = T(0);
  if (n >= W) {
    B qb(T(0)), ab(T(0)), pb(T(0));
    for (; i + W <= n; i += W) {
      const B xb = B::load_unaligned(x + i);
      const B yb = B::load_unaligned(y + i);
      qb = xsimd::fma(xb, xb, qb);
      ab = xsimd::fma(xb, yb - xb, ab);
      pb = xsimd::fma(xb, yb, pb);
    }
    q = kernels::detail::hsum(qb);
    a = kernels::detail::hsum(ab);
    p = kernels::detail::hsum(pb);
  }
  for (; i < n; ++i) {
    q += x[i] * x[i];
    a += x[i] * (y[i] - x[i]);
    p += x[i] * y[i];
  }
}

/// out = (y − x) − alpha·x; returns ⟨x, out⟩.
template <class T, class Arch = kernels::default_arch>
T sphere_orth_simd(const T* x, const T* y, T alpha, T* out, std::size_t n) noexcept {
  using B = kernels::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  std::size_t i = 0;
  T b = T(0);
  if (n >= W) {
    const B al(alpha);
    B acc(T(0));
    for (; i + W <= n; i += W) {
      const B xb = B::load_unaligned(x + i);
      const B ub = xsimd::fnma(al, xb, B::load_unaligned(y + i) - xb);
      ub.store_unaligned(out + i);
      acc = xsimd::fma(xb, ub, acc);
    }
    b = kernels::detail::hsum(acc);
  }
  for (; i < n; ++i) {
    out[i] = (y[i] - x[i]) - alpha * x[i];
    b += x[i] * out[i];
  }
  return b;
}

/// out = a·x + b·v; returns ‖out‖².
template <class T, class Arch = kernels::default_arch>
T sphere_combine_simd(T a, const T* x, T b, const T* v, T* out, std::size_t n) noexcept {
  using B = kernels::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  std::size_t i = 0;
  T s = T(0);
  if (n >= W) {
    const B av(a), bv(b);
    B acc(T(0));
    for (; i + W <= n; i += W) {
      const B ob = xsimd::fma(av, B::load_unaligned(x + i), bv * B::load_unaligned(v + i));
      ob.store_unaligned(out + i);
      acc = xsimd::fma(ob, ob, acc);
    }
    s = kernels::detail::hsum(acc);
  }
  for (; i < n; ++i) {
    out[i] = a * x[i] + b * v[i];
    s += out[i] * out[i];
  }
  return s;
}

/// out = a·x + b·out; returns ‖out‖² (a = −β, b = 1: the second Gram–Schmidt pass). `out` may be
/// `v` of sphere_combine_simd: each element is read before it is written.
template <class T, class Arch = kernels::default_arch>
T sphere_axpby_norm_simd(T a, const T* x, T b, T* out, std::size_t n) noexcept {
  return sphere_combine_simd<T, Arch>(a, x, b, out, out, n);
}

/// First pass shared by distance and log: q = ‖x‖², a = ⟨x, y − x⟩, p = ⟨x, y⟩.
template <class T, class X, class Y>
void sphere_pair_sums(X x, Y y, std::size_t n, T& q, T& a, T& p) noexcept {
  q = a = p = T(0);
  for (std::size_t i = 0; i < n; ++i) {
    const T xi = x(i);
    const T yi = y(i);
    q += xi * xi;
    a += xi * (yi - xi);
    p += xi * yi;
  }
}

/// Angle θ ∈ [0, π] between x and y (both non-zero): atan2(‖x‖·‖u‖, ⟨x, y⟩) with u the part of
/// y − x orthogonal to x. The general (accessor) path, used when a point reads as the origin.
template <class T, class X, class Y>
T sphere_angle(X x, Y y, std::size_t n) noexcept {
  T q, a, p;
  sphere_pair_sums(x, y, n, q, a, p);
  const T alpha = a / q;
  T uu = T(0);
  for (std::size_t i = 0; i < n; ++i) {
    const T xi = x(i);
    const T ui = (y(i) - xi) - alpha * xi;
    uu += ui * ui;
  }
  return std::atan2(std::sqrt(q) * std::sqrt(uu), p);
}

/// ‖x‖², ‖y‖², ‖x − y‖², ‖x + y‖².
template <class T>
struct sphere_chord {
  T xx;
  T yy;
  T dd;
  T ss;
};

/// One SIMD pass computing `sphere_chord` (differences and sums formed before squaring, two
/// accumulator sets per step).
template <class T, class Arch = kernels::default_arch>
[[nodiscard]] sphere_chord<T> sphere_chord_sums(const T* x, const T* y, std::size_t n) noexcept {
  using B = kernels::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  std::size_t i = 0;
  sphere_chord<T> r{T(0), T(0), T(0), T(0)};
  if (n >= W) {
    B xx0(T(0)), yy0(T(0)), dd0(T(0)), ss0(T(0));
    B xx1(T(0)), yy1(T(0)), dd1(T(0)), ss1(T(0));
    for (; i + 2 * W <= n; i += 2 * W) {
      const B x0 = B::load_unaligned(x + i);
      const B y0 = B::load_unaligned(y + i);
      const B x1 = B::load_unaligned(x + i + W);
      const B y1 = B::load_unaligned(y + i + W);
      const B d0 = x0 - y0, s0 = x0 + y0, d1 = x1 - y1, s1 = x1 + y1;
      xx0 = xsimd::fma(x0, x0, xx0);
      yy0 = xsimd::fma(y0, y0, yy0);
      dd0 = xsimd::fma(d0, d0, dd0);
      ss0 = xsimd::fma(s0, s0, ss0);
      xx1 = xsimd::fma(x1, x1, xx1);
      yy1 = xsimd::fma(y1, y1, yy1);
      dd1 = xsimd::fma(d1, d1, dd1);
      ss1 = xsimd::fma(s1, s1, ss1);
    }
    for (; i + W <= n; i += W) {
      const B x0 = B::load_unaligned(x + i);
      const B y0 = B::load_unaligned(y + i);
      const B d0 = x0 - y0, s0 = x0 + y0;
      xx0 = xsimd::fma(x0, x0, xx0);
      yy0 = xsimd::fma(y0, y0, yy0);
      dd0 = xsimd::fma(d0, d0, dd0);
      ss0 = xsimd::fma(s0, s0, ss0);
    }
    r.xx = kernels::detail::hsum(xx0 + xx1);
    r.yy = kernels::detail::hsum(yy0 + yy1);
    r.dd = kernels::detail::hsum(dd0 + dd1);
    r.ss = kernels::detail::hsum(ss0 + ss1);
  }
  for (; i < n; ++i) {
    const T d = x[i] - y[i];
    const T s = x[i] + y[i];
    r.xx += x[i] * x[i];
    r.yy += y[i] * y[i];
    r.dd += d * d;
    r.ss += s * s;
  }
  return r;
}

/// The angle from the chord sums (Kahan's half-angle form, extended to unequal norms): with
/// δ = ‖x‖ − ‖y‖, ‖x − y‖² = δ² + 4‖x‖‖y‖ sin²(θ/2) and ‖x + y‖² = δ² + 4‖x‖‖y‖ cos²(θ/2), so
/// θ = 2·atan2(√(‖x − y‖² − δ²), √(‖x + y‖² − δ²)). Both squared chords are formed from the
/// element-wise difference/sum, so θ keeps its relative accuracy near 0 and its absolute
/// accuracy near π. Requires ‖x‖, ‖y‖ > 0.
template <class T>
[[nodiscard]] T sphere_chord_angle(const sphere_chord<T>& c) noexcept {
  const T nx = std::sqrt(c.xx);
  const T ny = std::sqrt(c.yy);
  const T delta = (c.xx - c.yy) / (nx + ny);
  const T d2 = delta * delta;
  const T sin_part = c.dd > d2 ? c.dd - d2 : T(0);
  const T cos_part = c.ss > d2 ? c.ss - d2 : T(0);
  return T(2) * std::atan2(std::sqrt(sin_part), std::sqrt(cos_part));
}

/// Writes the (unnormalised) antipodal direction w = e_k − (x_k/q)·x, k = argmin |x_k|, into out
/// and returns ‖w‖² (0 when n = 1).
template <class T, class X>
T sphere_antipodal_direction(X x, std::size_t n, T q, T* out) noexcept {
  std::size_t k = 0;
  T best = std::abs(x(0));
  for (std::size_t i = 1; i < n; ++i) {
    const T ai = std::abs(x(i));
    if (ai < best) {
      best = ai;
      k = i;
    }
  }
  const T coef = x(k) / q;
  T ww = T(0);
  for (std::size_t i = 0; i < n; ++i) {
    const T wi = (i == k ? T(1) : T(0)) - coef * x(i);
    out[i] = wi;
    ww += wi * wi;
  }
  return ww;
}

/// The initial direction of the geodesic from x to y, shared by log and transport.
template <class T>
struct sphere_geodesic {
  T theta;   ///< angle θ(x, y) ∈ [0, π]
  T inv_u;   ///< 1/‖u‖ (valid only when kind == 0)
  T q;       ///< ‖x‖²
  int kind;  ///< 0: out holds u; 1: y = x (u vanishes, ⟨x, y⟩ > 0); 2: y = −x
};

/// Writes u = (y − x) − (⟨x, y − x⟩/‖x‖²)·x into out and classifies the pair. Gram–Schmidt is
/// applied twice ("twice is enough"): the second pass keeps u tangent to working precision even
/// when it is a small residual (near-antipodal points). The pair is degenerate when ‖u‖ is 0 or
/// so small that R·π/‖u‖ is not finite.
template <class T, class X, class Y>
sphere_geodesic<T> sphere_direction(X x, Y y, std::size_t n, T r, T* out) noexcept {
  T q, a, p, uu;
  if constexpr (sphere_is_stored<X> && sphere_is_stored<Y>) {
    sphere_pair_sums_simd(x.p, y.p, n, q, a, p);
    const T b = sphere_orth_simd(x.p, y.p, a / q, out, n);
    uu = sphere_axpby_norm_simd(-(b / q), x.p, T(1), out, n);
  } else {
    sphere_pair_sums(x, y, n, q, a, p);
    const T alpha = a / q;
    T b = T(0);
    for (std::size_t i = 0; i < n; ++i) {
      const T xi = x(i);
      const T ui = (y(i) - xi) - alpha * xi;
      out[i] = ui;
      b += xi * ui;
    }
    const T beta = b / q;
    uu = T(0);
    for (std::size_t i = 0; i < n; ++i) {
      out[i] -= beta * x(i);
      uu += out[i] * out[i];
    }
  }
  const T nu = std::sqrt(uu);
  const T inv_u = T(1) / nu;
  sphere_geodesic<T> g{std::atan2(std::sqrt(q) * nu, p), inv_u, q, 0};
  if (!(nu > T(0) && std::isfinite(r * std::numbers::pi_v<T> * inv_u))) {
    g.kind = p > T(0) ? 1 : 2;
    g.theta = p > T(0) ? T(0) : std::numbers::pi_v<T>;
  }
  return g;
}

/// log_x(y) on the sphere of radius r (see the file comment for the conventions).
template <class T, class X, class Y>
void sphere_log(X x, Y y, std::size_t n, T r, T* out) noexcept {
  const sphere_geodesic<T> g = sphere_direction(x, y, n, r, out);
  T k = T(0);  // y = x: log is 0
  if (g.kind == 0) {
    k = r * g.theta * g.inv_u;
  } else if (g.kind == 2) {  // y = −x: the geodesic toward the axis e_k with the smallest |x_k|
    const T ww = sphere_antipodal_direction(x, n, g.q, out);
    k = ww > T(0) ? r * g.theta / std::sqrt(ww) : T(0);
  }
  kernels::scale(k, out, n);
}

/// exp_x(v) on the sphere of radius r, rescaled to norm r.
template <class T, class X>
void sphere_exp(X x, const T* v, std::size_t n, T r, T* out) noexcept {
  const T vv = kernels::dot(v, v, n);
  T q = T(0);
  if constexpr (sphere_is_stored<X>) {
    q = kernels::dot(x.p, x.p, n);
  } else {
    for (std::size_t i = 0; i < n; ++i) q += x(i) * x(i);
  }
  const T t = std::sqrt(vv) / r;
  const T cx = std::cos(t) * r / std::sqrt(q);     // cos(t)·(x scaled to norm r)
  const T sv = t > T(0) ? std::sin(t) / t : T(1);  // R·sin(t)/‖v‖ = sin(t)/t
  T oo = T(0);
  if constexpr (sphere_is_stored<X>) {
    oo = sphere_combine_simd(cx, x.p, sv, v, out, n);
  } else {
    for (std::size_t i = 0; i < n; ++i) {
      out[i] = cx * x(i) + sv * v[i];
      oo += out[i] * out[i];
    }
  }
  if (oo > T(0)) {
    kernels::scale(r / std::sqrt(oo), out, n);
  } else {  // only for a non-tangent v that cancels x exactly
    for (std::size_t i = 0; i < n; ++i) out[i] = i == 0 ? r : T(0);
  }
}

/// Parallel transport of v from T_x to T_y: with e = u/‖u‖ the unit initial direction of the
/// geodesic and x̂ = x/‖x‖, the plane span{x̂, e} is rotated by θ and its complement is fixed:
/// Γ(v) = v + ⟨e, v⟩·(e' − e), e' = −sin θ·x̂ + cos θ·e (e' − e = −sin θ·x̂ − 2 sin²(θ/2)·e).
/// Equal on T_x to the closed forms v − (⟨x + y, v⟩/(R² + ⟨x, y⟩))·(x + y) and
/// v − (⟨log_x y, v⟩/‖log_x y‖²)·(log_x y + log_y x), but e comes from the twice-orthogonalised
/// u, so the result stays tangent at y even for near-antipodal points, where x̂ + ŷ is pure
/// rounding noise.
template <class T, class X, class Y>
void sphere_transport(X x, Y y, const T* v, std::size_t n, T r, T* out) noexcept {
  const sphere_geodesic<T> g = sphere_direction(x, y, n, r, out);
  if (g.kind == 1) {  // y = x: the identity
    for (std::size_t i = 0; i < n; ++i) out[i] = v[i];
    return;
  }
  T ie = g.inv_u;  // out holds u (kind 0) or the antipodal direction w (kind 2); e = out·ie
  if (g.kind == 2) {
    const T ww = sphere_antipodal_direction(x, n, g.q, out);
    ie = ww > T(0) ? T(1) / std::sqrt(ww) : T(0);
  }
  const T ev = kernels::dot(out, v, n) * ie;
  const T sh = std::sin(g.theta / T(2));
  const T cx = -std::sin(g.theta) / std::sqrt(g.q) * ev;  // coefficient of x
  const T ce = T(-2) * sh * sh * ie * ev;                 // coefficient of u (or w)
  if constexpr (sphere_is_stored<X>) {
    kernels::scale(ce, out, n);
    kernels::axpy(cx, x.p, out, n);
    kernels::axpy(T(1), v, out, n);
  } else {
    for (std::size_t i = 0; i < n; ++i) out[i] = v[i] + cx * x(i) + ce * out[i];
  }
}

/// v − (⟨x, v⟩/‖x‖²)·x.
template <class T, class X>
void sphere_project_tangent(X x, const T* v, std::size_t n, T* out) noexcept {
  T q = T(0), a = T(0);
  for (std::size_t i = 0; i < n; ++i) {
    const T xi = x(i);
    q += xi * xi;
    a += xi * v[i];
  }
  const T alpha = a / q;
  for (std::size_t i = 0; i < n; ++i) out[i] = v[i] - alpha * x(i);
}

/// Throws `invalid_argument` for an empty point (no sphere lives in R^0).
inline void sphere_require_ambient(std::string_view what, std::size_t n) {
  if (n == 0) {
    std::ostringstream os;
    os << "invalid argument: " << what
       << " is empty; a sphere needs ambient dimension >= 1 (S^{n-1} in R^n)";
    throw invalid_argument(os.str());
  }
}

}  // namespace detail

/// \brief The sphere of curvature +c (radius R = 1/√c) embedded in R^n; points satisfy ‖x‖ = R.
/// \tparam T `float` or `double`.
template <attention_scalar T>
class sphere {
 public:
  using value_type = T;

  /// Sphere of curvature c; throws `invalid_argument` unless c is finite, c > 0 and 1/c is
  /// finite (so that R² is representable).
  explicit sphere(T c = T(1)) : c_(c), r_(T(1)) {
    if (!(std::isfinite(c) && c > T(0) && std::isfinite(T(1) / c))) {
      std::ostringstream os;
      os << "invalid argument: sphere curvature c = " << c
         << ", expected finite c > 0 with finite 1/c";
      throw invalid_argument(os.str());
    }
    r_ = T(1) / std::sqrt(c);
  }

  /// The curvature magnitude c.
  [[nodiscard]] T c() const noexcept { return c_; }
  /// Sectional curvature +c.
  [[nodiscard]] T curvature() const noexcept { return c_; }
  /// The radius R = 1/√c.
  [[nodiscard]] T radius() const noexcept { return r_; }

  /// Geodesic (great-circle) distance R·θ(x, y), θ ∈ [0, π].
  [[nodiscard]] T distance(std::span<const T> x, std::span<const T> y) const {
    detail::sphere_require_ambient("sphere::distance: x", x.size());
    require_dimension("sphere::distance: y.size()", y.size(), x.size());
    const auto c = detail::sphere_chord_sums(x.data(), y.data(), x.size());
    if (c.xx > T(0) && c.yy > T(0)) return r_ * detail::sphere_chord_angle(c);
    // A zero vector reads as the origin (rare): the general path.
    return detail::sphere_with_point(x, r_, [&](auto xa) {
      return detail::sphere_with_point(
          y, r_, [&](auto ya) { return r_ * detail::sphere_angle<T>(xa, ya, x.size()); });
    });
  }

  /// Riemannian inner product at x: the Euclidean ⟨u, v⟩ (u, v tangent at x).
  [[nodiscard]] T inner(std::span<const T> x, std::span<const T> u, std::span<const T> v) const {
    detail::sphere_require_ambient("sphere::inner: x", x.size());
    require_dimension("sphere::inner: u.size()", u.size(), x.size());
    require_dimension("sphere::inner: v.size()", v.size(), x.size());
    return kernels::dot(u.data(), v.data(), u.size());
  }

  /// Exponential map exp_x(v) = cos(‖v‖/R)·x + R·sin(‖v‖/R)·v/‖v‖, rescaled to norm R.
  void exp(std::span<const T> x, std::span<const T> v, std::span<T> out) const {
    detail::sphere_require_ambient("sphere::exp: x", x.size());
    require_dimension("sphere::exp: v.size()", v.size(), x.size());
    require_dimension("sphere::exp: out.size()", out.size(), x.size());
    detail::sphere_with_point(
        x, r_, [&](auto xa) { detail::sphere_exp<T>(xa, v.data(), x.size(), r_, out.data()); });
  }

  /// Logarithmic map log_x(y) = R·θ·u/‖u‖ (antipodal convention in the file comment).
  void log(std::span<const T> x, std::span<const T> y, std::span<T> out) const {
    detail::sphere_require_ambient("sphere::log: x", x.size());
    require_dimension("sphere::log: y.size()", y.size(), x.size());
    require_dimension("sphere::log: out.size()", out.size(), x.size());
    detail::sphere_with_point(x, r_, [&](auto xa) {
      detail::sphere_with_point(
          y, r_, [&](auto ya) { detail::sphere_log<T>(xa, ya, x.size(), r_, out.data()); });
    });
  }

  /// exp at the origin (R, 0, …, 0).
  void exp0(std::span<const T> v, std::span<T> out) const {
    detail::sphere_require_ambient("sphere::exp0: v", v.size());
    require_dimension("sphere::exp0: out.size()", out.size(), v.size());
    detail::sphere_exp<T>(detail::sphere_axis_point<T>{r_}, v.data(), v.size(), r_, out.data());
  }

  /// log at the origin (R, 0, …, 0).
  void log0(std::span<const T> y, std::span<T> out) const {
    detail::sphere_require_ambient("sphere::log0: y", y.size());
    require_dimension("sphere::log0: out.size()", out.size(), y.size());
    detail::sphere_with_point(y, r_, [&](auto ya) {
      detail::sphere_log<T>(detail::sphere_axis_point<T>{r_}, ya, y.size(), r_, out.data());
    });
  }

  /// Parallel transport of v ∈ T_x along the geodesic from x to y (antipodal convention in the
  /// file comment).
  void transport(std::span<const T> x, std::span<const T> y, std::span<const T> v,
                 std::span<T> out) const {
    detail::sphere_require_ambient("sphere::transport: x", x.size());
    require_dimension("sphere::transport: y.size()", y.size(), x.size());
    require_dimension("sphere::transport: v.size()", v.size(), x.size());
    require_dimension("sphere::transport: out.size()", out.size(), x.size());
    detail::sphere_with_point(x, r_, [&](auto xa) {
      detail::sphere_with_point(y, r_, [&](auto ya) {
        detail::sphere_transport<T>(xa, ya, v.data(), x.size(), r_, out.data());
      });
    });
  }

  /// Nearest point: R·x/‖x‖; the zero vector maps to the origin (R, 0, …, 0). When ‖x‖² would
  /// underflow (< min/ε) or overflow, the norm is formed after scaling by max|x_i|, so tiny or
  /// huge finite inputs still land on the sphere.
  void project(std::span<const T> x, std::span<T> out) const {
    detail::sphere_require_ambient("sphere::project: x", x.size());
    require_dimension("sphere::project: out.size()", out.size(), x.size());
    const T ss0 = kernels::dot(x.data(), x.data(), x.size());
    if (std::isfinite(ss0) &&
        ss0 >= std::numeric_limits<T>::min() / std::numeric_limits<T>::epsilon()) {
      detail::sphere_combine_simd(r_ / std::sqrt(ss0), x.data(), T(0), x.data(), out.data(),
                                  x.size());
      return;
    }
    // Tiny, huge, zero or non-finite input: the scaled path.
    T m = T(0);
    for (const T xi : x) m = std::abs(xi) > m ? std::abs(xi) : m;
    if (m == T(0)) {
      origin(out);
      return;
    }
    const T inv = T(1) / m;
    T ss = T(0);
    for (const T xi : x) ss += (xi * inv) * (xi * inv);
    const T k = r_ / std::sqrt(ss);
    for (std::size_t i = 0; i < x.size(); ++i) out[i] = (x[i] * inv) * k;
  }

  /// Projection onto T_x: v − (⟨x, v⟩/‖x‖²)·x (= v − (⟨x, v⟩/R²)·x on the sphere).
  void project_tangent(std::span<const T> x, std::span<const T> v, std::span<T> out) const {
    detail::sphere_require_ambient("sphere::project_tangent: x", x.size());
    require_dimension("sphere::project_tangent: v.size()", v.size(), x.size());
    require_dimension("sphere::project_tangent: out.size()", out.size(), x.size());
    detail::sphere_with_point(x, r_, [&](auto xa) {
      detail::sphere_project_tangent<T>(xa, v.data(), x.size(), out.data());
    });
  }

  /// The origin (R, 0, …, 0); throws `invalid_argument` for an empty `out`.
  void origin(std::span<T> out) const {
    detail::sphere_require_ambient("sphere::origin: out", out.size());
    out[0] = r_;
    for (std::size_t i = 1; i < out.size(); ++i) out[i] = T(0);
  }

 private:
  T c_;
  T r_;
};

}  // namespace ruvector::attention
