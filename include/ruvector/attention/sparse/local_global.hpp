#pragma once
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

#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/detail/scratch.hpp"
#include "ruvector/attention/sparse/masks.hpp"
#include "ruvector/attention/sparse/sparse_attention.hpp"

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
