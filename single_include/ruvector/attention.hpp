// ruvector-attention 0.1.0 -- single-header edition.
//
// GENERATED FILE, do not edit: include/ruvector/attention.hpp with every ruvector/ header it
// includes inlined once, made by cmake/amalgamate.cmake.
// Regenerate with: cmake --build <build-dir> --target amalgamate
//
// Needs C++20 and, on the include path, Eigen >= 3.4, xsimd and nlohmann_json.
//
// SPDX-License-Identifier: MIT
// Copyright (c) 2026 ruvector-attention contributors
#pragma once

/// \file attention.hpp
/// \brief Umbrella header of ruvector-attention: includes every family.
///
/// Prefer the family entry headers (`ruvector/attention/standard.hpp`, ...) in large code bases to
/// keep compile times down.

// ---- begin ruvector/attention/concepts.hpp ----
/// \file concepts.hpp
/// \brief Concepts that name what the library's templates require. Each mechanism type is checked
/// against them with `static_assert` in the tests.

#include <concepts>
#include <span>
#include <type_traits>
#include <vector>

// ---- begin ruvector/attention/core/tensor_view.hpp ----
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

// ---- begin ruvector/attention/core/validate.hpp ----
/// \file core/validate.hpp
/// \brief Validation helpers used at the public surface. Each throws a subclass of `error` whose
/// message names the argument, the index and the expected value.

#include <cmath>
#include <cstddef>
#include <span>
#include <sstream>
#include <string>
#include <string_view>

// ---- begin ruvector/attention/config.hpp ----
/// \file config.hpp
/// \brief Compile-time configuration macros shared by every header.

#include <cstddef>

#if defined(_OPENMP)
/// Defined to 1 when the translation unit is compiled with OpenMP (`-fopenmp`).
#define RUVECTOR_ATTENTION_HAS_OPENMP 1
#else
#define RUVECTOR_ATTENTION_HAS_OPENMP 0
#endif

#if defined(__GNUC__) || defined(__clang__)
#define RUVECTOR_ATTENTION_ALWAYS_INLINE inline __attribute__((always_inline))
#define RUVECTOR_ATTENTION_RESTRICT __restrict__
#else
#define RUVECTOR_ATTENTION_ALWAYS_INLINE inline
#define RUVECTOR_ATTENTION_RESTRICT
#endif

namespace ruvector::attention {

/// \brief Largest number of keys (or sequence length) a public entry point accepts.
/// Guards against accidental O(L^2) allocations from corrupted sizes; override by defining
/// RUVECTOR_ATTENTION_MAX_SEQUENCE_LENGTH before including any header.
#ifndef RUVECTOR_ATTENTION_MAX_SEQUENCE_LENGTH
#define RUVECTOR_ATTENTION_MAX_SEQUENCE_LENGTH (std::size_t{1} << 26)
#endif
inline constexpr std::size_t max_sequence_length = RUVECTOR_ATTENTION_MAX_SEQUENCE_LENGTH;

/// \brief Largest vector dimension a public entry point accepts.
#ifndef RUVECTOR_ATTENTION_MAX_DIMENSION
#define RUVECTOR_ATTENTION_MAX_DIMENSION (std::size_t{1} << 20)
#endif
inline constexpr std::size_t max_dimension = RUVECTOR_ATTENTION_MAX_DIMENSION;

}  // namespace ruvector::attention

// GCC 12 reports -W(maybe-)uninitialized inside its own AVX-512 intrinsics (`__m512 __Y = __Y;`
// in avx512fintrin.h) when xsimd's exp/ldexp are inlined into our kernels. The warning is a false
// positive in a system header; silence exactly those two warnings around the kernel code so users
// compiling with -Werror are not affected.
#if defined(__GNUC__) && !defined(__clang__)
#define RUVECTOR_ATTENTION_KERNEL_WARNINGS_BEGIN                                       \
  _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wuninitialized\"") \
      _Pragma("GCC diagnostic ignored \"-Wmaybe-uninitialized\"")
#define RUVECTOR_ATTENTION_KERNEL_WARNINGS_END _Pragma("GCC diagnostic pop")
#else
#define RUVECTOR_ATTENTION_KERNEL_WARNINGS_BEGIN
#define RUVECTOR_ATTENTION_KERNEL_WARNINGS_END
#endif
// ---- end ruvector/attention/config.hpp ----
// ---- begin ruvector/attention/core/error.hpp ----
/// \file core/error.hpp
/// \brief The exception hierarchy thrown by every validated public entry point.
///
/// All errors derive from `ruvector::attention::error` (itself a `std::runtime_error`), so callers
/// can catch one type. Messages name the argument, the offending index and the expected value.

#include <stdexcept>
#include <string>

namespace ruvector::attention {

/// \brief Base class of every exception the library throws.
class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// \brief Two sizes that must agree do not (e.g. query length vs key width).
class dimension_mismatch : public error {
 public:
  using error::error;
};

/// \brief An argument is outside its documented domain (empty input, zero heads, ...).
class invalid_argument : public error {
 public:
  using error::error;
};

/// \brief An input holds NaN or ±Inf where finite values are required.
class non_finite_input : public error {
 public:
  using error::error;
};

/// \brief An input exceeds a documented size limit.
class input_too_large : public error {
 public:
  using error::error;
};

/// \brief A configuration is inconsistent (e.g. heads do not divide the model dimension).
class invalid_config : public error {
 public:
  using error::error;
};

/// \brief Reading or writing a file or a serialised configuration failed.
class io_error : public error {
 public:
  using error::error;
};

}  // namespace ruvector::attention
// ---- end ruvector/attention/core/error.hpp ----

namespace ruvector::attention {

/// \brief Throws `dimension_mismatch` unless `actual == expected`.
inline void require_dimension(std::string_view what, std::size_t actual, std::size_t expected) {
  if (actual != expected) {
    std::ostringstream os;
    os << "dimension mismatch: " << what << " is " << actual << ", expected " << expected;
    throw dimension_mismatch(os.str());
  }
}

/// \brief Throws `invalid_argument` when `size == 0`.
inline void require_non_empty(std::string_view what, std::size_t size) {
  if (size == 0) {
    std::ostringstream os;
    os << "invalid argument: " << what << " is empty";
    throw invalid_argument(os.str());
  }
}

/// \brief Throws `input_too_large` when `size > limit`.
inline void require_at_most(std::string_view what, std::size_t size, std::size_t limit) {
  if (size > limit) {
    std::ostringstream os;
    os << "input too large: " << what << " is " << size << ", the limit is " << limit;
    throw input_too_large(os.str());
  }
}

/// \brief Throws `invalid_config` unless `condition` holds; `message` says what was expected.
inline void require_config(bool condition, std::string_view message) {
  if (!condition) throw invalid_config("invalid config: " + std::string(message));
}

/// \brief Throws `invalid_argument` unless `condition` holds.
inline void require_argument(bool condition, std::string_view message) {
  if (!condition) throw invalid_argument("invalid argument: " + std::string(message));
}

namespace detail {

/// Throws `non_finite_input` naming `what[index]` and the value.
template <class T>
[[noreturn]] void throw_non_finite(std::string_view what, std::size_t index, T value) {
  std::ostringstream os;
  os << "non-finite input: " << what << "[" << index << "] = " << value;
  throw non_finite_input(os.str());
}

/// Throws `non_finite_input` naming `what[row][col]` and the value.
template <class T>
[[noreturn]] void throw_non_finite(std::string_view what, std::size_t row, std::size_t col,
                                   T value) {
  std::ostringstream os;
  os << "non-finite input: " << what << "[" << row << "][" << col << "] = " << value;
  throw non_finite_input(os.str());
}

}  // namespace detail

/// \brief Throws `non_finite_input` naming the first NaN/Inf element of `values`.
template <class T>
void require_finite(std::string_view what, std::span<const T> values) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) detail::throw_non_finite(what, i, values[i]);
  }
}

/// \brief Throws `non_finite_input` naming the first NaN/Inf of a row-strided matrix.
template <class T>
void require_finite(std::string_view what, const T* data, std::size_t rows, std::size_t cols,
                    std::ptrdiff_t row_stride) {
  for (std::size_t r = 0; r < rows; ++r) {
    const T* row = data + static_cast<std::ptrdiff_t>(r) * row_stride;
    for (std::size_t c = 0; c < cols; ++c) {
      if (!std::isfinite(row[c])) detail::throw_non_finite(what, r, c, row[c]);
    }
  }
}

}  // namespace ruvector::attention
// ---- end ruvector/attention/core/validate.hpp ----
// ---- begin ruvector/attention/detail/eigen.hpp ----
/// \file detail/eigen.hpp
/// \brief Includes Eigen/Core inside the same warning guard as xsimd: GCC 12.2 reports
/// -W(maybe-)uninitialized inside its own AVX-512 intrinsics (`__m512 __Y = __Y;`, GCC bug 105593)
/// when Eigen's AVX-512 GEMM kernels are instantiated. Covering Eigen's template definitions keeps
/// users who build with -Werror and -march=native unaffected.


RUVECTOR_ATTENTION_KERNEL_WARNINGS_BEGIN
#include <Eigen/Core>
RUVECTOR_ATTENTION_KERNEL_WARNINGS_END
// ---- end ruvector/attention/detail/eigen.hpp ----

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
// ---- end ruvector/attention/core/tensor_view.hpp ----

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
// ---- end ruvector/attention/concepts.hpp ----
// ---- begin ruvector/attention/core.hpp ----
/// \file core.hpp
/// \brief Entry header of the core family: views, errors, validation, masks, RNG, parallel_for.

// ---- begin ruvector/attention/core/mask.hpp ----
/// \file core/mask.hpp
/// \brief Masks: boolean key masks, causal masking and additive biases.
///
/// Conventions (DESIGN.md §4):
/// - A key mask holds `true` for keys that may be attended and `false` for masked-out keys.
/// - Causal masking is bottom-right aligned: query `i` of `Lq` sees keys `j <= i + (Lk - Lq)`.
///   With `Lq > Lk` the first `Lq - Lk` queries see no key at all.
/// - An additive bias is added to the scaled logits; `-inf` entries act as a mask.
/// - A query row that sees no key outputs zeros and has all-zero weights (never NaN); its
///   log-sum-exp is `-inf`.

#include <algorithm>
#include <cstddef>
#include <memory>
#include <span>
#include <vector>


namespace ruvector::attention {

/// \brief Number of leading keys visible to query `i` under bottom-right aligned causal masking.
[[nodiscard]] constexpr std::size_t causal_visible_keys(std::size_t i, std::size_t lq,
                                                        std::size_t lk) noexcept {
  // Visible keys are j <= i + lk - lq, i.e. the first (i + 1 + lk - lq) keys, clamped to [0, lk].
  const std::size_t limit = i + 1 + lk;
  return limit <= lq ? 0 : std::min(limit - lq, lk);
}

/// \brief Dense `Lq x Lk` causal mask (row-major, `true` = visible), for tests and debugging.
[[nodiscard]] inline std::vector<bool> make_causal_mask(std::size_t lq, std::size_t lk) {
  std::vector<bool> m(lq * lk, false);
  for (std::size_t i = 0; i < lq; ++i) {
    const std::size_t n = causal_visible_keys(i, lq, lk);
    for (std::size_t j = 0; j < n; ++j) m[i * lk + j] = true;
  }
  return m;
}

/// \brief Key mask from per-batch valid lengths: key `j` of batch `b` is visible iff
/// `j < lengths[b]` (padding mask). Storage is `B x Lk`, row-major.
[[nodiscard]] inline std::unique_ptr<bool[]> make_length_mask(std::span<const std::size_t> lengths,
                                                              std::size_t lk) {
  auto m = std::make_unique<bool[]>(lengths.size() * lk);
  for (std::size_t b = 0; b < lengths.size(); ++b) {
    for (std::size_t j = 0; j < lk; ++j) m[b * lk + j] = j < lengths[b];
  }
  return m;
}

/// \brief Everything that can hide keys from queries in one call of the tensor API.
template <class T>
struct mask_spec {
  /// `[B, Lk]` boolean key mask (`true` = attend); absent = every key visible.
  tensor_view<const bool, 2> key_mask{};
  /// Bottom-right aligned causal masking.
  bool causal = false;
  /// Additive bias `[B or 1, H or 1, Lq, Lk]` added to the scaled logits; an extent of 1
  /// broadcasts. `-inf` hides a key; NaN and `+inf` are rejected. Absent = no bias.
  tensor_view<const T, 4> bias{};
};

}  // namespace ruvector::attention
// ---- end ruvector/attention/core/mask.hpp ----
// ---- begin ruvector/attention/core/parallel.hpp ----
/// \file core/parallel.hpp
/// \brief `parallel_for`: OpenMP when the translation unit is compiled with `-fopenmp`, a plain
/// loop otherwise. No `<execution>` (with libtbb-dev installed it forces `-ltbb` on every user).

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <mutex>


#if RUVECTOR_ATTENTION_HAS_OPENMP
#include <omp.h>
#endif

namespace ruvector::attention {

namespace detail {
inline std::atomic<int>& thread_setting() noexcept {
  static std::atomic<int> n{0};  // 0 = use the runtime's default
  return n;
}
}  // namespace detail

/// \brief Sets the number of threads `parallel_for` uses; 0 restores the default (all cores,
/// or `OMP_NUM_THREADS`). Has no effect without OpenMP.
inline void set_num_threads(int n) {
  require_argument(n >= 0, "set_num_threads: thread count must be >= 0");
  detail::thread_setting().store(n, std::memory_order_relaxed);
}

/// \brief The number of threads `parallel_for` will use (1 without OpenMP).
[[nodiscard]] inline int num_threads() noexcept {
#if RUVECTOR_ATTENTION_HAS_OPENMP
  const int n = detail::thread_setting().load(std::memory_order_relaxed);
  return n > 0 ? n : omp_get_max_threads();
#else
  return 1;
#endif
}

/// \brief Calls `f(i)` for every `i` in `[begin, end)`, possibly concurrently. Iterations must be
/// independent. The first exception thrown by any iteration is rethrown on the calling thread.
template <class F>
void parallel_for(std::size_t begin, std::size_t end, F&& f) {
  if (end <= begin) return;
#if RUVECTOR_ATTENTION_HAS_OPENMP
  const int threads = std::min<long long>(num_threads(), static_cast<long long>(end - begin));
  if (threads > 1 && !omp_in_parallel()) {
    std::exception_ptr failure;
    std::mutex failure_mutex;
    const auto count = static_cast<long long>(end - begin);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (long long k = 0; k < count; ++k) {
      try {
        f(begin + static_cast<std::size_t>(k));
      } catch (...) {
        const std::lock_guard<std::mutex> lock(failure_mutex);
        if (!failure) failure = std::current_exception();
      }
    }
    if (failure) std::rethrow_exception(failure);
    return;
  }
  if (!omp_in_parallel()) {
    // Serial, but inside a one-thread parallel region whose nthreads ICV is 1: Eigen parallelises
    // its own GEMMs whenever omp_get_max_threads() > 1 outside a team, which would turn a "one
    // thread" request into many small synchronised GEMMs on every core. omp_set_num_threads here
    // only changes the ICV of this region's implicit task, not the caller's setting.
    std::exception_ptr failure;
#pragma omp parallel num_threads(1)
    {
      omp_set_num_threads(1);
      try {
        for (std::size_t i = begin; i < end; ++i) f(i);
      } catch (...) {
        failure = std::current_exception();
      }
    }
    if (failure) std::rethrow_exception(failure);
    return;
  }
#endif
  for (std::size_t i = begin; i < end; ++i) f(i);
}

}  // namespace ruvector::attention
// ---- end ruvector/attention/core/parallel.hpp ----
// ---- begin ruvector/attention/core/rng.hpp ----
/// \file core/rng.hpp
/// \brief A seeded, platform-independent random number generator usable from headers.
///
/// `rng` is xoshiro256** (Blackman & Vigna 2018) seeded through splitmix64. Unlike
/// `std::normal_distribution`, whose algorithm is implementation-defined, every draw here is
/// specified bit-for-bit, so the same seed gives the same numbers on every platform (DESIGN §4).

#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>

namespace ruvector::attention {

/// \brief xoshiro256** generator; models `std::uniform_random_bit_generator`.
class rng {
 public:
  using result_type = std::uint64_t;

  /// Seeds the four state words from `seed` with splitmix64.
  explicit constexpr rng(std::uint64_t seed = 0x5eed) noexcept { reseed(seed); }

  /// Resets the generator to the stream of `seed`.
  constexpr void reseed(std::uint64_t seed) noexcept {
    for (auto& word : state_) {
      seed += 0x9e3779b97f4a7c15ULL;
      std::uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      word = z ^ (z >> 31);
    }
    has_spare_ = false;
  }

  static constexpr result_type min() noexcept { return 0; }
  static constexpr result_type max() noexcept { return std::numeric_limits<result_type>::max(); }

  /// Next 64 random bits.
  constexpr result_type operator()() noexcept {
    const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const std::uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }

  /// Uniform double in [0, 1) with 53 random bits.
  constexpr double uniform01() noexcept { return static_cast<double>((*this)() >> 11) * 0x1.0p-53; }

  /// Uniform value in [lo, hi).
  template <class T = double>
  constexpr T uniform(T lo, T hi) noexcept {
    return static_cast<T>(static_cast<double>(lo) +
                          (static_cast<double>(hi) - static_cast<double>(lo)) * uniform01());
  }

  /// Standard normal draw (Box–Muller; the second value of each pair is kept for the next call).
  template <class T = double>
  T normal(T mean = T(0), T stddev = T(1)) noexcept {
    if (has_spare_) {
      has_spare_ = false;
      return static_cast<T>(static_cast<double>(mean) + static_cast<double>(stddev) * spare_);
    }
    double u1 = uniform01();
    while (u1 <= 0.0) u1 = uniform01();
    const double u2 = uniform01();
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double theta = 2.0 * std::numbers::pi * u2;
    spare_ = r * std::sin(theta);
    has_spare_ = true;
    return static_cast<T>(static_cast<double>(mean) +
                          static_cast<double>(stddev) * r * std::cos(theta));
  }

  /// Uniform integer in [0, n) without modulo bias (Lemire's method); `n` must be > 0.
  constexpr std::uint64_t below(std::uint64_t n) noexcept {
    __uint128_t m = static_cast<__uint128_t>((*this)()) * n;
    auto low = static_cast<std::uint64_t>(m);
    if (low < n) {
      const std::uint64_t threshold = (0 - n) % n;
      while (low < threshold) {
        m = static_cast<__uint128_t>((*this)()) * n;
        low = static_cast<std::uint64_t>(m);
      }
    }
    return static_cast<std::uint64_t>(m >> 64);
  }

 private:
  static constexpr std::uint64_t rotl(std::uint64_t x, int k) noexcept {
    return (x << k) | (x >> (64 - k));
  }

  std::uint64_t state_[4]{};
  double spare_ = 0.0;
  bool has_spare_ = false;
};

}  // namespace ruvector::attention
// ---- end ruvector/attention/core/rng.hpp ----
// ---- begin ruvector/attention/version.hpp ----
/// \file version.hpp
/// \brief The single source of the library version (CMake parses these three lines).

#define RUVECTOR_ATTENTION_VERSION_MAJOR 0
#define RUVECTOR_ATTENTION_VERSION_MINOR 1
#define RUVECTOR_ATTENTION_VERSION_PATCH 0

#define RUVECTOR_ATTENTION_VERSION                                                     \
  (RUVECTOR_ATTENTION_VERSION_MAJOR * 10000 + RUVECTOR_ATTENTION_VERSION_MINOR * 100 + \
   RUVECTOR_ATTENTION_VERSION_PATCH)

#define RUVECTOR_ATTENTION_DETAIL_STR2(x) #x
#define RUVECTOR_ATTENTION_DETAIL_STR(x) RUVECTOR_ATTENTION_DETAIL_STR2(x)

namespace ruvector::attention {

/// \brief The library version as "major.minor.patch".
inline constexpr const char* version_string =
    RUVECTOR_ATTENTION_DETAIL_STR(RUVECTOR_ATTENTION_VERSION_MAJOR) "." RUVECTOR_ATTENTION_DETAIL_STR(
        RUVECTOR_ATTENTION_VERSION_MINOR) "." RUVECTOR_ATTENTION_DETAIL_STR(RUVECTOR_ATTENTION_VERSION_PATCH);

}  // namespace ruvector::attention
// ---- end ruvector/attention/version.hpp ----
// ---- end ruvector/attention/core.hpp ----
// ---- begin ruvector/attention/fwd.hpp ----
/// \file fwd.hpp
/// \brief Forward declarations of the public class templates.

#include <cstddef>

namespace ruvector::attention {

template <class T, std::size_t Rank>
class tensor_view;
template <class T>
class scaled_dot_product_attention;
template <class T>
class multi_head_attention;
template <class T>
class flash_attention;
template <class T>
class linear_attention;
template <class T>
class linear_key_state;
template <class T>
class local_global_attention;
class sparse_pattern;
class rng;

}  // namespace ruvector::attention
// ---- end ruvector/attention/fwd.hpp ----
// ---- begin ruvector/attention/kernels.hpp ----
/// \file kernels.hpp
/// \brief Entry header of the xsimd kernel layer.

// ---- begin ruvector/attention/kernels/gemv.hpp ----
/// \file kernels/gemv.hpp
/// \brief Matrix-vector kernels for one query against a row-major key/value matrix.
///
/// - `row_dots`:          s_j = alpha · (q · k_j)            (scores; K·q)
/// - `weighted_row_sum`:  o   = beta · o + Σ_j w_j · v_j     (the softmax-weighted value sum; Vᵀw)
/// - `row_squared_distances`: s_j = ‖q − k_j‖² (and optionally ‖k_j‖²), for distance-based scores
///
/// `row_dots` streams 8 key rows per step so each loaded query batch feeds 8 independent FMA
/// chains; `weighted_row_sum` keeps a tile of 8 output batches in registers across all rows, so the
/// output is read and written once instead of once per key (the naive axpy loop).

#include <cstddef>

// ---- begin ruvector/attention/kernels/reduce.hpp ----
/// \file kernels/reduce.hpp
/// \brief Level-1 kernels: dot, sum, max, axpy, scale.
///
/// Every reduction keeps four independent accumulators over `4 * W` elements per step (W = SIMD
/// width) so consecutive FMAs do not wait on each other's latency, then one batch per step, then a
/// scalar tail. Pointers need no particular alignment. All kernels are `noexcept` and do no
/// validation; a length of 0 is valid (dot/sum give 0, max gives -inf).

#include <cstddef>
#include <limits>

// ---- begin ruvector/attention/kernels/simd.hpp ----
/// \file kernels/simd.hpp
/// \brief The xsimd foundation of the kernel layer: the compile-time architecture, batch aliases
/// and horizontal-reduction shims that work with xsimd 8.1 (Debian 12) and xsimd >= 9.
///
/// The architecture is `xsimd::default_arch`, i.e. the best instruction set enabled by the
/// compiler flags (`sse2` by default on x86-64, `fma3+avx2` with `-mavx2 -mfma`, `avx512bw` with
/// `-march=native` on AVX-512 machines). Header-only code cannot dispatch at run time (that needs
/// one translation unit per ISA), so build with the flags of the machine you deploy on.


// xsimd itself is included inside the guard so its out-of-line math templates are covered too.
RUVECTOR_ATTENTION_KERNEL_WARNINGS_BEGIN
#include <xsimd/xsimd.hpp>
RUVECTOR_ATTENTION_KERNEL_WARNINGS_END

#include <algorithm>
#include <cstddef>
#include <limits>

RUVECTOR_ATTENTION_KERNEL_WARNINGS_BEGIN

namespace ruvector::attention::kernels {

/// \brief The SIMD architecture the kernels are compiled for.
using default_arch = xsimd::default_arch;

/// \brief A SIMD register of `T` for architecture `Arch`.
template <class T, class Arch = default_arch>
using batch = xsimd::batch<T, Arch>;

/// \brief The name of the compiled SIMD architecture (e.g. "avx512bw").
[[nodiscard]] inline const char* simd_arch_name() noexcept { return default_arch::name(); }

namespace detail {

// xsimd 8.1 spells the horizontal sum `hadd`; xsimd >= 9 renamed it `reduce_add`. A shim with a
// name of our own avoids ADL ambiguity with xsimd's own `reduce_*` in newer versions.
#if XSIMD_VERSION_MAJOR >= 9
template <class T, class A>
[[nodiscard]] inline T hsum(const xsimd::batch<T, A>& b) noexcept {
  return xsimd::reduce_add(b);
}
template <class T, class A>
[[nodiscard]] inline T hmax(const xsimd::batch<T, A>& b) noexcept {
  return xsimd::reduce_max(b);
}
#else
template <class T, class A>
[[nodiscard]] inline T hsum(const xsimd::batch<T, A>& b) noexcept {
  return xsimd::hadd(b);
}
template <class T, class A>
[[nodiscard]] inline T hmax(const xsimd::batch<T, A>& b) noexcept {
  alignas(A::alignment()) T lanes[xsimd::batch<T, A>::size];
  b.store_aligned(lanes);
  T m = lanes[0];
  for (std::size_t i = 1; i < xsimd::batch<T, A>::size; ++i) m = lanes[i] > m ? lanes[i] : m;
  return m;
}
#endif

/// Loads `n < size` elements into a batch, filling the remaining lanes with `fill`.
template <class T, class A>
[[nodiscard]] inline xsimd::batch<T, A> load_partial(const T* p, std::size_t n, T fill) noexcept {
  alignas(A::alignment()) T lanes[xsimd::batch<T, A>::size];
  for (std::size_t i = 0; i < xsimd::batch<T, A>::size; ++i) lanes[i] = i < n ? p[i] : fill;
  return xsimd::batch<T, A>::load_aligned(lanes);
}

/// Stores the first `n < size` lanes of `b` to `p`.
template <class T, class A>
inline void store_partial(const xsimd::batch<T, A>& b, T* p, std::size_t n) noexcept {
  alignas(A::alignment()) T lanes[xsimd::batch<T, A>::size];
  b.store_aligned(lanes);
  for (std::size_t i = 0; i < n; ++i) p[i] = lanes[i];
}

}  // namespace detail
}  // namespace ruvector::attention::kernels

RUVECTOR_ATTENTION_KERNEL_WARNINGS_END
// ---- end ruvector/attention/kernels/simd.hpp ----

RUVECTOR_ATTENTION_KERNEL_WARNINGS_BEGIN

namespace ruvector::attention::kernels {

/// \brief Σ a[i]·b[i].
template <class T, class Arch = default_arch>
[[nodiscard]] T dot(const T* a, const T* b, std::size_t n) noexcept {
  using B = batch<T, Arch>;
  constexpr std::size_t W = B::size;
  std::size_t i = 0;
  T result = T(0);
  if (n >= W) {
    B acc0(T(0)), acc1(T(0)), acc2(T(0)), acc3(T(0));
    for (; i + 4 * W <= n; i += 4 * W) {
      acc0 = xsimd::fma(B::load_unaligned(a + i), B::load_unaligned(b + i), acc0);
      acc1 = xsimd::fma(B::load_unaligned(a + i + W), B::load_unaligned(b + i + W), acc1);
      acc2 = xsimd::fma(B::load_unaligned(a + i + 2 * W), B::load_unaligned(b + i + 2 * W), acc2);
      acc3 = xsimd::fma(B::load_unaligned(a + i + 3 * W), B::load_unaligned(b + i + 3 * W), acc3);
    }
    for (; i + W <= n; i += W) {
      acc0 = xsimd::fma(B::load_unaligned(a + i), B::load_unaligned(b + i), acc0);
    }
    result = detail::hsum((acc0 + acc1) + (acc2 + acc3));
  }
  for (; i < n; ++i) result += a[i] * b[i];
  return result;
}

/// \brief Σ x[i].
template <class T, class Arch = default_arch>
[[nodiscard]] T sum(const T* x, std::size_t n) noexcept {
  using B = batch<T, Arch>;
  constexpr std::size_t W = B::size;
  std::size_t i = 0;
  T result = T(0);
  if (n >= W) {
    B acc0(T(0)), acc1(T(0)), acc2(T(0)), acc3(T(0));
    for (; i + 4 * W <= n; i += 4 * W) {
      acc0 += B::load_unaligned(x + i);
      acc1 += B::load_unaligned(x + i + W);
      acc2 += B::load_unaligned(x + i + 2 * W);
      acc3 += B::load_unaligned(x + i + 3 * W);
    }
    for (; i + W <= n; i += W) acc0 += B::load_unaligned(x + i);
    result = detail::hsum((acc0 + acc1) + (acc2 + acc3));
  }
  for (; i < n; ++i) result += x[i];
  return result;
}

/// \brief max_i x[i]; -inf for n = 0. NaN handling is unspecified (validate inputs first).
template <class T, class Arch = default_arch>
[[nodiscard]] T max(const T* x, std::size_t n) noexcept {
  using B = batch<T, Arch>;
  constexpr std::size_t W = B::size;
  constexpr T lowest = -std::numeric_limits<T>::infinity();
  std::size_t i = 0;
  T result = lowest;
  if (n >= W) {
    B acc0(lowest), acc1(lowest), acc2(lowest), acc3(lowest);
    for (; i + 4 * W <= n; i += 4 * W) {
      acc0 = xsimd::max(acc0, B::load_unaligned(x + i));
      acc1 = xsimd::max(acc1, B::load_unaligned(x + i + W));
      acc2 = xsimd::max(acc2, B::load_unaligned(x + i + 2 * W));
      acc3 = xsimd::max(acc3, B::load_unaligned(x + i + 3 * W));
    }
    for (; i + W <= n; i += W) acc0 = xsimd::max(acc0, B::load_unaligned(x + i));
    result = detail::hmax(xsimd::max(xsimd::max(acc0, acc1), xsimd::max(acc2, acc3)));
  }
  for (; i < n; ++i) result = x[i] > result ? x[i] : result;
  return result;
}

/// \brief y[i] += alpha·x[i].
template <class T, class Arch = default_arch>
void axpy(T alpha, const T* x, T* y, std::size_t n) noexcept {
  using B = batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const B a(alpha);
  std::size_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    const B y0 = xsimd::fma(a, B::load_unaligned(x + i), B::load_unaligned(y + i));
    const B y1 = xsimd::fma(a, B::load_unaligned(x + i + W), B::load_unaligned(y + i + W));
    const B y2 = xsimd::fma(a, B::load_unaligned(x + i + 2 * W), B::load_unaligned(y + i + 2 * W));
    const B y3 = xsimd::fma(a, B::load_unaligned(x + i + 3 * W), B::load_unaligned(y + i + 3 * W));
    y0.store_unaligned(y + i);
    y1.store_unaligned(y + i + W);
    y2.store_unaligned(y + i + 2 * W);
    y3.store_unaligned(y + i + 3 * W);
  }
  for (; i + W <= n; i += W) {
    xsimd::fma(a, B::load_unaligned(x + i), B::load_unaligned(y + i)).store_unaligned(y + i);
  }
  for (; i < n; ++i) y[i] += alpha * x[i];
}

