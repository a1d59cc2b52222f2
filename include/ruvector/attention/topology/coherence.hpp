#pragma once
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

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/config.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/kernels/knn.hpp"
#include "ruvector/attention/kernels/reduce.hpp"

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
