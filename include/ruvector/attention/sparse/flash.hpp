#pragma once
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