/// \brief x[i] *= alpha.
template <class T, class Arch = default_arch>
void scale(T alpha, T* x, std::size_t n) noexcept {
  using B = batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const B a(alpha);
  std::size_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    (a * B::load_unaligned(x + i)).store_unaligned(x + i);
    (a * B::load_unaligned(x + i + W)).store_unaligned(x + i + W);
    (a * B::load_unaligned(x + i + 2 * W)).store_unaligned(x + i + 2 * W);
    (a * B::load_unaligned(x + i + 3 * W)).store_unaligned(x + i + 3 * W);
  }
  for (; i + W <= n; i += W) (a * B::load_unaligned(x + i)).store_unaligned(x + i);
  for (; i < n; ++i) x[i] *= alpha;
}

}  // namespace ruvector::attention::kernels

RUVECTOR_ATTENTION_KERNEL_WARNINGS_END
// ---- end ruvector/attention/kernels/reduce.hpp ----

RUVECTOR_ATTENTION_KERNEL_WARNINGS_BEGIN

namespace ruvector::attention::kernels {

/// \brief out[j] = alpha · Σ_c q[c]·K[j·ldk + c] for j < n (K has n rows of d values, ldk apart).
template <class T, class Arch = default_arch>
void row_dots(const T* k, std::size_t n, std::size_t d, std::size_t ldk, const T* q, T alpha,
              T* out) noexcept {
  using B = batch<T, Arch>;
  constexpr std::size_t W = B::size;
  constexpr std::size_t R = 8;  // rows per step
  const std::size_t dv = d - d % W;
  std::size_t j = 0;
  for (; j + R <= n; j += R) {
    const T* rows[R];
#pragma GCC unroll 8
    for (std::size_t r = 0; r < R; ++r) rows[r] = k + (j + r) * ldk;
    B acc[R];
#pragma GCC unroll 8
    for (std::size_t r = 0; r < R; ++r) acc[r] = B(T(0));
    for (std::size_t c = 0; c < dv; c += W) {
      const B qb = B::load_unaligned(q + c);
#pragma GCC unroll 8
      for (std::size_t r = 0; r < R; ++r)
        acc[r] = xsimd::fma(qb, B::load_unaligned(rows[r] + c), acc[r]);
    }
#pragma GCC unroll 8
    for (std::size_t r = 0; r < R; ++r) {
      T s = detail::hsum(acc[r]);
      for (std::size_t c = dv; c < d; ++c) s += q[c] * rows[r][c];
      out[j + r] = alpha * s;
    }
  }
  for (; j < n; ++j) out[j] = alpha * dot<T, Arch>(q, k + j * ldk, d);
}

/// \brief out[j] = ‖q − k_j‖² for j < n, and, when `norms` is not null, norms[j] = ‖k_j‖² from
/// the same pass over the key rows (K has n rows of d values, ldk apart).
///
/// The difference is formed before squaring, so close points keep full relative accuracy (the
/// expansion ‖q‖² + ‖k‖² − 2q·k cancels catastrophically there). Four key rows per step, each with
/// its own accumulators, so every loaded query batch feeds four independent FMA chains.
template <class T, class Arch = default_arch>
void row_squared_distances(const T* k, std::size_t n, std::size_t d, std::size_t ldk, const T* q,
                           T* out, T* norms = nullptr) noexcept {
  using B = batch<T, Arch>;
  constexpr std::size_t W = B::size;
  constexpr std::size_t R = 4;  // rows per step
  const std::size_t dv = d - d % W;
  std::size_t j = 0;
  for (; j + R <= n; j += R) {
    const T* rows[R];
    B dist[R];
    B norm[R];
#pragma GCC unroll 4
    for (std::size_t r = 0; r < R; ++r) {
      rows[r] = k + (j + r) * ldk;
      dist[r] = B(T(0));
      norm[r] = B(T(0));
    }
    for (std::size_t c = 0; c < dv; c += W) {
      const B qb = B::load_unaligned(q + c);
#pragma GCC unroll 4
      for (std::size_t r = 0; r < R; ++r) {
        const B kb = B::load_unaligned(rows[r] + c);
        const B diff = qb - kb;
        dist[r] = xsimd::fma(diff, diff, dist[r]);
        norm[r] = xsimd::fma(kb, kb, norm[r]);
      }
    }
#pragma GCC unroll 4
    for (std::size_t r = 0; r < R; ++r) {
      T s = detail::hsum(dist[r]);
      T m = detail::hsum(norm[r]);
      for (std::size_t c = dv; c < d; ++c) {
        const T diff = q[c] - rows[r][c];
        s += diff * diff;
        m += rows[r][c] * rows[r][c];
      }
      out[j + r] = s;
      if (norms != nullptr) norms[j + r] = m;
    }
  }
  for (; j < n; ++j) {
    const T* row = k + j * ldk;
    B dist(T(0));
    B norm(T(0));
    for (std::size_t c = 0; c < dv; c += W) {
      const B kb = B::load_unaligned(row + c);
      const B diff = B::load_unaligned(q + c) - kb;
      dist = xsimd::fma(diff, diff, dist);
      norm = xsimd::fma(kb, kb, norm);
    }
    T s = detail::hsum(dist);
    T m = detail::hsum(norm);
    for (std::size_t c = dv; c < d; ++c) {
      const T diff = q[c] - row[c];
      s += diff * diff;
      m += row[c] * row[c];
    }
    out[j] = s;
    if (norms != nullptr) norms[j] = m;
  }
}

namespace detail {

/// Columns [c, c + K·W) of weighted_row_sum with K output batches held in registers.
template <std::size_t K, class T, class Arch>
RUVECTOR_ATTENTION_ALWAYS_INLINE void weighted_row_sum_tile(const T* w, std::size_t n, const T* v,
                                                            std::size_t ldv, T beta,
                                                            T* out) noexcept {
  using B = batch<T, Arch>;
  constexpr std::size_t W = B::size;
  B acc[K];
#pragma GCC unroll 8
  for (std::size_t t = 0; t < K; ++t) {
    acc[t] = beta == T(0) ? B(T(0)) : B(beta) * B::load_unaligned(out + t * W);
  }
  for (std::size_t j = 0; j < n; ++j) {
    const B wj(w[j]);
    const T* row = v + j * ldv;
#pragma GCC unroll 8
    for (std::size_t t = 0; t < K; ++t)
      acc[t] = xsimd::fma(wj, B::load_unaligned(row + t * W), acc[t]);
  }
#pragma GCC unroll 8
  for (std::size_t t = 0; t < K; ++t) acc[t].store_unaligned(out + t * W);
}

}  // namespace detail

/// \brief out[c] = beta·out[c] + Σ_{j<n} w[j]·V[j·ldv + c] for c < dv. With beta = 0 the previous
/// contents of `out` are ignored (even NaN).
template <class T, class Arch = default_arch>
void weighted_row_sum(const T* w, std::size_t n, const T* v, std::size_t dv, std::size_t ldv,
                      T beta, T* out) noexcept {
  constexpr std::size_t W = batch<T, Arch>::size;
  std::size_t c = 0;
  for (; c + 8 * W <= dv; c += 8 * W)
    detail::weighted_row_sum_tile<8, T, Arch>(w, n, v + c, ldv, beta, out + c);
  if (c + 4 * W <= dv) {
    detail::weighted_row_sum_tile<4, T, Arch>(w, n, v + c, ldv, beta, out + c);
    c += 4 * W;
  }
  if (c + 2 * W <= dv) {
    detail::weighted_row_sum_tile<2, T, Arch>(w, n, v + c, ldv, beta, out + c);
    c += 2 * W;
  }
  if (c + W <= dv) {
    detail::weighted_row_sum_tile<1, T, Arch>(w, n, v + c, ldv, beta, out + c);
    c += W;
  }
  for (; c < dv; ++c) {
    T acc = beta == T(0) ? T(0) : beta * out[c];
    for (std::size_t j = 0; j < n; ++j) acc += w[j] * v[j * ldv + c];
    out[c] = acc;
  }
}

}  // namespace ruvector::attention::kernels

RUVECTOR_ATTENTION_KERNEL_WARNINGS_END
// ---- end ruvector/attention/kernels/gemv.hpp ----
// ---- begin ruvector/attention/kernels/softmax.hpp ----
/// \file kernels/softmax.hpp
/// \brief Vectorised exp, max-subtracted softmax, log-sum-exp and the online-softmax state.
///
/// softmax(x)_i = exp(x_i − m) / Σ_j exp(x_j − m) with m = max_j x_j, and
/// logsumexp(x) = m + log Σ_j exp(x_j − m), so no exponent overflows whatever the magnitude of x.
/// Masked entries are −inf; a vector whose entries are all −inf (or that is empty) has
/// softmax = all zeros and logsumexp = −inf (never NaN).
///
/// The online state (Milakov & Gimelshein 2018; FlashAttention, Dao et al. 2022) keeps
/// (m, l, acc) = (running max, Σ e^{s_j − m}, Σ e^{s_j − m}·v_j) over the keys seen so far. Two
/// states over disjoint key sets merge exactly:
///   m = max(m_a, m_b),  l = e^{m_a − m}·l_a + e^{m_b − m}·l_b,  acc = e^{m_a − m}·acc_a + e^{m_b −
///   m}·acc_b,
/// which is associative and commutative (up to rounding), so keys may be split across threads,
/// blocks or machines and merged in any order.

#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <vector>


RUVECTOR_ATTENTION_KERNEL_WARNINGS_BEGIN

namespace ruvector::attention::kernels {

/// \brief x[i] = exp(x[i]) (vectorised; the tail is padded so every element uses the same code).
template <class T, class Arch = default_arch>
void exp_inplace(T* x, std::size_t n) noexcept {
  using B = batch<T, Arch>;
  constexpr std::size_t W = B::size;
  std::size_t i = 0;
  for (; i + W <= n; i += W) xsimd::exp(B::load_unaligned(x + i)).store_unaligned(x + i);
  if (i < n) {
    detail::store_partial(xsimd::exp(detail::load_partial<T, Arch>(x + i, n - i, T(0))), x + i,
                          n - i);
  }
}

/// \brief x[i] = exp(x[i] − shift); returns Σ_i of the new x[i]. `shift` must be finite.
template <class T, class Arch = default_arch>
T exp_shift_sum(T* x, std::size_t n, T shift) noexcept {
  using B = batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const B s(shift);
  B acc0(T(0)), acc1(T(0)), acc2(T(0)), acc3(T(0));
  std::size_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    const B e0 = xsimd::exp(B::load_unaligned(x + i) - s);
    const B e1 = xsimd::exp(B::load_unaligned(x + i + W) - s);
    const B e2 = xsimd::exp(B::load_unaligned(x + i + 2 * W) - s);
    const B e3 = xsimd::exp(B::load_unaligned(x + i + 3 * W) - s);
    e0.store_unaligned(x + i);
    e1.store_unaligned(x + i + W);
    e2.store_unaligned(x + i + 2 * W);
    e3.store_unaligned(x + i + 3 * W);
    acc0 += e0;
    acc1 += e1;
    acc2 += e2;
    acc3 += e3;
  }
  for (; i + W <= n; i += W) {
    const B e = xsimd::exp(B::load_unaligned(x + i) - s);
    e.store_unaligned(x + i);
    acc0 += e;
  }
  if (i < n) {
    // Padding lanes hold −inf so they contribute exp(−inf) = 0 to the sum.
    const B e = xsimd::exp(
        detail::load_partial<T, Arch>(x + i, n - i, -std::numeric_limits<T>::infinity()) - s);
    detail::store_partial(e, x + i, n - i);
    acc1 += e;
  }
  return detail::hsum((acc0 + acc1) + (acc2 + acc3));
}

/// \brief In-place max-subtracted softmax; returns logsumexp(x). All −inf (or n = 0) → all zeros
/// and −inf. Inputs must not contain NaN or +inf.
template <class T, class Arch = default_arch>
T softmax(T* x, std::size_t n) noexcept {
  const T m = max<T, Arch>(x, n);
  if (!(m > -std::numeric_limits<T>::infinity())) {
    for (std::size_t i = 0; i < n; ++i) x[i] = T(0);
    return -std::numeric_limits<T>::infinity();
  }
  const T l = exp_shift_sum<T, Arch>(x, n, m);  // l >= 1: the maximum contributes exp(0)
  scale<T, Arch>(T(1) / l, x, n);
  return m + std::log(l);
}

/// \brief log Σ_i exp(x[i]) without overflow; −inf for n = 0 or all −inf. `scratch` must hold n
/// values (x itself is not modified).
template <class T, class Arch = default_arch>
[[nodiscard]] T logsumexp(const T* x, std::size_t n, T* scratch) noexcept {
  const T m = max<T, Arch>(x, n);
  if (!(m > -std::numeric_limits<T>::infinity())) return m;
  for (std::size_t i = 0; i < n; ++i) scratch[i] = x[i];
  return m + std::log(exp_shift_sum<T, Arch>(scratch, n, m));
}

/// \brief log Σ_i exp(x[i]) (allocating convenience overload).
template <class T, class Arch = default_arch>
[[nodiscard]] T logsumexp(std::span<const T> x) {
  std::vector<T> scratch(x.size());
  return logsumexp<T, Arch>(x.data(), x.size(), scratch.data());
}

/// \brief True iff every x[i] is finite. Branch-free: x − x is 0 for finite x and NaN otherwise.
template <class T, class Arch = default_arch>
[[nodiscard]] bool all_finite(const T* x, std::size_t n) noexcept {
  using B = batch<T, Arch>;
  constexpr std::size_t W = B::size;
  B acc0(T(0)), acc1(T(0));
  std::size_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    const B a = B::load_unaligned(x + i);
    const B b = B::load_unaligned(x + i + W);
    acc0 += a - a;
    acc1 += b - b;
  }
  T tail = T(0);
  for (; i < n; ++i) tail += x[i] - x[i];
  return detail::hsum(acc0 + acc1) + tail == T(0);
}

/// \brief Online-softmax accumulator (m, l, acc) over a stream of keys; see the file comment.
template <class T>
class online_softmax_state {
 public:
  /// An empty state for values of dimension `dv` (m = −inf, l = 0, acc = 0).
  explicit online_softmax_state(std::size_t dv = 0) : acc_(dv, T(0)) {}

  /// Adds keys with (already scaled and masked, −inf = hidden) `scores[0..n)` and value rows
  /// `values + j·ldv`. `scores` is overwritten with exp(s_j − m_new).
  void add_block(T* scores, std::size_t n, const T* values, std::size_t ldv) noexcept {
    const T mb = max(scores, n);
    if (!(mb > -std::numeric_limits<T>::infinity())) return;  // every key hidden
    const T m_new = mb > m_ ? mb : m_;
    const T alpha = rescale(m_, m_new);
    const T lb = exp_shift_sum(scores, n, m_new);
    l_ = l_ * alpha + lb;
    weighted_row_sum(scores, n, values, acc_.size(), ldv, alpha, acc_.data());
    m_ = m_new;
  }

  /// Merges the state of a disjoint key set into this one (exact, associative).
  void merge(const online_softmax_state& other) noexcept {
    if (other.empty()) return;
    if (empty()) {
      *this = other;
      return;
    }
    const T m_new = other.m_ > m_ ? other.m_ : m_;
    const T a = rescale(m_, m_new);
    const T b = rescale(other.m_, m_new);
    l_ = a * l_ + b * other.l_;
    for (std::size_t c = 0; c < acc_.size(); ++c) acc_[c] = a * acc_[c] + b * other.acc_[c];
    m_ = m_new;
  }

  /// Writes the attention output acc / l, or zeros when no key was visible.
  void finalize(T* out) const noexcept {
    const T inv = empty() ? T(0) : T(1) / l_;
    for (std::size_t c = 0; c < acc_.size(); ++c) out[c] = acc_[c] * inv;
  }

  /// log Σ_j exp(s_j) over the keys seen (−inf when none was visible).
  [[nodiscard]] T log_sum_exp() const noexcept {
    return empty() ? -std::numeric_limits<T>::infinity() : m_ + std::log(l_);
  }

  [[nodiscard]] bool empty() const noexcept { return !(l_ > T(0)); }
  [[nodiscard]] T running_max() const noexcept { return m_; }
  [[nodiscard]] T normalizer() const noexcept { return l_; }
  [[nodiscard]] std::span<const T> accumulator() const noexcept { return acc_; }
  [[nodiscard]] std::size_t value_dim() const noexcept { return acc_.size(); }

 private:
  // e^{m_old − m_new}, with e^{−inf − m} = 0 for an empty old state.
  static T rescale(T m_old, T m_new) noexcept {
    return m_old > -std::numeric_limits<T>::infinity() ? std::exp(m_old - m_new) : T(0);
  }

  T m_ = -std::numeric_limits<T>::infinity();
  T l_ = T(0);
  std::vector<T> acc_;
};

}  // namespace ruvector::attention::kernels

RUVECTOR_ATTENTION_KERNEL_WARNINGS_END
// ---- end ruvector/attention/kernels/softmax.hpp ----
// ---- end ruvector/attention/kernels.hpp ----
// ---- begin ruvector/attention/sparse.hpp ----
/// \file sparse.hpp
/// \brief Entry header of the sparse family: flash attention, exact partial merges and ring
/// attention, linear attention (elu+1 and FAVOR+), sparse masks with a real sparse kernel, and
/// local-global (Longformer) attention.

// ---- begin ruvector/attention/sparse/flash.hpp ----
/// \file sparse/flash.hpp
/// \brief Flash attention on the CPU: FlashAttention-2 (Dao 2023, "FlashAttention-2: Faster
/// Attention with Better Parallelism and Work Partitioning"), Algorithm 1.
///
/// Queries are cut into blocks of B_q rows and keys/values into blocks of B_k rows. For each query
/// block the running state (m, l, O) per row is updated key block by key block:
///
///     S = scale · Q_i K_jᵀ (+ bias, masks)           (B_q × B_k, never L × L)
///     m' = max(m, rowmax S),  P = exp(S − m'),  l' = e^{m − m'} l + rowsum P
///     O' = diag(e^{m − m'}) O + P V_j
///
/// and at the end O / l is the output and m + log l the log-sum-exp of each row. Extra memory is
/// one B_q × B_k score tile and one B_q × dv accumulator per thread, whatever L is. Work is spread
/// over batch × heads × query blocks with `parallel_for`. With causal masking, key blocks entirely
/// above the diagonal are skipped (about half the work) and only the diagonal blocks are masked
/// element by element.
///
/// Conventions are those of `sdpa` (standard/scaled_dot_product.hpp): bottom-right causal
/// alignment, `true` = visible in key masks, `-inf` bias entries hide keys, a row that sees no key
/// outputs zeros with log-sum-exp −inf, NaN/Inf inputs → `non_finite_input` (detected lazily from
/// the scores and outputs, at no cost on the happy path). Grouped-query / multi-query attention:
/// query head h reads key head h / (H / Hkv).
///
/// API: `flash_sdpa(q, k, v, out, options, lse)` (tensor API) and class `flash_attention<T>`
/// (sequence `forward` and the seeds' single-query `compute`).
///
/// The single-query (decode) path `flash_attention<T>::compute` splits the keys into blocks that
/// are processed independently (in parallel when there are enough) and merged exactly with the
/// online-softmax merge (flash-decoding, Dao et al. 2023).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <optional>
#include <span>
#include <type_traits>
#include <vector>

// ---- begin ruvector/attention/detail/attention_args.hpp ----
/// \file detail/attention_args.hpp
/// \brief Shared validation of the tensor-API attention arguments (`sdpa`, `flash_attention`):
/// shapes, GQA head grouping, strides, masks and biases, and the lazy non-finite diagnosis.

#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <sstream>
#include <string>


namespace ruvector::attention::detail {

// Names the first non-finite element of a rank-4 view and throws; returns if there is none.
template <class T>
void find_non_finite_4d(const char* what, const tensor_view<const T, 4>& t) {
  for (std::size_t a = 0; a < t.extent(0); ++a)
    for (std::size_t b = 0; b < t.extent(1); ++b)
      for (std::size_t c = 0; c < t.extent(2); ++c) {
        const T* row = t.row(a, b, c);
        for (std::size_t e = 0; e < t.extent(3); ++e) {
          if (!std::isfinite(row[e])) {
            std::ostringstream os;
            os << "non-finite input: " << what << "[" << a << "][" << b << "][" << c << "][" << e
               << "] = " << row[e];
            throw non_finite_input(os.str());
          }
        }
      }
}

template <class T>
[[noreturn]] void throw_non_finite_scores(const tensor_view<const T, 4>& q,
                                          const tensor_view<const T, 4>& k,
                                          const tensor_view<const T, 4>& v) {
  find_non_finite_4d("q", q);
  find_non_finite_4d("k", k);
  find_non_finite_4d("v", v);
  throw non_finite_input(
      "non-finite input: an attention score or output overflowed although q, k and v are finite "
      "(reduce the input magnitude or the scale)");
}

inline void require_unit_inner_stride(const char* what, std::ptrdiff_t stride) {
  if (stride != 1) {
    throw invalid_argument(std::string("invalid argument: ") + what +
                           " must have unit stride in its last dimension");
  }
}

/// Names the first NaN/Inf of a single-query call's query, keys or values and throws; if all are
/// finite the scores overflowed, which is reported as such.
template <class T>
[[noreturn]] void diagnose_vector_inputs(std::span<const T> query, const matrix_cref<T>& keys,
                                         const matrix_cref<T>& values) {
  require_finite<T>("query", query);
  require_finite("keys", keys.data(), static_cast<std::size_t>(keys.rows()),
                 static_cast<std::size_t>(keys.cols()), keys.outerStride());
  require_finite("values", values.data(), static_cast<std::size_t>(values.rows()),
                 static_cast<std::size_t>(values.cols()), values.outerStride());
  throw non_finite_input(
      "non-finite input: an attention score or output overflowed although query, keys and "
      "values are finite (reduce the input magnitude or the scale)");
}

/// Extents of a validated attention call.
struct attention_shape {
  std::size_t B, H, Hkv, Lq, Lk, d, dv;
};

/// Validates `q [B,H,Lq,d]`, `k [B,Hkv,Lk,d]`, `v [B,Hkv,Lk,dv]`, `out [B,H,Lq,dv]`, the mask and
/// the optional weights/lse outputs; throws an `error` subclass naming the argument.
template <class T>
attention_shape validate_attention_args(const tensor_view<const T, 4>& q,
                                        const tensor_view<const T, 4>& k,
                                        const tensor_view<const T, 4>& v,
                                        const tensor_view<T, 4>& out, const mask_spec<T>& mask,
                                        bool check_finite, const tensor_view<T, 4>& weights,
                                        const tensor_view<T, 3>& lse) {
  const std::size_t B = q.extent(0), H = q.extent(1), Lq = q.extent(2), d = q.extent(3);
  const std::size_t Hkv = k.extent(1), Lk = k.extent(2), dv = v.extent(3);
  require_dimension("k.extent(0) (batch)", k.extent(0), B);
  require_dimension("v.extent(0) (batch)", v.extent(0), B);
  require_dimension("k.extent(3) (key dim)", k.extent(3), d);
  require_dimension("v.extent(1) (kv heads)", v.extent(1), Hkv);
  require_dimension("v.extent(2) (values count, must equal keys count)", v.extent(2), Lk);
  require_dimension("out.extent(0) (batch)", out.extent(0), B);
  require_dimension("out.extent(1) (heads)", out.extent(1), H);
  require_dimension("out.extent(2) (queries)", out.extent(2), Lq);
  require_dimension("out.extent(3) (value dim)", out.extent(3), dv);
  if (Hkv == 0 || H % Hkv != 0) {
    std::ostringstream os;
    os << "dimension mismatch: k.extent(1) (kv heads) is " << Hkv
       << ", expected a divisor of the query heads " << H;
    throw dimension_mismatch(os.str());
  }
  require_at_most("k.extent(2) (keys)", Lk, max_sequence_length);
  require_at_most("q.extent(2) (queries)", Lq, max_sequence_length);
  require_at_most("q.extent(3) (head dim)", d, max_dimension);
  require_non_empty("q.extent(3) (head dim)", d);
  require_unit_inner_stride("q", q.stride(3));
  require_unit_inner_stride("k", k.stride(3));
  require_unit_inner_stride("v", v.stride(3));
  require_unit_inner_stride("out", out.stride(3));
  if (!mask.key_mask.absent()) {
    require_dimension("mask.key_mask.extent(0) (batch)", mask.key_mask.extent(0), B);
    require_dimension("mask.key_mask.extent(1) (keys)", mask.key_mask.extent(1), Lk);
  }
  if (!mask.bias.absent()) {
    const auto& bias = mask.bias;
    if (bias.extent(0) != B && bias.extent(0) != 1)
      require_dimension("mask.bias.extent(0) (batch or 1)", bias.extent(0), B);
    if (bias.extent(1) != H && bias.extent(1) != 1)
      require_dimension("mask.bias.extent(1) (heads or 1)", bias.extent(1), H);
    require_dimension("mask.bias.extent(2) (queries)", bias.extent(2), Lq);
    require_dimension("mask.bias.extent(3) (keys)", bias.extent(3), Lk);
    if (check_finite) {
      for (std::size_t a = 0; a < bias.extent(0); ++a)
        for (std::size_t h = 0; h < bias.extent(1); ++h)
          for (std::size_t i = 0; i < Lq; ++i)
            for (std::size_t j = 0; j < Lk; ++j) {
              const T x = bias(a, h, i, j);
              if (std::isnan(x) || x == std::numeric_limits<T>::infinity()) {
                std::ostringstream os;
                os << "non-finite input: mask.bias[" << a << "][" << h << "][" << i << "][" << j
                   << "] = " << x << " (only -inf is allowed, as a mask)";
                throw non_finite_input(os.str());
              }
            }
    }
  }
  if (!weights.absent()) {
    require_dimension("extras.weights.extent(0)", weights.extent(0), B);
    require_dimension("extras.weights.extent(1)", weights.extent(1), H);
    require_dimension("extras.weights.extent(2)", weights.extent(2), Lq);
    require_dimension("extras.weights.extent(3)", weights.extent(3), Lk);
  }
  if (!lse.absent()) {
    require_dimension("extras.lse.extent(0)", lse.extent(0), B);
    require_dimension("extras.lse.extent(1)", lse.extent(1), H);
    require_dimension("extras.lse.extent(2)", lse.extent(2), Lq);
  }

  return {B, H, Hkv, Lq, Lk, d, dv};
}

}  // namespace ruvector::attention::detail
// ---- end ruvector/attention/detail/attention_args.hpp ----
// ---- begin ruvector/attention/detail/scratch.hpp ----
/// \file detail/scratch.hpp
/// \brief Per-thread scratch buffers, so hot paths do not allocate on every call and mechanism
/// objects stay immutable (and shareable across threads).

#include <cstddef>
#include <vector>


namespace ruvector::attention::detail {

/// Returns a pointer to at least `n` values of thread-local scratch, aligned like Eigen's own
/// storage (so Eigen kernels take the same code path, and round the same way, on every call).
/// `Slot` distinguishes buffers that must be live at the same time; contents are unspecified.
template <class T, int Slot = 0>
[[nodiscard]] T* thread_scratch(std::size_t n) {
  thread_local std::vector<T, Eigen::aligned_allocator<T>> buffer;
  if (buffer.size() < n) buffer.resize(n);
  return buffer.data();
}

}  // namespace ruvector::attention::detail
// ---- end ruvector/attention/detail/scratch.hpp ----

