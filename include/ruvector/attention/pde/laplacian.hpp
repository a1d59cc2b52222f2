#pragma once
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

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/config.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/parallel.hpp"
#include "ruvector/attention/core/rng.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/detail/eigen.hpp"
#include "ruvector/attention/kernels/gemv.hpp"
#include "ruvector/attention/kernels/knn.hpp"

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
