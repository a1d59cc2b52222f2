#pragma once
/// \file curvature/tangent_space.hpp
/// \brief Maps Poincaré-ball points to the tangent space at a base point b and back (the seeds'
/// `TangentSpaceMapper`), with the maps of Ganea et al. 2018, "Hyperbolic Neural Networks":
///
///     to_tangent(x)   = log_b(x),    from_tangent(v) = exp_b(v)
///
/// and, at the origin (b = 0, the fast path: one norm and one scaling per point),
///
///     log_0(x) = artanh(√c‖x‖) x/(√c‖x‖),    exp_0(v) = tanh(√c‖v‖) v/(√c‖v‖).
///
/// Both paths use the full conformal factor λ_x = 2/(1 − c‖x‖²), so the fast path is exactly the
/// general path evaluated at b = 0 (the Rust original's general path used half of λ and so
/// disagreed with its own fast path by a factor 2, and it produced NaN for positive curvature).
/// Tangent vectors are linear coordinates: Euclidean operations (averaging, linear layers,
/// dot-product attention) can be applied to them and the result mapped back.
///
/// Conventions:
/// - `tangent_space_config::curvature` uses the seeds' sign convention: it must be finite and
///   < 0 and the ball has c = −curvature (`invalid_config` otherwise; a sphere has no global
///   tangent chart, so positive curvature is rejected rather than producing NaN).
/// - An empty `base_point` is the origin and accepts points of any dimension; a non-empty one
///   fixes the dimension (`dimension_mismatch` otherwise), must be finite and strictly inside the
///   ball after conversion to T (`invalid_config`). An all-zero base point also takes the fast
///   path.
/// - Point inputs follow `poincare_ball` (open ball, otherwise `invalid_argument` /
///   `non_finite_input` naming the row); outputs of from_tangent lie within max_norm
///   (`poincare_ball<T>::default_eps`).
/// - The object is immutable and safe to share across threads. The matrix maps allocate only
///   their result and spread rows over threads with `parallel_for` for large inputs.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <sstream>
#include <string_view>
#include <utility>
#include <vector>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/parallel.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/geometry/poincare.hpp"

namespace ruvector::attention {

/// \brief Configuration of `tangent_space_mapper`.
struct tangent_space_config {
  /// Sectional curvature, < 0 (the seeds' sign convention); the ball has c = −curvature.
  double curvature = -1.0;
  /// The base point b of the tangent space (a ball point); empty = the origin.
  std::vector<double> base_point;
};

/// \brief Log/exp maps between the Poincaré ball and the tangent space at a base point.
/// \tparam T float or double.
template <attention_scalar T>
class tangent_space_mapper {
 public:
  using value_type = T;

  /// Validates `config` (see the file comment) and builds the ball.
  explicit tangent_space_mapper(tangent_space_config config = {})
      : config_(std::move(config)), ball_(checked_c(config_.curvature)) {
    base_.reserve(config_.base_point.size());
    for (std::size_t i = 0; i < config_.base_point.size(); ++i) {
      const double b = config_.base_point[i];
      if (!std::isfinite(b)) {
        std::ostringstream os;
        os << "tangent_space_config.base_point[" << i << "] = " << b << ", expected finite";
        require_config(false, os.str());
      }
      base_.push_back(static_cast<T>(b));
    }
    if (!ball_.contains(std::span<const T>(base_))) {
      std::ostringstream os;
      os << "tangent_space_config.base_point must lie strictly inside the ball of curvature "
         << config_.curvature << " (c·‖b‖² < 1 in the scalar type)";
      require_config(false, os.str());
    }
    at_origin_ = std::all_of(base_.begin(), base_.end(), [](T v) { return v == T(0); });
  }

  /// Rows: log_b(points.row(i)).
  [[nodiscard]] row_matrix<T> map_to_tangent(const matrix_cref<T>& points) const {
    return map_rows(points, "tangent_space_mapper::map_to_tangent", "points",
                    "tangent_space_mapper::map_to_tangent: points.cols()",
                    [this](std::span<const T> x, std::span<T> out) { to_tangent(x, out); });
  }