namespace ruvector::attention {

/// \brief Tile sizes of the flash kernel.
struct flash_block_sizes {
  std::size_t query = 0;  ///< B_q: query rows per tile
  std::size_t key = 0;    ///< B_k: key rows per tile
};

/// \brief Default tiles for head dimension `d`: the score tile (B_q × B_k) plus the key and value
/// tiles (2 · B_k × d) stay within about 256 KiB (L2) for float.
[[nodiscard]] constexpr flash_block_sizes default_flash_blocks(std::size_t d) noexcept {
  if (d <= 64) return {64, 256};
  if (d <= 128) return {64, 128};
  return {32, 64};
}

/// \brief Options of one `flash_sdpa` call.
template <class T>
struct flash_options {
  std::optional<T> scale{};    ///< logit scale; default 1/√d
  mask_spec<T> mask{};         ///< key mask, causal flag, additive bias (core/mask.hpp)
  bool check_finite = true;    ///< NaN/Inf in q, k, v → non_finite_input
  flash_block_sizes blocks{};  ///< 0 = `default_flash_blocks(d)`
};

namespace detail {

/// Causal diagonal: key j is visible to query i iff j <= i + offset (bottom-right: Lk − Lq).
using causal_offset = std::optional<std::ptrdiff_t>;

// Number of keys visible to query i under a causal diagonal (clamped to [0, lk]).
inline std::size_t causal_limit(std::size_t i, std::ptrdiff_t offset, std::size_t lk) noexcept {
  const std::ptrdiff_t lim = static_cast<std::ptrdiff_t>(i) + offset + 1;
  return lim <= 0 ? 0 : std::min(static_cast<std::size_t>(lim), lk);
}

/// The flash forward over validated arguments; `causal` overrides `mask.causal`'s diagonal.
template <class T>
void flash_forward(const tensor_view<const T, 4>& q, const tensor_view<const T, 4>& k,
                   const tensor_view<const T, 4>& v, const tensor_view<T, 4>& out,
                   const tensor_view<T, 3>& lse_out, const attention_shape& sh, T scale,
                   const mask_spec<T>& mask, causal_offset causal, bool check_finite,
                   flash_block_sizes blocks) {
  const std::size_t B = sh.B, H = sh.H, Lq = sh.Lq, Lk = sh.Lk, d = sh.d, dv = sh.dv;
  if (B == 0 || H == 0 || Lq == 0 || dv == 0) return;
  const auto defaults = default_flash_blocks(d);
  const std::size_t bq = std::min(blocks.query ? blocks.query : defaults.query, Lq);
  const std::size_t bk =
      std::max<std::size_t>(1, std::min(blocks.key ? blocks.key : defaults.key, Lk));
  const std::size_t group = H / sh.Hkv;
  const std::size_t q_blocks = (Lq + bq - 1) / bq;
  constexpr T neg_inf = -std::numeric_limits<T>::infinity();
  using Stride = Eigen::Stride<Eigen::Dynamic, 1>;
  using CMap = Eigen::Map<const row_matrix<T>, 0, Stride>;
  using MMap = Eigen::Map<row_matrix<T>, 0, Stride>;
  const auto idx = [](std::size_t x) { return static_cast<Eigen::Index>(x); };

  parallel_for(0, B * H * q_blocks, [&](std::size_t task) {
    const std::size_t b = task / (H * q_blocks);
    const std::size_t h = (task / q_blocks) % H;
    const std::size_t i0 = (task % q_blocks) * bq;
    const std::size_t rows = std::min(bq, Lq - i0);
    const std::size_t hk = h / group;

    T* s_buf = thread_scratch<T, 0>(bq * bk);
    T* o_buf = thread_scratch<T, 1>(bq * dv);
    T* m = thread_scratch<T, 2>(2 * bq);
    T* l = m + bq;
    MMap o_acc(o_buf, idx(rows), idx(dv), Stride(idx(dv), 1));
    o_acc.setZero();
    std::fill(m, m + rows, neg_inf);
    std::fill(l, l + rows, T(0));

    const CMap qb(q.row(b, h, i0), idx(rows), idx(d), Stride(q.stride(2), 1));
    const bool* key_mask = mask.key_mask.absent() ? nullptr : mask.key_mask.row(b);
    // Keys beyond the last row's causal limit are never visible to this block.
    const std::size_t k_end = causal ? causal_limit(i0 + rows - 1, *causal, Lk) : Lk;

    for (std::size_t j0 = 0; j0 < k_end; j0 += bk) {
      const std::size_t cols = std::min(bk, k_end - j0);
      MMap s(s_buf, idx(rows), idx(cols), Stride(idx(cols), 1));
      const CMap kb(k.row(b, hk, j0), idx(cols), idx(d), Stride(k.stride(2), 1));
      const CMap vb(v.row(b, hk, j0), idx(cols), idx(dv), Stride(v.stride(2), 1));
      s.noalias() = scale * (qb * kb.transpose());  // scalar on the left: folded into the GEMM
      // Tiles that straddle the causal diagonal need element masking.
      const bool diagonal = causal && causal_limit(i0, *causal, Lk) < j0 + cols;

      for (std::size_t r = 0; r < rows; ++r) {
        T* row = s_buf + r * cols;
        if (check_finite && !kernels::all_finite(row, cols)) throw_non_finite_scores(q, k, v);
        if (!mask.bias.absent()) {
          const T* brow = mask.bias.row(mask.bias.extent(0) == 1 ? 0 : b,
                                        mask.bias.extent(1) == 1 ? 0 : h, i0 + r);
          const std::ptrdiff_t bs = mask.bias.stride(3);
          for (std::size_t j = 0; j < cols; ++j)
            row[j] += brow[static_cast<std::ptrdiff_t>(j0 + j) * bs];
        }
        if (key_mask) {
          const std::ptrdiff_t ms = mask.key_mask.stride(1);
          for (std::size_t j = 0; j < cols; ++j)
            if (!key_mask[static_cast<std::ptrdiff_t>(j0 + j) * ms]) row[j] = neg_inf;
        }
        if (diagonal) {
          const std::size_t lim = causal_limit(i0 + r, *causal, Lk);
          for (std::size_t j = lim > j0 ? lim - j0 : 0; j < cols; ++j) row[j] = neg_inf;
        }
        const T mb = kernels::max(row, cols);
        if (!(mb > neg_inf)) {  // nothing visible in this tile for this row
          std::fill(row, row + cols, T(0));
          continue;
        }
        const T m_new = std::max(m[r], mb);
        const T alpha = m[r] > neg_inf ? std::exp(m[r] - m_new) : T(0);
        l[r] = l[r] * alpha + kernels::exp_shift_sum(row, cols, m_new);
        if (alpha != T(1)) kernels::scale(alpha, o_buf + r * dv, dv);
        m[r] = m_new;
      }
      o_acc.noalias() += s * vb;
    }

    for (std::size_t r = 0; r < rows; ++r) {
      T* dst = out.row(b, h, i0 + r);
      const T inv = l[r] > T(0) ? T(1) / l[r] : T(0);
      const T* src = o_buf + r * dv;
      for (std::size_t c = 0; c < dv; ++c) dst[c] = src[c] * inv;
      if (check_finite && !kernels::all_finite(dst, dv)) throw_non_finite_scores(q, k, v);
      if (!lse_out.absent()) lse_out(b, h, i0 + r) = l[r] > T(0) ? m[r] + std::log(l[r]) : neg_inf;
    }
  });
}

/// A 2-D row-major matrix as a `[1, 1, rows, cols]` tensor view.
template <class T>
tensor_view<const T, 4> as_tensor4(const matrix_cref<T>& m) {
  const auto rows = static_cast<std::size_t>(m.rows()), cols = static_cast<std::size_t>(m.cols());
  const auto ld = static_cast<std::ptrdiff_t>(m.outerStride());
  return tensor_view<const T, 4>(m.data(), {1, 1, rows, cols},
                                 {ld * static_cast<std::ptrdiff_t>(rows), 0, ld, 1});
}

}  // namespace detail

/// \brief Batched flash attention (tensor API, the flash counterpart of `sdpa`): `q [B,H,Lq,d]`, `k
/// [B,Hkv,Lk,d]`, `v [B,Hkv,Lk,dv]` → `out [B,H,Lq,dv]`, optionally the log-sum-exp `lse [B,H,Lq]`
/// of each row. Same results as `sdpa` (to rounding) in O(B_q·B_k) extra memory per thread.
template <class T>
void flash_sdpa(std::type_identity_t<tensor_view<const T, 4>> q,
                std::type_identity_t<tensor_view<const T, 4>> k,
                std::type_identity_t<tensor_view<const T, 4>> v, tensor_view<T, 4> out,
                const std::type_identity_t<flash_options<T>>& options = {},
                std::type_identity_t<tensor_view<T, 3>> lse = {}) {
  const detail::attention_shape shape =
      detail::validate_attention_args<T>(q, k, v, out, options.mask, options.check_finite, {}, lse);
  const T scale = options.scale ? *options.scale : T(1) / std::sqrt(static_cast<T>(shape.d));
  const detail::causal_offset causal =
      options.mask.causal ? detail::causal_offset(static_cast<std::ptrdiff_t>(shape.Lk) -
                                                  static_cast<std::ptrdiff_t>(shape.Lq))
                          : std::nullopt;
  detail::flash_forward<T>(q, k, v, out, lse, shape, scale, options.mask, causal,
                           options.check_finite, options.blocks);
}

/// \brief Flash attention over single sequences (`q [Lq,d]`, `k [Lk,d]`, `v [Lk,dv]` →
/// `[Lq,dv]`) plus the seeds' single-query vector API with flash-decoding. Immutable and
/// thread-safe.
template <class T = float>
class flash_attention {
 public:
  using value_type = T;

  /// \param dim query/key dimension; \param block_size keys per block of the decode path (and
  /// B_k of the sequence path; 0 = default); \param causal bottom-right causal masking in
  /// `forward`.
  explicit flash_attention(std::size_t dim, std::size_t block_size = 0, bool causal = false,
                           std::optional<T> scale = std::nullopt)
      : dim_(dim), block_(block_size), causal_(causal), scale_(scale) {
    require_config(dim > 0, "flash_attention: dim must be > 0");
  }

  [[nodiscard]] std::size_t dim() const noexcept { return dim_; }
  [[nodiscard]] T scale() const noexcept {
    return scale_ ? *scale_ : T(1) / std::sqrt(static_cast<T>(dim_));
  }
  /// Keys per block of the decode path.
  [[nodiscard]] std::size_t decode_block() const noexcept { return block_ ? block_ : 1024; }

  /// \brief Sequence forward: softmax(scale·QKᵀ)V, tiled; `lse` (size Lq) is optional.
  [[nodiscard]] row_matrix<T> forward(const matrix_cref<T>& queries, const matrix_cref<T>& keys,
                                      const matrix_cref<T>& values, std::span<T> lse = {}) const {
    require_dimension("queries.cols()", static_cast<std::size_t>(queries.cols()), dim_);
    row_matrix<T> out(queries.rows(), values.cols());
    flash_options<T> opt;
    opt.scale = scale();
    opt.mask.causal = causal_;
    opt.blocks.key = block_;
    const tensor_view<T, 3> lv =
        lse.empty()
            ? tensor_view<T, 3>{}
            : tensor_view<T, 3>(lse.data(), {1, 1, static_cast<std::size_t>(queries.rows())});
    flash_sdpa<T>(detail::as_tensor4(queries), detail::as_tensor4(keys), detail::as_tensor4(values),
                  tensor_view<T, 4>(out.data(), {1, 1, static_cast<std::size_t>(out.rows()),
                                                 static_cast<std::size_t>(out.cols())}),
                  opt, lv);
    return out;
  }

  /// \brief One query over all keys (flash-decoding); returns the log-sum-exp.
  T compute_into(std::span<const T> query, const matrix_cref<T>& keys, const matrix_cref<T>& values,
                 std::span<T> out, std::span<const bool> key_mask = {}) const {
    const std::size_t n = static_cast<std::size_t>(keys.rows());
    const std::size_t dv = static_cast<std::size_t>(values.cols());
    require_dimension("query.size()", query.size(), dim_);
    require_non_empty("keys", n);
    require_at_most("keys.rows()", n, max_sequence_length);
    require_dimension("keys.cols()", static_cast<std::size_t>(keys.cols()), dim_);
    require_dimension("values.rows() (must equal keys.rows())",
                      static_cast<std::size_t>(values.rows()), n);
    require_dimension("out.size() (must equal values.cols())", out.size(), dv);
    if (!key_mask.empty()) require_dimension("key_mask.size()", key_mask.size(), n);

    const std::size_t block = decode_block();
    const std::size_t blocks = (n + block - 1) / block;
    std::vector<kernels::online_softmax_state<T>> parts(blocks,
                                                        kernels::online_softmax_state<T>(dv));
    const T sc = scale();
    parallel_for(0, blocks, [&](std::size_t p) {
      const std::size_t j0 = p * block, cnt = std::min(block, n - j0);
      T* s = detail::thread_scratch<T>(cnt);
      kernels::row_dots(keys.data() + j0 * static_cast<std::size_t>(keys.outerStride()), cnt, dim_,
                        static_cast<std::size_t>(keys.outerStride()), query.data(), sc, s);
      if (!kernels::all_finite(s, cnt)) detail::diagnose_vector_inputs<T>(query, keys, values);
      if (!key_mask.empty()) {
        for (std::size_t j = 0; j < cnt; ++j)
          if (!key_mask[j0 + j]) s[j] = -std::numeric_limits<T>::infinity();
      }
      parts[p].add_block(s, cnt,
                         values.data() + j0 * static_cast<std::size_t>(values.outerStride()),
                         static_cast<std::size_t>(values.outerStride()));
    });
    // Merge in block order, so the result does not depend on the thread count.
    for (std::size_t p = 1; p < blocks; ++p) parts[0].merge(parts[p]);
    parts[0].finalize(out.data());
    if (!kernels::all_finite(out.data(), dv))
      detail::diagnose_vector_inputs<T>(query, keys, values);
    return parts[0].log_sum_exp();
  }

  /// \brief Attention output for one query (the seeds' `compute`).
  [[nodiscard]] std::vector<T> compute(std::span<const T> query, const matrix_cref<T>& keys,
                                       const matrix_cref<T>& values) const {
    std::vector<T> out(static_cast<std::size_t>(values.cols()));
    compute_into(query, keys, values, out);
    return out;
  }

  /// \brief Attention output with a key mask (`true` = visible).
  [[nodiscard]] std::vector<T> compute_with_mask(std::span<const T> query,
                                                 const matrix_cref<T>& keys,
                                                 const matrix_cref<T>& values,
                                                 std::span<const bool> key_mask) const {
    require_dimension("key_mask.size()", key_mask.size(), static_cast<std::size_t>(keys.rows()));
    std::vector<T> out(static_cast<std::size_t>(values.cols()));
    compute_into(query, keys, values, out, key_mask);
    return out;
  }

 private:
  std::size_t dim_;
  std::size_t block_;
  bool causal_;
  std::optional<T> scale_;
};

}  // namespace ruvector::attention
// ---- end ruvector/attention/sparse/flash.hpp ----
// ---- begin ruvector/attention/sparse/linear.hpp ----
/// \file sparse/linear.hpp
/// \brief Linear (kernelised) attention: Katharopoulos et al. 2020 and FAVOR+ (Choromanski et al.
/// 2021), with a reusable, mergeable key state.
///
/// Kernelised attention replaces exp(q·k/√d) by a product of feature maps φ(q)ᵀφ(k) ≥ 0:
///
///     out_i = Σ_j φ(q_i)ᵀφ(k_j) v_j / Σ_j φ(q_i)ᵀφ(k_j) = φ(q_i)ᵀ S / (φ(q_i)ᵀ z),
///     S = Σ_j φ(k_j) v_jᵀ   (m × dv),      z = Σ_j φ(k_j)   (m),
///
/// so the keys are summarised once in (S, z) — the *key state* — and each query then costs
/// O(m·(d + dv)) whatever the number of keys n (building the state costs O(n·m·(d + dv))).
///
/// Feature maps (`feature_map`):
/// - `elu_plus_one` — Katharopoulos, Vyas, Pappas, Fleuret 2020, "Transformers are RNNs: Fast
///   Autoregressive Transformers with Linear Attention": φ(x) = elu(x) + 1, i.e. x + 1 for x > 0
///   and eˣ for x ≤ 0, applied per coordinate (m = d, no 1/√d scale). This defines a *different*
///   kernel from softmax; it is not an approximation of softmax attention.
/// - `favor_plus` — Choromanski et al. 2021, "Rethinking Attention with Performers" (FAVOR+):
///   positive orthogonal random features
///
///       φ(x)_i = exp(w_iᵀx' − ‖x'‖²/2) / √m,    x' = x · d^{-1/4},    i = 1..m,
///
///   so that E_w[φ(q)ᵀφ(k)] = exp(q'ᵀk') = exp(qᵀk/√d): the softmax kernel with the standard 1/√d
///   scale. Each kernel entry is estimated without bias, so FAVOR+ attention (a ratio of such
///   estimates, with O(1/m) bias) is an *approximation* of softmax attention whose error falls
///   like O(1/√m) as m grows; it is not exact for any finite m, and its variance grows like
///   e^{‖q'+k'‖²}/m, so it suits moderate query/key norms.
///   The w_i are orthogonal random features: blocks of d mutually orthogonal directions (rows of
///   the Q factor of a d × d standard Gaussian matrix, by Gram–Schmidt applied twice, in double),
///   each row rescaled to an independent norm drawn from the chi distribution with d degrees of
///   freedom (the norm of a fresh d-dim standard Gaussian vector). Each w_i is therefore
///   marginally N(0, I_d) (which makes the estimate unbiased) while rows within a block are exactly
///   orthogonal (which lowers its variance). The last block is truncated to m mod d rows. Draw
///   order from `rng(seed)` (core/rng.hpp, bit-reproducible on every platform), per block: d·d
///   normals (row-major G), then d·d normals (d chi norms of d squares each). Every block draws
///   in full, so the features for m₁ < m₂ and the same seed are the first m₁ rows of those for
///   m₂. `redraw(seed)` replaces the features.
///   (The Rust original drew w ~ N(0, I/d) yet subtracted ‖x‖²/2: its kernel is
///   ∝ exp(qᵀk/d − (1 − 1/d)‖k‖²/2), biased toward small-norm keys. Not copied.)
///
/// Stabilisers (FAVOR+; exact, they cancel in the ratio): write ℓ_i(x) = log φ(x)_i. The state
/// keeps a per-feature log-scale c_i = max over the keys added of ℓ_i(k_j) and stores
///     S̃_i = Σ_j e^{ℓ_i(k_j) − c_i} v_j,   z̃_i = Σ_j e^{ℓ_i(k_j) − c_i},   so S_i = e^{c_i} S̃_i.
/// When a new key raises c_i, row i of S̃ and z̃ is rescaled by e^{c_old − c_new} (as in online
/// softmax); two states merge the same way. A query uses C = max_i (ℓ_i(q) + c_i) and
/// φ̃_i = e^{ℓ_i(q) + c_i − C}; then φ̃ᵀS̃ = e^{−C}·φ(q)ᵀS and φ̃ᵀz̃ = e^{−C}·φ(q)ᵀz, so the common
/// factor e^{−C} cancels in the ratio. Every exponent is ≤ 0 (no overflow), the largest φ̃_i is 1
/// and every z̃_i ≥ 1 (its maximal key contributes e⁰), so the denominator is ≥ 1: it can neither
/// overflow nor underflow, whatever the magnitude of q and k. (C is exactly the max over i, j of
/// log(φ(q)_i φ(k_j)_i), the optimal shift.) The single-query `compute` evaluates the same ratio
/// as a softmax over the keys of log(φ(q)ᵀφ(k_j)) with the online-softmax kernel
/// (kernels/softmax.hpp), which is stable for the same reason.
///
/// Denominator guard (elu+1): φ > 0 mathematically, so φ(q)ᵀz > 0, but eˣ underflows for
/// x ≲ −87 (float) / −708 (double) and a denominator can then be 0 or subnormal. A query whose
/// denominator is not > `std::numeric_limits<T>::min()` (the smallest normal) outputs zeros. The
/// same rule gives zeros for a query that sees no key (empty state, every key masked, or causal
/// with nothing visible) — never NaN — for both feature maps.
///
/// Masking conventions (DESIGN.md §4): a key mask holds `true` for visible keys; masked keys are
/// excluded from S and z. Causal masking is bottom-right aligned: query i of Lq sees keys
/// j ≤ i + Lk − Lq; `forward` computes it with prefix sums (the recurrent form: the state is
/// advanced key by key, each query reads it), costing O((Lq + Lk)·m·(d + dv)). The single-query
/// vector API treats its query as the last of the sequence (Lq = 1), which sees every key, so the
/// `causal` flag does not change `compute`.
///
/// Validation: shapes (`dimension_mismatch` naming the argument), sizes (`input_too_large`),
/// configuration (`invalid_config`: dim = 0, m = 0 for FAVOR+, m ∉ {0, dim} for elu+1), and with
/// `check_finite` (default) NaN/±Inf in queries, keys or values → `non_finite_input` naming the
/// first bad element (masked-out keys included); finite inputs that overflow (elu+1 with ~1e38
/// values) also give `non_finite_input`, and a failing `add` or `merge` leaves the state
/// unchanged. `check_finite = false` skips both checks (garbage in, garbage out).
///
/// Thread safety: `linear_attention` and `linear_key_state` are safe to use concurrently through
/// their const members; `redraw`, `add`, `merge` and `clear` mutate. A state shares (immutably)
/// the feature map it was built with: redrawing the mechanism afterwards does not affect it.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <sstream>
#include <string>
#include <utility>
#include <vector>


namespace ruvector::attention {

/// \brief The feature map φ of linear attention.
enum class feature_map {
  elu_plus_one,  ///< φ(x) = elu(x) + 1 (Katharopoulos et al. 2020); m = d; a different kernel
  favor_plus     ///< positive orthogonal random features (FAVOR+); approximates softmax
};

/// \brief Configuration of `linear_attention`.
struct linear_attention_config {
  std::size_t dim = 0;                             ///< query/key dimension d (> 0)
  std::size_t num_features = 0;                    ///< m: > 0 for FAVOR+; 0 (= d) or d for elu+1
  feature_map kernel = feature_map::elu_plus_one;  ///< the feature map
  std::uint64_t seed = 0x5eed;                     ///< seed of the FAVOR+ random features
  bool causal = false;       ///< default causal flag of `forward` (bottom-right aligned)
  bool check_finite = true;  ///< throw `non_finite_input` on NaN/Inf inputs
};

template <class T>
class linear_key_state;
template <class T>
class linear_attention;

namespace detail {

/// Draws the FAVOR+ orthogonal random features (m × d, double); see the file comment.
[[nodiscard]] inline Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>
draw_orthogonal_features(std::size_t d, std::size_t m, std::uint64_t seed) {
  using dmatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const auto D = static_cast<Eigen::Index>(d);
  dmatrix w(static_cast<Eigen::Index>(m), D);
  rng gen(seed);
  dmatrix g(D, D);
  for (std::size_t r0 = 0; r0 < m; r0 += d) {
    for (Eigen::Index i = 0; i < D; ++i)
      for (Eigen::Index c = 0; c < D; ++c) g(i, c) = gen.normal();
    // Gram–Schmidt, applied twice per row ("twice is enough", Giraud et al. 2005): orthogonal to
    // ~1e-15 whatever the conditioning of g. A residual that vanishes (probability 0) is redrawn.
    for (Eigen::Index i = 0; i < D; ++i) {
      for (;;) {
        for (int pass = 0; pass < 2; ++pass)
          for (Eigen::Index p = 0; p < i; ++p) g.row(i) -= g.row(i).dot(g.row(p)) * g.row(p);
        const double norm = g.row(i).norm();
        if (norm > 1e-8) {
          g.row(i) /= norm;
          break;
        }
        for (Eigen::Index c = 0; c < D; ++c) g(i, c) = gen.normal();
      }
    }
    for (Eigen::Index i = 0; i < D; ++i) {
      double sq = 0.0;
      for (std::size_t t = 0; t < d; ++t) {
        const double x = gen.normal();
        sq += x * x;
      }
      const auto r = static_cast<Eigen::Index>(r0) + i;
      if (r < static_cast<Eigen::Index>(m)) w.row(r) = g.row(i) * std::sqrt(sq);
    }
  }
  return w;
}

/// Immutable feature-map parameters, shared by a mechanism and the key states it builds.
template <class T>
struct linear_feature_params {
  feature_map kind = feature_map::elu_plus_one;
  std::size_t dim = 0;
  std::size_t m = 0;  // number of features (= dim for elu+1)
  std::uint64_t seed = 0;
  bool check_finite = true;
  row_matrix<T> w;    // [m, dim] random features (FAVOR+ only)
  T x_scale = T(1);   // d^{-1/4}
  T half_sq = T(0);   // x_scale² / 2 = 1 / (2√d)
  T log_norm = T(0);  // −½ log m (the 1/√m factor, in the log domain)

  [[nodiscard]] bool favor() const noexcept { return kind == feature_map::favor_plus; }

  [[nodiscard]] bool same_map(const linear_feature_params& o) const {
    if (this == &o) return true;
    return kind == o.kind && dim == o.dim && m == o.m && (!favor() || w == o.w);
  }

  // out[r, :] = ℓ(x_r) = log φ(x_r) (FAVOR+) or φ(x_r) = elu(x_r) + 1 (elu+1), for the rows of x.
  void rows(const matrix_cref<T>& x, matrix_ref<T> out) const {
    if (favor()) {
      out.noalias() = x_scale * (x * w.transpose());  // scalar on the left: folded into the GEMM
      for (Eigen::Index r = 0; r < x.rows(); ++r)
        out.row(r).array() -= half_sq * x.row(r).squaredNorm() - log_norm;
    } else {
      out = (x.array() > T(0)).select(x.array() + T(1), x.array().exp());
    }
  }

  // The same for one vector (the xsimd row_dots kernel for W·x).
  void vec(const T* x, T* out) const noexcept {
    if (favor()) {
      kernels::row_dots(w.data(), m, dim, dim, x, x_scale, out);
      const T shift = half_sq * kernels::dot(x, x, dim) - log_norm;
      for (std::size_t i = 0; i < m; ++i) out[i] -= shift;
    } else {
      for (std::size_t c = 0; c < dim; ++c) out[c] = x[c] > T(0) ? x[c] + T(1) : std::exp(x[c]);
    }
  }
};

template <class T>
[[nodiscard]] std::shared_ptr<const linear_feature_params<T>> make_linear_feature_params(
    const linear_attention_config& cfg) {
  require_config(cfg.dim > 0, "linear_attention: dim must be > 0");
  require_at_most("dim", cfg.dim, max_dimension);
  auto p = std::make_shared<linear_feature_params<T>>();
  p->kind = cfg.kernel;
  p->dim = cfg.dim;
  p->seed = cfg.seed;
  p->check_finite = cfg.check_finite;
  if (cfg.kernel == feature_map::favor_plus) {
    require_config(cfg.num_features > 0,
                   "linear_attention: num_features (m) must be > 0 for feature_map::favor_plus");
    require_at_most("num_features", cfg.num_features, max_dimension);
    p->m = cfg.num_features;
    p->w = draw_orthogonal_features(cfg.dim, cfg.num_features, cfg.seed).cast<T>();
    const double d = static_cast<double>(cfg.dim);
    p->x_scale = static_cast<T>(std::pow(d, -0.25));
    p->half_sq = static_cast<T>(0.5 / std::sqrt(d));
    p->log_norm = static_cast<T>(-0.5 * std::log(static_cast<double>(cfg.num_features)));
  } else {
    if (cfg.num_features != 0 && cfg.num_features != cfg.dim) {
      std::ostringstream os;
      os << "linear_attention: num_features is " << cfg.num_features
         << ", expected 0 or dim = " << cfg.dim << " for feature_map::elu_plus_one (m = d)";
      require_config(false, os.str());
    }
    p->m = cfg.dim;
  }
  return p;
}

template <class T>
void require_finite_matrix(const char* what, const matrix_cref<T>& x) {
  require_finite(what, x.data(), static_cast<std::size_t>(x.rows()),
                 static_cast<std::size_t>(x.cols()), x.outerStride());
}

[[noreturn]] inline void throw_linear_overflow(const char* what) {
  throw non_finite_input(std::string("non-finite input: ") + what +
                         " overflowed although the inputs are finite (reduce their magnitude)");
}

inline constexpr std::size_t linear_key_chunk = 256;   // keys per GEMM when building a state
inline constexpr std::size_t linear_query_block = 64;  // queries per GEMM / parallel task

}  // namespace detail

/// \brief The key state of linear attention: S = Σ_j φ(k_j) v_jᵀ (m × dv) and z = Σ_j φ(k_j) (m)
/// over the keys added so far, stored with a per-feature log-scale (see the file comment).
/// Built once — `linear_attention::build_state`, or `make_state` then `add` — and queried any
/// number of times at O(m·(d + dv)) per query whatever the number of keys. States over disjoint
/// key sets `merge` exactly (S and z add). Obtain states from a `linear_attention`.
template <class T = float>
class linear_key_state {
 public:
  using value_type = T;
  using vector_type = Eigen::Matrix<T, Eigen::Dynamic, 1>;

  /// Query/key dimension d.
  [[nodiscard]] std::size_t dim() const noexcept { return map_->dim; }
  /// Value dimension dv.
  [[nodiscard]] std::size_t value_dim() const noexcept { return dv_; }
  /// Number of features m.
  [[nodiscard]] std::size_t num_features() const noexcept { return map_->m; }
  /// The feature map the state was built with.
  [[nodiscard]] feature_map kernel() const noexcept { return map_->kind; }
  /// Number of (visible) keys accumulated.
  [[nodiscard]] std::size_t size() const noexcept { return count_; }
  /// True when no key has been accumulated (queries then output zeros).
  [[nodiscard]] bool empty() const noexcept { return count_ == 0; }

  /// Stored S̃ (m × dv); the true S = diag(e^{log_scale()}) · s().
  [[nodiscard]] const row_matrix<T>& s() const noexcept { return s_; }
  /// Stored z̃ (m); the true z = e^{log_scale()} ⊙ z().
  [[nodiscard]] const vector_type& z() const noexcept { return z_; }
  /// Per-feature log-scale c (FAVOR+: max_j log φ_i(k_j), −inf while empty; elu+1: 0).
  [[nodiscard]] const vector_type& log_scale() const noexcept { return c_; }

  /// \brief Adds keys (rows of `keys`, width d) and their values (rows of `values`, width dv);
  /// keys with `key_mask[j] == false` are skipped. Strong guarantee: on error nothing changes.
  void add(const matrix_cref<T>& keys, const matrix_cref<T>& values,
           std::span<const bool> key_mask = {}) {
    validate_kv(keys, values, key_mask);
    linear_key_state part(map_, dv_);
    part.accumulate(keys, values, key_mask);
    part.require_finite_state();
    merge(part);
  }

