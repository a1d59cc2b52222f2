#pragma once
/// \file curvature/quantized_attention.hpp
/// \brief Mixed-curvature attention scored on bit-packed keys: the keys are prepared once
/// (`mixed_curvature_fused_attention::prepare_keys`: E part as is, H part projected into the ball,
/// S part normalised), the prepared rows are quantised by `component_quantizer` (8-bit E, 5-bit
/// H/S codes by default, really packed), and each query is scored by
///
///   1. `packed_keys::component_dots_all` — the three segment dot products ⟨q_E, k̂_E⟩, ⟨q_H, k̂_H⟩,
///      ⟨q̂_S, k̂_S⟩ computed on the packed codes (no key is dequantised into memory), then
///   2. `mixed_curvature_fused_attention::compute_from_dots` — the same stage 2 (similarities,
///      per-head mixtures, softmax, value sum) as the float path.
///
/// The key terms of stage 2 (‖k̂_H‖², 1/(1 − c‖k̂_H‖²), α(k̂_H), and 1/‖k̂_S‖, which rescales the
/// spherical dot so it is the cosine to the decoded direction) are computed once, in double, from
/// the *decoded* keys, so the scores are exactly those of the dequantised key set: the only error
/// against float keys is the quantisation of the keys themselves. Per component and key that error
/// is bounded by `packed_keys::error_bound` ((s_c/2)·‖q_c‖₁ on each dot product). A decoded H part
/// can move up to s_H/2 per coordinate, so a key near the ball's edge may decode past it; it is
/// then projected back onto the radius (1 − fused_ball_eps)/√c like any other key.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <type_traits>
#include <vector>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/curvature/component_quantizer.hpp"
#include "ruvector/attention/curvature/fused_attention.hpp"
#include "ruvector/attention/detail/scratch.hpp"

namespace ruvector::attention {

/// \brief Prepared, bit-packed keys of `mixed_curvature_fused_attention` with their key terms.
template <attention_scalar T>
class quantized_mixed_curvature_keys {
 public:
  /// Prepares `keys` for `attention`, packs them with `config`, and computes the key terms from the
  /// decoded keys.
  quantized_mixed_curvature_keys(const mixed_curvature_fused_attention<T>& attention,
                                 const matrix_cref<T>& keys, const quantization_config& config = {})
      : packed_(quantize_prepared(attention, keys, config)) {
    const std::size_t n = packed_.size();
    const component_dims dims = packed_.dims();
    const double c = -attention.config().curvature_h;
    const double r_max = (1.0 - fused_ball_eps) / std::sqrt(c);
    h_norm2_.resize(n);
    h_conformal_.resize(n);
    h_tangent_.resize(n);
    s_inverse_norm_.resize(n);
    h_scale_.resize(n);
    std::vector<T> row(dims.total());
    for (std::size_t j = 0; j < n; ++j) {
      packed_.dequantize_row(j, row);
      double n2 = 0.0;
      for (std::size_t i = 0; i < dims.hyperbolic; ++i) {
        const double x = static_cast<double>(row[dims.hyperbolic_offset() + i]);
        n2 += x * x;
      }
      // A decoded H part past the projection radius is projected like any key: its dot product is
      // scaled by r_max/‖k̂_H‖ at query time and its terms use the projected norm.
      h_scale_[j] = static_cast<T>(n2 > r_max * r_max ? r_max / std::sqrt(n2) : 1.0);
      n2 = std::min(n2, r_max * r_max);
      const double u = std::sqrt(c * n2);
      h_norm2_[j] = static_cast<T>(n2);
      h_conformal_[j] = static_cast<T>(1.0 / (1.0 - c * n2));
      h_tangent_[j] = static_cast<T>(u > 0.0 ? std::atanh(u) / u : 1.0);
      double s2 = 0.0;
      for (std::size_t i = 0; i < dims.spherical; ++i) {
        const double x = static_cast<double>(row[dims.spherical_offset() + i]);
        s2 += x * x;
      }
      // A prepared S part has norm 1, so its codes are never all zero and s2 > 0.
      s_inverse_norm_[j] = static_cast<T>(s2 > 0.0 ? 1.0 / std::sqrt(s2) : 0.0);
    }
  }

