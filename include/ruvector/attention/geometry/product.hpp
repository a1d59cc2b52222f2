#pragma once
/// \file geometry/product.hpp
/// \brief Product manifolds M_1 × … × M_k (e.g. E^e × H^h × S^s) stored as concatenated ambient
/// coordinates.
///
/// Gu et al. 2019, "Learning Mixed-Curvature Representations in Product Spaces" (ICLR): a point
/// of the product is the tuple of its components, x = [x_1 | x_2 | … | x_k], each x_i stored in
/// the ambient coordinates of M_i (d_i values, at offset o_i = d_1 + … + d_{i−1}). The product
/// metric is the sum of the component metrics, so
///
///     d(x, y)        = sqrt(Σ_i d_i(x_i, y_i)²)
///     ⟨u, v⟩_x       = Σ_i ⟨u_i, v_i⟩_{x_i}
///     exp, log, exp_0, log_0, Γ (transport), project, origin   — componentwise
///
/// (geodesics of a Riemannian product are products of geodesics). A product of spaces of
/// different curvature has non-constant sectional curvature, so `product_manifold` models
/// `manifold` but not `constant_curvature_manifold`.
///
/// `make_mixed_curvature_space<T>(component_dims, c_h, c_s)` builds E^e × H^h × S^s
/// (euclidean_space × poincare_ball × sphere) in the library's `[E | H | S]` layout.
///
/// Conventions: every public operation checks its spans against `ambient_dim()`
/// (`dimension_mismatch`) and the components check again; components of ambient size 0 are
/// skipped (they contribute 0 to distances and inner products and write nothing), so e.g. a
/// mixed-curvature space with no spherical part needs no special type. Component objects are held
/// by value; the product is immutable and safe to share across threads. No operation allocates.

#include <array>
#include <cmath>
#include <cstddef>
#include <span>
#include <sstream>
#include <tuple>
#include <type_traits>
#include <utility>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/config.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/curvature/components.hpp"
#include "ruvector/attention/geometry/euclidean.hpp"
#include "ruvector/attention/geometry/poincare.hpp"
#include "ruvector/attention/geometry/sphere.hpp"