  /// \brief Adds one key and its value.
  void add(std::span<const T> key, std::span<const T> value) {
    require_dimension("key.size()", key.size(), map_->dim);
    require_dimension("value.size() (must equal the state's value_dim())", value.size(), dv_);
    add(matrix_view(key.data(), 1, key.size()), matrix_view(value.data(), 1, value.size()));
  }

  /// \brief Merges the state of another key set (built with the same feature map and value
  /// dimension): afterwards this state equals one built over both key sets. Exact up to
  /// rounding, associative and commutative. Strong guarantee.
  void merge(const linear_key_state& other) {
    if (!map_->same_map(*other.map_)) {
      throw invalid_argument(
          "invalid argument: linear_key_state::merge: other was built with a different feature "
          "map (kernel, dim, num_features or random features differ; same config and seed "
          "required)");
    }
    require_dimension("other.value_dim()", other.dv_, dv_);
    if (other.count_ == 0) return;
    if (count_ == 0) {
      s_ = other.s_;
      z_ = other.z_;
      c_ = other.c_;
      count_ = other.count_;
      return;
    }
    row_matrix<T> s;
    vector_type z, c;
    if (map_->favor()) {
      c = c_.cwiseMax(other.c_);
      const vector_type a = (c_ - c).array().exp().matrix();
      const vector_type b = (other.c_ - c).array().exp().matrix();
      s = a.asDiagonal() * s_;
      s += b.asDiagonal() * other.s_;
      z = a.cwiseProduct(z_) + b.cwiseProduct(other.z_);
    } else {
      c = c_;
      s = s_ + other.s_;
      z = z_ + other.z_;
    }
    if (map_->check_finite && (!kernels::all_finite(s.data(), static_cast<std::size_t>(s.size())) ||
                               !kernels::all_finite(z.data(), static_cast<std::size_t>(z.size()))))
      detail::throw_linear_overflow("the merged key state");
    s_ = std::move(s);
    z_ = std::move(z);
    c_ = std::move(c);
    count_ += other.count_;
  }

  /// \brief Removes every key (keeps the feature map and value dimension).
  void clear() {
    s_.setZero();
    z_.setZero();
    c_.setConstant(map_->favor() ? -std::numeric_limits<T>::infinity() : T(0));
    count_ = 0;
  }

  /// \brief out = φ(q)ᵀS / φ(q)ᵀz (zeros if no key was added); O(m·(d + dv)), no allocation
  /// after the first call on a thread.
  void query(std::span<const T> q, std::span<T> out) const {
    require_dimension("query.size()", q.size(), map_->dim);
    require_dimension("out.size() (must equal the state's value_dim())", out.size(), dv_);
    if (map_->check_finite) require_finite<T>("query", q);
    T* f = detail::thread_scratch<T, 20>(map_->m);
    map_->vec(q.data(), f);
    finish_query(f, out.data());
    if (map_->check_finite && !kernels::all_finite(out.data(), dv_))
      detail::throw_linear_overflow("the output");
  }

  /// \brief The output for one query (allocating convenience overload).
  [[nodiscard]] std::vector<T> query(std::span<const T> q) const {
    std::vector<T> out(dv_);
    query(q, std::span<T>(out));
    return out;
  }

  /// \brief Outputs for every row of `queries` ([Lq, d]) into `out` ([Lq, dv]) with Eigen GEMMs
  /// (φ(Q)·S), in parallel over blocks of 64 queries.
  void query_batch_into(const matrix_cref<T>& queries, matrix_ref<T> out) const {
    require_dimension("queries.cols()", static_cast<std::size_t>(queries.cols()), map_->dim);
    require_dimension("out.rows() (must equal queries.rows())",
                      static_cast<std::size_t>(out.rows()),
                      static_cast<std::size_t>(queries.rows()));
    require_dimension("out.cols() (must equal the state's value_dim())",
                      static_cast<std::size_t>(out.cols()), dv_);
    if (map_->check_finite) detail::require_finite_matrix("queries", queries);
    query_rows(queries, out);
    check_output(out);
  }

  /// \brief Outputs for every row of `queries` ([Lq, d]) as an [Lq, dv] matrix.
  [[nodiscard]] row_matrix<T> query_batch(const matrix_cref<T>& queries) const {
    row_matrix<T> out(queries.rows(), static_cast<Eigen::Index>(dv_));
    query_batch_into(queries, out);
    return out;
  }

 private:
  friend class linear_attention<T>;

  linear_key_state(std::shared_ptr<const detail::linear_feature_params<T>> map, std::size_t dv)
      : map_(std::move(map)),
        dv_(dv),
        s_(row_matrix<T>::Zero(static_cast<Eigen::Index>(map_->m), static_cast<Eigen::Index>(dv))),
        z_(vector_type::Zero(static_cast<Eigen::Index>(map_->m))),
        c_(vector_type::Constant(static_cast<Eigen::Index>(map_->m),
                                 map_->favor() ? -std::numeric_limits<T>::infinity() : T(0))) {}

  void validate_kv(const matrix_cref<T>& keys, const matrix_cref<T>& values,
                   std::span<const bool> key_mask) const {
    const auto n = static_cast<std::size_t>(keys.rows());
    require_at_most("keys.rows()", n, max_sequence_length);
    require_dimension("keys.cols()", static_cast<std::size_t>(keys.cols()), map_->dim);
    require_dimension("values.rows() (must equal keys.rows())",
                      static_cast<std::size_t>(values.rows()), n);
    require_dimension("values.cols() (must equal the state's value_dim())",
                      static_cast<std::size_t>(values.cols()), dv_);
    if (!key_mask.empty()) require_dimension("key_mask.size()", key_mask.size(), n);
    if (map_->check_finite) {
      detail::require_finite_matrix("keys", keys);
      detail::require_finite_matrix("values", values);
    }
  }

  void require_finite_state() const {
    if (!map_->check_finite) return;
    if (!kernels::all_finite(s_.data(), static_cast<std::size_t>(s_.size())) ||
        !kernels::all_finite(z_.data(), static_cast<std::size_t>(z_.size())))
      detail::throw_linear_overflow("the key state");
  }

  // Accumulates (validated) keys/values in chunks of `linear_key_chunk` rows with GEMMs.
  void accumulate(const matrix_cref<T>& keys, const matrix_cref<T>& values,
                  std::span<const bool> key_mask, std::size_t begin = 0,
                  std::size_t end = std::numeric_limits<std::size_t>::max()) {
    end = std::min(end, static_cast<std::size_t>(keys.rows()));
    if (begin >= end) return;
    const auto m = static_cast<Eigen::Index>(map_->m);
    row_matrix<T> f(static_cast<Eigen::Index>(std::min(detail::linear_key_chunk, end - begin)), m);
    for (std::size_t j0 = begin; j0 < end; j0 += detail::linear_key_chunk) {
      const std::size_t rows = std::min(detail::linear_key_chunk, end - j0);
      const auto r0 = static_cast<Eigen::Index>(j0), nr = static_cast<Eigen::Index>(rows);
      auto fb = f.topRows(nr);
      map_->rows(keys.middleRows(r0, nr), fb);
      std::size_t visible = rows;
      if (!key_mask.empty()) {
        // Hidden keys: log-feature −inf (FAVOR+) or feature 0 (elu+1) contributes nothing.
        const T hidden = map_->favor() ? -std::numeric_limits<T>::infinity() : T(0);
        for (std::size_t r = 0; r < rows; ++r)
          if (!key_mask[j0 + r]) {
            fb.row(static_cast<Eigen::Index>(r)).setConstant(hidden);
            --visible;
          }
      }
      if (visible == 0) continue;
      if (map_->favor()) {
        const vector_type chunk_max = fb.colwise().maxCoeff().transpose();
        raise_scale(chunk_max);
        fb.rowwise() -= c_.transpose();
        fb.array() = fb.array().exp();
      }
      s_.noalias() += fb.transpose() * values.middleRows(r0, nr);
      z_.noalias() += fb.colwise().sum().transpose();
      count_ += visible;
    }
  }

  // Adds one key given its features f (ℓ(k) for FAVOR+, φ(k) for elu+1; overwritten).
  void accumulate_row(T* f, const T* v) {
    const auto m = static_cast<Eigen::Index>(map_->m);
    Eigen::Map<vector_type> fv(f, m);
    if (map_->favor()) {
      raise_scale(fv);
      fv = (fv - c_).array().exp().matrix();
    }
    const Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>> vr(v,
                                                                   static_cast<Eigen::Index>(dv_));
    s_.noalias() += fv * vr;
    z_ += fv;
    ++count_;
  }

  // c ← max(c, cand), rescaling the rows of S̃ and z̃ whose scale rises (FAVOR+ only).
  void raise_scale(const Eigen::Ref<const vector_type>& cand) {
    for (Eigen::Index i = 0; i < c_.size(); ++i) {
      if (cand(i) > c_(i)) {
        const T factor = std::exp(c_(i) - cand(i));  // 0 for an empty row (c = −inf)
        s_.row(i) *= factor;
        z_(i) *= factor;
        c_(i) = cand(i);
      }
    }
  }

  // f holds the query's ℓ(q) (FAVOR+) or φ(q) (elu+1); writes the output (dv values).
  void finish_query(T* f, T* out) const noexcept {
    const std::size_t m = map_->m;
    if (count_ == 0) {
      std::fill(out, out + dv_, T(0));
      return;
    }
    if (map_->favor()) {
      for (std::size_t i = 0; i < m; ++i) f[i] += c_(static_cast<Eigen::Index>(i));
      kernels::exp_shift_sum(f, m, kernels::max(f, m));
    }
    const T den = kernels::dot(f, z_.data(), m);
    if (!(den > std::numeric_limits<T>::min())) {
      std::fill(out, out + dv_, T(0));
      return;
    }
    kernels::weighted_row_sum(f, m, s_.data(), dv_, dv_, T(0), out);
    kernels::scale(T(1) / den, out, dv_);
  }

  // Batched queries (validated): Φ(Q_block)·S̃ with one GEMM per block of 64 queries.
  void query_rows(const matrix_cref<T>& queries, matrix_ref<T> out) const {
    const std::size_t lq = static_cast<std::size_t>(queries.rows());
    if (lq == 0 || dv_ == 0) return;
    if (count_ == 0) {
      out.setZero();
      return;
    }
    const std::size_t block = detail::linear_query_block;
    const auto m = static_cast<Eigen::Index>(map_->m);
    parallel_for(0, (lq + block - 1) / block, [&](std::size_t b) {
      const std::size_t i0 = b * block, rows = std::min(block, lq - i0);
      const auto r0 = static_cast<Eigen::Index>(i0), nr = static_cast<Eigen::Index>(rows);
      row_matrix<T> f(nr, m);
      map_->rows(queries.middleRows(r0, nr), f);
      if (map_->favor()) {
        f.rowwise() += c_.transpose();
        for (Eigen::Index r = 0; r < nr; ++r)
          kernels::exp_shift_sum(&f(r, 0), map_->m, kernels::max(&f(r, 0), map_->m));
      }
      // Into an aligned temporary (Eigen rounds identically whatever the caller's alignment).
      row_matrix<T> num(nr, static_cast<Eigen::Index>(dv_));
      num.noalias() = f * s_;
      const vector_type den = f * z_;
      for (Eigen::Index r = 0; r < nr; ++r) {
        if (den(r) > std::numeric_limits<T>::min()) {
          out.row(r0 + r) = num.row(r) / den(r);
        } else {
          out.row(r0 + r).setZero();
        }
      }
    });
  }

  void check_output(const matrix_cref<T>& out) const {
    if (!map_->check_finite) return;
    for (Eigen::Index r = 0; r < out.rows(); ++r)
      if (!kernels::all_finite(out.data() + r * out.outerStride(), dv_))
        detail::throw_linear_overflow("the output");
  }

  std::shared_ptr<const detail::linear_feature_params<T>> map_;
  std::size_t dv_ = 0;
  row_matrix<T> s_;
  vector_type z_;
  vector_type c_;
  std::size_t count_ = 0;
};

/// \brief Linear attention (elu+1 or FAVOR+; see the file comment) at the vector API
/// (`compute`, `compute_with_mask`), the sequence API (`forward`) and through reusable key states
/// (`build_state`). Models `masked_attention_mechanism`.
template <class T = float>
class linear_attention {
 public:
  using value_type = T;

  /// \brief Validates `config` (`invalid_config` / `input_too_large`) and, for FAVOR+, draws the
  /// random features from `config.seed`.
  explicit linear_attention(const linear_attention_config& config)
      : config_(config), map_(detail::make_linear_feature_params<T>(config)) {}

  /// The configuration (with the current seed).
  [[nodiscard]] const linear_attention_config& config() const noexcept { return config_; }
  /// Query/key dimension d.
  [[nodiscard]] std::size_t dim() const noexcept { return map_->dim; }
  /// Number of features m (d for elu+1).
  [[nodiscard]] std::size_t num_features() const noexcept { return map_->m; }
  /// The feature map.
  [[nodiscard]] feature_map kernel() const noexcept { return map_->kind; }
  /// The seed of the current random features.
  [[nodiscard]] std::uint64_t seed() const noexcept { return map_->seed; }
  /// The default causal flag of `forward`.
  [[nodiscard]] bool causal() const noexcept { return config_.causal; }
  /// The FAVOR+ random features w_i as rows (m × d); empty for elu+1.
  [[nodiscard]] const row_matrix<T>& random_features() const noexcept { return map_->w; }

  /// \brief Replaces the FAVOR+ random features by those of `seed` (elu+1: only records the
  /// seed). States built earlier keep their own features.
  void redraw(std::uint64_t seed) {
    linear_attention_config c = config_;
    c.seed = seed;
    map_ = detail::make_linear_feature_params<T>(c);
    config_ = c;
  }

  /// \brief out = φ(x), the unstabilised feature vector (m values). For FAVOR+ φ(q)ᵀφ(k)
  /// estimates exp(qᵀk/√d); entries overflow for very large ‖x‖ (the attention paths do not).
  void map_features(std::span<const T> x, std::span<T> out) const {
    require_dimension("x.size()", x.size(), map_->dim);
    require_dimension("out.size() (must equal num_features())", out.size(), map_->m);
    if (map_->check_finite) require_finite<T>("x", x);
    map_->vec(x.data(), out.data());
    if (map_->favor())
      for (T& v : out) v = std::exp(v);
  }

  /// \brief φ(x) (allocating convenience overload).
  [[nodiscard]] std::vector<T> map_features(std::span<const T> x) const {
    std::vector<T> out(map_->m);
    map_features(x, std::span<T>(out));
    return out;
  }

  /// \brief An empty key state for values of dimension `value_dim`, to fill with `add`.
  [[nodiscard]] linear_key_state<T> make_state(std::size_t value_dim) const {
    require_at_most("value_dim", value_dim, max_dimension);
    return linear_key_state<T>(map_, value_dim);
  }

  /// \brief The key state of `keys` ([n, d]) and `values` ([n, dv]); keys with
  /// `key_mask[j] == false` are excluded. Costs O(n·m·(d + dv)); every later query O(m·(d + dv)).
  [[nodiscard]] linear_key_state<T> build_state(const matrix_cref<T>& keys,
                                                const matrix_cref<T>& values,
                                                std::span<const bool> key_mask = {}) const {
    linear_key_state<T> st = make_state(static_cast<std::size_t>(values.cols()));
    st.validate_kv(keys, values, key_mask);
    st.accumulate(keys, values, key_mask);
    st.require_finite_state();
    return st;
  }

  /// \brief Attention output for one query over keys [n, d] and values [n, dv] (rows = keys),
  /// optionally masked (`true` = visible; empty = all). O(n·m·d + n·dv), no state is built.
  void compute_into(std::span<const T> query, const matrix_cref<T>& keys,
                    const matrix_cref<T>& values, std::span<T> out,
                    std::span<const bool> key_mask = {}) const {
    const std::size_t n = static_cast<std::size_t>(keys.rows());
    const std::size_t dv = static_cast<std::size_t>(values.cols());
    const std::size_t m = map_->m;
    require_dimension("query.size()", query.size(), map_->dim);
    require_non_empty("keys", n);
    require_at_most("keys.rows()", n, max_sequence_length);
    require_dimension("keys.cols()", static_cast<std::size_t>(keys.cols()), map_->dim);
    require_dimension("values.rows() (must equal keys.rows())",
                      static_cast<std::size_t>(values.rows()), n);
    require_dimension("out.size() (must equal values.cols())", out.size(), dv);
    if (!key_mask.empty()) require_dimension("key_mask.size()", key_mask.size(), n);
    if (map_->check_finite) {
      require_finite<T>("query", query);
      detail::require_finite_matrix("keys", keys);
      detail::require_finite_matrix("values", values);
    }
    const std::size_t chunk = std::min(detail::linear_key_chunk, n);
    T* fq = detail::thread_scratch<T, 20>(m);
    T* scores = detail::thread_scratch<T, 21>(chunk);
    T* frows = detail::thread_scratch<T, 22>(chunk * m);
    map_->vec(query.data(), fq);
    const auto ldv = static_cast<std::size_t>(values.outerStride());

    if (map_->favor()) {
      // Softmax over the keys of log(φ(q)ᵀφ(k_j)) = logsumexp_i(ℓ_i(q) + ℓ_i(k_j)).
      kernels::online_softmax_state<T> acc(dv);
      for (std::size_t j0 = 0; j0 < n; j0 += chunk) {
        const std::size_t rows = std::min(chunk, n - j0);
        Eigen::Map<row_matrix<T>> fk(frows, static_cast<Eigen::Index>(rows),
                                     static_cast<Eigen::Index>(m));
        map_->rows(keys.middleRows(static_cast<Eigen::Index>(j0), static_cast<Eigen::Index>(rows)),
                   fk);
        for (std::size_t r = 0; r < rows; ++r) {
          if (!key_mask.empty() && !key_mask[j0 + r]) {
            scores[r] = -std::numeric_limits<T>::infinity();
            continue;
          }
          T* row = frows + r * m;
          for (std::size_t i = 0; i < m; ++i) row[i] += fq[i];
          const T mx = kernels::max(row, m);
          scores[r] = mx + std::log(kernels::exp_shift_sum(row, m, mx));
        }
        acc.add_block(scores, rows, values.data() + j0 * ldv, ldv);
      }
      acc.finalize(out.data());
    } else {
      // Σ_j s_j v_j / Σ_j s_j with s_j = φ(q)·φ(k_j).
      T den = T(0);
      for (std::size_t j0 = 0; j0 < n; j0 += chunk) {
        const std::size_t rows = std::min(chunk, n - j0);
        Eigen::Map<row_matrix<T>> fk(frows, static_cast<Eigen::Index>(rows),
                                     static_cast<Eigen::Index>(m));
        map_->rows(keys.middleRows(static_cast<Eigen::Index>(j0), static_cast<Eigen::Index>(rows)),
                   fk);
        kernels::row_dots(frows, rows, m, m, fq, T(1), scores);
        if (!key_mask.empty())
          for (std::size_t r = 0; r < rows; ++r)
            if (!key_mask[j0 + r]) scores[r] = T(0);
        den += kernels::sum(scores, rows);
        kernels::weighted_row_sum(scores, rows, values.data() + j0 * ldv, dv, ldv,
                                  j0 == 0 ? T(0) : T(1), out.data());
      }
      if (den > std::numeric_limits<T>::min()) {
        kernels::scale(T(1) / den, out.data(), dv);
      } else {
        std::fill(out.begin(), out.end(), T(0));
      }
    }
    if (map_->check_finite && !kernels::all_finite(out.data(), dv))
      detail::throw_linear_overflow("the output");
  }

  /// \brief Attention output for one query (the seeds' `compute`).
  [[nodiscard]] std::vector<T> compute(std::span<const T> query, const matrix_cref<T>& keys,
                                       const matrix_cref<T>& values) const {
    std::vector<T> out(static_cast<std::size_t>(values.cols()));
    compute_into(query, keys, values, out);
    return out;
  }

  /// \brief Attention output with a key mask (`true` = visible; masked keys are excluded from
  /// S and z). A fully masked key set gives zeros.
  [[nodiscard]] std::vector<T> compute_with_mask(std::span<const T> query,
                                                 const matrix_cref<T>& keys,
                                                 const matrix_cref<T>& values,
                                                 std::span<const bool> key_mask) const {
    require_dimension("key_mask.size()", key_mask.size(), static_cast<std::size_t>(keys.rows()));
    std::vector<T> out(static_cast<std::size_t>(values.cols()));
    compute_into(query, keys, values, out, key_mask);
    return out;
  }

  /// \brief Seeds-shaped adapter: keys and values as vectors of vectors (copied once).
  [[nodiscard]] std::vector<T> compute(const std::vector<T>& query,
                                       const std::vector<std::vector<T>>& keys,
                                       const std::vector<std::vector<T>>& values) const {
    return compute(std::span<const T>(query), to_matrix(keys, "keys"), to_matrix(values, "values"));
  }

  /// \brief Seeds-shaped adapter with a `std::vector<bool>` mask.
  [[nodiscard]] std::vector<T> compute_with_mask(const std::vector<T>& query,
                                                 const std::vector<std::vector<T>>& keys,
                                                 const std::vector<std::vector<T>>& values,
                                                 const std::vector<bool>& key_mask) const {
    const std::unique_ptr<bool[]> mask(new bool[key_mask.size()]);
    std::copy(key_mask.begin(), key_mask.end(), mask.get());
    return compute_with_mask(std::span<const T>(query), to_matrix(keys, "keys"),
                             to_matrix(values, "values"),
                             std::span<const bool>(mask.get(), key_mask.size()));
  }

  /// \brief Sequence form: out [Lq, dv] for queries [Lq, d], keys [Lk, d], values [Lk, dv].
  /// Non-causal: one key state (GEMMs) then φ(Q)·S per block of 64 queries (GEMM, parallel).
  /// Causal (bottom-right aligned): prefix sums, the state advanced key by key. Queries that see
  /// no key output zeros; Lk = 0 is allowed.
  void forward_into(const matrix_cref<T>& queries, const matrix_cref<T>& keys,
                    const matrix_cref<T>& values, matrix_ref<T> out, bool causal,
                    std::span<const bool> key_mask = {}) const {
    const std::size_t lq = static_cast<std::size_t>(queries.rows());
    const std::size_t dv = static_cast<std::size_t>(values.cols());
    require_at_most("queries.rows()", lq, max_sequence_length);
    require_dimension("queries.cols()", static_cast<std::size_t>(queries.cols()), map_->dim);
    require_dimension("out.rows() (must equal queries.rows())",
                      static_cast<std::size_t>(out.rows()), lq);
    require_dimension("out.cols() (must equal values.cols())", static_cast<std::size_t>(out.cols()),
                      dv);
    linear_key_state<T> st = make_state(dv);
    st.validate_kv(keys, values, key_mask);
    if (map_->check_finite) detail::require_finite_matrix("queries", queries);
    if (lq == 0 || dv == 0) return;

    if (!causal) {
      st.accumulate(keys, values, key_mask);
      st.require_finite_state();
      st.query_rows(queries, out);
    } else {
      forward_causal(queries, keys, values, out, key_mask, st);
    }
    st.check_output(out);
  }

  /// \brief `forward_into` returning a new [Lq, dv] matrix.
  [[nodiscard]] row_matrix<T> forward(const matrix_cref<T>& queries, const matrix_cref<T>& keys,
                                      const matrix_cref<T>& values, bool causal,
                                      std::span<const bool> key_mask = {}) const {
    row_matrix<T> out(queries.rows(), values.cols());
    forward_into(queries, keys, values, out, causal, key_mask);
    return out;
  }

  /// \brief `forward` with the configured causal flag.
  [[nodiscard]] row_matrix<T> forward(const matrix_cref<T>& queries, const matrix_cref<T>& keys,
                                      const matrix_cref<T>& values) const {
    return forward(queries, keys, values, config_.causal);
  }

 private:
  // Causal prefix sums: before each block of queries, the keys every query of the block sees are
  // added with GEMMs; inside the block the state advances key by key (rank-1 updates).
  void forward_causal(const matrix_cref<T>& queries, const matrix_cref<T>& keys,
                      const matrix_cref<T>& values, matrix_ref<T> out,
                      std::span<const bool> key_mask, linear_key_state<T>& st) const {
    const std::size_t lq = static_cast<std::size_t>(queries.rows());
    const std::size_t lk = static_cast<std::size_t>(keys.rows());
    const std::size_t dv = static_cast<std::size_t>(values.cols());
    const auto m = static_cast<Eigen::Index>(map_->m);
    const std::size_t block = detail::linear_query_block;
    row_matrix<T> fq(static_cast<Eigen::Index>(std::min(block, lq)), m);
    std::vector<T> fk(map_->m);
    std::vector<T> orow(dv);
    std::size_t k = 0;  // keys [0, k) are in the state
    for (std::size_t i0 = 0; i0 < lq; i0 += block) {
      const std::size_t rows = std::min(block, lq - i0);
      const std::size_t first = causal_visible_keys(i0, lq, lk);
      if (first > k) {
        st.accumulate(keys, values, key_mask, k, first);
        st.require_finite_state();
        k = first;
      }
      auto fb = fq.topRows(static_cast<Eigen::Index>(rows));
      map_->rows(queries.middleRows(static_cast<Eigen::Index>(i0), static_cast<Eigen::Index>(rows)),
                 fb);
      for (std::size_t r = 0; r < rows; ++r) {
        const std::size_t visible = causal_visible_keys(i0 + r, lq, lk);
        for (; k < visible; ++k) {
          if (!key_mask.empty() && !key_mask[k]) continue;
          const auto kk = static_cast<Eigen::Index>(k);
          map_->vec(keys.data() + kk * keys.outerStride(), fk.data());
          st.accumulate_row(fk.data(), values.data() + kk * values.outerStride());
        }
        st.finish_query(&fb(static_cast<Eigen::Index>(r), 0), orow.data());
        for (std::size_t c = 0; c < dv; ++c)
          out(static_cast<Eigen::Index>(i0 + r), static_cast<Eigen::Index>(c)) = orow[c];
      }
    }
  }

  linear_attention_config config_;
  std::shared_ptr<const detail::linear_feature_params<T>> map_;
};

}  // namespace ruvector::attention
// ---- end ruvector/attention/sparse/linear.hpp ----
// ---- begin ruvector/attention/sparse/local_global.hpp ----
/// \file sparse/local_global.hpp
/// \brief Local-global attention (Longformer: Beltagy, Peters & Cohan 2020, "Longformer: The
/// Long-Document Transformer", §3.1 sliding window + global attention):
///
///     A(i) = { j : |i − j| ≤ w } ∪ G          for a query at a non-global position i,
///     A(i) = { 0, …, n − 1 }                  for a query at a global position i ∈ G,
///     (causal: additionally j ≤ i)
///     out_i = Σ_{j∈A(i)} softmax_{A(i)}(s_i·)_j · v_j,   s_ij = scale · (q_i · k_j),  scale = 1/√d
///
/// Global attention is symmetric: every token attends the global tokens and the global tokens
/// attend every token. `w` is the one-sided radius (`config.window`; the paper's window size is
/// 2w, and the Rust original's `window` is the full width, i.e. ⌊window/2⌋ keys each side).
/// G = the first `num_global` positions (clamped to n) ∪ `global_tokens` (each must be < n).
///
/// Whole sequence (`forward`): built on `sparse_pattern` (`make_local_global_pattern` in
/// masks.hpp, = window ∪ global) and the `sparse_attention` kernel, so the cost is
/// O(n·(2w + 1 + g)·d + g·n·d) = O(n·(w + g)·d) time and O(n·(w + g)) pattern memory — never O(n²)
/// unless w or g is O(n). Queries may be the last Lq of Lk positions (query i sits at position
/// i + Lk − Lq, as for causal masking, DESIGN.md §4).
///
/// Single query (`compute_at(position, query, keys, values)`): the query's POSITION among the
/// n = keys.rows() tokens is an explicit argument; it costs O((w + g)·d) (O(n·d) for a global
/// position). `compute(query, keys, values)` — the `attention_mechanism` entry point — uses
/// `config.position` and throws `invalid_config` when it is unset: unlike the Rust original, which
/// silently assumes position n/2, nothing is assumed. `local_global_config::last_position` means
/// "the last token" (n − 1), the usual choice for causal decoding.
///
/// Conventions (DESIGN.md §4): max-subtracted softmax; a row with no visible key (only possible
/// with a key mask) outputs zeros; NaN/Inf in anything read throws `non_finite_input` naming it
/// (configurable via `config.check_finite`). Immutable after construction and thread-safe.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

