#pragma once
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

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/config.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/detail/eigen.hpp"
#include "ruvector/attention/kernels/gemv.hpp"
#include "ruvector/attention/transport/kmeans.hpp"
#include "ruvector/attention/transport/sinkhorn.hpp"

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
