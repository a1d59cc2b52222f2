#pragma once
/// \file geometry/lorentz.hpp
/// \brief The hyperboloid (Lorentz) model ℍⁿ_c of constant curvature −c (c > 0) as a
/// `constant_curvature_manifold` (Nickel & Kiela 2018, "Learning Continuous Hierarchies in the
/// Lorentz Model of Hyperbolic Geometry"; Law et al. 2019, "Lorentzian Distance Learning for
/// Hyperbolic Representations"; Chami et al. 2019, "Hyperbolic Graph Convolutional Neural
/// Networks").
///
/// Points are x = (x₀, x₁, …, xₙ) ∈ Rⁿ⁺¹ with ⟨x, x⟩_L = −1/c and x₀ > 0, where
/// ⟨u, v⟩_L = −u₀v₀ + Σᵢ uᵢvᵢ is the Minkowski product; tangent vectors at x are the v with
/// ⟨x, v⟩_L = 0 and the metric is ⟨u, v⟩_L restricted to them. With ‖v‖_L = √⟨v, v⟩_L:
///
///     d(x, y)     = (1/√c) arcosh(−c⟨x, y⟩_L)
///     d_L²(x, y)  = ‖x − y‖²_L = −2/c − 2⟨x, y⟩_L                     (Law et al. 2019)
///     exp_x(v)    = cosh(√c‖v‖_L) x + sinh(√c‖v‖_L) v/(√c‖v‖_L)
///     log_x(y)    = d(x, y) · u/‖u‖_L,   u = y + c⟨x, y⟩_L x   (the part of y tangent at x)
///     P_{x→y}(v)  = v + (c⟨y, v⟩_L / (1 − c⟨x, y⟩_L)) (x + y)           (parallel transport)
///     origin      = (1/√c, 0, …, 0)
///
/// Evaluation:
/// - On the hyperboloid −c⟨x, y⟩_L = 1 + δ with δ = (c/2)‖x − y‖²_L, and ‖x − y‖²_L is formed from
///   the element-wise difference. So d = (1/√c) log1p(δ + √δ·√(δ + 2)) keeps the digits of close
///   points (arcosh of a value near 1 loses half of them), and d_L² is returned as ‖x − y‖²_L.
///   Both are clamped at 0 (rounding can make a tiny ‖x − y‖²_L negative).
/// - log_x(y) = f·((y − x) − δx) with f = arcosh(1 + δ)/√(δ(δ + 2)) (f(0) = 1): u = y − (1 + δ)x
///   rewritten so that the difference is formed first; the result is then projected onto T_x
///   (v ← v + c⟨x, v⟩_L x) to remove rounding drift.
/// - log_0(y) = (0, asinh(√c‖y_s‖) y_s/(√c‖y_s‖)) and d(0, x) = asinh(√c‖x_s‖)/√c use only the
///   spatial part y_s = (y₁, …, yₙ), which is accurate at every distance.
///
/// Numerical conventions:
/// - `project` lifts: out_s = x_s, out₀ = √(1/c + ‖x_s‖²) (x₀ is ignored). Results of exp, exp0
///   and project are lifted the same way, so they satisfy the constraint to rounding.
/// - eps has the meaning of `poincare_ball`'s eps: the points the library produces are kept
///   within the geodesic ball of radius R = (1/√c) ln((2 − eps)/eps) around the origin, the region
///   the Poincaré ball with the same eps represents, i.e. ‖x_s‖ ≤ 2(1 − eps)/(√c·eps(2 − eps))
///   (a larger spatial part is scaled down before lifting). So points convert to the ball inside
///   its max_norm, and cosh/sinh cannot overflow: exp also clamps √c‖v‖_L at 2√cR + 1 (a longer
///   step from a point within R lands beyond R, so its end point is pulled back to the cap
///   anyway, only along a slightly different direction — such steps have no accurate answer in
///   T).
/// - Point arguments need x₀ > 0 (the upper sheet; `invalid_argument` otherwise) but are not
///   otherwise checked for lying on the hyperboloid (use `contains`). NaN/Inf coordinates throw
///   `non_finite_input` (checked on the scalars the formulas compute anyway). exp0 ignores v₀
///   (it projects v onto T_origin = {v₀ = 0} first). The ambient size n + 1 must be ≥ 1
///   (`invalid_argument`) and agree between arguments (`dimension_mismatch`).
/// - `out` must not overlap the inputs. No operation allocates.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <sstream>
#include <string>
#include <string_view>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/config.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/geometry/poincare.hpp"
#include "ruvector/attention/kernels/reduce.hpp"