// ---- begin ruvector/attention/sparse/masks.hpp ----
/// \file sparse/masks.hpp
/// \brief Sparse attention patterns: which keys each query may attend, as per-query sorted key
/// lists in CSR form, plus the generators of the sparse-attention literature.
///
/// Representation. A `sparse_pattern` of an `Lq × Lk` attention holds, for every query row `i`,
/// the strictly increasing key indices `col_idx[row_ptr[i] .. row_ptr[i+1])`, all `< Lk`
/// (compressed sparse row; no values; 32-bit key indices, `size_t` row offsets). `nnz()` counts
/// the stored pairs and
/// `density() = nnz / (Lq·Lk)`. The kernel `sparse_attention` (sparse/sparse_attention.hpp)
/// computes, for each query, the softmax over exactly its listed keys, in O(nnz·(d + dv)).
///
/// Positions (DESIGN.md §4). Every generator places query `i` of `Lq` at sequence position
/// `p_i = i + Lk − Lq` (bottom-right alignment, the same as causal masking), so for self-attention
/// (`Lq == Lk`) `p_i = i`, and a single decoding query (`Lq = 1`) sits at the last position
/// `Lk − 1` and gets exactly the last row of the full `Lk × Lk` pattern. "Causal" always means
/// `j <= p_i`.
///
/// Generators (key `j` is listed for query `i` iff ...; δ = p_i − j):
/// - `make_window_pattern` — sliding window / local attention: |δ| ≤ w (causal: 0 ≤ δ ≤ w).
///   nnz ≈ Lq·(2w + 1).
/// - `make_strided_pattern` — Child et al. 2019, "Generating Long Sequences with Sparse
///   Transformers" (strided pattern), and Longformer's dilated window (Beltagy et al. 2020):
///   |δ| ≤ local, or (δ ≡ 0 mod stride and |δ| ≤ window). Child et al.'s causal strided attention
///   with stride l is `{stride = l, local = l − 1, causal = true}` (the union of their two heads);
///   a dilated window of w taps with dilation r is `{stride = r, local = 0, window = w·r}`.
/// - `make_block_sparse_pattern` — BigBird (Zaheer et al. 2020, "Big Bird: Transformers for
///   Longer Sequences", ITC variant): keys and positions are cut into blocks of `b`; block row
///   `I = ⌊p_i / b⌋` lists key block `J` iff |I − J| ≤ window_blocks, or J < global_blocks, or
///   I < global_blocks (global blocks attend to and are attended by everything), or `J` is one of
///   `random_blocks` blocks drawn without replacement (Floyd's algorithm) from the remaining
///   blocks with `ra::rng(seed)`, block rows in increasing order — so the same seed gives the same
///   pattern on every platform, whatever `Lq`. The last block may be partial (`Lk % b != 0`).
/// - `make_global_pattern` — global tokens: every query lists the global keys, and a query at a
///   global position lists every key.
/// - `make_local_global_pattern` — Longformer (Beltagy et al. 2020): window ∪ global in one pass.
/// - `sparse_pattern::from_coo` — arbitrary (row, col) pairs; sorted, deduplicated, validated.
/// - `make_topk_pattern` — per query, the `k` keys with the largest scores s_ij = scale·q_i·k_j
///   (ties broken by the lower key index); cost O(Lq·Lk·d) for the scores plus O(Lk) expected per
///   query for `std::nth_element`, so it is a *data-dependent* pattern, not a way to avoid the
///   dense score computation.
/// - `make_causal_pattern`, `make_dense_pattern` — the dense references (O(Lq·Lk) entries).
/// - `pattern_union` / `operator|` and `pattern_intersection` / `operator&` combine patterns of the
///   same shape in O(nnz).
///
/// Errors: malformed input throws `invalid_argument` (or `dimension_mismatch` for size
/// disagreements, `input_too_large` beyond `max_sequence_length`) naming the row, the entry and the
/// expected value.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>


namespace ruvector::attention {

class sparse_pattern;

namespace detail {
struct sparse_pattern_access;
}  // namespace detail

/// \brief Per-query sorted key lists of an `Lq × Lk` attention in CSR form (see the file comment).
/// Immutable after construction; every constructed pattern satisfies `validate()`.
class sparse_pattern {
 public:
  /// Key index type. 32 bits halve the pattern's memory traffic; `cols()` is limited to
  /// `max_pattern_cols` (and to `max_sequence_length`, 2^26 by default).
  using index_type = std::uint32_t;
  /// Row offset type (nnz may exceed 2^32).
  using offset_type = std::size_t;
  /// The largest number of keys (columns) a pattern can index.
  static constexpr std::size_t max_pattern_cols = std::numeric_limits<index_type>::max();

  /// An empty 0 × 0 pattern.
  sparse_pattern() : row_ptr_(1, 0) {}

  /// \brief Adopts CSR arrays and validates them (see `validate`).
  sparse_pattern(std::size_t rows, std::size_t cols, std::vector<offset_type> row_ptr,
                 std::vector<index_type> col_idx)
      : rows_(rows), cols_(cols), row_ptr_(std::move(row_ptr)), col_idx_(std::move(col_idx)) {
    validate();
    compute_max_row();
  }

  /// \brief From one strictly increasing key list per query (validated, not sorted for you; use
  /// `from_coo` for unsorted or duplicated input).
  [[nodiscard]] static sparse_pattern from_rows(std::size_t cols,
                                                const std::vector<std::vector<index_type>>& rows) {
    std::vector<offset_type> row_ptr(rows.size() + 1, 0);
    for (std::size_t i = 0; i < rows.size(); ++i) row_ptr[i + 1] = row_ptr[i] + rows[i].size();
    std::vector<index_type> col_idx;
    col_idx.reserve(row_ptr.back());
    for (const auto& r : rows) col_idx.insert(col_idx.end(), r.begin(), r.end());
    return sparse_pattern(rows.size(), cols, std::move(row_ptr), std::move(col_idx));
  }

  /// \brief From (row, col) pairs in any order; duplicates are merged. Throws `invalid_argument`
  /// naming the first pair outside `rows × cols`. O(nnz log nnz).
  [[nodiscard]] static sparse_pattern from_coo(
      std::size_t rows, std::size_t cols,
      std::span<const std::pair<std::size_t, std::size_t>> entries) {
    require_at_most("sparse_pattern::from_coo rows", rows, max_sequence_length);
    require_at_most("sparse_pattern::from_coo cols", cols,
                    std::min(max_sequence_length, max_pattern_cols));
    std::vector<offset_type> count(rows + 1, 0);
    for (std::size_t e = 0; e < entries.size(); ++e) {
      const auto [r, c] = entries[e];
      if (r >= rows || c >= cols) {
        std::ostringstream os;
        os << "invalid argument: sparse_pattern::from_coo entry " << e << " = (" << r << ", " << c
           << ") is outside the " << rows << " x " << cols << " pattern ("
           << (r >= rows ? "row" : "column") << " must be < " << (r >= rows ? rows : cols) << ")";
        throw invalid_argument(os.str());
      }
      ++count[r + 1];
    }
    for (std::size_t r = 0; r < rows; ++r) count[r + 1] += count[r];
    std::vector<index_type> cols_sorted(entries.size());
    {
      std::vector<offset_type> fill(count.begin(), count.end() - 1);
      for (const auto& [r, c] : entries) cols_sorted[fill[r]++] = static_cast<index_type>(c);
    }
    std::vector<offset_type> row_ptr(rows + 1, 0);
    std::vector<index_type> col_idx;
    col_idx.reserve(entries.size());
    for (std::size_t r = 0; r < rows; ++r) {
      auto first = cols_sorted.begin() + static_cast<std::ptrdiff_t>(count[r]);
      auto last = cols_sorted.begin() + static_cast<std::ptrdiff_t>(count[r + 1]);
      std::sort(first, last);
      last = std::unique(first, last);
      col_idx.insert(col_idx.end(), first, last);
      row_ptr[r + 1] = col_idx.size();
    }
    return make_unchecked(rows, cols, std::move(row_ptr), std::move(col_idx));
  }

  /// Number of query rows `Lq`.
  [[nodiscard]] std::size_t rows() const noexcept { return rows_; }
  /// Number of key columns `Lk`.
  [[nodiscard]] std::size_t cols() const noexcept { return cols_; }
  /// Number of stored (query, key) pairs.
  [[nodiscard]] std::size_t nnz() const noexcept { return col_idx_.size(); }
  /// nnz / (Lq·Lk); 0 for an empty shape.
  [[nodiscard]] double density() const noexcept {
    return rows_ == 0 || cols_ == 0 ? 0.0
                                    : static_cast<double>(nnz()) /
                                          (static_cast<double>(rows_) * static_cast<double>(cols_));
  }
  /// The `Lq + 1` row offsets into `col_idx()`.
  [[nodiscard]] std::span<const offset_type> row_ptr() const noexcept { return row_ptr_; }
  /// The key indices of all rows, concatenated.
  [[nodiscard]] std::span<const index_type> col_idx() const noexcept { return col_idx_; }
  /// The sorted key indices listed for query `i` (`i < rows()`, unchecked).
  [[nodiscard]] std::span<const index_type> row(std::size_t i) const noexcept {
    return std::span<const index_type>(col_idx_).subspan(row_ptr_[i],
                                                         row_ptr_[i + 1] - row_ptr_[i]);
  }
  /// Number of keys listed for query `i` (unchecked).
  [[nodiscard]] std::size_t row_size(std::size_t i) const noexcept {
    return row_ptr_[i + 1] - row_ptr_[i];
  }
  /// The largest `row_size` (0 for no rows).
  [[nodiscard]] std::size_t max_row_size() const noexcept { return max_row_; }
  /// True iff key `j` is listed for query `i` (binary search; false when out of range).
  [[nodiscard]] bool contains(std::size_t i, std::size_t j) const noexcept {
    if (i >= rows_ || j >= cols_) return false;
    const auto r = row(i);
    return std::binary_search(r.begin(), r.end(), static_cast<index_type>(j));
  }

  /// \brief Checks the CSR invariants — `row_ptr` has `rows + 1` non-decreasing entries from 0 to
  /// `nnz`, every key index is `< cols`, each row is strictly increasing — and throws an `error`
  /// subclass naming the first violation (row, entry and position in `col_idx`).
  void validate() const {
    require_at_most("sparse_pattern rows", rows_, max_sequence_length);
    require_at_most("sparse_pattern cols", cols_, std::min(max_sequence_length, max_pattern_cols));
    require_dimension("sparse_pattern row_ptr.size() (rows + 1)", row_ptr_.size(), rows_ + 1);
    if (row_ptr_[0] != 0) {
      throw invalid_argument("invalid argument: sparse_pattern row_ptr[0] is " +
                             std::to_string(row_ptr_[0]) + ", expected 0");
    }
    for (std::size_t i = 0; i < rows_; ++i) {
      if (row_ptr_[i + 1] < row_ptr_[i]) {
        std::ostringstream os;
        os << "invalid argument: sparse_pattern row " << i << ": row_ptr[" << i + 1
           << "] = " << row_ptr_[i + 1] << " is less than row_ptr[" << i << "] = " << row_ptr_[i]
           << " (row_ptr must be non-decreasing)";
        throw invalid_argument(os.str());
      }
    }
    require_dimension("sparse_pattern row_ptr[rows] (must equal col_idx.size())", row_ptr_[rows_],
                      col_idx_.size());
    for (std::size_t i = 0; i < rows_; ++i) {
      for (std::size_t e = row_ptr_[i]; e < row_ptr_[i + 1]; ++e) {
        const index_type j = col_idx_[e];
        if (j >= cols_) {
          std::ostringstream os;
          os << "invalid argument: sparse_pattern row " << i << ", entry " << e - row_ptr_[i]
             << " (col_idx[" << e << "]) = " << j
             << " is out of range: expected < cols = " << cols_;
          throw invalid_argument(os.str());
        }
        if (e > row_ptr_[i] && j <= col_idx_[e - 1]) {
          std::ostringstream os;
          os << "invalid argument: sparse_pattern row " << i << ", entry " << e - row_ptr_[i]
             << " (col_idx[" << e << "]) = " << j << " is not greater than the previous entry "
             << col_idx_[e - 1] << " (each row must be sorted and duplicate-free)";
          throw invalid_argument(os.str());
        }
      }
    }
  }

  /// \brief Dense `rows × cols` boolean mask (row-major, `true` = listed) — for tests and
  /// debugging; O(Lq·Lk) memory.
  [[nodiscard]] std::vector<bool> to_dense() const {
    std::vector<bool> m(rows_ * cols_, false);
    for (std::size_t i = 0; i < rows_; ++i)
      for (const index_type j : row(i)) m[i * cols_ + j] = true;
    return m;
  }

  friend bool operator==(const sparse_pattern& a, const sparse_pattern& b) noexcept {
    return a.rows_ == b.rows_ && a.cols_ == b.cols_ && a.row_ptr_ == b.row_ptr_ &&
           a.col_idx_ == b.col_idx_;
  }

 private:
  friend struct detail::sparse_pattern_access;

  // For generators whose output is valid by construction (checked by the tests).
  static sparse_pattern make_unchecked(std::size_t rows, std::size_t cols,
                                       std::vector<offset_type> row_ptr,
                                       std::vector<index_type> col_idx) {
    sparse_pattern p;
    p.rows_ = rows;
    p.cols_ = cols;
    p.row_ptr_ = std::move(row_ptr);
    p.col_idx_ = std::move(col_idx);
    p.compute_max_row();
    return p;
  }

  void compute_max_row() noexcept {
    max_row_ = 0;
    for (std::size_t i = 0; i < rows_; ++i) max_row_ = std::max(max_row_, row_size(i));
  }

  std::size_t rows_ = 0;
  std::size_t cols_ = 0;
  std::vector<offset_type> row_ptr_;
  std::vector<index_type> col_idx_;
  std::size_t max_row_ = 0;
};

namespace detail {

struct sparse_pattern_access {
  static sparse_pattern make(std::size_t rows, std::size_t cols, std::vector<std::size_t> row_ptr,
                             std::vector<sparse_pattern::index_type> col_idx) {
    return sparse_pattern::make_unchecked(rows, cols, std::move(row_ptr), std::move(col_idx));
  }
};

// Row-by-row CSR construction for the generators.
class csr_builder {
 public:
  csr_builder(std::size_t rows, std::size_t cols, std::size_t reserve = 0)
      : rows_(rows), cols_(cols) {
    require_at_most("pattern rows (Lq)", rows, max_sequence_length);
    require_at_most("pattern cols (Lk)", cols,
                    std::min(max_sequence_length, sparse_pattern::max_pattern_cols));
    row_ptr_.reserve(rows + 1);
    row_ptr_.push_back(0);
    col_idx_.reserve(reserve);
  }
  void push(std::size_t j) { col_idx_.push_back(static_cast<index_type>(j)); }
  void push_range(std::size_t lo, std::size_t hi_exclusive) {
    if (hi_exclusive <= lo) return;
    const std::size_t old = col_idx_.size();
    col_idx_.resize(old + (hi_exclusive - lo));
    index_type* out = col_idx_.data() + old;
    const auto first = static_cast<index_type>(lo);
    for (std::size_t t = 0; t < hi_exclusive - lo; ++t) out[t] = first + static_cast<index_type>(t);
  }
  void end_row() { row_ptr_.push_back(col_idx_.size()); }
  sparse_pattern finish() {
    return sparse_pattern_access::make(rows_, cols_, std::move(row_ptr_), std::move(col_idx_));
  }

 private:
  using index_type = sparse_pattern::index_type;
  std::size_t rows_, cols_;
  std::vector<std::size_t> row_ptr_;
  std::vector<index_type> col_idx_;
};

// Signed position p_i = i + Lk − Lq of query i (bottom-right alignment).
[[nodiscard]] inline long long query_position(std::size_t i, std::size_t lq,
                                              std::size_t lk) noexcept {
  return static_cast<long long>(i) + static_cast<long long>(lk) - static_cast<long long>(lq);
}

// min(x, lq + lk): any distance beyond this is "unbounded" and keeps the arithmetic in range.
[[nodiscard]] inline long long clamp_distance(std::size_t x, std::size_t lq,
                                              std::size_t lk) noexcept {
  return static_cast<long long>(std::min<std::size_t>(x, lq + lk + 1));
}

inline void require_same_shape(const char* what, const sparse_pattern& a, const sparse_pattern& b) {
  if (a.rows() != b.rows() || a.cols() != b.cols()) {
    std::ostringstream os;
    os << "dimension mismatch: " << what << " of a " << a.rows() << " x " << a.cols() << " and a "
       << b.rows() << " x " << b.cols() << " pattern (shapes must agree)";
    throw dimension_mismatch(os.str());
  }
}

// Sorted, deduplicated copy of `indices`, each checked to be < limit.
inline std::vector<std::size_t> sorted_indices(const char* what, std::span<const std::size_t> idx,
                                               std::size_t limit) {
  for (std::size_t t = 0; t < idx.size(); ++t) {
    if (idx[t] >= limit) {
      std::ostringstream os;
      os << "invalid argument: " << what << "[" << t << "] = " << idx[t]
         << " is out of range: expected < " << limit;
      throw invalid_argument(os.str());
    }
  }
  std::vector<std::size_t> s(idx.begin(), idx.end());
  std::sort(s.begin(), s.end());
  s.erase(std::unique(s.begin(), s.end()), s.end());
  return s;
}

}  // namespace detail

/// \brief Sliding window (local attention): query `i` lists keys `j` with |p_i − j| ≤ `window`
/// (and `j ≤ p_i` when `causal`), p_i = i + Lk − Lq. O(nnz).
[[nodiscard]] inline sparse_pattern make_window_pattern(std::size_t lq, std::size_t lk,
                                                        std::size_t window, bool causal = false) {
  const long long w = detail::clamp_distance(window, lq, lk);
  detail::csr_builder b(lq, lk,
                        lq * std::min<std::size_t>(lk, 2 * static_cast<std::size_t>(w) + 1));
  for (std::size_t i = 0; i < lq; ++i) {
    const long long p = detail::query_position(i, lq, lk);
    const long long lo = std::max(0LL, p - w);
    const long long hi = std::min(static_cast<long long>(lk) - 1, causal ? p : p + w);
    if (lo <= hi) b.push_range(static_cast<std::size_t>(lo), static_cast<std::size_t>(hi) + 1);
    b.end_row();
  }
  return b.finish();
}

/// \brief Bottom-right aligned causal pattern (`j ≤ i + Lk − Lq`); O(Lq·Lk) entries.
[[nodiscard]] inline sparse_pattern make_causal_pattern(std::size_t lq, std::size_t lk) {
  detail::csr_builder b(lq, lk);
  for (std::size_t i = 0; i < lq; ++i) {
    b.push_range(0, causal_visible_keys(i, lq, lk));
    b.end_row();
  }
  return b.finish();
}

/// \brief Every query lists every key; O(Lq·Lk) entries (a reference, not a sparse pattern).
[[nodiscard]] inline sparse_pattern make_dense_pattern(std::size_t lq, std::size_t lk) {
  detail::csr_builder b(lq, lk, lq * lk);
  for (std::size_t i = 0; i < lq; ++i) {
    b.push_range(0, lk);
    b.end_row();
  }
  return b.finish();
}

/// \brief Options of `make_strided_pattern` (Child et al. 2019; see the file comment).
struct strided_pattern_options {
  /// Key j is listed when (p_i − j) is a multiple of `stride` (≥ 1) ...
  std::size_t stride = 1;
  /// ... and |p_i − j| ≤ `window` (default: unbounded);
  std::size_t window = std::numeric_limits<std::size_t>::max();
  /// or when |p_i − j| ≤ `local` (the dense local band).
  std::size_t local = 0;
  /// Only keys j ≤ p_i.
  bool causal = false;
};

/// \brief Strided / dilated pattern: |δ| ≤ local, or δ ≡ 0 (mod stride) with |δ| ≤ window,
/// where δ = p_i − j (and δ ≥ 0 when causal). O(nnz).
[[nodiscard]] inline sparse_pattern make_strided_pattern(std::size_t lq, std::size_t lk,
                                                         const strided_pattern_options& options) {
  require_argument(options.stride >= 1, "make_strided_pattern: stride must be >= 1");
  const long long s = static_cast<long long>(std::min<std::size_t>(options.stride, lq + lk + 1));
  const long long w = detail::clamp_distance(options.window, lq, lk);
  const long long loc = detail::clamp_distance(options.local, lq, lk);
  const long long last = static_cast<long long>(lk) - 1;
  detail::csr_builder b(lq, lk);
  for (std::size_t i = 0; i < lq; ++i) {
    const long long p = detail::query_position(i, lq, lk);
    // Local band [llo, lhi] (may be empty) and strided range [slo, shi].
    const long long llo = std::max(0LL, p - loc);
    const long long lhi = std::min(last, options.causal ? p : p + loc);
    const long long slo = std::max(0LL, p - w);
    const long long shi = std::min(last, options.causal ? p : p + w);
    const long long first = slo + (((p - slo) % s) + s) % s;  // first j >= slo with j ≡ p (mod s)
    if (llo > lhi) {
      for (long long j = first; j <= shi; j += s) b.push(static_cast<std::size_t>(j));
    } else {
      long long j = first;
      for (; j <= shi && j < llo; j += s) b.push(static_cast<std::size_t>(j));
      b.push_range(static_cast<std::size_t>(llo), static_cast<std::size_t>(lhi) + 1);
      while (j <= lhi) j += s;  // strided keys inside the band are already listed
      for (; j <= shi; j += s) b.push(static_cast<std::size_t>(j));
    }
    b.end_row();
  }
  return b.finish();
}

/// \brief Global tokens: every query lists the keys at `global_positions`, and a query whose
/// position p_i is global lists every key (all subject to `j ≤ p_i` when `causal`). Positions must
/// be `< lk`; duplicates are ignored. O(nnz).
[[nodiscard]] inline sparse_pattern make_global_pattern(
    std::size_t lq, std::size_t lk, std::span<const std::size_t> global_positions,
    bool causal = false) {
  const auto g =
      detail::sorted_indices("make_global_pattern: global_positions", global_positions, lk);
  detail::csr_builder b(lq, lk);
  for (std::size_t i = 0; i < lq; ++i) {
    const long long p = detail::query_position(i, lq, lk);
    const std::size_t limit = causal ? causal_visible_keys(i, lq, lk) : lk;  // keys j < limit
    if (p >= 0 && std::binary_search(g.begin(), g.end(), static_cast<std::size_t>(p))) {
      b.push_range(0, limit);
    } else {
      for (const std::size_t j : g) {
        if (j >= limit) break;
        b.push(j);
      }
    }
    b.end_row();
  }
  return b.finish();
}

/// \brief Longformer local + global pattern (Beltagy et al. 2020), built in one pass: query `i`
/// lists |p_i − j| ≤ `window`, every global key, and — when p_i is global — every key (all with
/// `j ≤ p_i` when `causal`). Equal to `make_window_pattern(lq, lk, window, causal) |
/// make_global_pattern(lq, lk, global_positions, causal)`, without the intermediate patterns.
/// nnz ≤ Lq·(2w + 1 + g) + g·Lk; O(nnz).
[[nodiscard]] inline sparse_pattern make_local_global_pattern(
    std::size_t lq, std::size_t lk, std::size_t window,
    std::span<const std::size_t> global_positions, bool causal = false) {
  const auto g =
      detail::sorted_indices("make_local_global_pattern: global_positions", global_positions, lk);
  const long long w = detail::clamp_distance(window, lq, lk);
  const std::size_t band = std::min<std::size_t>(lk, 2 * static_cast<std::size_t>(w) + 1);
  detail::csr_builder b(lq, lk, lq * std::min(lk, band + g.size()) + g.size() * lk);
  for (std::size_t i = 0; i < lq; ++i) {
    const long long p = detail::query_position(i, lq, lk);
    const std::size_t limit = causal ? causal_visible_keys(i, lq, lk) : lk;  // keys j < limit
    if (p >= 0 && std::binary_search(g.begin(), g.end(), static_cast<std::size_t>(p))) {
      b.push_range(0, limit);
      b.end_row();
      continue;
    }
    const long long lo = std::max(0LL, p - w);
    const long long hi = std::min(static_cast<long long>(lk) - 1, causal ? p : p + w);
    auto it = g.begin();
    if (lo <= hi) {
      for (; it != g.end() && static_cast<long long>(*it) < lo; ++it) b.push(*it);
      b.push_range(static_cast<std::size_t>(lo), static_cast<std::size_t>(hi) + 1);
      while (it != g.end() && static_cast<long long>(*it) <= hi) ++it;
    }
    for (; it != g.end() && *it < limit; ++it) b.push(*it);
    b.end_row();
  }
  return b.finish();
}

/// \brief Options of `make_block_sparse_pattern` (BigBird; see the file comment).
struct block_sparse_options {
  /// Block size b (≥ 1) for positions and keys.
  std::size_t block_size = 64;
  /// Key blocks J with |I − J| ≤ window_blocks are listed (BigBird's 3-block window = 1).
  std::size_t window_blocks = 1;
  /// The first `global_blocks` blocks are global (attend to and are attended by every block).
  std::size_t global_blocks = 1;
  /// Random key blocks per block row, drawn from the blocks not already listed.
  std::size_t random_blocks = 0;
  /// Seed of the random blocks (`ra::rng`; platform-independent).
  std::uint64_t seed = 0;
  /// Keep only keys j ≤ p_i; random blocks are then drawn from blocks before the window.
  bool causal = false;
};

namespace detail {

// The sorted key blocks of block row I (I >= global_blocks), including `random` drawn from the
// remaining candidates with Floyd's algorithm (r distinct draws in O(r^2) time, O(r) memory).
inline void block_row_blocks(std::size_t I, std::size_t nb, const block_sparse_options& o, rng& gen,
                             std::vector<std::size_t>& out) {
  out.clear();
  const std::size_t g = std::min(o.global_blocks, nb);
  const std::size_t wlo = I >= o.window_blocks ? I - o.window_blocks : 0;
  const std::size_t whi = std::min(nb - 1, I + std::min(o.window_blocks, nb));  // inclusive
  // Candidates: [g, a) ∪ [c, nb) with a = clamp(wlo), c = whi + 1 (none after the window if
  // causal).
  const std::size_t a = std::max(g, std::min(wlo, nb));
  const std::size_t c = o.causal ? nb : std::max(g, whi + 1);
  const std::size_t n_a = a - g, n_c = nb - c, total = n_a + n_c;
  std::vector<std::size_t> chosen;
  if (o.random_blocks > 0 && total > 0) {
    if (o.random_blocks >= total) {
      for (std::size_t t = 0; t < total; ++t) chosen.push_back(t);
    } else {
      for (std::size_t j = total - o.random_blocks; j < total; ++j) {
        const auto t = static_cast<std::size_t>(gen.below(j + 1));
        const bool seen = std::find(chosen.begin(), chosen.end(), t) != chosen.end();
        chosen.push_back(seen ? j : t);
      }
    }
    for (auto& t : chosen) t = t < n_a ? g + t : c + (t - n_a);
    std::sort(chosen.begin(), chosen.end());
  }
  // Merge: globals [0, g), randoms below the window, window [wlo, whi], randoms above.
  for (std::size_t J = 0; J < g; ++J) out.push_back(J);
  auto r = chosen.begin();
  for (; r != chosen.end() && *r < wlo; ++r) out.push_back(*r);
  for (std::size_t J = std::max(wlo, g); J <= whi; ++J) out.push_back(J);
  for (; r != chosen.end(); ++r) out.push_back(*r);
}

}  // namespace detail

/// \brief BigBird block-sparse pattern (window + global + seeded random blocks); requires
/// `lq ≤ lk` (queries are the last `lq` positions). O(nnz + (Lk/b)·r²).
[[nodiscard]] inline sparse_pattern make_block_sparse_pattern(std::size_t lq, std::size_t lk,
                                                              const block_sparse_options& options) {
  require_argument(options.block_size >= 1, "make_block_sparse_pattern: block_size must be >= 1");
  if (lq > lk) {
    std::ostringstream os;
    os << "invalid argument: make_block_sparse_pattern: lq = " << lq << " exceeds lk = " << lk
       << " (queries are the last lq of the lk positions)";
    throw invalid_argument(os.str());
  }
  detail::csr_builder b(lq, lk);
  if (lk == 0) return b.finish();
  const std::size_t bs = options.block_size;
  const std::size_t nb = (lk + bs - 1) / bs;
  const std::size_t g = std::min(options.global_blocks, nb);
  rng gen(options.seed);
  std::vector<std::size_t> blocks;
  std::size_t i = 0;
  const std::size_t first_pos = lk - lq;
  // Random draws are made for every block row I >= g in increasing order, so the pattern rows of
  // a position do not depend on lq.
  for (std::size_t I = 0; I < nb; ++I) {
    if (I < g) {
      blocks.resize(nb);
      std::iota(blocks.begin(), blocks.end(), std::size_t{0});
    } else {
      detail::block_row_blocks(I, nb, options, gen, blocks);
    }
    const std::size_t pos_end = std::min(lk, (I + 1) * bs);
    for (; i < lq && first_pos + i < pos_end; ++i) {
      const std::size_t p = first_pos + i;
      const std::size_t limit = options.causal ? p + 1 : lk;  // keys j < limit
      for (const std::size_t J : blocks) {
        const std::size_t lo = J * bs;
        if (lo >= limit) break;
        b.push_range(lo, std::min(limit, lo + bs));
      }
      b.end_row();
    }
  }
  return b.finish();
}

/// \brief Union of two patterns of the same shape (row-wise sorted merge). O(nnz_a + nnz_b).
[[nodiscard]] inline sparse_pattern pattern_union(const sparse_pattern& a,
                                                  const sparse_pattern& b) {
  detail::require_same_shape("pattern_union", a, b);
  detail::csr_builder out(a.rows(), a.cols(), a.nnz() + b.nnz());
  for (std::size_t i = 0; i < a.rows(); ++i) {
    const auto ra_ = a.row(i), rb = b.row(i);
    std::size_t x = 0, y = 0;
    while (x < ra_.size() || y < rb.size()) {
      if (y == rb.size() || (x < ra_.size() && ra_[x] < rb[y])) {
        out.push(ra_[x++]);
      } else if (x == ra_.size() || rb[y] < ra_[x]) {
        out.push(rb[y++]);
      } else {
        out.push(ra_[x]);
        ++x;
        ++y;
      }
    }
    out.end_row();
  }
  return out.finish();
}

/// \brief Intersection of two patterns of the same shape. O(nnz_a + nnz_b).
[[nodiscard]] inline sparse_pattern pattern_intersection(const sparse_pattern& a,
                                                         const sparse_pattern& b) {
  detail::require_same_shape("pattern_intersection", a, b);
  detail::csr_builder out(a.rows(), a.cols(), std::min(a.nnz(), b.nnz()));
  for (std::size_t i = 0; i < a.rows(); ++i) {
    const auto ra_ = a.row(i), rb = b.row(i);
    std::size_t x = 0, y = 0;
    while (x < ra_.size() && y < rb.size()) {
      if (ra_[x] < rb[y]) {
        ++x;
      } else if (rb[y] < ra_[x]) {
        ++y;
      } else {
        out.push(ra_[x]);
        ++x;
        ++y;
      }
    }
    out.end_row();
  }
  return out.finish();
}

/// \brief `pattern_union(a, b)`.
[[nodiscard]] inline sparse_pattern operator|(const sparse_pattern& a, const sparse_pattern& b) {
  return pattern_union(a, b);
}

/// \brief `pattern_intersection(a, b)`.
[[nodiscard]] inline sparse_pattern operator&(const sparse_pattern& a, const sparse_pattern& b) {
  return pattern_intersection(a, b);
}

/// \brief Options of `make_topk_pattern`.
template <class T>
struct topk_pattern_options {
  /// Score scale; defaults to 1/√d (only its sign affects the selection).
  std::optional<T> scale{};
  /// Only keys j ≤ p_i are candidates.
  bool causal = false;
};

namespace detail {

template <class M>
concept eigen_dense_matrix =
    std::is_base_of_v<Eigen::DenseBase<std::remove_cvref_t<M>>, std::remove_cvref_t<M>>;

// Names the first non-finite element among q row i and the key rows idx[0..n) (or all keys when
// idx is null) and throws; throws an overflow message when none is found.
template <class T>
[[noreturn]] void throw_non_finite_rows(const char* qname, const matrix_cref<T>& q, std::size_t i,
                                        const char* kname, const matrix_cref<T>& k,
                                        const sparse_pattern::index_type* idx, std::size_t n) {
  const auto d = static_cast<std::size_t>(q.cols());
  for (std::size_t c = 0; c < d; ++c) {
    const T x = q(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(c));
    if (!std::isfinite(x)) throw_non_finite(qname, i, c, x);
  }
  for (std::size_t t = 0; t < n; ++t) {
    const std::size_t j = idx ? idx[t] : t;
    for (std::size_t c = 0; c < static_cast<std::size_t>(k.cols()); ++c) {
      const T x = k(static_cast<Eigen::Index>(j), static_cast<Eigen::Index>(c));
      if (!std::isfinite(x)) throw_non_finite(kname, j, c, x);
    }
  }
  throw non_finite_input(std::string("non-finite input: a score overflowed although ") + qname +
                         " and " + kname + " are finite (reduce the input magnitude or the scale)");
}

}  // namespace detail

/// \brief Top-k pattern: for each query, the `topk` keys with the largest s_ij = scale·(q_i·k_j)
/// (all candidates when fewer), ties broken by the lower key index; key lists are sorted by
/// index. Cost O(Lq·Lk·d) for the scores (xsimd `row_dots`) plus O(Lk) expected per query for
/// `std::nth_element` and O(k log k) to sort the survivors; parallel over queries. NaN/Inf in q or
/// k always throws `non_finite_input` (a NaN score has no rank).
template <class T>
[[nodiscard]] sparse_pattern make_topk_pattern(
    std::type_identity_t<matrix_cref<T>> q, std::type_identity_t<matrix_cref<T>> k,
    std::size_t topk, const std::type_identity_t<topk_pattern_options<T>>& options = {}) {
  const auto lq = static_cast<std::size_t>(q.rows()), lk = static_cast<std::size_t>(k.rows());
  const auto d = static_cast<std::size_t>(q.cols());
  require_non_empty("make_topk_pattern: q.cols() (dim)", d);
  require_at_most("make_topk_pattern: k.rows()", lk, sparse_pattern::max_pattern_cols);
  require_dimension("make_topk_pattern: k.cols() (must equal q.cols())",
                    static_cast<std::size_t>(k.cols()), d);
  require_at_most("make_topk_pattern: q.rows()", lq, max_sequence_length);
  require_at_most("make_topk_pattern: k.rows()", lk, max_sequence_length);
  require_at_most("make_topk_pattern: dim", d, max_dimension);
  const T scale = options.scale ? *options.scale : T(1) / std::sqrt(static_cast<T>(d));

  std::vector<std::size_t> row_ptr(lq + 1, 0);
  for (std::size_t i = 0; i < lq; ++i) {
    const std::size_t candidates = options.causal ? causal_visible_keys(i, lq, lk) : lk;
    row_ptr[i + 1] = row_ptr[i] + std::min(topk, candidates);
  }
  std::vector<sparse_pattern::index_type> col_idx(row_ptr[lq]);
  constexpr std::size_t rows_per_task = 16;
  parallel_for(0, (lq + rows_per_task - 1) / rows_per_task, [&](std::size_t task) {
    T* s = detail::thread_scratch<T>(std::max<std::size_t>(lk, 1));
    std::size_t* idx = detail::thread_scratch<std::size_t>(std::max<std::size_t>(lk, 1));
    const std::size_t i_end = std::min(lq, (task + 1) * rows_per_task);
    for (std::size_t i = task * rows_per_task; i < i_end; ++i) {
      const std::size_t m = options.causal ? causal_visible_keys(i, lq, lk) : lk;
      const std::size_t kk = row_ptr[i + 1] - row_ptr[i];
      if (kk == 0) continue;
      kernels::row_dots(k.data(), m, d, static_cast<std::size_t>(k.outerStride()),
                        q.data() + static_cast<std::ptrdiff_t>(i) * q.outerStride(), scale, s);
      if (!kernels::all_finite(s, m)) {
        detail::throw_non_finite_rows<T>("q", q, i, "k", k, nullptr, m);
      }
      std::iota(idx, idx + m, std::size_t{0});
      // A strict total order (indices are distinct), so the selection is deterministic.
      const auto before = [s](std::size_t a, std::size_t b) {
        return s[a] > s[b] || (s[a] == s[b] && a < b);
      };
      if (kk < m) std::nth_element(idx, idx + kk, idx + m, before);
      std::sort(idx, idx + kk);
      for (std::size_t t = 0; t < kk; ++t)
        col_idx[row_ptr[i] + t] = static_cast<sparse_pattern::index_type>(idx[t]);
    }
  });
  return detail::sparse_pattern_access::make(lq, lk, std::move(row_ptr), std::move(col_idx));
}

/// \brief `make_topk_pattern` deducing `T` from any row-major Eigen matrices.
template <class MQ, class MK>
requires detail::eigen_dense_matrix<MQ> && detail::eigen_dense_matrix<MK> &&
    std::is_same_v<typename MQ::Scalar, typename MK::Scalar>
[[nodiscard]] sparse_pattern make_topk_pattern(
    const MQ& q, const MK& k, std::size_t topk,
    const topk_pattern_options<typename MQ::Scalar>& options = {}) {
  using T = typename MQ::Scalar;
  return make_topk_pattern<T>(matrix_cref<T>(q), matrix_cref<T>(k), topk, options);
}

}  // namespace ruvector::attention
// ---- end ruvector/attention/sparse/masks.hpp ----
// ---- begin ruvector/attention/sparse/sparse_attention.hpp ----
/// \file sparse/sparse_attention.hpp
/// \brief Pattern-sparse scaled dot-product attention: each query attends only the keys its
/// `sparse_pattern` row lists (Child et al. 2019, "Generating Long Sequences with Sparse
/// Transformers"; the kernel behind windowed, strided, BigBird and Longformer attention):
///
///     S_i    = { j ∈ pattern.row(i) : key_mask[j] (if given), j ≤ i + Lk − Lq (if causal) }
///     s_ij   = scale · (q_i · k_j),   scale = 1/√d by default
///     out_i  = Σ_{j∈S_i} softmax_{S_i}(s_i·)_j · v_j,   lse_i = log Σ_{j∈S_i} exp(s_ij)
///
/// Conventions (DESIGN.md §4): max-subtracted softmax; a row with S_i = ∅ (no listed key, or all
/// hidden) outputs zeros, has all-zero weights and lse −inf. Causal masking is bottom-right
/// aligned.
///
/// Cost: O(nnz·(d + dv)) time and O(max row size) scratch per thread — never O(Lq·Lk). The kernel
/// is gather-style: the listed key rows are dotted with the query 8 at a time (xsimd, 8
/// independent FMA chains), the scores go through the vectorised softmax, and the weighted sum of
/// the listed value rows keeps a tile of up to 8 output registers across all of them. Keys and
/// values outside the pattern (and listed keys past the causal limit) are never read, so they may
/// hold anything — even NaN. Work is spread over blocks of queries with `parallel_for`.
///
/// Validation: shapes, the pattern's shape `Lq × Lk`, the optional outputs' sizes. With
/// `check_finite` (the default) NaN/±Inf in any value the kernel reads (q_i for a non-empty row,
/// k_j and v_j for listed j) throws `non_finite_input` naming the argument and index, e.g.
/// `k[7][3]`; it costs nothing on the happy path (only a non-finite score or output triggers the
/// scan). With `check_finite = false` such values propagate unspecified results (never UB).

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>


