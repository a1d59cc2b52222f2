#pragma once
/// \file core/tensor_view.hpp
/// \brief Zero-copy views: Eigen row-major maps/refs for 2-D data and a small strided
/// `tensor_view<T, Rank>` for the batched `[B, H, L, d]` layout.
///
/// Conventions: row-major; strides are in elements (not bytes); a stride of 0 broadcasts an
/// extent (used for additive biases shared across batch or heads). A default-constructed view is
/// "absent" (`data() == nullptr`) and is how optional tensor arguments are omitted.

#include <array>
#include <cstddef>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/detail/eigen.hpp"

namespace ruvector::attention {

/// \brief Dense row-major Eigen matrix.
template <class T>
using row_matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// \brief Read-only 2-D view (rows = vectors) over any row-major storage with an outer stride.
/// Binds without copying to `row_matrix<T>`, `Eigen::Map`s and row blocks of them.
template <class T>
using matrix_cref = Eigen::Ref<const row_matrix<T>, 0, Eigen::OuterStride<>>;

/// \brief Writable 2-D view over row-major storage with an outer stride.
template <class T>
using matrix_ref = Eigen::Ref<row_matrix<T>, 0, Eigen::OuterStride<>>;

/// \brief Wraps a raw row-major array (`rows` vectors of `cols` values, `row_stride` apart).
template <class T>
[[nodiscard]] auto matrix_view(T* data, std::size_t rows, std::size_t cols,
                               std::size_t row_stride = 0) {
  using M = std::conditional_t<std::is_const_v<T>, const row_matrix<std::remove_const_t<T>>,
                               row_matrix<T>>;
  const auto stride = static_cast<Eigen::Index>(row_stride == 0 ? cols : row_stride);
  return Eigen::Map<M, 0, Eigen::OuterStride<>>(data, static_cast<Eigen::Index>(rows),
                                                static_cast<Eigen::Index>(cols),
                                                Eigen::OuterStride<>(stride));
}

/// \brief Copies a vector of equally sized vectors into a row-major matrix (the seeds' layout).
/// Throws `dimension_mismatch` naming the first row whose length differs from row 0.
template <class T>
[[nodiscard]] row_matrix<T> to_matrix(const std::vector<std::vector<T>>& rows,
                                      std::string_view what = "rows") {
  const std::size_t cols = rows.empty() ? 0 : rows.front().size();
  row_matrix<T> m(static_cast<Eigen::Index>(rows.size()), static_cast<Eigen::Index>(cols));
  for (std::size_t r = 0; r < rows.size(); ++r) {
    require_dimension(std::string(what) + "[" + std::to_string(r) + "].size()", rows[r].size(),
                      cols);
    for (std::size_t c = 0; c < cols; ++c) {
      m(static_cast<Eigen::Index>(r), static_cast<Eigen::Index>(c)) = rows[r][c];
    }
  }
  return m;
}

/// \brief A strided view of a rank-`Rank` tensor; indexing is `view(i0, i1, ...)`.
template <class T, std::size_t Rank>
class tensor_view {
 public:
  using value_type = std::remove_const_t<T>;
  using extents_type = std::array<std::size_t, Rank>;
  using strides_type = std::array<std::ptrdiff_t, Rank>;

  /// An absent view (`data() == nullptr`, all extents 0).
  constexpr tensor_view() noexcept = default;

  /// A view with explicit strides (in elements).
  constexpr tensor_view(T* data, extents_type extents, strides_type strides) noexcept
      : data_(data), extents_(extents), strides_(strides) {}

  /// A contiguous row-major view.
  constexpr tensor_view(T* data, extents_type extents) noexcept
      : data_(data), extents_(extents), strides_(contiguous_strides(extents)) {}

  /// Converts a mutable view to a read-only one.
  template <class U>
  requires(std::is_same_v<const U, T> && !std::is_same_v<U, T>) constexpr tensor_view(
      const tensor_view<U, Rank>& other) noexcept  // NOLINT(google-explicit-constructor)
      : data_(other.data()), extents_(other.extents()), strides_(other.strides()) {}

  [[nodiscard]] constexpr T* data() const noexcept { return data_; }
  [[nodiscard]] constexpr const extents_type& extents() const noexcept { return extents_; }
  [[nodiscard]] constexpr const strides_type& strides() const noexcept { return strides_; }
  [[nodiscard]] constexpr std::size_t extent(std::size_t i) const noexcept { return extents_[i]; }
  [[nodiscard]] constexpr std::ptrdiff_t stride(std::size_t i) const noexcept {
    return strides_[i];
  }
  /// True for an absent (default-constructed) view.
  [[nodiscard]] constexpr bool absent() const noexcept { return data_ == nullptr; }
  /// Number of addressed elements (product of extents).
  [[nodiscard]] constexpr std::size_t size() const noexcept {
    std::size_t n = 1;
    for (auto e : extents_) n *= e;
    return n;
  }
  /// True when the last extent is unit-stride and each stride is the product of later extents.
  [[nodiscard]] constexpr bool is_contiguous() const noexcept {
    return strides_ == contiguous_strides(extents_);
  }

  /// Element access.
  template <class... I>
  requires(sizeof...(I) == Rank) [[nodiscard]] constexpr T& operator()(I... idx) const noexcept {
    return data_[offset(std::array<std::size_t, Rank>{static_cast<std::size_t>(idx)...})];
  }

  /// Pointer to the innermost row selected by the leading `Rank - 1` indices.
  template <class... I>
  requires(sizeof...(I) == Rank - 1) [[nodiscard]] constexpr T* row(I... idx) const noexcept {
    return data_ + offset(std::array<std::size_t, Rank>{static_cast<std::size_t>(idx)..., 0});
  }

  /// The row-major strides of a contiguous tensor with `extents`.
  [[nodiscard]] static constexpr strides_type contiguous_strides(const extents_type& e) noexcept {
    strides_type s{};
    std::ptrdiff_t acc = 1;
    for (std::size_t i = Rank; i-- > 0;) {
      s[i] = acc;
      acc *= static_cast<std::ptrdiff_t>(e[i]);
    }
    return s;
  }

 private:
  [[nodiscard]] constexpr std::ptrdiff_t offset(
      const std::array<std::size_t, Rank>& idx) const noexcept {
    std::ptrdiff_t off = 0;
    for (std::size_t i = 0; i < Rank; ++i) off += static_cast<std::ptrdiff_t>(idx[i]) * strides_[i];
    return off;
  }

  T* data_ = nullptr;
  extents_type extents_{};
  strides_type strides_{};
};

/// \brief Contiguous `[B, H, L, d]` view over a raw buffer.
template <class T>
[[nodiscard]] constexpr tensor_view<T, 4> make_tensor_view(T* data, std::size_t b, std::size_t h,
                                                           std::size_t l, std::size_t d) noexcept {
  return tensor_view<T, 4>(data, {b, h, l, d});
}

}  // namespace ruvector::attention
