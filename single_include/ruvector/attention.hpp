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

/// \brief Calls `f(begin, end)` over contiguous chunks of [0, n) of at least `grain` items (at most
/// 4 per thread), in parallel when there is more than one chunk; one chunk runs inline. For loops
/// whose iterations are too cheap to schedule one by one.
template <class F>
void parallel_ranges(std::size_t n, std::size_t grain, F&& f) {
  const std::size_t by_grain = (n + grain - 1) / std::max<std::size_t>(grain, 1);
  const std::size_t chunks =
      std::min<std::size_t>(by_grain, 4 * static_cast<std::size_t>(num_threads()));
  if (chunks <= 1) {
    f(std::size_t{0}, n);
    return;
  }
  parallel_for(0, chunks, [&](std::size_t c) { f(n * c / chunks, n * (c + 1) / chunks); });
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
// ---- begin ruvector/attention/curvature.hpp ----
/// \file curvature.hpp
/// \brief Entry header of the mixed-curvature family (theory 2): the fused E+H+S attention kernel,
/// the tangent-space mapper and the bit-packed component quantiser.

// ---- begin ruvector/attention/curvature/component_quantizer.hpp ----
/// \file curvature/component_quantizer.hpp
/// \brief Per-component symmetric absmax quantisation of mixed-curvature keys
/// `[euclidean | hyperbolic | spherical]` into **bit-packed** codes, with scoring on the packed
/// codes (no dequantisation of the key set).
///
/// ## Quantisation (symmetric absmax, one scale per key per component)
/// For a component c of key i with values x_0 … x_{m−1} and b = b_c bits (2 ≤ b ≤ 8):
///
///     L   = 2^(b−1) − 1                                 levels on each side of 0
///     s   = roundup_float(max_j |x_j| / L)              (s = 0 for an all-zero component)
///     c_j = clamp(round(x_j / s), −L, L)                 (c_j = 0 when s = 0)
///     x̂_j = s · c_j                                     the decoded value
///
/// Conventions:
/// - `max_j |x_j| / L` is computed in double and rounded **up** to the next `float` (the stored
///   scale type), so |x_j / s| ≤ L holds for every element; the clamp only guards the last bit
///   of the double quotient.
/// - `round` is round-half-away-from-zero (`std::round`) applied to the double quotient x_j / s.
///   Hence |x̂_j − x_j| ≤ s/2 (+ s·(|c_j| + 1)·2^−53 from rounding that quotient).
/// - The scale is a `float` for T = float and T = double. For T = double a component whose
///   max|x|/L exceeds FLT_MAX cannot be represented and `quantize` throws `input_too_large`;
///   tiny components (max|x|/L below the smallest float) get the smallest positive subnormal
///   float as their scale, so the bound above still holds.
/// - `dequantize_row` returns fl_T(s·c_j) (exact for double; one rounding for float).
///
/// ## Packed layout (what `packed_row` exposes; every count is measured, see `storage_bytes`)
/// - Code of value j: the offset-binary integer u_j = c_j + L ∈ [0, 2L] ⊂ [0, 2^b − 2], in
///   exactly b bits.
/// - A component of m values is one little-endian bit stream of B_c = ⌈m·b/8⌉ bytes: u_j occupies
///   stream bits [j·b, (j+1)·b), stream bit k is bit (k mod 8) (least significant first) of byte
///   ⌊k/8⌋; the unused high bits of the last byte are 0. So 8 codes of b bits fill exactly b
///   bytes (eight 5-bit codes → 5 bytes), and a component of size 0 takes 0 bytes.
/// - Key row i: `[E stream | H stream | S stream]` at byte offsets 0, B_E, B_E + B_H; rows are
///   `row_bytes() = B_E + B_H + B_S` bytes apart with no further padding (row i starts at byte
///   i·row_bytes()).
/// - After the last row: `packed_slack_bytes` (= 16) zero bytes, so a decoder may always load 8
///   or 16 bytes (unaligned) starting at the first byte of any group of 8 or 16 codes.
/// - Scales: one `float` per key per **non-empty** component, key-major in E, H, S order
///   (`scales[i·k + slot]`, k = number of non-empty components). Empty components store nothing.
///
/// So `storage_bytes() = n·(row_bytes() + 4·k) + 16`; for d = 512 split 256/192/64 at 8/5/5 bits
/// that is 428 bytes per key against 2048 for float keys (≈ 4.785×).
///
/// ## Scoring on the packed codes
///     ⟨q_c, k̂_c⟩ = s_c · Σ_j q_j · c_j
/// computed in T, then multiplied by s_c; no heap allocation, nothing dequantised in memory.
/// `component_dots_all` scores 4 keys at a time (one query load feeds 4 independent FMA chains);
/// each key keeps one accumulator, so `component_dots(q, i)` and `component_dots_all` agree bit
/// for bit.
/// - AVX-512BW / AVX2 builds: 16 (resp. 8) codes per step, unpacked in registers: one unaligned
///   16- (8-) byte load of the group's 2b (b) bytes broadcast to every 128-bit lane, a byte
///   shuffle that gives 32-bit lane k the two bytes holding bits [k·b, k·b + b), a per-lane
///   variable right shift by (k·b) mod 8, then mask and − L (int → T conversion), or — float on
///   AVX-512 with b ≤ 5 — one `vpermt2ps` lookup in a 32-entry table of (i mod 2^b) − L; 8-bit
///   components zero-extend bytes instead. The tail uses a masked query load, so lanes past the
///   component contribute exactly 0. Every code is converted to T exactly.
/// - Other targets: groups of 8 codes (one unaligned 64-bit load, then BMI2 `pdep` — or a 3-step
///   SWAR shift/mask sequence without BMI2 — spreads the eight b-bit fields into eight bytes) are
///   decoded into a stack buffer of at most 512 values, converted to T and reduced with the xsimd
///   `kernels::dot`.
/// `dequantize_row`, `error_bound` and `component_squared_norms` use the buffer path everywhere.
///
/// ## Error bound (`error_bound`)
/// For the exact key k and the value D returned by `component_dots`,
///
///     |D_c − ⟨q_c, k_c⟩| ≤ (s_c/2)·‖q_c‖₁ + 2·(m_c + 2)·u·s_c·Σ_j |q_j|·(|c_j| + 1)
///                          + (m_c + 2)·η                     (both extra terms 0 when s_c = 0)
///
/// with m_c the component size, u the unit roundoff of T (2^−24 for float, 2^−53 for double) and
/// η the smallest positive subnormal of T (the absolute error of an operation that underflows;
/// it only matters for keys or queries near the bottom of T's range).
/// The first term is the quantisation error (|k̂_j − k_j| ≤ s/2, attained when every |k̂_j − k_j|
/// is s/2 and q_j = sign(k̂_j − k_j)); the second covers the double-quotient rounding of the
/// codes, the dot product in T (any summation order with FMA: |fl(Σ) − Σ| ≤ γ_m·Σ|q_j c_j|,
/// γ_m = m·u/(1 − m·u) ≤ 2·m·u for m·u ≤ 1/2 — Higham, "Accuracy and Stability of Numerical
/// Algorithms", §3.1), the final multiplication by s_c and the rounding of the bound itself.
///
/// Objects are immutable after construction and safe to share across threads; every method is
/// `const` and single-threaded.

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

// ---- begin ruvector/attention/curvature/components.hpp ----
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
// ---- end ruvector/attention/curvature/components.hpp ----
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

#if defined(__BMI2__) && (defined(__x86_64__) || defined(_M_X64))
#define RUVECTOR_ATTENTION_HAS_PDEP 1
#else
#define RUVECTOR_ATTENTION_HAS_PDEP 0
#endif

// Vectorised unpack-and-dot: needs a byte shuffle and per-lane variable shifts, which xsimd 8.1
// does not expose, hence intrinsics for AVX-512BW and AVX2; other targets use the portable path.
#if defined(__AVX512BW__)
#define RUVECTOR_ATTENTION_QUANT_SIMD 512
#elif defined(__AVX2__)
#define RUVECTOR_ATTENTION_QUANT_SIMD 256
#else
#define RUVECTOR_ATTENTION_QUANT_SIMD 0
#endif

#if RUVECTOR_ATTENTION_HAS_PDEP || RUVECTOR_ATTENTION_QUANT_SIMD
#include <immintrin.h>
#endif

namespace ruvector::attention {

/// \brief Bits per code of each component; each must be in [2, 8] (`invalid_config` otherwise).
struct quantization_config {
  unsigned euclidean_bits = 8;
  unsigned hyperbolic_bits = 5;
  unsigned spherical_bits = 5;
  friend constexpr bool operator==(const quantization_config&,
                                   const quantization_config&) = default;
};

/// \brief Names one of the three components of a product-space vector (storage order).
enum class component_kind : unsigned char { euclidean = 0, hyperbolic = 1, spherical = 2 };

/// \brief One value per component, e.g. the three partial dot products of a query and a key.
template <attention_scalar T>
struct component_scores {
  T euclidean = T(0);
  T hyperbolic = T(0);
  T spherical = T(0);
};

/// \brief Smallest and largest accepted bits per code.
inline constexpr unsigned min_quantization_bits = 2;
inline constexpr unsigned max_quantization_bits = 8;
/// \brief Zero bytes kept after the last packed row, so the decoders' 8- and 16-byte loads at the
/// start of any group of codes stay in bounds.
inline constexpr std::size_t packed_slack_bytes = 16;

namespace detail {

/// Levels on each side of zero for b bits: L = 2^(b−1) − 1.
[[nodiscard]] constexpr int quant_levels(unsigned bits) noexcept { return (1 << (bits - 1)) - 1; }

/// Bytes of a packed stream of `count` codes of `bits` bits: ⌈count·bits/8⌉.
[[nodiscard]] constexpr std::size_t packed_stream_bytes(std::size_t count, unsigned bits) noexcept {
  return (count * bits + 7) / 8;
}

/// Little-endian unaligned 64-bit load.
[[nodiscard]] inline std::uint64_t load_le64(const std::uint8_t* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  if constexpr (std::endian::native == std::endian::big) {
    std::uint64_t r = 0;
    for (int k = 0; k < 8; ++k) r |= ((v >> (8 * k)) & 0xFFu) << (8 * (7 - k));
    v = r;
  }
  return v;
}

/// Little-endian unaligned 64-bit store.
inline void store_le64(std::uint8_t* p, std::uint64_t v) noexcept {
  if constexpr (std::endian::native == std::endian::big) {
    std::uint64_t r = 0;
    for (int k = 0; k < 8; ++k) r |= ((v >> (8 * k)) & 0xFFu) << (8 * (7 - k));
    v = r;
  }
  std::memcpy(p, &v, sizeof v);
}

/// Masks that spread eight b-bit fields (the low 8·b bits of a word) into eight bytes.
struct spread_plan {
  unsigned bits = 8;
  std::uint64_t m4 = 0;    ///< low 4b bits
  std::uint64_t m2 = 0;    ///< low 2b bits of each 32-bit half
  std::uint64_t m1 = 0;    ///< low b bits of each 16-bit quarter
  std::uint64_t pdep = 0;  ///< low b bits of each byte

  [[nodiscard]] static constexpr spread_plan make(unsigned b) noexcept {
    spread_plan p;
    p.bits = b;
    const auto low = [](unsigned n) {
      return n >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << n) - 1;
    };
    p.m4 = low(4 * b);
    p.m2 = low(2 * b) | (low(2 * b) << 32);
    p.m1 = low(b) * 0x0001000100010001ull;
    p.pdep = low(b) * 0x0101010101010101ull;
    return p;
  }
};

/// Portable SWAR spread: byte k of the result is field k (bits [k·b, (k+1)·b)) of `w`.
/// Three halving steps: 4|4 fields into the two 32-bit halves, 2|2 into 16-bit quarters, 1|1
/// into bytes (valid for 1 ≤ b ≤ 8).
[[nodiscard]] constexpr std::uint64_t spread_codes_swar(std::uint64_t w,
                                                        const spread_plan& p) noexcept {
  const unsigned b = p.bits;
  std::uint64_t x = (w & p.m4) | (((w >> (4 * b)) & p.m4) << 32);
  x = (x & p.m2) | (((x >> (2 * b)) & p.m2) << 16);
  x = (x & p.m1) | (((x >> b) & p.m1) << 8);
  return x;
}

/// Spread with BMI2 `pdep` when compiled for it, SWAR otherwise (same result).
[[nodiscard]] RUVECTOR_ATTENTION_ALWAYS_INLINE std::uint64_t spread_codes(
    std::uint64_t w, const spread_plan& p) noexcept {
#if RUVECTOR_ATTENTION_HAS_PDEP
  return _pdep_u64(w, p.pdep);
#else
  return spread_codes_swar(w, p);
#endif
}

/// Largest number of codes decoded into the stack buffer at once (a multiple of 8).
inline constexpr std::size_t decode_chunk = 512;

/// Decodes codes [8·first_group, 8·(first_group + groups)) of a stream of `bits`-bit codes into
/// `out` as signed values c = u − L (converted to T). May read up to 8 bytes past the start of
/// the last group (the caller guarantees they are in bounds). groups·8 ≤ decode_chunk.
template <class T>
void decode_groups(const std::uint8_t* stream, std::size_t first_group, std::size_t groups,
                   const spread_plan& plan, int levels,
                   T* RUVECTOR_ATTENTION_RESTRICT out) noexcept {
  const std::size_t count = groups * 8;
  const std::uint8_t* bytes = nullptr;
  alignas(64) std::uint8_t spread[decode_chunk];
  if (plan.bits == 8) {
    bytes = stream + first_group * 8;
  } else {
    const std::uint8_t* src = stream + first_group * plan.bits;
    for (std::size_t g = 0; g < groups; ++g) {
      store_le64(spread + 8 * g, spread_codes(load_le64(src + g * plan.bits), plan));
    }
    bytes = spread;
  }
  for (std::size_t j = 0; j < count; ++j) {
    out[j] = static_cast<T>(static_cast<int>(bytes[j]) - levels);
  }
}

/// Σ_j q[j]·c_j over the m codes of one component stream, in T, through a stack buffer of
/// decode_chunk values and kernels::dot (the portable path).
template <class T>
[[nodiscard]] T dot_codes_buffered(const T* q, const std::uint8_t* stream, std::size_t m,
                                   const spread_plan& plan, int levels) noexcept {
  alignas(64) T buf[decode_chunk];
  T acc = T(0);
  for (std::size_t start = 0; start < m; start += decode_chunk) {
    const std::size_t len = std::min(decode_chunk, m - start);
    decode_groups<T>(stream, start / 8, (len + 7) / 8, plan, levels, buf);
    acc += kernels::dot<T>(q + start, buf, len);
  }
  return acc;
}

#if RUVECTOR_ATTENTION_QUANT_SIMD

/// Byte-shuffle controls and shift counts that move field k (bits [k·b, k·b + b) of a window that
/// starts at a group boundary) into the low bits of 32-bit lane k, for k < 16 and b ≤ 8.
struct unpack_tables {
  alignas(64) std::uint8_t shuffle[9][64] = {};
  alignas(64) std::uint32_t shift[9][16] = {};
  alignas(64) std::int32_t tail_mask[9][8] = {};  ///< tail_mask[r]: −1 in lanes < r (AVX2)
  alignas(64) float code_table[9][32] = {};       ///< code_table[b][i] = (i mod 2^b) − L_b
};

[[nodiscard]] constexpr unpack_tables make_unpack_tables() noexcept {
  unpack_tables t;
  for (unsigned b = 1; b <= 8; ++b) {
    for (unsigned k = 0; k < 16; ++k) {
      const unsigned bit = k * b, lo = bit / 8, sh = bit % 8;
      t.shuffle[b][4 * k + 0] = static_cast<std::uint8_t>(lo);
      t.shuffle[b][4 * k + 1] = sh + b > 8 ? static_cast<std::uint8_t>(lo + 1) : 0x80;
      t.shuffle[b][4 * k + 2] = 0x80;  // pshufb: high bit set → zero byte
      t.shuffle[b][4 * k + 3] = 0x80;
      t.shift[b][k] = sh;
    }
  }
  for (unsigned r = 0; r <= 8; ++r)
    for (unsigned k = 0; k < 8; ++k) t.tail_mask[r][k] = k < r ? -1 : 0;
  for (unsigned b = 1; b <= 8; ++b) {
    const int levels = (1 << (b - 1)) - 1;
    for (int i = 0; i < 32; ++i)
      t.code_table[b][i] = static_cast<float>((i & ((1 << b) - 1)) - levels);
  }
  return t;
}

inline constexpr unpack_tables unpack = make_unpack_tables();

#endif

#if RUVECTOR_ATTENTION_QUANT_SIMD == 512

/// Fields of the 16-code group at `p` (b < 8) as uint32 lanes: broadcast the group's 2b bytes to
/// every 128-bit lane, shuffle the two bytes of field k into lane k, shift by (k·b) mod 8.
/// The caller masks.
RUVECTOR_ATTENTION_ALWAYS_INLINE __m512i fields16(const std::uint8_t* p, __m512i ctrl,
                                                  __m512i shifts) noexcept {
  const __m512i w = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm512_srlv_epi32(_mm512_shuffle_epi8(w, ctrl), shifts);
}

/// How a component's codes become lanes: zero-extended bytes (b = 8), a 32-entry table lookup
/// (b ≤ 5, float only) or shift-and-mask (any b < 8).
enum class unpack_mode { bytes, table, masked };

/// 16 codes of the group at `p` as floats c = u − L.
/// - bytes:  zero-extend, then u is made a float exactly by OR-ing it into the mantissa of 2^23
///           (bits(2^23 + u) = 0x4B000000 | u) and subtracting 2^23 + L.
/// - table:  `vpermt2ps` reads entry (field mod 32) of a 32-float table holding
///           ((i mod 2^b) − L) for i < 32, so the bits above the field need no mask.
/// - masked: (field & (2^b − 1)) | 0x4B000000 in one `vpternlogd`, then − (2^23 + L).
template <unpack_mode Mode>
RUVECTOR_ATTENTION_ALWAYS_INLINE __m512 codes16_ps(const std::uint8_t* p, __m512i ctrl,
                                                   __m512i shifts, __m512i mask, __m512i magic,
                                                   __m512 bias, __m512 tlo, __m512 thi) noexcept {
  if constexpr (Mode == unpack_mode::bytes) {
    const __m512i x = _mm512_or_si512(
        _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), magic);
    return _mm512_sub_ps(_mm512_castsi512_ps(x), bias);
  } else if constexpr (Mode == unpack_mode::table) {
    return _mm512_permutex2var_ps(tlo, fields16(p, ctrl, shifts), thi);
  } else {
    const __m512i x = _mm512_ternarylogic_epi32(fields16(p, ctrl, shifts), mask, magic, 0xEA);
    return _mm512_sub_ps(_mm512_castsi512_ps(x), bias);
  }
}

/// 16 signed codes c = u − L of the group at `p` as int32 lanes.
template <unpack_mode Mode>
RUVECTOR_ATTENTION_ALWAYS_INLINE __m512i codes16_epi32(const std::uint8_t* p, __m512i ctrl,
                                                       __m512i shifts, __m512i mask,
                                                       __m512i lv) noexcept {
  __m512i x;
  if constexpr (Mode == unpack_mode::bytes) {
    x = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  } else {
    x = _mm512_and_si512(fields16(p, ctrl, shifts), mask);
  }
  return _mm512_sub_epi32(x, lv);
}

/// Σ of the 16 lanes, pairing (lane i, lane i + 8), then i + 4, i + 2, i + 1 — the order hsum4
/// uses, so one key scores the same alone or in a block of 4.
RUVECTOR_ATTENTION_ALWAYS_INLINE float hsum16(__m512 a) noexcept {
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(a),
                                 _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)));
  __m128 v = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  v = _mm_add_ps(v, _mm_shuffle_ps(v, v, 0x4E));
  v = _mm_add_ps(v, _mm_shuffle_ps(v, v, 0xB1));
  return _mm_cvtss_f32(v);
}

/// out[r] = hsum16(a[r]) for r < 4 with shared shuffles (a 4 × 16 transpose-and-add).
RUVECTOR_ATTENTION_ALWAYS_INLINE void hsum4(const __m512* a, float* out) noexcept {
  // 128-bit lanes l0..l3: t01 = [a0.l0 + a0.l2, a0.l1 + a0.l3, a1.l0 + a1.l2, a1.l1 + a1.l3].
  const __m512 t01 =
      _mm512_add_ps(_mm512_shuffle_f32x4(a[0], a[1], 0x44), _mm512_shuffle_f32x4(a[0], a[1], 0xEE));
  const __m512 t23 =
      _mm512_add_ps(_mm512_shuffle_f32x4(a[2], a[3], 0x44), _mm512_shuffle_f32x4(a[2], a[3], 0xEE));
  // Lane r now holds key r's four partial sums (first half + second half of the 256-bit sums).
  __m512 u =
      _mm512_add_ps(_mm512_shuffle_f32x4(t01, t23, 0x88), _mm512_shuffle_f32x4(t01, t23, 0xDD));
  u = _mm512_add_ps(u, _mm512_permute_ps(u, 0x4E));
  u = _mm512_add_ps(u, _mm512_permute_ps(u, 0xB1));
  const __m512 first =
      _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), u);
  _mm_storeu_ps(out, _mm512_castps512_ps128(first));
}

/// out[r] = Σ_j q[j]·c_j of the m codes in the streams at stream0 + r·stride, r < R, on
/// AVX-512BW: 16 codes per step, one query load shared by the R keys, one accumulator per key.
template <class T, std::size_t R, unpack_mode Mode>
void dot_codes_avx512(const T* q, const std::uint8_t* stream0, std::size_t stride, std::size_t m,
                      unsigned bits, int levels, T* out) noexcept {
  const __m512i ctrl = _mm512_load_si512(unpack.shuffle[bits]);
  const __m512i shifts = _mm512_load_si512(unpack.shift[bits]);
  const __m512i mask = _mm512_set1_epi32((1 << bits) - 1);
  const std::size_t step_bytes = 2 * bits;  // 16 codes
  const std::uint8_t* p[R];
#pragma GCC unroll 4
  for (std::size_t r = 0; r < R; ++r) p[r] = stream0 + r * stride;
  if constexpr (std::is_same_v<T, float>) {
    const __m512i magic = _mm512_set1_epi32(0x4B000000);
    const __m512 bias = _mm512_set1_ps(8388608.0f + static_cast<float>(levels));
    __m512 tlo = _mm512_setzero_ps(), thi = _mm512_setzero_ps();
    if constexpr (Mode == unpack_mode::table) {
      tlo = _mm512_load_ps(unpack.code_table[bits]);
      thi = _mm512_load_ps(unpack.code_table[bits] + 16);
    }
    __m512 acc[R];
#pragma GCC unroll 4
    for (std::size_t r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
    for (std::size_t j = 0; j < m; j += 16) {
      const std::size_t rem = m - j;
      const __m512 qv =
          rem >= 16 ? _mm512_loadu_ps(q + j)
                    : _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << rem) - 1u), q + j);
#pragma GCC unroll 4
      for (std::size_t r = 0; r < R; ++r) {
        const __m512 c = codes16_ps<Mode>(p[r], ctrl, shifts, mask, magic, bias, tlo, thi);
        acc[r] = _mm512_fmadd_ps(qv, c, acc[r]);
        p[r] += step_bytes;
      }
    }
    if constexpr (R == 4) {
      hsum4(acc, out);
    } else {
#pragma GCC unroll 4
      for (std::size_t r = 0; r < R; ++r) out[r] = hsum16(acc[r]);
    }
  } else {
    const __m512i lv = _mm512_set1_epi32(levels);
    __m512d acc[R];
#pragma GCC unroll 4
    for (std::size_t r = 0; r < R; ++r) acc[r] = _mm512_setzero_pd();
    for (std::size_t j = 0; j < m; j += 16) {
      const std::size_t rem = m - j;
      __m512d q0, q1;
      if (rem >= 16) {
        q0 = _mm512_loadu_pd(q + j);
        q1 = _mm512_loadu_pd(q + j + 8);
      } else {
        const unsigned k = (1u << rem) - 1u;
        q0 = _mm512_maskz_loadu_pd(static_cast<__mmask8>(k & 0xFFu), q + j);
        q1 = _mm512_maskz_loadu_pd(static_cast<__mmask8>(k >> 8), q + j + 8);
      }
#pragma GCC unroll 4
      for (std::size_t r = 0; r < R; ++r) {
        const __m512i c = codes16_epi32<Mode>(p[r], ctrl, shifts, mask, lv);
        acc[r] = _mm512_fmadd_pd(q0, _mm512_cvtepi32_pd(_mm512_castsi512_si256(c)), acc[r]);
        acc[r] = _mm512_fmadd_pd(q1, _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(c, 1)), acc[r]);
        p[r] += step_bytes;
      }
    }
#pragma GCC unroll 4
    for (std::size_t r = 0; r < R; ++r) out[r] = _mm512_reduce_add_pd(acc[r]);
  }
}

/// Dispatches on the unpack mode (bytes for b = 8, table for float with b ≤ 5, masked otherwise).
template <class T, std::size_t R>
void dot_codes_simd(const T* q, const std::uint8_t* stream0, std::size_t stride, std::size_t m,
                    unsigned bits, int levels, T* out) noexcept {
  if (bits == 8) {
    dot_codes_avx512<T, R, unpack_mode::bytes>(q, stream0, stride, m, bits, levels, out);
  } else if (std::is_same_v<T, float> && bits <= 5) {
    dot_codes_avx512<T, R, unpack_mode::table>(q, stream0, stride, m, bits, levels, out);
  } else {
    dot_codes_avx512<T, R, unpack_mode::masked>(q, stream0, stride, m, bits, levels, out);
  }
}

#elif RUVECTOR_ATTENTION_QUANT_SIMD == 256

/// 8 signed codes c = u − L of the group at `p` as int32 lanes (AVX2): zero-extended bytes for
/// b = 8; otherwise the group's b ≤ 8 bytes broadcast to both 128-bit lanes, a byte shuffle, a
/// per-lane shift by (k·b) mod 8 and a mask.
template <bool ByteCodes>
RUVECTOR_ATTENTION_ALWAYS_INLINE __m256i codes8_epi32(const std::uint8_t* p, __m256i ctrl,
                                                      __m256i shifts, __m256i mask,
                                                      __m256i lv) noexcept {
  const __m128i w = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  __m256i x;
  if constexpr (ByteCodes) {
    x = _mm256_cvtepu8_epi32(w);
  } else {
    x = _mm256_and_si256(
        _mm256_srlv_epi32(_mm256_shuffle_epi8(_mm256_broadcastsi128_si256(w), ctrl), shifts), mask);
  }
  return _mm256_sub_epi32(x, lv);
}

RUVECTOR_ATTENTION_ALWAYS_INLINE __m256 fmadd256(__m256 a, __m256 b, __m256 c) noexcept {
#if defined(__FMA__)
  return _mm256_fmadd_ps(a, b, c);
#else
  return _mm256_add_ps(_mm256_mul_ps(a, b), c);
#endif
}
RUVECTOR_ATTENTION_ALWAYS_INLINE __m256d fmadd256(__m256d a, __m256d b, __m256d c) noexcept {
#if defined(__FMA__)
  return _mm256_fmadd_pd(a, b, c);
#else
  return _mm256_add_pd(_mm256_mul_pd(a, b), c);
#endif
}

RUVECTOR_ATTENTION_ALWAYS_INLINE float hsum256(__m256 a) noexcept {
  __m128 v = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  v = _mm_add_ps(v, _mm_movehl_ps(v, v));
  v = _mm_add_ss(v, _mm_shuffle_ps(v, v, 1));
  return _mm_cvtss_f32(v);
}
RUVECTOR_ATTENTION_ALWAYS_INLINE double hsum256(__m256d a) noexcept {
  __m128d v = _mm_add_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
  v = _mm_add_sd(v, _mm_unpackhi_pd(v, v));
  return _mm_cvtsd_f64(v);
}

/// out[r] = Σ_j q[j]·c_j of the m codes in the streams at stream0 + r·stride, r < R, on AVX2:
/// 8 codes per step, one query load shared by the R keys, one accumulator per key.
template <class T, std::size_t R, bool ByteCodes>
void dot_codes_avx2(const T* q, const std::uint8_t* stream0, std::size_t stride, std::size_t m,
                    unsigned bits, int levels, T* out) noexcept {
  const __m256i ctrl = _mm256_load_si256(reinterpret_cast<const __m256i*>(unpack.shuffle[bits]));
  const __m256i shifts = _mm256_load_si256(reinterpret_cast<const __m256i*>(unpack.shift[bits]));
  const __m256i mask = _mm256_set1_epi32((1 << bits) - 1);
  const __m256i lv = _mm256_set1_epi32(levels);
  const std::uint8_t* p[R];
#pragma GCC unroll 4
  for (std::size_t r = 0; r < R; ++r) p[r] = stream0 + r * stride;
  if constexpr (std::is_same_v<T, float>) {
    __m256 acc[R];
#pragma GCC unroll 4
    for (std::size_t r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
    for (std::size_t j = 0; j < m; j += 8) {
      const std::size_t rem = m - j;
      const __m256 qv =
          rem >= 8 ? _mm256_loadu_ps(q + j)
                   : _mm256_maskload_ps(q + j, _mm256_load_si256(reinterpret_cast<const __m256i*>(
                                                   unpack.tail_mask[rem])));
#pragma GCC unroll 4
      for (std::size_t r = 0; r < R; ++r) {
        const __m256i c = codes8_epi32<ByteCodes>(p[r], ctrl, shifts, mask, lv);
        acc[r] = fmadd256(qv, _mm256_cvtepi32_ps(c), acc[r]);
        p[r] += bits;
      }
    }
#pragma GCC unroll 4
    for (std::size_t r = 0; r < R; ++r) out[r] = hsum256(acc[r]);
  } else {
    __m256d acc[R];
#pragma GCC unroll 4
    for (std::size_t r = 0; r < R; ++r) acc[r] = _mm256_setzero_pd();
    for (std::size_t j = 0; j < m; j += 8) {
      const std::size_t rem = m - j;
      __m256d q0, q1;
      if (rem >= 8) {
        q0 = _mm256_loadu_pd(q + j);
        q1 = _mm256_loadu_pd(q + j + 4);
      } else {
        const __m256i k =
            _mm256_load_si256(reinterpret_cast<const __m256i*>(unpack.tail_mask[rem]));
        // 64-bit lane masks: the 32-bit masks of lanes 0..3 and 4..7, sign-extended.
        q0 = _mm256_maskload_pd(q + j, _mm256_cvtepi32_epi64(_mm256_castsi256_si128(k)));
        q1 = _mm256_maskload_pd(q + j + 4, _mm256_cvtepi32_epi64(_mm256_extracti128_si256(k, 1)));
      }
#pragma GCC unroll 4
      for (std::size_t r = 0; r < R; ++r) {
        const __m256i c = codes8_epi32<ByteCodes>(p[r], ctrl, shifts, mask, lv);
        acc[r] = fmadd256(q0, _mm256_cvtepi32_pd(_mm256_castsi256_si128(c)), acc[r]);
        acc[r] = fmadd256(q1, _mm256_cvtepi32_pd(_mm256_extracti128_si256(c, 1)), acc[r]);
        p[r] += bits;
      }
    }
#pragma GCC unroll 4
    for (std::size_t r = 0; r < R; ++r) out[r] = hsum256(acc[r]);
  }
}

/// Dispatches on b = 8 (zero-extended bytes) versus shift-and-mask.
template <class T, std::size_t R>
void dot_codes_simd(const T* q, const std::uint8_t* stream0, std::size_t stride, std::size_t m,
                    unsigned bits, int levels, T* out) noexcept {
  if (bits == 8) {
    dot_codes_avx2<T, R, true>(q, stream0, stride, m, bits, levels, out);
  } else {
    dot_codes_avx2<T, R, false>(q, stream0, stride, m, bits, levels, out);
  }
}

#endif

/// Keys scored together by component_dots_all (one query load feeds R independent FMA chains).
inline constexpr std::size_t key_block = 4;

/// out[r] = Σ_j q[j]·c_j over the m codes of the component streams at stream0 + r·stride,
/// r < R, in T: the vectorised path when compiled for AVX2 / AVX-512BW, otherwise decode_chunk
/// codes at a time into a stack buffer and kernels::dot.
template <class T, std::size_t R>
void dot_codes(const T* q, const std::uint8_t* stream0, std::size_t stride, std::size_t m,
               const spread_plan& plan, int levels, T* out) noexcept {
#if RUVECTOR_ATTENTION_QUANT_SIMD
  dot_codes_simd<T, R>(q, stream0, stride, m, plan.bits, levels, out);
#else
  for (std::size_t r = 0; r < R; ++r)
    out[r] = dot_codes_buffered<T>(q, stream0 + r * stride, m, plan, levels);
#endif
}

}  // namespace detail

template <attention_scalar T>
class component_quantizer;

/// \brief A key set quantised by `component_quantizer<T>`: bit-packed codes and per-key,
/// per-component float scales (layout in the file comment), with scoring on the packed codes.
template <attention_scalar T>
class packed_keys {
 public:
  using value_type = T;
  using scale_type = float;

  /// An empty key set (0 keys, all-zero dims; holds only the slack bytes).
  packed_keys() : codes_(packed_slack_bytes, std::uint8_t{0}) {}

  /// Number of keys n.
  [[nodiscard]] std::size_t size() const noexcept { return n_; }
  /// Component sizes (the key width is dims().total()).
  [[nodiscard]] const component_dims& dims() const noexcept { return dims_; }
  /// Bits per code of each component.
  [[nodiscard]] const quantization_config& config() const noexcept { return config_; }
  /// Bytes between consecutive key rows: B_E + B_H + B_S.
  [[nodiscard]] std::size_t row_bytes() const noexcept { return row_bytes_; }
  /// Bytes of the packed stream of one component of one key, B_c = ⌈m_c·b_c/8⌉.
  [[nodiscard]] std::size_t component_bytes(component_kind c) const noexcept {
    return part(c).bytes;
  }

  /// Bytes actually held: the code buffer (n rows + slack) plus the scale array, measured from
  /// the containers' sizes.
  [[nodiscard]] std::size_t storage_bytes() const noexcept {
    return codes_.size() * sizeof(std::uint8_t) + scales_.size() * sizeof(scale_type);
  }
  /// Bytes of the same keys as float: n·d·sizeof(float).
  [[nodiscard]] std::size_t float_bytes() const noexcept {
    return n_ * dims_.total() * sizeof(float);
  }
  /// float_bytes() / storage_bytes().
  [[nodiscard]] double compression_ratio() const noexcept {
    return static_cast<double>(float_bytes()) / static_cast<double>(storage_bytes());
  }

  /// The packed bytes of key i (row_bytes() of them). Throws `invalid_argument` if i ≥ size().
  [[nodiscard]] std::span<const std::uint8_t> packed_row(std::size_t i) const {
    check_index(i);
    return {codes_.data() + i * row_bytes_, row_bytes_};
  }

  /// Scale s of component c of key i (0 for an empty or all-zero component).
  /// Throws `invalid_argument` if i ≥ size().
  [[nodiscard]] scale_type scale(std::size_t i, component_kind c) const {
    check_index(i);
    return scale_unchecked(i, c);
  }

  /// Writes the decoded key i (x̂_j = fl_T(s·c_j)) to `out` (size dims().total()).
  void dequantize_row(std::size_t i, std::span<T> out) const {
    check_index(i);
    require_dimension("dequantize_row: out.size()", out.size(), dims_.total());
    alignas(64) T buf[detail::decode_chunk];
    for (const auto c : kinds) {
      const part_info& p = part(c);
      const std::uint8_t* stream = row_ptr(i) + p.byte_offset;
      const T s = static_cast<T>(scale_unchecked(i, c));
      for (std::size_t start = 0; start < p.size; start += detail::decode_chunk) {
        const std::size_t len = std::min(detail::decode_chunk, p.size - start);
        detail::decode_groups<T>(stream, start / 8, (len + 7) / 8, p.plan, p.levels, buf);
        T* dst = out.data() + p.offset + start;
        for (std::size_t j = 0; j < len; ++j) dst[j] = s * buf[j];
      }
    }
  }

  /// {⟨q_E, k̂_E⟩, ⟨q_H, k̂_H⟩, ⟨q_S, k̂_S⟩} of key i, computed on the packed codes as
  /// s_c · Σ_j q_j·c_j. Throws `dimension_mismatch` (query size ≠ d), `non_finite_input`
  /// (NaN/Inf in the query) or `invalid_argument` (i ≥ size()).
  [[nodiscard]] component_scores<T> component_dots(std::span<const T> query, std::size_t i) const {
    check_query(query);
    check_index(i);
    return dots_unchecked(query.data(), i);
  }

  /// The component dots of `query` with every key: e[i], h[i], s[i] for i < size(). Each output
  /// must have size() elements, or be empty to skip that component. Same errors as
  /// `component_dots` (plus `dimension_mismatch` for an output of the wrong size).
  void component_dots_all(std::span<const T> query, std::span<T> e, std::span<T> h,
                          std::span<T> s) const {
    check_query(query);
    check_output("component_dots_all: e.size()", e.size());
    check_output("component_dots_all: h.size()", h.size());
    check_output("component_dots_all: s.size()", s.size());
    T* outs[3] = {e.empty() ? nullptr : e.data(), h.empty() ? nullptr : h.data(),
                  s.empty() ? nullptr : s.data()};
    const T* q = query.data();
    constexpr std::size_t R = detail::key_block;
    std::size_t i = 0;
    for (; i + R <= n_; i += R) score_block<R>(q, i, outs, i);
    for (; i < n_; ++i) score_block<1>(q, i, outs, i);
  }

  /// The documented bound on |component_dots(q, i)_c − ⟨q_c, k_c⟩| for the original key k:
  /// (s_c/2)·‖q_c‖₁ + 2·(m_c + 2)·u·s_c·Σ_j |q_j|·(|c_j| + 1) + (m_c + 2)·η, or 0 when s_c = 0
  /// (see the file comment).
  [[nodiscard]] component_scores<T> error_bound(std::span<const T> query, std::size_t i) const {
    check_query(query);
    check_index(i);
    constexpr double u = std::numeric_limits<T>::epsilon() / 2;
    constexpr double eta = std::numeric_limits<T>::denorm_min();
    double bound[3] = {0, 0, 0};
    alignas(64) T buf[detail::decode_chunk];
    for (std::size_t k = 0; k < 3; ++k) {
      const part_info& p = parts_[k];
      if (p.size == 0) continue;
      const double s = static_cast<double>(scale_unchecked(i, static_cast<component_kind>(k)));
      const std::uint8_t* stream = row_ptr(i) + p.byte_offset;
      const T* q = query.data() + p.offset;
      double l1 = 0, weighted = 0;
      for (std::size_t start = 0; start < p.size; start += detail::decode_chunk) {
        const std::size_t len = std::min(detail::decode_chunk, p.size - start);
        detail::decode_groups<T>(stream, start / 8, (len + 7) / 8, p.plan, p.levels, buf);
        for (std::size_t j = 0; j < len; ++j) {
          const double aq = std::abs(static_cast<double>(q[start + j]));
          l1 += aq;
          weighted += aq * (std::abs(static_cast<double>(buf[j])) + 1.0);
        }
      }
      if (s == 0) continue;  // all codes 0: the computed dot is exactly 0 = ⟨q, k⟩
      const double m2 = static_cast<double>(p.size) + 2.0;
      bound[k] = 0.5 * s * l1 + 2.0 * m2 * u * s * weighted + m2 * eta;
    }
    return {static_cast<T>(bound[0]), static_cast<T>(bound[1]), static_cast<T>(bound[2])};
  }

  /// {‖k̂_E‖², ‖k̂_H‖², ‖k̂_S‖²} of key i: s_c²·Σ_j c_j² (the integer sum is exact; one rounding
  /// in double, one to T). Not stored: O(d) per call. Throws `invalid_argument` if i ≥ size().
  [[nodiscard]] component_scores<T> component_squared_norms(std::size_t i) const {
    check_index(i);
    return norms_unchecked(i);
  }

  /// component_squared_norms(i) for every key into e, h, s (each of size() elements, or empty to
  /// skip that component).
  void component_squared_norms_all(std::span<T> e, std::span<T> h, std::span<T> s) const {
    check_output("component_squared_norms_all: e.size()", e.size());
    check_output("component_squared_norms_all: h.size()", h.size());
    check_output("component_squared_norms_all: s.size()", s.size());
    for (std::size_t i = 0; i < n_; ++i) {
      const component_scores<T> r = norms_unchecked(i);
      if (!e.empty()) e[i] = r.euclidean;
      if (!h.empty()) h[i] = r.hyperbolic;
      if (!s.empty()) s[i] = r.spherical;
    }
  }

 private:
  friend class component_quantizer<T>;

  static constexpr component_kind kinds[3] = {component_kind::euclidean, component_kind::hyperbolic,
                                              component_kind::spherical};

  struct part_info {
    std::size_t size = 0;         ///< values m_c
    std::size_t offset = 0;       ///< first column of the component in a key
    std::size_t bytes = 0;        ///< B_c
    std::size_t byte_offset = 0;  ///< first byte of the stream in a row
    std::size_t slot = 0;         ///< index among the non-empty components (scale slot)
    unsigned bits = 8;
    int levels = 127;
    detail::spread_plan plan = detail::spread_plan::make(8);
  };

  packed_keys(component_dims dims, quantization_config cfg, std::size_t n)
      : n_(n), dims_(dims), config_(cfg) {
    const std::size_t sizes[3] = {dims.euclidean, dims.hyperbolic, dims.spherical};
    const std::size_t offsets[3] = {0, dims.hyperbolic_offset(), dims.spherical_offset()};
    const unsigned bits[3] = {cfg.euclidean_bits, cfg.hyperbolic_bits, cfg.spherical_bits};
    std::size_t byte_offset = 0;
    active_ = 0;
    for (std::size_t k = 0; k < 3; ++k) {
      part_info& p = parts_[k];
      p.size = sizes[k];
      p.offset = offsets[k];
      p.bits = bits[k];
      p.levels = detail::quant_levels(bits[k]);
      p.plan = detail::spread_plan::make(bits[k]);
      p.bytes = detail::packed_stream_bytes(sizes[k], bits[k]);
      p.byte_offset = byte_offset;
      byte_offset += p.bytes;
      p.slot = active_;
      if (p.size > 0) ++active_;
    }
    row_bytes_ = byte_offset;
    codes_.assign(n * row_bytes_ + packed_slack_bytes, std::uint8_t{0});
    scales_.assign(n * active_, 0.0f);
  }

  [[nodiscard]] const part_info& part(component_kind c) const noexcept {
    return parts_[static_cast<std::size_t>(c)];
  }
  [[nodiscard]] const std::uint8_t* row_ptr(std::size_t i) const noexcept {
    return codes_.data() + i * row_bytes_;
  }
  [[nodiscard]] scale_type scale_unchecked(std::size_t i, component_kind c) const noexcept {
    const part_info& p = part(c);
    return p.size == 0 ? 0.0f : scales_[i * active_ + p.slot];
  }

  [[nodiscard]] component_scores<T> dots_unchecked(const T* q, std::size_t i) const noexcept {
    T r[3] = {T(0), T(0), T(0)};
    T* outs[3] = {&r[0], &r[1], &r[2]};
    score_block<1>(q, i, outs, 0);
    return {r[0], r[1], r[2]};
  }

  // Component dots of keys first .. first + R − 1: out_k[base + r] = s_k · Σ_j q_j·c_j for every
  // non-null out_k (keys indexed from `first`, outputs from `base`).
  template <std::size_t R>
  void score_block(const T* q, std::size_t first, T* const* outs, std::size_t base) const noexcept {
    const std::uint8_t* row = row_ptr(first);
    for (std::size_t k = 0; k < 3; ++k) {
      const part_info& p = parts_[k];
      T* out = outs[k];
      if (out == nullptr) continue;
      if (p.size == 0) {
        for (std::size_t r = 0; r < R; ++r) out[base + r] = T(0);
        continue;
      }
      T dots[R];
      detail::dot_codes<T, R>(q + p.offset, row + p.byte_offset, row_bytes_, p.size, p.plan,
                              p.levels, dots);
      for (std::size_t r = 0; r < R; ++r) {
        out[base + r] = static_cast<T>(scales_[(first + r) * active_ + p.slot]) * dots[r];
      }
    }
  }

  [[nodiscard]] component_scores<T> norms_unchecked(std::size_t i) const noexcept {
    double r[3] = {0, 0, 0};
    alignas(64) T buf[detail::decode_chunk];
    for (std::size_t k = 0; k < 3; ++k) {
      const part_info& p = parts_[k];
      if (p.size == 0) continue;
      const std::uint8_t* stream = row_ptr(i) + p.byte_offset;
      std::int64_t sum = 0;  // ≤ 2^20 · 127² < 2^34: exact
      for (std::size_t start = 0; start < p.size; start += detail::decode_chunk) {
        const std::size_t len = std::min(detail::decode_chunk, p.size - start);
        detail::decode_groups<T>(stream, start / 8, (len + 7) / 8, p.plan, p.levels, buf);
        for (std::size_t j = 0; j < len; ++j) {
          const auto c = static_cast<std::int64_t>(buf[j]);
          sum += c * c;
        }
      }
      const double s = static_cast<double>(scales_[i * active_ + p.slot]);
      r[k] = (s * s) * static_cast<double>(sum);
    }
    return {static_cast<T>(r[0]), static_cast<T>(r[1]), static_cast<T>(r[2])};
  }

  void check_index(std::size_t i) const {
    if (i >= n_) {
      std::ostringstream os;
      os << "key index is " << i << ", expected < " << n_;
      require_argument(false, os.str());
    }
  }
  void check_query(std::span<const T> query) const {
    require_dimension("query.size()", query.size(), dims_.total());
    if (!kernels::all_finite(query.data(), query.size())) require_finite<T>("query", query);
  }
  void check_output(std::string_view what, std::size_t size) const {
    if (size != 0) require_dimension(what, size, n_);
  }

  std::size_t n_ = 0;
  component_dims dims_{};
  quantization_config config_{};
  part_info parts_[3]{};
  std::size_t active_ = 0;
  std::size_t row_bytes_ = 0;
  std::vector<std::uint8_t> codes_;
  std::vector<scale_type> scales_;
};

/// \brief Quantises key sets `[euclidean | hyperbolic | spherical]` (rows = keys,
/// dims.total() columns) into `packed_keys<T>`; see the file comment for the maths and layout.
template <attention_scalar T>
class component_quantizer {
 public:
  using value_type = T;

  /// Throws `invalid_config` if a bit width is outside [2, 8] or dims.total() = 0, and
  /// `input_too_large` if dims.total() > max_dimension.
  explicit component_quantizer(component_dims dims, quantization_config config = {})
      : dims_(dims), config_(config) {
    check_bits("euclidean_bits", config.euclidean_bits);
    check_bits("hyperbolic_bits", config.hyperbolic_bits);
    check_bits("spherical_bits", config.spherical_bits);
    require_config(dims.total() > 0, "component_dims.total() must be > 0");
    require_at_most("component_dims.total()", dims.total(), max_dimension);
  }

  /// Component sizes.
  [[nodiscard]] const component_dims& dims() const noexcept { return dims_; }
  /// Bits per code.
  [[nodiscard]] const quantization_config& config() const noexcept { return config_; }

  /// Quantises every row of `keys` (n × dims().total(); n = 0 gives an empty set).
  /// Throws `dimension_mismatch` (wrong column count), `input_too_large` (n > max_sequence_length,
  /// or — T = double only — a component whose max|x|/L exceeds FLT_MAX) and `non_finite_input`
  /// naming keys[row][col] of the first NaN/Inf.
  [[nodiscard]] packed_keys<T> quantize(const matrix_cref<T>& keys) const {
    const auto n = static_cast<std::size_t>(keys.rows());
    require_dimension("keys.cols()", static_cast<std::size_t>(keys.cols()), dims_.total());
    require_at_most("keys.rows()", n, max_sequence_length);
    require_finite<T>("keys", keys.data(), n, dims_.total(), keys.outerStride());

    packed_keys<T> out(dims_, config_, n);
    for (std::size_t i = 0; i < n; ++i) {
      const T* x = keys.data() + static_cast<std::ptrdiff_t>(i) * keys.outerStride();
      std::uint8_t* row = out.codes_.data() + i * out.row_bytes_;
      for (std::size_t k = 0; k < 3; ++k) {
        const auto& p = out.parts_[k];
        if (p.size == 0) continue;
        out.scales_[i * out.active_ + p.slot] =
            quantize_component(x + p.offset, p.size, p.bits, row + p.byte_offset, i, k);
      }
    }
    return out;
  }

 private:
  static void check_bits(std::string_view what, unsigned bits) {
    if (bits < min_quantization_bits || bits > max_quantization_bits) {
      std::ostringstream os;
      os << "quantization_config." << what << " is " << bits << ", expected a value in ["
         << min_quantization_bits << ", " << max_quantization_bits << "]";
      require_config(false, os.str());
    }
  }

  // Absmax scale rounded up to float, round-half-away codes, offset-binary little-endian packing
  // into the zero-initialised stream. Returns the scale.
  static float quantize_component(const T* x, std::size_t m, unsigned bits, std::uint8_t* stream,
                                  std::size_t row, std::size_t k) {
    const int levels = detail::quant_levels(bits);
    double amax = 0;
    for (std::size_t j = 0; j < m; ++j) amax = std::max(amax, std::abs(static_cast<double>(x[j])));
    if (amax == 0) {
      // All codes 0 → u = L in every field.
      for (std::size_t j = 0; j < m; ++j) put_code(stream, j, bits, static_cast<unsigned>(levels));
      return 0.0f;
    }
    const double sd = amax / static_cast<double>(levels);
    float s = static_cast<float>(sd);
    if (static_cast<double>(s) < sd) s = std::nextafter(s, std::numeric_limits<float>::infinity());
    if (!std::isfinite(s)) {
      static constexpr const char* names[3] = {"euclidean", "hyperbolic", "spherical"};
      std::ostringstream os;
      os << "input too large: keys[" << row << "] " << names[k]
         << " component has max |x| = " << amax << "; its scale max|x|/" << levels
         << " must not exceed FLT_MAX = " << std::numeric_limits<float>::max();
      throw input_too_large(os.str());
    }
    const double sdbl = static_cast<double>(s);
    for (std::size_t j = 0; j < m; ++j) {
      double c = std::round(static_cast<double>(x[j]) / sdbl);
      c = std::clamp(c, -static_cast<double>(levels), static_cast<double>(levels));
      put_code(stream, j, bits, static_cast<unsigned>(static_cast<int>(c) + levels));
    }
    return s;
  }

  // ORs the b-bit field u into stream bits [j·b, (j+1)·b) (spans at most two bytes).
  static void put_code(std::uint8_t* stream, std::size_t j, unsigned bits, unsigned u) noexcept {
    const std::size_t bit = j * bits;
    const std::size_t byte = bit / 8;
    const unsigned shift = static_cast<unsigned>(bit % 8);
    const unsigned v = u << shift;
    stream[byte] = static_cast<std::uint8_t>(stream[byte] | (v & 0xFFu));
    if (shift + bits > 8) stream[byte + 1] = static_cast<std::uint8_t>(stream[byte + 1] | (v >> 8));
  }

  component_dims dims_;
  quantization_config config_;
};

}  // namespace ruvector::attention
// ---- end ruvector/attention/curvature/component_quantizer.hpp ----
// ---- begin ruvector/attention/curvature/fused_attention.hpp ----
/// \file curvature/fused_attention.hpp
/// \brief Mixed-curvature attention over the product space E^e × H^h × S^s with a fused
/// Euclidean + hyperbolic + spherical kernel (theory 2; the seeds' `MixedCurvatureFusedAttention`).
///
/// Vectors are stored `[euclidean | hyperbolic | spherical]` (curvature/components.hpp). For head
/// h with weights (w_e, w_h, w_s) ≥ 0 and temperature τ > 0 the logit of key k for query q is
///
///     logit_h(q, k) = [ w_e·s_E·⟨q_E, k_E⟩ + w_h·sim_H(q_H, k_H) − w_s·d_S(q_S, k_S) ] / τ
///
/// - Euclidean: s_E = `euclidean_scale`, 1/√e by default (scaled dot product, Vaswani et al. 2017).
/// - Hyperbolic (Poincaré ball of curvature −c, c = −curvature_h > 0; Ganea, Bécigneul & Hofmann
///   2018, "Hyperbolic Neural Networks"):
///     `distance`: sim_H = −d_c(x, y),
///       d_c(x, y) = (1/√c)·arcosh(1 + 2c‖x − y‖² / ((1 − c‖x‖²)(1 − c‖y‖²))),
///       with ‖x − y‖² evaluated as ‖x‖² + ‖y‖² − 2⟨x, y⟩ clamped at 0 (so only the dot product
///       depends on both points) and arcosh(1 + z) = log1p(z + √(z(z + 2))) (accurate for small z).
///     `tangent`: sim_H = ⟨log₀x, log₀y⟩ with log₀y = (2/(√c·λ₀))·artanh(√c‖y‖)·y/‖y‖ and the
///       conformal factor λ₀ = 2, i.e. log₀y = α(y)·y with α(y) = artanh(√c‖y‖)/(√c‖y‖) (α(0) = 1).
///       log₀ is a radial rescaling, so ⟨log₀x, log₀y⟩ = α(x)·α(y)·⟨x, y⟩ exactly: the kernel uses
///       the same stored ball point in both modes and one stored scalar α per key.
/// - Spherical (sphere of radius R = 1/√c_s in R^s): d_S(x, y) = R·∠(x, y) =
///   R·arccos(clamp(⟨x̂, ŷ⟩, −1, 1)) with x̂ = x/‖x‖ — the geodesic distance after projecting both
///   points onto the sphere (radial projection; the angle does not depend on R).
///
/// weights_h = softmax over the keys of logit_h (max-subtracted, masked keys weight 0, all keys
/// masked → all-zero weights and a zero output, DESIGN.md §4); out_h = Σ_j weights_hj·v_j. The
/// vector API `compute` returns the **mean over heads** of out_h, evaluated as
/// Σ_j (1/H·Σ_h weights_hj)·v_j (one pass over the values whatever H); `compute_heads` returns
/// every out_h.
///
/// Differences from the Rust original (intended): per-head weights are configurable and every
/// head is used (not head 0 only); the key-side terms are prepared once per key set and reused
/// across queries; the Euclidean term is scaled by 1/√e; the spherical term is the geodesic
/// distance, not a cosine.
///
/// Numerical conventions:
/// - Ball projection: the hyperbolic parts of queries and keys are mapped into the closed ball of
///   radius r_max = (1 − `fused_ball_eps`)/√c, `fused_ball_eps` = 1e-5, by x ↦ x·r_max/‖x‖ when
///   ‖x‖ > r_max (computed in double, then rounded to T). The key terms ‖k_H‖², 1/(1 − c‖k_H‖²)
///   and α(k_H) are computed in double from the stored (rounded) point and stored as T, so near
///   the boundary they match the point the dot products see.
/// - Sphere: the spherical parts are divided by their norm (in double, then rounded to T). A zero
///   spherical part has no direction: it throws `invalid_argument` naming the query or the key row.
/// - Temperature: softmax is evaluated as exp((x_j − max x)·(1/τ)) with x the un-tempered mixture,
///   so a tiny τ (huge logits) cannot overflow: the result tends to the arg-max key. `logits()`
///   returns x/τ as is (it may overflow to ±inf for extreme τ).
/// - Accuracy: the fused form trades a second pass over the pair for cancellation. ‖x − y‖² is
///   exact up to ~ε_T·(‖x‖² + ‖y‖²) (ε_T = machine epsilon of T), so for two *nearly coincident*
///   points the absolute error of d_c grows like √ε_T·(1 − c‖x‖²)^(−1)/√c (largest near the
///   boundary). Likewise a dot-product error δ in ⟨x̂, ŷ⟩ moves the angle by δ/sin∠, i.e. by
///   √(2δ) for (anti)parallel points (~3e-4 rad in float, ~2e-8 in double). Well-separated pairs
///   are accurate to a few ε_T; use T = double when close pairs matter.
/// - Storage: `compute(q, keys, values)` prepares the keys into a thread-local key set each call
///   (its storage is kept per thread and reused, like the library's other scratch buffers).
/// - Validation: sizes, config ranges, a zero spherical part, and (with `check_finite`, default
///   on) NaN/±Inf in the query and keys (checked when the keys are prepared) and in the values
///   (checked lazily: only when the output is not finite). A finite input whose logits overflow
///   throws `non_finite_input` saying so.
///
/// The fused kernel has two stages, kept separate so that stage 2 can be fed with dot products
/// computed elsewhere (e.g. on quantised keys):
///   stage 1 `kernels::segment_row_dots`: one register-blocked pass over each stored key row gives
///     the three segment dot products ⟨q_E, k_E⟩, ⟨q_H, k_H⟩, ⟨q̂_S, k̂_S⟩ (three arrays of n);
///   stage 2 `kernels::curvature_similarities` turns them, with the precomputed key terms, into the
///     per-component similarities (vectorised log1p/sqrt/acos, once per key), and
///     `kernels::mix_curvature_components` forms each head's logits as a cheap pass over n.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <limits>
#include <memory>
#include <span>
#include <sstream>
#include <string>
#include <utility>
#include <vector>


namespace ruvector::attention {

/// \brief How the hyperbolic component compares two ball points.
enum class hyperbolic_similarity {
  distance,  ///< −d_c(q_H, k_H) (Poincaré geodesic distance)
  tangent    ///< ⟨log₀q_H, log₀k_H⟩ (inner product in the tangent space at the origin)
};

/// \brief Relative margin of the ball projection: hyperbolic parts are kept within radius
/// (1 − fused_ball_eps)/√c.
inline constexpr double fused_ball_eps = 1e-5;

/// \brief Configuration of `mixed_curvature_fused_attention` (validated by its constructor).
struct fused_curvature_config {
  /// Sizes of the [euclidean | hyperbolic | spherical] parts; total must be > 0.
  component_dims dims{};
  /// Curvature of the Poincaré ball, < 0 (the ball has curvature −c_h with c_h = −curvature_h).
  double curvature_h = -1.0;
  /// Curvature of the sphere, > 0 (radius 1/√curvature_s).
  double curvature_s = 1.0;
  /// Number of heads H ≥ 1.
  std::size_t num_heads = 1;
  /// Per-head (w_e, w_h, w_s), each finite and ≥ 0; empty = {0.5, 0.35, 0.15} for every head.
  std::vector<std::array<double, 3>> head_weights{};
  /// Softmax temperature τ > 0 (1/τ must be finite in T).
  double temperature = 1.0;
  /// Scale s_E of the Euclidean dot product, ≥ 0; 0 selects 1/√e.
  double euclidean_scale = 0.0;
  /// Similarity used for the hyperbolic part.
  hyperbolic_similarity hyperbolic = hyperbolic_similarity::distance;
  /// Throw `non_finite_input` on NaN/±Inf inputs (query, keys, values).
  bool check_finite = true;
};

/// \brief Query-side scalars of the hyperbolic part, the counterpart of the stored key terms.
template <class T>
struct fused_query_terms {
  T h_norm2 = T(0);      ///< ‖q_H‖² of the projected query
  T h_conformal = T(1);  ///< 1/(1 − c‖q_H‖²)
  T h_tangent = T(1);    ///< α(q_H) = artanh(√c‖q_H‖)/(√c‖q_H‖), 1 at the origin
};

/// \brief Key-side scalars of the hyperbolic part, one entry per key.
template <class T>
struct fused_key_terms {
  std::span<const T> h_norm2;      ///< ‖k_H‖²
  std::span<const T> h_conformal;  ///< 1/(1 − c‖k_H‖²)
  std::span<const T> h_tangent;    ///< α(k_H)
};

/// \brief Constants of stage 2 (`kernels::curvature_similarities`).
template <class T>
struct curvature_similarity_params {
  T c = T(1);                ///< c_h = −curvature_h > 0
  T sphere_radius = T(1);    ///< R = 1/√c_s
  T euclidean_scale = T(1);  ///< s_E
  hyperbolic_similarity hyperbolic = hyperbolic_similarity::distance;
  bool has_hyperbolic = true;  ///< h > 0 (otherwise sim_H = 0)
  bool has_spherical = true;   ///< s > 0 (otherwise sim_S = 0)
};

RUVECTOR_ATTENTION_KERNEL_WARNINGS_BEGIN

namespace kernels {

namespace detail {

/// Σ_c q[c]·row_r[c] over columns [begin, begin + len) for R rows at once (R FMA chains per loaded
/// query batch, like `row_dots`), written to out[0..R).
template <std::size_t R, class T, class Arch>
RUVECTOR_ATTENTION_ALWAYS_INLINE void segment_dots_block(const T* const* rows, const T* q,
                                                         std::size_t begin, std::size_t len,
                                                         T* out) noexcept {
  using B = batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const std::size_t vlen = len - len % W;
  B acc[R];
#pragma GCC unroll 8
  for (std::size_t r = 0; r < R; ++r) acc[r] = B(T(0));
  for (std::size_t c = begin; c < begin + vlen; c += W) {
    const B qb = B::load_unaligned(q + c);
#pragma GCC unroll 8
    for (std::size_t r = 0; r < R; ++r)
      acc[r] = xsimd::fma(qb, B::load_unaligned(rows[r] + c), acc[r]);
  }
#pragma GCC unroll 8
  for (std::size_t r = 0; r < R; ++r) {
    T s = kernels::detail::hsum(acc[r]);
    for (std::size_t c = begin + vlen; c < begin + len; ++c) s += q[c] * rows[r][c];
    out[r] = s;
  }
}

}  // namespace detail

/// \brief Stage 1 of the fused kernel: for each of the n key rows (`ldk` apart, laid out
/// `[E | H | S]` per `dims`) one pass over the row gives the three segment dot products
///   dot_e[j] = ⟨q_E, k_E⟩,  dot_h[j] = ⟨q_H, k_H⟩,  dot_s[j] = ⟨q_S, k_S⟩.
/// Rows are register-blocked 8 at a time; an empty segment gives 0.
template <class T, class Arch = default_arch>
void segment_row_dots(const T* k, std::size_t n, std::size_t ldk, const component_dims& dims,
                      const T* q, T* dot_e, T* dot_h, T* dot_s) noexcept {
  constexpr std::size_t R = 8;
  const std::size_t e = dims.euclidean, h = dims.hyperbolic, s = dims.spherical;
  const std::size_t ho = dims.hyperbolic_offset(), so = dims.spherical_offset();
  std::size_t j = 0;
  for (; j + R <= n; j += R) {
    const T* rows[R];
#pragma GCC unroll 8
    for (std::size_t r = 0; r < R; ++r) rows[r] = k + (j + r) * ldk;
    // The three segments are contiguous in each row, so the rows are streamed once, in order.
    detail::segment_dots_block<R, T, Arch>(rows, q, 0, e, dot_e + j);
    detail::segment_dots_block<R, T, Arch>(rows, q, ho, h, dot_h + j);
    detail::segment_dots_block<R, T, Arch>(rows, q, so, s, dot_s + j);
  }
  for (; j < n; ++j) {
    const T* row = k + j * ldk;
    dot_e[j] = dot<T, Arch>(q, row, e);
    dot_h[j] = dot<T, Arch>(q + ho, row + ho, h);
    dot_s[j] = dot<T, Arch>(q + so, row + so, s);
  }
}

namespace detail {

// Broadcast constants of stage 2 for one query.
template <class T, class Arch>
struct curvature_constants {
  using B = xsimd::batch<T, Arch>;
  B scale_e, q_norm2, two_c_qconf, neg_inv_sqrt_c, q_tangent, neg_radius;
  curvature_constants(const curvature_similarity_params<T>& p,
                      const fused_query_terms<T>& qt) noexcept
      : scale_e(p.euclidean_scale),
        q_norm2(qt.h_norm2),
        two_c_qconf(T(2) * p.c * qt.h_conformal),
        neg_inv_sqrt_c(-T(1) / std::sqrt(p.c)),
        q_tangent(qt.h_tangent),
        neg_radius(-p.sphere_radius) {}
};

// One batch of stage 2 (see curvature_similarities).
template <class T, class Arch>
RUVECTOR_ATTENTION_ALWAYS_INLINE void curvature_similarity_batch(
    const curvature_similarity_params<T>& p, const curvature_constants<T, Arch>& k,
    xsimd::batch<T, Arch>& e, xsimd::batch<T, Arch>& h, xsimd::batch<T, Arch>& s,
    const xsimd::batch<T, Arch>& kn2, const xsimd::batch<T, Arch>& kconf,
    const xsimd::batch<T, Arch>& ktan) noexcept {
  using B = xsimd::batch<T, Arch>;
  e = k.scale_e * e;
  if (!p.has_hyperbolic) {
    h = B(T(0));
  } else if (p.hyperbolic == hyperbolic_similarity::distance) {
    // ‖x − y‖² = ‖x‖² + ‖y‖² − 2⟨x, y⟩ ≥ 0;  z = 2c‖x − y‖²·conf_x·conf_y;
    // d = arcosh(1 + z)/√c = log1p(z + √(z(z + 2)))/√c.
    const B diff2 = xsimd::max(xsimd::fnma(B(T(2)), h, k.q_norm2 + kn2), B(T(0)));
    const B z = k.two_c_qconf * diff2 * kconf;
    const B d = xsimd::log1p(z + xsimd::sqrt(z * (z + B(T(2)))));
    h = k.neg_inv_sqrt_c * d;
  } else {
    // ⟨log₀x, log₀y⟩ = α(x)·α(y)·⟨x, y⟩.
    h = k.q_tangent * ktan * h;
  }
  if (!p.has_spherical) {
    s = B(T(0));
  } else {
    const B cosang = xsimd::min(xsimd::max(s, B(T(-1))), B(T(1)));
    s = k.neg_radius * xsimd::acos(cosang);
  }
}

}  // namespace detail

/// \brief Stage 2a of the fused kernel, in place: turns the segment dots of `segment_row_dots`
/// (computed with the prepared query: projected q_H, unit q_S, against prepared keys) into the
/// per-component similarities
///   e[j] ← s_E·e[j],   h[j] ← −d_c(q_H, k_H) or α(q_H)·α(k_H)·h[j],   s[j] ← −R·arccos(s[j])
/// using the query terms `qt` and the key terms `key_h_norm2/conformal/tangent` (n each). A
/// missing component (has_hyperbolic / has_spherical false) gives 0.
template <class T, class Arch = default_arch>
void curvature_similarities(std::size_t n, const curvature_similarity_params<T>& p,
                            const fused_query_terms<T>& qt, const T* key_h_norm2,
                            const T* key_h_conformal, const T* key_h_tangent, T* e, T* h,
                            T* s) noexcept {
  using B = batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const detail::curvature_constants<T, Arch> k(p, qt);
  std::size_t j = 0;
  for (; j + W <= n; j += W) {
    B be = B::load_unaligned(e + j), bh = B::load_unaligned(h + j), bs = B::load_unaligned(s + j);
    detail::curvature_similarity_batch<T, Arch>(
        p, k, be, bh, bs, B::load_unaligned(key_h_norm2 + j),
        B::load_unaligned(key_h_conformal + j), B::load_unaligned(key_h_tangent + j));
    be.store_unaligned(e + j);
    bh.store_unaligned(h + j);
    bs.store_unaligned(s + j);
  }
  if (j < n) {
    // Padding lanes hold harmless values (dots 0, the origin, conformal term 1).
    const std::size_t m = n - j;
    B be = kernels::detail::load_partial<T, Arch>(e + j, m, T(0));
    B bh = kernels::detail::load_partial<T, Arch>(h + j, m, T(0));
    B bs = kernels::detail::load_partial<T, Arch>(s + j, m, T(0));
    detail::curvature_similarity_batch<T, Arch>(
        p, k, be, bh, bs, kernels::detail::load_partial<T, Arch>(key_h_norm2 + j, m, T(0)),
        kernels::detail::load_partial<T, Arch>(key_h_conformal + j, m, T(1)),
        kernels::detail::load_partial<T, Arch>(key_h_tangent + j, m, T(1)));
    kernels::detail::store_partial(be, e + j, m);
    kernels::detail::store_partial(bh, h + j, m);
    kernels::detail::store_partial(bs, s + j, m);
  }
}

/// \brief Stage 2b: out[j] = w_e·e[j] + w_h·h[j] + w_s·s[j] (one head's un-tempered logits from
/// the component similarities).
template <class T, class Arch = default_arch>
void mix_curvature_components(std::size_t n, T w_e, T w_h, T w_s, const T* e, const T* h,
                              const T* s, T* out) noexcept {
  using B = batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const B be(w_e), bh(w_h), bs(w_s);
  std::size_t j = 0;
  for (; j + W <= n; j += W) {
    const B x = xsimd::fma(bs, B::load_unaligned(s + j),
                           xsimd::fma(bh, B::load_unaligned(h + j), be * B::load_unaligned(e + j)));
    x.store_unaligned(out + j);
  }
  for (; j < n; ++j) out[j] = w_s * s[j] + (w_h * h[j] + w_e * e[j]);
}

/// \brief In-place softmax of x/τ evaluated as exp((x_j − max x)·inv_tau) / Σ, so no exponent
/// overflows for any τ. Entries equal to −inf (masked) get weight 0; if every entry is −inf (or
/// n = 0) the result is all zeros and the function returns false. `inv_tau` must be finite > 0
/// and x must not hold NaN or +inf.
template <class T, class Arch = default_arch>
bool tempered_softmax(T* x, std::size_t n, T inv_tau) noexcept {
  using B = batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const T m = max<T, Arch>(x, n);
  if (!(m > -std::numeric_limits<T>::infinity())) {
    for (std::size_t j = 0; j < n; ++j) x[j] = T(0);
    return false;
  }
  const B bm(m), bt(inv_tau);
  B acc0(T(0)), acc1(T(0));
  std::size_t j = 0;
  for (; j + 2 * W <= n; j += 2 * W) {
    const B e0 = xsimd::exp((B::load_unaligned(x + j) - bm) * bt);
    const B e1 = xsimd::exp((B::load_unaligned(x + j + W) - bm) * bt);
    e0.store_unaligned(x + j);
    e1.store_unaligned(x + j + W);
    acc0 += e0;
    acc1 += e1;
  }
  for (; j + W <= n; j += W) {
    const B e0 = xsimd::exp((B::load_unaligned(x + j) - bm) * bt);
    e0.store_unaligned(x + j);
    acc0 += e0;
  }
  if (j < n) {
    // Padding lanes hold −inf and contribute exp(−inf) = 0.
    const B e0 = xsimd::exp(
        (kernels::detail::load_partial<T, Arch>(x + j, n - j, -std::numeric_limits<T>::infinity()) -
         bm) *
        bt);
    kernels::detail::store_partial(e0, x + j, n - j);
    acc1 += e0;
  }
  const T l = kernels::detail::hsum(acc0 + acc1);  // ≥ 1: the maximum contributes exp(0)
  scale<T, Arch>(T(1) / l, x, n);
  return true;
}

}  // namespace kernels

RUVECTOR_ATTENTION_KERNEL_WARNINGS_END

template <attention_scalar T>
class mixed_curvature_fused_attention;

/// \brief Keys prepared for `mixed_curvature_fused_attention`: reusable across queries (and
/// across mechanisms with the same dims and curvature_h), immutable, safe to share across threads.
///
/// Layout: n rows of `stride()` values (64-byte aligned start, the row stride rounded up to a
/// multiple of 64 bytes, padding zero), each `[k_E | proj(k_H) | k_S/‖k_S‖]`; plus the key terms
/// ‖k_H‖², 1/(1 − c‖k_H‖²) and α(k_H) as three arrays of n (computed in double from the stored
/// point, stored as T).
template <attention_scalar T>
class mixed_curvature_key_set {
 public:
  using value_type = T;

  /// An empty key set (size() == 0); obtain real ones from `prepare_keys`.
  mixed_curvature_key_set() = default;

  /// Number of keys n.
  [[nodiscard]] std::size_t size() const noexcept { return n_; }
  /// True when no key is held.
  [[nodiscard]] bool empty() const noexcept { return n_ == 0; }
  /// The component sizes the keys were prepared for.
  [[nodiscard]] const component_dims& dims() const noexcept { return dims_; }
  /// The ball curvature the keys were prepared for (< 0).
  [[nodiscard]] double curvature_h() const noexcept { return curvature_h_; }
  /// Distance between consecutive rows, in elements (≥ dims().total()).
  [[nodiscard]] std::size_t stride() const noexcept { return stride_; }
  /// Pointer to the first prepared row.
  [[nodiscard]] const T* data() const noexcept { return rows_.data(); }
  /// Prepared row j (dims().total() values). Throws `invalid_argument` if j >= size().
  [[nodiscard]] std::span<const T> row(std::size_t j) const {
    if (j >= n_) {
      std::ostringstream os;
      os << "invalid argument: key row " << j << " requested, the key set holds " << n_;
      throw invalid_argument(os.str());
    }
    return {rows_.data() + j * stride_, dims_.total()};
  }
  /// The key terms ‖k_H‖², 1/(1 − c‖k_H‖²), α(k_H) (n each).
  [[nodiscard]] fused_key_terms<T> key_terms() const noexcept {
    return {std::span<const T>(h_norm2_.data(), n_), std::span<const T>(h_conformal_.data(), n_),
            std::span<const T>(h_tangent_.data(), n_)};
  }

 private:
  friend class mixed_curvature_fused_attention<T>;

  std::size_t n_ = 0;
  std::size_t stride_ = 0;
  component_dims dims_{};
  double curvature_h_ = -1.0;
  std::vector<T, Eigen::aligned_allocator<T>> rows_;
  std::vector<T> h_norm2_, h_conformal_, h_tangent_;
};

/// \brief Mixed-curvature attention E^e × H^h × S^s with the fused kernel; see the file comment.
/// Immutable after construction and safe to share across threads (scratch is thread-local).
/// \tparam T float or double.
template <attention_scalar T>
class mixed_curvature_fused_attention {
 public:
  using value_type = T;

  /// Validates `config`; throws `invalid_config` naming the offending field.
  explicit mixed_curvature_fused_attention(fused_curvature_config config)
      : config_(std::move(config)) {
    const auto& c = config_;
    const auto fail = [](const char* field, const char* expected, double got) {
      std::ostringstream os;
      os << "fused_curvature_config." << field << " must be " << expected << " (got " << got << ")";
      require_config(false, os.str());
    };
    const std::size_t d = c.dims.total();
    if (d == 0) fail("dims.total()", "> 0", 0.0);
    require_at_most("fused_curvature_config.dims.total()", d, max_dimension);
    if (!(std::isfinite(c.curvature_h) && c.curvature_h < 0.0) ||
        !(static_cast<T>(-c.curvature_h) > T(0)) ||
        !std::isfinite(static_cast<T>(-c.curvature_h)) ||
        !std::isfinite(static_cast<T>(1.0 / std::sqrt(-c.curvature_h))))
      fail("curvature_h", "finite and < 0 (representable in T)", c.curvature_h);
    if (!(std::isfinite(c.curvature_s) && c.curvature_s > 0.0) ||
        !std::isfinite(static_cast<T>(1.0 / std::sqrt(c.curvature_s))))
      fail("curvature_s", "finite and > 0 (1/sqrt representable in T)", c.curvature_s);
    if (c.num_heads == 0 || c.num_heads > max_heads)
      fail("num_heads", "in [1, 65536]", static_cast<double>(c.num_heads));
    if (!c.head_weights.empty() && c.head_weights.size() != c.num_heads) {
      std::ostringstream os;
      os << "fused_curvature_config.head_weights must be empty or hold num_heads = " << c.num_heads
         << " entries (got " << c.head_weights.size() << ")";
      require_config(false, os.str());
    }
    for (std::size_t h = 0; h < c.head_weights.size(); ++h) {
      for (std::size_t i = 0; i < 3; ++i) {
        const double w = c.head_weights[h][i];
        if (!(std::isfinite(w) && w >= 0.0 && std::isfinite(static_cast<T>(w)))) {
          std::ostringstream os;
          os << "fused_curvature_config.head_weights[" << h << "][" << i
             << "] must be finite and >= 0 (got " << w << ")";
          require_config(false, os.str());
        }
      }
    }
    if (!(std::isfinite(c.temperature) && c.temperature > 0.0) ||
        !(static_cast<T>(c.temperature) > T(0)) ||
        !std::isfinite(static_cast<T>(1.0 / c.temperature)))
      fail("temperature", "finite and > 0 with 1/temperature finite in T", c.temperature);
    if (!(std::isfinite(c.euclidean_scale) && c.euclidean_scale >= 0.0) ||
        !std::isfinite(static_cast<T>(c.euclidean_scale)))
      fail("euclidean_scale", "finite and >= 0 (0 = 1/sqrt(e))", c.euclidean_scale);

    c_h_ = -c.curvature_h;
    params_.c = static_cast<T>(c_h_);
    params_.sphere_radius = static_cast<T>(1.0 / std::sqrt(c.curvature_s));
    const double se = c.euclidean_scale > 0.0 ? c.euclidean_scale
                      : c.dims.euclidean > 0
                          ? 1.0 / std::sqrt(static_cast<double>(c.dims.euclidean))
                          : 1.0;
    params_.euclidean_scale = static_cast<T>(se);
    params_.hyperbolic = c.hyperbolic;
    params_.has_hyperbolic = c.dims.hyperbolic > 0;
    params_.has_spherical = c.dims.spherical > 0;
    inv_tau_ = static_cast<T>(1.0 / c.temperature);
    weights_.resize(c.num_heads);
    for (std::size_t h = 0; h < c.num_heads; ++h) {
      const std::array<double, 3> w =
          c.head_weights.empty() ? default_head_weights : c.head_weights[h];
      weights_[h] = {static_cast<T>(w[0]), static_cast<T>(w[1]), static_cast<T>(w[2])};
    }
    heads_identical_ = std::all_of(weights_.begin(), weights_.end(),
                                   [&](const std::array<T, 3>& w) { return w == weights_[0]; });
  }

  /// (w_e, w_h, w_s) used for every head when `head_weights` is empty.
  static constexpr std::array<double, 3> default_head_weights{0.5, 0.35, 0.15};
  /// Largest accepted `num_heads`.
  static constexpr std::size_t max_heads = std::size_t{1} << 16;

  /// The validated configuration.
  [[nodiscard]] const fused_curvature_config& config() const noexcept { return config_; }
  /// The constants of stage 2 (c, R, s_E, mode) as T.
  [[nodiscard]] const curvature_similarity_params<T>& similarity_params() const noexcept {
    return params_;
  }
  /// (w_e, w_h, w_s) of head h as T (h < num_heads, unchecked).
  [[nodiscard]] const std::array<T, 3>& head_weights(std::size_t h) const noexcept {
    return weights_[h];
  }

  /// \brief Prepares keys (rows = keys, width dims.total()) once for any number of queries:
  /// projects k_H into the ball, normalises k_S, computes the key terms. Throws
  /// `dimension_mismatch`, `invalid_argument` (no keys, zero spherical part of a key) or
  /// `non_finite_input`.
  [[nodiscard]] mixed_curvature_key_set<T> prepare_keys(const matrix_cref<T>& keys) const {
    mixed_curvature_key_set<T> ks;
    prepare_keys_into(keys, ks);
    return ks;
  }

  /// \brief As `prepare_keys`, reusing the storage of `key_set` (no allocation when it already
  /// holds at least as many values). On an exception `key_set` is left empty.
  void prepare_keys_into(const matrix_cref<T>& keys, mixed_curvature_key_set<T>& key_set) const {
    const auto& dims = config_.dims;
    const std::size_t d = dims.total();
    const std::size_t n = static_cast<std::size_t>(keys.rows());
    require_dimension("keys.cols()", static_cast<std::size_t>(keys.cols()), d);
    require_non_empty("keys", n);
    require_at_most("keys.rows()", n, max_sequence_length);
    if (config_.check_finite) {
      // Vectorised scan per row; the scalar pass that names the element runs only on failure.
      for (std::size_t j = 0; j < n; ++j) {
        if (!kernels::all_finite(keys.data() + static_cast<std::ptrdiff_t>(j) * keys.outerStride(),
                                 d))
          require_finite("keys", keys.data(), n, d, keys.outerStride());
      }
    }

    auto& ks = key_set;
    constexpr std::size_t line = 64 / sizeof(T);
    const std::size_t stride = (d + line - 1) / line * line;
    ks.n_ = 0;  // empty until complete
    if (ks.rows_.size() < n * stride) ks.rows_.resize(n * stride);
    ks.h_norm2_.resize(n);
    ks.h_conformal_.resize(n);
    ks.h_tangent_.resize(n);
    for (std::size_t j = 0; j < n; ++j) {
      const T* src = keys.data() + static_cast<std::ptrdiff_t>(j) * keys.outerStride();
      T* dst = ks.rows_.data() + j * stride;
      const hyperbolic_terms t = prepare_row(src, dst, "keys", j, true);
      std::fill(dst + d, dst + stride, T(0));
      ks.h_norm2_[j] = static_cast<T>(t.norm2);
      ks.h_conformal_[j] = static_cast<T>(t.conformal);
      ks.h_tangent_[j] = static_cast<T>(t.tangent);
    }
    ks.stride_ = stride;
    ks.dims_ = dims;
    ks.curvature_h_ = config_.curvature_h;
    ks.n_ = n;
  }

  /// \brief Writes the prepared query `[q_E | proj(q_H) | q_S/‖q_S‖]` into `row` (size
  /// dims.total()) and returns its hyperbolic terms — the query side of stage 1 and stage 2.
  /// Throws `dimension_mismatch`, `non_finite_input` or `invalid_argument` (zero spherical part).
  fused_query_terms<T> prepare_query(std::span<const T> query, std::span<T> row) const {
    const std::size_t d = config_.dims.total();
    require_dimension("query.size()", query.size(), d);
    require_dimension("row.size()", row.size(), d);
    if (config_.check_finite) require_finite<T>("query", query);
    const hyperbolic_terms t = prepare_row(query.data(), row.data(), "query", 0, false);
    return {static_cast<T>(t.norm2), static_cast<T>(t.conformal), static_cast<T>(t.tangent)};
  }

  /// \brief Mean over heads of the attention outputs for one query; keys are prepared per call
  /// into a thread-local key set (use `prepare_keys` + the key-set overload to reuse them).
  [[nodiscard]] std::vector<T> compute(std::span<const T> query, const matrix_cref<T>& keys,
                                       const matrix_cref<T>& values) const {
    check_value_rows(values, static_cast<std::size_t>(keys.rows()));
    auto& ks = per_call_keys();
    prepare_keys_into(keys, ks);
    return compute(query, ks, values);
  }

  /// \brief As `compute`, with a key mask (`true` = visible). All masked → zeros.
  [[nodiscard]] std::vector<T> compute_with_mask(std::span<const T> query,
                                                 const matrix_cref<T>& keys,
                                                 const matrix_cref<T>& values,
                                                 std::span<const bool> mask) const {
    require_dimension("mask.size()", mask.size(), static_cast<std::size_t>(keys.rows()));
    check_value_rows(values, static_cast<std::size_t>(keys.rows()));
    auto& ks = per_call_keys();
    prepare_keys_into(keys, ks);
    return compute_with_mask(query, ks, values, mask);
  }

  /// \brief Mean over heads of the attention outputs for one query against a prepared key set.
  [[nodiscard]] std::vector<T> compute(std::span<const T> query,
                                       const mixed_curvature_key_set<T>& key_set,
                                       const matrix_cref<T>& values) const {
    std::vector<T> out(static_cast<std::size_t>(values.cols()));
    run(query, key_set, values, {}, out.data(), nullptr);
    return out;
  }

  /// \brief As the key-set `compute`, with a key mask (`true` = visible).
  [[nodiscard]] std::vector<T> compute_with_mask(std::span<const T> query,
                                                 const mixed_curvature_key_set<T>& key_set,
                                                 const matrix_cref<T>& values,
                                                 std::span<const bool> mask) const {
    require_dimension("mask.size()", mask.size(), key_set.size());
    std::vector<T> out(static_cast<std::size_t>(values.cols()));
    run(query, key_set, values, mask, out.data(), nullptr);
    return out;
  }

  /// \brief Every head's output: row h of the [num_heads, dv] result is out_h. `mask` (empty =
  /// all visible) holds `true` for visible keys.
  [[nodiscard]] row_matrix<T> compute_heads(std::span<const T> query,
                                            const mixed_curvature_key_set<T>& key_set,
                                            const matrix_cref<T>& values,
                                            std::span<const bool> mask = {}) const {
    if (!mask.empty()) require_dimension("mask.size()", mask.size(), key_set.size());
    row_matrix<T> out(static_cast<Eigen::Index>(config_.num_heads), values.cols());
    run(query, key_set, values, mask, nullptr, &out);
    return out;
  }

  /// \brief Head `head`'s logits logit_h(q, k_j) = x_j/τ for every key (no mask; may overflow to
  /// ±inf for an extreme τ — the attention itself never does). `out.size()` must be n.
  void logits(std::span<const T> query, const mixed_curvature_key_set<T>& key_set, std::size_t head,
              std::span<T> out) const {
    if (head >= config_.num_heads) {
      std::ostringstream os;
      os << "invalid argument: head is " << head
         << ", expected < num_heads = " << config_.num_heads;
      throw invalid_argument(os.str());
    }
    check_key_set(key_set);
    require_dimension("out.size() (must equal the number of keys)", out.size(), key_set.size());
    const std::size_t n = key_set.size();
    scratch_layout L(config_.dims.total(), n);
    T* buf = scratch(L.total);
    similarities(query, key_set, buf, L);
    const auto& w = weights_[head];
    kernels::mix_curvature_components<T>(n, w[0], w[1], w[2], buf + L.e, buf + L.h, buf + L.s,
                                         out.data());
    kernels::scale<T>(inv_tau_, out.data(), n);
  }

  /// \brief Finishes an attention call from externally computed segment dots (stage 2 onward):
  /// `dot_e/dot_h/dot_s` (n each, overwritten with the component similarities) must be the dot
  /// products of the prepared query (`prepare_query`, whose terms are `qt`) with prepared keys
  /// whose terms are `keys`. Writes the mean over heads into `out` (size values.cols()).
  void compute_from_dots(const fused_query_terms<T>& qt, std::span<T> dot_e, std::span<T> dot_h,
                         std::span<T> dot_s, const fused_key_terms<T>& keys,
                         const matrix_cref<T>& values, std::span<const bool> mask,
                         std::span<T> out) const {
    const std::size_t n = dot_e.size();
    require_non_empty("dot_e", n);
    require_dimension("dot_h.size()", dot_h.size(), n);
    require_dimension("dot_s.size()", dot_s.size(), n);
    require_dimension("keys.h_norm2.size()", keys.h_norm2.size(), n);
    require_dimension("keys.h_conformal.size()", keys.h_conformal.size(), n);
    require_dimension("keys.h_tangent.size()", keys.h_tangent.size(), n);
    check_value_rows(values, n);
    if (!mask.empty()) require_dimension("mask.size()", mask.size(), n);
    require_dimension("out.size() (must equal values.cols())", out.size(),
                      static_cast<std::size_t>(values.cols()));
    kernels::curvature_similarities<T>(n, params_, qt, keys.h_norm2.data(), keys.h_conformal.data(),
                                       keys.h_tangent.data(), dot_e.data(), dot_h.data(),
                                       dot_s.data());
    scratch_layout L(0, n);
    T* buf = scratch(L.total);
    attend(dot_e.data(), dot_h.data(), dot_s.data(), n, values, mask, buf + L.x, buf + L.wbar,
           out.data(), nullptr);
    if (config_.check_finite && !kernels::all_finite(out.data(), out.size())) {
      require_finite("values", values.data(), n, static_cast<std::size_t>(values.cols()),
                     values.outerStride());
      throw non_finite_input(
          "non-finite input: an attention logit or output is not finite although the values "
          "are finite (non-finite dots or key terms, or an overflow)");
    }
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
                                                 const std::vector<bool>& mask) const {
    const std::unique_ptr<bool[]> m(new bool[mask.size()]);
    std::copy(mask.begin(), mask.end(), m.get());
    return compute_with_mask(std::span<const T>(query), to_matrix(keys, "keys"),
                             to_matrix(values, "values"),
                             std::span<const bool>(m.get(), mask.size()));
  }

 private:
  struct hyperbolic_terms {
    double norm2, conformal, tangent;
  };

  // Offsets (in elements, each a multiple of 16 so every piece stays 64-byte aligned) of the
  // per-call scratch: prepared query, the three similarity arrays, one head's logits, the
  // head-mean weights.
  struct scratch_layout {
    std::size_t q = 0, e, h, s, x, wbar, total;
    scratch_layout(std::size_t d, std::size_t n) noexcept {
      const std::size_t nr = round(n);
      e = q + round(d);
      h = e + nr;
      s = h + nr;
      x = s + nr;
      wbar = x + nr;
      total = wbar + nr;
    }
    static std::size_t round(std::size_t v) noexcept { return (v + 15) / 16 * 16; }
  };

  // Per-thread scratch of this mechanism family (its own buffer, so callers of
  // compute_from_dots may keep their dots in the shared detail::thread_scratch slots).
  static T* scratch(std::size_t n) {
    thread_local std::vector<T, Eigen::aligned_allocator<T>> buffer;
    if (buffer.size() < n) buffer.resize(n);
    return buffer.data();
  }

  // The key set of the per-call (raw keys) path: thread-local so its storage is reused.
  static mixed_curvature_key_set<T>& per_call_keys() {
    thread_local mixed_curvature_key_set<T> ks;
    return ks;
  }

  // Σ x_i² in double with 8 independent partial sums (no serial dependency chain).
  static double squared_norm(const T* x, std::size_t n) noexcept {
    double a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8)
      for (std::size_t r = 0; r < 8; ++r)
        a[r] += static_cast<double>(x[i + r]) * static_cast<double>(x[i + r]);
    double sum = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
    for (; i < n; ++i) sum += static_cast<double>(x[i]) * static_cast<double>(x[i]);
    return sum;
  }

  // Copies one vector into storage layout: E as is, H projected into the ball, S normalised.
  // Returns the hyperbolic terms of the stored (rounded) H part, computed in double.
  hyperbolic_terms prepare_row(const T* src, T* dst, const char* what, std::size_t index,
                               bool is_key) const {
    const auto& dims = config_.dims;
    const std::size_t e = dims.euclidean, h = dims.hyperbolic, s = dims.spherical;
    std::copy(src, src + e, dst);

    const T* sh = src + dims.hyperbolic_offset();
    T* dh = dst + dims.hyperbolic_offset();
    const double n2 = squared_norm(sh, h);
    const double sqrt_c = std::sqrt(c_h_);
    const double r_max = (1.0 - fused_ball_eps) / sqrt_c;
    const double norm = std::sqrt(n2);
    double stored2 = n2;
    if (norm > r_max) {
      const double f = r_max / norm;
      for (std::size_t i = 0; i < h; ++i) dh[i] = static_cast<T>(f * static_cast<double>(sh[i]));
      stored2 = squared_norm(dh, h);  // the terms describe the stored (rounded) point
    } else {
      std::copy(sh, sh + h, dh);
    }
    const double u = sqrt_c * std::sqrt(stored2);  // < 1 by the projection
    hyperbolic_terms t{stored2, 1.0 / (1.0 - c_h_ * stored2), u > 0.0 ? std::atanh(u) / u : 1.0};

    const T* ss = src + dims.spherical_offset();
    T* ds = dst + dims.spherical_offset();
    const double s2 = squared_norm(ss, s);
    if (s > 0 && !(s2 > 0.0)) {
      std::ostringstream os;
      os << "invalid argument: " << what;
      if (is_key) os << "[" << index << "]";
      os << " has a zero spherical part (elements [" << dims.spherical_offset() << ", "
         << dims.total() << ")): the point on the sphere is undefined";
      throw invalid_argument(os.str());
    }
    const double inv = s > 0 ? 1.0 / std::sqrt(s2) : 0.0;
    for (std::size_t i = 0; i < s; ++i) ds[i] = static_cast<T>(inv * static_cast<double>(ss[i]));
    return t;
  }

  void check_key_set(const mixed_curvature_key_set<T>& ks) const {
    if (ks.empty()) throw invalid_argument("invalid argument: key_set is empty");
    if (ks.dims() != config_.dims) {
      std::ostringstream os;
      os << "dimension mismatch: key_set.dims() is (" << ks.dims().euclidean << ", "
         << ks.dims().hyperbolic << ", " << ks.dims().spherical << "), expected ("
         << config_.dims.euclidean << ", " << config_.dims.hyperbolic << ", "
         << config_.dims.spherical << ")";
      throw dimension_mismatch(os.str());
    }
    if (ks.curvature_h() != config_.curvature_h) {
      std::ostringstream os;
      os << "invalid argument: key_set was prepared for curvature_h = " << ks.curvature_h()
         << ", expected " << config_.curvature_h;
      throw invalid_argument(os.str());
    }
  }

  static void check_value_rows(const matrix_cref<T>& values, std::size_t n) {
    require_dimension("values.rows() (must equal the number of keys)",
                      static_cast<std::size_t>(values.rows()), n);
  }

  // Validates and runs stages 1 and 2a into buf (layout L): per-component similarities.
  void similarities(std::span<const T> query, const mixed_curvature_key_set<T>& ks, T* buf,
                    const scratch_layout& L) const {
    const std::size_t d = config_.dims.total(), n = ks.size();
    const fused_query_terms<T> qt = prepare_query(query, std::span<T>(buf + L.q, d));
    kernels::segment_row_dots<T>(ks.data(), n, ks.stride(), config_.dims, buf + L.q, buf + L.e,
                                 buf + L.h, buf + L.s);
    kernels::curvature_similarities<T>(n, params_, qt, ks.h_norm2_.data(), ks.h_conformal_.data(),
                                       ks.h_tangent_.data(), buf + L.e, buf + L.h, buf + L.s);
  }

  // Head h's weights into x (n): mixture, mask, tempered softmax.
  void head_weights_into(std::size_t head, const T* e, const T* h, const T* s, std::size_t n,
                         std::span<const bool> mask, T* x) const noexcept {
    const auto& w = weights_[head];
    kernels::mix_curvature_components<T>(n, w[0], w[1], w[2], e, h, s, x);
    if (!mask.empty()) {
      for (std::size_t j = 0; j < n; ++j)
        if (!mask[j]) x[j] = -std::numeric_limits<T>::infinity();
    }
    kernels::tempered_softmax<T>(x, n, inv_tau_);
  }

  // From similarities to outputs: `out` (mean over heads, dv) and/or `heads` ([H, dv]).
  void attend(const T* e, const T* h, const T* s, std::size_t n, const matrix_cref<T>& values,
              std::span<const bool> mask, T* x, T* wbar, T* out, row_matrix<T>* heads) const {
    const std::size_t dv = static_cast<std::size_t>(values.cols());
    const std::size_t ldv = static_cast<std::size_t>(values.outerStride());
    const std::size_t H = config_.num_heads;
    if (heads != nullptr) {
      for (std::size_t hd = 0; hd < H; ++hd) {
        if (hd == 0 || !heads_identical_) head_weights_into(hd, e, h, s, n, mask, x);
        kernels::weighted_row_sum(x, n, values.data(), dv, ldv, T(0),
                                  heads->data() + hd * static_cast<std::size_t>(heads->cols()));
      }
      return;
    }
    if (heads_identical_) {  // the mean of identical heads is any one of them
      head_weights_into(0, e, h, s, n, mask, x);
      kernels::weighted_row_sum(x, n, values.data(), dv, ldv, T(0), out);
      return;
    }
    // mean_h Σ_j w_hj v_j = Σ_j (mean_h w_hj) v_j: one pass over the values.
    std::fill(wbar, wbar + n, T(0));
    const T inv_h = T(1) / static_cast<T>(H);
    for (std::size_t hd = 0; hd < H; ++hd) {
      head_weights_into(hd, e, h, s, n, mask, x);
      kernels::axpy(inv_h, x, wbar, n);
    }
    kernels::weighted_row_sum(wbar, n, values.data(), dv, ldv, T(0), out);
  }

  // The validated path behind compute / compute_with_mask / compute_heads.
  void run(std::span<const T> query, const mixed_curvature_key_set<T>& ks,
           const matrix_cref<T>& values, std::span<const bool> mask, T* out,
           row_matrix<T>* heads) const {
    check_key_set(ks);
    check_value_rows(values, ks.size());
    const std::size_t n = ks.size();
    const std::size_t dv = static_cast<std::size_t>(values.cols());
    scratch_layout L(config_.dims.total(), n);
    T* buf = scratch(L.total);
    similarities(query, ks, buf, L);
    attend(buf + L.e, buf + L.h, buf + L.s, n, values, mask, buf + L.x, buf + L.wbar, out, heads);
    if (config_.check_finite) {
      const bool ok = heads == nullptr ? kernels::all_finite(out, dv)
                                       : kernels::all_finite(heads->data(), heads->size());
      if (!ok) {
        require_finite<T>("query", query);
        require_finite("values", values.data(), n, dv, values.outerStride());
        throw non_finite_input(
            "non-finite input: an attention logit or output overflowed although the query, keys "
            "and values are finite (reduce the input magnitude, the weights or the "
            "euclidean_scale)");
      }
    }
  }

  fused_curvature_config config_;
  double c_h_ = 1.0;
  curvature_similarity_params<T> params_{};
  T inv_tau_ = T(1);
  std::vector<std::array<T, 3>> weights_;
  bool heads_identical_ = true;
};

}  // namespace ruvector::attention
// ---- end ruvector/attention/curvature/fused_attention.hpp ----
// ---- begin ruvector/attention/curvature/quantized_attention.hpp ----
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
// ---- end ruvector/attention/curvature/quantized_attention.hpp ----
// ---- begin ruvector/attention/curvature/tangent_space.hpp ----
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

// ---- begin ruvector/attention/geometry/poincare.hpp ----
/// \file geometry/poincare.hpp
/// \brief The Poincaré ball 𝔻ⁿ_c of constant curvature −c (c > 0) as a
/// `constant_curvature_manifold`, with the gyrovector operations of Ganea, Bécigneul & Hofmann
/// 2018, "Hyperbolic Neural Networks" (NeurIPS), §2, and Ungar 2008, "Analytic Hyperbolic
/// Geometry and Albert Einstein's Special Theory of Relativity".
///
/// Points are x ∈ Rⁿ with c‖x‖² < 1; tangent vectors at x are all of Rⁿ. With β_x = 1 − c‖x‖²:
///
///     λ_x        = 2 / (1 − c‖x‖²) = 2/β_x                       (conformal factor)
///     ⟨u, v⟩_x   = λ_x² ⟨u, v⟩                                    (Riemannian metric)
///     x ⊕ y      = ((1 + 2c⟨x,y⟩ + c‖y‖²) x + (1 − c‖x‖²) y) / (1 + 2c⟨x,y⟩ + c²‖x‖²‖y‖²)
///     r ⊗ x      = (1/√c) tanh(r artanh(√c‖x‖)) x/‖x‖             (r ⊗ 0 = 0)
///     gyr[u,v]w  = ⊖(u ⊕ v) ⊕ (u ⊕ (v ⊕ w))
///     d(x, y)    = (2/√c) artanh(√c ‖(−x) ⊕ y‖)
///     exp_x(v)   = x ⊕ (tanh(√c λ_x ‖v‖/2) v/(√c‖v‖))               (exp_x(0) = x)
///     log_x(y)   = (2/(√c λ_x)) artanh(√c‖(−x) ⊕ y‖) ((−x) ⊕ y)/‖(−x) ⊕ y‖
///     exp_0(v)   = tanh(√c‖v‖) v/(√c‖v‖),   log_0(y) = artanh(√c‖y‖) y/(√c‖y‖)
///     P_{x→y}(v) = (λ_x/λ_y) gyr[y, −x] v                         (parallel transport)
///
/// This is the full conformal factor 2/(1 − c‖x‖²) of Ganea et al. (the Rust crate this library
/// replaces used half of it, which breaks exp_x ∘ log_x = id away from the origin).
///
/// Evaluation (all algebraically identical to the formulas above, chosen so that close points and
/// points near the boundary keep their digits; none allocates):
/// - ‖x − y‖² and ‖x + y‖² are formed from the element-wise difference/sum in one fused pass with
///   ‖x‖² and ‖y‖², never as ‖x‖² + ‖y‖² ± 2⟨x, y⟩ (which cancels catastrophically).
/// - The Möbius denominator is 1 + 2c⟨x,y⟩ + c²‖x‖²‖y‖² = β_x β_y + c‖x + y‖² (a sum of
///   non-negative terms).
/// - d(x, y) = (1/√c) arcosh(1 + δ) with δ = 2c‖x − y‖²/(β_x β_y), evaluated as
///   (1/√c) log1p(δ + √δ·√(δ + 2)), accurate for δ → 0 and free of overflow.
/// - log_x(y) = g(δ)·β_x/√(2β_xβ_y D) · (β_x (y − x) − c‖x − y‖² x) with D = β_xβ_y + c‖x − y‖² and
///   g(δ) = arcosh(1 + δ)/√δ (g(0) = √2): the same value as the formula above, without dividing by
///   a vanishing ‖(−x) ⊕ y‖.
/// - artanh(√c‖x‖) = ½ log1p(2r(1 + r)/β_x) with r = √c‖x‖, accurate at both ends.
/// - gyr[y, −x]w (parallel transport, `gyration`) uses Ungar's closed form rewritten in
///   Δ = y − x so that every correction term is O(‖Δ‖) (no cancellation for close points).
///
/// Numerical conventions:
/// - eps: the library keeps the points it produces in the closed ball of radius
///   max_norm = (1 − eps)/√c. Defaults: 1e-5 for float, 1e-10 for double. Near the boundary one
///   unit in the last place of a coordinate moves a distance by about λ_x·ulp(‖x‖); at
///   √c‖x‖ = 1 − eps that is ≈ 6e-3 for float (ulp 6e-8, λ ≈ 1e5) and ≈ 1e-6 for double
///   (ulp 1.1e-16, λ ≈ 1e10), the coarsest resolution still useful for attention scores. The
///   largest distance from the origin is then (1/√c) ln((2 − eps)/eps) ≈ 12.2/√c (float) and
///   ≈ 23.7/√c (double). eps must lie in [16·ε_T, 0.5) (ε_T = machine epsilon): below that,
///   max_norm is not distinguishable from the boundary in T.
/// - Outputs that are points (mobius_add, mobius_scalar_mul, exp, exp0, project) are projected
///   onto that closed ball when they land outside it (mobius_add and exp check the norm of the
///   computed point in one extra pass; the others know it in closed form).
/// - Inputs that are points must lie in the open ball c‖x‖² < 1 (they may lie beyond max_norm):
///   otherwise `invalid_argument`; a NaN/Inf coordinate throws `non_finite_input` naming it.
///   Both checks are on scalars the formulas need anyway, so the happy path costs nothing;
///   tangent vectors and gyration/transport arguments are checked the same way (a squared norm
///   or dot product that is not finite). Sizes must agree (`dimension_mismatch`); the size-0
///   ball (a single point) is accepted.
/// - Tangent vectors with finite coordinates whose squared norm overflows T are accepted by exp,
///   exp0 and project (their norm is formed with scaling on that rare path).
/// - Conditioning: results are accurate to a few ε_T·λ relative to the ball radius, which is the
///   resolution of the inputs themselves. The exception is inherent: exp_x(v) along a long
///   geodesic amplifies a relative error ε in v to ~ε·sinh(√c‖v‖_x)/√c in distance (geodesics
///   diverge exponentially), e.g. ~0.3/√c in float for √c‖v‖_x ≈ 16 near the boundary.
/// - `out` must not overlap the inputs (the manifold concept's rule); element-wise ops tolerate
///   `out` being exactly one of the inputs, but this is not guaranteed API.
/// - Besides the `manifold` API, `distances(x, ys, out)` evaluates d(x, ·) for every row of a
///   matrix (the attention-score loop).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>


RUVECTOR_ATTENTION_KERNEL_WARNINGS_BEGIN

namespace ruvector::attention {

namespace detail {

// ---- fused kernels (no validation, noexcept) ---------------------------------------------------

/// ‖x‖², ‖y‖² and ‖x + a·y‖².
template <class T>
struct geo_pair_sums {
  T xx;
  T yy;
  T zz;
};

/// One pass over x and y: ‖x‖², ‖y‖², ‖x + a·y‖² (x + a·y formed element-wise, so a = −1 gives
/// ‖x − y‖² with full relative accuracy for close points). Two accumulator sets per step.
template <class T, class Arch = kernels::default_arch>
[[nodiscard]] geo_pair_sums<T> geo_pair_norms(const T* x, const T* y, T a, std::size_t n) noexcept {
  using B = kernels::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  std::size_t i = 0;
  geo_pair_sums<T> r{T(0), T(0), T(0)};
  if (n >= W) {
    const B ab(a);
    B xx0(T(0)), yy0(T(0)), zz0(T(0)), xx1(T(0)), yy1(T(0)), zz1(T(0));
    for (; i + 2 * W <= n; i += 2 * W) {
      const B x0 = B::load_unaligned(x + i);
      const B y0 = B::load_unaligned(y + i);
      const B x1 = B::load_unaligned(x + i + W);
      const B y1 = B::load_unaligned(y + i + W);
      const B z0 = xsimd::fma(ab, y0, x0);
      const B z1 = xsimd::fma(ab, y1, x1);
      xx0 = xsimd::fma(x0, x0, xx0);
      yy0 = xsimd::fma(y0, y0, yy0);
      zz0 = xsimd::fma(z0, z0, zz0);
      xx1 = xsimd::fma(x1, x1, xx1);
      yy1 = xsimd::fma(y1, y1, yy1);
      zz1 = xsimd::fma(z1, z1, zz1);
    }
    for (; i + W <= n; i += W) {
      const B x0 = B::load_unaligned(x + i);
      const B y0 = B::load_unaligned(y + i);
      const B z0 = xsimd::fma(ab, y0, x0);
      xx0 = xsimd::fma(x0, x0, xx0);
      yy0 = xsimd::fma(y0, y0, yy0);
      zz0 = xsimd::fma(z0, z0, zz0);
    }
    r.xx = kernels::detail::hsum(xx0 + xx1);
    r.yy = kernels::detail::hsum(yy0 + yy1);
    r.zz = kernels::detail::hsum(zz0 + zz1);
  }
  for (; i < n; ++i) {
    const T z = x[i] + a * y[i];
    r.xx += x[i] * x[i];
    r.yy += y[i] * y[i];
    r.zz += z * z;
  }
  return r;
}

/// The scalars of Ungar's gyration gyr[y, −x]w in the variable Δ = y − x, where x = sx·x_raw.
template <class T>
struct geo_gyr_sums {
  T xx;  ///< ‖x‖²
  T yy;  ///< ‖y‖²
  T xw;  ///< ⟨x, w⟩
  T dw;  ///< ⟨Δ, w⟩
  T xd;  ///< ⟨x, Δ⟩
  T dd;  ///< ‖Δ‖²
};

/// One pass over y, x_raw and w computing `geo_gyr_sums` with x = sx·x_raw (sx = ±1).
template <class T, class Arch = kernels::default_arch>
[[nodiscard]] geo_gyr_sums<T> geo_gyr_norms(const T* y, const T* x_raw, T sx, const T* w,
                                            std::size_t n) noexcept {
  using B = kernels::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  std::size_t i = 0;
  geo_gyr_sums<T> r{T(0), T(0), T(0), T(0), T(0), T(0)};
  if (n >= W) {
    const B sb(sx);
    B xx(T(0)), yy(T(0)), xw(T(0)), dw(T(0)), xd(T(0)), dd(T(0));
    for (; i + W <= n; i += W) {
      const B xb = sb * B::load_unaligned(x_raw + i);
      const B yb = B::load_unaligned(y + i);
      const B wb = B::load_unaligned(w + i);
      const B db = yb - xb;
      xx = xsimd::fma(xb, xb, xx);
      yy = xsimd::fma(yb, yb, yy);
      xw = xsimd::fma(xb, wb, xw);
      dw = xsimd::fma(db, wb, dw);
      xd = xsimd::fma(xb, db, xd);
      dd = xsimd::fma(db, db, dd);
    }
    r = {kernels::detail::hsum(xx), kernels::detail::hsum(yy), kernels::detail::hsum(xw),
         kernels::detail::hsum(dw), kernels::detail::hsum(xd), kernels::detail::hsum(dd)};
  }
  for (; i < n; ++i) {
    const T xi = sx * x_raw[i];
    const T di = y[i] - xi;
    r.xx += xi * xi;
    r.yy += y[i] * y[i];
    r.xw += xi * w[i];
    r.dw += di * w[i];
    r.xd += xi * di;
    r.dd += di * di;
  }
  return r;
}

/// out = a·x + b·y (element-wise; out may be exactly x or y).
template <class T, class Arch = kernels::default_arch>
void geo_axpby(T a, const T* x, T b, const T* y, T* out, std::size_t n) noexcept {
  using B = kernels::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const B ab(a), bb(b);
  std::size_t i = 0;
  for (; i + W <= n; i += W) {
    xsimd::fma(ab, B::load_unaligned(x + i), bb * B::load_unaligned(y + i))
        .store_unaligned(out + i);
  }
  for (; i < n; ++i) out[i] = a * x[i] + b * y[i];
}

/// out = a·x (element-wise; out may be exactly x).
template <class T, class Arch = kernels::default_arch>
void geo_scaled(T a, const T* x, T* out, std::size_t n) noexcept {
  using B = kernels::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const B ab(a);
  std::size_t i = 0;
  for (; i + W <= n; i += W) (ab * B::load_unaligned(x + i)).store_unaligned(out + i);
  for (; i < n; ++i) out[i] = a * x[i];
}

/// out = p·(y − x) + q·x, the difference formed first (element-wise; out may be exactly x or y).
template <class T, class Arch = kernels::default_arch>
void geo_diff_axpy(T p, const T* x, const T* y, T q, T* out, std::size_t n) noexcept {
  using B = kernels::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const B pb(p), qb(q);
  std::size_t i = 0;
  for (; i + W <= n; i += W) {
    const B xb = B::load_unaligned(x + i);
    xsimd::fma(pb, B::load_unaligned(y + i) - xb, qb * xb).store_unaligned(out + i);
  }
  for (; i < n; ++i) out[i] = p * (y[i] - x[i]) + q * x[i];
}

/// out = k·(w + b·x + e·(y − x)) with x = sx·x_raw (element-wise; the gyration write pass).
template <class T, class Arch = kernels::default_arch>
void geo_gyr_combine(T k, const T* w, T b, const T* x_raw, T sx, T e, const T* y, T* out,
                     std::size_t n) noexcept {
  using B = kernels::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const B kb(k), bb(b), eb(e), sb(sx);
  std::size_t i = 0;
  for (; i + W <= n; i += W) {
    const B xb = sb * B::load_unaligned(x_raw + i);
    const B t =
        xsimd::fma(eb, B::load_unaligned(y + i) - xb, xsimd::fma(bb, xb, B::load_unaligned(w + i)));
    (kb * t).store_unaligned(out + i);
  }
  for (; i < n; ++i) {
    const T xi = sx * x_raw[i];
    out[i] = k * (e * (y[i] - xi) + (b * xi + w[i]));
  }
}

// ---- scalar helpers ----------------------------------------------------------------------------

/// artanh(r) for r ∈ [0, 1) given beta = 1 − r² computed separately (more accurately than from
/// r): artanh(r) = ½ log1p(2r/(1 − r)) = ½ log1p(2r(1 + r)/β).
template <class T>
[[nodiscard]] inline T geo_artanh(T r, T beta) noexcept {
  return T(0.5) * std::log1p(T(2) * r * (T(1) + r) / beta);
}

/// arcosh(1 + δ) for δ ≥ 0, as log1p(δ + √δ·√(δ + 2)) (accurate for small δ, no overflow).
template <class T>
[[nodiscard]] inline T geo_arcosh1p(T delta) noexcept {
  return std::log1p(delta + std::sqrt(delta) * std::sqrt(delta + T(2)));
}

/// arcosh(1 + δ)/√δ for δ ≥ 0 (→ √2 as δ → 0).
template <class T>
[[nodiscard]] inline T geo_arcosh1p_over_sqrt(T delta) noexcept {
  if (!(delta > T(0))) return std::sqrt(T(2));
  return geo_arcosh1p(delta) / std::sqrt(delta);
}

/// A Euclidean norm as m·r, so that vectors with finite coordinates whose squared norm
/// overflows T (‖x‖ > ~1e19 in float) are still handled: m = 1, r = ‖x‖ normally, and
/// m = max|xᵢ|, r = ‖x/m‖ ∈ [1, √n] on the rare overflow path.
template <class T>
struct geo_norm_parts {
  T m;
  T r;
  /// ‖x‖ (+inf if it is not representable).
  [[nodiscard]] T value() const noexcept { return m * r; }
  /// a/‖x‖ without overflow (requires r > 0).
  [[nodiscard]] T divide(T a) const noexcept { return (a / r) / m; }
};

/// The parts of ‖x‖ given ss = Σ xᵢ² as computed (finite coordinates assumed).
template <class T>
[[nodiscard]] geo_norm_parts<T> geo_norm_from(const T* x, std::size_t n, T ss) noexcept {
  if (std::isfinite(ss)) return {T(1), std::sqrt(ss)};
  T m = T(0);
  for (std::size_t i = 0; i < n; ++i) m = std::max(m, std::abs(x[i]));
  T s = T(0);
  for (std::size_t i = 0; i < n; ++i) {
    const T t = x[i] / m;
    s += t * t;
  }
  return {m, std::sqrt(s)};
}

// ---- error paths -------------------------------------------------------------------------------

/// "fn: arg", the `what` of an error message.
[[nodiscard]] inline std::string geo_what(std::string_view fn, std::string_view arg) {
  std::string s(fn);
  s.append(": ").append(arg);
  return s;
}

/// Throws `dimension_mismatch`: "fn: arg.size() is got, expected want".
[[noreturn]] inline void geo_throw_size(std::string_view fn, std::string_view arg, std::size_t got,
                                        std::size_t want) {
  std::ostringstream os;
  os << "dimension mismatch: " << fn << ": " << arg << ".size() is " << got << ", expected "
     << want;
  throw dimension_mismatch(os.str());
}

/// Throws `dimension_mismatch` unless got == want (the check is inline, the throw is not).
inline void geo_require_size(std::string_view fn, std::string_view arg, std::size_t got,
                             std::size_t want) {
  if (got != want) geo_throw_size(fn, arg, got, want);
}

/// A point failed the ball test: `non_finite_input` naming a NaN/Inf coordinate, otherwise
/// `invalid_argument` with the offending value of c‖x‖².
template <class T>
[[noreturn]] void geo_throw_not_in_ball(std::string_view fn, std::string_view arg,
                                        std::span<const T> x, T c_xx,
                                        std::string_view model = "Poincaré ball") {
  require_finite(geo_what(fn, arg), x);
  std::ostringstream os;
  os << "invalid argument: " << fn << ": " << arg << " is not inside the " << model
     << ": c·‖x‖² = " << c_xx << ", expected < 1";
  throw invalid_argument(os.str());
}

/// A vector produced a non-finite dot product: `non_finite_input` naming the coordinate, or
/// `invalid_argument` when all coordinates are finite but the squared norm overflows.
template <class T>
[[noreturn]] void geo_throw_non_finite(std::string_view fn, std::string_view arg,
                                       std::span<const T> v) {
  require_finite(geo_what(fn, arg), v);
  std::ostringstream os;
  os << "invalid argument: " << fn << ": " << arg
     << " is too large: its squared norm overflows the scalar type";
  throw invalid_argument(os.str());
}

/// Rethrows a library error with "fn: arg row i: " prepended, keeping its type (the error path
/// of batched operations, so a message names the offending row).
[[noreturn]] inline void geo_rethrow_for_row(const error& e, std::string_view fn,
                                             std::string_view arg, std::size_t row) {
  std::string msg(fn);
  msg.append(": ").append(arg).append(" row ").append(std::to_string(row)).append(": ");
  msg.append(e.what());
  if (dynamic_cast<const non_finite_input*>(&e) != nullptr) throw non_finite_input(msg);
  if (dynamic_cast<const dimension_mismatch*>(&e) != nullptr) throw dimension_mismatch(msg);
  if (dynamic_cast<const invalid_argument*>(&e) != nullptr) throw invalid_argument(msg);
  if (dynamic_cast<const input_too_large*>(&e) != nullptr) throw input_too_large(msg);
  if (dynamic_cast<const invalid_config*>(&e) != nullptr) throw invalid_config(msg);
  if (dynamic_cast<const io_error*>(&e) != nullptr) throw io_error(msg);
  throw error(msg);
}

}  // namespace detail

/// \brief The Poincaré ball of curvature −c (Ganea et al. 2018); see the file comment for every
/// formula and numerical convention.
/// \tparam T float or double.
///
/// An immutable description (c, eps): safe to share across threads. Every operation works in
/// ambient coordinates of any dimension n (the spans' size) and writes into a caller-provided
/// `out` of size n; none allocates.
template <attention_scalar T>
class poincare_ball {
 public:
  using value_type = T;

  /// Default boundary margin: points are kept within (1 − eps)/√c (see the file comment).
  static constexpr T default_eps = std::is_same_v<T, float> ? T(1e-5) : T(1e-10);
  /// Smallest accepted eps (16 machine epsilons).
  static constexpr T min_eps = T(16) * std::numeric_limits<T>::epsilon();

  /// Ball of curvature −c. Throws `invalid_argument` unless c is finite and > 0 and
  /// eps ∈ [min_eps, 0.5).
  explicit poincare_ball(T c = T(1), T eps = default_eps) : c_(c), eps_(eps) {
    if (!(std::isfinite(c) && c > T(0))) {
      std::ostringstream os;
      os << "invalid argument: poincare_ball: c must be finite and > 0 (curvature −c), got " << c;
      throw invalid_argument(os.str());
    }
    if (!(eps >= min_eps && eps < T(0.5))) {
      std::ostringstream os;
      os << "invalid argument: poincare_ball: eps must lie in [" << min_eps << ", 0.5), got "
         << eps;
      throw invalid_argument(os.str());
    }
    sqrt_c_ = std::sqrt(c);
    max_norm_ = (T(1) - eps) / sqrt_c_;
    max_norm_sq_ = max_norm_ * max_norm_;
  }

  /// c (> 0); the curvature is −c.
  [[nodiscard]] T c() const noexcept { return c_; }
  /// The sectional curvature −c.
  [[nodiscard]] T curvature() const noexcept { return -c_; }
  /// The boundary margin eps.
  [[nodiscard]] T eps() const noexcept { return eps_; }
  /// (1 − eps)/√c: the largest norm of a point the library produces.
  [[nodiscard]] T max_norm() const noexcept { return max_norm_; }

  /// λ_x = 2/(1 − c‖x‖²).
  [[nodiscard]] T conformal_factor(std::span<const T> x) const {
    const T xx = kernels::dot(x.data(), x.data(), x.size());
    return T(2) / point_beta("poincare_ball::conformal_factor", "x", x, xx);
  }

  /// out = x ⊕ y (Möbius addition), projected onto the ball of radius max_norm.
  void mobius_add(std::span<const T> x, std::span<const T> y, std::span<T> out) const {
    constexpr std::string_view fn = "poincare_ball::mobius_add";
    const std::size_t n = x.size();
    detail::geo_require_size(fn, "y", y.size(), n);
    detail::geo_require_size(fn, "out", out.size(), n);
    const auto s = detail::geo_pair_norms(x.data(), y.data(), T(1), n);
    const T bx = point_beta(fn, "x", x, s.xx);
    const T by = point_beta(fn, "y", y, s.yy);
    // x ⊕ y = ((β_x + c‖x + y‖²) x + β_x y)/D,  D = β_x β_y + c‖x + y‖².
    const T czz = c_ * s.zz;
    const T inv = T(1) / (bx * by + czz);
    detail::geo_axpby((bx + czz) * inv, x.data(), bx * inv, y.data(), out.data(), n);
    project_in_place(out);
  }

  /// out = r ⊗ x (Möbius scalar multiplication), projected onto the ball of radius max_norm.
  void mobius_scalar_mul(T r, std::span<const T> x, std::span<T> out) const {
    constexpr std::string_view fn = "poincare_ball::mobius_scalar_mul";
    const std::size_t n = x.size();
    detail::geo_require_size(fn, "out", out.size(), n);
    if (!std::isfinite(r)) detail::throw_non_finite(detail::geo_what(fn, "r"), 0, r);
    const T xx = kernels::dot(x.data(), x.data(), n);
    const T bx = point_beta(fn, "x", x, xx);
    const T nx = std::sqrt(xx);
    if (nx == T(0) || r == T(0)) {
      detail::geo_scaled(T(0), x.data(), out.data(), n);
      return;
    }
    const T z = sqrt_c_ * nx;
    T t = std::tanh(r * detail::geo_artanh(z, bx));
    t = std::clamp(t, -(T(1) - eps_), T(1) - eps_);
    detail::geo_scaled(t / z, x.data(), out.data(), n);
  }

  /// out = gyr[u, v]w = ⊖(u ⊕ v) ⊕ (u ⊕ (v ⊕ w)) (Ungar's closed form); u, v ball points, w any
  /// vector. A linear isometry of Rⁿ for fixed u, v.
  void gyration(std::span<const T> u, std::span<const T> v, std::span<const T> w,
                std::span<T> out) const {
    constexpr std::string_view fn = "poincare_ball::gyration";
    const std::size_t n = u.size();
    detail::geo_require_size(fn, "v", v.size(), n);
    detail::geo_require_size(fn, "w", w.size(), n);
    detail::geo_require_size(fn, "out", out.size(), n);
    // gyr[u, v] = gyr[y, −x] with y = u, x = −v.
    gyr_core(fn, u, "u", v, "v", T(-1), w, "w", false, out);
  }

  /// d(x, y) = (2/√c) artanh(√c‖(−x) ⊕ y‖).
  [[nodiscard]] T distance(std::span<const T> x, std::span<const T> y) const {
    constexpr std::string_view fn = "poincare_ball::distance";
    detail::geo_require_size(fn, "y", y.size(), x.size());
    const auto s = detail::geo_pair_norms(x.data(), y.data(), T(-1), x.size());
    const T bx = point_beta(fn, "x", x, s.xx);
    const T by = point_beta(fn, "y", y, s.yy);
    return detail::geo_arcosh1p(T(2) * c_ * s.zz / (bx * by)) / sqrt_c_;
  }

  /// out[j] = d(x, ys.row(j)) for every row of `ys` (rows = points of the same dimension as x).
  void distances(std::span<const T> x, const matrix_cref<T>& ys, std::span<T> out) const {
    constexpr std::string_view fn = "poincare_ball::distances";
    const std::size_t n = x.size();
    const auto rows = static_cast<std::size_t>(ys.rows());
    detail::geo_require_size(fn, "ys.cols() (as ys rows)", static_cast<std::size_t>(ys.cols()), n);
    detail::geo_require_size(fn, "out", out.size(), rows);
    const T xx = kernels::dot(x.data(), x.data(), n);
    const T bx = point_beta(fn, "x", x, xx);
    for (std::size_t j = 0; j < rows; ++j) {
      const T* y = ys.data() + static_cast<std::ptrdiff_t>(j) * ys.outerStride();
      const auto s = detail::geo_pair_norms(x.data(), y, T(-1), n);
      const T by = T(1) - c_ * s.yy;
      if (!(by > T(0))) {
        detail::geo_throw_not_in_ball(fn, std::string("ys row ").append(std::to_string(j)),
                                      std::span<const T>(y, n), c_ * s.yy);
      }
      out[j] = detail::geo_arcosh1p(T(2) * c_ * s.zz / (bx * by)) / sqrt_c_;  // as `distance`
    }
  }

  /// d(0, x) = (2/√c) artanh(√c‖x‖).
  [[nodiscard]] T distance_from_origin(std::span<const T> x) const {
    const T xx = kernels::dot(x.data(), x.data(), x.size());
    const T bx = point_beta("poincare_ball::distance_from_origin", "x", x, xx);
    return T(2) * detail::geo_artanh(sqrt_c_ * std::sqrt(xx), bx) / sqrt_c_;
  }

  /// ⟨u, v⟩_x = λ_x² ⟨u, v⟩.
  [[nodiscard]] T inner(std::span<const T> x, std::span<const T> u, std::span<const T> v) const {
    constexpr std::string_view fn = "poincare_ball::inner";
    const std::size_t n = x.size();
    detail::geo_require_size(fn, "u", u.size(), n);
    detail::geo_require_size(fn, "v", v.size(), n);
    const T lambda = T(2) / point_beta(fn, "x", x, kernels::dot(x.data(), x.data(), n));
    const T uv = kernels::dot(u.data(), v.data(), n);
    if (!std::isfinite(uv)) {
      require_finite(detail::geo_what(fn, "u"), u);
      detail::geo_throw_non_finite(fn, "v", v);
    }
    return lambda * lambda * uv;
  }

  /// ‖u‖_x = λ_x ‖u‖.
  [[nodiscard]] T norm(std::span<const T> x, std::span<const T> u) const {
    constexpr std::string_view fn = "poincare_ball::norm";
    const std::size_t n = x.size();
    detail::geo_require_size(fn, "u", u.size(), n);
    const T lambda = T(2) / point_beta(fn, "x", x, kernels::dot(x.data(), x.data(), n));
    const T uu = kernels::dot(u.data(), u.data(), n);
    if (!std::isfinite(uu)) detail::geo_throw_non_finite(fn, "u", u);
    return lambda * std::sqrt(uu);
  }

  /// out = exp_x(v) = x ⊕ (tanh(√c λ_x‖v‖/2) v/(√c‖v‖)), projected onto the ball of radius
  /// max_norm.
  void exp(std::span<const T> x, std::span<const T> v, std::span<T> out) const {
    constexpr std::string_view fn = "poincare_ball::exp";
    const std::size_t n = x.size();
    detail::geo_require_size(fn, "v", v.size(), n);
    detail::geo_require_size(fn, "out", out.size(), n);
    const auto s0 = detail::geo_pair_norms(x.data(), v.data(), T(0), n);
    const T bx = point_beta(fn, "x", x, s0.xx);
    if (!std::isfinite(s0.yy)) require_finite(detail::geo_what(fn, "v"), v);
    const auto nv = detail::geo_norm_from(v.data(), n, s0.yy);
    if (nv.r == T(0)) {
      detail::geo_scaled(T(1), x.data(), out.data(), n);
      project_in_place(out);
      return;
    }
    // u = s·v with ‖u‖ = tanh(θ)/√c, θ = √c λ_x ‖v‖/2 = √c‖v‖/β_x; 1 − c‖u‖² = 1/cosh²θ.
    const T theta = sqrt_c_ * nv.value() / bx;  // +inf when ‖v‖ overflows: t = 1
    const T t = std::tanh(theta);
    const T ch = std::cosh(theta);
    const T bu = T(1) / (ch * ch);  // 0 once cosh overflows: then x ⊕ u is on the boundary
    const T sv = nv.divide(t / sqrt_c_);
    // x ⊕ u with ‖x + u‖² formed element-wise (second pass).
    const T czz = c_ * detail::geo_pair_norms(x.data(), v.data(), sv, n).zz;
    const T inv = T(1) / (bx * bu + czz);
    detail::geo_axpby((bx + czz) * inv, x.data(), bx * sv * inv, v.data(), out.data(), n);
    project_in_place(out);
  }

  /// out = log_x(y) (see the file comment for the evaluated form).
  void log(std::span<const T> x, std::span<const T> y, std::span<T> out) const {
    constexpr std::string_view fn = "poincare_ball::log";
    const std::size_t n = x.size();
    detail::geo_require_size(fn, "y", y.size(), n);
    detail::geo_require_size(fn, "out", out.size(), n);
    const auto s = detail::geo_pair_norms(x.data(), y.data(), T(-1), n);
    const T bx = point_beta(fn, "x", x, s.xx);
    const T by = point_beta(fn, "y", y, s.yy);
    const T bxy = bx * by;
    const T cdd = c_ * s.zz;
    const T delta = T(2) * cdd / bxy;
    const T coef = detail::geo_arcosh1p_over_sqrt(delta) * bx / std::sqrt(T(2) * bxy * (bxy + cdd));
    // out = coef·(β_x (y − x) − c‖x − y‖² x)
    detail::geo_diff_axpy(coef * bx, x.data(), y.data(), -coef * cdd, out.data(), n);
  }

  /// out = exp_0(v) = tanh(√c‖v‖) v/(√c‖v‖), with tanh capped at 1 − eps (norm ≤ max_norm).
  void exp0(std::span<const T> v, std::span<T> out) const {
    constexpr std::string_view fn = "poincare_ball::exp0";
    const std::size_t n = v.size();
    detail::geo_require_size(fn, "out", out.size(), n);
    const T vv = kernels::dot(v.data(), v.data(), n);
    if (!std::isfinite(vv)) require_finite(detail::geo_what(fn, "v"), v);
    const auto nv = detail::geo_norm_from(v.data(), n, vv);
    const T z = sqrt_c_ * nv.value();
    const T f = nv.r > T(0) ? nv.divide(std::min(std::tanh(z), T(1) - eps_) / sqrt_c_) : T(1);
    detail::geo_scaled(f, v.data(), out.data(), n);
  }

  /// out = log_0(y) = artanh(√c‖y‖) y/(√c‖y‖).
  void log0(std::span<const T> y, std::span<T> out) const {
    constexpr std::string_view fn = "poincare_ball::log0";
    const std::size_t n = y.size();
    detail::geo_require_size(fn, "out", out.size(), n);
    const T yy = kernels::dot(y.data(), y.data(), n);
    const T by = point_beta(fn, "y", y, yy);
    const T z = sqrt_c_ * std::sqrt(yy);
    const T f = z > T(0) ? detail::geo_artanh(z, by) / z : T(1);
    detail::geo_scaled(f, y.data(), out.data(), n);
  }

  /// out = P_{x→y}(v) = (λ_x/λ_y) gyr[y, −x]v: parallel transport of v ∈ T_x along the geodesic
  /// to T_y (Ganea et al. 2018). Preserves ⟨·,·⟩_x → ⟨·,·⟩_y.
  void transport(std::span<const T> x, std::span<const T> y, std::span<const T> v,
                 std::span<T> out) const {
    constexpr std::string_view fn = "poincare_ball::transport";
    const std::size_t n = x.size();
    detail::geo_require_size(fn, "y", y.size(), n);
    detail::geo_require_size(fn, "v", v.size(), n);
    detail::geo_require_size(fn, "out", out.size(), n);
    gyr_core(fn, y, "y", x, "x", T(1), v, "v", true, out);
  }

  /// out = x if ‖x‖ ≤ max_norm, else max_norm·x/‖x‖. Throws `non_finite_input` on NaN/Inf.
  void project(std::span<const T> x, std::span<T> out) const {
    constexpr std::string_view fn = "poincare_ball::project";
    const std::size_t n = x.size();
    detail::geo_require_size(fn, "out", out.size(), n);
    const T xx = kernels::dot(x.data(), x.data(), n);
    if (!std::isfinite(xx)) {
      require_finite(detail::geo_what(fn, "x"), x);
      detail::geo_scaled(detail::geo_norm_from(x.data(), n, xx).divide(max_norm_), x.data(),
                         out.data(), n);
      return;
    }
    detail::geo_scaled(xx > max_norm_sq_ ? max_norm_ / std::sqrt(xx) : T(1), x.data(), out.data(),
                       n);
  }

  /// out = 0, the origin.
  void origin(std::span<T> out) const noexcept {
    for (auto& v : out) v = T(0);
  }

  /// True when every coordinate is finite and c‖x‖² < 1 (the open ball; points beyond max_norm
  /// but inside the ball are accepted by every operation).
  [[nodiscard]] bool contains(std::span<const T> x) const noexcept {
    const T xx = kernels::dot(x.data(), x.data(), x.size());
    return T(1) - c_ * xx > T(0);  // false for NaN; Inf gives −Inf
  }

 private:
  /// β = 1 − c‖x‖² > 0, or the error naming `arg`.
  T point_beta(std::string_view fn, std::string_view arg, std::span<const T> x, T xx) const {
    const T b = T(1) - c_ * xx;
    if (!(b > T(0))) detail::geo_throw_not_in_ball(fn, arg, x, c_ * xx);
    return b;
  }

  /// Projects `out` onto the ball of radius max_norm. (1 − c‖x ⊕ y‖² = β_xβ_y/D is known
  /// analytically, but near the boundary the computed point can differ from the exact one by more
  /// than its distance to the boundary — exp over long geodesics is ill-conditioned — so the
  /// norm of the computed point itself is checked.)
  void project_in_place(std::span<T> out) const noexcept {
    const T oo = kernels::dot(out.data(), out.data(), out.size());
    if (oo > max_norm_sq_) kernels::scale(max_norm_ / std::sqrt(oo), out.data(), out.size());
  }

  /// out = k·gyr[y, −x]w with x = sx·x_raw, and k = λ_x/λ_y = β_y/β_x for `transport`, k = 1
  /// otherwise (gyration). Ungar's closed form
  ///   gyr[a, b]w = w + 2(A a + B b)/D,
  ///   A = −c²⟨a,w⟩‖b‖² + c⟨b,w⟩ + 2c²⟨a,b⟩⟨b,w⟩,  B = −c²⟨b,w⟩‖a‖² − c⟨a,w⟩,
  ///   D = 1 + 2c⟨a,b⟩ + c²‖a‖²‖b‖²,
  /// with a = y, b = −x and y = x + Δ becomes
  ///   A a + B b = P x + Q Δ,  P = cβ_x⟨Δ,w⟩ − c²⟨x,w⟩‖Δ‖²,
  ///   Q = −cβ_x⟨x,w⟩ − c²‖x‖²⟨Δ,w⟩ + 2c²⟨x,Δ⟩⟨x,w⟩,  D = β_xβ_y + c‖Δ‖²,
  /// where every term of P and Q is O(‖Δ‖).
  void gyr_core(std::string_view fn, std::span<const T> y, std::string_view y_name,
                std::span<const T> x_raw, std::string_view x_name, T sx, std::span<const T> w,
                std::string_view w_name, bool transport, std::span<T> out) const {
    const std::size_t n = y.size();
    const auto s = detail::geo_gyr_norms(y.data(), x_raw.data(), sx, w.data(), n);
    const T by = point_beta(fn, y_name, y, s.yy);
    const T bx = point_beta(fn, x_name, x_raw, s.xx);
    if (!std::isfinite(s.xw + s.dw)) detail::geo_throw_non_finite(fn, w_name, w);
    const T c2 = c_ * c_;
    const T p = c_ * bx * s.dw - c2 * s.xw * s.dd;
    const T q = -c_ * bx * s.xw - c2 * s.xx * s.dw + T(2) * c2 * s.xd * s.xw;
    const T two_over_d = T(2) / (bx * by + c_ * s.dd);
    const T k = transport ? by / bx : T(1);
    detail::geo_gyr_combine(k, w.data(), p * two_over_d, x_raw.data(), sx, q * two_over_d, y.data(),
                            out.data(), n);
  }

  T c_;
  T eps_;
  T sqrt_c_ = T(1);
  T max_norm_ = T(1);
  T max_norm_sq_ = T(1);
};

}  // namespace ruvector::attention

RUVECTOR_ATTENTION_KERNEL_WARNINGS_END
// ---- end ruvector/attention/geometry/poincare.hpp ----

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
// ---- end ruvector/attention/curvature/tangent_space.hpp ----
// ---- end ruvector/attention/curvature.hpp ----
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
// ---- begin ruvector/attention/geometry.hpp ----
/// \file geometry.hpp
/// \brief Entry header of the geometry family: Riemannian model spaces modelling the `manifold`
/// concept — Euclidean space, the Poincaré ball, the Lorentz hyperboloid, the sphere, products
/// E^e × H^h × S^s — with Poincaré ↔ Lorentz ↔ Klein conversions, the Einstein midpoint and the
/// weighted Fréchet mean.

// ---- begin ruvector/attention/geometry/euclidean.hpp ----
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
// ---- end ruvector/attention/geometry/euclidean.hpp ----
// ---- begin ruvector/attention/geometry/lorentz.hpp ----
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
// ---- end ruvector/attention/geometry/lorentz.hpp ----
// ---- begin ruvector/attention/geometry/means.hpp ----
/// \file geometry/means.hpp
/// \brief Weighted means of manifold points: the Fréchet (Karcher) mean on any `manifold`, and
/// the Einstein midpoint of hyperbolic points.
///
/// Fréchet mean (Karcher 1977, "Riemannian center of mass and mollifier smoothing"; the fixed-point
/// iteration of Pennec 2006, "Intrinsic Statistics on Riemannian Manifolds"):
///
///     m* = argmin_m ½ Σᵢ wᵢ d(m, xᵢ)²,    grad = −Σᵢ wᵢ log_m(xᵢ)   (wᵢ normalised to Σ wᵢ = 1)
///     m₀ = exp₀(Σᵢ wᵢ log₀(xᵢ)),           m_{k+1} = exp_{m_k}(step · Σᵢ wᵢ log_{m_k}(xᵢ))
///
/// stopping when ‖Σᵢ wᵢ log_m(xᵢ)‖_m ≤ tolerance (converged) or after max_iterations trial steps
/// (not converged). A trial step is accepted only if it decreases ½ Σ w d² enough (Armijo),
/// otherwise the step is halved (see the loop): step 1 alone oscillates for points spread far apart
/// in negative curvature. On Hadamard manifolds (the hyperbolic models) the minimiser is unique; on
/// spheres the points must lie in an open hemisphere-sized ball. Convergence is reported in
/// `frechet_result`, never thrown. If m₀ is not finite (e.g. log₀ of an antipode of the sphere's
/// origin), the iteration starts at the first point of largest weight instead; if the gradient
/// becomes non-finite the iteration stops at the last finite iterate (reported as not converged).
///
/// Einstein midpoint (Ungar 2008, "Analytic Hyperbolic Geometry and Albert Einstein's Special
/// Theory of Relativity", §6; Gulcehre et al. 2019, "Hyperbolic Attention Networks", eq. 9): in
/// the Klein model, with Lorentz factors γᵢ = 1/√(1 − c‖kᵢ‖²),
///
///     m_K = Σᵢ wᵢ γᵢ kᵢ / Σᵢ wᵢ γᵢ.
///
/// For Poincaré points kᵢ = 2xᵢ/(1 + c‖xᵢ‖²), γᵢ = (1 + c‖xᵢ‖²)/(1 − c‖xᵢ‖²) and γᵢkᵢ = λ_{xᵢ}xᵢ,
/// so m_K = Σ wᵢλᵢxᵢ / Σ wᵢγᵢ is formed from the Poincaré coordinates directly (one pass, no
/// Klein coordinates stored) and returned as the Poincaré point m_K/(1 + √κ), κ = 1 − c‖m_K‖².
/// When the midpoint is near the boundary (κ < 1/16), κ = (p − √c‖s‖)(p + √c‖s‖)/p² with
/// p = Σ wᵢγᵢ, s = Σ wᵢλᵢxᵢ is re-evaluated from the sum of non-negative terms
///
///     p − √c‖s‖ = Σᵢ wᵢ [(1 − rᵢ)² + √c‖xᵢ − ‖xᵢ‖u‖²/‖xᵢ‖] / (1 − rᵢ²),   rᵢ = √c‖xᵢ‖, u = s/‖s‖,
///
/// in a second pass, instead of the difference 1 − c‖m_K‖², which there cancels to about half
/// the digits (Klein coordinates compress the boundary quadratically).
///
/// Weights must be finite and ≥ 0 with a positive sum (`invalid_argument`, or
/// `non_finite_input` for NaN/Inf); they are normalised inside. Zero-weight points are skipped
/// by the arithmetic but still validated by the Einstein midpoint. Errors raised while reading a
/// point name its row. `out` must not overlap `points`. The Fréchet mean allocates its scratch
/// (4 ambient vectors) once per call; the Einstein midpoints do not allocate.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

// ---- begin ruvector/attention/geometry/models.hpp ----
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
// ---- end ruvector/attention/geometry/models.hpp ----

namespace ruvector::attention {

/// \brief Options of `frechet_mean`.
struct frechet_options {
  /// Largest number of updates m ← exp_m(step·grad).
  std::size_t max_iterations = 100;
  /// Stop when the Riemannian norm ‖Σ wᵢ log_m xᵢ‖_m is ≤ this (≥ 0).
  double tolerance = 1e-6;
  /// Step size of each update (> 0); 1 is the classical Karcher fixed point.
  double step = 1.0;
};

/// \brief What `frechet_mean` did.
struct frechet_result {
  /// Updates performed.
  std::size_t iterations = 0;
  /// True when the gradient norm reached the tolerance.
  bool converged = false;
  /// The Riemannian norm of Σ wᵢ log_m xᵢ at the returned point.
  double gradient_norm = 0.0;
};

namespace detail {

/// Validates weights (finite, ≥ 0, positive sum) and returns their sum.
template <class T>
double means_weight_sum(std::string_view fn, std::span<const T> w) {
  double sum = 0.0;
  for (std::size_t i = 0; i < w.size(); ++i) {
    if (!std::isfinite(w[i])) throw_non_finite(geo_what(fn, "weights"), i, w[i]);
    if (w[i] < T(0)) {
      std::ostringstream os;
      os << "invalid argument: " << fn << ": weights[" << i << "] = " << w[i] << ", expected >= 0";
      throw invalid_argument(os.str());
    }
    sum += static_cast<double>(w[i]);
  }
  if (!(sum > 0.0)) {
    std::ostringstream os;
    os << "invalid argument: " << fn << ": weights sum to " << sum << ", expected a positive sum";
    throw invalid_argument(os.str());
  }
  return sum;
}

/// Row i of a row-major view as a span of `cols` values.
template <class T>
std::span<const T> means_row(const matrix_cref<T>& m, std::size_t i) noexcept {
  return std::span<const T>(m.data() + static_cast<std::ptrdiff_t>(i) * m.outerStride(),
                            static_cast<std::size_t>(m.cols()));
}

/// Shared argument checks of the means: non-empty points, weights/out sizes, weights.
template <class T>
double means_check_args(std::string_view fn, const matrix_cref<T>& points,
                        std::span<const T> weights, std::span<T> out) {
  const auto n = static_cast<std::size_t>(points.rows());
  require_non_empty(geo_what(fn, "points"), n);
  geo_require_size(fn, "weights", weights.size(), n);
  geo_require_size(fn, "out (points.cols())", out.size(), static_cast<std::size_t>(points.cols()));
  return means_weight_sum(fn, weights);
}

}  // namespace detail

/// \brief The weighted Fréchet (Karcher) mean of the rows of `points` (ambient coordinates of
/// `m`) into `out`; see the file comment. Works for any `manifold`.
template <manifold M>
frechet_result frechet_mean(const M& m, const matrix_cref<typename M::value_type>& points,
                            std::span<const typename M::value_type> weights,
                            std::span<typename M::value_type> out,
                            const frechet_options& options = {}) {
  using T = typename M::value_type;
  constexpr std::string_view fn = "frechet_mean";
  const double wsum = detail::means_check_args<T>(fn, points, weights, out);
  if (!(std::isfinite(options.tolerance) && options.tolerance >= 0.0)) {
    std::ostringstream os;
    os << "invalid argument: " << fn << ": options.tolerance = " << options.tolerance
       << ", expected finite and >= 0";
    throw invalid_argument(os.str());
  }
  if (!(std::isfinite(options.step) && options.step > 0.0)) {
    std::ostringstream os;
    os << "invalid argument: " << fn << ": options.step = " << options.step
       << ", expected finite and > 0";
    throw invalid_argument(os.str());
  }
  const auto n = static_cast<std::size_t>(points.rows());
  const std::size_t d = out.size();
  std::vector<T> buffer(6 * d);
  std::span<T> cur(buffer.data(), d);
  std::span<T> next(buffer.data() + d, d);
  std::span<T> grad(buffer.data() + 2 * d, d);
  std::span<T> grad_next(buffer.data() + 3 * d, d);
  std::span<T> tmp(buffer.data() + 4 * d, d);
  std::span<T> move(buffer.data() + 5 * d, d);
  const auto weight = [&](std::size_t i) { return static_cast<T>(weights[i] / wsum); };
  const auto all_finite = [](std::span<const T> v) {
    return std::all_of(v.begin(), v.end(), [](T a) { return std::isfinite(a); });
  };

  // m₀ = exp₀(Σ w log₀ x); every row is validated here (errors name the row).
  std::fill(grad.begin(), grad.end(), T(0));
  for (std::size_t i = 0; i < n; ++i) {
    try {
      m.log0(detail::means_row(points, i), tmp);
    } catch (const error& e) {
      detail::geo_rethrow_for_row(e, fn, "points", i);
    }
    if (weights[i] > T(0)) kernels::axpy(weight(i), tmp.data(), grad.data(), d);
  }
  m.exp0(std::span<const T>(grad), cur);
  if (!all_finite(cur)) {
    const std::size_t heaviest = static_cast<std::size_t>(
        std::max_element(weights.begin(), weights.end()) - weights.begin());
    const auto row = detail::means_row(points, heaviest);
    std::copy(row.begin(), row.end(), cur.begin());
  }

  // g = Σ w log_at(x); returns ‖g‖_at (infinity when not finite).
  const auto gradient = [&](std::span<const T> at, std::span<T> g) {
    std::fill(g.begin(), g.end(), T(0));
    for (std::size_t i = 0; i < n; ++i) {
      if (!(weights[i] > T(0))) continue;
      m.log(at, detail::means_row(points, i), tmp);
      kernels::axpy(weight(i), tmp.data(), g.data(), d);
    }
    const std::span<const T> gc(g);
    const double g2 = static_cast<double>(m.inner(at, gc, gc));
    const double gn = std::sqrt(std::max(g2, 0.0));
    return std::isfinite(gn) ? gn : std::numeric_limits<double>::infinity();
  };

  // f(at) = ½ Σ w d(at, x)², the objective.
  const auto objective = [&](std::span<const T> at) {
    double acc = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      if (!(weights[i] > T(0))) continue;
      const double di = static_cast<double>(m.distance(at, detail::means_row(points, i)));
      acc += 0.5 * static_cast<double>(weight(i)) * di * di;
    }
    return acc;
  };

  // Step control (Armijo backtracking on f): a trial m' = exp_m(t·g) is accepted when
  // f(m') ≤ f(m) − 10⁻⁴·t·‖g‖²_m (with a rounding slack of a few ulps of f), otherwise t is
  // halved. Step 1 (the Karcher fixed point) is accepted whenever it decreases f enough — always
  // for clustered points — but for points spread far apart in negative curvature the Hessian of f
  // reaches Σ w √c·d·coth(√c·d) ≫ 1 and step 1 oscillates; the halving then finds a descent
  // step. After an accepted trial t grows back (×2, at most options.step). Every trial counts as
  // an iteration, so max_iterations bounds the work.
  frechet_result result;
  const T max_step = static_cast<T>(options.step);
  T step = max_step;
  double gn = gradient(std::span<const T>(cur), grad);
  double f_cur = objective(std::span<const T>(cur));
  const double slack = 8.0 * static_cast<double>(std::numeric_limits<T>::epsilon());
  constexpr int max_halvings = 60;
  int halvings = 0;
  for (;;) {
    result.gradient_norm = gn;
    if (!std::isfinite(gn)) break;
    if (gn <= options.tolerance) {
      result.converged = true;
      break;
    }
    if (result.iterations >= options.max_iterations || halvings > max_halvings) break;
    std::copy(grad.begin(), grad.end(), move.begin());
    kernels::scale(step, move.data(), d);
    m.exp(std::span<const T>(cur), std::span<const T>(move), next);
    ++result.iterations;
    const double f_next = all_finite(next) ? objective(std::span<const T>(next))
                                           : std::numeric_limits<double>::infinity();
    bool accept = f_next <= f_cur - 1e-4 * static_cast<double>(step) * gn * gn;
    double gn_next = std::numeric_limits<double>::infinity();
    if (std::isfinite(f_next)) {
      gn_next = gradient(std::span<const T>(next), grad_next);
      // Without sufficient decrease (f is only resolved to its rounding, which for distances
      // computed in float is far coarser than ε·f), a step is still taken when it lowers the
      // gradient norm, or when it is the full Karcher step and f is flat to rounding.
      accept = accept || gn_next < gn || (step == max_step && f_next <= f_cur + slack * f_cur);
    }
    if (accept) {
      std::swap(cur, next);
      std::swap(grad, grad_next);
      f_cur = f_next;
      gn = gn_next;
      step = std::min(max_step, step * T(2));
      halvings = 0;
    } else {
      step /= T(2);
      ++halvings;
    }
  }
  std::copy(cur.begin(), cur.end(), out.begin());
  return result;
}

/// \brief The weighted Einstein midpoint of the Poincaré points in the rows of `points` (ball
/// of `ball`), returned as a Poincaré point (projected onto the ball of radius max_norm); see
/// the file comment.
template <attention_scalar T>
void einstein_midpoint(const poincare_ball<T>& ball,
                       const std::type_identity_t<matrix_cref<T>>& points,
                       std::type_identity_t<std::span<const T>> weights,
                       std::type_identity_t<std::span<T>> out) {
  constexpr std::string_view fn = "einstein_midpoint";
  const double wsum = detail::means_check_args<T>(fn, points, weights, out);
  const auto n = static_cast<std::size_t>(points.rows());
  const std::size_t d = out.size();
  const T c = ball.c();
  const double sqrt_c = std::sqrt(static_cast<double>(c));
  std::fill(out.begin(), out.end(), T(0));
  double p = 0.0;  // Σ w γ (weights normalised)
  for (std::size_t i = 0; i < n; ++i) {
    const auto x = detail::means_row(points, i);
    const T xx = kernels::dot(x.data(), x.data(), d);
    const T b = T(1) - c * xx;
    if (!(b > T(0))) {
      try {
        detail::geo_throw_not_in_ball(fn, "x", x, c * xx);
      } catch (const error& e) {
        detail::geo_rethrow_for_row(e, fn, "points", i);
      }
    }
    if (!(weights[i] > T(0))) continue;
    const double w = static_cast<double>(weights[i]) / wsum;
    p += w * (2.0 - static_cast<double>(b)) / static_cast<double>(b);  // γ = (1 + c‖x‖²)/β
    kernels::axpy(static_cast<T>(2.0 * w / static_cast<double>(b)), x.data(), out.data(), d);
  }
  // out = s = Σ w λ x;  m_K = s/p;  result = m_K/(1 + √κ).
  const double ss = static_cast<double>(kernels::dot(out.data(), out.data(), d));
  const double ns = std::sqrt(ss);
  double kappa = 1.0 - static_cast<double>(c) * ss / (p * p);
  if (kappa < 1.0 / 16.0 && ns > 0.0) {
    double gap = 0.0;  // p − √c‖s‖ as a sum of non-negative terms
    for (std::size_t i = 0; i < n; ++i) {
      if (!(weights[i] > T(0))) continue;
      const auto x = detail::means_row(points, i);
      const double w = static_cast<double>(weights[i]) / wsum;
      const T xx = kernels::dot(x.data(), x.data(), d);
      const double nx = std::sqrt(static_cast<double>(xx));
      const double b = 1.0 - static_cast<double>(c * xx);
      const double r = sqrt_c * nx;
      const double one_minus_r = b / (1.0 + r);
      double spread = 0.0;
      if (nx > 0.0) {
        spread = sqrt_c *
                 static_cast<double>(
                     detail::geo_pair_norms(x.data(), out.data(), static_cast<T>(-nx / ns), d).zz) /
                 nx;
      }
      gap += w * (one_minus_r * one_minus_r + spread) / b;
    }
    kappa = gap * (p + sqrt_c * ns) / (p * p);
  }
  kappa = std::max(kappa, 0.0);
  kernels::scale(static_cast<T>(1.0 / (p * (1.0 + std::sqrt(kappa)))), out.data(), d);
  const T oo = kernels::dot(out.data(), out.data(), d);
  const T max_norm = ball.max_norm();
  if (oo > max_norm * max_norm) kernels::scale(max_norm / std::sqrt(oo), out.data(), d);
}

/// \brief The weighted Einstein midpoint of Klein points (rows of `klein_points`, curvature −c),
/// returned in Klein coordinates: m_K = Σ wᵢγᵢkᵢ / Σ wᵢγᵢ, γᵢ = 1/√(1 − c‖kᵢ‖²). A convex
/// combination, so it lies in the Klein ball whenever the inputs do (no projection applied).
template <attention_scalar T>
void einstein_midpoint_klein(T c, const std::type_identity_t<matrix_cref<T>>& klein_points,
                             std::type_identity_t<std::span<const T>> weights,
                             std::type_identity_t<std::span<T>> out) {
  constexpr std::string_view fn = "einstein_midpoint_klein";
  detail::models_require_c(fn, c);
  const double wsum = detail::means_check_args<T>(fn, klein_points, weights, out);
  const auto n = static_cast<std::size_t>(klein_points.rows());
  const std::size_t d = out.size();
  std::fill(out.begin(), out.end(), T(0));
  double den = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const auto k = detail::means_row(klein_points, i);
    const T kk = kernels::dot(k.data(), k.data(), d);
    const T b = T(1) - c * kk;
    if (!(b > T(0))) {
      try {
        detail::geo_throw_not_in_ball(fn, "k", k, c * kk, "Klein ball");
      } catch (const error& e) {
        detail::geo_rethrow_for_row(e, fn, "klein_points", i);
      }
    }
    if (!(weights[i] > T(0))) continue;
    const double wg = static_cast<double>(weights[i]) / wsum / std::sqrt(static_cast<double>(b));
    den += wg;
    kernels::axpy(static_cast<T>(wg), k.data(), out.data(), d);
  }
  kernels::scale(static_cast<T>(1.0 / den), out.data(), d);
}

}  // namespace ruvector::attention
// ---- end ruvector/attention/geometry/means.hpp ----
// ---- begin ruvector/attention/geometry/product.hpp ----
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

// ---- begin ruvector/attention/geometry/sphere.hpp ----
/// \file geometry/sphere.hpp
/// \brief The sphere S^{n−1}_c of constant curvature +c (c > 0) embedded in R^n, as a
/// `constant_curvature_manifold`.
///
/// The positively curved factor of product spaces E^e × H^h × S^s (Gu et al. 2019, "Learning
/// Mixed-Curvature Representations in Product Spaces"; Skopek et al. 2020, "Mixed-curvature
/// Variational Autoencoders"). Points are stored in ambient coordinates x ∈ R^n with ‖x‖ = R,
/// R = 1/√c; tangent vectors at x are the v ∈ R^n with ⟨x, v⟩ = 0; the metric is the Euclidean one
/// restricted to T_x. With θ(x, y) ∈ [0, π] the angle between x and y:
///
///     d(x, y)    = R·θ,   θ = 2·atan2(‖x − y‖, ‖x + y‖)   (‖x‖ = ‖y‖; see below otherwise)
///              u = (y − x) − (⟨x, y − x⟩/‖x‖²)·x  (the part of y orthogonal to x)
///     ⟨u, v⟩_x   = Σ u_i v_i
///     exp_x(v)   = cos(‖v‖/R)·x + R·sin(‖v‖/R)·v/‖v‖            (exp_x(0) = x)
///     log_x(y)   = R·θ·u/‖u‖                                       (log_x(x) = 0)
///     Γ_{x→y}(v) = v + ⟨e, v⟩·(e' − e),  e = u/‖u‖,  e' = −sin θ·x/R + cos θ·e        (θ < π)
///                = v − (⟨x + y, v⟩/(R² + ⟨x, y⟩))·(x + y)     on T_x (the same map)
///     origin     = (R, 0, …, 0)
///
/// Numerical conventions:
/// - Angles are never taken from a bare acos(⟨x, y⟩/R²), which loses half the digits near θ = 0
///   and θ = π. `distance` uses Kahan's half-angle form on the squared chords ‖x ∓ y‖², each
///   formed from the element-wise difference/sum in one fused SIMD pass, corrected for unequal
///   norms (δ = ‖x‖ − ‖y‖: θ = 2·atan2(√(‖x − y‖² − δ²), √(‖x + y‖² − δ²))). log and transport
///   form u from the difference y − x and take θ = atan2(‖x‖·‖u‖, ⟨x, y⟩). Both keep relative
///   accuracy for close points and absolute accuracy near π.
/// - Points are read by direction: every operation uses R·x/‖x‖ for a point argument x (so points
///   that drifted off the sphere by rounding are harmless), and a vector whose squared norm is 0
///   (including one that underflows) is read as the origin — the same rule as `project`.
/// - exp rescales its result to norm R, removing the O(ε) radial drift of repeated updates; v is
///   assumed tangent at x (use `project_tangent` otherwise).
/// - log at (numerically) antipodal points: every great circle through x reaches −x, so log is
///   not unique. When u vanishes (or is so small that R·π/‖u‖ is not finite) and
///   ⟨x, y⟩ < 0, log returns the vector of length R·π pointing toward the coordinate axis e_k with
///   the smallest |x_k| (lowest k on ties): R·π·w/‖w‖ with w = e_k − (x_k/‖x‖²)·x. When u vanishes
///   and ⟨x, y⟩ > 0 (y = x) it returns 0. Never NaN for finite non-degenerate input.
/// - transport rotates the plane span{x, e} by θ and fixes its orthogonal complement (parallel
///   transport along the geodesic from x to y). It is evaluated from the twice-orthogonalised u
///   rather than from x + y, which near −x is pure rounding noise, so Γ(v) stays tangent at y.
///   At antipodal points it follows the same geodesic as log, i.e. Γ(v) = v − 2⟨ê, v⟩·ê with
///   ê = w/‖w‖ (the limit along that great circle), so Γ_{x→−x}(log_x(−x)) = −log_{−x}(x).
///   y = x gives the identity.
/// - n = 1 (S^0 = {−R, R}) is degenerate: T_x = {0}, log and transport of tangent vectors give 0.
///   n = 0 is rejected (`invalid_argument`): no point has norm R in R^0.
/// - Values are not checked for finiteness; NaN/Inf propagate. Squared norms must be
///   representable in T (‖x‖² ≈ R² = 1/c, which the constructor checks).
///
/// The object stores only c (and R); the dimension comes from the spans, which must agree
/// (`dimension_mismatch`). No operation allocates.

#include <cmath>
#include <cstddef>
#include <limits>
#include <numbers>
#include <span>
#include <sstream>
#include <string_view>


namespace ruvector::attention {

namespace detail {

/// A point read as stored.
template <class T>
struct sphere_stored_point {
  const T* p;
  T operator()(std::size_t i) const noexcept { return p[i]; }
};

/// The origin (r, 0, …, 0), substituted for a zero vector.
template <class T>
struct sphere_axis_point {
  T r;
  T operator()(std::size_t i) const noexcept { return i == 0 ? r : T(0); }
};

/// Calls f with an accessor for the point x: the origin if ‖x‖² == 0, x itself otherwise.
template <class T, class F>
decltype(auto) sphere_with_point(std::span<const T> x, T r, F&& f) {
  if (kernels::dot(x.data(), x.data(), x.size()) == T(0)) return f(sphere_axis_point<T>{r});
  return f(sphere_stored_point<T>{x.data()});
}

/// True for the stored-point accessor (the SIMD fast paths apply).
template <class X>
inline constexpr bool sphere_is_stored = false;
template <class T>
inline constexpr bool sphere_is_stored<sphere_stored_point<T>> = true;

// ---- SIMD passes over stored points (noexcept, no validation) ---------------------------------

/// q = ‖x‖², a = ⟨x, y − x⟩, p = ⟨x, y⟩ in one pass.
template <class T, class Arch = kernels::default_arch>
void sphere_pair_sums_simd(const T* x, const T* y, std::size_t n, T& q, T& a, T& p) noexcept {
  using B = kernels::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  std::size_t i = 0;
  q = a = p = T(0);
  if (n >= W) {
    B qb(T(0)), ab(T(0)), pb(T(0));
    for (; i + W <= n; i += W) {
      const B xb = B::load_unaligned(x + i);
      const B yb = B::load_unaligned(y + i);
      qb = xsimd::fma(xb, xb, qb);
      ab = xsimd::fma(xb, yb - xb, ab);
      pb = xsimd::fma(xb, yb, pb);
    }
    q = kernels::detail::hsum(qb);
    a = kernels::detail::hsum(ab);
    p = kernels::detail::hsum(pb);
  }
  for (; i < n; ++i) {
    q += x[i] * x[i];
    a += x[i] * (y[i] - x[i]);
    p += x[i] * y[i];
  }
}

/// out = (y − x) − alpha·x; returns ⟨x, out⟩.
template <class T, class Arch = kernels::default_arch>
T sphere_orth_simd(const T* x, const T* y, T alpha, T* out, std::size_t n) noexcept {
  using B = kernels::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  std::size_t i = 0;
  T b = T(0);
  if (n >= W) {
    const B al(alpha);
    B acc(T(0));
    for (; i + W <= n; i += W) {
      const B xb = B::load_unaligned(x + i);
      const B ub = xsimd::fnma(al, xb, B::load_unaligned(y + i) - xb);
      ub.store_unaligned(out + i);
      acc = xsimd::fma(xb, ub, acc);
    }
    b = kernels::detail::hsum(acc);
  }
  for (; i < n; ++i) {
    out[i] = (y[i] - x[i]) - alpha * x[i];
    b += x[i] * out[i];
  }
  return b;
}

/// out = a·x + b·v; returns ‖out‖².
template <class T, class Arch = kernels::default_arch>
T sphere_combine_simd(T a, const T* x, T b, const T* v, T* out, std::size_t n) noexcept {
  using B = kernels::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  std::size_t i = 0;
  T s = T(0);
  if (n >= W) {
    const B av(a), bv(b);
    B acc(T(0));
    for (; i + W <= n; i += W) {
      const B ob = xsimd::fma(av, B::load_unaligned(x + i), bv * B::load_unaligned(v + i));
      ob.store_unaligned(out + i);
      acc = xsimd::fma(ob, ob, acc);
    }
    s = kernels::detail::hsum(acc);
  }
  for (; i < n; ++i) {
    out[i] = a * x[i] + b * v[i];
    s += out[i] * out[i];
  }
  return s;
}

/// out = a·x + b·out; returns ‖out‖² (a = −β, b = 1: the second Gram–Schmidt pass). `out` may be
/// `v` of sphere_combine_simd: each element is read before it is written.
template <class T, class Arch = kernels::default_arch>
T sphere_axpby_norm_simd(T a, const T* x, T b, T* out, std::size_t n) noexcept {
  return sphere_combine_simd<T, Arch>(a, x, b, out, out, n);
}

/// First pass shared by distance and log: q = ‖x‖², a = ⟨x, y − x⟩, p = ⟨x, y⟩.
template <class T, class X, class Y>
void sphere_pair_sums(X x, Y y, std::size_t n, T& q, T& a, T& p) noexcept {
  q = a = p = T(0);
  for (std::size_t i = 0; i < n; ++i) {
    const T xi = x(i);
    const T yi = y(i);
    q += xi * xi;
    a += xi * (yi - xi);
    p += xi * yi;
  }
}

/// Angle θ ∈ [0, π] between x and y (both non-zero): atan2(‖x‖·‖u‖, ⟨x, y⟩) with u the part of
/// y − x orthogonal to x. The general (accessor) path, used when a point reads as the origin.
template <class T, class X, class Y>
T sphere_angle(X x, Y y, std::size_t n) noexcept {
  T q, a, p;
  sphere_pair_sums(x, y, n, q, a, p);
  const T alpha = a / q;
  T uu = T(0);
  for (std::size_t i = 0; i < n; ++i) {
    const T xi = x(i);
    const T ui = (y(i) - xi) - alpha * xi;
    uu += ui * ui;
  }
  return std::atan2(std::sqrt(q) * std::sqrt(uu), p);
}

/// ‖x‖², ‖y‖², ‖x − y‖², ‖x + y‖².
template <class T>
struct sphere_chord {
  T xx;
  T yy;
  T dd;
  T ss;
};

/// One SIMD pass computing `sphere_chord` (differences and sums formed before squaring, two
/// accumulator sets per step).
template <class T, class Arch = kernels::default_arch>
[[nodiscard]] sphere_chord<T> sphere_chord_sums(const T* x, const T* y, std::size_t n) noexcept {
  using B = kernels::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  std::size_t i = 0;
  sphere_chord<T> r{T(0), T(0), T(0), T(0)};
  if (n >= W) {
    B xx0(T(0)), yy0(T(0)), dd0(T(0)), ss0(T(0));
    B xx1(T(0)), yy1(T(0)), dd1(T(0)), ss1(T(0));
    for (; i + 2 * W <= n; i += 2 * W) {
      const B x0 = B::load_unaligned(x + i);
      const B y0 = B::load_unaligned(y + i);
      const B x1 = B::load_unaligned(x + i + W);
      const B y1 = B::load_unaligned(y + i + W);
      const B d0 = x0 - y0, s0 = x0 + y0, d1 = x1 - y1, s1 = x1 + y1;
      xx0 = xsimd::fma(x0, x0, xx0);
      yy0 = xsimd::fma(y0, y0, yy0);
      dd0 = xsimd::fma(d0, d0, dd0);
      ss0 = xsimd::fma(s0, s0, ss0);
      xx1 = xsimd::fma(x1, x1, xx1);
      yy1 = xsimd::fma(y1, y1, yy1);
      dd1 = xsimd::fma(d1, d1, dd1);
      ss1 = xsimd::fma(s1, s1, ss1);
    }
    for (; i + W <= n; i += W) {
      const B x0 = B::load_unaligned(x + i);
      const B y0 = B::load_unaligned(y + i);
      const B d0 = x0 - y0, s0 = x0 + y0;
      xx0 = xsimd::fma(x0, x0, xx0);
      yy0 = xsimd::fma(y0, y0, yy0);
      dd0 = xsimd::fma(d0, d0, dd0);
      ss0 = xsimd::fma(s0, s0, ss0);
    }
    r.xx = kernels::detail::hsum(xx0 + xx1);
    r.yy = kernels::detail::hsum(yy0 + yy1);
    r.dd = kernels::detail::hsum(dd0 + dd1);
    r.ss = kernels::detail::hsum(ss0 + ss1);
  }
  for (; i < n; ++i) {
    const T d = x[i] - y[i];
    const T s = x[i] + y[i];
    r.xx += x[i] * x[i];
    r.yy += y[i] * y[i];
    r.dd += d * d;
    r.ss += s * s;
  }
  return r;
}

/// The angle from the chord sums (Kahan's half-angle form, extended to unequal norms): with
/// δ = ‖x‖ − ‖y‖, ‖x − y‖² = δ² + 4‖x‖‖y‖ sin²(θ/2) and ‖x + y‖² = δ² + 4‖x‖‖y‖ cos²(θ/2), so
/// θ = 2·atan2(√(‖x − y‖² − δ²), √(‖x + y‖² − δ²)). Both squared chords are formed from the
/// element-wise difference/sum, so θ keeps its relative accuracy near 0 and its absolute
/// accuracy near π. Requires ‖x‖, ‖y‖ > 0.
template <class T>
[[nodiscard]] T sphere_chord_angle(const sphere_chord<T>& c) noexcept {
  const T nx = std::sqrt(c.xx);
  const T ny = std::sqrt(c.yy);
  const T delta = (c.xx - c.yy) / (nx + ny);
  const T d2 = delta * delta;
  const T sin_part = c.dd > d2 ? c.dd - d2 : T(0);
  const T cos_part = c.ss > d2 ? c.ss - d2 : T(0);
  return T(2) * std::atan2(std::sqrt(sin_part), std::sqrt(cos_part));
}

/// Writes the (unnormalised) antipodal direction w = e_k − (x_k/q)·x, k = argmin |x_k|, into out
/// and returns ‖w‖² (0 when n = 1).
template <class T, class X>
T sphere_antipodal_direction(X x, std::size_t n, T q, T* out) noexcept {
  std::size_t k = 0;
  T best = std::abs(x(0));
  for (std::size_t i = 1; i < n; ++i) {
    const T ai = std::abs(x(i));
    if (ai < best) {
      best = ai;
      k = i;
    }
  }
  const T coef = x(k) / q;
  T ww = T(0);
  for (std::size_t i = 0; i < n; ++i) {
    const T wi = (i == k ? T(1) : T(0)) - coef * x(i);
    out[i] = wi;
    ww += wi * wi;
  }
  return ww;
}

/// The initial direction of the geodesic from x to y, shared by log and transport.
template <class T>
struct sphere_geodesic {
  T theta;   ///< angle θ(x, y) ∈ [0, π]
  T inv_u;   ///< 1/‖u‖ (valid only when kind == 0)
  T q;       ///< ‖x‖²
  int kind;  ///< 0: out holds u; 1: y = x (u vanishes, ⟨x, y⟩ > 0); 2: y = −x
};

/// Writes u = (y − x) − (⟨x, y − x⟩/‖x‖²)·x into out and classifies the pair. Gram–Schmidt is
/// applied twice ("twice is enough"): the second pass keeps u tangent to working precision even
/// when it is a small residual (near-antipodal points). The pair is degenerate when ‖u‖ is 0 or
/// so small that R·π/‖u‖ is not finite.
template <class T, class X, class Y>
sphere_geodesic<T> sphere_direction(X x, Y y, std::size_t n, T r, T* out) noexcept {
  T q, a, p, uu;
  if constexpr (sphere_is_stored<X> && sphere_is_stored<Y>) {
    sphere_pair_sums_simd(x.p, y.p, n, q, a, p);
    const T b = sphere_orth_simd(x.p, y.p, a / q, out, n);
    uu = sphere_axpby_norm_simd(-(b / q), x.p, T(1), out, n);
  } else {
    sphere_pair_sums(x, y, n, q, a, p);
    const T alpha = a / q;
    T b = T(0);
    for (std::size_t i = 0; i < n; ++i) {
      const T xi = x(i);
      const T ui = (y(i) - xi) - alpha * xi;
      out[i] = ui;
      b += xi * ui;
    }
    const T beta = b / q;
    uu = T(0);
    for (std::size_t i = 0; i < n; ++i) {
      out[i] -= beta * x(i);
      uu += out[i] * out[i];
    }
  }
  const T nu = std::sqrt(uu);
  const T inv_u = T(1) / nu;
  sphere_geodesic<T> g{std::atan2(std::sqrt(q) * nu, p), inv_u, q, 0};
  if (!(nu > T(0) && std::isfinite(r * std::numbers::pi_v<T> * inv_u))) {
    g.kind = p > T(0) ? 1 : 2;
    g.theta = p > T(0) ? T(0) : std::numbers::pi_v<T>;
  }
  return g;
}

/// log_x(y) on the sphere of radius r (see the file comment for the conventions).
template <class T, class X, class Y>
void sphere_log(X x, Y y, std::size_t n, T r, T* out) noexcept {
  const sphere_geodesic<T> g = sphere_direction(x, y, n, r, out);
  T k = T(0);  // y = x: log is 0
  if (g.kind == 0) {
    k = r * g.theta * g.inv_u;
  } else if (g.kind == 2) {  // y = −x: the geodesic toward the axis e_k with the smallest |x_k|
    const T ww = sphere_antipodal_direction(x, n, g.q, out);
    k = ww > T(0) ? r * g.theta / std::sqrt(ww) : T(0);
  }
  kernels::scale(k, out, n);
}

/// exp_x(v) on the sphere of radius r, rescaled to norm r.
template <class T, class X>
void sphere_exp(X x, const T* v, std::size_t n, T r, T* out) noexcept {
  const T vv = kernels::dot(v, v, n);
  T q = T(0);
  if constexpr (sphere_is_stored<X>) {
    q = kernels::dot(x.p, x.p, n);
  } else {
    for (std::size_t i = 0; i < n; ++i) q += x(i) * x(i);
  }
  const T t = std::sqrt(vv) / r;
  const T cx = std::cos(t) * r / std::sqrt(q);     // cos(t)·(x scaled to norm r)
  const T sv = t > T(0) ? std::sin(t) / t : T(1);  // R·sin(t)/‖v‖ = sin(t)/t
  T oo = T(0);
  if constexpr (sphere_is_stored<X>) {
    oo = sphere_combine_simd(cx, x.p, sv, v, out, n);
  } else {
    for (std::size_t i = 0; i < n; ++i) {
      out[i] = cx * x(i) + sv * v[i];
      oo += out[i] * out[i];
    }
  }
  if (oo > T(0)) {
    kernels::scale(r / std::sqrt(oo), out, n);
  } else {  // only for a non-tangent v that cancels x exactly
    for (std::size_t i = 0; i < n; ++i) out[i] = i == 0 ? r : T(0);
  }
}

/// Parallel transport of v from T_x to T_y: with e = u/‖u‖ the unit initial direction of the
/// geodesic and x̂ = x/‖x‖, the plane span{x̂, e} is rotated by θ and its complement is fixed:
/// Γ(v) = v + ⟨e, v⟩·(e' − e), e' = −sin θ·x̂ + cos θ·e (e' − e = −sin θ·x̂ − 2 sin²(θ/2)·e).
/// Equal on T_x to the closed forms v − (⟨x + y, v⟩/(R² + ⟨x, y⟩))·(x + y) and
/// v − (⟨log_x y, v⟩/‖log_x y‖²)·(log_x y + log_y x), but e comes from the twice-orthogonalised
/// u, so the result stays tangent at y even for near-antipodal points, where x̂ + ŷ is pure
/// rounding noise.
template <class T, class X, class Y>
void sphere_transport(X x, Y y, const T* v, std::size_t n, T r, T* out) noexcept {
  const sphere_geodesic<T> g = sphere_direction(x, y, n, r, out);
  if (g.kind == 1) {  // y = x: the identity
    for (std::size_t i = 0; i < n; ++i) out[i] = v[i];
    return;
  }
  T ie = g.inv_u;  // out holds u (kind 0) or the antipodal direction w (kind 2); e = out·ie
  if (g.kind == 2) {
    const T ww = sphere_antipodal_direction(x, n, g.q, out);
    ie = ww > T(0) ? T(1) / std::sqrt(ww) : T(0);
  }
  const T ev = kernels::dot(out, v, n) * ie;
  const T sh = std::sin(g.theta / T(2));
  const T cx = -std::sin(g.theta) / std::sqrt(g.q) * ev;  // coefficient of x
  const T ce = T(-2) * sh * sh * ie * ev;                 // coefficient of u (or w)
  if constexpr (sphere_is_stored<X>) {
    kernels::scale(ce, out, n);
    kernels::axpy(cx, x.p, out, n);
    kernels::axpy(T(1), v, out, n);
  } else {
    for (std::size_t i = 0; i < n; ++i) out[i] = v[i] + cx * x(i) + ce * out[i];
  }
}

/// v − (⟨x, v⟩/‖x‖²)·x.
template <class T, class X>
void sphere_project_tangent(X x, const T* v, std::size_t n, T* out) noexcept {
  T q = T(0), a = T(0);
  for (std::size_t i = 0; i < n; ++i) {
    const T xi = x(i);
    q += xi * xi;
    a += xi * v[i];
  }
  const T alpha = a / q;
  for (std::size_t i = 0; i < n; ++i) out[i] = v[i] - alpha * x(i);
}

/// Throws `invalid_argument` for an empty point (no sphere lives in R^0).
inline void sphere_require_ambient(std::string_view what, std::size_t n) {
  if (n == 0) {
    std::ostringstream os;
    os << "invalid argument: " << what
       << " is empty; a sphere needs ambient dimension >= 1 (S^{n-1} in R^n)";
    throw invalid_argument(os.str());
  }
}

}  // namespace detail

/// \brief The sphere of curvature +c (radius R = 1/√c) embedded in R^n; points satisfy ‖x‖ = R.
/// \tparam T `float` or `double`.
template <attention_scalar T>
class sphere {
 public:
  using value_type = T;

  /// Sphere of curvature c; throws `invalid_argument` unless c is finite, c > 0 and 1/c is
  /// finite (so that R² is representable).
  explicit sphere(T c = T(1)) : c_(c), r_(T(1)) {
    if (!(std::isfinite(c) && c > T(0) && std::isfinite(T(1) / c))) {
      std::ostringstream os;
      os << "invalid argument: sphere curvature c = " << c
         << ", expected finite c > 0 with finite 1/c";
      throw invalid_argument(os.str());
    }
    r_ = T(1) / std::sqrt(c);
  }

  /// The curvature magnitude c.
  [[nodiscard]] T c() const noexcept { return c_; }
  /// Sectional curvature +c.
  [[nodiscard]] T curvature() const noexcept { return c_; }
  /// The radius R = 1/√c.
  [[nodiscard]] T radius() const noexcept { return r_; }

  /// Geodesic (great-circle) distance R·θ(x, y), θ ∈ [0, π].
  [[nodiscard]] T distance(std::span<const T> x, std::span<const T> y) const {
    detail::sphere_require_ambient("sphere::distance: x", x.size());
    require_dimension("sphere::distance: y.size()", y.size(), x.size());
    const auto c = detail::sphere_chord_sums(x.data(), y.data(), x.size());
    if (c.xx > T(0) && c.yy > T(0)) return r_ * detail::sphere_chord_angle(c);
    // A zero vector reads as the origin (rare): the general path.
    return detail::sphere_with_point(x, r_, [&](auto xa) {
      return detail::sphere_with_point(
          y, r_, [&](auto ya) { return r_ * detail::sphere_angle<T>(xa, ya, x.size()); });
    });
  }

  /// Riemannian inner product at x: the Euclidean ⟨u, v⟩ (u, v tangent at x).
  [[nodiscard]] T inner(std::span<const T> x, std::span<const T> u, std::span<const T> v) const {
    detail::sphere_require_ambient("sphere::inner: x", x.size());
    require_dimension("sphere::inner: u.size()", u.size(), x.size());
    require_dimension("sphere::inner: v.size()", v.size(), x.size());
    return kernels::dot(u.data(), v.data(), u.size());
  }

  /// Exponential map exp_x(v) = cos(‖v‖/R)·x + R·sin(‖v‖/R)·v/‖v‖, rescaled to norm R.
  void exp(std::span<const T> x, std::span<const T> v, std::span<T> out) const {
    detail::sphere_require_ambient("sphere::exp: x", x.size());
    require_dimension("sphere::exp: v.size()", v.size(), x.size());
    require_dimension("sphere::exp: out.size()", out.size(), x.size());
    detail::sphere_with_point(
        x, r_, [&](auto xa) { detail::sphere_exp<T>(xa, v.data(), x.size(), r_, out.data()); });
  }

  /// Logarithmic map log_x(y) = R·θ·u/‖u‖ (antipodal convention in the file comment).
  void log(std::span<const T> x, std::span<const T> y, std::span<T> out) const {
    detail::sphere_require_ambient("sphere::log: x", x.size());
    require_dimension("sphere::log: y.size()", y.size(), x.size());
    require_dimension("sphere::log: out.size()", out.size(), x.size());
    detail::sphere_with_point(x, r_, [&](auto xa) {
      detail::sphere_with_point(
          y, r_, [&](auto ya) { detail::sphere_log<T>(xa, ya, x.size(), r_, out.data()); });
    });
  }

  /// exp at the origin (R, 0, …, 0).
  void exp0(std::span<const T> v, std::span<T> out) const {
    detail::sphere_require_ambient("sphere::exp0: v", v.size());
    require_dimension("sphere::exp0: out.size()", out.size(), v.size());
    detail::sphere_exp<T>(detail::sphere_axis_point<T>{r_}, v.data(), v.size(), r_, out.data());
  }

  /// log at the origin (R, 0, …, 0).
  void log0(std::span<const T> y, std::span<T> out) const {
    detail::sphere_require_ambient("sphere::log0: y", y.size());
    require_dimension("sphere::log0: out.size()", out.size(), y.size());
    detail::sphere_with_point(y, r_, [&](auto ya) {
      detail::sphere_log<T>(detail::sphere_axis_point<T>{r_}, ya, y.size(), r_, out.data());
    });
  }

  /// Parallel transport of v ∈ T_x along the geodesic from x to y (antipodal convention in the
  /// file comment).
  void transport(std::span<const T> x, std::span<const T> y, std::span<const T> v,
                 std::span<T> out) const {
    detail::sphere_require_ambient("sphere::transport: x", x.size());
    require_dimension("sphere::transport: y.size()", y.size(), x.size());
    require_dimension("sphere::transport: v.size()", v.size(), x.size());
    require_dimension("sphere::transport: out.size()", out.size(), x.size());
    detail::sphere_with_point(x, r_, [&](auto xa) {
      detail::sphere_with_point(y, r_, [&](auto ya) {
        detail::sphere_transport<T>(xa, ya, v.data(), x.size(), r_, out.data());
      });
    });
  }

  /// Nearest point: R·x/‖x‖; the zero vector maps to the origin (R, 0, …, 0). When ‖x‖² would
  /// underflow (< min/ε) or overflow, the norm is formed after scaling by max|x_i|, so tiny or
  /// huge finite inputs still land on the sphere.
  void project(std::span<const T> x, std::span<T> out) const {
    detail::sphere_require_ambient("sphere::project: x", x.size());
    require_dimension("sphere::project: out.size()", out.size(), x.size());
    const T ss0 = kernels::dot(x.data(), x.data(), x.size());
    if (std::isfinite(ss0) &&
        ss0 >= std::numeric_limits<T>::min() / std::numeric_limits<T>::epsilon()) {
      detail::sphere_combine_simd(r_ / std::sqrt(ss0), x.data(), T(0), x.data(), out.data(),
                                  x.size());
      return;
    }
    // Tiny, huge, zero or non-finite input: the scaled path.
    T m = T(0);
    for (const T xi : x) m = std::abs(xi) > m ? std::abs(xi) : m;
    if (m == T(0)) {
      origin(out);
      return;
    }
    const T inv = T(1) / m;
    T ss = T(0);
    for (const T xi : x) ss += (xi * inv) * (xi * inv);
    const T k = r_ / std::sqrt(ss);
    for (std::size_t i = 0; i < x.size(); ++i) out[i] = (x[i] * inv) * k;
  }

  /// Projection onto T_x: v − (⟨x, v⟩/‖x‖²)·x (= v − (⟨x, v⟩/R²)·x on the sphere).
  void project_tangent(std::span<const T> x, std::span<const T> v, std::span<T> out) const {
    detail::sphere_require_ambient("sphere::project_tangent: x", x.size());
    require_dimension("sphere::project_tangent: v.size()", v.size(), x.size());
    require_dimension("sphere::project_tangent: out.size()", out.size(), x.size());
    detail::sphere_with_point(x, r_, [&](auto xa) {
      detail::sphere_project_tangent<T>(xa, v.data(), x.size(), out.data());
    });
  }

  /// The origin (R, 0, …, 0); throws `invalid_argument` for an empty `out`.
  void origin(std::span<T> out) const {
    detail::sphere_require_ambient("sphere::origin: out", out.size());
    out[0] = r_;
    for (std::size_t i = 1; i < out.size(); ++i) out[i] = T(0);
  }

 private:
  T c_;
  T r_;
};

}  // namespace ruvector::attention
// ---- end ruvector/attention/geometry/sphere.hpp ----

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
// ---- end ruvector/attention/geometry/product.hpp ----
// ---- end ruvector/attention/geometry.hpp ----
// ---- begin ruvector/attention/graph.hpp ----
/// \file graph.hpp
/// \brief Entry header of the graph family: CSR graphs with edge features, edge-featured graph
/// attention (GAT and GATv2), graph RoPE with hop-distance positions, and dual-space
/// (Euclidean + hyperbolic) attention.

// ---- begin ruvector/attention/graph/csr_graph.hpp ----
/// \file graph/csr_graph.hpp
/// \brief `csr_graph`: an immutable directed multigraph in compressed sparse row form, grouped by
/// *target* node, with optional per-edge feature rows.
///
/// Conventions (shared by every graph mechanism in the library):
/// - An edge `{source, target}` means "`target` aggregates over `source`": node `i` attends over
///   its *incoming* edges `j -> i` (message passing from source to target, as in PyG's
///   `flow="source_to_target"`).
/// - Edges are kept exactly as given: multi-edges stay separate slots (a neighbour listed twice
///   is attended to twice) and self-loops `i -> i` are ordinary edges. Nothing is deduplicated.
/// - CSR layout: `offsets()` has `N + 1` entries; the in-edges of node `i` occupy slots
///   `[offsets()[i], offsets()[i + 1])` of `sources()` / `edge_ids()`. Within a node the slots keep
///   the order of the input edge list (the sort by target is stable). `edge_ids()[s]` is the index
///   of slot `s`'s edge in the input list, i.e. the row of `edge_features()` holding its features.
/// - Edge features are stored once, as a `row_matrix<double>` copy `[E, f]` in input-edge order
///   (row `e` = edge `e`), whatever scalar type they were given in; mechanisms cast them to their
///   own `T`. They must be finite.
/// - `with_self_loops()` appends a loop `i -> i` for every node that has none, after the original
///   edges (ids `E, E + 1, ...` in increasing node order). The feature row of an added loop is the
///   mean of the node's incoming edge-feature rows (multi-edges counted with multiplicity), or
///   zeros for a node without incoming edges (PyG's `fill_value="mean"`); `self_loop_fill::zeros`
///   gives zeros everywhere.
/// - `hop_distances(root)` is a breadth-first search that follows edges in *both* directions
///   (the undirected hop count); unreachable nodes get `SIZE_MAX`. `k_hop_in_neighbors(i, k)`
///   follows edges only *against* their direction (nodes that can reach `i` by a directed walk of
///   1..k edges).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <sstream>
#include <string>
#include <utility>
#include <vector>


namespace ruvector::attention {

/// \brief A directed edge: `target` aggregates over `source`.
struct edge {
  std::size_t source = 0;  ///< The node sending the message (a key/value node).
  std::size_t target = 0;  ///< The node receiving it (the query node).
  friend constexpr bool operator==(const edge&, const edge&) noexcept = default;
};

/// \brief Feature rows given to the self-loops that `csr_graph::with_self_loops` adds.
enum class self_loop_fill {
  mean,   ///< Mean of the node's incoming edge-feature rows (zeros when it has none).
  zeros,  ///< All zeros.
};

/// \brief Immutable directed multigraph, CSR grouped by target, with optional edge features.
class csr_graph {
 public:
  /// An empty graph (0 nodes, 0 edges).
  csr_graph() : offsets_(1, 0) {}

  /// \brief Builds the CSR of `num_nodes` nodes from an edge list (multi-edges and self-loops
  /// kept). Throws `invalid_argument` naming the edge index and the bad node when an endpoint is
  /// `>= num_nodes`.
  [[nodiscard]] static csr_graph from_edges(std::size_t num_nodes, std::span<const edge> edges) {
    csr_graph g;
    g.num_nodes_ = num_nodes;
    g.edges_.assign(edges.begin(), edges.end());
    g.validate_edges();
    g.build();
    return g;
  }

  /// \brief As above, with edge features `[E, f]` (row `e` = edge `e`). Throws
  /// `dimension_mismatch` unless `edge_features.rows() == edges.size()`, `non_finite_input`
  /// naming the first NaN/Inf feature.
  template <attention_scalar T>
  [[nodiscard]] static csr_graph from_edges(std::size_t num_nodes, std::span<const edge> edges,
                                            const matrix_cref<T>& edge_features) {
    require_dimension("csr_graph::from_edges: edge_features.rows() (one row per edge)",
                      static_cast<std::size_t>(edge_features.rows()), edges.size());
    require_finite("csr_graph::from_edges: edge_features", edge_features.data(),
                   static_cast<std::size_t>(edge_features.rows()),
                   static_cast<std::size_t>(edge_features.cols()), edge_features.outerStride());
    csr_graph g = from_edges(num_nodes, edges);
    g.features_ = edge_features.template cast<double>();
    g.edge_dim_ = static_cast<std::size_t>(edge_features.cols());
    g.has_features_ = true;
    return g;
  }

  /// Number of nodes `N`.
  [[nodiscard]] std::size_t num_nodes() const noexcept { return num_nodes_; }
  /// Number of edges `E` (multi-edges and self-loops counted).
  [[nodiscard]] std::size_t num_edges() const noexcept { return edges_.size(); }
  /// CSR row offsets, size `N + 1`; node `i`'s in-edges are slots `[offsets[i], offsets[i+1])`.
  [[nodiscard]] std::span<const std::size_t> offsets() const noexcept { return offsets_; }
  /// Source node of every CSR slot, size `E`, grouped by target.
  [[nodiscard]] std::span<const std::size_t> sources() const noexcept { return sources_; }
  /// Input-edge index of every CSR slot (the row of `edge_features()` for that slot).
  [[nodiscard]] std::span<const std::size_t> edge_ids() const noexcept { return edge_ids_; }
  /// The edge list in input order (added self-loops last).
  [[nodiscard]] std::span<const edge> edges() const noexcept { return edges_; }

  /// Sources of the edges entering `node` (with multiplicity, input order). Throws
  /// `invalid_argument` if `node >= num_nodes()`.
  [[nodiscard]] std::span<const std::size_t> in_neighbors(std::size_t node) const {
    check_node("csr_graph::in_neighbors", node);
    return std::span<const std::size_t>(sources_).subspan(offsets_[node],
                                                          offsets_[node + 1] - offsets_[node]);
  }
  /// Input-edge indices of the edges entering `node`, aligned with `in_neighbors(node)`.
  [[nodiscard]] std::span<const std::size_t> in_edge_ids(std::size_t node) const {
    check_node("csr_graph::in_edge_ids", node);
    return std::span<const std::size_t>(edge_ids_).subspan(offsets_[node],
                                                           offsets_[node + 1] - offsets_[node]);
  }
  /// Number of edges entering `node`.
  [[nodiscard]] std::size_t in_degree(std::size_t node) const {
    check_node("csr_graph::in_degree", node);
    return offsets_[node + 1] - offsets_[node];
  }

  /// True when the graph was built with edge features.
  [[nodiscard]] bool has_edge_features() const noexcept { return has_features_; }
  /// Width `f` of the edge features (0 without features).
  [[nodiscard]] std::size_t edge_dim() const noexcept { return edge_dim_; }
  /// Edge features `[E, f]` in input-edge order (an empty matrix without features).
  [[nodiscard]] const row_matrix<double>& edge_features() const noexcept { return features_; }

  /// \brief A copy with a self-loop `i -> i` added for every node that has none (existing loops
  /// and multi-edges kept). Added loops get edge ids `E, E+1, ...` in increasing node order; their
  /// feature rows follow `fill` (see the file comment).
  [[nodiscard]] csr_graph with_self_loops(self_loop_fill fill = self_loop_fill::mean) const {
    std::vector<char> has_loop(num_nodes_, 0);
    for (const edge& e : edges_) {
      if (e.source == e.target) has_loop[e.target] = 1;
    }
    csr_graph g;
    g.num_nodes_ = num_nodes_;
    g.edges_ = edges_;
    std::vector<std::size_t> added;
    for (std::size_t i = 0; i < num_nodes_; ++i) {
      if (!has_loop[i]) {
        added.push_back(i);
        g.edges_.push_back(edge{i, i});
      }
    }
    g.build();
    if (has_features_) {
      g.has_features_ = true;
      g.edge_dim_ = edge_dim_;
      const auto old_e = static_cast<Eigen::Index>(edges_.size());
      g.features_.resize(static_cast<Eigen::Index>(g.edges_.size()),
                         static_cast<Eigen::Index>(edge_dim_));
      g.features_.topRows(old_e) = features_;
      for (std::size_t k = 0; k < added.size(); ++k) {
        const std::size_t node = added[k];
        auto row = g.features_.row(old_e + static_cast<Eigen::Index>(k));
        row.setZero();
        if (fill == self_loop_fill::mean) {
          const std::size_t begin = offsets_[node];
          const std::size_t end = offsets_[node + 1];
          for (std::size_t s = begin; s < end; ++s) {
            row += features_.row(static_cast<Eigen::Index>(edge_ids_[s]));
          }
          if (end > begin) row /= static_cast<double>(end - begin);
        }
      }
    }
    return g;
  }

  /// \brief Breadth-first hop counts from `root`, following edges in both directions;
  /// `SIZE_MAX` for unreachable nodes. Throws `invalid_argument` if `root >= num_nodes()`.
  [[nodiscard]] std::vector<std::size_t> hop_distances(std::size_t root) const {
    check_node("csr_graph::hop_distances", root);
    // Undirected adjacency: in-edges from the CSR plus out-edges built here (O(N + E)).
    std::vector<std::size_t> out_offsets(num_nodes_ + 1, 0);
    for (const edge& e : edges_) ++out_offsets[e.source + 1];
    for (std::size_t i = 0; i < num_nodes_; ++i) out_offsets[i + 1] += out_offsets[i];
    std::vector<std::size_t> out_targets(edges_.size());
    {
      std::vector<std::size_t> cursor(out_offsets.begin(), out_offsets.end() - 1);
      for (const edge& e : edges_) out_targets[cursor[e.source]++] = e.target;
    }
    constexpr std::size_t unreachable = std::numeric_limits<std::size_t>::max();
    std::vector<std::size_t> dist(num_nodes_, unreachable);
    std::vector<std::size_t> queue;
    queue.reserve(num_nodes_);
    dist[root] = 0;
    queue.push_back(root);
    for (std::size_t head = 0; head < queue.size(); ++head) {
      const std::size_t u = queue[head];
      const auto visit = [&](std::size_t v) {
        if (dist[v] == unreachable) {
          dist[v] = dist[u] + 1;
          queue.push_back(v);
        }
      };
      for (std::size_t s = offsets_[u]; s < offsets_[u + 1]; ++s) visit(sources_[s]);
      for (std::size_t s = out_offsets[u]; s < out_offsets[u + 1]; ++s) visit(out_targets[s]);
    }
    return dist;
  }

  /// \brief The distinct nodes `j` from which a directed walk of 1..`k` edges reaches `node`
  /// (edges followed against their direction), in increasing index order. `node` itself is
  /// included only if it lies on a directed cycle of length <= k (e.g. has a self-loop).
  /// `k == 0` gives an empty set. Throws `invalid_argument` if `node >= num_nodes()`.
  [[nodiscard]] std::vector<std::size_t> k_hop_in_neighbors(std::size_t node, std::size_t k) const {
    check_node("csr_graph::k_hop_in_neighbors", node);
    std::vector<char> seen(num_nodes_, 0);
    std::vector<std::size_t> frontier{node};
    std::vector<std::size_t> next;
    std::vector<std::size_t> result;
    // BFS levels 1..k over in-edges; `seen` marks nodes reached by a walk of length >= 1.
    for (std::size_t level = 0; level < k && !frontier.empty(); ++level) {
      next.clear();
      for (const std::size_t u : frontier) {
        for (std::size_t s = offsets_[u]; s < offsets_[u + 1]; ++s) {
          const std::size_t v = sources_[s];
          if (!seen[v]) {
            seen[v] = 1;
            result.push_back(v);
            next.push_back(v);
          }
        }
      }
      frontier.swap(next);
    }
    std::sort(result.begin(), result.end());
    return result;
  }

 private:
  void check_node(const char* where, std::size_t node) const {
    if (node >= num_nodes_) {
      std::ostringstream os;
      os << "invalid argument: " << where << ": node " << node << " is out of range (num_nodes is "
         << num_nodes_ << ")";
      throw invalid_argument(os.str());
    }
  }

  void validate_edges() const {
    for (std::size_t e = 0; e < edges_.size(); ++e) {
      const edge& ed = edges_[e];
      const bool bad_source = ed.source >= num_nodes_;
      if (bad_source || ed.target >= num_nodes_) {
        std::ostringstream os;
        os << "invalid argument: csr_graph::from_edges: edges[" << e << "]."
           << (bad_source ? "source" : "target") << " = " << (bad_source ? ed.source : ed.target)
           << " is out of range, expected < num_nodes = " << num_nodes_;
        throw invalid_argument(os.str());
      }
    }
  }

  // Stable counting sort of the edge list by target.
  void build() {
    offsets_.assign(num_nodes_ + 1, 0);
    for (const edge& e : edges_) ++offsets_[e.target + 1];
    for (std::size_t i = 0; i < num_nodes_; ++i) offsets_[i + 1] += offsets_[i];
    sources_.resize(edges_.size());
    edge_ids_.resize(edges_.size());
    std::vector<std::size_t> cursor(offsets_.begin(), offsets_.end() - 1);
    for (std::size_t e = 0; e < edges_.size(); ++e) {
      const std::size_t slot = cursor[edges_[e].target]++;
      sources_[slot] = edges_[e].source;
      edge_ids_[slot] = e;
    }
  }

  std::size_t num_nodes_ = 0;
  std::vector<edge> edges_;
  std::vector<std::size_t> offsets_;
  std::vector<std::size_t> sources_;
  std::vector<std::size_t> edge_ids_;
  row_matrix<double> features_;
  std::size_t edge_dim_ = 0;
  bool has_features_ = false;
};

}  // namespace ruvector::attention
// ---- end ruvector/attention/graph/csr_graph.hpp ----
// ---- begin ruvector/attention/graph/dual_space.hpp ----
/// \file graph/dual_space.hpp
/// \brief Dual-space attention: one score that mixes Euclidean similarity (flat, local structure)
/// with hyperbolic distance (hierarchies), the seeds' `DualSpaceAttention`. Geometry of the
/// Poincaré ball as in Ganea, Bécigneul & Hofmann 2018, "Hyperbolic Neural Networks"; mixing
/// Euclidean and hyperbolic similarity in one attention logit as in Gu et al. 2019, "Learning
/// Mixed-Curvature Representations in Product Spaces".
///
///     s_j = ( w_e·⟨q_e, k_e,j⟩/√d − w_h·d_c(P(q_h), P(k_h,j)) ) / τ
///     w   = softmax(s),   out = Σ_j w_j v_j            (then W_out·out with `output_projection`)
///
/// - q_e = W_e q, k_e = W_e k and q_h = W_h q, k_h = W_h k with `learned_projections`
///   (W_e, W_h are d×d), otherwise q_e = q_h = q and k_e = k_h = k.
/// - P projects onto the closed Poincaré ball of curvature −c (c = −curvature) of radius
///   r = (1 − eps)/√c, eps = `poincare_ball<T>::default_eps` (1e-5 float, 1e-10 double):
///   P(x) = x if ‖x‖ ≤ r, else r·x/‖x‖ (`poincare_ball::project`). Vectors are Euclidean
///   features, so P is applied to every query and key, as the seeds do.
/// - d_c(x, y) = (1/√c)·arcosh(1 + a), a = 2c‖x − y‖²/((1 − c‖x‖²)(1 − c‖y‖²)), evaluated as
///   (1/√c)·log1p(a + √(a(a + 2))) in xsimd batches (accurate for close points).
/// - w_e = `euclidean_weight`, w_h = `hyperbolic_weight` (any finite values; parameters a trainer
///   may update through `set_space_weights`), τ = `temperature` > 0, d = `dim`.
///
/// Evaluation (per query, n keys): the Euclidean part is one `kernels::row_dots` pass; with
/// learned projections it uses ⟨W_e q, W_e k⟩ = ⟨W_eᵀW_e q, k⟩, so the keys are not projected for
/// it. The hyperbolic part is one `kernels::row_squared_distances` pass (‖q_h − k_h‖², formed from
/// the difference, and ‖k_h‖²); keys outside the ball get one extra difference pass for
/// ‖P(q_h) − r·k/‖k‖‖². The conformal terms 1/(1 − c‖·‖²) are formed in double (near the
/// boundary they are small differences); a projected point has ‖P(x)‖ = r exactly by convention.
/// With learned projections the keys are first multiplied by W_hᵀ (one GEMM, O(n·d²)); batch
/// calls (`compute_batch`) do that once for all queries. w_e = 0 skips the Euclidean pass and
/// w_h = 0 the hyperbolic one, so w_h = 0, w_e = 1, τ = 1 is scaled dot-product attention through
/// the same kernels (the scale w_e/(√d·τ) is formed in double, so it may differ from SDPA's 1/√d
/// by one rounding).
///
/// Conventions: max-subtracted softmax; masked keys (`false`) get weight 0 and a query whose keys
/// are all masked outputs zeros (DESIGN §4); with `check_finite` NaN/Inf inputs throw
/// `non_finite_input` naming the first bad element (inputs are scanned only after a non-finite
/// score or output). Near the boundary a distance resolves ~λ·ulp (poincare.hpp): about 6e-3 in
/// float for points at radius r, so use double when hyperbolic scores must resolve finer.
///
/// Differences from the Rust crate (deliberate): its W_e, W_h, W_out were always applied
/// (untrained, from an LCG) and its `learn_weights` flag was never read; here the maps are opt-in
/// and Xavier-uniform from `seed` (core/rng.hpp). Its output projection W_out was applied only when
/// the values happened to be `dim` wide, so the output space depended on the value width; here
/// `output_projection` applies W_out (value_dim × value_dim) always, and then values must be
/// `value_dim` wide (`dimension_mismatch` otherwise). The seeds' curvature was a positive number
/// used as |c|; here it is the (negative) sectional curvature, as elsewhere in the library.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <utility>
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

RUVECTOR_ATTENTION_KERNEL_WARNINGS_BEGIN

namespace ruvector::attention {

/// \brief Configuration of `dual_space_attention` (the seeds' `DualSpaceConfig`).
struct dual_space_config {
  std::size_t dim = 256;             ///< d: query/key dimension
  double curvature = -1.0;           ///< sectional curvature −c of the ball; finite and < 0
  double euclidean_weight = 0.5;     ///< w_e (finite)
  double hyperbolic_weight = 0.5;    ///< w_h (finite)
  double temperature = 1.0;          ///< τ; finite and > 0
  bool learned_projections = false;  ///< apply W_e, W_h (d × d) to queries and keys
  bool output_projection = false;    ///< apply W_out (value_dim × value_dim) to the output
  std::size_t value_dim = 0;         ///< value width with `output_projection` (0 = dim)
  std::uint64_t seed = 42;           ///< seed of the Xavier-uniform initialisation
  bool check_finite = true;          ///< diagnose NaN/Inf inputs (non_finite_input)
};

/// \brief The linear maps of `dual_space_attention` in `[out, in]` layout (y = W x). A map that
/// the configuration does not use is an empty matrix.
template <class T>
struct dual_space_weights {
  row_matrix<T> w_e;    ///< Euclidean map, d × d
  row_matrix<T> w_h;    ///< hyperbolic map, d × d
  row_matrix<T> w_out;  ///< output map, value_dim × value_dim
};

/// \brief The two unweighted score terms per key (`dual_space_attention::space_terms`).
template <class T>
struct dual_space_terms {
  std::vector<T> euclidean;   ///< ⟨q_e, k_e,j⟩/√d
  std::vector<T> hyperbolic;  ///< d_c(P(q_h), P(k_h,j))
};

/// \brief Dual-space (Euclidean + Poincaré) attention; see the file comment. Models
/// `attention_mechanism` and `masked_attention_mechanism`. Forward calls are const and
/// thread-safe; `set_weights` / `set_space_weights` are not (do not call them concurrently with
/// a forward call).
template <attention_scalar T>
class dual_space_attention {
 public:
  using value_type = T;

  /// Builds the mechanism and Xavier-initialises the configured maps from `config.seed`
  /// (order W_e, W_h, W_out; U(±√(6/(fan_in + fan_out))), Glorot & Bengio 2010). Throws
  /// `invalid_config` on a bad field.
  explicit dual_space_attention(const dual_space_config& config)
      : config_(validated(config)), ball_(static_cast<T>(-config.curvature)) {
    c_ = static_cast<double>(ball_.c());
    r_ = static_cast<double>(ball_.max_norm());
    set_space_weights(config_.euclidean_weight, config_.hyperbolic_weight);
    rng gen(config_.seed);
    const std::size_t d = config_.dim;
    if (config_.learned_projections) {
      w_.w_e = xavier(gen, d, d);
      w_.w_h = xavier(gen, d, d);
      gram_ = w_.w_e.transpose() * w_.w_e;
    }
    if (config_.output_projection) w_.w_out = xavier(gen, value_dim(), value_dim());
  }

  /// Convenience: `dual_space_attention(dim, curvature)` with the other fields at their defaults.
  dual_space_attention(std::size_t dim, double curvature)
      : dual_space_attention(dual_space_config{.dim = dim, .curvature = curvature}) {}

  [[nodiscard]] const dual_space_config& config() const noexcept { return config_; }
  [[nodiscard]] std::size_t dim() const noexcept { return config_.dim; }
  /// Sectional curvature −c (negative).
  [[nodiscard]] T curvature() const noexcept { return ball_.curvature(); }
  [[nodiscard]] const poincare_ball<T>& ball() const noexcept { return ball_; }
  /// w_e (as set by the config or `set_space_weights`).
  [[nodiscard]] double euclidean_weight() const noexcept { return config_.euclidean_weight; }
  /// w_h (as set by the config or `set_space_weights`).
  [[nodiscard]] double hyperbolic_weight() const noexcept { return config_.hyperbolic_weight; }
  /// Width of values and output with `output_projection` (value_dim, or dim when 0); 0 otherwise.
  [[nodiscard]] std::size_t value_dim() const noexcept {
    if (!config_.output_projection) return 0;
    return config_.value_dim == 0 ? config_.dim : config_.value_dim;
  }
  /// The linear maps (empty matrices for the unused ones).
  [[nodiscard]] const dual_space_weights<T>& weights() const noexcept { return w_; }

  /// \brief Replaces the linear maps. Shapes must match the configuration (an unused map must be
  /// empty) and values must be finite. Not thread-safe with concurrent forward calls.
  void set_weights(dual_space_weights<T> w) {
    const std::size_t d = dim();
    check_map("w_e", w.w_e, config_.learned_projections ? d : 0);
    check_map("w_h", w.w_h, config_.learned_projections ? d : 0);
    check_map("w_out", w.w_out, value_dim());
    w_ = std::move(w);
    if (config_.learned_projections) gram_ = w_.w_e.transpose() * w_.w_e;
  }

  /// \brief Replaces w_e and w_h (finite; `invalid_argument` otherwise). Not thread-safe with
  /// concurrent forward calls.
  void set_space_weights(double euclidean_weight, double hyperbolic_weight) {
    require_argument(std::isfinite(euclidean_weight) && std::isfinite(hyperbolic_weight),
                     "dual_space_attention: euclidean_weight and hyperbolic_weight must be finite");
    config_.euclidean_weight = euclidean_weight;
    config_.hyperbolic_weight = hyperbolic_weight;
  }

  /// \brief The unweighted terms ⟨q_e, k_e,j⟩/√d and d_c(P(q_h), P(k_h,j)) of every key (the
  /// seeds' `get_space_contributions`, unscaled by w and τ): s_j = (w_e·E_j − w_h·H_j)/τ. These
  /// are also ∂s_j/∂w_e·τ and −∂s_j/∂w_h·τ.
  [[nodiscard]] dual_space_terms<T> space_terms(std::span<const T> query,
                                                const matrix_cref<T>& keys) const {
    const std::size_t n = validate_keys(query, keys);
    dual_space_terms<T> r{std::vector<T>(n), std::vector<T>(n)};
    const matrix_cref<T> hkeys = hyperbolic_keys(keys, nullptr, true);
    euclidean_part(query, keys, T(1) / std::sqrt(static_cast<T>(dim())), r.euclidean.data());
    std::fill(r.hyperbolic.begin(), r.hyperbolic.end(), T(0));
    hyperbolic_part(query, hkeys, 1.0 / std::sqrt(c_), r.hyperbolic.data());
    if (config_.check_finite && !(kernels::all_finite(r.euclidean.data(), n) &&
                                  kernels::all_finite(r.hyperbolic.data(), n)))
      diagnose(query, keys, nullptr);
    return r;
  }

  /// \brief Writes the output (size values.cols()) and optionally the weights (size n) of one
  /// query; returns the log-sum-exp of the visible scores. `key_mask` (empty = all visible) holds
  /// `true` for visible keys.
  T compute_into(std::span<const T> query, const matrix_cref<T>& keys, const matrix_cref<T>& values,
                 std::span<T> out, std::span<const bool> key_mask = {},
                 std::span<T> weights = {}) const {
    const std::size_t n = validate_keys(query, keys);
    validate_values(n, values, out, key_mask, weights);
    return compute_core(query, keys, hyperbolic_keys(keys, nullptr), values, out, key_mask,
                        weights);
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

  /// \brief Every row of `queries` against one key set (row i of the result is the output of
  /// query i). The keys' hyperbolic projection K·W_hᵀ is computed once; queries run in parallel
  /// (`parallel_for`). `key_mask` (empty = all visible) is shared by every query.
  [[nodiscard]] row_matrix<T> compute_batch(const matrix_cref<T>& queries,
                                            const matrix_cref<T>& keys,
                                            const matrix_cref<T>& values,
                                            std::span<const bool> key_mask = {}) const {
    const std::size_t d = dim();
    require_dimension("queries.cols()", static_cast<std::size_t>(queries.cols()), d);
    const std::size_t lq = static_cast<std::size_t>(queries.rows());
    const std::size_t dv = static_cast<std::size_t>(values.cols());
    row_matrix<T> out(static_cast<Eigen::Index>(lq), static_cast<Eigen::Index>(dv));
    if (lq == 0) return out;
    const std::size_t n = validate_keys(std::span<const T>(queries.row(0).data(), d), keys);
    validate_values(n, values, std::span<T>(out.row(0).data(), dv), key_mask, {});
    row_matrix<T> projected;
    const matrix_cref<T> hkeys = hyperbolic_keys(keys, &projected);
    parallel_for(0, lq, [&](std::size_t i) {
      const auto row = static_cast<Eigen::Index>(i);
      compute_core(std::span<const T>(queries.row(row).data(), d), keys, hkeys, values,
                   std::span<T>(out.row(row).data(), dv), key_mask, {});
    });
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
    const std::unique_ptr<bool[]> m(new bool[key_mask.size()]);
    std::copy(key_mask.begin(), key_mask.end(), m.get());
    return compute_with_mask(std::span<const T>(query), to_matrix(keys, "keys"),
                             to_matrix(values, "values"),
                             std::span<const bool>(m.get(), key_mask.size()));
  }

 private:
  using vector_map = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, 1>>;
  using const_vector_map = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>>;

  static const dual_space_config& validated(const dual_space_config& c) {
    require_config(c.dim > 0, "dual_space_attention: dim must be > 0");
    require_at_most("dim", c.dim, max_dimension);
    require_at_most("value_dim", c.value_dim, max_dimension);
    require_config(std::isfinite(c.curvature) && c.curvature < 0.0,
                   "dual_space_attention: curvature must be finite and < 0 (the ball has "
                   "curvature -c)");
    require_config(std::isfinite(c.euclidean_weight) && std::isfinite(c.hyperbolic_weight),
                   "dual_space_attention: euclidean_weight and hyperbolic_weight must be finite");
    require_config(std::isfinite(c.temperature) && c.temperature > 0.0,
                   "dual_space_attention: temperature must be finite and > 0");
    return c;
  }

  static row_matrix<T> xavier(rng& gen, std::size_t out, std::size_t in) {
    const double a = std::sqrt(6.0 / static_cast<double>(in + out));
    row_matrix<T> w(static_cast<Eigen::Index>(out), static_cast<Eigen::Index>(in));
    for (Eigen::Index i = 0; i < w.size(); ++i) w.data()[i] = gen.uniform<T>(T(-a), T(a));
    return w;
  }

  static void check_map(const char* name, const row_matrix<T>& m, std::size_t size) {
    require_dimension(std::string("dual_space_weights::").append(name).append(".rows()"),
                      static_cast<std::size_t>(m.rows()), size);
    require_dimension(std::string("dual_space_weights::").append(name).append(".cols()"),
                      static_cast<std::size_t>(m.cols()), size);
    require_finite(std::string("dual_space_weights::").append(name), m.data(), size, size,
                   static_cast<std::ptrdiff_t>(size));
  }

  std::size_t validate_keys(std::span<const T> query, const matrix_cref<T>& keys) const {
    const std::size_t n = static_cast<std::size_t>(keys.rows());
    require_dimension("query.size()", query.size(), dim());
    require_non_empty("keys", n);
    require_at_most("keys.rows()", n, max_sequence_length);
    require_dimension("keys.cols()", static_cast<std::size_t>(keys.cols()), dim());
    return n;
  }

  void validate_values(std::size_t n, const matrix_cref<T>& values, std::span<const T> out,
                       std::span<const bool> key_mask, std::span<const T> weights) const {
    const std::size_t dv = static_cast<std::size_t>(values.cols());
    require_dimension("values.rows() (must equal keys.rows())",
                      static_cast<std::size_t>(values.rows()), n);
    if (config_.output_projection)
      require_dimension("values.cols() (must equal value_dim with output_projection)", dv,
                        value_dim());
    require_dimension("out.size() (must equal values.cols())", out.size(), dv);
    if (!key_mask.empty()) require_dimension("key_mask.size()", key_mask.size(), n);
    if (!weights.empty()) require_dimension("weights.size()", weights.size(), n);
  }

  /// The keys as used by the hyperbolic term: `keys` itself, or K·W_hᵀ (into `owned` when given,
  /// else into thread scratch slot 8).
  /// Skipped (returns `keys`) when the hyperbolic term is unused (w_h = 0) unless `always`.
  matrix_cref<T> hyperbolic_keys(const matrix_cref<T>& keys, row_matrix<T>* owned,
                                 bool always = false) const {
    if (!config_.learned_projections || (config_.hyperbolic_weight == 0.0 && !always)) return keys;
    const auto n = keys.rows();
    const auto d = static_cast<Eigen::Index>(dim());
    if (owned != nullptr) {
      owned->noalias() = keys * w_.w_h.transpose();
      return matrix_cref<T>(*owned);
    }
    Eigen::Map<row_matrix<T>> m(detail::thread_scratch<T, 8>(static_cast<std::size_t>(n) * dim()),
                                n, d);
    m.noalias() = keys * w_.w_h.transpose();
    return matrix_cref<T>(m);
  }

  /// out_j = alpha·⟨q_e, k_e,j⟩, or 0 when alpha = 0.
  void euclidean_part(std::span<const T> query, const matrix_cref<T>& keys, T alpha, T* out) const {
    const std::size_t n = static_cast<std::size_t>(keys.rows());
    const std::size_t d = dim();
    if (alpha == T(0)) {
      std::fill(out, out + n, T(0));
      return;
    }
    const T* q = query.data();
    if (config_.learned_projections) {
      // ⟨W_e q, W_e k⟩ = ⟨(W_eᵀW_e) q, k⟩
      T* g = detail::thread_scratch<T, 1>(d);
      vector_map(g, static_cast<Eigen::Index>(d)).noalias() =
          gram_ * const_vector_map(q, static_cast<Eigen::Index>(d));
      q = g;
    }
    kernels::row_dots(keys.data(), n, d, static_cast<std::size_t>(keys.outerStride()), q, alpha,
                      out);
  }

  /// out_j += coef·arcosh(1 + a_j) with a_j as in the file comment (the distance d_c times
  /// coef·√c). Non-finite inputs leave NaN in `out` (diagnosed by the caller).
  void hyperbolic_part(std::span<const T> query, const matrix_cref<T>& hkeys, double coef,
                       T* out) const {
    const std::size_t n = static_cast<std::size_t>(hkeys.rows());
    const std::size_t d = dim();
    // q_h = W_h q (slot 2), then P(q_h) (slot 3).
    const T* qh = query.data();
    if (config_.learned_projections) {
      T* h = detail::thread_scratch<T, 2>(d);
      vector_map(h, static_cast<Eigen::Index>(d)).noalias() =
          w_.w_h * const_vector_map(query.data(), static_cast<Eigen::Index>(d));
      qh = h;
    }
    const T max_sq = ball_.max_norm() * ball_.max_norm();
    const T qq = kernels::dot(qh, qh, d);
    if (!std::isfinite(qq)) {
      std::fill(out, out + n, std::numeric_limits<T>::quiet_NaN());
      return;
    }
    double q_sq = static_cast<double>(qq);
    if (qq > max_sq) {
      T* p = detail::thread_scratch<T, 3>(d);
      const T f = ball_.max_norm() / std::sqrt(qq);
      for (std::size_t m = 0; m < d; ++m) p[m] = f * qh[m];
      qh = p;
      q_sq = r_ * r_;
    }
    // ‖q_h − k_j‖² (slot 4) and ‖k_j‖² (slot 5) in one pass.
    T* dist = detail::thread_scratch<T, 4>(n);
    T* ik = detail::thread_scratch<T, 5>(n);
    const std::size_t ldk = static_cast<std::size_t>(hkeys.outerStride());
    kernels::row_squared_distances(hkeys.data(), n, d, ldk, qh, dist, ik);
    const T ik_boundary = static_cast<T>(1.0 / (1.0 - c_ * r_ * r_));
    for (std::size_t j = 0; j < n; ++j) {
      const T kk = ik[j];
      if (kk > max_sq) {
        // P(k) = α·k with α = r/‖k‖: ‖P(q) − αk‖² from the difference, ‖P(k)‖ = r.
        const T alpha = ball_.max_norm() / std::sqrt(kk);
        dist[j] = detail::geo_pair_norms(qh, hkeys.data() + j * ldk, -alpha, d).zz;
        ik[j] = ik_boundary;
      } else {
        ik[j] = static_cast<T>(1.0 / (1.0 - c_ * static_cast<double>(kk)));  // NaN stays NaN
      }
    }
    // a_j = (2c/(1 − c‖q‖²))·‖q − k_j‖²/(1 − c‖k_j‖²); out_j += coef·log1p(a + √(a(a + 2))).
    const T factor = static_cast<T>(2.0 * c_ / (1.0 - c_ * q_sq));
    const T tcoef = static_cast<T>(coef);
    using B = kernels::batch<T>;
    constexpr std::size_t W = B::size;
    const B bf(factor), bc(tcoef), two(T(2));
    std::size_t j = 0;
    for (; j + W <= n; j += W) {
      const B a = bf * B::load_unaligned(dist + j) * B::load_unaligned(ik + j);
      const B t = xsimd::log1p(a + xsimd::sqrt(a * (a + two)));
      xsimd::fma(bc, t, B::load_unaligned(out + j)).store_unaligned(out + j);
    }
    for (; j < n; ++j) {
      const T a = factor * dist[j] * ik[j];
      out[j] += tcoef * std::log1p(a + std::sqrt(a * (a + T(2))));
    }
  }

  /// Scores, softmax and the weighted value sum for validated arguments.
  T compute_core(std::span<const T> query, const matrix_cref<T>& keys, const matrix_cref<T>& hkeys,
                 const matrix_cref<T>& values, std::span<T> out, std::span<const bool> key_mask,
                 std::span<T> weights) const {
    const std::size_t n = static_cast<std::size_t>(keys.rows());
    const std::size_t dv = static_cast<std::size_t>(values.cols());
    const double tau = config_.temperature;
    T* s = weights.empty() ? detail::thread_scratch<T, 0>(n) : weights.data();
    euclidean_part(
        query, keys,
        static_cast<T>(config_.euclidean_weight / (std::sqrt(static_cast<double>(dim())) * tau)),
        s);
    if (config_.hyperbolic_weight != 0.0)
      hyperbolic_part(query, hkeys, -config_.hyperbolic_weight / (std::sqrt(c_) * tau), s);
    if (config_.check_finite && !kernels::all_finite(s, n)) diagnose(query, keys, &values);
    if (!key_mask.empty()) {
      for (std::size_t j = 0; j < n; ++j)
        if (!key_mask[j]) s[j] = -std::numeric_limits<T>::infinity();
    }
    const T lse = kernels::softmax(s, n);
    const auto ldv = static_cast<std::size_t>(values.outerStride());
    if (config_.output_projection) {
      T* tmp = detail::thread_scratch<T, 6>(dv);
      kernels::weighted_row_sum(s, n, values.data(), dv, ldv, T(0), tmp);
      vector_map(out.data(), static_cast<Eigen::Index>(dv)).noalias() =
          w_.w_out * const_vector_map(tmp, static_cast<Eigen::Index>(dv));
    } else {
      kernels::weighted_row_sum(s, n, values.data(), dv, ldv, T(0), out.data());
    }
    if (config_.check_finite && !kernels::all_finite(out.data(), dv))
      diagnose(query, keys, &values);
    return lse;
  }

  [[noreturn]] static void diagnose(std::span<const T> query, const matrix_cref<T>& keys,
                                    const matrix_cref<T>* values) {
    if (values != nullptr) detail::diagnose_vector_inputs<T>(query, keys, *values);
    require_finite<T>("query", query);
    require_finite("keys", keys.data(), static_cast<std::size_t>(keys.rows()),
                   static_cast<std::size_t>(keys.cols()), keys.outerStride());
    throw non_finite_input(
        "non-finite input: a dual-space score overflowed although query and keys are finite");
  }

  dual_space_config config_;
  poincare_ball<T> ball_;
  double c_ = 1.0;  // c = −curvature, as stored by the ball (rounded to T)
  double r_ = 1.0;  // ball radius (1 − eps)/√c as stored by the ball
  dual_space_weights<T> w_;
  row_matrix<T> gram_;  // W_eᵀW_e (learned projections only)
};

}  // namespace ruvector::attention

RUVECTOR_ATTENTION_KERNEL_WARNINGS_END
// ---- end ruvector/attention/graph/dual_space.hpp ----
// ---- begin ruvector/attention/graph/edge_featured.hpp ----
/// \file graph/edge_featured.hpp
/// \brief Graph attention networks with optional edge features: GAT (Veličković et al. 2018,
/// "Graph Attention Networks") and GATv2 (Brody, Alon & Yahav 2022, "How Attentive are Graph
/// Attention Networks?"), over a `csr_graph` (graph/csr_graph.hpp).
///
/// For every head k = 0..H−1 (F = `out_dim` features per head), target node i and incoming edge
/// j → i with feature row e_ji (slot of the CSR; multi-edges are separate slots):
///
///   GAT (v1):   z_j = W_k x_j,
///               s_ij = LeakyReLU( a_tgt,kᵀ z_i + a_src,kᵀ z_j + a_edge,kᵀ W_e,k e_ji )
///                    (= LeakyReLU(a_kᵀ [z_i ‖ z_j ‖ W_e,k e_ji]) with a_k = [a_tgt ‖ a_src ‖
///                    a_edge])
///   GATv2 (v2): s_ij = a_kᵀ LeakyReLU( W_t,k x_i + W_s,k x_j + W_e,k e_ji )
///                    (= a_kᵀ LeakyReLU(W_k [x_i ‖ x_j ‖ e_ji]) with W_k = [W_t ‖ W_s ‖ W_e]),
///               z_j = W_s,k x_j
///   α_ij = softmax over the in-edges of i of s_ij (max-subtracted),
///   out_i,k = Σ_{edges j→i} α_ij z_j,
///   out_i = concat_k out_i,k  (width H·F)   or   (1/H) Σ_k out_i,k  (width F, `concat = false`).
///
/// Without edge features GATv1's score is monotone in a_srcᵀ z_j for every query i ("static"
/// attention: all nodes rank their neighbours the same way); GATv2 applies the nonlinearity before
/// the dot product with a, so the ranking may depend on i ("dynamic" attention). The Rust original
/// calls its v1 form "GATv2"; here both exist and are named as in the papers.
///
/// Conventions:
/// - No output nonlinearity, no bias, no dropout: the layer returns the aggregation above (apply
///   ELU etc. yourself). LeakyReLU(x) = x for x ≥ 0, `negative_slope`·x otherwise (default 0.2).
/// - The edge term exists only when `edge_dim > 0`; then the graph must carry edge features of
///   that width (`dimension_mismatch` otherwise). With `edge_dim == 0` graph edge features are
///   ignored. A zero feature row contributes nothing (there is no bias).
/// - `add_self_loops`: a loop i → i is added for every node that has none (existing loops and
///   multi-edges are kept, unlike PyG, which first removes loops); the added loop's feature row
///   is the mean of the node's incoming feature rows, or zeros if it has none
///   (`csr_graph::with_self_loops(self_loop_fill::mean)`).
/// - A node with no incoming edge (and no self-loop) outputs zeros (DESIGN §4: all-masked → zeros).
/// - Whole-graph `forward` projects all nodes once (Eigen GEMM in blocks of rows, O(N·d·H·F)), then
///   runs over target nodes in parallel (`parallel_for`, blocks of 64 targets), O(E·H·F)
///   (+ O(E·H·f) for v1 edge features, O(E·H·F·f) for v2 edge features: W_e e is formed per edge,
///   never stored). Temporaries per call: the projections [N, H·F] (two for v2), and with edge
///   features an [E, f] copy of them in T, gathered into CSR order. Each output row is computed
///   by one thread in a fixed order, so results are bit-identical for any thread count.
/// - Weights are Xavier-uniform from `rng(seed)` (core/rng.hpp) in a fixed order — w_source,
///   w_target (v2), w_edge (edge_dim > 0), then v1: att_target, att_source, att_edge (edge_dim >
///   0), v2: att — each matrix in row-major order with bound √(6/(fan_in + fan_out)): W [H·F, in]
///   uses fan_in = in, fan_out = H·F; the attention vectors of one head use fan_out = 1 and
///   fan_in = F·(number of v1 parts: 2, or 3 with edges) for v1, F for v2.
/// - All arithmetic is in T. Inputs must be finite (`non_finite_input` names the first bad
///   element): `forward` scans all of x; the per-node entry points check only the rows they read
///   (so one node costs O(its neighbourhood)). Edge features are checked when the graph is built;
///   weights passed to `set_weights` must be finite.
///
/// Per-node entry points (the seeds' `GraphAttention` trait) compute only what one node needs and
/// equal the matching row of `forward`:
/// - `forward_neighborhood(i, x, g)` = `forward(x, g).row(i)`.
/// - `forward_k_hop(i, x, g, k)`: attention of node i over the *set* N_k(i) of distinct nodes that
///   reach i by a directed walk of 1..k edges (`csr_graph::k_hop_in_neighbors`; i itself only via
///   a cycle, or added when `add_self_loops`), each attended once, with no edge term (edge features
///   are defined only for direct edges). With k = 1 on a graph without multi-edges and without
///   edge features it equals `forward_neighborhood`; k = 0 gives N_0 = ∅ (zeros, or only i with
///   self-loops).
/// - `forward_with_edges(q, keys, values, neighbors[, edge_attr])`: one query node x_i = q
///   attending over the slots s = 0..m−1, where slot s is the edge from key row
///   `neighbors[s]` (repeats allowed = multi-edges) with feature row `edge_attr.row(s)`. The score
///   uses the key row, the message the value row: v1 s = LeakyReLU(a_tgtᵀ W q + a_srcᵀ W k_j +
///   a_edgeᵀ W_e e_s), v2 s = aᵀ LeakyReLU(W_t q + W_s k_j + W_e e_s); message W v_j (v1) or
///   W_s v_j (v2). With keys = values = x, q = x_i, neighbors = g.in_neighbors(i) and the matching
///   feature rows this is `forward_neighborhood(i, x, g)` without self-loops: `add_self_loops` is
///   *not* applied here, the neighbour list is taken literally. Without `edge_attr` the edge term
///   is 0. No neighbours → zeros.
/// - `compute(q, keys, values)` (the library's vector API): `forward_with_edges` over every key
///   row once, without edge features.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>


RUVECTOR_ATTENTION_KERNEL_WARNINGS_BEGIN

namespace ruvector::attention {

/// \brief Which graph-attention scoring function to use.
enum class gat_version {
  v1,  ///< GAT (Veličković et al. 2018): LeakyReLU(aᵀ[Wx_i ‖ Wx_j ‖ W_e e]) — static attention.
  v2,  ///< GATv2 (Brody et al. 2022): aᵀ LeakyReLU(W_t x_i + W_s x_j + W_e e) — dynamic.
};

/// \brief Configuration of `graph_attention`.
struct graph_attention_config {
  std::size_t in_dim = 0;       ///< node feature width d
  std::size_t out_dim = 0;      ///< features per head F
  std::size_t num_heads = 1;    ///< heads H
  std::size_t edge_dim = 0;     ///< edge feature width f (0 = no edge term)
  bool concat = true;           ///< concatenate heads (width H·F) or average them (width F)
  double negative_slope = 0.2;  ///< LeakyReLU slope for negative inputs
  bool add_self_loops = false;  ///< add i → i for nodes lacking one (graph entry points only)
  gat_version version = gat_version::v2;  ///< scoring function
  std::uint64_t seed = 0;                 ///< seed of the Xavier initialisation
};

/// \brief The seeds' name for the configuration.
using edge_featured_config = graph_attention_config;

/// \brief Parameters of `graph_attention`; rows [k·F, (k+1)·F) of each W (and row k of each
/// attention matrix) belong to head k. Unused members are empty matrices.
template <attention_scalar T>
struct graph_attention_weights {
  row_matrix<T> w_source;    ///< [H·F, d]: v1 the shared W; v2 W_s (source half, also messages)
  row_matrix<T> w_target;    ///< [H·F, d]: v2 only, W_t (target half)
  row_matrix<T> w_edge;      ///< [H·F, f]: W_e (edge_dim > 0 only)
  row_matrix<T> att_target;  ///< [H, F]: v1 only, a_tgt (acts on W x_i)
  row_matrix<T> att_source;  ///< [H, F]: v1 only, a_src (acts on W x_j)
  row_matrix<T> att_edge;    ///< [H, F]: v1 with edge_dim > 0 only, a_edge (acts on W_e e)
  row_matrix<T> att;         ///< [H, F]: v2 only, a
};

namespace detail {

/// LeakyReLU(x) = x (x ≥ 0), slope·x (x < 0), written branch-free as max(x, 0) + slope·min(x, 0)
/// (exact: one of the two terms is 0): score signs are random, so a branch mispredicts often.
template <class T>
[[nodiscard]] RUVECTOR_ATTENTION_ALWAYS_INLINE T leaky_relu(T x, T slope) noexcept {
  return std::max(x, T(0)) + slope * std::min(x, T(0));
}

/// GATv2 score of one head: Σ_c att[c]·LeakyReLU(a[c] + b[c] (+ e[c])) for c < n.
template <bool HasEdge, class T, class Arch = kernels::default_arch>
[[nodiscard]] T gatv2_head_score(const T* a, const T* b, const T* e, const T* att, std::size_t n,
                                 T slope) noexcept {
  using B = kernels::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const B zero(T(0)), sl(slope);
  B acc0(T(0)), acc1(T(0));
  std::size_t c = 0;
  for (; c + 2 * W <= n; c += 2 * W) {
    B x0 = B::load_unaligned(a + c) + B::load_unaligned(b + c);
    B x1 = B::load_unaligned(a + c + W) + B::load_unaligned(b + c + W);
    if constexpr (HasEdge) {
      x0 += B::load_unaligned(e + c);
      x1 += B::load_unaligned(e + c + W);
    }
    acc0 = xsimd::fma(B::load_unaligned(att + c), xsimd::select(x0 >= zero, x0, x0 * sl), acc0);
    acc1 = xsimd::fma(B::load_unaligned(att + c + W), xsimd::select(x1 >= zero, x1, x1 * sl), acc1);
  }
  for (; c + W <= n; c += W) {
    B x0 = B::load_unaligned(a + c) + B::load_unaligned(b + c);
    if constexpr (HasEdge) x0 += B::load_unaligned(e + c);
    acc0 = xsimd::fma(B::load_unaligned(att + c), xsimd::select(x0 >= zero, x0, x0 * sl), acc0);
  }
  T result = kernels::detail::hsum(acc0 + acc1);
  for (; c < n; ++c) {
    T x = a[c] + b[c];
    if constexpr (HasEdge) x += e[c];
    result += att[c] * leaky_relu(x, slope);
  }
  return result;
}

/// y[k·F + c] += alpha[k·stride] · x[k·F + c] for heads k < H and c < F (inlined: F is small).
template <class T, class Arch = kernels::default_arch>
RUVECTOR_ATTENTION_ALWAYS_INLINE void head_axpy(const T* alpha, std::size_t stride, const T* x,
                                                T* y, std::size_t H, std::size_t F) noexcept {
  using B = kernels::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  for (std::size_t h = 0; h < H; ++h) {
    const T a = alpha[h * stride];
    const B av(a);
    const T* xh = x + h * F;
    T* yh = y + h * F;
    std::size_t c = 0;
    for (; c + W <= F; c += W) {
      xsimd::fma(av, B::load_unaligned(xh + c), B::load_unaligned(yh + c)).store_unaligned(yh + c);
    }
    for (; c < F; ++c) yh[c] += a * xh[c];
  }
}

/// Hints the cache to load `[p, p + bytes)` (no-op on compilers without the builtin).
template <class T>
RUVECTOR_ATTENTION_ALWAYS_INLINE void prefetch_bytes(const T* p, std::size_t bytes) noexcept {
#if defined(__GNUC__) || defined(__clang__)
  const char* c = reinterpret_cast<const char*>(p);
  for (std::size_t o = 0; o < bytes; o += 64) __builtin_prefetch(c + o);
#else
  (void)p;
  (void)bytes;
#endif
}

/// One attention slot (an incoming edge) as seen by the per-target kernel.
template <class T>
struct gat_slot {
  const T* key;        ///< projected key row [H·F] (v2 score), W_s x_j
  const T* value;      ///< projected value row [H·F] (the message)
  const T* key_score;  ///< v1: [H] a_src,kᵀ z_j per head
  const T* feature;    ///< raw edge features [f] in T, or nullptr (edge term 0)
};

}  // namespace detail

/// \brief GAT / GATv2 layer with optional edge features; see the file comment.
/// Forward passes are const and thread-safe; `set_weights` is not (do not call it concurrently
/// with a forward pass).
template <attention_scalar T = float>
class graph_attention {
 public:
  using value_type = T;
  using weights_type = graph_attention_weights<T>;

  /// \brief Builds the layer and Xavier-initialises its weights from `config.seed`. Throws
  /// `invalid_config` for zero dimensions/heads or a non-finite slope.
  explicit graph_attention(graph_attention_config config) : cfg_(config) {
    require_config(cfg_.in_dim > 0, "graph_attention: in_dim must be > 0");
    require_config(cfg_.out_dim > 0, "graph_attention: out_dim must be > 0");
    require_config(cfg_.num_heads > 0, "graph_attention: num_heads must be > 0");
    require_config(std::isfinite(cfg_.negative_slope),
                   "graph_attention: negative_slope must be finite");
    require_at_most("graph_attention: in_dim", cfg_.in_dim, max_dimension);
    require_at_most("graph_attention: out_dim * num_heads", hf_checked(), max_dimension);
    require_at_most("graph_attention: edge_dim", cfg_.edge_dim, max_dimension);
    slope_ = static_cast<T>(cfg_.negative_slope);
    initialise();
  }

  /// The configuration.
  [[nodiscard]] const graph_attention_config& config() const noexcept { return cfg_; }
  /// Width of one output row: H·F when concatenating heads, F when averaging.
  [[nodiscard]] std::size_t output_dim() const noexcept {
    return cfg_.concat ? cfg_.num_heads * cfg_.out_dim : cfg_.out_dim;
  }
  /// The parameters (see `graph_attention_weights` for the layout).
  [[nodiscard]] const weights_type& weights() const noexcept { return w_; }

  /// \brief Replaces the parameters; shapes are validated against the configuration and version
  /// (`dimension_mismatch` naming the member), values must be finite (`non_finite_input`).
  /// Members unused by the version must be empty.
  void set_weights(weights_type w) {
    const std::size_t H = cfg_.num_heads, F = cfg_.out_dim, HF = H * F, d = cfg_.in_dim;
    const std::size_t f = cfg_.edge_dim;
    const bool v1 = cfg_.version == gat_version::v1;
    check_shape("w_source", w.w_source, HF, d);
    check_shape("w_target", w.w_target, v1 ? 0 : HF, v1 ? 0 : d);
    check_shape("w_edge", w.w_edge, f > 0 ? HF : 0, f);
    check_shape("att_target", w.att_target, v1 ? H : 0, v1 ? F : 0);
    check_shape("att_source", w.att_source, v1 ? H : 0, v1 ? F : 0);
    check_shape("att_edge", w.att_edge, v1 && f > 0 ? H : 0, v1 && f > 0 ? F : 0);
    check_shape("att", w.att, v1 ? 0 : H, v1 ? 0 : F);
    w_ = std::move(w);
    derive();
  }

  /// \brief Whole-graph forward: row i of the result (`[N, output_dim()]`) is node i's output.
  /// `x` is `[N, in_dim]` with N = `g.num_nodes()`.
  [[nodiscard]] row_matrix<T> forward(const matrix_cref<T>& x, const csr_graph& g) const {
    check_graph_inputs(x, g);
    std::optional<csr_graph> looped;
    if (cfg_.add_self_loops) looped.emplace(g.with_self_loops(self_loop_fill::mean));
    const csr_graph& gr = looped ? *looped : g;
    const std::size_t N = gr.num_nodes(), H = cfg_.num_heads, HF = H * cfg_.out_dim;
    const bool v1 = cfg_.version == gat_version::v1;

    // Projections, parallel over blocks of rows (Eigen runs single-threaded inside).
    row_matrix<T> zs(static_cast<Eigen::Index>(N), static_cast<Eigen::Index>(HF));
    row_matrix<T> zt(static_cast<Eigen::Index>(v1 ? 0 : N), static_cast<Eigen::Index>(HF));
    row_matrix<T> ss(static_cast<Eigen::Index>(v1 ? N : 0), static_cast<Eigen::Index>(H));
    row_matrix<T> st(static_cast<Eigen::Index>(v1 ? N : 0), static_cast<Eigen::Index>(H));
    constexpr std::size_t proj_block = 256;
    parallel_for(0, (N + proj_block - 1) / proj_block, [&](std::size_t b) {
      const auto r0 = static_cast<Eigen::Index>(b * proj_block);
      const auto rn = static_cast<Eigen::Index>(std::min(proj_block, N - b * proj_block));
      zs.middleRows(r0, rn).noalias() = x.middleRows(r0, rn) * w_.w_source.transpose();
      if (v1) {
        for (Eigen::Index r = r0; r < r0 + rn; ++r) {
          for (std::size_t h = 0; h < H; ++h) {
            ss(r, static_cast<Eigen::Index>(h)) = head_dot(w_.att_source, h, zs.row(r).data());
            st(r, static_cast<Eigen::Index>(h)) = head_dot(w_.att_target, h, zs.row(r).data());
          }
        }
      } else {
        zt.middleRows(r0, rn).noalias() = x.middleRows(r0, rn) * w_.w_target.transpose();
      }
    });

    // Edge features gathered into CSR slot order (and cast to T) once, so the attention loop
    // reads them sequentially instead of through edge_ids (a random gather per edge).
    const bool use_edges = cfg_.edge_dim > 0;
    const std::size_t f = cfg_.edge_dim, E = gr.num_edges();
    row_matrix<T> feat_csr(static_cast<Eigen::Index>(use_edges ? E : 0),
                           static_cast<Eigen::Index>(f));
    if (use_edges) {
      const auto slot_ids = gr.edge_ids();
      const double* src = gr.edge_features().data();
      constexpr std::size_t gather_block = 4096;
      parallel_for(0, (E + gather_block - 1) / gather_block, [&](std::size_t b) {
        const std::size_t end = std::min(E, (b + 1) * gather_block);
        for (std::size_t s = b * gather_block; s < end; ++s) {
          const double* row = src + slot_ids[s] * f;
          T* dst = feat_csr.data() + s * f;
          for (std::size_t c = 0; c < f; ++c) dst[c] = static_cast<T>(row[c]);
        }
      });
    }
    const T* feat = feat_csr.data();

    row_matrix<T> out =
        row_matrix<T>::Zero(static_cast<Eigen::Index>(N), static_cast<Eigen::Index>(output_dim()));
    const auto offsets = gr.offsets();
    const auto sources = gr.sources();
    constexpr std::size_t node_block = 64;
    parallel_for(0, (N + node_block - 1) / node_block, [&](std::size_t b) {
      const std::size_t end = std::min(N, (b + 1) * node_block);
      // Gathering the rows of random neighbours is latency-bound: prefetch the rows the next
      // target will read while this one is processed.
      const auto prefetch = [&](std::size_t node) noexcept {
        if (node >= N) return;
        for (std::size_t s = offsets[node]; s < offsets[node + 1]; ++s) {
          const auto j = static_cast<Eigen::Index>(sources[s]);
          detail::prefetch_bytes(zs.row(j).data(), HF * sizeof(T));
          if (v1) detail::prefetch_bytes(ss.row(j).data(), H * sizeof(T));
        }
      };
      prefetch(b * node_block);
      for (std::size_t i = b * node_block; i < end; ++i) {
        prefetch(i + 1);
        const std::size_t begin = offsets[i], m = offsets[i + 1] - begin;
        const auto slot = [&](std::size_t s) noexcept {
          const auto j = static_cast<Eigen::Index>(sources[begin + s]);
          return detail::gat_slot<T>{zs.row(j).data(), zs.row(j).data(),
                                     v1 ? ss.row(j).data() : nullptr,
                                     use_edges ? feat + (begin + s) * f : nullptr};
        };
        const T* target = v1 ? st.row(static_cast<Eigen::Index>(i)).data()
                             : zt.row(static_cast<Eigen::Index>(i)).data();
        attend(target, m, slot, out.row(static_cast<Eigen::Index>(i)).data());
      }
    });
    return out;
  }

  /// \brief Node `node`'s output (= `forward(x, g).row(node)`), computing only its neighbourhood.
  [[nodiscard]] std::vector<T> forward_neighborhood(std::size_t node, const matrix_cref<T>& x,
                                                    const csr_graph& g) const {
    check_graph_inputs(x, g, /*needs_edge_features=*/true, /*scan_x=*/false);
    check_node(node, g.num_nodes());
    check_row_finite("graph_attention: x", x, node);
    std::vector<std::size_t> nbrs(g.in_neighbors(node).begin(), g.in_neighbors(node).end());
    const auto ids = g.in_edge_ids(node);
    const bool use_edges = cfg_.edge_dim > 0;
    const std::size_t f = cfg_.edge_dim;
    row_matrix<T> feats(static_cast<Eigen::Index>(use_edges ? nbrs.size() : 0),
                        static_cast<Eigen::Index>(f));
    for (std::size_t s = 0; use_edges && s < nbrs.size(); ++s) {
      feats.row(static_cast<Eigen::Index>(s)) =
          g.edge_features().row(static_cast<Eigen::Index>(ids[s])).template cast<T>();
    }
    if (cfg_.add_self_loops && std::find(nbrs.begin(), nbrs.end(), node) == nbrs.end()) {
      // The added loop's features: mean of the incoming rows, zeros without any (with_self_loops).
      nbrs.push_back(node);
      if (use_edges) {
        feats.conservativeResize(feats.rows() + 1, Eigen::NoChange);
        auto row = feats.row(feats.rows() - 1);
        row.setZero();
        if (!ids.empty()) {
          Eigen::Matrix<double, 1, Eigen::Dynamic> mean =
              Eigen::Matrix<double, 1, Eigen::Dynamic>::Zero(static_cast<Eigen::Index>(f));
          for (const std::size_t e : ids)
            mean += g.edge_features().row(static_cast<Eigen::Index>(e));
          mean /= static_cast<double>(ids.size());
          row = mean.template cast<T>();
        }
      }
    }
    std::vector<T> out(output_dim());
    const T* fp = use_edges ? feats.data() : nullptr;
    attend_gathered(x.row(static_cast<Eigen::Index>(node)).data(), x, x, nbrs, fp, out.data(),
                    "graph_attention: x");
    return out;
  }

  /// \brief Seeds' shape: builds the CSR from `edge_index` (O(N + E) per call), then as above.
  [[nodiscard]] std::vector<T> forward_neighborhood(std::size_t node, const matrix_cref<T>& x,
                                                    std::span<const edge> edge_index) const {
    return forward_neighborhood(
        node, x, csr_graph::from_edges(static_cast<std::size_t>(x.rows()), edge_index));
  }

  /// \brief Attention of `node` over its k-hop in-neighbourhood N_k (see the file comment): each
  /// node of N_k once, no edge term (so `g` needs no edge features), plus `node` itself when
  /// `add_self_loops`.
  [[nodiscard]] std::vector<T> forward_k_hop(std::size_t node, const matrix_cref<T>& x,
                                             const csr_graph& g, std::size_t k) const {
    check_graph_inputs(x, g, /*needs_edge_features=*/false, /*scan_x=*/false);
    check_node(node, g.num_nodes());
    check_row_finite("graph_attention: x", x, node);
    std::vector<std::size_t> nbrs = g.k_hop_in_neighbors(node, k);
    if (cfg_.add_self_loops && !std::binary_search(nbrs.begin(), nbrs.end(), node)) {
      nbrs.insert(std::lower_bound(nbrs.begin(), nbrs.end(), node), node);
    }
    std::vector<T> out(output_dim());
    attend_gathered(x.row(static_cast<Eigen::Index>(node)).data(), x, x, nbrs, nullptr, out.data(),
                    "graph_attention: x");
    return out;
  }

  /// \brief Seeds' shape: builds the CSR from `edge_index` (O(N + E) per call), then as above.
  [[nodiscard]] std::vector<T> forward_k_hop(std::size_t node, const matrix_cref<T>& x,
                                             std::span<const edge> edge_index,
                                             std::size_t k) const {
    return forward_k_hop(node, x,
                         csr_graph::from_edges(static_cast<std::size_t>(x.rows()), edge_index), k);
  }

  /// \brief One query node over explicit neighbour slots with edge features `edge_attr`
  /// (`[neighbors.size(), edge_dim]`, row s = slot s); see the file comment.
  [[nodiscard]] std::vector<T> forward_with_edges(std::span<const T> query,
                                                  const matrix_cref<T>& keys,
                                                  const matrix_cref<T>& values,
                                                  std::span<const std::size_t> neighbors,
                                                  const matrix_cref<T>& edge_attr) const {
    check_query_inputs(query, keys, values, neighbors);
    require_dimension("forward_with_edges: edge_attr.rows() (one row per neighbour)",
                      static_cast<std::size_t>(edge_attr.rows()), neighbors.size());
    require_dimension("forward_with_edges: edge_attr.cols() (edge_dim)",
                      static_cast<std::size_t>(edge_attr.cols()), cfg_.edge_dim);
    require_finite("forward_with_edges: edge_attr", edge_attr.data(),
                   static_cast<std::size_t>(edge_attr.rows()),
                   static_cast<std::size_t>(edge_attr.cols()), edge_attr.outerStride());
    std::vector<T> out(output_dim());
    if (cfg_.edge_dim == 0) {
      attend_gathered(query.data(), keys, values, neighbors, nullptr, out.data());
    } else {
      const row_matrix<T> feats = edge_attr;  // contiguous copy
      attend_gathered(query.data(), keys, values, neighbors, feats.data(), out.data());
    }
    return out;
  }

  /// \brief As above without edge features (edge term 0).
  [[nodiscard]] std::vector<T> forward_with_edges(std::span<const T> query,
                                                  const matrix_cref<T>& keys,
                                                  const matrix_cref<T>& values,
                                                  std::span<const std::size_t> neighbors) const {
    check_query_inputs(query, keys, values, neighbors);
    std::vector<T> out(output_dim());
    attend_gathered(query.data(), keys, values, neighbors, nullptr, out.data());
    return out;
  }

  /// \brief The library's vector API: `query` attends over every key row once, no edge features.
  /// Throws `invalid_argument` for an empty key set.
  [[nodiscard]] std::vector<T> compute(std::span<const T> query, const matrix_cref<T>& keys,
                                       const matrix_cref<T>& values) const {
    const auto n = static_cast<std::size_t>(keys.rows());
    require_non_empty("graph_attention::compute: keys", n);
    std::vector<std::size_t> all(n);
    for (std::size_t j = 0; j < n; ++j) all[j] = j;
    return forward_with_edges(query, keys, values, all);
  }

 private:
  [[nodiscard]] std::size_t hf_checked() const {
    require_at_most("graph_attention: num_heads", cfg_.num_heads, max_dimension);
    require_at_most("graph_attention: out_dim", cfg_.out_dim, max_dimension);
    return cfg_.num_heads * cfg_.out_dim;
  }

  static void check_shape(const char* name, const row_matrix<T>& m, std::size_t rows,
                          std::size_t cols) {
    std::string what = "graph_attention::set_weights: ";
    what.append(name);
    require_dimension(std::string(what).append(".rows()"), static_cast<std::size_t>(m.rows()),
                      rows);
    if (rows > 0) {
      require_dimension(std::string(what).append(".cols()"), static_cast<std::size_t>(m.cols()),
                        cols);
    }
    require_finite(what, m.data(), static_cast<std::size_t>(m.rows()),
                   static_cast<std::size_t>(m.cols()), static_cast<std::ptrdiff_t>(m.cols()));
  }

  void check_node(std::size_t node, std::size_t n) const {
    if (node >= n) {
      std::string msg = "invalid argument: graph_attention: node ";
      msg.append(std::to_string(node))
          .append(" is out of range (num_nodes is ")
          .append(std::to_string(n))
          .append(")");
      throw invalid_argument(msg);
    }
  }

  // `scan_x = false` (per-node paths): only the rows actually used are checked, by
  // `attend_gathered`, so one node costs O(its neighbourhood), not O(N·d).
  void check_graph_inputs(const matrix_cref<T>& x, const csr_graph& g,
                          bool needs_edge_features = true, bool scan_x = true) const {
    require_dimension("graph_attention: x.rows() (must equal g.num_nodes())",
                      static_cast<std::size_t>(x.rows()), g.num_nodes());
    require_dimension("graph_attention: x.cols() (in_dim)", static_cast<std::size_t>(x.cols()),
                      cfg_.in_dim);
    if (needs_edge_features && cfg_.edge_dim > 0) {
      require_dimension(
          "graph_attention: g.edge_dim() (config edge_dim; build the graph with "
          "edge features)",
          g.edge_dim(), cfg_.edge_dim);
    }
    if (scan_x) {
      require_finite("graph_attention: x", x.data(), static_cast<std::size_t>(x.rows()),
                     static_cast<std::size_t>(x.cols()), x.outerStride());
    }
  }

  /// Throws `non_finite_input` naming `what[row][col]` for the first NaN/Inf of row `row`.
  static void check_row_finite(std::string_view what, const matrix_cref<T>& m, std::size_t row) {
    const T* p = m.row(static_cast<Eigen::Index>(row)).data();
    for (std::size_t c = 0; c < static_cast<std::size_t>(m.cols()); ++c) {
      if (!std::isfinite(p[c])) detail::throw_non_finite(what, row, c, p[c]);
    }
  }

  void check_query_inputs(std::span<const T> query, const matrix_cref<T>& keys,
                          const matrix_cref<T>& values,
                          std::span<const std::size_t> neighbors) const {
    require_dimension("forward_with_edges: query.size() (in_dim)", query.size(), cfg_.in_dim);
    require_dimension("forward_with_edges: keys.cols() (in_dim)",
                      static_cast<std::size_t>(keys.cols()), cfg_.in_dim);
    require_dimension("forward_with_edges: values.cols() (in_dim)",
                      static_cast<std::size_t>(values.cols()), cfg_.in_dim);
    require_dimension("forward_with_edges: values.rows() (must equal keys.rows())",
                      static_cast<std::size_t>(values.rows()),
                      static_cast<std::size_t>(keys.rows()));
    for (std::size_t s = 0; s < neighbors.size(); ++s) {
      if (neighbors[s] >= static_cast<std::size_t>(keys.rows())) {
        std::string msg = "invalid argument: forward_with_edges: neighbors[";
        msg.append(std::to_string(s))
            .append("] = ")
            .append(std::to_string(neighbors[s]))
            .append(" is out of range, expected < keys.rows() = ")
            .append(std::to_string(keys.rows()));
        throw invalid_argument(msg);
      }
    }
    require_finite("forward_with_edges: query", query);
    // keys / values rows are checked as they are gathered (only the referenced rows).
  }

  /// a_k · z[k·F .. (k+1)·F) for head k of a [H, F] attention matrix.
  [[nodiscard]] T head_dot(const row_matrix<T>& a, std::size_t h, const T* z) const noexcept {
    const std::size_t F = cfg_.out_dim;
    return kernels::dot(a.row(static_cast<Eigen::Index>(h)).data(), z + h * F, F);
  }

  /// Per-node path: projects the query and the gathered key/value rows, then `attend`.
  /// `feats` is a contiguous [m, edge_dim] block in slot order, or nullptr.
  /// Every referenced key/value row must be finite (`non_finite_input` names it).
  void attend_gathered(const T* query, const matrix_cref<T>& keys, const matrix_cref<T>& values,
                       std::span<const std::size_t> nbrs, const T* feats, T* out,
                       std::string_view key_name = "forward_with_edges: keys") const {
    const std::size_t m = nbrs.size(), H = cfg_.num_heads, HF = H * cfg_.out_dim;
    const std::size_t d = cfg_.in_dim, f = cfg_.edge_dim;
    const bool v1 = cfg_.version == gat_version::v1;
    const bool shared = keys.data() == values.data() && keys.outerStride() == values.outerStride();
    row_matrix<T> kx(static_cast<Eigen::Index>(m), static_cast<Eigen::Index>(d));
    row_matrix<T> vx(static_cast<Eigen::Index>(shared ? 0 : m), static_cast<Eigen::Index>(d));
    for (std::size_t s = 0; s < m; ++s) {
      const auto j = static_cast<Eigen::Index>(nbrs[s]);
      check_row_finite(key_name, keys, nbrs[s]);
      kx.row(static_cast<Eigen::Index>(s)) = keys.row(j);
      if (!shared) {
        check_row_finite("forward_with_edges: values", values, nbrs[s]);
        vx.row(static_cast<Eigen::Index>(s)) = values.row(j);
      }
    }
    const row_matrix<T> zk = kx * w_.w_source.transpose();
    row_matrix<T> zv;
    if (!shared) zv = vx * w_.w_source.transpose();
    const row_matrix<T>& zval = shared ? zk : zv;
    const auto q =
        Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>>(query, static_cast<Eigen::Index>(d));
    Eigen::Matrix<T, 1, Eigen::Dynamic> target;
    row_matrix<T> ks(static_cast<Eigen::Index>(v1 ? m : 0), static_cast<Eigen::Index>(H));
    if (v1) {
      const Eigen::Matrix<T, 1, Eigen::Dynamic> zq = q * w_.w_source.transpose();
      target.resize(static_cast<Eigen::Index>(H));
      for (std::size_t h = 0; h < H; ++h)
        target(static_cast<Eigen::Index>(h)) = head_dot(w_.att_target, h, zq.data());
      for (std::size_t s = 0; s < m; ++s) {
        for (std::size_t h = 0; h < H; ++h) {
          ks(static_cast<Eigen::Index>(s), static_cast<Eigen::Index>(h)) =
              head_dot(w_.att_source, h, zk.row(static_cast<Eigen::Index>(s)).data());
        }
      }
    } else {
      target = q * w_.w_target.transpose();
    }
    (void)HF;
    const auto slot = [&](std::size_t s) noexcept {
      const auto r = static_cast<Eigen::Index>(s);
      return detail::gat_slot<T>{zk.row(r).data(), zval.row(r).data(),
                                 v1 ? ks.row(r).data() : nullptr,
                                 feats != nullptr ? feats + s * f : nullptr};
    };
    attend(target.data(), m, slot, out);
  }

  /// The per-target kernel. `target`: v1 [H] a_tgt,kᵀ z_i; v2 [H·F] W_t x_i. Writes
  /// `output_dim()` values to `out` (zeros when m == 0).
  template <class Slot>
  void attend(const T* target, std::size_t m, const Slot& slot, T* out) const noexcept {
    const std::size_t H = cfg_.num_heads, F = cfg_.out_dim, HF = H * F, f = cfg_.edge_dim;
    const std::size_t od = output_dim();
    for (std::size_t c = 0; c < od; ++c) out[c] = T(0);
    if (m == 0) return;
    const bool v1 = cfg_.version == gat_version::v1;
    // scores[h·m + s]; head accumulators (mean mode); W_e e for v2 with edges.
    T* scores = detail::thread_scratch<T, 0>(H * m);
    T* acc = cfg_.concat ? out : detail::thread_scratch<T, 1>(HF);
    T* ze = detail::thread_scratch<T, 2>(HF);
    if (!cfg_.concat) std::fill(acc, acc + HF, T(0));
    for (std::size_t s = 0; s < m; ++s) {
      const detail::gat_slot<T> sl = slot(s);
      if (v1) {
        // s_ij,k = LeakyReLU(a_tgtᵀ z_i + a_srcᵀ z_j + (a_edgeᵀ W_e) e)
        for (std::size_t h = 0; h < H; ++h) {
          T v = target[h] + sl.key_score[h];
          if (sl.feature != nullptr) {
            v += kernels::dot(u_edge_.row(static_cast<Eigen::Index>(h)).data(), sl.feature, f);
          }
          scores[h * m + s] = detail::leaky_relu(v, slope_);
        }
      } else {
        // s_ij,k = a_kᵀ LeakyReLU(W_t x_i + W_s x_j + W_e e)
        if (sl.feature != nullptr) {
          // W_e e as Σ_c e[c]·(column c of W_e): f contiguous AXPYs of length H·F.
          std::fill(ze, ze + HF, T(0));
          for (std::size_t c = 0; c < f; ++c) {
            kernels::axpy(sl.feature[c], w_edge_t_.row(static_cast<Eigen::Index>(c)).data(), ze,
                          HF);
          }
          for (std::size_t h = 0; h < H; ++h) {
            scores[h * m + s] = detail::gatv2_head_score<true, T>(
                target + h * F, sl.key + h * F, ze + h * F,
                w_.att.row(static_cast<Eigen::Index>(h)).data(), F, slope_);
          }
        } else {
          for (std::size_t h = 0; h < H; ++h) {
            scores[h * m + s] = detail::gatv2_head_score<false, T>(
                target + h * F, sl.key + h * F, nullptr,
                w_.att.row(static_cast<Eigen::Index>(h)).data(), F, slope_);
          }
        }
      }
    }
    for (std::size_t h = 0; h < H; ++h) kernels::softmax(scores + h * m, m);
    // out_k += α_k,s · z_s[k·F, (k+1)·F) for every slot and head.
    for (std::size_t s = 0; s < m; ++s) {
      detail::head_axpy<T>(scores + s, m, slot(s).value, acc, H, F);
    }
    if (!cfg_.concat) {
      const T inv = T(1) / static_cast<T>(H);
      for (std::size_t c = 0; c < F; ++c) {
        T sum = T(0);
        for (std::size_t h = 0; h < H; ++h) sum += acc[h * F + c];
        out[c] = sum * inv;
      }
    }
  }

  void initialise() {
    rng gen(cfg_.seed);
    const std::size_t H = cfg_.num_heads, F = cfg_.out_dim, HF = H * F, d = cfg_.in_dim;
    const std::size_t f = cfg_.edge_dim;
    const bool v1 = cfg_.version == gat_version::v1;
    weights_type w;
    w.w_source = xavier(gen, HF, d, d, HF);
    if (!v1) w.w_target = xavier(gen, HF, d, d, HF);
    if (f > 0) w.w_edge = xavier(gen, HF, f, f, HF);
    if (v1) {
      const std::size_t fan_in = F * (f > 0 ? 3 : 2);
      w.att_target = xavier(gen, H, F, fan_in, 1);
      w.att_source = xavier(gen, H, F, fan_in, 1);
      if (f > 0) w.att_edge = xavier(gen, H, F, fan_in, 1);
    } else {
      w.att = xavier(gen, H, F, F, 1);
    }
    w_ = std::move(w);
    derive();
  }

  /// v1 edge term folded per head: u_k = W_e,kᵀ a_edge,k, so a_edge,kᵀ W_e,k e = u_k · e.
  /// v2: W_eᵀ stored row-major ([f, H·F]) so W_e e is f contiguous AXPYs.
  void derive() {
    const std::size_t H = cfg_.num_heads, F = cfg_.out_dim, f = cfg_.edge_dim;
    w_edge_t_.resize(0, 0);
    if (cfg_.version == gat_version::v2 && f > 0) w_edge_t_ = w_.w_edge.transpose();
    if (cfg_.version != gat_version::v1 || f == 0) {
      u_edge_.resize(0, 0);
      return;
    }
    u_edge_.resize(static_cast<Eigen::Index>(H), static_cast<Eigen::Index>(f));
    for (std::size_t h = 0; h < H; ++h) {
      u_edge_.row(static_cast<Eigen::Index>(h)) =
          w_.att_edge.row(static_cast<Eigen::Index>(h)) *
          w_.w_edge.middleRows(static_cast<Eigen::Index>(h * F), static_cast<Eigen::Index>(F));
    }
  }

  static row_matrix<T> xavier(rng& gen, std::size_t rows, std::size_t cols, std::size_t fan_in,
                              std::size_t fan_out) {
    const double a = std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
    row_matrix<T> w(static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(cols));
    for (Eigen::Index i = 0; i < w.size(); ++i) w.data()[i] = gen.uniform<T>(T(-a), T(a));
    return w;
  }

  graph_attention_config cfg_;
  T slope_ = T(0.2);
  weights_type w_;
  row_matrix<T> u_edge_;    // [H, f], v1 with edges only
  row_matrix<T> w_edge_t_;  // [f, H·F], v2 with edges only
};

/// \brief The seeds' name (`EdgeFeaturedAttention`): the same layer. Note the seeds' defaults
/// were `add_self_loops = true` and the v1 scoring; here the defaults are false and v2.
template <attention_scalar T = float>
using edge_featured_attention = graph_attention<T>;

}  // namespace ruvector::attention

RUVECTOR_ATTENTION_KERNEL_WARNINGS_END
// ---- end ruvector/attention/graph/edge_featured.hpp ----
// ---- begin ruvector/attention/graph/rope.hpp ----
/// \file graph/rope.hpp
/// \brief Rotary position embeddings (RoPE; Su et al. 2021, "RoFormer: Enhanced Transformer with
/// Rotary Position Embedding") with positions taken from a graph, and attention over them (the
/// seeds' `GraphRoPE`).
///
/// **Rotation.** A vector x ∈ R^d (d even) is split into d/2 coordinate pairs; pair i is rotated
/// by the angle φ_i(p) = (p/s)·θ_i, θ_i = base^(−2i/d), i = 0 .. d/2 − 1:
///
///     (x'_a, x'_b) = (x_a cos φ_i − x_b sin φ_i,  x_a sin φ_i + x_b cos φ_i)
///
/// where (a, b) = (2i, 2i + 1) for `rope_pairing::interleaved` (RoFormer, the default) and
/// (i, i + d/2) for `rope_pairing::half` (the GPT-NeoX/LLaMA "rotate-half" layout the Rust crate
/// used). s is `scaling_factor` (position interpolation: s > 1 compresses positions). R(p) is
/// orthogonal, R(p)ᵀ = R(−p) and R(p)R(r) = R(p + r), so
///
///     ⟨R(p)q, R(r)k⟩ = ⟨q, R(r − p)k⟩
///
/// depends on the positions only through r − p (the relative-position property).
///
/// **Attention** (`graph_rope_attention`): s_j = scale·⟨R(p_q)q, R(p_j)k_j⟩ (scale = 1/√d by
/// default), w = softmax(s), out = Σ_j w_j v_j. The score is evaluated as
/// ⟨k_j, R(p_j)ᵀ R(p_q) q⟩ = Σ_m k_j[m]·(C[m]·q̃[m] + S[m]·q̃⊥[m]) with q̃ = R(p_q)q, so the keys
/// are never rotated or copied: one fused pass per key over k_j and the cached cos/sin row of p_j.
///
/// **Graph positions.** Positions are real numbers. They can be given per node, or come from the
/// (undirected) hop distance to a root node (`csr_graph::hop_distances`) through the bucketing
///
///     bucket(δ) = min(M − 1, δ)                          for δ ≤ E
///     bucket(δ) = min(M − 1, E + ⌈log₂(δ / E)⌉)          for δ > E
///
/// with E = `exact_distances` (default 8) and M = `max_position` (default 512): hop counts up to E
/// are kept exactly, beyond that each doubling of the distance adds one position (δ ∈ (E, 2E] →
/// E + 1, (2E, 4E] → E + 2, ...), and every bucket is clamped to M − 1. The map is monotone
/// non-decreasing and never skips a value below its clamp. Unreachable nodes (δ = SIZE_MAX) get
/// min(M − 1, E + ⌈log₂(SIZE_MAX/E)⌉), the largest bucket any distance gets (69 for E = 8 on a
/// 64-bit platform); mask them if they should not be attended to.
///
/// Differences from the Rust crate (all deliberate):
/// - The seeds' bucketing was 8 + min(⌈log₂ δ⌉, M − 8) for δ > 8, which jumps from 8 to 12 at
///   δ = 9 (positions 9–11 are never used) and clamps at M rather than at the table's last row
///   M − 1. Here the log part starts right after the exact range.
/// - Odd dimensions are rejected (`invalid_config`); the seeds left the last coordinate at 0.
/// - Positions are not clamped when rotating: the seeds clamped every position to M − 1 (the
///   size of their table), so all keys past it became indistinguishable. Here the cached table
///   only accelerates integer positions in [0, M); any other real position is computed on the
///   fly with the same double-precision formula, so both paths give bit-identical results.
/// - `compute_with_mask` keeps every key's position; the seeds filtered the keys first and then
///   renumbered them 0..n'−1, so masking a key shifted the positions of the keys after it.
///
/// Numerical conventions: θ_i and the angles (p/s)·θ_i and their cos/sin are evaluated in double
/// (sin/cos by xsimd's vectorised `sincos`, within 1 ulp of std::sin/cos) and rounded to T once
/// (the cache stores those rounded values: 2·M·d·sizeof(T) bytes, e.g. 1 MiB for d = 256, M = 512,
/// float; `cache_table = false` disables it). The rotation itself and the scores are computed in T;
/// a rotation preserves norms to a few ε_T. Positions must be finite
/// (`non_finite_input`).

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <vector>


RUVECTOR_ATTENTION_KERNEL_WARNINGS_BEGIN

namespace ruvector::attention {

/// \brief Which coordinates form the rotated pairs.
enum class rope_pairing {
  interleaved,  ///< (x_{2i}, x_{2i+1}) — RoFormer (Su et al. 2021), the default
  half,         ///< (x_i, x_{i+d/2}) — GPT-NeoX / LLaMA "rotate half", the Rust crate's layout
};

/// \brief Configuration of `graph_rope` (the seeds' `RoPEConfig`, plus the bucketing).
struct graph_rope_config {
  std::size_t dim = 256;        ///< d: vector dimension; must be even and > 0
  double base = 10000.0;        ///< θ_i = base^(−2i/d); finite and > 1
  double scaling_factor = 1.0;  ///< s: angles use p/s; finite and > 0
  rope_pairing pairing = rope_pairing::interleaved;
  std::size_t exact_distances = 8;  ///< E: hop distances ≤ E are kept exactly; ≥ 1
  std::size_t max_position = 512;  ///< M: buckets are clamped to M − 1; rows of the cos/sin cache
  bool cache_table = true;         ///< cache cos/sin of the integer positions 0 .. M − 1
};

template <attention_scalar T>
class graph_rope_attention;

namespace detail {

/// Σ_m k[m]·(c[m]·a[m] + s[m]·b[m]): the RoPE score ⟨k, R(r)ᵀ q̃⟩ with a = q̃, b = q̃⊥ and (c, s)
/// the expanded cos/sin row of position r. Two accumulators per step.
template <class T, class Arch = kernels::default_arch>
[[nodiscard]] T rope_rotated_dot(const T* k, const T* c, const T* s, const T* a, const T* b,
                                 std::size_t d) noexcept {
  using B = kernels::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  std::size_t m = 0;
  T result = T(0);
  if (d >= W) {
    B acc0(T(0)), acc1(T(0));
    for (; m + 2 * W <= d; m += 2 * W) {
      const B w0 = xsimd::fma(B::load_unaligned(c + m), B::load_unaligned(a + m),
                              B::load_unaligned(s + m) * B::load_unaligned(b + m));
      const B w1 = xsimd::fma(B::load_unaligned(c + m + W), B::load_unaligned(a + m + W),
                              B::load_unaligned(s + m + W) * B::load_unaligned(b + m + W));
      acc0 = xsimd::fma(B::load_unaligned(k + m), w0, acc0);
      acc1 = xsimd::fma(B::load_unaligned(k + m + W), w1, acc1);
    }
    for (; m + W <= d; m += W) {
      const B w0 = xsimd::fma(B::load_unaligned(c + m), B::load_unaligned(a + m),
                              B::load_unaligned(s + m) * B::load_unaligned(b + m));
      acc0 = xsimd::fma(B::load_unaligned(k + m), w0, acc0);
    }
    result = kernels::detail::hsum(acc0 + acc1);
  }
  for (; m < d; ++m) result += k[m] * (c[m] * a[m] + s[m] * b[m]);
  return result;
}

/// out[m] = c[m]·x[m] + sign·s[m]·xp[m] (element-wise; out may be exactly x).
template <class T, class Arch = kernels::default_arch>
void rope_combine(const T* x, const T* xp, const T* c, const T* s, T sign, T* out,
                  std::size_t d) noexcept {
  using B = kernels::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const B sb(sign);
  std::size_t m = 0;
  for (; m + W <= d; m += W) {
    xsimd::fma(B::load_unaligned(c + m), B::load_unaligned(x + m),
               sb * B::load_unaligned(s + m) * B::load_unaligned(xp + m))
        .store_unaligned(out + m);
  }
  for (; m < d; ++m) out[m] = c[m] * x[m] + sign * s[m] * xp[m];
}

}  // namespace detail

/// \brief Rotary position embedding with graph-derived positions; see the file comment.
/// Immutable after construction and safe to share across threads.
template <attention_scalar T>
class graph_rope {
 public:
  using value_type = T;

  /// Builds the frequencies (and the cos/sin cache unless `cache_table` is false). Throws
  /// `invalid_config` on an odd or zero dim, base ≤ 1, scaling_factor ≤ 0, exact_distances = 0
  /// or max_position = 0; `input_too_large` when the cache would exceed 2^28 values.
  explicit graph_rope(const graph_rope_config& config) : config_(validated(config)) {
    const std::size_t d = config_.dim;
    const std::size_t h = d / 2;
    theta_.resize(h);
    for (std::size_t i = 0; i < h; ++i)
      theta_[i] = std::pow(config_.base, -2.0 * static_cast<double>(i) / static_cast<double>(d));
    if (config_.cache_table) {
      const std::size_t rows = config_.max_position;
      cos_.resize(rows * d);
      sin_.resize(rows * d);
      for (std::size_t p = 0; p < rows; ++p)
        fill_row(static_cast<double>(p), cos_.data() + p * d, sin_.data() + p * d);
    }
  }

  /// Convenience: `graph_rope(dim)` with the other fields at their defaults.
  explicit graph_rope(std::size_t dim) : graph_rope(graph_rope_config{.dim = dim}) {}

  [[nodiscard]] const graph_rope_config& config() const noexcept { return config_; }
  [[nodiscard]] std::size_t dim() const noexcept { return config_.dim; }
  /// θ_i = base^(−2i/d), i < d/2 (double).
  [[nodiscard]] std::span<const double> frequencies() const noexcept { return theta_; }

  /// \brief out = R(position)·x. `out` may be exactly `x` (in-place), but must not otherwise
  /// overlap it. Throws `dimension_mismatch` on sizes ≠ dim, `non_finite_input` on a non-finite
  /// position.
  void rotate(std::span<const T> x, double position, std::span<T> out) const {
    require_dimension("graph_rope::rotate: x.size()", x.size(), dim());
    require_dimension("graph_rope::rotate: out.size()", out.size(), dim());
    if (!std::isfinite(position))
      detail::throw_non_finite("graph_rope::rotate: position", 0, position);
    rotate_unchecked(x.data(), position, out.data(), T(-1));
  }

  /// \brief R(position)·x as a new vector.
  [[nodiscard]] std::vector<T> rotate(std::span<const T> x, double position) const {
    std::vector<T> out(dim());
    rotate(x, position, out);
    return out;
  }

  /// \brief Row i of the result is R(positions[i])·x.row(i). Throws `dimension_mismatch` unless
  /// x.cols() == dim and positions.size() == x.rows(); `non_finite_input` naming the first
  /// non-finite position.
  [[nodiscard]] row_matrix<T> rotate_rows(const matrix_cref<T>& x,
                                          std::span<const double> positions) const {
    const auto n = static_cast<std::size_t>(x.rows());
    require_dimension("graph_rope::rotate_rows: x.cols()", static_cast<std::size_t>(x.cols()),
                      dim());
    require_dimension("graph_rope::rotate_rows: positions.size() (must equal x.rows())",
                      positions.size(), n);
    require_finite("graph_rope::rotate_rows: positions", positions);
    row_matrix<T> out(x.rows(), x.cols());
    for (std::size_t i = 0; i < n; ++i) {
      const auto r = static_cast<Eigen::Index>(i);
      rotate_unchecked(x.row(r).data(), positions[i], out.row(r).data(), T(-1));
    }
    return out;
  }

  /// \brief The position of a hop distance δ (see the file comment): δ for δ ≤ E, else
  /// E + ⌈log₂(δ/E)⌉, clamped to max_position − 1.
  [[nodiscard]] std::size_t bucket(std::size_t distance) const noexcept {
    const std::size_t e = config_.exact_distances;
    std::size_t b = distance;
    if (distance > e) {
      // ⌈log₂(δ/E)⌉ = ⌈log₂⌈δ/E⌉⌉ = bit_width(⌈δ/E⌉ − 1) for ⌈δ/E⌉ ≥ 2.
      const std::size_t ratio = (distance - 1) / e + 1;
      b = e + static_cast<std::size_t>(std::bit_width(ratio - 1));
    }
    return std::min(b, config_.max_position - 1);
  }

  /// \brief bucket(distances[i]) for every i, as positions.
  [[nodiscard]] std::vector<double> bucket_positions(std::span<const std::size_t> distances) const {
    std::vector<double> out(distances.size());
    for (std::size_t i = 0; i < distances.size(); ++i)
      out[i] = static_cast<double>(bucket(distances[i]));
    return out;
  }

  /// \brief Positions of every node of `graph`: the bucketed undirected hop distance from `root`
  /// (`csr_graph::hop_distances`; unreachable nodes get bucket(SIZE_MAX)). Throws
  /// `invalid_argument` if root ≥ graph.num_nodes().
  [[nodiscard]] std::vector<double> positions_from_root(const csr_graph& graph,
                                                        std::size_t root) const {
    return bucket_positions(graph.hop_distances(root));
  }

 private:
  friend class graph_rope_attention<T>;

  /// Pointers to the expanded cos/sin rows (length d) of `position`: the cached row for
  /// integer positions in [0, max_position), otherwise computed into `c_buf`/`s_buf`.
  void angle_rows(double position, T* c_buf, T* s_buf, const T*& c, const T*& s) const noexcept {
    if (!cos_.empty() && position >= 0.0 && position < static_cast<double>(config_.max_position) &&
        position == std::floor(position)) {
      const std::size_t p = static_cast<std::size_t>(position) * dim();
      c = cos_.data() + p;
      s = sin_.data() + p;
      return;
    }
    fill_row(position, c_buf, s_buf);
    c = c_buf;
    s = s_buf;
  }

  /// xp = x⊥, the pair partner of every coordinate with the sign that makes
  /// R(p)x = C⊙x − S⊙x⊥ and R(p)ᵀx = C⊙x + S⊙x⊥: for a pair (a, b), x⊥_a = x_b and x⊥_b = −x_a.
  void perpendicular(const T* x, T* xp) const noexcept {
    const std::size_t d = dim();
    if (config_.pairing == rope_pairing::interleaved) {
      for (std::size_t m = 0; m < d; m += 2) {
        xp[m] = x[m + 1];
        xp[m + 1] = -x[m];
      }
    } else {
      const std::size_t h = d / 2;
      for (std::size_t i = 0; i < h; ++i) {
        xp[i] = x[i + h];
        xp[i + h] = -x[i];
      }
    }
  }

  /// out = R(sign·position)·x without validation (sign = −1: R(p); sign = +1: R(p)ᵀ).
  /// `out` may be exactly `x`. Uses thread scratch slots 5–7.
  void rotate_unchecked(const T* x, double position, T* out, T sign) const {
    const std::size_t d = dim();
    T* xp = detail::thread_scratch<T, 5>(d);
    T* cb = detail::thread_scratch<T, 6>(d);
    T* sb = detail::thread_scratch<T, 7>(d);
    const T* c = nullptr;
    const T* s = nullptr;
    angle_rows(position, cb, sb, c, s);
    perpendicular(x, xp);
    detail::rope_combine(x, xp, c, s, sign, out, d);
  }

  static const graph_rope_config& validated(const graph_rope_config& c) {
    require_config(c.dim > 0 && c.dim % 2 == 0, "graph_rope: dim must be even and > 0");
    require_at_most("graph_rope: dim", c.dim, max_dimension);
    require_config(std::isfinite(c.base) && c.base > 1.0,
                   "graph_rope: base must be finite and > 1");
    require_config(std::isfinite(c.scaling_factor) && c.scaling_factor > 0.0,
                   "graph_rope: scaling_factor must be finite and > 0");
    require_config(c.exact_distances > 0, "graph_rope: exact_distances must be > 0");
    require_config(c.max_position > 0, "graph_rope: max_position must be > 0");
    if (c.cache_table) {
      require_at_most("graph_rope: max_position (with cache_table)", c.max_position,
                      (std::size_t{1} << 28) / c.dim);
    }
    return c;
  }

  /// Expanded cos/sin of position p: both coordinates of pair i get cos/sin((p/s)·θ_i), evaluated
  /// in double with xsimd's vectorised sincos (≤ 1 ulp) W angles at a time, then rounded to T.
  void fill_row(double p, T* c, T* s) const noexcept {
    using B = kernels::batch<double>;
    constexpr std::size_t W = B::size;
    const std::size_t d = dim();
    const std::size_t h = d / 2;
    const double scaled = p / config_.scaling_factor;
    const bool interleaved = config_.pairing == rope_pairing::interleaved;
    double angle[W];
    double sin_v[W];
    double cos_v[W];
    for (std::size_t i0 = 0; i0 < h; i0 += W) {
      const std::size_t lanes = std::min(W, h - i0);
      for (std::size_t l = 0; l < W; ++l) angle[l] = l < lanes ? scaled * theta_[i0 + l] : 0.0;
      const auto sc = xsimd::sincos(B::load_unaligned(angle));
      sc.first.store_unaligned(sin_v);
      sc.second.store_unaligned(cos_v);
      for (std::size_t l = 0; l < lanes; ++l) {
        const std::size_t i = i0 + l;
        const T ci = static_cast<T>(cos_v[l]);
        const T si = static_cast<T>(sin_v[l]);
        const std::size_t a = interleaved ? 2 * i : i;
        const std::size_t b = interleaved ? 2 * i + 1 : i + h;
        c[a] = ci;
        c[b] = ci;
        s[a] = si;
        s[b] = si;
      }
    }
  }

  graph_rope_config config_;
  std::vector<double> theta_;
  std::vector<T> cos_;  // [max_position, d] expanded rows (empty without the cache)
  std::vector<T> sin_;
};

/// \brief Scaled dot-product attention over rotary-embedded queries and keys (the seeds'
/// `GraphRoPE` attention): s_j = scale·⟨R(p_q)q, R(p_j)k_j⟩, w = softmax(s), out = Σ w_j v_j.
/// Models `attention_mechanism` and `masked_attention_mechanism`.
///
/// Positions: `compute`/`compute_with_mask` use the seeds' sequence positions (query at 0, key j
/// at j); `compute_at` takes explicit positions; `compute_from_root` uses the bucketed hop
/// distances from a root node of a `csr_graph` (keys/values are then one row per node).
/// Conventions as in `scaled_dot_product_attention`: max-subtracted softmax, a query whose keys
/// are all masked outputs zeros, `check_finite` diagnoses NaN/Inf inputs after a non-finite score.
template <attention_scalar T>
class graph_rope_attention {
 public:
  using value_type = T;

  /// \param rope the rotation; \param scale logit scale (default 1/√dim; finite, > 0).
  explicit graph_rope_attention(const graph_rope_config& rope,
                                std::optional<double> scale = std::nullopt,
                                bool check_finite = true)
      : rope_(rope),
        scale_(static_cast<T>(scale ? *scale : 1.0 / std::sqrt(static_cast<double>(rope.dim)))),
        check_finite_(check_finite) {
    require_config(!scale || (std::isfinite(*scale) && *scale > 0.0),
                   "graph_rope_attention: scale must be finite and > 0");
  }

  /// Convenience: default RoPE settings of dimension `dim`.
  explicit graph_rope_attention(std::size_t dim)
      : graph_rope_attention(graph_rope_config{.dim = dim}) {}

  [[nodiscard]] const graph_rope<T>& rope() const noexcept { return rope_; }
  [[nodiscard]] std::size_t dim() const noexcept { return rope_.dim(); }
  [[nodiscard]] T scale() const noexcept { return scale_; }

  /// \brief Writes the output (size values.cols()) and optionally the weights (size n) of one
  /// query at `query_position` over keys at `key_positions`; returns the log-sum-exp of the
  /// visible scores. `key_mask` (empty = all visible) holds `true` for visible keys.
  T compute_at_into(double query_position, std::span<const T> query,
                    std::span<const double> key_positions, const matrix_cref<T>& keys,
                    const matrix_cref<T>& values, std::span<T> out,
                    std::span<const bool> key_mask = {}, std::span<T> weights = {}) const {
    const std::size_t n = static_cast<std::size_t>(keys.rows());
    const std::size_t d = dim();
    const std::size_t dv = static_cast<std::size_t>(values.cols());
    require_dimension("query.size()", query.size(), d);
    require_non_empty("keys", n);
    require_at_most("keys.rows()", n, max_sequence_length);
    require_dimension("keys.cols()", static_cast<std::size_t>(keys.cols()), d);
    require_dimension("key_positions.size() (must equal keys.rows())", key_positions.size(), n);
    require_dimension("values.rows() (must equal keys.rows())",
                      static_cast<std::size_t>(values.rows()), n);
    require_dimension("out.size() (must equal values.cols())", out.size(), dv);
    if (!key_mask.empty()) require_dimension("key_mask.size()", key_mask.size(), n);
    if (!weights.empty()) require_dimension("weights.size()", weights.size(), n);
    if (!std::isfinite(query_position))
      detail::throw_non_finite("query_position", 0, query_position);
    require_finite("key_positions", key_positions);

    // q̃ = R(p_q)q and its perpendicular q̃⊥ (slots 1, 2); scores in slot 0 (or `weights`).
    T* qr = detail::thread_scratch<T, 1>(d);
    T* qp = detail::thread_scratch<T, 2>(d);
    rope_.rotate_unchecked(query.data(), query_position, qr, T(-1));
    rope_.perpendicular(qr, qp);
    T* s = weights.empty() ? detail::thread_scratch<T, 0>(n) : weights.data();
    T* cb = detail::thread_scratch<T, 3>(d);
    T* sb = detail::thread_scratch<T, 4>(d);
    const auto ldk = static_cast<std::size_t>(keys.outerStride());
    for (std::size_t j = 0; j < n; ++j) {
      const T* c = nullptr;
      const T* sn = nullptr;
      rope_.angle_rows(key_positions[j], cb, sb, c, sn);
      // ⟨R(p_q)q, R(p_j)k_j⟩ = ⟨k_j, R(p_j)ᵀq̃⟩ = Σ k_j·(C⊙q̃ + S⊙q̃⊥)
      s[j] = scale_ * detail::rope_rotated_dot(keys.data() + j * ldk, c, sn, qr, qp, d);
    }
    if (check_finite_ && !kernels::all_finite(s, n))
      detail::diagnose_vector_inputs<T>(query, keys, values);
    if (!key_mask.empty()) {
      for (std::size_t j = 0; j < n; ++j)
        if (!key_mask[j]) s[j] = -std::numeric_limits<T>::infinity();
    }
    const T lse = kernels::softmax(s, n);
    kernels::weighted_row_sum(s, n, values.data(), dv,
                              static_cast<std::size_t>(values.outerStride()), T(0), out.data());
    if (check_finite_ && !kernels::all_finite(out.data(), dv))
      detail::diagnose_vector_inputs<T>(query, keys, values);
    return lse;
  }

  /// \brief Attention output of one query at `query_position` over keys at `key_positions`.
  [[nodiscard]] std::vector<T> compute_at(double query_position, std::span<const T> query,
                                          std::span<const double> key_positions,
                                          const matrix_cref<T>& keys, const matrix_cref<T>& values,
                                          std::span<const bool> key_mask = {}) const {
    std::vector<T> out(static_cast<std::size_t>(values.cols()));
    compute_at_into(query_position, query, key_positions, keys, values, out, key_mask);
    return out;
  }

  /// \brief Output, weights and log-sum-exp of `compute_at` in one call.
  [[nodiscard]] attention_output<T> compute_at_with_weights(
      double query_position, std::span<const T> query, std::span<const double> key_positions,
      const matrix_cref<T>& keys, const matrix_cref<T>& values,
      std::span<const bool> key_mask = {}) const {
    attention_output<T> r{std::vector<T>(static_cast<std::size_t>(values.cols())),
                          std::vector<T>(static_cast<std::size_t>(keys.rows())), T(0)};
    r.lse = compute_at_into(query_position, query, key_positions, keys, values, r.output, key_mask,
                            r.weights);
    return r;
  }

  /// \brief Graph positions: keys/values hold one row per node of `graph`; every node (and the
  /// query, which is node `query_node`) is placed at the bucketed hop distance from `root`. With
  /// root = query_node the query sits at 0 and each key at its own distance to the query.
  [[nodiscard]] std::vector<T> compute_from_root(const csr_graph& graph, std::size_t root,
                                                 std::size_t query_node, std::span<const T> query,
                                                 const matrix_cref<T>& keys,
                                                 const matrix_cref<T>& values,
                                                 std::span<const bool> key_mask = {}) const {
    require_dimension("keys.rows() (must equal graph.num_nodes())",
                      static_cast<std::size_t>(keys.rows()), graph.num_nodes());
    if (query_node >= graph.num_nodes()) {
      std::ostringstream os;
      os << "invalid argument: query_node " << query_node << " is out of range (num_nodes is "
         << graph.num_nodes() << ")";
      throw invalid_argument(os.str());
    }
    const std::vector<double> positions = rope_.positions_from_root(graph, root);
    return compute_at(positions[query_node], query, positions, keys, values, key_mask);
  }

  /// \brief The seeds' `compute`: query at position 0, key j at position j.
  [[nodiscard]] std::vector<T> compute(std::span<const T> query, const matrix_cref<T>& keys,
                                       const matrix_cref<T>& values) const {
    const std::vector<double> positions = sequence_positions(static_cast<std::size_t>(keys.rows()));
    return compute_at(0.0, query, positions, keys, values);
  }

  /// \brief `compute` with a key mask (`true` = visible); hidden keys keep their positions.
  [[nodiscard]] std::vector<T> compute_with_mask(std::span<const T> query,
                                                 const matrix_cref<T>& keys,
                                                 const matrix_cref<T>& values,
                                                 std::span<const bool> key_mask) const {
    require_dimension("key_mask.size()", key_mask.size(), static_cast<std::size_t>(keys.rows()));
    const std::vector<double> positions = sequence_positions(static_cast<std::size_t>(keys.rows()));
    return compute_at(0.0, query, positions, keys, values, key_mask);
  }

  /// \brief Seeds-shaped adapter: keys and values as vectors of vectors (copied once).
  [[nodiscard]] std::vector<T> compute(const std::vector<T>& query,
                                       const std::vector<std::vector<T>>& keys,
                                       const std::vector<std::vector<T>>& values) const {
    return compute(std::span<const T>(query), to_matrix(keys, "keys"), to_matrix(values, "values"));
  }

  /// \brief Many queries against one key set: rotates Q and K once (`rotate_rows`), then runs the
  /// tensor-API `sdpa` (Eigen GEMM blocks, `parallel_for`). Row i of the result is the output of
  /// query i. `key_mask` (empty = all visible) is shared by every query.
  [[nodiscard]] row_matrix<T> compute_batch(const matrix_cref<T>& queries,
                                            std::span<const double> query_positions,
                                            const matrix_cref<T>& keys,
                                            std::span<const double> key_positions,
                                            const matrix_cref<T>& values,
                                            std::span<const bool> key_mask = {}) const {
    const auto lq = static_cast<std::size_t>(queries.rows());
    const auto n = static_cast<std::size_t>(keys.rows());
    const auto dv = static_cast<std::size_t>(values.cols());
    require_dimension("queries.cols()", static_cast<std::size_t>(queries.cols()), dim());
    require_dimension("query_positions.size() (must equal queries.rows())", query_positions.size(),
                      lq);
    require_non_empty("keys", n);
    require_at_most("keys.rows()", n, max_sequence_length);
    require_dimension("keys.cols()", static_cast<std::size_t>(keys.cols()), dim());
    require_dimension("key_positions.size() (must equal keys.rows())", key_positions.size(), n);
    require_dimension("values.rows() (must equal keys.rows())",
                      static_cast<std::size_t>(values.rows()), n);
    if (!key_mask.empty()) require_dimension("key_mask.size()", key_mask.size(), n);
    if (lq == 0) return row_matrix<T>(0, static_cast<Eigen::Index>(dv));
    const row_matrix<T> qr = rope_.rotate_rows(queries, query_positions);
    const row_matrix<T> kr = rope_.rotate_rows(keys, key_positions);
    row_matrix<T> out(static_cast<Eigen::Index>(lq), static_cast<Eigen::Index>(dv));
    const std::size_t d = dim();
    sdpa_options<T> options;
    options.scale = scale_;
    options.check_finite = check_finite_;
    const std::unique_ptr<bool[]> mask(new bool[key_mask.empty() ? 1 : n]);
    if (!key_mask.empty()) {
      std::copy(key_mask.begin(), key_mask.end(), mask.get());
      options.mask.key_mask = tensor_view<const bool, 2>(mask.get(), {1, n});
    }
    const auto ldv = static_cast<std::ptrdiff_t>(values.outerStride());
    sdpa<T>(tensor_view<const T, 4>(qr.data(), {1, 1, lq, d}),
            tensor_view<const T, 4>(kr.data(), {1, 1, n, d}),
            tensor_view<const T, 4>(values.data(), {1, 1, n, dv},
                                    {static_cast<std::ptrdiff_t>(n) * ldv,
                                     static_cast<std::ptrdiff_t>(n) * ldv, ldv, 1}),
            tensor_view<T, 4>(out.data(), {1, 1, lq, dv}), options);
    return out;
  }

 private:
  static std::vector<double> sequence_positions(std::size_t n) {
    std::vector<double> p(n);
    for (std::size_t j = 0; j < n; ++j) p[j] = static_cast<double>(j);
    return p;
  }

  graph_rope<T> rope_;
  T scale_;
  bool check_finite_;
};

}  // namespace ruvector::attention

RUVECTOR_ATTENTION_KERNEL_WARNINGS_END
// ---- end ruvector/attention/graph/rope.hpp ----
// ---- end ruvector/attention/graph.hpp ----
// ---- begin ruvector/attention/hyperbolic.hpp ----
/// \file hyperbolic.hpp
/// \brief Entry header of the hyperbolic family: attention between points of the Poincaré ball
/// (distance or Lorentzian scores; tangent-space, Einstein-midpoint or Fréchet-mean aggregation).

// ---- begin ruvector/attention/hyperbolic/hyperbolic_attention.hpp ----
/// \file hyperbolic/hyperbolic_attention.hpp
/// \brief Attention between points of the Poincaré ball (Gulcehre et al. 2019, "Hyperbolic
/// Attention Networks"; geometry of Ganea et al. 2018, "Hyperbolic Neural Networks").
///
/// Queries, keys and values are points of the Poincaré ball of curvature −c (c > 0). With
///
///     a_j = 2c‖q − k_j‖² / ((1 − c‖q‖²)(1 − c‖k_j‖²))
///
/// the geodesic distance is d_c(q, k_j) = (1/√c)·arcosh(1 + a_j), evaluated as
/// (1/√c)·log1p(a_j + √(a_j(a_j + 2))) so close points keep their digits, and ‖q − k_j‖² is formed
/// from the difference (kernels::row_squared_distances), never from ‖q‖² + ‖k‖² − 2q·k.
///
/// Scores (`hyperbolic_score`):
/// - `distance`:                s_j = −d_c(q, k_j) / τ
/// - `lorentz_squared_distance`: s_j = −d_L²(q, k_j) / τ, the squared Lorentzian distance
///   d_L² = −2/c − 2⟨x, y⟩_L of the hyperboloid images (Law et al. 2019, "Lorentzian Distance
///   Learning for Hyperbolic Representations"); in ball coordinates d_L² = (2/c)·a_j, a monotone
///   function of d_c that needs no transcendental function.
///
/// Weights w = softmax(s) (max-subtracted; masked keys get weight 0). Aggregation of the values
/// (`hyperbolic_aggregation`):
/// - `tangent_origin`: out = exp₀(Σ_j w_j log₀(v_j)), with log₀(v) = artanh(√c‖v‖)·v/(√c‖v‖) and
///   exp₀(u) = tanh(√c‖u‖)·u/(√c‖u‖). One weighted row sum with per-value coefficients.
/// - `einstein_midpoint`: the weighted Einstein midpoint in the Klein model (Ungar 2008), mapped
///   back to the ball. With k_j = 2v_j/(1 + c‖v_j‖²) and γ_j = 1/√(1 − c‖k_j‖²)
///   = (1 + c‖v_j‖²)/(1 − c‖v_j‖²): m_K = Σ w_j γ_j k_j / Σ w_j γ_j
///   = Σ w_j (2/(1 − c‖v_j‖²)) v_j / Σ w_j γ_j, and out = m_K/(1 + √(1 − c‖m_K‖²)).
/// - `frechet_mean`: the weighted Fréchet (Karcher) mean argmin_m Σ w_j d_c(m, v_j)², by the
///   Riemannian fixed-point iteration of `frechet_mean` (geometry/means.hpp), started at the
///   tangent-space aggregate; the iteration count and convergence are reported by
///   `compute_detailed`.
///
/// Conventions:
/// - Inputs outside the ball are projected onto the ball of radius (1 − eps)/√c
///   (`poincare_ball<T>::default_eps`), as `poincare_ball::project` does; values are projected
///   implicitly (their coefficients are scaled), never copied, except for the Fréchet mean.
/// - A query whose keys are all masked returns the origin (zeros; DESIGN §4) and all-zero weights.
/// - `curvature` follows the seeds' sign convention (negative: −1 is the unit ball); it is a
///   value of the object, so a trainer can rebuild the mechanism with a new curvature.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <vector>


namespace ruvector::attention {

/// \brief How a query is compared with a key.
enum class hyperbolic_score {
  distance,                  ///< s = −d_c(q, k)/τ (geodesic distance of the ball)
  lorentz_squared_distance,  ///< s = −d_L²(q, k)/τ (squared Lorentzian distance, Law et al. 2019)
};

/// \brief How the weighted values are combined into one point of the ball.
enum class hyperbolic_aggregation {
  tangent_origin,     ///< exp₀(Σ w log₀ v) — one pass, the fast default
  einstein_midpoint,  ///< weighted Einstein midpoint in the Klein model — one pass
  frechet_mean,       ///< weighted Karcher mean — iterative (frechet_max_iterations)
};

/// \brief Configuration of `hyperbolic_attention` (the seeds' `HyperbolicAttentionConfig`).
struct hyperbolic_attention_config {
  std::size_t dim = 128;     ///< dimension of queries, keys and values (the ball's dimension)
  double curvature = -1.0;   ///< sectional curvature −c; must be < 0
  double temperature = 1.0;  ///< τ > 0
  hyperbolic_score score = hyperbolic_score::distance;
  hyperbolic_aggregation aggregation = hyperbolic_aggregation::tangent_origin;
  std::size_t frechet_max_iterations = 50;  ///< the seeds' default
  double frechet_tolerance = 1e-5;          ///< on the Riemannian gradient norm (seeds' default)
  bool check_finite = true;                 ///< diagnose NaN/Inf inputs (non_finite_input)
};

/// \brief Output of `hyperbolic_attention::compute_detailed`.
template <class T>
struct hyperbolic_attention_result {
  std::vector<T> output;   ///< aggregated point of the ball (size dim)
  std::vector<T> weights;  ///< attention weights (size n)
  /// Iterations and convergence of the Fréchet mean (`iterations == 0` for the one-pass modes).
  frechet_result frechet;
};

/// \brief Key-side terms of `hyperbolic_attention`, computed once per key set and reused across
/// queries: the (projected) keys' conformal terms 1/(1 − c‖k‖²), computed in double.
template <attention_scalar T>
class hyperbolic_key_set {
 public:
  [[nodiscard]] std::size_t size() const noexcept { return inverse_conformal_.size(); }
  [[nodiscard]] std::size_t dim() const noexcept { return dim_; }
  /// Keys as used (rows projected into the ball when they were outside it).
  [[nodiscard]] matrix_cref<T> keys() const noexcept {
    return projected_.rows() > 0 ? matrix_cref<T>(projected_) : keys_;
  }
  /// 1/(1 − c‖k_j‖²) per key.
  [[nodiscard]] std::span<const T> inverse_conformal() const noexcept { return inverse_conformal_; }

 private:
  template <attention_scalar>
  friend class hyperbolic_attention;

  hyperbolic_key_set(const matrix_cref<T>& keys, std::size_t dim)
      : keys_(keys), dim_(dim), inverse_conformal_(static_cast<std::size_t>(keys.rows())) {}

  matrix_cref<T> keys_;      // the caller's keys (valid while the caller keeps them alive)
  row_matrix<T> projected_;  // a projected copy, only when some key was outside the ball
  std::size_t dim_;
  std::vector<T> inverse_conformal_;
};

namespace detail {

/// artanh(t)/t for t = √c‖v‖ ∈ [0, 1): the log₀ coefficient (Taylor 1 + t²/3 near 0).
template <class T>
[[nodiscard]] inline T artanh_over(T t) noexcept {
  return t < T(1e-4) ? T(1) + t * t / T(3) : std::atanh(t) / t;
}

/// tanh(t)/t for t ≥ 0: the exp₀ coefficient (Taylor 1 − t²/3 near 0).
template <class T>
[[nodiscard]] inline T tanh_over(T t) noexcept {
  return t < T(1e-4) ? T(1) - t * t / T(3) : std::tanh(t) / t;
}

}  // namespace detail

/// \brief Attention in the Poincaré ball (the seeds' `HyperbolicAttention`), with the score and the
/// aggregation selectable. Models `attention_mechanism` and `masked_attention_mechanism`.
///
/// Cost per query: one pass over the keys (‖q − k‖², fused with ‖k‖² unless a key set is given),
/// O(n) transcendental functions in xsimd batches, one pass over the values for the one-pass
/// aggregations (plus their norms), or `iterations` passes for the Fréchet mean.
template <attention_scalar T>
class hyperbolic_attention {
 public:
  using value_type = T;

  explicit hyperbolic_attention(const hyperbolic_attention_config& config)
      : config_(validated(config)),
        ball_(static_cast<T>(-config.curvature)),
        c_(static_cast<T>(-config.curvature)),
        inv_temperature_(static_cast<T>(1.0 / config.temperature)) {}

  /// Convenience: `hyperbolic_attention(dim, curvature)` with the other fields at their defaults.
  hyperbolic_attention(std::size_t dim, double curvature)
      : hyperbolic_attention(hyperbolic_attention_config{.dim = dim, .curvature = curvature}) {}

  [[nodiscard]] const hyperbolic_attention_config& config() const noexcept { return config_; }
  [[nodiscard]] std::size_t dim() const noexcept { return config_.dim; }
  /// Sectional curvature −c (negative).
  [[nodiscard]] T curvature() const noexcept { return -c_; }
  [[nodiscard]] const poincare_ball<T>& ball() const noexcept { return ball_; }

  /// \brief Precomputes the key-side terms (and projects keys outside the ball). The key set keeps
  /// a view of `keys` (not a copy) unless a key had to be projected: keep `keys` alive.
  [[nodiscard]] hyperbolic_key_set<T> prepare_keys(const matrix_cref<T>& keys) const {
    const std::size_t n = static_cast<std::size_t>(keys.rows());
    require_non_empty("keys", n);
    require_at_most("keys.rows()", n, max_sequence_length);
    require_dimension("keys.cols()", static_cast<std::size_t>(keys.cols()), dim());
    hyperbolic_key_set<T> set(keys, dim());
    const double c = static_cast<double>(c_);
    const double max_sq = static_cast<double>(ball_.max_norm()) * ball_.max_norm();
    for (std::size_t j = 0; j < n; ++j) {
      const T* row = keys.data() + j * static_cast<std::size_t>(keys.outerStride());
      // ‖k‖² by the vectorised kernel; 1 − c‖k‖² is then formed in double.
      double sq = static_cast<double>(kernels::dot(row, row, dim()));
      if (!std::isfinite(sq)) {
        require_finite("keys", keys.data(), n, dim(), keys.outerStride());
        throw non_finite_input("non-finite input: keys");
      }
      if (sq > max_sq) {
        if (set.projected_.rows() == 0) set.projected_ = keys;
        ball_.project(std::span<const T>(row, dim()),
                      std::span<T>(set.projected_.row(static_cast<Eigen::Index>(j)).data(), dim()));
        sq = max_sq;
      }
      set.inverse_conformal_[j] = static_cast<T>(1.0 / (1.0 - c * sq));
    }
    return set;
  }

  /// \brief Writes the attention weights for `query` over a prepared key set into `weights`.
  void weights_into(std::span<const T> query, const hyperbolic_key_set<T>& keys,
                    std::span<T> weights, std::span<const bool> key_mask = {}) const {
    require_dimension("query.size()", query.size(), dim());
    require_dimension("weights.size()", weights.size(), keys.size());
    if (!key_mask.empty()) require_dimension("key_mask.size()", key_mask.size(), keys.size());
    scores(query, keys, weights.data());
    finish_weights(weights.data(), keys.size(), key_mask);
  }

  /// \brief The attention weights of one query (the seeds' `compute_manifold_weights`).
  [[nodiscard]] std::vector<T> compute_weights(std::span<const T> query,
                                               const matrix_cref<T>& keys) const {
    const auto set = prepare_keys(keys);
    std::vector<T> w(set.size());
    weights_into(query, set, w);
    return w;
  }

  /// \brief Attention output for one query over a prepared key set: a point of the ball (size dim).
  void compute_into(std::span<const T> query, const hyperbolic_key_set<T>& keys,
                    const matrix_cref<T>& values, std::span<T> out,
                    std::span<const bool> key_mask = {}, std::span<T> weights = {},
                    frechet_result* frechet = nullptr) const {
    const std::size_t n = keys.size();
    require_dimension("values.rows() (must equal keys.rows())",
                      static_cast<std::size_t>(values.rows()), n);
    require_dimension("values.cols()", static_cast<std::size_t>(values.cols()), dim());
    require_dimension("out.size()", out.size(), dim());
    if (!weights.empty()) require_dimension("weights.size()", weights.size(), n);
    T* w = weights.empty() ? detail::thread_scratch<T, 0>(n) : weights.data();
    weights_into(query, keys, std::span<T>(w, n), key_mask);
    aggregate(std::span<const T>(w, n), values, out, frechet);
    if (config_.check_finite && !kernels::all_finite(out.data(), dim()))
      detail::diagnose_vector_inputs<T>(query, keys.keys(), values);
  }

  /// \brief Attention output for one query (the seeds' `compute`).
  [[nodiscard]] std::vector<T> compute(std::span<const T> query, const matrix_cref<T>& keys,
                                       const matrix_cref<T>& values) const {
    std::vector<T> out(dim());
    compute_into(query, prepare_keys(keys), values, out);
    return out;
  }

  /// \brief Attention output for one query over a prepared key set.
  [[nodiscard]] std::vector<T> compute(std::span<const T> query, const hyperbolic_key_set<T>& keys,
                                       const matrix_cref<T>& values) const {
    std::vector<T> out(dim());
    compute_into(query, keys, values, out);
    return out;
  }

  /// \brief Attention output with a key mask (`true` = visible; the seeds' `compute_with_mask`).
  [[nodiscard]] std::vector<T> compute_with_mask(std::span<const T> query,
                                                 const matrix_cref<T>& keys,
                                                 const matrix_cref<T>& values,
                                                 std::span<const bool> key_mask) const {
    require_dimension("key_mask.size()", key_mask.size(), static_cast<std::size_t>(keys.rows()));
    std::vector<T> out(dim());
    compute_into(query, prepare_keys(keys), values, out, key_mask);
    return out;
  }

  /// \brief Output, weights and the Fréchet-mean report in one call.
  [[nodiscard]] hyperbolic_attention_result<T> compute_detailed(
      std::span<const T> query, const matrix_cref<T>& keys, const matrix_cref<T>& values,
      std::span<const bool> key_mask = {}) const {
    hyperbolic_attention_result<T> r{
        std::vector<T>(dim()), std::vector<T>(static_cast<std::size_t>(keys.rows())), {}};
    compute_into(query, prepare_keys(keys), values, r.output, key_mask, r.weights, &r.frechet);
    return r;
  }

  /// \brief Every row of `queries` against one key set: row i of the result is the output of query
  /// i. Queries run in parallel (`parallel_for`); the key-side terms are computed once.
  [[nodiscard]] row_matrix<T> compute_batch(const matrix_cref<T>& queries,
                                            const matrix_cref<T>& keys,
                                            const matrix_cref<T>& values) const {
    require_dimension("queries.cols()", static_cast<std::size_t>(queries.cols()), dim());
    const auto set = prepare_keys(keys);
    row_matrix<T> out(queries.rows(), static_cast<Eigen::Index>(dim()));
    parallel_for(0, static_cast<std::size_t>(queries.rows()), [&](std::size_t i) {
      const auto row = static_cast<Eigen::Index>(i);
      compute_into(std::span<const T>(queries.row(row).data(), dim()), set, values,
                   std::span<T>(out.row(row).data(), dim()));
    });
    return out;
  }

  /// \brief Seeds-shaped adapter: keys and values as vectors of vectors (copied once).
  [[nodiscard]] std::vector<T> compute(const std::vector<T>& query,
                                       const std::vector<std::vector<T>>& keys,
                                       const std::vector<std::vector<T>>& values) const {
    return compute(std::span<const T>(query), to_matrix(keys, "keys"), to_matrix(values, "values"));
  }

 private:
  static const hyperbolic_attention_config& validated(const hyperbolic_attention_config& c) {
    require_config(c.dim > 0, "hyperbolic_attention: dim must be > 0");
    require_at_most("dim", c.dim, max_dimension);
    require_config(std::isfinite(c.curvature) && c.curvature < 0.0,
                   "hyperbolic_attention: curvature must be finite and < 0 (the ball has "
                   "curvature -c)");
    require_config(std::isfinite(c.temperature) && c.temperature > 0.0,
                   "hyperbolic_attention: temperature must be finite and > 0");
    require_config(c.frechet_max_iterations > 0,
                   "hyperbolic_attention: frechet_max_iterations must be > 0");
    require_config(std::isfinite(c.frechet_tolerance) && c.frechet_tolerance > 0.0,
                   "hyperbolic_attention: frechet_tolerance must be finite and > 0");
    return c;
  }

  /// The query projected into the ball if needed: returns the pointer to use and ‖q‖².
  const T* query_point(std::span<const T> query, T* scratch, T& sq) const {
    sq = kernels::dot(query.data(), query.data(), dim());
    if (!std::isfinite(sq)) {
      if (config_.check_finite) require_finite<T>("query", query);
      throw non_finite_input("non-finite input: query");
    }
    const T max_norm = ball_.max_norm();
    if (sq <= max_norm * max_norm) return query.data();
    ball_.project(query, std::span<T>(scratch, dim()));
    sq = max_norm * max_norm;
    return scratch;
  }

  /// s_j (before masking), written to `s`.
  void scores(std::span<const T> query, const hyperbolic_key_set<T>& keys, T* s) const {
    const std::size_t n = keys.size();
    T q_sq;
    const T* q = query_point(query, detail::thread_scratch<T, 1>(dim()), q_sq);
    const auto k = keys.keys();
    kernels::row_squared_distances(k.data(), n, dim(), static_cast<std::size_t>(k.outerStride()), q,
                                   s);
    // a_j = 2c‖q − k_j‖² · iq · ik_j with iq = 1/(1 − c‖q‖²) (formed in double: near the boundary
    // 1 − c‖q‖² is a small difference).
    const T factor = static_cast<T>(2.0 * static_cast<double>(c_) /
                                    (1.0 - static_cast<double>(c_) * static_cast<double>(q_sq)));
    const T* ik = keys.inverse_conformal().data();
    using B = kernels::batch<T>;
    constexpr std::size_t W = B::size;
    const bool lorentz = config_.score == hyperbolic_score::lorentz_squared_distance;
    // distance: −(1/(√c·τ))·log1p(a + √(a(a + 2)));  lorentz: −(2/(c·τ))·a.
    const T out_scale = lorentz ? -T(2) / c_ * inv_temperature_ : -inv_temperature_ / std::sqrt(c_);
    const B bf(factor), bs(out_scale), two(T(2));
    std::size_t j = 0;
    for (; j + W <= n; j += W) {
      const B a = bf * B::load_unaligned(s + j) * B::load_unaligned(ik + j);
      const B t = lorentz ? a : xsimd::log1p(a + xsimd::sqrt(a * (a + two)));
      (bs * t).store_unaligned(s + j);
    }
    for (; j < n; ++j) {
      const T a = factor * s[j] * ik[j];
      s[j] = out_scale * (lorentz ? a : std::log1p(a + std::sqrt(a * (a + T(2)))));
    }
    if (config_.check_finite && !kernels::all_finite(s, n)) {
      require_finite<T>("query", query);
      require_finite("keys", k.data(), n, dim(), k.outerStride());
      throw non_finite_input("non-finite input: hyperbolic scores are not finite");
    }
  }

  static void finish_weights(T* s, std::size_t n, std::span<const bool> key_mask) {
    if (!key_mask.empty()) {
      for (std::size_t j = 0; j < n; ++j)
        if (!key_mask[j]) s[j] = -std::numeric_limits<T>::infinity();
    }
    (void)kernels::softmax(s, n);
  }

  /// Combines the values with weights `w` into `out` according to the aggregation mode.
  void aggregate(std::span<const T> w, const matrix_cref<T>& values, std::span<T> out,
                 frechet_result* frechet) const {
    if (frechet != nullptr) *frechet = frechet_result{};
    if (std::all_of(w.begin(), w.end(), [](T x) { return x == T(0); })) {
      std::fill(out.begin(), out.end(), T(0));  // every key masked: the origin
      return;
    }
    switch (config_.aggregation) {
      case hyperbolic_aggregation::tangent_origin:
        tangent_aggregate(w, values, out);
        return;
      case hyperbolic_aggregation::einstein_midpoint:
        with_values_in_ball(values, [&](const matrix_cref<T>& points) {
          einstein_midpoint(ball_, points, w, out);
        });
        return;
      case hyperbolic_aggregation::frechet_mean: {
        frechet_options options;
        options.max_iterations = config_.frechet_max_iterations;
        options.tolerance = config_.frechet_tolerance;
        frechet_result r;
        with_values_in_ball(values, [&](const matrix_cref<T>& points) {
          r = frechet_mean(ball_, points, w, out, options);
        });
        if (frechet != nullptr) *frechet = r;
        return;
      }
    }
  }

  /// exp₀(Σ_j w_j log₀(v_j)) in one pass over the values: Σ_j β_j v_j with
  /// β_j = w_j·artanh(√c‖v_j‖)/(√c‖v_j‖) (values outside the ball are projected by folding the
  /// radial scale into β_j), then the exp₀ scale.
  void tangent_aggregate(std::span<const T> w, const matrix_cref<T>& values,
                         std::span<T> out) const {
    const std::size_t n = w.size();
    const std::size_t ldv = static_cast<std::size_t>(values.outerStride());
    const std::size_t d = dim();
    const T max_norm = ball_.max_norm();
    const T sqrt_c = std::sqrt(c_);
    // ‖v_j‖² for every value in one vectorised pass (distances to the origin), then the
    // coefficients in xsimd batches.
    T* beta = detail::thread_scratch<T, 2>(n);
    T* origin = detail::thread_scratch<T, 3>(d);
    std::fill(origin, origin + d, T(0));
    kernels::row_squared_distances(values.data(), n, d, ldv, origin, beta);
    using B = kernels::batch<T>;
    constexpr std::size_t W = B::size;
    const B bmax(max_norm), bsqrt_c(sqrt_c), one(T(1)), third(T(1) / T(3)), small(T(1e-4));
    std::size_t j = 0;
    for (; j + W <= n; j += W) {
      const B norm = xsimd::sqrt(B::load_unaligned(beta + j));
      const B clamped = xsimd::min(norm, bmax);
      const B radial = xsimd::select(norm > bmax, bmax / norm, one);
      const B t = bsqrt_c * clamped;
      const B coef = xsimd::select(t < small, one + t * t * third, xsimd::atanh(t) / t);
      (B::load_unaligned(w.data() + j) * coef * radial).store_unaligned(beta + j);
    }
    for (; j < n; ++j) {
      T norm = std::sqrt(beta[j]);
      T radial = T(1);
      if (norm > max_norm) {
        radial = max_norm / norm;
        norm = max_norm;
      }
      beta[j] = w[j] * detail::artanh_over(sqrt_c * norm) * radial;
    }
    kernels::weighted_row_sum(beta, n, values.data(), d, ldv, T(0), out.data());
    const T u_norm = std::sqrt(kernels::dot(out.data(), out.data(), d));
    kernels::scale(detail::tanh_over(sqrt_c * u_norm), out.data(), d);
    // Keep the result strictly inside the ball (tanh rounds to 1 for large tangent vectors).
    const T out_sq = kernels::dot(out.data(), out.data(), d);
    if (out_sq > max_norm * max_norm) kernels::scale(max_norm / std::sqrt(out_sq), out.data(), d);
  }

  /// Calls f(points) with the values, or with a projected copy when some value lies outside the
  /// ball (the means require points inside it).
  template <class F>
  void with_values_in_ball(const matrix_cref<T>& values, F&& f) const {
    const T max_sq = ball_.max_norm() * ball_.max_norm();
    bool outside = false;
    for (Eigen::Index j = 0; j < values.rows() && !outside; ++j)
      outside = values.row(j).squaredNorm() > max_sq;
    if (!outside) {
      f(values);
      return;
    }
    row_matrix<T> projected = values;
    for (Eigen::Index j = 0; j < values.rows(); ++j)
      ball_.project(std::span<const T>(values.row(j).data(), dim()),
                    std::span<T>(projected.row(j).data(), dim()));
    f(matrix_cref<T>(projected));
  }

  hyperbolic_attention_config config_;
  poincare_ball<T> ball_;
  T c_;
  T inv_temperature_;
};

}  // namespace ruvector::attention
// ---- end ruvector/attention/hyperbolic/hyperbolic_attention.hpp ----
// ---- end ruvector/attention/hyperbolic.hpp ----
// ---- begin ruvector/attention/info_bottleneck.hpp ----
/// \file info_bottleneck.hpp
/// \brief Entry header of the information-bottleneck family (theory 5): KL and Jensen–Shannon
/// divergences, the variational information bottleneck layer with β schedules and analytic
/// gradients, and attention-weight compression.

// ---- begin ruvector/attention/info_bottleneck/bottleneck.hpp ----
/// \file info_bottleneck/bottleneck.hpp
/// \brief Variational information bottleneck layer (Alemi, Fischer, Dillon & Murphy 2017, "Deep
/// Variational Information Bottleneck") with β-annealing schedules (Bowman et al. 2016 linear
/// warm-up; cosine; cyclical, Fu et al. 2019).
///
/// For a batch X `[B, d_in]` (rows = samples) the Gaussian encoder q(z|x) is linear:
///
///     M   = X W_μᵀ + 1 b_μᵀ                                   `[B, d_z]`
///     Λ   = clamp(X W_σᵀ + 1 b_σᵀ, logvar_min, logvar_max)    `[B, d_z]`, Λ = log σ²
///     Z   = M + exp(½ Λ) ⊙ E,   E_ij ~ N(0, 1)                (reparameterisation trick)
///     KL_b = ½ Σ_j (M_bj² + e^{Λ_bj} − Λ_bj − 1)              (KL(q(z|x_b) ‖ N(0, I)))
///     L_KL = β · (1/B) Σ_b KL_b
///
/// Weights use the PyTorch `Linear` layout `[out_features, in_features]`: W_μ, W_σ `[d_z, d_in]`,
/// b_μ, b_σ `[d_z]`. Initialisation from `vib_config::seed`: W_μ then W_σ are drawn Xavier-uniform
/// U(±√(6 / (d_in + d_z))) (Glorot & Bengio 2010) from `rng(seed)`, element by element in
/// row-major order; both biases are zero (so σ ≈ 1 at the start for centred inputs).
///
/// Sampling: `forward(x, gen)` draws E_ij = gen.normal<T>() in row-major order (b, then j), so a
/// seeded `rng` reproduces Z bit for bit. `forward(x)` is the deterministic (evaluation) mode:
/// E = 0 and Z = M. `forward(x, eps)` uses caller-given noise (e.g. held fixed for a gradient
/// check).
///
/// Backward (`backward(x, fwd, grad_z, beta)`), given G = ∂L/∂Z from downstream (`[B, d_z]`, the
/// gradient of the caller's whole loss) and the KL term above:
///
///     G_μ = G + (β/B) M
///     G_Λ = [G ⊙ ½ σ ⊙ E + (β/B) ½ (e^Λ − 1)] ⊙ 1[logvar_min ≤ Λ_raw ≤ logvar_max]
///     ∂W_μ = G_μᵀ X,  ∂b_μ = 1ᵀ G_μ,  ∂W_σ = G_Λᵀ X,  ∂b_σ = 1ᵀ G_Λ,  ∂X = G_μ W_μ + G_Λ W_σ
///
/// (∂z/∂μ = 1 and ∂z/∂log σ² = ½ σ ε). The clamp passes no gradient where it is active
/// (the derivative of clamp outside its range). All products are Eigen GEMMs.
///
/// Conventions and errors: `vib_config` / `beta_schedule` inconsistencies throw `invalid_config`;
/// a wrong input width or a mis-shaped eps/grad/parameter throws `dimension_mismatch`; an empty
/// batch, β < 0 or a negative learning rate throws `invalid_argument` (β and lr are call
/// arguments, not configuration); NaN/Inf inputs throw `non_finite_input` naming the element.
/// Forward and backward are const and thread-safe; `set_parameters` and `apply_gradients` are
/// not.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numbers>
#include <span>
#include <sstream>
#include <string>
#include <utility>
#include <vector>


namespace ruvector::attention {

// ================================================================================================
// β schedules
// ================================================================================================

/// \brief Shape of a `beta_schedule`.
enum class beta_schedule_kind {
  constant,  ///< β(t) = β1
  linear,    ///< β(t) = β0 + (β1 − β0) · min(t / S, 1)
  cosine,    ///< β(t) = β1 + (β0 − β1) · ½ (1 + cos(π · min(t / S, 1)))
  cyclical,  ///< Fu et al. 2019; see `beta_schedule::cyclical`
};

/// \brief A β-annealing schedule for the KL weight; `beta(step)` with 0-based steps.
///
/// - `linear(β0, β1, S)`: warm-up from β0 (t = 0) to β1 (t ≥ S), linear in between.
/// - `cosine(β0, β1, S)`: β0 at t = 0 to β1 at t ≥ S along half a cosine (flat at both ends).
/// - `cyclical(β0, β1, T, R, ratio)` (Fu et al. 2019, "Cyclical Annealing Schedule"): the
///   first T steps are split into R cycles of (real) length P = T / R; with τ = (t mod P) / P,
///   β(t) = β0 + (β1 − β0) · min(τ / ratio, 1), i.e. a linear rise over the first `ratio` of
///   each cycle, then β1 for the rest of it; for t ≥ T the schedule stays at β1.
/// Requirements (else `invalid_config`): β0, β1 finite and ≥ 0; S ≥ 1; R ≥ 1; T ≥ R;
/// 0 < ratio ≤ 1.
class beta_schedule {
 public:
  /// β(t) = beta for every step.
  [[nodiscard]] static beta_schedule constant(double beta) {
    check_beta("beta", beta);
    beta_schedule s;
    s.beta0_ = s.beta1_ = beta;
    return s;
  }

  /// Linear warm-up from beta0 to beta1 over `steps` steps (then constant beta1).
  [[nodiscard]] static beta_schedule linear(double beta0, double beta1, std::size_t steps) {
    return ramp(beta_schedule_kind::linear, beta0, beta1, steps);
  }

  /// Cosine warm-up from beta0 to beta1 over `steps` steps (then constant beta1).
  [[nodiscard]] static beta_schedule cosine(double beta0, double beta1, std::size_t steps) {
    return ramp(beta_schedule_kind::cosine, beta0, beta1, steps);
  }

  /// Cyclical schedule: `cycles` cycles over `total_steps`, rising over the first `ratio` of each.
  [[nodiscard]] static beta_schedule cyclical(double beta0, double beta1, std::size_t total_steps,
                                              std::size_t cycles, double ratio = 0.5) {
    check_beta("beta0", beta0);
    check_beta("beta1", beta1);
    require_config(cycles >= 1, "beta_schedule::cyclical: cycles must be >= 1");
    require_config(total_steps >= cycles, "beta_schedule::cyclical: total_steps must be >= cycles");
    require_config(std::isfinite(ratio) && ratio > 0.0 && ratio <= 1.0,
                   "beta_schedule::cyclical: ratio must be in (0, 1]");
    beta_schedule s;
    s.kind_ = beta_schedule_kind::cyclical;
    s.beta0_ = beta0;
    s.beta1_ = beta1;
    s.steps_ = total_steps;
    s.cycles_ = cycles;
    s.ratio_ = ratio;
    return s;
  }

  /// The KL weight at 0-based training step `step`.
  [[nodiscard]] double beta(std::size_t step) const noexcept {
    const double t = static_cast<double>(step);
    switch (kind_) {
      case beta_schedule_kind::constant:
        return beta1_;
      case beta_schedule_kind::linear: {
        const double f = std::min(t / static_cast<double>(steps_), 1.0);
        return beta0_ + (beta1_ - beta0_) * f;
      }
      case beta_schedule_kind::cosine: {
        const double f = std::min(t / static_cast<double>(steps_), 1.0);
        return beta1_ + (beta0_ - beta1_) * 0.5 * (1.0 + std::cos(std::numbers::pi * f));
      }
      case beta_schedule_kind::cyclical: {
        if (step >= steps_) return beta1_;
        const double period = static_cast<double>(steps_) / static_cast<double>(cycles_);
        const double tau = std::fmod(t, period) / period;
        return beta0_ + (beta1_ - beta0_) * std::min(tau / ratio_, 1.0);
      }
    }
    return beta1_;
  }

  [[nodiscard]] beta_schedule_kind kind() const noexcept { return kind_; }
  [[nodiscard]] double beta0() const noexcept { return beta0_; }
  [[nodiscard]] double beta1() const noexcept { return beta1_; }
  /// S (linear/cosine) or T (cyclical); 0 for constant.
  [[nodiscard]] std::size_t steps() const noexcept { return steps_; }
  [[nodiscard]] std::size_t cycles() const noexcept { return cycles_; }
  [[nodiscard]] double ratio() const noexcept { return ratio_; }

 private:
  beta_schedule() = default;

  static void check_beta(const char* name, double b) {
    if (!(std::isfinite(b) && b >= 0.0)) {
      std::ostringstream os;
      os << "beta_schedule: " << name << " = " << b << ", expected a finite value >= 0";
      require_config(false, os.str());
    }
  }

  static beta_schedule ramp(beta_schedule_kind kind, double beta0, double beta1,
                            std::size_t steps) {
    check_beta("beta0", beta0);
    check_beta("beta1", beta1);
    require_config(steps >= 1, "beta_schedule: warm-up steps must be >= 1");
    beta_schedule s;
    s.kind_ = kind;
    s.beta0_ = beta0;
    s.beta1_ = beta1;
    s.steps_ = steps;
    return s;
  }

  beta_schedule_kind kind_ = beta_schedule_kind::constant;
  double beta0_ = 0.0;
  double beta1_ = 0.0;
  std::size_t steps_ = 0;
  std::size_t cycles_ = 0;
  double ratio_ = 1.0;
};

// ================================================================================================
// The VIB layer
// ================================================================================================

/// \brief Configuration of a `variational_bottleneck`.
struct vib_config {
  std::size_t input_dim = 0;   ///< d_in ≥ 1
  std::size_t latent_dim = 0;  ///< d_z ≥ 1
  std::uint64_t seed = 0;      ///< seed of the Xavier initialisation
  double logvar_min = -10.0;   ///< lower clamp of log σ² (finite, < logvar_max)
  double logvar_max = 10.0;    ///< upper clamp of log σ² (finite; ≤ 80 keeps float σ² finite)
};

/// \brief Parameters (or their gradients) of a `variational_bottleneck`.
template <attention_scalar T>
struct vib_parameters {
  using vector_type = Eigen::Matrix<T, Eigen::Dynamic, 1>;
  row_matrix<T> w_mu;      ///< `[d_z, d_in]`
  vector_type b_mu;        ///< `[d_z]`
  row_matrix<T> w_logvar;  ///< `[d_z, d_in]` (W_σ)
  vector_type b_logvar;    ///< `[d_z]` (b_σ)
};

/// \brief Gradients returned by `variational_bottleneck::backward`.
template <attention_scalar T>
struct vib_gradients {
  vib_parameters<T> params;  ///< ∂L/∂W_μ, ∂L/∂b_μ, ∂L/∂W_σ, ∂L/∂b_σ
  row_matrix<T> x;           ///< ∂L/∂X `[B, d_in]`
};

/// \brief The outputs of one forward pass (kept for `backward`).
template <attention_scalar T>
struct vib_forward_result {
  row_matrix<T> mu;                        ///< M `[B, d_z]`
  row_matrix<T> logvar;                    ///< Λ = clamped log σ² `[B, d_z]`
  row_matrix<T> logvar_raw;                ///< log σ² before clamping `[B, d_z]`
  row_matrix<T> eps;                       ///< E (zeros in deterministic mode) `[B, d_z]`
  row_matrix<T> z;                         ///< Z = M + σ ⊙ E `[B, d_z]`
  Eigen::Matrix<T, Eigen::Dynamic, 1> kl;  ///< KL_b per sample `[B]`
  T kl_mean = T(0);                        ///< (1/B) Σ_b KL_b

  /// β · (1/B) Σ_b KL_b; throws `invalid_argument` unless β is finite and ≥ 0.
  [[nodiscard]] T kl_loss(T beta) const {
    if (!(std::isfinite(beta) && beta >= T(0))) {
      std::ostringstream os;
      os << "invalid argument: beta = " << beta << ", expected a finite value >= 0";
      throw invalid_argument(os.str());
    }
    return beta * kl_mean;
  }
};

/// \brief Variational information bottleneck encoder x → q(z|x) = N(μ(x), diag σ²(x)) with
/// reparameterised sampling, KL regulariser and analytic gradients; see the file comment.
template <attention_scalar T>
class variational_bottleneck {
 public:
  using value_type = T;
  using vector_type = Eigen::Matrix<T, Eigen::Dynamic, 1>;

  /// \brief Validates `config` (`invalid_config`) and Xavier-initialises from `config.seed`.
  explicit variational_bottleneck(const vib_config& config) : cfg_(config) {
    require_config(cfg_.input_dim >= 1, "vib_config: input_dim must be >= 1");
    require_config(cfg_.latent_dim >= 1, "vib_config: latent_dim must be >= 1");
    require_config(cfg_.input_dim <= max_dimension && cfg_.latent_dim <= max_dimension,
                   "vib_config: input_dim and latent_dim must be <= max_dimension");
    require_config(std::isfinite(cfg_.logvar_min) && std::isfinite(cfg_.logvar_max) &&
                       cfg_.logvar_min < cfg_.logvar_max,
                   "vib_config: logvar_min < logvar_max, both finite, is required");
    rng gen(cfg_.seed);
    p_.w_mu = xavier(gen);
    p_.w_logvar = xavier(gen);
    p_.b_mu = vector_type::Zero(idx(cfg_.latent_dim));
    p_.b_logvar = vector_type::Zero(idx(cfg_.latent_dim));
  }

  [[nodiscard]] const vib_config& config() const noexcept { return cfg_; }
  [[nodiscard]] std::size_t input_dim() const noexcept { return cfg_.input_dim; }
  [[nodiscard]] std::size_t latent_dim() const noexcept { return cfg_.latent_dim; }
  [[nodiscard]] const vib_parameters<T>& parameters() const noexcept { return p_; }

  /// \brief Replaces the parameters (shapes checked → `dimension_mismatch`; finite values
  /// required → `non_finite_input`). Not thread-safe.
  void set_parameters(vib_parameters<T> p) {
    check_params("parameters", p);
    p_ = std::move(p);
  }

  /// \brief Training-mode forward: Z = M + σ ⊙ E with E drawn from `gen` (row-major order).
  [[nodiscard]] vib_forward_result<T> forward(const matrix_cref<T>& x, rng& gen) const {
    check_input(x);
    vib_forward_result<T> r = encode_batch(x);
    r.eps.resize(r.mu.rows(), r.mu.cols());
    for (Eigen::Index i = 0; i < r.eps.size(); ++i) r.eps.data()[i] = gen.normal<T>();
    finish(r);
    return r;
  }

  /// \brief Forward with caller-given noise E `[B, d_z]` (e.g. held fixed for a gradient check).
  [[nodiscard]] vib_forward_result<T> forward(const matrix_cref<T>& x,
                                              const matrix_cref<T>& eps) const {
    check_input(x);
    require_dimension("eps.rows()", static_cast<std::size_t>(eps.rows()),
                      static_cast<std::size_t>(x.rows()));
    require_dimension("eps.cols()", static_cast<std::size_t>(eps.cols()), cfg_.latent_dim);
    require_finite_fast("eps", eps);
    vib_forward_result<T> r = encode_batch(x);
    r.eps = eps;
    finish(r);
    return r;
  }

  /// \brief Deterministic (evaluation) forward: E = 0, Z = M.
  [[nodiscard]] vib_forward_result<T> forward(const matrix_cref<T>& x) const {
    check_input(x);
    vib_forward_result<T> r = encode_batch(x);
    r.eps = row_matrix<T>::Zero(r.mu.rows(), r.mu.cols());
    finish(r);
    return r;
  }

  /// \brief Deterministic encoding of one vector: μ(x) = W_μ x + b_μ.
  [[nodiscard]] std::vector<T> encode(std::span<const T> x) const {
    require_dimension("x.size()", x.size(), cfg_.input_dim);
    require_finite("x", x);
    const Eigen::Map<const vector_type> xv(x.data(), idx(x.size()));
    std::vector<T> out(cfg_.latent_dim);
    Eigen::Map<vector_type>(out.data(), idx(out.size())).noalias() = p_.w_mu * xv + p_.b_mu;
    return out;
  }

  /// \brief Analytic gradients of L = L_down(Z) + β · (1/B) Σ_b KL_b; `grad_z` = ∂L_down/∂Z.
  /// `x` and `fwd` must be the input and result of the same forward pass.
  [[nodiscard]] vib_gradients<T> backward(const matrix_cref<T>& x, const vib_forward_result<T>& fwd,
                                          const matrix_cref<T>& grad_z, T beta) const {
    check_input(x);
    const auto B = static_cast<std::size_t>(x.rows());
    const auto check_fwd = [&](const char* name, const row_matrix<T>& m) {
      require_dimension(std::string("fwd.").append(name).append(".rows()"),
                        static_cast<std::size_t>(m.rows()), B);
      require_dimension(std::string("fwd.").append(name).append(".cols()"),
                        static_cast<std::size_t>(m.cols()), cfg_.latent_dim);
    };
    check_fwd("mu", fwd.mu);
    check_fwd("logvar", fwd.logvar);
    check_fwd("logvar_raw", fwd.logvar_raw);
    check_fwd("eps", fwd.eps);
    require_dimension("grad_z.rows()", static_cast<std::size_t>(grad_z.rows()), B);
    require_dimension("grad_z.cols()", static_cast<std::size_t>(grad_z.cols()), cfg_.latent_dim);
    require_finite_fast("grad_z", grad_z);
    (void)fwd.kl_loss(beta);  // validates beta

    const T k = beta / static_cast<T>(B);
    const T lo = static_cast<T>(cfg_.logvar_min), hi = static_cast<T>(cfg_.logvar_max);
    row_matrix<T> g_mu = grad_z + k * fwd.mu;
    row_matrix<T> g_lv(fwd.mu.rows(), fwd.mu.cols());
    for (Eigen::Index b = 0; b < g_lv.rows(); ++b) {
      for (Eigen::Index j = 0; j < g_lv.cols(); ++j) {
        const T raw = fwd.logvar_raw(b, j);
        const T lv = fwd.logvar(b, j);
        g_lv(b, j) = (raw >= lo && raw <= hi)
                         ? T(0.5) * (grad_z(b, j) * std::exp(T(0.5) * lv) * fwd.eps(b, j) +
                                     k * std::expm1(lv))
                         : T(0);
      }
    }
    vib_gradients<T> g;
    g.params.w_mu.noalias() = g_mu.transpose() * x;
    g.params.w_logvar.noalias() = g_lv.transpose() * x;
    g.params.b_mu = g_mu.colwise().sum().transpose();
    g.params.b_logvar = g_lv.colwise().sum().transpose();
    g.x.noalias() = g_mu * p_.w_mu;
    g.x.noalias() += g_lv * p_.w_logvar;
    return g;
  }

  /// \brief One SGD step θ ← θ − lr · ∂θ (lr finite and ≥ 0). Not thread-safe.
  void apply_gradients(const vib_gradients<T>& g, T lr) {
    if (!(std::isfinite(lr) && lr >= T(0))) {
      std::ostringstream os;
      os << "invalid argument: learning rate = " << lr << ", expected a finite value >= 0";
      throw invalid_argument(os.str());
    }
    check_params("gradients", g.params);
    p_.w_mu -= lr * g.params.w_mu;
    p_.b_mu -= lr * g.params.b_mu;
    p_.w_logvar -= lr * g.params.w_logvar;
    p_.b_logvar -= lr * g.params.b_logvar;
  }

 private:
  static Eigen::Index idx(std::size_t n) noexcept { return static_cast<Eigen::Index>(n); }

  row_matrix<T> xavier(rng& gen) const {
    const double a = std::sqrt(6.0 / static_cast<double>(cfg_.input_dim + cfg_.latent_dim));
    row_matrix<T> w(idx(cfg_.latent_dim), idx(cfg_.input_dim));
    for (Eigen::Index i = 0; i < w.size(); ++i) w.data()[i] = gen.uniform<T>(T(-a), T(a));
    return w;
  }

  void check_input(const matrix_cref<T>& x) const {
    require_non_empty("x.rows() (batch)", static_cast<std::size_t>(x.rows()));
    require_dimension("x.cols()", static_cast<std::size_t>(x.cols()), cfg_.input_dim);
    require_finite_fast("x", x);
  }

  // Vectorised scan first; the element-wise scan that names the bad entry runs only on failure.
  static void require_finite_fast(const char* what, const matrix_cref<T>& m) {
    const auto cols = static_cast<std::size_t>(m.cols());
    for (Eigen::Index r = 0; r < m.rows(); ++r) {
      if (!kernels::all_finite(m.data() + r * m.outerStride(), cols)) {
        require_finite(what, m.data(), static_cast<std::size_t>(m.rows()), cols, m.outerStride());
      }
    }
  }

  void check_params(const char* what, const vib_parameters<T>& p) const {
    const auto shape = [&](const char* name, Eigen::Index rows, Eigen::Index cols, std::size_t er,
                           std::size_t ec) {
      require_dimension(std::string(what).append(".").append(name).append(".rows()"),
                        static_cast<std::size_t>(rows), er);
      require_dimension(std::string(what).append(".").append(name).append(".cols()"),
                        static_cast<std::size_t>(cols), ec);
    };
    shape("w_mu", p.w_mu.rows(), p.w_mu.cols(), cfg_.latent_dim, cfg_.input_dim);
    shape("b_mu", p.b_mu.rows(), 1, cfg_.latent_dim, 1);
    shape("w_logvar", p.w_logvar.rows(), p.w_logvar.cols(), cfg_.latent_dim, cfg_.input_dim);
    shape("b_logvar", p.b_logvar.rows(), 1, cfg_.latent_dim, 1);
    const auto finite = [&](const char* name, const T* d, Eigen::Index n) {
      require_finite(std::string(what).append(".").append(name),
                     std::span<const T>(d, static_cast<std::size_t>(n)));
    };
    finite("w_mu", p.w_mu.data(), p.w_mu.size());
    finite("b_mu", p.b_mu.data(), p.b_mu.size());
    finite("w_logvar", p.w_logvar.data(), p.w_logvar.size());
    finite("b_logvar", p.b_logvar.data(), p.b_logvar.size());
  }

  // M and Λ (raw and clamped) by two GEMMs.
  vib_forward_result<T> encode_batch(const matrix_cref<T>& x) const {
    vib_forward_result<T> r;
    r.mu.noalias() = x * p_.w_mu.transpose();
    r.mu.rowwise() += p_.b_mu.transpose();
    r.logvar_raw.noalias() = x * p_.w_logvar.transpose();
    r.logvar_raw.rowwise() += p_.b_logvar.transpose();
    r.logvar = r.logvar_raw.cwiseMax(static_cast<T>(cfg_.logvar_min))
                   .cwiseMin(static_cast<T>(cfg_.logvar_max));
    return r;
  }

  // Z = M + exp(½Λ) ⊙ E and the per-sample KL ½ Σ_j (μ² + expm1(Λ) − Λ).
  static void finish(vib_forward_result<T>& r) {
    const auto lv = r.logvar.array();
    r.z = (r.mu.array() + (T(0.5) * lv).exp() * r.eps.array()).matrix();
    const auto em1 = lv.unaryExpr([](T v) { return std::expm1(v); });
    r.kl = (T(0.5) * (r.mu.array().square() + em1 - lv)).rowwise().sum().matrix();
    r.kl_mean = r.kl.mean();
  }

  vib_config cfg_;
  vib_parameters<T> p_;
};

}  // namespace ruvector::attention
// ---- end ruvector/attention/info_bottleneck/bottleneck.hpp ----
// ---- begin ruvector/attention/info_bottleneck/compression.hpp ----
/// \file info_bottleneck/compression.hpp
/// \brief Attention-weight compression in the information-bottleneck sense: trade the
/// information carried by an attention distribution (its divergence from uniform) against
/// sharpness, by temperature scaling (Hinton et al. 2015, "Distilling the Knowledge in a Neural
/// Network") and by top-mass truncation (the nucleus of Holtzman et al. 2020).
///
/// For weights w ≥ 0 (normalised by their sum, p = w / Σ w) of n keys:
///
///     tempered:   w'_i = softmax_i(log w_i / T) = p_i^{1/T} / Σ_j p_j^{1/T}      (T > 0)
///     top-mass:   K = the smallest set of keys, taken in decreasing p_i, with Σ_{i∈K} p_i ≥ m;
///                 w'_i = p_i / Σ_{j∈K} p_j for i ∈ K, 0 otherwise                  (0 < m ≤ 1)
///     cost:       H(w') = −Σ w'_i log w'_i  (nats, 0 log 0 = 0),
///                 KL(w' ‖ uniform_n) = ln n − H(w')  (the information w' carries about which
///                 key is attended; 0 for uniform, ln n for one-hot)
///
/// T = 1 is the identity (returned exactly as p, without an exp/log round trip); T > 1 flattens
/// towards the uniform distribution over the support of p (T → ∞); T < 1 sharpens towards a
/// one-hot at the arg-max (T → 0; tied maxima share the mass equally). Zero weights stay zero
/// for every T (log 0 = −inf). The tempered logits are shifted by log max_j w_j before the
/// max-subtracted softmax, so the maximum maps to exactly 0 and any T > 0 — however small — is
/// stable. H(w') is non-decreasing in T.
///
/// Top-mass ties are broken by the lower key index; m = 1 keeps the whole support (no
/// truncation, whatever rounding the cumulative sum picks up). `compress_attention` applies the
/// temperature first, then the truncation.
///
/// Errors: empty weights or a zero sum, a negative weight, T ≤ 0 (or non-finite), or m outside
/// (0, 1] → `invalid_argument`; NaN/Inf weights → `non_finite_input`; a weight matrix whose
/// result view has the wrong shape → `dimension_mismatch`.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <numeric>
#include <span>
#include <sstream>
#include <vector>

// ---- begin ruvector/attention/info_bottleneck/kl_divergence.hpp ----
/// \file info_bottleneck/kl_divergence.hpp
/// \brief Divergences used by the information-bottleneck family: Gaussian KL terms of the
/// variational information bottleneck (Alemi et al. 2017; Kingma & Welling 2014, App. B),
/// categorical KL and the Jensen–Shannon divergence (Lin 1991; Endres & Schindelin 2003).
///
/// Formulas (natural logarithms throughout; σ² = exp(log σ²)):
///
///     KL(N(μ, diag σ²) ‖ N(0, I))   = ½ Σ_i (μ_i² + σ_i² − log σ_i² − 1)
///       ∂/∂μ_i = μ_i,   ∂/∂(log σ_i²) = ½ (σ_i² − 1)
///     KL(N(μ₁, diag σ₁²) ‖ N(μ₂, diag σ₂²))
///                                   = ½ Σ_i (log σ₂² − log σ₁² + (σ₁² + (μ₁ − μ₂)²) / σ₂² − 1)
///     KL(p ‖ q)                     = Σ_i p_i log(p_i / max(q_i, eps)),   0 · log 0 = 0
///     JS(p, q)                      = ½ KL(p ‖ m) + ½ KL(q ‖ m),   m = ½ (p + q),  0 ≤ JS ≤ ln 2
///     JS distance                   = √JS  (a metric; Endres & Schindelin 2003)
///
/// Numerical conventions:
/// - Gaussian terms are evaluated as expm1(x) − x (x = log σ² or log σ₁² − log σ₂²), which is
///   ≥ 0 term by term and exact to rounding near x = 0 where e^x − x − 1 would cancel. KL of a
///   distribution with itself is exactly 0. Large log-variances may overflow to +inf (float:
///   log σ² ≳ 88); inputs must be finite.
/// - The unit-Gaussian KL is an xsimd reduction in T with four accumulators (float: expect a
///   relative rounding error of about √(n / 4W) · 2⁻²⁴). The other divergences accumulate in
///   double.
/// - Categorical inputs must be finite and non-negative with a positive sum; they are normalised
///   by their sums (so unnormalised histograms are accepted). In KL(p ‖ q) each q_i is clamped
///   to ≥ eps (default `categorical_kl_eps<T>` = 1e-12), so a q that misses part of p's support
///   gives a large finite value (≈ p_i · log(p_i / eps)); eps = 0 gives +inf instead. Terms with
///   p_i = 0 contribute 0. The result is clamped to ≥ 0 (rounding and the eps clamp can otherwise
///   leave ~−1e-16). JS needs no eps (m_i > 0 wherever p_i or q_i is) and is clamped to
///   [0, ln 2]; ln 2 is reached exactly by distributions with disjoint supports.
/// - Free functions take `std::span<const T>`; with other containers name T explicitly, e.g.
///   `kl_to_standard_normal<float>(mu, logvar)` with two `std::vector<float>`.
/// - Errors: sizes that differ → `dimension_mismatch`; empty input, negative probability, zero
///   sum or negative eps → `invalid_argument`; NaN/Inf → `non_finite_input`. Every message names
///   the argument and index.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <numbers>
#include <span>
#include <sstream>
#include <string>
#include <string_view>


RUVECTOR_ATTENTION_KERNEL_WARNINGS_BEGIN

namespace ruvector::attention {

/// \brief Default lower clamp of q_i in `kl_categorical`.
template <attention_scalar T>
inline constexpr T categorical_kl_eps = T(1e-12);

namespace detail {

/// Throws unless `a` and `b` have the same, non-zero size.
inline void require_same_size(std::string_view a_name, std::size_t a, std::string_view b_name,
                              std::size_t b) {
  require_non_empty(a_name, a);
  if (a != b) {
    std::ostringstream os;
    os << "dimension mismatch: " << b_name << ".size() is " << b << ", expected " << a
       << " (the size of " << a_name << ")";
    throw dimension_mismatch(os.str());
  }
}

/// Validates a (possibly unnormalised) probability vector and returns its sum (in double).
template <class T>
double require_distribution(std::string_view what, std::span<const T> p) {
  require_finite(what, p);
  double s = 0.0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p[i] < T(0)) {
      std::ostringstream os;
      os << "invalid argument: " << what << "[" << i << "] = " << p[i]
         << " is negative (probabilities must be >= 0)";
      throw invalid_argument(os.str());
    }
    s += static_cast<double>(p[i]);
  }
  if (!(s > 0.0)) {
    std::ostringstream os;
    os << "invalid argument: " << what << " sums to " << s << ", expected a positive sum";
    throw invalid_argument(os.str());
  }
  return s;
}

/// ½ Σ (μ² + expm1(lv) − lv) over n values (xsimd, 4 accumulators; no validation).
template <class T, class Arch = kernels::default_arch>
[[nodiscard]] T kl_unit_sum(const T* mu, const T* lv, std::size_t n) noexcept {
  using B = kernels::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const auto term = [](const B& m, const B& l) { return xsimd::fma(m, m, xsimd::expm1(l) - l); };
  B acc0(T(0)), acc1(T(0)), acc2(T(0)), acc3(T(0));
  std::size_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    acc0 += term(B::load_unaligned(mu + i), B::load_unaligned(lv + i));
    acc1 += term(B::load_unaligned(mu + i + W), B::load_unaligned(lv + i + W));
    acc2 += term(B::load_unaligned(mu + i + 2 * W), B::load_unaligned(lv + i + 2 * W));
    acc3 += term(B::load_unaligned(mu + i + 3 * W), B::load_unaligned(lv + i + 3 * W));
  }
  for (; i + W <= n; i += W) acc0 += term(B::load_unaligned(mu + i), B::load_unaligned(lv + i));
  T tail = T(0);
  for (; i < n; ++i) tail += mu[i] * mu[i] + (std::expm1(lv[i]) - lv[i]);
  return T(0.5) * (kernels::detail::hsum((acc0 + acc1) + (acc2 + acc3)) + tail);
}

/// Σ_i a_i log(a_i / b_i) over normalised a, b with 0·log 0 = 0 (b_i > 0 where a_i > 0).
inline double kl_terms(double a, double b) noexcept { return a > 0.0 ? a * std::log(a / b) : 0.0; }

}  // namespace detail

/// \brief KL(N(μ, diag exp(log σ²)) ‖ N(0, I)) = ½ Σ (μ² + σ² − log σ² − 1).
template <attention_scalar T>
[[nodiscard]] T kl_to_standard_normal(std::span<const T> mu, std::span<const T> logvar) {
  detail::require_same_size("mu", mu.size(), "logvar", logvar.size());
  require_finite("mu", mu);
  require_finite("logvar", logvar);
  return detail::kl_unit_sum(mu.data(), logvar.data(), mu.size());
}

/// \brief Gradients of `kl_to_standard_normal`: grad_mu = μ, grad_logvar = ½ (σ² − 1).
template <attention_scalar T>
void kl_to_standard_normal_grad(std::span<const T> mu, std::span<const T> logvar,
                                std::span<T> grad_mu, std::span<T> grad_logvar) {
  detail::require_same_size("mu", mu.size(), "logvar", logvar.size());
  detail::require_same_size("mu", mu.size(), "grad_mu", grad_mu.size());
  detail::require_same_size("mu", mu.size(), "grad_logvar", grad_logvar.size());
  require_finite("mu", mu);
  require_finite("logvar", logvar);
  for (std::size_t i = 0; i < mu.size(); ++i) {
    grad_mu[i] = mu[i];
    grad_logvar[i] = T(0.5) * std::expm1(logvar[i]);
  }
}

/// \brief KL(N(μ₁, diag σ₁²) ‖ N(μ₂, diag σ₂²)) from means and log-variances.
template <attention_scalar T>
[[nodiscard]] T kl_diag_gaussians(std::span<const T> mu1, std::span<const T> logvar1,
                                  std::span<const T> mu2, std::span<const T> logvar2) {
  detail::require_same_size("mu1", mu1.size(), "logvar1", logvar1.size());
  detail::require_same_size("mu1", mu1.size(), "mu2", mu2.size());
  detail::require_same_size("mu1", mu1.size(), "logvar2", logvar2.size());
  require_finite("mu1", mu1);
  require_finite("logvar1", logvar1);
  require_finite("mu2", mu2);
  require_finite("logvar2", logvar2);
  // ½ Σ [expm1(δ) − δ + (μ₁ − μ₂)² e^{−log σ₂²}],  δ = log σ₁² − log σ₂².
  double s = 0.0;
  for (std::size_t i = 0; i < mu1.size(); ++i) {
    const double d = static_cast<double>(logvar1[i]) - static_cast<double>(logvar2[i]);
    const double dm = static_cast<double>(mu1[i]) - static_cast<double>(mu2[i]);
    s += (std::expm1(d) - d) + dm * dm * std::exp(-static_cast<double>(logvar2[i]));
  }
  return static_cast<T>(0.5 * s);
}

/// \brief Shannon entropy −Σ p_i log p_i (nats) of p normalised by its sum; 0·log 0 = 0.
template <attention_scalar T>
[[nodiscard]] T categorical_entropy(std::span<const T> p) {
  require_non_empty("p", p.size());
  const double sp = detail::require_distribution("p", p);
  double h = 0.0;
  for (const T v : p) h -= detail::kl_terms(static_cast<double>(v) / sp, 1.0);
  return static_cast<T>(h > 0.0 ? h : 0.0);
}

/// \brief KL(p ‖ q) = Σ p_i log(p_i / max(q_i, eps)) of sum-normalised p, q (see the file
/// comment for the eps convention).
template <attention_scalar T>
[[nodiscard]] T kl_categorical(std::span<const T> p, std::span<const T> q,
                               T eps = categorical_kl_eps<T>) {
  detail::require_same_size("p", p.size(), "q", q.size());
  require_argument(eps >= T(0) && std::isfinite(eps),
                   "kl_categorical: eps must be finite and >= 0");
  const double sp = detail::require_distribution("p", p);
  const double sq = detail::require_distribution("q", q);
  double s = 0.0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    const double pi = static_cast<double>(p[i]) / sp;
    if (!(pi > 0.0)) continue;
    const double qi = std::max(static_cast<double>(q[i]) / sq, static_cast<double>(eps));
    if (!(qi > 0.0)) return std::numeric_limits<T>::infinity();
    s += pi * std::log(pi / qi);
  }
  return static_cast<T>(s > 0.0 ? s : 0.0);
}

/// \brief Jensen–Shannon divergence ½ KL(p ‖ m) + ½ KL(q ‖ m), m = ½(p + q), in nats; in
/// [0, ln 2]; symmetric.
template <attention_scalar T>
[[nodiscard]] T js_divergence(std::span<const T> p, std::span<const T> q) {
  detail::require_same_size("p", p.size(), "q", q.size());
  const double sp = detail::require_distribution("p", p);
  const double sq = detail::require_distribution("q", q);
  double s = 0.0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    const double pi = static_cast<double>(p[i]) / sp;
    const double qi = static_cast<double>(q[i]) / sq;
    const double mi = 0.5 * (pi + qi);
    s += detail::kl_terms(pi, mi) + detail::kl_terms(qi, mi);
  }
  s *= 0.5;
  const double ln2 = std::numbers::ln2;
  return static_cast<T>(s < 0.0 ? 0.0 : (s > ln2 ? ln2 : s));
}

/// \brief Jensen–Shannon distance √JS(p, q) (a metric on distributions), in √nats.
template <attention_scalar T>
[[nodiscard]] T js_distance(std::span<const T> p, std::span<const T> q) {
  return std::sqrt(js_divergence(p, q));
}

}  // namespace ruvector::attention

RUVECTOR_ATTENTION_KERNEL_WARNINGS_END
// ---- end ruvector/attention/info_bottleneck/kl_divergence.hpp ----

namespace ruvector::attention {

/// \brief Per-call options of `compress_attention`.
template <attention_scalar T>
struct compression_options {
  T temperature = T(1);  ///< T > 0; 1 = unchanged
  T top_mass = T(1);     ///< m ∈ (0, 1]; 1 = no truncation
};

/// \brief Compressed weights and their information cost.
template <attention_scalar T>
struct compression_result {
  std::vector<T> weights;  ///< w' (sums to 1; zeros for dropped keys)
  T entropy_in = T(0);     ///< H(p) of the sum-normalised input, nats
  T entropy = T(0);        ///< H(w'), nats
  T kl_to_uniform = T(0);  ///< ln n − H(w') = KL(w' ‖ uniform_n), nats
  T retained_mass = T(1);  ///< mass (before renormalisation) kept by the truncation
  std::size_t kept = 0;    ///< number of non-zero entries of w'
};

namespace detail {

inline void require_temperature(double t) {
  if (!(std::isfinite(t) && t > 0.0)) {
    std::ostringstream os;
    os << "invalid argument: temperature = " << t << ", expected a finite value > 0";
    throw invalid_argument(os.str());
  }
}

inline void require_top_mass(double m) {
  if (!(std::isfinite(m) && m > 0.0 && m <= 1.0)) {
    std::ostringstream os;
    os << "invalid argument: top_mass = " << m << ", expected a value in (0, 1]";
    throw invalid_argument(os.str());
  }
}

/// −Σ w log w (nats, double accumulation, 0 log 0 = 0) of an already normalised vector.
template <class T>
[[nodiscard]] double entropy_of(const T* w, std::size_t n) noexcept {
  double h = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const double v = static_cast<double>(w[i]);
    if (v > 0.0) h -= v * std::log(v);
  }
  return h > 0.0 ? h : 0.0;
}

/// Sum-normalised copy (validated distribution with sum `s`) into w.
template <class T>
void normalise_into(std::span<const T> in, double s, std::vector<T>& w) {
  w.resize(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) w[i] = static_cast<T>(static_cast<double>(in[i]) / s);
}

/// In place: p ← softmax((log p − log max p) / T); p normalised, some p_i > 0.
template <class T>
void temper_inplace(std::vector<T>& p, T temperature) noexcept {
  if (temperature == T(1)) return;
  const T pmax = *std::max_element(p.begin(), p.end());
  const T lmax = std::log(pmax);
  for (auto& v : p)
    v = v > T(0) ? (std::log(v) - lmax) / temperature : -std::numeric_limits<T>::infinity();
  kernels::softmax(p.data(), p.size());
}

/// In place: keep the smallest top set holding mass ≥ m, renormalise; returns (kept mass).
template <class T>
double truncate_inplace(std::vector<T>& p, double m) {
  if (m >= 1.0) return 1.0;
  std::vector<std::size_t> order(p.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return p[a] > p[b]; });
  double cum = 0.0;
  std::size_t k = 0;
  while (k < order.size() && p[order[k]] > T(0)) {
    cum += static_cast<double>(p[order[k]]);
    ++k;
    if (cum >= m) break;
  }
  for (std::size_t r = k; r < order.size(); ++r) p[order[r]] = T(0);
  for (std::size_t r = 0; r < k; ++r)
    p[order[r]] = static_cast<T>(static_cast<double>(p[order[r]]) / cum);
  return cum;
}

template <class T>
void finish_result(compression_result<T>& r) {
  const std::size_t n = r.weights.size();
  r.entropy = static_cast<T>(entropy_of(r.weights.data(), n));
  const double kl = std::log(static_cast<double>(n)) - static_cast<double>(r.entropy);
  r.kl_to_uniform = static_cast<T>(kl > 0.0 ? kl : 0.0);
  r.kept = static_cast<std::size_t>(
      std::count_if(r.weights.begin(), r.weights.end(), [](T v) { return v > T(0); }));
}

}  // namespace detail

/// \brief Temperature + top-mass compression of one weight vector (temperature first).
template <attention_scalar T>
[[nodiscard]] compression_result<T> compress_attention(std::span<const T> weights,
                                                       const compression_options<T>& options) {
  require_non_empty("weights", weights.size());
  detail::require_temperature(static_cast<double>(options.temperature));
  detail::require_top_mass(static_cast<double>(options.top_mass));
  const double s = detail::require_distribution("weights", weights);
  compression_result<T> r;
  detail::normalise_into(weights, s, r.weights);
  r.entropy_in = static_cast<T>(detail::entropy_of(r.weights.data(), r.weights.size()));
  detail::temper_inplace(r.weights, options.temperature);
  r.retained_mass =
      static_cast<T>(detail::truncate_inplace(r.weights, static_cast<double>(options.top_mass)));
  detail::finish_result(r);
  return r;
}

/// \brief w' = softmax(log w / T) with its information cost (see the file comment).
template <attention_scalar T>
[[nodiscard]] compression_result<T> temper_weights(std::span<const T> weights, T temperature) {
  return compress_attention(weights, compression_options<T>{temperature, T(1)});
}

/// \brief Keeps the smallest top set of weights holding mass ≥ `mass`, renormalised.
template <attention_scalar T>
[[nodiscard]] compression_result<T> top_mass_truncate(std::span<const T> weights, T mass) {
  return compress_attention(weights, compression_options<T>{T(1), mass});
}

/// \brief Row-wise `compress_attention` of a weight matrix (rows = queries) into `out` (same
/// shape); returns the mean KL(w'_row ‖ uniform) over rows (nats).
template <attention_scalar T>
T compress_rows(const matrix_cref<T>& weights, matrix_ref<T> out,
                const compression_options<T>& options) {
  require_dimension("out.rows()", static_cast<std::size_t>(out.rows()),
                    static_cast<std::size_t>(weights.rows()));
  require_dimension("out.cols()", static_cast<std::size_t>(out.cols()),
                    static_cast<std::size_t>(weights.cols()));
  require_non_empty("weights.rows()", static_cast<std::size_t>(weights.rows()));
  require_non_empty("weights.cols()", static_cast<std::size_t>(weights.cols()));
  double kl = 0.0;
  for (Eigen::Index i = 0; i < weights.rows(); ++i) {
    const auto r = compress_attention(std::span<const T>(weights.data() + i * weights.outerStride(),
                                                         static_cast<std::size_t>(weights.cols())),
                                      options);
    std::copy(r.weights.begin(), r.weights.end(), &out(i, 0));
    kl += static_cast<double>(r.kl_to_uniform);
  }
  return static_cast<T>(kl / static_cast<double>(weights.rows()));
}

}  // namespace ruvector::attention
// ---- end ruvector/attention/info_bottleneck/compression.hpp ----
// ---- end ruvector/attention/info_bottleneck.hpp ----
// ---- begin ruvector/attention/info_geometry.hpp ----
/// \file info_geometry.hpp
/// \brief Entry header of the information-geometry family (theory 4): the categorical Fisher
/// information as a matrix-free operator, the empirical Fisher, damped conjugate gradient,
/// natural-gradient steps and the Fisher–Rao distance.

// ---- begin ruvector/attention/info_geometry/fisher.hpp ----
/// \file info_geometry/fisher.hpp
/// \brief Fisher information operators and the Fisher–Rao distance of categorical distributions.
///
/// - `categorical_fisher<T>`: the Fisher information of a categorical distribution
///   p = softmax(θ) with respect to its logits θ (Amari 1998, "Natural gradient works efficiently
///   in learning"; Martens 2020, "New insights and perspectives on the natural gradient method"):
///
///       F = diag(p) − p pᵀ            (the Jacobian ∂p/∂θ, and the Hessian of log Σ exp θ)
///
///   applied matrix-free in O(n) as  F v = p ⊙ v − p (pᵀv).  F is symmetric PSD, F·1 = 0 (a
///   constant shift of the logits leaves p unchanged), and its rank is |supp p| − 1. The diagonal
///   approximation is diag(p − p²). `solve` applies (F + λI)⁻¹ in closed form (Sherman–Morrison,
///   see below) and, for λ = 0, the Moore–Penrose pseudo-inverse F⁺.
/// - `empirical_fisher<T>`: F = (1/N) Gᵀ G for per-sample gradients G (N × P, one row per sample),
///   applied matrix-free as (1/N) Gᵀ (G v) in O(N·P) without forming the P × P matrix.
/// - `fisher_rao_distance(p, q)`: the geodesic distance of the Fisher metric on the simplex,
///
///       d_FR(p, q) = 2 · arccos( Σ_i √(p_i q_i) )   (Rao 1945; Amari & Nagaoka 2000, §2.5)
///
///   Convention — the factor 2: the map p ↦ 2√p is an isometry from the simplex with the Fisher
///   metric Σ_i dp_i² / p_i onto the positive orthant of the sphere of radius 2, so geodesic
///   distances are 2 × the angle between √p and √q. This is the distance of *the same* metric
///   whose logit-coordinate matrix is F above: d_FR(softmax(θ), softmax(θ + εv))² = ε² vᵀFv +
///   O(ε³). Texts that omit the 2 (the "Bhattacharyya angle") use the unit sphere, i.e. ¼ × the
///   Fisher metric. Range: [0, π]; π exactly for disjoint supports.
///
/// Numerical conventions:
/// - Probability vectors passed to a validated entry point must be finite, non-negative and sum to
///   1 within `simplex_tolerance<T>(n) = max(√ε, 4·n·ε)` (ε = machine epsilon of T; float:
///   3.5e-4 for n ≤ 720, double: 1.5e-8 for n ≤ 10⁷). The bound 4·n·ε covers the rounding of a
///   softmax computed and summed in T. Inputs are used as given (not renormalised) by the Fisher
///   operator; the distance normalises both inputs (see `fisher_rao_distance`).
/// - Logits may hold −inf (a masked class, p_i = 0); NaN and +inf throw `non_finite_input`, and
///   all −inf throws `invalid_argument`.
/// - `apply` checks sizes only (it is the hot path of conjugate gradient); values are validated
///   once, at construction. `apply` writes into a caller-provided `y` of size n that must not
///   alias `x`.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <numbers>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>


namespace ruvector::attention {

/// \brief Tolerance on |Σ p_i − 1| accepted for a probability vector of size n:
/// max(√ε, 4·n·ε) with ε the machine epsilon of T.
template <attention_scalar T>
[[nodiscard]] T simplex_tolerance(std::size_t n) noexcept {
  constexpr T eps = std::numeric_limits<T>::epsilon();
  return std::max(std::sqrt(eps), T(4) * static_cast<T>(n) * eps);
}

namespace detail {

/// Throws unless `p` is a non-empty, finite, non-negative vector summing to 1 within
/// `simplex_tolerance<T>(n)`; messages name `what`, the index and the value.
template <attention_scalar T>
void require_probability_vector(std::string_view what, std::span<const T> p) {
  require_non_empty(what, p.size());
  require_at_most(what, p.size(), max_sequence_length);
  require_finite(what, p);
  double sum = 0.0;  // the check itself must not add rounding of its own
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p[i] < T(0)) {
      std::ostringstream os;
      os << "invalid argument: " << what << "[" << i << "] = " << p[i]
         << ", expected a probability >= 0";
      throw invalid_argument(os.str());
    }
    sum += static_cast<double>(p[i]);
  }
  const double tol = static_cast<double>(simplex_tolerance<T>(p.size()));
  if (!(std::abs(sum - 1.0) <= tol)) {
    std::ostringstream os;
    os << "invalid argument: " << what << " sums to " << sum << ", expected 1 within " << tol;
    throw invalid_argument(os.str());
  }
}

/// y = p ⊙ v − p (pᵀv) (no validation; y must not alias v).
template <class T>
void categorical_fisher_product(const T* p, const T* v, T* y, std::size_t n) noexcept {
  const T pv = kernels::dot(p, v, n);
  for (std::size_t i = 0; i < n; ++i) y[i] = p[i] * (v[i] - pv);
}

}  // namespace detail

// ================================================================================================
// Categorical (softmax) Fisher information
// ================================================================================================

/// \brief The Fisher information F = diag(p) − ppᵀ of a categorical distribution in its logit
/// coordinates, as a matrix-free symmetric PSD operator (models `linear_operator`).
///
/// Immutable after construction; safe to share across threads.
template <attention_scalar T>
class categorical_fisher {
 public:
  using value_type = T;

  /// From a probability vector (validated: see the file comment).
  explicit categorical_fisher(std::span<const T> probabilities)
      : p_(probabilities.begin(), probabilities.end()) {
    detail::require_probability_vector<T>("probabilities", probabilities);
    delta_ = compute_delta(p_);
  }

  /// From logits: p = softmax(θ) (max-subtracted, kernels::softmax). −inf entries are masked
  /// classes (p_i = 0); NaN / +inf throw `non_finite_input`; all −inf throws `invalid_argument`.
  [[nodiscard]] static categorical_fisher from_logits(std::span<const T> logits) {
    require_non_empty("logits", logits.size());
    require_at_most("logits", logits.size(), max_sequence_length);
    bool any_finite = false;
    for (std::size_t i = 0; i < logits.size(); ++i) {
      if (std::isnan(logits[i]) || logits[i] == std::numeric_limits<T>::infinity()) {
        detail::throw_non_finite("logits", i, logits[i]);
      }
      any_finite = any_finite || std::isfinite(logits[i]);
    }
    require_argument(any_finite, "logits are all -inf (every class masked)");
    std::vector<T> p(logits.begin(), logits.end());
    kernels::softmax(p.data(), p.size());
    return categorical_fisher(std::move(p), unchecked_tag{});
  }

  /// Number of classes n.
  [[nodiscard]] std::size_t size() const noexcept { return p_.size(); }

  /// The probabilities p.
  [[nodiscard]] std::span<const T> probabilities() const noexcept { return p_; }

  /// y = F x = p ⊙ x − p (pᵀx), O(n). Throws `dimension_mismatch` unless |x| = |y| = n; `y`
  /// must not alias `x`.
  void apply(std::span<const T> x, std::span<T> y) const {
    require_dimension("x.size()", x.size(), p_.size());
    require_dimension("y.size()", y.size(), p_.size());
    detail::categorical_fisher_product(p_.data(), x.data(), y.data(), p_.size());
  }

  /// vᵀ F v = Σ p_i v_i² − (pᵀv)² (the squared Fisher norm of a logit direction), computed as
  /// Σ p_i (v_i − pᵀv)², which is never negative.
  [[nodiscard]] T quadratic_form(std::span<const T> v) const {
    require_dimension("v.size()", v.size(), p_.size());
    const T pv = kernels::dot(p_.data(), v.data(), p_.size());
    T acc = T(0);
    for (std::size_t i = 0; i < p_.size(); ++i) acc += p_[i] * (v[i] - pv) * (v[i] - pv);
    return acc;
  }

  /// The explicit n × n matrix diag(p) − ppᵀ (O(n²) memory: for tests and small n).
  [[nodiscard]] row_matrix<T> matrix() const {
    const auto n = static_cast<Eigen::Index>(p_.size());
    const Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>> p(p_.data(), n);
    row_matrix<T> f = -(p * p.transpose());
    f.diagonal() += p;
    return f;
  }

  /// The diagonal approximation diag(F) = p − p² = p (1 − p).
  [[nodiscard]] std::vector<T> diagonal() const {
    std::vector<T> d(p_.size());
    for (std::size_t i = 0; i < p_.size(); ++i) d[i] = p_[i] * (T(1) - p_[i]);
    return d;
  }

  /// x = (F + λI)⁻¹ g in closed form, O(n).
  ///
  /// λ > 0 — Sherman–Morrison with M = diag(p + λ): (M − ppᵀ)⁻¹ = M⁻¹ + M⁻¹ppᵀM⁻¹ / (1 − pᵀM⁻¹p).
  /// With a_i = 1/(p_i + λ), w_i = p_i a_i = 1 − λ a_i and W = Σ w_i, the two scalars are
  /// pᵀM⁻¹g = Σg − λ Σ a_i g_i and 1 − pᵀM⁻¹p = δ + λW with δ = 1 − Σp (0 up to rounding), so
  ///
  ///     x_i = a_i g_i + w_i · (Σ_j g_j − λ Σ_j a_j g_j) / (δ + λW).
  ///
  /// Keeping δ makes x the exact inverse of the operator `apply` uses (the p stored, whose sum is
  /// 1 only to rounding), so CG and the closed form agree to the CG tolerance; δ is summed in
  /// double once, at construction. (δ + λW ≤ 0 would mean the stored p makes F + λI indefinite —
  /// then δ is dropped, i.e. Σp = 1 is assumed.) The w_i·Σg/(δ + λW) part is a (near-)constant
  /// shift along 1, the null direction of F: it does not change softmax(θ − ηx), and it vanishes
  /// for gradients of a loss of p (which satisfy 1ᵀg = 0). λ = 0 — the pseudo-inverse: with S =
  /// supp(p) and P_S the centring projector on S, F⁺ g = P_S diag(p_S)⁻¹ P_S g on S and 0 off S
  /// (the minimum-norm least-squares solution; this takes Σp = 1, the null space of F being exactly
  /// 1_S).
  ///
  /// Throws `invalid_argument` for λ < 0 or non-finite λ, `dimension_mismatch` unless
  /// |g| = |x| = n, `non_finite_input` for NaN/Inf in g. `x` must not alias `g`.
  void solve(std::span<const T> g, T damping, std::span<T> x) const {
    require_damping(damping);
    require_dimension("g.size()", g.size(), p_.size());
    require_dimension("x.size()", x.size(), p_.size());
    require_finite("g", g);
    const std::size_t n = p_.size();
    if (damping > T(0)) {
      // Three vectorised passes: a = 1/(p + λ) (into x), the sums (xsimd reductions), then
      // x_i = a_i (g_i + p_i c) with c = (Σg − λ Σ a g) / (δ + λW).
      T* xs = x.data();
      const T* ps = p_.data();
      for (std::size_t i = 0; i < n; ++i) xs[i] = T(1) / (ps[i] + damping);
      const T sum_w = kernels::dot(ps, xs, n);
      const T sum_ag = kernels::dot(xs, g.data(), n);
      const T sum_g = kernels::sum(g.data(), n);
      const T lw = damping * sum_w;
      const T exact = delta_ + lw;
      const T c = (sum_g - damping * sum_ag) / (exact > T(0) ? exact : lw);
      for (std::size_t i = 0; i < n; ++i) xs[i] *= g[i] + ps[i] * c;
      return;
    }
    // λ = 0: pseudo-inverse on the support.
    std::size_t support = 0;
    T mean_g = T(0);
    for (std::size_t i = 0; i < n; ++i) {
      if (p_[i] > T(0)) {
        ++support;
        mean_g += g[i];
      }
    }
    mean_g /= static_cast<T>(support);  // support >= 1: p sums to 1
    T mean_x = T(0);
    for (std::size_t i = 0; i < n; ++i) {
      x[i] = p_[i] > T(0) ? (g[i] - mean_g) / p_[i] : T(0);
      mean_x += x[i];
    }
    mean_x /= static_cast<T>(support);
    for (std::size_t i = 0; i < n; ++i)
      if (p_[i] > T(0)) x[i] -= mean_x;
  }

  /// Throws `invalid_argument` unless λ is finite and λ ≥ 0 (shared by every damped solve).
  static void require_damping(T damping) {
    if (!(std::isfinite(damping) && damping >= T(0))) {
      std::ostringstream os;
      os << "invalid argument: damping = " << damping << ", expected a finite value >= 0";
      throw invalid_argument(os.str());
    }
  }

 private:
  struct unchecked_tag {};
  categorical_fisher(std::vector<T>&& p, unchecked_tag) noexcept
      : p_(std::move(p)), delta_(compute_delta(p_)) {}

  // δ = 1 − Σp, summed in double.
  static T compute_delta(const std::vector<T>& p) noexcept {
    double s = 0.0;
    for (T v : p) s += static_cast<double>(v);
    return static_cast<T>(1.0 - s);
  }

  std::vector<T> p_;
  T delta_ = T(0);
};

// ================================================================================================
// Empirical Fisher from per-sample gradients
// ================================================================================================

/// \brief The empirical Fisher F = (1/N) Gᵀ G of N per-sample gradients (rows of G, N × P),
/// applied matrix-free as (1/N) Gᵀ (G v) in 2·N·P multiply-adds (models `linear_operator`).
///
/// Zero-copy: the operator keeps a pointer to G's storage, which the caller must keep alive and
/// unchanged while the operator is used. G must be row-major storage (a `row_matrix<T>`, an
/// `Eigen::Map` or a row block of one): a column-major argument would bind through a temporary
/// copy that dies with the constructor call, so `matrix_cref` arguments of that kind are the
/// caller's responsibility; temporaries of `row_matrix<T>` are rejected at compile time.
/// G is validated (non-empty, finite) once at construction. Immutable; safe to share across
/// threads (`apply` uses thread-local scratch of N values).
template <attention_scalar T>
class empirical_fisher {
 public:
  using value_type = T;

  /// \param per_sample_gradients G, N × P (N ≥ 1 samples, P ≥ 1 parameters), finite.
  explicit empirical_fisher(const matrix_cref<T>& per_sample_gradients)
      : g_(per_sample_gradients.data()),
        n_(static_cast<std::size_t>(per_sample_gradients.rows())),
        p_(static_cast<std::size_t>(per_sample_gradients.cols())),
        ld_(static_cast<std::size_t>(per_sample_gradients.outerStride())) {
    require_non_empty("per_sample_gradients.rows()", n_);
    require_non_empty("per_sample_gradients.cols()", p_);
    require_at_most("per_sample_gradients.cols()", p_, max_sequence_length);
    require_finite("per_sample_gradients", g_, n_, p_, static_cast<std::ptrdiff_t>(ld_));
  }
  /// A temporary matrix would dangle: rejected.
  template <class M>
  requires(std::is_same_v<M, row_matrix<T>>) explicit empirical_fisher(M&&) = delete;

  /// Number of parameters P (the operator is P × P).
  [[nodiscard]] std::size_t size() const noexcept { return p_; }
  /// Number of samples N.
  [[nodiscard]] std::size_t samples() const noexcept { return n_; }

  /// y = (1/N) Gᵀ (G x). Throws `dimension_mismatch` unless |x| = |y| = P; `y` must not alias
  /// `x`.
  void apply(std::span<const T> x, std::span<T> y) const {
    require_dimension("x.size()", x.size(), p_);
    require_dimension("y.size()", y.size(), p_);
    T* t = detail::thread_scratch<T, 0x1f15>(n_);
    kernels::row_dots(g_, n_, p_, ld_, x.data(), T(1) / static_cast<T>(n_), t);  // t = Gx / N
    kernels::weighted_row_sum(t, n_, g_, p_, ld_, T(0), y.data());               // y = Gᵀt
  }

  /// The explicit P × P matrix (1/N) GᵀG (O(P²) memory: for tests and small P).
  [[nodiscard]] row_matrix<T> matrix() const {
    const auto g = view();
    return (g.transpose() * g) / static_cast<T>(n_);
  }

  /// The diagonal (1/N) Σ_s G_si² (the "diagonal empirical Fisher" of Adam-like methods).
  [[nodiscard]] std::vector<T> diagonal() const {
    std::vector<T> d(p_, T(0));
    for (std::size_t s = 0; s < n_; ++s) {
      const T* row = g_ + s * ld_;
      for (std::size_t j = 0; j < p_; ++j) d[j] += row[j] * row[j];
    }
    for (auto& v : d) v /= static_cast<T>(n_);
    return d;
  }

  /// G as a read-only view.
  [[nodiscard]] auto view() const noexcept { return matrix_view<const T>(g_, n_, p_, ld_); }

 private:
  const T* g_;
  std::size_t n_, p_, ld_;
};

// ================================================================================================
// Fisher–Rao distance
// ================================================================================================

/// \brief The Bhattacharyya coefficient BC(p, q) = Σ_i √(p_i q_i), clamped to [0, 1] (rounding
/// and inputs that sum to 1 only within tolerance can push the raw sum just above 1).
/// Validation as for `fisher_rao_distance`.
template <attention_scalar T>
[[nodiscard]] T bhattacharyya_coefficient(std::span<const T> p, std::span<const T> q) {
  detail::require_probability_vector<T>("p", p);
  detail::require_probability_vector<T>("q", q);
  require_dimension("q.size()", q.size(), p.size());
  T bc = T(0);
  for (std::size_t i = 0; i < p.size(); ++i) bc += std::sqrt(p[i] * q[i]);
  return std::clamp(bc, T(0), T(1));
}

/// \brief Fisher–Rao distance d_FR(p, q) = 2·arccos(BC(p, q)) ∈ [0, π] between categorical
/// distributions (factor-2 convention: see the file comment).
///
/// Computed as the equivalent, well-conditioned 4·arcsin(‖u − v‖/2) with u = √p/‖√p‖ and
/// v = √q/‖√q‖ (unit vectors; ⟨u, v⟩ = BC for normalised inputs, and ‖u − v‖² = 2 − 2⟨u, v⟩):
/// arccos loses half the digits near BC = 1 (d_FR = 1e-4 would come out with ~1e-4 relative
/// error in float), the chord form keeps full relative accuracy for close distributions. The
/// normalisation by ‖√p‖ = √Σp removes the residual of inputs that sum to 1 only within
/// tolerance; the half-chord is clamped to ≤ 1 and the result to ≤ π — the counterpart of
/// clamping BC to [0, 1] (rounding can push ‖u − v‖ a few ulp past its bound √2).
/// Identical inputs give exactly 0; disjoint supports give π; d(p, q) == d(q, p) bit for bit.
///
/// Throws `dimension_mismatch` for |p| ≠ |q|, `invalid_argument` for empty inputs, negative
/// entries or sums outside 1 ± `simplex_tolerance<T>(n)`, `non_finite_input` for NaN/Inf.
template <attention_scalar T>
[[nodiscard]] T fisher_rao_distance(std::span<const T> p, std::span<const T> q) {
  detail::require_probability_vector<T>("p", p);
  detail::require_probability_vector<T>("q", q);
  require_dimension("q.size()", q.size(), p.size());
  // Exact symmetry d(p, q) = d(q, p) whatever the compiler contracts into FMAs: evaluate with the
  // arguments in a canonical (lexicographic) order.
  if (std::lexicographical_compare(q.begin(), q.end(), p.begin(), p.end())) std::swap(p, q);
  T sp = T(0), sq = T(0);
  for (std::size_t i = 0; i < p.size(); ++i) {
    sp += p[i];
    sq += q[i];
  }
  const T np = T(1) / std::sqrt(sp), nq = T(1) / std::sqrt(sq);
  T chord2 = T(0);
  for (std::size_t i = 0; i < p.size(); ++i) {
    const T diff = std::sqrt(p[i]) * np - std::sqrt(q[i]) * nq;
    chord2 += diff * diff;
  }
  const T half_chord = std::min(T(1), std::sqrt(chord2) / T(2));
  return std::min(T(4) * std::asin(half_chord), std::numbers::pi_v<T>);
}

}  // namespace ruvector::attention
// ---- end ruvector/attention/info_geometry/fisher.hpp ----
// ---- begin ruvector/attention/info_geometry/natural_gradient.hpp ----
/// \file info_geometry/natural_gradient.hpp
/// \brief Damped conjugate gradient for matrix-free symmetric PSD operators and natural-gradient
/// steps (Amari 1998; Martens 2010, "Deep learning via Hessian-free optimization"; Martens 2020).
///
/// - `linear_operator<Op, T>`: anything with `size()` and `apply(x, y)` (y = A x, spans of T).
///   `categorical_fisher<T>` and `empirical_fisher<T>` model it; `make_operator<T>(n, f)` wraps a
///   callable `f(x, y)`.
/// - `conjugate_gradient<T>(A, b, x, λ, options)` solves (A + λI) x = b (Hestenes & Stiefel 1952):
///
///       r₀ = b − (A + λI) x₀,  p₀ = r₀;   α_k = r_kᵀr_k / p_kᵀ(A + λI)p_k,
///       x_{k+1} = x_k + α_k p_k,  r_{k+1} = r_k − α_k (A + λI) p_k,
///       β_k = r_{k+1}ᵀr_{k+1} / r_kᵀr_k,  p_{k+1} = r_{k+1} + β_k p_k.
///
///   In exact arithmetic it terminates in at most (number of distinct eigenvalues of A + λI) ≤ n
///   iterations. Stopping rule: relative residual ‖b − (A + λI)x‖ ≤ tolerance · ‖b‖. Because the
///   recursively updated r drifts from the true residual in floating point, convergence claimed by
///   the recursion is confirmed by recomputing the true residual (one extra operator application);
///   if the check fails, CG restarts from the true residual (residual replacement). The reported
///   `residual_norm` is always the true residual of the returned x. If pᵀ(A + λI)p ≤ 0 or is not
///   finite (the operator is not positive definite on the Krylov space, e.g. λ = 0 and b has a
///   component in the null space), CG stops with `breakdown = true` and returns the last iterate.
///   For a singular PSD A with λ = 0, x₀ = 0 and b in the range of A, the iterates stay in the
///   range and converge to the minimum-norm solution A⁺b.
/// - Natural gradient: θ ← θ − η (F + λI)⁻¹ g. `natural_gradient_step_logits` does it for the
///   logits of a softmax with F = diag(p) − ppᵀ (closed form or CG); `natural_gradient_optimizer`
///   does it for a generic parameter vector and any Fisher operator (e.g. the empirical Fisher).
///
/// Conventions: dot products and updates run in T (xsimd kernels); x₀ = 0 unless
/// `cg_options::warm_start`; `max_iterations = 0` means n; a zero right-hand side returns x = 0
/// after 0 iterations. λ < 0 or non-finite throws `invalid_argument`; bad option values throw
/// `invalid_config`.

#include <cmath>
#include <concepts>
#include <cstddef>
#include <functional>
#include <span>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>


namespace ruvector::attention {

/// \brief A linear operator on Tⁿ given matrix-free: `size()` is n and `apply(x, y)` writes
/// y = A x (|x| = |y| = n, y not aliasing x). Conjugate gradient further assumes A symmetric PSD.
template <class Op, class T>
concept linear_operator = attention_scalar<T> &&
    requires(const Op& op, std::span<const T> x, std::span<T> y) {
  { op.size() } -> std::convertible_to<std::size_t>;
  op.apply(x, y);
};

/// \brief Adapts a callable `f(std::span<const T> x, std::span<T> y)` (writing y = A x) to a
/// `linear_operator` of size n. `apply` checks the sizes, then calls f.
template <attention_scalar T, class F>
requires std::invocable<const F&, std::span<const T>, std::span<T>>
class function_operator {
 public:
  using value_type = T;
  function_operator(std::size_t n, F f) : n_(n), f_(std::move(f)) {}
  [[nodiscard]] std::size_t size() const noexcept { return n_; }
  void apply(std::span<const T> x, std::span<T> y) const {
    require_dimension("x.size()", x.size(), n_);
    require_dimension("y.size()", y.size(), n_);
    std::invoke(f_, x, y);
  }

 private:
  std::size_t n_;
  F f_;
};

/// \brief `function_operator<T, F>(n, f)`: e.g. `make_operator<float>(n, [&](auto x, auto y) {
/// ... })`.
template <attention_scalar T, class F>
[[nodiscard]] function_operator<T, std::decay_t<F>> make_operator(std::size_t n, F&& f) {
  return function_operator<T, std::decay_t<F>>(n, std::forward<F>(f));
}

/// \brief Default relative-residual tolerance of conjugate gradient: 1e-5 for float (≈ 80 ε,
/// reachable for condition numbers up to ~10²), 1e-10 for double.
template <attention_scalar T>
inline constexpr T default_cg_tolerance = std::is_same_v<T, float> ? T(1e-5) : T(1e-10);

/// \brief Settings of `conjugate_gradient`.
template <attention_scalar T>
struct cg_options {
  /// Iteration cap; 0 means n (the exact-arithmetic bound).
  std::size_t max_iterations = 0;
  /// Stop when ‖b − (A + λI)x‖ ≤ tolerance · ‖b‖; finite and ≥ 0 (0 runs to the cap).
  T tolerance = default_cg_tolerance<T>;
  /// Start from the caller's x instead of 0.
  bool warm_start = false;
};

/// \brief Outcome of a conjugate-gradient solve.
template <attention_scalar T>
struct cg_result {
  /// CG iterations performed (each costs one operator application).
  std::size_t iterations = 0;
  /// Operator applications in total (iterations + initial/true-residual evaluations).
  std::size_t applications = 0;
  /// True residual ‖b − (A + λI)x‖ of the returned x.
  T residual_norm = T(0);
  /// residual_norm / ‖b‖ (0 when b = 0).
  T relative_residual = T(0);
  /// relative_residual ≤ tolerance.
  bool converged = false;
  /// Stopped because pᵀ(A + λI)p ≤ 0 or was not finite (operator not positive definite).
  bool breakdown = false;
};

namespace detail {

/// Throws `invalid_config` unless the CG options are usable.
template <attention_scalar T>
void require_cg_options(const cg_options<T>& o, std::string_view what = "cg_options") {
  if (!(std::isfinite(o.tolerance) && o.tolerance >= T(0))) {
    std::ostringstream os;
    os << "invalid config: " << what << ".tolerance = " << o.tolerance
       << ", expected a finite value >= 0";
    throw invalid_config(os.str());
  }
}

/// y = (A + λI) x.
template <class T, class Op>
void apply_damped(const Op& a, T damping, std::span<const T> x, std::span<T> y) {
  a.apply(x, y);
  if (damping != T(0)) kernels::axpy(damping, x.data(), y.data(), x.size());
}

/// r = b − (A + λI) x (using `tmp` of size n); returns ‖r‖².
template <class T, class Op>
T true_residual(const Op& a, T damping, std::span<const T> b, std::span<const T> x,
                std::span<T> tmp, std::span<T> r) {
  apply_damped<T>(a, damping, x, tmp);
  for (std::size_t i = 0; i < b.size(); ++i) r[i] = b[i] - tmp[i];
  return kernels::dot(r.data(), r.data(), r.size());
}

}  // namespace detail

/// \brief Solves (A + λI) x = b by conjugate gradient; see the file comment.
/// \param a symmetric PSD operator of size n. \param b right-hand side (n, finite).
/// \param x solution (n; the initial guess with `warm_start`, then it must be finite).
/// \param damping λ ≥ 0. Throws `dimension_mismatch`, `non_finite_input`, `invalid_argument`
/// (λ), `invalid_config` (options); exceptions thrown by `a.apply` propagate.
template <attention_scalar T, class Op>
requires linear_operator<Op, T> cg_result<T> conjugate_gradient(
    const Op& a, std::type_identity_t<std::span<const T>> b, std::type_identity_t<std::span<T>> x,
    std::type_identity_t<T> damping, const std::type_identity_t<cg_options<T>>& options = {}) {
  const std::size_t n = static_cast<std::size_t>(a.size());
  categorical_fisher<T>::require_damping(damping);
  detail::require_cg_options(options);
  require_dimension("b.size()", b.size(), n);
  require_dimension("x.size()", x.size(), n);
  require_finite("b", b);
  if (options.warm_start) require_finite<T>("x (warm start)", x);

  cg_result<T> res;
  const T b_norm = std::sqrt(kernels::dot(b.data(), b.data(), n));
  if (n == 0 || b_norm == T(0)) {
    for (auto& v : x) v = T(0);
    res.converged = true;
    return res;
  }
  const std::size_t cap = options.max_iterations ? options.max_iterations : n;
  const T target = options.tolerance * b_norm;

  std::vector<T> r(n), p(n), ap(n);
  T rr;
  if (options.warm_start) {
    rr = detail::true_residual<T>(a, damping, b, x, ap, r);
    ++res.applications;
  } else {
    for (auto& v : x) v = T(0);
    for (std::size_t i = 0; i < n; ++i) r[i] = b[i];
    rr = b_norm * b_norm;
  }
  bool residual_is_true = true;  // r holds the true residual of x
  p = r;
  while (!(std::sqrt(rr) <= target) && res.iterations < cap) {
    detail::apply_damped<T>(a, damping, p, ap);
    ++res.applications;
    const T pap = kernels::dot(p.data(), ap.data(), n);
    if (!(pap > T(0)) || !std::isfinite(pap)) {
      res.breakdown = true;
      break;
    }
    const T alpha = rr / pap;
    kernels::axpy(alpha, p.data(), x.data(), n);
    kernels::axpy(-alpha, ap.data(), r.data(), n);
    ++res.iterations;
    T rr_new = kernels::dot(r.data(), r.data(), n);
    residual_is_true = false;
    if (std::sqrt(rr_new) <= target) {
      // Confirm with the true residual; on failure restart from it (residual replacement).
      rr_new = detail::true_residual<T>(a, damping, b, x, ap, r);
      ++res.applications;
      residual_is_true = true;
      if (std::sqrt(rr_new) <= target) {
        rr = rr_new;
        break;
      }
      p = r;
      rr = rr_new;
      continue;
    }
    const T beta = rr_new / rr;
    for (std::size_t i = 0; i < n; ++i) p[i] = r[i] + beta * p[i];
    rr = rr_new;
  }
  if (!residual_is_true) {
    rr = detail::true_residual<T>(a, damping, b, x, ap, r);
    ++res.applications;
  }
  res.residual_norm = std::sqrt(rr);
  res.relative_residual = res.residual_norm / b_norm;
  res.converged = res.residual_norm <= target;
  return res;
}

// ================================================================================================
// Natural-gradient steps
// ================================================================================================

/// \brief How `natural_gradient_step_logits` solves (F + λI) x = g.
enum class natural_gradient_solver {
  closed_form,  ///< `categorical_fisher::solve` (Sherman–Morrison; pseudo-inverse at λ = 0)
  conjugate_gradient  ///< `conjugate_gradient` on the matrix-free F
};

/// \brief One natural-gradient step on softmax logits, in place:
/// θ ← θ − η (F + λI)⁻¹ g with F = diag(p) − ppᵀ, p = softmax(θ) (λ = 0: F⁺ g with the closed
/// form; with CG, λ = 0 needs 1ᵀg = 0, which holds for the gradient of any loss of p).
///
/// Returns the solve's report; for the closed form `iterations = 0`, and residual / convergence
/// are those of the returned direction against (F + λI)x = g (λ = 0 and 1ᵀg ≠ 0: the system has
/// no solution and `converged` is false, the step is still the least-squares F⁺g). The step is
/// applied in every case (the CG iterate is a descent direction for the damped quadratic model).
/// Throws as `categorical_fisher::from_logits`, `conjugate_gradient`, plus `invalid_argument` for
/// a non-finite or negative learning rate and `non_finite_input` for NaN/Inf in g.
template <attention_scalar T>
cg_result<T> natural_gradient_step_logits(
    std::span<T> logits, std::type_identity_t<std::span<const T>> grad,
    std::type_identity_t<T> learning_rate, std::type_identity_t<T> damping,
    natural_gradient_solver solver = natural_gradient_solver::closed_form,
    const std::type_identity_t<cg_options<T>>& options = {}) {
  if (!(std::isfinite(learning_rate) && learning_rate >= T(0))) {
    std::ostringstream os;
    os << "invalid argument: learning_rate = " << learning_rate << ", expected a finite value >= 0";
    throw invalid_argument(os.str());
  }
  const auto fisher = categorical_fisher<T>::from_logits(std::span<const T>(logits));
  require_dimension("grad.size()", grad.size(), logits.size());
  require_finite<T>("grad", grad);
  std::vector<T> x(logits.size());
  cg_result<T> res;
  if (solver == natural_gradient_solver::closed_form) {
    detail::require_cg_options(options);
    fisher.solve(grad, damping, x);
    std::vector<T> r(x.size()), tmp(x.size());
    const T rr = detail::true_residual<T>(fisher, damping, grad, x, tmp, r);
    const T g_norm = std::sqrt(kernels::dot(grad.data(), grad.data(), grad.size()));
    res.applications = 1;
    res.residual_norm = std::sqrt(rr);
    res.relative_residual = g_norm > T(0) ? res.residual_norm / g_norm : T(0);
    res.converged = res.residual_norm <= options.tolerance * g_norm;
  } else {
    res = conjugate_gradient<T>(fisher, grad, x, damping, options);
  }
  for (std::size_t i = 0; i < x.size(); ++i)
    if (std::isfinite(logits[i])) logits[i] -= learning_rate * x[i];  // −inf stays masked
  return res;
}

/// \brief Settings of `natural_gradient_optimizer`.
template <attention_scalar T>
struct natural_gradient_config {
  /// Step size η; finite and > 0.
  T learning_rate = T(0.1);
  /// Damping (Tikhonov) λ added to the Fisher; finite and ≥ 0.
  T damping = T(1e-3);
  /// Conjugate-gradient settings of each step's solve.
  cg_options<T> cg{};
};

/// \brief Natural-gradient descent θ ← θ − η (F + λI)⁻¹ g for a generic parameter vector, with
/// the Fisher given as any `linear_operator` (e.g. `empirical_fisher`, `categorical_fisher`, or a
/// Gauss–Newton product wrapped by `make_operator`). The solve is damped CG from x₀ = 0.
///
/// Stateless apart from its configuration: immutable, safe to share across threads.
template <attention_scalar T>
class natural_gradient_optimizer {
 public:
  using value_type = T;

  /// Validates the configuration (`invalid_config`: η ≤ 0, λ < 0, non-finite, bad CG options).
  explicit natural_gradient_optimizer(const natural_gradient_config<T>& config = {})
      : config_(config) {
    if (!(std::isfinite(config.learning_rate) && config.learning_rate > T(0))) {
      std::ostringstream os;
      os << "invalid config: learning_rate = " << config.learning_rate
         << ", expected a finite value > 0";
      throw invalid_config(os.str());
    }
    if (!(std::isfinite(config.damping) && config.damping >= T(0))) {
      std::ostringstream os;
      os << "invalid config: damping = " << config.damping << ", expected a finite value >= 0";
      throw invalid_config(os.str());
    }
    detail::require_cg_options(config.cg, "cg");
  }

  [[nodiscard]] const natural_gradient_config<T>& config() const noexcept { return config_; }

  /// direction = (F + λI)⁻¹ g by damped CG (no parameter update).
  template <class Op>
  requires linear_operator<Op, T> cg_result<T> direction(std::span<const T> grad, const Op& fisher,
                                                         std::span<T> direction)
  const {
    cg_options<T> o = config_.cg;
    o.warm_start = false;
    return conjugate_gradient<T>(fisher, grad, direction, config_.damping, o);
  }

  /// params ← params − η (F + λI)⁻¹ grad; returns the CG report. The step is applied even when
  /// CG stops at the cap (its iterate is a descent direction of the damped quadratic model).
  /// Throws `dimension_mismatch` unless |params| = |grad| = fisher.size(), `non_finite_input`
  /// for NaN/Inf in params or grad.
  template <class Op>
  requires linear_operator<Op, T> cg_result<T> step(std::span<T> params, std::span<const T> grad,
                                                    const Op& fisher)
  const {
    require_dimension("params.size()", params.size(), static_cast<std::size_t>(fisher.size()));
    require_dimension("grad.size()", grad.size(), static_cast<std::size_t>(fisher.size()));
    require_finite<T>("params", params);
    require_finite<T>("grad", grad);
    std::vector<T> x(params.size());
    const cg_result<T> res = direction(grad, fisher, x);
    kernels::axpy(-config_.learning_rate, x.data(), params.data(), params.size());
    return res;
  }

  /// Convenience for softmax logits: `natural_gradient_step_logits` with this configuration and
  /// the closed-form solve.
  cg_result<T> step_logits(std::span<T> logits, std::span<const T> grad) const {
    return natural_gradient_step_logits<T>(logits, grad, config_.learning_rate, config_.damping,
                                           natural_gradient_solver::closed_form, config_.cg);
  }

 private:
  natural_gradient_config<T> config_;
};

}  // namespace ruvector::attention
// ---- end ruvector/attention/info_geometry/natural_gradient.hpp ----
// ---- end ruvector/attention/info_geometry.hpp ----
// ---- begin ruvector/attention/io/json.hpp ----
/// \file io/json.hpp
/// \brief JSON output (nlohmann_json): the only header of the library that includes
/// `<nlohmann/json.hpp>`. ADL `to_json` overloads for the unified report's types.
///
/// A report serialises as
/// `{"num_keys", "num_queries", "dim", "health_score", "metrics": [{"name", "value", "status"}],
///   "recommendation": {"mechanism", "temperature_factor", "reasons": [...]}, "raw": {...}}`;
/// NaN raw values (not measured) become `null`, infinities the strings "inf"/"-inf".

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

// ---- begin ruvector/attention/unified_report/report.hpp ----
/// \file report.hpp
/// \brief The unified geometry report (theory 7): metrics measured on real queries and keys,
/// banded, scored and turned into a recommendation.
///
/// `analyze(queries, keys[, weights][, ib])` measures, on the rows of `keys` (n × d) and
/// `queries` (L × d):
/// | metric | definition | family |
/// |---|---|---|
/// | `ot_shift` | SW₂²(Q, K) / mean_r SW₂²(K_r, K): the sliced-Wasserstein cost (P seeded
/// directions) between the query set and the keys, over the same cost for R bootstrap samples K_r
/// of L keys. ≈ 1 when the queries look like keys; the raw SW₂ is reported as `ot_distance` |
/// transport | | `topology_coherence` | the combined window coherence of each query's attention on
/// the keys' kNN graph, averaged over the queries | topology | | `ib_kl` | mean over queries and
/// latent dimensions of KL(q(z|x) ‖ N(0, I)) of a given `variational_bottleneck` (absent without
/// one) | info_bottleneck | | `diffusion_energy` | ½Σ W_ij (x_i − x_j)² / Σ d_i (x_i − x̄)², x = the
/// dot-product logits s_j = scale·q·k_j, x̄ = Σ d_i x_i / Σ d_i, W the Gaussian kNN graph of the
/// keys: the Rayleigh quotient of L_rw, in [0, 2] (0 = logits constant along the graph), averaged
/// over queries | pde | | `attention_entropy` | H/ln n of each query's weights, averaged (raw H
/// reported too) | — | | `h0_scale_spread` | std of log₂ of the keys' H0 death scales, octaves |
/// structure.hpp | | `gromov_delta` | 2δ/diam of the keys (four-point condition) | structure.hpp |
/// | `sequence_smoothness` | median consecutive / median random-pair key distance | structure.hpp |
///
/// Without weights, the weights are softmax(scale·Q Kᵀ) with scale = `config.scale` or 1/√d.
/// The kNN graph (k = `config.knn_k`, clamped to n − 1) is built once and shared by the
/// coherence and diffusion metrics. Bands, health and recommendation: metrics.hpp and
/// recommendation.hpp. `report_builder` accepts precomputed metric values instead.
///
/// Cost: O(n²·d) for the kNN graph and the H0 tree (n capped by `max_points` for H0), O(L·n·d)
/// for the logits, O((R + 1)·P·(n log n + n·d)) for the transport.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <vector>

// ---- begin ruvector/attention/kernels/knn.hpp ----
/// \file knn.hpp
/// \brief Exact k-nearest-neighbour lists of a point set (brute force, squared Euclidean).
///
/// For every row i of an n × d point set: the k rows j ≠ i with the smallest ‖x_i − x_j‖², in
/// ascending distance (ties broken by the smaller index, so the result is deterministic). Distances
/// come from `kernels::row_squared_distances` (formed from differences, never by expansion), so
/// they are exact up to rounding and never negative. Cost O(n²·d), rows in parallel.
///
/// Used by the topology (coherence over a kNN graph of the keys) and pde (sparse kNN Laplacian)
/// families. Duplicate points are neighbours at distance 0.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <vector>


namespace ruvector::attention {

/// \brief k nearest neighbours of each of n points: row i's list is
/// `indices[i*k .. i*k+k)` / `squared_distances[i*k .. i*k+k)`, nearest first.
template <attention_scalar T>
struct knn_lists {
  std::size_t n = 0;                   ///< number of points
  std::size_t k = 0;                   ///< neighbours per point (≤ n − 1)
  std::vector<std::uint32_t> indices;  ///< n·k neighbour indices
  std::vector<T> squared_distances;    ///< n·k squared Euclidean distances, ascending per row

  /// \brief Neighbour `m` (0 = nearest) of point `i`.
  [[nodiscard]] std::uint32_t neighbor(std::size_t i, std::size_t m) const noexcept {
    return indices[i * k + m];
  }
  /// \brief Squared distance from point `i` to its neighbour `m`.
  [[nodiscard]] T squared_distance(std::size_t i, std::size_t m) const noexcept {
    return squared_distances[i * k + m];
  }
};

/// \brief Exact kNN of the rows of `points` (self excluded). Throws `invalid_argument` when
/// k = 0 or k ≥ n, `non_finite_input` for NaN/Inf coordinates, `input_too_large` when n ≥ 2³².
template <attention_scalar T>
[[nodiscard]] knn_lists<T> exact_knn(const matrix_cref<T>& points, std::size_t k) {
  const auto n = static_cast<std::size_t>(points.rows());
  const auto d = static_cast<std::size_t>(points.cols());
  require_non_empty("points", n);
  require_non_empty("point dimension", d);
  require_at_most("number of points", n, std::size_t{0xFFFFFFFFu});
  require_argument(k >= 1 && k < n, "exact_knn: k must satisfy 1 <= k < number of points");
  require_finite("points", points.data(), n, d, points.outerStride());

  knn_lists<T> out;
  out.n = n;
  out.k = k;
  out.indices.resize(n * k);
  out.squared_distances.resize(n * k);
  const auto ld = static_cast<std::size_t>(points.outerStride());
  parallel_for(0, n, [&](std::size_t i) {
    thread_local std::vector<T> dist;
    thread_local std::vector<std::uint32_t> order;
    dist.resize(n);
    order.resize(n - 1);
    kernels::row_squared_distances(points.data(), n, d, ld, points.data() + i * ld, dist.data());
    std::size_t m = 0;
    for (std::size_t j = 0; j < n; ++j)
      if (j != i) order[m++] = static_cast<std::uint32_t>(j);
    const auto closer = [&](std::uint32_t a, std::uint32_t b) {
      return dist[a] < dist[b] || (dist[a] == dist[b] && a < b);
    };
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
                      closer);
    for (std::size_t r = 0; r < k; ++r) {
      out.indices[i * k + r] = order[r];
      out.squared_distances[i * k + r] = dist[order[r]];
    }
  });
  return out;
}

}  // namespace ruvector::attention
// ---- end ruvector/attention/kernels/knn.hpp ----
// ---- begin ruvector/attention/pde/laplacian.hpp ----
/// \file pde/laplacian.hpp
/// \brief Graph Laplacians of a key set (theory 6: heat diffusion on the key graph), dense and
/// sparse kNN (CSR), behind one operator interface.
///
/// Graph (Belkin & Niyogi 2003, "Laplacian Eigenmaps"; Chung 1997, "Spectral Graph Theory"):
///
///     W_ij = exp(−‖k_i − k_j‖² / (2σ²))  for i ≠ j,   W_ii = 0,   d_i = Σ_j W_ij
///
/// and three normalisations:
///
///     combinatorial           L     = D − W
///     symmetric normalised    L_sym = I − D^{-1/2} W D^{-1/2}
///     random walk             L_rw  = I − D^{-1} W  = D^{-1} L
///
/// Storage:
/// - `dense_laplacian<T>`: the fully connected Gaussian graph as n × n Eigen matrices (W and L),
///   O(n²) memory — for small n only.
/// - `sparse_laplacian<T>`: the kNN graph in CSR, O(n·k) memory. The directed kNN relation (from
///   `exact_knn`, self excluded) is symmetrised so that W (and hence L and L_sym) is symmetric:
///   `knn_symmetrization::max` (default): W_ij = max(a_ij, a_ji), i.e. the union graph with the
///   full kernel weight; `knn_symmetrization::mean`: W_ij = (a_ij + a_ji)/2, so an edge listed
///   by only one endpoint gets half its weight. Here a_ij = W_ij if j is among i's k nearest
///   neighbours, else 0. Each row keeps its diagonal separately; an explicit zero weight (kernel
///   underflow) is kept as an edge.
///
/// Conventions (documented numerics):
/// - σ: given by the caller (finite, > 0), or the default: the **median of the neighbour
///   distances** ‖k_i − k_j‖ — over the n·k kNN pairs for the sparse form, over all n(n−1)/2 pairs
///   for the dense form (median of an even count = mean of the two middle values). If that median
///   is 0 (many duplicate keys) the mean of the positive distances is used, and σ = 1 if every
///   distance is 0 (or there is no pair, n = 1).
/// - k ≥ n is clamped to n − 1 (the complete graph); n = 1 gives one isolated node and L = 0.
/// - Isolated nodes (d_i = 0, e.g. when every kernel weight of a far outlier underflows): by
///   Chung's convention D^{-1/2} and D^{-1} are taken as 0 there, so the node's row and column of
///   L_sym and its row of L_rw are **zero** (not e_i). Diffusion then leaves an isolated node's
///   value unchanged, exactly as D − W does, and the spectra stay in [0, 2].
/// - Normalised weights are formed as W_ij·(s_i·s_j) with s_i = d_i^{-1/2}, so L_sym is symmetric
///   bit for bit.
/// - `lambda_max_bound()`: the Gershgorin bound max_i (L_ii + Σ_{j≠i} |L_ij|), which is
///   2·max_i d_i for D − W; for L_sym and L_rw it is capped at 2 (their eigenvalues are real and
///   lie in [0, 2]; L_rw is similar to L_sym). A graph without edges gets 0, so diffusion is
///   then exactly the identity. `estimate_lambda_max`
///   gives a power-iteration estimate (a lower estimate: add a margin before using it as a bound).
/// - `energy(x)`: xᵀ L x for D − W and L_sym; for L_rw, which is self-adjoint in the D-inner
///   product, xᵀ D L_rw x = xᵀ (D − W) x. Each is non-increasing along exp(−tL)x.
///   `dirichlet_form(x)` = ½ Σ_ij W_ij (x_i − x_j)², equal to xᵀ (D − W) x.

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <utility>
#include <vector>


namespace ruvector::attention {

/// \brief Which normalisation of the graph Laplacian.
enum class laplacian_type {
  combinatorial,         ///< L = D − W
  symmetric_normalized,  ///< L_sym = I − D^{-1/2} W D^{-1/2}
  random_walk,           ///< L_rw = I − D^{-1} W
};

/// \brief How the directed kNN relation is made symmetric (see the file comment).
enum class knn_symmetrization {
  max,   ///< W_ij = max(a_ij, a_ji): union graph, full weight
  mean,  ///< W_ij = (a_ij + a_ji)/2: one-sided edges get half weight
};

/// \brief Options of a Laplacian built from keys.
template <attention_scalar T>
struct laplacian_options {
  /// Normalisation of L.
  laplacian_type type = laplacian_type::symmetric_normalized;
  /// Kernel width σ (> 0); default: median neighbour distance (see the file comment).
  std::optional<T> sigma{};
  /// Symmetrisation of the kNN relation (sparse form only).
  knn_symmetrization symmetrize = knn_symmetrization::max;
};

/// \brief What a Laplacian operator provides to the diffusion solvers: y = L x in O(nnz), its
/// size, its type, a spectral upper bound and the diffusion energy.
template <class Op>
concept laplacian_operator = attention_scalar<typename Op::value_type> &&
    requires(const Op& op, std::span<const typename Op::value_type> x,
             std::span<typename Op::value_type> y) {
  { op.size() } -> std::same_as<std::size_t>;
  { op.type() } -> std::same_as<laplacian_type>;
  { op.lambda_max_bound() } -> std::same_as<typename Op::value_type>;
  { op.energy(x) } -> std::same_as<typename Op::value_type>;
  op.apply(x, y);
};

namespace detail {

/// Human-readable name of a Laplacian type (for messages).
[[nodiscard]] inline const char* laplacian_type_name(laplacian_type t) noexcept {
  switch (t) {
    case laplacian_type::combinatorial:
      return "combinatorial";
    case laplacian_type::symmetric_normalized:
      return "symmetric_normalized";
    case laplacian_type::random_walk:
      return "random_walk";
  }
  return "unknown";
}

/// Median (mean of the two middle values for an even count) of `v` (reordered); requires
/// a non-empty v.
[[nodiscard]] inline double median_inplace(std::vector<double>& v) {
  const std::size_t m = v.size();
  const auto mid = v.begin() + static_cast<std::ptrdiff_t>(m / 2);
  std::nth_element(v.begin(), mid, v.end());
  const double upper = *mid;
  if (m % 2 == 1) return upper;
  const double lower = *std::max_element(v.begin(), mid);
  return 0.5 * (lower + upper);
}

/// The default σ from a list of (non-negative) distances: median; mean of the positive ones if
/// the median is 0; 1 if none is positive.
[[nodiscard]] inline double default_sigma(std::vector<double> distances) {
  if (distances.empty()) return 1.0;
  double pos_sum = 0.0;
  std::size_t pos = 0;
  for (double d : distances)
    if (d > 0.0) pos_sum += d, ++pos;
  if (pos == 0) return 1.0;
  const double med = median_inplace(distances);
  return med > 0.0 ? med : pos_sum / static_cast<double>(pos);
}

/// Validates a caller-given σ.
template <class T>
void require_sigma(const std::optional<T>& sigma) {
  if (sigma) {
    require_argument(std::isfinite(*sigma) && *sigma > T(0),
                     "laplacian_options.sigma must be finite and > 0");
  }
}

/// Validates a keys matrix (non-empty, finite, size limits).
template <class T>
void require_keys(const matrix_cref<T>& keys) {
  const auto n = static_cast<std::size_t>(keys.rows());
  const auto d = static_cast<std::size_t>(keys.cols());
  require_non_empty("keys", n);
  require_non_empty("keys.cols()", d);
  require_at_most("keys.rows()", n, std::min<std::size_t>(max_sequence_length, 0xFFFFFFFFu));
  require_at_most("keys.cols()", d, max_dimension);
  require_finite("keys", keys.data(), n, d, keys.outerStride());
}

/// s_i = d_i^{-1/2} (or 0 for an isolated node).
template <class T>
[[nodiscard]] std::vector<T> inv_sqrt_degrees(const std::vector<T>& deg) {
  std::vector<T> s(deg.size());
  for (std::size_t i = 0; i < deg.size(); ++i)
    s[i] = deg[i] > T(0) ? T(1) / std::sqrt(deg[i]) : T(0);
  return s;
}

/// Throws `dimension_mismatch` unless x and y have n entries.
inline void require_apply_sizes(std::size_t x, std::size_t y, std::size_t n) {
  require_dimension("apply: x.size()", x, n);
  require_dimension("apply: y.size()", y, n);
}

}  // namespace detail

// ================================================================================================
// Dense (fully connected) Laplacian
// ================================================================================================

/// \brief The fully connected Gaussian-kernel Laplacian as dense n × n matrices (small n only).
/// Immutable after construction; safe to share across threads.
template <attention_scalar T>
class dense_laplacian {
 public:
  using value_type = T;

  /// \brief W_ij = exp(−‖k_i − k_j‖²/(2σ²)) over all pairs i ≠ j (rows of `keys` = keys).
  /// Throws `invalid_argument` (empty keys, bad σ), `non_finite_input`, `input_too_large`.
  [[nodiscard]] static dense_laplacian from_keys(const matrix_cref<T>& keys,
                                                 const laplacian_options<T>& options = {}) {
    detail::require_keys<T>(keys);
    detail::require_sigma(options.sigma);
    const auto n = static_cast<std::size_t>(keys.rows());
    const auto d = static_cast<std::size_t>(keys.cols());
    const auto ld = static_cast<std::size_t>(keys.outerStride());
    const auto ix = [](std::size_t i) { return static_cast<Eigen::Index>(i); };
    row_matrix<T> d2(ix(n), ix(n));
    parallel_for(0, n, [&](std::size_t i) {
      kernels::row_squared_distances(keys.data(), n, d, ld, keys.data() + i * ld,
                                     d2.data() + i * n);
    });
    // Symmetrise the rounding: both triangles take the value computed for i < j.
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = i + 1; j < n; ++j) d2(ix(j), ix(i)) = d2(ix(i), ix(j));
    double sigma = 0.0;
    if (options.sigma) {
      sigma = static_cast<double>(*options.sigma);
    } else {
      std::vector<double> dist;
      dist.reserve(n * (n - 1) / 2);
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = i + 1; j < n; ++j)
          dist.push_back(std::sqrt(static_cast<double>(d2(ix(i), ix(j)))));
      sigma = detail::default_sigma(std::move(dist));
    }
    const T inv = static_cast<T>(1.0 / (2.0 * sigma * sigma));
    row_matrix<T> w(ix(n), ix(n));
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < n; ++j)
        w(ix(i), ix(j)) = i == j ? T(0) : std::exp(-d2(ix(i), ix(j)) * inv);
    return dense_laplacian(std::move(w), options.type, static_cast<T>(sigma));
  }

  /// \brief A Laplacian of a caller-given weight matrix (square, finite, non-negative,
  /// symmetric, zero diagonal). Throws `dimension_mismatch`, `non_finite_input`,
  /// `invalid_argument` naming the offending entry.
  [[nodiscard]] static dense_laplacian from_weights(const matrix_cref<T>& weights,
                                                    laplacian_type type) {
    const auto n = static_cast<std::size_t>(weights.rows());
    require_non_empty("weights", n);
    require_dimension("weights.cols() (must equal weights.rows())",
                      static_cast<std::size_t>(weights.cols()), n);
    require_at_most("weights.rows()", n, max_sequence_length);
    require_finite("weights", weights.data(), n, n, weights.outerStride());
    for (Eigen::Index i = 0; i < weights.rows(); ++i) {
      for (Eigen::Index j = 0; j < weights.cols(); ++j) {
        const T v = weights(i, j);
        if (v < T(0) || v != weights(j, i) || (i == j && v != T(0))) {
          std::ostringstream os;
          os << "invalid argument: weights[" << i << "][" << j << "] = " << v
             << ", expected a non-negative symmetric matrix with a zero diagonal";
          throw invalid_argument(os.str());
        }
      }
    }
    return dense_laplacian(row_matrix<T>(weights), type, T(0));
  }

  /// Number of nodes.
  [[nodiscard]] std::size_t size() const noexcept { return n_; }
  /// Normalisation of L.
  [[nodiscard]] laplacian_type type() const noexcept { return type_; }
  /// The kernel width used (0 for `from_weights`).
  [[nodiscard]] T sigma() const noexcept { return sigma_; }
  /// The weight matrix W (n × n, zero diagonal).
  [[nodiscard]] const row_matrix<T>& weights() const noexcept { return w_; }
  /// The Laplacian matrix (n × n).
  [[nodiscard]] const row_matrix<T>& matrix() const noexcept { return l_; }
  /// Degrees d_i = Σ_j W_ij.
  [[nodiscard]] const std::vector<T>& degrees() const noexcept { return deg_; }
  /// Number of stored entries of L (n²).
  [[nodiscard]] std::size_t nnz() const noexcept { return n_ * n_; }

  /// \brief y = L x (dense matrix–vector product). `y` must not alias `x`. Throws
  /// `dimension_mismatch` unless both have size() entries.
  void apply(std::span<const T> x, std::span<T> y) const {
    detail::require_apply_sizes(x.size(), y.size(), n_);
    apply_unchecked(x.data(), y.data());
  }

  /// \brief y = L x without checks (x, y hold size() values, no aliasing).
  void apply_unchecked(const T* x, T* y) const noexcept {
    const auto n = static_cast<Eigen::Index>(n_);
    Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, 1>>(y, n).noalias() =
        l_ * Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>>(x, n);
  }

  /// \brief Gershgorin bound on the spectrum (capped at 2 for L_sym / L_rw; see the file).
  [[nodiscard]] T lambda_max_bound() const noexcept { return bound_; }

  /// \brief Diffusion energy (see the file comment). Throws `dimension_mismatch`.
  [[nodiscard]] T energy(std::span<const T> x) const {
    require_dimension("energy: x.size()", x.size(), n_);
    std::vector<T> y(n_);
    apply_unchecked(x.data(), y.data());
    T e = T(0);
    for (std::size_t i = 0; i < n_; ++i)
      e += x[i] * y[i] * (type_ == laplacian_type::random_walk ? deg_[i] : T(1));
    return e;
  }

  /// \brief ½ Σ_ij W_ij (x_i − x_j)². Throws `dimension_mismatch`.
  [[nodiscard]] T dirichlet_form(std::span<const T> x) const {
    require_dimension("dirichlet_form: x.size()", x.size(), n_);
    T e = T(0);
    for (std::size_t i = 0; i < n_; ++i)
      for (std::size_t j = 0; j < n_; ++j) {
        const T diff = x[i] - x[j];
        e += w_(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) * diff * diff;
      }
    return e / T(2);
  }

 private:
  dense_laplacian(row_matrix<T> w, laplacian_type type, T sigma)
      : n_(static_cast<std::size_t>(w.rows())), type_(type), sigma_(sigma), w_(std::move(w)) {
    const auto n = static_cast<Eigen::Index>(n_);
    deg_.assign(n_, T(0));
    for (Eigen::Index i = 0; i < n; ++i) deg_[static_cast<std::size_t>(i)] = w_.row(i).sum();
    const std::vector<T> s = detail::inv_sqrt_degrees(deg_);
    l_.resize(n, n);
    for (Eigen::Index i = 0; i < n; ++i) {
      const auto ui = static_cast<std::size_t>(i);
      const T di = deg_[ui];
      for (Eigen::Index j = 0; j < n; ++j) {
        const auto uj = static_cast<std::size_t>(j);
        const T wij = w_(i, j);
        T v = T(0);
        switch (type_) {
          case laplacian_type::combinatorial:
            v = i == j ? di : -wij;
            break;
          case laplacian_type::symmetric_normalized:
            v = i == j ? (di > T(0) ? T(1) : T(0)) : -wij * (s[ui] * s[uj]);
            break;
          case laplacian_type::random_walk:
            v = di > T(0) ? (i == j ? T(1) : -wij / di) : T(0);
            break;
        }
        l_(i, j) = v;
      }
    }
    T gersh = T(0);
    for (Eigen::Index i = 0; i < n; ++i) gersh = std::max(gersh, l_.row(i).cwiseAbs().sum());
    bound_ = type_ == laplacian_type::combinatorial ? gersh : std::min(gersh, T(2));
  }

  std::size_t n_;
  laplacian_type type_;
  T sigma_;
  row_matrix<T> w_;
  row_matrix<T> l_;
  std::vector<T> deg_;
  T bound_ = T(0);
};

// ================================================================================================
// Sparse kNN Laplacian (CSR)
// ================================================================================================

/// \brief The symmetrised kNN Gaussian-kernel Laplacian in CSR form (O(n·k) memory, y = L x in
/// O(nnz)). Immutable after construction; safe to share across threads.
///
/// Row i's off-diagonal entries occupy slots [offsets()[i], offsets()[i+1]) of `columns()`,
/// `weights()` (W_ij) and `values()` (L_ij), columns ascending; the diagonal of L is `diagonal()`.
template <attention_scalar T>
class sparse_laplacian {
 public:
  using value_type = T;

  /// A Laplacian of zero nodes (placeholder; `size() == 0`).
  sparse_laplacian() : offsets_(1, 0) {}

  /// \brief Builds the kNN graph of the rows of `keys` with `exact_knn` (O(n²·d)) and its
  /// Laplacian. k ≥ n is clamped to n − 1. Throws `invalid_argument` (k = 0, empty keys, bad σ),
  /// `non_finite_input`, `input_too_large`.
  [[nodiscard]] static sparse_laplacian from_keys(const matrix_cref<T>& keys, std::size_t k,
                                                  const laplacian_options<T>& options = {}) {
    detail::require_keys<T>(keys);
    detail::require_sigma(options.sigma);
    require_argument(k >= 1, "sparse_laplacian: k (neighbours per key) must be >= 1");
    const auto n = static_cast<std::size_t>(keys.rows());
    if (n == 1) {
      knn_lists<T> none;
      none.n = 1;
      none.k = 0;
      return from_knn(none, options);
    }
    return from_knn(exact_knn<T>(keys, std::min(k, n - 1)), options);
  }

  /// \brief Builds the Laplacian from precomputed kNN lists (e.g. shared with another
  /// consumer). Throws `invalid_argument` for inconsistent lists (sizes, index ≥ n, self-loops,
  /// negative or non-finite distances) or a bad σ.
  [[nodiscard]] static sparse_laplacian from_knn(const knn_lists<T>& knn,
                                                 const laplacian_options<T>& options = {}) {
    detail::require_sigma(options.sigma);
    const std::size_t n = knn.n, k = knn.k;
    require_non_empty("knn.n", n);
    require_at_most("knn.n", n, std::min<std::size_t>(max_sequence_length, 0xFFFFFFFFu));
    require_argument(k < n, "sparse_laplacian: knn.k must be < knn.n");
    require_dimension("knn.indices.size()", knn.indices.size(), n * k);
    require_dimension("knn.squared_distances.size()", knn.squared_distances.size(), n * k);
    for (std::size_t p = 0; p < n * k; ++p) {
      const std::size_t j = knn.indices[p];
      const T d2 = knn.squared_distances[p];
      if (j >= n || j == p / k || !std::isfinite(d2) || d2 < T(0)) {
        std::ostringstream os;
        os << "invalid argument: knn entry " << p << " (node " << p / k << " -> " << j
           << ", squared distance " << d2
           << ") must name another node < n with a finite non-negative distance";
        throw invalid_argument(os.str());
      }
    }
    double sigma = 0.0;
    if (options.sigma) {
      sigma = static_cast<double>(*options.sigma);
    } else {
      std::vector<double> dist(n * k);
      for (std::size_t p = 0; p < n * k; ++p)
        dist[p] = std::sqrt(static_cast<double>(knn.squared_distances[p]));
      sigma = detail::default_sigma(std::move(dist));
    }
    const T inv = static_cast<T>(1.0 / (2.0 * sigma * sigma));
    const bool use_max = options.symmetrize == knn_symmetrization::max;

    // Bucket the 2·n·k directed contributions by row, then sort each row by column and merge
    // duplicates (max, or sum of halves for the mean).
    std::vector<std::size_t> count(n + 1, 0);
    for (std::size_t p = 0; p < n * k; ++p) {
      ++count[p / k + 1];
      ++count[knn.indices[p] + std::size_t{1}];
    }
    for (std::size_t i = 0; i < n; ++i) count[i + 1] += count[i];
    std::vector<std::pair<std::uint32_t, T>> entries(count[n]);
    std::vector<std::size_t> fill(count.begin(), count.end() - 1);
    for (std::size_t p = 0; p < n * k; ++p) {
      const std::size_t i = p / k, j = knn.indices[p];
      T w = std::exp(-knn.squared_distances[p] * inv);
      if (!use_max) w /= T(2);
      entries[fill[i]++] = {static_cast<std::uint32_t>(j), w};
      entries[fill[j]++] = {static_cast<std::uint32_t>(i), w};
    }
    sparse_laplacian g;
    g.n_ = n;
    g.k_ = k;
    g.type_ = options.type;
    g.sigma_ = static_cast<T>(sigma);
    g.offsets_.assign(n + 1, 0);
    g.columns_.reserve(entries.size());
    g.weights_.reserve(entries.size());
    for (std::size_t i = 0; i < n; ++i) {
      const auto b = entries.begin() + static_cast<std::ptrdiff_t>(count[i]);
      const auto e = entries.begin() + static_cast<std::ptrdiff_t>(count[i + 1]);
      std::sort(b, e, [](const auto& x, const auto& y) { return x.first < y.first; });
      for (auto it = b; it != e; ++it) {
        if (g.columns_.size() > g.offsets_[i] && g.columns_.back() == it->first) {
          T& last = g.weights_.back();
          last = use_max ? std::max(last, it->second) : last + it->second;
        } else {
          g.columns_.push_back(it->first);
          g.weights_.push_back(it->second);
        }
      }
      g.offsets_[i + 1] = g.columns_.size();
    }
    g.finish();
    return g;
  }

  /// Number of nodes.
  [[nodiscard]] std::size_t size() const noexcept { return n_; }
  /// Neighbours per node used for the kNN lists (after clamping).
  [[nodiscard]] std::size_t k() const noexcept { return k_; }
  /// Normalisation of L.
  [[nodiscard]] laplacian_type type() const noexcept { return type_; }
  /// The kernel width used.
  [[nodiscard]] T sigma() const noexcept { return sigma_; }
  /// Number of stored off-diagonal entries (edges counted in both directions).
  [[nodiscard]] std::size_t nnz() const noexcept { return columns_.size(); }
  /// CSR row offsets (n + 1 entries).
  [[nodiscard]] std::span<const std::size_t> offsets() const noexcept { return offsets_; }
  /// CSR column indices (ascending within a row).
  [[nodiscard]] std::span<const std::uint32_t> columns() const noexcept { return columns_; }
  /// Symmetrised kernel weights W_ij of the stored entries.
  [[nodiscard]] std::span<const T> weights() const noexcept { return weights_; }
  /// Off-diagonal entries L_ij of the stored entries.
  [[nodiscard]] std::span<const T> values() const noexcept { return values_; }
  /// Diagonal of L.
  [[nodiscard]] std::span<const T> diagonal() const noexcept { return diag_; }
  /// Degrees d_i = Σ_j W_ij.
  [[nodiscard]] std::span<const T> degrees() const noexcept { return deg_; }

  /// \brief y = L x in O(n + nnz) (rows in parallel for large graphs). `y` must not alias `x`.
  /// Throws `dimension_mismatch` unless both have size() entries.
  void apply(std::span<const T> x, std::span<T> y) const {
    detail::require_apply_sizes(x.size(), y.size(), n_);
    apply_unchecked(x.data(), y.data());
  }

  /// \brief y = L x without checks (x, y hold size() values, no aliasing).
  void apply_unchecked(const T* x, T* y) const noexcept {
    constexpr std::size_t chunk = 2048;
    const std::size_t* off = offsets_.data();
    const std::uint32_t* col = columns_.data();
    const T* val = values_.data();
    const T* dia = diag_.data();
    const auto rows = [=](std::size_t r0, std::size_t r1) noexcept {
      for (std::size_t i = r0; i < r1; ++i) {
        T acc = dia[i] * x[i];
        const std::size_t e = off[i + 1];
        for (std::size_t p = off[i]; p < e; ++p) acc += val[p] * x[col[p]];
        y[i] = acc;
      }
    };
    if (columns_.size() < (std::size_t{1} << 18)) {
      rows(0, n_);
      return;
    }
    const std::size_t chunks = (n_ + chunk - 1) / chunk;
    // The row body cannot throw, so parallel_for never rethrows here.
    parallel_for(0, chunks, [&](std::size_t c) { rows(c * chunk, std::min(n_, (c + 1) * chunk)); });
  }

  /// \brief Gershgorin bound on the spectrum (capped at 2 for L_sym / L_rw; see the file).
  [[nodiscard]] T lambda_max_bound() const noexcept { return bound_; }

  /// \brief Diffusion energy (see the file comment). Throws `dimension_mismatch`.
  [[nodiscard]] T energy(std::span<const T> x) const {
    require_dimension("energy: x.size()", x.size(), n_);
    std::vector<T> y(n_);
    apply_unchecked(x.data(), y.data());
    T e = T(0);
    for (std::size_t i = 0; i < n_; ++i)
      e += x[i] * y[i] * (type_ == laplacian_type::random_walk ? deg_[i] : T(1));
    return e;
  }

  /// \brief ½ Σ_ij W_ij (x_i − x_j)². Throws `dimension_mismatch`.
  [[nodiscard]] T dirichlet_form(std::span<const T> x) const {
    require_dimension("dirichlet_form: x.size()", x.size(), n_);
    T e = T(0);
    for (std::size_t i = 0; i < n_; ++i)
      for (std::size_t p = offsets_[i]; p < offsets_[i + 1]; ++p) {
        const T diff = x[i] - x[columns_[p]];
        e += weights_[p] * diff * diff;
      }
    return e / T(2);
  }

  /// \brief L as a dense n × n matrix (for inspection and tests; O(n²) memory).
  [[nodiscard]] row_matrix<T> to_dense() const {
    const auto ix = [](std::size_t i) { return static_cast<Eigen::Index>(i); };
    row_matrix<T> l = row_matrix<T>::Zero(ix(n_), ix(n_));
    for (std::size_t i = 0; i < n_; ++i) {
      l(ix(i), ix(i)) = diag_[i];
      for (std::size_t p = offsets_[i]; p < offsets_[i + 1]; ++p)
        l(ix(i), ix(columns_[p])) = values_[p];
    }
    return l;
  }

  /// \brief W as a dense n × n matrix (for inspection and tests; O(n²) memory).
  [[nodiscard]] row_matrix<T> weights_dense() const {
    const auto ix = [](std::size_t i) { return static_cast<Eigen::Index>(i); };
    row_matrix<T> w = row_matrix<T>::Zero(ix(n_), ix(n_));
    for (std::size_t i = 0; i < n_; ++i)
      for (std::size_t p = offsets_[i]; p < offsets_[i + 1]; ++p)
        w(ix(i), ix(columns_[p])) = weights_[p];
    return w;
  }

 private:
  // Degrees, L values, diagonal and the spectral bound from the CSR weights.
  void finish() {
    deg_.assign(n_, T(0));
    for (std::size_t i = 0; i < n_; ++i)
      for (std::size_t p = offsets_[i]; p < offsets_[i + 1]; ++p) deg_[i] += weights_[p];
    const std::vector<T> s = detail::inv_sqrt_degrees(deg_);
    values_.resize(weights_.size());
    diag_.assign(n_, T(0));
    T gersh = T(0);
    for (std::size_t i = 0; i < n_; ++i) {
      const T di = deg_[i];
      switch (type_) {
        case laplacian_type::combinatorial:
          diag_[i] = di;
          break;
        case laplacian_type::symmetric_normalized:
        case laplacian_type::random_walk:
          diag_[i] = di > T(0) ? T(1) : T(0);
          break;
      }
      for (std::size_t p = offsets_[i]; p < offsets_[i + 1]; ++p) {
        const T w = weights_[p];
        switch (type_) {
          case laplacian_type::combinatorial:
            values_[p] = -w;
            break;
          case laplacian_type::symmetric_normalized:
            values_[p] = -w * (s[i] * s[columns_[p]]);
            break;
          case laplacian_type::random_walk:
            values_[p] = di > T(0) ? -w / di : T(0);
            break;
        }
      }
      T row = std::abs(diag_[i]);
      for (std::size_t p = offsets_[i]; p < offsets_[i + 1]; ++p) row += std::abs(values_[p]);
      gersh = std::max(gersh, row);
    }
    bound_ = type_ == laplacian_type::combinatorial ? gersh : std::min(gersh, T(2));
  }

  std::size_t n_ = 0;
  std::size_t k_ = 0;
  laplacian_type type_ = laplacian_type::symmetric_normalized;
  T sigma_ = T(1);
  std::vector<std::size_t> offsets_;
  std::vector<std::uint32_t> columns_;
  std::vector<T> weights_;
  std::vector<T> values_;
  std::vector<T> diag_;
  std::vector<T> deg_;
  T bound_ = T(0);
};

// ================================================================================================
// Power-iteration estimate of λ_max
// ================================================================================================

/// \brief Power-iteration estimate of the largest eigenvalue of L: ‖L x_m‖/‖x_m‖ after
/// `iterations` normalised products from a seeded Gaussian start vector. For symmetric L this
/// is ≤ λ_max and converges to it; it is an *estimate*, so add a margin (e.g. ×1.05) before
/// passing it to the diffusion solvers as a spectral bound. Throws `invalid_argument` for
/// iterations = 0 or an empty operator.
template <laplacian_operator Op>
[[nodiscard]] typename Op::value_type estimate_lambda_max(const Op& op,
                                                          std::size_t iterations = 100,
                                                          std::uint64_t seed = 0x5eed) {
  using T = typename Op::value_type;
  const std::size_t n = op.size();
  require_non_empty("estimate_lambda_max: operator", n);
  require_argument(iterations >= 1, "estimate_lambda_max: iterations must be >= 1");
  rng gen(seed);
  std::vector<T> x(n), y(n);
  for (auto& v : x) v = gen.normal<T>();
  double est = 0.0;
  for (std::size_t it = 0; it < iterations; ++it) {
    double nx = 0.0;
    for (T v : x) nx += static_cast<double>(v) * static_cast<double>(v);
    nx = std::sqrt(nx);
    if (nx == 0.0) return T(0);
    for (auto& v : x) v = static_cast<T>(static_cast<double>(v) / nx);
    op.apply(std::span<const T>(x), std::span<T>(y));
    double ny = 0.0;
    for (T v : y) ny += static_cast<double>(v) * static_cast<double>(v);
    est = std::sqrt(ny);
    std::swap(x, y);
  }
  return static_cast<T>(est);
}

}  // namespace ruvector::attention
// ---- end ruvector/attention/pde/laplacian.hpp ----
// ---- begin ruvector/attention/topology/coherence.hpp ----
/// \file topology/coherence.hpp
/// \brief Window-coherence metrics of an attention window: how well one query's attention weights
/// a over n keys agree with the geometry of the keys, measured on the kNN graph of the keys.
///
/// ## The graph
/// E = { (i, j) : j ∈ N_k(i) } — the directed edges of the exact k-nearest-neighbour lists of the
/// keys in squared Euclidean distance (`exact_knn`, self excluded, ties to the smaller index), so
/// |E| = n·k; a mutual pair appears once per direction. `k` is clamped to n − 1; n = 1 gives the
/// empty graph (k = 0). A precomputed `knn_lists` may be supplied instead.
///
/// Cosine similarity of an edge: c_ij = k_i·k_j / (‖k_i‖·‖k_j‖) ∈ [−1, 1], with c_ij := 0 when
/// either key is the zero vector, and clamped to [−1, 1] against rounding. The clamped similarity
/// s_ij = min(max(c_ij, 0), 1) ∈ [0, 1] weights the cut proxy (anti-correlated keys do not count
/// as "connected").
///
/// ## Attention weights
/// a_i ≥ 0 are the query's weights over the keys, divided by their sum here (the caller's a sums
/// to 1 up to rounding; only the direction of a matters). When no weights are given, a_i = 1/n
/// (uniform). Uniform attention is perfectly smooth on any graph, so then boundary mass, cut proxy
/// and disagreement are all exactly 0 and only the similarity variance contributes.
///
/// ## Metrics (all in [0, 1]; for each, HIGHER = LESS coherent)
/// - **boundary mass** B. Sort a descending; m = the smallest count whose prefix sum reaches
///   τ − 1e-12 (τ = `mass_fraction`, default 0.5; the 1e-12 absorbs rounding of Σa = 1), θ = the
///   m-th largest weight, and the core S = { i : a_i ≥ θ } — the smallest upper level set of a
///   holding ≥ τ of the mass (equal to "the smallest set holding ≥ τ" unless weights tie at θ, in
///   which case all tied keys join, so S never depends on key order). Then
///       B = Σ_{(i,j)∈E, [i∈S]≠[j∈S]} |a_i − a_j|  /  Σ_{(i,j)∈E, i∈S or j∈S} (a_i + a_j)
///   (0/0 := 0): of the attention carried by the kNN edges touching S, the fraction that drops
///   off across S's boundary. Each edge touching S carries a_i + a_j; an edge leaving S loses
///   |a_i − a_j| of it (≤ a_i + a_j, so B ∈ [0, 1]). B = 0 when S is closed under kNN or its
///   boundary edges join equal weights (a plateau split by τ is not a boundary); B = 1 when no
///   edge joins two keys of S and every edge leaving S ends at a key with a = 0.
/// - **cut proxy** C = Σ_E s_ij·|a_i − a_j| / Σ_E s_ij·(a_i + a_j) (0/0 := 0): a normalised graph
///   total variation of a (a relaxed normalised cut between attended and ignored keys). 0 iff a is
///   constant across every edge with s_ij > 0; 1 when every similar pair has one endpoint at 0.
/// - **disagreement** D = (1/|E|)·Σ_E |a_i − a_j| / (a_i + a_j) (a term with a_i + a_j = 0 counts
///   0; 0 when E is empty): the mean relative contrast of attention between kNN neighbours, blind
///   to mass (a pair of negligible weights 10× apart counts as much as a heavy pair).
/// - **similarity variance** V = (1/|E|)·Σ_E (c_ij − c̄)², c̄ = (1/|E|)·Σ_E c_ij (population
///   variance, two passes; 0 when E is empty). Since c ∈ [−1, 1], V ≤ 1. It depends on the keys
///   only: high V means neighbourhoods mix near-duplicates with unrelated keys.
///
/// ## Combined score (1 = coherent)
///     coherence = 1 − (w_B·B + w_C·C + w_D·D + w_V·V) / (w_B + w_C + w_D + w_V)
/// with the weights of `coherence_weights` (defaults 0.35, 0.35, 0.20, 0.10; non-negative, sum
/// > 0), so coherence ∈ [0, 1] and 1 = coherent (the reverse direction of the four metrics).
///
/// ## Cost
/// kNN build O(n²·d) (the dominant term; do it once per key set with `prepare_coherence_keys`),
/// edge cosines O(n·k·d), metrics O(n·k + n log n). All sums are accumulated in double; the metrics
/// are returned as double.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>


namespace ruvector::attention {

/// \brief Weights of the four metrics in the combined coherence score (non-negative, sum > 0).
struct coherence_weights {
  double boundary_mass = 0.35;
  double cut_proxy = 0.35;
  double disagreement = 0.20;
  double similarity_variance = 0.10;
};

/// \brief Parameters of the window-coherence metrics (see the file comment).
struct coherence_config {
  /// Neighbours per key of the kNN graph (≥ 1; clamped to n − 1). Ignored when a precomputed
  /// kNN graph or `coherence_keys` is supplied.
  std::size_t k = 16;
  /// τ ∈ (0, 1]: the attention mass the boundary-mass core S must hold.
  double mass_fraction = 0.5;
  /// Weights of the combined score.
  coherence_weights weights{};

  /// Throws `invalid_config` naming the offending field.
  void validate() const {
    require_config(k >= 1, "coherence_config.k must be >= 1");
    require_config(std::isfinite(mass_fraction) && mass_fraction > 0.0 && mass_fraction <= 1.0,
                   "coherence_config.mass_fraction must be in (0, 1]");
    const double w[4] = {weights.boundary_mass, weights.cut_proxy, weights.disagreement,
                         weights.similarity_variance};
    double total = 0.0;
    for (double x : w) {
      require_config(std::isfinite(x) && x >= 0.0,
                     "coherence_config.weights must be finite and >= 0");
      total += x;
    }
    require_config(total > 0.0, "coherence_config.weights must not all be 0");
  }
};

/// \brief The window-coherence metrics of one attention window (definitions in the file comment).
struct coherence_metrics {
  double boundary_mass = 0.0;        ///< B ∈ [0, 1], higher = less coherent
  double cut_proxy = 0.0;            ///< C ∈ [0, 1], higher = less coherent
  double disagreement = 0.0;         ///< D ∈ [0, 1], higher = less coherent
  double similarity_variance = 0.0;  ///< V ∈ [0, 1], higher = less coherent
  double coherence = 1.0;            ///< combined score ∈ [0, 1], 1 = coherent
  std::size_t edges = 0;             ///< |E| = n·k
  std::size_t core_size = 0;         ///< |S|, the boundary-mass core
};

namespace detail {

// Cosine of rows a and b given their squared norms (computed in T by the SIMD dot; if T overflows,
// recomputed in double). 0 for a zero vector; clamped to [−1, 1].
template <class T>
double edge_cosine(const T* a, const T* b, std::size_t d, double na2, double nb2) noexcept {
  if (!(na2 > 0.0) || !(nb2 > 0.0)) return 0.0;
  double dot = static_cast<double>(kernels::dot(a, b, d));
  if (!std::isfinite(dot)) {
    dot = 0.0;
    for (std::size_t c = 0; c < d; ++c)
      dot += static_cast<double>(a[c]) * static_cast<double>(b[c]);
  }
  const double c = dot / (std::sqrt(na2) * std::sqrt(nb2));
  return std::clamp(c, -1.0, 1.0);
}

template <class T>
double squared_norm(const T* a, std::size_t d) noexcept {
  double s = static_cast<double>(kernels::dot(a, a, d));
  if (!std::isfinite(s)) {
    s = 0.0;
    for (std::size_t c = 0; c < d; ++c) s += static_cast<double>(a[c]) * static_cast<double>(a[c]);
  }
  return s;
}

// Validates a user-supplied kNN graph against n points.
template <class T>
void validate_knn(const knn_lists<T>& knn, std::size_t n) {
  require_dimension("knn.n (must equal keys.rows())", knn.n, n);
  if (n == 1) {
    require_dimension("knn.k (a single key has no neighbours)", knn.k, 0);
  } else {
    require_argument(knn.k >= 1 && knn.k < n, "knn.k must satisfy 1 <= k < keys.rows()");
  }
  require_dimension("knn.indices.size() (must equal n*k)", knn.indices.size(), n * knn.k);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t m = 0; m < knn.k; ++m) {
      const std::size_t j = knn.indices[i * knn.k + m];
      if (j >= n || j == i) {
        std::ostringstream os;
        os << "invalid argument: knn.indices[" << i * knn.k + m << "] (neighbour " << m
           << " of key " << i << ") is " << j << ", expected an index in [0, " << n
           << ") other than " << i;
        throw invalid_argument(os.str());
      }
    }
  }
}

}  // namespace detail

/// \brief A key set prepared for repeated coherence evaluation: a copy of the keys, their kNN
/// graph and the cosine similarity of every edge (and hence V). Building one costs the kNN
/// O(n²·d) plus O(n·k·d); each later `compute_coherence` on it costs O(n·k + n log n). Immutable
/// and safe to share across threads. Owning a copy of the keys keeps it valid whatever happens to
/// the caller's buffer.
template <attention_scalar T>
class coherence_keys {
 public:
  using value_type = T;

  /// Builds the exact kNN graph with k' = min(k, n − 1) neighbours (k ≥ 1 required; n = 1 gives
  /// the empty graph). Throws `invalid_argument` for empty keys or k = 0, `non_finite_input` for
  /// NaN/Inf keys.
  coherence_keys(const matrix_cref<T>& keys, std::size_t k) : keys_(keys) {
    const std::size_t n = size();
    require_non_empty("keys", n);
    require_non_empty("keys.cols()", dim());
    require_at_most("keys.rows()", n, max_sequence_length);
    require_argument(k >= 1, "coherence_keys: k must be >= 1");
    if (n == 1) {
      require_finite("keys", keys_.data(), 1, dim(), keys_.cols());
      knn_.n = 1;
      knn_.k = 0;
    } else {
      knn_ = exact_knn<T>(keys_, std::min(k, n - 1));
    }
    finish();
  }

  /// Uses a precomputed kNN graph of these keys (validated: n, 1 ≤ k < n, indices in range and
  /// not self; the distances are not used).
  coherence_keys(const matrix_cref<T>& keys, knn_lists<T> knn) : keys_(keys), knn_(std::move(knn)) {
    const std::size_t n = size();
    require_non_empty("keys", n);
    require_non_empty("keys.cols()", dim());
    require_at_most("keys.rows()", n, max_sequence_length);
    require_finite("keys", keys_.data(), n, dim(), keys_.cols());
    detail::validate_knn(knn_, n);
    finish();
  }

  [[nodiscard]] std::size_t size() const noexcept { return static_cast<std::size_t>(keys_.rows()); }
  [[nodiscard]] std::size_t dim() const noexcept { return static_cast<std::size_t>(keys_.cols()); }
  /// Neighbours per key (0 when n = 1).
  [[nodiscard]] std::size_t k() const noexcept { return knn_.k; }
  [[nodiscard]] const row_matrix<T>& keys() const noexcept { return keys_; }
  [[nodiscard]] const knn_lists<T>& knn() const noexcept { return knn_; }
  /// c_ij of edge (i, knn.indices[i*k + m]) at position i*k + m.
  [[nodiscard]] std::span<const double> edge_cosines() const noexcept { return cosines_; }
  /// V, the similarity variance (keys only).
  [[nodiscard]] double similarity_variance() const noexcept { return variance_; }

 private:
  void finish() {
    const std::size_t n = size(), d = dim(), k = knn_.k;
    std::vector<double> norms(n);
    for (std::size_t i = 0; i < n; ++i) norms[i] = detail::squared_norm(keys_.row(i).data(), d);
    cosines_.resize(n * k);
    double mean = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t m = 0; m < k; ++m) {
        const std::size_t j = knn_.indices[i * k + m];
        const double c =
            detail::edge_cosine(keys_.row(i).data(), keys_.row(j).data(), d, norms[i], norms[j]);
        cosines_[i * k + m] = c;
        mean += c;
      }
    }
    variance_ = 0.0;
    if (!cosines_.empty()) {
      mean /= static_cast<double>(cosines_.size());
      for (double c : cosines_) variance_ += (c - mean) * (c - mean);
      variance_ = std::min(1.0, variance_ / static_cast<double>(cosines_.size()));
    }
  }

  row_matrix<T> keys_;
  knn_lists<T> knn_;
  std::vector<double> cosines_;
  double variance_ = 0.0;
};

/// \brief `coherence_keys<T>(keys, k)`.
template <attention_scalar T>
[[nodiscard]] coherence_keys<T> prepare_coherence_keys(const matrix_cref<T>& keys, std::size_t k) {
  return coherence_keys<T>(keys, k);
}

/// \brief The combined score 1 − Σ w_m·m / Σ w_m of the four metrics already in `m` (writes and
/// returns `m.coherence`).
inline double combine_coherence(coherence_metrics& m, const coherence_weights& w) noexcept {
  const double total = w.boundary_mass + w.cut_proxy + w.disagreement + w.similarity_variance;
  const double bad = w.boundary_mass * m.boundary_mass + w.cut_proxy * m.cut_proxy +
                     w.disagreement * m.disagreement +
                     w.similarity_variance * m.similarity_variance;
  m.coherence = total > 0.0 ? std::clamp(1.0 - bad / total, 0.0, 1.0) : 1.0;
  return m.coherence;
}

namespace detail {

// The metrics from normalised double weights `a` (Σa = 1, a ≥ 0); see the file comment.
template <class T>
coherence_metrics coherence_from_weights(const coherence_keys<T>& keys,
                                         const std::vector<double>& a,
                                         const coherence_config& config) {
  const std::size_t n = keys.size(), k = keys.k();
  const auto& idx = keys.knn().indices;
  const auto cos = keys.edge_cosines();
  coherence_metrics m;
  m.edges = n * k;
  m.similarity_variance = keys.similarity_variance();

  // Core S: the smallest upper level set of a holding >= τ (ties at the threshold all join).
  std::vector<std::uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  std::sort(order.begin(), order.end(), [&](std::uint32_t x, std::uint32_t y) {
    return a[x] > a[y] || (a[x] == a[y] && x < y);
  });
  const double target = config.mass_fraction - 1e-12;
  double cum = 0.0, theta = a[order[n - 1]];
  for (std::size_t r = 0; r < n; ++r) {
    cum += a[order[r]];
    if (cum >= target) {
      theta = a[order[r]];
      break;
    }
  }
  std::vector<unsigned char> in_s(n);
  for (std::size_t i = 0; i < n; ++i) {
    in_s[i] = a[i] >= theta ? 1 : 0;
    m.core_size += in_s[i];
  }

  double b_num = 0.0, b_den = 0.0, c_num = 0.0, c_den = 0.0, d_sum = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t r = 0; r < k; ++r) {
      const std::size_t e = i * k + r, j = idx[e];
      const double sum = a[i] + a[j], diff = std::abs(a[i] - a[j]);
      if (in_s[i] || in_s[j]) {
        b_den += sum;
        if (in_s[i] != in_s[j]) b_num += diff;
      }
      const double s = std::clamp(cos[e], 0.0, 1.0);
      c_num += s * diff;
      c_den += s * sum;
      if (sum > 0.0) d_sum += diff / sum;
    }
  }
  m.boundary_mass = b_den > 0.0 ? std::min(1.0, b_num / b_den) : 0.0;
  m.cut_proxy = c_den > 0.0 ? std::min(1.0, c_num / c_den) : 0.0;
  m.disagreement = m.edges > 0 ? std::min(1.0, d_sum / static_cast<double>(m.edges)) : 0.0;
  combine_coherence(m, config.weights);
  return m;
}

}  // namespace detail

/// \brief The four metrics and the combined score of attention weights `attention` (length n,
/// finite, ≥ 0, positive sum; empty = uniform) on a prepared key set. `config.k` is not used (the
/// graph is the prepared one). Throws `dimension_mismatch`, `non_finite_input`,
/// `invalid_argument` (negative weight or zero sum) or `invalid_config`.
template <attention_scalar T>
[[nodiscard]] coherence_metrics compute_coherence(
    const coherence_keys<T>& keys, std::type_identity_t<std::span<const T>> attention,
    const coherence_config& config = {}) {
  config.validate();
  const std::size_t n = keys.size();
  // a_i = w_i / Σw in double (uniform when absent).
  std::vector<double> a(n, 1.0 / static_cast<double>(n));
  if (!attention.empty()) {
    require_dimension("attention.size() (must equal keys.rows())", attention.size(), n);
    require_finite<T>("attention", attention);
    double total = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      if (attention[i] < T(0)) {
        std::ostringstream os;
        os << "invalid argument: attention[" << i << "] = " << attention[i] << ", expected >= 0";
        throw invalid_argument(os.str());
      }
      total += static_cast<double>(attention[i]);
    }
    require_argument(total > 0.0, "attention weights must have a positive sum");
    for (std::size_t i = 0; i < n; ++i) a[i] = static_cast<double>(attention[i]) / total;
  }
  return detail::coherence_from_weights(keys, a, config);
}

/// \brief Metrics of `attention` (empty = uniform) over the exact kNN graph of `keys` with
/// k' = min(config.k, n − 1) neighbours. Cost O(n²·d) for the graph; use `coherence_keys` to reuse
/// it across queries.
template <attention_scalar T>
[[nodiscard]] coherence_metrics compute_coherence(
    const matrix_cref<T>& keys, std::type_identity_t<std::span<const T>> attention,
    const coherence_config& config = {}) {
  config.validate();
  return compute_coherence(coherence_keys<T>(keys, config.k), attention, config);
}

/// \brief Metrics of `attention` (empty = uniform) over a precomputed kNN graph of `keys`
/// (`config.k` is ignored; the graph's k is used).
template <attention_scalar T>
[[nodiscard]] coherence_metrics compute_coherence(
    const std::type_identity_t<matrix_cref<T>>& keys, const knn_lists<T>& knn,
    std::type_identity_t<std::span<const T>> attention, const coherence_config& config = {}) {
  config.validate();
  return compute_coherence(coherence_keys<T>(keys, knn), attention, config);
}

}  // namespace ruvector::attention
// ---- end ruvector/attention/topology/coherence.hpp ----
// ---- begin ruvector/attention/transport/sliced_wasserstein.hpp ----
/// \file transport/sliced_wasserstein.hpp
/// \brief Sliced-Wasserstein distances between point sets and an attention mechanism over
/// multi-vector key sets whose scores are real sliced optimal-transport costs.
///
/// Maths. For uniform empirical measures on ℝ with n and m atoms (sizes may differ),
///
///     W_p^p(x, y) = ∫_0^1 |F_x^{-1}(t) − F_y^{-1}(t)|^p dt
///
/// evaluated exactly by merging the two sorted samples over the union of the quantile breakpoints
/// {i/n} ∪ {j/m} (integer arithmetic in units of 1/(nm)); for n = m it is the sorted matching
/// (1/n)·Σ_i |x_(i) − y_(i)|^p. For point sets X, Y ⊂ ℝ^d and unit directions θ_1..θ_P,
///
///     SW_p^p(X, Y) = (1/P)·Σ_l W_p^p(⟨X, θ_l⟩, ⟨Y, θ_l⟩)
///
/// the Monte-Carlo estimate of the sliced Wasserstein distance (Rabin, Peyré, Delon & Bernot 2011;
/// Bonneel, Rabin, Peyré & Pfister 2015). Everything here returns SW_p^p (the p-th power), not
/// SW_p. For single points (sets of one) with p = 2, SW_2^2 = (1/P)Σ_l ⟨x − y, θ_l⟩², whose
/// expectation over uniform directions is ‖x − y‖²/d.
///
/// Directions. `random_directions(dim, P, seed)` draws P i.i.d. N(0, I_d) vectors from
/// `rng(seed)` (core/rng.hpp; bit-reproducible on every platform) in double, normalises each to
/// unit length in double and rounds to T. Caller-given directions are **normalised** the same way
/// (their norm is computed in double); a row with a non-finite entry throws `non_finite_input`, a
/// row of norm ≤ 1e-30 throws `invalid_argument`. Nothing else about them is required (they need
/// not be distinct or orthogonal).
///
/// Attention (`sliced_wasserstein_attention<T>`). Keys are N sets of vectors (`vector_sets<T>`,
/// CSR layout: one row-major matrix plus offsets) with one value row per set. For a query set Q,
///
///     s_j = −SW_p^p(Q, K_j)/τ,   w = softmax(s) over the scored sets,   out = Σ_j w_j·V_j.
///
/// `prepare_keys` projects every key set on every direction and sorts it **once**, storing, per
/// set, a P × n_j direction-major block (sets consecutive, so a full scan streams one array and a
/// single candidate is one contiguous block), plus the mean vector of each set. A query is
/// projected and sorted once per call; the cost against one key set is then P merges of two sorted
/// runs — for equal sizes a single vectorised Σ|a_i − b_i|^p over P·n contiguous values.
///
/// Two-stage filtering: with `candidates = C` and 0 < C < N, the key sets are first ranked by the
/// cheap score mean(Q)·mean(K_j) (`kernels::row_dots`; ties → lower index), only the top C are
/// scored by SW, and every other set gets weight exactly 0. C = 0 or C ≥ N scores every set (no
/// ranking is done). Note the filter is a *similarity* heuristic; it is not a bound on SW.
///
/// Conventions. Accumulation is in T. The softmax is max-subtracted (kernels::softmax); if every
/// scored cost overflows to +inf (finite but astronomically large inputs), all weights are 0 and
/// the output is zeros, never NaN. Keys are checked for NaN/Inf in `prepare_keys`, the query in
/// every call; values are checked only through the output (an output is finite iff the value rows
/// it used are), so the check costs nothing on the happy path and names the first bad value among
/// the scored rows. Empty sets, an empty key collection, dimension mismatches, P = 0, p < 1 and
/// τ ≤ 0 throw (`invalid_argument`, `dimension_mismatch`, `invalid_config`). Prepared keys remember
/// a fingerprint of the directions that built them; using them with a mechanism with other
/// directions throws `invalid_argument`. Mechanism objects and prepared keys are immutable and
/// safe to share across threads.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <span>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

// ---- begin ruvector/attention/transport/detail/sw_kernels.hpp ----
/// \file transport/detail/sw_kernels.hpp
/// \brief Unvalidated kernels behind transport/sliced_wasserstein.hpp: projection of a point set
/// onto P directions followed by a per-direction sort, and the 1-D p-Wasserstein cost between two
/// sorted empirical measures with uniform weights.
///
/// 1-D optimal transport (Villani 2003, Thm 2.18; Rabin et al. 2011): for μ = (1/n)Σδ_{x_i} and
/// ν = (1/m)Σδ_{y_j} on ℝ,
///
///     W_p^p(μ, ν) = ∫_0^1 |F_μ^{-1}(t) − F_ν^{-1}(t)|^p dt,
///
/// and the quantile functions are step functions: F_μ^{-1}(t) = x_(i) on ((i)/n, (i+1)/n]. The
/// integral is therefore a merge over the union of the breakpoints {i/n} ∪ {j/m}. The kernels keep
/// the breakpoints as integers in units of 1/(n·m) — i/n = i·m/(nm), j/m = j·n/(nm) — so every
/// segment length is an exact integer and no breakpoint is ever rounded. For n = m every segment
/// has length 1/n and the cost is (1/n)·Σ_i |x_(i) − y_(i)|^p (sorted matching), which is the
/// vectorised path.
///
/// All kernels are `noexcept`, do no validation and return **sums** (the caller divides by the
/// number of segments); accumulation is in T. |d|^p uses |d| for p = 1, d·d for p = 2 and
/// std::pow(|d|, p) otherwise (std::pow(0, p) = 0 for p > 0).

#include <algorithm>
#include <cmath>
#include <cstddef>


RUVECTOR_ATTENTION_KERNEL_WARNINGS_BEGIN

namespace ruvector::attention::detail::sw {

/// Which closed form |d|^p takes.
enum class power_kind { one, two, general };

/// Classifies an exponent p (≥ 1): exactly 1 and exactly 2 get dedicated code paths.
[[nodiscard]] inline power_kind classify_power(double p) noexcept {
  if (p == 1.0) return power_kind::one;
  if (p == 2.0) return power_kind::two;
  return power_kind::general;
}

/// |d|^p for the given kind (p is only read for `general`).
template <class T>
[[nodiscard]] RUVECTOR_ATTENTION_ALWAYS_INLINE T abs_pow(T d, power_kind kind, T p) noexcept {
  switch (kind) {
    case power_kind::one:
      return std::abs(d);
    case power_kind::two:
      return d * d;
    default:
      return std::pow(std::abs(d), p);
  }
}

/// Σ_{i<n} |a_i − b_i|^p for the fixed kinds one/two, four SIMD accumulators (see kernels/reduce).
template <power_kind Kind, class T, class Arch = kernels::default_arch>
[[nodiscard]] T sum_abs_diff_pow_fixed(const T* a, const T* b, std::size_t n) noexcept {
  using B = kernels::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const auto f = [](const B& d) {
    if constexpr (Kind == power_kind::one) {
      return xsimd::abs(d);
    } else {
      return d * d;
    }
  };
  std::size_t i = 0;
  T result(0);
  if (n >= W) {
    B acc0(T(0)), acc1(T(0)), acc2(T(0)), acc3(T(0));
    for (; i + 4 * W <= n; i += 4 * W) {
      acc0 += f(B::load_unaligned(a + i) - B::load_unaligned(b + i));
      acc1 += f(B::load_unaligned(a + i + W) - B::load_unaligned(b + i + W));
      acc2 += f(B::load_unaligned(a + i + 2 * W) - B::load_unaligned(b + i + 2 * W));
      acc3 += f(B::load_unaligned(a + i + 3 * W) - B::load_unaligned(b + i + 3 * W));
    }
    for (; i + W <= n; i += W) acc0 += f(B::load_unaligned(a + i) - B::load_unaligned(b + i));
    result = kernels::detail::hsum((acc0 + acc1) + (acc2 + acc3));
  }
  for (; i < n; ++i) {
    const T d = a[i] - b[i];
    result += Kind == power_kind::one ? std::abs(d) : d * d;
  }
  return result;
}

/// Σ_{i<n} |a_i − b_i|^p: the sorted-matching cost of two equal-size sorted runs (times n).
template <class T>
[[nodiscard]] T sum_abs_diff_pow(const T* a, const T* b, std::size_t n, power_kind kind,
                                 T p) noexcept {
  switch (kind) {
    case power_kind::one:
      return sum_abs_diff_pow_fixed<power_kind::one>(a, b, n);
    case power_kind::two:
      return sum_abs_diff_pow_fixed<power_kind::two>(a, b, n);
    default: {
      T s(0);
      for (std::size_t i = 0; i < n; ++i) s += std::pow(std::abs(a[i] - b[i]), p);
      return s;
    }
  }
}

/// (n·m)·W_p^p between the uniform measures on the sorted runs a (n values) and b (m values):
/// Σ over the merged quantile segments of (segment length in units of 1/(nm))·|a_i − b_j|^p.
/// n, m ≥ 1.
template <class T>
[[nodiscard]] T merge_abs_diff_pow(const T* a, std::size_t n, const T* b, std::size_t m,
                                   power_kind kind, T p) noexcept {
  std::size_t i = 0, j = 0, t = 0;
  std::size_t next_a = m, next_b = n;  // (i + 1)·m and (j + 1)·n
  T s(0);
  while (i < n && j < m) {
    const std::size_t next = std::min(next_a, next_b);
    s += static_cast<T>(next - t) * abs_pow(a[i] - b[j], kind, p);
    t = next;
    if (next_a == next) ++i, next_a += m;
    if (next_b == next) ++j, next_b += n;
  }
  return s;
}

/// In-place ascending sort; insertion sort for short runs (the common multi-vector case).
template <class T>
void sort_run(T* x, std::size_t n) noexcept {
  if (n <= 16) {
    for (std::size_t i = 1; i < n; ++i) {
      const T v = x[i];
      std::size_t k = i;
      for (; k > 0 && x[k - 1] > v; --k) x[k] = x[k - 1];
      x[k] = v;
    }
  } else {
    std::sort(x, x + n);
  }
}

/// Projects the n rows of `rows` (ld apart, d wide) onto the P unit directions `dirs` (P × d,
/// contiguous) and writes them direction-major and sorted: out[l·n + (rank)] = the rank-th smallest
/// ⟨x_i, θ_l⟩. `tmp` holds P values. Every caller projects through this one routine, so a set
/// projected as a query and as a key gives bit-identical values.
template <class T>
void project_sorted(const T* rows, std::size_t n, std::size_t ld, const T* dirs, std::size_t P,
                    std::size_t d, T* out, T* tmp) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    kernels::row_dots(dirs, P, d, d, rows + i * ld, T(1), tmp);
    for (std::size_t l = 0; l < P; ++l) out[l * n + i] = tmp[l];
  }
  for (std::size_t l = 0; l < P; ++l) sort_run(out + l * n, n);
}

/// SW_p^p from two direction-major sorted projection blocks (P × nx and P × ny):
/// (1/P)·Σ_l W_p^p(x_l, y_l). Equal sizes: one contiguous SIMD pass over P·n values.
template <class T>
[[nodiscard]] T sliced_cost(const T* xs, std::size_t nx, const T* ys, std::size_t ny, std::size_t P,
                            power_kind kind, T p) noexcept {
  if (nx == ny) {
    return sum_abs_diff_pow(xs, ys, P * nx, kind, p) / static_cast<T>(P * nx);
  }
  T s(0);
  for (std::size_t l = 0; l < P; ++l)
    s += merge_abs_diff_pow(xs + l * nx, nx, ys + l * ny, ny, kind, p);
  return s / (static_cast<T>(P) * static_cast<T>(nx * ny));
}

}  // namespace ruvector::attention::detail::sw

RUVECTOR_ATTENTION_KERNEL_WARNINGS_END
// ---- end ruvector/attention/transport/detail/sw_kernels.hpp ----

namespace ruvector::attention {

// ================================================================================================
// Multi-vector sets
// ================================================================================================

/// \brief N sets of d-dimensional vectors stored CSR-style: set i is rows
/// [offsets[i], offsets[i + 1]) of one row-major matrix. A single vector is a set of one.
/// Every set must be non-empty. Owns its data (value semantics).
template <attention_scalar T>
class vector_sets {
 public:
  using value_type = T;

  /// No sets.
  vector_sets() : offsets_{0} {}

  /// Takes `rows` (all vectors, set after set) and `offsets` (N + 1 non-decreasing entries,
  /// offsets[0] = 0, offsets[N] = rows.rows()). Throws `invalid_argument` for an empty set or
  /// malformed offsets, naming the index.
  vector_sets(row_matrix<T> rows, std::vector<std::size_t> offsets)
      : rows_(std::move(rows)), offsets_(std::move(offsets)) {
    require_argument(!offsets_.empty(), "vector_sets: offsets must hold N + 1 entries (got 0)");
    require_argument(offsets_.front() == 0, "vector_sets: offsets[0] must be 0");
    require_dimension("vector_sets: offsets.back() (must equal rows.rows())", offsets_.back(),
                      static_cast<std::size_t>(rows_.rows()));
    for (std::size_t i = 0; i + 1 < offsets_.size(); ++i) {
      if (offsets_[i + 1] <= offsets_[i]) {
        std::ostringstream os;
        os << "invalid argument: vector_sets: set " << i
           << " is empty or offsets decrease (offsets[" << i << "] = " << offsets_[i]
           << ", offsets[" << i + 1 << "] = " << offsets_[i + 1]
           << "); every set needs at least one vector";
        throw invalid_argument(os.str());
      }
    }
  }

  /// Consecutive sets of the given sizes over a copy of `rows` (Σ sizes = rows.rows()).
  [[nodiscard]] static vector_sets from_sizes(const matrix_cref<T>& rows,
                                              std::span<const std::size_t> sizes) {
    std::vector<std::size_t> off(sizes.size() + 1, 0);
    for (std::size_t i = 0; i < sizes.size(); ++i) off[i + 1] = off[i] + sizes[i];
    return vector_sets(row_matrix<T>(rows), std::move(off));
  }

  /// Every row of `rows` as its own set of one.
  [[nodiscard]] static vector_sets singletons(const matrix_cref<T>& rows) {
    std::vector<std::size_t> off(static_cast<std::size_t>(rows.rows()) + 1);
    std::iota(off.begin(), off.end(), std::size_t{0});
    return vector_sets(row_matrix<T>(rows), std::move(off));
  }

  /// Seeds-shaped adapter: sets[i][r] is vector r of set i (all vectors equally long).
  [[nodiscard]] static vector_sets from_nested(
      const std::vector<std::vector<std::vector<T>>>& sets) {
    std::size_t total = 0, dim = 0;
    bool have_dim = false;
    for (const auto& s : sets) {
      total += s.size();
      if (!have_dim && !s.empty()) dim = s.front().size(), have_dim = true;
    }
    row_matrix<T> m(static_cast<Eigen::Index>(total), static_cast<Eigen::Index>(dim));
    std::vector<std::size_t> off(sets.size() + 1, 0);
    std::size_t r = 0;
    for (std::size_t i = 0; i < sets.size(); ++i) {
      for (std::size_t k = 0; k < sets[i].size(); ++k, ++r) {
        if (sets[i][k].size() != dim) {
          std::ostringstream os;
          os << "dimension mismatch: sets[" << i << "][" << k << "].size() is " << sets[i][k].size()
             << ", expected " << dim;
          throw dimension_mismatch(os.str());
        }
        for (std::size_t c = 0; c < dim; ++c)
          m(static_cast<Eigen::Index>(r), static_cast<Eigen::Index>(c)) = sets[i][k][c];
      }
      off[i + 1] = r;
    }
    return vector_sets(std::move(m), std::move(off));
  }

  /// Number of sets N.
  [[nodiscard]] std::size_t size() const noexcept { return offsets_.size() - 1; }
  /// Vector width d.
  [[nodiscard]] std::size_t dim() const noexcept { return static_cast<std::size_t>(rows_.cols()); }
  /// Total number of vectors over all sets.
  [[nodiscard]] std::size_t total_rows() const noexcept { return offsets_.back(); }
  /// Number of vectors in set i.
  [[nodiscard]] std::size_t set_size(std::size_t i) const noexcept {
    return offsets_[i + 1] - offsets_[i];
  }
  /// The CSR offsets (N + 1 entries).
  [[nodiscard]] std::span<const std::size_t> offsets() const noexcept { return offsets_; }
  /// All vectors, set after set.
  [[nodiscard]] const row_matrix<T>& rows() const noexcept { return rows_; }
  /// Set i as a (set_size(i) × d) view.
  [[nodiscard]] Eigen::Map<const row_matrix<T>> set(std::size_t i) const noexcept {
    return Eigen::Map<const row_matrix<T>>(rows_.data() + offsets_[i] * dim(),
                                           static_cast<Eigen::Index>(set_size(i)), rows_.cols());
  }

 private:
  row_matrix<T> rows_;
  std::vector<std::size_t> offsets_;
};

// ================================================================================================
// Directions and free functions
// ================================================================================================

namespace detail {

/// FNV-1a over the bytes of the direction matrix and its shape (prepared-key compatibility check).
template <class T>
[[nodiscard]] std::uint64_t directions_fingerprint(const row_matrix<T>& dirs) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  const auto mix = [&h](const void* p, std::size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (std::size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 0x100000001b3ULL;
  };
  const auto r = static_cast<std::uint64_t>(dirs.rows()),
             c = static_cast<std::uint64_t>(dirs.cols());
  mix(&r, sizeof r);
  mix(&c, sizeof c);
  mix(dirs.data(), static_cast<std::size_t>(dirs.size()) * sizeof(T));
  return h;
}

/// Copies `dirs` with every row normalised in double (see the file comment for the errors).
template <class T>
[[nodiscard]] row_matrix<T> normalised_directions(const matrix_cref<T>& dirs,
                                                  std::string_view what) {
  row_matrix<T> out(dirs.rows(), dirs.cols());
  for (Eigen::Index l = 0; l < dirs.rows(); ++l) {
    double ss = 0;
    for (Eigen::Index c = 0; c < dirs.cols(); ++c) {
      const T v = dirs(l, c);
      if (!std::isfinite(v))
        throw_non_finite(what, static_cast<std::size_t>(l), static_cast<std::size_t>(c), v);
      ss += static_cast<double>(v) * static_cast<double>(v);
    }
    const double norm = std::sqrt(ss);
    if (!(norm > 1e-30)) {
      std::ostringstream os;
      os << "invalid argument: " << what << " row " << l << " has norm " << norm
         << ", expected a non-zero direction";
      throw invalid_argument(os.str());
    }
    for (Eigen::Index c = 0; c < dirs.cols(); ++c)
      out(l, c) = static_cast<T>(static_cast<double>(dirs(l, c)) / norm);
  }
  return out;
}

/// Validates a point set argument of the free functions.
template <class T>
void require_point_set(std::string_view what, const matrix_cref<T>& x) {
  require_non_empty(what, static_cast<std::size_t>(x.rows()));
  require_finite(what, x.data(), static_cast<std::size_t>(x.rows()),
                 static_cast<std::size_t>(x.cols()), x.outerStride());
}

inline void require_power(double p, std::string_view who) {
  if (!(p >= 1.0) || !std::isfinite(p)) {
    std::ostringstream os;
    os << who << ": p must be a finite value >= 1 (got " << p << ")";
    require_config(false, os.str());
  }
}

}  // namespace detail

/// \brief P unit directions in ℝ^dim: normalised N(0, I) draws from `rng(seed)` (P × dim, rows).
template <attention_scalar T>
[[nodiscard]] row_matrix<T> random_directions(std::size_t dim, std::size_t num_projections,
                                              std::uint64_t seed) {
  require_config(dim > 0, "random_directions: dim must be > 0");
  require_config(num_projections > 0, "random_directions: num_projections must be > 0");
  require_at_most("dim", dim, max_dimension);
  require_at_most("num_projections", num_projections, max_sequence_length);
  rng gen(seed);
  row_matrix<T> out(static_cast<Eigen::Index>(num_projections), static_cast<Eigen::Index>(dim));
  std::vector<double> g(dim);
  for (std::size_t l = 0; l < num_projections; ++l) {
    double ss = 0;
    do {  // a zero draw has probability 0; redraw rather than divide by 0
      ss = 0;
      for (auto& v : g) v = gen.normal<double>(), ss += v * v;
    } while (!(ss > 0));
    const double inv = 1.0 / std::sqrt(ss);
    for (std::size_t c = 0; c < dim; ++c)
      out(static_cast<Eigen::Index>(l), static_cast<Eigen::Index>(c)) = static_cast<T>(g[c] * inv);
  }
  return out;
}

/// \brief W_p^p between the uniform empirical measures on x and y (sizes may differ; p ≥ 1;
/// T is deduced from p).
/// Throws `invalid_argument` for an empty input, `non_finite_input` for NaN/Inf, `invalid_config`
/// for p < 1.
template <attention_scalar T>
[[nodiscard]] T wasserstein_1d_pp(std::type_identity_t<std::span<const T>> x,
                                  std::type_identity_t<std::span<const T>> y, T p) {
  detail::require_power(static_cast<double>(p), "wasserstein_1d_pp");
  require_non_empty("x", x.size());
  require_non_empty("y", y.size());
  require_finite("x", x);
  require_finite("y", y);
  std::vector<T> a(x.begin(), x.end()), b(y.begin(), y.end());
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  const auto kind = detail::sw::classify_power(static_cast<double>(p));
  if (a.size() == b.size())
    return detail::sw::sum_abs_diff_pow(a.data(), b.data(), a.size(), kind, p) /
           static_cast<T>(a.size());
  return detail::sw::merge_abs_diff_pow(a.data(), a.size(), b.data(), b.size(), kind, p) /
         static_cast<T>(a.size() * b.size());
}

/// \brief SW_p^p(X, Y) over the given directions (rows; normalised internally, see the file
/// comment). X (n × d) and Y (m × d) are point sets (rows), n ≠ m allowed.
template <attention_scalar T>
[[nodiscard]] T sliced_wasserstein_pp(const std::type_identity_t<matrix_cref<T>>& x,
                                      const std::type_identity_t<matrix_cref<T>>& y,
                                      const std::type_identity_t<matrix_cref<T>>& directions, T p) {
  detail::require_power(static_cast<double>(p), "sliced_wasserstein_pp");
  detail::require_point_set("X", x);
  detail::require_point_set("Y", y);
  require_dimension("Y.cols() (must equal X.cols())", static_cast<std::size_t>(y.cols()),
                    static_cast<std::size_t>(x.cols()));
  require_dimension("directions.cols() (must equal X.cols())",
                    static_cast<std::size_t>(directions.cols()),
                    static_cast<std::size_t>(x.cols()));
  require_config(directions.rows() > 0, "sliced_wasserstein_pp: need at least one direction");
  const row_matrix<T> dirs = detail::normalised_directions<T>(directions, "directions");
  const auto P = static_cast<std::size_t>(dirs.rows()), d = static_cast<std::size_t>(dirs.cols());
  const auto n = static_cast<std::size_t>(x.rows()), m = static_cast<std::size_t>(y.rows());
  std::vector<T> xs(P * n), ys(P * m), tmp(P);
  detail::sw::project_sorted(x.data(), n, static_cast<std::size_t>(x.outerStride()), dirs.data(), P,
                             d, xs.data(), tmp.data());
  detail::sw::project_sorted(y.data(), m, static_cast<std::size_t>(y.outerStride()), dirs.data(), P,
                             d, ys.data(), tmp.data());
  return detail::sw::sliced_cost(xs.data(), n, ys.data(), m, P,
                                 detail::sw::classify_power(static_cast<double>(p)), p);
}

/// \brief SW_p^p(X, Y) over `random_directions<T>(X.cols(), num_projections, seed)`.
template <attention_scalar T>
[[nodiscard]] T sliced_wasserstein_pp(const std::type_identity_t<matrix_cref<T>>& x,
                                      const std::type_identity_t<matrix_cref<T>>& y,
                                      std::size_t num_projections, T p,
                                      std::uint64_t seed = 0x5eed) {
  require_config(x.cols() > 0, "sliced_wasserstein_pp: X.cols() must be > 0");
  const row_matrix<T> dirs =
      random_directions<T>(static_cast<std::size_t>(x.cols()), num_projections, seed);
  return sliced_wasserstein_pp<T>(x, y, dirs, p);
}

// ================================================================================================
// Attention
// ================================================================================================

/// \brief Configuration of `sliced_wasserstein_attention`.
struct sliced_wasserstein_config {
  std::size_t dim = 0;               ///< vector width d (> 0)
  std::size_t num_projections = 32;  ///< P random directions (> 0)
  double p = 2.0;                    ///< transport exponent (≥ 1; 1 and 2 have fast paths)
  double temperature = 1.0;          ///< τ > 0: s_j = −SW_p^p/τ
  std::size_t candidates = 0;        ///< C: SW only on the top-C by mean·mean; 0 = all
  std::uint64_t seed = 0x5eed;       ///< seed of the random directions
};

template <attention_scalar T>
class sliced_wasserstein_attention;

/// \brief Key sets prepared for one `sliced_wasserstein_attention` (its directions): sorted
/// projections of every set on every direction plus the per-set means. Immutable; build it with
/// `sliced_wasserstein_attention::prepare_keys`.
template <attention_scalar T>
class sw_prepared_keys {
 public:
  /// Number of key sets N.
  [[nodiscard]] std::size_t size() const noexcept { return offsets_.size() - 1; }
  /// Vector width d.
  [[nodiscard]] std::size_t dim() const noexcept { return static_cast<std::size_t>(means_.cols()); }
  /// Number of directions P.
  [[nodiscard]] std::size_t num_projections() const noexcept { return P_; }
  /// Number of vectors in key set j.
  [[nodiscard]] std::size_t set_size(std::size_t j) const noexcept {
    return offsets_[j + 1] - offsets_[j];
  }
  /// Key set j's sorted projections: P × set_size(j), direction-major (row l sorted ascending).
  [[nodiscard]] std::span<const T> sorted_projections(std::size_t j) const noexcept {
    return {sorted_.data() + P_ * offsets_[j], P_ * set_size(j)};
  }
  /// Mean vector of each key set (N × d), the first-stage filter's summary.
  [[nodiscard]] const row_matrix<T>& means() const noexcept { return means_; }
  /// CSR offsets of the key sets (N + 1 entries).
  [[nodiscard]] std::span<const std::size_t> offsets() const noexcept { return offsets_; }

 private:
  friend class sliced_wasserstein_attention<T>;
  sw_prepared_keys() = default;

  std::size_t P_ = 0;
  std::vector<std::size_t> offsets_{0};
  std::vector<T> sorted_;  // set-major blocks, each P × n_j direction-major
  row_matrix<T> means_;
  std::uint64_t fingerprint_ = 0;
};

/// \brief The detailed result of one query (`compute_detailed`).
template <class T>
struct sw_attention_result {
  std::vector<T> output;                  ///< Σ_j w_j·V_j (length dv)
  std::vector<T> weights;                 ///< w_j for all N key sets (0 if not scored)
  std::vector<std::uint32_t> candidates;  ///< scored sets: filter order, or 0..N−1 unfiltered
  std::vector<T> distances;               ///< SW_p^p(query, key set candidates[k])
};

/// \brief Attention whose score against a key *set* is the negative sliced-Wasserstein cost
/// −SW_p^p(query set, key set)/τ; see the file comment. Immutable and thread-safe.
template <attention_scalar T>
class sliced_wasserstein_attention {
 public:
  using value_type = T;
  using prepared_keys = sw_prepared_keys<T>;

  /// Draws `random_directions<T>(dim, num_projections, seed)`.
  explicit sliced_wasserstein_attention(const sliced_wasserstein_config& config)
      : config_(validated(config)),
        dirs_(random_directions<T>(config.dim, config.num_projections, config.seed)),
        kind_(detail::sw::classify_power(config.p)),
        fingerprint_(detail::directions_fingerprint(dirs_)) {}

  /// Uses caller-given directions (P × dim rows, normalised internally; P must equal
  /// config.num_projections; `config.seed` is ignored).
  sliced_wasserstein_attention(const sliced_wasserstein_config& config,
                               const matrix_cref<T>& directions)
      : config_(validated(config)),
        dirs_(checked_directions(config, directions)),
        kind_(detail::sw::classify_power(config.p)),
        fingerprint_(detail::directions_fingerprint(dirs_)) {}

  [[nodiscard]] const sliced_wasserstein_config& config() const noexcept { return config_; }
  [[nodiscard]] std::size_t dim() const noexcept { return config_.dim; }
  /// The unit directions (P × dim).
  [[nodiscard]] const row_matrix<T>& directions() const noexcept { return dirs_; }

  /// \brief Projects and sorts every key set on every direction once and computes the set means.
  /// Throws for an empty collection, a width ≠ dim or NaN/Inf keys.
  [[nodiscard]] prepared_keys prepare_keys(const vector_sets<T>& key_sets) const {
    const std::size_t N = key_sets.size(), d = config_.dim, P = num_projections();
    require_non_empty("key_sets", N);
    require_at_most("key_sets.size()", N, std::min<std::size_t>(max_sequence_length, UINT32_MAX));
    require_dimension("key_sets.dim()", key_sets.dim(), d);
    const row_matrix<T>& rows = key_sets.rows();
    require_finite("key_sets.rows()", rows.data(), key_sets.total_rows(), d, rows.outerStride());
    prepared_keys pk;
    pk.P_ = P;
    pk.offsets_.assign(key_sets.offsets().begin(), key_sets.offsets().end());
    pk.sorted_.resize(P * key_sets.total_rows());
    pk.means_.resize(static_cast<Eigen::Index>(N), static_cast<Eigen::Index>(d));
    pk.fingerprint_ = fingerprint_;
    // Sets are prepared in chunks; small collections run on the calling thread (waking a thread
    // team costs more than projecting a few hundred vectors).
    const std::size_t work = key_sets.total_rows() * P * d;
    const std::size_t chunks =
        work < (std::size_t{1} << 18)
            ? 1
            : std::min<std::size_t>(N, 8 * static_cast<std::size_t>(std::max(num_threads(), 1)));
    const auto prepare_range = [&](std::size_t chunk) {
      T* tmp = detail::thread_scratch<T>(P);
      for (std::size_t j = chunk * N / chunks; j < (chunk + 1) * N / chunks; ++j) {
        const std::size_t o = pk.offsets_[j], n = pk.offsets_[j + 1] - o;
        const T* x = rows.data() + o * d;
        detail::sw::project_sorted(x, n, d, dirs_.data(), P, d, pk.sorted_.data() + P * o, tmp);
        set_mean(x, n, d, &pk.means_(static_cast<Eigen::Index>(j), 0));
      }
    };
    if (chunks == 1) {
      prepare_range(0);
    } else {
      parallel_for(0, chunks, prepare_range);
    }
    return pk;
  }

  /// \brief Writes the attention output of one query set (rows = vectors) into `out`
  /// (size = values.cols()). `values` has one row per prepared key set.
  void compute_into(const matrix_cref<T>& query_set, const prepared_keys& keys,
                    const matrix_cref<T>& values, std::span<T> out) const {
    validate_call(query_set, keys, values);
    require_dimension("out.size() (must equal values.cols())", out.size(),
                      static_cast<std::size_t>(values.cols()));
    run(query_set.data(), static_cast<std::size_t>(query_set.rows()),
        static_cast<std::size_t>(query_set.outerStride()), keys, values, out.data(), nullptr);
  }

  /// \brief Attention output for one query set.
  [[nodiscard]] std::vector<T> compute(const matrix_cref<T>& query_set, const prepared_keys& keys,
                                       const matrix_cref<T>& values) const {
    std::vector<T> out(static_cast<std::size_t>(values.cols()));
    compute_into(query_set, keys, values, out);
    return out;
  }

  /// \brief Output, all N weights, the scored candidates and their SW_p^p costs.
  [[nodiscard]] sw_attention_result<T> compute_detailed(const matrix_cref<T>& query_set,
                                                        const prepared_keys& keys,
                                                        const matrix_cref<T>& values) const {
    validate_call(query_set, keys, values);
    sw_attention_result<T> r;
    r.output.resize(static_cast<std::size_t>(values.cols()));
    run(query_set.data(), static_cast<std::size_t>(query_set.rows()),
        static_cast<std::size_t>(query_set.outerStride()), keys, values, r.output.data(), &r);
    return r;
  }

  /// \brief One output row per query set (Q × values.cols()), queries spread with parallel_for.
  [[nodiscard]] row_matrix<T> compute_batch(const vector_sets<T>& query_sets,
                                            const prepared_keys& keys,
                                            const matrix_cref<T>& values) const {
    require_non_empty("query_sets", query_sets.size());
    require_dimension("query_sets.dim()", query_sets.dim(), config_.dim);
    const row_matrix<T>& qr = query_sets.rows();
    require_finite("query_sets.rows()", qr.data(), query_sets.total_rows(), config_.dim,
                   qr.outerStride());
    validate_keys_values(keys, values);
    const auto dv = static_cast<std::size_t>(values.cols());
    row_matrix<T> out(static_cast<Eigen::Index>(query_sets.size()), static_cast<Eigen::Index>(dv));
    parallel_for(0, query_sets.size(), [&](std::size_t i) {
      const std::size_t o = query_sets.offsets()[i];
      run(qr.data() + o * config_.dim, query_sets.set_size(i), config_.dim, keys, values,
          out.data() + i * dv, nullptr);
    });
    return out;
  }

  /// \brief One-off convenience: prepares `key_sets` and answers one query set.
  [[nodiscard]] std::vector<T> compute(const matrix_cref<T>& query_set,
                                       const vector_sets<T>& key_sets,
                                       const matrix_cref<T>& values) const {
    return compute(query_set, prepare_keys(key_sets), values);
  }

  /// \brief Vector API (`attention_mechanism`): the query and every key row are sets of one, so
  /// s_j = −(1/P)Σ_l |⟨q − k_j, θ_l⟩|^p / τ. Prepares the keys on every call.
  [[nodiscard]] std::vector<T> compute(std::span<const T> query, const matrix_cref<T>& keys,
                                       const matrix_cref<T>& values) const {
    require_dimension("query.size()", query.size(), config_.dim);
    require_dimension("keys.cols()", static_cast<std::size_t>(keys.cols()), config_.dim);
    const Eigen::Map<const row_matrix<T>> q(query.data(), 1,
                                            static_cast<Eigen::Index>(query.size()));
    return compute(q, prepare_keys(vector_sets<T>::singletons(keys)), values);
  }

 private:
  [[nodiscard]] std::size_t num_projections() const noexcept {
    return static_cast<std::size_t>(dirs_.rows());
  }

  static sliced_wasserstein_config validated(const sliced_wasserstein_config& c) {
    require_config(c.dim > 0, "sliced_wasserstein_attention: dim must be > 0");
    require_at_most("dim", c.dim, max_dimension);
    require_config(c.num_projections > 0,
                   "sliced_wasserstein_attention: num_projections must be > 0");
    detail::require_power(c.p, "sliced_wasserstein_attention");
    if (!(c.temperature > 0.0) || !std::isfinite(c.temperature)) {
      std::ostringstream os;
      os << "sliced_wasserstein_attention: temperature must be finite and > 0 (got "
         << c.temperature << ")";
      require_config(false, os.str());
    }
    return c;
  }

  static row_matrix<T> checked_directions(const sliced_wasserstein_config& c,
                                          const matrix_cref<T>& directions) {
    require_dimension("directions.rows() (must equal num_projections)",
                      static_cast<std::size_t>(directions.rows()), c.num_projections);
    require_dimension("directions.cols() (must equal dim)",
                      static_cast<std::size_t>(directions.cols()), c.dim);
    return detail::normalised_directions<T>(directions, "directions");
  }

  // mean(x) = (1/n)·Σ_i x_i, accumulated in T.
  static void set_mean(const T* x, std::size_t n, std::size_t d, T* out) noexcept {
    std::fill(out, out + d, T(0));
    for (std::size_t i = 0; i < n; ++i) kernels::axpy(T(1), x + i * d, out, d);
    kernels::scale(T(1) / static_cast<T>(n), out, d);
  }

  void validate_keys_values(const prepared_keys& keys, const matrix_cref<T>& values) const {
    if (keys.fingerprint_ != fingerprint_ || keys.dim() != config_.dim)
      require_argument(false,
                       "sliced_wasserstein_attention: the prepared keys were built by a mechanism "
                       "with different directions (call prepare_keys on this mechanism)");
    require_dimension("values.rows() (must equal the number of key sets)",
                      static_cast<std::size_t>(values.rows()), keys.size());
  }

  void validate_call(const matrix_cref<T>& query_set, const prepared_keys& keys,
                     const matrix_cref<T>& values) const {
    require_non_empty("query_set", static_cast<std::size_t>(query_set.rows()));
    require_dimension("query_set.cols()", static_cast<std::size_t>(query_set.cols()), config_.dim);
    require_finite("query_set", query_set.data(), static_cast<std::size_t>(query_set.rows()),
                   config_.dim, query_set.outerStride());
    validate_keys_values(keys, values);
  }

  // One validated query set (nq rows, ldq apart): filter, SW-score, softmax, value sum.
  void run(const T* q, std::size_t nq, std::size_t ldq, const prepared_keys& keys,
           const matrix_cref<T>& values, T* out, sw_attention_result<T>* detail_out) const {
    const std::size_t N = keys.size(), d = config_.dim, P = num_projections();
    const auto dv = static_cast<std::size_t>(values.cols());
    const auto ldv = static_cast<std::size_t>(values.outerStride());
    const T p = static_cast<T>(config_.p);
    const T tau = static_cast<T>(config_.temperature);

    T* qs = detail::thread_scratch<T, 0>(P * nq + P);
    detail::sw::project_sorted(q, nq, ldq, dirs_.data(), P, d, qs, qs + P * nq);

    const bool filter = config_.candidates > 0 && config_.candidates < N;
    const std::size_t c = filter ? config_.candidates : N;
    auto* cand = detail::thread_scratch<std::uint32_t, 0>(N);
    if (filter) {
      T* qmean = detail::thread_scratch<T, 1>(d + N);
      T* fs = qmean + d;
      std::fill(qmean, qmean + d, T(0));
      for (std::size_t i = 0; i < nq; ++i) kernels::axpy(T(1), q + i * ldq, qmean, d);
      kernels::scale(T(1) / static_cast<T>(nq), qmean, d);
      kernels::row_dots(keys.means_.data(), N, d, d, qmean, T(1), fs);
      // Top-C by a bounded heap whose front is the worst kept set: one comparison per rejected
      // set. `better` is a strict total order (ties → lower index), so the result is unique.
      const auto better = [fs](std::uint32_t a, std::uint32_t b) {
        return fs[a] > fs[b] || (fs[a] == fs[b] && a < b);
      };
      std::iota(cand, cand + c, std::uint32_t{0});
      std::make_heap(cand, cand + c, better);
      for (std::size_t j = c; j < N; ++j) {
        const auto jj = static_cast<std::uint32_t>(j);
        if (!better(jj, cand[0])) continue;
        std::pop_heap(cand, cand + c, better);
        cand[c - 1] = jj;
        std::push_heap(cand, cand + c, better);
      }
      std::sort(cand, cand + c, better);
    } else {
      std::iota(cand, cand + N, std::uint32_t{0});
    }

    T* s = detail::thread_scratch<T, 2>(2 * c);
    T* dist = s + c;
    const T* ks = keys.sorted_.data();
    for (std::size_t k = 0; k < c; ++k) {
      const std::size_t j = cand[k], o = keys.offsets_[j], nk = keys.offsets_[j + 1] - o;
      dist[k] = detail::sw::sliced_cost(qs, nq, ks + P * o, nk, P, kind_, p);
      s[k] = -dist[k] / tau;
    }
    kernels::softmax(s, c);
    if (filter) {
      std::fill(out, out + dv, T(0));
      for (std::size_t k = 0; k < c; ++k)
        kernels::axpy(s[k], values.data() + cand[k] * ldv, out, dv);
    } else {
      kernels::weighted_row_sum(s, N, values.data(), dv, ldv, T(0), out);
    }
    if (!kernels::all_finite(out, dv)) {
      for (std::size_t k = 0; k < c; ++k) {
        const T* v = values.data() + cand[k] * ldv;
        for (std::size_t col = 0; col < dv; ++col)
          if (!std::isfinite(v[col])) detail::throw_non_finite("values", cand[k], col, v[col]);
      }
    }
    if (detail_out != nullptr) {
      detail_out->weights.assign(N, T(0));
      detail_out->candidates.assign(cand, cand + c);
      detail_out->distances.assign(dist, dist + c);
      for (std::size_t k = 0; k < c; ++k) detail_out->weights[cand[k]] = s[k];
    }
  }

  sliced_wasserstein_config config_;
  row_matrix<T> dirs_;
  detail::sw::power_kind kind_;
  std::uint64_t fingerprint_;
};

}  // namespace ruvector::attention
// ---- end ruvector/attention/transport/sliced_wasserstein.hpp ----
// ---- begin ruvector/attention/unified_report/metrics.hpp ----
/// \file metrics.hpp
/// \brief Metric values of the unified report and their healthy / warning / critical bands.
///
/// A band is two nested intervals: healthy = [healthy_lo, healthy_hi] ⊆ warning =
/// [warning_lo, warning_hi]; a value in the healthy interval is healthy, else in the warning
/// interval a warning, else critical. Open sides are ±∞, so one shape covers metrics where higher
/// is worse (OT shift), lower is worse (coherence) and both sides are bad (entropy: a one-hot or a
/// uniform distribution). Each metric scores 1 (healthy), ½ (warning) or 0 (critical); the health
/// score of a report is the mean score of its banded metrics. Informational metrics (H0 scale
/// spread, Gromov δ, sequence smoothness) carry no band: they describe structure, not health, and
/// steer the recommendation only.
///
/// The Rust original compared every metric with `value > critical`, so coherence and entropy —
/// where *low* values are bad — were flagged critical when healthy; bands here state both sides.

#include <cmath>
#include <limits>
#include <optional>
#include <string_view>


namespace ruvector::attention {

/// \brief The quantities a geometry report can hold.
enum class metric_kind {
  ot_shift,  ///< SW₂² (queries, keys) over that of a same-size key sample (≈ 1 in-distribution)
  topology_coherence,   ///< combined window coherence of the keys' kNN graph, [0, 1], 1 = coherent
  ib_kl,                ///< mean per-dimension KL(q(z|x) ‖ N(0, I)) of an IB layer, nats
  diffusion_energy,     ///< logit roughness over the key graph: xᵀLx / xᵀDx, [0, 2]
  attention_entropy,    ///< normalised attention entropy H / ln n, [0, 1]
  h0_scale_spread,      ///< std of log₂ of the H0 death scales, octaves (informational)
  gromov_delta,         ///< 2δ/diam of the keys (informational)
  sequence_smoothness,  ///< median step / median pair distance of the keys in order (informational)
};

/// \brief Lower-case name of a metric (used in JSON and messages).
[[nodiscard]] constexpr std::string_view metric_name(metric_kind k) noexcept {
  switch (k) {
    case metric_kind::ot_shift:
      return "ot_shift";
    case metric_kind::topology_coherence:
      return "topology_coherence";
    case metric_kind::ib_kl:
      return "ib_kl";
    case metric_kind::diffusion_energy:
      return "diffusion_energy";
    case metric_kind::attention_entropy:
      return "attention_entropy";
    case metric_kind::h0_scale_spread:
      return "h0_scale_spread";
    case metric_kind::gromov_delta:
      return "gromov_delta";
    case metric_kind::sequence_smoothness:
      return "sequence_smoothness";
  }
  return "unknown";
}

/// \brief Status of a metric value within its band.
enum class metric_status { healthy, warning, critical, info };

/// \brief Lower-case name of a status.
[[nodiscard]] constexpr std::string_view status_name(metric_status s) noexcept {
  switch (s) {
    case metric_status::healthy:
      return "healthy";
    case metric_status::warning:
      return "warning";
    case metric_status::critical:
      return "critical";
    case metric_status::info:
      return "info";
  }
  return "unknown";
}

/// \brief Nested healthy ⊆ warning intervals (see the file comment).
struct metric_band {
  double healthy_lo = -std::numeric_limits<double>::infinity();
  double healthy_hi = std::numeric_limits<double>::infinity();
  double warning_lo = -std::numeric_limits<double>::infinity();
  double warning_hi = std::numeric_limits<double>::infinity();

  /// \brief Throws `invalid_config` unless warning_lo ≤ healthy_lo ≤ healthy_hi ≤ warning_hi.
  void validate() const {
    require_config(!std::isnan(healthy_lo) && !std::isnan(healthy_hi) && !std::isnan(warning_lo) &&
                       !std::isnan(warning_hi),
                   "metric_band: bounds must not be NaN");
    require_config(warning_lo <= healthy_lo && healthy_lo <= healthy_hi && healthy_hi <= warning_hi,
                   "metric_band: need warning_lo <= healthy_lo <= healthy_hi <= warning_hi");
  }

  /// \brief The status of `value` (NaN is critical).
  [[nodiscard]] metric_status classify(double value) const noexcept {
    if (value >= healthy_lo && value <= healthy_hi) return metric_status::healthy;
    if (value >= warning_lo && value <= warning_hi) return metric_status::warning;
    return metric_status::critical;
  }
};

/// \brief The band of a metric where higher is worse: healthy ≤ warn_at, warning ≤ critical_at.
[[nodiscard]] constexpr metric_band higher_is_worse(double warn_at, double critical_at) noexcept {
  return {-std::numeric_limits<double>::infinity(), warn_at,
          -std::numeric_limits<double>::infinity(), critical_at};
}

/// \brief The band of a metric where lower is worse: healthy ≥ warn_at, warning ≥ critical_at.
[[nodiscard]] constexpr metric_band lower_is_worse(double warn_at, double critical_at) noexcept {
  return {warn_at, std::numeric_limits<double>::infinity(), critical_at,
          std::numeric_limits<double>::infinity()};
}

/// \brief Default bands, with the reasoning for each threshold.
struct report_bands {
  /// Queries within the key distribution give ≈ 1; 2 means the queries are as far from the keys
  /// again as a key sample of the same size, 4 a clear distribution shift.
  metric_band ot_shift = higher_is_worse(2.0, 4.0);
  /// Coherence in [0, 1]: below ½ the attention mass cuts across the keys' neighbourhoods.
  metric_band topology_coherence = lower_is_worse(0.5, 0.3);
  /// Per-dimension KL: ≈ 0 is posterior collapse (the code carries nothing), large values mean
  /// little compression (Alemi et al. 2017 train at 0.1–2 nats per dimension).
  metric_band ib_kl = {0.01, 2.0, 1e-3, 10.0};
  /// Rayleigh quotient of the logits on the key graph, in [0, 2]: an independent random value per
  /// key gives ≈ 1 (the mean eigenvalue of L_rw); dot-product logits of Gaussian keys give
  /// 0.55–0.8 (d = 16–64; kNN graphs in high dimension are less informative), smooth or clustered
  /// data ≈ 0. Above 0.9 the logits are about as rough as noise over the graph.
  metric_band diffusion_energy = higher_is_worse(0.9, 1.1);
  /// Normalised entropy: near 0 is one-hot (gradients vanish), near 1 is uniform (no selection).
  metric_band attention_entropy = {0.1, 0.97, 0.03, 0.995};

  /// \brief The band of a banded metric; nullopt for informational ones.
  [[nodiscard]] std::optional<metric_band> band(metric_kind k) const noexcept {
    switch (k) {
      case metric_kind::ot_shift:
        return ot_shift;
      case metric_kind::topology_coherence:
        return topology_coherence;
      case metric_kind::ib_kl:
        return ib_kl;
      case metric_kind::diffusion_energy:
        return diffusion_energy;
      case metric_kind::attention_entropy:
        return attention_entropy;
      default:
        return std::nullopt;
    }
  }

  /// \brief Validates every band.
  void validate() const {
    ot_shift.validate();
    topology_coherence.validate();
    ib_kl.validate();
    diffusion_energy.validate();
    attention_entropy.validate();
  }
};

/// \brief One metric of a report.
struct metric_value {
  metric_kind kind{};
  double value = 0;
  metric_status status = metric_status::info;

  /// \brief 1 healthy, ½ warning, 0 critical; informational metrics have no score.
  [[nodiscard]] std::optional<double> score() const noexcept {
    switch (status) {
      case metric_status::healthy:
        return 1.0;
      case metric_status::warning:
        return 0.5;
      case metric_status::critical:
        return 0.0;
      case metric_status::info:
        return std::nullopt;
    }
    return std::nullopt;
  }
};

}  // namespace ruvector::attention
// ---- end ruvector/attention/unified_report/metrics.hpp ----
// ---- begin ruvector/attention/unified_report/recommendation.hpp ----
/// \file recommendation.hpp
/// \brief The unified report's recommendation: a concrete mechanism and a temperature change.
///
/// Rules, first match wins (thresholds in `recommendation_policy`, reasons recorded in words):
/// 1. **geometric** (hyperbolic / mixed-curvature attention) when the keys are hierarchical: the
///    H0 death scales spread over ≥ `hierarchy_octaves` octaves (a tree whose branches shrink by
///    ½ per level gives ≈ 0.75–1.3; Gaussian clouds and smooth curves ≤ 0.35). Hyperbolic space
///    embeds trees with low distortion where Euclidean space cannot (Sarkar 2011; Nickel & Kiela
///    2017).
/// 2. **local_global** (Longformer) when the sequence is long (n ≥ `long_sequence`) and smooth
///    (consecutive keys much closer than random pairs: smoothness < `smooth_below`): nearby
///    tokens carry the signal, so a window plus a few global tokens covers it in O(n·w).
/// 3. **flash_sparse** (top-k sparse / flash) when the sequence is long and the attention is
///    concentrated (normalised entropy < `concentrated_below`): few keys carry the mass.
/// 4. **diffusion** when the logits are rough over a coherent key graph (diffusion energy not
///    healthy while the topology coherence is healthy): heat diffusion on the graph smooths them.
/// 5. **linear** when the sequence is very long (n ≥ `very_long_sequence`) and the attention is
///    spread (normalised entropy > `spread_above`): a kernelised O(n) approximation loses little.
/// 6. **standard** otherwise.
///
/// **Temperature.** When the normalised entropy r = H/ln n is outside [`entropy_low`,
/// `entropy_high`], the report proposes multiplying the temperature by
/// f = σ / σ*, with σ the standard deviation of the current scores (from the weights: ln w_j =
/// s_j − lse) and σ*² = 2·ln n·(1 − r*) the spread that gives the target entropy r* under the
/// small-spread expansion H ≈ ln n − σ²/2 of Gaussian scores. f < 1 sharpens near-uniform
/// attention, f > 1 softens near-one-hot attention; f is clamped to [1/20, 20] and is 1 inside
/// the band.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>


namespace ruvector::attention {

/// \brief The mechanism a report recommends.
enum class recommended_mechanism {
  standard,
  flash_sparse,
  linear,
  local_global,
  geometric,
  diffusion
};

/// \brief Lower-case name of a recommended mechanism.
[[nodiscard]] constexpr std::string_view mechanism_name(recommended_mechanism m) noexcept {
  switch (m) {
    case recommended_mechanism::standard:
      return "standard";
    case recommended_mechanism::flash_sparse:
      return "flash_sparse";
    case recommended_mechanism::linear:
      return "linear";
    case recommended_mechanism::local_global:
      return "local_global";
    case recommended_mechanism::geometric:
      return "geometric";
    case recommended_mechanism::diffusion:
      return "diffusion";
  }
  return "unknown";
}

/// \brief Thresholds of the recommendation rules (see the file comment).
struct recommendation_policy {
  double hierarchy_octaves = 0.6;
  std::size_t long_sequence = 512;
  double smooth_below = 0.1;
  double concentrated_below = 0.5;
  std::size_t very_long_sequence = 16384;
  double spread_above = 0.8;
  double entropy_low = 0.1;
  double entropy_high = 0.97;
  double entropy_target = 0.8;  ///< r* of the temperature rule

  /// \brief Throws `invalid_config` for out-of-range thresholds.
  void validate() const {
    require_config(hierarchy_octaves > 0, "recommendation_policy: hierarchy_octaves must be > 0");
    require_config(long_sequence >= 2 && very_long_sequence >= long_sequence,
                   "recommendation_policy: need 2 <= long_sequence <= very_long_sequence");
    require_config(smooth_below > 0 && concentrated_below > 0 && concentrated_below < 1 &&
                       spread_above > 0 && spread_above < 1,
                   "recommendation_policy: smooth_below > 0, concentrated_below and spread_above "
                   "in (0, 1)");
    require_config(entropy_low >= 0 && entropy_low < entropy_target &&
                       entropy_target < entropy_high && entropy_high <= 1,
                   "recommendation_policy: need 0 <= entropy_low < entropy_target < entropy_high "
                   "<= 1");
  }
};

/// \brief What the report recommends.
struct recommendation {
  recommended_mechanism mechanism = recommended_mechanism::standard;
  double temperature_factor = 1.0;   ///< multiply the softmax temperature by this (1 = keep)
  std::vector<std::string> reasons;  ///< one sentence per rule that fired
};

namespace detail {

/// The temperature factor of the file comment; 1 inside [entropy_low, entropy_high] or when the
/// score spread is unknown (0).
inline double temperature_factor(double normalized_entropy, double logit_std, std::size_t n,
                                 const recommendation_policy& p) noexcept {
  if (n < 2 || (normalized_entropy >= p.entropy_low && normalized_entropy <= p.entropy_high))
    return 1.0;
  const double target_std =
      std::sqrt(2.0 * std::log(static_cast<double>(n)) * (1 - p.entropy_target));
  if (!(logit_std > 0)) return normalized_entropy > p.entropy_high ? 1.0 / 20 : 20.0;
  return std::clamp(logit_std / target_std, 1.0 / 20, 20.0);
}

}  // namespace detail

}  // namespace ruvector::attention
// ---- end ruvector/attention/unified_report/recommendation.hpp ----
// ---- begin ruvector/attention/unified_report/structure.hpp ----
/// \file structure.hpp
/// \brief Structural metrics of a point set used by the unified report: attention entropy, H0
/// persistence (MST), Gromov four-point δ, and sequence smoothness.
///
/// - **Attention entropy.** H(w) = −Σ w_j ln w_j (0·ln 0 = 0), normalised by ln n (n = number of
///   keys; n = 1 → normalised 0). The logit spread σ is the standard deviation of ln w_j over the
///   keys with w_j > 0; it equals the standard deviation of the attention scores, because
///   ln w_j = s_j − logsumexp(s).
/// - **H0 persistence** of the Vietoris–Rips filtration: every point is born at scale 0 and the
///   H0 classes die at the edge lengths of a Euclidean minimum spanning tree (Edelsbrunner &
///   Harer 2010, §VII; the single-linkage merge heights). We report the n − 1 finite deaths, their
///   sum (total persistence) and their **scale spread**: the standard deviation of log₂(death)
///   over deaths > 0, in octaves. Hierarchical (tree-like) data merge at many scales — a tree whose
///   branches shrink by ½ per level spreads its deaths over one octave per level — while a
///   Gaussian cloud or a smooth curve merges at one scale (spread ≈ 0.2–0.4 octave).
/// - **Gromov δ** (four-point condition, Gromov 1987): for points x, y, z, w let
///   S₁ ≥ S₂ ≥ S₃ be the three sums d(x,y)+d(z,w), d(x,z)+d(y,w), d(x,w)+d(y,z); δ(x,y,z,w) =
///   (S₁ − S₂)/2. A metric tree has δ = 0. We report the maximum over sampled quadruples and
///   δ_rel = 2δ/diam (Khrulkov et al. 2020), with diam the largest distance among the sampled
///   points. Informational: near-equidistant clouds (high-dimensional Gaussians) are also small.
/// - **Sequence smoothness**: median_i ‖x_{i+1} − x_i‖ / median distance of random pairs. ≈ 1
///   for an unordered cloud, ≪ 1 when consecutive rows (tokens) change slowly.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <span>
#include <vector>


namespace ruvector::attention {

/// \brief Entropy statistics of one attention distribution.
struct entropy_stats {
  double entropy = 0;     ///< H = −Σ w ln w, nats
  double normalized = 0;  ///< H / ln n in [0, 1] (0 when n = 1)
  double logit_std = 0;   ///< standard deviation of ln w over w > 0 (= std of the scores)
};

/// \brief Entropy of attention weights `w` (non-negative, sum 1 within 1e-3; validated).
template <attention_scalar T>
[[nodiscard]] entropy_stats attention_entropy(std::span<const T> w) {
  require_non_empty("attention weights", w.size());
  require_finite("attention weights", w);
  double sum = 0, h = 0, mean_log = 0, m2 = 0;
  std::size_t positive = 0;
  for (const T x : w) {
    require_argument(x >= T(0), "attention_entropy: weights must be non-negative");
    const double v = static_cast<double>(x);
    sum += v;
    if (v > 0) {
      const double l = std::log(v);
      h -= v * l;
      // Welford update of the mean and variance of ln w.
      ++positive;
      const double delta = l - mean_log;
      mean_log += delta / static_cast<double>(positive);
      m2 += delta * (l - mean_log);
    }
  }
  require_argument(std::abs(sum - 1.0) <= 1e-3, "attention_entropy: weights must sum to 1");
  entropy_stats s;
  s.entropy = std::max(h, 0.0);
  const double ln_n = std::log(static_cast<double>(w.size()));
  s.normalized = w.size() > 1 ? std::clamp(s.entropy / ln_n, 0.0, 1.0) : 0.0;
  s.logit_std = positive > 1 ? std::sqrt(m2 / static_cast<double>(positive)) : 0.0;
  return s;
}

/// \brief H0 persistence summary of a point set (see the file comment).
struct h0_summary {
  std::vector<double> deaths;   ///< the n − 1 finite death scales (MST edge lengths), ascending
  double total = 0;             ///< Σ deaths (total persistence)
  double max_death = 0;         ///< the largest finite death
  double scale_spread = 0;      ///< std of log₂(death) over deaths > 0, in octaves
  std::size_t points_used = 0;  ///< points analysed (a seeded subsample when n > max_points)
};

namespace detail {

/// Indices of a seeded subsample of `m` of `n` rows (all rows, in order, when m ≥ n).
inline std::vector<std::size_t> subsample_rows(std::size_t n, std::size_t m, std::uint64_t seed) {
  std::vector<std::size_t> idx(n);
  std::iota(idx.begin(), idx.end(), std::size_t{0});
  if (m >= n) return idx;
  rng gen(seed);
  for (std::size_t i = 0; i < m; ++i) {  // partial Fisher–Yates
    const auto j = i + static_cast<std::size_t>(gen.below(n - i));
    std::swap(idx[i], idx[j]);
  }
  idx.resize(m);
  std::sort(idx.begin(), idx.end());
  return idx;
}

/// Rows `idx` of `points` gathered into a contiguous double matrix (m × d).
template <class T>
std::vector<double> gather_rows(const matrix_cref<T>& points, const std::vector<std::size_t>& idx) {
  const auto d = static_cast<std::size_t>(points.cols());
  std::vector<double> out(idx.size() * d);
  for (std::size_t r = 0; r < idx.size(); ++r)
    for (std::size_t c = 0; c < d; ++c)
      out[r * d + c] = static_cast<double>(
          points(static_cast<Eigen::Index>(idx[r]), static_cast<Eigen::Index>(c)));
  return out;
}

template <class T>
void require_points(std::string_view what, const matrix_cref<T>& points) {
  require_non_empty(what, static_cast<std::size_t>(points.rows()));
  require_non_empty(what, static_cast<std::size_t>(points.cols()));
  require_finite(what, points.data(), static_cast<std::size_t>(points.rows()),
                 static_cast<std::size_t>(points.cols()), points.outerStride());
}

}  // namespace detail

/// \brief H0 persistence of the rows of `points` by Prim's algorithm on the complete Euclidean
/// graph: O(m²·d) time, O(m) memory, m = min(n, max_points) rows (a seeded subsample beyond).
template <attention_scalar T>
[[nodiscard]] h0_summary h0_persistence(const matrix_cref<T>& points, std::size_t max_points = 2048,
                                        std::uint64_t seed = 42) {
  detail::require_points("points", points);
  require_argument(max_points >= 2, "h0_persistence: max_points must be >= 2");
  const auto idx =
      detail::subsample_rows(static_cast<std::size_t>(points.rows()), max_points, seed);
  const std::size_t m = idx.size();
  const auto d = static_cast<std::size_t>(points.cols());
  const std::vector<double> x = detail::gather_rows(points, idx);

  h0_summary s;
  s.points_used = m;
  std::vector<double> best(m, std::numeric_limits<double>::infinity());
  std::vector<double> dist(m);
  std::vector<char> in_tree(m, 0);
  std::size_t current = 0;
  in_tree[0] = 1;
  for (std::size_t step = 1; step < m; ++step) {
    // ‖x_current − x_j‖² for every j, then relax the frontier.
    kernels::row_squared_distances(x.data(), m, d, d, x.data() + current * d, dist.data());
    std::size_t next = m;
    double next_best = std::numeric_limits<double>::infinity();
    for (std::size_t j = 0; j < m; ++j) {
      if (in_tree[j]) continue;
      best[j] = std::min(best[j], dist[j]);
      if (next == m || best[j] < next_best) next = j, next_best = best[j];
    }
    in_tree[next] = 1;
    s.deaths.push_back(std::sqrt(std::max(next_best, 0.0)));
    current = next;
  }
  std::sort(s.deaths.begin(), s.deaths.end());
  double mean = 0, m2 = 0;
  std::size_t count = 0;
  for (const double death : s.deaths) {
    s.total += death;
    s.max_death = std::max(s.max_death, death);
    if (death > 0) {
      const double l = std::log2(death);
      ++count;
      const double delta = l - mean;
      mean += delta / static_cast<double>(count);
      m2 += delta * (l - mean);
    }
  }
  s.scale_spread = count > 1 ? std::sqrt(m2 / static_cast<double>(count)) : 0.0;
  return s;
}

/// \brief Sampled Gromov four-point δ (see the file comment).
struct gromov_delta_stats {
  double delta = 0;     ///< max over sampled quadruples of (S₁ − S₂)/2
  double diameter = 0;  ///< largest distance among the points used
  double relative = 0;  ///< 2δ/diameter in [0, 1] (0 when the diameter is 0)
};

/// \brief Gromov δ of the rows of `points` from `samples` seeded quadruples of a seeded subsample
/// of at most `max_points` rows (distances computed once: O(m²·d + samples)).
template <attention_scalar T>
[[nodiscard]] gromov_delta_stats gromov_delta(const matrix_cref<T>& points,
                                              std::size_t max_points = 256,
                                              std::size_t samples = 20000,
                                              std::uint64_t seed = 42) {
  detail::require_points("points", points);
  require_argument(max_points >= 2, "gromov_delta: max_points must be >= 2");
  const auto idx =
      detail::subsample_rows(static_cast<std::size_t>(points.rows()), max_points, seed);
  const std::size_t m = idx.size();
  const auto d = static_cast<std::size_t>(points.cols());
  const std::vector<double> x = detail::gather_rows(points, idx);
  std::vector<double> dm(m * m);
  for (std::size_t i = 0; i < m; ++i)
    kernels::row_squared_distances(x.data(), m, d, d, x.data() + i * d, dm.data() + i * m);
  gromov_delta_stats s;
  for (double& v : dm) {
    v = std::sqrt(std::max(v, 0.0));
    s.diameter = std::max(s.diameter, v);
  }
  if (m < 4 || s.diameter == 0) return s;
  rng gen(seed ^ 0x9e3779b97f4a7c15ULL);
  for (std::size_t t = 0; t < samples; ++t) {
    const auto a = gen.below(m), b = gen.below(m), c = gen.below(m), e = gen.below(m);
    double sums[3] = {dm[a * m + b] + dm[c * m + e], dm[a * m + c] + dm[b * m + e],
                      dm[a * m + e] + dm[b * m + c]};
    std::sort(sums, sums + 3);
    s.delta = std::max(s.delta, 0.5 * (sums[2] - sums[1]));
  }
  s.relative = std::clamp(2 * s.delta / s.diameter, 0.0, 1.0);
  return s;
}

/// \brief Sequence smoothness of the rows of `points` taken in order (see the file comment):
/// median consecutive distance over the median distance of `pairs` seeded random pairs. n < 2 or
/// a zero median pair distance (all rows equal) gives 0.
template <attention_scalar T>
[[nodiscard]] double sequence_smoothness(const matrix_cref<T>& points, std::size_t pairs = 4096,
                                         std::uint64_t seed = 42) {
  detail::require_points("points", points);
  const auto n = static_cast<std::size_t>(points.rows());
  if (n < 2) return 0.0;
  const auto distance = [&](std::size_t i, std::size_t j) {
    return std::sqrt((points.row(static_cast<Eigen::Index>(i)).template cast<double>() -
                      points.row(static_cast<Eigen::Index>(j)).template cast<double>())
                         .squaredNorm());
  };
  std::vector<double> consecutive(n - 1);
  for (std::size_t i = 0; i + 1 < n; ++i) consecutive[i] = distance(i, i + 1);
  std::vector<double> random_pairs;
  random_pairs.reserve(pairs);
  rng gen(seed);
  for (std::size_t t = 0; t < pairs; ++t) {
    const auto i = gen.below(n), j = gen.below(n);
    if (i != j) random_pairs.push_back(distance(i, j));
  }
  const auto median = [](std::vector<double>& v) {
    if (v.empty()) return 0.0;
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
    return v[v.size() / 2];
  };
  const double pair_median = median(random_pairs);
  return pair_median > 0 ? median(consecutive) / pair_median : 0.0;
}

}  // namespace ruvector::attention
// ---- end ruvector/attention/unified_report/structure.hpp ----

namespace ruvector::attention {

/// \brief Parameters of `analyze` and of the report's bands and rules.
struct report_config {
  std::size_t ot_projections = 64;       ///< P, directions of the sliced-Wasserstein cost
  std::size_t ot_reference_samples = 8;  ///< R, bootstrap key samples of the OT normaliser
  std::size_t knn_k = 8;                 ///< neighbours of the kNN graph (clamped to n − 1)
  std::size_t max_points = 2048;         ///< H0 and δ use a seeded subsample beyond this
  std::optional<double> scale{};         ///< logit scale (default 1/√d)
  std::uint64_t seed = 42;               ///< directions, bootstrap and subsamples
  report_bands bands{};
  recommendation_policy policy{};

  /// \brief Throws `invalid_config` for out-of-range values.
  void validate() const {
    require_config(ot_projections >= 1, "report_config.ot_projections must be >= 1");
    require_config(ot_reference_samples >= 1, "report_config.ot_reference_samples must be >= 1");
    require_config(knn_k >= 1, "report_config.knn_k must be >= 1");
    require_config(max_points >= 4, "report_config.max_points must be >= 4");
    require_config(!scale || (std::isfinite(*scale) && *scale > 0),
                   "report_config.scale must be finite and > 0");
    bands.validate();
    policy.validate();
  }
};

/// \brief A unified geometry report.
struct geometry_report {
  std::size_t num_keys = 0;           ///< n (0 when built from precomputed values without it)
  std::size_t num_queries = 0;        ///< L
  std::size_t dim = 0;                ///< d
  std::vector<metric_value> metrics;  ///< in `metric_kind` order, present ones only
  double health_score = 1.0;          ///< mean score of the banded metrics, [0, 1]
  recommendation advice;              ///< mechanism and temperature change

  // Raw quantities behind the metrics (NaN when not measured).
  double ot_distance = std::numeric_limits<double>::quiet_NaN();           ///< SW₂(Q, K)
  double entropy_nats = std::numeric_limits<double>::quiet_NaN();          ///< mean raw entropy H
  double logit_std = std::numeric_limits<double>::quiet_NaN();             ///< mean score spread σ
  double h0_total_persistence = std::numeric_limits<double>::quiet_NaN();  ///< Σ H0 deaths

  /// \brief The metric of kind `k`, or nullptr when the report does not hold it.
  [[nodiscard]] const metric_value* find(metric_kind k) const noexcept {
    for (const auto& m : metrics)
      if (m.kind == k) return &m;
    return nullptr;
  }
};

/// \brief Builds a report from metric values (measured by `analyze` or given by the caller, as in
/// the seeds' `ReportBuilder::new(cfg).with_ot_distance(0.15)...build()`).
class report_builder {
 public:
  explicit report_builder(report_config config = {}) : config_(std::move(config)) {
    config_.validate();
  }

  /// \brief The OT shift (see report.hpp; ≈ 1 in-distribution).
  report_builder& with_ot_distance(double shift) { return set(metric_kind::ot_shift, shift); }
  /// \brief Combined topology coherence in [0, 1].
  report_builder& with_topology_coherence(double c) {
    return set(metric_kind::topology_coherence, c);
  }
  /// \brief Mean per-dimension KL of an IB layer, nats.
  report_builder& with_ib_kl(double kl) { return set(metric_kind::ib_kl, kl); }
  /// \brief Logit roughness on the key graph, [0, 2].
  report_builder& with_diffusion_energy(double e) { return set(metric_kind::diffusion_energy, e); }
  /// \brief Attention entropy in nats over `num_keys` keys (normalised by ln n here), with the
  /// score spread σ when known (enables the temperature rule's factor).
  report_builder& with_attention_entropy(double nats, std::size_t num_keys,
                                         std::optional<double> logit_std = std::nullopt) {
    require_argument(num_keys >= 1, "with_attention_entropy: num_keys must be >= 1");
    require_argument(std::isfinite(nats) && nats >= 0,
                     "with_attention_entropy: entropy must be finite and >= 0");
    num_keys_ = num_keys;
    entropy_nats_ = nats;
    logit_std_ = logit_std.value_or(std::numeric_limits<double>::quiet_NaN());
    const double norm =
        num_keys > 1 ? std::clamp(nats / std::log(static_cast<double>(num_keys)), 0.0, 1.0) : 0.0;
    return set(metric_kind::attention_entropy, norm);
  }
  /// \brief H0 scale spread of the keys, octaves.
  report_builder& with_h0_scale_spread(double octaves) {
    return set(metric_kind::h0_scale_spread, octaves);
  }
  /// \brief Relative Gromov δ of the keys.
  report_builder& with_gromov_delta(double relative) {
    return set(metric_kind::gromov_delta, relative);
  }
  /// \brief Sequence smoothness of the keys.
  report_builder& with_sequence_smoothness(double s) {
    return set(metric_kind::sequence_smoothness, s);
  }
  /// \brief The number of keys n (used by the length rules); set by `with_attention_entropy` too.
  report_builder& with_num_keys(std::size_t n) {
    num_keys_ = n;
    return *this;
  }

  /// \brief The report: statuses, health score and recommendation of the values given.
  [[nodiscard]] geometry_report build() const {
    geometry_report r;
    r.num_keys = num_keys_;
    r.entropy_nats = entropy_nats_;
    r.logit_std = logit_std_;
    double score_sum = 0;
    std::size_t scored = 0;
    for (std::size_t k = 0; k < kinds; ++k) {
      if (!values_[k]) continue;
      metric_value m;
      m.kind = static_cast<metric_kind>(k);
      m.value = *values_[k];
      const auto band = config_.bands.band(m.kind);
      m.status = band ? band->classify(m.value) : metric_status::info;
      if (const auto s = m.score()) score_sum += *s, ++scored;
      r.metrics.push_back(m);
    }
    r.health_score = scored > 0 ? score_sum / static_cast<double>(scored) : 1.0;
    r.advice = recommend(r);
    return r;
  }

  /// \brief The configuration.
  [[nodiscard]] const report_config& config() const noexcept { return config_; }

 private:
  static constexpr std::size_t kinds = 8;

  report_builder& set(metric_kind k, double v) {
    require_argument(!std::isnan(v), "report_builder: a metric value must not be NaN");
    values_[static_cast<std::size_t>(k)] = v;
    return *this;
  }

  [[nodiscard]] recommendation recommend(const geometry_report& r) const {
    const recommendation_policy& p = config_.policy;
    recommendation out;
    const auto value = [&](metric_kind k) -> std::optional<double> {
      if (const auto* m = r.find(k)) return m->value;
      return std::nullopt;
    };
    const auto status = [&](metric_kind k) -> std::optional<metric_status> {
      if (const auto* m = r.find(k)) return m->status;
      return std::nullopt;
    };
    const auto entropy = value(metric_kind::attention_entropy);
    const auto spread = value(metric_kind::h0_scale_spread);
    const auto smooth = value(metric_kind::sequence_smoothness);
    const bool is_long = r.num_keys >= p.long_sequence;
    const bool is_very_long = r.num_keys >= p.very_long_sequence;
    const auto diffusion = status(metric_kind::diffusion_energy);
    const auto coherence = status(metric_kind::topology_coherence);

    if (spread && *spread >= p.hierarchy_octaves) {
      out.mechanism = recommended_mechanism::geometric;
      out.reasons.emplace_back(
          "keys are hierarchical: H0 merge scales spread over many octaves (tree-like), which "
          "hyperbolic space embeds with low distortion");
    } else if (is_long && smooth && *smooth < p.smooth_below) {
      out.mechanism = recommended_mechanism::local_global;
      out.reasons.emplace_back(
          "long, smooth sequence: consecutive keys are far closer than random pairs, so a local "
          "window plus global tokens covers the signal");
    } else if (is_long && entropy && *entropy < p.concentrated_below) {
      out.mechanism = recommended_mechanism::flash_sparse;
      out.reasons.emplace_back(
          "long sequence with concentrated attention: a few keys carry the mass (top-k sparse or "
          "flash attention)");
    } else if (diffusion && *diffusion != metric_status::healthy && coherence &&
               *coherence == metric_status::healthy) {
      out.mechanism = recommended_mechanism::diffusion;
      out.reasons.emplace_back(
          "logits are rough over a coherent key graph: heat diffusion on the graph smooths them");
    } else if (is_very_long && entropy && *entropy > p.spread_above) {
      out.mechanism = recommended_mechanism::linear;
      out.reasons.emplace_back(
          "very long sequence with spread-out attention: a linear-time kernel approximation "
          "loses little");
    } else {
      out.mechanism = recommended_mechanism::standard;
      out.reasons.emplace_back("no structure that a specialised mechanism exploits");
    }
    if (entropy) {
      const double sigma = std::isnan(r.logit_std) ? 0.0 : r.logit_std;
      out.temperature_factor = detail::temperature_factor(*entropy, sigma, r.num_keys, p);
      if (out.temperature_factor < 1)
        out.reasons.emplace_back("attention is near uniform: lower the temperature (sharpen)");
      else if (out.temperature_factor > 1)
        out.reasons.emplace_back("attention is near one-hot: raise the temperature (soften)");
    }
    return out;
  }

  report_config config_;
  std::optional<double> values_[kinds]{};
  std::size_t num_keys_ = 0;
  double entropy_nats_ = std::numeric_limits<double>::quiet_NaN();
  double logit_std_ = std::numeric_limits<double>::quiet_NaN();
};

namespace detail {

/// SW₂²(Q, K) and its normaliser mean_r SW₂²(K_r, K) over R bootstrap samples of |Q| keys.
template <class T>
std::pair<double, double> ot_shift_terms(const matrix_cref<T>& q, const matrix_cref<T>& k,
                                         const report_config& c) {
  const auto n = static_cast<std::size_t>(k.rows());
  const auto L = static_cast<std::size_t>(q.rows());
  const row_matrix<T> dirs =
      random_directions<T>(static_cast<std::size_t>(k.cols()), c.ot_projections, c.seed);
  const double cost = static_cast<double>(sliced_wasserstein_pp<T>(q, k, dirs, T(2)));
  rng gen(c.seed + 1);
  row_matrix<T> sample(static_cast<Eigen::Index>(L), k.cols());
  double reference = 0;
  for (std::size_t r = 0; r < c.ot_reference_samples; ++r) {
    for (std::size_t i = 0; i < L; ++i)
      sample.row(static_cast<Eigen::Index>(i)) = k.row(static_cast<Eigen::Index>(gen.below(n)));
    reference += static_cast<double>(sliced_wasserstein_pp<T>(sample, k, dirs, T(2)));
  }
  return {cost, reference / static_cast<double>(c.ot_reference_samples)};
}

/// ½Σ W_ij (x_i − x_j)² / Σ d_i (x_i − x̄)² (0 when the denominator is 0).
template <class T>
double logit_roughness(const sparse_laplacian<T>& lap, std::span<const T> x) {
  const auto deg = lap.degrees();
  double dsum = 0, mean = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    dsum += static_cast<double>(deg[i]);
    mean += static_cast<double>(deg[i]) * static_cast<double>(x[i]);
  }
  if (!(dsum > 0)) return 0.0;
  mean /= dsum;
  double denom = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double c = static_cast<double>(x[i]) - mean;
    denom += static_cast<double>(deg[i]) * c * c;
  }
  if (!(denom > 0)) return 0.0;
  return std::clamp(static_cast<double>(lap.dirichlet_form(x)) / denom, 0.0, 2.0);
}

}  // namespace detail

/// \brief Measures every metric of the file comment on `queries` (L × d) and `keys` (n × d) with
/// the attention `weights` (L × n, rows summing to 1; empty = softmax of the scaled logits) and
/// an optional IB layer (its input width must be d), and builds the report. Throws
/// `dimension_mismatch`, `non_finite_input`, `invalid_argument` or `invalid_config`.
template <attention_scalar T>
[[nodiscard]] geometry_report analyze(const matrix_cref<T>& queries, const matrix_cref<T>& keys,
                                      const std::type_identity_t<matrix_cref<T>>& weights,
                                      const report_config& config = {},
                                      const variational_bottleneck<T>* ib = nullptr) {
  config.validate();
  const auto n = static_cast<std::size_t>(keys.rows());
  const auto L = static_cast<std::size_t>(queries.rows());
  const auto d = static_cast<std::size_t>(keys.cols());
  detail::require_points("keys", keys);
  detail::require_points("queries", queries);
  require_dimension("queries.cols() (must equal keys.cols())",
                    static_cast<std::size_t>(queries.cols()), d);
  const double scale = config.scale.value_or(1.0 / std::sqrt(static_cast<double>(d)));

  // Logits (always the dot-product ones) and weights (given, or their softmax).
  row_matrix<T> logits = static_cast<T>(scale) * (queries * keys.transpose());
  row_matrix<T> w;
  if (weights.size() > 0) {
    require_dimension("weights.rows() (must equal queries.rows())",
                      static_cast<std::size_t>(weights.rows()), L);
    require_dimension("weights.cols() (must equal keys.rows())",
                      static_cast<std::size_t>(weights.cols()), n);
    w = weights;
  } else {
    w = logits;
    for (std::size_t i = 0; i < L; ++i)
      (void)kernels::softmax(w.row(static_cast<Eigen::Index>(i)).data(), n);
  }

  report_builder builder(config);
  builder.with_num_keys(n);

  // Transport.
  const auto [cost, reference] = detail::ot_shift_terms<T>(queries, keys, config);
  const double shift =
      reference > 0 ? cost / reference : (cost > 0 ? std::numeric_limits<double>::infinity() : 1.0);
  builder.with_ot_distance(shift);

  // Entropy.
  double h = 0, sigma = 0;
  for (std::size_t i = 0; i < L; ++i) {
    const auto s =
        attention_entropy<T>(std::span<const T>(w.row(static_cast<Eigen::Index>(i)).data(), n));
    h += s.entropy;
    sigma += s.logit_std;
  }
  builder.with_attention_entropy(h / static_cast<double>(L), n, sigma / static_cast<double>(L));

  // Topology and diffusion on one kNN graph.
  if (n >= 2) {
    const knn_lists<T> knn = exact_knn<T>(keys, std::min(config.knn_k, n - 1));
    const coherence_keys<T> graph(keys, knn);
    const auto lap = sparse_laplacian<T>::from_knn(
        knn, laplacian_options<T>{.type = laplacian_type::combinatorial});
    double coherence = 0, roughness = 0;
    for (std::size_t i = 0; i < L; ++i) {
      const auto row = static_cast<Eigen::Index>(i);
      coherence += compute_coherence(graph, std::span<const T>(w.row(row).data(), n)).coherence;
      roughness += detail::logit_roughness(lap, std::span<const T>(logits.row(row).data(), n));
    }
    builder.with_topology_coherence(coherence / static_cast<double>(L));
    builder.with_diffusion_energy(roughness / static_cast<double>(L));
  }

  // Information bottleneck.
  if (ib != nullptr) {
    require_dimension("ib.input_dim() (must equal keys.cols())", ib->input_dim(), d);
    const auto fwd = ib->forward(queries);
    builder.with_ib_kl(static_cast<double>(fwd.kl_mean) / static_cast<double>(ib->latent_dim()));
  }

  // Structure of the keys.
  double h0_total = std::numeric_limits<double>::quiet_NaN();
  if (n >= 2) {
    const auto h0 = h0_persistence<T>(keys, config.max_points, config.seed);
    builder.with_h0_scale_spread(h0.scale_spread);
    h0_total = h0.total;
    builder.with_gromov_delta(
        gromov_delta<T>(keys, std::min<std::size_t>(config.max_points, 256), 20000, config.seed)
            .relative);
    builder.with_sequence_smoothness(sequence_smoothness<T>(keys, 4096, config.seed));
  }

  geometry_report r = builder.build();
  r.num_queries = L;
  r.dim = d;
  r.ot_distance = std::sqrt(std::max(cost, 0.0));
  r.h0_total_persistence = h0_total;
  return r;
}

/// \brief `analyze` with the weights computed as softmax(scale·Q Kᵀ).
template <attention_scalar T>
[[nodiscard]] geometry_report analyze(const matrix_cref<T>& queries, const matrix_cref<T>& keys,
                                      const report_config& config = {},
                                      const variational_bottleneck<T>* ib = nullptr) {
  const row_matrix<T> none(0, 0);
  return analyze<T>(queries, keys, none, config, ib);
}

/// \brief `analyze` for one query vector with its weights (empty = computed).
template <attention_scalar T>
[[nodiscard]] geometry_report analyze(std::span<const T> query, const matrix_cref<T>& keys,
                                      std::type_identity_t<std::span<const T>> weights = {},
                                      const report_config& config = {},
                                      const variational_bottleneck<T>* ib = nullptr) {
  const Eigen::Map<const row_matrix<T>> q(query.data(), 1, static_cast<Eigen::Index>(query.size()));
  if (weights.empty()) return analyze<T>(q, keys, config, ib);
  const Eigen::Map<const row_matrix<T>> w(weights.data(), 1,
                                          static_cast<Eigen::Index>(weights.size()));
  return analyze<T>(q, keys, w, config, ib);
}

}  // namespace ruvector::attention
// ---- end ruvector/attention/unified_report/report.hpp ----

namespace ruvector::attention {

namespace detail {

inline nlohmann::json json_number(double v) {
  if (std::isnan(v)) return nullptr;
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return v;
}

}  // namespace detail

/// \brief ADL hook: one metric.
inline void to_json(nlohmann::json& j, const metric_value& m) {
  j = nlohmann::json{{"name", std::string(metric_name(m.kind))},
                     {"value", detail::json_number(m.value)},
                     {"status", std::string(status_name(m.status))}};
}

/// \brief ADL hook: a recommendation.
inline void to_json(nlohmann::json& j, const recommendation& r) {
  j = nlohmann::json{{"mechanism", std::string(mechanism_name(r.mechanism))},
                     {"temperature_factor", r.temperature_factor},
                     {"reasons", r.reasons}};
}

/// \brief ADL hook: a whole report.
inline void to_json(nlohmann::json& j, const geometry_report& r) {
  j = nlohmann::json{{"num_keys", r.num_keys},
                     {"num_queries", r.num_queries},
                     {"dim", r.dim},
                     {"health_score", r.health_score},
                     {"metrics", r.metrics},
                     {"recommendation", r.advice},
                     {"raw",
                      {{"ot_distance", detail::json_number(r.ot_distance)},
                       {"entropy_nats", detail::json_number(r.entropy_nats)},
                       {"logit_std", detail::json_number(r.logit_std)},
                       {"h0_total_persistence", detail::json_number(r.h0_total_persistence)}}}};
}

/// \brief The report as a JSON string (`indent` < 0: compact).
[[nodiscard]] inline std::string to_json_string(const geometry_report& r, int indent = 2) {
  return nlohmann::json(r).dump(indent);
}

}  // namespace ruvector::attention
// ---- end ruvector/attention/io/json.hpp ----
// ---- begin ruvector/attention/kernels.hpp ----
/// \file kernels.hpp
/// \brief Entry header of the xsimd kernel layer.

// ---- end ruvector/attention/kernels.hpp ----
// ---- begin ruvector/attention/moe.hpp ----
/// \file moe.hpp
/// \brief Entry header of the mixture-of-experts family: experts (feed-forward, attention,
/// function), a learned top-k router with capacity and auxiliary losses, and `moe_attention`, which
/// routes a batch of tokens in one call.

// ---- begin ruvector/attention/moe/expert.hpp ----
/// \file moe/expert.hpp
/// \brief Experts of a token-routed mixture of experts (Shazeer et al. 2017, "Outrageously Large
/// Neural Networks: The Sparsely-Gated Mixture-of-Experts Layer"; Fedus et al. 2021, "Switch
/// Transformers"). An expert maps each routed token (a row) to an output row:
///
///     feed_forward_expert:  y = act(x W_1ᵀ + b_1) W_2ᵀ + b_2   W_1 [h, d], W_2 [d_out, h]
///     attention_expert<M>:  y = M.compute(x, K, V)   x = the query, K/V = the call's context
///     function_expert<T>:   y = f(x)                 any caller callable
///
/// Activations: `relu(z) = max(z, 0)` and the exact `gelu(z) = ½ z (1 + erf(z/√2))` (Hendrycks &
/// Gimpel 2016; not the tanh approximation), vectorised with xsimd's erf.
///
/// **Expert interface.** An expert is any type modelling `moe_expert<E, T>`: const member functions
/// `input_dim(ctx)`, `output_dim(ctx)` and `forward(x, out, ctx)` that maps the rows of `x` [n ×
/// input_dim] to the rows of `out` [n × output_dim]. The experts of one layer are stored
/// type-erased in `any_expert<T>`, a value-semantic handle that shares one immutable expert
/// (`std::shared_ptr<const ...>`), so copies are cheap and the same expert may be called from many
/// threads at once. Every expert in this header is immutable after construction and its `forward`
/// is const and thread-safe (scratch memory is thread-local). A `function_expert`'s callable must
/// be safe to call concurrently. Rows are independent: an expert's output for a row must not depend
/// on the other rows of the batch (the layer runs experts on blocks of tokens).
///
/// `expert_context<T>` carries the call's context keys/values (absent for a purely token-wise
/// layer). Feed-forward and function experts ignore it; an attention expert requires it and throws
/// `invalid_argument` from `input_dim`/`output_dim` when it is absent.
///
/// Initialisation: `feed_forward_expert(feed_forward_config)` draws W_1 and W_2 Xavier-uniform,
/// U(±√(6/(fan_in + fan_out))) (Glorot & Bengio 2010), from `core/rng.hpp` seeded with `seed`
/// (W_1 first, row-major, then W_2); biases start at zero. Caller weights replace them exactly.
/// `forward` does not check for NaN/Inf (non-finite inputs propagate); the layer checks its tokens.

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>


namespace ruvector::attention {

/// \brief Hidden-layer activation of a `feed_forward_expert`.
enum class expert_activation {
  relu,  ///< max(z, 0)
  gelu   ///< ½ z (1 + erf(z/√2)) (exact form)
};

/// \brief The context of one expert call: keys/values that attention experts attend over.
/// Default-constructed = no context. The pointers must outlive the call.
template <class T>
struct expert_context {
  const matrix_cref<T>* keys = nullptr;    ///< [Lk × d_k] context keys (rows = keys)
  const matrix_cref<T>* values = nullptr;  ///< [Lk × d_v] context values
  /// True when both keys and values are present.
  [[nodiscard]] bool has_context() const noexcept { return keys != nullptr && values != nullptr; }
};

/// \brief What an expert must provide: dimensions (which may depend on the context) and a const,
/// thread-safe, row-wise `forward(x [n × in], out [n × out], ctx)`.
template <class E, class T>
concept moe_expert = attention_scalar<T> && std::move_constructible<E> &&
    requires(const E& e, const matrix_cref<T>& x, matrix_ref<T> out, const expert_context<T>& ctx) {
  { e.input_dim(ctx) } -> std::convertible_to<std::size_t>;
  { e.output_dim(ctx) } -> std::convertible_to<std::size_t>;
  e.forward(x, out, ctx);
};

RUVECTOR_ATTENTION_KERNEL_WARNINGS_BEGIN

namespace detail {

/// x[i] = act(x[i] + bias[i]) for i < n (`bias` may be null). ReLU is max(z, 0); GELU is the
/// exact ½ z (1 + erf(z/√2)) with xsimd's vector erf (a few ulp; compared with std::erf in tests).
template <class T, class Arch = kernels::default_arch>
void bias_activation(T* x, const T* bias, std::size_t n, expert_activation act) noexcept {
  using B = kernels::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const auto run = [&](auto f) {
    std::size_t i = 0;
    if (bias != nullptr) {
      for (; i + W <= n; i += W)
        f(B::load_unaligned(x + i) + B::load_unaligned(bias + i)).store_unaligned(x + i);
      if (i < n) {
        const B z = kernels::detail::load_partial<T, Arch>(x + i, n - i, T(0)) +
                    kernels::detail::load_partial<T, Arch>(bias + i, n - i, T(0));
        kernels::detail::store_partial(f(z), x + i, n - i);
      }
    } else {
      for (; i + W <= n; i += W) f(B::load_unaligned(x + i)).store_unaligned(x + i);
      if (i < n) {
        kernels::detail::store_partial(
            f(kernels::detail::load_partial<T, Arch>(x + i, n - i, T(0))), x + i, n - i);
      }
    }
  };
  if (act == expert_activation::relu) {
    run([](const B& z) { return xsimd::max(z, B(T(0))); });
  } else {
    run([](const B& z) {
      return B(T(0.5)) * z * (B(T(1)) + xsimd::erf(z * B(T(0.70710678118654752440))));
    });
  }
}

}  // namespace detail

RUVECTOR_ATTENTION_KERNEL_WARNINGS_END

namespace detail {

/// Xavier-uniform [out × in] matrix drawn row-major from `gen`.
template <class T>
row_matrix<T> xavier_uniform(rng& gen, std::size_t out, std::size_t in) {
  const double a = std::sqrt(6.0 / static_cast<double>(in + out));
  row_matrix<T> w(static_cast<Eigen::Index>(out), static_cast<Eigen::Index>(in));
  for (Eigen::Index i = 0; i < w.size(); ++i) w.data()[i] = gen.uniform<T>(T(-a), T(a));
  return w;
}

/// Throws `dimension_mismatch` unless `m` is rows × cols.
template <class M>
void require_shape(std::string_view name, const M& m, std::size_t rows, std::size_t cols) {
  require_dimension(std::string(name).append(".rows()"), static_cast<std::size_t>(m.rows()), rows);
  require_dimension(std::string(name).append(".cols()"), static_cast<std::size_t>(m.cols()), cols);
}

}  // namespace detail

/// \brief Configuration of a seeded `feed_forward_expert`.
struct feed_forward_config {
  std::size_t dim = 0;     ///< input and output width d
  std::size_t hidden = 0;  ///< hidden width h (0 = 4·d, the Transformer's ratio)
  expert_activation activation = expert_activation::gelu;
  bool bias = true;        ///< learn b_1 and b_2 (initialised to zero)
  std::uint64_t seed = 0;  ///< seed of the Xavier initialisation
};

/// \brief Parameters of a feed-forward expert in `[out_features, in_features]` layout.
template <class T>
struct feed_forward_weights {
  row_matrix<T> w1;                        ///< [h × d]
  Eigen::Matrix<T, Eigen::Dynamic, 1> b1;  ///< [h] (empty = no bias)
  row_matrix<T> w2;                        ///< [d_out × h]
  Eigen::Matrix<T, Eigen::Dynamic, 1> b2;  ///< [d_out] (empty = no bias)
};

/// \brief Two-layer feed-forward expert y = act(x W_1ᵀ + b_1) W_2ᵀ + b_2 (see the file comment).
/// Both products are Eigen GEMMs over the whole block of routed tokens.
template <attention_scalar T = float>
class feed_forward_expert {
 public:
  using value_type = T;
  using vector_type = Eigen::Matrix<T, Eigen::Dynamic, 1>;

  /// \brief d → h → d expert, Xavier-initialised from `config.seed`, zero biases.
  explicit feed_forward_expert(const feed_forward_config& config) : act_(config.activation) {
    require_config(config.dim > 0, "feed_forward_expert: dim must be > 0");
    require_at_most("feed_forward_expert dim", config.dim, max_dimension);
    const std::size_t h = config.hidden == 0 ? 4 * config.dim : config.hidden;
    require_at_most("feed_forward_expert hidden", h, max_dimension);
    rng gen(config.seed);
    w_.w1 = detail::xavier_uniform<T>(gen, h, config.dim);
    w_.w2 = detail::xavier_uniform<T>(gen, config.dim, h);
    if (config.bias) {
      w_.b1 = vector_type::Zero(static_cast<Eigen::Index>(h));
      w_.b2 = vector_type::Zero(static_cast<Eigen::Index>(config.dim));
    }
  }

  /// \brief Expert with caller weights (w1 [h × d], w2 [d_out × h], biases empty or [h], [d_out]).
  /// Throws `dimension_mismatch` on inconsistent shapes, `invalid_config` on empty matrices and
  /// `non_finite_input` on NaN/Inf parameters.
  feed_forward_expert(feed_forward_weights<T> weights, expert_activation activation)
      : w_(std::move(weights)), act_(activation) {
    const auto h = static_cast<std::size_t>(w_.w1.rows());
    const auto d = static_cast<std::size_t>(w_.w1.cols());
    require_config(h > 0 && d > 0, "feed_forward_expert: w1 must be non-empty [hidden x dim]");
    require_config(w_.w2.rows() > 0, "feed_forward_expert: w2 must be non-empty [out x hidden]");
    require_dimension("feed_forward_expert w2.cols() (must equal w1.rows())",
                      static_cast<std::size_t>(w_.w2.cols()), h);
    if (w_.b1.size() != 0)
      require_dimension("feed_forward_expert b1.size()", static_cast<std::size_t>(w_.b1.size()), h);
    if (w_.b2.size() != 0)
      require_dimension("feed_forward_expert b2.size()", static_cast<std::size_t>(w_.b2.size()),
                        static_cast<std::size_t>(w_.w2.rows()));
    require_finite("feed_forward_expert w1", w_.w1.data(), h, d, w_.w1.cols());
    require_finite("feed_forward_expert w2", w_.w2.data(), static_cast<std::size_t>(w_.w2.rows()),
                   h, w_.w2.cols());
    require_finite("feed_forward_expert b1", std::span<const T>(w_.b1.data(), w_.b1.size()));
    require_finite("feed_forward_expert b2", std::span<const T>(w_.b2.data(), w_.b2.size()));
  }

  /// Input width d.
  [[nodiscard]] std::size_t dim() const noexcept { return static_cast<std::size_t>(w_.w1.cols()); }
  /// Hidden width h.
  [[nodiscard]] std::size_t hidden_dim() const noexcept {
    return static_cast<std::size_t>(w_.w1.rows());
  }
  /// Output width d_out (= d for a configured expert).
  [[nodiscard]] std::size_t out_dim() const noexcept {
    return static_cast<std::size_t>(w_.w2.rows());
  }
  /// The activation.
  [[nodiscard]] expert_activation activation() const noexcept { return act_; }
  /// The parameters.
  [[nodiscard]] const feed_forward_weights<T>& weights() const noexcept { return w_; }
  /// Multiply-add FLOPs per token of the two products: 2·d·h + 2·h·d_out.
  [[nodiscard]] double flops_per_token() const noexcept {
    return 2.0 * static_cast<double>(hidden_dim()) * static_cast<double>(dim() + out_dim());
  }

  /// Input width (the context is ignored).
  [[nodiscard]] std::size_t input_dim(const expert_context<T>& = {}) const noexcept {
    return dim();
  }
  /// Output width (the context is ignored).
  [[nodiscard]] std::size_t output_dim(const expert_context<T>& = {}) const noexcept {
    return out_dim();
  }

  /// \brief out = act(x W_1ᵀ + b_1) W_2ᵀ + b_2 for the n rows of `x` [n × d]; `out` is [n × d_out]
  /// and must not alias `x`. Throws `dimension_mismatch` on wrong shapes.
  void forward(const matrix_cref<T>& x, matrix_ref<T> out, const expert_context<T>& = {}) const {
    const auto n = static_cast<std::size_t>(x.rows());
    require_dimension("feed_forward_expert x.cols()", static_cast<std::size_t>(x.cols()), dim());
    require_dimension("feed_forward_expert out.rows()", static_cast<std::size_t>(out.rows()), n);
    require_dimension("feed_forward_expert out.cols()", static_cast<std::size_t>(out.cols()),
                      out_dim());
    if (n == 0) return;
    const std::size_t h = hidden_dim(), dout = out_dim();
    const auto idx = [](std::size_t v) { return static_cast<Eigen::Index>(v); };
    // Thread-local, Eigen-aligned scratch (slots 20/21 are this header's), so the rounding does
    // not depend on where the caller's `out` sits and concurrent calls do not share memory.
    Eigen::Map<row_matrix<T>, Eigen::Aligned16> hid(detail::thread_scratch<T, 20>(n * h), idx(n),
                                                    idx(h));
    Eigen::Map<row_matrix<T>, Eigen::Aligned16> y(detail::thread_scratch<T, 21>(n * dout), idx(n),
                                                  idx(dout));
    hid.noalias() = x * w_.w1.transpose();
    const T* b1 = w_.b1.size() != 0 ? w_.b1.data() : nullptr;
    for (std::size_t r = 0; r < n; ++r) detail::bias_activation(hid.data() + r * h, b1, h, act_);
    y.noalias() = hid * w_.w2.transpose();
    if (w_.b2.size() != 0) y.rowwise() += w_.b2.transpose();
    out = y;
  }

 private:
  feed_forward_weights<T> w_;
  expert_activation act_;
};

/// \brief An expert that runs any attention mechanism (`attention_mechanism` concept, e.g.
/// `scaled_dot_product_attention<T>`) with the routed token as the query over the call's context
/// keys/values: out_r = mechanism.compute(x_r, K, V). Uses the mechanism's `compute_into` when it
/// has one (no allocation per row). Input width = keys.cols(), output width = values.cols().
template <attention_mechanism M>
class attention_expert {
 public:
  using value_type = typename M::value_type;
  using mechanism_type = M;

  /// Wraps `mechanism` (copied/moved in; it must be immutable and thread-safe, as every
  /// mechanism of the library is).
  explicit attention_expert(M mechanism) : m_(std::move(mechanism)) {}

  /// The wrapped mechanism.
  [[nodiscard]] const M& mechanism() const noexcept { return m_; }

  /// keys.cols() of the context; throws `invalid_argument` without a context.
  [[nodiscard]] std::size_t input_dim(const expert_context<value_type>& ctx) const {
    require_context(ctx);
    return static_cast<std::size_t>(ctx.keys->cols());
  }
  /// values.cols() of the context; throws `invalid_argument` without a context.
  [[nodiscard]] std::size_t output_dim(const expert_context<value_type>& ctx) const {
    require_context(ctx);
    return static_cast<std::size_t>(ctx.values->cols());
  }

  /// \brief out_r = mechanism.compute(x_r, K, V) for each row r of `x`.
  void forward(const matrix_cref<value_type>& x, matrix_ref<value_type> out,
               const expert_context<value_type>& ctx) const {
    require_context(ctx);
    const auto n = static_cast<std::size_t>(x.rows());
    const auto dq = static_cast<std::size_t>(x.cols());
    const auto dv = static_cast<std::size_t>(ctx.values->cols());
    require_dimension("attention_expert out.rows()", static_cast<std::size_t>(out.rows()), n);
    require_dimension("attention_expert out.cols() (must equal values.cols())",
                      static_cast<std::size_t>(out.cols()), dv);
    for (std::size_t r = 0; r < n; ++r) {
      const auto ri = static_cast<Eigen::Index>(r);
      const std::span<const value_type> q(x.data() + ri * x.outerStride(), dq);
      value_type* o = out.data() + ri * out.outerStride();
      if constexpr (has_compute_into) {
        (void)m_.compute_into(q, *ctx.keys, *ctx.values, std::span<value_type>(o, dv));
      } else {
        const std::vector<value_type> y = m_.compute(q, *ctx.keys, *ctx.values);
        require_dimension("attention_expert mechanism output size", y.size(), dv);
        std::copy(y.begin(), y.end(), o);
      }
    }
  }

 private:
  static constexpr bool has_compute_into =
      requires(const M& m, std::span<const value_type> q, const matrix_cref<value_type>& kv,
               std::span<value_type> o) {
    m.compute_into(q, kv, kv, o);
  };

  static void require_context(const expert_context<value_type>& ctx) {
    require_argument(ctx.has_context(),
                     "attention_expert: the call gave no context keys/values (use the forward "
                     "overload that takes keys and values)");
  }

  M m_;
};

/// \brief An expert defined by a callable `f(x [n × in], out [n × out])` with fixed widths (custom
/// experts, tests). `f` must be row-wise and safe to call concurrently from several threads.
template <attention_scalar T = float>
class function_expert {
 public:
  using value_type = T;
  using function_type = std::function<void(const matrix_cref<T>& x, matrix_ref<T> out)>;

  /// \param in input width, \param out output width, \param f the row-wise map.
  function_expert(std::size_t in, std::size_t out, function_type f)
      : in_(in), out_(out), f_(std::move(f)) {
    require_config(in > 0 && out > 0, "function_expert: widths must be > 0");
    require_config(static_cast<bool>(f_), "function_expert: the function is empty");
  }

  [[nodiscard]] std::size_t input_dim(const expert_context<T>& = {}) const noexcept { return in_; }
  [[nodiscard]] std::size_t output_dim(const expert_context<T>& = {}) const noexcept {
    return out_;
  }
  /// Calls f(x, out) after checking the shapes.
  void forward(const matrix_cref<T>& x, matrix_ref<T> out, const expert_context<T>& = {}) const {
    require_dimension("function_expert x.cols()", static_cast<std::size_t>(x.cols()), in_);
    require_dimension("function_expert out.rows()", static_cast<std::size_t>(out.rows()),
                      static_cast<std::size_t>(x.rows()));
    require_dimension("function_expert out.cols()", static_cast<std::size_t>(out.cols()), out_);
    f_(x, out);
  }

 private:
  std::size_t in_, out_;
  function_type f_;
};

/// \brief Type-erased, value-semantic handle to an immutable expert (see the file comment).
/// Copies share the expert; every member is const and thread-safe if the expert's are.
template <attention_scalar T = float>
class any_expert {
 public:
  using value_type = T;

  /// An empty handle (`empty()`); calling it throws `invalid_config`.
  any_expert() = default;

  /// Wraps any expert (moved into shared, immutable storage).
  template <class E>
  requires(!std::same_as<std::remove_cvref_t<E>, any_expert> &&
           moe_expert<std::remove_cvref_t<E>, T>)
      any_expert(E&& expert)  // NOLINT(google-explicit-constructor)
      : self_(std::make_shared<const model<std::remove_cvref_t<E>>>(std::forward<E>(expert))) {}

  /// True for a default-constructed handle.
  [[nodiscard]] bool empty() const noexcept { return self_ == nullptr; }
  /// The wrapped expert if it is an `E`, else null.
  template <class E>
  [[nodiscard]] const E* target() const noexcept {
    const auto* m = dynamic_cast<const model<E>*>(self_.get());
    return m ? &m->expert : nullptr;
  }

  [[nodiscard]] std::size_t input_dim(const expert_context<T>& ctx = {}) const {
    return get().input_dim(ctx);
  }
  [[nodiscard]] std::size_t output_dim(const expert_context<T>& ctx = {}) const {
    return get().output_dim(ctx);
  }
  void forward(const matrix_cref<T>& x, matrix_ref<T> out,
               const expert_context<T>& ctx = {}) const {
    get().forward(x, out, ctx);
  }

 private:
  struct concept_t {
    virtual ~concept_t() = default;
    [[nodiscard]] virtual std::size_t input_dim(const expert_context<T>& ctx) const = 0;
    [[nodiscard]] virtual std::size_t output_dim(const expert_context<T>& ctx) const = 0;
    virtual void forward(const matrix_cref<T>& x, matrix_ref<T> out,
                         const expert_context<T>& ctx) const = 0;
  };
  template <class E>
  struct model final : concept_t {
    template <class U>
    explicit model(U&& e) : expert(std::forward<U>(e)) {}
    [[nodiscard]] std::size_t input_dim(const expert_context<T>& ctx) const override {
      return static_cast<std::size_t>(expert.input_dim(ctx));
    }
    [[nodiscard]] std::size_t output_dim(const expert_context<T>& ctx) const override {
      return static_cast<std::size_t>(expert.output_dim(ctx));
    }
    void forward(const matrix_cref<T>& x, matrix_ref<T> out,
                 const expert_context<T>& ctx) const override {
      expert.forward(x, out, ctx);
    }
    E expert;
  };

  [[nodiscard]] const concept_t& get() const {
    require_config(self_ != nullptr, "any_expert: the handle is empty");
    return *self_;
  }

  std::shared_ptr<const concept_t> self_;
};

}  // namespace ruvector::attention
// ---- end ruvector/attention/moe/expert.hpp ----
// ---- begin ruvector/attention/moe/moe_attention.hpp ----
/// \file moe/moe_attention.hpp
/// \brief Token-routed sparse mixture of experts (Shazeer et al. 2017; Switch Transformer, Fedus et
/// al. 2021; ST-MoE, Zoph et al. 2022). A batch of N tokens is routed in one call:
///
///     y_t = Σ_{s < k, slot (t, s) kept} g_ts · expert_{e_ts}(x_t)
///
/// with the router, gates, capacity, overflow policy and auxiliary losses of moe/router.hpp and the
/// experts of moe/expert.hpp (feed-forward experts, attention experts that treat the routed token
/// as a query over the call's context keys/values, or any `moe_expert`). Each token runs only
/// through the experts that kept it, so the work is k/E of a dense layer of E experts (plus the
/// router); a dropped assignment contributes zero (see router.hpp), so a token dropped by all its
/// experts outputs a zero row — add the residual (x + y) outside the layer for Switch's
/// pass-through.
///
/// This replaces the seeds' `MoEAttention`, which routed *mechanisms* (every expert saw all keys
/// and the router chose mechanisms per query) and used the non-standard balance loss
/// E·Σ_e(count_e/B − 1/E)². The seeds' shapes survive as adapters: `compute(query, keys, values)`
/// routes one token (so `moe_attention<T>` models `attention_mechanism`) and
/// `compute_with_loss(queries, keys, values)` returns the outputs and the Switch balance loss.
///
/// Execution: the router runs in blocks of 256 tokens; each expert's kept tokens are gathered
/// (in admission order) into blocks of `expert_block` rows, and `parallel_for` runs the (expert,
/// block) tasks, each writing its own rows of `expert_outputs` [assignments × d_out]; a second
/// `parallel_for` over tokens adds the gated rows in slot order. The blocking does not depend on
/// the thread count, so results are bit-identical for any number of threads. The layer is
/// immutable after construction; `forward` is const and thread-safe.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

// ---- begin ruvector/attention/moe/router.hpp ----
/// \file moe/router.hpp
/// \brief Learned top-k token router with expert capacity and the auxiliary losses of sparse
/// mixtures of experts: noisy top-k gating (Shazeer et al. 2017), Switch routing and load balancing
/// (Fedus et al. 2021, "Switch Transformers", §2.1–2.2, §2.4), GShard capacity (Lepikhin et al.
/// 2020), batch-prioritised routing (Riquelme et al. 2021, V-MoE) and the router z-loss (Zoph et
/// al. 2022, "ST-MoE", §3.1). For N tokens x_t ∈ ℝ^d and E experts:
///
///     logits  l = x W_rᵀ (+ b)                      W_r [E × d], b [E]          [N × E]
///     probs   p_t = softmax(l_t)                    (max-subtracted)
///     top-k   S_t = the k experts of largest l_te   (ties → lower expert index), slot order =
///                                                   descending probability
///     gates   g_ts = p_t,e_s / Σ_{s'<k} p_t,e_s'    (renormalize = true;  default for k > 1)
///             g_ts = p_t,e_s                        (renormalize = false; Switch's k = 1 gate)
///     capacity C = ⌈capacity_factor · N · k / E⌉    (clamped to [1, N]; +inf → N)
///     L_aux   = E · Σ_e f_e · P_e,  P_e = (1/N) Σ_t p_te,
///             f_e = (1/N) Σ_t 1[e_t,0 = e]          (balance_fraction::top1, Switch's dispatch
///                                                   fraction of the first choice; default) or
///             f_e = (1/(N·k)) Σ_t Σ_s 1[e_ts = e]   (balance_fraction::top_k)
///     L_z     = (1/N) Σ_t (log Σ_e exp l_te)²
///
/// L_aux = 1 when P and f are both uniform and E·P_e when every token picks expert e; L_z = (ln E)²
/// for all-zero logits. Both are reported, not added: scale them (Switch α = 1e-2, ST-MoE
/// c_z = 1e-3) in the training loss. They and P_e are accumulated in double and rounded to T.
///
/// **Capacity and overflow.** Each expert accepts at most C assignments. Assignments are admitted
/// slot-major (all first choices, then all second choices, ..., as in GShard), and within a slot in
/// the order of `capacity_priority`: `token_order` (token index; Switch/GShard) or `gate_value`
/// (batch-prioritised routing: tokens by descending top-1 probability, ties → lower token index).
/// An assignment arriving at a full expert is **dropped**: it contributes nothing to the token's
/// output (its term is zero; the remaining gates are not renormalised), and it is listed in
/// `stats.dropped` in admission order. A token whose every slot is dropped gets a zero output;
/// with the usual residual connection y = x + moe(x) it passes through unchanged, as in Switch.
///
/// **Jitter** (training only; `routing_call::train`): `multiplicative` multiplies the router's
/// input element-wise by u ~ U(1 − ε, 1 + ε) (Switch's jitter; experts still see the clean token);
/// `additive` adds ε·N(0, 1) to each logit (noisy top-k with a fixed noise scale ε instead of
/// Shazeer's learned softplus(x W_noise)). Draws come from `rng(call.seed)` in token-major order
/// (for multiplicative: token, then input coordinate; for additive: token, then expert), serially,
/// so the result is bit-identical for a seed on any thread count; pass a different seed per
/// training step. With `train = false` routing is deterministic and the seed is ignored. Losses,
/// top-k and gates all use the jittered logits.
///
/// **Initialisation.** W_r ~ N(0, σ²) with σ = √(0.1/d), truncated to ±2σ by resampling (Switch
/// §2.4's reduced initialisation scale), drawn row-major from `rng(config.seed)`; b = 0.

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
#include <utility>
#include <vector>


namespace ruvector::attention {

/// \brief Training-time noise of the router (see the file comment).
enum class router_jitter {
  none,            ///< no noise
  multiplicative,  ///< router input ⊙ U(1 − ε, 1 + ε) (Switch)
  additive         ///< logits + ε·N(0, 1) (noisy top-k, fixed scale)
};

/// \brief Order in which assignments claim expert capacity within a slot.
enum class capacity_priority {
  token_order,  ///< by token index (Switch / GShard)
  gate_value    ///< by descending top-1 probability (batch-prioritised routing, V-MoE)
};

/// \brief Which dispatch fraction f_e enters the load-balancing loss.
enum class balance_fraction {
  top1,  ///< fraction of tokens whose first choice is e (Switch)
  top_k  ///< fraction of all N·k assignments that go to e
};

/// \brief Configuration of `top_k_router`.
struct router_config {
  std::size_t dim = 0;                ///< token width d
  std::size_t num_experts = 0;        ///< E
  std::size_t top_k = 1;              ///< k (1 ≤ k ≤ E)
  double capacity_factor = 1.25;      ///< > 0; +inf = unlimited (C = N)
  std::optional<bool> renormalize{};  ///< renormalise gates over the k selected (default k > 1)
  router_jitter jitter = router_jitter::none;
  double jitter_eps = 1e-2;  ///< ε of the jitter (≥ 0; < 1 for multiplicative)
  capacity_priority priority = capacity_priority::token_order;
  balance_fraction balance = balance_fraction::top1;
  bool bias = false;       ///< learn a router bias b (initialised to zero)
  std::uint64_t seed = 0;  ///< seed of the router initialisation
};

/// \brief Per-call options of routing (and of `moe_attention::forward`).
struct routing_call {
  bool train = false;        ///< apply the configured jitter (training mode)
  std::uint64_t seed = 0;    ///< seed of the jitter draws (ignored when train = false)
  bool check_finite = true;  ///< throw `non_finite_input` on NaN/Inf tokens
};

/// \brief One (token, slot) → expert assignment.
struct moe_assignment {
  std::size_t token = 0;   ///< token index t
  std::size_t slot = 0;    ///< slot s < k (0 = first choice)
  std::size_t expert = 0;  ///< expert index e
  friend bool operator==(const moe_assignment&, const moe_assignment&) = default;
};

/// \brief Summary statistics of one routing of a batch.
template <class T>
struct moe_stats {
  T load_balance_loss = T(0);  ///< L_aux = E · Σ_e f_e P_e (0 for an empty batch)
  T router_z_loss = T(0);      ///< L_z = mean_t logsumexp(l_t)² (0 for an empty batch)
  std::size_t capacity = 0;    ///< C, the per-expert capacity
  std::vector<std::size_t> tokens_per_expert;    ///< [E] assignments kept (≤ C)
  std::vector<std::size_t> assigned_per_expert;  ///< [E] assignments before capacity
  std::vector<T> expert_fraction;                ///< [E] f_e of the balance loss
  std::vector<T> mean_probability;               ///< [E] P_e of the balance loss
  std::vector<moe_assignment> dropped;  ///< assignments beyond capacity, in admission order
  std::size_t dropped_tokens = 0;       ///< tokens none of whose slots was kept (zero output)
};

/// \brief The full routing decision of a batch of N tokens.
template <class T>
struct router_output {
  std::size_t num_tokens = 0, num_experts = 0, top_k = 0;
  row_matrix<T> logits;              ///< [N × E] the logits used (after bias and jitter)
  row_matrix<T> probs;               ///< [N × E] softmax of `logits`
  std::vector<std::size_t> experts;  ///< [N·k] expert of slot s of token t at t·k + s
  std::vector<T> gates;              ///< [N·k] gate of each slot (before capacity)
  std::vector<std::uint8_t> kept;    ///< [N·k] 1 = admitted within capacity, 0 = dropped
  std::vector<T> lse;                ///< [N] log Σ_e exp(l_te) (the z-loss term before squaring)
  /// [E + 1] `dispatch[expert_offsets[e] .. expert_offsets[e+1])` are expert e's kept assignments.
  std::vector<std::size_t> expert_offsets;
  std::vector<moe_assignment> dispatch;  ///< kept assignments grouped by expert, admission order
  moe_stats<T> stats;                    ///< losses, counts and dropped assignments

  /// Expert of slot s of token t.
  [[nodiscard]] std::size_t expert(std::size_t t, std::size_t s) const {
    return experts[t * top_k + s];
  }
  /// Gate of slot s of token t.
  [[nodiscard]] T gate(std::size_t t, std::size_t s) const { return gates[t * top_k + s]; }
  /// Whether slot s of token t was admitted.
  [[nodiscard]] bool is_kept(std::size_t t, std::size_t s) const {
    return kept[t * top_k + s] != 0;
  }
};

/// \brief Learned linear top-k router (see the file comment). Immutable after construction except
/// through `set_weights`; `route` is const and thread-safe.
template <attention_scalar T = float>
class top_k_router {
 public:
  using value_type = T;
  using vector_type = Eigen::Matrix<T, Eigen::Dynamic, 1>;

  /// \brief Validates `config` (throws `invalid_config`) and initialises W_r (and b) from its seed.
  explicit top_k_router(const router_config& config) : cfg_(config) {
    const router_config& c = cfg_;
    std::ostringstream os;
    require_config(c.dim > 0, "top_k_router: dim must be > 0");
    require_at_most("top_k_router dim", c.dim, max_dimension);
    require_config(c.num_experts > 0, "top_k_router: num_experts must be > 0");
    require_at_most("top_k_router num_experts", c.num_experts, max_dimension);
    if (c.top_k == 0 || c.top_k > c.num_experts) {
      os << "top_k_router: top_k must be in [1, num_experts = " << c.num_experts << "], got "
         << c.top_k;
      require_config(false, os.str());
    }
    if (!(c.capacity_factor > 0.0)) {
      os << "top_k_router: capacity_factor must be > 0 (or +inf for no limit), got "
         << c.capacity_factor;
      require_config(false, os.str());
    }
    if (!(c.jitter_eps >= 0.0) || !std::isfinite(c.jitter_eps) ||
        (c.jitter == router_jitter::multiplicative && c.jitter_eps >= 1.0)) {
      os << "top_k_router: jitter_eps must be finite, >= 0 (and < 1 for multiplicative jitter), "
            "got "
         << c.jitter_eps;
      require_config(false, os.str());
    }
    renormalize_ = c.renormalize.value_or(c.top_k > 1);
    initialise();
  }

  [[nodiscard]] const router_config& config() const noexcept { return cfg_; }
  [[nodiscard]] std::size_t dim() const noexcept { return cfg_.dim; }
  [[nodiscard]] std::size_t num_experts() const noexcept { return cfg_.num_experts; }
  [[nodiscard]] std::size_t top_k() const noexcept { return cfg_.top_k; }
  /// Whether gates are renormalised over the k selected experts.
  [[nodiscard]] bool renormalize() const noexcept { return renormalize_; }
  /// W_r [E × d].
  [[nodiscard]] const row_matrix<T>& weight() const noexcept { return w_; }
  /// b [E] (empty = no bias).
  [[nodiscard]] const vector_type& bias() const noexcept { return b_; }

  /// \brief Replaces W_r [E × d] and b ([E], or empty for none). Throws `dimension_mismatch` on
  /// wrong shapes, `non_finite_input` on NaN/Inf. Not thread-safe with concurrent `route` calls.
  void set_weights(row_matrix<T> w, vector_type b = {}) {
    require_dimension("router weight.rows()", static_cast<std::size_t>(w.rows()), cfg_.num_experts);
    require_dimension("router weight.cols()", static_cast<std::size_t>(w.cols()), cfg_.dim);
    if (b.size() != 0)
      require_dimension("router bias.size()", static_cast<std::size_t>(b.size()), cfg_.num_experts);
    require_finite("router weight", w.data(), cfg_.num_experts, cfg_.dim, w.cols());
    require_finite("router bias", std::span<const T>(b.data(), static_cast<std::size_t>(b.size())));
    w_ = std::move(w);
    b_ = std::move(b);
  }

  /// \brief C = ⌈capacity_factor · N · k / E⌉ clamped to [1, N] (0 for N = 0). The product is
  /// evaluated in double and shrunk by a relative 1e-12 before the ceiling, so a value that is an
  /// integer up to rounding (e.g. 1.25 · 8 · 2 / 4) is not bumped to the next integer.
  [[nodiscard]] std::size_t capacity(std::size_t num_tokens) const noexcept {
    if (num_tokens == 0) return 0;
    if (std::isinf(cfg_.capacity_factor)) return num_tokens;
    const double x = cfg_.capacity_factor * static_cast<double>(num_tokens) *
                     static_cast<double>(cfg_.top_k) / static_cast<double>(cfg_.num_experts);
    const double c = std::ceil(x * (1.0 - 1e-12));
    if (c >= static_cast<double>(num_tokens)) return num_tokens;
    return std::max<std::size_t>(1, static_cast<std::size_t>(c));
  }

  /// \brief Routes the N rows of `tokens` [N × d] (see the file comment). An empty batch gives an
  /// empty decision with zero losses. Throws `dimension_mismatch` when tokens.cols() ≠ d and
  /// `non_finite_input` on NaN/Inf tokens (with `call.check_finite`) or overflowing logits.
  [[nodiscard]] router_output<T> route(const matrix_cref<T>& tokens,
                                       const routing_call& call = {}) const {
    router_output<T> out;
    route_into(tokens, out, call);
    return out;
  }

  /// \brief `route` into a caller-owned result whose buffers are reused (no allocation when the
  /// batch shape repeats, which avoids page faults on large batches). Every field is overwritten;
  /// after an exception the contents of `out` are unspecified.
  void route_into(const matrix_cref<T>& tokens, router_output<T>& out,
                  const routing_call& call = {}) const {
    const std::size_t N = static_cast<std::size_t>(tokens.rows());
    const std::size_t d = cfg_.dim, E = cfg_.num_experts, k = cfg_.top_k;
    require_dimension("tokens.cols() (router dim)", static_cast<std::size_t>(tokens.cols()), d);
    require_at_most("tokens.rows()", N, max_sequence_length);
    if (call.check_finite) {
      // Vectorised scan; the element-wise diagnosis (which names the first bad element) runs only
      // on failure.
      for (std::size_t t = 0; t < N; ++t) {
        if (!kernels::all_finite(tokens.data() + t * static_cast<std::size_t>(tokens.outerStride()),
                                 d)) {
          require_finite("tokens", tokens.data(), N, d,
                         static_cast<std::ptrdiff_t>(tokens.outerStride()));
        }
      }
    }

    const auto idx = [](std::size_t v) { return static_cast<Eigen::Index>(v); };
    out.num_tokens = N;
    out.num_experts = E;
    out.top_k = k;
    out.logits.resize(idx(N), idx(E));
    out.probs.resize(idx(N), idx(E));
    out.experts.assign(N * k, 0);
    out.gates.assign(N * k, T(0));
    out.kept.assign(N * k, 0);
    out.lse.assign(N, T(0));
    out.dispatch.clear();
    out.stats.dropped.clear();
    out.stats.dropped_tokens = 0;
    out.stats.load_balance_loss = T(0);
    out.stats.router_z_loss = T(0);
    out.stats.capacity = capacity(N);

    // ---- jitter draws (serial, token-major: independent of the thread count) -------------------
    const bool jitter = call.train && cfg_.jitter != router_jitter::none && cfg_.jitter_eps > 0.0;
    row_matrix<T> jittered;
    row_matrix<T> noise;
    if (jitter) {
      rng gen(call.seed);
      const double eps = cfg_.jitter_eps;
      if (cfg_.jitter == router_jitter::multiplicative) {
        jittered = tokens;
        for (Eigen::Index i = 0; i < jittered.size(); ++i)
          jittered.data()[i] *= gen.uniform<T>(T(1.0 - eps), T(1.0 + eps));
      } else {
        noise.resize(idx(N), idx(E));
        for (Eigen::Index i = 0; i < noise.size(); ++i)
          noise.data()[i] = static_cast<T>(eps * gen.normal<double>());
      }
    }
    const matrix_cref<T> src = jittered.size() != 0 ? matrix_cref<T>(jittered) : tokens;

    // ---- logits, softmax, top-k and gates per block of tokens ----------------------------------
    std::vector<T>& lse = out.lse;
    constexpr std::size_t block = 256;
    const std::size_t blocks = (N + block - 1) / block;
    parallel_for(0, blocks, [&](std::size_t bi) {
      const std::size_t r0 = bi * block, rows = std::min(block, N - r0);
      out.logits.middleRows(idx(r0), idx(rows)).noalias() =
          src.middleRows(idx(r0), idx(rows)) * w_.transpose();
      std::vector<std::size_t> order(E);
      for (std::size_t t = r0; t < r0 + rows; ++t) {
        T* l = out.logits.data() + t * E;
        if (b_.size() != 0)
          for (std::size_t e = 0; e < E; ++e) l[e] += b_[idx(e)];
        if (noise.size() != 0)
          for (std::size_t e = 0; e < E; ++e) l[e] += noise(idx(t), idx(e));
        if (!kernels::all_finite(l, E)) {
          std::ostringstream os;
          os << "non-finite input: router logits of token " << t
             << " are not finite (the token or the router weights overflow)";
          throw non_finite_input(os.str());
        }
        T* p = out.probs.data() + t * E;
        std::copy(l, l + E, p);
        lse[t] = kernels::softmax(p, E);
        // Top-k by logit, ties → lower index (a strict weak order on finite logits).
        std::iota(order.begin(), order.end(), std::size_t{0});
        std::partial_sort(
            order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
            [l](std::size_t a, std::size_t b) { return l[a] > l[b] || (l[a] == l[b] && a < b); });
        T sum = T(0);
        for (std::size_t s = 0; s < k; ++s) {
          out.experts[t * k + s] = order[s];
          out.gates[t * k + s] = p[order[s]];
          sum += p[order[s]];
        }
        if (renormalize_)  // sum ≥ p_max ≥ 1/E > 0
          for (std::size_t s = 0; s < k; ++s) out.gates[t * k + s] /= sum;
      }
    });

    // ---- auxiliary losses (serial sums in double, token order) ---------------------------------
    moe_stats<T>& st = out.stats;
    st.tokens_per_expert.assign(E, 0);
    st.assigned_per_expert.assign(E, 0);
    st.expert_fraction.assign(E, T(0));
    st.mean_probability.assign(E, T(0));
    out.expert_offsets.assign(E + 1, 0);
    if (N == 0) return;
    std::vector<double> P(E, 0.0), f(E, 0.0);
    double z = 0.0;
    for (std::size_t t = 0; t < N; ++t) {
      z = std::fma(static_cast<double>(lse[t]), static_cast<double>(lse[t]), z);
      for (std::size_t e = 0; e < E; ++e) P[e] += static_cast<double>(out.probs(idx(t), idx(e)));
      for (std::size_t s = 0; s < k; ++s) ++st.assigned_per_expert[out.experts[t * k + s]];
      if (cfg_.balance == balance_fraction::top1) {
        f[out.experts[t * k]] += 1.0;
      } else {
        for (std::size_t s = 0; s < k; ++s) f[out.experts[t * k + s]] += 1.0;
      }
    }
    const double fnorm = cfg_.balance == balance_fraction::top1
                             ? static_cast<double>(N)
                             : static_cast<double>(N) * static_cast<double>(k);
    double aux = 0.0;
    for (std::size_t e = 0; e < E; ++e) {
      P[e] /= static_cast<double>(N);
      f[e] /= fnorm;
      // Explicit fma: with implicit contraction GCC's runtime-versioned copies of this loop
      // (chosen by the vectors' addresses) rounded differently, so equal inputs gave results 1 ulp
      // apart from call to call.
      aux = std::fma(f[e], P[e], aux);
      st.expert_fraction[e] = static_cast<T>(f[e]);
      st.mean_probability[e] = static_cast<T>(P[e]);
    }
    st.load_balance_loss = static_cast<T>(static_cast<double>(E) * aux);
    st.router_z_loss = static_cast<T>(z / static_cast<double>(N));

    // ---- capacity: slot-major admission in priority order ---------------------------------------
    std::vector<std::size_t> order(N);
    std::iota(order.begin(), order.end(), std::size_t{0});
    if (cfg_.priority == capacity_priority::gate_value) {
      std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        return out.probs(idx(a), idx(out.experts[a * k])) >
               out.probs(idx(b), idx(out.experts[b * k]));
      });
    }
    const std::size_t C = st.capacity;
    for (std::size_t s = 0; s < k; ++s) {
      for (const std::size_t t : order) {
        const std::size_t e = out.experts[t * k + s];
        if (st.tokens_per_expert[e] < C) {
          ++st.tokens_per_expert[e];
          out.kept[t * k + s] = 1;
        } else {
          st.dropped.push_back(moe_assignment{t, s, e});
        }
      }
    }
    // Dispatch lists (grouped by expert, admission order): a second pass in the same order.
    for (std::size_t e = 0; e < E; ++e)
      out.expert_offsets[e + 1] = out.expert_offsets[e] + st.tokens_per_expert[e];
    out.dispatch.resize(out.expert_offsets[E]);
    std::vector<std::size_t> fill(out.expert_offsets.begin(), out.expert_offsets.end() - 1);
    for (std::size_t s = 0; s < k; ++s)
      for (const std::size_t t : order)
        if (out.kept[t * k + s] != 0) {
          const std::size_t e = out.experts[t * k + s];
          out.dispatch[fill[e]++] = moe_assignment{t, s, e};
        }
    for (std::size_t t = 0; t < N; ++t) {
      bool any = false;
      for (std::size_t s = 0; s < k; ++s) any = any || out.kept[t * k + s] != 0;
      if (!any) ++st.dropped_tokens;
    }
  }

 private:
  void initialise() {
    rng gen(cfg_.seed);
    const double sigma = std::sqrt(0.1 / static_cast<double>(cfg_.dim));
    w_.resize(static_cast<Eigen::Index>(cfg_.num_experts), static_cast<Eigen::Index>(cfg_.dim));
    for (Eigen::Index i = 0; i < w_.size(); ++i) {
      double v = gen.normal<double>();
      while (std::abs(v) > 2.0) v = gen.normal<double>();
      w_.data()[i] = static_cast<T>(sigma * v);
    }
    if (cfg_.bias) b_ = vector_type::Zero(static_cast<Eigen::Index>(cfg_.num_experts));
  }

  router_config cfg_;
  bool renormalize_ = false;
  row_matrix<T> w_;
  vector_type b_;
};

}  // namespace ruvector::attention
// ---- end ruvector/attention/moe/router.hpp ----

namespace ruvector::attention {

/// \brief Configuration of a `moe_attention` layer of E seeded feed-forward experts. (The seeds'
/// `expert_capacity` is `capacity_factor`, `jitter_noise` is `jitter_eps`.)
struct moe_config {
  std::size_t dim = 0;          ///< token width d
  std::size_t num_experts = 4;  ///< E
  std::size_t top_k = 2;        ///< k
  std::size_t hidden_dim = 0;   ///< expert hidden width h (0 = 4·d)
  expert_activation activation = expert_activation::gelu;
  bool expert_bias = true;            ///< feed-forward biases (initialised to zero)
  double capacity_factor = 1.25;      ///< C = ⌈capacity_factor·N·k/E⌉; +inf = unlimited
  std::optional<bool> renormalize{};  ///< default: k > 1
  router_jitter jitter = router_jitter::none;
  double jitter_eps = 1e-2;
  capacity_priority priority = capacity_priority::token_order;
  balance_fraction balance = balance_fraction::top1;
  bool router_bias = false;
  /// Router seed; expert e is initialised from seed + 1 + e.
  std::uint64_t seed = 0;
  std::size_t expert_block = 256;  ///< tokens per (expert, block) task; > 0
};

/// \brief The output of one routed batch.
template <class T>
struct moe_result {
  row_matrix<T> output;      ///< [N × d_out]
  moe_stats<T> stats;        ///< losses, per-expert counts, dropped assignments (= routing.stats)
  router_output<T> routing;  ///< the full routing decision (logits, probs, experts, gates, kept)
  /// [assignments × d_out] the un-gated expert outputs, row i for `routing.dispatch[i]` (what a
  /// backward pass needs for ∂L/∂g_ts = ⟨∂L/∂y_t, expert_{e_ts}(x_t)⟩).
  row_matrix<T> expert_outputs;
};

/// \brief The seeds' `compute_with_loss` result.
template <class T>
struct moe_loss_output {
  std::vector<std::vector<T>> outputs;  ///< one output per query
  T loss = T(0);                        ///< the Switch load-balancing loss L_aux
  moe_stats<T> stats;                   ///< every other statistic of the call
};

/// \brief Token-routed mixture of experts (see the file comment).
template <attention_scalar T = float>
class moe_attention {
 public:
  using value_type = T;

  /// \brief A router and E feed-forward experts d → h → d, all seeded from `config`.
  explicit moe_attention(const moe_config& config)
      : router_(make_router_config(config)), block_(config.expert_block) {
    require_config(block_ > 0, "moe_attention: expert_block must be > 0");
    experts_.reserve(config.num_experts);
    for (std::size_t e = 0; e < config.num_experts; ++e) {
      experts_.emplace_back(feed_forward_expert<T>(
          feed_forward_config{.dim = config.dim,
                              .hidden = config.hidden_dim,
                              .activation = config.activation,
                              .bias = config.expert_bias,
                              .seed = config.seed + 1 + static_cast<std::uint64_t>(e)}));
    }
  }

  /// \brief The seeds' shape: d = `dim`, E = `num_experts`, k = `top_k`, defaults otherwise.
  moe_attention(std::size_t dim, std::size_t num_experts, std::size_t top_k)
      : moe_attention(moe_config{.dim = dim, .num_experts = num_experts, .top_k = top_k}) {}

  /// \brief A router and caller-supplied experts (experts.size() must equal the router's E; every
  /// expert's input width must be d and all output widths equal — checked per call, since
  /// attention experts take their widths from the call's context).
  moe_attention(top_k_router<T> router, std::vector<any_expert<T>> experts,
                std::size_t expert_block = 256)
      : router_(std::move(router)), experts_(std::move(experts)), block_(expert_block) {
    std::ostringstream os;
    if (experts_.size() != router_.num_experts()) {
      os << "moe_attention: got " << experts_.size() << " experts, the router has "
         << router_.num_experts();
      require_config(false, os.str());
    }
    for (std::size_t e = 0; e < experts_.size(); ++e) {
      if (experts_[e].empty()) {
        os << "moe_attention: experts[" << e << "] is empty";
        require_config(false, os.str());
      }
    }
    require_config(block_ > 0, "moe_attention: expert_block must be > 0");
  }

  [[nodiscard]] const top_k_router<T>& router() const noexcept { return router_; }
  [[nodiscard]] const std::vector<any_expert<T>>& experts() const noexcept { return experts_; }
  [[nodiscard]] std::size_t dim() const noexcept { return router_.dim(); }
  [[nodiscard]] std::size_t num_experts() const noexcept { return router_.num_experts(); }
  [[nodiscard]] std::size_t top_k() const noexcept { return router_.top_k(); }

  /// \brief Routes the rows of `tokens` [N × d] through token-wise experts (no context).
  [[nodiscard]] moe_result<T> forward(const matrix_cref<T>& tokens,
                                      const routing_call& call = {}) const {
    moe_result<T> result;
    forward_into(tokens, result, call);
    return result;
  }

  /// \brief Routes the rows of `tokens` [N × d]; attention experts attend over `keys` [Lk × d_k]
  /// and `values` [Lk × d_v] (feed-forward experts ignore them).
  [[nodiscard]] moe_result<T> forward(const matrix_cref<T>& tokens, const matrix_cref<T>& keys,
                                      const matrix_cref<T>& values,
                                      const routing_call& call = {}) const {
    moe_result<T> result;
    forward_into(tokens, keys, values, result, call);
    return result;
  }

  /// \brief `forward` into a caller-owned result whose buffers are reused (no large allocation
  /// when the batch shape repeats). Every field is overwritten; after an exception the contents
  /// of `result` are unspecified.
  void forward_into(const matrix_cref<T>& tokens, moe_result<T>& result,
                    const routing_call& call = {}) const {
    run(tokens, expert_context<T>{}, call, result);
  }

  /// \brief `forward` with a context, into a caller-owned, reused result.
  void forward_into(const matrix_cref<T>& tokens, const matrix_cref<T>& keys,
                    const matrix_cref<T>& values, moe_result<T>& result,
                    const routing_call& call = {}) const {
    require_dimension("values.rows() (must equal keys.rows())",
                      static_cast<std::size_t>(values.rows()),
                      static_cast<std::size_t>(keys.rows()));
    run(tokens, expert_context<T>{&keys, &values}, call, result);
  }

  /// \brief One token routed in inference mode (the seeds' vector API; models
  /// `attention_mechanism`). A single token is never dropped (C ≥ 1).
  [[nodiscard]] std::vector<T> compute(std::span<const T> query, const matrix_cref<T>& keys,
                                       const matrix_cref<T>& values) const {
    require_dimension("query.size()", query.size(), dim());
    const Eigen::Map<const row_matrix<T>> q(query.data(), 1, static_cast<Eigen::Index>(dim()));
    const moe_result<T> r = forward(q, keys, values);
    return std::vector<T>(r.output.data(), r.output.data() + r.output.size());
  }

  /// \brief Seeds-shaped single query with vector-of-vector keys/values.
  [[nodiscard]] std::vector<T> compute(const std::vector<T>& query,
                                       const std::vector<std::vector<T>>& keys,
                                       const std::vector<std::vector<T>>& values) const {
    return compute(std::span<const T>(query), to_matrix(keys, "keys"), to_matrix(values, "values"));
  }

  /// \brief The seeds' `compute_with_loss(queries, keys, values)`: every query routed as one batch;
  /// returns the outputs and the Switch load-balancing loss (and the full statistics).
  [[nodiscard]] moe_loss_output<T> compute_with_loss(const std::vector<std::vector<T>>& queries,
                                                     const std::vector<std::vector<T>>& keys,
                                                     const std::vector<std::vector<T>>& values,
                                                     const routing_call& call = {}) const {
    row_matrix<T> qm = to_matrix(queries, "queries");
    if (queries.empty()) qm.resize(0, static_cast<Eigen::Index>(dim()));
    moe_result<T> r = forward(qm, to_matrix(keys, "keys"), to_matrix(values, "values"), call);
    moe_loss_output<T> out;
    out.outputs.resize(queries.size());
    for (std::size_t t = 0; t < queries.size(); ++t) {
      const T* row = r.output.data() + t * static_cast<std::size_t>(r.output.cols());
      out.outputs[t].assign(row, row + r.output.cols());
    }
    out.loss = r.stats.load_balance_loss;
    out.stats = std::move(r.stats);
    return out;
  }

 private:
  static router_config make_router_config(const moe_config& c) {
    return router_config{.dim = c.dim,
                         .num_experts = c.num_experts,
                         .top_k = c.top_k,
                         .capacity_factor = c.capacity_factor,
                         .renormalize = c.renormalize,
                         .jitter = c.jitter,
                         .jitter_eps = c.jitter_eps,
                         .priority = c.priority,
                         .balance = c.balance,
                         .bias = c.router_bias,
                         .seed = c.seed};
  }

  void run(const matrix_cref<T>& tokens, const expert_context<T>& ctx, const routing_call& call,
           moe_result<T>& result) const {
    const std::size_t d = dim(), E = num_experts(), k = top_k();
    require_dimension("tokens.cols() (model dim)", static_cast<std::size_t>(tokens.cols()), d);
    const std::size_t dout = experts_.front().output_dim(ctx);
    for (std::size_t e = 0; e < E; ++e) {
      std::ostringstream name;
      name << "experts[" << e << "] input width";
      require_dimension(name.str(), experts_[e].input_dim(ctx), d);
      name.str("");
      name << "experts[" << e << "] output width (must equal experts[0]'s)";
      require_dimension(name.str(), experts_[e].output_dim(ctx), dout);
    }

    router_.route_into(tokens, result.routing, call);
    const router_output<T>& rt = result.routing;
    const std::size_t N = rt.num_tokens, M = rt.dispatch.size();
    const auto idx = [](std::size_t v) { return static_cast<Eigen::Index>(v); };

    // Expert outputs, one row per kept assignment, grouped by expert.
    row_matrix<T>& y = result.expert_outputs;
    y.resize(idx(M), idx(dout));
    constexpr std::size_t npos = std::numeric_limits<std::size_t>::max();
    std::vector<std::size_t> pos(N * k, npos);
    for (std::size_t i = 0; i < M; ++i) pos[rt.dispatch[i].token * k + rt.dispatch[i].slot] = i;
    struct task {
      std::size_t expert, begin, end;
    };
    std::vector<task> tasks;
    for (std::size_t e = 0; e < E; ++e)
      for (std::size_t b = rt.expert_offsets[e]; b < rt.expert_offsets[e + 1]; b += block_)
        tasks.push_back({e, b, std::min(b + block_, rt.expert_offsets[e + 1])});
    parallel_for(0, tasks.size(), [&](std::size_t ti) {
      const task& tk = tasks[ti];
      const std::size_t n = tk.end - tk.begin;
      row_matrix<T> xs(idx(n), idx(d));  // gathered tokens (Eigen-aligned, per task)
      for (std::size_t i = 0; i < n; ++i)
        xs.row(idx(i)) = tokens.row(idx(rt.dispatch[tk.begin + i].token));
      Eigen::Map<row_matrix<T>, 0, Eigen::OuterStride<>> yb(
          y.data() + tk.begin * dout, idx(n), idx(dout), Eigen::OuterStride<>(idx(dout)));
      experts_[tk.expert].forward(xs, yb, ctx);
    });

    // y_t = Σ_s g_ts · expert output, slot order (kept slots only).
    result.output.setZero(idx(N), idx(dout));
    constexpr std::size_t token_block = 256;
    parallel_for(0, (N + token_block - 1) / token_block, [&](std::size_t bi) {
      const std::size_t t1 = std::min(N, (bi + 1) * token_block);
      for (std::size_t t = bi * token_block; t < t1; ++t)
        for (std::size_t s = 0; s < k; ++s)
          if (const std::size_t p = pos[t * k + s]; p != npos)
            result.output.row(idx(t)).noalias() += rt.gates[t * k + s] * y.row(idx(p));
    });
    result.stats = rt.stats;
  }

  top_k_router<T> router_;
  std::vector<any_expert<T>> experts_;
  std::size_t block_;
};

}  // namespace ruvector::attention
// ---- end ruvector/attention/moe/moe_attention.hpp ----
// ---- end ruvector/attention/moe.hpp ----
// ---- begin ruvector/attention/pde.hpp ----
/// \file pde.hpp
/// \brief Entry header of the PDE family (theory 6): graph Laplacians of the keys (dense and
/// sparse kNN CSR; D − W, symmetric normalised, random walk), heat diffusion by stability-checked
/// explicit Euler or a Chebyshev expansion of exp(−tL)v, multiscale diffusion, the diffusion
/// energy, and diffusion attention.

// ---- begin ruvector/attention/pde/diffusion.hpp ----
/// \file pde/diffusion.hpp
/// \brief Heat diffusion on a graph, x(t) = exp(−tL)·x, the solution of the heat equation
/// dx/dt = −L x (theory 6; Kondor & Lafferty 2002, "Diffusion kernels on graphs"), by two
/// methods, for any `laplacian_operator` (dense or sparse; D − W, L_sym or L_rw):
///
/// - **Explicit Euler**: x ← x − h·L x, repeated. With every eigenvalue of L real in [0, λ_max]
///   each mode is multiplied per step by 1 − hλ, which is bounded iff h·λ_max ≤ 2 (the stability
///   bound). The bound is **enforced**: a caller's step dt is first rounded down to h = t/⌈t/dt⌉
///   and, if h·λ_max > 2, the interval is split into ⌈t·λ_max/2⌉ steps; the report says how many
///   steps were requested, how many were taken and whether a split happened. Global error O(h).
/// - **Chebyshev** (Hammond, Vandergheynst & Gribonval 2011; Saad 1992): with λ = (b/2)(1 + u),
///   u ∈ [−1, 1], b = λ_max and α = t·b/2, the generating function of the modified Bessel
///   functions gives
///
///       exp(−tλ) = e^{−α} [ I_0(α) + 2 Σ_{k≥1} (−1)^k I_k(α) T_k(u) ],
///
///   so exp(−tL)x ≈ Σ_{k≤K} c_k T_k(L̃)x with L̃ = (2/b)L − I, c_0 = e^{−α}I_0(α),
///   c_k = 2(−1)^k e^{−α}I_k(α), and T_{k+1}(L̃)x = 2L̃·T_k(L̃)x − T_{k−1}(L̃)x (K products
///   with L). Since |T_k| ≤ 1 on [−1, 1], the truncation error of the scalar function is
///   uniformly at most ε_K = 2 Σ_{k>K} e^{−α}I_k(α); the degree K is the smallest with
///   ε_K ≤ tolerance. Hence for symmetric L (D − W, L_sym) with spectrum in [0, b]:
///
///       ‖p_K(L)x − exp(−tL)x‖₂ ≤ ε_K·‖x‖₂        (exact arithmetic)
///
///   plus rounding of about (K + 1)·ε_machine·‖x‖₂. L_rw = D^{-1/2} L_sym D^{1/2} has the same
///   bound in the D-weighted norm (‖·‖₂ bound × √(max d / min d)). K grows like
///   √(2α·ln(1/tol)) for large α, against ≈ t·λ_max steps for stable Euler.
///   The scaled Bessel values e^{−α}I_k(α) are computed in double by the power series for α ≤ 1
///   and by Miller's backward recurrence I_{k−1} = (2k/α)I_k + I_{k+1}, normalised by
///   I_0 + 2Σ I_k = e^α, for α > 1 (no overflow for any α).
/// - **Multiscale**: several times in one call. Chebyshev shares the vectors T_k(L̃)x (they do
///   not depend on t): one recurrence of the largest degree feeds every output with its own
///   coefficients. Euler integrates the sorted times in sequence (semigroup property).
///
/// Conventions: times are finite and ≥ 0 (t = 0 returns x exactly); the spectral bound defaults to
/// the operator's `lambda_max_bound()` (Gershgorin) and may be overridden with any value ≥ the
/// true λ_max (a smaller value voids the error bound and the Euler stability guarantee). `out`
/// may alias `x`. Inputs are checked for NaN/Inf. Parameters (times, dt, tolerance, bound) are
/// doubles; the vectors are T.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <numeric>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <vector>


namespace ruvector::attention {

/// \brief How exp(−tL)x is computed.
enum class diffusion_method {
  euler,      ///< explicit Euler with the stability bound enforced
  chebyshev,  ///< Chebyshev–Bessel expansion to a tolerance
};

/// \brief Options of a diffusion call.
struct diffusion_options {
  /// Method.
  diffusion_method method = diffusion_method::chebyshev;
  /// Chebyshev truncation tolerance ε (relative to ‖x‖₂), in [1e-15, 1); default 1e-7 for float,
  /// 1e-12 for double.
  std::optional<double> tolerance{};
  /// Requested Euler step (> 0); reduced automatically for stability.
  double dt = 0.1;
  /// Spectral upper bound b ≥ λ_max(L); default: the operator's Gershgorin bound.
  std::optional<double> lambda_max{};
  /// Largest Chebyshev degree allowed (otherwise `invalid_argument`).
  std::size_t max_degree = std::size_t{1} << 16;
  /// Largest number of Euler steps allowed (otherwise `invalid_argument`).
  std::size_t max_steps = std::size_t{1} << 24;
};

/// \brief What a diffusion call did.
struct diffusion_report {
  diffusion_method method = diffusion_method::chebyshev;  ///< method used
  double lambda_max = 0.0;                                ///< spectral bound used
  std::size_t matvecs = 0;                                ///< products with L
  std::size_t requested_steps = 0;   ///< Euler: Σ ⌈Δt/dt⌉ over the time segments
  std::size_t euler_steps = 0;       ///< Euler: steps actually taken
  bool split = false;                ///< Euler: dt was reduced to satisfy h·λ_max ≤ 2
  double step = 0.0;                 ///< Euler: largest step h used
  std::size_t chebyshev_degree = 0;  ///< Chebyshev: largest degree K used
  double error_bound = 0.0;          ///< Chebyshev: largest truncation bound ε_K (see file)
};

/// \brief Chebyshev coefficients of exp(−tλ) on [0, b] (see the file comment).
struct chebyshev_heat_series {
  std::vector<double> coefficients;  ///< c_0 … c_K
  double alpha = 0.0;                ///< α = t·b/2
  double error_bound = 0.0;          ///< ε_K = 2 Σ_{k>K} e^{−α} I_k(α)
};

namespace detail {

/// e^{−α} I_k(α) for k = 0 … N (α ≥ 0), N chosen so that the neglected values are < 1e-20.
[[nodiscard]] inline std::vector<double> scaled_bessel_i(double alpha) {
  if (alpha == 0.0) return {1.0};
  const auto n = static_cast<std::size_t>(40.0 + std::ceil(10.0 * std::sqrt(alpha)));
  std::vector<double> r(n + 1, 0.0);
  if (alpha <= 1.0) {
    // Power series I_k(α) = Σ_m (α/2)^{2m+k} / (m!(m+k)!), scaled by e^{−α}.
    const double h = alpha / 2.0, h2 = h * h, scale = std::exp(-alpha);
    double lead = 1.0;  // (α/2)^k / k!
    for (std::size_t k = 0; k <= n; ++k) {
      if (k > 0) lead *= h / static_cast<double>(k);
      double term = lead, sum = 0.0;
      for (std::size_t m = 1; m < 64 && term > 0.0; ++m) {
        sum += term;
        if (term < sum * 1e-18) break;
        term *= h2 / (static_cast<double>(m) * static_cast<double>(m + k));
      }
      r[k] = sum * scale;
    }
    return r;
  }
  // Miller's backward recurrence from M = N + 30 + √N with I_{M+1} = 0, I_M = 1, rescaled to
  // stay below 1e200, then normalised by I_0 + 2 Σ I_k = e^α.
  const std::size_t m = n + 30 + static_cast<std::size_t>(std::sqrt(static_cast<double>(n)));
  std::vector<double> all(m + 2, 0.0);
  all[m] = 1.0;
  for (std::size_t k = m; k >= 1; --k) {
    all[k - 1] = (2.0 * static_cast<double>(k) / alpha) * all[k] + all[k + 1];
    if (all[k - 1] > 1e200) {
      for (std::size_t j = k - 1; j <= m; ++j) all[j] *= 1e-200;
    }
  }
  double s = all[0];
  for (std::size_t k = 1; k <= m; ++k) s += 2.0 * all[k];
  for (std::size_t k = 0; k <= n; ++k) r[k] = all[k] / s;
  return r;
}

/// Validates a time.
inline void require_time(double t, std::size_t index) {
  if (!std::isfinite(t) || t < 0.0) {
    std::ostringstream os;
    os << "invalid argument: times[" << index << "] = " << t << ", expected a finite t >= 0";
    throw invalid_argument(os.str());
  }
}

/// The tolerance to use for T.
template <class T>
[[nodiscard]] double resolve_tolerance(const diffusion_options& o) {
  const double tol = o.tolerance ? *o.tolerance : (std::is_same_v<T, float> ? 1e-7 : 1e-12);
  require_argument(std::isfinite(tol) && tol >= 1e-15 && tol < 1.0,
                   "diffusion_options.tolerance must lie in [1e-15, 1)");
  return tol;
}

/// The spectral bound to use.
template <class Op>
[[nodiscard]] double resolve_lambda_max(const Op& op, const diffusion_options& o) {
  if (o.lambda_max) {
    require_argument(std::isfinite(*o.lambda_max) && *o.lambda_max >= 0.0,
                     "diffusion_options.lambda_max must be finite and >= 0");
    return *o.lambda_max;
  }
  return static_cast<double>(op.lambda_max_bound());
}

/// Number of Euler steps for an interval of length `t` (see the file comment).
struct euler_plan {
  std::size_t requested = 0;
  std::size_t steps = 0;
  double h = 0.0;
};

[[nodiscard]] inline euler_plan plan_euler(double t, double dt, double lambda_max,
                                           std::size_t max_steps) {
  euler_plan p;
  if (t == 0.0) return p;
  const double ratio = t / dt;
  require_argument(ratio < 1e18, "heat diffusion: t/dt is too large for explicit Euler");
  p.requested = std::max<std::size_t>(1, static_cast<std::size_t>(std::ceil(ratio * (1 - 1e-12))));
  p.steps = p.requested;
  if (lambda_max > 0.0 && (t / static_cast<double>(p.steps)) * lambda_max > 2.0) {
    const double need = t * lambda_max / 2.0;
    require_argument(need < 1e18, "heat diffusion: t·lambda_max is too large for explicit Euler");
    p.steps = std::max(p.steps, static_cast<std::size_t>(std::ceil(need)));
    while ((t / static_cast<double>(p.steps)) * lambda_max > 2.0) ++p.steps;
  }
  if (p.steps > max_steps) {
    std::ostringstream os;
    os << "invalid argument: explicit Euler needs " << p.steps << " steps (t = " << t
       << ", dt = " << dt << ", lambda_max = " << lambda_max
       << "), more than max_steps = " << max_steps << "; use diffusion_method::chebyshev";
    throw invalid_argument(os.str());
  }
  p.h = t / static_cast<double>(p.steps);
  return p;
}

/// x ← x − h·L x, `steps` times (y is scratch of n values).
template <class Op, class T>
void euler_steps(const Op& op, T* x, T* y, std::size_t n, double h, std::size_t steps) {
  const T hh = static_cast<T>(h);
  for (std::size_t s = 0; s < steps; ++s) {
    op.apply(std::span<const T>(x, n), std::span<T>(y, n));
    for (std::size_t i = 0; i < n; ++i) x[i] -= hh * y[i];
  }
}

}  // namespace detail

/// \brief Chebyshev coefficients c_0…c_K of exp(−tλ) on [0, lambda_max] with truncation bound
/// ≤ `tolerance` (see the file comment). Throws `invalid_argument` for a negative or non-finite t
/// or bound, a tolerance outside [1e-15, 1), or K > max_degree.
[[nodiscard]] inline chebyshev_heat_series chebyshev_heat_coefficients(
    double t, double lambda_max, double tolerance, std::size_t max_degree = std::size_t{1} << 16) {
  detail::require_time(t, 0);
  require_argument(std::isfinite(lambda_max) && lambda_max >= 0.0,
                   "chebyshev_heat_coefficients: lambda_max must be finite and >= 0");
  require_argument(std::isfinite(tolerance) && tolerance >= 1e-15 && tolerance < 1.0,
                   "chebyshev_heat_coefficients: tolerance must lie in [1e-15, 1)");
  chebyshev_heat_series s;
  s.alpha = t * lambda_max / 2.0;
  require_argument(std::isfinite(s.alpha), "chebyshev_heat_coefficients: t·lambda_max overflows");
  const std::vector<double> b = detail::scaled_bessel_i(s.alpha);
  // tail[k] = 2 Σ_{j>k} b_j, summed from the top (no cancellation).
  std::vector<double> tail(b.size(), 0.0);
  for (std::size_t k = b.size() - 1; k-- > 0;) tail[k] = tail[k + 1] + 2.0 * b[k + 1];
  std::size_t degree = 0;
  while (degree + 1 < b.size() && tail[degree] > tolerance) ++degree;
  if (degree > max_degree) {
    std::ostringstream os;
    os << "invalid argument: Chebyshev heat expansion needs degree " << degree
       << " (t*lambda_max = " << t * lambda_max << ", tolerance = " << tolerance
       << "), more than max_degree = " << max_degree;
    throw invalid_argument(os.str());
  }
  s.error_bound = tail[degree];
  s.coefficients.resize(degree + 1);
  s.coefficients[0] = b[0];
  for (std::size_t k = 1; k <= degree; ++k) s.coefficients[k] = (k % 2 ? -2.0 : 2.0) * b[k];
  return s;
}

/// \brief out(r, :) = exp(−times[r]·L)·x for every r (rows of `out` = times, columns = nodes),
/// sharing work between the times (see the file comment). Throws `dimension_mismatch`
/// (x or out of the wrong size), `non_finite_input` (NaN/Inf in x), `invalid_argument` (bad
/// time, dt, tolerance or bound; too many steps or too high a degree).
template <laplacian_operator Op>
diffusion_report heat_diffuse_multiscale(const Op& op, std::span<const typename Op::value_type> x,
                                         std::span<const double> times,
                                         matrix_ref<typename Op::value_type> out,
                                         const diffusion_options& options = {}) {
  using T = typename Op::value_type;
  const std::size_t n = op.size();
  require_dimension("x.size()", x.size(), n);
  require_dimension("out.rows() (must equal times.size())", static_cast<std::size_t>(out.rows()),
                    times.size());
  require_dimension("out.cols() (must equal x.size())", static_cast<std::size_t>(out.cols()), n);
  require_finite("x", x);
  for (std::size_t r = 0; r < times.size(); ++r) detail::require_time(times[r], r);
  const double b = detail::resolve_lambda_max(op, options);
  diffusion_report rep;
  rep.method = options.method;
  rep.lambda_max = b;
  if (times.empty() || n == 0) return rep;
  const std::vector<T> x0(x.begin(), x.end());  // `out` may alias `x`
  const auto ix = [](std::size_t i) { return static_cast<Eigen::Index>(i); };

  if (options.method == diffusion_method::euler) {
    require_argument(std::isfinite(options.dt) && options.dt > 0.0,
                     "diffusion_options.dt must be finite and > 0");
    std::vector<std::size_t> order(times.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t c) { return times[a] < times[c]; });
    // Plan every segment before doing any work, so a refusal costs nothing.
    std::vector<detail::euler_plan> plans(times.size());
    double prev = 0.0;
    for (std::size_t r = 0; r < order.size(); ++r) {
      plans[r] = detail::plan_euler(times[order[r]] - prev, options.dt, b, options.max_steps);
      prev = times[order[r]];
    }
    std::vector<T> cur = x0, y(n);
    for (std::size_t r = 0; r < order.size(); ++r) {
      const detail::euler_plan& p = plans[r];
      detail::euler_steps(op, cur.data(), y.data(), n, p.h, p.steps);
      rep.requested_steps += p.requested;
      rep.euler_steps += p.steps;
      rep.matvecs += p.steps;
      rep.split = rep.split || p.steps > p.requested;
      rep.step = std::max(rep.step, p.h);
      for (std::size_t i = 0; i < n; ++i) out(ix(order[r]), ix(i)) = cur[i];
    }
    return rep;
  }

  const double tol = detail::resolve_tolerance<T>(options);
  std::vector<chebyshev_heat_series> series;
  series.reserve(times.size());
  std::size_t kmax = 0;
  for (double t : times) {
    series.push_back(chebyshev_heat_coefficients(t, b, tol, options.max_degree));
    kmax = std::max(kmax, series.back().coefficients.size() - 1);
    rep.error_bound = std::max(rep.error_bound, series.back().error_bound);
  }
  rep.chebyshev_degree = kmax;
  const auto accumulate = [&](std::size_t k, const std::vector<T>& u) {
    for (std::size_t r = 0; r < times.size(); ++r) {
      if (k >= series[r].coefficients.size()) continue;
      const T c = static_cast<T>(series[r].coefficients[k]);
      for (std::size_t i = 0; i < n; ++i) out(ix(r), ix(i)) += c * u[i];
    }
  };
  out.setZero();
  std::vector<T> u0 = x0, u1(n), u2(n), y(n);
  accumulate(0, u0);
  if (kmax == 0) return rep;
  // b > 0 here: b = 0 gives α = 0 and degree 0 for every time.
  const T two_over_b = static_cast<T>(2.0 / b);
  op.apply(std::span<const T>(u0), std::span<T>(y));
  for (std::size_t i = 0; i < n; ++i) u1[i] = two_over_b * y[i] - u0[i];
  accumulate(1, u1);
  rep.matvecs = 1;
  for (std::size_t k = 2; k <= kmax; ++k) {
    op.apply(std::span<const T>(u1), std::span<T>(y));
    ++rep.matvecs;
    for (std::size_t i = 0; i < n; ++i) u2[i] = T(2) * (two_over_b * y[i] - u1[i]) - u0[i];
    accumulate(k, u2);
    std::swap(u0, u1);
    std::swap(u1, u2);
  }
  return rep;
}

/// \brief Multiscale diffusion returning a new (times.size() × n) matrix.
template <laplacian_operator Op>
[[nodiscard]] row_matrix<typename Op::value_type> heat_diffuse_multiscale(
    const Op& op, std::span<const typename Op::value_type> x, std::span<const double> times,
    const diffusion_options& options = {}, diffusion_report* report = nullptr) {
  row_matrix<typename Op::value_type> out(static_cast<Eigen::Index>(times.size()),
                                          static_cast<Eigen::Index>(op.size()));
  const diffusion_report r = heat_diffuse_multiscale(op, x, times, out, options);
  if (report) *report = r;
  return out;
}

/// \brief out = exp(−tL)·x by `options.method`; `out` may alias `x`. Throws as
/// `heat_diffuse_multiscale` (and `dimension_mismatch` for out).
template <laplacian_operator Op>
diffusion_report heat_diffuse(const Op& op, std::span<const typename Op::value_type> x, double t,
                              std::span<typename Op::value_type> out,
                              const diffusion_options& options = {}) {
  require_dimension("out.size()", out.size(), op.size());
  const double times[1] = {t};
  return heat_diffuse_multiscale(op, x, std::span<const double>(times, 1),
                                 matrix_view(out.data(), out.empty() ? 0 : 1, out.size()), options);
}

/// \brief exp(−tL)·x as a new vector.
template <laplacian_operator Op>
[[nodiscard]] std::vector<typename Op::value_type> heat_diffuse(
    const Op& op, std::span<const typename Op::value_type> x, double t,
    const diffusion_options& options = {}, diffusion_report* report = nullptr) {
  std::vector<typename Op::value_type> out(op.size());
  const diffusion_report r =
      heat_diffuse(op, x, t, std::span<typename Op::value_type>(out), options);
  if (report) *report = r;
  return out;
}

/// \brief Explicit Euler with requested step `dt` (split automatically for stability).
template <laplacian_operator Op>
diffusion_report heat_euler(const Op& op, std::span<const typename Op::value_type> x, double t,
                            double dt, std::span<typename Op::value_type> out) {
  diffusion_options o;
  o.method = diffusion_method::euler;
  o.dt = dt;
  return heat_diffuse(op, x, t, out, o);
}

/// \brief Chebyshev expansion to `tolerance` (see the file comment for the error bound).
template <laplacian_operator Op>
diffusion_report heat_chebyshev(const Op& op, std::span<const typename Op::value_type> x, double t,
                                std::span<typename Op::value_type> out, double tolerance) {
  diffusion_options o;
  o.method = diffusion_method::chebyshev;
  o.tolerance = tolerance;
  return heat_diffuse(op, x, t, out, o);
}

/// \brief The diffusion energy of x under `op` (xᵀLx; xᵀD L_rw x for the random-walk form),
/// non-increasing along exp(−tL)x. Throws `dimension_mismatch`.
template <laplacian_operator Op>
[[nodiscard]] typename Op::value_type diffusion_energy(const Op& op,
                                                       std::span<const typename Op::value_type> x) {
  return op.energy(x);
}

}  // namespace ruvector::attention
// ---- end ruvector/attention/pde/diffusion.hpp ----
// ---- begin ruvector/attention/pde/diffusion_attention.hpp ----
/// \file pde/diffusion_attention.hpp
/// \brief Diffusion attention (theory 6): the logits are smoothed by heat diffusion on the kNN
/// graph of the keys before the softmax, so keys that are close to each other share evidence.
///
///     s     = scale · K q                         (scale = 1/√d by default)
///     s(t)  = exp(−t L) s                         (L: Laplacian of the kNN key graph)
///     w(t)  = softmax(s(t)),   out(t) = Σ_j w_j(t) v_j
///     out   = (1/m) Σ_{r<m} out(t_r)              (several times: multiscale, averaged)
///
/// (heat-kernel smoothing of a graph signal: Kondor & Lafferty 2002; Hammond et al. 2011;
/// GRAND, Chamberlain et al. 2021, for diffusion as attention.) t = 0 reduces to scaled
/// dot-product attention.
///
/// The key graph (exact kNN, O(n²·d), plus the CSR Laplacian) is built once by `prepare_keys`
/// and reused for every query; each query then costs O(n·d) for the logits, K·O(nnz) for the
/// diffusion (K = Chebyshev degree or Euler steps) and O(n·dv) for the output.
///
/// Conventions: k ≥ n is clamped to n − 1 (complete kNN graph); n = 1 is one isolated node
/// (diffusion is the identity, the output is v_0). σ defaults to the median kNN distance (see
/// pde/laplacian.hpp, which also documents isolated nodes). Softmax is max-subtracted
/// (DESIGN §4). Times must be finite and ≥ 0; all numerical conventions of the diffusion are in
/// pde/diffusion.hpp. With `check_finite` (default) NaN/Inf in the query, keys or values throws
/// `non_finite_input` naming the first bad element (values are scanned only when a non-finite
/// output is seen).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>


namespace ruvector::attention {

/// \brief Configuration of `diffusion_attention`.
template <attention_scalar T>
struct diffusion_attention_config {
  /// Neighbours per key in the kNN graph (≥ 1; ≥ n is clamped to n − 1).
  std::size_t k = 16;
  /// Kernel width σ (> 0); default: median kNN distance.
  std::optional<T> sigma{};
  /// Laplacian normalisation.
  laplacian_type type = laplacian_type::symmetric_normalized;
  /// Symmetrisation of the kNN relation.
  knn_symmetrization symmetrize = knn_symmetrization::max;
  /// Diffusion times (non-empty, each finite and ≥ 0); several = multiscale, outputs averaged.
  std::vector<double> times{1.0};
  /// Diffusion method.
  diffusion_method method = diffusion_method::chebyshev;
  /// Chebyshev tolerance (see pde/diffusion.hpp); default 1e-7 (float) / 1e-12 (double).
  std::optional<double> tolerance{};
  /// Requested Euler step (split automatically for stability).
  double euler_dt = 0.1;
  /// Logit scale; default 1/√dim.
  std::optional<T> scale{};
  /// Throw `non_finite_input` on NaN/Inf in the inputs.
  bool check_finite = true;
};

/// \brief Keys prepared once for diffusion attention: a copy of the keys and their kNN
/// Laplacian. Immutable; safe to share across threads.
template <attention_scalar T>
class diffusion_key_graph {
 public:
  /// Number of keys.
  [[nodiscard]] std::size_t size() const noexcept { return static_cast<std::size_t>(keys_.rows()); }
  /// Key dimension.
  [[nodiscard]] std::size_t dim() const noexcept { return static_cast<std::size_t>(keys_.cols()); }
  /// The keys (rows).
  [[nodiscard]] const row_matrix<T>& keys() const noexcept { return keys_; }
  /// The kNN Laplacian of the keys.
  [[nodiscard]] const sparse_laplacian<T>& laplacian() const noexcept { return lap_; }

 private:
  template <attention_scalar>
  friend class diffusion_attention;
  diffusion_key_graph(row_matrix<T> keys, sparse_laplacian<T> lap)
      : keys_(std::move(keys)), lap_(std::move(lap)) {}
  row_matrix<T> keys_;
  sparse_laplacian<T> lap_;
};

/// \brief Output of `diffusion_attention::compute_with_weights`.
template <attention_scalar T>
struct diffusion_attention_output {
  std::vector<T> output;    ///< average over the times of the per-time outputs (length dv)
  row_matrix<T> outputs;    ///< per-time outputs (times × dv)
  row_matrix<T> weights;    ///< per-time softmax weights (times × n)
  row_matrix<T> scores;     ///< per-time diffused logits exp(−tL)s (times × n)
  diffusion_report report;  ///< what the diffusion did
};

/// \brief Single-query diffusion attention over a prepared key graph (see the file comment).
/// Immutable and safe to share across threads.
template <attention_scalar T = float>
class diffusion_attention {
 public:
  using value_type = T;

  /// \param dim query/key dimension; \param config see `diffusion_attention_config`.
  /// Throws `invalid_config` for dim = 0, k = 0, no times, a bad time, σ, scale, dt or
  /// tolerance.
  explicit diffusion_attention(std::size_t dim, diffusion_attention_config<T> config = {})
      : dim_(dim), config_(std::move(config)) {
    require_config(dim_ > 0, "diffusion_attention: dim must be > 0");
    require_at_most("dim", dim_, max_dimension);
    require_config(config_.k >= 1, "diffusion_attention: k must be >= 1");
    require_config(!config_.times.empty(), "diffusion_attention: times must not be empty");
    for (double t : config_.times)
      require_config(std::isfinite(t) && t >= 0.0,
                     "diffusion_attention: every time must be finite and >= 0");
    require_config(!config_.sigma || (std::isfinite(*config_.sigma) && *config_.sigma > T(0)),
                   "diffusion_attention: sigma must be finite and > 0");
    require_config(!config_.scale || std::isfinite(*config_.scale),
                   "diffusion_attention: scale must be finite");
    require_config(std::isfinite(config_.euler_dt) && config_.euler_dt > 0.0,
                   "diffusion_attention: euler_dt must be finite and > 0");
    if (config_.tolerance) {
      const double tol = *config_.tolerance;
      require_config(std::isfinite(tol) && tol >= 1e-15 && tol < 1.0,
                     "diffusion_attention: tolerance must lie in [1e-15, 1)");
    }
    scale_ = config_.scale ? *config_.scale : T(1) / std::sqrt(static_cast<T>(dim_));
    options_.method = config_.method;
    options_.tolerance = config_.tolerance;
    options_.dt = config_.euler_dt;
  }

  [[nodiscard]] std::size_t dim() const noexcept { return dim_; }
  [[nodiscard]] T scale() const noexcept { return scale_; }
  [[nodiscard]] const diffusion_attention_config<T>& config() const noexcept { return config_; }

  /// \brief Builds the kNN Laplacian of `keys` (rows) once. Throws `dimension_mismatch`
  /// (keys.cols() ≠ dim), `invalid_argument` (no keys), `non_finite_input`, `input_too_large`.
  [[nodiscard]] diffusion_key_graph<T> prepare_keys(const matrix_cref<T>& keys) const {
    require_non_empty("keys", static_cast<std::size_t>(keys.rows()));
    require_dimension("keys.cols()", static_cast<std::size_t>(keys.cols()), dim_);
    laplacian_options<T> lo;
    lo.type = config_.type;
    lo.sigma = config_.sigma;
    lo.symmetrize = config_.symmetrize;
    return diffusion_key_graph<T>(row_matrix<T>(keys),
                                  sparse_laplacian<T>::from_keys(keys, config_.k, lo));
  }

  /// \brief Writes the (time-averaged) output into `out` (size = values.cols()). Throws
  /// `dimension_mismatch` (query, values or out size), `non_finite_input`.
  void compute_into(std::span<const T> query, const diffusion_key_graph<T>& graph,
                    const matrix_cref<T>& values, std::span<T> out) const {
    const std::size_t m = config_.times.size(), dv = static_cast<std::size_t>(values.cols());
    require_dimension("out.size() (must equal values.cols())", out.size(), dv);
    row_matrix<T> scores = diffused_scores(query, graph, values, nullptr);
    std::fill(out.begin(), out.end(), T(0));
    const std::size_t n = graph.size();
    const auto& v = values;
    for (std::size_t r = 0; r < m; ++r) {
      T* w = scores.data() + r * n;
      kernels::softmax(w, n);
      kernels::weighted_row_sum(w, n, v.data(), dv, static_cast<std::size_t>(v.outerStride()), T(1),
                                out.data());
    }
    if (m > 1) {
      const T inv = T(1) / static_cast<T>(m);
      for (T& o : out) o *= inv;
    }
    check_output(query, values, out);
  }

  /// \brief The (time-averaged) output for one query over prepared keys.
  [[nodiscard]] std::vector<T> compute(std::span<const T> query,
                                       const diffusion_key_graph<T>& graph,
                                       const matrix_cref<T>& values) const {
    std::vector<T> out(static_cast<std::size_t>(values.cols()));
    compute_into(query, graph, values, out);
    return out;
  }

  /// \brief The vector API of the other mechanisms: builds the key graph on every call
  /// (O(n²·d)); prefer `prepare_keys` + `compute(query, graph, values)` for repeated queries.
  [[nodiscard]] std::vector<T> compute(std::span<const T> query, const matrix_cref<T>& keys,
                                       const matrix_cref<T>& values) const {
    return compute(query, prepare_keys(keys), values);
  }

  /// \brief Per-time outputs, weights and diffused logits, their average and the diffusion
  /// report.
  [[nodiscard]] diffusion_attention_output<T> compute_with_weights(
      std::span<const T> query, const diffusion_key_graph<T>& graph,
      const matrix_cref<T>& values) const {
    const std::size_t m = config_.times.size(), dv = static_cast<std::size_t>(values.cols());
    const std::size_t n = graph.size();
    diffusion_attention_output<T> r;
    r.scores = diffused_scores(query, graph, values, &r.report);
    r.weights = r.scores;
    r.outputs.resize(static_cast<Eigen::Index>(m), static_cast<Eigen::Index>(dv));
    r.output.assign(dv, T(0));
    for (std::size_t t = 0; t < m; ++t) {
      T* w = r.weights.data() + t * n;
      T* o = r.outputs.data() + t * dv;
      kernels::softmax(w, n);
      kernels::weighted_row_sum(w, n, values.data(), dv,
                                static_cast<std::size_t>(values.outerStride()), T(0), o);
      for (std::size_t c = 0; c < dv; ++c) r.output[c] += o[c];
    }
    const T inv = T(1) / static_cast<T>(m);
    for (T& o : r.output) o *= inv;
    check_output(query, values, r.output);
    return r;
  }

  /// \brief Outputs for a batch of queries (rows), in parallel: (queries.rows() × dv).
  [[nodiscard]] row_matrix<T> forward(const matrix_cref<T>& queries,
                                      const diffusion_key_graph<T>& graph,
                                      const matrix_cref<T>& values) const {
    require_dimension("queries.cols()", static_cast<std::size_t>(queries.cols()), dim_);
    const auto lq = static_cast<std::size_t>(queries.rows());
    const auto dv = static_cast<std::size_t>(values.cols());
    row_matrix<T> out(queries.rows(), values.cols());
    parallel_for(0, lq, [&](std::size_t i) {
      const T* row = queries.data() + static_cast<std::ptrdiff_t>(i) * queries.outerStride();
      compute_into(std::span<const T>(row, dim_), graph, values,
                   std::span<T>(out.data() + i * dv, dv));
    });
    return out;
  }

 private:
  // Validates, forms s = scale·K q and diffuses it to every time: (times × n).
  row_matrix<T> diffused_scores(std::span<const T> query, const diffusion_key_graph<T>& graph,
                                const matrix_cref<T>& values, diffusion_report* report) const {
    const std::size_t n = graph.size();
    require_dimension("query.size()", query.size(), dim_);
    require_dimension("graph.dim() (keys prepared for another dimension)", graph.dim(), dim_);
    require_dimension("values.rows() (must equal the number of keys)",
                      static_cast<std::size_t>(values.rows()), n);
    if (config_.check_finite) require_finite("query", query);
    std::vector<T> s(n);
    const auto& k = graph.keys();
    kernels::row_dots(k.data(), n, dim_, dim_, query.data(), scale_, s.data());
    if (!kernels::all_finite(s.data(), n)) require_finite("query", query);  // NaN without check
    const std::span<const double> times(config_.times);
    row_matrix<T> scores(static_cast<Eigen::Index>(times.size()), static_cast<Eigen::Index>(n));
    const diffusion_report rep =
        heat_diffuse_multiscale(graph.laplacian(), std::span<const T>(s), times, scores, options_);
    if (report) *report = rep;
    return scores;
  }

  // Names the first non-finite value if the output is not finite.
  void check_output(std::span<const T> query, const matrix_cref<T>& values,
                    std::span<const T> out) const {
    if (!config_.check_finite || kernels::all_finite(out.data(), out.size())) return;
    require_finite("query", query);
    require_finite("values", values.data(), static_cast<std::size_t>(values.rows()),
                   static_cast<std::size_t>(values.cols()), values.outerStride());
  }

  std::size_t dim_;
  diffusion_attention_config<T> config_;
  T scale_ = T(1);
  diffusion_options options_{};
};

}  // namespace ruvector::attention
// ---- end ruvector/attention/pde/diffusion_attention.hpp ----
// ---- end ruvector/attention/pde.hpp ----
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
// ---- begin ruvector/attention/topology.hpp ----
/// \file topology.hpp
/// \brief Entry header of the topology family (theory 3): window-coherence metrics over a kNN
/// graph of the keys, the Stable / Cautious / Freeze policy with hysteresis, and gated attention
/// whose mode persists across calls.

// ---- begin ruvector/attention/topology/gated_attention.hpp ----
/// \file topology/gated_attention.hpp
/// \brief Topology-gated attention: single-query attention whose form is chosen by a persistent
/// gate driven by the window coherence of the keys and the query's attention weights.
///
/// Per call, with scores s_j = scale·(q·k_j) (scale = 1/√d by default) and the mode m chosen by
/// the policy (topology/policy.hpp):
/// - **stable**: full scaled dot-product attention (Vaswani et al. 2017),
///       w_j = softmax(s)_j = exp(s_j − max s) / Σ_l exp(s_l − max s),   out = Σ_j w_j·v_j.
/// - **cautious**: top-k sparse attention: T = the k' = min(top_k, n) keys with the largest
///   scores (ties to the smaller index), w_j = exp(s_j − max_T s) / Σ_{l∈T} exp(s_l − max_T s)
///   for j ∈ T and 0 otherwise (the full softmax restricted to T and renormalised).
/// - **freeze**: the uniform average of the values of the f' = min(freeze_k, n) keys nearest to
///   the query in Euclidean distance ‖q − k_j‖ (ties to the smaller index): w_j = 1/f' on them.
///   Why: when the window is incoherent the scores themselves are suspect (their sharpness depends
///   on scale and magnitudes that the gate just judged unreliable). The fallback ignores score
///   magnitudes entirely, is a convex combination of a few values of keys that are *geometrically*
///   close to the query (a kNN-regression estimate: bounded by the values, no amplification,
///   low variance), and does not move abruptly under small perturbations of distant keys.
///
/// ## The gate (state persists across calls)
/// The policy state (mode, call counter, dwell, last metrics) lives in a block shared by the
/// object and its copies and guarded by a `std::mutex`; `compute*` are `const` because the
/// *configuration* is immutable, and so the type models `attention_mechanism`, but each call
/// advances the shared gate. Copies share the gate (a copied handle never forgets its state);
/// `fork()` makes an independent gate starting from a snapshot of the current state.
///
/// Call t (numbered from 0 since construction or `reset()`) is an update call iff
/// t mod update_period = 0. On an update call the full softmax weights a of *this* query are
/// computed, the coherence metrics (topology/coherence.hpp) of (keys, a) are computed and the
/// policy is stepped; the mode after the step is used for this call's output. Other calls use the
/// held mode and skip the metrics. Concurrent calls are safe: each call takes the next position
/// in one shared call sequence under the lock; an update call keeps the lock while it computes the
/// metrics, so the modes observed by concurrent calls are exactly those of some serial order of
/// the calls (which order is up to the scheduler). The output itself is computed outside the lock.
///
/// ## Cost per call (n keys, d = key width, dv = value width, k = kNN neighbours)
/// scores O(n·d); stable O(n·dv); cautious O(n + k' log k' + k'·dv); freeze O(n·d + f'·dv).
/// Update calls add O(n log n + n·k) for the metrics plus, with a raw key matrix, the kNN graph
/// O(n²·d) and edge cosines O(n·k·d) — rebuilt on every update because the key set may change
/// between calls. To pay that once per key set, build `coherence_keys` (coherence.hpp: a copy of
/// the keys with their kNN graph) and pass it instead of the key matrix; it owns its keys, so it
/// can never describe a different key set than the one the scores use.
///
/// ## Validation and errors
/// `dimension_mismatch` for a query/key/value shape mismatch, `invalid_argument` for empty keys or
/// values, `non_finite_input` (with `check_finite`, the default) for NaN/Inf in the query, keys or
/// values — all before the gate is touched, so a call that throws on its inputs leaves the gate
/// unchanged. `invalid_config` for a bad configuration (dim = 0, top_k = 0, freeze_k = 0,
/// non-positive/non-finite scale, bad coherence or policy config). n = 1 is valid (every mode
/// returns v_0; the kNN graph is empty, so the metrics are 0 and the coherence is 1); top_k ≥ n
/// or freeze_k ≥ n clamp to n (cautious then equals stable).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

// ---- begin ruvector/attention/topology/policy.hpp ----
/// \file topology/policy.hpp
/// \brief The gating policy of topology-gated attention: a three-mode state machine driven by the
/// window-coherence score (topology/coherence.hpp), with hysteresis, an update period and an
/// optional minimum dwell.
///
/// ## Modes (from least to most restrictive)
/// - `stable`   — coherent window: full softmax attention.
/// - `cautious` — doubtful window: top-k sparse attention.
/// - `freeze`   — incoherent window: a conservative fallback (see gated_attention.hpp).
///
/// ## State machine (`next_mode`), thresholds c2 < c1, hysteresis h ≥ 0, coherence c ∈ [0, 1]
/// - stable:   c < c2 → freeze; else c < c1 → cautious; else stable.
/// - cautious: c < c2 → freeze; else c > c1 + h → stable; else cautious.
/// - freeze:   c > c2 + h → cautious; else freeze.
/// Entering a more restrictive mode uses the bare thresholds (strict `<`); leaving one needs the
/// score to clear the threshold by more than h (strict `>`), so a score oscillating around a
/// threshold by less than h cannot make the mode flap. Recovery from freeze is one step per update
/// (freeze → cautious → stable), degradation may jump (stable → freeze).
///
/// ## Update period and dwell (`topology_policy`)
/// Calls are numbered 0, 1, 2, … since construction or `reset()`. Call t is an *update* iff
/// t mod N = 0 (N = `update_period` ≥ 1): only then is the coherence computed and the state
/// machine stepped; between updates the mode is held. So the mode can change only at calls
/// 0, N, 2N, …, and the first call is always an update.
/// With `min_dwell` = D ≥ 1, a *relaxing* transition (freeze → cautious, cautious → stable) is
/// suppressed until the mode has been held for at least D updates after the one that entered it;
/// tightening transitions are never delayed. `dwell()` counts the updates since the current mode
/// was entered (the entering update excluded; 0 after construction/reset, mode `stable`).
///
/// Validation (`policy_config::validate`, `invalid_config`): all values finite,
/// 0 ≤ c2 < c1 ≤ 1, h ≥ 0, N ≥ 1. (c1 + h ≥ 1 is legal and means cautious never returns to
/// stable.)

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <utility>


namespace ruvector::attention {

/// \brief The three gate modes, ordered from least to most restrictive.
enum class topology_mode : std::uint8_t { stable = 0, cautious = 1, freeze = 2 };

/// \brief "stable", "cautious" or "freeze".
[[nodiscard]] constexpr const char* to_string(topology_mode m) noexcept {
  switch (m) {
    case topology_mode::stable:
      return "stable";
    case topology_mode::cautious:
      return "cautious";
    case topology_mode::freeze:
      return "freeze";
  }
  return "unknown";
}

/// \brief Thresholds, hysteresis, update period and dwell of the policy (see the file comment).
struct policy_config {
  double cautious_threshold = 0.5;  ///< c1: enter cautious when coherence < c1
  double freeze_threshold = 0.3;    ///< c2 < c1: enter freeze when coherence < c2
  double hysteresis = 0.05;         ///< h ≥ 0: leave a mode only when coherence > threshold + h
  std::size_t update_period = 1;    ///< N ≥ 1: metrics recomputed on calls 0, N, 2N, …
  std::size_t min_dwell = 0;        ///< D: updates to hold a mode before relaxing it (0 = none)

  /// Throws `invalid_config` naming the offending field.
  void validate() const {
    require_config(std::isfinite(cautious_threshold) && std::isfinite(freeze_threshold) &&
                       std::isfinite(hysteresis),
                   "policy_config thresholds and hysteresis must be finite");
    require_config(freeze_threshold >= 0.0 && freeze_threshold < cautious_threshold &&
                       cautious_threshold <= 1.0,
                   "policy_config requires 0 <= freeze_threshold < cautious_threshold <= 1");
    require_config(hysteresis >= 0.0, "policy_config.hysteresis must be >= 0");
    require_config(update_period >= 1, "policy_config.update_period must be >= 1");
  }
};

/// \brief One step of the state machine (pure; no period or dwell). Throws `invalid_argument`
/// for a NaN coherence and `invalid_config` for an invalid `config`.
[[nodiscard]] inline topology_mode next_mode(topology_mode current, double coherence,
                                             const policy_config& config) {
  config.validate();
  require_argument(!std::isnan(coherence), "next_mode: coherence is NaN");
  const double c1 = config.cautious_threshold, c2 = config.freeze_threshold, h = config.hysteresis;
  switch (current) {
    case topology_mode::stable:
      if (coherence < c2) return topology_mode::freeze;
      if (coherence < c1) return topology_mode::cautious;
      return topology_mode::stable;
    case topology_mode::cautious:
      if (coherence < c2) return topology_mode::freeze;
      if (coherence > c1 + h) return topology_mode::stable;
      return topology_mode::cautious;
    case topology_mode::freeze:
      if (coherence > c2 + h) return topology_mode::cautious;
      return topology_mode::freeze;
  }
  throw invalid_argument("invalid argument: next_mode: unknown current mode");
}

/// \brief What one call to `topology_policy::step` did.
struct policy_step {
  topology_mode mode = topology_mode::stable;  ///< the mode for this call (after any update)
  bool updated = false;                        ///< this call was an update call
  std::size_t call_index = 0;                  ///< the call's number since construction/reset
};

/// \brief The stateful policy: counts calls, steps `next_mode` on update calls, applies the
/// minimum dwell. Not synchronised: guard it externally when shared (topology_gated_attention
/// does, with a mutex).
class topology_policy {
 public:
  /// Throws `invalid_config` for an invalid `config`.
  explicit topology_policy(const policy_config& config = {}) : config_(config) {
    config_.validate();
  }

  [[nodiscard]] const policy_config& config() const noexcept { return config_; }
  [[nodiscard]] topology_mode mode() const noexcept { return mode_; }
  /// Calls counted since construction or `reset()`.
  [[nodiscard]] std::size_t calls() const noexcept { return calls_; }
  /// Updates the current mode has been held for (the entering update excluded).
  [[nodiscard]] std::size_t dwell() const noexcept { return dwell_; }
  /// True iff the next call is an update call.
  [[nodiscard]] bool update_due() const noexcept { return calls_ % config_.update_period == 0; }
  /// The coherence of the last update (empty before the first).
  [[nodiscard]] std::optional<double> last_coherence() const noexcept { return last_; }

  /// Counts one call. On an update call, invokes `coherence_fn()` (→ double) and steps the state
  /// machine; otherwise does not invoke it and holds the mode. If `coherence_fn` throws, the
  /// state is unchanged (the call is not counted).
  template <class F>
  policy_step step(F&& coherence_fn) {
    policy_step r{mode_, update_due(), calls_};
    if (r.updated) {
      const double c = static_cast<double>(std::forward<F>(coherence_fn)());
      topology_mode proposed = next_mode(mode_, c, config_);  // throws on NaN: state unchanged
      const bool relaxing = static_cast<int>(proposed) < static_cast<int>(mode_);
      if (relaxing && dwell_ < config_.min_dwell) proposed = mode_;
      if (proposed != mode_) {
        mode_ = proposed;
        dwell_ = 0;
      } else {
        ++dwell_;
      }
      last_ = c;
      r.mode = mode_;
    }
    ++calls_;
    return r;
  }

  /// Counts one call with an already computed coherence (used only if the call is an update).
  policy_step observe(double coherence) {
    return step([coherence] { return coherence; });
  }

  /// Back to mode `stable`, call 0, dwell 0, no last coherence.
  void reset() noexcept {
    mode_ = topology_mode::stable;
    calls_ = 0;
    dwell_ = 0;
    last_.reset();
  }

 private:
  policy_config config_;
  topology_mode mode_ = topology_mode::stable;
  std::size_t calls_ = 0;
  std::size_t dwell_ = 0;
  std::optional<double> last_{};
};

}  // namespace ruvector::attention
// ---- end ruvector/attention/topology/policy.hpp ----

namespace ruvector::attention {

/// \brief Configuration of `topology_gated_attention` (the key width is a constructor argument).
template <attention_scalar T>
struct topology_gated_config {
  std::optional<T> scale{};      ///< logit scale; default 1/√dim (must be finite and > 0)
  std::size_t top_k = 8;         ///< cautious: keys kept (≥ 1; clamped to n)
  std::size_t freeze_k = 4;      ///< freeze: nearest keys averaged (≥ 1; clamped to n)
  coherence_config coherence{};  ///< metrics of the gate (k of the kNN graph, τ, weights)
  policy_config policy{};        ///< thresholds, hysteresis, update period, dwell
  bool check_finite = true;      ///< throw `non_finite_input` on NaN/Inf inputs
};

/// \brief Everything one gated call did.
template <attention_scalar T>
struct gated_output {
  std::vector<T> output;                       ///< attention output (length dv)
  std::vector<T> weights;                      ///< the weights used (length n, zeros off-support)
  topology_mode mode = topology_mode::stable;  ///< the mode used for this call
  bool updated = false;                        ///< metrics recomputed (an update call)
  std::optional<coherence_metrics> metrics;    ///< the metrics, on update calls only
  std::size_t call_index = 0;                  ///< position in the gate's call sequence
};

namespace detail {

// Indices of the `kk` best of n keys under `better(a, b)` (a strict total order), sorted by index.
template <class Better>
void select_best(std::size_t n, std::size_t kk, std::vector<std::uint32_t>& idx, Better better) {
  idx.resize(n);
  std::iota(idx.begin(), idx.end(), 0u);
  if (kk < n) {
    std::nth_element(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(kk), idx.end(), better);
    idx.resize(kk);
  }
  std::sort(idx.begin(), idx.end());
}

}  // namespace detail

/// \brief Topology-gated single-query attention (see the file comment). Thread-safe; copies
/// share the gate.
template <attention_scalar T = float>
class topology_gated_attention {
 public:
  using value_type = T;

  /// \param dim query/key width (> 0). Throws `invalid_config` for a bad configuration.
  explicit topology_gated_attention(std::size_t dim, const topology_gated_config<T>& config = {})
      : dim_(dim), config_(config) {
    require_config(dim > 0, "topology_gated_attention: dim must be > 0");
    require_at_most("dim", dim, max_dimension);
    require_config(config.top_k >= 1, "topology_gated_config.top_k must be >= 1");
    require_config(config.freeze_k >= 1, "topology_gated_config.freeze_k must be >= 1");
    if (config.scale) {
      require_config(std::isfinite(*config.scale) && *config.scale > T(0),
                     "topology_gated_config.scale must be finite and > 0");
    }
    config.coherence.validate();
    config.policy.validate();
    scale_ = config.scale ? *config.scale : T(1) / std::sqrt(static_cast<T>(dim));
    state_ = std::make_shared<gate_state>(config.policy);
  }

  [[nodiscard]] std::size_t dim() const noexcept { return dim_; }
  [[nodiscard]] T scale() const noexcept { return scale_; }
  [[nodiscard]] const topology_gated_config<T>& config() const noexcept { return config_; }

  /// The gate's current mode (the one the next non-update call would use).
  [[nodiscard]] topology_mode mode() const {
    std::lock_guard lock(state_->mutex);
    return state_->policy.mode();
  }
  /// Calls counted since construction or `reset()`.
  [[nodiscard]] std::size_t calls() const {
    std::lock_guard lock(state_->mutex);
    return state_->policy.calls();
  }
  /// The metrics of the last update call (empty before the first).
  [[nodiscard]] std::optional<coherence_metrics> last_metrics() const {
    std::lock_guard lock(state_->mutex);
    return state_->last_metrics;
  }
  /// Resets the shared gate: mode stable, call 0, no metrics (affects every copy).
  void reset() const {
    std::lock_guard lock(state_->mutex);
    state_->policy.reset();
    state_->last_metrics.reset();
  }
  /// An independent gate with the same configuration, starting from a snapshot of this state.
  [[nodiscard]] topology_gated_attention fork() const {
    topology_gated_attention copy(dim_, config_);
    std::lock_guard lock(state_->mutex);
    copy.state_->policy = state_->policy;
    copy.state_->last_metrics = state_->last_metrics;
    return copy;
  }

  /// \brief Gated attention output for one query over a raw key matrix (kNN rebuilt on update
  /// calls).
  [[nodiscard]] std::vector<T> compute(std::span<const T> query, const matrix_cref<T>& keys,
                                       const matrix_cref<T>& values) const {
    std::vector<T> out(static_cast<std::size_t>(values.cols()));
    run(query, keys, nullptr, values, out, {});
    return out;
  }

  /// \brief Gated attention output over prepared keys (kNN graph reused on update calls).
  [[nodiscard]] std::vector<T> compute(std::span<const T> query, const coherence_keys<T>& keys,
                                       const matrix_cref<T>& values) const {
    std::vector<T> out(static_cast<std::size_t>(values.cols()));
    run(query, keys.keys(), &keys, values, out, {});
    return out;
  }

  /// \brief Output, weights used, mode, and (on update calls) the metrics.
  [[nodiscard]] gated_output<T> compute_detailed(std::span<const T> query,
                                                 const matrix_cref<T>& keys,
                                                 const matrix_cref<T>& values) const {
    gated_output<T> r;
    r.output.resize(static_cast<std::size_t>(values.cols()));
    r.weights.resize(static_cast<std::size_t>(keys.rows()));
    run(query, keys, nullptr, values, r.output, r.weights, &r);
    return r;
  }

  /// \brief `compute_detailed` over prepared keys.
  [[nodiscard]] gated_output<T> compute_detailed(std::span<const T> query,
                                                 const coherence_keys<T>& keys,
                                                 const matrix_cref<T>& values) const {
    gated_output<T> r;
    r.output.resize(static_cast<std::size_t>(values.cols()));
    r.weights.resize(keys.size());
    run(query, keys.keys(), &keys, values, r.output, r.weights, &r);
    return r;
  }

 private:
  struct gate_state {
    explicit gate_state(const policy_config& p) : policy(p) {}
    std::mutex mutex;
    topology_policy policy;
    std::optional<coherence_metrics> last_metrics;
  };

  void validate(std::span<const T> query, const matrix_cref<T>& keys,
                const matrix_cref<T>& values) const {
    const auto n = static_cast<std::size_t>(keys.rows());
    require_dimension("query.size()", query.size(), dim_);
    require_non_empty("keys", n);
    require_at_most("keys.rows()", n, max_sequence_length);
    require_dimension("keys.cols()", static_cast<std::size_t>(keys.cols()), dim_);
    require_dimension("values.rows() (must equal keys.rows())",
                      static_cast<std::size_t>(values.rows()), n);
    require_non_empty("values.cols()", static_cast<std::size_t>(values.cols()));
  }

  // The whole call; `weights` (empty or length n) receives the weights used; `info` (optional)
  // receives mode/updated/metrics/call index.
  void run(std::span<const T> query, const matrix_cref<T>& keys, const coherence_keys<T>* prepared,
           const matrix_cref<T>& values, std::span<T> out, std::span<T> weights,
           gated_output<T>* info = nullptr) const {
    validate(query, keys, values);
    const auto n = static_cast<std::size_t>(keys.rows());
    const auto dv = static_cast<std::size_t>(values.cols());
    const auto ldk = static_cast<std::size_t>(keys.outerStride());
    const auto ldv = static_cast<std::size_t>(values.outerStride());

    // Scores s_j = scale·q·k_j. Finite scores ⇔ finite q and keys (0·Inf = NaN propagates); an
    // overflow of finite inputs is reported by the diagnosis.
    T* s = detail::thread_scratch<T, 0>(n);
    kernels::row_dots(keys.data(), n, dim_, ldk, query.data(), scale_, s);
    if (config_.check_finite) {
      if (!kernels::all_finite(s, n)) detail::diagnose_vector_inputs<T>(query, keys, values);
      // Values are scanned up front (every mode; O(n·dv)) so a bad input never advances the gate.
      bool values_ok = true;
      if (ldv == dv) {
        values_ok = kernels::all_finite(values.data(), n * dv);
      } else {
        for (std::size_t j = 0; j < n && values_ok; ++j)
          values_ok = kernels::all_finite(values.data() + j * ldv, dv);
      }
      if (!values_ok) require_finite("values", values.data(), n, dv, values.outerStride());
    }

    // Full softmax weights, computed at most once per call (update calls and stable mode).
    T* full = detail::thread_scratch<T, 1>(n);
    bool have_full = false;
    const auto full_weights = [&] {
      if (!have_full) {
        std::copy(s, s + n, full);
        kernels::softmax(full, n);
        have_full = true;
      }
    };

    policy_step step;
    std::optional<coherence_metrics> metrics;
    {
      std::lock_guard lock(state_->mutex);
      step = state_->policy.step([&] {
        full_weights();
        const std::span<const T> a(full, n);
        metrics = prepared ? compute_coherence(*prepared, a, config_.coherence)
                           : compute_coherence(coherence_keys<T>(keys, config_.coherence.k), a,
                                               config_.coherence);
        return metrics->coherence;
      });
      if (step.updated) state_->last_metrics = metrics;
    }

    // Output of the chosen mode.
    std::fill(out.begin(), out.end(), T(0));
    if (!weights.empty()) std::fill(weights.begin(), weights.end(), T(0));
    switch (step.mode) {
      case topology_mode::stable: {
        full_weights();
        kernels::weighted_row_sum(full, n, values.data(), dv, ldv, T(0), out.data());
        if (!weights.empty()) std::copy(full, full + n, weights.begin());
        break;
      }
      case topology_mode::cautious: {
        thread_local std::vector<std::uint32_t> idx;
        const std::size_t kk = std::min(config_.top_k, n);
        detail::select_best(n, kk, idx, [s](std::uint32_t a, std::uint32_t b) {
          return s[a] > s[b] || (s[a] == s[b] && a < b);
        });
        T m = -std::numeric_limits<T>::infinity();
        for (auto j : idx) m = std::max(m, s[j]);
        T* e = full;  // reuse as the k' exponentials (full weights are not needed any more)
        T l = T(0);
        for (std::size_t r = 0; r < kk; ++r) {
          e[r] = std::exp(s[idx[r]] - m);
          l += e[r];
        }
        for (std::size_t r = 0; r < kk; ++r) {
          const T w = e[r] / l;
          kernels::axpy(w, values.data() + idx[r] * ldv, out.data(), dv);
          if (!weights.empty()) weights[idx[r]] = w;
        }
        break;
      }
      case topology_mode::freeze: {
        thread_local std::vector<std::uint32_t> idx;
        const std::size_t kk = std::min(config_.freeze_k, n);
        T* dist = full;
        kernels::row_squared_distances(keys.data(), n, dim_, ldk, query.data(), dist);
        detail::select_best(n, kk, idx, [dist](std::uint32_t a, std::uint32_t b) {
          return dist[a] < dist[b] || (dist[a] == dist[b] && a < b);
        });
        const T w = T(1) / static_cast<T>(kk);
        for (auto j : idx) {
          kernels::axpy(w, values.data() + j * ldv, out.data(), dv);
          if (!weights.empty()) weights[j] = w;
        }
        break;
      }
    }
    if (config_.check_finite && !kernels::all_finite(out.data(), dv))
      detail::diagnose_vector_inputs<T>(query, keys, values);
    if (info) {
      info->mode = step.mode;
      info->updated = step.updated;
      info->metrics = metrics;
      info->call_index = step.call_index;
    }
  }

  std::size_t dim_;
  topology_gated_config<T> config_;
  T scale_{};
  std::shared_ptr<gate_state> state_;
};

}  // namespace ruvector::attention
// ---- end ruvector/attention/topology/gated_attention.hpp ----
// ---- end ruvector/attention/topology.hpp ----
// ---- begin ruvector/attention/transport.hpp ----
/// \file transport.hpp
/// \brief Entry header of the optimal-transport family (theory 1): log-domain Sinkhorn, Sinkhorn
/// attention (Sinkformers), sliced-Wasserstein attention over multi-vector sets, k-means and
/// centroid OT attention.

// ---- begin ruvector/attention/transport/centroid_ot.hpp ----
/// \file transport/centroid_ot.hpp
/// \brief Centroid optimal-transport attention: queries attend to a k-means summary of the keys,
/// with the weights given by semi-unbalanced entropic OT between the query batch and the
/// clusters (Chizat, Peyré, Schmitzer & Vialard 2018, "Scaling algorithms for unbalanced optimal
/// transport problems", Math. Comp. 87).
///
/// Key side (`centroid_key_set`, built once): keys k_1..k_n are clustered into M clusters with
/// centroids c_m, masses μ_m = |m|/n, member lists and value means v̄_m = (1/|m|) Σ_{j∈m} v_j.
///
/// Query side (per batch Q of Lq queries), with a_i = 1/Lq:
///
///     C_im = ‖q_i − c_m‖² / τ
///     P = argmin_{P ≥ 0, P1 = a}  ⟨P, C⟩ + ε·KL(P ‖ a μᵀ) + ρ·KL(Pᵀ1 ‖ μ)
///
/// Rows carry exactly 1/Lq each; the cluster marginal is only pulled toward μ with strength ρ:
/// ρ → ∞ is balanced OT (every cluster receives attention in proportion to its size across the
/// batch — a capacity constraint), ρ = 0 decouples the queries into mass-weighted softmaxes
/// w_im ∝ μ_m exp(−C_im/ε). With P_im = a_i μ_m exp((f_i + g_m − C_im)/ε) the log-domain scaling
/// iterations are
///
///     f_i ← −ε · LSE_m( log μ_m + (g_m − C_im)/ε )                      (rows exact)
///     g_m ← −(ρ/(ρ+ε)) · ε · LSE_i( log a_i + (f_i − C_im)/ε )         (prox of ρ·KL, damped)
///
/// (ρ = +inf gives factor 1, i.e. plain Sinkhorn; ρ = 0 gives g = 0.) At the fixed point
/// g_m = −ρ·log(ν_m/μ_m) with ν = Pᵀ1. Output: query i's weight on cluster m is w_im = Lq·P_im
/// (Σ_m w_im = 1), each key j of cluster m gets w_im/|m|, so
///
///     out_i = Σ_m w_im · v̄_m.
///
/// For a single query the problem has the closed form w_m ∝ μ_m·exp(−C_m/(ε + ρ)) (w = μ for
/// ρ = ∞), which `compute` uses directly; `compute_batch` always iterates.
///
/// Parameters (`centroid_ot_config`):
/// - ε (`epsilon` > 0): entropic regularisation in cost units; the effective softmax temperature
///   is ε·τ. Smaller ε → sharper weights and more iterations.
/// - ρ (`rho` ∈ [0, +inf]): strength of the cluster-capacity constraint (see above).
/// - τ (`temperature` > 0, default 2√d): cost scale. With τ = 2√d and ε = 1,
///   exp(−C_im) ∝ exp(q_i·c_m/√d − ‖c_m‖²/(2√d)), i.e. scaled dot-product logits with a norm
///   penalty on the centroid.
/// - `max_iterations` ≥ 1 and `tolerance` ≥ 0: iterations stop when the row-marginal L1 error of
///   the plan before the last f-update, Σ_i a_i |exp((f_i − f_i')/ε) − 1|, is ≤ tolerance. The
///   rate is linear with factor ≈ ρ/(ρ+ε) (slow only for ρ ≫ ε). The returned weights always come
///   after an f-update, so every row sums to 1 up to rounding.
///
/// Conventions: iterations in double; empty clusters (μ_m = 0, possible only with an explicit
/// clustering) are excluded — weight exactly 0, never NaN. Cost: O(Lq·M·d) for the costs,
/// O(Lq·M) per iteration, O(Lq·M·dv) for the output and O(Lq·n) only if per-key weights are
/// requested; clustering once is O(n·M·d·iterations).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <sstream>
#include <type_traits>
#include <vector>

// ---- begin ruvector/attention/transport/kmeans.hpp ----
/// \file transport/kmeans.hpp
/// \brief k-means clustering: k-means++ seeding (Arthur & Vassilvitskii 2007) followed by Lloyd
/// iterations (Lloyd 1982), minimising the inertia
///
///     J(c, a) = Σ_i ‖x_i − c_{a(i)}‖²   over centroids c_1..c_M and assignments a(i) ∈ {0..M−1}.
///
/// Seeding: the first centroid is a uniformly drawn point; each next one is point i with
/// probability D(x_i)² / Σ_j D(x_j)², D = distance to the nearest centroid chosen so far (if every
/// D is 0 — duplicates — a uniformly drawn point). All draws come from `ra::rng(seed)`, and every
/// reduction is done in a fixed order, so the result depends only on the inputs and the seed (not
/// on the thread count).
///
/// One Lloyd iteration: (1) assign each point to its nearest centroid (ties → lowest index);
/// stop if no assignment changed; (2) re-seed empty clusters; (3) move each centroid to the mean
/// of its points (sums in double); (4) record the inertia of (centroids, assignment); stop when it
/// decreased by at most `tolerance` × the previous value. J never increases from one iteration to
/// the next (steps 1–3 each minimise J over one block of variables).
///
/// Empty clusters: a cluster left without points in step (1) is re-seeded with the point farthest
/// from its current centroid among clusters that keep ≥ 2 points (ties → lowest index); that point
/// moves to the empty cluster, whose centroid becomes that point in step (3). Hence every returned
/// cluster has ≥ 1 point. With fewer distinct points than clusters, several centroids coincide.
///
/// Sizes: 1 ≤ M ≤ n is required (M > n throws `invalid_argument`; no silent clamp); M = n gives
/// one point per cluster. Distances are computed in T with the xsimd `row_squared_distances`
/// kernel; the assignment step runs in parallel over chunks of points.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <sstream>
#include <type_traits>
#include <vector>


namespace ruvector::attention {

/// \brief Parameters of `kmeans`.
struct kmeans_options {
  /// Number of clusters M, 1 ≤ M ≤ number of points.
  std::size_t clusters = 8;
  /// Cap on Lloyd iterations (≥ 1).
  std::size_t max_iterations = 100;
  /// Stop when the inertia decreases by at most tolerance × its previous value (≥ 0).
  double tolerance = 1e-6;
  /// Seed of the k-means++ draws.
  std::uint64_t seed = 0x5eed;
  /// Throw `non_finite_input` on NaN/Inf in the points.
  bool check_finite = true;
};

/// \brief The result of `kmeans`.
template <class T>
struct kmeans_result {
  row_matrix<T> centroids;                ///< M × d; row m = mean of cluster m's points
  std::vector<std::uint32_t> assignment;  ///< cluster of each point (length n)
  std::vector<std::size_t> sizes;         ///< points per cluster (length M, each ≥ 1)
  double inertia = 0.0;  ///< Σ_i ‖x_i − c_{a(i)}‖² of the returned clustering
  std::vector<double> inertia_history;  ///< inertia after each iteration's update step
  std::size_t iterations = 0;           ///< Lloyd iterations with an update step
  std::size_t reseeded = 0;             ///< empty clusters re-seeded (over all iterations)
  bool converged = false;               ///< stopped by stability/tolerance, not by the cap
};

namespace detail {

/// Σ_c (x[c] − y[c])² in double.
template <class T>
double kmeans_sq_dist(const T* x, const T* y, std::size_t d) noexcept {
  double s = 0.0;
  for (std::size_t c = 0; c < d; ++c) {
    const double t = static_cast<double>(x[c]) - static_cast<double>(y[c]);
    s += t * t;
  }
  return s;
}

}  // namespace detail

/// \brief k-means++ seeding and Lloyd iterations over the rows of `points`; see the file comment.
template <attention_scalar T>
[[nodiscard]] kmeans_result<T> kmeans(const std::type_identity_t<matrix_cref<T>>& points,
                                      const kmeans_options& options) {
  const auto n = static_cast<std::size_t>(points.rows());
  const auto d = static_cast<std::size_t>(points.cols());
  require_config(options.clusters >= 1, "kmeans: clusters must be >= 1");
  require_config(options.max_iterations >= 1, "kmeans: max_iterations must be >= 1");
  require_config(options.tolerance >= 0.0 && std::isfinite(options.tolerance),
                 "kmeans: tolerance must be finite and >= 0");
  require_non_empty("points", n);
  require_non_empty("points.cols()", d);
  require_at_most("points.rows()", n, std::min<std::size_t>(max_sequence_length, UINT32_MAX));
  require_at_most("points.cols()", d, max_dimension);
  if (options.clusters > n) {
    std::ostringstream os;
    os << "invalid argument: kmeans: clusters is " << options.clusters
       << ", expected <= the number of points (" << n << ")";
    throw invalid_argument(os.str());
  }
  const std::ptrdiff_t ld = static_cast<std::ptrdiff_t>(points.outerStride());
  if (options.check_finite) require_finite("points", points.data(), n, d, ld);
  const std::size_t M = options.clusters;
  const auto row = [&](std::size_t i) {
    return points.data() + static_cast<std::ptrdiff_t>(i) * ld;
  };
  const auto idx = [](std::size_t x) { return static_cast<Eigen::Index>(x); };
  // Chunks of ≥ 2^18 flops (and ≥ 256 points), so small problems stay on one thread.
  const std::size_t grain = std::max<std::size_t>(256, (std::size_t{1} << 18) / (M * d));
  const std::size_t grain_d = std::max<std::size_t>(256, (std::size_t{1} << 18) / d);

  kmeans_result<T> r;
  r.centroids.resize(idx(M), idx(d));
  // ---- k-means++ seeding --------------------------------------------------------------------
  rng gen(options.seed);
  std::vector<double> d2(n, std::numeric_limits<double>::infinity());
  std::size_t pick = static_cast<std::size_t>(gen.below(n));
  for (std::size_t k = 0;; ++k) {
    std::copy(row(pick), row(pick) + d, &r.centroids(idx(k), 0));
    if (k + 1 == M) break;
    const T* c = row(pick);
    parallel_ranges(n, grain_d, [&](std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e; ++i)
        d2[i] = std::min(d2[i], detail::kmeans_sq_dist(row(i), c, d));
    });
    double total = 0.0;
    for (double v : d2) total += v;
    if (total > 0.0) {
      const double target = gen.uniform01() * total;
      double cum = 0.0;
      pick = n;
      std::size_t last_positive = 0;
      for (std::size_t i = 0; i < n; ++i) {
        if (d2[i] <= 0.0) continue;
        last_positive = i;
        cum += d2[i];
        if (cum > target) {
          pick = i;
          break;
        }
      }
      if (pick == n) pick = last_positive;  // rounding left the target just above the sum
    } else {
      pick = static_cast<std::size_t>(gen.below(n));
    }
  }

  // ---- Lloyd iterations ---------------------------------------------------------------------
  r.assignment.assign(n, 0);
  r.sizes.assign(M, 0);
  std::vector<double> pd(n, 0.0);  // squared distance of each point to its assigned centroid
  std::vector<double> sums(M * d);
  double previous = std::numeric_limits<double>::infinity();
  for (std::size_t it = 0; it < options.max_iterations; ++it) {
    // (1) assignment
    std::size_t changed = 0;
    {
      std::vector<std::uint32_t> next(n);
      parallel_ranges(n, grain, [&](std::size_t b, std::size_t e) {
        T* dist = detail::thread_scratch<T, 6>(M);
        for (std::size_t i = b; i < e; ++i) {
          kernels::row_squared_distances(r.centroids.data(), M, d, d, row(i), dist);
          std::size_t best = 0;
          for (std::size_t m = 1; m < M; ++m)
            if (dist[m] < dist[best]) best = m;
          next[i] = static_cast<std::uint32_t>(best);
        }
      });
      for (std::size_t i = 0; i < n; ++i) changed += (next[i] != r.assignment[i]) ? 1 : 0;
      r.assignment.swap(next);
    }
    if (it > 0 && changed == 0) {
      r.converged = true;
      break;
    }
    std::fill(r.sizes.begin(), r.sizes.end(), std::size_t{0});
    for (std::uint32_t a : r.assignment) ++r.sizes[a];
    // (2) re-seed empty clusters with the farthest point of a cluster that keeps >= 2 points
    bool any_empty = false;
    for (std::size_t m = 0; m < M; ++m) any_empty = any_empty || r.sizes[m] == 0;
    if (any_empty) {
      parallel_ranges(n, grain_d, [&](std::size_t b, std::size_t e) {
        for (std::size_t i = b; i < e; ++i)
          pd[i] = detail::kmeans_sq_dist(row(i), &r.centroids(idx(r.assignment[i]), 0), d);
      });
      for (std::size_t m = 0; m < M; ++m) {
        if (r.sizes[m] != 0) continue;
        std::size_t far = n;
        for (std::size_t i = 0; i < n; ++i) {
          if (r.sizes[r.assignment[i]] < 2) continue;
          if (far == n || pd[i] > pd[far]) far = i;
        }
        // far < n: an empty cluster and M <= n imply some cluster holds >= 2 points.
        --r.sizes[r.assignment[far]];
        r.assignment[far] = static_cast<std::uint32_t>(m);
        r.sizes[m] = 1;
        pd[far] = 0.0;
        ++r.reseeded;
      }
    }
    // (3) update: centroid = mean of its points (double sums, fixed order)
    std::fill(sums.begin(), sums.end(), 0.0);
    for (std::size_t i = 0; i < n; ++i) {
      double* s = &sums[r.assignment[i] * d];
      const T* x = row(i);
      for (std::size_t c = 0; c < d; ++c) s[c] += static_cast<double>(x[c]);
    }
    for (std::size_t m = 0; m < M; ++m) {
      const double inv = 1.0 / static_cast<double>(r.sizes[m]);
      for (std::size_t c = 0; c < d; ++c)
        r.centroids(idx(m), idx(c)) = static_cast<T>(sums[m * d + c] * inv);
    }
    // (4) inertia of (centroids, assignment)
    parallel_ranges(n, grain_d, [&](std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e; ++i)
        pd[i] = detail::kmeans_sq_dist(row(i), &r.centroids(idx(r.assignment[i]), 0), d);
    });
    double inertia = 0.0;
    for (double v : pd) inertia += v;
    r.inertia = inertia;
    r.inertia_history.push_back(inertia);
    r.iterations = it + 1;
    if (it > 0 && previous - inertia <= options.tolerance * previous) {
      r.converged = true;
      break;
    }
    previous = inertia;
  }
  return r;
}

}  // namespace ruvector::attention
// ---- end ruvector/attention/transport/kmeans.hpp ----
// ---- begin ruvector/attention/transport/sinkhorn.hpp ----
/// \file transport/sinkhorn.hpp
/// \brief Entropic optimal transport by Sinkhorn's algorithm (Cuturi 2013, "Sinkhorn Distances"),
/// in the log-domain stabilised form of Peyré & Cuturi, "Computational Optimal Transport" §4.4.
///
/// Problem (cost C ∈ R^{n×m}, marginals a ∈ R^n_{>0}, b ∈ R^m_{>0}, Σa = Σb, ε > 0):
///
///     OT_ε = min_{P ≥ 0, P1 = a, Pᵀ1 = b}  ⟨P, C⟩ + ε·KL(P ‖ a bᵀ),
///     KL(P ‖ Q) = Σ_ij P_ij log(P_ij / Q_ij) − P_ij + Q_ij.
///
/// (On the feasible set this differs from ⟨P, C⟩ − ε·H(P) only by a constant, so the plan is the
/// usual Sinkhorn plan.) The solution has the form P_ij = a_i b_j exp((f_i + g_j − C_ij)/ε) with
/// dual potentials f, g, and the log-domain Sinkhorn updates are
///
///     f_i ← −ε · LSE_j( log b_j + (g_j − C_ij)/ε ),     g_j ← −ε · LSE_i( log a_i + (f_i − C_ij)/ε
///     ),
///
/// with LSE the max-subtracted log-sum-exp, so nothing overflows however small ε is (costs of
/// 10³·ε and more are fine). At the optimum OT_ε = ⟨a, f⟩ + ⟨b, g⟩.
///
/// Small ε: Sinkhorn's convergence degrades (sublinear at first) when ε is small against the gaps
/// between costs, because the plan is then close to a sparse (permutation-like) matrix. By default
/// the iterations are preceded by ε-scaling (Schmitzer 2019, "Stabilized sparse scaling
/// algorithms"; Feydy et al. 2019, GeomLoss): one warm-started sweep at each of
/// e_k = (max C − min C)·θ^k for e_k > ε (θ = `epsilon_scaling`, default 0.8), so the potentials
/// reach the final ε already nearly optimal. This only changes the starting point: the fixed point
/// (the plan) is the same.
///
/// Numerical conventions:
/// - All iterations run in double precision whatever T is (C/ε is stored once in double, together
///   with its transpose so both updates stream contiguous rows); the plan is rounded to T at the
///   end.
/// - `epsilon` is absolute, in the units of C; for a regularisation relative to the cost scale pass
///   ε·max|C_ij|.
/// - The marginal error is ‖P1 − a‖₁ + ‖Pᵀ1 − b‖₁. After each g-update the column marginals are
///   exact and the row error is Σ_i a_i |exp((f_i − f_i')/ε) − 1| (f' the next f-update), so the
///   stopping test costs nothing extra. `converged` means that error ≤ `tolerance`; the reported
///   `marginal_error` is recomputed from the returned plan.
/// - The total masses must agree to within 1e-6 relative (or 4·(n + m) ulps of T, whichever is
///   larger); b is then rescaled to Σb = Σa exactly, so rounding in the inputs does not put a floor
///   under the attainable marginal error.
/// - Inputs are validated: non-empty C; a.size() = rows, b.size() = cols (`dimension_mismatch`);
///   a, b finite and > 0, masses equal (`invalid_argument`, or `non_finite_input` for NaN/Inf);
///   C finite (`non_finite_input`, when `check_finite`); ε > 0 finite, max_iterations ≥ 1,
///   tolerance ≥ 0 (`invalid_config`).
///
/// Cost: O(n·m) per iteration, parallel over rows/columns with `parallel_for` when n·m ≥ 2¹⁸.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>


namespace ruvector::attention {

/// \brief Parameters of `sinkhorn`.
template <class T>
struct sinkhorn_options {
  /// Entropic regularisation ε > 0, absolute (same units as the cost).
  T epsilon = T(0.05);
  /// Upper bound on the number of (f, g) sweeps at the target ε (ε-scaling sweeps come on top);
  /// ≥ 1.
  std::size_t max_iterations = 1000;
  /// Stop once the marginal L1 error ‖P1 − a‖₁ + ‖Pᵀ1 − b‖₁ ≤ tolerance (≥ 0; 0 = run to the cap).
  T tolerance = T(1e-6);
  /// ε-scaling factor θ ∈ [0, 1): before the iterations at ε, one warm-started sweep is run at
  /// each e = (max C − min C)·θ^k > ε (Schmitzer 2019; Feydy et al. 2019). 0 disables it.
  T epsilon_scaling = T(0.8);
  /// Throw `non_finite_input` on NaN/Inf in the cost matrix.
  bool check_finite = true;
};

/// \brief The result of `sinkhorn`.
template <class T>
struct sinkhorn_result {
  row_matrix<T> plan;          ///< P, n × m
  T cost = T(0);               ///< ⟨P, C⟩ (accumulated in double)
  T objective = T(0);          ///< ⟨P, C⟩ + ε·KL(P ‖ a bᵀ)
  std::vector<T> f;            ///< row potentials (length n)
  std::vector<T> g;            ///< column potentials (length m)
  std::size_t iterations = 0;  ///< (f, g) sweeps performed (including ε-scaling sweeps)
  T marginal_error = T(0);     ///< ‖P1 − a‖₁ + ‖Pᵀ1 − b‖₁ of the returned plan
  bool converged = false;      ///< the error reached `tolerance` before `max_iterations`
};

namespace detail {

/// LSE_j(base[j] − row[j]) for j < n, max-subtracted; −inf when every term is −inf.
/// `scratch` holds n doubles.
inline double transport_lse_minus(const double* base, const double* row, std::size_t n,
                                  double* scratch) noexcept {
  for (std::size_t j = 0; j < n; ++j) scratch[j] = base[j] - row[j];
  const double mx = kernels::max(scratch, n);
  if (!(mx > -std::numeric_limits<double>::infinity())) return mx;
  return mx + std::log(kernels::exp_shift_sum(scratch, n, mx));
}

/// out[i] = −LSE_j(base[j] − ce[i·m + j]) for i < n (one Sinkhorn half-step on scaled potentials).
inline void transport_half_step(const double* ce, std::size_t n, std::size_t m, const double* base,
                                double* out) {
  // ≥ 2^17 log-sum-exp terms per chunk (~100 µs): smaller problems stay on the calling thread.
  const std::size_t grain =
      std::max<std::size_t>(1, (std::size_t{1} << 17) / std::max<std::size_t>(m, 1));
  parallel_ranges(n, grain, [&](std::size_t b, std::size_t e) {
    double* scratch = thread_scratch<double, 5>(m);
    for (std::size_t i = b; i < e; ++i) out[i] = -transport_lse_minus(base, ce + i * m, m, scratch);
  });
}

/// Validates a marginal vector: length, finite, > 0; returns its sum.
template <class T>
double validate_marginal(std::string_view what, std::span<const T> x, std::size_t expected) {
  require_dimension(std::string(what).append(".size()"), x.size(), expected);
  double s = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i])) detail::throw_non_finite(what, i, x[i]);
    if (!(x[i] > T(0))) {
      std::ostringstream os;
      os << "invalid argument: " << what << "[" << i << "] = " << x[i] << ", expected > 0";
      throw invalid_argument(os.str());
    }
    s += static_cast<double>(x[i]);
  }
  return s;
}

/// Throws `invalid_argument` unless the masses agree to the documented tolerance.
template <class T>
void require_equal_mass(double sa, double sb, std::size_t n, std::size_t m) {
  const double tol =
      std::max(1e-6, 4.0 * static_cast<double>(n + m) * std::numeric_limits<T>::epsilon());
  if (std::abs(sa - sb) > tol * std::max(sa, sb)) {
    std::ostringstream os;
    os.precision(17);
    os << "invalid argument: marginals have different total mass: sum(a) = " << sa
       << ", sum(b) = " << sb << ", expected equal within relative " << tol;
    throw invalid_argument(os.str());
  }
}

}  // namespace detail

/// \brief Entropic OT plan between marginals `a` (rows) and `b` (columns) for the cost `cost`;
/// see the file comment for the formulation, stopping rule and validation.
template <attention_scalar T>
[[nodiscard]] sinkhorn_result<T> sinkhorn(
    const std::type_identity_t<matrix_cref<T>>& cost, std::type_identity_t<std::span<const T>> a,
    std::type_identity_t<std::span<const T>> b,
    const std::type_identity_t<sinkhorn_options<T>>& options = {}) {
  const auto n = static_cast<std::size_t>(cost.rows());
  const auto m = static_cast<std::size_t>(cost.cols());
  require_config(std::isfinite(options.epsilon) && options.epsilon > T(0),
                 "sinkhorn: epsilon must be finite and > 0");
  require_config(options.max_iterations >= 1, "sinkhorn: max_iterations must be >= 1");
  require_config(options.tolerance >= T(0) && !std::isnan(options.tolerance),
                 "sinkhorn: tolerance must be >= 0");
  require_config(options.epsilon_scaling >= T(0) && options.epsilon_scaling < T(1),
                 "sinkhorn: epsilon_scaling must be in [0, 1)");
  require_non_empty("cost.rows()", n);
  require_non_empty("cost.cols()", m);
  require_at_most("cost.rows()", n, max_sequence_length);
  require_at_most("cost.cols()", m, max_sequence_length);
  const double sa = detail::validate_marginal<T>("a", a, n);
  const double sb = detail::validate_marginal<T>("b", b, m);
  detail::require_equal_mass<T>(sa, sb, n, m);
  if (options.check_finite)
    require_finite("cost", cost.data(), n, m, static_cast<std::ptrdiff_t>(cost.outerStride()));

  const double eps = static_cast<double>(options.epsilon);
  // C/e in double, row-major (n × m) and transposed (m × n), for the current e of the schedule.
  std::vector<double> ce(n * m), cet(m * n);
  double cmin = std::numeric_limits<double>::infinity(), cmax = -cmin;
  const auto build = [&](double e) {
    for (std::size_t i = 0; i < n; ++i) {
      const T* row = cost.data() + static_cast<std::ptrdiff_t>(i) * cost.outerStride();
      for (std::size_t j = 0; j < m; ++j) {
        const double c = static_cast<double>(row[j]);
        cmin = std::min(cmin, c);
        cmax = std::max(cmax, c);
        ce[i * m + j] = c / e;
        cet[j * n + i] = c / e;
      }
    }
  };
  build(eps);
  std::vector<double> ad(n), loga(n), bd(m), logb(m);
  for (std::size_t i = 0; i < n; ++i) {
    ad[i] = static_cast<double>(a[i]);
    loga[i] = std::log(ad[i]);
  }
  for (std::size_t j = 0; j < m; ++j) {
    bd[j] = static_cast<double>(b[j]) * (sa / sb);
    logb[j] = std::log(bd[j]);
  }

  // Scaled potentials φ = f/ε, ψ = g/ε; base vectors log a + φ and log b + ψ.
  std::vector<double> phi(n), phi_next(n), psi(m, 0.0), base_a(n), base_b(m);
  const auto f_update = [&](std::vector<double>& out) {
    for (std::size_t j = 0; j < m; ++j) base_b[j] = logb[j] + psi[j];
    detail::transport_half_step(ce.data(), n, m, base_b.data(), out.data());
  };
  const auto g_update = [&] {
    for (std::size_t i = 0; i < n; ++i) base_a[i] = loga[i] + phi[i];
    detail::transport_half_step(cet.data(), m, n, base_a.data(), psi.data());
  };

  sinkhorn_result<T> r;
  const double tol = static_cast<double>(options.tolerance);
  // ε-scaling: one sweep at each e_k = max(C) − min(C), ×θ, ... while e_k > ε, warm-starting the
  // potentials (f = e·φ is kept when e changes).
  const double theta = static_cast<double>(options.epsilon_scaling);
  if (theta > 0.0 && cmax - cmin > eps) {
    std::vector<double> schedule;
    for (double e = cmax - cmin; e > eps; e *= theta) schedule.push_back(e);
    double current = eps;
    std::fill(phi.begin(), phi.end(), 0.0);
    for (double e : schedule) {
      build(e);
      for (auto& x : phi) x *= current / e;
      for (auto& x : psi) x *= current / e;
      current = e;
      f_update(phi);
      g_update();
      ++r.iterations;
    }
    build(eps);
    for (auto& x : psi) x *= current / eps;
  }
  f_update(phi);
  for (std::size_t it = 0; it < options.max_iterations; ++it) {
    g_update();  // columns now exact
    ++r.iterations;
    f_update(phi_next);
    // Row marginal error of the plan (φ, ψ): row i sums to a_i·exp(φ_i − φ'_i).
    double err = 0.0;
    for (std::size_t i = 0; i < n; ++i) err += ad[i] * std::abs(std::expm1(phi[i] - phi_next[i]));
    if (err <= tol) {
      r.converged = true;
      break;
    }
    phi.swap(phi_next);
  }

  // Plan, cost, KL and marginal error in double.
  r.plan.resize(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(m));
  std::vector<double> colsum(m, 0.0);
  double total_cost = 0.0, kl = 0.0, mass = 0.0, row_err = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    double rs = 0.0;
    for (std::size_t j = 0; j < m; ++j) {
      const double lr = phi[i] + psi[j] - ce[i * m + j];  // log(P_ij / (a_i b_j))
      const double p = ad[i] * bd[j] * std::exp(lr);
      r.plan(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) = static_cast<T>(p);
      rs += p;
      colsum[j] += p;
      total_cost += p * ce[i * m + j] * eps;
      if (p > 0.0) kl += p * lr;
    }
    mass += rs;
    row_err += std::abs(rs - ad[i]);
  }
  double col_err = 0.0;
  for (std::size_t j = 0; j < m; ++j) col_err += std::abs(colsum[j] - bd[j]);
  kl += sa * sa - mass;  // Σ a_i b_j = sa·sb' = sa²
  r.cost = static_cast<T>(total_cost);
  r.objective = static_cast<T>(total_cost + eps * kl);
  r.marginal_error = static_cast<T>(row_err + col_err);
  r.f.resize(n);
  r.g.resize(m);
  for (std::size_t i = 0; i < n; ++i) r.f[i] = static_cast<T>(eps * phi[i]);
  for (std::size_t j = 0; j < m; ++j) r.g[j] = static_cast<T>(eps * psi[j]);
  return r;
}

/// \brief `sinkhorn` with the marginals given as `std::vector`s.
template <attention_scalar T>
[[nodiscard]] sinkhorn_result<T> sinkhorn(
    const std::type_identity_t<matrix_cref<T>>& cost, const std::vector<T>& a,
    const std::vector<T>& b, const std::type_identity_t<sinkhorn_options<T>>& options = {}) {
  return sinkhorn<T>(cost, std::span<const T>(a), std::span<const T>(b), options);
}

}  // namespace ruvector::attention
// ---- end ruvector/attention/transport/sinkhorn.hpp ----

namespace ruvector::attention {

/// \brief A clustering of a key set with per-cluster masses, member lists and value means, built
/// once and shared by any number of `centroid_ot_attention` calls (immutable, thread-safe).
template <attention_scalar T = float>
class centroid_key_set {
 public:
  using value_type = T;

  /// \brief Clusters `keys` (n × d) with `kmeans(keys, options)` and summarises `values` (n × dv).
  centroid_key_set(const matrix_cref<T>& keys, const matrix_cref<T>& values,
                   const kmeans_options& options)
      : centroid_key_set(checked_kmeans(keys, values, options), values) {}

  /// \brief From a finished k-means run over the keys.
  centroid_key_set(const kmeans_result<T>& clustering, const matrix_cref<T>& values)
      : centroid_key_set(clustering.centroids,
                         std::span<const std::uint32_t>(clustering.assignment), values) {
    iterations_ = clustering.iterations;
    inertia_ = clustering.inertia;
  }

  /// \brief From an explicit clustering: `centroids` (M × d) and the cluster of each key
  /// (`assignment[j] < M`, length n = values.rows()). Clusters may be empty (mass 0).
  centroid_key_set(const matrix_cref<T>& centroids, std::span<const std::uint32_t> assignment,
                   const matrix_cref<T>& values) {
    const auto M = static_cast<std::size_t>(centroids.rows());
    const auto d = static_cast<std::size_t>(centroids.cols());
    const auto n = static_cast<std::size_t>(values.rows());
    const auto dv = static_cast<std::size_t>(values.cols());
    require_non_empty("centroids", M);
    require_non_empty("centroids.cols()", d);
    require_non_empty("values", n);
    require_at_most("values.rows()", n, std::min<std::size_t>(max_sequence_length, UINT32_MAX));
    require_dimension("assignment.size() (must equal values.rows())", assignment.size(), n);
    require_finite("centroids", centroids.data(), M, d,
                   static_cast<std::ptrdiff_t>(centroids.outerStride()));
    require_finite("values", values.data(), n, dv,
                   static_cast<std::ptrdiff_t>(values.outerStride()));
    for (std::size_t j = 0; j < n; ++j) {
      if (assignment[j] >= M) {
        std::ostringstream os;
        os << "invalid argument: assignment[" << j << "] = " << assignment[j] << ", expected < "
           << M << " (the number of centroids)";
        throw invalid_argument(os.str());
      }
    }
    centroids_ = centroids;
    assignment_.assign(assignment.begin(), assignment.end());
    offsets_.assign(M + 1, 0);
    for (std::uint32_t a : assignment_) ++offsets_[a + 1];
    for (std::size_t m = 0; m < M; ++m) offsets_[m + 1] += offsets_[m];
    members_.resize(n);
    std::vector<std::size_t> fill(offsets_.begin(), offsets_.end() - 1);
    for (std::size_t j = 0; j < n; ++j)
      members_[fill[assignment_[j]]++] = static_cast<std::uint32_t>(j);
    masses_.resize(M);
    std::vector<double> sums(M * dv, 0.0);
    for (std::size_t j = 0; j < n; ++j) {
      const T* v = values.data() + static_cast<std::ptrdiff_t>(j) * values.outerStride();
      double* s = &sums[assignment_[j] * dv];
      for (std::size_t c = 0; c < dv; ++c) s[c] += static_cast<double>(v[c]);
    }
    value_means_ = row_matrix<T>::Zero(static_cast<Eigen::Index>(M), static_cast<Eigen::Index>(dv));
    for (std::size_t m = 0; m < M; ++m) {
      const std::size_t size = offsets_[m + 1] - offsets_[m];
      masses_[m] = static_cast<T>(static_cast<double>(size) / static_cast<double>(n));
      if (size == 0) continue;
      for (std::size_t c = 0; c < dv; ++c)
        value_means_(static_cast<Eigen::Index>(m), static_cast<Eigen::Index>(c)) =
            static_cast<T>(sums[m * dv + c] / static_cast<double>(size));
    }
  }

  /// Number of keys n.
  [[nodiscard]] std::size_t num_keys() const noexcept { return assignment_.size(); }
  /// Number of clusters M.
  [[nodiscard]] std::size_t num_clusters() const noexcept { return masses_.size(); }
  /// Key/centroid width d.
  [[nodiscard]] std::size_t dim() const noexcept {
    return static_cast<std::size_t>(centroids_.cols());
  }
  /// Value width dv.
  [[nodiscard]] std::size_t value_dim() const noexcept {
    return static_cast<std::size_t>(value_means_.cols());
  }
  /// Centroids (M × d).
  [[nodiscard]] const row_matrix<T>& centroids() const noexcept { return centroids_; }
  /// Per-cluster value means v̄_m (M × dv; zero rows for empty clusters).
  [[nodiscard]] const row_matrix<T>& value_means() const noexcept { return value_means_; }
  /// Masses μ_m = |m|/n (sum 1).
  [[nodiscard]] std::span<const T> masses() const noexcept { return masses_; }
  /// Cluster of each key.
  [[nodiscard]] std::span<const std::uint32_t> assignment() const noexcept { return assignment_; }
  /// |m|.
  [[nodiscard]] std::size_t cluster_size(std::size_t m) const noexcept {
    return offsets_[m + 1] - offsets_[m];
  }
  /// Key indices of cluster m, ascending.
  [[nodiscard]] std::span<const std::uint32_t> members(std::size_t m) const noexcept {
    return std::span<const std::uint32_t>(members_.data() + offsets_[m], cluster_size(m));
  }
  /// Lloyd iterations and inertia of the k-means run (0 for an explicit clustering).
  [[nodiscard]] std::size_t clustering_iterations() const noexcept { return iterations_; }
  [[nodiscard]] double clustering_inertia() const noexcept { return inertia_; }

 private:
  static kmeans_result<T> checked_kmeans(const matrix_cref<T>& keys, const matrix_cref<T>& values,
                                         const kmeans_options& options) {
    require_dimension("values.rows() (must equal keys.rows())",
                      static_cast<std::size_t>(values.rows()),
                      static_cast<std::size_t>(keys.rows()));
    return kmeans<T>(keys, options);
  }

  row_matrix<T> centroids_;
  row_matrix<T> value_means_;
  std::vector<T> masses_;
  std::vector<std::uint32_t> assignment_;
  std::vector<std::size_t> offsets_;
  std::vector<std::uint32_t> members_;
  std::size_t iterations_ = 0;
  double inertia_ = 0.0;
};

/// \brief Parameters of `centroid_ot_attention`; see the file comment.
template <class T>
struct centroid_ot_config {
  /// Entropic regularisation ε > 0 (cost units).
  T epsilon = T(1);
  /// Cluster-marginal relaxation ρ ∈ [0, +inf]; +inf = balanced OT, 0 = per-query softmax.
  T rho = T(1);
  /// Cost scale τ > 0; empty = 2√d.
  std::optional<T> temperature{};
  /// Cap on scaling iterations (≥ 1).
  std::size_t max_iterations = 200;
  /// Stop when the row-marginal L1 error is ≤ tolerance (≥ 0).
  T tolerance = T(1e-6);
  /// Throw `non_finite_input` on NaN/Inf in the queries.
  bool check_finite = true;
};

/// \brief The result of a centroid OT attention call.
template <class T>
struct centroid_ot_result {
  row_matrix<T> output;            ///< Lq × dv, out_i = Σ_m w_im v̄_m
  row_matrix<T> centroid_weights;  ///< Lq × M, w_im = Lq·P_im (rows sum to 1)
  row_matrix<T> key_weights;       ///< Lq × n, w_{i,a(j)}/|a(j)| (only when requested)
  std::vector<T> cluster_load;     ///< ν_m = Σ_i P_im (→ μ as ρ → ∞)
  std::size_t iterations = 0;      ///< g-updates performed (0 for the single-query closed form)
  T marginal_error = T(0);         ///< row-marginal L1 error before the last f-update
  bool converged = false;          ///< stopped by `tolerance` (always true for the closed form)
};

/// \brief Attention of a query batch over a `centroid_key_set` through semi-unbalanced entropic
/// OT; see the file comment. Immutable and safe to share across threads.
template <attention_scalar T = float>
class centroid_ot_attention {
 public:
  using value_type = T;

  /// Validates the configuration (`invalid_config` on ε ≤ 0, ρ < 0 or NaN, τ ≤ 0, ...).
  explicit centroid_ot_attention(const centroid_ot_config<T>& config = {}) : config_(config) {
    require_config(std::isfinite(config.epsilon) && config.epsilon > T(0),
                   "centroid_ot_attention: epsilon must be finite and > 0");
    require_config(!std::isnan(config.rho) && config.rho >= T(0),
                   "centroid_ot_attention: rho must be >= 0 (+inf = balanced)");
    require_config(
        !config.temperature || (std::isfinite(*config.temperature) && *config.temperature > T(0)),
        "centroid_ot_attention: temperature must be finite and > 0");
    require_config(config.max_iterations >= 1,
                   "centroid_ot_attention: max_iterations must be >= 1");
    require_config(std::isfinite(config.tolerance) && config.tolerance >= T(0),
                   "centroid_ot_attention: tolerance must be finite and >= 0");
  }

  [[nodiscard]] const centroid_ot_config<T>& config() const noexcept { return config_; }

  /// \brief Output, centroid weights (and per-key weights if `key_weights`) for the queries
  /// (rows of `queries`) by the scaling iterations.
  [[nodiscard]] centroid_ot_result<T> compute_batch(const matrix_cref<T>& queries,
                                                    const centroid_key_set<T>& keys,
                                                    bool key_weights = false) const {
    const auto lq = static_cast<std::size_t>(queries.rows());
    const std::size_t M = keys.num_clusters();
    require_non_empty("queries", lq);
    require_at_most("queries.rows()", lq, max_sequence_length);
    require_dimension("queries.cols()", static_cast<std::size_t>(queries.cols()), keys.dim());
    if (config_.check_finite)
      require_finite("queries", queries.data(), lq, keys.dim(),
                     static_cast<std::ptrdiff_t>(queries.outerStride()));

    const std::vector<double> ce = scaled_costs(queries, keys);  // C/ε, Lq × M
    std::vector<double> cet(M * lq);
    for (std::size_t i = 0; i < lq; ++i)
      for (std::size_t m = 0; m < M; ++m) cet[m * lq + i] = ce[i * M + m];
    const double eps = static_cast<double>(config_.epsilon);
    const double rho = static_cast<double>(config_.rho);
    const double lambda = std::isinf(rho) ? 1.0 : rho / (rho + eps);
    const double log_a = -std::log(static_cast<double>(lq));
    std::vector<double> log_mu(M);
    for (std::size_t m = 0; m < M; ++m) log_mu[m] = log_mass(keys, m);

    std::vector<double> phi(lq), phi_next(lq), psi(M, 0.0), base_m(M), base_i(lq);
    const auto f_update = [&](std::vector<double>& out) {
      for (std::size_t m = 0; m < M; ++m) base_m[m] = log_mu[m] + psi[m];
      detail::transport_half_step(ce.data(), lq, M, base_m.data(), out.data());
    };
    const auto g_update = [&] {
      for (std::size_t i = 0; i < lq; ++i) base_i[i] = log_a + phi[i];
      detail::transport_half_step(cet.data(), M, lq, base_i.data(), psi.data());
      for (std::size_t m = 0; m < M; ++m) psi[m] = log_mu[m] == kNegInf ? 0.0 : lambda * psi[m];
    };

    centroid_ot_result<T> r;
    f_update(phi);
    double err = 0.0;
    for (std::size_t it = 0; it < config_.max_iterations; ++it) {
      g_update();
      ++r.iterations;
      f_update(phi_next);
      err = 0.0;
      for (std::size_t i = 0; i < lq; ++i)
        err += std::abs(std::expm1(phi[i] - phi_next[i])) / static_cast<double>(lq);
      phi.swap(phi_next);
      if (err <= static_cast<double>(config_.tolerance)) {
        r.converged = true;
        break;
      }
    }
    r.marginal_error = static_cast<T>(err);

    // w_im = μ_m exp(φ_i + ψ_m − C_im/ε); empty clusters exactly 0.
    r.centroid_weights.resize(static_cast<Eigen::Index>(lq), static_cast<Eigen::Index>(M));
    std::vector<double> load(M, 0.0);
    for (std::size_t i = 0; i < lq; ++i) {
      for (std::size_t m = 0; m < M; ++m) {
        const double w =
            log_mu[m] == kNegInf ? 0.0 : std::exp(log_mu[m] + phi[i] + psi[m] - ce[i * M + m]);
        r.centroid_weights(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(m)) =
            static_cast<T>(w);
        load[m] += w / static_cast<double>(lq);
      }
    }
    r.cluster_load.assign(load.begin(), load.end());
    finish(r, keys, key_weights);
    return r;
  }

  /// \brief Output, weights and (optionally) per-key weights for one query, by the closed form
  /// w_m ∝ μ_m·exp(−C_m/(ε + ρ)).
  [[nodiscard]] centroid_ot_result<T> compute_with_weights(std::span<const T> query,
                                                           const centroid_key_set<T>& keys,
                                                           bool key_weights = false) const {
    const std::size_t M = keys.num_clusters();
    require_dimension("query.size()", query.size(), keys.dim());
    if (config_.check_finite) require_finite("query", query);
    const auto qm = matrix_view(query.data(), 1, query.size());
    const std::vector<double> ce = scaled_costs(qm, keys);  // C/ε
    const double eps = static_cast<double>(config_.epsilon);
    const double rho = static_cast<double>(config_.rho);
    const double factor = std::isinf(rho) ? 0.0 : eps / (eps + rho);  // C/(ε+ρ) = (C/ε)·factor
    std::vector<double> s(M);
    double mx = kNegInf;
    for (std::size_t m = 0; m < M; ++m) {
      const double lm = log_mass(keys, m);
      s[m] = lm == kNegInf ? kNegInf : lm - factor * ce[m];
      mx = std::max(mx, s[m]);
    }
    double total = 0.0;
    for (std::size_t m = 0; m < M; ++m) {
      s[m] = s[m] == kNegInf ? 0.0 : std::exp(s[m] - mx);
      total += s[m];
    }
    centroid_ot_result<T> r;
    r.centroid_weights.resize(1, static_cast<Eigen::Index>(M));
    r.cluster_load.resize(M);
    for (std::size_t m = 0; m < M; ++m) {
      r.centroid_weights(0, static_cast<Eigen::Index>(m)) = static_cast<T>(s[m] / total);
      r.cluster_load[m] = static_cast<T>(s[m] / total);
    }
    r.converged = true;
    finish(r, keys, key_weights);
    return r;
  }

  /// \brief Output for one query (closed form).
  [[nodiscard]] std::vector<T> compute(std::span<const T> query,
                                       const centroid_key_set<T>& keys) const {
    const auto r = compute_with_weights(query, keys, false);
    return std::vector<T>(r.output.data(), r.output.data() + r.output.size());
  }

 private:
  static constexpr double kNegInf = -std::numeric_limits<double>::infinity();

  /// log μ_m in double from the cluster size (the T masses need not sum to exactly 1).
  static double log_mass(const centroid_key_set<T>& keys, std::size_t m) noexcept {
    const std::size_t size = keys.cluster_size(m);
    return size > 0 ? std::log(static_cast<double>(size) / static_cast<double>(keys.num_keys()))
                    : kNegInf;
  }

  /// C_im/ε = ‖q_i − c_m‖²/(τ·ε) in double, Lq × M.
  std::vector<double> scaled_costs(const matrix_cref<T>& queries,
                                   const centroid_key_set<T>& keys) const {
    const auto lq = static_cast<std::size_t>(queries.rows());
    const std::size_t M = keys.num_clusters(), d = keys.dim();
    const double tau = config_.temperature ? static_cast<double>(*config_.temperature)
                                           : 2.0 * std::sqrt(static_cast<double>(d));
    const double inv = 1.0 / (tau * static_cast<double>(config_.epsilon));
    std::vector<T> dist(M);
    std::vector<double> ce(lq * M);
    for (std::size_t i = 0; i < lq; ++i) {
      kernels::row_squared_distances(
          keys.centroids().data(), M, d, d,
          queries.data() + static_cast<std::ptrdiff_t>(i) * queries.outerStride(), dist.data());
      for (std::size_t m = 0; m < M; ++m) ce[i * M + m] = static_cast<double>(dist[m]) * inv;
    }
    return ce;
  }

  /// Output = W·V̄ and the optional per-key weights.
  static void finish(centroid_ot_result<T>& r, const centroid_key_set<T>& keys, bool key_weights) {
    // out_i = Σ_m w_im v̄_m with the xsimd kernel (tiny M: no Eigen GEMM and its thread pool).
    const auto rows = static_cast<std::size_t>(r.centroid_weights.rows());
    const std::size_t M = keys.num_clusters(), dv = keys.value_dim();
    r.output.resize(static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(dv));
    for (std::size_t i = 0; i < rows; ++i)
      kernels::weighted_row_sum(&r.centroid_weights(static_cast<Eigen::Index>(i), 0), M,
                                keys.value_means().data(), dv, dv, T(0), r.output.data() + i * dv);
    if (!key_weights) return;
    const auto lq = static_cast<std::size_t>(r.centroid_weights.rows());
    const std::size_t n = keys.num_keys();
    r.key_weights.resize(static_cast<Eigen::Index>(lq), static_cast<Eigen::Index>(n));
    const auto assignment = keys.assignment();
    for (std::size_t i = 0; i < lq; ++i) {
      for (std::size_t j = 0; j < n; ++j) {
        const std::size_t m = assignment[j];
        r.key_weights(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) =
            r.centroid_weights(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(m)) /
            static_cast<T>(keys.cluster_size(m));
      }
    }
  }

  centroid_ot_config<T> config_;
};

}  // namespace ruvector::attention
// ---- end ruvector/attention/transport/centroid_ot.hpp ----
// ---- begin ruvector/attention/transport/sinkhorn_attention.hpp ----
/// \file transport/sinkhorn_attention.hpp
/// \brief Sinkhorn attention ("Sinkformers", Sander, Ablin, Blondel & Peyré, AISTATS 2022): the
/// softmax kernel is replaced by its Sinkhorn normalisation, which is (close to) doubly stochastic.
///
/// For queries Q (Lq × d), keys K (Lk × d) and values V (Lk × dv):
///
///     S_ij = scale · q_i·k_j                           (scale = 1/√d by default)
///     P = diag(e^α) · exp(S) · diag(e^β),   found by alternating, in the log domain,
///         column step:  β_j = log(Lq/Lk) − LSE_i(S_ij + α_i)      (column sums → Lq/Lk)
///         row step:     α_i = −LSE_j(S_ij + β_j)                  (row sums → 1)
///     out = P · V.
///
/// The first step is a row step, so with 0 iterations P = softmax(S) row-wise (standard
/// attention); each iteration is one column step followed by one row step. The last step is
/// always a row step, so every output row is a convex combination of value rows (row sums are 1
/// up to rounding) and the column sums approach Lq/Lk (doubly stochastic when Lq = Lk) as the
/// iterations grow (Sinkhorn's theorem: the scaling converges since exp(S) > 0). The paper uses
/// a few iterations (e.g. 3, the default); a positive `tolerance` stops earlier once the column
/// L1 error Σ_j |Σ_i P_ij − Lq/Lk| is ≤ tolerance.
///
/// Conventions: the scores are formed in T (Eigen GEMM), the normalisation runs in double with
/// max-subtracted log-sum-exps (no overflow for any finite score). A key mask (`true` = visible)
/// removes keys: with Lv visible keys the column target is Lq/Lv over the visible columns and
/// masked columns get weight exactly 0; if no key is visible the output and weights are zeros
/// (DESIGN §4). There is no single-query vector API: with Lq = 1 the column constraint forces
/// uniform weights 1/Lk whatever the scores, so the mechanism is only meaningful for a batch.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <optional>
#include <span>
#include <vector>


namespace ruvector::attention {

/// \brief The result of `sinkhorn_attention::forward`.
template <class T>
struct sinkhorn_attention_result {
  row_matrix<T> output;   ///< Lq × dv, P·V
  row_matrix<T> weights;  ///< Lq × Lk plan P (only when requested; otherwise 0 × 0)
  T row_error = T(0);     ///< Σ_i |Σ_j P_ij − 1| (rounding only: the last step is a row step)
  T column_error = T(0);  ///< Σ_j visible |Σ_i P_ij − Lq/Lv|
  std::size_t iterations = 0;  ///< (column, row) steps performed after the initial row step
};

/// \brief Sinkformer attention over a batch of queries; see the file comment. Immutable and safe
/// to share across threads.
template <attention_scalar T = float>
class sinkhorn_attention {
 public:
  using value_type = T;

  /// \param dim query/key width; \param iterations (column, row) steps after the initial softmax
  /// (0 = plain softmax attention); \param scale logit scale (default 1/√dim); \param tolerance
  /// stop early when the column L1 error is ≤ tolerance (0 = always run `iterations`);
  /// \param check_finite throw `non_finite_input` on NaN/Inf in Q, K or V.
  explicit sinkhorn_attention(std::size_t dim, std::size_t iterations = 3,
                              std::optional<T> scale = std::nullopt, T tolerance = T(0),
                              bool check_finite = true)
      : dim_(dim),
        iterations_(iterations),
        scale_(scale ? *scale : T(1) / std::sqrt(static_cast<T>(dim == 0 ? 1 : dim))),
        tolerance_(tolerance),
        check_finite_(check_finite) {
    require_config(dim > 0, "sinkhorn_attention: dim must be > 0");
    require_at_most("dim", dim, max_dimension);
    require_config(std::isfinite(scale_), "sinkhorn_attention: scale must be finite");
    require_config(tolerance >= T(0) && std::isfinite(tolerance),
                   "sinkhorn_attention: tolerance must be finite and >= 0");
  }

  [[nodiscard]] std::size_t dim() const noexcept { return dim_; }
  [[nodiscard]] std::size_t iterations() const noexcept { return iterations_; }
  [[nodiscard]] T scale() const noexcept { return scale_; }
  [[nodiscard]] T tolerance() const noexcept { return tolerance_; }

  /// \brief Output P·V for queries (rows of `queries`); `key_mask` (empty = all visible) holds
  /// `true` for visible keys; `return_weights` also returns P.
  [[nodiscard]] sinkhorn_attention_result<T> forward(const matrix_cref<T>& queries,
                                                     const matrix_cref<T>& keys,
                                                     const matrix_cref<T>& values,
                                                     std::span<const bool> key_mask = {},
                                                     bool return_weights = false) const {
    const auto lq = static_cast<std::size_t>(queries.rows());
    const auto lk = static_cast<std::size_t>(keys.rows());
    const auto dv = static_cast<std::size_t>(values.cols());
    require_non_empty("queries", lq);
    require_non_empty("keys", lk);
    require_at_most("queries.rows()", lq, max_sequence_length);
    require_at_most("keys.rows()", lk, max_sequence_length);
    require_dimension("queries.cols()", static_cast<std::size_t>(queries.cols()), dim_);
    require_dimension("keys.cols()", static_cast<std::size_t>(keys.cols()), dim_);
    require_dimension("values.rows() (must equal keys.rows())",
                      static_cast<std::size_t>(values.rows()), lk);
    if (!key_mask.empty()) require_dimension("key_mask.size()", key_mask.size(), lk);
    if (check_finite_) {
      require_finite("queries", queries.data(), lq, dim_,
                     static_cast<std::ptrdiff_t>(queries.outerStride()));
      require_finite("keys", keys.data(), lk, dim_,
                     static_cast<std::ptrdiff_t>(keys.outerStride()));
      require_finite("values", values.data(), lk, dv,
                     static_cast<std::ptrdiff_t>(values.outerStride()));
    }
    const auto idx = [](std::size_t x) { return static_cast<Eigen::Index>(x); };

    std::vector<std::size_t> visible;
    visible.reserve(lk);
    for (std::size_t j = 0; j < lk; ++j)
      if (key_mask.empty() || key_mask[j]) visible.push_back(j);
    const std::size_t lv = visible.size();

    sinkhorn_attention_result<T> r;
    row_matrix<T> p = row_matrix<T>::Zero(idx(lq), idx(lk));
    if (lv > 0) {
      const row_matrix<T> scores = scale_ * (queries * keys.transpose());
      using array = Eigen::Array<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
      array s(idx(lq), idx(lv));
      for (std::size_t i = 0; i < lq; ++i)
        for (std::size_t c = 0; c < lv; ++c)
          s(idx(i), idx(c)) = static_cast<double>(scores(idx(i), idx(visible[c])));
      Eigen::ArrayXd alpha = Eigen::ArrayXd::Zero(idx(lq));
      Eigen::ArrayXd beta = Eigen::ArrayXd::Zero(idx(lv));
      const double log_col_target = std::log(static_cast<double>(lq) / static_cast<double>(lv));
      const double col_target = static_cast<double>(lq) / static_cast<double>(lv);

      // Row step: α_i = −LSE_j(S_ij + β_j).
      const auto row_step = [&] {
        const array t = s.rowwise() + beta.transpose();
        const Eigen::ArrayXd mx = t.rowwise().maxCoeff();
        alpha = -(mx + (t.colwise() - mx).exp().rowwise().sum().log());
      };
      // Column step: β_j = log(Lq/Lv) − LSE_i(S_ij + α_i).
      const auto col_step = [&] {
        const array t = s.colwise() + alpha;
        const Eigen::Array<double, 1, Eigen::Dynamic> mx = t.colwise().maxCoeff();
        beta = (log_col_target - (mx + (t.rowwise() - mx).exp().colwise().sum().log())).transpose();
      };
      const auto plan = [&] {
        return array(((s.colwise() + alpha).rowwise() + beta.transpose()).exp());
      };
      const auto col_error = [&](const array& pl) {
        return (pl.colwise().sum() - col_target).abs().sum();
      };

      row_step();
      for (std::size_t it = 0; it < iterations_; ++it) {
        if (tolerance_ > T(0) && col_error(plan()) <= static_cast<double>(tolerance_)) break;
        col_step();
        row_step();
        ++r.iterations;
      }
      const array pl = plan();
      r.column_error = static_cast<T>(col_error(pl));
      r.row_error = static_cast<T>((pl.rowwise().sum() - 1.0).abs().sum());
      for (std::size_t i = 0; i < lq; ++i)
        for (std::size_t c = 0; c < lv; ++c)
          p(idx(i), idx(visible[c])) = static_cast<T>(pl(idx(i), idx(c)));
      r.output.noalias() = p * values;
    } else {
      r.output = row_matrix<T>::Zero(idx(lq), idx(dv));
    }
    if (return_weights) r.weights = std::move(p);
    return r;
  }

  /// \brief Output rows only (`forward(...).output`).
  [[nodiscard]] row_matrix<T> compute_batch(const matrix_cref<T>& queries,
                                            const matrix_cref<T>& keys,
                                            const matrix_cref<T>& values,
                                            std::span<const bool> key_mask = {}) const {
    return forward(queries, keys, values, key_mask, false).output;
  }

 private:
  std::size_t dim_;
  std::size_t iterations_;
  T scale_;
  T tolerance_;
  bool check_finite_;
};

}  // namespace ruvector::attention
// ---- end ruvector/attention/transport/sinkhorn_attention.hpp ----
// ---- end ruvector/attention/transport.hpp ----
// ---- begin ruvector/attention/unified_report.hpp ----
/// \file unified_report.hpp
/// \brief Entry header of the unified geometry report: structural metrics, bands, the report and
/// its recommendation (JSON output: `ruvector/attention/io/json.hpp`).

// ---- end ruvector/attention/unified_report.hpp ----