namespace ruvector::attention {

/// \brief Options of a `sparse_attention` call.
template <class T>
struct sparse_attention_options {
  /// Logit scale; defaults to 1/√d.
  std::optional<T> scale{};
  /// Additionally hide listed keys j > i + Lk − Lq (they are then not read at all).
  bool causal = false;
  /// Key mask (`true` = visible): empty = all visible; size Lk; for the tensor API also size B·Lk
  /// (one row per batch entry, row-major). Hidden listed keys still have their scores computed.
  std::span<const bool> key_mask{};
  /// Throw `non_finite_input` on NaN/Inf in the values the kernel reads.
  bool check_finite = true;
  /// Queries per parallel task; 0 = automatic.
  std::size_t query_block = 0;
};

/// \brief Optional outputs of the 2-D `sparse_attention` (empty spans are skipped).
template <class T>
struct sparse_attention_extras {
  /// `[Lq]` log Σ_{j∈S_i} exp(s_ij) (−inf for an empty row).
  std::span<T> lse{};
  /// `[nnz]` softmax weights in pattern order (`weights[row_ptr[i] + t]` belongs to key
  /// `pattern.row(i)[t]`); 0 for hidden keys.
  std::span<T> weights{};
};

RUVECTOR_ATTENTION_KERNEL_WARNINGS_BEGIN

namespace detail {

/// out[t] = alpha · (q · k_{idx[t]}) for t < n (key rows `ldk` apart). Eight gathered rows per
/// step.
template <class T, class Idx, class Arch = kernels::default_arch>
void gathered_row_dots(const T* k, std::size_t ldk, const Idx* idx, std::size_t n, std::size_t d,
                       const T* q, T alpha, T* out) noexcept {
  using B = kernels::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  constexpr std::size_t R = 8;
  const std::size_t dvec = d - d % W;
  std::size_t t = 0;
  for (; t + R <= n; t += R) {
    const T* rows[R];
#pragma GCC unroll 8
    for (std::size_t r = 0; r < R; ++r) rows[r] = k + static_cast<std::size_t>(idx[t + r]) * ldk;
    B acc[R];
#pragma GCC unroll 8
    for (std::size_t r = 0; r < R; ++r) acc[r] = B(T(0));
    for (std::size_t c = 0; c < dvec; c += W) {
      const B qb = B::load_unaligned(q + c);
#pragma GCC unroll 8
      for (std::size_t r = 0; r < R; ++r)
        acc[r] = xsimd::fma(qb, B::load_unaligned(rows[r] + c), acc[r]);
    }
#pragma GCC unroll 8
    for (std::size_t r = 0; r < R; ++r) {
      T s = kernels::detail::hsum(acc[r]);
      for (std::size_t c = dvec; c < d; ++c) s += q[c] * rows[r][c];
      out[t + r] = alpha * s;
    }
  }
  for (; t < n; ++t) {
    out[t] = alpha * kernels::dot<T, Arch>(q, k + static_cast<std::size_t>(idx[t]) * ldk, d);
  }
}

/// Columns [0, K·W) of out = Σ_t w[t] · v_{idx[t]}, K output batches held in registers.
template <std::size_t K, class T, class Idx, class Arch>
RUVECTOR_ATTENTION_ALWAYS_INLINE void gathered_weighted_sum_tile(const T* w, const Idx* idx,
                                                                 std::size_t n, const T* v,
                                                                 std::size_t ldv, T* out) noexcept {
  using B = kernels::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  B acc[K];
#pragma GCC unroll 8
  for (std::size_t c = 0; c < K; ++c) acc[c] = B(T(0));
  for (std::size_t t = 0; t < n; ++t) {
    const B wt(w[t]);
    const T* row = v + static_cast<std::size_t>(idx[t]) * ldv;
#pragma GCC unroll 8
    for (std::size_t c = 0; c < K; ++c)
      acc[c] = xsimd::fma(wt, B::load_unaligned(row + c * W), acc[c]);
  }
#pragma GCC unroll 8
  for (std::size_t c = 0; c < K; ++c) acc[c].store_unaligned(out + c * W);
}

/// out[c] = Σ_{t<n} w[t] · v[idx[t]·ldv + c] for c < dv (previous contents of out ignored).
template <class T, class Idx, class Arch = kernels::default_arch>
void gathered_weighted_sum(const T* w, const Idx* idx, std::size_t n, const T* v, std::size_t ldv,
                           std::size_t dv, T* out) noexcept {
  constexpr std::size_t W = kernels::batch<T, Arch>::size;
  std::size_t c = 0;
  for (; c + 8 * W <= dv; c += 8 * W)
    gathered_weighted_sum_tile<8, T, Idx, Arch>(w, idx, n, v + c, ldv, out + c);
  if (c + 4 * W <= dv) {
    gathered_weighted_sum_tile<4, T, Idx, Arch>(w, idx, n, v + c, ldv, out + c);
    c += 4 * W;
  }
  if (c + 2 * W <= dv) {
    gathered_weighted_sum_tile<2, T, Idx, Arch>(w, idx, n, v + c, ldv, out + c);
    c += 2 * W;
  }
  if (c + W <= dv) {
    gathered_weighted_sum_tile<1, T, Idx, Arch>(w, idx, n, v + c, ldv, out + c);
    c += W;
  }
  for (; c < dv; ++c) {
    T acc = T(0);
    for (std::size_t t = 0; t < n; ++t) acc += w[t] * v[static_cast<std::size_t>(idx[t]) * ldv + c];
    out[c] = acc;
  }
}

/// What went wrong in one row (the caller names the culprit).
enum class sparse_row_status { ok, non_finite_scores, non_finite_output };

/// One query over the listed keys idx[0..n): writes out[0..dv), the weights into scores[0..n)
/// and the log-sum-exp into `lse`. `key_mask` (may be null) is indexed by key. noexcept kernel.
template <class T, class Idx>
sparse_row_status sparse_attention_row(const T* q, const T* k, std::size_t ldk, const T* v,
                                       std::size_t ldv, std::size_t d, std::size_t dv,
                                       const Idx* idx, std::size_t n, T scale, const bool* key_mask,
                                       bool check_finite, T* scores, T* out, T& lse) noexcept {
  if (n == 0) {
    std::fill(out, out + dv, T(0));
    lse = -std::numeric_limits<T>::infinity();
    return sparse_row_status::ok;
  }
  gathered_row_dots(k, ldk, idx, n, d, q, scale, scores);
  if (check_finite && !kernels::all_finite(scores, n)) return sparse_row_status::non_finite_scores;
  if (key_mask != nullptr) {
    for (std::size_t t = 0; t < n; ++t)
      if (!key_mask[idx[t]]) scores[t] = -std::numeric_limits<T>::infinity();
  }
  lse = kernels::softmax(scores, n);
  gathered_weighted_sum(scores, idx, n, v, ldv, dv, out);
  if (check_finite && !kernels::all_finite(out, dv)) return sparse_row_status::non_finite_output;
  return sparse_row_status::ok;
}

/// Number of leading entries of a sorted key list that satisfy j ≤ i + Lk − Lq.
[[nodiscard]] inline std::size_t causal_prefix(std::span<const sparse_pattern::index_type> row,
                                               std::size_t i, std::size_t lq,
                                               std::size_t lk) noexcept {
  const auto limit = static_cast<sparse_pattern::index_type>(causal_visible_keys(i, lq, lk));
  return static_cast<std::size_t>(std::lower_bound(row.begin(), row.end(), limit) - row.begin());
}

/// Automatic queries-per-task: enough tasks to balance uneven rows, few enough to amortise.
[[nodiscard]] inline std::size_t sparse_query_block(std::size_t requested,
                                                    std::size_t lq) noexcept {
  if (requested > 0) return requested;
  const std::size_t tasks = 8 * static_cast<std::size_t>(std::max(1, num_threads()));
  return std::clamp<std::size_t>(lq / tasks, 1, 64);
}

// Finds and names the first non-finite value among row i's inputs (2-D API), then throws.
template <class T>
[[noreturn]] void throw_sparse_non_finite(const matrix_cref<T>& q, const matrix_cref<T>& k,
                                          const matrix_cref<T>& v, std::size_t i,
                                          const sparse_pattern::index_type* idx, std::size_t n) {
  for (Eigen::Index c = 0; c < q.cols(); ++c) {
    const T x = q(static_cast<Eigen::Index>(i), c);
    if (!std::isfinite(x)) throw_non_finite("q", i, static_cast<std::size_t>(c), x);
  }
  for (const matrix_cref<T>* m : {&k, &v}) {
    for (std::size_t t = 0; t < n; ++t) {
      for (Eigen::Index c = 0; c < m->cols(); ++c) {
        const T x = (*m)(static_cast<Eigen::Index>(idx[t]), c);
        if (!std::isfinite(x))
          throw_non_finite(m == &k ? "k" : "v", idx[t], static_cast<std::size_t>(c), x);
      }
    }
  }
  throw non_finite_input(
      "non-finite input: an attention score or output overflowed although q, k and v are finite "
      "(reduce the input magnitude or the scale)");
}

// The same for the tensor API: names q[b][h][i][c], k[b][hk][j][c] or v[b][hk][j][c].
template <class T>
[[noreturn]] void throw_sparse_non_finite_4d(const tensor_view<const T, 4>& q,
                                             const tensor_view<const T, 4>& k,
                                             const tensor_view<const T, 4>& v, std::size_t b,
                                             std::size_t h, std::size_t hk, std::size_t i,
                                             const sparse_pattern::index_type* idx, std::size_t n) {
  const auto fail = [](const char* what, std::size_t a0, std::size_t a1, std::size_t a2,
                       std::size_t a3, T x) {
    std::ostringstream os;
    os << "non-finite input: " << what << "[" << a0 << "][" << a1 << "][" << a2 << "][" << a3
       << "] = " << x;
    throw non_finite_input(os.str());
  };
  for (std::size_t c = 0; c < q.extent(3); ++c)
    if (!std::isfinite(q(b, h, i, c))) fail("q", b, h, i, c, q(b, h, i, c));
  for (std::size_t t = 0; t < n; ++t)
    for (std::size_t c = 0; c < k.extent(3); ++c)
      if (!std::isfinite(k(b, hk, idx[t], c))) fail("k", b, hk, idx[t], c, k(b, hk, idx[t], c));
  for (std::size_t t = 0; t < n; ++t)
    for (std::size_t c = 0; c < v.extent(3); ++c)
      if (!std::isfinite(v(b, hk, idx[t], c))) fail("v", b, hk, idx[t], c, v(b, hk, idx[t], c));
  throw non_finite_input(
      "non-finite input: an attention score or output overflowed although q, k and v are finite "
      "(reduce the input magnitude or the scale)");
}

}  // namespace detail

RUVECTOR_ATTENTION_KERNEL_WARNINGS_END

/// \brief Pattern-sparse attention, 2-D form: `q [Lq, d]`, `k [Lk, d]`, `v [Lk, dv]`,
/// `pattern` Lq × Lk → `out [Lq, dv]` (must not alias the inputs). Cost O(nnz·(d + dv)).
/// `T` is given explicitly (`sparse_attention<float>(...)`) or deduced by the overload below.
template <class T>
void sparse_attention(std::type_identity_t<matrix_cref<T>> q,
                      std::type_identity_t<matrix_cref<T>> k,
                      std::type_identity_t<matrix_cref<T>> v, const sparse_pattern& pattern,
                      std::type_identity_t<matrix_ref<T>> out,
                      const std::type_identity_t<sparse_attention_options<T>>& options = {},
                      const std::type_identity_t<sparse_attention_extras<T>>& extras = {}) {
  const auto lq = static_cast<std::size_t>(q.rows()), lk = static_cast<std::size_t>(k.rows());
  const auto d = static_cast<std::size_t>(q.cols()), dv = static_cast<std::size_t>(v.cols());
  require_non_empty("q.cols() (head dim)", d);
  require_at_most("q.cols() (head dim)", d, max_dimension);
  require_at_most("v.cols() (value dim)", dv, max_dimension);
  require_at_most("q.rows() (queries)", lq, max_sequence_length);
  require_at_most("k.rows() (keys)", lk, max_sequence_length);
  require_dimension("k.cols() (must equal q.cols())", static_cast<std::size_t>(k.cols()), d);
  require_dimension("v.rows() (must equal k.rows())", static_cast<std::size_t>(v.rows()), lk);
  require_dimension("pattern.rows() (must equal q.rows())", pattern.rows(), lq);
  require_dimension("pattern.cols() (must equal k.rows())", pattern.cols(), lk);
  require_dimension("out.rows() (must equal q.rows())", static_cast<std::size_t>(out.rows()), lq);
  require_dimension("out.cols() (must equal v.cols())", static_cast<std::size_t>(out.cols()), dv);
  if (!options.key_mask.empty())
    require_dimension("options.key_mask.size()", options.key_mask.size(), lk);
  if (!extras.lse.empty()) require_dimension("extras.lse.size()", extras.lse.size(), lq);
  if (!extras.weights.empty())
    require_dimension("extras.weights.size() (pattern.nnz())", extras.weights.size(),
                      pattern.nnz());
  if (lq == 0) return;

  const T scale = options.scale ? *options.scale : T(1) / std::sqrt(static_cast<T>(d));
  const std::size_t block = detail::sparse_query_block(options.query_block, lq);
  const bool* mask = options.key_mask.empty() ? nullptr : options.key_mask.data();
  const auto row_ptr = pattern.row_ptr();
  const auto ldk = static_cast<std::size_t>(k.outerStride());
  const auto ldv = static_cast<std::size_t>(v.outerStride());
  const auto ldq = static_cast<std::size_t>(q.outerStride());
  const auto ldo = static_cast<std::size_t>(out.outerStride());

  parallel_for(0, (lq + block - 1) / block, [&](std::size_t task) {
    T* scratch = detail::thread_scratch<T>(std::max<std::size_t>(pattern.max_row_size(), 1));
    const std::size_t i_end = std::min(lq, (task + 1) * block);
    for (std::size_t i = task * block; i < i_end; ++i) {
      const auto row = pattern.row(i);
      const std::size_t n = options.causal ? detail::causal_prefix(row, i, lq, lk) : row.size();
      T* s = extras.weights.empty() ? scratch : extras.weights.data() + row_ptr[i];
      T lse = T(0);
      const auto status = detail::sparse_attention_row(
          q.data() + i * ldq, k.data(), ldk, v.data(), ldv, d, dv, row.data(), n, scale, mask,
          options.check_finite, s, out.data() + i * ldo, lse);
      if (status != detail::sparse_row_status::ok)
        detail::throw_sparse_non_finite<T>(q, k, v, i, row.data(), n);
      if (!extras.weights.empty()) std::fill(s + n, s + row.size(), T(0));
      if (!extras.lse.empty()) extras.lse[i] = lse;
    }
  });
}

/// \brief `sparse_attention` deducing `T` from row-major Eigen arguments (matrices, maps, blocks,
/// refs); `out` may be a temporary map or block.
template <class MQ, class MK, class MV, class MO>
requires detail::eigen_dense_matrix<MQ> && detail::eigen_dense_matrix<MK> &&
    detail::eigen_dense_matrix<MV> && detail::eigen_dense_matrix<MO> &&
    attention_scalar<typename MQ::Scalar> &&
    std::is_same_v<typename MQ::Scalar, typename MK::Scalar> &&
    std::is_same_v<typename MQ::Scalar, typename MV::Scalar> &&
    std::is_same_v<typename MQ::Scalar, typename std::remove_cvref_t<MO>::Scalar>
void sparse_attention(const MQ& q, const MK& k, const MV& v, const sparse_pattern& pattern,
                      MO&& out, const sparse_attention_options<typename MQ::Scalar>& options = {},
                      const sparse_attention_extras<typename MQ::Scalar>& extras = {}) {
  using T = typename MQ::Scalar;
  sparse_attention<T>(matrix_cref<T>(q), matrix_cref<T>(k), matrix_cref<T>(v), pattern,
                      matrix_ref<T>(out), options, extras);
}

/// \brief `sparse_attention` returning a new `[Lq, dv]` matrix.
template <class MQ, class MK, class MV>
requires detail::eigen_dense_matrix<MQ> && detail::eigen_dense_matrix<MK> &&
    detail::eigen_dense_matrix<MV> && attention_scalar<typename MQ::Scalar> &&
    std::is_same_v<typename MQ::Scalar, typename MK::Scalar> &&
    std::is_same_v<typename MQ::Scalar, typename MV::Scalar>
[[nodiscard]] row_matrix<typename MQ::Scalar> sparse_attention(
    const MQ& q, const MK& k, const MV& v, const sparse_pattern& pattern,
    const sparse_attention_options<typename MQ::Scalar>& options = {}) {
  using T = typename MQ::Scalar;
  row_matrix<T> out(q.rows(), v.cols());
  sparse_attention<T>(matrix_cref<T>(q), matrix_cref<T>(k), matrix_cref<T>(v), pattern,
                      matrix_ref<T>(out), options);
  return out;
}

/// \brief Pattern-sparse attention, tensor form: `q [B, H, Lq, d]`, `k [B, Hkv, Lk, d]`,
/// `v [B, Hkv, Lk, dv]` → `out [B, H, Lq, dv]`; the same `pattern` (Lq × Lk) for every batch entry
/// and head; query head h reads key head h / (H / Hkv) (GQA/MQA). `lse` `[B, H, Lq]` is optional.
/// Parallel over batch × heads × query blocks. Cost O(B·H·nnz·(d + dv)).
template <class T>
void sparse_attention(std::type_identity_t<tensor_view<const T, 4>> q,
                      std::type_identity_t<tensor_view<const T, 4>> k,
                      std::type_identity_t<tensor_view<const T, 4>> v,
                      const sparse_pattern& pattern, tensor_view<T, 4> out,
                      const std::type_identity_t<sparse_attention_options<T>>& options = {},
                      std::type_identity_t<tensor_view<T, 3>> lse = {}) {
  const std::size_t B = q.extent(0), H = q.extent(1), Lq = q.extent(2), d = q.extent(3);
  const std::size_t Hkv = k.extent(1), Lk = k.extent(2), dv = v.extent(3);
  require_dimension("k.extent(0) (batch)", k.extent(0), B);
  require_dimension("v.extent(0) (batch)", v.extent(0), B);
  require_dimension("k.extent(3) (key dim)", k.extent(3), d);
  require_dimension("v.extent(1) (kv heads)", v.extent(1), Hkv);
  require_dimension("v.extent(2) (values count, must equal keys count)", v.extent(2), Lk);
  require_dimension("out.extent(0) (batch)", out.extent(0), B);
  require_dimension("out.extent(1) (heads)", out.extent(1), H);
  require_dimension("out.extent(2) (queries)", out.extent(2), Lq);
  require_dimension("out.extent(3) (value dim)", out.extent(3), dv);
  if (Hkv == 0 || H % Hkv != 0) {
    std::ostringstream os;
    os << "dimension mismatch: k.extent(1) (kv heads) is " << Hkv
       << ", expected a divisor of the query heads " << H;
    throw dimension_mismatch(os.str());
  }
  require_non_empty("q.extent(3) (head dim)", d);
  require_at_most("q.extent(3) (head dim)", d, max_dimension);
  require_at_most("v.extent(3) (value dim)", dv, max_dimension);
  require_at_most("q.extent(2) (queries)", Lq, max_sequence_length);
  require_at_most("k.extent(2) (keys)", Lk, max_sequence_length);
  require_dimension("pattern.rows() (must equal q.extent(2))", pattern.rows(), Lq);
  require_dimension("pattern.cols() (must equal k.extent(2))", pattern.cols(), Lk);
  for (const auto& [name, stride] : {std::pair<const char*, std::ptrdiff_t>{"q", q.stride(3)},
                                     {"k", k.stride(3)},
                                     {"v", v.stride(3)},
                                     {"out", out.stride(3)}}) {
    if (stride != 1) {
      throw invalid_argument(std::string("invalid argument: ") + name +
                             " must have unit stride in its last dimension");
    }
  }
  for (const auto& [name, stride] :
       {std::pair<const char*, std::ptrdiff_t>{"k", k.stride(2)}, {"v", v.stride(2)}}) {
    if (stride < 0) {
      throw invalid_argument(std::string("invalid argument: ") + name +
                             " must have a non-negative row stride");
    }
  }
  const std::size_t mask_size = options.key_mask.size();
  if (mask_size != 0 && mask_size != Lk && mask_size != B * Lk) {
    std::ostringstream os;
    os << "dimension mismatch: options.key_mask.size() is " << mask_size
       << ", expected 0, Lk = " << Lk << " or B*Lk = " << B * Lk;
    throw dimension_mismatch(os.str());
  }
  if (!lse.absent()) {
    require_dimension("lse.extent(0) (batch)", lse.extent(0), B);
    require_dimension("lse.extent(1) (heads)", lse.extent(1), H);
    require_dimension("lse.extent(2) (queries)", lse.extent(2), Lq);
  }
  if (B == 0 || H == 0 || Lq == 0) return;

  const T scale = options.scale ? *options.scale : T(1) / std::sqrt(static_cast<T>(d));
  const std::size_t group = H / Hkv;
  const std::size_t block = detail::sparse_query_block(options.query_block, B * H * Lq);
  const std::size_t blocks_per_head = (Lq + block - 1) / block;
  parallel_for(0, B * H * blocks_per_head, [&](std::size_t task) {
    const std::size_t b = task / (H * blocks_per_head);
    const std::size_t h = (task / blocks_per_head) % H;
    const std::size_t i0 = (task % blocks_per_head) * block;
    const std::size_t hk = h / group;
    const bool* mask =
        mask_size == 0 ? nullptr : options.key_mask.data() + (mask_size == Lk ? 0 : b * Lk);
    T* scratch = detail::thread_scratch<T>(std::max<std::size_t>(pattern.max_row_size(), 1));
    const T* kb = k.row(b, hk, 0);
    const T* vb = v.row(b, hk, 0);
    const auto ldk = static_cast<std::size_t>(k.stride(2));
    const auto ldv = static_cast<std::size_t>(v.stride(2));
    for (std::size_t i = i0; i < std::min(Lq, i0 + block); ++i) {
      const auto row = pattern.row(i);
      const std::size_t n = options.causal ? detail::causal_prefix(row, i, Lq, Lk) : row.size();
      T row_lse = T(0);
      const auto status = detail::sparse_attention_row(
          q.row(b, h, i), kb, ldk, vb, ldv, d, dv, row.data(), n, scale, mask, options.check_finite,
          scratch, out.row(b, h, i), row_lse);
      if (status != detail::sparse_row_status::ok)
        detail::throw_sparse_non_finite_4d<T>(q, k, v, b, h, hk, i, row.data(), n);
      if (!lse.absent()) lse(b, h, i) = row_lse;
    }
  });
}

}  // namespace ruvector::attention
// ---- end ruvector/attention/sparse/sparse_attention.hpp ----

