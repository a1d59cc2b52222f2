#pragma once
/// \file geometry/euclidean.hpp
/// \brief Flat Euclidean space R^n (curvature 0) as a `constant_curvature_manifold`.
///
/// The trivial member of the constant-curvature family E^n ⊂ {E, H, S}, used as the flat factor
/// of product spaces E^e × H^h × S^s (Gu et al. 2019, "Learning Mixed-Curvature Representations
/// in Product Spaces"). With the identity metric:
///
///     d(x, y)      = ‖x − y‖          (formed from the difference, not from ‖x‖² + ‖y‖² − 2⟨x, y⟩)
///     ⟨u, v⟩_x     = Σ u_i v_i
///     exp_x(v)     = x + v            log_x(y) = y − x
///     exp_0(v)     = v                log_0(y) = y
///     Γ_{x→y}(v)   = v                (parallel transport is the identity)
///     project(x)   = x                origin   = 0
///
/// The object is stateless (no dimension is stored): every operation takes the dimension from its
/// spans and throws `dimension_mismatch` when they disagree. Dimension 0 (R^0, a single point) is
/// allowed: distances and inner products are 0 and nothing is written. Values are not checked for
/// finiteness; NaN/Inf propagate (validate with `require_finite` where it matters).

#include <cmath>
#include <cstddef>
#include <span>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/kernels/gemv.hpp"
#include "ruvector/attention/kernels/reduce.hpp"

namespace ruvector::attention {

/// \brief Euclidean space R^n with the standard inner product; curvature 0.
/// \tparam T `float` or `double`.
template <attention_scalar T>
class euclidean_space {
 public:
  using value_type = T;

  /// Constructs the (stateless) flat space.
  constexpr euclidean_space() noexcept = default;

  /// Sectional curvature: 0.
  [[nodiscard]] constexpr T curvature() const noexcept { return T(0); }

  /// Geodesic distance ‖x − y‖ (one SIMD pass, `kernels::row_squared_distances`).
  [[nodiscard]] T distance(std::span<const T> x, std::span<const T> y) const {
    require_dimension("euclidean_space::distance: y.size()", y.size(), x.size());
    T d2 = T(0);
    kernels::row_squared_distances(y.data(), 1, y.size(), y.size(), x.data(), &d2);
    return std::sqrt(d2);
  }

  /// Riemannian inner product ⟨u, v⟩ at x (the Euclidean one; x only fixes the dimension).
  [[nodiscard]] T inner(std::span<const T> x, std::span<const T> u, std::span<const T> v) const {
    require_dimension("euclidean_space::inner: u.size()", u.size(), x.size());
    require_dimension("euclidean_space::inner: v.size()", v.size(), x.size());
    return kernels::dot(u.data(), v.data(), u.size());
  }

  /// Exponential map exp_x(v) = x + v.
  void exp(std::span<const T> x, std::span<const T> v, std::span<T> out) const {
    require_dimension("euclidean_space::exp: v.size()", v.size(), x.size());
    require_dimension("euclidean_space::exp: out.size()", out.size(), x.size());
    for (std::size_t i = 0; i < x.size(); ++i) out[i] = x[i] + v[i];
  }

  /// Logarithmic map log_x(y) = y − x.
  void log(std::span<const T> x, std::span<const T> y, std::span<T> out) const {
    require_dimension("euclidean_space::log: y.size()", y.size(), x.size());
    require_dimension("euclidean_space::log: out.size()", out.size(), x.size());
    for (std::size_t i = 0; i < x.size(); ++i) out[i] = y[i] - x[i];
  }

  /// exp at the origin: exp_0(v) = v.
  void exp0(std::span<const T> v, std::span<T> out) const {
    require_dimension("euclidean_space::exp0: out.size()", out.size(), v.size());
    for (std::size_t i = 0; i < v.size(); ++i) out[i] = v[i];
  }

  /// log at the origin: log_0(y) = y.
  void log0(std::span<const T> y, std::span<T> out) const {
    require_dimension("euclidean_space::log0: out.size()", out.size(), y.size());
    for (std::size_t i = 0; i < y.size(); ++i) out[i] = y[i];
  }

  /// Parallel transport from T_x to T_y: the identity.
  void transport(std::span<const T> x, std::span<const T> y, std::span<const T> v,
                 std::span<T> out) const {
    require_dimension("euclidean_space::transport: y.size()", y.size(), x.size());
    require_dimension("euclidean_space::transport: v.size()", v.size(), x.size());
    require_dimension("euclidean_space::transport: out.size()", out.size(), x.size());
    for (std::size_t i = 0; i < v.size(); ++i) out[i] = v[i];
  }

  /// Nearest point of the manifold: x itself.
  void project(std::span<const T> x, std::span<T> out) const {
    require_dimension("euclidean_space::project: out.size()", out.size(), x.size());
    for (std::size_t i = 0; i < x.size(); ++i) out[i] = x[i];
  }

  /// The origin 0.
  void origin(std::span<T> out) const noexcept {
    for (T& o : out) o = T(0);
  }
};

}  // namespace ruvector::attention
