#pragma once
/// \file geometry/models.hpp
/// \brief Isometries between the three standard models of hyperbolic space of curvature −c
/// (c > 0): the Poincaré ball 𝔻ⁿ_c, the hyperboloid ℍⁿ_c ⊂ Rⁿ⁺¹ and the Beltrami–Klein ball 𝕂ⁿ_c
/// (Cannon, Floyd, Kenyon & Parry 1997, "Hyperbolic Geometry"; Gulcehre et al. 2019,
/// "Hyperbolic Attention Networks" for the Klein model in attention).
///
/// With p ∈ 𝔻 (c‖p‖² < 1), x = (x₀, x_s) ∈ ℍ (⟨x, x⟩_L = −1/c, x₀ > 0) and k ∈ 𝕂 (c‖k‖² < 1):
///
///     poincare → lorentz:  x₀ = (1/√c)(1 + c‖p‖²)/(1 − c‖p‖²),   x_s = 2p/(1 − c‖p‖²)
///     lorentz → poincare:  p = x_s/(1 + √c x₀)
///     poincare → klein:    k = 2p/(1 + c‖p‖²)
///     klein → poincare:    p = k/(1 + √(1 − c‖k‖²))
///     lorentz → klein:     k = x_s/(√c x₀)
///     klein → lorentz:     x₀ = (1/√c)/√(1 − c‖k‖²),   x_s = k/√(1 − c‖k‖²)
///
/// Geodesics of 𝕂 are straight chords, which is why the Einstein midpoint (geometry/means.hpp)
/// is a plain weighted average there.
///
/// Conventions:
/// - Lorentz inputs are read through their spatial part: x₀ is replaced by the lift
///   √(1/c + ‖x_s‖²) (as `lorentz_hyperboloid::project` does), so a point that drifted off the
///   hyperboloid by rounding still maps inside the ball. x₀ must still be > 0 (`invalid_argument`
///   for the lower sheet).
/// - Poincaré and Klein inputs must satisfy c‖·‖² < 1 (`invalid_argument`); NaN/Inf throws
///   `non_finite_input`; c must be finite and > 0 (`invalid_argument`); sizes must be n ↔ n and
///   n ↔ n + 1 (`dimension_mismatch`; n = 0 is allowed, the Lorentz side then has size 1).
/// - No projection onto a max norm is applied (these functions have no eps): a point of
///   hyperbolic norm near the limit of T may round onto the boundary; apply
///   `poincare_ball::project` when the result feeds a ball operation.
/// - Near the boundary the Klein model keeps only about half the digits of the Poincaré model
///   (1 − c‖k‖² ≈ (1 − c‖p‖²)²/4), so prefer the Poincaré or Lorentz form for storage.
/// - `out` must not overlap the input. No function allocates. T is deduced from c alone (the
///   spans convert implicitly, e.g. from std::vector): `poincare_to_klein(1.0f, x, out)`.

#include <cmath>
#include <cstddef>
#include <span>
#include <sstream>
#include <string_view>
#include <type_traits>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/geometry/lorentz.hpp"
#include "ruvector/attention/geometry/poincare.hpp"
#include "ruvector/attention/kernels/reduce.hpp"

