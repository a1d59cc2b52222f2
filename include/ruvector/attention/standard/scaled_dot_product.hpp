#pragma once
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

#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/mask.hpp"
#include "ruvector/attention/core/parallel.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/detail/attention_args.hpp"
#include "ruvector/attention/detail/eigen.hpp"
#include "ruvector/attention/detail/scratch.hpp"
#include "ruvector/attention/kernels/gemv.hpp"
#include "ruvector/attention/kernels/softmax.hpp"

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
