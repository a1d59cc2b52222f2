#pragma once
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

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/config.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/mask.hpp"
#include "ruvector/attention/core/parallel.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/detail/scratch.hpp"
#include "ruvector/attention/kernels/reduce.hpp"
#include "ruvector/attention/kernels/simd.hpp"
#include "ruvector/attention/kernels/softmax.hpp"
#include "ruvector/attention/sparse/masks.hpp"

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