namespace ruvector::attention {

namespace detail {

/// Throws `invalid_argument` for an empty ambient vector.
[[noreturn]] inline void lorentz_throw_empty(std::string_view fn, std::string_view arg) {
  std::ostringstream os;
  os << "invalid argument: " << fn << ": " << arg
     << " is empty (hyperboloid vectors have the coordinate x0 plus n spatial ones)";
  throw invalid_argument(os.str());
}

/// A point with x₀ ≤ 0 (or NaN): `non_finite_input` naming a NaN/Inf, else `invalid_argument`.
template <class T>
[[noreturn]] void lorentz_throw_sheet(std::string_view fn, std::string_view arg,
                                      std::span<const T> x) {
  require_finite(geo_what(fn, arg), x);
  std::ostringstream os;
  os << "invalid argument: " << fn << ": " << arg << " is not on the upper sheet: " << arg
     << "[0] = " << x[0] << ", expected > 0";
  throw invalid_argument(os.str());
}

}  // namespace detail

/// \brief The hyperboloid model of curvature −c; see the file comment for every formula and
/// numerical convention.
/// \tparam T float or double.
///
/// Vectors are ambient (n + 1 values, x₀ first). An immutable description (c, eps): safe to
/// share across threads; no operation allocates.
template <attention_scalar T>
class lorentz_hyperboloid {
 public:
  using value_type = T;

  /// Default eps, the same as `poincare_ball<T>::default_eps` (same representable region).
  static constexpr T default_eps = poincare_ball<T>::default_eps;
  /// Smallest accepted eps.
  static constexpr T min_eps = poincare_ball<T>::min_eps;

  /// Hyperboloid of curvature −c. Throws `invalid_argument` unless c is finite and > 0 and
  /// eps ∈ [min_eps, 0.5).
  explicit lorentz_hyperboloid(T c = T(1), T eps = default_eps) : c_(c), eps_(eps) {
    if (!(std::isfinite(c) && c > T(0))) {
      std::ostringstream os;
      os << "invalid argument: lorentz_hyperboloid: c must be finite and > 0 (curvature −c), got "
         << c;
      throw invalid_argument(os.str());
    }
    if (!(eps >= min_eps && eps < T(0.5))) {
      std::ostringstream os;
      os << "invalid argument: lorentz_hyperboloid: eps must lie in [" << min_eps << ", 0.5), got "
         << eps;
      throw invalid_argument(os.str());
    }
    sqrt_c_ = std::sqrt(c);
    inv_c_ = T(1) / c;
    max_spatial_ = T(2) * (T(1) - eps) / (sqrt_c_ * eps * (T(2) - eps));
    max_spatial_sq_ = max_spatial_ * max_spatial_;
    theta_cap_ = std::log((T(2) - eps) / eps);
    theta_max_ = T(2) * theta_cap_ + T(1);
  }

  /// c (> 0); the curvature is −c.
  [[nodiscard]] T c() const noexcept { return c_; }
  /// The sectional curvature −c.
  [[nodiscard]] T curvature() const noexcept { return -c_; }
  /// The margin eps (meaning as in `poincare_ball`).
  [[nodiscard]] T eps() const noexcept { return eps_; }
  /// R = (1/√c) ln((2 − eps)/eps): the largest distance from the origin of a produced point.
  [[nodiscard]] T max_radius() const noexcept { return theta_cap_ / sqrt_c_; }
  /// 2(1 − eps)/(√c·eps(2 − eps)) = sinh(√cR)/√c: the largest ‖x_s‖ of a produced point.
  [[nodiscard]] T max_spatial_norm() const noexcept { return max_spatial_; }

  /// ⟨u, v⟩_L = −u₀v₀ + Σᵢ uᵢvᵢ (the Minkowski product).
  [[nodiscard]] T lorentz_inner(std::span<const T> u, std::span<const T> v) const {
    constexpr std::string_view fn = "lorentz_hyperboloid::lorentz_inner";
    require_ambient(fn, "u", u.size());
    detail::geo_require_size(fn, "v", v.size(), u.size());
    const T r = minkowski(u.data(), v.data(), u.size());
    if (!std::isfinite(r)) {
      require_finite(detail::geo_what(fn, "u"), u);
      detail::geo_throw_non_finite(fn, "v", v);
    }
    return r;
  }