namespace ruvector::attention {

/// \brief Configuration of `local_global_attention`.
struct local_global_config {
  /// `position` value meaning "the last token of the sequence" (n − 1).
  static constexpr std::size_t last_position = std::numeric_limits<std::size_t>::max();

  /// Query/key dimension d (> 0).
  std::size_t dim = 0;
  /// One-sided window radius w: a token sees keys with |i − j| ≤ w.
  std::size_t window = 0;
  /// The first `num_global` tokens are global (clamped to the sequence length).
  std::size_t num_global = 0;
  /// Further global token positions (any order; duplicates ignored; each must be < n per call).
  std::vector<std::size_t> global_tokens{};
  /// Only keys j ≤ i (for global queries too).
  bool causal = false;
  /// Logit scale; defaults to 1/√dim.
  std::optional<double> scale{};
  /// Query position used by `compute` / `compute_with_mask`; unset = they throw (use
  /// `compute_at`). `last_position` = n − 1.
  std::optional<std::size_t> position{};
  /// Throw `non_finite_input` on NaN/Inf in the values read.
  bool check_finite = true;
};

/// \brief Longformer-style local + global attention; see the file comment.
template <class T = float>
class local_global_attention {
 public:
  using value_type = T;

  /// \brief Validates `config` (dim > 0) and normalises `global_tokens` (sorted, unique).
  explicit local_global_attention(local_global_config config) : cfg_(std::move(config)) {
    require_config(cfg_.dim > 0, "local_global_attention: dim must be > 0");
    require_at_most("local_global_config::dim", cfg_.dim, max_dimension);
    if (cfg_.scale) {
      require_config(std::isfinite(*cfg_.scale), "local_global_attention: scale must be finite");
    }
    std::sort(cfg_.global_tokens.begin(), cfg_.global_tokens.end());
    cfg_.global_tokens.erase(std::unique(cfg_.global_tokens.begin(), cfg_.global_tokens.end()),
                             cfg_.global_tokens.end());
    scale_ = cfg_.scale ? static_cast<T>(*cfg_.scale) : T(1) / std::sqrt(static_cast<T>(cfg_.dim));
  }

  /// \brief Window radius `window`, the first `num_global` tokens global, non-causal.
  local_global_attention(std::size_t dim, std::size_t window, std::size_t num_global)
      : local_global_attention(
            local_global_config{.dim = dim, .window = window, .num_global = num_global}) {}

  [[nodiscard]] const local_global_config& config() const noexcept { return cfg_; }
  [[nodiscard]] std::size_t dim() const noexcept { return cfg_.dim; }
  [[nodiscard]] T scale() const noexcept { return scale_; }

  /// \brief The sorted global positions G for a sequence of `n` tokens. Throws `invalid_argument`
  /// naming the first `global_tokens` entry that is `>= n`.
  [[nodiscard]] std::vector<std::size_t> global_positions(std::size_t n) const {
    std::vector<std::size_t> g;
    const std::size_t first = std::min(cfg_.num_global, n);
    g.reserve(first + cfg_.global_tokens.size());
    for (std::size_t t = 0; t < first; ++t) g.push_back(t);
    for (std::size_t t = 0; t < cfg_.global_tokens.size(); ++t) {
      const std::size_t p = cfg_.global_tokens[t];
      if (p >= n) {
        std::ostringstream os;
        os << "invalid argument: local_global_config::global_tokens (sorted)[" << t << "] = " << p
           << " is out of range for a sequence of " << n << " tokens (expected < " << n << ")";
        throw invalid_argument(os.str());
      }
      if (p >= first) g.push_back(p);
    }
    return g;
  }

  /// \brief The `lq × lk` attention pattern (window ∪ global; queries at positions i + lk − lq).
  [[nodiscard]] sparse_pattern pattern(std::size_t lq, std::size_t lk) const {
    require_queries_fit(lq, lk);
    return make_local_global_pattern(lq, lk, cfg_.window, global_positions(lk), cfg_.causal);
  }

  /// \brief The `n × n` self-attention pattern.
  [[nodiscard]] sparse_pattern pattern(std::size_t n) const { return pattern(n, n); }

  /// \brief The sorted keys attended by the query at `position` of `n` tokens (`last_position`
  /// = n − 1). O(w + g) (O(n) for a global position).
  [[nodiscard]] std::vector<std::size_t> keys_for(std::size_t position, std::size_t n) const {
    const std::size_t p = resolve_position(position, n);
    const auto g = global_positions(n);
    std::vector<std::size_t> keys;
    const std::size_t limit = cfg_.causal ? p + 1 : n;  // keys j < limit
    if (std::binary_search(g.begin(), g.end(), p)) {
      keys.resize(limit);
      for (std::size_t j = 0; j < limit; ++j) keys[j] = j;
      return keys;
    }
    const std::size_t lo = p >= cfg_.window ? p - cfg_.window : 0;
    const std::size_t hi = cfg_.causal ? p : p + std::min(cfg_.window, n - 1 - p);  // inclusive
    keys.reserve(hi - lo + 1 + g.size());
    auto it = g.begin();
    for (; it != g.end() && *it < lo; ++it) keys.push_back(*it);
    for (std::size_t j = lo; j <= hi; ++j) keys.push_back(j);
    while (it != g.end() && *it <= hi) ++it;  // already inside the window
    for (; it != g.end() && *it < limit; ++it) keys.push_back(*it);
    return keys;
  }

  // ---- whole sequence ------------------------------------------------------------------------

  /// \brief Whole-sequence forward: `q [Lq, d]`, `k [Lk, d]`, `v [Lk, dv]` → `out [Lq, dv]`
  /// (Lq ≤ Lk; usually Lq = Lk = n). Optional `lse [Lq]` and key mask `[Lk]` (`true` = visible).
  void forward(const matrix_cref<T>& q, const matrix_cref<T>& k, const matrix_cref<T>& v,
               matrix_ref<T> out, std::span<T> lse = {},
               std::span<const bool> key_mask = {}) const {
    require_dimension("q.cols() (dim)", static_cast<std::size_t>(q.cols()), cfg_.dim);
    const auto p = pattern(static_cast<std::size_t>(q.rows()), static_cast<std::size_t>(k.rows()));
    sparse_attention<T>(q, k, v, p, out, options(key_mask), sparse_attention_extras<T>{.lse = lse});
  }

  /// \brief Whole-sequence forward returning a new `[Lq, dv]` matrix.
  [[nodiscard]] row_matrix<T> forward(const matrix_cref<T>& q, const matrix_cref<T>& k,
                                      const matrix_cref<T>& v) const {
    row_matrix<T> out(q.rows(), v.cols());
    forward(q, k, v, out);
    return out;
  }

  /// \brief Batched forward over `[B, H, Lq, d]` × `[B, Hkv, Lk, d]` × `[B, Hkv, Lk, dv]` →
  /// `out [B, H, Lq, dv]` (one pattern for all batch entries and heads; GQA as in `sdpa`).
  /// `key_mask` is empty, `[Lk]` or `[B·Lk]`; `lse` `[B, H, Lq]` is optional.
  void forward(std::type_identity_t<tensor_view<const T, 4>> q,
               std::type_identity_t<tensor_view<const T, 4>> k,
               std::type_identity_t<tensor_view<const T, 4>> v, tensor_view<T, 4> out,
               tensor_view<T, 3> lse = {}, std::span<const bool> key_mask = {}) const {
    require_dimension("q.extent(3) (dim)", q.extent(3), cfg_.dim);
    const auto p = pattern(q.extent(2), k.extent(2));
    sparse_attention<T>(q, k, v, p, out, options(key_mask), lse);
  }

  // ---- single query --------------------------------------------------------------------------

  /// \brief One query at sequence `position` (`last_position` = n − 1) over `keys [n, d]`,
  /// `values [n, dv]`: writes `out [dv]`, returns the log-sum-exp. O((w + g)·d).
  T compute_at_into(std::size_t position, std::span<const T> query, const matrix_cref<T>& keys,
                    const matrix_cref<T>& values, std::span<T> out,
                    std::span<const bool> key_mask = {}) const {
    const auto n = static_cast<std::size_t>(keys.rows());
    const auto dv = static_cast<std::size_t>(values.cols());
    require_dimension("query.size()", query.size(), cfg_.dim);
    require_non_empty("keys", n);
    require_at_most("keys.rows()", n, max_sequence_length);
    require_dimension("keys.cols()", static_cast<std::size_t>(keys.cols()), cfg_.dim);
    require_dimension("values.rows() (must equal keys.rows())",
                      static_cast<std::size_t>(values.rows()), n);
    require_dimension("out.size() (must equal values.cols())", out.size(), dv);
    if (!key_mask.empty()) require_dimension("key_mask.size()", key_mask.size(), n);
    const auto idx = keys_for(position, n);
    T* scores = detail::thread_scratch<T>(std::max<std::size_t>(idx.size(), 1));
    T lse = T(0);
    const auto status = detail::sparse_attention_row(
        query.data(), keys.data(), static_cast<std::size_t>(keys.outerStride()), values.data(),
        static_cast<std::size_t>(values.outerStride()), cfg_.dim, dv, idx.data(), idx.size(),
        scale_, key_mask.empty() ? nullptr : key_mask.data(), cfg_.check_finite, scores, out.data(),
        lse);
    if (status != detail::sparse_row_status::ok) diagnose(query, keys, values, idx);
    return lse;
  }

  /// \brief One query at sequence `position` (`last_position` = n − 1); optional key mask.
  [[nodiscard]] std::vector<T> compute_at(std::size_t position, std::span<const T> query,
                                          const matrix_cref<T>& keys, const matrix_cref<T>& values,
                                          std::span<const bool> key_mask = {}) const {
    std::vector<T> out(static_cast<std::size_t>(values.cols()));
    compute_at_into(position, query, keys, values, out, key_mask);
    return out;
  }

  /// \brief The `attention_mechanism` entry point: one query at `config().position`. Throws
  /// `invalid_config` when no position is configured (nothing is assumed; see `compute_at`).
  [[nodiscard]] std::vector<T> compute(std::span<const T> query, const matrix_cref<T>& keys,
                                       const matrix_cref<T>& values) const {
    return compute_at(configured_position(), query, keys, values);
  }

  /// \brief `compute` with a key mask (`true` = visible).
  [[nodiscard]] std::vector<T> compute_with_mask(std::span<const T> query,
                                                 const matrix_cref<T>& keys,
                                                 const matrix_cref<T>& values,
                                                 std::span<const bool> key_mask) const {
    require_dimension("key_mask.size()", key_mask.size(), static_cast<std::size_t>(keys.rows()));
    return compute_at(configured_position(), query, keys, values, key_mask);
  }

  /// \brief Seeds-shaped adapter: keys and values as vectors of vectors (copied once).
  [[nodiscard]] std::vector<T> compute_at(std::size_t position, const std::vector<T>& query,
                                          const std::vector<std::vector<T>>& keys,
                                          const std::vector<std::vector<T>>& values) const {
    return compute_at(position, std::span<const T>(query), to_matrix(keys, "keys"),
                      to_matrix(values, "values"));
  }

  /// \brief Seeds-shaped adapter of `compute` (needs `config().position`).
  [[nodiscard]] std::vector<T> compute(const std::vector<T>& query,
                                       const std::vector<std::vector<T>>& keys,
                                       const std::vector<std::vector<T>>& values) const {
    return compute_at(configured_position(), query, keys, values);
  }

 private:
  [[nodiscard]] std::size_t configured_position() const {
    if (!cfg_.position) {
      throw invalid_config(
          "invalid config: local_global_attention::compute needs the query's position in the "
          "sequence: set local_global_config::position (local_global_config::last_position for "
          "the last token) or call compute_at(position, query, keys, values)");
    }
    return *cfg_.position;
  }

  static std::size_t resolve_position(std::size_t position, std::size_t n) {
    require_non_empty("sequence (keys)", n);
    if (position == local_global_config::last_position) return n - 1;
    if (position >= n) {
      std::ostringstream os;
      os << "invalid argument: position = " << position << " is out of range for a sequence of "
         << n << " tokens (expected < " << n << ")";
      throw invalid_argument(os.str());
    }
    return position;
  }

  static void require_queries_fit(std::size_t lq, std::size_t lk) {
    if (lq > lk) {
      std::ostringstream os;
      os << "dimension mismatch: q.rows() (queries) is " << lq
         << ", expected at most k.rows() = " << lk
         << " (queries are the last Lq of the Lk positions)";
      throw dimension_mismatch(os.str());
    }
  }

  [[nodiscard]] sparse_attention_options<T> options(std::span<const bool> key_mask) const {
    sparse_attention_options<T> o;
    o.scale = scale_;
    o.key_mask = key_mask;
    o.check_finite = cfg_.check_finite;
    return o;  // causality is already in the pattern
  }

  [[noreturn]] static void diagnose(std::span<const T> query, const matrix_cref<T>& keys,
                                    const matrix_cref<T>& values,
                                    const std::vector<std::size_t>& idx) {
    require_finite<T>("query", query);
    for (const matrix_cref<T>* m : {&keys, &values}) {
      for (const std::size_t j : idx) {
        for (Eigen::Index c = 0; c < m->cols(); ++c) {
          const T x = (*m)(static_cast<Eigen::Index>(j), c);
          if (!std::isfinite(x))
            detail::throw_non_finite(m == &keys ? "keys" : "values", j, static_cast<std::size_t>(c),
                                     x);
        }
      }
    }
    throw non_finite_input(
        "non-finite input: an attention score or output overflowed although query, keys and "
        "values are finite (reduce the input magnitude or the scale)");
  }

  local_global_config cfg_;
  T scale_;
};

}  // namespace ruvector::attention
// ---- end ruvector/attention/sparse/local_global.hpp ----
// ---- begin ruvector/attention/sparse/partial.hpp ----
/// \file sparse/partial.hpp
/// \brief Exact merging of partial attention results, and ring attention built on it.
///
/// A partial result over a key subset K_p is (o_p, lse_p) with o_p the normalised attention output
/// over K_p and lse_p = log Σ_{j∈K_p} exp(s_j). The result over the disjoint union ∪K_p is
///
///     lse = log Σ_p exp(lse_p),        o = Σ_p exp(lse_p − lse) · o_p
///
/// (Milakov & Gimelshein 2018; flash-decoding; Liu et al. 2023 "Ring Attention"). The merge is
/// exact, associative and commutative up to rounding; an empty partial (lse = −inf, every key
/// hidden) is its identity. The Rust original merges with the partial LSE as the running max and
/// exp(LSE) as the sum, which double-counts (error up to 0.47; see the source study).
///
/// Ring attention (Liu et al. 2023): D devices each hold one query shard and one key/value shard;
/// in D steps every device attends its queries to the shard currently passing through (flash
/// attention, returning its log-sum-exp) and merges. Here the devices are simulated in one process
/// (each step runs the devices with `parallel_for`); the result equals attention over the whole
/// sequence. Causal masking uses global positions (bottom-right aligned over the full lengths).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <vector>


namespace ruvector::attention {

/// \brief Attention of one query over a subset of the keys: the normalised output and the
/// log-sum-exp of the subset's scores (−inf when every key of the subset is hidden).
template <class T>
struct attention_partial {
  std::vector<T> output;
  T lse = -std::numeric_limits<T>::infinity();
};

/// \brief Attention of `query` over `keys`/`values` (one subset of a larger key set), returned
/// as a partial ready to merge. `key_mask` (`true` = visible) may be empty.
template <class T>
[[nodiscard]] attention_partial<T> partial_attention(std::span<const T> query,
                                                     const matrix_cref<T>& keys,
                                                     const matrix_cref<T>& values,
                                                     std::span<const bool> key_mask = {},
                                                     std::optional<T> scale = std::nullopt) {
  const flash_attention<T> att(query.size(), 0, false, scale);
  attention_partial<T> p;
  p.output.resize(static_cast<std::size_t>(values.cols()));
  p.lse = att.compute_into(query, keys, values, p.output, key_mask);
  return p;
}

/// \brief Merges `part` into `acc` (both over disjoint key subsets). Exact; see the file comment.
template <class T>
void merge_into(attention_partial<T>& acc, const attention_partial<T>& part) {
  require_dimension("part.output.size()", part.output.size(), acc.output.size());
  constexpr T neg_inf = -std::numeric_limits<T>::infinity();
  if (!(part.lse > neg_inf)) return;  // empty partial: identity
  if (!(acc.lse > neg_inf)) {
    acc = part;
    return;
  }
  const T m = std::max(acc.lse, part.lse);
  const T wa = std::exp(acc.lse - m), wb = std::exp(part.lse - m);
  const T total = wa + wb;  // in [1, 2]: no overflow, no cancellation
  for (std::size_t c = 0; c < acc.output.size(); ++c) {
    acc.output[c] = (wa * acc.output[c] + wb * part.output[c]) / total;
  }
  acc.lse = m + std::log(total);
}

/// \brief Merges any number of partials over disjoint key subsets into the result over their
/// union. All outputs must have the same size; an empty span gives an empty partial.
template <class T>
[[nodiscard]] attention_partial<T> merge_partials(std::span<const attention_partial<T>> parts) {
  if (parts.empty()) return {};
  attention_partial<T> acc;
  acc.output.assign(parts.front().output.size(), T(0));
  for (std::size_t p = 0; p < parts.size(); ++p) {
    require_dimension(std::string("parts[").append(std::to_string(p)).append("].output.size()"),
                      parts[p].output.size(), acc.output.size());
    merge_into(acc, parts[p]);
  }
  return acc;
}

/// \brief Tensor form of the merge: rows of `out_a [.., dv]` with `lse_a` become the merge with
/// `out_b`/`lse_b` (same shapes). Used by ring attention; exposed for distributed callers.
template <class T>
void merge_attention_rows(T* out_a, T* lse_a, const T* out_b, const T* lse_b, std::size_t rows,
                          std::size_t dv) noexcept {
  constexpr T neg_inf = -std::numeric_limits<T>::infinity();
  for (std::size_t r = 0; r < rows; ++r) {
    const T la = lse_a[r], lb = lse_b[r];
    T* oa = out_a + r * dv;
    const T* ob = out_b + r * dv;
    if (!(lb > neg_inf)) continue;
    if (!(la > neg_inf)) {
      std::copy(ob, ob + dv, oa);
      lse_a[r] = lb;
      continue;
    }
    const T m = std::max(la, lb);
    const T wa = std::exp(la - m), wb = std::exp(lb - m), total = wa + wb;
    for (std::size_t c = 0; c < dv; ++c) oa[c] = (wa * oa[c] + wb * ob[c]) / total;
    lse_a[r] = m + std::log(total);
  }
}

/// \brief Result of `ring_attention`: one output block and one log-sum-exp vector per shard.
template <class T>
struct ring_attention_result {
  std::vector<row_matrix<T>> outputs;  ///< outputs[p] has the rows of query shard p
  std::vector<std::vector<T>> lse;     ///< lse[p][i] for row i of query shard p
};

/// \brief Ring attention over D simulated devices. Shard p holds `queries[p] [Lq_p, d]`,
/// `keys[p] [Lk_p, d]` and `values[p] [Lk_p, dv]`; the result equals attention of the
/// concatenated queries over the concatenated keys (causal: bottom-right aligned over the full
/// lengths, using global positions).
template <class T>
[[nodiscard]] ring_attention_result<T> ring_attention(const std::vector<row_matrix<T>>& queries,
                                                      const std::vector<row_matrix<T>>& keys,
                                                      const std::vector<row_matrix<T>>& values,
                                                      bool causal = false,
                                                      std::optional<T> scale = std::nullopt) {
  const std::size_t D = queries.size();
  require_non_empty("queries (shards)", D);
  require_dimension("keys.size() (shards)", keys.size(), D);
  require_dimension("values.size() (shards)", values.size(), D);
  const std::size_t d = static_cast<std::size_t>(queries[0].cols());
  const std::size_t dv = static_cast<std::size_t>(values[0].cols());
  std::vector<std::size_t> q_off(D + 1, 0), k_off(D + 1, 0);
  for (std::size_t p = 0; p < D; ++p) {
    // Names are appended piecewise: `"literal" + std::string` trips GCC 12's -Wrestrict at -O3.
    const auto name = [p](const char* arg, const char* member) {
      std::string s(arg);
      s.append("[").append(std::to_string(p)).append("]").append(member);
      return s;
    };
    require_dimension(name("queries", ".cols()"), static_cast<std::size_t>(queries[p].cols()), d);
    require_dimension(name("keys", ".cols()"), static_cast<std::size_t>(keys[p].cols()), d);
    require_dimension(name("values", ".cols()"), static_cast<std::size_t>(values[p].cols()), dv);
    require_dimension(name("values", ".rows() (must equal the keys shard's rows)"),
                      static_cast<std::size_t>(values[p].rows()),
                      static_cast<std::size_t>(keys[p].rows()));
    q_off[p + 1] = q_off[p] + static_cast<std::size_t>(queries[p].rows());
    k_off[p + 1] = k_off[p] + static_cast<std::size_t>(keys[p].rows());
  }
  const auto sd = [](std::size_t x) { return static_cast<std::ptrdiff_t>(x); };
  const T sc = scale ? *scale : T(1) / std::sqrt(static_cast<T>(d));
  constexpr T neg_inf = -std::numeric_limits<T>::infinity();

  ring_attention_result<T> r;
  r.outputs.resize(D);
  r.lse.resize(D);
  for (std::size_t p = 0; p < D; ++p) {
    r.outputs[p] = row_matrix<T>::Zero(queries[p].rows(), static_cast<Eigen::Index>(dv));
    r.lse[p].assign(static_cast<std::size_t>(queries[p].rows()), neg_inf);
  }
  // Step s: device p holds the key/value shard (p − s) mod D, as if passed around the ring.
  for (std::size_t step = 0; step < D; ++step) {
    parallel_for(0, D, [&](std::size_t p) {
      const std::size_t src = (p + D - step) % D;
      const std::size_t lq = static_cast<std::size_t>(queries[p].rows());
      const std::size_t lk = static_cast<std::size_t>(keys[src].rows());
      if (lq == 0 || lk == 0) return;
      row_matrix<T> part(static_cast<Eigen::Index>(lq), static_cast<Eigen::Index>(dv));
      std::vector<T> part_lse(lq);
      const auto qv = detail::as_tensor4<T>(queries[p]);
      const auto kv = detail::as_tensor4<T>(keys[src]);
      const auto vv = detail::as_tensor4<T>(values[src]);
      const tensor_view<T, 4> ov(part.data(), {1, 1, lq, dv});
      const tensor_view<T, 3> lv(part_lse.data(), {1, 1, lq});
      const detail::attention_shape shape{1, 1, 1, lq, lk, d, dv};
      // Global causal diagonal: key J visible to query I iff J <= I + (Lk_total − Lq_total).
      const detail::causal_offset diag =
          causal
              ? detail::causal_offset(sd(q_off[p]) - sd(k_off[src]) + sd(k_off[D]) - sd(q_off[D]))
              : std::nullopt;
      detail::flash_forward<T>(qv, kv, vv, ov, lv, shape, sc, mask_spec<T>{}, diag, true, {});
      merge_attention_rows(r.outputs[p].data(), r.lse[p].data(), part.data(), part_lse.data(), lq,
                           dv);
    });
  }
  return r;
}

}  // namespace ruvector::attention
// ---- end ruvector/attention/sparse/partial.hpp ----
// ---- end ruvector/attention/sparse.hpp ----
// ---- begin ruvector/attention/standard.hpp ----
/// \file standard.hpp
/// \brief Entry header of the standard family: scaled dot-product and multi-head attention.

// ---- begin ruvector/attention/standard/multi_head.hpp ----
/// \file standard/multi_head.hpp
/// \brief Multi-head attention (Vaswani et al. 2017, §3.2.2) with grouped-query / multi-query
/// head sharing (Ainslie et al. 2023; Shazeer 2019) and cross-attention:
///
///     Q = X_q W_qᵀ + b_q,  K = X_k W_kᵀ + b_k,  V = X_v W_vᵀ + b_v          (PyTorch Linear
///     layout) head_h = softmax(Q_h K_{g(h)}ᵀ / √d_h) V_{g(h)},   g(h) = h / (H / H_kv) out =
///     concat_h(head_h) W_oᵀ + b_o
///
/// Weights have shape `[out_features, in_features]`: W_q `[E, E]`, W_k `[H_kv·d_h, kdim]`, W_v
/// `[H_kv·d_h, vdim]`, W_o `[E, E]` with d_h = E / H. They are Xavier-uniform initialised from a
/// seed (U(±√(6/(fan_in + fan_out))), Glorot & Bengio 2010) with zero biases, or set by the caller.
///
/// `projection_mode::split_only` is the seeds' `MultiHeadAttention`: no projections at all; head h
/// is the contiguous slice [h·d_h, (h+1)·d_h) of each query/key/value vector and the heads'
/// outputs are concatenated.
///
/// Heads are split by strides, never copied: the projected `[L, H·d_h]` matrices are viewed as
/// `[B, H, L, d_h]` tensors and handed to `sdpa` (standard/scaled_dot_product.hpp), whose masking
/// and numerics conventions apply unchanged.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <vector>

// ---- begin ruvector/attention/standard/scaled_dot_product.hpp ----
/// \file standard/scaled_dot_product.hpp
/// \brief Scaled dot-product attention (Vaswani et al. 2017, "Attention Is All You Need"):
///
///     out_i = Σ_j softmax_j(s_ij) · v_j,   s_ij = scale · (q_i · k_j) + bias_ij,   scale = 1/√d
///
/// at both API levels:
/// - Tensor API: `sdpa(q, k, v, out, options, extras)` over strided
///   `[B, H, Lq, d] × [B, Hkv, Lk, d] × [B, Hkv, Lk, dv] → [B, H, Lq, dv]`. Query head h reads key
///   head h / (H / Hkv), which is multi-query (Hkv = 1) and grouped-query attention (1 < Hkv < H).
/// - Vector API: class `scaled_dot_product_attention<T>` — one query over a key matrix (rows =
/// keys).
///
/// Conventions (DESIGN.md §4): softmax is max-subtracted and the log-sum-exp of each row can be
/// returned; causal masking is bottom-right aligned (query i sees keys j <= i + Lk − Lq); a row
/// that sees no key outputs zeros with all-zero weights and log-sum-exp −inf; a key mask holds
/// `true` for visible keys. With `check_finite` (the default) NaN/±Inf in q, k or v throws
/// `non_finite_input` naming the first bad element. The check costs nothing on the happy path:
/// every score and output is finite iff the inputs are (0·Inf = NaN propagates through the
/// products), so inputs are scanned only after a non-finite score or output is seen.
///
/// Dense products use Eigen's GEMM on blocks of 64 queries (the score block is materialised per
/// block, never the whole [Lq, Lk] matrix for all heads); the single-query path uses the xsimd
/// `row_dots` / `weighted_row_sum` kernels. Work is spread over batch × heads × query blocks with
/// `parallel_for`.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>


