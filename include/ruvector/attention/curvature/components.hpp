#pragma once
/// \file components.hpp
/// \brief The layout of a mixed-curvature vector E^e × H^h × S^s: `[euclidean | hyperbolic |
/// spherical]`, stored contiguously in that order (e + h + s values).

#include <cstddef>

namespace ruvector::attention {

/// \brief Sizes of the three components of a product-space vector, in storage order.
///
/// The hyperbolic part is a point of the Poincaré ball (h coordinates); the spherical part is a
/// point of the sphere of radius 1/√c_s embedded in R^s (so intrinsic dimension s − 1).
struct component_dims {
  std::size_t euclidean = 0;
  std::size_t hyperbolic = 0;
  std::size_t spherical = 0;

  /// Total stored size e + h + s.
  [[nodiscard]] constexpr std::size_t total() const noexcept {
    return euclidean + hyperbolic + spherical;
  }
  /// Offset of the hyperbolic part (= e).
  [[nodiscard]] constexpr std::size_t hyperbolic_offset() const noexcept { return euclidean; }
  /// Offset of the spherical part (= e + h).
  [[nodiscard]] constexpr std::size_t spherical_offset() const noexcept {
    return euclidean + hyperbolic;
  }
  friend constexpr bool operator==(const component_dims&, const component_dims&) = default;
};

}  // namespace ruvector::attention