  /// ⟨u, v⟩_x = ⟨u, v⟩_L for u, v ∈ T_x.
  [[nodiscard]] T inner(std::span<const T> x, std::span<const T> u, std::span<const T> v) const {
    constexpr std::string_view fn = "lorentz_hyperboloid::inner";
    check_point(fn, "x", x);
    detail::geo_require_size(fn, "u", u.size(), x.size());
    detail::geo_require_size(fn, "v", v.size(), x.size());
    const T r = minkowski(u.data(), v.data(), u.size());
    if (!std::isfinite(r)) {
      require_finite(detail::geo_what(fn, "u"), u);
      detail::geo_throw_non_finite(fn, "v", v);
    }
    return r;
  }

  /// ‖u‖_x = √max(⟨u, u⟩_L, 0).
  [[nodiscard]] T norm(std::span<const T> x, std::span<const T> u) const {
    constexpr std::string_view fn = "lorentz_hyperboloid::norm";
    check_point(fn, "x", x);
    detail::geo_require_size(fn, "u", u.size(), x.size());
    const T r = minkowski(u.data(), u.data(), u.size());
    if (!std::isfinite(r)) detail::geo_throw_non_finite(fn, "u", u);
    return std::sqrt(std::max(r, T(0)));
  }

  /// d(x, y) = (1/√c) arcosh(−c⟨x, y⟩_L), evaluated as (1/√c) arcosh(1 + (c/2)‖x − y‖²_L).
  [[nodiscard]] T distance(std::span<const T> x, std::span<const T> y) const {
    const T delta = T(0.5) * c_ * squared_difference("lorentz_hyperboloid::distance", x, y);
    return detail::geo_arcosh1p(delta) / sqrt_c_;
  }

  /// d_L²(x, y) = ‖x − y‖²_L = −2/c − 2⟨x, y⟩_L on the hyperboloid (Law et al. 2019), ≥ 0.
  [[nodiscard]] T squared_lorentzian_distance(std::span<const T> x, std::span<const T> y) const {
    return squared_difference("lorentz_hyperboloid::squared_lorentzian_distance", x, y);
  }

  /// d(origin, x) = asinh(√c‖x_s‖)/√c.
  [[nodiscard]] T distance_from_origin(std::span<const T> x) const {
    constexpr std::string_view fn = "lorentz_hyperboloid::distance_from_origin";
    check_point(fn, "x", x);
    return std::asinh(sqrt_c_ * spatial_norm(fn, "x", x).value()) / sqrt_c_;
  }

  /// out = exp_x(v) = cosh(√c‖v‖_L) x + sinh(√c‖v‖_L) v/(√c‖v‖_L), lifted and capped.
  void exp(std::span<const T> x, std::span<const T> v, std::span<T> out) const {
    constexpr std::string_view fn = "lorentz_hyperboloid::exp";
    check_point(fn, "x", x);
    const std::size_t n = x.size();
    detail::geo_require_size(fn, "v", v.size(), n);
    detail::geo_require_size(fn, "out", out.size(), n);
    const T vv = minkowski(v.data(), v.data(), n);
    if (!std::isfinite(vv)) detail::geo_throw_non_finite(fn, "v", v);
    const T nv = std::sqrt(std::max(vv, T(0)));
    if (nv == T(0)) {
      detail::geo_scaled(T(1), x.data(), out.data(), n);
    } else {
      const T theta = std::min(sqrt_c_ * nv, theta_max_);
      detail::geo_axpby(std::cosh(theta), x.data(), std::sinh(theta) / (sqrt_c_ * nv), v.data(),
                        out.data(), n);
    }
    relift(out);
  }

  /// out = log_x(y) ∈ T_x (see the file comment for the evaluated form).
  void log(std::span<const T> x, std::span<const T> y, std::span<T> out) const {
    constexpr std::string_view fn = "lorentz_hyperboloid::log";
    const std::size_t n = x.size();
    detail::geo_require_size(fn, "out", out.size(), n);
    const T delta = T(0.5) * c_ * squared_difference(fn, x, y);
    const T f = delta > T(0)
                    ? detail::geo_arcosh1p(delta) / (std::sqrt(delta) * std::sqrt(delta + T(2)))
                    : T(1);
    detail::geo_diff_axpy(f, x.data(), y.data(), -f * delta, out.data(), n);
    // Remove the rounding drift out of T_x: v ← v + c⟨x, v⟩_L x.
    kernels::axpy(c_ * minkowski(x.data(), out.data(), n), x.data(), out.data(), n);
  }