  /// Rows: exp_b(tangents.row(i)).
  [[nodiscard]] row_matrix<T> map_from_tangent(const matrix_cref<T>& tangents) const {
    return map_rows(tangents, "tangent_space_mapper::map_from_tangent", "tangents",
                    "tangent_space_mapper::map_from_tangent: tangents.cols()",
                    [this](std::span<const T> v, std::span<T> out) { from_tangent(v, out); });
  }

  /// out = log_b(x).
  void to_tangent(std::span<const T> x, std::span<T> out) const {
    check_dim("tangent_space_mapper::to_tangent", "x", x.size());
    if (at_origin_) {
      ball_.log0(x, out);
    } else {
      ball_.log(std::span<const T>(base_), x, out);
    }
  }

  /// out = exp_b(v).
  void from_tangent(std::span<const T> v, std::span<T> out) const {
    check_dim("tangent_space_mapper::from_tangent", "v", v.size());
    if (at_origin_) {
      ball_.exp0(v, out);
    } else {
      ball_.exp(std::span<const T>(base_), v, out);
    }
  }

  /// The ball (c = −curvature, default eps).
  [[nodiscard]] const poincare_ball<T>& ball() const noexcept { return ball_; }
  /// The base point in T (empty for the default origin).
  [[nodiscard]] std::span<const T> base_point() const noexcept { return base_; }
  /// True when the base point is the origin (the fast path is used).
  [[nodiscard]] bool at_origin() const noexcept { return at_origin_; }
  /// The dimension fixed by the base point, or 0 when any dimension is accepted.
  [[nodiscard]] std::size_t dim() const noexcept { return base_.size(); }
  /// The configuration as given.
  [[nodiscard]] const tangent_space_config& config() const noexcept { return config_; }

 private:
  static T checked_c(double curvature) {
    const T c = static_cast<T>(-curvature);
    if (!(std::isfinite(curvature) && curvature < 0.0 && std::isfinite(c) && c > T(0))) {
      std::ostringstream os;
      os << "tangent_space_config.curvature = " << curvature
         << ", expected finite and < 0 (c = −curvature must be a positive, finite value of the "
            "scalar type)";
      require_config(false, os.str());
    }
    return c;
  }

  void check_dim(std::string_view fn, std::string_view arg, std::size_t size) const {
    if (!base_.empty()) detail::geo_require_size(fn, arg, size, base_.size());
  }

  template <class F>
  row_matrix<T> map_rows(const matrix_cref<T>& in, std::string_view fn, std::string_view arg,
                         std::string_view cols_what, F&& f) const {
    const auto rows = static_cast<std::size_t>(in.rows());
    const auto cols = static_cast<std::size_t>(in.cols());
    if (!base_.empty()) require_dimension(cols_what, cols, base_.size());
    row_matrix<T> out(in.rows(), in.cols());
    constexpr std::size_t block = 64;
    const auto do_block = [&](std::size_t b) {
      const std::size_t end = std::min(rows, (b + 1) * block);
      for (std::size_t i = b * block; i < end; ++i) {
        try {
          f(std::span<const T>(in.data() + static_cast<std::ptrdiff_t>(i) * in.outerStride(), cols),
            std::span<T>(out.data() + i * cols, cols));
        } catch (const error& e) {
          detail::geo_rethrow_for_row(e, fn, arg, i);
        }
      }
    };
    const std::size_t blocks = (rows + block - 1) / block;
    if (rows * cols >= std::size_t{1} << 14) {
      parallel_for(0, blocks, do_block);
    } else {
      for (std::size_t b = 0; b < blocks; ++b) do_block(b);
    }
    return out;
  }

  tangent_space_config config_;
  poincare_ball<T> ball_;
  std::vector<T> base_;
  bool at_origin_ = true;
};

}  // namespace ruvector::attention