namespace ruvector::attention {

namespace detail {

/// True when every type in Ms has the same `value_type` as the first.
template <class M0, class... Ms>
inline constexpr bool same_value_types =
    (std::is_same_v<typename M0::value_type, typename Ms::value_type> && ...);

}  // namespace detail

/// \brief The Riemannian product M_1 × … × M_k of manifolds with a common `value_type`.
///
/// Construct from the components' ambient sizes and the components, e.g.
/// `product_manifold pm(std::array<std::size_t, 2>{4, 3}, euclidean_space<float>{},
/// sphere<float>(1.0f));` (class template argument deduction gives
/// `product_manifold<euclidean_space<float>, sphere<float>>`).
/// \tparam Ms the component manifold types (each models `manifold`).
template <class... Ms>
requires(sizeof...(Ms) >= 1 && (manifold<Ms> && ...) &&
         detail::same_value_types<Ms...>) class product_manifold {
 public:
  /// The common scalar type.
  using value_type = typename std::tuple_element_t<0, std::tuple<Ms...>>::value_type;
  /// Number of factors k.
  static constexpr std::size_t component_count = sizeof...(Ms);
  /// Ambient sizes (or offsets) of the factors, in storage order.
  using dims_type = std::array<std::size_t, component_count>;

  /// The product of `components`, factor i occupying `ambient_dims[i]` stored values. Throws
  /// `input_too_large` when a size or the total exceeds `max_dimension`.
  explicit product_manifold(dims_type ambient_dims, Ms... components)
      : components_(std::move(components)...), dims_(ambient_dims) {
    std::size_t total = 0;
    for (std::size_t i = 0; i < component_count; ++i) {
      require_at_most("product_manifold: ambient_dims[i]", dims_[i], max_dimension);
      offsets_[i] = total;
      total += dims_[i];
    }
    require_at_most("product_manifold: total ambient dimension", total, max_dimension);
    total_ = total;
  }

  /// Factor I.
  template <std::size_t I>
  requires(I < component_count) [[nodiscard]] const auto& component() const noexcept {
    return std::get<I>(components_);
  }

  /// Offset of factor i in a stored point; throws `invalid_argument` when i ≥ component_count.
  [[nodiscard]] std::size_t offset(std::size_t i) const {
    check_index("product_manifold::offset", i);
    return offsets_[i];
  }

  /// Ambient size of factor i; throws `invalid_argument` when i ≥ component_count.
  [[nodiscard]] std::size_t component_dim(std::size_t i) const {
    check_index("product_manifold::component_dim", i);
    return dims_[i];
  }

  /// Ambient sizes of all factors.
  [[nodiscard]] const dims_type& ambient_dims() const noexcept { return dims_; }

  /// Total stored size Σ_i d_i.
  [[nodiscard]] std::size_t ambient_dim() const noexcept { return total_; }

  /// Product distance sqrt(Σ_i d_i(x_i, y_i)²).
  [[nodiscard]] value_type distance(std::span<const value_type> x,
                                    std::span<const value_type> y) const {
    require_dimension("product_manifold::distance: x.size()", x.size(), total_);
    require_dimension("product_manifold::distance: y.size()", y.size(), total_);
    value_type acc = value_type(0);
    for_each([&](const auto& m, std::size_t i) {
      const value_type d = m.distance(part(x, i), part(y, i));
      acc += d * d;
    });
    return std::sqrt(acc);
  }

  /// The factors' distances d_i(x_i, y_i), written to `out` (size component_count; 0 for a
  /// factor of size 0).
  void component_distances(std::span<const value_type> x, std::span<const value_type> y,
                           std::span<value_type> out) const {
    require_dimension("product_manifold::component_distances: x.size()", x.size(), total_);
    require_dimension("product_manifold::component_distances: y.size()", y.size(), total_);
    require_dimension("product_manifold::component_distances: out.size()", out.size(),
                      component_count);
    for (auto& o : out) o = value_type(0);
    for_each([&](const auto& m, std::size_t i) { out[i] = m.distance(part(x, i), part(y, i)); });
  }

  /// Product inner product Σ_i ⟨u_i, v_i⟩_{x_i}.
  [[nodiscard]] value_type inner(std::span<const value_type> x, std::span<const value_type> u,
                                 std::span<const value_type> v) const {
    require_dimension("product_manifold::inner: x.size()", x.size(), total_);
    require_dimension("product_manifold::inner: u.size()", u.size(), total_);
    require_dimension("product_manifold::inner: v.size()", v.size(), total_);
    value_type acc = value_type(0);
    for_each(
        [&](const auto& m, std::size_t i) { acc += m.inner(part(x, i), part(u, i), part(v, i)); });
    return acc;
  }

  /// Componentwise exponential map.
  void exp(std::span<const value_type> x, std::span<const value_type> v,
           std::span<value_type> out) const {
    require_dimension("product_manifold::exp: x.size()", x.size(), total_);
    require_dimension("product_manifold::exp: v.size()", v.size(), total_);
    require_dimension("product_manifold::exp: out.size()", out.size(), total_);
    for_each([&](const auto& m, std::size_t i) { m.exp(part(x, i), part(v, i), part(out, i)); });
  }

  /// Componentwise logarithmic map.
  void log(std::span<const value_type> x, std::span<const value_type> y,
           std::span<value_type> out) const {
    require_dimension("product_manifold::log: x.size()", x.size(), total_);
    require_dimension("product_manifold::log: y.size()", y.size(), total_);
    require_dimension("product_manifold::log: out.size()", out.size(), total_);
    for_each([&](const auto& m, std::size_t i) { m.log(part(x, i), part(y, i), part(out, i)); });
  }

  /// Componentwise exp at the origin.
  void exp0(std::span<const value_type> v, std::span<value_type> out) const {
    require_dimension("product_manifold::exp0: v.size()", v.size(), total_);
    require_dimension("product_manifold::exp0: out.size()", out.size(), total_);
    for_each([&](const auto& m, std::size_t i) { m.exp0(part(v, i), part(out, i)); });
  }

  /// Componentwise log at the origin.
  void log0(std::span<const value_type> y, std::span<value_type> out) const {
    require_dimension("product_manifold::log0: y.size()", y.size(), total_);
    require_dimension("product_manifold::log0: out.size()", out.size(), total_);
    for_each([&](const auto& m, std::size_t i) { m.log0(part(y, i), part(out, i)); });
  }

  /// Componentwise parallel transport of v from T_x to T_y.
  void transport(std::span<const value_type> x, std::span<const value_type> y,
                 std::span<const value_type> v, std::span<value_type> out) const {
    require_dimension("product_manifold::transport: x.size()", x.size(), total_);
    require_dimension("product_manifold::transport: y.size()", y.size(), total_);
    require_dimension("product_manifold::transport: v.size()", v.size(), total_);
    require_dimension("product_manifold::transport: out.size()", out.size(), total_);
    for_each([&](const auto& m, std::size_t i) {
      m.transport(part(x, i), part(y, i), part(v, i), part(out, i));
    });
  }

  /// Componentwise projection onto the factors.
  void project(std::span<const value_type> x, std::span<value_type> out) const {
    require_dimension("product_manifold::project: x.size()", x.size(), total_);
    require_dimension("product_manifold::project: out.size()", out.size(), total_);
    for_each([&](const auto& m, std::size_t i) { m.project(part(x, i), part(out, i)); });
  }

  /// The tuple of the factors' origins.
  void origin(std::span<value_type> out) const {
    require_dimension("product_manifold::origin: out.size()", out.size(), total_);
    for_each([&](const auto& m, std::size_t i) { m.origin(part(out, i)); });
  }

 private:
  // Calls f(component, index) for every factor of non-zero size, in storage order.
  template <class F>
  void for_each(F&& f) const {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((dims_[I] != 0 ? (void)f(std::get<I>(components_), I) : (void)0), ...);
    }
    (std::make_index_sequence<component_count>{});
  }