  [[nodiscard]] std::size_t size() const noexcept { return packed_.size(); }
  [[nodiscard]] const packed_keys<T>& packed() const noexcept { return packed_; }
  /// Bytes held by the packed codes and scales plus the three key-term arrays.
  [[nodiscard]] std::size_t storage_bytes() const noexcept {
    return packed_.storage_bytes() + 5 * h_norm2_.size() * sizeof(T);
  }
  [[nodiscard]] fused_key_terms<T> key_terms() const noexcept {
    return {std::span<const T>(h_norm2_), std::span<const T>(h_conformal_),
            std::span<const T>(h_tangent_)};
  }
  /// 1/‖k̂_S‖ per key (the decoded spherical parts are unit vectors only up to quantisation).
  [[nodiscard]] std::span<const T> spherical_inverse_norms() const noexcept {
    return s_inverse_norm_;
  }
  /// min(1, r_max/‖k̂_H‖) per key: the projection of decoded H parts that left the ball.
  [[nodiscard]] std::span<const T> hyperbolic_scales() const noexcept { return h_scale_; }

 private:
  static packed_keys<T> quantize_prepared(const mixed_curvature_fused_attention<T>& attention,
                                          const matrix_cref<T>& keys,
                                          const quantization_config& config) {
    const auto prepared = attention.prepare_keys(keys);
    const Eigen::Map<const row_matrix<T>, 0, Eigen::OuterStride<>> rows(
        prepared.data(), static_cast<Eigen::Index>(prepared.size()),
        static_cast<Eigen::Index>(prepared.dims().total()),
        Eigen::OuterStride<>(static_cast<Eigen::Index>(prepared.stride())));
    return component_quantizer<T>(prepared.dims(), config).quantize(rows);
  }

  packed_keys<T> packed_;
  std::vector<T> h_norm2_;
  std::vector<T> h_conformal_;
  std::vector<T> h_tangent_;
  std::vector<T> s_inverse_norm_;
  std::vector<T> h_scale_;
};

/// \brief Mean over heads of `attention`'s output for one query, scored on packed keys (see the
/// file comment). `values` has one row per key; `key_mask` (empty = all visible) as in
/// `compute_with_mask`.
template <attention_scalar T>
[[nodiscard]] std::vector<T> compute_quantized(const mixed_curvature_fused_attention<T>& attention,
                                               std::span<const T> query,
                                               const quantized_mixed_curvature_keys<T>& keys,
                                               const std::type_identity_t<matrix_cref<T>>& values,
                                               std::span<const bool> key_mask = {}) {
  const std::size_t n = keys.size();
  const std::size_t d = attention.config().dims.total();
  require_dimension("keys.packed().dims().total()", keys.packed().dims().total(), d);
  T* buf = detail::thread_scratch<T, 4>(d + 3 * n);
  const std::span<T> row(buf, d);
  const fused_query_terms<T> qt = attention.prepare_query(query, row);
  const std::span<T> e(buf + d, n), h(buf + d + n, n), s(buf + d + 2 * n, n);
  keys.packed().component_dots_all(std::span<const T>(row), e, h, s);
  const auto inv = keys.spherical_inverse_norms();
  const auto hs = keys.hyperbolic_scales();
  for (std::size_t j = 0; j < n; ++j) {
    h[j] *= hs[j];
    s[j] *= inv[j];
  }
  std::vector<T> out(static_cast<std::size_t>(values.cols()));
  attention.compute_from_dots(qt, e, h, s, keys.key_terms(), values, key_mask, out);
  return out;
}

}  // namespace ruvector::attention