namespace ruvector::attention {

namespace detail {

/// Throws `invalid_argument` unless c is finite and > 0.
template <class T>
void models_require_c(std::string_view fn, T c) {
  if (!(std::isfinite(c) && c > T(0))) {
    std::ostringstream os;
    os << "invalid argument: " << fn << ": c must be finite and > 0 (curvature −c), got " << c;
    throw invalid_argument(os.str());
  }
}

/// 1 − c‖x‖² > 0 for a ball (Poincaré or Klein) point, else the error.
template <class T>
T models_ball_beta(std::string_view fn, std::span<const T> x, T c, std::string_view model) {
  const T xx = kernels::dot(x.data(), x.data(), x.size());
  const T b = T(1) - c * xx;
  if (!(b > T(0))) geo_throw_not_in_ball(fn, "x", x, c * xx, model);
  return b;
}

/// ‖x_s‖² of a Lorentz point with x₀ > 0, else the error.
template <class T>
T models_lorentz_spatial(std::string_view fn, std::span<const T> x) {
  if (x.empty()) lorentz_throw_empty(fn, "x");
  if (!(x[0] > T(0))) lorentz_throw_sheet(fn, "x", x);
  const T ss = kernels::dot(x.data() + 1, x.data() + 1, x.size() - 1);
  if (!std::isfinite(ss)) geo_throw_non_finite(fn, "x", x);
  return ss;
}

}  // namespace detail

/// \brief out (n + 1) = the hyperboloid point of the Poincaré point x (n).
template <attention_scalar T>
void poincare_to_lorentz(T c, std::type_identity_t<std::span<const T>> x,
                         std::type_identity_t<std::span<T>> out) {
  constexpr std::string_view fn = "poincare_to_lorentz";
  detail::models_require_c(fn, c);
  detail::geo_require_size(fn, "out", out.size(), x.size() + 1);
  const T b = detail::models_ball_beta(fn, x, c, "Poincaré ball");
  // 1 + c‖x‖² = 2 − β.
  out[0] = (T(2) - b) / (std::sqrt(c) * b);
  detail::geo_scaled(T(2) / b, x.data(), out.data() + 1, x.size());
}

/// \brief out (n) = the Poincaré point of the hyperboloid point x (n + 1): x_s/(1 + √c x₀) with
/// x₀ lifted.
template <attention_scalar T>
void lorentz_to_poincare(T c, std::type_identity_t<std::span<const T>> x,
                         std::type_identity_t<std::span<T>> out) {
  constexpr std::string_view fn = "lorentz_to_poincare";
  detail::models_require_c(fn, c);
  if (x.empty()) detail::lorentz_throw_empty(fn, "x");
  detail::geo_require_size(fn, "out", out.size(), x.size() - 1);
  const T ss = detail::models_lorentz_spatial(fn, x);
  // 1 + √c·√(1/c + ‖x_s‖²) = 1 + √(1 + c‖x_s‖²).
  detail::geo_scaled(T(1) / (T(1) + std::sqrt(T(1) + c * ss)), x.data() + 1, out.data(),
                     out.size());
}

/// \brief out (n) = the Klein point of the Poincaré point x (n): 2x/(1 + c‖x‖²).
template <attention_scalar T>
void poincare_to_klein(T c, std::type_identity_t<std::span<const T>> x,
                       std::type_identity_t<std::span<T>> out) {
  constexpr std::string_view fn = "poincare_to_klein";
  detail::models_require_c(fn, c);
  detail::geo_require_size(fn, "out", out.size(), x.size());
  const T b = detail::models_ball_beta(fn, x, c, "Poincaré ball");
  detail::geo_scaled(T(2) / (T(2) - b), x.data(), out.data(), x.size());
}

/// \brief out (n) = the Poincaré point of the Klein point x (n): x/(1 + √(1 − c‖x‖²)).
template <attention_scalar T>
void klein_to_poincare(T c, std::type_identity_t<std::span<const T>> x,
                       std::type_identity_t<std::span<T>> out) {
  constexpr std::string_view fn = "klein_to_poincare";
  detail::models_require_c(fn, c);
  detail::geo_require_size(fn, "out", out.size(), x.size());
  const T b = detail::models_ball_beta(fn, x, c, "Klein ball");
  detail::geo_scaled(T(1) / (T(1) + std::sqrt(b)), x.data(), out.data(), x.size());
}

/// \brief out (n) = the Klein point of the hyperboloid point x (n + 1): x_s/(√c x₀), x₀ lifted.
template <attention_scalar T>
void lorentz_to_klein(T c, std::type_identity_t<std::span<const T>> x,
                      std::type_identity_t<std::span<T>> out) {
  constexpr std::string_view fn = "lorentz_to_klein";
  detail::models_require_c(fn, c);
  if (x.empty()) detail::lorentz_throw_empty(fn, "x");
  detail::geo_require_size(fn, "out", out.size(), x.size() - 1);
  const T ss = detail::models_lorentz_spatial(fn, x);
  // √c·√(1/c + ‖x_s‖²) = √(1 + c‖x_s‖²).
  detail::geo_scaled(T(1) / std::sqrt(T(1) + c * ss), x.data() + 1, out.data(), out.size());
}

/// \brief out (n + 1) = the hyperboloid point of the Klein point x (n).
template <attention_scalar T>
void klein_to_lorentz(T c, std::type_identity_t<std::span<const T>> x,
                      std::type_identity_t<std::span<T>> out) {
  constexpr std::string_view fn = "klein_to_lorentz";
  detail::models_require_c(fn, c);
  detail::geo_require_size(fn, "out", out.size(), x.size() + 1);
  const T b = detail::models_ball_beta(fn, x, c, "Klein ball");
  const T inv_root = T(1) / std::sqrt(b);
  out[0] = inv_root / std::sqrt(c);
  detail::geo_scaled(inv_root, x.data(), out.data() + 1, x.size());
}

}  // namespace ruvector::attention
