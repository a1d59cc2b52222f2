#pragma once
/// \file concepts.hpp
/// \brief Concepts that name what the library's templates require. Each mechanism type is checked
/// against them with `static_assert` in the tests.

#include <concepts>
#include <span>
#include <type_traits>
#include <vector>

#include "ruvector/attention/core/tensor_view.hpp"

namespace ruvector::attention {

/// \brief The element types every mechanism accepts: `float` (default) and `double`.
template <class T>
concept attention_scalar = std::same_as<T, float> || std::same_as<T, double>;

/// \brief A mechanism with the seeds' single-query vector API:
/// `compute(query, keys, values) -> std::vector<T>` with keys/values as row-major matrix views.
template <class M>
concept attention_mechanism = attention_scalar<typename M::value_type> &&
    requires(const M& m, std::span<const typename M::value_type> q,
             const matrix_cref<typename M::value_type>& kv) {
  { m.compute(q, kv, kv) } -> std::same_as<std::vector<typename M::value_type>>;
};

/// \brief A mechanism that also accepts a boolean key mask (`true` = visible).
template <class M>
concept masked_attention_mechanism = attention_mechanism<M> &&
    requires(const M& m, std::span<const typename M::value_type> q,
             const matrix_cref<typename M::value_type>& kv, std::span<const bool> mask) {
  { m.compute_with_mask(q, kv, kv, mask) } -> std::same_as<std::vector<typename M::value_type>>;
};

/// \brief A Riemannian manifold of constant curvature (or a product of such) whose points and
/// tangent vectors are stored in ambient coordinates as contiguous spans.
///
/// All operations write into a caller-provided `out` of the ambient size (which must not alias the
/// inputs) and are `const`: a manifold object is an immutable description (curvature, eps).
/// `exp0`/`log0` are the maps at the model's origin; `transport(x, y, v,
/// out)` is parallel transport of `v` from the tangent space at `x` to the one at `y` along the
/// geodesic; `project(x, out)` maps an arbitrary ambient vector to the nearest valid point
/// (documented eps).
template <class M>
concept manifold = attention_scalar<typename M::value_type> &&
    requires(const M& m, std::span<const typename M::value_type> x,
             std::span<typename M::value_type> out) {
  { m.distance(x, x) } -> std::same_as<typename M::value_type>;
  { m.inner(x, x, x) } -> std::same_as<typename M::value_type>;
  m.exp(x, x, out);
  m.log(x, x, out);
  m.exp0(x, out);
  m.log0(x, out);
  m.transport(x, x, x, out);
  m.project(x, out);
  m.origin(out);
};

/// \brief A manifold of constant sectional curvature `curvature()`: negative for the hyperbolic
/// models, 0 for Euclidean space, positive for spheres. (A product space is a `manifold` but not
/// this: its curvature varies with the 2-plane.)
template <class M>
concept constant_curvature_manifold = manifold<M> && requires(const M& m) {
  { m.curvature() } -> std::same_as<typename M::value_type>;
};

/// \brief A strided view usable as a mask argument: rank-2 `[B, Lk]` booleans.
template <class V>
concept key_mask_view = std::same_as<std::remove_cvref_t<V>, tensor_view<const bool, 2>>;

}  // namespace ruvector::attention