  /// out = exp_origin(v) = (cosh θ/√c, sinh θ·v_s/(√c‖v_s‖)), θ = √c‖v_s‖ capped at √cR; v₀ is
  /// ignored.
  void exp0(std::span<const T> v, std::span<T> out) const {
    constexpr std::string_view fn = "lorentz_hyperboloid::exp0";
    require_ambient(fn, "v", v.size());
    const std::size_t n = v.size();
    detail::geo_require_size(fn, "out", out.size(), n);
    if (!std::isfinite(v[0])) detail::throw_non_finite(detail::geo_what(fn, "v"), 0, v[0]);
    const auto nv = spatial_norm(fn, "v", v);
    const T theta = std::min(sqrt_c_ * nv.value(), theta_cap_);
    out[0] = std::cosh(theta) / sqrt_c_;
    detail::geo_scaled(nv.r > T(0) ? nv.divide(std::sinh(theta) / sqrt_c_) : T(1), v.data() + 1,
                       out.data() + 1, n - 1);
  }

  /// out = log_origin(y) = (0, asinh(√c‖y_s‖) y_s/(√c‖y_s‖)).
  void log0(std::span<const T> y, std::span<T> out) const {
    constexpr std::string_view fn = "lorentz_hyperboloid::log0";
    check_point(fn, "y", y);
    const std::size_t n = y.size();
    detail::geo_require_size(fn, "out", out.size(), n);
    const auto ny = spatial_norm(fn, "y", y);
    const T z = sqrt_c_ * ny.value();
    // asinh(z) = ln(2z) + O(1/z²) for z beyond the range of T.
    const T az =
        std::isfinite(z) ? std::asinh(z) : std::log(T(2) * sqrt_c_ * ny.r) + std::log(ny.m);
    out[0] = T(0);
    detail::geo_scaled(ny.r > T(0) ? ny.divide(az / sqrt_c_) : T(1), y.data() + 1, out.data() + 1,
                       n - 1);
  }

  /// out = P_{x→y}(v) = v + (c⟨y, v⟩_L/(1 − c⟨x, y⟩_L))(x + y): parallel transport of v ∈ T_x
  /// along the geodesic to T_y. Preserves ⟨·,·⟩_L between tangent vectors.
  void transport(std::span<const T> x, std::span<const T> y, std::span<const T> v,
                 std::span<T> out) const {
    constexpr std::string_view fn = "lorentz_hyperboloid::transport";
    check_point(fn, "x", x);
    const std::size_t n = x.size();
    detail::geo_require_size(fn, "y", y.size(), n);
    detail::geo_require_size(fn, "v", v.size(), n);
    detail::geo_require_size(fn, "out", out.size(), n);
    check_point(fn, "y", y);
    const T xy = minkowski(x.data(), y.data(), n);
    const T yv = minkowski(y.data(), v.data(), n);
    const T alpha = c_ * yv / (T(1) - c_ * xy);
    if (!std::isfinite(alpha)) {
      require_finite(detail::geo_what(fn, "x"), x);
      require_finite(detail::geo_what(fn, "y"), y);
      detail::geo_throw_non_finite(fn, "v", v);
    }
    detail::geo_axpby(alpha, x.data(), alpha, y.data(), out.data(), n);
    kernels::axpy(T(1), v.data(), out.data(), n);
  }

  /// out = the lift of x: (√(1/c + ‖x_s‖²), x_s), with x_s capped at max_spatial_norm; x₀ is
  /// ignored. Throws `non_finite_input` on NaN/Inf.
  void project(std::span<const T> x, std::span<T> out) const {
    constexpr std::string_view fn = "lorentz_hyperboloid::project";
    require_ambient(fn, "x", x.size());
    detail::geo_require_size(fn, "out", out.size(), x.size());
    if (!std::isfinite(x[0])) detail::throw_non_finite(detail::geo_what(fn, "x"), 0, x[0]);
    detail::geo_scaled(T(1), x.data() + 1, out.data() + 1, x.size() - 1);
    const T ss = kernels::dot(out.data() + 1, out.data() + 1, x.size() - 1);
    if (!std::isfinite(ss)) require_finite(detail::geo_what(fn, "x"), x);
    relift(out);
  }

