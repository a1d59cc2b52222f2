#pragma once
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

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/config.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/parallel.hpp"
#include "ruvector/attention/core/rng.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/detail/eigen.hpp"
#include "ruvector/attention/detail/scratch.hpp"
#include "ruvector/attention/kernels/gemv.hpp"
#include "ruvector/attention/kernels/reduce.hpp"
#include "ruvector/attention/kernels/softmax.hpp"
#include "ruvector/attention/transport/detail/sw_kernels.hpp"

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
