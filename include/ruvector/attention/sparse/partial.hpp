#pragma once
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

#include "ruvector/attention/core/parallel.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/sparse/flash.hpp"

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