  /// out = v + c⟨x, v⟩_L x, the projection of an ambient vector onto T_x.
  void project_tangent(std::span<const T> x, std::span<const T> v, std::span<T> out) const {
    constexpr std::string_view fn = "lorentz_hyperboloid::project_tangent";
    check_point(fn, "x", x);
    const std::size_t n = x.size();
    detail::geo_require_size(fn, "v", v.size(), n);
    detail::geo_require_size(fn, "out", out.size(), n);
    const T xv = minkowski(x.data(), v.data(), n);
    if (!std::isfinite(xv)) {
      require_finite(detail::geo_what(fn, "x"), x);
      detail::geo_throw_non_finite(fn, "v", v);
    }
    detail::geo_axpby(c_ * xv, x.data(), T(1), v.data(), out.data(), n);
  }

  /// out = (1/√c, 0, …, 0).
  void origin(std::span<T> out) const {
    require_ambient("lorentz_hyperboloid::origin", "out", out.size());
    for (auto& v : out) v = T(0);
    out[0] = T(1) / sqrt_c_;
  }

  /// True when x is finite, x₀ > 0 and |c⟨x, x⟩_L + 1| ≤ 32ε_T·(1 + c(x₀² + ‖x_s‖²)) (the
  /// rounding of a lifted point, with margin).
  [[nodiscard]] bool contains(std::span<const T> x) const noexcept {
    if (x.empty() || !(x[0] > T(0))) return false;
    const T ss = kernels::dot(x.data() + 1, x.data() + 1, x.size() - 1);
    const T x00 = x[0] * x[0];
    const T violation = std::abs(c_ * (ss - x00) + T(1));
    const T tol = T(32) * std::numeric_limits<T>::epsilon() * (T(1) + c_ * (x00 + ss));
    return std::isfinite(ss) && std::isfinite(x00) && violation <= tol;
  }

 private:
  static T minkowski(const T* u, const T* v, std::size_t n) noexcept {
    return kernels::dot(u + 1, v + 1, n - 1) - u[0] * v[0];
  }

  static void require_ambient(std::string_view fn, std::string_view arg, std::size_t size) {
    if (size == 0) detail::lorentz_throw_empty(fn, arg);
  }

  /// Non-empty with x₀ > 0.
  static void check_point(std::string_view fn, std::string_view arg, std::span<const T> x) {
    require_ambient(fn, arg, x.size());
    if (!(x[0] > T(0))) detail::lorentz_throw_sheet(fn, arg, x);
  }

  /// ‖x_s‖ as parts (robust to overflow of the square); NaN/Inf throw.
  static detail::geo_norm_parts<T> spatial_norm(std::string_view fn, std::string_view arg,
                                                std::span<const T> x) {
    const T ss = kernels::dot(x.data() + 1, x.data() + 1, x.size() - 1);
    if (!std::isfinite(ss)) require_finite(detail::geo_what(fn, arg), x);
    return detail::geo_norm_from(x.data() + 1, x.size() - 1, ss);
  }

  /// max(‖x − y‖²_L, 0) for two points, the difference formed element-wise.
  T squared_difference(std::string_view fn, std::span<const T> x, std::span<const T> y) const {
    check_point(fn, "x", x);
    detail::geo_require_size(fn, "y", y.size(), x.size());
    check_point(fn, "y", y);
    const auto s = detail::geo_pair_norms(x.data() + 1, y.data() + 1, T(-1), x.size() - 1);
    const T d0 = x[0] - y[0];
    const T q = s.zz - d0 * d0;
    if (!std::isfinite(q)) {
      require_finite(detail::geo_what(fn, "x"), x);
      require_finite(detail::geo_what(fn, "y"), y);
    }
    return std::max(q, T(0));
  }

  /// Caps out_s at max_spatial_norm and sets out₀ = √(1/c + ‖out_s‖²).
  void relift(std::span<T> out) const noexcept {
    const std::size_t m = out.size() - 1;
    T ss = kernels::dot(out.data() + 1, out.data() + 1, m);
    if (!(ss <= max_spatial_sq_)) {
      const auto ns = detail::geo_norm_from(out.data() + 1, m, ss);
      if (ns.value() > max_spatial_) {
        kernels::scale(ns.divide(max_spatial_), out.data() + 1, m);
        ss = max_spatial_sq_;
      }
    }
    out[0] = std::sqrt(inv_c_ + ss);
  }

  T c_;
  T eps_;
  T sqrt_c_ = T(1);
  T inv_c_ = T(1);
  T max_spatial_ = T(1);
  T max_spatial_sq_ = T(1);
  T theta_cap_ = T(1);
  T theta_max_ = T(1);
};

}  // namespace ruvector::attention