  template <class U>
  [[nodiscard]] std::span<U> part(std::span<U> s, std::size_t i) const noexcept {
    return s.subspan(offsets_[i], dims_[i]);
  }

  static void check_index(const char* what, std::size_t i) {
    if (i >= component_count) {
      std::ostringstream os;
      os << "invalid argument: " << what << ": component index " << i << ", expected < "
         << component_count;
      throw invalid_argument(os.str());
    }
  }

  std::tuple<Ms...> components_;
  dims_type dims_{};
  dims_type offsets_{};
  std::size_t total_ = 0;
};

/// \brief The mixed-curvature space E^e × H^h × S^s: Euclidean × Poincaré ball × sphere.
template <attention_scalar T>
using mixed_curvature_space = product_manifold<euclidean_space<T>, poincare_ball<T>, sphere<T>>;

/// \brief E^e × H^h × S^s in the library's `[euclidean | hyperbolic | spherical]` storage layout
/// (curvature/components.hpp): `euclidean_space<T>` on the first e values,
/// `poincare_ball<T>(c_h, eps)` (curvature −c_h) on the next h, and `sphere<T>(c_s)` (curvature
/// +c_s, radius 1/√c_s; its s values are a point of S^{s−1} ⊂ R^s) on the last s. Both c_h and c_s
/// are positive magnitudes; the components' constructors throw `invalid_argument` otherwise. Any of
/// e, h, s may be 0 (that factor is skipped).
template <attention_scalar T>
[[nodiscard]] mixed_curvature_space<T> make_mixed_curvature_space(
    component_dims dims, T c_h, std::type_identity_t<T> c_s,
    std::type_identity_t<T> eps = poincare_ball<T>::default_eps) {
  return mixed_curvature_space<T>(
      typename mixed_curvature_space<T>::dims_type{dims.euclidean, dims.hyperbolic, dims.spherical},
      euclidean_space<T>{}, poincare_ball<T>(c_h, eps), sphere<T>(c_s));
}

}  // namespace ruvector::attention