namespace ruvector::attention {

/// \brief Options of one tensor-API attention call.
template <class T>
struct sdpa_options {
  /// Logit scale; defaults to 1/√d.
  std::optional<T> scale{};
  /// Key mask, causal flag and additive bias (see core/mask.hpp).
  mask_spec<T> mask{};
  /// Throw `non_finite_input` on NaN/Inf in q, k, v (and NaN/+Inf in the bias).
  bool check_finite = true;
  /// Queries per block (rows of the materialised score block); 0 = automatic.
  std::size_t query_block = 0;
};

/// \brief Optional extra outputs of a tensor-API attention call (absent views are skipped).
template <class T>
struct sdpa_extras {
  /// `[B, H, Lq, Lk]` attention weights (zeros for hidden keys).
  tensor_view<T, 4> weights{};
  /// `[B, H, Lq]` log Σ_j exp(s_ij) per query row (−inf for a row that sees no key).
  tensor_view<T, 3> lse{};
};

/// \brief Batched scaled dot-product attention (tensor API); see the file comment.
/// \tparam T float or double.
/// \param q `[B, H, Lq, d]`, \param k `[B, Hkv, Lk, d]`, \param v `[B, Hkv, Lk, dv]`,
/// \param out `[B, H, Lq, dv]` (written; must not alias the inputs). `T` is deduced from `out`,
/// so mutable input views convert implicitly.
template <class T>
void sdpa(std::type_identity_t<tensor_view<const T, 4>> q,
          std::type_identity_t<tensor_view<const T, 4>> k,
          std::type_identity_t<tensor_view<const T, 4>> v, tensor_view<T, 4> out,
          const std::type_identity_t<sdpa_options<T>>& options = {},
          const std::type_identity_t<sdpa_extras<T>>& extras = {}) {
  const detail::attention_shape shape = detail::validate_attention_args<T>(
      q, k, v, out, options.mask, options.check_finite, extras.weights, extras.lse);
  const std::size_t B = shape.B, H = shape.H, Hkv = shape.Hkv, Lq = shape.Lq, Lk = shape.Lk;
  const std::size_t d = shape.d, dv = shape.dv;
  const auto& mask = options.mask;

  // ---- compute ------------------------------------------------------------------------------
  if (B == 0 || H == 0 || Lq == 0 || dv == 0) return;
  const T scale = options.scale ? *options.scale : T(1) / std::sqrt(static_cast<T>(d));
  const std::size_t group = H / Hkv;
  const std::size_t block =
      std::min(options.query_block ? options.query_block : std::size_t{64}, Lq);  // Lq > 0 here
  const std::size_t blocks_per_head = (Lq + block - 1) / block;
  using Stride = Eigen::Stride<Eigen::Dynamic, 1>;
  using CMap = Eigen::Map<const row_matrix<T>, 0, Stride>;
  using MMap = Eigen::Map<row_matrix<T>, 0, Stride>;
  const auto idx = [](std::size_t x) { return static_cast<Eigen::Index>(x); };

  parallel_for(0, B * H * blocks_per_head, [&](std::size_t task) {
    const std::size_t b = task / (H * blocks_per_head);
    const std::size_t h = (task / blocks_per_head) % H;
    const std::size_t i0 = (task % blocks_per_head) * block;
    const std::size_t rows = std::min(block, Lq - i0);
    const std::size_t hk = h / group;
    const bool* key_mask = mask.key_mask.absent() ? nullptr : mask.key_mask.row(b);

    T* scores = detail::thread_scratch<T>(rows * std::max<std::size_t>(Lk, 1));
    MMap s(scores, idx(rows), idx(Lk), Stride(idx(Lk), 1));
    const CMap qb(q.row(b, h, i0), idx(rows), idx(d), Stride(q.stride(2), 1));
    const CMap kb(k.row(b, hk, 0), idx(Lk), idx(d), Stride(k.stride(2), 1));
    const CMap vb(v.row(b, hk, 0), idx(Lk), idx(dv), Stride(v.stride(2), 1));
    MMap ob(out.row(b, h, i0), idx(rows), idx(dv), Stride(out.stride(2), 1));
    if (Lk > 0)
      s.noalias() = scale * (qb * kb.transpose());  // scalar on the left: folded into the GEMM

    for (std::size_t r = 0; r < rows; ++r) {
      const std::size_t i = i0 + r;
      T* row = scores + r * Lk;
      if (options.check_finite && !kernels::all_finite(row, Lk)) {
        detail::throw_non_finite_scores(q, k, v);
      }
      if (!mask.bias.absent()) {
        const T* bias_row =
            mask.bias.row(mask.bias.extent(0) == 1 ? 0 : b, mask.bias.extent(1) == 1 ? 0 : h, i);
        const std::ptrdiff_t bs = mask.bias.stride(3);
        for (std::size_t j = 0; j < Lk; ++j)
          row[j] += bias_row[static_cast<std::ptrdiff_t>(j) * bs];
      }
      if (key_mask) {
        for (std::size_t j = 0; j < Lk; ++j)
          if (!key_mask[static_cast<std::ptrdiff_t>(j) * mask.key_mask.stride(1)])
            row[j] = -std::numeric_limits<T>::infinity();
      }
      const std::size_t visible = mask.causal ? causal_visible_keys(i, Lq, Lk) : Lk;
      for (std::size_t j = visible; j < Lk; ++j) row[j] = T(0);
      const T lse = kernels::softmax(row, visible);
      if (!extras.lse.absent()) extras.lse(b, h, i) = lse;
      if (!extras.weights.absent()) {
        T* w = extras.weights.row(b, h, i);
        const std::ptrdiff_t ws = extras.weights.stride(3);
        for (std::size_t j = 0; j < Lk; ++j) w[static_cast<std::ptrdiff_t>(j) * ws] = row[j];
      }
    }
    // The product goes through an aligned scratch block, not straight into `out`: Eigen's
    // kernels peel differently for differently aligned destinations, and results must not depend
    // on where the caller's buffer happens to sit.
    MMap o_tmp(detail::thread_scratch<T, 1>(rows * dv), idx(rows), idx(dv), Stride(idx(dv), 1));
    if (Lk > 0) {
      o_tmp.noalias() = s * vb;
    } else {
      o_tmp.setZero();
    }
    ob = o_tmp;
    if (options.check_finite) {
      for (std::size_t r = 0; r < rows; ++r) {
        if (!kernels::all_finite(&ob(idx(r), 0), dv)) detail::throw_non_finite_scores(q, k, v);
      }
    }
  });
}

/// \brief The result of a vector-API call that asked for the weights.
template <class T>
struct attention_output {
  std::vector<T> output;   ///< attention output (length dv)
  std::vector<T> weights;  ///< softmax weights over the keys (zeros for hidden keys)
  T lse;                   ///< log Σ_j exp(s_j) over the visible keys (−inf if none)
};

/// \brief Single-query scaled dot-product attention over a key matrix (rows = keys) — the vector
/// API and the seeds' `ScaledDotProductAttention`. Immutable and safe to share across threads.
template <class T = float>
class scaled_dot_product_attention {
 public:
  using value_type = T;

  /// \param dim query/key dimension; \param scale logit scale (default 1/√dim).
  explicit scaled_dot_product_attention(std::size_t dim, std::optional<T> scale = std::nullopt,
                                        bool check_finite = true)
      : dim_(dim),
        scale_(scale ? *scale : T(1) / std::sqrt(static_cast<T>(dim == 0 ? 1 : dim))),
        check_finite_(check_finite) {
    require_config(dim > 0, "scaled_dot_product_attention: dim must be > 0");
    require_at_most("dim", dim, max_dimension);
  }

  [[nodiscard]] std::size_t dim() const noexcept { return dim_; }
  [[nodiscard]] T scale() const noexcept { return scale_; }

  /// \brief Writes softmax(scale·K·q)ᵀV into `out` (size = values.cols()); optionally writes
  /// the weights (size = keys.rows()). Returns the log-sum-exp of the visible scores.
  /// `key_mask` (empty = all visible) holds `true` for visible keys.
  T compute_into(std::span<const T> query, const matrix_cref<T>& keys, const matrix_cref<T>& values,
                 std::span<T> out, std::span<const bool> key_mask = {},
                 std::span<T> weights = {}) const {
    const std::size_t n = static_cast<std::size_t>(keys.rows());
    const std::size_t dv = static_cast<std::size_t>(values.cols());
    require_dimension("query.size()", query.size(), dim_);
    require_non_empty("keys", n);
    require_at_most("keys.rows()", n, max_sequence_length);
    require_dimension("keys.cols()", static_cast<std::size_t>(keys.cols()), dim_);
    require_dimension("values.rows() (must equal keys.rows())",
                      static_cast<std::size_t>(values.rows()), n);
    require_dimension("out.size() (must equal values.cols())", out.size(), dv);
    if (!key_mask.empty()) require_dimension("key_mask.size()", key_mask.size(), n);
    if (!weights.empty()) require_dimension("weights.size()", weights.size(), n);

    T* s = weights.empty() ? detail::thread_scratch<T>(n) : weights.data();
    kernels::row_dots(keys.data(), n, dim_, static_cast<std::size_t>(keys.outerStride()),
                      query.data(), scale_, s);
    if (check_finite_ && !kernels::all_finite(s, n))
      detail::diagnose_vector_inputs<T>(query, keys, values);
    if (!key_mask.empty()) {
      for (std::size_t j = 0; j < n; ++j)
        if (!key_mask[j]) s[j] = -std::numeric_limits<T>::infinity();
    }
    const T lse = kernels::softmax(s, n);
    // Fully masked rows still multiply every value by 0 so NaN/Inf in `values` is detected.
    kernels::weighted_row_sum(s, n, values.data(), dv,
                              static_cast<std::size_t>(values.outerStride()), T(0), out.data());
    if (check_finite_ && !kernels::all_finite(out.data(), dv))
      detail::diagnose_vector_inputs<T>(query, keys, values);
    return lse;
  }

  /// \brief Attention output for one query (the seeds' `compute`).
  [[nodiscard]] std::vector<T> compute(std::span<const T> query, const matrix_cref<T>& keys,
                                       const matrix_cref<T>& values) const {
    std::vector<T> out(static_cast<std::size_t>(values.cols()));
    compute_into(query, keys, values, out);
    return out;
  }

  /// \brief Attention output with a key mask (`true` = visible; the seeds' `compute_with_mask`).
  [[nodiscard]] std::vector<T> compute_with_mask(std::span<const T> query,
                                                 const matrix_cref<T>& keys,
                                                 const matrix_cref<T>& values,
                                                 std::span<const bool> key_mask) const {
    require_dimension("key_mask.size()", key_mask.size(), static_cast<std::size_t>(keys.rows()));
    std::vector<T> out(static_cast<std::size_t>(values.cols()));
    compute_into(query, keys, values, out, key_mask);
    return out;
  }

  /// \brief Output, weights and log-sum-exp in one call.
  [[nodiscard]] attention_output<T> compute_with_weights(
      std::span<const T> query, const matrix_cref<T>& keys, const matrix_cref<T>& values,
      std::span<const bool> key_mask = {}) const {
    attention_output<T> r{std::vector<T>(static_cast<std::size_t>(values.cols())),
                          std::vector<T>(static_cast<std::size_t>(keys.rows())), T(0)};
    r.lse = compute_into(query, keys, values, r.output, key_mask, r.weights);
    return r;
  }

  /// \brief Seeds-shaped adapter: keys and values as vectors of vectors (copied once).
  [[nodiscard]] std::vector<T> compute(const std::vector<T>& query,
                                       const std::vector<std::vector<T>>& keys,
                                       const std::vector<std::vector<T>>& values) const {
    return compute(std::span<const T>(query), to_matrix(keys, "keys"), to_matrix(values, "values"));
  }

  /// \brief Seeds-shaped adapter with a `std::vector<bool>` mask.
  [[nodiscard]] std::vector<T> compute_with_mask(const std::vector<T>& query,
                                                 const std::vector<std::vector<T>>& keys,
                                                 const std::vector<std::vector<T>>& values,
                                                 const std::vector<bool>& key_mask) const {
    const std::unique_ptr<bool[]> m(new bool[key_mask.size()]);
    std::copy(key_mask.begin(), key_mask.end(), m.get());
    return compute_with_mask(std::span<const T>(query), to_matrix(keys, "keys"),
                             to_matrix(values, "values"),
                             std::span<const bool>(m.get(), key_mask.size()));
  }

 private:
  std::size_t dim_;
  T scale_;
  bool check_finite_;
};

}  // namespace ruvector::attention
// ---- end ruvector/attention/standard/scaled_dot_product.hpp ----

namespace ruvector::attention {

/// \brief Whether multi-head attention learns projections or only splits vectors into heads.
enum class projection_mode {
  learned,    ///< W_q, W_k, W_v, W_o (+ biases)
  split_only  ///< no projections; heads are contiguous slices (the seeds' behaviour)
};

/// \brief Configuration of `multi_head_attention`.
struct multi_head_config {
  std::size_t embed_dim = 0;     ///< model dimension E (query width and output width)
  std::size_t num_heads = 1;     ///< query heads H; must divide E
  std::size_t num_kv_heads = 0;  ///< key/value heads H_kv (0 = H; 1 = MQA); must divide H
  std::size_t kdim = 0;          ///< width of key inputs (0 = E)
  std::size_t vdim = 0;          ///< width of value inputs (0 = E)
  bool bias = true;              ///< learn biases b_q, b_k, b_v, b_o
  bool causal = false;           ///< bottom-right aligned causal masking by default
  projection_mode projections = projection_mode::learned;
  std::uint64_t seed = 0;  ///< seed of the Xavier initialisation
};

/// \brief Projection parameters in `[out_features, in_features]` layout.
template <class T>
struct projection_weights {
  row_matrix<T> w_q, w_k, w_v, w_o;
  Eigen::Matrix<T, Eigen::Dynamic, 1> b_q, b_k, b_v, b_o;
};

/// \brief Per-call options of `multi_head_attention::forward`.
template <class T>
struct multi_head_call {
  /// `[B, Lk]` key mask (`true` = visible); absent = all visible.
  tensor_view<const bool, 2> key_mask{};
  /// Additive bias `[B or 1, H or 1, Lq, Lk]`; absent = none.
  tensor_view<const T, 4> bias{};
  /// Overrides the configured causal flag.
  std::optional<bool> causal{};
  /// Optional `[B, H, Lq, Lk]` output of the attention weights.
  tensor_view<T, 4> weights{};
  /// Throw `non_finite_input` on NaN/Inf inputs.
  bool check_finite = true;
};

/// \brief Multi-head attention with learned (or no) projections; see the file comment.
/// Forward passes are const and thread-safe; `set_weights` is not (do not call it concurrently
/// with a forward pass).
template <class T = float>
class multi_head_attention {
 public:
  using value_type = T;
  using vector_type = Eigen::Matrix<T, Eigen::Dynamic, 1>;

  /// \brief Builds the layer and Xavier-initialises its projections from `config.seed`.
  explicit multi_head_attention(multi_head_config config) : cfg_(normalise(config)) {
    head_dim_ = cfg_.embed_dim / cfg_.num_heads;
    if (cfg_.projections == projection_mode::learned) initialise();
  }

  /// \brief Learned projections, E = `embed_dim`, H = `num_heads`, seed 0.
  multi_head_attention(std::size_t embed_dim, std::size_t num_heads)
      : multi_head_attention(multi_head_config{.embed_dim = embed_dim, .num_heads = num_heads}) {}

  /// \brief The seeds' split-only multi-head attention (no projections).
  [[nodiscard]] static multi_head_attention split_only(std::size_t dim, std::size_t num_heads) {
    return multi_head_attention(multi_head_config{
        .embed_dim = dim, .num_heads = num_heads, .projections = projection_mode::split_only});
  }

  [[nodiscard]] const multi_head_config& config() const noexcept { return cfg_; }
  [[nodiscard]] std::size_t head_dim() const noexcept { return head_dim_; }
  [[nodiscard]] std::size_t kv_width() const noexcept { return cfg_.num_kv_heads * head_dim_; }
  /// The projection parameters (empty matrices in split-only mode).
  [[nodiscard]] const projection_weights<T>& weights() const noexcept { return w_; }

  /// \brief Replaces the projections; shapes are validated (biases may be empty when
  /// `config().bias` is false). Not thread-safe with concurrent forward passes.
  void set_weights(projection_weights<T> w) {
    require_config(cfg_.projections == projection_mode::learned,
                   "set_weights: a split_only layer has no projections");
    const std::size_t E = cfg_.embed_dim, KV = kv_width();
    check_shape("w_q", w.w_q, E, E);
    check_shape("w_k", w.w_k, KV, cfg_.kdim);
    check_shape("w_v", w.w_v, KV, cfg_.vdim);
    check_shape("w_o", w.w_o, E, E);
    if (cfg_.bias) {
      require_dimension("b_q.size()", static_cast<std::size_t>(w.b_q.size()), E);
      require_dimension("b_k.size()", static_cast<std::size_t>(w.b_k.size()), KV);
      require_dimension("b_v.size()", static_cast<std::size_t>(w.b_v.size()), KV);
      require_dimension("b_o.size()", static_cast<std::size_t>(w.b_o.size()), E);
    }
    w_ = std::move(w);
  }

  /// \brief Batched forward: `x_q [B, Lq, E]`, `x_k [B, Lk, kdim]`, `x_v [B, Lk, vdim]` →
  /// `out [B, Lq, E]`. Self-attention passes the same view three times.
  void forward(std::type_identity_t<tensor_view<const T, 3>> x_q,
               std::type_identity_t<tensor_view<const T, 3>> x_k,
               std::type_identity_t<tensor_view<const T, 3>> x_v, tensor_view<T, 3> out,
               const multi_head_call<T>& call = {}) const {
    const std::size_t B = x_q.extent(0), Lq = x_q.extent(1), Lk = x_k.extent(1);
    const std::size_t E = cfg_.embed_dim, H = cfg_.num_heads, Hkv = cfg_.num_kv_heads;
    const std::size_t dh = head_dim_;
    require_dimension("x_q.extent(2) (embed_dim)", x_q.extent(2), E);
    require_dimension("x_k.extent(0) (batch)", x_k.extent(0), B);
    require_dimension("x_v.extent(0) (batch)", x_v.extent(0), B);
    require_dimension("x_k.extent(2) (kdim)", x_k.extent(2), cfg_.kdim);
    require_dimension("x_v.extent(2) (vdim)", x_v.extent(2), cfg_.vdim);
    require_dimension("x_v.extent(1) (values count, must equal keys count)", x_v.extent(1), Lk);
    require_dimension("out.extent(0) (batch)", out.extent(0), B);
    require_dimension("out.extent(1) (queries)", out.extent(1), Lq);
    require_dimension("out.extent(2) (embed_dim)", out.extent(2), E);
    for (const auto* s : {&x_q.strides(), &x_k.strides(), &x_v.strides()}) {
      if ((*s)[2] != 1) throw invalid_argument("invalid argument: inputs need unit inner stride");
    }
    if (out.stride(2) != 1) throw invalid_argument("invalid argument: out needs unit inner stride");
    if (B == 0 || Lq == 0) return;

    sdpa_options<T> opt;
    opt.mask.key_mask = call.key_mask;
    opt.mask.bias = call.bias;
    opt.mask.causal = call.causal.value_or(cfg_.causal);
    opt.check_finite = call.check_finite;
    sdpa_extras<T> extras;
    extras.weights = call.weights;
    const auto sd = [](std::size_t x) { return static_cast<std::ptrdiff_t>(x); };

    if (cfg_.projections == projection_mode::split_only) {
      // Heads are slices of the input rows: view [B, L, H·dh] as [B, H, L, dh] by strides.
      const tensor_view<const T, 4> q(x_q.data(), {B, H, Lq, dh},
                                      {x_q.stride(0), sd(dh), x_q.stride(1), 1});
      const tensor_view<const T, 4> k(x_k.data(), {B, Hkv, Lk, dh},
                                      {x_k.stride(0), sd(dh), x_k.stride(1), 1});
      const tensor_view<const T, 4> v(x_v.data(), {B, Hkv, Lk, dh},
                                      {x_v.stride(0), sd(dh), x_v.stride(1), 1});
      const tensor_view<T, 4> o(out.data(), {B, H, Lq, dh},
                                {out.stride(0), sd(dh), out.stride(1), 1});
      try {
        sdpa<T>(q, k, v, o, opt, extras);
      } catch (const non_finite_input&) {
        // sdpa names its head views; name the caller's arguments instead.
        require_finite_input("x_q", x_q);
        require_finite_input("x_k", x_k);
        require_finite_input("x_v", x_v);
        throw;
      }
      return;
    }

    // Learned projections: one GEMM per batch element and projection.
    row_matrix<T> qp(static_cast<Eigen::Index>(B * Lq), static_cast<Eigen::Index>(E));
    row_matrix<T> kp(static_cast<Eigen::Index>(B * Lk), static_cast<Eigen::Index>(kv_width()));
    row_matrix<T> vp(static_cast<Eigen::Index>(B * Lk), static_cast<Eigen::Index>(kv_width()));
    row_matrix<T> attn(static_cast<Eigen::Index>(B * Lq), static_cast<Eigen::Index>(E));
    for (std::size_t b = 0; b < B; ++b) {
      project(x_q, b, w_.w_q, w_.b_q, qp, b * Lq);
      project(x_k, b, w_.w_k, w_.b_k, kp, b * Lk);
      project(x_v, b, w_.w_v, w_.b_v, vp, b * Lk);
    }
    const tensor_view<const T, 4> q(qp.data(), {B, H, Lq, dh}, {sd(Lq * E), sd(dh), sd(E), 1});
    const tensor_view<const T, 4> k(kp.data(), {B, Hkv, Lk, dh},
                                    {sd(Lk * kv_width()), sd(dh), sd(kv_width()), 1});
    const tensor_view<const T, 4> v(vp.data(), {B, Hkv, Lk, dh},
                                    {sd(Lk * kv_width()), sd(dh), sd(kv_width()), 1});
    const tensor_view<T, 4> o(attn.data(), {B, H, Lq, dh}, {sd(Lq * E), sd(dh), sd(E), 1});
    if (call.check_finite) {
      // Projections would smear a NaN over whole rows; name the raw input element instead.
      require_finite_input("x_q", x_q);
      require_finite_input("x_k", x_k);
      require_finite_input("x_v", x_v);
    }
    sdpa<T>(q, k, v, o, opt, extras);
    for (std::size_t b = 0; b < B; ++b) {
      auto dst = matrix_view(out.data() + static_cast<std::ptrdiff_t>(b) * out.stride(0), Lq, E,
                             static_cast<std::size_t>(out.stride(1)));
      dst.noalias() =
          attn.middleRows(static_cast<Eigen::Index>(b * Lq), static_cast<Eigen::Index>(Lq)) *
          w_.w_o.transpose();
      if (cfg_.bias) dst.rowwise() += w_.b_o.transpose();
    }
  }

  /// \brief Sequence forward: `x_q [Lq, E]`, `x_k [Lk, kdim]`, `x_v [Lk, vdim]` → `[Lq, E]`.
  /// A `call.key_mask` must have shape `[1, Lk]`.
  [[nodiscard]] row_matrix<T> forward(const matrix_cref<T>& x_q, const matrix_cref<T>& x_k,
                                      const matrix_cref<T>& x_v,
                                      const multi_head_call<T>& call = {}) const {
    row_matrix<T> out(x_q.rows(), static_cast<Eigen::Index>(cfg_.embed_dim));
    forward(
        as_3d(x_q), as_3d(x_k), as_3d(x_v),
        tensor_view<T, 3>(out.data(), {1, static_cast<std::size_t>(out.rows()), cfg_.embed_dim}),
        call);
    return out;
  }

  /// \brief Self-attention over one sequence `x [L, E]`.
  [[nodiscard]] row_matrix<T> forward(const matrix_cref<T>& x,
                                      const multi_head_call<T>& call = {}) const {
    return forward(x, x, x, call);
  }

  /// \brief Vector API: one query `[E]` over keys `[n, kdim]` and values `[n, vdim]` → `[E]`.
  [[nodiscard]] std::vector<T> compute(std::span<const T> query, const matrix_cref<T>& keys,
                                       const matrix_cref<T>& values) const {
    return compute_with_mask(query, keys, values, {});
  }

  /// \brief Vector API with a key mask (`true` = visible; empty = all visible).
  [[nodiscard]] std::vector<T> compute_with_mask(std::span<const T> query,
                                                 const matrix_cref<T>& keys,
                                                 const matrix_cref<T>& values,
                                                 std::span<const bool> key_mask) const {
    require_dimension("query.size()", query.size(), cfg_.embed_dim);
    require_non_empty("keys", static_cast<std::size_t>(keys.rows()));
    require_dimension("keys.cols() (kdim)", static_cast<std::size_t>(keys.cols()), cfg_.kdim);
    require_dimension("values.rows() (must equal keys.rows())",
                      static_cast<std::size_t>(values.rows()),
                      static_cast<std::size_t>(keys.rows()));
    multi_head_call<T> call;
    if (!key_mask.empty()) {
      require_dimension("key_mask.size()", key_mask.size(), static_cast<std::size_t>(keys.rows()));
      call.key_mask = tensor_view<const bool, 2>(key_mask.data(), {1, key_mask.size()});
    }
    call.causal = false;
    std::vector<T> out(cfg_.embed_dim);
    const auto q = matrix_view(query.data(), 1, query.size());
    forward(as_3d(q), as_3d(keys), as_3d(values),
            tensor_view<T, 3>(out.data(), {1, 1, cfg_.embed_dim}), call);
    return out;
  }

  /// \brief Seeds-shaped adapter: keys and values as vectors of vectors (copied once).
  [[nodiscard]] std::vector<T> compute(const std::vector<T>& query,
                                       const std::vector<std::vector<T>>& keys,
                                       const std::vector<std::vector<T>>& values) const {
    return compute(std::span<const T>(query), to_matrix(keys, "keys"), to_matrix(values, "values"));
  }

 private:
  static multi_head_config normalise(multi_head_config c) {
    if (c.num_kv_heads == 0) c.num_kv_heads = c.num_heads;
    if (c.kdim == 0) c.kdim = c.embed_dim;
    if (c.vdim == 0) c.vdim = c.embed_dim;
    std::ostringstream os;
    require_config(c.embed_dim > 0, "multi_head_attention: embed_dim must be > 0");
    require_config(c.num_heads > 0, "multi_head_attention: num_heads must be > 0");
    require_at_most("embed_dim", c.embed_dim, max_dimension);
    if (c.embed_dim % c.num_heads != 0) {
      os << "multi_head_attention: embed_dim (" << c.embed_dim
         << ") must be divisible by num_heads (" << c.num_heads << ")";
      require_config(false, os.str());
    }
    if (c.num_heads % c.num_kv_heads != 0) {
      os << "multi_head_attention: num_kv_heads (" << c.num_kv_heads << ") must divide num_heads ("
         << c.num_heads << ")";
      require_config(false, os.str());
    }
    if (c.projections == projection_mode::split_only) {
      const std::size_t kv = c.num_kv_heads * (c.embed_dim / c.num_heads);
      if (c.kdim != kv || c.vdim != kv) {
        os << "multi_head_attention: split_only needs kdim == vdim == num_kv_heads * head_dim ("
           << kv << "), got kdim " << c.kdim << " and vdim " << c.vdim;
        require_config(false, os.str());
      }
    }
    return c;
  }

  void initialise() {
    rng gen(cfg_.seed);
    const std::size_t E = cfg_.embed_dim, KV = kv_width();
    w_.w_q = xavier(gen, E, E);
    w_.w_k = xavier(gen, KV, cfg_.kdim);
    w_.w_v = xavier(gen, KV, cfg_.vdim);
    w_.w_o = xavier(gen, E, E);
    if (cfg_.bias) {
      w_.b_q = vector_type::Zero(static_cast<Eigen::Index>(E));
      w_.b_k = vector_type::Zero(static_cast<Eigen::Index>(KV));
      w_.b_v = vector_type::Zero(static_cast<Eigen::Index>(KV));
      w_.b_o = vector_type::Zero(static_cast<Eigen::Index>(E));
    }
  }

  static row_matrix<T> xavier(rng& gen, std::size_t out, std::size_t in) {
    const double a = std::sqrt(6.0 / static_cast<double>(in + out));
    row_matrix<T> w(static_cast<Eigen::Index>(out), static_cast<Eigen::Index>(in));
    for (Eigen::Index i = 0; i < w.size(); ++i) w.data()[i] = gen.uniform<T>(T(-a), T(a));
    return w;
  }

  static void check_shape(const char* name, const row_matrix<T>& m, std::size_t rows,
                          std::size_t cols) {
    require_dimension(std::string(name) + ".rows()", static_cast<std::size_t>(m.rows()), rows);
    require_dimension(std::string(name) + ".cols()", static_cast<std::size_t>(m.cols()), cols);
  }

  static tensor_view<const T, 3> as_3d(const matrix_cref<T>& m) {
    return tensor_view<const T, 3>(
        m.data(), {1, static_cast<std::size_t>(m.rows()), static_cast<std::size_t>(m.cols())},
        {static_cast<std::ptrdiff_t>(m.outerStride() * m.rows()), m.outerStride(), 1});
  }

  static void require_finite_input(const char* what, const tensor_view<const T, 3>& x) {
    for (std::size_t b = 0; b < x.extent(0); ++b) {
      const T* base = x.data() + static_cast<std::ptrdiff_t>(b) * x.stride(0);
      for (std::size_t r = 0; r < x.extent(1); ++r) {
        const T* row = base + static_cast<std::ptrdiff_t>(r) * x.stride(1);
        if (!kernels::all_finite(row, x.extent(2))) {
          for (std::size_t c = 0; c < x.extent(2); ++c) {
            if (!std::isfinite(row[c])) {
              std::ostringstream os;
              os << "non-finite input: " << what << "[" << b << "][" << r << "][" << c
                 << "] = " << row[c];
              throw non_finite_input(os.str());
            }
          }
        }
      }
    }
  }

  void project(const tensor_view<const T, 3>& x, std::size_t b, const row_matrix<T>& w,
               const vector_type& bias, row_matrix<T>& dst, std::size_t row0) const {
    const std::size_t L = x.extent(1);
    if (L == 0) return;
    const auto src = matrix_view(x.data() + static_cast<std::ptrdiff_t>(b) * x.stride(0), L,
                                 x.extent(2), static_cast<std::size_t>(x.stride(1)));
    auto out = dst.middleRows(static_cast<Eigen::Index>(row0), static_cast<Eigen::Index>(L));
    out.noalias() = src * w.transpose();
    if (cfg_.bias) out.rowwise() += bias.transpose();
  }

  multi_head_config cfg_;
  std::size_t head_dim_ = 0;
  projection_weights<T> w_;
};

}  // namespace ruvector::attention
// ---- end ruvector/attention/standard/multi_head.hpp ----
// ---- end ruvector/attention/standard.hpp ----
